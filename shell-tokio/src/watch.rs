//! File SD's directory watches: inotify through its tokio event stream, one instance
//! per watched directory (a handful per agent), with the daemon's mask
//! (`trawl_io::files::watch_mask`).

use std::pin::Pin;

use futures_core::Stream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;
use trawl_core::io::{OwnedIoEvent, RequestId};
use trawl_io::client::Caller;

use crate::Done;

/// Watches `path` until the task is aborted, reporting each change to `tx`.
pub(crate) fn watch(id: RequestId, path: String, tx: UnboundedSender<Done>) -> AbortHandle {
    tokio::spawn(async move {
        if let Err(msg) = run(id, &path, &tx).await {
            let _ = tx.send(Done::Io(Caller::Agent(id), OwnedIoEvent::Failed(msg)));
        }
    })
    .abort_handle()
}

async fn run(id: RequestId, path: &str, tx: &UnboundedSender<Done>) -> Result<(), String> {
    let ino = inotify::Inotify::init().map_err(|e| format!("watch {path}: {e}"))?;
    ino.watches()
        .add(path, trawl_io::files::watch_mask())
        .map_err(|e| format!("watch {path}: {e}"))?;
    let mut events = ino
        .into_event_stream(vec![0u8; 16 << 10])
        .map_err(|e| format!("watch {path}: {e}"))?;
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut events).poll_next(cx)).await;
        match next {
            Some(Ok(e)) => {
                let name = e.name.map(|n| n.to_string_lossy().into_owned());
                if tx
                    .send(Done::Io(Caller::Agent(id), OwnedIoEvent::Changed(name)))
                    .is_err()
                {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(format!("watch {path}: {e}")),
            None => return Err(format!("watch {path}: the inotify stream ended")),
        }
    }
}
