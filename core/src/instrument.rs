//! Instruments: what a (venue, symbol) pair trades and at which scales its numbers live.
//!
//! Every price and size in an event is a mantissa at the scales held here, so the table is
//! the one place that knows how to read `6183763` as `61837.63`. Ids are indices into the
//! table, dense from 0, so per-instrument state lives in plain arrays on the hot path.

use core::fmt;

/// A venue dialect: one exchange API family. Adding a venue adds a variant and a file in
/// `feeds/`, not a rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Venue {
    /// Binance spot (`stream.binance.com`).
    BinanceSpot,
    /// Binance USD-M futures (`fstream.binance.com`).
    BinanceUsdm,
    /// Binance COIN-M futures (`dstream.binance.com`).
    BinanceCoinm,
    /// Bybit v5 spot (`stream.bybit.com/v5/public/spot`).
    BybitSpot,
    /// Bybit v5 linear (USDT) perpetuals (`stream.bybit.com/v5/public/linear`).
    BybitLinear,
}

impl Venue {
    /// Every venue, in a stable order (indexes per-venue arrays).
    pub const ALL: [Venue; 5] = [
        Venue::BinanceSpot,
        Venue::BinanceUsdm,
        Venue::BinanceCoinm,
        Venue::BybitSpot,
        Venue::BybitLinear,
    ];

    /// The name used in config, on the command line and in output.
    pub const fn name(self) -> &'static str {
        match self {
            Venue::BinanceSpot => "binance-spot",
            Venue::BinanceUsdm => "binance-usdm",
            Venue::BinanceCoinm => "binance-coinm",
            Venue::BybitSpot => "bybit-spot",
            Venue::BybitLinear => "bybit-linear",
        }
    }

    /// True where a symbol's trade ids are consecutive (Binance `t`/`a`), so that the ids
    /// themselves show a missed trade. Bybit's are not (linear ids are UUIDs).
    pub const fn has_consecutive_trade_ids(self) -> bool {
        matches!(
            self,
            Venue::BinanceSpot | Venue::BinanceUsdm | Venue::BinanceCoinm
        )
    }

    /// Parses [`Venue::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Dense index for per-venue arrays, in `0..Venue::ALL.len()`.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of market an instrument is: decides which CVD aggregate it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarketKind {
    /// Spot: quantities in base units.
    Spot,
    /// Perpetual swap, see [`ContractSize`] for its quantity unit.
    Perpetual,
}

/// The unit of an instrument's quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContractSize {
    /// Quantity is in base units (spot, USD-M linear perpetuals).
    Base,
    /// Quantity counts contracts worth a fixed amount of quote currency each
    /// (COIN-M inverse: BTCUSD_PERP is 100 USD a contract). The amount is a mantissa at
    /// `scale`.
    Quote {
        /// Quote value of one contract, as a mantissa.
        mantissa: i64,
        /// Decimal scale of `mantissa`.
        scale: u8,
    },
}

/// Dense instrument id: an index into the [`InstrumentTable`], `0..table.len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstrumentId(pub u16);

impl InstrumentId {
    /// The index into per-instrument arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Static facts about one tradable instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Where it trades.
    pub venue: Venue,
    /// The venue's symbol, upper case (`BTCUSDT`).
    pub symbol: String,
    /// Base asset (`BTC`): the key of the cross-venue aggregates.
    pub base: String,
    /// Quote asset (`USDT`, `USD`).
    pub quote: String,
    /// Spot or perpetual.
    pub kind: MarketKind,
    /// Minimum price increment, as a mantissa at `price_scale`.
    pub tick: i64,
    /// Minimum quantity increment, as a mantissa at `size_scale`.
    pub lot: i64,
    /// Decimal digits of prices, `0..=MAX_SCALE`.
    pub price_scale: u8,
    /// Decimal digits of quantities, `0..=MAX_SCALE`.
    pub size_scale: u8,
    /// Unit of the quantity.
    pub contract: ContractSize,
}

/// Why an instrument table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// Two entries for one (venue, symbol).
    #[error("instrument {venue}:{symbol} is listed twice")]
    Duplicate {
        /// Venue of the duplicate.
        venue: Venue,
        /// Symbol of the duplicate.
        symbol: String,
    },
    /// A scale above [`crate::decimal::MAX_SCALE`].
    #[error("instrument {symbol}: scale {scale} is above the maximum 18")]
    ScaleTooLarge {
        /// Symbol of the instrument.
        symbol: String,
        /// The refused scale.
        scale: u8,
    },
    /// More instruments than ids.
    #[error("more than 65535 instruments")]
    Full,
}

/// All instruments known to a run, looked up by id (hot path) or by name (set-up).
#[derive(Debug, Clone, Default)]
pub struct InstrumentTable {
    instruments: Vec<Instrument>,
}

impl InstrumentTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instrument and returns its id.
    ///
    /// # Errors
    /// [`InstrumentError`] for a duplicate (venue, symbol), a scale above 18, or a full table.
    pub fn add(&mut self, instrument: Instrument) -> Result<InstrumentId, InstrumentError> {
        if self
            .find(instrument.venue, instrument.symbol.as_bytes())
            .is_some()
        {
            return Err(InstrumentError::Duplicate {
                venue: instrument.venue,
                symbol: instrument.symbol,
            });
        }
        let scale = instrument.price_scale.max(instrument.size_scale);
        if scale > crate::decimal::MAX_SCALE {
            return Err(InstrumentError::ScaleTooLarge {
                symbol: instrument.symbol,
                scale,
            });
        }
        let id = u16::try_from(self.instruments.len()).map_err(|_| InstrumentError::Full)?;
        self.instruments.push(instrument);
        Ok(InstrumentId(id))
    }

    /// The instrument behind an id handed out by this table.
    ///
    /// # Panics
    /// If `id` came from another table and is out of range.
    #[inline]
    pub fn get(&self, id: InstrumentId) -> &Instrument {
        &self.instruments[id.index()]
    }

    /// Finds a venue's symbol, compared byte for byte (symbols are upper case on every
    /// Binance stream payload). A linear scan: tables hold tens of entries and the scan
    /// touches one cache line per entry; a map would hash on every message.
    #[inline]
    pub fn find(&self, venue: Venue, symbol: &[u8]) -> Option<InstrumentId> {
        self.instruments
            .iter()
            .position(|i| i.venue == venue && i.symbol.as_bytes() == symbol)
            .map(|i| InstrumentId(i as u16))
    }

    /// Number of instruments; ids run `0..len()`.
    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    /// True when no instrument was added.
    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    /// Iterates `(id, instrument)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (InstrumentId, &Instrument)> {
        self.instruments
            .iter()
            .enumerate()
            .map(|(i, inst)| (InstrumentId(i as u16), inst))
    }

    /// The bundled defaults: every instrument of the shared Binance recordings, with
    /// scales that hold each of their prices and sizes exactly (checked by a test over the
    /// bundled files). Ticks and lots are Binance's filters of August 2024.
    pub fn binance_defaults() -> Self {
        Self::from_rows(&BINANCE_ROWS)
    }

    /// Every bundled instrument: [`Self::binance_defaults`] (same ids), then Bybit spot and
    /// linear BTCUSDT and ETHUSDT (scales from Bybit's instrument info: spot base precision
    /// 0.000001 BTC / 0.00001 ETH, linear tick 0.10 / 0.01 and lot 0.001 / 0.01; prices at 2
    /// digits hold mark and index prices too). The CLI's table when none is given.
    pub fn bundled_defaults() -> Self {
        Self::from_rows(BINANCE_ROWS.iter().chain(&BYBIT_ROWS))
    }

    fn from_rows<'a>(rows: impl IntoIterator<Item = &'a DefaultRow>) -> Self {
        let mut table = Self::new();
        for &(venue, symbol, base, quote, kind, tick, lot, price_scale, size_scale, contract) in
            rows
        {
            table
                .add(Instrument {
                    venue,
                    symbol: symbol.to_owned(),
                    base: base.to_owned(),
                    quote: quote.to_owned(),
                    kind,
                    tick,
                    lot,
                    price_scale,
                    size_scale,
                    contract,
                })
                .expect("bundled defaults are unique and in range");
        }
        table
    }
}

/// One bundled instrument: venue, symbol, base, quote, kind, tick, lot, price scale, size
/// scale, contract size.
type DefaultRow = (
    Venue,
    &'static str,
    &'static str,
    &'static str,
    MarketKind,
    i64,
    i64,
    u8,
    u8,
    ContractSize,
);

/// Binance's filters of August 2024, at scales that hold every value of the bundled files.
const BINANCE_ROWS: [DefaultRow; 5] = [
    (
        Venue::BinanceSpot,
        "BTCUSDT",
        "BTC",
        "USDT",
        MarketKind::Spot,
        1,
        1_000,
        2,
        8,
        ContractSize::Base,
    ),
    (
        Venue::BinanceSpot,
        "ETHUSDT",
        "ETH",
        "USDT",
        MarketKind::Spot,
        1,
        10_000,
        2,
        8,
        ContractSize::Base,
    ),
    (
        Venue::BinanceUsdm,
        "BTCUSDT",
        "BTC",
        "USDT",
        MarketKind::Perpetual,
        10,
        1,
        2,
        3,
        ContractSize::Base,
    ),
    (
        Venue::BinanceUsdm,
        "ETHUSDT",
        "ETH",
        "USDT",
        MarketKind::Perpetual,
        1,
        1,
        2,
        3,
        ContractSize::Base,
    ),
    (
        Venue::BinanceCoinm,
        "BTCUSD_PERP",
        "BTC",
        "USD",
        MarketKind::Perpetual,
        1,
        1,
        1,
        0,
        ContractSize::Quote {
            mantissa: 100,
            scale: 0,
        },
    ),
];

/// Bybit v5 (samples of August 2026 in data/samples).
const BYBIT_ROWS: [DefaultRow; 4] = [
    (
        Venue::BybitSpot,
        "BTCUSDT",
        "BTC",
        "USDT",
        MarketKind::Spot,
        1,
        1,
        2,
        6,
        ContractSize::Base,
    ),
    (
        Venue::BybitSpot,
        "ETHUSDT",
        "ETH",
        "USDT",
        MarketKind::Spot,
        1,
        1,
        2,
        5,
        ContractSize::Base,
    ),
    (
        Venue::BybitLinear,
        "BTCUSDT",
        "BTC",
        "USDT",
        MarketKind::Perpetual,
        10,
        1,
        2,
        3,
        ContractSize::Base,
    ),
    (
        Venue::BybitLinear,
        "ETHUSDT",
        "ETH",
        "USDT",
        MarketKind::Perpetual,
        1,
        1,
        2,
        2,
        ContractSize::Base,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_by_venue_and_symbol() {
        let t = InstrumentTable::binance_defaults();
        let spot = t.find(Venue::BinanceSpot, b"BTCUSDT").unwrap();
        let usdm = t.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
        assert_ne!(spot, usdm);
        assert_eq!(t.get(usdm).size_scale, 3);
        assert!(t.find(Venue::BinanceCoinm, b"BTCUSDT").is_none());
    }

    #[test]
    fn duplicates_are_refused() {
        let mut t = InstrumentTable::binance_defaults();
        let again = t.get(InstrumentId(0)).clone();
        assert!(matches!(
            t.add(again),
            Err(InstrumentError::Duplicate { .. })
        ));
    }
}
