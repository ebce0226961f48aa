//! Docker Engines for the discovery tests.
//!
//! - [`real::Dockerd`]: a real `dockerd` (Debian's `docker.io`), started in its own
//!   network and mount namespaces (`unshare -mn`) with its state under a test directory,
//!   no iptables, the vfs storage driver, and a busybox image imported offline. Its
//!   containers' addresses and published ports live in that namespace only: nothing the
//!   tests run sends a packet to them.
//! - [`Engine`] and [`EngineServer`]: an API-faithful fake of the Engine API endpoints
//!   Prometheus's Docker and Swarm discovery call, for fault injection (errors, hangs,
//!   resets, bad bodies) and for the simulator. It follows the Engine API reference
//!   (v1.41 shapes, as `dockerd` 20.10 answers them here): `GET /_ping` (with
//!   `Api-Version`), `GET /v<version>/containers/json`, `/networks`, `/services`,
//!   `/tasks` and `/nodes`, with `filters` in both encodings (`{"k":{"v":true}}` and
//!   `{"k":["v"]}`). Filters it applies: `label` (`key` or `key=value`) on containers,
//!   services, nodes and networks; `name` (substring) on containers, services and
//!   networks; `id` (prefix) everywhere; `desired-state` and `service` (id or name) on
//!   tasks; `role` on nodes. Any other filter name is refused with 400 and `invalid
//!   filter`, as `dockerd` does. A version newer than its own is refused with 400, older
//!   than 1.24 too.
//!
//! What the fake does not emulate: every other endpoint (inspect, events, create…),
//! `all`, `limit`, `size` and `status` parameters, the other filters (`status`,
//! `ancestor`, `network`, `health`, `mode`…), and the Swarm-mode errors a daemon outside
//! a swarm gives (503 `This node is not a swarm manager`).

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::consul::Query;

/// The API version the fake speaks (dockerd 20.10's).
pub const API_VERSION: &str = "1.41";

/// The Engine's state: the objects each listing returns, as JSON in the Engine's shapes.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    /// Containers by id.
    pub containers: BTreeMap<String, Value>,
    /// Networks by id.
    pub networks: BTreeMap<String, Value>,
    /// Swarm services by id.
    pub services: BTreeMap<String, Value>,
    /// Swarm tasks by id.
    pub tasks: BTreeMap<String, Value>,
    /// Swarm nodes by id.
    pub nodes: BTreeMap<String, Value>,
}

/// A container to add: what discovery reads.
#[derive(Clone, Debug)]
pub struct Container {
    /// Its id.
    pub id: String,
    /// Its name (without the leading `/`).
    pub name: String,
    /// Its image.
    pub image: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig.NetworkMode` (`default`, `host`, `container:<id>`, a network name).
    pub network_mode: String,
    /// Networks by name: (network id, IPv4 address).
    pub networks: BTreeMap<String, (String, String)>,
    /// Ports: (private, public, public IP, protocol).
    pub ports: Vec<(u16, u16, String, String)>,
}

impl Container {
    /// A container on the default bridge network at `ip`, no ports.
    pub fn new(id: &str, name: &str, ip: &str) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            image: "busybox:1".into(),
            labels: BTreeMap::new(),
            network_mode: "default".into(),
            networks: BTreeMap::from([("bridge".into(), ("net-bridge".into(), ip.into()))]),
            ports: Vec::new(),
        }
    }

    /// With a label.
    pub fn label(mut self, k: &str, v: &str) -> Container {
        self.labels.insert(k.into(), v.into());
        self
    }

    /// With a TCP port (published when `public` is not 0).
    pub fn port(mut self, private: u16, public: u16, public_ip: &str) -> Container {
        self.ports
            .push((private, public, public_ip.into(), "tcp".into()));
        self
    }

    /// The Engine's JSON for it.
    pub fn json(&self) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(private, public, ip, proto)| {
                let mut p = json!({"PrivatePort": private, "Type": proto});
                if *public != 0 {
                    p["PublicPort"] = json!(public);
                    p["IP"] = json!(ip);
                }
                p
            })
            .collect();
        let networks: serde_json::Map<String, Value> = self
            .networks
            .iter()
            .map(|(name, (id, ip))| {
                (
                    name.clone(),
                    json!({"IPAMConfig": null, "Links": null, "Aliases": null,
                           "NetworkID": id, "EndpointID": format!("ep-{}-{name}", self.id),
                           "Gateway": "", "IPAddress": ip, "IPPrefixLen": 16,
                           "IPv6Gateway": "", "GlobalIPv6Address": "",
                           "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": null}),
                )
            })
            .collect();
        json!({
            "Id": self.id,
            "Names": [format!("/{}", self.name)],
            "Image": self.image,
            "ImageID": format!("sha256:{}", "6e".repeat(32)),
            "Command": "/bin/sleep 1000",
            "Created": 1_796_595_798,
            "Ports": ports,
            "Labels": self.labels,
            "State": "running",
            "Status": "Up 1 second",
            "HostConfig": {"NetworkMode": self.network_mode},
            "NetworkSettings": {"Networks": networks},
            "Mounts": [],
        })
    }
}

/// A network's JSON (`GET /networks`).
pub fn network(id: &str, name: &str, scope: &str, labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({
        "Name": name, "Id": id, "Created": "2026-12-06T22:11:16.04Z", "Scope": scope,
        "Driver": if scope == "swarm" { "overlay" } else { "bridge" },
        "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false, "Attachable": false, "Ingress": name == "ingress",
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": {},
        "Options": {}, "Labels": labels,
    })
}

/// A Swarm service's JSON: replicated, its TCP ports (target, published, mode) and its
/// virtual IPs (network id, CIDR address).
pub fn service(
    id: &str,
    name: &str,
    labels: &[(&str, &str)],
    ports: &[(u16, u16, &str)],
    vips: &[(&str, &str)],
) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|(t, p, m)| json!({"Protocol": "tcp", "TargetPort": t, "PublishedPort": p, "PublishMode": m}))
        .collect();
    let vips: Vec<Value> = vips
        .iter()
        .map(|(n, a)| json!({"NetworkID": n, "Addr": a}))
        .collect();
    json!({
        "ID": id, "Version": {"Index": 19},
        "Spec": {
            "Name": name, "Labels": labels,
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox:1", "Labels": {}},
                             "Runtime": "container"},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {"Mode": "vip", "Ports": ports},
        },
        "Endpoint": {"Spec": {"Mode": "vip", "Ports": ports}, "Ports": ports, "VirtualIPs": vips},
    })
}

/// A Swarm task's JSON: its service, node, slot, state, host-mode ports (target,
/// published) and network attachments (network id, CIDR address).
pub fn task(
    id: &str,
    service: &str,
    node: &str,
    slot: u32,
    state: &str,
    host_ports: &[(u16, u16)],
    attachments: &[(&str, &str)],
) -> Value {
    let ports: Vec<Value> = host_ports
        .iter()
        .map(|(t, p)| json!({"Protocol": "tcp", "TargetPort": t, "PublishedPort": p, "PublishMode": "host"}))
        .collect();
    let attachments: Vec<Value> = attachments
        .iter()
        .map(|(n, a)| json!({"Network": {"ID": n, "Spec": {"Name": n}}, "Addresses": [a]}))
        .collect();
    json!({
        "ID": id, "ServiceID": service, "NodeID": node, "Slot": slot,
        "Spec": {"ContainerSpec": {"Image": "busybox:1", "Labels": {"task.of": service}}},
        "Status": {"State": state, "Message": state,
                   "ContainerStatus": {"ContainerID": format!("ctr-{id}"), "PID": 1, "ExitCode": 0},
                   "PortStatus": {"Ports": ports}},
        "DesiredState": if state == "running" { "running" } else { "shutdown" },
        "NetworksAttachments": attachments,
    })
}

/// A Swarm node's JSON: a ready manager (leader when `leader`) at `addr`.
pub fn node(id: &str, hostname: &str, addr: &str, leader: bool, labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({
        "ID": id, "Version": {"Index": 9},
        "Spec": {"Labels": labels, "Role": "manager", "Availability": "active"},
        "Description": {"Hostname": hostname,
                        "Platform": {"Architecture": "x86_64", "OS": "linux"},
                        "Engine": {"EngineVersion": "20.10.24+dfsg1"}},
        "Status": {"State": "ready", "Addr": addr},
        "ManagerStatus": {"Leader": leader, "Reachability": "reachable",
                          "Addr": format!("{addr}:2377")},
    })
}

/// Parsed `filters`: name → accepted values.
type Filters = BTreeMap<String, Vec<String>>;

/// Reads `filters` in either of the Engine's encodings.
fn parse_filters(q: &Query) -> Result<Filters, String> {
    let Some(text) = q.param("filters") else {
        return Ok(Filters::new());
    };
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid filter: {e}"))?;
    let mut out = Filters::new();
    for (k, vals) in v.as_object().ok_or("invalid filter")? {
        let list: Vec<String> = match vals {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => return Err("invalid filter".into()),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

fn labels_match(labels: &Value, wanted: &[String]) -> bool {
    wanted.iter().all(|w| {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w.as_str(), None),
        };
        match (labels.get(k).and_then(Value::as_str), v) {
            (Some(_), None) => true,
            (Some(have), Some(v)) => have == v,
            (None, _) => false,
        }
    })
}

/// Checks a listing's filters: `allowed` names only, each `f(name, values)` true.
fn apply(
    items: &BTreeMap<String, Value>,
    filters: &Filters,
    allowed: &[&str],
    f: impl Fn(&Value, &str, &[String]) -> bool,
) -> Result<Vec<Value>, String> {
    if let Some(bad) = filters.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("invalid filter '{bad}'"));
    }
    Ok(items
        .values()
        .filter(|v| {
            filters
                .iter()
                .all(|(k, vals)| vals.is_empty() || f(v, k, vals))
        })
        .cloned()
        .collect())
}

fn id_match(v: &Value, key: &str, vals: &[String]) -> bool {
    let id = v.get(key).and_then(Value::as_str).unwrap_or("");
    vals.iter().any(|x| id.starts_with(x.as_str()))
}

/// Go's `versions.LessThan`.
fn older(a: &str, b: &str) -> bool {
    let p = |s: &str| -> Vec<u64> { s.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    p(a) < p(b)
}

impl Engine {
    /// An empty Engine.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Adds (or replaces) a container.
    pub fn put_container(&mut self, c: &Container) {
        self.containers.insert(c.id.clone(), c.json());
    }

    /// The answer to a request: status, headers, body.
    pub fn answer(&self, q: &Query) -> (u16, Vec<(String, String)>, String) {
        let json_headers = vec![
            ("Api-Version".to_owned(), API_VERSION.to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Server".to_owned(), "Docker/20.10.24 (linux)".to_owned()),
        ];
        let err = |status: u16, m: &str| {
            (
                status,
                json_headers.clone(),
                json!({ "message": m }).to_string(),
            )
        };
        if q.path == "/_ping" {
            return (
                200,
                vec![
                    ("Api-Version".to_owned(), API_VERSION.to_owned()),
                    (
                        "Content-Type".to_owned(),
                        "text/plain; charset=utf-8".to_owned(),
                    ),
                ],
                "OK".to_owned(),
            );
        }
        let (version, path) = match q.path.strip_prefix("/v").and_then(|r| r.split_once('/')) {
            Some((v, p)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                (Some(v), format!("/{p}"))
            }
            _ => (None, q.path.clone()),
        };
        if let Some(v) = version {
            if older(API_VERSION, v) {
                return err(
                    400,
                    &format!(
                        "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                    ),
                );
            }
            if older(v, "1.24") {
                return err(
                    400,
                    &format!(
                        "client version {v} is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
                    ),
                );
            }
        }
        let filters = match parse_filters(q) {
            Ok(f) => f,
            Err(e) => return err(400, &e),
        };
        let spec_labels = |v: &Value| v.pointer("/Spec/Labels").cloned().unwrap_or(Value::Null);
        let listed = match path.trim_end_matches('/') {
            "/containers/json" => apply(
                &self.containers,
                &filters,
                &["label", "name", "id"],
                |v, k, vals| match k {
                    "label" => labels_match(&v["Labels"], vals),
                    "name" => vals.iter().any(|n| {
                        v["Names"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .any(|x| x.contains(n.as_str()))
                    }),
                    _ => id_match(v, "Id", vals),
                },
            ),
            "/networks" => apply(
                &self.networks,
                &filters,
                &["label", "name", "id"],
                |v, k, vals| match k {
                    "label" => labels_match(&v["Labels"], vals),
                    "name" => vals
                        .iter()
                        .any(|n| v["Name"].as_str().unwrap_or("").contains(n.as_str())),
                    _ => id_match(v, "Id", vals),
                },
            ),
            "/services" => apply(
                &self.services,
                &filters,
                &["label", "name", "id"],
                |v, k, vals| match k {
                    "label" => labels_match(&spec_labels(v), vals),
                    "name" => vals.iter().any(|n| {
                        v.pointer("/Spec/Name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .contains(n.as_str())
                    }),
                    _ => id_match(v, "ID", vals),
                },
            ),
            "/tasks" => apply(
                &self.tasks,
                &filters,
                &["desired-state", "service", "id"],
                |v, k, vals| match k {
                    "desired-state" => vals
                        .iter()
                        .any(|s| v["DesiredState"].as_str() == Some(s.as_str())),
                    "service" => {
                        let sid = v["ServiceID"].as_str().unwrap_or("");
                        let name = self
                            .services
                            .get(sid)
                            .and_then(|s| s.pointer("/Spec/Name"))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        vals.iter().any(|s| s == sid || s == name)
                    }
                    _ => id_match(v, "ID", vals),
                },
            ),
            "/nodes" => apply(
                &self.nodes,
                &filters,
                &["label", "role", "id"],
                |v, k, vals| match k {
                    "label" => labels_match(&spec_labels(v), vals),
                    "role" => vals
                        .iter()
                        .any(|r| v.pointer("/Spec/Role").and_then(Value::as_str) == Some(r)),
                    _ => id_match(v, "ID", vals),
                },
            ),
            _ => return err(404, "page not found"),
        };
        match listed {
            Ok(items) => (200, json_headers, Value::Array(items).to_string()),
            Err(e) => err(400, &e),
        }
    }
}

/// What the fake does to the next requests.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers this status with `{"message": …}`.
    Status(u16, String),
    /// Answers 200 with this body.
    Body(String),
    /// Reads the request and never answers (until the server stops).
    Hang,
    /// Closes the connection without an answer.
    Reset,
}

#[derive(Debug, Default)]
struct State {
    engine: Engine,
    /// Faults, with the path suffix of the requests they meet.
    faults: Vec<(String, Fault)>,
    requests: Vec<Query>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

/// A fake Engine serving on a Unix socket; stops when dropped.
#[derive(Debug)]
pub struct EngineServer {
    path: PathBuf,
    shared: Arc<Shared>,
}

impl EngineServer {
    /// Serves `engine` at `path` (a Unix socket it creates).
    pub fn start(path: &Path, engine: Engine) -> EngineServer {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("bind the fake Engine's socket");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                engine,
                ..State::default()
            }),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        EngineServer {
            path: path.to_owned(),
            shared,
        }
    }

    /// The `host:` for it (`unix:///…`).
    pub fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.state.lock().expect("fake Engine lock")
    }

    /// Runs `f` on the Engine's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.lock().engine)
    }

    /// The next requests whose path ends with `on` meet these faults, one each, in
    /// order.
    pub fn fault_next(&self, on: &str, faults: &[Fault]) {
        self.lock()
            .faults
            .extend(faults.iter().map(|f| (on.to_owned(), f.clone())));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Query> {
        self.lock().requests.clone()
    }
}

impl Drop for EngineServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(conn: UnixStream, s: &Shared) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while let Some((target, headers)) = crate::read_request_head(&mut r) {
        let q = Query::parse(&target, headers);
        let mut st = s.state.lock().expect("fake Engine lock");
        st.requests.push(q.clone());
        let fault = st
            .faults
            .iter()
            .position(|(on, _)| q.path.ends_with(on.as_str()))
            .map(|i| st.faults.remove(i).1);
        let (status, headers, body) = match fault {
            None => st.engine.answer(&q),
            Some(Fault::Status(code, m)) => (code, Vec::new(), json!({ "message": m }).to_string()),
            Some(Fault::Body(b)) => (200, Vec::new(), b),
            Some(Fault::Hang) => {
                drop(st);
                while !s.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            Some(Fault::Reset) => return,
        };
        drop(st);
        let mut head = format!("HTTP/1.1 {status} {}\r\n", crate::reason(status));
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        if w.write_all(head.as_bytes()).is_err() || w.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

pub mod real {
    //! A real `dockerd` in its own namespaces.

    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// The image every container runs (imported from the static busybox).
    pub const IMAGE: &str = "trawl-test/busybox:1";

    /// A running daemon; stopped (its containers removed) when dropped.
    #[derive(Debug)]
    pub struct Dockerd {
        dir: PathBuf,
        child: Option<Child>,
    }

    impl Dockerd {
        /// [`Dockerd::start`], or `None` (saying so) where the run may not make
        /// namespaces (not root); under `CI` that is a failure.
        pub fn start_or_skip() -> Option<Dockerd> {
            let can = Command::new("unshare")
                .args(["-mn", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !can {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "unshare -mn fails: the Docker tests need root (see .ci/run)"
                );
                eprintln!("skipped: a real dockerd needs root for its namespaces (unshare -mn)");
                return None;
            }
            Some(Dockerd::start())
        }

        /// Starts a daemon with its state under a short directory of its own (socket
        /// paths must stay under 108 bytes), waits until it answers, and imports
        /// [`IMAGE`].
        pub fn start() -> Dockerd {
            for bin in ["dockerd", "docker", "unshare", "ip"] {
                assert!(
                    which(bin),
                    "{bin} is not installed: apt-get install docker.io busybox-static iproute2 util-linux (see .ci/run)"
                );
            }
            assert!(
                Path::new("/bin/busybox").exists(),
                "busybox is not installed: apt-get install busybox-static (see .ci/run)"
            );
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir = PathBuf::from(format!("/tmp/trawl-dk-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("dockerd dir");
            let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
            let script = format!(
                "ip link set lo up && exec dockerd --data-root {d}/root --exec-root {d}/x --pidfile {d}/pid -H unix://{d}/docker.sock --iptables=false --ip6tables=false --storage-driver=vfs --log-level=warn",
                d = dir.display()
            );
            let child = Command::new("unshare")
                .args(["-mn", "--propagation", "private", "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start dockerd");
            let mut d = Dockerd {
                dir,
                child: Some(child),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while d.get("/_ping").map(|(s, _)| s) != Some(200) {
                if Instant::now() > deadline
                    || d.child
                        .as_mut()
                        .is_some_and(|c| c.try_wait().ok().flatten().is_some())
                {
                    panic!("dockerd did not start; its log:\n{}", d.log());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            d.import_image();
            d
        }

        /// Its socket, as `host:` takes it.
        pub fn host(&self) -> String {
            format!("unix://{}", self.socket().display())
        }

        fn socket(&self) -> PathBuf {
            self.dir.join("docker.sock")
        }

        /// The daemon's log.
        pub fn log(&self) -> String {
            std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
        }

        /// `GET path` on the daemon's socket: status and body.
        pub fn get(&self, path: &str) -> Option<(u16, String)> {
            let mut s = UnixStream::connect(self.socket()).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: close\r\n\r\n"
            )
            .ok()?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).ok()?;
            let text = String::from_utf8_lossy(&out).into_owned();
            let status = text.get(9..12)?.parse().ok()?;
            let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
            Some((status, body))
        }

        /// Runs the Docker CLI against this daemon; its standard output (it must
        /// succeed).
        pub fn docker(&self, args: &[&str]) -> String {
            let out = Command::new("docker")
                .arg("-H")
                .arg(self.host())
                .args(args)
                .output()
                .expect("run docker");
            assert!(
                out.status.success(),
                "docker {args:?} failed: {}\ndockerd's log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }

        fn import_image(&self) {
            let root = self.dir.join("image/bin");
            std::fs::create_dir_all(&root).expect("image dir");
            std::fs::copy("/bin/busybox", root.join("busybox")).expect("copy busybox");
            for tool in ["sh", "sleep"] {
                let _ = std::os::unix::fs::symlink("busybox", root.join(tool));
            }
            let tar = self.dir.join("image.tar");
            let ok = Command::new("tar")
                .arg("-C")
                .arg(self.dir.join("image"))
                .arg("-cf")
                .arg(&tar)
                .arg(".")
                .status()
                .expect("tar")
                .success();
            assert!(ok, "tar of the image");
            self.docker(&["import", &tar.display().to_string(), IMAGE]);
        }

        /// Starts a container that sleeps: `args` go before the image (`--name`,
        /// `-l`, `-p`, `--network`…). Returns its id.
        pub fn run(&self, args: &[&str]) -> String {
            let mut all = vec!["run", "-d", "--stop-signal", "SIGKILL"];
            all.extend_from_slice(args);
            all.extend_from_slice(&[IMAGE, "/bin/sleep", "100000"]);
            self.docker(&all)
        }

        /// Makes this daemon a single-node swarm manager advertising 127.0.0.1.
        pub fn swarm_init(&self) {
            self.docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        }

        /// Creates a Swarm service that sleeps: `args` go before the image. Waits until
        /// its tasks run. Returns its id.
        pub fn service(&self, args: &[&str]) -> String {
            let mut all = vec!["service", "create", "-d", "--stop-signal", "SIGKILL"];
            all.extend_from_slice(args);
            all.extend_from_slice(&[IMAGE, "/bin/sleep", "100000"]);
            let id = self.docker(&all);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let states = self.docker(&["service", "ps", "--format", "{{.CurrentState}}", &id]);
                if !states.is_empty() && states.lines().all(|l| l.starts_with("Running")) {
                    return id;
                }
                assert!(
                    Instant::now() < deadline,
                    "service {id} did not run: {states}\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn which(bin: &str) -> bool {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            || Path::new("/usr/sbin").join(bin).is_file()
            || Path::new("/sbin").join(bin).is_file()
    }

    impl Drop for Dockerd {
        fn drop(&mut self) {
            // Containers first (their processes would outlive the daemon), then the
            // swarm, then the daemon; its namespaces go with its last process.
            if let Ok(out) = Command::new("docker")
                .arg("-H")
                .arg(self.host())
                .args(["ps", "-aq"])
                .output()
            {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                let _ = Command::new("docker")
                    .arg("-H")
                    .arg(self.host())
                    .args(["swarm", "leave", "--force"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if !ids.is_empty() {
                    let _ = Command::new("docker")
                        .arg("-H")
                        .arg(self.host())
                        .args(["rm", "-f"])
                        .args(&ids)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
            if let Some(mut c) = self.child.take() {
                // SIGTERM: dockerd shuts its containerd down cleanly.
                let _ = Command::new("kill").arg(c.id().to_string()).status();
                let deadline = Instant::now() + Duration::from_secs(15);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(target: &str) -> Query {
        Query::parse(target, Vec::new())
    }

    #[test]
    fn listings_filter_as_the_engine_does() {
        let mut e = Engine::new();
        e.put_container(&Container::new("c1", "web", "172.17.0.2").label("a", "b"));
        e.put_container(&Container::new("c2", "db", "172.17.0.3"));
        let (s, h, _) = e.answer(&q("/_ping"));
        assert_eq!(s, 200);
        assert!(
            h.iter()
                .any(|(k, v)| k == "Api-Version" && v == API_VERSION)
        );
        let body = |t: &str| -> Value { serde_json::from_str(&e.answer(&q(t)).2).unwrap() };
        assert_eq!(body("/v1.41/containers/json").as_array().unwrap().len(), 2);
        // Both encodings.
        let f1 = trawl_core::gourl::query_escape(r#"{"label":{"a=b":true}}"#);
        let f2 = trawl_core::gourl::query_escape(r#"{"name":["db"]}"#);
        assert_eq!(
            body(&format!("/v1.41/containers/json?filters={f1}"))[0]["Id"],
            "c1"
        );
        assert_eq!(
            body(&format!("/v1.41/containers/json?filters={f2}"))[0]["Id"],
            "c2"
        );
        let bad = trawl_core::gourl::query_escape(r#"{"colour":{"red":true}}"#);
        let (s, _, b) = e.answer(&q(&format!("/v1.41/containers/json?filters={bad}")));
        assert_eq!(
            (s, b.as_str()),
            (400, r#"{"message":"invalid filter 'colour'"}"#)
        );
        assert_eq!(e.answer(&q("/v1.52/containers/json")).0, 400);
        assert_eq!(e.answer(&q("/v1.12/containers/json")).0, 400);
        assert_eq!(e.answer(&q("/v1.41/images/json")).0, 404);
    }
}
