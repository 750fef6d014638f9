//! A linear pre-scan of a JSON text, run before any value is built.
//!
//! It tracks only what it must: whether it is inside a string, the current
//! nesting depth, and the first bytes of each string's decoded text. It does
//! not validate JSON (serde_json does that next); on invalid JSON its answer
//! does not matter because parsing fails anyway.

use crate::wire::error::DecodeError;

/// serde_json's private marker keys. Under `arbitrary_precision` (and
/// `raw_value`) an object whose first key is one of these is parsed as a
/// number (or raw value) instead of an object, so a peer could make us see a
/// different payload than the one it signed.
const RESERVED: [&[u8]; 2] = [
    b"$serde_json::private::Number",
    b"$serde_json::private::RawValue",
];
/// Long enough to hold the longest reserved key.
const CAPTURE: usize = 32;

#[derive(Clone, Copy)]
enum State {
    /// Between tokens.
    Outside,
    /// Inside a string, after an ordinary character.
    InString,
    /// Just after a backslash inside a string.
    Escape,
    /// Inside `\uXXXX`: hex digits seen so far and their value.
    Unicode { seen: u8, value: u32 },
}

/// The decoded start of the current string, to compare with [`RESERVED`].
struct Capture {
    buf: [u8; CAPTURE],
    len: usize,
    overflow: bool,
}

impl Capture {
    fn new() -> Self {
        Self {
            buf: [0; CAPTURE],
            len: 0,
            overflow: false,
        }
    }

    fn reset(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    fn push(&mut self, byte: u8) {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = byte;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    fn is_reserved(&self) -> bool {
        !self.overflow
            && self
                .buf
                .get(..self.len)
                .is_some_and(|text| RESERVED.contains(&text))
    }
}

/// Checks that arrays and objects nest at most `max_depth` deep and that no
/// string equals a reserved serde_json marker key, in one pass without
/// allocating.
pub(crate) fn prescan(text: &[u8], max_depth: usize) -> Result<(), DecodeError> {
    let mut state = State::Outside;
    let mut depth = 0usize;
    let mut capture = Capture::new();
    for &byte in text {
        state = match state {
            State::Outside => match byte {
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max_depth {
                        return Err(DecodeError::TooDeep { max: max_depth });
                    }
                    State::Outside
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    State::Outside
                }
                b'"' => {
                    capture.reset();
                    State::InString
                }
                _ => State::Outside,
            },
            State::InString => match byte {
                b'"' => {
                    if capture.is_reserved() {
                        return Err(DecodeError::ReservedKey);
                    }
                    State::Outside
                }
                b'\\' => State::Escape,
                _ => {
                    capture.push(byte);
                    State::InString
                }
            },
            State::Escape => {
                if byte == b'u' {
                    State::Unicode { seen: 0, value: 0 }
                } else {
                    capture.push(match byte {
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        // `\"`, `\\`, `\/` stand for themselves.
                        other => other,
                    });
                    State::InString
                }
            }
            State::Unicode { seen, value } => {
                let digit = char::from(byte).to_digit(16).unwrap_or(0);
                let value = (value << 4) | digit;
                if seen < 3 {
                    State::Unicode {
                        seen: seen + 1,
                        value,
                    }
                } else {
                    // Only ASCII can match a reserved key; anything else
                    // becomes a byte no key contains.
                    capture.push(
                        u8::try_from(value)
                            .ok()
                            .filter(u8::is_ascii)
                            .unwrap_or(0xff),
                    );
                    State::InString
                }
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_outside_strings() {
        assert!(prescan(br#"{"a":[{"b":1}]}"#, 3).is_ok());
        assert_eq!(
            prescan(br#"{"a":[{"b":1}]}"#, 2),
            Err(DecodeError::TooDeep { max: 2 })
        );
        // Brackets inside strings, also after escaped quotes, do not count.
        assert!(prescan(br#"{"a":"[[[[\"{{{{"}"#, 1).is_ok());
        assert!(prescan(br#"{"a\\":"[[["}"#, 1).is_ok());
        assert!(prescan(b"[[]]", 2).is_ok());
        assert!(prescan(b"[[[]]]", 2).is_err());
        assert!(prescan(b"1", 0).is_ok());
        assert!(prescan(b"[]", 0).is_err());
    }

    #[test]
    fn reserved_keys_are_found_even_when_escaped() {
        for text in [
            r#"{"$serde_json::private::Number":"1"}"#,
            r#"{"\u0024serde_json::private::Number":"1"}"#,
            r#"{"\u0024serde_json::private::\u004eumber":"1"}"#,
            r#"{"$serde_json::private::RawValue":"1"}"#,
        ] {
            assert_eq!(
                prescan(text.as_bytes(), 8),
                Err(DecodeError::ReservedKey),
                "{text}"
            );
        }
        for text in [
            r#"{"$serde_json::private::Numbe":"1"}"#,
            r#"{"$serde_json::private::Numberx":"1"}"#,
            r#"{"x$serde_json::private::Number":"1"}"#,
            r#"{"\u1024serde_json::private::Number":"1"}"#,
        ] {
            assert!(prescan(text.as_bytes(), 8).is_ok(), "{text}");
        }
    }
}
