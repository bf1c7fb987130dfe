#!/usr/bin/env bash
# A clean Debian 12 (bookworm) root to install the .deb into, for its test
# (tests/packaging/test_deb.py): debootstrap --variant=minbase, plus the
# shared libraries the test's Asterisk 22 tree needs (the host's PBX prefix is
# bind-mounted into the root, as a PBX host has its Asterisk) and, downloaded
# but not installed, what the .deb depends on (python3, adduser), so that the
# test installs with apt without waiting on the network.
#
#   scripts/deb-test-root.sh      prints the path of a root tarball (built ~1-2 min, cached)
#
# Cache: $ASTREINTE_DEBROOT_CACHE (default /var/cache/astreinte/debroot), keyed by
# this script's content; rebuilt after 14 days so that its apt lists stay usable.
# Only writes under the cache and a temporary directory: the machine's apt state
# and packages are left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${ASTREINTE_DEBROOT_CACHE:-/var/cache/astreinte/debroot}"
SUITE=bookworm
# ldd of the Asterisk 22 tree (scripts/asterisk22.sh) minus what minbase has.
RIG_LIBS=libedit2,libjansson4,libxml2,libxslt1.1,libsqlite3-0,libssl3,libuuid1,libbsd0,libicu72
PREFETCH=(python3 adduser)

say() { echo "[deb-test-root +${SECONDS}s] $*" >&2; }
key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
tarball="$CACHE/$SUITE-minbase-$key.tar"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

if [ -f "$tarball" ] && [ -z "$(find "$tarball" -mtime +14)" ]; then
  echo "$tarball"
  exit 0
fi
command -v debootstrap >/dev/null || {
  say "apt-get install debootstrap"
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
mirror="$(grep -rhoE 'https?://[^ /]+/debian' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -v security | head -n1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
root="$(mktemp -d /var/tmp/astreinte-debroot-build.XXXXXX)"
chmod 0755 "$root" # apt's _apt user downloads into it
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
say "debootstrap $SUITE minbase from $mirror (+ $RIG_LIBS)"
debootstrap --variant=minbase --include="$RIG_LIBS" "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 30 "$root.log" >&2; exit 1; }
rm -f "$root.log"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
say "apt-get update; download ${PREFETCH[*]}"
chroot "$root" apt-get update -qq
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only \
  --no-install-recommends "${PREFETCH[@]}" >/dev/null
umount "$root/proc"
tar -cf "$tarball.tmp" -C "$root" .
mv -f "$tarball.tmp" "$tarball"
find "$CACHE" -name "$SUITE-minbase-*.tar" ! -name "$(basename "$tarball")" -delete
say "root cached: $tarball ($(du -h "$tarball" | cut -f1))"
echo "$tarball"
