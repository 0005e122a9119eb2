//! Binance USD-M futures (`fstream.binance.com`, `/public` and `/market` paths): diffs
//! carry `pu` (the futures chain rule), trades carry `X` (only `MARKET` is taker flow),
//! bookTicker carries `E` and `T`. Quantities are in base units. New undocumented fields
//! (`st`, `ps`) appear and are ignored.

use super::BinanceDialect;
use flowcore_core::instrument::Venue;

/// The Binance USD-M futures dialect.
#[derive(Debug, Clone, Copy)]
pub struct BinanceUsdm;

impl BinanceDialect for BinanceUsdm {
    const VENUE: Venue = Venue::BinanceUsdm;
    const HAS_PREV_UPDATE_ID: bool = true;
    const HAS_EXECUTION_TYPE: bool = true;
}
