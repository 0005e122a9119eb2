//! Strategy cost on the core thread, over the bars and tops the engine makes from the BTC
//! recordings, each method on each instrument of the set:
//! - the four classic methods, ns per final bar (on 5 s bars, as config/strategies/short.toml,
//!   and on 1 s bars so that every bar reaches an indicator) and per tops row;
//! - SqueezeFlow on 1 s periods, ns per final bar (instrument or aggregate);
//! - the smart-money method, ns per input (a bar or a tops row, in second order).
//!
//! Baselines in the same run: each method written the way a notebook would, recomputing
//! its windows in `f64` from the history on every bar or row.

use flowcore_benches::{full_run, load, report, BatchTimer, BTC_FILES};
use flowcore_core::bars::{Bar, BarKey, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::instrument::{InstrumentId, InstrumentTable};
use flowcore_core::strategy::StrategySet;
use flowcore_feeds::parser::VenueParser;
use flowcore_runtime::strategies::{load_strategies, strategy_set};
use std::hint::black_box;

#[derive(Default)]
struct Collected {
    bars: Vec<Bar>,
    tops: Vec<TopRow>,
}

impl BarSink for Collected {
    fn bar(&mut self, bar: &Bar) {
        self.bars.push(*bar);
    }
}

impl EngineSink for Collected {
    fn top(&mut self, row: &TopRow) {
        self.tops.push(*row);
    }
}

/// The engine's bars and tops over the BTC set, and the engine (for its symbols).
fn bars_and_tops() -> (Collected, Engine) {
    let table = InstrumentTable::binance_defaults();
    let files: Vec<(flowcore_core::instrument::Venue, InstrumentId)> = BTC_FILES
        .iter()
        .map(|(v, name)| {
            let symbol = if name.contains("coinm") {
                "BTCUSD_PERP"
            } else {
                "BTCUSDT"
            };
            (*v, table.find(*v, symbol.as_bytes()).unwrap())
        })
        .collect();
    let members: Vec<InstrumentId> = files.iter().map(|f| f.1).collect();
    let mut engine = Engine::new(table.clone(), Default::default(), Some(&members)).unwrap();
    let mut parsers: Vec<VenueParser> = files
        .iter()
        .map(|(v, _)| VenueParser::new(*v, table.clone()))
        .collect();
    let mut out = Collected::default();
    for m in load(&BTC_FILES) {
        let mut events = Vec::new();
        let _ = parsers[m.file].parse(m.ts, &m.json, Some(files[m.file].1), &mut |ev| {
            events.push(ev)
        });
        for ev in &events {
            engine.on_event(ev, &mut out);
        }
    }
    engine.finish(&mut out);
    (out, engine)
}

/// Our side of a timed batch: the bars into the set, the signals kept alive.
fn feed_bars(strategies: &mut StrategySet, bars: &[Bar]) {
    for b in bars {
        strategies.on_bar(black_box(b), &mut |s| {
            black_box(s);
        });
    }
}

fn set(engine: &Engine, text: &str) -> StrategySet {
    strategy_set(&load_strategies(text).unwrap(), engine).unwrap()
}

/// The BTC set's instruments.
const SYMBOLS: [(&str, &str); 3] = [
    ("binance-spot", "BTCUSDT"),
    ("binance-usdm", "BTCUSDT"),
    ("binance-coinm", "BTCUSD_PERP"),
];

/// The `[[strategy]]` tables of config/strategies/default.toml whose method is in `names`,
/// on every instrument of the BTC set, every period `timeframe_s`.
fn tables(names: &[&str], timeframe_s: u32) -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/strategies/default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut seen = Vec::new();
    for table in text.split("[[strategy]]").skip(1) {
        // Each method once (its first table), on every symbol.
        let Some(name) = names
            .iter()
            .find(|n| table.contains(&format!("name = \"{n}\"")))
        else {
            continue;
        };
        if seen.contains(name) {
            continue;
        }
        seen.push(*name);
        for (venue, symbol) in SYMBOLS {
            out.push_str("[[strategy]]");
            for line in table.lines() {
                let line = if line.starts_with("venue = ") {
                    format!("venue = \"{venue}\"")
                } else if line.starts_with("symbol = ") {
                    format!("symbol = \"{symbol}\"")
                } else if line.starts_with("timeframe_s = ") {
                    format!("timeframe_s = {timeframe_s}")
                } else if line.starts_with("context_timeframe_s = ") {
                    format!("context_timeframe_s = {}", timeframe_s * 5)
                } else {
                    line.to_owned()
                };
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

const CLASSIC: [&str; 4] = ["ema_cross", "rsi", "macd", "momentum"];

/// The notebook version of the four methods on one symbol's 1 s closes.
#[derive(Default)]
struct Recompute {
    closes: Vec<f64>,
    volumes: Vec<f64>,
}

impl Recompute {
    fn ema(xs: &[f64], n: usize) -> f64 {
        let a = 2.0 / (n as f64 + 1.0);
        let mut e = xs[..n].iter().sum::<f64>() / n as f64;
        for x in &xs[n..] {
            e += a * (x - e);
        }
        e
    }

    /// One bar: every indicator from the window; returns a value to keep the work alive.
    fn on_bar(&mut self, bar: &Bar) -> f64 {
        let Some(ohlc) = bar.ohlc else { return 0.0 };
        self.closes.push(ohlc.close as f64);
        self.volumes.push((bar.buy_qty + bar.sell_qty) as f64);
        let n = self.closes.len();
        if n < 60 {
            return 0.0;
        }
        let w = &self.closes[n.saturating_sub(200)..];
        let cross = Self::ema(w, 9) - Self::ema(w, 21);
        let macd = Self::ema(w, 12) - Self::ema(w, 26);
        let (mut g, mut l) = (0.0, 0.0);
        for d in w.windows(2).map(|p| p[1] - p[0]) {
            g = (g * 13.0 + d.max(0.0)) / 14.0;
            l = (l * 13.0 + (-d).max(0.0)) / 14.0;
        }
        let rsi = if g + l == 0.0 {
            50.0
        } else {
            100.0 * g / (g + l)
        };
        let v = &self.volumes[n - 20..];
        let momentum =
            (w[w.len() - 1] - w[w.len() - 11]) * (v[19] / (v.iter().sum::<f64>() / 20.0));
        cross + macd + rsi + momentum
    }
}

/// The notebook version of SqueezeFlow's windows on one instrument: every period, each
/// statistic recomputed in `f64` from the series' history (as a pandas rolling window
/// would), with the windows of config/strategies/default.toml.
#[derive(Default)]
struct SqueezeRecompute {
    closes: Vec<f64>,
    lows: Vec<f64>,
    highs: Vec<f64>,
    volumes: Vec<f64>,
    spot: Vec<f64>,
    perp: Vec<f64>,
}

impl SqueezeRecompute {
    fn z_of_changes(xs: &[f64], k: usize, window: usize) -> f64 {
        let n = xs.len();
        let changes: Vec<f64> = (n - window..n).map(|i| xs[i] - xs[i - k]).collect();
        let mean = changes.iter().sum::<f64>() / window as f64;
        let var = changes.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / window as f64;
        if var == 0.0 {
            0.0
        } else {
            (changes[window - 1] - mean) / var.sqrt()
        }
    }

    fn slope(xs: &[f64]) -> f64 {
        let n = xs.len() as f64;
        let mx = (n - 1.0) / 2.0;
        let my = xs.iter().sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for (i, y) in xs.iter().enumerate() {
            num += (i as f64 - mx) * (y - my);
            den += (i as f64 - mx).powi(2);
        }
        num / den
    }

    fn on_bar(&mut self, bar: &Bar, spot: f64, perp: f64) -> f64 {
        let Some(ohlc) = bar.ohlc else { return 0.0 };
        self.closes.push(ohlc.close as f64);
        self.lows.push(ohlc.low as f64);
        self.highs.push(ohlc.high as f64);
        self.volumes.push((bar.buy_qty + bar.sell_qty) as f64);
        self.spot.push(spot);
        self.perp.push(perp);
        let n = self.closes.len();
        if n < 40 {
            return 0.0;
        }
        let z = Self::z_of_changes(&self.closes, 5, 30) + Self::z_of_changes(&self.spot, 5, 30)
            - Self::z_of_changes(&self.perp, 5, 30);
        let bias = Self::slope(&self.closes[n - 20..]).signum()
            + Self::slope(&self.spot[n - 20..]).signum()
            + Self::slope(&self.perp[n - 20..]).signum();
        let low = self.lows[n - 21..n - 1]
            .iter()
            .cloned()
            .fold(f64::MAX, f64::min);
        let high = self.highs[n - 21..n - 1]
            .iter()
            .cloned()
            .fold(f64::MIN, f64::max);
        let volume = self.volumes[n - 21..n - 1].iter().sum::<f64>() / 20.0;
        z + bias + low + high + volume
    }
}

/// The notebook version of the smart-money method's windows on one instrument: every
/// second, each statistic recomputed in `f64` from the history.
#[derive(Default)]
struct SmartMoneyRecompute {
    imbalances: Vec<f64>,
    spreads: Vec<f64>,
    depths: Vec<f64>,
    changes: Vec<f64>,
    deltas: Vec<f64>,
    last_close: Option<f64>,
}

impl SmartMoneyRecompute {
    fn std(xs: &[f64]) -> f64 {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    fn on_bar(&mut self, bar: &Bar) {
        let Some(ohlc) = bar.ohlc else { return };
        let close = ohlc.close as f64;
        if let Some(last) = self.last_close.replace(close) {
            self.changes.push(close - last);
        }
        self.deltas.push(bar.delta as f64);
    }

    fn on_top(&mut self, row: &TopRow) -> f64 {
        let Some(top) = row.top else { return 0.0 };
        let (Some(bid), Some(ask), Some(obi)) = (top.bid, top.ask, top.obi) else {
            return 0.0;
        };
        self.imbalances.push(obi as f64 / 1e9);
        self.spreads.push((ask.px - bid.px) as f64);
        self.depths.push((bid.qty + ask.qty) as f64);
        let (n, m) = (self.imbalances.len(), self.changes.len());
        if n < 60 || m < 120 || self.deltas.len() < 60 {
            return 0.0;
        }
        let momentum: f64 = (0..20)
            .map(|i| 0.95f64.powi(i as i32) * self.imbalances[n - 1 - i])
            .sum();
        let spread = self.spreads[n - 60..].iter().sum::<f64>() / 60.0;
        let depth = self.depths[n - 60..].iter().sum::<f64>() / 60.0;
        let short = Self::std(&self.changes[m - 20..]);
        let long = Self::std(&self.changes[m - 120..]);
        let trend = self.changes[m - 60..].iter().sum::<f64>() / (long * 60f64.sqrt());
        let d = &self.deltas[self.deltas.len() - 60..];
        let flow = d.iter().sum::<f64>() / (Self::std(d) * 60f64.sqrt());
        momentum + spread + depth + short / long + trend + flow
    }
}

/// A bar or a tops row, in the order of their seconds.
enum Input<'a> {
    Bar(&'a Bar),
    Top(&'a TopRow),
}

fn by_second<'a>(bars: &'a [Bar], tops: &'a [TopRow]) -> Vec<Input<'a>> {
    let mut all: Vec<(i64, Input<'a>)> = bars
        .iter()
        .map(|b| (b.ts_ms, Input::Bar(b)))
        .chain(tops.iter().map(|t| (t.ts_ms, Input::Top(t))))
        .collect();
    all.sort_by_key(|(ts, _)| *ts);
    all.into_iter().map(|(_, i)| i).collect()
}

fn bench_flow_methods(engine: &Engine, bars: &[Bar], tops: &[TopRow]) {
    // SqueezeFlow on 1 s periods, so that every bar reaches its phases.
    let (mut ours, mut base) = (BatchTimer::default(), BatchTimer::default());
    let (spot_agg, perp_agg) = {
        let find = |kind| {
            engine
                .bars()
                .aggregates()
                .iter()
                .position(|a| a.base == "BTC" && a.kind == kind)
                .map(|a| BarKey::Aggregate(flowcore_core::bars::AggregateId(a as u16)))
        };
        (
            find(flowcore_core::instrument::MarketKind::Spot),
            find(flowcore_core::instrument::MarketKind::Perpetual),
        )
    };
    for _ in 0..20 {
        let mut strategies = set(engine, &tables(&["squeeze_flow"], 1));
        let mut notebooks: Vec<SqueezeRecompute> = (0..engine.table().len())
            .map(|_| SqueezeRecompute::default())
            .collect();
        let (mut spot, mut perp) = (0.0, 0.0);
        for chunk in bars.chunks(16) {
            ours.time(chunk.len(), || feed_bars(&mut strategies, chunk));
            base.time(chunk.len(), || {
                let mut acc = 0.0;
                for b in chunk {
                    match b.key {
                        BarKey::Instrument(id) => {
                            acc += notebooks[id.index()].on_bar(black_box(b), spot, perp)
                        }
                        k if Some(k) == spot_agg => spot = b.cvd as f64,
                        k if Some(k) == perp_agg => perp = b.cvd as f64,
                        _ => {}
                    }
                }
                black_box(acc)
            });
        }
    }
    report(
        &format!(
            "strategies: squeeze_flow on each of 3 instruments, per final 1 s bar ({} bars, 1 s periods)",
            bars.len()
        ),
        &ours,
        &base,
        "f64 recompute",
    );

    // The smart-money method: its inputs are every bar and every tops row.
    let inputs = by_second(bars, tops);
    let (mut ours, mut base) = (BatchTimer::default(), BatchTimer::default());
    for _ in 0..20 {
        let mut strategies = set(engine, &tables(&["smart_money"], 1));
        let mut notebooks: Vec<SmartMoneyRecompute> = (0..engine.table().len())
            .map(|_| SmartMoneyRecompute::default())
            .collect();
        for chunk in inputs.chunks(16) {
            ours.time(chunk.len(), || {
                for i in chunk {
                    match i {
                        Input::Bar(b) => strategies.on_bar(black_box(b), &mut |s| {
                            black_box(s);
                        }),
                        Input::Top(t) => strategies.on_top(black_box(t), &mut |s| {
                            black_box(s);
                        }),
                    }
                }
            });
            base.time(chunk.len(), || {
                let mut acc = 0.0;
                for i in chunk {
                    match i {
                        Input::Bar(b) => {
                            if let BarKey::Instrument(id) = b.key {
                                notebooks[id.index()].on_bar(black_box(b));
                            }
                        }
                        Input::Top(t) => acc += notebooks[t.inst.index()].on_top(black_box(t)),
                    }
                }
                black_box(acc)
            });
        }
    }
    report(
        &format!(
            "strategies: smart_money on each of 3 instruments, per input ({} bars and {} tops rows)",
            bars.len(),
            tops.len()
        ),
        &ours,
        &base,
        "f64 recompute",
    );
}

fn main() {
    let full = full_run();
    let (collected, engine) = bars_and_tops();
    let (bars, tops) = (&collected.bars, &collected.tops);
    let mut short = set(&engine, &tables(&CLASSIC, 5));
    let mut signals = 0u64;
    for b in bars {
        short.on_bar(b, &mut |_| signals += 1);
    }
    assert!(signals > 0, "the classic set made no signal on the BTC set");
    if !full {
        println!(
            "strategies bench: smoke pass ok ({} bars, {} tops, {signals} signals)",
            bars.len(),
            tops.len()
        );
        return;
    }
    for (label, timeframe) in [("5 s bars", 5), ("1 s bars", 1)] {
        let (mut ours, mut base) = (BatchTimer::default(), BatchTimer::default());
        for _ in 0..20 {
            let mut strategies = set(&engine, &tables(&CLASSIC, timeframe));
            let mut notebooks: Vec<Recompute> = (0..engine.table().len())
                .map(|_| Recompute::default())
                .collect();
            for chunk in bars.chunks(16) {
                ours.time(chunk.len(), || feed_bars(&mut strategies, chunk));
                base.time(chunk.len(), || {
                    let mut acc = 0.0;
                    for b in chunk {
                        if let BarKey::Instrument(id) = b.key {
                            acc += notebooks[id.index()].on_bar(black_box(b));
                        }
                    }
                    black_box(acc)
                });
            }
        }
        report(
            &format!(
                "strategies: 4 classic methods on each of 3 instruments, per final 1 s bar ({} bars of every series, {label})",
                bars.len()
            ),
            &ours,
            &base,
            "f64 recompute",
        );
    }
    bench_flow_methods(&engine, bars, tops);
    let mut on_top = BatchTimer::default();
    for _ in 0..50 {
        let mut strategies = set(&engine, &tables(&CLASSIC, 5));
        for chunk in tops.chunks(16) {
            on_top.time(chunk.len(), || {
                for t in chunk {
                    strategies.on_top(black_box(t), &mut |s| {
                        black_box(s);
                    });
                }
            });
        }
    }
    println!(
        "strategies: per tops row: p50 {:.1} ns, p99 {:.1} ns, max {:.1} ns (the classic methods act on bars only)",
        on_top.quantile_ns(0.5),
        on_top.quantile_ns(0.99),
        on_top.max_ns()
    );
}
