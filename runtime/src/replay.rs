//! `flowcore replay`: recordings in, bars and tops out, exactly as docs/REPLAY.md says.
//!
//! ```text
//! files --group by (venue, symbol)--> chains --merge by local ts--> VenueParser --> Engine --> JSONL
//! ```
//! By default on two threads: at full speed the second thread reads and merges the files and
//! both threads parse ([`crate::shared_parse`]; lines read in place from plain files mapped
//! whole, copied out of gzip and journals); paced, the reader and parser on one and the
//! engine on the other, like a live run ([`crate::handoff`]). [`ReplayThreads::One`] runs all
//! on the calling thread.
//! Both write the same bytes: the engine side counts messages from in-band records, never
//! from the other thread's clock or counters.

use crate::config::IdleStrategy;
use crate::handoff::{self, Handoff, HandoffSink, ReadOutcome};
use crate::shared_parse::{self, ParseWork};
use crate::strategies::{strategy_set, StrategyConfig};
use anyhow::{bail, Context};
use flowcore_core::engine::{Engine, EngineCounters};
use flowcore_core::event::{EventKind, MarketEvent};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use flowcore_core::strategy::SignalCounters;
use flowcore_feeds::parsed::Parsed;
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::recording::{Input, Lines, Pace, RecordingReader, Source, WholeRecording};
use flowcore_outputs::health::{FeedCounters, HealthRow, VenueFeedCounters};
use flowcore_outputs::{CoreSink, Outputs};
use flowcore_shm::BusConfig;
use std::time::{Duration, Instant};

/// What a replay counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Lines read.
    pub messages: u64,
    /// Lines refused (malformed, unknown instrument or type): counted, skipped.
    pub parse_errors: u64,
    /// Subscribe replies and other control messages.
    pub control_messages: u64,
    /// Engine counters (gaps, resyncs, ticker checks...).
    pub engine: EngineCounters,
    /// Trades that arrived for an already final second.
    pub late_trades: u64,
    /// Trades excluded as not taker flow (`X` != MARKET).
    pub non_taker_trades: u64,
    /// Bar rows written (instrument and aggregate).
    pub bars: u64,
    /// Tops rows written.
    pub tops: u64,
    /// The last health record of the whole pipeline, then of each venue, with the lag
    /// percentiles of the whole replay.
    pub health: Vec<HealthRow>,
    /// What the strategies' signals came to.
    pub signals: SignalCounters,
}

/// A file chain of one (venue, symbol), read in argument order.
struct Chain {
    venue: Venue,
    inst: InstrumentId,
    /// (argument index, source) still to read, front first.
    files: std::collections::VecDeque<(usize, Source)>,
    reader: Option<(usize, RecordingReader)>,
    /// The next line's (local ts, argument index); its JSON is `reader`'s current line.
    head: Option<(i64, usize)>,
}

impl Chain {
    /// The JSON of the line `head` stands for.
    fn head_json(&self) -> &[u8] {
        let (_, reader) = self.reader.as_ref().expect("a head comes from a reader");
        reader.current()
    }

    /// Reads the next line; `head` says where it is from, `current` holds its JSON.
    fn advance(&mut self) -> anyhow::Result<()> {
        self.head = None;
        loop {
            if self.reader.is_none() {
                let Some((arg, source)) = self.files.pop_front() else {
                    return Ok(());
                };
                self.reader = Some((arg, source.open()?));
            }
            let (arg, reader) = self.reader.as_mut().expect("just set");
            match reader.next_line()? {
                Some((ts, _)) => {
                    self.head = Some((ts, *arg));
                    return Ok(());
                }
                None => self.reader = None,
            }
        }
    }
}

/// The symbol of a recording: the instrument of its first market message.
fn file_instrument(
    venue: Venue,
    table: &InstrumentTable,
    source: &Source,
) -> anyhow::Result<InstrumentId> {
    let mut parser = VenueParser::new(venue, table.clone());
    let mut reader = source.open()?;
    while let Some((ts, json)) = reader.next_line()? {
        let mut inst = None;
        if parser
            .parse(ts, json, None, &mut |ev: MarketEvent| inst = Some(ev.inst))
            .is_ok()
        {
            if let Some(inst) = inst {
                return Ok(inst);
            }
        }
    }
    bail!("{source:?}: no {venue} market message for a known instrument found")
}

/// What to replay and how.
#[derive(Debug)]
pub struct ReplayOptions {
    /// Instruments.
    pub table: InstrumentTable,
    /// Imbalance settings for tops.
    pub imbalance: ImbalanceConfig,
    /// The recordings.
    pub inputs: Vec<Input>,
    /// `asap` (the default) or paced at the recorded times (`recorded`, or `Nx` faster).
    pub pace: Pace,
    /// Publish to the shared-memory bus in this directory too.
    pub shm: Option<BusConfig>,
    /// Count Bybit block trades as taker flow (as the run that recorded did).
    pub count_block_trades: bool,
    /// Two threads (the default) or one.
    pub threads: ReplayThreads,
    /// Strategies run on the bars and tops (`--strategies FILE`); none by default.
    pub strategies: Vec<StrategyConfig>,
    /// How long an aggregate waits for a silent member, receive time
    /// ([`flowcore_core::bars::MEMBER_TIMEOUT_MS`] by default).
    pub member_timeout_ms: i64,
}

/// How many threads a replay uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayThreads {
    /// Read, parse and run the engine on the calling thread.
    One,
    /// Read and parse on a second thread, as a live run's feed thread does; either side waits
    /// for the other this way.
    Two(IdleStrategy),
}

impl ReplayOptions {
    /// As fast as possible, no bus.
    pub fn new(table: InstrumentTable, imbalance: ImbalanceConfig, inputs: Vec<Input>) -> Self {
        Self {
            table,
            imbalance,
            inputs,
            pace: Pace::Asap,
            shm: None,
            count_block_trades: false,
            // Spins briefly, then yields: fast on an idle machine, fair on a busy one.
            threads: ReplayThreads::Two(IdleStrategy::SpinYield),
            member_timeout_ms: flowcore_core::bars::MEMBER_TIMEOUT_MS,
            strategies: Vec::new(),
        }
    }
}

/// Holds a paced replay back to the recording's clock.
struct Pacer {
    pace: Pace,
    start: Option<(i64, Instant)>,
}

impl Pacer {
    fn wait_for(&mut self, ts: i64) {
        // Asked of every message: `asap` must not read the clock (it was 3% of a replay).
        if self.pace == Pace::Asap {
            return;
        }
        let (t0, started) = *self.start.get_or_insert_with(|| (ts, Instant::now()));
        let Some(due) = self.pace.offset(t0, ts) else {
            return;
        };
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            if ahead > Duration::from_micros(200) {
                std::thread::sleep(ahead);
            }
        }
    }
}

/// The chain whose head comes first in the merged order: by (local ts, argument index),
/// then chain; with that head. Few chains: a linear scan.
#[inline]
fn earliest(heads: impl Iterator<Item = Option<(i64, usize)>>) -> Option<((i64, usize), usize)> {
    heads
        .enumerate()
        .filter_map(|(i, head)| head.map(|head| (head, i)))
        .min()
}

/// The reader's side: merges the chains by (local ts, argument index), paces, and parses into
/// `sink`. Stops early, with `Ok`, when the sink says the engine side stopped.
fn read_chains(
    chains: &mut [Chain],
    parsers: &mut [VenueParser],
    pacer: &mut Pacer,
    sink: &mut impl HandoffSink,
) -> anyhow::Result<()> {
    loop {
        let Some(((ts, _), i)) = earliest(chains.iter().map(|c| c.head)) else {
            return Ok(());
        };
        let chain = &mut chains[i];
        let json = chain.head_json();
        pacer.wait_for(ts);
        if !parse_message(&mut parsers[i], chain.inst, ts, json, i as u32, sink) {
            return Ok(());
        }
        chain.advance()?;
    }
}

/// Parses one message of chain `source` into `sink`, then says where it came from and how
/// its parse went. False when the engine side stopped.
#[inline]
fn parse_message(
    parser: &mut VenueParser,
    inst: InstrumentId,
    ts: i64,
    json: &[u8],
    source: u32,
    sink: &mut impl HandoffSink,
) -> bool {
    let outcome = match parser.parse(ts, json, Some(inst), &mut |ev| sink.event(ev)) {
        Ok(Parsed::Events(_)) => ReadOutcome::Market,
        Ok(Parsed::Control(_)) => ReadOutcome::Control,
        Err(_) => ReadOutcome::Refused,
    };
    sink.read(source, outcome)
}

/// [`read_chains`] over whole recordings: their lines merged by [`WholeChains`], parsed
/// where they lie.
fn read_whole(
    lines: &mut WholeChains<'_>,
    parser: &mut LineParser<'_>,
    pacer: &mut Pacer,
    sink: &mut impl HandoffSink,
) -> anyhow::Result<()> {
    while let Some(line) = lines.next()? {
        pacer.wait_for(line.ts);
        if !parser.parse(line, &[], sink) {
            break;
        }
    }
    Ok(())
}

/// Where the lines a [`LineParser`] is given lie.
#[derive(Clone, Copy)]
enum LinesIn<'a> {
    /// In whole recordings, `LineAt::file` saying which.
    Recordings(&'a [WholeRecording]),
    /// Copied into their batch ([`CopiedChains`]).
    Batch,
}

/// [`parse_message`] for a [`LineAt`]; one per thread when they share the parse.
struct LineParser<'a> {
    lines_in: LinesIn<'a>,
    parsers: &'a mut [VenueParser],
    insts: &'a [InstrumentId],
}

impl ParseWork for LineParser<'_> {
    type Item = LineAt;

    #[inline]
    fn parse(&mut self, line: LineAt, batch: &[u8], sink: &mut impl HandoffSink) -> bool {
        let bytes = match self.lines_in {
            LinesIn::Recordings(recordings) => &recordings[line.file as usize][..],
            LinesIn::Batch => batch,
        };
        let chain = line.chain as usize;
        let json = &bytes[line.json_start..line.json_end];
        let inst = self.insts[chain];
        parse_message(
            &mut self.parsers[chain],
            inst,
            line.ts,
            json,
            line.chain,
            sink,
        )
    }
}

/// The chains of read recordings merged as [`read_chains`] merges them, each line copied
/// into the batch it is found for (the reader's buffer moves on): the lines of
/// [`shared_parse`] over gzip, journals and pipes.
struct CopiedChains<'a> {
    chains: &'a mut [Chain],
    /// An error met while reading ahead, given after the line before it.
    pending: Option<anyhow::Error>,
}

impl CopiedChains<'_> {
    fn next(&mut self, batch: &mut Vec<u8>) -> anyhow::Result<Option<LineAt>> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let Some(((ts, _), i)) = earliest(self.chains.iter().map(|c| c.head)) else {
            return Ok(None);
        };
        let chain = &mut self.chains[i];
        let json_start = batch.len();
        batch.extend_from_slice(chain.head_json());
        // The line was read; a bad one after it comes after it (as `read_chains` has it).
        if let Err(e) = chain.advance() {
            self.pending = Some(e);
        }
        Ok(Some(LineAt {
            chain: i as u32,
            file: 0,
            ts,
            json_start,
            json_end: batch.len(),
        }))
    }
}

/// Where a message lies: in a whole recording, or copied into its batch ([`LinesIn`]).
#[derive(Debug, Clone, Copy)]
struct LineAt {
    chain: u32,
    /// Index of the recording in the replay's list of whole recordings (0 for a copied line).
    file: u32,
    ts: i64,
    json_start: usize,
    json_end: usize,
}

/// Every chain's recordings whole in memory, in chain and argument order.
struct WholeFiles {
    recordings: Vec<WholeRecording>,
    /// Per chain: (argument index, index in `recordings`) of its files, in order.
    chains: Vec<Vec<(usize, usize)>>,
}

impl WholeFiles {
    /// `None` when a recording cannot be whole (gzip, a journal, a pipe).
    fn of(chains: &[Chain]) -> anyhow::Result<Option<Self>> {
        let mut whole = WholeFiles {
            recordings: Vec::new(),
            chains: Vec::new(),
        };
        for chain in chains {
            let mut files = Vec::new();
            for (arg, source) in &chain.files {
                let Some(recording) = source.whole()? else {
                    return Ok(None);
                };
                files.push((*arg, whole.recordings.len()));
                whole.recordings.push(recording);
            }
            whole.chains.push(files);
        }
        Ok(Some(whole))
    }
}

/// The chains when every recording is whole in memory: their lines found and merged (as
/// [`read_chains`] does), to be parsed where they lie.
struct WholeChains<'a> {
    recordings: &'a [WholeRecording],
    chains: Vec<WholeChain<'a>>,
    /// An error met while reading ahead, given after the line before it.
    pending: Option<anyhow::Error>,
}

struct WholeChain<'a> {
    /// (argument index, index in `recordings`) still to read, front first.
    files: std::collections::VecDeque<(usize, usize)>,
    lines: Option<(usize, usize, Lines<'a>)>,
    /// How far the file being read was released ([`WholeRecording::release_before`]).
    released: usize,
    /// The next line: its (local ts, argument index), recording and JSON.
    head: Option<((i64, usize), usize, std::ops::Range<usize>)>,
}

impl<'a> WholeChains<'a> {
    fn new(files: &'a WholeFiles) -> anyhow::Result<Self> {
        let mut chains = WholeChains {
            pending: None,
            recordings: &files.recordings,
            chains: files
                .chains
                .iter()
                .map(|files| WholeChain {
                    files: files.iter().copied().collect(),
                    lines: None,
                    released: 0,
                    head: None,
                })
                .collect(),
        };
        for i in 0..chains.chains.len() {
            chains.advance(i)?;
        }
        Ok(chains)
    }

    /// Reads chain `i`'s next line into its head.
    fn advance(&mut self, i: usize) -> anyhow::Result<()> {
        let chain = &mut self.chains[i];
        chain.head = None;
        loop {
            if chain.lines.is_none() {
                let Some((arg, file)) = chain.files.pop_front() else {
                    return Ok(());
                };
                chain.lines = Some((arg, file, Lines::new(&self.recordings[file])));
                chain.released = 0;
            }
            let (arg, file, lines) = chain.lines.as_mut().expect("just set");
            match lines.next_line()? {
                Some((ts, json)) => {
                    self.recordings[*file].release_before(json.start, &mut chain.released);
                    chain.head = Some(((ts, *arg), *file, json));
                    return Ok(());
                }
                None => chain.lines = None,
            }
        }
    }

    /// The next message in the merged order of [`read_chains`]: by local time, then
    /// argument, then chain.
    #[inline]
    fn next(&mut self) -> anyhow::Result<Option<LineAt>> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let heads = self
            .chains
            .iter()
            .map(|c| c.head.as_ref().map(|(head, _, _)| *head));
        let Some(((ts, _), i)) = earliest(heads) else {
            return Ok(None);
        };
        let (_, file, json) = self.chains[i].head.clone().expect("chosen for its head");
        // The line was read; a bad one after it comes after it (as `read_chains` has it).
        if let Err(e) = self.advance(i) {
            self.pending = Some(e);
        }
        Ok(Some(LineAt {
            chain: i as u32,
            file: file as u32,
            ts,
            json_start: json.start,
            json_end: json.end,
        }))
    }
}

/// The engine's side: events into the engine and the outputs, messages counted per venue.
struct EngineSide<'w> {
    engine: Engine,
    out: CoreSink<'w>,
    feeds: VenueFeedCounters,
    /// The venue index of each chain (a handoff's `source`).
    chain_venues: Vec<usize>,
    control_messages: u64,
    /// The first output error; the replay stops at it.
    error: Option<std::io::Error>,
}

impl EngineSide<'_> {
    /// A depth level (most events) here, inlined into the caller's loop; the rest out of
    /// line, where the whole of it in one function cost every level a call (~20
    /// instructions of saving and restoring registers). The level's two lines are written
    /// again in `apply_other` on purpose: one `#[inline]` helper for both made the compiler
    /// inline neither (667.7 M -> 694.8 M instructions for the BTC set, 2026-12-07).
    #[inline]
    fn apply(&mut self, handoff: &Handoff) -> bool {
        match handoff {
            Handoff::Event(ev) if matches!(ev.kind, EventKind::Level(_)) => {
                self.engine.on_event(ev, &mut self.out);
                self.out.after_event(ev, &self.engine, || self.feeds);
                true
            }
            _ => self.apply_other(handoff),
        }
    }

    #[inline(never)]
    fn apply_other(&mut self, handoff: &Handoff) -> bool {
        match handoff {
            Handoff::Event(ev) => {
                self.engine.on_event(ev, &mut self.out);
                self.out.after_event(ev, &self.engine, || self.feeds);
                true
            }
            Handoff::Read { source, outcome } => {
                let feed = &mut self.feeds[self.chain_venues[*source as usize]];
                feed.messages += 1;
                match outcome {
                    ReadOutcome::Market => {}
                    ReadOutcome::Control => self.control_messages += 1,
                    ReadOutcome::Refused => feed.parse_errors += 1,
                }
                self.error = self.out.jsonl.take_error();
                self.error.is_none()
            }
        }
    }
}

impl HandoffSink for EngineSide<'_> {
    #[inline]
    fn event(&mut self, ev: MarketEvent) {
        self.apply(&Handoff::Event(ev));
    }

    #[inline]
    fn read(&mut self, source: u32, outcome: ReadOutcome) -> bool {
        self.apply(&Handoff::Read { source, outcome })
    }
}

/// Replays the recordings through the engine, writing bar and tops rows (and records to
/// the bus with [`ReplayOptions::shm`]).
///
/// # Errors
/// When a file cannot be read, a line has no timestamp, writing fails or the bus cannot be
/// created. Malformed JSON is not an error: it is counted in [`ReplaySummary::parse_errors`].
pub fn replay(options: ReplayOptions, outputs: Outputs<'_>) -> anyhow::Result<ReplaySummary> {
    let ReplayOptions {
        table,
        imbalance,
        inputs,
        pace,
        shm,
        count_block_trades,
        threads,
        strategies,
        member_timeout_ms,
    } = options;
    if inputs.is_empty() {
        bail!("no recordings given: expected VENUE=FILE arguments");
    }
    let mut chains: Vec<Chain> = Vec::new();
    for (arg, input) in inputs.into_iter().enumerate() {
        let inst = file_instrument(input.venue, &table, &input.source)?;
        match chains
            .iter_mut()
            .find(|c| c.venue == input.venue && c.inst == inst)
        {
            Some(chain) => chain.files.push_back((arg, input.source)),
            None => chains.push(Chain {
                venue: input.venue,
                inst,
                files: [(arg, input.source)].into(),
                reader: None,
                head: None,
            }),
        }
    }
    // Recordings that can lie whole in memory are mapped, not read. On two threads at full
    // speed the helper thread finds the lines and both threads parse them (`shared_parse`),
    // in place or copied out of a reader's buffer; a paced replay's reader keeps both.
    let whole = match (threads, pace) {
        (ReplayThreads::One, _) | (ReplayThreads::Two(_), Pace::Asap) => WholeFiles::of(&chains)?,
        (ReplayThreads::Two(_), _) => None,
    };
    let members: Vec<InstrumentId> = chains.iter().map(|c| c.inst).collect();
    let new_parsers = || -> Vec<VenueParser> {
        chains
            .iter()
            .map(|c| {
                VenueParser::new(c.venue, table.clone()).counting_block_trades(count_block_trades)
            })
            .collect()
    };
    let mut parsers = new_parsers();
    // The second thread's, when it shares the parse.
    let mut helper_parsers = match (threads, pace) {
        (ReplayThreads::Two(_), Pace::Asap) => new_parsers(),
        _ => Vec::new(),
    };
    let mut engine =
        Engine::new(table.clone(), imbalance, Some(&members)).context("instrument table")?;
    engine.set_member_timeout_ms(member_timeout_ms);
    if whole.is_none() {
        for chain in &mut chains {
            chain.advance()?;
        }
    }
    let venues: Vec<Venue> = chains.iter().map(|c| c.venue).collect();
    let mut out = CoreSink::create(&engine, &venues, outputs, shm.as_ref())?;
    if !strategies.is_empty() {
        out = out.with_strategies(strategy_set(&strategies, &engine)?);
    }
    let paced = pace != Pace::Asap;
    let mut pacer = Pacer { pace, start: None };
    let mut side = EngineSide {
        engine,
        out,
        feeds: VenueFeedCounters::default(),
        chain_venues: venues.iter().map(|v| v.index()).collect(),
        control_messages: 0,
        error: None,
    };
    let read = match (threads, whole) {
        (ReplayThreads::One, Some(files)) => {
            let mut lines = WholeChains::new(&files)?;
            let mut parser = LineParser {
                lines_in: LinesIn::Recordings(&files.recordings),
                parsers: &mut parsers,
                insts: &members,
            };
            read_whole(&mut lines, &mut parser, &mut pacer, &mut side)
        }
        (ReplayThreads::One, None) => read_chains(&mut chains, &mut parsers, &mut pacer, &mut side),
        (ReplayThreads::Two(idle), whole) if !paced => {
            let lines_in = match &whole {
                Some(files) => LinesIn::Recordings(&files.recordings),
                None => LinesIn::Batch,
            };
            let own = LineParser {
                lines_in,
                parsers: &mut parsers,
                insts: &members,
            };
            let helper = LineParser {
                lines_in,
                parsers: &mut helper_parsers,
                insts: &members,
            };
            match &whole {
                Some(files) => {
                    let mut lines = WholeChains::new(files)?;
                    shared_parse::share_parse(idle, |_| lines.next(), own, helper, &mut side)
                }
                None => {
                    let mut lines = CopiedChains {
                        chains: &mut chains,
                        pending: None,
                    };
                    let next = |batch: &mut Vec<u8>| lines.next(batch);
                    shared_parse::share_parse(idle, next, own, helper, &mut side)
                }
            }
        }
        // Paced (never mapped): the reader's thread reads and parses, as live.
        (ReplayThreads::Two(idle), _) => {
            handoff::two_threads(
                idle,
                paced,
                |ring| read_chains(&mut chains, &mut parsers, &mut pacer, ring),
                |h| side.apply(h),
            )
            .0
        }
    };
    let EngineSide {
        mut engine,
        mut out,
        feeds,
        control_messages,
        error,
        ..
    } = side;
    if let Some(e) = error {
        return Err(e).context("writing output");
    }
    read?;
    engine.finish(&mut out);
    let health = out.finish(&engine, &feeds);
    if let Some(e) = out.jsonl.take_error() {
        return Err(e).context("writing output");
    }
    let mut summary = ReplaySummary {
        control_messages,
        health,
        ..ReplaySummary::default()
    };
    let total: FeedCounters = feeds.iter().copied().sum();
    (summary.messages, summary.parse_errors) = (total.messages, total.parse_errors);
    let bar_counters = engine.bars().counters();
    summary.engine = engine.counters();
    summary.late_trades = bar_counters.late_trades;
    summary.non_taker_trades = bar_counters.non_taker_trades;
    (summary.bars, summary.tops) = out.jsonl.rows();
    summary.signals = out.strategies().map(|s| s.counters()).unwrap_or_default();
    Ok(summary)
}
