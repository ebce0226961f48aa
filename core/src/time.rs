//! The core's own time types. The core never reads a clock: the shell reads one once per
//! wake-up and passes it in as a [`Now`].
//!
//! * [`Instant`] — monotonic nanoseconds since an arbitrary origin chosen by the shell;
//!   every timer of the core is an `Instant`.
//! * [`UnixNanos`] — wall-clock nanoseconds since the Unix epoch; sample timestamps and
//!   the scrape phase grid (which Prometheus anchors in wall time) use it.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A monotonic point in time, in nanoseconds since the shell's origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Nanoseconds since the origin.
    pub fn as_nanos(self) -> u64 {
        self.0
    }
}

fn nanos(d: Duration) -> u64 {
    // Durations in the core come from configuration (at most years), far below u64 ns.
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(nanos(d)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// A wall-clock time: nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixNanos(pub i64);

impl UnixNanos {
    /// Milliseconds since the epoch (the resolution of stored sample timestamps).
    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// RFC 3339 with nanoseconds trimmed as Go's `time.RFC3339Nano` does.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let frac = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut s = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
        if frac != 0 {
            let digits = format!("{frac:09}");
            s.push('.');
            s.push_str(digits.trim_end_matches('0'));
        }
        s.push('Z');
        s
    }
}

impl UnixNanos {
    /// An HTTP `Date` header's time (RFC 9110's IMF-fixdate, `Sun, 06 Nov 1994
    /// 08:49:37 GMT`, the form servers send); `None` for anything else.
    pub(crate) fn from_http_date(s: &str) -> Option<UnixNanos> {
        let b = s.trim().as_bytes();
        if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = std::str::from_utf8(&b[r]).ok()?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        const MONTHS: [&[u8]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let m = MONTHS.iter().position(|m| *m == &b[8..11])? as i64 + 1;
        let (d, y) = (num(5..7)?, num(12..16)?);
        let (hh, mm, ss) = (num(17..19)?, num(20..22)?, num(23..25)?);
        if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
            return None;
        }
        if !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss;
        Some(UnixNanos(secs.checked_mul(1_000_000_000)?))
    }

    /// The time to the second, as Go formats `2006-01-02T15:04:05` (UTC, no zone).
    pub(crate) fn to_datetime_secs(self) -> String {
        let t = UnixNanos(self.0.div_euclid(1_000_000_000) * 1_000_000_000).to_rfc3339();
        t.trim_end_matches('Z').to_owned()
    }
}

/// Howard Hinnant's `days_from_civil`: (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Add<Duration> for UnixNanos {
    type Output = UnixNanos;
    fn add(self, d: Duration) -> UnixNanos {
        UnixNanos(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }
}

/// The time of one wake-up, read once by the shell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Now {
    /// Monotonic time, for timers.
    pub mono: Instant,
    /// Wall-clock time, for timestamps and the scrape phase grid.
    pub wall: UnixNanos,
}

impl Now {
    /// A `Now` from both readings.
    pub fn new(mono: Instant, wall: UnixNanos) -> Now {
        Now { mono, wall }
    }

    /// This time moved forward by `d` on both clocks.
    pub fn after(self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            wall: self.wall + d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = UnixNanos::from_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(t, UnixNanos(784_111_777_000_000_000));
        assert_eq!(t.to_datetime_secs(), "1994-11-06T08:49:37");
        let t = UnixNanos::from_http_date("Tue, 29 Feb 2028 23:59:59 GMT").expect("leap");
        assert_eq!(t.to_rfc3339(), "2028-02-29T23:59:59Z");
        assert_eq!(
            UnixNanos(1_700_000_000_999_999_999).to_datetime_secs(),
            "2023-11-14T22:13:20"
        );
        for bad in [
            "",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Xyz 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT ",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(UnixNanos::from_http_date(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn http_dates_round_trip(secs in 0i64..9_000_000_000) {
            let t = UnixNanos(secs * 1_000_000_000);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            proptest::prop_assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            const M: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            let text = format!("Xyz, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT", M[m as usize - 1], sod / 3600, sod / 60 % 60, sod % 60);
            proptest::prop_assert_eq!(UnixNanos::from_http_date(&text), Some(t));
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(UnixNanos(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UnixNanos(1_700_000_000_123_000_000).to_rfc3339(),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            UnixNanos(951_782_400_000_000_001).to_rfc3339(),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Instant(5) + Duration::from_nanos(10);
        assert_eq!(t, Instant(15));
        assert_eq!(Instant(3) - Instant(10), Duration::ZERO);
        assert_eq!(
            Instant(u64::MAX) + Duration::from_secs(1),
            Instant(u64::MAX)
        );
    }
}
