#!/usr/bin/env bash
# Installs the dashboard's npm packages when package-lock.json changed, then builds it into
# frontend/dist (code generated from proto/ by buf first). --deps-only stops after installing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../frontend"
stamp=node_modules/.package-lock.json
if [[ ! -f $stamp || package-lock.json -nt $stamp ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
[[ "${1:-}" == --deps-only ]] && exit 0
npm run build --silent
