//! Shared helpers for the benchmarks: bundled data, a batch timer, hdrhistogram reports.
//!
//! Every bench runs the code under test and its baseline in the same process, on the same
//! input, and reports both with their ratio: absolute times drift on shared machines.
//! Without `--bench` on the command line (as under `cargo test --benches`) each bench runs
//! a quick smoke pass that checks the code under test still agrees with its baseline.

use flowcore_core::instrument::Venue;
use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::time::Instant;

pub mod reference;

/// CLOCK_MONOTONIC in ns: comparable across threads and processes of this machine, which
/// the latency benches need (a send stamped in one, the arrival in another).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// True when run by `cargo bench` (full measurement), false under `cargo test --benches`.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// One recorded message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Local receive time, ns.
    pub ts: i64,
    /// Dialect.
    pub venue: Venue,
    /// Index of the input file it came from (ties in the merge go to the lower index).
    pub file: usize,
    /// Raw JSON.
    pub json: Vec<u8>,
}

/// Loads bundled recordings, decompressed, merged by (local ts, file order).
pub fn load(files: &[(Venue, &str)]) -> Vec<Message> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/binance");
    let paths: Vec<(Venue, PathBuf)> = files
        .iter()
        .map(|(venue, name)| (*venue, dir.join(name)))
        .collect();
    load_paths(&paths).expect("bundled recording")
}

/// Loads recordings (plain or gzip), merged by (local ts, file order).
///
/// # Errors
/// When a file cannot be read or a line has no `<ns> ` in front.
pub fn load_paths(files: &[(Venue, PathBuf)]) -> std::io::Result<Vec<Message>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut out = Vec::new();
    for (file, (venue, path)) in files.iter().enumerate() {
        let bytes = flowcore_feeds::recording::RecordingReader::read_all(path)?;
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let space = line
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("a line without its timestamp"))?;
            let ts = std::str::from_utf8(&line[..space])
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| bad("a line whose timestamp is not a number"))?;
            out.push(Message {
                ts,
                venue: *venue,
                file,
                json: line[space + 1..].to_vec(),
            });
        }
    }
    out.sort_by_key(|m| (m.ts, m.file));
    Ok(out)
}

/// The BTC set: spot 0808+0809, USD-M 0808, COIN-M 0808+0809.
pub const BTC_FILES: [(Venue, &str); 5] = [
    (Venue::BinanceSpot, "spot_btcusdt_20240808.txt.gz"),
    (Venue::BinanceSpot, "spot_btcusdt_20240809.txt.gz"),
    (Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz"),
    (Venue::BinanceCoinm, "coinm_btcusd_perp_20240808.txt.gz"),
    (Venue::BinanceCoinm, "coinm_btcusd_perp_20240809.txt.gz"),
];

/// Per-item latency in ns, recorded per batch of items (batch time / batch size) so that the
/// timer's own cost (~20 ns) does not dominate items that take tens of ns.
#[derive(Debug)]
pub struct BatchTimer {
    hist: Histogram<u64>,
    /// Total items and total ns, for the mean.
    items: u64,
    ns: u128,
}

impl Default for BatchTimer {
    fn default() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds"),
            items: 0,
            ns: 0,
        }
    }
}

impl BatchTimer {
    /// Times `f` over a batch of `items` items.
    #[inline]
    pub fn time<R>(&mut self, items: usize, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = f();
        let ns = start.elapsed().as_nanos();
        let per_item_ps = (ns * 1000 / items.max(1) as u128) as u64;
        // Recorded in picoseconds per item for sub-ns resolution of the quantiles.
        self.hist.saturating_record(per_item_ps.max(1));
        self.items += items as u64;
        self.ns += ns;
        r
    }

    /// Mean ns per item.
    pub fn mean_ns(&self) -> f64 {
        self.ns as f64 / self.items.max(1) as f64
    }

    /// Quantile in ns per item.
    pub fn quantile_ns(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    /// Number of batches recorded.
    pub fn batches(&self) -> u64 {
        self.hist.len()
    }

    /// Max ns per item.
    pub fn max_ns(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
}

/// Prints one timer's row: p50, p99, p99.9, max and mean in ns, and its sample count.
pub fn timer_row(who: &str, t: &BatchTimer) {
    println!(
        "  {who:<28} p50 {:>9.1}  p99 {:>9.1}  p99.9 {:>9.1}  max {:>10.1}  mean {:>9.1} ns  ({} batches)",
        t.quantile_ns(0.5),
        t.quantile_ns(0.99),
        t.quantile_ns(0.999),
        t.max_ns(),
        t.mean_ns(),
        t.batches()
    )
}

/// Prints one comparison row: ours, the baseline, and baseline/ours at p50, p99 and mean.
pub fn report(name: &str, ours: &BatchTimer, baseline: &BatchTimer, baseline_name: &str) {
    println!("{name}");
    timer_row("flowcore", ours);
    timer_row(baseline_name, baseline);
    println!(
        "  ratio {baseline_name}/flowcore: p50 {:.2}x, p99 {:.2}x, mean {:.2}x",
        baseline.quantile_ns(0.5) / ours.quantile_ns(0.5),
        baseline.quantile_ns(0.99) / ours.quantile_ns(0.99),
        baseline.mean_ns() / ours.mean_ns()
    );
}
