//! Loads the instrument table from TOML (`config/instruments.toml` shows the format).
//! Every error names the instrument and the key.

use flowcore_core::decimal::parse_mantissa;
use flowcore_core::instrument::{ContractSize, Instrument, InstrumentTable, MarketKind, Venue};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    instrument: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    venue: String,
    symbol: String,
    base: String,
    quote: String,
    kind: String,
    tick: String,
    lot: String,
    price_scale: u8,
    size_scale: u8,
    /// Quote value of one contract (inverse futures); absent: quantities are base units.
    contract_quote_value: Option<String>,
}

/// Why an instrument file was refused.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentConfigError {
    /// Not valid TOML, or keys missing, unknown or mistyped.
    #[error("instrument config: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value that does not mean anything here.
    #[error("instrument config: instrument #{index} ({symbol}): key `{key}`: {problem}")]
    Value {
        /// 1-based position in the file.
        index: usize,
        /// Its symbol.
        symbol: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The table refused the entry (duplicate, scale too large).
    #[error("instrument config: {0}")]
    Table(#[from] flowcore_core::instrument::InstrumentError),
}

/// Parses an instrument table from TOML text.
///
/// # Errors
/// [`InstrumentConfigError`] naming the instrument and key at fault.
pub fn parse_instruments(text: &str) -> Result<InstrumentTable, InstrumentConfigError> {
    let file: File = toml::from_str(text)?;
    let mut table = InstrumentTable::new();
    for (i, e) in file.instrument.into_iter().enumerate() {
        let err = |key: &'static str, problem: String| InstrumentConfigError::Value {
            index: i + 1,
            symbol: e.symbol.clone(),
            key,
            problem,
        };
        let venue = Venue::from_name(&e.venue).ok_or_else(|| {
            let names: Vec<_> = Venue::ALL.iter().map(|v| v.name()).collect();
            err(
                "venue",
                format!(
                    "unknown venue {:?}, expected one of {}",
                    e.venue,
                    names.join(", ")
                ),
            )
        })?;
        let kind = match e.kind.as_str() {
            "spot" => MarketKind::Spot,
            "perpetual" => MarketKind::Perpetual,
            other => {
                return Err(err(
                    "kind",
                    format!("{other:?}: expected \"spot\" or \"perpetual\""),
                ))
            }
        };
        for (key, scale) in [("price_scale", e.price_scale), ("size_scale", e.size_scale)] {
            if scale > flowcore_core::decimal::MAX_SCALE {
                return Err(err(key, format!("{scale} is above the maximum 18")));
            }
        }
        let exact = |key: &'static str, text: &str, scale: u8| {
            parse_mantissa(text.as_bytes(), scale).map_err(|e| err(key, format!("{text:?}: {e}")))
        };
        let tick = exact("tick", &e.tick, e.price_scale)?;
        let lot = exact("lot", &e.lot, e.size_scale)?;
        if tick <= 0 || lot <= 0 {
            return Err(err("tick", "tick and lot must be positive".into()));
        }
        let contract = match &e.contract_quote_value {
            None => ContractSize::Base,
            Some(v) => {
                let scale = v.split_once('.').map_or(0, |(_, f)| f.len()) as u8;
                ContractSize::Quote {
                    mantissa: exact("contract_quote_value", v, scale)?,
                    scale,
                }
            }
        };
        table.add(Instrument {
            venue,
            symbol: e.symbol.clone(),
            base: e.base.clone(),
            quote: e.quote.clone(),
            kind,
            tick,
            lot,
            price_scale: e.price_scale,
            size_scale: e.size_scale,
            contract,
        })?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLED: &str = include_str!("../../config/instruments.toml");

    #[test]
    fn bundled_file_equals_the_built_in_defaults() {
        let from_file = parse_instruments(BUNDLED).unwrap();
        let defaults = InstrumentTable::bundled_defaults();
        let a: Vec<_> = from_file.iter().map(|(_, i)| i.clone()).collect();
        let b: Vec<_> = defaults.iter().map(|(_, i)| i.clone()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn errors_name_the_instrument_and_key() {
        let bad = BUNDLED.replacen("venue = \"binance-spot\"", "venue = \"binance-margin\"", 1);
        let e = parse_instruments(&bad).unwrap_err().to_string();
        assert!(
            e.contains("#1") && e.contains("BTCUSDT") && e.contains("`venue`"),
            "{e}"
        );
        let bad = BUNDLED.replacen("tick = \"0.01\"", "tick = \"0.001\"", 1);
        let e = parse_instruments(&bad).unwrap_err().to_string();
        assert!(e.contains("`tick`") && e.contains("beyond scale 2"), "{e}");
        let bad = BUNDLED.replacen("size_scale = 8", "size_scale = 8\nsize_scael = 3", 1);
        assert!(parse_instruments(&bad)
            .unwrap_err()
            .to_string()
            .contains("size_scael"));
        let dup = format!(
            "{BUNDLED}\n{}",
            &BUNDLED[BUNDLED.find("[[instrument]]").unwrap()
                ..BUNDLED.find("[[instrument]]").unwrap() + 200]
        );
        assert!(parse_instruments(&dup).is_err());
    }
}
