//! Kubernetes discovery end to end, shared by both shells: the fake API server
//! (`trawl_tests::kube`) holds nodes, pods, a service with its endpoints and endpoint
//! slice, and an ingress whose addresses are an nginx fleet on loopback, so every
//! discovered target is really scraped.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use trawl_tests::kube::server::KubeServer;

use super::scenario::Start;
use super::*;

/// A pod in namespace `ns` at `ip`, with one container port.
pub(crate) fn pod(name: &str, ns: &str, ip: &str, port: u16, labels: Value) -> Value {
    json!({"kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": labels,
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-rs", "controller": true}]},
           "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "nginx",
                     "ports": [{"name": "metrics", "containerPort": port}]}]},
           "status": {"podIP": ip, "hostIP": "127.0.0.2", "phase": "Running",
                      "conditions": [{"type": "Ready", "status": "True"}]}})
}

/// An endpoint slice of service `web` in `shop` over `pods` (name, ip).
pub(crate) fn slice(port: u16, pods: &[(&str, &str)]) -> Value {
    let eps: Vec<Value> = pods
        .iter()
        .map(|(n, ip)| json!({"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false},
                              "targetRef": {"kind": "Pod", "name": n, "namespace": "shop"}, "nodeName": "n1"}))
        .collect();
    json!({"kind": "EndpointSlice",
           "metadata": {"name": "web-abc", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "metrics", "port": port}]})
}

/// The Endpoints of service `web` over `pods`.
pub(crate) fn endpoints(port: u16, pods: &[(&str, &str)]) -> Value {
    let addrs: Vec<Value> = pods
        .iter()
        .map(|(n, ip)| json!({"ip": ip, "nodeName": "n1", "targetRef": {"kind": "Pod", "name": n, "namespace": "shop"}}))
        .collect();
    json!({"kind": "Endpoints", "metadata": {"name": "web", "namespace": "shop"},
           "subsets": [{"addresses": addrs, "ports": [{"name": "metrics", "port": port}]}]})
}

/// Fills the fake with the scenario's starting objects; the fleet's port is `port`.
pub(crate) fn populate(k: &KubeServer, port: u16) {
    k.apply(json!({"kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}}}));
    k.apply(json!({"kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "z1"}},
                   "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.2"}, {"type": "Hostname", "address": "n1"}],
                              "conditions": [{"type": "Ready", "status": "True"}],
                              "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}));
    k.apply(pod(
        "web-1",
        "shop",
        "127.0.0.3",
        port,
        json!({"app": "web", "version": "v1"}),
    ));
    k.apply(pod(
        "web-2",
        "shop",
        "127.0.0.4",
        port,
        json!({"app": "web", "version": "v1"}),
    ));
    k.apply(pod(
        "db-1",
        "other",
        "127.0.0.5",
        port,
        json!({"app": "db"}),
    ));
    k.apply(json!({"kind": "Service", "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}},
                   "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "metrics", "port": port}]}}));
    k.apply(slice(
        port,
        &[("web-1", "127.0.0.3"), ("web-2", "127.0.0.4")],
    ));
    k.apply(endpoints(
        port,
        &[("web-1", "127.0.0.3"), ("web-2", "127.0.0.4")],
    ));
    k.apply(json!({"kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["shop.example"]}],
                            "rules": [{"host": "shop.example", "http": {"paths": [{"path": "/metrics"}]}}]}}));
}

/// A configuration with one job per role against `url`; names the service and ingress
/// roles would resolve are rewritten to the fleet's `fixed` address (no DNS leaves the
/// machine), the original kept in a label.
pub(crate) fn config(url: &str, fixed: &str) -> String {
    let sd = |role: &str, extra: &str| {
        format!(
            "    kubernetes_sd_configs:\n      - role: {role}\n        api_server: {url}\n{extra}"
        )
    };
    let pod_labels = "      - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}\n      - {source_labels: [__meta_kubernetes_pod_label_version], target_label: version}\n";
    let rewrite = format!(
        "      - {{source_labels: [__address__], target_label: original}}\n      - {{target_label: __address__, replacement: '{fixed}'}}\n"
    );
    let mut y = String::from("global:\n  scrape_interval: 1s\nscrape_configs:\n");
    y.push_str(&format!(
        "  - job_name: pods\n{}    relabel_configs:\n{pod_labels}",
        sd("pod", "        namespaces: {names: [shop]}\n        selectors: [{role: pod, label: 'app=web'}]\n")
    ));
    y.push_str(&format!(
        "  - job_name: slices\n{}    relabel_configs:\n{pod_labels}      - {{source_labels: [__meta_kubernetes_node_label_zone], target_label: zone}}\n      - {{source_labels: [__meta_kubernetes_namespace_label_team], target_label: team}}\n",
        sd("endpointslice", "        attach_metadata: {node: true, namespace: true}\n")
    ));
    y.push_str(&format!(
        "  - job_name: endpoints\n{}    relabel_configs:\n{pod_labels}",
        sd("endpoints", "        namespaces: {names: [shop]}\n")
    ));
    y.push_str(&format!(
        "  - job_name: services\n{}    relabel_configs:\n{rewrite}",
        sd("service", "")
    ));
    y.push_str(&format!("  - job_name: nodes\n{}", sd("node", "")));
    y.push_str(&format!(
        "  - job_name: ingresses\n{}    relabel_configs:\n{rewrite}",
        sd("ingress", "")
    ));
    y
}

/// The labels of every active target of `pool` (from `/api/v1/targets`), sorted by
/// instance.
pub(crate) fn labels_of(t: &dyn Shell, pool: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&t.targets_json()).unwrap_or(Value::Null);
    let mut out: Vec<Value> = v["data"]["activeTargets"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["scrapePool"] == pool)
                .map(|x| x["labels"].clone())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|l| l["instance"].as_str().unwrap_or("").to_owned());
    out
}

fn instances(t: &dyn Shell, pool: &str) -> Vec<String> {
    labels_of(t, pool)
        .iter()
        .map(|l| l["instance"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The value of the metric sample `series` (name with its labels as printed).
pub(crate) fn sample(t: &dyn Shell, series: &str) -> Option<f64> {
    t.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Every role discovers through the fake, targets are scraped, and changes follow:
/// a pod relabeled (the pod, slice and endpoints groups change), a pod deleted, the
/// watches expired (410: relist, nothing lost), a pod added afterwards; the counters.
pub(crate) fn kubernetes_roles_follow_the_api(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let k = KubeServer::start();
    populate(&k, port);
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config(&k.url(), &addrs[0])).expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let want = [
        ("endpoints", vec![a(3), a(4)]),
        ("ingresses", vec![a(2)]),
        ("nodes", vec!["n1".to_owned()]),
        ("pods", vec![a(3), a(4)]),
        ("services", vec![a(2)]),
        ("slices", vec![a(3), a(4)]),
    ];
    let all_up = |t: &dyn Shell| {
        let act = t.active();
        want.iter().all(|(pool, inst)| {
            let got: Vec<&(String, String, String)> = act.iter().filter(|x| x.0 == *pool).collect();
            got.len() == inst.len() && got.iter().all(|x| x.2 == "up" && inst.contains(&x.1))
        })
    };
    eventually(Duration::from_secs(30), "every role's targets up", || {
        all_up(&*t)
    });
    let slices = labels_of(&*t, "slices");
    assert_eq!(slices[0]["pod"], "web-1");
    assert_eq!(slices[0]["zone"], "z1", "node metadata attached");
    assert_eq!(slices[0]["team"], "a", "namespace metadata attached");
    let svc = labels_of(&*t, "services");
    assert_eq!(svc[0]["original"], format!("web.shop.svc:{port}"));
    let ing = labels_of(&*t, "ingresses");
    assert_eq!(ing[0]["original"], "shop.example");

    // Relabeled: the pod's own group and the groups that join it follow.
    k.apply(pod(
        "web-1",
        "shop",
        "127.0.0.3",
        port,
        json!({"app": "web", "version": "v2"}),
    ));
    let v2 = |t: &dyn Shell, pool: &str| {
        labels_of(t, pool)
            .iter()
            .any(|l| l["pod"] == "web-1" && l["version"] == "v2")
    };
    eventually(
        Duration::from_secs(20),
        "v2 in pods, slices and endpoints",
        || v2(&*t, "pods") && v2(&*t, "slices") && v2(&*t, "endpoints"),
    );

    // Deleted (and taken out of the slice and endpoints, as the controllers do).
    k.delete("Pod", "shop", "web-2");
    k.apply(slice(port, &[("web-1", "127.0.0.3")]));
    k.apply(endpoints(port, &[("web-1", "127.0.0.3")]));
    eventually(Duration::from_secs(20), "web-2 gone", || {
        instances(&*t, "pods") == [a(3)] && instances(&*t, "slices") == [a(3)]
    });

    // Every watch expires: relists, and nothing is lost meanwhile.
    k.expire_watches();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(instances(&*t, "pods"), [a(3)], "{}", t.log());
    assert_eq!(instances(&*t, "nodes"), ["n1"]);
    // A pod added after the relist arrives.
    k.apply(pod(
        "web-3",
        "shop",
        "127.0.0.5",
        port,
        json!({"app": "web", "version": "v1"}),
    ));
    eventually(Duration::from_secs(20), "web-3 after the relist", || {
        instances(&*t, "pods") == [a(3), a(5)]
    });

    // Counters: the role's events from 0, failures none.
    let m = |s: &str| sample(&*t, s).unwrap_or(-1.0);
    assert!(
        m("prometheus_sd_kubernetes_events_total{event=\"add\",role=\"pod\"}") >= 3.0,
        "{}",
        t.metrics()
    );
    assert!(m("prometheus_sd_kubernetes_events_total{event=\"delete\",role=\"pod\"}") >= 1.0);
    assert!(m("prometheus_sd_kubernetes_events_total{event=\"add\",role=\"ingress\"}") >= 1.0);
    assert_eq!(m("prometheus_sd_failed_configs{name=\"scrape\"}"), 0.0);
    assert_eq!(
        m("prometheus_sd_kubernetes_failures_total"),
        0.0,
        "{}",
        t.log()
    );
    // The requests were lists and bookmarked watches with the user agent.
    let reqs = k.requests();
    assert!(
        reqs.iter()
            .any(|r| r.target.contains("allowWatchBookmarks=true"))
    );
    assert!(
        reqs.iter()
            .all(|r| r.header("accept") == Some("application/json"))
    );
    drop(t);
}

/// How the in-cluster scenario starts an agent: on (dir, config, data), told the API
/// server (host, port) as `KUBERNETES_SERVICE_HOST`/`PORT` would, and where the service
/// account is mounted.
pub(crate) type StartInCluster<'a> =
    &'a mut dyn FnMut(&Path, &Path, &Path, (&str, &str), &Path) -> Box<dyn Shell>;

/// In a pod: the API server from the service's host and port, over TLS (nginx with the
/// test CA in front of the fake), the service account's CA, token (rotated: the new one
/// is read for the next request) and namespace (`own_namespace`).
pub(crate) fn in_cluster_over_tls(dir: &Path, start: StartInCluster<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=4, 5);
    let port = port_of(&addrs[0]);
    let k = KubeServer::start();
    populate(&k, port);
    k.require_token(Some("token-1"));
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    certs(&tls);
    let front = format!("127.0.0.8:{}", free_port());
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  server {{ listen {front} ssl; ssl_certificate {d}/srv.crt; ssl_certificate_key {d}/srv.key;\n    location / {{ proxy_pass {url}; proxy_http_version 1.1; proxy_buffering off; proxy_read_timeout 1h; }} }}\n}}\n",
        d = tls.display(),
        url = k.url()
    );
    let _front = start_nginx(&tls, &conf, &[&front]);
    let sa = dir.join("sa");
    std::fs::create_dir_all(&sa).expect("sa");
    std::fs::copy(tls.join("ca.crt"), sa.join("ca.crt")).expect("ca");
    std::fs::write(sa.join("token"), "token-1\n").expect("token");
    std::fs::write(sa.join("namespace"), "shop").expect("namespace");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs: [{role: pod, namespaces: {own_namespace: true}}]\n",
    )
    .expect("config");
    let (host, svc_port) = front.split_once(':').expect("host:port");
    let t = start(dir, &cfg, &dir.join("data"), (host, svc_port), &sa);
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let up = |t: &dyn Shell| -> Vec<String> {
        t.active()
            .into_iter()
            .filter(|x| x.2 == "up")
            .map(|x| x.1)
            .collect()
    };
    eventually(Duration::from_secs(30), "the shop's pods up", || {
        up(&*t) == [a(3), a(4)]
    });
    // Only the own namespace was listed, over TLS, with the token.
    let reqs = k.requests();
    assert!(
        reqs.iter()
            .all(|r| r.target.starts_with("/api/v1/namespaces/shop/pods")),
        "{reqs:?}"
    );
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == Some("Bearer token-1"))
    );
    // The token rotates; the server refuses the old one from now on; the next request
    // (after the watch is cut) carries the new one.
    std::fs::write(sa.join("token"), "token-2").expect("token");
    k.require_token(Some("token-2"));
    k.drop_watches();
    k.apply(pod(
        "web-3",
        "shop",
        "127.0.0.4",
        port,
        json!({"app": "web"}),
    ));
    k.delete("Pod", "shop", "web-2");
    eventually(
        Duration::from_secs(30),
        "the change seen with the new token",
        || {
            k.requests()
                .iter()
                .any(|x| x.header("authorization") == Some("Bearer token-2"))
                && t.targets_json().contains("web-3")
        },
    );
    assert_eq!(
        sample(&*t, "prometheus_sd_failed_configs{name=\"scrape\"}"),
        Some(0.0),
        "{}",
        t.metrics()
    );
}
