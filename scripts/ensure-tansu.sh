#!/usr/bin/env bash
# Makes sure the embedded broker, tansu at the pinned version, is installed (a one-time build of
# about 13 minutes). With --path, prints the binary's path instead of talking.
set -euo pipefail
VERSION=0.6.0
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
binary=$CARGO_HOME/bin/tansu
if [[ ! -x $binary ]] || [[ "$("$binary" --version 2>/dev/null)" != "tansu $VERSION" ]]; then
  echo "streamweaver: building the embedded broker, tansu $VERSION (once, about 13 minutes)" >&2
  cargo install tansu --version "$VERSION" --features dynostore,libsql --locked >&2
fi
if [[ "${1:-}" == --path ]]; then
  echo "$binary"
fi
