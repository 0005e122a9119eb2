#!/usr/bin/env bash
# The test command README.md gives and CI runs: the Python venvs the tests need (the
# third-party WebSocket server, scripts/setup-python.sh; a real FreqTrade for the gateway,
# scripts/setup-freqtrade.sh; Debian's Chromium for the report test, scripts/setup-chromium.sh),
# then every test, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-python.sh
./scripts/setup-freqtrade.sh
./scripts/setup-chromium.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
