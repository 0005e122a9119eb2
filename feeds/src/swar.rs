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
}
