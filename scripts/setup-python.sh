#!/usr/bin/env bash
# The Python the tests use: a venv at .venv with the third-party WebSocket server library
# (tests/thirdparty/requirements.txt). Idempotent; CI and scripts/test.sh call it.
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/thirdparty/requirements.txt
stamp=.venv/.requirements
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
