#!/usr/bin/env bash
# Generates the voice prompts of astreinte-ari with espeak-ng + sox.
#
# Texts come from sounds/prompts.tsv (columns: name, lang, text; tab-separated),
# so ops staff can change the wording without touching this script.
# Output: sounds/<lang>/<name>.wav, 8000 Hz, mono, 16-bit signed PCM WAV,
# the format Asterisk plays without transcoding (format_wav, slin).
#
# Usage:
#   scripts/make-sounds.sh                      regenerate every prompt of prompts.tsv
#   scripts/make-sounds.sh NAME [NAME...]       regenerate only these names (all languages)
#   scripts/make-sounds.sh --line NAME "Text" LANG
#                                               make sounds/<LANG>/astreinte-line-<NAME>.wav
#   scripts/make-sounds.sh --check              only verify the files already in sounds/
#
# Environment (optional):
#   SOUNDS_DIR      output/input folder           (default: <repo>/sounds)
#   PROMPTS_FILE    the texts                     (default: $SOUNDS_DIR/prompts.tsv)
#   ESPEAK_SPEED    words per minute              (default: 150)
#   ESPEAK_VOICE_FR, ESPEAK_VOICE_EN, ...  espeak-ng voice for a language (default: the language code)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
SOUNDS_DIR="${SOUNDS_DIR:-$repo/sounds}"
PROMPTS_FILE="${PROMPTS_FILE:-$SOUNDS_DIR/prompts.tsv}"
ESPEAK_SPEED="${ESPEAK_SPEED:-150}"
LEAD_SILENCE="0.15" # seconds of silence before the speech

die() {
  echo "make-sounds: error: $*" >&2
  exit 1
}

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

require_tools() {
  local missing=()
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || missing+=(sox)
  command -v soxi >/dev/null 2>&1 || missing+=(soxi)
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing tool(s): ${missing[*]}. Install them with: apt-get install espeak-ng sox"
  fi
}

valid_name() { [[ "$1" =~ ^[a-z0-9][a-z0-9_-]*$ ]]; }
valid_lang() { [[ "$1" =~ ^[a-z]{2,3}(-[a-z0-9]+)?$ ]]; }

voice_for() {
  local lang="$1" var
  var="ESPEAK_VOICE_$(echo "$lang" | tr 'a-z-' 'A-Z_')"
  echo "${!var:-$lang}"
}

# synth NAME LANG TEXT: writes $SOUNDS_DIR/LANG/NAME.wav atomically.
synth() {
  local name="$1" lang="$2" text="$3"
  local voice outdir out tmp_raw tmp_wav
  voice="$(voice_for "$lang")"
  outdir="$SOUNDS_DIR/$lang"
  out="$outdir/$name.wav"
  mkdir -p "$outdir"
  tmp_raw="$(mktemp "$outdir/.$name.XXXXXX.raw.wav")"
  tmp_wav="$(mktemp "$outdir/.$name.XXXXXX.wav")"
  # Text goes through stdin (-b 1: UTF-8), never as an argument: a text starting
  # with '-' cannot be taken for an option.
  if ! printf '%s\n' "$text" | espeak-ng -v "$voice" -s "$ESPEAK_SPEED" -b 1 --stdin -w "$tmp_raw" 2>"$tmp_wav.err"; then
    cat "$tmp_wav.err" >&2 || true
    rm -f "$tmp_raw" "$tmp_wav" "$tmp_wav.err"
    die "espeak-ng failed for $lang/$name (voice '$voice')"
  fi
  rm -f "$tmp_wav.err"
  # Effects: trim leading silence; trim trailing silence and fade the last 20 ms
  # out so the cut does not click (done on the reversed audio); normalise to
  # -3 dBFS; resample to 8 kHz; pad LEAD_SILENCE of silence at the start.
  if ! sox -q "$tmp_raw" -r 8000 -c 1 -b 16 -e signed-integer -t wav "$tmp_wav" \
      silence 1 0.01 0.1% \
      reverse silence 1 0.01 0.1% fade h 0.02 reverse \
      norm -3 \
      rate -v 8000 \
      pad "$LEAD_SILENCE" 0; then
    rm -f "$tmp_raw" "$tmp_wav"
    die "sox failed for $lang/$name"
  fi
  rm -f "$tmp_raw"
  chmod 0644 "$tmp_wav"
  mv -f "$tmp_wav" "$out"
  printf '  %-40s %s\n' "$lang/$name.wav" "$(soxi -d "$out")"
}

# check_file FILE: the format Asterisk expects, or an error message on stdout.
check_file() {
  local f="$1" rate ch bits enc
  rate="$(soxi -r "$f" 2>/dev/null)" || { echo "unreadable"; return 1; }
  ch="$(soxi -c "$f")"
  bits="$(soxi -b "$f")"
  enc="$(soxi -e "$f")"
  if [ "$rate" != 8000 ] || [ "$ch" != 1 ] || [ "$bits" != 16 ] || [ "$enc" != "Signed Integer PCM" ]; then
    echo "rate=$rate channels=$ch bits=$bits encoding='$enc' (want 8000 Hz, 1 channel, 16-bit Signed Integer PCM)"
    return 1
  fi
}

# check_all: verify every .wav under $SOUNDS_DIR/<lang>/ and print the total size.
check_all() {
  local f msg bad=0 count=0 bytes=0 size
  shopt -s nullglob
  for f in "$SOUNDS_DIR"/*/*.wav; do
    count=$((count + 1))
    size="$(stat -c %s "$f")"
    bytes=$((bytes + size))
    if ! msg="$(check_file "$f")"; then
      echo "  BAD ${f#"$SOUNDS_DIR"/}: $msg" >&2
      bad=$((bad + 1))
    fi
  done
  shopt -u nullglob
  echo "checked $count file(s) in $SOUNDS_DIR: $((count - bad)) OK, $bad bad;" \
    "total size $bytes bytes ($(du -ch "$SOUNDS_DIR"/*/*.wav 2>/dev/null | tail -n1 | cut -f1))"
  [ "$bad" -eq 0 ] || die "$bad file(s) not in the Asterisk format; regenerate or convert them"
}

# Reads prompts.tsv into the arrays P_NAME, P_LANG, P_TEXT, validating every row.
load_prompts() {
  [ -f "$PROMPTS_FILE" ] || die "prompts file not found: $PROMPTS_FILE"
  P_NAME=() P_LANG=() P_TEXT=()
  local lineno=0 line name lang text rest key seen=" "
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line="${line%$'\r'}"
    [[ -z "${line//[[:space:]]/}" || "$line" =~ ^[[:space:]]*# ]] && continue
    IFS=$'\t' read -r name lang text rest <<<"$line"
    [ "$name" = "name" ] && [ "$lang" = "lang" ] && continue # header
    local where="$PROMPTS_FILE:$lineno"
    [ -n "$rest" ] && die "$where: more than 3 tab-separated columns (no tab allowed inside the text)"
    [ -n "$text" ] || die "$where: expected 'name<TAB>lang<TAB>text' (columns must be separated by a TAB)"
    valid_name "$name" || die "$where: bad name '$name' (lowercase letters, digits, '-' or '_')"
    valid_lang "$lang" || die "$where: bad language '$lang' (e.g. fr, en)"
    key="$name/$lang"
    [[ "$seen" == *" $key "* ]] && die "$where: duplicate prompt $key"
    seen+="$key "
    P_NAME+=("$name") P_LANG+=("$lang") P_TEXT+=("$text")
  done <"$PROMPTS_FILE"
  [ ${#P_NAME[@]} -gt 0 ] || die "$PROMPTS_FILE: no prompt found"
}

main() {
  case "${1:-}" in
    -h | --help)
      usage
      exit 0
      ;;
    --check)
      require_tools
      check_all
      exit 0
      ;;
    --line)
      [ $# -eq 4 ] || die "usage: $0 --line NAME \"Text\" LANG   (e.g. --line maintenance \"Ligne maintenance.\" fr)"
      require_tools
      local lname="${2#astreinte-line-}" ltext="$3" llang="$4"
      valid_name "$lname" || die "bad line name '$2' (lowercase letters, digits, '-' or '_')"
      valid_lang "$llang" || die "bad language '$llang' (e.g. fr, en)"
      [ -n "${ltext//[[:space:]]/}" ] || die "empty text"
      echo "generating line prompt (espeak-ng speed $ESPEAK_SPEED):"
      synth "astreinte-line-$lname" "$llang" "$ltext"
      local msg
      msg="$(check_file "$SOUNDS_DIR/$llang/astreinte-line-$lname.wav")" || die "bad output: $msg"
      echo "done. To keep it across full regenerations, add this row to $PROMPTS_FILE:"
      printf '  astreinte-line-%s\t%s\t%s\n' "$lname" "$llang" "$ltext"
      exit 0
      ;;
    -*)
      die "unknown option '$1' (see --help)"
      ;;
  esac

  require_tools
  load_prompts

  local -a wanted=("$@")
  local n i done_count=0
  # Every requested name must exist in the file, in at least one language.
  for n in "${wanted[@]}"; do
    local found=0
    for i in "${!P_NAME[@]}"; do
      [ "${P_NAME[$i]}" = "$n" ] && found=1 && break
    done
    [ "$found" -eq 1 ] || die "no prompt named '$n' in $PROMPTS_FILE"
  done

  echo "generating prompts from $PROMPTS_FILE (espeak-ng speed $ESPEAK_SPEED):"
  for i in "${!P_NAME[@]}"; do
    if [ ${#wanted[@]} -gt 0 ]; then
      local match=0
      for n in "${wanted[@]}"; do [ "${P_NAME[$i]}" = "$n" ] && match=1; done
      [ "$match" -eq 1 ] || continue
    fi
    synth "${P_NAME[$i]}" "${P_LANG[$i]}" "${P_TEXT[$i]}"
    done_count=$((done_count + 1))
  done
  echo "generated $done_count file(s)."
  if [ ${#wanted[@]} -eq 0 ]; then
    # Ringback heard by a waiting caller (music-on-hold class astreinte-ringback):
    # the French cadence, 440 Hz, 1.5 s on, 3.5 s off; Asterisk loops the file.
    mkdir -p "$SOUNDS_DIR/ringback"
    sox -n -r 8000 -c 1 -b 16 -e signed-integer "$SOUNDS_DIR/ringback/astreinte-ringback.wav" \
      synth 1.5 sine 440 vol 0.35 pad 0 3.5
    echo "  ringback/astreinte-ringback.wav"
  fi
  check_all
}

main "$@"
