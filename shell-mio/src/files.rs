//! The file work discovery asks for (read a file, list a directory), done the same way by
//! the daemon and by `trawl sd`, with the answer as the core's event.

use trawl_core::io::{IoEvent, IoOp};

/// The outcome of a file operation, owned until it is fed to the agent.
pub(crate) enum FileDone {
    Data(Vec<u8>),
    NotFound,
    Entries(Vec<String>),
    Failed(String),
}

/// Carries out `op` if it is file work (`None` for any other operation).
pub(crate) fn run(op: &IoOp) -> Option<FileDone> {
    Some(match op {
        IoOp::ReadFile { path, limit } => match std::fs::read(path) {
            Ok(d) if *limit > 0 && d.len() as u64 > *limit => {
                FileDone::Failed(format!("file larger than {limit} bytes"))
            }
            Ok(d) => FileDone::Data(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileDone::NotFound,
            Err(e) => FileDone::Failed(e.to_string()),
        },
        IoOp::ListDir { path } => match std::fs::read_dir(path) {
            Ok(it) => {
                let mut names: Vec<String> = it
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                FileDone::Entries(names)
            }
            Err(e) => FileDone::Failed(e.to_string()),
        },
        _ => return None,
    })
}

impl FileDone {
    /// Hands the outcome to `f` as the core's event.
    pub(crate) fn with_event(&self, f: impl FnOnce(IoEvent<'_>)) {
        match self {
            FileDone::Data(d) => f(IoEvent::FileData(d)),
            FileDone::NotFound => f(IoEvent::NotFound),
            FileDone::Entries(names) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                f(IoEvent::DirEntries(&refs));
            }
            FileDone::Failed(m) => f(IoEvent::Failed(m)),
        }
    }
}
