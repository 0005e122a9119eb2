#!/bin/sh
# Regenerate the golden outputs. Run from the repository root.
set -e
python3 tests/golden/golden.py replay \
  --bars-out tests/golden/bars_btc.jsonl --tops-out tests/golden/tops_btc.jsonl \
  binance-spot=data/binance/spot_btcusdt_20240808.txt.gz \
  binance-spot=data/binance/spot_btcusdt_20240809.txt.gz \
  binance-usdm=data/binance/usdm_btcusdt_20240808.txt.gz \
  binance-coinm=data/binance/coinm_btcusd_perp_20240808.txt.gz \
  binance-coinm=data/binance/coinm_btcusd_perp_20240809.txt.gz
python3 tests/golden/golden.py replay \
  --bars-out tests/golden/bars_eth.jsonl --tops-out tests/golden/tops_eth.jsonl \
  binance-spot=data/binance/spot_ethusdt_20240808.txt.gz \
  binance-spot=data/binance/spot_ethusdt_20240809.txt.gz \
  binance-usdm=data/binance/usdm_ethusdt_20240808.txt.gz
# The book snapshot injected by the resync test (spot BTC after depth event #600 of 0808).
python3 tests/golden/golden.py snapshot --after-local-ns 1723161314064767607 \
  binance-spot=data/binance/spot_btcusdt_20240808.txt.gz \
  > tests/golden/spot_btcusdt_snapshot_1723161314064767607.json
