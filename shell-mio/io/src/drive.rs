//! The bookkeeping between the agent and a shell's IO, the same in both shells: how
//! each of the agent's outputs is carried out ([`carry_out`] over a shell's [`Io`]), how
//! long to sleep for a deadline ([`wait_for`]), how events are logged ([`log_event`]),
//! and the shutdown's flush deadline.

use std::time::Duration;

use trawl_core::agent::{Event, Output};
use trawl_core::batch::Batch;
use trawl_core::io::{DnsQuery, HttpRequest, IoOp, RequestId, StreamOpen};
use trawl_core::time::Instant;

use crate::storage::Lost;

/// What a shell does for the agent. Each call starts work whose outcome the shell
/// later feeds back as `Input::Io` under the same id (an error it finds at once
/// included: it is queued and fed like any other outcome).
pub trait Io {
    /// Starts an HTTP request (`IoOp::Http`).
    fn http(&mut self, id: RequestId, r: HttpRequest);
    /// Starts a DNS exchange (`IoOp::Dns`).
    fn dns(&mut self, id: RequestId, q: DnsQuery);
    /// Reads a file or lists a directory (`IoOp::ReadFile`, `IoOp::ListDir`).
    fn file(&mut self, id: RequestId, op: IoOp);
    /// Starts watching a directory (`IoOp::Watch`).
    fn watch(&mut self, id: RequestId, path: String);
    /// Opens a byte stream (`IoOp::Stream`).
    fn stream(&mut self, id: RequestId, s: StreamOpen);
    /// Writes bytes on stream `id` after those sent before (`Output::Send`); a stream
    /// that is gone drops them.
    fn send(&mut self, id: RequestId, data: Vec<u8>);
    /// Abandons operation `id`, whatever it is (a completion that still arrives is
    /// ignored by the agent).
    fn cancel(&mut self, id: RequestId);
    /// Hands a committed scrape to storage; what was lost if its queue was full.
    fn append(&mut self, b: Batch) -> Option<Lost>;
}

/// Carries out one of the agent's outputs through `io` (events are logged). Returns
/// what storage lost, for the shell to report as `Input::Stored`.
pub fn carry_out(o: Output, io: &mut impl Io) -> Option<Lost> {
    match o {
        Output::Start { id, op } => match op {
            IoOp::Http(r) => io.http(id, r),
            IoOp::Dns(q) => io.dns(id, q),
            IoOp::Watch { path } => io.watch(id, path),
            IoOp::Stream(s) => io.stream(id, s),
            op @ (IoOp::ReadFile { .. } | IoOp::ListDir { .. }) => io.file(id, op),
        },
        Output::Cancel(id) => io.cancel(id),
        Output::Send { id, data } => io.send(id, data),
        Output::Append(b) => return io.append(b),
        Output::Event(e) => log_event(&e),
    }
    None
}

/// The default timer slack (`DaemonOptions::timer_slack` in the daemon,
/// `Builder::timer_slack` in trawl-tokio): with a thousand targets a second, two
/// deadlines share each wake-up, and a scrape starts at most 2 ms after its grid
/// instant (at 5 ms, the p99 of scrape-start lateness was 5 ms, above vmagent's and
/// Prometheus's 4 ms).
pub const TIMER_SLACK: Duration = Duration::from_millis(2);

/// How long to wait for `deadline` from `now`, rounded up to the `slack` grid (at least
/// 100 µs, so a deadline already passed still yields).
pub fn wait_for(deadline: Instant, now: Instant, slack: Duration) -> Duration {
    let step = slack.as_nanos() as u64;
    let at = if step == 0 {
        deadline.0
    } else {
        deadline.0.div_ceil(step).saturating_mul(step)
    };
    Duration::from_nanos(at.saturating_sub(now.0)).max(Duration::from_micros(100))
}

/// How long a shutdown waits for remote write to send what the WAL holds (what is left
/// is sent after the next start: progress is on disk).
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Logs an agent event (with `tracing`), as both shells do.
pub fn log_event(e: &Event) {
    match e {
        Event::ConfigApplied { jobs } => tracing::info!(jobs, "configuration applied"),
        Event::SdFailure(f) => {
            tracing::warn!(provider = %f.provider, jobs = %f.jobs, err = %f.message, "discovery failed; its last targets stay")
        }
        Event::TargetSyncFailed { job, message } => {
            tracing::warn!(%job, err = %message, "target dropped")
        }
        Event::Health(h) => {
            let url = trawl_core::http::redact_url(&h.url, trawl_core::http::REDACTED);
            if h.error.is_empty() {
                tracing::debug!(job = %h.job, %url, health = h.health.as_str(), "target health")
            } else {
                tracing::debug!(job = %h.job, %url, health = h.health.as_str(), err = %h.error, "target health")
            }
        }
        Event::StorageFailing(err) => {
            tracing::error!(%err, "storage failing; scraping goes on, unstored samples are counted")
        }
        Event::StorageRecovered => tracing::info!("storage writes again"),
        Event::RestoreRefused => tracing::warn!("WAL series restored too late; new refs are used"),
        Event::StaleMarkersDropped(targets) => tracing::info!(
            targets,
            "end-of-run stale markers of removed targets not written at shutdown (as Prometheus)"
        ),
        Event::Delivered { jobs, sources } => {
            tracing::debug!(jobs, sources, "discovery changes delivered to the pools")
        }
        Event::PoolCreated(job) => tracing::debug!(%job, "scrape pool created"),
        Event::PoolStopped(job) => tracing::debug!(%job, "scrape pool stopped"),
        Event::ShutdownComplete => tracing::debug!("nothing in flight any more"),
        Event::Restored(series) => tracing::debug!(series, "series restored from the WAL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn deadlines_are_rounded_up_to_the_slack_grid() {
        let slack = Duration::from_millis(5);
        // Deadlines at 11 and 14 ms share the wake-up at 15 ms; 15 ms itself is on it.
        assert_eq!(
            wait_for(Instant(11 * MS), Instant(10 * MS), slack),
            Duration::from_millis(5)
        );
        assert_eq!(
            wait_for(Instant(14 * MS), Instant(10 * MS), slack),
            Duration::from_millis(5)
        );
        assert_eq!(
            wait_for(Instant(15 * MS), Instant(10 * MS), slack),
            Duration::from_millis(5)
        );
        assert_eq!(
            wait_for(Instant(15 * MS + 1), Instant(10 * MS), slack),
            Duration::from_millis(10)
        );
        // No slack: exactly; a deadline already passed still yields a short wait.
        assert_eq!(
            wait_for(Instant(11 * MS + 7), Instant(10 * MS), Duration::ZERO),
            Duration::from_nanos(MS + 7)
        );
        assert_eq!(
            wait_for(Instant(MS), Instant(10 * MS), slack),
            Duration::from_micros(100)
        );
    }
}
