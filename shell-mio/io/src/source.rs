//! A configuration read from its files, as both shells load it: the main file, the
//! environment (for `external_labels` expansion) and the files `scrape_config_files`
//! names, all held in a [`ConfigSource`] the core parses (and a recording keeps).

use std::path::Path;

use trawl_core::config::Config;
use trawl_core::recording::ConfigSource;

/// Loads and validates a configuration file.
pub fn load_config(path: &Path) -> Result<Config, String> {
    config_source(path)?.parse().map_err(|e| {
        format!(
            "couldn't load configuration (--config.file={}): {e}",
            path.display()
        )
    })
}

/// Reads a configuration file as its source (text and environment), for the agent
/// and the recording.
pub fn config_source(path: &Path) -> Result<ConfigSource, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "couldn't load configuration (--config.file={}): {e}",
            path.display()
        )
    })?;
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    let mut src = ConfigSource {
        path: path.to_string_lossy().into_owned(),
        text,
        env,
        files: Vec::new(),
    };
    // The patterns come from a first parse; a configuration that does not parse fails
    // with its own error later.
    if let Ok(c) = src.parse() {
        src.files = scrape_config_files(&c.scrape_config_files).map_err(|e| {
            format!(
                "couldn't load configuration (--config.file={}): error loading scrape configs: {e}",
                path.display()
            )
        })?;
    }
    Ok(src)
}

/// Expands `scrape_config_files` patterns (already resolved against the configuration's
/// directory) and reads the files, as 3.x's `Config.GetScrapeConfigs` does: patterns in
/// order, each one's matches sorted; a pattern that matches nothing, or a file that does
/// not exist, adds nothing; a match that cannot be read (a directory, no permission) is
/// an error naming it. Paths are made absolute (the files' own relative paths resolve
/// against their directories).
pub fn scrape_config_files(patterns: &[String]) -> Result<Vec<(String, String)>, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for p in patterns {
        let abs = if p.starts_with('/') {
            p.clone()
        } else {
            trawl_core::config::clean_path(&format!("{}/{p}", cwd.display()))
        };
        let (dir, base) = match abs.rfind('/') {
            Some(i) => (&abs[..i.max(1)], &abs[i + 1..]),
            None => (".", abs.as_str()),
        };
        let mut matches = Vec::new();
        if base.contains(['*', '?', '[']) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if trawl_core::discovery::groups::glob_match(base, &name) {
                        matches.push(format!("{}/{name}", dir.trim_end_matches('/')));
                    }
                }
            }
            matches.sort();
        } else if std::fs::symlink_metadata(&abs).is_ok() {
            matches.push(abs.clone());
        }
        for m in matches {
            // Bounded as discovery files are: a configuration is never this large.
            let text = crate::files::read_limited(&m, 64 << 20)
                .map_err(|e| format!("{m:?}: {e}"))?
                .ok_or_else(|| format!("{m:?}: larger than 64 MiB"))?;
            let text = String::from_utf8(text).map_err(|_| format!("{m:?}: not UTF-8"))?;
            out.push((m, text));
        }
    }
    Ok(out)
}

/// The in-cluster Kubernetes API server from `KUBERNETES_SERVICE_HOST` and
/// `KUBERNETES_SERVICE_PORT` (both set, as `rest.InClusterConfig` requires), for
/// [`trawl_core::agent::AgentOptions::kubernetes_service`].
pub fn kubernetes_service_from_env() -> Option<(String, String)> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").ok()?;
    (!host.is_empty() && !port.is_empty()).then_some((host, port))
}

/// The prefix of the environment variables that point a cloud mechanism at a fake.
pub const API_BASE_PREFIX: &str = "TRAWL_TEST_API_BASE_";

/// **For tests only**: cloud API base URLs from `TRAWL_TEST_API_BASE_<NAME>` variables
/// (`TRAWL_TEST_API_BASE_DIGITALOCEAN=http://127.0.0.1:8080`), by lowercased mechanism
/// name, for [`trawl_core::agent::AgentOptions::api_bases`]; and the variables refused.
/// Only loopback bases are taken (`127.0.0.0/8`, `[::1]`, `localhost`): a fake on the
/// test's machine is what the override is for, and a variable set by mistake cannot send
/// a cloud token anywhere else. Production environments set none; the daemon and
/// `trawl sd` say which they use and which they refuse.
pub fn api_bases_from_env() -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    api_bases_from(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    )
}

/// True if `url` is `http(s)://` a loopback host.
fn is_loopback_base(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn api_bases_from(
    vars: impl Iterator<Item = (String, String)>,
) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    let mut ok = std::collections::BTreeMap::new();
    let mut refused = Vec::new();
    for (k, v) in vars {
        let Some(name) = k.strip_prefix(API_BASE_PREFIX) else {
            continue;
        };
        if name.is_empty() || v.is_empty() {
            continue;
        }
        if is_loopback_base(&v) {
            ok.insert(name.to_ascii_lowercase(), v);
        } else {
            refused.push(format!("{k}={v}: not a loopback http(s) URL"));
        }
    }
    (ok, refused)
}

#[cfg(test)]
mod api_base_tests {
    #[test]
    fn only_prefixed_nonempty_loopback_variables_count() {
        let vars = [
            ("TRAWL_TEST_API_BASE_DIGITALOCEAN", "http://127.0.0.1:1"),
            ("TRAWL_TEST_API_BASE_IONOS", "http://[::1]:2/x"),
            ("TRAWL_TEST_API_BASE_HETZNER", "http://localhost:3"),
            ("TRAWL_TEST_API_BASE_", "http://x"),
            ("TRAWL_TEST_API_BASE_VULTR", ""),
            ("TRAWL_TEST_API_BASE_LINODE", "https://api.linode.com"),
            (
                "TRAWL_TEST_API_BASE_OVHCLOUD",
                "http://127.0.0.1@evil.example",
            ),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let (got, refused) = super::api_bases_from(vars.into_iter());
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [
                ("digitalocean".to_owned(), "http://127.0.0.1:1".to_owned()),
                ("hetzner".to_owned(), "http://localhost:3".to_owned()),
                ("ionos".to_owned(), "http://[::1]:2/x".to_owned()),
            ]
        );
        assert_eq!(
            refused,
            [
                "TRAWL_TEST_API_BASE_LINODE=https://api.linode.com: not a loopback http(s) URL",
                "TRAWL_TEST_API_BASE_OVHCLOUD=http://127.0.0.1@evil.example: not a loopback http(s) URL",
            ]
        );
    }
}
