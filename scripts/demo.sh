#!/usr/bin/env bash
# The offline demo (README's first command): a simulated Binance serves the bundled BTC
# recordings (spot 2024-08-08/09, USD-M) on loopback, `flowcore run` trades live against
# it and publishes to shared memory, and a bus reader prints spot vs perp CVD and order-book
# imbalance once a second. Extra arguments go to `flowcore demo` (try --seconds 20 or
# --pace 60x); the run's bars and tops are also written to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p flowcore-tools
exec ./target/release/flowcore demo --out out "$@"
