//! ZooKeeper discovery's worlds (`serverset_sd_configs` and `nerve_sd_configs`, one world
//! each): the server model of [`crate::zookeeper`] behind two host names, serving the
//! agent's sessions byte for byte over streams. Members are created, moved and deleted
//! (their watches fire), now and then a member holds garbage, a connection drops, a
//! connection attempt is refused, or the session expires (the agent reads the tree again
//! 10 s later). The addresses expected are those of the members under the path.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use trawl_core::io::{IoOp, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port};
use crate::sim::Rng;
use crate::zookeeper::Server;

/// Which member format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Serverset,
    Nerve,
}

/// The world.
#[derive(Debug)]
pub(crate) struct ZkWorld {
    kind: Kind,
    server: Server,
    /// Streams this world serves (connected or being refused).
    mine: BTreeSet<RequestId>,
    next_member: u64,
}

impl ZkWorld {
    /// The `serverset_sd_configs` world.
    pub(crate) fn serverset() -> ZkWorld {
        ZkWorld::new(Kind::Serverset)
    }

    /// The `nerve_sd_configs` world.
    pub(crate) fn nerve() -> ZkWorld {
        ZkWorld::new(Kind::Nerve)
    }

    fn new(kind: Kind) -> ZkWorld {
        let mut server = Server::new();
        server.create_all(Self::path_of(kind), b"");
        ZkWorld {
            kind,
            server,
            mine: BTreeSet::new(),
            next_member: 0,
        }
    }

    fn path_of(kind: Kind) -> &'static str {
        match kind {
            Kind::Serverset => "/aurora/prod/web",
            Kind::Nerve => "/nerve/services/api",
        }
    }

    fn path(&self) -> &'static str {
        Self::path_of(self.kind)
    }

    /// The world's server names (each world recognises its own streams by them).
    fn hosts(&self) -> [&'static str; 2] {
        match self.kind {
            Kind::Serverset => ["zk-a1.sim", "zk-a2.sim"],
            Kind::Nerve => ["zk-b1.sim", "zk-b2.sim"],
        }
    }

    fn member(&self, host: &str, port: u16) -> Vec<u8> {
        match self.kind {
            Kind::Serverset => format!(
                r#"{{"serviceEndpoint":{{"host":"{host}","port":{port}}},"additionalEndpoints":{{"admin":{{"host":"{host}","port":9990}}}},"status":"ALIVE","shard":0}}"#
            ),
            Kind::Nerve => format!(r#"{{"host":"{host}","port":{port},"name":"api"}}"#),
        }
        .into_bytes()
    }

    /// The members' addresses, as the mechanism decodes them.
    fn decoded(&self) -> Vec<String> {
        let prefix = format!("{}/", self.path());
        self.server
            .subtree(self.path())
            .into_iter()
            .filter(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(_, d)| {
                let v: serde_json::Value = serde_json::from_slice(&d).ok()?;
                let e = match self.kind {
                    Kind::Serverset => &v["serviceEndpoint"],
                    Kind::Nerve => &v,
                };
                Some(format!("{}:{}", e["host"].as_str()?, e["port"].as_u64()?))
            })
            .collect()
    }

    fn add(&mut self, rng: &mut Rng, pool: &[String]) -> Vec<(u64, Vec<u8>)> {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return Vec::new();
        };
        self.next_member += 1;
        let path = format!("{}/member_{:010}", self.path(), self.next_member);
        let data = self.member(&host, port);
        self.server.create(&path, &data).1
    }

    fn members(&self) -> Vec<String> {
        let prefix = format!("{}/", self.path());
        self.server
            .subtree(self.path())
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.starts_with(&prefix))
            .collect()
    }
}

impl SdWorld for ZkWorld {
    fn key(&self) -> &'static str {
        match self.kind {
            Kind::Serverset => "serverset_sd_configs",
            Kind::Nerve => "nerve_sd_configs",
        }
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        for _ in 0..3 {
            self.add(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        let [a, b] = self.hosts();
        let (name, key) = match self.kind {
            Kind::Serverset => ("serverset", "serverset_sd_configs"),
            Kind::Nerve => ("nerve", "nerve_sd_configs"),
        };
        vec![WorldJob {
            name,
            sd: format!(
                "    {key}: [{{servers: ['{a}:2181', '{b}'], paths: ['{}'], timeout: 6s}}]\n",
                self.path()
            ),
            follows_variant: true,
        }]
    }

    fn answer(
        &mut self,
        id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let IoOp::Stream(s) = op else { return None };
        if !self.hosts().contains(&s.host.as_str()) {
            return None;
        }
        if s.port != 2181 {
            return Some(Err(format!("stream to {}:{}, not 2181", s.host, s.port)));
        }
        let latency = Duration::from_millis(1 + rng.below(20));
        if rng.chance(5) {
            return Some(Ok(Answer::After(
                latency,
                vec![Reply::failed("connection refused")],
            )));
        }
        self.mine.insert(id);
        self.server.connect(id.0);
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
        let latency = Duration::from_millis(1 + rng.below(5));
        Some(Ok(match self.server.input(id.0, data) {
            Ok(b) if b.is_empty() => Answer::Hold,
            Ok(b) => Answer::After(latency, vec![Reply::Io(OwnedIoEvent::StreamData(b))]),
            Err(b) => {
                self.mine.remove(&id);
                let mut events = Vec::new();
                if !b.is_empty() {
                    events.push(Reply::Io(OwnedIoEvent::StreamData(b)));
                }
                events.push(Reply::Io(OwnedIoEvent::StreamClosed));
                Answer::After(latency, events)
            }
        }))
    }

    fn closed(&mut self, id: RequestId) {
        if self.mine.remove(&id) {
            self.server.disconnect(id.0);
        }
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        let mut notes: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut closed: Vec<u64> = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let members = self.members();
            match rng.below(20) {
                0..=7 => notes.extend(self.add(rng, pool)),
                8..=11 if !members.is_empty() => {
                    let m = &members[rng.below(members.len() as u64) as usize];
                    notes.extend(self.server.delete(m).1);
                }
                12..=14 if !members.is_empty() => {
                    let m = members[rng.below(members.len() as u64) as usize].clone();
                    if let Some((host, port)) = pick_host_port(rng, pool) {
                        let d = self.member(&host, port);
                        notes.extend(self.server.set(&m, &d).1);
                    }
                }
                15 if !members.is_empty() => {
                    let m = members[rng.below(members.len() as u64) as usize].clone();
                    notes.extend(self.server.set(&m, b"{\"serviceEndpoint\":").1);
                }
                16 | 17 => {
                    // A connection drops.
                    let conns = self.server.connections();
                    if let Some(c) = conns.get(rng.below(conns.len().max(1) as u64) as usize) {
                        self.server.disconnect(*c);
                        closed.push(*c);
                    }
                }
                18 => {
                    // The session expires on the server.
                    let conns = self.server.connections();
                    if let Some(c) = conns.first()
                        && let Some(s) = self.server.session_of(*c)
                    {
                        closed.extend(self.server.expire(s));
                    }
                }
                _ => {}
            }
        }
        let mut tell = Vec::new();
        for (conn, bytes) in notes {
            let id = RequestId(conn);
            if open.contains_key(&id) && !closed.contains(&conn) {
                tell.push((id, OwnedIoEvent::StreamData(bytes)));
            }
        }
        for conn in closed {
            let id = RequestId(conn);
            self.mine.remove(&id);
            if open.contains_key(&id) {
                tell.push((id, OwnedIoEvent::StreamClosed));
            }
        }
        tell
    }

    fn addresses(&self) -> Vec<String> {
        self.decoded()
    }

    fn settle(&self) -> Duration {
        // A session expired or a read cut by a dropped connection: the tree is read
        // again 10 s later (after a second's pause if both servers refused).
        Duration::from_secs(14)
    }

    fn describe(&self) -> String {
        format!(
            "{:?} members {:?} sessions {} conns {:?}",
            self.kind,
            self.server.subtree(self.path()),
            self.server.sessions(),
            self.server.connections()
        )
    }
}
