#!/usr/bin/env python3
"""Prints spot vs perp CVD (BTC, base units) and spot book imbalance, one line per 30 s."""
import json
import sys

bars, tops = sys.argv[1], sys.argv[2]
agg = {}
for line in open(bars):
    r = json.loads(line)
    if r["venue"] in ("agg-spot", "agg-perp"):
        agg.setdefault(r["ts"], {})[r["venue"]] = r
obi = {}
for line in open(tops):
    r = json.loads(line)
    if r["venue"] == "binance-spot" and r["synced"]:
        obi[r["ts"]] = r["obi"]
print(f"{'time (UTC)':<10} {'spot CVD':>12} {'perp CVD':>12} {'spot-perp':>12} {'spot obi':>10}")
for ts in sorted(agg)[::30]:
    s, p = agg[ts].get("agg-spot"), agg[ts].get("agg-perp")
    if not s or not p:
        continue
    sc, pc = float(s["cvd"]), float(p["cvd"])
    hhmmss = __import__("time").strftime("%H:%M:%S", __import__("time").gmtime(ts / 1000))
    print(f"{hhmmss:<10} {sc:>12.4f} {pc:>12.4f} {sc - pc:>12.4f} {obi.get(ts, 'n/a'):>10}")
