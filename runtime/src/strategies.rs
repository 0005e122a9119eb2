//! `[[strategy]]` tables, in a run configuration or a `--strategies FILE` for replay:
//!
//! ```toml
//! [[strategy]]
//! name = "ema_cross"          # a registered strategy (flowcore_core::strategy::REGISTRY)
//! venue = "binance-usdm"      # the symbol: a venue and its symbol...
//! symbol = "BTCUSDT"
//! # aggregate = "perp"        # ...or a cross-venue aggregate ("spot" | "perp") of a base
//! # base = "BTC"
//! cooldown_s = 0              # optional: signals within this long of the last are dropped
//! fast = 9                    # the strategy's own settings; unknown keys are refused
//! slow = 21
//! ```
//! Tables are checked when read (a key the strategy does not know, a bad value: the error
//! names the table and the key) and resolved to symbols once the engine exists (an
//! aggregate's id depends on the run's instruments).

use anyhow::{bail, Context};
use flowcore_core::bars::{AggregateId, BarKey};
use flowcore_core::engine::Engine;
use flowcore_core::instrument::{MarketKind, Venue};
use flowcore_core::strategy::{ParamValue, StrategySet, StrategySpec};
use std::collections::BTreeMap;

/// Which symbol a strategy trades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolRef {
    /// One venue's instrument.
    Instrument {
        /// The venue.
        venue: Venue,
        /// Its symbol, upper case.
        symbol: String,
    },
    /// A cross-venue aggregate of a base asset.
    Aggregate {
        /// The base asset, upper case.
        base: String,
        /// Spot or perpetual.
        kind: MarketKind,
    },
}

/// One `[[strategy]]` table, read but not yet resolved to the run's symbols.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyConfig {
    /// Where it stood (`strategy[2]`), for errors.
    pub at: String,
    /// The registered name.
    pub name: String,
    /// Its symbol.
    pub symbol: SymbolRef,
    /// See [`StrategySpec::cooldown_s`].
    pub cooldown_s: u32,
    /// The strategy's own settings.
    pub params: BTreeMap<String, ParamValue>,
}

/// Reads `[[strategy]]` tables.
///
/// # Errors
/// A message naming the table and the key.
pub fn parse_strategies(tables: &[toml::Table]) -> anyhow::Result<Vec<StrategyConfig>> {
    tables
        .iter()
        .enumerate()
        .map(|(i, t)| strategy_table(format!("strategy[{i}]"), t))
        .collect()
}

fn strategy_table(at: String, t: &toml::Table) -> anyhow::Result<StrategyConfig> {
    let text = |key: &str| -> anyhow::Result<Option<String>> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => bail!("{at}.{key}: expected a string, got {other}"),
        }
    };
    let name = text("name")?.with_context(|| format!("{at}.name: missing"))?;
    let symbol = match (
        text("venue")?,
        text("symbol")?,
        text("aggregate")?,
        text("base")?,
    ) {
        (Some(venue), Some(symbol), None, None) => SymbolRef::Instrument {
            venue: Venue::from_name(&venue)
                .with_context(|| format!("{at}.venue: unknown venue {venue:?}"))?,
            symbol: symbol.to_ascii_uppercase(),
        },
        (None, None, Some(kind), Some(base)) => SymbolRef::Aggregate {
            base: base.to_ascii_uppercase(),
            kind: match kind.as_str() {
                "spot" => MarketKind::Spot,
                "perp" => MarketKind::Perpetual,
                _ => bail!("{at}.aggregate: {kind:?}, expected \"spot\" or \"perp\""),
            },
        },
        _ => bail!("{at}: give venue and symbol, or aggregate and base"),
    };
    let cooldown_s = match t.get("cooldown_s") {
        None => 0,
        Some(toml::Value::Integer(v)) => {
            u32::try_from(*v).with_context(|| format!("{at}.cooldown_s: {v} is out of range"))?
        }
        Some(other) => bail!("{at}.cooldown_s: expected a whole number, got {other}"),
    };
    let mut params = BTreeMap::new();
    for (key, value) in t {
        if matches!(
            key.as_str(),
            "name" | "venue" | "symbol" | "aggregate" | "base" | "cooldown_s"
        ) {
            continue;
        }
        let value = match value {
            toml::Value::Integer(v) => ParamValue::Int(*v),
            toml::Value::Float(v) => ParamValue::Number(*v),
            toml::Value::String(v) => ParamValue::Text(v.clone()),
            other => bail!("{at}.{key}: expected a number or a string, got {other}"),
        };
        params.insert(key.clone(), value);
    }
    Ok(StrategyConfig {
        at,
        name,
        symbol,
        cooldown_s,
        params,
    })
}

/// Builds the strategy instances of `configs` on `engine`'s symbols.
///
/// # Errors
/// A symbol the run does not have, or a strategy's settings refused (named with the
/// table).
pub fn strategy_set(configs: &[StrategyConfig], engine: &Engine) -> anyhow::Result<StrategySet> {
    let table = engine.table();
    let aggregates = engine.bars().aggregates();
    let mut set = StrategySet::new(&[], table, aggregates)?;
    for c in configs {
        let key = match &c.symbol {
            SymbolRef::Instrument { venue, symbol } => BarKey::Instrument(
                table
                    .find(*venue, symbol.as_bytes())
                    .with_context(|| format!("{}: {venue} {symbol} is not an instrument", c.at))?,
            ),
            SymbolRef::Aggregate { base, kind } => BarKey::Aggregate(AggregateId(
                aggregates
                    .iter()
                    .position(|a| a.base == *base && a.kind == *kind)
                    .with_context(|| {
                        format!("{}: this run has no {kind:?} aggregate of {base}", c.at)
                    })? as u16,
            )),
        };
        let spec = StrategySpec {
            name: c.name.clone(),
            key,
            cooldown_s: c.cooldown_s,
            params: c.params.clone(),
        };
        set.push(&spec).with_context(|| c.at.clone())?;
    }
    Ok(set)
}

/// Reads a `--strategies FILE`: `[[strategy]]` tables and nothing else.
///
/// # Errors
/// A message naming the file, the table and the key.
pub fn load_strategies(text: &str) -> anyhow::Result<Vec<StrategyConfig>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        strategy: Vec<toml::Table>,
    }
    let file: File = toml::from_str(text).context("strategies file (only [[strategy]] tables)")?;
    parse_strategies(&file.strategy)
}
