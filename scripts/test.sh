#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine or a developer's:
# installs what the tests need, lints, then runs unit + end-to-end tests
# (a private Asterisk driven by sipp, SQLite and a private PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check astreinte_ari tests scripts bench
.venv/bin/ruff format --check astreinte_ari tests scripts bench
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
