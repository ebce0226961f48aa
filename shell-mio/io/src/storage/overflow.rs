//! What a shell does with a batch its storage queue has no room for.
//!
//! The samples go (they are counted as lost), but the batch's series declarations and
//! retirements must still reach storage, in order, or every later sample of those
//! series would refer to a series storage never heard of (the agent believes them
//! declared and never declares them again). [`Overflow`] keeps such series-only
//! batches, and everything after them, until the queue has room. It holds no samples,
//! so it grows only with new series, which the agent's series caches bound.

use std::collections::VecDeque;

use trawl_core::scrape::pipeline::Batch;

/// What a push cost: samples lost, and whether the batch still counts as one the
/// storage will report on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// Samples dropped.
    pub samples: u64,
    /// 1 if nothing of the batch is kept (report it as done now), 0 if its series-only
    /// remainder waits and storage reports on it when it gets there.
    pub batches: u64,
}

impl Lost {
    /// The report the agent takes for it, with `error` naming the full queue.
    pub fn as_input(self, error: &str) -> trawl_core::Stored<'_> {
        trawl_core::Stored {
            batches: self.batches,
            samples: 0,
            lost_samples: self.samples,
            error: Some(error),
        }
    }
}

/// Series-only batches waiting for room in a storage queue (both shells use it: the
/// daemon in front of the WAL writer, `trawl-tokio` in front of its sink).
#[derive(Debug, Default)]
pub struct Overflow {
    waiting: VecDeque<Batch>,
}

impl Overflow {
    /// Offers `b` to the queue through `try_send` (which gives the batch back when the
    /// queue is full). `None`: the batch went whole.
    pub fn push(
        &mut self,
        b: Batch,
        mut try_send: impl FnMut(Batch) -> Result<(), Batch>,
    ) -> Option<Lost> {
        self.flush(&mut try_send);
        let mut b = if self.waiting.is_empty() {
            match try_send(b) {
                Ok(()) => return None,
                Err(b) => b,
            }
        } else {
            b
        };
        let samples = b.samples.len() as u64;
        b.samples = Vec::new();
        if b.series.is_empty() && b.retired.is_empty() {
            return Some(Lost {
                samples,
                batches: 1,
            });
        }
        self.waiting.push_back(b);
        Some(Lost {
            samples,
            batches: 0,
        })
    }

    /// Moves what the queue has room for out of the overflow, oldest first.
    pub fn flush(&mut self, mut try_send: impl FnMut(Batch) -> Result<(), Batch>) {
        while let Some(b) = self.waiting.pop_front() {
            if let Err(b) = try_send(b) {
                self.waiting.push_front(b);
                return;
            }
        }
    }

    /// Takes every waiting batch (at shutdown, to send with waiting allowed).
    pub fn drain(&mut self) -> impl Iterator<Item = Batch> + '_ {
        self.waiting.drain(..)
    }

    /// Batches waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_core::labels::Labels;
    use trawl_core::scrape::pipeline::{Point, SeriesRef};

    fn batch(series: &[u64], samples: &[u64]) -> Batch {
        Batch {
            job: "j".into(),
            target: "t".into(),
            loop_id: 0,
            series: series
                .iter()
                .map(|&r| (SeriesRef(r), Labels::from_pairs([("__name__", "m")])))
                .collect(),
            samples: samples
                .iter()
                .map(|&r| Point {
                    series: SeriesRef(r),
                    t: 1000,
                    v: 1f64.to_bits(),
                })
                .collect(),
            histograms: Default::default(),
            exemplars: Default::default(),
            retired: Default::default(),
        }
    }

    #[test]
    fn a_full_queue_loses_samples_but_keeps_series_in_order() {
        let mut room = 1usize;
        let mut sent: Vec<Batch> = Vec::new();
        let mut o = Overflow::default();
        let send = |room: &mut usize, sent: &mut Vec<Batch>, b: Batch| {
            if *room == 0 {
                return Err(b);
            }
            *room -= 1;
            sent.push(b);
            Ok(())
        };
        assert_eq!(
            o.push(batch(&[1], &[1]), |b| send(&mut room, &mut sent, b)),
            None
        );
        // Full: the samples go, the declaration of series 2 waits.
        let lost = |samples, batches| Some(Lost { samples, batches });
        assert_eq!(
            o.push(batch(&[2], &[1, 2]), |b| send(&mut room, &mut sent, b)),
            lost(2, 0),
            "the rest of the batch is still to come"
        );
        // A batch with nothing to declare leaves nothing behind: done now.
        assert_eq!(
            o.push(batch(&[], &[1, 2]), |b| send(&mut room, &mut sent, b)),
            lost(2, 1)
        );
        assert_eq!(o.len(), 1);
        // Room again: the waiting declaration goes first, then the new batch whole.
        room = 2;
        assert_eq!(
            o.push(batch(&[3], &[1, 2, 3]), |b| send(&mut room, &mut sent, b)),
            None
        );
        assert!(o.is_empty());
        let declared: Vec<u64> = sent
            .iter()
            .flat_map(|b| b.series.iter().map(|s| s.0.0))
            .collect();
        assert_eq!(declared, [1, 2, 3]);
        assert!(
            sent[1].samples.is_empty(),
            "the overflowed batch kept no samples"
        );
        assert_eq!(sent[2].samples.len(), 3);
    }
}
