#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine or a developer's:
# installs what the tests need (scripts/install-test-deps.sh: test tooling, never
# on a production PBX), lints, then runs unit + end-to-end tests (a private
# Asterisk driven by sipp, SQLite and a private PostgreSQL) and the package
# tests (tests/packaging: the wheel in a fresh venv, the .deb in a clean root,
# real calls through both).
#
# Asterisk versions: the full suite runs on Asterisk 22 LTS (scripts/asterisk22.sh
# builds it, or unpacks its cached tree); a smoke subset (pytest -m smoke) runs
# first on the system's Asterisk 16 while Debian still serves it. The last line
# says which versions ran. A missing 22 fails the run; a missing 16 is reported
# loudly as "not run: <reason>".
#
#   scripts/test.sh                  everything (what CI runs)
#   scripts/test.sh tests/unit -x    these pytest arguments, on 22 only
#   ASTREINTE_TEST_SMOKE16=0 scripts/test.sh    skip the 16 smoke subset (reported)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
bash scripts/bootstrap.sh test
.venv/bin/ruff check astreinte_ari tests scripts bench setup.py
.venv/bin/ruff format --check astreinte_ari tests scripts bench setup.py

prefix22="$(bash scripts/asterisk22.sh)"
v22="$("$prefix22/sbin/asterisk" -V | awk '{print $2}')"
[[ "$v22" == 22.* ]] || { echo "test.sh: $prefix22 is Asterisk '$v22', not 22" >&2; exit 1; }

run_pytest() { .venv/bin/python -m pytest -q -p no:cacheprovider --durations=30 "$@"; }
loud() {
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "!!! $*"
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
}

# The 16 smoke subset first: the full suite's pytest summary then closes the output.
rc16=0
if [ $# -gt 0 ]; then
  smoke16="16 (smoke) not run: a test selection was given"
elif [ "${ASTREINTE_TEST_SMOKE16:-1}" = 0 ]; then
  smoke16="16 (smoke) not run: ASTREINTE_TEST_SMOKE16=0"
  loud "Asterisk 16 smoke subset skipped on request (ASTREINTE_TEST_SMOKE16=0)"
elif ! command -v asterisk >/dev/null 2>&1; then
  reason="$(cat var/asterisk16.status 2>/dev/null || echo "no system Asterisk 16 installed")"
  smoke16="16 (smoke) not run: $reason"
  loud "Asterisk 16 NOT TESTED: $reason"
else
  v16="$(asterisk -V | awk '{print $2}' | sed 's/[~+].*//')"
  echo "=== Asterisk $v16 (system asterisk): smoke subset (-m 'smoke and not postgres')"
  ASTREINTE_ASTERISK_PREFIX="" run_pytest -m "smoke and not postgres" || rc16=$?
  if [ "$rc16" -eq 0 ]; then smoke16="$v16 (smoke)"; else smoke16="$v16 (smoke: FAILED, exit $rc16)"; fi
fi

echo "=== Asterisk $v22 ($prefix22): full suite"
rc22=0
ASTREINTE_ASTERISK_PREFIX="$prefix22" run_pytest "$@" || rc22=$?
full22="$v22 (full)"
[ "$rc22" -eq 0 ] || full22="$v22 (full: FAILED, exit $rc22)"
echo "Asterisk versions tested: $full22, $smoke16"
[ "$rc22" -eq 0 ] && [ "$rc16" -eq 0 ]
