#!/usr/bin/env bash
# Resident bytes per span held by the tail sampler while traces wait for their decision
# (counting allocator; shop and large-attribute presets, spans arriving per service).
#
#   bench/tail_memory.sh [TRACES]       # default 5000 traces per preset
source "$(dirname "$0")/lib.sh"
build
machine
"$BIN/tail_memory" "${1:-5000}"
