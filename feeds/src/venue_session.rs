//! The live session of each venue, as the run's feeds see it: Binance names its streams in
//! the URL and serves books by REST snapshot; Bybit subscribes after the upgrade and sends
//! book snapshots in the stream.

use crate::binance::session::{self as binance, BinanceMarket};
use crate::bybit::session::{self as bybit, BybitMarket};
use flowcore_core::instrument::Venue;
use std::time::Duration;

/// A venue's endpoints and session facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueSession {
    /// Binance spot, USD-M, COIN-M.
    Binance(BinanceMarket),
    /// Bybit spot, linear.
    Bybit(BybitMarket),
}

impl VenueSession {
    /// The session of `venue`.
    pub const fn of(venue: Venue) -> Self {
        match (binance::market(venue), bybit::market(venue)) {
            (Some(m), _) => Self::Binance(m),
            (None, Some(m)) => Self::Bybit(m),
            (None, None) => panic!("every venue has a session"),
        }
    }

    /// The default WebSocket URL.
    pub const fn ws_url(&self) -> &'static str {
        match self {
            Self::Binance(m) => m.ws_url,
            Self::Bybit(m) => m.ws_url,
        }
    }

    /// The default REST base URL.
    pub const fn rest_url(&self) -> &'static str {
        match self {
            Self::Binance(m) => m.rest_url,
            Self::Bybit(m) => m.rest_url,
        }
    }

    /// Streams per symbol when the configuration names none.
    pub const fn default_streams(&self) -> &'static [&'static str] {
        match self {
            Self::Binance(m) => m.default_streams,
            Self::Bybit(m) => m.default_streams,
        }
    }

    /// How long the venue keeps a connection open; `None`: until it drops.
    pub const fn connection_lifetime(&self) -> Option<Duration> {
        match self {
            Self::Binance(m) => Some(m.connection_lifetime),
            Self::Bybit(_) => None,
        }
    }

    /// The URL a connection for `symbol`'s `streams` opens: Binance's combined streams, or
    /// Bybit's category endpoint as it is (topics are subscribed once open).
    pub fn connect_url(&self, ws_url: &str, symbol: &str, streams: &[String]) -> String {
        match self {
            Self::Binance(_) => binance::combined_stream_url(ws_url, symbol, streams),
            Self::Bybit(_) => ws_url.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_venue_has_a_session() {
        for venue in Venue::ALL {
            let session = VenueSession::of(venue);
            assert!(session.ws_url().starts_with("wss://"), "{venue}");
            assert_eq!(
                matches!(session, VenueSession::Bybit(_)),
                session.connection_lifetime().is_none()
            );
        }
    }
}
