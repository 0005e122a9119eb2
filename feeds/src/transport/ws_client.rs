//! One client WebSocket connection as a sans-IO state machine: the upgrade, then frames,
//! with the control-frame duties of a client (pongs, the close handshake) done inside.
//!
//! ```text
//!                 +--------------------- WsClient ----------------------+
//! received bytes -+-> upgrade answer check -> WsFrameDecoder -> messages -+-> on_message
//!                 |   pings: only the latest is owed a pong              |
//! outgoing bytes <+-- upgrade request, subscribe text, pong, close (masked)
//!                 +-----------------------------------------------------+
//! ```
//!
//! The driver (io_uring, a test) moves bytes: it hands every received chunk to
//! [`WsClient::on_received`], calls [`WsClient::queue_control`] once the batch of chunks it
//! had is processed, and sends [`WsClient::outgoing`] until it is empty.
//!
//! Answering only the latest ping of a batch is deliberate: Binance spot counts pongs
//! towards its 5 messages/s limit, so a ping storm answered one for one would get the
//! connection cut; RFC 6455 5.5.3 allows answering only the most recent ping.

use super::endpoint::Endpoint;
use super::outbox::Outbox;
use super::ws_frame::{
    close_payload, encode_frame, Opcode, WsEvent, WsFrameDecoder, MAX_CONTROL_PAYLOAD,
};
use super::ws_frame::{WsFrameCounters, WsProtocolError};
use super::ws_handshake::{check_upgrade_response, upgrade_request, HandshakeError};

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsState {
    /// The upgrade request is sent or queued; waiting for the 101.
    Upgrading,
    /// Frames flow.
    Open,
    /// We sent a close frame and wait for the server's.
    Closing,
    /// Both close frames have been exchanged (or the server's arrived and ours is
    /// queued): the driver closes the socket once [`WsClient::outgoing`] is empty.
    Closed,
}

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// The upgrade failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The server broke the framing rules (or sent a message over the limit).
    #[error(transparent)]
    Protocol(#[from] WsProtocolError),
    /// Bytes arrived after the close handshake.
    #[error("data after the close handshake")]
    AfterClose,
}

/// Control traffic counted by the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsControlCounters {
    /// Pings received.
    pub pings: u64,
    /// Pongs sent.
    pub pongs_sent: u64,
    /// Pings not answered because a later one arrived in the same batch.
    pub pings_superseded: u64,
    /// Pings we sent to probe a quiet connection.
    pub pings_sent: u64,
}

/// The client side of one WebSocket.
#[derive(Debug)]
pub struct WsClient {
    state: WsState,
    key: String,
    /// The upgrade answer while it is incomplete (the only copy before frames flow).
    head: Vec<u8>,
    decoder: WsFrameDecoder,
    /// Bytes to send.
    out: Outbox,
    /// The payload of the latest unanswered ping, when `pong_owed`: kept between pings (a
    /// control payload is at most 125 bytes) so that answering one allocates nothing.
    pong_payload: Vec<u8>,
    pong_owed: bool,
    /// The server's close code, once its close frame arrived.
    peer_close: Option<Option<u16>>,
    /// Source of the masking keys, which RFC 6455 10.3 wants unpredictable.
    random: fn(&mut [u8]),
    control: WsControlCounters,
}

impl WsClient {
    /// A connection to `endpoint` with the upgrade request queued. `random` fills masking
    /// keys and the handshake nonce.
    pub fn new(endpoint: &Endpoint, max_message: usize, random: fn(&mut [u8])) -> Self {
        let key = super::ws_handshake::new_key(&mut |b: &mut [u8]| random(b));
        Self {
            state: WsState::Upgrading,
            out: Outbox::new(upgrade_request(endpoint, &key)),
            key,
            head: Vec::new(),
            decoder: WsFrameDecoder::new(max_message),
            pong_payload: Vec::with_capacity(MAX_CONTROL_PAYLOAD),
            pong_owed: false,
            peer_close: None,
            random,
            control: WsControlCounters::default(),
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> WsState {
        self.state
    }

    /// The server's close code: `Some(code)` once its close frame arrived.
    pub fn peer_close(&self) -> Option<Option<u16>> {
        self.peer_close
    }

    /// Framing counters (messages, copies).
    pub fn frame_counters(&self) -> WsFrameCounters {
        self.decoder.counters()
    }

    /// Ping and pong counters.
    pub fn control_counters(&self) -> WsControlCounters {
        self.control
    }

    /// Takes the next received chunk; every whole data message in it goes to `on_message`
    /// (its bytes borrowed from `chunk` where the frame lies wholly inside it).
    ///
    /// # Errors
    /// [`WsError`]: the connection must be dropped.
    pub fn on_received(
        &mut self,
        chunk: &[u8],
        on_message: &mut dyn FnMut(&[u8]),
    ) -> Result<(), WsError> {
        let chunk = match self.state {
            WsState::Upgrading => {
                let before = self.head.len();
                self.head.extend_from_slice(chunk);
                match check_upgrade_response(&self.head, &self.key)? {
                    None => return Ok(()),
                    Some(end) => {
                        self.state = WsState::Open;
                        self.head = Vec::new();
                        // The frames that came with the answer, still in the caller's chunk.
                        &chunk[end - before..]
                    }
                }
            }
            WsState::Open | WsState::Closing => chunk,
            WsState::Closed if chunk.is_empty() => return Ok(()),
            WsState::Closed => return Err(WsError::AfterClose),
        };
        let (control, pong_payload, pong_owed, peer_close) = (
            &mut self.control,
            &mut self.pong_payload,
            &mut self.pong_owed,
            &mut self.peer_close,
        );
        self.decoder.feed(chunk, &mut |ev| match ev {
            WsEvent::Message { payload, .. } => on_message(payload),
            WsEvent::Ping(payload) => {
                control.pings += 1;
                control.pings_superseded += u64::from(*pong_owed);
                pong_payload.clear();
                pong_payload.extend_from_slice(payload);
                *pong_owed = true;
            }
            WsEvent::Pong(_) => {}
            WsEvent::Close { code, .. } => *peer_close = Some(code),
        })?;
        if let Some(code) = self.peer_close {
            if self.state == WsState::Open {
                // Echo the code (RFC 6455 5.5.1), then the server closes TCP.
                let payload = code.map(|c| close_payload(c, "")).unwrap_or_default();
                self.push_frame(Opcode::Close, &payload);
            }
            self.state = WsState::Closed;
            self.pong_owed = false;
        }
        Ok(())
    }

    /// Queues the pong owed for the latest ping since the last call, if any: call once per
    /// batch of received chunks.
    pub fn queue_control(&mut self) {
        if core::mem::take(&mut self.pong_owed)
            && matches!(self.state, WsState::Open | WsState::Closing)
        {
            let payload = core::mem::take(&mut self.pong_payload);
            self.push_frame(Opcode::Pong, &payload);
            self.pong_payload = payload;
            self.control.pongs_sent += 1;
        }
    }

    /// Queues a ping, to learn whether a quiet connection is still alive: its pong (or
    /// anything else) arriving says so. Ignored unless open.
    pub fn ping(&mut self, payload: &[u8]) {
        if self.state == WsState::Open {
            self.push_frame(Opcode::Ping, payload);
            self.control.pings_sent += 1;
        }
    }

    /// Queues a text message (a subscribe request, say). Ignored unless open.
    pub fn send_text(&mut self, text: &str) {
        if self.state == WsState::Open {
            self.push_frame(Opcode::Text, text.as_bytes());
        }
    }

    /// Starts the close handshake with `code` (1000: normal closure).
    pub fn close(&mut self, code: u16) {
        match self.state {
            WsState::Open => {
                self.push_frame(Opcode::Close, &close_payload(code, ""));
                self.state = WsState::Closing;
            }
            // Nothing was said yet: there is no WebSocket to close.
            WsState::Upgrading => self.state = WsState::Closed,
            WsState::Closing | WsState::Closed => {}
        }
    }

    /// Bytes waiting to be sent.
    pub fn outgoing(&self) -> &[u8] {
        self.out.pending()
    }

    /// The first `n` bytes of [`Self::outgoing`] were sent.
    pub fn consume_outgoing(&mut self, n: usize) {
        self.out.consume(n);
    }

    fn push_frame(&mut self, opcode: Opcode, payload: &[u8]) {
        let mut mask = [0u8; 4];
        (self.random)(&mut mask);
        encode_frame(self.out.buffer(), opcode, true, payload, Some(mask));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ws_handshake::upgrade_answer;

    fn counter_random(b: &mut [u8]) {
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8 + 1;
        }
    }

    fn server_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        encode_frame(&mut f, opcode, true, payload, None);
        f
    }

    /// Decodes what the client sent (masked frames) as a server would.
    fn client_frames(bytes: &[u8]) -> Vec<(Opcode, Vec<u8>)> {
        let mut out = Vec::new();
        let mut d = WsFrameDecoder::server(1 << 20);
        d.feed(bytes, &mut |ev| {
            out.push(match ev {
                WsEvent::Message { payload, .. } => (Opcode::Text, payload.to_vec()),
                WsEvent::Ping(p) => (Opcode::Ping, p.to_vec()),
                WsEvent::Pong(p) => (Opcode::Pong, p.to_vec()),
                WsEvent::Close { code, .. } => (
                    Opcode::Close,
                    code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default(),
                ),
            })
        })
        .unwrap();
        out
    }

    fn open_client() -> WsClient {
        let e = Endpoint::parse("ws://127.0.0.1:1/stream").unwrap();
        let mut c = WsClient::new(&e, 1 << 20, counter_random);
        let request = c.outgoing().to_vec();
        c.consume_outgoing(request.len());
        let mut answer = upgrade_answer(&request).unwrap();
        // The first frame arrives in the same read as the answer.
        answer.extend(server_frame(Opcode::Text, b"first"));
        let mut got = Vec::new();
        c.on_received(&answer, &mut |m| got.push(m.to_vec()))
            .unwrap();
        assert_eq!(c.state(), WsState::Open);
        assert_eq!(got, vec![b"first".to_vec()]);
        c
    }

    #[test]
    fn a_ping_storm_gets_one_pong_with_the_latest_payload() {
        let mut c = open_client();
        let mut storm = Vec::new();
        for i in 0..50u8 {
            storm.extend(server_frame(Opcode::Ping, &[i]));
        }
        storm.extend(server_frame(Opcode::Text, b"data"));
        let mut got = 0;
        c.on_received(&storm, &mut |_| got += 1).unwrap();
        c.queue_control();
        assert_eq!(got, 1);
        assert_eq!(client_frames(c.outgoing()), vec![(Opcode::Pong, vec![49])]);
        let counters = c.control_counters();
        assert_eq!(
            (
                counters.pings,
                counters.pongs_sent,
                counters.pings_superseded
            ),
            (50, 1, 49)
        );
        // Nothing more is owed.
        let n = c.outgoing().len();
        c.consume_outgoing(n);
        c.queue_control();
        assert!(c.outgoing().is_empty());
    }

    #[test]
    fn the_server_close_is_echoed_and_ends_the_connection() {
        let mut c = open_client();
        let close = server_frame(Opcode::Close, &close_payload(1001, "going away"));
        c.on_received(&close, &mut |_| {}).unwrap();
        assert_eq!(c.state(), WsState::Closed);
        assert_eq!(c.peer_close(), Some(Some(1001)));
        assert_eq!(
            client_frames(c.outgoing()),
            vec![(Opcode::Close, 1001u16.to_be_bytes().to_vec())]
        );
        let late = server_frame(Opcode::Text, b"late");
        assert_eq!(c.on_received(&late, &mut |_| {}), Err(WsError::AfterClose));
    }

    #[test]
    fn our_close_waits_for_the_server_and_text_is_masked() {
        let mut c = open_client();
        c.send_text(r#"{"method":"SUBSCRIBE"}"#);
        c.close(1000);
        assert_eq!(c.state(), WsState::Closing);
        let sent = client_frames(c.outgoing());
        assert_eq!(
            sent[0],
            (Opcode::Text, br#"{"method":"SUBSCRIBE"}"#.to_vec())
        );
        assert_eq!(sent[1], (Opcode::Close, 1000u16.to_be_bytes().to_vec()));
        // Masked on the wire: the payload does not appear in clear.
        assert!(!c.outgoing().windows(6).any(|w| w == b"method"));
        // Messages still in flight are delivered until the server's close.
        let mut wire = server_frame(Opcode::Text, b"in flight");
        wire.extend(server_frame(Opcode::Close, &close_payload(1000, "")));
        let mut got = Vec::new();
        c.on_received(&wire, &mut |m| got.push(m.to_vec())).unwrap();
        assert_eq!(got, vec![b"in flight".to_vec()]);
        assert_eq!(c.state(), WsState::Closed);
    }

    #[test]
    fn a_refused_upgrade_is_an_error() {
        let e = Endpoint::parse("ws://127.0.0.1:1/stream").unwrap();
        let mut c = WsClient::new(&e, 1 << 20, counter_random);
        let answer = b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec();
        assert!(matches!(
            c.on_received(&answer, &mut |_| {}),
            Err(WsError::Handshake(HandshakeError::Status { .. }))
        ));
    }
}
