#!/usr/bin/env bash
# Test tooling for scripts/test.sh on Debian 12 (bookworm) -- a developer's or
# CI's machine, never a production PBX: sipp, PostgreSQL (tests start their own
# private server), espeak-ng + sox, openssl, Chromium (HTML report test),
# debootstrap (the .deb test's clean root), Kamailio + iproute2 (the cluster
# test: tests/e2e/test_cluster.py, network namespaces), and Asterisk 16 from
# Debian 11's security suite for the smoke subset (Asterisk 22 is scripts/asterisk22.sh's).
# Idempotent.
#
# Nothing of the host changes beyond the packages: Asterisk 16's, PostgreSQL's
# and Kamailio's system services are neither started nor enabled by the install
# (a temporary policy-rc.d refuses the start; the units of packages installed
# here are disabled). A service that was there before is left as it was.
#
# Asterisk 16 is optional: if Debian no longer serves it, this says so loudly,
# writes the reason to $ASTERISK16_STATUS (default var/asterisk16.status) and goes on.
set -euo pipefail
status_file="${ASTERISK16_STATUS:-$(cd "$(dirname "$0")/.." && pwd)/var/asterisk16.status}"
mkdir -p "$(dirname "$status_file")"
rm -f "$status_file"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
want_asterisk16=0
command -v asterisk >/dev/null 2>&1 || want_asterisk16=1
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql)
command -v espeak-ng >/dev/null 2>&1 || need_pkgs+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl) # SMTP STARTTLS test certificate
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v kamailio >/dev/null 2>&1 || need_pkgs+=(kamailio) # its kamcmd comes with it
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)

if [ ${#need_pkgs[@]} -eq 0 ] && [ "$want_asterisk16" -eq 0 ]; then
  echo "test packages: all present"
  exit 0
fi

# No service of a package installed here starts: invoke-rc.d / deb-systemd-invoke
# ask policy-rc.d, and 101 means "not allowed". An admin's own policy-rc.d is kept.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# scripts/install-test-deps.sh: no service starts during its install\nexit 101\n' \
    | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  own_policy=1
fi
cleanup() { [ "$own_policy" -eq 0 ] || $SUDO rm -f "$policy"; }
trap cleanup EXIT

# Only the units of packages this run installs are disabled afterwards.
# deb-systemd-helper refuses outside a maintainer script ("not called from dpkg"),
# so: systemctl (works without a running systemd), else the symlinks themselves.
disable_units_of() { # unit...
  local unit
  for unit in "$@"; do
    if command -v systemctl >/dev/null 2>&1; then
      $SUDO systemctl disable "$unit.service" >/dev/null 2>&1 || true
    fi
    $SUDO rm -f /etc/systemd/system/*.wants/"$unit.service"
    [ -x "/etc/init.d/$unit" ] && $SUDO update-rc.d "$unit" disable >/dev/null 2>&1 || true
  done
}

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
  for p in "${need_pkgs[@]}"; do
    case "$p" in
      postgresql) disable_units_of postgresql ;;
      kamailio) disable_units_of kamailio ;; # the tests run their own, in a namespace
    esac
  done
fi
if [ "$want_asterisk16" -eq 1 ]; then
  echo "installing: asterisk asterisk-modules (16, from bullseye-security; its service not started)"
  if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o APT::Default-Release=bookworm asterisk asterisk-modules; then
    # The tests run private instances; a system one would take port 5060 at boot.
    disable_units_of asterisk
  else
    reason="Debian no longer serves Asterisk 16 (apt-get install asterisk from bullseye-security failed)"
    echo "$reason" >"$status_file"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! WARNING: $reason" >&2
    echo "!!! Asterisk 16 will NOT be tested; Asterisk 22 (scripts/asterisk22.sh) still is." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  fi
fi
