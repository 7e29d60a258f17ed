#!/usr/bin/env bash
# `make run`: the whole system on the embedded broker, dashboard at http://localhost:3000.
# Ctrl-C stops every process it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export RUN_DIR=${RUN_DIR:-$ROOT/.run}
stack=scripts/stack.sh
say() { printf '\033[1mstreamweaver:\033[0m %s\n' "$*" >&2; }

[[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]] || scripts/ensure-tansu.sh
say "building the services"
cargo build --workspace --bins ${CARGO_PROFILE:+--profile "$CARGO_PROFILE"}
[[ "${CARGO_PROFILE:-dev}" == dev ]] || export BIN_DIR=$ROOT/target/$CARGO_PROFILE
say "building the dashboard"
scripts/build-dashboard.sh

follower=
cleanup() {
  trap - EXIT INT TERM
  say "stopping"
  "$stack" stop-all
  [[ -z $follower ]] || kill "$follower" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR"/*.log
"$stack" start-all

gateway=localhost:${GATEWAY_PORT:-8080}
cat >&2 <<MSG

  StreamWeaver is running.
    dashboard   http://localhost:${DASHBOARD_PORT:-3000}
    grpcurl     grpcurl -plaintext -d '{}' $gateway streamweaver.v1.StreamService/Subscribe
    bars        grpcurl -plaintext -d '{"topics":["trade_bars"]}' $gateway streamweaver.v1.StreamService/Subscribe
    metrics     http://$gateway/metrics
    logs        $RUN_DIR/*.log (followed below)
  Ctrl-C stops everything.

MSG
# Follow every log until Ctrl-C; the trap then stops the processes.
tail -n +1 -q -F "$RUN_DIR"/*.log &
follower=$!
wait "$follower"
