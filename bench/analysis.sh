#!/usr/bin/env bash
# Analysis time of very large traces: criterion bench `analysis` (stitch_analysis::analyze on
# one trace of 10,000 and of 100,000 spans; target <= 50 ms for 100K).
#
#   bench/analysis.sh
source "$(dirname "$0")/lib.sh"
machine
cd "$ROOT"
# The bench's name, then its time and throughput (not criterion's comparison with the last run).
cargo bench -q -p stitch-bench --bench analysis 2>&1 |
  awk '/^analysis\// { print; n = 2; next } n > 0 && /time:|thrpt:/ { print; n-- }'
