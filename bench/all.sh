#!/usr/bin/env bash
# Every benchmark in turn (about 10 minutes on 2 cores; more with --phoenix the first time,
# which installs Phoenix from PyPI). Figures go to stdout; record them in BENCHMARKS.md.
#
#   bench/all.sh [--phoenix]
set -euo pipefail
dir=$(dirname "$0")
(cd "$dir/.." && cargo build --release -q -p stitch -p stitch-bench --bins)
export STITCH_BENCH_NO_BUILD=1
for b in idle storage tail_memory analysis query; do
  echo "=== bench/$b.sh"
  "$dir/$b.sh"
  echo
done
echo "=== bench/ingest.sh $*"
"$dir/ingest.sh" "$@"
