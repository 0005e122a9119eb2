//! A counting allocator, counting only on the feed thread under test, proves the io_uring
//! receive path (completion -> TLS -> frames -> Binance parser) allocates nothing per
//! message once warmed up: recorded spot BTC messages, written by a peer on loopback in odd
//! slices so that frames and TLS records straddle receive buffers.
//!
//! Over wss, rustls 0.23 itself allocates one `Vec` per TLS record for the plaintext it lends
//! out (see `flowcore_feeds::transport::tls_client`): the test holds the count to at most
//! that, so anything of ours that allocates still fails it.

use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::transport::net::{client_config, server_config};
use flowcore_feeds::transport::uring::{probe, UringConfig, UringDriver, UringEvent};
use flowcore_feeds::transport::ws_frame::{encode_frame, Opcode};
use flowcore_feeds::transport::ws_handshake::upgrade_answer;
use flowcore_feeds::transport::TlsSettings;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};

struct CountingHere;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the thread being measured; the peer's allocations do not count.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingHere {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingHere = CountingHere;

/// The recorded spot stream messages as server frames.
fn frames() -> (Vec<u8>, usize) {
    let mut wire = Vec::new();
    let mut n = 0;
    for line in flowcore_tests::lines("spot_btcusdt_20240808.txt.gz")
        .into_iter()
        .take(60_000)
    {
        let (_, json) = line.split_once(' ').unwrap();
        if json.starts_with(r#"{"lastUpdateId""#) {
            // A REST snapshot in the recording: it never comes over the WebSocket.
            continue;
        }
        encode_frame(&mut wire, Opcode::Text, true, json.as_bytes(), None);
        n += 1;
    }
    (wire, n)
}

/// Upgrades one connection (over TLS when `tls` is given) and writes `wire` in odd slices.
fn peer(
    listener: TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    wire: Vec<u8>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut stream: Box<dyn ReadWrite> = match tls {
            None => Box::new(tcp),
            Some(config) => Box::new(rustls::StreamOwned::new(
                rustls::ServerConnection::new(config).unwrap(),
                tcp,
            )),
        };
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            request.push(byte[0]);
        }
        stream
            .write_all(&upgrade_answer(&request).unwrap())
            .unwrap();
        for (i, piece) in wire.chunks(7919).enumerate() {
            stream.write_all(piece).unwrap();
            stream.flush().unwrap();
            if i % 16 == 0 {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
        let mut close = Vec::new();
        encode_frame(
            &mut close,
            Opcode::Close,
            true,
            &1000u16.to_be_bytes(),
            None,
        );
        stream.write_all(&close).unwrap();
        stream.flush().unwrap();
        // Wait for the client's echo (or its close) before dropping the socket.
        let mut sink = [0u8; 256];
        let _ = stream.read(&mut sink);
    })
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// Receives everything, counting allocations after the first fifth of the messages.
/// Returns (messages, allocations while counting, TLS records while counting).
fn receive(
    url: &str,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    total: usize,
) -> (usize, u64, u64) {
    let table = InstrumentTable::binance_defaults();
    let mut parser = VenueParser::new(Venue::BinanceSpot, table);
    let mut driver = UringDriver::new(UringConfig::default()).unwrap();
    let id = driver.connect(url, tls).unwrap();
    let (mut messages, mut events, mut closed) = (0usize, 0u64, false);
    let warm = total / 5;
    let mut records_at_start = 0;
    let mut counting = false;
    while !closed {
        if !counting && messages >= warm {
            counting = true;
            records_at_start = driver.counters().tls_records;
            COUNTING.with(|c| c.set(true));
        }
        driver
            .poll(&mut |conn, event| {
                assert_eq!(conn, id);
                match event {
                    UringEvent::Message(m) => {
                        messages += 1;
                        parser
                            .parse(0, m, None, &mut |_| events += 1)
                            .expect("recorded messages parse");
                        if messages == total {
                            // The steady state ends here: the close handshake that
                            // follows may allocate (its frame, once per connection).
                            COUNTING.with(|c| c.set(false));
                        }
                    }
                    UringEvent::Closed(result) => {
                        result.expect("a clean close");
                        closed = true;
                    }
                    UringEvent::Open => {}
                }
            })
            .unwrap();
    }
    COUNTING.with(|c| c.set(false));
    assert!(events > messages as u64, "the messages carried events");
    let records = driver.counters().tls_records - records_at_start;
    (messages, ALLOCATIONS.swap(0, Ordering::Relaxed), records)
}

/// The allocation counter is global: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn over_ws_the_io_uring_receive_path_allocates_nothing_per_message() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = probe() {
        eprintln!("SKIPPED: io_uring unavailable here: {e}");
        return;
    }
    let (wire, total) = frames();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/stream", listener.local_addr().unwrap());
    let peer = peer(listener, None, wire);
    let (messages, allocations, _) = receive(&url, None, total);
    peer.join().unwrap();
    assert_eq!(messages, total);
    assert_eq!(
        allocations,
        0,
        "allocations while receiving {} messages",
        total - total / 5
    );
}

#[test]
fn over_wss_only_rustls_allocates_one_buffer_per_record() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = probe() {
        eprintln!("SKIPPED: io_uring unavailable here: {e}");
        return;
    }
    let dir = flowcore_tests::temp_dir("zero-alloc-tls");
    let (ca, cert, key) = flowcore_tests::local_ca(&dir);
    let (wire, total) = frames();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "wss://localhost:{}/stream",
        listener.local_addr().unwrap().port()
    );
    let peer = peer(listener, Some(server_config(&cert, &key).unwrap()), wire);
    let client = client_config(&TlsSettings {
        extra_ca_file: Some(ca),
    })
    .unwrap();
    let (messages, allocations, records) = receive(&url, Some(client), total);
    peer.join().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(messages, total);
    // About one record per 7919-byte slice written (fewer when the peer coalesces).
    assert!(records > 500, "{records} records");
    assert!(
        allocations <= records,
        "{allocations} allocations for {records} TLS records: more than rustls's one per record"
    );
    eprintln!("wss: {allocations} allocations for {records} TLS records ({messages} messages)");
}
