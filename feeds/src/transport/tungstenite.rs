//! The portable WebSocket transport: tokio-tungstenite over [`NetStream`] (rustls for wss).

use super::net::{connect, NetStream};
use super::{Endpoint, TlsSettings, Transport, TransportError};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;

/// Largest message accepted by default: Binance depth diffs reach 35 KB, but Coinbase's
/// level-2 snapshot of BTC-USD arrives over the WebSocket at about 5 MB. A bigger one is a
/// protocol error that ends the connection (counted by the session).
pub const MAX_MESSAGE: usize = 16 << 20;

/// A WebSocket connection read one message at a time. Pings are answered with pongs by
/// tungstenite as part of reading.
#[derive(Debug)]
pub struct WsTransport {
    ws: WebSocketStream<NetStream>,
    /// The message last returned: its bytes are borrowed until the next read.
    held: Bytes,
    /// Frames received, control frames included: moves whenever the peer shows life.
    frames: u64,
}

impl WsTransport {
    /// Connects and completes the WebSocket handshake.
    ///
    /// # Errors
    /// Any [`TransportError`] on the way.
    pub async fn connect(url: &str, tls: &TlsSettings) -> Result<Self, TransportError> {
        Self::connect_with_limit(url, tls, MAX_MESSAGE).await
    }

    /// [`Self::connect`], refusing messages over `max_message` bytes.
    ///
    /// # Errors
    /// Any [`TransportError`] on the way.
    pub async fn connect_with_limit(
        url: &str,
        tls: &TlsSettings,
        max_message: usize,
    ) -> Result<Self, TransportError> {
        let endpoint = Endpoint::parse(url)?;
        let stream = connect(&endpoint, tls).await?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        Ok(Self {
            ws,
            held: Bytes::new(),
            frames: 0,
        })
    }

    /// Frames received so far, pings and pongs included (see
    /// [`crate::transport::liveness::StallWatch`]).
    pub fn frames_received(&self) -> u64 {
        self.frames
    }

    /// Sends a ping: a live peer answers with a pong, which [`Self::frames_received`]
    /// counts.
    ///
    /// # Errors
    /// When the connection has failed.
    pub async fn ping(&mut self) -> Result<(), TransportError> {
        self.ws
            .send(Message::Ping(Bytes::from_static(b"flowcore")))
            .await?;
        Ok(())
    }

    /// Sends a text message (a subscribe request, an application ping).
    ///
    /// # Errors
    /// When the connection has failed.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Closes the connection politely (a close frame, then the socket).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

impl Transport for WsTransport {
    async fn next_message(&mut self) -> Result<Option<&[u8]>, TransportError> {
        loop {
            let next = self.ws.next().await;
            self.frames += 1;
            match next {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => {
                    self.held = text.into();
                    return Ok(Some(&self.held));
                }
                Some(Ok(Message::Binary(bytes))) => {
                    self.held = bytes;
                    return Ok(Some(&self.held));
                }
                // Pings are queued for a pong by tungstenite; the pong is flushed by the
                // next read. Nothing else reaches the session.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            }
        }
    }

    async fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }
}
