//! What the packaging ships works with this build: the systemd unit passes
//! `systemd-analyze verify`, the Dockerfile's command line is one trawl runs with,
//! the shell completions load in bash, the manual page renders, and they all name the
//! flags the binary has.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn packaging(file: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging")
        .join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn trawl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .output()
        .expect("run trawl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_systemd_unit_verifies_and_runs_this_binary_s_flags() {
    let unit = packaging("trawl.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/trawl"));
    let flags: Vec<&str> = words.collect();
    // Every flag of the unit is one this build knows (`--help` lists them).
    let (_, help, _) = trawl(&["--help"]);
    for f in &flags {
        let name = f.split('=').next().unwrap_or_default();
        assert!(help.contains(name), "{name} is not a flag of trawl");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "systemd-analyze missing");
        eprintln!("skipped: systemd-analyze (Debian package systemd) is missing");
        return;
    }
    // The unit with this build's binary in place of the installed one.
    let d = TempDir::new("unit");
    let local = unit.replace("/usr/local/bin/trawl", env!("CARGO_BIN_EXE_trawl"));
    let path = d.0.join("trawl.service");
    std::fs::write(&path, local).expect("unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    // Only the unit's own findings count (not the host's other units).
    let own: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("trawl.service"))
        .collect();
    assert!(out.status.success() && own.is_empty(), "{err}");
}

#[test]
fn the_dockerfile_command_line_runs() {
    let docker = packaging("Dockerfile");
    let json_array = |key: &str| -> Vec<String> {
        let line = docker
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in the Dockerfile"));
        serde_json::from_str(line.trim()).expect("an exec-form JSON array")
    };
    assert_eq!(json_array("ENTRYPOINT "), ["/bin/trawl"]);
    let cmd = json_array("CMD ");
    // The image's command line, with this build and a temporary directory in place of
    // the image's paths: it starts, listens on the `:port` form and is ready.
    let d = TempDir::new("docker-cmd");
    let config = d.0.join("prometheus.yml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prometheus.yml"),
        &config,
    )
    .expect("example config");
    for l in docker.lines().filter(|l| l.starts_with("COPY examples/")) {
        assert!(l.contains("/etc/trawl/prometheus.yml"), "{l}");
    }
    let port = free_port();
    let args: Vec<String> = cmd
        .iter()
        .map(|a| {
            a.replace("/etc/trawl/prometheus.yml", &config.display().to_string())
                .replace(
                    "--storage.path=/trawl",
                    &format!("--storage.path={}", d.0.join("data").display()),
                )
                .replace(":9090", &format!("127.0.0.1:{port}"))
        })
        .collect();
    let mut p = Proc(
        Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start"),
    );
    eventually(Duration::from_secs(30), "ready", || {
        api(port, "GET", "/-/ready").is_some_and(|x| x.0 == 200)
    });
    signal(&p, "TERM");
    assert!(wait_exit(&mut p, Duration::from_secs(30)).success());
}

#[test]
fn completions_and_the_manual_come_from_the_command_line() {
    let (ok, bash, _) = trawl(&["completions", "bash"]);
    assert!(ok && bash.contains("--web.listen-address") && bash.contains("--config.file"));
    // bash loads it and registers the completion.
    let d = TempDir::new("completions");
    let script = d.0.join("trawl.bash");
    std::fs::write(&script, &bash).expect("script");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p trawl", script.display()))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("trawl"));
    for shell in ["zsh", "fish"] {
        let (ok, text, _) = trawl(&["completions", shell]);
        assert!(ok && text.contains("web.listen-address"), "{shell}");
    }
    let (ok, man, _) = trawl(&["man"]);
    assert!(ok && man.contains(".TH trawl"), "{man}");
    assert!(man.contains("web.listen\\-address") || man.contains("web.listen-address"));
    // groff renders it without complaint, where installed.
    if let Ok(mut child) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(man.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("groff");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
