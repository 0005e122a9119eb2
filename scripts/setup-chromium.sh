#!/usr/bin/env bash
# Debian's Chromium for the backtest report test (tests/tests/backtest_report.rs opens the
# HTML report headless). Installed once with apt-get (as root, or through sudo); a machine
# that has /usr/bin/chromium already skips this.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-chromium: need root or sudo to apt-get install chromium" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup-chromium: installing Debian's chromium (once)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version >&2
