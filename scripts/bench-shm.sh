#!/usr/bin/env bash
# The shared-memory hop against a Unix socket and Redis pub/sub, in one run.
# Installs redis-server from the distribution's packages if it is missing, starts a private
# instance on a free loopback port (no persistence), runs the bench, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-redis.sh
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --loglevel warning >/tmp/flowcore-bench-redis.log 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
REDIS_PORT=$port cargo bench -p flowcore-benches --bench shm "$@"
