//! The whole per-scrape pipeline on arbitrary bodies: the input is split at 0xFF bytes
//! into successive scrapes of one target (an empty piece is a failed scrape), each run
//! through parsing, the series cache, relabeling, limits, staleness and the report
//! series. Never a panic, and every batch is consistent: refs declared once before use,
//! stale markers only for live series, a failed scrape stores only markers and report
//! series, the cache stays bounded.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use trawl_core::config::{Config, ParseOptions};
use trawl_core::exposition::{BodyParser, Entry, Format};
use trawl_core::labels::Labels;
use trawl_core::scrape::pipeline::{REPORT_SERIES, Refs, ScrapeContext, ScrapeRun, SeriesCache};

fuzz_target!(|data: &[u8]| {
    let cfg = Config::parse(
        "scrape_configs:\n  - job_name: j\n    sample_limit: 50\n    label_limit: 8\n    metric_relabel_configs:\n      - {source_labels: [__name__], regex: drop_.*, action: drop}\n",
        &ParseOptions::for_path("f.yml"),
    )
    .unwrap()
    .scrape_configs
    .remove(0);
    let job: Arc<str> = "j".into();
    let url: Arc<str> = "http://h:1/metrics".into();
    let target = Labels::from_pairs([("instance", "h:1"), ("job", "j")]);
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let mut declared = BTreeSet::new();
    let mut live: BTreeMap<u64, bool> = BTreeMap::new();
    let mut report_refs = BTreeSet::new();
    for (k, body) in data.split(|&b| b == 0xFF).take(8).enumerate() {
        let t = 1_000_000 + 10_000 * k as i64;
        let format = if body.first() == Some(&b'#') && body.ends_with(b"# EOF\n") {
            Format::OpenMetrics
        } else {
            Format::PromText
        };
        let ctx = ScrapeContext {
            job: &job,
            url: &url,
            loop_id: 1,
            cfg: &cfg,
            target_labels: &target,
            append_time: t,
            max_time: t + 600_000,
            start_timestamps: false,
        };
        let mut run = ScrapeRun::new(&mut cache, t);
        let result = if body.is_empty() {
            Err("connection refused".to_owned())
        } else {
            let mut p = BodyParser::new(format);
            let mut sink = |e: Entry<'_>| run.entry(&mut cache, &ctx, &mut refs, e);
            let r = p.feed(body, &mut sink).and_then(|()| p.finish(&mut sink));
            run.body_bytes = body.len() as i64;
            r.map_err(|e| format!("{e:?}"))
        };
        let out = run.finish(&mut cache, &ctx, &mut refs, std::time::Duration::ZERO, result);
        for (r, l) in &out.batch.series {
            assert!(declared.insert(r.0), "ref declared twice");
            // Report series carry exactly the metric name and the target's labels.
            // The five of them without `extra_scrape_metrics`.
            let report = &REPORT_SERIES[..5];
            if l.len() == 3 && l.get("__name__").is_some_and(|n| report.contains(&n)) {
                report_refs.insert(r.0);
            }
        }
        for p in &out.batch.samples {
            assert!(declared.contains(&p.series.0), "undeclared ref");
            // Exposed timestamps are honoured; markers and report series take the
            // scrape's.
            if report_refs.contains(&p.series.0) {
                assert_eq!(p.t, t);
                continue;
            }
            if p.is_stale() {
                assert_eq!(p.t, t);
                assert_eq!(live.insert(p.series.0, false), Some(true), "marker for a dead series");
            } else {
                assert!(out.result.is_ok(), "failed scrape stored a sample");
                live.insert(p.series.0, true);
            }
        }
        assert!(cache.len() <= 2 * 1000 + 2000, "cache {}", cache.len());
    }
});
