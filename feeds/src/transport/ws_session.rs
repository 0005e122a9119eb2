//! A `ws://` or `wss://` client connection above the socket, sans-IO: [`WsClient`] alone,
//! or over [`TlsClient`].
//!
//! ```text
//! received bytes --> [TlsClient: decrypt] --> WsClient --> messages
//! bytes to send  <-- [TlsClient: encrypt] <-- WsClient <-- subscribe, pong, close
//! ```
//!
//! The driver's loop, per connection: hand every received chunk to
//! [`WsSession::on_received`], call [`WsSession::after_batch`] once per batch, then send
//! [`WsSession::outgoing`] and report what went with [`WsSession::consume_outgoing`].

use super::endpoint::Endpoint;
use super::tls_client::{TlsClient, TlsCounters, TlsError, TlsState};
use super::ws_client::{WsClient, WsControlCounters, WsError, WsState};
use super::ws_frame::WsFrameCounters;
use std::sync::Arc;

/// Why a connection failed above the socket.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// TLS failed (certificate, alert...).
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The WebSocket failed (upgrade, framing, size limit...).
    #[error("WebSocket: {0}")]
    Ws(#[from] WsError),
}

/// One client connection's protocol state.
#[derive(Debug)]
pub struct WsSession {
    tls: Option<TlsClient>,
    ws: WsClient,
}

impl WsSession {
    /// A session to `endpoint`, TLS when its scheme says so (then `tls_config` is required).
    ///
    /// # Errors
    /// [`SessionError::Tls`] for a bad server name, or `wss` without a config.
    pub fn new(
        endpoint: &Endpoint,
        tls_config: Option<Arc<rustls::ClientConfig>>,
        max_message: usize,
        random: fn(&mut [u8]),
    ) -> Result<Self, SessionError> {
        let tls = match (endpoint.tls, tls_config) {
            (false, _) => None,
            (true, Some(config)) => Some(TlsClient::new(config, &endpoint.host)?),
            (true, None) => return Err(TlsError::ServerName(endpoint.host.clone()).into()),
        };
        Ok(Self {
            tls,
            ws: WsClient::new(endpoint, max_message, random),
        })
    }

    /// The WebSocket's state.
    pub fn ws_state(&self) -> WsState {
        self.ws.state()
    }

    /// True once the peer ended the stream at its level (a WebSocket close frame, or TLS
    /// close_notify): the driver closes the socket once [`Self::outgoing`] is empty.
    pub fn finished(&self) -> bool {
        self.ws.state() == WsState::Closed
            || self
                .tls
                .as_ref()
                .is_some_and(|t| t.state() == TlsState::PeerClosed)
    }

    /// Takes the next received chunk (mutable: TLS decrypts in place); every whole message
    /// goes to `on_message`.
    ///
    /// # Errors
    /// [`SessionError`]: the connection must be dropped.
    pub fn on_received(
        &mut self,
        chunk: &mut [u8],
        on_message: &mut dyn FnMut(&[u8]),
    ) -> Result<(), SessionError> {
        let Some(tls) = &mut self.tls else {
            return Ok(self.ws.on_received(chunk, on_message)?);
        };
        let ws = &mut self.ws;
        let mut ws_error = None;
        tls.on_received(chunk, &mut |plaintext| {
            if ws_error.is_none() {
                ws_error = ws.on_received(plaintext, on_message).err();
            }
        })?;
        match ws_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Queues what a batch of received chunks calls for (the pong owed to the latest
    /// ping) and moves the WebSocket's bytes through TLS.
    ///
    /// # Errors
    /// [`SessionError::Tls`].
    pub fn after_batch(&mut self) -> Result<(), SessionError> {
        self.ws.queue_control();
        self.seal()
    }

    /// Queues a text message.
    ///
    /// # Errors
    /// [`SessionError::Tls`].
    pub fn send_text(&mut self, text: &str) -> Result<(), SessionError> {
        self.ws.send_text(text);
        self.seal()
    }

    /// Queues a ping (see [`WsClient::ping`]).
    ///
    /// # Errors
    /// [`SessionError::Tls`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SessionError> {
        self.ws.ping(payload);
        self.seal()
    }

    /// Starts the close handshake.
    ///
    /// # Errors
    /// [`SessionError::Tls`].
    pub fn close(&mut self, code: u16) -> Result<(), SessionError> {
        self.ws.close(code);
        self.seal()?;
        if self.ws.state() == WsState::Closed {
            if let Some(tls) = &mut self.tls {
                tls.close()?;
            }
        }
        Ok(())
    }

    /// Bytes to send.
    pub fn outgoing(&self) -> &[u8] {
        match &self.tls {
            Some(tls) => tls.outgoing(),
            None => self.ws.outgoing(),
        }
    }

    /// The first `n` bytes of [`Self::outgoing`] were sent.
    pub fn consume_outgoing(&mut self, n: usize) {
        match &mut self.tls {
            Some(tls) => tls.consume_outgoing(n),
            None => self.ws.consume_outgoing(n),
        }
    }

    /// Framing counters.
    pub fn frame_counters(&self) -> WsFrameCounters {
        self.ws.frame_counters()
    }

    /// Ping and pong counters.
    pub fn control_counters(&self) -> WsControlCounters {
        self.ws.control_counters()
    }

    /// TLS counters (zero for `ws://`).
    pub fn tls_counters(&self) -> TlsCounters {
        self.tls.as_ref().map(|t| t.counters()).unwrap_or_default()
    }

    /// Encrypts whatever the WebSocket has queued, once TLS allows it.
    fn seal(&mut self) -> Result<(), SessionError> {
        if let Some(tls) = &mut self.tls {
            let plain = self.ws.outgoing();
            if !plain.is_empty() && tls.encrypt(plain)? {
                let n = plain.len();
                self.ws.consume_outgoing(n);
            }
        }
        Ok(())
    }
}
