use std::collections::BTreeMap;

use super::*;
use crate::config::{Config, ParseOptions};
use crate::discovery::ProviderId;
use crate::io::IoCommand;

fn manager(yaml: &str) -> (ScrapeManager, Arc<str>) {
    let config = Config::parse(yaml, &ParseOptions::for_path("/p.yml")).expect("valid config");
    let job: Arc<str> = config.scrape_configs[0].job_name.as_str().into();
    let configs: BTreeMap<Arc<str>, Arc<ScrapeConfig>> = config
        .scrape_configs
        .iter()
        .map(|c| (Arc::from(c.job_name.as_str()), Arc::new(c.clone())))
        .collect();
    let mut m = ScrapeManager::new("test".into(), 0);
    m.apply_config(Now::default(), configs, 7, &mut ScrapeOut::default());
    (m, job)
}

fn group(source: &str, addrs: &[&str]) -> Arc<TargetGroup> {
    Arc::new(TargetGroup {
        targets: addrs
            .iter()
            .map(|a| Labels::from_pairs([(labels::ADDRESS, *a)]))
            .collect(),
        labels: Labels::empty(),
        source: source.into(),
    })
}

fn started_urls(io: &mut IoQueue) -> Vec<String> {
    io.queue
        .drain(..)
        .filter_map(|c| match c {
            IoCommand::Start(_, IoOp::Http(r)) => Some(r.url),
            _ => None,
        })
        .collect()
}

#[test]
fn colliding_target_hashes_still_make_two_targets_and_both_are_scraped() {
    let (mut m, job) = manager("scrape_configs: [{job_name: j, scrape_interval: 10s}]");
    // Every target gets the same 64-bit hash: identity must not depend on it.
    m.phase_hash = |_| 0x5eed;
    let mut out = ScrapeOut::default();
    let key = (ProviderId(0), Arc::from("0"));
    m.sync(
        Now::default(),
        &job,
        vec![(key, Some(group("0", &["a:1", "b:1"])))],
        &mut out,
    );
    let t = m.targets();
    assert_eq!(t.len(), 2);
    assert_eq!((m.phase_hash)(&t[0].target), (m.phase_hash)(&t[1].target));
    assert_ne!(t[0].loop_id, t[1].loop_id);
    let mut io = IoQueue::default();
    let first = m.poll_timeout().expect("loops are scheduled");
    m.handle_timeout(
        Now::new(first, UnixNanos(first.0 as i64)),
        true,
        &mut io,
        &mut out,
    );
    let mut urls = started_urls(&mut io);
    urls.sort();
    assert_eq!(urls, ["http://a:1/metrics", "http://b:1/metrics"]);
}

#[test]
fn only_changed_sources_are_relabeled() {
    let (mut m, job) = manager("scrape_configs: [{job_name: j}]");
    let mut out = ScrapeOut::default();
    let changes: Vec<_> = (0..10)
        .map(|i| {
            let s = i.to_string();
            let addrs: Vec<String> = (0..10).map(|k| format!("h{i}-{k}:1")).collect();
            let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
            (
                (ProviderId(0), Arc::from(s.as_str())),
                Some(group(&s, &refs)),
            )
        })
        .collect();
    m.sync(Now::default(), &job, changes, &mut out);
    assert_eq!(m.pools()[0].stats.entries_relabeled, 100);
    assert_eq!(m.targets().len(), 100);
    // One group changes: ten entries are relabeled, not a hundred.
    let key = (ProviderId(0), Arc::from("3"));
    m.sync(
        Now::default(),
        &job,
        vec![(key, Some(group("3", &["new:1"])))],
        &mut out,
    );
    assert_eq!(m.pools()[0].stats.entries_relabeled, 101);
    assert_eq!(m.targets().len(), 91);
}

#[test]
fn a_target_moving_between_sources_keeps_its_loop() {
    let (mut m, job) = manager("scrape_configs: [{job_name: j}]");
    let mut out = ScrapeOut::default();
    let a = (ProviderId(0), Arc::from("a"));
    let b = (ProviderId(0), Arc::from("b"));
    m.sync(
        Now::default(),
        &job,
        vec![(a.clone(), Some(group("a", &["x:1"])))],
        &mut out,
    );
    let before = m.targets()[0].loop_id;
    m.sync(
        Now::default(),
        &job,
        vec![(a, None), (b, Some(group("b", &["x:1"])))],
        &mut out,
    );
    let t = m.targets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].loop_id, before);
}
