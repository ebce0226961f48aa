//! Native histograms through the Agent's scrape pipeline, as 3.x's `scrapeLoop.append`
//! and the agent's appender take them: resolution reduced for
//! `native_histogram_min_bucket_factor` and `native_histogram_bucket_limit`
//! (`maxSchemaAppender`, `bucketLimitAppender`), invalid histograms failing the scrape
//! with `Validate`'s words, histogram stale markers of the series' kind, and the batch
//! carrying them. Bodies are protobuf, built with prost from `metrics.proto`.

#[path = "support/metrics_proto.rs"]
mod metrics_proto;

use std::time::Duration;

use metrics_proto::*;
use trawl_core::agent::{AgentOptions, Output};
use trawl_core::histogram::{Counts, Span};
use trawl_core::scrape::pipeline::Batch;
use trawl_tests::Harness;

fn harness(extra: &str) -> Harness {
    let yaml = format!(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 10s\n    scrape_timeout: 5s\n    scrape_native_histograms: true\n{extra}    static_configs:\n      - targets: [\"h:1\"]\n"
    );
    Harness::new(&yaml, AgentOptions::default())
}

fn scrape(h: &mut Harness, body: &[u8]) -> Batch {
    scrape_as(h, CT, body)
}

/// Waits for the next scrape and answers it with `body` of type `ct`; the batch.
fn scrape_as(h: &mut Harness, ct: &str, body: &[u8]) -> Batch {
    let (id, _) = h.advance_until_scrape(Duration::from_secs(60))[0].clone();
    let before = h.log.len();
    h.respond(id, 200, ct, body);
    let b: Vec<Batch> = h.log[before..]
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Append(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(b.len(), 1, "one batch per scrape");
    b[0].clone()
}

fn up(b: &Batch) -> f64 {
    // Only called on a target's first scrape, which declares `up`.
    let r = b
        .series
        .iter()
        .find(|(_, l)| l.get("__name__") == Some("up"))
        .map(|(r, _)| *r)
        .expect("the first scrape declares up");
    b.samples
        .iter()
        .find(|p| p.series == r)
        .map_or(-1.0, |p| p.value())
}

/// A histogram family `h` of one metric.
fn family(kind: i32, h: Histogram) -> Vec<MetricFamily> {
    vec![MetricFamily {
        name: "h".into(),
        help: String::new(),
        r#type: kind,
        unit: String::new(),
        metric: vec![Metric {
            histogram: Some(h),
            ..Default::default()
        }],
    }]
}

/// Schema 3, eight adjacent buckets from index 0, one observation each.
fn fine() -> Histogram {
    Histogram {
        sample_count: 8,
        sample_sum: 4.0,
        schema: 3,
        zero_threshold: 1e-9,
        positive_span: vec![BucketSpan {
            offset: 0,
            length: 8,
        }],
        positive_delta: vec![1, 0, 0, 0, 0, 0, 0, 0],
        ..Default::default()
    }
}

fn positive(b: &Batch) -> (i32, Vec<Span>, Vec<i64>) {
    let p = &b.histograms[0];
    let Counts::Int { positive, .. } = &p.h.counts else {
        panic!("an integer histogram");
    };
    (p.h.schema, p.h.positive_spans.clone(), positive.clone())
}

#[test]
fn a_native_histogram_is_stored_with_its_series() {
    let mut h = harness("");
    let b = scrape(&mut h, &body(&family(4, fine())));
    assert_eq!(b.histograms.len(), 1);
    let p = &b.histograms[0];
    let (_, labels) = b
        .series
        .iter()
        .find(|(r, _)| *r == p.series)
        .expect("its series is declared");
    assert_eq!(labels.get("__name__"), Some("h"));
    assert_eq!(
        positive(&b),
        (
            3,
            vec![Span {
                offset: 0,
                length: 8
            }],
            vec![1; 8]
        )
    );
    assert_eq!(h.agent.targets()[0].last_error, "");
    // Counted as one scraped sample and one added series.
    let added = b
        .series
        .iter()
        .find(|(_, l)| l.get("__name__") == Some("scrape_series_added"))
        .map(|(r, _)| *r);
    let v = b
        .samples
        .iter()
        .find(|s| Some(s.series) == added)
        .map(|s| s.value());
    assert_eq!(v, Some(1.0));
}

#[test]
fn the_min_bucket_factor_reduces_the_schema() {
    // Factor 2 allows schema 0 at most: 8 buckets at schema 3 become one at schema 0
    // (indices 0..7 at schema 3 map to index 0 and 1 at schema 0).
    let mut h = harness("    native_histogram_min_bucket_factor: 2\n");
    let b = scrape(&mut h, &body(&family(4, fine())));
    let (schema, spans, counts) = positive(&b);
    assert_eq!(schema, 0);
    assert_eq!(counts.iter().sum::<i64>(), 8);
    assert_eq!(
        spans,
        vec![Span {
            offset: 0,
            length: counts.len() as u32
        }]
    );
}

#[test]
fn the_bucket_limit_reduces_resolution_until_it_fits() {
    let mut h = harness("    native_histogram_bucket_limit: 3\n");
    let b = scrape(&mut h, &body(&family(4, fine())));
    let (schema, _, counts) = positive(&b);
    assert!(counts.len() <= 3, "{counts:?}");
    assert!(schema < 3);
    assert_eq!(counts.iter().sum::<i64>(), 8);
    assert_eq!(h.agent.targets()[0].last_error, "");
}

#[test]
fn custom_buckets_over_the_limit_fail_the_scrape() {
    // A classic histogram converted to custom buckets cannot be made coarser.
    let classic = Histogram {
        sample_count: 4,
        sample_sum: 1.0,
        bucket: (1..=4)
            .map(|i| Bucket {
                cumulative_count: i,
                upper_bound: i as f64,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut h = harness(
        "    native_histogram_bucket_limit: 2\n    convert_classic_histograms_to_nhcb: true\n",
    );
    let b = scrape(&mut h, &body(&family(4, classic)));
    assert!(b.histograms.is_empty());
    assert_eq!(
        h.agent.targets()[0].last_error,
        "histogram bucket limit exceeded"
    );
    assert_eq!(up(&b), 0.0);
}

#[test]
fn an_invalid_histogram_fails_the_scrape_with_validates_words() {
    let mut bad = fine();
    bad.sample_count = 9;
    let mut h = harness("");
    let b = scrape(&mut h, &body(&family(4, bad)));
    assert!(b.histograms.is_empty());
    assert_eq!(
        h.agent.targets()[0].last_error,
        "8 observations found in buckets, but the Count field is 9: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)"
    );
}

#[test]
fn a_vanished_histogram_gets_a_stale_marker_of_its_kind() {
    let float = Histogram {
        sample_count_float: 1.5,
        sample_sum: 1.0,
        zero_threshold: 0.5,
        zero_count_float: 1.5,
        ..Default::default()
    };
    let mut h = harness("");
    let first = scrape(&mut h, &body(&family(5, float)));
    assert!(first.histograms[0].h.is_float());
    let series = first.histograms[0].series;
    let gauge = vec![MetricFamily {
        name: "g".into(),
        help: String::new(),
        r#type: 1,
        unit: String::new(),
        metric: vec![Metric {
            gauge: Some(Gauge { value: 1.0 }),
            ..Default::default()
        }],
    }];
    let second = scrape(&mut h, &body(&gauge));
    let marker = second
        .histograms
        .iter()
        .find(|p| p.series == series)
        .expect("a histogram stale marker");
    assert!(marker.h.is_stale() && marker.h.is_float());
    assert!(
        !second.samples.iter().any(|p| p.series == series),
        "no float marker for a histogram series"
    );
}

/// `prometheus.Histogram` of remote write 1.0 (`prompb/types.proto`).
#[derive(Clone, PartialEq, prost::Message)]
struct RwHistogram {
    #[prost(uint64, optional, tag = "1")]
    count_int: Option<u64>,
    #[prost(double, optional, tag = "2")]
    count_float: Option<f64>,
    #[prost(double, tag = "3")]
    sum: f64,
    #[prost(sint32, tag = "4")]
    schema: i32,
    #[prost(double, tag = "5")]
    zero_threshold: f64,
    #[prost(uint64, optional, tag = "6")]
    zero_count_int: Option<u64>,
    #[prost(double, optional, tag = "7")]
    zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "8")]
    negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    positive_counts: Vec<f64>,
    #[prost(int32, tag = "14")]
    reset_hint: i32,
    #[prost(int64, tag = "15")]
    timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    custom_values: Vec<f64>,
}

#[test]
fn remote_write_histograms_decode_as_prompb_defines_them() {
    use prost::Message as _;
    use trawl_core::histogram::{CUSTOM_BUCKETS_SCHEMA, Histogram as H, ResetHint};
    use trawl_core::remote::encode::encode_histogram;
    let int = H {
        hint: ResetHint::No,
        schema: -2,
        zero_threshold: 0.25,
        sum: 9.5,
        positive_spans: vec![Span {
            offset: -3,
            length: 2,
        }],
        negative_spans: vec![Span {
            offset: 1,
            length: 1,
        }],
        counts: Counts::Int {
            count: 10,
            zero_count: 0,
            positive: vec![4, 2],
            negative: vec![4],
        },
        custom_values: Vec::new(),
    };
    let mut b = Vec::new();
    encode_histogram(&mut b, 1234, &int);
    let d = RwHistogram::decode(&b[..]).expect("decodes");
    assert_eq!(d.count_int, Some(10));
    assert_eq!(
        d.zero_count_int,
        Some(0),
        "a oneof member is written even at 0"
    );
    assert_eq!((d.sum, d.schema, d.zero_threshold), (9.5, -2, 0.25));
    assert_eq!(d.positive_deltas, vec![4, -2]);
    assert_eq!(d.negative_deltas, vec![4]);
    assert_eq!(
        d.positive_spans,
        vec![BucketSpan {
            offset: -3,
            length: 2
        }]
    );
    assert_eq!((d.reset_hint, d.timestamp), (2, 1234));

    let float = H {
        hint: ResetHint::Unknown,
        schema: CUSTOM_BUCKETS_SCHEMA,
        zero_threshold: 0.0,
        sum: 0.5,
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        negative_spans: Vec::new(),
        counts: Counts::Float {
            count: 1.5,
            zero_count: 0.0,
            positive: vec![1.0, 0.5],
            negative: Vec::new(),
        },
        custom_values: vec![0.1],
    };
    b.clear();
    encode_histogram(&mut b, 5, &float);
    let d = RwHistogram::decode(&b[..]).expect("decodes");
    assert_eq!((d.count_float, d.zero_count_float), (Some(1.5), Some(0.0)));
    assert_eq!(d.positive_counts, vec![1.0, 0.5]);
    assert_eq!(d.schema, -53);
    assert_eq!(d.custom_values, vec![0.1]);
}

const OM: &str = "application/openmetrics-text; version=1.0.0";

fn scrape_text(h: &mut Harness, ct: &str, body: &str) -> Batch {
    scrape_as(h, ct, body.as_bytes())
}

/// The names of the series a batch declares, report series left out.
fn names(b: &Batch) -> Vec<String> {
    let mut v: Vec<String> = b
        .series
        .iter()
        .map(|(_, l)| l.to_string())
        .filter(|l| {
            !trawl_core::scrape::pipeline::REPORT_SERIES
                .iter()
                .any(|r| l.starts_with(&format!("{{__name__=\"{r}\"")))
        })
        .collect();
    v.sort();
    v
}

const CLASSIC: &str = "# TYPE rt histogram\n\
    rt_bucket{path=\"/a\",le=\"0.1\"} 2 # {trace=\"t1\"} 0.05 1.5\n\
    rt_bucket{path=\"/a\",le=\"1\"} 5 # {trace=\"t2\"} 0.5\n\
    rt_bucket{path=\"/a\",le=\"+Inf\"} 6\n\
    rt_count{path=\"/a\"} 6\n\
    rt_sum{path=\"/a\"} 3.5\n\
    # TYPE up_time gauge\n\
    up_time 7\n\
    # EOF\n";

#[test]
fn text_classic_histograms_convert_to_custom_buckets() {
    let mut h = harness("    convert_classic_histograms_to_nhcb: true\n");
    let b = scrape_text(&mut h, OM, CLASSIC);
    assert_eq!(
        names(&b),
        vec![
            "{__name__=\"rt\", instance=\"h:1\", job=\"j\", path=\"/a\"}",
            "{__name__=\"up_time\", instance=\"h:1\", job=\"j\"}",
        ]
    );
    assert_eq!(b.histograms.len(), 1);
    let x = &b.histograms[0].h;
    assert_eq!(x.schema, trawl_core::histogram::CUSTOM_BUCKETS_SCHEMA);
    assert_eq!(x.custom_values, vec![0.1, 1.0]);
    let Counts::Int {
        count, positive, ..
    } = &x.counts
    else {
        panic!("integer counts")
    };
    assert_eq!((*count, positive.clone()), (6, vec![2, 3, 1]));
    // Only the exemplar with a timestamp is kept (3.x drops the others for histograms).
    assert_eq!(b.exemplars.len(), 1);
    assert_eq!(b.exemplars[0].t, 1500);
    assert_eq!(h.agent.targets()[0].last_error, "");
}

#[test]
fn kept_classic_series_come_with_the_conversion() {
    let mut h = harness(
        "    convert_classic_histograms_to_nhcb: true\n    always_scrape_classic_histograms: true\n",
    );
    let b = scrape_text(&mut h, OM, CLASSIC);
    let n = names(&b);
    assert_eq!(n.len(), 7, "{n:?}");
    assert!(n.iter().any(|l| l.starts_with("{__name__=\"rt_bucket\"")));
    assert_eq!(b.histograms.len(), 1);
}

#[test]
fn a_classic_histogram_that_does_not_convert_is_lost_as_in_prometheus() {
    // Not cumulative: 3.x's converter refuses it, and without
    // always_scrape_classic_histograms its classic series were already dropped.
    let body = "# TYPE bad histogram\nbad_bucket{le=\"1\"} 5\nbad_bucket{le=\"2\"} 3\nbad_count 5\nbad_sum 1\n";
    let mut h = harness("    convert_classic_histograms_to_nhcb: true\n");
    let b = scrape_text(&mut h, "text/plain; version=0.0.4", body);
    assert!(b.histograms.is_empty());
    assert!(names(&b).is_empty());
    assert_eq!(h.agent.targets()[0].last_error, "");
}

/// Under `created-timestamp-zero-ingestion`, protobuf starts come with the samples: a
/// native histogram's start is stored as an empty histogram of its kind just before
/// it, and a protobuf counter whose name ends in `_created` is a counter (only
/// OpenMetrics text has `_created` lines).
#[test]
fn protobuf_start_timestamps_give_zero_histograms_and_no_created_lines() {
    let yaml = "scrape_configs:\n  - job_name: j\n    scrape_interval: 10s\n    scrape_native_histograms: true\n    static_configs:\n      - targets: [\"h:1\"]\n";
    let o = AgentOptions {
        start_timestamps: true,
        ..Default::default()
    };
    let mut h = Harness::new(yaml, o);
    let mut nh = fine();
    nh.start_timestamp = ts(1_000);
    let mut fams = family(4, nh);
    fams.push(MetricFamily {
        name: "jobs_created".into(),
        help: String::new(),
        r#type: 0,
        unit: String::new(),
        metric: vec![Metric {
            counter: Some(Counter {
                value: 3.0,
                ..Default::default()
            }),
            ..Default::default()
        }],
    });
    let b = scrape(&mut h, &body(&fams));
    assert_eq!(b.histograms.len(), 2, "{:?}", b.histograms);
    let (zero, sample) = (&b.histograms[0], &b.histograms[1]);
    assert_eq!(zero.series, sample.series);
    assert_eq!(zero.t, 1_000);
    assert_eq!(zero.h, trawl_core::histogram::Histogram::empty(false));
    let created = b
        .series
        .iter()
        .find(|(_, l)| l.get("__name__") == Some("jobs_created"))
        .map(|(r, _)| *r)
        .expect("the counter is a series");
    assert!(
        b.samples
            .iter()
            .any(|p| p.series == created && p.value() == 3.0)
    );
}
