//! One lookup (a name and a record type) as a sans-IO machine: each name of the search
//! list in turn, each server in turn for `attempts` rounds, over UDP with EDNS0 and again
//! over TCP when the answer is truncated.
//!
//! Verdicts follow 3.x's `discovery/dns` (`lookupWithSearchPath`, `lookupFromAnyServer`,
//! `askServerForName`): a server's NOERROR or NXDOMAIN is its answer for that name, any
//! other answer, a timeout or an error moves to the next server; the first name answered
//! NOERROR wins; if every name got an answer (all NXDOMAIN) the result is empty; if some
//! name got none, the lookup fails. Deliberately more than 3.x: `timeout`, `attempts`
//! and `rotate` from resolv.conf are honoured (3.x asks each server once with a 2 s
//! timeout), and a reply must echo the question it answers.

use std::time::Duration;

use super::conf::ResolvConf;
use super::wire::{self, Record};
use crate::io::{DnsQuery, IoEvent, IoOp, IoQueue, RequestId};
use crate::time::Instant;

/// Where a lookup stands.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Waiting for an answer or a deadline.
    Running,
    /// Finished: the answer records (empty if every name was NXDOMAIN), or why not.
    Done(Result<Vec<Record>, String>),
}

#[derive(Debug)]
struct Exchange {
    id: RequestId,
    qid: u16,
    tcp: bool,
    deadline: Instant,
}

/// One lookup.
#[derive(Debug)]
pub(crate) struct Lookup {
    /// The name as configured, for errors.
    configured: String,
    qtype: u16,
    names: Vec<String>,
    servers: Vec<String>,
    port: u16,
    timeout: Duration,
    attempts: usize,
    /// The index into `names`.
    name: usize,
    /// Tries made for the current name (server index = (first + try) % servers).
    tried: usize,
    first: usize,
    /// Every name so far got an answer from some server.
    all_answered: bool,
    last_error: String,
    /// Seeds query ids.
    ids: u64,
    exchange: Option<Exchange>,
    result: Option<Result<Vec<Record>, String>>,
}

/// SplitMix64: query ids from the lookup's seed, so that a run is reproducible while a
/// seed from the OS makes ids unpredictable to an off-path attacker.
fn next_id(state: &mut u64) -> u16 {
    crate::hash::splitmix64(state) as u16
}

/// What to look up, and how.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask<'a> {
    /// The name as configured (the search list applies).
    pub(crate) name: &'a str,
    /// The record type.
    pub(crate) qtype: u16,
    /// The servers' port.
    pub(crate) port: u16,
    /// Seeds the query ids.
    pub(crate) seed: u64,
    /// Picks the first server when resolv.conf says `rotate`.
    pub(crate) rotation: usize,
}

impl Lookup {
    /// Starts a lookup.
    pub(crate) fn start(ask: Ask<'_>, conf: &ResolvConf, now: Instant, io: &mut IoQueue) -> Lookup {
        let Ask {
            name,
            qtype,
            port,
            seed,
            rotation,
        } = ask;
        let mut l = Lookup {
            configured: name.to_owned(),
            qtype,
            names: conf.name_list(name),
            servers: conf.servers.clone(),
            port,
            timeout: conf.timeout,
            attempts: conf.attempts.max(1),
            name: 0,
            tried: 0,
            first: if conf.rotate && !conf.servers.is_empty() {
                rotation % conf.servers.len()
            } else {
                0
            },
            all_answered: true,
            last_error: String::new(),
            ids: seed,
            exchange: None,
            result: None,
        };
        if l.servers.is_empty() {
            l.result = Some(Err(format!(
                "could not resolve {name}: no name servers configured"
            )));
        } else {
            l.send(now, false, io);
        }
        l
    }

    /// Where it stands; `Done` once.
    pub(crate) fn progress(&mut self) -> Progress {
        match self.result.take() {
            Some(r) => Progress::Done(r),
            None => Progress::Running,
        }
    }

    /// True while it has a result to hand out or an exchange in flight.
    pub(crate) fn owns(&self, id: RequestId) -> bool {
        self.exchange.as_ref().is_some_and(|e| e.id == id)
    }

    /// The deadline of the exchange in flight.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.exchange.as_ref().map(|e| e.deadline)
    }

    /// Cancels the exchange in flight.
    pub(crate) fn stop(&mut self, io: &mut IoQueue) {
        if let Some(e) = self.exchange.take() {
            io.cancel(e.id);
        }
    }

    /// Sends the query for the current name to the current server.
    fn send(&mut self, now: Instant, tcp: bool, io: &mut IoQueue) {
        let server = &self.servers[(self.first + self.tried) % self.servers.len()];
        let qid = next_id(&mut self.ids);
        let name = &self.names[self.name];
        // Over TCP without EDNS0, as 3.x retries a truncated answer.
        let message = match wire::encode_query(qid, name, self.qtype, !tcp) {
            Ok(m) => m,
            Err(e) => {
                // The name itself is bad: no server can answer it.
                self.last_error = e;
                self.all_answered = false;
                self.next_name(now, io);
                return;
            }
        };
        let id = io.start(IoOp::Dns(DnsQuery {
            server: server.clone(),
            port: self.port,
            tcp,
            message,
            timeout: self.timeout,
        }));
        self.exchange = Some(Exchange {
            id,
            qid,
            tcp,
            deadline: now + self.timeout,
        });
    }

    /// The current server gave no usable answer: the next one, or the next name.
    fn server_failed(&mut self, now: Instant, error: String, io: &mut IoQueue) {
        let server = &self.servers[(self.first + self.tried) % self.servers.len()];
        self.last_error = format!("server {server}: {error}");
        self.tried += 1;
        if self.tried < self.servers.len() * self.attempts {
            self.send(now, false, io);
        } else {
            self.all_answered = false;
            self.next_name(now, io);
        }
    }

    fn next_name(&mut self, now: Instant, io: &mut IoQueue) {
        self.name += 1;
        self.tried = 0;
        if self.name < self.names.len() {
            self.send(now, false, io);
        } else if self.all_answered {
            self.result = Some(Ok(Vec::new()));
        } else {
            self.result = Some(Err(format!(
                "could not resolve {:?}: all servers responded with errors to at least one search domain (last: {})",
                self.configured, self.last_error
            )));
        }
    }

    /// An event of the exchange in flight.
    pub(crate) fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
    ) {
        let Some(ex) = self.exchange.take_if(|e| e.id == id) else {
            return;
        };
        let bytes = match ev {
            IoEvent::DnsReply(b) => b,
            IoEvent::Failed(e) => return self.server_failed(now, e.to_owned(), io),
            _ => return self.server_failed(now, "unexpected answer".into(), io),
        };
        let reply = match wire::decode(bytes) {
            Ok(r) => r,
            Err(e) => return self.server_failed(now, format!("bad answer: {e}"), io),
        };
        let asked = &self.names[self.name];
        let echoes = reply.id == ex.qid
            && reply
                .question
                .as_ref()
                .is_some_and(|(n, t)| *t == self.qtype && wire::same_name(n, asked));
        if !echoes {
            return self.server_failed(now, "answer does not match the question".into(), io);
        }
        if reply.truncated {
            if ex.tcp {
                return self.server_failed(
                    now,
                    "got truncated message on TCP (64kiB limit exceeded?)".into(),
                    io,
                );
            }
            // The same server again, over TCP.
            return self.send(now, true, io);
        }
        match reply.rcode {
            wire::RCODE_NOERROR => self.result = Some(Ok(reply.answers)),
            wire::RCODE_NXDOMAIN => self.next_name(now, io),
            rcode => self.server_failed(now, format!("response code {}", rcode_name(rcode)), io),
        }
    }

    /// The exchange's deadline passed.
    pub(crate) fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue) {
        if let Some(ex) = self.exchange.take_if(|e| now >= e.deadline) {
            io.cancel(ex.id);
            self.server_failed(now, "i/o timeout".into(), io);
        }
    }
}

fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "other",
    }
}
