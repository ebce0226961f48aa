//! A fake PuppetDB query API for the discovery tests' faults and the simulator, after
//! PuppetDB's API reference (`https://www.puppet.com/docs/puppetdb/7/api/query/v4/`):
//! `POST /pdb/query/v4` with a JSON body `{"query": "<PQL>"}` answers the resources the
//! query selects as a JSON array (`application/json; charset=utf-8`), each with
//! `certname`, `resource`, `type`, `title`, `exported`, `tags`, `file`, `line`,
//! `environment` and `parameters`. The end-to-end tests run a real PuppetDB; this fake
//! is what the simulator and the failure injections use.
//!
//! The PQL it understands is the resources entity with equality conditions joined by
//! `and`: `resources { type = "Class" and title = "Nginx" and exported = false }` (fields
//! `type`, `title`, `certname`, `environment`, `exported`); anything else is answered 400
//! with a plain-text message, as PuppetDB answers a query it cannot parse. It does not
//! emulate: the rest of PQL (other entities, `or`, `not`, regular expressions,
//! subqueries, projections), the AST query language, paging (`limit`, `offset`,
//! `order_by`), the other endpoints and authentication (PuppetDB takes client
//! certificates; a plain-HTTP port has none).

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request};

/// One resource of one node's catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// The node's certname.
    pub certname: String,
    /// The resource type (`Class`, `Apache::Vhost`).
    pub kind: String,
    /// The title.
    pub title: String,
    /// Exported (`@@`).
    pub exported: bool,
    /// The environment (`production`).
    pub environment: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Parameters (a JSON object).
    pub parameters: Value,
}

impl Resource {
    /// A class `title` of node `certname`, in `production`, with no parameters.
    pub fn class(certname: &str, title: &str) -> Resource {
        Resource {
            certname: certname.into(),
            kind: "Class".into(),
            title: title.into(),
            exported: false,
            environment: "production".into(),
            tags: vec!["class".into(), title.to_ascii_lowercase()],
            parameters: json!({}),
        }
    }

    /// With a parameter.
    pub fn param(mut self, k: &str, v: Value) -> Resource {
        if let Some(o) = self.parameters.as_object_mut() {
            o.insert(k.into(), v);
        }
        self
    }

    /// PuppetDB's resource hash: a SHA-1 of type and title; here a stable digest of
    /// both in its form (40 hex digits).
    fn hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.kind.bytes().chain([0]).chain(self.title.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        format!(
            "{h:016x}{:016x}{:08x}",
            h.rotate_left(17),
            h as u32 ^ 0x5bd1_e995
        )
    }

    fn json(&self) -> Value {
        json!({
            "certname": self.certname, "resource": self.hash(), "type": self.kind,
            "title": self.title, "exported": self.exported, "tags": self.tags,
            "file": "/etc/puppetlabs/code/environments/production/manifests/site.pp",
            "line": 12, "environment": self.environment, "parameters": self.parameters
        })
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "type" => json!(self.kind),
            "title" => json!(self.title),
            "certname" => json!(self.certname),
            "environment" => json!(self.environment),
            "exported" => json!(self.exported),
            _ => return None,
        })
    }
}

/// The resources of every node's catalog.
#[derive(Clone, Debug, Default)]
pub struct Db {
    /// Every resource, in the order answers list them.
    pub resources: Vec<Resource>,
}

/// A query's conditions: (field, value) pairs that must all hold.
fn parse_pql(q: &str) -> Result<Vec<(String, Value)>, String> {
    let inner = q
        .trim()
        .strip_prefix("resources")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('{'))
        .and_then(|r| r.trim_end().strip_suffix('}'))
        .ok_or_else(|| format!("PQL parse error at line 1, column 1:\n\n{q}\n^"))?;
    let inner = inner.trim();
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for cond in inner.split(" and ") {
        let (field, value) = cond
            .split_once('=')
            .ok_or_else(|| format!("PQL parse error: expected a comparison in '{cond}'"))?;
        let value = value.trim();
        let v = match value {
            "true" => json!(true),
            "false" => json!(false),
            v if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') => {
                json!(v[1..v.len() - 1].replace("\\\"", "\""))
            }
            v => return Err(format!("PQL parse error: unexpected value {v}")),
        };
        out.push((field.trim().to_owned(), v));
    }
    Ok(out)
}

fn text(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8".into(),
        headers: Vec::new(),
        body,
    }
}

impl Api for Db {
    fn answer(&self, req: &Request, _base: &str) -> Reply {
        if req.path != "/pdb/query/v4" {
            return text(404, "Not Found".into());
        }
        if req.method != "POST" {
            return text(405, "Method Not Allowed".into());
        }
        if !req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return text(415, "Unsupported Media Type".into());
        }
        let query = match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) => match v["query"].as_str() {
                Some(q) => q.to_owned(),
                None => return text(400, "Missing required query parameter 'query'".into()),
            },
            Err(e) => return text(400, format!("Malformed JSON for query: {e}")),
        };
        let conds = match parse_pql(&query) {
            Ok(c) => c,
            Err(e) => return text(400, e),
        };
        for (f, _) in &conds {
            if Resource::class("", "").field(f).is_none() {
                return text(
                    400,
                    format!("'{f}' is not a queryable object for resources"),
                );
            }
        }
        let found: Vec<Value> = self
            .resources
            .iter()
            .filter(|r| conds.iter().all(|(f, v)| r.field(f).as_ref() == Some(v)))
            .map(Resource::json)
            .collect();
        Reply::json(200, &Value::Array(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(db: &Db, body: &str) -> Reply {
        let mut r =
            Request::new("POST", "/pdb/query/v4").header_set("Content-Type", "application/json");
        r.body = body.as_bytes().to_vec();
        db.answer(&r, "http://x")
    }

    #[test]
    fn resources_are_selected_by_the_query() {
        let db = Db {
            resources: vec![
                Resource::class("a.example.com", "Nginx").param("port", json!(80)),
                Resource::class("b.example.com", "Nginx"),
                Resource::class("b.example.com", "Ssh"),
            ],
        };
        let r = post(
            &db,
            r#"{"query": "resources { type = \"Class\" and title = \"Nginx\" }"}"#,
        );
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (200, "application/json; charset=utf-8")
        );
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(v[0]["parameters"]["port"], 80);
        assert_eq!(v[0]["resource"].as_str().map(str::len), Some(40));
        let r = post(&db, r#"{"query": "resources {}"}"#);
        assert_eq!(
            serde_json::from_str::<Value>(&r.body)
                .expect("JSON")
                .as_array()
                .map(Vec::len),
            Some(3)
        );
        let r = post(&db, r#"{"query": "nodes {}"}"#);
        assert_eq!(r.status, 400);
        assert!(r.body.starts_with("PQL parse error"), "{}", r.body);
        let r = post(&db, r#"{"query": "resources { color = \"x\" }"}"#);
        assert_eq!(r.status, 400);
    }
}

/// A real PuppetDB (Debian's `puppetdb` package, 7.x) on loopback for the end-to-end
/// tests, on a throwaway PostgreSQL cluster of its own: both in a directory of the test,
/// on ports the OS picked, stopped by PID when dropped. Its catalogs are loaded through
/// PuppetDB's command API, each command waited for until stored.
pub mod server {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    /// PuppetDB's jar, as Debian installs it.
    pub const JAR: &str = "/usr/share/puppetdb/puppetdb.jar";
    /// PostgreSQL's programs, as Debian installs them.
    pub const PGBIN: &str = "/usr/lib/postgresql/15/bin";
    const TS: &str = "2024-01-01T00:00:00.000Z";

    /// True if PuppetDB and PostgreSQL are installed (`.ci/run` installs both).
    pub fn available() -> bool {
        Path::new(JAR).exists() && Path::new(PGBIN).join("initdb").exists()
    }

    /// A running PuppetDB and its PostgreSQL.
    #[derive(Debug)]
    pub struct Server {
        dir: PathBuf,
        port: u16,
        java: Option<Child>,
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    fn root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    /// PostgreSQL refuses to run as root: as `nobody` then.
    fn as_pg(program: &str) -> Command {
        if root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--", program]);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(mut c: Command, what: &str) {
        let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One HTTP/1.0 exchange with 127.0.0.1:`port`: (status, body).
    pub fn http(port: u16, method: &str, target: &str, body: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(90))).ok()?;
        write!(
            s,
            "{method} {target} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    }

    impl Server {
        /// Starts PostgreSQL and PuppetDB in `dir`; waits until PuppetDB answers.
        pub fn start(dir: &Path) -> Server {
            let dir = dir.join("puppetdb");
            for d in ["pg", "sock", "log", "conf", "var"] {
                std::fs::create_dir_all(dir.join(d)).expect("directories");
            }
            if root() {
                // The cluster runs as nobody: its directories are nobody's, the test's
                // directory traversable (it is under the temporary directory, which is).
                if let Some(parent) = dir.parent() {
                    let _ = Command::new("chmod").arg("a+x").arg(parent).status();
                }
                run(
                    {
                        let mut c = Command::new("chown");
                        c.arg("nobody")
                            .arg(&dir)
                            .arg(dir.join("pg"))
                            .arg(dir.join("sock"))
                            .arg(dir.join("log"));
                        c
                    },
                    "chown",
                );
            }
            let bin = |p: &str| format!("{PGBIN}/{p}");
            let mut c = as_pg(&bin("initdb"));
            c.arg("-D")
                .arg(dir.join("pg"))
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
            run(c, "initdb");
            let pg_port = free_port();
            // From here on, dropping `server` stops whatever started.
            let mut server = Server {
                dir: dir.clone(),
                port: 0,
                java: None,
            };
            let mut c = as_pg(&bin("pg_ctl"));
            c.arg("-D")
                .arg(dir.join("pg"))
                .arg("-l")
                .arg(dir.join("log/pg.log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {pg_port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                    dir.join("sock").display()
                ))
                .arg("start")
                .stdout(Stdio::null());
            run(c, "pg_ctl start");
            let psql = |db: &str, sql: &str| {
                let mut c = as_pg(&bin("psql"));
                c.arg("-h").arg(dir.join("sock")).args([
                    "-p",
                    &pg_port.to_string(),
                    "-U",
                    "postgres",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-qAt",
                    "-d",
                    db,
                    "-c",
                    sql,
                ]);
                run(c, sql);
            };
            psql("postgres", "CREATE ROLE puppetdb LOGIN PASSWORD 'puppetdb'");
            psql(
                "postgres",
                "CREATE DATABASE puppetdb OWNER puppetdb ENCODING 'UTF8' TEMPLATE template0",
            );
            psql("puppetdb", "CREATE EXTENSION pg_trgm");
            let port = free_port();
            let w = |name: &str, text: String| std::fs::write(dir.join(name), text).expect(name);
            w(
                "conf/config.ini",
                format!(
                    "[global]\nvardir = {}\nlogging-config = {}\n\n[puppetdb]\ndisable-update-checking = true\n\n[command-processing]\nthreads = 1\n",
                    dir.join("var").display(),
                    dir.join("logback.xml").display()
                ),
            );
            w(
                "conf/jetty.ini",
                format!("[jetty]\nhost = 127.0.0.1\nport = {port}\n"),
            );
            w(
                "conf/database.ini",
                format!(
                    "[database]\nsubname = //127.0.0.1:{pg_port}/puppetdb\nusername = puppetdb\npassword = puppetdb\n"
                ),
            );
            w(
                "logback.xml",
                format!(
                    "<configuration><appender name=\"F\" class=\"ch.qos.logback.core.FileAppender\"><file>{}</file><encoder><pattern>%d{{HH:mm:ss.SSS}} %-5p [%c{{2}}] %m%n</pattern></encoder></appender><root level=\"info\"><appender-ref ref=\"F\"/></root></configuration>\n",
                    dir.join("log/puppetdb.log").display()
                ),
            );
            // Debian's bootstrap.cfg without metrics, authorization and the dashboard
            // (outside conf/: PuppetDB reads every file there as configuration).
            w(
                "bootstrap.cfg",
                [
                    "puppetlabs.trapperkeeper.services.webserver.jetty9-service/jetty9-service",
                    "puppetlabs.trapperkeeper.services.webrouting.webrouting-service/webrouting-service",
                    "puppetlabs.trapperkeeper.services.status.status-service/status-service",
                    "puppetlabs.trapperkeeper.services.scheduler.scheduler-service/scheduler-service",
                    "puppetlabs.puppetdb.cli.services/puppetdb-service",
                    "puppetlabs.puppetdb.command/command-service",
                    "puppetlabs.puppetdb.pdb-routing/maint-mode-service",
                    "puppetlabs.puppetdb.pdb-routing/pdb-routing-service",
                    "puppetlabs.puppetdb.config/config-service",
                    "",
                ]
                .join("\n"),
            );
            let log = std::fs::File::create(dir.join("log/puppetdb.out")).expect("log");
            let java = Command::new("java")
                .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                .arg("-Djava.security.egd=file:/dev/urandom")
                .args([
                    "-cp",
                    JAR,
                    "clojure.main",
                    "-m",
                    "puppetlabs.puppetdb.core",
                    "services",
                ])
                .arg("--config")
                .arg(dir.join("conf"))
                .arg("--bootstrap-config")
                .arg(dir.join("bootstrap.cfg"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("java runs");
            server.java = Some(java);
            server.port = port;
            let deadline = Instant::now() + Duration::from_secs(240);
            loop {
                if http(port, "GET", "/pdb/meta/v1/version", "").is_some_and(|(s, _)| s == 200) {
                    return server;
                }
                let exited = server
                    .java
                    .as_mut()
                    .and_then(|j| j.try_wait().ok().flatten());
                assert!(
                    exited.is_none() && Instant::now() < deadline,
                    "PuppetDB did not start: {}",
                    std::fs::read_to_string(dir.join("log/puppetdb.out")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        }

        /// Its port on 127.0.0.1.
        pub fn port(&self) -> u16 {
            self.port
        }

        /// `http://127.0.0.1:<port>`.
        pub fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        fn command(&self, command: &str, version: u32, certname: &str, payload: &Value) {
            let target = format!(
                "/pdb/cmd/v1?command={command}&version={version}&certname={certname}&producer-timestamp={TS}&secondsToWaitForCompletion=60"
            );
            let (status, body) =
                http(self.port, "POST", &target, &payload.to_string()).expect("PuppetDB answers");
            assert!(
                status == 200 && body.contains("\"processed\" : true"),
                "{command} for {certname}: {status} {body}"
            );
        }

        /// Replaces `certname`'s catalog with `resources` (each `{"type", "title",
        /// "tags", "parameters"}`; the `Stage[main]` that contains them is added).
        pub fn replace_catalog(&self, certname: &str, version: u32, resources: &[Value]) {
            let mut all = vec![
                json!({"type": "Stage", "title": "main", "exported": false, "tags": ["stage"], "parameters": {}}),
            ];
            let mut edges = Vec::new();
            for r in resources {
                let mut r = r.clone();
                r["exported"] = r.get("exported").cloned().unwrap_or(json!(false));
                edges.push(json!({"source": {"type": "Stage", "title": "main"}, "target": {"type": r["type"], "title": r["title"]}, "relationship": "contains"}));
                all.push(r);
            }
            let uuid = format!("6b0ad0b8-0000-4000-8000-{version:012}");
            self.command(
                "replace_catalog",
                9,
                certname,
                &json!({
                    "certname": certname, "version": version.to_string(), "environment": "production",
                    "transaction_uuid": uuid, "catalog_uuid": uuid, "code_id": null, "job_id": null,
                    "producer_timestamp": TS, "producer": "puppet.example.com",
                    "resources": all, "edges": edges
                }),
            );
        }

        /// Deactivates a node: its resources leave the answers.
        pub fn deactivate(&self, certname: &str) {
            self.command(
                "deactivate_node",
                3,
                certname,
                &json!({"certname": certname, "producer_timestamp": "2030-01-01T00:00:00.000Z"}),
            );
        }

        /// A PQL query's answer: (status, body).
        pub fn query(&self, pql: &str) -> (u16, String) {
            http(
                self.port,
                "POST",
                "/pdb/query/v4",
                &json!({"query": pql}).to_string(),
            )
            .expect("PuppetDB answers")
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(mut j) = self.java.take() {
                // SIGTERM by PID, then SIGKILL if it lingers.
                let _ = Command::new("kill").arg(j.id().to_string()).status();
                let deadline = Instant::now() + Duration::from_secs(15);
                while j.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = j.kill();
                let _ = j.wait();
            }
            let mut c = as_pg(&format!("{PGBIN}/pg_ctl"));
            c.arg("-D")
                .arg(self.dir.join("pg"))
                .args(["-m", "fast", "-w", "-t", "20", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
        }
    }
}
