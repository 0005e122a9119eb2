//! The strategies of a run: built from their configuration through the registry, fed
//! every bar and book row on the core thread, their signals numbered, stamped with the
//! base asset's spot and perp CVD, deduplicated and cooled down per instance.
//!
//! ```text
//! Engine --bars, tops, stats--> StrategySet --by symbol--> instances --> dedup, cooldown --> Signal
//! ```

use super::classic::{EmaCross, MacdCross, Momentum, RsiReversal};
use super::params::{ParamError, ParamValue, Params};
use super::signal::{Action, Signal, Strategy, StrategyId, SymbolContext};
use super::smart_money::SmartMoney;
use super::squeeze::SqueezeFlow;
use crate::bars::AggregateId;
use crate::bars::{Aggregate, Bar, BarKey};
use crate::engine::TopRow;
use crate::instrument::{InstrumentId, InstrumentTable, MarketKind};
use crate::venue_stats::StatsRow;
use std::collections::BTreeMap;

/// Builds a strategy for one symbol from its settings.
pub type Constructor = fn(&SymbolContext<'_>, &Params<'_>) -> Result<Box<dyn Strategy>, ParamError>;

/// Every strategy a configuration can name.
pub const REGISTRY: &[(&str, Constructor)] = &[
    ("ema_cross", |c, p| Ok(Box::new(EmaCross::new(c.key, p)?))),
    ("rsi", |c, p| Ok(Box::new(RsiReversal::new(c.key, p)?))),
    ("macd", |c, p| Ok(Box::new(MacdCross::new(c.key, p)?))),
    ("momentum", |c, p| Ok(Box::new(Momentum::new(c.key, p)?))),
    ("squeeze_flow", |c, p| Ok(Box::new(SqueezeFlow::new(c, p)?))),
    ("smart_money", |c, p| Ok(Box::new(SmartMoney::new(c, p)?))),
];

#[derive(Debug, Clone)]
struct SymbolInfo {
    base: String,
    /// Indexes of the base asset's spot and perp aggregates.
    spot: Option<usize>,
    perp: Option<usize>,
    scales: Option<(u8, u8)>,
}

/// One configured instance: a registered strategy on one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategySpec {
    /// The registered name (see [`REGISTRY`]).
    pub name: String,
    /// The symbol.
    pub key: BarKey,
    /// Any entry within this many seconds of the instance's last signal is dropped (and
    /// counted; an exit never is); so is, at any time, a repeat of the instance's last
    /// action.
    pub cooldown_s: u32,
    /// The strategy's own settings.
    pub params: BTreeMap<String, ParamValue>,
}

crate::counters! {
    /// What the set did with the signals its instances made.
    pub struct SignalCounters {
        /// Signals passed on.
        pub emitted: u64,
        /// Dropped: the same action as the instance's last signal (nothing changed).
        pub duplicates: u64,
        /// Dropped: within the instance's cooldown after its last signal.
        pub cooled_down: u64,
    }
}

#[derive(Debug)]
struct Instance {
    name: &'static str,
    key: BarKey,
    strategy: Box<dyn Strategy>,
    cooldown_ns: i64,
    /// The last signal passed on: its action and exchange time.
    last: Option<(Action, i64)>,
}

/// The run's strategy instances.
#[derive(Debug)]
pub struct StrategySet {
    instances: Vec<Instance>,
    /// Per symbol index (instruments, then aggregates), the instances on it.
    by_symbol: Vec<Vec<u32>>,
    instruments: usize,
    /// Per symbol index, its base asset and aggregates.
    symbols: Vec<SymbolInfo>,
    /// Per aggregate, the CVD of its last bar.
    aggregate_cvd: Vec<i128>,
    next_id: u64,
    counters: SignalCounters,
}

impl StrategySet {
    /// Builds every instance of `specs`.
    ///
    /// # Errors
    /// [`ParamError`] naming the strategy and the key for an unknown strategy, an unknown
    /// key or a bad value.
    pub fn new(
        specs: &[StrategySpec],
        table: &InstrumentTable,
        aggregates: &[Aggregate],
    ) -> Result<Self, ParamError> {
        let instruments = table.len();
        let find = |base: &str, kind| {
            aggregates
                .iter()
                .position(|a| a.base == base && a.kind == kind)
        };
        let info = |base: &str, scales| SymbolInfo {
            base: base.to_owned(),
            spot: find(base, MarketKind::Spot),
            perp: find(base, MarketKind::Perpetual),
            scales,
        };
        let symbols: Vec<SymbolInfo> = (0..instruments)
            .map(|i| {
                let inst = table.get(InstrumentId(i as u16));
                info(&inst.base, Some((inst.price_scale, inst.size_scale)))
            })
            .chain(aggregates.iter().map(|a| info(&a.base, None)))
            .collect();
        let mut set = Self {
            instances: Vec::new(),
            by_symbol: vec![Vec::new(); symbols.len()],
            instruments,
            symbols,
            aggregate_cvd: vec![0; aggregates.len()],
            next_id: 1,
            counters: SignalCounters::default(),
        };
        for spec in specs {
            set.push(spec)?;
        }
        Ok(set)
    }

    /// Builds one more instance.
    ///
    /// # Errors
    /// [`ParamError`] naming the strategy and the key; the set is unchanged then.
    pub fn push(&mut self, spec: &StrategySpec) -> Result<StrategyId, ParamError> {
        let Some(&(name, build)) = REGISTRY.iter().find(|(n, _)| *n == spec.name) else {
            let known: Vec<_> = REGISTRY.iter().map(|(n, _)| *n).collect();
            return Err(ParamError::UnknownStrategy {
                name: spec.name.clone(),
                known: known.join(", "),
            });
        };
        let index = self.symbol_index(spec.key);
        let symbol = &self.symbols[index];
        let aggregate = |a: Option<usize>| a.map(|a| BarKey::Aggregate(AggregateId(a as u16)));
        let context = SymbolContext {
            key: spec.key,
            base: &symbol.base,
            spot_aggregate: aggregate(symbol.spot),
            perp_aggregate: aggregate(symbol.perp),
            scales: symbol.scales,
        };
        let params = Params::new(name, &spec.params);
        let strategy = build(&context, &params)?;
        params.finish()?;
        let id = StrategyId(self.instances.len() as u32);
        self.by_symbol[index].push(id.0);
        if strategy.reads_base_aggregates() {
            // Its base's aggregate bars too (never twice if the symbol is one of them).
            for a in [symbol.spot, symbol.perp].into_iter().flatten() {
                let list = &mut self.by_symbol[self.instruments + a];
                if !list.contains(&id.0) {
                    list.push(id.0);
                }
            }
        }
        self.instances.push(Instance {
            name,
            key: spec.key,
            strategy,
            cooldown_ns: i64::from(spec.cooldown_s) * 1_000_000_000,
            last: None,
        });
        Ok(id)
    }

    fn symbol_index(&self, key: BarKey) -> usize {
        match key {
            BarKey::Instrument(id) => usize::from(id.0),
            BarKey::Aggregate(a) => self.instruments + usize::from(a.0),
        }
    }

    /// The instances: their strategy names and symbols, by [`StrategyId`].
    pub fn instances(&self) -> impl Iterator<Item = (StrategyId, &'static str, BarKey)> + '_ {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, s)| (StrategyId(i as u32), s.name, s.key))
    }

    /// True when there is no instance.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// What happened to the signals so far.
    pub fn counters(&self) -> SignalCounters {
        self.counters
    }

    /// Feeds one final bar to the instances on its symbol.
    pub fn on_bar(&mut self, bar: &Bar, out: &mut impl FnMut(&Signal)) {
        if let BarKey::Aggregate(a) = bar.key {
            if let Some(cvd) = self.aggregate_cvd.get_mut(usize::from(a.0)) {
                *cvd = bar.cvd;
            }
        }
        let index = self.symbol_index(bar.key);
        self.dispatch(index, out, |s, emit| s.on_bar(bar, emit));
    }

    /// Feeds one per-second venue statistics row to the instances on its instrument.
    pub fn on_stats(&mut self, row: &StatsRow, out: &mut impl FnMut(&Signal)) {
        let index = self.symbol_index(BarKey::Instrument(row.inst));
        self.dispatch(index, out, |s, emit| s.on_stats(row, emit));
    }

    /// Feeds one per-second book row to the instances on its instrument.
    pub fn on_top(&mut self, row: &TopRow, out: &mut impl FnMut(&Signal)) {
        let index = self.symbol_index(BarKey::Instrument(row.inst));
        self.dispatch(index, out, |s, emit| s.on_top(row, emit));
    }

    fn dispatch(
        &mut self,
        index: usize,
        out: &mut impl FnMut(&Signal),
        mut call: impl FnMut(&mut dyn Strategy, &mut dyn FnMut(Signal)),
    ) {
        let Some(ids) = self.by_symbol.get(index) else {
            return;
        };
        let (spot, perp) = (self.symbols[index].spot, self.symbols[index].perp);
        let Self {
            instances,
            aggregate_cvd,
            next_id,
            counters,
            ..
        } = self;
        for &id in ids {
            let instance = &mut instances[id as usize];
            let (cooldown_ns, last) = (instance.cooldown_ns, &mut instance.last);
            call(instance.strategy.as_mut(), &mut |mut signal: Signal| {
                if let Some((action, at)) = *last {
                    // An exit is never held back: the position must be closable.
                    if signal.exch_ns - at < cooldown_ns && signal.action != Action::Exit {
                        counters.cooled_down += 1;
                        return;
                    }
                    if action == signal.action {
                        counters.duplicates += 1;
                        return;
                    }
                }
                *last = Some((signal.action, signal.exch_ns));
                signal.id = *next_id;
                *next_id += 1;
                signal.strategy = StrategyId(id);
                signal.spot_cvd = spot.map_or(0, |a| aggregate_cvd[a]);
                signal.perp_cvd = perp.map_or(0, |a| aggregate_cvd[a]);
                counters.emitted += 1;
                out(&signal);
            });
        }
    }
}
