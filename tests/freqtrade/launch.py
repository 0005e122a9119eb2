#!/usr/bin/env python3
"""Offline launcher for a REAL FreqTrade 2026.9 bot (dry-run), for flowcore integration tests.

Usage (from /work/main):
    .venv-freqtrade/bin/python tests/freqtrade/launch.py --dir WORKDIR --port PORT \
        --mode spot|futures --password PW [--force-entry true|false] \
        [--max-open-trades N] [--initial-state running|stopped|paused] [--ws-token TOKEN]

It writes WORKDIR/config.json and WORKDIR/user_data/strategies/flowcore_nosignal.py, patches the
network methods of the ccxt binance classes (sync, async and pro) with offline versions serving
synthetic markets/prices, blocks every non-loopback socket in the process, and then runs
freqtrade's own entry point `freqtrade.main.main(["trade", ...])`. Bot loop, API server (auth,
validation), sqlite db (WORKDIR/tradesv3.dryrun.sqlite) and message websocket are all real.
SIGTERM -> freqtrade's own handler -> clean shutdown (exit code 130, see below).

VERIFICATION LOG (by hand, freqtrade 2026.9 / ccxt 4.5.90, venv = symlink to /tmp/ftprobe):
- Isolation: `unshare -rn` and `unshare -n` both work here (we run as uid 0). The new netns has only
  `lo`, DOWN, so the check ran `unshare -n bash -c 'ip link set lo up; <launcher> & <curl ...>'`,
  i.e. bot and client in the same namespace (a client outside cannot reach it). It was also run
  without unshare (host loopback, how a cargo test would start it): same results. In every run the
  in-process guard below refuses DNS/connect for anything but loopback; a direct check gave
  gaierror "flowcore offline: lookup of 'api.binance.com' blocked", and unpatched ccxt REST calls
  raise ExchangeNotAvailable "flowcore offline: binance GET https://api.binance.com/... blocked".
  Logs of all runs: no "blocked", Traceback, or "Could not".
- Startup (process start -> /ping answers): 4.4-5.0 s on a quiet machine, 6-8 s with 3 bots
  starting at once / under load. Most of it is importing freqtrade (~3 s).
- Spot, port 18081, fresh dir: wrong password on POST /token/login -> 401
  {"detail":"Incorrect username or password"}; login -> {"access_token","refresh_token"};
  GET /show_config -> state "running", runmode "dry_run", trading_mode "spot", short_allowed false,
  stake_amount "100", max_open_trades 5.0, force_entry_enable true, api_version 2.5.
  POST /forceenter {"pair":"BTC/USDT","side":"long","stakeamount":100,"entry_tag":"12345"} -> 200
  in 0.13-0.18 s: trade_id 1, is_open true, is_short false, enter_tag "12345", amount 0.00166,
  open_rate 60000.01, stake_amount 99.6000166, leverage 1.0, has_open_orders false,
  orders[0] status "closed", order_type "market". Again -> 502 "position for BTC/USDT already open
  - id: 1". GET /status -> [trade 1]; GET /count -> {"current":1,"max":5,"total_stake":99.6000166}.
  POST /forceexit {"tradeid":1} -> 200 {"result":"Created exit order for trade 1."}; again -> 502
  "invalid argument"; /status -> []; /trades -> trades_count 1, is_open false, exit_reason
  "force_exit", close_rate 59999.99, close_profit_abs -0.1992332.
- Futures, port 18082: show_config trading_mode "futures", short_allowed true. forceenter
  BTC/USDT:USDT short stakeamount 100 entry_tag "12345" -> is_short true, amount 0.00166,
  open_rate 59999.9, leverage 1.0, liquidation_price 116545.6, fee_open 0.0005; forceexit -> result
  string; /status []; /trades closed at 60000.1. ETH/USDT:USDT long stake 50 leverage 3 -> amount
  0.0499, open_rate 3000.01, leverage 3.0.
- --force-entry false -> forceenter 502 {"error":"Error querying /api/v1/forceenter: Force_entry not
  enabled."}. Basic auth with a wrong password / no auth -> 401 {"detail":"Unauthorized"}; bad
  Bearer -> 401 {"detail":"Could not validate credentials"}.
- --initial-state paused -> show_config state "paused", forceenter 502 "trader is not running";
  --initial-state stopped -> state "stopped", /status [] (200), forceenter "trader is not running";
  POST /start -> {"status":"starting trader ..."} and then forceenter works. --max-open-trades 1 ->
  second forceenter 502 "Maximum number of trades is reached.".
- Restart: open trade, `kill -9` the launcher, start again on the same --dir/--port: ping after
  4.4-6 s, /status still lists trade 1 (same id, tag, open_rate); a JWT issued before the restart
  is still accepted (the jwt secret is derived from the password). Same after SIGTERM + restart
  (2 futures trades kept), and with an unfilled limit entry (still open after the restart; it
  filled once prices.json moved the market through it).
- SIGTERM: freqtrade's handler shuts down cleanly in ~1 s; exit code is 130 (freqtrade turns
  SIGTERM into KeyboardInterrupt -> "SIGINT received, aborting ..." -> sys.exit(130)), not 0.
- Message websocket ?token=flowcore-ws-token: subscribe, then forceenter -> flat JSON
  {"trade_id":1,"type":"entry","enter_tag":"777","pair":...,"direction":"Short",...}; bad token ->
  handshake rejected with HTTP 403.

Prices (deterministic, constant): mid BTC 60000, ETH 3000; bid = mid - 1 tick, ask = mid + 1 tick
(tick: spot 0.01 for both; futures BTC 0.1, ETH 0.01). Long market entries fill at the ask, exits
at the bid (shorts the reverse). Optional WORKDIR/prices.json, e.g. {"BTC": 61000, "ETH": 3100},
overrides the mid prices; it is re-read whenever its mtime changes (lets a test move the market).
Funding rate is 0, so futures PnL has no funding component.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import socket
import sys
import time
from pathlib import Path


# --------------------------------------------------------------------------------------------
# CLI + config
# --------------------------------------------------------------------------------------------
def _bool(v: str) -> bool:
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true|false, got {v!r}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="offline freqtrade launcher for flowcore tests")
    p.add_argument("--dir", required=True, help="work dir (config, sqlite db, user_data, logs)")
    p.add_argument("--port", required=True, type=int)
    p.add_argument("--mode", required=True, choices=["spot", "futures"])
    p.add_argument("--password", required=True)
    p.add_argument("--force-entry", type=_bool, default=True)
    p.add_argument("--max-open-trades", type=int, default=5)
    p.add_argument("--initial-state", choices=["running", "stopped", "paused"], default="running")
    p.add_argument("--ws-token", default="flowcore-ws-token")
    # A different secret on restart voids every token issued before: how the gateway's
    # "token refused -> refresh -> log in again" path is driven without waiting 15 minutes.
    p.add_argument("--jwt-secret", default=None)
    return p.parse_args(argv)


STRATEGY_NAME = "FlowcoreNoSignal"
STRATEGY_SRC = '''\
# Generated by tests/freqtrade/launch.py - never signals; trades only via forceenter/forceexit.
from pandas import DataFrame

from freqtrade.strategy import IStrategy


class FlowcoreNoSignal(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 1000.0}
    stoploss = -0.99
    trailing_stop = False
    use_exit_signal = False
    process_only_new_candles = True
    startup_candle_count = 0
    can_short = __CAN_SHORT__

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        dataframe["enter_short"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        dataframe["exit_short"] = 0
        return dataframe
'''


def write_files(args: argparse.Namespace) -> tuple[Path, Path]:
    workdir = Path(args.dir).resolve()
    user_data = workdir / "user_data"
    for sub in ("strategies", "data", "logs", "backtest_results", "hyperopts", "plot", "notebooks"):
        (user_data / sub).mkdir(parents=True, exist_ok=True)
    futures = args.mode == "futures"
    (user_data / "strategies" / "flowcore_nosignal.py").write_text(
        STRATEGY_SRC.replace("__CAN_SHORT__", "True" if futures else "False")
    )
    pairs = ["BTC/USDT:USDT", "ETH/USDT:USDT"] if futures else ["BTC/USDT", "ETH/USDT"]
    # Deterministic secret: JWTs issued before a restart stay valid after it.
    jwt_secret = args.jwt_secret or hashlib.sha256(f"flowcore-freqtrade-jwt:{args.password}".encode()).hexdigest()
    config = {
        "bot_name": f"flowcore-test-{args.mode}",
        "max_open_trades": args.max_open_trades,
        "stake_currency": "USDT",
        "stake_amount": 100,  # default only; forceenter's "stakeamount" overrides it
        "tradable_balance_ratio": 0.99,
        "dry_run": True,
        "dry_run_wallet": 10000,
        "cancel_open_orders_on_exit": False,
        "trading_mode": "futures" if futures else "spot",
        "margin_mode": "isolated" if futures else "",
        "timeframe": "1m",
        "unfilledtimeout": {"entry": 10, "exit": 10, "exit_timeout_count": 0, "unit": "minutes"},
        # Order-book pricing: binance futures tickers carry no usable price for freqtrade
        # ("Ticker pricing not available"), so both modes price from the (synthetic) book top.
        "entry_pricing": {
            "price_side": "other",
            "use_order_book": True,
            "order_book_top": 1,
            "price_last_balance": 0.0,
            "check_depth_of_market": {"enabled": False, "bids_to_ask_delta": 1},
        },
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "order_types": {
            "entry": "market",
            "exit": "market",
            "emergency_exit": "market",
            "force_entry": "market",
            "force_exit": "market",
            "stoploss": "market",
            "stoploss_on_exchange": False,
        },
        "exchange": {
            "name": "binance",
            "key": "",
            "secret": "",
            "enable_ws": False,
            "markets_refresh_interval": 60,
            "ccxt_config": {},
            "ccxt_async_config": {},
            "pair_whitelist": pairs,
            "pair_blacklist": [],
        },
        "pairlists": [{"method": "StaticPairList"}],
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "api_server": {
            "enabled": True,
            "listen_ip_address": "127.0.0.1",
            "listen_port": args.port,
            "verbosity": "error",
            "enable_openapi": False,
            "jwt_secret_key": jwt_secret,
            "ws_token": args.ws_token,
            "CORS_origins": [],
            "username": "flowcore",
            "password": args.password,
        },
        "initial_state": args.initial_state,  # natively supports running|paused|stopped
        "force_entry_enable": args.force_entry,
        "internals": {"process_throttle_secs": 1, "heartbeat_interval": 0},
        "db_url": f"sqlite:///{workdir / 'tradesv3.dryrun.sqlite'}",
        "user_data_dir": str(user_data),
        "dataformat_ohlcv": "feather",
        "dataformat_trades": "feather",
    }
    cfg_path = workdir / "config.json"
    tmp = cfg_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, cfg_path)
    return workdir, cfg_path


# --------------------------------------------------------------------------------------------
# Socket guard: nothing but loopback may be contacted from this process.
# --------------------------------------------------------------------------------------------
def _is_local_host(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]")
    if host in ("", "localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def install_socket_guard() -> None:
    orig_getaddrinfo = socket.getaddrinfo
    orig_connect = socket.socket.connect
    orig_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *a, **k):
        if not _is_local_host(host):
            raise socket.gaierror(socket.EAI_NONAME, f"flowcore offline: lookup of {host!r} blocked")
        return orig_getaddrinfo(host, *a, **k)

    def _check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local_host(address[0]):
            raise ConnectionRefusedError(f"flowcore offline: connect to {address!r} blocked")

    def connect(self, address):
        _check(self, address)
        return orig_connect(self, address)

    def connect_ex(self, address):
        _check(self, address)
        return orig_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


# --------------------------------------------------------------------------------------------
# Synthetic exchange
# --------------------------------------------------------------------------------------------
DEFAULT_MIDS = {"BTC": 60000.0, "ETH": 3000.0}
# base -> (spot tick, futures tick, amount step)
SPECS = {"BTC": (0.01, 0.1, 0.00001), "ETH": (0.01, 0.01, 0.0001)}
FAR_FUTURE_MS = 4133404800000  # binance's perpetual "deliveryDate" (2100-12-25)
BOOK_LEVELS = 100
LEVEL_VOLUME = 1000.0

_PRICES_FILE: Path | None = None
_prices_cache: dict = {"mtime": None, "mids": dict(DEFAULT_MIDS)}


def _mid(base: str) -> float:
    if _PRICES_FILE is not None:
        try:
            mtime = _PRICES_FILE.stat().st_mtime_ns
        except OSError:
            mtime = None
        if mtime != _prices_cache["mtime"]:
            mids = dict(DEFAULT_MIDS)
            if mtime is not None:
                try:
                    data = json.loads(_PRICES_FILE.read_text())
                    for k, v in data.items():
                        mids[str(k).split("/")[0].upper()] = float(v)
                except Exception as e:  # keep the previous prices on a half-written file
                    print(f"launch.py: ignoring unreadable {_PRICES_FILE}: {e}", file=sys.stderr)
                    return _prices_cache["mids"][base]
            _prices_cache.update(mtime=mtime, mids=mids)
    return _prices_cache["mids"][base]


def _build_markets() -> list[dict]:
    markets = []
    for base, (spot_tick, fut_tick, step) in SPECS.items():
        common_limits = {
            "amount": {"min": step, "max": 9000.0},
            "market": {"min": step, "max": 9000.0},
            "cost": {"min": 5.0, "max": None},
        }
        markets.append(
            {
                "id": f"{base}USDT",
                "lowercaseId": f"{base.lower()}usdt",
                "symbol": f"{base}/USDT",
                "base": base,
                "quote": "USDT",
                "settle": None,
                "baseId": base,
                "quoteId": "USDT",
                "settleId": None,
                "type": "spot",
                "spot": True,
                "margin": False,
                "marginModes": {"cross": False, "isolated": False},
                "swap": False,
                "future": False,
                "option": False,
                "index": None,
                "active": True,
                "contract": False,
                "linear": None,
                "inverse": None,
                "subType": None,
                "taker": 0.001,
                "maker": 0.001,
                "contractSize": None,
                "expiry": None,
                "expiryDatetime": None,
                "strike": None,
                "optionType": None,
                "precision": {"amount": step, "price": spot_tick, "base": 1e-08, "quote": 1e-08},
                "limits": {
                    "leverage": {"min": None, "max": None},
                    "price": {"min": spot_tick, "max": 1000000.0},
                    **common_limits,
                },
                "created": 1502942400000,
                "info": {"symbol": f"{base}USDT", "status": "TRADING"},
            }
        )
        markets.append(
            {
                "id": f"{base}USDT",
                "lowercaseId": f"{base.lower()}usdt",
                "symbol": f"{base}/USDT:USDT",
                "base": base,
                "quote": "USDT",
                "settle": "USDT",
                "baseId": base,
                "quoteId": "USDT",
                "settleId": "USDT",
                "type": "swap",
                "spot": False,
                "margin": False,
                "marginModes": {"cross": True, "isolated": True},
                "swap": True,
                "future": False,
                "option": False,
                "index": None,
                "active": True,
                "contract": True,
                "linear": True,
                "inverse": False,
                "subType": "linear",
                "taker": 0.0005,
                "maker": 0.0002,
                "contractSize": 1.0,
                "expiry": None,
                "expiryDatetime": None,
                "strike": None,
                "optionType": None,
                "precision": {"amount": step, "price": fut_tick, "base": 1e-08, "quote": 1e-08},
                "limits": {
                    "leverage": {"min": 1.0, "max": 125.0},
                    "price": {"min": fut_tick, "max": 1000000.0},
                    **common_limits,
                },
                "created": 1569398400000,
                "info": {
                    "symbol": f"{base}USDT",
                    "status": "TRADING",
                    "contractType": "PERPETUAL",
                    "deliveryDate": str(FAR_FUTURE_MS),
                },
            }
        )
    return markets


_MARKETS = {m["symbol"]: m for m in _build_markets()}


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _market(symbol: str) -> dict:
    import ccxt

    m = _MARKETS.get(symbol)
    if m is None:
        raise ccxt.BadSymbol(f"binance (offline) does not have market symbol {symbol}")
    return m


def _quote(symbol: str) -> tuple[float, float, float, float]:
    m = _market(symbol)
    tick = m["precision"]["price"]
    mid = _mid(m["base"])
    return mid, round(mid - tick, 8), round(mid + tick, 8), tick


def _default_type(ex, params) -> str:
    t = (params or {}).get("type") or (params or {}).get("defaultType")
    if not t:
        t = (getattr(ex, "options", None) or {}).get("defaultType", "spot")
    return "swap" if t in ("swap", "future", "linear", "delivery") else "spot"


def _symbols_for(ex, symbols, params) -> list[str]:
    if symbols:
        return [s for s in symbols if s in _MARKETS]
    t = _default_type(ex, params)
    return [s for s, m in _MARKETS.items() if m["type"] == t]


def _ticker(symbol: str) -> dict:
    mid, bid, ask, _ = _quote(symbol)
    now = _now_ms()
    return {
        "symbol": symbol,
        "timestamp": now,
        "datetime": _iso(now),
        "high": mid,
        "low": mid,
        "bid": bid,
        "bidVolume": LEVEL_VOLUME,
        "ask": ask,
        "askVolume": LEVEL_VOLUME,
        "vwap": mid,
        "open": mid,
        "close": mid,
        "last": mid,
        "previousClose": mid,
        "change": 0.0,
        "percentage": 0.0,
        "average": mid,
        "baseVolume": 1000.0,
        "quoteVolume": 1000.0 * mid,
        "markPrice": mid,
        "indexPrice": mid,
        "info": {},
    }


def _order_book(symbol: str, limit=None) -> dict:
    mid, bid, ask, tick = _quote(symbol)
    n = min(int(limit or BOOK_LEVELS), BOOK_LEVELS)
    now = _now_ms()
    return {
        "symbol": symbol,
        "bids": [[round(bid - i * tick, 8), LEVEL_VOLUME] for i in range(n)],
        "asks": [[round(ask + i * tick, 8), LEVEL_VOLUME] for i in range(n)],
        "timestamp": now,
        "datetime": _iso(now),
        "nonce": now,
    }


def _ohlcv(ex, symbol, timeframe="1m", since=None, limit=None) -> list[list]:
    m = _market(symbol)
    tf_ms = int(ex.parse_timeframe(timeframe) * 1000)
    limit = int(limit or 500)
    now = _now_ms()
    current = now - now % tf_ms  # open time of the (incomplete) current candle
    if since is not None:
        start = -(-int(since) // tf_ms) * tf_ms  # first candle opening at/after since
    else:
        start = current - (limit - 1) * tf_ms
    mid = _mid(m["base"])
    out = []
    ts = start
    while ts <= current and len(out) < limit:
        out.append([ts, mid, mid, mid, mid, 10.0])
        ts += tf_ms
    return out


FUNDING_MS = 8 * 3600 * 1000


def _funding_history(symbol, since=None, limit=None) -> list[dict]:
    _market(symbol)
    limit = int(limit or 100)
    now = _now_ms()
    current = now - now % FUNDING_MS
    start = -(-int(since) // FUNDING_MS) * FUNDING_MS if since is not None else (
        current - (limit - 1) * FUNDING_MS
    )
    out = []
    ts = start
    while ts <= current and len(out) < limit:
        out.append(
            {"info": {}, "symbol": symbol, "fundingRate": 0.0, "timestamp": ts, "datetime": _iso(ts)}
        )
        ts += FUNDING_MS
    return out


def _funding_rate(symbol) -> dict:
    mid, _, _, _ = _quote(symbol)
    now = _now_ms()
    nxt = now - now % FUNDING_MS + FUNDING_MS
    return {
        "info": {},
        "symbol": symbol,
        "markPrice": mid,
        "indexPrice": mid,
        "interestRate": 0.0,
        "estimatedSettlePrice": None,
        "timestamp": now,
        "datetime": _iso(now),
        "fundingRate": 0.0,
        "fundingTimestamp": nxt,
        "fundingDatetime": _iso(nxt),
        "nextFundingRate": None,
        "nextFundingTimestamp": None,
        "nextFundingDatetime": None,
        "previousFundingRate": None,
        "previousFundingTimestamp": None,
        "previousFundingDatetime": None,
        "interval": "8h",
    }


def _leverage_tiers(symbol) -> list[dict]:
    m = _market(symbol)
    return [
        {
            "tier": 1.0,
            "symbol": symbol,
            "currency": "USDT",
            "minNotional": 0.0,
            "maxNotional": 1.0e9,
            "maintenanceMarginRate": 0.004,
            "maxLeverage": 125.0,
            "info": {"bracket": "1", "cum": "0.0", "symbol": m["id"]},
        }
    ]


def _balance() -> dict:
    b = {"free": 10000.0, "used": 0.0, "total": 10000.0}
    return {
        "info": {},
        "USDT": dict(b),
        "free": {"USDT": b["free"]},
        "used": {"USDT": b["used"]},
        "total": {"USDT": b["total"]},
    }


# name -> implementation(self, *args, **kwargs). Every one is synchronous; async wrappers below.
def _impls() -> dict:
    return {
        "fetch_markets": lambda self, params={}: [dict(m) for m in _MARKETS.values()],
        "fetch_currencies": lambda self, params={}: None,  # ccxt derives currencies from markets
        "fetch_time": lambda self, params={}: _now_ms(),
        "fetch_status": lambda self, params={}: {
            "status": "ok", "updated": _now_ms(), "eta": None, "url": None, "info": {}
        },
        "fetch_ticker": lambda self, symbol, params={}: _ticker(symbol),
        "fetch_tickers": lambda self, symbols=None, params={}: {
            s: _ticker(s) for s in _symbols_for(self, symbols, params)
        },
        "fetch_bids_asks": lambda self, symbols=None, params={}: {
            s: _ticker(s) for s in _symbols_for(self, symbols, params)
        },
        "fetch_order_book": lambda self, symbol, limit=None, params={}: _order_book(symbol, limit),
        "fetch_ohlcv": lambda self, symbol, timeframe="1m", since=None, limit=None, params={}: (
            _ohlcv(self, symbol, timeframe, since, limit)
        ),
        "fetch_trading_fees": lambda self, params={}: {
            s: {
                "info": {},
                "symbol": s,
                "maker": m["maker"],
                "taker": m["taker"],
                "percentage": True,
                "tierBased": False,
            }
            for s, m in _MARKETS.items()
        },
        "fetch_funding_rate": lambda self, symbol, params={}: _funding_rate(symbol),
        "fetch_funding_rates": lambda self, symbols=None, params={}: {
            s: _funding_rate(s)
            for s in (symbols or [s for s, m in _MARKETS.items() if m["swap"]])
            if s in _MARKETS and _MARKETS[s]["swap"]
        },
        "fetch_funding_rate_history": lambda self, symbol=None, since=None, limit=None, params={}: (
            _funding_history(symbol, since, limit)
        ),
        "fetch_funding_history": lambda self, symbol=None, since=None, limit=None, params={}: [],
        "fetch_leverage_tiers": lambda self, symbols=None, params={}: {
            s: _leverage_tiers(s)
            for s in (symbols or [s for s, m in _MARKETS.items() if m["swap"]])
            if s in _MARKETS and _MARKETS[s]["swap"]
        },
        "fetch_market_leverage_tiers": lambda self, symbol, params={}: _leverage_tiers(symbol),
        "fetch_balance": lambda self, params={}: _balance(),
        "fetch_positions": lambda self, symbols=None, params={}: [],
        "fetch_trades": lambda self, symbol, since=None, limit=None, params={}: [],
    }


def install_ccxt_patches() -> None:
    import ccxt
    import ccxt.async_support
    import ccxt.pro

    def offline_fetch_sync(self, url, method="GET", headers=None, body=None):
        raise ccxt.ExchangeNotAvailable(f"flowcore offline: {self.id} {method} {url} blocked")

    async def offline_fetch_async(self, url, method="GET", headers=None, body=None):
        raise ccxt.ExchangeNotAvailable(f"flowcore offline: {self.id} {method} {url} blocked")

    # Any REST request not covered by the synthetic methods ends here and raises.
    # (ccxt.Exchange is the sync base; ccxt.async_support.Exchange (== ccxt.pro.Exchange) the async
    # one - set on both so the subclasses' real HTTP fetch is shadowed.)
    ccxt.Exchange.fetch = offline_fetch_sync
    ccxt.async_support.Exchange.fetch = offline_fetch_async

    def make_async(fn):
        async def wrapper(self, *a, **k):
            return fn(self, *a, **k)

        wrapper.__name__ = getattr(fn, "__name__", "offline")
        return wrapper

    impls = _impls()
    for cls in (ccxt.binance, ccxt.async_support.binance, ccxt.pro.binance):
        is_async = cls is not ccxt.binance
        for name, fn in impls.items():
            setattr(cls, name, make_async(fn) if is_async else fn)

    # Websocket connections (ccxt.pro watch_*) must never be attempted (enable_ws is false too).
    async def offline_watch(self, *a, **k):
        raise ccxt.ExchangeNotAvailable("flowcore offline: websocket blocked")

    ccxt.pro.binance.watch = offline_watch
    if hasattr(ccxt.pro.binance, "watch_multiple"):
        ccxt.pro.binance.watch_multiple = offline_watch


# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    global _PRICES_FILE
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir, cfg_path = write_files(args)
    _PRICES_FILE = workdir / "prices.json"
    os.chdir(workdir)
    install_socket_guard()
    install_ccxt_patches()

    from freqtrade.main import main as ft_main

    ft_main(
        [
            "trade",
            "--config", str(cfg_path),
            "--strategy", STRATEGY_NAME,
            "--userdir", str(workdir / "user_data"),
            "--db-url", f"sqlite:///{workdir / 'tradesv3.dryrun.sqlite'}",
            "--logfile", str(workdir / "freqtrade.log"),
        ]
    )  # calls sys.exit()


if __name__ == "__main__":
    main()
