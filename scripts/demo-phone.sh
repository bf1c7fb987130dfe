#!/usr/bin/env bash
# Usage: scripts/demo-phone.sh accept|busy|noanswer|silent|reject MOBILE
#        scripts/demo-phone.sh call DID
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/demo_phone.py "$@"
