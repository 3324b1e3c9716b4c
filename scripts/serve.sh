#!/usr/bin/env bash
# Install what is needed (pinned), build the web console, and run Sailplane on SQLite in ./data with the local Sail backend.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime
scripts/build_console.sh  # the web console at http://127.0.0.1:8000/ (skipped when up to date)
export SAILPLANE_DATA_DIR="${SAILPLANE_DATA_DIR:-$PWD/data}"
exec .venv/bin/sailplane serve "$@"
