//! REST trade history (`GET /api/v3/historicalTrades`, `/fapi/v1/...`, `/dapi/v1/...`):
//! the answer that fills a hole in trade ids after a disconnect.
//!
//! ```text
//! [{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012",
//!   "time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}, ...]
//! ```
//! The same shape on every Binance market (futures say `baseQty` on COIN-M and omit
//! `isBestMatch`; both are ignored). Futures history holds market trades only, so every
//! trade in it is taker flow. It carries no event time: the trade time stands in for it.
//! The answer is emitted framed as `BackfillBegin`, `Trade`..., `BackfillEnd`.

use super::{boolean, BinanceDialect, BinanceParser};
use crate::fields::{decimal, time_ms, uint};
use crate::json::{Raw, Scanner};
use crate::parsed::Parsed;
use crate::ParseError;
use core::num::NonZeroU64;
use flowcore_core::event::{
    Aggressor, EventKind, MarketEvent, Nanos, SessionEvent, Trade, TradeSource,
};
use flowcore_core::instrument::InstrumentId;

impl<D: BinanceDialect> BinanceParser<D> {
    /// Parses a trade-history answer for `inst`. The whole answer is checked before any
    /// event is emitted.
    ///
    /// # Errors
    /// [`ParseError`] for malformed JSON, missing or mistyped fields, inexact decimals.
    pub fn trade_history(
        &mut self,
        inst: InstrumentId,
        local_ts: Nanos,
        msg: &[u8],
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        let i = self.table.get(inst);
        let (price_scale, size_scale) = (i.price_scale, i.size_scale);
        self.history.clear();
        let mut scanner = Scanner::new(msg);
        let history = &mut self.history;
        scanner.array::<ParseError>(|s| {
            let mut f: [Option<Raw<'_>>; 5] = [None; 5];
            s.object::<ParseError>(|key, value| {
                let slot = match key {
                    b"id" => 0,
                    b"price" => 1,
                    b"qty" => 2,
                    b"time" => 3,
                    b"isBuyerMaker" => 4,
                    _ => return Ok(()),
                };
                f[slot] = Some(value);
                Ok(())
            })?;
            let time = time_ms(f[3], "time")?;
            history.push(Trade {
                trade_id: uint(f[0], "id")?,
                px: decimal(f[1], "price", price_scale)?,
                qty: decimal(f[2], "qty", size_scale)?,
                aggressor: if boolean(f[4], "isBuyerMaker")? {
                    Aggressor::Sell
                } else {
                    Aggressor::Buy
                },
                trade_ts: time,
                exch_ts: time,
                is_taker_flow: true,
                source: TradeSource::Trade,
            });
            Ok(())
        })?;
        scanner.finish()?;
        let event = |kind| MarketEvent {
            inst,
            local_ts,
            kind,
        };
        emit(event(EventKind::Session(SessionEvent::BackfillBegin)));
        let mut last_id = None;
        for trade in &self.history {
            last_id = last_id.max(NonZeroU64::new(trade.trade_id));
            emit(event(EventKind::Trade(*trade)));
        }
        emit(event(EventKind::Session(SessionEvent::BackfillEnd {
            last_id,
        })));
        Ok(Parsed::Events(self.history.len() as u32 + 2))
    }
}

#[cfg(test)]
mod tests {
    use crate::binance::spot::BinanceSpot;
    use crate::binance::usdm::BinanceUsdm;
    use crate::binance::BinanceParser;
    use crate::ParseError;
    use flowcore_core::event::{Aggressor, EventKind, MarketEvent, SessionEvent};
    use flowcore_core::instrument::{InstrumentTable, Venue};

    fn events<D: crate::binance::BinanceDialect>(
        venue: Venue,
        symbol: &str,
        msg: &str,
    ) -> Result<Vec<EventKind>, ParseError> {
        let table = InstrumentTable::binance_defaults();
        let inst = table.find(venue, symbol.as_bytes()).unwrap();
        let mut parser = BinanceParser::<D>::new(table);
        let mut out = Vec::new();
        parser.trade_history(inst, 7, msg.as_bytes(), &mut |e: MarketEvent| {
            out.push(e.kind)
        })?;
        Ok(out)
    }

    #[test]
    fn a_spot_answer_is_framed_trades_in_order() {
        // Binance's documented example shape, at BTCUSDT's scales.
        let msg = r#"[{"id":28457,"price":"61800.01000000","qty":"0.00120000","quoteQty":"74.16","time":1723161256322,"isBuyerMaker":true,"isBestMatch":true},
                      {"isBuyerMaker":false,"time":1723161256400,"qty":"1.5","price":"61800.02","id":28458}]"#;
        let out = events::<BinanceSpot>(Venue::BinanceSpot, "BTCUSDT", msg).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], EventKind::Session(SessionEvent::BackfillBegin));
        let EventKind::Trade(first) = out[1] else {
            panic!("a trade")
        };
        assert_eq!(first.trade_id, 28457);
        assert_eq!(first.px, 6_180_001);
        assert_eq!(first.qty, 120_000);
        assert_eq!(first.aggressor, Aggressor::Sell);
        assert_eq!(first.trade_ts, 1_723_161_256_322_000_000);
        let EventKind::Trade(second) = out[2] else {
            panic!("a trade")
        };
        assert_eq!((second.trade_id, second.aggressor), (28458, Aggressor::Buy));
        assert!(matches!(
            out[3],
            EventKind::Session(SessionEvent::BackfillEnd { last_id: Some(id) }) if id.get() == 28458
        ));
    }

    #[test]
    fn an_empty_answer_ends_with_no_last_id_and_bad_ones_emit_nothing() {
        let out = events::<BinanceUsdm>(Venue::BinanceUsdm, "BTCUSDT", "[]").unwrap();
        assert_eq!(
            out,
            [
                EventKind::Session(SessionEvent::BackfillBegin),
                EventKind::Session(SessionEvent::BackfillEnd { last_id: None })
            ]
        );
        for bad in [
            r#"[{"id":1,"price":"1.001","qty":"1","time":1,"isBuyerMaker":true}]"#,
            r#"[{"id":1,"price":"1.0","qty":"1","time":1}]"#,
            r#"[{"id":"1","price":"1.0","qty":"1","time":1,"isBuyerMaker":true}]"#,
            r#"[{"id":1,"price":"1.0","qty":"1","time":1,"isBuyerMaker":true}"#,
            r#"{"code":-2014,"msg":"API-key format invalid."}"#,
        ] {
            assert!(
                events::<BinanceUsdm>(Venue::BinanceUsdm, "BTCUSDT", bad).is_err(),
                "{bad}"
            );
        }
    }
}
