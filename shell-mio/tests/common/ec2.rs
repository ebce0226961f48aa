//! EC2 discovery end to end, shared by both shells: moto in server mode (PyPI's AWS
//! emulator, `moto_server`) holds the instances, boto3 runs and terminates them
//! (`tests/data/moto_ec2.py`), and trawl asks through the SigV4 front
//! (`tests/data/sigv4_front.py`), which checks every request's signature with botocore
//! before passing it to moto (moto checks none). The instances' addresses are moto's
//! private and public ones, never dialled: every target is relabelled to the loopback
//! nginx address its `loopback` tag names.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::kube::labels_of;
use super::scenario::Start;
use super::*;

/// The keys the front accepts.
pub(crate) const ACCESS_KEY: &str = "AKIDTRAWLEC2";
pub(crate) const SECRET_KEY: &str = "trawl/ec2+SECRET";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../shell-mio/tests/data/{name}"))
}

/// moto's server on 127.0.0.1, stopped when dropped.
pub(crate) struct Moto {
    _proc: Proc,
    pub(crate) port: u16,
}

impl Moto {
    pub(crate) fn start(dir: &Path) -> Moto {
        let port = free_port();
        let log = std::fs::File::create(dir.join("moto.log")).expect("moto log");
        let proc = Proc(
            Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("moto_server (PyPI moto[server]) is installed: .ci/run installs it"),
        );
        eventually(Duration::from_secs(30), "moto listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Moto { _proc: proc, port }
    }

    fn boto(&self, args: &[&str]) -> String {
        let out = Command::new("python3")
            .arg(data("moto_ec2.py"))
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("python3 runs boto3");
        assert!(
            out.status.success(),
            "moto_ec2.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Runs an instance with these tags; its id.
    pub(crate) fn run(&self, tags: &[(&str, &str)]) -> String {
        let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["run"];
        args.extend(pairs.iter().map(String::as_str));
        self.boto(&args)
    }

    pub(crate) fn terminate(&self, id: &str) {
        self.boto(&["terminate", id]);
    }
}

/// The SigV4-checking front before moto (or another AWS API), for `ec2` in us-east-1 with
/// [`ACCESS_KEY`]/[`SECRET_KEY`]; its log says `ok` or `bad …` per request.
pub(crate) struct Front {
    _proc: Proc,
    pub(crate) port: u16,
    pub(crate) log: PathBuf,
}

impl Front {
    pub(crate) fn start(dir: &Path, upstream: u16) -> Front {
        Front::start_for(dir, upstream, "ec2", false)
    }

    /// The front for `service`; `pass`: POSTs go on to the same path (AWS's JSON
    /// protocol) instead of remote write's receiver path.
    pub(crate) fn start_for(dir: &Path, upstream: u16, service: &str, pass: bool) -> Front {
        let port = free_port();
        let log = dir.join("front.log");
        let proc = Proc(
            Command::new("python3")
                .arg(data("sigv4_front.py"))
                .args([
                    port.to_string(),
                    upstream.to_string(),
                    ACCESS_KEY.into(),
                    SECRET_KEY.into(),
                    "us-east-1".into(),
                    service.into(),
                ])
                .arg(&log)
                .args(pass.then_some("pass"))
                .spawn()
                .expect("python3 runs the front"),
        );
        eventually(Duration::from_secs(20), "the front listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Front {
            _proc: proc,
            port,
            log,
        }
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Instances are discovered through signed requests, filtered by tag, relabelled to
/// loopback and scraped under their instance ids; one terminated and one run are
/// followed within a refresh; a job whose secret key is wrong is refused (AuthFailure)
/// on every refresh, counted, and keeps no targets.
pub(crate) fn ec2_instances_follow_moto(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=4, 5);
    let port = port_of(&addrs[0]);
    let moto = Moto::start(dir);
    let front = Front::start(dir, moto.port);
    let a = moto.run(&[("env", "prod"), ("loopback", "127.0.0.2"), ("team", "edge")]);
    let b = moto.run(&[("env", "prod"), ("loopback", "127.0.0.3")]);
    let _dev = moto.run(&[("env", "dev"), ("loopback", "127.0.0.4")]);
    let cfg = dir.join("prometheus.yml");
    let relabel = format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_ec2_instance_state], regex: running, action: keep}}\n      - {{source_labels: [__meta_ec2_tag_loopback], target_label: __address__, replacement: '${{1}}:{port}'}}\n      - {{source_labels: [__meta_ec2_instance_id], target_label: instance}}\n      - {{source_labels: [__meta_ec2_tag_team], target_label: team}}\n      - {{source_labels: [__meta_ec2_availability_zone], target_label: az}}\n      - {{source_labels: [__meta_ec2_availability_zone_id], target_label: az_id}}\n      - {{source_labels: [__meta_ec2_region], target_label: region}}\n"
    );
    let block = |secret: &str| {
        format!(
            "    ec2_sd_configs:\n      - {{region: us-east-1, endpoint: 'http://127.0.0.1:{}', access_key: {ACCESS_KEY}, secret_key: '{secret}', refresh_interval: 1s, filters: [{{name: 'tag:env', values: [prod]}}]}}\n",
            front.port
        )
    };
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ec2\n{}{relabel}  - job_name: ec2-wrong-key\n{}{relabel}",
            block(SECRET_KEY),
            block("not-the-key"),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    eventually(Duration::from_secs(30), "the prod instances", || {
        up_instances(&*t, "ec2") == want
    });
    let l = labels_of(&*t, "ec2");
    let la = l.iter().find(|l| l["instance"] == a.as_str()).expect("a");
    assert_eq!(la["team"], "edge");
    assert_eq!(la["az"], "us-east-1b");
    assert!(
        la["az_id"]
            .as_str()
            .is_some_and(|z| z.starts_with("use1-az")),
        "{la}"
    );
    assert_eq!(la["region"], "us-east-1");
    assert!(up_instances(&*t, "ec2-wrong-key").is_empty());

    moto.terminate(&b);
    let c = moto.run(&[("env", "prod"), ("loopback", "127.0.0.4")]);
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    eventually(Duration::from_secs(30), "b out, c in", || {
        up_instances(&*t, "ec2") == want
    });
    eventually(
        Duration::from_secs(20),
        "the wrong key's refreshes fail",
        || refresh_failures(&*t, "ec2") >= 2.0,
    );
    assert!(up_instances(&*t, "ec2-wrong-key").is_empty());
    let lines = front.lines();
    assert!(
        lines.iter().filter(|l| *l == "ok").count() >= 4,
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "bad signature"), "{lines:?}");
    assert!(
        lines.iter().all(|l| l == "ok" || l == "bad signature"),
        "every request reached moto or was refused for its signature: {lines:?}"
    );
}
