//! Running a fake's check with a real Python client: each `tests/*_fake.rs` starts its
//! fake, runs a script of `src/` against it and compares what the client printed.

use std::process::Command;

/// True if the Python module `module` is missing: outside CI the check is skipped (with
/// the `pip` requirement to install named); in CI a missing client fails the test, as
/// `.ci/run` installs every one.
pub fn missing(module: &str, pip: &str) -> bool {
    let present = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{module} is missing: .ci/run installs it ({pip})"
    );
    eprintln!("skipped: pip install {pip} to run this check");
    true
}

/// Runs `src/<script>` with `args`; it must succeed. Its standard output, line by line.
pub fn run(script: &str, args: &[&str]) -> Vec<String> {
    let path = format!("{}/src/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().map(str::to_owned).collect()
}
