//! The core's top-level modules form a directed acyclic graph: each one can be read,
//! tested and changed knowing only the modules below it. A module's dependencies are
//! the `crate::<module>` paths in its non-test code (a `use crate::{a, b}` group counts
//! for each name).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The source with comments and everything from the first `#[cfg(test)]` on removed
/// (test modules close the files that have them).
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules `code` names.
fn deps(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident_at(item.trim());
                if !name.is_empty() {
                    out.insert(name.to_owned());
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("core/src is readable")
        .map(|e| e.expect("a readable entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|e| e == "rs") {
            files.push(p);
        }
    }
}

/// Module name → the other top-level modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel
            .components()
            .next()
            .expect("a file has a name")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if first == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("source is UTF-8");
        let entry = g.entry(first.clone()).or_default();
        entry.extend(deps(&code(&text)).into_iter().filter(|d| *d != first));
    }
    let known: BTreeSet<String> = g.keys().cloned().collect();
    for ds in g.values_mut() {
        ds.retain(|d| known.contains(d));
    }
    g
}

/// A cycle in `g`, if there is one (depth-first, in name order).
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        n: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(n.to_owned(), Mark::Open);
        path.push(n.to_owned());
        for d in &g[n] {
            match marks[d] {
                Mark::Open => {
                    let from = path
                        .iter()
                        .position(|p| p == d)
                        .expect("open nodes are on the path");
                    let mut c = path[from..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                Mark::New => {
                    if let Some(c) = visit(g, d, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(n.to_owned(), Mark::Done);
        None
    }
    let mut marks: BTreeMap<String, Mark> = g.keys().map(|k| (k.clone(), Mark::New)).collect();
    for n in g.keys() {
        if marks[n] == Mark::New
            && let Some(c) = visit(g, n, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_core_modules_have_no_cycles() {
    let g = graph();
    assert!(g.len() > 20, "found the modules: {:?}", g.keys());
    // The graph is the layering the docs describe: storage's vocabulary and the
    // configuration's building blocks sit low.
    assert!(!g["batch"].contains("scrape") && !g["wal"].contains("scrape"));
    assert!(!g["common"].contains("config") && !g["discovery"].contains("config"));
    if let Some(c) = cycle(&g) {
        panic!("module cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_checker_sees_a_cycle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    g.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    g.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    g.insert("d".to_owned(), BTreeSet::new());
    assert_eq!(cycle(&g).expect("a cycle").join(" -> "), "a -> b -> c -> a");
    g.get_mut("c").expect("present").clear();
    assert_eq!(cycle(&g), None);
    assert_eq!(
        deps(&code(
            "use crate::{labels::X, io};\nlet x = crate::hash::h(); // crate::wal\n#[cfg(test)]\nuse crate::scrape;"
        )),
        BTreeSet::from(["hash".to_owned(), "io".to_owned(), "labels".to_owned()])
    );
}
