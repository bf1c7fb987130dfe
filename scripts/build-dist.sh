#!/usr/bin/env bash
# Builds the Python distributions of astreinte-ari: the sdist, then the wheel
# FROM that sdist (python -m build without --sdist/--wheel), so a wheel that works
# also proves the sdist carries every data file.
#
#   scripts/build-dist.sh [OUTDIR]     (default dist/); prints the two paths
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
mkdir -p "$out"
py=.venv/bin/python
[ -x "$py" ] || py=python3
"$py" -m build -q --outdir "$out" . >&2
ls "$out"/astreinte_ari-*.tar.gz "$out"/astreinte_ari-*-py3-none-any.whl
