//! A price-level order book: absolute quantities per price.
//!
//! Each side keeps the levels near the top in a dense window of price ticks and the rest in
//! a ladder of small sorted blocks (a two-level B-tree).
//!
//! The window (`Window`) holds 2^16 consecutive keys (a key is a price mantissa, negated on
//! the ask side so that both sides share one ordering, best highest): setting a level is a
//! store and a bit, with no search and no moving of other levels, and the top-N read walks
//! a bitmap down from the best. Prices are on a tick grid at the instrument's scale, so the
//! levels near the top are dense in it: 2^16 keys are ±327 USD around BTC's spot price at
//! 0.01 and ±3,277 USD on USD-M at 0.1, where Binance's 1,000-level snapshots span 150-200
//! USD. A side's window is anchored when its first level arrives, around it, and moves when
//! a level lands above it (the price ran up) or the window emptied (the price ran down);
//! the levels it leaves behind go to the ladder. Levels below the window (far bids, or deep
//! stale levels a diff stream still touches: 4.5% of USD-M's diff levels are over 3,000 USD
//! away) live in the ladder. Every ladder key is below the window's first key, so a side
//! reads from the top as the window's levels, then the ladder's.
//!
//! Measured on the whole one-thread `flowcore replay` of the BTC set (spot 08+09, USD-M 08,
//! 700 k level updates: 42% changes, 27% inserts, 25% deletes, 6% deletes of absent levels):
//! the ladder alone spent ~31 ns an update (its block search, then a memmove of 16 levels on
//! average on each insert and delete). See `WINDOW` for the numbers with the window.
//!
//! The ladder (`Ladder`): a Binance book holds thousands of levels, and the diff stream
//! touches deep ones too: in one flat sorted `Vec`, every deep insert or delete moved the
//! whole side (memmove was 30% of the replay's instructions). Here an insert or delete moves
//! at most one block's worth of levels. A level's block is the last one (updates at the
//! top), the block of the level before or next to it (a diff lists a side in price order),
//! or found by a binary search over the blocks' first keys; within the block, two rounds of
//! independent loads find it ([`Block::find`]). Blocks come from a pool reserved up front,
//! so a book only allocates when it grows past everything it has held before.

use crate::event::BookSide;

/// One price level: mantissas at the instrument's scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PriceLevel {
    /// Price mantissa.
    pub px: i64,
    /// Quantity mantissa, always > 0 inside a book.
    pub qty: i64,
}

/// Levels per block: one block's keys and quantities are 1 KiB, so the memmove on an insert
/// stays within a few cache lines while the block index stays short (tens of entries).
const BLOCK: usize = 64;

/// Up to [`BLOCK`] levels, `keys[..len]` ascending; `keys[len..]` hold [`PAD`].
///
/// Cache-line aligned with the keys first, so that each run of [`LINE`] keys is one line.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Block {
    keys: [i64; BLOCK],
    qtys: [i64; BLOCK],
    len: usize,
}

/// Keys per cache line.
const LINE: usize = 64 / size_of::<i64>();

/// The key of an unused slot: above every key, so a search over the whole block needs no
/// bound on `len` (a real key equal to it is still found: see [`Block::find`]).
const PAD: i64 = i64::MAX;

impl Block {
    const EMPTY: Block = Block {
        len: 0,
        keys: [PAD; BLOCK],
        qtys: [0; BLOCK],
    };

    /// Where `key` is (`Ok`) or would go (`Err`).
    ///
    /// Two rounds of loads, each a count of keys below `key`: first the first key of every
    /// line, which says which line, then that line's keys. The loads of a round do not
    /// depend on each other and no branch follows the data; a binary search chains six
    /// dependent loads and branches. Measured on the BTC replay's 1.4 M levels, searching
    /// alone: 25 ns a level with the binary search, 19 ns with this; the whole replay went
    /// from 117 to about 106 ms. Also measured, and slower: the line heads kept in a line
    /// of their own (fewer lines, but two dependent rounds), a count over all 64 keys,
    /// and prefetching the blocks of the levels ahead in a batch.
    #[inline]
    fn find(&self, key: i64) -> Result<usize, usize> {
        const _: () = assert!(BLOCK.is_multiple_of(LINE));
        let line = (1..BLOCK / LINE)
            .map(|l| usize::from(self.keys[l * LINE] < key))
            .sum::<usize>();
        let i = line * LINE
            + self.keys[line * LINE..line * LINE + LINE]
                .iter()
                .map(|&k| usize::from(k < key))
                .sum::<usize>();
        if i < self.len && self.keys[i] == key {
            Ok(i)
        } else {
            Err(i.min(self.len))
        }
    }

    #[inline]
    fn insert(&mut self, i: usize, key: i64, qty: i64) {
        debug_assert!(self.len < BLOCK && i <= self.len);
        self.keys.copy_within(i..self.len, i + 1);
        self.qtys.copy_within(i..self.len, i + 1);
        self.keys[i] = key;
        self.qtys[i] = qty;
        self.len += 1;
    }

    #[inline]
    fn remove(&mut self, i: usize) {
        self.keys.copy_within(i + 1..self.len, i);
        self.qtys.copy_within(i + 1..self.len, i);
        self.len -= 1;
        self.keys[self.len] = PAD;
    }
}

/// Levels by key in blocks in key order, `firsts[j]` the first key of block `order[j]`. Its
/// levels come out as [`PriceLevel`]s whose `px` is the key (the [`Side`] turns keys back
/// into prices).
#[derive(Debug, Clone)]
struct Ladder {
    /// Pool slots of the blocks in ascending key order.
    order: Vec<u32>,
    /// First key of each block in `order`: the index a lookup searches.
    firsts: Vec<i64>,
    pool: Vec<Block>,
    /// Pool slots not in `order`.
    free: Vec<u32>,
    levels: usize,
    /// Position in `order` of the block the last search found.
    hint: usize,
}

impl Ladder {
    fn with_capacity(levels: usize) -> Self {
        // Blocks split half full, so a side of n levels needs up to 2n / BLOCK blocks.
        let blocks = 2 * levels / BLOCK + 1;
        Self {
            order: Vec::with_capacity(blocks),
            firsts: Vec::with_capacity(blocks),
            pool: Vec::with_capacity(blocks),
            free: Vec::with_capacity(blocks),
            levels: 0,
            hint: 0,
        }
    }

    /// Position in `order` of the block that holds `key` or would take it.
    #[inline]
    fn block_for(&mut self, key: i64) -> usize {
        let last = self.firsts.len() - 1;
        if self.firsts[last] <= key {
            return last;
        }
        // A diff lists its levels in price order, so the next key usually falls in the block
        // of the one before: two compares instead of a search.
        let hint = self.hint;
        if hint < last && self.firsts[hint] <= key && key < self.firsts[hint + 1] {
            return hint;
        }
        // Or the block next to it, the way the diff walks.
        for j in [hint.wrapping_sub(1), hint + 1] {
            if j < last && self.firsts[j] <= key && key < self.firsts[j + 1] {
                self.hint = j;
                return j;
            }
        }
        let found = self
            .firsts
            .partition_point(|&first| first <= key)
            .saturating_sub(1);
        self.hint = found;
        found
    }

    fn new_block(&mut self) -> u32 {
        match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.pool.push(Block::EMPTY);
                (self.pool.len() - 1) as u32
            }
        }
    }

    #[inline]
    fn set(&mut self, key: i64, qty: i64) {
        if self.order.is_empty() {
            if qty != 0 {
                let slot = self.new_block();
                self.pool[slot as usize].insert(0, key, qty);
                self.order.push(slot);
                self.firsts.push(key);
                self.levels = 1;
            }
            return;
        }
        let j = self.block_for(key);
        let slot = self.order[j] as usize;
        let block = &mut self.pool[slot];
        let found = block.find(key);
        match (found, qty) {
            (Ok(i), 0) => {
                block.remove(i);
                self.levels -= 1;
                if block.len == 0 {
                    self.order.remove(j);
                    self.firsts.remove(j);
                    self.free.push(slot as u32);
                } else if i == 0 {
                    self.firsts[j] = block.keys[0];
                }
            }
            (Ok(i), q) => block.qtys[i] = q,
            (Err(_), 0) => {}
            (Err(i), q) => {
                self.levels += 1;
                if block.len < BLOCK {
                    block.insert(i, key, q);
                    if i == 0 {
                        self.firsts[j] = key;
                    }
                    return;
                }
                self.split_and_insert(j, i, key, q);
            }
        }
    }

    /// Moves the upper half of the full block at `order[j]` into a new block after it, then
    /// inserts at position `i` of the old block's numbering.
    #[cold]
    fn split_and_insert(&mut self, j: usize, i: usize, key: i64, qty: i64) {
        let upper = self.new_block() as usize;
        let lower = self.order[j] as usize;
        let half = BLOCK / 2;
        let (lo, hi) = if lower < upper {
            let (a, b) = self.pool.split_at_mut(upper);
            (&mut a[lower], &mut b[0])
        } else {
            let (a, b) = self.pool.split_at_mut(lower);
            (&mut b[0], &mut a[upper])
        };
        hi.keys[..BLOCK - half].copy_from_slice(&lo.keys[half..]);
        hi.qtys[..BLOCK - half].copy_from_slice(&lo.qtys[half..]);
        hi.len = BLOCK - half;
        lo.len = half;
        lo.keys[half..].fill(PAD);
        let hi_first = hi.keys[0];
        if i <= half {
            lo.insert(i, key, qty);
            if i == 0 {
                self.firsts[j] = key;
            }
            self.order.insert(j + 1, upper as u32);
            self.firsts.insert(j + 1, hi_first);
        } else {
            hi.insert(i - half, key, qty);
            self.order.insert(j + 1, upper as u32);
            self.firsts.insert(j + 1, hi_first);
        }
    }

    /// Levels from the best down.
    #[inline]
    fn iter_from_top(&self) -> impl Iterator<Item = PriceLevel> + '_ {
        self.order.iter().rev().flat_map(move |&slot| {
            let block = &self.pool[slot as usize];
            block.keys[..block.len]
                .iter()
                .zip(&block.qtys[..block.len])
                .rev()
                .map(|(&key, &qty)| PriceLevel { px: key, qty })
        })
    }

    #[inline]
    fn level_from_top(&self, mut depth: usize) -> Option<PriceLevel> {
        for &slot in self.order.iter().rev() {
            let block = &self.pool[slot as usize];
            if depth < block.len {
                let i = block.len - 1 - depth;
                return Some(PriceLevel {
                    px: block.keys[i],
                    qty: block.qtys[i],
                });
            }
            depth -= block.len;
        }
        None
    }

    fn clear(&mut self) {
        for slot in self.order.drain(..) {
            let block = &mut self.pool[slot as usize];
            block.len = 0;
            block.keys.fill(PAD);
            self.free.push(slot);
        }
        self.firsts.clear();
        self.levels = 0;
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        assert_eq!(self.order.len(), self.firsts.len());
        let mut prev = None;
        let mut n = 0;
        for (&slot, &first) in self.order.iter().zip(&self.firsts) {
            let b = &self.pool[slot as usize];
            assert!(b.len > 0, "empty block in order");
            assert_eq!(b.keys[0], first);
            assert!(b.keys[b.len..].iter().all(|&k| k == PAD), "unpadded slot");
            for &k in &b.keys[..b.len] {
                assert!(prev.is_none_or(|p| p < k), "keys not ascending");
                prev = Some(k);
            }
            n += b.len;
        }
        assert_eq!(n, self.levels);
        assert_eq!(self.order.len() + self.free.len(), self.pool.len());
    }
}

/// Keys in a side's window: 512 KiB of quantities and an 8 KiB bitmap, allocated zeroed so
/// that the pages the levels never reach are never touched.
///
/// Measured 2026-12-06 (one-thread `flowcore replay` of the BTC set, best of 11 in
/// alternation): the ladder alone 95.1 ms, windows of 2^14 keys 86.1 ms, 2^16 81.9 ms,
/// 2^17 82.7 ms (a smaller window leaves more levels to the ladder; a larger one gains
/// nothing). `cargo bench --bench book`, same day: one level applied 10-13 ns p50 against
/// 45 ns for the ladder before (2026-11-22) and 56 ns for a `BTreeMap`; the top 10 levels a
/// side read in 35 ns against the ladder's 19 ns and the `BTreeMap`'s 31 ns (a bitmap walk
/// and a load a level, where the ladder's top levels sat side by side in one block).
const WINDOW: usize = 1 << 16;

/// A dense run of keys from `base`: slot `i` holds the quantity at key `base + i` (0 when
/// empty), its bit in `occupied` set when not.
#[derive(Debug, Clone)]
struct Window {
    base: i64,
    qtys: Vec<i64>,
    occupied: Vec<u64>,
    levels: usize,
    /// The highest occupied slot.
    top: Option<usize>,
}

/// Where a key falls against a window.
enum Place {
    Below,
    In(usize),
    Above,
}

impl Window {
    fn new(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two() && slots >= 64);
        Self {
            base: 0,
            qtys: vec![0; slots],
            occupied: vec![0; slots / 64],
            levels: 0,
            top: None,
        }
    }

    #[inline]
    fn place(&self, key: i64) -> Place {
        if key < self.base {
            return Place::Below;
        }
        // key >= base: the difference fits a u64 even when it overflows an i64.
        let offset = key.wrapping_sub(self.base) as u64;
        if offset < self.qtys.len() as u64 {
            Place::In(offset as usize)
        } else {
            Place::Above
        }
    }

    #[inline]
    fn key_at(&self, slot: usize) -> i64 {
        self.base + slot as i64
    }

    #[inline]
    fn set(&mut self, slot: usize, qty: i64) {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        // Whether the level was there comes from the bitmap (8 KiB a side, cached), not from
        // the quantity (512 KiB a side): the store below then waits on no load.
        let was = self.occupied[word] & bit != 0;
        self.qtys[slot] = qty;
        match (was, qty != 0) {
            (false, true) => {
                self.occupied[word] |= bit;
                self.levels += 1;
                if self.top.is_none_or(|top| slot > top) {
                    self.top = Some(slot);
                }
            }
            (true, false) => {
                self.occupied[word] &= !bit;
                self.levels -= 1;
                if self.top == Some(slot) {
                    self.top = self.next_below(slot);
                }
            }
            _ => {}
        }
    }

    /// The highest occupied slot below `slot`.
    #[inline]
    fn next_below(&self, slot: usize) -> Option<usize> {
        let mut word = slot / 64;
        let mut bits = self.occupied[word] & ((1u64 << (slot % 64)) - 1);
        loop {
            if bits != 0 {
                return Some(word * 64 + 63 - bits.leading_zeros() as usize);
            }
            word = word.checked_sub(1)?;
            bits = self.occupied[word];
        }
    }

    /// Occupied slots from the top down, with their quantities: a bitmap word at a time,
    /// each set bit taken off the word in hand.
    #[inline]
    fn iter_from_top(&self) -> impl Iterator<Item = (usize, i64)> + '_ {
        let (mut word, mut bits) = match self.top {
            Some(top) => (top / 64, self.occupied[top / 64]),
            None => (0, 0),
        };
        core::iter::from_fn(move || loop {
            if bits != 0 {
                let bit = 63 - bits.leading_zeros() as usize;
                bits &= !(1 << bit);
                let slot = word * 64 + bit;
                return Some((slot, self.qtys[slot]));
            }
            word = word.checked_sub(1)?;
            bits = self.occupied[word];
        })
    }

    /// Empties the window into `out` as (key, qty), best first.
    fn drain_into(&mut self, out: &mut Vec<(i64, i64)>) {
        let mut next = self.top;
        while let Some(slot) = next {
            next = self.next_below(slot);
            out.push((self.key_at(slot), self.qtys[slot]));
            self.qtys[slot] = 0;
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
        self.levels = 0;
        self.top = None;
    }
}

/// One side: the window near the top, the ladder below it. Keys throughout (see the module
/// doc); prices only at the edges.
#[derive(Debug, Clone)]
struct Side {
    window: Window,
    /// Levels with keys below the window's base.
    deep: Ladder,
    /// False until the first level places the window.
    anchored: bool,
    negate: bool,
    /// The window's levels while it moves: reserved, so moving does not allocate.
    moving: Vec<(i64, i64)>,
}

impl Side {
    fn new(negate: bool, levels: usize, window: usize) -> Self {
        Self {
            window: Window::new(window),
            deep: Ladder::with_capacity(levels),
            anchored: false,
            negate,
            moving: Vec::with_capacity(levels),
        }
    }

    /// Asks are keyed by negated price: `i64::MIN` has none (parsers refuse prices at or
    /// below zero).
    #[inline]
    fn key(&self, px: i64) -> i64 {
        debug_assert!(px != i64::MIN, "a price of i64::MIN has no ask key");
        if self.negate {
            -px
        } else {
            px
        }
    }

    #[inline]
    fn set(&mut self, px: i64, qty: i64) {
        let key = self.key(px);
        match self.window.place(key) {
            Place::In(slot) if self.anchored => self.window.set(slot, qty),
            Place::Below if self.anchored && (qty == 0 || self.window.levels > 0) => {
                self.deep.set(key, qty)
            }
            // Nothing is above the window (nor anywhere before it is placed): a delete there
            // finds no level.
            _ if qty == 0 => {}
            // A new level above the window, below an empty one, or the first: the window moves
            // to have the side's best in its middle.
            _ => {
                let best = self.deep.level_from_top(0).map_or(key, |l| l.px.max(key));
                self.move_window(best);
                self.place(key, qty);
            }
        }
    }

    /// Sets a level in the window or the ladder, wherever it falls.
    #[inline]
    fn place(&mut self, key: i64, qty: i64) {
        match self.window.place(key) {
            Place::In(slot) => self.window.set(slot, qty),
            Place::Below => self.deep.set(key, qty),
            Place::Above => {
                // The window is only ever placed around a side's best (`move_window`).
                debug_assert!(false, "a level above the window: {key}");
                self.deep.set(key, qty);
            }
        }
    }

    /// Places the window with `best`, at or above every level of the side, in its middle.
    /// Levels below the new window go to the ladder; the ladder's levels inside it come up.
    /// Rare (the price moved half a window): the levels moved, and a walk of the old
    /// window's bitmap (1,024 words at most).
    #[cold]
    fn move_window(&mut self, best: i64) {
        let half = (self.window.qtys.len() / 2) as i64;
        let mut moving = core::mem::take(&mut self.moving);
        self.window.drain_into(&mut moving);
        self.window.base = best.saturating_sub(half);
        self.anchored = true;
        while let Some(top) = self.deep.level_from_top(0) {
            if top.px < self.window.base {
                break;
            }
            self.deep.set(top.px, 0);
            moving.push((top.px, top.qty));
        }
        for &(key, qty) in &moving {
            self.place(key, qty);
        }
        moving.clear();
        self.moving = moving;
    }

    /// Levels from the best down.
    #[inline]
    fn iter_from_top(&self) -> impl Iterator<Item = PriceLevel> + '_ {
        self.window
            .iter_from_top()
            .map(|(slot, qty)| (self.window.key_at(slot), qty))
            .chain(self.deep.iter_from_top().map(|l| (l.px, l.qty)))
            .map(|(key, qty)| PriceLevel {
                // Negation is its own inverse: the key of a key is the price.
                px: self.key(key),
                qty,
            })
    }

    #[inline]
    fn level_from_top(&self, depth: usize) -> Option<PriceLevel> {
        if depth == 0 {
            if let Some(slot) = self.window.top {
                return Some(PriceLevel {
                    px: self.key(self.window.key_at(slot)),
                    qty: self.window.qtys[slot],
                });
            }
        }
        self.iter_from_top().nth(depth)
    }

    fn levels(&self) -> usize {
        self.window.levels + self.deep.levels
    }

    fn clear(&mut self) {
        self.window.drain_into(&mut self.moving);
        self.moving.clear();
        self.deep.clear();
        self.anchored = false;
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        self.deep.check_invariants();
        let in_window = self.window.iter_from_top().count();
        assert_eq!(in_window, self.window.levels);
        assert_eq!(
            self.window
                .occupied
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>(),
            in_window
        );
        assert!(self
            .window
            .qtys
            .iter()
            .enumerate()
            .all(|(i, &q)| (q != 0) == (self.window.occupied[i / 64] & (1 << (i % 64)) != 0)));
        if let Some(deep_best) = self.deep.level_from_top(0) {
            assert!(
                deep_best.px < self.window.base,
                "a ladder level inside the window"
            );
        }
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
    bids: Side,
    asks: Side,
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
        Self::with_window(WINDOW)
    }

    /// A book with little reserved, for an instrument no level is expected for: the same
    /// book, whose window spans 64 keys and whose room grows as levels come. An engine keeps
    /// a book for every instrument of its table; a full one reserves over 1 MB (two 512 KiB
    /// windows and room for 8,192 levels a side), a few pages of it touched when made.
    pub fn unexpected() -> Self {
        Self {
            bids: Side::new(false, 0, 64),
            asks: Side::new(true, 0, 64),
        }
    }

    /// A book whose windows span `window` keys (a power of two, at least 64): small ones
    /// let tests move them often.
    fn with_window(window: usize) -> Self {
        Self {
            bids: Side::new(false, Self::RESERVED_LEVELS, window),
            asks: Side::new(true, Self::RESERVED_LEVELS, window),
        }
    }

    #[inline]
    fn side(&self, side: BookSide) -> &Side {
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
        self.side(side).level_from_top(depth)
    }

    /// The levels of a side from the best down: one walk, cheaper than [`Self::level`] per
    /// depth when reading several.
    #[inline]
    pub fn levels(&self, side: BookSide) -> impl Iterator<Item = PriceLevel> + '_ {
        self.side(side).iter_from_top()
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
        let mut n = 0;
        for (slot, level) in out.iter_mut().zip(self.side(side).iter_from_top()) {
            *slot = level.qty;
            n += 1;
        }
        for slot in &mut out[n..] {
            *slot = 0;
        }
        n
    }

    /// Number of levels on a side.
    pub fn depth(&self, side: BookSide) -> usize {
        self.side(side).levels()
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

    /// [`check_book`] with the real window, with a 64-key one that the same prices move
    /// often, leaving levels below it in the ladder, and with an unexpected instrument's
    /// book (that window, nothing reserved).
    fn check_against_model(ops: &[(bool, i64, i64)]) -> Result<(), TestCaseError> {
        check_book(ops, OrderBook::with_window(WINDOW))?;
        check_book(ops, OrderBook::with_window(64))?;
        check_book(ops, OrderBook::unexpected())
    }

    /// Applies `ops` to `book` and a BTreeMap model and compares every level of both sides.
    fn check_book(ops: &[(bool, i64, i64)], mut book: OrderBook) -> Result<(), TestCaseError> {
        let mut bids = BTreeMap::new();
        let mut asks = BTreeMap::new();
        for &(is_bid, px, qty) in ops {
            let (side, model) = if is_bid {
                (BookSide::Bid, &mut bids)
            } else {
                (BookSide::Ask, &mut asks)
            };
            book.set(side, px, qty);
            if qty == 0 {
                model.remove(&px);
            } else {
                model.insert(px, qty);
            }
        }
        let want_bids: Vec<_> = bids
            .iter()
            .rev()
            .map(|(&px, &qty)| PriceLevel { px, qty })
            .collect();
        let want_asks: Vec<_> = asks
            .iter()
            .map(|(&px, &qty)| PriceLevel { px, qty })
            .collect();
        let got_bids: Vec<_> = (0..book.depth(BookSide::Bid))
            .map(|d| book.level(BookSide::Bid, d).unwrap())
            .collect();
        let got_asks: Vec<_> = (0..book.depth(BookSide::Ask))
            .map(|d| book.level(BookSide::Ask, d).unwrap())
            .collect();
        prop_assert_eq!(
            book.levels(BookSide::Bid).collect::<Vec<_>>(),
            got_bids.clone()
        );
        prop_assert_eq!(got_bids, want_bids);
        prop_assert_eq!(got_asks, want_asks);
        let mut top = [0i64; 4];
        book.top_qtys(BookSide::Ask, &mut top);
        for (i, q) in top.iter().enumerate() {
            prop_assert_eq!(*q, asks.values().nth(i).copied().unwrap_or(0));
        }
        book.bids.check_invariants();
        book.asks.check_invariants();
        Ok(())
    }

    proptest! {
        /// Few prices, many collisions: updates, deletes of present and absent levels.
        #[test]
        fn matches_a_btreemap_model(ops in proptest::collection::vec((any::<bool>(), 90i64..110, 0i64..4), 0..300)) {
            check_against_model(&ops)?;
        }

        /// Many prices: blocks fill, split, empty and are reused.
        #[test]
        fn matches_a_btreemap_model_across_blocks(ops in proptest::collection::vec((any::<bool>(), 0i64..1500, 0i64..3), 0..3000)) {
            check_against_model(&ops)?;
        }

        /// Diff-shaped: batches listing each side from the best down, over a deep book, so
        /// that the block of the level before is often, not always, the right one.
        #[test]
        fn matches_a_btreemap_model_with_diff_shaped_batches(
            batches in proptest::collection::vec(
                proptest::collection::vec((any::<bool>(), 0i64..6000, 0i64..3), 1..80),
                1..60,
            )
        ) {
            let mut ops = Vec::new();
            for mut batch in batches {
                // Bids from the highest price down, then asks from the lowest up.
                batch.sort_by_key(|&(is_bid, px, _)| (!is_bid, if is_bid { -px } else { px }));
                ops.extend(batch);
            }
            check_against_model(&ops)?;
        }
    }

    proptest! {
        /// A price that trends up and down across many windows, levels set and deleted
        /// around it and some far away: the windows move both ways with levels left behind
        /// in the ladder and brought back up.
        #[test]
        fn matches_a_btreemap_model_while_the_price_trends(
            steps in proptest::collection::vec(
                (-40i64..40, any::<bool>(), prop_oneof![0i64..30, 0i64..3000], 0i64..3),
                1..600,
            )
        ) {
            let mut mid = 10_000i64;
            let mut ops = Vec::new();
            for (drift, is_bid, offset, qty) in steps {
                mid += drift;
                ops.push((is_bid, if is_bid { mid - offset } else { mid + offset }, qty));
            }
            check_against_model(&ops)?;
        }
    }

    #[test]
    fn an_emptied_window_moves_down_under_the_ladders_best() {
        let mut book = OrderBook::with_window(64);
        book.set(BookSide::Bid, 1_000, 1);
        book.set(BookSide::Bid, 900, 2); // below the window: the ladder
        book.set(BookSide::Bid, 1_000, 0); // the window is empty now
        book.set(BookSide::Bid, 100, 3); // far below: the window moves around 900, not 100
        book.bids.check_invariants();
        let levels: Vec<_> = book.levels(BookSide::Bid).map(|l| (l.px, l.qty)).collect();
        assert_eq!(levels, [(900, 2), (100, 3)]);
        assert_eq!(book.bids.deep.levels, 1, "100 stays in the ladder");
    }

    #[test]
    fn a_deep_book_fills_empties_and_refills_through_the_pool() {
        let mut ops = Vec::new();
        // Ascending, descending and interleaved inserts split blocks at both ends and inside.
        ops.extend((0..3000).map(|p| (true, p * 3, 1)));
        ops.extend((0..3000).rev().map(|p| (true, p * 3 + 1, 2)));
        ops.extend((0..3000).map(|p| (true, p * 3 + 2, 3)));
        ops.extend((0..9000).map(|p| (true, (p * 7919) % 9000, 0)));
        ops.extend((0..500).map(|p| (true, p, 4)));
        check_against_model(&ops).unwrap();
        // A window of 64 keys: most of these levels live in the ladder.
        let mut book = OrderBook::with_window(64);
        for &(_, px, q) in &ops {
            book.set(BookSide::Ask, px, q);
        }
        assert!(book.asks.deep.levels > 400);
        let pool = book.asks.deep.pool.len();
        book.clear();
        book.asks.check_invariants();
        assert_eq!(book.depth(BookSide::Ask), 0);
        for &(_, px, q) in &ops {
            book.set(BookSide::Ask, px, q);
        }
        assert_eq!(
            book.asks.deep.pool.len(),
            pool,
            "a cleared book reuses its blocks"
        );
        assert_eq!(book.best(BookSide::Ask), Some(PriceLevel { px: 0, qty: 4 }));
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
