//! The shared-memory ABI, version 1: file header, slot layout and record types.
//!
//! Everything a reader in another language needs is in `shm/ABI.md`; this module is the
//! same text as code. Every layout here is checked at compile time (sizes, alignment,
//! offsets) and the record field lists are hashed into the header's `layout_hash`, so a
//! reader built against another layout refuses the file instead of misreading it.

use bytemuck::{Pod, Zeroable};

/// First eight bytes of every flowcore shared-memory file.
pub const MAGIC: [u8; 8] = *b"FLOWCSHM";

/// The ABI version this crate writes and reads. A reader refuses any other version.
pub const ABI_VERSION: u32 = 1;

/// Size of the file header; slots start right after it.
pub const HEADER_SIZE: usize = 256;

/// Slots are aligned (and sized) to this many bytes: one cache line.
pub const SLOT_ALIGN: usize = 64;

/// Bytes of the sequence stamp at the start of every slot.
pub const STAMP_SIZE: usize = 8;

/// How a file's slots are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FileKind {
    /// An append-only ring: record `n` lives in slot `n % capacity`.
    Ring = 1,
    /// A latest-value table: slot `k` holds the latest record for key `k` (a symbol id).
    Table = 2,
}

/// Which stream a file carries; each has its own record type and file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum StreamId {
    /// [`BarRecord`] ring, `bars.ring`.
    Bars = 1,
    /// [`TopRecord`] ring, `tops.ring`: one book top and imbalance sample per book per second.
    Tops = 2,
    /// [`TradeRecord`] ring, `trades.ring`.
    Trades = 3,
    /// [`BboRecord`] ring, `bbo.ring`: best bid/ask as the venue publishes it.
    Bbo = 4,
    /// [`Book20Record`] table, `book20.table`: the latest top-20 book per symbol.
    Book20 = 5,
    /// [`HealthRecord`] ring, `health.ring`.
    Health = 6,
    /// [`SignalRecord`] ring, `signals.ring`.
    Signals = 7,
    /// [`SymbolRecord`] table, `symbols.table`: what each symbol id means.
    Symbols = 8,
    /// [`StatsRecord`] ring, `stats.ring`: venue statistics per instrument per second.
    Stats = 9,
    /// [`StrategyRecord`] table, `strategies.table`: what each strategy id means.
    Strategies = 10,
}

impl StreamId {
    /// Every stream, in id order.
    pub const ALL: [StreamId; 10] = [
        StreamId::Bars,
        StreamId::Tops,
        StreamId::Trades,
        StreamId::Bbo,
        StreamId::Book20,
        StreamId::Health,
        StreamId::Signals,
        StreamId::Symbols,
        StreamId::Stats,
        StreamId::Strategies,
    ];

    /// True for the streams added after the first writers: a bus of an older writer has
    /// no file for them, and readers treat that as a stream with no records.
    pub const fn is_optional(self) -> bool {
        matches!(self, StreamId::Stats | StreamId::Strategies)
    }

    /// The file name under the bus directory.
    pub const fn file_name(self) -> &'static str {
        match self {
            StreamId::Bars => "bars.ring",
            StreamId::Tops => "tops.ring",
            StreamId::Trades => "trades.ring",
            StreamId::Bbo => "bbo.ring",
            StreamId::Book20 => "book20.table",
            StreamId::Health => "health.ring",
            StreamId::Signals => "signals.ring",
            StreamId::Symbols => "symbols.table",
            StreamId::Stats => "stats.ring",
            StreamId::Strategies => "strategies.table",
        }
    }

    /// Ring or table.
    pub const fn kind(self) -> FileKind {
        match self {
            StreamId::Book20 | StreamId::Symbols | StreamId::Strategies => FileKind::Table,
            _ => FileKind::Ring,
        }
    }

    /// The stream with this id.
    pub const fn from_u32(v: u32) -> Option<StreamId> {
        Some(match v {
            1 => StreamId::Bars,
            2 => StreamId::Tops,
            3 => StreamId::Trades,
            4 => StreamId::Bbo,
            5 => StreamId::Book20,
            6 => StreamId::Health,
            7 => StreamId::Signals,
            8 => StreamId::Symbols,
            9 => StreamId::Stats,
            10 => StreamId::Strategies,
            _ => return None,
        })
    }
}

/// The first [`HEADER_SIZE`] bytes of every file.
///
/// Written completely before the file is renamed into place and never changed after, except
/// `write_seq` and `heartbeat_ns`, which sit on their own cache line (offset 128) and are
/// read with atomic loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct FileHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// [`FileKind`] as a number.
    pub kind: u32,
    /// [`StreamId`] as a number.
    pub stream: u32,
    /// [`Record::LAYOUT_HASH`] of the record type.
    pub layout_hash: u64,
    /// Changes on every writer start (never 0); a reader that sees another epoch at the
    /// path re-opens.
    pub writer_epoch: u64,
    /// Number of slots (a power of two for rings).
    pub capacity: u64,
    /// Bytes of one record (the payload after the stamp).
    pub record_size: u32,
    /// Bytes of one slot: stamp plus record, rounded up to [`SLOT_ALIGN`].
    pub slot_size: u32,
    /// Total file size: `header_size + capacity * slot_size`.
    pub file_size: u64,
    /// When the writer created the file, ns since the Unix epoch.
    pub created_ns: u64,
    /// [`Record::VERSION`] of the record type.
    pub record_version: u32,
    /// Reserved, zero.
    pub reserved0: u32,
    /// Reserved, zero.
    pub reserved1: [u64; 6],
    /// Records published so far (rings) or updates (tables). Atomic; its own cache line.
    pub write_seq: u64,
    /// The writer's wall clock when it last published a health record (the only time it
    /// is stored), ns since the Unix epoch; 0 before the first.
    pub heartbeat_ns: u64,
    /// Reserved, zero.
    pub reserved2: [u64; 14],
}

/// Byte offset of [`FileHeader::write_seq`].
pub const WRITE_SEQ_OFFSET: usize = core::mem::offset_of!(FileHeader, write_seq);
/// Byte offset of [`FileHeader::heartbeat_ns`].
pub const HEARTBEAT_OFFSET: usize = core::mem::offset_of!(FileHeader, heartbeat_ns);

const _: () = {
    assert!(core::mem::size_of::<FileHeader>() == HEADER_SIZE);
    assert!(WRITE_SEQ_OFFSET == 128);
    assert!(HEARTBEAT_OFFSET == 136);
    assert!(core::mem::offset_of!(FileHeader, capacity) == 40);
    assert!(core::mem::offset_of!(FileHeader, record_version) == 72);
};

/// The slot size for a record of `record_size` bytes.
pub const fn slot_size(record_size: usize) -> usize {
    (STAMP_SIZE + record_size).div_ceil(SLOT_ALIGN) * SLOT_ALIGN
}

/// A record type of the ABI: plain old data, a multiple of 8 bytes, with its layout
/// described field by field.
pub trait Record: Pod + core::fmt::Debug {
    /// The stream this record type is published on.
    const STREAM: StreamId;
    /// Record version: bumped when fields are added in reserved space.
    const VERSION: u32;
    /// `(name, type, byte offset)` of every field, in order.
    const FIELDS: &'static [(&'static str, &'static str, usize)];
    /// FNV-1a 64 over the field list (see [`layout_hash`]).
    const LAYOUT_HASH: u64 = layout_hash(Self::FIELDS);
}

/// FNV-1a 64 over `name:type@offset;` for every field, in order (ABI.md gives the exact
/// byte string, so a reader in another language can compute it too).
pub const fn layout_hash(fields: &[(&str, &str, usize)]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut f = 0;
    while f < fields.len() {
        let (name, ty, offset) = fields[f];
        h = fnv_bytes(h, name.as_bytes(), PRIME);
        h = fnv_bytes(h, b":", PRIME);
        h = fnv_bytes(h, ty.as_bytes(), PRIME);
        h = fnv_bytes(h, b"@", PRIME);
        // Offsets are below 10^6: six decimal digits without leading zeros.
        let mut digits = [0u8; 6];
        let mut n = 0;
        let mut v = offset;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            h = (h ^ digits[n] as u64).wrapping_mul(PRIME);
        }
        h = fnv_bytes(h, b";", PRIME);
        f += 1;
    }
    h
}

const fn fnv_bytes(mut h: u64, bytes: &[u8], prime: u64) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(prime);
        i += 1;
    }
    h
}

/// Declares a record: the `#[repr(C)]` struct, its [`Record`] impl with the field list,
/// and compile-time checks of its size.
macro_rules! abi_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident: stream $stream:ident, version $version:literal, size $size:literal {
            $( $(#[$fmeta:meta])* pub $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
        #[repr(C)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Record for $name {
            const STREAM: StreamId = StreamId::$stream;
            const VERSION: u32 = $version;
            const FIELDS: &'static [(&'static str, &'static str, usize)] = &[
                $( (stringify!($field), stringify!($ty), core::mem::offset_of!($name, $field)), )*
            ];
        }

        const _: () = {
            assert!(core::mem::size_of::<$name>() == $size);
            assert!(core::mem::size_of::<$name>() % 8 == 0);
            assert!(core::mem::align_of::<$name>() <= 8);
        };
    };
}

/// `flags` bits shared by records that carry decimal sums.
pub mod flags {
    /// [`super::BarRecord`]: every trade of the second is in the bar.
    pub const BAR_COMPLETE: u32 = 1 << 0;
    /// [`super::BarRecord`]: `open`..`close` are set (not for aggregates).
    pub const BAR_HAS_OHLC: u32 = 1 << 1;
    /// [`super::BarRecord`]: `vwap` is set (there were trades).
    pub const BAR_HAS_VWAP: u32 = 1 << 2;
    /// A sum did not fit an `i64` and was saturated: the record's sums are not exact.
    pub const SATURATED: u32 = 1 << 31;
    /// [`super::TopRecord`], [`super::Book20Record`]: the book is synced (else no prices).
    pub const BOOK_SYNCED: u32 = 1 << 0;
    /// [`super::TopRecord`]: `bid_px`/`bid_qty` are set.
    pub const TOP_HAS_BID: u32 = 1 << 1;
    /// [`super::TopRecord`]: `ask_px`/`ask_qty` are set.
    pub const TOP_HAS_ASK: u32 = 1 << 2;
    /// [`super::TopRecord`]: `obi_l1` is set.
    pub const TOP_HAS_OBI_L1: u32 = 1 << 3;
    /// [`super::TopRecord`]: `obi` is set.
    pub const TOP_HAS_OBI: u32 = 1 << 4;
    /// [`super::TradeRecord`]: the taker bought (else sold).
    pub const TRADE_BUYER_TAKER: u32 = 1 << 0;
    /// [`super::TradeRecord`]: from the aggregated trade stream (`aggTrade`).
    pub const TRADE_AGGREGATED: u32 = 1 << 1;
    /// [`super::TradeRecord`]: not taker flow (excluded from bars), e.g. an insurance fund fill.
    pub const TRADE_NOT_TAKER_FLOW: u32 = 1 << 2;
    /// [`super::StatsRecord`]: `mark_px` is set.
    pub const STATS_HAS_MARK: u32 = 1 << 0;
    /// [`super::StatsRecord`]: `index_px` is set.
    pub const STATS_HAS_INDEX: u32 = 1 << 1;
    /// [`super::StatsRecord`]: `open_interest` is set.
    pub const STATS_HAS_OPEN_INTEREST: u32 = 1 << 2;
    /// [`super::StatsRecord`]: `funding_rate` is set.
    pub const STATS_HAS_FUNDING_RATE: u32 = 1 << 3;
    /// [`super::StatsRecord`]: `next_funding_ms` is set.
    pub const STATS_HAS_NEXT_FUNDING: u32 = 1 << 4;
    /// [`super::StatsRecord`]: `local_ns` is set.
    pub const STATS_HAS_LOCAL_NS: u32 = 1 << 5;
}

/// [`SymbolRecord::venue`] values.
pub mod venue {
    /// Binance spot.
    pub const BINANCE_SPOT: u16 = 1;
    /// Binance USD-M futures.
    pub const BINANCE_USDM: u16 = 2;
    /// Binance COIN-M futures.
    pub const BINANCE_COINM: u16 = 3;
    /// Bybit spot.
    pub const BYBIT_SPOT: u16 = 4;
    /// Bybit linear perpetuals.
    pub const BYBIT_LINEAR: u16 = 5;
    /// The cross-venue spot aggregate of one base asset.
    pub const AGG_SPOT: u16 = 100;
    /// The cross-venue perpetual aggregate of one base asset.
    pub const AGG_PERP: u16 = 101;
}

/// Scale of [`TopRecord::obi_l1`], [`TopRecord::obi`] (the engine's OBI scale).
pub const OBI_SCALE: u8 = flowcore_core::imbalance::OBI_SCALE;
/// Scale of the signal's fractions ([`SignalRecord::confidence`], [`SignalRecord::score`]).
pub const SIGNAL_FRACTION_SCALE: u8 = flowcore_core::strategy::SIGNAL_FRACTION_SCALE;

abi_record! {
    /// What a symbol id means: one per instrument, then one per cross-venue aggregate.
    pub struct SymbolRecord: stream Symbols, version 1, size 96 {
        /// The id records carry (the slot index of this record).
        pub symbol_id: u32,
        /// [`venue`] value.
        pub venue: u16,
        /// 1 spot, 2 perpetual.
        pub market_kind: u8,
        /// 0: quantities in base units; 1: contracts worth `contract_value` quote each.
        pub contract_unit: u8,
        /// Decimal digits of price mantissas.
        pub price_scale: u8,
        /// Decimal digits of quantity mantissas (bars' qty, delta, cvd too).
        pub size_scale: u8,
        /// Decimal digits of notional mantissas in bars.
        pub notional_scale: u8,
        /// Decimal digits of `contract_value`.
        pub contract_value_scale: u8,
        /// Reserved, zero.
        pub reserved0: u32,
        /// Price tick, a mantissa at `price_scale`.
        pub tick: i64,
        /// Lot size, a mantissa at `size_scale`.
        pub lot: i64,
        /// Quote value of one contract (when `contract_unit` is 1).
        pub contract_value: i64,
        /// Venue symbol (`BTCUSDT`), or the base asset for aggregates; NUL padded.
        pub symbol: [u8; 24],
        /// Base asset, NUL padded.
        pub base: [u8; 16],
        /// Quote asset, NUL padded (empty for aggregates).
        pub quote: [u8; 16],
    }
}

abi_record! {
    /// One final one-second bar of an instrument or an aggregate.
    pub struct BarRecord: stream Bars, version 2, size 120 {
        /// Start of the second, ms since the Unix epoch.
        pub ts_ms: i64,
        /// See [`SymbolRecord`].
        pub symbol_id: u32,
        /// `flags::BAR_*`, `flags::SATURATED`.
        pub flags: u32,
        /// Price mantissas (set with `BAR_HAS_OHLC`).
        pub open: i64,
        /// Highest price.
        pub high: i64,
        /// Lowest price.
        pub low: i64,
        /// Last price.
        pub close: i64,
        /// Taker buy quantity at the symbol's size scale.
        pub buy_qty: i64,
        /// Taker sell quantity.
        pub sell_qty: i64,
        /// `buy_qty - sell_qty`.
        pub delta: i64,
        /// Cumulative delta since the writer started.
        pub cvd: i64,
        /// Volume-weighted price (set with `BAR_HAS_VWAP`).
        pub vwap: i64,
        /// Quote notional bought by takers, at the notional scale.
        pub buy_notional: i64,
        /// Quote notional sold by takers.
        pub sell_notional: i64,
        /// Number of trades.
        pub trades: u32,
        /// Aggregates: the members whose bars the second holds, bit `i` for the `i`-th
        /// instrument of the symbols table with the aggregate's base and kind, in symbol-id
        /// order (the first 32; record version 2, was reserved); 0 for an instrument.
        pub members: u32,
        /// Writer's clock when published, ns since the Unix epoch.
        pub publish_ns: i64,
    }
}

abi_record! {
    /// A book's top and imbalance at the end of one second.
    pub struct TopRecord: stream Tops, version 1, size 120 {
        /// Start of the second, ms since the Unix epoch.
        pub ts_ms: i64,
        /// See [`SymbolRecord`].
        pub symbol_id: u32,
        /// `flags::BOOK_SYNCED`, `flags::TOP_HAS_*`.
        pub flags: u32,
        /// Best bid price mantissa.
        pub bid_px: i64,
        /// Best bid size mantissa.
        pub bid_qty: i64,
        /// Best ask price mantissa.
        pub ask_px: i64,
        /// Best ask size mantissa.
        pub ask_qty: i64,
        /// Level-1 imbalance at [`OBI_SCALE`], -1..1.
        pub obi_l1: i64,
        /// Depth-weighted imbalance at [`OBI_SCALE`], -1..1.
        pub obi: i64,
        /// Writer's clock when published, ns since the Unix epoch.
        pub publish_ns: i64,
        /// Reserved, zero.
        pub reserved: [u64; 6],
    }
}

abi_record! {
    /// One trade as received.
    pub struct TradeRecord: stream Trades, version 1, size 56 {
        /// Trade time at the venue, ns since the Unix epoch.
        pub trade_ns: i64,
        /// Local receive time, ns since the Unix epoch.
        pub local_ns: i64,
        /// See [`SymbolRecord`].
        pub symbol_id: u32,
        /// `flags::TRADE_*`.
        pub flags: u32,
        /// Price mantissa.
        pub px: i64,
        /// Quantity mantissa.
        pub qty: i64,
        /// Venue trade id (aggregate id for aggregated trades).
        pub trade_id: u64,
        /// Writer's clock when published, ns since the Unix epoch.
        pub publish_ns: i64,
    }
}

abi_record! {
    /// Best bid and ask as the venue publishes them.
    pub struct BboRecord: stream Bbo, version 1, size 56 {
        /// Venue event time, ns since the Unix epoch (0 where the venue sends none).
        pub exch_ns: i64,
        /// Local receive time, ns since the Unix epoch.
        pub local_ns: i64,
        /// See [`SymbolRecord`].
        pub symbol_id: u32,
        /// Reserved, zero.
        pub flags: u32,
        /// Best bid price mantissa.
        pub bid_px: i64,
        /// Best bid size mantissa.
        pub bid_qty: i64,
        /// Best ask price mantissa.
        pub ask_px: i64,
        /// Best ask size mantissa.
        pub ask_qty: i64,
    }
}

/// Levels per side in a [`Book20Record`].
pub const BOOK_DEPTH: usize = 20;

abi_record! {
    /// The latest top-20 levels of one book (table slot = symbol id).
    pub struct Book20Record: stream Book20, version 1, size 680 {
        /// Venue event time of the last applied update, ns since the Unix epoch.
        pub exch_ns: i64,
        /// Local receive time of the last applied update.
        pub local_ns: i64,
        /// See [`SymbolRecord`].
        pub symbol_id: u32,
        /// `flags::BOOK_SYNCED` (no levels are published from an unsynced book).
        pub flags: u32,
        /// Levels filled in `bids` (best first).
        pub bid_levels: u32,
        /// Levels filled in `asks` (best first).
        pub ask_levels: u32,
        /// `[price, qty]` mantissa pairs, best bid first.
        pub bids: [[i64; 2]; 20],
        /// `[price, qty]` mantissa pairs, best ask first.
        pub asks: [[i64; 2]; 20],
        /// Writer's clock when published, ns since the Unix epoch.
        pub publish_ns: i64,
    }
}

/// [`HealthRecord::counters`] indexes.
pub mod health {
    /// Messages received.
    pub const MESSAGES: usize = 0;
    /// Events consumed by the engine.
    pub const EVENTS: usize = 1;
    /// Sequence gaps detected.
    pub const GAPS: usize = 2;
    /// Resync requests raised.
    pub const RESYNCS: usize = 3;
    /// Trades for an already final second.
    pub const LATE_TRADES: usize = 4;
    /// Messages that failed to parse.
    pub const PARSE_ERRORS: usize = 5;
    /// Batches that left a book crossed.
    pub const CROSSED_BOOKS: usize = 6;
    /// Times a producer waited on a full ring.
    pub const RING_FULL_WAITS: usize = 7;
    /// Connections re-established.
    pub const RECONNECTS: usize = 8;
    /// Records the shm writer published on every stream (the whole pipeline's record only).
    pub const PUBLISHED: usize = 9;
    /// Trades counted from the venue's trade history (holes after a disconnect).
    pub const BACKFILLED_TRADES: usize = 10;
    /// Trades dropped because their id was already counted.
    pub const DUPLICATE_TRADES: usize = 11;
    /// Connections dropped because they fell silent.
    pub const STALLS: usize = 12;
    /// Connections replaced make before break, in step.
    pub const ROTATIONS: usize = 13;
    /// Trade-id holes given up: their seconds' bars are incomplete.
    pub const UNFILLED_TRADE_GAPS: usize = 14;
    /// Messages received before their own exchange time (the local clock is behind the
    /// venue's): their lags stay negative in the percentiles.
    pub const CLOCK_BEHIND: usize = 15;
    /// Number of counters.
    pub const COUNT: usize = 16;
}

/// [`HealthRecord::lag_ns`] indexes.
pub mod lag {
    /// Median.
    pub const P50: usize = 0;
    /// 99th percentile.
    pub const P99: usize = 1;
    /// 99.9th percentile.
    pub const P999: usize = 2;
    /// Largest.
    pub const MAX: usize = 3;
}

/// [`HealthRecord::source`] of the whole pipeline's record; a feed's record carries its
/// [`venue`] code instead.
pub const HEALTH_SOURCE_PIPELINE: u32 = 0;

abi_record! {
    /// Health of the whole pipeline and of each venue's feed, once a second: cumulative
    /// counters since the writer started, and the exchange-to-local lag of the second.
    pub struct HealthRecord: stream Health, version 2, size 192 {
        /// The second these counters close, ms since the Unix epoch (exchange time).
        pub ts_ms: i64,
        /// Writer's clock when published, ns since the Unix epoch.
        pub publish_ns: i64,
        /// [`HEALTH_SOURCE_PIPELINE`], or the [`venue`] code of one venue's feed.
        pub source: u32,
        /// Reserved, zero.
        pub flags: u32,
        /// See [`health`] for the index of each counter.
        pub counters: [u64; 16],
        /// Messages with an exchange time received during the second (live trade-history
        /// answers excluded): the samples of `lag_ns`.
        pub lag_samples: u64,
        /// Local receive time minus exchange event time over those messages, ns: see [`lag`]
        /// for the index of each percentile. Zero when `lag_samples` is 0.
        pub lag_ns: [i64; 4],
    }
}

/// [`SignalRecord::action`] values.
pub mod action {
    /// Open or add to a long position.
    pub const ENTER_LONG: u8 = 1;
    /// Open or add to a short position.
    pub const ENTER_SHORT: u8 = 2;
    /// Close the position.
    pub const EXIT: u8 = 3;
}

/// [`SignalRecord::tier`] values.
pub mod tier {
    /// Seconds.
    pub const FAST: u8 = 1;
    /// Minutes.
    pub const TACTICAL: u8 = 2;
    /// Hours.
    pub const STRATEGIC: u8 = 3;
}

abi_record! {
    /// A strategy's trading signal.
    pub struct SignalRecord: stream Signals, version 1, size 248 {
        /// Unique per writer epoch, increasing.
        pub signal_id: u64,
        /// Exchange time of the data that triggered it, ns since the Unix epoch.
        pub exch_ns: i64,
        /// Local time it was produced.
        pub local_ns: i64,
        /// See [`SymbolRecord`].
        pub symbol_id: u32,
        /// Which strategy produced it.
        pub strategy_id: u32,
        /// [`action`] value.
        pub action: u8,
        /// [`tier`] value.
        pub tier: u8,
        /// Version of this record's use of the reserved space (1 today).
        pub record_version: u16,
        /// Strategy-defined reason bits.
        pub reason_bits: u32,
        /// Entry price mantissa at the symbol's price scale (0: market).
        pub entry_px: i64,
        /// Stop-loss price mantissa (0: none).
        pub stop_px: i64,
        /// Take-profit price mantissa (0: none).
        pub take_profit_px: i64,
        /// 0..1 at [`SIGNAL_FRACTION_SCALE`].
        pub confidence: i64,
        /// Strategy score at [`SIGNAL_FRACTION_SCALE`].
        pub score: i64,
        /// Suggested size, a mantissa at the symbol's size scale.
        pub size: i64,
        /// Spot aggregate CVD of the base asset at signal time (aggregate qty scale).
        pub spot_cvd: i64,
        /// Perp aggregate CVD of the base asset at signal time (aggregate qty scale).
        pub perp_cvd: i64,
        /// Reserved for later record versions, zero.
        pub reserved: [u64; 18],
    }
}

/// Scale of [`StatsRecord::mark_px`] and [`StatsRecord::index_px`]: one scale for every
/// venue, not the symbol's price scale.
pub const STAT_PRICE_SCALE: u8 = flowcore_core::event::STAT_PRICE_SCALE;
/// Scale of [`StatsRecord::funding_rate`].
pub const FUNDING_RATE_SCALE: u8 = flowcore_core::event::FUNDING_RATE_SCALE;

abi_record! {
    /// One instrument's venue statistics at the end of a second in which one changed.
    pub struct StatsRecord: stream Stats, version 1, size 120 {
        /// Start of the second, ms since the Unix epoch (exchange time).
        pub ts_ms: i64,
        /// See [`SymbolRecord`] (always an instrument).
        pub symbol_id: u32,
        /// `flags::STATS_HAS_*`: which fields are set (an unset field is 0).
        pub flags: u32,
        /// Mark price at [`STAT_PRICE_SCALE`].
        pub mark_px: i64,
        /// Index price at [`STAT_PRICE_SCALE`].
        pub index_px: i64,
        /// Open interest at the symbol's size scale.
        pub open_interest: i64,
        /// Funding rate per interval at [`FUNDING_RATE_SCALE`].
        pub funding_rate: i64,
        /// Next funding time, ms since the Unix epoch.
        pub next_funding_ms: i64,
        /// Local receive time of the last update in the row, ns since the Unix epoch.
        pub local_ns: i64,
        /// Writer's clock when published, ns since the Unix epoch.
        pub publish_ns: i64,
        /// Reserved, zero.
        pub reserved: [u64; 6],
    }
}

/// Slots of `strategies.table`: the strategy ids a bus can name. The table is created with
/// the bus, before the run's strategies are known, so its size is fixed; a strategy with a
/// larger id publishes signals without a name.
pub const STRATEGY_SLOTS: u64 = 256;

/// Bytes of [`StrategyRecord::name`].
pub const STRATEGY_NAME_LEN: usize = 32;

abi_record! {
    /// What a strategy id means: the strategy's name and the symbol it runs on.
    pub struct StrategyRecord: stream Strategies, version 1, size 56 {
        /// The id signals carry (the slot index of this record).
        pub strategy_id: u32,
        /// See [`SymbolRecord`]: the symbol the instance runs on.
        pub symbol_id: u32,
        /// The registered strategy name (`ema_cross`), ASCII, NUL padded.
        pub name: [u8; 32],
        /// Reserved, zero.
        pub reserved: [u64; 2],
    }
}

// The constant is the field's size.
const _: () = assert!(
    core::mem::offset_of!(StrategyRecord, reserved) - core::mem::offset_of!(StrategyRecord, name)
        == STRATEGY_NAME_LEN
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_whole_cache_lines() {
        assert_eq!(slot_size(120), 128);
        assert_eq!(slot_size(56), 64);
        assert_eq!(slot_size(680), 704);
        assert_eq!(slot_size(248), 256);
        assert_eq!(slot_size(core::mem::size_of::<StatsRecord>()), 128);
        assert_eq!(slot_size(core::mem::size_of::<StrategyRecord>()), 64);
    }

    #[test]
    fn every_registered_strategy_name_fits_the_strategy_record() {
        for (name, _) in flowcore_core::strategy::REGISTRY {
            assert!(name.len() <= STRATEGY_NAME_LEN, "{name}");
        }
    }

    #[test]
    fn layout_hash_is_fnv1a_of_the_documented_string() {
        // The byte string ABI.md describes, hashed by a plain loop.
        let fields = BboRecord::FIELDS;
        let text: String = fields
            .iter()
            .map(|(n, t, o)| format!("{n}:{t}@{o};"))
            .collect();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(BboRecord::LAYOUT_HASH, h);
        assert!(text.starts_with("exch_ns:i64@0;local_ns:i64@8;symbol_id:u32@16;"));
        assert_ne!(BarRecord::LAYOUT_HASH, TopRecord::LAYOUT_HASH);
    }
}
