#!/bin/sh
# Entrypoint of the astreinte-ari container.
#
# 1. Secrets. Compose secrets are files under /run/secrets; the service reads
#    its secrets from environment variables (ASTREINTE_ARI_PASSWORD,
#    ASTREINTE_DATABASE_URL, ASTREINTE_SMTP_PASSWORD, ASTREINTE_LINK_KEY, and
#    whatever the SMS gateway's headers name, e.g. ${SMS_API_TOKEN}). For every
#    variable NAME_FILE whose NAME starts with ASTREINTE_ or whose value is a
#    file under /run/secrets/, export NAME with the file's first line (trailing
#    newline / CR removed). An empty file is skipped with a notice: it is how an
#    unused optional secret (no SMTP, no SMS gateway...) is declared.
# 2. Preflight (for `run` only): warn when the YAML does not use the paths this
#    container shares with Asterisk (fallback spool, CEL, sounds) or has no
#    `metrics:` (the healthcheck's /readyz lives there). Warnings only: the
#    service's own validation is the authority.
# 3. exec the command (/usr/local/bin/astreinte, the image's entrypoint and the
#    `astreinte` on PATH, calls this with the package's astreinte first).
set -eu

for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
  file="$(printenv "${name}_FILE")"
  case "$name:$file" in
    ASTREINTE_*:* | *:/run/secrets/*) ;;
    *) continue ;;
  esac
  if [ -n "$(printenv "$name" 2>/dev/null || true)" ]; then
    echo "astreinte-entrypoint: both $name and ${name}_FILE are set; keep only one" >&2
    exit 1
  fi
  if [ ! -r "$file" ]; then
    echo "astreinte-entrypoint: ${name}_FILE=$file is missing or unreadable by uid $(id -u)" >&2
    echo "astreinte-entrypoint: (compose secrets keep the host file's mode: make it 0644 in a 0700 directory)" >&2
    exit 1
  fi
  value="$(head -n1 "$file" | tr -d '\r\n')"
  unset "${name}_FILE"
  if [ -z "$value" ]; then
    echo "astreinte-entrypoint: $file is empty: $name not set" >&2
    continue
  fi
  export "$name=$value"
done

case "${1:-}" in */astreinte | astreinte) cmd=astreinte ;; *) cmd="" ;; esac
if [ "$cmd" = astreinte ] && [ "${2:-}" = run ] && [ -z "${ASTREINTE_SKIP_PREFLIGHT:-}" ]; then
  /opt/astreinte/.venv/bin/python - "$@" <<'PY' || true
import os
import sys

import yaml

args = sys.argv[1:]
path = os.environ.get("ASTREINTE_CONFIG", "/etc/astreinte/astreinte.yaml")
for flag in ("-c", "--config"):
    if flag in args[:-1]:
        path = args[args.index(flag) + 1]
try:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
except Exception as exc:  # the service says it better; nothing to add here
    sys.exit(0)
if not isinstance(doc, dict):
    sys.exit(0)

def get(*keys):
    node = doc
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node

want = {
    ("fallback", "spool_dir"): "/var/spool/astreinte/fallback",
    ("sounds", "dir"): "/usr/share/astreinte/sounds",
}
for keys, expected in want.items():
    value = get(*keys)
    if str(value or "").rstrip("/") != expected:
        print(
            f"astreinte-entrypoint: WARNING {'.'.join(keys)} is {value!r} in {path}; in this "
            f"stack it must be {expected} (shared with the Asterisk container)",
            file=sys.stderr,
        )
cel = str(get("cel", "file") or "")
if not cel.startswith("/var/log/asterisk/cel-custom/"):
    print(
        f"astreinte-entrypoint: WARNING cel.file is {cel or 'unset'!r} in {path}; Asterisk "
        "writes /var/log/asterisk/cel-custom/astreinte-cel.csv (shared volume)",
        file=sys.stderr,
    )
if not get("metrics", "listen"):
    print(
        f"astreinte-entrypoint: WARNING no metrics.listen in {path}: the container's "
        "healthcheck (/readyz) has nothing to ask; add metrics: {listen: 127.0.0.1:9464}",
        file=sys.stderr,
    )
PY
fi

exec "$@"
