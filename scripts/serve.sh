#!/usr/bin/env bash
# Install what is needed (pinned), build the web console, and run Sailplane on SQLite in ./data with the local Sail backend.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime
# The web console at http://127.0.0.1:8000/ (skipped when up to date). Without it (no npm registry, say) the API
# still serves, and / says how to build the console.
scripts/build_console.sh || echo "WARNING: the web console was not built (scripts/build_console.sh); the API runs without it." >&2
export SAILPLANE_DATA_DIR="${SAILPLANE_DATA_DIR:-$PWD/data}"
exec .venv/bin/sailplane serve "$@"
