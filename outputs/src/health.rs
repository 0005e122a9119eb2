//! Health per feed, once a second: what each venue's feed counted and how late its
//! messages arrived.
//!
//! A record closes each time the exchange clock (any venue's) enters a new second, like the
//! bars, so a replay of a recording gives the same records as the run that made it. There
//! is one record for the whole pipeline and one per venue taking part in the run (two
//! `[[feed]]` tables of the same venue share one). Counters are cumulative; the lag
//! percentiles are those of the second that closed.
//!
//! Lag is the local receive time minus the venue's event time `E`, one sample per message
//! that carries one (trades, depth diffs, futures bookTickers). It mixes network delay and
//! the offset between the two clocks: a local clock behind the venue's gives negative lags
//! (messages received before they were sent), kept as they are and counted in
//! [`HealthRow::clock_behind`]. Percentiles have two significant digits.
//! Trades from a trade-history answer are old news, not delay, and are not sampled.

use flowcore_core::bars::second_of;
use flowcore_core::counters;
use flowcore_core::engine::{Engine, EngineCounters};
use flowcore_core::event::{EventKind, MarketEvent};
use flowcore_core::instrument::Venue;
use flowcore_shm::abi::{health, lag, HealthRecord, HEALTH_SOURCE_PIPELINE};
use flowcore_shm::publish::{venue_code, venue_of_code};
use hdrhistogram::Histogram;

counters! {
    /// What the feed side counts (the engine counts the rest): per feed thread, per venue,
    /// or summed over the run.
    pub struct FeedCounters {
        /// Messages received or read.
        pub messages: u64,
        /// Messages that failed to parse.
        pub parse_errors: u64,
        /// Times a feed waited on a full ring.
        pub ring_waits: u64,
        /// Connections lost (and re-established unless stopping).
        pub reconnects: u64,
        /// Connections dropped because they fell silent.
        pub stalls: u64,
        /// Connections replaced make before break, in step.
        pub rotations: u64,
    }
}

/// Feed counters of each venue, indexed by [`Venue::index`].
pub type VenueFeedCounters = [FeedCounters; Venue::ALL.len()];

/// Percentiles of the exchange-to-local lag, ns (two significant digits; negative when the
/// local clock is behind the venue's). All zero without samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LagSummary {
    /// Messages sampled.
    pub samples: u64,
    /// Median.
    pub p50: i64,
    /// 99th percentile.
    pub p99: i64,
    /// 99.9th percentile.
    pub p999: i64,
    /// Largest (within the histogram's precision).
    pub max: i64,
}

/// One health record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRow {
    /// The second these counters close (its end), ms since the epoch, exchange time.
    pub ts_ms: i64,
    /// The venue whose feed this is; `None` for the whole pipeline.
    pub source: Option<Venue>,
    /// Feed-side counters.
    pub feed: FeedCounters,
    /// Engine counters (gaps, resyncs, crossed books, backfill, duplicates...).
    pub engine: EngineCounters,
    /// Trades for an already final second.
    pub late_trades: u64,
    /// Messages received before their exchange time, cumulative.
    pub clock_behind: u64,
    /// Lag over the second that closed.
    pub lag: LagSummary,
}

/// Largest lag magnitude the histograms tell apart from "at least this": 10^18 ns, about
/// 31 years (a simulator replaying an old recording shows its age here).
const MAX_LAG_NS: u64 = 1_000_000_000_000_000_000;

/// Lags of either sign. hdrhistogram holds unsigned values, so a lag below zero (a local
/// clock behind the venue's) goes to a mirror histogram of magnitudes.
#[derive(Debug, Clone)]
struct SignedHistogram {
    at_or_above_zero: Histogram<u64>,
    below_zero: Histogram<u64>,
    /// The largest magnitude the histograms count where it falls; a larger one saturates
    /// to [`MAX_LAG_NS`] (`saturating_record`).
    top: u64,
}

impl SignedHistogram {
    fn new() -> Self {
        // Two significant digits keep a histogram at 56 KB, and recording never allocates
        // (no auto-resize; magnitudes beyond the bound saturate).
        let h = Histogram::<u64>::new_with_bounds(1, MAX_LAG_NS, 2).expect("valid bounds");
        // The last counter's highest value: `buckets` buckets of `sub` sub-buckets, the first
        // whole and the others' upper halves (hdrhistogram's layout, lowest value 1), the
        // last ending below `sub << (buckets - 1)`. The test against a histogram per second
        // checks it on both sides.
        let sub = 2 * h.distinct_values() as u64 / (u64::from(h.buckets()) + 1);
        let top = (sub << (h.buckets() - 1)) - 1;
        Self {
            at_or_above_zero: h.clone(),
            below_zero: h,
            top,
        }
    }

    /// What `saturating_record` counts `magnitude` as.
    #[inline]
    fn clamp(&self, magnitude: u64) -> u64 {
        if magnitude > self.top {
            MAX_LAG_NS
        } else {
            magnitude
        }
    }

    /// `h.value_at_quantile(q)` of a histogram `h` (this one's bounds; both halves have
    /// them) holding just `magnitudes` (clamped as counted), which are reordered: the same
    /// rank, found by selection.
    fn quantile_of(&self, magnitudes: &mut [u64], q: f64) -> u64 {
        let q = q.min(1.0);
        let total = magnitudes.len() as u64;
        // hdrhistogram's rank, float rounding included.
        let count = ((q * total as f64).ceil() as u64).max(1);
        if count > total {
            // hdrhistogram finds no counter that reaches the rank.
            return 0;
        }
        let (_, v, _) = magnitudes.select_nth_unstable((count - 1) as usize);
        // The rank falls in the counter of the count-th smallest value; hdrhistogram answers
        // that counter's highest value (`q` > 0 here: ranks start at 1).
        debug_assert!(q > 0.0);
        self.below_zero.highest_equivalent(*v)
    }

    /// The [`Self::summary`] a histogram of this one's bounds would give holding just
    /// `lags` (this one's contents are not read). Found by selection
    /// over the samples: adding a second's histogram to the run's, reading and clearing it
    /// went over all 6,912 counters of each half, 11% of a replay's time (2026-12-06).
    fn summary_of(&self, lags: &[i64], scratch: &mut Vec<u64>) -> LagSummary {
        let n = lags.len() as u64;
        if n == 0 {
            return LagSummary::default();
        }
        // Magnitudes as counted (clamped: a magnitude past `top` counts below it, so the
        // order is that of the clamped values): the negatives' first, then the others'.
        scratch.clear();
        scratch.extend(
            lags.iter()
                .filter(|v| **v < 0)
                .map(|v| self.clamp(v.unsigned_abs())),
        );
        let below = scratch.len();
        scratch.extend(
            lags.iter()
                .filter(|v| **v >= 0)
                .map(|v| self.clamp(*v as u64)),
        );
        let (neg, pos) = scratch.split_at_mut(below);
        let below = below as u64;
        let mut quantile = |q: f64| {
            let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
            if rank <= below {
                let k = below - rank + 1;
                -(self.quantile_of(neg, k as f64 / below as f64) as i64)
            } else {
                let k = rank - below;
                self.quantile_of(pos, k as f64 / pos.len() as f64) as i64
            }
        };
        let (p50, p99, p999) = (quantile(0.5), quantile(0.99), quantile(0.999));
        let max = match pos.iter().max() {
            Some(&m) => self.at_or_above_zero.highest_equivalent(m) as i64,
            None => {
                let m = neg.iter().min().expect("n > 0");
                -(self.below_zero.lowest_equivalent(*m) as i64)
            }
        };
        LagSummary {
            samples: n,
            p50,
            p99,
            p999,
            max,
        }
    }

    #[inline]
    fn record(&mut self, v: i64) {
        if v < 0 {
            self.below_zero.saturating_record(v.unsigned_abs());
        } else {
            self.at_or_above_zero.saturating_record(v as u64);
        }
    }

    fn len(&self) -> u64 {
        self.at_or_above_zero.len() + self.below_zero.len()
    }

    /// The value at quantile `q` of both halves together.
    fn quantile(&self, q: f64) -> i64 {
        let (below, n) = (self.below_zero.len(), self.len());
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        if rank <= below {
            // The rank-th smallest lag is the (below - rank + 1)-th smallest magnitude of
            // the negative ones.
            let k = below - rank + 1;
            -(self.below_zero.value_at_quantile(k as f64 / below as f64) as i64)
        } else {
            let k = rank - below;
            let above = self.at_or_above_zero.len();
            self.at_or_above_zero
                .value_at_quantile(k as f64 / above as f64) as i64
        }
    }

    fn max(&self) -> i64 {
        if self.at_or_above_zero.is_empty() {
            -(self.below_zero.min() as i64)
        } else {
            self.at_or_above_zero.max() as i64
        }
    }

    fn summary(&self) -> LagSummary {
        if self.len() == 0 {
            return LagSummary::default();
        }
        LagSummary {
            samples: self.len(),
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: self.max(),
        }
    }

    /// Adds `other`'s samples (same bounds: never resizes, so it cannot fail).
    fn add(&mut self, other: &Self) {
        let _ = self.at_or_above_zero.add(&other.at_or_above_zero);
        let _ = self.below_zero.add(&other.below_zero);
    }

    fn reset(&mut self) {
        self.at_or_above_zero.reset();
        self.below_zero.reset();
    }
}

/// The histograms' bounds, for reading a second's samples as a histogram would count them
/// ([`SignedHistogram::summary_of`]): one, never recorded in.
fn bounds() -> &'static SignedHistogram {
    static BOUNDS: std::sync::OnceLock<SignedHistogram> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(SignedHistogram::new)
}

/// Lags a source's open second keeps as they came (64 KB), reserved at the start: a second
/// with more goes on in a histogram (made the first time), so the hot path does not
/// allocate once running.
const SECOND_SAMPLES: usize = 8192;

/// Lags of one source: the open second's, and the whole run's histogram.
///
/// The histograms are made when first needed: hdrhistogram writes its 56 KB of counters
/// when it makes them, and a monitor made them for every venue, sampled or not (a replay
/// of two venues made 36, ~500 page faults of its start, 2026-12-07; now 6).
#[derive(Debug)]
struct Lag {
    /// The open second's lags as they came; never grows past its reserved capacity.
    second: Vec<i64>,
    /// The open second's lags that did not fit `second` (moved here when it filled up),
    /// counted the way every second was before 2026-12-06; made at the first such second
    /// (most runs have none), empty in most seconds.
    spilled: Option<SignedHistogram>,
    /// Made at the first second with samples that closes; never for the pipeline's.
    run: Option<SignedHistogram>,
    clock_behind: u64,
}

impl Lag {
    fn new() -> Self {
        Self::with_room(SECOND_SAMPLES)
    }

    /// `room` samples a second before they spill into a histogram.
    fn with_room(room: usize) -> Self {
        Self {
            second: Vec::with_capacity(room),
            spilled: None,
            run: None,
            clock_behind: 0,
        }
    }

    #[inline]
    fn record(&mut self, lag_ns: i64) {
        self.clock_behind += u64::from(lag_ns < 0);
        self.push(lag_ns);
    }

    /// Adds a sample to the open second without counting it as behind.
    #[inline]
    fn push(&mut self, lag_ns: i64) {
        if self.second.len() < self.second.capacity() {
            self.second.push(lag_ns);
        } else {
            // A busier second than the room: this sample alone goes to the histogram (the
            // rest join it when the second closes), not the whole room inside one event.
            self.spilled().record(lag_ns);
        }
    }

    #[cold]
    fn spilled(&mut self) -> &mut SignedHistogram {
        self.spilled.get_or_insert_with(SignedHistogram::new)
    }

    /// Adds `other`'s open second to this one's (the pipeline's second is its venues').
    fn take_second_of(&mut self, other: &Lag) {
        for &lag in &other.second {
            self.push(lag);
        }
        if let Some(theirs) = other.spilled.as_ref().filter(|h| h.len() > 0) {
            self.spilled().add(theirs);
        }
    }

    /// The open second's summary; the second's samples move to the run's. `scratch` holds
    /// [`SECOND_SAMPLES`] (or the room given) without growing.
    fn close_second(&mut self, scratch: &mut Vec<u64>) -> LagSummary {
        let summary = self.second_summary(scratch);
        self.keep_second();
        summary
    }

    /// [`Lag::close_second`] for a source whose run is its sources' runs together (the
    /// pipeline's): the second's samples are dropped, it keeps no run.
    fn close_second_unkept(&mut self, scratch: &mut Vec<u64>) -> LagSummary {
        let summary = self.second_summary(scratch);
        self.drop_second();
        summary
    }

    /// The open second's summary. A second some of whose samples spilled is all in the
    /// spill histogram afterwards.
    fn second_summary(&mut self, scratch: &mut Vec<u64>) -> LagSummary {
        match self.spilled.as_mut().filter(|h| h.len() > 0) {
            Some(spilled) => {
                for &lag in &self.second {
                    spilled.record(lag);
                }
                self.second.clear();
                spilled.summary()
            }
            None => bounds().summary_of(&self.second, scratch),
        }
    }

    /// Moves the open second's samples into the run's histogram (made at the first second
    /// with samples).
    fn keep_second(&mut self) {
        let spilled = self.spilled.as_mut().filter(|h| h.len() > 0);
        if self.second.is_empty() && spilled.is_none() {
            return;
        }
        let run = self.run.get_or_insert_with(SignedHistogram::new);
        for &lag in &self.second {
            run.record(lag);
        }
        self.second.clear();
        if let Some(spilled) = spilled {
            run.add(spilled);
            spilled.reset();
        }
    }

    /// Drops the open second's samples.
    fn drop_second(&mut self) {
        self.second.clear();
        if let Some(spilled) = self.spilled.as_mut().filter(|h| h.len() > 0) {
            spilled.reset();
        }
    }

    /// Lag over the run's closed seconds.
    fn run_summary(&self) -> LagSummary {
        self.run
            .as_ref()
            .map_or_else(LagSummary::default, SignedHistogram::summary)
    }
}

/// Closes a health record per second for the whole pipeline and each venue in the run.
#[derive(Debug)]
pub struct HealthMonitor {
    /// Venues taking part, in [`Venue::ALL`] order.
    venues: Vec<Venue>,
    /// Per venue index, and the whole pipeline last (whose run histogram stays empty: its
    /// run is the venues' together, [`HealthMonitor::run_lag`]).
    lag: Vec<Lag>,
    /// The exchange second open now.
    second: Option<i64>,
    /// The lag sample of the message that closed a second, for the next one.
    pending: Option<(usize, i64)>,
    /// Room for a second's lag magnitudes while it closes ([`SECOND_SAMPLES`]).
    scratch: Vec<u64>,
    /// (local, exchange) time of the last trade or statistic seen: the events of one
    /// message (the trades of a Bybit `publicTrade`, the fields of a `tickers`) share them
    /// and are one sample.
    last_part: (i64, i64),
}

impl HealthMonitor {
    /// A monitor for a run over `venues` (repeats and order do not matter).
    pub fn new(venues: &[Venue]) -> Self {
        Self {
            venues: Venue::ALL
                .into_iter()
                .filter(|v| venues.contains(v))
                .collect(),
            lag: (0..=Venue::ALL.len()).map(|_| Lag::new()).collect(),
            second: None,
            pending: None,
            scratch: Vec::with_capacity(SECOND_SAMPLES),
            last_part: (i64::MIN, i64::MIN),
        }
    }

    /// Takes in `ev` after `engine` consumed it. Returns the end of the second that closed
    /// (ms) when `ev` moved the exchange clock into a new second: the caller then takes its
    /// records with [`HealthMonitor::close_second`], and `ev`'s lag counts in the new one.
    #[inline]
    pub fn observe(&mut self, ev: &MarketEvent, engine: &Engine) -> Option<i64> {
        // Most events are a depth message's levels, which carry no time: they stop here,
        // inlined, without a call (a call and a match an event were 3% of a replay's
        // instructions).
        let exch = ev.exch_ts()?;
        self.observe_timed(ev, exch, engine)
    }

    /// [`Self::observe`] for an event the venue timed at `exch`.
    fn observe_timed(&mut self, ev: &MarketEvent, exch: i64, engine: &Engine) -> Option<i64> {
        // Only kinds that come several to a message are compared: two Binance messages can
        // share a receive stamp in a recording, and are two samples.
        let venue = engine.table().get(ev.inst).venue;
        let part = match ev.kind {
            EventKind::Stat(_) => true,
            EventKind::Trade(_) => matches!(venue, Venue::BybitSpot | Venue::BybitLinear),
            _ => false,
        };
        let same_message = part
            && core::mem::replace(&mut self.last_part, (ev.local_ts, exch)) == (ev.local_ts, exch);
        let sample = (!engine.is_backfilling(ev.inst) && !same_message)
            .then(|| (venue.index(), ev.local_ts - exch));
        let sec = second_of(exch);
        let closed = match self.second {
            Some(open) if sec <= open => None,
            Some(_) => Some(sec * 1000),
            None => None,
        };
        if self.second.is_none_or(|open| sec > open) {
            self.second = Some(sec);
        }
        match closed {
            Some(_) => self.pending = sample,
            None => self.record(sample),
        }
        closed
    }

    fn record(&mut self, sample: Option<(usize, i64)>) {
        if let Some((venue, lag)) = sample {
            self.lag[venue].record(lag);
        }
    }

    /// The end of the open second (ms), for the last records of a run.
    pub fn open_second_end(&self) -> Option<i64> {
        self.second.map(|s| (s + 1) * 1000)
    }

    /// The records of the second ending at `ts_ms`: the whole pipeline's first, then one
    /// per venue. `feeds` holds the feed-side counters of each venue.
    pub fn close_second(
        &mut self,
        ts_ms: i64,
        engine: &Engine,
        feeds: &VenueFeedCounters,
        mut out: impl FnMut(&HealthRow),
    ) {
        let total = Venue::ALL.len();
        // The pipeline's second is the venues' seconds together: added once a second here
        // instead of recording every message twice.
        let (venues, pipeline) = self.lag.split_at_mut(total);
        let pipeline = &mut pipeline[0];
        pipeline.clock_behind = venues.iter().map(|l| l.clock_behind).sum();
        for l in venues.iter() {
            pipeline.take_second_of(l);
        }
        let lag = self.lag[total].close_second_unkept(&mut self.scratch);
        out(&HealthRow {
            ts_ms,
            source: None,
            feed: feeds.iter().copied().sum(),
            engine: engine.counters(),
            late_trades: engine.bars().counters().late_trades,
            clock_behind: self.lag[total].clock_behind,
            lag,
        });
        for &venue in &self.venues {
            let v = venue.index();
            let lag = self.lag[v].close_second(&mut self.scratch);
            out(&HealthRow {
                ts_ms,
                source: Some(venue),
                feed: feeds[v],
                engine: engine.venue_counters(venue),
                late_trades: engine.bars().venue_counters(venue).late_trades,
                clock_behind: self.lag[v].clock_behind,
                lag,
            });
        }
        // A venue outside the run has no record: its samples (if any) only move to its run,
        // as in a second nobody reads.
        for (v, l) in self.lag[..total].iter_mut().enumerate() {
            if !self.venues.iter().any(|venue| venue.index() == v) {
                l.keep_second();
            }
        }
        let pending = self.pending.take();
        self.record(pending);
    }

    /// [`Self::close_second`] for a run whose per-second records nobody reads (no health
    /// rows asked for, no bus: a replay to bars and tops): the second's lags move to the
    /// venues' runs, which the run's summary reads, and no second is summarized. The
    /// summaries, a selection over each second's lags per venue and for the pipeline, were
    /// ~3% of a replay's instructions (2026-12-07).
    pub fn close_second_unread(&mut self) {
        let total = Venue::ALL.len();
        for l in &mut self.lag[..total] {
            l.keep_second();
        }
        // The pipeline's second is filled only while its records are made.
        self.lag[total].drop_second();
        let pending = self.pending.take();
        self.record(pending);
    }

    /// Lag over the whole run so far (closed seconds), of one venue or (`None`) all.
    pub fn run_lag(&self, venue: Option<Venue>) -> LagSummary {
        match venue {
            Some(venue) => self.lag[venue.index()].run_summary(),
            // The venues' runs added here, once, instead of each sample recorded a second
            // time in the pipeline's as its seconds closed (240,000 records in a replay of
            // the BTC set, 2026-12-07).
            None => {
                let mut all = SignedHistogram::new();
                for run in self.lag[..Venue::ALL.len()]
                    .iter()
                    .filter_map(|l| l.run.as_ref())
                {
                    all.add(run);
                }
                all.summary()
            }
        }
    }
}

impl HealthRow {
    /// The bus record of this row (`publish_ns` and `published` are the publisher's).
    pub fn to_record(&self) -> HealthRecord {
        let mut c = [0u64; health::COUNT];
        c[health::MESSAGES] = self.feed.messages;
        c[health::EVENTS] = self.engine.events;
        c[health::GAPS] = self.engine.gaps;
        c[health::RESYNCS] = self.engine.resync_requests;
        c[health::LATE_TRADES] = self.late_trades;
        c[health::PARSE_ERRORS] = self.feed.parse_errors;
        c[health::CROSSED_BOOKS] = self.engine.crossed_books;
        c[health::RING_FULL_WAITS] = self.feed.ring_waits;
        c[health::RECONNECTS] = self.feed.reconnects;
        c[health::BACKFILLED_TRADES] = self.engine.backfilled_trades;
        c[health::DUPLICATE_TRADES] = self.engine.duplicate_trades;
        c[health::STALLS] = self.feed.stalls;
        c[health::ROTATIONS] = self.feed.rotations;
        c[health::UNFILLED_TRADE_GAPS] = self.engine.unfilled_trade_gaps;
        c[health::CLOCK_BEHIND] = self.clock_behind;
        let mut lag_ns = [0i64; 4];
        lag_ns[lag::P50] = self.lag.p50;
        lag_ns[lag::P99] = self.lag.p99;
        lag_ns[lag::P999] = self.lag.p999;
        lag_ns[lag::MAX] = self.lag.max;
        HealthRecord {
            ts_ms: self.ts_ms,
            publish_ns: 0,
            source: self
                .source
                .map_or(HEALTH_SOURCE_PIPELINE, |v| venue_code(v).into()),
            flags: 0,
            counters: c,
            lag_samples: self.lag.samples,
            lag_ns,
        }
    }

    /// The row a bus record carries: the inverse of [`HealthRow::to_record`] over the
    /// counters a record has (other engine counters read 0). `None` for an unknown source.
    pub fn from_record(r: &HealthRecord) -> Option<Self> {
        let source = match r.source {
            HEALTH_SOURCE_PIPELINE => None,
            code => Some(venue_of_code(u16::try_from(code).ok()?)?),
        };
        let c = &r.counters;
        Some(Self {
            ts_ms: r.ts_ms,
            source,
            feed: FeedCounters {
                messages: c[health::MESSAGES],
                parse_errors: c[health::PARSE_ERRORS],
                ring_waits: c[health::RING_FULL_WAITS],
                reconnects: c[health::RECONNECTS],
                stalls: c[health::STALLS],
                rotations: c[health::ROTATIONS],
            },
            engine: EngineCounters {
                events: c[health::EVENTS],
                gaps: c[health::GAPS],
                resync_requests: c[health::RESYNCS],
                crossed_books: c[health::CROSSED_BOOKS],
                backfilled_trades: c[health::BACKFILLED_TRADES],
                duplicate_trades: c[health::DUPLICATE_TRADES],
                unfilled_trade_gaps: c[health::UNFILLED_TRADE_GAPS],
                ..EngineCounters::default()
            },
            late_trades: c[health::LATE_TRADES],
            clock_behind: c[health::CLOCK_BEHIND],
            lag: LagSummary {
                samples: r.lag_samples,
                p50: r.lag_ns[lag::P50],
                p99: r.lag_ns[lag::P99],
                p999: r.lag_ns[lag::P999],
                max: r.lag_ns[lag::MAX],
            },
        })
    }

    /// The source's name in rows: a venue, or `all` for the whole pipeline.
    pub fn source_name(&self) -> &'static str {
        self.source.map_or("all", Venue::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowcore_core::event::{Aggressor, MarketEvent};
    use flowcore_core::event::{EventKind, SessionEvent, Trade, TradeSource};
    use flowcore_core::instrument::InstrumentTable;

    /// The k-th smallest of `v` for quantile `q` (rank `ceil(q * n)`).
    fn exact(v: &mut [i64], q: f64) -> i64 {
        v.sort_unstable();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    #[test]
    fn quantiles_of_lags_of_both_signs_are_within_two_digits_of_the_exact_ones() {
        // A clock a little behind the venue's: most lags negative, a tail above zero.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut lags = Vec::new();
        let mut h = SignedHistogram::new();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let lag = (state % 40_000_000) as i64 - 30_000_000;
            lags.push(lag);
            h.record(lag);
        }
        for q in [0.001, 0.25, 0.5, 0.75, 0.99, 0.999, 1.0] {
            let want = exact(&mut lags, q);
            let got = h.quantile(q);
            let tolerance = want.unsigned_abs() / 100 + 1;
            assert!(
                got.abs_diff(want) <= tolerance,
                "q {q}: {got} against exact {want}"
            );
        }
        let max = *lags.iter().max().unwrap();
        assert!(h.max().abs_diff(max) <= max.unsigned_abs() / 100 + 1);
        // Only negatives: the largest is the smallest magnitude, negated.
        let mut neg = SignedHistogram::new();
        for v in [-5_000_000, -2_000_000, -3_000_000] {
            neg.record(v);
        }
        let s = neg.summary();
        assert_eq!(s.samples, 3);
        assert!(s.max.abs_diff(-2_000_000) <= 20_000, "{s:?}");
        assert!(s.p50.abs_diff(-3_000_000) <= 30_000, "{s:?}");
    }

    /// The lag bookkeeping before 2026-12-06, the reference: a histogram per second, added
    /// to the run's and cleared at each close.
    struct HistogramPerSecond {
        second: SignedHistogram,
        run: SignedHistogram,
    }

    impl HistogramPerSecond {
        fn close_second(&mut self) -> LagSummary {
            let summary = self.second.summary();
            if summary.samples > 0 {
                let (run, second) = (&mut self.run, &mut self.second);
                run.at_or_above_zero.add(&second.at_or_above_zero).unwrap();
                run.below_zero.add(&second.below_zero).unwrap();
                second.at_or_above_zero.reset();
                second.below_zero.reset();
            }
            summary
        }
    }

    #[test]
    fn second_and_run_summaries_are_those_of_a_histogram_per_second() {
        let h = SignedHistogram::new();
        let top = h.top as i64;
        let edges = [
            0,
            1,
            -1,
            255,
            256,
            -257,
            MAX_LAG_NS as i64,
            -(MAX_LAG_NS as i64),
            top,
            top + 1,
            -top,
            -top - 1,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Room for all of a second's samples, and for fewer (they spill).
        for room in [SECOND_SAMPLES, 150] {
            let mut old = HistogramPerSecond {
                second: SignedHistogram::new(),
                run: SignedHistogram::new(),
            };
            let mut new = Lag::with_room(room);
            // A second venue's lags join the first's half the time, as venues' join the pipeline's.
            let mut other = Lag::with_room(room);
            // The same samples as `new`, its seconds closed unread.
            let mut unread = Lag::with_room(room);
            let mut scratch = Vec::with_capacity(room);
            for second in 0..3_000 {
                let n = match second % 7 {
                    0 => 0,
                    1 => 1,
                    2 => 2,
                    _ => next() % 400,
                };
                for _ in 0..n {
                    let r = next();
                    let lag = match second % 5 {
                        // As in the recordings: all about 1.28 s behind.
                        0 => -1_280_000_000 + (r % 60_000_000) as i64,
                        // Both signs, close to zero.
                        1 => (r % 2_000) as i64 - 1_000,
                        // Both signs, any size.
                        2 => (r as i64) >> (r % 64),
                        3 => edges[(r % edges.len() as u64) as usize],
                        _ => (r % 40_000_000) as i64 - 30_000_000,
                    };
                    old.second.record(lag);
                    if r % 2 == 0 {
                        new.record(lag);
                        unread.record(lag);
                    } else {
                        other.record(lag);
                    }
                }
                new.take_second_of(&other);
                unread.take_second_of(&other);
                other.close_second(&mut scratch);
                unread.keep_second();
                assert_eq!(
                    new.close_second(&mut scratch),
                    old.close_second(),
                    "room {room}, second {second}"
                );
                assert_eq!(
                    new.run_summary(),
                    old.run.summary(),
                    "room {room}, run after {second}"
                );
                assert_eq!(
                    unread.run_summary(),
                    old.run.summary(),
                    "room {room}, unread run after {second}"
                );
                assert!(
                    new.second.capacity() == room && scratch.capacity() == room,
                    "no growth"
                );
            }
        }
    }

    fn trade(id: u64, exch_ms: i64, local_ns: i64) -> MarketEvent {
        trade_of(
            flowcore_core::instrument::InstrumentId(0),
            id,
            exch_ms,
            local_ns,
        )
    }

    fn trade_of(
        inst: flowcore_core::instrument::InstrumentId,
        id: u64,
        exch_ms: i64,
        local_ns: i64,
    ) -> MarketEvent {
        MarketEvent {
            inst,
            local_ts: local_ns,
            kind: EventKind::Trade(Trade {
                trade_id: id,
                px: 1,
                qty: 1,
                aggressor: Aggressor::Buy,
                trade_ts: exch_ms * 1_000_000,
                exch_ts: exch_ms * 1_000_000,
                is_taker_flow: true,
                source: TradeSource::Trade,
            }),
        }
    }

    #[test]
    fn a_second_closes_when_the_exchange_clock_leaves_it_and_backfill_is_not_lag() {
        let table = InstrumentTable::binance_defaults();
        let venue = table.get(flowcore_core::instrument::InstrumentId(0)).venue;
        let mut engine = Engine::new(table, Default::default(), None).unwrap();
        let mut monitor = HealthMonitor::new(&[venue]);
        let mut sink = Vec::<flowcore_core::bars::Bar>::new();
        struct Drop0<'a>(&'a mut Vec<flowcore_core::bars::Bar>);
        impl flowcore_core::bars::BarSink for Drop0<'_> {
            fn bar(&mut self, b: &flowcore_core::bars::Bar) {
                self.0.push(*b);
            }
        }
        impl flowcore_core::engine::EngineSink for Drop0<'_> {
            fn top(&mut self, _: &flowcore_core::engine::TopRow) {}
        }
        let mut out = Drop0(&mut sink);
        let mut feed = |ev: MarketEvent, engine: &mut Engine, m: &mut HealthMonitor| {
            engine.on_event(&ev, &mut out);
            m.observe(&ev, engine)
        };
        let t0 = 1_700_000_000_000i64;
        // 2 ms and 4 ms late in the first second.
        assert_eq!(
            feed(
                trade(1, t0, (t0 + 2) * 1_000_000),
                &mut engine,
                &mut monitor
            ),
            None
        );
        assert_eq!(
            feed(
                trade(2, t0 + 500, (t0 + 504) * 1_000_000),
                &mut engine,
                &mut monitor
            ),
            None
        );
        // The next second's first trade closes the first.
        let closed = feed(
            trade(3, t0 + 1_000, (t0 + 1_001) * 1_000_000),
            &mut engine,
            &mut monitor,
        );
        assert_eq!(closed, Some(t0 + 1_000));
        let mut rows = Vec::new();
        monitor.close_second(t0 + 1_000, &engine, &Default::default(), |r| rows.push(*r));
        assert_eq!(rows.len(), 2, "the pipeline and one venue");
        assert_eq!(rows[0].source, None);
        assert_eq!(rows[1].source, Some(venue));
        for r in &rows {
            assert_eq!(r.lag.samples, 2);
            assert!(r.lag.max.abs_diff(4_000_000) <= 40_000, "{:?}", r.lag);
            assert!(r.lag.p50.abs_diff(2_000_000) <= 20_000, "{:?}", r.lag);
        }
        // A trade-history answer's trades are old: not sampled.
        let inst = flowcore_core::instrument::InstrumentId(0);
        let session = |s| MarketEvent {
            inst,
            local_ts: 0,
            kind: EventKind::Session(s),
        };
        feed(
            session(SessionEvent::BackfillBegin),
            &mut engine,
            &mut monitor,
        );
        feed(
            trade(4, t0 + 1_100, (t0 + 9_000) * 1_000_000),
            &mut engine,
            &mut monitor,
        );
        feed(
            session(SessionEvent::BackfillEnd { last_id: None }),
            &mut engine,
            &mut monitor,
        );
        let mut rows = Vec::new();
        monitor.close_second(t0 + 2_000, &engine, &Default::default(), |r| rows.push(*r));
        assert_eq!(rows[0].lag.samples, 1, "the live trade 3 only");
        assert_eq!(monitor.run_lag(Some(venue)).samples, 3);
        assert_eq!(rows[1].engine.events, 6);
    }

    #[test]
    fn the_pipelines_run_is_its_venues_runs_together() {
        let table = InstrumentTable::binance_defaults();
        let spot = flowcore_core::instrument::InstrumentId(0);
        let other = (0..table.len() as u16)
            .map(flowcore_core::instrument::InstrumentId)
            .find(|&i| table.get(i).venue != table.get(spot).venue)
            .expect("a second venue");
        let venues = [table.get(spot).venue, table.get(other).venue];
        let mut engine = Engine::new(table, Default::default(), None).unwrap();
        let mut monitor = HealthMonitor::new(&venues);
        // Fed the same, its seconds closed unread but the last (as a sink with no health
        // rows and no bus does).
        let mut unread = HealthMonitor::new(&venues);
        struct NoRows;
        impl flowcore_core::bars::BarSink for NoRows {
            fn bar(&mut self, _: &flowcore_core::bars::Bar) {}
        }
        impl flowcore_core::engine::EngineSink for NoRows {
            fn top(&mut self, _: &flowcore_core::engine::TopRow) {}
        }
        // Every sample, all venues together and per venue, as one histogram each would
        // count them.
        let (mut all, mut per_venue) = (
            SignedHistogram::new(),
            [SignedHistogram::new(), SignedHistogram::new()],
        );
        let mut state = 0x853c_49e6_748f_ea9bu64;
        let t0 = 1_700_000_000_000i64;
        let mut closed_rows = 0;
        for n in 0..5_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let exch_ms = t0 + (n as i64) * 3;
            // Both signs: clocks behind and ahead, up to a second either way.
            let lag_ns = (state % 2_000_000_000) as i64 - 1_000_000_000;
            let v = (state >> 40) as usize % 2;
            let ev = trade_of(
                [spot, other][v],
                n + 1,
                exch_ms,
                exch_ms * 1_000_000 + lag_ns,
            );
            engine.on_event(&ev, &mut NoRows);
            all.record(lag_ns);
            per_venue[v].record(lag_ns);
            if let Some(ts_ms) = monitor.observe(&ev, &engine) {
                monitor.close_second(ts_ms, &engine, &Default::default(), |_| closed_rows += 1);
            }
            if unread.observe(&ev, &engine).is_some() {
                unread.close_second_unread();
            }
        }
        let end = monitor.open_second_end().expect("samples came");
        monitor.close_second(end, &engine, &Default::default(), |_| closed_rows += 1);
        let mut last_rows = 0;
        unread.close_second(end, &engine, &Default::default(), |_| last_rows += 1);
        assert_eq!(last_rows, 3, "the pipeline's and each venue's");
        assert_eq!(unread.run_lag(None), all.summary());
        assert!(
            closed_rows > 30,
            "{closed_rows} rows: seconds closed along the way"
        );
        assert_eq!(monitor.run_lag(None), all.summary());
        for (v, venue) in venues.iter().enumerate() {
            assert_eq!(
                monitor.run_lag(Some(*venue)),
                per_venue[v].summary(),
                "{venue:?}"
            );
            assert_eq!(
                unread.run_lag(Some(*venue)),
                per_venue[v].summary(),
                "{venue:?}, seconds unread"
            );
        }
    }
}
