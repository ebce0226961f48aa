//! The core stays pure: no IO, threads, clocks, OS randomness or randomly seeded hash
//! maps, in its own code or in its dependency tree. See `ARCHITECTURE.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn core_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("core/src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Tokens that mean IO, threads, clocks, OS randomness or a randomly seeded hasher.
const FORBIDDEN: &[&str] = &[
    "std::net",
    "std::fs",
    "std::thread",
    "std::process",
    "std::env",
    "std::io::stdin",
    "std::io::stdout",
    "std::os::",
    "Instant::now",
    "SystemTime",
    "UNIX_EPOCH",
    "thread_rng",
    "OsRng",
    "getrandom",
    "rand::",
    "RandomState",
    "HashMap",
    "HashSet",
    "tokio",
    "mio::",
    "File::open",
    "File::create",
    "TcpStream",
    "UdpSocket",
    "println!",
    "eprintln!",
];

#[test]
fn core_source_uses_no_io_threads_clocks_or_os_randomness() {
    let mut files = Vec::new();
    rust_files(&core_dir().join("src"), &mut files);
    files.sort();
    assert!(files.len() > 5, "found the core's sources");
    let mut hits = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("source is UTF-8");
        // Unit tests inside the core may use the standard library freely: skip the item
        // after each `#[cfg(test)]` (a `mod x;` line or a braced block).
        let mut skip_next_item = false;
        let mut depth: i64 = 0;
        let mut skipping = false;
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.trim_start().starts_with("#[cfg(test)]") {
                skip_next_item = true;
                continue;
            }
            if skip_next_item && !skipping {
                skip_next_item = false;
                if code.trim_end().ends_with(';') {
                    continue;
                }
                skipping = true;
                depth = 0;
            }
            if skipping {
                depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
                if depth <= 0 && code.contains('}') {
                    skipping = false;
                }
                continue;
            }
            for token in FORBIDDEN {
                if code.contains(token) {
                    hits.push(format!(
                        "{}:{}: `{token}` in: {}",
                        f.display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "trawl-core must stay pure (no IO, threads, clocks, OS randomness, random hashers):\n{}",
        hits.join("\n")
    );
}

/// Crates that do IO, spawn threads, read clocks or the OS's randomness.
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "getrandom",
    "rand",
    "rand_core",
    "crossbeam-channel",
    "notify",
    "inotify",
    "hyper",
    "reqwest",
    "ureq",
    "rustls",
    "chrono",
    "time",
    "ahash",
    "rayon",
];

#[test]
fn core_dependency_tree_is_pure() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "trawl-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(core_dir())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("UTF-8");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"trawl-core"), "{tree}");
    let bad: Vec<&&str> = names
        .iter()
        .filter(|n| FORBIDDEN_CRATES.contains(n))
        .collect();
    assert!(bad.is_empty(), "trawl-core depends on {bad:?}:\n{tree}");
}
