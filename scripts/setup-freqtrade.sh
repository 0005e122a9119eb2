#!/usr/bin/env bash
# The real FreqTrade the gateway tests drive: a venv at .venv-freqtrade with freqtrade from PyPI
# at the version tests/freqtrade/requirements.txt pins (about a minute and 0.8 GB the first time;
# cached after). Idempotent; scripts/test.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/freqtrade/requirements.txt
venv=.venv-freqtrade
stamp=$venv/.requirements
if [ -x $venv/bin/freqtrade ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
python3 -m venv $venv
$venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
