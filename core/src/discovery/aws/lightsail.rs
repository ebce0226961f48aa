//! The Lightsail provider (`lightsail_sd_configs`, and `aws_sd_configs` with `role:
//! lightsail`): 3.x's `LightsailDiscovery.refresh` under `refresh.Discovery`
//! (`discovery/aws/lightsail.go`).
//!
//! Every `refresh_interval`: `GetInstances` over AWS's JSON 1.1 protocol — `POST
//! <endpoint>/` with `X-Amz-Target: Lightsail_20161128.GetInstances` and a JSON body —
//! signed with SigV4 for the service `lightsail` in the block's region by the shell
//! ([`crate::io::CredentialsFile::SigV4`]), credentials and region found as for EC2 ([`super::ec2`]).
//! One group whose source is the region, a target per instance with a private address
//! (`<private ip>:<port>`), with 3.x's labels ([`targets_of`]); an absent field leaves
//! its label out, as 3.x does.
//!
//! Unlike 3.x, which makes one call and drops every instance past its first page, the
//! answer's `nextPageToken` is followed (at most [`MAX_PAGES`] pages and the discovery
//! body limit in bytes; a token repeating the last ends the paging). Redirects are not
//! followed, and a block with `role_arn` is not run, as for EC2. Any failure (a transport error, an answer that is not 2xx
//! — AWS's error type and message in the failure — or one that does not decode) is
//! counted and the last group stays; a refresh still running when the next is due is
//! given up.

use std::sync::Arc;

use serde::Deserialize;

use super::LightsailSdConfig;
use super::ec2::{Api, NO_REGION, labels};
use crate::discovery::groups::{TargetGroup, join_host_port, sanitize, surrounded};
use crate::discovery::mechanism::{MachineContext, SdMachine, SdOut};
use crate::discovery::refresh::{Done, OneRequest};
use crate::io::{IoEvent, IoQueue, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

/// The most pages one refresh reads.
pub(crate) const MAX_PAGES: usize = 1000;

const P: &str = "__meta_lightsail_";

/// The `X-Amz-Target` of the call.
pub(crate) const TARGET: &str = "Lightsail_20161128.GetInstances";

/// `Tag`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tag {
    key: Option<String>,
    value: Option<String>,
}

/// `ResourceLocation`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    availability_zone: Option<String>,
}

/// `InstanceState`.
#[derive(Debug, Default, Deserialize)]
struct State {
    name: Option<String>,
}

/// `Instance` (the fields discovery reads; others are skipped).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Instance {
    private_ip_address: Option<String>,
    public_ip_address: Option<String>,
    #[serde(default)]
    ipv6_addresses: Option<Vec<String>>,
    location: Option<Location>,
    blueprint_id: Option<String>,
    bundle_id: Option<String>,
    name: Option<String>,
    state: Option<State>,
    support_code: Option<String>,
    #[serde(default)]
    tags: Option<Vec<Tag>>,
}

/// `GetInstancesOutput`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    #[serde(default)]
    instances: Option<Vec<Instance>>,
    next_page_token: Option<String>,
}

/// The body of a `GetInstances` call (`{}`, or the page token).
pub(crate) fn request_body(token: Option<&str>) -> Arc<[u8]> {
    let v = match token {
        Some(t) => serde_json::json!({ "pageToken": t }),
        None => serde_json::json!({}),
    };
    Arc::from(v.to_string().into_bytes())
}

/// An AWS JSON error answer as aws-sdk-go-v2 words it (`https response error
/// StatusCode: 400, RequestID: …, api error AccessDeniedException: …`): the type from
/// the body's `__type` (after any `#`), the message from `message`.
fn api_error(status: u16, body: &[u8]) -> String {
    #[derive(Deserialize, Default)]
    struct Err {
        #[serde(rename = "__type", default)]
        kind: Option<String>,
        #[serde(alias = "Message", default)]
        message: Option<String>,
    }
    let e: Err = serde_json::from_slice(body).unwrap_or_default();
    let mut s = format!("https response error StatusCode: {status}, RequestID: ");
    if let Some(k) = e.kind {
        let k = k.rsplit('#').next().unwrap_or_default().to_owned();
        s.push_str(&format!(
            ", api error {k}: {}",
            e.message.unwrap_or_default()
        ));
    }
    s
}

/// One page of `GetInstances`: its targets added to `out`, and the next page's token.
pub(crate) fn targets_of(
    body: &[u8],
    region: &str,
    port: i64,
    out: &mut Vec<Labels>,
) -> Result<Option<String>, String> {
    let page: Output = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    for inst in page.instances.into_iter().flatten() {
        let Some(ip) = inst.private_ip_address else {
            continue;
        };
        let mut l: Vec<(String, String)> = vec![
            (format!("{P}private_ip"), ip.clone()),
            (format!("{P}region"), region.to_owned()),
        ];
        let mut add = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                l.push((format!("{P}{name}"), v));
            }
        };
        add(
            "availability_zone",
            inst.location.and_then(|x| x.availability_zone),
        );
        add("blueprint_id", inst.blueprint_id);
        add("bundle_id", inst.bundle_id);
        add("instance_name", inst.name);
        add("instance_state", inst.state.and_then(|s| s.name));
        add("instance_support_code", inst.support_code);
        add("public_ip", inst.public_ip_address);
        if let Some(v6) = inst.ipv6_addresses.filter(|v| !v.is_empty()) {
            add("ipv6_addresses", Some(surrounded(&v6)));
        }
        l.push(("__address__".into(), join_host_port(&ip, &port.to_string())));
        for t in inst.tags.into_iter().flatten() {
            if let (Some(k), Some(v)) = (t.key, t.value) {
                l.push((format!("{P}tag_{}", sanitize(&k)), v));
            }
        }
        out.push(labels(l));
    }
    Ok(page.next_page_token.filter(|t| !t.is_empty()))
}

/// A refresh in progress: the targets so far, the token asked with, pages read.
#[derive(Debug)]
struct Paging {
    targets: Vec<Labels>,
    asked: Option<String>,
    pages: usize,
    /// Bytes of answers read (the pages of one refresh add up to at most the
    /// discovery body limit).
    read: u64,
}

/// The running provider.
#[derive(Debug)]
pub(crate) struct LightsailSd {
    port: i64,
    region: Option<String>,
    /// The API's URL (`<endpoint>/`).
    url: String,
    req: OneRequest,
    paging: Option<Paging>,
    limit: u64,
}

impl LightsailSd {
    pub(crate) fn new(cfg: &LightsailSdConfig, cx: &MachineContext<'_>) -> LightsailSd {
        let headers = vec![
            ("User-Agent".to_owned(), cx.env.user_agent.to_string()),
            (
                "Content-Type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            ("X-Amz-Target".to_owned(), TARGET.to_owned()),
        ];
        let api = Api::new(&cfg.aws, "lightsail", headers, cx);
        LightsailSd {
            port: cfg.aws.port,
            region: api.region,
            url: format!("{}/", api.base),
            req: api.req,
            paging: None,
            limit: cx.env.body_limit,
        }
    }

    fn refresh(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if self.region.is_none() {
            self.req.skip(now);
            out.failures.push(NO_REGION.into());
            return;
        }
        self.req
            .start_with(now, self.url.clone(), Some(request_body(None)), io);
        self.paging = Some(Paging {
            targets: Vec::new(),
            asked: None,
            pages: 0,
            read: 0,
        });
    }

    fn done(&mut self, d: Done, io: &mut IoQueue, out: &mut SdOut) {
        let Some(mut p) = self.paging.take() else {
            return;
        };
        let fail = |out: &mut SdOut, e: String| {
            out.failures.push(format!(
                "could not get instances: operation error Lightsail: GetInstances, {e}"
            ));
        };
        let (status, body) = match d {
            Done::Failed(e) => return fail(out, e),
            Done::Answer { status, body, .. } => (status, body),
        };
        if status / 100 != 2 {
            return fail(out, api_error(status, &body));
        }
        p.read += body.len() as u64;
        if self.limit > 0 && p.read > self.limit {
            return fail(
                out,
                format!("the pages of one refresh exceed {} bytes", self.limit),
            );
        }
        let region = self.region.clone().unwrap_or_default();
        match targets_of(&body, &region, self.port, &mut p.targets) {
            Err(e) => fail(out, format!("deserialization failed: {e}")),
            Ok(Some(token)) if p.asked.as_deref() != Some(&token) => {
                if p.pages + 1 >= MAX_PAGES {
                    return fail(
                        out,
                        format!("more than {MAX_PAGES} pages of instances: giving up"),
                    );
                }
                let body = request_body(Some(&token));
                self.req.follow_with(self.url.clone(), Some(body), io);
                p.asked = Some(token);
                p.pages += 1;
                self.paging = Some(p);
            }
            Ok(_) => out.updates.push(vec![TargetGroup {
                targets: p.targets,
                labels: Labels::empty(),
                source: region.as_str().into(),
            }]),
        }
    }
}

impl SdMachine for LightsailSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.refresh(now, io, out);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.req.owns(id)
    }

    fn handle_io(
        &mut self,
        _now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        if let Some(d) = self.req.handle(id, ev) {
            self.done(d, io, out);
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        let (due, gave_up) = self.req.due(now, io);
        if let Some(e) = gave_up {
            self.paging = None;
            out.failures.push(format!(
                "could not get instances: operation error Lightsail: GetInstances, {e}"
            ));
        }
        if due {
            self.refresh(now, io, out);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.req.poll_timeout()
    }

    fn stop(&mut self, io: &mut IoQueue) {
        self.paging = None;
        self.req.stop(io);
    }

    fn in_flight(&self) -> usize {
        self.req.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{Drive, block};
    use crate::io::{CredentialsFile, HttpRequest, IoCommand, IoOp};

    /// An answer shaped as Lightsail's API reference gives `GetInstances`' output.
    const PAGE: &str = r#"{"instances":[{"name":"web-1","arn":"arn:aws:lightsail:us-east-1:111122223333:Instance/1","supportCode":"6EXAMPLE3362/i-0EXAMPLEa407c5","createdAt":1.5e9,"location":{"availabilityZone":"us-east-1a","regionName":"us-east-1"},"resourceType":"Instance","tags":[{"key":"env","value":"prod"},{"key":"team.name","value":"edge"},{"key":"bare"}],"blueprintId":"amazon_linux_2","blueprintName":"Amazon Linux 2","bundleId":"nano_3_0","isStaticIp":false,"privateIpAddress":"172.26.1.10","publicIpAddress":"192.0.2.10","ipv6Addresses":["2001:db8::10","2001:db8::11"],"state":{"code":16,"name":"running"}},{"name":"no-private"},{"privateIpAddress":"172.26.1.11"}]}"#;

    fn drive() -> Drive<LightsailSd> {
        let c: LightsailSdConfig = block(
            "lightsail_sd_configs",
            "region: us-east-1\nendpoint: 'http://127.0.0.1:5000'\nport: 9100\naccess_key: AK\nsecret_key: SK\nrefresh_interval: 30s",
        );
        Drive::start("lightsail/0", 1, |cx| LightsailSd::new(&c, cx))
    }

    fn last_request(d: &Drive<LightsailSd>) -> HttpRequest {
        d.io.queue
            .iter()
            .rev()
            .find_map(|c| match c {
                IoCommand::Start(_, IoOp::Http(r)) => Some(r.clone()),
                _ => None,
            })
            .expect("a request")
    }

    #[test]
    fn get_instances_is_posted_signed_and_labelled_as_3_x() {
        let mut d = drive();
        let (id, url) = d.one();
        assert_eq!(url, "http://127.0.0.1:5000/");
        let r = last_request(&d);
        assert_eq!(r.body.as_deref(), Some(&b"{}"[..]));
        for (k, v) in [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "Lightsail_20161128.GetInstances"),
        ] {
            assert!(r.headers.iter().any(|(n, x)| n == k && x == v), "{k}");
        }
        let Some(CredentialsFile::SigV4(s)) = &r.credentials_file else {
            panic!("{:?}", r.credentials_file)
        };
        assert_eq!(
            (
                s.region.as_str(),
                s.service_name.as_str(),
                s.access_key.as_str()
            ),
            ("us-east-1", "lightsail", "AK")
        );
        d.respond(id, 200, &[], PAGE);
        assert_eq!(d.out.failures, Vec::<String>::new());
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "us-east-1");
        assert_eq!(
            g.targets.len(),
            2,
            "an instance without a private address is left out"
        );
        let t = &g.targets[0];
        let want = [
            ("__address__", "172.26.1.10:9100"),
            ("__meta_lightsail_availability_zone", "us-east-1a"),
            ("__meta_lightsail_blueprint_id", "amazon_linux_2"),
            ("__meta_lightsail_bundle_id", "nano_3_0"),
            ("__meta_lightsail_instance_name", "web-1"),
            ("__meta_lightsail_instance_state", "running"),
            (
                "__meta_lightsail_instance_support_code",
                "6EXAMPLE3362/i-0EXAMPLEa407c5",
            ),
            (
                "__meta_lightsail_ipv6_addresses",
                ",2001:db8::10,2001:db8::11,",
            ),
            ("__meta_lightsail_private_ip", "172.26.1.10"),
            ("__meta_lightsail_public_ip", "192.0.2.10"),
            ("__meta_lightsail_region", "us-east-1"),
            ("__meta_lightsail_tag_env", "prod"),
            ("__meta_lightsail_tag_team_name", "edge"),
        ];
        assert_eq!(t.len(), want.len(), "{t:?}");
        for (k, v) in want {
            assert_eq!(t.get(k), Some(v), "{k}");
        }
        // Absent fields leave their labels out.
        let t = &g.targets[1];
        assert_eq!(t.len(), 3, "{t:?}");
        assert_eq!(t.get("__address__"), Some("172.26.1.11:9100"));
    }

    #[test]
    fn pages_are_followed_and_failures_keep_the_group() {
        let mut d = drive();
        let (id, _) = d.one();
        let paged = PAGE.replacen('{', r#"{"nextPageToken":"p/2","#, 1);
        d.respond(id, 200, &[], &paged);
        let (id, _) = d.one();
        assert_eq!(
            last_request(&d).body.as_deref(),
            Some(&br#"{"pageToken":"p/2"}"#[..])
        );
        d.respond(id, 200, &[], PAGE);
        assert_eq!(d.out.updates[0][0].targets.len(), 4);
        for (status, body, want) in [
            (
                400,
                r#"{"__type":"com.amazonaws.lightsail#AccessDeniedException","message":"not allowed"}"#,
                "could not get instances: operation error Lightsail: GetInstances, https response error StatusCode: 400, RequestID: , api error AccessDeniedException: not allowed",
            ),
            (
                200,
                r#"{"instances":[{"privateIpAddress":7}]}"#,
                "could not get instances: operation error Lightsail: GetInstances, deserialization failed: invalid type: integer `7`, expected a string at line 1 column 35",
            ),
        ] {
            d.advance();
            let (id, _) = d.one();
            d.respond(id, status, &[], body);
            assert_eq!(d.out.failures.last().map(String::as_str), Some(want));
        }
        d.advance();
        let (id, url) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures.last().map(String::as_str),
            Some(format!("could not get instances: operation error Lightsail: GetInstances, Post {url:?}: connection refused").as_str())
        );
        assert_eq!(d.out.updates.len(), 1, "the group stays");
    }
}
