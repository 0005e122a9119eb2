//! Getting exchange bytes off the network: endpoints, TLS, WebSocket and one-shot HTTP GET.
//!
//! Two WebSocket transports, both run on a feed thread, never on the core thread:
//! - [`uring::UringDriver`] (the default): io_uring, no async runtime, one driver owning
//!   many connections, over the sans-IO layers [`ws_session`] = [`ws_client`]
//!   ([`ws_handshake`], [`ws_frame`]) over [`tls_client`] (rustls unbuffered).
//! - [`tungstenite::WsTransport`] (tokio-tungstenite over rustls, the [`Transport`] trait):
//!   the portable path and the fallback where io_uring is unavailable.
//!
//! REST snapshots use [`http::get`] (tokio), off the hot path.

mod endpoint;
pub mod http;
pub mod liveness;
pub mod net;
mod outbox;
pub mod tls_client;
pub mod tungstenite;
// io_uring's submission contract and the provided-buffer ring's shared memory: the only
// unsafe code of this crate, each block with its reason.
#[allow(unsafe_code)]
pub mod uring;
pub mod ws_client;
pub mod ws_frame;
pub mod ws_handshake;
pub mod ws_session;

pub use endpoint::{BadUrl, Endpoint};

use std::path::PathBuf;

/// What went wrong on the wire. Every one ends the connection; the session counts it and
/// reconnects.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL is not `ws://`, `wss://`, `http://` or `https://` with a host.
    #[error(transparent)]
    BadUrl(#[from] BadUrl),
    /// TCP connect, read or write failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// TLS set-up failed (a CA file that cannot be read, a bad server name...).
    #[error("TLS: {0}")]
    Tls(String),
    /// The WebSocket layer refused the stream (handshake, protocol, oversized frame...).
    #[error("WebSocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// The HTTP response could not be read.
    #[error("HTTP: {0}")]
    Http(String),
    /// The HTTP response was not a 200.
    #[error("HTTP status {status}: {text}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The start of the body (the venue's error message).
        text: String,
    },
    /// Nothing arrived within the allowed time.
    #[error("timed out")]
    Timeout,
    /// The io_uring transport's TLS or WebSocket layer failed.
    #[error(transparent)]
    Session(#[from] ws_session::SessionError),
    /// The server closed TCP without a WebSocket close frame.
    #[error("connection closed without a close frame")]
    Eof,
}

impl From<tokio_tungstenite::tungstenite::Error> for TransportError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        // Boxed: tungstenite's error is large and every transport call returns this type.
        TransportError::WebSocket(Box::new(e))
    }
}

/// A frame source: one exchange connection delivering text messages.
///
/// Feed threads run single-threaded runtimes, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// The next text (or binary) message's bytes; `None` once the peer closed cleanly.
    /// Control frames (ping, pong) are answered inside and never returned.
    async fn next_message(&mut self) -> Result<Option<&[u8]>, TransportError>;

    /// Sends a text message (a subscribe request, say).
    async fn send_text(&mut self, text: &str) -> Result<(), TransportError>;
}

/// TLS settings of a connection: the webpki roots plus, optionally, an extra CA.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// A PEM file of extra trusted CA certificates (a local test CA, say).
    pub extra_ca_file: Option<PathBuf>,
}
