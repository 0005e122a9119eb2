//! **Synthetic** Bybit v5 market data, for the simulator and tests: no Bybit recording is
//! bundled, so this generator makes a stream that looks and behaves like one.
//!
//! It starts from the real `orderbook.200` snapshot sample of the venue (data/samples, cut
//! to the served depth and optionally moved to another mid price) and the sizes of the real
//! `publicTrade` samples, then plays a seeded random market, one 20 ms push at a time:
//! bursts of taker trades that eat the touch (with a slowly wandering buy/sell bias, so
//! that CVD trends and turns), block trades off the book, quantity changes, cancels and
//! new levels, the book kept at exactly the served depth as Bybit's `orderbook.50` is.
//! Messages follow each category's key order (spot puts `ts` before `type`), trade ids
//! follow its style (spot: rising numbers with gaps, linear: UUIDs), and each line carries
//! a local receive time a millisecond or two after the venue's `ts`.
//!
//! The same seed gives the same stream on every machine: the generator has its own
//! integer random source (no float, no crate whose sequence could change). Alongside the
//! recording lines it returns the truth it was generated from: the book after every
//! delta and every trade, for tests to compare against.

use flowcore_core::decimal::{parse_mantissa, Fixed};
use flowcore_core::instrument::Venue;
use std::collections::BTreeMap;

const SPOT_SNAPSHOT: &str =
    include_str!("../../../data/samples/bybit_spot_orderbook200_snapshot.json");
const LINEAR_SNAPSHOT: &str =
    include_str!("../../../data/samples/bybit_linear_orderbook200_snapshot.json");
const LINEAR_TICKERS: &str =
    include_str!("../../../data/samples/bybit_linear_tickers_snapshot.json");
const SPOT_TRADES: &str = include_str!("../../../data/samples/bybit_spot_publicTrade.json");
const LINEAR_TRADES: &[&str] = &[
    include_str!("../../../data/samples/bybit_linear_publicTrade.json"),
    include_str!("../../../data/samples/bybit_linear_publicTrade_multi.json"),
];

/// Bybit pushes `orderbook.50` every 20 ms when it changed.
pub const PUSH_MS: i64 = 20;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// [`Venue::BybitSpot`] or [`Venue::BybitLinear`] (BTCUSDT).
    pub venue: Venue,
    /// The random source's seed: the same seed, the same stream.
    pub seed: u64,
    /// Venue time of the first message (ms).
    pub start_ms: i64,
    /// Length of the stream in venue time.
    pub seconds: u32,
    /// Levels a side (the `orderbook.N` depth served).
    pub depth: usize,
    /// Move the sample book so that its best bid is this price mantissa (scale 2), to sit
    /// beside other venues' recordings; `None` keeps the sample's prices.
    pub best_bid: Option<i64>,
}

impl SynthOptions {
    /// BTCUSDT of `venue`, 50 levels, from `start_ms` for `seconds`.
    pub fn new(venue: Venue, seed: u64, start_ms: i64, seconds: u32) -> Self {
        Self {
            venue,
            seed,
            start_ms,
            seconds,
            depth: 50,
            best_bid: None,
        }
    }
}

/// The BTC recordings' seconds (data/binance: 2024-08-08 23:54:15 to 2024-08-09 00:05:05
/// UTC, venue time) and Binance spot's first best bid there.
const BESIDE_BTC_START_MS: i64 = 1_723_161_255_000;
const BESIDE_BTC_SECONDS: u32 = 650;
const BESIDE_BTC_BEST_BID: i64 = 6_183_763;

/// A stream of `venue` (Bybit spot or linear BTCUSDT) over the same seconds as the bundled
/// BTC recordings, its book moved to Binance spot's first price, with a fixed seed per
/// venue: what the demo and the cross-venue tests play beside the real Binance data.
pub fn beside_btc_recordings(venue: Venue) -> SynthOptions {
    let seed = match venue {
        Venue::BybitSpot => 21,
        _ => 22,
    };
    SynthOptions {
        best_bid: Some(BESIDE_BTC_BEST_BID),
        ..SynthOptions::new(venue, seed, BESIDE_BTC_START_MS, BESIDE_BTC_SECONDS)
    }
}

/// One generated trade, as the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthTrade {
    /// Trade time `T` (ms).
    pub ts_ms: i64,
    /// Price mantissa (scale 2).
    pub px: i64,
    /// Size mantissa (the venue's size scale).
    pub qty: i64,
    /// The taker bought.
    pub buy: bool,
    /// A block trade (`BT: true`).
    pub block: bool,
}

/// The book after one delta, as the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthBook {
    /// The delta's `u`.
    pub update_id: u64,
    /// (price, size) mantissas, best first.
    pub bids: Vec<(i64, i64)>,
    /// (price, size) mantissas, best first.
    pub asks: Vec<(i64, i64)>,
}

/// A generated stream.
#[derive(Debug, Clone)]
pub struct SynthStream {
    /// Recording lines, `<local_ns> <json>`, in order: the snapshot first.
    pub lines: Vec<String>,
    /// Every trade, in order.
    pub trades: Vec<SynthTrade>,
    /// The book after the snapshot and after every delta.
    pub books: Vec<SynthBook>,
    /// Linear: the `tickers` statistics last sent (mark, index, open interest, funding
    /// rate at scale 8, next funding ms).
    pub stats: Option<SynthStats>,
}

/// The `tickers` statistics of a linear stream, as last sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthStats {
    /// Mark price (scale 2).
    pub mark_px: i64,
    /// Index price (scale 2).
    pub index_px: i64,
    /// Open interest (size scale).
    pub open_interest: i64,
    /// Funding rate (scale 8).
    pub funding_rate: i64,
    /// Next funding time (ms).
    pub next_funding_ms: i64,
}

/// Price and size scales of the generated BTCUSDT (the bundled instrument table's).
pub const fn scales(venue: Venue) -> (u8, u8) {
    match venue {
        Venue::BybitLinear => (2, 3),
        _ => (2, 6),
    }
}

/// splitmix64: small, fast, and fixed forever (the stream must not change with a crate).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// The generator's book: exact mantissas, bids and asks by price.
#[derive(Debug, Clone, Default)]
struct Book {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl Book {
    fn side(&mut self, bid: bool) -> &mut BTreeMap<i64, i64> {
        if bid {
            &mut self.bids
        } else {
            &mut self.asks
        }
    }

    fn best(&self, bid: bool) -> Option<(i64, i64)> {
        if bid {
            self.bids.iter().next_back().map(|(p, q)| (*p, *q))
        } else {
            self.asks.iter().next().map(|(p, q)| (*p, *q))
        }
    }

    /// The `i`th level from the touch.
    fn level(&self, bid: bool, i: usize) -> Option<(i64, i64)> {
        if bid {
            self.bids.iter().rev().nth(i).map(|(p, q)| (*p, *q))
        } else {
            self.asks.iter().nth(i).map(|(p, q)| (*p, *q))
        }
    }

    fn truth(&self, update_id: u64) -> SynthBook {
        SynthBook {
            update_id,
            bids: self.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
            asks: self.asks.iter().map(|(p, q)| (*p, *q)).collect(),
        }
    }
}

/// Levels changed by one push: the new size, 0 for a level gone.
#[derive(Debug, Default)]
struct Changes {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl Changes {
    fn set(&mut self, book: &mut Book, bid: bool, px: i64, qty: i64) {
        if qty == 0 {
            book.side(bid).remove(&px);
        } else {
            book.side(bid).insert(px, qty);
        }
        if bid {
            self.bids.insert(px, qty);
        } else {
            self.asks.insert(px, qty);
        }
    }

    fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }
}

/// One generator: the market's state between pushes.
struct Market {
    venue: Venue,
    rng: Rng,
    book: Book,
    depth: usize,
    /// Minimum price step (mantissa at scale 2): 0.10.
    tick: i64,
    /// Sizes seen in the real trade samples, to draw from.
    sizes: Vec<i64>,
    /// Buy probability in per mille, wandering around 500.
    bias: i64,
    update_id: u64,
    seq: u64,
    next_trade_id: u64,
    /// Last local receive time written (lines never go back).
    last_local_ns: i64,
    /// Linear: the statistics `tickers` carries.
    stats: Option<SynthStats>,
    pushes: u64,
}

/// Generates a stream. See the module docs.
///
/// # Errors
/// When `options.venue` is not a Bybit venue.
pub fn generate(options: &SynthOptions) -> anyhow::Result<SynthStream> {
    let (snapshot, trades): (&str, Vec<&str>) = match options.venue {
        Venue::BybitSpot => (SPOT_SNAPSHOT, vec![SPOT_TRADES]),
        Venue::BybitLinear => (LINEAR_SNAPSHOT, LINEAR_TRADES.to_vec()),
        other => anyhow::bail!("{other}: the synthetic generator makes Bybit streams only"),
    };
    let (px_scale, qty_scale) = scales(options.venue);
    let snapshot: serde_json::Value = serde_json::from_str(snapshot)?;
    let mut book = Book::default();
    for (key, bid) in [("b", true), ("a", false)] {
        let levels = snapshot["data"][key]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("sample snapshot without {key}"))?;
        for l in levels.iter().take(options.depth) {
            let px = decimal(&l[0], px_scale)?;
            let qty = decimal(&l[1], qty_scale)?;
            book.side(bid).insert(px, qty);
        }
    }
    if let (Some(target), Some((best, _))) = (options.best_bid, book.best(true)) {
        let shift = target - best;
        book.bids = book.bids.iter().map(|(p, q)| (p + shift, *q)).collect();
        book.asks = book.asks.iter().map(|(p, q)| (p + shift, *q)).collect();
    }
    let mut sizes = Vec::new();
    for text in trades {
        let sample: serde_json::Value = serde_json::from_str(text)?;
        for t in sample["data"].as_array().into_iter().flatten() {
            sizes.push(decimal(&t["v"], qty_scale)?);
        }
    }
    let mut market = Market {
        venue: options.venue,
        rng: Rng(options.seed),
        book,
        depth: options.depth,
        tick: 10,
        sizes,
        bias: 500,
        update_id: snapshot["data"]["u"].as_u64().unwrap_or(1),
        seq: snapshot["data"]["seq"].as_u64().unwrap_or(1),
        next_trade_id: 2_290_000_001_189_048_101,
        last_local_ns: 0,
        stats: None,
        pushes: 0,
    };
    if options.venue == Venue::BybitLinear {
        let t: serde_json::Value = serde_json::from_str(LINEAR_TICKERS)?;
        let d = &t["data"];
        let best = market.book.best(true).map_or(0, |(p, _)| p);
        let sample_best = decimal(&d["bid1Price"], px_scale)?;
        market.stats = Some(SynthStats {
            // Moved with the book.
            mark_px: decimal(&d["markPrice"], px_scale)? - sample_best + best,
            index_px: decimal(&d["indexPrice"], px_scale)? - sample_best + best,
            open_interest: decimal(&d["openInterest"], qty_scale)?,
            funding_rate: decimal(&d["fundingRate"], 8)?,
            // The next 8-hourly funding after the start.
            next_funding_ms: options.start_ms - options.start_ms.rem_euclid(8 * 3_600_000)
                + 8 * 3_600_000,
        });
    }
    let mut out = SynthStream {
        lines: Vec::new(),
        trades: Vec::new(),
        books: vec![market.book.truth(market.update_id)],
        stats: None,
    };
    let first = market.snapshot_message(options.start_ms);
    market.push_line(&mut out, options.start_ms, &first);
    if market.stats.is_some() {
        let tickers = market.tickers_message("snapshot", options.start_ms, true);
        market.push_line(&mut out, options.start_ms, &tickers);
    }
    let end_ms = options.start_ms + i64::from(options.seconds) * 1000;
    let mut now_ms = options.start_ms + PUSH_MS;
    while now_ms < end_ms {
        market.push(now_ms, &mut out);
        now_ms += PUSH_MS;
    }
    out.stats = market.stats;
    Ok(out)
}

/// A price or size as the category prints it: linear with every decimal, spot without
/// trailing zeros (as in the samples: `65140`, `0.014`, `65114.20`).
fn decimal_text(venue: Venue, mantissa: i64, scale: u8) -> String {
    let fixed = Fixed::new(i128::from(mantissa), scale).to_string();
    if venue == Venue::BybitLinear || !fixed.contains('.') {
        return fixed;
    }
    fixed
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// `{topic, ts, type, ...}` on spot, `{topic, type, ts, ...}` on linear.
fn envelope(venue: Venue, topic: &str, kind: &str, ts_ms: i64, data: &str, tail: &str) -> String {
    match venue {
        Venue::BybitLinear => format!(
            "{{\"topic\":\"{topic}\",\"type\":\"{kind}\",\"ts\":{ts_ms},\"data\":{data}{tail}}}"
        ),
        _ => format!(
            "{{\"topic\":\"{topic}\",\"ts\":{ts_ms},\"type\":\"{kind}\",\"data\":{data}{tail}}}"
        ),
    }
}

/// An `orderbook.N` message's contents (price and size mantissas at [`scales`], best first).
#[derive(Debug, Clone, Copy)]
pub struct BookMessage<'a> {
    /// `orderbook.50.BTCUSDT`.
    pub topic: &'a str,
    /// `snapshot` or `delta`.
    pub kind: &'a str,
    /// The venue's `ts`.
    pub ts_ms: i64,
    /// `u`.
    pub update_id: u64,
    /// `seq`.
    pub seq: u64,
    /// Bid levels.
    pub bids: &'a [(i64, i64)],
    /// Ask levels.
    pub asks: &'a [(i64, i64)],
    /// Price and size scales of the mantissas.
    pub scales: (u8, u8),
}

/// An `orderbook.N` message of `venue`'s category, as Bybit writes it (the simulator
/// answers a subscription with one).
pub fn book_message(venue: Venue, m: &BookMessage<'_>) -> String {
    let (px_scale, qty_scale) = m.scales;
    let levels = |levels: &[(i64, i64)]| {
        let parts: Vec<String> = levels
            .iter()
            .map(|&(p, q)| {
                format!(
                    "[\"{}\",\"{}\"]",
                    decimal_text(venue, p, px_scale),
                    decimal_text(venue, q, qty_scale)
                )
            })
            .collect();
        format!("[{}]", parts.join(","))
    };
    let symbol = m.topic.rsplit('.').next().unwrap_or_default();
    let data = format!(
        "{{\"s\":\"{symbol}\",\"b\":{},\"a\":{},\"u\":{},\"seq\":{}}}",
        levels(m.bids),
        levels(m.asks),
        m.update_id,
        m.seq
    );
    let cts = format!(",\"cts\":{}", m.ts_ms - 3);
    envelope(venue, m.topic, m.kind, m.ts_ms, &data, &cts)
}

fn decimal(v: &serde_json::Value, scale: u8) -> anyhow::Result<i64> {
    let text = v
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("a sample decimal that is not a string"))?;
    parse_mantissa(text.as_bytes(), scale).map_err(|e| anyhow::anyhow!("{text}: {e:?}"))
}

impl Market {
    fn symbol(&self) -> &'static str {
        "BTCUSDT"
    }

    fn text(&self, mantissa: i64, scale: u8) -> String {
        decimal_text(self.venue, mantissa, scale)
    }

    /// The whole book as an `orderbook.N` snapshot at the current `u`.
    fn snapshot_message(&self, ts_ms: i64) -> String {
        self.book_message("snapshot", ts_ms, &self.book.bids, &self.book.asks)
    }

    fn book_message(
        &self,
        kind: &str,
        ts_ms: i64,
        bids: &BTreeMap<i64, i64>,
        asks: &BTreeMap<i64, i64>,
    ) -> String {
        let bids: Vec<(i64, i64)> = bids.iter().rev().map(|(p, q)| (*p, *q)).collect();
        let asks: Vec<(i64, i64)> = asks.iter().map(|(p, q)| (*p, *q)).collect();
        book_message(
            self.venue,
            &BookMessage {
                topic: &format!("orderbook.{}.{}", self.depth, self.symbol()),
                kind,
                ts_ms,
                update_id: self.update_id,
                seq: self.seq,
                bids: &bids,
                asks: &asks,
                scales: scales(self.venue),
            },
        )
    }

    /// A linear `tickers` message: `whole` sends every statistic (a snapshot); otherwise
    /// mark and index move with the book and open interest or funding change sometimes.
    fn tickers_message(&mut self, kind: &str, ts_ms: i64, whole: bool) -> String {
        let (Some((bid, _)), Some((ask, _))) = (self.book.best(true), self.book.best(false)) else {
            return String::new();
        };
        let mid = (bid + ask) / 2;
        let mark = mid + self.rng.below(7) as i64 - 3;
        let index = mid + self.rng.below(41) as i64 - 20;
        let oi_moves = self.rng.chance(200);
        let oi_step = self.rng.below(2001) as i64 - 1000;
        let funding_moves = self.rng.chance(20);
        let funding_step = self.rng.below(11) as i64 - 5;
        let Some(stats) = self.stats.as_mut() else {
            return String::new();
        };
        stats.mark_px = mark;
        stats.index_px = index;
        let mut fields = vec![
            format!("\"markPrice\":\"{}\"", decimal_text(self.venue, mark, 2)),
            format!("\"indexPrice\":\"{}\"", decimal_text(self.venue, index, 2)),
        ];
        if whole || oi_moves {
            stats.open_interest = (stats.open_interest + oi_step).max(1);
            fields.push(format!(
                "\"openInterest\":\"{}\"",
                decimal_text(self.venue, stats.open_interest, scales(self.venue).1)
            ));
        }
        if whole || funding_moves {
            stats.funding_rate += funding_step * 100;
            let rate = Fixed::new(i128::from(stats.funding_rate), 8).to_string();
            let rate = rate.trim_end_matches('0').trim_end_matches('.');
            fields.push(format!("\"fundingRate\":\"{rate}\""));
        }
        if whole {
            fields.push(format!("\"nextFundingTime\":\"{}\"", stats.next_funding_ms));
        }
        format!(
            "{{\"topic\":\"tickers.{}\",\"type\":\"{kind}\",\"data\":{{\"symbol\":\"{}\",{}}},\"cs\":{},\"ts\":{ts_ms}}}",
            self.symbol(),
            self.symbol(),
            fields.join(","),
            self.seq
        )
    }

    /// Writes a line received 0.8 to 2.3 ms after the venue's `ts`.
    fn push_line(&mut self, out: &mut SynthStream, ts_ms: i64, json: &str) {
        let local = ts_ms * 1_000_000 + 800_000 + self.rng.below(1_500_000) as i64;
        self.last_local_ns = local.max(self.last_local_ns + 1);
        out.lines.push(format!("{} {json}", self.last_local_ns));
    }

    fn trade_id(&mut self) -> String {
        match self.venue {
            Venue::BybitLinear => {
                let (a, b) = (self.rng.next(), self.rng.next());
                format!(
                    "{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xfff,
                    0x8000 | (b >> 48) & 0x3fff,
                    b & 0xffff_ffff_ffff
                )
            }
            _ => {
                let id = self.next_trade_id;
                self.next_trade_id += 1 + self.rng.below(3);
                id.to_string()
            }
        }
    }

    fn size(&mut self) -> i64 {
        let base = self.sizes[self.rng.below(self.sizes.len() as u64) as usize].max(1);
        // Mostly sample-sized, sometimes a few times larger: sweeps happen.
        let times = match self.rng.below(10) {
            0..=6 => 1,
            7 | 8 => 1 + self.rng.below(3) as i64,
            _ => 3 + self.rng.below(8) as i64,
        };
        base * times
    }

    /// One 20 ms push: trades (maybe), then the book's delta (when it changed).
    fn push(&mut self, now_ms: i64, out: &mut SynthStream) {
        // The bias wanders (CVD trends), pulled back towards even.
        let step = self.rng.below(41) as i64 - 20;
        self.bias = (self.bias + step + (500 - self.bias) / 50).clamp(300, 700);
        let mut changes = Changes::default();
        let trade_chance = if self.venue == Venue::BybitLinear {
            250
        } else {
            150
        };
        if self.rng.chance(trade_chance) {
            self.trades(now_ms, &mut changes, out);
        }
        self.noise(&mut changes);
        self.keep_depth(&mut changes);
        self.pushes += 1;
        if self.stats.is_some() && self.pushes.is_multiple_of(5) {
            // Linear `tickers`: mark and index every 100 ms, the rest now and then.
            let msg = self.tickers_message("delta", now_ms, false);
            self.push_line(out, now_ms, &msg);
        }
        if !changes.is_empty() {
            self.update_id += 1;
            self.seq += 1 + self.rng.below(50);
            let msg = self.book_message("delta", now_ms, &changes.bids, &changes.asks);
            self.push_line(out, now_ms, &msg);
            out.books.push(self.book.truth(self.update_id));
        }
    }

    fn trades(&mut self, now_ms: i64, changes: &mut Changes, out: &mut SynthStream) {
        let buy = self.rng.below(1000) < self.bias as u64;
        let count = 1 + self.rng.below(3);
        let trade_ts = now_ms - self.rng.below(4) as i64;
        let (_, qty_scale) = scales(self.venue);
        let mut data = Vec::new();
        for _ in 0..count {
            // A taker buy eats the best ask.
            let Some((px, available)) = self.book.best(!buy) else {
                break;
            };
            let qty = self.size().min(available);
            changes.set(&mut self.book, !buy, px, available - qty);
            data.push((px, qty, false));
        }
        if self.rng.chance(10) {
            // A block trade: negotiated off the book, at the touch.
            if let Some((px, _)) = self.book.best(!buy) {
                data.push((px, self.size() * 40, true));
            }
        }
        let mut parts = Vec::new();
        for (px, qty, block) in data {
            let id = self.trade_id();
            self.seq += 1;
            let side = if buy { "Buy" } else { "Sell" };
            let (p, v) = (self.text(px, 2), self.text(qty, qty_scale));
            let sym = self.symbol();
            parts.push(match self.venue {
                Venue::BybitLinear => format!(
                    "{{\"T\":{trade_ts},\"s\":\"{sym}\",\"S\":\"{side}\",\"v\":\"{v}\",\"p\":\"{p}\",\"L\":\"ZeroPlusTick\",\"i\":\"{id}\",\"BT\":{block},\"RPI\":false,\"seq\":{}}}",
                    self.seq
                ),
                _ => format!(
                    "{{\"i\":\"{id}\",\"T\":{trade_ts},\"p\":\"{p}\",\"v\":\"{v}\",\"S\":\"{side}\",\"seq\":{},\"s\":\"{sym}\",\"BT\":{block},\"RPI\":false}}",
                    self.seq
                ),
            });
            out.trades.push(SynthTrade {
                ts_ms: trade_ts,
                px,
                qty,
                buy,
                block,
            });
        }
        if parts.is_empty() {
            return;
        }
        let topic = format!("publicTrade.{}", self.symbol());
        let msg = envelope(
            self.venue,
            &topic,
            "snapshot",
            now_ms,
            &format!("[{}]", parts.join(",")),
            "",
        );
        self.push_line(out, now_ms, &msg);
    }

    /// Makers at work: a spread that trades opened is closed again (a level one tick
    /// inside it, on either side), sizes change, orders cancel, new levels appear near the
    /// touch.
    fn noise(&mut self, changes: &mut Changes) {
        if let (Some((bid, _)), Some((ask, _))) = (self.book.best(true), self.book.best(false)) {
            let gap_ticks = (ask - bid) / self.tick;
            if gap_ticks > 1 && self.rng.chance(900) {
                let on_bid = self.rng.chance(500);
                let k = 1 + self.rng.below(gap_ticks as u64 - 1) as i64;
                let px = if on_bid {
                    bid + k * self.tick
                } else {
                    ask - k * self.tick
                };
                let size = self.size();
                changes.set(&mut self.book, on_bid, px, size);
            }
        }
        for _ in 0..1 + self.rng.below(4) {
            let bid = self.rng.chance(500);
            // Nearer the touch, more often.
            let i = (self.rng.below(8) * self.rng.below(8)) as usize % self.depth.max(1);
            let Some((px, qty)) = self.book.level(bid, i) else {
                continue;
            };
            match self.rng.below(10) {
                0..=5 => {
                    let new = (qty / 2 + self.size()).max(1);
                    changes.set(&mut self.book, bid, px, new);
                }
                6 | 7 if self.book.side(bid).len() > 2 => changes.set(&mut self.book, bid, px, 0),
                _ => {
                    // One tick better than level i, if free and not crossing.
                    let better = if bid { px + self.tick } else { px - self.tick };
                    let crosses = match self.book.best(!bid) {
                        Some((other, _)) => {
                            if bid {
                                better >= other
                            } else {
                                better <= other
                            }
                        }
                        None => false,
                    };
                    if !crosses && !self.book.side(bid).contains_key(&better) {
                        let size = self.size();
                        changes.set(&mut self.book, bid, better, size);
                    }
                }
            }
        }
    }

    /// Exactly `depth` levels a side, as `orderbook.N` shows: levels pushed past the depth
    /// are deleted, and a side that thinned gets a new deepest level.
    fn keep_depth(&mut self, changes: &mut Changes) {
        for bid in [true, false] {
            while self.book.side(bid).len() > self.depth {
                let deepest = if bid {
                    self.book.bids.keys().next().copied()
                } else {
                    self.book.asks.keys().next_back().copied()
                };
                if let Some(px) = deepest {
                    changes.set(&mut self.book, bid, px, 0);
                }
            }
            while self.book.side(bid).len() < self.depth {
                let deepest = if bid {
                    self.book.bids.keys().next().copied()
                } else {
                    self.book.asks.keys().next_back().copied()
                };
                let Some(px) = deepest else { break };
                let steps = 1 + self.rng.below(3) as i64;
                let px = if bid {
                    px - steps * self.tick
                } else {
                    px + steps * self.tick
                };
                let size = self.size();
                changes.set(&mut self.book, bid, px, size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
        let options = SynthOptions::new(Venue::BybitLinear, 7, 1_723_161_254_000, 5);
        let a = generate(&options).unwrap();
        let b = generate(&options).unwrap();
        assert_eq!(a.lines, b.lines);
        let c = generate(&SynthOptions { seed: 8, ..options }).unwrap();
        assert_ne!(a.lines, c.lines);
    }

    #[test]
    fn books_keep_their_depth_and_never_cross() {
        for venue in [Venue::BybitSpot, Venue::BybitLinear] {
            let s = generate(&SynthOptions::new(venue, 3, 1_000_000, 30)).unwrap();
            assert!(s.books.len() > 1000, "{} deltas", s.books.len());
            assert!(s.trades.len() > 300, "{} trades", s.trades.len());
            for b in &s.books {
                assert_eq!((b.bids.len(), b.asks.len()), (50, 50));
                assert!(b.bids[0].0 < b.asks[0].0, "crossed at u {}", b.update_id);
                assert!(b.bids.iter().chain(&b.asks).all(|(_, q)| *q > 0));
            }
            // Makers keep the spread tight: one or two ticks mostly (measured on spot: p50
            // 0.10, p90 0.40, p99 1.80; a sweep opens it for a push or two).
            let mut spreads: Vec<i64> = s.books.iter().map(|b| b.asks[0].0 - b.bids[0].0).collect();
            spreads.sort_unstable();
            let at = |q: usize| spreads[(spreads.len() - 1) * q / 100];
            assert!(
                at(50) <= 20 && at(99) <= 300,
                "{venue}: spreads {spreads:?}"
            );
            // The bias wanders both ways: some seconds net buy, some net sell.
            let net: i64 = s
                .trades
                .iter()
                .map(|t| if t.buy { t.qty } else { -t.qty })
                .sum();
            assert!(s.trades.iter().any(|t| t.buy) && s.trades.iter().any(|t| !t.buy));
            assert_ne!(net, 0);
        }
    }
}
