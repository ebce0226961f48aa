//! Byte sizes with base-2 units, as Prometheus's `body_size_limit` (`units.Base2Bytes`).

use std::fmt;

/// A size in bytes, parsed from `100MB`, `1.5KiB`, `512B`, `1GB512MB` or `0`.
/// `KB` and `KiB` both mean 1024 bytes; a unit is required (except for `0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

fn unit(u: &str) -> Option<u64> {
    Some(match u {
        "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        "TB" | "TiB" => 1 << 40,
        "PB" | "PiB" => 1 << 50,
        "EB" | "EiB" => 1 << 60,
        _ => return None,
    })
}

impl ByteSize {
    /// Parses like Go's `units.ParseBase2Bytes`. Error texts are Go's, e.g.
    /// `units: unknown unit  in 100` (Go concatenates the empty unit between two spaces).
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let orig = s;
        let invalid = || format!("units: invalid {orig}");
        let s = s.strip_prefix('+').unwrap_or(s);
        if s == "0" {
            return Ok(ByteSize(0));
        }
        if s.is_empty() || s.starts_with('-') {
            return Err(invalid());
        }
        let b = s.as_bytes();
        let mut i = 0;
        let mut total = 0f64;
        while i < b.len() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let num = &s[start..i];
            if num.is_empty() || num == "." || num.matches('.').count() > 1 {
                return Err(invalid());
            }
            let value: f64 = num.parse().map_err(|_| invalid())?;
            let ustart = i;
            while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let u = &s[ustart..i];
            let Some(mult) = unit(u) else {
                return Err(format!("units: unknown unit {u} in {orig}"));
            };
            total += value * mult as f64;
        }
        if total > i64::MAX as f64 {
            return Err("units: overflow parsing unit".to_owned());
        }
        Ok(ByteSize(total as u64))
    }
}

impl fmt::Display for ByteSize {
    /// Go's `Base2Bytes.String()`: `1MiB`, `1KiB512B`, `0B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SI: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
        let mut n = self.0;
        let mut parts: Vec<String> = Vec::new();
        for (i, m) in SI.iter().enumerate() {
            if !n.is_multiple_of(1024) || (i == 0 && n == 0) {
                let suffix = if i == 0 { "B" } else { "iB" };
                parts.push(format!("{}{m}{suffix}", n % 1024));
            }
            n /= 1024;
            if n == 0 {
                break;
            }
        }
        parts.reverse();
        f.write_str(&parts.concat())
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::common::yaml::lenient_string(d)?;
        ByteSize::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn base2_units() {
        assert_eq!(ByteSize::parse("0"), Ok(ByteSize(0)));
        assert_eq!(ByteSize::parse("512B"), Ok(ByteSize(512)));
        assert_eq!(ByteSize::parse("1KB"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("1KiB"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("100MB"), Ok(ByteSize(100 << 20)));
        assert_eq!(ByteSize::parse("1.5GB"), Ok(ByteSize(3 << 29)));
        assert_eq!(
            ByteSize::parse("1MB512KB"),
            Ok(ByteSize((1 << 20) + (512 << 10)))
        );
    }

    #[test]
    fn errors_match_go() {
        assert_eq!(
            ByteSize::parse("100").unwrap_err(),
            "units: unknown unit  in 100"
        );
        assert_eq!(
            ByteSize::parse("1kB").unwrap_err(),
            "units: unknown unit kB in 1kB"
        );
        assert_eq!(ByteSize::parse("MB").unwrap_err(), "units: invalid MB");
        assert_eq!(ByteSize::parse("").unwrap_err(), "units: invalid ");
    }

    #[test]
    fn display() {
        assert_eq!(ByteSize(0).to_string(), "0B");
        assert_eq!(ByteSize(1 << 20).to_string(), "1MiB");
        assert_eq!(ByteSize(1536).to_string(), "1KiB512B");
    }
}
