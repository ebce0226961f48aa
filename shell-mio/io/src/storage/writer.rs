//! The WAL on its own thread: batches arrive over a bounded crossbeam channel, are
//! grouped into records and written; acknowledgements go back once the batches are
//! written and, per the [`SyncPolicy`], synced.

use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use trawl_core::scrape::pipeline::Batch;

use super::wal::{Wal, WalStats};

/// When written batches are synced to disk (and acknowledged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every write: an acknowledgement means the batch is on disk.
    EveryWrite,
    /// At most this long after a write; acknowledgements wait for the sync.
    Interval(Duration),
    /// Never explicitly (the kernel writes back; segments are synced when they are
    /// completed, as Prometheus does): acknowledged once written.
    Never,
}

/// Writer thread settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Batches the channel holds before [`Writer::try_append`] refuses more.
    pub queue: usize,
    /// Sync policy.
    pub sync: SyncPolicy,
    /// Most batches grouped into one pair of records.
    pub max_group: usize,
    /// Most samples grouped into one samples record (a batch is never split).
    pub max_group_samples: usize,
    /// How long the thread lets batches gather after the first one arrives (zero: write
    /// at once). Scrapes spread over the interval would otherwise wake it for every
    /// batch: a 10 ms window turns a thousand wakeups a second into a hundred, for a
    /// batch that reaches the page cache 10 ms later. The queue must hold a window's
    /// batches; the window is skipped while it is more than half full.
    pub group_window: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            queue: 1024,
            sync: SyncPolicy::Interval(Duration::from_secs(1)),
            max_group: 256,
            max_group_samples: 1 << 20,
            group_window: Duration::from_millis(10),
        }
    }
}

/// The writer's report on batches, in the order they were appended: what the shell
/// hands to the core as [`trawl_core::Input::Stored`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    /// Batches reported on.
    pub batches: u64,
    /// Samples stored.
    pub samples: u64,
    /// Samples lost.
    pub lost_samples: u64,
    /// The last error among them, if any.
    pub error: Option<String>,
    /// The records these batches became, as written, for remote write's queues (see
    /// [`super::Written`]; empty without a queue, cut short past
    /// [`super::WRITTEN_MAX`] bytes).
    pub written: Vec<super::Written>,
}

impl Ack {
    /// As the core's input.
    pub fn as_input(&self) -> trawl_core::Stored<'_> {
        trawl_core::Stored {
            batches: self.batches,
            samples: self.samples,
            lost_samples: self.lost_samples,
            error: self.error.as_deref(),
        }
    }

    fn add(&mut self, o: Ack) {
        self.batches += o.batches;
        self.samples += o.samples;
        self.lost_samples += o.lost_samples;
        if o.error.is_some() {
            self.error = o.error;
        }
        // Past the bound, the queues read the rest from the files (a record that does
        // not follow on from the one before is never used: see `Written::after`).
        let bytes = |w: &[super::Written]| w.iter().map(|w| w.payload.len()).sum::<usize>();
        if bytes(&self.written) + bytes(&o.written) <= super::WRITTEN_MAX {
            self.written.extend(o.written);
        }
    }
}

/// A handle to the writer thread.
#[derive(Debug)]
pub struct Writer {
    tx: Option<Sender<Batch>>,
    acks: Receiver<Ack>,
    thread: Option<JoinHandle<io::Result<WalStats>>>,
    /// Set once the data directory is found removed or replaced ([`Wal::check_dir`]).
    lost: std::sync::Arc<std::sync::OnceLock<String>>,
    metrics: std::sync::Arc<std::sync::Mutex<trawl_core::metrics::Metrics>>,
}

/// How often the writer checks that its data directory is still there.
const DIR_CHECK: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Writer {
    /// Starts the thread; `wake` is called after each acknowledgement is queued (a
    /// `mio::Waker`, a tokio `Notify`...).
    pub fn spawn(
        wal: Wal,
        opts: WriterOptions,
        wake: impl Fn() + Send + 'static,
    ) -> io::Result<Writer> {
        let (tx, rx) = crossbeam_channel::bounded(opts.queue.max(1));
        let (ack_tx, acks) = crossbeam_channel::unbounded();
        let lost = std::sync::Arc::new(std::sync::OnceLock::new());
        let l = lost.clone();
        let metrics = std::sync::Arc::new(std::sync::Mutex::new(wal.metrics()));
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("trawl-wal".into())
            .spawn(move || run(wal, opts, rx, ack_tx, wake, &l, &m))?;
        Ok(Writer {
            tx: Some(tx),
            acks,
            thread: Some(thread),
            lost,
            metrics,
        })
    }

    /// The WAL's self-metrics as the writer last published them (it does once a
    /// second, [`DIR_CHECK`], when it wakes).
    pub fn metrics(&self) -> trawl_core::metrics::Metrics {
        self.metrics
            .lock()
            .map(|m| m.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Why the data directory can no longer be written, once the writer found it
    /// removed or replaced (checked every [`DIR_CHECK`]). From then on every batch is
    /// reported lost with this error; the daemon stops.
    pub fn lost_dir(&self) -> Option<&str> {
        self.lost.get().map(String::as_str)
    }

    /// Queues a batch; gives it back if the queue is full (the caller counts it lost and
    /// reports it to the core) or the thread is gone.
    pub fn try_append(&self, b: Batch) -> Result<(), Batch> {
        match &self.tx {
            Some(tx) => tx.try_send(b).map_err(|e| match e {
                TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
            }),
            None => Err(b),
        }
    }

    /// Queues a batch, waiting while the queue is full (for hosts that want
    /// back-pressure rather than loss).
    pub fn append(&self, b: Batch) -> Result<(), Batch> {
        match &self.tx {
            Some(tx) => tx.send(b).map_err(|e| e.0),
            None => Err(b),
        }
    }

    /// The next acknowledgement, if one is ready.
    pub fn try_ack(&self) -> Option<Ack> {
        self.acks.try_recv().ok()
    }

    /// The acknowledgement channel (for `select!`).
    pub fn acks(&self) -> &Receiver<Ack> {
        &self.acks
    }

    /// Writes what is queued, closes the WAL (padding the last page, syncing) and
    /// returns its counters. Acknowledgements still queued stay readable until the
    /// handle is dropped; call [`Writer::drain_acks`] afterwards.
    pub fn close(&mut self) -> io::Result<WalStats> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the WAL writer thread panicked"))),
            None => Err(io::Error::other("the WAL writer is already closed")),
        }
    }

    /// Every acknowledgement still queued, merged.
    pub fn drain_acks(&self) -> Ack {
        let mut a = Ack::default();
        while let Ok(x) = self.acks.try_recv() {
            a.add(x);
        }
        a
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.close();
        }
    }
}

fn run(
    mut wal: Wal,
    opts: WriterOptions,
    rx: Receiver<Batch>,
    acks: Sender<Ack>,
    wake: impl Fn(),
    lost: &std::sync::OnceLock<String>,
    metrics: &std::sync::Mutex<trawl_core::metrics::Metrics>,
) -> io::Result<WalStats> {
    let send = |a: Ack| {
        if a.batches > 0 {
            let _ = acks.send(a);
            wake();
        }
    };
    let mut held = Ack::default();
    let mut last_sync = Instant::now();
    let mut last_check = Instant::now();
    let mut group: Vec<Batch> = Vec::new();
    let mut published = Instant::now();
    loop {
        // What the loop wrote or synced, for `/metrics`: once a second, not per group.
        if published.elapsed() >= DIR_CHECK {
            published = Instant::now();
            let snapshot = wal.metrics();
            match metrics.lock() {
                Ok(mut m) => *m = snapshot,
                Err(p) => *p.into_inner() = snapshot,
            }
        }
        if lost.get().is_none() && last_check.elapsed() >= DIR_CHECK {
            last_check = Instant::now();
            if let Err(e) = wal.check_dir() {
                let _ = lost.set(e);
                wake();
            }
        }
        let wait = match opts.sync {
            SyncPolicy::Interval(d) if held.batches > 0 || wal.unsynced() => {
                d.saturating_sub(last_sync.elapsed())
            }
            _ => Duration::from_secs(3600),
        }
        .min(DIR_CHECK);
        let first = match rx.recv_timeout(wait) {
            Ok(b) => Some(b),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(b) = first {
            if !opts.group_window.is_zero() && rx.len() < opts.queue / 2 {
                // Sleeping, not waiting on the channel: senders find no receiver to
                // wake, so sending costs them no system call either.
                std::thread::sleep(opts.group_window);
            }
            let mut samples = b.samples.len();
            group.push(b);
            while group.len() < opts.max_group && samples < opts.max_group_samples {
                match rx.try_recv() {
                    Ok(b) => {
                        samples += b.samples.len();
                        group.push(b);
                    }
                    Err(_) => break,
                }
            }
            let this = match lost.get() {
                // Written into unlinked files, they would be lost silently.
                Some(e) => Ack {
                    batches: group.len() as u64,
                    samples: 0,
                    lost_samples: group.iter().map(|b| b.samples.len() as u64).sum(),
                    error: Some(e.clone()),
                    ..Ack::default()
                },
                None => {
                    let r = wal.append(&group, now_ms());
                    let written = wal.take_written();
                    Ack {
                        batches: group.len() as u64,
                        samples: r.stored,
                        lost_samples: r.lost,
                        error: r
                            .error
                            .map(|e| format!("write {}: {e}", wal.dir().display())),
                        written,
                    }
                }
            };
            group.clear();
            // Failures and successes are reported apart, so the core sees the storage
            // fail and recover.
            if held.batches > 0 && held.error.is_some() != this.error.is_some() {
                if held.error.is_none() {
                    sync(&mut wal, &mut held);
                    last_sync = Instant::now();
                }
                send(std::mem::take(&mut held));
            }
            held.add(this);
        }
        match opts.sync {
            SyncPolicy::EveryWrite => {
                sync(&mut wal, &mut held);
                send(std::mem::take(&mut held));
            }
            SyncPolicy::Never => send(std::mem::take(&mut held)),
            SyncPolicy::Interval(d) => {
                if last_sync.elapsed() >= d {
                    sync(&mut wal, &mut held);
                    last_sync = Instant::now();
                    send(std::mem::take(&mut held));
                }
            }
        }
    }
    let stats = wal.close();
    if let Err(e) = &stats {
        held.error = Some(format!("close: {e}"));
    }
    send(held);
    stats
}

fn sync(wal: &mut Wal, held: &mut Ack) {
    if let Err(e) = wal.sync() {
        held.error = Some(format!("sync {}: {e}", wal.dir().display()));
    }
}
