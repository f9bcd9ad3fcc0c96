#!/usr/bin/env bash
# Storage efficiency: bytes per span on disk after a flush (data.parquet + bloom.bin +
# meta.json), for the shop preset and the large-attribute preset, against the same spans as
# OTLP protobuf and as OTLP protobuf + zstd level 3 per batch of 100 traces.
#
#   bench/storage.sh            # SHOP_TRACES=20000 LARGE_TRACES=5000
source "$(dirname "$0")/lib.sh"
build
machine
for case in "shop ${SHOP_TRACES:-20000}" "large-attributes ${LARGE_TRACES:-5000}"; do
  set -- $case
  echo "\$ disk_usage --preset $1 $2"
  "$BIN/disk_usage" --preset "$1" "$2"
  echo
done
