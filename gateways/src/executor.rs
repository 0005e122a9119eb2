//! The executor thread's side: every decision journaled, every order's intent journaled
//! (and flushed) before it is sent, the order carried out by one of three backends, and
//! what became of it journaled and reported back to the risk engine.
//!
//! - `freqtrade`: FreqTrade's REST API ([`crate::freqtrade`]).
//! - `paper`: [`PaperBroker`] fills against the quote the risk engine saw.
//! - `log`: decisions and intents only; entries are taken as filled at the price they were
//!   sized at (so limits and exits behave as they would), exits as flat.
//!
//! At start, [`Executor::reconcile_start`] settles what the journal left open or in doubt
//! against the backend (FreqTrade's `/status` and trade list, by `entry_tag`), so no
//! signal enters twice and no open position is forgotten.

use crate::config::{ExecutorKind, GatewayConfig};
use crate::freqtrade::{FreqtradeClient, FreqtradeError, Trade};
use crate::freqtrade_events::{FreqtradeEvents, TradeEvent};
use crate::journal::{Journal, JournalError, JournalKey, JournalRecord, JournalState};
use crate::market::Slot;
use crate::order::{Decision, Order, OrderKind, Outcome, Side, SignalKey};
use crate::paper::{PaperBroker, PaperPosition};
use crate::risk::Position;
use flowcore_core::indicators::Value;
use flowcore_core::strategy::Action;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The gateway's wall clock, ns since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Names of the symbol slots, shared with the signal thread, which adds to it only when
/// a bus opens.
pub type SlotNames = Arc<RwLock<Vec<(String, u8, u8)>>>;

/// The FreqTrade backend's parts: client, order type, open trades, exits in flight.
type FreqtradeParts<'a> = (
    &'a mut FreqtradeClient,
    &'a str,
    &'a mut Vec<(SignalKey, u64)>,
    &'a mut Vec<(SignalKey, u64, JournalKey)>,
);

enum Backend {
    Log,
    Paper(PaperBroker),
    Freqtrade {
        client: Box<FreqtradeClient>,
        ordertype: String,
        /// Our open trades: entry signal -> FreqTrade trade id.
        trades: Vec<(SignalKey, u64)>,
        /// Exits sent and not yet seen closed.
        closing: Vec<(SignalKey, u64, JournalKey)>,
        reconcile_every: Duration,
        /// Last reconciliation with `/status`; `None`: due now.
        reconciled: Option<Instant>,
        /// FreqTrade's message websocket while it is up (`fills = "ws"`).
        events: Option<Box<FreqtradeEvents>>,
        /// `fills = "ws"`: keep reconnecting it.
        events_wanted: bool,
        /// Next connection attempt.
        events_retry: Instant,
        /// Socket connect and handshake timeout.
        timeout: Duration,
    },
}

/// Between websocket connection attempts.
const EVENTS_RETRY: Duration = Duration::from_secs(2);

/// What the executor counted.
#[derive(Debug, Clone)]
pub struct ExecutorCounters {
    /// Decisions received.
    pub decisions: u64,
    /// Requests sent (orders handed to the backend).
    pub orders_sent: u64,
    /// Order outcomes by name (`opened`, `closed`, `refused`, `not_running`, ...).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Rejections by reason name.
    pub rejections: BTreeMap<&'static str, u64>,
    /// Signal publish (its `local_ns`) to the request's last byte written, ns.
    pub publish_to_wire: Histogram<u64>,
    /// Gateway read to the request's last byte written, ns.
    pub read_to_wire: Histogram<u64>,
    /// FreqTrade request round trips, ns.
    pub round_trip: Histogram<u64>,
    /// Gateway read to the executor thread taking the decision (the hand-off), ns.
    pub handoff: Histogram<u64>,
    /// Trades FreqTrade holds that the journal does not know (not ours, or a lost journal).
    pub foreign_open: u64,
    /// Journal write failures (each also logged).
    pub journal_errors: u64,
    /// FreqTrade websocket messages by type, summed over connections.
    pub events: BTreeMap<String, u64>,
    /// FreqTrade websocket connections made, and lost or refused.
    pub events_connects: u64,
    /// See `events_connects`.
    pub events_lost: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds")
}

/// Where a test makes the gateway die (`FLOWCORE_GATEWAY_CRASH=intent|request`): right
/// after an entry's intent is journaled and before its request is sent, or right after
/// the request's last byte is written and before the answer is read. `abort()`, as a
/// power cut or `kill -9` would leave it: nothing after that point is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    AfterIntent,
    AfterRequest,
}

fn crash_point() -> Option<CrashPoint> {
    match std::env::var("FLOWCORE_GATEWAY_CRASH").ok()?.as_str() {
        "intent" => Some(CrashPoint::AfterIntent),
        "request" => Some(CrashPoint::AfterRequest),
        _ => None,
    }
}

/// See the module docs.
pub struct Executor {
    crash: Option<CrashPoint>,
    backend: Backend,
    journal: Journal,
    bus_names: Vec<String>,
    pairs: Vec<String>,
    slot_names: SlotNames,
    /// Counts.
    pub counters: ExecutorCounters,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn text(v: Value) -> String {
    v.to_string()
}

fn parse_value(s: &str) -> Value {
    s.parse().unwrap_or(Value::ZERO)
}

fn f64_value(x: f64) -> Value {
    if x.is_finite() {
        Value::from_num(x)
    } else {
        Value::ZERO
    }
}

/// Why an executor could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// FreqTrade refused or is unreachable.
    #[error("freqtrade: {0}")]
    Freqtrade(#[from] FreqtradeError),
    /// The journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl Executor {
    /// The configured backend; FreqTrade is logged into and its config checked here.
    ///
    /// # Errors
    /// FreqTrade unreachable, credentials refused, force entry disabled.
    pub fn new(
        config: &GatewayConfig,
        journal: Journal,
        slot_names: SlotNames,
    ) -> Result<Self, StartError> {
        let backend = match config.executor {
            ExecutorKind::Log => Backend::Log,
            ExecutorKind::Paper => Backend::Paper(PaperBroker::new(&config.paper)),
            ExecutorKind::Freqtrade => {
                let ft = config.freqtrade.as_ref().expect("checked by the config");
                let mut client = FreqtradeClient::new(ft)?;
                let bot = client.check_config()?;
                eprintln!(
                    "gateway: freqtrade at {}: state {}, {} mode, shorts {}, stake currency {}",
                    ft.url,
                    bot.state,
                    bot.trading_mode,
                    if bot.short_allowed {
                        "allowed"
                    } else {
                        "not allowed"
                    },
                    bot.stake_currency
                );
                if bot.state != "running" {
                    eprintln!(
                        "gateway: warning: freqtrade is {}: entries will be refused until it runs",
                        bot.state
                    );
                }
                Backend::Freqtrade {
                    client: Box::new(client),
                    ordertype: ft.ordertype.clone(),
                    trades: Vec::new(),
                    closing: Vec::new(),
                    reconcile_every: Duration::from_secs(ft.reconcile_s),
                    reconciled: Some(Instant::now()),
                    events: None,
                    events_wanted: ft.fills_ws,
                    events_retry: Instant::now(),
                    timeout: Duration::from_millis(ft.timeout_ms),
                }
            }
        };
        let mut executor = Self {
            crash: crash_point(),
            backend,
            journal,
            bus_names: config
                .buses
                .iter()
                .map(|b| b.display().to_string())
                .collect(),
            pairs: config.pairs.iter().map(|p| p.pair.clone()).collect(),
            slot_names,
            counters: ExecutorCounters {
                decisions: 0,
                orders_sent: 0,
                outcomes: BTreeMap::new(),
                rejections: BTreeMap::new(),
                publish_to_wire: histogram(),
                read_to_wire: histogram(),
                round_trip: histogram(),
                handoff: histogram(),
                foreign_open: 0,
                journal_errors: 0,
                events: BTreeMap::new(),
                events_connects: 0,
                events_lost: 0,
            },
        };
        // Before the journal is reconciled: a fill from now on is not missed.
        executor.connect_events();
        Ok(executor)
    }

    /// Connects FreqTrade's message websocket when wanted, down, and due.
    fn connect_events(&mut self) {
        let Backend::Freqtrade {
            client,
            events,
            events_wanted: true,
            events_retry,
            timeout,
            reconciled,
            ..
        } = &mut self.backend
        else {
            return;
        };
        if events.is_some() || Instant::now() < *events_retry {
            return;
        }
        *events_retry = Instant::now() + EVENTS_RETRY;
        let connected = client
            .events_token()
            .map_err(|e| e.to_string())
            .and_then(|token| {
                FreqtradeEvents::connect(client.addr(), &token, *timeout).map_err(|e| e.to_string())
            });
        match connected {
            Ok(e) => {
                eprintln!(
                    "gateway: freqtrade events: subscribed on ws://{}/api/v1/message/ws",
                    client.addr()
                );
                *events = Some(Box::new(e));
                self.counters.events_connects += 1;
                if self.counters.events_connects > 1 {
                    // Fills may have gone by while it was down: reconcile at once.
                    *reconciled = None;
                }
            }
            Err(e) => {
                self.counters.events_lost += 1;
                eprintln!(
                    "gateway: freqtrade events: {e}; polling /trade and /status, retrying in {}s",
                    EVENTS_RETRY.as_secs()
                );
            }
        }
    }

    /// Drains FreqTrade's message websocket (call often; never blocks): exits filled,
    /// trades FreqTrade closed itself, cancelled entries and exits, as outcomes for the
    /// risk engine.
    pub fn poll_events(&mut self) -> Vec<Outcome> {
        self.connect_events();
        let Backend::Freqtrade {
            events: Some(ev), ..
        } = &mut self.backend
        else {
            return Vec::new();
        };
        let mut got = Vec::new();
        if let Err(e) = ev.poll(&mut got, &mut self.counters.events) {
            self.counters.events_lost += 1;
            eprintln!("gateway: freqtrade events: {e}; polling until it reconnects");
            if let Backend::Freqtrade { events, .. } = &mut self.backend {
                *events = None;
            }
        }
        got.into_iter()
            .filter_map(|e| self.trade_event(e))
            .collect()
    }

    fn trade_event(&mut self, e: TradeEvent) -> Option<Outcome> {
        let (_, _, trades, closing) = self.ft();
        let ours = |id: u64| trades.iter().find(|t| t.1 == id).map(|t| t.0);
        match e {
            TradeEvent::EntryFill {
                trade_id,
                amount,
                open_rate,
            } => {
                let entry = ours(trade_id)?;
                let (qty, price) = (f64_value(amount), f64_value(open_rate));
                eprintln!(
                    "gateway: signal {}: trade {trade_id} entry filled ({qty} at {price})",
                    entry.id
                );
                Some(Outcome::Opened { entry, qty, price })
            }
            TradeEvent::ExitFill {
                trade_id,
                profit,
                final_exit: true,
            } => {
                let entry = ours(trade_id)?;
                trades.retain(|t| t.1 != trade_id);
                let exit = closing
                    .iter()
                    .position(|c| c.1 == trade_id)
                    .map(|i| closing.remove(i).2);
                let pnl = f64_value(profit);
                match exit {
                    Some(key) => {
                        self.result(&key, true, Some(trade_id), None, Some(pnl), None);
                        self.count("closed");
                    }
                    None => self.closed_outside(entry, trade_id, "closed in FreqTrade (exit_fill)"),
                }
                Some(Outcome::Closed { entry, pnl })
            }
            // A partial exit: the trade stays open.
            TradeEvent::ExitFill { .. } => None,
            TradeEvent::ExitCancel { trade_id } => {
                let i = closing.iter().position(|c| c.1 == trade_id)?;
                let (entry, _, key) = closing.remove(i);
                self.count("exit_cancelled");
                eprintln!(
                    "gateway: signal {}: FreqTrade cancelled the exit of trade {trade_id}; still open",
                    entry.id
                );
                self.fail(&key, Some(trade_id), "exit cancelled in FreqTrade".into());
                Some(Outcome::ExitFailed { entry })
            }
            TradeEvent::EntryCancel { trade_id } => {
                let entry = ours(trade_id)?;
                // A cancel that left part of the entry filled keeps the trade.
                let (client, ..) = self.ft();
                if !matches!(client.trade(trade_id), Ok(None)) {
                    return None;
                }
                self.ft().2.retain(|t| t.1 != trade_id);
                self.closed_outside(entry, trade_id, "entry cancelled in FreqTrade, unfilled");
                Some(Outcome::Closed {
                    entry,
                    pnl: Value::ZERO,
                })
            }
        }
    }

    /// A trade of ours that FreqTrade closed or deleted without our exit.
    fn closed_outside(&mut self, entry: SignalKey, trade_id: u64, why: &str) {
        eprintln!("gateway: trade {trade_id} (signal {}): {why}", entry.id);
        let key = self.key(entry);
        self.write(&JournalRecord::Settled {
            entry: key,
            opened: true,
            why: why.into(),
            ts_ns: now_ns(),
        });
        self.count("closed_outside");
    }

    /// FreqTrade's balance, when the backend is FreqTrade and it answers.
    pub fn balance(&mut self) -> Option<f64> {
        match &mut self.backend {
            Backend::Freqtrade { client, .. } => client.balance().ok().flatten(),
            _ => None,
        }
    }

    fn key(&self, k: SignalKey) -> JournalKey {
        JournalKey {
            bus: self
                .bus_names
                .get(k.bus as usize)
                .cloned()
                .unwrap_or_default(),
            epoch: k.epoch,
            id: k.id,
        }
    }

    fn signal_key(&self, k: &JournalKey) -> Option<SignalKey> {
        let bus = self.bus_names.iter().position(|b| *b == k.bus)?;
        Some(SignalKey {
            bus: bus as u16,
            epoch: k.epoch,
            id: k.id,
        })
    }

    fn write(&mut self, r: &JournalRecord) {
        if let Err(e) = self.journal.append(r) {
            self.counters.journal_errors += 1;
            eprintln!("gateway: journal write failed: {e}");
        }
    }

    fn count(&mut self, outcome: &'static str) {
        *self.counters.outcomes.entry(outcome).or_insert(0) += 1;
    }

    fn slot_name(&self, slot: Slot) -> (String, u8) {
        self.slot_names
            .read()
            .ok()
            .and_then(|n| n.get(slot as usize).map(|(s, p, _)| (s.clone(), *p)))
            .unwrap_or_default()
    }

    /// Settles the journal's open and in-doubt entries against the backend; returns the
    /// positions the risk engine must hold (`slot_of` names a slot for a `venue:SYMBOL`).
    pub fn reconcile_start(
        &mut self,
        state: &JournalState,
        mut slot_of: impl FnMut(&str) -> Slot,
    ) -> Vec<Position> {
        let now = now_ns();
        let (open_trades, all_trades) = match &mut self.backend {
            Backend::Freqtrade { client, .. } => {
                let open = match client.status() {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!(
                            "gateway: reconcile: /status failed ({e}); keeping the journal's view"
                        );
                        return self.restore_all(state, &mut slot_of);
                    }
                };
                (open, closed_trades(client))
            }
            _ => (Vec::new(), Vec::new()),
        };
        let mut restored = Vec::new();
        let mut claimed: Vec<u64> = Vec::new();
        for (key, entry) in state.open_entries() {
            let JournalRecord::Intent {
                tag,
                symbol,
                pair,
                side,
                strategy,
                qty,
                price,
                stake,
                ..
            } = &entry.intent
            else {
                continue;
            };
            let is_ft = matches!(self.backend, Backend::Freqtrade { .. });
            // By trade id where the journal has it; an entry in doubt by its tag and pair.
            // (Tags repeat across engine restarts, whose signal ids start again at 1.)
            let found = match entry.trade_id {
                Some(id) => open_trades.iter().find(|t| t.trade_id == id),
                None => open_trades.iter().find(|t| {
                    t.enter_tag.as_deref() == Some(tag)
                        && t.pair == *pair
                        && !claimed.contains(&t.trade_id)
                }),
            };
            if let Some(t) = found {
                claimed.push(t.trade_id);
            }
            let (qty, price, trade_id) = if is_ft {
                match found {
                    Some(t) => (
                        f64_value(t.amount),
                        f64_value(t.open_rate),
                        Some(t.trade_id),
                    ),
                    None => {
                        let ever = all_trades
                            .iter()
                            .any(|t| t.enter_tag.as_deref() == Some(tag));
                        let why = if ever {
                            "closed while the gateway was away (in FreqTrade's trade list, not in /status)"
                        } else if entry.opened.is_none() {
                            "in doubt and not in FreqTrade: the request never entered"
                        } else {
                            "open in the journal but not in FreqTrade: closed outside the gateway"
                        };
                        eprintln!("gateway: reconcile: signal {} ({pair}): {why}", key.id);
                        self.write(&JournalRecord::Settled {
                            entry: key.clone(),
                            opened: ever || entry.opened == Some(true),
                            why: why.into(),
                            ts_ns: now,
                        });
                        continue;
                    }
                }
            } else if entry.opened == Some(true) {
                let (q, p) = entry.fill.clone().unwrap_or((qty.clone(), price.clone()));
                (parse_value(&q), parse_value(&p), None)
            } else {
                self.write(&JournalRecord::Settled {
                    entry: key.clone(),
                    opened: false,
                    why: "in doubt at restart: the fill was never journaled".into(),
                    ts_ns: now,
                });
                continue;
            };
            if entry.opened.is_none() {
                self.write(&JournalRecord::Result {
                    key: key.clone(),
                    ok: true,
                    trade_id,
                    qty: Some(text(qty)),
                    price: Some(text(price)),
                    pnl: None,
                    error: Some("settled at restart from /status".into()),
                    ts_ns: now,
                });
            }
            if let Some(exit) = &entry.exit_in_doubt {
                // Still open, so the exit did not happen.
                self.write(&JournalRecord::Result {
                    key: exit.clone(),
                    ok: false,
                    trade_id,
                    qty: None,
                    price: None,
                    pnl: None,
                    error: Some("exit in doubt at restart; the position is still open".into()),
                    ts_ns: now,
                });
            }
            let Some(k) = self.signal_key(key) else {
                eprintln!("gateway: reconcile: signal {} came from bus {} which is no longer configured; its position is kept", key.id, key.bus);
                continue;
            };
            let side = if side == "short" {
                Side::Short
            } else {
                Side::Long
            };
            let pair_index = self.pairs.iter().position(|p| p == pair).unwrap_or(0) as u16;
            let _ = stake;
            let slot = slot_of(symbol);
            match &mut self.backend {
                Backend::Paper(b) => b.restore(PaperPosition {
                    entry: k,
                    side,
                    qty,
                    price,
                    fee: Value::ZERO,
                }),
                Backend::Freqtrade { trades, .. } => trades.push((k, trade_id.unwrap_or(0))),
                Backend::Log => {}
            }
            restored.push(Position {
                entry: k,
                slot,
                pair: pair_index,
                strategy: *strategy,
                side,
                qty,
                price,
                risk: Value::ZERO,
                notional: qty * price,
                opening: false,
                closing: false,
            });
        }
        for t in &open_trades {
            if !claimed.contains(&t.trade_id) {
                self.counters.foreign_open += 1;
                eprintln!(
                    "gateway: reconcile: FreqTrade trade {} on {} (enter_tag {:?}) is not in the journal; not managed",
                    t.trade_id, t.pair, t.enter_tag
                );
            }
        }
        if !restored.is_empty() {
            eprintln!(
                "gateway: reconcile: {} open position(s) restored",
                restored.len()
            );
        }
        restored
    }

    fn restore_all(
        &mut self,
        state: &JournalState,
        slot_of: &mut impl FnMut(&str) -> Slot,
    ) -> Vec<Position> {
        // FreqTrade did not answer: hold every open or in-doubt entry as open, so the
        // limits count it; the periodic reconcile settles them once it answers.
        let mut out = Vec::new();
        for (key, e) in state.open_entries() {
            let (
                Some(k),
                JournalRecord::Intent {
                    symbol,
                    side,
                    strategy,
                    qty,
                    price,
                    ..
                },
            ) = (self.signal_key(key), &e.intent)
            else {
                continue;
            };
            let (qty, price) = (parse_value(qty), parse_value(price));
            if let Backend::Freqtrade { trades, .. } = &mut self.backend {
                trades.push((k, e.trade_id.unwrap_or(0)));
            }
            out.push(Position {
                entry: k,
                slot: slot_of(symbol),
                pair: 0,
                strategy: *strategy,
                side: if side == "short" {
                    Side::Short
                } else {
                    Side::Long
                },
                qty,
                price,
                risk: Value::ZERO,
                notional: qty * price,
                opening: false,
                closing: false,
            });
        }
        out
    }

    /// Handles one decision; returns what to tell the risk engine.
    pub fn handle(&mut self, d: &Decision) -> Option<Outcome> {
        self.counters.decisions += 1;
        if let Decision::Order(o) = d {
            let waited = now_ns() - o.signal.read_ns;
            let _ = self.counters.handoff.record(waited.max(1) as u64);
        }
        let (signal, outcome) = match d {
            Decision::Rejected(s, r) => (s, r.name()),
            Decision::Order(o) => (&o.signal, "order"),
        };
        let (symbol, price_scale) = self.slot_name(signal.slot);
        let key = self.key(signal.key);
        let decision = JournalRecord::Decision {
            key: key.clone(),
            symbol: symbol.clone(),
            strategy: signal.strategy,
            action: match signal.action {
                Action::EnterLong => "enter_long",
                Action::EnterShort => "enter_short",
                Action::Exit => "exit",
            }
            .into(),
            outcome: outcome.into(),
            local_ns: signal.local_ns,
            ts_ns: now_ns(),
        };
        let Decision::Order(o) = d else {
            self.write(&decision);
            if let Decision::Rejected(_, r) = d {
                *self.counters.rejections.entry(r.name()).or_insert(0) += 1;
                eprintln!(
                    "gateway: signal {} {symbol}: rejected ({})",
                    signal.key.id,
                    r.name()
                );
            }
            return None;
        };
        let pair = self.pairs.get(o.pair as usize).cloned().unwrap_or_default();
        let (kind, side, stake, qty, price, entry) = match o.kind {
            OrderKind::Enter {
                side,
                stake,
                qty,
                price,
                ..
            } => ("enter", side, stake, qty, price, None),
            OrderKind::Exit { entry, side, qty } => (
                "exit",
                side,
                Value::ZERO,
                qty,
                Value::ZERO,
                Some(self.key(entry)),
            ),
        };
        let intent = JournalRecord::Intent {
            key: key.clone(),
            kind: kind.into(),
            entry,
            symbol: symbol.clone(),
            pair: pair.clone(),
            side: side.name().into(),
            strategy: signal.strategy,
            stake: text(stake),
            qty: text(qty),
            price: text(price),
            tag: signal.key.id.to_string(),
            ts_ns: now_ns(),
        };
        // Decision and intent in one write, flushed before the request leaves.
        if let Err(e) = self.journal.append_all(&[decision, intent]) {
            // Not on disk, so not sent: after a crash nothing could tell whether it was.
            self.counters.journal_errors += 1;
            self.count("journal_error");
            eprintln!(
                "gateway: signal {}: journal write failed, order not sent: {e}",
                signal.key.id
            );
            return Some(match o.kind {
                OrderKind::Enter { .. } => Outcome::EntryFailed { entry: signal.key },
                OrderKind::Exit { entry, .. } => Outcome::ExitFailed { entry },
            });
        }
        self.counters.orders_sent += 1;
        let outcome = match o.kind {
            OrderKind::Enter { .. } => self.enter(o, &key, &pair, price_scale),
            OrderKind::Exit { entry, .. } => self.exit(o, entry, &key, price_scale),
        };
        if let Some(out) = &outcome {
            self.count(match out {
                Outcome::Opened { .. } => "opened",
                Outcome::Closed { .. } => "closed",
                Outcome::EntryFailed { .. } => "entry_failed",
                Outcome::ExitFailed { .. } => "exit_failed",
            });
        }
        outcome
    }

    fn wire(&mut self, o: &Order, written_ns: i64) {
        let c = &mut self.counters;
        let _ = c
            .publish_to_wire
            .record((written_ns - o.signal.local_ns).max(1) as u64);
        let _ = c
            .read_to_wire
            .record((written_ns - o.signal.read_ns).max(1) as u64);
    }

    fn result(
        &mut self,
        key: &JournalKey,
        ok: bool,
        trade_id: Option<u64>,
        fill: Option<(Value, Value)>,
        pnl: Option<Value>,
        error: Option<String>,
    ) {
        self.write(&JournalRecord::Result {
            key: key.clone(),
            ok,
            trade_id,
            qty: fill.map(|f| text(f.0)),
            price: fill.map(|f| text(f.1)),
            pnl: pnl.map(text),
            error,
            ts_ns: now_ns(),
        });
    }

    fn ft(&mut self) -> FreqtradeParts<'_> {
        match &mut self.backend {
            Backend::Freqtrade {
                client,
                ordertype,
                trades,
                closing,
                ..
            } => (client, ordertype, trades, closing),
            _ => unreachable!("only called with the FreqTrade backend"),
        }
    }

    fn fail(&mut self, key: &JournalKey, trade_id: Option<u64>, why: String) {
        self.result(key, false, trade_id, None, None, Some(why));
    }

    fn enter(
        &mut self,
        o: &Order,
        key: &JournalKey,
        pair: &str,
        price_scale: u8,
    ) -> Option<Outcome> {
        let entry = o.signal.key;
        let OrderKind::Enter {
            side,
            stake,
            qty,
            price,
            limit,
        } = o.kind
        else {
            return None;
        };
        let fill = match &mut self.backend {
            Backend::Log => Some((qty, price)),
            Backend::Paper(b) => b.fill(o, price_scale).map(|f| (f.qty, f.price)),
            Backend::Freqtrade { .. } => return self.ft_enter(o, key, pair, side, stake, limit),
        };
        self.wire(o, now_ns());
        let Some((qty, price)) = fill else {
            self.count("no_quote");
            eprintln!(
                "gateway: signal {}: no quote to fill against on any bus",
                entry.id
            );
            self.fail(key, None, "no quote to fill against".into());
            return Some(Outcome::EntryFailed { entry });
        };
        self.result(key, true, None, Some((qty, price)), None, None);
        Some(Outcome::Opened { entry, qty, price })
    }

    #[allow(clippy::too_many_arguments)]
    fn ft_enter(
        &mut self,
        o: &Order,
        key: &JournalKey,
        pair: &str,
        side: Side,
        stake: Value,
        limit: Value,
    ) -> Option<Outcome> {
        let entry = o.signal.key;
        let tag = entry.id.to_string();
        if self.crash == Some(CrashPoint::AfterIntent) {
            eprintln!(
                "gateway: FLOWCORE_GATEWAY_CRASH=intent: aborting after the intent of signal {}",
                entry.id
            );
            std::process::abort();
        }
        let crash_after_request = self.crash == Some(CrashPoint::AfterRequest);
        let mut written = 0i64;
        let (client, ordertype, _, _) = self.ft();
        let limit = (ordertype == "limit" && limit > Value::ZERO).then(|| limit.to_num::<f64>());
        let ordertype = ordertype.to_string();
        let r = client.force_enter(
            pair,
            side.name(),
            stake.to_num(),
            &tag,
            &ordertype,
            limit,
            &mut || {
                if crash_after_request {
                    std::process::abort();
                }
                written = now_ns();
            },
        );
        let rtt = client.last_rtt.as_nanos() as u64;
        let _ = self.counters.round_trip.record(rtt.max(1));
        if written > 0 {
            self.wire(o, written);
        }
        let trade = match r {
            Ok(t) => t,
            Err(FreqtradeError::Transport(e)) if !e.not_sent() => {
                // Sent, answer lost: did it enter? Ask by tag; never send it again.
                self.count("in_doubt");
                eprintln!(
                    "gateway: signal {} {pair}: forceenter in doubt ({e}); asking /status",
                    entry.id
                );
                std::thread::sleep(Duration::from_millis(200));
                let (client, ..) = self.ft();
                let found = client.status().ok().and_then(|s| {
                    s.into_iter()
                        .find(|t| t.enter_tag.as_deref() == Some(tag.as_str()))
                });
                match found {
                    Some(t) => t,
                    None => {
                        self.result(
                            key,
                            false,
                            None,
                            None,
                            None,
                            Some(format!("answer lost ({e}); not in /status")),
                        );
                        return Some(Outcome::EntryFailed { entry });
                    }
                }
            }
            Err(e) => {
                self.count(e.outcome());
                eprintln!(
                    "gateway: signal {} {pair}: forceenter failed: {e} [{}]",
                    entry.id,
                    e.outcome()
                );
                self.fail(key, None, e.to_string());
                return Some(Outcome::EntryFailed { entry });
            }
        };
        self.ft().2.push((entry, trade.trade_id));
        let (q, p) = (f64_value(trade.amount), f64_value(trade.open_rate));
        eprintln!(
            "gateway: signal {} {pair}: entered {} as trade {} ({q} at {p})",
            entry.id,
            side.name(),
            trade.trade_id
        );
        self.result(key, true, Some(trade.trade_id), Some((q, p)), None, None);
        Some(Outcome::Opened {
            entry,
            qty: q,
            price: p,
        })
    }

    fn exit(
        &mut self,
        o: &Order,
        entry: SignalKey,
        key: &JournalKey,
        price_scale: u8,
    ) -> Option<Outcome> {
        let fill = match &mut self.backend {
            Backend::Log => Some((o.signal.entry_px, Value::ZERO)),
            Backend::Paper(b) => b.fill(o, price_scale).map(|f| (0, f.pnl)),
            Backend::Freqtrade { .. } => return self.ft_exit(o, entry, key),
        };
        self.wire(o, now_ns());
        match fill {
            Some((_, pnl)) => {
                self.result(key, true, None, None, Some(pnl), None);
                Some(Outcome::Closed { entry, pnl })
            }
            None => {
                self.fail(key, None, "no such paper position".into());
                Some(Outcome::ExitFailed { entry })
            }
        }
    }

    fn ft_exit(&mut self, o: &Order, entry: SignalKey, key: &JournalKey) -> Option<Outcome> {
        let (client, _, trades, _) = self.ft();
        let Some(&(_, trade_id)) = trades.iter().find(|t| t.0 == entry) else {
            self.fail(key, None, "no FreqTrade trade for this position".into());
            return Some(Outcome::ExitFailed { entry });
        };
        let mut written = 0i64;
        let r = client.force_exit(trade_id, &mut || written = now_ns());
        let rtt = client.last_rtt.as_nanos() as u64;
        let _ = self.counters.round_trip.record(rtt.max(1));
        if written > 0 {
            self.wire(o, written);
        }
        match r {
            Ok(()) => {
                self.ft().3.push((entry, trade_id, key.clone()));
                eprintln!(
                    "gateway: signal {}: exit order for trade {trade_id} created",
                    o.signal.key.id
                );
                // Reported closed when its exit_fill arrives; without the websocket, once
                // `/trade/{id}` shows it closed.
                if self.events_up() {
                    None
                } else {
                    self.poll_closing(Duration::from_millis(1500))
                }
            }
            Err(e) => {
                self.count(e.outcome());
                eprintln!(
                    "gateway: signal {}: forceexit of trade {trade_id} failed: {e}",
                    o.signal.key.id
                );
                self.fail(key, Some(trade_id), e.to_string());
                Some(Outcome::ExitFailed { entry })
            }
        }
    }

    /// Waits up to `wait` for the first exit in flight to show closed.
    fn poll_closing(&mut self, wait: Duration) -> Option<Outcome> {
        let deadline = Instant::now() + wait;
        loop {
            let Backend::Freqtrade {
                client,
                closing,
                trades,
                ..
            } = &mut self.backend
            else {
                return None;
            };
            let &(entry, trade_id, ref key) = closing.first()?;
            let key = key.clone();
            match client.trade(trade_id) {
                Ok(Some(Trade {
                    is_open: false,
                    close_profit_abs,
                    ..
                })) => {
                    closing.remove(0);
                    trades.retain(|t| t.0 != entry);
                    let pnl = f64_value(close_profit_abs.unwrap_or(0.0));
                    self.result(&key, true, Some(trade_id), None, Some(pnl), None);
                    return Some(Outcome::Closed { entry, pnl });
                }
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => return None,
            }
        }
    }

    /// Periodic work (call when idle): exits in flight, and reconciliation with `/status`
    /// every `reconcile_s` (trades closed by FreqTrade itself: stop-loss, ROI, a human).
    pub fn housekeeping(&mut self) -> Vec<Outcome> {
        let mut out = Vec::new();
        let Backend::Freqtrade {
            closing,
            reconciled,
            reconcile_every,
            ..
        } = &mut self.backend
        else {
            return out;
        };
        let due = reconciled.is_none_or(|at| at.elapsed() >= *reconcile_every);
        if !closing.is_empty() && !self.events_up() {
            if let Some(o) = self.poll_closing(Duration::ZERO) {
                out.push(o);
            }
        }
        if !due {
            return out;
        }
        let Backend::Freqtrade {
            client,
            trades,
            closing,
            reconciled,
            ..
        } = &mut self.backend
        else {
            return out;
        };
        *reconciled = Some(Instant::now());
        let Ok(open) = client.status() else {
            return out;
        };
        let mut gone = Vec::new();
        trades.retain(|&(entry, id)| {
            let still = open.iter().any(|t| t.trade_id == id);
            if !still {
                gone.push((entry, id));
            }
            still
        });
        let gone: Vec<_> = gone
            .into_iter()
            .map(|(entry, id)| {
                let pnl = client
                    .trade(id)
                    .ok()
                    .flatten()
                    .and_then(|t| t.close_profit_abs);
                let exit = closing.iter().find(|c| c.0 == entry).map(|c| c.2.clone());
                (entry, id, pnl.unwrap_or(0.0), exit)
            })
            .collect();
        closing.retain(|c| !gone.iter().any(|g| g.0 == c.0));
        for (entry, id, pnl, exit) in gone {
            if let Some(exit) = exit {
                // Our own exit, filled since.
                self.result(&exit, true, Some(id), None, Some(f64_value(pnl)), None);
                self.count("closed");
            } else {
                self.closed_outside(entry, id, "closed in FreqTrade (not in /status)");
            }
            out.push(Outcome::Closed {
                entry,
                pnl: f64_value(pnl),
            });
        }
        out
    }

    fn events_up(&self) -> bool {
        matches!(
            self.backend,
            Backend::Freqtrade {
                events: Some(_),
                ..
            }
        )
    }

    /// Journal records written since start.
    pub fn journal_written(&self) -> u64 {
        self.journal.written()
    }
}

/// Every trade FreqTrade has (closed ones too), for settling entries in doubt.
fn closed_trades(client: &mut FreqtradeClient) -> Vec<Trade> {
    client.trades().unwrap_or_default()
}
