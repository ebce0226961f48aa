//! Same inputs ⇒ same outputs, byte for byte: configuration → targets → API JSON.

use proptest::prelude::*;
use trawl_core::config::{Config, ParseOptions};
use trawl_core::labels::Labels;
use trawl_core::target::{ActiveTargetJson, Populated, discovered_labels, targets_from_group};

const CONFIG: &str = include_str!("../../core/tests/data/every-option.yml");

/// Everything the foundations produce for a config, rendered to bytes.
fn render(text: &str) -> String {
    let config = Config::parse(
        text,
        &ParseOptions::for_path("/etc/prometheus/prometheus.yml"),
    )
    .expect("valid config");
    let mut out = format!("{config:?}\n");
    for job in &config.scrape_configs {
        for sd in &job.sd_configs {
            let Some(groups) = sd.static_groups() else {
                continue;
            };
            for g in groups {
                for (t, r) in g.targets.iter().zip(targets_from_group(g, job)) {
                    match r {
                        Ok(Populated::Active(st)) => {
                            let d = discovered_labels(t, &g.labels, job);
                            let json = ActiveTargetJson::new(&job.job_name, d, &st);
                            out.push_str(&serde_json::to_string(&json).expect("serializable"));
                            out.push_str(&format!(" hash={}\n", st.hash()));
                        }
                        other => out.push_str(&format!("{other:?}\n")),
                    }
                }
            }
        }
    }
    out
}

#[test]
fn config_to_targets_is_byte_identical_across_runs() {
    let a = render(CONFIG);
    let b = render(CONFIG);
    assert!(a.len() > 1000, "rendered something substantial");
    assert_eq!(a, b);
}

proptest! {
    /// Labels built from the same pairs in any order are identical, with identical hashes.
    #[test]
    fn label_sets_ignore_insertion_order(
        pairs in proptest::collection::btree_map("[a-z_]{1,6}", "[ -~]{1,12}", 0..20),
        seed in any::<u64>(),
    ) {
        let mut v: Vec<(String, String)> = pairs.into_iter().collect();
        let a = Labels::from_pairs(v.iter().map(|(n, x)| (n.as_str(), x.as_str())));
        // A deterministic shuffle driven by the seed.
        let mut s = seed | 1;
        for i in (1..v.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            v.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let b = Labels::from_pairs(v.iter().map(|(n, x)| (n.as_str(), x.as_str())));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.hash(), b.hash());
        prop_assert_eq!(a.hash_slicelabels(), b.hash_slicelabels());
    }
}
