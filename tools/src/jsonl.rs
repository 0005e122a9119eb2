//! JSONL rows for bars and tops (docs/REPLAY.md "Output"): decimals as strings at their
//! instrument's scale, keys in a fixed order.

use flowcore_core::bars::{Bar, BarEngine, BarKey, AGG_NOTIONAL_SCALE, AGG_QTY_SCALE};
use flowcore_core::book::PriceLevel;
use flowcore_core::decimal::Fixed;
use flowcore_core::engine::TopRow;
use flowcore_core::imbalance::OBI_SCALE;
use flowcore_core::instrument::InstrumentTable;
use std::fmt::Write;

struct Opt<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "\"{v}\""),
            None => f.write_str("null"),
        }
    }
}

/// Formats rows; holds the names and scales it needs (the engine is busy while it runs).
#[derive(Debug, Clone)]
pub struct RowFormat {
    table: InstrumentTable,
    /// (`agg-spot`/`agg-perp`, base asset) per aggregate id.
    aggregates: Vec<(&'static str, String)>,
}

impl RowFormat {
    /// Names for the instruments of `table` and the aggregates of `bars`.
    pub fn new(table: &InstrumentTable, bars: &BarEngine) -> Self {
        let aggregates = bars
            .aggregates()
            .iter()
            .map(|a| (a.label(), a.base.clone()))
            .collect();
        Self {
            table: table.clone(),
            aggregates,
        }
    }

    /// Appends one bar row (with newline) to `out`.
    pub fn bar(&self, out: &mut String, bar: &Bar) {
        write_bar(out, &self.table, &self.aggregates, bar);
    }

    /// Appends one tops row (with newline) to `out`.
    pub fn top(&self, out: &mut String, row: &TopRow) {
        write_top(out, &self.table, row);
    }
}

fn write_bar(
    out: &mut String,
    table: &InstrumentTable,
    aggregates: &[(&'static str, String)],
    bar: &Bar,
) {
    let (venue, symbol, ps, qs, ns) = match bar.key {
        BarKey::Instrument(id) => {
            let i = table.get(id);
            (
                i.venue.name(),
                i.symbol.as_str(),
                i.price_scale,
                i.size_scale,
                i.price_scale + i.size_scale,
            )
        }
        BarKey::Aggregate(a) => {
            let (label, base) = &aggregates[a.0 as usize];
            (*label, base.as_str(), 0, AGG_QTY_SCALE, AGG_NOTIONAL_SCALE)
        }
    };
    let px = |v: Option<i64>| Opt(v.map(|m| Fixed::new(m as i128, ps)));
    let qty = |v: i128| Fixed::new(v, qs);
    let notional = |v: i128| Fixed::new(v, ns);
    let _ = writeln!(
        out,
        "{{\"venue\":\"{venue}\",\"symbol\":\"{symbol}\",\"ts\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},\
         \"buy_qty\":\"{}\",\"sell_qty\":\"{}\",\"delta\":\"{}\",\"cvd\":\"{}\",\"trades\":{},\"vwap\":{},\
         \"buy_notional\":\"{}\",\"sell_notional\":\"{}\",\"complete\":{}}}",
        bar.ts_ms,
        px(bar.ohlc.map(|o| o.open)),
        px(bar.ohlc.map(|o| o.high)),
        px(bar.ohlc.map(|o| o.low)),
        px(bar.ohlc.map(|o| o.close)),
        qty(bar.buy_qty),
        qty(bar.sell_qty),
        qty(bar.delta),
        qty(bar.cvd),
        bar.trades,
        px(bar.vwap),
        notional(bar.buy_notional),
        notional(bar.sell_notional),
        bar.complete,
    );
}

fn write_top(out: &mut String, table: &InstrumentTable, row: &TopRow) {
    let i = table.get(row.inst);
    let level = |l: Option<Option<PriceLevel>>| {
        let l = l.flatten();
        (
            Opt(l.map(|l| Fixed::new(l.px as i128, i.price_scale))),
            Opt(l.map(|l| Fixed::new(l.qty as i128, i.size_scale))),
        )
    };
    let (bid_px, bid_qty) = level(row.top.map(|t| t.bid));
    let (ask_px, ask_qty) = level(row.top.map(|t| t.ask));
    let obi = |v: Option<Option<i64>>| Opt(v.flatten().map(|m| Fixed::new(m as i128, OBI_SCALE)));
    let _ = writeln!(
        out,
        "{{\"venue\":\"{}\",\"symbol\":\"{}\",\"ts\":{},\"bid_px\":{bid_px},\"bid_qty\":{bid_qty},\"ask_px\":{ask_px},\
         \"ask_qty\":{ask_qty},\"obi_l1\":{},\"obi\":{},\"synced\":{}}}",
        i.venue.name(),
        i.symbol,
        row.ts_ms,
        obi(row.top.map(|t| t.obi_l1)),
        obi(row.top.map(|t| t.obi)),
        row.top.is_some(),
    );
}
