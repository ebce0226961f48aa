//! DNS discovery's world: a name server answering the agent's queries for an SRV name
//! and an A name reached through the search list, with records that change now and then,
//! names that vanish (NXDOMAIN: no targets), spells of SERVFAIL and of silence (the
//! lookup fails: the last good targets stay), and UDP answers truncated now and then
//! (asked again over TCP). The resolver configuration is a file the agent reads.

use std::collections::BTreeMap;
use std::time::Duration;

use trawl_core::io::{IoOp, OwnedIoEvent, RequestId};
use trawl_core::resolver::wire;

use super::{Answer, Reply, SdWorld, WorldJob};
use crate::sim::Rng;

/// The resolver configuration the simulated agent reads (`AgentOptions::resolv_conf`).
pub(crate) const RESOLV_CONF: &str = "/sim/resolv.conf";
/// The name server it names.
const SERVER: &str = "127.0.0.53";
/// The SRV name as configured (one dot: tried as is first, NXDOMAIN, then with the
/// search domain).
const SRV_NAME: &str = "_sim._tcp";
/// The A name as configured.
const A_NAME: &str = "web.hosts";
/// The search domain.
const DOMAIN: &str = "sim.example";
/// The port of the A name's targets.
const A_PORT: u16 = 9100;

/// How the server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Mode {
    /// Answers.
    #[default]
    Normal,
    /// Answers SERVFAIL to everything.
    ServFail,
    /// Never answers.
    Silent,
}

/// The world.
#[derive(Debug, Default)]
pub(crate) struct DnsWorld {
    mode: Mode,
    /// Configured name → its records' addresses (`host:port`); absent: NXDOMAIN.
    records: BTreeMap<&'static str, Vec<String>>,
    /// Configured name → the addresses of the last lookup the agent completed.
    served: BTreeMap<&'static str, Vec<String>>,
    /// Configured name → whether the server answered the name as written the last time
    /// it was asked (a lookup that then gets NXDOMAIN for the searched name has no
    /// targets; one whose first question went unanswered fails).
    first_answered: BTreeMap<&'static str, bool>,
}

impl DnsWorld {
    fn pick(&mut self, rng: &mut Rng, pool: &[String]) {
        for name in [SRV_NAME, A_NAME] {
            if rng.chance(10) {
                self.records.remove(name);
                continue;
            }
            let port_ok = |a: &String| name == SRV_NAME || a.ends_with(&format!(":{A_PORT}"));
            let picked: Vec<String> = pool
                .iter()
                .filter(|a| port_ok(a))
                .filter(|_| rng.chance(if name == SRV_NAME { 25 } else { 50 }))
                .cloned()
                .collect();
            self.records.insert(name, picked);
        }
    }

    /// The configured name a fully qualified question is about, and whether it is the
    /// searched form (`name.sim.example.`) rather than the name as written.
    fn configured(q: &str) -> Option<(&'static str, bool)> {
        let q = q.strip_suffix('.').unwrap_or(q).to_ascii_lowercase();
        for name in [SRV_NAME, A_NAME] {
            if q == name {
                return Some((name, false));
            }
            if q == format!("{name}.{DOMAIN}") {
                return Some((name, true));
            }
        }
        None
    }

    fn reply(&mut self, query: &[u8], tcp: bool, rng: &mut Rng) -> Result<Option<Vec<u8>>, String> {
        let (qname, qtype) =
            wire::question(query).ok_or_else(|| "a DNS query without a question".to_owned())?;
        let asked = DnsWorld::configured(&qname);
        match self.mode {
            Mode::Silent => {
                if let Some((name, false)) = asked {
                    self.first_answered.insert(name, false);
                }
                return Ok(None);
            }
            Mode::ServFail => {
                if let Some((name, false)) = asked {
                    self.first_answered.insert(name, false);
                }
                return Ok(wire::response(query, 2, false, &[]));
            }
            Mode::Normal => {}
        }
        let Some((name, searched)) = asked else {
            return Err(format!(
                "DNS question for {qname}, which the world never named"
            ));
        };
        if !searched {
            // The name as written does not exist; the search domain must be tried.
            self.first_answered.insert(name, true);
            return Ok(wire::response(query, 3, false, &[]));
        }
        let want = if name == SRV_NAME { 33 } else { 1 };
        if qtype != want {
            return Err(format!("DNS question of type {qtype} for {qname}"));
        }
        let Some(addrs) = self.records.get(name).cloned() else {
            if self.first_answered.get(name) == Some(&true) {
                self.served.insert(name, Vec::new());
            }
            return Ok(wire::response(query, 3, false, &[]));
        };
        if !tcp && rng.chance(20) {
            // Too large for a datagram, says the server: the agent asks over TCP.
            return Ok(wire::response(query, 0, true, &[]));
        }
        let mut answers = Vec::new();
        for a in &addrs {
            let (host, port) = a.rsplit_once(':').expect("pool addresses have ports");
            let port: u16 = port.parse().expect("pool ports are numbers");
            if name == SRV_NAME {
                answers.push((33, wire::srv_rdata(0, 0, port, &format!("{host}."))?));
            } else {
                let ip: std::net::Ipv4Addr = host.parse().map_err(|_| format!("bad ip {host}"))?;
                answers.push((1, ip.octets().to_vec()));
            }
        }
        self.served.insert(name, addrs);
        Ok(wire::response(query, 0, false, &answers))
    }
}

impl SdWorld for DnsWorld {
    fn key(&self) -> &'static str {
        "dns_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        self.pick(rng, pool);
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        vec![WorldJob {
            name: "dns",
            sd: format!(
                "    dns_sd_configs: [{{names: ['{SRV_NAME}'], refresh_interval: 30s}}, {{names: ['{A_NAME}'], type: A, port: {A_PORT}, refresh_interval: 30s}}]\n"
            ),
            follows_variant: true,
        }]
    }

    fn answer(
        &mut self,
        _id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let latency = Duration::from_millis(1 + rng.below(50));
        match op {
            IoOp::ReadFile { path, .. } if path == RESOLV_CONF => {
                let conf =
                    format!("nameserver {SERVER}\nsearch {DOMAIN}\noptions timeout:1 attempts:1\n");
                let ev = OwnedIoEvent::FileData(conf.into_bytes());
                Some(Ok(Answer::After(latency, vec![Reply::Io(ev)])))
            }
            IoOp::Dns(q) => {
                if q.server != SERVER {
                    return Some(Err(format!("DNS query to {}", q.server)));
                }
                Some(self.reply(&q.message, q.tcp, rng).map(|r| match r {
                    Some(m) => Answer::After(latency, vec![Reply::Io(OwnedIoEvent::DnsReply(m))]),
                    None => Answer::Hold,
                }))
            }
            _ => None,
        }
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        _open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        self.mode = match rng.below(10) {
            0 => Mode::ServFail,
            1 => Mode::Silent,
            _ => Mode::Normal,
        };
        if self.mode == Mode::Normal {
            self.pick(rng, pool);
        }
        Vec::new()
    }

    fn addresses(&self) -> Vec<String> {
        self.served.values().flatten().cloned().collect()
    }

    fn settle(&self) -> Duration {
        // One refresh, a timed-out exchange per question, latency.
        Duration::from_secs(33)
    }

    fn describe(&self) -> String {
        format!(
            "dns {:?} records {:?} served {:?}",
            self.mode, self.records, self.served
        )
    }
}
