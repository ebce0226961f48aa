//! `dns_sd_configs`: targets from DNS records (SRV by default, A, AAAA, MX, NS), looked up
//! at start and every `refresh_interval` through the core's stub resolver
//! ([`crate::resolver`]), as 3.x's `discovery/dns` does (`SDConfig.UnmarshalYAML`,
//! `Discovery.refresh`, `refreshOne`).
//!
//! Each configured name is one target group (source: the name as written) with one
//! target per answer record: `__address__` (`host:port`: an SRV record's target and port,
//! else the record's host or address and the configured `port`), `__meta_dns_name`, and
//! per type `__meta_dns_srv_record_target` / `__meta_dns_srv_record_port`,
//! `__meta_dns_mx_record_target` or `__meta_dns_ns_record_target` (the name as the record
//! holds it, trailing dot included). CNAME records in an answer are skipped. A name whose
//! lookup fails keeps its last good targets; one that does not exist (NXDOMAIN for every
//! search domain) has none. Counters: `prometheus_sd_dns_lookups_total`,
//! `prometheus_sd_dns_lookup_failures_total`.
//!
//! `/etc/resolv.conf` (or [`crate::agent::AgentOptions::resolv_conf`]) is read again at
//! every refresh, as 3.x reads it for every lookup. A refresh still running when the
//! next is due delays it (a Go ticker drops the ticks meanwhile); a `refresh_interval`
//! below one second is run every second (3.x accepts 0 and then panics).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::groups::TargetGroup;
use super::mechanism::{Counter, Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut};
use crate::common::yaml::{Nullable, Path};
use crate::duration::PromDuration;
use crate::io::{IoEvent, IoOp, IoQueue, RequestId};
use crate::labels::{self, Labels};
use crate::resolver::conf::ResolvConf;
use crate::resolver::lookup::{Ask, Lookup, Progress};
use crate::resolver::wire::{self, RData, Record};
use crate::time::Instant;

/// `prometheus_sd_dns_lookups_total`.
const LOOKUPS: &str = "prometheus_sd_dns_lookups_total";
/// `prometheus_sd_dns_lookup_failures_total`.
const LOOKUP_FAILURES: &str = "prometheus_sd_dns_lookup_failures_total";

/// Largest resolv.conf read.
const RESOLV_CONF_LIMIT: u64 = 64 << 10;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Dns;

impl Mechanism for Dns {
    const KEY: &'static str = "dns_sd_configs";
    const EXAMPLE: Option<&'static str> =
        Some("{names: [_x._tcp.example.com, web], refresh_interval: 5s}");
    const NAME: &'static str = "dns";
    const GO_TYPE: &'static str = "dns.plain";
    const RUNS: bool = true;
    const COUNTERS: &'static [Counter] = &[
        Counter {
            name: LOOKUPS,
            labels: &[],
            help: "The number of DNS-SD lookups.",
        },
        Counter {
            name: LOOKUP_FAILURES,
            labels: &[],
            help: "The number of DNS-SD lookup failures.",
        },
    ];
    type Raw = RawDnsSd;
    type Config = DnsSdConfig;

    fn validate(raw: RawDnsSd, _: &SdContext<'_>) -> Result<DnsSdConfig, Invalid> {
        raw.validate()
    }

    fn machine(cfg: &DnsSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(DnsSd::new(cfg, cx)))
    }
}

/// DNS record type for DNS SD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnsRecordType {
    /// SRV records (default): host and port from the record.
    Srv,
    /// IPv4 addresses, with the configured port.
    A,
    /// IPv6 addresses, with the configured port.
    Aaaa,
    /// Mail exchangers, with the configured port.
    Mx,
    /// Name servers, with the configured port.
    Ns,
}

/// `dns_sd_configs` entry as written. A null field takes Go's zero value, not the
/// default (`type: ~` is the empty type, which is refused).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDnsSd {
    #[serde(default)]
    names: Nullable<Vec<Option<String>>>,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
    #[serde(default, rename = "type")]
    kind: Nullable<String>,
    #[serde(default)]
    port: Nullable<i64>,
}

/// DNS-based discovery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsSdConfig {
    /// Names to resolve.
    pub names: Vec<String>,
    /// Refresh period (default 30s).
    pub refresh_interval: PromDuration,
    /// Record type.
    pub kind: DnsRecordType,
    /// Port for A, AAAA, MX and NS records (Go's `int`: not range-checked, as in 3.x).
    pub port: i64,
}

impl RawDnsSd {
    fn validate(self) -> Result<DnsSdConfig, Invalid> {
        let names: Vec<String> = self
            .names
            .value()
            .unwrap_or_default()
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        if names.is_empty() {
            return Err((
                Path::default().key("names"),
                "DNS-SD config must contain at least one SRV record name".into(),
            ));
        }
        let written = match self.kind {
            Nullable::Absent => "SRV".to_owned(),
            Nullable::Null => String::new(),
            Nullable::Value(k) => k,
        };
        let kind = match written.to_ascii_uppercase().as_str() {
            "SRV" => DnsRecordType::Srv,
            "A" => DnsRecordType::A,
            "AAAA" => DnsRecordType::Aaaa,
            "MX" => DnsRecordType::Mx,
            "NS" => DnsRecordType::Ns,
            _ => {
                return Err((
                    Path::default().key("type"),
                    format!("invalid DNS-SD records type {written}"),
                ));
            }
        };
        let port = self.port.value().unwrap_or(0);
        if kind != DnsRecordType::Srv && port == 0 {
            return Err((
                Path::default(),
                "a port is required in DNS-SD configs for all record types except SRV".into(),
            ));
        }
        Ok(DnsSdConfig {
            names,
            refresh_interval: self
                .refresh_interval
                .value()
                .unwrap_or(PromDuration::from_secs(30)),
            kind,
            port,
        })
    }
}

/// The record type to ask for.
fn qtype(kind: DnsRecordType) -> u16 {
    match kind {
        DnsRecordType::Srv => wire::TYPE_SRV,
        DnsRecordType::A => wire::TYPE_A,
        DnsRecordType::Aaaa => wire::TYPE_AAAA,
        DnsRecordType::Mx => wire::TYPE_MX,
        DnsRecordType::Ns => wire::TYPE_NS,
    }
}

/// DNS discovery: at start and every `refresh_interval`, read resolv.conf, look every
/// name up (all at once), and send one batch with a group per name that resolved. A name
/// whose lookup failed keeps its last good group (3.x's `Discovery.refresh` leaves it
/// out of the batch).
#[derive(Debug)]
struct DnsSd {
    names: Vec<String>,
    qtype: u16,
    port: i64,
    interval: Duration,
    resolv_conf: Arc<str>,
    dns_port: u16,
    seed: u64,
    /// Counts lookups, to rotate servers when resolv.conf says `rotate`.
    rotation: usize,
    next_refresh: Instant,
    refresh: Option<Refresh>,
}

#[derive(Debug, Default)]
struct Refresh {
    conf_read: Option<RequestId>,
    /// Running lookups, with the index of their name.
    lookups: Vec<(usize, Lookup)>,
    groups: Vec<TargetGroup>,
}

impl DnsSd {
    fn new(cfg: &DnsSdConfig, cx: &MachineContext<'_>) -> DnsSd {
        DnsSd {
            names: cfg.names.clone(),
            qtype: qtype(cfg.kind),
            port: cfg.port,
            interval: cfg.refresh_interval.to_std().max(Duration::from_secs(1)),
            resolv_conf: cx.env.resolv_conf.clone(),
            dns_port: cx.env.dns_port,
            seed: crate::hash::fnv1a64_extend(cx.env.seed, cx.name.as_bytes()),
            rotation: 0,
            next_refresh: cx.now,
            refresh: None,
        }
    }

    fn begin(&mut self, now: Instant, io: &mut IoQueue) {
        // On the grid of the first refresh; ticks missed while a refresh ran are skipped,
        // as a Go ticker drops them.
        while self.next_refresh <= now {
            self.next_refresh = self.next_refresh + self.interval;
        }
        let id = io.start(IoOp::ReadFile {
            path: self.resolv_conf.to_string(),
            limit: RESOLV_CONF_LIMIT,
        });
        self.refresh = Some(Refresh {
            conf_read: Some(id),
            ..Refresh::default()
        });
    }

    /// Collects finished lookups; ends the refresh when none is left.
    fn collect(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        let Some(r) = self.refresh.as_mut() else {
            return;
        };
        let mut i = 0;
        while i < r.lookups.len() {
            let Progress::Done(result) = r.lookups[i].1.progress() else {
                i += 1;
                continue;
            };
            let (n, _) = r.lookups.swap_remove(i);
            out.count(LOOKUPS, 1);
            let name = &self.names[n];
            match result {
                Ok(records) => r.groups.push(group(name, &records, self.port)),
                Err(e) => {
                    out.count(LOOKUP_FAILURES, 1);
                    out.failures
                        .push(format!("Error refreshing DNS targets: {e}"));
                }
            }
        }
        if r.conf_read.is_some() || !r.lookups.is_empty() {
            return;
        }
        let mut groups = std::mem::take(&mut r.groups);
        self.refresh = None;
        if !groups.is_empty() {
            // In the order of the configured names, whatever order lookups ended in.
            groups.sort_by_key(|g| self.names.iter().position(|n| *n == g.source));
            out.updates.push(groups);
        }
        if now >= self.next_refresh {
            self.begin(now, io);
        }
    }
}

/// The target group of one name, as 3.x's `refreshOne` builds it.
fn group(name: &str, records: &[Record], port: i64) -> TargetGroup {
    let mut targets = Vec::with_capacity(records.len());
    for r in records {
        let (address, srv_target, srv_port, mx, ns) = match &r.data {
            RData::Srv { port, target, .. } => (
                join_host_port(target.trim_end_matches('.'), port),
                target.as_str(),
                port.to_string(),
                "",
                "",
            ),
            RData::Mx { exchange, .. } => (
                join_host_port(exchange.trim_end_matches('.'), port),
                "",
                String::new(),
                exchange.as_str(),
                "",
            ),
            RData::Ns(ns) => (
                join_host_port(ns.trim_end_matches('.'), port),
                "",
                String::new(),
                "",
                ns.as_str(),
            ),
            RData::A(a) => (
                join_host_port(&format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]), port),
                "",
                String::new(),
                "",
                "",
            ),
            RData::Aaaa(a) => (
                join_host_port(&wire::ipv6_text(a), port),
                "",
                String::new(),
                "",
                "",
            ),
            // Aliases are followed by the server; other types are not targets.
            RData::Cname(_) | RData::Other(_) => continue,
        };
        targets.push(Labels::from_pairs([
            (labels::ADDRESS, address.as_str()),
            ("__meta_dns_name", name),
            ("__meta_dns_srv_record_target", srv_target),
            ("__meta_dns_srv_record_port", srv_port.as_str()),
            ("__meta_dns_mx_record_target", mx),
            ("__meta_dns_ns_record_target", ns),
        ]));
    }
    TargetGroup {
        targets,
        labels: Labels::default(),
        source: name.to_owned(),
    }
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl SdMachine for DnsSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, _: &mut SdOut) {
        self.begin(now, io);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.refresh
            .as_ref()
            .is_some_and(|r| r.conf_read == Some(id) || r.lookups.iter().any(|(_, l)| l.owns(id)))
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        let Some(r) = self.refresh.as_mut() else {
            return;
        };
        if r.conf_read == Some(id) {
            r.conf_read = None;
            match ev {
                IoEvent::FileData(text) => {
                    let conf = ResolvConf::parse(text);
                    for (n, name) in self.names.iter().enumerate() {
                        let seed = self.seed ^ (self.rotation as u64).rotate_left(17);
                        let ask = Ask {
                            name,
                            qtype: self.qtype,
                            port: self.dns_port,
                            seed,
                            rotation: self.rotation,
                        };
                        let lookup = Lookup::start(ask, &conf, now, io);
                        self.rotation = self.rotation.wrapping_add(1);
                        r.lookups.push((n, lookup));
                    }
                }
                other => {
                    let why = match other {
                        IoEvent::NotFound => "no such file".to_owned(),
                        IoEvent::Failed(e) => e.to_owned(),
                        _ => "unexpected answer to a file read".to_owned(),
                    };
                    let n = self.names.len() as u64;
                    out.count(LOOKUPS, n);
                    out.count(LOOKUP_FAILURES, n);
                    out.failures.push(format!(
                        "Error refreshing DNS targets: could not load resolv.conf: open {}: {why}",
                        self.resolv_conf
                    ));
                }
            }
        } else if let Some((_, l)) = r.lookups.iter_mut().find(|(_, l)| l.owns(id)) {
            l.handle_io(now, id, ev, io);
        }
        self.collect(now, io, out);
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        match self.refresh.as_mut() {
            Some(r) => {
                for (_, l) in &mut r.lookups {
                    l.handle_timeout(now, io);
                }
                self.collect(now, io, out);
            }
            None if now >= self.next_refresh => self.begin(now, io),
            None => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.refresh {
            Some(r) => r.lookups.iter().filter_map(|(_, l)| l.poll_timeout()).min(),
            None => Some(self.next_refresh),
        }
    }

    fn stop(&mut self, io: &mut IoQueue) {
        if let Some(r) = self.refresh.as_mut() {
            if let Some(id) = r.conf_read.take() {
                io.cancel(id);
            }
            for (_, l) in &mut r.lookups {
                l.stop(io);
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.refresh.as_ref().map_or(0, |r| {
            usize::from(r.conf_read.is_some())
                + r.lookups
                    .iter()
                    .filter(|(_, l)| l.poll_timeout().is_some())
                    .count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::mechanism::SdEnv;
    use super::*;
    use crate::io::{DnsQuery, IoCommand};

    const CONF: &str = "nameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch corp.example\noptions timeout:2 attempts:1\n";

    struct Drive {
        m: Box<dyn SdMachine>,
        io: IoQueue,
        out: SdOut,
        now: Instant,
        seen: usize,
    }

    impl Drive {
        fn new(yaml: &str) -> Drive {
            let c = crate::config::Config::parse(
                &format!("scrape_configs: [{{job_name: j, dns_sd_configs: [{yaml}]}}]"),
                &crate::config::ParseOptions::default(),
            )
            .unwrap();
            let cfg = c.scrape_configs[0].sd_configs[0].clone();
            let env = SdEnv::for_tests(1);
            let name: Arc<str> = "dns/0".into();
            let cx = MachineContext {
                env: &env,
                name: &name,
                now: Instant::ZERO,
            };
            let mut d = Drive {
                m: cfg.machine(&cx).unwrap(),
                io: IoQueue::default(),
                out: SdOut::default(),
                now: Instant::ZERO,
                seen: 0,
            };
            d.m.start(d.now, &mut d.io, &mut d.out);
            d
        }

        /// The operations started since the last call.
        fn started(&mut self) -> Vec<(RequestId, IoOp)> {
            let new: Vec<(RequestId, IoOp)> = self.io.queue[self.seen..]
                .iter()
                .filter_map(|c| match c {
                    IoCommand::Start(id, op) => Some((*id, op.clone())),
                    IoCommand::Cancel(_) | IoCommand::Send(..) => None,
                })
                .collect();
            self.seen = self.io.queue.len();
            new
        }

        fn feed(&mut self, id: RequestId, ev: IoEvent<'_>) {
            self.m
                .handle_io(self.now, id, ev, &mut self.io, &mut self.out);
        }

        /// Answers the resolv.conf read.
        fn conf(&mut self, text: &str) {
            let ops = self.started();
            let (id, op) = &ops[0];
            assert!(matches!(op, IoOp::ReadFile { path, .. } if path == "/etc/resolv.conf"));
            self.feed(*id, IoEvent::FileData(text.as_bytes()));
        }

        /// The one DNS query in flight: id, server, transport, question.
        fn query(&mut self) -> (RequestId, DnsQuery, (String, u16)) {
            let ops = self.started();
            assert_eq!(ops.len(), 1, "{ops:?}");
            let (id, IoOp::Dns(q)) = ops[0].clone() else {
                panic!("{ops:?}")
            };
            let question = wire::question(&q.message).unwrap();
            (id, q, question)
        }

        fn answer(
            &mut self,
            id: RequestId,
            q: &DnsQuery,
            rcode: u8,
            tc: bool,
            rr: &[(u16, Vec<u8>)],
        ) {
            let r = wire::response(&q.message, rcode, tc, rr).unwrap();
            self.feed(id, IoEvent::DnsReply(&r));
        }

        fn count(&self, name: &str) -> u64 {
            self.out
                .counts
                .iter()
                .filter(|((n, _), _)| *n == name)
                .map(|(_, v)| v)
                .sum()
        }
    }

    fn addr_of(t: &Labels) -> String {
        t.get(labels::ADDRESS).unwrap_or_default().to_owned()
    }

    #[test]
    fn srv_answers_become_targets_with_3x_labels() {
        let mut d = Drive::new("{names: [_prom._tcp.example.com]}");
        d.conf(CONF);
        let (id, q, question) = d.query();
        // Enough labels (> ndots): asked as is first, over UDP with EDNS0.
        assert_eq!(question, ("_prom._tcp.example.com.".into(), wire::TYPE_SRV));
        assert_eq!((q.server.as_str(), q.port, q.tcp), ("10.0.0.1", 53, false));
        assert_eq!(q.timeout, Duration::from_secs(2));
        let srv = |p, t| (wire::TYPE_SRV, wire::srv_rdata(1, 1, p, t).unwrap());
        d.answer(
            id,
            &q,
            wire::RCODE_NOERROR,
            false,
            &[
                srv(9090, "a.example.com."),
                srv(9100, "b.example.com."),
                (
                    wire::TYPE_CNAME,
                    wire::name_rdata("c.example.com.").unwrap(),
                ),
            ],
        );
        assert_eq!(d.out.updates.len(), 1);
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "_prom._tcp.example.com");
        assert_eq!(g.targets.len(), 2, "the CNAME is skipped");
        let t = &g.targets[0];
        assert_eq!(addr_of(t), "a.example.com:9090");
        assert_eq!(t.get("__meta_dns_name"), Some("_prom._tcp.example.com"));
        assert_eq!(
            t.get("__meta_dns_srv_record_target"),
            Some("a.example.com.")
        );
        assert_eq!(t.get("__meta_dns_srv_record_port"), Some("9090"));
        assert_eq!(t.get("__meta_dns_mx_record_target"), None);
        assert_eq!(d.count(LOOKUPS), 1);
        assert_eq!(d.count(LOOKUP_FAILURES), 0);
        // The next refresh is one interval after the first.
        assert_eq!(
            d.m.poll_timeout(),
            Some(Instant::ZERO + Duration::from_secs(30))
        );
    }

    #[test]
    fn other_record_types_take_the_configured_port() {
        type Case<'a> = (&'a str, u16, Vec<u8>, &'a str, Option<(&'a str, &'a str)>);
        let cases: [Case<'_>; 5] = [
            ("A", wire::TYPE_A, vec![10, 1, 2, 3], "10.1.2.3:80", None),
            (
                "AAAA",
                wire::TYPE_AAAA,
                vec![0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                "[2001:db8::1]:80",
                None,
            ),
            (
                "AAAA",
                wire::TYPE_AAAA,
                vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 9],
                "10.0.0.9:80",
                None,
            ),
            (
                "MX",
                wire::TYPE_MX,
                [vec![0, 10], wire::name_rdata("mx.example.").unwrap()].concat(),
                "mx.example:80",
                Some(("__meta_dns_mx_record_target", "mx.example.")),
            ),
            (
                "NS",
                wire::TYPE_NS,
                wire::name_rdata("ns.example.").unwrap(),
                "ns.example:80",
                Some(("__meta_dns_ns_record_target", "ns.example.")),
            ),
        ];
        for (kind, t, rdata, want, label) in cases {
            let mut d = Drive::new(&format!(
                "{{names: [h.example.com], type: {kind}, port: 80}}"
            ));
            d.conf(CONF);
            let (id, q, question) = d.query();
            assert_eq!(question.1, t, "{kind}");
            d.answer(id, &q, 0, false, &[(t, rdata)]);
            let target = &d.out.updates[0][0].targets[0];
            assert_eq!(addr_of(target), want, "{kind}");
            if let Some((n, v)) = label {
                assert_eq!(target.get(n), Some(v));
            }
            assert_eq!(target.get("__meta_dns_srv_record_port"), None);
        }
    }

    #[test]
    fn search_domains_nxdomain_and_the_empty_answer() {
        // One label: the search domain first, the name as is last.
        let mut d = Drive::new("{names: [web], type: A, port: 80}");
        d.conf(CONF);
        let (id, q, question) = d.query();
        assert_eq!(question.0, "web.corp.example.");
        d.answer(id, &q, wire::RCODE_NXDOMAIN, false, &[]);
        let (id, q, question) = d.query();
        assert_eq!(question.0, "web.");
        assert_eq!(
            q.server, "10.0.0.1",
            "NXDOMAIN is an answer: the same first server"
        );
        d.answer(id, &q, wire::RCODE_NXDOMAIN, false, &[]);
        // Every name answered NXDOMAIN: an empty group, the name's targets go.
        assert_eq!(d.out.updates.len(), 1);
        assert_eq!(d.out.updates[0][0].source, "web");
        assert!(d.out.updates[0][0].targets.is_empty());
        assert_eq!(d.count(LOOKUP_FAILURES), 0);
    }

    #[test]
    fn failures_move_on_and_keep_the_last_good_targets() {
        let mut d = Drive::new("{names: [a.example.com.], type: A, port: 80}");
        d.conf(CONF);
        let (id, q, _) = d.query();
        d.answer(id, &q, wire::RCODE_SERVFAIL, false, &[]);
        // SERVFAIL: the next server.
        let (id, q, _) = d.query();
        assert_eq!(q.server, "10.0.0.2");
        // A timeout there: no server left (attempts 1), the lookup fails.
        d.now = d.now + Duration::from_secs(2);
        d.m.handle_timeout(d.now, &mut d.io, &mut d.out);
        assert!(
            d.io.queue
                .iter()
                .any(|c| matches!(c, IoCommand::Cancel(x) if *x == id))
        );
        let _ = q;
        assert!(
            d.out.updates.is_empty(),
            "a failed name sends nothing: it keeps its targets"
        );
        assert_eq!(d.count(LOOKUPS), 1);
        assert_eq!(d.count(LOOKUP_FAILURES), 1);
        let f = &d.out.failures[0];
        assert!(
            f.contains("a.example.com") && f.contains("i/o timeout"),
            "{f}"
        );
    }

    #[test]
    fn truncated_answers_are_asked_again_over_tcp() {
        let mut d = Drive::new("{names: [_s._tcp.example.com]}");
        d.conf(CONF);
        let (id, q, _) = d.query();
        d.answer(id, &q, 0, true, &[]);
        let (id, q2, _) = d.query();
        assert!(q2.tcp, "over TCP");
        assert_eq!(q2.server, q.server, "the same server");
        // Without EDNS0 over TCP (no additional record).
        assert_eq!(&q2.message[10..12], &[0, 0]);
        d.answer(id, &q2, 0, true, &[]);
        // Truncated over TCP too: a failure of that server; the next one over UDP.
        let (_, q3, _) = d.query();
        assert_eq!((q3.server.as_str(), q3.tcp), ("10.0.0.2", false));
    }

    #[test]
    fn answers_to_another_question_are_refused() {
        let mut d = Drive::new("{names: [a.example.com], type: A, port: 80}");
        d.conf(CONF);
        let (id, q, _) = d.query();
        let other = wire::encode_query(
            u16::from_be_bytes([q.message[0], q.message[1]]),
            "evil.example.",
            wire::TYPE_A,
            false,
        )
        .unwrap();
        let r = wire::response(&other, 0, false, &[(wire::TYPE_A, vec![6, 6, 6, 6])]).unwrap();
        d.feed(id, IoEvent::DnsReply(&r));
        assert!(d.out.updates.is_empty());
        let (_, q, _) = d.query();
        assert_eq!(q.server, "10.0.0.2", "treated as that server failing");
    }

    #[test]
    fn a_missing_resolv_conf_fails_every_name() {
        let mut d = Drive::new("{names: [a.example, b.example], type: A, port: 80}");
        let ops = d.started();
        d.feed(ops[0].0, IoEvent::NotFound);
        assert_eq!(d.count(LOOKUPS), 2);
        assert_eq!(d.count(LOOKUP_FAILURES), 2);
        assert!(d.out.failures[0].contains("could not load resolv.conf"));
        assert!(d.out.updates.is_empty());
        // And the next refresh tries again.
        assert_eq!(
            d.m.poll_timeout(),
            Some(Instant::ZERO + Duration::from_secs(30))
        );
        assert_eq!(d.m.in_flight(), 0);
    }

    #[test]
    fn config_as_3x_reads_it() {
        let parse = |b: &str| {
            crate::config::Config::parse(
                &format!("scrape_configs: [{{job_name: j, dns_sd_configs: [{b}]}}]"),
                &crate::config::ParseOptions::default(),
            )
            .map_err(|e| e.message)
            .map(|c| {
                c.scrape_configs[0].sd_configs[0]
                    .get::<DnsSdConfig>()
                    .cloned()
                    .unwrap()
            })
        };
        let c = parse("{names: [x]}").unwrap();
        assert_eq!(
            (c.kind, c.port, c.refresh_interval.to_string().as_str()),
            (DnsRecordType::Srv, 0, "30s")
        );
        assert_eq!(
            parse("{names: [x], type: aaaa, port: 1}").unwrap().kind,
            DnsRecordType::Aaaa
        );
        assert_eq!(
            parse("{names: [x], type: ''}").unwrap_err(),
            "invalid DNS-SD records type "
        );
        assert_eq!(
            parse("{names: [x], type: ~}").unwrap_err(),
            "invalid DNS-SD records type "
        );
        assert_eq!(
            parse("{names: [x], type: TXT}").unwrap_err(),
            "invalid DNS-SD records type TXT"
        );
        assert_eq!(
            parse("{names: ~}").unwrap_err(),
            "DNS-SD config must contain at least one SRV record name"
        );
        assert_eq!(
            parse("{names: [x], type: A}").unwrap_err(),
            "a port is required in DNS-SD configs for all record types except SRV"
        );
        assert_eq!(parse("{names: [x], type: A, port: -1}").unwrap().port, -1);
        assert_eq!(parse("{names: [~]}").unwrap().names, vec![""]);
    }

    #[test]
    fn ipv6_text_is_gos() {
        let mut a = [0u8; 16];
        assert_eq!(wire::ipv6_text(&a), "::");
        a[15] = 1;
        assert_eq!(wire::ipv6_text(&a), "::1");
        let b = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        // One zero group is not compressed; the longest run is.
        assert_eq!(wire::ipv6_text(&b), "2001:db8:1:0:1::1");
        let c = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 0, 0, 0, 0, 0];
        assert_eq!(wire::ipv6_text(&c), "fe80::abcd:0:0:0");
    }
}
