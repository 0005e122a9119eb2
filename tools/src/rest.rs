//! The REST side of a feed, shared by both transports: depth snapshots and trade history,
//! asked for by the engine ([`FeedRequest`]) and fetched off the hot path.
//!
//! A snapshot is retried until it arrives (a book cannot sync without one). Trade history
//! is retried a few times, but a refusal (4xx: no API key, bad request) or persistent
//! failure ends in [`RestAnswer::Refused`], which the engine turns into bars flagged
//! incomplete: a hole is never waited on forever.

use crate::backoff::Backoff;
use crate::run_config::FeedConfig;
use flowcore_core::engine::FeedRequest;
use flowcore_core::instrument::InstrumentTable;
use flowcore_feeds::binance::session::{market, snapshot_url, trade_history_url};
use flowcore_feeds::transport::{http, TlsSettings, TransportError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Attempts at a trade-history request before it counts as refused.
const HISTORY_ATTEMPTS: u32 = 5;

/// How long a retried history request waits per retry: the venue's history can lag its
/// stream, and an empty answer is asked again a moment later.
const HISTORY_RETRY_DELAY: Duration = Duration::from_millis(200);

/// One REST request, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct RestRequest {
    pub(crate) request: FeedRequest,
    url: String,
    api_key: Option<String>,
}

impl RestRequest {
    /// The request for `request` on `feed`'s venue.
    pub(crate) fn new(
        feed: &FeedConfig,
        table: &InstrumentTable,
        snapshot_limit: u32,
        request: FeedRequest,
    ) -> Self {
        let m = market(feed.venue);
        let symbol = &table.get(request.inst()).symbol;
        let url = match request {
            FeedRequest::Snapshot(_) => snapshot_url(&m, &feed.rest_url, symbol, snapshot_limit),
            FeedRequest::Trades(_, r) => trade_history_url(&m, &feed.rest_url, symbol, r.from_id),
        };
        Self {
            request,
            url,
            api_key: feed.api_key.clone(),
        }
    }
}

/// How a request ended.
#[derive(Debug)]
pub(crate) enum RestAnswer {
    /// The body of a 200.
    Body(Vec<u8>),
    /// The venue will not answer (trade history only).
    Refused,
    /// The run stopped first.
    Stopped,
}

/// Fetches `req`; `on_error` hears of each failed attempt (which is also logged).
pub(crate) async fn fetch(
    req: &RestRequest,
    tls: &TlsSettings,
    stop: &AtomicBool,
    mut on_error: impl FnMut(&TransportError),
) -> RestAnswer {
    match req.request {
        FeedRequest::Snapshot(_) => get_until_ok(&req.url, tls, stop, on_error)
            .await
            .map_or(RestAnswer::Stopped, RestAnswer::Body),
        FeedRequest::Trades(_, r) => {
            tokio::time::sleep(HISTORY_RETRY_DELAY * u32::from(r.retry)).await;
            let key = req.api_key.as_deref().map(|k| [("X-MBX-APIKEY", k)]);
            let headers: &[(&str, &str)] = key.as_ref().map_or(&[], |k| k.as_slice());
            let mut backoff = Backoff::new(HISTORY_RETRY_DELAY);
            for _ in 0..HISTORY_ATTEMPTS {
                if stop.load(Ordering::Relaxed) {
                    return RestAnswer::Stopped;
                }
                match http::get_with_headers(&req.url, tls, Duration::from_secs(10), headers).await
                {
                    Ok(body) => return RestAnswer::Body(body),
                    Err(e) => {
                        on_error(&e);
                        eprintln!("run: trade history {}: {e}", req.url);
                        if matches!(
                            e,
                            TransportError::HttpStatus {
                                status: 400..=499,
                                ..
                            }
                        ) && !matches!(e, TransportError::HttpStatus { status: 429, .. })
                        {
                            return RestAnswer::Refused;
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
            RestAnswer::Refused
        }
    }
}

/// GETs `url` until a body arrives (then returns it) or the run stops (`None`), backing
/// off between attempts; `on_error` hears of each failure, which is also logged.
pub(crate) async fn get_until_ok(
    url: &str,
    tls: &TlsSettings,
    stop: &AtomicBool,
    mut on_error: impl FnMut(&TransportError),
) -> Option<Vec<u8>> {
    let mut backoff = Backoff::new(Duration::from_millis(200));
    while !stop.load(Ordering::Relaxed) {
        match http::get(url, tls, Duration::from_secs(10)).await {
            Ok(body) => return Some(body),
            Err(e) => {
                on_error(&e);
                eprintln!("run: snapshot {url}: {e}; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    None
}
