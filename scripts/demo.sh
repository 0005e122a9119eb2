#!/usr/bin/env bash
# Offline demo on the bundled Binance BTC recordings (spot 2024-08-08/09, USD-M, COIN-M):
# replays them into 1-second bars and book tops, then shows spot vs perp CVD and imbalance.
set -euo pipefail
cd "$(dirname "$0")/.."
D=data/binance
mkdir -p out
cargo build --release -q -p flowcore-tools
./target/release/flowcore replay --bars-out out/bars.jsonl --tops-out out/tops.jsonl \
  binance-spot=$D/spot_btcusdt_20240808.txt.gz binance-spot=$D/spot_btcusdt_20240809.txt.gz \
  binance-usdm=$D/usdm_btcusdt_20240808.txt.gz \
  binance-coinm=$D/coinm_btcusd_perp_20240808.txt.gz binance-coinm=$D/coinm_btcusd_perp_20240809.txt.gz
python3 scripts/cvd_table.py out/bars.jsonl out/tops.jsonl
echo "full output: out/bars.jsonl, out/tops.jsonl"
