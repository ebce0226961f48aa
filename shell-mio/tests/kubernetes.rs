//! Kubernetes discovery end to end against the fake API server (`trawl_tests::kube`):
//! every role through the daemon (the scenario trawl-tokio runs too), `trawl sd` listing
//! once, the in-cluster configuration over TLS with a test CA and a rotating token,
//! hostile answers, and the fake itself checked with the real `kubectl`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::kube::*;
use common::*;
use serde_json::json;
use trawl_tests::kube::server::KubeServer;

#[test]
fn every_role_discovers_and_follows_changes_through_the_daemon() {
    let d = TempDir::new("k8s-roles");
    kubernetes_roles_follow_the_api(&d.0, &mut daemon);
}

#[test]
fn trawl_sd_lists_once_and_prints_the_targets() {
    let d = TempDir::new("k8s-sd");
    let k = KubeServer::start();
    populate(&k, 9100);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(&cfg, config(&k.url(), "127.0.0.2:9100")).expect("config");
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
    let pools: Vec<(String, String)> = v["activeTargets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            (
                t["scrapePool"].as_str().unwrap_or("").to_owned(),
                t["labels"]["instance"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for want in [
        ("pods", "127.0.0.3:9100"),
        ("slices", "127.0.0.4:9100"),
        ("endpoints", "127.0.0.3:9100"),
        ("services", "127.0.0.2:9100"),
        ("nodes", "n1"),
        ("ingresses", "127.0.0.2:9100"),
    ] {
        assert!(
            pools.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} in {pools:?}"
        );
    }
    // Lists only: no watch was opened.
    let reqs = k.requests();
    assert!(!reqs.is_empty());
    assert!(
        reqs.iter().all(|r| !r.target.contains("watch=true")),
        "{reqs:?}"
    );
}

/// kubectl (the preinstalled dispatcher; the fake's `/version` picks its 1.32 client)
/// lists and watches the fake like a real API server.
#[test]
fn kubectl_lists_and_watches_the_fake() {
    let Ok(v) = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    else {
        eprintln!("SKIPPED: kubectl is not installed here");
        return;
    };
    assert!(v.status.success());
    let d = TempDir::new("k8s-kubectl");
    let k = KubeServer::start();
    populate(&k, 9100);
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .arg(format!("--server={}", k.url()))
            .arg(format!("--cache-dir={}", d.0.join("cache").display()))
            .env("HOME", &d.0)
            .env("KUBECONFIG", d.0.join("none"))
            .args(args)
            .output()
            .expect("kubectl")
    };
    let out = kubectl(&["get", "pods", "-n", "shop", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["web-1", "web-2"]);
    let out = kubectl(&["get", "endpointslices", "-A"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("web-abc") && text.contains("shop"), "{text}");
    let out = kubectl(&[
        "get",
        "pods",
        "-A",
        "-l",
        "app in (web)",
        "--field-selector",
        "metadata.name!=web-2",
        "-o",
        "name",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pod/web-1");
    // A watch: changes stream in; kubectl exits when the server ends the stream.
    k.max_watch(Some(Duration::from_secs(3)));
    let k2 = &k;
    std::thread::scope(|s| {
        let w = s.spawn(|| kubectl(&["get", "pods", "-n", "shop", "-w", "-o", "name"]));
        std::thread::sleep(Duration::from_millis(1000));
        k2.apply(pod(
            "web-9",
            "shop",
            "127.0.0.9",
            9100,
            json!({"app": "web"}),
        ));
        let out = w.join().expect("watch");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("pod/web-1") && text.contains("pod/web-9"),
            "{text}"
        );
    });
    let reqs = k.requests();
    assert!(
        reqs.iter()
            .any(|r| r.target.contains("watch=true") && r.target.contains("resourceVersion=")),
        "kubectl watched from its list's version"
    );
    let raw = kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/shop/pods?watch=true&resourceVersion=1&timeoutSeconds=1",
    ]);
    assert!(raw.status.success());
    assert!(String::from_utf8_lossy(&raw.stdout).contains("\"type\":\"ADDED\""));
}

/// In a pod: `KUBERNETES_SERVICE_HOST`/`PORT` in the environment, the service account
/// directory moved by its flag (the scenario trawl-tokio runs too, with options).
#[test]
fn in_cluster_over_tls_with_a_rotating_token() {
    let d = TempDir::new("k8s-incluster");
    in_cluster_over_tls(&d.0, &mut |dir, cfg, data, (host, port), sa| {
        let web = free_port();
        let flags = [format!(
            "--discovery.kubernetes.service-account-dir={}",
            sa.display()
        )];
        let env = [
            ("KUBERNETES_SERVICE_HOST", host),
            ("KUBERNETES_SERVICE_PORT", port),
        ];
        Box::new(Daemon {
            proc: trawl_with_env(dir, cfg, data, web, &flags, &env),
            web,
            dir: dir.to_owned(),
        })
    });
}

/// Hostile or broken answers: 401, 500, a hung server, a malformed event. The targets
/// stay, the failures are counted, and discovery recovers.
#[test]
fn bad_answers_keep_the_last_targets_and_recover() {
    let d = TempDir::new("k8s-hostile");
    let (_nginx, addrs, _) = fleet(&d.0, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let k = KubeServer::start();
    populate(&k, port);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs: [{{role: pod, api_server: '{}', namespaces: {{names: [shop]}}}}]\n", k.url()),
    )
    .expect("config");
    let t = Daemon::start(&d.0, &cfg, &d.0.join("data"));
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let up = |t: &Daemon| -> Vec<String> { t.active().into_iter().map(|x| x.1).collect() };
    eventually(Duration::from_secs(30), "pods", || up(&t) == [a(3), a(4)]);
    let failures = |t: &Daemon| sample(t, "prometheus_sd_kubernetes_failures_total").unwrap_or(0.0);
    // Refused and failing: the cut watch cannot be re-opened for a while.
    k.fail_next(3, 401);
    k.drop_watches();
    std::thread::sleep(Duration::from_millis(500));
    k.fail_next(2, 500);
    eventually(Duration::from_secs(30), "failures counted", || {
        failures(&t) >= 2.0
    });
    assert_eq!(up(&t), [a(3), a(4)], "targets stay");
    // A malformed object in the stream is skipped; the rest goes on.
    k.with(|c| {
        c.apply(json!({"kind": "Pod", "metadata": {"name": "bad", "namespace": "shop"}, "spec": {"containers": "nope"}}));
    });
    k.apply(pod(
        "web-3",
        "shop",
        "127.0.0.5",
        port,
        json!({"app": "web"}),
    ));
    eventually(Duration::from_secs(30), "web-3 after the failures", || {
        up(&t) == [a(3), a(4), a(5)]
    });
    assert!(t.log().contains("unable to decode a Pod"), "{}", t.log());
    // A server that hangs: nothing changes, nothing is lost.
    k.hang(true);
    k.drop_watches();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(up(&t), [a(3), a(4), a(5)]);
    k.hang(false);
    k.delete("Pod", "shop", "web-3");
    k.drop_watches();
    eventually(Duration::from_secs(60), "recovered after the hang", || {
        up(&t) == [a(3), a(4)]
    });
}
