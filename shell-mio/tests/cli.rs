//! The `trawl` command line: `check config`, `parse` and `sd`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn trawl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .output()
        .expect("run trawl")
}

fn dir(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("trawl-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("dir");
    p
}

#[test]
fn check_config_accepts_a_good_file_and_places_the_error_in_a_bad_one() {
    let d = dir("check");
    let good = d.join("good.yml");
    std::fs::write(
        &good,
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [\"h:1\"]\n",
    )
    .expect("write");
    let out = trawl(&["check", "config", good.to_str().expect("utf-8")]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration is valid"), "{stdout}");
    assert!(stdout.contains("target http://h:1/metrics"), "{stdout}");
    let bad = d.join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5x\n",
    )
    .expect("write");
    let out = trawl(&["check", "config", bad.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yml:3:"), "no position in: {stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn parse_prints_the_samples_or_the_error_with_its_position() {
    let d = dir("parse");
    let f = d.join("body.txt");
    std::fs::write(&f, "# TYPE a counter\na_total{x=\"1\"} 3\nb 2 1000\n").expect("write");
    let out = trawl(&["parse", f.to_str().expect("utf-8")]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{__name__=\"a_total\", x=\"1\"} 3\n{__name__=\"b\"} 2 1000\n"
    );
    std::fs::write(&f, "a 1\nb{ 2\n").expect("write");
    let out = trawl(&["parse", f.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("(line 2, column"));
    // OpenMetrics needs its EOF marker.
    std::fs::write(&f, "a 1\n").expect("write");
    let out = trawl(&[
        "parse",
        "--content-type",
        "application/openmetrics-text; version=1.0.0",
        f.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sd_prints_active_and_dropped_targets_without_scraping() {
    let d = dir("sd");
    std::fs::write(
        d.join("t.json"),
        "[{\"targets\": [\"f:1\"], \"labels\": {\"team\": \"x\"}}]",
    )
    .expect("write");
    let cfg = d.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: s\n    static_configs:\n      - targets: [\"keep:1\", \"drop:1\"]\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: drop:.*\n        action: drop\n  - job_name: f\n    file_sd_configs:\n      - files: [\"*.json\"]\n",
    )
    .expect("write");
    let out = trawl(&["sd", &format!("--config.file={}", cfg.display())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let urls: Vec<&str> = v["activeTargets"]
        .as_array()
        .expect("active")
        .iter()
        .filter_map(|t| t["scrapeUrl"].as_str())
        .collect();
    assert_eq!(urls, ["http://f:1/metrics", "http://keep:1/metrics"]);
    assert_eq!(v["droppedTargets"][0]["droppedBy"], "relabel_configs[0]");
    assert_eq!(
        v["droppedTargets"][0]["discoveredLabels"]["__address__"],
        "drop:1"
    );
    let f = v["activeTargets"]
        .as_array()
        .expect("active")
        .iter()
        .find(|t| t["scrapePool"] == "f")
        .expect("file target");
    assert_eq!(f["labels"]["team"], "x");
    let out = trawl(&[
        "sd",
        &format!("--config.file={}", cfg.display()),
        "--job",
        "f",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["activeTargets"].as_array().map(Vec::len), Some(1));
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 16, defect 2: a configuration that is a YAML alias bomb (one 1 MiB string
/// referenced 3,000 times) is refused by `check config` with its position, instead of
/// taking gigabytes and aborting.
#[test]
fn check_config_refuses_an_alias_bomb() {
    let d = dir("bomb");
    let f = d.join("bomb.yml");
    let mut text = format!(
        "global:\n  external_labels: {{big: &big \"{}\"}}\nscrape_configs:\n  - job_name: a\n    params:\n      p:\n",
        "x".repeat(1 << 20)
    );
    for _ in 0..3000 {
        text.push_str("        - *big\n");
    }
    std::fs::write(&f, text).expect("write");
    let out = trawl(&["check", "config", f.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bomb.yml:")
            && stderr.contains("YAML aliases expand the document to more than"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `scrape_config_files`: jobs from other files, found by glob relative to the main
/// file, validated, merged, listed by `check config` with their file, discovered by
/// `trawl sd`; a duplicate job name is refused naming both places; unsupported blocks are
/// warned about per job.
#[test]
fn scrape_config_files_are_merged_and_checked() {
    let d = dir("scfiles");
    std::fs::create_dir_all(d.join("jobs/sd")).expect("dirs");
    let cfg = d.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global: {scrape_interval: 20s}\nscrape_config_files: ['jobs/*.yml', 'missing.yml']\nscrape_configs:\n  - job_name: main\n    static_configs: [{targets: ['m:1']}]\n",
    )
    .expect("write");
    std::fs::write(
        d.join("jobs/b.yml"),
        "scrape_configs:\n  - job_name: b\n    file_sd_configs: [{files: ['sd/*.json']}]\n    kuma_sd_configs: [{server: 'http://kuma:5676'}]\n",
    )
    .expect("write");
    std::fs::write(
        d.join("jobs/a.yml"),
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n",
    )
    .expect("write");
    // Relative to the file that names it.
    std::fs::write(d.join("jobs/sd/t.json"), "[{\"targets\": [\"f:1\"]}]").expect("write");
    let out = trawl(&["check", "config", cfg.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = d.join("jobs/a.yml");
    let b = d.join("jobs/b.yml");
    assert!(text.contains("job \"main\": every 20s"), "{text}");
    // Sorted within the pattern; the global section of the main file applies.
    let pa = text.find(&format!("job \"a\" (from {}): every 20s", a.display()));
    let pb = text.find(&format!("job \"b\" (from {})", b.display()));
    assert!(pa.is_some() && pb.is_some() && pa < pb, "{text}");
    assert!(
        text.contains("warning: trawl does not run kuma_sd_configs yet"),
        "{text}"
    );
    let out = trawl(&["sd", &format!("--config.file={}", cfg.display())]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut urls: Vec<&str> = v["activeTargets"]
        .as_array()
        .expect("active")
        .iter()
        .filter_map(|t| t["scrapeUrl"].as_str())
        .collect();
    urls.sort();
    assert_eq!(
        urls,
        [
            "http://a:1/metrics",
            "http://f:1/metrics",
            "http://m:1/metrics"
        ]
    );
    // A job name used twice: refused, naming the first place.
    std::fs::write(
        d.join("jobs/c.yml"),
        "scrape_configs:\n  - job_name: main\n",
    )
    .expect("write");
    let out = trawl(&["check", "config", cfg.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{}:2", d.join("jobs/c.yml").display()))
            && err.contains("found multiple scrape configs with job name \"main\", first found in main config file"),
        "{err}"
    );
    // A file holding more than scrape_configs.
    std::fs::write(d.join("jobs/c.yml"), "global: {}\n").expect("write");
    let out = trawl(&["check", "config", cfg.to_str().expect("utf-8")]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("field global not found in type config.ScrapeConfigs")
    );
    // A pattern with `*` before the last element.
    std::fs::remove_file(d.join("jobs/c.yml")).expect("rm");
    std::fs::write(&cfg, "scrape_config_files: ['*/x.yml']\n").expect("write");
    let out = trawl(&["check", "config", cfg.to_str().expect("utf-8")]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid scrape config file path \"*/x.yml\"")
    );
    let _ = std::fs::remove_dir_all(&d);
}
