//! Strategy cost on the core thread: ns per final bar and per tops row for the four
//! classic methods on each instrument of the BTC set (on 5 s bars, as
//! config/strategies/short.toml, and on 1 s bars so that every bar reaches an
//! indicator), over the bars and tops the engine makes from the recordings. Baseline in
//! the same run: the same four methods per instrument written the way a notebook would,
//! each bar recomputing its indicators in `f64` over the last 200 closes.

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

fn set(engine: &Engine, text: &str) -> StrategySet {
    strategy_set(&load_strategies(text).unwrap(), engine).unwrap()
}

/// The BTC set's instruments.
const SYMBOLS: [(&str, &str); 3] = [
    ("binance-spot", "BTCUSDT"),
    ("binance-usdm", "BTCUSDT"),
    ("binance-coinm", "BTCUSD_PERP"),
];

/// The four classic methods of config/strategies/default.toml on every instrument of the
/// BTC set, every period `timeframe_s`.
fn classic(timeframe_s: u32) -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/strategies/default.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for (venue, symbol) in SYMBOLS {
        for line in text.lines() {
            let line = if line.starts_with("venue = ") {
                format!("venue = \"{venue}\"")
            } else if line.starts_with("symbol = ") {
                format!("symbol = \"{symbol}\"")
            } else if line.starts_with("timeframe_s = ") {
                format!("timeframe_s = {timeframe_s}")
            } else {
                line.to_owned()
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

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

fn main() {
    let full = full_run();
    let (collected, engine) = bars_and_tops();
    let (bars, tops) = (&collected.bars, &collected.tops);
    let mut short = set(&engine, &classic(5));
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
            let mut strategies = set(&engine, &classic(timeframe));
            let mut notebooks: Vec<Recompute> = (0..engine.table().len())
                .map(|_| Recompute::default())
                .collect();
            for chunk in bars.chunks(16) {
                ours.time(chunk.len(), || {
                    for b in chunk {
                        strategies.on_bar(black_box(b), &mut |s| {
                            black_box(s);
                        });
                    }
                });
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
    let mut on_top = BatchTimer::default();
    for _ in 0..50 {
        let mut strategies = set(&engine, &classic(5));
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
