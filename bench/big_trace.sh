#!/usr/bin/env bash
# What one very large trace costs to answer: a release `stitch serve` receives one trace of
# SPANS spans (default 300,000, over OTLP/HTTP JSON in requests of 10,000), then each API that
# returns a whole trace is asked for it once, each of a freshly started server on the same data.
# For each: the answer's size, the time to read it all, the server's RSS before the request and
# its peak during it (reset before the request through /proc/PID/clear_refs).
#
# Most of the peak is reading the trace (the same for every answer); run it with the builds
# before and after a change (STITCH_BENCH_BIN) to see what the answers themselves cost.
#
#   bench/big_trace.sh [SPANS]
source "$(dirname "$0")/lib.sh"
SPANS=${1:-300000}
build
machine
start_stitch big
python3 - "${ADDR[otlp-http]}" "$SPANS" <<'PY'
import json, sys, urllib.request
addr, total = sys.argv[1], int(sys.argv[2])
trace_id = "5" * 32
base = 1_700_000_000_000_000_000
per_request = 10_000
for first in range(0, total, per_request):
    spans = []
    for n in range(first, min(total, first + per_request)):
        spans.append({
            "traceId": trace_id,
            "spanId": f"{n + 1:016x}",
            "parentSpanId": f"{n // 8 + 1:016x}" if n else "",
            "name": f"SELECT item {n % 50}",
            "kind": 3,
            "startTimeUnixNano": str(base + n * 1000),
            "endTimeUnixNano": str(base + n * 1000 + 800),
            "attributes": [
                {"key": "db.system", "value": {"stringValue": "postgresql"}},
                {"key": "db.statement", "value": {"stringValue": f"SELECT * FROM items WHERE id = {n}"}},
                {"key": "item.index", "value": {"intValue": str(n)}},
            ],
        })
    doc = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"svc-{first // per_request % 8}"}}]},
        "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
    }]}
    req = urllib.request.Request(f"http://{addr}/v1/traces", data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PY
stop_stitch
id=$(printf '5%.0s' $(seq 1 32))
echo "one trace of $SPANS spans; for each answer a fresh server on the same data (the trace read"
echo "from the store), RSS before the request, the peak during it"
printf '| %-28s | %11s | %7s | %9s | %9s |\n' answer bytes seconds "RSS before" "peak"
for answer in "query /api/traces/$id" "query /api/v1/traces/$id" "query /api/v3/traces/$id" \
    "zipkin /api/v2/trace/$id" "tempo /api/traces/$id" "tempo /api/v2/traces/$id"; do
  read -r port path <<<"$answer"
  start_stitch big
  before=$(rss_mb "$STITCH_PID")
  echo 5 >"/proc/$STITCH_PID/clear_refs"
  read -r code size seconds < <(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' "http://${ADDR[$port]}$path")
  [ "$code" = 200 ] || { echo "$path answered $code" >&2; exit 1; }
  printf '| %-28s | %11s | %7s | %7s MB | %6s MB |\n' "$port ${path%/*}/{id}" "$size" "$seconds" "$before" "$(peak_rss_mb "$STITCH_PID")"
  stop_stitch
done
