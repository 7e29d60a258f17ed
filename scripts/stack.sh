#!/usr/bin/env bash
# Starts and stops the pieces of a local StreamWeaver, each as a background process with a pid
# file and a log under $RUN_DIR. `make run` and the browser test are built from these commands.
#
#   scripts/stack.sh start-all | start-broker | start-gateway | start-consumer | start-producers
#                    start-trade-bars | start-dashboard | stop NAME | stop-all | wait-port PORT
#
# Settings (environment): RUN_DIR (.run), BIN_DIR (target/debug), BROKER_PORT (9092),
# KAFKA_BOOTSTRAP_SERVERS (an external Kafka: no broker is started), BROKER_STORAGE
# (memory://tansu/ or sqlite://FILE), GATEWAY_PORT (8080), DASHBOARD_PORT (3000),
# STREAMWEAVER_PUBLISH_TOKEN, STOCK_RATE, SOCIAL_RATE, LOG_RATE (events per second).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${RUN_DIR:-$ROOT/.run}
BIN_DIR=${BIN_DIR:-$ROOT/target/debug}
BROKER_PORT=${BROKER_PORT:-9092}
BROKER_STORAGE=${BROKER_STORAGE:-memory://tansu/}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
DASHBOARD_PORT=${DASHBOARD_PORT:-3000}
BOOTSTRAP=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$BROKER_PORT}
TOKEN_FILE=$RUN_DIR/publish-token
mkdir -p "$RUN_DIR"

# One token per run, shared by the gateway and the consumer, unless one is given.
if [[ -z "${STREAMWEAVER_PUBLISH_TOKEN:-}" ]]; then
  [[ -s $TOKEN_FILE ]] || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$TOKEN_FILE"
  STREAMWEAVER_PUBLISH_TOKEN=$(cat "$TOKEN_FILE")
fi
export STREAMWEAVER_PUBLISH_TOKEN

say() { printf '\033[1mstreamweaver:\033[0m %s\n' "$*" >&2; }

# alive PID: running, and not a zombie waiting for whoever adopted it to reap it.
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

# start NAME COMMAND...: runs COMMAND in the background, logging to $RUN_DIR/NAME.log.
start() {
  local name=$1; shift
  if [[ -s $RUN_DIR/$name.pid ]] && alive "$(cat "$RUN_DIR/$name.pid")"; then
    say "$name is already running"
    return
  fi
  # A session of its own: Ctrl-C in the terminal reaches only `make run`, whose trap then stops
  # the pieces in order (producers first, the broker last) instead of all at once.
  setsid "$@" >>"$RUN_DIR/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" > "$RUN_DIR/$name.pid"
  # A bad flag or a missing binary ends it at once: say so here, not in a silent log.
  sleep 0.2
  if ! alive "$pid"; then
    say "$name did not start; the end of $RUN_DIR/$name.log:"
    tail -n 20 "$RUN_DIR/$name.log" >&2
    rm -f "$RUN_DIR/$name.pid"
    return 1
  fi
}

# stop NAME: SIGTERM, then SIGKILL after 10 s.
stop() {
  local name=$1 pid
  [[ -s $RUN_DIR/$name.pid ]] || return 0
  pid=$(cat "$RUN_DIR/$name.pid")
  rm -f "$RUN_DIR/$name.pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 200); do
    alive "$pid" || return 0
    sleep 0.05
  done
  say "$name did not stop in 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

wait_port() {
  local port=$1
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  say "nothing listens on port $port after 30 s"
  return 1
}

case "${1:-}" in
  start-all)
    for piece in broker gateway consumer producers trade-bars dashboard; do
      "$0" "start-$piece"
    done ;;
  start-broker)
    if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
      say "using the Kafka at $KAFKA_BOOTSTRAP_SERVERS"
    else
      "$ROOT/scripts/ensure-tansu.sh"
      url=tcp://127.0.0.1:$BROKER_PORT
      start broker "$("$ROOT/scripts/ensure-tansu.sh" --path)" broker \
        --listener-url "$url" --advertised-listener-url "$url" --storage-engine "$BROKER_STORAGE"
      wait_port "$BROKER_PORT"
    fi ;;
  start-gateway)
    start gateway "$BIN_DIR/gateway" --listen "127.0.0.1:$GATEWAY_PORT" \
      --kafka-bootstrap-servers "$BOOTSTRAP" --replay-fetch-wait-max-ms 5 \
      --allowed-origins "http://localhost:$DASHBOARD_PORT,http://127.0.0.1:$DASHBOARD_PORT"
    wait_port "$GATEWAY_PORT" ;;
  start-consumer)
    start stream-consumer "$BIN_DIR/stream-consumer" --bootstrap-servers "$BOOTSTRAP" \
      --gateway-url "http://127.0.0.1:$GATEWAY_PORT" --fetch-wait-max-ms 5 \
      --group-instance-id stream-consumer-0 ;;
  start-producers)
    start stock-producer "$BIN_DIR/stock-producer" --bootstrap-servers "$BOOTSTRAP" --rate "${STOCK_RATE:-20}"
    start social-producer "$BIN_DIR/social-producer" --bootstrap-servers "$BOOTSTRAP" --rate "${SOCIAL_RATE:-4}"
    start log-producer "$BIN_DIR/log-producer" --bootstrap-servers "$BOOTSTRAP" --rate "${LOG_RATE:-25}" ;;
  start-trade-bars)
    start trade-bars "$BIN_DIR/trade-bars" --bootstrap-servers "$BOOTSTRAP" \
      --gateway-url "http://127.0.0.1:$GATEWAY_PORT" ;;
  start-dashboard)
    start dashboard "$ROOT/frontend/node_modules/.bin/vite" preview --config "$ROOT/frontend/vite.config.ts" \
      "$ROOT/frontend" --host 127.0.0.1 --port "$DASHBOARD_PORT" --strictPort
    wait_port "$DASHBOARD_PORT" ;;
  stop) stop "$2" ;;
  stop-all)
    # Producers first and the broker last, so nothing in flight is cut off.
    for name in dashboard stock-producer social-producer log-producer trade-bars stream-consumer \
      gateway broker; do
      stop "$name"
    done ;;
  wait-port) wait_port "$2" ;;
  *) sed -n '2,12p' "$0" >&2; exit 64 ;;
esac
