//! What the simulator has played of one futures instrument ([`Flow`]): the state its
//! synthesised statistics ([`crate::venue_stats`]) are computed from.

use flowcore_core::decimal::pow10_i128;
use flowcore_core::event::{Trade, TradeSource};
use flowcore_core::instrument::Instrument;

/// Open interest before any trade, in whole units of the instrument's size.
pub(crate) const START_OPEN_INTEREST: i64 = 10_000;

/// One synthesised mark-price stream of an instrument.
pub(crate) struct MarkStream {
    /// Index into its venue's stream names.
    pub(crate) stream: usize,
    /// Its name (`btcusdt@markPrice@1s`), as the combined wrapper carries it.
    pub(crate) name: String,
    /// Milliseconds between two messages (1000 or 3000).
    pub(crate) period_ms: i64,
}

/// What the sim has played of one futures instrument, and its synthesised streams.
pub(crate) struct Flow {
    /// The synthesised mark-price streams.
    pub(crate) marks: Vec<MarkStream>,
    /// The largest exchange time (`E`, ms) of the instrument's messages handed to clients;
    /// `None` until one was. Never decreases.
    pub(crate) watermark_ms: Option<i64>,
    /// Price of the last trade played (mantissa at the instrument's price scale).
    pub(crate) last_trade_px: Option<i64>,
    /// Open interest (mantissa at the instrument's size scale); always >= 0.
    pub(crate) open_interest: i64,
    /// The trade stream that counts (the first one played).
    source: Option<TradeSource>,
}

impl Flow {
    /// A flow before anything is played, at the instrument's starting open interest.
    pub(crate) fn new(instrument: &Instrument, marks: Vec<MarkStream>) -> Self {
        let unit = pow10_i128(u32::from(instrument.size_scale));
        let start = i64::try_from(i128::from(START_OPEN_INTEREST) * unit).unwrap_or(i64::MAX);
        Self {
            marks,
            watermark_ms: None,
            last_trade_px: None,
            open_interest: start,
            source: None,
        }
    }

    /// One trade played: the last price, and the open interest if it is taker flow.
    pub(crate) fn on_trade(&mut self, trade: &Trade) {
        if *self.source.get_or_insert(trade.source) != trade.source {
            return;
        }
        self.last_trade_px = Some(trade.px);
        if !trade.is_taker_flow {
            return;
        }
        self.open_interest = if trade.trade_id.is_multiple_of(2) {
            self.open_interest.saturating_add(trade.qty)
        } else {
            self.open_interest.saturating_sub(trade.qty).max(0)
        };
        debug_assert!(self.open_interest >= 0);
    }
}
