//! A feed thread on tokio-tungstenite: a current-thread runtime, one task per symbol's
//! connection (see [`Link`] for liveness and make-before-break rotation), REST fetched by
//! local tasks. The fallback where io_uring is unavailable, and `transport = "tokio"`.

use super::backoff::Backoff;
use super::link::{Link, LinkAction, LINK_TICK};
use super::rest::{fetch, RestRequest};
use super::stats::FeedStats;
use super::thread::{
    bybit_subscriber, refused, subscriber_texts, FeedThread, Shared, SNAPSHOT_GRACE,
};
use crate::config::FeedConfig;
use flowcore_core::engine::FeedRequest;
use flowcore_core::event::SessionEvent;
use flowcore_core::instrument::InstrumentId;
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::transport::tungstenite::WsTransport;
use flowcore_feeds::transport::{TlsSettings, Transport, TransportError};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(crate) fn feed_main(
    thread: FeedThread,
    mut requests: rtrb::Consumer<FeedRequest>,
    stop: Arc<AtomicBool>,
    exit_on_close: bool,
) -> FeedStats {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("run: feed runtime: {e}");
            return thread.stats;
        }
    };
    let feed = thread.feed.clone();
    let shared: Shared = Rc::new(RefCell::new(thread));
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let mut connections = Vec::new();
        for symbol in &feed.symbols {
            let inst = {
                let s = shared.borrow();
                s.table.find(feed.venue, symbol.as_bytes())
            };
            let Some(inst) = inst else { continue };
            connections.push(tokio::task::spawn_local(connection(
                shared.clone(),
                symbol.clone(),
                inst,
                stop.clone(),
                shutdown.clone(),
                exit_on_close,
            )));
        }
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut all_ended: Option<Instant> = None;
        loop {
            tick.tick().await;
            while let Ok(request) = requests.pop() {
                let rest = shared.borrow_mut().rest_request(request);
                if let Some(rest) = rest {
                    fetch_rest(&shared, rest, stop.clone());
                }
            }
            let polls = shared.borrow_mut().open_interest_polls(Instant::now());
            for rest in polls {
                fetch_rest(&shared, rest, stop.clone());
            }
            // Done when stopped, or when every connection has ended for good and no
            // snapshot is still on its way (a fetch that keeps failing gets a grace period:
            // its server may be gone with the streams).
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if connections.iter().all(|c| c.is_finished()) {
                let ended = *all_ended.get_or_insert_with(Instant::now);
                if shared.borrow().fetching.is_empty() || ended.elapsed() > SNAPSHOT_GRACE {
                    break;
                }
            }
        }
        // Let each connection send its close frame, briefly.
        let _ = shutdown_tx.send(true);
        for c in connections {
            let _ = tokio::time::timeout(Duration::from_secs(1), c).await;
        }
    });
    let thread = shared.borrow();
    if let Some(log) = &thread.stages {
        log.save();
    }
    thread.stats
}

/// A standby's connect: its key and transport.
type StandbyConnect = Result<(u64, WsTransport), TransportError>;

/// What one turn of a connection task's loop came to.
enum Turn {
    /// Nothing for the loop to do (beyond following the link to a new primary).
    Continue,
    /// The primary ended.
    PrimaryEnded(Result<(), TransportError>),
    /// The standby ended (or failed to connect).
    StandbyEnded,
    /// The standby's connect finished.
    StandbyConnected(u64, Box<WsTransport>),
    /// Time to look at liveness and ages.
    Tick,
    /// The run is stopping.
    Shutdown,
}

/// One symbol's WebSocket, reconnected with backoff until the run stops or the server
/// closes it cleanly (the end of a simulator's recordings), replaced make before break
/// before its lifetime ends, dropped when it falls silent (see [`Link`]).
async fn connection(
    shared: Shared,
    symbol: String,
    inst: InstrumentId,
    stop: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
    exit_on_close: bool,
) {
    let (feed, table, max_message) = {
        let s = shared.borrow();
        (s.feed.clone(), s.table.clone(), s.max_message)
    };
    let url = feed
        .session
        .connect_url(&feed.ws_url, &symbol, &feed.streams);
    let mut subscriber = bybit_subscriber(&feed, &symbol);
    let tls = TlsSettings {
        extra_ca_file: feed.tls_ca_file.clone(),
    };
    let mut parser =
        VenueParser::new(feed.venue, table).counting_block_trades(feed.count_block_trades);
    let mut backoff = Backoff::new(Duration::from_millis(100));
    let mut link: Link<u64> = Link::new(feed.stall_timeout, feed.rotate_after);
    let mut keys = 0u64..;
    let mut tick = tokio::time::interval(LINK_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut first_connection = true;
    'connect: while !stop.load(Ordering::Relaxed) {
        let mut primary = tokio::select! {
            c = WsTransport::connect_with_limit(&url, &tls, max_message) => match c {
                Ok(t) => t,
                Err(e) => {
                    shared.borrow_mut().stats.connect_errors += 1;
                    if exit_on_close && !first_connection && refused(&e) {
                        break 'connect;
                    }
                    eprintln!("run: {} {symbol}: connect: {e}", feed.venue);
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|&s| s) => break 'connect,
        };
        let mut primary_key = keys.next().unwrap_or_default();
        link.primary_connecting(primary_key, Instant::now());
        link.on_open(primary_key, Instant::now());
        backoff.reset();
        shared.borrow_mut().open_record_file(inst, &symbol);
        first_connection = false;
        if let Some(subscriber) = &mut subscriber {
            // A failed send shows as the connection's end on the next read.
            for text in subscriber.on_open(Instant::now()) {
                let _ = primary.send_text(&text).await;
            }
            // A resubscribe asked for meanwhile is answered by this subscription.
            shared.borrow_mut().resubscribe.remove(&inst);
        }
        let mut standby: Option<(u64, WsTransport)> = None;
        let mut connecting: Option<Pin<Box<dyn Future<Output = StandbyConnect>>>> = None;
        loop {
            let mut notice = false;
            let turn = tokio::select! {
                m = primary.next_message() => match m {
                    Ok(Some(bytes)) => {
                        let mut s = shared.borrow_mut();
                        let mut forward = s.forwarder(&mut parser, inst, &mut notice);
                        link.on_message(primary_key, bytes, &mut forward);
                        Turn::Continue
                    }
                    Ok(None) => Turn::PrimaryEnded(Ok(())),
                    Err(e) => Turn::PrimaryEnded(Err(e)),
                },
                (key, m) = async {
                    let (key, t) = standby.as_mut().expect("guarded");
                    (*key, t.next_message().await)
                }, if standby.is_some() => match m {
                    Ok(Some(bytes)) => {
                        let mut s = shared.borrow_mut();
                        let mut forward = s.forwarder(&mut parser, inst, &mut notice);
                        link.on_message(key, bytes, &mut forward);
                        Turn::Continue
                    }
                    Ok(None) | Err(_) => Turn::StandbyEnded,
                },
                c = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    match c {
                        Ok((key, t)) => Turn::StandbyConnected(key, Box::new(t)),
                        Err(e) => {
                            eprintln!("run: {} {symbol}: standby: {e}", feed.venue);
                            Turn::StandbyEnded
                        }
                    }
                },
                _ = tick.tick() => Turn::Tick,
                // A watch, not a polled flag: waiting on it costs no timer per message.
                _ = shutdown.wait_for(|&s| s) => Turn::Shutdown,
            };
            if notice {
                link.on_shutdown_notice();
            }
            let mut forward_notice = false;
            // The primary is gone with nothing to replace it: how it ended.
            let mut lost = None;
            let mut primary_stalled = false;
            match turn {
                Turn::Continue => {}
                Turn::Tick => {
                    let mut actions = Vec::new();
                    {
                        let (p, sb) = (&primary, &standby);
                        let mut s = shared.borrow_mut();
                        link.tick(
                            Instant::now(),
                            &mut |k| {
                                if k == primary_key {
                                    Some(p.frames_received())
                                } else {
                                    sb.as_ref()
                                        .filter(|(sk, _)| *sk == k)
                                        .map(|(_, t)| t.frames_received())
                                }
                            },
                            &mut s.forwarder(&mut parser, inst, &mut forward_notice),
                            &mut |a| actions.push(a),
                        );
                        s.count_link(link.take_counters());
                        s.publish_stats();
                    }
                    if let Some(subscriber) = &mut subscriber {
                        let resubscribe = shared.borrow_mut().resubscribe.remove(&inst);
                        for text in subscriber_texts(subscriber, resubscribe) {
                            let _ = primary.send_text(&text).await;
                        }
                    }
                    for action in actions {
                        match action {
                            LinkAction::ConnectStandby => {
                                let key = keys.next().unwrap_or_default();
                                link.standby_connecting(key, Instant::now());
                                let (url, tls) = (url.clone(), tls.clone());
                                connecting = Some(Box::pin(async move {
                                    WsTransport::connect_with_limit(&url, &tls, max_message)
                                        .await
                                        .map(|t| (key, t))
                                }));
                            }
                            LinkAction::Ping(k) if k == primary_key => {
                                let _ = primary.ping().await;
                            }
                            LinkAction::Ping(k) => {
                                if let Some((_, t)) = standby.as_mut().filter(|(sk, _)| *sk == k) {
                                    let _ = t.ping().await;
                                }
                            }
                            LinkAction::Drop(k)
                                if standby.as_ref().is_some_and(|(sk, _)| *sk == k) =>
                            {
                                standby = None;
                                link.on_closed(k, &mut |_| {});
                                link.standby_failed(Instant::now());
                            }
                            // The primary stalled, or was replaced without getting in
                            // step (which the link has forwarded as a break).
                            LinkAction::Drop(k) => primary_stalled = link.primary() == Some(k),
                            // Replaced in step: closed politely below.
                            LinkAction::Retire(_) => {}
                        }
                    }
                }
                Turn::StandbyConnected(key, t) => {
                    if link.standby() == Some(key) {
                        link.on_open(key, Instant::now());
                        standby = Some((key, *t));
                    }
                }
                Turn::StandbyEnded => {
                    if let Some(key) = standby.take().map(|(k, _)| k).or(link.standby()) {
                        link.on_closed(key, &mut |_| {});
                    }
                    shared.borrow_mut().stats.connect_errors += 1;
                    link.standby_failed(Instant::now());
                }
                Turn::PrimaryEnded(result) => {
                    // The server ended the stream: a standby has nothing to take over.
                    let the_end = exit_on_close && result.is_ok();
                    if let Some((key, t)) = standby.take().filter(|_| !the_end) {
                        let mut s = shared.borrow_mut();
                        s.stats.disconnects += 1;
                        link.on_closed(
                            primary_key,
                            &mut s.forwarder(&mut parser, inst, &mut forward_notice),
                        );
                        drop(s);
                        if let Err(e) = result {
                            eprintln!("run: {} {symbol}: {e}; the standby takes over", feed.venue);
                        }
                        primary = t;
                        primary_key = key;
                    } else {
                        lost = Some(result);
                    }
                }
                Turn::Shutdown => {
                    primary.close().await;
                    if let Some((_, t)) = standby {
                        t.close().await;
                    }
                    break 'connect;
                }
            }
            if forward_notice {
                link.on_shutdown_notice();
            }
            // The link may have moved to the standby (in step, or by giving up).
            if link.primary() != Some(primary_key) && lost.is_none() {
                if let Some((key, t)) = standby.take() {
                    let old = std::mem::replace(&mut primary, t);
                    link.on_closed(primary_key, &mut |_| {});
                    primary_key = key;
                    tokio::task::spawn_local(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(2), old.close()).await;
                    });
                }
            } else if primary_stalled {
                lost = Some(Err(TransportError::Timeout));
            }
            if let Some(result) = lost {
                let done = on_lost_primary(
                    &shared,
                    &mut parser,
                    &mut link,
                    primary_key,
                    inst,
                    result,
                    &feed,
                    &symbol,
                    exit_on_close,
                );
                if done {
                    break 'connect;
                }
                break;
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
    shared.borrow_mut().count_link(link.take_counters());
}

/// The primary connection is gone and no standby replaces it: counts it and says the
/// stream broke (unless the server ended it cleanly with `exit_on_close`). True when the
/// connection task is done.
#[allow(clippy::too_many_arguments)]
fn on_lost_primary(
    shared: &Shared,
    parser: &mut VenueParser,
    link: &mut Link<u64>,
    key: u64,
    inst: InstrumentId,
    result: Result<(), TransportError>,
    feed: &FeedConfig,
    symbol: &str,
    exit_on_close: bool,
) -> bool {
    // A standby still connecting goes with it: the reconnect starts afresh.
    if let Some(standby) = link.standby() {
        link.on_closed(standby, &mut |_| {});
    }
    link.on_closed(key, &mut |_| {});
    let mut s = shared.borrow_mut();
    s.stats.disconnects += 1;
    // A clean close: the server ended the stream (a simulator at the end of its
    // recordings). Reconnect unless told not to.
    if result.is_ok() && exit_on_close {
        return true;
    }
    s.on_session(parser, inst, SessionEvent::StreamBreak);
    if let Err(e) = result {
        eprintln!("run: {} {symbol}: {e}; reconnecting", feed.venue);
    }
    false
}

/// Starts a REST request (one [`FeedThread::rest_request`] made: not in flight yet); its
/// answer goes through the feed thread like a message.
fn fetch_rest(shared: &Shared, rest: RestRequest, stop: Arc<AtomicBool>) {
    let request = rest.request;
    let tls = TlsSettings {
        extra_ca_file: shared.borrow().feed.tls_ca_file.clone(),
    };
    let shared = shared.clone();
    tokio::task::spawn_local(async move {
        let venue = shared.borrow().feed.venue;
        let mut parser = VenueParser::new(venue, shared.borrow().table.clone());
        let answer = fetch(&rest, &tls, &stop, |_| {
            shared.borrow_mut().on_rest_error(request);
        })
        .await;
        shared
            .borrow_mut()
            .on_rest_answer(&mut parser, request, answer);
    });
}
