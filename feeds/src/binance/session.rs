//! Where each Binance market lives and how its streams and snapshots are named: the
//! defaults of PROTOCOLS.md, every one overridable from configuration.

use flowcore_core::instrument::Venue;
use std::time::Duration;

/// The public endpoints and default streams of one Binance market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinanceMarket {
    /// The venue.
    pub venue: Venue,
    /// WebSocket base URL (host plus, for USD-M, the `/public` routing path).
    pub ws_url: &'static str,
    /// REST base URL.
    pub rest_url: &'static str,
    /// Path of the REST depth snapshot, before `?symbol=`.
    pub depth_path: &'static str,
    /// Path of the REST trade history (by id), before `?symbol=`.
    pub history_path: &'static str,
    /// Path of the REST open interest, before `?symbol=`; `None` on spot.
    pub open_interest_path: Option<&'static str>,
    /// The trade history wants an API key (`X-MBX-APIKEY`; security type MARKET_DATA).
    pub history_needs_key: bool,
    /// Streams per symbol when the configuration names none, as in the shared recordings.
    pub default_streams: &'static [&'static str],
    /// A connection lives at most this long; the server then cuts it.
    pub connection_lifetime: Duration,
}

/// Silence after which a connection counts as stalled (probed with a ping halfway). The
/// server's own pings come every 20 s (spot) or 3 min (futures), too rarely to wait for;
/// our probe gets a pong within a round trip, so a quiet market costs one ping, not a
/// reconnect.
pub const STALL_AFTER: Duration = Duration::from_secs(10);

/// How long before [`BinanceMarket::connection_lifetime`] a connection is replaced, make
/// before break: room for a slow handshake and for the new connection to get in step.
pub const ROTATE_AHEAD: Duration = Duration::from_secs(15 * 60);

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The market of a Binance venue; `None` for another venue's.
pub const fn market(venue: Venue) -> Option<BinanceMarket> {
    Some(match venue {
        Venue::BinanceSpot => BinanceMarket {
            venue,
            ws_url: "wss://stream.binance.com:9443",
            rest_url: "https://api.binance.com",
            depth_path: "/api/v3/depth",
            history_path: "/api/v3/historicalTrades",
            open_interest_path: None,
            history_needs_key: false,
            default_streams: &["trade", "bookTicker", "depth@100ms"],
            connection_lifetime: DAY,
        },
        Venue::BinanceUsdm => BinanceMarket {
            venue,
            ws_url: "wss://fstream.binance.com/public",
            rest_url: "https://fapi.binance.com",
            depth_path: "/fapi/v1/depth",
            history_path: "/fapi/v1/historicalTrades",
            open_interest_path: Some("/fapi/v1/openInterest"),
            history_needs_key: true,
            default_streams: &["trade", "bookTicker", "depth@0ms"],
            connection_lifetime: DAY,
        },
        Venue::BinanceCoinm => BinanceMarket {
            venue,
            ws_url: "wss://dstream.binance.com",
            rest_url: "https://dapi.binance.com",
            depth_path: "/dapi/v1/depth",
            history_path: "/dapi/v1/historicalTrades",
            open_interest_path: Some("/dapi/v1/openInterest"),
            history_needs_key: true,
            default_streams: &["trade", "bookTicker", "depth@0ms"],
            connection_lifetime: DAY,
        },
        Venue::BybitSpot | Venue::BybitLinear => return None,
    })
}

/// A stream's name: lower-case symbol, `@`, the stream (`btcusdt@depth@100ms`).
pub fn stream_name(symbol: &str, stream: &str) -> String {
    format!("{}@{stream}", symbol.to_ascii_lowercase())
}

/// The combined-stream URL of `streams` for `symbol` under `ws_url`.
///
/// # Examples
/// ```
/// use flowcore_feeds::binance::session::combined_stream_url;
/// assert_eq!(
///     combined_stream_url("ws://127.0.0.1:9000/public", "BTCUSDT", &["trade", "depth@0ms"]),
///     "ws://127.0.0.1:9000/public/stream?streams=btcusdt@trade/btcusdt@depth@0ms"
/// );
/// ```
pub fn combined_stream_url(ws_url: &str, symbol: &str, streams: &[impl AsRef<str>]) -> String {
    let names: Vec<String> = streams
        .iter()
        .map(|s| stream_name(symbol, s.as_ref()))
        .collect();
    format!(
        "{}/stream?streams={}",
        ws_url.trim_end_matches('/'),
        names.join("/")
    )
}

/// The REST depth snapshot URL of `symbol` with `limit` levels a side.
pub fn snapshot_url(market: &BinanceMarket, rest_url: &str, symbol: &str, limit: u32) -> String {
    format!(
        "{}{}?symbol={}&limit={limit}",
        rest_url.trim_end_matches('/'),
        market.depth_path,
        symbol.to_ascii_uppercase()
    )
}

/// The REST open-interest URL of `symbol` (`/fapi/v1/openInterest?symbol=BTCUSDT`), or
/// `None` where the market has none (spot).
///
/// # Examples
/// ```
/// use flowcore_core::instrument::Venue;
/// use flowcore_feeds::binance::session::{market, open_interest_url};
/// let usdm = market(Venue::BinanceUsdm).unwrap();
/// assert_eq!(
///     open_interest_url(&usdm, "http://127.0.0.1:9001/", "btcusdt").as_deref(),
///     Some("http://127.0.0.1:9001/fapi/v1/openInterest?symbol=BTCUSDT")
/// );
/// ```
pub fn open_interest_url(market: &BinanceMarket, rest_url: &str, symbol: &str) -> Option<String> {
    let path = market.open_interest_path?;
    Some(format!(
        "{}{path}?symbol={}",
        rest_url.trim_end_matches('/'),
        symbol.to_ascii_uppercase()
    ))
}

/// Trade-history answers hold at most this many trades (the venues' maximum `limit`).
pub const HISTORY_LIMIT: u32 = 1000;

/// The REST trade-history URL of `symbol` from trade id `from_id`, [`HISTORY_LIMIT`] trades.
pub fn trade_history_url(
    market: &BinanceMarket,
    rest_url: &str,
    symbol: &str,
    from_id: u64,
) -> String {
    format!(
        "{}{}?symbol={}&fromId={from_id}&limit={HISTORY_LIMIT}",
        rest_url.trim_end_matches('/'),
        market.history_path,
        symbol.to_ascii_uppercase()
    )
}
