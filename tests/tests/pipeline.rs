//! The per-scrape pipeline through the Agent's public contract: each scrape ends in one
//! `Output::Append` batch (`prometheus-semantics.md` §4.4–§4.8 and the scrape-loop
//! scenarios of §9.6, Prometheus 3.x).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use trawl_core::agent::{AgentOptions, Input, Output};
use trawl_core::io::IoEvent;
use trawl_core::scrape::pipeline::{Batch, REPORT_SERIES, SeriesRef};
use trawl_core::target::Health;
use trawl_tests::{Harness, T0_WALL};

const TEXT: &str = "text/plain; version=0.0.4";
const OM: &str = "application/openmetrics-text; version=1.0.0";

/// One target `h:1` of job `j`, scraped every 10 s, with `extra` lines in the job and
/// `labels` on the target.
fn harness(extra: &str, labels: &str) -> Harness {
    let yaml = format!(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 10s\n    scrape_timeout: 5s\n{extra}    static_configs:\n      - targets: [\"h:1\"]\n        labels: {{{labels}}}\n"
    );
    Harness::new(&yaml, AgentOptions::default())
}

/// What storage would hold: series by ref, and every sample as text.
#[derive(Default)]
struct Store {
    series: BTreeMap<SeriesRef, String>,
    batches: usize,
}

impl Store {
    /// Applies a batch; returns its samples as `labels t value` lines (`stale` for a
    /// marker, report series included).
    fn apply(&mut self, b: &Batch) -> Vec<String> {
        self.batches += 1;
        for (r, l) in &b.series {
            assert!(
                self.series.insert(*r, l.to_string()).is_none(),
                "series ref {r:?} stored twice"
            );
        }
        b.samples
            .iter()
            .map(|p| {
                let l = self
                    .series
                    .get(&p.series)
                    .unwrap_or_else(|| panic!("sample for unknown series {:?}", p.series));
                let v = if p.is_stale() {
                    "stale".to_owned()
                } else {
                    format!("{}", p.value())
                };
                format!("{l} {} {v}", p.t)
            })
            .collect()
    }

    /// The scraped samples only (report series left out).
    fn scraped(&mut self, b: &Batch) -> Vec<String> {
        self.apply(b)
            .into_iter()
            .filter(|s| {
                !REPORT_SERIES
                    .iter()
                    .any(|r| s.contains(&format!("__name__=\"{r}\"")))
            })
            .collect()
    }
}

/// The value of report series `name` in a batch.
fn report(store: &Store, b: &Batch, name: &str) -> Option<f64> {
    b.samples.iter().find_map(|p| {
        let l = store.series.get(&p.series)?;
        l.starts_with(&format!("{{__name__=\"{name}\""))
            .then(|| p.value())
    })
}

/// The Append batches among `outs`.
fn batches(outs: &[Output]) -> Vec<Batch> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Append(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// Waits for the next scrape and answers it; returns the batch it produced.
fn scrape(h: &mut Harness, status: u16, ct: &str, body: &[u8]) -> Batch {
    let (id, _) = h.advance_until_scrape(Duration::from_secs(60))[0].clone();
    let before = h.log.len();
    h.respond(id, status, ct, body);
    let outs: Vec<Output> = h.log[before..].iter().map(|(_, o)| o.clone()).collect();
    let b = batches(&outs);
    assert_eq!(b.len(), 1, "one batch per scrape");
    b[0].clone()
}

/// Waits for the next scrape and fails it at the transport.
fn scrape_fails(h: &mut Harness) -> Batch {
    let (id, _) = h.advance_until_scrape(Duration::from_secs(60))[0].clone();
    let outs = h.reply(id, IoEvent::Failed("connection refused"));
    let b = batches(&outs);
    assert_eq!(b.len(), 1);
    b[0].clone()
}

fn ms(b: &Batch) -> i64 {
    b.samples[0].t
}

#[test]
fn a_scrape_stores_its_samples_and_five_report_series_at_one_timestamp() {
    let mut h = harness("", "");
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"# TYPE a gauge\na 1\nb{x=\"y\"} 2.5\n");
    let lines = st.apply(&b);
    assert_eq!(lines.len(), 7, "{lines:#?}");
    let t = ms(&b);
    assert!(
        b.samples.iter().all(|p| p.t == t),
        "one timestamp per scrape"
    );
    assert!(t >= T0_WALL / 1_000_000);
    assert_eq!(
        lines[0],
        format!("{{__name__=\"a\", instance=\"h:1\", job=\"j\"}} {t} 1")
    );
    assert_eq!(
        lines[1],
        format!("{{__name__=\"b\", instance=\"h:1\", job=\"j\", x=\"y\"}} {t} 2.5")
    );
    assert_eq!(report(&st, &b, "up"), Some(1.0));
    assert_eq!(report(&st, &b, "scrape_samples_scraped"), Some(2.0));
    assert_eq!(
        report(&st, &b, "scrape_samples_post_metric_relabeling"),
        Some(2.0)
    );
    assert_eq!(report(&st, &b, "scrape_series_added"), Some(2.0));
    // Series first, each once; the second scrape adds none (§9.6 #70).
    assert_eq!(b.series.len(), 7);
    let b2 = scrape(&mut h, 200, TEXT, b"# TYPE a gauge\na 1\nb{x=\"y\"} 2.5\n");
    assert!(b2.series.is_empty());
    st.apply(&b2);
    assert_eq!(report(&st, &b2, "scrape_series_added"), Some(0.0));
    assert_eq!(ms(&b2) - t, 10_000, "exactly one interval later");
    assert_eq!(h.agent.targets()[0].health, Health::Up);
}

#[test]
fn a_failed_scrape_marks_the_last_scrape_stale_once_and_reports_up_0() {
    // §9.6 #72: one value, one stale marker at the first failure, report series each time.
    let mut h = harness("", "");
    let mut st = Store::default();
    let b1 = scrape(&mut h, 200, TEXT, b"metric_a 42\n");
    assert_eq!(st.scraped(&b1).len(), 1);
    let b2 = scrape_fails(&mut h);
    let s2 = st.scraped(&b2);
    assert_eq!(s2.len(), 1);
    assert!(s2[0].ends_with(" stale"), "{s2:?}");
    assert_eq!(report(&st, &b2, "up"), Some(0.0));
    assert_eq!(b2.samples.len(), 6);
    for _ in 0..3 {
        let b = scrape_fails(&mut h);
        assert_eq!(b.samples.len(), 5, "report series only");
        st.apply(&b);
    }
    let t = &h.agent.targets()[0];
    assert_eq!(t.health, Health::Down);
    assert!(
        t.last_error.contains("connection refused"),
        "{}",
        t.last_error
    );
}

#[test]
fn a_parse_error_rolls_back_the_whole_scrape_and_names_its_place() {
    // §9.6 #73, #91: nothing of a failed body is stored, not even the lines before the
    // error; a later valid body is stored normally.
    let mut h = harness("", "");
    let mut st = Store::default();
    st.apply(&scrape(&mut h, 200, TEXT, b"metric_a 1\n"));
    let b = scrape(
        &mut h,
        200,
        TEXT,
        b"metric_a 2\ntest_metric{le=\"500\"} 1\nbad{x=\"1\",,} 3\n",
    );
    // Nothing stored, and (as in Prometheus 3.x) no stale marker for `metric_a`: it was
    // appended before the error, so it counts as seen.
    assert!(st.scraped(&b).is_empty());
    assert_eq!(report(&st, &b, "up"), Some(0.0));
    let err = h.agent.targets()[0].last_error.clone();
    assert_eq!(err, "expected label name, got \",\" (line 3, column 11)");
    // The duplicate label name is caught where storage would catch it.
    let b = scrape(
        &mut h,
        200,
        TEXT,
        b"test_metric{le=\"500\"} 1\ntest_metric{le=\"600\",le=\"700\"} 1\n",
    );
    // Not even `le="500"` is stored; `metric_a`, not exposed, goes stale.
    let s = st.scraped(&b);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].contains("metric_a") && s[0].ends_with("stale"));
    assert_eq!(
        h.agent.targets()[0].last_error,
        "label name \"le\" is not unique: invalid sample"
    );
    let b = scrape(&mut h, 200, TEXT, b"test_metric{le=\"500\"} 1\n");
    let s = st.scraped(&b);
    assert_eq!(s.len(), 1);
    assert!(s[0].contains("le=\"500\""));
}

#[test]
fn sample_limit_fails_the_scrape_but_keeps_counting() {
    // §9.6 #74, #79.
    let mut h = harness("    sample_limit: 4\n", "");
    let mut st = Store::default();
    let four = b"a 1\nb 1\nc 1\nd 1\n";
    let five = b"a 2\nb 2\nc 2\nd 2\ne 2\n";
    assert_eq!(st.scraped(&scrape(&mut h, 200, TEXT, four)).len(), 4);
    let b = scrape(&mut h, 200, TEXT, five);
    // No stale markers: the series appended before the limit count as seen.
    assert!(st.scraped(&b).is_empty());
    assert_eq!(report(&st, &b, "up"), Some(0.0));
    assert_eq!(report(&st, &b, "scrape_samples_scraped"), Some(5.0));
    assert_eq!(
        report(&st, &b, "scrape_samples_post_metric_relabeling"),
        Some(5.0)
    );
    assert_eq!(h.agent.targets()[0].last_error, "sample limit exceeded");
    let s = st.scraped(&scrape(&mut h, 200, TEXT, b"a 30\nb 30\nc 30\nd 30\n"));
    assert_eq!(s.len(), 4);
    assert!(s.iter().all(|l| l.ends_with(" 30")));
    let b = scrape_fails(&mut h);
    assert_eq!(st.scraped(&b).len(), 4, "four stale markers");
}

#[test]
fn vanished_series_get_exactly_one_stale_marker() {
    // §9.6 #82 and #75.
    let mut h = harness("", "");
    let mut st = Store::default();
    st.apply(&scrape(&mut h, 200, TEXT, b"metric_a 1\nmetric_b 1\n"));
    let b = scrape(&mut h, 200, TEXT, b"metric_a 2\n");
    let s = st.scraped(&b);
    assert_eq!(s.len(), 2);
    assert!(
        s.iter()
            .any(|l| l.contains("metric_b") && l.ends_with("stale"))
    );
    let b = scrape(&mut h, 200, TEXT, b"metric_a 3\n");
    assert_eq!(st.scraped(&b).len(), 1, "no second marker for metric_b");
    // An empty body is a successful scrape with nothing in it: everything goes stale.
    let b = scrape(&mut h, 200, TEXT, b"");
    let s = st.scraped(&b);
    assert_eq!(s.len(), 1);
    assert!(s[0].ends_with("stale"));
    assert_eq!(report(&st, &b, "up"), Some(1.0));
}

#[test]
fn explicit_timestamps_and_staleness() {
    // §9.6 #82, #90.
    let mut h = harness("", "");
    let mut st = Store::default();
    let s = st.scraped(&scrape(&mut h, 200, TEXT, b"metric_a 1 1000\n"));
    assert_eq!(
        s,
        ["{__name__=\"metric_a\", instance=\"h:1\", job=\"j\"} 1000 1"]
    );
    let b = scrape(&mut h, 200, TEXT, b"");
    assert!(
        st.scraped(&b).is_empty(),
        "explicit timestamps are never marked stale"
    );

    let mut h = harness("    track_timestamps_staleness: true\n", "");
    let mut st = Store::default();
    st.apply(&scrape(&mut h, 200, TEXT, b"metric_a 1 1000\n"));
    let s = st.scraped(&scrape(&mut h, 200, TEXT, b""));
    assert_eq!(s.len(), 1);
    assert!(s[0].ends_with("stale"));

    let mut h = harness("    honor_timestamps: false\n", "");
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"metric_a 1 0\n");
    let t = ms(&b);
    let s = st.scraped(&b);
    assert_eq!(
        s,
        [format!(
            "{{__name__=\"metric_a\", instance=\"h:1\", job=\"j\"}} {t} 1"
        )]
    );
}

#[test]
fn honor_labels_and_exported_chains() {
    // §9.6 #77, #78.
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "",
            "n: \"2\"",
            "metric{n=\"1\"} 1\n",
            "{__name__=\"metric\", exported_n=\"1\", instance=\"h:1\", job=\"j\", n=\"2\"}",
        ),
        (
            "",
            "n: \"2\", exported_n: \"2\"",
            "metric{n=\"1\"} 1\n",
            "{__name__=\"metric\", exported_exported_n=\"1\", exported_n=\"2\", instance=\"h:1\", job=\"j\", n=\"2\"}",
        ),
        (
            "",
            "",
            "metric{n=\"\"} 1\n",
            "{__name__=\"metric\", instance=\"h:1\", job=\"j\"}",
        ),
        (
            "    honor_labels: true\n",
            "n: \"2\"",
            "metric{n=\"1\"} 1\n",
            "{__name__=\"metric\", instance=\"h:1\", job=\"j\", n=\"1\"}",
        ),
        (
            "",
            "foo: \"3\", exported_foo: \"4\"",
            "metric{foo=\"1\",exported_foo=\"2\"} 1\n",
            "{__name__=\"metric\", exported_exported_exported_foo=\"2\", exported_exported_foo=\"1\", exported_foo=\"4\", foo=\"3\", instance=\"h:1\", job=\"j\"}",
        ),
    ];
    for (extra, labels, body, want) in cases {
        let mut h = harness(extra, labels);
        let mut st = Store::default();
        let s = st.scraped(&scrape(&mut h, 200, TEXT, body.as_bytes()));
        assert_eq!(s.len(), 1);
        let got = s[0].rsplitn(3, ' ').nth(2).unwrap_or("");
        assert_eq!(got, want, "labels {labels:?}, body {body:?}");
    }
    // honor_labels with an empty scraped value: neither label survives.
    let mut h = harness("    honor_labels: true\n", "n: \"2\"");
    let mut st = Store::default();
    let s = st.scraped(&scrape(&mut h, 200, TEXT, b"metric{n=\"\"} 1\n"));
    assert!(
        s[0].starts_with("{__name__=\"metric\", instance=\"h:1\", job=\"j\"}"),
        "{s:?}"
    );
}

#[test]
fn one_series_spelled_two_ways_is_one_series() {
    // §9.6 #80.
    let mut h = harness("", "");
    let mut st = Store::default();
    let b = scrape(
        &mut h,
        200,
        TEXT,
        b"metric_a{a=\"1\",b=\"1\"} 1 1000\nmetric_a{b=\"1\",a=\"1\"} 2 2000\n",
    );
    let s = st.scraped(&b);
    assert_eq!(b.series.len(), 1 + 5);
    assert_eq!(s.len(), 2);
    assert_eq!(b.samples[0].series, b.samples[1].series);
}

#[test]
fn metric_relabeling_and_its_failures() {
    // §9.6 #71, #79, #92.
    let mut h = harness(
        "    metric_relabel_configs:\n      - {source_labels: [__name__], regex: drop_.*, action: drop}\n",
        "",
    );
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"keep 1\ndrop_a 1\ndrop_b 1\n");
    assert_eq!(st.scraped(&b).len(), 1);
    assert_eq!(report(&st, &b, "scrape_samples_scraped"), Some(3.0));
    assert_eq!(
        report(&st, &b, "scrape_samples_post_metric_relabeling"),
        Some(1.0)
    );

    let mut h = harness(
        "    metric_relabel_configs:\n      - {action: labeldrop, regex: __name__}\n",
        "",
    );
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"a 1\n");
    assert!(st.scraped(&b).is_empty());
    assert_eq!(
        h.agent.targets()[0].last_error,
        "missing metric name (__name__ label)"
    );
}

#[test]
fn label_limits_fail_the_scrape_with_prometheus_messages() {
    // §9.6 #93.
    let extra =
        "    label_limit: 5\n    label_name_length_limit: 10\n    label_value_length_limit: 10\n";
    let run = |labels: &str, body: &str| {
        let mut h = harness(extra, labels);
        let mut st = Store::default();
        let b = scrape(&mut h, 200, TEXT, body.as_bytes());
        (
            st.scraped(&b).len(),
            h.agent.targets()[0].last_error.clone(),
        )
    };
    assert_eq!(run("", "metric{l1=\"1\",l2=\"2\"} 1\n"), (1, String::new()));
    let (n, e) = run("", "metric{l1=\"1\",l2=\"2\",l3=\"3\"} 1\n");
    assert_eq!(n, 0);
    assert_eq!(
        e,
        "label_limit exceeded (metric: metric, number of labels: 6, limit: 5)"
    );
    let (_, e) = run("", "metric{very_long_name=\"1\"} 1\n");
    assert_eq!(
        e,
        "label_name_length_limit exceeded (metric: metric, label name: very_long_name, length: 14, limit: 10)"
    );
    let (_, e) = run("t: \"a_very_long_value\"", "metric 1\n");
    assert_eq!(
        e,
        "label_value_length_limit exceeded (metric: metric, label name: t, value: \"a_very_long_value\", length: 17, limit: 10)"
    );
}

#[test]
fn duplicates_within_one_scrape() {
    // §9.6 #94: the first value stands.
    let mut h = harness("", "");
    let mut st = Store::default();
    let b = scrape(
        &mut h,
        200,
        TEXT,
        b"test_metric 1\ntest_metric 2\ntest_metric 3\n",
    );
    let s = st.scraped(&b);
    assert_eq!(s.len(), 1);
    assert!(s[0].ends_with(" 1"));
    assert_eq!(
        report(&st, &b, "scrape_samples_post_metric_relabeling"),
        Some(3.0)
    );
    assert_eq!(report(&st, &b, "scrape_series_added"), Some(1.0));
    let b = scrape(
        &mut h,
        200,
        TEXT,
        b"other 1 1001\nother 2 1002\nother 3 1003\nother 4 1003\ntest_metric 9 1000\n",
    );
    let s = st.scraped(&b);
    // Distinct explicit timestamps are all kept; a repeated one is a duplicate; a
    // timestamp before the series' last sample is out of order. `test_metric`'s sample
    // is refused, so it is not seen: it goes stale.
    assert_eq!(s.len(), 4, "{s:#?}");
    assert!(s[3].contains("test_metric") && s[3].ends_with("stale"));
}

#[test]
fn content_type_rules_and_openmetrics() {
    // §9.6 #81, #95.
    let mut h = harness("", "");
    let mut st = Store::default();
    let b = scrape(&mut h, 200, "", b"a 1\n");
    assert!(st.scraped(&b).is_empty());
    assert_eq!(
        h.agent.targets()[0].last_error,
        "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target"
    );
    let b = scrape(&mut h, 200, "", b"");
    assert_eq!(
        report(&st, &b, "up"),
        Some(1.0),
        "an empty body is not parsed"
    );

    let mut h = harness("    fallback_scrape_protocol: PrometheusText0.0.4\n", "");
    let mut st = Store::default();
    assert_eq!(st.scraped(&scrape(&mut h, 200, "", b"a 1\n")).len(), 1);

    let mut h = harness("", "");
    let mut st = Store::default();
    let b = scrape(&mut h, 200, OM, b"metric_a 10\n");
    assert!(st.scraped(&b).is_empty());
    assert_eq!(
        h.agent.targets()[0].last_error,
        "data does not end with # EOF (line 2, column 1)"
    );
    let b = scrape(
        &mut h,
        200,
        OM,
        b"# TYPE metric_a gauge\nmetric_a 11 1.5\n# EOF\n",
    );
    assert_eq!(
        st.scraped(&b),
        ["{__name__=\"metric_a\", instance=\"h:1\", job=\"j\"} 1500 11"]
    );
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

/// Answers a scrape with explicit headers and the body in chunks.
fn respond_with(h: &mut Harness, headers: &[(&str, &str)], body: &[u8], chunk: usize) -> Batch {
    let (id, _) = h.advance_until_scrape(Duration::from_secs(60))[0].clone();
    let before = h.log.len();
    h.input(Input::Io {
        id,
        event: IoEvent::HttpHead {
            status: 200,
            reason: "OK",
            headers,
        },
    });
    for c in body.chunks(chunk.max(1)) {
        h.input(Input::Io {
            id,
            event: IoEvent::HttpBody(c),
        });
    }
    h.reply(id, IoEvent::HttpEnd);
    let outs: Vec<Output> = h.log[before..].iter().map(|(_, o)| o.clone()).collect();
    let b = batches(&outs);
    assert_eq!(b.len(), 1);
    b[0].clone()
}

#[test]
fn gzip_bodies_in_any_chunking_and_the_body_size_limit() {
    // §9.6 #89: the limit applies to the decompressed size.
    let body: Vec<u8> = (0..200)
        .flat_map(|i| format!("m{{i=\"{i}\"}} {i}\n").into_bytes())
        .collect();
    let z = gzip(&body);
    for chunk in [1, 13, 4096] {
        let mut h = harness("", "");
        let mut st = Store::default();
        let b = respond_with(
            &mut h,
            &[("Content-Type", TEXT), ("Content-Encoding", "gzip")],
            &z,
            chunk,
        );
        assert_eq!(st.scraped(&b).len(), 200, "chunk {chunk}");
    }
    let mut h = harness("    body_size_limit: 15B\n", "");
    let mut st = Store::default();
    let b = respond_with(
        &mut h,
        &[("Content-Type", TEXT), ("Content-Encoding", "gzip")],
        &gzip(b"metric_a 1\nmetric_b 2\n"),
        4096,
    );
    assert!(st.scraped(&b).is_empty());
    assert_eq!(h.agent.targets()[0].last_error, "body size limit exceeded");
    let mut h = harness("    body_size_limit: 15B\n", "");
    let _ = respond_with(
        &mut h,
        &[("Content-Type", TEXT)],
        b"metric_a 1\nmetric_b 2\n",
        4,
    );
    assert_eq!(h.agent.targets()[0].last_error, "body size limit exceeded");
    // Exactly the limit also fails; one byte less passes.
    let mut h = harness("    body_size_limit: 11B\n", "");
    let _ = respond_with(&mut h, &[("Content-Type", TEXT)], b"metric_a 1\n", 4);
    assert_eq!(h.agent.targets()[0].last_error, "body size limit exceeded");
    let mut h = harness("    body_size_limit: 12B\n", "");
    let _ = respond_with(&mut h, &[("Content-Type", TEXT)], b"metric_a 1\n", 4);
    assert_eq!(h.agent.targets()[0].last_error, "");
}

#[test]
fn extra_scrape_metrics() {
    let mut h = harness("    extra_scrape_metrics: true\n    sample_limit: 7\n", "");
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"a 1\n");
    st.apply(&b);
    assert_eq!(report(&st, &b, "scrape_timeout_seconds"), Some(5.0));
    assert_eq!(report(&st, &b, "scrape_sample_limit"), Some(7.0));
    assert_eq!(report(&st, &b, "scrape_body_size_bytes"), Some(4.0));
}

#[test]
fn a_removed_target_writes_end_of_run_markers_unless_it_comes_back() {
    // §4.7: markers at the next tick's time, written an interval and a tenth later.
    let yaml = |targets: &str| {
        format!(
            "scrape_configs:\n  - job_name: j\n    scrape_interval: 10s\n    static_configs:\n      - targets: [{targets}]\n"
        )
    };
    let mut h = Harness::new(&yaml("\"h:1\""), AgentOptions::default());
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"a 1\n");
    st.apply(&b);
    let t0 = ms(&b);
    h.input(Input::Config(Box::new(trawl_tests::config(&yaml("")))));
    let outs = h.advance(Duration::from_secs(30));
    let b = batches(&outs);
    assert_eq!(b.len(), 1);
    let s = st.apply(&b[0]);
    assert_eq!(s.len(), 6);
    assert!(
        s.iter()
            .all(|l| l.ends_with(&format!("{} stale", t0 + 10_000))),
        "{s:#?}"
    );
    // Removed and back before the markers are due: no markers.
    let mut h = Harness::new(&yaml("\"h:1\""), AgentOptions::default());
    scrape(&mut h, 200, TEXT, b"a 1\n");
    h.input(Input::Config(Box::new(trawl_tests::config(&yaml("")))));
    h.input(Input::Config(Box::new(trawl_tests::config(&yaml(
        "\"h:1\"",
    )))));
    let outs = h.advance(Duration::from_secs(30));
    assert!(
        batches(&outs)
            .iter()
            .all(|b| b.samples.iter().all(|p| !p.is_stale()))
    );
}

#[test]
fn an_invalid_name_after_metric_relabeling_fails_the_scrape() {
    // §9.6 #71: under the legacy name scheme a relabeled metric name must be legacy.
    let mut h = harness(
        "    metric_name_validation_scheme: legacy\n    metric_relabel_configs:\n      - {source_labels: [x], target_label: __name__}\n",
        "",
    );
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"a{x=\"bad-name\"} 1\n");
    assert!(st.scraped(&b).is_empty());
    assert_eq!(report(&st, &b, "up"), Some(0.0));
    assert_eq!(report(&st, &b, "scrape_samples_scraped"), Some(1.0));
    assert_eq!(report(&st, &b, "scrape_series_added"), Some(0.0));
    assert!(
        h.agent.targets()[0]
            .last_error
            .starts_with("invalid metric name or label names: {"),
        "{}",
        h.agent.targets()[0].last_error
    );
}

#[test]
fn a_scraped_series_identical_to_a_report_series_is_a_duplicate() {
    let mut h = harness("", "");
    let mut st = Store::default();
    let b = scrape(&mut h, 200, TEXT, b"up 0\nup{x=\"1\"} 7\n");
    let s = st.apply(&b);
    // `up` with just the target's labels is the report series (value 1), once.
    let ups: Vec<&String> = s
        .iter()
        .filter(|l| l.starts_with("{__name__=\"up\", instance=\"h:1\", job=\"j\"} "))
        .collect();
    assert_eq!(ups.len(), 1, "{s:#?}");
    assert!(ups[0].ends_with(" 1"));
    assert!(
        s.iter()
            .any(|l| l.starts_with("{__name__=\"up\", instance=\"h:1\", job=\"j\", x=\"1\"}"))
    );
    let refs: std::collections::BTreeSet<_> = b.series.iter().map(|(_, l)| l.to_string()).collect();
    assert_eq!(refs.len(), b.series.len(), "no two refs for one label set");
}
