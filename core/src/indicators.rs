//! Incremental indicators and rolling statistics for strategies: O(1) work and no
//! allocation per value once built.
//!
//! ```text
//! bar close (mantissa) --> Ema / Rsi / Macd / Rolling::push --> Option<value> once warm
//! ```
//!
//! Values are binary fixed point ([`Value`], `I80F48` from the `fixed` crate), never
//! `f64`: every step is integer arithmetic in a fixed order, so a replay gives the same
//! bits on every run and machine. Inputs are integer mantissas (a price at its scale, a CVD
//! at the aggregate scale); outputs are in the same units (an EMA of price mantissas is a
//! price mantissa with 48 fractional bits), ratios (RSI, z-score) are plain numbers.
//!
//! The definitions are the usual ones, stated so a test can recompute them from scratch:
//! - [`Ema`] of period `n`: `alpha = 2 / (n + 1)`, seeded with the mean of the first `n`
//!   values, then `ema += alpha * (x - ema)`; warm from the `n`-th value.
//! - [`Rsi`] of period `n` (Wilder): the first averages of gains and losses are the means
//!   of the first `n` changes, then `avg = (avg * (n - 1) + change) / n`;
//!   `rsi = 100 * gain / (gain + loss)` (50 when both are 0); warm after `n` changes.
//! - [`Macd`] `(fast, slow, signal)`: `line = ema_fast - ema_slow` once the slow EMA is
//!   warm, `signal = ema_signal(line)`, `histogram = line - signal`.
//! - [`Rolling`] over the last `n` values: mean, population standard deviation, the
//!   z-score of the newest value, and the least-squares slope per step; sums are exact
//!   `i128`, so the window never drifts however long it slides.

use fixed::types::I80F48;

/// A derived value: 80 integer bits, 48 fractional bits.
pub type Value = I80F48;

/// Why an indicator was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndicatorError {
    /// A period of 0 (or, for a window, of 1: no spread or slope from one value).
    #[error("period must be at least {min}, got {got}")]
    Period {
        /// The smallest period allowed.
        min: usize,
        /// The period given.
        got: usize,
    },
    /// A MACD whose fast period is not shorter than its slow one.
    #[error("MACD fast period {fast} must be shorter than slow period {slow}")]
    MacdOrder {
        /// The fast period.
        fast: usize,
        /// The slow period.
        slow: usize,
    },
}

fn check_period(got: usize, min: usize) -> Result<(), IndicatorError> {
    if got < min {
        return Err(IndicatorError::Period { min, got });
    }
    Ok(())
}

/// Exponential moving average.
///
/// # Examples
/// ```
/// use flowcore_core::indicators::{Ema, Value};
/// let mut ema = Ema::new(3).unwrap();
/// assert_eq!(ema.push(Value::from_num(1)), None);
/// assert_eq!(ema.push(Value::from_num(2)), None);
/// assert_eq!(ema.push(Value::from_num(3)), Some(Value::from_num(2)));
/// assert_eq!(ema.push(Value::from_num(4)), Some(Value::from_num(3)));
/// ```
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    alpha: Value,
    /// Values seen while warming up (`0 ..= period`), then `period`.
    seen: usize,
    /// The sum of the first values while warming up, then the average.
    value: Value,
}

impl Ema {
    /// An EMA of `period` values.
    ///
    /// # Errors
    /// [`IndicatorError::Period`] for a period of 0.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period(period, 1)?;
        Ok(Self {
            period,
            alpha: Value::from_num(2) / Value::from_num(period + 1),
            seen: 0,
            value: Value::ZERO,
        })
    }

    /// Takes the next value; the average once `period` values have been seen.
    pub fn push(&mut self, x: Value) -> Option<Value> {
        if self.seen < self.period {
            self.value += x;
            self.seen += 1;
            if self.seen < self.period {
                return None;
            }
            self.value /= Value::from_num(self.period);
            return Some(self.value);
        }
        self.value += self.alpha * (x - self.value);
        Some(self.value)
    }

    /// The average, once warm.
    pub fn value(&self) -> Option<Value> {
        (self.seen == self.period).then_some(self.value)
    }
}

/// Wilder's relative strength index, 0 to 100.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    last: Option<Value>,
    /// Changes seen while warming up (`0 ..= period`).
    changes: usize,
    gain: Value,
    loss: Value,
}

impl Rsi {
    /// An RSI over `period` changes.
    ///
    /// # Errors
    /// [`IndicatorError::Period`] for a period of 0.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period(period, 1)?;
        Ok(Self {
            period,
            last: None,
            changes: 0,
            gain: Value::ZERO,
            loss: Value::ZERO,
        })
    }

    /// Takes the next value; the RSI once `period` changes have been seen.
    pub fn push(&mut self, x: Value) -> Option<Value> {
        let last = self.last.replace(x)?;
        let change = x - last;
        let (up, down) = if change > 0 {
            (change, Value::ZERO)
        } else {
            (Value::ZERO, -change)
        };
        let n = Value::from_num(self.period);
        if self.changes < self.period {
            self.gain += up;
            self.loss += down;
            self.changes += 1;
            if self.changes < self.period {
                return None;
            }
            self.gain /= n;
            self.loss /= n;
        } else {
            let keep = Value::from_num(self.period - 1);
            self.gain = (self.gain * keep + up) / n;
            self.loss = (self.loss * keep + down) / n;
        }
        Some(self.value_now())
    }

    fn value_now(&self) -> Value {
        let total = self.gain + self.loss;
        if total == 0 {
            return Value::from_num(50);
        }
        Value::from_num(100) * self.gain / total
    }
}

/// One MACD reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacdValue {
    /// Fast EMA minus slow EMA.
    pub line: Value,
    /// EMA of the line.
    pub signal: Value,
    /// `line - signal`.
    pub histogram: Value,
}

/// Moving average convergence/divergence.
#[derive(Debug, Clone)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
}

impl Macd {
    /// The classic MACD is `Macd::new(12, 26, 9)`.
    ///
    /// # Errors
    /// A period of 0, or `fast >= slow`.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Self, IndicatorError> {
        if fast >= slow {
            return Err(IndicatorError::MacdOrder { fast, slow });
        }
        Ok(Self {
            fast: Ema::new(fast)?,
            slow: Ema::new(slow)?,
            signal: Ema::new(signal)?,
        })
    }

    /// Takes the next value; a reading once the slow EMA and the signal line are warm.
    pub fn push(&mut self, x: Value) -> Option<MacdValue> {
        let fast = self.fast.push(x);
        let slow = self.slow.push(x)?;
        // The fast EMA is warm whenever the slow one is.
        let line = fast? - slow;
        let signal = self.signal.push(line)?;
        Some(MacdValue {
            line,
            signal,
            histogram: line - signal,
        })
    }
}

/// The square root of an integer, with as many fractional bits as a `u128` leaves room
/// for: exact integer steps, so the same bits on every machine.
fn isqrt_value(x: u128) -> Value {
    let shift = (x.leading_zeros() & !1).min(96);
    Value::saturating_from_num(isqrt(x << shift)) >> (shift / 2)
}

/// `floor(sqrt(x))`, exactly: a floating-point first guess (within a few parts in 2^52),
/// one Newton step, then a correction to the exact floor. Integer results only, so the
/// same on every machine; about 5x faster here than the bit-by-bit `u128::isqrt`.
fn isqrt(x: u128) -> u128 {
    if x < 2 {
        return x;
    }
    // The guess is off by at most 2^-50 relative: one Newton step (which never
    // undershoots) brings it within 1 of the floor.
    let guess = ((x as f64).sqrt() as u128).max(1);
    let mut r = (guess + x / guess) / 2;
    while r.checked_mul(r).is_none_or(|sq| sq > x) {
        r -= 1;
    }
    while (r + 1).checked_mul(r + 1).is_some_and(|sq| sq <= x) {
        r += 1;
    }
    r
}

/// The square root of a non-negative value (0 for a negative one), by the same exact
/// integer steps as the window's standard deviation.
pub fn sqrt(v: Value) -> Value {
    // v = bits / 2^48, so sqrt(v) = sqrt(bits) / 2^24.
    isqrt_value(v.to_bits().max(0) as u128) >> 24
}

/// Statistics of the last `n` values of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingStats {
    /// The mean.
    pub mean: Value,
    /// The population standard deviation.
    pub std_dev: Value,
    /// `(newest - mean) / std_dev`; 0 when every value is the same.
    pub z_score: Value,
    /// Least-squares slope of value against step (units per value).
    pub slope: Value,
}

/// The last `n` integer values, with exact running sums.
///
/// Exact for `|x| <= 10^13` and `n <= 10^5` (then `n * sum(x^2)` stays inside `i128`):
/// a price mantissa or a CVD at the aggregate scale over a day of seconds.
#[derive(Debug, Clone)]
pub struct Rolling {
    /// The window, oldest at `head` once full; capacity `n`, allocated once.
    values: Vec<i128>,
    head: usize,
    n: usize,
    sum: i128,
    sum_sq: i128,
    /// `sum of i * x_i` with `i = 0` for the oldest value in the window.
    sum_ix: i128,
}

impl Rolling {
    /// A window of `n` values.
    ///
    /// # Errors
    /// [`IndicatorError::Period`] for `n < 2`.
    pub fn new(n: usize) -> Result<Self, IndicatorError> {
        check_period(n, 2)?;
        Ok(Self {
            values: Vec::with_capacity(n),
            head: 0,
            n,
            sum: 0,
            sum_sq: 0,
            sum_ix: 0,
        })
    }

    /// True once `n` values are in the window.
    pub fn is_full(&self) -> bool {
        self.values.len() == self.n
    }

    /// The oldest value in the window, once it is full.
    pub fn oldest(&self) -> Option<i128> {
        self.is_full().then(|| self.values[self.head])
    }

    /// Takes the next value; the window's statistics once it is full.
    pub fn push(&mut self, x: i128) -> Option<RollingStats> {
        self.insert(x);
        self.stats(x)
    }

    /// Takes the next value without computing the statistics (a caller that needs only
    /// [`Self::oldest`] or [`Self::mean`] skips the square root).
    pub fn insert(&mut self, x: i128) {
        if self.values.len() < self.n {
            self.sum_ix += self.values.len() as i128 * x;
            self.values.push(x);
            self.sum += x;
            self.sum_sq += x * x;
        } else {
            let oldest = std::mem::replace(&mut self.values[self.head], x);
            self.head = (self.head + 1) % self.n;
            // Every value left moves one step older; the new one is at n - 1.
            self.sum_ix -= self.sum - oldest;
            self.sum_ix += (self.n as i128 - 1) * x;
            self.sum += x - oldest;
            self.sum_sq += x * x - oldest * oldest;
        }
    }

    /// The window's mean, once it is full.
    pub fn mean(&self) -> Option<Value> {
        self.is_full()
            .then(|| Value::saturating_from_num(self.sum) / Value::from_num(self.n))
    }

    /// `n` times the standard deviation (the root of `n^2` times the variance), exact.
    fn n_std_dev(&self) -> Value {
        let n = self.n as i128;
        isqrt_value((n * self.sum_sq - self.sum * self.sum).max(0) as u128)
    }

    /// The newest value's z-score, once full (0 when every value is the same): what
    /// [`Self::push`] reports, without the rest of the statistics.
    pub fn z_score(&self) -> Option<Value> {
        if !self.is_full() {
            return None;
        }
        let newest = self.values[(self.head + self.n - 1) % self.n];
        Some(self.z_of(newest, self.n_std_dev()))
    }

    /// `(newest - mean) / std_dev` from `n * std_dev`; 0 when every value is the same.
    fn z_of(&self, newest: i128, n_std_dev: Value) -> Value {
        if n_std_dev == 0 {
            return Value::ZERO;
        }
        Value::saturating_from_num(self.n as i128 * newest - self.sum) / n_std_dev
    }

    /// The population standard deviation, once full.
    pub fn std_dev(&self) -> Option<Value> {
        self.is_full()
            .then(|| self.n_std_dev() / Value::from_num(self.n))
    }

    /// The sign of the least-squares slope (-1, 0 or 1), once full: exact integer
    /// arithmetic, no division.
    pub fn slope_sign(&self) -> Option<i32> {
        let n = self.n as i128;
        let sum_i = n * (n - 1) / 2;
        self.is_full()
            .then(|| (n * self.sum_ix - sum_i * self.sum).signum() as i32)
    }

    /// The sum of the window's values, once full.
    pub fn sum(&self) -> Option<i128> {
        self.is_full().then_some(self.sum)
    }

    /// The statistics with `newest` as the last value, once full.
    fn stats(&self, newest: i128) -> Option<RollingStats> {
        if !self.is_full() {
            return None;
        }
        let n = self.n as i128;
        let nv = Value::from_num(n);
        // n^2 * variance, exact; its root is n * std_dev.
        let root = self.n_std_dev();
        let z_score = self.z_of(newest, root);
        // Slope = (n sum(ix) - sum(i) sum(x)) / (n sum(i^2) - sum(i)^2), i in 0..n.
        let sum_i = n * (n - 1) / 2;
        let sum_ii = (n - 1) * n * (2 * n - 1) / 6;
        let slope = Value::saturating_from_num(n * self.sum_ix - sum_i * self.sum)
            / Value::from_num(n * sum_ii - sum_i * sum_i);
        Some(RollingStats {
            mean: Value::saturating_from_num(self.sum) / nv,
            std_dev: root / nv,
            z_score,
            slope,
        })
    }
}

/// The largest (or smallest) of the last `n` integer values, O(1) amortised per value: a
/// monotonic queue of the values that can still become the extreme, allocated once.
#[derive(Debug, Clone)]
pub struct RollingExtreme {
    n: u64,
    seen: u64,
    largest: bool,
    /// (index, value), extremes first; at most `n + 1` entries (for a moment, before the
    /// oldest expires), so the capacity reserved at construction is never outgrown.
    queue: std::collections::VecDeque<(u64, i128)>,
}

impl RollingExtreme {
    /// The largest of the last `n` values.
    ///
    /// # Errors
    /// [`IndicatorError::Period`] for `n == 0`.
    pub fn max(n: usize) -> Result<Self, IndicatorError> {
        Self::new(n, true)
    }

    /// The smallest of the last `n` values.
    ///
    /// # Errors
    /// [`IndicatorError::Period`] for `n == 0`.
    pub fn min(n: usize) -> Result<Self, IndicatorError> {
        Self::new(n, false)
    }

    fn new(n: usize, largest: bool) -> Result<Self, IndicatorError> {
        check_period(n, 1)?;
        Ok(Self {
            n: n as u64,
            seen: 0,
            largest,
            queue: std::collections::VecDeque::with_capacity(n + 1),
        })
    }

    /// Takes the next value.
    pub fn push(&mut self, x: i128) {
        let largest = self.largest;
        // A value the new one beats can never be the extreme again.
        while self
            .queue
            .back()
            .is_some_and(|&(_, v)| if largest { v <= x } else { v >= x })
        {
            self.queue.pop_back();
        }
        self.queue.push_back((self.seen, x));
        self.seen += 1;
        while self
            .queue
            .front()
            .is_some_and(|&(i, _)| i + self.n < self.seen)
        {
            self.queue.pop_front();
        }
    }

    /// The extreme of the window, once `n` values have been seen.
    pub fn value(&self) -> Option<i128> {
        (self.seen >= self.n).then(|| self.queue.front().map(|&(_, v)| v))?
    }
}

#[cfg(test)]
mod tests {
    use super::isqrt;

    /// The fast square root is the exact floor wherever the float guess is least exact:
    /// around perfect squares, powers of two and the top of the range.
    #[test]
    fn isqrt_is_the_exact_floor() {
        let check = |x: u128| {
            let r = isqrt(x);
            assert!(r * r <= x, "{x}: {r}");
            assert!(
                (r + 1).checked_mul(r + 1).is_none_or(|sq| sq > x),
                "{x}: {r}"
            );
        };
        for x in 0..10_000u128 {
            check(x);
        }
        for bits in 1..128u32 {
            let p = 1u128 << bits;
            for x in [p - 1, p, p + 1] {
                check(x);
            }
        }
        let mut s = 1u128;
        while let Some(sq) = s.checked_mul(s) {
            for x in [sq - 1, sq, sq.saturating_add(1)] {
                check(x);
            }
            s = s * 3 + 1;
        }
        check(u128::MAX);
        // A walk over pseudo-random values of every size.
        let mut x = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834u128;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x >> (x % 128));
        }
    }
}
