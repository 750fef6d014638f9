//! Python's `repr(float)`, which `json.dumps` uses for floats.

/// Appends `x` formatted exactly as Python's `json.dumps` formats a float.
///
/// Python prints the shortest digit string that reads back as the same
/// double (as Rust's `{:e}` does), in fixed notation when the decimal
/// exponent `e` of `d.ddd × 10^e` is in `-4..=15` (always with a fractional
/// part: `1.0`, `100000.0`), otherwise as `d.ddde±XX` with at least two
/// exponent digits (`1e+16`, `1e-05`). Non-finite values, which only arise
/// from literals that overflow a double, print as `Infinity`, `-Infinity`
/// and `NaN`, as Python's `json.dumps` does by default.
pub(crate) fn write_python_float(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_sign_negative() {
        out.push(b'-');
    }
    if x.is_infinite() {
        out.extend_from_slice(b"Infinity");
        return;
    }
    if x == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    // `{:e}` of a finite non-zero double: `D[.DDD]e[-]N`, shortest round-trip digits.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let (first, rest) = digits
        .split_first()
        .map_or((b'0', &[][..]), |(f, r)| (*f, r));

    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(core::iter::repeat_n(b'0', exp.unsigned_abs() as usize - 1));
            out.extend_from_slice(&digits);
        } else {
            // exp + 1 digits before the point, padded with zeros.
            let int_len = exp.unsigned_abs() as usize + 1;
            out.extend(digits.iter().take(int_len));
            out.extend(core::iter::repeat_n(
                b'0',
                int_len.saturating_sub(digits.len()),
            ));
            out.push(b'.');
            let frac = digits.get(int_len..).unwrap_or(&[]);
            if frac.is_empty() {
                out.push(b'0');
            } else {
                out.extend_from_slice(frac);
            }
        }
    } else {
        out.push(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let magnitude = exp.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(magnitude.to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(x: f64) -> String {
        let mut out = Vec::new();
        write_python_float(x, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_notation_always_has_a_fraction() {
        assert_eq!(py(1.0), "1.0");
        assert_eq!(py(100000.0), "100000.0");
        assert_eq!(py(0.5), "0.5");
        assert_eq!(py(-2.25), "-2.25");
        assert_eq!(py(1e15), "1000000000000000.0");
        assert_eq!(py(9999999999999998.0), "9999999999999998.0");
        assert_eq!(py(123456.789), "123456.789");
        assert_eq!(py(0.1), "0.1");
        assert_eq!(py(1.0 / 3.0), "0.3333333333333333");
    }

    #[test]
    fn regime_boundaries() {
        assert_eq!(py(1e16), "1e+16");
        assert_eq!(py(1.5e16), "1.5e+16");
        assert_eq!(py(0.0001), "0.0001");
        assert_eq!(py(0.00012), "0.00012");
        assert_eq!(py(0.00001), "1e-05");
        assert_eq!(py(0.000099), "9.9e-05");
        assert_eq!(py(123456789012345680.0), "1.2345678901234568e+17");
    }

    #[test]
    fn exponents_have_sign_and_two_digits() {
        assert_eq!(py(1e22), "1e+22");
        assert_eq!(py(1e100), "1e+100");
        assert_eq!(py(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(py(5e-324), "5e-324");
        assert_eq!(py(2.2250738585072014e-308), "2.2250738585072014e-308");
        assert_eq!(py(-1e-7), "-1e-07");
    }

    #[test]
    fn zeros_and_non_finite() {
        assert_eq!(py(0.0), "0.0");
        assert_eq!(py(-0.0), "-0.0");
        assert_eq!(py(f64::INFINITY), "Infinity");
        assert_eq!(py(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(py(f64::NAN), "NaN");
    }
}
