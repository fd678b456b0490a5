#!/usr/bin/env bash
# The benchmark suite: one command, figures as ratios against a parse-only baseline measured in
# the same run. Usage: bash bench/run.sh [SIZES...]   (default: 100k 1m; RUNS=3 per figure)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins --examples --features unstable-bench
exec python3 bench/measure.py "$@"
