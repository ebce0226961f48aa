//! What this build is: version, commit, branch, compiler, commit date (`--version`,
//! `prometheus_build_info`, `/api/v1/status/buildinfo`).

/// trawl's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit built (`unknown` outside a git checkout).
pub const REVISION: &str = env!("TRAWL_REVISION");
/// The branch built.
pub const BRANCH: &str = env!("TRAWL_BRANCH");
/// The commit's date (`YYYYMMDD-HH:MM:SS`, UTC), so builds of one commit are alike.
pub const BUILD_DATE: &str = env!("TRAWL_BUILD_DATE");
/// The compiler (`rustc1.89.0`), in the place of Prometheus's `goversion`.
pub const RUSTC: &str = env!("TRAWL_RUSTC");

/// Cargo features built in (Prometheus's build `tags`).
pub const TAGS: &str = "";

/// The architecture as Go names it (`amd64`, `arm64`), as Prometheus's labels show it.
pub const GOARCH: &str = match std::env::consts::ARCH.as_bytes() {
    b"x86_64" => "amd64",
    b"aarch64" => "arm64",
    b"x86" => "386",
    _ => std::env::consts::ARCH,
};

/// `trawl --version`, in Prometheus's layout.
pub fn version_text() -> String {
    format!(
        "trawl, version {VERSION} (branch: {BRANCH}, revision: {REVISION})\n  build date:       {BUILD_DATE}\n  rust version:     {RUSTC}\n  platform:         {}/{}\n  tags:             {}\n",
        std::env::consts::OS,
        GOARCH,
        if TAGS.is_empty() { "unknown" } else { TAGS }
    )
}
