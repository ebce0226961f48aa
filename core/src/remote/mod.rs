//! Remote write 1.0: the request encoder (pure, byte for byte what Prometheus 2.42
//! sends for the same series) and the queue that turns WAL records into requests.

pub mod encode;
pub mod queue;

use crate::config::RemoteWriteConfig;
use crate::io::CredentialsFile;

/// The headers of every request of a `remote_write` entry, in sending order: the
/// spec's four (`Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
/// `User-Agent`, `X-Prometheus-Remote-Write-Version: 0.1.0`), the configured `headers`
/// (which validation keeps from overriding those), and `Authorization` from
/// `basic_auth` or `authorization`, or the file the shell must read for it.
pub fn request_headers(
    cfg: &RemoteWriteConfig,
    user_agent: &str,
) -> (Vec<(String, String)>, Option<CredentialsFile>) {
    let mut h: Vec<(String, String)> = vec![
        ("Content-Encoding".into(), "snappy".into()),
        ("Content-Type".into(), "application/x-protobuf".into()),
        ("User-Agent".into(), user_agent.into()),
        ("X-Prometheus-Remote-Write-Version".into(), "0.1.0".into()),
    ];
    h.extend(cfg.headers.iter().map(|(n, v)| (n.clone(), v.clone())));
    let file = crate::io::add_auth(&cfg.http_client, &mut h);
    (h, file)
}
