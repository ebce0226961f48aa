//! A fake Consul agent's HTTP API, for the discovery tests (no Consul binary installs
//! here). It follows Consul's published API documents for what Prometheus's Consul
//! discovery calls:
//!
//! - `GET /v1/agent/self` (`Config.Datacenter`, `Config.NodeName`, `Member`);
//! - `GET /v1/catalog/services`: each service with the union of its instances' tags;
//!   `node-meta`, `filter` (over each instance: `ServiceName`, `ServiceTags`,
//!   `ServiceID`, `ServicePort`, `ServiceAddress`, `ServiceMeta.<k>`, `Node`, `Address`,
//!   `NodeMeta.<k>`, `Datacenter`);
//! - `GET /v1/health/service/<name>`: one entry per instance with its node, service and
//!   checks (the node's `serfHealth` and the service's own); `tag` (repeated: all must
//!   match), `node-meta`, `passing`, `filter` (over the entry: `Node.Node`,
//!   `Node.Address`, `Node.Meta.<k>`, `Service.ID`, `Service.Service`, `Service.Tags`,
//!   `Service.Port`, `Service.Address`, `Service.Meta.<k>`, `Checks.Status`);
//! - blocking queries: `index` and `wait` (Go durations, default 5 m, at most 10 m), an
//!   answer as soon as the resource's index passes `index`, else the unchanged answer
//!   when the wait ends; `X-Consul-Index` (never 0), `X-Consul-KnownLeader`,
//!   `X-Consul-LastContact`; the catalog's services index moves on every registration
//!   change, a service's health index on changes to that service's instances, checks or
//!   nodes;
//! - `dc` (another datacenter: 500 `No path to datacenter`), `ns`, `partition` (as
//!   Consul Enterprise: instances carry them; OSS's "default"), `stale`;
//! - ACLs: with a token required, `X-Consul-Token`, `Authorization: Bearer` or `?token=`,
//!   else 403 `ACL not found`.
//!
//! What it does not emulate: consistency modes beyond accepting `stale`/`consistent`,
//! the wait's random jitter (off unless asked for), prepared queries, the KV store,
//! agent-local endpoints other than `self`, hash-based blocking, and `filter`
//! expressions beyond `==`, `!=`, `in`, `not in`, `contains`, `is empty`, `is not empty`
//! joined by `and`/`or` (no parentheses): anything else is refused with 400, as Consul
//! refuses a filter it cannot parse. A snapshot restore (`restore`) is modelled as Consul
//! does it, by abandoning the state store: blocked queries answer at once, from the
//! restored (lower) index.

pub mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

/// A node of the catalog.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Node metadata.
    pub meta: BTreeMap<String, String>,
    /// Tagged addresses (`lan`, `wan`, …).
    pub tagged_addresses: BTreeMap<String, String>,
}

/// A service instance registered on a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Instance {
    /// The node it runs on.
    pub node: String,
    /// Its ID (unique on the node).
    pub id: String,
    /// The service's name.
    pub service: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its own address (empty: the node's).
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Service metadata.
    pub meta: BTreeMap<String, String>,
    /// Namespace (Enterprise; empty is `default`).
    pub namespace: String,
    /// Admin partition (Enterprise; empty is `default`).
    pub partition: String,
    /// Its checks: (CheckID, status).
    pub checks: Vec<(String, String)>,
}

impl Instance {
    /// An instance of `service` on `node` at `address:port`, with one passing check.
    pub fn new(node: &str, service: &str, id: &str, address: &str, port: u16) -> Instance {
        Instance {
            node: node.into(),
            id: id.into(),
            service: service.into(),
            address: address.into(),
            port,
            checks: vec![(format!("service:{id}"), "passing".into())],
            ..Instance::default()
        }
    }

    /// With tags.
    pub fn tags(mut self, tags: &[&str]) -> Instance {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    /// With one metadata entry.
    pub fn meta(mut self, k: &str, v: &str) -> Instance {
        self.meta.insert(k.into(), v.into());
        self
    }
}

/// What a query is about, for its blocking index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The catalog's list of services.
    Services,
    /// One service's health entries.
    Health(String),
    /// Not a blocking endpoint.
    None,
}

/// A parsed request: path, query parameters (repeated keys kept in order), headers.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// The path, percent-decoded.
    pub path: String,
    /// Query parameters, decoded.
    pub params: Vec<(String, String)>,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Query {
    /// Parses a request target (`/v1/...?a=b`).
    pub fn parse(target: &str, headers: Vec<(String, String)>) -> Query {
        let (path, q) = target.split_once('?').unwrap_or((target, ""));
        let params = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (unescape(k, true), unescape(v, true))
            })
            .collect();
        Query {
            path: unescape(path, false),
            params,
            headers,
        }
    }

    /// The first value of a parameter.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter.
    pub fn params(&self, k: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The blocking index asked for (0: none).
    pub fn index(&self) -> u64 {
        self.param("index")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0)
    }

    /// The wait asked for: Consul's default 5 minutes, at most 10.
    pub fn wait(&self) -> Result<Duration, String> {
        match self.param("wait") {
            None | Some("") => Ok(Duration::from_secs(300)),
            Some(w) => parse_go_duration(w)
                .map(|d| d.min(Duration::from_secs(600)))
                .ok_or_else(|| format!("Invalid wait time: {w:?}")),
        }
    }
}

/// Percent-decoding (`+` is a space in a query).
fn unescape(s: &str, query: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' if query => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `time.ParseDuration` for the forms clients send (`120000ms`, `5s`, `1m30s`).
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += v * scale;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// An answer: status, extra headers, body.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `X-Consul-Index`, for blocking endpoints.
    pub index: Option<u64>,
    /// The body.
    pub body: String,
}

impl Answer {
    fn error(status: u16, text: &str) -> Answer {
        Answer {
            status,
            index: None,
            body: text.to_owned(),
        }
    }
}

/// The catalog: nodes, instances and the indexes of Consul's state store.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// The datacenter's name.
    pub datacenter: String,
    /// The agent's node name.
    pub node_name: String,
    nodes: BTreeMap<String, Node>,
    /// Instances by (node, id).
    instances: BTreeMap<(String, String), Instance>,
    /// The raft index: every write moves it.
    index: u64,
    /// Index of the last change to the set of registrations.
    services_index: u64,
    /// Index of the last change to each service (kept after it goes, as Consul keeps
    /// its tombstones' index).
    service_index: BTreeMap<String, u64>,
}

impl Catalog {
    /// An empty catalog in `datacenter`, with the agent's node `consul-1` at 127.0.0.1
    /// running the `consul` service, as every Consul catalog has.
    pub fn new(datacenter: &str) -> Catalog {
        let mut c = Catalog {
            datacenter: datacenter.into(),
            node_name: "consul-1".into(),
            nodes: BTreeMap::new(),
            instances: BTreeMap::new(),
            index: 10,
            services_index: 10,
            service_index: BTreeMap::new(),
        };
        c.register_node(Node {
            name: "consul-1".into(),
            address: "127.0.0.1".into(),
            ..Node::default()
        });
        c.register(Instance::new("consul-1", "consul", "consul", "", 8300));
        c
    }

    /// The raft index.
    pub fn index(&self) -> u64 {
        self.index
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Registers or updates a node (every service on it changes).
    pub fn register_node(&mut self, node: Node) -> u64 {
        let i = self.bump();
        let services: BTreeSet<String> = self
            .instances
            .values()
            .filter(|x| x.node == node.name)
            .map(|x| x.service.clone())
            .collect();
        for s in services {
            self.service_index.insert(s, i);
        }
        self.nodes.insert(node.name.clone(), node);
        i
    }

    /// Registers or replaces an instance (its node must exist).
    pub fn register(&mut self, inst: Instance) -> u64 {
        let i = self.bump();
        self.services_index = i;
        let key = (inst.node.clone(), inst.id.clone());
        if let Some(old) = self.instances.get(&key) {
            self.service_index.insert(old.service.clone(), i);
        }
        self.service_index.insert(inst.service.clone(), i);
        self.instances.insert(key, inst);
        i
    }

    /// Deregisters an instance.
    pub fn deregister(&mut self, node: &str, id: &str) -> Option<u64> {
        let old = self.instances.remove(&(node.into(), id.into()))?;
        let i = self.bump();
        self.services_index = i;
        self.service_index.insert(old.service, i);
        Some(i)
    }

    /// Sets the status of one of an instance's checks.
    pub fn set_check(&mut self, node: &str, id: &str, check: &str, status: &str) -> Option<u64> {
        let key = (node.to_owned(), id.to_owned());
        let service = self.instances.get(&key)?.service.clone();
        let i = self.bump();
        let inst = self.instances.get_mut(&key)?;
        match inst.checks.iter_mut().find(|(c, _)| c == check) {
            Some(c) => c.1 = status.into(),
            None => inst.checks.push((check.into(), status.into())),
        }
        self.service_index.insert(service, i);
        Some(i)
    }

    /// Restores an older snapshot: the indexes go back to `index` (at least 1).
    pub fn restore(&mut self, index: u64) {
        let index = index.max(1);
        self.index = index;
        self.services_index = self.services_index.min(index);
        for v in self.service_index.values_mut() {
            *v = (*v).min(index);
        }
    }

    /// Instances in key order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    /// The blocking index of a resource (never 0, as Consul's `setIndex`).
    pub fn resource_index(&self, r: &Resource) -> u64 {
        let i = match r {
            Resource::Services => self.services_index,
            Resource::Health(s) => self.service_index.get(s).copied().unwrap_or(0),
            Resource::None => self.index,
        };
        i.max(1)
    }

    /// What a request is about.
    pub fn resource(q: &Query) -> Resource {
        if q.path == "/v1/catalog/services" {
            Resource::Services
        } else if let Some(s) = q.path.strip_prefix("/v1/health/service/") {
            Resource::Health(s.to_owned())
        } else {
            Resource::None
        }
    }

    /// The answer to a request now (the server does the blocking).
    pub fn answer(&self, q: &Query) -> Answer {
        if let Some(dc) = q.param("dc")
            && !dc.is_empty()
            && dc != self.datacenter
        {
            return Answer::error(500, "No path to datacenter");
        }
        if let Err(e) = q.wait() {
            return Answer::error(400, &e);
        }
        let resource = Catalog::resource(q);
        let body = match (&resource, q.path.as_str()) {
            (_, "/v1/agent/self") => Ok(self.agent_self()),
            (Resource::Services, _) => self.services(q),
            (Resource::Health(s), _) => self.health(s, q),
            _ => return Answer::error(404, "Not Found"),
        };
        match body {
            Ok(v) => Answer {
                status: 200,
                index: (resource != Resource::None).then(|| self.resource_index(&resource)),
                body: v.to_string(),
            },
            Err(e) => Answer::error(400, &e),
        }
    }

    fn agent_self(&self) -> Value {
        json!({
            "Config": {"Datacenter": self.datacenter, "NodeName": self.node_name,
                       "NodeID": "0d7ad2e4-4b7b-4dcd-9f2c-a6e3a3b37e2a", "Revision": "fake",
                       "Server": true, "Version": "1.20.0"},
            "Member": {"Name": self.node_name, "Addr": "127.0.0.1", "Port": 8301,
                       "Tags": {"dc": self.datacenter, "role": "consul"}, "Status": 1},
            "Meta": {"consul-network-segment": ""}
        })
    }

    fn node_matches(&self, node: &str, q: &Query) -> bool {
        let Some(n) = self.nodes.get(node) else {
            return false;
        };
        q.params("node-meta").iter().all(|m| {
            let (k, v) = m.split_once(':').unwrap_or((m, ""));
            n.meta.get(k).map(String::as_str) == Some(v)
        })
    }

    fn in_scope(inst: &Instance, q: &Query) -> bool {
        let default = |s: &str| if s.is_empty() { "default" } else { s }.to_owned();
        let ns = q.param("ns").filter(|s| !s.is_empty()).unwrap_or("default");
        let part = q
            .param("partition")
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        default(&inst.namespace) == ns && default(&inst.partition) == part
    }

    /// `/v1/catalog/services`.
    fn services(&self, q: &Query) -> Result<Value, String> {
        let filter = q.param("filter").map(Filter::parse).transpose()?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for inst in self.instances.values() {
            if !Catalog::in_scope(inst, q) || !self.node_matches(&inst.node, q) {
                continue;
            }
            if let Some(f) = &filter {
                let node = &self.nodes[&inst.node];
                let doc = json!({
                    "ServiceName": inst.service, "ServiceTags": inst.tags, "ServiceID": inst.id,
                    "ServicePort": inst.port, "ServiceAddress": inst.address,
                    "ServiceMeta": inst.meta, "Node": node.name, "Address": node.address,
                    "NodeMeta": node.meta, "Datacenter": self.datacenter,
                });
                if !f.matches(&doc)? {
                    continue;
                }
            }
            out.entry(inst.service.clone())
                .or_default()
                .extend(inst.tags.iter().cloned());
        }
        Ok(json!(out))
    }

    /// One `/v1/health/service` entry.
    pub fn entry(&self, inst: &Instance) -> Value {
        let node = self.nodes.get(&inst.node).cloned().unwrap_or_default();
        let mut checks = vec![json!({
            "Node": node.name, "CheckID": "serfHealth", "Name": "Serf Health Status",
            "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
            "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
        })];
        for (id, status) in &inst.checks {
            checks.push(json!({
                "Node": node.name, "CheckID": id, "Name": format!("check {id}"),
                "Status": status, "Notes": "", "Output": "", "ServiceID": inst.id,
                "ServiceName": inst.service, "ServiceTags": inst.tags, "Type": "ttl",
            }));
        }
        let mut service = json!({
            "ID": inst.id, "Service": inst.service, "Tags": inst.tags, "Address": inst.address,
            "Meta": inst.meta, "Port": inst.port, "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": false, "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "Connect": {}, "PeerName": "", "CreateIndex": 11, "ModifyIndex": 11,
        });
        if !inst.namespace.is_empty() {
            service["Namespace"] = json!(inst.namespace);
        }
        if !inst.partition.is_empty() {
            service["Partition"] = json!(inst.partition);
        }
        json!({
            "Node": {"ID": "", "Node": node.name, "Address": node.address,
                     "Datacenter": self.datacenter, "TaggedAddresses": node.tagged_addresses,
                     "Meta": node.meta, "CreateIndex": 11, "ModifyIndex": 11},
            "Service": service,
            "Checks": checks,
        })
    }

    /// `/v1/health/service/<name>`.
    fn health(&self, name: &str, q: &Query) -> Result<Value, String> {
        let filter = q.param("filter").map(Filter::parse).transpose()?;
        let tags = q.params("tag");
        let passing = q.param("passing").is_some();
        let mut out = Vec::new();
        for inst in self.instances.values() {
            if inst.service != name
                || !Catalog::in_scope(inst, q)
                || !self.node_matches(&inst.node, q)
                || !tags.iter().all(|t| inst.tags.iter().any(|x| x == t))
                || (passing && inst.checks.iter().any(|(_, s)| s != "passing"))
            {
                continue;
            }
            let e = self.entry(inst);
            if let Some(f) = &filter
                && !f.matches(&e)?
            {
                continue;
            }
            out.push(e);
        }
        Ok(Value::Array(out))
    }
}

/// A `filter` expression: comparisons joined by `and`/`or` (`and` binds tighter).
#[derive(Clone, Debug)]
pub struct Filter(Vec<Vec<Cmp>>);

#[derive(Clone, Debug)]
enum Cmp {
    Eq(String, String, bool),
    In(String, String, bool),
    Empty(String, bool),
}

impl Filter {
    /// Parses an expression, or Consul's refusal.
    pub fn parse(s: &str) -> Result<Filter, String> {
        let bad = || {
            format!(
                "Failed to create boolean expression evaluator: 1:1 (0): no match found, expected: {s:?}"
            )
        };
        let toks = tokens(s).ok_or_else(bad)?;
        let mut ors = vec![Vec::new()];
        let mut i = 0;
        while i < toks.len() {
            let t = |k: usize| toks.get(i + k).map(String::as_str);
            let (cmp, n) = match (t(0), t(1), t(2), t(3)) {
                (Some(v), Some("in"), Some(sel), _) if is_lit(v) => {
                    (Cmp::In(sel.into(), lit(v), true), 3)
                }
                (Some(v), Some("not"), Some("in"), Some(sel)) if is_lit(v) => {
                    (Cmp::In(sel.into(), lit(v), false), 4)
                }
                (Some(sel), Some("contains"), Some(v), _) if is_lit(v) => {
                    (Cmp::In(sel.into(), lit(v), true), 3)
                }
                (Some(sel), Some("=="), Some(v), _) if is_lit(v) => {
                    (Cmp::Eq(sel.into(), lit(v), true), 3)
                }
                (Some(sel), Some("!="), Some(v), _) if is_lit(v) => {
                    (Cmp::Eq(sel.into(), lit(v), false), 3)
                }
                (Some(sel), Some("is"), Some("empty"), _) => (Cmp::Empty(sel.into(), true), 3),
                (Some(sel), Some("is"), Some("not"), Some("empty")) => {
                    (Cmp::Empty(sel.into(), false), 4)
                }
                _ => return Err(bad()),
            };
            if let Some(a) = ors.last_mut() {
                a.push(cmp);
            }
            i += n;
            match toks.get(i).map(String::as_str) {
                None => break,
                Some("and") => i += 1,
                Some("or") => {
                    ors.push(Vec::new());
                    i += 1
                }
                Some(_) => return Err(bad()),
            }
            if i >= toks.len() {
                return Err(bad());
            }
        }
        Ok(Filter(ors))
    }

    /// True if `doc` passes; an unknown selector is Consul's error.
    pub fn matches(&self, doc: &Value) -> Result<bool, String> {
        for and in &self.0 {
            let mut all = true;
            for c in and {
                if !c.eval(doc)? {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Cmp {
    fn eval(&self, doc: &Value) -> Result<bool, String> {
        let get = |sel: &str| -> Result<Value, String> {
            let mut v = doc;
            for part in sel.split('.') {
                v = match v {
                    Value::Object(m) => match m.get(part) {
                        Some(x) => x,
                        // A map's missing key is empty, an unknown field an error.
                        None if sel.contains("Meta") => return Ok(Value::Null),
                        None => return Err(format!("Selector {sel:?} is not valid")),
                    },
                    Value::Array(a) => {
                        // `Checks.Status`: the values of every element.
                        let vals: Vec<Value> =
                            a.iter().filter_map(|e| e.get(part).cloned()).collect();
                        return Ok(Value::Array(vals));
                    }
                    _ => return Err(format!("Selector {sel:?} is not valid")),
                };
            }
            Ok(v.clone())
        };
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        Ok(match self {
            Cmp::Eq(sel, want, eq) => {
                let v = get(sel)?;
                let hit = match &v {
                    Value::Array(a) => a.iter().any(|x| text(x) == *want),
                    _ => text(&v) == *want,
                };
                hit == *eq
            }
            Cmp::In(sel, want, yes) => {
                let v = get(sel)?;
                let hit = match &v {
                    Value::Array(a) => a.iter().any(|x| text(x) == *want),
                    Value::Object(m) => m.contains_key(want),
                    Value::String(s) => s.contains(want.as_str()),
                    _ => false,
                };
                hit == *yes
            }
            Cmp::Empty(sel, yes) => {
                let v = get(sel)?;
                let empty = match &v {
                    Value::Array(a) => a.is_empty(),
                    Value::Object(m) => m.is_empty(),
                    Value::Null => true,
                    other => text(other).is_empty(),
                };
                empty == *yes
            }
        })
    }
}

fn is_lit(t: &str) -> bool {
    t.starts_with('"') || t.starts_with('`') || t.parse::<f64>().is_ok()
}

fn lit(t: &str) -> String {
    t.trim_matches(|c| c == '"' || c == '`').to_owned()
}

/// Splits an expression into words, operators and quoted literals.
fn tokens(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '`' {
            let end = b[i + 1..].iter().position(|&x| x == c)? + i + 1;
            out.push(b[i..=end].iter().collect());
            i = end + 1;
        } else if (c == '=' || c == '!') && b.get(i + 1) == Some(&'=') {
            out.push(format!("{c}="));
            i += 2;
        } else {
            let start = i;
            while i < b.len() && !b[i].is_whitespace() && b[i] != '"' && b[i] != '=' && b[i] != '!'
            {
                i += 1;
            }
            if start == i {
                return None;
            }
            out.push(b[start..i].iter().collect());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(target: &str) -> Query {
        Query::parse(target, Vec::new())
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::new("dc1");
        let mut meta = BTreeMap::new();
        meta.insert("rack".to_owned(), "r1".to_owned());
        c.register_node(Node {
            name: "n1".into(),
            address: "127.0.0.2".into(),
            meta,
            ..Node::default()
        });
        c.register(Instance::new("n1", "web", "web-1", "", 8080).tags(&["prod", "v1"]));
        c.register(Instance::new("n1", "web", "web-2", "127.0.0.3", 8081).tags(&["v1"]));
        c.register(Instance::new("n1", "db", "db-1", "", 5432));
        c
    }

    #[test]
    fn services_list_every_service_with_its_tags() {
        let c = catalog();
        let a = c.answer(&q("/v1/catalog/services"));
        assert_eq!(a.status, 200);
        let v: Value = serde_json::from_str(&a.body).expect("json");
        assert_eq!(v, json!({"consul": [], "db": [], "web": ["prod", "v1"]}));
        assert_eq!(a.index, Some(c.resource_index(&Resource::Services)));
        let v: Value = serde_json::from_str(
            &c.answer(&q(
                "/v1/catalog/services?node-meta=rack%3Ar1&filter=%22prod%22+in+ServiceTags",
            ))
            .body,
        )
        .expect("json");
        assert_eq!(v, json!({"web": ["prod", "v1"]}));
        assert_eq!(c.answer(&q("/v1/catalog/services?dc=dc2")).status, 500);
        assert_eq!(c.answer(&q("/v1/catalog/services?filter=((")).status, 400);
    }

    #[test]
    fn health_entries_filter_by_tag_and_expression() {
        let mut c = catalog();
        let v: Value = serde_json::from_str(&c.answer(&q("/v1/health/service/web?tag=v1")).body)
            .expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        let v: Value =
            serde_json::from_str(&c.answer(&q("/v1/health/service/web?tag=v1&tag=prod")).body)
                .expect("json");
        assert_eq!(v[0]["Service"]["ID"], "web-1");
        assert_eq!(v[0]["Node"]["Meta"]["rack"], "r1");
        assert_eq!(v[0]["Checks"][0]["CheckID"], "serfHealth");
        let v: Value = serde_json::from_str(
            &c.answer(&q("/v1/health/service/web?filter=Service.Port+%3D%3D+8081"))
                .body,
        )
        .expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        // A check going critical moves the service's index, not the catalog's.
        let (si, wi) = (
            c.resource_index(&Resource::Services),
            c.resource_index(&Resource::Health("web".into())),
        );
        c.set_check("n1", "web-1", "service:web-1", "critical");
        assert_eq!(c.resource_index(&Resource::Services), si);
        assert!(c.resource_index(&Resource::Health("web".into())) > wi);
        let v: Value = serde_json::from_str(&c.answer(&q("/v1/health/service/web?passing=1")).body)
            .expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        // A restore takes the indexes back.
        c.restore(3);
        assert_eq!(c.resource_index(&Resource::Health("web".into())), 3);
        assert_eq!(c.resource_index(&Resource::Health("gone".into())), 1);
    }

    #[test]
    fn query_parsing() {
        let x = q("/v1/health/service/a%20b?tag=x+y&tag=z&wait=120000ms&index=9&stale=");
        assert_eq!(x.path, "/v1/health/service/a b");
        assert_eq!(x.params("tag"), ["x y", "z"]);
        assert_eq!(x.index(), 9);
        assert_eq!(x.wait(), Ok(Duration::from_secs(120)));
        assert_eq!(q("/?wait=1h").wait(), Ok(Duration::from_secs(600)));
        assert!(q("/?wait=soon").wait().is_err());
    }
}
