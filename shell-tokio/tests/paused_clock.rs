//! trawl-tokio under tokio's paused clock schedules scrapes exactly where the core's
//! scripted shell (`trawl_tests::Harness`, the simulator's driver) does: the same
//! configuration, seed and start time give the same scrape timestamps, target by target.
//!
//! The targets are closed ports on loopback, so every scrape fails at once and its
//! batch (the report series, `up` = 0) carries the scrape's scheduled timestamp.

use std::collections::BTreeMap;
use std::time::Duration;

use trawl_core::agent::{AgentOptions, Output};
use trawl_core::io::IoEvent;
use trawl_tests::{Harness, T0_WALL, config};
use trawl_tokio::{Agent, Batch, ChannelSink, WallClock};

/// Three targets, two intervals: phases differ per target, as Prometheus spreads them.
const YAML: &str = "
global: {scrape_interval: 10s, scrape_timeout: 2s}
scrape_configs:
  - job_name: a
    static_configs: [{targets: ['127.0.0.1:1', '127.0.0.2:1']}]
  - job_name: b
    scrape_interval: 4s
    static_configs: [{targets: ['127.0.0.3:1']}]
";

const SCRAPES: usize = 12;

/// (instance, timestamp ms) of each batch, from the `up` sample, in arrival order per
/// instance.
fn timestamps(batches: &[Batch]) -> BTreeMap<String, Vec<i64>> {
    let mut instance_of: BTreeMap<u64, String> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for b in batches {
        for (r, l) in &b.series {
            if l.get("__name__") == Some("up") {
                instance_of.insert(r.0, l.get("instance").unwrap_or("").to_owned());
            }
        }
        for p in &b.samples {
            if let Some(i) = instance_of.get(&p.series.0) {
                assert_eq!(p.value(), 0.0, "closed ports: every scrape fails");
                out.entry(i.clone()).or_default().push(p.t);
            }
        }
    }
    out
}

fn options() -> AgentOptions {
    AgentOptions {
        seed: 11,
        ..AgentOptions::default()
    }
}

/// The core under the scripted shell: every scrape refused at once.
fn simulated() -> Vec<Batch> {
    let mut h = Harness::starting_at(YAML, options(), T0_WALL);
    let mut batches = Vec::new();
    while batches.len() < SCRAPES {
        for (id, _) in h.advance_until_scrape(Duration::from_secs(60)) {
            let out = h.reply(id, IoEvent::Failed("connect: connection refused"));
            batches.extend(out.into_iter().filter_map(|o| match o {
                Output::Append(b) => Some(b),
                _ => None,
            }));
        }
    }
    batches.truncate(SCRAPES);
    batches
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn scrapes_land_on_the_simulators_phase_grid() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let agent = Agent::builder(config(YAML))
        .options(options())
        .wall_clock(WallClock::FromTokio {
            start: trawl_core::time::UnixNanos(T0_WALL),
        })
        .timer_slack(Duration::ZERO)
        .sink(ChannelSink(tx))
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    let mut got = Vec::new();
    while got.len() < SCRAPES {
        match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
            Ok(Some(b)) => got.push(b),
            other => panic!("no batch from the agent: {other:?}"),
        }
    }
    let _ = stop.send(());
    let report = run.await.expect("agent task");
    let want = timestamps(&simulated());
    let have = timestamps(&got);
    // Per instance, the first scrapes' timestamps agree (the tokio run may have had
    // a few more by the time the channel was read; compare the common prefix).
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        have.keys().collect::<Vec<_>>()
    );
    for (i, w) in &want {
        let h = &have[i];
        let n = w.len().min(h.len());
        assert!(n >= 2, "{i}: at least two scrapes each ({w:?} / {h:?})");
        assert_eq!(&h[..n], &w[..n], "{i}: scrape timestamps");
        // And they are on the interval grid.
        let step = if i.starts_with("127.0.0.3") {
            4000
        } else {
            10_000
        };
        assert!(w.windows(2).all(|p| p[1] - p[0] == step), "{i}: {w:?}");
    }
    assert!(report.stats.scrape.scrapes_started >= SCRAPES as u64);
}
