#!/usr/bin/env bash
# What astreinte-ari needs from Debian 12 (bookworm) to RUN, and nothing else:
# python3-venv for the service's virtualenv. Safe on a production PBX: it
# installs no Asterisk, starts and stops nothing. Idempotent.
#
#   scripts/install-system-deps.sh          runtime only (what scripts/bootstrap.sh runs)
#   scripts/install-system-deps.sh --demo   + the demo's phones: sipp, espeak-ng, sox
#                                           (the demo's Asterisk 22 is scripts/asterisk22.sh's)
# Test tooling (sipp, PostgreSQL, Chromium, Asterisk 16...) is scripts/install-test-deps.sh's.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ "${1:-}" = --demo ]; then
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || need+=(sox)
elif [ $# -gt 0 ]; then
  echo "install-system-deps: unknown option '$1' (--demo, or none)" >&2
  exit 2
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
