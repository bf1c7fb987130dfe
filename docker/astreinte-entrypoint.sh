#!/bin/sh
# Entrypoint of the astreinte-ari container.
#
# Docker/compose secrets are files. For every variable NAME_FILE whose NAME
# starts with ASTREINTE_ (e.g. ASTREINTE_ARI_PASSWORD_FILE,
# ASTREINTE_DATABASE_URL_FILE), export NAME with the file's first line
# (trailing newline / CR removed), then exec the command.
set -eu

for assignment in $(env | sed -n 's/^\(ASTREINTE_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  name="$assignment"
  file="$(printenv "${name}_FILE")"
  if [ -n "$(printenv "$name" 2>/dev/null || true)" ]; then
    echo "astreinte-entrypoint: both $name and ${name}_FILE are set; keep only one" >&2
    exit 1
  fi
  if [ ! -r "$file" ]; then
    echo "astreinte-entrypoint: ${name}_FILE=$file is missing or unreadable" >&2
    exit 1
  fi
  value="$(head -n1 "$file" | tr -d '\r\n')"
  if [ -z "$value" ]; then
    echo "astreinte-entrypoint: ${name}_FILE=$file is empty" >&2
    exit 1
  fi
  export "$name=$value"
  unset "${name}_FILE"
done

exec "$@"
