#!/usr/bin/env bash
# The offline demo (README's first command): a simulated Binance serves the bundled BTC
# recordings (spot 2024-08-08/09, USD-M) on loopback, `flowcore run` trades live against
# it and publishes to shared memory, and a bus reader prints spot vs perp CVD and order-book
# imbalance once a second. Extra arguments go to `flowcore demo` (try --seconds 20 or
# --pace 60x); the run's bars and tops are also written to out/. Then a backtest of the same
# strategies over the same Binance recordings: its summary, and out/backtest.html (opens
# offline).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p flowcore-tools
./target/release/flowcore demo --out out "$@"
d=data/binance
./target/release/flowcore backtest --strategies config/strategies/short.toml \
  --feed-latency-ms 1 --order-latency-ms 5 \
  --json out/backtest.json --report out/backtest.html \
  binance-spot=$d/spot_btcusdt_20240808.txt.gz binance-spot=$d/spot_btcusdt_20240809.txt.gz \
  binance-usdm=$d/usdm_btcusdt_20240808.txt.gz
