#!/usr/bin/env bash
# Install what is needed (pinned) and run Sailplane on SQLite in ./data with the local Sail backend.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime
export SAILPLANE_DATA_DIR="${SAILPLANE_DATA_DIR:-$PWD/data}"
exec .venv/bin/sailplane serve "$@"
