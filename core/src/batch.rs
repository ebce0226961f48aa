//! What the core hands to storage: one [`Batch`] per committed scrape, its samples as
//! [`Point`]s of series numbered by [`SeriesRef`]. The scrape pipeline builds batches; the
//! WAL codec, the shells' writers and remote write read them. Nothing here depends on
//! either side.

use std::sync::Arc;

use crate::exposition::float::STALE_NAN;
use crate::labels::Labels;

/// A series' number in storage: assigned by the core when a series is first stored,
/// never reused while the agent runs (the WAL's series records carry it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef(pub u64);

/// One sample in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// The series.
    pub series: SeriesRef,
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value's bits (a stale marker is [`STALE_NAN`]; compare bits, not floats).
    pub v: u64,
}

impl Point {
    /// The value.
    pub fn value(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// True for a staleness marker.
    pub fn is_stale(&self) -> bool {
        self.v == STALE_NAN
    }
}

/// One committed scrape, ready for storage: the series first stored by it (each before
/// any sample that uses it), then the samples in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The job.
    pub job: Arc<str>,
    /// The target's URL.
    pub target: Arc<str>,
    /// The loop that scraped it (the `loop_id` of its requests' `Origin::Scrape`).
    pub loop_id: u64,
    /// New series: their refs and full label sets.
    pub series: Vec<(SeriesRef, Labels)>,
    /// Samples, stale markers and report samples.
    pub samples: Vec<Point>,
    /// Series that will never be used again (gone from the loop's cache, or the loop
    /// ended): storage and remote write may forget them once their samples are gone.
    pub retired: Vec<SeriesRef>,
}
