//! The HTTP request of a scrape, header by header as Prometheus 3.x sends it (§4.2).

use std::sync::Arc;
use std::time::Duration;

use crate::config::{HttpClientConfig, ScrapeConfig, ScrapeProtocol};
use crate::io::{self, HttpRequest, Origin};

/// The media type a protocol asks for in `Accept`.
pub fn media_type(p: ScrapeProtocol) -> &'static str {
    match p {
        ScrapeProtocol::PrometheusProto => {
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
        }
        ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
        ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
        ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
        ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
    }
}

/// The `Accept` header for `protocols` in preference order: q-values from 0.6 down in
/// steps of 0.1 (five known protocols), the 1.0.0 text formats with `;escaping=…`, then
/// `*/*` with the next lower q.
pub fn accept_header(protocols: &[ScrapeProtocol], escaping: &str) -> String {
    let mut out = String::new();
    let mut q = 6u32; // tenths: 0.(K+1) with K = 5 known protocols
    for p in protocols {
        out.push_str(media_type(*p));
        if matches!(
            p,
            ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
        ) {
            out.push_str(";escaping=");
            out.push_str(escaping);
        }
        out.push_str(&format!(";q=0.{q},"));
        q = q.saturating_sub(1);
    }
    out.push_str(&format!("*/*;q=0.{q}"));
    out
}

/// The per-pool part of every scrape request of a job, rendered once per config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestTemplate {
    headers: Vec<(String, String)>,
    credentials_file: Option<io::CredentialsFile>,
    client: Arc<HttpClientConfig>,
    body_limit: u64,
}

impl RequestTemplate {
    /// `default_limit` applies where the job sets no `body_size_limit` (0: none).
    pub(crate) fn new(cfg: &ScrapeConfig, user_agent: &str, default_limit: u64) -> RequestTemplate {
        let mut headers = vec![
            (
                "Accept".to_owned(),
                accept_header(&cfg.scrape_protocols, &cfg.metric_name_escaping_scheme),
            ),
            (
                "Accept-Encoding".to_owned(),
                if cfg.enable_compression {
                    "gzip"
                } else {
                    "identity"
                }
                .to_owned(),
            ),
            ("User-Agent".to_owned(), user_agent.to_owned()),
        ];
        let credentials_file = io::add_auth(&cfg.http_client, &mut headers);
        RequestTemplate {
            headers,
            credentials_file,
            client: Arc::new(cfg.http_client.clone()),
            body_limit: match cfg.limits.body_size_limit.0 {
                0 => default_limit,
                set => set,
            },
        }
    }

    /// The body limit of the job's scrapes (0: none).
    pub(crate) fn body_limit(&self) -> u64 {
        self.body_limit
    }

    /// The request for one scrape.
    pub(crate) fn request(&self, url: &str, timeout: Duration, origin: Origin) -> HttpRequest {
        let mut headers = self.headers.clone();
        headers.push((
            "X-Prometheus-Scrape-Timeout-Seconds".to_owned(),
            io::seconds_string(timeout),
        ));
        HttpRequest {
            url: url.to_owned(),
            headers,
            credentials_file: self.credentials_file.clone(),
            client: self.client.clone(),
            body_limit: self.body_limit,
            timeout,
            origin,
            body: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accept_header() {
        assert_eq!(
            accept_header(&ScrapeProtocol::DEFAULT, "allow-utf-8"),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        assert_eq!(
            accept_header(&[ScrapeProtocol::PrometheusText0_0_4], "underscores"),
            "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
        );
    }
}
