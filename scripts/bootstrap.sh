#!/usr/bin/env bash
# Sets up everything astreinte-ari needs on Debian 12: system packages
# (Asterisk 16 while Debian still serves it, sipp, PostgreSQL, espeak-ng, sox)
# and a Python venv in .venv with the package installed in editable mode.
# Asterisk 22 is scripts/asterisk22.sh's. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    echo "python3-venv missing: installing it"
    apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
echo "bootstrap: done ($(.venv/bin/python --version), $(asterisk -V 2>/dev/null || echo 'no system Asterisk'), $(sipp -v 2>&1 | grep -o 'v[0-9.]*' | head -1))"
