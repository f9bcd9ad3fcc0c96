#!/usr/bin/env bash
# Builds every fuzz target (stitch-propagation's header parsers, stitch-wire's span decoders,
# stitch-store's WAL segments and block metadata)
# and, when cargo-fuzz is installed,
# fuzzes each one for FUZZ_SECONDS seconds (default 10).
#
#   fuzz/check.sh               build on stable, then fuzz each target (needs cargo-fuzz)
#   fuzz/check.sh --build-only  only the stable build (what CI needs: the targets compile)
#   FUZZ_SECONDS=300 fuzz/check.sh traceparent   fuzz one target for longer
#
# cargo-fuzz passes nightly-only flags (-Z sanitizer=address, coverage instrumentation);
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them, so no nightly is needed.
set -euo pipefail
cd "$(dirname "$0")"

all_targets=(traceparent tracestate baggage b3_single b3_multi jaeger extract otlp_proto otlp_json zipkin jaeger_batch wal_segment block_meta)
build_only=0
targets=()
for arg in "$@"; do
    case "$arg" in
        --build-only) build_only=1 ;;
        -*) echo "fuzz/check.sh: unknown option $arg" >&2; exit 2 ;;
        *) targets+=("$arg") ;;
    esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all_targets[@]}")
fi
seconds="${FUZZ_SECONDS:-10}"

locked=()
if [[ -f Cargo.lock ]]; then
    locked=(--locked)
fi

echo "fuzz/check.sh: building the fuzz targets on the stable toolchain"
cargo build "${locked[@]}" --bins

if [[ $build_only -eq 1 ]]; then
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/check.sh: cargo-fuzz is not installed (cargo install cargo-fuzz); the targets were built, not fuzzed" >&2
    exit 0
fi

export RUSTC_BOOTSTRAP=1
cd ..
cargo fuzz build --fuzz-dir fuzz

# Seed each corpus with valid values so the fuzzer starts from deep inside the grammar.
seed() {
    local dir="fuzz/corpus/$1"
    shift
    mkdir -p "$dir"
    local i=0
    for value in "$@"; do
        printf '%s' "$value" >"$dir/seed-$i"
        i=$((i + 1))
    done
}
seed traceparent \
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
    'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future'
seed tracestate \
    'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' \
    'foo=1 \t , \t bar=2,t61@congo= v a l'
seed baggage \
    'key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue' \
    'userId=Am%C3%A9lie,serverNode=DF%2028'
seed b3_single \
    '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90' \
    '463ac35c9f6413ad-a2fb4a1d1a96d312-d' \
    '0'
seed b3_multi \
    $'80f198ee56343ba864fe8b2a57d3eff7\ne457b5a2e4d86bd1\n05e3ac9a4f6e3b90\n1\n0' \
    $'\n\n\n\n1'
seed jaeger \
    '80f198ee56343ba864fe8b2a57d3eff7:e457b5a2e4d86bd1:0:1' \
    'abc%3A1f%3A0%3A3'
seed otlp_json \
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"GET /","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}'
seed zipkin \
    '[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"00f067aa0ba902b7","name":"get","timestamp":1,"duration":2,"localEndpoint":{"serviceName":"a"},"tags":{"http.path":"/"}}]'
seed extract \
    $'traceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\ntracestate:a=1\nbaggage:k=v;p' \
    $'b3:463ac35c9f6413ad-a2fb4a1d1a96d312-1\nx-b3-traceid:463ac35c9f6413ad\nuber-trace-id:1:2:0:1\nuberctx-k:v'
# The small files of the kept blocks of formats 1 and 2, as block_meta reads its input.
mkdir -p fuzz/corpus/block_meta
for fixture in crates/stitch-store/tests/fixtures/block-*; do
    python3 - "$fixture" "fuzz/corpus/block_meta/seed-$(basename "$fixture")" <<'PY'
import pathlib, struct, sys
d = pathlib.Path(sys.argv[1])
meta, bloom = (d / "meta.json").read_bytes(), (d / "bloom.bin").read_bytes()
index = (d / "index.bin").read_bytes() if (d / "index.bin").exists() else b""
pathlib.Path(sys.argv[2]).write_bytes(struct.pack("<HH", len(meta), len(bloom)) + meta + bloom + index)
PY
done

for target in "${targets[@]}"; do
    echo "fuzz/check.sh: fuzzing $target for ${seconds}s"
    log="fuzz/target/fuzz-$target.log"
    if ! cargo fuzz run --fuzz-dir fuzz "$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz/check.sh: $target failed; the input that broke it is in fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" || true
done
echo "fuzz/check.sh: all targets built and fuzzed"
