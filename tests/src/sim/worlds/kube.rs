//! Kubernetes discovery's world: the fake API server's cluster ([`crate::kube::Cluster`],
//! the same one the end-to-end tests serve over HTTP) with pods across three namespaces
//! and endpoint slices over them, churning: pods come, go, move, change address and
//! labels; slices follow or lag; the change log is compacted (open watches get `410`
//! and the agent relists); watches end as the server's timeout would; lists fail now
//! and then. The job watches two of the namespaces with the pod or the endpointslice
//! role (drawn at each reload); after quiet, its targets must be what the cluster
//! implies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob};
use crate::kube::{Cluster, Reply as KubeReply, Watch};
use crate::sim::Rng;

/// The API server's URL in the configuration (never dialled: the world answers).
pub(crate) const API: &str = "http://127.0.0.1:6443";
/// Namespaces; the job watches the first two.
const NAMESPACES: [&str; 3] = ["a", "b", "c"];

/// The world.
#[derive(Debug, Default)]
pub(crate) struct KubeWorld {
    cluster: Cluster,
    /// The role of the current job (`pod` or `endpointslice`).
    role: &'static str,
    /// Watches the agent holds open, by request.
    watches: BTreeMap<RequestId, Watch>,
    /// Pods made so far (names are never reused).
    made: u64,
}

fn pod(name: &str, ns: &str, addr: Option<&str>, labels: Value) -> Value {
    let (ip, port) = addr
        .and_then(|a| a.rsplit_once(':'))
        .map_or(("", 0), |(h, p)| (h, p.parse::<u16>().unwrap_or(0)));
    json!({"kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "img",
                     "ports": [{"name": "m", "containerPort": port}]}]},
           "status": {"podIP": ip, "phase": if ip.is_empty() { "Pending" } else { "Running" }}})
}

impl KubeWorld {
    fn pick<'a>(rng: &mut Rng, v: &'a [String]) -> &'a str {
        &v[rng.below(v.len() as u64) as usize]
    }

    fn new_pod(&mut self, rng: &mut Rng, pool: &[String]) {
        self.made += 1;
        let ns = NAMESPACES[rng.below(3) as usize];
        let addr = (!rng.chance(10)).then(|| KubeWorld::pick(rng, pool).to_owned());
        let labels = json!({"app": format!("v{}", rng.below(3))});
        self.cluster
            .apply(pod(&format!("p{}", self.made), ns, addr.as_deref(), labels));
    }

    /// The pods of a namespace: (name, address if any).
    fn pods_in(&self, ns: &str) -> Vec<(String, Option<String>)> {
        self.cluster
            .objects_of("Pod")
            .into_iter()
            .filter(|p| p["metadata"]["namespace"] == ns)
            .map(|p| {
                let ip = p["status"]["podIP"].as_str().unwrap_or("");
                let port = &p["spec"]["containers"][0]["ports"][0]["containerPort"];
                (
                    p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                    (!ip.is_empty()).then(|| format!("{ip}:{port}")),
                )
            })
            .collect()
    }

    /// Rewrites the slice of namespace `ns` over (some of) its pods with addresses.
    fn reslice(&mut self, rng: &mut Rng, ns: &str, all: bool) {
        let mut eps = Vec::new();
        for (name, addr) in self.pods_in(ns) {
            let Some(addr) = addr else { continue };
            if !all && rng.chance(20) {
                continue;
            }
            let (ip, port) = addr.rsplit_once(':').unwrap_or((&addr, "0"));
            eps.push(json!({"addresses": [ip], "conditions": {"ready": true},
                            "targetRef": {"kind": "Pod", "name": name, "namespace": ns},
                            "port": port}));
        }
        // One slice per port (slices carry ports for all their endpoints).
        let mut by_port: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for mut e in eps {
            let port = e["port"].as_str().unwrap_or("0").to_owned();
            if let Some(m) = e.as_object_mut() {
                m.remove("port");
            }
            by_port.entry(port).or_default().push(e);
        }
        let old: Vec<String> = self
            .cluster
            .objects_of("EndpointSlice")
            .into_iter()
            .filter(|s| s["metadata"]["namespace"] == ns)
            .map(|s| s["metadata"]["name"].as_str().unwrap_or("").to_owned())
            .collect();
        let mut keep = Vec::new();
        for (port, eps) in by_port {
            let name = format!("s-{port}");
            keep.push(name.clone());
            let p: u16 = port.parse().unwrap_or(0);
            self.cluster.apply(json!({"kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": "svc"}},
                "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "m", "port": p}]}));
        }
        for o in old {
            if !keep.contains(&o) {
                self.cluster.delete("EndpointSlice", ns, &o);
            }
        }
    }

    /// Events for every open watch since its version (a 410 `ERROR` and the end for
    /// those whose version was compacted away).
    fn tell(
        &mut self,
        rng: &mut Rng,
        open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        self.watches.retain(|id, _| open.contains_key(id));
        let mut out = Vec::new();
        let mut ended = Vec::new();
        for (id, w) in &mut self.watches {
            match self.cluster.poll(w) {
                Ok(lines) => {
                    let mut text = lines.concat();
                    if w.bookmarks && rng.chance(30) {
                        text.push_str(&self.cluster.bookmark(w));
                    }
                    if text.is_empty() {
                        continue;
                    }
                    // In pieces that split events anywhere.
                    let bytes = text.into_bytes();
                    let size = 1 + rng.below(bytes.len() as u64) as usize;
                    for piece in bytes.chunks(size) {
                        out.push((*id, OwnedIoEvent::HttpBody(piece.to_vec())));
                    }
                }
                Err(error) => {
                    out.push((*id, OwnedIoEvent::HttpBody(error.into_bytes())));
                    out.push((*id, OwnedIoEvent::HttpEnd));
                    ended.push(*id);
                }
            }
        }
        for id in ended {
            self.watches.remove(&id);
        }
        out
    }
}

impl SdWorld for KubeWorld {
    fn key(&self) -> &'static str {
        "kubernetes_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        self.cluster = Cluster::new();
        self.cluster.window = 200;
        self.role = "pod";
        for ns in NAMESPACES {
            self.cluster
                .apply(json!({"kind": "Namespace", "metadata": {"name": ns}}));
        }
        self.cluster
            .apply(json!({"kind": "Node", "metadata": {"name": "n1"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}));
        for _ in 0..8 {
            self.new_pod(rng, pool);
        }
        for ns in NAMESPACES {
            self.reslice(rng, ns, true);
        }
    }

    fn jobs(&mut self, rng: &mut Rng) -> Vec<WorldJob> {
        self.role = if rng.chance(50) {
            "pod"
        } else {
            "endpointslice"
        };
        let attach = if self.role == "endpointslice" && rng.chance(50) {
            ", attach_metadata: {node: true}"
        } else {
            ""
        };
        vec![WorldJob {
            name: "kube",
            sd: format!(
                "    kubernetes_sd_configs: [{{role: {}, api_server: '{API}', namespaces: {{names: [a, b]}}{attach}}}]\n",
                self.role
            ),
            follows_variant: true,
        }]
    }

    fn reloaded(&mut self, in_use: bool) {
        if !in_use {
            self.watches.clear();
        }
    }

    fn answer(
        &mut self,
        id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let IoOp::Http(r) = op else { return None };
        if !matches!(r.origin, Origin::Discovery { .. }) {
            return None;
        }
        let target = r.url.strip_prefix(API)?;
        let latency = Duration::from_millis(1 + rng.below(50));
        let reply = if !target.contains("watch=true") && rng.chance(4) {
            // A failing list: the agent keeps its targets and retries after a backoff.
            let body = crate::kube::status(500, "InternalError", "etcd is busy").to_string();
            vec![
                Reply::head(500, "Internal Server Error", "application/json", false),
                Reply::body(body.into_bytes()),
                Reply::end(),
            ]
        } else {
            match self.cluster.handle(target) {
                KubeReply::Whole { status, body } => vec![
                    Reply::head(status, crate::reason(status), "application/json", false),
                    Reply::body(body),
                    Reply::end(),
                ],
                KubeReply::Watch {
                    watch,
                    initial,
                    ends,
                } => {
                    let mut events = vec![Reply::head(200, "OK", "application/json", false)];
                    if !initial.is_empty() {
                        events.push(Reply::body(initial.concat().into_bytes()));
                    }
                    if ends {
                        events.push(Reply::end());
                    } else {
                        self.watches.insert(id, watch);
                    }
                    // The head at once, so no change can reach the watch before it.
                    return Some(Ok(Answer::After(Duration::ZERO, events)));
                }
            }
        };
        Some(Ok(Answer::After(latency, reply)))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        for _ in 0..1 + rng.below(6) {
            let names: Vec<(String, String)> = self
                .cluster
                .objects_of("Pod")
                .into_iter()
                .map(|p| {
                    (
                        p["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
                        p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            match rng.below(10) {
                0..=2 => self.new_pod(rng, pool),
                3 | 4 if !names.is_empty() => {
                    let (ns, name) = &names[rng.below(names.len() as u64) as usize];
                    self.cluster.delete("Pod", ns, name);
                }
                5 | 6 if !names.is_empty() => {
                    // A new address or new labels.
                    let (ns, name) = names[rng.below(names.len() as u64) as usize].clone();
                    let addr = KubeWorld::pick(rng, pool).to_owned();
                    let labels = json!({"app": format!("v{}", rng.below(3))});
                    self.cluster.apply(pod(&name, &ns, Some(&addr), labels));
                }
                _ => {}
            }
        }
        // The slice controller catches up (or lags a little, when the job watches
        // slices the pods do not matter and the slices alone are the truth).
        for ns in NAMESPACES {
            let all = rng.chance(70);
            self.reslice(rng, ns, all);
        }
        let mut out = Vec::new();
        if rng.chance(15) {
            // The server's timeout ends one watch cleanly before it sees these changes:
            // the next watch, from the last version seen, replays them.
            self.watches.retain(|id, _| open.contains_key(id));
            if let Some(id) = self.watches.keys().next().copied() {
                self.watches.remove(&id);
                out.push((id, OwnedIoEvent::HttpEnd));
            }
        }
        if rng.chance(15) {
            // Compaction before the watches see the changes: each gets its 410 at
            // once, and only the relist can tell what changed meanwhile.
            self.cluster.compact();
        }
        out.extend(self.tell(rng, open));
        out
    }

    fn addresses(&self) -> Vec<String> {
        let mut out = Vec::new();
        for ns in &NAMESPACES[..2] {
            if self.role == "pod" {
                out.extend(self.pods_in(ns).into_iter().filter_map(|(_, a)| a));
                continue;
            }
            let pods = self.pods_in(ns);
            for s in self.cluster.objects_of("EndpointSlice") {
                if s["metadata"]["namespace"] != *ns {
                    continue;
                }
                let port = s["ports"][0]["port"].as_u64().unwrap_or(0);
                for e in s["endpoints"].as_array().into_iter().flatten() {
                    let ip = e["addresses"][0].as_str().unwrap_or("");
                    out.push(format!("{ip}:{port}"));
                    // A pod behind the endpoint whose container port the slice does
                    // not cover is a target of its own (3.x's extra pod targets).
                    let name = e["targetRef"]["name"].as_str().unwrap_or("");
                    if let Some((_, Some(a))) = pods.iter().find(|(n, _)| n == name)
                        && !a.ends_with(&format!(":{port}"))
                    {
                        out.push(a.clone());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn settle(&self) -> Duration {
        // Event latency is nothing; a few failing lists in a row back off for at most
        // 0.8 + 1.6 + 3.2 + 6.4 + 12.8 s (doubled by jitter).
        Duration::from_secs(60)
    }

    fn describe(&self) -> String {
        format!(
            "kube role {} rv {} objects {} watches {}",
            self.role,
            self.cluster.resource_version(),
            self.cluster.len(),
            self.watches.len()
        )
    }
}
