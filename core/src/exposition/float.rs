//! Numbers as Prometheus parses them: Go's `strconv.ParseFloat` with the exposition
//! parsers' extra refusals, and the canonical NaN.

/// The bits Prometheus stores for a scraped `NaN` (Go's `math.NaN()`); Rust's own NaN
/// has different bits (`0x7FF8000000000000`).
pub const NORMAL_NAN: u64 = 0x7FF8_0000_0000_0001;

/// The stale marker (`value.StaleNaN`): a signalling NaN, compared by bits only.
pub const STALE_NAN: u64 = 0x7FF0_0000_0000_0002;

/// Why a number did not parse (Prometheus's wording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// `p`, `P` or `_` anywhere: the exposition parsers refuse hex-float exponents and
    /// digit separators before Go's parser sees them.
    Unsupported,
    /// Go's `strconv.ParseFloat: parsing "...": invalid syntax`.
    Syntax,
    /// Go's `value out of range` (a finite literal beyond `f64`).
    Range,
}

impl NumberError {
    /// The message Prometheus gives for `text`.
    pub fn message(&self, text: &str) -> String {
        match self {
            NumberError::Unsupported => "unsupported character in float".to_owned(),
            NumberError::Syntax => format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                crate::goquote::quote(text)
            ),
            NumberError::Range => format!(
                "strconv.ParseFloat: parsing {}: value out of range",
                crate::goquote::quote(text)
            ),
        }
    }
}

/// Go's `ParseFloat(s, 64)` after the exposition parsers' check for `p`, `P` and `_`.
///
/// Go and Rust agree on decimal syntax (`1`, `-1.5e3`, `.5`, `5.`, `+1`) and on correct
/// rounding; they differ on the special words and on overflow, handled here: Go takes
/// `inf`/`infinity` with an optional sign and `nan` without one (all case-insensitive),
/// and reports a finite literal that overflows as out of range. A NaN comes back with
/// Prometheus's bits ([`NORMAL_NAN`]).
pub fn parse_go_float(s: &[u8]) -> Result<f64, NumberError> {
    if let Some(v) = fast_decimal(s) {
        return Ok(v);
    }
    if s.iter().any(|&b| matches!(b, b'p' | b'P' | b'_')) {
        return Err(NumberError::Unsupported);
    }
    let unsigned = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    let first = unsigned.first().copied().unwrap_or(0);
    if first.eq_ignore_ascii_case(&b'n') {
        // `nan` only without a sign.
        return if unsigned.len() == s.len() && s.eq_ignore_ascii_case(b"nan") {
            Ok(f64::from_bits(NORMAL_NAN))
        } else {
            Err(NumberError::Syntax)
        };
    }
    if first.eq_ignore_ascii_case(&b'i') {
        let word = unsigned;
        if word.eq_ignore_ascii_case(b"inf") || word.eq_ignore_ascii_case(b"infinity") {
            return Ok(if s[0] == b'-' {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        return Err(NumberError::Syntax);
    }
    // Only digits, signs, a point and an exponent remain legal; Rust's parser would take
    // words Go does not (it never sees them here: the first byte is not a letter).
    if !s
        .iter()
        .all(|&b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return Err(NumberError::Syntax);
    }
    let text = std::str::from_utf8(s).map_err(|_| NumberError::Syntax)?;
    let v: f64 = text.parse().map_err(|_| NumberError::Syntax)?;
    if v.is_infinite() {
        return Err(NumberError::Range);
    }
    Ok(v)
}

/// Go's `strconv.ParseFloat(s, 64)` itself, without the exposition parsers' refusals:
/// decimal literals as [`parse_go_float`] reads them, and hexadecimal ones
/// (`0x1p-3`, `0x1.8P+1`, `_` between digits) as Go reads them. `None` where Go
/// reports an error (syntax or range).
pub fn parse_strconv_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (neg, unsigned) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if unsigned.len() > 2 && unsigned[0] == b'0' && matches!(unsigned[1], b'x' | b'X') {
        let v = parse_hex_float(&unsigned[2..])?;
        return Some(if neg { -v } else { v });
    }
    parse_go_float(b).ok()
}

/// The part of a hexadecimal float after `0x`: hex digits with at most one point, `_`
/// only between digits (or right after the prefix), and the `p` exponent Go requires.
fn parse_hex_float(s: &[u8]) -> Option<f64> {
    let p = s.iter().position(|&c| matches!(c, b'p' | b'P'))?;
    let (mant, exp) = (&s[..p], &s[p + 1..]);
    // Underscores: each must sit between two digits, or after the `0x` prefix.
    for (i, &c) in mant.iter().enumerate() {
        if c == b'_' {
            let before = if i == 0 {
                true
            } else {
                mant[i - 1].is_ascii_hexdigit()
            };
            let after = mant.get(i + 1).is_some_and(u8::is_ascii_hexdigit);
            if !before || !after {
                return None;
            }
        }
    }
    let mut m: u128 = 0;
    let mut sticky = false;
    let mut scale: i64 = 0; // binary exponent adjustment
    let mut digits = 0;
    let mut point = false;
    for &c in mant {
        match c {
            b'_' => {}
            b'.' if !point => point = true,
            c if c.is_ascii_hexdigit() => {
                digits += 1;
                let d = (c as char).to_digit(16).unwrap_or(0) as u128;
                if m >> 120 == 0 {
                    m = (m << 4) | d;
                    if point {
                        scale -= 4;
                    }
                } else {
                    sticky |= d != 0;
                    if !point {
                        scale += 4;
                    }
                }
            }
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let (eneg, edigits) = match exp.first() {
        Some(b'-') => (true, &exp[1..]),
        Some(b'+') => (false, &exp[1..]),
        _ => (false, exp),
    };
    if edigits.is_empty() || !edigits.iter().all(|c| c.is_ascii_digit() || *c == b'_') {
        return None;
    }
    let mut e: i64 = 0;
    for &c in edigits {
        if c != b'_' {
            e = (e * 10 + i64::from(c - b'0')).min(100_000);
        }
    }
    let e = if eneg { -e } else { e } + scale;
    if m == 0 {
        return Some(0.0);
    }
    // Keep a sticky bit below the significant ones so the rounding to 53 bits is right.
    let m = m | u128::from(sticky);
    // m * 2^e, rounded once: shift the mantissa to 64 significant bits first.
    let lz = m.leading_zeros() as i64;
    let shift = 128 - lz - 64;
    let (top, e) = if shift > 0 {
        let lost = m & ((1u128 << shift) - 1);
        ((m >> shift) as u64 | u64::from(lost != 0), e + shift)
    } else {
        (m as u64, e)
    };
    // `top as f64` rounds to nearest even (the sticky bit keeps ties honest); scaling by
    // a power of two is then exact unless the result leaves the normal range.
    let v = top as f64;
    let v = scale_pow2(v, e);
    if v.is_infinite() {
        return None; // Go: value out of range.
    }
    Some(v)
}

fn scale_pow2(mut v: f64, mut e: i64) -> f64 {
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
    }
    v * 2f64.powi(e as i32)
}

pub use crate::goquote::format_go_float;

/// Prometheus's `labels.FormatOpenMetricsFloat`: [`format_go_float`] with `.0`
/// appended when the text has neither a point nor an exponent; zero of either sign is
/// `0.0`.
pub fn format_openmetrics_float(v: f64) -> String {
    if v == 0.0 {
        return "0.0".into();
    }
    let mut s = format_go_float(v);
    if v.is_finite() && !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    s
}

/// Powers of ten exactly representable as `f64`.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The common case, without the general parser: an optional minus, at most 15 digits with
/// at most one point, no exponent. Both the digits (below 2^53) and the power of ten are
/// exact in `f64`, so one division rounds correctly (Clinger's fast path): the result is
/// the same as the general parser's.
fn fast_decimal(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut m: u64 = 0;
    let mut n = 0usize;
    let mut frac: Option<usize> = None;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(b - b'0');
                n += 1;
            }
            b'.' if frac.is_none() => frac = Some(digits.len() - i - 1),
            _ => return None,
        }
    }
    if n == 0 || n > 15 {
        return None;
    }
    let v = m as f64 / POW10[frac.unwrap_or(0)];
    Some(if neg { -v } else { v })
}

/// Go's `strconv.ParseInt(s, 10, 64)` for a text-format timestamp (an optional sign and
/// digits).
pub fn parse_go_int(s: &[u8]) -> Result<i64, String> {
    let text = String::from_utf8_lossy(s);
    let digits = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            crate::goquote::quote(&text)
        ));
    }
    text.parse::<i64>().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            crate::goquote::quote(&text)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> f64 {
        parse_go_float(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn go_accepts() {
        assert_eq!(ok("1"), 1.0);
        assert_eq!(ok("+1"), 1.0);
        assert_eq!(ok(".5"), 0.5);
        assert_eq!(ok("5."), 5.0);
        assert_eq!(ok("1e3"), 1000.0);
        assert_eq!(ok("-1.5E-3"), -0.0015);
        assert_eq!(ok("0000000001.2e-1"), 0.12);
        assert_eq!(ok("9223372036854775808"), 9.223372036854776e18);
        assert_eq!(ok("+Inf"), f64::INFINITY);
        assert_eq!(ok("-inf"), f64::NEG_INFINITY);
        assert_eq!(ok("Infinity"), f64::INFINITY);
        assert_eq!(ok("NaN").to_bits(), NORMAL_NAN);
        assert_eq!(ok("nan").to_bits(), NORMAL_NAN);
        assert_eq!(ok("1e-400"), 0.0);
    }

    #[test]
    fn go_refuses() {
        use NumberError::*;
        for (s, e) in [
            ("0x1p-3", Unsupported),
            ("1_000", Unsupported),
            ("0x10", Syntax),
            ("0X1", Syntax),
            ("0b1", Syntax),
            ("0o1", Syntax),
            ("+NaN", Syntax),
            ("-nan", Syntax),
            ("infin", Syntax),
            ("", Syntax),
            ("1\r", Syntax),
            ("1e400", Range),
            ("a", Syntax),
            (".", Syntax),
        ] {
            assert_eq!(parse_go_float(s.as_bytes()), Err(e), "{s:?}");
        }
        assert_eq!(
            NumberError::Syntax.message("0x10"),
            r#"strconv.ParseFloat: parsing "0x10": invalid syntax"#
        );
    }

    proptest::proptest! {
        /// The fast path agrees with the general parser bit for bit.
        #[test]
        fn fast_path_equals_the_general_parser(m in 0u64..1_000_000_000_000_000, point in 0usize..17, neg in proptest::bool::ANY) {
            let digits = m.to_string();
            let text = if point < digits.len() {
                format!("{}{}.{}", if neg { "-" } else { "" }, &digits[..digits.len() - point], &digits[digits.len() - point..])
            } else {
                format!("{}{digits}", if neg { "-" } else { "" })
            };
            let want: f64 = text.parse().unwrap();
            let got = parse_go_float(text.as_bytes()).unwrap();
            proptest::prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", text);
        }
    }

    #[test]
    fn strconv_reads_hex_floats_as_go_does() {
        for (s, want) in [
            ("0x1p-3", Some(0.125)),
            ("0x1P-3", Some(0.125)),
            ("-0X1.8p1", Some(-3.0)),
            ("0x_1p0", Some(1.0)),
            ("0x1_0p0", Some(16.0)),
            ("0x.8p1", Some(1.0)),
            ("0x1p", None),
            ("0x1", None),
            ("0x1__0p0", None),
            ("0x1_p0", None),
            ("0xp1", None),
            ("0x1p99999", None),
            ("0x1p-99999", Some(0.0)),
            ("1_000", None),
            ("1", Some(1.0)),
            ("+Inf", Some(f64::INFINITY)),
        ] {
            assert_eq!(parse_strconv_float(s), want, "{s}");
        }
        // Rounding of a long mantissa: 2^53 + 1 is a tie, rounded to even.
        assert_eq!(
            parse_strconv_float("0x20000000000001p0"),
            Some(9007199254740992.0)
        );
        assert_eq!(
            parse_strconv_float("0x20000000000003p0"),
            Some(9007199254740996.0)
        );
        // Past 120 bits the digits only say whether anything was cut: just above a tie
        // rounds up.
        let long = format!("0x20000000000001{}1p0", "0".repeat(19));
        assert_eq!(
            parse_strconv_float(&long),
            Some((2f64.powi(53) + 2.0) * 2f64.powi(80))
        );
        let tie = format!("0x20000000000001{}p0", "0".repeat(20));
        assert_eq!(parse_strconv_float(&tie), Some(2f64.powi(133)));
    }

    #[test]
    fn openmetrics_floats_as_prometheus_formats_them() {
        for (v, want) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (-1.0, "-1.0"),
            (0.125, "0.125"),
            (10.0, "10.0"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (2.5e-5, "2.5e-05"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(format_openmetrics_float(v), want, "{v}");
        }
    }

    #[test]
    fn ints() {
        assert_eq!(parse_go_int(b"1000"), Ok(1000));
        assert_eq!(parse_go_int(b"-1000"), Ok(-1000));
        assert_eq!(
            parse_go_int(b"99999999999999999999").unwrap_err(),
            r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#
        );
        assert!(parse_go_int(b"1.5").is_err());
    }
}
