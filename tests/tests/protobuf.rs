//! The protobuf exposition parser against bodies built here from
//! `io.prometheus.client`'s `metrics.proto` with prost: each family gives the entries
//! Prometheus 3.x's `ProtobufParser` gives (help, unit, type, then `_count`, `_sum`,
//! quantiles or buckets with the implicit `+Inf`), the same samples as the text
//! rendering of the same data, whatever the chunking, and malformed bodies fail with a
//! byte offset instead of panicking.

use proptest::prelude::*;
use trawl_core::exposition::{
    BodyParser, Entry, FeedError, Format, HistogramOptions, select_format,
};

#[path = "support/metrics_proto.rs"]
mod metrics_proto;
use metrics_proto::*;

/// Every entry of a parse, as text: metadata, and samples as `labels value [ts]
/// [st=…] [# exemplar]` with labels sorted (the pipeline's view).
fn entries(body: &[u8], format: Format, chunk: usize) -> Result<Vec<String>, String> {
    entries_with(body, format, chunk, HistogramOptions::default())
}

/// A sample's labels as `name=value` pairs, sorted, joined by commas.
fn sorted_labels(s: &trawl_core::exposition::Sample<'_>) -> Result<String, ()> {
    let mut l: Vec<String> = trawl_core::exposition::exposed_labels(s)
        .map_err(|_| ())?
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    l.sort();
    Ok(l.join(","))
}

/// ` # labels value timestamp` of an exemplar.
fn show_exemplar(x: &trawl_core::exposition::Exemplar<'_>) -> String {
    let xl: Vec<String> = x.labels().map(|(n, v)| format!("{n}={v}")).collect();
    format!(" # {} {} {:?}", xl.join(","), x.value, x.timestamp)
}

/// [`entries`] with histograms taken as `opts` says; a native histogram is shown as
/// `labels {histogram} [@ts] [# exemplar …]`.
fn entries_with(
    body: &[u8],
    format: Format,
    chunk: usize,
    opts: HistogramOptions,
) -> Result<Vec<String>, String> {
    let mut p = BodyParser::new(format).histograms(opts);
    let mut out = Vec::new();
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        out.push(match e {
            Entry::Sample(s) => {
                let mut line = format!("{} {}", sorted_labels(&s)?, s.value);
                if let Some(t) = s.timestamp {
                    line.push_str(&format!(" @{t}"));
                }
                if let Some(st) = s.start.filter(|&t| t != 0) {
                    line.push_str(&format!(" st={st}"));
                }
                if let Some(x) = &s.exemplar {
                    line.push_str(&show_exemplar(x));
                }
                line
            }
            Entry::Histogram(h) => {
                let mut line = format!("{} {}", sorted_labels(&h.sample)?, h.histogram);
                if let Some(t) = h.sample.timestamp {
                    line.push_str(&format!(" @{t}"));
                }
                for x in &h.exemplars {
                    line.push_str(&show_exemplar(x));
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

const NATIVE: HistogramOptions = HistogramOptions {
    native: true,
    keep_classic: false,
    nhcb: false,
    start_timestamps: false,
};

/// A family of one histogram metric with labels `a="b"`.
fn hist_family(kind: i32, h: Histogram) -> Vec<MetricFamily> {
    vec![MetricFamily {
        name: "nh".into(),
        help: String::new(),
        r#type: kind,
        unit: String::new(),
        metric: vec![Metric {
            label: vec![lp("a", "b")],
            histogram: Some(h),
            ..Default::default()
        }],
    }]
}

fn native_int() -> Histogram {
    Histogram {
        sample_count: 7,
        sample_sum: 12.5,
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 1,
        // Buckets 0..3 (one of them empty) and -2; deltas 2,-2,+1,+2 → 2,0,1,3.
        positive_span: vec![BucketSpan {
            offset: 0,
            length: 4,
        }],
        positive_delta: vec![2, -2, 1, 2],
        negative_span: vec![BucketSpan {
            offset: -2,
            length: 1,
        }],
        negative_delta: vec![0],
        bucket: vec![
            Bucket {
                cumulative_count: 3,
                upper_bound: 1.0,
                ..Default::default()
            },
            Bucket {
                cumulative_count: 6,
                upper_bound: 2.0,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[test]
fn native_histograms_come_whole_and_compacted_when_scraped() {
    let got = sample_lines(
        &entries_with(
            &body(&hist_family(4, native_int())),
            Format::Protobuf,
            usize::MAX,
            NATIVE,
        )
        .expect("parses"),
    );
    // The empty bucket 1 is compacted away (Compact(0)); the negative span had only an
    // empty bucket, so it is gone.
    assert_eq!(
        got,
        vec![
            "__name__=nh,a=b {count:7, sum:12.5, schema:1, zero:1@0.001, positive:[0:1 1:2] {2 1 3}}"
        ]
    );
    // Without scrape_native_histograms the classic series, as before.
    let classic = sample_lines(
        &entries(
            &body(&hist_family(4, native_int())),
            Format::Protobuf,
            usize::MAX,
        )
        .unwrap(),
    );
    assert_eq!(classic.len(), 5, "{classic:?}");
}

#[test]
fn classic_series_follow_the_native_histogram_when_asked_for() {
    let opts = HistogramOptions {
        keep_classic: true,
        ..NATIVE
    };
    let got = sample_lines(
        &entries_with(
            &body(&hist_family(4, native_int())),
            Format::Protobuf,
            7,
            opts,
        )
        .unwrap(),
    );
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(got[0].starts_with("__name__=nh,a=b {count:7"), "{got:?}");
    assert_eq!(
        &got[1..],
        [
            "__name__=nh_count,a=b 7",
            "__name__=nh_sum,a=b 12.5",
            "__name__=nh_bucket,a=b,le=1.0 3",
            "__name__=nh_bucket,a=b,le=2.0 6",
            "__name__=nh_bucket,a=b,le=+Inf 7",
        ]
    );
    // A native histogram without classic buckets has no classic series to add.
    let mut h = native_int();
    h.bucket.clear();
    let got = sample_lines(
        &entries_with(
            &body(&hist_family(4, h)),
            Format::Protobuf,
            usize::MAX,
            opts,
        )
        .unwrap(),
    );
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn float_and_gauge_histograms() {
    let h = Histogram {
        sample_count_float: 2.5,
        sample_sum: 1.0,
        schema: 0,
        zero_threshold: 0.5,
        zero_count_float: 0.5,
        positive_span: vec![BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_count: vec![1.5, 0.5],
        ..Default::default()
    };
    let got = sample_lines(
        &entries_with(
            &body(&hist_family(5, h)),
            Format::Protobuf,
            usize::MAX,
            NATIVE,
        )
        .unwrap(),
    );
    assert_eq!(
        got,
        vec![
            "__name__=nh,a=b {float count:2.5, sum:1, schema:0, hint:Gauge, zero:0.5@0.5, positive:[1:2] {1.5 0.5}}"
        ]
    );
}

#[test]
fn classic_protobuf_histograms_convert_to_custom_buckets() {
    let mut h = native_int();
    // Classic only: no native parts.
    h.positive_span.clear();
    h.positive_delta.clear();
    h.negative_span.clear();
    h.negative_delta.clear();
    h.zero_count = 0;
    h.zero_threshold = 0.0;
    h.bucket[0].exemplar = Some(Exemplar {
        label: vec![lp("trace", "x")],
        value: 0.5,
        timestamp: ts(1000),
    });
    let opts = HistogramOptions {
        native: true,
        keep_classic: false,
        nhcb: true,
        start_timestamps: false,
    };
    let fams = hist_family(4, h);
    let got = sample_lines(&entries_with(&body(&fams), Format::Protobuf, 5, opts).unwrap());
    assert_eq!(
        got,
        vec![
            "__name__=nh,a=b {count:7, sum:12.5, schema:-53, positive:[0:3] {3 3 1}, bounds:[1 2]} # trace=x 0.5 Some(1000)"
        ]
    );
    // Kept classic series come first, then the converted histogram (3.x order).
    let keep = HistogramOptions {
        keep_classic: true,
        ..opts
    };
    let got = sample_lines(&entries_with(&body(&fams), Format::Protobuf, 5, keep).unwrap());
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(got[0].starts_with("__name__=nh_count"), "{got:?}");
    assert!(got[5].contains("schema:-53"), "{got:?}");
}

#[test]
fn native_exemplars_need_a_timestamp() {
    let mut h = native_int();
    h.exemplars = vec![
        Exemplar {
            label: vec![lp("trace", "1")],
            value: 1.0,
            timestamp: ts(5),
        },
        Exemplar {
            label: vec![lp("trace", "2")],
            value: 2.0,
            timestamp: None,
        },
    ];
    let got = sample_lines(
        &entries_with(
            &body(&hist_family(4, h)),
            Format::Protobuf,
            usize::MAX,
            NATIVE,
        )
        .unwrap(),
    );
    assert!(got[0].ends_with("# trace=1 1 Some(5)"), "{got:?}");
    assert!(!got[0].contains("trace=2"), "{got:?}");
}

#[test]
fn inconsistent_spans_fail_the_body_as_prometheus_words_it() {
    let mut h = native_int();
    h.positive_delta.pop();
    let err = entries_with(
        &body(&hist_family(4, h)),
        Format::Protobuf,
        usize::MAX,
        NATIVE,
    )
    .unwrap_err();
    assert!(
        err.starts_with("histogram \"nh\": positive side: spans require 4 buckets, have 3"),
        "{err}"
    );
}

fn arb_native() -> impl Strategy<Value = Histogram> {
    (
        -4i32..9,
        prop::collection::vec((0i32..3, 0u32..4), 0..4),
        prop::collection::vec(0u64..6, 0..16),
        any::<bool>(),
    )
        .prop_map(|(schema, spans, pool, float)| {
            let mut h = Histogram {
                schema,
                sample_sum: 1.5,
                zero_threshold: 1e-3,
                ..Default::default()
            };
            let mut counts = Vec::new();
            for (i, (offset, length)) in spans.into_iter().enumerate() {
                h.positive_span.push(BucketSpan {
                    offset: if i == 0 { offset - 1 } else { offset },
                    length,
                });
                for _ in 0..length {
                    counts.push(pool.get(counts.len()).copied().unwrap_or(1));
                }
            }
            let total: u64 = counts.iter().sum();
            if float {
                h.sample_count_float = total as f64 + 0.5;
                h.zero_count_float = 0.5;
                h.positive_count = counts.iter().map(|&c| c as f64).collect();
            } else {
                h.sample_count = total;
                let mut prev = 0i64;
                h.positive_delta = counts
                    .iter()
                    .map(|&c| {
                        let d = c as i64 - prev;
                        prev = c as i64;
                        d
                    })
                    .collect();
            }
            h
        })
}

proptest! {
    /// Any native histogram parses the same in any chunking, and keeps its non-empty
    /// buckets at their indices.
    #[test]
    fn native_histograms_parse_the_same_in_any_chunking(h in arb_native(), chunk in 1usize..64) {
        let b = body(&hist_family(4, h.clone()));
        let whole = entries_with(&b, Format::Protobuf, usize::MAX, NATIVE).unwrap();
        let pieces = entries_with(&b, Format::Protobuf, chunk, NATIVE).unwrap();
        prop_assert_eq!(&whole, &pieces);
        let line = sample_lines(&whole).pop().unwrap();
        // The non-empty buckets, as the model sees them.
        let mut model = Vec::new();
        let mut k = 0;
        for s in &h.positive_span {
            for _ in 0..s.length {
                let c = if h.positive_count.is_empty() {
                    h.positive_delta[..=k].iter().sum::<i64>() as f64
                } else {
                    h.positive_count[k]
                };
                if c != 0.0 { model.push(c); }
                k += 1;
            }
        }
        let shown: Vec<String> = model.iter().map(|c| format!("{c}")).collect();
        let has_native = !h.positive_span.is_empty();
        if has_native {
            prop_assert!(line.contains(&format!("{{{}}}", shown.join(" "))), "{} vs {:?}", line, shown);
        }
    }
}
