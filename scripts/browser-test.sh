#!/usr/bin/env bash
# The dashboard in a real headless Chromium against the whole running system on the embedded
# broker (its own ports, so a `make run` beside it is undisturbed). Screenshot: .artifacts/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export RUN_DIR=$ROOT/.artifacts/browser-run
export BROKER_PORT=${E2E_BROKER_PORT:-19092} GATEWAY_PORT=${E2E_GATEWAY_PORT:-18080} DASHBOARD_PORT=${E2E_DASHBOARD_PORT:-13000}
export STOCK_RATE=${STOCK_RATE:-40} SOCIAL_RATE=${SOCIAL_RATE:-10} LOG_RATE=${LOG_RATE:-60}
stack=scripts/stack.sh
# `cargo test` builds only the binaries its tests run; the stack needs all five.
cargo build --workspace --bins --locked --quiet

"$stack" stop-all 2>/dev/null || true
rm -rf "$RUN_DIR" && mkdir -p "$RUN_DIR"
trap '"$stack" stop-all' EXIT INT TERM
"$stack" start-all

export DASHBOARD_URL=http://127.0.0.1:$DASHBOARD_PORT
export GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
export GATEWAY_STOP_CMD="$ROOT/$stack stop gateway"
export GATEWAY_START_CMD="$ROOT/$stack start-gateway"
export ARTIFACTS_DIR=$ROOT/.artifacts
status=0
node --test frontend/e2e/ || status=$?
if ((status)); then
  for log in "$RUN_DIR"/*.log; do echo "== $log"; tail -n 20 "$log"; done >&2
fi
exit $status
