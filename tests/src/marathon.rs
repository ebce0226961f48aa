//! A fake Marathon's app list, for the discovery tests (no Marathon installs here), after
//! Marathon's published REST API (`GET /v2/apps?embed=apps.tasks`, the `App` and `Task`
//! schemas) for what Prometheus's Marathon discovery reads: each app's `id`, `labels`,
//! `container` (`docker.image`, `portMappings` with `containerPort`, `hostPort`,
//! `servicePort`, `labels`; the older `docker.portMappings`), `portDefinitions`
//! (`port`, `labels`), `networks` (`mode`), `requirePorts`, `tasksRunning`, and its
//! `tasks` (`id`, `appId`, `host`, `ports`, `ipAddresses`, `state`).
//!
//! Authentication as DC/OS's adminrouter does it: with a token required, a request
//! without `Authorization: token=<token>` gets 401 and
//! `{"message": "Invalid authentication credentials"}`.
//!
//! What it does not emulate: the rest of the API (deployments, queues, events, groups),
//! other `embed` values, filters (`cmd`, `id`, `label`), leader redirects and
//! `X-Marathon-Leader`.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::consul::Query;

/// How an app's tasks are reached.
#[derive(Clone, Debug, PartialEq)]
pub enum Ports {
    /// Host networking: the tasks' own ports (`portDefinitions` without
    /// `requirePorts`, each labeled).
    Definitions(Vec<BTreeMap<String, String>>),
    /// A bridged container: `container.portMappings` with these container ports and
    /// labels (the host ports are the tasks').
    Mappings(Vec<(u16, BTreeMap<String, String>)>),
    /// A container network: tasks reached at their IP address on the container ports.
    ContainerNetwork(Vec<u16>),
}

/// One task: its host (or IP address in a container network) and ports.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Its id.
    pub id: String,
    /// The agent's host name or address.
    pub host: String,
    /// The host ports allocated.
    pub ports: Vec<u16>,
    /// Its IP address (container networks).
    pub ip: Option<String>,
}

/// One app.
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    /// Its id (`/prod/web`).
    pub id: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The Docker image.
    pub image: String,
    /// How its tasks are reached.
    pub ports: Ports,
    /// Its running tasks.
    pub tasks: Vec<Task>,
}

impl App {
    /// An app with host-networking port definitions (one per entry of `labels`).
    pub fn new(id: &str, image: &str, ports: Ports) -> App {
        App {
            id: id.into(),
            labels: BTreeMap::new(),
            image: image.into(),
            ports,
            tasks: Vec::new(),
        }
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> App {
        self.labels.insert(k.into(), v.into());
        self
    }

    /// Adds a task on `host` with `ports`.
    pub fn task(mut self, id: &str, host: &str, ports: &[u16]) -> App {
        self.tasks.push(Task {
            id: id.into(),
            host: host.into(),
            ports: ports.to_vec(),
            ip: None,
        });
        self
    }

    /// Adds a task with an IP address of its own (container networks).
    pub fn task_at(mut self, id: &str, host: &str, ip: &str) -> App {
        self.tasks.push(Task {
            id: id.into(),
            host: host.into(),
            ports: Vec::new(),
            ip: Some(ip.into()),
        });
        self
    }

    /// The app as the API renders it, with its tasks embedded.
    pub fn json(&self) -> Value {
        let labels = |l: &BTreeMap<String, String>| json!(l);
        let (port_definitions, container, networks, require) = match &self.ports {
            Ports::Definitions(defs) => (
                defs.iter()
                    .enumerate()
                    .map(
                        |(i, l)| json!({"port": 10000 + i, "protocol": "tcp", "labels": labels(l)}),
                    )
                    .collect::<Vec<_>>(),
                json!({"type": "DOCKER", "docker": {"image": self.image}, "portMappings": []}),
                json!([{"mode": "host"}]),
                false,
            ),
            Ports::Mappings(maps) => (
                Vec::new(),
                json!({"type": "DOCKER", "docker": {"image": self.image},
                       "portMappings": maps.iter().enumerate().map(|(i, (cp, l))| json!({
                           "containerPort": cp, "hostPort": 0, "servicePort": 10100 + i,
                           "protocol": "tcp", "labels": labels(l)})).collect::<Vec<_>>()}),
                json!([{"mode": "container/bridge"}]),
                false,
            ),
            Ports::ContainerNetwork(ports) => (
                Vec::new(),
                json!({"type": "DOCKER", "docker": {"image": self.image},
                       "portMappings": ports.iter().map(|cp| json!({
                           "containerPort": cp, "hostPort": 0, "servicePort": 0,
                           "protocol": "tcp", "labels": {}})).collect::<Vec<_>>()}),
                json!([{"mode": "container", "name": "dcos"}]),
                false,
            ),
        };
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|t| {
                json!({
                    "id": t.id, "appId": self.id, "host": t.host, "ports": t.ports,
                    "ipAddresses": t.ip.iter().map(|ip| json!({"ipAddress": ip, "protocol": "IPv4"})).collect::<Vec<_>>(),
                    "state": "TASK_RUNNING", "stagedAt": "2026-12-06T10:00:00.000Z",
                })
            })
            .collect();
        json!({
            "id": self.id, "cmd": null, "args": null, "instances": self.tasks.len(),
            "cpus": 0.1, "mem": 64, "labels": labels(&self.labels), "container": container,
            "portDefinitions": port_definitions, "networks": networks,
            "requirePorts": require, "tasksRunning": self.tasks.len(), "tasksStaged": 0,
            "tasksHealthy": 0, "tasksUnhealthy": 0, "tasks": tasks,
        })
    }
}

/// The apps, in id order.
#[derive(Clone, Debug, Default)]
pub struct Apps {
    apps: BTreeMap<String, App>,
}

impl Apps {
    /// No apps.
    pub fn new() -> Apps {
        Apps::default()
    }

    /// Adds or replaces an app.
    pub fn put(&mut self, app: App) {
        self.apps.insert(app.id.clone(), app);
    }

    /// Removes an app.
    pub fn remove(&mut self, id: &str) {
        self.apps.remove(id);
    }

    /// The apps.
    pub fn all(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    /// The answer to `GET /v2/apps` (with `embed=apps.tasks`, the tasks; without, none).
    pub fn answer(&self, q: &Query) -> (u16, String) {
        if q.path.trim_end_matches('/') != "/v2/apps" {
            return (
                404,
                json!({"message": format!("Not found: {}", q.path)}).to_string(),
            );
        }
        let embed = q.param("embed") == Some("apps.tasks");
        let apps: Vec<Value> = self
            .apps
            .values()
            .map(|a| {
                let mut v = a.json();
                if !embed && let Some(o) = v.as_object_mut() {
                    o.remove("tasks");
                }
                v
            })
            .collect();
        (200, json!({ "apps": apps }).to_string())
    }
}

#[derive(Debug, Default)]
struct Faults {
    fail: Option<(u32, u16, String)>,
    token: Option<String>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<(Apps, Faults, Vec<Query>)>,
    stop: AtomicBool,
}

/// A running fake Marathon; stops when dropped.
#[derive(Debug)]
pub struct MarathonServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MarathonServer {
    /// Starts on `127.0.0.1` at a port the OS picks.
    pub fn start(apps: Apps) -> MarathonServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Marathon");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new((apps, Faults::default(), Vec::new())),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        crate::accept_loop(listener, s, |s| s.stop.load(Ordering::SeqCst), serve);
        MarathonServer { addr, shared }
    }

    /// Its URL (`http://127.0.0.1:port`), as `servers:` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, (Apps, Faults, Vec<Query>)> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.inner.lock().expect("fake Marathon lock")
    }

    /// Runs `f` on the apps.
    pub fn with<R>(&self, f: impl FnOnce(&mut Apps) -> R) -> R {
        f(&mut self.lock().0)
    }

    /// The next `n` requests answer `status` with `body`.
    pub fn fail_next(&self, n: u32, status: u16, body: &str) {
        self.lock().1.fail = Some((n, status, body.to_owned()));
    }

    /// Requires `Authorization: token=<token>` from now on (`None`: nothing).
    pub fn require_token(&self, token: Option<&str>) {
        self.lock().1.token = token.map(str::to_owned);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Query> {
        self.lock().2.clone()
    }
}

impl Drop for MarathonServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(conn: TcpStream, s: &Shared) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while let Some((target, headers)) = crate::read_request_head(&mut r) {
        let q = Query::parse(&target, headers);
        let mut inner = s.inner.lock().expect("fake Marathon lock");
        inner.2.push(q.clone());
        let (status, body) = if let Some((n, status, body)) = inner.1.fail.clone() {
            inner.1.fail = (n > 1).then(|| (n - 1, status, body.clone()));
            (status, body)
        } else if let Some(t) = inner.1.token.clone()
            && q.header("authorization") != Some(format!("token={t}").as_str())
        {
            (
                401,
                json!({"message": "Invalid authentication credentials"}).to_string(),
            )
        } else {
            inner.0.answer(&q)
        };
        drop(inner);
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
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
    fn apps_with_tasks_embedded_or_not() {
        let mut a = Apps::new();
        a.put(
            App::new("/web", "nginx:1", Ports::Definitions(vec![BTreeMap::new()])).task(
                "web.1",
                "127.0.0.2",
                &[31000],
            ),
        );
        let (s, body) = a.answer(&Query::parse("/v2/apps/?embed=apps.tasks", Vec::new()));
        assert_eq!(s, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["apps"][0]["tasks"][0]["ports"][0], 31000);
        assert_eq!(v["apps"][0]["container"]["docker"]["image"], "nginx:1");
        let (_, body) = a.answer(&Query::parse("/v2/apps", Vec::new()));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["apps"][0].get("tasks").is_none());
        assert_eq!(a.answer(&Query::parse("/v2/groups", Vec::new())).0, 404);
    }
}
