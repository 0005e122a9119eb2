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
# The parser again as a build without SSSE3/SSE4.1 has it (plain x86-64): no shaped reads,
# every value through the byte loops, which the workspace's x86-64-v2 build never takes.
# RUSTFLAGS replaces .cargo/config.toml's flags; its own target folder keeps the main
# build's cache. About 2.5 minutes cold on two cores.
CARGO_TARGET_DIR=target/portable RUSTFLAGS="-C target-cpu=x86-64" cargo test -p flowcore-feeds
