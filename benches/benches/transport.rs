//! Feed latency, wire to core thread: the io_uring transport against tokio-tungstenite, same
//! server, same TLS setting, same parser and ring, in the same run.
//!
//! A server thread (tokio-tungstenite over rustls, like the simulator) sends Binance trade
//! messages at a fixed rate, each carrying its send time (CLOCK_MONOTONIC ns, in the trade
//! id field so that it survives the real parser). The feed thread under test receives and
//! parses with the Binance spot dialect, and records `now - send time` as the parser hands
//! over each trade event. Reported per transport: p50/p90/p99/p99.9/max with counts, then a
//! flood (every frame written at once) for messages per second through one feed thread.
//!
//! Rows, and whether each side spins:
//! - `io_uring spin`: the feed thread busy-polls its ring with deferred task work
//!   (`DEFER_TASKRUN`: each batch of arrivals needs an `io_uring_enter` to complete).
//! - `io_uring spin sig`: the same with the kernel's signalled task work (completions
//!   appear without a syscall; the kernel interrupts the spinning thread instead).
//! - `io_uring park`: the feed thread waits in `io_uring_enter` for a completion.
//!
//! io_uring rows also report their `io_uring_enter` calls per message: the receive path's
//! syscalls (issue 23 item 7).
//! - `tokio`: tokio's current-thread runtime, parked in epoll when idle (tokio cannot spin).
//!
//! Placement: the feed thread alone on cpu 0, the server on cpu 1. The hop to the core
//! thread (an rtrb push and pop, the same for every row) is left out: it would need a third
//! core, and a spinning feed thread sharing a core with it makes every message wait for a
//! scheduler tick (about 4 ms, measured here), which says nothing about the transport.
//!
//! `cargo bench -p flowcore-benches --bench transport` for the full run; under `cargo test`
//! a short smoke pass checks that every row delivers every message.

use flowcore_benches::{full_run, mono_ns};
use flowcore_core::event::EventKind;
use flowcore_core::event::MarketEvent;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::transport::net::{accept, client_config, server_config};
use flowcore_feeds::transport::tungstenite::WsTransport;
use flowcore_feeds::transport::uring::{TaskWork, UringConfig, UringDriver, UringEvent};
use flowcore_feeds::transport::ws_frame::{encode_frame, Opcode};
use flowcore_feeds::transport::{TlsSettings, Transport};
use flowcore_runtime::pin::pin_current_thread;
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A combined-stream trade message whose trade id is its send time.
fn trade_message(sent_ns: u64) -> String {
    format!(
        r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1723075200000,"s":"BTCUSDT","t":{sent_ns},"p":"57000.10","q":"0.00100","T":1723075200000,"m":true,"M":true}}}}"#
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    UringSpin,
    UringSpinSignalled,
    UringPark,
    Tokio,
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::UringSpin => "io_uring spin",
            Row::UringSpinSignalled => "io_uring spin sig",
            Row::UringPark => "io_uring park",
            Row::Tokio => "tokio (parks)",
        }
    }
}

/// Serves one connection: `count` messages at `rate` per second (0: as fast as it can).
fn start_server(
    tls: Option<(PathBuf, PathBuf)>,
    count: u64,
    rate: u64,
) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://127.0.0.1:{port}/stream?streams=btcusdt@trade");
    let handle = std::thread::spawn(move || {
        pin_current_thread(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let config = tls.map(|(cert, key)| server_config(&cert, &key).unwrap());
            let (tcp, _) = listener.accept().await.unwrap();
            let stream = accept(tcp, config.as_ref()).await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            if rate == 0 {
                // Flood: every frame encoded up front and written at once, underneath
                // tungstenite, so that the server is not what limits the rate.
                use tokio::io::AsyncWriteExt;
                let mut blob = Vec::new();
                for _ in 0..count {
                    let text = trade_message(mono_ns());
                    encode_frame(&mut blob, Opcode::Text, true, text.as_bytes(), None);
                }
                ws.get_mut().write_all(&blob).await.unwrap();
                ws.get_mut().flush().await.unwrap();
            }
            // Paced: message i is due at i / rate seconds; sleep until just before, then spin.
            let start = Instant::now();
            let period_ns = 1_000_000_000u64.checked_div(rate).unwrap_or(0);
            for i in (0..count).filter(|_| rate > 0) {
                let due = start + Duration::from_nanos(i * period_ns);
                loop {
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    if due - now > Duration::from_micros(150) {
                        std::thread::sleep(due - now - Duration::from_micros(100));
                    } else {
                        std::hint::spin_loop();
                    }
                }
                ws.send(Message::text(trade_message(mono_ns())))
                    .await
                    .unwrap();
            }
            let _ = ws.close(None).await;
            // Let the close handshake finish.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                use futures_util::StreamExt;
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        });
    });
    (url, handle)
}

/// What one row measured.
struct Measured {
    latency: Histogram<u64>,
    received: u64,
    elapsed: Duration,
    /// io_uring enters and waits (0 for tokio, which is not counted).
    syscalls: u64,
}

/// The feed thread of a row: receive, parse, and time each trade event as the parser
/// hands it over; returns (messages, latency histogram, first-to-last event time).
fn feed_thread(row: Row, url: String, tls: TlsSettings) -> Measured {
    let table = InstrumentTable::binance_defaults();
    let mut parser = VenueParser::new(Venue::BinanceSpot, table);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut received = 0u64;
    let (mut first, mut last) = (None, Instant::now());
    let mut syscalls = 0;
    let mut on_message = |bytes: &[u8]| {
        received += 1;
        let _ = parser.parse(0, bytes, None, &mut |ev: MarketEvent| {
            if let EventKind::Trade(t) = ev.kind {
                latency.saturating_record(mono_ns().saturating_sub(t.trade_id).max(1));
                last = Instant::now();
                first.get_or_insert(last);
            }
        });
    };
    match row {
        Row::Tokio => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut t = WsTransport::connect(&url, &tls).await.unwrap();
                while let Some(m) = t.next_message().await.unwrap() {
                    on_message(m);
                }
            });
        }
        Row::UringSpin | Row::UringSpinSignalled | Row::UringPark => {
            let config = client_config(&tls).unwrap();
            let task_work = if row == Row::UringSpinSignalled {
                TaskWork::Signalled
            } else {
                TaskWork::Deferred
            };
            let mut driver = UringDriver::new(UringConfig {
                task_work,
                ..UringConfig::default()
            })
            .unwrap();
            let id = driver.connect(&url, Some(config)).unwrap();
            let mut closed = false;
            while !closed {
                let progressed = driver
                    .poll(&mut |conn, event| {
                        assert_eq!(conn, id);
                        match event {
                            UringEvent::Message(m) => on_message(m),
                            UringEvent::Closed(result) => {
                                result.expect("a clean close");
                                closed = true;
                            }
                            UringEvent::Open => {}
                        }
                    })
                    .unwrap();
                if !progressed && row == Row::UringPark {
                    driver.wait(Duration::from_millis(10)).unwrap();
                }
            }
            let c = driver.counters();
            syscalls = c.enters + c.waits;
        }
    }
    Measured {
        latency,
        received,
        elapsed: first.map_or(Duration::ZERO, |f| last - f),
        syscalls,
    }
}

fn measure(row: Row, tls: Option<&(PathBuf, PathBuf)>, count: u64, rate: u64) -> Measured {
    let (url, server) = start_server(tls.cloned(), count, rate);
    let settings = TlsSettings {
        extra_ca_file: tls.map(|(cert, _)| cert.with_file_name("ca.pem")),
    };
    let feed = std::thread::spawn(move || {
        pin_current_thread(0);
        feed_thread(row, url, settings)
    });
    let measured = feed.join().unwrap();
    server.join().unwrap();
    measured
}

fn report(row: Row, m: &Measured) {
    let h = &m.latency;
    let syscalls = match row {
        Row::Tokio => String::new(),
        _ => format!(
            "  io_uring syscalls {:.3}/msg",
            m.syscalls as f64 / m.received.max(1) as f64
        ),
    };
    println!(
        "{:<17} n={:<7} p50 {:>7.1} us  p90 {:>7.1}  p99 {:>7.1}  p99.9 {:>8.1}  max {:>8.1}{syscalls}",
        row.name(),
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.9) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3,
    );
}

fn main() {
    let full = full_run();
    let (count, rate, flood) = if full {
        (100_000, 20_000, 300_000)
    } else {
        (2_000, 20_000, 5_000)
    };
    let dir = std::env::temp_dir().join(format!("flowcore-bench-transport-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_ca, cert, key) = flowcore_tests::local_ca(&dir);
    let rows = if flowcore_feeds::transport::uring::probe().is_ok() {
        vec![
            Row::UringSpin,
            Row::UringSpinSignalled,
            Row::UringPark,
            Row::Tokio,
        ]
    } else {
        eprintln!("SKIPPED io_uring rows: io_uring unavailable here");
        vec![Row::Tokio]
    };
    for (label, tls) in [("ws", None), ("wss", Some((cert, key)))] {
        println!(
            "\n== {label}: {count} messages at {rate}/s, send -> parsed event on the feed thread"
        );
        let mut p50 = Vec::new();
        for &row in &rows {
            let m = measure(row, tls.as_ref(), count, rate);
            assert_eq!(m.received, count, "{}: every message arrives", row.name());
            assert_eq!(
                m.latency.len(),
                count,
                "{}: every trade reaches the core",
                row.name()
            );
            report(row, &m);
            p50.push((
                row,
                m.latency.value_at_quantile(0.5),
                m.latency.value_at_quantile(0.99),
            ));
        }
        if let Some(&(_, tokio50, tokio99)) = p50.iter().find(|(r, _, _)| *r == Row::Tokio) {
            for &(row, v50, v99) in p50.iter().filter(|(r, _, _)| *r != Row::Tokio) {
                println!(
                    "{:<15} vs tokio: p50 {:.2}x  p99 {:.2}x faster",
                    row.name(),
                    tokio50 as f64 / v50 as f64,
                    tokio99 as f64 / v99 as f64
                );
            }
        }
        println!("-- {label} flood: {flood} messages as fast as the server sends");
        for &row in &rows {
            let m = measure(row, tls.as_ref(), flood, 0);
            assert_eq!(m.received, flood, "{}: every message arrives", row.name());
            println!(
                "{:<15} {:>9.0} msg/s through one feed thread",
                row.name(),
                flood as f64 / m.elapsed.as_secs_f64().max(1e-9)
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
