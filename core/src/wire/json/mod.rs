//! Canonical JSON and bounded parsing.
//!
//! SOCP v1.3 signs "the payload serialized as JSON with sorted keys and no
//! whitespace variation" (socp-1.3.md §1.2). Every Python peer computes that
//! as `json.dumps(payload, sort_keys=True, separators=(",", ":"))` with the
//! default `ensure_ascii=True`, so [`canonical`] reproduces exactly those
//! bytes: keys sorted by code point at every depth, no whitespace, all
//! non-ASCII and DEL escaped as `\uXXXX` (astral characters as surrogate
//! pairs), integers of any size as written, floats as Python's `repr`.
//!
//! Numbers keep their literal text (serde_json's `arbitrary_precision`), so
//! an integer such as `2**70` survives a receive–forward hop unchanged. A
//! literal with `.`, `e` or `E` is a float to Python and is re-printed as
//! one (`1E2` becomes `100.0`). SOCP payloads
//! carry no floats in practice (§2 row 5); this matters only for signing
//! what an odd peer sent.
//!
//! [`parse`] differs from Python's `json.loads` only at the edges: it rejects
//! `NaN`/`Infinity` literals, float literals that overflow a double (`1e400`,
//! which Python reads as infinity and could only re-print as the non-JSON
//! `Infinity`), lone UTF-16 surrogates and serde_json's private marker keys,
//! which Python accepts, and accepts integers longer than
//! Python's 4300-digit limit, which Python rejects.

mod canonical;
mod float;
mod scan;

use serde_json::{Map, Value};

use super::error::{DecodeError, JsonErrorKind};
use super::limits::Limits;

pub(crate) use canonical::{write_map, write_string};

/// The canonical JSON encoding of `value`: byte for byte what Python's
/// `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`
/// produces. The output is ASCII.
#[must_use]
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    canonical_into(value, &mut out);
    out
}

/// Appends the canonical JSON encoding of `value` to `out` (see [`canonical`]).
pub fn canonical_into(value: &Value, out: &mut Vec<u8>) {
    canonical::write_value(value, out);
}

/// The canonical JSON encoding of an object, such as an envelope's payload:
/// the bytes a SOCP transport `sig` covers (§1.2).
#[must_use]
pub fn canonical_map(map: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    canonical::write_map(map, &mut out);
    out
}

/// The canonical JSON encoding of `value` as a `String` (it is always ASCII).
#[must_use]
pub fn canonical_string(value: &Value) -> String {
    ascii_to_string(canonical(value))
}

/// Converts writer output, which is ASCII by construction, to a `String`.
pub(crate) fn ascii_to_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

/// Parses one JSON text received from a peer, within `limits`.
///
/// In order, each step linear and the first two allocation-free:
/// 1. the length is checked against [`Limits::max_frame_bytes`]
///    ([`DecodeError::TooLarge`]) before anything is read;
/// 2. the bytes must be UTF-8 ([`DecodeError::NotUtf8`]), nest at most
///    [`Limits::max_json_depth`] deep ([`DecodeError::TooDeep`]) and contain
///    no serde_json marker key ([`DecodeError::ReservedKey`]);
/// 3. serde_json builds the value ([`DecodeError::InvalidJson`]).
///
/// Whitespace around the value is allowed, so a newline-terminated frame
/// (`\n` or `\r\n`, which some peers send: socp-1.3.md §1.4) parses. When
/// an object repeats a key the last one wins, as in Python.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    if bytes.len() > limits.max_frame_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: limits.max_frame_bytes,
        });
    }
    let text = core::str::from_utf8(bytes).map_err(|err| DecodeError::NotUtf8 {
        valid_up_to: err.valid_up_to(),
    })?;
    scan::prescan(bytes, limits.max_json_depth)?;
    let value: Value = serde_json::from_str(text).map_err(|err| DecodeError::InvalidJson {
        line: err.line(),
        column: err.column(),
        reason: JsonErrorKind::of(&err),
    })?;
    check_numbers(&value)?;
    Ok(value)
}

/// Refuses float literals that overflow a double: they would re-encode as
/// `Infinity` (as Python writes it), which no JSON parser reads back.
fn check_numbers(value: &Value) -> Result<(), DecodeError> {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Number(n) => {
                let literal = n.to_string();
                let is_float = literal.contains(['.', 'e', 'E']);
                if is_float && !literal.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(DecodeError::NumberOutOfRange);
                }
            }
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(map.values()),
            Value::Null | Value::Bool(_) | Value::String(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_case_1() {
        let value = parse(
            r#"{"b":1,"a":{"d":2,"c":"é"}}"#.as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            canonical_string(&value),
            r#"{"a":{"c":"\u00e9","d":2},"b":1}"#
        );
    }

    #[test]
    fn size_is_checked_before_anything_else() {
        let limits = Limits {
            max_frame_bytes: 4,
            ..Limits::default()
        };
        assert_eq!(
            parse(b"\xff\xff\xff\xff\xff", &limits),
            Err(DecodeError::TooLarge { len: 5, max: 4 })
        );
        assert!(parse(b"{}\r\n", &limits).is_ok());
    }

    #[test]
    fn overflowing_floats_are_rejected_but_big_integers_are_not() {
        let limits = Limits::default();
        for bad in [
            &br#"{"a":1e400}"#[..],
            br#"{"a":[-1.5e309]}"#,
            br#"{"a":{"b":1E999}}"#,
        ] {
            assert_eq!(parse(bad, &limits), Err(DecodeError::NumberOutOfRange));
        }
        assert!(
            parse(
                br#"{"a":1e308,"b":123456789012345678901234567890,"c":1e-400}"#,
                &limits
            )
            .is_ok()
        );
    }

    #[test]
    fn reserved_marker_key_is_rejected() {
        // Without the pre-scan serde_json would turn this object into the number 1.
        assert_eq!(
            parse(
                br#"{"a":{"$serde_json::private::Number":"1"}}"#,
                &Limits::default()
            ),
            Err(DecodeError::ReservedKey)
        );
    }
}
