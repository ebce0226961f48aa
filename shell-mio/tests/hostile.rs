//! The hostile-input suite against the daemon (issue 16): targets, discovery files and
//! API clients that misbehave, with bounded memory, an answering API, timely scrapes of
//! healthy targets alongside and a readable WAL asserted each time. The same scenarios
//! run against trawl-tokio in `shell-tokio/tests/hostile.rs`.

mod common;

use common::*;

#[test]
fn endless_bodies_are_cut_at_their_limits() {
    let d = TempDir::new("endless");
    scenario::endless_bodies_are_cut_at_their_limits(&d.0, &mut daemon);
}

/// Issue 16, defect 3: after a target was removed, SIGTERM does not wait for its
/// end-of-run stale markers (due up to 2.1 intervals later: 21 s at 10 s); they are dropped as
/// Prometheus drops them. A scrape that hangs holds the shutdown up to its timeout, and
/// a second SIGTERM ends it at once; the WAL is readable either way.
#[test]
fn shutdown_is_prompt_and_a_second_signal_forces_it() {
    use common::hostile::{Misbehaviour, hostile};
    use std::time::{Duration, Instant};
    let d = TempDir::new("shutdown");
    let (_nginx, addrs, _) = fleet(&d.0, 23..=24, 10);
    let silent = hostile("127.0.0.25", Misbehaviour::Silent);
    let cfg = d.0.join("prometheus.yml");
    let config = |targets: &[&str], extra: &str| {
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        format!(
            "global:\n  scrape_interval: 10s\nscrape_configs:\n- job_name: j\n  static_configs: [{{targets: [{}]}}]\n{extra}",
            list.join(", ")
        )
    };
    std::fs::write(&cfg, config(&[&addrs[0], &addrs[1]], "")).expect("config");
    let data = d.0.join("data");
    // 1. A removed target's markers are not waited for.
    let mut t = Daemon::start(&d.0, &cfg, &data);
    eventually(Duration::from_secs(15), "both targets up", || {
        active(t.web).iter().filter(|x| x.2 == "up").count() == 2
    });
    std::fs::write(&cfg, config(&[&addrs[0]], "")).expect("config");
    t.reload();
    eventually(Duration::from_secs(10), "one target left", || {
        active(t.web).len() == 1
    });
    let asked = Instant::now();
    signal(&t.proc, "TERM");
    let status = wait_exit(&mut t.proc, Duration::from_secs(30));
    let took = asked.elapsed();
    assert!(status.success(), "{}", log_of(&d.0));
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?}\n{}",
        log_of(&d.0)
    );
    assert!(
        log_of(&d.0).contains("end-of-run stale markers of removed targets not written"),
        "{}",
        log_of(&d.0)
    );
    assert!(!dump(&data).is_empty());
    // 2. A hanging scrape (timeout 15 s) holds the first signal; the second ends it.
    let hang = "- job_name: hang\n  scrape_interval: 15s\n  scrape_timeout: 15s\n  static_configs: [{targets: [\"HANG\"]}]\n"
        .replace("HANG", &silent.addr);
    std::fs::write(&cfg, config(&[&addrs[0]], &hang)).expect("config");
    let mut t = Daemon::start(&d.0, &cfg, &data);
    eventually(
        Duration::from_secs(20),
        "the hanging scrape under way",
        || silent.requests.load(std::sync::atomic::Ordering::SeqCst) > 0,
    );
    signal(&t.proc, "TERM");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        t.proc.0.try_wait().expect("try_wait").is_none(),
        "the hanging scrape was not waited for"
    );
    let asked = Instant::now();
    signal(&t.proc, "TERM");
    let status = wait_exit(&mut t.proc, Duration::from_secs(30));
    assert!(status.success(), "{}", log_of(&d.0));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert!(log_of(&d.0).contains("second stop request"));
    // The first run's samples are still there, and the WAL reads.
    let after = dump(&data);
    assert!(!series(&after, "up", &addrs[0]).is_empty());
}
