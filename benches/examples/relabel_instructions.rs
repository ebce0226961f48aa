//! Runs the k8s relabel fixture a fixed number of times, for instruction counting:
//!
//! ```sh
//! cargo build --release -p trawl-benches --example relabel_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/relabel_instructions trawl 100000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/relabel_instructions naive 100000
//! ```
//!
//! Divide the reported instruction total (minus a run with 0 iterations) by the count.

use std::hint::black_box;

use trawl_benches::k8s::{CONFIG, naive, pod_labels};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::labels::{Labels, LabelsBuilder};
use trawl_core::target::populate;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "trawl".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let config = Config::parse(CONFIG, &ParseOptions::for_path("bench.yml")).expect("valid");
    let job = &config.scrape_configs[0];
    let pairs = pod_labels();
    let target = Labels::from_pairs(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    let group = Labels::empty();
    let rules = naive::rules();
    let mut lb = LabelsBuilder::with_capacity(64);
    for _ in 0..n {
        match which.as_str() {
            "naive" => {
                black_box(naive::process(black_box(&pairs), &rules));
            }
            _ => {
                let _ = black_box(populate(black_box(&target), &group, job, &mut lb));
            }
        }
    }
}
