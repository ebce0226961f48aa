//! YAML built to abuse aliases: anchors on large strings and on collections, aliases
//! nested in sequences and mappings (billion-laughs shapes), merge keys, in the places
//! the daemon reads YAML (a whole configuration, a file SD document). Parsing must end
//! with a value or an error, never panic, and never allocate past libFuzzer's
//! `-malloc_limit_mb` (run with `-malloc_limit_mb=256 -rss_limit_mb=1024`): the expansion
//! bound (`config::yaml::MAX_EXPANSION`) refuses what would grow past it first.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use trawl_core::config::{Config, ParseOptions};
use trawl_core::discovery::groups::{DocFormat, parse_target_groups};

#[derive(Arbitrary, Debug)]
enum Node {
    /// A string of `len` (times 4 KiB, up to 1 MiB) copies of a letter.
    Big { len: u8, anchor: Option<u8> },
    Scalar(u8),
    /// An alias to anchor `n` (mod the anchors defined so far).
    Alias(u8),
    Seq { items: Vec<Node>, anchor: Option<u8> },
    Map { entries: Vec<(u8, Node)>, anchor: Option<u8>, merge: Option<u8> },
}

#[derive(Arbitrary, Debug)]
struct Doc {
    /// Where the node goes: 0 a file SD document, 1 a job's labels, 2 relabel rules.
    place: u8,
    root: Vec<Node>,
}

struct W {
    out: String,
    anchors: u32,
    nodes: u32,
}

impl W {
    fn anchor(&mut self, a: Option<u8>) {
        if a.is_some() {
            self.out.push_str(&format!("&a{} ", self.anchors));
            self.anchors += 1;
        }
    }
    fn alias(&mut self, n: u8) -> bool {
        if self.anchors == 0 {
            return false;
        }
        self.out
            .push_str(&format!("*a{}", u32::from(n) % self.anchors));
        true
    }
    fn node(&mut self, n: &Node, depth: u32) {
        self.nodes += 1;
        if depth > 12 || self.nodes > 5_000 {
            self.out.push_str("x");
            return;
        }
        match n {
            Node::Big { len, anchor } => {
                self.anchor(*anchor);
                let size = (usize::from(*len) + 1) * 4096;
                self.out.push('"');
                self.out.push_str(&"b".repeat(size));
                self.out.push('"');
            }
            Node::Scalar(v) => self.out.push_str(&format!("s{v}")),
            Node::Alias(a) => {
                if !self.alias(*a) {
                    self.out.push_str("none");
                }
            }
            Node::Seq { items, anchor } => {
                self.anchor(*anchor);
                self.out.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.node(it, depth + 1);
                }
                self.out.push(']');
            }
            Node::Map {
                entries,
                anchor,
                merge,
            } => {
                self.anchor(*anchor);
                self.out.push('{');
                let mut first = true;
                if let Some(m) = merge
                    && self.anchors > 0
                {
                    self.out.push_str("<<: ");
                    self.alias(*m);
                    first = false;
                }
                for (k, v) in entries {
                    if !first {
                        self.out.push_str(", ");
                    }
                    first = false;
                    self.out.push_str(&format!("k{k}: "));
                    self.node(v, depth + 1);
                }
                self.out.push('}');
            }
        }
    }
}

fuzz_target!(|doc: Doc| {
    let mut body = W {
        out: String::new(),
        anchors: 0,
        nodes: 0,
    };
    body.out.push('[');
    for (i, n) in doc.root.iter().enumerate() {
        if i > 0 {
            body.out.push_str(", ");
        }
        body.node(n, 0);
    }
    body.out.push(']');
    match doc.place % 3 {
        0 => {
            let _ = parse_target_groups(body.out.as_bytes(), DocFormat::Yaml);
        }
        1 => {
            let text = format!(
                "scrape_configs:\n  - job_name: j\n    static_configs: [{{targets: [\"h:1\"]}}]\n    params: {{p: {}}}\n",
                body.out
            );
            let _ = Config::parse(&text, &ParseOptions::for_path("/etc/prometheus/prometheus.yml"));
        }
        _ => {
            let text = format!(
                "scrape_configs:\n  - job_name: j\n    relabel_configs: {}\n",
                body.out
            );
            let _ = Config::parse(&text, &ParseOptions::for_path("/etc/prometheus/prometheus.yml"));
        }
    }
});
