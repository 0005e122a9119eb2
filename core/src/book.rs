//! A price-level order book: absolute quantities per price, best level last.
//!
//! Each side is one sorted `Vec` of levels ordered so that the best price is at the end:
//! updates near the top (most of them) move few bytes, the top-N read walks backwards over
//! contiguous memory, and a level is found by binary search. Asks are stored with a negated
//! key so that both sides share one ordering. Capacity is reserved up front; a book only
//! allocates when it grows past everything it has held before.

use crate::event::BookSide;

/// One price level: mantissas at the instrument's scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PriceLevel {
    /// Price mantissa.
    pub px: i64,
    /// Quantity mantissa, always > 0 inside a book.
    pub qty: i64,
}

/// One side. `keys` ascend strictly; the best level is `keys.last()`.
#[derive(Debug, Clone)]
struct Ladder {
    /// `px` for bids, `-px` for asks: ascending, unique.
    keys: Vec<i64>,
    /// Quantity at `keys[i]`, > 0.
    qtys: Vec<i64>,
    negate: bool,
}

impl Ladder {
    fn with_capacity(negate: bool, capacity: usize) -> Self {
        Self {
            keys: Vec::with_capacity(capacity),
            qtys: Vec::with_capacity(capacity),
            negate,
        }
    }

    #[inline]
    fn key(&self, px: i64) -> i64 {
        if self.negate {
            -px
        } else {
            px
        }
    }

    #[inline]
    fn set(&mut self, px: i64, qty: i64) {
        let key = self.key(px);
        // Most updates land near the top: check the last slot before searching.
        let found = match self.keys.last() {
            Some(&last) if last == key => Ok(self.keys.len() - 1),
            Some(&last) if last < key => Err(self.keys.len()),
            _ => self.keys.binary_search(&key),
        };
        match (found, qty) {
            (Ok(i), 0) => {
                self.keys.remove(i);
                self.qtys.remove(i);
            }
            (Ok(i), q) => self.qtys[i] = q,
            (Err(_), 0) => {}
            (Err(i), q) => {
                self.keys.insert(i, key);
                self.qtys.insert(i, q);
            }
        }
        debug_assert!(self.keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[inline]
    fn level_from_top(&self, depth: usize) -> Option<PriceLevel> {
        let i = self.keys.len().checked_sub(depth + 1)?;
        let key = self.keys[i];
        Some(PriceLevel {
            px: if self.negate { -key } else { key },
            qty: self.qtys[i],
        })
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.qtys.clear();
    }
}

/// An order book with absolute-quantity updates.
///
/// # Examples
/// ```
/// use flowcore_core::book::OrderBook;
/// use flowcore_core::event::BookSide;
/// let mut book = OrderBook::new();
/// book.set(BookSide::Bid, 100, 5);
/// book.set(BookSide::Bid, 101, 2);
/// book.set(BookSide::Ask, 103, 1);
/// book.set(BookSide::Bid, 101, 0); // zero deletes
/// assert_eq!(book.best(BookSide::Bid).unwrap().px, 100);
/// assert_eq!(book.best(BookSide::Ask).unwrap().px, 103);
/// ```
#[derive(Debug, Clone)]
pub struct OrderBook {
    bids: Ladder,
    asks: Ladder,
}

impl Default for OrderBook {
    fn default() -> Self {
        Self::new()
    }
}

impl OrderBook {
    /// Levels reserved per side: a Binance REST snapshot holds up to 5000 per side.
    pub const RESERVED_LEVELS: usize = 8192;

    /// An empty book with [`Self::RESERVED_LEVELS`] reserved per side.
    pub fn new() -> Self {
        Self {
            bids: Ladder::with_capacity(false, Self::RESERVED_LEVELS),
            asks: Ladder::with_capacity(true, Self::RESERVED_LEVELS),
        }
    }

    #[inline]
    fn ladder(&self, side: BookSide) -> &Ladder {
        match side {
            BookSide::Bid => &self.bids,
            BookSide::Ask => &self.asks,
        }
    }

    /// Sets the absolute quantity at a price; `qty == 0` deletes the level.
    #[inline]
    pub fn set(&mut self, side: BookSide, px: i64, qty: i64) {
        match side {
            BookSide::Bid => self.bids.set(px, qty),
            BookSide::Ask => self.asks.set(px, qty),
        }
    }

    /// The level `depth` steps from the top (0 = best), if the side is that deep.
    #[inline]
    pub fn level(&self, side: BookSide, depth: usize) -> Option<PriceLevel> {
        self.ladder(side).level_from_top(depth)
    }

    /// The best level of a side.
    #[inline]
    pub fn best(&self, side: BookSide) -> Option<PriceLevel> {
        self.level(side, 0)
    }

    /// Copies the top `out.len()` quantities of a side into `out`, best first, zero-filling
    /// missing levels. Returns how many levels existed.
    #[inline]
    pub fn top_qtys(&self, side: BookSide, out: &mut [i64]) -> usize {
        let ladder = self.ladder(side);
        let n = out.len().min(ladder.qtys.len());
        let len = ladder.qtys.len();
        for (slot, q) in out.iter_mut().zip(ladder.qtys[len - n..].iter().rev()) {
            *slot = *q;
        }
        for slot in &mut out[n..] {
            *slot = 0;
        }
        n
    }

    /// Number of levels on a side.
    pub fn depth(&self, side: BookSide) -> usize {
        self.ladder(side).keys.len()
    }

    /// True when the best bid is at or above the best ask.
    pub fn is_crossed(&self) -> bool {
        match (self.best(BookSide::Bid), self.best(BookSide::Ask)) {
            (Some(b), Some(a)) => b.px >= a.px,
            _ => false,
        }
    }

    /// Removes every level, keeping the capacity.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// The book agrees with a BTreeMap model after any sequence of updates.
        #[test]
        fn matches_a_btreemap_model(ops in proptest::collection::vec((any::<bool>(), 90i64..110, 0i64..4), 0..300)) {
            let mut book = OrderBook::new();
            let mut bids = BTreeMap::new();
            let mut asks = BTreeMap::new();
            for (is_bid, px, qty) in ops {
                let (side, model) = if is_bid { (BookSide::Bid, &mut bids) } else { (BookSide::Ask, &mut asks) };
                book.set(side, px, qty);
                if qty == 0 { model.remove(&px); } else { model.insert(px, qty); }
            }
            let want_bids: Vec<_> = bids.iter().rev().map(|(&px, &qty)| PriceLevel { px, qty }).collect();
            let want_asks: Vec<_> = asks.iter().map(|(&px, &qty)| PriceLevel { px, qty }).collect();
            let got_bids: Vec<_> = (0..book.depth(BookSide::Bid)).map(|d| book.level(BookSide::Bid, d).unwrap()).collect();
            let got_asks: Vec<_> = (0..book.depth(BookSide::Ask)).map(|d| book.level(BookSide::Ask, d).unwrap()).collect();
            prop_assert_eq!(got_bids, want_bids);
            prop_assert_eq!(got_asks, want_asks);
            let mut top = [0i64; 4];
            book.top_qtys(BookSide::Ask, &mut top);
            for (i, q) in top.iter().enumerate() {
                prop_assert_eq!(*q, asks.values().nth(i).copied().unwrap_or(0));
            }
        }
    }

    #[test]
    fn crossed_is_detected() {
        let mut book = OrderBook::new();
        book.set(BookSide::Bid, 10, 1);
        book.set(BookSide::Ask, 11, 1);
        assert!(!book.is_crossed());
        book.set(BookSide::Bid, 11, 1);
        assert!(book.is_crossed());
    }
}
