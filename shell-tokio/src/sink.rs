//! Where committed scrapes go: the [`Sink`] trait, and the built-in sinks.
//!
//! The agent hands each committed scrape ([`Batch`]: the scrape's new series with their
//! refs, its samples and stale markers, the refs it retires) to the sink in commit
//! order, on the sink's own task. The sink says what became of it, at once
//! ([`Outcome::Stored`], [`Outcome::Failed`]) or later through [`Acks`]
//! ([`Outcome::Deferred`]: the WAL sink reports when the writer thread has written and
//! synced a group of batches).
//!
//! **Back-pressure.** While a sink's `append` has not returned, the batches after it
//! wait in a queue of [`crate::Builder::max_pending`] batches. When that is full, the
//! agent keeps scraping: the new batch's samples are dropped and counted as lost
//! (`trawl_storage_samples_lost_total`, with the error
//! `"the sink's queue is full"`), and its series declarations and retirements still
//! reach the sink once there is room, so the sink never sees a sample of a series it
//! was not told about.

use std::future::Future;

use tokio::sync::mpsc::UnboundedSender;
pub use trawl_core::scrape::pipeline::Batch;

use crate::Done;

/// What became of one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, every sample of it.
    Stored,
    /// Not stored; the samples count as lost, and the agent logs the error (once, until
    /// a batch is stored again).
    Failed(String),
    /// Taken; the sink reports on it later through the [`Acks`] it was given at
    /// [`Sink::start`], in the order the batches came.
    Deferred,
}

/// A receiver of committed scrapes.
///
/// ```
/// use trawl_tokio::{Batch, Outcome, Sink};
///
/// /// Prints each scrape's sample count.
/// struct Print;
///
/// impl Sink for Print {
///     async fn append(&mut self, batch: Batch) -> Outcome {
///         println!("{} samples, {} new series", batch.samples.len(), batch.series.len());
///         Outcome::Stored
///     }
/// }
/// ```
pub trait Sink: Send + 'static {
    /// Called once, before the first batch, with the handle for deferred reports.
    fn start(&mut self, acks: Acks) {
        let _ = acks;
    }

    /// Takes one committed scrape. Batches come one at a time in commit order; while
    /// this runs, later ones wait (back-pressure, up to the agent's bound).
    fn append(&mut self, batch: Batch) -> impl Future<Output = Outcome> + Send;

    /// The agent has shut down and no batch will come: flush. Deferred outcomes
    /// should be reported before this returns (the agent waits for it).
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Reports on batches a sink took with [`Outcome::Deferred`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct Acks {
    pub(crate) tx: UnboundedSender<Done>,
}

impl Acks {
    /// The next `batches` deferred batches: `stored` samples stored and `lost` lost,
    /// with the error if any failed.
    pub fn report(&self, batches: u64, stored: u64, lost: u64, error: Option<String>) {
        self.ack(trawl_io::storage::Ack {
            batches,
            samples: stored,
            lost_samples: lost,
            error,
            written: Vec::new(),
        });
    }

    /// A report as the WAL writer makes it.
    pub(crate) fn ack(&self, a: trawl_io::storage::Ack) {
        let _ = self.tx.send(Done::Stored(a));
    }
}

/// A sink that keeps nothing: every batch counts as stored. The default, for hosts that
/// only want discovery, target health and the agent's metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl Sink for Discard {
    async fn append(&mut self, _: Batch) -> Outcome {
        Outcome::Stored
    }
}

/// A sink that forwards each batch to a tokio channel, for a host that consumes them in
/// its own task. A batch counts as stored once the channel takes it; the channel's
/// capacity adds to the agent's back-pressure bound. Once the receiver is dropped,
/// batches fail.
#[derive(Clone, Debug)]
pub struct ChannelSink(pub tokio::sync::mpsc::Sender<Batch>);

impl Sink for ChannelSink {
    async fn append(&mut self, batch: Batch) -> Outcome {
        match self.0.send(batch).await {
            Ok(()) => Outcome::Stored,
            Err(_) => Outcome::Failed("the batch receiver is gone".into()),
        }
    }
}

/// The local WAL, in Prometheus's format, written by `trawl-mio`'s writer thread (the
/// daemon's own storage: same files, same sync policy, same retention). Batches are
/// reported as the writer acknowledges them, so a group of batches shares one write
/// and one fsync.
pub struct WalSink {
    writer: Option<std::sync::Arc<trawl_io::storage::Writer>>,
    /// Woken by the writer after each acknowledgement: one for the forwarder, one for
    /// an `append` waiting for room.
    acked: std::sync::Arc<tokio::sync::Notify>,
    room: std::sync::Arc<tokio::sync::Notify>,
    acks: Option<Acks>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for WalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalSink").finish_non_exhaustive()
    }
}

fn forward(writer: &trawl_io::storage::Writer, acks: &Acks) {
    while let Some(a) = writer.try_ack() {
        acks.ack(a);
    }
}

impl WalSink {
    /// Opens (replaying, repairing a torn tail) the WAL in `dir/wal` and starts its
    /// writer thread. Hand the returned [`trawl_io::storage::Restored`] to
    /// [`crate::Builder::restore`] so series scraped again keep their refs
    /// ([`crate::Builder::wal`] does both).
    pub fn open(
        dir: &std::path::Path,
        wal: trawl_io::storage::WalOptions,
        writer: trawl_io::storage::WriterOptions,
    ) -> Result<(WalSink, trawl_io::storage::Restored), String> {
        WalSink::open_marked(dir, wal, writer, None)
    }

    /// As [`WalSink::open`], with retention keeping every segment from `keep_from` on
    /// (the oldest segment a remote-write queue still needs).
    pub(crate) fn open_marked(
        dir: &std::path::Path,
        wal: trawl_io::storage::WalOptions,
        writer: trawl_io::storage::WriterOptions,
        keep_from: Option<std::sync::Arc<std::sync::atomic::AtomicU32>>,
    ) -> Result<(WalSink, trawl_io::storage::Restored), String> {
        let (mut w, restored, report) =
            trawl_io::storage::Wal::open(dir, wal).map_err(|e| e.to_string())?;
        if let Some(m) = keep_from {
            w.keep_segments_from(m);
        }
        if let Some(r) = &report.repair {
            tracing::warn!(segment = r.segment, reason = %r.reason, from = r.from, to = r.to, "WAL repaired");
        }
        let acked = std::sync::Arc::new(tokio::sync::Notify::new());
        let room = std::sync::Arc::new(tokio::sync::Notify::new());
        let (a, r) = (acked.clone(), room.clone());
        let writer = trawl_io::storage::Writer::spawn(w, writer, move || {
            a.notify_one();
            r.notify_one();
        })
        .map_err(|e| format!("start the WAL writer: {e}"))?;
        Ok((
            WalSink {
                writer: Some(std::sync::Arc::new(writer)),
                acked,
                room,
                acks: None,
                forwarder: None,
            },
            restored,
        ))
    }
}

impl Sink for WalSink {
    fn start(&mut self, acks: Acks) {
        if let Some(w) = self.writer.clone() {
            let (a, woken) = (acks.clone(), self.acked.clone());
            self.forwarder = Some(tokio::spawn(async move {
                loop {
                    woken.notified().await;
                    forward(&w, &a);
                }
            }));
        }
        self.acks = Some(acks);
    }

    async fn append(&mut self, batch: Batch) -> Outcome {
        let Some(w) = self.writer.clone() else {
            return Outcome::Failed("the WAL is closed".into());
        };
        let mut batch = batch;
        loop {
            match w.try_append(batch) {
                Ok(()) => return Outcome::Deferred,
                // The writer's queue is full: wait for it to write (back-pressure).
                Err(b) => {
                    batch = b;
                    self.room.notified().await;
                }
            }
        }
    }

    async fn close(&mut self) {
        // The forwarder holds a handle to the writer: stop it first.
        if let Some(f) = self.forwarder.take() {
            f.abort();
            let _ = f.await;
        }
        let Some(w) = self.writer.take() else {
            return;
        };
        let Ok(mut w) = std::sync::Arc::try_unwrap(w) else {
            tracing::error!("the WAL writer is still shared; not closed");
            return;
        };
        // Everything taken is written and synced (blocking: off the runtime's threads).
        let (w, closed) = match tokio::task::spawn_blocking(move || {
            let r = w.close();
            (w, r)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(err = %e, "close the WAL");
                return;
            }
        };
        match closed {
            Ok(stats) => tracing::info!(
                samples = stats.samples,
                series = stats.series,
                lost = stats.lost_samples,
                "WAL closed"
            ),
            Err(e) => tracing::error!(err = %e, "close the WAL"),
        }
        if let Some(acks) = &self.acks {
            forward(&w, acks);
        }
    }
}
