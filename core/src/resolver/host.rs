//! A host name resolved for a connection, as Go's resolver resolves one for a dial
//! (`net.Resolver.lookupIPAddr` in the `files,dns` order glibc's default `nsswitch.conf`
//! gives): an IP literal is itself; a name `/etc/hosts` lists gets the file's addresses;
//! any other name is looked up as A and AAAA at once through the stub resolver (search
//! list, `ndots`, servers in turn, truncation retried over TCP). The addresses come IPv4
//! first, then IPv6, each in answer order, and a shell tries them in that order until
//! one connects.
//!
//! Shells run one [`HostLookup`] for every connection they open (scrapes, HTTP
//! discovery, remote write, proxies), moving only its DNS datagrams: the same resolver
//! as DNS discovery, so `/etc/resolv.conf`, `/etc/hosts` and their options mean the same
//! everywhere, and a slow lookup holds up only its own connection.

use crate::io::{DnsQuery, IoEvent, IoOp, IoQueue, RequestId};
use crate::time::Instant;

use super::conf::ResolvConf;
use super::hosts::Hosts;
use super::lookup::{Ask, Lookup, Progress};
use super::wire::{self, RData};

/// What a [`HostLookup`] asks its shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsIo {
    /// Send this query; answer with [`HostLookup::handle_reply`] under the same id.
    Start(RequestId, DnsQuery),
    /// Abandon exchange `id` (its answer, if one comes, is ignored).
    Cancel(RequestId),
}

/// One host name being resolved.
#[derive(Debug)]
pub struct HostLookup {
    host: String,
    /// The first name server, for messages (`lookup x on 127.0.0.53:53: …`).
    server: String,
    a: Option<Lookup>,
    aaaa: Option<Lookup>,
    v4: Option<Result<Vec<String>, String>>,
    v6: Option<Result<Vec<String>, String>>,
    io: IoQueue,
    sent: usize,
    result: Option<Result<Vec<String>, String>>,
}

impl HostLookup {
    /// Starts resolving `host` (a name, or an IP literal, IPv6 with or without
    /// brackets). `port` is the name servers' port, `seed` seeds the query ids.
    pub fn start(
        host: &str,
        hosts: &Hosts,
        conf: &ResolvConf,
        port: u16,
        seed: u64,
        now: Instant,
    ) -> HostLookup {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let mut l = HostLookup {
            host: bare.to_owned(),
            server: conf
                .servers
                .first()
                .map(|s| join_host_port(s, port))
                .unwrap_or_default(),
            a: None,
            aaaa: None,
            v4: None,
            v6: None,
            io: IoQueue::default(),
            sent: 0,
            result: None,
        };
        if crate::gourl::is_ip_literal(bare) {
            l.result = Some(Ok(vec![bare.to_owned()]));
            return l;
        }
        let listed = hosts.lookup(bare);
        if !listed.is_empty() {
            // IPv4 first, as for DNS answers.
            let (v4, v6): (Vec<String>, Vec<String>) =
                listed.iter().cloned().partition(|a| !a.contains(':'));
            l.result = Some(Ok(v4.into_iter().chain(v6).collect()));
            return l;
        }
        let ask = |qtype, salt: u64| Ask {
            name: bare,
            qtype,
            port,
            seed: seed ^ salt,
            rotation: seed as usize,
        };
        l.a = Some(Lookup::start(ask(wire::TYPE_A, 0), conf, now, &mut l.io));
        l.aaaa = Some(Lookup::start(
            ask(wire::TYPE_AAAA, 0x5bd1_e995),
            conf,
            now,
            &mut l.io,
        ));
        l.collect();
        l
    }

    /// The next thing to do for the shell, in order.
    pub fn poll_io(&mut self) -> Option<DnsIo> {
        let c = self.io.queue.get(self.sent)?;
        self.sent += 1;
        let out = match c {
            crate::io::IoCommand::Start(id, IoOp::Dns(q)) => DnsIo::Start(*id, q.clone()),
            crate::io::IoCommand::Cancel(id) => DnsIo::Cancel(*id),
            // A lookup asks for nothing else.
            crate::io::IoCommand::Start(id, _) | crate::io::IoCommand::Send(id, _) => {
                DnsIo::Cancel(*id)
            }
        };
        if self.sent == self.io.queue.len() {
            self.io.queue.clear();
            self.sent = 0;
        }
        Some(out)
    }

    /// The answer to exchange `id`: the reply message, or why there is none.
    pub fn handle_reply(&mut self, now: Instant, id: RequestId, reply: Result<&[u8], &str>) {
        let ev = match reply {
            Ok(m) => IoEvent::DnsReply(m),
            Err(e) => IoEvent::Failed(e),
        };
        for l in [self.a.as_mut(), self.aaaa.as_mut()].into_iter().flatten() {
            if l.owns(id) {
                l.handle_io(now, id, ev, &mut self.io);
                break;
            }
        }
        self.collect();
    }

    /// Call when [`HostLookup::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for l in [self.a.as_mut(), self.aaaa.as_mut()].into_iter().flatten() {
            l.handle_timeout(now, &mut self.io);
        }
        self.collect();
    }

    /// When the next exchange times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.a.as_ref(), self.aaaa.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(Lookup::poll_timeout)
            .min()
    }

    /// The addresses (at least one), or the error as Go words it
    /// (`lookup web.example on 127.0.0.53:53: no such host`); `None` while running.
    pub fn result(&self) -> Option<&Result<Vec<String>, String>> {
        self.result.as_ref()
    }

    /// Gives up: exchanges in flight are cancelled (see [`HostLookup::poll_io`]).
    pub fn cancel(&mut self) {
        for l in [self.a.as_mut(), self.aaaa.as_mut()].into_iter().flatten() {
            l.stop(&mut self.io);
        }
        self.a = None;
        self.aaaa = None;
    }

    fn collect(&mut self) {
        if let Some(l) = self.a.as_mut()
            && let Progress::Done(r) = l.progress()
        {
            self.v4 = Some(r.map(|rs| addresses(&rs)));
            self.a = None;
        }
        if let Some(l) = self.aaaa.as_mut()
            && let Progress::Done(r) = l.progress()
        {
            self.v6 = Some(r.map(|rs| addresses(&rs)));
            self.aaaa = None;
        }
        let (Some(v4), Some(v6)) = (&self.v4, &self.v6) else {
            return;
        };
        if self.result.is_some() {
            return;
        }
        let found: Vec<String> = v4.iter().chain(v6.iter()).flatten().cloned().collect();
        self.result = Some(if !found.is_empty() {
            Ok(found)
        } else {
            // Go reports the first failure, else "no such host".
            let why = match (v4, v6) {
                (Err(e), _) | (_, Err(e)) => e.clone(),
                _ => "no such host".to_owned(),
            };
            if self.server.is_empty() {
                Err(format!("lookup {}: {why}", self.host))
            } else {
                Err(format!("lookup {} on {}: {why}", self.host, self.server))
            }
        });
    }
}

/// The A and AAAA records' addresses, in answer order (CNAMEs and others skipped).
fn addresses(records: &[wire::Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])),
            RData::Aaaa(a) => Some(wire::ipv6_text(a)),
            _ => None,
        })
        .collect()
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant(0);

    fn conf() -> ResolvConf {
        ResolvConf::parse(b"nameserver 127.0.0.53\nsearch example.com\noptions timeout:1\n")
    }

    /// Answers every query of `l` with `answer(name, qtype)` until it is done.
    fn run(
        l: &mut HostLookup,
        mut answer: impl FnMut(&str, u16) -> (u8, Vec<(u16, Vec<u8>)>),
    ) -> Vec<(String, u16)> {
        let mut asked = Vec::new();
        while let Some(io) = l.poll_io() {
            let DnsIo::Start(id, q) = io else { continue };
            let (name, qtype) = wire::question(&q.message).expect("a question");
            asked.push((name.clone(), qtype));
            let (rcode, answers) = answer(&name, qtype);
            let reply = wire::response(&q.message, rcode, false, &answers).expect("a reply");
            l.handle_reply(T0, id, Ok(&reply));
        }
        asked
    }

    #[test]
    fn literals_and_the_hosts_file_need_no_dns() {
        let hosts =
            Hosts::parse(b"10.1.1.1 web.internal\n::1 web.internal\n10.1.1.2 web.internal\n");
        for (host, want) in [
            ("127.0.0.1", vec!["127.0.0.1"]),
            ("[::1]", vec!["::1"]),
            ("fe80::1%lo", vec!["fe80::1%lo"]),
            ("WEB.internal", vec!["10.1.1.1", "10.1.1.2", "::1"]),
        ] {
            let mut l = HostLookup::start(host, &hosts, &conf(), 53, 7, T0);
            assert_eq!(l.poll_io(), None, "{host}");
            assert_eq!(
                l.result(),
                Some(&Ok(want.iter().map(|s| s.to_string()).collect()))
            );
        }
    }

    #[test]
    fn a_and_aaaa_answers_come_ipv4_first_in_answer_order() {
        let mut l = HostLookup::start("web", &Hosts::default(), &conf(), 53, 7, T0);
        assert!(l.result().is_none());
        let asked = run(&mut l, |name, qtype| match (name, qtype) {
            ("web.example.com.", wire::TYPE_A) => (
                0,
                vec![
                    (wire::TYPE_A, vec![127, 0, 0, 3]),
                    (wire::TYPE_A, vec![127, 0, 0, 1]),
                ],
            ),
            ("web.example.com.", wire::TYPE_AAAA) => {
                let mut v6 = [0u8; 16];
                v6[15] = 1;
                (0, vec![(wire::TYPE_AAAA, v6.to_vec())])
            }
            _ => (3, vec![]),
        });
        // No dot in the name: the search domain first.
        assert_eq!(asked[0], ("web.example.com.".to_owned(), wire::TYPE_A));
        assert_eq!(
            l.result(),
            Some(&Ok(vec![
                "127.0.0.3".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned()
            ]))
        );
    }

    #[test]
    fn a_name_nobody_knows_is_gos_no_such_host() {
        let mut l = HostLookup::start("nowhere.test", &Hosts::default(), &conf(), 53, 7, T0);
        run(&mut l, |_, _| (3, vec![]));
        assert_eq!(
            l.result(),
            Some(&Err(
                "lookup nowhere.test on 127.0.0.53:53: no such host".to_owned()
            ))
        );
        // Only AAAA records: they are the answer.
        let mut l = HostLookup::start("six.test", &Hosts::default(), &conf(), 53, 7, T0);
        run(&mut l, |_, qtype| {
            if qtype == wire::TYPE_AAAA {
                let mut v6 = [0u8; 16];
                v6[0] = 0xfd;
                v6[15] = 9;
                (0, vec![(wire::TYPE_AAAA, v6.to_vec())])
            } else {
                (0, vec![])
            }
        });
        assert_eq!(l.result(), Some(&Ok(vec!["fd00::9".to_owned()])));
    }

    #[test]
    fn a_silent_server_times_out_and_fails_the_lookup() {
        let mut l = HostLookup::start("slow.test", &Hosts::default(), &conf(), 53, 7, T0);
        let mut started = 0;
        while let Some(io) = l.poll_io() {
            started += usize::from(matches!(io, DnsIo::Start(..)));
        }
        assert_eq!(started, 2, "A and AAAA at once");
        let mut now = T0;
        while l.result().is_none() {
            now = l.poll_timeout().expect("a deadline while running");
            l.handle_timeout(now);
            while l.poll_io().is_some() {}
        }
        let Some(Err(e)) = l.result() else {
            panic!("{:?}", l.result())
        };
        assert!(e.starts_with("lookup slow.test on 127.0.0.53:53: "), "{e}");
        assert!(e.contains("i/o timeout"), "{e}");
        assert!(now >= T0 + std::time::Duration::from_secs(1));
    }

    #[test]
    fn cancelling_abandons_the_exchanges() {
        let mut l = HostLookup::start("x.test", &Hosts::default(), &conf(), 53, 7, T0);
        let mut ids = Vec::new();
        while let Some(io) = l.poll_io() {
            if let DnsIo::Start(id, _) = io {
                ids.push(id);
            }
        }
        l.cancel();
        let mut cancelled = Vec::new();
        while let Some(io) = l.poll_io() {
            if let DnsIo::Cancel(id) = io {
                cancelled.push(id);
            }
        }
        assert_eq!(cancelled, ids);
        assert_eq!(l.poll_timeout(), None);
    }
}
