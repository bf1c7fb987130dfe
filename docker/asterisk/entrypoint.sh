#!/bin/sh
# Asterisk container start, as root, then Asterisk runs as the asterisk user:
#  - ari.conf from the ARI password secret, stored crypt-hashed (never in clear
#    in /etc/asterisk);
#  - http.conf (ARI) and rtp.conf from the environment, so that the ports can
#    be chosen per host (network_mode: host shares the host's ports):
#      ARI_BIND (127.0.0.1), ARI_PORT (8088), RTP_START (10000), RTP_END (20000);
#  - owner and mode of the volumes shared with the service (fallback spool,
#    CEL): asterisk:astreinte, setgid, and umask 007, so that what Asterisk and
#    its AGI write there is readable (and, in the spool, movable) by the
#    service's user, a member of astreinte.
set -eu

ARI_USERNAME="${ARI_USERNAME:-astreinte}"
ARI_PASSWORD_FILE="${ARI_PASSWORD_FILE:-/run/secrets/ari_password}"
ARI_BIND="${ARI_BIND:-127.0.0.1}"
ARI_PORT="${ARI_PORT:-8088}"
RTP_START="${RTP_START:-10000}"
RTP_END="${RTP_END:-20000}"

die() { echo "asterisk-entrypoint: $*" >&2; exit 1; }
is_port() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

[ -r "$ARI_PASSWORD_FILE" ] || die "ARI password file $ARI_PASSWORD_FILE is missing or unreadable"
# First line, without the trailing newline.
ari_password="$(head -n1 "$ARI_PASSWORD_FILE" | tr -d '\r\n')"
[ -n "$ari_password" ] || die "$ARI_PASSWORD_FILE is empty"
case "$ARI_USERNAME" in
  *[!A-Za-z0-9_-]* | "") die "bad ARI_USERNAME '$ARI_USERNAME'" ;;
esac
is_port "$ARI_PORT" || die "bad ARI_PORT '$ARI_PORT'"
is_port "$RTP_START" && is_port "$RTP_END" && [ "$RTP_START" -lt "$RTP_END" ] \
  || die "bad RTP range '$RTP_START'-'$RTP_END'"
case "$ARI_BIND" in
  *[!0-9A-Fa-f.:]* | "") die "bad ARI_BIND '$ARI_BIND'" ;;
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
umask 022
cat >/etc/asterisk/http.conf <<CONF
; Generated at container start from ARI_BIND/ARI_PORT; do not edit.
; ARI on the loopback only: an ARI login is PBX-admin (DESIGN.md section 6).
; With network_mode: host, 127.0.0.1 is the host's loopback, shared with the service.
[general]
enabled = yes
bindaddr = $ARI_BIND
bindport = $ARI_PORT
CONF
cat >/etc/asterisk/rtp.conf <<CONF
; Generated at container start from RTP_START/RTP_END; do not edit.
[general]
rtpstart = $RTP_START
rtpend = $RTP_END
CONF
chown asterisk:asterisk /etc/asterisk/ari.conf /etc/asterisk/http.conf /etc/asterisk/rtp.conf

# State, and the recording spool ARI records voicemail into.
mkdir -p /var/spool/asterisk/recording /var/lib/asterisk /var/log/asterisk /var/run/asterisk
chown -R asterisk:asterisk /var/spool/asterisk /var/lib/asterisk /var/run/asterisk
chown asterisk:asterisk /var/log/asterisk
# Shared with the service (volumes): not recursive, the files keep their owner.
install -d -o asterisk -g astreinte -m 2770 /var/spool/astreinte/fallback
install -d -o asterisk -g astreinte -m 2750 /var/log/asterisk/cel-custom

# The dialplan and the prompts are mounted from the repository (compose.yaml).
[ -r /opt/astreinte/dialplan/extensions_astreinte.conf ] \
  || echo "asterisk-entrypoint: WARNING /opt/astreinte/dialplan/extensions_astreinte.conf is missing: mount the repository's dialplan/ there" >&2
[ -d /usr/share/astreinte/sounds/fr ] \
  || echo "asterisk-entrypoint: WARNING no prompts in /usr/share/astreinte/sounds: mount the repository's sounds/ there" >&2

# Files Asterisk, the AGI and cel_custom create: group-readable/writable, nothing for others.
umask 007
if [ "$#" -eq 0 ]; then
  # -f: foreground (PID 1's child), -U: drop root (no -G: the supplementary group
  # astreinte is kept only without a run group), -n: no colour in docker logs.
  exec asterisk -f -n -U asterisk -vvv
fi
exec "$@"
