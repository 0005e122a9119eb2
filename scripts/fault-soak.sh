#!/usr/bin/env bash
# A long run through every simulator fault mixed (issue 6's several-minute soak): the BTC
# recordings played at PACE against `flowcore run`, with stalls, shutdown notices and a
# connection lifetime that forces make-before-break rotations. Prints both summaries (the
# run's per feed too), writes the health rows to OUT_DIR/health.jsonl and
# compares the run's bars with the golden bars of the full recordings (sorted rows).
#
#   scripts/fault-soak.sh [PACE] [OUT_DIR]      # defaults: 4x, a fresh temp dir
set -euo pipefail
cd "$(dirname "$0")/.."
pace="${1:-4x}"
out="${2:-$(mktemp -d)}"
mkdir -p "$out"
cargo build --release -q -p flowcore-tools
bin=target/release/flowcore
data=data/binance
key=flowcore-soak-key
"$bin" sim --pace "$pace" --wait-clients 3 --ping-interval 2 --pong-timeout 6 \
    --connection-lifetime 40 --api-key "$key" \
    --faults drop=10000,gap=3000,malformed=2000,utf8=15000,fragment=5000,pings=6000,rest=9000,refuse=25000,stall=20000,shutdown=12000 \
    binance-spot="$data/spot_btcusdt_20240808.txt.gz" binance-spot="$data/spot_btcusdt_20240809.txt.gz" \
    binance-usdm="$data/usdm_btcusdt_20240808.txt.gz" \
    binance-coinm="$data/coinm_btcusd_perp_20240808.txt.gz" binance-coinm="$data/coinm_btcusd_perp_20240809.txt.gz" \
    > "$out/sim.addr" 2> "$out/sim.log" &
sim=$!
while [ "$(wc -l < "$out/sim.addr")" -lt 3 ]; do sleep 0.2; done
{
    echo '[pipeline]'
    echo 'idle = "park"'
    python3 - "$out/sim.addr" "$key" <<'PY'
import json, sys
symbols = {"binance-spot": "BTCUSDT", "binance-usdm": "BTCUSDT", "binance-coinm": "BTCUSD_PERP"}
for line in open(sys.argv[1]):
    a = json.loads(line)
    ws = a["ws"] + ("/public" if a["venue"] == "binance-usdm" else "")
    print(f'[[feed]]\nvenue = "{a["venue"]}"\nsymbols = ["{symbols[a["venue"]]}"]\nws_url = "{ws}"')
    print(f'rest_url = "{a["rest"]}"\napi_key = "{sys.argv[2]}"\nstall_timeout_ms = 2000\nrotate_after_ms = 30000')
PY
} > "$out/run.toml"
start=$(date +%s.%N)
"$bin" run --config "$out/run.toml" --exit-on-close --bars-out "$out/bars.jsonl" \
    --health-out "$out/health.jsonl" 2> "$out/run.log"
end=$(date +%s.%N)
wait "$sim" || true
grep '^sim:' "$out/sim.log" || tail -3 "$out/sim.log"
grep '^run (' "$out/run.log" || tail -3 "$out/run.log"
grep '^  [a-z-]*: ' "$out/run.log" || true
echo "health: $(wc -l < "$out/health.jsonl") rows in $out/health.jsonl"
echo "wall: $(python3 -c "print(round($end - $start, 1))") s"
sort "$out/bars.jsonl" > "$out/bars.sorted"
sort tests/golden/bars_btc.jsonl > "$out/golden.sorted"
if cmp -s "$out/bars.sorted" "$out/golden.sorted"; then
    echo "bars: identical to tests/golden/bars_btc.jsonl ($(wc -l < "$out/bars.sorted") rows)"
else
    echo "bars: DIFFER from the golden bars (see $out)"; exit 1
fi
