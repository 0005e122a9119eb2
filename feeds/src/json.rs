//! A small zero-copy JSON scanner for exchange messages.
//!
//! Exchange payloads are flat objects of known keys whose numbers arrive as strings.
//! Rather than building a tree (or a tape) of the whole message, the scanner walks the
//! bytes once, hands each key and the raw bytes of its value to the caller, and skips
//! everything else: no allocation, any key order, unknown keys ignored. Structure is
//! validated as it is walked (brackets, strings, escapes, literals, number characters),
//! so malformed input is an error, never a panic and never a silent partial read.
//! Nesting is limited to [`MAX_DEPTH`].

use crate::swar;

/// Deepest nesting accepted (exchange messages use 4).
pub const MAX_DEPTH: usize = 32;

/// What went wrong, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Input ended inside a value.
    #[error("unexpected end of JSON at byte {0}")]
    UnexpectedEnd(usize),
    /// A byte that cannot start or continue the expected token.
    #[error("unexpected byte {byte:#04x} at byte {at}")]
    UnexpectedByte {
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Bytes after the top-level value.
    #[error("trailing bytes after JSON at byte {0}")]
    Trailing(usize),
}

/// The kind of a raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string; `bytes` is its content without quotes, escapes left as they are.
    Str,
    /// A number; `bytes` is its text.
    Num,
    /// `true` or `false`; `bytes` is the literal.
    Bool,
    /// `null`.
    Null,
    /// An array; `bytes` is the whole array text including brackets.
    Array,
    /// An object; `bytes` is the whole object text including braces.
    Object,
}

/// A value as it appears in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Its bytes (see [`Kind`]).
    pub bytes: &'a [u8],
    /// Offset of `bytes` in the scanned input (for error positions).
    pub at: usize,
}

/// A cursor over one JSON text.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<u8, JsonError> {
        self.skip_ws();
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(JsonError::UnexpectedEnd(self.pos))
    }

    #[inline]
    fn expect(&mut self, want: u8) -> Result<(), JsonError> {
        let b = self.peek()?;
        if b != want {
            return Err(JsonError::UnexpectedByte {
                byte: b,
                at: self.pos,
            });
        }
        self.pos += 1;
        Ok(())
    }

    /// Checks that only whitespace is left.
    ///
    /// # Errors
    /// [`JsonError::Trailing`] otherwise.
    pub fn finish(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(JsonError::Trailing(self.pos))
        }
    }

    /// Reads a string at the cursor and returns its raw content.
    #[inline]
    fn string(&mut self) -> Result<&'a [u8], JsonError> {
        self.expect(b'"')?;
        let start = self.pos;
        let buf = self.buf;
        loop {
            // Eight bytes at a time up to the first that needs a look.
            while let Some(word) = swar::load(buf, self.pos) {
                if let Some(at) = swar::first_special(word) {
                    self.pos += at;
                    break;
                }
                self.pos += 8;
            }
            let b = *buf
                .get(self.pos)
                .ok_or(JsonError::UnexpectedEnd(self.pos))?;
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(&buf[start..self.pos - 1]);
                }
                b'\\' => {
                    let esc = *buf
                        .get(self.pos + 1)
                        .ok_or(JsonError::UnexpectedEnd(self.pos + 1))?;
                    match esc {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                        b'u' => {
                            let hex = buf
                                .get(self.pos + 2..self.pos + 6)
                                .ok_or(JsonError::UnexpectedEnd(self.pos))?;
                            if let Some(i) = hex.iter().position(|h| !h.is_ascii_hexdigit()) {
                                return Err(JsonError::UnexpectedByte {
                                    byte: hex[i],
                                    at: self.pos + 2 + i,
                                });
                            }
                            self.pos += 6;
                        }
                        _ => {
                            return Err(JsonError::UnexpectedByte {
                                byte: esc,
                                at: self.pos + 1,
                            })
                        }
                    }
                }
                0x00..=0x1f => {
                    return Err(JsonError::UnexpectedByte {
                        byte: b,
                        at: self.pos,
                    })
                }
                _ => self.pos += 1,
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<&'a [u8], JsonError> {
        let start = self.pos;
        let end = start + word.len();
        match self.buf.get(start..end) {
            Some(got) if got == word => {
                self.pos = end;
                Ok(got)
            }
            Some(_) => Err(JsonError::UnexpectedByte {
                byte: self.buf[start],
                at: start,
            }),
            None => Err(JsonError::UnexpectedEnd(self.buf.len())),
        }
    }

    fn number(&mut self) -> Result<&'a [u8], JsonError> {
        let start = self.pos;
        while let Some(&b) = self.buf.get(self.pos) {
            if !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                break;
            }
            self.pos += 1;
        }
        let text = &self.buf[start..self.pos];
        // Shape check: optional '-', then a digit; the rest was restricted to number bytes.
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        match digits.first() {
            Some(b'0'..=b'9') => Ok(text),
            Some(&b) => Err(JsonError::UnexpectedByte { byte: b, at: start }),
            None => Err(JsonError::UnexpectedEnd(self.pos)),
        }
    }

    /// Skips an array or object at the cursor, validating it, without recursion.
    fn container(&mut self) -> Result<&'a [u8], JsonError> {
        let start = self.pos;
        // The open brackets, innermost last: stack[..depth].
        let mut stack = [0u8; MAX_DEPTH];
        let mut depth = 0usize;
        loop {
            // A value is expected here.
            let b = self.peek()?;
            if b == b'[' || b == b'{' {
                if depth == MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
                stack[depth] = b;
                depth += 1;
                self.pos += 1;
                let close = if b == b'[' { b']' } else { b'}' };
                if self.peek()? != close {
                    if b == b'{' {
                        self.string()?;
                        self.expect(b':')?;
                    }
                    continue;
                }
                // An empty container: it closes right away, like a value.
                self.pos += 1;
                depth -= 1;
            } else {
                self.scalar()?;
            }
            // After a value: separators and closing brackets until another value is due.
            loop {
                if depth == 0 {
                    return Ok(&self.buf[start..self.pos]);
                }
                let top = stack[depth - 1];
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        if top == b'{' {
                            self.string()?;
                            self.expect(b':')?;
                        }
                        break;
                    }
                    b']' if top == b'[' => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    b'}' if top == b'{' => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    b => {
                        return Err(JsonError::UnexpectedByte {
                            byte: b,
                            at: self.pos,
                        })
                    }
                }
            }
        }
    }

    fn scalar(&mut self) -> Result<Raw<'a>, JsonError> {
        let b = self.peek()?;
        let at = self.pos;
        let (kind, bytes) = match b {
            b'"' => (Kind::Str, self.string()?),
            b't' => (Kind::Bool, self.literal(b"true")?),
            b'f' => (Kind::Bool, self.literal(b"false")?),
            b'n' => (Kind::Null, self.literal(b"null")?),
            b'-' | b'0'..=b'9' => (Kind::Num, self.number()?),
            _ => return Err(JsonError::UnexpectedByte { byte: b, at }),
        };
        let at = if kind == Kind::Str { at + 1 } else { at };
        Ok(Raw { kind, bytes, at })
    }

    /// Reads any value at the cursor.
    ///
    /// # Errors
    /// [`JsonError`] for malformed input.
    pub fn value(&mut self) -> Result<Raw<'a>, JsonError> {
        let b = self.peek()?;
        let at = self.pos;
        match b {
            b'[' => Ok(Raw {
                kind: Kind::Array,
                bytes: self.container()?,
                at,
            }),
            b'{' => Ok(Raw {
                kind: Kind::Object,
                bytes: self.container()?,
                at,
            }),
            _ => self.scalar(),
        }
    }

    /// Walks an object at the cursor, calling `on_field(key, value)` for every member.
    ///
    /// # Errors
    /// [`JsonError`] for malformed input, or whatever `on_field` returns.
    #[inline]
    pub fn object<E: From<JsonError>>(
        &mut self,
        mut on_field: impl FnMut(&'a [u8], Raw<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.object_in_place(|key, s| {
            let value = s.value()?;
            on_field(key, value)
        })
    }

    /// Walks an object at the cursor, calling `on_field(key, scanner)` with the cursor on each
    /// member's value; the callback must consume exactly that value (e.g. with
    /// [`Self::value`], or by walking a nested object in place).
    ///
    /// # Errors
    /// [`JsonError`] for malformed input, or whatever `on_field` returns.
    #[inline]
    pub fn object_in_place<E: From<JsonError>>(
        &mut self,
        mut on_field: impl FnMut(&'a [u8], &mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            on_field(key, self)?;
            if self.after_member(b'}')? {
                return Ok(());
            }
        }
    }

    /// After a member of an object or array: consumes `,` (false: another member follows)
    /// or `close` (true: the container ended).
    #[inline]
    fn after_member(&mut self, close: u8) -> Result<bool, JsonError> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Ok(false)
            }
            b if b == close => {
                self.pos += 1;
                Ok(true)
            }
            b => Err(JsonError::UnexpectedByte {
                byte: b,
                at: self.pos,
            }),
        }
    }

    /// The next non-space byte, without consuming it (`None` at the end).
    #[inline]
    pub fn peek_byte(&mut self) -> Option<u8> {
        self.peek().ok()
    }

    /// Walks an array at the cursor, calling `on_item(scanner)` with the cursor on each item;
    /// the callback must consume exactly one value.
    ///
    /// # Errors
    /// [`JsonError`] for malformed input, or whatever `on_item` returns.
    #[inline]
    pub fn array<E: From<JsonError>>(
        &mut self,
        mut on_item: impl FnMut(&mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            on_item(self)?;
            if self.after_member(b']')? {
                return Ok(());
            }
        }
    }

    /// Reads a string value at the cursor (raw content).
    ///
    /// # Errors
    /// [`JsonError`] when the value is not a well-formed string.
    #[inline]
    pub fn str_value(&mut self) -> Result<&'a [u8], JsonError> {
        self.string()
    }
}

/// Parses an unsigned integer JSON number (no sign, fraction or exponent).
#[inline]
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in text {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skim(text: &str) -> Result<Raw<'_>, JsonError> {
        let mut s = Scanner::new(text.as_bytes());
        let v = s.value()?;
        s.finish()?;
        Ok(v)
    }

    #[test]
    fn accepts_valid_json() {
        for ok in [
            r#"{}"#,
            r#"[]"#,
            r#"{"a":[1,2,{"b":null}],"c":"x\"y","d":-1.5e3,"e":true}"#,
            r#" [ [ ] , { } , [ [ "a" ] ] ] "#,
            r#"{"b":[["1.0","2"],["3","4"]],"a":[]}"#,
            r#""\u00e9""#,
        ] {
            assert!(skim(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_malformed_json() {
        for bad in [
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            r#"[1 2]"#,
            r#"[1,]"#,
            r#"{"a":tru}"#,
            r#"{"a":"x"#,
            r#"{"a":"\q"}"#,
            r#"{a:1}"#,
            r#"[}"#,
            r#"{"a":[1}"#,
            r#"{} x"#,
            "",
            "\"a\u{1}\"",
        ] {
            assert!(skim(bad).is_err(), "{bad:?} was accepted");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(skim(&deep), Err(JsonError::TooDeep));
    }

    #[test]
    fn long_strings_with_escapes_at_any_offset() {
        for pad in 0..20 {
            let text = format!("\"{}\\\"{}\"", "x".repeat(pad), "y".repeat(pad));
            let raw = skim(&text).unwrap();
            assert_eq!(raw.bytes.len(), 2 * pad + 2, "{text}");
            assert!(skim(&format!("\"{}", "x".repeat(pad))).is_err());
            let ctrl = format!("\"{}\u{1f}{}\"", "x".repeat(pad), "y".repeat(pad));
            assert!(skim(&ctrl).is_err(), "{ctrl:?}");
        }
    }

    #[test]
    fn walks_objects_in_any_order() {
        let mut s = Scanner::new(br#"{"q":"1.5","p":"2","x":{"y":[1]}}"#);
        let mut seen = Vec::new();
        s.object::<JsonError>(|k, v| {
            seen.push((k.to_vec(), v.kind));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2], (b"x".to_vec(), Kind::Object));
    }
}
