#!/usr/bin/env bash
# Installs the system packages astreinte-ari needs on Debian 12 (bookworm):
# Asterisk 16 from Debian 11's security suite (bookworm ships no asterisk),
# sipp for SIP tests, PostgreSQL, espeak-ng + sox for the prompts.
# Idempotent: safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_pkgs=()
command -v asterisk >/dev/null 2>&1 || need_pkgs+=(asterisk asterisk-modules)
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql)
command -v espeak-ng >/dev/null 2>&1 || need_pkgs+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox)
# alert tests: a throw-away certificate for the local SMTP server's STARTTLS
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# headless browser: the HTML report test renders it and checks the charts
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)

if [ ${#need_pkgs[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

# Use the same mirror host as the machine's own Debian source.
mirror_host="$(grep -rhoE 'https?://[^ /]+/debian' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -v security | head -n1 | sed -E 's#(https?://[^/]+)/debian#\1#' || true)"
mirror_host="${mirror_host:-http://deb.debian.org}"
bullseye_list=/etc/apt/sources.list.d/astreinte-bullseye-security.list
if [[ " ${need_pkgs[*]} " == *" asterisk "* ]] && [ ! -f "$bullseye_list" ]; then
  echo "deb ${mirror_host}/debian-security bullseye-security main" | $SUDO tee "$bullseye_list" >/dev/null
  # bookworm stays the default; bullseye only supplies what bookworm lacks.
  printf 'Package: *\nPin: release n=bullseye-security\nPin-Priority: 100\n' \
    | $SUDO tee /etc/apt/preferences.d/astreinte-bullseye >/dev/null
fi

echo "installing: ${need_pkgs[*]}"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o APT::Default-Release=bookworm "${need_pkgs[@]}"
# The Debian package starts a system-wide Asterisk; the project runs its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet asterisk 2>/dev/null; then
  $SUDO systemctl stop asterisk || true
fi
