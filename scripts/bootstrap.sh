#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned dependencies plus sailplane itself, then the
# pinned Python environment of the default PySpark line that Sail servers and job drivers run in
# (`dev`: of every line, so no test waits for a first-use install), and the notebook environment
# marimo servers run in.
# Usage: scripts/bootstrap.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-runtime}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
req=requirements.txt
[ "$kind" = dev ] && req=requirements-dev.txt

# User code (Sail servers, job drivers, library installs, git checkouts) runs in a bubblewrap
# sandbox, as an unprivileged system user when the server runs as root.
if [ "${SAILPLANE_WORKLOAD_SANDBOX:-sandbox}" != "off" ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  if ! command -v bwrap >/dev/null; then
    echo "Installing bubblewrap (Debian package 'bubblewrap') for the workload sandbox..."
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq bubblewrap >/dev/null
  fi
  workload_user="${SAILPLANE_WORKLOAD_USER:-sailplane-workload}"
  if [ "$(id -u)" -eq 0 ] && ! id "$workload_user" >/dev/null 2>&1; then
    echo "Creating the unprivileged system user '$workload_user' that workloads run as..."
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$workload_user"
  fi
fi

# Browser tests (Playwright) drive Debian's Chromium, never a downloaded browser (no `playwright install`).
if [ "$kind" = dev ] && ! command -v chromium >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "Installing Chromium (Debian package 'chromium') for the browser tests..."
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

stamp=".venv/.installed-$(sha256sum "$req" requirements.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade "pip==26.3"
  .venv/bin/python -m pip install --quiet -r "$req"
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi

# One virtual environment per PySpark line (Sail answers clients as the PySpark next to it), pinned by
# src/sailplane/compute/locks/spark-<line>.txt, under .venv/spark-envs/ (SAILPLANE_SPARK_ENVS_DIR).
# Already installed ones are only checked (a stamp each), so this is quick on every later run.
# The server installs other lines on first use; `... environments install --all` does it ahead.
lines=""
[ "$kind" = dev ] && lines="--all"
.venv/bin/python -m sailplane.compute.environments install $lines

# The notebook environment (marimo and the PySpark client, pinned by src/sailplane/compute/locks/notebook.txt,
# apart from the control plane's own pins) under .venv/spark-envs/notebook-<hash>/ (SAILPLANE_NOTEBOOK_ENVS_DIR).
.venv/bin/python -m sailplane.compute.environments install notebook
