//! Docker and Docker Swarm discovery end to end, shared by both shells.
//!
//! Against a real `dockerd` ([`trawl_tests::docker::real::Dockerd`], in its own network
//! namespace): containers publish their port on loopback addresses of the daemon's
//! namespace, the same addresses and port an nginx fleet serves in the tests' own, so
//! relabeling each target to its published address scrapes nginx; the containers' own
//! addresses are never contacted. Against the fake Engine
//! ([`trawl_tests::docker::EngineServer`]): the faults a real daemon will not produce on
//! demand.

use std::path::Path;
use std::time::Duration;

use trawl_tests::docker::real::Dockerd;
use trawl_tests::docker::{Container, Engine, EngineServer, Fault, network};

use super::kube::labels_of;
use super::scenario::Start;
use super::*;

/// The relabeling of every Docker job here: the published address becomes the target
/// (only loopback ones are kept), with a few labels copied.
const RELABEL: &str = r"
    relabel_configs:
      - {source_labels: [__meta_docker_port_public_ip, __meta_docker_port_public], regex: '(.+);(.+)', replacement: '$1:$2', target_label: __address__}
      - {source_labels: [__address__], regex: '127\..*', action: keep}
      - {source_labels: [__meta_docker_container_name], target_label: container}
      - {source_labels: [__meta_docker_container_label_team], target_label: team}
      - {source_labels: [__meta_docker_network_name], target_label: network}
      - {source_labels: [__meta_docker_container_network_mode], target_label: mode}
";

/// A real daemon's containers are discovered through its Unix socket and scraped at
/// their published addresses; a label filter leaves one out; a host-networked container
/// is reached at `host_networking_host`; a container removed and one started follow
/// within a refresh.
pub(crate) fn docker_containers_follow_the_engine(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let Some(engine) = Dockerd::start_or_skip() else {
        return;
    };
    let publish = |i: u8| format!("127.0.0.{i}:{port}:80");
    engine.run(&[
        "--name",
        "web1",
        "-l",
        "trawl.test=1",
        "-l",
        "team=edge",
        "-p",
        &publish(2),
    ]);
    engine.run(&["--name", "web2", "-l", "trawl.test=1", "-p", &publish(3)]);
    // Not selected by the filter.
    engine.run(&["--name", "other", "-p", &publish(5)]);
    engine.run(&[
        "--name",
        "hostnet",
        "--network",
        "host",
        "-l",
        "trawl.test=1",
    ]);
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: docker\n    docker_sd_configs: [{{host: '{}', refresh_interval: 1s, host_networking_host: '{}', filters: [{{name: label, values: ['trawl.test=1']}}]}}]\n{RELABEL}",
            engine.host(),
            a(4)
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "every container up", || {
        up_instances(&*t, "docker") == [a(2), a(3), a(4)]
    });
    let l = labels_of(&*t, "docker");
    assert_eq!(l[0]["container"], "/web1");
    assert_eq!(l[0]["team"], "edge");
    assert_eq!(l[0]["network"], "bridge");
    assert_eq!(l[0]["mode"], "default");
    assert_eq!(l[1]["container"], "/web2");
    assert_eq!(l[2]["container"], "/hostnet");
    assert_eq!(l[2]["network"], "host");
    assert_eq!(l[2]["mode"], "host");

    engine.docker(&["rm", "-f", "web2"]);
    engine.run(&[
        "--name",
        "web3",
        "-l",
        "trawl.test=1",
        "-l",
        "team=core",
        "-p",
        &publish(3),
    ]);
    eventually(Duration::from_secs(30), "web2 out, web3 in", || {
        let l = labels_of(&*t, "docker");
        up_instances(&*t, "docker") == [a(2), a(3), a(4)] && l[1]["container"] == "/web3"
    });
    let l = labels_of(&*t, "docker");
    assert_eq!(l[1]["team"], "core");
    assert_eq!(refresh_failures(&*t, "docker"), 0.0, "{}", engine.log());
}

/// Faults of the Engine (an error answer, a reset, a body that is not JSON, an answer
/// that never comes) are counted as refresh failures while the targets stay; then a
/// container added is found.
pub(crate) fn docker_faults_keep_the_targets(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=4, 5);
    let port = port_of(&addrs[0]);
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let mut engine = Engine::new();
    engine.networks.insert(
        "net-bridge".into(),
        network("net-bridge", "bridge", "local", &[]),
    );
    for i in [2u8, 3] {
        engine.put_container(
            &Container::new(
                &format!("c{i}"),
                &format!("web{i}"),
                &format!("172.17.0.{i}"),
            )
            .port(80, port, &format!("127.0.0.{i}")),
        );
    }
    let sock = dir.join("engine.sock");
    let e = EngineServer::start(&sock, engine);
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: docker\n    docker_sd_configs: [{{host: '{}', refresh_interval: 1s}}]\n{RELABEL}",
            e.host()
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(20), "both containers up", || {
        up_instances(&*t, "docker") == [a(2), a(3)]
    });
    e.fault_next(
        "/containers/json",
        &[
            Fault::Status(500, "boom".into()),
            Fault::Reset,
            Fault::Body("not json".into()),
            Fault::Hang,
        ],
    );
    eventually(Duration::from_secs(30), "four failures counted", || {
        refresh_failures(&*t, "docker") >= 4.0
    });
    assert_eq!(
        up_instances(&*t, "docker"),
        [a(2), a(3)],
        "the targets stay"
    );
    e.with(|engine| {
        engine.put_container(&Container::new("c4", "web4", "172.17.0.4").port(
            80,
            port,
            "127.0.0.4",
        ));
    });
    eventually(Duration::from_secs(20), "recovered", || {
        up_instances(&*t, "docker") == [a(2), a(3), a(4)]
    });
    let reqs = e.requests();
    assert_eq!(reqs[0].path, "/_ping", "negotiates first");
    assert!(
        reqs.iter()
            .skip(1)
            .all(|q| q.path == "/_ping" || q.path.starts_with("/v1.41/")),
        "{reqs:?}"
    );
}

/// A single-node swarm on a real daemon: tasks whose ports are published in host mode
/// are scraped at the node's address (127.0.0.1, as the swarm advertises it), the node
/// itself at the configured port; a service removed leaves.
pub(crate) fn swarm_tasks_and_nodes_follow_the_swarm(dir: &Path, start: Start<'_>) {
    let (p1, p2) = (free_port(), free_port());
    let a = |p: u16| format!("127.0.0.1:{p}");
    let _nginx = nginx(dir, &[a(p1), a(p2)]);
    std::fs::write(dir.join("www/metrics"), body(5)).expect("metrics");
    let Some(engine) = Dockerd::start_or_skip() else {
        return;
    };
    engine.swarm_init();
    let host_port = |p: u16| format!("mode=host,published={p},target=9100");
    engine.service(&[
        "--name",
        "api",
        "-l",
        "tier=back",
        "--container-label",
        "c=1",
        "--publish",
        &host_port(p1),
    ]);
    engine.service(&["--name", "mon", "--publish", &host_port(p2)]);
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tasks\n    dockerswarm_sd_configs: [{{host: '{h}', role: tasks, refresh_interval: 1s, filters: [{{name: desired-state, values: [running]}}]}}]\n    relabel_configs:\n      - {{source_labels: [__address__], regex: '127\\.0\\.0\\.1:.*', action: keep}}\n      - {{source_labels: [__meta_dockerswarm_service_name], target_label: service}}\n      - {{source_labels: [__meta_dockerswarm_service_label_tier], target_label: tier}}\n      - {{source_labels: [__meta_dockerswarm_container_label_c], target_label: c}}\n      - {{source_labels: [__meta_dockerswarm_task_port_publish_mode], target_label: mode}}\n      - {{source_labels: [__meta_dockerswarm_node_role], target_label: role}}\n  - job_name: nodes\n    dockerswarm_sd_configs: [{{host: '{h}', role: nodes, port: {p2}, refresh_interval: 1s}}]\n    relabel_configs:\n      - {{source_labels: [__meta_dockerswarm_node_manager_leader], target_label: leader}}\n",
            h = engine.host()
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    let mut want = vec![a(p1), a(p2)];
    want.sort();
    eventually(Duration::from_secs(30), "both tasks up", || {
        up_instances(&*t, "tasks") == want
    });
    eventually(Duration::from_secs(30), "the node up", || {
        up_instances(&*t, "nodes") == [a(p2)]
    });
    let l = labels_of(&*t, "tasks");
    let api = l
        .iter()
        .find(|x| x["instance"] == a(p1).as_str())
        .expect("the api task");
    assert_eq!(api["service"], "api");
    assert_eq!(api["tier"], "back");
    assert_eq!(api["c"], "1");
    assert_eq!(api["mode"], "host");
    assert_eq!(api["role"], "manager");
    assert_eq!(labels_of(&*t, "nodes")[0]["leader"], "true");

    engine.docker(&["service", "rm", "mon"]);
    eventually(Duration::from_secs(30), "mon's task gone", || {
        up_instances(&*t, "tasks") == [a(p1)]
    });
    assert_eq!(
        refresh_failures(&*t, "dockerswarm"),
        0.0,
        "{}",
        engine.log()
    );
}
