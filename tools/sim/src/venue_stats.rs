//! The venue statistics the simulator synthesises for Binance futures (USD-M and COIN-M),
//! since the recordings carry none: the `<symbol>@markPrice@1s` and `<symbol>@markPrice`
//! streams and the REST open interest (`/fapi/v1/openInterest`, `/dapi/v1/openInterest`).
//! Every value is a function of what the sim has played, never of a clock: the same
//! recordings at the same pace give the same bytes.
//!
//! ```text
//! played record --on_played--> Flow of its instrument: open interest (its trades), last
//!                    |         trade price, watermark (the newest `E` handed to clients)
//!                    +-------> one markPriceUpdate per stream and second boundary the
//!                              watermark passed (mark: the sim's book, else the last trade)
//! GET openInterest --open_interest_answer--> the Flow as it stands, dated by its watermark
//! ```
//!
//! **Dating.** The engine advances its per-venue exchange-time watermark from every event,
//! statistics included, and closes bars by it: a statistic dated after the newest trade or
//! book message it received would close bars early and make live bars differ from a replay.
//! So a synthesised message or answer is never dated later than the instrument's
//! watermark, the largest `E` of its messages already handed to clients (a depth diff a gap
//! fault leaves out does not count). A mark-price message for boundary `B` goes out right
//! after the message that moved the watermark to `B` or beyond, with `E = B`.
//!
//! **Mark price** (`<symbol>@markPrice@1s`: boundaries every 1000 ms of exchange time;
//! `<symbol>@markPrice`: every 3000 ms; both multiples of the period since the epoch). After
//! a silence in the recording, at most the last [`MAX_CATCH_UP`] boundaries of a stream are
//! sent, so a long break does not flood the clients' queues. With `m` the sim's values at
//! the instrument's price scale, every printed value at 8 decimals:
//! - `p` mark = the mid of the sim's book rounded to the tick (half to even); the last
//!   trade price before the book has both sides; no message before either exists;
//! - `i` index = mark less a basis of `k` basis points of the mark (rounded half to even at
//!   8 decimals), `k = (E / 1000) mod 11 - 5` (from -5 to 5, so the 1 s and 3 s streams agree
//!   on the seconds they share); `P` (estimated settle price) = index;
//! - `r` funding rate = 0.0001 (Binance's interest rate per 8 h) + (mark - index) / index,
//!   rounded half to even at 8 decimals;
//! - `T` next funding time = the first 8-hour boundary (00:00, 08:00, 16:00 UTC) after `E`.
//!
//! **Open interest** starts at [`crate::market_flow::START_OPEN_INTEREST`] whole units of the instrument's size
//! (10 000 BTC on USD-M BTCUSDT, 10 000 contracts on COIN-M BTCUSD_PERP) and moves with
//! every taker-flow trade played (futures `X` = `MARKET`): a trade with an even id opens
//! (`+q`), one with an odd id closes (`-q`, never below zero). Only the first trade stream
//! played for an instrument counts (`@trade` and `@aggTrade` carry the same fills).

use crate::market_flow::Flow;
use crate::state::{Record, Sim, SimBook};
use flowcore_core::decimal::{pow10_i128, round_div_half_even, Fixed};
use flowcore_core::event::{BookSide, FUNDING_RATE_SCALE, STAT_PRICE_SCALE};
use flowcore_core::instrument::{Instrument, Venue};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The synthesised mark-price streams: (stream kind after `<symbol>@`, period in ms).
pub(crate) const MARK_STREAMS: [(&str, i64); 2] = [("markPrice@1s", 1000), ("markPrice", 3000)];

/// A stream sends at most this many boundaries after one played message (the latest).
pub(crate) const MAX_CATCH_UP: i64 = 60;

/// Binance's interest rate per funding interval, 0.01 %, at [`FUNDING_RATE_SCALE`].
const INTEREST_RATE: i128 = 10_000;

/// Funding every 8 hours from 00:00 UTC.
const FUNDING_INTERVAL_MS: i64 = 8 * 3600 * 1000;

/// The basis steps: `k` runs over `0 - BASIS_STEPS / 2 ..= BASIS_STEPS / 2`.
const BASIS_STEPS: i64 = 11;

/// One basis point of the mark.
const BASIS_POINT: i128 = 10_000;

/// True for the venues whose statistics are synthesised.
pub(crate) fn synthesises(venue: Venue) -> bool {
    matches!(venue, Venue::BinanceUsdm | Venue::BinanceCoinm)
}

/// The names of an instrument's synthesised streams (`btcusdt@markPrice@1s`, ...), with
/// their periods.
pub(crate) fn mark_stream_names(instrument: &Instrument) -> impl Iterator<Item = (String, i64)> {
    let symbol = instrument.symbol.to_ascii_lowercase();
    MARK_STREAMS
        .iter()
        .map(move |(kind, period)| (format!("{symbol}@{kind}"), *period))
}

/// Moves the instrument's flow by one played record (`delivered`: handed to clients, not
/// left out by a gap fault) and returns the mark-price messages now due, in order of `E`,
/// each with its stream index: the combined-stream text.
pub(crate) fn on_played(
    sim: &mut Sim,
    record: &Record,
    delivered: bool,
) -> Vec<(usize, Utf8Bytes)> {
    let Some(inst) = record.inst else {
        return Vec::new();
    };
    let Sim {
        flows,
        books,
        table,
        summary,
        ..
    } = sim;
    let Some(flow) = flows.get_mut(&inst) else {
        return Vec::new();
    };
    if let Some((_, trade)) = &record.trade {
        flow.on_trade(trade);
    }
    let Some(t) = record.exch_ms.filter(|_| delivered) else {
        return Vec::new();
    };
    let before = flow.watermark_ms;
    flow.watermark_ms = Some(before.map_or(t, |w| w.max(t)));
    let Some(after) = before.filter(|&w| t > w) else {
        // The first message of the instrument passes no boundary; an older one none either.
        return Vec::new();
    };
    let mut due: Vec<(i64, usize, usize)> = Vec::new();
    for (order, mark) in flow.marks.iter().enumerate() {
        for e_ms in boundaries(after, t, mark.period_ms) {
            due.push((e_ms, order, mark.stream));
        }
    }
    if due.is_empty() {
        return Vec::new();
    }
    let instrument = table.get(inst);
    let Some(mark_px) = mark_px(books.get(&inst), flow.last_trade_px, instrument.tick) else {
        return Vec::new();
    };
    // Stable across the streams: by `E`, the 1 s stream first on a shared second.
    due.sort_unstable();
    summary.marks += due.len() as u64;
    due.into_iter()
        .map(|(e_ms, order, stream)| {
            let values = mark_values(mark_px, instrument.price_scale, e_ms);
            let text = mark_message(&flow.marks[order].name, &instrument.symbol, e_ms, &values);
            (stream, Utf8Bytes::from(text))
        })
        .collect()
}

/// The multiples of `period` in `after < B <= upto`, the last [`MAX_CATCH_UP`] of them at
/// most, ascending.
pub(crate) fn boundaries(after: i64, upto: i64, period: i64) -> impl Iterator<Item = i64> {
    debug_assert!(period > 0);
    let last = upto.div_euclid(period) * period;
    let first = ((after.div_euclid(period) + 1) * period).max(last - (MAX_CATCH_UP - 1) * period);
    (first..=last).step_by(usize::try_from(period).unwrap_or(1))
}

/// The mark price now (mantissa at the price scale): the mid of the sim's book rounded to
/// the tick, else the last trade price.
fn mark_px(book: Option<&SimBook>, last_trade_px: Option<i64>, tick: i64) -> Option<i64> {
    let top = book.filter(|b| b.has_snapshot).and_then(|b| {
        Some((
            b.book.best(BookSide::Bid)?.px,
            b.book.best(BookSide::Ask)?.px,
        ))
    });
    let Some((bid, ask)) = top else {
        return last_trade_px;
    };
    let tick = i128::from(tick.max(1));
    let ticks = round_div_half_even(i128::from(bid) + i128::from(ask), 2 * tick);
    i64::try_from(ticks * tick).ok()
}

/// One mark-price message's values: prices and rate at 8 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkValues {
    /// `p`, at [`STAT_PRICE_SCALE`].
    pub(crate) mark: i128,
    /// `i` and `P`, at [`STAT_PRICE_SCALE`].
    pub(crate) index: i128,
    /// `r`, at [`FUNDING_RATE_SCALE`].
    pub(crate) funding: i128,
    /// `T`, ms.
    pub(crate) next_funding_ms: i64,
}

/// The values of the message for second boundary `e_ms` at mark `mark_px` (mantissa at
/// `price_scale`), by the formulas of the module docs.
pub(crate) fn mark_values(mark_px: i64, price_scale: u8, e_ms: i64) -> MarkValues {
    let mark = rescale(mark_px.into(), price_scale, STAT_PRICE_SCALE);
    let k = e_ms.div_euclid(1000).rem_euclid(BASIS_STEPS) - BASIS_STEPS / 2;
    let index = mark - round_div_half_even(mark * i128::from(k), BASIS_POINT);
    let premium = if index == 0 {
        0
    } else {
        round_div_half_even(
            (mark - index) * pow10_i128(FUNDING_RATE_SCALE.into()),
            index,
        )
    };
    MarkValues {
        mark,
        index,
        funding: INTEREST_RATE + premium,
        next_funding_ms: (e_ms.div_euclid(FUNDING_INTERVAL_MS) + 1) * FUNDING_INTERVAL_MS,
    }
}

/// A mantissa at scale `from` at scale `to` (rounded half to even when it loses digits).
fn rescale(mantissa: i128, from: u8, to: u8) -> i128 {
    if to >= from {
        mantissa * pow10_i128(u32::from(to - from))
    } else {
        round_div_half_even(mantissa, pow10_i128(u32::from(from - to)))
    }
}

/// The combined-stream message (`{"stream":..,"data":{"e":"markPriceUpdate",..}}`), in
/// Binance's key order.
pub(crate) fn mark_message(stream: &str, symbol: &str, e_ms: i64, v: &MarkValues) -> String {
    let index = Fixed::new(v.index, STAT_PRICE_SCALE);
    format!(
        "{{\"stream\":\"{stream}\",\"data\":{{\"e\":\"markPriceUpdate\",\"E\":{e_ms},\"s\":\"{symbol}\",\"p\":\"{}\",\"i\":\"{index}\",\"P\":\"{index}\",\"r\":\"{}\",\"T\":{}}}}}",
        Fixed::new(v.mark, STAT_PRICE_SCALE),
        Fixed::new(v.funding, FUNDING_RATE_SCALE),
        v.next_funding_ms,
    )
}

/// The REST open-interest body of an instrument as Binance shapes it on `venue` (USD-M:
/// `openInterest`, `symbol`, `time`; COIN-M adds `pair` and `contractType`), dated by the
/// watermark; `None` while none of its messages was handed out.
pub(crate) fn open_interest_answer(
    venue: Venue,
    instrument: &Instrument,
    flow: &Flow,
) -> Option<String> {
    let time = flow.watermark_ms?;
    let symbol = &instrument.symbol;
    let open_interest = Fixed::new(flow.open_interest.into(), instrument.size_scale);
    Some(match venue {
        Venue::BinanceCoinm => format!(
            "{{\"symbol\":\"{symbol}\",\"pair\":\"{}{}\",\"openInterest\":\"{open_interest}\",\"contractType\":\"PERPETUAL\",\"time\":{time}}}",
            instrument.base, instrument.quote
        ),
        _ => format!(
            "{{\"openInterest\":\"{open_interest}\",\"symbol\":\"{symbol}\",\"time\":{time}}}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowcore_core::event::{Aggressor, Trade, TradeSource};
    use flowcore_core::instrument::InstrumentTable;

    fn instrument(venue: Venue, symbol: &str) -> Instrument {
        let table = InstrumentTable::binance_defaults();
        let inst = table.find(venue, symbol.as_bytes()).expect("bundled");
        table.get(inst).clone()
    }

    fn trade(id: u64, qty: i64, taker: bool, source: TradeSource) -> Trade {
        Trade {
            trade_id: id,
            px: 6_180_030,
            qty,
            aggressor: Aggressor::Buy,
            trade_ts: 0,
            exch_ts: 0,
            is_taker_flow: taker,
            source,
        }
    }

    #[test]
    fn boundaries_are_the_multiples_passed_and_capped() {
        let all = |a, b, p| boundaries(a, b, p).collect::<Vec<_>>();
        assert_eq!(all(1_999, 2_000, 1000), vec![2_000]);
        assert_eq!(all(2_000, 2_999, 1000), Vec::<i64>::new());
        assert_eq!(all(1_500, 4_200, 1000), vec![2_000, 3_000, 4_000]);
        assert_eq!(all(1_500, 6_100, 3000), vec![3_000, 6_000]);
        assert_eq!(all(5_999, 6_000, 3000), vec![6_000]);
        // A long silence: the last MAX_CATCH_UP only.
        let capped = all(0, 3_600_000, 1000);
        assert_eq!(capped.len(), MAX_CATCH_UP as usize);
        assert_eq!(capped.first(), Some(&3_541_000));
        assert_eq!(capped.last(), Some(&3_600_000));
    }

    #[test]
    fn mark_values_follow_the_documented_formulas() {
        // 1723161256000 ms: 1723161256 mod 11 = 3, k = -2 (the index is 2 bp above the mark).
        let v = mark_values(6_180_020, 2, 1_723_161_256_000);
        assert_eq!(v.mark, 6_180_020_000_000);
        assert_eq!(v.index, 6_180_020_000_000 + 1_236_004_000);
        // 0.0001 + (mark - index) / index = 0.0001 - 0.00019996 (rounded at 8 decimals).
        assert_eq!(v.funding, 10_000 - 19_996);
        // 2024-08-09 00:00 UTC.
        assert_eq!(v.next_funding_ms, 1_723_161_600_000);
        let text = mark_message("btcusdt@markPrice@1s", "BTCUSDT", 1_723_161_256_000, &v);
        assert_eq!(
            text,
            r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1723161256000,"s":"BTCUSDT","p":"61800.20000000","i":"61812.56004000","P":"61812.56004000","r":"-0.00009996","T":1723161600000}}"#
        );
        // On a funding boundary, T is the next one.
        let at_boundary = mark_values(6_180_020, 2, 1_723_161_600_000);
        assert_eq!(
            at_boundary.next_funding_ms,
            1_723_161_600_000 + FUNDING_INTERVAL_MS
        );
        // COIN-M prices have one decimal.
        assert_eq!(mark_values(618_048, 1, 0).mark, 6_180_480_000_000);
    }

    #[test]
    fn open_interest_moves_with_taker_trades_and_never_goes_negative() {
        let usdm = instrument(Venue::BinanceUsdm, "BTCUSDT");
        let mut flow = Flow::new(&usdm, Vec::new());
        assert_eq!(flow.open_interest, 10_000_000, "10 000 BTC at 3 decimals");
        flow.on_trade(&trade(2, 199, true, TradeSource::Trade));
        flow.on_trade(&trade(3, 6, true, TradeSource::Trade));
        flow.on_trade(&trade(4, 1_000, false, TradeSource::Trade));
        // The same fills again as aggTrades do not count.
        flow.on_trade(&trade(8, 1_000, true, TradeSource::AggTrade));
        assert_eq!(flow.open_interest, 10_000_193);
        assert_eq!(open_interest_answer(Venue::BinanceUsdm, &usdm, &flow), None);
        flow.watermark_ms = Some(1_723_161_256_344);
        assert_eq!(
            open_interest_answer(Venue::BinanceUsdm, &usdm, &flow).as_deref(),
            Some(r#"{"openInterest":"10000.193","symbol":"BTCUSDT","time":1723161256344}"#)
        );
        flow.on_trade(&trade(5, i64::MAX, true, TradeSource::Trade));
        assert_eq!(flow.open_interest, 0);

        let coinm = instrument(Venue::BinanceCoinm, "BTCUSD_PERP");
        let mut flow = Flow::new(&coinm, Vec::new());
        flow.watermark_ms = Some(1_638_521_829_215);
        assert_eq!(
            open_interest_answer(Venue::BinanceCoinm, &coinm, &flow).as_deref(),
            Some(
                r#"{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":"10000","contractType":"PERPETUAL","time":1638521829215}"#
            )
        );
    }
}
