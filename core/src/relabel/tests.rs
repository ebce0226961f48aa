//! Relabel scenarios from `prometheus-semantics.md` §9.7 and property tests.

use super::*;
use crate::labels::Labels;
use proptest::prelude::*;

fn run(labels: &[(&str, &str)], rules: &[RelabelConfig]) -> Option<Vec<(String, String)>> {
    let input = Labels::from_pairs(labels.iter().copied());
    let mut lb = input.builder();
    match process(rules, &mut lb) {
        Outcome::Keep => Some(
            lb.iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        ),
        Outcome::Dropped { .. } => None,
    }
}

fn pairs(v: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = v
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    out.sort();
    Some(out)
}

fn rule(action: Action) -> RelabelConfigBuilder {
    RelabelConfig::builder(action)
}

#[test]
fn s99_replace_with_template() {
    let r = rule(Action::Replace)
        .source_labels(&["a"])
        .regex("f(.*)")
        .target_label("d")
        .replacement("ch${1}-ch${1}")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("a", "foo")], &[r]),
        pairs(&[("a", "foo"), ("d", "choo-choo")])
    );
}

#[test]
fn s100_chained_replaces() {
    let r1 = rule(Action::Replace)
        .source_labels(&["a", "b"])
        .regex("f(.*);(.*)r")
        .target_label("a")
        .replacement("b${1}${2}m")
        .build()
        .unwrap();
    let r2 = rule(Action::Replace)
        .source_labels(&["c", "a"])
        .regex("(b).*b(.*)ba(.*)")
        .target_label("d")
        .replacement("$1$2$2$3")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("a", "foo"), ("b", "bar"), ("c", "baz")], &[r1, r2]),
        pairs(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")])
    );
}

#[test]
fn s101_drop_ends_processing() {
    let drop = rule(Action::Drop)
        .source_labels(&["a"])
        .regex(".*o.*")
        .build()
        .unwrap();
    let later = rule(Action::Replace)
        .source_labels(&["a"])
        .target_label("x")
        .build()
        .unwrap();
    let input = Labels::from_pairs([("a", "foo")]);
    let mut lb = input.builder();
    assert_eq!(
        process(&[later.clone(), drop, later], &mut lb),
        Outcome::Dropped { rule: 1 }
    );
}

#[test]
fn s102_anchoring_keep_and_drop() {
    let r = rule(Action::Replace)
        .source_labels(&["a"])
        .regex(".*(b).*")
        .target_label("d")
        .replacement("$1")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("a", "abc")], &[r]),
        pairs(&[("a", "abc"), ("d", "b")])
    );
    let drop = |re: &str| {
        rule(Action::Drop)
            .source_labels(&["a"])
            .regex(re)
            .build()
            .unwrap()
    };
    let keep = |re: &str| {
        rule(Action::Keep)
            .source_labels(&["a"])
            .regex(re)
            .build()
            .unwrap()
    };
    assert!(run(&[("a", "foo")], &[drop("no-match")]).is_some());
    assert!(run(&[("a", "foo")], &[drop("f|o")]).is_some());
    assert!(run(&[("a", "foo")], &[keep("no-match")]).is_none());
    assert!(run(&[("a", "foo")], &[keep("f.*")]).is_some());
}

#[test]
fn s103_replace_without_match_is_noop() {
    let r = rule(Action::Replace)
        .source_labels(&["a"])
        .regex("f")
        .target_label("d")
        .build()
        .unwrap();
    assert_eq!(run(&[("a", "boo")], &[r]), pairs(&[("a", "boo")]));
}

#[test]
fn s104_empty_replacement_deletes_expanded_target() {
    let r = rule(Action::Replace)
        .source_labels(&["a"])
        .regex("(f).*")
        .target_label("$1")
        .replacement("$2")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("a", "foo"), ("f", "baz")], &[r]),
        pairs(&[("a", "foo")])
    );
}

#[test]
fn s105_hashmod_vectors() {
    assert_eq!(hashmod("baz", 1000), 976);
    assert_eq!(hashmod("foo\nbar", 1000), 734);
    let r = rule(Action::HashMod)
        .source_labels(&["c"])
        .target_label("d")
        .modulus(1000)
        .build()
        .unwrap();
    assert_eq!(
        run(&[("c", "baz")], &[r]),
        pairs(&[("c", "baz"), ("d", "976")])
    );
}

#[test]
fn s106_labelmap() {
    let r = rule(Action::LabelMap)
        .regex("(b.*)")
        .replacement("bar_${1}")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("a", "x"), ("b1", "y"), ("b2", "z")], &[r]),
        pairs(&[
            ("a", "x"),
            ("b1", "y"),
            ("b2", "z"),
            ("bar_b1", "y"),
            ("bar_b2", "z")
        ])
    );
    let r = rule(Action::LabelMap)
        .regex("__meta_(my.*)")
        .replacement("${1}")
        .build()
        .unwrap();
    assert_eq!(
        run(
            &[
                ("__meta_my_bar", "1"),
                ("__meta_my_baz", "2"),
                ("__meta_other", "3")
            ],
            &[r]
        ),
        pairs(&[
            ("__meta_my_bar", "1"),
            ("__meta_my_baz", "2"),
            ("__meta_other", "3"),
            ("my_bar", "1"),
            ("my_baz", "2")
        ])
    );
}

#[test]
fn labelmap_collision_last_in_name_order_wins() {
    let r = rule(Action::LabelMap)
        .regex("(?:x|y)_(.*)")
        .replacement("${1}")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("x_a", "1"), ("y_a", "2")], &[r]),
        pairs(&[("a", "2"), ("x_a", "1"), ("y_a", "2")])
    );
}

#[test]
fn s107_invalid_expanded_target_is_noop() {
    let base = || {
        rule(Action::Replace)
            .source_labels(&["a"])
            .regex("some-([^-]+)-([^,]+)")
    };
    let input = [("a", "some-name-value")];
    let r = base()
        .target_label("${1}")
        .replacement("${2}")
        .build()
        .unwrap();
    assert_eq!(
        run(&input, &[r]),
        pairs(&[("a", "some-name-value"), ("name", "value")])
    );
    let r = base()
        .target_label("${1}")
        .replacement("${3}")
        .build()
        .unwrap();
    assert_eq!(run(&input, &[r]), pairs(&[("a", "some-name-value")]));
    let r = base()
        .target_label("${3}")
        .replacement("${1}")
        .build()
        .unwrap();
    assert_eq!(run(&input, &[r]), pairs(&[("a", "some-name-value")]));
}

#[test]
fn s108_tags_to_labels() {
    let tags = "path:/secret,job:some-job,label:foo=bar";
    let rules = vec![
        rule(Action::Replace)
            .source_labels(&["tags"])
            .regex("(?:.+,|^)path:(/[^,]+).*")
            .target_label("__metrics_path__")
            .replacement("${1}")
            .build()
            .unwrap(),
        rule(Action::Replace)
            .source_labels(&["tags"])
            .regex("(?:.+,|^)job:([^,]+).*")
            .target_label("job")
            .replacement("${1}")
            .build()
            .unwrap(),
        rule(Action::Replace)
            .source_labels(&["tags"])
            .regex("(?:.+,|^)label:([^=]+)=([^,]+).*")
            .target_label("${1}")
            .replacement("${2}")
            .build()
            .unwrap(),
    ];
    assert_eq!(
        run(&[("tags", tags)], &rules),
        pairs(&[
            ("__metrics_path__", "/secret"),
            ("foo", "bar"),
            ("job", "some-job"),
            ("tags", tags)
        ])
    );
}

#[test]
fn s109_issue_12283() {
    let rules = vec![
        rule(Action::LabelDrop)
            .regex("^__meta_kubernetes_pod_container_port_name$")
            .build()
            .unwrap(),
        rule(Action::Replace)
            .source_labels(&["__meta_kubernetes_pod_annotation_XXX_metrics_port"])
            .regex("(.+)")
            .target_label("__meta_kubernetes_pod_container_port_name")
            .replacement("metrics")
            .build()
            .unwrap(),
        rule(Action::Keep)
            .source_labels(&["__meta_kubernetes_pod_container_port_name"])
            .regex("^metrics$")
            .build()
            .unwrap(),
    ];
    let out = run(
        &[
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
            ("__meta_kubernetes_pod_container_port_name", "foo"),
        ],
        &rules,
    )
    .expect("kept");
    assert!(out.contains(&(
        "__meta_kubernetes_pod_container_port_name".into(),
        "metrics".into()
    )));
}

#[test]
fn s110_labelkeep_labeldrop() {
    let input = [("a", "foo"), ("b1", "bar"), ("b2", "baz")];
    let keep = rule(Action::LabelKeep).regex("(b.*)").build().unwrap();
    assert_eq!(run(&input, &[keep]), pairs(&[("b1", "bar"), ("b2", "baz")]));
    let drop = rule(Action::LabelDrop).regex("(b.*)").build().unwrap();
    assert_eq!(run(&input, &[drop]), pairs(&[("a", "foo")]));
}

#[test]
fn s111_case() {
    let up = rule(Action::Uppercase)
        .source_labels(&["foo"])
        .target_label("foo_uppercase")
        .build()
        .unwrap();
    let low = rule(Action::Lowercase)
        .source_labels(&["foo"])
        .target_label("foo_lowercase")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("foo", "bAr123Foo")], &[up, low]),
        pairs(&[
            ("foo", "bAr123Foo"),
            ("foo_lowercase", "bar123foo"),
            ("foo_uppercase", "BAR123FOO")
        ])
    );
}

#[test]
fn s112_keepequal_dropequal() {
    let input = [
        ("__tmp_port", "1234"),
        ("__port1", "1234"),
        ("__port2", "5678"),
    ];
    let ke = |t: &str| {
        rule(Action::KeepEqual)
            .source_labels(&["__tmp_port"])
            .target_label(t)
            .build()
            .unwrap()
    };
    let de = |t: &str| {
        rule(Action::DropEqual)
            .source_labels(&["__tmp_port"])
            .target_label(t)
            .build()
            .unwrap()
    };
    assert!(run(&input, &[ke("__port1")]).is_some());
    assert!(run(&input, &[ke("__port2")]).is_none());
    assert!(run(&input, &[de("__port1")]).is_none());
    assert!(run(&input, &[de("__port2")]).is_some());
}

#[test]
fn s113_dot_matches_newline() {
    let r = rule(Action::Replace)
        .source_labels(&["a"])
        .regex("line1.*line2")
        .target_label("d")
        .replacement("match")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("a", "line1\nline2")], &[r]),
        pairs(&[("a", "line1\nline2"), ("d", "match")])
    );
}

#[test]
fn s114_utf8_names_and_named_groups() {
    let r = rule(Action::Replace)
        .source_labels(&["utf-8.label"])
        .regex("(.*)")
        .target_label("utf-8.label${1}")
        .replacement("x")
        .build()
        .unwrap();
    assert_eq!(
        run(&[("utf-8.label", "")], std::slice::from_ref(&r)),
        pairs(&[("utf-8.label", "x")])
    );
    assert_eq!(
        run(&[("utf-8.label", "a")], &[r]),
        pairs(&[("utf-8.label", "a"), ("utf-8.labela", "x")])
    );
    let named = |t: &str, rep: &str| {
        rule(Action::Replace)
            .source_labels(&["a"])
            .regex("(?P<first>[^;]+);(?P<second>.+)")
            .target_label(t)
            .replacement(rep)
            .build()
            .unwrap()
    };
    let input = [("a", "line1;val_line2")];
    assert_eq!(
        run(
            &input,
            &[
                named("label1_${first}", "${second}"),
                named("label2_$first", "$second")
            ]
        ),
        pairs(&[
            ("a", "line1;val_line2"),
            ("label1_line1", "val_line2"),
            ("label2_line1", "val_line2")
        ])
    );
}

fn raw(yaml: &str) -> Result<RelabelConfig, String> {
    let raw: RawRelabelConfig = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    RelabelConfig::from_raw(raw, NameValidation::Utf8, &mut RegexCache::default())
}

fn raw_legacy(yaml: &str) -> Result<RelabelConfig, String> {
    let raw: RawRelabelConfig = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    RelabelConfig::from_raw(raw, NameValidation::Legacy, &mut RegexCache::default())
}

#[test]
fn s115_validation_errors() {
    let only_regex = "labelkeep action requires only 'regex', and no other fields";
    for extra in [
        "source_labels: [a]",
        "source_labels: []",
        "modulus: 8",
        "separator: ','",
        "replacement: yolo-{1}",
        "target_label: x",
    ] {
        assert_eq!(
            raw(&format!("action: labelkeep\nregex: a\n{extra}")).unwrap_err(),
            only_regex,
            "{extra}"
        );
    }
    assert_eq!(
        raw("action: labeldrop\nseparator: ','").unwrap_err(),
        "labeldrop action requires only 'regex', and no other fields"
    );
    assert_eq!(
        raw("action: dropequal\nsource_labels: [a]\ntarget_label: b\nregex: foo").unwrap_err(),
        "dropequal action requires only 'source_labels' and `target_label`, and no other fields"
    );
    assert_eq!(
        raw("action: keepequal\nsource_labels: [a]\ntarget_label: b\nregex: (.*)").unwrap_err(),
        "keepequal action requires only 'source_labels' and `target_label`, and no other fields"
    );
    assert_eq!(
        raw("action: lowercase\nsource_labels: [a]\ntarget_label: b\nreplacement: bar")
            .unwrap_err(),
        "'replacement' can not be set for lowercase action"
    );
    assert!(
        raw("regex: abc(def\ntarget_label: x")
            .unwrap_err()
            .contains("error parsing regexp")
    );
    assert_eq!(
        raw("action: null").unwrap_err(),
        "relabel action cannot be empty"
    );
    assert_eq!(
        raw("action: explode").unwrap_err(),
        r#"unknown relabel action "explode""#
    );
    assert_eq!(
        raw("action: hashmod\ntarget_label: x").unwrap_err(),
        "relabel configuration for hashmod requires non-zero modulus"
    );
    for a in [
        "replace",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    ] {
        assert_eq!(
            raw(&format!("action: {a}")).unwrap_err(),
            format!("relabel configuration for {a} action requires 'target_label' value")
        );
    }
    assert_eq!(
        raw("action: hashmod\nmodulus: 2").unwrap_err(),
        "relabel configuration for hashmod action requires 'target_label' value"
    );
    // Action names are case-insensitive.
    assert_eq!(raw("action: KeEp").unwrap().action, Action::Keep);
}

#[test]
fn legacy_target_label_validation() {
    for ok in [
        "label",
        "label${1}",
        "${1}label",
        "${1}",
        "$1",
        "asd$2asd",
        "_${1}_",
        "foo${bar}foo",
    ] {
        assert!(
            raw_legacy(&format!("target_label: '{ok}'")).is_ok(),
            "{ok} should be valid"
        );
    }
    for bad in [
        "-label",
        "${",
        "$",
        "${}",
        "foo${",
        "-foo${1}bar-",
        "bar.foo${1}bar",
    ] {
        assert_eq!(
            raw_legacy(&format!("target_label: '{bad}'")).unwrap_err(),
            format!("\"{bad}\" is invalid 'target_label' for replace action"),
        );
    }
    // UTF-8 (3.x default) accepts any non-empty string.
    for ok in ["0${3}", "-${3}", "utf-8.label${1}"] {
        assert!(raw(&format!("target_label: '{ok}'")).is_ok(), "{ok}");
    }
    assert_eq!(
        raw_legacy("action: labelmap\nreplacement: 'a-b'").unwrap_err(),
        r#""a-b" is invalid 'replacement' for labelmap action"#
    );
    assert_eq!(
        raw_legacy("action: uppercase\nsource_labels: [a]\ntarget_label: 'a-b'").unwrap_err(),
        r#""a-b" is invalid 'target_label' for uppercase action"#
    );
}

#[test]
fn null_and_empty_regex_match_only_empty() {
    for y in ["regex: null\ntarget_label: d", "regex: ''\ntarget_label: d"] {
        let r = raw(y).unwrap();
        assert!(r.regex.is_match(""));
        assert!(!r.regex.is_match("a"));
    }
}

#[test]
fn regexes_are_compiled_once_per_pattern() {
    let mut cache = RegexCache::default();
    for _ in 0..3 {
        for y in ["regex: a.*", "regex: b.*", "regex: a.*\naction: keep"] {
            let raw: RawRelabelConfig = serde_yaml::from_str(y).unwrap();
            let raw = RawRelabelConfig {
                target_label: Nullable::Value(LenientString("t".into())),
                ..raw
            };
            RelabelConfig::from_raw(raw, NameValidation::Utf8, &mut cache).unwrap();
        }
    }
    assert_eq!(cache.len(), 2);
}

fn label_set() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[a-d_]{1,3}", "[a-c]{0,3}"), 0..8)
}

proptest! {
    /// keep and drop with the same regex and sources are complementary.
    #[test]
    fn keep_drop_complementary(ls in label_set(), re in "[a-c.*|]{0,4}", src in "[a-d]{1,2}") {
        let Ok(keep) = rule(Action::Keep).source_labels(&[&src]).regex(&re).build() else {
            return Ok(());
        };
        let drop = rule(Action::Drop).source_labels(&[&src]).regex(&re).build().unwrap();
        let pairs: Vec<(&str, &str)> = ls.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        prop_assert_ne!(run(&pairs, &[keep]).is_some(), run(&pairs, &[drop]).is_some());
    }

    /// labeldrop then labelkeep with the same regex leaves nothing.
    #[test]
    fn labeldrop_then_labelkeep_empties(ls in label_set(), re in "[a-d_.*|]{0,4}") {
        let Ok(drop) = rule(Action::LabelDrop).regex(&re).build() else { return Ok(()); };
        let keep = rule(Action::LabelKeep).regex(&re).build().unwrap();
        let pairs: Vec<(&str, &str)> = ls.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        prop_assert_eq!(run(&pairs, &[drop, keep]), Some(vec![]));
    }

    /// hashmod always lands in [0, modulus).
    #[test]
    fn hashmod_in_range(v in ".{0,20}", m in 1u64..100_000) {
        prop_assert!(hashmod(&v, m) < m);
        let r = rule(Action::HashMod).source_labels(&["a"]).target_label("h").modulus(m).build().unwrap();
        let out = run(&[("a", &v)], &[r]).unwrap();
        let h: u64 = out.iter().find(|(n, _)| n == "h").unwrap().1.parse().unwrap();
        prop_assert!(h < m);
    }

    /// Relabeling is deterministic and never produces empty values.
    #[test]
    fn deterministic_no_empty_values(ls in label_set(), re in "[a-c.*()]{0,5}", rep in "[a-c$1]{0,4}") {
        let Ok(r) = rule(Action::Replace).source_labels(&["a", "b"]).regex(&re).target_label("t").replacement(&rep).build() else { return Ok(()); };
        let lm = rule(Action::LabelMap).regex(&re).replacement(&format!("m_{rep}")).build();
        let mut rules = vec![r];
        if let Ok(lm) = lm { rules.push(lm); }
        let pairs: Vec<(&str, &str)> = ls.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let a = run(&pairs, &rules);
        let b = run(&pairs, &rules);
        prop_assert_eq!(&a, &b);
        for (_, v) in a.unwrap() { prop_assert!(!v.is_empty()); }
    }
}

proptest! {
    /// `labelmap` with a literal-prefix regex (visited by binary search) gives what the
    /// definition gives: every label whose name starts with the prefix, copied under the
    /// rest of its name.
    #[test]
    fn labelmap_prefix_shortcut_matches_definition(
        names in proptest::collection::btree_set(
            prop_oneof!["__meta_[a-c]{0,3}", "__meta_p_[a-c]{0,2}", "[a-c_]{1,3}", "__[a-c]{1,2}"], 0..12),
        prefix in prop::sample::select(vec!["__meta_p_", "__meta_", "a", "__", "", "__m"]),
        plus in any::<bool>(),
    ) {
        let input: Vec<(String, String)> = names.iter().map(|n| (n.clone(), format!("v{n}"))).collect();
        let re = format!("{prefix}({})", if plus { ".+" } else { ".*" });
        let r = rule(Action::LabelMap).regex(&re).build().unwrap();
        let pairs_in: Vec<(&str, &str)> = input.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let got = run(&pairs_in, &[r]).unwrap();
        let mut model: std::collections::BTreeMap<String, String> = input.iter().cloned().collect();
        for (n, v) in &input {
            if let Some(rest) = n.strip_prefix(prefix) {
                // `(.*)` on a name equal to the prefix yields an empty name, as in
                // Prometheus (it fails validation later).
                if !(plus && rest.is_empty()) {
                    model.insert(rest.to_owned(), v.clone());
                }
            }
        }
        prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }
}
