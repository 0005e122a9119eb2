//! Reading the fields every dialect reads the same way: required values of a type, exchange
//! milliseconds, exact decimals, symbols resolved with a one-entry cache, session markers.

use crate::json::{parse_u64, Kind, Raw};
use crate::parsed::Parsed;
use crate::ParseError;
use flowcore_core::decimal::parse_mantissa;
use flowcore_core::event::{
    ms_to_ns, EventKind, MarketEvent, MaybeNanos, Nanos, StatField, VenueStat,
};
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};

/// The field, or [`ParseError::MissingField`].
pub(crate) fn required<'a>(
    field: Option<Raw<'a>>,
    name: &'static str,
) -> Result<Raw<'a>, ParseError> {
    field.ok_or(ParseError::MissingField(name))
}

/// A string field's raw content.
pub(crate) fn string<'a>(
    field: Option<Raw<'a>>,
    name: &'static str,
) -> Result<&'a [u8], ParseError> {
    let raw = required(field, name)?;
    if raw.kind != Kind::Str {
        return Err(ParseError::WrongType(name));
    }
    Ok(raw.bytes)
}

/// A non-negative integer number field.
pub(crate) fn uint(field: Option<Raw<'_>>, name: &'static str) -> Result<u64, ParseError> {
    let raw = required(field, name)?;
    if raw.kind != Kind::Num {
        return Err(ParseError::WrongType(name));
    }
    parse_u64(raw.bytes).ok_or(ParseError::BadInteger(name))
}

/// An exchange time in ms (a number field) as ns.
pub(crate) fn time_ms(field: Option<Raw<'_>>, name: &'static str) -> Result<Nanos, ParseError> {
    exchange_ms_to_ns(uint(field, name)?).ok_or(ParseError::BadInteger(name))
}

/// An exchange time in ms as ns; `None` when the ns would not fit.
pub(crate) fn exchange_ms_to_ns(ms: u64) -> Option<Nanos> {
    i64::try_from(ms)
        .ok()
        .filter(|ms| *ms < i64::MAX / 1_000_000)
        .map(ms_to_ns)
}

/// A decimal string field as a mantissa at `scale` (exact, never rounded).
pub(crate) fn decimal(
    field: Option<Raw<'_>>,
    name: &'static str,
    scale: u8,
) -> Result<i64, ParseError> {
    parse_mantissa(string(field, name)?, scale).map_err(|source| ParseError::Decimal {
        field: name,
        source,
    })
}

/// Symbol lookups of one venue: most messages repeat the previous symbol.
#[derive(Debug, Default)]
pub(crate) struct SymbolCache {
    last: Option<InstrumentId>,
}

impl SymbolCache {
    /// The instrument of `venue`'s `symbol`.
    pub(crate) fn find(
        &mut self,
        table: &InstrumentTable,
        venue: Venue,
        symbol: &[u8],
    ) -> Result<InstrumentId, ParseError> {
        if let Some(id) = self.last {
            if table.get(id).symbol.as_bytes() == symbol {
                return Ok(id);
            }
        }
        let id = table
            .find(venue, symbol)
            .ok_or(ParseError::UnknownInstrument)?;
        self.last = Some(id);
        Ok(id)
    }
}

/// A session marker line ([`crate::session_marker`]) as its event for `inst`; `None` when
/// `msg` is not one.
pub(crate) fn session_marker(
    local_ts: Nanos,
    msg: &[u8],
    inst: Option<InstrumentId>,
    emit: &mut impl FnMut(MarketEvent),
) -> Option<Result<Parsed, ParseError>> {
    let session = crate::session_marker(msg)?;
    let Some(inst) = inst else {
        return Some(Err(ParseError::UnknownInstrument));
    };
    emit(MarketEvent {
        inst,
        local_ts,
        kind: EventKind::Session(session),
    });
    Some(Ok(Parsed::Events(1)))
}

/// Emits one `Stat` event per present statistic, in order; returns how many.
pub(crate) fn emit_stats<const N: usize>(
    inst: InstrumentId,
    local_ts: Nanos,
    exch_ts: MaybeNanos,
    stats: [Option<(StatField, i64)>; N],
    emit: &mut impl FnMut(MarketEvent),
) -> u32 {
    let mut n = 0;
    for (field, value) in stats.into_iter().flatten() {
        n += 1;
        emit(MarketEvent {
            inst,
            local_ts,
            kind: EventKind::Stat(VenueStat {
                field,
                value,
                exch_ts,
            }),
        });
    }
    n
}
