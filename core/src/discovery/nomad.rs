//! `nomad_sd_configs`: services registered in HashiCorp Nomad, listed every
//! `refresh_interval`. Validation follows 3.x's `discovery/nomad`
//! `SDConfig.UnmarshalYAML`; the provider follows its `Discovery.refresh` under
//! `refresh.Discovery`, with the requests the Nomad API client makes: `GET /v1/services`,
//! then `GET /v1/service/<name>` for each service listed, in the list's order, one at a
//! time (`namespace`, `region` and `stale` as the client encodes them), all of one
//! refresh making the one group `Nomad`. A failed request ends the refresh: counted in
//! `prometheus_sd_nomad_failures_total` (and `prometheus_sd_refresh_failures_total`), the
//! last group kept. A refresh that has not finished when the next is due goes on (the
//! next is skipped), and one request may take at most one interval.
//!
//! As in 3.x, the index headers are not read (the refresh does not block) and a server
//! address Go's `url.Parse` refuses cannot be created.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::groups::{TargetGroup, join_host_port};
use super::mechanism::{
    Counter, Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut, at, flag, text, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;
use crate::io::{self, CredentialsFile, HttpRequest, IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Nomad;

with_http_client! {
    /// `nomad_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawNomadSd {
        #[serde(default)]
        allow_stale: Nullable<Bool11>,
        #[serde(default)]
        namespace: Nullable<LenientString>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        region: Nullable<LenientString>,
        #[serde(default)]
        server: Nullable<LenientString>,
        #[serde(default)]
        tag_separator: Nullable<LenientString>,
    }
}

/// Nomad discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NomadSdConfig {
    /// Allow stale answers (default true).
    pub allow_stale: bool,
    /// Namespace (default `default`).
    pub namespace: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Region (default `global`).
    pub region: String,
    /// Nomad address (default `http://localhost:4646`).
    pub server: String,
    /// Joins the tags in `__meta_nomad_tags` (default `,`).
    pub tag_separator: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Nomad {
    const KEY: &'static str = "nomad_sd_configs";
    const NAME: &'static str = "nomad";
    const GO_TYPE: &'static str = "nomad.plain";
    const RUNS: bool = true;
    const COUNTERS: &'static [Counter] = &[Counter {
        name: FAILURES,
        labels: &[],
        help: "Number of nomad service discovery refresh failures.",
    }];
    const EXAMPLE: Option<&'static str> = Some("{server: 'http://127.0.0.1:4646'}");
    type Raw = RawNomadSd;
    type Config = NomadSdConfig;

    fn validate(mut raw: RawNomadSd, cx: &SdContext<'_>) -> Result<NomadSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let server = text(raw.server, "http://localhost:4646");
        if server.trim().is_empty() {
            return Err((
                at("server"),
                "nomad SD configuration requires a server address".into(),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(NomadSdConfig {
            allow_stale: flag(raw.allow_stale, true),
            namespace: text(raw.namespace, "default"),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            region: text(raw.region, "global"),
            server,
            tag_separator: text(raw.tag_separator, ","),
            http_client,
        })
    }

    fn machine(cfg: &NomadSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(NomadSd::new(cfg, cx)))
    }
}

// ---------------------------------------------------------------------------------------
// The running provider.

/// `prometheus_sd_nomad_failures_total`.
const FAILURES: &str = "prometheus_sd_nomad_failures_total";

/// One service instance of a `/v1/service/<name>` answer, as 3.x reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Registration {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "ServiceName")]
    service_name: Option<String>,
    #[serde(rename = "Namespace")]
    namespace: Option<String>,
    #[serde(rename = "NodeID")]
    node_id: Option<String>,
    #[serde(rename = "Datacenter")]
    datacenter: Option<String>,
    #[serde(rename = "Tags")]
    tags: Option<Vec<Option<String>>>,
    #[serde(rename = "Address")]
    address: Option<String>,
    #[serde(rename = "Port")]
    port: i64,
}

/// One namespace's entry of a `/v1/services` answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Stub {
    #[serde(rename = "Services")]
    services: Option<Vec<Option<StubService>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StubService {
    #[serde(rename = "ServiceName")]
    service_name: Option<String>,
}

/// The service names of a `/v1/services` answer, in its order (3.x asks for each in
/// turn, duplicates included).
fn service_names(body: &[u8]) -> Result<Vec<String>, String> {
    let stubs: Option<Vec<Option<Stub>>> =
        serde_json::from_slice(body).map_err(|e| format!("decoding the answer: {e}"))?;
    Ok(stubs
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .flat_map(|s| s.services.unwrap_or_default())
        .flatten()
        .map(|s| s.service_name.unwrap_or_default())
        .collect())
}

/// The targets of one `/v1/service/<name>` answer (3.x's `Discovery.refresh`).
fn instances(body: &[u8], separator: &str, out: &mut Vec<Labels>) -> Result<(), String> {
    let regs: Option<Vec<Option<Registration>>> =
        serde_json::from_slice(body).map_err(|e| format!("decoding the answer: {e}"))?;
    for r in regs.unwrap_or_default().into_iter().flatten() {
        let address = r.address.unwrap_or_default();
        // Go's `strconv.Itoa` of the decoded int.
        let port = r.port.to_string();
        let mut pairs: Vec<(&str, String)> = vec![
            ("__address__", join_host_port(&address, &port)),
            ("__meta_nomad_address", address.clone()),
            ("__meta_nomad_dc", r.datacenter.unwrap_or_default()),
            ("__meta_nomad_node_id", r.node_id.unwrap_or_default()),
            ("__meta_nomad_namespace", r.namespace.unwrap_or_default()),
            ("__meta_nomad_service_address", address),
            ("__meta_nomad_service_id", r.id.unwrap_or_default()),
            ("__meta_nomad_service_port", port),
            ("__meta_nomad_service", r.service_name.unwrap_or_default()),
        ];
        let tags: Vec<String> = r
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        if !tags.is_empty() {
            pairs.push((
                "__meta_nomad_tags",
                format!("{separator}{}{separator}", tags.join(separator)),
            ));
        }
        out.push(Labels::from_pairs(pairs));
    }
    Ok(())
}

/// A refresh in progress: the list, then each service in turn.
#[derive(Debug)]
struct Refresh {
    /// The request in flight and its URL.
    id: RequestId,
    url: String,
    status: u16,
    body: Vec<u8>,
    /// Services still to ask for, in reverse order (the next is popped).
    pending: Vec<String>,
    /// False while the list is being fetched.
    listed: bool,
    /// The targets so far.
    targets: Vec<Labels>,
}

/// The running provider: 3.x's `refresh.Discovery` around `Discovery.refresh`.
#[derive(Debug)]
struct NomadSd {
    cfg: Arc<NomadSdConfig>,
    headers: Vec<(String, String)>,
    credentials_file: Option<CredentialsFile>,
    client: Arc<HttpClientConfig>,
    limit: u64,
    name: Arc<str>,
    interval: Duration,
    refresh: Option<Refresh>,
    /// When the refresh in flight gives up, or when the next one starts.
    deadline: Instant,
    next: Instant,
}

impl NomadSd {
    fn new(cfg: &NomadSdConfig, cx: &MachineContext<'_>) -> NomadSd {
        let mut headers = vec![("User-Agent".to_owned(), cx.env.user_agent.to_string())];
        let credentials_file = io::add_auth(&cfg.http_client, &mut headers);
        NomadSd {
            cfg: Arc::new(cfg.clone()),
            headers,
            credentials_file,
            client: Arc::new(cfg.http_client.clone()),
            limit: cx.env.body_limit,
            name: cx.name.clone(),
            interval: cfg.refresh_interval.to_std(),
            refresh: None,
            deadline: cx.now,
            next: cx.now,
        }
    }

    /// The query the Nomad API client sends (`url.Values.Encode`: keys sorted).
    fn url(&self, path: &str) -> String {
        let c = &self.cfg;
        let mut q: Vec<String> = Vec::new();
        if !c.namespace.is_empty() {
            q.push(format!(
                "namespace={}",
                crate::gourl::query_escape(&c.namespace)
            ));
        }
        if !c.region.is_empty() {
            q.push(format!("region={}", crate::gourl::query_escape(&c.region)));
        }
        if c.allow_stale {
            q.push("stale=".into());
        }
        let base = c.server.trim_end_matches('/');
        if q.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{}", q.join("&"))
        }
    }

    fn request(&self, url: String, io: &mut IoQueue) -> RequestId {
        io.start(IoOp::Http(HttpRequest {
            url,
            headers: self.headers.clone(),
            credentials_file: self.credentials_file.clone(),
            client: self.client.clone(),
            body_limit: self.limit,
            timeout: self.interval,
            origin: Origin::Discovery {
                provider: self.name.clone(),
            },
            body: None,
        }))
    }

    fn start_refresh(&mut self, now: Instant, io: &mut IoQueue) {
        self.next = now + self.interval;
        if self.refresh.is_some() {
            return;
        }
        let url = self.url("/v1/services");
        let id = self.request(url.clone(), io);
        self.deadline = now + self.interval;
        self.refresh = Some(Refresh {
            id,
            url,
            status: 0,
            body: Vec::new(),
            pending: Vec::new(),
            listed: false,
            targets: Vec::new(),
        });
    }

    fn fail(&mut self, out: &mut SdOut, e: String) {
        self.refresh = None;
        out.count(FAILURES, 1);
        out.failures.push(e);
    }

    /// A whole answer arrived: the list (ask for the first service) or a service (ask
    /// for the next, or report the group).
    fn finish(&mut self, io: &mut IoQueue, out: &mut SdOut) {
        let Some(mut r) = self.refresh.take() else {
            return;
        };
        let url = crate::gourl::redact_url(&r.url, crate::gourl::STRIPPED).into_owned();
        if r.status != 200 {
            let body = String::from_utf8_lossy(&r.body);
            let e = format!("Unexpected response code: {} ({})", r.status, body.trim());
            let e = if r.listed {
                format!("failed to fetch services: {e}")
            } else {
                e
            };
            return self.fail(out, e);
        }
        let body = std::mem::take(&mut r.body);
        if r.listed {
            if let Err(e) = instances(&body, &self.cfg.tag_separator, &mut r.targets) {
                return self.fail(out, format!("failed to fetch services: {url}: {e}"));
            }
        } else {
            match service_names(&body) {
                Ok(mut names) => {
                    names.reverse();
                    r.pending = names;
                    r.listed = true;
                }
                Err(e) => return self.fail(out, format!("{url}: {e}")),
            }
        }
        match r.pending.pop() {
            Some(name) => {
                let mut path = String::from("/v1/service/");
                crate::gourl::path_escape(&name, &mut path);
                r.url = self.url(&path);
                r.id = self.request(r.url.clone(), io);
                r.status = 0;
                self.refresh = Some(r);
            }
            None => out.updates.push(vec![TargetGroup {
                targets: r.targets,
                labels: Labels::empty(),
                source: "Nomad".into(),
            }]),
        }
    }
}

impl SdMachine for NomadSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        // The Nomad API client's `NewClient` parses the address first.
        if let Err(e) = crate::gourl::parse(&self.cfg.server) {
            out.creation_failed = true;
            out.failures
                .push(format!("Cannot create service discovery: {e}"));
            self.next = Instant(u64::MAX);
            return;
        }
        self.start_refresh(now, io);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.refresh.as_ref().is_some_and(|r| r.id == id)
    }

    fn handle_io(
        &mut self,
        _now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        let Some(r) = self.refresh.as_mut().filter(|r| r.id == id) else {
            return;
        };
        match ev {
            IoEvent::HttpHead { status, .. } => r.status = status,
            IoEvent::HttpBody(chunk) => {
                let room = if r.status == 200 { usize::MAX } else { 512 };
                let take = chunk.len().min(room.saturating_sub(r.body.len()));
                r.body.extend_from_slice(&chunk[..take]);
            }
            IoEvent::HttpEnd => self.finish(io, out),
            IoEvent::Failed(e) => {
                let url = crate::gourl::redact_url(&r.url, crate::gourl::STRIPPED);
                let e = format!("Get {url:?}: {e}");
                let e = if r.listed {
                    format!("failed to fetch services: {e}")
                } else {
                    e
                };
                self.fail(out, e);
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if let Some(r) = self.refresh.as_ref().filter(|_| now >= self.deadline) {
            io.cancel(r.id);
            let url = crate::gourl::redact_url(&r.url, crate::gourl::STRIPPED);
            let e = format!("Get {url:?}: context deadline exceeded");
            self.fail(out, e);
        }
        if now >= self.next {
            self.start_refresh(now, io);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.next == Instant(u64::MAX) {
            return None;
        }
        Some(match &self.refresh {
            Some(_) => self.deadline.min(self.next),
            None => self.next,
        })
    }

    fn stop(&mut self, io: &mut IoQueue) {
        if let Some(r) = self.refresh.take() {
            io.cancel(r.id);
        }
    }

    fn in_flight(&self) -> usize {
        usize::from(self.refresh.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "nomad_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: NomadSdConfig = block(KEY, "{}");
        assert!(c.allow_stale);
        assert_eq!(c.namespace, "default");
        assert_eq!(c.region, "global");
        assert_eq!(c.server, "http://localhost:4646");
        assert_eq!(c.tag_separator, ",");
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: NomadSdConfig = block(KEY, "allow_stale: no\nnamespace: ~\nregion: eu");
        assert!(!c.allow_stale);
        assert_eq!((c.namespace.as_str(), c.region.as_str()), ("", "eu"));
    }

    #[test]
    fn server_must_not_be_blank() {
        let want = "nomad SD configuration requires a server address";
        assert_eq!(error_at(KEY, "server: ' '"), (4, 17, want.into()));
        assert_eq!(error(KEY, "server:"), want);
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(KEY, "no_proxy: localhost"),
            "if no_proxy is configured, proxy_url must also be configured"
        );
        let c: NomadSdConfig = block(KEY, "tls_config: {cert_file: /c.pem, key_file: k.pem}");
        assert_eq!(c.http_client.tls_config.cert_file, "/c.pem");
        assert_eq!(c.http_client.tls_config.key_file, "/etc/prometheus/k.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "server: http://n:4646", "nomad.plain");
    }

    // ---- the running provider ----

    use crate::discovery::mechanism::test_support::Drive;

    fn drive(yaml: &str) -> Drive<NomadSd> {
        Drive::start("nomad/0", 1, |cx| NomadSd::new(&block(KEY, yaml), cx))
    }

    /// What these tests need on top of the generic driver.
    trait NomadDrive {
        fn answer(&mut self, id: RequestId, status: u16, body: &str);
        fn failures(&self) -> u64;
    }

    impl NomadDrive for Drive<NomadSd> {
        fn answer(&mut self, id: RequestId, status: u16, body: &str) {
            self.respond(id, status, &[], body);
        }

        fn failures(&self) -> u64 {
            self.count(FAILURES)
        }
    }

    const LIST: &str = r#"[{"Namespace": "default", "Services": [
        {"ServiceName": "hashicups", "Tags": ["metrics"]}, {"ServiceName": "api", "Tags": []}]}]"#;
    const HASHICUPS: &str = r#"[{"ID": "_nomad-task-6a1d5f0a-7362-3f5d-9baf-5ed438918e50-group-hashicups-hashicups-hashicups_ui",
        "ServiceName": "hashicups", "Namespace": "default", "NodeID": "d92fdc3c-9c2b-298a-e8f4-c33f3a449f09",
        "Datacenter": "dc1", "JobID": "dashboard", "AllocID": "6a1d5f0a-7362-3f5d-9baf-5ed438918e50",
        "Tags": ["metrics"], "Address": "127.0.0.1", "Port": 30456, "CreateIndex": 226, "ModifyIndex": 226}]"#;
    const API: &str = r#"[{"ID": "a1", "ServiceName": "api", "Namespace": "default", "NodeID": "n2",
        "Datacenter": "dc1", "Tags": null, "Address": "fd00::1", "Port": 8080}]"#;

    #[test]
    fn a_refresh_lists_then_asks_each_service_and_makes_3x_labels() {
        let mut d = drive("server: 'http://n:4646/'\nrefresh_interval: 10s");
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://n:4646/v1/services?namespace=default&region=global&stale="
        );
        d.answer(id, 200, LIST);
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://n:4646/v1/service/hashicups?namespace=default&region=global&stale="
        );
        d.answer(id, 200, HASHICUPS);
        assert!(
            d.out.updates.is_empty(),
            "one group, once every service answered"
        );
        let (id, url) = d.one();
        assert!(url.starts_with("http://n:4646/v1/service/api?"), "{url}");
        d.answer(id, 200, API);
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "Nomad");
        let first: Vec<(&str, &str)> = g.targets[0].iter().collect();
        // 3.x's TestNomadSDRefresh.
        assert_eq!(
            first,
            [
                ("__address__", "127.0.0.1:30456"),
                ("__meta_nomad_address", "127.0.0.1"),
                ("__meta_nomad_dc", "dc1"),
                ("__meta_nomad_namespace", "default"),
                (
                    "__meta_nomad_node_id",
                    "d92fdc3c-9c2b-298a-e8f4-c33f3a449f09"
                ),
                ("__meta_nomad_service", "hashicups"),
                ("__meta_nomad_service_address", "127.0.0.1"),
                (
                    "__meta_nomad_service_id",
                    "_nomad-task-6a1d5f0a-7362-3f5d-9baf-5ed438918e50-group-hashicups-hashicups-hashicups_ui"
                ),
                ("__meta_nomad_service_port", "30456"),
                ("__meta_nomad_tags", ",metrics,"),
            ]
        );
        // No tags: no label; IPv6 in brackets.
        assert_eq!(g.targets[1].get("__address__"), Some("[fd00::1]:8080"));
        assert_eq!(g.targets[1].get("__meta_nomad_tags"), None);
        assert_eq!(d.m.in_flight(), 0);
        assert_eq!(d.advance(), Instant(0) + Duration::from_secs(10));
        let (_, url) = d.one();
        assert!(url.contains("/v1/services?"), "{url}");
    }

    #[test]
    fn a_failure_ends_the_refresh_and_keeps_the_last_group() {
        let mut d = drive(
            "server: 'http://n:4646'\nnamespace: ops\nregion: eu\nallow_stale: false\nrefresh_interval: 10s",
        );
        let (id, url) = d.one();
        assert_eq!(url, "http://n:4646/v1/services?namespace=ops&region=eu");
        d.answer(id, 200, LIST);
        let (id, _) = d.one();
        d.answer(id, 500, "No cluster leader\n");
        assert!(d.out.updates.is_empty());
        assert_eq!(d.failures(), 1);
        assert_eq!(
            d.out.failures,
            ["failed to fetch services: Unexpected response code: 500 (No cluster leader)"]
        );
        assert_eq!(d.m.in_flight(), 0, "the rest of the refresh is dropped");
        // The next refresh: a reset connection, then a list that is not JSON.
        d.advance();
        let (id, _) = d.one();
        d.m.handle_io(
            d.now,
            id,
            IoEvent::Failed("connection reset by peer"),
            &mut d.io,
            &mut d.out,
        );
        d.advance();
        let (id, _) = d.one();
        d.answer(id, 200, "<html>");
        assert_eq!(d.failures(), 3);
        assert!(
            d.out.failures[2].contains("decoding the answer"),
            "{:?}",
            d.out.failures
        );
        // A server that never answers: given up after one interval.
        let t = d.advance();
        let (id, _) = d.one();
        assert_eq!(d.advance(), t + Duration::from_secs(10));
        assert!(d.cancelled().contains(&id));
        assert_eq!(d.failures(), 4);
        assert!(d.out.updates.is_empty());
    }

    #[test]
    fn an_address_go_refuses_cannot_be_created() {
        let d = drive("server: '172.30.29.23:4646'");
        assert!(d.out.creation_failed);
        assert!(d.out.failures[0].starts_with("Cannot create service discovery: "));
        assert_eq!(d.m.poll_timeout(), None);
        // 3.x's TestConfiguredService: accepted by parsing, fails when used.
        let d = drive("server: 'foo.bar:4646'");
        assert!(!d.out.creation_failed);
        assert_eq!(d.m.in_flight(), 1);
    }
}
