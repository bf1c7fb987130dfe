#!/usr/bin/env bash
# Provides Prometheus' `promtool` for the alert-rule tests (tests/unit/test_alert_rules.py),
# taken from Debian's `prometheus` package WITHOUT installing it: the .deb is
# downloaded (`apt-get download`, no root needed for the download itself) and only
# usr/bin/promtool is extracted. No Prometheus server is installed, enabled or
# started; the machine's package state is left alone.
#
#   scripts/promtool.sh      print the path of promtool (stdout, last line)
#
# Cache: $ASTREINTE_PROMTOOL_CACHE/<package version>/promtool
# (default /var/cache/astreinte/promtool), so a warm machine needs no download.
set -euo pipefail
CACHE="${ASTREINTE_PROMTOOL_CACHE:-/var/cache/astreinte/promtool}"

if command -v promtool >/dev/null 2>&1; then # an admin's own promtool is fine
  command -v promtool
  exit 0
fi
version="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  if [ -n "$(ls "$CACHE"/*/promtool 2>/dev/null | tail -1)" ]; then # offline: any cached one
    ls "$CACHE"/*/promtool | tail -1
    exit 0
  fi
  echo "promtool.sh: Debian's prometheus package is not known to apt (run apt-get update)" >&2
  exit 1
fi
dest="$CACHE/$version"
if [ ! -x "$dest/promtool" ]; then
  work="$(mktemp -d)"
  chmod 755 "$work" # apt's _apt user writes the download there
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -q "prometheus=$version" >&2) || {
    echo "promtool.sh: could not download prometheus=$version" >&2
    exit 1
  }
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  mkdir -p "$dest"
  install -m 755 "$work/root/usr/bin/promtool" "$dest/promtool.tmp"
  mv "$dest/promtool.tmp" "$dest/promtool"
fi
"$dest/promtool" --version >&2
echo "$dest/promtool"
