#!/usr/bin/env bash
# Usage: scripts/demo-phone.sh accept|busy|noanswer|silent|reject MOBILE
#        scripts/demo-phone.sh call DID [--hold SECONDS] [--from NUMBER]
# (scripts/demo_phone.py --help says more)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/demo_phone.py "$@"
