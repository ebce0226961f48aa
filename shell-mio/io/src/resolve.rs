//! Host names for every connection a shell opens (scrapes, HTTP discovery, remote write,
//! proxies), resolved by the core's stub resolver
//! ([`trawl_core::resolver::host::HostLookup`]) — the same one DNS discovery uses — so
//! `/etc/hosts` and `/etc/resolv.conf` mean the same everywhere, every A and AAAA address
//! is there to try in order, and a slow lookup holds up only its own connection.
//!
//! [`ResolverFiles`] keeps the two files, read bounded and again once a reading is older
//! than five seconds (Go's resolver keeps them as long); the shells move the lookups'
//! datagrams on their own loops. [`resolve_blocking`] is the one-shot form for `trawl sd`.

use std::time::Duration;

use trawl_core::resolver::conf::ResolvConf;
use trawl_core::resolver::host::{DnsIo, HostLookup};
use trawl_core::resolver::hosts::{self, Hosts};
use trawl_core::time::Instant;

/// Largest resolv.conf read.
const RESOLV_CONF_LIMIT: u64 = 64 << 10;

/// Where the resolver's configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverOptions {
    /// The resolver configuration (`/etc/resolv.conf`).
    pub resolv_conf: String,
    /// The hosts file (`/etc/hosts`).
    pub hosts: String,
    /// The port name servers are asked on (53).
    pub port: u16,
    /// Seeds query ids (and the first server with `options rotate`).
    pub seed: u64,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            resolv_conf: "/etc/resolv.conf".into(),
            hosts: "/etc/hosts".into(),
            port: 53,
            seed: 0,
        }
    }
}

/// The hosts file and resolver configuration as last read, and lookups started from
/// them.
#[derive(Debug)]
pub struct ResolverFiles {
    options: ResolverOptions,
    hosts: Hosts,
    conf: ResolvConf,
    /// When they were read (`None`: never).
    read_at: Option<Instant>,
    /// Lookups started (salts each one's query ids).
    started: u64,
}

impl ResolverFiles {
    /// Nothing read yet: the first lookup reads the files.
    pub fn new(options: ResolverOptions) -> ResolverFiles {
        ResolverFiles {
            options,
            hosts: Hosts::default(),
            conf: ResolvConf::parse(b""),
            read_at: None,
            started: 0,
        }
    }

    /// Starts resolving `host` at `now` (the shell's monotonic clock, as the core counts
    /// it), reading the files first if the last reading is too old. A file that cannot
    /// be read counts as empty (no hosts; no name servers, so names fail to resolve with
    /// a message that says so), as for Go.
    pub fn lookup(&mut self, host: &str, now: Instant) -> HostLookup {
        let stale = self
            .read_at
            .is_none_or(|t| now.saturating_since(t) >= hosts::MAX_AGE);
        if stale {
            let read = |path: &str, limit: u64| {
                crate::files::read_limited(path, limit)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            };
            self.hosts = Hosts::parse(&read(&self.options.hosts, hosts::MAX_BYTES));
            self.conf = ResolvConf::parse(&read(&self.options.resolv_conf, RESOLV_CONF_LIMIT));
            self.read_at = Some(now);
        }
        self.started += 1;
        let seed = self.options.seed ^ self.started.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        HostLookup::start(host, &self.hosts, &self.conf, self.options.port, seed, now)
    }
}

/// Resolves `host` now, blocking (one exchange at a time, each within its timeout).
pub fn resolve_blocking(files: &mut ResolverFiles, host: &str) -> Result<Vec<String>, String> {
    let start = std::time::Instant::now();
    let now = || Instant(start.elapsed().as_nanos() as u64);
    let mut l = files.lookup(host, now());
    loop {
        while let Some(io) = l.poll_io() {
            if let DnsIo::Start(id, q) = io {
                let r = crate::dns::exchange_blocking(&q);
                l.handle_reply(now(), id, r.as_deref().map_err(String::as_str));
            }
        }
        if let Some(r) = l.result() {
            return r.clone();
        }
        // Only a deadline can still move it (every exchange was answered at once).
        match l.poll_timeout() {
            Some(t) => {
                let wait = t.saturating_since(now());
                std::thread::sleep(wait.min(Duration::from_secs(1)));
                l.handle_timeout(now());
            }
            None => return Err(format!("lookup {host}: no answer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_once_per_five_seconds_and_literals_need_none() {
        let dir = std::env::temp_dir().join(format!("trawl-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, "127.0.0.9 web.test\n").expect("write");
        let mut f = ResolverFiles::new(ResolverOptions {
            resolv_conf: dir.join("missing.conf").to_string_lossy().into_owned(),
            hosts: hosts.to_string_lossy().into_owned(),
            port: 53,
            seed: 1,
        });
        let t0 = Instant(0);
        let l = f.lookup("web.test", t0);
        assert_eq!(l.result(), Some(&Ok(vec!["127.0.0.9".to_owned()])));
        std::fs::write(&hosts, "127.0.0.10 web.test\n").expect("write");
        let l = f.lookup("web.test", t0 + Duration::from_secs(4));
        assert_eq!(
            l.result(),
            Some(&Ok(vec!["127.0.0.9".to_owned()])),
            "kept 5 s"
        );
        let l = f.lookup("web.test", t0 + Duration::from_secs(5));
        assert_eq!(l.result(), Some(&Ok(vec!["127.0.0.10".to_owned()])));
        // Without name servers, a name fails at once and says why.
        let l = f.lookup("other.test", t0 + Duration::from_secs(5));
        let Some(Err(e)) = l.result() else {
            panic!("{:?}", l.result())
        };
        assert!(e.contains("no name servers"), "{e}");
        assert_eq!(
            resolve_blocking(&mut f, "[::1]"),
            Ok(vec!["::1".to_owned()])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
