#!/usr/bin/env bash
# `make bench`: StreamWeaver's benchmarks (bench/): fan-out beside a bare baseline, memory per
# idle subscriber, end-to-end latency beside bare Kafka, and the consumer → gateway hop beside
# the original Python design. Optimised builds; loopback only; stops by itself; writes
# bench/results/<date>-<label>/report.md. Flags: `make bench BENCH_ARGS="--quick"`, or
# `scripts/bench.sh --help`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/ensure-tansu.sh
TANSU_BIN=$(scripts/ensure-tansu.sh --path)
export TANSU_BIN
cargo build --release --locked --quiet -p gateway -p streamweaver-bench
exec target/release/bench "$@"
