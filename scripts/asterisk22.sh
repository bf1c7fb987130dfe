#!/usr/bin/env bash
# Provides a private Asterisk 22 LTS on Debian 12 (bookworm), which ships no
# Asterisk: built upstream-style from Debian sid's source package, installed
# under its own prefix, cached by version and recipe. Never touches a system
# Asterisk (no apt install of asterisk, no service, nothing under /usr).
#
# Usage:
#   scripts/asterisk22.sh                 build or unpack, then print the prefix (stdout, last line)
#   scripts/asterisk22.sh --print-prefix  print the prefix if it is installed, else exit 1
#   scripts/asterisk22.sh --from-sid      ignore any pinned source copy, take sid's
#
# Source, first found: $ASTREINTE_ASTERISK_SOURCE_DIR, <repo>/../shared/asterisk-22,
# /work/shared/asterisk-22 (a pinned copy: .dsc, orig, orig-Xpjproject, debian
# tarballs + SHA256SUMS, verified), else `apt-get source --download-only
# asterisk/sid` through a private APT_CONFIG (the machine's apt state is left alone).
#
# Cache key: <upstream version>-<recipe hash> where the recipe is this script,
# scripts/asterisk22/modules.txt and scripts/asterisk22/pjproject-patches/*.
#   install tree: $ASTREINTE_ASTERISK_ROOT/<key>   (default /opt/astreinte-asterisk)
#   tarball:      $ASTREINTE_ASTERISK_CACHE/asterisk-<key>.tar.gz
#                 (default /var/cache/astreinte/asterisk)
# A warm machine (tarball present) unpacks in seconds; a cold one builds (~5 min on 2 cores).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
recipe_dir="$here/asterisk22"
CACHE="${ASTREINTE_ASTERISK_CACHE:-/var/cache/astreinte/asterisk}"
ROOT="${ASTREINTE_ASTERISK_ROOT:-/opt/astreinte-asterisk}"
MAJOR=22
# libxslt1-dev: configure uses it when present (xmldoc); listed so that every
# machine builds the same tree, whatever else it has installed.
BUILD_DEPS=(build-essential pkg-config libjansson-dev libedit-dev libxml2-dev libxslt1-dev
  libsqlite3-dev uuid-dev libssl-dev libncurses-dev bzip2 patch xz-utils)
# Debian's core sounds (data only, no daemon; the -gsm variants by default): the
# voice alert reads digits with them. The metapackages make the en/ and fr/ links.
SOUND_PKGS=(asterisk-core-sounds-en asterisk-core-sounds-fr)

mode=provide
from_sid=0
for arg in "$@"; do
  case "$arg" in
    --print-prefix) mode=print ;;
    --from-sid) from_sid=1 ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "asterisk22: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

t0=$SECONDS
say() { echo "[asterisk22 +$((SECONDS - t0))s] $*" >&2; }
die() { echo "[asterisk22] ERROR: $*" >&2; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_install() { # installs the packages of "$@" that are missing
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# run_step NAME CMD...: runs CMD with its output in a log, prints a heartbeat
# every 30 s (the last log line) and the log's tail if it fails.
run_step() {
  local name="$1" log="$BUILD/log/$1.log" start=$SECONDS pid rc
  shift
  say "$name..."
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null && sleep 1; done
    kill -0 "$pid" 2>/dev/null && say "  $name: $((SECONDS - start))s, $(tail -n1 "$log" | cut -c1-100)"
  done
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2
    die "$name failed (exit $rc); full log: $log"
  fi
  say "$name done in $((SECONDS - start))s"
}

recipe_hash() {
  # Module list and patches are inputs of the build: any change is a new key.
  cat "${BASH_SOURCE[0]}" "$recipe_dir/modules.txt" "$recipe_dir"/pjproject-patches/*.patch \
    | sha256sum | cut -c1-12
}

pinned_candidates() {
  [ -n "${ASTREINTE_ASTERISK_SOURCE_DIR:-}" ] && echo "$ASTREINTE_ASTERISK_SOURCE_DIR"
  echo "$repo/../shared/asterisk-$MAJOR"
  echo "/work/shared/asterisk-$MAJOR"
}

# Sets SRC to a directory holding a verified source package.
find_source() {
  local dir
  if [ "$from_sid" -eq 0 ]; then
    while read -r dir; do
      [ -f "$dir/SHA256SUMS" ] || continue
      if (cd "$dir" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); then
        SRC="$(cd "$dir" && pwd)"
        say "source: pinned copy $SRC (SHA256SUMS verified)"
        return 0
      fi
      say "WARNING: $dir/SHA256SUMS does not verify: not using that copy"
    done < <(pinned_candidates)
    say "no pinned source copy found: downloading asterisk/sid"
  fi
  download_sid
}

# apt-get source through a private APT_CONFIG: its own sources list (sid deb-src
# only), lists, cache and pin; the machine's sources, lists and pins are untouched.
download_sid() {
  local apt="$CACHE/apt" mirror
  mirror="$(grep -rhoE 'https?://[^ /]+/debian' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -v security | head -n1 || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  mkdir -p "$apt"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d}
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" >"$apt/sources.list"
  printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' >"$apt/preferences"
  cat >"$apt/apt.conf" <<EOF
Dir::State::lists "$apt/lists";
Dir::Cache "$apt/cache";
Dir::Etc::sourcelist "$apt/sources.list";
Dir::Etc::sourceparts "$apt/sources.list.d";
Dir::Etc::preferences "$apt/preferences";
Dir::Etc::preferencesparts "$apt/preferences.d";
EOF
  say "apt-get update (private APT_CONFIG, sid deb-src only)"
  APT_CONFIG="$apt/apt.conf" apt-get update -qq || die "apt-get update of sid's sources failed"
  SRC="$CACHE/src-sid"
  rm -rf "$SRC" && mkdir -p "$SRC"
  say "apt-get source --download-only asterisk/sid"
  (cd "$SRC" && APT_CONFIG="$apt/apt.conf" apt-get source -qq --download-only asterisk/sid) \
    || die "apt-get source asterisk/sid failed (is sid's asterisk still $MAJOR.x?)"
}

# Sets VERSION (upstream, e.g. 22.10.1) from the .dsc in $SRC.
read_version() {
  local dsc full
  dsc="$(ls "$SRC"/asterisk_*.dsc 2>/dev/null | head -n1)"
  [ -n "$dsc" ] || die "no asterisk_*.dsc in $SRC"
  full="$(sed -n 's/^Version: //p' "$dsc" | head -n1)"
  VERSION="$(echo "$full" | sed -E 's/^[0-9]+://; s/[+~-].*$//')"
  [[ "$VERSION" == "$MAJOR".* ]] || die "source package $full is not Asterisk $MAJOR.x"
}

build() {
  BUILD="$(mktemp -d /var/tmp/astreinte-asterisk22.XXXXXX)"
  mkdir -p "$BUILD/log" "$BUILD/externals"
  say "build directory $BUILD (kept if the build fails)"
  apt_install "${BUILD_DEPS[@]}"
  say "unpacking $(basename "$SRC"/asterisk_*.orig.tar.*)"
  tar -xf "$SRC"/asterisk_*.orig.tar.* -C "$BUILD"
  local tree pjver pjtar
  tree="$(ls -d "$BUILD"/asterisk-*/ | head -n1)"
  tree="${tree%/}"
  pjver="$(sed -n 's/^PJPROJECT_VERSION=//p' "$tree/third-party/versions.mak")"
  # Asterisk's bundled-pjproject build wants pjproject-<ver>.tar.bz2 (top dir
  # pjproject-<ver>) in the externals cache, checked against the .md5 file beside its Makefile.
  say "repacking orig-Xpjproject as pjproject-$pjver.tar.bz2"
  mkdir -p "$BUILD/pj"
  tar -xf "$SRC"/asterisk_*.orig-Xpjproject.tar.* -C "$BUILD/pj"
  mv "$(ls -d "$BUILD"/pj/*/ | head -n1)" "$BUILD/pj/pjproject-$pjver"
  pjtar="pjproject-$pjver.tar.bz2"
  tar -cjf "$BUILD/externals/$pjtar" -C "$BUILD/pj" "pjproject-$pjver"
  (cd "$BUILD/externals" && md5sum "$pjtar") >"$tree/third-party/pjproject/$pjtar.md5"
  rm -rf "$BUILD/pj"
  cp "$recipe_dir"/pjproject-patches/*.patch "$tree/third-party/pjproject/patches/"

  cd "$tree"
  # rpath: with Asterisk 16 installed too, the binary would otherwise load 16's
  # /usr/lib/libasteriskpj.so.2 (callers still put $PREFIX/lib first in LD_LIBRARY_PATH).
  run_step configure ./configure --prefix="$PREFIX" --with-pjproject-bundled \
    --with-externals-cache="$BUILD/externals" --with-jansson-bundled=no \
    LDFLAGS="-Wl,-rpath,$PREFIX/lib"
  run_step menuselect make menuselect.makeopts
  local cats mods=()
  cats="$(grep -o '<category name="[^"]*"' menuselect-tree | sed 's/.*name="//; s/"$//')"
  local args=()
  for c in $cats; do
    [ "$c" = MENUSELECT_CFLAGS ] || args+=(--disable-category "$c")
  done
  read -r -a mods <<<"$(sed 's/#.*//' "$recipe_dir/modules.txt" | tr '\n' ' ')"
  for m in "${mods[@]}"; do args+=(--enable "$m"); done
  menuselect/menuselect "${args[@]}" --disable BUILD_NATIVE menuselect.makeopts >"$BUILD/log/select.log" 2>&1 \
    || { cat "$BUILD/log/select.log" >&2; die "menuselect refused the module list"; }
  menuselect/menuselect --check-deps menuselect.makeopts >>"$BUILD/log/select.log" 2>&1 \
    || { cat "$BUILD/log/select.log" >&2; die "menuselect --check-deps failed"; }
  # A module whose dependencies are missing is silently dropped: fail instead.
  # (disabled modules are listed on their category's line or on MENUSELECT_DEPSFAILED)
  local unmet=() lines
  lines="$(grep -E "^(MENUSELECT_DEPSFAILED|$(echo $cats | tr ' ' '|'))=" menuselect.makeopts | sed 's/^[^=]*=//')"
  for m in "${mods[@]}"; do
    grep -qE "(^|[= ])$m( |$)" <<<"$lines" && unmet+=("$m")
  done
  [ ${#unmet[@]} -eq 0 ] || die "modules not selectable (missing dependency?): ${unmet[*]}"
  run_step make make -j"$(nproc)"
  rm -rf "$BUILD/stage"
  run_step install make install DESTDIR="$BUILD/stage"
  local tree_out="$BUILD/stage$PREFIX"
  # Debug symbols: 64 MB -> ~13 MB; the tree is cached and shipped in images.
  find "$tree_out" -type f \( -name '*.so*' -o -path '*/sbin/*' \) -exec strip --strip-unneeded {} + 2>/dev/null || true
  # Sounds: Debian's packages (/usr/share/asterisk/sounds/{en,fr}) seen as this tree's own.
  rm -rf "$tree_out/var/lib/asterisk/sounds"
  ln -s /usr/share/asterisk/sounds "$tree_out/var/lib/asterisk/sounds"
  printf 'version=%s\nkey=%s\nsource=%s\n' "$VERSION" "$KEY" "$(basename "$SRC"/asterisk_*.dsc)" \
    >"$tree_out/astreinte-asterisk.stamp"
  say "packing the install tree ($(du -sh "$tree_out" | cut -f1)) into $TARBALL"
  tar -czf "$TARBALL.tmp" -C "$tree_out" .
  mv -f "$TARBALL.tmp" "$TARBALL"
  cd "$repo"
  rm -rf "$BUILD"
}

unpack() {
  say "unpacking cached $TARBALL"
  rm -rf "$PREFIX.tmp" && mkdir -p "$PREFIX.tmp"
  tar -xzf "$TARBALL" -C "$PREFIX.tmp"
  rm -rf "$PREFIX" && mv "$PREFIX.tmp" "$PREFIX"
}

if [ ! -w "$(dirname "$CACHE")" ] && [ ! -w "$CACHE" ] && [ "$(id -u)" -ne 0 ]; then
  die "$CACHE is not writable: run as root or set ASTREINTE_ASTERISK_CACHE/ASTREINTE_ASTERISK_ROOT"
fi
mkdir -p "$CACHE" "$ROOT"
exec 9>"$CACHE/.lock"
flock 9 # one build at a time on a shared machine

find_source
read_version
KEY="$VERSION-$(recipe_hash)"
PREFIX="$ROOT/$KEY"
TARBALL="$CACHE/asterisk-$KEY.tar.gz"

if [ "$mode" = print ]; then
  [ -x "$PREFIX/sbin/asterisk" ] || die "Asterisk $KEY is not installed (run scripts/asterisk22.sh)"
  echo "$PREFIX"
  exit 0
fi

apt_install "${SOUND_PKGS[@]}"
if [ -x "$PREFIX/sbin/asterisk" ] && grep -qx "key=$KEY" "$PREFIX/astreinte-asterisk.stamp" 2>/dev/null; then
  say "Asterisk $KEY already installed"
else
  [ -f "$TARBALL" ] || build
  unpack
fi
[ -d "$PREFIX/var/lib/asterisk/sounds/en" ] || say "WARNING: no English sounds under $PREFIX/var/lib/asterisk/sounds"
say "Asterisk $VERSION ready in $((SECONDS - t0))s"
echo "$PREFIX"
