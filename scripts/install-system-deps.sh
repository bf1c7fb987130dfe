#!/usr/bin/env bash
# Installs the system packages astreinte-ari needs on Debian 12 (bookworm):
# Asterisk 16 from Debian 11's security suite (bookworm ships no asterisk;
# Asterisk 22 comes from scripts/asterisk22.sh), sipp for SIP tests,
# PostgreSQL, espeak-ng + sox for the prompts. Idempotent: safe to run again.
#
# Asterisk 16 is optional (CI runs a smoke subset on it): if Debian no longer
# serves it, this says so loudly, writes the reason to $ASTERISK16_STATUS
# (default var/asterisk16.status) and goes on.
set -euo pipefail
status_file="${ASTERISK16_STATUS:-$(cd "$(dirname "$0")/.." && pwd)/var/asterisk16.status}"
mkdir -p "$(dirname "$status_file")"
rm -f "$status_file"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_pkgs=()
want_asterisk16=0
command -v asterisk >/dev/null 2>&1 || want_asterisk16=1
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql)
command -v espeak-ng >/dev/null 2>&1 || need_pkgs+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox)
# alert tests: a throw-away certificate for the local SMTP server's STARTTLS
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# headless browser: the HTML report test renders it and checks the charts
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)

if [ ${#need_pkgs[@]} -eq 0 ] && [ "$want_asterisk16" -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

# Use the same mirror host as the machine's own Debian source.
mirror_host="$(grep -rhoE 'https?://[^ /]+/debian' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -v security | head -n1 | sed -E 's#(https?://[^/]+)/debian#\1#' || true)"
mirror_host="${mirror_host:-http://deb.debian.org}"
bullseye_list=/etc/apt/sources.list.d/astreinte-bullseye-security.list
if [ "$want_asterisk16" -eq 1 ] && [ ! -f "$bullseye_list" ]; then
  echo "deb ${mirror_host}/debian-security bullseye-security main" | $SUDO tee "$bullseye_list" >/dev/null
  # bookworm stays the default; bullseye only supplies what bookworm lacks.
  printf 'Package: *\nPin: release n=bullseye-security\nPin-Priority: 100\n' \
    | $SUDO tee /etc/apt/preferences.d/astreinte-bullseye >/dev/null
fi

if ! $SUDO apt-get update -qq; then
  # Once bullseye-security moves to the archive its source fails the update:
  # drop this script's own source so bookworm's packages still install.
  [ -f "$bullseye_list" ] || exit 1
  echo "apt-get update failed with $bullseye_list: removing it" >&2
  $SUDO rm -f "$bullseye_list" /etc/apt/preferences.d/astreinte-bullseye
  $SUDO apt-get update -qq
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing: ${need_pkgs[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o APT::Default-Release=bookworm "${need_pkgs[@]}"
fi
if [ "$want_asterisk16" -eq 1 ]; then
  echo "installing: asterisk asterisk-modules (16, from bullseye-security)"
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o APT::Default-Release=bookworm asterisk asterisk-modules; then
    reason="Debian no longer serves Asterisk 16 (apt-get install asterisk from bullseye-security failed)"
    echo "$reason" >"$status_file"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! WARNING: $reason" >&2
    echo "!!! Asterisk 16 will NOT be tested; Asterisk 22 (scripts/asterisk22.sh) still is." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  fi
fi
# The Debian package starts a system-wide Asterisk; the project runs its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet asterisk 2>/dev/null; then
  $SUDO systemctl stop asterisk || true
fi
