//! What the core hands to storage: one [`Batch`] per committed scrape, its samples as
//! [`Point`]s of series numbered by [`SeriesRef`]. The scrape pipeline builds batches; the
//! WAL codec, the shells' writers and remote write read them. Nothing here depends on
//! either side.

use std::sync::Arc;

use crate::exposition::float::STALE_NAN;
use crate::histogram::Histogram;
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

/// One native histogram sample in a batch (a stale marker is a histogram whose sum is
/// [`STALE_NAN`], as Prometheus's head stores it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramPoint {
    /// The series.
    pub series: SeriesRef,
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The histogram.
    pub h: Histogram,
}

/// A list most batches leave empty (exemplars, histograms): one word and no allocation
/// when empty, which keeps a [`Batch`] small enough to pass by value through channels.
#[derive(Clone, Debug, PartialEq, Eq)]
// The extra allocation is deliberate: one pointer in every batch instead of three words.
#[allow(clippy::box_collection)]
pub struct Sparse<T>(Option<Box<Vec<T>>>);

impl<T> Default for Sparse<T> {
    fn default() -> Self {
        Sparse(None)
    }
}

impl<T> Sparse<T> {
    /// The items of `v` (none allocated if it is empty).
    pub fn new(v: Vec<T>) -> Sparse<T> {
        Sparse((!v.is_empty()).then(|| Box::new(v)))
    }

    /// Appends one item.
    pub fn push(&mut self, x: T) {
        self.0.get_or_insert_with(Default::default).push(x);
    }
}

impl<T> From<Vec<T>> for Sparse<T> {
    fn from(v: Vec<T>) -> Sparse<T> {
        Sparse::new(v)
    }
}

impl<T> Extend<T> for Sparse<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, it: I) {
        for x in it {
            self.push(x);
        }
    }
}

impl<'a, T> IntoIterator for &'a Sparse<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> std::ops::Deref for Sparse<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

/// A batch's exemplars.
pub type Exemplars = Sparse<ExemplarPoint>;

/// A batch's native histogram samples.
pub type Histograms = Sparse<HistogramPoint>;

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
    /// Native histogram samples and their stale markers (stored after the samples, as
    /// Prometheus's agent logs them).
    pub histograms: Histograms,
    /// Exemplars of the samples (stored as Prometheus's agent mode stores them: always).
    pub exemplars: Exemplars,
    /// Series that will never be used again (gone from the loop's cache, or the loop
    /// ended): storage and remote write may forget them once their samples are gone.
    pub retired: Sparse<SeriesRef>,
}
