//! Bybit v5 linear USDT perpetuals (`stream.bybit.com/v5/public/linear`): trade ids are
//! UUIDs, not in any order; `type` comes before `ts`; quantities are in base units.

use super::BybitDialect;
use flowcore_core::instrument::Venue;

/// The Bybit linear dialect.
#[derive(Debug, Clone, Copy)]
pub struct BybitLinear;

impl BybitDialect for BybitLinear {
    const VENUE: Venue = Venue::BybitLinear;
    const NUMERIC_TRADE_IDS: bool = false;
}
