//! The client's HTTP/1.1 upgrade to WebSocket (RFC 6455 section 4), sans-IO: the request
//! bytes to send, and the check of the server's answer.
//!
//! ```
//! use flowcore_feeds::transport::{ws_handshake::*, Endpoint};
//! let endpoint = Endpoint::parse("ws://127.0.0.1:9000/stream?streams=btcusdt@trade").unwrap();
//! let key = "dGhlIHNhbXBsZSBub25jZQ==";
//! let request = upgrade_request(&endpoint, key);
//! assert!(request.starts_with(b"GET /stream?streams=btcusdt@trade HTTP/1.1\r\n"));
//! // The RFC's own example pair.
//! assert_eq!(accept_for(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x01x";
//! // The answer ends after the blank line; the frame after it is the stream's first.
//! assert_eq!(check_upgrade_response(answer, key).unwrap(), Some(answer.len() - 3));
//! ```

use super::endpoint::Endpoint;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID every server appends to the key (RFC 6455 section 1.3).
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The longest upgrade answer read before giving up on it.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why an upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The server answered with another status (a 403, a 429, a 502 from a proxy...).
    #[error("upgrade refused: {status_line}")]
    Status {
        /// The answer's first line.
        status_line: String,
    },
    /// A required header is missing or wrong.
    #[error("upgrade answer: {0}")]
    Header(&'static str),
    /// The answer's head is longer than [`MAX_RESPONSE_HEAD`] or not text.
    #[error("upgrade answer is not a readable HTTP head")]
    Malformed,
}

/// A fresh `Sec-WebSocket-Key`: 16 bytes from `random`, base64.
pub fn new_key(random: &mut impl FnMut(&mut [u8])) -> String {
    let mut nonce = [0u8; 16];
    random(&mut nonce);
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// The `Sec-WebSocket-Accept` a server must answer to `key`.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The upgrade request for `endpoint`'s path.
pub fn upgrade_request(endpoint: &Endpoint, key: &str) -> Vec<u8> {
    let default_port = if endpoint.tls { 443 } else { 80 };
    let host = if endpoint.port == default_port {
        endpoint.host.clone()
    } else {
        endpoint.authority()
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: flowcore\r\n\r\n",
        endpoint.path
    )
    .into_bytes()
}

/// Checks the server's answer in `received` (everything read so far).
///
/// Returns `Ok(None)` while the head is incomplete, and `Ok(Some(n))` once it is complete
/// and valid: `n` is its length, and the bytes after it are the first frames.
///
/// # Errors
/// [`HandshakeError`] for another status, a missing or wrong header, or a head that is too
/// long.
pub fn check_upgrade_response(received: &[u8], key: &str) -> Result<Option<usize>, HandshakeError> {
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if received.len() > MAX_RESPONSE_HEAD {
            Err(HandshakeError::Malformed)
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&received[..end]).map_err(|_| HandshakeError::Malformed)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || status != "101" {
        return Err(HandshakeError::Status {
            status_line: status_line.to_string(),
        });
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HandshakeError::Malformed);
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            // We offered none, so the server may not use any (permessage-deflate would
            // set RSV1 on frames we then refuse).
            return Err(HandshakeError::Header("an extension we did not offer"));
        }
    }
    if !upgrade {
        return Err(HandshakeError::Header("no Upgrade: websocket"));
    }
    if !connection {
        return Err(HandshakeError::Header("no Connection: Upgrade"));
    }
    match accept {
        None => Err(HandshakeError::Header("no Sec-WebSocket-Accept")),
        Some(a) if a != accept_for(key) => Err(HandshakeError::Header(
            "Sec-WebSocket-Accept does not match the key",
        )),
        Some(_) => Ok(Some(end + 4)),
    }
}

/// The server's side, for test peers: the 101 answer to a client's upgrade request head.
///
/// # Errors
/// [`HandshakeError::Header`] when the request carries no `Sec-WebSocket-Key`.
pub fn upgrade_answer(request_head: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    let text = std::str::from_utf8(request_head).map_err(|_| HandshakeError::Malformed)?;
    let key = text
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, value)| value.trim())
        .ok_or(HandshakeError::Header("no Sec-WebSocket-Key"))?;
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_for(key)
    )
    .into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn answer(lines: &[&str]) -> Vec<u8> {
        let mut s = lines.join("\r\n");
        s.push_str("\r\n\r\n");
        s.into_bytes()
    }

    #[test]
    fn a_good_answer_in_any_case_is_accepted_and_an_incomplete_one_waits() {
        let a = answer(&[
            "HTTP/1.1 101 Switching Protocols",
            "upgrade: WebSocket",
            "connection: keep-alive, Upgrade",
            "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        ]);
        assert_eq!(check_upgrade_response(&a, KEY), Ok(Some(a.len())));
        assert_eq!(check_upgrade_response(&a[..a.len() - 1], KEY), Ok(None));
    }

    #[test]
    fn bad_answers_say_why() {
        let ok = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        ];
        let refused = answer(&["HTTP/1.1 429 Too Many Requests", "Retry-After: 5"]);
        assert!(matches!(
            check_upgrade_response(&refused, KEY),
            Err(HandshakeError::Status { status_line }) if status_line.contains("429")
        ));
        for (drop, want) in [
            (1, "no Upgrade: websocket"),
            (2, "no Connection: Upgrade"),
            (3, "no Sec-WebSocket-Accept"),
        ] {
            let mut lines = ok.to_vec();
            lines.remove(drop);
            assert_eq!(
                check_upgrade_response(&answer(&lines), KEY),
                Err(HandshakeError::Header(want))
            );
        }
        let mut lines = ok.to_vec();
        lines[3] = "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert!(check_upgrade_response(&answer(&lines), KEY).is_err());
        let mut lines = ok.to_vec();
        lines.push("Sec-WebSocket-Extensions: permessage-deflate");
        assert!(check_upgrade_response(&answer(&lines), KEY).is_err());
        assert_eq!(
            check_upgrade_response(&vec![b'a'; MAX_RESPONSE_HEAD + 1], KEY),
            Err(HandshakeError::Malformed)
        );
    }

    #[test]
    fn our_request_and_the_test_answer_to_it_agree() {
        let e = Endpoint::parse("ws://127.0.0.1:9000/stream").unwrap();
        let request = upgrade_request(&e, KEY);
        let answer = upgrade_answer(&request).unwrap();
        assert_eq!(check_upgrade_response(&answer, KEY), Ok(Some(answer.len())));
        assert!(upgrade_answer(b"GET / HTTP/1.1\r\n\r\n").is_err());
    }

    #[test]
    fn the_host_header_carries_a_port_only_when_not_the_default() {
        let e = Endpoint::parse("wss://stream.binance.com:9443/stream").unwrap();
        let r = String::from_utf8(upgrade_request(&e, KEY)).unwrap();
        assert!(r.contains("\r\nHost: stream.binance.com:9443\r\n"), "{r}");
        let e = Endpoint::parse("wss://fstream.binance.com/public/stream").unwrap();
        let r = String::from_utf8(upgrade_request(&e, KEY)).unwrap();
        assert!(r.contains("\r\nHost: fstream.binance.com\r\n"), "{r}");
        assert!(r.starts_with("GET /public/stream HTTP/1.1\r\n"));
        let key = new_key(&mut |b: &mut [u8]| b.fill(7));
        assert_eq!(key.len(), 24);
    }
}
