#!/usr/bin/env bash
# The test command README.md gives and CI runs: the Python venvs the tests need (the
# third-party WebSocket server, scripts/setup-python.sh; a real FreqTrade for the gateway,
# scripts/setup-freqtrade.sh), then every test, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-python.sh
./scripts/setup-freqtrade.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
