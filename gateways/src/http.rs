//! A small blocking HTTP/1.1 client for one loopback or LAN server (FreqTrade's API): one
//! kept-alive connection, TCP_NODELAY, each request written with a single `write`, and the
//! moment its last byte left taken for the latency metric. Responses are read by
//! `Content-Length` or chunked framing, parsed with httparse.
//!
//! It never retries by itself: whether a request may be sent again is the caller's call
//! (a `forceenter` must not be, a `GET /status` may).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response accepted (a `/status` of many trades fits easily).
const MAX_RESPONSE: usize = 16 << 20;

/// A connection older than this without use is replaced before a request: servers close
/// idle keep-alive connections (uvicorn after 5 s), and a request written into one that is
/// being closed cannot be told apart from one the server dropped.
const IDLE_REUSE: Duration = Duration::from_secs(2);

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host:port[/prefix]`.
    #[error("bad URL {0}")]
    Url(String),
    /// Could not connect.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The request may or may not have reached the server.
    #[error("{what}: {source}")]
    Io {
        /// Sending or receiving.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The server's answer is not HTTP/1.1 as we read it.
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl HttpError {
    /// Whether the request's bytes were certainly not written (connect failed): only then
    /// is sending it again safe whatever it does.
    pub fn not_sent(&self) -> bool {
        matches!(self, HttpError::Connect { .. } | HttpError::Url(_))
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// See the module docs.
#[derive(Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    host: String,
    prefix: String,
    timeout: Duration,
    stream: Option<(TcpStream, Instant)>,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl HttpClient {
    /// A client for `http://host:port[/prefix]`; connects on first use.
    ///
    /// # Errors
    /// [`HttpError::Url`] when the URL is not plain HTTP or does not resolve.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::Url(url.into()))?;
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let with_port = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| HttpError::Url(url.into()))?;
        Ok(Self {
            addr,
            host: host.to_string(),
            prefix: prefix.to_string(),
            timeout,
            stream: None,
            request: Vec::with_capacity(2048),
            buf: Vec::with_capacity(64 << 10),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn connect(&mut self) -> Result<&mut TcpStream, HttpError> {
        let fresh = match &self.stream {
            Some((_, used)) => used.elapsed() > IDLE_REUSE,
            None => true,
        };
        if fresh {
            let s = TcpStream::connect_timeout(&self.addr, self.timeout).map_err(|source| {
                HttpError::Connect {
                    addr: self.addr.to_string(),
                    source,
                }
            })?;
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(self.timeout));
            let _ = s.set_write_timeout(Some(self.timeout));
            self.stream = Some((s, Instant::now()));
        }
        Ok(&mut self.stream.as_mut().expect("just set").0)
    }

    /// Sends one request and reads its response. `on_written` runs right after the last
    /// byte of the request was handed to the kernel.
    ///
    /// # Errors
    /// [`HttpError`]; the connection is dropped after any error.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        on_written: impl FnOnce(),
    ) -> Result<Response, HttpError> {
        self.request.clear();
        let _ = write!(
            self.request,
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: flowcore-gateway\r\nAccept: application/json\r\n",
            self.prefix, self.host
        );
        for (k, v) in headers {
            let _ = write!(self.request, "{k}: {v}\r\n");
        }
        match body {
            Some(b) => {
                let _ = write!(
                    self.request,
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    b.len()
                );
                self.request.extend_from_slice(b);
            }
            None => self.request.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        }
        let result = self.exchange(on_written);
        match &result {
            Ok(_) => {
                if let Some((_, used)) = &mut self.stream {
                    *used = Instant::now();
                }
            }
            Err(_) => self.stream = None,
        }
        result
    }

    fn exchange(&mut self, on_written: impl FnOnce()) -> Result<Response, HttpError> {
        let request = std::mem::take(&mut self.request);
        let stream = self.connect();
        let written = stream.and_then(|s| {
            s.write_all(&request).map_err(|source| HttpError::Io {
                what: "sending the request",
                source,
            })
        });
        self.request = request;
        written?;
        on_written();
        self.read_response()
    }

    fn read_response(&mut self) -> Result<Response, HttpError> {
        let Some((stream, _)) = self.stream.as_mut() else {
            return Err(HttpError::Malformed("no connection".into()));
        };
        let buf = &mut self.buf;
        buf.clear();
        let mut chunk = [0u8; 16 << 10];
        let (status, head_len, framing, close) = loop {
            let n = stream.read(&mut chunk).map_err(|source| HttpError::Io {
                what: "reading the response",
                source,
            })?;
            if n == 0 {
                return Err(HttpError::Io {
                    what: "reading the response",
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed before a response",
                    ),
                });
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let mut framing = Framing::UntilClose;
                    let mut close = false;
                    for h in r.headers.iter() {
                        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let n = value.parse().map_err(|_| {
                                HttpError::Malformed(format!("content-length {value}"))
                            })?;
                            framing = Framing::Length(n);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                            && value.eq_ignore_ascii_case("chunked")
                        {
                            framing = Framing::Chunked;
                        } else if h.name.eq_ignore_ascii_case("connection")
                            && value.eq_ignore_ascii_case("close")
                        {
                            close = true;
                        }
                    }
                    break (r.code.unwrap_or(0), len, framing, close);
                }
                Ok(httparse::Status::Partial) if buf.len() < 64 << 10 => continue,
                Ok(httparse::Status::Partial) => {
                    return Err(HttpError::Malformed("response head over 64 KiB".into()))
                }
                Err(e) => return Err(HttpError::Malformed(e.to_string())),
            }
        };
        let mut read_more = |buf: &mut Vec<u8>| -> Result<bool, HttpError> {
            let n = stream.read(&mut chunk).map_err(|source| HttpError::Io {
                what: "reading the response body",
                source,
            })?;
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE {
                return Err(HttpError::Malformed("response over 16 MiB".into()));
            }
            Ok(n > 0)
        };
        let body = match framing {
            Framing::Length(n) => {
                while buf.len() < head_len + n {
                    if !read_more(buf)? {
                        return Err(HttpError::Malformed(
                            "body shorter than content-length".into(),
                        ));
                    }
                }
                buf[head_len..head_len + n].to_vec()
            }
            Framing::UntilClose => {
                while read_more(buf)? {}
                self.stream = None;
                buf[head_len..].to_vec()
            }
            Framing::Chunked => {
                let mut body = Vec::new();
                let mut at = head_len;
                loop {
                    let Some(eol) = find_crlf(&buf[at..]) else {
                        if !read_more(buf)? {
                            return Err(HttpError::Malformed("torn chunk size".into()));
                        }
                        continue;
                    };
                    let size_text = std::str::from_utf8(&buf[at..at + eol]).unwrap_or("");
                    let size_text = size_text.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size_text, 16)
                        .map_err(|_| HttpError::Malformed(format!("chunk size {size_text:?}")))?;
                    let data = at + eol + 2;
                    while buf.len() < data + size + 2 {
                        if !read_more(buf)? {
                            return Err(HttpError::Malformed("torn chunk".into()));
                        }
                    }
                    if size == 0 {
                        break;
                    }
                    body.extend_from_slice(&buf[data..data + size]);
                    at = data + size + 2;
                }
                body
            }
        };
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve(answers: Vec<&'static [u8]>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut seen = Vec::new();
            for a in answers {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(a).unwrap();
            }
            seen
        });
        (url, h)
    }

    #[test]
    fn length_and_chunked_bodies_on_one_connection() {
        let (url, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 17\r\n\r\n{\"status\":\"pong\"}",
            b"HTTP/1.1 502 Bad Gateway\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
        ]);
        let mut c = HttpClient::new(&url, Duration::from_secs(5)).unwrap();
        let mut written = false;
        let r = c
            .request("GET", "/ping", &[], None, || written = true)
            .unwrap();
        assert!(written);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"{\"status\":\"pong\"}"[..])
        );
        let r = c
            .request(
                "POST",
                "/forceenter",
                &[("Authorization", "Bearer x")],
                Some(b"{}"),
                || {},
            )
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (502, &b"{\"a\":1}"[..]));
        let seen = h.join().unwrap();
        assert!(
            seen[0].starts_with("GET /api/v1/ping HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[1].contains("Content-Length: 2\r\n\r\n{}"),
            "{}",
            seen[1]
        );
        assert!(seen[1].contains("Authorization: Bearer x\r\n"));
    }

    #[test]
    fn a_refused_connection_is_known_not_sent() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let mut c = HttpClient::new(&url, Duration::from_secs(1)).unwrap();
        let e = c.request("GET", "/ping", &[], None, || {}).unwrap_err();
        assert!(e.not_sent(), "{e}");
    }
}
