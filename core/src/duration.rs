//! Prometheus durations (`model.Duration`): `1y2w3d4h5m6s7ms`, parsed and printed
//! exactly as Prometheus does.
//!
//! Grammar: `0`, or one or more `<integer><unit>` pairs with units from
//! `y w d h m s ms`, each at most once and in that order. `y` is 365 days, `w` 7 days.
//! No fractions, signs or spaces. The value is kept in nanoseconds (as Go's
//! `time.Duration`) and is at most `i64::MAX` ns.

use std::fmt;

/// A non-negative Prometheus duration, stored in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(u64);

const MS: u64 = 1_000_000;
const SEC: u64 = 1000 * MS;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
const YEAR: u64 = 365 * DAY;
const MAX_NANOS: u64 = i64::MAX as u64;

/// Why a duration string was rejected. `Display` gives Prometheus's 3.x text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// The empty string.
    Empty,
    /// Malformed: missing number or unit, units out of order or repeated.
    NotValid(String),
    /// A unit other than `y w d h m s ms`.
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration string.
        duration: String,
    },
    /// Longer than Go's `time.Duration` can hold (about 292 years).
    OutOfRange,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("empty duration string"),
            DurationError::NotValid(s) => {
                write!(
                    f,
                    "not a valid duration string: {}",
                    crate::goquote::quote(s)
                )
            }
            DurationError::UnknownUnit { unit, duration } => write!(
                f,
                "unknown unit {} in duration {}",
                crate::goquote::quote(unit),
                crate::goquote::quote(duration)
            ),
            DurationError::OutOfRange => f.write_str("duration out of range"),
        }
    }
}

impl std::error::Error for DurationError {}

fn unit(u: &str) -> Option<(u8, u64)> {
    Some(match u {
        "y" => (1, YEAR),
        "w" => (2, WEEK),
        "d" => (3, DAY),
        "h" => (4, HOUR),
        "m" => (5, MIN),
        "s" => (6, SEC),
        "ms" => (7, MS),
        _ => return None,
    })
}

impl PromDuration {
    /// The zero duration.
    pub const ZERO: PromDuration = PromDuration(0);

    /// A duration of `n` whole seconds.
    pub const fn from_secs(n: u64) -> PromDuration {
        PromDuration(n * SEC)
    }

    /// A duration of `n` milliseconds.
    pub const fn from_millis(n: u64) -> PromDuration {
        PromDuration(n * MS)
    }

    /// A duration of `n` nanoseconds (clamped to `i64::MAX`, Go's limit).
    pub const fn from_nanos(n: u64) -> PromDuration {
        PromDuration(if n > MAX_NANOS { MAX_NANOS } else { n })
    }

    /// Nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole milliseconds (Prometheus's resolution).
    pub const fn as_millis(self) -> u64 {
        self.0 / MS
    }

    /// Seconds as a float, as the targets API reports durations.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / SEC as f64
    }

    /// True for the zero duration.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// As a `std::time::Duration`.
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }

    /// Parses a Prometheus duration (`model.ParseDuration`).
    pub fn parse(s: &str) -> Result<PromDuration, DurationError> {
        match s {
            "0" => return Ok(PromDuration(0)),
            "" => return Err(DurationError::Empty),
            _ => {}
        }
        // Fast path for the common one-unit forms (`15s`, `1m`, `500ms`): the same checks
        // and results as the general parser.
        if let Some(d) = Self::parse_one_unit(s) {
            return d;
        }
        Self::parse_general(s)
    }

    fn parse_general(s: &str) -> Result<PromDuration, DurationError> {
        let not_valid = || DurationError::NotValid(s.to_owned());
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total: u64 = 0;
        let mut last_pos = 0u8;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(not_valid());
            }
            // Go parses with ParseUint(.., 10, 0): a number too long for u64 is "not valid".
            let v: u64 = s[start..i].parse().map_err(|_| not_valid())?;
            let ustart = i;
            while i < bytes.len() && !bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == ustart {
                return Err(not_valid());
            }
            let u = &s[ustart..i];
            let Some((pos, mult)) = unit(u) else {
                return Err(DurationError::UnknownUnit {
                    unit: u.to_owned(),
                    duration: s.to_owned(),
                });
            };
            if pos <= last_pos {
                return Err(not_valid());
            }
            last_pos = pos;
            if v > (1u64 << 63) / mult {
                return Err(DurationError::OutOfRange);
            }
            total = total
                .checked_add(v * mult)
                .ok_or(DurationError::OutOfRange)?;
            if total > MAX_NANOS {
                return Err(DurationError::OutOfRange);
            }
        }
        Ok(PromDuration(total))
    }
}

impl PromDuration {
    fn parse_one_unit(s: &str) -> Option<Result<PromDuration, DurationError>> {
        let b = s.as_bytes();
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 18 {
            return None;
        }
        let mult = match &b[digits..] {
            b"ms" => MS,
            b"s" => SEC,
            b"m" => MIN,
            b"h" => HOUR,
            b"d" => DAY,
            b"w" => WEEK,
            b"y" => YEAR,
            _ => return None,
        };
        // At most 18 digits: no overflow.
        let v = b[..digits]
            .iter()
            .fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0'));
        if v > (1u64 << 63) / mult || v * mult > MAX_NANOS {
            return Some(Err(DurationError::OutOfRange));
        }
        Some(Ok(PromDuration(v * mult)))
    }
}

impl fmt::Display for PromDuration {
    /// Prometheus's rendering (`model.Duration.String`): years and weeks only when they
    /// divide the value exactly, then days, hours, minutes, seconds and milliseconds;
    /// `0s` for zero. Sub-millisecond parts are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0 / MS;
        if ms == 0 {
            return f.write_str("0s");
        }
        let units: [(&str, u64, bool); 7] = [
            ("y", YEAR / MS, true),
            ("w", WEEK / MS, true),
            ("d", DAY / MS, false),
            ("h", HOUR / MS, false),
            ("m", MIN / MS, false),
            ("s", SEC / MS, false),
            ("ms", 1, false),
        ];
        for (name, mult, exact) in units {
            if exact && !ms.is_multiple_of(mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{name}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for PromDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PromDuration::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::common::yaml::lenient_string(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_prometheus_examples() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("0s", 0),
            ("324ms", 324 * MS),
            ("3s", 3 * SEC),
            ("5m", 5 * MIN),
            ("1h", HOUR),
            ("4d", 4 * DAY),
            ("4d1h", 4 * DAY + HOUR),
            ("14d", 14 * DAY),
            ("3w", 3 * WEEK),
            ("3w2d1h", 3 * WEEK + 2 * DAY + HOUR),
            ("10y", 10 * YEAR),
            ("1y1w1d1h1m1s1ms", YEAR + WEEK + DAY + HOUR + MIN + SEC + MS),
            ("1m30s", 90 * SEC),
            ("1s500ms", 1500 * MS),
        ];
        for (s, want) in cases {
            assert_eq!(PromDuration::parse(s), Ok(PromDuration(*want)), "{s}");
        }
    }

    #[test]
    fn formats_like_prometheus() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (MS / 2, "0s"),
            (SEC, "1s"),
            (90 * SEC, "1m30s"),
            (1500 * MS, "1s500ms"),
            (YEAR, "1y"),
            (YEAR + DAY, "366d"),
            (2 * WEEK, "2w"),
            (15 * DAY, "15d"),
            (90 * DAY, "90d"),
            (4 * DAY + HOUR, "4d1h"),
            (MIN, "1m"),
            (10 * SEC, "10s"),
        ];
        for (ns, want) in cases {
            assert_eq!(PromDuration(*ns).to_string(), *want);
        }
    }

    #[test]
    fn error_texts_match_prometheus_3() {
        let err = |s: &str| PromDuration::parse(s).unwrap_err().to_string();
        assert_eq!(err(""), "empty duration string");
        assert_eq!(
            err("2notseconds"),
            r#"unknown unit "notseconds" in duration "2notseconds""#
        );
        assert_eq!(err("1.5h"), r#"unknown unit "." in duration "1.5h""#);
        assert_eq!(err("s"), r#"not a valid duration string: "s""#);
        assert_eq!(err("1"), r#"not a valid duration string: "1""#);
        assert_eq!(err("1m1h"), r#"not a valid duration string: "1m1h""#);
        assert_eq!(err("1s1s"), r#"not a valid duration string: "1s1s""#);
        assert_eq!(err("-1s"), r#"not a valid duration string: "-1s""#);
        assert_eq!(err(" 1s"), r#"not a valid duration string: " 1s""#);
        assert_eq!(err("1h 30m"), r#"unknown unit "h " in duration "1h 30m""#);
        assert_eq!(err("1M"), r#"unknown unit "M" in duration "1M""#);
        assert_eq!(err("300y"), "duration out of range");
        assert_eq!(err("293y"), "duration out of range");
        assert!(PromDuration::parse("292y").is_ok());
        assert_eq!(
            err("99999999999999999999s"),
            r#"not a valid duration string: "99999999999999999999s""#
        );
    }

    fn valid_duration_string() -> impl Strategy<Value = String> {
        // Each unit optional, in order, integers small enough not to overflow in sum.
        let part = |max: u64| proptest::option::of(0..=max);
        (
            part(200),
            part(500),
            part(5000),
            part(100_000),
            part(1_000_000),
            part(10_000_000),
            part(100_000_000),
        )
            .prop_filter_map("at least one unit", |(y, w, d, h, m, s, ms)| {
                let mut out = String::new();
                for (v, u) in [
                    (y, "y"),
                    (w, "w"),
                    (d, "d"),
                    (h, "h"),
                    (m, "m"),
                    (s, "s"),
                    (ms, "ms"),
                ] {
                    if let Some(v) = v {
                        out.push_str(&format!("{v}{u}"));
                    }
                }
                (!out.is_empty()).then_some(out)
            })
    }

    proptest! {
        /// Every valid string parses, its rendering parses back to the same value, and the
        /// rendering is canonical (a fixed point).
        #[test]
        fn round_trip(s in valid_duration_string()) {
            if let Ok(d) = PromDuration::parse(&s) {
                let printed = d.to_string();
                let again = PromDuration::parse(&printed).unwrap();
                prop_assert_eq!(again, d);
                prop_assert_eq!(again.to_string(), printed);
            }
        }

        /// Every millisecond value renders to a string that parses back exactly.
        #[test]
        fn format_then_parse(ms in 0u64..(MAX_NANOS / MS)) {
            let d = PromDuration(ms * MS);
            prop_assert_eq!(PromDuration::parse(&d.to_string()), Ok(d));
        }

        /// The one-unit fast path agrees with the general parser.
        #[test]
        fn one_unit_fast_path_agrees(v in 0u64..1_000_000_000_000_000_000, u in prop::sample::select(vec!["ms", "s", "m", "h", "d", "w", "y"])) {
            let s = format!("{v}{u}");
            let fast = PromDuration::parse_one_unit(&s).expect("one-unit form");
            let slow = PromDuration::parse_general(&s);
            prop_assert_eq!(fast, slow);
        }

        /// Arbitrary input never panics.
        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = PromDuration::parse(&s);
        }
    }
}
