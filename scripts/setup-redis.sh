#!/usr/bin/env bash
# Debian's redis-server for the tests and benches that measure Redis pub/sub beside the
# shared-memory bus (`flowcore bench e2e`'s conventional stack, scripts/bench-shm.sh).
# Installed once; a machine that has redis-server already skips this. The bench starts its
# own private instance; none is left running.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
"$(dirname "$0")/apt-once.sh" setup-redis redis-server
redis-server --version >&2
