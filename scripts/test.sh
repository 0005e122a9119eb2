#!/usr/bin/env bash
# The test command README.md gives and CI runs: the Python venvs the tests need (the
# third-party WebSocket server, scripts/setup-python.sh; a real FreqTrade for the gateway,
# scripts/setup-freqtrade.sh; Debian's Chromium for the report test, scripts/setup-chromium.sh;
# Debian's redis-server for the end-to-end bench's conventional stack, scripts/setup-redis.sh),
# then every test, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-python.sh
./scripts/setup-freqtrade.sh
./scripts/setup-chromium.sh
./scripts/setup-redis.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
