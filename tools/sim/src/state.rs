//! The simulator's state, shared by its tasks on one thread (no locks): the venues and
//! their clients, the sim's own books, the trades played so far, the synthesised futures
//! statistics ([`crate::venue_stats`]), the fault plan.

use crate::faults::{FaultCounts, FaultKind, FaultPlan};
use crate::market_flow::Flow;
use flowcore_core::book::OrderBook;
use flowcore_core::event::Trade;
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What the simulator did, printed when it ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimSummary {
    /// Messages played.
    pub played: u64,
    /// Messages handed to clients.
    pub delivered: u64,
    /// Clients dropped for not keeping up (paced modes) or not answering pings.
    pub dropped_clients: u64,
    /// REST snapshots served.
    pub snapshots: u64,
    /// REST trade-history answers served.
    pub histories: u64,
    /// Mark-price messages synthesised (Binance futures `markPrice@1s` and `markPrice`).
    pub marks: u64,
    /// REST open-interest answers served.
    pub open_interests: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
}

/// One recorded stream message.
pub(crate) struct Record {
    pub(crate) ts: i64,
    pub(crate) venue: usize,
    /// Index into that venue's stream names.
    pub(crate) stream: usize,
    /// The combined-stream message as recorded.
    pub(crate) wrapped: Utf8Bytes,
    /// Set when the message is a depth diff: the instrument whose sim book it moves.
    pub(crate) book: Option<InstrumentId>,
    /// Set when the message is a trade (also copied into [`Sim::trades`] after loading).
    pub(crate) trade: Option<(InstrumentId, Trade)>,
    /// The instrument the message is about, where it names one.
    pub(crate) inst: Option<InstrumentId>,
    /// The largest exchange time (ms) of its events, as the engine reads them
    /// (`MarketEvent::exch_ts`): what it moves a client's watermark to.
    pub(crate) exch_ms: Option<i64>,
}

/// The sim's own book of one instrument.
pub(crate) struct SimBook {
    pub(crate) book: OrderBook,
    pub(crate) last_update_id: u64,
    /// Exchange time of the last diff played (futures snapshots carry it as `E`/`T`).
    pub(crate) last_event_ms: i64,
    pub(crate) has_snapshot: bool,
    /// Inside a batch that applies (between its `BookBegin` and `BookEnd`).
    pub(crate) applying: bool,
}

impl SimBook {
    pub(crate) fn new() -> Self {
        Self {
            book: OrderBook::new(),
            last_update_id: 0,
            last_event_ms: 0,
            has_snapshot: false,
            applying: false,
        }
    }
}

pub(crate) struct VenueState {
    pub(crate) venue: Venue,
    pub(crate) streams: Vec<String>,
    pub(crate) clients: Vec<Client>,
    pub(crate) connected: usize,
}

pub(crate) struct Client {
    /// Streams delivered (indices into the venue's names).
    pub(crate) streams: Rc<RefCell<BTreeSet<usize>>>,
    /// Bare payloads (`/ws`) instead of the combined wrapper (`/stream`).
    pub(crate) bare: bool,
    pub(crate) tx: mpsc::Sender<Outgoing>,
}

/// What the market hands a client's connection task.
pub(crate) enum Outgoing {
    /// A stream message.
    Text(Utf8Bytes),
    /// A fault to act out on this connection.
    Fault(FaultKind),
}

pub(crate) struct Sim {
    pub(crate) venues: Vec<VenueState>,
    pub(crate) books: HashMap<InstrumentId, SimBook>,
    pub(crate) table: InstrumentTable,
    pub(crate) summary: SimSummary,
    pub(crate) ping_interval: Vec<Duration>,
    pub(crate) pong_timeout: Vec<Duration>,
    pub(crate) client_buffer: usize,
    /// Messages played so far.
    pub(crate) played: usize,
    /// Per instrument, its trades in id order with the index of the record that carries
    /// each: history serves those already played.
    pub(crate) trades: HashMap<InstrumentId, Vec<(usize, Trade)>>,
    /// Per futures instrument played: what the synthesised statistics are made of.
    pub(crate) flows: HashMap<InstrumentId, Flow>,
    pub(crate) faults: FaultPlan,
    /// Per venue: connections are refused until then.
    pub(crate) refuse_until: Vec<Option<Instant>>,
    /// REST requests still to fail (odd: 503, even: slow).
    pub(crate) rest_failures: u32,
    pub(crate) api_key: Option<String>,
    pub(crate) connection_lifetime: Option<Duration>,
    /// The recordings are played: WebSocket connections are refused, REST still answers.
    pub(crate) ended: bool,
    /// When the last REST request came.
    pub(crate) last_rest: Option<Instant>,
    /// WebSocket connections open now (their tasks running).
    pub(crate) open_connections: usize,
}

/// Counts a connection task as open while it lives, whichever way it ends.
pub(crate) struct OpenConnection(Shared);

impl OpenConnection {
    pub(crate) fn new(sim: &Shared) -> Self {
        sim.borrow_mut().open_connections += 1;
        Self(sim.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.borrow_mut().open_connections -= 1;
    }
}

pub(crate) type Shared = Rc<RefCell<Sim>>;
