//! Signal publish -> FreqTrade request on the wire, through the whole gateway.
//!
//! A publisher thread writes signals into a shared-memory bus at a fixed rate, each stamped
//! with its publish time: an entry, then the exit of that position, cycling over
//! [`SYMBOLS`] symbols (the risk engine accepts every one, and holds at most one position,
//! as a live gateway holds a handful rather than thousands). `flowcore_gateways::run` reads them, decides, journals the intent and sends the
//! `forceenter` / `forceexit` request to a loopback HTTP server that answers as FreqTrade
//! does (its own processing is what the figure excludes; tests/tests/gateway_freqtrade.rs
//! drives the real one). Reported, from the gateway's hdrhistogram: publish -> the
//! request's last byte written; from the server: publish -> the whole request received.
//!
//! Baseline in the same run: a conventional bridge, the shape most hand-written ones take:
//! a reader thread polling the bus every millisecond, a `std::sync::mpsc` channel, a
//! serde_json body and a new TCP connection per request.
//!
//! `cargo bench -p flowcore-benches --bench gateway`; under `cargo test` a short smoke pass.

use flowcore_benches::full_run;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_gateways::{GatewayConfig, RunControl};
use flowcore_shm::abi::{action, SignalRecord, SymbolRecord};
use flowcore_shm::publish::instrument_record;
use flowcore_shm::{BusWriter, ReadFrom, RingReader};
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()
}

/// A loopback server answering the routes the gateway calls, as FreqTrade answers them.
/// Records, per entry request, publish (from the `entry_tag`'s signal) -> fully received
/// (an exit names the trade, not the signal).
struct FakeFreqtrade {
    url: String,
    received: Arc<Mutex<Histogram<u64>>>,
    published: Arc<Mutex<std::collections::HashMap<u64, i64>>>,
}

fn answer(path: &str, trade: &mut u64) -> String {
    if path.starts_with("/api/v1/token/") {
        r#"{"access_token":"a","refresh_token":"r"}"#.into()
    } else if path.starts_with("/api/v1/show_config") {
        r#"{"state":"running","trading_mode":"futures","short_allowed":true,"force_entry_enable":true,"stake_currency":"USDT"}"#.into()
    } else if path.starts_with("/api/v1/balance") {
        r#"{"total":10000.0}"#.into()
    } else if path.starts_with("/api/v1/status") || path.starts_with("/api/v1/trades") {
        if path.starts_with("/api/v1/trades") {
            r#"{"trades":[]}"#.into()
        } else {
            "[]".into()
        }
    } else if path.starts_with("/api/v1/forceenter") {
        *trade += 1;
        format!(
            r#"{{"trade_id":{trade},"pair":"BTC/USDT:USDT","is_open":true,"is_short":false,"amount":0.001,"open_rate":60000.0}}"#
        )
    } else if path.starts_with("/api/v1/forceexit") {
        format!(r#"{{"result":"Created exit order for trade {trade}."}}"#)
    } else if let Some(id) = path.strip_prefix("/api/v1/trade/") {
        format!(
            r#"{{"trade_id":{id},"pair":"BTC/USDT:USDT","is_open":false,"close_profit_abs":0.0}}"#
        )
    } else {
        r#"{"detail":"Not Found"}"#.into()
    }
}

impl FakeFreqtrade {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let received = Arc::new(Mutex::new(histogram()));
        let published: Arc<Mutex<std::collections::HashMap<u64, i64>>> = Arc::default();
        let (rx, pb) = (received.clone(), published.clone());
        std::thread::spawn(move || {
            let mut trade = 0u64;
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_nodelay(true);
                let (rx, pb) = (rx.clone(), pb.clone());
                let mut buf = Vec::with_capacity(8192);
                loop {
                    let mut chunk = [0u8; 8192];
                    let Ok(n) = c.read(&mut chunk) else { break };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(head) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head_text = String::from_utf8_lossy(&buf[..head]).to_string();
                    let len = head_text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() < head + 4 + len {
                        continue;
                    }
                    let at = now_ns();
                    let body = String::from_utf8_lossy(&buf[head + 4..head + 4 + len]).to_string();
                    let path = head_text
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_string();
                    buf.drain(..head + 4 + len);
                    if path.ends_with("/forceenter") || path.ends_with("/forceexit") {
                        let tag = serde_json::from_str::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|j| {
                                j["entry_tag"].as_str().and_then(|t| t.parse::<u64>().ok())
                            });
                        if let Some(p) = tag.and_then(|t| pb.lock().unwrap().get(&t).copied()) {
                            let _ = rx.lock().unwrap().record((at - p).max(1) as u64);
                        }
                    }
                    let a = answer(&path, &mut trade);
                    let _ = write!(c, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{a}", a.len());
                }
            }
        });
        Self {
            url,
            received,
            published,
        }
    }
}

struct Plan {
    signals: u64,
    interval: Duration,
}

/// Symbols the signals cycle over.
const SYMBOLS: u64 = 16;

/// Signal `k`'s symbol and whether it enters (even `k`) or exits what `k - 1` opened.
fn signal_plan(k: u64) -> (u32, bool) {
    (((k / 2) % SYMBOLS) as u32, k.is_multiple_of(2))
}

/// Publishes `plan.signals` alternating entries and exits; returns publish times by id.
fn publish(
    bus: &Path,
    plan: &Plan,
    published: &Arc<Mutex<std::collections::HashMap<u64, i64>>>,
    start: Duration,
) {
    let table = InstrumentTable::bundled_defaults();
    let id = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
    let template = instrument_record(0, table.get(id));
    let symbols: Vec<SymbolRecord> = (0..SYMBOLS)
        .map(|k| SymbolRecord {
            symbol_id: k as u32,
            symbol: flowcore_shm::padded(&format!("S{k}USDT")),
            base: flowcore_shm::padded(&format!("S{k}")),
            ..template
        })
        .collect();
    let config = flowcore_tools::manual_signal::signal_bus_config(bus, 1 << 14);
    let mut w = BusWriter::create(&config, &symbols).unwrap();
    std::thread::sleep(start);
    let mut next = Instant::now();
    for k in 0..plan.signals {
        next += plan.interval;
        while Instant::now() < next {
            std::thread::sleep(Duration::from_micros(50));
        }
        let local_ns = now_ns();
        let signal_id = 1_000 + k;
        published.lock().unwrap().insert(signal_id, local_ns);
        let (symbol_id, enter) = signal_plan(k);
        w.signals.publish(&SignalRecord {
            signal_id,
            exch_ns: local_ns,
            local_ns,
            symbol_id,
            strategy_id: 1,
            action: if enter {
                action::ENTER_LONG
            } else {
                action::EXIT
            },
            tier: 1,
            record_version: 1,
            confidence: 1_000_000_000,
            ..bytemuck::Zeroable::zeroed()
        });
    }
    // Keep the bus (and its writer) up until the gateway is done.
    std::thread::sleep(Duration::from_millis(500));
}

fn row(name: &str, h: &Histogram<u64>) -> f64 {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "{name:<52} p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us  max {:>8.1} us  ({} samples)",
        us(0.5),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1e3,
        h.len()
    );
    us(0.99)
}

fn gateway_run(name: &str, plan: &Plan, idle: &str, fsync: &str, pin: bool) -> (f64, u64) {
    let ft = FakeFreqtrade::start();
    let pairs: String = (0..SYMBOLS)
        .map(|k| format!("S{k}USDT = \"S{k}/USDT:USDT\"\n"))
        .collect();
    let dir = std::env::temp_dir().join(format!("flowcore-bench-gw-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bus = PathBuf::from(format!(
        "/dev/shm/flowcore-bench-gw-{}-{name}",
        std::process::id()
    ));
    // The stand-in answers REST only: exits are confirmed by polling `/trade/{id}`.
    let text = format!(
        "buses = [\"{}\"]\njournal = \"{}\"\nexecutor = \"freqtrade\"\nidle = \"{idle}\"\nfsync = \"{fsync}\"\n{}\
         [freqtrade]\nurl = \"{}\"\nusername = \"u\"\nreconcile_s = 3600\nfills = \"poll\"\n[pairs]\n{pairs}\
         [risk]\ncooldown_s = 0\nmax_signal_age_ms = 60000\nmax_open_positions = 100000\n\
         max_notional_total = 1e12\nmax_strategy_risk = 1.0\n",
        bus.display(),
        dir.join("journal").display(),
        if pin { "pin_cpu = 1\nexecutor_cpu = 0\n" } else { "" },
        ft.url
    );
    let config = GatewayConfig::parse(&text, &dir, Some("p".into())).unwrap();
    let published = ft.published.clone();
    let seconds = plan.interval * plan.signals as u32 + Duration::from_millis(1500);
    let (p_bus, p_plan) = (bus.clone(), Plan { ..*plan });
    let publisher = std::thread::spawn(move || {
        publish(&p_bus, &p_plan, &published, Duration::from_millis(300))
    });
    let summary = flowcore_gateways::run(
        config,
        RunControl {
            stop: Arc::new(AtomicBool::new(false)),
            duration: Some(seconds),
        },
    )
    .unwrap();
    publisher.join().unwrap();
    if summary.executor.orders_sent != plan.signals {
        eprint!("{}", summary.render());
    }
    let p99 = row(
        &format!("gateway {name}: publish -> request written"),
        &summary.executor.publish_to_wire,
    );
    row(
        &format!("gateway {name}: gateway read -> executor has it"),
        &summary.executor.handoff,
    );
    row(
        &format!("gateway {name}: gateway read -> request written"),
        &summary.executor.read_to_wire,
    );
    row(
        &format!("gateway {name}: publish -> entry request received"),
        &ft.received.lock().unwrap(),
    );
    let _ = std::fs::remove_dir_all(&bus);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Ordering::Relaxed;
    (p99, summary.executor.orders_sent)
}

/// The conventional bridge: poll every millisecond, mpsc, serde_json, a connection per request.
fn baseline_run(plan: &Plan) -> (f64, u64) {
    let ft = FakeFreqtrade::start();
    let bus = PathBuf::from(format!(
        "/dev/shm/flowcore-bench-gw-{}-baseline",
        std::process::id()
    ));
    let published = ft.published.clone();
    let (p_bus, p_plan) = (bus.clone(), Plan { ..*plan });
    let publisher = std::thread::spawn(move || {
        publish(&p_bus, &p_plan, &published, Duration::from_millis(300))
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut reader = loop {
        if let Ok(r) = RingReader::<SignalRecord>::open(&bus, ReadFrom::Oldest) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (tx, rx) = std::sync::mpsc::channel::<SignalRecord>();
    let addr = ft.url.trim_start_matches("http://").to_string();
    let sender = std::thread::spawn(move || {
        let mut h = histogram();
        for s in rx {
            let (path, body) = if s.action == action::EXIT {
                ("forceexit", serde_json::json!({"tradeid": "1"}))
            } else {
                (
                    "forceenter",
                    serde_json::json!({"pair": format!("S{}/USDT:USDT", s.symbol_id), "side": "long", "stakeamount": 100.0, "entry_tag": s.signal_id.to_string()}),
                )
            };
            let body = body.to_string();
            let mut c = TcpStream::connect(&addr).unwrap();
            let req = format!("POST /api/v1/{path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            c.write_all(req.as_bytes()).unwrap();
            let _ = h.record((now_ns() - s.local_ns).max(1) as u64);
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
        }
        h
    });
    let deadline =
        Instant::now() + plan.interval * plan.signals as u32 + Duration::from_millis(1000);
    let mut n = 0;
    while n < plan.signals && Instant::now() < deadline {
        while let Some(s) = reader.try_read() {
            tx.send(s).unwrap();
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(tx);
    let h = sender.join().unwrap();
    publisher.join().unwrap();
    let _ = std::fs::remove_dir_all(&bus);
    (row("baseline (1 ms poll, mpsc, serde_json, connect per request): publish -> request written", &h), h.len())
}

fn main() {
    let full = full_run();
    let plan = Plan {
        signals: if full { 4_000 } else { 40 },
        interval: Duration::from_millis(if full { 2 } else { 5 }),
    };
    println!(
        "gateway: {} signals at one per {:?}, entry then exit, over {SYMBOLS} symbols",
        plan.signals, plan.interval
    );
    let (spin, sent) = gateway_run("spin-fsync-never", &plan, "spin", "never", true);
    assert_eq!(sent, plan.signals, "every signal became a request");
    let (intent, _) = gateway_run("spin-fsync-intent", &plan, "spin", "intent", true);
    let (yielding, _) = gateway_run("yield-fsync-never", &plan, "yield", "never", false);
    let (base, base_n) = baseline_run(&plan);
    assert_eq!(base_n, plan.signals);
    println!(
        "p99 ratios (baseline / gateway): spin {:.1}x, spin with fsync of intents {:.1}x, yield {:.1}x",
        base / spin,
        base / intent,
        base / yielding
    );
}
