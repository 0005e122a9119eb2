#!/usr/bin/env bash
# Debian's redis-server for the tests and benches that measure Redis pub/sub beside the
# shared-memory bus (`flowcore bench e2e`'s conventional stack, scripts/bench-shm.sh).
# Installed once with apt-get (as root, or through sudo); a machine that has redis-server
# already skips this. The bench starts its own private instance; none is left running.
set -euo pipefail
if command -v redis-server >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-redis: need root or sudo to apt-get install redis-server" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup-redis: installing Debian's redis-server (once)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
redis-server --version >&2
