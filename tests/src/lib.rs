//! Helpers for the cross-crate tests: bundled data paths and replay into memory.

use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::recording::RecordingReader;
use flowcore_feeds::recording::{Input, Source};
use flowcore_outputs::Outputs;
use flowcore_runtime::replay::{replay, ReplayOptions, ReplaySummary};
use flowcore_tools::demo::private_bus_dir;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A bundled recording under `data/binance/`.
pub fn recording(name: &str) -> PathBuf {
    repo().join("data/binance").join(name)
}

/// The decompressed lines of a bundled recording.
pub fn lines(name: &str) -> Vec<String> {
    let bytes = RecordingReader::read_all(&recording(name)).expect("bundled recording");
    String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A `VENUE=FILE` input from a bundled recording.
pub fn file(venue: Venue, name: &str) -> Input {
    Input {
        venue,
        source: Source::Path(recording(name)),
    }
}

/// A `VENUE=FILE` input from a file under `data/` (`faults/coinm_quiet_break_1.txt.gz`).
pub fn data_file(venue: Venue, relative: &str) -> Input {
    Input {
        venue,
        source: Source::Path(repo().join("data").join(relative)),
    }
}

/// An input from edited lines.
pub fn memory(venue: Venue, lines: &[String]) -> Input {
    Input {
        venue,
        source: Source::Memory((lines.join("\n") + "\n").into_bytes().into()),
    }
}

/// What a replay wrote.
#[derive(Debug)]
pub struct Output {
    /// Bar rows, sorted.
    pub bars: Vec<String>,
    /// Tops rows, sorted.
    pub tops: Vec<String>,
    /// Health rows, in the order written.
    pub health: Vec<String>,
    /// Counters.
    pub summary: ReplaySummary,
}

/// The bytes a replay wrote to each output, in the order written.
#[derive(Debug)]
pub struct Written {
    /// Bar rows.
    pub bars: Vec<u8>,
    /// Tops rows.
    pub tops: Vec<u8>,
    /// Health rows.
    pub health: Vec<u8>,
    /// Signal rows.
    pub signals: Vec<u8>,
    /// Venue statistics rows.
    pub stats: Vec<u8>,
    /// Counters.
    pub summary: ReplaySummary,
}

/// Options with the bundled instrument table and default imbalance (and the other defaults).
pub fn options(inputs: Vec<Input>) -> ReplayOptions {
    ReplayOptions::new(
        InstrumentTable::bundled_defaults(),
        ImbalanceConfig::default(),
        inputs,
    )
}

/// Replays into memory.
pub fn replay_written(options: ReplayOptions) -> Written {
    let (mut bars, mut tops, mut health, mut signals, mut stats) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let outputs = Outputs {
        bars: Some(&mut bars),
        tops: Some(&mut tops),
        health: Some(&mut health),
        signals: Some(&mut signals),
        stats: Some(&mut stats),
    };
    let summary = replay(options, outputs).expect("replay");
    Written {
        bars,
        tops,
        health,
        signals,
        stats,
        summary,
    }
}

/// Replays with the bundled instrument table and default imbalance, rows sorted.
pub fn run(inputs: Vec<Input>) -> Output {
    let written = replay_written(options(inputs));
    Output {
        bars: sorted_rows(written.bars),
        tops: sorted_rows(written.tops),
        health: rows(written.health),
        summary: written.summary,
    }
}

/// The BTC set of the golden files: spot 0808+0809, USD-M 0808, COIN-M 0808+0809.
pub fn btc_inputs() -> Vec<Input> {
    vec![
        file(Venue::BinanceSpot, "spot_btcusdt_20240808.txt.gz"),
        file(Venue::BinanceSpot, "spot_btcusdt_20240809.txt.gz"),
        file(Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz"),
        file(Venue::BinanceCoinm, "coinm_btcusd_perp_20240808.txt.gz"),
        file(Venue::BinanceCoinm, "coinm_btcusd_perp_20240809.txt.gz"),
    ]
}

/// [`btc_inputs`]' lines received before `cut_ns` (in memory), and the last of their times.
pub fn btc_inputs_cut(cut_ns: i64) -> (Vec<Input>, i64) {
    let mut last = i64::MIN;
    let mut cut = |names: &[&str]| -> Vec<String> {
        let kept = lines_before(names, cut_ns);
        last = (kept.iter().map(|l| line_ts(l))).fold(last, i64::max);
        kept
    };
    let inputs = vec![
        memory(
            Venue::BinanceSpot,
            &cut(&[
                "spot_btcusdt_20240808.txt.gz",
                "spot_btcusdt_20240809.txt.gz",
            ]),
        ),
        memory(Venue::BinanceUsdm, &cut(&["usdm_btcusdt_20240808.txt.gz"])),
        memory(
            Venue::BinanceCoinm,
            &cut(&[
                "coinm_btcusd_perp_20240808.txt.gz",
                "coinm_btcusd_perp_20240809.txt.gz",
            ]),
        ),
    ];
    (inputs, last)
}

/// The receive time that begins a recording line.
pub fn line_ts(line: &str) -> i64 {
    line.split(' ').next().unwrap().parse().unwrap()
}

/// The lines of the bundled recordings `names`, in order, received before `end_ns`.
pub fn lines_before(names: &[&str], end_ns: i64) -> Vec<String> {
    (names.iter())
        .flat_map(|n| lines(n))
        .filter(|l| line_ts(l) < end_ns)
        .collect()
}

/// JSONL output as sorted rows.
pub fn sorted_rows(bytes: Vec<u8>) -> Vec<String> {
    let mut rows = rows(bytes);
    rows.sort();
    rows
}

/// JSONL output as rows, in the order written.
pub fn rows(bytes: Vec<u8>) -> Vec<String> {
    String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// PEM files in `dir` of a freshly generated CA and a certificate it signed for 127.0.0.1
/// and localhost: (ca, cert, key).
pub fn local_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "flowcore test CA");
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    let key = KeyPair::generate().expect("server key");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).expect("writing ca.pem");
    std::fs::write(&paths.1, cert.pem()).expect("writing cert.pem");
    std::fs::write(&paths.2, key.serialize_pem()).expect("writing key.pem");
    paths
}

/// An empty scratch folder under the system's temp dir, unique to this call.
pub fn temp_dir(name: &str) -> TempDir {
    temp_dir_in(&std::env::temp_dir(), name)
}

/// An empty scratch folder for a bus: on tmpfs (as in production) when there is one, as the
/// demo's own bus ([`flowcore_tools::demo::private_bus_dir`]).
pub fn shm_dir(name: &str) -> TempDir {
    fresh(private_bus_dir(&unique(name)))
}

fn temp_dir_in(base: &Path, name: &str) -> TempDir {
    fresh(base.join(format!("flowcore-{}", unique(name))))
}

/// `name` made unique to this call: tests of one binary run in parallel and may ask for the
/// same name.
fn unique(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

/// `dir`, emptied and created.
fn fresh(dir: PathBuf) -> TempDir {
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// A test's scratch directory, removed with everything in it when dropped, a failed test's
/// too (a test machine keeps its temp dir between runs: recordings and journals left behind
/// were tens of MB a test). `FLOWCORE_KEEP_TEMP` set (to anything) keeps them to look at.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("FLOWCORE_KEEP_TEMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What a live run wrote, rows sorted.
#[derive(Debug)]
pub struct LiveOutput {
    /// Bar rows, sorted.
    pub bars: Vec<String>,
    /// Tops rows, sorted.
    pub tops: Vec<String>,
    /// Health rows, in the order written.
    pub health: Vec<String>,
    /// Signal rows, in the order written.
    pub signals: Vec<String>,
    /// Venue statistics rows, in the order written.
    pub stats: Vec<String>,
    /// Counters.
    pub summary: flowcore_runtime::live::RunSummary,
}

/// Run options for `config_text`: bundled instruments, default imbalance, a ten-minute
/// safety limit, ending when the servers close the connections, no recording.
pub fn run_options(config_text: &str) -> flowcore_runtime::live::RunOptions {
    use flowcore_runtime::config::RunConfig;
    let table = InstrumentTable::bundled_defaults();
    let config = RunConfig::parse(config_text, Path::new("."), &table).expect("run config");
    flowcore_runtime::live::RunOptions {
        config,
        table,
        imbalance: ImbalanceConfig::default(),
        duration: Some(std::time::Duration::from_secs(600)),
        record: None,
        stop: Default::default(),
        exit_on_close: true,
        shm: None,
        stage_log: None,
    }
}

/// `flowcore run` with [`run_options`] (plus `record`), both outputs captured.
pub fn live_run(config_text: &str, record: Option<PathBuf>) -> LiveOutput {
    let (mut bars, mut tops, mut health, mut signals, mut stats) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let options = flowcore_runtime::live::RunOptions {
        record,
        ..run_options(config_text)
    };
    let outputs = Outputs {
        bars: Some(&mut bars),
        tops: Some(&mut tops),
        health: Some(&mut health),
        signals: Some(&mut signals),
        stats: Some(&mut stats),
    };
    let summary = flowcore_runtime::live::run(options, outputs).expect("run");
    LiveOutput {
        bars: sorted_rows(bars),
        tops: sorted_rows(tops),
        health: rows(health),
        signals: rows(signals),
        stats: rows(stats),
        summary,
    }
}

/// The `[[strategy]]` tables of a bundled template (`config/strategies/NAME`).
pub fn strategies_text(name: &str) -> String {
    std::fs::read_to_string(repo().join("config/strategies").join(name)).expect("template")
}

/// Signal rows without what depends on when and in which order the messages arrived,
/// sorted: what a live run and a replay of the same data must share. That is `id` and
/// `local_ns`, and the aggregate CVDs, which are those of the last aggregate bar the core
/// thread had when the signal was made: an aggregate waits for its slowest member, and
/// which member is slowest differs between a live run and a replay.
pub fn signal_contents(rows: &[String]) -> Vec<String> {
    signal_rows_without(rows, &["id", "local_ns", "spot_cvd", "perp_cvd"])
}

/// Signal rows without the fields `keys`, sorted.
pub fn signal_rows_without(rows: &[String], keys: &[&str]) -> Vec<String> {
    let drop_field = |row: &str, key: &str| -> String {
        let Some(at) = row.find(&format!("\"{key}\":")) else {
            return row.to_owned();
        };
        let end = at + row[at..].find(',').map_or(row.len() - at, |e| e + 1);
        format!("{}{}", &row[..at], &row[end..])
    };
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| keys.iter().fold(r.clone(), |r, key| drop_field(&r, key)))
        .collect();
    out.sort();
    out
}

/// A committed golden file's rows, sorted.
pub fn golden(name: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(repo().join("tests/golden").join(name)).expect("golden file");
    let mut rows: Vec<String> = text.lines().map(str::to_owned).collect();
    rows.sort();
    rows
}

/// Asserts two row sets are equal, reporting the first differences readably.
pub fn assert_rows_eq(what: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
    let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
    panic!(
        "{what}: {} rows, want {}\nmissing (first 3): {missing:#?}\nunexpected (first 3): {extra:#?}",
        got.len(),
        want.len()
    );
}

/// The `"ts"` of a JSONL row.
pub fn ts_of(row: &str) -> i64 {
    let at = row.find("\"ts\":").expect("ts") + 5;
    row[at..]
        .split(',')
        .next()
        .expect("ts value")
        .parse()
        .expect("ts number")
}

/// Options for a simulator on loopback: bundled instruments, fast heartbeats, no faults.
pub fn sim_options(
    inputs: Vec<Input>,
    pace: flowcore_feeds::recording::Pace,
    wait_clients: usize,
    tls: Option<(PathBuf, PathBuf)>,
) -> flowcore_sim::SimOptions {
    use flowcore_feeds::recording::Pace;
    flowcore_sim::SimOptions {
        inputs,
        pace,
        bind: "127.0.0.1".parse().expect("an address"),
        ping_interval: Some(std::time::Duration::from_millis(500)),
        pong_timeout: Some(std::time::Duration::from_secs(5)),
        wait_clients,
        tls,
        table: InstrumentTable::bundled_defaults(),
        stop: Default::default(),
        // Paced plays drop a client that lags this far. Several clients and engines share
        // 2 cores while the suite runs in parallel: a lag drop there would say something
        // of the machine, not the code. (`asap` never drops, it waits for the client.)
        client_buffer: match pace {
            Pace::Asap => flowcore_sim::DEFAULT_CLIENT_BUFFER,
            _ => 1 << 16,
        },
        faults: Default::default(),
        api_key: None,
        connection_lifetime: None,
    }
}

/// Base URLs (ws, rest) per venue name.
pub type SimAddresses = std::collections::HashMap<String, (String, String)>;

/// A simulator on its own thread; returns its (ws, rest) base URLs per venue.
pub fn start_sim_with(
    options: flowcore_sim::SimOptions,
) -> (
    SimAddresses,
    std::thread::JoinHandle<flowcore_sim::SimSummary>,
) {
    let venues = {
        let mut v: Vec<Venue> = options.inputs.iter().map(|i| i.venue).collect();
        v.dedup();
        v.len()
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let handle = std::thread::spawn(move || {
        flowcore_sim::run_sim(options, |line| tx.send(line.to_string()).unwrap()).expect("sim")
    });
    let mut addresses = SimAddresses::new();
    for _ in 0..venues {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("sim announces its venues");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        addresses.insert(
            v["venue"].as_str().unwrap().to_string(),
            (
                v["ws"].as_str().unwrap().to_string(),
                v["rest"].as_str().unwrap().to_string(),
            ),
        );
    }
    (addresses, handle)
}

/// The transports a run can use, as `[pipeline]` lines.
pub const IO_URING: &str = "transport = \"io_uring\"\n";
/// io_uring with one plain receive per connection.
pub const IO_URING_PLAIN: &str = "transport = \"io_uring\"\nuring_recv = \"plain\"\n";
/// tokio-tungstenite.
pub const TOKIO: &str = "transport = \"tokio\"\n";

/// False, with a message, where this kernel or sandbox refuses io_uring: the io_uring
/// variants of the tests are then skipped, loudly (the tokio ones still run).
pub fn io_uring_here() -> bool {
    match flowcore_feeds::transport::uring::probe() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIPPED: io_uring unavailable here: {e}");
            false
        }
    }
}

/// The transport a run should have used.
pub fn expected_transport(transport: &str) -> flowcore_runtime::config::TransportKind {
    if transport.contains("tokio") {
        flowcore_runtime::config::TransportKind::Tokio
    } else {
        flowcore_runtime::config::TransportKind::IoUring
    }
}

/// A run configuration with one feed per venue the simulator serves; `transport` is a
/// `[pipeline]` line ([`IO_URING`]...), empty for the default; `feed_lines` go into every
/// `[[feed]]` (an API key, say).
pub fn sim_config(
    addresses: &SimAddresses,
    ca: Option<&Path>,
    transport: &str,
    feed_lines: &str,
) -> String {
    let mut text = format!("[pipeline]\nidle = \"park\"\nring_capacity = 4096\n{transport}");
    for (venue, symbol) in [
        ("binance-spot", "BTCUSDT"),
        ("binance-usdm", "BTCUSDT"),
        ("binance-coinm", "BTCUSD_PERP"),
        ("bybit-spot", "BTCUSDT"),
        ("bybit-linear", "BTCUSDT"),
    ] {
        let Some((ws, rest)) = addresses.get(venue) else {
            continue;
        };
        let ws = match venue {
            "binance-usdm" => format!("{ws}/public"),
            "bybit-spot" => format!("{ws}/v5/public/spot"),
            "bybit-linear" => format!("{ws}/v5/public/linear"),
            _ => ws.clone(),
        };
        text += &format!(
            "[[feed]]\nvenue = \"{venue}\"\nsymbols = [\"{symbol}\"]\nws_url = \"{ws}\"\nrest_url = \"{rest}\"\n{feed_lines}"
        );
        if let Some(ca) = ca {
            text += &format!("tls_ca_file = {:?}\n", ca.display().to_string());
        }
    }
    text
}

/// Synthetic Bybit spot and linear BTCUSDT streams beside the BTC recordings (see
/// [`flowcore_sim::bybit_synth::beside_btc_recordings`]), written to `dir` as recordings.
pub fn bybit_synth_inputs(dir: &Path) -> Vec<Input> {
    use flowcore_sim::bybit_synth::{beside_btc_recordings, generate};
    [Venue::BybitSpot, Venue::BybitLinear]
        .into_iter()
        .map(|venue| {
            let stream = generate(&beside_btc_recordings(venue)).expect("synthetic stream");
            let path = dir.join(format!("{}_btcusdt_synthetic.txt", venue.name()));
            std::fs::write(&path, stream.lines.join("\n") + "\n").expect("write");
            Input {
                venue,
                source: Source::Path(path),
            }
        })
        .collect()
}

/// The recorded files of a run as replay inputs, each with its venue (from its name).
pub fn recorded_inputs(dir: &Path) -> Vec<Input> {
    flowcore_feeds::recording::recorded_inputs(dir).expect("a recording folder")
}

/// Lines of a bundled recording.
pub fn recording_lines(name: &str) -> u64 {
    use std::io::BufRead;
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(recording(name)).expect(name));
    std::io::BufReader::new(gz).lines().count() as u64
}

/// Checks health rows (`--health-out`) the way a reader relies on them, and returns the
/// number of seconds they cover:
/// - each second has the pipeline's row (`all`) then one per venue of `venues`, in
///   [`Venue::ALL`] order, all with the same `ts`, and `ts` grows;
/// - every counter is cumulative (never decreases) and the venues' add up to the pipeline's;
/// - lag percentiles are ordered, and null exactly when the second had no samples.
pub fn check_health_rows(rows: &[String], venues: &[Venue]) -> usize {
    const COUNTERS: [&str; 16] = [
        "messages",
        "events",
        "parse_errors",
        "gaps",
        "resyncs",
        "crossed_books",
        "reconnects",
        "stalls",
        "rotations",
        "late_trades",
        "backfilled_trades",
        "duplicate_trades",
        "unfilled_trade_gaps",
        "ring_waits",
        "clock_behind",
        "lag_samples",
    ];
    let sources: Vec<&str> = std::iter::once("all")
        .chain(
            Venue::ALL
                .iter()
                .filter(|v| venues.contains(v))
                .map(|v| v.name()),
        )
        .collect();
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r).expect("a health row is JSON"))
        .collect();
    assert_eq!(rows.len() % sources.len(), 0, "whole groups of {sources:?}");
    let mut last: Vec<Option<serde_json::Value>> = vec![None; sources.len()];
    let mut last_ts = i64::MIN;
    for group in rows.chunks(sources.len()) {
        let ts = group[0]["ts"].as_i64().expect("ts");
        assert!(ts > last_ts, "ts grows: {ts} after {last_ts}");
        last_ts = ts;
        for (i, row) in group.iter().enumerate() {
            assert_eq!(row["source"], sources[i], "{row}");
            assert_eq!(row["ts"], ts, "{row}");
            let lag: Vec<Option<i64>> = ["lag_p50_ns", "lag_p99_ns", "lag_p999_ns", "lag_max_ns"]
                .iter()
                .map(|k| row[*k].as_i64())
                .collect();
            if row["lag_samples"] == 0 {
                assert!(lag.iter().all(Option::is_none), "{row}");
            } else {
                let lag: Vec<i64> = lag.into_iter().map(|v| v.expect("a lag")).collect();
                assert!(lag.windows(2).all(|w| w[0] <= w[1]), "{row}");
            }
            for k in COUNTERS {
                let v = row[k].as_u64().expect(k);
                if let Some(prev) = &last[i] {
                    // Lag samples are per second; the rest are cumulative.
                    if k != "lag_samples" {
                        assert!(v >= prev[k].as_u64().unwrap(), "{k} fell: {row}");
                    }
                }
            }
            last[i] = Some(row.clone());
        }
        for k in COUNTERS {
            let sum: u64 = group[1..].iter().map(|r| r[k].as_u64().unwrap()).sum();
            assert_eq!(
                sum,
                group[0][k].as_u64().unwrap(),
                "{k}: venues add up to all"
            );
        }
    }
    rows.len() / sources.len()
}

/// Checks a run's health rows ([`check_health_rows`] over the BTC venues) and that its last
/// records say what the run summary says, for the pipeline and summed over the venues.
pub fn check_run_health(out: &LiveOutput) {
    let venues = [Venue::BinanceSpot, Venue::BinanceUsdm, Venue::BinanceCoinm];
    let seconds = check_health_rows(&out.health, &venues);
    assert!(seconds > 100, "{seconds} seconds of health");
    let s = &out.summary;
    let last: serde_json::Value =
        serde_json::from_str(&out.health[out.health.len() - 1 - venues.len()]).unwrap();
    assert_eq!(last["source"], "all");
    for (key, want) in [
        ("messages", s.messages),
        ("parse_errors", s.parse_errors),
        ("reconnects", s.disconnects),
        ("stalls", s.stalls),
        ("rotations", s.rotations),
        ("gaps", s.engine.gaps),
        ("resyncs", s.engine.resync_requests),
        ("backfilled_trades", s.engine.backfilled_trades),
        ("duplicate_trades", s.engine.duplicate_trades),
        ("unfilled_trade_gaps", s.engine.unfilled_trade_gaps),
        ("late_trades", s.late_trades),
        ("crossed_books", s.engine.crossed_books),
    ] {
        assert_eq!(last[key], want, "health {key} against the run summary");
    }
    let rows = &s.health;
    assert_eq!(rows[0].source, None);
    assert_eq!(rows[0].feed.reconnects, s.disconnects);
    assert_eq!(rows[0].engine, s.engine);
}

/// A global allocator that counts allocations (and reallocations) of the whole process, and
/// of each thread, and forwards everything to the system allocator. A zero-allocation test
/// declares it `#[global_allocator]` and reads [`ALLOCATIONS`] or [`thread_allocations`]
/// around its steady state.
#[derive(Debug)]
pub struct CountingAllocator;

/// Allocations made through [`CountingAllocator`] so far.
pub static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates.
    static THREAD_ALLOCATIONS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Allocations this thread made through [`CountingAllocator`] so far.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.with(core::cell::Cell::get)
}

fn count_allocation() {
    ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A thread being torn down has no slot any more: its last allocations go uncounted.
    let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// A request to a gateway's control port (`GET /status`, `POST /kill`, ...); its JSON answer,
/// which must be a 200.
pub fn control(port: u16, method: &str, path: &str) -> serde_json::Value {
    let mut c = flowcore_gateways::http::HttpClient::new(
        &format!("http://127.0.0.1:{port}"),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let r = c.request(method, path, &[], None, || {}).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    serde_json::from_slice(&r.body).unwrap()
}
