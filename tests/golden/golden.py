#!/usr/bin/env python3
"""Independent reference ("golden") implementation of docs/REPLAY.md for Binance recordings.

Written from the text of docs/REPLAY.md and shared/PROTOCOLS.md only (not from the Rust code).
Python 3.11 stdlib; prices, sizes and sums are integer mantissas (never float), except the
obi decay weights, which REPLAY.md defines through IEEE-754 `exp`.

Usage:
  golden.py replay [--bars-out P] [--tops-out P] VENUE=FILE...
  golden.py snapshot --after-local-ns T VENUE=FILE...

Ambiguities in REPLAY.md and the reading chosen here:
 1. Watermark and REST snapshots: the futures REST snapshot does carry `E`, but the text says
    "REST snapshots have no E and do not move it": REST snapshots never move the watermark.
 2. Messages that are ignored (futures trade with X != MARKET, the second trade-kind stream,
    out-of-order/stale depth events) still move the watermark ("any message, any stream").
    Parse errors do not (they are skipped entirely).
 3. A trade is added before the watermark of its own message is applied ("after each message
    is applied ... closes"); so a trade is only late if its second closed on an earlier message.
 4. The first trade of an instrument is never late (no series exists yet); its second may
    close immediately after the message through the watermark.
 5. A second that the watermark passes closes even if no trade reached it yet (empty bar with
    the carried close). At end of input, open seconds are [first unclosed, last trade second].
 6. vwap is null when the bar has no trades (also if the summed qty is 0).
 7. Aggregate members = every (venue, symbol) group on the command line with that base and
    kind (spot / perp), traded or not. Aggregate rows run from the smallest first second to the
    largest last second of the member series; a member with no bar at S makes S incomplete.
    `members` = the bits of the members with a bar at S, bit i for the i-th instrument of
    INSTRUMENTS (the bundled table's order) with that base and kind. The member timeout is
    not modelled: with the bundled files a member only goes silent when its file ends, and
    then its bars (the last one flushed incomplete) are the same either way.
 8. Book "synced": a snapshot accepted (lastUpdateId >= first buffered U, or nothing buffered)
    makes the book synced at once (book = snapshot, last u = lastUpdateId), before the first
    kept event is validated ("a gap unsyncs the book until a new snapshot"). A snapshot arriving
    while the book is synced is ignored. Depth events with u <= / < lastUpdateId that arrive after
    the snapshot and before the first kept event are dropped (spot and futures alike).
 9. Tops: only `@depth` stream events (not REST snapshots) trigger row boundaries; a depth
    event counts as "seen" even when it is buffered or dropped by the sync; `ts` = S*1000.
10. obi uses i = 0..9 (Rust range 0..10, exclusive). A ratio that rounds to zero prints
    "0.000000000" (no sign).
11. Files are concatenated per group; groups are merged by always taking the group whose next
    line has the smallest (local_receive_ns, file argument index).
12. Summary counters: `gaps` counts every gap (also a failing first kept event), `resyncs`
    counts snapshots accepted after the first one of a book.
13. Sanity check (not part of the contract): a bookTicker is compared with the book when the
    book's last applied u equals bookTicker.u, whether the ticker arrives after the depth event
    (compared on arrival) or before it (the usual order on spot; compared right after the
    event ending at that u is applied).
14. Blank/malformed lines and messages whose instrument is not in the table are parse errors;
    subscribe replies ({"result":..,"id":..}) are skipped silently.
"""
import argparse
import gzip
import heapq
import json
import math
import re
import sys
import time

# (venue, symbol) -> (base, quote, kind, price_scale, size_scale, contract_quote_units)
INSTRUMENTS = {
    ("binance-spot", "BTCUSDT"): ("BTC", "USDT", "spot", 2, 8, None),
    ("binance-spot", "ETHUSDT"): ("ETH", "USDT", "spot", 2, 8, None),
    ("binance-usdm", "BTCUSDT"): ("BTC", "USDT", "linear", 2, 3, None),
    ("binance-usdm", "ETHUSDT"): ("ETH", "USDT", "linear", 2, 3, None),
    ("binance-coinm", "BTCUSD_PERP"): ("BTC", "USD", "inverse", 1, 0, 100),
}
VENUES = ("binance-spot", "binance-usdm", "binance-coinm")
WEIGHTS = [round(math.exp(-0.1 * i) * 2 ** 32) for i in range(10)]
_DEC = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class ParseError(Exception):
    """A message that must be counted as a parse error and skipped."""


def parse_dec(s, scale):
    """Parse a decimal string to an integer mantissa at `scale`; extra non-zero digits fail."""
    m = _DEC.fullmatch(s) if isinstance(s, str) else None
    if not m:
        raise ParseError("bad decimal %r" % (s,))
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if frac[scale:].strip("0"):
        raise ParseError("too many digits %r" % s)
    v = int(whole + frac[:scale].ljust(scale, "0"))
    return -v if sign else v


def fmt_dec(m, scale):
    """Format an integer mantissa with exactly `scale` fractional digits."""
    sign = "-" if m < 0 else ""
    digits = str(abs(m)).rjust(scale + 1, "0")
    return sign + (digits[:-scale] + "." + digits[-scale:] if scale else digits)


def div_half_even(num, den):
    """num/den rounded half-to-even to an integer (den != 0)."""
    if den < 0:
        num, den = -num, -den
    q, r = divmod(abs(num), den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return -q if num < 0 else q


def fmt_ratio9(num, den):
    """Exact ratio num/den printed rounded half-to-even to 9 decimals; None when den == 0."""
    return None if den == 0 else fmt_dec(div_half_even(num * 10 ** 9, den), 9)


def open_lines(path):
    """Text lines of a recording, gunzipped when the name ends in .gz."""
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")


def file_symbol(path):
    """The `s` field of the first wrapped message of a file (None if there is none)."""
    with open_lines(path) as f:
        for line in f:
            try:
                obj = json.loads(line.split(" ", 1)[1])
                return obj["data"]["s"]
            except (IndexError, ValueError, KeyError, TypeError):
                continue
    return None


def parse_levels(levels, inst):
    """[[px, qty], ...] -> [(px_mantissa, qty_mantissa), ...]."""
    return [(parse_dec(l[0], inst[3]), parse_dec(l[1], inst[4])) for l in levels]


def parse_message(venue, fsym, text):
    """Parse one raw JSON message into (kind, instrument key, fields dict) or raise ParseError.
    kind: depth, snapshot, trade, aggTrade, bookTicker, other, reply."""
    try:
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ParseError("not an object")
        if "stream" in obj:
            d, stream = obj["data"], obj["stream"]
            key = (venue, d["s"])
            inst = INSTRUMENTS.get(key)
            if inst is None:
                raise ParseError("unknown instrument %r" % (key,))
            suffix = stream.split("@", 1)[1]
            f = {"E": d.get("E")}
            if f["E"] is not None and type(f["E"]) is not int:
                raise ParseError("bad E")
            if suffix.startswith("depth"):
                kind = "depth"
                f.update(U=int(d["U"]), u=int(d["u"]), bids=parse_levels(d["b"], inst),
                         asks=parse_levels(d["a"], inst), E=int(d["E"]))
                if venue != "binance-spot":
                    f["pu"] = int(d["pu"])
            elif suffix in ("trade", "aggTrade"):
                kind = suffix
                if type(d["m"]) is not bool or type(d["T"]) is not int:
                    raise ParseError("bad trade")
                f.update(T=d["T"], px=parse_dec(d["p"], inst[3]), qty=parse_dec(d["q"], inst[4]),
                         m=d["m"], X=d.get("X"))
            elif suffix == "bookTicker":
                kind = "bookTicker"
                f.update(u=int(d["u"]), b=parse_dec(d["b"], inst[3]), B=parse_dec(d["B"], inst[4]),
                         a=parse_dec(d["a"], inst[3]), A=parse_dec(d["A"], inst[4]))
            else:
                kind = "other"
            return kind, key, f
        if "lastUpdateId" in obj:
            key = (venue, fsym)
            inst = INSTRUMENTS.get(key)
            if inst is None:
                raise ParseError("snapshot for unknown instrument")
            return "snapshot", key, {"L": int(obj["lastUpdateId"]), "bids": parse_levels(obj["bids"], inst),
                                     "asks": parse_levels(obj["asks"], inst)}
        if "result" in obj and "id" in obj:
            return "reply", None, None
        raise ParseError("unknown message")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise ParseError(str(e))


class Book:
    """One Binance order book with the spot or futures sync procedure and per-second tops rows."""

    def __init__(self, key):
        self.key, self.inst = key, INSTRUMENTS[key]
        self.spot = key[0] == "binance-spot"
        self.bids, self.asks = {}, {}
        self.synced = self.pending = False
        self.buffer, self.local, self.snap_id = [], None, None
        self.cur_sec, self.writing, self.rows = None, False, []
        self.gaps = self.syncs = 0
        self.bt_checks = self.bt_checks_early = self.bt_px_mismatch = self.bt_qty_mismatch = 0
        self.early_bt = {}      # bookTickers seen before the book reached their u

    # --- sync procedure -------------------------------------------------------------
    def on_snapshot(self, f):
        """REST snapshot: accept it unless lastUpdateId < first buffered U, then replay buffer."""
        if self.synced or (self.buffer and f["L"] < self.buffer[0]["U"]):
            return
        self.bids = {p: q for p, q in f["bids"] if q != 0}
        self.asks = {p: q for p, q in f["asks"] if q != 0}
        self.synced, self.pending = True, True
        self.local = self.snap_id = f["L"]
        self.syncs += 1
        buf, self.buffer = self.buffer, []
        for ev in buf:
            if self.synced:
                self._event(ev)
            else:  # a gap inside the buffer: keep buffering from the failing event on
                self.buffer.append(ev)

    def on_depth(self, f):
        """Depth event: emit due tops rows first, then buffer or apply it."""
        if self.cur_sec is None:
            self.cur_sec = f["E"] // 1000
        while f["E"] >= (self.cur_sec + 1) * 1000:
            self.emit_row(self.cur_sec)
            self.cur_sec += 1
        if self.synced:
            self._event(f)
        else:
            self.buffer.append(f)

    def _event(self, ev):
        """Apply one depth event to a synced book (first-event check, then U/u or pu chain)."""
        if self.pending:
            L = self.snap_id
            if (ev["u"] <= L) if self.spot else (ev["u"] < L):
                return
            ok = (ev["U"] <= L + 1 <= ev["u"]) if self.spot else (ev["U"] <= L <= ev["u"])
            if not ok:
                return self._gap(ev)
            self.pending = False
        elif self.spot:
            if ev["u"] < self.local:
                return
            if ev["U"] > self.local + 1:
                return self._gap(ev)
        elif ev["pu"] != self.local:
            return self._gap(ev)
        for side, levels in ((self.bids, ev["bids"]), (self.asks, ev["asks"])):
            for p, q in levels:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.local = ev["u"]
        if self.early_bt:
            t = self.early_bt.pop(self.local, None)
            if t is not None:
                self._compare(t)
                self.bt_checks_early += 1
            self.early_bt = {u: t for u, t in self.early_bt.items() if u > self.local}

    def _gap(self, ev):
        """Gap: clear the book, unsync, buffer from the failing event on."""
        self.gaps += 1
        self.bids, self.asks = {}, {}
        self.synced = self.pending = False
        self.buffer, self.early_bt = [ev], {}

    # --- outputs ----------------------------------------------------------------------
    def top(self, n):
        """n best bids (desc) and n best asks (asc) as (px, qty) lists."""
        b = [(p, self.bids[p]) for p in heapq.nlargest(n, self.bids)]
        a = [(p, self.asks[p]) for p in heapq.nsmallest(n, self.asks)]
        return b, a

    def emit_row(self, sec):
        """Record the tops row for second `sec` from the current book state."""
        if not self.synced and not self.writing:
            return
        self.writing = True
        venue, sym = self.key
        row = {"venue": venue, "symbol": sym, "ts": sec * 1000}
        if not self.synced:
            row.update(bid_px=None, bid_qty=None, ask_px=None, ask_qty=None, obi_l1=None, obi=None)
        else:
            ps, ss = self.inst[3], self.inst[4]
            b, a = self.top(10)
            row["bid_px"] = fmt_dec(b[0][0], ps) if b else None
            row["bid_qty"] = fmt_dec(b[0][1], ss) if b else None
            row["ask_px"] = fmt_dec(a[0][0], ps) if a else None
            row["ask_qty"] = fmt_dec(a[0][1], ss) if a else None
            bs = [x[1] for x in b] + [0] * (10 - len(b))
            as_ = [x[1] for x in a] + [0] * (10 - len(a))
            row["obi_l1"] = fmt_ratio9(bs[0] - as_[0], bs[0] + as_[0])
            row["obi"] = fmt_ratio9(sum(w * (x - y) for w, x, y in zip(WEIGHTS, bs, as_)),
                                    sum(w * (x + y) for w, x, y in zip(WEIGHTS, bs, as_)))
        row["synced"] = self.synced
        self.rows.append(row)

    def check_book_ticker(self, f):
        """Sanity: a bookTicker whose u equals the book's last applied u must show the book's best
        levels. It is compared on arrival (u == last u) or, when it arrived before the depth event
        that ends at its u (the usual case on spot), right after that event is applied."""
        if not self.synced:
            return
        if f["u"] == self.local:
            self._compare(f)
        elif f["u"] > self.local:
            self.early_bt[f["u"]] = f

    def _compare(self, f):
        """Compare best bid/ask with one bookTicker and count (mis)matches."""
        b, a = self.top(1)
        self.bt_checks += 1
        if not b or not a or b[0][0] != f["b"] or a[0][0] != f["a"]:
            self.bt_px_mismatch += 1
        elif b[0][1] != f["B"] or a[0][1] != f["A"]:
            self.bt_qty_mismatch += 1


class Series:
    """Per-second trade bars of one instrument with trade- and watermark-driven closing."""

    def __init__(self, key):
        self.key, self.inst = key, INSTRUMENTS[key]
        self.start = self.closed_upto = self.max_sec = None
        self.open = {}          # second -> accumulator dict
        self.last_close, self.cvd = None, 0
        self.rows, self.agg = [], {}   # agg: second -> (buy8, sell8, bnot10, snot10, trades, complete)
        self.late = 0

    def add_trade(self, f):
        """Add a trade (False if it is late)."""
        sec = f["T"] // 1000
        if self.start is None:
            self.start = self.closed_upto = self.max_sec = sec
        if sec < self.closed_upto:
            self.late += 1
            return False
        self.close_below(sec)
        self.max_sec = max(self.max_sec, sec)
        _, _, kind, ps, ss, contract = self.inst
        px, qty = f["px"], f["qty"]
        acc = self.open.get(sec)
        if acc is None:
            acc = self.open[sec] = dict(o=px, h=px, l=px, c=px, bq=0, sq=0, n=0, pq=0, q=0,
                                        bn=0, sn=0, b8=0, s8=0)
        acc["h"], acc["l"], acc["c"] = max(acc["h"], px), min(acc["l"], px), px
        acc["n"] += 1
        acc["pq"] += px * qty
        acc["q"] += qty
        if kind == "inverse":
            notional = qty * contract * 10 ** ps
            base8 = div_half_even(qty * contract * 10 ** (ps + 8), px * 10 ** ss)
        else:
            notional = px * qty
            base8 = qty * 10 ** (8 - ss)
        side = "s" if f["m"] else "b"
        acc[side + "q"] += qty
        acc[side + "n"] += notional
        acc[side + "8"] += base8
        return True

    def close_below(self, sec, complete=True):
        """Close (emit) every open second below `sec`."""
        if self.start is None:
            return
        while self.closed_upto < sec:
            self.emit(self.closed_upto, complete)
            self.closed_upto += 1

    def emit(self, s, complete):
        """Write the bar of second s (empty bars carry the previous close)."""
        venue, sym = self.key
        _, _, _, ps, ss, _ = self.inst
        acc = self.open.pop(s, None)
        if acc is None:
            c = self.last_close
            acc = dict(o=c, h=c, l=c, c=c, bq=0, sq=0, n=0, pq=0, q=0, bn=0, sn=0, b8=0, s8=0)
        delta = acc["bq"] - acc["sq"]
        self.cvd += delta
        self.last_close = acc["c"]
        complete = complete and s != self.start
        nscale = ps + ss
        self.rows.append({
            "venue": venue, "symbol": sym, "ts": s * 1000,
            "open": fmt_dec(acc["o"], ps), "high": fmt_dec(acc["h"], ps),
            "low": fmt_dec(acc["l"], ps), "close": fmt_dec(acc["c"], ps),
            "buy_qty": fmt_dec(acc["bq"], ss), "sell_qty": fmt_dec(acc["sq"], ss),
            "delta": fmt_dec(delta, ss), "cvd": fmt_dec(self.cvd, ss), "trades": acc["n"],
            "vwap": fmt_dec(div_half_even(acc["pq"], acc["q"]), ps) if acc["n"] and acc["q"] else None,
            "buy_notional": fmt_dec(acc["bn"], nscale), "sell_notional": fmt_dec(acc["sn"], nscale),
            "complete": complete})
        k = 10 ** (10 - nscale)
        self.agg[s] = (acc["b8"], acc["s8"], acc["bn"] * k, acc["sn"] * k, acc["n"], complete)

    def flush(self):
        """End of input: emit the still-open seconds as incomplete."""
        if self.start is not None:
            self.close_below(self.max_sec + 1, complete=False)


def aggregate_rows(groups, series):
    """agg-spot / agg-perp rows per base asset, from the member series' per-second sums."""
    members = {}
    for key in groups:
        base, _, kind = INSTRUMENTS[key][:3]
        members.setdefault(("agg-spot" if kind == "spot" else "agg-perp", base), []).append(key)
    bits, seen = {}, {}
    for key, (base, _, kind) in ((k, v[:3]) for k, v in INSTRUMENTS.items()):
        group = (base, kind == "spot")
        bits[key] = 1 << seen.get(group, 0)
        seen[group] = seen.get(group, 0) + 1
    rows = []
    for (venue, base), keys in members.items():
        ss = [series[k] for k in keys if k in series and series[k].agg]
        if not ss:
            continue
        cvd = 0
        for s in range(min(x.start for x in ss), max(max(x.agg) for x in ss) + 1):
            b8 = s8 = bn = sn = n = 0
            complete = True
            mask = 0
            for k in keys:
                v = series[k].agg.get(s) if k in series else None
                if v is None:
                    complete = False
                    continue
                b8, s8, bn, sn, n = b8 + v[0], s8 + v[1], bn + v[2], sn + v[3], n + v[4]
                complete = complete and v[5]
                mask |= bits[k]
            cvd += b8 - s8
            rows.append({"venue": venue, "symbol": base, "ts": s * 1000, "open": None, "high": None,
                         "low": None, "close": None, "buy_qty": fmt_dec(b8, 8), "sell_qty": fmt_dec(s8, 8),
                         "delta": fmt_dec(b8 - s8, 8), "cvd": fmt_dec(cvd, 8), "trades": n, "vwap": None,
                         "buy_notional": fmt_dec(bn, 10), "sell_notional": fmt_dec(sn, 10),
                         "complete": complete, "members": mask})
    return rows


class Replay:
    """Reads the VENUE=FILE arguments, merges them and drives books and bar series."""

    def __init__(self, specs):
        self.files = []       # (index, venue, symbol, path)
        self.groups = {}      # (venue, symbol) -> [file tuples] in argument order
        for i, spec in enumerate(specs):
            venue, _, path = spec.partition("=")
            if venue not in VENUES or not path:
                sys.exit("bad argument %r (VENUE=FILE, VENUE in %s)" % (spec, ", ".join(VENUES)))
            ft = (i, venue, file_symbol(path), path)
            self.files.append(ft)
            self.groups.setdefault((venue, ft[2]), []).append(ft)
        self.books, self.series, self.trade_kind = {}, {}, {}
        self.watermark = {}
        self.messages = self.parse_errors = self.x_excluded = self.other_kind = 0

    def lines(self, files):
        """Lines of a group's files, one file after another: (ns, file index, venue, symbol, json)."""
        for i, venue, sym, path in files:
            with open_lines(path) as f:
                for line in f:
                    line = line.rstrip("\r\n")
                    ns, _, text = line.partition(" ")
                    try:
                        ns = int(ns)
                    except ValueError:
                        self.messages += 1
                        self.parse_errors += 1
                        continue
                    yield ns, i, venue, sym, text

    def run(self, until_ns=None):
        """Process the merged input (only messages with ns <= until_ns, if given)."""
        streams = [self.lines(files) for files in self.groups.values()]
        for ns, _, venue, fsym, text in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
            if until_ns is not None and ns > until_ns:
                break
            self.messages += 1
            try:
                kind, key, f = parse_message(venue, fsym, text)
            except ParseError:
                self.parse_errors += 1
                continue
            if kind == "reply":
                continue
            self.apply(kind, key, f)
            if kind != "snapshot" and f.get("E") is not None:
                w = max(self.watermark.get(venue, f["E"]), f["E"])
                self.watermark[venue] = w
                for s in self.series.values():
                    if s.key[0] == venue:
                        s.close_below((w - 500) // 1000)

    def apply(self, kind, key, f):
        """Route one parsed message to its book or bar series."""
        if kind == "snapshot":
            self.book(key).on_snapshot(f)
        elif kind == "depth":
            self.book(key).on_depth(f)
        elif kind == "bookTicker":
            if key in self.books:
                self.books[key].check_book_ticker(f)
        elif kind in ("trade", "aggTrade"):
            if self.trade_kind.setdefault(key, kind) != kind:
                self.other_kind += 1
            elif key[0] != "binance-spot" and f["X"] != "MARKET":
                self.x_excluded += 1
            else:
                if key not in self.series:
                    self.series[key] = Series(key)
                self.series[key].add_trade(f)

    def book(self, key):
        """The book for an instrument (created on first use)."""
        if key not in self.books:
            self.books[key] = Book(key)
        return self.books[key]

    def finish(self):
        """End of input: last tops row per book, flush open bars. Returns (bars, tops) sorted."""
        for b in self.books.values():
            if b.cur_sec is not None:
                b.emit_row(b.cur_sec)
        for s in self.series.values():
            s.flush()
        bars = [r for s in self.series.values() for r in s.rows]
        bars += aggregate_rows([k for k in self.groups if k in INSTRUMENTS], self.series)
        tops = [r for b in self.books.values() for r in b.rows]
        order = lambda r: (r["venue"], r["symbol"], r["ts"])
        return sorted(bars, key=order), sorted(tops, key=order)


def write_jsonl(path, rows):
    """Write rows as compact JSONL."""
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("replay")
    rp.add_argument("--bars-out")
    rp.add_argument("--tops-out")
    rp.add_argument("inputs", nargs="+", metavar="VENUE=FILE")
    sp = sub.add_parser("snapshot")
    sp.add_argument("--after-local-ns", type=int, required=True)
    sp.add_argument("inputs", nargs="+", metavar="VENUE=FILE")
    args = ap.parse_args()

    t0 = time.time()
    rep = Replay(args.inputs)
    if args.cmd == "snapshot":
        rep.run(until_ns=args.after_local_ns)
        if len(rep.books) != 1:
            sys.exit("expected exactly one book, found %d" % len(rep.books))
        book = next(iter(rep.books.values()))
        if not book.synced:
            sys.exit("book %s not synced at %d" % (book.key, args.after_local_ns))
        ps, ss = book.inst[3], book.inst[4]
        lv = lambda side, rev: [[fmt_dec(p, ps), fmt_dec(side[p], ss)] for p in sorted(side, reverse=rev)]
        print(json.dumps({"lastUpdateId": book.local, "bids": lv(book.bids, True),
                          "asks": lv(book.asks, False)}, separators=(",", ":")))
        return
    rep.run()
    bars, tops = rep.finish()
    if args.bars_out:
        write_jsonl(args.bars_out, bars)
    if args.tops_out:
        write_jsonl(args.tops_out, tops)
    dt = max(time.time() - t0, 1e-9)
    gaps = sum(b.gaps for b in rep.books.values())
    resyncs = sum(max(b.syncs - 1, 0) for b in rep.books.values())
    late = sum(s.late for s in rep.series.values())
    print("messages=%d gaps=%d resyncs=%d late_trades=%d parse_errors=%d msgs_per_s=%.0f"
          % (rep.messages, gaps, resyncs, late, rep.parse_errors, rep.messages / dt), file=sys.stderr)
    for b in rep.books.values():
        print("golden: book %s/%s gaps=%d syncs=%d bookTicker_checks=%d (ticker_first=%d) px_mismatch=%d qty_mismatch=%d rows=%d"
              % (*b.key, b.gaps, b.syncs, b.bt_checks, b.bt_checks_early, b.bt_px_mismatch, b.bt_qty_mismatch, len(b.rows)),
              file=sys.stderr)
    for s in rep.series.values():
        print("golden: series %s/%s late=%d bars=%d" % (*s.key, s.late, len(s.rows)), file=sys.stderr)
    print("golden: x_not_market_excluded=%d other_trade_kind_ignored=%d bars_rows=%d tops_rows=%d"
          % (rep.x_excluded, rep.other_kind, len(bars), len(tops)), file=sys.stderr)


if __name__ == "__main__":
    main()
