//! DNS discovery end to end against a real BIND 9 (Debian's `bind9`, installed by
//! `.ci/run`) on loopback: every record type through `trawl sd`, truncated answers over
//! TCP, a server that never answers, NXDOMAIN, search domains; and the daemon following
//! live changes (`nsupdate`) in the scenario it shares with trawl-tokio.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn sd(cfg: &Path, resolv: &Path, port: u16) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .arg("sd")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--discovery.dns.resolv-conf={}", resolv.display()))
        .arg(format!("--discovery.dns.port={port}"))
        .output()
        .expect("trawl sd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// `(pool, discovered labels)` of every active target, in order.
fn targets(v: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    v["activeTargets"]
        .as_array()
        .expect("activeTargets")
        .iter()
        .map(|t| {
            (
                t["scrapePool"].as_str().unwrap_or_default().to_owned(),
                t["discoveredLabels"].clone(),
            )
        })
        .collect()
}

fn addresses(v: &serde_json::Value, pool: &str) -> Vec<String> {
    let mut a: Vec<String> = targets(v)
        .into_iter()
        .filter(|(p, _)| p == pool)
        .map(|(_, l)| l["__address__"].as_str().unwrap_or_default().to_owned())
        .collect();
    a.sort();
    a
}

#[test]
fn every_record_type_resolves_against_bind() {
    let d = TempDir::new("dns-types");
    // Sixty SRV records do not fit in a UDP answer (BIND's 1232-byte default).
    let big: String = (0..60)
        .map(|i| {
            format!(
                "_big._tcp IN SRV 0 0 {} 127.0.{}.{}.\n",
                10000 + i,
                i / 200,
                1 + i % 200
            )
        })
        .collect();
    let records = format!(
        "_prom._tcp IN SRV 0 0 9101 127.0.0.11.\n_prom._tcp IN SRV 5 1 9102 127.0.0.12.\n\
         web IN A 127.0.0.13\nweb IN A 127.0.0.14\nweb6 IN AAAA ::1\nmail IN MX 10 127.0.0.15.\n{big}"
    );
    let named = dns::named(&d.0, &records);
    let resolv = named.resolv_conf(&d.0, &["127.0.0.1"], "search trawl.test\n");
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n\
         - {job_name: srv, dns_sd_configs: [{names: [_prom._tcp.trawl.test]}]}\n\
         - {job_name: a, dns_sd_configs: [{names: [web], type: A, port: 80}]}\n\
         - {job_name: aaaa, dns_sd_configs: [{names: [web6.trawl.test], type: AAAA, port: 80}]}\n\
         - {job_name: mx, dns_sd_configs: [{names: [mail.trawl.test], type: MX, port: 25}]}\n\
         - {job_name: ns, dns_sd_configs: [{names: [trawl.test.], type: NS, port: 53}]}\n\
         - {job_name: big, dns_sd_configs: [{names: [_big._tcp.trawl.test]}]}\n\
         - {job_name: missing, dns_sd_configs: [{names: [nothing.trawl.test.], type: A, port: 1}]}\n",
    )
    .expect("config");
    let v = sd(&cfg, &resolv, named.port);
    assert_eq!(addresses(&v, "srv"), ["127.0.0.11:9101", "127.0.0.12:9102"]);
    let srv = targets(&v)
        .into_iter()
        .find(|(p, l)| p == "srv" && l["__address__"] == "127.0.0.12:9102")
        .expect("srv target")
        .1;
    assert_eq!(srv["__meta_dns_name"], "_prom._tcp.trawl.test");
    assert_eq!(srv["__meta_dns_srv_record_target"], "127.0.0.12.");
    assert_eq!(srv["__meta_dns_srv_record_port"], "9102");
    // `web` has one label: the search domain made it web.trawl.test.
    assert_eq!(addresses(&v, "a"), ["127.0.0.13:80", "127.0.0.14:80"]);
    assert_eq!(addresses(&v, "aaaa"), ["[::1]:80"]);
    assert_eq!(addresses(&v, "mx"), ["127.0.0.15:25"]);
    let mx = targets(&v)
        .into_iter()
        .find(|(p, _)| p == "mx")
        .expect("mx")
        .1;
    assert_eq!(mx["__meta_dns_mx_record_target"], "127.0.0.15.");
    assert_eq!(addresses(&v, "ns"), ["ns.trawl.test:53"]);
    // The truncated answer came whole over TCP.
    assert_eq!(addresses(&v, "big").len(), 60);
    assert!(addresses(&v, "missing").is_empty());
}

#[test]
fn a_server_that_never_answers_is_passed_over() {
    let d = TempDir::new("dns-dead");
    let named = dns::named(&d.0, "web IN A 127.0.0.13\n");
    let _hole = dns::black_hole(named.port);
    // The silent server first: one second each, then the real one.
    let resolv = named.resolv_conf(
        &d.0,
        &["127.0.0.2", "127.0.0.1"],
        "options timeout:1 attempts:1\n",
    );
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n- {job_name: a, dns_sd_configs: [{names: [web.trawl.test], type: A, port: 80}]}\n",
    )
    .expect("config");
    let started = std::time::Instant::now();
    let v = sd(&cfg, &resolv, named.port);
    assert_eq!(addresses(&v, "a"), ["127.0.0.13:80"]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the silent server was asked first"
    );
    // Only silent servers: the lookup fails, nothing is discovered, trawl sd still ends.
    let resolv = named.resolv_conf(&d.0, &["127.0.0.2"], "options timeout:1 attempts:2\n");
    let v = sd(&cfg, &resolv, named.port);
    assert!(addresses(&v, "a").is_empty());
}

#[test]
fn dns_changes_reach_the_daemons_targets() {
    let d = TempDir::new("dns-live");
    scenario::dns_changes_reach_the_targets(&d.0, &mut |dir: &Path,
                                                        cfg: &Path,
                                                        data: &Path,
                                                        resolv: &Path,
                                                        port: u16|
     -> Box<dyn Shell> {
        Box::new(Daemon::start_with(
            dir,
            cfg,
            data,
            &[
                format!("--discovery.dns.resolv-conf={}", resolv.display()),
                format!("--discovery.dns.port={port}"),
            ],
        ))
    });
}

#[test]
fn scrape_targets_resolve_through_the_cores_resolver() {
    let d = TempDir::new("dns-names");
    scenario::names_resolve_through_the_resolver(&d.0, &mut |dir: &Path,
                                                             cfg: &Path,
                                                             data: &Path,
                                                             resolv: &Path,
                                                             port: u16,
                                                             hosts: &Path|
     -> Box<dyn Shell> {
        Box::new(Daemon::start_with(
            dir,
            cfg,
            data,
            &[
                format!("--discovery.dns.resolv-conf={}", resolv.display()),
                format!("--discovery.dns.port={port}"),
                format!("--discovery.dns.hosts-file={}", hosts.display()),
            ],
        ))
    });
}

/// The environment variable that marks the run inside the namespaces.
const IN_NAMESPACE: &str = "TRAWL_TEST_IN_NAMESPACE";

/// Issue 17 (§4): the real paths (`/etc/resolv.conf`, `/etc/hosts`, port 53) without
/// touching the host: this test runs [`real_resolver_paths_inside_the_namespace`] again
/// in a network and mount namespace of its own (`unshare -mn`: loopback only, the test's
/// files mounted over the real ones), and asserts it passed there.
#[test]
fn the_real_resolver_paths_in_a_namespace_of_their_own() {
    // As the disk-full test: where namespaces need privileges the run lacks, say so.
    let can = Command::new("unshare")
        .args(["-mn", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        eprintln!(
            "SKIPPED: `unshare -mn` is not permitted here (run as root, as .ci/run does on CI)"
        );
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("unshare")
        .args(["-mn", "--"])
        .arg(exe)
        .args([
            "--exact",
            "real_resolver_paths_inside_the_namespace",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(IN_NAMESPACE, "1")
        .output()
        .expect("unshare (util-linux) runs; the tests run as root");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("test real_resolver_paths_inside_the_namespace ... ok"),
        "{all}"
    );
}

#[test]
#[ignore = "runs inside its own namespaces, started by the_real_resolver_paths_in_a_namespace_of_their_own"]
fn real_resolver_paths_inside_the_namespace() {
    assert_eq!(
        std::env::var(IN_NAMESPACE).as_deref(),
        Ok("1"),
        "only inside `unshare -mn` (it mounts over /etc/resolv.conf and /etc/hosts)"
    );
    let run = |cmd: &str, args: &[&str]| {
        let st = Command::new(cmd).args(args).status().expect(cmd);
        assert!(st.success(), "{cmd} {args:?}");
    };
    run("ip", &["link", "set", "lo", "up"]);
    let d = TempDir::new("dns-namespace");
    let (_nginx, addrs, _) = fleet(&d.0, 26..=27, 3);
    let port = addrs[0].rsplit(':').next().unwrap_or_default().to_owned();
    let host = |a: &str| a.split(':').next().unwrap_or_default().to_owned();
    let named = dns::named_at(
        &d.0,
        &format!(
            "_prom._tcp IN SRV 0 0 {port} {}.\nweb IN A 127.0.0.32\nweb IN A {}\n",
            host(&addrs[0]),
            host(&addrs[1])
        ),
        53,
    );
    assert_eq!(named.port, 53);
    let resolv = d.0.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\nsearch trawl.test\noptions timeout:1 attempts:1\n",
    )
    .expect("resolv.conf");
    let hosts = d.0.join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost\n{} pinned.local\n", host(&addrs[0])),
    )
    .expect("hosts");
    for (file, over) in [(&resolv, "/etc/resolv.conf"), (&hosts, "/etc/hosts")] {
        run("mount", &["--bind", &file.display().to_string(), over]);
    }
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: srv\n    dns_sd_configs: [{{names: [_prom._tcp], refresh_interval: 1s}}]\n  - job_name: names\n    static_configs: [{{targets: ['pinned.local:{port}', 'web:{port}']}}]\n"
        ),
    )
    .expect("config");
    // `trawl sd` with every default: /etc/resolv.conf, port 53, the search domain.
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
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
    assert_eq!(addresses(&v, "srv"), [addrs[0].clone()]);
    // The daemon with every default: DNS discovery, and targets named in /etc/hosts and
    // in DNS (whose first address refuses).
    let t = Daemon::start(&d.0, &cfg, &d.0.join("data"));
    let want = vec![
        (
            "names".to_owned(),
            format!("pinned.local:{port}"),
            "up".to_owned(),
        ),
        ("names".to_owned(), format!("web:{port}"), "up".to_owned()),
        ("srv".to_owned(), addrs[0].clone(), "up".to_owned()),
    ];
    eventually(Duration::from_secs(15), "every target up", || {
        t.active() == want
    });
}
