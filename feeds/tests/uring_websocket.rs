//! The io_uring WebSocket client against a raw RFC 6455 peer on loopback: a real socket, a
//! real upgrade, and frames written byte for byte the way a test wants them (cut at odd
//! sizes, fragmented, oversized, pings by the thousand). Every case runs on both receive
//! paths: multishot into provided buffers, and plain receives.

use flowcore_feeds::transport::uring::{probe, ConnId, UringConfig, UringDriver, UringEvent};
use flowcore_feeds::transport::ws_client::WsError;
use flowcore_feeds::transport::ws_frame::{
    close_payload, encode_frame, Opcode, WsEvent, WsFrameDecoder, WsProtocolError,
};
use flowcore_feeds::transport::ws_handshake::upgrade_answer;
use flowcore_feeds::transport::ws_session::SessionError;
use flowcore_feeds::transport::TransportError;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the client sent after the upgrade, as the peer decoded it.
#[derive(Debug, Default)]
struct Heard {
    pongs: Vec<Vec<u8>>,
    closes: Vec<Option<u16>>,
    texts: Vec<Vec<u8>>,
}

/// A peer that upgrades one connection and then runs `script` on the socket.
fn peer(script: impl FnOnce(&mut TcpStream) + Send + 'static) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/stream", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_nodelay(true).unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).unwrap();
            request.push(byte[0]);
        }
        socket
            .write_all(&upgrade_answer(&request).unwrap())
            .unwrap();
        script(&mut socket);
    });
    (url, handle)
}

/// Reads the client's frames until `done` says so or a second passes quietly.
fn listen(socket: &mut TcpStream, done: impl Fn(&Heard) -> bool) -> Heard {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut decoder = WsFrameDecoder::server(1 << 20);
    let mut heard = Heard::default();
    let mut buf = vec![0u8; 65536];
    let mut quiet_since = Instant::now();
    while !done(&heard) && quiet_since.elapsed() < Duration::from_secs(5) {
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                quiet_since = Instant::now();
                decoder
                    .feed(&buf[..n], &mut |ev| match ev {
                        WsEvent::Pong(p) => heard.pongs.push(p.to_vec()),
                        WsEvent::Close { code, .. } => heard.closes.push(code),
                        WsEvent::Message { payload, .. } => heard.texts.push(payload.to_vec()),
                        WsEvent::Ping(_) => {}
                    })
                    .expect("the client's frames follow the RFC");
            }
            Err(_) => {}
        }
    }
    heard
}

fn frame(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    encode_frame(&mut f, opcode, fin, payload, None);
    f
}

/// Writes `bytes` in pieces of the given sizes, each its own TCP segment.
fn write_in_pieces(socket: &mut TcpStream, bytes: &[u8], sizes: &[usize]) {
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = sizes[i % sizes.len()].min(bytes.len() - at);
        socket.write_all(&bytes[at..at + n]).unwrap();
        socket.flush().unwrap();
        at += n;
        i += 1;
        if i % 64 == 0 {
            // Let some pieces arrive alone rather than coalesced.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// What the client saw of one connection.
#[derive(Debug)]
struct Seen {
    opened: bool,
    messages: Vec<Vec<u8>>,
    closed: Option<Result<(), TransportError>>,
}

/// Polls `driver` until `id` closes (or 20 s pass); `on_open` runs once at the upgrade.
fn drive(driver: &mut UringDriver, id: ConnId, mut on_open: impl FnMut(&mut UringDriver)) -> Seen {
    let mut seen = Seen {
        opened: false,
        messages: Vec::new(),
        closed: None,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut just_opened = false;
    while seen.closed.is_none() && Instant::now() < deadline {
        driver
            .poll(&mut |conn, event| {
                assert_eq!(conn, id);
                match event {
                    UringEvent::Open => {
                        seen.opened = true;
                        just_opened = true;
                    }
                    UringEvent::Message(m) => seen.messages.push(m.to_vec()),
                    UringEvent::Closed(result) => seen.closed = Some(result),
                }
            })
            .unwrap();
        if std::mem::take(&mut just_opened) {
            on_open(driver);
        }
        std::thread::yield_now();
    }
    seen
}

fn configs() -> Vec<(&'static str, UringConfig)> {
    if let Err(e) = probe() {
        eprintln!("SKIPPED: io_uring unavailable here: {e}");
        return Vec::new();
    }
    vec![
        (
            "multishot",
            UringConfig {
                // Small buffers, so that frames and big messages cross many of them.
                buffers: 64,
                buffer_size: 4096,
                ..UringConfig::default()
            },
        ),
        (
            "plain",
            UringConfig {
                multishot: false,
                buffer_size: 4096,
                ..UringConfig::default()
            },
        ),
    ]
}

fn text_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i + seed as usize) % 26) as u8)
        .collect()
}

#[test]
fn fragmented_frames_at_odd_sizes_and_a_5_mb_message_arrive_whole() {
    for (path, config) in configs() {
        let small = text_of(1000, 1);
        let big = text_of(5 << 20, 2);
        let fragmented = text_of(300_001, 3);
        let (wanted, script_wanted) = (
            vec![
                small.clone(),
                fragmented.clone(),
                big.clone(),
                small.clone(),
            ],
            (small, fragmented, big),
        );
        let (url, peer) = peer(move |socket| {
            let (small, fragmented, big) = script_wanted;
            let mut wire = frame(Opcode::Text, true, &small);
            // Fragments of odd sizes, with a ping between two of them.
            let mut at = 0;
            for (i, size) in [1usize, 7, 4093, 65_537, 13].iter().cycle().enumerate() {
                let end = (at + size).min(fragmented.len());
                let opcode = if i == 0 {
                    Opcode::Text
                } else {
                    Opcode::Continuation
                };
                wire.extend(frame(opcode, end == fragmented.len(), &fragmented[at..end]));
                if i == 2 {
                    wire.extend(frame(Opcode::Ping, true, b"mid"));
                }
                at = end;
                if at == fragmented.len() {
                    break;
                }
            }
            wire.extend(frame(Opcode::Text, true, &big));
            wire.extend(frame(Opcode::Text, true, &small));
            write_in_pieces(socket, &wire, &[1, 3, 4097, 17, 65_539, 2]);
            wire.clear();
            wire.extend(frame(Opcode::Close, true, &close_payload(1000, "done")));
            socket.write_all(&wire).unwrap();
            let heard = listen(socket, |h| !h.closes.is_empty());
            assert_eq!(heard.closes, vec![Some(1000)], "the close is echoed");
            assert_eq!(heard.pongs, vec![b"mid".to_vec()]);
        });
        let mut driver = UringDriver::new(config).unwrap();
        let id = driver.connect(&url, None).unwrap();
        let seen = drive(&mut driver, id, |_| {});
        assert!(seen.opened, "{path}");
        assert!(
            matches!(seen.closed, Some(Ok(()))),
            "{path}: {:?}",
            seen.closed
        );
        peer.join().unwrap();
        assert_eq!(seen.messages.len(), wanted.len(), "{path}");
        for (i, (got, want)) in seen.messages.iter().zip(&wanted).enumerate() {
            assert!(
                got == want,
                "{path}: message {i} differs ({} vs {} bytes)",
                got.len(),
                want.len()
            );
        }
        let c = driver.counters();
        assert_eq!(c.messages, 4, "{path}");
        // The fragments were joined (a copy), the big frame crossed buffers (a copy).
        assert!(
            c.copied_bytes as usize >= 300_001 + (5 << 20),
            "{path}: {c:?}"
        );
        assert_eq!((c.pings, c.pongs), (1, 1), "{path}");
    }
}

#[test]
fn an_oversized_message_is_refused_with_a_clear_error() {
    for (path, config) in configs() {
        let config = UringConfig {
            max_message: 1 << 20,
            ..config
        };
        let (url, peer) = peer(|socket| {
            let _ = socket.write_all(&frame(Opcode::Binary, true, &vec![0u8; 2 << 20]));
        });
        let mut driver = UringDriver::new(config).unwrap();
        let id = driver.connect(&url, None).unwrap();
        let seen = drive(&mut driver, id, |_| {});
        peer.join().unwrap();
        assert!(seen.messages.is_empty(), "{path}");
        match seen.closed {
            Some(Err(TransportError::Session(SessionError::Ws(WsError::Protocol(
                WsProtocolError::MessageTooLarge { size, max },
            ))))) => assert_eq!((size, max), (2 << 20, 1 << 20), "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn a_ping_storm_is_answered_with_the_latest_ping_only() {
    for (path, config) in configs() {
        let (url, peer) = peer(|socket| {
            let mut wire = Vec::new();
            for i in 0..2000u32 {
                wire.extend(frame(Opcode::Ping, true, &i.to_be_bytes()));
            }
            wire.extend(frame(Opcode::Text, true, b"after the storm"));
            socket.write_all(&wire).unwrap();
            let last = 1999u32.to_be_bytes().to_vec();
            let heard = listen(socket, |h| h.pongs.last() == Some(&last));
            assert_eq!(
                heard.pongs.last(),
                Some(&last),
                "the latest ping is answered"
            );
            // A storm written at once reaches the client in a few reads: a few pongs at most,
            // where one per ping would be 2000.
            assert!(heard.pongs.len() <= 20, "{} pongs", heard.pongs.len());
            socket
                .write_all(&frame(Opcode::Close, true, &close_payload(1000, "")))
                .unwrap();
            listen(socket, |h| !h.closes.is_empty());
        });
        let mut driver = UringDriver::new(config).unwrap();
        let id = driver.connect(&url, None).unwrap();
        let seen = drive(&mut driver, id, |_| {});
        peer.join().unwrap();
        assert_eq!(seen.messages, vec![b"after the storm".to_vec()], "{path}");
        assert!(
            matches!(seen.closed, Some(Ok(()))),
            "{path}: {:?}",
            seen.closed
        );
        let c = driver.counters();
        assert_eq!(c.pings, 2000, "{path}");
        assert!(c.pongs <= 20, "{path}: {c:?}");
    }
}

#[test]
fn our_close_is_a_handshake_and_a_subscribe_goes_out_masked() {
    for (path, config) in configs() {
        let (url, peer) = peer(|socket| {
            let heard = listen(socket, |h| !h.texts.is_empty() && !h.closes.is_empty());
            assert_eq!(
                heard.texts,
                vec![br#"{"method":"SUBSCRIBE","id":1}"#.to_vec()]
            );
            assert_eq!(heard.closes, vec![Some(1000)]);
            // Messages in flight before our echo still reach the client.
            socket
                .write_all(&frame(Opcode::Text, true, b"late"))
                .unwrap();
            socket
                .write_all(&frame(Opcode::Close, true, &close_payload(1000, "")))
                .unwrap();
        });
        let mut driver = UringDriver::new(config).unwrap();
        let id = driver.connect(&url, None).unwrap();
        let seen = drive(&mut driver, id, |driver| {
            driver.send_text(id, r#"{"method":"SUBSCRIBE","id":1}"#);
            driver.close(id);
        });
        peer.join().unwrap();
        assert_eq!(seen.messages, vec![b"late".to_vec()], "{path}");
        assert!(
            matches!(seen.closed, Some(Ok(()))),
            "{path}: {:?}",
            seen.closed
        );
        assert_eq!(driver.connections(), 0);
    }
}

#[test]
fn bad_input_ends_the_connection_with_its_reason() {
    for (path, config) in configs() {
        // Invalid UTF-8 in a text frame, then a peer that vanishes without a close frame.
        let (url, bad_utf8) = peer(|socket| {
            socket
                .write_all(&frame(Opcode::Text, true, &[b'{', 0xC3, 0x28]))
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
        let mut driver = UringDriver::new(config.clone()).unwrap();
        let id = driver.connect(&url, None).unwrap();
        let seen = drive(&mut driver, id, |_| {});
        bad_utf8.join().unwrap();
        assert!(
            matches!(
                seen.closed,
                Some(Err(TransportError::Session(SessionError::Ws(
                    WsError::Protocol(WsProtocolError::InvalidUtf8)
                ))))
            ),
            "{path}: {:?}",
            seen.closed
        );
        let (url, vanishing) = peer(|socket| {
            socket
                .write_all(&frame(Opcode::Text, true, b"one"))
                .unwrap();
        });
        let id = driver.connect(&url, None).unwrap();
        let seen = drive(&mut driver, id, |_| {});
        vanishing.join().unwrap();
        assert_eq!(seen.messages, vec![b"one".to_vec()], "{path}");
        assert!(
            matches!(seen.closed, Some(Err(TransportError::Eof))),
            "{path}: {:?}",
            seen.closed
        );
        // Nobody listening: the connect itself fails, as an error, not a panic.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let id = driver
            .connect(&format!("ws://127.0.0.1:{port}/"), None)
            .unwrap();
        let seen = drive(&mut driver, id, |_| {});
        assert!(!seen.opened);
        assert!(
            matches!(seen.closed, Some(Err(TransportError::Io(_)))),
            "{path}: {:?}",
            seen.closed
        );
    }
}
