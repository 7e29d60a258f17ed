#!/usr/bin/env bash
# Soak test of the live dashboard at thousands of events per second: starts the whole system on
# its own ports (beside `make run` and scripts/browser-test.sh undisturbed), runs
# frontend/e2e/soak.mjs in headless Chromium, and stops everything on exit.
#
#   scripts/dashboard-soak.sh                       # 600 s over WebSocket at 1000 events/s
#   SOAK_SECONDS=120 SOAK_TRANSPORT=grpc-web scripts/dashboard-soak.sh
#
# Settings (environment): STOCK_RATE (400), SOCIAL_RATE (200), LOG_RATE (400);
# SOAK_SECONDS (600), SOAK_INTERVAL (30), SOAK_TRANSPORT (ws | grpc-web), SOAK_MIN_FPS (30),
# SOAK_MAX_LONG_TASK_MS (100; the longest task's CPU time, from a trace of the run: SOAK_TRACE=0
# checks its wall-clock length instead),
# SOAK_MAX_HEAP_GROWTH (0.5); BIN_DIR (target/release, built here unless SOAK_SKIP_BUILD=1);
# SOAK_BROKER_PORT (29192), SOAK_GATEWAY_PORT (28180), SOAK_DASHBOARD_PORT (23100).
# Logs of every piece: .artifacts/soak-run/*.log. Exit status: soak.mjs's (0 pass, 1 fail, 2 error).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export RUN_DIR=$ROOT/.artifacts/soak-run
export BIN_DIR=${BIN_DIR:-$ROOT/target/release}
export BROKER_PORT=${SOAK_BROKER_PORT:-29192} GATEWAY_PORT=${SOAK_GATEWAY_PORT:-28180} DASHBOARD_PORT=${SOAK_DASHBOARD_PORT:-23100}
export STOCK_RATE=${STOCK_RATE:-400} SOCIAL_RATE=${SOCIAL_RATE:-200} LOG_RATE=${LOG_RATE:-400}
stack=scripts/stack.sh

if [[ -z "${SOAK_SKIP_BUILD:-}" ]]; then
  if [[ $BIN_DIR == "$ROOT/target/release" ]]; then
    cargo build --release --workspace --bins --quiet
  elif [[ $BIN_DIR == "$ROOT/target/debug" ]]; then
    cargo build --workspace --bins --quiet
  fi
  scripts/build-dashboard.sh >/dev/null
fi
for bin in gateway stream-consumer stock-producer social-producer log-producer; do
  [[ -x $BIN_DIR/$bin ]] || { echo "no $BIN_DIR/$bin: build it first" >&2; exit 2; }
done

"$stack" stop-all 2>/dev/null || true
rm -rf "$RUN_DIR" && mkdir -p "$RUN_DIR"
trap '"$stack" stop-all' EXIT INT TERM
"$stack" start-all

echo "soak: producers at stock=$STOCK_RATE social=$SOCIAL_RATE logs=$LOG_RATE events/s; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
export DASHBOARD_URL=http://127.0.0.1:$DASHBOARD_PORT
export GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
status=0
node frontend/e2e/soak.mjs || status=$?
if ((status)); then
  for log in "$RUN_DIR"/*.log; do echo "== $log"; tail -n 20 "$log"; done >&2
fi
exit $status
