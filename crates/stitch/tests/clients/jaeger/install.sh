#!/usr/bin/env bash
# Installs the real Jaeger clients that crates/stitch/tests/jaeger.rs drives: jaeger-client for
# Node (node_modules/, from package-lock.json) and OpenTelemetry's Jaeger exporters for Python
# (.venv/, from requirements.txt). Does nothing when both are already installed as locked.
set -euo pipefail
cd "$(dirname "$0")"

if ! cmp -s package-lock.json node_modules/.stitch-installed-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.stitch-installed-lock
fi

if ! cmp -s requirements.txt .venv/.stitch-installed-requirements 2>/dev/null; then
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.stitch-installed-requirements
fi
