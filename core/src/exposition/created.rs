//! Start timestamps from OpenMetrics `_created` lines, as Prometheus 3.x finds them
//! (`OpenMetricsParser.StartTimestamp`, used when `created-timestamp-zero-ingestion` is
//! on).
//!
//! Prometheus answers "what is this sample's start timestamp?" by reading ahead through
//! the rest of its family for a `_created` line. A streaming parser cannot read ahead,
//! so [`StartTimes`] gives the same answers later: a sample whose answer is not known
//! yet is *pending*, and is resolved when the line that decides it arrives.
//!
//! The rules, followed exactly:
//! - Only counters, summaries and histograms (by the last `# TYPE` line) have start
//!   timestamps; their `_created` lines are not samples.
//! - A sample's group is its labels as written, without `quantile` in a summary and
//!   without `le` in a histogram, plus the first *n* bytes of its name, *n* being the
//!   length of the family name the last metadata line gave.
//! - Reading ahead from a sample, the first `_created` line decides: if its name without
//!   `_created` and its group match, its value (seconds) × 1000, truncated, is the start
//!   timestamp; otherwise there is none. Metadata or the end of the body before any
//!   `_created` line means none.
//! - One answer is remembered: a later sample of the group that last found its start
//!   timestamp gets it without reading ahead (so buckets after the `_created` line get
//!   it too); a sample whose search failed forgets it.

use super::{MetricType, Sample};

/// What to do with one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// A `_created` line of a counter, summary or histogram: not a sample.
    Created,
    /// The start timestamp is known now (ms; `None`: there is none).
    Known(Option<i64>),
    /// Not known yet: [`StartTimes`] resolves the token later.
    Pending,
}

/// The start-timestamp state of one body.
#[derive(Debug, Default)]
pub struct StartTimes {
    /// Length of the family name the last metadata line gave.
    family_len: usize,
    /// Samples waiting for a `_created` line: (token, group hash).
    pending: Vec<(u64, u64)>,
    /// The remembered answer: (group hash, start timestamp).
    cached: Option<(u64, i64)>,
}

fn requires_st(k: MetricType) -> bool {
    matches!(
        k,
        MetricType::Counter | MetricType::Summary | MetricType::Histogram
    )
}

impl StartTimes {
    /// State at the start of a body.
    pub fn new() -> StartTimes {
        StartTimes::default()
    }

    /// A `# HELP`, `# TYPE` or `# UNIT` line for `family`: every pending sample is
    /// resolved without a start timestamp (handed to `resolved` as `(token, None)`).
    pub fn metadata(&mut self, family: &str, resolved: &mut impl FnMut(u64, Option<i64>)) {
        self.end(resolved);
        self.family_len = family.len();
    }

    /// The end of the body (or an error): every pending sample is resolved without a
    /// start timestamp.
    pub fn end(&mut self, resolved: &mut impl FnMut(u64, Option<i64>)) {
        // A failed search clears the remembered answer.
        if !self.pending.is_empty() {
            self.cached = None;
        }
        for (token, _) in self.pending.drain(..) {
            resolved(token, None);
        }
    }

    /// One sample (`token` names it in later resolutions). A `_created` line resolves
    /// the pending samples through `resolved`.
    pub fn sample(
        &mut self,
        s: &Sample<'_>,
        token: u64,
        resolved: &mut impl FnMut(u64, Option<i64>),
    ) -> Disposition {
        if !requires_st(s.kind) {
            // Prometheus answers 0 at once for other types (and forgets its answer).
            self.cached = None;
            return Disposition::Known(None);
        }
        let name = s.name.as_bytes();
        if let Some(base) = name.strip_suffix(b"_created") {
            let h = group_hash(s, base);
            let st = (s.value * 1000.0) as i64;
            let mut last_found = None;
            for (t, g) in self.pending.drain(..) {
                if g == h && st != 0 {
                    resolved(t, Some(st));
                    last_found = Some(true);
                } else {
                    resolved(t, None);
                    last_found = Some(false);
                }
            }
            match last_found {
                Some(true) => self.cached = Some((h, st)),
                Some(false) => self.cached = None,
                None => {}
            }
            return Disposition::Created;
        }
        let prefix = &name[..self.family_len.min(name.len())];
        let h = group_hash(s, prefix);
        if let Some((g, st)) = self.cached
            && g == h
            && st > 0
            && self.pending.is_empty()
        {
            return Disposition::Known(Some(st));
        }
        self.pending.push((token, h));
        Disposition::Pending
    }
}

/// The hash of a sample's group: its labels as written but `quantile` (summary) or `le`
/// (histogram), then the family part of its name.
fn group_hash(s: &Sample<'_>, family: &[u8]) -> u64 {
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    for (n, v) in s.raw_labels() {
        if (s.kind == MetricType::Summary && n == "quantile")
            || (s.kind == MetricType::Histogram && n == "le")
        {
            continue;
        }
        buf.extend_from_slice(n.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(v.as_bytes());
        buf.push(0xff);
    }
    buf.extend_from_slice(family);
    xxhash_rust::xxh3::xxh3_64(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{BodyParser, Entry, Format};
    use std::collections::BTreeMap;

    /// (series text, start timestamp) for every sample, `_created` lines left out.
    fn starts(body: &str) -> Vec<(String, Option<i64>)> {
        let mut st = StartTimes::new();
        let mut out: Vec<(String, Option<i64>)> = Vec::new();
        let mut fill: BTreeMap<u64, Option<i64>> = BTreeMap::new();
        let mut p = BodyParser::new(Format::OpenMetrics);
        let mut sink = |e: Entry<'_>| -> Result<(), ()> {
            let mut resolved = |t: u64, v: Option<i64>| {
                fill.insert(t, v);
            };
            match &e {
                Entry::Help { name, .. } | Entry::Type { name, .. } | Entry::Unit { name, .. } => {
                    st.metadata(name, &mut resolved)
                }
                Entry::Eof => st.end(&mut resolved),
                Entry::Sample(s) => {
                    let token = out.len() as u64;
                    match st.sample(s, token, &mut resolved) {
                        Disposition::Created => {}
                        Disposition::Known(v) => out.push((s.series.to_owned(), v)),
                        Disposition::Pending => out.push((s.series.to_owned(), None)),
                    }
                }
                Entry::Comment | Entry::Histogram(_) => {}
            }
            Ok(())
        };
        p.feed(body.as_bytes(), &mut sink).unwrap();
        p.finish(&mut sink).unwrap();
        for (t, v) in fill {
            out[t as usize].1 = v;
        }
        out
    }

    #[test]
    fn created_lines_give_their_group_a_start_time() {
        let body = concat!(
            "# TYPE foo counter\n",
            "foo_total 17.0 1520879607.789\n",
            "foo_created 1520872607.123\n",
            "foo_total{a=\"b\"} 17.0\n",
            "foo_created{a=\"b\"} 1520872607.123\n",
            "foo_total{le=\"c\"} 21.0\n",
            "foo_created{le=\"c\"} 1520872621.123\n",
            "foo_total{le=\"1\"} 10.0\n",
            "# TYPE bar summary\n",
            "bar_count 17.0\n",
            "bar_sum 324789.3\n",
            "bar{quantile=\"0.95\"} 123.7\n",
            "bar_created 1520872608.124\n",
            "# TYPE baz histogram\n",
            "baz_count 17\n",
            "baz_created 1520872609.125\n",
            "baz_bucket{le=\"+Inf\"} 17\n",
            "# TYPE g gauge\n",
            "g_created 1\n",
            "# EOF\n",
        );
        let got = starts(body);
        let want: Vec<(String, Option<i64>)> = [
            ("foo_total", Some(1_520_872_607_123)),
            ("foo_total{a=\"b\"}", Some(1_520_872_607_123)),
            ("foo_total{le=\"c\"}", Some(1_520_872_621_123)),
            ("foo_total{le=\"1\"}", None),
            ("bar_count", Some(1_520_872_608_124)),
            ("bar_sum", Some(1_520_872_608_124)),
            ("bar{quantile=\"0.95\"}", Some(1_520_872_608_124)),
            ("baz_count", Some(1_520_872_609_125)),
            // After the `_created` line: the remembered answer.
            ("baz_bucket{le=\"+Inf\"}", Some(1_520_872_609_125)),
            // A gauge's `_created` is an ordinary sample.
            ("g_created", None),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn only_reading_ahead_finds_a_start_time() {
        // A `_created` line before its samples gives them nothing (Prometheus's known
        // limitation), and another group's `_created` line ends the search.
        let body = concat!(
            "# TYPE a counter\n",
            "a_created{x=\"1\"} 1000\n",
            "a_total{x=\"1\"} 1\n",
            "a_total{x=\"2\"} 1\n",
            "a_created{x=\"3\"} 1000\n",
            "a_created{x=\"2\"} 1000\n",
            "# EOF\n",
        );
        assert_eq!(
            starts(body),
            vec![
                ("a_total{x=\"1\"}".to_owned(), None),
                ("a_total{x=\"2\"}".to_owned(), None),
            ]
        );
    }
}
