//! `/etc/hosts` as Go's resolver reads it (`net/hosts.go`: `readHosts`,
//! `lookupStaticHost`): `address name [alias…]` per line, `#` starts a comment, a line
//! whose first field is not an IP address is skipped, names match case-insensitively
//! with or without a trailing dot, and a name's addresses come in file order (over every
//! line naming it). The shell reads the file (bounded) and re-reads it when it is older
//! than [`MAX_AGE`], as Go does; this only interprets its bytes.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::gourl::{is_ipv4, is_ipv6};

/// How long a reading of the file is used before it is read again (Go's `cacheMaxAge`).
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// Most bytes of the file read (a larger file is cut there, at a line end).
pub const MAX_BYTES: u64 = 1 << 20;

/// Most addresses kept per name (the rest are ignored: a bound, not Go's).
const MAX_ADDRS: usize = 64;

/// A parsed hosts file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    /// Lower-cased name without its trailing dot → addresses in file order.
    by_name: BTreeMap<String, Vec<String>>,
}

/// `s` as a name key: lower-cased, without one trailing dot.
fn key(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// The address as Go's `parseLiteralIP` keeps it, or `None` if the field is not one:
/// an IPv4 address, or an IPv6 one with an optional `%zone`.
fn literal(field: &str) -> Option<String> {
    if is_ipv4(field) {
        return Some(field.to_owned());
    }
    let (ip, zone) = match field.split_once('%') {
        Some((ip, zone)) if !zone.is_empty() => (ip, Some(zone)),
        Some(_) => return None,
        None => (field, None),
    };
    if !is_ipv6(ip) {
        return None;
    }
    let ip = ip.to_ascii_lowercase();
    Some(match zone {
        Some(z) => format!("{ip}%{z}"),
        None => ip,
    })
}

impl Hosts {
    /// Parses the file's bytes (lines that are not UTF-8 are skipped).
    pub fn parse(bytes: &[u8]) -> Hosts {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in bytes.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_ascii_whitespace();
            let Some(addr) = fields.next().and_then(literal) else {
                continue;
            };
            for name in fields {
                let addrs = by_name.entry(key(name)).or_default();
                if addrs.len() < MAX_ADDRS {
                    addrs.push(addr.clone());
                }
            }
        }
        Hosts { by_name }
    }

    /// The addresses of `name`, in file order (empty if the file does not name it).
    pub fn lookup(&self, name: &str) -> &[String] {
        self.by_name.get(&key(name)).map_or(&[], Vec::as_slice)
    }

    /// True if the file names no host at all.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_go_reads_it() {
        let h = Hosts::parse(
            b"# comment\n127.0.0.1 localhost Localhost.Localdomain # trailing\n\
              ::1\tlocalhost ip6-localhost\n\
              10.0.0.7 web.example web\n\
              not-an-ip bogus.example\n\
              10.0.0.8 web.example.\n\
              fe80::1%eth0 link.example\n\
              FE80::2 upper.example\n\
              300.1.1.1 bad4.example\n\
              \xff\xfe 10.9.9.9 garbage.example\n\
              127.0.0.2\n",
        );
        assert_eq!(h.lookup("localhost"), ["127.0.0.1", "::1"]);
        assert_eq!(h.lookup("LOCALHOST."), ["127.0.0.1", "::1"]);
        assert_eq!(h.lookup("localhost.localdomain"), ["127.0.0.1"]);
        assert_eq!(h.lookup("web.example"), ["10.0.0.7", "10.0.0.8"]);
        assert_eq!(h.lookup("web"), ["10.0.0.7"]);
        assert_eq!(h.lookup("link.example"), ["fe80::1%eth0"]);
        assert_eq!(h.lookup("upper.example"), ["fe80::2"]);
        for missing in [
            "bogus.example",
            "bad4.example",
            "garbage.example",
            "nowhere",
        ] {
            assert!(h.lookup(missing).is_empty(), "{missing}");
        }
        assert!(Hosts::parse(b"").is_empty());
    }

    #[test]
    fn a_name_keeps_a_bounded_number_of_addresses() {
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&format!("10.0.{}.{} many\n", i / 250, i % 250));
        }
        assert_eq!(
            Hosts::parse(text.as_bytes()).lookup("many").len(),
            MAX_ADDRS
        );
    }
}
