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

/// One exemplar in a batch: of a series' sample, with its own labels, value and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExemplarPoint {
    /// The series whose sample it annotates.
    pub series: SeriesRef,
    /// Milliseconds since the Unix epoch (the sample's time if the exposition gave none).
    pub t: i64,
    /// The value's bits.
    pub v: u64,
    /// Its labels, sorted (a trace id, usually).
    pub labels: Labels,
}

/// A batch's exemplars: one word and no allocation when there are none (most batches),
/// which keeps a [`Batch`] small enough to pass by value through channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
// The extra allocation is deliberate: one pointer in every batch instead of three words.
#[allow(clippy::box_collection)]
pub struct Exemplars(Option<Box<Vec<ExemplarPoint>>>);

impl Exemplars {
    /// The exemplars of `v` (none allocated if it is empty).
    pub fn new(v: Vec<ExemplarPoint>) -> Exemplars {
        Exemplars((!v.is_empty()).then(|| Box::new(v)))
    }
}

impl std::ops::Deref for Exemplars {
    type Target = [ExemplarPoint];
    fn deref(&self) -> &[ExemplarPoint] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
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
    /// Exemplars of the samples (stored as Prometheus's agent mode stores them: always).
    pub exemplars: Exemplars,
    /// Series that will never be used again (gone from the loop's cache, or the loop
    /// ended): storage and remote write may forget them once their samples are gone.
    pub retired: Vec<SeriesRef>,
}
