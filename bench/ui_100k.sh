#!/usr/bin/env bash
# The web UI on a 100,000-span trace, in headless Chromium: time to the waterfall's first paint
# and scroll frame times. Starts a release `stitch` on free loopback ports with a fresh data
# directory, runs crates/stitch/tests/ui/bench_100k.mjs against it, and stops it.
#
#   bench/ui_100k.sh [--spans N] [--runs N]
#
# Needs Debian's chromium and `npm ci` in crates/stitch/tests/ui (./test.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x /usr/bin/chromium ] || { echo "install chromium first: apt-get install -y chromium" >&2; exit 1; }
[ -d crates/stitch/tests/ui/node_modules ] || (cd crates/stitch/tests/ui && npm ci --no-audit --no-fund)
cargo build --release -p stitch

data=$(mktemp -d)
log="$data/stitch.out"
target/release/stitch serve --data-dir "$data/data" \
  --otlp-grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 --query-addr 127.0.0.1:0 \
  --zipkin-addr 127.0.0.1:0 --jaeger-agent-compact-addr 127.0.0.1:0 \
  --jaeger-agent-binary-addr 127.0.0.1:0 --jaeger-http-addr 127.0.0.1:0 \
  --jaeger-grpc-addr 127.0.0.1:0 --sampling-addr 127.0.0.1:0 --tempo-addr 127.0.0.1:0 \
  >"$log" 2>"$data/stitch.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT

for _ in $(seq 1 100); do
  grep -q '^stitch: query listening on' "$log" && grep -q '^stitch: otlp-http listening on' "$log" && break
  sleep 0.1
done
query=$(sed -n 's/^stitch: query listening on //p' "$log")
otlp=$(sed -n 's/^stitch: otlp-http listening on //p' "$log")
[ -n "$query" ] && [ -n "$otlp" ] || { cat "$data/stitch.err" >&2; exit 1; }

cd crates/stitch/tests/ui
node bench_100k.mjs --url "http://$query" --otlp "http://$otlp/v1/traces" "$@"
