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
