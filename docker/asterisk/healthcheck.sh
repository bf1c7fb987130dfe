#!/bin/sh
# Docker HEALTHCHECK of the Asterisk container: healthy when Asterisk answers
# its CLI (fully booted), ARI's HTTP server is bound, and the project's dialplan
# (the fallback included) is loaded. The reason goes to stdout (docker inspect).
set -u
check() { # check WHAT EXPECTED CLI-COMMAND
  out="$(asterisk -rx "$3" 2>&1)" || { echo "unhealthy: $1: $out"; exit 1; }
  case "$out" in
    *"$2"*) ;;
    *) echo "unhealthy: $1: $(echo "$out" | head -n3)"; exit 1 ;;
  esac
}
check "not fully booted" "System uptime" "core show uptime"
check "ARI's HTTP server is not bound" "Server Enabled and Bound" "http show status"
check "the astreinte dialplan is not loaded" "astreinte-fallback" "dialplan show s@astreinte-fallback"
echo "healthy"
