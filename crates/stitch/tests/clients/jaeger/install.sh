#!/usr/bin/env bash
# Installs the real Jaeger clients that crates/stitch/tests/jaeger.rs and jaeger_sampling.rs
# drive: jaeger-client for Node (node_modules/, from package-lock.json), OpenTelemetry's Jaeger
# exporters for Python (.venv/, from requirements.txt), and a grpcio client of
# jaeger.api_v2.SamplingManager (sampling/.venv/, from sampling/requirements.txt, with stubs
# generated from sampling/sampling.proto). Does nothing when all are already installed as
# locked.
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

# The sampling client's stubs are generated here, so they are redone whenever the proto or
# the pinned grpcio-tools change.
stamp() { cat sampling/requirements.txt sampling/sampling.proto; }
if ! stamp | cmp -s - sampling/.venv/.stitch-installed 2>/dev/null; then
  rm -rf sampling/.venv
  python3 -m venv sampling/.venv
  sampling/.venv/bin/pip install --quiet --disable-pip-version-check -r sampling/requirements.txt
  mkdir -p sampling/.venv/stubs
  sampling/.venv/bin/python -m grpc_tools.protoc -I sampling --python_out=sampling/.venv/stubs \
    --grpc_python_out=sampling/.venv/stubs sampling/sampling.proto
  stamp >sampling/.venv/.stitch-installed
fi
