//! Reading a WAL back at start: which series it declares (ref and labels), the last
//! sample time of each, and the first ref never used. The shell reads the files (the
//! newest checkpoint, then the segments after it, in order) and feeds their records here;
//! the result seeds the agent ([`crate::agent::Input::Restore`]) so a series scraped again
//! after a restart keeps its ref, and the writer, so retention keeps what is still needed.

use std::collections::BTreeMap;

use crate::batch::SeriesRef;
use crate::labels::Labels;
use crate::wal::record;

/// The series a WAL holds, read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Every ref at or above this one is unused (refs are never reused, across restarts
    /// too).
    pub next_ref: u64,
    /// Each distinct label set with its ref (the first one declared, as Prometheus maps a
    /// later duplicate to it) and the time of its last sample (`i64::MIN` if none), in
    /// ref order.
    pub series: Vec<RestoredSeries>,
}

/// One series read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredSeries {
    /// Its ref.
    pub series: SeriesRef,
    /// Its labels.
    pub labels: Labels,
    /// Time of its last sample (`i64::MIN` if it has none).
    pub last_t: i64,
}

/// Counts from a replay, for the start-up log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Records read.
    pub records: u64,
    /// Series declared (duplicates included).
    pub series: u64,
    /// Samples read.
    pub samples: u64,
    /// Samples whose ref no series record declared before them (Prometheus drops them as
    /// "unknown series references").
    pub unknown_refs: u64,
    /// Records that could not be decoded (or decompressed): skipped.
    pub malformed: u64,
}

/// Accumulates records in WAL order.
#[derive(Debug, Default)]
pub struct Replay {
    /// ref → (canonical ref, labels if canonical, last sample time).
    refs: BTreeMap<u64, Entry>,
    /// (labels hash, canonical ref), to find a label set's ref.
    by_labels: hashbrown::HashTable<(u64, u64)>,
    next_ref: u64,
    stats: ReplayStats,
    /// Latest sample time since [`Replay::take_max_t`] was last called.
    max_t: i64,
}

#[derive(Debug)]
struct Entry {
    canonical: u64,
    labels: Option<Labels>,
    last_t: i64,
}

impl Replay {
    /// Nothing read yet.
    pub fn new() -> Replay {
        Replay {
            next_ref: 1,
            max_t: i64::MIN,
            ..Replay::default()
        }
    }

    /// One record's payload (decompressed). Unknown record types are skipped, as
    /// Prometheus's replay skips them.
    pub fn record(&mut self, payload: &[u8]) {
        self.stats.records += 1;
        match payload.first() {
            Some(&record::kind::SERIES) => match record::decode_series(payload) {
                Some(s) => {
                    for (r, labels) in s {
                        self.series(r.0, labels);
                    }
                }
                None => self.stats.malformed += 1,
            },
            Some(&record::kind::SAMPLES) => match record::decode_samples(payload) {
                Some(s) => {
                    self.stats.samples += s.len() as u64;
                    for p in s {
                        self.sample_at(p.series.0, p.t);
                    }
                }
                None => self.stats.malformed += 1,
            },
            Some(
                &(record::kind::HISTOGRAM_SAMPLES
                | record::kind::FLOAT_HISTOGRAM_SAMPLES
                | record::kind::CUSTOM_BUCKETS_HISTOGRAM_SAMPLES
                | record::kind::CUSTOM_BUCKETS_FLOAT_HISTOGRAM_SAMPLES),
            ) => match record::decode_histograms(payload) {
                Some(h) => {
                    self.stats.samples += h.len() as u64;
                    for p in h {
                        self.sample_at(p.series.0, p.t);
                    }
                }
                None => self.stats.malformed += 1,
            },
            _ => {}
        }
    }

    /// A stored sample (float or histogram) of series `r` at `t`.
    fn sample_at(&mut self, r: u64, t: i64) {
        self.max_t = self.max_t.max(t);
        match self.refs.get(&r).map(|e| e.canonical) {
            Some(c) => {
                if let Some(e) = self.refs.get_mut(&c) {
                    e.last_t = e.last_t.max(t);
                }
            }
            None => self.stats.unknown_refs += 1,
        }
    }

    /// A record that could not be decompressed.
    pub fn malformed(&mut self) {
        self.stats.records += 1;
        self.stats.malformed += 1;
    }

    fn series(&mut self, r: u64, labels: Labels) {
        self.stats.series += 1;
        self.next_ref = self.next_ref.max(r.saturating_add(1));
        if self.refs.contains_key(&r) {
            // The same ref declared again (a restart re-declares the series it adopted).
            return;
        }
        let h = labels.hash();
        let refs = &self.refs;
        let found = self.by_labels.find(h, |&(eh, c)| {
            eh == h
                && refs
                    .get(&c)
                    .and_then(|e| e.labels.as_ref())
                    .is_some_and(|l| *l == labels)
        });
        let canonical = match found {
            Some(&(_, c)) => c,
            None => {
                self.by_labels.insert_unique(h, (h, r), |e| e.0);
                r
            }
        };
        let own = (canonical == r).then_some(labels);
        self.refs.insert(
            r,
            Entry {
                canonical,
                labels: own,
                last_t: i64::MIN,
            },
        );
    }

    /// The latest sample time read since the last call (`i64::MIN` if none): the shell
    /// calls it after each segment to learn how old the segment's data is.
    pub fn take_max_t(&mut self) -> i64 {
        std::mem::replace(&mut self.max_t, i64::MIN)
    }

    /// Counts so far.
    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// The result.
    pub fn finish(self) -> Restored {
        let series = self
            .refs
            .into_iter()
            .filter_map(|(r, e)| {
                e.labels.map(|labels| RestoredSeries {
                    series: SeriesRef(r),
                    labels,
                    last_t: e.last_t,
                })
            })
            .collect();
        Restored {
            next_ref: self.next_ref,
            series,
        }
    }
}
