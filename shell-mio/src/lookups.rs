//! Host-name lookups on the event loop, for every connection the daemon opens by name
//! (HTTP in [`crate::net`], byte streams in [`crate::stream`]): the core's stub resolver
//! ([`trawl_io::resolve`]: `/etc/hosts`, then A and AAAA) with its exchanges on the
//! loop's own DNS sockets, so a slow lookup holds up only its own connection. Each lookup
//! carries the caller's value `V` (what to connect once the addresses are known).

use std::collections::BTreeMap;

use mio::Registry;
use trawl_core::io::{OwnedIoEvent, RequestId};
use trawl_core::resolver::host::{DnsIo, HostLookup};
use trawl_io::resolve::{ResolverFiles, ResolverOptions};

use crate::dns::Dns;

/// A finished lookup: its key, the caller's value, the addresses or the error.
pub(crate) type Resolved<K, V> = (K, V, Result<Vec<String>, String>);

/// The lookups in flight, keyed by `K`.
pub(crate) struct Lookups<K, V> {
    pending: BTreeMap<K, (HostLookup, V)>,
    dns: Dns<(K, RequestId)>,
    files: ResolverFiles,
    start: std::time::Instant,
}

impl<K, V> std::fmt::Debug for Lookups<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups")
            .field("pending", &self.pending.len())
            .field("dns", &self.dns)
            .finish()
    }
}

impl<K: Ord + Copy, V> Lookups<K, V> {
    /// No lookups; their DNS sockets get tokens from `tokens`.
    pub(crate) fn new(resolver: ResolverOptions, tokens: std::ops::Range<usize>) -> Self {
        Lookups {
            pending: BTreeMap::new(),
            dns: Dns::new(tokens),
            files: ResolverFiles::new(resolver),
            start: std::time::Instant::now(),
        }
    }

    /// The lookups' clock, as the core counts time.
    fn now(&self) -> trawl_core::time::Instant {
        trawl_core::time::Instant(self.start.elapsed().as_nanos() as u64)
    }

    /// Starts resolving `host` for `key`; the result at once if no exchange is needed
    /// (the hosts file, a failure to start).
    pub(crate) fn start(
        &mut self,
        reg: &Registry,
        key: K,
        host: &str,
        value: V,
    ) -> Option<Resolved<K, V>> {
        let now = self.now();
        let l = self.files.lookup(host, now);
        self.pending.insert(key, (l, value));
        self.pump(reg, key)
    }

    /// Carries out what lookup `key` asks (its exchanges); its result once it has one.
    fn pump(&mut self, reg: &Registry, key: K) -> Option<Resolved<K, V>> {
        loop {
            let (l, _) = self.pending.get_mut(&key)?;
            let Some(io) = l.poll_io() else { break };
            match io {
                DnsIo::Start(x, q) => {
                    if let Err(e) = self.dns.start(reg, (key, x), &q) {
                        let now = self.now();
                        if let Some((l, _)) = self.pending.get_mut(&key) {
                            l.handle_reply(now, x, Err(&e));
                        }
                    }
                }
                DnsIo::Cancel(x) => self.dns.cancel(reg, (key, x)),
            }
        }
        let result = self.pending.get(&key)?.0.result()?.clone();
        let (_, value) = self.pending.remove(&key)?;
        Some((key, value, result))
    }

    /// A lookup's DNS socket is ready; the lookup's result if that finished it.
    pub(crate) fn dns_ready(&mut self, reg: &Registry, t: usize) -> Option<Resolved<K, V>> {
        let ((key, x), ev) = self.dns.ready(reg, t)?;
        let now = self.now();
        if let Some((l, _)) = self.pending.get_mut(&key) {
            let reply = match &ev {
                OwnedIoEvent::DnsReply(m) => Ok(m.as_slice()),
                OwnedIoEvent::Failed(e) => Err(e.as_str()),
                _ => Err("unexpected answer"),
            };
            l.handle_reply(now, x, reply);
        }
        self.pump(reg, key)
    }

    /// True if `t` is one of the lookups' DNS sockets.
    pub(crate) fn owns_token(&self, t: usize) -> bool {
        self.dns.owns_token(t)
    }

    /// When the next lookup exchange times out.
    pub(crate) fn poll_timeout(&self) -> Option<std::time::Instant> {
        let t = self
            .pending
            .values()
            .filter_map(|(l, _)| l.poll_timeout())
            .min()?;
        Some(self.start + std::time::Duration::from_nanos(t.0))
    }

    /// Moves the lookups whose exchanges timed out on; those that finished.
    pub(crate) fn timeouts(&mut self, reg: &Registry) -> Vec<Resolved<K, V>> {
        let now = self.now();
        let due: Vec<K> = self
            .pending
            .iter()
            .filter(|(_, (l, _))| l.poll_timeout().is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        let mut done = Vec::new();
        for key in due {
            if let Some((l, _)) = self.pending.get_mut(&key) {
                l.handle_timeout(now);
            }
            done.extend(self.pump(reg, key));
        }
        done
    }

    /// Abandons lookup `key` and its exchanges.
    pub(crate) fn cancel(&mut self, reg: &Registry, key: K) {
        if let Some((mut l, _)) = self.pending.remove(&key) {
            l.cancel();
            while let Some(io) = l.poll_io() {
                if let DnsIo::Cancel(x) = io {
                    self.dns.cancel(reg, (key, x));
                }
            }
        }
    }
}
