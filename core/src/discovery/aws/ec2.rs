//! The EC2 provider (`ec2_sd_configs`, and `aws_sd_configs` with `role: ec2`): 3.x's
//! `EC2Discovery.refresh` under `refresh.Discovery` (`discovery/aws/ec2.go`).
//!
//! Every `refresh_interval`: `DescribeAvailabilityZones` once, until an answer builds the
//! zone-name → zone-id map (a failure there only leaves `__meta_ec2_availability_zone_id`
//! empty, as 3.x logs it at debug level and goes on), then `DescribeInstances` with the
//! block's filters, page after page while the answer carries a new `nextToken`. Two
//! bounds 3.x does not have: a token repeating the one just sent ends the paging with
//! what was read (3.x's paginator, without `StopOnDuplicateToken`, would ask again
//! until the refresh's deadline), and a refresh reads at most [`MAX_PAGES`] pages and
//! the discovery body limit in bytes, else it fails. Requests go
//! over the EC2 Query protocol as `GET <endpoint>/?Action=…&Version=2016-11-15&…` (the
//! SDK posts the same parameters as a form; EC2 takes both), signed with SigV4 for the
//! service `ec2` in the block's region by the shell ([`CredentialsFile::SigV4`]), which
//! finds the credentials as the SDK's default chain does and reads them again for every
//! request — so 3.x's dropping of its client after `AuthFailure` or
//! `UnauthorizedOperation` (to pick up new credentials) has nothing left to do here.
//!
//! One group whose source is the region, a target per instance that has a private IPv4
//! address or an IPv6 address, with 3.x's labels ([`targets_of`]). Any failure (a
//! transport error, an answer that is not 2xx — its AWS error code and message in the
//! failure — or one that does not decode) is counted in
//! `prometheus_sd_refresh_failures_total` and the last group stays; pages already read
//! are dropped with it. A refresh still running when the next is due is given up.
//!
//! The region: the block's `region`, else the one the shell found in the environment
//! ([`crate::agent::AgentOptions::aws_region`]); 3.x would then ask the instance
//! metadata service, which trawl does not read, so the refresh fails with 3.x's
//! "could not determine AWS region" and says so. The endpoint: the block's `endpoint`,
//! else `https://ec2.<region>.amazonaws.com`; redirects are not followed (a signature
//! is made for one URL). A block with `role_arn` is not run (see [`super`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{AwsSettings, Ec2SdConfig};
use crate::auth::SigV4Config;
use crate::auth::sigv4::uri_encode;
use crate::discovery::groups::{TargetGroup, join_host_port, sanitize};
use crate::discovery::mechanism::{MachineContext, SdFilter, SdMachine, SdOut};
use crate::discovery::refresh::{Done, OneRequest};
use crate::discovery::xml::{self, Element};
use crate::io::{CredentialsFile, IoEvent, IoQueue, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

/// The EC2 API version the requests name (the one the SDKs send).
const VERSION: &str = "2016-11-15";

/// The most pages one refresh reads (EC2 answers up to 1000 instances a page): an
/// endpoint that never stops giving tokens cannot grow a refresh without bound.
const MAX_PAGES: usize = 1000;

/// How much of an error answer is kept (AWS's error document is a few hundred bytes).
const ERROR_BODY: usize = 4096;

const P: &str = "__meta_ec2_";

/// The SigV4 block the shell signs EC2 requests with: static keys only when both are
/// set (3.x's `EC2Discovery.ec2Client`), else the profile or the default chain.
pub(crate) fn signing(aws: &AwsSettings, region: &str, service: &str) -> SigV4Config {
    let both = !aws.access_key.is_empty() && !aws.secret_key.expose().is_empty();
    SigV4Config {
        region: region.to_owned(),
        access_key: if both {
            aws.access_key.clone()
        } else {
            String::new()
        },
        secret_key: if both {
            aws.secret_key.clone()
        } else {
            crate::common::http::Secret::new("")
        },
        profile: aws.profile.clone(),
        role_arn: String::new(),
        external_id: String::new(),
        use_fips_sts_endpoint: false,
        service_name: service.to_owned(),
    }
}

/// 3.x's failure when no region is found (trawl cannot ask the metadata service).
pub(crate) const NO_REGION: &str = "could not determine AWS region: region not found in AWS config or IMDS (trawl does not read the instance metadata service: set region, AWS_REGION or AWS_DEFAULT_REGION)";

/// What an AWS provider calls: the region (the block's, else the environment's), the
/// base URL (the block's `endpoint`, else `https://<service>.<region>.amazonaws.com`),
/// and the request side, signed for `service` and following no redirect (a signature is
/// made for one URL; a redirect answer is a failure that names its status).
pub(crate) struct Api {
    pub(crate) region: Option<String>,
    pub(crate) base: String,
    pub(crate) req: OneRequest,
}

impl Api {
    pub(crate) fn new(
        aws: &AwsSettings,
        service: &str,
        headers: Vec<(String, String)>,
        cx: &MachineContext<'_>,
    ) -> Api {
        let region = if aws.region.is_empty() {
            cx.env.aws_region.as_deref().map(str::to_owned)
        } else {
            Some(aws.region.clone())
        };
        let named = region.as_deref().unwrap_or_default();
        let base = if aws.endpoint.is_empty() {
            format!("https://{service}.{named}.amazonaws.com")
        } else {
            aws.endpoint.trim_end_matches('/').to_owned()
        };
        let mut client = aws.http_client.clone();
        client.follow_redirects = false;
        let sign = CredentialsFile::SigV4(Box::new(signing(aws, named, service)));
        let req = OneRequest::new(
            &client,
            headers,
            Some(sign),
            aws.refresh_interval.to_std(),
            cx,
        )
        .keep_error_body(ERROR_BODY);
        Api { region, base, req }
    }
}

/// `DescribeInstances`' query: the action, the version, the filters as the Query
/// protocol flattens them (`Filter.1.Name`, `Filter.1.Value.1`, …), the page token.
fn describe_instances(filters: &[SdFilter], token: Option<&str>) -> String {
    let mut q = format!("Action=DescribeInstances&Version={VERSION}");
    for (i, f) in filters.iter().enumerate() {
        let n = i + 1;
        q.push_str(&format!("&Filter.{n}.Name={}", uri_encode(&f.name)));
        for (j, v) in f.values.iter().enumerate() {
            q.push_str(&format!("&Filter.{n}.Value.{}={}", j + 1, uri_encode(v)));
        }
    }
    if let Some(t) = token {
        q.push_str(&format!("&NextToken={}", uri_encode(t)));
    }
    q
}

/// An AWS error answer as aws-sdk-go-v2 words it: `https response error StatusCode:
/// 401, RequestID: …, api error AuthFailure: …` (the code and message from the body's
/// `Errors/Error`, when it has them).
fn api_error(status: u16, body: &[u8]) -> String {
    let doc = xml::parse(body).ok();
    let err = doc.as_ref().and_then(|d| d.at(&["Errors", "Error"]));
    let request_id = doc
        .as_ref()
        .and_then(|d| d.text_of("RequestID").or_else(|| d.text_of("RequestId")))
        .unwrap_or_default();
    let mut s = format!("https response error StatusCode: {status}, RequestID: {request_id}");
    if let Some(e) = err {
        s.push_str(&format!(
            ", api error {}: {}",
            e.text_of("Code").unwrap_or("UnknownError"),
            e.text_of("Message").unwrap_or_default()
        ));
    }
    s
}

/// The zone-name → zone-id map of a `DescribeAvailabilityZones` answer (zones missing
/// either are left out).
pub(crate) fn zones(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let doc = xml::parse(body)?;
    Ok(doc
        .items("availabilityZoneInfo")
        .filter_map(|z| {
            Some((
                z.text_of("zoneName")?.to_owned(),
                z.text_of("zoneId")?.to_owned(),
            ))
        })
        .collect())
}

/// One page of `DescribeInstances`: its targets added to `out`, and the next page's
/// token (none when empty or absent, as the SDK's paginator stops).
pub(crate) fn targets_of(
    body: &[u8],
    region: &str,
    port: i64,
    zones: Option<&BTreeMap<String, String>>,
    out: &mut Vec<Labels>,
) -> Result<Option<String>, String> {
    let doc = xml::parse(body)?;
    for r in doc.items("reservationSet") {
        let owner = r.text_of("ownerId");
        for inst in r.items("instancesSet") {
            if let Some(t) = instance(inst, owner, region, port, zones) {
                out.push(t);
            }
        }
    }
    Ok(doc
        .text_of("nextToken")
        .filter(|t| !t.is_empty())
        .map(str::to_owned))
}

/// Joins with commas, with a comma before and after (3.x's list labels).
fn listed(v: &[String]) -> String {
    format!(",{},", v.join(","))
}

/// An instance's IPv6 addresses as 3.x's `getInstanceIPv6Addresses` finds them (only
/// in a VPC, from interfaces in a subnet): the address to use by default (the first
/// primary one, else the first other), the primary ones by device index (empty
/// strings keep the places of interfaces without one), and all of them.
fn ipv6(inst: &Element) -> (Option<String>, Option<Vec<String>>, Option<Vec<String>>) {
    let mut primary: Option<Vec<String>> = None;
    let mut all: Option<Vec<String>> = None;
    if inst.child("vpcId").is_none() {
        return (None, None, None);
    }
    for eni in inst.items("networkInterfaceSet") {
        if eni.child("subnetId").is_none() {
            continue;
        }
        let index = eni
            .at(&["attachment", "deviceIndex"])
            .and_then(|d| d.text.trim().parse::<usize>().ok())
            .unwrap_or(0);
        for a in eni.items("ipv6AddressesSet") {
            let addr = a.text_of("ipv6Address").unwrap_or_default().to_owned();
            all.get_or_insert_with(Vec::new).push(addr.clone());
            if a.text_of("isPrimaryIpv6")
                .is_some_and(|p| p.trim() == "true")
            {
                // Bounded by the interfaces' device indexes, which EC2 keeps small; a
                // hostile index is capped rather than allocated.
                let p = primary.get_or_insert_with(Vec::new);
                let index = index.min(1024);
                if p.len() <= index {
                    p.resize(index + 1, String::new());
                }
                p[index] = addr;
            }
        }
    }
    let default = primary
        .iter()
        .flatten()
        .chain(all.iter().flatten())
        .find(|a| !a.is_empty())
        .cloned();
    (default, primary, all)
}

/// One instance's target, as 3.x's `EC2Discovery.refresh` labels it; `None` for an
/// instance with neither a private IPv4 address nor an IPv6 one.
fn instance(
    inst: &Element,
    owner: Option<&str>,
    region: &str,
    port: i64,
    zones: Option<&BTreeMap<String, String>>,
) -> Option<Labels> {
    let (default6, primary6, all6) = ipv6(inst);
    let private_ip = inst.text_of("privateIpAddress");
    if private_ip.is_none() && default6.is_none() {
        return None;
    }
    let text = |n: &str| inst.text_of(n).unwrap_or_default().to_owned();
    let mut l: Vec<(String, String)> = vec![
        (format!("{P}instance_id"), text("instanceId")),
        (format!("{P}region"), region.to_owned()),
    ];
    if let Some(o) = owner {
        l.push((format!("{P}owner_id"), o.to_owned()));
    }
    if let Some(a) = &default6 {
        l.push((format!("{P}default_ipv6_address"), a.clone()));
    }
    let host = match private_ip {
        Some(ip) => {
            l.push((format!("{P}private_ip"), ip.to_owned()));
            ip.to_owned()
        }
        None => default6.unwrap_or_default(),
    };
    l.push((
        "__address__".into(),
        join_host_port(&host, &port.to_string()),
    ));
    if let Some(d) = inst.text_of("privateDnsName") {
        l.push((format!("{P}private_dns_name"), d.to_owned()));
    }
    let platform = text("platform");
    if !platform.is_empty() {
        l.push((format!("{P}platform"), platform));
    }
    // The Query protocol's names for PublicIpAddress and PublicDnsName.
    if let Some(ip) = inst.text_of("ipAddress") {
        l.push((format!("{P}public_ip"), ip.to_owned()));
        l.push((format!("{P}public_dns_name"), text("dnsName")));
    }
    if let Some(p) = &primary6 {
        l.push((format!("{P}primary_ipv6_addresses"), listed(p)));
    }
    if let Some(a) = &all6 {
        l.push((format!("{P}ipv6_addresses"), listed(a)));
    }
    l.push((format!("{P}ami"), text("imageId")));
    let az = inst
        .at(&["placement", "availabilityZone"])
        .map(|e| e.text.clone())
        .unwrap_or_default();
    let az_id = zones.and_then(|z| z.get(&az)).cloned().unwrap_or_default();
    l.push((format!("{P}availability_zone"), az));
    l.push((format!("{P}availability_zone_id"), az_id));
    let state = inst
        .at(&["instanceState", "name"])
        .map(|e| e.text.clone())
        .unwrap_or_default();
    l.push((format!("{P}instance_state"), state));
    l.push((format!("{P}instance_type"), text("instanceType")));
    for (name, key) in [
        ("instance_lifecycle", "instanceLifecycle"),
        ("architecture", "architecture"),
    ] {
        let v = text(key);
        if !v.is_empty() {
            l.push((format!("{P}{name}"), v));
        }
    }
    if let Some(vpc) = inst.text_of("vpcId") {
        l.push((format!("{P}vpc_id"), vpc.to_owned()));
        l.push((format!("{P}primary_subnet_id"), text("subnetId")));
        // Each interface's subnet once, in the order EC2 lists them.
        let mut subnets: Vec<String> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for eni in inst.items("networkInterfaceSet") {
            if let Some(s) = eni.text_of("subnetId")
                && seen.insert(s)
            {
                subnets.push(s.to_owned());
            }
        }
        l.push((format!("{P}subnet_id"), listed(&subnets)));
    }
    for t in inst.items("tagSet") {
        if let (Some(k), Some(v)) = (t.text_of("key"), t.text_of("value")) {
            l.push((format!("{P}tag_{}", sanitize(k)), v.to_owned()));
        }
    }
    Some(labels(l))
}

pub(crate) use crate::discovery::groups::label_set as labels;

/// Where a refresh is.
#[derive(Debug)]
enum Stage {
    /// Asking for the availability zones.
    Zones,
    /// Reading instance pages: the targets so far, the token of the page asked for,
    /// and how many pages were read.
    Instances(Vec<Labels>, Option<String>, usize),
}

/// The running provider.
#[derive(Debug)]
pub(crate) struct Ec2Sd {
    filters: Vec<SdFilter>,
    port: i64,
    /// The region, when the block or the environment names one.
    region: Option<String>,
    /// The API's base URL (no trailing slash).
    base: String,
    req: OneRequest,
    zones: Option<BTreeMap<String, String>>,
    stage: Option<Stage>,
    /// Bytes of answers the refresh in progress has read, and the most it may (the
    /// discovery body limit, `AgentOptions::sd_body_limit`: pages add up).
    read: u64,
    limit: u64,
}

impl Ec2Sd {
    pub(crate) fn new(cfg: &Ec2SdConfig, cx: &MachineContext<'_>) -> Ec2Sd {
        let headers = vec![("User-Agent".to_owned(), cx.env.user_agent.to_string())];
        let api = Api::new(&cfg.aws, "ec2", headers, cx);
        Ec2Sd {
            filters: cfg.filters.clone(),
            port: cfg.aws.port,
            region: api.region,
            base: api.base,
            req: api.req,
            zones: None,
            stage: None,
            read: 0,
            limit: cx.env.body_limit,
        }
    }

    fn url(&self, query: &str) -> String {
        format!("{}/?{query}", self.base)
    }

    fn refresh(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if self.region.is_none() {
            self.req.skip(now);
            out.failures.push(NO_REGION.into());
            return;
        }
        self.read = 0;
        if self.zones.is_none() {
            let q = format!("Action=DescribeAvailabilityZones&Version={VERSION}");
            self.req.start(now, self.url(&q), io);
            self.stage = Some(Stage::Zones);
        } else {
            let q = describe_instances(&self.filters, None);
            self.req.start(now, self.url(&q), io);
            self.stage = Some(Stage::Instances(Vec::new(), None, 0));
        }
    }

    fn done(&mut self, d: Done, io: &mut IoQueue, out: &mut SdOut) {
        let Some(stage) = self.stage.take() else {
            return;
        };
        let region = self.region.clone().unwrap_or_default();
        match stage {
            Stage::Zones => {
                // A failure is only logged at debug level by 3.x: the zone ids stay
                // empty and the instances are asked for all the same.
                if let Done::Answer { status, body, .. } = d
                    && status / 100 == 2
                    && let Ok(z) = zones(&body)
                {
                    self.zones = Some(z);
                }
                let q = describe_instances(&self.filters, None);
                self.req.follow(self.url(&q), io);
                self.stage = Some(Stage::Instances(Vec::new(), None, 0));
            }
            Stage::Instances(mut targets, asked, pages) => {
                let fail = |out: &mut SdOut, e: String| {
                    out.failures.push(format!(
                        "could not describe instances: operation error EC2: DescribeInstances, {e}"
                    ));
                };
                let (status, body) = match d {
                    Done::Failed(e) => return fail(out, e),
                    Done::Answer { status, body, .. } => (status, body),
                };
                if status / 100 != 2 {
                    return fail(out, api_error(status, &body));
                }
                self.read += body.len() as u64;
                if self.limit > 0 && self.read > self.limit {
                    return fail(
                        out,
                        format!("the pages of one refresh exceed {} bytes", self.limit),
                    );
                }
                match targets_of(&body, &region, self.port, self.zones.as_ref(), &mut targets) {
                    Err(e) => fail(out, format!("deserialization failed: {e}")),
                    // A token that repeats the one sent ends the paging with what was
                    // read (3.x would ask again until its deadline).
                    Ok(Some(token)) if asked.as_deref() != Some(&token) => {
                        if pages + 1 >= MAX_PAGES {
                            return fail(
                                out,
                                format!("more than {MAX_PAGES} pages of instances: giving up"),
                            );
                        }
                        let q = describe_instances(&self.filters, Some(&token));
                        self.req.follow(self.url(&q), io);
                        self.stage = Some(Stage::Instances(targets, Some(token), pages + 1));
                    }
                    Ok(_) => out.updates.push(vec![TargetGroup {
                        targets,
                        labels: Labels::empty(),
                        source: region.as_str().into(),
                    }]),
                }
            }
        }
    }
}

impl SdMachine for Ec2Sd {
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
            self.stage = None;
            out.failures.push(format!(
                "could not describe instances: operation error EC2: DescribeInstances, {e}"
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
        self.stage = None;
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
    use crate::io::{HttpRequest, IoCommand, IoOp};

    /// Two instances as moto 5.2 answers `DescribeInstances` (trimmed of what discovery
    /// does not read), and a third with IPv6 only, no VPC-less fields.
    const PAGE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><reservationSet><item><reservationId>r-366d</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item><architecture>x86_64</architecture><networkInterfaceSet><item><association><publicIp>54.214.251.241</publicIp></association><attachment><deviceIndex>0</deviceIndex><status>attached</status></attachment><ipv6AddressesSet/><privateIpAddress>10.34.155.64</privateIpAddress><subnetId>subnet-e0f3</subnetId><vpcId>vpc-36af</vpcId></item></networkInterfaceSet><tagSet><item><key>env</key><value>prod</value></item><item><key>my-tag.x</key><value>y</value></item><item><key>no-value</key></item></tagSet><instanceId>i-a90e</instanceId><imageId>ami-12c6146b</imageId><instanceState><code>16</code><name>running</name></instanceState><privateDnsName>ip-10-34-155-64.ec2.internal</privateDnsName><dnsName>ec2-54-214-251-241.compute-1.amazonaws.com</dnsName><instanceType>t2.micro</instanceType><placement><groupName/><tenancy>default</tenancy><availabilityZone>us-east-1a</availabilityZone></placement><platform>windows</platform><subnetId>subnet-e0f3</subnetId><vpcId>vpc-36af</vpcId><privateIpAddress>10.34.155.64</privateIpAddress><ipAddress>54.214.251.241</ipAddress></item><item><instanceId>i-gone</instanceId><imageId>ami-1</imageId><instanceState><name>terminated</name></instanceState><placement><availabilityZone>us-east-1b</availabilityZone></placement></item></instancesSet></item><item><reservationId>r-2</reservationId><instancesSet><item><instanceId>i-v6</instanceId><imageId>ami-2</imageId><instanceLifecycle>spot</instanceLifecycle><instanceState><name>pending</name></instanceState><instanceType>c7g.large</instanceType><placement><availabilityZone>us-east-1z</availabilityZone></placement><subnetId>subnet-a</subnetId><vpcId>vpc-b</vpcId><networkInterfaceSet><item><subnetId>subnet-b</subnetId><attachment><deviceIndex>1</deviceIndex></attachment><ipv6AddressesSet><item><ipv6Address>2001:db8::2</ipv6Address><isPrimaryIpv6>false</isPrimaryIpv6></item><item><ipv6Address>2001:db8::1</ipv6Address><isPrimaryIpv6>true</isPrimaryIpv6></item></ipv6AddressesSet></item><item><subnetId>subnet-a</subnetId><attachment><deviceIndex>0</deviceIndex></attachment><ipv6AddressesSet/></item><item><subnetId>subnet-b</subnetId><ipv6AddressesSet/></item></networkInterfaceSet></item></instancesSet></item></reservationSet><requestId>request-id</requestId></DescribeInstancesResponse>"#;

    const ZONES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><availabilityZoneInfo><item><zoneName>us-east-1a</zoneName><zoneId>use1-az6</zoneId><zoneState>available</zoneState></item><item><zoneName>us-east-1z</zoneName><zoneId>use1-az9</zoneId></item><item><zoneName>us-east-1q</zoneName></item></availabilityZoneInfo></DescribeAvailabilityZonesResponse>"#;

    const AUTH_FAILURE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>59dbff89-35bd-4eac-99ed-be587EXAMPLE</RequestID></Response>"#;

    fn drive_with(yaml: &str, env_region: Option<&str>) -> Drive<Ec2Sd> {
        let c: Ec2SdConfig = block("ec2_sd_configs", yaml);
        Drive::start("ec2/0", 1, |cx| {
            let env = crate::discovery::mechanism::SdEnv {
                aws_region: env_region.map(Into::into),
                ..cx.env.clone()
            };
            Ec2Sd::new(
                &c,
                &MachineContext {
                    env: &env,
                    name: cx.name,
                    now: cx.now,
                },
            )
        })
    }

    fn drive() -> Drive<Ec2Sd> {
        drive_with(
            "region: us-east-1\nendpoint: 'http://127.0.0.1:5000/'\nport: 9100\nrefresh_interval: 30s\naccess_key: AK\nsecret_key: SK\nfilters:\n  - {name: 'tag:env', values: [prod, 'a b']}\n  - {name: instance-state-name, values: [running]}",
            None,
        )
    }

    fn requests(d: &Drive<Ec2Sd>) -> Vec<HttpRequest> {
        d.io.queue
            .iter()
            .filter_map(|c| match c {
                IoCommand::Start(_, IoOp::Http(r)) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn label<'a>(t: &'a Labels, name: &str) -> Option<&'a str> {
        t.get(&format!("{P}{name}"))
    }

    #[test]
    fn a_refresh_asks_for_zones_then_instances_and_labels_them_as_3_x() {
        let mut d = drive();
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://127.0.0.1:5000/?Action=DescribeAvailabilityZones&Version=2016-11-15"
        );
        d.respond(id, 200, &[], ZONES);
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://127.0.0.1:5000/?Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aenv&Filter.1.Value.1=prod&Filter.1.Value.2=a%20b&Filter.2.Name=instance-state-name&Filter.2.Value.1=running"
        );
        // Signed by the shell for ec2 in the block's region with the block's keys.
        let r = requests(&d);
        let Some(CredentialsFile::SigV4(s)) = &r[1].credentials_file else {
            panic!("{:?}", r[1].credentials_file)
        };
        assert_eq!(
            (
                s.region.as_str(),
                s.service_name.as_str(),
                s.access_key.as_str()
            ),
            ("us-east-1", "ec2", "AK")
        );
        assert_eq!(s.secret_key.expose(), "SK");
        d.respond(id, 200, &[], PAGE);
        assert_eq!(d.out.failures, Vec::<String>::new());
        assert_eq!(d.out.updates.len(), 1);
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "us-east-1");
        assert_eq!(
            g.targets.len(),
            2,
            "the instance with no address is left out"
        );
        let t = &g.targets[0];
        for (k, v) in [
            ("instance_id", "i-a90e"),
            ("region", "us-east-1"),
            ("owner_id", "123456789012"),
            ("private_ip", "10.34.155.64"),
            ("private_dns_name", "ip-10-34-155-64.ec2.internal"),
            ("platform", "windows"),
            ("public_ip", "54.214.251.241"),
            (
                "public_dns_name",
                "ec2-54-214-251-241.compute-1.amazonaws.com",
            ),
            ("ami", "ami-12c6146b"),
            ("availability_zone", "us-east-1a"),
            ("availability_zone_id", "use1-az6"),
            ("instance_state", "running"),
            ("instance_type", "t2.micro"),
            ("architecture", "x86_64"),
            ("vpc_id", "vpc-36af"),
            ("primary_subnet_id", "subnet-e0f3"),
            ("subnet_id", ",subnet-e0f3,"),
            ("tag_env", "prod"),
            ("tag_my_tag_x", "y"),
        ] {
            assert_eq!(label(t, k), Some(v), "{k} in {t:?}");
        }
        assert_eq!(t.get("__address__"), Some("10.34.155.64:9100"));
        for absent in [
            "instance_lifecycle",
            "default_ipv6_address",
            "ipv6_addresses",
            "primary_ipv6_addresses",
            "tag_no_value",
        ] {
            assert_eq!(label(t, absent), None, "{absent}");
        }
        assert_eq!(t.len(), 20, "{t:?}");
        // IPv6 only: the first primary address, placed by device index.
        let t = &g.targets[1];
        assert_eq!(t.get("__address__"), Some("[2001:db8::1]:9100"));
        for (k, v) in [
            ("default_ipv6_address", "2001:db8::1"),
            ("primary_ipv6_addresses", ",,2001:db8::1,"),
            ("ipv6_addresses", ",2001:db8::2,2001:db8::1,"),
            ("subnet_id", ",subnet-b,subnet-a,"),
            ("primary_subnet_id", "subnet-a"),
            ("instance_lifecycle", "spot"),
            ("availability_zone_id", "use1-az9"),
        ] {
            assert_eq!(label(t, k), Some(v), "{k} in {t:?}");
        }
        assert_eq!(label(t, "owner_id"), None);
        assert_eq!(label(t, "private_ip"), None);
        // The zones are known now: the next refresh asks for instances only.
        d.advance();
        let (_, url) = d.one();
        assert!(url.contains("Action=DescribeInstances"), "{url}");
    }

    #[test]
    fn pages_are_followed_and_reported_together() {
        let mut d = drive_with("region: eu-west-1", None);
        let (id, url) = d.one();
        assert!(
            url.starts_with(
                "https://ec2.eu-west-1.amazonaws.com/?Action=DescribeAvailabilityZones"
            ),
            "{url}"
        );
        d.respond(id, 503, &[], "");
        // The zones failed: instances are asked for anyway.
        let (id, url) = d.one();
        assert_eq!(
            url,
            "https://ec2.eu-west-1.amazonaws.com/?Action=DescribeInstances&Version=2016-11-15"
        );
        let first = PAGE.replace(
            "<requestId>request-id</requestId>",
            "<nextToken>tok/1+=</nextToken>",
        );
        d.respond(id, 200, &[], &first);
        assert!(d.out.updates.is_empty(), "no group before the last page");
        let (id, url) = d.one();
        assert!(url.ends_with("&NextToken=tok%2F1%2B%3D"), "{url}");
        let second = PAGE
            .replace("i-a90e", "i-page2")
            .replace("<nextToken>", "<x>");
        d.respond(id, 200, &[], &second);
        assert_eq!(d.out.failures, Vec::<String>::new());
        let g = &d.out.updates[0][0];
        let ids: Vec<_> = g
            .targets
            .iter()
            .map(|t| label(t, "instance_id").unwrap_or_default())
            .collect();
        assert_eq!(ids, ["i-a90e", "i-v6", "i-page2", "i-v6"]);
        // No zone ids were learnt: empty (absent), and the zones are asked again.
        assert_eq!(label(&g.targets[0], "availability_zone_id"), None);
        // Static keys need both halves: none here, so the chain is asked.
        let r = requests(&d);
        let Some(CredentialsFile::SigV4(s)) = &r[0].credentials_file else {
            panic!()
        };
        assert_eq!(
            (s.access_key.as_str(), s.region.as_str()),
            ("", "eu-west-1")
        );
        d.advance();
        let (_, url) = d.one();
        assert!(url.contains("Action=DescribeAvailabilityZones"), "{url}");
    }

    #[test]
    fn a_repeated_token_ends_the_paging_and_endless_tokens_are_cut() {
        let mut d = drive();
        let (id, _) = d.one();
        d.respond(id, 200, &[], ZONES);
        let (id, _) = d.one();
        let with = |t: &str| {
            PAGE.replace(
                "<requestId>",
                &format!("<nextToken>{t}</nextToken><requestId>"),
            )
        };
        d.respond(id, 200, &[], &with("same"));
        let (id, url) = d.one();
        assert!(url.ends_with("&NextToken=same"), "{url}");
        d.respond(id, 200, &[], &with("same"));
        assert!(d.started().is_empty(), "the paging stopped");
        assert_eq!(d.out.updates[0][0].targets.len(), 4, "both pages kept");
        // A new token on every page: cut after MAX_PAGES.
        d.advance();
        let bare = |t: &str| {
            format!(
                "<DescribeInstancesResponse><nextToken>{t}</nextToken></DescribeInstancesResponse>"
            )
        };
        for n in 0..MAX_PAGES {
            let (id, _) = d.one();
            d.respond(id, 200, &[], &bare(&format!("t{n}")));
        }
        assert!(d.started().is_empty());
        assert_eq!(d.out.updates.len(), 1);
        assert_eq!(
            d.out.failures,
            [
                "could not describe instances: operation error EC2: DescribeInstances, more than 1000 pages of instances: giving up"
            ]
        );
        // Pages that add up past the body limit (1 MiB here): cut there.
        d.advance();
        let mut pages = 0;
        while d.out.failures.len() == 1 {
            let (id, _) = d.one();
            d.respond(id, 200, &[], &with(&format!("big{pages:04}")));
            pages += 1;
        }
        assert_eq!(
            pages,
            (1 << 20) / with("big0000").len() + 1,
            "cut at the page past the limit"
        );
        assert_eq!(
            d.out.failures[1],
            "could not describe instances: operation error EC2: DescribeInstances, the pages of one refresh exceed 1048576 bytes"
        );
    }

    #[test]
    fn failures_keep_the_last_group() {
        let mut d = drive();
        let (id, _) = d.one();
        d.respond(id, 200, &[], ZONES);
        let (id, _) = d.one();
        d.respond(id, 200, &[], PAGE);
        assert_eq!(d.out.updates.len(), 1);
        let want = [
            "could not describe instances: operation error EC2: DescribeInstances, https response error StatusCode: 401, RequestID: 59dbff89-35bd-4eac-99ed-be587EXAMPLE, api error AuthFailure: AWS was not able to validate the provided access credentials",
            "could not describe instances: operation error EC2: DescribeInstances, https response error StatusCode: 500, RequestID: ",
            "could not describe instances: operation error EC2: DescribeInstances, deserialization failed: XML syntax error: unexpected EOF in element item",
            r#"could not describe instances: operation error EC2: DescribeInstances, Get "http://127.0.0.1:5000/?Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aenv&Filter.1.Value.1=prod&Filter.1.Value.2=a%20b&Filter.2.Name=instance-state-name&Filter.2.Value.1=running": connection refused"#,
        ];
        for (i, w) in want.iter().enumerate() {
            d.advance();
            let (id, _) = d.one();
            match i {
                0 => d.respond(id, 401, &[], AUTH_FAILURE),
                1 => d.respond(id, 500, &[], "not xml"),
                2 => {
                    let cut = PAGE
                        .find("<instancesSet>")
                        .expect("the page lists instances");
                    d.respond(id, 200, &[], &PAGE[..cut]);
                }
                _ => d.feed(id, IoEvent::Failed("connection refused")),
            }
            assert_eq!(d.out.failures.last().map(String::as_str), Some(*w));
        }
        // A second page that fails drops the first.
        d.advance();
        let (id, _) = d.one();
        d.respond(
            id,
            200,
            &[],
            &PAGE.replace("<requestId>", "<nextToken>t</nextToken><requestId>"),
        );
        let (id, _) = d.one();
        d.respond(id, 400, &[], AUTH_FAILURE);
        // A refresh still running when the next is due is given up.
        d.advance();
        let (id, _) = d.one();
        d.advance();
        assert_eq!(d.cancelled(), [id]);
        assert!(
            d.out
                .failures
                .last()
                .is_some_and(|f| f.ends_with("context deadline exceeded")),
            "{:?}",
            d.out.failures
        );
        assert_eq!(d.out.updates.len(), 1, "the first group stays");
        assert_eq!(d.out.failures.len(), 6);
    }

    #[test]
    fn without_a_region_every_refresh_fails_and_says_why() {
        let mut d = drive_with("endpoint: 'http://127.0.0.1:5000'", None);
        assert!(d.started().is_empty());
        d.advance();
        d.advance();
        assert!(d.started().is_empty());
        assert_eq!(d.out.failures.len(), 3);
        assert!(d.out.failures[0].starts_with("could not determine AWS region"));
        assert!(d.out.failures[0].contains("AWS_REGION"));
        assert_eq!(d.now, Instant(120_000_000_000), "one interval apart");
        // The environment's region, when the block names none.
        let mut d = drive_with("{}", Some("ap-south-1"));
        let (_, url) = d.one();
        assert!(
            url.starts_with("https://ec2.ap-south-1.amazonaws.com/?"),
            "{url}"
        );
    }

    #[test]
    fn the_generic_block_runs_role_ec2_and_a_role_arn_is_reported_not_run() {
        use crate::discovery::mechanism::test_support::{job, parse};
        let c: super::super::AwsSdConfig = block("aws_sd_configs", "role: ec2\nregion: us-east-1");
        assert!(matches!(c, super::super::AwsSdConfig::Ec2(_)));
        // Other roles are validated, not run (`block` checks what is reported).
        let _: super::super::AwsSdConfig = block("aws_sd_configs", "role: ecs");
        for (key, body) in [
            ("ec2_sd_configs", "role_arn: arn:aws:iam::1:role/x"),
            (
                "aws_sd_configs",
                "role: ec2\nrole_arn: arn:aws:iam::1:role/x",
            ),
            ("lightsail_sd_configs", "role_arn: arn:aws:iam::1:role/x"),
        ] {
            let c = parse(&job(key, &[body])).expect("loads");
            let j = c.job("j").expect("job j");
            assert_eq!(j.unsupported_sd.len(), 1, "{key}");
            assert!(
                j.unsupported_sd[0]
                    .starts_with(&format!("{key} with role_arn (assuming a role through STS")),
                "{key}: {:?}",
                j.unsupported_sd
            );
        }
    }
}
