//! An API-faithful fake of the Kubernetes API server's list and watch surface, written
//! once and used by the shells' end-to-end tests and kubectl's check ([`server`]: real
//! HTTP on loopback), the simulator's Kubernetes world and the benchmarks (the pure
//! [`Cluster`], driven without sockets).
//!
//! What it emulates (from the API concepts documentation and what kube-apiserver and
//! client-go do, as `design/test-components.md` §2 and the spec notes describe):
//! - Resources `pods`, `services`, `endpoints`, `nodes`, `namespaces` (`v1`),
//!   `endpointslices` (`discovery.k8s.io/v1`), `ingresses` (`networking.k8s.io/v1`),
//!   `replicasets` (`apps/v1`), `jobs` (`batch/v1`), cluster-wide and per namespace.
//! - One global, monotonic `resourceVersion`: every create, update and delete takes the
//!   next one; objects carry their own; lists carry the version they reflect.
//! - Lists: `limit` and opaque `continue` tokens (a token older than the compaction
//!   point is `410 Expired`), items without `kind`/`apiVersion` as real servers send.
//! - Watches: from a version (every later change, in order), from `""`/`"0"` (synthetic
//!   `ADDED` for what exists, then changes), `410` as an `ERROR` event when the version
//!   was compacted away, `DELETED` carrying the last state, selector transitions (an
//!   object that stops matching is `DELETED`, one that starts is `ADDED`), bookmarks
//!   only when `allowWatchBookmarks=true`, `timeoutSeconds` ending the stream cleanly.
//! - Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`exists) and field
//!   selectors (`=`, `==`, `!=` on `metadata.name`, `metadata.namespace` and the fields
//!   the real registry supports per kind; another field is `400 field label not
//!   supported`).
//! - Defaults the API server applies (`Service` type `ClusterIP`, `TCP` protocols), a
//!   `uid` and a `creationTimestamp`.
//! - `Status` errors with the HTTP code: fault injection (401/403/500 on the next
//!   requests), tokens (`Authorization: Bearer`), compaction.
//! - Discovery for kubectl: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`
//!   (legacy, non-aggregated documents).
//!
//! What it does not emulate: writes through the API (objects change through this
//! type's methods), `get` of a single object, protobuf, `Table` output (kubectl prints
//! plain lists as `NAME AGE`), the streaming watch-list (`sendInitialEvents`: refused
//! with `422`, as a server with the `WatchList` gate off), consistent snapshots across
//! list pages (a continued page shows the current state; the watch from the first page's
//! version replays what changed in between, so a client still converges), watches from a
//! version in the future (treated as now), `resourceVersionMatch`, admission, RBAC
//! beyond one bearer token, and the `Warning` headers of deprecated APIs.

pub mod server;

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};

/// A resource the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Res {
    /// Plural name in paths.
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Group (`""`: core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Namespaced.
    pub namespaced: bool,
    /// Singular name (discovery).
    pub singular: &'static str,
}

/// Every resource served.
pub const RESOURCES: &[Res] = &[
    res("pods", "Pod", "", true, "pod"),
    res("services", "Service", "", true, "service"),
    res("endpoints", "Endpoints", "", true, "endpoints"),
    res("nodes", "Node", "", false, "node"),
    res("namespaces", "Namespace", "", false, "namespace"),
    Res {
        group: "discovery.k8s.io",
        ..res("endpointslices", "EndpointSlice", "", true, "endpointslice")
    },
    Res {
        group: "networking.k8s.io",
        ..res("ingresses", "Ingress", "", true, "ingress")
    },
    Res {
        group: "apps",
        ..res("replicasets", "ReplicaSet", "", true, "replicaset")
    },
    Res {
        group: "batch",
        ..res("jobs", "Job", "", true, "job")
    },
];

const fn res(
    plural: &'static str,
    kind: &'static str,
    group: &'static str,
    namespaced: bool,
    singular: &'static str,
) -> Res {
    Res {
        plural,
        kind,
        group,
        version: "v1",
        namespaced,
        singular,
    }
}

impl Res {
    /// The resource of a kind (`Pod`).
    pub fn of_kind(kind: &str) -> Option<Res> {
        RESOURCES.iter().copied().find(|r| r.kind == kind)
    }

    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The fields a field selector may name (kube's registry strategies).
    fn selectable(&self, field: &str) -> bool {
        matches!(field, "metadata.name" | "metadata.namespace")
            || match self.plural {
                "pods" => matches!(
                    field,
                    "spec.nodeName"
                        | "spec.restartPolicy"
                        | "spec.schedulerName"
                        | "spec.serviceAccountName"
                        | "spec.hostNetwork"
                        | "status.phase"
                        | "status.podIP"
                        | "status.nominatedNodeName"
                ),
                "nodes" => field == "spec.unschedulable",
                "namespaces" => field == "status.phase",
                _ => false,
            }
    }
}

/// A `Status` error body.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A parsed label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<(String, Op, Vec<String>)>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Exists,
    NotExists,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Splits at commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

impl LabelSelector {
    /// Parses `labels.Parse` syntax; an error is the 400 message.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for term in split_terms(s) {
            let t = term.trim();
            let bad = || format!("unable to parse requirement: {t:?}");
            let r = if let Some(k) = t.strip_prefix('!') {
                (k.trim().to_owned(), Op::NotExists, Vec::new())
            } else if let Some((k, rest)) = t.split_once(" notin ").or_else(|| t.split_once(" in "))
            {
                let op = if t.contains(" notin ") {
                    Op::NotIn
                } else {
                    Op::In
                };
                let rest = rest.trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let vals: Vec<String> = inner
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                (k.trim().to_owned(), op, vals)
            } else if let Some((k, v)) = t.split_once("!=") {
                (k.trim().to_owned(), Op::Ne, vec![v.trim().to_owned()])
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                (k.trim().to_owned(), Op::Eq, vec![v.trim().to_owned()])
            } else {
                (t.to_owned(), Op::Exists, Vec::new())
            };
            if !valid_key(&r.0) || !r.2.iter().all(|v| valid_value(v)) {
                return Err(bad());
            }
            reqs.push(r);
        }
        Ok(LabelSelector(reqs))
    }

    /// True if an object's labels match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, op, vals)| {
            let v = labels.get(k);
            match op {
                Op::Eq => v == vals.first(),
                Op::Ne => v != vals.first(),
                Op::In => v.is_some_and(|v| vals.contains(v)),
                Op::NotIn => v.is_none_or(|v| !vals.contains(v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
            }
        })
    }
}

/// A parsed field selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `fields.ParseSelector` syntax for `res`; errors are 400 messages.
    pub fn parse(s: &str, res: Res) -> Result<FieldSelector, String> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(out));
        }
        for term in s.split(',') {
            let (f, eq, v) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            if !res.selectable(f) {
                return Err(format!("field label not supported: {f}"));
            }
            out.push((f.to_owned(), eq, v.to_owned()));
        }
        Ok(FieldSelector(out))
    }

    /// True if the object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(f, eq, v)| {
            let mut cur = obj;
            for part in f.split('.') {
                cur = cur.get(part).unwrap_or(&Value::Null);
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *v) == *eq
        })
    }
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// What a request asks of one collection.
#[derive(Clone, Debug)]
pub struct Query {
    /// The resource.
    pub res: Res,
    /// The namespace (`""`: all).
    pub namespace: String,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Query {
    fn matches(&self, ns: &str, obj: &Value) -> bool {
        (self.namespace.is_empty() || self.namespace == ns)
            && self.labels.matches(&labels_of(obj))
            && self.fields.matches(obj)
    }
}

/// A change in the log.
#[derive(Clone, Debug)]
struct Entry {
    rv: u64,
    res: Res,
    ns: String,
    old: Option<Value>,
    new: Option<Value>,
}

/// The cluster's state: objects, the change log, the version counter.
#[derive(Debug)]
pub struct Cluster {
    rv: u64,
    objects: BTreeMap<(Res, String, String), Value>,
    log: VecDeque<Entry>,
    /// Changes up to this version are gone from the log (watches from before: 410).
    compacted: u64,
    /// Changes the log keeps before compacting the oldest.
    pub window: usize,
    /// `creationTimestamp` of new objects.
    pub timestamp: String,
}

impl Default for Cluster {
    fn default() -> Cluster {
        Cluster::new()
    }
}

/// A watch on a collection: where it is in the log.
#[derive(Clone, Debug)]
pub struct Watch {
    /// What it watches.
    pub query: Query,
    /// The last version it sent (events or bookmarks).
    pub rv: u64,
    /// It asked for bookmarks.
    pub bookmarks: bool,
    /// `timeoutSeconds`, if given.
    pub timeout_secs: Option<u64>,
}

/// What a request gets.
#[derive(Debug)]
pub enum Reply {
    /// A whole response.
    Whole {
        /// Status code.
        status: u16,
        /// JSON body.
        body: Vec<u8>,
    },
    /// A watch stream: these lines first, then [`Cluster::poll`] for more.
    Watch {
        /// The watch.
        watch: Watch,
        /// Events to send at once (synthetic `ADDED`s, or a 410 `ERROR` that ends it).
        initial: Vec<String>,
        /// The stream ends after `initial`.
        ends: bool,
    },
}

fn whole(status: u16, body: &Value) -> Reply {
    Reply::Whole {
        status,
        body: body.to_string().into_bytes(),
    }
}

/// `application/x-www-form-urlencoded` decoding of one value.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Cluster {
    /// An empty cluster at version 1.
    pub fn new() -> Cluster {
        Cluster {
            rv: 1,
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            compacted: 0,
            window: 100_000,
            timestamp: "2026-01-01T00:00:00Z".into(),
        }
    }

    /// The current version.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object of a kind, as stored.
    pub fn objects_of(&self, kind: &str) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((r, _, _), _)| r.kind == kind)
            .map(|(_, v)| v)
            .collect()
    }

    fn push(&mut self, e: Entry) {
        self.log.push_back(e);
        while self.log.len() > self.window {
            if let Some(old) = self.log.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    /// Creates or replaces an object (its `kind` says the resource); returns its new
    /// version. Applies the server's defaults.
    pub fn apply(&mut self, mut obj: Value) -> u64 {
        let kind = obj["kind"].as_str().unwrap_or("").to_owned();
        let res = Res::of_kind(&kind).unwrap_or_else(|| panic!("unknown kind {kind:?}"));
        obj["apiVersion"] = json!(res.api_version());
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let ns = if res.namespaced {
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        if res.namespaced {
            obj["metadata"]["namespace"] = json!(ns);
        }
        self.rv += 1;
        let key = (res, ns.clone(), name.clone());
        let old = self.objects.get(&key).cloned();
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(self.rv.to_string());
        let uid = old
            .as_ref()
            .and_then(|o| o["metadata"]["uid"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                format!(
                    "{:016x}-uid",
                    trawl_core::hash::fnv1a64(format!("{ns}/{name}/{}", self.rv).as_bytes())
                )
            });
        meta["uid"] = json!(uid);
        let created = old
            .as_ref()
            .and_then(|o| {
                o["metadata"]["creationTimestamp"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| self.timestamp.clone());
        meta["creationTimestamp"] = json!(created);
        defaults(res, &mut obj);
        self.objects.insert(key, obj.clone());
        let rv = self.rv;
        self.push(Entry {
            rv,
            res,
            ns,
            old,
            new: Some(obj),
        });
        rv
    }

    /// Deletes an object; its version, or `None` if it was not there.
    pub fn delete(&mut self, kind: &str, namespace: &str, name: &str) -> Option<u64> {
        let res = Res::of_kind(kind)?;
        let ns = if res.namespaced { namespace } else { "" };
        let mut old = self
            .objects
            .remove(&(res, ns.to_owned(), name.to_owned()))?;
        self.rv += 1;
        // The DELETED event carries the last state at the deletion's version.
        old["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let rv = self.rv;
        self.push(Entry {
            rv,
            res,
            ns: ns.to_owned(),
            old: Some(old),
            new: None,
        });
        Some(rv)
    }

    /// Drops the whole change log: watches and continue tokens from before now get 410.
    pub fn compact(&mut self) {
        self.log.clear();
        self.compacted = self.rv;
    }

    /// Answers one GET of `path?query` (the path as sent).
    pub fn handle(&self, target: &str) -> Reply {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (unescape(k), unescape(v))
            })
            .collect();
        if let Some(doc) = discovery(path) {
            return whole(200, &doc);
        }
        let Some((res, ns)) = route(path) else {
            return whole(
                404,
                &status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
        };
        let labels = match LabelSelector::parse(params.get("labelSelector").map_or("", |s| s)) {
            Ok(l) => l,
            Err(e) => return whole(400, &status(400, "BadRequest", &e)),
        };
        let fields = match FieldSelector::parse(params.get("fieldSelector").map_or("", |s| s), res)
        {
            Ok(f) => f,
            Err(e) => return whole(400, &status(400, "BadRequest", &e)),
        };
        let q = Query {
            res,
            namespace: ns,
            labels,
            fields,
        };
        let watch = params.get("watch").is_some_and(|w| w == "true" || w == "1");
        if params.contains_key("sendInitialEvents") {
            // A server with the WatchList gate off.
            return whole(
                422,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                  "reason": "Invalid", "code": 422,
                  "details": {"causes": [{"reason": "FieldValueForbidden", "field": "sendInitialEvents",
                    "message": "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"}]}}),
            );
        }
        if watch {
            self.start_watch(q, &params)
        } else {
            self.list(&q, &params)
        }
    }

    fn list(&self, q: &Query, params: &BTreeMap<String, String>) -> Reply {
        let limit: usize = params
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let (list_rv, after) = match params.get("continue").filter(|c| !c.is_empty()) {
            None => (self.rv, None),
            Some(tok) => {
                let Some((rv, key)) = tok
                    .split_once(':')
                    .and_then(|(r, k)| Some((r.parse::<u64>().ok()?, k)))
                else {
                    return whole(400, &status(400, "BadRequest", "continue key is not valid"));
                };
                if rv < self.compacted {
                    return whole(
                        410,
                        &status(
                            410,
                            "Expired",
                            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                        ),
                    );
                }
                (rv, Some(key.to_owned()))
            }
        };
        let mut items = Vec::new();
        let mut last = None;
        let mut more = false;
        for ((r, ns, name), obj) in &self.objects {
            if *r != q.res || !q.matches(ns, obj) {
                continue;
            }
            let key = format!("{ns}/{name}");
            if after.as_ref().is_some_and(|a| key.as_str() <= a.as_str()) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            let mut item = obj.clone();
            if let Some(m) = item.as_object_mut() {
                // Real servers leave these out of list items.
                m.remove("kind");
                m.remove("apiVersion");
            }
            items.push(item);
            last = Some(key);
        }
        let mut meta = json!({"resourceVersion": list_rv.to_string()});
        if more && let Some(k) = last {
            meta["continue"] = json!(format!("{list_rv}:{k}"));
        }
        whole(
            200,
            &json!({"kind": format!("{}List", q.res.kind), "apiVersion": q.res.api_version(),
                    "metadata": meta, "items": items}),
        )
    }

    fn start_watch(&self, q: Query, params: &BTreeMap<String, String>) -> Reply {
        let bookmarks = params
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true");
        let timeout_secs = params.get("timeoutSeconds").and_then(|t| t.parse().ok());
        let rv = params.get("resourceVersion").map_or("", |s| s.as_str());
        let mut watch = Watch {
            query: q,
            rv: self.rv,
            bookmarks,
            timeout_secs,
        };
        if rv.is_empty() || rv == "0" {
            let initial = self
                .objects
                .iter()
                .filter(|((r, ns, _), o)| *r == watch.query.res && watch.query.matches(ns, o))
                .map(|(_, o)| event_line("ADDED", o))
                .collect();
            return Reply::Watch {
                watch,
                initial,
                ends: false,
            };
        }
        let Ok(from) = rv.parse::<u64>() else {
            return whole(
                400,
                &status(
                    400,
                    "BadRequest",
                    &format!("invalid resource version {rv:?}"),
                ),
            );
        };
        if from < self.compacted {
            let err = status(
                410,
                "Expired",
                &format!("too old resource version: {from} ({})", self.compacted),
            );
            return Reply::Watch {
                watch,
                initial: vec![format!("{{\"type\":\"ERROR\",\"object\":{err}}}\n")],
                ends: true,
            };
        }
        // A version in the future is taken as now.
        watch.rv = from.min(self.rv);
        let initial = self.poll(&mut watch).unwrap_or_default();
        Reply::Watch {
            watch,
            initial,
            ends: false,
        }
    }

    /// The event lines for `w` since its version, advancing it; `Err` with the `ERROR`
    /// line if its version was compacted away.
    pub fn poll(&self, w: &mut Watch) -> Result<Vec<String>, String> {
        if w.rv < self.compacted {
            let err = status(
                410,
                "Expired",
                &format!("too old resource version: {} ({})", w.rv, self.compacted),
            );
            return Err(format!("{{\"type\":\"ERROR\",\"object\":{err}}}\n"));
        }
        let mut out = Vec::new();
        let start = self.log.partition_point(|e| e.rv <= w.rv);
        for e in self.log.range(start..) {
            w.rv = e.rv;
            if e.res != w.query.res {
                continue;
            }
            let was = e.old.as_ref().is_some_and(|o| w.query.matches(&e.ns, o));
            let is = e.new.as_ref().is_some_and(|n| w.query.matches(&e.ns, n));
            match (&e.old, &e.new, was, is) {
                (_, Some(n), false, true) => out.push(event_line("ADDED", n)),
                (_, Some(n), true, true) => out.push(event_line("MODIFIED", n)),
                // Stops matching: DELETED with the new state.
                (_, Some(n), true, false) => out.push(event_line("DELETED", n)),
                (Some(o), None, true, _) => out.push(event_line("DELETED", o)),
                _ => {}
            }
        }
        w.rv = w.rv.max(self.rv);
        Ok(out)
    }

    /// A bookmark for `w` at the current version.
    pub fn bookmark(&self, w: &mut Watch) -> String {
        w.rv = self.rv;
        let obj = json!({"kind": w.query.res.kind, "apiVersion": w.query.res.api_version(),
                         "metadata": {"resourceVersion": self.rv.to_string(), "creationTimestamp": null}});
        format!("{{\"type\":\"BOOKMARK\",\"object\":{obj}}}\n")
    }
}

/// Pod `i` of a fleet as a controller makes them: labels (`version` among them), two
/// annotations, a ReplicaSet owner, one container with `ports` ports (8000 and up),
/// Ready, at `ip`, in namespace `ns-<i mod namespaces>` on node `node-<i mod 100>`.
pub fn fleet_pod(i: usize, namespaces: usize, ports: usize, version: &str, ip: &str) -> Value {
    let ns = format!("ns-{}", i % namespaces);
    let ports: Vec<Value> = (0..ports)
        .map(|p| json!({"name": format!("p{p}"), "containerPort": 8000 + p}))
        .collect();
    json!({"kind": "Pod",
        "metadata": {"name": format!("app-{i}"), "namespace": ns,
            "labels": {"app": format!("app-{}", i % 50), "pod-template-hash": "7d4b9c8f6", "version": version},
            "annotations": {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{}-7d4b9c8f6", i % 50), "controller": true}]},
        "spec": {"nodeName": format!("node-{}", i % 100), "containers": [
            {"name": "app", "image": "registry.example.com/app:1.2.3", "ports": ports}]},
        "status": {"podIP": ip, "hostIP": format!("192.168.0.{}", i % 100), "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "containerID": format!("containerd://{i:064x}")}]}})
}

fn event_line(kind: &str, obj: &Value) -> String {
    format!("{{\"type\":\"{kind}\",\"object\":{obj}}}\n")
}

/// The API server's defaults for what discovery reads.
fn defaults(res: Res, obj: &mut Value) {
    let tcp = |ports: Option<&mut Value>| {
        if let Some(Value::Array(ps)) = ports {
            for p in ps {
                if p.get("protocol").is_none() {
                    p["protocol"] = json!("TCP");
                }
            }
        }
    };
    match res.plural {
        "services" => {
            if obj["spec"].get("type").is_none() {
                obj["spec"]["type"] = json!("ClusterIP");
            }
            tcp(obj["spec"].get_mut("ports"));
        }
        "pods" => {
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = obj["spec"].get_mut(list) {
                    for c in cs {
                        tcp(c.get_mut("ports"));
                    }
                }
            }
        }
        "endpointslices" => tcp(obj.get_mut("ports")),
        "endpoints" => {
            if let Some(Value::Array(ss)) = obj.get_mut("subsets") {
                for s in ss {
                    tcp(s.get_mut("ports"));
                }
            }
        }
        _ => {}
    }
}

/// The collection a path names: (resource, namespace).
fn route(path: &str) -> Option<(Res, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (ns, plural) = match rest {
        [plural] => ("", *plural),
        ["namespaces", ns, plural] => (*ns, *plural),
        _ => return None,
    };
    let res = RESOURCES
        .iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)?;
    if !res.namespaced && !ns.is_empty() {
        return None;
    }
    Some((res, ns.to_owned()))
}

/// kubectl's discovery documents (legacy form) and `/version`.
fn discovery(path: &str) -> Option<Value> {
    let path = path.trim_end_matches('/');
    let resources = |group: &str, version: &str| -> Value {
        let list: Vec<Value> = RESOURCES
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .map(|r| {
                json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "list", "watch"]})
            })
            .collect();
        let gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
    };
    match path {
        "/version" => Some(json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0",
            "gitCommit": "trawl-fake", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"})),
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
        "/apis" => {
            let mut groups: Vec<&str> = RESOURCES
                .iter()
                .map(|r| r.group)
                .filter(|g| !g.is_empty())
                .collect();
            groups.sort_unstable();
            groups.dedup();
            let gs: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}))
        }
        "/api/v1" => Some(resources("", "v1")),
        _ => {
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            match parts.as_slice() {
                ["apis", g, v] if RESOURCES.iter().any(|r| r.group == *g && r.version == *v) => {
                    Some(resources(g, v))
                }
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ns: &str, app: &str) -> Value {
        json!({"kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
               "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
               "status": {"podIP": "10.0.0.1", "phase": "Running"}})
    }

    fn body(r: Reply) -> (u16, Value) {
        match r {
            Reply::Whole { status, body } => (status, serde_json::from_slice(&body).expect("json")),
            Reply::Watch { .. } => panic!("a watch"),
        }
    }

    #[test]
    fn lists_page_and_select() {
        let mut c = Cluster::new();
        for i in 0..5 {
            c.apply(pod(
                &format!("p{i}"),
                if i % 2 == 0 { "a" } else { "b" },
                if i < 3 { "web" } else { "db" },
            ));
        }
        let (s, l) = body(c.handle("/api/v1/pods?limit=2"));
        assert_eq!(s, 200);
        assert_eq!(l["items"].as_array().map(Vec::len), Some(2));
        assert!(l["items"][0].get("kind").is_none());
        assert_eq!(
            l["items"][0]["spec"]["containers"][0]["ports"][0]["protocol"],
            "TCP"
        );
        let tok = l["metadata"]["continue"].as_str().expect("more").to_owned();
        let (_, l2) = body(c.handle(&format!("/api/v1/pods?limit=2&continue={tok}")));
        assert_eq!(
            l2["metadata"]["resourceVersion"],
            l["metadata"]["resourceVersion"]
        );
        let (_, l) = body(c.handle("/api/v1/namespaces/a/pods?labelSelector=app+in+%28web%29"));
        let names: Vec<&str> = l["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["p0", "p2"]);
        let (_, l) = body(c.handle("/api/v1/pods?fieldSelector=metadata.name%21%3Dp0%2Cspec.nodeName%3Dn1&labelSelector=app%21%3Dweb"));
        assert_eq!(l["items"].as_array().map(Vec::len), Some(2));
        let (s, e) = body(c.handle("/api/v1/pods?fieldSelector=spec.bogus%3D1"));
        assert_eq!(
            (s, e["message"].as_str()),
            (400, Some("field label not supported: spec.bogus"))
        );
        // A change, then compaction: the token's version is gone.
        c.apply(pod("p9", "a", "web"));
        c.compact();
        let (s, e) = body(c.handle(&format!("/api/v1/pods?limit=2&continue={tok}")));
        assert_eq!((s, e["reason"].as_str()), (410, Some("Expired")));
        assert_eq!(body(c.handle("/api/v1/namespaces/a/nodes")).0, 404);
        assert_eq!(
            body(c.handle(
                "/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
            ))
            .0,
            422
        );
    }

    #[test]
    fn watches_replay_translate_selectors_and_expire() {
        let mut c = Cluster::new();
        c.apply(pod("p0", "a", "web"));
        let (_, l) = body(c.handle("/api/v1/pods?labelSelector=app%3Dweb"));
        let rv = l["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned();
        c.apply(pod("p1", "a", "web"));
        c.apply(pod("p0", "a", "db")); // stops matching
        c.delete("Pod", "a", "p1");
        let Reply::Watch { mut watch, initial, ends } = c.handle(&format!("/api/v1/pods?watch=true&labelSelector=app%3Dweb&resourceVersion={rv}&allowWatchBookmarks=true")) else {
            panic!("watch")
        };
        assert!(!ends && watch.bookmarks);
        let types: Vec<String> = initial
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(types, ["ADDED", "DELETED", "DELETED"]);
        c.apply(pod("p0", "a", "web"));
        let more = c.poll(&mut watch).expect("live");
        assert_eq!(more.len(), 1);
        assert!(more[0].starts_with("{\"type\":\"ADDED\""));
        assert!(c.bookmark(&mut watch).contains("\"BOOKMARK\""));
        // From nothing: the current objects, then changes.
        let Reply::Watch { initial, .. } = c.handle("/api/v1/namespaces/a/pods?watch=true") else {
            panic!()
        };
        assert_eq!(initial.len(), 1);
        c.compact();
        let Reply::Watch { initial, ends, .. } =
            c.handle(&format!("/api/v1/pods?watch=true&resourceVersion={rv}"))
        else {
            panic!()
        };
        assert!(ends && initial[0].contains("\"code\":410"), "{initial:?}");
        let mut w2 = watch.clone();
        w2.rv = 1;
        assert!(c.poll(&mut w2).is_err());
    }

    #[test]
    fn discovery_for_kubectl() {
        assert_eq!(body(c_handle("/version")).1["minor"], "32");
        let (_, g) = body(c_handle("/apis"));
        assert!(
            g["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "discovery.k8s.io")
        );
        let (_, r) = body(c_handle("/apis/discovery.k8s.io/v1"));
        assert_eq!(r["resources"][0]["kind"], "EndpointSlice");
    }

    fn c_handle(p: &str) -> Reply {
        Cluster::new().handle(p)
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape("a+b%2Cc%3D%28"), "a b,c=(");
        assert_eq!(unescape("%"), "%");
        assert_eq!(unescape("%4"), "%4");
    }
}
