#!/usr/bin/env bash
# Build the web console (console/: React + Vite, pinned by package-lock.json) into console/dist, which
# `sailplane serve` serves at /. Its API types are generated from this checkout's OpenAPI document
# (scripts/console_openapi.py, then openapi-typescript). Skipped when nothing it is built from changed.
# Usage: scripts/build_console.sh [--check]   (--check: also the type check and the unit tests)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"  # the one scripts/bootstrap.sh made, with sailplane's dependencies
case "$python" in /*) ;; */*) python="$PWD/$python" ;; esac

if ! command -v npm >/dev/null; then
  echo "Installing Node.js and npm (Debian packages) for the web console..."
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
fi

cd console
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f "node_modules/.installed-$lock_hash" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "node_modules/.installed-$lock_hash"
fi

# The OpenAPI document is rewritten only when it changed, so an unchanged API keeps the build up to date.
PYTHONPATH="$PWD/../src${PYTHONPATH:+:$PYTHONPATH}" "$python" ../scripts/console_openapi.py openapi.json
inputs=$( (find src index.html vite.config.ts compress.mjs tsconfig.json package-lock.json openapi.json -type f \
             ! -name schema.d.ts -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)
if [ ! -f src/api/schema.d.ts ] || [ ! -f dist/index.html ] || [ "$(cat .build-stamp 2>/dev/null)" != "$inputs" ]; then
  echo "Building the web console..."
  npm run --silent gen >/dev/null
  npm run --silent build >/dev/null
  echo "$inputs" > .build-stamp
fi

if [ "${1:-}" = "--check" ]; then
  echo "== console: tsc --noEmit"; npm run --silent typecheck
  echo "== console: vitest"; npm run --silent test
fi
