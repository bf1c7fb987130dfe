#!/usr/bin/env bash
# A Python venv in .venv with astreinte-ari installed in editable mode, and the
# runtime system packages (scripts/install-system-deps.sh: python3-venv only;
# it never touches an Asterisk). Idempotent.
#
#   scripts/bootstrap.sh          runtime: pip install -e .
#   scripts/bootstrap.sh test     + the test extras (scripts/test.sh; its system
#                                 tooling is scripts/install-test-deps.sh's)
#   scripts/bootstrap.sh demo     + sipp/espeak-ng/sox for the demo's phones
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
case "$mode" in
  "" | test) bash scripts/install-system-deps.sh ;;
  demo) bash scripts/install-system-deps.sh --demo ;;
  *) echo "bootstrap: unknown mode '$mode' (test, demo, or none)" >&2; exit 2 ;;
esac

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$mode" = test ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "bootstrap: done ($(.venv/bin/python --version)${mode:+, with $mode tooling})"
