//! What the gateway knows of the market: each symbol's best bid and ask (from the buses'
//! `bbo` and `tops` streams) and its 1-minute returns (from the 1-second bars), for marking
//! positions, paper fills, volatility sizing and the correlation limit.
//!
//! Symbols are dense slots keyed by `venue:SYMBOL`, so a position keeps its slot across an
//! engine restart that renumbers the bus's symbol ids.

use flowcore_core::indicators::{sqrt, Value};

/// A dense symbol index.
pub type Slot = u32;

/// One symbol's state.
#[derive(Debug, Clone)]
pub struct SymbolState {
    /// `venue:SYMBOL`.
    pub name: String,
    /// Base asset: two symbols of one base are always taken as correlated.
    pub base: String,
    /// Decimal digits of the bus's price mantissas.
    pub price_scale: u8,
    /// Decimal digits of the bus's size mantissas.
    pub size_scale: u8,
    /// Best bid and ask mantissas (0: none yet).
    pub bid: i64,
    /// Best ask.
    pub ask: i64,
    minute: i64,
    minute_close: i64,
    prev_minute_close: i64,
    returns: Vec<(i64, Value)>,
    head: usize,
}

impl SymbolState {
    fn push(&mut self, r: (i64, Value), window: usize) {
        if self.returns.len() < window {
            self.returns.push(r);
        } else {
            self.returns[self.head] = r;
            self.head = (self.head + 1) % window;
        }
    }
}

/// Every symbol of every bus.
#[derive(Debug, Clone)]
pub struct MarketState {
    symbols: Vec<SymbolState>,
    window: usize,
}

/// `10^scale` as a [`Value`] (scales are at most 18).
pub fn pow10(scale: u8) -> Value {
    Value::from_num(10i64.pow(u32::from(scale.min(18))))
}

/// A price or size mantissa as a [`Value`].
pub fn to_value(mantissa: i64, scale: u8) -> Value {
    Value::from_num(mantissa) / pow10(scale)
}

impl MarketState {
    /// Keeps `window` 1-minute returns per symbol.
    pub fn new(window: usize) -> Self {
        Self {
            symbols: Vec::new(),
            window: window.max(2),
        }
    }

    /// The slot of `name`, made on first sight (bus open, not per message).
    pub fn slot(&mut self, name: &str, base: &str, price_scale: u8, size_scale: u8) -> Slot {
        if let Some(k) = self.symbols.iter().position(|s| s.name == name) {
            let s = &mut self.symbols[k];
            if s.base.is_empty() {
                s.base = base.to_string();
            }
            s.price_scale = price_scale;
            s.size_scale = size_scale;
            return k as Slot;
        }
        self.symbols.push(SymbolState {
            name: name.to_string(),
            base: base.to_string(),
            price_scale,
            size_scale,
            bid: 0,
            ask: 0,
            minute: i64::MIN,
            minute_close: 0,
            prev_minute_close: 0,
            returns: Vec::with_capacity(self.window),
            head: 0,
        });
        (self.symbols.len() - 1) as Slot
    }

    /// A slot's state.
    pub fn get(&self, slot: Slot) -> &SymbolState {
        &self.symbols[slot as usize]
    }

    /// A slot's state, if there is such a slot.
    pub fn try_get(&self, slot: Slot) -> Option<&SymbolState> {
        self.symbols.get(slot as usize)
    }

    /// The slot of a name already seen.
    pub fn find(&self, name: &str) -> Option<Slot> {
        self.symbols
            .iter()
            .position(|s| s.name == name)
            .map(|k| k as Slot)
    }

    /// A new best bid and ask.
    pub fn quote(&mut self, slot: Slot, bid: i64, ask: i64) {
        let s = &mut self.symbols[slot as usize];
        if bid > 0 && ask > 0 {
            s.bid = bid;
            s.ask = ask;
        }
    }

    /// A 1-second bar's close at `ts_ms`: the last close of each minute makes a return.
    pub fn close(&mut self, slot: Slot, ts_ms: i64, close: i64) {
        if close <= 0 {
            return;
        }
        let window = self.window;
        let s = &mut self.symbols[slot as usize];
        let minute = ts_ms.div_euclid(60_000);
        if minute > s.minute {
            if s.minute != i64::MIN {
                // The minute that just ended, against the one before it.
                if s.prev_minute_close > 0 {
                    let r = Value::from_num(s.minute_close) / Value::from_num(s.prev_minute_close)
                        - Value::ONE;
                    s.push((s.minute, r), window);
                }
                s.prev_minute_close = s.minute_close;
            }
            s.minute = minute;
        }
        s.minute_close = close;
    }

    /// Mid price of a slot as a value, if quoted.
    pub fn mid(&self, slot: Slot) -> Option<Value> {
        let s = self.get(slot);
        (s.bid > 0 && s.ask > 0)
            .then(|| to_value(s.bid, s.price_scale) / 2 + to_value(s.ask, s.price_scale) / 2)
    }

    /// Standard deviation of a slot's 1-minute returns (at least 3 of them).
    pub fn volatility(&self, slot: Slot) -> Option<Value> {
        let r = &self.get(slot).returns;
        if r.len() < 3 {
            return None;
        }
        let n = Value::from_num(r.len());
        let mean = r.iter().map(|x| x.1).sum::<Value>() / n;
        let var = r.iter().map(|x| (x.1 - mean) * (x.1 - mean)).sum::<Value>() / n;
        Some(sqrt(var))
    }

    /// Pearson correlation of two slots' 1-minute returns over the minutes both have (at
    /// least 3), or 1 for two symbols of one base.
    pub fn correlation(&self, a: Slot, b: Slot) -> Option<Value> {
        let (x, y) = (self.get(a), self.get(b));
        if a == b || x.base == y.base {
            return Some(Value::ONE);
        }
        let mut pairs = 0usize;
        let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (
            Value::ZERO,
            Value::ZERO,
            Value::ZERO,
            Value::ZERO,
            Value::ZERO,
        );
        for &(m, rx) in &x.returns {
            if let Some(&(_, ry)) = y.returns.iter().find(|e| e.0 == m) {
                pairs += 1;
                sx += rx;
                sy += ry;
                sxx += rx * rx;
                syy += ry * ry;
                sxy += rx * ry;
            }
        }
        if pairs < 3 {
            return None;
        }
        let n = Value::from_num(pairs);
        let cov = sxy - sx * sy / n;
        let vx = sxx - sx * sx / n;
        let vy = syy - sy * sy / n;
        if vx <= Value::ZERO || vy <= Value::ZERO {
            return None;
        }
        Some(cov / (sqrt(vx) * sqrt(vy)))
    }
}
