//! The REST side of a feed, shared by both transports: depth snapshots and trade history,
//! asked for by the engine ([`FeedRequest`]) and fetched off the hot path.
//!
//! A snapshot is retried until it arrives (a book cannot sync without one). Trade history
//! is retried a few times, but a refusal (4xx: no API key, bad request) or persistent
//! failure ends in [`RestAnswer::Refused`], which the engine turns into bars flagged
//! incomplete: a hole is never waited on forever.

use super::backoff::Backoff;
use crate::config::FeedConfig;
use flowcore_core::engine::FeedRequest;
use flowcore_core::instrument::InstrumentTable;
use flowcore_feeds::binance::session::{
    open_interest_url, snapshot_url, trade_history_url, BinanceMarket,
};
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
    /// The request for `request` on `feed`'s venue; `None` for open interest on a market
    /// that has none.
    pub(crate) fn new(
        feed: &FeedConfig,
        m: &BinanceMarket,
        table: &InstrumentTable,
        snapshot_limit: u32,
        request: FeedRequest,
    ) -> Option<Self> {
        let symbol = &table.get(request.inst()).symbol;
        let url = match request {
            FeedRequest::Snapshot(_) => snapshot_url(m, &feed.rest_url, symbol, snapshot_limit),
            FeedRequest::Trades(_, r) => trade_history_url(m, &feed.rest_url, symbol, r.from_id),
            FeedRequest::OpenInterest(_) => open_interest_url(m, &feed.rest_url, symbol)?,
        };
        Some(Self {
            request,
            url,
            api_key: feed.api_key.clone(),
        })
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
    on_error: impl FnMut(&TransportError),
) -> RestAnswer {
    match req.request {
        FeedRequest::Snapshot(_) => {
            get_retrying(
                &req.url,
                tls,
                &[],
                stop,
                None,
                Duration::from_millis(200),
                on_error,
            )
            .await
        }
        FeedRequest::Trades(_, r) => {
            tokio::time::sleep(HISTORY_RETRY_DELAY * u32::from(r.retry)).await;
            let key = req.api_key.as_deref().map(|k| [("X-MBX-APIKEY", k)]);
            let headers: &[(&str, &str)] = key.as_ref().map_or(&[], |k| k.as_slice());
            let attempts = Some(HISTORY_ATTEMPTS);
            get_retrying(
                &req.url,
                tls,
                headers,
                stop,
                attempts,
                HISTORY_RETRY_DELAY,
                on_error,
            )
            .await
        }
        // One attempt: the next poll is the retry.
        FeedRequest::OpenInterest(_) => {
            get_retrying(&req.url, tls, &[], stop, Some(1), Duration::ZERO, on_error).await
        }
    }
}

/// GETs `url` until a body arrives, backing off from `first_delay` between attempts.
/// With `attempts`, gives up after that many failures, or at once when the venue refuses
/// (a 4xx other than 429): [`RestAnswer::Refused`]. Without, tries until the run stops.
async fn get_retrying(
    url: &str,
    tls: &TlsSettings,
    headers: &[(&str, &str)],
    stop: &AtomicBool,
    attempts: Option<u32>,
    first_delay: Duration,
    mut on_error: impl FnMut(&TransportError),
) -> RestAnswer {
    let mut backoff = Backoff::new(first_delay);
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        match http::get_with_headers(url, tls, Duration::from_secs(10), headers).await {
            Ok(body) => return RestAnswer::Body(body),
            Err(e) => {
                on_error(&e);
                eprintln!("run: GET {url}: {e}");
                failures += 1;
                let refused = matches!(
                    e,
                    TransportError::HttpStatus {
                        status: 400..=499,
                        ..
                    }
                ) && !matches!(e, TransportError::HttpStatus { status: 429, .. });
                if attempts.is_some_and(|max| refused || failures >= max) {
                    return RestAnswer::Refused;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    RestAnswer::Stopped
}
