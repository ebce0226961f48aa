//! The protobuf exposition parser against bodies built here from
//! `io.prometheus.client`'s `metrics.proto` with prost: each family gives the entries
//! Prometheus 3.x's `ProtobufParser` gives (help, unit, type, then `_count`, `_sum`,
//! quantiles or buckets with the implicit `+Inf`), the same samples as the text
//! rendering of the same data, whatever the chunking, and malformed bodies fail with a
//! byte offset instead of panicking.

use proptest::prelude::*;
use prost::Message;
use trawl_core::exposition::{BodyParser, Entry, FeedError, Format, select_format};

// `io.prometheus.client` (metrics.proto), the parts a scrape reads.
#[derive(Clone, PartialEq, Message)]
struct LabelPair {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
struct Gauge {
    #[prost(double, tag = "1")]
    value: f64,
}

#[derive(Clone, PartialEq, Message)]
struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(double, tag = "2")]
    value: f64,
    #[prost(message, optional, tag = "3")]
    timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
struct Counter {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(message, optional, tag = "2")]
    exemplar: Option<Exemplar>,
    #[prost(message, optional, tag = "3")]
    start_timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
struct Quantile {
    #[prost(double, tag = "1")]
    quantile: f64,
    #[prost(double, tag = "2")]
    value: f64,
}

#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(uint64, tag = "1")]
    sample_count: u64,
    #[prost(double, tag = "2")]
    sample_sum: f64,
    #[prost(message, repeated, tag = "3")]
    quantile: Vec<Quantile>,
    #[prost(message, optional, tag = "4")]
    start_timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
struct Bucket {
    #[prost(uint64, tag = "1")]
    cumulative_count: u64,
    #[prost(double, tag = "4")]
    cumulative_count_float: f64,
    #[prost(double, tag = "2")]
    upper_bound: f64,
    #[prost(message, optional, tag = "3")]
    exemplar: Option<Exemplar>,
}

#[derive(Clone, PartialEq, Message)]
struct BucketSpan {
    #[prost(sint32, tag = "1")]
    offset: i32,
    #[prost(uint32, tag = "2")]
    length: u32,
}

#[derive(Clone, PartialEq, Message)]
struct Histogram {
    #[prost(uint64, tag = "1")]
    sample_count: u64,
    #[prost(double, tag = "4")]
    sample_count_float: f64,
    #[prost(double, tag = "2")]
    sample_sum: f64,
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<Bucket>,
    #[prost(message, optional, tag = "15")]
    start_timestamp: Option<Timestamp>,
    #[prost(sint32, tag = "5")]
    schema: i32,
    #[prost(double, tag = "6")]
    zero_threshold: f64,
    #[prost(uint64, tag = "7")]
    zero_count: u64,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    positive_delta: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    counter: Option<Counter>,
    #[prost(message, optional, tag = "4")]
    summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    untyped: Option<Gauge>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
    #[prost(int64, tag = "6")]
    timestamp_ms: i64,
}

#[derive(Clone, PartialEq, Message)]
struct MetricFamily {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    help: String,
    #[prost(int32, tag = "3")]
    r#type: i32,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
    #[prost(string, tag = "5")]
    unit: String,
}

const CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn body(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        f.encode_length_delimited(&mut out).expect("encode");
    }
    out
}

fn lp(n: &str, v: &str) -> LabelPair {
    LabelPair {
        name: n.into(),
        value: v.into(),
    }
}

fn ts(ms: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

/// Every entry of a parse, as text: metadata, and samples as `labels value [ts]
/// [st=…] [# exemplar]` with labels sorted (the pipeline's view).
fn entries(body: &[u8], format: Format, chunk: usize) -> Result<Vec<String>, String> {
    let mut p = BodyParser::new(format);
    let mut out = Vec::new();
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        out.push(match e {
            Entry::Sample(s) => {
                let mut l: Vec<String> = trawl_core::exposition::exposed_labels(&s)
                    .map_err(|_| ())?
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                l.sort();
                let mut line = format!("{} {}", l.join(","), s.value);
                if let Some(t) = s.timestamp {
                    line.push_str(&format!(" @{t}"));
                }
                if let Some(st) = s.start {
                    line.push_str(&format!(" st={st}"));
                }
                if let Some(x) = &s.exemplar {
                    let xl: Vec<String> = x.labels().map(|(n, v)| format!("{n}={v}")).collect();
                    line.push_str(&format!(
                        " # {} {} {:?}",
                        xl.join(","),
                        x.value,
                        x.timestamp
                    ));
                }
                line
            }
            Entry::Help { name, text } => format!("HELP {name} {text}"),
            Entry::Type { name, kind } => format!("TYPE {name} {}", kind.as_str()),
            Entry::Unit { name, unit } => format!("UNIT {name} {unit}"),
            Entry::Comment => return Ok(()),
            Entry::Eof => "EOF".into(),
        });
        Ok(())
    };
    let show = |e: FeedError<()>| match e {
        FeedError::Parse(p) => p.to_string(),
        FeedError::Sink(()) => "sink".into(),
    };
    for c in body.chunks(chunk.max(1)) {
        p.feed(c, &mut sink).map_err(show)?;
    }
    p.finish(&mut sink).map_err(show)?;
    Ok(out)
}

fn sample_lines(v: &[String]) -> Vec<String> {
    v.iter()
        .filter(|l| {
            !l.starts_with("HELP ")
                && !l.starts_with("TYPE ")
                && !l.starts_with("UNIT ")
                && *l != "EOF"
        })
        .cloned()
        .collect()
}

#[test]
fn the_content_type_selects_the_protobuf_parser() {
    assert_eq!(select_format(Some(CT), None), Ok(Format::Protobuf));
}

#[test]
fn every_type_gives_the_entries_prometheus_gives() {
    let fams = vec![
        MetricFamily {
            name: "rq_total".into(),
            help: "Requests.".into(),
            r#type: 0,
            unit: String::new(),
            metric: vec![Metric {
                label: vec![lp("code", "200"), lp("path", "/a\"b\\c\nd")],
                counter: Some(Counter {
                    value: 10.0,
                    exemplar: Some(Exemplar {
                        label: vec![lp("trace_id", "abc")],
                        value: 0.5,
                        timestamp: ts(1_700_000_000_500),
                    }),
                    start_timestamp: ts(1_600_000_000_250),
                }),
                timestamp_ms: 1_700_000_001_000,
                ..Default::default()
            }],
        },
        MetricFamily {
            name: "temp_celsius".into(),
            help: String::new(),
            r#type: 1,
            unit: "celsius".into(),
            metric: vec![Metric {
                gauge: Some(Gauge { value: -3.5 }),
                ..Default::default()
            }],
        },
        MetricFamily {
            name: "lat".into(),
            help: "Latency.".into(),
            r#type: 2,
            unit: String::new(),
            metric: vec![Metric {
                label: vec![lp("h", "x")],
                summary: Some(Summary {
                    sample_count: 7,
                    sample_sum: 1.25,
                    quantile: vec![
                        Quantile {
                            quantile: 0.5,
                            value: 0.1,
                        },
                        Quantile {
                            quantile: 1.0,
                            value: 0.9,
                        },
                    ],
                    start_timestamp: None,
                }),
                ..Default::default()
            }],
        },
        MetricFamily {
            name: "size".into(),
            help: "Sizes.".into(),
            r#type: 4,
            unit: String::new(),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: 5,
                    sample_sum: 42.0,
                    bucket: vec![
                        Bucket {
                            cumulative_count: 2,
                            upper_bound: 1.0,
                            exemplar: Some(Exemplar {
                                label: vec![lp("trace_id", "def")],
                                value: 0.7,
                                timestamp: None,
                            }),
                            ..Default::default()
                        },
                        Bucket {
                            cumulative_count: 4,
                            upper_bound: 1e6,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }],
        },
        // An empty family is skipped; a UTF-8 name is quoted in the series text.
        MetricFamily {
            name: "empty".into(),
            help: "Nothing.".into(),
            r#type: 1,
            unit: String::new(),
            metric: vec![],
        },
        MetricFamily {
            name: "my.metric".into(),
            help: String::new(),
            r#type: 3,
            unit: String::new(),
            metric: vec![Metric {
                label: vec![lp("label.name", "v")],
                untyped: Some(Gauge { value: 1.0 }),
                ..Default::default()
            }],
        },
    ];
    let got = entries(&body(&fams), Format::Protobuf, usize::MAX).expect("parses");
    let want = vec![
        "HELP rq_total Requests.",
        "TYPE rq_total counter",
        "__name__=rq_total,code=200,path=/a\"b\\c\nd 10 @1700000001000 st=1600000000250 # trace_id=abc 0.5 Some(1700000000500)",
        "HELP temp_celsius ",
        "UNIT temp_celsius celsius",
        "TYPE temp_celsius gauge",
        "__name__=temp_celsius -3.5",
        "HELP lat Latency.",
        "TYPE lat summary",
        "__name__=lat_count,h=x 7",
        "__name__=lat_sum,h=x 1.25",
        "__name__=lat,h=x,quantile=0.5 0.1",
        "__name__=lat,h=x,quantile=1.0 0.9",
        "HELP size Sizes.",
        "TYPE size histogram",
        "__name__=size_count 5",
        "__name__=size_sum 42",
        "__name__=size_bucket,le=1.0 2 # trace_id=def 0.7 None",
        "__name__=size_bucket,le=1e+06 4",
        "__name__=size_bucket,le=+Inf 5",
        "HELP my.metric ",
        "TYPE my.metric unknown",
        "__name__=my.metric,label.name=v 1",
    ];
    assert_eq!(got, want);
    // The same, fed byte by byte and in odd chunks.
    for chunk in [1, 3, 17, 100] {
        assert_eq!(
            entries(&body(&fams), Format::Protobuf, chunk).expect("parses"),
            want,
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_native_only_histogram_is_its_count_sum_and_inf_bucket() {
    // 3.x with native histograms not scraped: a histogram without classic buckets is
    // parsed as a classic one with only the `+Inf` bucket.
    let fams = vec![MetricFamily {
        name: "nh".into(),
        help: String::new(),
        r#type: 4,
        unit: String::new(),
        metric: vec![Metric {
            histogram: Some(Histogram {
                sample_count: 3,
                sample_sum: 2.5,
                schema: 3,
                zero_threshold: 1e-128,
                zero_count: 1,
                positive_span: vec![BucketSpan {
                    offset: 0,
                    length: 2,
                }],
                positive_delta: vec![1, 0],
                ..Default::default()
            }),
            ..Default::default()
        }],
    }];
    let got = sample_lines(&entries(&body(&fams), Format::Protobuf, usize::MAX).expect("parses"));
    assert_eq!(
        got,
        vec![
            "__name__=nh_count 3",
            "__name__=nh_sum 2.5",
            "__name__=nh_bucket,le=+Inf 3"
        ]
    );
}

#[test]
fn malformed_bodies_fail_with_a_byte_offset() {
    let good = body(&[MetricFamily {
        name: "a".into(),
        help: "h".into(),
        r#type: 1,
        unit: String::new(),
        metric: vec![Metric {
            gauge: Some(Gauge { value: 1.0 }),
            ..Default::default()
        }],
    }]);
    // Cut short.
    let e = entries(&good[..good.len() - 3], Format::Protobuf, usize::MAX).unwrap_err();
    assert!(
        e.contains("ends inside a metric family") && e.contains("(byte "),
        "{e}"
    );
    // An unknown type.
    let bad = body(&[MetricFamily {
        name: "a".into(),
        help: String::new(),
        r#type: 9,
        unit: String::new(),
        metric: vec![Metric::default()],
    }]);
    let e = entries(&bad, Format::Protobuf, usize::MAX).unwrap_err();
    assert!(e.contains("unknown metric type"), "{e}");
    // A length past the body inside the message.
    let mut broken = good.clone();
    broken[2] = 0x7f;
    assert!(entries(&broken, Format::Protobuf, usize::MAX).is_err());
}

fn arb_family() -> impl Strategy<Value = MetricFamily> {
    let name = prop::sample::select(vec!["a", "b_total", "c.d", "e"]);
    let labels = prop::collection::vec(
        (
            prop::sample::select(vec!["x", "y", "z.w"]),
            "[a-z\"\\\\\n]{0,4}",
        ),
        0..3,
    )
    .prop_map(|v| {
        let mut seen = std::collections::BTreeSet::new();
        v.into_iter()
            .filter(|(n, _)| seen.insert(*n))
            .map(|(n, v)| lp(n, &v))
            .collect::<Vec<_>>()
    });
    let metric = (
        labels,
        -1e6f64..1e6,
        prop::option::of(1i64..2_000_000_000_000),
        prop::collection::vec(0.001f64..100.0, 0..4),
    );
    (
        name,
        prop::sample::select(vec![0, 1, 2, 3, 4]),
        prop::collection::vec(metric, 1..4),
    )
        .prop_map(|(name, t, ms)| MetricFamily {
            name: name.into(),
            help: "help \\ text".into(),
            r#type: t,
            unit: String::new(),
            metric: ms
                .into_iter()
                .enumerate()
                .map(|(i, (mut label, v, ts, mut bounds))| {
                    // Distinct label sets within the family.
                    label.push(lp("i", &i.to_string()));
                    bounds.sort_by(f64::total_cmp);
                    bounds.dedup();
                    let mut m = Metric {
                        label,
                        timestamp_ms: ts.unwrap_or(0),
                        ..Default::default()
                    };
                    match t {
                        0 => {
                            m.counter = Some(Counter {
                                value: v.abs(),
                                ..Default::default()
                            })
                        }
                        1 => m.gauge = Some(Gauge { value: v }),
                        3 => m.untyped = Some(Gauge { value: v }),
                        2 => {
                            m.summary = Some(Summary {
                                sample_count: 3,
                                sample_sum: v,
                                quantile: bounds
                                    .iter()
                                    .map(|b| Quantile {
                                        quantile: b / 100.0,
                                        value: *b,
                                    })
                                    .collect(),
                                start_timestamp: None,
                            })
                        }
                        _ => {
                            m.histogram = Some(Histogram {
                                sample_count: 9,
                                sample_sum: v,
                                bucket: bounds
                                    .iter()
                                    .enumerate()
                                    .map(|(k, b)| Bucket {
                                        cumulative_count: k as u64,
                                        upper_bound: *b,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                        }
                    }
                    m
                })
                .collect(),
        })
}

/// The text exposition of families, as client_golang writes it.
fn text(fams: &[MetricFamily]) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let series = |name: &str, labels: &[LabelPair], extra: Option<(&str, String)>| {
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|l| format!("\"{}\"=\"{}\"", l.name, esc(&l.value)))
            .collect();
        if let Some((n, v)) = extra {
            pairs.push(format!("{n}=\"{v}\""));
        }
        format!(
            "{{\"{name}\"{}{}}}",
            if pairs.is_empty() { "" } else { "," },
            pairs.join(",")
        )
    };
    let f = |v: f64| trawl_core::goquote::format_go_float(v);
    let le = |v: f64| trawl_core::exposition::float::format_openmetrics_float(v);
    let mut out = String::new();
    for fam in fams {
        let kind = ["counter", "gauge", "summary", "untyped", "histogram"][fam.r#type as usize];
        out.push_str(&format!("# TYPE \"{}\" {kind}\n", fam.name));
        for m in &fam.metric {
            let t = if m.timestamp_ms != 0 {
                format!(" {}", m.timestamp_ms)
            } else {
                String::new()
            };
            let n = &fam.name;
            match fam.r#type {
                0 => out.push_str(&format!(
                    "{} {}{t}\n",
                    series(n, &m.label, None),
                    f(m.counter.as_ref().map_or(0.0, |c| c.value))
                )),
                1 => out.push_str(&format!(
                    "{} {}{t}\n",
                    series(n, &m.label, None),
                    f(m.gauge.as_ref().map_or(0.0, |c| c.value))
                )),
                3 => out.push_str(&format!(
                    "{} {}{t}\n",
                    series(n, &m.label, None),
                    f(m.untyped.as_ref().map_or(0.0, |c| c.value))
                )),
                2 => {
                    let s = m.summary.clone().unwrap_or_default();
                    out.push_str(&format!(
                        "{} {}{t}\n",
                        series(&format!("{n}_count"), &m.label, None),
                        s.sample_count
                    ));
                    out.push_str(&format!(
                        "{} {}{t}\n",
                        series(&format!("{n}_sum"), &m.label, None),
                        f(s.sample_sum)
                    ));
                    for q in &s.quantile {
                        out.push_str(&format!(
                            "{} {}{t}\n",
                            series(n, &m.label, Some(("quantile", le(q.quantile)))),
                            f(q.value)
                        ));
                    }
                }
                _ => {
                    let h = m.histogram.clone().unwrap_or_default();
                    out.push_str(&format!(
                        "{} {}{t}\n",
                        series(&format!("{n}_count"), &m.label, None),
                        h.sample_count
                    ));
                    out.push_str(&format!(
                        "{} {}{t}\n",
                        series(&format!("{n}_sum"), &m.label, None),
                        f(h.sample_sum)
                    ));
                    for b in &h.bucket {
                        out.push_str(&format!(
                            "{} {}{t}\n",
                            series(
                                &format!("{n}_bucket"),
                                &m.label,
                                Some(("le", le(b.upper_bound)))
                            ),
                            b.cumulative_count
                        ));
                    }
                    out.push_str(&format!(
                        "{} {}{t}\n",
                        series(
                            &format!("{n}_bucket"),
                            &m.label,
                            Some(("le", "+Inf".into()))
                        ),
                        h.sample_count
                    ));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A protobuf body and its text rendering give the same samples, in any chunking.
    #[test]
    fn protobuf_and_text_agree(fams in prop::collection::vec(arb_family(), 1..4), chunk in 1usize..64) {
        // Family names must not repeat (one family per name in a body).
        let mut seen = std::collections::BTreeSet::new();
        let fams: Vec<MetricFamily> = fams.into_iter().filter(|f| seen.insert(f.name.clone())).collect();
        let pb = entries(&body(&fams), Format::Protobuf, chunk).map_err(TestCaseError::fail)?;
        let tx = entries(text(&fams).as_bytes(), Format::PromText, usize::MAX).map_err(TestCaseError::fail)?;
        prop_assert_eq!(sample_lines(&pb), sample_lines(&tx));
    }

    /// Arbitrary bytes never panic the parser, and chunking never changes the verdict.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300), chunk in 1usize..40) {
        let whole = entries(&data, Format::Protobuf, usize::MAX);
        let cut = entries(&data, Format::Protobuf, chunk);
        prop_assert_eq!(whole.is_ok(), cut.is_ok());
        if let (Ok(a), Ok(b)) = (whole, cut) {
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn long_names_and_values_take_the_text_form_and_read_the_same() {
    // Past 127 bytes a length is no longer one byte: the series is written as text.
    let long_value = "v".repeat(200);
    let long_name = format!("n{}", "x".repeat(130));
    let fams = vec![MetricFamily {
        name: long_name.clone(),
        help: String::new(),
        r#type: 1,
        unit: String::new(),
        metric: vec![
            Metric {
                label: vec![lp("a", &long_value), lp("b.c", "q\"uote")],
                gauge: Some(Gauge { value: 1.0 }),
                ..Default::default()
            },
            Metric {
                label: vec![lp("a", "short")],
                gauge: Some(Gauge { value: 2.0 }),
                ..Default::default()
            },
        ],
    }];
    let got = sample_lines(&entries(&body(&fams), Format::Protobuf, 7).expect("parses"));
    assert_eq!(
        got,
        vec![
            format!("__name__={long_name},a={long_value},b.c=q\"uote 1"),
            format!("__name__={long_name},a=short 2"),
        ]
    );
}
