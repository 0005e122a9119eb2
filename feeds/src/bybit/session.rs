//! Where each Bybit category lives and what a connection says to it: subscriptions (at
//! most 10 args a request on spot), the client's `{"op":"ping"}` every 20 s, and a
//! resubscribe that brings a fresh book snapshot after a gap. Sans-IO: the session hands
//! out the texts to send; the transport sends them.

use flowcore_core::instrument::Venue;
use std::time::{Duration, Instant};

/// The public endpoint and defaults of one Bybit category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BybitMarket {
    /// The venue.
    pub venue: Venue,
    /// WebSocket URL (the whole path: topics are subscribed after the upgrade).
    pub ws_url: &'static str,
    /// REST base URL (not used by the session: books come by the stream).
    pub rest_url: &'static str,
    /// Topics per symbol when the configuration names none (`orderbook.50` and
    /// `publicTrade` become `orderbook.50.BTCUSDT`, `publicTrade.BTCUSDT`; linear also
    /// `tickers`: mark price, open interest, funding).
    pub default_streams: &'static [&'static str],
    /// Most args one subscribe request may carry.
    pub args_per_request: usize,
}

/// How often the client pings: Bybit asks for a `{"op":"ping"}` about every 20 s.
pub const PING_EVERY: Duration = Duration::from_secs(20);

/// The category of a Bybit venue; `None` for another venue's.
pub const fn market(venue: Venue) -> Option<BybitMarket> {
    Some(match venue {
        Venue::BybitSpot => BybitMarket {
            venue,
            ws_url: "wss://stream.bybit.com/v5/public/spot",
            rest_url: "https://api.bybit.com",
            default_streams: &["orderbook.50", "publicTrade"],
            args_per_request: 10,
        },
        Venue::BybitLinear => BybitMarket {
            venue,
            ws_url: "wss://stream.bybit.com/v5/public/linear",
            rest_url: "https://api.bybit.com",
            default_streams: &["orderbook.50", "publicTrade", "tickers"],
            // No documented limit on linear; kept as spot's, which every category takes.
            args_per_request: 10,
        },
        _ => return None,
    })
}

/// One connection's conversation with Bybit. See the module docs.
#[derive(Debug, Clone)]
pub struct BybitSubscriber {
    topics: Vec<String>,
    args_per_request: usize,
    ping_every: Duration,
    next_ping: Option<Instant>,
    next_req_id: u64,
}

impl BybitSubscriber {
    /// The topics of `streams` for `symbol` (`orderbook.50` -> `orderbook.50.BTCUSDT`).
    pub fn new(
        market: &BybitMarket,
        symbol: &str,
        streams: &[String],
        ping_every: Duration,
    ) -> Self {
        Self {
            topics: streams
                .iter()
                .map(|s| format!("{s}.{}", symbol.to_ascii_uppercase()))
                .collect(),
            args_per_request: market.args_per_request.max(1),
            ping_every,
            next_ping: None,
            next_req_id: 1,
        }
    }

    /// The topics subscribed.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    fn request(&mut self, op: &str, args: &[&String]) -> String {
        let id = self.next_req_id;
        self.next_req_id += 1;
        let args: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
        format!(
            "{{\"req_id\":\"{id}\",\"op\":\"{op}\",\"args\":[{}]}}",
            args.join(",")
        )
    }

    /// A connection opened at `now`: the subscribe requests to send.
    pub fn on_open(&mut self, now: Instant) -> Vec<String> {
        self.next_ping = Some(now + self.ping_every);
        let topics = self.topics.clone();
        let refs: Vec<&String> = topics.iter().collect();
        refs.chunks(self.args_per_request)
            .map(|chunk| self.request("subscribe", chunk))
            .collect()
    }

    /// The ping to send at `now`, when one is due.
    pub fn ping_due(&mut self, now: Instant) -> Option<String> {
        let due = self.next_ping.is_some_and(|at| now >= at);
        if !due {
            return None;
        }
        self.next_ping = Some(now + self.ping_every);
        let id = self.next_req_id;
        self.next_req_id += 1;
        Some(format!("{{\"req_id\":\"{id}\",\"op\":\"ping\"}}"))
    }

    /// The book lost its way (a `u` gap): unsubscribe and subscribe its topics again, for
    /// the snapshot that every subscription starts with.
    pub fn resubscribe_books(&mut self) -> Vec<String> {
        let books: Vec<String> = self
            .topics
            .iter()
            .filter(|t| t.starts_with("orderbook."))
            .cloned()
            .collect();
        if books.is_empty() {
            return Vec::new();
        }
        let refs: Vec<&String> = books.iter().collect();
        vec![
            self.request("unsubscribe", &refs),
            self.request("subscribe", &refs),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribes_in_requests_of_at_most_ten_args_and_pings_every_interval() {
        let m = market(Venue::BybitSpot).unwrap();
        let streams: Vec<String> = (0..12).map(|i| format!("orderbook.{i}")).collect();
        let mut s = BybitSubscriber::new(&m, "btcusdt", &streams, PING_EVERY);
        let t0 = Instant::now();
        let requests = s.on_open(t0);
        assert_eq!(requests.len(), 2);
        for r in &requests {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            assert_eq!(v["op"], "subscribe");
            assert!(v["args"].as_array().unwrap().len() <= 10);
        }
        assert!(requests[0].contains("\"orderbook.0.BTCUSDT\""));
        assert_eq!(s.ping_due(t0 + PING_EVERY / 2), None);
        let ping = s.ping_due(t0 + PING_EVERY).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ping).unwrap()["op"],
            "ping"
        );
        assert_eq!(s.ping_due(t0 + PING_EVERY), None, "once per interval");
    }

    #[test]
    fn a_resubscribe_is_for_the_book_topics_only() {
        let m = market(Venue::BybitLinear).unwrap();
        let streams = vec!["orderbook.50".to_string(), "publicTrade".to_string()];
        let mut s = BybitSubscriber::new(&m, "BTCUSDT", &streams, PING_EVERY);
        let texts = s.resubscribe_books();
        assert_eq!(texts.len(), 2);
        assert!(texts[0].contains("\"op\":\"unsubscribe\",\"args\":[\"orderbook.50.BTCUSDT\"]"));
        assert!(texts[1].contains("\"op\":\"subscribe\",\"args\":[\"orderbook.50.BTCUSDT\"]"));
    }
}
