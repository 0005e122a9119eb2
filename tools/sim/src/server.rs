//! `flowcore sim`: an exchange simulator on loopback, serving recordings: Binance here,
//! Bybit in [`crate::bybit`] (whose books come by subscription, not REST).
//!
//! ```text
//! recordings --merge by local ts--> playback (paced) --> per-client queues --> WebSocket
//!                                        |
//!                                        +--> the sim's own books --> REST depth snapshots
//! ```
//! Each venue gets a WebSocket listener and a REST listener, as Binance has separate hosts.
//! The market runs on its own clock once enough clients are connected: a client that
//! connects late or reconnects misses what was played meanwhile, and its REST snapshot is
//! the sim's current book (`lastUpdateId` = the last diff's `u` it played), so it must
//! really resynchronise. Until playback passes the recording's own snapshot, the snapshot
//! served is that one (its `lastUpdateId` is ahead of the stream, as a real one can be).
//!
//! Paths are the venue's: `/ws/<stream>`, `/ws` plus `SUBSCRIBE`, `/stream?streams=a/b`
//! (combined: messages keep the `{"stream":..,"data":..}` wrapper; `/ws` gets the bare
//! payload); USD-M also under `/public` (trade, bookTicker, depth) and `/market` (the rest),
//! where a stream on the wrong path stays silently empty. The server pings every
//! `ping_interval` and drops a client that has not answered within `pong_timeout`.
//!
//! REST also serves the trade history by id (`historicalTrades?fromId=`) of the trades
//! played so far; futures want an `X-MBX-APIKEY` header (security type MARKET_DATA), as
//! Binance does. Faults ([`crate::faults`]) are injected on request while the market
//! keeps running.
//!
//! Binance futures statistics, which the recordings do not carry, are synthesised from what
//! the sim plays (formulas in `venue_stats.rs`, the same recording at the same pace giving
//! the same bytes):
//! - `<symbol>@markPrice@1s` and `<symbol>@markPrice` for every USD-M and COIN-M instrument
//!   played, requested like any recorded stream (on USD-M under `/market` or no prefix, never
//!   `/public`). One `markPriceUpdate` per second (per 3 s) of the instrument's exchange time,
//!   sent right after the message that passed the boundary, with `E` = the boundary: never
//!   later than the `E` of the instrument's messages already handed out, since the engine
//!   closes bars by the exchange time it has seen and must close them as a replay does. `p`
//!   is the sim's book mid rounded to the tick (the last trade before the book has two
//!   sides), `i` = `P` that mark less a basis of -5 to 5 bp cycling with the second, `r` =
//!   0.0001 + (p - i) / i, `T` the next 8-hour funding time; prices and rate at 8 decimals.
//! - `GET /fapi/v1/openInterest?symbol=` and `/dapi/v1/openInterest?symbol=` (Binance's
//!   shapes; spot has none: 404): 10 000 units of the instrument's size, plus the taker
//!   trades played with an even id, less those with an odd id (never below zero), at the size
//!   scale; `time` is the largest `E` of the instrument's messages handed out. Before there
//!   is one the answer is 503 with Binance's -1001 "try again" (a listed symbol always has
//!   an open interest on Binance; the sim has nothing to date it by). The REST faults apply
//!   as to every REST request; an unknown symbol gets -1121 as elsewhere.

use crate::bybit;
use crate::faults::{
    FaultKind, FaultPlan, FRAGMENTED_MESSAGES, FRAGMENT_SIZES, REFUSE_FOR, REST_FAILURES,
    SHUTDOWN_GRACE, SLOW_REST, STALL_FOR, STORM_PINGS,
};
use crate::market_flow::{Flow, MarkStream};
use crate::state::{
    Client, OpenConnection, Outgoing, Record, Shared, Sim, SimBook, SimSummary, VenueState,
};
use crate::venue_stats::{self, mark_stream_names, open_interest_answer};
use anyhow::{bail, Context};
use flowcore_core::decimal::Fixed;
use flowcore_core::event::{Aggressor, BatchKind, BookSide, EventKind, MarketEvent, Trade};
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use flowcore_feeds::binance::session::market;
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::recording::{Input, Pace, RecordingReader};
use flowcore_feeds::transport::net::{accept, server_config, NetStream};
use futures_util::{SinkExt, StreamExt};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Everything `flowcore sim` is told.
#[derive(Debug)]
pub struct SimOptions {
    /// The recordings, as `VENUE=FILE`.
    pub inputs: Vec<Input>,
    /// Playback speed.
    pub pace: Pace,
    /// Address the listeners bind (ports are chosen by the system and printed).
    pub bind: IpAddr,
    /// Server ping period; `None` for the venue's (20 s spot, 3 min futures).
    pub ping_interval: Option<Duration>,
    /// How long a ping may go unanswered; `None` for the venue's (1 min spot, 10 min futures).
    pub pong_timeout: Option<Duration>,
    /// Playback starts once this many WebSocket clients have connected (0: at once).
    pub wait_clients: usize,
    /// Serve wss and https with this PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The instrument table (scales for snapshots).
    pub table: InstrumentTable,
    /// Set to end the play early (then clients are closed as at the end of the recordings).
    pub stop: Arc<AtomicBool>,
    /// Messages a client may fall behind before the paced modes drop it, as an exchange
    /// drops a slow consumer ([`DEFAULT_CLIENT_BUFFER`]).
    pub client_buffer: usize,
    /// Faults to inject.
    pub faults: FaultPlan,
    /// The API key futures trade history wants; `None`: any non-empty key.
    pub api_key: Option<String>,
    /// WebSocket connections are dropped at this age (Binance: 24 h); `None`: never.
    pub connection_lifetime: Option<Duration>,
}

/// How long REST keeps answering after the end of the recordings, at most.
const REST_AFTER_END: Duration = Duration::from_secs(10);

/// How long a connection the sim closes waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The default of [`SimOptions::client_buffer`]: deep enough for a burst.
pub const DEFAULT_CLIENT_BUFFER: usize = 4096;

/// Runs the simulator until the recordings are played and the clients are closed. The
/// listening addresses are written to `announce` as one JSON line per venue before play.
///
/// # Errors
/// When a recording cannot be read or a listener cannot bind.
pub fn run_sim(options: SimOptions, mut announce: impl FnMut(&str)) -> anyhow::Result<SimSummary> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the simulator's runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move { serve(options, &mut announce).await })
}

async fn serve(options: SimOptions, announce: &mut dyn FnMut(&str)) -> anyhow::Result<SimSummary> {
    let (records, sim) = load(&options)?;
    let sim: Shared = Rc::new(RefCell::new(sim));
    let tls = match &options.tls {
        Some((cert, key)) => Some(server_config(cert, key)?),
        None => None,
    };
    let (ws_scheme, rest_scheme) = if tls.is_some() {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    let venue_count = sim.borrow().venues.len();
    let connected = Rc::new(tokio::sync::Notify::new());
    for v in 0..venue_count {
        let ws = TcpListener::bind(SocketAddr::new(options.bind, 0)).await?;
        let rest = TcpListener::bind(SocketAddr::new(options.bind, 0)).await?;
        let name = sim.borrow().venues[v].venue.name();
        announce(&format!(
            "{{\"venue\":\"{name}\",\"ws\":\"{ws_scheme}://{}\",\"rest\":\"{rest_scheme}://{}\"}}",
            ws.local_addr()?,
            rest.local_addr()?
        ));
        tokio::task::spawn_local(accept_ws(
            ws,
            v,
            sim.clone(),
            tls.clone(),
            connected.clone(),
        ));
        tokio::task::spawn_local(accept_rest(rest, v, sim.clone(), tls.clone()));
    }
    while total_connected(&sim) < options.wait_clients {
        connected.notified().await;
    }
    play(&records, &sim, options.pace, &options.stop).await;
    // Close every client: dropping the queues makes each connection send a close frame.
    for venue in &mut sim.borrow_mut().venues {
        venue.clients.clear();
    }
    sim.borrow_mut().ended = true;
    // Give the connections a moment to flush their close frames, and REST a while longer
    // while clients still ask (a hole found just before the end is backfilled like any
    // other): until a second passes without a request, at most REST_AFTER_END.
    let ended = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let quiet = sim
            .borrow()
            .last_rest
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1));
        // Connections finish their close handshake first (at most CLOSE_GRACE each).
        let closing = sim.borrow().open_connections > 0 && ended.elapsed() < CLOSE_GRACE * 2;
        if (quiet && !closing) || ended.elapsed() > REST_AFTER_END {
            break;
        }
    }
    let summary = sim.borrow().summary;
    Ok(summary)
}

fn total_connected(sim: &Shared) -> usize {
    sim.borrow().venues.iter().map(|v| v.connected).sum()
}

/// Reads every recording, merges by (local ts, argument order) and loads the recorded
/// snapshots into the sim's books.
fn load(options: &SimOptions) -> anyhow::Result<(Vec<Record>, Sim)> {
    let mut venues: Vec<VenueState> = Vec::new();
    let mut books = HashMap::new();
    let mut records = Vec::new();
    for input in &options.inputs {
        let v = match venues.iter().position(|s| s.venue == input.venue) {
            Some(v) => v,
            None => {
                venues.push(VenueState {
                    venue: input.venue,
                    streams: Vec::new(),
                    clients: Vec::new(),
                    connected: 0,
                });
                venues.len() - 1
            }
        };
        let mut parser = VenueParser::new(input.venue, options.table.clone());
        let mut reader: RecordingReader = input.source.open()?;
        let mut file_inst: Option<InstrumentId> = None;
        let mut pending_snapshots: Vec<Vec<u8>> = Vec::new();
        while let Some((ts, json)) = reader.next_line()? {
            let Some(stream) = stream_of(json) else {
                // The REST snapshot the recorder took: it seeds the sim's book.
                pending_snapshots.push(json.to_vec());
                continue;
            };
            let stream_index = match venues[v].streams.iter().position(|s| s == stream) {
                Some(i) => i,
                None => {
                    venues[v].streams.push(stream.to_string());
                    venues[v].streams.len() - 1
                }
            };
            let mut inst = None;
            let mut is_diff = false;
            let mut is_snapshot = false;
            let mut trade = None;
            let mut exch_ms: Option<i64> = None;
            let _ = parser.parse(ts, json, None, &mut |ev: MarketEvent| {
                inst = Some(ev.inst);
                if let Some(ns) = ev.exch_ts() {
                    let ms = ns.div_euclid(1_000_000);
                    exch_ms = Some(exch_ms.map_or(ms, |m| m.max(ms)));
                }
                match ev.kind {
                    EventKind::BookBegin(b) => {
                        is_diff = b.kind == BatchKind::Diff;
                        is_snapshot = b.kind == BatchKind::Snapshot;
                    }
                    EventKind::Trade(t) => trade = Some((ev.inst, t)),
                    _ => {}
                }
            });
            if let (true, Some(inst)) = (is_snapshot, inst) {
                // A book snapshot in the stream (Bybit): it seeds the sim's book; clients
                // get their own at subscription.
                if let std::collections::hash_map::Entry::Vacant(slot) = books.entry(inst) {
                    let mut sim_book = SimBook::new();
                    let _ = parser.parse(ts, json, None, &mut |ev: MarketEvent| {
                        apply(&mut sim_book, &ev)
                    });
                    slot.insert(sim_book);
                }
                continue;
            }
            file_inst = file_inst.or(inst);
            let text = std::str::from_utf8(json)
                .with_context(|| format!("{:?}: a line that is not UTF-8", input.source))?;
            records.push(Record {
                ts,
                venue: v,
                stream: stream_index,
                wrapped: Utf8Bytes::from(text.to_string()),
                book: if is_diff { inst } else { None },
                trade,
                inst,
                exch_ms,
            });
        }
        if let (Some(inst), Some(snapshot)) = (file_inst, pending_snapshots.first()) {
            // The first recorded snapshot of an instrument seeds its book.
            if let std::collections::hash_map::Entry::Vacant(slot) = books.entry(inst) {
                let mut sim_book = SimBook::new();
                let loaded = parser.parse(0, snapshot, Some(inst), &mut |ev: MarketEvent| {
                    apply(&mut sim_book, &ev)
                });
                if loaded.is_ok() {
                    slot.insert(sim_book);
                }
            }
        }
    }
    if records.is_empty() {
        bail!("no stream messages in the recordings");
    }
    // Stable: equal timestamps keep argument and line order.
    records.sort_by_key(|r| r.ts);
    let mut trades: HashMap<InstrumentId, Vec<(usize, Trade)>> = HashMap::new();
    for (at, record) in records.iter().enumerate() {
        if let Some((inst, trade)) = record.trade {
            trades.entry(inst).or_default().push((at, trade));
        }
    }
    let flows = add_synthesised_streams(&mut venues, &records, &options.table);
    for list in trades.values_mut() {
        list.sort_by_key(|(_, t)| t.trade_id);
    }
    let venue_count = venues.len();
    let (ping_interval, pong_timeout) = venues
        .iter()
        .map(|v| {
            let (ping, pong) = venue_heartbeat(v.venue);
            (
                options.ping_interval.unwrap_or(ping),
                options.pong_timeout.unwrap_or(pong),
            )
        })
        .unzip();
    Ok((
        records,
        Sim {
            venues,
            books,
            table: options.table.clone(),
            summary: SimSummary::default(),
            ping_interval,
            pong_timeout,
            client_buffer: options.client_buffer.max(1),
            played: 0,
            trades,
            flows,
            faults: options.faults.clone(),
            refuse_until: vec![None; venue_count],
            rest_failures: 0,
            api_key: options.api_key.clone(),
            connection_lifetime: options.connection_lifetime,
            ended: false,
            last_rest: None,
            open_connections: 0,
        },
    ))
}

/// Adds the synthesised mark-price streams of every futures instrument the records name to
/// its venue's stream names (after the recorded ones, in instrument order; a name the
/// recordings already carry is served as recorded) and returns each instrument's flow.
fn add_synthesised_streams(
    venues: &mut [VenueState],
    records: &[Record],
    table: &InstrumentTable,
) -> HashMap<InstrumentId, Flow> {
    let mut played: Vec<BTreeSet<InstrumentId>> = vec![BTreeSet::new(); venues.len()];
    for record in records {
        if let Some(inst) = record.inst {
            played[record.venue].insert(inst);
        }
    }
    let mut flows = HashMap::new();
    for (venue, insts) in venues.iter_mut().zip(played) {
        if !venue_stats::synthesises(venue.venue) {
            continue;
        }
        for inst in insts {
            let instrument = table.get(inst);
            let mut marks = Vec::new();
            for (name, period_ms) in mark_stream_names(instrument) {
                if venue.streams.contains(&name) {
                    continue;
                }
                venue.streams.push(name.clone());
                marks.push(MarkStream {
                    stream: venue.streams.len() - 1,
                    name,
                    period_ms,
                });
            }
            flows.insert(inst, Flow::new(instrument, marks));
        }
    }
    flows
}

/// Binance's `serverShutdown` event, as its WebSocket API documents it, without the
/// `event` wrapper: the event object alone, as market streams carry their events.
fn server_shutdown_notice() -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(r#"{{"e":"serverShutdown","E":{now_ms}}}"#)
}

/// A venue's (ping interval, pong timeout), as PROTOCOLS.md gives them.
fn venue_heartbeat(venue: Venue) -> (Duration, Duration) {
    match venue {
        Venue::BinanceSpot => (Duration::from_secs(20), Duration::from_secs(60)),
        Venue::BinanceUsdm | Venue::BinanceCoinm => {
            (Duration::from_secs(180), Duration::from_secs(600))
        }
        // Bybit's heartbeat is the client's ping; the sim does not serve Bybit yet.
        Venue::BybitSpot | Venue::BybitLinear => (Duration::from_secs(20), Duration::from_secs(60)),
    }
}

/// The `stream` of a combined-stream message (the `topic` of a Bybit one), `None` for
/// anything else.
fn stream_of(json: &[u8]) -> Option<&str> {
    let rest = json
        .strip_prefix(b"{\"stream\":\"")
        .or_else(|| json.strip_prefix(b"{\"topic\":\""))?;
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// The bare payload of a combined-stream message (what `/ws` connections receive).
fn bare_payload(wrapped: &str) -> Option<&str> {
    let start = wrapped.find(",\"data\":")? + ",\"data\":".len();
    wrapped.get(start..wrapped.len().checked_sub(1)?)
}

/// Moves a sim book by one parsed event: a snapshot replaces it, a diff newer than the
/// book applies, an older one is skipped whole.
fn apply(sim_book: &mut SimBook, ev: &MarketEvent) {
    match ev.kind {
        EventKind::BookBegin(begin) => {
            let applies = match begin.kind {
                BatchKind::Snapshot => {
                    sim_book.book.clear();
                    sim_book.has_snapshot = true;
                    true
                }
                BatchKind::Diff => {
                    sim_book.has_snapshot && begin.last_update_id > sim_book.last_update_id
                }
            };
            if applies {
                sim_book.last_update_id = begin.last_update_id;
                if let Some(ts) = begin.exch_ts {
                    sim_book.last_event_ms = ts.get().div_euclid(1_000_000);
                }
            }
            sim_book.applying = applies;
        }
        EventKind::Level(level) if sim_book.applying => {
            sim_book.book.set(level.side, level.px, level.qty);
        }
        _ => {}
    }
}

async fn play(records: &[Record], sim: &Shared, pace: Pace, stop: &AtomicBool) {
    let start = Instant::now();
    let first_ts = records.first().map_or(0, |r| r.ts);
    let mut parsers: HashMap<usize, VenueParser> = HashMap::new();
    // A gap fault leaves out the next depth diff of its venue.
    let mut gap_due = vec![false; sim.borrow().venues.len()];
    for record in records {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(offset) = pace.offset(first_ts, record.ts) {
            let due = start + offset;
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
        }
        move_book(&mut sim.borrow_mut(), &mut parsers, record);
        let skip = record.book.is_some() && std::mem::take(&mut gap_due[record.venue]);
        if !skip {
            deliver(sim, record.venue, record.stream, &record.wrapped, pace).await;
        }
        let (played, marks) = {
            let mut s = sim.borrow_mut();
            s.summary.played += 1;
            s.played += 1;
            let marks = venue_stats::on_played(&mut s, record, !skip);
            (s.summary.played, marks)
        };
        // After the message that passed their boundaries: never dated ahead of it.
        for (stream, text) in &marks {
            deliver(sim, record.venue, *stream, text, pace).await;
        }
        let due: Vec<FaultKind> = sim.borrow().faults.due(played).collect();
        for kind in due {
            inject(sim, record.venue, kind, &mut gap_due);
        }
    }
}

/// Moves the sim's book by a played depth diff (every one, also one a gap fault leaves out
/// of the stream), with a parser per venue.
fn move_book(sim: &mut Sim, parsers: &mut HashMap<usize, VenueParser>, record: &Record) {
    let Some(inst) = record.book else {
        return;
    };
    let venue = sim.venues[record.venue].venue;
    let parser = parsers
        .entry(record.venue)
        .or_insert_with(|| VenueParser::new(venue, sim.table.clone()));
    if let Some(sim_book) = sim.books.get_mut(&inst) {
        let _ = parser.parse(
            record.ts,
            record.wrapped.as_bytes(),
            None,
            &mut |ev: MarketEvent| apply(sim_book, &ev),
        );
    }
}

/// Starts a fault at venue `v`: at its clients, its REST, or its next depth diff.
fn inject(sim: &Shared, v: usize, kind: FaultKind, gap_due: &mut [bool]) {
    let mut s = sim.borrow_mut();
    s.summary.faults.add(kind);
    let at_clients = match kind {
        FaultKind::Gap => {
            gap_due[v] = true;
            return;
        }
        FaultKind::RestFailure => {
            s.rest_failures += REST_FAILURES;
            return;
        }
        FaultKind::Refuse => {
            s.refuse_until[v] = Some(Instant::now() + REFUSE_FOR);
            FaultKind::Drop
        }
        kind => kind,
    };
    for c in &s.venues[v].clients {
        // A client whose queue is full misses the fault: it is lagging anyway.
        let _ = c.tx.try_send(Outgoing::Fault(at_clients));
    }
}

/// Hands one message (`wrapped`: the combined-stream text) of stream `stream` to every
/// client of venue `v` that subscribed to it.
async fn deliver(sim: &Shared, v: usize, stream: usize, wrapped: &Utf8Bytes, pace: Pace) {
    // Each client named by its stream set (the list may change while `asap` waits).
    type Target = (Rc<RefCell<BTreeSet<usize>>>, mpsc::Sender<Outgoing>, bool);
    let targets: Vec<Target> = {
        let s = sim.borrow();
        s.venues[v]
            .clients
            .iter()
            .filter(|c| c.streams.borrow().contains(&stream))
            .map(|c| (c.streams.clone(), c.tx.clone(), c.bare))
            .collect()
    };
    let mut gone = Vec::new();
    // Cut once per message, shared by every `/ws` client.
    let mut bare_message: Option<Utf8Bytes> = None;
    for (client, tx, bare) in targets {
        let message = if bare {
            bare_message
                .get_or_insert_with(|| match bare_payload(wrapped.as_str()) {
                    Some(p) => Utf8Bytes::from(p.to_string()),
                    None => wrapped.clone(),
                })
                .clone()
        } else {
            wrapped.clone()
        };
        let message = Outgoing::Text(message);
        let sent = match pace {
            Pace::Asap => tx.send(message).await.is_ok(),
            _ => tx.try_send(message).is_ok(),
        };
        if sent {
            sim.borrow_mut().summary.delivered += 1;
        } else {
            gone.push(client);
        }
    }
    if !gone.is_empty() {
        let mut s = sim.borrow_mut();
        s.summary.dropped_clients += gone.len() as u64;
        s.venues[v]
            .clients
            .retain(|c| !gone.iter().any(|g| Rc::ptr_eq(g, &c.streams)));
    }
}

/// Which streams a venue serves on a path prefix (USD-M routes by path since 2026-04).
fn serves_on(venue: Venue, prefix: &str, stream: &str) -> bool {
    let kind = stream.split('@').nth(1).unwrap_or("");
    let public = kind.starts_with("depth") || kind == "bookTicker" || kind == "trade";
    match (venue, prefix) {
        (Venue::BinanceUsdm, "/public") => public,
        (Venue::BinanceUsdm, "/market") => !public,
        _ => true,
    }
}

/// Splits a request path into (routing prefix, bare?, requested streams).
fn route(venue: Venue, path: &str) -> Option<(&'static str, bool, Vec<String>)> {
    if bybit::serves(venue) {
        return bybit::route(venue, path);
    }
    let (prefix, rest) = match venue {
        Venue::BinanceUsdm if path.starts_with("/public/") => ("/public", &path[7..]),
        Venue::BinanceUsdm if path.starts_with("/market/") => ("/market", &path[7..]),
        _ => ("", path),
    };
    if rest == "/ws" {
        return Some((prefix, true, Vec::new()));
    }
    if let Some(stream) = rest.strip_prefix("/ws/") {
        return Some((prefix, true, vec![stream.to_string()]));
    }
    if let Some(query) = rest.strip_prefix("/stream") {
        let streams = query
            .strip_prefix("?streams=")
            .map(|s| {
                s.split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        return Some((prefix, false, streams));
    }
    None
}

async fn accept_ws(
    listener: TcpListener,
    venue: usize,
    sim: Shared,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    connected: Rc<tokio::sync::Notify>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let refused = {
            let s = sim.borrow();
            s.ended || s.refuse_until[venue].is_some_and(|until| Instant::now() < until)
        };
        if refused {
            // Refused: closed before the handshake.
            drop(tcp);
            continue;
        }
        let sim = sim.clone();
        let tls = tls.clone();
        let connected = connected.clone();
        tokio::task::spawn_local(async move {
            if let Ok(stream) = accept(tcp, tls.as_ref()).await {
                let _ = ws_client(stream, venue, sim, connected).await;
            }
        });
    }
}

/// Sends one text message as fragments of the [`FRAGMENT_SIZES`] (cycled from `size_at`),
/// split on byte boundaries: a fragment may end inside a UTF-8 character.
async fn send_fragmented(
    ws: &mut tokio_tungstenite::WebSocketStream<NetStream>,
    mut text: &[u8],
    size_at: &mut usize,
) -> anyhow::Result<()> {
    let mut opcode = OpCode::Data(Data::Text);
    while !text.is_empty() {
        let size = FRAGMENT_SIZES[*size_at % FRAGMENT_SIZES.len()].min(text.len());
        *size_at += 1;
        let (part, rest) = text.split_at(size);
        text = rest;
        ws.feed(Message::Frame(Frame::message(
            part.to_vec(),
            opcode,
            text.is_empty(),
        )))
        .await?;
        opcode = OpCode::Data(Data::Continue);
    }
    ws.flush().await?;
    Ok(())
}

async fn ws_client(
    stream: NetStream,
    v: usize,
    sim: Shared,
    connected: Rc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let venue = sim.borrow().venues[v].venue;
    let mut routed = None;
    // tungstenite's callback signature fixes the large error type.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        match route(venue, &path) {
            Some(r) => {
                routed = Some(r);
                Ok(response)
            }
            None => {
                let mut refuse = ErrorResponse::new(Some(format!("no such path {path}")));
                *refuse.status_mut() = StatusCode::NOT_FOUND;
                Err(refuse)
            }
        }
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(stream, callback).await?;
    let (prefix, bare, requested) = routed.context("routed by the handshake")?;
    let _open = OpenConnection::new(&sim);
    let is_bybit = bybit::serves(venue);
    let streams = Rc::new(RefCell::new(BTreeSet::new()));
    // In paced modes a client that falls this far behind is dropped.
    let (tx, mut rx) = mpsc::channel::<Outgoing>(sim.borrow().client_buffer);
    let (ping_every, pong_within) = {
        let mut s = sim.borrow_mut();
        for name in &requested {
            subscribe(&mut s, v, prefix, name, &streams);
        }
        s.venues[v].clients.push(Client {
            streams: streams.clone(),
            bare,
            tx,
        });
        if !is_bybit {
            s.venues[v].connected += 1;
        }
        (s.ping_interval[v], s.pong_timeout[v])
    };
    // A Bybit client counts once it subscribed (play must not start before it listens).
    let mut counted = !is_bybit;
    if counted {
        connected.notify_one();
    }
    // The end of this connection's life: its lifetime, or a shutdown notice's grace.
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let mut cut_at = sim
        .borrow()
        .connection_lifetime
        .map_or(far, |l| Instant::now() + l);
    // Bybit's server does not ping: it waits for the client's pings instead.
    let ping_every = if is_bybit { pong_within } else { ping_every };
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    // When the oldest unanswered ping went out.
    let mut awaiting_pong: Option<Instant> = None;
    // Bybit: when the client last pinged.
    let mut client_pinged = Instant::now();
    // Messages still to send fragmented, and the next fragment size.
    let (mut fragmented, mut size_at) = (0u32, 0usize);
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outgoing::Text(text)) if fragmented > 0 => {
                    fragmented -= 1;
                    send_fragmented(&mut ws, text.as_bytes(), &mut size_at).await?;
                }
                Some(Outgoing::Text(text)) => ws.send(Message::Text(text)).await?,
                Some(Outgoing::Fault(FaultKind::Drop)) => break,
                Some(Outgoing::Fault(FaultKind::Malformed)) => {
                    ws.send(Message::text(r#"{"stream":"btcusdt@trade","data":{"e":"trade","#)).await?;
                }
                Some(Outgoing::Fault(FaultKind::BadUtf8)) => {
                    let bytes = b"{\"stream\":\"\xff\xfe\"}".to_vec();
                    ws.send(Message::Frame(Frame::message(bytes, OpCode::Data(Data::Text), true))).await?;
                }
                Some(Outgoing::Fault(FaultKind::Fragment)) => fragmented = FRAGMENTED_MESSAGES,
                Some(Outgoing::Fault(FaultKind::PingStorm)) => {
                    for i in 0..STORM_PINGS {
                        ws.feed(Message::Ping(i.to_be_bytes().to_vec().into())).await?;
                    }
                    ws.flush().await?;
                }
                Some(Outgoing::Fault(FaultKind::Stall)) => {
                    // Silent with the socket open: nothing sent, nothing read (so no pong
                    // either), the market's messages discarded.
                    let until = Instant::now() + STALL_FOR;
                    loop {
                        tokio::select! {
                            out = rx.recv() => if out.is_none() { break },
                            _ = tokio::time::sleep_until(until) => break,
                        }
                    }
                    break;
                }
                // Bybit sends no shutdown notice.
                Some(Outgoing::Fault(FaultKind::Shutdown)) if is_bybit => {}
                Some(Outgoing::Fault(FaultKind::Shutdown)) => {
                    ws.send(Message::text(server_shutdown_notice())).await?;
                    cut_at = cut_at.min(Instant::now() + SHUTDOWN_GRACE);
                }
                Some(Outgoing::Fault(_)) => {}
                None => {
                    let _ = ws.close(None).await;
                    // Wait for the client's close (or its end) before the socket goes: a
                    // socket closed with the client's last frames unread answers them with a
                    // reset, which can reach the client before it read our close frame, and
                    // the clean end would look like a broken connection.
                    let _ = tokio::time::timeout(CLOSE_GRACE, async {
                        while let Some(Ok(m)) = ws.next().await {
                            if matches!(m, Message::Close(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                    return Ok(());
                }
            },
            incoming = ws.next() => match incoming {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(_)) => break,
                Some(Ok(Message::Pong(_))) => awaiting_pong = None,
                Some(Ok(Message::Text(text))) if is_bybit => {
                    let reply = {
                        let mut s = sim.borrow_mut();
                        bybit::control_reply(&mut s, v, text.as_str(), &streams)
                    };
                    if reply.pinged {
                        client_pinged = Instant::now();
                    }
                    if !counted && !streams.borrow().is_empty() {
                        counted = true;
                        sim.borrow_mut().venues[v].connected += 1;
                        connected.notify_one();
                    }
                    for text in reply.texts {
                        ws.send(Message::text(text)).await?;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    let reply = {
                        let mut s = sim.borrow_mut();
                        control_reply(&mut s, v, prefix, text.as_str(), &streams)
                    };
                    ws.send(Message::text(reply)).await?;
                }
                Some(Ok(_)) => {}
            },
            // As Binance at 24 h: the connection is dropped, no close frame.
            _ = tokio::time::sleep_until(cut_at) => break,
            _ = ping.tick() => {
                if is_bybit {
                    if client_pinged.elapsed() > pong_within {
                        sim.borrow_mut().summary.dropped_clients += 1;
                        break;
                    }
                    continue;
                }
                if awaiting_pong.is_some_and(|sent| sent.elapsed() > pong_within) {
                    sim.borrow_mut().summary.dropped_clients += 1;
                    break;
                }
                awaiting_pong.get_or_insert_with(Instant::now);
                ws.send(Message::Ping(b"flowcore-sim".as_slice().into())).await?;
            }
        }
    }
    // Dropped or closed: forget the client so the market stops queueing for it. (A drop
    // fault ends here too: the socket goes without a close frame.)
    let mut s = sim.borrow_mut();
    s.venues[v]
        .clients
        .retain(|c| !Rc::ptr_eq(&c.streams, &streams));
    Ok(())
}

fn subscribe(
    sim: &mut Sim,
    v: usize,
    prefix: &str,
    name: &str,
    streams: &Rc<RefCell<BTreeSet<usize>>>,
) {
    let venue = sim.venues[v].venue;
    if !serves_on(venue, prefix, name) {
        return;
    }
    if let Some(i) = sim.venues[v].streams.iter().position(|s| s == name) {
        streams.borrow_mut().insert(i);
    }
}

/// Answers `SUBSCRIBE`, `UNSUBSCRIBE` and `LIST_SUBSCRIPTIONS` as Binance does.
fn control_reply(
    sim: &mut Sim,
    v: usize,
    prefix: &str,
    text: &str,
    streams: &Rc<RefCell<BTreeSet<usize>>>,
) -> String {
    let request: serde_json::Value = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(_) => return r#"{"error":{"code":3,"msg":"Invalid JSON"},"id":null}"#.to_string(),
    };
    let id = request
        .get("id")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let params: Vec<String> = request
        .get("params")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match request.get("method").and_then(|m| m.as_str()) {
        Some("SUBSCRIBE") => {
            for name in &params {
                subscribe(sim, v, prefix, name, streams);
            }
            format!("{{\"result\":null,\"id\":{id}}}")
        }
        Some("UNSUBSCRIBE") => {
            for name in &params {
                if let Some(i) = sim.venues[v].streams.iter().position(|s| s == name) {
                    streams.borrow_mut().remove(&i);
                }
            }
            format!("{{\"result\":null,\"id\":{id}}}")
        }
        Some("LIST_SUBSCRIPTIONS") => {
            let names: Vec<String> = streams
                .borrow()
                .iter()
                .map(|&i| format!("\"{}\"", sim.venues[v].streams[i]))
                .collect();
            format!("{{\"result\":[{}],\"id\":{id}}}", names.join(","))
        }
        _ => format!(
            "{{\"error\":{{\"code\":2,\"msg\":\"Invalid request: unknown method\"}},\"id\":{id}}}"
        ),
    }
}

async fn accept_rest(
    listener: TcpListener,
    v: usize,
    sim: Shared,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let sim = sim.clone();
        let tls = tls.clone();
        tokio::task::spawn_local(async move {
            if let Ok(stream) = accept(tcp, tls.as_ref()).await {
                let _ = rest_client(stream, v, sim).await;
            }
        });
    }
}

async fn rest_client(mut stream: NetStream, v: usize, sim: Shared) -> anyhow::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await?;
        if n == 0 || head.len() > 8192 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or("/").to_string();
    let api_key = head.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-mbx-apikey")
            .then(|| value.trim().to_string())
    });
    let failure = {
        let mut s = sim.borrow_mut();
        s.last_rest = Some(Instant::now());
        let failure = s.rest_failures;
        s.rest_failures = failure.saturating_sub(1);
        failure
    };
    if failure % 2 == 0 && failure > 0 {
        tokio::time::sleep(SLOW_REST).await;
    }
    let (status, body) = if failure % 2 == 1 {
        (
            "503 Service Unavailable",
            r#"{"code":-1001,"msg":"Internal error; unable to process your request."}"#.to_string(),
        )
    } else {
        let mut s = sim.borrow_mut();
        rest_response(&mut s, v, &target, api_key.as_deref())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}

/// The REST answer for `target`: a depth snapshot, the trade history or the open interest.
fn rest_response(
    sim: &mut Sim,
    v: usize,
    target: &str,
    api_key: Option<&str>,
) -> (&'static str, String) {
    let venue = sim.venues[v].venue;
    let Some(m) = market(venue) else {
        return ("404 Not Found", String::new());
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = Query(query);
    if path == m.depth_path {
        snapshot_response(sim, v, &query)
    } else if path == m.history_path {
        let key_ok = match (&sim.api_key, api_key) {
            (_, None) | (_, Some("")) => !m.history_needs_key,
            (Some(want), Some(got)) => want == got,
            (None, Some(_)) => true,
        };
        if !key_ok {
            return (
                "401 Unauthorized",
                r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#
                    .to_string(),
            );
        }
        history_response(sim, v, &query)
    } else if m.open_interest_path == Some(path) {
        open_interest_response(sim, v, &query)
    } else {
        (
            "404 Not Found",
            r#"{"code":-1,"msg":"Not found."}"#.to_string(),
        )
    }
}

/// A query string's parameters.
struct Query<'a>(&'a str);

impl Query<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .split('&')
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// The instrument a REST query's `symbol` names, or Binance's answer to an unknown one.
fn instrument_of(
    sim: &Sim,
    venue: Venue,
    query: &Query<'_>,
) -> Result<InstrumentId, (&'static str, String)> {
    query
        .get("symbol")
        .and_then(|s| sim.table.find(venue, s.as_bytes()))
        .ok_or_else(|| {
            (
                "400 Bad Request",
                r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_string(),
            )
        })
}

/// The trade history from `fromId` (`/api/v3/historicalTrades?symbol=BTCUSDT&fromId=1`):
/// trades already played, at most `limit` (500 by default, 1000 at most).
fn history_response(sim: &mut Sim, v: usize, query: &Query<'_>) -> (&'static str, String) {
    let venue = sim.venues[v].venue;
    let inst = match instrument_of(sim, venue, query) {
        Ok(inst) => inst,
        Err(refusal) => return refusal,
    };
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(500)
        .clamp(1, 1000);
    let played = sim.played;
    let list = sim.trades.get(&inst).map_or(&[][..], Vec::as_slice);
    let visible = list.iter().filter(|(at, _)| *at < played);
    let from = query.get("fromId").and_then(|f| f.parse::<u64>().ok());
    let chosen: Vec<&Trade> = match from {
        Some(from) => visible
            .filter(|(_, t)| t.trade_id >= from)
            .take(limit)
            .map(|(_, t)| t)
            .collect(),
        // Without fromId: the most recent trades.
        None => {
            let all: Vec<&Trade> = visible.map(|(_, t)| t).collect();
            all[all.len().saturating_sub(limit)..].to_vec()
        }
    };
    let i = sim.table.get(inst);
    let mut body = String::from("[");
    for (n, t) in chosen.iter().enumerate() {
        let sep = if n == 0 { "" } else { "," };
        let _ = write!(
            body,
            "{sep}{{\"id\":{},\"price\":\"{}\",\"qty\":\"{}\",\"quoteQty\":\"{}\",\"time\":{},\"isBuyerMaker\":{}{}}}",
            t.trade_id,
            Fixed::new(t.px.into(), i.price_scale),
            Fixed::new(t.qty.into(), i.size_scale),
            Fixed::new(i128::from(t.px) * i128::from(t.qty), i.price_scale + i.size_scale),
            t.trade_ts / 1_000_000,
            t.aggressor == Aggressor::Sell,
            if venue == Venue::BinanceSpot { ",\"isBestMatch\":true" } else { "" },
        );
    }
    body.push(']');
    sim.summary.histories += 1;
    ("200 OK", body)
}

/// The open interest (`/fapi/v1/openInterest?symbol=BTCUSDT`, `/dapi/v1/openInterest`), as
/// [`crate::venue_stats`] makes it. Before any message of the symbol was handed out there is
/// no time to date it by: 503 with Binance's "try again" error (-1001), as for a request
/// its backend could not answer, so a poller retries at its next turn.
fn open_interest_response(sim: &mut Sim, v: usize, query: &Query<'_>) -> (&'static str, String) {
    let venue = sim.venues[v].venue;
    let inst = match instrument_of(sim, venue, query) {
        Ok(inst) => inst,
        Err(refusal) => return refusal,
    };
    let answer = sim
        .flows
        .get(&inst)
        .and_then(|flow| open_interest_answer(venue, sim.table.get(inst), flow));
    let Some(body) = answer else {
        return (
            "503 Service Unavailable",
            r#"{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}"#
                .to_string(),
        );
    };
    sim.summary.open_interests += 1;
    ("200 OK", body)
}

/// The REST depth snapshot (`/api/v3/depth?symbol=BTCUSDT&limit=1000`).
fn snapshot_response(sim: &mut Sim, v: usize, query: &Query<'_>) -> (&'static str, String) {
    let venue = sim.venues[v].venue;
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 5000);
    let inst = match instrument_of(sim, venue, query) {
        Ok(inst) => inst,
        Err(refusal) => return refusal,
    };
    let Some(sim_book) = sim.books.get(&inst).filter(|b| b.has_snapshot) else {
        return (
            "503 Service Unavailable",
            r#"{"code":-1,"msg":"No book for this symbol in the recordings."}"#.to_string(),
        );
    };
    let i = sim.table.get(inst);
    let mut body = format!("{{\"lastUpdateId\":{}", sim_book.last_update_id);
    if venue != Venue::BinanceSpot {
        let _ = write!(body, ",\"E\":{0},\"T\":{0}", sim_book.last_event_ms);
    }
    for (key, side) in [("bids", BookSide::Bid), ("asks", BookSide::Ask)] {
        let _ = write!(body, ",\"{key}\":[");
        for (n, level) in sim_book.book.levels(side).take(limit).enumerate() {
            let sep = if n == 0 { "" } else { "," };
            let _ = write!(
                body,
                "{sep}[\"{}\",\"{}\"]",
                Fixed::new(level.px.into(), i.price_scale),
                Fixed::new(level.qty.into(), i.size_scale)
            );
        }
        body.push(']');
    }
    body.push('}');
    sim.summary.snapshots += 1;
    ("200 OK", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultPlan;
    use flowcore_feeds::recording::Source;

    #[test]
    fn routes_and_payloads() {
        assert_eq!(
            route(
                Venue::BinanceUsdm,
                "/public/stream?streams=btcusdt@trade/btcusdt@depth@0ms"
            ),
            Some((
                "/public",
                false,
                vec!["btcusdt@trade".into(), "btcusdt@depth@0ms".into()]
            ))
        );
        assert_eq!(
            route(Venue::BinanceSpot, "/ws/btcusdt@trade"),
            Some(("", true, vec!["btcusdt@trade".into()]))
        );
        assert_eq!(route(Venue::BinanceSpot, "/ws"), Some(("", true, vec![])));
        assert_eq!(route(Venue::BinanceSpot, "/nope"), None);
        assert!(!serves_on(
            Venue::BinanceUsdm,
            "/market",
            "btcusdt@depth@0ms"
        ));
        assert!(serves_on(Venue::BinanceUsdm, "/market", "btcusdt@aggTrade"));
        assert!(serves_on(Venue::BinanceSpot, "", "btcusdt@aggTrade"));
        let wrapped = r#"{"stream":"btcusdt@trade","data":{"e":"trade","t":1}}"#;
        assert_eq!(stream_of(wrapped.as_bytes()), Some("btcusdt@trade"));
        assert_eq!(bare_payload(wrapped), Some(r#"{"e":"trade","t":1}"#));
        assert_eq!(stream_of(br#"{"lastUpdateId":1}"#), None);
        // Synthesised mark prices route as Binance routes them: `/market`, never `/public`.
        assert!(!serves_on(
            Venue::BinanceUsdm,
            "/public",
            "btcusdt@markPrice@1s"
        ));
        assert!(serves_on(
            Venue::BinanceUsdm,
            "/market",
            "btcusdt@markPrice@1s"
        ));
        assert!(serves_on(Venue::BinanceUsdm, "", "btcusdt@markPrice"));
        assert!(serves_on(
            Venue::BinanceCoinm,
            "",
            "btcusd_perp@markPrice@1s"
        ));
    }

    /// The first `lines` lines of a bundled recording, in memory.
    fn head(venue: Venue, name: &str, lines: usize) -> Input {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/binance")
            .join(name);
        let all = RecordingReader::read_all(&path).expect("a bundled recording");
        let text = String::from_utf8(all).expect("UTF-8");
        let mut kept = String::new();
        for line in text.lines().take(lines) {
            kept.push_str(line);
            kept.push('\n');
        }
        Input {
            venue,
            source: Source::Memory(kept.into_bytes().into()),
        }
    }

    fn options(inputs: Vec<Input>) -> SimOptions {
        SimOptions {
            inputs,
            pace: Pace::Asap,
            bind: "127.0.0.1".parse().expect("an address"),
            ping_interval: None,
            pong_timeout: None,
            wait_clients: 0,
            tls: None,
            table: InstrumentTable::bundled_defaults(),
            stop: Arc::default(),
            client_buffer: DEFAULT_CLIENT_BUFFER,
            faults: FaultPlan::default(),
            api_key: None,
            connection_lifetime: None,
        }
    }

    /// Plays bundled futures recordings step by step as `play` does, a depth diff in 40 left
    /// out as by a gap fault, and checks after every step that the mark prices due and the
    /// open interest parse into statistics dated no later than the newest `E` handed out,
    /// one mark price per boundary passed.
    #[test]
    fn synthesised_statistics_are_never_dated_ahead_of_the_stream() {
        for (venue, name, symbol, oi_path) in [
            (
                Venue::BinanceUsdm,
                "usdm_btcusdt_20240808.txt.gz",
                "BTCUSDT",
                "/fapi/v1/openInterest",
            ),
            (
                Venue::BinanceCoinm,
                "coinm_btcusd_perp_20240808.txt.gz",
                "BTCUSD_PERP",
                "/dapi/v1/openInterest",
            ),
        ] {
            let (records, mut sim) = load(&options(vec![head(venue, name, 3000)])).unwrap();
            let lower = symbol.to_ascii_lowercase();
            let streams = &sim.venues[0].streams;
            let one_s = streams
                .iter()
                .position(|s| *s == format!("{lower}@markPrice@1s"));
            let three_s = streams
                .iter()
                .position(|s| *s == format!("{lower}@markPrice"));
            let (one_s, three_s) = (one_s.expect("1 s stream"), three_s.expect("3 s stream"));
            let mut parsers = HashMap::new();
            let mut parser = VenueParser::new(venue, sim.table.clone());
            let target = format!("{oi_path}?symbol={symbol}");
            let (mut first, mut watermark): (Option<i64>, Option<i64>) = (None, None);
            let mut last_e: HashMap<usize, i64> = HashMap::new();
            let mut counts: HashMap<usize, i64> = HashMap::new();
            let mut diffs = 0;
            for record in &records {
                move_book(&mut sim, &mut parsers, record);
                let left_out = record.book.is_some() && {
                    diffs += 1;
                    diffs % 40 == 0
                };
                if let (false, Some(t)) = (left_out, record.exch_ms) {
                    first = first.or(Some(t));
                    watermark = Some(watermark.map_or(t, |w| w.max(t)));
                }
                for (stream, text) in venue_stats::on_played(&mut sim, record, !left_out) {
                    let period = if stream == one_s { 1000 } else { 3000 };
                    assert!(stream == one_s || stream == three_s);
                    let mut fields = Vec::new();
                    let parsed = parser.parse(0, text.as_bytes(), None, &mut |ev| {
                        let EventKind::Stat(stat) = ev.kind else {
                            panic!("not a statistic: {ev:?}");
                        };
                        let e_ms = stat.exch_ts.expect("dated").get() / 1_000_000;
                        assert!(Some(e_ms) <= watermark, "{text} ahead of {watermark:?}");
                        assert_eq!(e_ms % period, 0, "{text}");
                        let last = last_e.insert(stream, e_ms);
                        assert!(last.is_none_or(|l| l == e_ms || l + period == e_ms));
                        fields.push(stat.field);
                    });
                    assert!(parsed.is_ok(), "{text}: {parsed:?}");
                    assert_eq!(fields.len(), 4, "{text}");
                    *counts.entry(stream).or_default() += 1;
                }
                let (status, body) = rest_response(&mut sim, 0, &target, None);
                let Some(watermark) = watermark else {
                    assert_eq!(status, "503 Service Unavailable");
                    continue;
                };
                assert_eq!(status, "200 OK", "{body}");
                let mut got = None;
                parser
                    .parse(0, body.as_bytes(), None, &mut |ev| {
                        if let EventKind::Stat(stat) = ev.kind {
                            got = Some((stat.field, stat.exch_ts.map(|t| t.get() / 1_000_000)));
                        }
                    })
                    .unwrap();
                assert_eq!(
                    got,
                    Some((
                        flowcore_core::event::StatField::OpenInterest,
                        Some(watermark)
                    )),
                    "{body}"
                );
            }
            // One message per boundary passed after the first message handed out.
            let (first, last) = (first.unwrap(), watermark.unwrap());
            for (stream, period) in [(one_s, 1000), (three_s, 3000)] {
                let passed = last.div_euclid(period) - first.div_euclid(period);
                assert!(passed >= 3, "{name}: a few boundaries at least");
                assert_eq!(counts.get(&stream).copied().unwrap_or(0), passed, "{name}");
            }
        }
    }
}
