//! ZooKeeper-based discovery: `serverset_sd_configs` (Finagle/Aurora serversets) and
//! `nerve_sd_configs` (Airbnb Nerve registrations), both watching every node under
//! ZooKeeper paths. Validation follows 3.x's `discovery/zookeeper`
//! (`ServersetSDConfig.UnmarshalYAML`, `NerveSDConfig.UnmarshalYAML`); neither block has
//! HTTP client options.
//!
//! Running follows 3.x's `zookeeper.Discovery` (`NewDiscovery`, `Run`) over its
//! `treecache`: one ZooKeeper session per block ([`session`], the client the core speaks
//! over an [`crate::io::IoOp::Stream`], so the shells only move bytes), one [`tree`] per
//! path. Every node under a path is a group whose source is the node's path: one target
//! when its data decodes as a member (`parseServersetMember`, `parseNerveMember`), none
//! otherwise, and an empty group when the node goes. Member data that is not empty and
//! does not decode is also reported as a failure naming the node (3.x drops it
//! silently).

use std::sync::Arc;

use serde::Deserialize;

use super::groups::TargetGroup;
use super::mechanism::{
    Counter, Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut, at, texts,
};
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::io::{IoEvent, IoQueue, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

pub mod jute;
mod member;
mod session;
mod tree;

use session::{Session, SessionEvent};
use tree::Tree;

/// `prometheus_treecache_zookeeper_failures_total`: one counter for both mechanisms, as
/// in 3.x (declared by [`Nerve`] only, so it is exported once).
const FAILURES: &str = "prometheus_treecache_zookeeper_failures_total";

/// A `serverset_sd_configs` or `nerve_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZookeeperSd {
    #[serde(default)]
    servers: Option<Vec<LenientString>>,
    #[serde(default)]
    paths: Option<Vec<LenientString>>,
    #[serde(default)]
    timeout: Nullable<PromDuration>,
}

/// ZooKeeper discovery (serverset or Nerve).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZookeeperSdConfig {
    /// ZooKeeper servers (`host:port`).
    pub servers: Vec<String>,
    /// Paths whose children are the registrations.
    pub paths: Vec<String>,
    /// Session timeout (default 10s).
    pub timeout: PromDuration,
}

/// `serverset_sd_configs` entries.
pub type ServersetSdConfig = ZookeeperSdConfig;
/// `nerve_sd_configs` entries.
pub type NerveSdConfig = ZookeeperSdConfig;

impl RawZookeeperSd {
    /// The checks both blocks make, with `what` naming the block in the messages.
    fn check(self, what: &str) -> Result<ZookeeperSdConfig, Invalid> {
        let servers = texts(self.servers);
        if servers.is_empty() {
            return Err((
                at("servers"),
                format!("{what} SD config must contain at least one Zookeeper server"),
            ));
        }
        let paths = texts(self.paths);
        if paths.is_empty() {
            return Err((
                at("paths"),
                format!("{what} SD config must contain at least one path"),
            ));
        }
        if let Some(i) = paths.iter().position(|p| !p.starts_with('/')) {
            return Err((
                at("paths").index(i),
                format!("{what} SD config paths must begin with '/': {}", paths[i]),
            ));
        }
        Ok(ZookeeperSdConfig {
            servers,
            paths,
            timeout: self.timeout.onto(PromDuration::from_secs(10)),
        })
    }
}

/// `serverset_sd_configs`.
#[derive(Debug)]
pub(crate) struct Serverset;

impl Mechanism for Serverset {
    const KEY: &'static str = "serverset_sd_configs";
    const NAME: &'static str = "serverset";
    const GO_TYPE: &'static str = "zookeeper.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{servers: ['127.0.0.1:2181'], paths: [/services]}");
    type Raw = RawZookeeperSd;
    type Config = ServersetSdConfig;

    fn validate(raw: RawZookeeperSd, _: &SdContext<'_>) -> Result<ServersetSdConfig, Invalid> {
        raw.check("serverset")
    }

    fn machine(c: &ServersetSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(ZkMachine::new(c, cx, Kind::Serverset)))
    }
}

/// `nerve_sd_configs`.
#[derive(Debug)]
pub(crate) struct Nerve;

impl Mechanism for Nerve {
    const KEY: &'static str = "nerve_sd_configs";
    const NAME: &'static str = "nerve";
    const GO_TYPE: &'static str = "zookeeper.plain";
    const RUNS: bool = true;
    const COUNTERS: &'static [Counter] = &[Counter {
        name: FAILURES,
        labels: &[],
        help: "The total number of ZooKeeper failures.",
    }];
    const EXAMPLE: Option<&'static str> = Some("{servers: ['127.0.0.1:2181'], paths: [/nerve]}");
    type Raw = RawZookeeperSd;
    type Config = NerveSdConfig;

    fn validate(raw: RawZookeeperSd, _: &SdContext<'_>) -> Result<NerveSdConfig, Invalid> {
        raw.check("nerve")
    }

    fn machine(c: &NerveSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(ZkMachine::new(c, cx, Kind::Nerve)))
    }
}

/// Which member format the nodes hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Serverset,
    Nerve,
}

/// A running serverset or Nerve provider: one session, one tree per path.
#[derive(Debug)]
struct ZkMachine {
    kind: Kind,
    session: Session,
    trees: Vec<Tree>,
}

impl ZkMachine {
    fn new(c: &ZookeeperSdConfig, cx: &MachineContext<'_>, kind: Kind) -> ZkMachine {
        let mut servers: Vec<session::Server> =
            c.servers.iter().map(|s| session::parse_server(s)).collect();
        // The Go client shuffles the servers once; here the agent's seed and the
        // provider's name decide, so a run is reproducible.
        let mut state = cx.env.seed ^ crate::hash::fnv1a64(cx.name.as_bytes());
        for i in (1..servers.len()).rev() {
            let j = (crate::hash::splitmix64(&mut state) % (i as u64 + 1)) as usize;
            servers.swap(i, j);
        }
        ZkMachine {
            kind,
            session: Session::new(servers, c.timeout.to_std(), Arc::clone(cx.name)),
            trees: c
                .paths
                .iter()
                .enumerate()
                .map(|(i, p)| Tree::new(p, i as u64))
                .collect(),
        }
    }

    /// Routes the session's reports to the trees until none is left, then turns the
    /// trees' node changes into groups.
    fn pump(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        loop {
            let events = std::mem::take(&mut self.session.events);
            if events.is_empty() {
                break;
            }
            for ev in events {
                match ev {
                    SessionEvent::Read { tag, .. } => {
                        let i = Tree::index_of(tag) as usize;
                        if let Some(t) = self.trees.get_mut(i) {
                            t.handle(now, &mut self.session, ev);
                        }
                    }
                    ev => {
                        for t in &mut self.trees {
                            t.handle(now, &mut self.session, ev.clone());
                        }
                    }
                }
            }
        }
        self.session.flush(io);
        let mut groups = Vec::new();
        for t in &mut self.trees {
            for why in t.failures.drain(..) {
                out.count(FAILURES, 1);
                out.failures.push(why);
            }
            for (path, data) in t.events.drain(..) {
                let mut g = TargetGroup {
                    targets: Vec::new(),
                    labels: Labels::empty(),
                    source: path.clone(),
                };
                if let Some(d) = data {
                    let parsed = match self.kind {
                        Kind::Serverset => member::serverset(&d, &path),
                        Kind::Nerve => member::nerve(&d, &path),
                    };
                    match parsed {
                        Ok(l) => g.targets.push(l),
                        // Empty data (a parent node, usually) is no member: quietly none.
                        Err(e) if !d.is_empty() => out.failures.push(e),
                        Err(_) => {}
                    }
                }
                groups.push(g);
            }
        }
        if !groups.is_empty() {
            out.updates.push(groups);
        }
    }
}

impl SdMachine for ZkMachine {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.session.start(now, io);
        for t in &mut self.trees {
            t.sync(now, &mut self.session);
        }
        self.pump(now, io, out);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.session.owns(id)
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        if self.session.handle_io(now, id, ev, io) {
            self.pump(now, io, out);
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.session.handle_timeout(now, io);
        for t in &mut self.trees {
            t.handle_timeout(now, &mut self.session);
        }
        self.pump(now, io, out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.trees
            .iter()
            .filter_map(Tree::poll_timeout)
            .chain(self.session.poll_timeout())
            .min()
    }

    fn stop(&mut self, io: &mut IoQueue) {
        self.session.stop(io);
    }

    fn in_flight(&self) -> usize {
        self.session.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const BOTH: [(&str, &str); 2] = [
        ("serverset_sd_configs", "serverset"),
        ("nerve_sd_configs", "nerve"),
    ];

    #[test]
    fn defaults_are_applied() {
        for (key, _) in BOTH {
            let c: ZookeeperSdConfig = block(key, "servers: ['zk:2181']\npaths: [/services]");
            assert_eq!(c.servers, ["zk:2181"]);
            assert_eq!(c.paths, ["/services"]);
            assert_eq!(c.timeout, PromDuration::from_secs(10), "{key}");
            let c: ZookeeperSdConfig = block(key, "servers: [zk]\npaths: [/a]\ntimeout: ~");
            assert_eq!(c.timeout, PromDuration::ZERO);
        }
    }

    #[test]
    fn servers_and_paths_are_checked() {
        for (key, what) in BOTH {
            assert_eq!(
                error_at(key, "paths: [/a]"),
                (
                    4,
                    9,
                    format!("{what} SD config must contain at least one Zookeeper server")
                )
            );
            assert_eq!(
                error(key, "servers: [zk]\npaths: ~"),
                format!("{what} SD config must contain at least one path")
            );
            assert_eq!(
                error_at(key, "servers: [zk]\npaths: [/a, b/c]"),
                (
                    5,
                    21,
                    format!("{what} SD config paths must begin with '/': b/c")
                )
            );
        }
    }

    #[test]
    fn null_entries_and_unknown_fields() {
        for (key, _) in BOTH {
            null_entry_is_refused(key);
            unknown_field_names(key, "servers: [zk]\npaths: [/a]", "zookeeper.plain");
            assert_eq!(
                error(key, "servers: [zk]\npaths: [/a]\nbearer_token: x"),
                "field bearer_token not found in type zookeeper.plain"
            );
        }
    }
}

/// The provider driven against a scripted server: the test holds the nodes, the helper
/// answers what the provider sends.
#[cfg(test)]
mod machine_tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::jute::{self, ConnectRequest, ConnectResponse, ReplyHeader, Request, Stat};
    use super::*;
    use crate::discovery::mechanism::test_support::Drive;
    use crate::io::{IoCommand, IoOp};

    struct Zk {
        d: Drive<ZkMachine>,
        /// Nodes by path.
        nodes: BTreeMap<String, Vec<u8>>,
        stream: Option<RequestId>,
        /// The current stream's handshake was seen.
        handshook: bool,
        /// Answer nothing.
        mute: bool,
        seen: usize,
        zxid: i64,
        session: i64,
        data_w: BTreeSet<String>,
        child_w: BTreeSet<String>,
        /// Handshakes answered, with the session each asked for.
        handshakes: Vec<i64>,
        set_watches: Vec<Request>,
        closed: bool,
        /// Servers connected to, in order.
        dialed: Vec<(String, u16)>,
    }

    fn config(paths: &[&str]) -> ZookeeperSdConfig {
        ZookeeperSdConfig {
            servers: vec!["127.0.0.1:2181".into(), "127.0.0.2".into()],
            paths: paths.iter().map(|p| p.to_string()).collect(),
            timeout: PromDuration::from_secs(6),
        }
    }

    impl Zk {
        fn new(kind: Kind, paths: &[&str], nodes: &[(&str, &str)]) -> Zk {
            let c = config(paths);
            let d = Drive::start("serverset/0", 1, |cx| ZkMachine::new(&c, cx, kind));
            let mut z = Zk {
                d,
                nodes: nodes
                    .iter()
                    .map(|(p, v)| (p.to_string(), v.as_bytes().to_vec()))
                    .collect(),
                stream: None,
                handshook: false,
                mute: false,
                seen: 0,
                zxid: 10,
                session: 0,
                data_w: BTreeSet::new(),
                child_w: BTreeSet::new(),
                handshakes: Vec::new(),
                set_watches: Vec::new(),
                closed: false,
                dialed: Vec::new(),
            };
            z.serve();
            z
        }

        fn children(&self, path: &str) -> Vec<String> {
            let prefix = if path == "/" {
                "/".to_string()
            } else {
                format!("{path}/")
            };
            self.nodes
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                .map(str::to_owned)
                .collect()
        }

        fn feed(&mut self, frames: Vec<u8>) {
            let id = self.stream.expect("a stream");
            self.d.feed(id, IoEvent::StreamData(&frames));
        }

        /// Answers everything the provider queued, until it asks nothing more.
        fn serve(&mut self) {
            loop {
                let cmds: Vec<(RequestId, Option<IoOp>, Option<Vec<u8>>)> = self.d.io.queue
                    [self.seen..]
                    .iter()
                    .map(|c| match c {
                        IoCommand::Start(id, op) => (*id, Some(op.clone()), None),
                        IoCommand::Send(id, b) => (*id, None, Some(b.clone())),
                        IoCommand::Cancel(id) => (*id, None, None),
                    })
                    .collect();
                self.seen = self.d.io.queue.len();
                if cmds.is_empty() {
                    return;
                }
                for (id, op, bytes) in cmds {
                    match (op, bytes) {
                        (Some(IoOp::Stream(s)), _) => {
                            self.dialed.push((s.host.clone(), s.port));
                            self.stream = Some(id);
                            self.handshook = false;
                            self.d.feed(id, IoEvent::StreamOpened);
                        }
                        (None, Some(b)) if Some(id) == self.stream => self.client_bytes(&b),
                        (None, None) if Some(id) == self.stream => self.stream = None,
                        _ => {}
                    }
                }
            }
        }

        fn client_bytes(&mut self, b: &[u8]) {
            if self.mute {
                return;
            }
            let mut f = jute::Framer::new();
            f.push(b);
            while let Some(payload) = f.next_frame().expect("a valid frame") {
                let payload = payload.to_vec();
                self.client_frame(&payload);
            }
        }

        fn client_frame(&mut self, payload: &[u8]) {
            if !self.handshook {
                self.handshook = true;
                let c = ConnectRequest::decode(payload).unwrap();
                self.handshakes.push(c.session_id);
                if c.session_id == 0 {
                    self.session += 1;
                }
                let r = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: 6000,
                    session_id: self.session,
                    passwd: vec![1; 16],
                };
                self.feed(r.encode());
                return;
            }
            let (xid, req) = Request::decode(payload).unwrap();
            let hdr = |err| ReplyHeader {
                xid,
                zxid: self.zxid,
                err,
            };
            let out = match &req {
                Request::GetData { path, watch } => match self.nodes.get(path) {
                    Some(d) => {
                        if *watch {
                            self.data_w.insert(path.clone());
                        }
                        let mut w = hdr(jute::err::OK).writer();
                        w.buffer(Some(d)).stat(&Stat::default());
                        w.frame()
                    }
                    None => hdr(jute::err::NO_NODE).writer().frame(),
                },
                Request::GetChildren { path, watch } => match self.nodes.get(path) {
                    Some(_) => {
                        if *watch {
                            self.child_w.insert(path.clone());
                        }
                        let c = self.children(path);
                        let mut w = hdr(jute::err::OK).writer();
                        w.strings(c.iter().map(String::as_str))
                            .stat(&Stat::default());
                        w.frame()
                    }
                    None => hdr(jute::err::NO_NODE).writer().frame(),
                },
                Request::Ping => hdr(jute::err::OK).writer().frame(),
                Request::SetWatches { .. } => {
                    self.set_watches.push(req.clone());
                    hdr(jute::err::OK).writer().frame()
                }
                Request::Close => {
                    self.closed = true;
                    return;
                }
                other => panic!("unexpected {other:?}"),
            };
            self.feed(out);
        }

        /// Changes a node as a writer would, firing the watches it triggers.
        fn set(&mut self, path: &str, data: Option<&str>) {
            self.zxid += 1;
            let existed = self.nodes.contains_key(path);
            let parent = match path.rfind('/') {
                Some(0) => "/".to_string(),
                Some(i) => path[..i].to_string(),
                None => unreachable!(),
            };
            let mut fire = Vec::new();
            match data {
                Some(d) => {
                    self.nodes.insert(path.into(), d.as_bytes().to_vec());
                    if existed {
                        if self.data_w.remove(path) {
                            fire.push((jute::event::DATA_CHANGED, path.to_string()));
                        }
                    } else if self.child_w.remove(&parent) {
                        fire.push((jute::event::CHILDREN_CHANGED, parent.clone()));
                    }
                }
                None => {
                    self.nodes.remove(path);
                    if self.data_w.remove(path) | self.child_w.remove(path) {
                        fire.push((jute::event::DELETED, path.to_string()));
                    }
                    if self.child_w.remove(&parent) {
                        fire.push((jute::event::CHILDREN_CHANGED, parent.clone()));
                    }
                }
            }
            for (kind, path) in fire {
                let ev = jute::WatcherEvent {
                    kind,
                    state: 3,
                    path,
                };
                self.feed(ev.encode(self.zxid));
            }
            self.serve();
        }

        /// Addresses of the groups in the updates so far, latest per source.
        fn targets(&self) -> BTreeMap<String, Vec<String>> {
            let mut m = BTreeMap::new();
            for batch in &self.d.out.updates {
                for g in batch {
                    m.insert(
                        g.source.clone(),
                        g.targets
                            .iter()
                            .map(|t| t.get("__address__").unwrap_or("").to_owned())
                            .collect(),
                    );
                }
            }
            m.retain(|_, v: &mut Vec<String>| !v.is_empty());
            m
        }

        fn updates(&self) -> usize {
            self.d.out.updates.len()
        }

        /// Moves through every deadline up to `t` seconds, answering as it goes.
        fn run_until(&mut self, secs: u64) {
            let end = Instant(secs * 1_000_000_000);
            while self.d.m.poll_timeout().is_some_and(|t| t <= end) {
                self.d.advance();
                self.serve();
            }
        }
    }

    fn member(port: u16) -> String {
        format!(r#"{{"serviceEndpoint":{{"host":"10.1.0.1","port":{port}}},"status":"ALIVE"}}"#)
    }

    fn tree() -> Vec<(String, String)> {
        vec![
            ("/".into(), String::new()),
            ("/svc".into(), String::new()),
            ("/svc/web".into(), String::new()),
            ("/svc/web/member_1".into(), member(1)),
            ("/svc/web/member_2".into(), member(2)),
        ]
    }

    fn start(paths: &[&str]) -> Zk {
        let t = tree();
        let refs: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        Zk::new(Kind::Serverset, paths, &refs)
    }

    fn addrs(z: &Zk) -> Vec<String> {
        z.targets().into_values().flatten().collect()
    }

    #[test]
    fn every_member_under_the_path_is_a_group_of_its_own() {
        let z = start(&["/svc/web"]);
        assert_eq!(addrs(&z), ["10.1.0.1:1", "10.1.0.1:2"]);
        let all: Vec<String> =
            z.d.out
                .updates
                .concat()
                .into_iter()
                .map(|g| g.source)
                .collect();
        // The path itself (empty data: no target, no failure) and each member.
        assert_eq!(all, ["/svc/web", "/svc/web/member_1", "/svc/web/member_2"]);
        assert!(z.d.out.failures.is_empty(), "{:?}", z.d.out.failures);
        assert_eq!(z.handshakes, [0]);
        // A watch on every node, data and children.
        assert_eq!(z.data_w.len(), 3);
        assert_eq!(z.child_w.len(), 3);
    }

    #[test]
    fn members_added_changed_and_removed_follow_their_watches() {
        let mut z = start(&["/svc/web"]);
        z.set("/svc/web/member_3", Some(&member(3)));
        assert_eq!(addrs(&z), ["10.1.0.1:1", "10.1.0.1:2", "10.1.0.1:3"]);
        z.set("/svc/web/member_1", Some(&member(11)));
        assert_eq!(addrs(&z), ["10.1.0.1:11", "10.1.0.1:2", "10.1.0.1:3"]);
        let before = z.updates();
        z.set("/svc/web/member_2", None);
        assert_eq!(addrs(&z), ["10.1.0.1:11", "10.1.0.1:3"]);
        // The deletion is one empty group for the member, nothing else.
        let last: Vec<_> = z.d.out.updates[before..].concat();
        assert!(
            last.iter()
                .all(|g| g.source == "/svc/web/member_2" && g.targets.is_empty())
        );
        // Nested paths are watched recursively.
        z.set("/svc/web/member_3/sub", Some(&member(4)));
        assert!(addrs(&z).contains(&"10.1.0.1:4".to_string()));
        assert!(z.d.out.failures.is_empty());
    }

    #[test]
    fn bad_member_data_is_reported_with_its_node_and_yields_no_target() {
        let mut z = start(&["/svc/web"]);
        z.set("/svc/web/member_9", Some("{not json"));
        assert_eq!(addrs(&z), ["10.1.0.1:1", "10.1.0.1:2"]);
        assert_eq!(z.d.out.failures.len(), 1);
        assert!(
            z.d.out.failures[0].contains("/svc/web/member_9"),
            "{:?}",
            z.d.out.failures
        );
        // Not a ZooKeeper failure.
        assert_eq!(z.d.count(FAILURES), 0);
    }

    #[test]
    fn a_missing_path_is_a_failure_retried_every_10s() {
        let mut z = start(&["/nope"]);
        assert_eq!(z.d.count(FAILURES), 1);
        assert!(z.d.out.failures[0].contains("path /nope does not exist"));
        z.run_until(9);
        assert_eq!(z.d.count(FAILURES), 1);
        z.run_until(10);
        assert_eq!(z.d.count(FAILURES), 2);
        // Once it exists, the next retry finds it.
        z.nodes.insert("/nope".into(), vec![]);
        z.nodes.insert("/nope/m".into(), member(7).into_bytes());
        z.run_until(20);
        assert_eq!(addrs(&z), ["10.1.0.1:7"]);
        assert_eq!(z.d.count(FAILURES), 2);
    }

    #[test]
    fn a_lost_connection_resumes_the_session_and_rearms_the_watches() {
        let mut z = start(&["/svc/web"]);
        let id = z.stream.unwrap();
        z.d.feed(id, IoEvent::StreamClosed);
        z.serve();
        // Nothing was in flight: no failure; the same session resumed on the other
        // server, with its watches.
        assert_eq!(z.d.count(FAILURES), 0);
        assert_eq!(z.handshakes, [0, 1]);
        assert_eq!(z.dialed.len(), 2);
        assert_ne!(z.dialed[0], z.dialed[1]);
        match &z.set_watches[..] {
            [Request::SetWatches { data, child, .. }] => {
                assert_eq!(data.len(), 3);
                assert_eq!(child.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        z.set("/svc/web/member_3", Some(&member(3)));
        assert_eq!(addrs(&z).len(), 3);
    }

    #[test]
    fn a_large_tree_rearms_its_watches_in_bounded_requests() {
        let name = "m".repeat(60);
        let mut t: Vec<(String, String)> = vec![("/big".into(), String::new())];
        for i in 0..4000 {
            t.push((format!("/big/{name}{i:05}"), member(1)));
        }
        let refs: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut z = Zk::new(Kind::Serverset, &["/big"], &refs);
        let id = z.stream.unwrap();
        z.d.feed(id, IoEvent::StreamClosed);
        z.serve();
        // 8,002 watches on ~70-byte paths: about 560 KiB, in five requests or more.
        assert!(z.set_watches.len() >= 5, "{} requests", z.set_watches.len());
        let (mut data, mut child) = (BTreeSet::new(), BTreeSet::new());
        for r in &z.set_watches {
            let Request::SetWatches {
                data: d, child: c, ..
            } = r
            else {
                panic!("{r:?}")
            };
            let size: usize = d.iter().chain(c).map(|p| p.len() + 4).sum();
            assert!(size < 140 * 1024, "{size} bytes of paths in one request");
            data.extend(d.iter().cloned());
            child.extend(c.iter().cloned());
        }
        assert_eq!(data.len(), 4001);
        assert_eq!(child.len(), 4001);
    }

    #[test]
    fn reads_cut_by_a_lost_connection_fail_and_the_tree_is_read_again() {
        let t = tree();
        let refs: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let c = config(&["/svc/web"]);
        let d = Drive::start("serverset/0", 1, |cx| {
            ZkMachine::new(&c, cx, Kind::Serverset)
        });
        let mut z = Zk {
            d,
            nodes: refs
                .iter()
                .map(|(p, v)| (p.to_string(), v.as_bytes().to_vec()))
                .collect(),
            stream: None,
            handshook: false,
            mute: false,
            seen: 0,
            zxid: 1,
            session: 0,
            data_w: BTreeSet::new(),
            child_w: BTreeSet::new(),
            handshakes: Vec::new(),
            set_watches: Vec::new(),
            closed: false,
            dialed: Vec::new(),
        };
        // Connect, then drop the connection before any read is answered.
        let id = match &z.d.io.queue[0] {
            IoCommand::Start(id, IoOp::Stream(_)) => *id,
            other => panic!("{other:?}"),
        };
        z.seen = 1;
        z.d.feed(id, IoEvent::StreamOpened);
        z.d.feed(id, IoEvent::Failed("connection reset by peer"));
        assert_eq!(z.d.count(FAILURES), 0, "reads waited for the session");
        z.stream = None;
        z.serve();
        assert_eq!(addrs(&z).len(), 2);
        // Now one with reads in flight.
        let id = z.stream.unwrap();
        z.feed(
            jute::WatcherEvent {
                kind: jute::event::CHILDREN_CHANGED,
                state: 3,
                path: "/svc/web".into(),
            }
            .encode(99),
        );
        // The re-read is queued; the connection dies before the answer.
        assert!(z.d.io.queue.len() > z.seen, "a re-read was sent");
        z.seen = z.d.io.queue.len();
        z.d.feed(id, IoEvent::StreamClosed);
        assert_eq!(z.d.count(FAILURES), 1);
        assert!(
            z.d.out.failures[0].contains("connection closed"),
            "{:?}",
            z.d.out.failures
        );
        // Watches are ignored while failing; 10 s later the tree is read again.
        z.serve();
        z.set("/svc/web/member_1", None);
        assert_eq!(addrs(&z).len(), 2);
        z.run_until(9);
        assert_eq!(addrs(&z).len(), 2);
        z.run_until(10);
        assert_eq!(addrs(&z), ["10.1.0.1:2"]);
        assert_eq!(z.d.count(FAILURES), 1);
    }

    #[test]
    fn an_expired_session_is_replaced_and_the_tree_read_again() {
        let mut z = start(&["/svc/web"]);
        let id = z.stream.unwrap();
        z.d.feed(id, IoEvent::StreamClosed);
        // The server forgot the session: the next handshake is answered with timeout 0.
        z.session = 100;
        let next = z.d.io.queue.len();
        z.seen = next;
        let id2 = match &z.d.io.queue[next - 1] {
            IoCommand::Start(id, IoOp::Stream(_)) => *id,
            other => panic!("{other:?}"),
        };
        z.stream = Some(id2);
        z.d.feed(id2, IoEvent::StreamOpened);
        z.seen = z.d.io.queue.len();
        let expired = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: vec![0; 16],
        };
        z.feed(expired.encode());
        assert_eq!(z.d.count(FAILURES), 1);
        assert!(
            z.d.out.failures[0].contains("expired"),
            "{:?}",
            z.d.out.failures
        );
        // A new session (id 0 asked) comes up; the tree is read again 10 s later and a
        // member removed meanwhile goes.
        z.data_w.clear();
        z.child_w.clear();
        z.serve();
        assert_eq!(z.handshakes.last(), Some(&0));
        z.nodes.remove("/svc/web/member_1");
        z.run_until(10);
        assert_eq!(addrs(&z), ["10.1.0.1:2"]);
        assert_eq!(z.d.count(FAILURES), 1);
    }

    #[test]
    fn pings_keep_the_session_and_silence_drops_the_connection() {
        let mut z = start(&["/svc/web"]);
        // Negotiated 6 s: receive timeout 4 s, ping every 2 s. Answered pings keep the
        // one connection for a minute.
        z.run_until(60);
        assert_eq!(z.dialed.len(), 1);
        // The server stops answering: 4 s after the last byte the connection goes and
        // the next server is dialled.
        let id = z.stream.unwrap();
        z.mute = true;
        z.run_until(63);
        assert_eq!(z.dialed.len(), 1);
        z.mute = false;
        z.run_until(64);
        assert!(z.d.cancelled().contains(&id));
        assert_eq!(z.dialed.len(), 2);
        // Nothing was in flight (pings are no reads): no failure, the session resumed.
        assert_eq!(z.d.count(FAILURES), 0);
        assert_eq!(z.handshakes, [0, 1]);
    }

    #[test]
    fn stop_closes_the_session() {
        let mut z = start(&["/svc/web", "/svc"]);
        let id = z.stream.unwrap();
        z.d.m.stop(&mut z.d.io);
        z.serve();
        assert!(z.closed);
        assert!(z.d.cancelled().contains(&id));
        assert_eq!(z.d.m.in_flight(), 0);
    }

    #[test]
    fn nerve_members_and_overlapping_paths() {
        let nodes = [
            ("/nerve", ""),
            ("/nerve/a", r#"{"host":"127.0.0.1","port":9100,"name":"a"}"#),
        ];
        let z = Zk::new(Kind::Nerve, &["/nerve", "/nerve/a"], &nodes);
        assert_eq!(addrs(&z), ["127.0.0.1:9100"]);
        let g = &z.d.out.updates.concat();
        let a: Vec<_> = g.iter().filter(|g| g.source == "/nerve/a").collect();
        assert_eq!(a.len(), 2, "both trees report the node");
        assert_eq!(a[0].targets[0].get("__meta_nerve_endpoint_name"), Some("a"));
    }

    #[test]
    fn same_seed_same_server_order() {
        let order = |seed| {
            let c = ZookeeperSdConfig {
                servers: (1..=6).map(|i| format!("10.0.0.{i}:2181")).collect(),
                paths: vec!["/a".into()],
                timeout: PromDuration::from_secs(10),
            };
            let mut d = Drive::start("nerve/0", seed, |cx| ZkMachine::new(&c, cx, Kind::Nerve));
            let mut hosts = Vec::new();
            for _ in 0..6 {
                let Some(IoCommand::Start(id, IoOp::Stream(s))) = d.io.queue.last() else {
                    panic!("a connection")
                };
                let id = *id;
                hosts.push(s.host.clone());
                d.feed(id, IoEvent::Failed("refused"));
            }
            hosts
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        let mut all = order(3);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 6, "every server tried once per cycle");
    }
}
