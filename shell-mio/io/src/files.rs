//! The file work discovery asks for (read a file, list a directory), done the same way by
//! the daemon (on a worker thread, so a large or slow file never stalls the loop) and by
//! `trawl sd` (inline), with the answer as the core's event.

use std::io::Read;

use trawl_core::io::{IoOp, OwnedIoEvent, RequestId};

/// What a file SD directory watch listens for: every change of an entry but chmod, and
/// the directory itself going away. Both shells watch with it.
pub fn watch_mask() -> inotify::WatchMask {
    use inotify::WatchMask;
    WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

/// Carries out `op` if it is file work (`None` for any other operation).
pub fn run(op: &IoOp) -> Option<OwnedIoEvent> {
    Some(match op {
        IoOp::ReadFile { path, limit } => match read_limited(path, *limit) {
            Ok(Some(d)) => OwnedIoEvent::FileData(d),
            Ok(None) => OwnedIoEvent::Failed(format!("file larger than {limit} bytes")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OwnedIoEvent::NotFound,
            Err(e) => OwnedIoEvent::Failed(e.to_string()),
        },
        IoOp::ListDir { path } => match std::fs::read_dir(path) {
            Ok(it) => {
                let mut names: Vec<String> = it
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                OwnedIoEvent::DirEntries(names)
            }
            Err(e) => OwnedIoEvent::Failed(e.to_string()),
        },
        _ => return None,
    })
}

/// The file's contents, or `None` if it holds more than `limit` bytes (0: no limit).
/// Never reads more than one byte past the limit, whatever the file's size. Only
/// regular files are read: a FIFO, socket or device in a discovery directory is refused
/// (a FIFO would block the reader until someone writes to it, and the worker with it).
/// The file is opened without blocking and checked once open, so nothing swapped in
/// between a check and the open can block either.
pub fn read_limited(path: &str, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // Checked before opening too: opening some devices has effects of its own.
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other(format!("{path}: not a regular file")));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!("{path}: not a regular file")));
    }
    let size = meta.len();
    if limit > 0 && size > limit {
        return Ok(None);
    }
    let mut d = Vec::with_capacity(size as usize);
    if limit > 0 {
        // The file may have grown since.
        f.take(limit + 1).read_to_end(&mut d)?;
        if d.len() as u64 > limit {
            return Ok(None);
        }
    } else {
        let mut f = f;
        f.read_to_end(&mut d)?;
    }
    Ok(Some(d))
}

/// The daemon's file worker: file operations in, outcomes out; `wake` after each (the
/// loop's `mio::Waker`). The thread ends when the sender is dropped.
pub type Worker = (
    crossbeam_channel::Sender<(RequestId, IoOp)>,
    crossbeam_channel::Receiver<(RequestId, OwnedIoEvent)>,
);

/// Starts the file worker thread.
pub fn spawn_worker(wake: impl Fn() + Send + 'static) -> std::io::Result<Worker> {
    let (tx, rx) = crossbeam_channel::unbounded::<(RequestId, IoOp)>();
    let (dtx, drx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("trawl-files".into())
        .spawn(move || {
            for (id, op) in rx {
                if let Some(d) = run(&op)
                    && dtx.send((id, d)).is_err()
                {
                    return;
                }
                wake();
            }
        })?;
    Ok((tx, drx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_limit_and_say_so() {
        let dir = std::env::temp_dir().join(format!("trawl-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("sd.json");
        std::fs::write(&f, vec![b'x'; 1000]).expect("write");
        let p = f.to_string_lossy().into_owned();
        assert_eq!(
            read_limited(&p, 1000).expect("read").map(|d| d.len()),
            Some(1000)
        );
        assert_eq!(read_limited(&p, 999).expect("read"), None);
        assert_eq!(
            read_limited(&p, 0).expect("read").map(|d| d.len()),
            Some(1000)
        );
        // A FIFO nobody writes to is refused at once instead of blocking the worker.
        let fifo = dir.join("pipe.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(made.success());
        let fifo = fifo.to_string_lossy().into_owned();
        let started = std::time::Instant::now();
        let e = read_limited(&fifo, 0).expect_err("a FIFO is refused");
        assert_eq!(e.to_string(), format!("{fifo}: not a regular file"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(read_limited("/dev/zero", 0).is_err(), "devices are refused");
        let missing = dir.join("none").to_string_lossy().into_owned();
        assert!(matches!(
            run(&IoOp::ReadFile {
                path: missing,
                limit: 0
            }),
            Some(OwnedIoEvent::NotFound)
        ));
        // Through the worker: the outcome comes back with its request id.
        let woke = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = woke.clone();
        let (tx, rx) = spawn_worker(move || {
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .expect("worker");
        tx.send((RequestId(7), IoOp::ReadFile { path: p, limit: 10 }))
            .expect("send");
        let (id, d) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("answer");
        assert_eq!(id, RequestId(7));
        assert!(matches!(d, OwnedIoEvent::Failed(m) if m == "file larger than 10 bytes"));
        drop(tx);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
