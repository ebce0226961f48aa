//! Exposition parsers against the shared conformance data, read in place from
//! `../shared/conformance/`:
//!
//! * the 211 cases of the OpenMetrics parser suite: the strict parser (syntax plus the
//!   specification's semantic rules) must agree with every `shouldParse` verdict; the
//!   scrape parser (syntax only, as Prometheus) must agree with what Prometheus 2.42 did
//!   with each case;
//! * the 99 edge-case bodies served to Prometheus 2.42: our verdict must match, except
//!   for the deliberate differences listed (with reasons) in `DELIBERATE`.
//!
//! Every body is also fed in small chunks and byte by byte: streaming must not change a
//! verdict.

use std::path::PathBuf;

use serde_json::Value;
use trawl_core::config::ScrapeProtocol;
use trawl_core::exposition::{BodyParser, Entry, FeedError, Format, select_format};

fn conformance() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    assert!(p.is_dir(), "conformance data missing at {}", p.display());
    p
}

fn b64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let digits: Vec<u32> = quad
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| val(c))
            .collect();
        let mut n = 0u32;
        for (i, d) in digits.iter().enumerate() {
            n |= d << (18 - 6 * i);
        }
        for i in 0..digits.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Parses `body` in chunks of `chunk` bytes; `Err` carries the first error. Also applies
/// the checks a scrape makes before storing (duplicate label names, including a
/// `__name__` label next to the metric name), which is where Prometheus rejects them.
fn verdict(body: &[u8], format: Format, strict: bool, chunk: usize) -> Result<usize, String> {
    let mut p = BodyParser::new(format);
    if strict {
        p = p.strict();
    }
    let mut samples = 0usize;
    let mut sink = |e: Entry<'_>| -> Result<(), String> {
        if let Entry::Sample(s) = e {
            samples += 1;
            let mut names: Vec<String> = s.labels().map(|(n, _)| n.into_owned()).collect();
            names.push("__name__".into());
            names.sort();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(format!(
                    "label name {:?} is not unique: invalid sample",
                    w[0]
                ));
            }
        }
        Ok(())
    };
    let show = |e: FeedError<String>| match e {
        FeedError::Parse(p) => p.to_string(),
        FeedError::Sink(s) => s,
    };
    for c in body.chunks(chunk.max(1)) {
        p.feed(c, &mut sink).map_err(show)?;
    }
    p.finish(&mut sink).map_err(show)?;
    Ok(samples)
}

/// The verdict, checked to be the same whole, in chunks of 7 and byte by byte.
fn verdict_all_chunkings(body: &[u8], format: Format, strict: bool) -> Result<usize, String> {
    let whole = verdict(body, format, strict, body.len().max(1));
    for chunk in [1, 7] {
        let v = verdict(body, format, strict, chunk);
        assert_eq!(
            v.is_ok(),
            whole.is_ok(),
            "chunks of {chunk} changed the verdict on {:?}: {v:?} vs {whole:?}",
            String::from_utf8_lossy(body)
        );
        if let (Ok(a), Ok(b)) = (&v, &whole) {
            assert_eq!(a, b, "chunks of {chunk} changed the sample count");
        }
    }
    whole
}

#[test]
fn openmetrics_suite_strict_agrees_with_every_verdict() {
    let dir = conformance().join("openmetrics");
    let mut cases = 0;
    let mut wrong = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let case = dir.join(&name);
        let meta: Value =
            serde_json::from_slice(&std::fs::read(case.join("test.json")).unwrap()).unwrap();
        let should = meta["shouldParse"].as_bool().unwrap();
        let body = std::fs::read(case.join("metrics")).unwrap();
        let got = verdict_all_chunkings(&body, Format::OpenMetrics, true);
        cases += 1;
        if got.is_ok() != should {
            wrong.push(format!("{name}: should parse {should}, got {got:?}"));
        }
    }
    assert_eq!(cases, 211);
    assert!(
        wrong.is_empty(),
        "{} of 211 disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn openmetrics_suite_scrape_parser_agrees_with_prometheus() {
    let data: Value = serde_json::from_slice(
        &std::fs::read(conformance().join("observed/openmetrics-suite-results.json")).unwrap(),
    )
    .unwrap();
    let dir = conformance().join("openmetrics");
    let mut wrong = Vec::new();
    let mut n = 0;
    let mut changed_seen = Vec::new();
    for c in data["cases"].as_array().unwrap() {
        let name = c["case"].as_str().unwrap();
        let mut prom_ok = c["prometheus_2_42_0"]["scrape_ok"].as_bool().unwrap();
        if PROMETHEUS_3_CHANGED.iter().any(|(n, _)| *n == name) {
            prom_ok = !prom_ok;
            changed_seen.push(name);
        }
        let body = std::fs::read(dir.join(name).join("metrics")).unwrap();
        let got = verdict_all_chunkings(&body, Format::OpenMetrics, false);
        n += 1;
        if got.is_ok() != prom_ok {
            wrong.push(format!(
                "{name}: Prometheus {prom_ok} ({}), trawl {got:?}",
                c["prometheus_2_42_0"]["error"]
            ));
        }
    }
    assert_eq!(n, 211);
    assert!(
        wrong.is_empty(),
        "{} disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let listed = PROMETHEUS_3_CHANGED
        .iter()
        .filter(|(n, _)| !n.starts_with("om_"))
        .count();
    assert_eq!(changed_seen.len(), listed, "{changed_seen:?}");
}

/// Recorded cases (from 2.42) whose verdict Prometheus 3.x reverses, and why; trawl
/// follows 3.x. Names starting with `om_` are text edge cases, the others cases of the
/// OpenMetrics suite.
const PROMETHEUS_3_CHANGED: &[(&str, &str)] = &[
    (
        "bad_exemplars_on_unallowed_metric_types_0",
        "3.x `OpenMetricsParser.parseComment` takes an exemplar on any series (since 2.43)",
    ),
    (
        "bad_exemplars_on_unallowed_metric_types_1",
        "exemplar on an info series: accepted since 2.43",
    ),
    (
        "bad_exemplars_on_unallowed_metric_types_2",
        "exemplar on a gauge: accepted since 2.43",
    ),
    (
        "bad_exemplars_on_unallowed_samples_0",
        "exemplar on `_sum`: accepted since 2.43",
    ),
    (
        "bad_exemplars_on_unallowed_samples_1",
        "exemplar on `_sum`: accepted since 2.43",
    ),
    (
        "bad_exemplars_on_unallowed_samples_3",
        "exemplar on `_created`: accepted since 2.43",
    ),
    (
        "bad_missing_or_extra_commas_2",
        "3.x `OpenMetricsParser.parseLVals` takes a trailing comma (`a{a=\"1\",} 1`)",
    ),
    (
        "om_trailing_comma",
        "3.x `OpenMetricsParser.parseLVals` takes a trailing comma",
    ),
    (
        "om_exemplar_on_gauge",
        "3.x takes an exemplar on any series",
    ),
];

/// Bodies where trawl decides differently from Prometheus 2.42 on purpose.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "leading_ws",
        "blanks before a sample line: the text format's documentation allows blanks between and around tokens; 2.42's tokenizer makes them part of the metric name and fails the scrape",
    ),
    (
        "crlf",
        "CRLF line ends: Windows exporters and proxies produce them; 2.42 fails on the \\r in the value",
    ),
    (
        "ts_negative",
        "a negative timestamp: the format's documentation uses one in its own example; 2.42's tokenizer refuses the minus sign",
    ),
];

#[test]
fn text_edge_cases_agree_with_prometheus_but_for_the_listed_reasons() {
    let data: Value = serde_json::from_slice(
        &std::fs::read(conformance().join("observed/text-edge-cases.json")).unwrap(),
    )
    .unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 99);
    let mut wrong = Vec::new();
    let mut deliberate_seen = Vec::new();
    let mut changed_seen = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let body = b64(c["body_b64"].as_str().unwrap());
        let mut prom_ok = c["prometheus_2_42_0"]["scrape_ok"].as_bool().unwrap();
        if PROMETHEUS_3_CHANGED.iter().any(|(n, _)| *n == name) {
            prom_ok = !prom_ok;
            changed_seen.push(name);
        }
        // 2.42 parses a missing, unparsable or unknown Content-Type as text; under 3.x
        // rules that is `fallback_scrape_protocol: PrometheusText0.0.4`.
        let ct = c["content_type"].as_str();
        let format = select_format(ct, Some(ScrapeProtocol::PrometheusText0_0_4)).unwrap();
        let got = verdict_all_chunkings(&body, format, false);
        if got.is_ok() == prom_ok {
            continue;
        }
        if DELIBERATE.iter().any(|(n, _)| *n == name) {
            deliberate_seen.push(name);
        } else {
            wrong.push(format!(
                "{name}: Prometheus {prom_ok} ({}), trawl {got:?}",
                c["prometheus_2_42_0"]["error"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Every listed difference is real (the list does not hide agreement).
    let mut listed: Vec<&str> = DELIBERATE.iter().map(|(n, _)| *n).collect();
    listed.sort_unstable();
    deliberate_seen.sort_unstable();
    assert_eq!(deliberate_seen, listed);
    let changed = PROMETHEUS_3_CHANGED
        .iter()
        .filter(|(n, _)| n.starts_with("om_"))
        .count();
    assert_eq!(changed_seen.len(), changed, "{changed_seen:?}");
}

#[test]
fn content_types_follow_prometheus_3_without_a_fallback() {
    let data: Value = serde_json::from_slice(
        &std::fs::read(conformance().join("observed/text-edge-cases.json")).unwrap(),
    )
    .unwrap();
    let mut failing = Vec::new();
    for c in data["cases"].as_array().unwrap() {
        if select_format(c["content_type"].as_str(), None).is_err() {
            failing.push(c["name"].as_str().unwrap().to_owned());
        }
    }
    // 2.42 parsed these as text; 3.x (and trawl) fail them unless a fallback is set.
    assert_eq!(failing, ["ct_missing", "ct_json", "ct_garbage"]);
}
