//! One parser type for every supported venue dialect, chosen at set-up by [`Venue`].

use crate::binance::coinm::BinanceCoinm;
use crate::binance::spot::BinanceSpot;
use crate::binance::usdm::BinanceUsdm;
use crate::binance::BinanceParser;
use crate::bybit::linear::BybitLinear;
use crate::bybit::spot::BybitSpot;
use crate::bybit::BybitParser;
use crate::parsed::Parsed;
use crate::ParseError;
use flowcore_core::event::{MarketEvent, Nanos};
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};

/// A dialect parser for one venue.
#[derive(Debug)]
pub enum VenueParser {
    /// Binance spot.
    BinanceSpot(BinanceParser<BinanceSpot>),
    /// Binance USD-M futures.
    BinanceUsdm(BinanceParser<BinanceUsdm>),
    /// Binance COIN-M futures.
    BinanceCoinm(BinanceParser<BinanceCoinm>),
    /// Bybit spot.
    BybitSpot(BybitParser<BybitSpot>),
    /// Bybit linear perpetuals.
    BybitLinear(BybitParser<BybitLinear>),
}

impl VenueParser {
    /// The parser of `venue`, resolving symbols against `table`.
    pub fn new(venue: Venue, table: InstrumentTable) -> Self {
        match venue {
            Venue::BinanceSpot => Self::BinanceSpot(BinanceParser::new(table)),
            Venue::BinanceUsdm => Self::BinanceUsdm(BinanceParser::new(table)),
            Venue::BinanceCoinm => Self::BinanceCoinm(BinanceParser::new(table)),
            Venue::BybitSpot => Self::BybitSpot(BybitParser::new(table)),
            Venue::BybitLinear => Self::BybitLinear(BybitParser::new(table)),
        }
    }

    /// Counts Bybit block trades (`BT: true`, negotiated off the book) as taker flow in
    /// bars; off by default. Other venues' trade streams carry none.
    #[must_use]
    pub fn counting_block_trades(mut self, on: bool) -> Self {
        match &mut self {
            Self::BybitSpot(p) => p.count_block_trades = on,
            Self::BybitLinear(p) => p.count_block_trades = on,
            _ => {}
        }
        self
    }

    /// See [`BinanceParser::parse`] and [`BybitParser::parse`].
    ///
    /// # Errors
    /// [`ParseError`] for a refused message; nothing was emitted then.
    #[inline]
    pub fn parse(
        &mut self,
        local_ts: Nanos,
        msg: &[u8],
        snapshot_for: Option<InstrumentId>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        match self {
            Self::BinanceSpot(p) => p.parse(local_ts, msg, snapshot_for, emit),
            Self::BinanceUsdm(p) => p.parse(local_ts, msg, snapshot_for, emit),
            Self::BinanceCoinm(p) => p.parse(local_ts, msg, snapshot_for, emit),
            Self::BybitSpot(p) => p.parse(local_ts, msg, snapshot_for, emit),
            Self::BybitLinear(p) => p.parse(local_ts, msg, snapshot_for, emit),
        }
    }
}
