//! The simulator's discovery worlds: one fake per discovery mechanism that runs, each
//! registered in [`worlds`] the way the core registers mechanisms. A world names the
//! jobs it wants in a configuration, answers the operations its mechanism starts
//! (files, HTTP, DNS), changes now and then, and says which addresses its jobs should
//! end up scraping. Adding a mechanism to the simulator is one module here and one line
//! in [`worlds`]; `every_running_mechanism_has_a_world` (in `tests/tests/sim.rs`) keeps
//! the list complete.

use std::collections::BTreeMap;
use std::time::Duration;

use trawl_core::http::ResponseHead;
use trawl_core::io::{IoOp, OwnedIoEvent, RequestId};

use super::Rng;

pub(crate) mod cloud;
pub(crate) mod consul;
pub(crate) mod digitalocean;
pub(crate) mod dns;
pub(crate) mod docker;
pub(crate) mod ec2;
pub(crate) mod eureka;
pub(crate) mod file;
pub(crate) mod hetzner;
pub(crate) mod http;
pub(crate) mod ionos;
pub(crate) mod kube;
pub(crate) mod lightsail;
pub(crate) mod linode;
pub(crate) mod marathon;
pub(crate) mod nomad;
pub(crate) mod puppetdb;
pub(crate) mod scaleway;
pub(crate) mod vultr;
pub(crate) mod zookeeper;

/// One scripted event of an answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Deliver the rest this many milliseconds later.
    Wait(u64),
    /// An IO event for the agent.
    Io(OwnedIoEvent),
}

impl Reply {
    /// An HTTP head with a content type, gzip-encoded or not.
    pub(crate) fn head(status: u16, reason: &str, content_type: &str, gzip: bool) -> Reply {
        let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
        if gzip {
            headers.push(("Content-Encoding".to_owned(), "gzip".to_owned()));
        }
        Reply::Io(OwnedIoEvent::HttpHead(ResponseHead {
            minor: 1,
            status,
            reason: reason.to_owned(),
            headers,
        }))
    }

    /// An HTTP head with a content type and other headers.
    pub(crate) fn head_with(
        status: u16,
        reason: &str,
        content_type: &str,
        extra: &[(String, String)],
    ) -> Reply {
        let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
        headers.extend(extra.iter().cloned());
        Reply::Io(OwnedIoEvent::HttpHead(ResponseHead {
            minor: 1,
            status,
            reason: reason.to_owned(),
            headers,
        }))
    }

    /// A piece of an HTTP body.
    pub(crate) fn body(b: impl Into<Vec<u8>>) -> Reply {
        Reply::Io(OwnedIoEvent::HttpBody(b.into()))
    }

    /// The end of an HTTP response.
    pub(crate) fn end() -> Reply {
        Reply::Io(OwnedIoEvent::HttpEnd)
    }

    /// A failure.
    pub(crate) fn failed(m: &str) -> Reply {
        Reply::Io(OwnedIoEvent::Failed(m.to_owned()))
    }

    /// True if the operation is over after this event.
    pub(crate) fn is_final(&self) -> bool {
        matches!(self, Reply::Io(e) if e.is_final())
    }
}

/// A registry server failing, as the Consul and Nomad worlds inject it: half the time a
/// 500 (with `body`, if any), else a reset connection.
pub(crate) fn server_fault(rng: &mut Rng, body: &[u8]) -> Vec<Reply> {
    if !rng.chance(50) {
        return vec![Reply::failed("connection reset by peer")];
    }
    let mut r = vec![Reply::head(
        500,
        "Internal Server Error",
        "text/plain",
        false,
    )];
    if !body.is_empty() {
        r.push(Reply::body(body));
    }
    r.push(Reply::end());
    r
}

/// A random address of the pool, as host and port.
pub(crate) fn pick_host_port(rng: &mut Rng, pool: &[String]) -> Option<(String, u16)> {
    let addr = pool.get(rng.below(pool.len() as u64) as usize)?;
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().unwrap_or(80)))
}

/// A job a world wants in the configuration.
#[derive(Debug, Clone)]
pub(crate) struct WorldJob {
    /// The job's name (unique across worlds).
    pub(crate) name: &'static str,
    /// Its discovery block(s), as YAML lines indented for a job.
    pub(crate) sd: String,
    /// True: the variant's interval, timeout and relabel rule apply; false: a 60 s
    /// interval and no rules.
    pub(crate) follows_variant: bool,
}

/// How a world answers an operation it owns.
#[derive(Debug)]
pub(crate) enum Answer {
    /// These events, starting after this delay.
    After(Duration, Vec<Reply>),
    /// Nothing for now (a watch; a server that never answers).
    Hold,
}

/// One mechanism's fake world.
pub(crate) trait SdWorld {
    /// The registry key of the mechanism it fakes (`file_sd_configs`).
    fn key(&self) -> &'static str;

    /// The world at the start of a run.
    fn init(&mut self, rng: &mut Rng, pool: &[String]);

    /// The test-only API base its mechanism is pointed at (mechanism name, base URL),
    /// if it needs one.
    fn api_base(&self) -> Option<(&'static str, String)> {
        None
    }

    /// The jobs this world wants in a new configuration (may be none).
    fn jobs(&mut self, rng: &mut Rng) -> Vec<WorldJob>;

    /// A configuration was applied; `in_use` if it has jobs of this world (a provider
    /// that stopped forgets what it knew).
    fn reloaded(&mut self, in_use: bool) {
        let _ = in_use;
    }

    /// Answers `op` if it is this world's (`None` otherwise; `Err` for an operation
    /// the agent should never have started).
    fn answer(&mut self, id: RequestId, op: &IoOp, rng: &mut Rng)
    -> Option<Result<Answer, String>>;

    /// Bytes the agent wrote on stream `id` (`None` if the stream is not this world's).
    fn send(
        &mut self,
        id: RequestId,
        data: &[u8],
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let _ = (id, data, rng);
        None
    }

    /// The agent cancelled operation `id` (a stream's server side closes).
    fn closed(&mut self, id: RequestId) {
        let _ = id;
    }

    /// Changes the world; returns what to tell watches at once (on a stream: after
    /// what is already on its way).
    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)>;

    /// The addresses its jobs should scrape once the agent has caught up.
    fn addresses(&self) -> Vec<String>;

    /// How long after a change the agent has surely caught up (refresh, latency).
    fn settle(&self) -> Duration;

    /// Checks at the end of a run (after shutdown) against the operations left open.
    fn check_end(&self, open: &BTreeMap<RequestId, IoOp>) -> Result<(), String> {
        let _ = open;
        Ok(())
    }

    /// The world's state, for a failure message.
    fn describe(&self) -> String;
}

/// Every world, one per running mechanism (static configurations need none).
pub(crate) fn worlds() -> Vec<Box<dyn SdWorld>> {
    vec![
        Box::new(consul::ConsulWorld::default()),
        Box::new(cloud::CloudWorld::<crate::digitalocean::Account>::default()),
        Box::new(cloud::CloudWorld::<crate::hetzner::Project>::default()),
        Box::new(cloud::CloudWorld::<crate::vultr::Account>::default()),
        Box::new(cloud::CloudWorld::<crate::linode::Account>::default()),
        Box::new(cloud::CloudWorld::<crate::puppetdb::Db>::default()),
        Box::new(cloud::CloudWorld::<crate::scaleway::Project>::default()),
        Box::new(cloud::CloudWorld::<crate::ionos::Cloud>::default()),
        Box::new(dns::DnsWorld::default()),
        Box::new(docker::DockerWorld::containers()),
        Box::new(docker::DockerWorld::swarm()),
        Box::new(ec2::Ec2World::default()),
        Box::new(eureka::EurekaWorld::default()),
        Box::new(file::FileWorld::default()),
        Box::new(http::HttpWorld::default()),
        Box::new(kube::KubeWorld::default()),
        Box::new(lightsail::LightsailWorld::default()),
        Box::new(marathon::MarathonWorld::default()),
        Box::new(nomad::NomadWorld::default()),
        Box::new(zookeeper::ZkWorld::serverset()),
        Box::new(zookeeper::ZkWorld::nerve()),
    ]
}

/// The keys of the registered worlds, sorted.
pub fn world_keys() -> Vec<&'static str> {
    let mut k: Vec<&'static str> = worlds().iter().map(|w| w.key()).collect();
    k.sort_unstable();
    k
}
