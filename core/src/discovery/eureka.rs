//! `eureka_sd_configs`: applications registered in a Netflix Eureka server, read from
//! `<server>/apps` every `refresh_interval`. Validation follows 3.x's `discovery/eureka`
//! `SDConfig.UnmarshalYAML`.
//!
//! The provider follows 3.x's `Discovery.refresh` under `refresh.Discovery` and
//! `fetchApps`: every interval one `GET <server>/apps` with the job's client options and
//! no `Accept` header, so the server answers XML; the answer decoded as Go's
//! `encoding/xml` decodes it into 3.x's `Applications` ([`decode`]); one group (source
//! `eureka`) with a target per instance at `hostName:port` (port 80 without a `port`
//! element), its `instance` label the `instanceId`, and every `__meta_eureka_*` label
//! (metadata items as their raw inner XML, as 3.x's `innerxml` keeps them). A non-2xx
//! answer, an undecodable body or a transport error is counted in
//! `prometheus_sd_refresh_failures_total` and the last group stays; a request still
//! running when the next is due is given up.
//!
//! Differences from Go's decoder, which trawl's is otherwise written to match: an XML
//! declaration naming another encoding than UTF-8 is not refused (Go refuses it without
//! a charset reader), and invalid UTF-8 in text is replaced rather than refused.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde::Deserialize;

use super::groups::{TargetGroup, join_host_port, sanitize};
use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut, at, whole,
};
use super::refresh::{Done, OneRequest};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::io::{self, IoEvent, IoQueue, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Eureka;

with_http_client! {
    /// `eureka_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawEurekaSd {
        #[serde(default)]
        server: LenientString,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
    }
}

/// Eureka discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EurekaSdConfig {
    /// The Eureka server URL.
    pub server: String,
    /// Refresh period (default 30s).
    pub refresh_interval: PromDuration,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Eureka {
    const KEY: &'static str = "eureka_sd_configs";
    const NAME: &'static str = "eureka";
    const GO_TYPE: &'static str = "eureka.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{server: 'http://127.0.0.1:8761/eureka'}");
    type Raw = RawEurekaSd;
    type Config = EurekaSdConfig;

    fn validate(mut raw: RawEurekaSd, cx: &SdContext<'_>) -> Result<EurekaSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let server = raw.server.0;
        if server.is_empty() {
            return Err((
                at("server"),
                "eureka_sd: empty or null eureka server".into(),
            ));
        }
        let url = crate::gourl::parse(&server).map_err(|e| (at("server"), e))?;
        if url.scheme.is_empty() || url.host.is_empty() {
            return Err((at("server"), "eureka_sd: invalid eureka server URL".into()));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(EurekaSdConfig {
            server,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(30)),
            http_client,
        })
    }

    fn machine(cfg: &EurekaSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(EurekaSd::new(cfg, cx)))
    }
}

// ---------------------------------------------------------------------------------------
// The answer, as Go's `encoding/xml` fills 3.x's types.

/// `Port`: the number as character data, `enabled` as an attribute.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Port {
    port: i64,
    enabled: bool,
}

/// `DataCenterInfo`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DataCenterInfo {
    name: String,
    metadata: Option<Vec<(String, String)>>,
}

/// `Instance` (the fields discovery reads, and those whose decoding can fail).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Instance {
    host_name: String,
    home_page_url: String,
    status_page_url: String,
    health_check_url: String,
    ip_addr: String,
    vip_address: String,
    secure_vip_address: String,
    status: String,
    port: Option<Port>,
    secure_port: Option<Port>,
    data_center_info: Option<DataCenterInfo>,
    metadata: Option<Vec<(String, String)>>,
    country_id: i64,
    instance_id: String,
}

/// `Application`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Application {
    name: String,
    instances: Vec<Instance>,
}

type XmlReader<'a> = Reader<&'a [u8]>;

fn xml_error(e: impl std::fmt::Display) -> String {
    format!("XML syntax error: {e}")
}

/// Go's `strconv.ParseInt(strings.TrimSpace(s), 10, 64)` as `encoding/xml` calls it (an
/// empty value is 0).
fn go_int(s: &str) -> Result<i64, String> {
    let t = s.trim_matches([' ', '\t', '\n', '\r']);
    if t.is_empty() {
        return Ok(0);
    }
    t.parse::<i64>().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            crate::goquote::quote(t)
        )
    })
}

/// Go's `strconv.ParseBool(strings.TrimSpace(s))` (an empty value is false).
fn go_bool(s: &str) -> Result<bool, String> {
    match s.trim_matches([' ', '\t', '\n', '\r']) {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        t => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            crate::goquote::quote(t)
        )),
    }
}

/// The local name of an element.
fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// The character data directly inside the element just opened (`empty`: it was
/// `<x/>`), up to its end; nested elements are skipped, as Go skips them for a string
/// field.
fn text_of(r: &mut XmlReader<'_>, start: &BytesStart<'_>, empty: bool) -> Result<String, String> {
    let mut out = String::new();
    if empty {
        return Ok(out);
    }
    loop {
        match r.read_event().map_err(xml_error)? {
            Event::Text(t) => out.push_str(&t.unescape().map_err(xml_error)?),
            Event::CData(c) => out.push_str(&String::from_utf8_lossy(&c)),
            Event::Start(e) => {
                r.read_to_end(e.name()).map_err(xml_error)?;
            }
            Event::End(_) => return Ok(out),
            Event::Eof => {
                return Err(format!(
                    "XML syntax error: unexpected EOF in element {}",
                    local(start)
                ));
            }
            _ => {}
        }
    }
}

/// Skips the rest of the element just opened.
fn skip(r: &mut XmlReader<'_>, start: &BytesStart<'_>, empty: bool) -> Result<(), String> {
    if !empty {
        r.read_to_end(start.name()).map_err(xml_error)?;
    }
    Ok(())
}

/// Calls `child` for each element directly inside the one just opened, until its end.
fn children(
    r: &mut XmlReader<'_>,
    start: &BytesStart<'_>,
    empty: bool,
    mut child: impl FnMut(&mut XmlReader<'_>, &BytesStart<'_>, bool) -> Result<(), String>,
) -> Result<(), String> {
    if empty {
        return Ok(());
    }
    loop {
        match r.read_event().map_err(xml_error)? {
            Event::Start(e) => child(r, &e.into_owned(), false)?,
            Event::Empty(e) => child(r, &e.into_owned(), true)?,
            Event::Text(t) => {
                // Entities must still be valid.
                t.unescape().map_err(xml_error)?;
            }
            Event::End(_) => return Ok(()),
            Event::Eof => {
                return Err(format!(
                    "XML syntax error: unexpected EOF in element {}",
                    local(start)
                ));
            }
            _ => {}
        }
    }
}

/// `Port`: the `enabled` attribute and the number (an existing value is updated, as Go
/// reuses the pointer).
fn port(
    r: &mut XmlReader<'_>,
    start: &BytesStart<'_>,
    empty: bool,
    into: &mut Option<Port>,
) -> Result<(), String> {
    let p = into.get_or_insert_with(Port::default);
    for a in start.attributes() {
        let a = a.map_err(xml_error)?;
        if a.key.local_name().as_ref() == b"enabled" {
            p.enabled = go_bool(&a.unescape_value().map_err(xml_error)?)?;
        }
    }
    p.port = go_int(&text_of(r, start, empty)?)?;
    Ok(())
}

/// `MetaData`: every child element's local name and raw inner XML (appended to what an
/// earlier `metadata` element gave).
fn metadata(
    r: &mut XmlReader<'_>,
    start: &BytesStart<'_>,
    empty: bool,
    body: &[u8],
    into: &mut Option<Vec<(String, String)>>,
) -> Result<(), String> {
    let items = into.get_or_insert_with(Vec::new);
    children(r, start, empty, |r, e, empty| {
        let content = if empty {
            String::new()
        } else {
            let span = r.read_to_end(e.name()).map_err(xml_error)?;
            let (a, b) = (span.start as usize, span.end as usize);
            String::from_utf8_lossy(body.get(a..b).unwrap_or_default()).into_owned()
        };
        items.push((local(e), content));
        Ok(())
    })
}

fn instance(
    r: &mut XmlReader<'_>,
    start: &BytesStart<'_>,
    empty: bool,
    body: &[u8],
) -> Result<Instance, String> {
    let mut i = Instance::default();
    children(r, start, empty, |r, e, empty| {
        let name = local(e);
        let field = match name.as_str() {
            "hostName" => &mut i.host_name,
            "homePageUrl" => &mut i.home_page_url,
            "statusPageUrl" => &mut i.status_page_url,
            "healthCheckUrl" => &mut i.health_check_url,
            "ipAddr" => &mut i.ip_addr,
            "vipAddress" => &mut i.vip_address,
            "secureVipAddress" => &mut i.secure_vip_address,
            "status" => &mut i.status,
            "instanceId" => &mut i.instance_id,
            "port" => return port(r, e, empty, &mut i.port),
            "securePort" => return port(r, e, empty, &mut i.secure_port),
            "metadata" => return metadata(r, e, empty, body, &mut i.metadata),
            "countryId" => {
                i.country_id = go_int(&text_of(r, e, empty)?)?;
                return Ok(());
            }
            "isCoordinatingDiscoveryServer" => {
                go_bool(&text_of(r, e, empty)?)?;
                return Ok(());
            }
            "dataCenterInfo" => {
                let d = i
                    .data_center_info
                    .get_or_insert_with(DataCenterInfo::default);
                return children(r, e, empty, |r, e, empty| match local(e).as_str() {
                    "name" => {
                        d.name = text_of(r, e, empty)?;
                        Ok(())
                    }
                    "metadata" => metadata(r, e, empty, body, &mut d.metadata),
                    _ => skip(r, e, empty),
                });
            }
            _ => return skip(r, e, empty),
        };
        *field = text_of(r, e, empty)?;
        Ok(())
    })?;
    Ok(i)
}

/// Decodes an answer as `xml.NewDecoder(body).Decode(&apps)` does: the first element,
/// whatever its name, is the `Applications`; its `application` children (each with a
/// `name` and `instance` children) are read, everything else skipped; what follows the
/// first element is not read.
pub(crate) fn decode(body: &[u8]) -> Result<Vec<Application>, String> {
    let mut r = Reader::from_reader(body);
    r.config_mut().trim_text(false);
    let (root, empty) = loop {
        match r.read_event().map_err(xml_error)? {
            Event::Start(e) => break (e.into_owned(), false),
            Event::Empty(e) => break (e.into_owned(), true),
            Event::Eof => return Err("EOF".into()),
            // Go skips character data before the root, but its entities must be valid.
            Event::Text(t) if !t.iter().all(|b| b.is_ascii_whitespace()) => {
                t.unescape().map_err(xml_error)?;
            }
            _ => {}
        }
    };
    let mut apps = Vec::new();
    children(&mut r, &root, empty, |r, e, empty| {
        if local(e) != "application" {
            return skip(r, e, empty);
        }
        let mut app = Application::default();
        children(r, e, empty, |r, e, empty| match local(e).as_str() {
            "name" => {
                app.name = text_of(r, e, empty)?;
                Ok(())
            }
            "instance" => {
                app.instances.push(instance(r, e, empty, body)?);
                Ok(())
            }
            _ => skip(r, e, empty),
        })?;
        apps.push(app);
        Ok(())
    })?;
    Ok(apps)
}

/// 3.x's `targetsForApp`.
pub(crate) fn targets_for_app(app: &Application) -> Vec<Labels> {
    const P: &str = "__meta_eureka_app_instance_";
    app.instances
        .iter()
        .map(|t| {
            let port = t.port.as_ref().map_or(80, |p| p.port);
            let mut pairs: Vec<(String, String)> = vec![
                (
                    "__address__".into(),
                    join_host_port(&t.host_name, &port.to_string()),
                ),
                ("instance".into(), t.instance_id.clone()),
                ("__meta_eureka_app_name".into(), app.name.clone()),
                (format!("{P}hostname"), t.host_name.clone()),
                (format!("{P}homepage_url"), t.home_page_url.clone()),
                (format!("{P}statuspage_url"), t.status_page_url.clone()),
                (format!("{P}healthcheck_url"), t.health_check_url.clone()),
                (format!("{P}ip_addr"), t.ip_addr.clone()),
                (format!("{P}vip_address"), t.vip_address.clone()),
                (
                    format!("{P}secure_vip_address"),
                    t.secure_vip_address.clone(),
                ),
                (format!("{P}status"), t.status.clone()),
                (format!("{P}country_id"), t.country_id.to_string()),
                (format!("{P}id"), t.instance_id.clone()),
            ];
            if let Some(p) = &t.port {
                pairs.push((format!("{P}port"), p.port.to_string()));
                pairs.push((format!("{P}port_enabled"), p.enabled.to_string()));
            }
            if let Some(p) = &t.secure_port {
                pairs.push((format!("{P}secure_port"), p.port.to_string()));
                pairs.push((format!("{P}secure_port_enabled"), p.enabled.to_string()));
            }
            if let Some(d) = &t.data_center_info {
                pairs.push((format!("{P}datacenterinfo_name"), d.name.clone()));
                for (k, v) in d.metadata.iter().flatten() {
                    pairs.push((
                        format!("{P}datacenterinfo_metadata_{}", sanitize(k)),
                        v.clone(),
                    ));
                }
            }
            for (k, v) in t.metadata.iter().flatten() {
                pairs.push((format!("{P}metadata_{}", sanitize(k)), v.clone()));
            }
            Labels::from_pairs(pairs)
        })
        .collect()
}

/// The running provider: 3.x's `refresh.Discovery` around `Discovery.refresh`.
#[derive(Debug)]
struct EurekaSd {
    url: String,
    req: OneRequest,
}

impl EurekaSd {
    fn new(cfg: &EurekaSdConfig, cx: &MachineContext<'_>) -> EurekaSd {
        let mut headers = vec![("User-Agent".to_owned(), cx.env.user_agent.to_string())];
        let credentials_file = io::add_auth(&cfg.http_client, &mut headers);
        EurekaSd {
            url: format!("{}/apps", cfg.server),
            req: OneRequest::new(
                &cfg.http_client,
                headers,
                credentials_file,
                cfg.refresh_interval.to_std(),
                cx,
            ),
        }
    }

    fn finish(status: u16, body: &[u8], url: &str, out: &mut SdOut) {
        if status / 100 != 2 {
            out.failures.push(format!(
                "non 2xx status '{status}' response during eureka service discovery"
            ));
            return;
        }
        match decode(body) {
            Ok(apps) => out.updates.push(vec![TargetGroup {
                targets: apps.iter().flat_map(targets_for_app).collect(),
                labels: Labels::default(),
                source: "eureka".into(),
            }]),
            Err(e) => out.failures.push(format!("{url:?}: {e}")),
        }
    }
}

impl SdMachine for EurekaSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, _out: &mut SdOut) {
        self.req.start(now, self.url.clone(), io);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.req.owns(id)
    }

    fn handle_io(
        &mut self,
        _now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        _io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        match self.req.handle(id, ev) {
            Some(Done::Answer { status, body, url }) => Self::finish(status, &body, &url, out),
            Some(Done::Failed(e)) => out.failures.push(e),
            None => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        let (due, gave_up) = self.req.due(now, io);
        out.failures.extend(gave_up);
        if due {
            self.req.start(now, self.url.clone(), io);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.req.poll_timeout()
    }

    fn stop(&mut self, io: &mut IoQueue) {
        self.req.stop(io);
    }

    fn in_flight(&self) -> usize {
        self.req.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "eureka_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: EurekaSdConfig = block(KEY, "server: http://eureka:8761/eureka");
        assert_eq!(c.server, "http://eureka:8761/eureka");
        assert_eq!(c.refresh_interval, PromDuration::from_secs(30));
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn server_is_checked() {
        assert_eq!(
            error_at(KEY, "refresh_interval: 1m"),
            (4, 9, "eureka_sd: empty or null eureka server".into())
        );
        assert_eq!(
            error(KEY, "server: ~"),
            "eureka_sd: empty or null eureka server"
        );
        assert_eq!(
            error_at(KEY, "server: 'http://e:port/'"),
            (
                4,
                17,
                r#"parse "http://e:port/": invalid port ":port" after host"#.into()
            )
        );
        for bad in ["eureka:8761", "/eureka", "http:///eureka"] {
            assert_eq!(
                error(KEY, &format!("server: '{bad}'")),
                "eureka_sd: invalid eureka server URL",
                "{bad}"
            );
        }
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                "server: http://e\nbasic_auth: {password: p, password_file: f}"
            ),
            "at most one of basic_auth password, password_file & password_ref must be configured"
        );
        let c: EurekaSdConfig = block(
            KEY,
            "server: http://e\nbasic_auth: {username: u, password_file: pw}",
        );
        let b = c.http_client.basic_auth.expect("basic auth");
        assert_eq!(b.password_file, "/etc/prometheus/pw");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "server: http://e", "eureka.plain");
    }
}

#[cfg(test)]
mod machine_tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{Drive, block};

    /// An answer shaped as a Eureka server's `GET /eureka/apps` (XML, its default).
    const APPS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<applications>
  <versions__delta>1</versions__delta>
  <apps__hashcode>UP_2_</apps__hashcode>
  <application>
    <name>META-SERVICE</name>
    <instance>
      <instanceId>meta-1:meta-service:8080</instanceId>
      <hostName>127.0.0.2</hostName>
      <app>META-SERVICE</app>
      <ipAddr>127.0.0.2</ipAddr>
      <status>UP</status>
      <overriddenstatus>UNKNOWN</overriddenstatus>
      <port enabled="true">8080</port>
      <securePort enabled="false">8443</securePort>
      <countryId>1</countryId>
      <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">
        <name>MyOwn</name>
        <metadata><availability-zone>a</availability-zone></metadata>
      </dataCenterInfo>
      <leaseInfo><renewalIntervalInSecs>30</renewalIntervalInSecs></leaseInfo>
      <metadata>
        <management.port>8081</management.port>
        <prometheus.scrape>true</prometheus.scrape>
        <team>a &amp; b</team>
        <empty/>
        <nested><x>1</x></nested>
      </metadata>
      <homePageUrl>http://127.0.0.2:8080/</homePageUrl>
      <statusPageUrl>http://127.0.0.2:8080/info</statusPageUrl>
      <healthCheckUrl>http://127.0.0.2:8080/health</healthCheckUrl>
      <vipAddress>meta-service</vipAddress>
      <secureVipAddress>meta-service</secureVipAddress>
      <isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>
      <lastUpdatedTimestamp>1596003469304</lastUpdatedTimestamp>
      <actionType>ADDED</actionType>
    </instance>
    <instance>
      <hostName>::1</hostName>
      <countryId/>
    </instance>
  </application>
  <application><name>EMPTY</name></application>
</applications>
"#;

    fn drive() -> Drive<EurekaSd> {
        let c: EurekaSdConfig = block(
            "eureka_sd_configs",
            "server: 'http://e:8761/eureka'\nrefresh_interval: 5s\nbasic_auth: {username: u, password: p}",
        );
        Drive::start("eureka/0", 1, |cx| EurekaSd::new(&c, cx))
    }

    #[test]
    fn instances_become_targets_with_every_label() {
        let mut d = drive();
        let s = d.started();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1, "http://e:8761/eureka/apps");
        assert!(
            s[0].2
                .iter()
                .any(|(k, v)| k == "Authorization" && v == "Basic dTpw")
        );
        assert!(!s[0].2.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept")));
        d.respond(s[0].0, 200, &[("Content-Type", "application/xml")], APPS);
        assert_eq!(d.out.failures, Vec::<String>::new());
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "eureka");
        assert_eq!(g.targets.len(), 2);
        let t = &g.targets[0];
        for (k, v) in [
            ("__address__", "127.0.0.2:8080"),
            ("instance", "meta-1:meta-service:8080"),
            ("__meta_eureka_app_name", "META-SERVICE"),
            ("__meta_eureka_app_instance_hostname", "127.0.0.2"),
            (
                "__meta_eureka_app_instance_homepage_url",
                "http://127.0.0.2:8080/",
            ),
            (
                "__meta_eureka_app_instance_statuspage_url",
                "http://127.0.0.2:8080/info",
            ),
            (
                "__meta_eureka_app_instance_healthcheck_url",
                "http://127.0.0.2:8080/health",
            ),
            ("__meta_eureka_app_instance_ip_addr", "127.0.0.2"),
            ("__meta_eureka_app_instance_vip_address", "meta-service"),
            (
                "__meta_eureka_app_instance_secure_vip_address",
                "meta-service",
            ),
            ("__meta_eureka_app_instance_status", "UP"),
            ("__meta_eureka_app_instance_port", "8080"),
            ("__meta_eureka_app_instance_port_enabled", "true"),
            ("__meta_eureka_app_instance_secure_port", "8443"),
            ("__meta_eureka_app_instance_secure_port_enabled", "false"),
            ("__meta_eureka_app_instance_country_id", "1"),
            ("__meta_eureka_app_instance_id", "meta-1:meta-service:8080"),
            ("__meta_eureka_app_instance_datacenterinfo_name", "MyOwn"),
            (
                "__meta_eureka_app_instance_datacenterinfo_metadata_availability_zone",
                "a",
            ),
            (
                "__meta_eureka_app_instance_metadata_management_port",
                "8081",
            ),
            (
                "__meta_eureka_app_instance_metadata_prometheus_scrape",
                "true",
            ),
            // Raw inner XML, as 3.x's `innerxml` keeps it.
            ("__meta_eureka_app_instance_metadata_team", "a &amp; b"),
            ("__meta_eureka_app_instance_metadata_nested", "<x>1</x>"),
        ] {
            assert_eq!(t.get(k), Some(v), "{k} in {t:?}");
        }
        assert_eq!(t.get("__meta_eureka_app_instance_metadata_empty"), None);
        let t = &g.targets[1];
        assert_eq!(t.get("__address__"), Some("[::1]:80"), "no port: 80");
        assert_eq!(t.get("instance"), None, "no instance id");
        assert_eq!(t.get("__meta_eureka_app_instance_country_id"), Some("0"));
        assert_eq!(t.get("__meta_eureka_app_instance_port"), None);
    }

    #[test]
    fn failures_keep_the_group() {
        let mut d = drive();
        let (id, _) = d.one();
        d.respond(id, 200, &[], APPS);
        assert_eq!(d.out.updates.len(), 1);
        for (status, body, want) in [
            (
                503,
                "",
                "non 2xx status '503' response during eureka service discovery",
            ),
            (
                "200".parse().unwrap(),
                "",
                "\"http://e:8761/eureka/apps\": EOF",
            ),
            (
                200,
                "<applications><application><instance><port>80x</port>",
                "\"http://e:8761/eureka/apps\": strconv.ParseInt: parsing \"80x\": invalid syntax",
            ),
            (
                200,
                "<applications><application><instance><countryId>1",
                "\"http://e:8761/eureka/apps\": XML syntax error: unexpected EOF in element countryId",
            ),
            (
                200,
                "<applications><application></instance></application></applications>",
                "\"http://e:8761/eureka/apps\": XML syntax error: ",
            ),
            (
                200,
                "<a><application><instance><port enabled='yes'>1</port></instance></application></a>",
                "\"http://e:8761/eureka/apps\": strconv.ParseBool: parsing \"yes\": invalid syntax",
            ),
        ] {
            d.advance();
            let (id, _) = d.one();
            d.respond(id, status, &[], body);
            let got = d.out.failures.last().cloned().unwrap_or_default();
            assert!(got.starts_with(want), "{got:?} for {body:?}");
        }
        assert_eq!(d.out.updates.len(), 1, "the last group stays");
        d.advance();
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures.last().unwrap(),
            "Get \"http://e:8761/eureka/apps\": connection refused"
        );
        d.advance();
        let (id, _) = d.one();
        d.advance();
        assert!(d.cancelled().contains(&id));
        assert!(
            d.out
                .failures
                .last()
                .unwrap()
                .ends_with("context deadline exceeded")
        );
    }

    #[test]
    fn any_root_and_trailing_content_decode_as_go_does() {
        let apps = decode(
            b"<!-- c --><x><application><name>A</name><name>B</name></application></x>junk<",
        )
        .unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].name, "B", "the last value wins");
        assert_eq!(decode(b"<applications/>").unwrap(), Vec::new());
        let apps = decode(b"<a><application><instance><hostName><![CDATA[h<1>]]></hostName><port>  7 </port></instance></application></a>").unwrap();
        assert_eq!(apps[0].instances[0].host_name, "h<1>");
        assert_eq!(apps[0].instances[0].port.as_ref().map(|p| p.port), Some(7));
    }
}
