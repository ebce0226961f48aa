//! The running provider of one `kubernetes_sd_configs` block: 3.x's `Discovery.Run`
//! with one discoverer for the block's role (`kubernetes.go`), its informers
//! ([`Informer`]) per namespace, and the joins between them.
//!
//! How it differs from 3.x, deliberately:
//! - **Incremental and complete joins.** Each group records which other objects it read
//!   (its service, pods, nodes, namespace, owners). A change of any of them rebuilds
//!   exactly the groups that read it, and only groups that really changed go on to the
//!   pools. 3.x rebuilds endpoint slices only when the slice or its service changes and
//!   endpoints on a pod's phase change, so a relabeled pod shows stale labels until the
//!   next slice change; trawl's groups always equal what the stores imply.
//! - The first batch goes out once every informer the role reads has listed (as
//!   3.x's `WaitForCacheSync`), except ReplicaSet and Job informers: their names join
//!   the groups when they arrive, so a missing permission on them never holds up the
//!   targets.
//! - Duplicate names in `namespaces.names` are watched once (3.x watches them twice
//!   and sends the same groups twice).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::build::{self, Lookup};
use super::informer::{ChangeKind, Endpoint, Informer, InformerOut};
use super::objects::{Object, Resource};
use super::{KubernetesSdConfig, kubeconfig};
use crate::common::http::{Authorization, HttpClientConfig};
use crate::discovery::mechanism::{MachineContext, SdMachine, SdOut};
use crate::io::{self, IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::time::Instant;

/// `prometheus_sd_kubernetes_failures_total`.
pub(crate) const FAILURES: &str = "prometheus_sd_kubernetes_failures_total";
/// `prometheus_sd_kubernetes_events_total`.
pub(crate) const EVENTS: &str = "prometheus_sd_kubernetes_events_total";
/// Largest kubeconfig or namespace file read.
const FILE_LIMIT: u64 = 1 << 20;

/// A file the provider reads before it can start its informers.
#[derive(Debug)]
enum Read {
    Kubeconfig(String),
    Namespace(String),
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Reading the kubeconfig or the own-namespace file.
    Setup,
    /// Informers running.
    Running,
    /// Could not be created; does nothing until replaced.
    Failed,
}

/// The stores of a provider's informers, found by resource and namespace.
struct Stores<'a> {
    informers: &'a [Informer],
    index: &'a BTreeMap<(Resource, String), usize>,
}

impl Lookup for Stores<'_> {
    fn get(&self, resource: Resource, key: &str) -> Option<&Object> {
        let ns = if resource.cluster_scoped() {
            ""
        } else {
            key.split_once('/').map_or("", |(ns, _)| ns)
        };
        [ns, ""]
            .iter()
            .filter_map(|n| self.index.get(&(resource, (*n).to_owned())))
            .find_map(|i| self.informers[*i].store.get(key))
    }
}

/// One block's provider.
#[derive(Debug)]
pub(crate) struct KubernetesSd {
    cfg: KubernetesSdConfig,
    name: Arc<str>,
    user_agent: Arc<str>,
    page_limit: u64,
    seed: u64,
    service: Option<(String, String)>,
    sa_dir: Arc<str>,
    state: State,
    read: Option<(RequestId, Read)>,
    /// In-cluster settings waiting for the own namespace.
    pending: Option<Endpoint>,
    endpoint: Option<Endpoint>,
    informers: Vec<Informer>,
    index: BTreeMap<(Resource, String), usize>,
    main: Resource,
    /// The first whole batch has gone out.
    sent_initial: bool,
    /// Main keys to rebuild.
    dirty: BTreeSet<String>,
    /// What each group read, by main key…
    deps: BTreeMap<String, Vec<(Resource, String)>>,
    /// …and who read each object.
    dependents: BTreeMap<(Resource, String), BTreeSet<String>>,
}

/// The role's main resource.
fn main_resource(role: &str) -> Resource {
    match role {
        "node" => Resource::Nodes,
        "pod" => Resource::Pods,
        "service" => Resource::Services,
        "endpoints" => Resource::Endpoints,
        "endpointslice" => Resource::EndpointSlices,
        _ => Resource::Ingresses,
    }
}

/// The role whose selector applies to a resource (`None`: never selected).
fn selector_role(r: Resource) -> Option<&'static str> {
    Some(match r {
        Resource::Nodes => "node",
        Resource::Pods => "pod",
        Resource::Services => "service",
        Resource::Endpoints => "endpoints",
        Resource::EndpointSlices => "endpointslice",
        Resource::Ingresses => "ingress",
        _ => return None,
    })
}

/// The `events_total` series for (role, event), from the mechanism's counters.
fn event_series(role: &str, event: &str) -> Option<crate::discovery::mechanism::CounterKey> {
    use crate::discovery::mechanism::Mechanism;
    super::Kubernetes::COUNTERS
        .iter()
        .find(|c| {
            c.name == EVENTS
                && c.labels.contains(&("role", role))
                && c.labels.contains(&("event", event))
        })
        .map(|c| (c.name, c.labels))
}

impl KubernetesSd {
    pub(crate) fn new(cfg: &KubernetesSdConfig, cx: &MachineContext<'_>) -> KubernetesSd {
        KubernetesSd {
            cfg: cfg.clone(),
            name: cx.name.clone(),
            user_agent: cx.env.user_agent.clone(),
            page_limit: cx.env.body_limit,
            seed: cx.env.seed ^ crate::hash::fnv1a64(cx.name.as_bytes()),
            service: cx.env.kubernetes_service.clone(),
            sa_dir: cx.env.service_account_dir.clone(),
            state: State::Setup,
            read: None,
            pending: None,
            endpoint: None,
            informers: Vec::new(),
            index: BTreeMap::new(),
            main: main_resource(cfg.role.as_str()),
            sent_initial: false,
            dirty: BTreeSet::new(),
            deps: BTreeMap::new(),
            dependents: BTreeMap::new(),
        }
    }

    fn origin(&self) -> Origin {
        Origin::Discovery {
            provider: self.name.clone(),
        }
    }

    /// The endpoint for a server URL and client options.
    fn endpoint(
        &self,
        base: String,
        client: HttpClientConfig,
        extra: Vec<(String, String)>,
    ) -> Endpoint {
        let mut headers = vec![
            ("User-Agent".to_owned(), self.user_agent.to_string()),
            ("Accept".to_owned(), "application/json".to_owned()),
        ];
        headers.extend(extra);
        let credentials_file = io::add_auth(&client, &mut headers);
        Endpoint {
            base,
            headers,
            credentials_file,
            client: Arc::new(client),
            origin: self.origin(),
            page_limit: self.page_limit,
        }
    }

    fn fail_creation(&mut self, out: &mut SdOut, message: String) {
        self.state = State::Failed;
        out.creation_failed = true;
        out.failures
            .push(format!("Cannot create service discovery: {message}"));
    }

    fn begin(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if !self.cfg.kubeconfig_file.is_empty() {
            let path = self.cfg.kubeconfig_file.clone();
            let id = io.start(IoOp::ReadFile {
                path: path.clone(),
                limit: FILE_LIMIT,
            });
            self.read = Some((id, Read::Kubeconfig(path)));
            return;
        }
        if let Some(server) = &self.cfg.api_server {
            // client-go's `DefaultServerURL`: a bare host:port is http.
            let mut base = if server.contains("://") {
                server.clone()
            } else {
                format!("http://{server}")
            };
            while base.ends_with('/') {
                base.pop();
            }
            let ep = self.endpoint(base, self.cfg.http_client.clone(), Vec::new());
            self.run(now, ep, io, out);
            return;
        }
        // In cluster (`rest.InClusterConfig`).
        let Some((host, port)) = self
            .service
            .clone()
            .filter(|(h, p)| !h.is_empty() && !p.is_empty())
        else {
            self.fail_creation(
                out,
                "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined".into(),
            );
            return;
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let mut client = HttpClientConfig::default();
        client.tls_config.ca_file = format!("{}/ca.crt", self.sa_dir);
        client.authorization = Some(Authorization {
            kind: "Bearer".into(),
            credentials_file: format!("{}/token", self.sa_dir),
            ..Authorization::default()
        });
        // client-go takes proxies from the environment in cluster too.
        client.proxy_from_environment = true;
        let ep = self.endpoint(format!("https://{host}:{port}"), client, Vec::new());
        if self.cfg.namespaces.own_namespace {
            let path = format!("{}/namespace", self.sa_dir);
            let id = io.start(IoOp::ReadFile {
                path: path.clone(),
                limit: FILE_LIMIT,
            });
            self.read = Some((id, Read::Namespace(path)));
            self.pending = Some(ep);
            return;
        }
        self.run(now, ep, io, out);
    }

    fn on_read(
        &mut self,
        now: Instant,
        read: Read,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        let (path, data) = match (&read, ev) {
            (Read::Kubeconfig(p) | Read::Namespace(p), IoEvent::FileData(d)) => (p, d),
            (Read::Kubeconfig(p), IoEvent::NotFound) => {
                let m = format!("stat {p}: no such file or directory");
                return self.fail_creation(out, m);
            }
            (Read::Namespace(p), IoEvent::NotFound) => {
                let m = format!(
                    "could not determine the pod's namespace: open {p}: no such file or directory"
                );
                return self.fail_creation(out, m);
            }
            (Read::Kubeconfig(p), IoEvent::Failed(e)) => {
                return self.fail_creation(out, format!("{p}: {e}"));
            }
            (Read::Namespace(p), IoEvent::Failed(e)) => {
                let m = format!("could not determine the pod's namespace: {p}: {e}");
                return self.fail_creation(out, m);
            }
            _ => return,
        };
        let text = String::from_utf8_lossy(data);
        match read {
            Read::Kubeconfig(_) => match kubeconfig::parse(path, &text) {
                Ok(s) => {
                    let ep = self.endpoint(s.base, s.client, s.headers);
                    self.run(now, ep, io, out);
                }
                Err(e) => self.fail_creation(out, e),
            },
            Read::Namespace(_) => {
                // 3.x does not trim the file; a trailing newline would only make
                // paths that fail, so trawl drops surrounding white space.
                let ns = text.trim();
                if ns.is_empty() {
                    return self.fail_creation(
                        out,
                        "could not read own namespace name (empty file)".into(),
                    );
                }
                let ns = ns.to_owned();
                if let Some(ep) = self.pending.take() {
                    self.run_with(now, ep, Some(ns), io, out);
                }
            }
        }
    }

    fn run(&mut self, now: Instant, ep: Endpoint, io: &mut IoQueue, out: &mut SdOut) {
        self.run_with(now, ep, None, io, out);
    }

    /// Creates the role's informers (3.x `Discovery.Run`) and starts them.
    fn run_with(
        &mut self,
        now: Instant,
        ep: Endpoint,
        own: Option<String>,
        io: &mut IoQueue,
        _out: &mut SdOut,
    ) {
        let mut namespaces: Vec<String> = Vec::new();
        for n in self.cfg.namespaces.names.iter().cloned().chain(own) {
            if !namespaces.contains(&n) {
                namespaces.push(n);
            }
        }
        if namespaces.is_empty() {
            namespaces.push(String::new());
        }
        let a = self.cfg.attach_metadata.clone();
        let role = self.cfg.role.as_str().to_owned();
        let mut wanted: Vec<(Resource, String)> = Vec::new();
        let per_ns = |r: Resource, w: &mut Vec<(Resource, String)>| {
            for n in &namespaces {
                w.push((r, n.clone()));
            }
        };
        let owners = |w: &mut Vec<(Resource, String)>| {
            if a.deployment {
                per_ns(Resource::ReplicaSets, w);
            }
            if a.job || a.cronjob {
                per_ns(Resource::Jobs, w);
            }
        };
        match role.as_str() {
            "node" => wanted.push((Resource::Nodes, String::new())),
            "pod" => {
                per_ns(Resource::Pods, &mut wanted);
                if a.node {
                    wanted.push((Resource::Nodes, String::new()));
                }
                if a.namespace {
                    wanted.push((Resource::Namespaces, String::new()));
                }
                owners(&mut wanted);
            }
            "service" | "ingress" => {
                per_ns(self.main, &mut wanted);
                if a.namespace {
                    wanted.push((Resource::Namespaces, String::new()));
                }
            }
            _ => {
                per_ns(self.main, &mut wanted);
                per_ns(Resource::Services, &mut wanted);
                per_ns(Resource::Pods, &mut wanted);
                if a.node {
                    wanted.push((Resource::Nodes, String::new()));
                }
                if a.namespace {
                    wanted.push((Resource::Namespaces, String::new()));
                }
                owners(&mut wanted);
            }
        }
        for (i, (r, ns)) in wanted.into_iter().enumerate() {
            let key = (
                r,
                if r.cluster_scoped() {
                    String::new()
                } else {
                    ns
                },
            );
            if self.index.contains_key(&key) {
                continue;
            }
            let sel =
                selector_role(r).and_then(|sr| self.cfg.selectors.iter().find(|s| s.role == sr));
            let (label, field) = sel.map_or(("", ""), |s| (s.label.as_str(), s.field.as_str()));
            let seed = self
                .seed
                .wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut inf = Informer::new(r, &key.1, label, field, seed);
            inf.start(now, &ep, io);
            self.index.insert(key, self.informers.len());
            self.informers.push(inf);
        }
        self.endpoint = Some(ep);
        self.state = State::Running;
    }

    /// True once every informer the first batch waits for has listed.
    fn ready(&self) -> bool {
        self.informers
            .iter()
            .filter(|i| !matches!(i.resource, Resource::ReplicaSets | Resource::Jobs))
            .all(|i| i.synced)
    }

    /// What the group of a main object reads besides the object itself.
    fn deps_of(&self, obj: &Object, stores: &Stores<'_>) -> Vec<(Resource, String)> {
        let a = &self.cfg.attach_metadata;
        let mut d = Vec::new();
        let ns = &*obj.meta().namespace;
        let have = |r: Resource| self.informers.iter().any(|i| i.resource == r);
        let owners = |p: &super::objects::Pod, d: &mut Vec<(Resource, String)>| {
            if let Some(c) = &p.meta.controller {
                let key = format!("{}/{}", p.meta.namespace, c.name);
                if &*c.kind == "ReplicaSet" && have(Resource::ReplicaSets) {
                    d.push((Resource::ReplicaSets, key));
                } else if &*c.kind == "Job" && have(Resource::Jobs) {
                    d.push((Resource::Jobs, key));
                }
            }
        };
        if a.namespace && have(Resource::Namespaces) && !ns.is_empty() {
            d.push((Resource::Namespaces, ns.to_owned()));
        }
        let node = |n: &str, d: &mut Vec<(Resource, String)>| {
            if a.node && have(Resource::Nodes) {
                d.push((Resource::Nodes, n.to_owned()));
            }
        };
        let pod = |r: Option<&super::objects::Ref>, d: &mut Vec<(Resource, String)>| {
            if let Some(r) = r.filter(|r| &*r.kind == "Pod") {
                let key = format!("{}/{}", r.namespace, r.name);
                if let Some(Object::Pod(p)) = stores.get(Resource::Pods, &key) {
                    owners(p, d);
                }
                d.push((Resource::Pods, key));
            }
        };
        match obj {
            Object::Pod(p) => {
                node(&p.node_name, &mut d);
                owners(p, &mut d);
            }
            Object::Endpoints(e) => {
                d.push((Resource::Services, e.meta.key()));
                for s in &e.subsets {
                    for addr in s.addresses.iter().chain(&s.not_ready_addresses) {
                        if let Some(n) = &addr.node_name {
                            node(n, &mut d);
                        } else if let Some(r) =
                            addr.target_ref.as_ref().filter(|r| &*r.kind == "Node")
                        {
                            node(&r.name, &mut d);
                        }
                        pod(addr.target_ref.as_ref(), &mut d);
                    }
                }
            }
            Object::EndpointSlice(e) => {
                if let Some(svc) = e.service_name() {
                    d.push((Resource::Services, format!("{ns}/{svc}")));
                }
                for ep in &e.endpoints {
                    match ep.target_ref.as_ref().filter(|r| &*r.kind == "Node") {
                        Some(r) => node(&r.name, &mut d),
                        None => {
                            if let Some(n) = &ep.node_name {
                                node(n, &mut d);
                            }
                        }
                    }
                    pod(ep.target_ref.as_ref(), &mut d);
                }
            }
            _ => {}
        }
        d.sort();
        d.dedup();
        d
    }

    /// Rebuilds the groups of `keys` (main keys) into one batch.
    fn rebuild(&mut self, keys: Vec<String>, out: &mut SdOut) {
        let mut batch = Vec::with_capacity(keys.len());
        let mut new_deps = Vec::with_capacity(keys.len());
        {
            let stores = Stores {
                informers: &self.informers,
                index: &self.index,
            };
            for key in &keys {
                let obj = stores.get(self.main, key);
                let deps = obj.map(|o| self.deps_of(o, &stores)).unwrap_or_default();
                new_deps.push(deps);
                if let Some(g) = build::build(self.main, key, &stores, &self.cfg.attach_metadata) {
                    batch.push(g);
                }
            }
        }
        for (key, deps) in keys.into_iter().zip(new_deps) {
            if let Some(old) = self.deps.remove(&key) {
                for d in old {
                    if let Some(set) = self.dependents.get_mut(&d) {
                        set.remove(&key);
                        if set.is_empty() {
                            self.dependents.remove(&d);
                        }
                    }
                }
            }
            if !deps.is_empty() {
                for d in &deps {
                    self.dependents
                        .entry(d.clone())
                        .or_default()
                        .insert(key.clone());
                }
                self.deps.insert(key, deps);
            }
        }
        if !batch.is_empty() {
            out.updates.push(batch);
        }
    }

    /// Applies what an informer reported: counters, failures, dirty keys; then sends
    /// what is ready.
    fn absorb(&mut self, resource: Resource, iout: InformerOut, out: &mut SdOut) {
        if iout.failure_count > 0 {
            out.count(FAILURES, iout.failure_count);
        }
        out.failures.extend(iout.failures);
        let role = self.cfg.role.as_str();
        for c in iout.changes {
            let event = match c.kind {
                ChangeKind::Add => "add",
                ChangeKind::Update => "update",
                ChangeKind::Delete => "delete",
            };
            // 3.x counts its handlers' notifications: the role's own objects, services
            // in the endpoint roles, and pod updates in the endpoints role.
            let counted = if resource == self.main {
                Some(role)
            } else if resource == Resource::Services
                && matches!(role, "endpoints" | "endpointslice")
            {
                Some("service")
            } else if resource == Resource::Pods
                && role == "endpoints"
                && c.kind == ChangeKind::Update
            {
                Some("pod")
            } else {
                None
            };
            if let Some(series) = counted.and_then(|r| event_series(r, event)) {
                out.count_series(series, 1);
            }
            if resource == self.main {
                self.dirty.insert(c.key);
            } else if let Some(keys) = self.dependents.get(&(resource, c.key)) {
                self.dirty.extend(keys.iter().cloned());
            }
        }
        self.flush(out);
    }

    fn flush(&mut self, out: &mut SdOut) {
        if !self.ready() {
            return;
        }
        if !self.sent_initial {
            self.sent_initial = true;
            self.dirty.clear();
            let keys: Vec<String> = self
                .informers
                .iter()
                .filter(|i| i.resource == self.main)
                .flat_map(|i| i.store.keys().cloned())
                .collect();
            self.rebuild(keys, out);
            return;
        }
        if self.dirty.is_empty() {
            return;
        }
        let keys: Vec<String> = std::mem::take(&mut self.dirty).into_iter().collect();
        self.rebuild(keys, out);
    }

    /// Objects held across all stores (for tests and the memory figures).
    #[cfg(test)]
    pub(crate) fn objects(&self) -> usize {
        self.informers.iter().map(|i| i.store.len()).sum()
    }
}

impl SdMachine for KubernetesSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.begin(now, io, out);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.read.as_ref().is_some_and(|(r, _)| *r == id)
            || self.informers.iter().any(|i| i.owns(id))
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        if self.read.as_ref().is_some_and(|(r, _)| *r == id) {
            if let Some((_, read)) = self.read.take() {
                self.on_read(now, read, ev, io, out);
            }
            return;
        }
        let Some(i) = self.informers.iter().position(|i| i.owns(id)) else {
            return;
        };
        let Some(ep) = self.endpoint.as_ref() else {
            return;
        };
        let mut iout = InformerOut::default();
        self.informers[i].handle_io(now, ev, ep, io, &mut iout);
        let r = self.informers[i].resource;
        self.absorb(r, iout, out);
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        let Some(ep) = self.endpoint.as_ref() else {
            return;
        };
        let mut all = Vec::new();
        for inf in &mut self.informers {
            if inf.poll_timeout().is_some_and(|t| t <= now) {
                let mut iout = InformerOut::default();
                inf.handle_timeout(now, ep, io, &mut iout);
                all.push((inf.resource, iout));
            }
        }
        for (r, iout) in all {
            self.absorb(r, iout, out);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Running {
            return None;
        }
        self.informers
            .iter()
            .filter_map(Informer::poll_timeout)
            .min()
    }

    fn stop(&mut self, io: &mut IoQueue) {
        if let Some((id, _)) = self.read.take() {
            io.cancel(id);
        }
        for i in &mut self.informers {
            i.stop(io);
        }
    }

    fn in_flight(&self) -> usize {
        usize::from(self.read.is_some())
            + self
                .informers
                .iter()
                .map(Informer::in_flight)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::SdEnv;
    use crate::io::{CredentialsFile, HttpRequest, IoCommand};

    fn config(yaml: &str) -> KubernetesSdConfig {
        crate::discovery::mechanism::test_support::block("kubernetes_sd_configs", yaml)
    }

    struct Drive {
        m: KubernetesSd,
        io: IoQueue,
        out: SdOut,
        now: Instant,
        seen: usize,
    }

    impl Drive {
        fn new(yaml: &str, service: Option<(&str, &str)>) -> Drive {
            let env = SdEnv {
                kubernetes_service: service.map(|(h, p)| (h.to_owned(), p.to_owned())),
                ..SdEnv::for_tests(3)
            };
            let name: Arc<str> = "kubernetes/0".into();
            let cx = MachineContext {
                env: &env,
                name: &name,
                now: Instant(0),
            };
            let mut d = Drive {
                m: KubernetesSd::new(&config(yaml), &cx),
                io: IoQueue::default(),
                out: SdOut::default(),
                now: Instant(0),
                seen: 0,
            };
            d.m.start(d.now, &mut d.io, &mut d.out);
            d
        }

        /// Operations started since the last call.
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

        fn respond(&mut self, id: RequestId, body: &str, end: bool) {
            self.feed(
                id,
                IoEvent::HttpHead {
                    status: 200,
                    reason: "OK",
                    headers: &[],
                },
            );
            self.feed(id, IoEvent::HttpBody(body.as_bytes()));
            if end {
                self.feed(id, IoEvent::HttpEnd);
            }
        }

        /// Answers every list request from `objects` (path → items); returns the watch
        /// requests started afterwards (path → id).
        fn serve_lists(&mut self, objects: &[(&str, &[&str])]) -> BTreeMap<String, RequestId> {
            let mut watches = BTreeMap::new();
            loop {
                let started = self.started();
                if started.is_empty() {
                    break;
                }
                for (id, op) in started {
                    let IoOp::Http(HttpRequest { url, .. }) = op else {
                        continue;
                    };
                    let path = url
                        .trim_start_matches("http://api")
                        .split('?')
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    if url.contains("watch=true") {
                        watches.insert(path, id);
                        continue;
                    }
                    let items = objects
                        .iter()
                        .find(|(p, _)| *p == path)
                        .map_or(&[][..], |(_, i)| *i);
                    let body = format!(
                        r#"{{"metadata":{{"resourceVersion":"10"}},"items":[{}]}}"#,
                        items.join(",")
                    );
                    self.respond(id, &body, true);
                }
            }
            watches
        }

        fn batches(&mut self) -> Vec<Vec<crate::discovery::groups::TargetGroup>> {
            std::mem::take(&mut self.out.updates)
        }

        fn count(&self, labels: &[(&str, &str)]) -> u64 {
            self.out
                .counts
                .iter()
                .filter(|((n, l), _)| *n == EVENTS && *l == labels)
                .map(|(_, v)| v)
                .sum()
        }
    }

    const POD: &str = r#"{"metadata":{"name":"p1","namespace":"default","resourceVersion":"3","labels":{"v":"1"}},
        "spec":{"nodeName":"n1","containers":[{"name":"c","ports":[{"containerPort":80}]}]},"status":{"podIP":"10.0.0.1"}}"#;
    const SLICE: &str = r#"{"metadata":{"name":"s1","namespace":"default","resourceVersion":"4","labels":{"kubernetes.io/service-name":"svc"}},
        "addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"targetRef":{"kind":"Pod","name":"p1","namespace":"default"},"nodeName":"n1"}],
        "ports":[{"port":80}]}"#;
    const SLICE2: &str = r#"{"metadata":{"name":"s2","namespace":"default","resourceVersion":"5"},"addressType":"IPv4",
        "endpoints":[{"addresses":["10.0.0.9"]}],"ports":[{"port":81}]}"#;
    const NODE: &str = r#"{"metadata":{"name":"n1","resourceVersion":"2","labels":{"zone":"a"}}}"#;

    #[test]
    fn slices_wait_for_every_store_then_change_incrementally() {
        let mut d = Drive::new(
            "role: endpointslice\napi_server: http://api\nattach_metadata: {node: true}",
            None,
        );
        let first = d.started();
        let paths: Vec<String> = first
            .iter()
            .filter_map(|(_, op)| match op {
                IoOp::Http(r) => Some(r.url.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            paths,
            [
                "http://api/apis/discovery.k8s.io/v1/endpointslices?limit=500",
                "http://api/api/v1/services?limit=500",
                "http://api/api/v1/pods?limit=500",
                "http://api/api/v1/nodes?limit=500",
            ]
        );
        // Answer all but the nodes: nothing goes out yet.
        let (slices, services, pods, nodes) = (first[0].0, first[1].0, first[2].0, first[3].0);
        d.respond(
            slices,
            &format!(r#"{{"metadata":{{"resourceVersion":"10"}},"items":[{SLICE},{SLICE2}]}}"#),
            true,
        );
        d.respond(
            services,
            r#"{"metadata":{"resourceVersion":"10"},"items":[]}"#,
            true,
        );
        d.respond(
            pods,
            &format!(r#"{{"metadata":{{"resourceVersion":"10"}},"items":[{POD}]}}"#),
            true,
        );
        assert!(d.batches().is_empty(), "waits for the node store");
        d.respond(
            nodes,
            &format!(r#"{{"metadata":{{"resourceVersion":"10"}},"items":[{NODE}]}}"#),
            true,
        );
        let b = d.batches();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].len(), 2, "both slices at once");
        let t = &b[0][0].targets[0];
        assert_eq!(t.get("__meta_kubernetes_pod_label_v"), Some("1"));
        assert_eq!(t.get("__meta_kubernetes_node_label_zone"), Some("a"));
        assert_eq!(d.count(&[("event", "add"), ("role", "endpointslice")]), 2);
        let watches = d.serve_lists(&[]);
        assert_eq!(watches.len(), 4);
        // The pod is relabeled: only the slice that reads it is rebuilt (3.x would
        // wait for the slice to change).
        let pod2 = POD
            .replace(r#""v":"1""#, r#""v":"2""#)
            .replace(r#""resourceVersion":"3""#, r#""resourceVersion":"11""#)
            .replace('\n', " ");
        d.respond(
            watches["/api/v1/pods"],
            &format!("{{\"type\":\"MODIFIED\",\"object\":{pod2}}}\n"),
            false,
        );
        let b = d.batches();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].len(), 1);
        assert_eq!(b[0][0].source, "endpointslice/default/s1");
        assert_eq!(
            b[0][0].targets[0].get("__meta_kubernetes_pod_label_v"),
            Some("2")
        );
        // Pods are not counted by the endpointslice role (3.x has no pod handler there).
        assert_eq!(d.count(&[("event", "update"), ("role", "pod")]), 0);
        // The node changes: the slice is rebuilt; the service appears: likewise.
        let node2 = NODE
            .replace(r#""zone":"a""#, r#""zone":"b""#)
            .replace(r#""resourceVersion":"2""#, r#""resourceVersion":"12""#);
        d.respond(
            watches["/api/v1/nodes"],
            &format!("{{\"type\":\"MODIFIED\",\"object\":{node2}}}\n"),
            false,
        );
        let b = d.batches();
        assert_eq!(
            b[0][0].targets[0].get("__meta_kubernetes_node_label_zone"),
            Some("b")
        );
        let svc = r#"{"metadata":{"name":"svc","namespace":"default","resourceVersion":"13","labels":{"x":"y"}}}"#;
        d.respond(
            watches["/api/v1/services"],
            &format!("{{\"type\":\"ADDED\",\"object\":{svc}}}\n"),
            false,
        );
        let b = d.batches();
        assert_eq!(b[0].len(), 1);
        assert_eq!(
            b[0][0].labels.get("__meta_kubernetes_service_label_x"),
            Some("y")
        );
        assert_eq!(d.count(&[("event", "add"), ("role", "service")]), 1);
        // The slice goes: its group is emptied.
        d.respond(
            watches["/apis/discovery.k8s.io/v1/endpointslices"],
            &format!(
                "{{\"type\":\"DELETED\",\"object\":{}}}\n",
                SLICE.replace('\n', " ")
            ),
            false,
        );
        let b = d.batches();
        assert_eq!(b[0].len(), 1);
        assert!(b[0][0].targets.is_empty());
        assert_eq!(
            d.count(&[("event", "delete"), ("role", "endpointslice")]),
            1
        );
        // A pod change no longer touches anything.
        d.respond(
            watches["/api/v1/pods"],
            &format!(
                "{{\"type\":\"MODIFIED\",\"object\":{}}}\n",
                pod2.replace("\"11\"", "\"14\"")
            ),
            false,
        );
        assert!(d.batches().is_empty());
        assert!(d.m.dependents.values().all(|s| !s.contains("default/s1")));
        assert_eq!(d.m.objects(), 4);
    }

    #[test]
    fn in_cluster_needs_the_service_and_reads_the_own_namespace() {
        let d = Drive::new("role: pod", None);
        assert!(d.out.creation_failed);
        assert!(
            d.out.failures[0]
                .contains("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined")
        );
        assert_eq!(d.m.poll_timeout(), None);
        assert_eq!(d.m.in_flight(), 0);

        let mut d = Drive::new(
            "role: pod\nnamespaces: {own_namespace: true, names: [a]}",
            Some(("fd00::1", "443")),
        );
        let s = d.started();
        assert!(matches!(&s[0].1, IoOp::ReadFile { path, .. } if path == "/sa/namespace"));
        d.feed(s[0].0, IoEvent::FileData(b"mine\n"));
        let urls: Vec<(String, Option<CredentialsFile>, String)> = d
            .started()
            .into_iter()
            .filter_map(|(_, op)| match op {
                IoOp::Http(r) => Some((
                    r.url,
                    r.credentials_file,
                    r.client.tls_config.ca_file.clone(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(urls.len(), 2);
        assert_eq!(
            urls[0].0,
            "https://[fd00::1]:443/api/v1/namespaces/a/pods?limit=500"
        );
        assert_eq!(
            urls[1].0,
            "https://[fd00::1]:443/api/v1/namespaces/mine/pods?limit=500"
        );
        assert_eq!(
            urls[0].1,
            Some(CredentialsFile::Credentials {
                kind: "Bearer".into(),
                path: "/sa/token".into()
            })
        );
        assert_eq!(urls[0].2, "/sa/ca.crt");

        let mut d = Drive::new(
            "role: pod\nnamespaces: {own_namespace: true}",
            Some(("h", "1")),
        );
        let s = d.started();
        d.feed(s[0].0, IoEvent::FileData(b""));
        assert!(d.out.creation_failed);
        assert!(d.out.failures[0].ends_with("could not read own namespace name (empty file)"));
    }

    #[test]
    fn a_kubeconfig_names_the_server() {
        let mut d = Drive::new("role: node\nkubeconfig_file: /etc/kube.yml", None);
        let s = d.started();
        assert!(matches!(&s[0].1, IoOp::ReadFile { path, .. } if path == "/etc/kube.yml"));
        d.feed(
            s[0].0,
            IoEvent::FileData(b"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: [{name: k, cluster: {server: 'http://10.0.0.1:8080/'}}]\n"),
        );
        let s = d.started();
        assert!(
            matches!(&s[0].1, IoOp::Http(r) if r.url == "http://10.0.0.1:8080/api/v1/nodes?limit=500")
        );
        let mut d = Drive::new("role: node\nkubeconfig_file: /etc/kube.yml", None);
        let s = d.started();
        d.feed(s[0].0, IoEvent::NotFound);
        assert!(d.out.creation_failed);
    }

    #[test]
    fn same_inputs_same_requests_and_groups() {
        let run = || {
            let mut d = Drive::new("role: pod\napi_server: http://api", None);
            let w = d.serve_lists(&[("/api/v1/pods", &[POD])]);
            let mut trace = format!("{:?}", d.batches());
            for (_, id) in w {
                d.respond(id, "", true);
            }
            d.now = Instant(5_000_000_000);
            d.m.handle_timeout(d.now, &mut d.io, &mut d.out);
            trace.push_str(&format!("{:?}{:?}", d.io.queue, d.m.poll_timeout()));
            trace
        };
        assert_eq!(run(), run());
    }
}
