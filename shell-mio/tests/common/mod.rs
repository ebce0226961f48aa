//! Helpers shared by the end-to-end tests: temporary directories, processes stopped by
//! PID, nginx fleets on loopback addresses, trawl itself, its API, `promtool tsdb dump`.
#![allow(dead_code)] // each test file uses some of them

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) mod browser;
pub(crate) mod consul;
pub(crate) mod digitalocean;
pub(crate) mod dns;
pub(crate) mod docker;
pub(crate) mod ec2;
pub(crate) mod eureka;
pub(crate) mod hetzner;
pub(crate) mod hostile;
pub(crate) mod ionos;
pub(crate) mod kube;
pub(crate) mod lightsail;
pub(crate) mod linode;
pub(crate) mod marathon;
pub(crate) mod nomad;
pub(crate) mod puppetdb;
pub(crate) mod receivers;
pub(crate) mod scaleway;
pub(crate) mod scenario;
pub(crate) mod vultr;
pub(crate) mod zookeeper;

/// A fresh directory, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "trawl-e2e-{name}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process stopped (by PID) when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(p.0.id().to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig}");
}

/// Waits for a child to exit (at most `max`); its exit status.
pub(crate) fn wait_exit(p: &mut Proc, max: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + max;
    loop {
        if let Some(s) = p.0.try_wait().expect("try_wait") {
            return s;
        }
        assert!(Instant::now() < end, "the process did not exit in {max:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// nginx serving `www/` on each address (every file as Prometheus text, gzip on; files
/// under `www/sd/` as JSON, for HTTP discovery).
pub(crate) fn nginx(dir: &Path, addrs: &[String]) -> Proc {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    let servers: String = addrs
        .iter()
        .map(|a| {
            format!(
                "  server {{ listen {a}; root {}; location / {{ }} location /sd/ {{ default_type application/json; }} }}\n",
                www.display()
            )
        })
        .collect();
    let conf = format!(
        "worker_processes 1;\nworker_rlimit_nofile 8192;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  types {{ }}\n  default_type \"text/plain; version=0.0.4\";\n  gzip on;\n  gzip_min_length 64;\n  gzip_types text/plain;\n  keepalive_timeout 75s;\n{servers}}}\n",
        d = dir.display()
    );
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    start_nginx(dir, &conf, &addrs)
}

/// nginx on configuration `conf` (written to `dir/nginx.conf`), once every address in
/// `addrs` accepts connections.
pub(crate) fn start_nginx(dir: &Path, conf: &str, addrs: &[&str]) -> Proc {
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (Debian package nginx-light) is installed: .ci/run installs it");
    let p = Proc(child);
    let end = Instant::now() + Duration::from_secs(10);
    for a in addrs {
        while std::net::TcpStream::connect(a).is_err() {
            assert!(Instant::now() < end, "nginx did not listen on {a}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    p
}

pub(crate) fn trawl(dir: &Path, config: &Path, data: &Path, web: u16) -> Proc {
    trawl_with(dir, config, data, web, &[])
}

pub(crate) fn trawl_with(
    dir: &Path,
    config: &Path,
    data: &Path,
    web: u16,
    extra: &[String],
) -> Proc {
    trawl_with_env(dir, config, data, web, extra, &[])
}

/// Points mechanism `name`'s API at `base` for the agents a scenario starts in `dir`
/// (the daemon and `trawl sd` through `TRAWL_TEST_API_BASE_<NAME>`, trawl-tokio
/// through `AgentOptions::api_bases`).
pub(crate) fn point_api(dir: &Path, name: &str, base: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("api_bases"))
        .expect("api_bases");
    writeln!(f, "{name}={base}").expect("write api_bases");
}

/// The API bases [`point_api`] set for `dir`: (mechanism, base).
pub(crate) fn api_bases(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("api_bases"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// [`api_bases`] as the daemon's environment.
pub(crate) fn api_base_env(dir: &Path) -> Vec<(String, String)> {
    api_bases(dir)
        .into_iter()
        .map(|(k, v)| (format!("TRAWL_TEST_API_BASE_{}", k.to_ascii_uppercase()), v))
        .collect()
}

/// [`trawl_with`] with environment variables set for the process.
pub(crate) fn trawl_with_env(
    dir: &Path,
    config: &Path,
    data: &Path,
    web: u16,
    extra: &[String],
    env: &[(&str, &str)],
) -> Proc {
    let log = std::fs::File::create(dir.join("trawl.log")).expect("log");
    // Only the daemon's own tests start it (trawl-tokio's include these helpers too).
    let Some(bin) = option_env!("CARGO_BIN_EXE_trawl") else {
        panic!("the trawl binary is only known to shell-mio's own tests");
    };
    let child = Command::new(bin)
        .envs(env.iter().copied())
        .envs(api_base_env(dir))
        .args(extra)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .arg("--log.level=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start trawl");
    Proc(child)
}

/// A request to trawl's API: status and body.
pub(crate) fn api(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some((status, unchunk(body)?));
    }
    Some((status, body.to_owned()))
}

/// A chunked body, decoded.
fn unchunk(mut b: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = b.split_once("\r\n")?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..n)?);
        b = rest.get(n + 2..)?;
    }
}

/// The active targets' `(scrapePool, instance, health)`, once the API answers.
pub(crate) fn active(port: u16) -> Vec<(String, String, String)> {
    let Some((200, body)) = api(port, "GET", "/api/v1/targets?state=active") else {
        return Vec::new();
    };
    active_from_json(&body)
}

/// (pool, instance, health) of each active target in an `/api/v1/targets` answer, sorted.
pub(crate) fn active_from_json(body: &str) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(body).expect("targets JSON");
    assert_eq!(v["status"], "success");
    let mut out: Vec<(String, String, String)> = v["data"]["activeTargets"]
        .as_array()
        .expect("activeTargets")
        .iter()
        .map(|t| {
            (
                t["scrapePool"].as_str().unwrap_or("").to_owned(),
                t["labels"]["instance"].as_str().unwrap_or("").to_owned(),
                t["health"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Polls until `f` holds (at most `max`).
pub(crate) fn eventually(max: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + max;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `promtool tsdb dump` of a data directory: label set → samples (value as printed, t).
pub(crate) fn dump(data: &Path) -> BTreeMap<String, Vec<(String, i64)>> {
    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(data)
        .output()
        .expect("promtool (Debian package prometheus) is installed: .ci/run installs it");
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(end) = line.rfind('}') else { continue };
        let (labels, rest) = line.split_at(end + 1);
        let mut it = rest.split_whitespace();
        let (Some(v), Some(t)) = (it.next(), it.next()) else {
            continue;
        };
        m.entry(labels.to_owned())
            .or_default()
            .push((v.to_owned(), t.parse().unwrap_or(0)));
    }
    for v in m.values_mut() {
        v.sort_by_key(|x| x.1);
    }
    m
}

pub(crate) fn series<'a>(
    d: &'a BTreeMap<String, Vec<(String, i64)>>,
    name: &str,
    instance: &str,
) -> Vec<&'a (String, i64)> {
    d.iter()
        .filter(|(l, _)| {
            l.starts_with(&format!("{{__name__=\"{name}\""))
                && l.contains(&format!("instance=\"{instance}\""))
        })
        .flat_map(|(_, v)| v)
        .collect()
}

pub(crate) fn body(n: usize) -> String {
    let mut b = String::from("# HELP e2e_metric A test metric.\n# TYPE e2e_metric gauge\n");
    for i in 0..n {
        b.push_str(&format!("e2e_metric{{i=\"{i}\"}} {i}\n"));
    }
    b
}

/// nginx on 127.0.0.`ips` (one free port) serving `series` gauges, and an empty
/// directory for file discovery: the server, its addresses and the directory.
pub(crate) fn fleet(
    d: &Path,
    ips: std::ops::RangeInclusive<u8>,
    series: usize,
) -> (Proc, Vec<String>, PathBuf) {
    let port = free_port();
    let addrs: Vec<String> = ips.map(|i| format!("127.0.0.{i}:{port}")).collect();
    let nginx = nginx(d, &addrs);
    std::fs::write(d.join("www/metrics"), body(series)).expect("metrics");
    let sd = d.join("sd");
    std::fs::create_dir_all(&sd).expect("sd dir");
    (nginx, addrs, sd)
}

/// Runs `trawl sd` once on `cfg` and returns the `instance` labels of the active
/// targets, sorted (the command must succeed).
pub(crate) fn sd_instances(cfg: &Path) -> Vec<String> {
    // Only the daemon's own tests run it (trawl-tokio's include these helpers too).
    let Some(bin) = option_env!("CARGO_BIN_EXE_trawl") else {
        panic!("the trawl binary is only known to shell-mio's own tests");
    };
    let dir = cfg.parent().unwrap_or(Path::new("."));
    let out = std::process::Command::new(bin)
        .envs(api_base_env(dir))
        .arg("sd")
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .expect("trawl sd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut got: Vec<String> = v["activeTargets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["labels"]["instance"].as_str().unwrap_or("").to_owned())
        .collect();
    got.sort();
    got
}

/// The port of a `host:port` address (a fleet's).
pub(crate) fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("an address with a port")
}

/// The instances of `pool`'s targets that are up, sorted.
pub(crate) fn up_instances(t: &dyn Shell, pool: &str) -> Vec<String> {
    let mut v: Vec<String> = t
        .active()
        .into_iter()
        .filter(|x| x.0 == pool && x.2 == "up")
        .map(|x| x.1)
        .collect();
    v.sort();
    v
}

pub(crate) fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("trawl.log")).unwrap_or_default()
}

/// A fault-injecting HTTP front for a receiver on 127.0.0.1:`upstream`: the i-th request
/// (counting from 0) is answered with `plan[i]` when that is non-zero, else forwarded.
/// Returns the port it listens on and a log of the statuses it answered.
pub(crate) fn fault_front(
    upstream: u16,
    plan: Vec<u16>,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u16>>>) {
    let (port, log, _) = fault_front_capturing(upstream, plan);
    (port, log)
}

/// Bodies a [`fault_front_capturing`] received, in order.
pub(crate) type Bodies = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// [`fault_front`], also keeping every request body it receives.
pub(crate) fn fault_front_capturing(
    upstream: u16,
    plan: Vec<u16>,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u16>>>, Bodies) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fault front");
    let port = l.local_addr().expect("addr").port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let bodies: Bodies = Arc::new(Mutex::new(Vec::new()));
    let plan = Arc::new(Mutex::new((0usize, plan)));
    let (log2, bodies2) = (log.clone(), bodies.clone());
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let (log, plan, bodies) = (log2.clone(), plan.clone(), bodies2.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn);
                loop {
                    // One request: head lines, then Content-Length bytes.
                    let mut head = String::new();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    bodies.lock().expect("bodies").push(body.clone());
                    let code = {
                        let mut p = plan.lock().expect("plan");
                        let c = p.1.get(p.0).copied().unwrap_or(0);
                        p.0 += 1;
                        c
                    };
                    let status = if code != 0 {
                        code
                    } else {
                        // Forward; the receiver's status goes back.
                        let fwd = || -> Option<u16> {
                            let mut up =
                                std::net::TcpStream::connect(("127.0.0.1", upstream)).ok()?;
                            let head =
                                head.replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
                            up.write_all(head.as_bytes()).ok()?;
                            up.write_all(&body).ok()?;
                            let mut resp = String::new();
                            up.read_to_string(&mut resp).ok()?;
                            resp.split(' ').nth(1)?.parse().ok()
                        };
                        fwd().unwrap_or(502)
                    };
                    log.lock().expect("log").push(status);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nnope"
                    );
                    let reply = if (200..300).contains(&status) {
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n")
                    } else {
                        reply
                    };
                    if r.get_mut().write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, log, bodies)
}

/// An agent under test, whichever shell runs it: the `trawl` daemon (a process, its HTTP
/// API and signals) or `trawl-tokio` (in the test's process, through its handles). The
/// scenarios in [`scenario`] run against both with the same assertions.
pub(crate) trait Shell {
    /// (pool, instance, health) of each active target, sorted.
    fn active(&self) -> Vec<(String, String, String)>;
    /// `/api/v1/targets` as Prometheus serves it.
    fn targets_json(&self) -> String;
    /// The agent's metrics in the text format.
    fn metrics(&self) -> String;
    /// Reads the configuration file again and applies it.
    fn reload(&mut self);
    /// Shuts down gracefully: scrapes in flight finish, the WAL is written and synced.
    fn stop(&mut self) -> Result<(), String>;
    /// What the agent logged (for failure messages).
    fn log(&self) -> String;
    /// The agent's resident memory, where it is a process of its own.
    fn rss(&self) -> Option<u64> {
        None
    }
}

/// Starts the daemon as a [`Shell`] (the scenarios' `start`).
pub(crate) fn daemon(dir: &Path, config: &Path, data: &Path) -> Box<dyn Shell> {
    Box::new(Daemon::start(dir, config, data))
}

/// The daemon as a [`Shell`].
pub(crate) struct Daemon {
    pub(crate) proc: Proc,
    pub(crate) web: u16,
    pub(crate) dir: PathBuf,
}

impl Daemon {
    /// `trawl` on `config`, data in `data`, its API on a free port.
    pub(crate) fn start(dir: &Path, config: &Path, data: &Path) -> Daemon {
        Daemon::start_with(dir, config, data, &[])
    }

    /// As [`Daemon::start`], with more flags.
    pub(crate) fn start_with(dir: &Path, config: &Path, data: &Path, flags: &[String]) -> Daemon {
        let web = free_port();
        Daemon {
            proc: trawl_with(dir, config, data, web, flags),
            web,
            dir: dir.to_owned(),
        }
    }
}

impl Shell for Daemon {
    fn active(&self) -> Vec<(String, String, String)> {
        active(self.web)
    }
    fn targets_json(&self) -> String {
        api(self.web, "GET", "/api/v1/targets")
            .map(|x| x.1)
            .unwrap_or_default()
    }
    fn metrics(&self) -> String {
        api(self.web, "GET", "/metrics")
            .map(|x| x.1)
            .unwrap_or_default()
    }
    fn reload(&mut self) {
        signal(&self.proc, "HUP");
    }
    fn stop(&mut self) -> Result<(), String> {
        signal(&self.proc, "TERM");
        let status = wait_exit(&mut self.proc, Duration::from_secs(30));
        if status.success() {
            Ok(())
        } else {
            Err(format!("trawl exited with {status}"))
        }
    }
    fn log(&self) -> String {
        log_of(&self.dir)
    }
    fn rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.0.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    }
}

/// Stops a helper process (a receiver) gracefully.
pub(crate) fn stop_proc(p: &mut Proc) {
    signal(p, "TERM");
    assert!(wait_exit(p, Duration::from_secs(30)).success());
}

/// Runs `openssl` with `args` in `dir` (it must succeed).
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl {args:?}");
}

/// A test CA and a server certificate for 127.0.0.8 and `trawl.test` in `dir`
/// (`ca.crt`, `srv.crt`, `srv.key`), with openssl.
pub(crate) fn certs(dir: &Path) {
    let run = |args: &[&str]| openssl(dir, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=trawl test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.8",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.8,DNS:trawl.test\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// nginx serving `www/` over TLS (the `certs` server certificate) on `tls_addr`, and in
/// plain HTTP on `plain_addr` if given.
pub(crate) fn tls_nginx(dir: &Path, tls_addr: &str, plain_addr: Option<&str>) -> Proc {
    let www = dir.join("www");
    let plain = plain_addr.map_or(String::new(), |a| {
        format!(
            "  server {{ listen {a}; root {}; location / {{ }} location /sd/ {{ default_type application/json; }} }}\n",
            www.display()
        )
    });
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  types {{ }}\n  default_type \"text/plain; version=0.0.4\";\n  server {{ listen {tls_addr} ssl; ssl_certificate {d}/srv.crt; ssl_certificate_key {d}/srv.key; root {www}; location / {{ }} location /sd/ {{ default_type application/json; }} }}\n{plain}}}\n",
        d = dir.display(),
        www = www.display()
    );
    let addrs: Vec<&str> = std::iter::once(tls_addr).chain(plain_addr).collect();
    start_nginx(dir, &conf, &addrs)
}

/// tinyproxy on 127.0.0.1:`port` with basic auth `user`/`pass`, logging to
/// `dir/tinyproxy.log`.
pub(crate) fn tinyproxy(dir: &Path, port: u16, user: &str, pass: &str) -> Proc {
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\nBasicAuth {user} {pass}\nDisableViaHeader Yes\n"
        ),
    )
    .expect("tinyproxy.conf");
    let log = std::fs::File::create(dir.join("tinyproxy.log")).expect("log");
    let p = Proc(
        Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy (Debian package tinyproxy) is installed: .ci/run installs it"),
    );
    eventually(Duration::from_secs(10), "tinyproxy listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    p
}

/// `prometheus_sd_refresh_failures_total` of `mechanism` for the job `config` alone.
pub(crate) fn job_refresh_failures(t: &dyn Shell, mechanism: &str, config: &str) -> f64 {
    t.metrics()
        .lines()
        .filter(|l| {
            l.starts_with("prometheus_sd_refresh_failures_total")
                && l.contains(&format!("mechanism=\"{mechanism}\""))
                && l.contains(&format!("config=\"{config}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The sum of `prometheus_sd_refresh_failures_total` for `mechanism`.
pub(crate) fn refresh_failures(t: &dyn Shell, mechanism: &str) -> f64 {
    t.metrics()
        .lines()
        .filter(|l| {
            l.starts_with("prometheus_sd_refresh_failures_total")
                && l.contains(&format!("mechanism=\"{mechanism}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
