use super::*;
use crate::config::{Config, ParseOptions};
use crate::exposition::{BodyParser, Format};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn cfg(extra: &str) -> ScrapeConfig {
    let text = format!("scrape_configs:\n  - job_name: j\n{extra}");
    Config::parse(&text, &ParseOptions::for_path("t.yml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .scrape_configs
        .remove(0)
}

/// How a test scrape's body arrives.
struct Feed<'b> {
    format: Format,
    /// `None`: the connection failed before any body.
    body: Option<&'b str>,
    start_timestamps: bool,
    /// The connection breaks after the body (a transport error mid-body).
    broken: bool,
}

/// One scrape at `t` ms, as the scrape loop drives it.
fn scrape(
    cache: &mut SeriesCache,
    cfg: &ScrapeConfig,
    refs: &mut Refs,
    t: i64,
    f: Feed<'_>,
) -> RunResult {
    let job: Arc<str> = "j".into();
    let url: Arc<str> = "http://h:1/metrics".into();
    let target = Labels::from_pairs([("instance", "h:1"), ("job", "j")]);
    let ctx = ScrapeContext {
        job: &job,
        url: &url,
        loop_id: 1,
        cfg,
        target_labels: &target,
        append_time: t,
        max_time: t + 600_000,
        start_timestamps: f.start_timestamps,
    };
    let mut r = ScrapeRun::new(cache, t);
    let result = match f.body {
        None => Err("connection refused".to_owned()),
        Some(b) => {
            let mut p = BodyParser::new(f.format);
            let fed = {
                let mut sink = |e: Entry<'_>| r.entry(cache, &ctx, refs, e);
                let fed = p.feed(b.as_bytes(), &mut sink);
                if f.broken {
                    fed
                } else {
                    fed.and_then(|()| p.finish(&mut sink))
                }
            };
            r.body_bytes = b.len() as i64;
            match fed {
                // A body that does not parse is an append error, recorded in the run
                // (as the scrape loop's body feeder does).
                Err(e) => {
                    let m = format!("{e:?}");
                    r.fail(m.clone());
                    Err(m)
                }
                Ok(()) if f.broken => Err("read: connection reset by peer".to_owned()),
                Ok(()) => Ok(()),
            }
        }
    };
    r.finish(cache, &ctx, refs, std::time::Duration::ZERO, result)
}

/// One scrape of a text `body` (or a transport failure for `None`) at `t` ms.
fn run(
    cache: &mut SeriesCache,
    cfg: &ScrapeConfig,
    refs: &mut Refs,
    t: i64,
    body: Option<&str>,
) -> RunResult {
    let f = Feed {
        format: Format::PromText,
        body,
        start_timestamps: false,
        broken: false,
    };
    scrape(cache, cfg, refs, t, f)
}

#[derive(Clone, Debug)]
enum Scrape {
    /// Exposes these series (indices into a small universe), optionally with a bad
    /// line at the end.
    Body(BTreeSet<u8>, bool),
    Fail,
}

fn arb_scrape() -> impl Strategy<Value = Scrape> {
    prop_oneof![
        4 => (prop::collection::btree_set(0u8..6, 0..6), prop::bool::weighted(0.2))
            .prop_map(|(s, bad)| Scrape::Body(s, bad)),
        1 => Just(Scrape::Fail),
    ]
}

fn body(series: &BTreeSet<u8>, bad: bool, k: usize) -> String {
    let mut b: String = series
        .iter()
        .map(|i| {
            // Series 5 is spelled two ways, alternating between scrapes.
            if *i == 5 && k.is_multiple_of(2) {
                format!("m{{b=\"1\",a=\"1\"}} {k}\n")
            } else if *i == 5 {
                format!("m{{a=\"1\",b=\"1\"}} {k}\n")
            } else {
                format!("s{i} {k}\n")
            }
        })
        .collect();
    if bad {
        b.push_str("broken{ 1\n");
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Over any sequence of scrapes: every ref is stored once before it is used; each
    /// scrape's samples share its timestamp; a series gets a stale marker exactly when
    /// it was live (last sample not a marker) and the scrape did not refresh it, and
    /// never twice in a row; a failed scrape stores nothing but markers and report
    /// series; `up` matches the outcome.
    #[test]
    fn staleness_and_atomicity(scrapes in prop::collection::vec(arb_scrape(), 1..25), limit in prop::option::of(1u64..5)) {
        let extra = limit.map(|l| format!("    sample_limit: {l}\n")).unwrap_or_default();
        let cfg = cfg(&extra);
        let mut cache = SeriesCache::new();
        let mut refs = Refs::new();
        let mut known: BTreeMap<SeriesRef, String> = BTreeMap::new();
        let mut last: BTreeMap<SeriesRef, bool> = BTreeMap::new(); // ref -> last was stale
        for (k, sc) in scrapes.iter().enumerate() {
            let t = 1_000_000 + 10_000 * k as i64;
            let text = match sc {
                Scrape::Body(s, bad) => Some(body(s, *bad, k)),
                Scrape::Fail => None,
            };
            let out = run(&mut cache, &cfg, &mut refs, t, text.as_deref());
            for (r, l) in &out.batch.series {
                prop_assert!(known.insert(*r, l.to_string()).is_none(), "ref {:?} twice", r);
            }
            let mut up = None;
            let mut touched = BTreeSet::new();
            for p in &out.batch.samples {
                prop_assert_eq!(p.t, t);
                let Some(name) = known.get(&p.series) else {
                    return Err(TestCaseError::fail(format!("unknown ref {:?}", p.series)));
                };
                prop_assert!(touched.insert(p.series), "{} twice in one batch", name);
                if name.starts_with("{__name__=\"up\"") {
                    up = Some(p.value());
                }
                let is_report = name.starts_with("{__name__=\"scrape_") || name.starts_with("{__name__=\"up\"");
                if p.is_stale() {
                    prop_assert!(!is_report);
                    prop_assert_eq!(last.get(&p.series), Some(&false), "marker for {} which was not live", name);
                } else if out.result.is_err() {
                    prop_assert!(is_report, "failed scrape stored {}", name);
                }
                if !is_report {
                    last.insert(p.series, p.is_stale());
                }
            }
            prop_assert_eq!(up, Some(if out.result.is_ok() { 1.0 } else { 0.0 }));
            // A successful scrape leaves live exactly what it exposed.
            if let (Ok(()), Scrape::Body(s, false)) = (&out.result, sc) {
                let live: BTreeSet<String> = last
                    .iter()
                    .filter(|(_, stale)| !**stale)
                    .filter_map(|(r, _)| known.get(r).cloned())
                    .collect();
                let want: BTreeSet<String> = s
                    .iter()
                    .map(|i| if *i == 5 {
                        "{__name__=\"m\", a=\"1\", b=\"1\", instance=\"h:1\", job=\"j\"}".to_owned()
                    } else {
                        format!("{{__name__=\"s{i}\", instance=\"h:1\", job=\"j\"}}")
                    })
                    .collect();
                prop_assert_eq!(live, want);
            }
        }
    }
}

#[test]
fn cache_growth_during_failures_is_bounded() {
    // §9.6 #76: four failing scrapes, each with 500 new series and a bad last line.
    let cfg = cfg("");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    for k in 0..4 {
        let mut b: String = (0..500).map(|i| format!("s{k}_{i} 1\n")).collect();
        b.push_str("broken{ 1\n");
        let out = run(&mut cache, &cfg, &mut refs, 1000 * k, Some(&b));
        assert!(out.result.is_err());
        assert!(cache.len() <= 2000, "{}", cache.len());
    }
    // The series of failed scrapes stay cached (as in Prometheus) until the cache has
    // grown past twice its last good size plus 1000: then it is flushed.
    assert!(cache.stats.cache_flush_forced >= 1);
    assert!(cache.len() <= 1000, "{}", cache.len());
}

/// Report series values across scrapes (report refs are declared on the first).
#[derive(Default)]
struct Reports {
    names: BTreeMap<SeriesRef, String>,
}

impl Reports {
    fn get(&mut self, out: &RunResult, name: &str) -> f64 {
        for (r, l) in &out.batch.series {
            self.names
                .insert(*r, l.get("__name__").unwrap_or("").to_owned());
        }
        out.batch
            .samples
            .iter()
            .find(|p| self.names.get(&p.series).map(String::as_str) == Some(name))
            .map(|p| p.value())
            .unwrap_or_else(|| panic!("no {name} in the batch"))
    }
}

/// A scrape whose body broke off after `body` (the connection failed mid-body):
/// entries parsed, then a transport error.
fn run_broken(
    cache: &mut SeriesCache,
    cfg: &ScrapeConfig,
    refs: &mut Refs,
    t: i64,
    body: &str,
) -> RunResult {
    let f = Feed {
        format: Format::PromText,
        body: Some(body),
        start_timestamps: false,
        broken: true,
    };
    scrape(cache, cfg, refs, t, f)
}

#[test]
fn series_of_a_failed_append_count_as_added_once() {
    // 3.x `scrapeLoop.append`: a series appended before the body failed to parse stays
    // in the scrape cache, so the next scrape does not count it again; the head logs
    // its labels on rollback.
    let cfg = cfg("");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let mut rep = Reports::default();
    let bad = "a 1\nb 1\nbroken{ 1\n";
    let out = run(&mut cache, &cfg, &mut refs, 1_000, Some(bad));
    assert!(out.result.is_err());
    assert_eq!(rep.get(&out, "scrape_samples_scraped"), 2.0);
    assert_eq!(rep.get(&out, "scrape_samples_post_metric_relabeling"), 2.0);
    assert_eq!(rep.get(&out, "scrape_series_added"), 2.0);
    let declared: BTreeSet<String> = out
        .batch
        .series
        .iter()
        .map(|(_, l)| l.get("__name__").unwrap_or("").to_owned())
        .collect();
    assert!(
        declared.contains("a") && declared.contains("b"),
        "{declared:?}"
    );
    // No sample of a failed scrape is stored but the report's.
    assert!(out.batch.samples.iter().all(|p| {
        rep.names
            .get(&p.series)
            .is_some_and(|n| n == "up" || n.starts_with("scrape_"))
    }));
    let out = run(&mut cache, &cfg, &mut refs, 2_000, Some(bad));
    assert_eq!(rep.get(&out, "scrape_series_added"), 0.0);
    assert!(out.batch.series.is_empty(), "{:?}", out.batch.series);
    let out = run(&mut cache, &cfg, &mut refs, 3_000, Some("a 1\nb 1\nc 1\n"));
    assert_eq!(out.result, Ok(()));
    assert_eq!(rep.get(&out, "scrape_series_added"), 1.0);
    assert_eq!(out.batch.series.len(), 1, "only c is new");
}

#[test]
fn a_body_broken_off_reports_nothing_scraped() {
    // Prometheus reads the whole body before parsing: a transport failure means
    // nothing was parsed (0 scraped, 0 post-relabeling, 0 added), and no series stays.
    let cfg = cfg("");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let mut rep = Reports::default();
    let out = run_broken(&mut cache, &cfg, &mut refs, 1_000, "a 1\nb 1\n");
    assert!(out.result.is_err());
    for name in [
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        assert_eq!(rep.get(&out, name), 0.0, "{name}");
    }
    assert_eq!(rep.get(&out, "up"), 0.0);
    assert!(
        out.batch
            .series
            .iter()
            .all(|(_, l)| l.get("__name__") != Some("a")),
        "a series of a broken body is not stored"
    );
    let out = run(&mut cache, &cfg, &mut refs, 2_000, Some("a 1\nb 1\n"));
    assert_eq!(rep.get(&out, "scrape_series_added"), 2.0);
}

#[test]
fn series_merged_by_metric_relabeling_count_as_prometheus_counts_them() {
    // Two exposed series that `labeldrop` makes one: Prometheus counts each exposed
    // series (two scrape-cache entries) in post-relabeling and in series added; trawl
    // stores the first value only (the second is a duplicate for the same timestamp).
    let cfg = cfg("    metric_relabel_configs: [{regex: x, action: labeldrop}]\n");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let mut rep = Reports::default();
    let body = "a{x=\"1\"} 1\na{x=\"2\"} 2\n";
    let out = run(&mut cache, &cfg, &mut refs, 1_000, Some(body));
    assert_eq!(out.result, Ok(()));
    assert_eq!(rep.get(&out, "scrape_samples_scraped"), 2.0);
    assert_eq!(rep.get(&out, "scrape_samples_post_metric_relabeling"), 2.0);
    assert_eq!(rep.get(&out, "scrape_series_added"), 2.0);
    let a: Vec<f64> = out
        .batch
        .samples
        .iter()
        .filter(|p| rep.names.get(&p.series).is_some_and(|n| n == "a"))
        .map(|p| p.value())
        .collect();
    assert_eq!(a, vec![1.0]);
    assert_eq!(cache.stats.duplicate_timestamp, 1);
    let out = run(&mut cache, &cfg, &mut refs, 2_000, Some(body));
    assert_eq!(rep.get(&out, "scrape_samples_post_metric_relabeling"), 2.0);
    assert_eq!(rep.get(&out, "scrape_series_added"), 0.0);
}

#[test]
fn a_cache_hit_allocates_nothing_per_sample() {
    // The cache is keyed by the exposed text: a repeat scrape finds every series without
    // decoding labels; only the batch's vectors grow.
    let cfg = cfg("");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let b: String = (0..100).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    let first = run(&mut cache, &cfg, &mut refs, 1000, Some(&b));
    assert_eq!(first.batch.series.len(), 105);
    let second = run(&mut cache, &cfg, &mut refs, 2000, Some(&b));
    assert!(second.batch.series.is_empty());
    assert_eq!(second.batch.samples.len(), 105);
    assert_eq!(refs.next(), 106, "no ref assigned on a hit");
}

#[test]
fn metadata_is_kept_per_family() {
    // §9.6 #69, on an OpenMetrics body.
    let cfg = cfg("");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let job: Arc<str> = "j".into();
    let url: Arc<str> = "http://h:1/metrics".into();
    let target = Labels::from_pairs([("instance", "h:1")]);
    let ctx = ScrapeContext {
        job: &job,
        url: &url,
        loop_id: 1,
        cfg: &cfg,
        target_labels: &target,
        append_time: 1000,
        max_time: 1_000_000,
        start_timestamps: false,
    };
    let body = "# TYPE test_metric counter\n# HELP test_metric some help text\n# UNIT test_metric metric\ntest_metric_total 1\n# TYPE test_metric_no_help gauge\n# HELP test_metric_no_type other help text\n# EOF\n";
    let mut r = ScrapeRun::new(&mut cache, 1000);
    let mut p = BodyParser::new(Format::OpenMetrics);
    let mut sink = |e: Entry<'_>| r.entry(&mut cache, &ctx, &mut refs, e);
    p.feed(body.as_bytes(), &mut sink).unwrap();
    p.finish(&mut sink).unwrap();
    r.body_bytes = body.len() as i64;
    let out = r.finish(
        &mut cache,
        &ctx,
        &mut refs,
        std::time::Duration::ZERO,
        Ok(()),
    );
    assert!(out.result.is_ok());
    let m = cache.metadata();
    let get = |n: &str| m.get(n).map(|f| (f.kind, f.help.as_str(), f.unit.as_str()));
    assert_eq!(
        get("test_metric"),
        Some((MetricType::Counter, "some help text", "metric"))
    );
    assert_eq!(
        get("test_metric_no_help"),
        Some((MetricType::Gauge, "", ""))
    );
    assert_eq!(
        get("test_metric_no_type"),
        Some((MetricType::Unknown, "other help text", ""))
    );
}

#[test]
fn restored_series_keep_their_refs_and_last_times() {
    use crate::wal::replay::{Restored, RestoredSeries};
    let cfg = cfg("    honor_timestamps: true\n");
    let l = |n: &str| Labels::from_pairs([("__name__", n), ("instance", "h:1"), ("job", "j")]);
    let restored = Restored {
        next_ref: 500,
        series: vec![
            RestoredSeries {
                series: SeriesRef(40),
                labels: l("a"),
                last_t: 5_000,
            },
            RestoredSeries {
                series: SeriesRef(41),
                labels: l("up"),
                last_t: 5_000,
            },
            RestoredSeries {
                series: SeriesRef(42),
                labels: l("gone"),
                last_t: 5_000,
            },
        ],
    };
    let mut refs = Refs::new();
    assert!(refs.restore(restored.clone(), 6_000));
    let mut cache = SeriesCache::new();
    // `a` carries a timestamp at the restored last time: a duplicate, not stored again.
    let out = run(&mut cache, &cfg, &mut refs, 7_000, Some("a 1 5000\nb 2\n"));
    let declared: BTreeMap<&str, u64> = out
        .batch
        .series
        .iter()
        .map(|(r, l)| (l.get("__name__").unwrap_or(""), r.0))
        .collect();
    assert_eq!(declared["a"], 40);
    assert_eq!(declared["up"], 41);
    // A new series gets a ref past every restored one.
    assert_eq!(declared["b"], 500);
    assert!(out.batch.samples.iter().all(|p| p.series.0 != 40));
    // `gone` waits to be claimed, then is forgotten after the window.
    assert_eq!(refs.unclaimed(), 1);
    let _ = run(
        &mut cache,
        &cfg,
        &mut refs,
        6_000 + 3_600_001,
        Some("a 1\nb 2\n"),
    );
    assert_eq!(refs.unclaimed(), 0);
    // Too late: refs were handed out.
    assert!(!refs.restore(restored, 8_000));
}

#[test]
fn series_leaving_the_cache_are_retired_once() {
    let cfg = cfg("");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let first = run(&mut cache, &cfg, &mut refs, 1000, Some("a 1\nb 2\n"));
    let r = |b: &Batch, n: &str| {
        b.series
            .iter()
            .find(|(_, l)| l.get("__name__") == Some(n))
            .map(|(r, _)| *r)
    };
    let (a, b) = (r(&first.batch, "a").unwrap(), r(&first.batch, "b").unwrap());
    assert!(first.batch.retired.is_empty());
    // `b` vanishes: its marker and its retirement come in the same batch.
    let second = run(&mut cache, &cfg, &mut refs, 2000, Some("a 1\n"));
    assert!(
        second
            .batch
            .samples
            .iter()
            .any(|p| p.series == b && p.is_stale())
    );
    assert_eq!(&*second.batch.retired, &[b]);
    // A failed scrape retires nothing (and its new series were never stored).
    let third = run(&mut cache, &cfg, &mut refs, 3000, None);
    assert!(third.batch.retired.is_empty());
    // `b` comes back under a new ref; the end of the loop retires everything left.
    let fourth = run(&mut cache, &cfg, &mut refs, 4000, Some("a 1\nb 3\n"));
    let b2 = r(&fourth.batch, "b").unwrap();
    assert_ne!(b2, b);
    let end = end_of_run(&mut cache, &"j".into(), &"u".into(), 1, 5000);
    let mut retired = end.retired.to_vec();
    retired.sort();
    assert!(retired.contains(&a) && retired.contains(&b2));
    assert_eq!(
        retired.len(),
        2 + 5,
        "two series and the five report series"
    );
    assert!(cache.is_empty());
}

/// Issue 16: past `sample_limit`, new series are counted (the report says how many the
/// target exposed, as Prometheus's does) but never cached or given a ref: 100,000 new
/// series against a limit of 1,000 leave the cache at the limit's size, the scrape
/// fails, and a scrape within the limit afterwards works.
#[test]
fn past_the_sample_limit_nothing_is_cached() {
    let cfg = cfg(
        "    sample_limit: 1000\n    metric_relabel_configs: [{source_labels: [i], regex: '.*7', action: drop}]\n",
    );
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let mut body = String::new();
    for i in 0..100_000 {
        body.push_str(&format!("m{{i=\"{i}\"}} 1\n"));
    }
    let out = run(&mut cache, &cfg, &mut refs, 1_000, Some(&body));
    assert_eq!(out.result, Err("sample limit exceeded".to_owned()));
    assert!(cache.len() <= 1_200, "{} cache entries", cache.len());
    let report = |out: &RunResult, name: &str| {
        let r = out
            .batch
            .series
            .iter()
            .find(|(_, l)| l.get("__name__") == Some(name))
            .map(|(r, _)| *r)
            .unwrap_or_else(|| panic!("{name} declared"));
        out.batch
            .samples
            .iter()
            .find(|p| p.series == r)
            .map(|p| p.value())
            .unwrap_or_else(|| panic!("{name} sampled"))
    };
    assert_eq!(report(&out, "scrape_samples_scraped"), 100_000.0);
    // One in ten is dropped by relabeling (`i` ending in 7), counted or not cached.
    assert_eq!(
        report(&out, "scrape_samples_post_metric_relabeling"),
        90_000.0
    );
    assert_eq!(report(&out, "up"), 0.0);
    let small: String = (0..10).map(|i| format!("m{{i=\"{i}\"}} 2\n")).collect();
    let out = run(&mut cache, &cfg, &mut refs, 2_000, Some(&small));
    assert_eq!(out.result, Ok(()));
}

/// One scrape of an OpenMetrics body, with start timestamps on or off.
fn run_om(
    cache: &mut SeriesCache,
    cfg: &ScrapeConfig,
    refs: &mut Refs,
    t: i64,
    body: &str,
    start_timestamps: bool,
) -> RunResult {
    let f = Feed {
        format: Format::OpenMetrics,
        body: Some(body),
        start_timestamps,
        broken: false,
    };
    scrape(cache, cfg, refs, t, f)
}

#[test]
fn created_lines_become_start_samples_with_the_feature() {
    // 3.x with `created-timestamp-zero-ingestion`: `_created` lines of a counter and a
    // histogram are not samples; each series they start gets a 0 sample at the start
    // time, before its sample, once (a later scrape finds it stored).
    let cfg = cfg("");
    let body = concat!(
        "# TYPE c counter\n",
        "c_total 5\n",
        "c_created 100.5\n",
        "# TYPE h histogram\n",
        "h_bucket{le=\"1\"} 1\n",
        "h_bucket{le=\"+Inf\"} 2\n",
        "h_count 2\n",
        "h_sum 3\n",
        "h_created 200\n",
        "# TYPE g gauge\n",
        "g_created 7\n",
        "# EOF\n",
    );
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let mut rep = Reports::default();
    let out = run_om(&mut cache, &cfg, &mut refs, 1_000_000, body, true);
    assert_eq!(out.result, Ok(()));
    let names: BTreeMap<SeriesRef, String> = out
        .batch
        .series
        .iter()
        .map(|(r, l)| (*r, l.to_string()))
        .collect();
    let points: Vec<(String, i64, f64)> = out
        .batch
        .samples
        .iter()
        .filter_map(|p| {
            let n = &names[&p.series];
            (!n.contains("\"up\"") && !n.contains("scrape_")).then(|| (n.clone(), p.t, p.value()))
        })
        .collect();
    let name = |n: &str| format!("{{__name__=\"{n}\", instance=\"h:1\", job=\"j\"}}");
    let bucket =
        |le: &str| format!("{{__name__=\"h_bucket\", instance=\"h:1\", job=\"j\", le=\"{le}\"}}");
    let want = vec![
        (name("c_total"), 100_500, 0.0),
        (bucket("1.0"), 200_000, 0.0),
        (bucket("+Inf"), 200_000, 0.0),
        (name("h_count"), 200_000, 0.0),
        (name("h_sum"), 200_000, 0.0),
        (name("c_total"), 1_000_000, 5.0),
        (bucket("1.0"), 1_000_000, 1.0),
        (bucket("+Inf"), 1_000_000, 2.0),
        (name("h_count"), 1_000_000, 2.0),
        (name("h_sum"), 1_000_000, 3.0),
        (name("g_created"), 1_000_000, 7.0),
    ];
    assert_eq!(points, want);
    // The `_created` lines are not counted as scraped.
    assert_eq!(rep.get(&out, "scrape_samples_scraped"), 6.0);
    let out = run_om(&mut cache, &cfg, &mut refs, 1_015_000, body, true);
    let zeros = out.batch.samples.iter().filter(|p| p.t < 1_015_000).count();
    assert_eq!(zeros, 0, "the start is stored once");
    // Without the feature `_created` lines are ordinary samples.
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let mut rep = Reports::default();
    let out = run_om(&mut cache, &cfg, &mut refs, 1_000_000, body, false);
    assert_eq!(rep.get(&out, "scrape_samples_scraped"), 8.0);
    assert!(out.batch.samples.iter().all(|p| p.t == 1_000_000));
}

#[test]
fn exemplars_are_stored_with_their_samples_once() {
    // Agent mode (`appender.AppendExemplar`): any series may carry one; empty labels
    // are left out; without a timestamp it takes the sample's; a repeat of the series'
    // last exemplar is dropped; too long or repeated label names are refused; a failed
    // scrape stores none.
    let cfg = cfg("");
    let body = concat!(
        "# TYPE c counter\n",
        "c_total 1 # {trace_id=\"a\",span=\"\"} 0.5 1.5\n",
        "# TYPE g gauge\n",
        "g 2 # {trace_id=\"b\"} 2\n",
        "h 3 # {a=\"1\",a=\"2\"} 1\n",
        "# EOF\n",
    );
    let long = format!("l 1 # {{trace_id=\"{}\"}} 1\n# EOF\n", "x".repeat(121));
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let out = run_om(&mut cache, &cfg, &mut refs, 10_000, body, false);
    assert_eq!(out.result, Ok(()));
    let got: Vec<(i64, f64, String)> = out
        .batch
        .exemplars
        .iter()
        .map(|e| (e.t, f64::from_bits(e.v), e.labels.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1_500, 0.5, "{trace_id=\"a\"}".to_owned()),
            (10_000, 2.0, "{trace_id=\"b\"}".to_owned()),
        ]
    );
    assert_eq!(cache.stats.exemplars_invalid, 1);
    // The exemplar refers to its sample's series.
    let c = out
        .batch
        .series
        .iter()
        .find(|(_, l)| l.get("__name__") == Some("c_total"))
        .map(|(r, _)| *r);
    assert_eq!(Some(out.batch.exemplars[0].series), c);
    // Next scrape: the timestamped one repeats (dropped), the other takes the new time.
    let out = run_om(&mut cache, &cfg, &mut refs, 20_000, body, false);
    let times: Vec<i64> = out.batch.exemplars.iter().map(|e| e.t).collect();
    assert_eq!(times, vec![20_000]);
    let out = run_om(&mut cache, &cfg, &mut refs, 30_000, &long, false);
    assert!(out.batch.exemplars.is_empty());
    // The repeated name of the second scrape, then the long one.
    assert_eq!(cache.stats.exemplars_invalid, 3);
    // A failing body stores none.
    let bad = "# TYPE g gauge\ng 2 # {trace_id=\"z\"} 2\nbroken{\n";
    let out = run_om(&mut cache, &cfg, &mut refs, 40_000, bad, false);
    assert!(out.result.is_err());
    assert!(out.batch.exemplars.is_empty());
}

#[test]
fn utf8_names_follow_the_jobs_validation_scheme() {
    // 3.x `scrapeLoop.append`: `lset.IsValid(validationScheme)`. With `legacy` a target
    // that sends a UTF-8 name anyway fails the scrape; with `utf8` (the default) it is
    // stored.
    let body = "{\"my.metric\",\"label.name\"=\"v\"} 1\nok 2\n";
    let utf8 = cfg("");
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let out = run(&mut cache, &utf8, &mut refs, 1_000, Some(body));
    assert_eq!(out.result, Ok(()));
    assert!(
        out.batch.series.iter().any(
            |(_, l)| l.get("__name__") == Some("my.metric") && l.get("label.name") == Some("v")
        )
    );
    let legacy = cfg(
        "    metric_name_validation_scheme: legacy\n    metric_name_escaping_scheme: underscores\n",
    );
    let mut cache = SeriesCache::new();
    let mut refs = Refs::new();
    let out = run(&mut cache, &legacy, &mut refs, 1_000, Some(body));
    let err = out.result.expect_err("a legacy job refuses UTF-8 names");
    assert!(
        err.starts_with("invalid metric name or label names"),
        "{err}"
    );
    // And the request asks the target to escape them.
    let accept = crate::scrape::request::accept_header(
        &legacy.scrape_protocols,
        &legacy.metric_name_escaping_scheme,
    );
    assert!(accept.contains("escaping=underscores"), "{accept}");
}
