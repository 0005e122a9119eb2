//! Order-book imbalance: level-1 and depth-weighted.
//!
//! `obi_l1 = (b0 - a0) / (b0 + a0)` and
//! `obi = sum_i w_i (b_i - a_i) / sum_i w_i (b_i + a_i)`, `w_i = exp(-decay * i)`.
//!
//! The weights are binary fixed point (`U32F32`, from the `fixed` crate): `exp` is computed
//! once per configuration in `f64` and quantised to 32 fractional bits, after which every
//! imbalance is exact integer arithmetic over size mantissas. That makes the result
//! independent of summation order and identical across runs and machines, which an `f64`
//! dot product is not. Results are decimals with [`OBI_SCALE`] digits, rounded half-to-even.

use crate::book::OrderBook;
use crate::decimal::{pow10_i128, round_div_half_even};
use crate::event::BookSide;
use fixed::types::U32F32;

/// Decimal digits of an imbalance value: `-1.000000000 ..= 1.000000000`.
pub const OBI_SCALE: u8 = 9;

/// Most levels a weighted imbalance may use.
pub const MAX_LEVELS: usize = 64;

/// Configured imbalance: number of levels and quantised decay weights.
#[derive(Debug, Clone)]
pub struct ImbalanceConfig {
    weights: [U32F32; MAX_LEVELS],
    levels: usize,
}

/// Why an imbalance configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ImbalanceConfigError {
    /// `levels` outside `1..=64`.
    #[error("imbalance levels must be in 1..=64, got {0}")]
    Levels(usize),
    /// A negative or non-finite decay.
    #[error("imbalance decay must be finite and >= 0, got {0}")]
    Decay(f64),
}

impl Default for ImbalanceConfig {
    /// N = 10 levels, decay 0.1.
    fn default() -> Self {
        Self::new(10, 0.1).expect("defaults are in range")
    }
}

impl ImbalanceConfig {
    /// Builds `w_i = round(exp(-decay * i) * 2^32)` for `i in 0..levels`.
    ///
    /// # Errors
    /// [`ImbalanceConfigError`] for `levels` outside `1..=64` or a negative/NaN decay.
    pub fn new(levels: usize, decay: f64) -> Result<Self, ImbalanceConfigError> {
        if !(1..=MAX_LEVELS).contains(&levels) {
            return Err(ImbalanceConfigError::Levels(levels));
        }
        if !decay.is_finite() || decay < 0.0 {
            return Err(ImbalanceConfigError::Decay(decay));
        }
        let mut weights = [U32F32::ZERO; MAX_LEVELS];
        for (i, w) in weights.iter_mut().take(levels).enumerate() {
            // (exp * 2^32) is exact in f64 and at most 2^32, so the bits fit a u64.
            let bits = ((-decay * i as f64).exp() * 4_294_967_296.0).round() as u64;
            *w = U32F32::from_bits(bits);
        }
        Ok(Self { weights, levels })
    }

    /// Number of levels used by [`Self::obi`].
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// The quantised weights, best level first.
    pub fn weights(&self) -> &[U32F32] {
        &self.weights[..self.levels]
    }

    /// Weighted imbalance of a book as a mantissa at [`OBI_SCALE`]; `None` when both sides
    /// are empty over the window.
    #[inline]
    pub fn obi(&self, book: &OrderBook) -> Option<i64> {
        let mut bids = [0i64; MAX_LEVELS];
        let mut asks = [0i64; MAX_LEVELS];
        book.top_qtys(BookSide::Bid, &mut bids[..self.levels]);
        book.top_qtys(BookSide::Ask, &mut asks[..self.levels]);
        let (mut num, mut den) = (0i128, 0i128);
        for i in 0..self.levels {
            let w = self.weights[i].to_bits() as i128;
            num += w * (bids[i] as i128 - asks[i] as i128);
            den += w * (bids[i] as i128 + asks[i] as i128);
        }
        ratio(num, den)
    }
}

/// Level-1 imbalance of a book as a mantissa at [`OBI_SCALE`]; `None` when both best
/// sizes are missing.
#[inline]
pub fn obi_l1(book: &OrderBook) -> Option<i64> {
    let b = book.best(BookSide::Bid).map_or(0, |l| l.qty) as i128;
    let a = book.best(BookSide::Ask).map_or(0, |l| l.qty) as i128;
    ratio(b - a, b + a)
}

#[inline]
fn ratio(num: i128, den: i128) -> Option<i64> {
    if den == 0 {
        return None;
    }
    // |num| <= den, so the result is within +-10^9.
    Some(round_div_half_even(num * pow10_i128(OBI_SCALE as u32), den) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_exp_decay() {
        let cfg = ImbalanceConfig::default();
        assert_eq!(cfg.weights()[0].to_bits(), 1u64 << 32);
        let w1: f64 = cfg.weights()[1].to_num();
        assert!((w1 - (-0.1f64).exp()).abs() < 1e-9);
        assert!(ImbalanceConfig::new(0, 0.1).is_err());
        assert!(ImbalanceConfig::new(10, f64::NAN).is_err());
    }

    #[test]
    fn imbalance_of_small_books() {
        let cfg = ImbalanceConfig::new(2, 0.0).unwrap();
        let mut book = OrderBook::new();
        assert_eq!(obi_l1(&book), None);
        assert_eq!(cfg.obi(&book), None);
        book.set(BookSide::Bid, 100, 3);
        book.set(BookSide::Ask, 101, 1);
        assert_eq!(obi_l1(&book), Some(500_000_000)); // (3-1)/(3+1)
        book.set(BookSide::Ask, 102, 2);
        // equal weights: (3 - 3) / (3 + 3)
        assert_eq!(cfg.obi(&book), Some(0));
        book.set(BookSide::Bid, 100, 0);
        assert_eq!(obi_l1(&book), Some(-1_000_000_000));
        // 1/3 rounds half-even at 9 digits
        book.set(BookSide::Bid, 99, 1);
        book.set(BookSide::Ask, 102, 0);
        book.set(BookSide::Ask, 101, 2);
        assert_eq!(obi_l1(&book), Some(-333_333_333));
    }
}
