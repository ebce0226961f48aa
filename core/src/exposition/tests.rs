use super::*;
use proptest::prelude::*;

/// Every entry of `body` as text, parsing it in the given chunk sizes (cycled).
fn entries(body: &[u8], format: Format, chunks: &[usize]) -> Result<Vec<String>, String> {
    let mut p = BodyParser::new(format);
    let mut out = Vec::new();
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        out.push(match &e {
            Entry::Sample(s) => format!(
                "{:?} labels={:?} bits={:x}",
                e,
                s.labels().collect::<Vec<_>>(),
                s.value.to_bits()
            ),
            _ => format!("{e:?}"),
        });
        Ok(())
    };
    let show = |e: FeedError<()>| match e {
        FeedError::Parse(p) => p.to_string(),
        FeedError::Sink(()) => "sink".to_owned(),
    };
    let mut rest = body;
    let mut k = 0;
    while !rest.is_empty() {
        let n = chunks
            .get(k % chunks.len().max(1))
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        p.feed(&rest[..n], &mut sink).map_err(show)?;
        rest = &rest[n..];
        k += 1;
    }
    p.finish(&mut sink).map_err(show)?;
    Ok(out)
}

/// Series text, decoded labels, value bits, timestamp.
type Parsed = (String, Vec<(String, String)>, u64, Option<i64>);

fn samples(body: &str, format: Format) -> Vec<Parsed> {
    let mut p = BodyParser::new(format);
    let mut out = Vec::new();
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        if let Entry::Sample(s) = e {
            out.push((
                s.series.to_owned(),
                s.labels()
                    .map(|(n, v)| (n.into_owned(), v.into_owned()))
                    .collect(),
                s.value.to_bits(),
                s.timestamp,
            ));
        }
        Ok(())
    };
    p.feed(body.as_bytes(), &mut sink).unwrap();
    p.finish(&mut sink).unwrap();
    out
}

fn error(body: &str, format: Format) -> ParseError {
    match entries(body.as_bytes(), format, &[]) {
        Err(e) => {
            let mut p = BodyParser::new(format);
            let mut sink = |_: Entry<'_>| -> Result<(), ()> { Ok(()) };
            match p
                .feed(body.as_bytes(), &mut sink)
                .and_then(|()| p.finish(&mut sink))
            {
                Err(FeedError::Parse(pe)) => pe,
                other => panic!("{e}: {other:?}"),
            }
        }
        Ok(v) => panic!("{body:?} parsed: {v:?}"),
    }
}

#[test]
fn text_samples_labels_values_timestamps() {
    let got = samples(
        "# HELP a Some help\\nmore\n# TYPE a counter\na{b=\"c\",d=\"e\\\"f\\\\g\\n\"} 1.5 1700000000000\n  x\t{ y = \"1\" z=\"2\", } +Inf\r\nnan_metric NaN\nneg 1 -5\n",
        Format::PromText,
    );
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].0, "a{b=\"c\",d=\"e\\\"f\\\\g\\n\"}");
    assert_eq!(
        got[0].1,
        vec![("b".into(), "c".into()), ("d".into(), "e\"f\\g\n".into())]
    );
    assert_eq!(got[0].2, 1.5f64.to_bits());
    assert_eq!(got[0].3, Some(1_700_000_000_000));
    assert_eq!(got[1].0, "x\t{ y = \"1\" z=\"2\", }");
    assert_eq!(
        got[1].1,
        vec![("y".into(), "1".into()), ("z".into(), "2".into())]
    );
    assert_eq!(got[1].2, f64::INFINITY.to_bits());
    assert_eq!(got[2].2, float::NORMAL_NAN);
    assert_eq!(got[3].3, Some(-5));
}

#[test]
fn text_metadata() {
    let e = entries(
        b"# HELP a x\\ny\\\"z\n# HELP b\n# TYPE c untyped\n#plain\n# other words\n",
        Format::PromText,
        &[],
    )
    .unwrap();
    assert_eq!(
        e,
        vec![
            "Help { name: \"a\", text: \"x\\ny\\\\\\\"z\" }",
            "Help { name: \"b\", text: \"\" }",
            "Type { name: \"c\", kind: Unknown }",
            "Comment",
            "Comment",
        ]
    );
}

#[test]
fn raw_newline_in_a_text_label_value_is_part_of_the_value() {
    let got = samples("a{b=\"x\ny\"} 1\nc 2\n", Format::PromText);
    assert_eq!(got[0].1, vec![("b".into(), "x\ny".into())]);
    assert_eq!(got[1].0, "c");
    // And the line count moves on: an error on the next line names line 3.
    let e = error("a{b=\"x\ny\"} 1\nc 2 x\n", Format::PromText);
    assert_eq!((e.line, e.column), (3, 5), "{e}");
}

#[test]
fn errors_name_line_and_column() {
    let e = error("a 1\nb{c=\"d\",,e=\"f\"} 2\n", Format::PromText);
    assert_eq!((e.line, e.column), (2, 9), "{e}");
    assert_eq!(e.message, "expected label name, got \",\"");
    assert_eq!(
        e.to_string(),
        "expected label name, got \",\" (line 2, column 9)"
    );
    let e = error("a 0x1p3\n", Format::PromText);
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (1, 3, "unsupported character in float")
    );
    let e = error("# TYPE a counter \n", Format::PromText);
    assert_eq!(e.message, "invalid metric type \"counter \"");
    let e = error("a 1\n", Format::OpenMetrics);
    assert_eq!(e.message, "data does not end with # EOF");
    let e = error("a 1\n# EOF\nb 2\n", Format::OpenMetrics);
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "unexpected data after # EOF")
    );
    // Prometheus >= 2.43 takes an exemplar on any series.
    let got = samples(
        "# TYPE a gauge\na 1 # {x=\"y\"} 1\na_count 2 # {x=\"z\"} 1 5\n# EOF\n",
        Format::OpenMetrics,
    );
    assert_eq!(got.len(), 2);
}

/// Names as a parse gives them: (metric name, labels).
fn names(body: &str, format: Format) -> Vec<(String, Vec<(String, String)>)> {
    let mut p = BodyParser::new(format);
    let mut out = Vec::new();
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        if let Entry::Sample(s) = e {
            out.push((
                s.name.clone().into_owned(),
                s.labels()
                    .map(|(n, v)| (n.into_owned(), v.into_owned()))
                    .collect(),
            ));
        }
        Ok(())
    };
    p.feed(body.as_bytes(), &mut sink)
        .and_then(|()| p.finish(&mut sink))
        .unwrap_or_else(|e| panic!("{body:?}: {e:?}"));
    out
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn quoted_utf8_names_in_both_formats() {
    let text = concat!(
        "# HELP \"go.gc\" help text\n",
        "# TYPE \"go.gc\" gauge\n",
        "{\"go.gc\",a=\"b\"} 1\n",
        "{ \"go.gc\" , \"label.name\" = \"v\" , } 2\n",
        "{a=\"b\",\"after.labels\"} 3\n",
        "{\"esc\\\"aped\\\\name\", \"l\\nn\"=\"x\"} 4\n",
        "plain{\"quoted.label\"=\"1\"} 5\n",
    );
    let got = names(text, Format::PromText);
    assert_eq!(
        got,
        vec![
            ("go.gc".into(), pairs(&[("a", "b")])),
            ("go.gc".into(), pairs(&[("label.name", "v")])),
            ("after.labels".into(), pairs(&[("a", "b")])),
            ("esc\"aped\\name".into(), pairs(&[("l\nn", "x")])),
            ("plain".into(), pairs(&[("quoted.label", "1")])),
        ]
    );
    let all = entries(text.as_bytes(), Format::PromText, &[]).unwrap();
    assert!(all[0].contains("name: \"go.gc\""), "{all:?}");
    assert!(all[1].contains("name: \"go.gc\", kind: Gauge"), "{all:?}");

    let om = concat!(
        "# TYPE \"a.b\" counter\n",
        "# UNIT \"a.b_seconds\" seconds\n",
        "{\"a.b_total\",\"c.d\"=\"e\"} 1 # {\"trace.id\"=\"t\"} 1\n",
        "{\"a.b_total\",x=\"y\",} 2\n",
        "# EOF\n",
    );
    assert_eq!(
        names(om, Format::OpenMetrics),
        vec![
            ("a.b_total".into(), pairs(&[("c.d", "e")])),
            ("a.b_total".into(), pairs(&[("x", "y")])),
        ]
    );
    for (body, format, message) in [
        ("{a=\"ok\"} 1\n", Format::PromText, "metric name not set"),
        ("a{\"b\"} 1\n", Format::PromText, "metric name already set"),
        (
            "{\"a\",\"b\"} 1\n",
            Format::PromText,
            "metric name already set",
        ),
        (
            "{\"a\" \"b\"=\"c\"} 1\n",
            Format::PromText,
            "expected equal",
        ),
        (
            "{a=\"ok\"} 1\n# EOF\n",
            Format::OpenMetrics,
            "metric name not set",
        ),
        (
            "a{\"b\"} 1\n# EOF\n",
            Format::OpenMetrics,
            "metric name already set",
        ),
        (
            "a_total 1 # {\"x\"} 1\n# EOF\n",
            Format::OpenMetrics,
            "expected label name",
        ),
    ] {
        assert_eq!(error(body, format).message, message, "{body:?}");
    }
}

#[test]
fn le_and_quantile_values_are_normalised_after_their_type() {
    let text = concat!(
        "# TYPE h histogram\n",
        "h_bucket{le=\"1\"} 1\n",
        "h_bucket{le=\"0x1p-3\"} 1\n",
        "h_bucket{le=\"+inf\"} 1\n",
        "h_bucket{le=\"1e6\"} 1\n",
        "h_bucket{le=\"x\"} 1\n",
        "h_bucket{quantile=\"1\"} 1\n",
        "# TYPE s summary\n",
        "s{quantile=\"0\"} 1\n",
        "s{quantile=\"0.50\",le=\"1\"} 1\n",
        "# TYPE c counter\n",
        "c{le=\"10\"} 1\n",
    );
    let got: Vec<Vec<(String, String)>> = names(text, Format::PromText)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        got,
        vec![
            pairs(&[("le", "1.0")]),
            pairs(&[("le", "0.125")]),
            pairs(&[("le", "+Inf")]),
            pairs(&[("le", "1e+06")]),
            pairs(&[("le", "x")]),
            pairs(&[("quantile", "1")]),
            pairs(&[("quantile", "0.0")]),
            pairs(&[("quantile", "0.5"), ("le", "1")]),
            pairs(&[("le", "10")]),
        ]
    );
    // The same in OpenMetrics; the series text (the cache key) stays as written.
    let om = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n# EOF\n";
    assert_eq!(names(om, Format::OpenMetrics)[0].1, pairs(&[("le", "1.0")]));
    assert_eq!(samples(om, Format::OpenMetrics)[0].0, "h_bucket{le=\"1\"}");
}

#[test]
fn openmetrics_timestamps_exemplars_and_eof() {
    let body = "# TYPE a counter\na_total{x=\"1\"} 3 1520879607.789 # {trace=\"t\"} 0.5 1520879607.7\n# EOF";
    let got = samples(body, Format::OpenMetrics);
    assert_eq!(got[0].3, Some(1_520_879_607_789));
    let mut p = BodyParser::new(Format::OpenMetrics);
    let mut ex = None;
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        if let Entry::Sample(s) = e {
            let x = s.exemplar.expect("exemplar");
            ex = Some((
                x.labels()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>(),
                x.value,
                x.timestamp,
            ));
        }
        Ok(())
    };
    p.feed(body.as_bytes(), &mut sink).unwrap();
    p.finish(&mut sink).unwrap();
    assert_eq!(
        ex,
        Some((vec!["trace=t".to_owned()], 0.5, Some(1_520_879_607_700)))
    );
}

#[test]
fn content_type_selection_follows_prometheus_3() {
    use crate::config::ScrapeProtocol as P;
    let ok = |ct: &str| select_format(Some(ct), None);
    assert_eq!(
        ok("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Ok(Format::OpenMetrics)
    );
    assert_eq!(ok("Application/OpenMetrics-Text"), Ok(Format::OpenMetrics));
    assert_eq!(ok("text/plain; version=0.0.4"), Ok(Format::PromText));
    assert_eq!(
        select_format(None, None).unwrap_err(),
        "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target"
    );
    assert_eq!(
        ok("application/json").unwrap_err(),
        "received unsupported Content-Type \"application/json\" and no fallback_scrape_protocol specified for target"
    );
    assert_eq!(
        ok("this is ;; not a media type").unwrap_err(),
        "cannot parse Content-Type \"this is ;; not a media type\" and no fallback_scrape_protocol for target"
    );
    assert_eq!(
        select_format(Some("application/json"), Some(P::OpenMetricsText1_0_0)),
        Ok(Format::OpenMetrics)
    );
    assert_eq!(
        select_format(None, Some(P::PrometheusText0_0_4)),
        Ok(Format::PromText)
    );
}

#[test]
fn a_line_longer_than_the_bound_fails_instead_of_growing() {
    let mut p = BodyParser::new(Format::PromText).max_line(64);
    let mut sink = |_: Entry<'_>| -> Result<(), ()> { Ok(()) };
    let long = format!("a{{b=\"{}\"}} 1\n", "x".repeat(100));
    let mut failed = None;
    for c in long.as_bytes().chunks(16) {
        if let Err(e) = p.feed(c, &mut sink) {
            failed = Some(e);
            break;
        }
    }
    match failed {
        Some(FeedError::Parse(e)) => assert_eq!(e.message, "line longer than 64 bytes"),
        other => panic!("{other:?}"),
    }
}

fn arb_text_line() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["a", "b_total", "c:d", "_e"]);
    let value = prop::sample::select(vec!["1", "-2.5", "NaN", "+Inf", "1e3", ".5"]);
    let label_value = prop::sample::select(vec![
        "",
        "x",
        "a b",
        "q\\\"uote",
        "new\nline",
        "sl\\\\ash",
        "é",
    ]);
    let labels = prop::collection::vec(
        (prop::sample::select(vec!["l", "m", "n_1"]), label_value),
        0..3,
    );
    let sep = prop::sample::select(vec![" ", "\t", "  "]);
    let end = prop::sample::select(vec!["\n", "\r\n"]);
    let ts = prop::option::of(prop::sample::select(vec!["0", "1700000000000", "-5"]));
    prop_oneof![
        (name.clone(), labels, sep.clone(), value, ts, end.clone()).prop_map(
            |(n, ls, sep, v, ts, end)| {
                let block = if ls.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{{{}}}",
                        ls.iter()
                            .map(|(k, v)| format!("{k}=\"{v}\""))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                };
                let ts = ts.map(|t| format!("{sep}{t}")).unwrap_or_default();
                format!("{n}{block}{sep}{v}{ts}{end}")
            }
        ),
        (name.clone(), end.clone()).prop_map(|(n, end)| format!("# HELP {n} help text{end}")),
        (name, end.clone()).prop_map(|(n, end)| format!("# TYPE {n} gauge{end}")),
        end.prop_map(|e| format!("# a comment{e}")),
        Just("\n".to_owned()),
    ]
}

proptest! {
    /// Streaming is invisible: any split of a body into chunks gives the same entries.
    #[test]
    fn text_chunking_does_not_change_entries(
        lines in prop::collection::vec(arb_text_line(), 0..30),
        chunks in prop::collection::vec(1usize..40, 1..8),
        drop_final_newline in any::<bool>(),
    ) {
        let mut body = lines.concat();
        if drop_final_newline && body.ends_with('\n') && !body.ends_with("\"\n") {
            body.pop();
            if body.ends_with('\r') {
                body.pop();
            }
        }
        let whole = entries(body.as_bytes(), Format::PromText, &[]);
        prop_assert!(whole.is_ok(), "{:?}: {:?}", body, whole);
        let split = entries(body.as_bytes(), Format::PromText, &chunks);
        prop_assert_eq!(split, whole);
    }

    /// The same for OpenMetrics, including errors: a corrupted body fails the same way
    /// at the same place whatever the chunking.
    #[test]
    fn openmetrics_chunking_does_not_change_entries_or_errors(
        n in 0usize..20,
        corrupt in prop::option::of((0usize..400, any::<u8>())),
        chunks in prop::collection::vec(1usize..40, 1..8),
    ) {
        let mut body = String::from("# TYPE a counter\n# HELP a h\n");
        for i in 0..n {
            body.push_str(&format!("a_total{{i=\"{i}\",j=\"x\\\"y\"}} {i} {i}.5 # {{t=\"{i}\"}} 1\n"));
        }
        body.push_str("# EOF\n");
        let mut bytes = body.into_bytes();
        if let Some((at, b)) = corrupt {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        let whole = entries(&bytes, Format::OpenMetrics, &[]);
        let split = entries(&bytes, Format::OpenMetrics, &chunks);
        prop_assert_eq!(split, whole);
    }

    /// Arbitrary bytes never panic either parser, and an error names a real position.
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300), chunk in 1usize..50) {
        for f in [Format::PromText, Format::OpenMetrics] {
            if let Err(e) = entries(&body, f, &[chunk]) {
                prop_assert!(!e.is_empty());
            }
            let mut p = BodyParser::new(f).strict();
            let mut sink = |_: Entry<'_>| -> Result<(), ()> { Ok(()) };
            for c in body.chunks(chunk) {
                if p.feed(c, &mut sink).is_err() {
                    break;
                }
            }
            let _ = p.finish(&mut sink);
        }
    }
}

#[test]
fn a_carriage_return_cut_by_a_chunk_boundary_waits_for_the_next_byte() {
    // Found by the `text` fuzz target: "E\r" then "K\r" then "E".
    let body = b"E\rK\rE";
    assert_eq!(
        entries(body, Format::PromText, &[2]),
        entries(body, Format::PromText, &[])
    );
    let body = b"a 1\r\nb 2\r\n";
    for chunk in 1..body.len() {
        assert_eq!(
            entries(body, Format::PromText, &[chunk]),
            entries(body, Format::PromText, &[]),
            "chunk {chunk}"
        );
    }
}

#[test]
fn advisory_mode_keeps_the_first_objection_and_parses_on() {
    // client_golang writes a `_sum` beside negative buckets: the specification forbids
    // it, Prometheus scrapes it. Strict refuses; advisory parses every sample and says
    // what a strict parser would refuse.
    let body = "# TYPE h histogram\nh_bucket{le=\"-1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum -3\n# EOF\n";
    let mut p = BodyParser::new(Format::OpenMetrics).advisory();
    let mut n = 0;
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        if matches!(e, Entry::Sample(_)) {
            n += 1;
        }
        Ok(())
    };
    p.feed(body.as_bytes(), &mut sink).unwrap();
    p.finish(&mut sink).unwrap();
    assert_eq!(n, 4);
    let a = p.advice().expect("an objection");
    assert_eq!(a.line, 5);
    assert!(a.message.contains("h_sum"), "{a}");
    let mut strict = BodyParser::new(Format::OpenMetrics).strict();
    let mut ignore = |_: Entry<'_>| -> Result<(), ()> { Ok(()) };
    let r = strict
        .feed(body.as_bytes(), &mut ignore)
        .and_then(|()| strict.finish(&mut ignore));
    assert!(matches!(r, Err(FeedError::Parse(_))));
    // A body within the specification draws no objection.
    let mut p = BodyParser::new(Format::OpenMetrics).advisory();
    p.feed(b"# TYPE g gauge\ng 1\n# EOF\n", &mut ignore)
        .unwrap();
    p.finish(&mut ignore).unwrap();
    assert!(p.advice().is_none());
}

#[test]
fn histogram_stale_markers_carry_the_same_stale_nan() {
    let h = crate::histogram::Histogram::stale_marker(false);
    assert_eq!(h.sum.to_bits(), super::float::STALE_NAN);
}
