//! The local WAL: a data directory in Prometheus's layout (`<dir>/wal/00000000`, …,
//! `<dir>/wal/checkpoint.NNNNNNNN/`, `<dir>/lock`).
//!
//! The encoding (records, pages, fragments, checksums) is the core's
//! ([`trawl_core::wal`]); this module does the files: opening and repairing a directory,
//! appending batches, rotating segments, syncing, retention and checkpoints.
//!
//! # Series refs across restarts
//!
//! [`Wal::open`] replays the newest checkpoint and every segment after it and returns what
//! it found as a [`Restored`]; the shell hands it to the agent
//! ([`trawl_core::Input::Restore`]) before anything is scraped. A series scraped again
//! keeps its ref, with the time of its last sample; new series get refs above every ref
//! in the directory. Each start writes to a new segment, as Prometheus does.
//!
//! # Repair
//!
//! A segment that ends inside a record (a crash during a write) or holds a record whose
//! checksum fails is truncated to its last whole record; segments after a damaged one
//! are unreadable to Prometheus (its reader stops at the damage), so they are removed,
//! as Prometheus's own repair does. What was removed is in the [`OpenReport`].
//!
//! # Retention: checkpoints, not re-declared series
//!
//! Retention deletes whole old segments, oldest first, when the directory is larger
//! than the size bound or a segment's newest sample is older than the time bound. The
//! series records in them may still be needed by later segments, so before deleting
//! segments `..=N` the writer writes `checkpoint.N` holding the series records that are
//! still needed: series still in use (declared and not retired by the core) and series
//! retired in a segment after `N`. Prometheus and `promtool` read the checkpoint, then the
//! segments after it. The alternative, writing every live series into each new segment,
//! costs a full copy of all series labels per segment (tens of MB for a million series,
//! a large fraction of a 128 MiB segment) and holds every label set in memory; a
//! checkpoint costs one pass over the deleted segments and nothing in memory between
//! passes but one small entry per series.
//!
//! # A full disk
//!
//! A write that fails is undone (the segment is truncated back to its last whole record)
//! and reported; its samples are lost and counted, the series it declared are kept and
//! declared again with the next write that uses them, and the next batch tries again.
//! Nothing else changes: the agent goes on scraping and the writer resumes by itself
//! when space returns.
//!
//! # A full queue
//!
//! When the writer's queue is full, a batch's samples are lost (and counted), but its
//! series declarations and retirements wait in an [`Overflow`] and reach the writer,
//! in order, once there is room: later samples of those series are stored as usual.

mod declared;
mod overflow;
mod wal;
mod writer;

pub use overflow::{Lost, Overflow};
pub use trawl_core::wal::replay::Restored;
pub use wal::{
    Appended, DEFAULT_SEGMENT_SIZE, OpenError, OpenReport, Repair, ReplayProgress, WRITTEN_MAX,
    WRITTEN_RECORD_MAX, Wal, WalOptions, WalStats, Written,
};
pub use writer::{Ack, SyncPolicy, Writer, WriterOptions};
