#!/usr/bin/env bash
# The test command README.md gives and CI runs: the Python venv the live tests need
# (scripts/setup-python.sh), then every test, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-python.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
