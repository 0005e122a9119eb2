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

use std::path::PathBuf;

/// What went wrong on the wire. Every one ends the connection; the session counts it and
/// reconnects.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL is not `ws://`, `wss://`, `http://` or `https://` with a host.
    #[error("bad URL {url:?}: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why it was refused.
        why: &'static str,
    },
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

/// Scheme, host, port and path of a `ws(s)://` or `http(s)://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// True for `wss` and `https`.
    pub tls: bool,
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// Port, defaulted from the scheme.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Endpoint {
    /// Parses `url`.
    ///
    /// # Errors
    /// [`TransportError::BadUrl`] for another scheme, an empty host or a bad port.
    ///
    /// # Examples
    /// ```
    /// use flowcore_feeds::transport::Endpoint;
    /// let e = Endpoint::parse("wss://fstream.binance.com/public/stream?streams=a/b").unwrap();
    /// assert_eq!((e.tls, e.port, e.path.as_str()), (true, 443, "/public/stream?streams=a/b"));
    /// ```
    pub fn parse(url: &str) -> Result<Self, TransportError> {
        let bad = |why| TransportError::BadUrl {
            url: url.to_string(),
            why,
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("scheme must be ws, wss, http or https"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// `host:port`, bracketing an IPv6 host.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("ws://127.0.0.1:9443/stream?streams=btcusdt@trade").unwrap();
        assert_eq!(e.authority(), "127.0.0.1:9443");
        assert!(!e.tls);
        let e = Endpoint::parse("https://api.binance.com").unwrap();
        assert_eq!((e.port, e.path.as_str()), (443, "/"));
        let e = Endpoint::parse("http://[::1]:8080?x=1").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("::1", 8080, "/?x=1")
        );
        for bad in [
            "ftp://x",
            "ws://",
            "ws://:80/",
            "ws://h:99999/",
            "http://[::1/",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
