//! FreqTrade's message websocket (`/api/v1/message/ws`, FREQTRADE.md "Events back from
//! FreqTrade"): fills and cancels as they happen, so an exit is known closed the moment it
//! fills and a trade FreqTrade closed itself (stop-loss, ROI, a human) the moment it closes,
//! instead of on the next `/trade/{id}` poll or `/status` reconciliation.
//!
//! Blocking handshake, then a non-blocking socket that the executor thread drains between
//! orders. FreqTrade sends no keepalive pings and no answer to the subscription; a closed
//! or broken socket is an error the executor counts, logs and reconnects after.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

/// The topics subscribed to. One unknown topic would void the whole subscription
/// (silently), so these are exactly FreqTrade's `RPCMessageType` names.
const TOPICS: &str = r#"{"type":"subscribe","data":["entry","entry_fill","entry_cancel","exit","exit_fill","exit_cancel","warning","exception"]}"#;

/// What became of a trade, as FreqTrade announced it.
#[derive(Debug, Clone, PartialEq)]
pub enum TradeEvent {
    /// An entry order filled: the position's size and price.
    EntryFill {
        /// FreqTrade's trade id.
        trade_id: u64,
        /// Base-currency amount.
        amount: f64,
        /// Average entry price.
        open_rate: f64,
    },
    /// An entry order was cancelled (FreqTrade deletes a trade that never filled).
    EntryCancel {
        /// FreqTrade's trade id.
        trade_id: u64,
    },
    /// An exit filled; `final_exit` when the trade is closed by it.
    ExitFill {
        /// FreqTrade's trade id.
        trade_id: u64,
        /// The trade's realised profit, stake currency.
        profit: f64,
        /// Whether this exit closed the trade (false for a partial exit).
        final_exit: bool,
    },
    /// An exit order was cancelled: the trade stays open.
    ExitCancel {
        /// FreqTrade's trade id.
        trade_id: u64,
    },
}

/// Why the event socket is not usable.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// TCP connect or socket set-up.
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    /// FreqTrade answered the upgrade with an HTTP status (403: a bad or expired token).
    #[error("handshake refused with HTTP {0}")]
    Refused(u16),
    /// Any other handshake failure.
    #[error("handshake: {0}")]
    Handshake(String),
    /// The socket closed or broke after the handshake.
    #[error("connection lost: {0}")]
    Lost(String),
}

/// The subscribed socket.
pub struct FreqtradeEvents {
    socket: WebSocket<TcpStream>,
}

impl std::fmt::Debug for FreqtradeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreqtradeEvents").finish_non_exhaustive()
    }
}

impl FreqtradeEvents {
    /// Connects to `addr` (FreqTrade's API server), authenticates with `token` (an access
    /// JWT or the configured `ws_token`) and subscribes.
    ///
    /// # Errors
    /// See [`EventsError`].
    pub fn connect(addr: SocketAddr, token: &str, timeout: Duration) -> Result<Self, EventsError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let url = format!("ws://{addr}/api/v1/message/ws?token={token}");
        let (mut socket, _) = tungstenite::client::client(url.as_str(), stream).map_err(|e| {
            match e {
                HandshakeError::Failure(tungstenite::Error::Http(r)) => {
                    EventsError::Refused(r.status().as_u16())
                }
                // The URL carries the token: never in an error text.
                HandshakeError::Failure(e) => EventsError::Handshake(e.to_string()),
                HandshakeError::Interrupted(_) => EventsError::Handshake("timed out".into()),
            }
        })?;
        socket
            .send(Message::text(TOPICS))
            .map_err(|e| EventsError::Lost(e.to_string()))?;
        socket.get_mut().set_nonblocking(true)?;
        Ok(Self { socket })
    }

    /// Everything received since the last call, in order, each message counted in
    /// `received` by FreqTrade's `type` (`malformed` for one that did not parse); `warning`
    /// and `exception` messages are logged. Never blocks.
    ///
    /// # Errors
    /// [`EventsError::Lost`]: the socket is dead (events up to it are in `out`).
    pub fn poll(
        &mut self,
        out: &mut Vec<TradeEvent>,
        received: &mut BTreeMap<String, u64>,
    ) -> Result<(), EventsError> {
        loop {
            match self.socket.read() {
                Ok(Message::Text(t)) => {
                    if let Some(e) = event(t.as_bytes(), received) {
                        out.push(e);
                    }
                }
                Ok(Message::Close(c)) => {
                    // Sends the queued close reply; the socket is done either way.
                    let _ = self.socket.flush();
                    return Err(EventsError::Lost(format!(
                        "closed by FreqTrade ({})",
                        c.map_or_else(|| "no reason".into(), |c| c.to_string())
                    )));
                }
                // Pings are answered inside `read`; binary frames are not FreqTrade's.
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    return Ok(())
                }
                Err(e) => return Err(EventsError::Lost(e.to_string())),
            }
        }
    }
}

fn count(received: &mut BTreeMap<String, u64>, kind: &str) {
    match received.get_mut(kind) {
        Some(n) => *n += 1,
        None => {
            received.insert(kind.to_string(), 1);
        }
    }
}

/// One message: counted by its `type`, and the event it is, if it is one.
fn event(text: &[u8], received: &mut BTreeMap<String, u64>) -> Option<TradeEvent> {
    let Ok(j) = serde_json::from_slice::<Json>(text) else {
        count(received, "malformed");
        eprintln!(
            "gateway: freqtrade events: a message that is not JSON ({} bytes), ignored",
            text.len()
        );
        return None;
    };
    let kind = j.get("type").and_then(Json::as_str).unwrap_or("untyped");
    count(received, kind);
    let num = |k: &str| j.get(k).and_then(Json::as_f64);
    let trade_id = j.get("trade_id").and_then(Json::as_u64);
    let event = match (kind, trade_id) {
        ("entry_fill", Some(trade_id)) => TradeEvent::EntryFill {
            trade_id,
            amount: num("amount").unwrap_or(0.0),
            open_rate: num("open_rate").unwrap_or(0.0),
        },
        ("entry_cancel", Some(trade_id)) => TradeEvent::EntryCancel { trade_id },
        ("exit_fill", Some(trade_id)) => TradeEvent::ExitFill {
            trade_id,
            // The trade's whole realised profit, not only this fill's share.
            profit: num("cumulative_profit")
                .or_else(|| num("profit_amount"))
                .unwrap_or(0.0),
            final_exit: j.get("is_final_exit").and_then(Json::as_bool) != Some(false),
        },
        ("exit_cancel", Some(trade_id)) => TradeEvent::ExitCancel { trade_id },
        ("warning" | "exception", _) => {
            let status = j.get("status").and_then(Json::as_str).unwrap_or("");
            eprintln!("gateway: freqtrade {kind}: {status}");
            return None;
        }
        // `entry` / `exit` (orders placed) and anything newer: counted only.
        _ => return None,
    };
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A websocket server that checks the subscription, sends `frames` and closes.
    fn serve(frames: Vec<&'static str>) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut ws = tungstenite::accept(s).unwrap();
            let sub = ws.read().unwrap().into_text().unwrap().to_string();
            for f in frames {
                ws.send(Message::text(f)).unwrap();
            }
            ws.close(None).unwrap();
            let _ = ws.flush();
            // Let the client read the close before the socket goes.
            while ws.read().is_ok() {}
            sub
        });
        (addr, h)
    }

    #[test]
    fn fills_and_cancels_become_events_and_a_close_is_an_error() {
        let (addr, h) = serve(vec![
            r#"{"type":"entry","trade_id":1,"enter_tag":"7"}"#,
            r#"{"type":"entry_fill","trade_id":1,"enter_tag":"7","amount":0.5,"open_rate":60000.1}"#,
            r#"{"type":"exit_fill","trade_id":1,"profit_amount":1.5,"cumulative_profit":2.5,"is_final_exit":true}"#,
            r#"{"type":"exit_fill","trade_id":2,"profit_amount":1.0,"is_final_exit":false}"#,
            r#"{"type":"exit_cancel","trade_id":3}"#,
            r#"{"type":"entry_cancel","trade_id":4}"#,
            "not json",
        ]);
        let mut ev = FreqtradeEvents::connect(addr, "t", Duration::from_secs(5)).unwrap();
        let (mut out, mut received) = (Vec::new(), BTreeMap::new());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let end = loop {
            match ev.poll(&mut out, &mut received) {
                Ok(()) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                r => break r,
            }
        };
        assert!(matches!(end, Err(EventsError::Lost(_))), "{end:?}");
        assert_eq!(
            out,
            vec![
                TradeEvent::EntryFill {
                    trade_id: 1,
                    amount: 0.5,
                    open_rate: 60000.1
                },
                TradeEvent::ExitFill {
                    trade_id: 1,
                    profit: 2.5,
                    final_exit: true
                },
                TradeEvent::ExitFill {
                    trade_id: 2,
                    profit: 1.0,
                    final_exit: false
                },
                TradeEvent::ExitCancel { trade_id: 3 },
                TradeEvent::EntryCancel { trade_id: 4 },
            ]
        );
        assert_eq!(received.get("entry"), Some(&1));
        assert_eq!(received.get("malformed"), Some(&1));
        let sub: Json = serde_json::from_str(&h.join().unwrap()).unwrap();
        assert_eq!(sub["type"], "subscribe");
        assert!(sub["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "exit_fill"));
    }

    #[test]
    fn a_refused_upgrade_names_its_status() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
        });
        let e = FreqtradeEvents::connect(addr, "bad", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, EventsError::Refused(403)), "{e:?}");
    }
}
