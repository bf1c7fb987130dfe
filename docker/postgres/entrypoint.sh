#!/bin/sh
# First start: initdb in $PGDATA with the superuser $POSTGRES_USER and the
# password of $POSTGRES_PASSWORD_FILE (a compose secret) or $POSTGRES_PASSWORD,
# then the database $POSTGRES_DB. TCP connections need that password
# (scram-sha-256); the unix socket, inside the container only, trusts (as the
# official image does), for `docker compose exec postgres psql -U <user>`.
# Then runs the command as the postgres user.
set -eu
die() { echo "postgres-entrypoint: $*" >&2; exit 1; }

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  POSTGRES_USER="${POSTGRES_USER:-postgres}"
  POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    [ -r "$POSTGRES_PASSWORD_FILE" ] || die "$POSTGRES_PASSWORD_FILE is missing or unreadable"
    POSTGRES_PASSWORD="$(head -n1 "$POSTGRES_PASSWORD_FILE" | tr -d '\r\n')"
  fi
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "no password: set POSTGRES_PASSWORD_FILE (a secret)"
  case "$POSTGRES_USER$POSTGRES_DB" in *[!A-Za-z0-9_]*) die "user and database: letters, digits, _" ;; esac
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  chown postgres "$pwfile"
  setpriv --reuid=postgres --regid=postgres --init-groups \
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" \
      | setpriv --reuid=postgres --regid=postgres --init-groups \
          postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "postgres-entrypoint: cluster created in $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)" >&2
fi

if [ "${1:-}" = postgres ]; then
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
