//! `flowcore demo`: the whole system offline, on the bundled recordings.
//!
//! ```text
//! sim (recorded Binance spot + USD-M BTC, synthetic Bybit spot + linear, on loopback)
//!     --ws/http--> run (feeds, engine) --shm bus--> this thread: one line per wall
//!     second of cross-venue spot vs perp CVD and imbalance
//! ```
//! The engine connects to the simulator over real sockets, publishes to a real bus, and
//! the table is read back from shared memory the way any client would. The Binance data
//! is real (recorded); the Bybit streams are **synthetic** (tools/sim/src/bybit_synth.rs: no
//! Bybit recording is bundled), generated over the same seconds so that the aggregates
//! cross venues.

use anyhow::Context;
use flowcore_core::decimal::Fixed;
use flowcore_core::event::STAT_PRICE_SCALE;
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::recording::Pace;
use flowcore_feeds::recording::{Input, Source};
use flowcore_outputs::{OutputFiles, OutputPaths};
use flowcore_runtime::config::RunConfig;
use flowcore_runtime::live::{run, RunOptions, RunSummary};
use flowcore_shm::abi::{
    action, flags, health, venue, BarRecord, SignalRecord, HEALTH_SOURCE_PIPELINE, OBI_SCALE,
    SIGNAL_FRACTION_SCALE,
};
use flowcore_shm::{BusConfig, BusReader, ReadFrom};
use flowcore_sim::bybit_synth::{beside_btc_recordings, generate};
use flowcore_sim::{run_sim, SimOptions, SimSummary, DEFAULT_CLIENT_BUFFER};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the demo is told.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Directory of the bundled recordings (`data/binance`).
    pub data: PathBuf,
    /// Simulator speed.
    pub pace: Pace,
    /// Stop after this long; `None`: when the recordings end.
    pub duration: Option<Duration>,
    /// The bus directory; a private one under /dev/shm (removed at the end) by default.
    pub shm: Option<PathBuf>,
    /// Also write the run's bars and tops as JSONL here.
    pub out_dir: Option<PathBuf>,
    /// Strategies to run (`[[strategy]]` tables), their signals shown as published.
    pub strategies: Option<PathBuf>,
}

/// What the demo saw.
#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    /// Lines of the table printed.
    pub lines: u64,
    /// Bars read from the bus.
    pub bars: u64,
    /// Tops read from the bus.
    pub tops: u64,
    /// Trades read from the bus.
    pub trades: u64,
    /// Signals read from the bus (each printed as it came).
    pub signals: u64,
    /// Venue statistics records read from the bus.
    pub stats: u64,
    /// Records the bus reader missed (lapped).
    pub lapped: u64,
    /// Messages received as the last health record read from the bus counted them.
    pub health_messages: u64,
    /// Last spot and perp aggregate CVD (base units) seen.
    pub cvd: (Option<String>, Option<String>),
    /// The engine side.
    pub run: RunSummary,
    /// The simulator side.
    pub sim: SimSummary,
}

/// The latest state the table shows.
#[derive(Default, Clone, Copy)]
struct View {
    market_ts: Option<i64>,
    spot: Option<BarRecord>,
    perp: Option<BarRecord>,
    spot_obi: Option<i64>,
    perp_obi: Option<i64>,
    /// Binance USD-M's latest mark price and open interest (their records).
    perp_mark: Option<i64>,
    perp_open_interest: Option<i64>,
    trades: u64,
    events: u64,
    messages: u64,
}

/// Runs the demo, printing the table to `out`.
///
/// # Errors
/// When the recordings are missing, a thread cannot start or the bus cannot be created.
pub fn demo(options: DemoOptions, out: &mut dyn Write) -> anyhow::Result<DemoSummary> {
    let files = [
        ("binance-spot", "spot_btcusdt_20240808.txt.gz"),
        ("binance-spot", "spot_btcusdt_20240809.txt.gz"),
        ("binance-usdm", "usdm_btcusdt_20240808.txt.gz"),
    ];
    let mut inputs = Vec::new();
    for (venue, name) in files {
        let path = options.data.join(name);
        anyhow::ensure!(
            path.exists(),
            "{} is missing: run the demo from the repository (or give --data DIR)",
            path.display()
        );
        inputs.push(Input::parse_arg(&format!("{venue}={}", path.display()))?);
    }
    for venue in [Venue::BybitSpot, Venue::BybitLinear] {
        let stream = generate(&beside_btc_recordings(venue))?;
        inputs.push(Input {
            venue,
            source: Source::Memory((stream.lines.join("\n") + "\n").into_bytes().into()),
        });
    }
    let venues = 4;
    // One connection a venue, and USD-M's `/market` one for its mark price.
    let connections = venues + 1;
    let private_dir = options.shm.is_none();
    let shm_dir = options
        .shm
        .clone()
        .unwrap_or_else(|| private_bus_dir(&format!("demo-{}", std::process::id())));
    let table = InstrumentTable::bundled_defaults();
    let stop = Arc::new(AtomicBool::new(false));

    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let sim_options = SimOptions {
        inputs,
        pace: options.pace,
        bind: "127.0.0.1".parse().expect("an address"),
        ping_interval: None,
        pong_timeout: None,
        wait_clients: connections,
        tls: None,
        table: table.clone(),
        stop: stop.clone(),
        client_buffer: DEFAULT_CLIENT_BUFFER,
        faults: Default::default(),
        api_key: None,
        connection_lifetime: None,
    };
    let sim = std::thread::Builder::new()
        .name("flowcore-demo-sim".into())
        .spawn(move || run_sim(sim_options, |line| drop(tx.send(line.to_string()))))?;
    let mut config_text = String::from("[pipeline]\nidle = \"park\"\n");
    for _ in 0..venues {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("the simulator did not start")?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let (name, ws, rest) = (
            v["venue"].as_str().unwrap_or_default(),
            v["ws"].as_str().unwrap_or_default(),
            v["rest"].as_str().unwrap_or_default(),
        );
        let ws = match name {
            "binance-usdm" => format!("{ws}/public"),
            "bybit-spot" => format!("{ws}/v5/public/spot"),
            "bybit-linear" => format!("{ws}/v5/public/linear"),
            _ => ws.to_string(),
        };
        let _ = write!(
            config_text,
            "[[feed]]\nvenue = \"{name}\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"{ws}\"\nrest_url = \"{rest}\"\n"
        );
        if name == "binance-usdm" {
            // Mark price and open interest: USD-M serves them on `/market`, a feed of their
            // own (the simulator synthesises them from what it plays).
            let market = ws.replace("/public", "/market");
            let _ = write!(
                config_text,
                "[[feed]]\nvenue = \"{name}\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"{market}\"\n\
                 rest_url = \"{rest}\"\nstreams = [\"markPrice@1s\"]\nopen_interest_s = 1\n"
            );
        }
    }
    if let Some(path) = &options.strategies {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        config_text.push_str(&text);
    }
    let run_options = RunOptions {
        config: RunConfig::parse(&config_text, std::path::Path::new("."), &table)?,
        table,
        imbalance: ImbalanceConfig::default(),
        duration: options.duration,
        record: None,
        stop: stop.clone(),
        exit_on_close: true,
        shm: Some(BusConfig::new(&shm_dir)),
        stage_log: None,
    };
    let out_dir = options.out_dir.clone();
    let engine = std::thread::Builder::new()
        .name("flowcore-demo-run".into())
        .spawn(move || -> anyhow::Result<RunSummary> {
            if let Some(dir) = &out_dir {
                std::fs::create_dir_all(dir)?;
            }
            let path = |name: &str| out_dir.as_ref().map(|d| d.join(name));
            let mut files = OutputFiles::create(&OutputPaths {
                bars: path("bars.jsonl"),
                tops: path("tops.jsonl"),
                health: path("health.jsonl"),
                signals: path("signals.jsonl"),
                stats: path("stats.jsonl"),
            })?;
            let summary = run(run_options, files.outputs())?;
            files.flush()?;
            Ok(summary)
        })?;

    let result = show(&shm_dir, &engine, out);
    stop.store(true, Ordering::Relaxed);
    let run_summary = engine
        .join()
        .map_err(|_| anyhow::anyhow!("the engine thread panicked"))??;
    let sim_summary = sim
        .join()
        .map_err(|_| anyhow::anyhow!("the simulator thread panicked"))??;
    if private_dir {
        let _ = std::fs::remove_dir_all(&shm_dir);
    }
    let mut summary = result?;
    summary.run = run_summary;
    summary.sim = sim_summary;
    writeln!(
        out,
        "\ndemo: {} messages over loopback ({} snapshots, {} gaps, {} parse errors); read back from \
         shared memory: {} bars, {} tops, {} trades, {} signals, {} venue statistics, {} missed",
        summary.run.messages,
        summary.run.snapshots,
        summary.run.engine.gaps,
        summary.run.parse_errors,
        summary.bars,
        summary.tops,
        summary.trades,
        summary.signals,
        summary.stats,
        summary.lapped,
    )?;
    writeln!(
        out,
        "      final CVD (BTC): spot {}, perp {}",
        summary.cvd.0.as_deref().unwrap_or("n/a"),
        summary.cvd.1.as_deref().unwrap_or("n/a"),
    )?;
    Ok(summary)
}

/// Reads the bus until the engine thread ends, printing one line per wall second.
fn show(
    dir: &std::path::Path,
    engine: &std::thread::JoinHandle<anyhow::Result<RunSummary>>,
    out: &mut dyn Write,
) -> anyhow::Result<DemoSummary> {
    let mut bus = loop {
        match BusReader::open_waiting(dir, ReadFrom::Oldest, Duration::from_millis(200)) {
            Ok(bus) => break bus,
            Err(e) if engine.is_finished() => {
                return Err(e).context("the engine never created the bus")
            }
            Err(_) => {}
        }
    };
    writeln!(
        out,
        "{:<9} {:>14} {:>14} {:>14} {:>10} {:>10} {:>10} {:>11} {:>9} {:>9}",
        "market",
        "spot CVD",
        "perp CVD",
        "spot-perp",
        "spot obi",
        "perp obi",
        "perp mark",
        "perp OI",
        "trades/s",
        "events/s"
    )?;
    let mut summary = DemoSummary::default();
    let mut view = View::default();
    let mut shown = View::default();
    let mut next_line = Instant::now() + Duration::from_secs(1);
    loop {
        let finished = engine.is_finished();
        drain(&mut bus, &mut view, &mut summary);
        while let Some(signal) = bus.signals.try_read() {
            summary.signals += 1;
            print_signal(out, &mut bus, &signal)?;
        }
        if Instant::now() >= next_line || finished {
            next_line += Duration::from_secs(1);
            if view.market_ts.is_some() && view.market_ts != shown.market_ts {
                print_line(out, &bus, &view, &shown)?;
                summary.lines += 1;
            }
            shown = view;
        }
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = [
        bus.bars.stats(),
        bus.tops.stats(),
        bus.trades.stats(),
        bus.health.stats(),
        bus.signals.stats(),
    ];
    summary.lapped = s.iter().map(|s| s.lapped).sum();
    summary.health_messages = view.messages;
    summary.cvd = (
        view.spot.map(|b| cvd_text(&bus, &b)),
        view.perp.map(|b| cvd_text(&bus, &b)),
    );
    Ok(summary)
}

fn drain(bus: &mut BusReader, view: &mut View, summary: &mut DemoSummary) {
    while let Some(bar) = bus.bars.try_read() {
        summary.bars += 1;
        match bus.symbol(bar.symbol_id).map(|s| s.venue) {
            Some(venue::AGG_SPOT) => view.spot = Some(bar),
            Some(venue::AGG_PERP) => view.perp = Some(bar),
            _ => continue,
        }
        view.market_ts = view.market_ts.max(Some(bar.ts_ms));
    }
    while let Some(top) = bus.tops.try_read() {
        summary.tops += 1;
        let obi = (top.flags & flags::TOP_HAS_OBI != 0).then_some(top.obi);
        match bus.symbol(top.symbol_id).map(|s| s.venue) {
            // The imbalance columns are Binance's (real recorded books).
            Some(venue::BINANCE_SPOT) => view.spot_obi = obi,
            Some(venue::BINANCE_USDM) => view.perp_obi = obi,
            _ => {}
        }
    }
    while bus.trades.try_read().is_some() {
        summary.trades += 1;
        view.trades += 1;
    }
    while let Some(s) = bus.stats.as_mut().and_then(|r| r.try_read()) {
        summary.stats += 1;
        if bus.symbol(s.symbol_id).map(|s| s.venue) == Some(venue::BINANCE_USDM) {
            if s.flags & flags::STATS_HAS_MARK != 0 {
                view.perp_mark = Some(s.mark_px);
            }
            if s.flags & flags::STATS_HAS_OPEN_INTEREST != 0 {
                view.perp_open_interest = Some(s.open_interest);
            }
        }
    }
    while let Some(h) = bus.health.try_read() {
        if h.source != HEALTH_SOURCE_PIPELINE {
            continue;
        }
        view.events = h.counters[health::EVENTS];
        view.messages = h.counters[health::MESSAGES];
    }
}

/// One signal, as it is read from the bus, with its strategy's name where the bus has it.
fn print_signal(out: &mut dyn Write, bus: &mut BusReader, s: &SignalRecord) -> std::io::Result<()> {
    let strategy = match bus.strategy(s.strategy_id) {
        Some(r) => flowcore_shm::text(&r.name).to_string(),
        None => format!("strategy {}", s.strategy_id),
    };
    let symbol = bus.symbol(s.symbol_id);
    let (venue_name, name) = symbol.map_or(("?", "?"), |sym| {
        (
            crate::shm_tail::venue_name(sym.venue),
            flowcore_shm::text(&sym.symbol),
        )
    });
    let price_scale = symbol.map_or(0, |sym| sym.price_scale);
    let action = match s.action {
        action::ENTER_LONG => "enter long",
        action::ENTER_SHORT => "enter short",
        _ => "exit",
    };
    writeln!(
        out,
        "  signal #{} ({strategy}) {action} {venue_name} {name} at {} (confidence {}, score {})",
        s.signal_id,
        Fixed::new(s.entry_px.into(), price_scale),
        Fixed::new(s.confidence.into(), SIGNAL_FRACTION_SCALE),
        Fixed::new(s.score.into(), SIGNAL_FRACTION_SCALE),
    )
}

fn cvd_text(bus: &BusReader, bar: &BarRecord) -> String {
    let scale = bus.symbol(bar.symbol_id).map_or(0, |s| s.size_scale);
    Fixed::new(bar.cvd.into(), scale).to_string()
}

fn print_line(
    out: &mut dyn Write,
    bus: &BusReader,
    view: &View,
    shown: &View,
) -> std::io::Result<()> {
    let ts = view.market_ts.unwrap_or(0);
    let clock = {
        let s = ts.div_euclid(1000).rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    let cvd = |b: &Option<BarRecord>| b.as_ref().map(|b| cvd_text(bus, b));
    let diff = match (&view.spot, &view.perp) {
        (Some(s), Some(p)) if s.symbol_id != p.symbol_id => {
            let scale = bus.symbol(s.symbol_id).map_or(0, |x| x.size_scale);
            Some(Fixed::new(i128::from(s.cvd) - i128::from(p.cvd), scale).to_string())
        }
        _ => None,
    };
    // Three decimals are enough to read (cut, not rounded: display only).
    let obi = |v: Option<i64>| {
        v.map(|v| Fixed::new((v / 10i64.pow(u32::from(OBI_SCALE) - 3)).into(), 3).to_string())
    };
    let na = || "n/a".to_string();
    // The mark at two decimals (cut: display only); open interest at USD-M's size scale.
    let mark = view.perp_mark.map(|m| {
        Fixed::new((m / 10i64.pow(u32::from(STAT_PRICE_SCALE) - 2)).into(), 2).to_string()
    });
    let usdm_size_scale = (bus.symbols.iter())
        .find(|s| s.venue == venue::BINANCE_USDM)
        .map_or(0, |s| s.size_scale);
    let open_interest =
        (view.perp_open_interest).map(|v| Fixed::new(v.into(), usdm_size_scale).to_string());
    writeln!(
        out,
        "{clock:<9} {:>14} {:>14} {:>14} {:>10} {:>10} {:>10} {:>11} {:>9} {:>9}",
        cvd(&view.spot).unwrap_or_else(na),
        cvd(&view.perp).unwrap_or_else(na),
        diff.unwrap_or_else(na),
        obi(view.spot_obi).unwrap_or_else(na),
        obi(view.perp_obi).unwrap_or_else(na),
        mark.unwrap_or_else(na),
        open_interest.unwrap_or_else(na),
        view.trades - shown.trades,
        view.events.saturating_sub(shown.events),
    )?;
    out.flush()
}

/// A bus directory of this process's own: on tmpfs (as in production) where there is one,
/// else under the temporary directory.
pub fn private_bus_dir(name: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("flowcore-{name}"))
}
