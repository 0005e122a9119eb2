//! `flowcore gateway`: two threads.
//!
//! - The **signal thread** (pinned with `pin_cpu`, busy-polling with `idle = "spin"`) reads
//!   every bus, keeps the market state, runs the [`RiskEngine`] on each signal and hands the
//!   decision to the executor thread through an rtrb ring. No allocation, no lock, no
//!   syscall per signal: bus maintenance (`stat`, `open`) happens only when idle.
//! - The **executor thread** (pinned with `executor_cpu`) journals, talks HTTP, waits on
//!   FreqTrade, logs, and sends what became of each order back through a second ring. With
//!   `idle = "spin"` it polls the ring and yields between polls (the hand-off is under a
//!   microsecond at p50, and threads sharing its core still run); with `idle = "yield"` it
//!   parks and the signal thread unparks it with each decision (one futex wake per signal,
//!   none per market record), leaving its core to the others.
//!
//! A third, tiny thread serves the control port (`POST /kill`, `POST /resume`,
//! `GET /status`) when `control` is set.

use crate::config::{GatewayConfig, IdleKind};
use crate::executor::{now_ns, Executor, ExecutorCounters, SlotNames, StartError};
use crate::journal::{Journal, JournalError};
use crate::market::MarketState;
use crate::order::{Decision, Outcome, Rejection};
use crate::risk::{RiskCounters, RiskEngine};
use crate::source::{BusSource, SourceCounters};
use flowcore_core::indicators::Value;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Decisions in flight between the threads.
const RING: usize = 4096;

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The executor would not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The control port.
    #[error("control port {addr}: {source}")]
    Control {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How a run ends and what it is told from outside.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Set to stop the gateway.
    pub stop: Arc<AtomicBool>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct GatewaySummary {
    /// The risk engine's counts.
    pub risk: RiskCounters,
    /// The executor's counts and latencies.
    pub executor: ExecutorCounters,
    /// Each bus's counts.
    pub buses: Vec<(String, SourceCounters)>,
    /// Positions open at the end.
    pub open_positions: usize,
    /// Realised profit of the run.
    pub realised: Value,
    /// Positions restored from the journal at start.
    pub restored: usize,
    /// Journal records read at start.
    pub journal_records: u64,
}

impl GatewaySummary {
    /// The run summary, one block of text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let r = &self.risk;
        s += &format!(
            "gateway: {} signals decided: {} entries, {} exits ({} capped by a limit), {} rejected\n",
            r.signals,
            r.entries,
            r.exits,
            r.capped,
            r.rejected.iter().sum::<u64>()
        );
        let rejected: Vec<String> = Rejection::ALL
            .iter()
            .filter(|x| r.rejected[**x as usize] > 0)
            .map(|x| format!("{} {}", x.name(), r.rejected[*x as usize]))
            .collect();
        if !rejected.is_empty() {
            s += &format!("gateway: rejected by reason: {}\n", rejected.join(", "));
        }
        let e = &self.executor;
        let outcomes: Vec<String> = e.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        s += &format!(
            "gateway: {} orders sent; outcomes: {}; {} open at the end, realised {}\n",
            e.orders_sent,
            if outcomes.is_empty() {
                "none".into()
            } else {
                outcomes.join(", ")
            },
            self.open_positions,
            self.realised
        );
        for (name, h) in [
            ("signal publish -> request written", &e.publish_to_wire),
            ("gateway read -> request written", &e.read_to_wire),
            ("gateway read -> executor has it", &e.handoff),
            ("FreqTrade round trip", &e.round_trip),
        ] {
            if !h.is_empty() {
                s += &format!(
                    "gateway: {name}: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us ({} samples)\n",
                    h.value_at_quantile(0.5) as f64 / 1e3,
                    h.value_at_quantile(0.99) as f64 / 1e3,
                    h.value_at_quantile(0.999) as f64 / 1e3,
                    h.max() as f64 / 1e3,
                    h.len()
                );
            }
        }
        if e.events_connects + e.events_lost > 0 {
            let events: Vec<String> = e.events.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s += &format!(
                "gateway: freqtrade events: connected {}x, lost or refused {}x; received: {}\n",
                e.events_connects,
                e.events_lost,
                if events.is_empty() {
                    "none".into()
                } else {
                    events.join(", ")
                }
            );
        }
        for (name, c) in &self.buses {
            s += &format!(
                "gateway: bus {name}: opened {}x, {} signals read ({} already journaled), {} lapped\n",
                c.opens, c.signals, c.replayed, c.lapped
            );
        }
        if self.restored > 0 || self.executor.foreign_open > 0 {
            s += &format!(
                "gateway: restart: {} journal records, {} positions restored, {} FreqTrade trades not ours\n",
                self.journal_records, self.restored, self.executor.foreign_open
            );
        }
        s
    }
}

/// Runs the gateway until `control` says stop.
///
/// # Errors
/// [`GatewayError`] at start; once running, errors are counted and logged, not returned.
pub fn run(config: GatewayConfig, control: RunControl) -> Result<GatewaySummary, GatewayError> {
    let (journal, state) = Journal::open(&config.journal, config.fsync)?;
    if state.truncated_bytes > 0 {
        eprintln!(
            "gateway: journal: cut a torn last record ({} bytes) left by a crash",
            state.truncated_bytes
        );
    }
    let slot_names: SlotNames = Arc::new(RwLock::new(Vec::new()));
    let mut market = MarketState::new(config.risk.correlation_minutes as usize);
    let mut executor = Executor::new(&config, journal, slot_names.clone())?;
    let mut risk = RiskEngine::new(&config.risk, &config.sizing, &config.pairs);
    if let Some(total) = executor.balance() {
        risk.set_equity(Value::from_num(total));
        eprintln!("gateway: equity {total} from FreqTrade's /balance");
    }
    let restored = executor.reconcile_start(&state, |name| market.slot(name, "", 0, 0));
    let restored_count = restored.len();
    for p in restored {
        risk.restore(p);
    }
    publish_names(&market, &slot_names);

    // The file is polled on the executor thread (a stat is a syscall); the HTTP flag is
    // read directly, so entries stop as soon as `POST /kill` has answered.
    let file_killed = Arc::new(AtomicBool::new(false));
    let http_kill = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Mutex::new(String::from("{}")));
    if let Some(addr) = &config.control {
        serve_control(
            addr,
            http_kill.clone(),
            status.clone(),
            control.stop.clone(),
        )?;
    }

    let (mut to_exec, mut decisions) = rtrb::RingBuffer::<Decision>::new(RING);
    let (mut outcomes_tx, mut outcomes) = rtrb::RingBuffer::<Outcome>::new(RING);
    let stop = control.stop.clone();
    let deadline = control.duration.map(|d| Instant::now() + d);
    let signal_done = Arc::new(AtomicBool::new(false));

    let exec_stop = signal_done.clone();
    let kill_file = config.risk.kill_file.clone();
    let exec_file_killed = file_killed.clone();
    let exec_idle = config.idle;
    let exec_cpu = config.executor_cpu;
    let executor_thread = std::thread::Builder::new()
        .name("gateway-exec".into())
        .spawn(move || {
            let mut checked = Instant::now();
            let mut events_polled = Instant::now();
            let mut file_kill = false;
            let exec_idle = exec_idle;
            if let Some(cpu) = exec_cpu {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                    eprintln!(
                        "gateway: could not pin the executor thread to CPU {cpu}; running unpinned"
                    );
                }
            }
            loop {
                let mut work = false;
                while let Ok(d) = decisions.pop() {
                    work = true;
                    if let Some(o) = executor.handle(&d) {
                        push(&mut outcomes_tx, o);
                    }
                }
                // FreqTrade's fills: a non-blocking read every few ms, between orders.
                if events_polled.elapsed() >= Duration::from_millis(5) {
                    events_polled = Instant::now();
                    for o in executor.poll_events() {
                        work = true;
                        push(&mut outcomes_tx, o);
                    }
                }
                if checked.elapsed() >= Duration::from_millis(100) {
                    checked = Instant::now();
                    if let Some(f) = &kill_file {
                        let now = f.exists();
                        if now != file_kill {
                            eprintln!(
                                "gateway: kill switch file {} {}",
                                f.display(),
                                if now {
                                    "present: entries stop"
                                } else {
                                    "gone: entries resume"
                                }
                            );
                        }
                        file_kill = now;
                    }
                    exec_file_killed.store(file_kill, Ordering::Relaxed);
                    for o in executor.housekeeping() {
                        push(&mut outcomes_tx, o);
                    }
                    if let Ok(mut s) = status.lock() {
                        *s = status_json(&executor.counters);
                    }
                }
                if work {
                    continue;
                }
                if exec_stop.load(Ordering::Acquire) && decisions.is_empty() {
                    break;
                }
                match exec_idle {
                    // Production: poll, but yield so that on a small machine the threads
                    // that share this core (the engine's, FreqTrade) still run.
                    IdleKind::Spin => std::thread::yield_now(),
                    // The signal thread unparks this one after each decision it hands
                    // over: no core spent polling here, and no sleep to wait out.
                    IdleKind::Yield => std::thread::park_timeout(Duration::from_millis(50)),
                }
            }
            executor
        })
        .expect("spawn the executor thread");

    let exec_thread = executor_thread.thread().clone();
    if let Some(cpu) = config.pin_cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            eprintln!("gateway: could not pin the signal thread to CPU {cpu}; running unpinned");
        }
    }
    let mut sources: Vec<BusSource> = config
        .buses
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let recent = state.recent.get(&d.display().to_string());
            BusSource::new(i as u16, d.clone(), recent.map_or(&[], Vec::as_slice))
        })
        .collect();
    let seen = |bus: &str, epoch: u64| {
        state
            .seen
            .get(&(bus.to_string(), epoch))
            .copied()
            .unwrap_or(0)
    };
    let pair_of = |venue: &str, symbol: &str| config.pair_index(venue, symbol);
    let mut idle_rounds = 0u32;
    let mut marked = Instant::now();
    let mut backpressure = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let mut work = false;
        risk.kill_switch = file_killed.load(Ordering::Relaxed) || http_kill.load(Ordering::Relaxed);
        for src in &mut sources {
            work |= src.poll(&mut market, now_ns, |signal, market| {
                let decision = risk.decide(&signal, market, now_ns());
                let mut d = decision;
                loop {
                    match to_exec.push(d) {
                        Ok(()) => {
                            // A futex wake per signal (not per market record).
                            exec_thread.unpark();
                            break;
                        }
                        Err(rtrb::PushError::Full(back)) => {
                            backpressure += 1;
                            d = back;
                            std::thread::yield_now();
                        }
                    }
                }
            });
        }
        while let Ok(o) = outcomes.pop() {
            risk.outcome(&o);
            work = true;
        }
        // Every 50 ms, busy or not (a bus that never goes quiet must still be followed
        // across a writer restart): bus upkeep (a `stat` or an `open` per bus) and the
        // equity mark for the drawdown switch. Never per record.
        if marked.elapsed() >= Duration::from_millis(50) {
            marked = Instant::now();
            let before = sources.iter().map(|s| s.counters.opens).sum::<u64>();
            for src in &mut sources {
                src.maintain(&mut market, seen, pair_of);
            }
            if sources.iter().map(|s| s.counters.opens).sum::<u64>() != before {
                publish_names(&market, &slot_names);
            }
            let tripped = risk.drawdown_tripped();
            risk.mark(&market);
            if risk.drawdown_tripped() && !tripped {
                eprintln!(
                    "gateway: drawdown kill switch: equity {} is {} below its peak; entries stop",
                    risk.equity(&market),
                    config.risk.max_drawdown
                );
            }
        }
        if work {
            idle_rounds = 0;
            continue;
        }
        idle_rounds = idle_rounds.saturating_add(1);
        match config.idle {
            IdleKind::Spin => std::hint::spin_loop(),
            IdleKind::Yield if idle_rounds < 64 => std::thread::yield_now(),
            IdleKind::Yield => std::thread::sleep(Duration::from_micros(100)),
        }
    }
    signal_done.store(true, Ordering::Release);
    let executor = executor_thread
        .join()
        .expect("the executor thread does not panic");
    // Outcomes of the last orders.
    while let Ok(o) = outcomes.pop() {
        risk.outcome(&o);
    }
    if backpressure > 0 {
        eprintln!("gateway: the executor fell behind {backpressure} times (decision ring full)");
    }
    Ok(GatewaySummary {
        risk: *risk.counters(),
        executor: executor.counters.clone(),
        buses: sources
            .iter()
            .map(|s| (s.name.clone(), s.counters))
            .collect(),
        open_positions: risk.positions().len(),
        realised: risk.realised(),
        restored: restored_count,
        journal_records: state.records,
    })
}

fn push(tx: &mut rtrb::Producer<Outcome>, mut o: Outcome) {
    loop {
        match tx.push(o) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(back)) => {
                o = back;
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

fn publish_names(market: &MarketState, names: &SlotNames) {
    if let Ok(mut n) = names.write() {
        n.clear();
        let mut k = 0;
        while let Some(s) = market.try_get(k) {
            n.push((s.name.clone(), s.price_scale, s.size_scale));
            k += 1;
        }
    }
}

fn status_json(c: &ExecutorCounters) -> String {
    serde_json::json!({
        "decisions": c.decisions,
        "orders_sent": c.orders_sent,
        "outcomes": c.outcomes,
        "freqtrade_events": c.events,
        "rejections": c.rejections,
        "publish_to_wire_p99_ns": if !c.publish_to_wire.is_empty() { c.publish_to_wire.value_at_quantile(0.99) } else { 0 },
    })
    .to_string()
}

/// The control port: `POST /kill` stops entries, `POST /resume` allows them again,
/// `POST /stop` ends the gateway, `GET /status` answers the executor's counts as JSON.
fn serve_control(
    addr: &str,
    kill: Arc<AtomicBool>,
    status: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
) -> Result<(), GatewayError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| GatewayError::Control {
        addr: addr.into(),
        source,
    })?;
    eprintln!(
        "gateway: control on http://{}",
        listener
            .local_addr()
            .map_or(addr.to_string(), |a| a.to_string())
    );
    std::thread::Builder::new()
        .name("gateway-control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let n = c.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let line = head.lines().next().unwrap_or("");
                let (code, body) = if line.starts_with("POST /kill") {
                    kill.store(true, Ordering::Relaxed);
                    eprintln!("gateway: kill switch set over HTTP: entries stop");
                    (200, "{\"kill_switch\":true}".to_string())
                } else if line.starts_with("POST /resume") {
                    kill.store(false, Ordering::Relaxed);
                    eprintln!("gateway: kill switch cleared over HTTP");
                    (200, "{\"kill_switch\":false}".to_string())
                } else if line.starts_with("POST /stop") {
                    stop.store(true, Ordering::Relaxed);
                    (200, "{\"stopping\":true}".to_string())
                } else if line.starts_with("GET /status") {
                    (200, status.lock().map(|s| s.clone()).unwrap_or_default())
                } else {
                    (404, "{\"error\":\"POST /kill, POST /resume, POST /stop or GET /status\"}".to_string())
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    if code == 200 { "OK" } else { "Not Found" },
                    body.len()
                );
            }
        })
        .expect("spawn the control thread");
    Ok(())
}
