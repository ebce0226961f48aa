//! The daemon's end-to-end scenarios against `trawl-tokio`: the same test bodies
//! (`shell-mio/tests/common/scenario.rs`), the same nginx fleet on loopback and the same
//! checks of the WAL with `promtool tsdb dump`, with the agent embedded in this process
//! (a multi-threaded runtime, the WAL sink on `trawl-mio`'s writer) instead of the
//! `trawl` process.

#[path = "../../shell-mio/tests/common/mod.rs"]
mod common;
mod embedded;

use common::{Shell, TempDir, scenario};
use embedded::embedded;

#[test]
fn static_and_file_targets_are_scraped_stored_and_marked_stale_after_a_reload() {
    let d = TempDir::new("tokio-sd");
    scenario::discovery_reload_and_shutdown(&d.0, &mut embedded, &mut |_: &dyn Shell| {});
}

#[test]
fn https_targets_are_verified_against_the_configured_ca() {
    let d = TempDir::new("tokio-tls");
    let _ = scenario::https_targets_are_verified(&d.0, &mut embedded);
}

#[test]
fn every_sample_in_the_wal_reaches_victoriametrics_and_prometheus() {
    let d = TempDir::new("tokio-rw");
    scenario::remote_write_reaches_both_receivers(&d.0, &mut embedded);
}

#[test]
fn errors_are_retried_and_a_refused_batch_is_the_only_loss() {
    let d = TempDir::new("tokio-rw-faults");
    scenario::errors_are_retried_and_a_refused_batch_is_the_only_loss(&d.0, &mut embedded);
}

#[test]
fn metadata_goes_out_in_metadata_only_requests() {
    let d = TempDir::new("tokio-rw-meta");
    scenario::metadata_goes_out_in_metadata_only_requests(&d.0, &mut embedded);
}

#[test]
fn targets_go_through_a_plain_http_proxy() {
    let d = TempDir::new("tokio-proxy");
    let _ = scenario::targets_go_through_a_plain_http_proxy(&d.0, &mut embedded);
}

#[test]
fn three_instances_share_a_fleet_of_300_targets() {
    let d = TempDir::new("tokio-rw-scale");
    scenario::three_instances_share_a_fleet_of_300_targets(&d.0, &mut embedded);
}

#[test]
fn both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat() {
    let d = TempDir::new("tokio-rw-minute");
    scenario::both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat(
        &d.0,
        &mut embedded,
    );
}

#[test]
fn dns_changes_reach_the_targets() {
    let d = TempDir::new("tokio-dns");
    scenario::dns_changes_reach_the_targets(&d.0, &mut |dir: &std::path::Path,
                                                        cfg: &std::path::Path,
                                                        data: &std::path::Path,
                                                        resolv: &std::path::Path,
                                                        port: u16|
     -> Box<dyn Shell> {
        let options = trawl_tokio::core::agent::AgentOptions {
            resolv_conf: resolv.display().to_string(),
            dns_port: port,
            ..Default::default()
        };
        Box::new(embedded::Embedded::start_with(dir, cfg, data, options))
    });
}

#[test]
fn names_resolve_through_the_resolver() {
    let d = TempDir::new("tokio-names");
    scenario::names_resolve_through_the_resolver(&d.0, &mut |dir: &std::path::Path,
                                                             cfg: &std::path::Path,
                                                             data: &std::path::Path,
                                                             resolv: &std::path::Path,
                                                             port: u16,
                                                             hosts: &std::path::Path|
     -> Box<dyn Shell> {
        let options = trawl_tokio::core::agent::AgentOptions {
            resolv_conf: resolv.display().to_string(),
            dns_port: port,
            ..Default::default()
        };
        let http = trawl_tokio::HttpOptions {
            hosts_file: hosts.display().to_string(),
            ..Default::default()
        };
        Box::new(embedded::Embedded::start_full(
            dir, cfg, data, options, http,
        ))
    });
}

#[test]
fn consul_services_follow_the_catalog() {
    let d = TempDir::new("tokio-consul");
    common::consul::consul_services_follow_the_catalog(&d.0, &mut embedded);
}

#[test]
fn nomad_services_follow_the_registry() {
    let d = TempDir::new("tokio-nomad");
    common::nomad::nomad_services_follow_the_registry(&d.0, &mut embedded);
}

#[test]
fn marathon_apps_follow_the_cluster() {
    let d = TempDir::new("tokio-marathon");
    common::marathon::marathon_apps_follow_the_cluster(&d.0, &mut embedded);
}

#[test]
fn zookeeper_members_follow_the_tree() {
    let d = TempDir::new("tokio-zk");
    common::zookeeper::zookeeper_members_follow_the_tree(&d.0, &mut embedded);
}

#[test]
fn kubernetes_roles_discover_and_follow_changes() {
    let d = TempDir::new("tokio-k8s");
    common::kube::kubernetes_roles_follow_the_api(&d.0, &mut embedded);
}

#[test]
fn kubernetes_in_cluster_over_tls_with_a_rotating_token() {
    let d = TempDir::new("tokio-k8s-incluster");
    common::kube::in_cluster_over_tls(&d.0, &mut |dir, cfg, data, (host, port), sa| {
        let options = trawl_tokio::core::agent::AgentOptions {
            kubernetes_service: Some((host.to_owned(), port.to_owned())),
            kubernetes_service_account_dir: sa.display().to_string(),
            ..Default::default()
        };
        Box::new(embedded::Embedded::start_with(dir, cfg, data, options))
    });
}

#[test]
fn docker_containers_follow_the_engine() {
    let d = TempDir::new("tokio-docker");
    common::docker::docker_containers_follow_the_engine(&d.0, &mut embedded);
}

#[test]
fn docker_faults_keep_the_targets() {
    let d = TempDir::new("tokio-docker-faults");
    common::docker::docker_faults_keep_the_targets(&d.0, &mut embedded);
}

#[test]
fn eureka_instances_follow_the_registry() {
    let d = TempDir::new("tokio-eureka");
    common::eureka::eureka_instances_follow_the_registry(&d.0, &mut embedded);
}

#[test]
fn ec2_instances_follow_moto() {
    let d = TempDir::new("tokio-ec2");
    common::ec2::ec2_instances_follow_moto(&d.0, &mut embedded);
}

#[test]
fn lightsail_instances_follow_the_fleet() {
    let d = TempDir::new("tokio-lightsail");
    common::lightsail::lightsail_instances_follow_the_fleet(&d.0, &mut embedded);
}

#[test]
fn digitalocean_droplets_follow_the_account() {
    let d = TempDir::new("tokio-digitalocean");
    common::digitalocean::digitalocean_droplets_follow_the_account(&d.0, &mut embedded);
}

#[test]
fn hetzner_servers_follow_the_project() {
    let d = TempDir::new("tokio-hetzner");
    common::hetzner::hetzner_servers_follow_the_project(&d.0, &mut embedded);
}

#[test]
fn linode_instances_follow_the_account() {
    let d = TempDir::new("tokio-linode");
    common::linode::linode_instances_follow_the_account(&d.0, &mut embedded);
}

#[test]
fn puppetdb_classes_follow_the_catalogs() {
    let d = TempDir::new("tokio-puppetdb");
    let Some(pdb) = common::puppetdb::real(&d.0) else {
        return;
    };
    common::puppetdb::puppetdb_classes_follow_the_catalogs(&d.0, &mut embedded, &pdb);
}

#[test]
fn scaleway_servers_follow_the_project() {
    let d = TempDir::new("tokio-scaleway");
    common::scaleway::scaleway_servers_follow_the_project(&d.0, &mut embedded);
}

#[test]
fn vultr_instances_follow_the_account() {
    let d = TempDir::new("tokio-vultr");
    common::vultr::vultr_instances_follow_the_account(&d.0, &mut embedded);
}

#[test]
fn ionos_servers_follow_the_datacenter() {
    let d = TempDir::new("tokio-ionos");
    common::ionos::ionos_servers_follow_the_datacenter(&d.0, &mut embedded);
}

#[test]
fn swarm_tasks_and_nodes_follow_the_swarm() {
    let d = TempDir::new("tokio-swarm");
    common::docker::swarm_tasks_and_nodes_follow_the_swarm(&d.0, &mut embedded);
}

#[test]
fn sigv4_signed_requests_are_accepted_and_a_wrong_key_refused() {
    let d = TempDir::new("tokio-rw-sigv4");
    scenario::sigv4_signed_requests_are_accepted_and_a_wrong_key_refused(&d.0, &mut embedded);
}
