//! Eight bytes at a time: the word tricks shared by the JSON scanner and the fast path.
//!
//! A word is eight message bytes loaded little-endian. Loads are bounds checked (`None` near
//! the end of the buffer, where callers go on byte by byte).

/// The eight bytes at `buf[at..at + 8]`.
#[inline]
pub(crate) fn load(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// True when a word holds a `"`, a `\\` or a control byte (< 0x20). May also be true above
/// a byte that really matches (borrows propagate upwards), never falsely false: the caller
/// then looks at the bytes one by one.
#[inline]
pub(crate) const fn needs_look(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = word ^ (ONES * b'"' as u64);
    let backslash = word ^ (ONES * b'\\' as u64);
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    ((quote.wrapping_sub(ONES) & !quote & HIGH)
        | (backslash.wrapping_sub(ONES) & !backslash & HIGH)
        | control)
        != 0
}

/// How many of a word's bytes, from the first, are ASCII digits (0 to 8).
///
/// A byte is a digit when its high nibble is 3 and adding 6 leaves it 3 (low nibble at
/// most 9). Adding 6 carries out of a byte of 0xfa or more into the byte after it; such a
/// byte is itself no digit, so the first non-digit byte, the only one counted, is exact.
#[inline]
pub(crate) const fn digit_run(word: u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let high = (word & (ONES * 0xf0)) ^ (ONES * 0x30);
    let low = (word.wrapping_add(ONES * 0x06) & (ONES * 0xf0)) ^ (ONES * 0x30);
    ((high | low).trailing_zeros() / 8) as usize
}

/// The number written by a word's first `n` bytes, which must be digits (`n` at most 8).
///
/// Three multiplies instead of eight: pairs of digits, then pairs of pairs, then the two
/// halves, each step a multiply-and-shift over all lanes at once (the digits are moved to
/// the top of the word first, so that the bytes after them fall out).
#[inline]
pub(crate) const fn digits_value(word: u64, n: usize) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    if n == 0 {
        return 0;
    }
    // Subtracting first: a borrow runs only upwards, out of the bytes shifted away.
    let v = word.wrapping_sub(ONES * b'0' as u64) << (64 - 8 * n);
    let v = (v.wrapping_mul(10 << 8 | 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_ffff_0000_ffff;
    v.wrapping_mul(10_000 << 32 | 1) >> 32
}

/// True when bytes `from..to` of a word are all `'0'` (`from <= to <= 8`).
#[inline]
pub(crate) const fn zeros_between(word: u64, from: usize, to: usize) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    if from == to {
        return true;
    }
    let span = u64::MAX >> (64 - 8 * (to - from));
    ((word ^ (ONES * b'0' as u64)) >> (8 * from)) & span == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_look_is_never_falsely_false() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"abcdefgh";
                bytes[at] = b;
                let special = b == b'"' || b == b'\\' || b < 0x20;
                if special {
                    assert!(needs_look(u64::from_le_bytes(bytes)), "{b:#x} at {at}");
                }
            }
        }
        assert!(!needs_look(u64::from_le_bytes(*b"btcusdt@")));
        assert_eq!(load(b"0123456", 0), None);
        assert_eq!(load(b"01234567", 0), Some(u64::from_le_bytes(*b"01234567")));
    }

    /// Every byte value at every place of a word, after every digit prefix: the run, its
    /// value and the zero test agree with the byte-by-byte reading.
    #[test]
    fn digit_words_agree_with_bytewise_reading() {
        let digits = *b"90817263";
        for len in 0..=8 {
            for b in 0..=255u8 {
                for tail in [b'"', b'.', b'0', 0xff] {
                    let mut bytes = [tail; 8];
                    bytes[..len].copy_from_slice(&digits[..len]);
                    if len < 8 {
                        bytes[len] = b;
                    }
                    let word = u64::from_le_bytes(bytes);
                    let run = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
                    assert_eq!(digit_run(word), run, "{bytes:?}");
                    for n in 0..=run {
                        let want = bytes[..n]
                            .iter()
                            .fold(0u64, |v, c| v * 10 + (c - b'0') as u64);
                        assert_eq!(digits_value(word, n), want, "{bytes:?} {n}");
                        for from in 0..=n {
                            let zeros = bytes[from..n].iter().all(|&c| c == b'0');
                            assert_eq!(zeros_between(word, from, n), zeros, "{bytes:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(
            digits_value(u64::from_le_bytes(*b"99999999"), 8),
            99_999_999
        );
    }
}
