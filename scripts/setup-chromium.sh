#!/usr/bin/env bash
# Debian's Chromium for the backtest report test (tests/tests/backtest_report.rs opens the
# HTML report headless). Installed once; a machine that has /usr/bin/chromium already skips
# this.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
"$(dirname "$0")/apt-once.sh" setup-chromium chromium
/usr/bin/chromium --version >&2
