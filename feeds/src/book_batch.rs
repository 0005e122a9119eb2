//! Depth levels as venues send them (`[["price","qty"], ...]` per side) and the framed
//! batch the engine consumes: the parts every dialect shares.

use crate::json::{Kind, Raw, Scanner};
use crate::parsed::Parsed;
use crate::ParseError;
use flowcore_core::decimal::parse_mantissa;
use flowcore_core::event::{BookBegin, BookSide, EventKind, Level, MarketEvent, Nanos};
use flowcore_core::instrument::InstrumentId;

/// Appends the levels of one side (`raw`, the field `name`) to `levels`, prices and
/// quantities at `(price_scale, size_scale)`.
///
/// # Errors
/// [`ParseError`] when `raw` is not an array of `[price, qty]` string pairs, a decimal is
/// inexact at its scale, a quantity is negative or a price is not above zero (the book
/// keys asks by negated price, which `i64::MIN` has not).
pub(crate) fn read_levels(
    levels: &mut Vec<Level>,
    side: BookSide,
    raw: Raw<'_>,
    name: &'static str,
    (price_scale, size_scale): (u8, u8),
) -> Result<(), ParseError> {
    if raw.kind != Kind::Array {
        return Err(ParseError::WrongType(name));
    }
    let mut scanner = Scanner::new(raw.bytes);
    scanner
        .array::<ParseError>(|s| {
            let mut px = None;
            let mut qty = None;
            let mut n = 0;
            s.array::<ParseError>(|s| {
                let text = s.str_value().map_err(|_| ParseError::WrongType(name))?;
                let parsed = match n {
                    0 => &mut px,
                    1 => &mut qty,
                    _ => return Err(ParseError::WrongType(name)),
                };
                let scale = if n == 0 { price_scale } else { size_scale };
                *parsed =
                    Some(
                        parse_mantissa(text, scale).map_err(|source| ParseError::Decimal {
                            field: name,
                            source,
                        })?,
                    );
                n += 1;
                Ok(())
            })?;
            match (px, qty) {
                (Some(px), Some(_)) if px <= 0 => Err(ParseError::NonPositivePrice(name)),
                (Some(px), Some(qty)) if qty >= 0 => {
                    levels.push(Level { side, px, qty });
                    Ok(())
                }
                _ => Err(ParseError::WrongType(name)),
            }
        })
        .map_err(|e| e.offset_by(raw.at))
}

/// Emits `begin` (with its level count), `levels`, and the closing `BookEnd`; `None`, with
/// nothing emitted, when the count does not fit a u32.
pub(crate) fn emit_batch(
    levels: &[Level],
    inst: InstrumentId,
    local_ts: Nanos,
    begin: BookBegin,
    emit: &mut impl FnMut(MarketEvent),
) -> Option<Parsed> {
    let begin = BookBegin {
        levels: u32::try_from(levels.len()).ok()?,
        ..begin
    };
    let event = |kind| MarketEvent {
        inst,
        local_ts,
        kind,
    };
    emit(event(EventKind::BookBegin(begin)));
    for level in levels {
        emit(event(EventKind::Level(*level)));
    }
    emit(event(EventKind::BookEnd));
    Some(Parsed::Events(begin.levels + 2))
}
