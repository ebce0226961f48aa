//! Remote write end to end, against real receivers on loopback: VictoriaMetrics
//! single-node (`victoria-metrics`, Debian's 1.79) and Prometheus 2.42 with
//! `--web.enable-remote-write-receiver`. trawl scrapes an nginx fleet; what its own WAL
//! holds (`promtool tsdb dump`) is what each receiver must end up with.

mod common;

use std::time::Duration;

use common::receivers::*;
use common::*;

#[test]
fn every_sample_in_the_wal_reaches_victoriametrics_and_prometheus() {
    let d = TempDir::new("rw");
    scenario::remote_write_reaches_both_receivers(&d.0, &mut daemon);
    assert!(
        log_of(&d.0).contains("remote write queue started"),
        "{}",
        log_of(&d.0)
    );
}

#[test]
fn an_outage_and_a_kill_9_lose_nothing_the_wal_holds() {
    let d = TempDir::new("rw-outage");
    let (_nginx, addrs, _sd) = fleet(&d.0, 31..=33, 10);
    let vm_port = free_port();
    let cfg = config(
        &d.0,
        &addrs,
        &[format!("http://127.0.0.1:{vm_port}/api/v1/write")],
    );
    let web = free_port();
    let data = d.0.join("data");
    // The receiver is down: trawl scrapes and keeps everything in its WAL.
    let mut t = trawl(&d.0, &cfg, &data, web);
    // Generous: the binary's other tests start their receivers beside this one.
    eventually(Duration::from_secs(30), "targets up", || {
        let a = active(web);
        a.len() == 3 && a.iter().all(|x| x.2 == "up")
    });
    std::thread::sleep(Duration::from_secs(3));
    let m = api(web, "GET", "/metrics").expect("metrics").1;
    assert!(m.contains("prometheus_remote_storage_samples_retried_total{remote_name=\"r0\""));
    // Killed during the outage, started again: the progress file says what was sent.
    signal(&t, "KILL");
    let _ = wait_exit(&mut t, Duration::from_secs(10));
    let mut t = trawl(&d.0, &cfg, &data, web);
    std::thread::sleep(Duration::from_secs(2));
    // The receiver comes up.
    let _vm = victoria(&d.0.join("vm"), vm_port);
    std::thread::sleep(Duration::from_secs(4));
    stop_proc(&mut t);
    let (all, _) = wal_counts(&data);
    eventually(
        Duration::from_secs(30),
        "VictoriaMetrics has everything",
        || {
            let vm = vm_counts(vm_port);
            // Every series, and at least every sample (a batch in flight at the kill may
            // come twice; VictoriaMetrics keeps duplicates).
            vm.len() == all.len() && all.iter().all(|(k, n)| vm.get(k).is_some_and(|m| m >= n))
        },
    );
    let vm = vm_counts(vm_port);
    let extra: usize = vm.values().sum::<usize>() - all.values().sum::<usize>();
    assert!(extra <= 2000, "duplicates beyond the last batches: {extra}");
}

#[test]
fn both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat() {
    let d = TempDir::new("rw-minute");
    scenario::both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat(
        &d.0,
        &mut daemon,
    );
}

#[test]
fn errors_are_retried_and_a_refused_batch_is_the_only_loss() {
    let d = TempDir::new("rw-faults");
    scenario::errors_are_retried_and_a_refused_batch_is_the_only_loss(&d.0, &mut daemon);
    // The daemon logs the refusal (trawl-tokio's host decides where logs go).
    assert!(log_of(&d.0).contains("refused a batch for good"));
}

#[test]
fn three_instances_share_a_fleet_of_300_targets() {
    let d = TempDir::new("rw-scale");
    scenario::three_instances_share_a_fleet_of_300_targets(&d.0, &mut daemon);
}

#[test]
fn metadata_goes_out_in_metadata_only_requests() {
    let d = TempDir::new("rw-meta");
    scenario::metadata_goes_out_in_metadata_only_requests(&d.0, &mut daemon);
}

#[test]
fn sigv4_signed_requests_are_accepted_and_a_wrong_key_refused() {
    let d = TempDir::new("rw-sigv4");
    scenario::sigv4_signed_requests_are_accepted_and_a_wrong_key_refused(&d.0, &mut daemon);
}

/// A reload whose `sigv4` block finds no credentials does not restart remote write and
/// leaves the running queue alone: it goes on sending with the previous configuration,
/// as Prometheus keeps its queues when a new configuration's client cannot be made.
#[test]
fn a_reload_whose_sigv4_finds_no_credentials_keeps_the_running_queue() {
    let d = TempDir::new("rw-sigv4-reload");
    let (_nginx, addrs, _sd) = fleet(&d.0, 71..=72, 10);
    let vm_port = free_port();
    let _vm = victoria(&d.0.join("vm"), vm_port);
    let cfg = config(
        &d.0,
        &addrs,
        &[format!("http://127.0.0.1:{vm_port}/api/v1/write")],
    );
    let web = free_port();
    let data = d.0.join("data");
    let mut t = trawl(&d.0, &cfg, &data, web);
    let sent = || vm_counts(vm_port).values().sum::<usize>();
    eventually(Duration::from_secs(20), "samples arrive", || sent() > 0);
    // The same queue, now signing with a profile no shared file holds.
    let yaml = std::fs::read_to_string(&cfg).expect("config").replace(
        "    name: r0\n",
        "    name: r0\n    sigv4: {region: eu-west-1, profile: trawl-test-no-such-profile}\n",
    );
    std::fs::write(&cfg, yaml).expect("config");
    signal(&t, "HUP");
    eventually(Duration::from_secs(10), "the failure is logged", || {
        log_of(&d.0).contains("remote write not restarted")
    });
    assert!(log_of(&d.0).contains("trawl-test-no-such-profile"));
    let before = sent();
    eventually(
        Duration::from_secs(20),
        "the running queue goes on sending",
        || sent() > before,
    );
    std::thread::sleep(Duration::from_secs(2));
    stop_proc(&mut t);
    // Nothing it had in flight at the reload was dropped: every sample arrives.
    let (all, _) = wal_counts(&data);
    let total: usize = all.values().sum();
    eventually(
        Duration::from_secs(30),
        "the receiver has every sample",
        || sent() >= total,
    );
}
