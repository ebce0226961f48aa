//! The Engine API's answers as 3.x's providers read them, and the targets they make:
//! `DockerDiscovery.refresh` (containers), `getNetworksLabels`, and the Swarm roles'
//! `refreshServices`, `refreshTasks` and `refreshNodes` with `getServicesLabelsAndPorts`
//! and `getNodesLabels`.
//!
//! Every field may be absent or `null` (Go's zero value). Keys must be spelt as the
//! Engine spells them (Go's decoder also takes other cases). Where 3.x's output depends
//! on Go's map order, trawl's is sorted: a container's networks by name when all are
//! used, and labels whose names sanitize alike keep the value of the last key in byte
//! order. A container whose network mode points at containers in a loop is followed at
//! most once round (3.x would spin forever).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::discovery::groups::{join_host_port, sanitize};
use crate::labels::Labels;

/// Labels of one network, by network ID.
pub(crate) type NetworkLabels = BTreeMap<String, Vec<(String, String)>>;

type StringMap = Option<BTreeMap<String, Option<String>>>;

/// Label pairs, later ones winning.
type Pairs = Vec<(String, String)>;

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// `prefix` + sanitized name for each label, in key order.
fn label_pairs(out: &mut Vec<(String, String)>, prefix: &str, labels: &StringMap) {
    for (k, v) in labels.iter().flatten() {
        out.push((format!("{prefix}{}", sanitize(k)), s(v).to_owned()));
    }
}

// ---------------------------------------------------------------------------------------
// Networks.

/// `GET /networks`: one entry.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Network {
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Scope")]
    scope: Option<String>,
    #[serde(rename = "Internal")]
    internal: Option<bool>,
    #[serde(rename = "Ingress")]
    ingress: Option<bool>,
    #[serde(rename = "Labels")]
    labels: StringMap,
}

/// 3.x's `getNetworksLabels`, under `prefix` (`__meta_docker_`, `__meta_dockerswarm_`).
pub(crate) fn network_labels(body: &[u8], prefix: &str) -> Result<NetworkLabels, String> {
    let list: Option<Vec<Option<Network>>> = decode(body)?;
    let mut out = NetworkLabels::new();
    for n in list.unwrap_or_default().into_iter().flatten() {
        let id = s(&n.id).to_owned();
        let mut pairs = vec![
            (format!("{prefix}network_id"), id.clone()),
            (format!("{prefix}network_name"), s(&n.name).to_owned()),
            (format!("{prefix}network_scope"), s(&n.scope).to_owned()),
            (
                format!("{prefix}network_internal"),
                n.internal.unwrap_or(false).to_string(),
            ),
            (
                format!("{prefix}network_ingress"),
                n.ingress.unwrap_or(false).to_string(),
            ),
        ];
        label_pairs(&mut pairs, &format!("{prefix}network_label_"), &n.labels);
        out.insert(id, pairs);
    }
    Ok(out)
}

/// A JSON answer, with the decoder's error as the message.
pub(crate) fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// An IP address as Go's `netip.Addr` reads it from JSON (`""` is the zero address);
/// written back as Go writes it.
fn ip(text: &str) -> Result<Option<String>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let (addr, zone) = match text.split_once('%') {
        Some((a, z)) if a.contains(':') && !z.is_empty() => (a, Some(z)),
        _ => (text, None),
    };
    let parsed: core::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("ParseAddr({text:?}): unable to parse IP"))?;
    Ok(Some(match zone {
        Some(z) => format!("{parsed}%{z}"),
        None => parsed.to_string(),
    }))
}

/// Go's `net.ParseCIDR(addr)`'s address.
fn cidr_ip(text: &str) -> Result<String, String> {
    let bad = || format!("error while parsing address {text}: invalid CIDR address: {text}");
    let (addr, bits) = text.split_once('/').ok_or_else(bad)?;
    let parsed: core::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if parsed.is_ipv4() { 32 } else { 128 };
    match bits.parse::<u8>() {
        Ok(b) if b <= max && !bits.starts_with('+') && (bits == "0" || !bits.starts_with('0')) => {}
        _ => return Err(bad()),
    }
    Ok(parsed.to_string())
}

// ---------------------------------------------------------------------------------------
// Containers (`docker_sd_configs`).

/// `GET /containers/json`: one container.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Container {
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "Names")]
    names: Option<Vec<Option<String>>>,
    #[serde(rename = "Image")]
    image: Option<String>,
    #[serde(rename = "ImageID")]
    image_id: Option<String>,
    #[serde(rename = "Labels")]
    labels: StringMap,
    #[serde(rename = "Ports")]
    ports: Option<Vec<Option<Port>>>,
    #[serde(rename = "HostConfig")]
    host_config: Option<HostConfig>,
    #[serde(rename = "NetworkSettings")]
    network_settings: Option<NetworkSettings>,
}

#[derive(Debug, Default, Deserialize)]
struct Port {
    #[serde(rename = "IP")]
    ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    private_port: Option<u16>,
    #[serde(rename = "PublicPort")]
    public_port: Option<u16>,
    #[serde(rename = "Type")]
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct HostConfig {
    #[serde(rename = "NetworkMode")]
    network_mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct NetworkSettings {
    #[serde(rename = "Networks")]
    networks: Option<BTreeMap<String, Option<Endpoint>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Endpoint {
    #[serde(rename = "NetworkID")]
    network_id: Option<String>,
    #[serde(rename = "IPAddress")]
    ip_address: Option<String>,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: Option<String>,
}

/// What `docker_sd_configs` adds to the answers.
#[derive(Clone, Debug)]
pub(crate) struct DockerOptions {
    /// Port of containers without TCP ports.
    pub(crate) port: i64,
    /// Address of containers in host networking mode.
    pub(crate) host_networking_host: String,
    /// Only the first network (by name) of a container.
    pub(crate) match_first_network: bool,
}

fn network_mode(c: &Container) -> &str {
    c.host_config.as_ref().map_or("", |h| s(&h.network_mode))
}

fn networks_of(c: &Container) -> BTreeMap<String, Option<Endpoint>> {
    c.network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
}

/// 3.x's `DockerDiscovery.refresh`: the targets of a container list, with the networks'
/// labels.
pub(crate) fn container_targets(
    body: &[u8],
    networks: &NetworkLabels,
    opts: &DockerOptions,
) -> Result<Vec<Labels>, String> {
    let list: Option<Vec<Option<Container>>> =
        decode(body).map_err(|e| format!("error while listing containers: {e}"))?;
    container_list_targets(list, networks, opts)
        .map_err(|e| format!("error while listing containers: {e}"))
}

fn container_list_targets(
    list: Option<Vec<Option<Container>>>,
    networks: &NetworkLabels,
    opts: &DockerOptions,
) -> Result<Vec<Labels>, String> {
    const P: &str = "__meta_docker_";
    let list: Vec<Container> = list.unwrap_or_default().into_iter().flatten().collect();
    let by_id: BTreeMap<&str, &Container> = list.iter().map(|c| (s(&c.id), c)).collect();
    let mut out = Vec::new();
    for c in &list {
        let Some(name) = c.names.as_ref().and_then(|n| n.first()) else {
            continue;
        };
        let mode = network_mode(c);
        let mut common = vec![
            (format!("{P}container_id"), s(&c.id).to_owned()),
            (format!("{P}container_name"), s(name).to_owned()),
            (format!("{P}container_network_mode"), mode.to_owned()),
            (format!("{P}container_image"), s(&c.image).to_owned()),
            (format!("{P}container_image_id"), s(&c.image_id).to_owned()),
        ];
        label_pairs(&mut common, &format!("{P}container_label_"), &c.labels);

        let mut nets = networks_of(c);
        if nets.is_empty() {
            // Shared networks: follow `container:<id>` modes (at most once round).
            let mut mode = mode.to_owned();
            for _ in 0..list.len() {
                let Some(other) = mode.strip_prefix("container:") else {
                    break;
                };
                let Some(o) = by_id.get(other) else { break };
                nets = networks_of(o);
                mode = network_mode(o).to_owned();
                if !nets.is_empty() {
                    break;
                }
            }
        }
        if opts.match_first_network && nets.len() > 1 {
            // The first non-null network by name.
            if let Some((k, v)) = nets.iter().find(|(_, v)| v.is_some()) {
                let (k, v) = (k.clone(), v.clone());
                nets = BTreeMap::from([(k, v)]);
            }
        }
        for n in nets.values().flatten() {
            let address = match ip(s(&n.ip_address))? {
                Some(a) => a,
                None => ip(s(&n.global_ipv6_address))?.unwrap_or_default(),
            };
            let net_labels = networks.get(s(&n.network_id));
            let mut added = false;
            for p in c.ports.iter().flatten().flatten() {
                if s(&p.kind) != "tcp" {
                    continue;
                }
                let private = p.private_port.unwrap_or(0).to_string();
                let mut pairs = vec![
                    (format!("{P}network_ip"), address.clone()),
                    (format!("{P}port_private"), private.clone()),
                ];
                let public = p.public_port.unwrap_or(0);
                if public > 0 {
                    pairs.push((format!("{P}port_public"), public.to_string()));
                    pairs.push((
                        format!("{P}port_public_ip"),
                        ip(s(&p.ip))?.unwrap_or_default(),
                    ));
                }
                pairs.extend(common.iter().cloned());
                pairs.extend(net_labels.into_iter().flatten().cloned());
                pairs.push(("__address__".into(), join_host_port(&address, &private)));
                out.push(Labels::from_pairs(pairs));
                added = true;
            }
            if !added {
                // No TCP port: the configured port, or the host networking host.
                let mut pairs = vec![(format!("{P}network_ip"), address.clone())];
                pairs.extend(common.iter().cloned());
                pairs.extend(net_labels.into_iter().flatten().cloned());
                let addr = if mode != "host" {
                    join_host_port(&address, &opts.port.to_string())
                } else {
                    opts.host_networking_host.clone()
                };
                pairs.push(("__address__".into(), addr));
                out.push(Labels::from_pairs(pairs));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Swarm.

const SW: &str = "__meta_dockerswarm_";

/// `GET /services`: one service.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Service {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Spec")]
    spec: Option<ServiceSpec>,
    #[serde(rename = "Endpoint")]
    endpoint: Option<ServiceEndpoint>,
    #[serde(rename = "UpdateStatus")]
    update_status: Option<UpdateStatus>,
}

#[derive(Debug, Default, Deserialize)]
struct ServiceSpec {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Labels")]
    labels: StringMap,
    #[serde(rename = "Mode")]
    mode: Option<ServiceMode>,
    #[serde(rename = "TaskTemplate")]
    task_template: Option<TaskSpec>,
}

#[derive(Debug, Default, Deserialize)]
struct ServiceMode {
    #[serde(rename = "Global")]
    global: Option<serde_json::Value>,
    #[serde(rename = "Replicated")]
    replicated: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct TaskSpec {
    #[serde(rename = "ContainerSpec")]
    container_spec: Option<ContainerSpec>,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerSpec {
    #[serde(rename = "Image")]
    image: Option<String>,
    #[serde(rename = "Hostname")]
    hostname: Option<String>,
    #[serde(rename = "Labels")]
    labels: StringMap,
}

#[derive(Debug, Default, Deserialize)]
struct ServiceEndpoint {
    #[serde(rename = "Ports")]
    ports: Option<Vec<Option<PortConfig>>>,
    #[serde(rename = "VirtualIPs")]
    virtual_ips: Option<Vec<Option<VirtualIp>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct PortConfig {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Protocol")]
    protocol: Option<String>,
    #[serde(rename = "PublishedPort")]
    published_port: Option<u32>,
    #[serde(rename = "PublishMode")]
    publish_mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct VirtualIp {
    #[serde(rename = "NetworkID")]
    network_id: Option<String>,
    #[serde(rename = "Addr")]
    addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct UpdateStatus {
    #[serde(rename = "State")]
    state: Option<String>,
}

/// `getServiceValueMode`.
fn service_mode(spec: &ServiceSpec) -> &'static str {
    match &spec.mode {
        Some(m) if m.global.is_some() => "global",
        Some(m) if m.replicated.is_some() => "replicated",
        _ => "",
    }
}

/// The labels every target of a service carries (`getServicesLabelsAndPorts`'s set;
/// `full` adds what `refreshServices` adds: the task template and update state).
fn service_labels(sv: &Service, full: bool) -> Vec<(String, String)> {
    let spec = sv.spec.as_ref();
    let mut pairs = vec![
        (format!("{SW}service_id"), s(&sv.id).to_owned()),
        (
            format!("{SW}service_name"),
            spec.map_or("", |sp| s(&sp.name)).to_owned(),
        ),
        (
            format!("{SW}service_mode"),
            spec.map_or("", service_mode).to_owned(),
        ),
    ];
    if full {
        if let Some(cs) = spec
            .and_then(|sp| sp.task_template.as_ref())
            .and_then(|t| t.container_spec.as_ref())
        {
            pairs.push((
                format!("{SW}service_task_container_hostname"),
                s(&cs.hostname).to_owned(),
            ));
            pairs.push((
                format!("{SW}service_task_container_image"),
                s(&cs.image).to_owned(),
            ));
        }
        if let Some(u) = &sv.update_status {
            pairs.push((
                format!("{SW}service_updating_status"),
                s(&u.state).to_owned(),
            ));
        }
    }
    if let Some(sp) = spec {
        label_pairs(&mut pairs, &format!("{SW}service_label_"), &sp.labels);
    }
    pairs
}

fn ports_of(sv: &Service) -> Vec<PortConfig> {
    sv.endpoint
        .as_ref()
        .and_then(|e| e.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// 3.x's `refreshServices`.
pub(crate) fn service_targets(
    body: &[u8],
    networks: &NetworkLabels,
    port: i64,
) -> Result<Vec<Labels>, String> {
    let list: Option<Vec<Option<Service>>> =
        decode(body).map_err(|e| format!("error while listing swarm services: {e}"))?;
    let mut out = Vec::new();
    for sv in list.unwrap_or_default().into_iter().flatten() {
        let common = service_labels(&sv, true);
        let ports = ports_of(&sv);
        let vips = sv.endpoint.as_ref().and_then(|e| e.virtual_ips.as_ref());
        for vip in vips.into_iter().flatten().flatten() {
            let addr = cidr_ip(s(&vip.addr))?;
            let net_labels = networks.get(s(&vip.network_id));
            swarm_port_targets(&mut out, &common, net_labels, &addr, &ports, port, |e| {
                vec![
                    (
                        format!("{SW}service_endpoint_port_name"),
                        s(&e.name).to_owned(),
                    ),
                    (
                        format!("{SW}service_endpoint_port_publish_mode"),
                        s(&e.publish_mode).to_owned(),
                    ),
                ]
            });
        }
    }
    Ok(out)
}

/// The targets of one address on a swarm network (a service's virtual IP, a task's
/// attachment), as `refreshServices` and `refreshTasks` make them: one per TCP port at
/// its published port, with `port_labels` first; else one at `port`.
fn swarm_port_targets(
    out: &mut Vec<Labels>,
    common: &[(String, String)],
    net_labels: Option<&Pairs>,
    addr: &str,
    ports: &[PortConfig],
    port: i64,
    port_labels: impl Fn(&PortConfig) -> Pairs,
) {
    let mut added = false;
    for p in ports.iter().filter(|p| s(&p.protocol) == "tcp") {
        let mut pairs = port_labels(p);
        pairs.extend(common.iter().cloned());
        pairs.extend(net_labels.into_iter().flatten().cloned());
        let published = p.published_port.unwrap_or(0).to_string();
        pairs.push(("__address__".into(), join_host_port(addr, &published)));
        out.push(Labels::from_pairs(pairs));
        added = true;
    }
    if !added {
        let mut pairs = common.to_vec();
        pairs.extend(net_labels.into_iter().flatten().cloned());
        pairs.push((
            "__address__".into(),
            join_host_port(addr, &port.to_string()),
        ));
        out.push(Labels::from_pairs(pairs));
    }
}

/// `GET /nodes`: one node.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Node {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Spec")]
    spec: Option<NodeSpec>,
    #[serde(rename = "Description")]
    description: Option<NodeDescription>,
    #[serde(rename = "Status")]
    status: Option<NodeStatus>,
    #[serde(rename = "ManagerStatus")]
    manager_status: Option<ManagerStatus>,
}

#[derive(Debug, Default, Deserialize)]
struct NodeSpec {
    #[serde(rename = "Role")]
    role: Option<String>,
    #[serde(rename = "Availability")]
    availability: Option<String>,
    #[serde(rename = "Labels")]
    labels: StringMap,
}

#[derive(Debug, Default, Deserialize)]
struct NodeDescription {
    #[serde(rename = "Hostname")]
    hostname: Option<String>,
    #[serde(rename = "Platform")]
    platform: Option<Platform>,
    #[serde(rename = "Engine")]
    engine: Option<EngineDescription>,
}

#[derive(Debug, Default, Deserialize)]
struct Platform {
    #[serde(rename = "Architecture")]
    architecture: Option<String>,
    #[serde(rename = "OS")]
    os: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct EngineDescription {
    #[serde(rename = "EngineVersion")]
    engine_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct NodeStatus {
    #[serde(rename = "State")]
    state: Option<String>,
    #[serde(rename = "Addr")]
    addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ManagerStatus {
    #[serde(rename = "Leader")]
    leader: Option<bool>,
    #[serde(rename = "Reachability")]
    reachability: Option<String>,
    #[serde(rename = "Addr")]
    addr: Option<String>,
}

/// The labels of a node (`getNodesLabels`'s set; `full` adds the engine version and
/// manager status `refreshNodes` adds).
fn node_labels(n: &Node, full: bool) -> Vec<(String, String)> {
    let spec = n.spec.as_ref();
    let desc = n.description.as_ref();
    let platform = desc.and_then(|d| d.platform.as_ref());
    let status = n.status.as_ref();
    let mut pairs = vec![
        (format!("{SW}node_id"), s(&n.id).to_owned()),
        (
            format!("{SW}node_role"),
            spec.map_or("", |x| s(&x.role)).to_owned(),
        ),
        (
            format!("{SW}node_availability"),
            spec.map_or("", |x| s(&x.availability)).to_owned(),
        ),
        (
            format!("{SW}node_hostname"),
            desc.map_or("", |x| s(&x.hostname)).to_owned(),
        ),
        (
            format!("{SW}node_platform_architecture"),
            platform.map_or("", |x| s(&x.architecture)).to_owned(),
        ),
        (
            format!("{SW}node_platform_os"),
            platform.map_or("", |x| s(&x.os)).to_owned(),
        ),
        (
            format!("{SW}node_status"),
            status.map_or("", |x| s(&x.state)).to_owned(),
        ),
        (
            format!("{SW}node_address"),
            status.map_or("", |x| s(&x.addr)).to_owned(),
        ),
    ];
    if full {
        pairs.push((
            format!("{SW}node_engine_version"),
            desc.and_then(|d| d.engine.as_ref())
                .map_or("", |e| s(&e.engine_version))
                .to_owned(),
        ));
        if let Some(m) = &n.manager_status {
            pairs.push((
                format!("{SW}node_manager_leader"),
                m.leader.unwrap_or(false).to_string(),
            ));
            pairs.push((
                format!("{SW}node_manager_reachability"),
                s(&m.reachability).to_owned(),
            ));
            pairs.push((format!("{SW}node_manager_address"), s(&m.addr).to_owned()));
        }
    }
    if let Some(sp) = spec {
        label_pairs(&mut pairs, &format!("{SW}node_label_"), &sp.labels);
    }
    pairs
}

/// 3.x's `refreshNodes`.
pub(crate) fn node_targets(body: &[u8], port: i64) -> Result<Vec<Labels>, String> {
    let list: Option<Vec<Option<Node>>> =
        decode(body).map_err(|e| format!("error while listing swarm nodes: {e}"))?;
    let mut out = Vec::new();
    for n in list.unwrap_or_default().into_iter().flatten() {
        let addr = n.status.as_ref().map_or("", |x| s(&x.addr)).to_owned();
        let mut pairs = node_labels(&n, true);
        pairs.push((
            "__address__".into(),
            join_host_port(&addr, &port.to_string()),
        ));
        out.push(Labels::from_pairs(pairs));
    }
    Ok(out)
}

/// `GET /tasks`: one task.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Task {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "ServiceID")]
    service_id: Option<String>,
    #[serde(rename = "NodeID")]
    node_id: Option<String>,
    #[serde(rename = "Slot")]
    slot: Option<i64>,
    #[serde(rename = "DesiredState")]
    desired_state: Option<String>,
    #[serde(rename = "Status")]
    status: Option<TaskStatus>,
    #[serde(rename = "Spec")]
    spec: Option<TaskSpec>,
    #[serde(rename = "NetworksAttachments")]
    networks_attachments: Option<Vec<Option<NetworkAttachment>>>,
}

#[derive(Debug, Default, Deserialize)]
struct TaskStatus {
    #[serde(rename = "State")]
    state: Option<String>,
    #[serde(rename = "ContainerStatus")]
    container_status: Option<ContainerStatus>,
    #[serde(rename = "PortStatus")]
    port_status: Option<PortStatus>,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerStatus {
    #[serde(rename = "ContainerID")]
    container_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct PortStatus {
    #[serde(rename = "Ports")]
    ports: Option<Vec<Option<PortConfig>>>,
}

#[derive(Debug, Default, Deserialize)]
struct NetworkAttachment {
    #[serde(rename = "Network")]
    network: Option<AttachedNetwork>,
    #[serde(rename = "Addresses")]
    addresses: Option<Vec<Option<String>>>,
}

#[derive(Debug, Default, Deserialize)]
struct AttachedNetwork {
    #[serde(rename = "ID")]
    id: Option<String>,
}

/// 3.x's `refreshTasks`, with the answers of `/services` and `/nodes` (unfiltered).
pub(crate) fn task_targets(
    tasks: &[u8],
    services: &[u8],
    nodes: &[u8],
    networks: &NetworkLabels,
    port: i64,
) -> Result<Vec<Labels>, String> {
    // 3.x names the task list "swarm services" in this message.
    let list: Option<Vec<Option<Task>>> =
        decode(tasks).map_err(|e| format!("error while listing swarm services: {e}"))?;
    let services: Option<Vec<Option<Service>>> = decode(services)
        .map_err(|e| format!("error while computing services labels and ports: {e}"))?;
    let nodes: Option<Vec<Option<Node>>> = decode(nodes).map_err(|e| {
        format!(
            "error while computing nodes labels and ports: error while listing swarm nodes: {e}"
        )
    })?;
    let mut service_sets: BTreeMap<String, (Pairs, Vec<PortConfig>)> = BTreeMap::new();
    for sv in services.unwrap_or_default().into_iter().flatten() {
        service_sets.insert(
            s(&sv.id).to_owned(),
            (service_labels(&sv, false), ports_of(&sv)),
        );
    }
    let mut node_sets: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for n in nodes.unwrap_or_default().into_iter().flatten() {
        node_sets.insert(s(&n.id).to_owned(), node_labels(&n, false));
    }
    let mut out = Vec::new();
    for t in list.unwrap_or_default().into_iter().flatten() {
        let status = t.status.as_ref();
        let mut common = vec![
            (format!("{SW}task_id"), s(&t.id).to_owned()),
            (
                format!("{SW}task_desired_state"),
                s(&t.desired_state).to_owned(),
            ),
            (
                format!("{SW}task_state"),
                status.map_or("", |x| s(&x.state)).to_owned(),
            ),
            (format!("{SW}task_slot"), t.slot.unwrap_or(0).to_string()),
        ];
        if let Some(cs) = status.and_then(|x| x.container_status.as_ref()) {
            common.push((
                format!("{SW}task_container_id"),
                s(&cs.container_id).to_owned(),
            ));
        }
        if let Some(cs) = t.spec.as_ref().and_then(|x| x.container_spec.as_ref()) {
            label_pairs(&mut common, &format!("{SW}container_label_"), &cs.labels);
        }
        let (service_set, service_ports) = match service_sets.get(s(&t.service_id)) {
            Some((l, p)) => (l.as_slice(), p.as_slice()),
            None => (&[][..], &[][..]),
        };
        common.extend(service_set.iter().cloned());
        if let Some(n) = node_sets.get(s(&t.node_id)) {
            common.extend(n.iter().cloned());
        }
        // The node's address, as the merged labels hold it.
        let node_address = common
            .iter()
            .rev()
            .find(|(k, _)| k == "__meta_dockerswarm_node_address")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let task_ports = status
            .and_then(|x| x.port_status.as_ref())
            .and_then(|p| p.ports.as_ref());
        for p in task_ports.into_iter().flatten().flatten() {
            if s(&p.protocol) != "tcp" {
                continue;
            }
            let mut pairs = vec![(
                format!("{SW}task_port_publish_mode"),
                s(&p.publish_mode).to_owned(),
            )];
            pairs.extend(common.iter().cloned());
            let published = p.published_port.unwrap_or(0).to_string();
            pairs.push((
                "__address__".into(),
                join_host_port(&node_address, &published),
            ));
            out.push(Labels::from_pairs(pairs));
        }
        for att in t.networks_attachments.iter().flatten().flatten() {
            let net_id = att.network.as_ref().map_or("", |n| s(&n.id));
            let net_labels = networks.get(net_id);
            for address in att.addresses.iter().flatten() {
                let addr = cidr_ip(s(address))?;
                swarm_port_targets(
                    &mut out,
                    &common,
                    net_labels,
                    &addr,
                    service_ports,
                    port,
                    |p| {
                        vec![(
                            format!("{SW}task_port_publish_mode"),
                            s(&p.publish_mode).to_owned(),
                        )]
                    },
                );
            }
        }
    }
    Ok(out)
}
