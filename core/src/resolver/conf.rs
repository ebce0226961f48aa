//! `/etc/resolv.conf` as a stub resolver reads it: `nameserver`, `domain`, `search` and
//! `options ndots: timeout: attempts: rotate`, with glibc's defaults and bounds. The shell
//! reads the file; this only interprets its bytes.

use std::time::Duration;

use crate::gourl::is_ip_literal;

/// Most name servers kept (more lines are ignored, as glibc keeps `MAXNS` = 3; a bound,
/// not glibc's number, so a generated file with many servers still works).
pub const MAX_SERVERS: usize = 8;
/// Most search domains kept.
pub const MAX_SEARCH: usize = 32;

/// The interpreted file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// Name server addresses (IP literals, an IPv6 one possibly with a `%zone`), in order.
    pub servers: Vec<String>,
    /// Search domains, in order (without a trailing dot).
    pub search: Vec<String>,
    /// A name with at least this many dots is tried as is first (default 1, at most 15).
    pub ndots: usize,
    /// Time to wait for one server's answer (default 5 s, at most 30 s).
    pub timeout: Duration,
    /// Rounds over the server list before a name counts as failed (default 2, at most 5).
    pub attempts: usize,
    /// Start each lookup at the next server instead of the first.
    pub rotate: bool,
}

impl Default for ResolvConf {
    fn default() -> ResolvConf {
        ResolvConf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
        }
    }
}

impl ResolvConf {
    /// Interprets the file's bytes. Unknown lines and options are ignored, as the C
    /// library ignores them; a `nameserver` that is not an IP address is skipped.
    pub fn parse(text: &[u8]) -> ResolvConf {
        let text = String::from_utf8_lossy(text);
        let mut c = ResolvConf::default();
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let mut f = line.split_ascii_whitespace();
            match f.next() {
                Some("nameserver") => {
                    if let Some(ip) = f.next()
                        && is_ip_literal(ip)
                        && c.servers.len() < MAX_SERVERS
                    {
                        c.servers.push(ip.to_owned());
                    }
                }
                Some("domain") => {
                    c.search = f
                        .next()
                        .map(|d| d.trim_end_matches('.'))
                        .filter(|d| !d.is_empty())
                        .map(|d| vec![d.to_owned()])
                        .unwrap_or_default();
                }
                Some("search") => {
                    c.search = f
                        .map(|d| d.trim_end_matches('.'))
                        .filter(|d| !d.is_empty())
                        .take(MAX_SEARCH)
                        .map(str::to_owned)
                        .collect();
                }
                Some("options") => {
                    for o in f {
                        let num = |p: &str| o.strip_prefix(p).and_then(|v| v.parse::<u64>().ok());
                        if let Some(n) = num("ndots:") {
                            c.ndots = n.min(15) as usize;
                        } else if let Some(n) = num("timeout:") {
                            c.timeout = Duration::from_secs(n.clamp(1, 30));
                        } else if let Some(n) = num("attempts:") {
                            c.attempts = n.clamp(1, 5) as usize;
                        } else if o == "rotate" {
                            c.rotate = true;
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// The names to try for `name`, in order (miekg/dns's `ClientConfig.NameList`, which
    /// 3.x's DNS discovery uses): a name ending in a dot as is; else, if it has more
    /// labels than `ndots`, as is first, then with each search domain, then — if it had
    /// too few labels — as is last.
    pub fn name_list(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_owned()];
        }
        let labels = name.split('.').filter(|l| !l.is_empty()).count();
        let enough = labels > self.ndots;
        let fqdn = format!("{name}.");
        let mut out = Vec::with_capacity(self.search.len() + 1);
        if enough {
            out.push(fqdn.clone());
        }
        for s in &self.search {
            out.push(format!("{name}.{s}."));
        }
        if !enough {
            out.push(fqdn);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_c_library() {
        let c = ResolvConf::parse(
            b"# comment\n; another\nnameserver 127.0.0.1\nnameserver ::1\nnameserver fe80::1%eth0\n\
              nameserver not-an-ip\ndomain ignored.example\nsearch a.example b.example.\n\
              options ndots:2 timeout:1 attempts:3 rotate edns0\nbogus line\n",
        );
        assert_eq!(c.servers, vec!["127.0.0.1", "::1", "fe80::1%eth0"]);
        assert_eq!(c.search, vec!["a.example", "b.example"]);
        assert_eq!(c.ndots, 2);
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.attempts, 3);
        assert!(c.rotate);
        // The last of domain/search wins.
        let c = ResolvConf::parse(b"search a.example\ndomain d.example\n");
        assert_eq!(c.search, vec!["d.example"]);
        // Defaults and bounds.
        assert_eq!(ResolvConf::parse(b""), ResolvConf::default());
        let c = ResolvConf::parse(b"options ndots:99 timeout:0 attempts:100\n");
        assert_eq!((c.ndots, c.timeout.as_secs(), c.attempts), (15, 1, 5));
        let many: String = (0..20)
            .map(|i| format!("nameserver 127.0.0.{i}\n"))
            .collect();
        assert_eq!(
            ResolvConf::parse(many.as_bytes()).servers.len(),
            MAX_SERVERS
        );
    }

    #[test]
    fn ip_literals() {
        for ok in [
            "127.0.0.1",
            "::1",
            "::",
            "2001:db8::1",
            "fe80::1%eth0",
            "::ffff:10.0.0.1",
            "1:2:3:4:5:6:7:8",
        ] {
            assert!(is_ip_literal(ok), "{ok}");
        }
        for bad in [
            "256.0.0.1",
            "1.2.3",
            "localhost",
            "1::2::3",
            "fe80::1%",
            "12345::1",
            "1:2:3:4:5:6:7:8:9",
            "",
        ] {
            assert!(!is_ip_literal(bad), "{bad}");
        }
    }

    #[test]
    fn search_lists_follow_ndots() {
        let c = ResolvConf {
            search: vec!["a.example".into(), "b.example".into()],
            ..ResolvConf::default()
        };
        assert_eq!(c.name_list("x.y."), vec!["x.y."]);
        assert_eq!(
            c.name_list("host"),
            vec!["host.a.example.", "host.b.example.", "host."]
        );
        assert_eq!(
            c.name_list("_svc._tcp.example.com"),
            vec![
                "_svc._tcp.example.com.",
                "_svc._tcp.example.com.a.example.",
                "_svc._tcp.example.com.b.example."
            ]
        );
        let c = ResolvConf { ndots: 5, ..c };
        assert_eq!(c.name_list("a.b").last().map(String::as_str), Some("a.b."));
    }
}
