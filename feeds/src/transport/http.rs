//! One-shot HTTP/1.1 GET for REST depth snapshots and trade history: off the hot path, one
//! request per connection (`Connection: close`), `Content-Length` or chunked bodies, no
//! compression.

use super::net::connect;
use super::{Endpoint, TlsSettings, TransportError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest response accepted: a 5000-level snapshot is about 250 KB.
pub const MAX_RESPONSE: usize = 16 << 20;

/// GETs `url` and returns the body of a 200 response.
///
/// # Errors
/// [`TransportError::HttpStatus`] for another status; [`TransportError::Http`] for a
/// malformed or oversized response; [`TransportError::Timeout`] after `timeout`; I/O and
/// TLS errors as they come.
pub async fn get(
    url: &str,
    tls: &TlsSettings,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    get_with_headers(url, tls, timeout, &[]).await
}

/// [`get`] with extra request headers (an API key).
///
/// # Errors
/// As [`get`].
pub async fn get_with_headers(
    url: &str,
    tls: &TlsSettings,
    timeout: Duration,
    headers: &[(&str, &str)],
) -> Result<Vec<u8>, TransportError> {
    tokio::time::timeout(timeout, get_inner(url, tls, headers))
        .await
        .map_err(|_| TransportError::Timeout)?
}

async fn get_inner(
    url: &str,
    tls: &TlsSettings,
    headers: &[(&str, &str)],
) -> Result<Vec<u8>, TransportError> {
    let endpoint = Endpoint::parse(url)?;
    let mut stream = connect(&endpoint, tls).await?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: flowcore\r\nAccept: application/json\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n",
        endpoint.path,
        endpoint.authority()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut response = Vec::with_capacity(64 << 10);
    loop {
        let mut chunk = [0u8; 16 << 10];
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // Servers that close without a TLS close_notify: the body is judged by its
            // framing below, not by how the connection ended.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        if response.len() > MAX_RESPONSE {
            return Err(TransportError::Http(format!(
                "response over {MAX_RESPONSE} bytes"
            )));
        }
        // Done as soon as the body is whole: some servers keep the connection open after
        // the response (until their own close timeout) despite `Connection: close`.
        if is_complete(&response) {
            break;
        }
    }
    parse_response(&response)
}

/// The parts of a response head that frame its body.
struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    /// Where the body starts in the response.
    body_start: usize,
}

/// Parses the head of `response`; `Ok(None)` while the head is still incomplete.
fn parse_head(response: &[u8]) -> Result<Option<Head>, TransportError> {
    let bad = |why: &str| TransportError::Http(why.to_string());
    let Some(head_end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&response[..head_end]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    Ok(Some(Head {
        status,
        content_length,
        chunked,
        body_start: head_end + 4,
    }))
}

/// True once `response` holds the whole body its head announces (`Content-Length`, or a
/// chunked body's last chunk). Without either, or with a malformed head, only the end of
/// the connection tells (and [`parse_response`] then reports the problem).
fn is_complete(response: &[u8]) -> bool {
    let Ok(Some(head)) = parse_head(response) else {
        return false;
    };
    let body = &response[head.body_start..];
    if head.chunked {
        body.ends_with(b"0\r\n\r\n")
    } else {
        head.content_length.is_some_and(|len| body.len() >= len)
    }
}

/// The body of a complete HTTP/1.1 response held in `response`.
fn parse_response(response: &[u8]) -> Result<Vec<u8>, TransportError> {
    let bad = |why: &str| TransportError::Http(why.to_string());
    let head = parse_head(response)?.ok_or_else(|| bad("no end of headers"))?;
    let body = &response[head.body_start..];
    let body = if head.chunked {
        dechunk(body)?
    } else if let Some(len) = head.content_length {
        body.get(..len)
            .ok_or_else(|| bad("body shorter than Content-Length"))?
            .to_vec()
    } else {
        body.to_vec()
    };
    if head.status != 200 {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(TransportError::HttpStatus {
            status: head.status,
            text,
        });
    }
    Ok(body)
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, TransportError> {
    let bad = |why: &str| TransportError::Http(why.to_string());
    let mut out = Vec::with_capacity(body.len());
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("unterminated chunk size"))?;
        let size_text =
            std::str::from_utf8(&body[..line_end]).map_err(|_| bad("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or_else(|| bad("truncated chunk"))?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or_else(|| bad("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness() {
        assert!(!is_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"
        ));
        assert!(is_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        ));
        assert!(!is_complete(b"HTTP/1.1 200 OK\r\nContent-Le"));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
        assert!(!is_complete(chunked));
        assert!(is_complete(&[&chunked[..], b"0\r\n\r\n"].concat()));
        assert!(!is_complete(b"HTTP/1.1 200 OK\r\n\r\nno length"));
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello+extra";
        assert_eq!(parse_response(ok).unwrap(), b"hello");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"abcde");
        let err = b"HTTP/1.1 429 Too Many\r\nContent-Length: 11\r\n\r\n{\"code\":-1}";
        assert!(matches!(
            parse_response(err),
            Err(TransportError::HttpStatus { status: 429, text }) if text == "{\"code\":-1}"
        ));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"garbage").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }
}
