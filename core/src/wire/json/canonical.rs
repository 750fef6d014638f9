//! The canonical JSON writer: Python's
//! `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`.

use serde_json::{Map, Number, Value};

use super::float::write_python_float;

/// Appends the canonical form of `value`.
pub(crate) fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(map, out),
    }
}

/// Appends the canonical form of an object, keys sorted by code point.
///
/// The order is computed here rather than taken from `Map`, whose iteration
/// order changes if any crate in the build enables serde_json's
/// `preserve_order`. Byte order of UTF-8 is code point order, which is how
/// Python sorts `str` keys.
pub(crate) fn write_map(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

/// Appends a number as Python prints what `json.loads` made of it: a literal
/// without `.`, `e` or `E` is an int (any size, `-0` is `0`), anything else a
/// float.
pub(crate) fn write_number(number: &Number, out: &mut Vec<u8>) {
    let literal = number.as_str();
    if literal.contains(['.', 'e', 'E']) {
        match literal.parse::<f64>() {
            Ok(x) => write_python_float(x, out),
            // Not reachable for a parsed or constructed Number; keep the text.
            Err(_) => out.extend_from_slice(literal.as_bytes()),
        }
        return;
    }
    let (negative, digits) = match literal.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, literal),
    };
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        out.push(b'0');
        return;
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(digits.as_bytes());
}

/// Appends a JSON string literal with Python's `ensure_ascii=True` escapes:
/// printable ASCII (0x20..=0x7E) as is except `"` and `\`, the five short
/// escapes, and everything else (including DEL) as `\uXXXX` in lowercase
/// hex, astral characters as a UTF-16 surrogate pair.
pub(crate) fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    out.extend_from_slice(b"\\u");
                    for shift in [12u16, 8, 4, 0] {
                        let nibble = u32::from((unit >> shift) & 0xf);
                        let hex = char::from_digit(nibble, 16).unwrap_or('0');
                        out.push(hex as u8);
                    }
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> String {
        let mut out = Vec::new();
        write_string(text, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn number(literal: &str) -> String {
        let n: Number = serde_json::from_str(literal).unwrap();
        let mut out = Vec::new();
        write_number(&n, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_python() {
        assert_eq!(string("plain / text"), r#""plain / text""#);
        assert_eq!(string("q\"b\\"), r#""q\"b\\""#);
        assert_eq!(string("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(string("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        assert_eq!(string("\u{7f}"), r#""\u007f""#);
        assert_eq!(string("é"), r#""\u00e9""#);
        assert_eq!(string("\u{ffff}\u{abcd}"), r#""\uffff\uabcd""#);
        assert_eq!(string("😀"), r#""\ud83d\ude00""#);
        assert_eq!(string("\u{10ffff}"), r#""\udbff\udfff""#);
    }

    #[test]
    fn integers_keep_their_digits() {
        assert_eq!(number("0"), "0");
        assert_eq!(number("-0"), "0");
        assert_eq!(number("-12"), "-12");
        assert_eq!(number("1180591620717411303424"), "1180591620717411303424");
        assert_eq!(
            number("-1208925819614629174706176"),
            "-1208925819614629174706176"
        );
    }

    #[test]
    fn float_literals_become_python_floats() {
        assert_eq!(number("1.0"), "1.0");
        assert_eq!(number("1E2"), "100.0");
        assert_eq!(number("1e16"), "1e+16");
        assert_eq!(number("-0.0"), "-0.0");
        assert_eq!(number("0e10"), "0.0");
        assert_eq!(number("1.50"), "1.5");
        assert_eq!(number("1e400"), "Infinity");
        assert_eq!(number("-1e400"), "-Infinity");
        assert_eq!(number("1e-400"), "0.0");
        assert_eq!(number("-1e-400"), "-0.0");
    }

    #[test]
    fn keys_sort_by_code_point_at_every_depth() {
        let value: Value =
            serde_json::from_str(r#"{"b":[{"z":1,"y":2}],"a":{"é":1,"e":2,"😀":3,"\uffff":4}}"#)
                .unwrap();
        let mut out = Vec::new();
        write_value(&value, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"e":2,"\u00e9":1,"\uffff":4,"\ud83d\ude00":3},"b":[{"y":2,"z":1}]}"#
        );
    }
}
