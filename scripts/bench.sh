#!/usr/bin/env bash
# `make bench`: StreamWeaver against the seed's HTTP-POST-per-message design, and the whole
# pipeline on the embedded broker. Optimised build; loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/ensure-tansu.sh
TANSU_BIN=$(scripts/ensure-tansu.sh --path)
export TANSU_BIN
cargo run --release --locked --quiet -p streamweaver-e2e --bin bench -- "$@"
