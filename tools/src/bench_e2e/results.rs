//! What `flowcore bench e2e` runs and what it measured: its options, each stack's result
//! at a rate with its stages' percentiles, and their JSON.

use hdrhistogram::Histogram;
use serde_json::{json, Value as Json};
use std::path::PathBuf;
use std::time::Duration;

/// How flowcore's engine process is laid out for one series of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSetup {
    /// `pipeline.mode`.
    pub mode: String,
    /// `pipeline.idle`.
    pub idle: String,
}

impl EngineSetup {
    pub(crate) fn name(&self) -> String {
        format!("flowcore {} ({})", self.mode, self.idle)
    }
}

/// What `flowcore bench e2e` runs.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    /// The `flowcore` executable (this one) that the processes run.
    pub exe: PathBuf,
    /// The recording whose frames are sent.
    pub recording: PathBuf,
    /// Frames sent per run.
    pub messages: usize,
    /// Open-loop rates, frames a second.
    pub rates: Vec<u64>,
    /// flowcore set-ups measured.
    pub engines: Vec<EngineSetup>,
    /// Strategies the engine runs (`[[strategy]]` tables), if any.
    pub strategies: Option<PathBuf>,
    /// Measure the conventional stack too (needs `redis-server`).
    pub conventional: bool,
    /// How long the sender waits after the client connected (readers attach, books sync).
    pub warm_up: Duration,
    /// Where runs keep their files and the results go (`e2e.json`, `e2e.html`).
    pub out: PathBuf,
}

/// Percentiles of one stage, nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StageStats {
    /// The stage.
    pub name: &'static str,
    /// Samples.
    pub count: u64,
    /// p50, p90, p99, p99.9, max.
    pub ns: [u64; 5],
    /// The percentile curve: (quantile, ns).
    pub curve: Vec<(f64, u64)>,
}

/// One stack at one rate.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// "flowcore inline (spin)", "conventional".
    pub stack: String,
    /// Frames a second.
    pub rate: u64,
    /// Frames sent.
    pub frames: usize,
    /// Trades sent, and seen by the reader.
    pub trades_sent: usize,
    /// Trades the reader saw.
    pub trades_seen: usize,
    /// Wire to visible first, then the stages where the stack reports them, then the
    /// sender's own lateness.
    pub stages: Vec<StageStats>,
    /// What the engine process said at its end.
    pub engine_summary: String,
}

impl RunResult {
    /// The wire -> visible stage.
    pub fn total(&self) -> &StageStats {
        &self.stages[0]
    }
}

/// The headline stage: a frame's due time to its trade seen by the reader.
pub const TOTAL: &str = "wire -> visible";

/// From when the sender began to send the frame: the stack's part alone, without the
/// sender's own lateness (which the due-time figure counts, as it should).
pub const SENT_TO_VISIBLE: &str = "sent -> visible";

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds")
}

pub(crate) fn stats(name: &'static str, h: &Histogram<u64>) -> StageStats {
    let q = |q: f64| h.value_at_quantile(q);
    // The curve up to p99.99, evenly spaced in -log10(1 - q), plus the max.
    let mut curve: Vec<(f64, u64)> = (0..=80)
        .map(|k| {
            let quantile = 1.0 - 10f64.powf(-f64::from(k) / 20.0);
            (quantile, q(quantile))
        })
        .collect();
    curve.push((1.0, h.max()));
    StageStats {
        name,
        count: h.len(),
        ns: [q(0.5), q(0.9), q(0.99), q(0.999), h.max()],
        curve,
    }
}

/// What the bench's JSON holds of a result.
pub(crate) fn result_json(r: &RunResult) -> Json {
    json!({
        "stack": r.stack,
        "rate": r.rate,
        "frames": r.frames,
        "trades_sent": r.trades_sent,
        "trades_seen": r.trades_seen,
        "engine_summary": r.engine_summary,
        "stages": r.stages.iter().map(|s| json!({
            "name": s.name,
            "count": s.count,
            "p50_ns": s.ns[0],
            "p90_ns": s.ns[1],
            "p99_ns": s.ns[2],
            "p999_ns": s.ns[3],
            "max_ns": s.ns[4],
            "curve": s.curve.iter().map(|(q, v)| json!([q, v])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The conventional stack's wire -> visible over each flowcore set-up's at the same rate:
/// `(flowcore's result, [p50, p99, p99.9] ratios)`.
pub fn ratios(results: &[RunResult]) -> Vec<(&RunResult, [f64; 3])> {
    let mut out = Vec::new();
    for conv in results.iter().filter(|r| r.stack == "conventional") {
        for r in results
            .iter()
            .filter(|r| r.rate == conv.rate && r.stack != "conventional")
        {
            let ratio = |k: usize| conv.total().ns[k] as f64 / r.total().ns[k].max(1) as f64;
            out.push((r, [ratio(0), ratio(2), ratio(3)]));
        }
    }
    out
}
