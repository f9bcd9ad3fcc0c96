#!/usr/bin/env bash
# Query latency with a large store: fills a data directory with SPANS shop-preset spans
# (default 10M) spread over the last 24 h (fill_store: through the store, default head size,
# fsync off), serves it with a release `stitch serve`, and measures as a client: trace by id
# (1,000 lookups over ids spread across the whole fill), Jaeger searches over 24 h by service +
# duration and by attribute, and TraceQL searches (`/api/v1/search`): one rare value of a
# high-cardinality attribute (`app.user.id`, a million users, on every root span), `{ status =
# error }`, and two structural queries. Also the server's RSS once open on the filled store,
# and after the queries.
#
#   bench/query.sh                      # SPANS=10000000
#   SPANS=100000000 bench/query.sh      # the optional long run (~30 min, ~3 GB of blocks)
source "$(dirname "$0")/lib.sh"
SPANS=${SPANS:-10000000}
build
machine
echo "\$ fill_store --spans $SPANS --spread 24h --user-ids 1000000"
"$BIN/fill_store" --data-dir "$WORK/filled" --spans "$SPANS" --spread 24h --user-ids 1000000 \
  --ids-out "$WORK/ids.txt" 2>"$WORK/fill.log"
t0=$(date +%s%N)
start_stitch filled
echo "stitch serve on the filled store: ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms; RSS $(rss_mb "$STITCH_PID") MB"
sleep 5
echo "idle RSS after 5 s: $(rss_mb "$STITCH_PID") MB"
machine
echo "\$ query_latency --lookups 1000 --searches 20 --search-budget 40s --lookback 24h"
"$BIN/query_latency" --query "http://${ADDR[query]}" --ids "$WORK/ids.txt" --lookups 1000 --searches 20 --search-budget 40s --lookback 24h
echo "server RSS after the queries: $(rss_mb "$STITCH_PID") MB (peak $(peak_rss_mb "$STITCH_PID") MB)"
stop_stitch
