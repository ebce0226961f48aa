//! Docker and Docker Swarm discovery end to end: containers and swarm tasks and nodes of
//! a real `dockerd` followed through the daemon (scenarios trawl-tokio runs too), faults
//! of a fake Engine, and `trawl sd` listing once.

mod common;

use common::docker::*;
use common::*;
use trawl_tests::docker::real::Dockerd;

#[test]
fn containers_are_followed_through_the_daemon() {
    let d = TempDir::new("docker-daemon");
    docker_containers_follow_the_engine(&d.0, &mut daemon);
}

#[test]
fn engine_faults_keep_the_targets() {
    let d = TempDir::new("docker-faults");
    docker_faults_keep_the_targets(&d.0, &mut daemon);
    let log = log_of(&d.0);
    for want in [
        "error while listing containers: Error response from daemon: boom",
        "EOF",
        "context deadline exceeded",
    ] {
        assert!(
            log.contains(want) && log.contains("jobs=docker"),
            "{want:?} is logged with the job:\n{log}"
        );
    }
}

#[test]
fn swarm_tasks_and_nodes_are_followed_through_the_daemon() {
    let d = TempDir::new("swarm-daemon");
    swarm_tasks_and_nodes_follow_the_swarm(&d.0, &mut daemon);
}

#[test]
fn trawl_sd_lists_once() {
    let d = TempDir::new("docker-sd");
    let Some(engine) = Dockerd::start_or_skip() else {
        return;
    };
    engine.run(&["--name", "ca", "-l", "pick=1", "-p", "127.0.0.2:9100:80"]);
    engine.run(&["--name", "cb", "-p", "127.0.0.3:9100:80"]);
    engine.swarm_init();
    engine.service(&["--name", "sv", "--publish", "published=9200,target=80"]);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: c\n    docker_sd_configs: [{{host: '{h}', filters: [{{name: label, values: [pick=1]}}]}}]\n    relabel_configs:\n      - {{source_labels: [__meta_docker_port_public_ip, __meta_docker_port_public], separator: ':', target_label: __address__}}\n  - job_name: s\n    dockerswarm_sd_configs: [{{host: '{h}', role: services}}]\n",
            h = engine.host()
        ),
    )
    .expect("config");
    let got = sd_instances(&cfg);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1], "127.0.0.2:9100");
    // The service's virtual IP on the ingress network, listed and never contacted.
    assert!(
        got[0].starts_with("10.0.0.") && got[0].ends_with(":9200"),
        "{got:?}"
    );
}
