#!/usr/bin/env bash
# Runs Stitch's whole test suite. Installs whatever the tests need first, so it works on a fresh
# machine with the Rust toolchain, Python 3 and Node.
set -euo pipefail
cd "$(dirname "$0")"

# Real Jaeger clients for crates/stitch/tests/jaeger.rs (npm jaeger-client, Python OTel Jaeger
# exporters); idempotent.
crates/stitch/tests/clients/jaeger/install.sh

# Real Zipkin clients for crates/stitch/tests/zipkin.rs (npm zipkin, zipkin-transport-http,
# @opentelemetry/exporter-zipkin), pinned by package-lock.json; skipped when already installed.
if [ ! -d crates/stitch/tests/clients/zipkin/node_modules ]; then
  (cd crates/stitch/tests/clients/zipkin && npm ci --no-audit --no-fund)
fi

# Grafana's TraceQL grammar (@grafana/lezer-traceql, pinned by package-lock.json), which
# crates/stitch-query/tests/grammar.rs holds Stitch's TraceQL parser to.
if [ ! -d crates/stitch-query/tests/lezer/node_modules ]; then
  (cd crates/stitch-query/tests/lezer && npm ci --no-audit --no-fund)
fi

# Headless Chromium and Playwright for the web UI's end-to-end tests (crates/stitch/tests/ui.rs)
# and bench/ui_100k.sh: Debian's chromium, playwright-core pinned by package-lock.json.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
fi
if [ ! -d crates/stitch/tests/ui/node_modules ]; then
  (cd crates/stitch/tests/ui && npm ci --no-audit --no-fund)
fi

# The fuzz targets of the propagation parsers must keep building (stable toolchain).
fuzz/check.sh --build-only

# The benchmark crate is excluded: its criterion benches are run by bench/ scripts, not tests.
cargo test --workspace --exclude stitch-bench --no-fail-fast "$@"
