//! Arbitrary relabel rules (any action, regex, templates) applied to arbitrary label
//! sets: validation may reject a rule, but nothing may panic, relabeling must be
//! deterministic, and no label may end up with an empty value.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use trawl_core::labels::Labels;
use trawl_core::relabel::{self, Action, RelabelConfig};

#[derive(Arbitrary, Debug)]
struct Rule {
    action: u8,
    sources: Vec<String>,
    separator: Option<String>,
    regex: Option<String>,
    target: Option<String>,
    replacement: Option<String>,
    modulus: Option<u64>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    labels: Vec<(String, String)>,
    rules: Vec<Rule>,
}

const ACTIONS: [Action; 11] = [
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
];

fuzz_target!(|input: Input| {
    let mut rules = Vec::new();
    for r in input.rules.iter().take(8) {
        let mut b = RelabelConfig::builder(ACTIONS[r.action as usize % ACTIONS.len()]);
        let sources: Vec<&str> = r.sources.iter().map(String::as_str).collect();
        if !sources.is_empty() {
            b = b.source_labels(&sources);
        }
        if let Some(s) = &r.separator {
            b = b.separator(s);
        }
        if let Some(s) = &r.regex {
            b = b.regex(s);
        }
        if let Some(s) = &r.target {
            b = b.target_label(s);
        }
        if let Some(s) = &r.replacement {
            b = b.replacement(s);
        }
        if let Some(m) = r.modulus {
            b = b.modulus(m);
        }
        if let Ok(rule) = b.build() {
            rules.push(rule);
        }
    }
    let labels = Labels::from_pairs(input.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let run = || {
        let mut lb = labels.builder();
        let outcome = relabel::process(&rules, &mut lb);
        (outcome, lb.labels())
    };
    let (o1, l1) = run();
    let (o2, l2) = run();
    assert_eq!(o1, o2);
    assert_eq!(l1, l2);
    assert!(l1.iter().all(|(_, v)| !v.is_empty()));
});
