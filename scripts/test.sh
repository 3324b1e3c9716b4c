#!/usr/bin/env bash
# Install what the tests need (pinned Python packages; Debian's PostgreSQL server and dnsmasq when missing),
# check style, types and import layering, then run the whole suite on SQLite and, side by side, its tests that use the
# database on PostgreSQL (tests/conftest.py deselects the others there).
# The PostgreSQL server is started by the test run itself on a loopback port and removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev

have_pg_server() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}
if ! have_pg_server; then
  echo "Installing PostgreSQL (Debian package 'postgresql')..."
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
  # We start our own throwaway server; the packaged cluster is not needed.
  $sudo_cmd service postgresql stop >/dev/null 2>&1 || true
fi

# The domain verification tests run a real DNS server on loopback: Debian's dnsmasq (the binary only,
# package dnsmasq-base, which installs no system service).
if ! command -v dnsmasq >/dev/null && [ ! -x /usr/sbin/dnsmasq ]; then
  echo "Installing dnsmasq (Debian package 'dnsmasq-base')..."
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq dnsmasq-base >/dev/null
fi

# The SSO tests run a real OpenID provider (npm oidc-provider, pinned by its package-lock.json).
if [ ! -d tests/sso/op/node_modules/oidc-provider ]; then
  if ! command -v npm >/dev/null; then
    echo "Installing Node.js and npm (Debian packages)..."
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
  fi
  (cd tests/sso/op && npm ci --no-audit --no-fund --loglevel=error)
fi

# The web console: built (the browser tests drive it), type-checked and unit-tested once, not per database.
scripts/build_console.sh --check

echo "== ruff"; .venv/bin/ruff check src tests bench scripts
echo "== mypy"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports --no-cache  # the layering contracts in pyproject.toml

# The two databases' runs go side by side: most of a run is waiting (servers starting, Sail answering, timeouts
# elapsing), so on two cores together they take little more than one alone. Each line is prefixed with its run.
# SAILPLANE_TEST_SERIAL=1 runs them one after the other.
run_pytest() {
  local backend=$1; shift
  echo "== pytest on $backend"
  SAILPLANE_TEST_DATABASE=$backend .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
}
if [ "${SAILPLANE_TEST_SERIAL:-0}" = 1 ]; then
  status=0
  for backend in sqlite postgresql; do run_pytest "$backend" "$@" || status=$?; done
  exit $status
fi
pids=()
for backend in sqlite postgresql; do
  ( set -o pipefail; run_pytest "$backend" "$@" 2>&1 | sed -u "s/^/[$backend] /" ) &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
