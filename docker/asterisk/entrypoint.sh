#!/bin/sh
# Asterisk container start: write ari.conf from the ARI password secret
# (stored crypt-hashed, never in clear in /etc/asterisk), then run Asterisk in
# the foreground as the asterisk user.
set -eu

ARI_USERNAME="${ARI_USERNAME:-astreinte}"
ARI_PASSWORD_FILE="${ARI_PASSWORD_FILE:-/run/secrets/ari_password}"

if [ ! -r "$ARI_PASSWORD_FILE" ]; then
  echo "asterisk-entrypoint: ARI password file $ARI_PASSWORD_FILE is missing or unreadable" >&2
  exit 1
fi
# First line, without the trailing newline.
ari_password="$(head -n1 "$ARI_PASSWORD_FILE" | tr -d '\r\n')"
if [ -z "$ari_password" ]; then
  echo "asterisk-entrypoint: $ARI_PASSWORD_FILE is empty" >&2
  exit 1
fi
case "$ARI_USERNAME" in
  *[!A-Za-z0-9_-]* | "") echo "asterisk-entrypoint: bad ARI_USERNAME '$ARI_USERNAME'" >&2; exit 1 ;;
esac
hash="$(printf '%s' "$ari_password" | openssl passwd -6 -stdin)"
umask 077
cat >/etc/asterisk/ari.conf <<CONF
; Generated at container start by /usr/local/bin/asterisk-entrypoint.sh; do not edit.
[general]
enabled = yes
pretty = no

[$ARI_USERNAME]
type = user
read_only = no
password_format = crypt
password = $hash
CONF
chown asterisk:asterisk /etc/asterisk/ari.conf

# Voicemail recordings (ARI stored recordings) live in the spool volume.
mkdir -p /var/spool/asterisk/recording /var/lib/asterisk /var/log/asterisk /var/run/asterisk
chown -R asterisk:asterisk /var/spool/asterisk /var/lib/asterisk /var/log/asterisk /var/run/asterisk

if [ "$#" -eq 0 ]; then
  # -f: foreground (PID 1's child), -U/-G: drop root, -n: no colour in docker logs.
  exec asterisk -f -n -U asterisk -G asterisk -vvv
fi
exec "$@"
