//! Docker discovery's worlds: the fake Engine's model (`crate::docker::Engine`, the one
//! the loopback fake serves) behind a Unix socket, spoken to byte for byte over the
//! agent's streams. One world lists containers (`docker_sd_configs`) that are started,
//! stopped and moved; the other a swarm's tasks (`dockerswarm_sd_configs`, role
//! `tasks`, filtered to the running ones) on fixed nodes, tasks started, shut down and
//! removed, reached at their host-mode ports on their node's address.
//!
//! Faults hit the main listing only (containers, tasks): a 500 with the daemon's JSON
//! message, a body that is not JSON, a connection closed before the answer, and spells
//! when the daemon keeps failing. The other listings (networks, services, nodes) always
//! answer, so the addresses a job should scrape are those of the last main listing
//! served well.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use trawl_core::io::{IoOp, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port};
use crate::consul::Query;
use crate::docker::{Container, Engine, network, node, service, task};
use crate::sim::Rng;

/// The world.
#[derive(Debug)]
pub(crate) struct DockerWorld {
    swarm: bool,
    socket: &'static str,
    engine: Engine,
    next: u64,
    /// The addresses of the last main listing served.
    served: Vec<String>,
    failing: bool,
    /// Streams this world serves.
    mine: BTreeSet<RequestId>,
}

impl DockerWorld {
    /// The containers world.
    pub(crate) fn containers() -> DockerWorld {
        DockerWorld::new(false, "/sim/docker.sock")
    }

    /// The swarm world.
    pub(crate) fn swarm() -> DockerWorld {
        DockerWorld::new(true, "/sim/swarm.sock")
    }

    fn new(swarm: bool, socket: &'static str) -> DockerWorld {
        DockerWorld {
            swarm,
            socket,
            engine: Engine::new(),
            next: 0,
            served: Vec::new(),
            failing: false,
            mine: BTreeSet::new(),
        }
    }

    fn start_one(&mut self, rng: &mut Rng, pool: &[String]) {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return;
        };
        self.next += 1;
        let n = self.next;
        if self.swarm {
            let svc = format!("svc-{}", rng.below(3));
            let t = task(
                &format!("task-{n}"),
                &svc,
                &format!("node-{host}"),
                (n % 5) as u32,
                "running",
                &[(9100, port)],
                &[],
            );
            self.engine.tasks.insert(format!("task-{n}"), t);
        } else {
            let mut c = Container::new(&format!("ctr-{n}"), &format!("app-{n}"), &host)
                .label("team", "sim");
            c.ports.push((port, 0, String::new(), "tcp".into()));
            self.engine.put_container(&c);
        }
    }

    /// The addresses the main listing names now.
    fn addresses_now(&self) -> Vec<String> {
        let mut v = BTreeSet::new();
        if self.swarm {
            for t in self.engine.tasks.values() {
                if t["DesiredState"] != "running" {
                    continue;
                }
                let node = t["NodeID"].as_str().unwrap_or("");
                let host = node.strip_prefix("node-").unwrap_or("");
                for p in t["Status"]["PortStatus"]["Ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    v.insert(format!("{host}:{}", p["PublishedPort"]));
                }
            }
        } else {
            for c in self.engine.containers.values() {
                let ip = c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
                    .as_str()
                    .unwrap_or("");
                for p in c["Ports"].as_array().into_iter().flatten() {
                    v.insert(format!("{ip}:{}", p["PrivatePort"]));
                }
            }
        }
        v.into_iter().collect()
    }

    fn main_listing(&self) -> &'static str {
        if self.swarm {
            "/tasks"
        } else {
            "/containers/json"
        }
    }
}

/// An HTTP/1.1 response's bytes.
fn response(status: u16, headers: &[(String, String)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", crate::reason(status));
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

impl SdWorld for DockerWorld {
    fn key(&self) -> &'static str {
        if self.swarm {
            "dockerswarm_sd_configs"
        } else {
            "docker_sd_configs"
        }
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        if self.swarm {
            let ov = network("net-ov", "ingress", "swarm", &[]);
            self.engine.networks.insert("net-ov".into(), ov);
            for i in 0..3 {
                let id = format!("svc-{i}");
                let s = service(&id, &format!("app-{i}"), &[("tier", "sim")], &[], &[]);
                self.engine.services.insert(id, s);
            }
            let hosts: BTreeSet<String> = pool
                .iter()
                .filter_map(|a| a.rsplit_once(':').map(|(h, _)| h.to_owned()))
                .collect();
            for (i, h) in hosts.iter().enumerate() {
                let id = format!("node-{h}");
                let n = node(&id, &format!("host-{i}"), h, i == 0, &[]);
                self.engine.nodes.insert(id, n);
            }
        } else {
            let b = network("net-bridge", "bridge", "local", &[]);
            self.engine.networks.insert("net-bridge".into(), b);
        }
        for _ in 0..4 {
            self.start_one(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        let sd = if self.swarm {
            format!(
                "    dockerswarm_sd_configs: [{{host: 'unix://{}', role: tasks, refresh_interval: 30s, filters: [{{name: desired-state, values: [running]}}]}}]\n",
                self.socket
            )
        } else {
            format!(
                "    docker_sd_configs: [{{host: 'unix://{}', refresh_interval: 30s}}]\n",
                self.socket
            )
        };
        vec![WorldJob {
            name: if self.swarm { "swarm" } else { "docker" },
            sd,
            follows_variant: true,
        }]
    }

    fn reloaded(&mut self, in_use: bool) {
        if !in_use {
            self.served.clear();
        }
    }

    fn answer(
        &mut self,
        id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let IoOp::Stream(s) = op else { return None };
        if s.unix_path.as_deref() != Some(self.socket) {
            return None;
        }
        self.mine.insert(id);
        let latency = Duration::from_millis(1 + rng.below(20));
        Some(Ok(Answer::After(
            latency,
            vec![Reply::Io(OwnedIoEvent::StreamOpened)],
        )))
    }

    fn send(
        &mut self,
        id: RequestId,
        data: &[u8],
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        if !self.mine.contains(&id) {
            return None;
        }
        let mut hs = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut hs);
        let target = match req.parse(data) {
            Ok(httparse::Status::Complete(_)) if req.method == Some("GET") => {
                req.path.unwrap_or("/").to_owned()
            }
            _ => {
                return Some(Err(format!(
                    "not one whole GET request: {:?}",
                    String::from_utf8_lossy(data)
                )));
            }
        };
        if req.headers.iter().all(|h| h.name != "Host") {
            return Some(Err("a request without Host".into()));
        }
        let q = Query::parse(&target, Vec::new());
        let latency = Duration::from_millis(1 + rng.below(50));
        let main = q.path.ends_with(self.main_listing());
        let bytes = if main && (self.failing || rng.chance(4)) {
            match rng.below(3) {
                0 => response(500, &[], r#"{"message":"sim: daemon failing"}"#),
                1 => response(200, &[], "this is not JSON"),
                _ => {
                    self.mine.remove(&id);
                    return Some(Ok(Answer::After(
                        latency,
                        vec![Reply::Io(OwnedIoEvent::StreamClosed)],
                    )));
                }
            }
        } else {
            let (status, headers, body) = self.engine.answer(&q);
            if main && status == 200 {
                self.served = self.addresses_now();
            }
            response(status, &headers, &body)
        };
        // Now and then in two pieces.
        let mut events = Vec::new();
        if bytes.len() > 8 && rng.chance(3) {
            let cut = 1 + rng.below(bytes.len() as u64 - 1) as usize;
            events.push(Reply::Io(OwnedIoEvent::StreamData(bytes[..cut].to_vec())));
            events.push(Reply::Wait(1));
            events.push(Reply::Io(OwnedIoEvent::StreamData(bytes[cut..].to_vec())));
        } else {
            events.push(Reply::Io(OwnedIoEvent::StreamData(bytes)));
        }
        Some(Ok(Answer::After(latency, events)))
    }

    fn closed(&mut self, id: RequestId) {
        self.mine.remove(&id);
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        _open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        for _ in 0..1 + rng.below(3) {
            let ids: Vec<String> = if self.swarm {
                self.engine.tasks.keys().cloned().collect()
            } else {
                self.engine.containers.keys().cloned().collect()
            };
            let pick = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize].clone();
            match rng.below(4) {
                0 => self.start_one(rng, pool),
                1 if !ids.is_empty() => {
                    let id = pick(rng);
                    self.engine.containers.remove(&id);
                    self.engine.tasks.remove(&id);
                }
                2 if !ids.is_empty() && self.swarm => {
                    // A task shuts down (filtered out by its desired state).
                    let id = pick(rng);
                    if let Some(t) = self.engine.tasks.get_mut(&id) {
                        t["DesiredState"] = "shutdown".into();
                        t["Status"]["State"] = "shutdown".into();
                    }
                }
                2 if !ids.is_empty() => {
                    // A container restarts elsewhere (a new address and port).
                    let id = pick(rng);
                    if let Some((host, port)) = pick_host_port(rng, pool) {
                        let mut c = Container::new(&id, &id, &host).label("team", "sim");
                        c.ports.push((port, 0, String::new(), "tcp".into()));
                        self.engine.put_container(&c);
                    }
                }
                _ => {}
            }
        }
        self.failing = rng.chance(10);
        Vec::new()
    }

    fn addresses(&self) -> Vec<String> {
        self.served.clone()
    }

    fn settle(&self) -> Duration {
        // One refresh (a ping first after a failure) and its answers' latency.
        Duration::from_millis(30_500)
    }

    fn describe(&self) -> String {
        format!(
            "{} served {:?}; now {:?}",
            self.key(),
            self.served,
            self.addresses_now()
        )
    }
}
