#!/usr/bin/env bash
# Resident bytes per span held by the tail sampler while traces wait for their decision.
#
# 1. In-process (counting allocator, bytes requested): the records the server buffers
#    (compact) and whole decoded spans, shop and large-attribute presets, spans arriving per
#    service.
# 2. In the server: RSS of `stitch serve` (seed preset, nothing decided during the run) before
#    and after `stitch loadgen` sends SPANS shop spans, divided by the spans buffered.
#
#   bench/tail_memory.sh [TRACES] [SPANS]   # defaults: 5000 traces per preset, 1000000 spans
source "$(dirname "$0")/lib.sh"
build
machine
"$BIN/tail_memory" "${1:-5000}"

spans=${2:-1000000}
cat >"$WORK/hold.yaml" <<'YAML'
sampling:
  preset: seed
  decision_wait: 10m
  decision_wait_after_root: 10m
  max_buffered_bytes: 8GiB
YAML
start_stitch hold --config "$WORK/hold.yaml"
sleep 1
before=$(rss_mb "$STITCH_PID")
"$BIN/stitch" loadgen --protocol otlp-grpc --endpoint "${ADDR[otlp-grpc]}" --connections 4 \
  --spans "$spans" --quiet --json >"$WORK/hold.json"
sleep 3
after=$(rss_mb "$STITCH_PID")
buffered=$(curl -sf "http://${ADDR[query]}/api/v1/sampling" | jq -r '.tail.buffered_spans')
estimate=$(curl -sf "http://${ADDR[query]}/api/v1/sampling" | jq -r '.tail.buffered_bytes')
echo "server: $buffered spans buffered; RSS $before MB -> $after MB:" \
  "$(awk -v a="$after" -v b="$before" -v n="$buffered" 'BEGIN { printf "%.0f", (a - b) * 1048576 / n }') B per buffered span" \
  "(sampler's estimate $(awk -v e="$estimate" -v n="$buffered" 'BEGIN { printf "%.0f", e / n }') B)"
stop_stitch
