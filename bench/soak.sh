#!/usr/bin/env bash
# Memory under steady load: a release `stitch serve` (fsync on, default config) takes
# `stitch loadgen` (shop preset, OTLP/gRPC, 4 connections) at RATE spans/s for DURATION; the
# server's RSS, CPU, the live aggregates' backlog (`stitch_live_waiting_traces`) and what the
# store holds in memory per block (filters; Parquet footers loaded by reads) are sampled every
# 10 s during the load and for AFTER seconds after it.
# Prints the curve as a table (one row a minute) and the verdict the issue asks for: RSS at the
# end of the load within 20% of its level at 5 minutes (each level the mean of a minute's samples).
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
  local metrics
  metrics=$(curl -s "http://${ADDR[query]}/metrics")
  metric() { awk -v m="$1" -v div="${2:-1}" '$1 == m { printf "%.0f", $2 / div }' <<<"$metrics"; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(($(date +%s) - start))" "$(rss_mb "$STITCH_PID")" \
    "$(cpu_seconds "$STITCH_PID")" "$(metric stitch_live_waiting_traces)" \
    "$(metric stitch_store_blocks)" "$(metric stitch_store_block_filter_bytes 1048576)" \
    "$(metric stitch_store_block_footer_bytes 1048576)" >>"$samples"
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
echo "| minute | RSS MB, mean | RSS MB, max | server CPU s | traces the live aggregates have yet to add | blocks | block filters MB | Parquet footers MB |"
echo "|---|---|---|---|---|---|---|---|"
# One row per minute: RSS mean and max over its samples, the rest as at its last sample.
awk -F'\t' '
  function row() { printf "| %d | %.0f | %.0f | %s | %s | %s | %s | %s |\n", m, sum / n, max, cpu, w, b, f, p }
  { mm = int($1 / 60); if (n && mm != m) { row(); sum = 0; n = 0; max = 0 }
    m = mm; sum += $2; n++; if ($2 > max) max = $2; cpu = $3; w = $4; b = $5; f = $6; p = $7 }
  END { if (n) row() }' "$samples"
echo
spans=$(json "$WORK/soak.json" .spans 2>/dev/null || echo "?")
echo "spans acknowledged: $spans; failed requests: $(json "$WORK/soak.json" .failed_requests 2>/dev/null || echo "?")"
# The level at a time is the mean of the samples of one minute (the allocator returns memory
# to the system in steps, so single samples swing by a few hundred MB): minute 5 against the
# last minute of the load.
awk -F'\t' -v end="$load_end" '
  $1 >= 300 && $1 < 360 { s5 += $2; n5++ }
  $1 > end - 60 && $1 <= end { sl += $2; nl++ }
  { if ($2 > max) max = $2; after = $2 }
  END {
    at5 = s5 / n5; last = sl / nl
    printf "RSS in minute 5 %.0f MB (mean), in the last minute of the load %.0f MB (%.0f%% of the 5-min level), peak %s MB, after the load %s MB\n",
      at5, last, last / at5 * 100, max, after
    print (last <= at5 * 1.2 ? "verdict: flat (within 20% of the 5-min level)" : "verdict: growing (over 20% above the 5-min level)")
  }' "$samples"
stop_stitch
