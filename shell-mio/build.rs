//! Build information for `--version` and `prometheus_build_info`: the commit and branch
//! (from git, when the source is a checkout), the commit's date (not the build's, so
//! builds of one commit are alike) and the compiler's version. Where the source is not a
//! checkout (a Docker build context has no `.git`), `TRAWL_BUILD_REVISION`,
//! `TRAWL_BUILD_BRANCH` and `TRAWL_BUILD_DATE` stand in (the Dockerfile passes them from
//! its build arguments).

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let given = |var: &str| {
        println!("cargo:rerun-if-env-changed={var}");
        std::env::var(var).ok().filter(|v| !v.is_empty())
    };
    let git = |args: &[&str], var: &str| {
        run("git", args)
            .or_else(|| given(var))
            .unwrap_or_else(|| "unknown".into())
    };
    let revision = git(&["rev-parse", "HEAD"], "TRAWL_BUILD_REVISION");
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"], "TRAWL_BUILD_BRANCH");
    let date = git(
        &[
            "log",
            "-1",
            "--format=%cd",
            "--date=format-local:%Y%m%d-%H:%M:%S",
        ],
        "TRAWL_BUILD_DATE",
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(|v| format!("rustc{v}")))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TRAWL_REVISION={revision}");
    println!("cargo:rustc-env=TRAWL_BRANCH={branch}");
    println!("cargo:rustc-env=TRAWL_BUILD_DATE={date}");
    println!("cargo:rustc-env=TRAWL_RUSTC={rustc_version}");
    // A new commit or branch changes HEAD or the ref it names.
    if let Some(dir) = run("git", &["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(r) = run("git", &["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{r}");
        }
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
