//! Paths in a configuration: resolved against the directory of the file they are written in,
//! as Go's `config.JoinDir` and `filepath.Clean` do.

/// Resolves relative paths against the configuration's directory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PathResolver<'a> {
    pub(crate) dir: &'a str,
}

/// Go's `config.JoinDir`: empty and absolute paths are kept; relative ones are joined to
/// `dir` and cleaned (`filepath.Join`).
pub fn join_dir(dir: &str, path: &str) -> String {
    if path.is_empty() || path.starts_with('/') {
        return path.to_owned();
    }
    clean_path(&format!("{dir}/{path}"))
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}
