#!/usr/bin/env bash
# One command for the demo: installs everything, starts a private Asterisk 22
# LTS on loopback with the project's dialplan (scripts/asterisk22.sh builds it
# on first use, ~3-5 min; then it is cached), migrates the SQLite audit
# database and runs the on-call service with config/demo.yaml in the
# foreground. Ctrl-C stops both.
# ASTREINTE_ASTERISK_PREFIX="" scripts/demo.sh runs it on the system Asterisk 16.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
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

# Simulated mobiles: run `scripts/demo-phone.sh accept +33610000001` to be Alice.
# ASTREINTE_CONFIG: the dialplan fallback (service down) reads the same YAML.
.venv/bin/python -m astreinte_ari.localpbx --workdir "$demo/asterisk" \
  --password-file "$secret" --sip-port 5060 --http-port 8088 \
  --dialplan-global "ASTREINTE_CONFIG=$PWD/config/demo.yaml" \
  --mobile +33610000001=5071 --mobile +33610000002=5072 --mobile +33620000001=5081 \
  > "$demo/asterisk.out" 2>&1 &
pbx_pid=$!
trap 'kill $pbx_pid 2>/dev/null; wait $pbx_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "Asterisk ready" "$demo/asterisk.out" 2>/dev/null && break
  if ! kill -0 $pbx_pid 2>/dev/null; then cat "$demo/asterisk.out"; exit 1; fi
  sleep 0.1
done
cat "$demo/asterisk.out"

.venv/bin/astreinte check -c config/demo.yaml
.venv/bin/astreinte db upgrade -c config/demo.yaml
echo "Place a call:  scripts/demo-phone.sh accept +33610000001   (Alice's mobile, presses 1)"
echo "          and: scripts/demo-phone.sh call +33180000000       (a caller on the on-call line)"
echo "Audit trail:   .venv/bin/astreinte calls list -c config/demo.yaml"
echo "Check setup:   .venv/bin/astreinte doctor -c config/demo.yaml"
.venv/bin/astreinte run -c config/demo.yaml
