# Shared helpers of the benchmark scripts (sourced, not run).
#
# - `build`: release build of `stitch` and the stitch-bench tools into $BIN (target/release, or
#   STITCH_BENCH_BIN to run other builds, e.g. before and after a change; skipped with
#   STITCH_BENCH_NO_BUILD=1, e.g. when all.sh already built them).
# - `start_stitch NAME [serve args...]`: a release `stitch serve` on free loopback ports, data in
#   $WORK/NAME (kept if it exists, so a filled store can be served); sets STITCH_PID and
#   ADDR[<listener>] from the lines the server prints. Every server is stopped on exit.
# - `cpu_seconds PID` (user + system, from /proc/PID/stat), `peak_rss_mb PID` (VmHWM),
#   `rss_mb PID` (VmRSS).
# - `machine`: cores, memory and the load average, printed with every run: other engineers
#   compile on the same two cores, so figures taken under load are floors.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${STITCH_BENCH_BIN:-$ROOT/target/release}
WORK=${STITCH_BENCH_DIR:-$(mktemp -d /tmp/stitch-bench.XXXXXX)}
mkdir -p "$WORK"
CLK_TCK=$(getconf CLK_TCK)
declare -A ADDR
STARTED_PIDS=()

cleanup() {
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -n "${STITCH_BENCH_KEEP:-}" ] || [ -n "${STITCH_BENCH_DIR:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

build() {
  [ "${STITCH_BENCH_NO_BUILD:-}" = 1 ] && return
  [ -n "${STITCH_BENCH_BIN:-}" ] && return
  (cd "$ROOT" && cargo build --release -q -p stitch -p stitch-bench --bins)
}

machine() {
  echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB RAM; load average $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
}

cpu_seconds() {
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

peak_rss_mb() {
  awk '/^VmHWM:/{ printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

rss_mb() {
  awk '/^VmRSS:/{ printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

start_stitch() {
  local name=$1
  shift
  local out="$WORK/$name.out"
  mkdir -p "$WORK/$name"
  : >"$out"
  "$BIN/stitch" serve --data-dir "$WORK/$name" \
    --otlp-grpc-addr 127.0.0.1:0 --otlp-http-addr 127.0.0.1:0 --query-addr 127.0.0.1:0 \
    --zipkin-addr 127.0.0.1:0 --jaeger-agent-compact-addr 127.0.0.1:0 \
    --jaeger-agent-binary-addr 127.0.0.1:0 --jaeger-http-addr 127.0.0.1:0 \
    --jaeger-grpc-addr 127.0.0.1:0 --sampling-addr 127.0.0.1:0 --tempo-addr 127.0.0.1:0 \
    "$@" >"$out" 2>"$WORK/$name.log" &
  STITCH_PID=$!
  STARTED_PIDS+=("$STITCH_PID")
  for _ in $(seq 1 600); do
    grep -q '^stitch: ready' "$out" && break
    if ! kill -0 "$STITCH_PID" 2>/dev/null; then
      echo "stitch serve exited at start:" >&2
      tail -5 "$WORK/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  grep -q '^stitch: ready' "$out" || { echo "stitch serve did not start" >&2; return 1; }
  ADDR=()
  local _name _addr
  while read -r _ _name _ _ _addr; do
    ADDR[$_name]=$_addr
  done < <(grep ' listening on ' "$out")
}

stop_stitch() {
  kill -TERM "$STITCH_PID" 2>/dev/null || true
  wait "$STITCH_PID" 2>/dev/null || true
}

# json FILE EXPR: a field of a loadgen JSON report.
json() {
  jq -r "$2" "$1"
}
