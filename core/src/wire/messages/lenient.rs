//! Liberal readers for integer fields: a JSON integer, or a string of decimal
//! digits (SOCP's type tables quote `"INT"`, and a peer may follow that).
//! Floats such as `5.0` are refused. We always send integers.
//!
//! These go through `serde_json::Value` rather than a custom visitor, because
//! under `arbitrary_precision` numbers reach a visitor as a private map.

use serde::de::{Deserialize, Deserializer, Error};
use serde_json::Value;

const EXPECTED: &str = "expected a non-negative integer or a string of decimal digits";

/// Reads a non-negative integer from a JSON integer or a decimal-digit string.
pub(crate) fn value_to_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => digits_to_u64(text),
        _ => None,
    }
}

/// Parses a non-empty string of ASCII decimal digits that fits in a `u64`.
pub(crate) fn digits_to_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `deserialize_with` for a required `u64`.
pub(crate) fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    value_to_u64(&value).ok_or_else(|| D::Error::custom(EXPECTED))
}

/// `deserialize_with` for an optional `u64`; `null` is `None`.
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => value_to_u64(&value)
            .map(Some)
            .ok_or_else(|| D::Error::custom(EXPECTED)),
    }
}

/// `deserialize_with` for a TCP port.
pub(crate) fn port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let value = Value::deserialize(deserializer)?;
    value_to_u64(&value)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| D::Error::custom("expected a port number (0 to 65535)"))
}

/// `deserialize_with` for an optional TCP port; `null` is `None`.
pub(crate) fn opt_port<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u16>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => value_to_u64(&value)
            .and_then(|n| u16::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a port number (0 to 65535)")),
    }
}
