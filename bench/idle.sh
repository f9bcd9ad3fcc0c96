#!/usr/bin/env bash
# Idle RSS of `stitch serve` on an empty data directory, 10 s after start (every listener up,
# nothing received).
#
#   bench/idle.sh
source "$(dirname "$0")/lib.sh"
build
machine
start_stitch idle
sleep 10
echo "stitch serve, empty store, idle 10 s: RSS $(rss_mb "$STITCH_PID") MB (peak $(peak_rss_mb "$STITCH_PID") MB)"
stop_stitch
