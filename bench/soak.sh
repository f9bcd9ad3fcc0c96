#!/usr/bin/env bash
# Memory under steady load: a release `stitch serve` (fsync on, default config) takes
# `stitch loadgen` (shop preset, OTLP/gRPC, 4 connections) at RATE spans/s for DURATION; the
# server's RSS, CPU and the live aggregates' backlog (`stitch_live_waiting_traces`) are sampled
# every 10 s during the load and for AFTER seconds after it.
# Prints the curve as a table (one row a minute) and the verdict the issue asks for: RSS at the
# end of the load within 20% of its level at 5 minutes.
#
#   bench/soak.sh           # RATE=65000 (half of the OTLP/gRPC saturation in bench/ingest.sh)
#                           # DURATION=60m AFTER=120
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-65000}
DURATION=${DURATION:-60m}
AFTER=${AFTER:-120}
build
machine
start_stitch soak
echo "load: stitch loadgen --protocol otlp-grpc --preset shop --connections 4 --rate $RATE --duration $DURATION"
"$BIN/stitch" loadgen --protocol otlp-grpc --endpoint "${ADDR[otlp-grpc]}" --rate "$RATE" \
  --duration "$DURATION" --connections 4 --json --quiet >"$WORK/soak.json" &
LOADGEN=$!
STARTED_PIDS+=("$LOADGEN")
samples="$WORK/rss.tsv"
: >"$samples"
start=$(date +%s)
sample() {
  local waiting
  waiting=$(curl -s "http://${ADDR[query]}/metrics" | awk '/^stitch_live_waiting_traces /{print $2}')
  printf '%s\t%s\t%s\t%s\n' "$(($(date +%s) - start))" "$(rss_mb "$STITCH_PID")" \
    "$(cpu_seconds "$STITCH_PID")" "${waiting:-?}" >>"$samples"
}
while kill -0 "$LOADGEN" 2>/dev/null; do
  sample
  sleep 10
done
wait "$LOADGEN" || echo "the load generator failed: $(cat "$WORK/soak.json")"
load_end=$(($(date +%s) - start))
for _ in $(seq 1 $((AFTER / 10))); do
  sleep 10
  sample
done
machine
echo
echo "| minute | RSS MB | server CPU s | traces the live aggregates have yet to add |"
echo "|---|---|---|---|"
awk -F'\t' '$1 % 60 < 10 { printf "| %d | %s | %s | %s |\n", $1 / 60, $2, $3, $4 }' "$samples"
echo
spans=$(json "$WORK/soak.json" .spans 2>/dev/null || echo "?")
echo "spans acknowledged: $spans; failed requests: $(json "$WORK/soak.json" .failed_requests 2>/dev/null || echo "?")"
awk -F'\t' -v end="$load_end" '
  $1 >= 300 && at5 == "" { at5 = $2 }
  $1 <= end { last = $2 }
  { if ($2 > max) max = $2; after = $2 }
  END {
    printf "RSS at 5 min %s MB, at the end of the load %s MB (%.0f%% of the 5-min level), peak %s MB, after the load %s MB\n",
      at5, last, last / at5 * 100, max, after
    print (last <= at5 * 1.2 ? "verdict: flat (within 20% of the 5-min level)" : "verdict: growing (over 20% above the 5-min level)")
  }' "$samples"
stop_stitch
