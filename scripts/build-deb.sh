#!/usr/bin/env bash
# Builds the Debian package astreinte-ari (bookworm's debhelper): the sdist and
# the wheel from it (scripts/build-dist.sh), a wheelhouse of the runtime
# dependencies (pip download from PyPI, cached by dependency set), then
# dpkg-buildpackage on the sdist's tree with packaging/debian/ as debian/ and
# scripts/astreinte.service as the unit.
#
#   scripts/build-deb.sh [OUTDIR]    (default dist/); prints the .deb's path (last line)
#
# Wheelhouse cache: $ASTREINTE_WHEELHOUSE_CACHE (default /var/cache/astreinte/wheelhouse)/<key>,
# key = sha256 of setup.cfg's install_requires + the extras the .deb takes + Python + arch.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)"
CACHE="${ASTREINTE_WHEELHOUSE_CACHE:-/var/cache/astreinte/wheelhouse}"
EXTRAS=postgres # matplotlib (charts) stays out: ~145 MB for HTML report charts
PY=/usr/bin/python3 # the package's venv runs on bookworm's Python, so build with it
BUILD_DEPS=(debhelper dpkg-dev python3-venv fakeroot)
t0=$SECONDS
say() { echo "[build-deb +$((SECONDS - t0))s] $*" >&2; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]} (build tools)"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

work="$(mktemp -d /var/tmp/astreinte-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
say "sdist and wheel"
bash "$repo/scripts/build-dist.sh" "$work/dist" >/dev/null
wheel="$(ls "$work"/dist/astreinte_ari-*-py3-none-any.whl)"
sdist="$(ls "$work"/dist/astreinte_ari-*.tar.gz)"
version="$(basename "$wheel" | cut -d- -f2)"

# The dependency set: what setup.cfg asks for, which extras, on which Python.
key="$( (sed -n '/^install_requires/,/^$/p' "$repo/setup.cfg"
  for e in ${EXTRAS//,/ }; do sed -n "/^$e =/,/^[^ ]/p" "$repo/setup.cfg"; done
  "$PY" -c 'import sys, platform; print(sys.version_info[:2], platform.machine())') \
  | sha256sum | cut -c1-16)"
wheelhouse="$CACHE/$key"
if [ ! -f "$wheelhouse/.complete" ]; then
  say "wheelhouse $wheelhouse: pip download (cold)"
  rm -rf "$wheelhouse" && mkdir -p "$wheelhouse"
  "$PY" -m venv "$work/dl"
  "$work/dl/bin/pip" download -q --only-binary=:all: -d "$wheelhouse" "$wheel[$EXTRAS]" \
    >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; exit 1; }
  rm -f "$wheelhouse"/astreinte_ari-*.whl # this build's own wheel is not part of the cache
  touch "$wheelhouse/.complete"
else
  say "wheelhouse $wheelhouse (cached, $(ls "$wheelhouse" | wc -l) wheels)"
fi

say "dpkg-buildpackage"
tar -xzf "$sdist" -C "$work"
src="$work/astreinte_ari-$version"
cp -r "$repo/packaging/debian" "$src/debian"
# The unit as the repository has it; the package provides what its ExecStart runs.
cp "$repo/scripts/astreinte.service" "$src/debian/astreinte-ari.astreinte.service"
exec_start="$(sed -n 's/^ExecStart=[-@!+]*\([^ ]*\).*/\1/p' "$src/debian/astreinte-ari.astreinte.service")"
case "$exec_start" in
  /usr/bin/astreinte | /usr/lib/astreinte-ari/venv/bin/astreinte) ;;
  *) echo "build-deb: scripts/astreinte.service runs $exec_start; the package provides" \
       "/usr/bin/astreinte (and /usr/lib/astreinte-ari/venv/bin/astreinte)" >&2; exit 1 ;;
esac
cat >"$src/debian/changelog" <<EOC
astreinte-ari ($version) bookworm; urgency=medium

  * Built from astreinte-ari $version by scripts/build-deb.sh.

 -- astreinte-ari maintainers <astreinte-ari@localhost>  $(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}")
EOC
(cd "$src" && ASTREINTE_WHEEL="$wheel" ASTREINTE_WHEELHOUSE="$wheelhouse" \
  dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) \
  || { tail -n 40 "$work/build.log" >&2; exit 1; }
deb="$(ls "$work"/astreinte-ari_"$version"_*.deb)"
cp "$deb" "$out/"
say "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
echo "$out/$(basename "$deb")"
