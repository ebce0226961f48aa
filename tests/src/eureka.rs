//! A fake Eureka server for the discovery tests (Debian's `eureka` is a map editor, and
//! the Spring server needs Maven Central), after Eureka's REST operations document
//! (`/eureka/apps`): `GET /apps` answers the registry as Eureka's XML (its default;
//! `Accept: application/json` gets the JSON form), `GET /apps/<APP>` one application,
//! `POST /apps/<APP>` registers an instance (`{"instance": {...}}` in JSON, as clients
//! send it; 204), `PUT /apps/<APP>/<id>` renews its lease (200, or 404 if unknown),
//! `DELETE /apps/<APP>/<id>` cancels it (200). Application names are upper-cased, as
//! Eureka does. The answer carries `versions__delta`, `apps__hashcode` and, per
//! instance, `hostName`, `app`, `ipAddr`, `status`, `overriddenstatus`, `port` and
//! `securePort` with `enabled`, `countryId`, `dataCenterInfo` (class and name),
//! `leaseInfo`, `metadata`, the three URLs, `vipAddress`, `secureVipAddress`,
//! `isCoordinatingDiscoveryServer`, `lastUpdatedTimestamp`, `actionType` and
//! `instanceId`.
//!
//! What it does not emulate: lease expiry and eviction (instances stay until cancelled),
//! deltas (`/apps/delta`), VIP and instance queries, status overrides, replication
//! between peers, authentication.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::consul::Query;

/// One registered instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Its application (upper-cased).
    pub app: String,
    /// `instanceId`.
    pub id: String,
    /// `hostName`.
    pub host: String,
    /// `ipAddr`.
    pub ip: String,
    /// `port` and whether it is enabled (`None`: no port element).
    pub port: Option<(u16, bool)>,
    /// `securePort`.
    pub secure_port: Option<(u16, bool)>,
    /// `status` (`UP`, `DOWN`, `STARTING`, `OUT_OF_SERVICE`).
    pub status: String,
    /// `vipAddress`.
    pub vip: String,
    /// `metadata` items.
    pub metadata: BTreeMap<String, String>,
}

impl Instance {
    /// An instance of `app` at `host:port`, up.
    pub fn new(app: &str, id: &str, host: &str, port: u16) -> Instance {
        Instance {
            app: app.to_uppercase(),
            id: id.into(),
            host: host.into(),
            ip: host.into(),
            port: Some((port, true)),
            secure_port: Some((443, false)),
            status: "UP".into(),
            vip: app.to_lowercase(),
            metadata: BTreeMap::new(),
        }
    }

    /// With a metadata item.
    pub fn meta(mut self, k: &str, v: &str) -> Instance {
        self.metadata.insert(k.into(), v.into());
        self
    }

    fn xml(&self, out: &mut String) {
        let port = |name: &str, p: &Option<(u16, bool)>, out: &mut String| {
            if let Some((n, on)) = p {
                out.push_str(&format!("      <{name} enabled=\"{on}\">{n}</{name}>\n"));
            }
        };
        out.push_str("    <instance>\n");
        out.push_str(&format!(
            "      <instanceId>{}</instanceId>\n",
            esc(&self.id)
        ));
        out.push_str(&format!("      <hostName>{}</hostName>\n", esc(&self.host)));
        out.push_str(&format!("      <app>{}</app>\n", esc(&self.app)));
        out.push_str(&format!("      <ipAddr>{}</ipAddr>\n", esc(&self.ip)));
        out.push_str(&format!("      <status>{}</status>\n", esc(&self.status)));
        out.push_str("      <overriddenstatus>UNKNOWN</overriddenstatus>\n");
        port("port", &self.port, out);
        port("securePort", &self.secure_port, out);
        out.push_str("      <countryId>1</countryId>\n");
        out.push_str("      <dataCenterInfo class=\"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo\">\n        <name>MyOwn</name>\n      </dataCenterInfo>\n");
        out.push_str("      <leaseInfo>\n        <renewalIntervalInSecs>30</renewalIntervalInSecs>\n        <durationInSecs>90</durationInSecs>\n      </leaseInfo>\n");
        out.push_str("      <metadata>\n");
        for (k, v) in &self.metadata {
            out.push_str(&format!("        <{k}>{}</{k}>\n", esc(v)));
        }
        out.push_str("      </metadata>\n");
        let base = format!("http://{}:{}", self.host, self.port.map_or(80, |p| p.0));
        out.push_str(&format!(
            "      <homePageUrl>{}/</homePageUrl>\n",
            esc(&base)
        ));
        out.push_str(&format!(
            "      <statusPageUrl>{}/info</statusPageUrl>\n",
            esc(&base)
        ));
        out.push_str(&format!(
            "      <healthCheckUrl>{}/health</healthCheckUrl>\n",
            esc(&base)
        ));
        out.push_str(&format!(
            "      <vipAddress>{}</vipAddress>\n",
            esc(&self.vip)
        ));
        out.push_str(&format!(
            "      <secureVipAddress>{}</secureVipAddress>\n",
            esc(&self.vip)
        ));
        out.push_str(
            "      <isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>\n",
        );
        out.push_str("      <lastUpdatedTimestamp>1796595798000</lastUpdatedTimestamp>\n");
        out.push_str("      <actionType>ADDED</actionType>\n");
        out.push_str("    </instance>\n");
    }

    fn json(&self) -> Value {
        let port =
            |p: &Option<(u16, bool)>| p.map(|(n, on)| json!({"$": n, "@enabled": on.to_string()}));
        json!({
            "instanceId": self.id, "hostName": self.host, "app": self.app,
            "ipAddr": self.ip, "status": self.status, "overriddenStatus": "UNKNOWN",
            "port": port(&self.port), "securePort": port(&self.secure_port),
            "countryId": 1,
            "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
            "metadata": self.metadata, "vipAddress": self.vip, "secureVipAddress": self.vip,
            "isCoordinatingDiscoveryServer": "false", "actionType": "ADDED",
        })
    }

    /// Reads an instance as clients register it (`{"instance": {...}}`).
    pub fn from_json(app: &str, v: &Value) -> Option<Instance> {
        let i = v.get("instance")?;
        let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let port = |k: &str| -> Option<(u16, bool)> {
            let p = i.get(k)?;
            let n = p
                .get("$")
                .and_then(|n| n.as_u64().or_else(|| n.as_str()?.parse().ok()))?;
            let on = match p.get("@enabled") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "true",
                _ => false,
            };
            Some((u16::try_from(n).ok()?, on))
        };
        let metadata = i
            .get("metadata")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let host = s("hostName");
        let id = match s("instanceId") {
            x if x.is_empty() => host.clone(),
            x => x,
        };
        Some(Instance {
            app: app.to_uppercase(),
            id,
            host,
            ip: s("ipAddr"),
            port: port("port"),
            secure_port: port("securePort"),
            status: match s("status") {
                x if x.is_empty() => "UP".into(),
                x => x,
            },
            vip: s("vipAddress"),
            metadata,
        })
    }
}

/// XML text escaping.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The registry: instances by application, then id.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    apps: BTreeMap<String, BTreeMap<String, Instance>>,
    version: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers (or replaces) an instance.
    pub fn put(&mut self, i: Instance) {
        self.version += 1;
        self.apps
            .entry(i.app.clone())
            .or_default()
            .insert(i.id.clone(), i);
    }

    /// Cancels an instance; true if it was there.
    pub fn remove(&mut self, app: &str, id: &str) -> bool {
        let app = app.to_uppercase();
        let Some(m) = self.apps.get_mut(&app) else {
            return false;
        };
        let gone = m.remove(id).is_some();
        if m.is_empty() {
            self.apps.remove(&app);
        }
        self.version += u64::from(gone);
        gone
    }

    /// Every instance.
    pub fn all(&self) -> impl Iterator<Item = &Instance> {
        self.apps.values().flat_map(|m| m.values())
    }

    /// The `apps__hashcode`: counts by status (`UP_2_`).
    fn hashcode(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for i in self.all() {
            *counts.entry(i.status.as_str()).or_default() += 1;
        }
        counts.iter().map(|(s, n)| format!("{s}_{n}_")).collect()
    }

    /// The XML of the applications named (all when `only` is `None`).
    pub fn xml(&self, only: Option<&str>) -> String {
        let mut out =
            String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
        let single = only.is_some();
        if !single {
            out.push_str(&format!(
                "<applications>\n  <versions__delta>{}</versions__delta>\n  <apps__hashcode>{}</apps__hashcode>\n",
                self.version,
                self.hashcode()
            ));
        }
        for (name, m) in &self.apps {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            out.push_str(&format!(
                "  <application>\n    <name>{}</name>\n",
                esc(name)
            ));
            for i in m.values() {
                i.xml(&mut out);
            }
            out.push_str("  </application>\n");
        }
        if !single {
            out.push_str("</applications>\n");
        }
        out
    }

    /// The JSON form (`Accept: application/json`).
    pub fn json(&self) -> String {
        let apps: Vec<Value> = self
            .apps
            .iter()
            .map(|(name, m)| {
                json!({"name": name, "instance": m.values().map(Instance::json).collect::<Vec<_>>()})
            })
            .collect();
        json!({"applications": {"versions__delta": self.version.to_string(),
            "apps__hashcode": self.hashcode(), "application": apps}})
        .to_string()
    }

    /// Answers a request: status, content type, body. `base` is the path prefix the
    /// server lives under (`/eureka`).
    pub fn answer(
        &mut self,
        method: &str,
        q: &Query,
        body: &[u8],
        base: &str,
    ) -> (u16, &'static str, String) {
        let Some(rest) = q.path.strip_prefix(base) else {
            return (404, "text/plain", String::new());
        };
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let json = q
            .header("accept")
            .is_some_and(|a| a.contains("application/json"));
        match (method, parts.as_slice()) {
            ("GET", ["apps"]) if json => (200, "application/json", self.json()),
            ("GET", ["apps"]) => (200, "application/xml", self.xml(None)),
            ("GET", ["apps", app]) => {
                let app = app.to_uppercase();
                if !self.apps.contains_key(&app) {
                    return (404, "text/plain", String::new());
                }
                (200, "application/xml", self.xml(Some(&app)))
            }
            ("POST", ["apps", app]) => {
                let v: Value = match serde_json::from_slice(body) {
                    Ok(v) => v,
                    Err(_) => return (400, "text/plain", String::new()),
                };
                match Instance::from_json(app, &v) {
                    Some(i) if !i.host.is_empty() => {
                        self.put(i);
                        (204, "text/plain", String::new())
                    }
                    _ => (400, "text/plain", String::new()),
                }
            }
            ("PUT", ["apps", app, id]) => {
                let known = self
                    .apps
                    .get(&app.to_uppercase())
                    .is_some_and(|m| m.contains_key(*id));
                (if known { 200 } else { 404 }, "text/plain", String::new())
            }
            ("DELETE", ["apps", app, id]) => {
                if self.remove(app, id) {
                    (200, "text/plain", String::new())
                } else {
                    (404, "text/plain", String::new())
                }
            }
            _ => (404, "text/plain", String::new()),
        }
    }
}

/// The registry, the failures to answer next, the requests seen.
type State = (Registry, Vec<(u16, String)>, Vec<Query>);

#[derive(Debug)]
struct Shared {
    inner: Mutex<State>,
    stop: AtomicBool,
}

/// A running fake Eureka under `/eureka`; stops when dropped.
#[derive(Debug)]
pub struct EurekaServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl EurekaServer {
    /// Starts on `127.0.0.1` at a port the OS picks.
    pub fn start(registry: Registry) -> EurekaServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Eureka");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new((registry, Vec::new(), Vec::new())),
            stop: AtomicBool::new(false),
        });
        crate::accept_loop(
            listener,
            shared.clone(),
            |s| s.stop.load(Ordering::SeqCst),
            serve,
        );
        EurekaServer { addr, shared }
    }

    /// Its service URL (`http://127.0.0.1:port/eureka`), as `server:` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/eureka", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.inner.lock().expect("fake Eureka lock")
    }

    /// Runs `f` on the registry.
    pub fn with<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.lock().0)
    }

    /// The next `GET`s of the registry answer these (status, body) instead.
    pub fn fail_next(&self, answers: &[(u16, &str)]) {
        self.lock()
            .1
            .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Query> {
        self.lock().2.clone()
    }
}

impl Drop for EurekaServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(conn: TcpStream, s: &Shared) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let Some((method, target, headers)) = crate::read_request(&mut r) else {
            return;
        };
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len.min(1 << 20)];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let q = Query::parse(&target, headers);
        let mut inner = s.inner.lock().expect("fake Eureka lock");
        inner.2.push(q.clone());
        let (status, ctype, text) = if method == "GET" && !inner.1.is_empty() {
            let (st, b) = inner.1.remove(0);
            (st, "text/plain", b)
        } else {
            inner.0.answer(&method, &q, &body, "/eureka")
        };
        drop(inner);
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            crate::reason(status),
            text.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_register_and_list() {
        let mut r = Registry::new();
        let post = json!({"instance": {"hostName": "127.0.0.2", "app": "web", "ipAddr": "127.0.0.2",
            "port": {"$": 8080, "@enabled": "true"}, "vipAddress": "web", "metadata": {"a": "1"},
            "dataCenterInfo": {"@class": "x", "name": "MyOwn"}}});
        let q = |m: &str| Query::parse(m, Vec::new());
        let (s, _, _) = r.answer(
            "POST",
            &q("/eureka/apps/web"),
            post.to_string().as_bytes(),
            "/eureka",
        );
        assert_eq!(s, 204);
        assert_eq!(
            r.answer("PUT", &q("/eureka/apps/WEB/127.0.0.2"), b"", "/eureka")
                .0,
            200
        );
        let (s, ct, xml) = r.answer("GET", &q("/eureka/apps"), b"", "/eureka");
        assert_eq!((s, ct), (200, "application/xml"));
        assert!(
            xml.contains("<name>WEB</name>") && xml.contains("<port enabled=\"true\">8080</port>"),
            "{xml}"
        );
        assert!(xml.contains("<a>1</a>") && xml.contains("<apps__hashcode>UP_1_</apps__hashcode>"));
        let json_q = Query::parse(
            "/eureka/apps",
            vec![("accept".into(), "application/json".into())],
        );
        let (_, ct, body) = r.answer("GET", &json_q, b"", "/eureka");
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["applications"]["application"][0]["instance"][0]["port"]["$"],
            8080
        );
        assert_eq!(
            r.answer("DELETE", &q("/eureka/apps/web/127.0.0.2"), b"", "/eureka")
                .0,
            200
        );
        assert_eq!(r.all().count(), 0);
        assert_eq!(
            r.answer("PUT", &q("/eureka/apps/WEB/127.0.0.2"), b"", "/eureka")
                .0,
            404
        );
    }
}
