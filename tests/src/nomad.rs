//! A fake Nomad agent's service-registration API, for the discovery tests (no Nomad
//! binary installs here), after Nomad's published API documents for what Prometheus's
//! Nomad discovery calls:
//!
//! - `GET /v1/services`: one entry per namespace, `{"Namespace", "Services": [{"ServiceName",
//!   "Tags"}]}`, the tags the union over the service's registrations;
//! - `GET /v1/service/<name>`: the registrations (`ID`, `ServiceName`, `Namespace`,
//!   `NodeID`, `Datacenter`, `JobID`, `AllocID`, `Tags`, `Address`, `Port`,
//!   `CreateIndex`, `ModifyIndex`);
//! - `namespace` (default `default`, `*` for all), `region` (another one: 500 `No path
//!   to region`), `stale`; `X-Nomad-Index`, `X-Nomad-KnownLeader`,
//!   `X-Nomad-LastContact`;
//! - ACLs: with a token required, `X-Nomad-Token` or `Authorization: Bearer`, else 403
//!   `Permission denied`.
//!
//! What it does not emulate: blocking queries (Prometheus's Nomad discovery does not make
//! them), pagination (`per_page`, `next_token`), `filter`, and the rest of the API.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::consul::Query;

/// One service registration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registration {
    /// Its ID.
    pub id: String,
    /// The service's name.
    pub service: String,
    /// Its namespace.
    pub namespace: String,
    /// The node it runs on.
    pub node_id: String,
    /// Its datacenter.
    pub datacenter: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its address.
    pub address: String,
    /// Its port.
    pub port: u16,
}

impl Registration {
    /// A registration of `service` in namespace `default`, dc `dc1`.
    pub fn new(service: &str, id: &str, address: &str, port: u16) -> Registration {
        Registration {
            id: id.into(),
            service: service.into(),
            namespace: "default".into(),
            node_id: format!("node-{id}"),
            datacenter: "dc1".into(),
            address: address.into(),
            port,
            ..Registration::default()
        }
    }

    /// With tags.
    pub fn tags(mut self, tags: &[&str]) -> Registration {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }
}

/// The registrations, by ID, and the raft index.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// The region's name.
    pub region: String,
    regs: BTreeMap<String, Registration>,
    index: u64,
}

impl Registry {
    /// An empty registry in `region`.
    pub fn new(region: &str) -> Registry {
        Registry {
            region: region.into(),
            regs: BTreeMap::new(),
            index: 1,
        }
    }

    /// Registers or replaces a registration.
    pub fn register(&mut self, r: Registration) {
        self.index += 1;
        self.regs.insert(r.id.clone(), r);
    }

    /// Removes a registration.
    pub fn deregister(&mut self, id: &str) {
        self.index += 1;
        self.regs.remove(id);
    }

    fn in_namespace<'a>(&'a self, q: &Query) -> impl Iterator<Item = &'a Registration> {
        let ns = q
            .param("namespace")
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
            .to_owned();
        self.regs
            .values()
            .filter(move |r| ns == "*" || r.namespace == ns)
    }

    /// The status and body of a request.
    pub fn answer(&self, q: &Query) -> (u16, String) {
        if let Some(r) = q.param("region")
            && !r.is_empty()
            && r != self.region
        {
            return (500, "No path to region".into());
        }
        if q.path == "/v1/services" {
            let mut by_ns: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
            for r in self.in_namespace(q) {
                by_ns
                    .entry(&r.namespace)
                    .or_default()
                    .entry(&r.service)
                    .or_default()
                    .extend(r.tags.iter().map(String::as_str));
            }
            let v: Vec<Value> = by_ns
                .into_iter()
                .map(|(ns, services)| {
                    let s: Vec<Value> = services
                        .into_iter()
                        .map(|(name, tags)| json!({"ServiceName": name, "Tags": tags}))
                        .collect();
                    json!({"Namespace": ns, "Services": s})
                })
                .collect();
            return (200, Value::Array(v).to_string());
        }
        if let Some(name) = q.path.strip_prefix("/v1/service/") {
            let v: Vec<Value> = self
                .in_namespace(q)
                .filter(|r| r.service == name)
                .map(|r| {
                    json!({"ID": r.id, "ServiceName": r.service, "Namespace": r.namespace,
                           "NodeID": r.node_id, "Datacenter": r.datacenter, "JobID": "job",
                           "AllocID": "alloc", "Tags": r.tags, "Address": r.address,
                           "Port": r.port, "CreateIndex": 10, "ModifyIndex": self.index})
                })
                .collect();
            return (200, Value::Array(v).to_string());
        }
        (404, "Not Found".into())
    }
}

#[derive(Debug, Default)]
struct Faults {
    fail: Option<(u32, u16, String)>,
    token: Option<String>,
    hang: bool,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<(Registry, Faults, Vec<Query>)>,
    changed: Condvar,
    stop: AtomicBool,
}

/// A running fake Nomad agent; stops when dropped.
#[derive(Debug)]
pub struct NomadServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl NomadServer {
    /// Starts on `127.0.0.1` at a port the OS picks.
    pub fn start(registry: Registry) -> NomadServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Nomad");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new((registry, Faults::default(), Vec::new())),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        crate::accept_loop(listener, s, |s| s.stop.load(Ordering::SeqCst), serve);
        NomadServer { addr, shared }
    }

    /// Its URL (`http://127.0.0.1:port`), as `server:` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, (Registry, Faults, Vec<Query>)> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.inner.lock().expect("fake Nomad lock")
    }

    /// Runs `f` on the registry.
    pub fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.lock().0)
    }

    /// The next `n` requests answer `status` with `body`.
    pub fn fail_next(&self, n: u32, status: u16, body: &str) {
        self.lock().1.fail = Some((n, status, body.to_owned()));
    }

    /// Requires an ACL token from now on (`None`: none).
    pub fn require_token(&self, token: Option<&str>) {
        self.lock().1.token = token.map(str::to_owned);
    }

    /// Stops answering (requests are read and left hanging), or resumes.
    pub fn hang(&self, on: bool) {
        self.lock().1.hang = on;
        self.shared.changed.notify_all();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Query> {
        self.lock().2.clone()
    }
}

impl Drop for NomadServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(conn: TcpStream, s: &Shared) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while let Some((target, headers)) = crate::read_request_head(&mut r) {
        let q = Query::parse(&target, headers);
        let mut inner = s.inner.lock().expect("fake Nomad lock");
        inner.2.push(q.clone());
        while inner.1.hang && !s.stop.load(Ordering::SeqCst) {
            inner = s
                .changed
                .wait_timeout(inner, Duration::from_millis(100))
                .expect("fake Nomad lock")
                .0;
        }
        let (status, body) = if let Some((n, status, body)) = inner.1.fail.clone() {
            inner.1.fail = (n > 1).then(|| (n - 1, status, body.clone()));
            (status, body)
        } else if let Some(t) = inner.1.token.clone()
            && q.header("x-nomad-token") != Some(t.as_str())
            && q.header("authorization") != Some(format!("Bearer {t}").as_str())
        {
            (403, "Permission denied".into())
        } else {
            inner.0.answer(&q)
        };
        let index = inner.0.index;
        drop(inner);
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nX-Nomad-Index: {index}\r\n\
             X-Nomad-Knownleader: true\r\nX-Nomad-Lastcontact: 0\r\nContent-Length: {}\r\n\r\n",
            crate::reason(status),
            body.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_registrations_by_namespace_and_region() {
        let mut r = Registry::new("global");
        r.register(Registration::new("web", "w1", "127.0.0.2", 80).tags(&["a"]));
        r.register(Registration::new("web", "w2", "127.0.0.3", 80).tags(&["b"]));
        let mut other = Registration::new("db", "d1", "127.0.0.4", 5432);
        other.namespace = "ops".into();
        r.register(other);
        let q = |t: &str| Query::parse(t, Vec::new());
        let (st, body) = r.answer(&q("/v1/services?namespace=default&region=global&stale="));
        assert_eq!(st, 200);
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            v,
            json!([{"Namespace": "default", "Services": [{"ServiceName": "web", "Tags": ["a", "b"]}]}])
        );
        let v: Value =
            serde_json::from_str(&r.answer(&q("/v1/services?namespace=*")).1).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        let v: Value = serde_json::from_str(&r.answer(&q("/v1/service/web")).1).expect("json");
        assert_eq!(v[1]["Address"], "127.0.0.3");
        assert_eq!(r.answer(&q("/v1/services?region=eu")).0, 500);
    }
}
