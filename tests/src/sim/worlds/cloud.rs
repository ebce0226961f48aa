//! The world of a cloud API listed page by page, for every such mechanism: the fake the
//! end-to-end tests serve on loopback (a [`crate::cloud::Api`]) answering the agent's
//! requests in memory, reached through the test-only API base. Machines are created,
//! deleted, stopped, started and moved; now and then the API answers 500, resets the
//! connection, refuses the call or cuts its answer. The job keeps running machines and
//! scrapes the address each carries (its own addresses are the world's and never
//! dialled); the addresses it should scrape are those of the last listing whose every
//! page went through (pages come from the listing taken at the first page, as if the
//! account did not change while it was listed).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port, server_fault};
use crate::cloud::{Api, Request};
use crate::sim::Rng;

/// What the generic world needs of a fake cloud.
pub(crate) trait CloudModel: Api + Clone + Debug + Default {
    /// The registry key (`digitalocean_sd_configs`).
    const KEY: &'static str;
    /// The mechanism's name, for its API base.
    const NAME: &'static str;
    /// The job's name in the configuration.
    const JOB: &'static str;
    /// The job's discovery block and relabelling (keep running machines, scrape the
    /// address they carry), as YAML lines indented for a job.
    fn job() -> String;
    /// Creates machine `n`, running, carrying `addr` (`host:port`).
    fn create(&mut self, n: u64, addr: &str);
    /// The machines' ids.
    fn ids(&self) -> Vec<u64>;
    /// Deletes a machine.
    fn delete(&mut self, id: u64);
    /// Stops a running machine, starts a stopped one.
    fn toggle(&mut self, id: u64);
    /// Makes a machine carry another address.
    fn carry(&mut self, id: u64, addr: &str);
    /// The addresses running machines carry, sorted and deduplicated.
    fn addresses(&self) -> Vec<String>;
    /// True if `req` asks for the first page of the listing.
    fn is_first(req: &Request) -> bool;
    /// True if this 200 answer is the listing's last page.
    fn is_last(req: &Request, body: &str) -> bool;
    /// True if this 200 answer (with its headers) is the listing's last page.
    fn is_last_reply(req: &Request, reply: &crate::cloud::Reply) -> bool {
        Self::is_last(req, &reply.body)
    }
    /// The refusal the API gives a call it denies (status, JSON body).
    fn denied() -> (u16, String);
    /// The API is about to answer a call (a model with a clock moves it).
    fn answering(&mut self) {}
    /// The world answered `req` in full with `body` (after [`CloudModel::answering`]).
    fn answered(&mut self, _req: &Request, _body: &str) {}
    /// Whether the agent may make this call, given what the model saw so far.
    fn may_ask(&self, _req: &Request) -> Result<(), String> {
        Ok(())
    }
    /// Whether `req` may follow `last`, the last call the world answered in full (with
    /// its answer's body), as the mechanism's protocol orders them; most allow any.
    fn may_follow(_last: Option<(&Request, &str)>, _req: &Request) -> Result<(), String> {
        Ok(())
    }
}

/// The base URL the world of mechanism `name` is reached at (one host per world, so
/// that each answers only its own mechanism's requests).
fn base(name: &str) -> String {
    format!("http://{name}.sim")
}

/// The world of one cloud mechanism.
#[derive(Debug, Default)]
pub(crate) struct CloudWorld<M: CloudModel> {
    model: M,
    next: u64,
    /// The listing being paged through.
    listing: Option<M>,
    served: Vec<String>,
    failing: bool,
    /// The last call answered in full, with its answer's body.
    last_ok: Option<(Request, String)>,
}

fn json(status: u16, body: String) -> Vec<Reply> {
    json_bytes(status, body.into_bytes())
}

fn json_bytes(status: u16, body: Vec<u8>) -> Vec<Reply> {
    vec![
        Reply::head(status, "OK", "application/json", false),
        Reply::body(body),
        Reply::end(),
    ]
}

impl<M: CloudModel> CloudWorld<M> {
    fn create(&mut self, rng: &mut Rng, pool: &[String]) {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return;
        };
        self.next += 1;
        self.model.create(self.next, &format!("{host}:{port}"));
    }
}

impl<M: CloudModel + 'static> SdWorld for CloudWorld<M> {
    fn key(&self) -> &'static str {
        M::KEY
    }

    fn api_base(&self) -> Option<(&'static str, String)> {
        Some((M::NAME, base(M::NAME)))
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        for _ in 0..4 {
            self.create(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        vec![WorldJob {
            name: M::JOB,
            sd: M::job(),
            follows_variant: false,
        }]
    }

    fn reloaded(&mut self, in_use: bool) {
        self.last_ok = None;
        if !in_use {
            self.served.clear();
        }
    }

    fn answer(
        &mut self,
        _id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let IoOp::Http(r) = op else { return None };
        let base = base(M::NAME);
        if !matches!(r.origin, Origin::Discovery { .. }) || !r.url.starts_with(&format!("{base}/"))
        {
            return None;
        }
        let method = if r.body.is_some() { "POST" } else { "GET" };
        let mut req = Request::from_url(method, &r.url);
        for (k, v) in &r.headers {
            req = req.header_set(k, v);
        }
        if let Some(b) = &r.body {
            req.body = b.to_vec();
        }
        let latency = Duration::from_millis(1 + rng.below(100));
        let last = self.last_ok.take();
        if let Err(e) = M::may_follow(last.as_ref().map(|(r, b)| (r, b.as_str())), &req)
            .and_then(|()| self.model.may_ask(&req))
        {
            return Some(Err(e));
        }
        if self.failing || rng.chance(4) {
            let events = match rng.below(3) {
                0 => {
                    let (status, body) = M::denied();
                    json(status, body)
                }
                1 => {
                    let full = self.model.answer(&req, &base).body.into_bytes();
                    let cut = full.len() / 2;
                    json_bytes(200, full[..cut].to_vec())
                }
                _ => server_fault(rng, br#"{"message":"internal error"}"#),
            };
            return Some(Ok(Answer::After(latency, events)));
        }
        self.model.answering();
        if M::is_first(&req) {
            self.listing = Some(self.model.clone());
        }
        let Some(listing) = &self.listing else {
            return Some(Err(format!("a next page before any first: {}", req.line())));
        };
        let reply = listing.answer(&req, &base);
        if reply.status != 200 {
            return Some(Err(format!(
                "the API refused {}: {} {}",
                req.line(),
                reply.status,
                reply.body
            )));
        }
        if M::is_last_reply(&req, &reply) {
            self.served = listing.addresses();
        }
        self.model.answered(&req, &reply.body);
        self.last_ok = Some((req, reply.body.clone()));
        let events = vec![
            Reply::head_with(200, "OK", &reply.content_type, &reply.headers),
            Reply::body(reply.body.into_bytes()),
            Reply::end(),
        ];
        Some(Ok(Answer::After(latency, events)))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        _open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        for _ in 0..1 + rng.below(3) {
            let ids = self.model.ids();
            let pick = |rng: &mut Rng| {
                ids.get(rng.below(ids.len().max(1) as u64) as usize)
                    .copied()
            };
            match rng.below(4) {
                0 => self.create(rng, pool),
                1 => {
                    if let Some(id) = pick(rng) {
                        self.model.delete(id);
                    }
                }
                2 => {
                    if let Some(id) = pick(rng) {
                        self.model.toggle(id);
                    }
                }
                _ => {
                    if let (Some(id), Some((host, port))) = (pick(rng), pick_host_port(rng, pool)) {
                        self.model.carry(id, &format!("{host}:{port}"));
                    }
                }
            }
        }
        self.failing = rng.chance(10);
        Vec::new()
    }

    fn addresses(&self) -> Vec<String> {
        self.served.clone()
    }

    fn settle(&self) -> Duration {
        Duration::from_millis(31_000)
    }

    fn describe(&self) -> String {
        format!("{} served {:?}", M::NAME, self.served)
    }
}
