//! `flowcore`: the command line. Parses arguments and config files, wires the crates
//! together (flowcore-runtime, flowcore-sim, flowcore-outputs) and prints what they did.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::InstrumentTable;
use flowcore_core::strategy::SignalCounters;
use flowcore_feeds::recording::Input;
use flowcore_feeds::recording::Pace;
use flowcore_gateways::backtest::{BacktestConfig, LatencyModel};
use flowcore_outputs::health::HealthRow;
use flowcore_outputs::{OutputFiles, OutputPaths};
use flowcore_runtime::config::{IdleStrategy, TransportKind};
use flowcore_runtime::replay::{replay, ReplayOptions, ReplayThreads};
use flowcore_runtime::strategies::load_strategies;
use flowcore_shm::BusConfig;
use flowcore_tools::backtest;
use flowcore_tools::sweep::SweepAxis;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `eprintln!` in one write. Stderr is unbuffered: a line formatted straight into it is a
/// write per argument (98 for a replay's summary), and another thread's output can land
/// between them.
macro_rules! report {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        // As `eprintln!`, minus its panic: a closed stderr loses the report, not the run.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

#[derive(Parser, Debug)]
#[command(
    name = "flowcore",
    version,
    about = "Low-latency crypto market-data core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where `run` and `replay` write their rows (JSONL, docs/REPLAY.md "Output").
#[derive(clap::Args, Debug, Default)]
struct OutputArgs {
    /// Write bars here (JSONL).
    #[arg(long)]
    bars_out: Option<PathBuf>,
    /// Write per-second book tops here (JSONL).
    #[arg(long)]
    tops_out: Option<PathBuf>,
    /// Write per-second health rows here (JSONL): the pipeline's and each venue's.
    #[arg(long)]
    health_out: Option<PathBuf>,
    /// Write the strategies' signals here (JSONL).
    #[arg(long)]
    signals_out: Option<PathBuf>,
    /// Write per-second venue statistics here (JSONL): mark and index price, open
    /// interest, funding.
    #[arg(long)]
    stats_out: Option<PathBuf>,
}

impl OutputArgs {
    fn files(self) -> Result<OutputFiles, flowcore_outputs::OutputError> {
        OutputFiles::create(&OutputPaths {
            bars: self.bars_out,
            tops: self.tops_out,
            health: self.health_out,
            signals: self.signals_out,
            stats: self.stats_out,
        })
    }
}

/// `flowcore run`'s arguments.
#[derive(clap::Args, Debug)]
struct LiveArgs {
    /// The run configuration (TOML; see config/run-*.toml).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
    /// Stop after this many seconds and flush the open bars.
    #[arg(long)]
    seconds: Option<f64>,
    /// Record every frame, REST answer and marker here (replayable with `flowcore replay
    /// journal=DIR`); the format is the config's `[record]` table, a journal by default.
    #[arg(long)]
    record: Option<PathBuf>,
    /// End when the servers close the connections (a simulator at the end of its
    /// recordings) instead of reconnecting.
    #[arg(long)]
    exit_on_close: bool,
    /// Also publish to the shared-memory bus in this directory (overrides pipeline.shm).
    #[arg(long)]
    shm: Option<PathBuf>,
    /// Save per-message stage stamps in this folder at the end (`flowcore bench e2e` reads
    /// them; see flowcore_runtime::stages).
    #[arg(long, hide = true)]
    stage_log: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Wire to shared memory as processes: an open-loop sender, `flowcore run` (io_uring,
    /// pinned) and a bus reader, against tokio-tungstenite + serde_json + rust_decimal +
    /// tokio mpsc + Redis pub/sub (a redis-server it starts). Writes e2e.json and e2e.html.
    E2e {
        /// Frames a second, open loop.
        #[arg(long, value_delimiter = ',', default_value = "10000,50000,200000")]
        rates: Vec<u64>,
        /// Frames sent per run (the recording's first ones).
        #[arg(long, default_value_t = 50_000)]
        messages: usize,
        /// flowcore set-ups as MODE:IDLE (pipeline.mode and pipeline.idle).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "inline:spin,threaded:spin-yield"
        )]
        engines: Vec<String>,
        /// The recording whose frames are sent (Binance USD-M combined stream).
        #[arg(long, default_value = "data/binance/usdm_btcusdt_20240808.txt.gz")]
        recording: PathBuf,
        /// Strategies the engine runs.
        #[arg(long, default_value = "config/strategies/short.toml")]
        strategies: PathBuf,
        /// Leave the conventional stack out (it needs redis-server).
        #[arg(long)]
        no_conventional: bool,
        /// Milliseconds between the client's connect and the first frame.
        #[arg(long, default_value_t = 1500)]
        warm_up_ms: u64,
        /// Results and each run's files.
        #[arg(long, default_value = "out/e2e")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BenchPart {
    /// Serves frames to one WebSocket client at a fixed rate; prints `port N` first.
    Sender {
        #[arg(long)]
        frames: PathBuf,
        #[arg(long)]
        rate: u64,
        #[arg(long)]
        warm_up_ms: u64,
        #[arg(long)]
        stamps: PathBuf,
    },
    /// Stamps each trade seen on a bus until its writer is gone.
    ShmReader {
        #[arg(long)]
        shm: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// The conventional engine: WebSocket in, Redis out.
    Conventional {
        #[arg(long)]
        url: String,
        #[arg(long)]
        redis: std::net::SocketAddr,
        #[arg(long)]
        channel: String,
    },
    /// The conventional stack's subscriber; prints `ready` once subscribed.
    ConventionalReader {
        #[arg(long)]
        redis: std::net::SocketAddr,
        #[arg(long)]
        channel: String,
        #[arg(long)]
        expected: usize,
        #[arg(long)]
        out: PathBuf,
    },
}

/// The sender and the readers share core 0; the engine under test has core 1.
const BENCH_HELPER_CPU: usize = 0;

fn bench_part(part: BenchPart) -> anyhow::Result<()> {
    use flowcore_tools::bench_e2e::{self, conventional, sender, shm_reader};
    match part {
        BenchPart::Sender {
            frames,
            rate,
            warm_up_ms,
            stamps,
        } => {
            flowcore_runtime::pin::pin_current_thread(BENCH_HELPER_CPU);
            let plan = bench_e2e::read_frames(&frames)?;
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("port {}", listener.local_addr()?.port());
            std::io::stdout().flush()?;
            let sent = sender::serve(listener, plan, rate, Duration::from_millis(warm_up_ms))?;
            std::fs::write(&stamps, sent.to_text())
                .with_context(|| stamps.display().to_string())?;
        }
        BenchPart::ShmReader { shm, out } => {
            flowcore_runtime::pin::pin_current_thread(BENCH_HELPER_CPU);
            let seen = shm_reader::read_trades(&shm)?;
            std::fs::write(&out, shm_reader::to_text(&seen))
                .with_context(|| out.display().to_string())?;
        }
        BenchPart::Conventional {
            url,
            redis,
            channel,
        } => {
            let s = conventional::run_conventional(&conventional::ConventionalOptions {
                ws_url: url,
                redis,
                channel,
            })?;
            println!("{s:?}");
        }
        BenchPart::ConventionalReader {
            redis,
            channel,
            expected,
            out,
        } => {
            flowcore_runtime::pin::pin_current_thread(BENCH_HELPER_CPU);
            let seen = conventional::read_conventional(
                redis,
                &channel,
                expected,
                Duration::from_secs(5),
                || {
                    println!("ready");
                    let _ = std::io::stdout().flush();
                },
            )?;
            std::fs::write(&out, bench_e2e::conventional_sightings_text(&seen))
                .with_context(|| out.display().to_string())?;
        }
    }
    Ok(())
}

fn bench(bench: BenchCommand) -> anyhow::Result<()> {
    use flowcore_tools::bench_e2e::{run_bench, E2eOptions, EngineSetup};
    match bench {
        BenchCommand::E2e {
            rates,
            messages,
            engines,
            recording,
            strategies,
            no_conventional,
            warm_up_ms,
            out,
        } => {
            let engines = engines
                .iter()
                .map(|e| match e.split_once(':') {
                    Some((mode @ ("inline" | "threaded"), idle)) => Ok(EngineSetup {
                        mode: mode.into(),
                        idle: idle.into(),
                    }),
                    _ => anyhow::bail!(
                        "--engines: {e:?} is not MODE:IDLE (inline:spin, threaded:park...)"
                    ),
                })
                .collect::<anyhow::Result<_>>()?;
            run_bench(&E2eOptions {
                exe: std::env::current_exe()?,
                recording,
                messages,
                rates,
                engines,
                strategies: if strategies.is_file() {
                    Some(strategies)
                } else {
                    report!(
                        "e2e: {} not found: the engine runs no strategy",
                        strategies.display()
                    );
                    None
                },
                conventional: !no_conventional,
                warm_up: Duration::from_millis(warm_up_ms),
                out,
            })?;
            Ok(())
        }
    }
}

/// Instruments and imbalance settings, shared by every command that runs the engine.
#[derive(clap::Args, Debug)]
struct EngineArgs {
    /// Levels of the weighted imbalance.
    #[arg(long, default_value_t = 10)]
    obi_levels: usize,
    /// Decay of the weighted imbalance: w_i = exp(-decay * i).
    #[arg(long, default_value_t = 0.1)]
    obi_decay: f64,
    /// Instrument table (TOML, see config/instruments.toml); the bundled defaults if absent.
    #[arg(long)]
    instruments: Option<PathBuf>,
}

impl EngineArgs {
    fn table(&self) -> anyhow::Result<InstrumentTable> {
        load_table(&self.instruments)
    }

    fn imbalance(&self) -> anyhow::Result<ImbalanceConfig> {
        ImbalanceConfig::new(self.obi_levels, self.obi_decay).context("--obi-levels/--obi-decay")
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmarks of whole processes (`flowcore bench e2e`).
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
    /// One process of `flowcore bench e2e` (started by the bench itself).
    #[command(hide = true)]
    BenchPart {
        #[command(subcommand)]
        part: BenchPart,
    },
    /// Publishes one hand-made signal on a bus of its own; prints its id.
    Signal {
        /// The signal bus directory (not the engine's: this command is that bus's writer).
        #[arg(long)]
        shm: PathBuf,
        /// The venue of the symbol.
        #[arg(long, default_value = "binance-usdm")]
        venue: String,
        /// The venue's symbol (BTCUSDT).
        #[arg(long)]
        symbol: String,
        /// long, short or exit.
        #[arg(long)]
        action: String,
        /// Entry price (decimal; none: at market).
        #[arg(long)]
        entry: Option<String>,
        /// Stop price.
        #[arg(long)]
        stop: Option<String>,
        /// Target price.
        #[arg(long)]
        target: Option<String>,
        /// Confidence, 0..1.
        #[arg(long, default_value = "1")]
        confidence: String,
        /// Suggested size in base units (decimal).
        #[arg(long)]
        size: Option<String>,
        /// A strategy name for the record (hashed to an id with the top bit set).
        #[arg(long, default_value = "manual")]
        strategy: String,
        /// Instrument table (TOML); the bundled defaults if absent.
        #[arg(long)]
        instruments: Option<PathBuf>,
    },
    /// Runs the execution gateway: signals from the buses, risk limits, sizing, journal,
    /// and orders to FreqTrade, paper fills or a decision log (see config/gateway.toml).
    Gateway {
        /// The gateway configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Backtests strategies over recordings: the replay's signals through the gateway's
    /// risk engine and paper broker, in exchange time, with latency and fees.
    Backtest {
        /// The strategies (`[[strategy]]` tables; see config/strategies/).
        #[arg(long)]
        strategies: PathBuf,
        /// A gateway configuration whose `[risk]`, `[sizing]`, `[paper]` and `[pairs]` apply
        /// (its buses and journal are not used); config/gateway.toml's defaults if absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// From a signal to the gateway's decision, milliseconds.
        #[arg(long, default_value_t = 0.0)]
        feed_latency_ms: f64,
        /// From the decision to the order at the venue, milliseconds.
        #[arg(long, default_value_t = 0.0)]
        order_latency_ms: f64,
        /// Draw each signal's feed latency from this file's samples instead: one latency in
        /// milliseconds per line (a live run's measured lags, say).
        #[arg(long)]
        feed_latency_file: Option<PathBuf>,
        /// Draw each order's latency from this file's samples (format as above).
        #[arg(long)]
        order_latency_file: Option<PathBuf>,
        /// Signals of the first N seconds of data are not traded.
        #[arg(long, default_value_t = 0)]
        warmup_s: i64,
        /// Write the report (metrics, trades, equity curve) here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a self-contained HTML report with charts here (opens offline); with
        /// `--sweep`, of the best point.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Backtest every point of a grid: `NAME.param=a,b,c` (every table of that strategy)
        /// or `strategy[i].param=a,b,c`; repeat for more axes. Runs on all cores.
        #[arg(long)]
        sweep: Vec<String>,
        /// The metric the sweep's results (and walk-forward choices) are sorted by.
        #[arg(long, value_enum, default_value = "sharpe")]
        sort: flowcore_tools::sweep::SortMetric,
        /// Walk-forward: split the data into N windows; each window is judged with the grid
        /// point best in the window before it.
        #[arg(long)]
        folds: Option<usize>,
        #[command(flatten)]
        engine: EngineArgs,
        /// Recordings as VENUE=FILE, or journal=DIR (every stream of a journal that
        /// `run --record` or `record` wrote).
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// Replays recordings into one-second CVD bars and per-second book tops (JSONL).
    Replay {
        #[command(flatten)]
        out: OutputArgs,
        /// asap, recorded (real time) or a speed-up like 10x.
        #[arg(long, default_value = "asap")]
        pace: flowcore_feeds::recording::Pace,
        /// Also publish to the shared-memory bus in this directory (e.g. /dev/shm/flowcore).
        #[arg(long)]
        shm: Option<PathBuf>,
        /// Count Bybit block trades (`BT: true`) as taker flow, as a run with
        /// `count_block_trades = true` did.
        #[arg(long)]
        count_block_trades: bool,
        /// 2: read and parse on a second thread, as a live run does; 1: all on one thread
        /// (same output).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
        threads: u8,
        /// Run the strategies of this file (`[[strategy]]` tables; see config/strategies/).
        #[arg(long)]
        strategies: Option<PathBuf>,
        /// An aggregate goes on without a member silent this long, on the receive clock
        /// (docs/REPLAY.md "Aggregates").
        #[arg(long, default_value_t = flowcore_core::bars::MEMBER_TIMEOUT_MS)]
        member_timeout_ms: i64,
        #[command(flatten)]
        engine: EngineArgs,
        /// Recordings as VENUE=FILE (binance-spot, binance-usdm, binance-coinm, bybit-spot,
        /// bybit-linear), or journal=DIR (every stream of a journal that `run --record` or
        /// `record` wrote).
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// Runs live: connects to the configured feeds and writes bars and tops as they happen.
    Run(LiveArgs),
    /// Records the configured feeds into a journal (or text files, `[record] format`)
    /// without writing bars or tops: `flowcore run --record DIR` with no outputs.
    Record {
        /// The run configuration (TOML; see config/run-*.toml).
        #[arg(long)]
        config: PathBuf,
        /// The journal's folder (appended to when it holds one).
        #[arg(long)]
        out: PathBuf,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
        /// End when the servers close the connections.
        #[arg(long)]
        exit_on_close: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// The offline demo: the simulator serves the bundled Binance spot + USD-M BTC
    /// recordings on loopback, the engine runs live against it and publishes to shared
    /// memory, and a bus reader shows spot vs perp CVD and imbalance once a second.
    Demo {
        /// Stop after this many seconds (default: when the recordings end).
        #[arg(long)]
        seconds: Option<f64>,
        /// Simulator speed: recorded, or a speed-up like 30x.
        #[arg(long, default_value = "30x")]
        pace: flowcore_feeds::recording::Pace,
        /// The bundled recordings.
        #[arg(long, default_value = "data/binance")]
        data: PathBuf,
        /// Bus directory (default: a private one under /dev/shm, removed at the end).
        #[arg(long)]
        shm: Option<PathBuf>,
        /// Also write the run's bars.jsonl, tops.jsonl, health.jsonl and signals.jsonl here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Strategies the engine runs (`[[strategy]]` tables); their signals are shown as
        /// the bus publishes them.
        #[arg(long, default_value = "config/strategies/short.toml")]
        strategies: PathBuf,
        /// Run no strategy.
        #[arg(long)]
        no_strategies: bool,
    },
    /// Prints what a shared-memory bus carries as it arrives (bars and tops by default).
    /// Ends when the writer is gone and everything was printed, unless --follow.
    ShmTail {
        /// The bus directory.
        #[arg(default_value = flowcore_shm::DEFAULT_DIR)]
        dir: PathBuf,
        /// Streams to print.
        #[arg(long, value_delimiter = ',', default_value = "bars,tops")]
        streams: Vec<flowcore_tools::shm_tail::Stream>,
        /// Start at the oldest record still in each ring (default: only new records).
        #[arg(long)]
        from_oldest: bool,
        /// JSON lines (bars and tops exactly as the replay JSONL rows).
        #[arg(long)]
        json: bool,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
        /// Keep waiting for a writer (re)start instead of ending when the writer is gone.
        #[arg(long)]
        follow: bool,
    },
    /// Serves recordings as a Binance exchange on loopback: WebSocket streams, subscribe,
    /// pings, REST depth snapshots from the simulator's own books. Prints one JSON line per
    /// venue with its ws and rest addresses.
    Sim {
        /// recorded, asap (as fast as the slowest client reads), or a speed-up like 10x.
        #[arg(long, default_value = "recorded")]
        pace: flowcore_feeds::recording::Pace,
        /// Address to listen on (ports are chosen by the system).
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Seconds between server pings (venue default: 20 spot, 180 futures).
        #[arg(long)]
        ping_interval: Option<f64>,
        /// Seconds a ping may go unanswered before the client is dropped (venue default).
        #[arg(long)]
        pong_timeout: Option<f64>,
        /// Start playing once this many WebSocket clients are connected.
        #[arg(long, default_value_t = 0)]
        wait_clients: usize,
        /// Messages a client may fall behind before a paced play drops it.
        #[arg(long, default_value_t = flowcore_sim::DEFAULT_CLIENT_BUFFER)]
        client_buffer: usize,
        /// Serve wss/https with this PEM certificate chain (needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Faults to inject, each with its period in played messages, e.g.
        /// `drop=20000,gap=5000,malformed=7000,utf8=30000,fragment=9000,pings=11000,rest=13000,refuse=40000,stall=25000,shutdown=30000`.
        #[arg(long, default_value = "")]
        faults: flowcore_sim::faults::FaultPlan,
        /// The API key futures trade history wants (any non-empty key when absent).
        #[arg(long)]
        api_key: Option<String>,
        /// Seconds a WebSocket connection lives before it is dropped, as Binance drops
        /// connections at 24 h (none by default).
        #[arg(long)]
        connection_lifetime: Option<f64>,
        /// Instrument table (TOML); the bundled defaults if absent.
        #[arg(long)]
        instruments: Option<PathBuf>,
        /// Recordings as VENUE=FILE, or journal=DIR (every stream of a journal that
        /// `run --record` or `record` wrote).
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// Writes a SYNTHETIC Bybit BTCUSDT stream as a recording (for `flowcore sim`): a
    /// seeded random market started from the real Bybit samples. Without --start-ms it
    /// covers the bundled BTC recordings' seconds, beside them in price.
    Synth {
        /// bybit-spot or bybit-linear.
        #[arg(long)]
        venue: String,
        /// The random seed: the same seed, the same stream (the venue's fixed one if absent).
        #[arg(long)]
        seed: Option<u64>,
        /// Venue time of the first message (Unix ms).
        #[arg(long)]
        start_ms: Option<i64>,
        /// Length in venue seconds.
        #[arg(long)]
        seconds: Option<u32>,
        /// Write the recording here.
        #[arg(long)]
        out: PathBuf,
    },
}

/// One line per feed (and the whole pipeline): its counters and lag over the whole run.
/// The strategies' signals, when any strategy ran.
fn print_signals(c: &SignalCounters) {
    if *c != SignalCounters::default() {
        report!(
            "signals: {} emitted, {} repeats dropped, {} dropped in cooldown",
            c.emitted,
            c.duplicates,
            c.cooled_down
        );
    }
}

fn print_health(rows: &[HealthRow]) {
    for r in rows {
        let l = &r.lag;
        let lag = if l.samples == 0 {
            "no lag samples".to_string()
        } else {
            format!(
                "lag p50 {} p99 {} p99.9 {} max {} over {} messages ({} received before their \
                 exchange time)",
                human_ns(l.p50),
                human_ns(l.p99),
                human_ns(l.p999),
                human_ns(l.max),
                l.samples,
                r.clock_behind,
            )
        };
        report!(
            "  {}: {} messages, {} gaps, {} resyncs, {} reconnects ({} stalls, {} rotations), {} \
             late trades, {} backfilled, {} crossed books, {} parse errors; {lag}",
            r.source_name(),
            r.feed.messages,
            r.engine.gaps,
            r.engine.resync_requests,
            r.feed.reconnects,
            r.feed.stalls,
            r.feed.rotations,
            r.late_trades,
            r.engine.backfilled_trades,
            r.engine.crossed_books,
            r.feed.parse_errors,
        );
    }
}

/// A duration in ns with a unit that keeps it short.
fn human_ns(ns: i64) -> String {
    let v = ns as f64;
    match ns.unsigned_abs() {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} us", v / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", v / 1e6),
        1_000_000_000..100_000_000_000_000 => format!("{:.2} s", v / 1e9),
        // An old recording served by the simulator: its age.
        _ => format!("{:.0} days", v / 86_400e9),
    }
}

fn load_table(instruments: &Option<PathBuf>) -> anyhow::Result<InstrumentTable> {
    Ok(match instruments {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            flowcore_tools::instruments::parse_instruments(&text)?
        }
        None => InstrumentTable::bundled_defaults(),
    })
}

fn seconds(what: &str, s: Option<f64>) -> anyhow::Result<Option<std::time::Duration>> {
    s.map(|s| {
        std::time::Duration::try_from_secs_f64(s)
            .map_err(|_| anyhow::anyhow!("{what}: {s} is not a duration in seconds"))
    })
    .transpose()
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Signal {
            shm,
            venue,
            symbol,
            action,
            entry,
            stop,
            target,
            confidence,
            size,
            strategy,
            instruments,
        } => {
            let table = load_table(&instruments)?;
            let venue = flowcore_core::instrument::Venue::from_name(&venue)
                .with_context(|| format!("--venue {venue}: not a venue"))?;
            let signal = flowcore_tools::manual_signal::ManualSignal {
                venue,
                symbol: symbol.to_ascii_uppercase(),
                action,
                entry,
                stop,
                target,
                confidence,
                size,
                strategy,
            };
            let id = flowcore_tools::manual_signal::publish(&shm, &table, &signal)?;
            println!("{id}");
            Ok(())
        }
        Command::Gateway {
            config,
            seconds: run_seconds,
        } => {
            let config = flowcore_gateways::GatewayConfig::load(&config)?;
            let control = flowcore_gateways::RunControl {
                duration: seconds("--seconds", run_seconds)?,
                ..Default::default()
            };
            // Ctrl-C or a service manager's SIGTERM ends the run with its summary.
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, control.stop.clone())
                    .context("installing the stop signal handler")?;
            }
            let summary = flowcore_gateways::run(config, control)?;
            eprint!("{}", summary.render());
            Ok(())
        }
        Command::Backtest {
            strategies,
            config,
            feed_latency_ms,
            order_latency_ms,
            feed_latency_file,
            order_latency_file,
            warmup_s,
            json,
            report,
            sweep,
            sort,
            folds,
            engine,
            inputs,
        } => {
            let text = std::fs::read_to_string(&strategies)
                .with_context(|| format!("reading {}", strategies.display()))?;
            let strategies =
                load_strategies(&text).with_context(|| format!("{}", strategies.display()))?;
            let inputs = read_inputs(&inputs)?;
            let ms = |what: &str, x: f64| -> anyhow::Result<i64> {
                anyhow::ensure!(x.is_finite() && x >= 0.0, "{what}: not a duration: {x}");
                Ok((x * 1e6) as i64)
            };
            let config = BacktestConfig {
                gateway: backtest::gateway_config(config.as_deref())?,
                latency: LatencyModel {
                    feed_ns: ms("--feed-latency-ms", feed_latency_ms)?,
                    order_ns: ms("--order-latency-ms", order_latency_ms)?,
                    feed_samples: backtest::latency_samples(feed_latency_file.as_deref())?,
                    order_samples: backtest::latency_samples(order_latency_file.as_deref())?,
                },
                warmup_s,
            };
            let axes = sweep
                .iter()
                .map(|a| SweepAxis::parse(a))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (run, mut text, doc) = if axes.is_empty() {
                let run = backtest::run_backtest(
                    engine.table()?,
                    engine.imbalance()?,
                    inputs,
                    strategies,
                    config,
                    ReplayThreads::Two(IdleStrategy::SpinYield),
                )?;
                let (text, doc) = (run.table(), run.to_json());
                (run, text, doc)
            } else {
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                let points = flowcore_tools::sweep::sweep(
                    &engine.table()?,
                    &engine.imbalance()?,
                    &inputs,
                    &strategies,
                    &config,
                    &axes,
                    workers,
                )?;
                let folds = folds.map(|n| flowcore_tools::sweep::walk_forward(&points, n, sort));
                let (text, doc, best) = flowcore_tools::sweep::summary(points, sort, folds);
                (best, text, doc)
            };
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(&doc)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(path) = report {
                std::fs::write(&path, flowcore_tools::report::html(&run, &run.to_json()))
                    .with_context(|| format!("writing {}", path.display()))?;
                text += &format!("backtest: report in {}\n", path.display());
            }
            // A closed pipe (`| head`) ends the output, not the program with a panic.
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Replay {
            out,
            pace,
            shm,
            count_block_trades,
            threads,
            strategies,
            member_timeout_ms,
            engine,
            inputs,
        } => {
            let strategies = match &strategies {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    load_strategies(&text).with_context(|| format!("{}", path.display()))?
                }
                None => Vec::new(),
            };
            let table = engine.table()?;
            let inputs = read_inputs(&inputs)?;
            let imbalance = engine.imbalance()?;
            let mut files = out.files()?;
            let started = Instant::now();
            let options = ReplayOptions {
                pace,
                shm: shm.map(BusConfig::new),
                count_block_trades,
                threads: match (threads, pace) {
                    (1, _) => ReplayThreads::One,
                    (_, Pace::Asap) => ReplayThreads::Two(IdleStrategy::SpinYield),
                    // Paced, the engine side mostly waits: without a busy core for it.
                    _ => ReplayThreads::Two(IdleStrategy::Park),
                },
                strategies,
                member_timeout_ms,
                ..ReplayOptions::new(table, imbalance, inputs)
            };
            let s = replay(options, files.outputs())?;
            files.flush()?;
            let secs = started.elapsed().as_secs_f64();
            report!(
                "replay: {} messages, {} gaps, {} resyncs, {} late trades, {} parse errors, {:.0} msgs/s \
                 ({} bars, {} tops, {} book/ticker checks with {} mismatches, {} crossed)",
                s.messages,
                s.engine.gaps,
                s.engine.resync_requests,
                s.late_trades,
                s.parse_errors,
                s.messages as f64 / secs.max(1e-9),
                s.bars,
                s.tops,
                s.engine.ticker_checks,
                s.engine.ticker_mismatches,
                s.engine.crossed_books,
            );
            print_signals(&s.signals);
            print_health(&s.health);
            Ok(())
        }
        Command::Run(args) => run_live(args),
        Command::Bench { bench: which } => bench(which),
        Command::BenchPart { part } => bench_part(part),
        Command::Record {
            config,
            out,
            seconds,
            exit_on_close,
            engine,
        } => run_live(LiveArgs {
            config,
            out: OutputArgs::default(),
            seconds,
            record: Some(out),
            exit_on_close,
            shm: None,
            stage_log: None,
            engine,
        }),
        Command::Demo {
            seconds: demo_seconds,
            pace,
            data,
            shm,
            out,
            strategies,
            no_strategies,
        } => {
            let options = flowcore_tools::demo::DemoOptions {
                data,
                pace,
                duration: seconds("--seconds", demo_seconds)?,
                shm,
                out_dir: out,
                strategies: (!no_strategies).then_some(strategies),
            };
            flowcore_tools::demo::demo(options, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::ShmTail {
            dir,
            streams,
            from_oldest,
            json,
            seconds: tail_seconds,
            follow,
        } => {
            let options = flowcore_tools::shm_tail::TailOptions {
                streams,
                from: if from_oldest {
                    flowcore_shm::ReadFrom::Oldest
                } else {
                    flowcore_shm::ReadFrom::Next
                },
                json,
                duration: seconds("--seconds", tail_seconds)?,
                follow,
            };
            let s = flowcore_tools::shm_tail::tail(&dir, &options, &mut std::io::stdout().lock())?;
            report!(
                "shm-tail: {} records, {} missed (lapped)",
                s.records,
                s.lapped
            );
            Ok(())
        }
        Command::Synth {
            venue,
            seed,
            start_ms,
            seconds,
            out,
        } => {
            use flowcore_sim::bybit_synth::{beside_btc_recordings, generate};
            let venue = flowcore_core::instrument::Venue::from_name(&venue)
                .with_context(|| format!("--venue {venue}: not a venue"))?;
            let mut options = beside_btc_recordings(venue);
            if let Some(start_ms) = start_ms {
                options.start_ms = start_ms;
                options.best_bid = None;
            }
            options.seed = seed.unwrap_or(options.seed);
            options.seconds = seconds.unwrap_or(options.seconds);
            let stream = generate(&options)?;
            std::fs::write(&out, stream.lines.join("\n") + "\n")
                .with_context(|| format!("--out {}", out.display()))?;
            report!(
                "synth: {} lines, {} trades, {} book deltas of synthetic {venue} BTCUSDT (seed {}) \
                 in {}",
                stream.lines.len(),
                stream.trades.len(),
                stream.books.len() - 1,
                options.seed,
                out.display()
            );
            Ok(())
        }
        Command::Sim {
            pace,
            bind,
            ping_interval,
            pong_timeout,
            wait_clients,
            client_buffer,
            tls_cert,
            tls_key,
            faults,
            api_key,
            connection_lifetime,
            instruments,
            inputs,
        } => {
            let options = flowcore_sim::SimOptions {
                inputs: read_inputs(&inputs)?,
                pace,
                bind,
                ping_interval: seconds("--ping-interval", ping_interval)?,
                pong_timeout: seconds("--pong-timeout", pong_timeout)?,
                wait_clients,
                tls: tls_cert.zip(tls_key),
                table: load_table(&instruments)?,
                stop: Default::default(),
                client_buffer,
                faults,
                api_key,
                connection_lifetime: seconds("--connection-lifetime", connection_lifetime)?,
            };
            let s = flowcore_sim::run_sim(options, |line| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            })?;
            report!(
                "sim: {} messages played, {} delivered, {} snapshots and {} trade histories served, \
                 {} clients dropped, faults: {}",
                s.played, s.delivered, s.snapshots, s.histories, s.dropped_clients, s.faults
            );
            Ok(())
        }
    }
}

/// The `VENUE=FILE` and `journal=DIR` arguments; a journal's torn tail is said on stderr
/// (its records up to the tear are read).
fn read_inputs(args: &[String]) -> anyhow::Result<Vec<Input>> {
    let (inputs, torn) = flowcore_feeds::recording::parse_inputs(args)?;
    for t in torn {
        report!(
            "warning: {}: torn tail at byte {} ({}); read up to the last whole record",
            t.segment.display(),
            t.offset,
            t.why
        );
    }
    Ok(inputs)
}

/// `flowcore run` (and `flowcore record`, a run with no outputs).
fn run_live(args: LiveArgs) -> anyhow::Result<()> {
    let LiveArgs {
        config,
        out,
        seconds: run_seconds,
        record,
        exit_on_close,
        shm,
        stage_log,
        engine,
    } = args;
    let table = engine.table()?;
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    let base = config.parent().unwrap_or(std::path::Path::new("."));
    let run_config = flowcore_runtime::config::RunConfig::parse(&text, base, &table)
        .with_context(|| format!("{}", config.display()))?;
    let options = flowcore_runtime::live::RunOptions {
        config: run_config,
        table,
        imbalance: engine.imbalance()?,
        duration: seconds("--seconds", run_seconds)?,
        record,
        stop: Default::default(),
        exit_on_close,
        shm: shm.map(BusConfig::new),
        stage_log,
    };
    let mut files = out.files()?;
    let s = flowcore_runtime::live::run(options, files.outputs())?;
    files.flush()?;
    let transport = match s.transport {
        Some(TransportKind::IoUring) => "io_uring",
        Some(TransportKind::Tokio) => "tokio",
        None => "none",
    };
    report!(
        "run ({transport}): {} messages, {} snapshots, {} gaps, {} resyncs, {} late trades, \
         {} parse errors, {} disconnects ({} stalls), {} rotations ({} broke, {} shutdown \
         notices), {} trade gaps ({} backfilled trades, {} unfilled, {} history refusals), \
         {} duplicate trades, {} ring waits, {} recorded lines ({} bars, {} tops)",
        s.messages,
        s.snapshots,
        s.engine.gaps,
        s.engine.resync_requests,
        s.late_trades,
        s.parse_errors,
        s.disconnects,
        s.stalls,
        s.rotations,
        s.rotation_breaks,
        s.shutdown_notices,
        s.engine.trade_gaps,
        s.engine.backfilled_trades,
        s.engine.unfilled_trade_gaps,
        s.engine.backfills_refused,
        s.engine.duplicate_trades,
        s.ring_waits,
        s.recorded_lines,
        s.bars,
        s.tops,
    );
    if transport == "io_uring" && s.messages > 0 {
        // The receive path's syscalls: every enter (submit or completion harvest) and,
        // with idle = "park", every wait.
        report!(
            "run: io_uring: {} enters and {} parked waits for {} messages: {:.3} syscalls a message",
            s.uring_enters,
            s.uring_waits,
            s.messages,
            (s.uring_enters + s.uring_waits) as f64 / s.messages as f64
        );
    }
    if s.open_interest_polls + s.open_interest_errors > 0 {
        report!(
            "run: open interest: {} polls answered, {} failed",
            s.open_interest_polls,
            s.open_interest_errors
        );
    }
    if let Some(record) = &s.record {
        print_record(record);
    }
    print_signals(&s.signals);
    print_health(&s.health);
    Ok(())
}

fn print_record(record: &flowcore_runtime::recorder::RecordSummary) {
    if let Some(r) = &record.repaired {
        report!(
            "record: the journal's last segment {} was torn at byte {} ({}): cut off, {} whole \
             records kept",
            r.tail.segment.display(),
            r.tail.offset,
            r.tail.why,
            r.records
        );
    }
    if let Some(j) = &record.journal {
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        report!(
            "record: {} lines, {} journal records in {} segments ({:.1} MiB), {} oversized \
             refused, {} segments compressed ({:.1} -> {:.1} MiB)",
            record.lines,
            j.records,
            j.segments,
            mb(j.bytes),
            j.oversized,
            j.compressed,
            mb(j.compressed_from),
            mb(j.compressed_to)
        );
    }
}
