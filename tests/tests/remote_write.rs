//! The remote write encoder against the bodies Prometheus 2.42 sent
//! (`../shared/conformance/remote-write-golden/`): the same series and metadata encode
//! to the same protobuf bytes, and our snappy bodies decode, with prost, to what was
//! encoded.

use std::path::PathBuf;

use prost::Message;
use trawl_core::exposition::MetricType;
use trawl_core::remote::encode::{RwMetadata, RwSample, compress, put_metadata, put_timeseries};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/remote-write-golden")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(golden(name)).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the conformance files live in ../shared beside the repository)",
            golden(name).display()
        )
    })
}

fn unsnappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Decoder::new()
        .decompress_vec(b)
        .expect("a snappy block")
}

// The remote write 1.0 messages, for decoding with prost (`formats.md` §5.1).
#[derive(Clone, PartialEq, Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    metadata: Vec<Metadata>,
}

#[derive(Clone, PartialEq, Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, Message)]
struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(double, tag = "2")]
    value: f64,
    #[prost(int64, tag = "3")]
    timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Metadata {
    #[prost(int32, tag = "1")]
    r#type: i32,
    #[prost(string, tag = "2")]
    metric_family_name: String,
    #[prost(string, tag = "4")]
    help: String,
    #[prost(string, tag = "5")]
    unit: String,
}

fn bits(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex bits")
}

fn kind(n: u64) -> MetricType {
    match n {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

#[test]
fn samples_and_stale_markers_encode_exactly_as_prometheus_sent_them() {
    let body = unsnappy(&read("prometheus-2.42-samples-with-stale-markers.snappy"));
    let want: serde_json::Value = serde_json::from_slice(&read(
        "prometheus-2.42-samples-with-stale-markers.expected.json",
    ))
    .expect("JSON");
    assert_eq!(
        body.len() as u64,
        want["decoded_body_len"].as_u64().expect("len")
    );
    let mut out = Vec::new();
    let series = want["timeseries"].as_array().expect("timeseries");
    for ts in series {
        let labels: Vec<(String, String)> = ts["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|p| {
                (
                    p[0].as_str().expect("name").to_owned(),
                    p[1].as_str().expect("value").to_owned(),
                )
            })
            .collect();
        let samples: Vec<RwSample> = ts["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| RwSample {
                t: s["timestamp_ms"].as_i64().expect("t"),
                v: bits(s["value_bits"].as_str().expect("bits")),
            })
            .collect();
        put_timeseries(
            &mut out,
            labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            &samples,
        );
    }
    assert_eq!(out.len(), body.len());
    let first = out.iter().zip(&body).position(|(a, b)| a != b);
    assert_eq!(first, None, "first differing byte");
    // And through our snappy, back with prost: every series, stale markers bit-exact.
    let mut z = Vec::new();
    compress(&mut snap::raw::Encoder::new(), &out, &mut z).expect("compress");
    let req = WriteRequest::decode(unsnappy(&z).as_slice()).expect("prost decodes it");
    assert_eq!(req.timeseries.len(), series.len());
    let stale = req
        .timeseries
        .iter()
        .flat_map(|t| &t.samples)
        .filter(|s| s.value.to_bits() == 0x7ff0_0000_0000_0002)
        .count();
    assert_eq!(stale, 24);
    assert_eq!(req.timeseries[0].labels[0].name, "__name__");
}

#[test]
fn metadata_only_requests_encode_exactly_as_prometheus_sent_them() {
    let body = unsnappy(&read("prometheus-2.42-metadata-only.snappy"));
    let want: serde_json::Value =
        serde_json::from_slice(&read("prometheus-2.42-metadata-only.expected.json")).expect("JSON");
    let mut out = Vec::new();
    let entries = want["metadata"].as_array().expect("metadata");
    for m in entries {
        put_metadata(
            &mut out,
            &RwMetadata {
                kind: kind(m["type"].as_u64().expect("type")),
                family: m["metric_family_name"].as_str().expect("name"),
                help: m["help"].as_str().expect("help"),
                unit: m["unit"].as_str().expect("unit"),
            },
        );
    }
    assert_eq!(out, body);
    let req = WriteRequest::decode(out.as_slice()).expect("prost decodes it");
    assert_eq!(req.metadata.len(), entries.len());
    assert!(req.timeseries.is_empty());
}

#[test]
fn a_metadata_body_is_a_metadata_only_request() {
    let body = trawl_core::remote::encode::metadata_body(&[
        RwMetadata {
            kind: MetricType::Counter,
            family: "http_requests_total",
            help: "Requests.",
            unit: "",
        },
        RwMetadata {
            kind: MetricType::Unknown,
            family: "x",
            help: "",
            unit: "seconds",
        },
    ])
    .expect("body");
    let req = WriteRequest::decode(unsnappy(&body).as_slice()).expect("decode");
    assert!(req.timeseries.is_empty());
    assert_eq!(req.metadata.len(), 2);
    assert_eq!(
        (req.metadata[0].r#type, req.metadata[0].help.as_str()),
        (1, "Requests.")
    );
    assert_eq!(
        (req.metadata[1].r#type, req.metadata[1].unit.as_str()),
        (0, "seconds")
    );
}

#[test]
fn edge_values_round_trip_through_prost() {
    // Zero values and timestamps are proto3 defaults (left out), negative timestamps are
    // ten-byte varints, NaN patterns survive.
    let samples = [
        RwSample { t: 0, v: 0 },
        RwSample {
            t: -1,
            v: (-0.0f64).to_bits(),
        },
        RwSample {
            t: 1000,
            v: 0x7ff8_0000_0000_0001,
        },
        RwSample {
            t: i64::MAX,
            v: f64::INFINITY.to_bits(),
        },
    ];
    let mut out = Vec::new();
    put_timeseries(
        &mut out,
        [("__name__", "x"), ("job", "j"), ("empty", "")].into_iter(),
        &samples,
    );
    let req = WriteRequest::decode(out.as_slice()).expect("decode");
    let got: Vec<(i64, u64)> = req.timeseries[0]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value.to_bits()))
        .collect();
    // -0.0 is "zero" to proto3 and arrives as +0.0, as from Prometheus.
    assert_eq!(
        got,
        vec![
            (0, 0),
            (-1, 0),
            (1000, 0x7ff8_0000_0000_0001),
            (i64::MAX, f64::INFINITY.to_bits())
        ]
    );
    assert_eq!(req.timeseries[0].labels.len(), 3);
    // The worked example of formats.md §5.1: 41 bytes.
    let mut one = Vec::new();
    put_timeseries(
        &mut one,
        [("__name__", "x"), ("job", "j")].into_iter(),
        &[RwSample {
            t: 1000,
            v: 1f64.to_bits(),
        }],
    );
    assert_eq!(one.len(), 41);
    assert_eq!(&one[..2], &[0x0a, 0x27]);
    assert_eq!(
        &one[one.len() - 14..],
        &[
            0x12, 0x0c, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xe8, 0x07
        ]
    );
}

// ---- The queue, driven by hand and by a property test -------------------------------

mod queue {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;
    use prost::Message;
    use trawl_core::config::{Config, ParseOptions, RemoteWriteConfig};
    use trawl_core::labels::Labels;
    use trawl_core::remote::queue::{Queue, QueueEvent, SendOutcome, Transmit, WalPos};
    use trawl_core::scrape::pipeline::{Point, SeriesRef};
    use trawl_core::time::{Instant, Now, UnixNanos};
    use trawl_core::wal::record;

    use super::{WriteRequest, unsnappy};

    pub(super) fn config(extra: &str) -> Arc<RemoteWriteConfig> {
        let text = format!(
            "global:\n  external_labels: {{dc: one}}\nremote_write:\n  - url: http://127.0.0.1:1/api/v1/write\n{extra}"
        );
        let c = Config::parse(&text, &ParseOptions::for_path("q.yml")).expect("config");
        Arc::new(c.remote_write[0].clone())
    }

    pub(super) fn at(ms: u64) -> Now {
        Now::new(
            Instant(ms * 1_000_000),
            UnixNanos(1_800_000_000_000_000_000 + ms as i64 * 1_000_000),
        )
    }

    fn series_rec(refs: &[(u64, &str)]) -> Vec<u8> {
        let labels: Vec<(SeriesRef, Labels)> = refs
            .iter()
            .map(|(r, name)| {
                (
                    SeriesRef(*r),
                    Labels::from_pairs([("__name__", *name), ("job", "j")]),
                )
            })
            .collect();
        let mut out = Vec::new();
        record::series(&mut out, labels.iter().map(|(r, l)| (*r, l)));
        out
    }

    fn samples_rec(points: &[(u64, i64, f64)]) -> Vec<u8> {
        let p: Vec<Point> = points
            .iter()
            .map(|&(r, t, v)| Point {
                series: SeriesRef(r),
                t,
                v: v.to_bits(),
            })
            .collect();
        let mut out = Vec::new();
        record::samples(&mut out, &p);
        out
    }

    fn pos(segment: u32, offset: u64) -> WalPos {
        WalPos { segment, offset }
    }

    /// (labels as `name=value,…`, t, value bits) of every sample in a request.
    fn decode(s: &Transmit) -> Vec<(String, i64, u64)> {
        let req = WriteRequest::decode(unsnappy(&s.body).as_slice()).expect("a WriteRequest");
        let mut out = Vec::new();
        for ts in req.timeseries {
            let l: Vec<String> = ts
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            for smp in ts.samples {
                out.push((l.join(","), smp.timestamp, smp.value.to_bits()));
            }
        }
        out
    }

    fn ok() -> SendOutcome<'static> {
        SendOutcome::Status {
            code: 204,
            retry_after: None,
            body: "",
        }
    }

    fn status(code: u16) -> SendOutcome<'static> {
        SendOutcome::Status {
            code,
            retry_after: None,
            body: "no",
        }
    }

    #[test]
    fn exemplars_travel_with_their_series_only_when_asked_for() {
        let ex = |r: u64, t: i64, v: f64, trace: &str| trawl_core::batch::ExemplarPoint {
            series: SeriesRef(r),
            t,
            v: v.to_bits(),
            labels: Labels::from_pairs([("trace_id", trace)]),
        };
        let mut xrec = Vec::new();
        record::exemplars(
            &mut xrec,
            &[
                ex(1, 1000, 0.5, "abc"),
                ex(2, 990, 7.0, "def"),
                ex(9, 1000, 1.0, "x"),
            ],
        );
        // The record decodes to what was encoded.
        let back = record::decode_exemplars(&xrec).expect("decodes");
        assert_eq!(back.len(), 3);
        assert_eq!((back[1].series, back[1].t), (SeriesRef(2), 990));
        for (send, want_ex) in [(true, 2usize), (false, 0)] {
            let cfg = config(&format!(
                "    send_exemplars: {send}\n    queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 100}}\n"
            ));
            let mut q = Queue::new(cfg, Labels::from_pairs([("dc", "one")]), None, 7);
            q.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a"), (2, "b")]));
            q.handle_record(
                at(0),
                pos(0, 20),
                &samples_rec(&[(1, 1000, 1.0), (2, 1000, 2.0)]),
            );
            q.handle_record(at(0), pos(0, 30), &xrec);
            q.handle_timeout(at(1000));
            let s = q.poll_transmit().expect("a request");
            let req = WriteRequest::decode(unsnappy(&s.body).as_slice()).expect("a WriteRequest");
            let mut got = Vec::new();
            for ts in &req.timeseries {
                assert_eq!(ts.samples.len(), 1, "each series' sample");
                for e in &ts.exemplars {
                    let l: Vec<String> = e
                        .labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect();
                    got.push((
                        ts.labels[0].value.clone(),
                        l.join(","),
                        e.timestamp,
                        e.value,
                    ));
                }
            }
            let want: Vec<(String, String, i64, f64)> = if send {
                vec![
                    ("a".into(), "trace_id=abc".into(), 1000, 0.5),
                    ("b".into(), "trace_id=def".into(), 990, 7.0),
                ]
            } else {
                Vec::new()
            };
            assert_eq!(got, want);
            assert_eq!(q.stats().exemplars_in as usize, if send { 3 } else { 0 });
            // The exemplar of the unknown series 9 is dropped and counted.
            assert_eq!(q.stats().exemplars_dropped, u64::from(send));
            assert_eq!(q.stats().exemplars_pending as usize, want_ex);
            q.handle_response(at(1010), s.id, ok());
            // Acknowledged: sent and counted apart from samples; the WAL position moves
            // past the exemplar record.
            assert_eq!(q.stats().samples_sent, 2);
            assert_eq!(q.stats().exemplars_sent as usize, want_ex);
            assert_eq!(q.stats().exemplars_pending, 0);
            assert_eq!(q.progress(), Some(pos(0, 30)));
            assert!(q.is_idle());
        }
    }

    #[test]
    fn samples_past_the_age_limit_are_dropped_and_exemplars_stay_with_theirs() {
        // 3.x `sample_age_limit`: a batch's samples older than the limit are dropped and
        // counted; what stays keeps its exemplars, paired through the sort by series.
        let ex = |r: u64, t: i64, trace: &str| trawl_core::batch::ExemplarPoint {
            series: SeriesRef(r),
            t,
            v: 0.5f64.to_bits(),
            labels: Labels::from_pairs([("trace_id", trace)]),
        };
        let wall = 1_800_000_000_000i64; // at(0)'s wall clock, in ms
        let (old, new) = (wall - 60_000, wall + 500);
        let cfg = config(
            "    send_exemplars: true\n    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 100, sample_age_limit: 10s}\n",
        );
        let mut q = Queue::new(cfg, Labels::from_pairs([("dc", "one")]), None, 7);
        q.handle_record(
            at(0),
            pos(0, 10),
            &series_rec(&[(1, "a"), (2, "b"), (3, "c")]),
        );
        q.handle_record(
            at(0),
            pos(0, 20),
            &samples_rec(&[(3, new, 3.0), (1, old, 1.0), (2, new, 2.0)]),
        );
        let mut xrec = Vec::new();
        record::exemplars(
            &mut xrec,
            &[ex(2, new, "two"), ex(1, old, "one"), ex(3, new, "three")],
        );
        q.handle_record(at(0), pos(0, 30), &xrec);
        q.handle_timeout(at(1000));
        let s = q.poll_transmit().expect("a request");
        let req = WriteRequest::decode(unsnappy(&s.body).as_slice()).expect("a WriteRequest");
        let got: Vec<(String, Vec<i64>, Vec<String>)> = req
            .timeseries
            .iter()
            .map(|ts| {
                (
                    ts.labels[0].value.clone(),
                    ts.samples.iter().map(|x| x.timestamp).collect(),
                    ts.exemplars
                        .iter()
                        .map(|e| e.labels[0].value.clone())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("b".to_owned(), vec![new], vec!["two".to_owned()]),
                ("c".to_owned(), vec![new], vec!["three".to_owned()]),
            ]
        );
        assert_eq!(q.stats().samples_dropped, 1);
        assert_eq!(q.stats().exemplars_dropped, 1);
        q.handle_response(at(1010), s.id, ok());
        assert_eq!(q.stats().samples_sent, 2);
        assert_eq!(q.stats().exemplars_sent, 2);
        assert_eq!(q.progress(), Some(pos(0, 30)));
        assert!(q.is_idle());
    }

    #[test]
    fn a_partial_batch_goes_out_after_the_deadline_with_external_and_relabeled_labels() {
        let cfg = config(
            "    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 100}\n    write_relabel_configs:\n      - {source_labels: [__name__], regex: dropme, action: drop}\n",
        );
        let mut q = Queue::new(cfg, Labels::from_pairs([("dc", "one")]), None, 7);
        q.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a"), (2, "dropme")]));
        q.handle_record(
            at(0),
            pos(0, 20),
            &samples_rec(&[(1, 1000, 1.0), (2, 1000, 2.0), (3, 1000, 3.0)]),
        );
        assert!(q.poll_transmit().is_none(), "not before the deadline");
        assert_eq!(q.poll_timeout(), Some(at(1000).mono));
        q.handle_timeout(at(1000));
        let s = q.poll_transmit().expect("a request");
        assert_eq!(s.samples, 1);
        assert_eq!(
            decode(&s),
            vec![("__name__=a,dc=one,job=j".to_owned(), 1000, 1f64.to_bits())]
        );
        // The dropped series and the unknown ref 3 are counted, not sent.
        assert_eq!(q.stats().samples_dropped, 2);
        assert_eq!(q.progress(), Some(pos(0, 10)));
        q.handle_response(at(1010), s.id, ok());
        assert_eq!(q.progress(), Some(pos(0, 20)));
        assert_eq!(q.stats().samples_sent, 1);
        assert!(q.is_idle());
    }

    #[test]
    fn failures_retry_the_same_body_with_growing_backoff_until_it_is_accepted() {
        let cfg = config(
            "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}\n",
        );
        let mut q = Queue::new(cfg, Labels::empty(), None, 1);
        q.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a")]));
        q.handle_record(at(0), pos(0, 20), &samples_rec(&[(1, 1000, 1.0)]));
        q.close(at(0));
        let first = q.poll_transmit().expect("sent at once when closing");
        let mut now = 0;
        let mut id = first.id;
        let mut waits = Vec::new();
        for attempt in 1..=6u32 {
            let outcome = if attempt % 2 == 0 {
                status(503)
            } else {
                SendOutcome::Failed("connection refused")
            };
            q.handle_response(at(now), id, outcome);
            let Some(QueueEvent::Retrying {
                after, attempt: a, ..
            }) = q.poll_event()
            else {
                panic!("a retry event");
            };
            assert_eq!(a, attempt);
            let step =
                Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            assert!(
                after >= step / 2 && after <= step,
                "{after:?} within [{:?}, {step:?}]",
                step / 2
            );
            waits.push(after);
            assert_eq!(q.progress(), Some(pos(0, 10)), "nothing acknowledged yet");
            now += after.as_nanos().div_ceil(1_000_000) as u64;
            q.handle_timeout(at(now));
            let again = q.poll_transmit().expect("retried");
            assert_eq!(again.body, first.body, "the same body again");
            assert_ne!(again.id, id);
            // A late answer to the old attempt changes nothing.
            q.handle_response(at(now), id, ok());
            assert_eq!(q.progress(), Some(pos(0, 10)));
            id = again.id;
        }
        q.handle_response(at(now), id, ok());
        assert_eq!(q.poll_event(), Some(QueueEvent::Recovered));
        assert_eq!(q.progress(), Some(pos(0, 20)));
        assert_eq!(q.stats().samples_retried, 6);
        assert_eq!(q.stats().samples_sent, 1);
        // The jitter comes from the seed: the same seed, the same waits.
        let mut q2 = Queue::new(
            config(
                "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}\n",
            ),
            Labels::empty(),
            None,
            1,
        );
        q2.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a")]));
        q2.handle_record(at(0), pos(0, 20), &samples_rec(&[(1, 1000, 1.0)]));
        q2.close(at(0));
        let s = q2.poll_transmit().expect("sent");
        q2.handle_response(at(0), s.id, SendOutcome::Failed("x"));
        assert!(
            matches!(q2.poll_event(), Some(QueueEvent::Retrying { after, .. }) if after == waits[0])
        );
    }

    #[test]
    fn retry_after_is_honoured_and_other_4xx_drop_the_batch() {
        let cfg = config("    queue_config: {batch_send_deadline: 1s}\n");
        let mut q = Queue::new(cfg, Labels::empty(), None, 1);
        q.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a")]));
        q.handle_record(at(0), pos(0, 20), &samples_rec(&[(1, 1000, 1.0)]));
        q.close(at(0));
        let s = q.poll_transmit().expect("sent");
        q.handle_response(
            at(0),
            s.id,
            SendOutcome::Status {
                code: 429,
                retry_after: Some(Duration::from_secs(7)),
                body: "slow down",
            },
        );
        assert!(
            matches!(q.poll_event(), Some(QueueEvent::Retrying { after, .. }) if after == Duration::from_secs(7))
        );
        q.handle_timeout(at(6999));
        assert!(q.poll_transmit().is_none());
        q.handle_timeout(at(7000));
        let s = q.poll_transmit().expect("after Retry-After");
        q.handle_response(at(7000), s.id, status(400));
        assert_eq!(
            q.poll_event(),
            Some(QueueEvent::Dropped {
                status: 400,
                samples: 1,
                body: "no".into()
            })
        );
        assert_eq!(q.stats().samples_failed, 1);
        assert_eq!(q.progress(), Some(pos(0, 20)), "a dropped batch is done");
    }

    #[test]
    fn a_restart_skips_what_was_acknowledged_but_keeps_the_series() {
        let cfg = config("    queue_config: {batch_send_deadline: 1s}\n");
        let mut q = Queue::new(cfg, Labels::empty(), Some(pos(0, 20)), 1);
        q.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a")]));
        q.handle_record(at(0), pos(0, 20), &samples_rec(&[(1, 1000, 1.0)]));
        q.handle_record(at(0), pos(1, 5), &samples_rec(&[(1, 2000, 2.0)]));
        q.close(at(0));
        let s = q.poll_transmit().expect("sent");
        assert_eq!(
            decode(&s),
            vec![("__name__=a,job=j".to_owned(), 2000, 2f64.to_bits())]
        );
    }

    #[test]
    fn a_closing_queue_takes_the_rest_of_the_wal_while_it_has_room() {
        let cfg = config(
            "    queue_config: {batch_send_deadline: 1m, capacity: 2, max_samples_per_send: 100, min_shards: 1, max_shards: 1}\n",
        );
        let mut q = Queue::new(cfg, Labels::empty(), None, 1);
        q.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a")]));
        q.handle_record(
            at(0),
            pos(0, 20),
            &samples_rec(&[(1, 1000, 1.0), (1, 2000, 2.0)]),
        );
        assert!(!q.wants_records(), "full at its capacity");
        assert!(
            q.poll_transmit().is_none(),
            "a partial batch waits for its deadline"
        );
        // Shutdown: what is queued goes out at once, and room means more records.
        q.close(at(5));
        let s = q.poll_transmit().expect("flushed without the deadline");
        assert!(q.wants_records(), "room again: the shell reads on");
        q.handle_record(at(5), pos(0, 30), &samples_rec(&[(1, 3000, 3.0)]));
        assert!(
            q.poll_transmit().is_none(),
            "one request in flight per shard"
        );
        q.handle_response(at(6), s.id, ok());
        let s = q.poll_transmit().expect("the last record goes out at once");
        assert_eq!(
            decode(&s),
            vec![("__name__=a,job=j".to_owned(), 3000, 3f64.to_bits())]
        );
        q.handle_response(at(7), s.id, ok());
        assert!(q.is_idle());
        assert_eq!(q.progress(), Some(pos(0, 30)));
    }

    #[test]
    fn a_ref_far_from_all_others_is_counted_not_stored() {
        let mut q = Queue::new(config(""), Labels::empty(), None, 1);
        q.handle_record(
            at(0),
            pos(0, 10),
            &series_rec(&[(5, "a"), (1 << 40, "b"), (3, "c")]),
        );
        assert_eq!(q.series_count(), 2);
        assert_eq!(q.stats().series_out_of_range, 1);
    }

    #[test]
    fn series_kept_through_a_large_reset_keep_their_labels() {
        let mut q = Queue::new(config(""), Labels::empty(), None, 1);
        let names: Vec<(u64, String)> = (1..=3000).map(|r| (r, format!("m{r}"))).collect();
        let named: Vec<(u64, &str)> = names.iter().map(|(r, n)| (*r, n.as_str())).collect();
        q.handle_record(at(0), pos(0, 10), &series_rec(&named));
        // Checkpoint 1 keeps every third series: the other 2000 go, and their label ids
        // with them (the arena is compacted).
        let kept: Vec<(u64, &str)> = named.iter().copied().filter(|(r, _)| r % 3 == 0).collect();
        q.checkpoint_series(1, &series_rec(&kept));
        q.reset_series(1);
        assert_eq!(q.series_count(), 1000);
        // A series declared again after it: new labels, the old ones released.
        q.handle_record(at(0), pos(1, 10), &series_rec(&[(3, "renamed")]));
        q.handle_record(
            at(0),
            pos(1, 20),
            &samples_rec(&[(3, 1000, 1.0), (2997, 1000, 2.0), (2998, 1000, 3.0)]),
        );
        q.close(at(0));
        let s = q.poll_transmit().expect("sent");
        let mut got = decode(&s);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("__name__=m2997,job=j".to_owned(), 1000, 2f64.to_bits()),
                ("__name__=renamed,job=j".to_owned(), 1000, 1f64.to_bits()),
            ]
        );
        assert_eq!(q.stats().samples_dropped, 1, "2998 was forgotten");
    }

    #[test]
    fn checkpoints_forget_series_not_seen_since() {
        let cfg = config("");
        let mut q = Queue::new(cfg, Labels::empty(), None, 1);
        q.handle_record(at(0), pos(0, 10), &series_rec(&[(1, "a"), (2, "b")]));
        q.handle_record(at(0), pos(2, 10), &samples_rec(&[(2, 1000, 1.0)]));
        // Checkpoint 1 holds series 2 only (1 was retired before it).
        q.checkpoint_series(1, &series_rec(&[(2, "b")]));
        q.reset_series(1);
        assert_eq!(q.series_count(), 1);
    }

    #[test]
    fn a_slow_receiver_gets_more_shards_and_order_holds() {
        let cfg = config(
            "    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 100, max_shards: 8}\n",
        );
        let mut q = Queue::new(cfg, Labels::empty(), None, 1);
        let refs: Vec<(u64, String)> = (1..=50).map(|r| (r, format!("m{r}"))).collect();
        let named: Vec<(u64, &str)> = refs.iter().map(|(r, n)| (*r, n.as_str())).collect();
        q.handle_record(at(0), pos(0, 1), &series_rec(&named));
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        let mut in_flight: Vec<(u64, u64, Transmit)> = Vec::new(); // (answer at, id, send)
        let mut off = 2;
        for ms in (0..60_000u64).step_by(10) {
            // 50 series × 100 samples/s in; each request takes 400 ms to answer.
            if ms % 1000 == 0 {
                let pts: Vec<(u64, i64, f64)> = (1..=50).map(|r| (r, ms as i64 + 1, 1.0)).collect();
                for k in 0..100 {
                    let p: Vec<(u64, i64, f64)> =
                        pts.iter().map(|&(r, t, v)| (r, t + k, v)).collect();
                    q.handle_record(at(ms), pos(0, off), &samples_rec(&p));
                    off += 1;
                }
            }
            q.handle_timeout(at(ms));
            while let Some(s) = q.poll_transmit() {
                in_flight.push((ms + 400, s.id, s));
            }
            let (due, rest): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|x| x.0 <= ms);
            in_flight = rest;
            for (_, id, s) in due {
                for (l, t, _) in decode(&s) {
                    let prev = last.insert(l.clone(), t);
                    assert!(prev.is_none_or(|p| p < t), "{l}: {prev:?} then {t}");
                }
                q.handle_response(at(ms), id, ok());
            }
        }
        assert!(q.stats().shards > 1, "resharded: {:?}", q.stats());
        while let Some(e) = q.poll_event() {
            if let QueueEvent::Resharded { to, .. } = e {
                assert!(to <= 8);
            }
        }
    }

    /// One step of the property test.
    #[derive(Clone, Debug)]
    enum Step {
        /// Samples for these series (index into the series set), one per series.
        Scrape(Vec<u8>),
        /// Advance time.
        Wait(u16),
        /// Answer the oldest request in flight.
        Answer(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => prop::collection::vec(0u8..20, 1..30).prop_map(Step::Scrape),
            3 => (1u16..3000).prop_map(Step::Wait),
            4 => (0u8..10).prop_map(Step::Answer),
        ]
    }

    /// Runs `steps`, checks the invariants, and returns every request body sent.
    fn run(steps: &[Step], seed: u64) -> Vec<Vec<u8>> {
        let cfg = config(
            "    queue_config: {batch_send_deadline: 500ms, max_samples_per_send: 25, capacity: 40, min_backoff: 10ms, max_backoff: 200ms, max_shards: 4}\n",
        );
        let mut q = Queue::new(cfg, Labels::empty(), None, seed);
        let names: Vec<(u64, String)> = (0..20).map(|i| (i + 1, format!("s{i}"))).collect();
        let named: Vec<(u64, &str)> = names.iter().map(|(r, n)| (*r, n.as_str())).collect();
        q.handle_record(at(0), pos(0, 1), &series_rec(&named));
        let mut now = 0u64;
        let mut t = 1000i64;
        let mut off = 2;
        let mut fed: BTreeMap<(u64, i64), u32> = BTreeMap::new();
        let mut acked: BTreeMap<(u64, i64), u32> = BTreeMap::new();
        let mut failed = 0u64;
        let mut bodies = Vec::new();
        let mut flight: std::collections::VecDeque<Transmit> = Default::default();
        let mut last_progress = q.progress();
        let mut last_fed = pos(0, 1);
        let mut by_label: BTreeMap<String, u64> = BTreeMap::new();
        for (r, n) in &names {
            by_label.insert(format!("__name__={n},job=j"), *r);
        }
        let mut newest: BTreeMap<u64, i64> = BTreeMap::new();
        let mut answer = |q: &mut Queue,
                          s: Transmit,
                          code: u8,
                          now: u64,
                          acked: &mut BTreeMap<(u64, i64), u32>,
                          failed: &mut u64| {
            let outcome = match code {
                0..=5 => ok(),
                6 => status(500),
                7 => status(429),
                8 => status(400),
                _ => SendOutcome::Failed("reset"),
            };
            if code <= 5 {
                for (l, ts, _) in decode(&s) {
                    let r = by_label[&l];
                    // Each series' samples are acknowledged in time order.
                    let before = newest.insert(r, ts);
                    assert!(
                        before.is_none_or(|b| b < ts),
                        "series {r}: {before:?} then {ts}"
                    );
                    *acked.entry((r, ts)).or_default() += 1;
                }
            }
            if code == 8 {
                *failed += s.samples as u64;
            }
            q.handle_response(at(now), s.id, outcome);
        };
        for st in steps {
            match st {
                Step::Scrape(which) if q.wants_records() => {
                    let mut seen = std::collections::BTreeSet::new();
                    let pts: Vec<(u64, i64, f64)> = which
                        .iter()
                        .filter(|&&i| seen.insert(i))
                        .map(|&i| (u64::from(i) + 1, t, 1.0))
                        .collect();
                    for &(r, ts, _) in &pts {
                        *fed.entry((r, ts)).or_default() += 1;
                    }
                    t += 1;
                    last_fed = pos(0, off);
                    q.handle_record(at(now), last_fed, &samples_rec(&pts));
                    off += 1;
                }
                Step::Scrape(_) => {}
                Step::Wait(ms) => {
                    now += u64::from(*ms);
                    q.handle_timeout(at(now));
                }
                Step::Answer(code) => {
                    if let Some(s) = flight.pop_front() {
                        answer(&mut q, s, *code, now, &mut acked, &mut failed);
                    }
                }
            }
            while let Some(s) = q.poll_transmit() {
                bodies.push(s.body.to_vec());
                flight.push_back(s);
            }
            let p = q.progress();
            assert!(p >= last_progress, "progress never goes back");
            assert!(p.is_none_or(|p| p <= last_fed));
            last_progress = p;
        }
        // Drain: every request answered with success until idle.
        q.close(at(now));
        for _ in 0..100_000 {
            while let Some(s) = q.poll_transmit() {
                bodies.push(s.body.to_vec());
                flight.push_back(s);
            }
            if let Some(s) = flight.pop_front() {
                answer(&mut q, s, 0, now, &mut acked, &mut failed);
                continue;
            }
            if q.is_idle() {
                break;
            }
            now += 50;
            q.handle_timeout(at(now));
        }
        assert!(q.is_idle(), "drained");
        assert_eq!(q.progress(), Some(last_fed), "everything done");
        // At least once, except what a 400 dropped; never more than once per success.
        let missing = fed.keys().filter(|k| !acked.contains_key(k)).count() as u64;
        assert_eq!(missing, failed, "lost exactly what was refused");
        assert_eq!(q.stats().samples_failed, failed);
        assert!(
            acked.values().all(|&n| n == 1),
            "no sample acknowledged twice"
        );
        bodies
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_sample_is_delivered_once_in_order_whatever_the_receiver_does(
            steps in prop::collection::vec(step(), 1..300),
            seed in any::<u64>(),
        ) {
            let a = run(&steps, seed);
            // Same steps, same seed: the same requests, byte for byte.
            let b = run(&steps, seed);
            prop_assert_eq!(a, b);
        }
    }
}

/// Remote write in the daemon (`trawl_io::remote::Remote`) over a real WAL: records the
/// writer hands over in memory and records read back from the segment files reach the
/// receiver exactly once each, whatever mix of the two a run takes.
mod handover {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    use proptest::prelude::*;
    use prost::Message;
    use trawl_core::batch::Batch;
    use trawl_core::http::ResponseHead;
    use trawl_core::io::OwnedIoEvent;
    use trawl_core::labels::Labels;
    use trawl_core::metrics::Metrics;
    use trawl_io::remote::{Post, Remote, RemoteId, Transport};
    use trawl_io::storage::{Wal, WalOptions, Written};
    use trawl_tests::load::{LoadSpec, run};

    use super::queue::{at, config};
    use super::{WriteRequest, unsnappy};

    /// Samples as (sorted labels, t, value bits), with how often each came.
    type Samples = BTreeMap<(String, i64, u64), usize>;

    #[derive(Default)]
    struct Sent(Vec<(RemoteId, Arc<[u8]>)>);

    impl Transport for Sent {
        fn post(&mut self, id: RemoteId, p: Post<'_>) {
            self.0.push((id, p.body));
        }
        fn cancel(&mut self, _: RemoteId) {}
    }

    /// (sorted labels, t, value bits) of every sample of `batches`, with the queue's
    /// external label.
    fn want(batches: &[Batch]) -> Samples {
        let mut labels: BTreeMap<u64, String> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for b in batches {
            for (r, l) in &b.series {
                let mut v: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
                v.push("dc=one".into());
                v.sort();
                labels.insert(r.0, v.join(","));
            }
            for p in &b.samples {
                *out.entry((labels[&p.series.0].clone(), p.t, p.v))
                    .or_insert(0) += 1;
            }
        }
        out
    }

    fn got(sent: &[(RemoteId, Arc<[u8]>)]) -> Samples {
        let mut out = BTreeMap::new();
        for (_, body) in sent {
            let req = WriteRequest::decode(unsnappy(body).as_slice()).expect("a WriteRequest");
            for ts in req.timeseries {
                let mut l: Vec<String> = ts
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                l.sort();
                for s in ts.samples {
                    *out.entry((l.join(","), s.timestamp, s.value.to_bits()))
                        .or_insert(0) += 1;
                }
            }
        }
        out
    }

    fn counter(m: &Metrics, name: &str) -> f64 {
        m.sum(name)
    }

    /// What happens to an acknowledgement's records.
    #[derive(Clone, Copy, Debug)]
    enum Ack {
        /// Handed over at once.
        Now,
        /// Lost (as past the hand-over bound): the files must tell.
        Dropped,
        /// Held back and handed over with the next one.
        Later,
    }

    /// Writes `batches` (one append each) and runs remote write beside, acknowledging
    /// as `acks` says (cycled), pumping every `pump_every` and answering requests every
    /// `answer_every` appends; the samples sent and (handed over, read back) record
    /// counts.
    fn drive(
        batches: &[Batch],
        acks: &[Ack],
        (pump_every, answer_every): (usize, usize),
        segment_size: u64,
    ) -> (Samples, f64, f64, f64) {
        let d = std::env::temp_dir().join(format!(
            "trawl-handover-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let _ = std::fs::remove_dir_all(&d);
        let mark = Arc::new(AtomicU32::new(u32::MAX));
        let cfg =
            config("    queue_config: {max_samples_per_send: 50, capacity: 100, max_shards: 2}\n");
        let ext = Labels::from_pairs([("dc", "one")]);
        let opts = WalOptions {
            segment_size,
            ..WalOptions::default()
        };
        let (mut wal, _, _) = Wal::open(&d, opts).expect("open");
        let mut remote =
            Remote::new(&[(*cfg).clone()], &ext, &d, 7, "t", at(0), mark.clone()).expect("remote");
        wal.keep_segments_from(mark);
        let mut net = Sent::default();
        let mut answered = 0;
        let mut held: Vec<Written> = Vec::new();
        let mut ms = 0;
        let meta = Vec::new;
        let answer = |remote: &mut Remote, net: &Sent, answered: &mut usize, ms: u64| {
            for (id, _) in &net.0[*answered..] {
                let head = ResponseHead {
                    minor: 1,
                    status: 204,
                    reason: "No Content".into(),
                    headers: Vec::new(),
                };
                remote.on_net(at(ms), *id, OwnedIoEvent::HttpHead(head));
                remote.on_net(at(ms), *id, OwnedIoEvent::HttpEnd);
            }
            *answered = net.0.len();
        };
        for (i, b) in batches.iter().enumerate() {
            let r = wal.append(std::slice::from_ref(b), 0);
            assert!(r.error.is_none(), "{:?}", r.error);
            held.extend(wal.take_written());
            ms += 10;
            match acks[i % acks.len()] {
                Ack::Now => remote.wal_written(at(ms), &std::mem::take(&mut held)),
                Ack::Dropped => {
                    held.clear();
                    remote.wal_written(at(ms), &[]);
                }
                Ack::Later => {}
            }
            if i % pump_every == 0 {
                remote.pump(at(ms), &mut net, &meta);
            }
            if i % answer_every == 0 {
                answer(&mut remote, &net, &mut answered, ms);
                remote.pump(at(ms), &mut net, &meta);
            }
        }
        remote.wal_written(at(ms), &held);
        remote.close(at(ms));
        for _ in 0..10_000 {
            ms += 100;
            remote.pump(at(ms), &mut net, &meta);
            answer(&mut remote, &net, &mut answered, ms);
            if remote.is_idle() && answered == net.0.len() {
                break;
            }
        }
        let mut m = Metrics::default();
        remote.metrics(&mut m);
        drop(wal);
        let _ = std::fs::remove_dir_all(&d);
        (
            got(&net.0),
            counter(&m, "trawl_remote_storage_wal_records_handed_over_total"),
            counter(&m, "trawl_remote_storage_wal_records_read_total"),
            counter(&m, "prometheus_remote_storage_enqueue_retries_total"),
        )
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    fn load(targets: usize, series: usize, scrapes: usize) -> Vec<Batch> {
        run(
            &LoadSpec {
                targets,
                series,
                scrapes,
                wall: 1_800_000_000_000_000_000,
                huge_label: false,
            },
            None,
        )
    }

    #[test]
    fn a_caught_up_queue_reads_nothing_back_from_the_files() {
        let batches = load(5, 50, 12);
        // Requests answered only every third append: the queue (room for 100 samples)
        // is full time and again, and holds what it is handed meanwhile.
        let (sent, memory, files, full) = drive(&batches, &[Ack::Now], (1, 3), 8 << 20);
        assert_eq!(sent, want(&batches));
        assert!(memory > 0.0, "handed over: {memory}");
        assert!(full > 0.0, "the queue was never full");
        assert_eq!(files, 0.0, "read back");
    }

    #[test]
    fn records_past_the_bound_and_new_segments_come_from_the_files() {
        let batches = load(5, 50, 12);
        // Small segments: every few records a new one, read from the file.
        let (sent, memory, files, _) = drive(
            &batches,
            &[Ack::Now, Ack::Dropped, Ack::Later, Ack::Now],
            (2, 3),
            64 << 10,
        );
        assert_eq!(sent, want(&batches));
        assert!(
            memory > 0.0 && files > 0.0,
            "memory {memory}, files {files}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn every_sample_goes_out_once_whatever_the_mix(
            acks in proptest::collection::vec(
                prop_oneof![Just(Ack::Now), Just(Ack::Dropped), Just(Ack::Later)], 1..6),
            pump_every in 1usize..4,
            answer_every in 1usize..6,
            small in any::<bool>(),
        ) {
            let batches = load(3, 30, 8);
            let seg = if small { 64 << 10 } else { 8 << 20 };
            let (sent, ..) = drive(&batches, &acks, (pump_every, answer_every), seg);
            prop_assert_eq!(sent, want(&batches));
        }
    }
}
