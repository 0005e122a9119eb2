//! Where a connection goes: scheme, host, port and path of a URL.

/// A URL that is not `ws://`, `wss://`, `http://` or `https://` with a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad URL {url:?}: {why}")]
pub struct BadUrl {
    /// The URL.
    pub url: String,
    /// Why it was refused.
    pub why: &'static str,
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
    /// [`BadUrl`] for another scheme, an empty host or a bad port.
    ///
    /// # Examples
    /// ```
    /// use flowcore_feeds::transport::Endpoint;
    /// let e = Endpoint::parse("wss://fstream.binance.com/public/stream?streams=a/b").unwrap();
    /// assert_eq!((e.tls, e.port, e.path.as_str()), (true, 443, "/public/stream?streams=a/b"));
    /// ```
    pub fn parse(url: &str) -> Result<Self, BadUrl> {
        let bad = |why| BadUrl {
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
