//! Target label population scenarios (`prometheus-semantics.md` §9.3).

use super::*;
use crate::config::{Config, ParseOptions};

/// Job `job`, scheme https, path /metrics, interval and timeout 1s, plus `extra` lines.
fn cfg(extra: &str) -> ScrapeConfig {
    let text = format!(
        "scrape_configs:\n  - job_name: job\n    scheme: https\n    metrics_path: /metrics\n    scrape_interval: 1s\n    scrape_timeout: 1s\n{extra}"
    );
    Config::parse(&text, &ParseOptions::for_path("t.yml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .scrape_configs
        .remove(0)
}

fn one(target: &[(&str, &str)], cfg: &ScrapeConfig) -> Result<Populated, String> {
    let t = Labels::from_pairs(target.iter().copied());
    let g = Labels::empty();
    let mut lb = LabelsBuilder::new();
    populate(&t, &g, cfg, &mut lb)
}

fn active(target: &[(&str, &str)], cfg: &ScrapeConfig) -> ScrapeTarget {
    match one(target, cfg) {
        Ok(Populated::Active(t)) => t,
        other => panic!("expected an active target, got {other:?}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

const FLAGS: [(&str, &str); 3] = [
    ("__scrape_native_histograms__", "false"),
    ("__always_scrape_classic_histograms__", "false"),
    ("__convert_classic_histograms_to_nhcb__", "false"),
];

#[test]
fn s29_defaults_fill_in() {
    let c = cfg("");
    let t = active(&[("__address__", "1.2.3.4:1000"), ("custom", "value")], &c);
    let mut want = vec![
        ("__address__", "1.2.3.4:1000"),
        ("instance", "1.2.3.4:1000"),
        ("__scheme__", "https"),
        ("__metrics_path__", "/metrics"),
        ("job", "job"),
        ("__scrape_interval__", "1s"),
        ("__scrape_timeout__", "1s"),
        ("custom", "value"),
    ];
    want.extend(FLAGS);
    assert_eq!(t.labels, labels(&want));
    let discovered = discovered_labels(
        &labels(&[("__address__", "1.2.3.4:1000"), ("custom", "value")]),
        &Labels::empty(),
        &c,
    );
    want.retain(|(n, _)| *n != "instance");
    assert_eq!(discovered, labels(&want));
    assert_eq!(&*t.url, "https://1.2.3.4:1000/metrics");
    assert_eq!(
        t.public_labels(),
        labels(&[
            ("custom", "value"),
            ("instance", "1.2.3.4:1000"),
            ("job", "job")
        ])
    );
}

#[test]
fn s30_sd_values_win_and_no_default_port() {
    let t = active(
        &[
            ("__address__", "1.2.3.4"),
            ("__scheme__", "http"),
            ("__metrics_path__", "/custom"),
            ("job", "custom-job"),
            ("__scrape_interval__", "2s"),
            ("__scrape_timeout__", "2s"),
        ],
        &cfg(""),
    );
    assert_eq!(t.labels.get("__address__"), Some("1.2.3.4"));
    assert_eq!(t.labels.get("instance"), Some("1.2.3.4"));
    assert_eq!(t.labels.get("job"), Some("custom-job"));
    assert_eq!(t.interval, PromDuration::from_secs(2));
    assert_eq!(&*t.url, "http://1.2.3.4/custom");
}

#[test]
fn s31_instance_kept() {
    let t = active(
        &[("__address__", "[::1]"), ("instance", "custom-instance")],
        &cfg(""),
    );
    assert_eq!(t.labels.get("__address__"), Some("[::1]"));
    assert_eq!(t.labels.get("instance"), Some("custom-instance"));
    assert_eq!(&*t.url, "https://[::1]/metrics");
}

#[test]
fn s32_no_address() {
    assert_eq!(
        one(&[("custom", "value")], &cfg("")),
        Err("no address".into())
    );
}

#[test]
fn s33_address_from_relabeling() {
    let c = cfg(
        "    relabel_configs:\n      - source_labels: [custom]\n        regex: (.*)\n        replacement: ${1}\n        target_label: __address__\n",
    );
    let t = active(&[("custom", "host:1234")], &c);
    assert_eq!(t.labels.get("__address__"), Some("host:1234"));
    assert_eq!(t.labels.get("instance"), Some("host:1234"));
    let d = discovered_labels(&labels(&[("custom", "host:1234")]), &Labels::empty(), &c);
    assert_eq!(d.get("__address__"), None);
}

#[test]
fn s35_s36_s37_interval_and_timeout_errors() {
    let c = cfg("");
    let with = |k: &str, v: &str| one(&[("__address__", "a:1"), (k, v)], &c);
    assert_eq!(
        with("__scrape_interval__", "2notseconds"),
        Err(
            r#"error parsing scrape interval: unknown unit "notseconds" in duration "2notseconds""#
                .into()
        )
    );
    assert_eq!(
        with("__scrape_timeout__", "2notseconds"),
        Err(
            r#"error parsing scrape timeout: unknown unit "notseconds" in duration "2notseconds""#
                .into()
        )
    );
    assert_eq!(
        with("__scrape_interval__", "0s"),
        Err("scrape interval cannot be 0".into())
    );
    assert_eq!(
        with("__scrape_timeout__", "0s"),
        Err("scrape timeout cannot be 0".into())
    );
    assert_eq!(
        with("__scrape_timeout__", "2s"),
        Err(r#"scrape timeout cannot be greater than scrape interval ("2s" > "1s")"#.into())
    );
}

#[test]
fn s38_addresses_kept_verbatim() {
    let c = cfg("");
    for a in ["1.2.3.4", "1.2.3.4:80", "1.2.3.4:443"] {
        let t = active(&[("__address__", a)], &c);
        assert_eq!(t.labels.get("__address__"), Some(a));
        assert_eq!(t.labels.get("instance"), Some(a));
    }
}

#[test]
fn s39_histogram_flags() {
    let c = cfg("    convert_classic_histograms_to_nhcb: true\n");
    let t = active(&[("__address__", "a:1")], &c);
    assert_eq!(
        t.labels.get("__convert_classic_histograms_to_nhcb__"),
        Some("true")
    );
    let d = discovered_labels(&labels(&[("__address__", "a:1")]), &Labels::empty(), &c);
    assert_eq!(
        d.get("__convert_classic_histograms_to_nhcb__"),
        Some("true")
    );
    let c = cfg(
        "    relabel_configs:\n      - source_labels: [__scrape_native_histograms__]\n        regex: 'false'\n        replacement: 'true'\n        target_label: __scrape_native_histograms__\n",
    );
    let t = active(&[("__address__", "a:1")], &c);
    assert_eq!(t.labels.get("__scrape_native_histograms__"), Some("true"));
    let d = discovered_labels(&labels(&[("__address__", "a:1")]), &Labels::empty(), &c);
    assert_eq!(d.get("__scrape_native_histograms__"), Some("false"));
    assert_eq!(
        one(
            &[("__address__", "a:1"), ("__convert_classic_histograms_to_nhcb__", "maybe")],
            &cfg("")
        ),
        Err(r#"error parsing convert classic histograms to nhcb: strconv.ParseBool: parsing "maybe": invalid syntax"#.into())
    );
}

#[test]
fn s40_group_errors_name_instance_and_source() {
    let c = cfg("");
    let g = TargetGroup {
        targets: vec![
            Labels::empty(),
            labels(&[("__address__", "localhost:9090")]),
        ],
        labels: Labels::empty(),
        source: String::new(),
    };
    let res = targets_from_group(&g, &c);
    assert_eq!(res[0], Err("instance 0 in group : no address".into()));
    assert!(matches!(res[1], Ok(Populated::Active(_))));
}

#[test]
fn s41_labelkeep_removing_address_is_an_error_not_a_drop() {
    for rules in [
        "      - regex: foo\n        action: labelkeep\n",
        "      - regex: __address__\n        action: labeldrop\n",
    ] {
        let c = cfg(&format!("    relabel_configs:\n{rules}"));
        assert_eq!(
            one(&[("__address__", "localhost:9090")], &c),
            Err("no address".into())
        );
    }
}

#[test]
fn s42_url_with_params() {
    let c = cfg("    params:\n      abc: [foo, bar, baz]\n      xyz: [hoo]\n");
    let t = active(
        &[
            ("__address__", "example.com:1234"),
            ("__scheme__", "https"),
            ("__metrics_path__", "/metricz"),
            ("__param_abc", "overwrite"),
            ("__param_cde", "huu"),
        ],
        &c,
    );
    assert_eq!(
        &*t.url,
        "https://example.com:1234/metricz?abc=overwrite&abc=bar&abc=baz&cde=huu&xyz=hoo"
    );
}

#[test]
fn params_fill_in_missing_param_labels_only() {
    // 3.x: config params only fill in a missing __param_<k>.
    let c = cfg("    params:\n      module: [http_2xx]\n");
    let t = active(&[("__address__", "a:1")], &c);
    assert_eq!(t.labels.get("__param_module"), Some("http_2xx"));
    let t = active(&[("__address__", "a:1"), ("__param_module", "tcp")], &c);
    assert_eq!(t.labels.get("__param_module"), Some("tcp"));
    assert_eq!(&*t.url, "https://a:1/metrics?module=tcp");
}

#[test]
fn url_escaping_follows_go() {
    let mut p = std::collections::BTreeMap::new();
    p.insert("q".to_owned(), vec!["a b&c=d/é".to_owned()]);
    let l = labels(&[
        ("__address__", "h:1"),
        ("__scheme__", "http"),
        ("__metrics_path__", "/a b"),
    ]);
    assert_eq!(
        target_url(&l, &p),
        "http://h:1/a%20b?q=a+b%26c%3Dd%2F%C3%A9"
    );
    let l = labels(&[
        ("__address__", "h:1"),
        ("__scheme__", "http"),
        ("__metrics_path__", "m"),
    ]);
    assert_eq!(target_url(&l, &Default::default()), "http://h:1/m");
}

#[test]
fn group_labels_do_not_override_target_labels() {
    let c = cfg("");
    let t = labels(&[("__address__", "a:1"), ("env", "target")]);
    let g = labels(&[("env", "group"), ("team", "x")]);
    let mut lb = LabelsBuilder::new();
    let Ok(Populated::Active(st)) = populate(&t, &g, &c, &mut lb) else {
        panic!()
    };
    assert_eq!(st.labels.get("env"), Some("target"));
    assert_eq!(st.labels.get("team"), Some("x"));
}

#[test]
fn meta_labels_are_removed_and_reserved_kept() {
    let c = cfg(
        "    relabel_configs:\n      - source_labels: [__meta_x]\n        target_label: __tmp_y\n",
    );
    let t = active(&[("__address__", "a:1"), ("__meta_x", "1")], &c);
    assert_eq!(t.labels.get("__meta_x"), None);
    assert_eq!(t.labels.get("__tmp_y"), Some("1"));
    assert_eq!(t.public_labels().get("__tmp_y"), None);
}

#[test]
fn dropped_reports_the_rule() {
    let c = cfg(
        "    relabel_configs:\n      - target_label: x\n        replacement: y\n      - source_labels: [x]\n        regex: y\n        action: drop\n",
    );
    assert_eq!(
        one(&[("__address__", "a:1")], &c),
        Ok(Populated::Dropped { rule: 1 })
    );
}

#[test]
fn json_shape() {
    let c = cfg("");
    let t = active(&[("__address__", "a:1")], &c);
    let d = discovered_labels(&labels(&[("__address__", "a:1")]), &Labels::empty(), &c);
    let j = serde_json::to_value(ActiveTargetJson::new("job", d, &t)).unwrap();
    assert_eq!(j["scrapePool"], "job");
    assert_eq!(j["scrapeUrl"], "https://a:1/metrics");
    assert_eq!(j["scrapeInterval"], "1s");
    assert_eq!(j["scrapeTimeout"], "1s");
    assert_eq!(j["health"], "unknown");
    assert_eq!(j["labels"]["instance"], "a:1");
    assert_eq!(j["discoveredLabels"]["__address__"], "a:1");
    assert!(j["labels"].get("__address__").is_none());
    let dropped = serde_json::to_value(DroppedTargetJson {
        discovered_labels: labels(&[("__address__", "a:1")]),
        scrape_pool: "job".into(),
    })
    .unwrap();
    assert_eq!(
        dropped,
        serde_json::json!({"discoveredLabels": {"__address__": "a:1"}, "scrapePool": "job"})
    );
}

#[test]
fn worked_hash_example_from_semantics() {
    // §3.5: job node, localhost:9100, defaults, 3.x labels.
    let text = "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [localhost:9100]\n";
    let c = Config::parse(text, &ParseOptions::for_path("p.yml")).unwrap();
    let job = &c.scrape_configs[0];
    let Some(groups) = job.sd_configs[0].static_groups() else {
        panic!()
    };
    let Ok(Populated::Active(t)) = targets_from_group(&groups[0], job).remove(0) else {
        panic!()
    };
    assert_eq!(t.labels.hash(), 9527888252110227897);
    assert_eq!(t.hash(), 1970881574558607407);
}

#[test]
fn populate_in_group_equals_populate() {
    use proptest::prelude::*;
    let c = cfg(r#"
    relabel_configs:
      - {source_labels: [__meta_x], regex: drop, action: drop}
      - {source_labels: [team, __address__], separator: '@', target_label: owner}
      - {action: labelmap, regex: '__meta_(.+)'}
      - {regex: tmp, action: labeldrop}"#);
    let name = prop_oneof![
        Just("__address__"),
        Just("__meta_x"),
        Just("__meta_y"),
        Just("team"),
        Just("tmp"),
        Just("job"),
        Just("__scheme__"),
        Just("__param_a"),
        Just("instance"),
    ];
    let value = prop_oneof![
        Just(""),
        Just("drop"),
        Just("h:1"),
        Just("v"),
        Just("https")
    ];
    let set = proptest::collection::vec((name, value), 0..6);
    proptest!(|(target in set.clone(), group in set)| {
        let t = Labels::from_pairs(target.iter().map(|(n, v)| (*n, *v)));
        let g = Labels::from_pairs(group.iter().map(|(n, v)| (*n, *v)));
        let mut lb = LabelsBuilder::new();
        let want = populate(&t, &g, &c, &mut lb);
        let mut lb2 = LabelsBuilder::new();
        let layer = group_layer(&g, &c, &mut lb2);
        let got = populate_in_group(&t, &layer, &c, &mut lb2);
        prop_assert_eq!(got, want);
    });
}

/// One random relabel rule over a small vocabulary of names, patterns and templates, so
/// that rules often read, write, map and drop each other's labels.
fn arb_rule() -> impl proptest::strategy::Strategy<Value = Option<crate::relabel::RelabelConfig>> {
    use crate::relabel::{Action, RelabelConfig};
    use proptest::prelude::*;
    const NAMES: &[&str] = &[
        "__address__",
        "__meta_a",
        "__meta_b",
        "team",
        "x",
        "__scheme__",
        "__param_p",
        "instance",
        "__tmp",
    ];
    const REGEXES: &[&str] = &[
        "(.*)",
        "drop",
        "h:(\\d+)",
        "__meta_(.+)",
        "(.+)",
        "v|w",
        "x",
        "t.*",
        "__(.*)",
        "([^:]+)(?::\\d+)?;(\\d+)",
    ];
    const TARGETS: &[&str] = &[
        "__address__",
        "__meta_a",
        "team",
        "x",
        "__scheme__",
        "instance",
        "__tmp",
        "${1}",
        "x_$1",
    ];
    const REPLACEMENTS: &[&str] = &["$1", "", "v", "h:$1", "${1}_z", "$1:$2", "drop"];
    let action = prop::sample::select(vec![
        Action::Replace,
        Action::Replace,
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ]);
    (
        action,
        prop::collection::vec(prop::sample::select(NAMES), 0..3),
        prop::sample::select(REGEXES),
        prop::sample::select(TARGETS),
        prop::sample::select(REPLACEMENTS),
        1u64..4,
    )
        .prop_map(|(action, sources, regex, target, replacement, modulus)| {
            let b = RelabelConfig::builder(action);
            let b = match action {
                Action::LabelDrop | Action::LabelKeep => b.regex(regex),
                Action::LabelMap => b.regex(regex).replacement(replacement),
                Action::KeepEqual | Action::DropEqual => {
                    b.source_labels(&sources).target_label(target)
                }
                Action::Lowercase | Action::Uppercase => {
                    b.source_labels(&sources).regex(regex).target_label(target)
                }
                Action::HashMod => b
                    .source_labels(&sources)
                    .modulus(modulus)
                    .target_label(target),
                Action::Keep | Action::Drop => b.source_labels(&sources).regex(regex),
                Action::Replace => b
                    .source_labels(&sources)
                    .regex(regex)
                    .target_label(target)
                    .replacement(replacement),
            };
            b.build().ok()
        })
}

#[test]
fn group_plans_equal_populate_over_random_rules() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    let name = prop_oneof![
        4 => Just("__address__"),
        1 => Just("__meta_a"),
        1 => Just("__meta_b"),
        1 => Just("team"),
        1 => Just("x"),
        1 => Just("__scheme__"),
        1 => Just("__param_p"),
        1 => Just("instance"),
    ];
    let value = prop_oneof![
        Just("h:1"),
        Just("h:2;7"),
        Just("v"),
        Just("drop"),
        Just("https"),
        Just("t1"),
        Just("x"),
    ];
    let set = proptest::collection::vec((name, value), 0..5);
    let strategy = (
        proptest::collection::vec(arb_rule(), 0..7),
        set.clone(),
        proptest::collection::vec(set, 1..6),
    );
    let base = cfg("");
    let (partial, total) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 2048,
        ..RunnerConfig::default()
    });
    runner
        .run(&strategy, |(rules, group, targets)| {
            let mut c = base.clone();
            c.relabel_configs = rules.into_iter().flatten().collect();
            let g = Labels::from_pairs(group.iter().map(|(n, v)| (*n, *v)));
            let ts: Vec<Labels> = targets
                .iter()
                .map(|t| Labels::from_pairs(t.iter().map(|(n, v)| (*n, *v))))
                .collect();
            let mut lb = LabelsBuilder::new();
            let plan = GroupPlan::with_threshold(&g, &ts, &c, &mut lb, 1);
            total.set(total.get() + 1);
            partial.set(partial.get() + u32::from(plan.is_partial()));
            let mut lb2 = LabelsBuilder::new();
            for t in &ts {
                let want = populate(t, &g, &c, &mut lb2);
                let got = plan.populate(t, &c, &mut lb);
                prop_assert_eq!(
                    got,
                    want,
                    "target {:?} group {:?} rules {:#?}",
                    t,
                    g,
                    c.relabel_configs
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The comparison means something only if most cases really were planned.
    let (partial, total) = (partial.get(), total.get());
    assert!(
        partial * 2 > total,
        "only {partial} of {total} groups were planned"
    );
}

#[test]
fn kubernetes_rules_plan_to_one_per_target_rule() {
    let c = cfg(r#"
    relabel_configs:
      - {source_labels: [__meta_keep], action: keep, regex: "true"}
      - source_labels: [__address__, __meta_port]
        regex: '([^:]+)(?::\d+)?;(\d+)'
        replacement: $1:$2
        target_label: __address__
      - {source_labels: [__meta_path], regex: (.+), target_label: __metrics_path__}
      - {action: labelmap, regex: __meta_label_(.+)}
      - {source_labels: [__meta_ns], target_label: namespace}
      - {action: labeldrop, regex: pod_template_hash}"#);
    let g = Labels::from_pairs([
        ("__meta_keep", "true"),
        ("__meta_port", "9100"),
        ("__meta_path", "/m"),
        ("__meta_label_app", "web"),
        ("__meta_label_pod_template_hash", "abc"),
        ("__meta_ns", "prod"),
        ("__meta_unused", "u"),
    ]);
    let ts: Vec<Labels> = (0..10)
        .map(|i| Labels::single("__address__", &format!("10.0.0.{i}:80")))
        .collect();
    let mut lb = LabelsBuilder::new();
    let plan = GroupPlan::new(&g, &ts, &c, &mut lb);
    let Some(p) = &plan.partial else {
        panic!("not planned")
    };
    assert_eq!(p.rules, vec![1]);
    assert_eq!(p.drop, None);
    let Ok(Populated::Active(t)) = plan.populate(&ts[3], &c, &mut lb) else {
        panic!()
    };
    assert_eq!(&*t.url, "https://10.0.0.3:9100/m");
    assert_eq!(
        t.public_labels().to_string(),
        r#"{app="web", instance="10.0.0.3:9100", job="job", namespace="prod"}"#
    );
    // A group the keep rule rejects is dropped once, for every target.
    let g2 = Labels::from_pairs([("__meta_keep", "false")]);
    let plan = GroupPlan::new(&g2, &ts, &c, &mut lb);
    assert_eq!(plan.partial.as_ref().map(|p| p.drop), Some(Some(0)));
    assert_eq!(
        plan.populate(&ts[0], &c, &mut lb),
        Ok(Populated::Dropped { rule: 0 })
    );
}
