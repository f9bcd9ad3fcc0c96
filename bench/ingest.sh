#!/usr/bin/env bash
# Durable ingest throughput at saturation: `stitch loadgen` (shop preset, 8 connections, 25
# traces = 550 spans per request, as fast as acknowledged) against a fresh release
# `stitch serve` (fsync on) per case: OTLP/gRPC and OTLP/HTTP protobuf with tail sampling off,
# then OTLP/gRPC with the sampling section of stitch.sampling.example.yaml. Per case: spans/s
# acknowledged, export latency, the server's CPU seconds per million spans (/proc/PID/stat),
# its peak RSS (VmHWM), and the load generator's own CPU (it runs on the same two cores).
#
#   bench/ingest.sh [--phoenix]      # DURATION=20s CONNECTIONS=8 by default
#
# --phoenix also runs the same load (OTLP/HTTP protobuf) against Arize Phoenix from PyPI in a
# virtualenv (PHOENIX_VENV, default /tmp/stitch-bench-phoenix; installed if missing), counts the
# spans it actually stored (its SQLite database) and reports Stitch/Phoenix ratios.
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-8}
PHOENIX=0
[ "${1:-}" = --phoenix ] && PHOENIX=1

build
machine
echo "load: stitch loadgen --preset shop --connections $CONNECTIONS --traces-per-request 25 --duration $DURATION (as fast as acknowledged)"
echo
echo "| case | spans/s acknowledged | export latency p50 / p90 / p99 | server CPU s per 1M spans | server peak RSS | loadgen CPU |"
echo "|---|---|---|---|---|---|"

# ingest_case LABEL PROTOCOL LISTENER [serve args...]
ingest_case() {
  local label=$1 protocol=$2 listener=$3
  shift 3
  local name
  name=$(echo "$label" | tr -c 'a-zA-Z0-9\n' '-')
  start_stitch "$name" "$@" || return 1
  local before after report="$WORK/$name.json"
  before=$(cpu_seconds "$STITCH_PID")
  "$BIN/stitch" loadgen --protocol "$protocol" --endpoint "${ADDR[$listener]}" \
    --duration "$DURATION" --connections "$CONNECTIONS" --traces-per-request 25 \
    --json --quiet >"$report"
  after=$(cpu_seconds "$STITCH_PID")
  local hwm
  hwm=$(peak_rss_mb "$STITCH_PID")
  curl -s "http://${ADDR[query]}/metrics" >"$WORK/$name.metrics" || true
  stop_stitch
  local spans rate
  spans=$(json "$report" .spans)
  rate=$(json "$report" '.spans_per_second | round')
  LAST_RATE=$rate
  LAST_CPU_PER_M=$(awk -v a="$before" -v b="$after" -v s="$spans" 'BEGIN { printf "%.2f", (b - a) / s * 1e6 }')
  printf '| %s | %s | %s / %s / %s ms | %s | %s MB | %.2f cores |\n' "$label" "$rate" \
    "$(json "$report" .latency.p50_ms)" "$(json "$report" .latency.p90_ms)" \
    "$(json "$report" .latency.p99_ms)" "$LAST_CPU_PER_M" "$hwm" \
    "$(json "$report" "(.loadgen_cpu_seconds / .elapsed_seconds)")"
  if [ "$(json "$report" .failed_requests)" != 0 ] || [ "$(json "$report" .retries)" != 0 ]; then
    echo "  ($label: $(json "$report" .retries) retries, $(json "$report" .failed_requests) failed requests: $(json "$report" .first_failure))"
  fi
}

ingest_case "OTLP/gRPC, sampling off" otlp-grpc otlp-grpc
GRPC_RATE=$LAST_RATE
GRPC_CPU=$LAST_CPU_PER_M
ingest_case "OTLP/HTTP protobuf, sampling off" otlp-http-protobuf otlp-http
HTTP_RATE=$LAST_RATE
HTTP_CPU=$LAST_CPU_PER_M

# Tail sampling on: the example config (keep errors, >1 s, 5% of the rest; 10 s decision wait).
if start_stitch sampling-probe --config "$ROOT/stitch.sampling.example.yaml" 2>"$WORK/probe.err"; then
  stop_stitch
  ingest_case "OTLP/gRPC, tail sampling on (example config)" otlp-grpc otlp-grpc \
    --config "$ROOT/stitch.sampling.example.yaml"
  grep -E '^stitch_(sampling|tail)[a-z_]*(kept|dropped|sampled|decided|buffered)[a-z_]* ' \
    "$WORK/OTLP-gRPC--tail-sampling-on--example-config-.metrics" 2>/dev/null | sed 's/^/  /' || true
else
  echo "| OTLP/gRPC, tail sampling on | not run: stitch serve does not start with the sampling section: $(tail -1 "$WORK/probe.err") |||||"
fi

[ "$PHOENIX" = 1 ] || exit 0

# --- Arize Phoenix, same load over OTLP/HTTP protobuf ---------------------------------------
echo
VENV=${PHOENIX_VENV:-/tmp/stitch-bench-phoenix}
if [ ! -x "$VENV/bin/phoenix" ]; then
  echo "installing arize-phoenix into $VENV (pip) ..."
  if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q arize-phoenix; } >"$WORK/phoenix-install.log" 2>&1; then
    echo "Phoenix: could not be installed here: $(tail -3 "$WORK/phoenix-install.log")"
    exit 0
  fi
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PPORT=$(free_port)
PGRPC=$(free_port)
PDIR="$WORK/phoenix"
mkdir -p "$PDIR"
PHOENIX_WORKING_DIR="$PDIR" PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$PPORT PHOENIX_GRPC_PORT=$PGRPC \
  PHOENIX_TELEMETRY_ENABLED=false "$VENV/bin/phoenix" serve >"$PDIR/out.log" 2>&1 &
PPID_=$!
STARTED_PIDS+=("$PPID_")
for _ in $(seq 1 1200); do
  curl -sf -o /dev/null "http://127.0.0.1:$PPORT/" && break
  kill -0 "$PPID_" 2>/dev/null || break
  sleep 0.1
done
if ! curl -sf -o /dev/null "http://127.0.0.1:$PPORT/"; then
  echo "Phoenix: did not start: $(tail -3 "$PDIR/out.log")"
  exit 0
fi
echo "Phoenix $("$VENV/bin/pip" show arize-phoenix 2>/dev/null | awk '/^Version/{print $2}') on 127.0.0.1:$PPORT (SQLite in $PDIR)"
tree_cpu() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] && total=$(awk -v t="$total" -v c="$(cpu_seconds "$p")" 'BEGIN { print t + c }')
  done
  echo "$total"
}
stored_spans() {
  "$VENV/bin/python" - "$PDIR" <<'PY'
import glob, sqlite3, sys
dbs = glob.glob(sys.argv[1] + "/*.db")
n = 0
for db in dbs:
    try:
        n += sqlite3.connect(db, timeout=30).execute("select count(*) from spans").fetchone()[0]
    except Exception as e:
        print(f"{db}: {e}", file=sys.stderr)
print(n)
PY
}
before=$(tree_cpu "$PPID_")
start_ns=$(date +%s%N)
"$BIN/stitch" loadgen --protocol otlp-http-protobuf --endpoint "127.0.0.1:$PPORT" \
  --duration "$DURATION" --connections "$CONNECTIONS" --traces-per-request 25 \
  --json --quiet >"$WORK/phoenix.json" || true
# Phoenix acknowledges before it writes (it queues spans and inserts them into SQLite in the
# background), so its rate is the spans it has stored per second since the load began: counted
# until the count stops growing (two checks 5 s apart) or PHOENIX_WAIT seconds after the load
# ended (default 120), whichever comes first.
load_end_s=$(date +%s)
last=-1
stable=0
while [ "$stable" -lt 2 ]; do
  sleep 5
  stored=$(stored_spans)
  if [ "$stored" = "$last" ] && [ "$stored" != 0 ]; then
    stable=$((stable + 1))
  else
    stable=0
    last_change_ns=$(date +%s%N)
  fi
  last=$stored
  [ $(( $(date +%s) - load_end_s )) -ge "${PHOENIX_WAIT:-120}" ] && break
done
end_ns=$last_change_ns
after=$(tree_cpu "$PPID_")
phwm=$(peak_rss_mb "$PPID_")
R="$WORK/phoenix.json"
secs=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
stored_rate=$(awk -v s="$stored" -v t="$secs" 'BEGIN { printf "%.0f", s / t }')
pcpu=$(awk -v a="$before" -v b="$after" -v s="$stored" 'BEGIN { if (s > 0) printf "%.1f", (b - a) / s * 1e6; else print "n/a" }')
printf '| Phoenix, OTLP/HTTP protobuf | %s acknowledged; %s of %s stored %s s after the load began: %s stored/s | %s / %s / %s ms | %s (all its processes) | %s MB | %.2f cores |\n' \
  "$(json "$R" '.spans_per_second | round')" "$stored" "$(json "$R" .spans)" "$secs" "$stored_rate" \
  "$(json "$R" .latency.p50_ms)" "$(json "$R" .latency.p90_ms)" "$(json "$R" .latency.p99_ms)" \
  "$pcpu" "$phwm" "$(json "$R" "(.loadgen_cpu_seconds / .elapsed_seconds)")"
echo "  (Phoenix: $(json "$R" .retried_requests) requests retried ($(json "$R" .retries) retries), $(json "$R" .failed_requests) failed for good (first: $(json "$R" '.first_failure // "none"')))"
echo
awk -v g="$GRPC_RATE" -v h="$HTTP_RATE" -v p="$stored_rate" -v hc="$HTTP_CPU" -v pc="$pcpu" 'BEGIN {
  if (p > 0) printf "ratio Stitch/Phoenix, stored spans/s: OTLP/HTTP %.1fx, OTLP/gRPC %.1fx\n", h / p, g / p
  if (pc + 0 > 0) printf "ratio Phoenix/Stitch, CPU per span (OTLP/HTTP): %.1fx\n", pc / hc
}'
