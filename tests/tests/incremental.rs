//! Property: after any sequence of SD updates and config reloads, the incremental pools
//! hold exactly the targets a fresh agent computes from scratch from the same config and
//! the same discovered state.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use trawl_core::agent::{AgentOptions, Input};
use trawl_core::io::{IoEvent, IoOp};
use trawl_tests::{Harness, config};

const DIR: &str = "/etc/trawl/sd";

fn yaml(variant: u8) -> String {
    let relabel = match variant % 4 {
        0 => "",
        1 => {
            "    relabel_configs: [{source_labels: [__address__], regex: 'h[0-4]:.*', action: drop}]\n"
        }
        2 => {
            "    relabel_configs: [{source_labels: [team], target_label: __scheme__, regex: (https), replacement: $1}]\n"
        }
        _ => {
            "    relabel_configs: [{source_labels: [__address__], regex: '(h.):.*', target_label: __address__, replacement: 'same:1'}]\n"
        }
    };
    let interval = if variant & 4 == 0 { "10s" } else { "30s" };
    let mut y = format!(
        "scrape_configs:\n  - job_name: files\n    scrape_interval: {interval}\n{relabel}    file_sd_configs: [{{files: ['sd/*.json']}}]\n"
    );
    if variant & 8 != 0 {
        y.push_str("  - job_name: copy\n    file_sd_configs: [{files: ['sd/*.json']}]\n");
    }
    if variant & 16 != 0 {
        y.push_str("  - job_name: static\n    static_configs: [{targets: ['h1:1', 'h2:1']}, {targets: ['h1:1']}]\n");
    }
    y
}

#[derive(Clone, Debug)]
enum Op {
    Reload(u8),
    Write { file: u8, mask: u16, team: bool },
    Garbage(u8),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..32).prop_map(Op::Reload),
        (0u8..3, any::<u16>(), any::<bool>()).prop_map(|(file, mask, team)| Op::Write {
            file,
            mask,
            team
        }),
        (0u8..3).prop_map(Op::Garbage),
        (0u8..3).prop_map(Op::Delete),
    ]
}

fn content(mask: u16, team: bool) -> String {
    let addrs: Vec<String> = (0..16)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| format!("\"h{}:{}\"", i % 10, i))
        .collect();
    let labels = if team {
        r#", "labels": {"team": "https"}"#
    } else {
        ""
    };
    let groups: Vec<String> = addrs
        .chunks(3)
        .map(|c| format!("{{\"targets\": [{}]{labels}}}", c.join(",")))
        .collect();
    format!("[{}]", groups.join(","))
}

/// Answers every pending file operation from `files` (names inside `DIR`).
fn serve(h: &mut Harness, files: &BTreeMap<String, String>) {
    let paths: Vec<(String, &str)> = files
        .iter()
        .map(|(n, c)| (format!("{DIR}/{n}"), c.as_str()))
        .collect();
    h.serve_files(paths.iter().map(|(p, c)| (p.as_str(), *c)));
}

fn fire_watch(h: &mut Harness) {
    for (id, _) in h.pending_where(|op| matches!(op, IoOp::Watch { path } if path == DIR)) {
        h.reply(id, IoEvent::Changed { name: None });
    }
}

fn identities(h: &Harness) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in h.agent.pools() {
        m.entry(p.job.to_string()).or_default();
    }
    for t in h.agent.targets() {
        m.entry(t.job.to_string())
            .or_default()
            .push(format!("{} {}", t.target.url, t.target.labels));
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn incremental_pools_equal_a_fresh_agent(ops in proptest::collection::vec(op(), 1..14)) {
        let mut variant = 0u8;
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        // What a provider remembers: a garbage file keeps its last good content.
        let mut good: BTreeMap<String, String> = BTreeMap::new();
        let mut h = Harness::new(&yaml(variant), AgentOptions::default());
        serve(&mut h, &files);
        for op in ops {
            match op {
                Op::Reload(v) => {
                    variant = v;
                    h.input(Input::Config(Box::new(config(&yaml(variant)))));
                }
                Op::Write { file, mask, team } => {
                    let c = content(mask, team);
                    files.insert(format!("f{file}.json"), c.clone());
                    good.insert(format!("f{file}.json"), c);
                    fire_watch(&mut h);
                }
                Op::Garbage(file) => {
                    files.insert(format!("f{file}.json"), "[{".into());
                    fire_watch(&mut h);
                }
                Op::Delete(file) => {
                    files.remove(&format!("f{file}.json"));
                    good.remove(&format!("f{file}.json"));
                    fire_watch(&mut h);
                }
            }
            serve(&mut h, &files);
            h.advance(Duration::from_secs(6));
            // Incremental pools versus the agent's own recomputation from its groups.
            for p in h.agent.pools() {
                prop_assert_eq!(h.agent.active_identities(&p.job), h.agent.recompute_from_scratch(&p.job));
            }
            // ... and versus a fresh agent that only ever saw the last good files.
            let mut fresh = Harness::new(&yaml(variant), AgentOptions::default());
            serve(&mut fresh, &good);
            fresh.advance(Duration::from_secs(6));
            prop_assert_eq!(identities(&h), identities(&fresh));
        }
    }
}
