//! A realistic scrape load through the real core, for storage tests: many targets with
//! many series each, series that vanish and come back (stale markers, retirement, new
//! refs), NaN values, a label value longer than a WAL page, a reload that removes half
//! the targets (end-of-run markers), and a shutdown. The batches are exactly those the
//! agent emits.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use trawl_core::agent::{AgentOptions, Input, Output};
use trawl_core::scrape::pipeline::{Batch, SeriesRef};
use trawl_core::wal::replay::Restored;

use crate::{Harness, config};

/// The shape of a load.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Targets.
    pub targets: usize,
    /// Series per target.
    pub series: usize,
    /// Scrapes of every target before half of them are removed.
    pub scrapes: usize,
    /// Wall clock at the start (ns since the epoch).
    pub wall: i64,
    /// Target 0 exposes one series with a 40 kB label value (records span pages).
    pub huge_label: bool,
}

impl LoadSpec {
    fn yaml(&self, targets: usize) -> String {
        let mut y = String::from(
            "scrape_configs:\n  - job_name: load\n    scrape_interval: 15s\n    scrape_timeout: 5s\n    static_configs:\n      - targets: [",
        );
        for i in 0..targets {
            let _ = write!(y, "{}\"t{i}:9100\"", if i > 0 { ", " } else { "" });
        }
        y.push_str("]\n");
        y
    }

    /// The body target `t` serves at its `k`-th scrape.
    pub fn body(&self, t: usize, k: usize) -> String {
        let mut b = String::with_capacity(self.series * 40);
        b.push_str("# TYPE load_metric gauge\n");
        for j in 0..self.series {
            // Every tenth series is away for two scrapes in four.
            if j % 10 == 9 && k % 4 >= 2 {
                continue;
            }
            let v = if j == 1 && k.is_multiple_of(5) {
                "NaN".to_owned()
            } else {
                format!("{}", ((t * 31 + j * 7 + k) % 1000) as f64 / 2.0)
            };
            let _ = writeln!(b, "load_metric{{series=\"{j}\"}} {v}");
        }
        if self.huge_label && t == 0 {
            let _ = writeln!(b, "load_huge{{pad=\"{}\"}} {k}", "x".repeat(40_000));
        }
        b
    }
}

/// Runs the load (with `restore` fed first, as after a restart) and returns every
/// batch the agent emitted, in order.
pub fn run(spec: &LoadSpec, restore: Option<Restored>) -> Vec<Batch> {
    let mut h = Harness::starting_at(&spec.yaml(spec.targets), AgentOptions::default(), spec.wall);
    if let Some(r) = restore {
        h.input(Input::Restore(Box::new(r)));
    }
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    let target_of = |url: &str| -> usize {
        url.trim_start_matches("http://t")
            .split(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let answer = |h: &mut Harness, done: &mut BTreeMap<String, usize>| {
        for (id, url) in h.advance_until_scrape(Duration::from_secs(60)) {
            let k = done.entry(url.clone()).or_default();
            let body = spec.body(target_of(&url), *k);
            *k += 1;
            h.respond(id, 200, "text/plain; version=0.0.4", body.as_bytes());
        }
    };
    while done.len() < spec.targets || done.values().any(|&k| k < spec.scrapes) {
        answer(&mut h, &mut done);
    }
    // Half the targets go: end-of-run markers about one interval later.
    h.input(Input::Config(Box::new(config(
        &spec.yaml(spec.targets / 2),
    ))));
    let until = h.now.mono + Duration::from_secs(40);
    while h.now.mono < until {
        answer(&mut h, &mut done);
    }
    h.input(Input::Shutdown);
    while !h.pending_scrapes().is_empty() {
        answer(&mut h, &mut done);
    }
    h.log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Append(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// Go's `%g` for the values a load produces (and the report series'): what
/// `promtool tsdb dump` prints.
pub fn go_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == v.trunc() && v.abs() < 1e6 {
        format!("{}", v as i64)
    } else if v.abs() >= 1e-4 && v.abs() < 1e6 {
        format!("{v}")
    } else {
        // Not produced by the load; printed so a mismatch is visible.
        format!("{v:e}")
    }
}

/// Every sample of `batches` as `promtool tsdb dump` prints it (`{labels} value t`),
/// sorted.
pub fn dump_lines(batches: &[Batch]) -> Vec<String> {
    let mut series: BTreeMap<SeriesRef, String> = BTreeMap::new();
    let mut lines = Vec::new();
    for b in batches {
        for (r, l) in &b.series {
            series.insert(*r, l.to_go_string());
        }
        for p in &b.samples {
            let l = series.get(&p.series).map_or("?", String::as_str);
            lines.push(format!("{l} {} {}", go_value(p.value()), p.t));
        }
    }
    lines.sort();
    lines
}
