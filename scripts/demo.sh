#!/usr/bin/env bash
# One command for the demo: installs what it needs (the venv, sipp, espeak-ng and
# sox for the demo's phones; no test tooling, and it never stops or changes a
# system Asterisk), starts a private Asterisk 22
# LTS on loopback with the project's dialplan (scripts/asterisk22.sh builds it
# on first use, ~3-5 min; then it is cached), migrates the SQLite audit
# database and runs the on-call service with config/demo.yaml in the
# foreground. Ctrl-C stops both.
# ASTREINTE_ASTERISK_PREFIX="" scripts/demo.sh runs it on the system Asterisk 16.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh demo
if [ -z "${ASTREINTE_ASTERISK_PREFIX+set}" ]; then
  ASTREINTE_ASTERISK_PREFIX="$(bash scripts/asterisk22.sh)"
fi
export ASTREINTE_ASTERISK_PREFIX

demo=var/demo
mkdir -p "$demo"
secret="$demo/ari.secret"
if [ ! -s "$secret" ]; then
  (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))' > "$secret")
fi
# The service, `astreinte doctor` and the PBX all read this file (ari.password_file
# in config/demo.yaml): nothing to export in the shell that runs them.

# SIP 5060 and ARI 8088 unless ASTREINTE_DEMO_SIP_PORT / ASTREINTE_DEMO_ARI_PORT
# choose others (a machine that already runs a PBX or another demo).
sip_port="${ASTREINTE_DEMO_SIP_PORT:-5060}"
ari_port="${ASTREINTE_DEMO_ARI_PORT:-8088}"
web_port="${ASTREINTE_DEMO_WEB_PORT:-8092}"  # the web planning (web: in the YAML)
if ! .venv/bin/python - "$sip_port" "$ari_port" "$web_port" <<'PY'
import socket, sys
for port, kind, var in ((sys.argv[1], socket.SOCK_DGRAM, "SIP"), (sys.argv[2], socket.SOCK_STREAM, "ARI"),
                        (sys.argv[3], socket.SOCK_STREAM, "WEB")):
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:  # as Asterisk binds it: TIME_WAIT left by a stopped PBX is fine
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", int(port)))
        except OSError:
            sys.exit(f"demo: port {port} ({var}) is in use on 127.0.0.1: choose another with "
                     f"ASTREINTE_DEMO_{var}_PORT=<port> scripts/demo.sh")
PY
then exit 1; fi
config=config/demo.yaml
if [ "$ari_port" != 8088 ] || [ "$sip_port" != 5060 ] || [ "$web_port" != 8092 ]; then
  # The service finds ARI (and doctor the SIP port) through its YAML: a copy with
  # those ports, one directory below the repository like config/, so its relative
  # paths resolve the same.
  config=var/demo.yaml
  sed -e "s#http://127.0.0.1:8088#http://127.0.0.1:$ari_port#" \
      -e "s#udp:127.0.0.1:5060#udp:127.0.0.1:$sip_port#" \
      -e "s#127.0.0.1:8092#127.0.0.1:$web_port#g" config/demo.yaml > "$config"
fi

# Simulated mobiles: run `scripts/demo-phone.sh accept +33610000001` to be Alice.
# ASTREINTE_CONFIG: the dialplan fallback (service down) reads the same YAML.
.venv/bin/python -m astreinte_ari.devtools.localpbx --workdir "$demo/asterisk" \
  --password-file "$secret" --sip-port "$sip_port" --http-port "$ari_port" \
  --dialplan-global "ASTREINTE_CONFIG=$PWD/$config" \
  --mobile +33610000001=5071 --mobile +33610000002=5072 --mobile +33620000001=5081 \
  > "$demo/asterisk.out" 2>&1 &
pbx_pid=$!
trap 'kill $pbx_pid 2>/dev/null; wait $pbx_pid 2>/dev/null || true' EXIT
# localpbx prints "Asterisk 22.10.1 ready: SIP ..." once ARI answers (this waited
# for "Asterisk ready", never printed: it slept 10 s and went on, ready or not).
ready=" ready: SIP "
for _ in $(seq 1 600); do
  grep -q "$ready" "$demo/asterisk.out" 2>/dev/null && break
  if ! kill -0 $pbx_pid 2>/dev/null; then cat "$demo/asterisk.out"; exit 1; fi
  sleep 0.1
done
cat "$demo/asterisk.out"
grep -q "$ready" "$demo/asterisk.out" || { echo "demo: the PBX is not ready after 60 s" >&2; exit 1; }
# The CEL file (cel.file in the YAML) appears with the PBX's first call; create it
# now so that the service finds it at start instead of warning that it is missing.
touch "$demo/asterisk/log/cel-custom/astreinte-cel.csv"

.venv/bin/astreinte check -c "$config"
.venv/bin/astreinte db upgrade -c "$config"
phone=scripts/demo-phone.sh
[ "$sip_port" = 5060 ] || phone="ASTREINTE_DEMO_SIP_PORT=$sip_port scripts/demo-phone.sh"
echo "Place a call:  $phone accept +33610000001   (Alice's mobile, presses 1)"
echo "          and: $phone call +33180000000       (a caller on the on-call line)"
echo "Audit trail:   .venv/bin/astreinte calls list -c $config"
echo "Check setup:   .venv/bin/astreinte doctor -c $config"
# The demo mails nothing: the sign-in link (one use, 15 minutes) is printed instead.
echo "Web planning:  http://127.0.0.1:$web_port/  sign in as Alice (agent) with:"
echo "               $(.venv/bin/astreinte web login-link alice -c "$config" 2>/dev/null)"
echo "  as the manager: .venv/bin/astreinte web login-link sup -c $config"
.venv/bin/astreinte run -c "$config"
