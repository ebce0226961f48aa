//! Scenario tests of the Agent through its public contract (`prometheus-semantics.md`
//! §9.1, §9.2, §9.4–§9.6, plus trawl's deliberate improvements).

use std::time::Duration;

use trawl_core::agent::{AgentOptions, Event, Input, Output};
use trawl_core::io::{IoEvent, IoOp, Origin};
use trawl_core::target::Health;
use trawl_core::time::Instant;
use trawl_tests::{Harness, config};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn opts() -> AgentOptions {
    AgentOptions::default()
}

const TWO_JOBS_SAME_SD: &str = r#"
scrape_configs:
  - job_name: prometheus
    scrape_interval: 10s
    static_configs: [{targets: ["foo:9090"]}]
  - job_name: prometheus2
    scrape_interval: 10s
    static_configs: [{targets: ["foo:9090"]}]
"#;

#[test]
fn identical_sd_blocks_share_one_provider() {
    // §9.1 #1
    let h = Harness::new(TWO_JOBS_SAME_SD, opts());
    let p = h.agent.providers();
    assert_eq!(p.len(), 1);
    assert_eq!(&*p[0].0, "static/0");
    assert_eq!(p[0].1.len(), 2);
    assert_eq!(h.urls("prometheus"), ["http://foo:9090/metrics"]);
    assert_eq!(h.urls("prometheus2"), ["http://foo:9090/metrics"]);
}

#[test]
fn renaming_a_job_keeps_the_provider_and_moves_targets_at_once() {
    // §9.1 #3: the new job is filled from the kept provider's groups, no re-send.
    let mut h = Harness::new(
        "scrape_configs: [{job_name: a, static_configs: [{targets: [\"foo:1\"]}]}]",
        opts(),
    );
    let received = h.agent.stats().sd.received_updates;
    h.input(Input::Config(Box::new(config(
        "scrape_configs: [{job_name: b, static_configs: [{targets: [\"foo:1\"]}]}]",
    ))));
    assert_eq!(&*h.agent.providers()[0].0, "static/0");
    assert_eq!(h.agent.stats().sd.received_updates, received, "no re-send");
    assert_eq!(h.urls("a"), Vec::<String>::new());
    assert_eq!(h.urls("b"), ["http://foo:1/metrics"]);
    let pools: Vec<String> = h.agent.pools().iter().map(|p| p.job.to_string()).collect();
    assert_eq!(pools, ["b"]);
}

#[test]
fn duplicate_then_delete_original() {
    // §9.1 #4
    let one =
        "scrape_configs: [{job_name: prometheus, static_configs: [{targets: [\"foo:9090\"]}]}]";
    let mut h = Harness::new(one, opts());
    h.input(Input::Config(Box::new(config(TWO_JOBS_SAME_SD))));
    assert_eq!(h.urls("prometheus2"), ["http://foo:9090/metrics"]);
    h.input(Input::Config(Box::new(config(
        "scrape_configs: [{job_name: prometheus2, scrape_interval: 10s, static_configs: [{targets: [\"foo:9090\"]}]}]",
    ))));
    assert!(h.urls("prometheus").is_empty());
    assert_eq!(h.urls("prometheus2"), ["http://foo:9090/metrics"]);
}

#[test]
fn shrinking_a_static_config_makes_a_new_provider() {
    // §9.1 #6: counter keeps growing across reloads.
    let mut h = Harness::new(
        "scrape_configs: [{job_name: j, static_configs: [{targets: [\"foo:1\", \"bar:1\"]}]}]",
        opts(),
    );
    assert_eq!(h.urls("j").len(), 2);
    h.input(Input::Config(Box::new(config(
        "scrape_configs: [{job_name: j, static_configs: [{targets: [\"foo:1\"]}]}]",
    ))));
    let p = h.agent.providers();
    assert_eq!(p.len(), 1);
    assert_eq!(&*p[0].0, "static/1");
    assert_eq!(h.urls("j"), ["http://foo:1/metrics"]);
}

#[test]
fn emptied_static_config_empties_the_pool_but_keeps_it() {
    // §9.1 #8 and §9.4 #49
    let mut h = Harness::new(
        "scrape_configs: [{job_name: j, static_configs: [{targets: [\"foo:1\"]}]}]",
        opts(),
    );
    h.input(Input::Config(Box::new(config(
        "scrape_configs: [{job_name: j}]",
    ))));
    assert!(h.urls("j").is_empty());
    assert_eq!(h.agent.pools().len(), 1, "the pool stays, with no targets");
}

#[test]
fn blocks_of_mechanisms_not_run_count_as_failed_configs() {
    // §9.1 #10: a block trawl validates but does not run yet is a failed config
    let yaml = r#"
scrape_configs:
  - job_name: j
    kuma_sd_configs: [{server: 'http://kuma-a:5676'}, {server: 'http://kuma-b:5676'}]
    kubernetes_sd_configs: [{role: pod}]
"#;
    let mut h = Harness::new(yaml, opts());
    assert_eq!(h.agent.stats().sd.failed_configs, 3);
    assert_eq!(h.agent.pools().len(), 1, "the job gets the empty fallback");
    assert!(h.events().iter().any(|e| matches!(e, Event::SdFailure(_))));
    h.input(Input::Config(Box::new(config(
        "scrape_configs: [{job_name: j, static_configs: [{targets: [\"x:1\"]}]}]",
    ))));
    assert_eq!(h.agent.stats().sd.failed_configs, 0);
}

#[test]
fn scrapes_follow_the_phase_grid_exactly_one_interval_apart() {
    let mut h = Harness::new(
        "scrape_configs: [{job_name: node, scrape_interval: 15s, scrape_timeout: 5s, static_configs: [{targets: [\"localhost:9100\"]}]}]",
        opts(),
    );
    let mut starts = Vec::new();
    for _ in 0..6 {
        for (id, _) in h.advance_until_scrape(secs(15)) {
            starts.push(h.now.mono);
            h.respond(id, 200, "text/plain", b"up 1\n");
        }
    }
    assert!(starts.len() >= 5, "{starts:?}");
    for w in starts.windows(2) {
        assert_eq!(w[1] - w[0], secs(15));
    }
    // The first scrape happened at the Prometheus phase (§3.5).
    let t = &h.agent.targets()[0];
    let seed = trawl_core::hash::offset_seed("localhost", &trawl_core::Labels::empty());
    let phase = trawl_core::hash::scrape_phase(t.target.hash(), seed, 15_000_000_000);
    let wall0 = trawl_tests::T0_WALL as u64 + starts[0].0;
    assert_eq!(wall0 % 15_000_000_000, phase);
    assert_eq!(t.health, Health::Up);
}

#[test]
fn scrape_request_carries_prometheus_headers() {
    let yaml = r#"
scrape_configs:
  - job_name: j
    scrape_timeout: 7s
    enable_compression: false
    basic_auth: {username: u, password: p}
    body_size_limit: 1KB
    scrape_protocols: [PrometheusText0.0.4]
    static_configs: [{targets: ["h:1"]}]
"#;
    let mut h = Harness::new(yaml, opts());
    h.advance_until_scrape(secs(60));
    let (_, op) = h.pending_where(|_| true).pop().expect("a scrape");
    let IoOp::Http(r) = op else {
        panic!("not HTTP")
    };
    let hdr = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        hdr("Accept"),
        Some("text/plain;version=0.0.4;q=0.6,*/*;q=0.5")
    );
    assert_eq!(hdr("Accept-Encoding"), Some("identity"));
    assert_eq!(hdr("X-Prometheus-Scrape-Timeout-Seconds"), Some("7"));
    assert_eq!(hdr("Authorization"), Some("Basic dTpw"));
    assert!(hdr("User-Agent").is_some_and(|u| u.starts_with("trawl/")));
    assert_eq!(r.body_limit, 1024);
    assert_eq!(r.timeout, secs(7));
    assert!(matches!(r.origin, Origin::Scrape { .. }));
}

#[test]
fn a_hanging_scrape_is_cancelled_at_its_timeout_and_reported() {
    let mut h = Harness::new(
        "scrape_configs: [{job_name: j, scrape_interval: 10s, scrape_timeout: 3s, static_configs: [{targets: [\"h:1\"]}]}]",
        opts(),
    );
    h.advance(secs(10));
    let (id, _) = h.pending_scrapes()[0].clone();
    let started = h.now.mono;
    let out = h.advance(secs(3));
    assert!(out.contains(&Output::Cancel(id)));
    assert!(h.pending_scrapes().is_empty());
    let t = &h.agent.targets()[0];
    assert_eq!(t.health, Health::Down);
    assert!(
        t.last_error.contains("context deadline exceeded"),
        "{}",
        t.last_error
    );
    assert_eq!(h.agent.stats().scrape.scrapes_timed_out, 1);
    // A completion arriving after the cancel is ignored.
    h.reply(id, IoEvent::HttpEnd);
    assert_eq!(h.agent.stats().stale_completions, 1);
    // The next scrape is one interval after the previous start.
    h.advance(secs(7));
    assert_eq!(h.pending_scrapes().len(), 1);
    assert_eq!(h.now.mono - started, secs(10));
}

#[test]
fn non_200_is_a_failed_scrape_with_prometheus_text() {
    let mut h = Harness::new(
        "scrape_configs: [{job_name: j, static_configs: [{targets: [\"h:1\"]}]}]",
        opts(),
    );
    let (id, _) = h.advance_until_scrape(secs(60))[0].clone();
    h.respond(id, 404, "text/plain", b"");
    let t = &h.agent.targets()[0];
    assert_eq!(t.last_error, "server returned HTTP status 404 Not Found");
    assert_eq!(t.health, Health::Down);
}

#[test]
fn stopping_a_loop_lets_its_scrape_finish() {
    let mut h = Harness::new(
        "scrape_configs: [{job_name: j, scrape_interval: 10s, static_configs: [{targets: [\"h:1\"]}]}]",
        opts(),
    );
    h.advance(secs(10));
    let (id, _) = h.pending_scrapes()[0].clone();
    h.input(Input::Config(Box::new(config(
        "scrape_configs: [{job_name: j}]",
    ))));
    assert!(h.urls("j").is_empty());
    assert_eq!(h.agent.loops_alive(), 1, "still finishing its scrape");
    assert!(!h.log.iter().any(|(_, o)| *o == Output::Cancel(id)));
    h.respond(id, 200, "text/plain", b"a 1\n");
    // The target is gone: the loop stays only to write end-of-run stale markers, one
    // interval (now the default minute) and a tenth after its next tick.
    assert_eq!(h.agent.loops_alive(), 1);
    let out = h.advance(secs(120));
    assert_eq!(h.agent.loops_alive(), 0);
    assert!(h.pending_scrapes().is_empty(), "no scrape after the stop");
    let stale: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Append(b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(stale.len(), 1);
    // `a` and the five report series, all marked stale.
    assert_eq!(stale[0].samples.len(), 6);
    assert!(stale[0].samples.iter().all(|p| p.is_stale()));
}

/// Issue 16, defect 3: a removed target's end-of-run stale markers are due one interval
/// and a tenth later (an hour and six minutes at `1h`). A shutdown does not wait for
/// them: they are dropped, as Prometheus 3.x drops them (`endOfRunStaleness` returns
/// when the pool's context is cancelled), and reported; a scrape in flight still
/// finishes first, and its own marker is dropped too.
#[test]
fn shutdown_drops_end_of_run_markers_instead_of_waiting_for_them() {
    let yaml = "scrape_configs: [{job_name: j, scrape_interval: 1h, scrape_timeout: 10s, static_configs: [{targets: [\"h:1\", \"h:2\", \"h:3\"]}]}]";
    let mut h = Harness::new(yaml, opts());
    // Every target scraped once.
    h.advance(secs(3600));
    for (id, _) in h.pending_scrapes() {
        h.respond(id, 200, "text/plain", b"a 1\n");
    }
    assert!(h.pending_scrapes().is_empty());
    // h:1 and h:2 go; h:3 stays and its next scrape is in flight at shutdown.
    h.input(Input::Config(Box::new(config(
        "scrape_configs: [{job_name: j, scrape_interval: 1h, scrape_timeout: 10s, static_configs: [{targets: [\"h:3\"]}]}]",
    ))));
    assert_eq!(
        h.agent.loops_alive(),
        3,
        "two loops wait to write their markers"
    );
    let in_flight = h.advance_until_scrape(secs(3600));
    assert_eq!(in_flight.len(), 1, "{in_flight:?}");
    let out = h.input(Input::Shutdown);
    assert!(
        !h.agent.is_shut_down(),
        "the scrape in flight finishes first"
    );
    assert!(
        out.contains(&Output::Event(Event::StaleMarkersDropped(2))),
        "{out:?}"
    );
    h.respond(in_flight[0].0, 200, "text/plain", b"a 1\n");
    assert!(h.agent.is_shut_down());
    assert_eq!(h.agent.loops_alive(), 0);
    // Nothing more is written: no stale marker, now or later.
    let after_shutdown = h.advance(secs(3 * 3600));
    let stale = h
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Append(b) => Some(b),
            _ => None,
        })
        .flat_map(|b| &b.samples)
        .filter(|p| p.is_stale())
        .count();
    assert_eq!(stale, 0);
    assert!(after_shutdown.is_empty(), "{after_shutdown:?}");
}

#[test]
fn duplicate_targets_share_one_loop() {
    // §9.5 #57
    let yaml = r#"
scrape_configs:
  - job_name: j
    static_configs: [{targets: ["127.0.0.1:9090"]}, {targets: ["127.0.0.1:9090"]}]
"#;
    let mut h = Harness::new(yaml, opts());
    assert_eq!(h.agent.targets().len(), 1);
    assert_eq!(h.advance_until_scrape(secs(60)).len(), 1);
}

#[test]
fn dropped_targets_are_counted_and_kept_up_to_the_limit() {
    // §9.5 #55
    let yaml = r#"
scrape_configs:
  - job_name: dropMe
    keep_dropped_targets: 1
    relabel_configs: [{source_labels: [job], regex: dropMe, action: drop}]
    static_configs: [{targets: ["127.0.0.1:9090", "127.0.0.1:9091"]}]
"#;
    let h = Harness::new(yaml, opts());
    assert_eq!(h.agent.targets().len(), 0);
    assert_eq!(h.agent.pools()[0].dropped, 2);
    let d = h.agent.dropped_targets();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].rule, 0);
    assert_eq!(
        d[0].discovered_labels.get("__address__"),
        Some("127.0.0.1:9090")
    );
    assert_eq!(d[0].discovered_labels.get("job"), Some("dropMe"));
}

#[test]
fn target_limit_forces_an_error_without_requests() {
    // §9.5 #61 (shape)
    let yaml = r#"
scrape_configs:
  - job_name: j
    scrape_interval: 10s
    target_limit: 1
    static_configs: [{targets: ["a:1", "b:1"]}]
"#;
    let mut h = Harness::new(yaml, opts());
    h.advance(secs(30));
    assert!(h.pending_scrapes().is_empty());
    let t = h.agent.targets();
    assert!(t.iter().all(|t| t.health == Health::Down
        && t.last_error == "target_limit exceeded (number of targets: 2, limit: 1)"));
    assert_eq!(h.agent.pools()[0].stats.exceeded_target_limit, 1);
    h.input(Input::Config(Box::new(config(
        &yaml.replace("target_limit: 1", "target_limit: 2"),
    ))));
    assert!(h.agent.pools()[0].limit_error.is_none());
    h.advance(secs(10));
    assert_eq!(h.pending_scrapes().len(), 2);
}

#[test]
fn invalid_targets_are_sync_failures_not_targets() {
    // §9.3 #40/#41
    let yaml = r#"
scrape_configs:
  - job_name: j
    relabel_configs: [{regex: __address__, action: labeldrop}]
    static_configs: [{targets: ["localhost:9090"]}]
"#;
    let h = Harness::new(yaml, opts());
    assert!(h.agent.targets().is_empty());
    assert_eq!(h.agent.pools()[0].dropped, 0);
    assert_eq!(h.agent.pools()[0].stats.sync_failed, 1);
    assert!(
        h.events().iter().any(|e| matches!(e,
        Event::TargetSyncFailed { message, .. } if message == "instance 0 in group 0: no address"))
    );
}

const RELOAD_BASE: &str = r#"
scrape_configs:
  - job_name: a
    scrape_interval: 10s
    scrape_timeout: 5s
    static_configs: [{targets: ["a:1", "a:2"]}]
  - job_name: b
    scrape_interval: 10s
    static_configs: [{targets: ["b:1"]}]
"#;

fn loop_ids(h: &Harness, job: &str) -> Vec<u64> {
    let mut v: Vec<u64> = h
        .agent
        .targets()
        .iter()
        .filter(|t| &*t.job == job)
        .map(|t| t.loop_id.0)
        .collect();
    v.sort();
    v
}

#[test]
fn reload_keeps_unchanged_pools_and_hands_loops_over_on_interval_change() {
    let mut h = Harness::new(RELOAD_BASE, opts());
    let a0 = loop_ids(&h, "a");
    let b0 = loop_ids(&h, "b");
    // Timeout and sample limit change: loops kept, the grid too.
    h.input(Input::Config(Box::new(config(&RELOAD_BASE.replace(
        "scrape_timeout: 5s",
        "scrape_timeout: 4s\n    sample_limit: 10",
    )))));
    assert_eq!(loop_ids(&h, "a"), a0);
    assert_eq!(loop_ids(&h, "b"), b0);
    assert!(
        h.agent
            .targets()
            .iter()
            .filter(|t| &*t.job == "a")
            .all(|t| t.target.timeout.to_string() == "4s")
    );
    // Interval change: still the same loops, now on a 5s grid.
    h.input(Input::Config(Box::new(config(&RELOAD_BASE.replacen(
        "scrape_interval: 10s",
        "scrape_interval: 5s",
        1,
    )))));
    assert_eq!(loop_ids(&h, "a"), a0);
    assert_eq!(loop_ids(&h, "b"), b0, "job b untouched");
    let mut starts: Vec<(String, Instant)> = Vec::new();
    let end = h.now.mono + secs(40);
    while h.now.mono < end {
        for (id, url) in h.advance_until_scrape(end - h.now.mono) {
            starts.push((url, h.now.mono));
            h.respond(id, 200, "text/plain", b"up 1\n");
        }
    }
    let a1: Vec<Instant> = starts
        .iter()
        .filter(|(u, _)| u.contains("a:1"))
        .map(|s| s.1)
        .collect();
    assert!(a1.len() >= 7, "{a1:?}");
    for w in a1.windows(2) {
        assert_eq!(w[1] - w[0], secs(5));
    }
    // A relabel change restarts the pool's loops.
    h.input(Input::Config(Box::new(config(&RELOAD_BASE.replacen(
        "    static_configs: [{targets: [\"a:1\", \"a:2\"]}]",
        "    relabel_configs: [{target_label: team, replacement: x}]\n    static_configs: [{targets: [\"a:1\", \"a:2\"]}]",
        1,
    )))));
    let a2 = loop_ids(&h, "a");
    assert_eq!(a2.len(), 2);
    assert!(a2.iter().all(|l| !a0.contains(l)), "{a2:?} vs {a0:?}");
    assert_eq!(loop_ids(&h, "b"), b0);
}

#[test]
fn shutdown_waits_for_in_flight_scrapes() {
    let mut h = Harness::new(RELOAD_BASE, opts());
    h.advance(secs(10));
    let pending = h.pending_scrapes();
    assert!(!pending.is_empty());
    let out = h.input(Input::Shutdown);
    assert!(!out.contains(&Output::Event(Event::ShutdownComplete)));
    for (id, _) in pending {
        h.respond(id, 200, "text/plain", b"");
    }
    assert!(h.agent.is_shut_down());
    assert!(h.events().contains(&Event::ShutdownComplete));
    h.advance(secs(60));
    assert!(h.pending.is_empty(), "{:?}", h.pending);
}

// ---------------------------------------------------------------- file SD (§8.2, §9.2)

const FILE_SD: &str = r#"
scrape_configs:
  - job_name: files
    scrape_interval: 10s
    file_sd_configs: [{files: ["sd/*.json"], refresh_interval: 1m}]
"#;

/// Answers every pending file operation from `files` (path → content; `None`: missing).
fn serve_files(h: &mut Harness, files: &[(&str, Option<&str>)]) {
    h.serve_files(files.iter().filter_map(|(p, c)| c.map(|c| (*p, c))));
}

fn watch_id(h: &Harness) -> trawl_core::RequestId {
    h.pending_where(|op| matches!(op, IoOp::Watch { .. }))[0].0
}

#[test]
fn file_sd_reads_watches_and_keeps_last_good_state() {
    let mut h = Harness::new(FILE_SD, opts());
    assert_eq!(
        h.pending_where(|op| matches!(op, IoOp::Watch { .. })).len(),
        1
    );
    let a = r#"[{"targets": ["localhost:9090", "example.org:443"], "labels": {"foo": "bar"}}, {"targets": ["my.domain"]}]"#;
    serve_files(&mut h, &[("/etc/trawl/sd/a.json", Some(a))]);
    // Delivered within the coalescing window.
    assert!(h.urls("files").is_empty());
    h.advance(Duration::from_millis(100));
    assert_eq!(h.urls("files").len(), 3);
    let t = h
        .agent
        .targets()
        .into_iter()
        .find(|t| t.target.url.contains("my.domain"))
        .unwrap();
    assert_eq!(
        t.discovered_labels.get("__meta_filepath"),
        Some("/etc/trawl/sd/a.json")
    );

    // Garbage written: the old targets stay (§9.2 #23), the error names the file.
    let w = watch_id(&h);
    h.reply(w, IoEvent::Changed { name: None });
    serve_files(&mut h, &[("/etc/trawl/sd/a.json", Some("[{\"targets\": "))]);
    h.advance(secs(6));
    assert_eq!(h.urls("files").len(), 3);
    assert_eq!(
        h.agent
            .stats()
            .sd
            .counter("prometheus_sd_file_read_errors_total"),
        1
    );
    assert!(
        h.events().iter().any(
            |e| matches!(e, Event::SdFailure(f) if f.message.contains("/etc/trawl/sd/a.json"))
        )
    );

    // The file shrinks to one group: the second source empties (§9.2 #24).
    h.reply(w, IoEvent::Changed { name: None });
    serve_files(
        &mut h,
        &[(
            "/etc/trawl/sd/a.json",
            Some(r#"[{"targets": ["localhost:9091"]}]"#),
        )],
    );
    h.advance(secs(6));
    assert_eq!(h.urls("files"), ["http://localhost:9091/metrics"]);

    // The file is deleted: everything goes (§9.2 #25).
    h.reply(w, IoEvent::Changed { name: None });
    serve_files(&mut h, &[("/etc/trawl/sd/a.json", None)]);
    h.advance(secs(6));
    assert!(h.urls("files").is_empty());
}

#[test]
fn file_sd_identical_rewrite_changes_nothing_downstream() {
    let mut h = Harness::new(FILE_SD, opts());
    let a = r#"[{"targets": ["x:1"]}]"#;
    serve_files(&mut h, &[("/etc/trawl/sd/a.json", Some(a))]);
    h.advance(secs(1));
    let syncs = h.agent.pools()[0].stats.syncs;
    let w = watch_id(&h);
    h.reply(w, IoEvent::Changed { name: None });
    serve_files(
        &mut h,
        &[(
            "/etc/trawl/sd/a.json",
            Some("[ {\"targets\" : [\"x:1\"]} ]"),
        )],
    );
    h.advance(secs(10));
    assert_eq!(
        h.agent.pools()[0].stats.syncs,
        syncs,
        "no resync for identical groups"
    );
    assert!(!h.agent.has_pending_changes());
}

#[test]
fn file_sd_refreshes_periodically() {
    let mut h = Harness::new(FILE_SD, opts());
    serve_files(
        &mut h,
        &[("/etc/trawl/sd/a.json", Some(r#"[{"targets": ["x:1"]}]"#))],
    );
    h.advance(secs(59));
    assert!(
        h.pending_where(|op| matches!(op, IoOp::ListDir { .. }))
            .is_empty()
    );
    h.advance(secs(1));
    assert_eq!(
        h.pending_where(|op| matches!(op, IoOp::ListDir { .. }))
            .len(),
        1
    );
}

// ---------------------------------------------------------------- HTTP SD (§8.3)

const HTTP_SD: &str = r#"
scrape_configs:
  - job_name: web
    http_sd_configs: [{url: "http://127.0.0.1:8000/sd", refresh_interval: 30s}]
"#;

fn sd_requests(h: &Harness) -> Vec<(trawl_core::RequestId, trawl_core::io::HttpRequest)> {
    h.pending_where(
        |op| matches!(op, IoOp::Http(r) if matches!(r.origin, Origin::Discovery { .. })),
    )
    .into_iter()
    .filter_map(|(id, op)| match op {
        IoOp::Http(r) => Some((id, r)),
        _ => None,
    })
    .collect()
}

#[test]
fn http_sd_fetches_keeps_targets_on_failure_and_shrinks() {
    let mut h = Harness::new(HTTP_SD, opts());
    let (id, req) = sd_requests(&h).pop().expect("an SD request at start");
    assert_eq!(req.url, "http://127.0.0.1:8000/sd");
    assert!(
        req.headers
            .contains(&("Accept".into(), "application/json".into()))
    );
    assert!(
        req.headers
            .contains(&("X-Prometheus-Refresh-Interval-Seconds".into(), "30".into()))
    );
    h.respond(
        id,
        200,
        "application/json",
        br#"[{"targets": ["a:1"], "labels": {"k": "1"}}, {"targets": ["b:1"]}]"#,
    );
    h.advance(Duration::from_millis(100));
    assert_eq!(h.urls("web").len(), 2);
    let t = &h.agent.targets()[0];
    assert_eq!(
        t.discovered_labels.get("__meta_url"),
        Some("http://127.0.0.1:8000/sd")
    );

    // Failure: previous targets stay; the error is Prometheus's text.
    h.advance(secs(30));
    let (id, _) = sd_requests(&h).pop().expect("refresh");
    h.respond(id, 400, "text/plain", b"");
    assert_eq!(h.urls("web").len(), 2);
    assert_eq!(
        h.agent
            .stats()
            .sd
            .counter("prometheus_sd_http_failures_total"),
        1
    );
    assert!(h.events().iter().any(|e| matches!(e, Event::SdFailure(f)
        if f.message == "server returned HTTP status 400 Bad Request")));

    // Wrong content type: a failure too.
    h.advance(secs(30));
    let (id, _) = sd_requests(&h).pop().expect("refresh");
    h.respond(id, 200, "application/json;", b"[]");
    assert_eq!(h.urls("web").len(), 2);
    assert_eq!(
        h.agent
            .stats()
            .sd
            .counter("prometheus_sd_http_failures_total"),
        2
    );

    // A shorter answer empties the vanished index (§9.2 #27).
    h.advance(secs(30));
    let (id, _) = sd_requests(&h).pop().expect("refresh");
    h.respond(
        id,
        200,
        "application/json; charset=utf-8",
        br#"[{"targets": ["a:1"], "labels": {"k": "1"}}]"#,
    );
    h.advance(secs(6));
    assert_eq!(h.urls("web"), ["http://a:1/metrics"]);

    // `[]` removes everything.
    h.advance(secs(30));
    let (id, _) = sd_requests(&h).pop().expect("refresh");
    h.respond(id, 200, "application/json", b"[]");
    h.advance(secs(6));
    assert!(h.urls("web").is_empty());
}

// ---------------------------------------------------------------- coalescing

#[test]
fn coalescing_first_change_fast_then_paced() {
    let mut h = Harness::new(HTTP_SD.replace("30s", "1s").as_str(), opts());
    let answer = |i: usize| format!(r#"[{{"targets": ["t{i}:1"]}}]"#);
    // First answer at t=0: delivered 100 ms later.
    let (id, _) = sd_requests(&h).pop().unwrap();
    h.respond(id, 200, "application/json", answer(0).as_bytes());
    h.advance(Duration::from_millis(99));
    assert!(h.urls("web").is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.urls("web"), ["http://t0:1/metrics"]);
    let delivered_at = h.now.mono;
    // A change every second: delivered at most once per 5 s.
    let mut deliveries = Vec::new();
    for i in 1..=12 {
        h.advance_to(Instant(i * 1_000_000_000));
        let (id, _) = sd_requests(&h).pop().expect("refresh every second");
        let before = h.urls("web");
        h.respond(id, 200, "application/json", answer(i as usize).as_bytes());
        let _ = before;
        h.advance(Duration::from_millis(1));
        for (t, o) in &h.log {
            if matches!(o, Output::Event(Event::Delivered { .. }))
                && t.mono > delivered_at
                && !deliveries.contains(&t.mono)
            {
                deliveries.push(t.mono);
            }
        }
    }
    assert!(!deliveries.is_empty());
    let mut prev = delivered_at;
    for d in &deliveries {
        assert!(
            *d - prev >= secs(5),
            "deliveries {deliveries:?} closer than 5 s"
        );
        prev = *d;
    }
}

#[test]
fn relabeled_interval_and_timeout_apply_at_sync_and_survive_reload() {
    // §9.5 #60 and #63
    let yaml = r#"
scrape_configs:
  - job_name: j
    scrape_interval: 2s
    scrape_timeout: 500ms
    relabel_configs:
      - {source_labels: [__scrape_interval__], regex: 2s, replacement: 3s, target_label: __scrape_interval__}
      - {source_labels: [__scrape_timeout__], regex: 500ms, replacement: 750ms, target_label: __scrape_timeout__}
    static_configs: [{targets: ["h:1"]}]
"#;
    let mut h = Harness::new(yaml, opts());
    let t = &h.agent.targets()[0];
    assert_eq!(t.target.labels.get("__scrape_interval__"), Some("3s"));
    assert_eq!(t.target.labels.get("__scrape_timeout__"), Some("750ms"));
    assert_eq!(t.target.interval.to_string(), "3s");
    let loop_id = t.loop_id;
    h.input(Input::Config(Box::new(config(&yaml.replace(
        "    static_configs",
        "    sample_limit: 5\n    static_configs",
    )))));
    let t = &h.agent.targets()[0];
    assert_eq!(
        t.target.interval.to_string(),
        "3s",
        "the relabeled interval survives"
    );
    assert_eq!(t.loop_id, loop_id);
}

#[test]
fn same_identity_with_new_discovered_labels_keeps_the_loop() {
    // §9.5 #56: a label relabeling drops changes the discovered labels only.
    let yaml = r#"
scrape_configs:
  - job_name: j
    relabel_configs: [{regex: temp, action: labeldrop}]
    static_configs: [{targets: ["h:1"], labels: {temp: a}}]
"#;
    let mut h = Harness::new(yaml, opts());
    let before = h.agent.targets()[0].clone();
    assert_eq!(before.discovered_labels.get("temp"), Some("a"));
    h.input(Input::Config(Box::new(config(
        &yaml.replace("temp: a", "temp: b"),
    ))));
    let after = h.agent.targets()[0].clone();
    assert_eq!(after.discovered_labels.get("temp"), Some("b"));
    assert_eq!(after.target, before.target);
}

#[test]
fn file_sd_switched_to_a_missing_file_empties_only_that_job() {
    // §9.4 #50 and #51
    let yaml = r#"
scrape_configs:
  - job_name: files
    file_sd_configs: [{files: ["sd/a.json"]}]
  - job_name: other
    static_configs: [{targets: ["o:1"]}]
"#;
    let mut h = Harness::new(yaml, opts());
    serve_files(
        &mut h,
        &[("/etc/trawl/sd/a.json", Some(r#"[{"targets": ["x:1"]}]"#))],
    );
    h.advance(secs(1));
    assert_eq!(h.urls("files"), ["http://x:1/metrics"]);
    h.input(Input::Config(Box::new(config(
        &yaml.replace("sd/a.json", "sd/idontexistdoi.json"),
    ))));
    serve_files(
        &mut h,
        &[("/etc/trawl/sd/a.json", Some(r#"[{"targets": ["x:1"]}]"#))],
    );
    h.advance(secs(1));
    assert!(h.urls("files").is_empty());
    assert_eq!(h.urls("other"), ["http://o:1/metrics"]);
}

#[test]
fn same_inputs_same_outputs_byte_for_byte() {
    let run = || {
        let mut h = Harness::new(RELOAD_BASE, opts());
        for _ in 0..5 {
            for (id, _) in h.advance_until_scrape(secs(10)) {
                h.respond(id, 200, "text/plain", b"up 1\n");
            }
        }
        h.input(Input::Config(Box::new(config(
            &RELOAD_BASE.replace("a:2", "a:3"),
        ))));
        h.advance(secs(30));
        format!("{:?}", h.log)
    };
    assert_eq!(run(), run());
}

#[test]
fn file_sd_rereads_only_the_file_a_watch_names() {
    let mut h = Harness::new(FILE_SD, opts());
    let files = [
        ("/etc/trawl/sd/a.json", Some(r#"[{"targets": ["a:1"]}]"#)),
        ("/etc/trawl/sd/b.json", Some(r#"[{"targets": ["b:1"]}]"#)),
    ];
    serve_files(&mut h, &files);
    h.advance(secs(1));
    assert_eq!(h.urls("files").len(), 2);
    let w = watch_id(&h);
    h.reply(
        w,
        IoEvent::Changed {
            name: Some("b.json"),
        },
    );
    // No listing: only b.json is read again.
    assert!(
        h.pending_where(|op| matches!(op, IoOp::ListDir { .. }))
            .is_empty()
    );
    let reads: Vec<String> = h
        .pending_where(|op| matches!(op, IoOp::ReadFile { .. }))
        .into_iter()
        .filter_map(|(_, op)| match op {
            IoOp::ReadFile { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(reads, ["/etc/trawl/sd/b.json"]);
    serve_files(
        &mut h,
        &[
            ("/etc/trawl/sd/a.json", Some(r#"[{"targets": ["a:1"]}]"#)),
            ("/etc/trawl/sd/b.json", Some(r#"[{"targets": ["b:2"]}]"#)),
        ],
    );
    h.advance(secs(6));
    assert_eq!(
        h.urls("files"),
        ["http://a:1/metrics", "http://b:2/metrics"]
    );
    // A name no pattern matches changes nothing and costs nothing.
    h.reply(
        w,
        IoEvent::Changed {
            name: Some("notes.txt"),
        },
    );
    let file_ops = h.pending_where(|op| !matches!(op, IoOp::Http(_)));
    assert_eq!(file_ops.len(), 1, "only the watch: {file_ops:?}");
    // A named file that is gone loses its targets; the others keep theirs.
    h.reply(
        w,
        IoEvent::Changed {
            name: Some("a.json"),
        },
    );
    serve_files(&mut h, &[("/etc/trawl/sd/a.json", None)]);
    h.advance(secs(6));
    assert_eq!(h.urls("files"), ["http://b:2/metrics"]);
}

#[test]
fn self_metrics_use_prometheus_names() {
    let yaml = r#"
scrape_configs:
  - job_name: a
    static_configs: [{targets: ["a:1", "a:2"]}]
  - job_name: b
    relabel_configs: [{regex: __address__, action: labeldrop}]
    static_configs: [{targets: ["b:1"]}]
"#;
    let h = Harness::new(yaml, opts());
    let m = h.agent.metrics();
    let get = |name: &str, label: Option<(&str, &str)>| m.value(name, label.as_slice());
    assert_eq!(
        get("prometheus_sd_discovered_targets", Some(("config", "a"))),
        Some(2.0)
    );
    assert_eq!(
        get(
            "prometheus_target_scrape_pool_targets",
            Some(("scrape_job", "a"))
        ),
        Some(2.0)
    );
    assert_eq!(
        get(
            "prometheus_target_sync_failed_total",
            Some(("scrape_job", "b"))
        ),
        Some(1.0)
    );
    assert_eq!(get("prometheus_target_scrape_pools_total", None), Some(2.0));
    assert_eq!(get("prometheus_sd_failed_configs", None), Some(0.0));
    // Rendered the same way twice: /metrics output is stable.
    assert_eq!(m.render(), h.agent.metrics().render());
}

/// Issue 16: a job without `body_size_limit` is cut at the agent's default ceiling (as
/// the body streams in: the request is cancelled), a job's own limit wins over it, and
/// 0 turns the ceiling off.
#[test]
fn jobs_without_a_body_limit_get_the_default_ceiling() {
    let yaml = "scrape_configs:\n- job_name: plain\n  scrape_interval: 10s\n  static_configs: [{targets: [\"a:1\"]}]\n- job_name: own\n  scrape_interval: 10s\n  body_size_limit: 1MB\n  static_configs: [{targets: [\"b:1\"]}]\n";
    let body: String = (0..200).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
    for (ceiling, plain_ok) in [(1000, false), (0, true)] {
        let mut h = Harness::new(
            yaml,
            AgentOptions {
                body_size_limit: ceiling,
                ..opts()
            },
        );
        let pending = h.advance_until_scrape(secs(10));
        h.advance(secs(10));
        let pending: Vec<_> = h.pending_scrapes().into_iter().chain(pending).collect();
        let mut seen = std::collections::BTreeSet::new();
        for (id, url) in pending {
            if !seen.insert(url.clone()) {
                continue;
            }
            let head = IoEvent::HttpHead {
                status: 200,
                reason: "OK",
                headers: &[("Content-Type", "text/plain")],
            };
            h.reply(id, head);
            let out = h.reply(id, IoEvent::HttpBody(body.as_bytes()));
            let cancelled = out.contains(&Output::Cancel(id));
            if !cancelled {
                h.reply(id, IoEvent::HttpEnd);
            }
            let plain = url.contains("a:1");
            assert_eq!(cancelled, plain && !plain_ok, "{url} ceiling {ceiling}");
        }
        for t in h.agent.targets() {
            let want_up = &*t.job == "own" || plain_ok;
            assert_eq!(
                t.health == Health::Up,
                want_up,
                "{} ceiling {ceiling}: {}",
                t.job,
                t.last_error
            );
            if !want_up {
                assert_eq!(t.last_error, "body size limit exceeded");
            }
        }
    }
}

/// Issue 16: a gzip body that inflates far (32 KiB of gzip, 32 MiB of text) is parsed
/// in slices of `BODY_SLICE` decompressed bytes: the chunk's input handles one slice,
/// the agent asks for an immediate timeout and parses at most 16 slices per timeout,
/// refusing more of that body (`accepts_body`) until it has caught up; the response's
/// end waits for the rest, and the scrape then succeeds with every sample counted.
#[test]
fn a_body_that_inflates_far_is_parsed_in_slices() {
    use std::io::Write;
    let yaml = "scrape_configs:\n- job_name: bomb\n  scrape_interval: 1m\n  scrape_timeout: 50s\n  body_size_limit: 1GB\n  static_configs: [{targets: [\"b:1\"]}]\n";
    let mut h = Harness::new(yaml, opts());
    let (id, _) = h.advance_until_scrape(secs(60))[0].clone();
    let line = b"bomb_metric 1\n";
    let lines = (32usize << 20) / line.len();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..lines {
        gz.write_all(line).expect("in memory");
    }
    let gz = gz.finish().expect("in memory");
    assert!(gz.len() < 256 << 10, "{} bytes of gzip", gz.len());
    h.reply(
        id,
        IoEvent::HttpHead {
            status: 200,
            reason: "OK",
            headers: &[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
        },
    );
    h.reply(id, IoEvent::HttpBody(&gz));
    assert!(!h.agent.accepts_body(id), "the rest waits");
    let now = h.now.mono;
    assert_eq!(
        h.agent.poll_timeout(),
        Some(now),
        "an immediate timeout is asked for"
    );
    // The end arrives while most of the body is still compressed: it waits.
    h.reply(id, IoEvent::HttpEnd);
    assert!(
        !h.log.iter().any(|(_, o)| matches!(o, Output::Append(_))),
        "not finished yet"
    );
    let mut timeouts = 0;
    while !h.agent.accepts_body(id) {
        h.input(Input::Timeout);
        timeouts += 1;
        assert!(timeouts < 10_000);
    }
    // 32 MiB in slices of 256 KiB, at most 16 slices (4 MiB) per timeout.
    assert!(timeouts >= 8, "{timeouts} timeouts");
    let t = &h.agent.targets()[0];
    assert_eq!(t.health, Health::Up, "{}", t.last_error);
    let scraped = h
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Append(b) => Some(b),
            _ => None,
        })
        .flat_map(|b| b.samples.iter().map(move |p| (b, p)))
        .filter(|(b, p)| {
            b.series
                .iter()
                .any(|(r, l)| *r == p.series && l.get("__name__") == Some("scrape_samples_scraped"))
        })
        .map(|(_, p)| p.value())
        .next();
    assert_eq!(scraped, Some(lines as f64));
}

/// The `Accept` header of the first scrape of an agent on `yaml`.
fn first_accept(yaml: &str, o: AgentOptions) -> String {
    let mut h = Harness::new(yaml, o);
    h.advance_until_scrape(secs(60));
    let (_, op) = h.pending_where(|_| true).pop().expect("a scrape");
    let IoOp::Http(r) = op else {
        panic!("not HTTP")
    };
    r.headers
        .iter()
        .find(|(k, _)| k == "Accept")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// `--enable-feature=created-timestamp-zero-ingestion` makes the default scrape
/// protocols protobuf first (3.x changes the global default); a job or global section
/// that lists its protocols keeps them.
#[test]
fn start_timestamps_put_protobuf_first_unless_protocols_are_listed() {
    let accept = |yaml: &str, st: bool| {
        let mut o = opts();
        o.start_timestamps = st;
        first_accept(yaml, o)
    };
    let plain = "scrape_configs:\n  - job_name: j\n    static_configs: [{targets: [\"h:1\"]}]\n";
    assert!(accept(plain, true).starts_with("application/vnd.google.protobuf"));
    assert!(!accept(plain, false).starts_with("application/vnd.google.protobuf"));
    let listed = "scrape_configs:\n  - job_name: j\n    scrape_protocols: [OpenMetricsText1.0.0]\n    static_configs: [{targets: [\"h:1\"]}]\n";
    assert!(accept(listed, true).starts_with("application/openmetrics-text"));
    let global = "global: {scrape_protocols: [PrometheusText0.0.4]}\nscrape_configs:\n  - job_name: j\n    static_configs: [{targets: [\"h:1\"]}]\n";
    assert!(accept(global, true).starts_with("text/plain"));
}

/// The job's `metric_name_escaping_scheme` is what the `Accept` header asks targets for
/// (3.x `acceptHeader`); a legacy-validated job without one asks for underscores.
#[test]
fn the_accept_header_asks_for_the_jobs_escaping_scheme() {
    let accept = |extra: &str| -> String {
        let yaml = format!(
            "scrape_configs:\n  - job_name: j\n    scrape_protocols: [PrometheusText1.0.0]\n{extra}    static_configs: [{{targets: [\"h:1\"]}}]\n"
        );
        first_accept(&yaml, opts())
    };
    assert!(accept("").contains("escaping=allow-utf-8"));
    for scheme in ["dots", "values", "underscores"] {
        let a = accept(&format!(
            "    metric_name_validation_scheme: legacy\n    metric_name_escaping_scheme: {scheme}\n"
        ));
        assert!(a.contains(&format!("escaping={scheme}")), "{scheme}: {a}");
    }
    assert!(accept("    metric_name_validation_scheme: legacy\n").contains("escaping=underscores"));
}

/// `first_scrape_at_once`: a target added to a running job is scraped when it is found,
/// stamped then, and afterwards on its phase grid; without the option (Prometheus), it
/// waits for its first grid instant. Targets of the job's first interval stay on the
/// grid either way.
#[test]
fn a_target_added_later_is_scraped_at_once_only_when_asked_then_on_its_grid() {
    let cfg = |targets: &str| {
        format!(
            "scrape_configs: [{{job_name: node, scrape_interval: 60s, scrape_timeout: 5s, static_configs: [{{targets: [{targets}]}}]}}]"
        )
    };
    let interval = 60_000_000_000u64;
    for at_once in [false, true] {
        let mut o = opts();
        o.first_scrape_at_once = at_once;
        let mut h = Harness::new(&cfg("\"a:9100\""), o);
        let seed =
            trawl_core::hash::offset_seed(&h.agent.options().fqdn, &trawl_core::Labels::empty());
        let wall = |h: &Harness| (h.now.wall.0 as u64) % interval;
        let phase_of = |h: &Harness, addr: &str| {
            let t = h
                .agent
                .targets()
                .into_iter()
                .find(|t| t.target.url.contains(addr))
                .expect("target");
            trawl_core::hash::scrape_phase(t.target.hash(), seed, interval)
        };
        // The first target, in the job's first interval: on its grid.
        let first = h.advance_until_scrape(secs(61));
        assert_eq!(first.len(), 1);
        assert_eq!(wall(&h), phase_of(&h, "a:9100"), "at_once {at_once}");
        h.respond(first[0].0, 200, "text/plain", b"up 1\n");
        h.advance(secs(90));
        for (id, _) in h.pending_scrapes() {
            h.respond(id, 200, "text/plain", b"up 1\n");
        }
        // A second target, a minute and a half in.
        h.input(Input::Config(Box::new(config(&cfg(
            "\"a:9100\", \"b:9100\"",
        )))));
        let pb = phase_of(&h, "b:9100");
        let wait = (pb + interval - wall(&h)) % interval;
        assert!(
            wait > 5_000_000_000,
            "pick a target whose grid instant is not within the timeout"
        );
        let now_b = h
            .pending_scrapes()
            .into_iter()
            .find(|(_, u)| u.contains("b:9100"));
        assert_eq!(now_b.is_some(), at_once, "scraped at once: {at_once}");
        if let Some((id, _)) = now_b {
            let stamp = h.now.wall.0;
            h.respond(id, 200, "text/plain", b"up 1\n");
            let stamped = h.log.iter().rev().find_map(|(_, o)| match o {
                Output::Append(b) if b.target.contains("b:9100") => b.samples.first().map(|p| p.t),
                _ => None,
            });
            assert_eq!(stamped, Some(stamp / 1_000_000), "stamped when it started");
        }
        // The next scrape of b is on its grid.
        let next = loop {
            let s = h.advance_until_scrape(secs(61));
            if let Some(x) = s.iter().find(|(_, u)| u.contains("b:9100")) {
                break x.clone();
            }
            for (id, _) in s {
                h.respond(id, 200, "text/plain", b"up 1\n");
            }
        };
        assert_eq!(wall(&h), pb, "at_once {at_once}");
        h.respond(next.0, 200, "text/plain", b"up 1\n");
        let m = h.agent.metrics();
        assert_eq!(
            m.value("trawl_target_scrapes_at_once_total", &[]),
            Some(if at_once { 1.0 } else { 0.0 })
        );
    }
}
