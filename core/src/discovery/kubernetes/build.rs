//! Target groups from objects, one function per role, with exactly the labels 3.x's
//! `discovery/kubernetes` sets (`node.go:buildNode`, `service.go:buildService`,
//! `pod.go:buildPod` and `podLabels`, `endpoints.go:buildEndpoints`,
//! `endpointslice.go:buildEndpointSlice`, `ingress.go:buildIngress`,
//! `kubernetes.go:addObjectMetaLabels`). Where 3.x leaves an order to Go's map
//! iteration (two label keys sanitising to one name; the extra targets of pods behind
//! an endpoint), trawl takes keys in sorted order, so the result is reproducible.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::KubernetesAttachMetadata;
use super::objects::{EndpointPort, Meta, Node, Object, Pod, Resource, Service, SlicePort};
use crate::discovery::groups::{TargetGroup, join_host_port, sanitize, sanitize_char};
use crate::labels::Labels;

/// `__meta_kubernetes_<suffix>` as a static name.
macro_rules! m {
    ($s:literal) => {
        concat!("__meta_kubernetes_", $s)
    };
}

/// `__meta_kubernetes_`.
const P: &str = m!("");

/// Finds objects of the other informers (joins).
pub(crate) trait Lookup {
    /// The object of `resource` under `key` (`namespace/name`, or a node's name).
    fn get(&self, resource: Resource, key: &str) -> Option<&Object>;
}

/// A label set being built: names static where 3.x's are constants, values borrowed
/// from the objects where they are copied as they are. A later value for a name
/// replaces an earlier one, as with Go's `model.LabelSet` map.
#[derive(Clone, Debug)]
struct Set<'a>(Vec<(Cow<'static, str>, Cow<'a, str>)>);

/// A label value: borrowed from an object, or made.
trait Val<'a> {
    fn cow(self) -> Cow<'a, str>;
}

impl<'a> Val<'a> for &'a str {
    fn cow(self) -> Cow<'a, str> {
        Cow::Borrowed(self)
    }
}

impl<'a> Val<'a> for &'a Box<str> {
    fn cow(self) -> Cow<'a, str> {
        Cow::Borrowed(self)
    }
}

impl<'a> Val<'a> for String {
    fn cow(self) -> Cow<'a, str> {
        Cow::Owned(self)
    }
}

impl<'a> Set<'a> {
    /// Room for a pod's group labels without growing.
    fn new() -> Set<'a> {
        Set(Vec::with_capacity(32))
    }

    fn put(&mut self, name: impl Into<Cow<'static, str>>, value: impl Val<'a>) {
        self.0.push((name.into(), value.cow()));
    }

    fn merge(&mut self, other: &Set<'a>) {
        self.0.extend(other.0.iter().cloned());
    }

    /// The label set (empty values left out, as absent); `buf` is scratch space.
    fn labels(&mut self, buf: &mut String) -> Labels {
        // Stable: among equal names the last put stays last, and wins.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        let v = &self.0;
        let pairs = v
            .iter()
            .enumerate()
            .filter(|(i, (n, _))| v.get(i + 1).is_none_or(|next| next.0 != *n))
            .map(|(_, (n, val))| (&**n, &**val));
        Labels::from_sorted(pairs, buf)
    }
}

/// A port as Go formats `strconv.FormatUint(uint64(int32))`.
fn port_text(p: i32) -> String {
    (i64::from(p) as u64).to_string()
}

/// `__meta_kubernetes_<role><kind><sanitised key>`, in one allocation.
fn meta_name(role: &str, kind: &str, key: &str) -> String {
    let mut n = String::with_capacity(P.len() + role.len() + kind.len() + key.len());
    n.push_str(P);
    n.push_str(role);
    n.push_str(kind);
    n.extend(key.chars().map(sanitize_char));
    n
}

/// `addObjectAnnotationsAndLabels`.
fn labels_and_annotations<'a>(s: &mut Set<'a>, meta: &'a Meta, role: &str) {
    for (k, v) in meta.labels.0.iter() {
        s.put(meta_name(role, "_label_", k), &**v);
        s.put(meta_name(role, "_labelpresent_", k), "true");
    }
    for (k, v) in meta.annotations.0.iter() {
        s.put(meta_name(role, "_annotation_", k), &**v);
        s.put(meta_name(role, "_annotationpresent_", k), "true");
    }
}

/// `addObjectMetaLabels`.
fn object_meta<'a>(s: &mut Set<'a>, meta: &'a Meta, role: &str) {
    s.put(meta_name(role, "_name", ""), &*meta.name);
    labels_and_annotations(s, meta, role);
}

/// `addNodeLabels`: a known node's name, labels and annotations.
fn node_meta<'a>(s: &mut Set<'a>, lk: &'a dyn Lookup, name: &str) {
    if let Some(Object::Node(n)) = lk.get(Resource::Nodes, name) {
        object_meta(s, &n.meta, "node");
    }
}

/// `addNamespaceLabels`: a known namespace's labels and annotations.
fn namespace_meta<'a>(s: &mut Set<'a>, lk: &'a dyn Lookup, ns: &str) {
    if let Some(Object::Meta(m)) = lk.get(Resource::Namespaces, ns) {
        labels_and_annotations(s, m, "namespace");
    }
}

/// The source of a group: `<prefix>/<key>`.
pub(crate) fn source(resource: Resource, key: &str) -> String {
    let prefix = match resource {
        Resource::Nodes => "node",
        Resource::Pods => "pod",
        Resource::Services => "svc",
        Resource::Endpoints => "endpoints",
        Resource::EndpointSlices => "endpointslice",
        Resource::Ingresses => "ingress",
        Resource::Namespaces => "namespace",
        Resource::ReplicaSets => "replicaset",
        Resource::Jobs => "job",
    };
    format!("{prefix}/{key}")
}

fn group(source: String, labels: &mut Set<'_>, mut targets: Vec<Set<'_>>) -> TargetGroup {
    let mut buf = String::with_capacity(2048);
    TargetGroup {
        targets: targets.iter_mut().map(|t| t.labels(&mut buf)).collect(),
        labels: labels.labels(&mut buf),
        source,
    }
}

/// The group of the main object under `key` (`None` in the store: the empty group that
/// removes it), or `None` when 3.x sends nothing (a node without an address).
pub(crate) fn build(
    resource: Resource,
    key: &str,
    lk: &dyn Lookup,
    attach: &KubernetesAttachMetadata,
) -> Option<TargetGroup> {
    let src = source(resource, key);
    let Some(obj) = lk.get(resource, key) else {
        return Some(TargetGroup {
            source: src,
            ..TargetGroup::default()
        });
    };
    match obj {
        Object::Node(n) => build_node(src, n),
        Object::Service(s) => Some(build_service(src, s, lk, attach)),
        Object::Pod(p) => Some(build_pod(src, p, lk, attach)),
        Object::Endpoints(e) => Some(build_endpoints(src, e, lk, attach)),
        Object::EndpointSlice(e) => Some(build_endpoint_slice(src, e, lk, attach)),
        Object::Ingress(i) => Some(build_ingress(src, i, lk, attach)),
        Object::Meta(_) => None,
    }
}

/// `node.go:nodeAddress`: the first address of the first type present, in 3.x's order.
fn node_address(n: &Node) -> Option<&str> {
    for t in [
        "InternalIP",
        "InternalDNS",
        "ExternalIP",
        "ExternalDNS",
        "LegacyHostIP",
        "Hostname",
    ] {
        if let Some((_, a)) = n.addresses.iter().find(|(k, _)| &**k == t) {
            return Some(a);
        }
    }
    None
}

fn build_node(src: String, n: &Node) -> Option<TargetGroup> {
    let mut g = Set::new();
    g.put(m!("node_provider_id"), &n.provider_id);
    for (t, status) in n.conditions.iter() {
        g.put(
            format!("{P}node_condition_{}", sanitize(&t.to_lowercase())),
            status.to_lowercase(),
        );
    }
    object_meta(&mut g, &n.meta, "node");
    // No address: 3.x logs and sends nothing (the previous group stays).
    let addr = node_address(n)?;
    let mut t = Set::new();
    t.put(
        "__address__",
        join_host_port(addr, &port_text(n.kubelet_port)),
    );
    t.put("instance", &*n.meta.name);
    let mut seen = BTreeSet::new();
    for (kind, a) in n.addresses.iter() {
        if seen.insert(&**kind) {
            t.put(sanitize(&format!("{P}node_address_{kind}")), &**a);
        }
    }
    Some(group(src, &mut g, vec![t]))
}

/// `service.go:serviceLabels`.
fn service_labels<'a>(s: &mut Set<'a>, svc: &'a Service) {
    s.put(m!("namespace"), &svc.meta.namespace);
    object_meta(s, &svc.meta, "service");
}

fn build_service<'a>(
    src: String,
    svc: &'a Service,
    lk: &'a dyn Lookup,
    attach: &KubernetesAttachMetadata,
) -> TargetGroup {
    let mut g = Set::new();
    service_labels(&mut g, svc);
    if attach.namespace {
        namespace_meta(&mut g, lk, &svc.meta.namespace);
    }
    let host = format!("{}.{}.svc", svc.meta.name, svc.meta.namespace);
    let targets = svc
        .ports
        .iter()
        .map(|p| {
            let mut t = Set::new();
            t.put("__address__", join_host_port(&host, &port_text(p.port)));
            t.put(m!("service_port_name"), &p.name);
            t.put(m!("service_port_number"), port_text(p.port));
            t.put(m!("service_port_protocol"), &p.protocol);
            t.put(m!("service_type"), &svc.kind);
            if &*svc.kind == "ExternalName" {
                t.put(m!("service_external_name"), &svc.external_name);
            } else {
                t.put(m!("service_cluster_ip"), &svc.cluster_ip);
            }
            if &*svc.kind == "LoadBalancer" {
                t.put(m!("service_loadbalancer_ip"), &svc.load_balancer_ip);
            }
            t
        })
        .collect();
    group(src, &mut g, targets)
}

/// `pod.go:podLabels`.
fn pod_labels<'a>(pod: &'a Pod, lk: &'a dyn Lookup, attach: &KubernetesAttachMetadata) -> Set<'a> {
    let mut s = Set::new();
    s.put(m!("pod_ip"), &pod.pod_ip);
    s.put(m!("pod_ready"), &pod.ready);
    s.put(m!("pod_phase"), &pod.phase);
    s.put(m!("pod_node_name"), &pod.node_name);
    s.put(m!("pod_host_ip"), &pod.host_ip);
    s.put(m!("pod_uid"), &pod.meta.uid);
    object_meta(&mut s, &pod.meta, "pod");
    if let Some(c) = &pod.meta.controller {
        if !c.kind.is_empty() {
            s.put(m!("pod_controller_kind"), &c.kind);
        }
        if !c.name.is_empty() {
            s.put(m!("pod_controller_name"), &c.name);
        }
        let key = format!("{}/{}", pod.meta.namespace, c.name);
        match &*c.kind {
            "ReplicaSet" if attach.deployment => {
                if let Some(Object::Meta(rs)) = lk.get(Resource::ReplicaSets, &key)
                    && let Some(owner) = rs.controller.as_ref().filter(|o| &*o.kind == "Deployment")
                {
                    s.put(m!("pod_deployment_name"), &owner.name);
                }
            }
            "Job" => {
                if attach.job {
                    s.put(m!("pod_job_name"), &c.name);
                }
                if attach.cronjob
                    && let Some(Object::Meta(job)) = lk.get(Resource::Jobs, &key)
                    && let Some(owner) = job.controller.as_ref().filter(|o| &*o.kind == "CronJob")
                {
                    s.put(m!("pod_cronjob_name"), &owner.name);
                }
            }
            _ => {}
        }
    }
    s
}

fn build_pod<'a>(
    src: String,
    pod: &'a Pod,
    lk: &'a dyn Lookup,
    attach: &KubernetesAttachMetadata,
) -> TargetGroup {
    let empty = || TargetGroup {
        source: src.clone(),
        ..TargetGroup::default()
    };
    // Starting or evicted.
    if pod.pod_ip.is_empty() {
        return empty();
    }
    // A node the node selectors filtered out (or not seen yet).
    if attach.node && lk.get(Resource::Nodes, &pod.node_name).is_none() {
        return empty();
    }
    let mut g = pod_labels(pod, lk, attach);
    g.put(m!("namespace"), &pod.meta.namespace);
    if attach.node {
        node_meta(&mut g, lk, &pod.node_name);
    }
    if attach.namespace {
        namespace_meta(&mut g, lk, &pod.meta.namespace);
    }
    let mut targets = Vec::new();
    for (c, init) in pod.all_containers() {
        let base = |t: &mut Set<'a>| {
            t.put(m!("pod_container_name"), &c.name);
            t.put(m!("pod_container_id"), &c.id);
            t.put(m!("pod_container_image"), &c.image);
            t.put(
                m!("pod_container_init"),
                if init { "true" } else { "false" },
            );
        };
        if c.ports.is_empty() {
            let mut t = Set::new();
            t.put("__address__", &*pod.pod_ip);
            base(&mut t);
            targets.push(t);
            continue;
        }
        for p in c.ports.iter() {
            let port = port_text(p.container_port);
            let mut t = Set::new();
            t.put("__address__", join_host_port(&pod.pod_ip, &port));
            base(&mut t);
            t.put(m!("pod_container_port_number"), port.clone());
            t.put(m!("pod_container_port_name"), &p.name);
            t.put(m!("pod_container_port_protocol"), &p.protocol);
            targets.push(t);
        }
    }
    group(src, &mut g, targets)
}

/// The pod a target reference names, if it is a pod in the store.
fn pod_ref<'a>(lk: &'a dyn Lookup, r: Option<&super::objects::Ref>) -> Option<(String, &'a Pod)> {
    let r = r.filter(|r| &*r.kind == "Pod")?;
    let key = format!("{}/{}", r.namespace, r.name);
    match lk.get(Resource::Pods, &key) {
        Some(Object::Pod(p)) => Some((key, p)),
        _ => None,
    }
}

/// Pods met behind an endpoint, with the ports that made targets for them.
type SeenPods<'a> = BTreeMap<String, (&'a Pod, Vec<Option<i32>>)>;

/// The targets for container ports no endpoint port covered (3.x: "For all seen pods,
/// check all container ports").
fn extra_pod_targets<'a>(
    seen: &SeenPods<'a>,
    lk: &'a dyn Lookup,
    attach: &KubernetesAttachMetadata,
    targets: &mut Vec<Set<'a>>,
) {
    for (pod, ports) in seen.values() {
        if pod.pod_ip.is_empty() {
            continue;
        }
        let labels = pod_labels(pod, lk, attach);
        for (c, init) in pod.all_containers() {
            for cp in c.ports.iter() {
                if ports.contains(&Some(cp.container_port)) {
                    continue;
                }
                let port = port_text(cp.container_port);
                let mut t = Set::new();
                t.put("__address__", join_host_port(&pod.pod_ip, &port));
                t.put(m!("pod_container_name"), &c.name);
                t.put(m!("pod_container_image"), &c.image);
                t.put(m!("pod_container_port_name"), &cp.name);
                t.put(m!("pod_container_port_number"), port.clone());
                t.put(m!("pod_container_port_protocol"), &cp.protocol);
                t.put(
                    m!("pod_container_init"),
                    if init { "true" } else { "false" },
                );
                t.merge(&labels);
                targets.push(t);
            }
        }
    }
}

/// The container port labels of the (last) container with a port numbered `port`;
/// `protocol` is the endpoint's for Endpoints, `None` for the container's own.
fn container_port_labels<'a>(t: &mut Set<'a>, pod: &'a Pod, port: i32, protocol: Option<&'a str>) {
    for (c, init) in pod.all_containers() {
        if let Some(cp) = c.ports.iter().find(|cp| cp.container_port == port) {
            t.put(m!("pod_container_name"), &c.name);
            t.put(m!("pod_container_image"), &c.image);
            t.put(m!("pod_container_port_name"), &cp.name);
            t.put(m!("pod_container_port_number"), port_text(port));
            t.put(
                m!("pod_container_port_protocol"),
                protocol.unwrap_or(&cp.protocol),
            );
            t.put(
                m!("pod_container_init"),
                if init { "true" } else { "false" },
            );
        }
    }
}

fn build_endpoints<'a>(
    src: String,
    eps: &'a super::objects::Endpoints,
    lk: &'a dyn Lookup,
    attach: &KubernetesAttachMetadata,
) -> TargetGroup {
    let mut g = Set::new();
    g.put(m!("namespace"), &eps.meta.namespace);
    let svc_key = eps.meta.key();
    if let Some(Object::Service(svc)) = lk.get(Resource::Services, &svc_key) {
        service_labels(&mut g, svc);
    }
    object_meta(&mut g, &eps.meta, "endpoints");
    if attach.namespace {
        namespace_meta(&mut g, lk, &eps.meta.namespace);
    }
    let mut seen: SeenPods<'_> = BTreeMap::new();
    let mut targets = Vec::new();
    let mut add =
        |addr: &'a super::objects::EndpointAddress, port: &'a EndpointPort, ready: &'static str| {
            let mut t = Set::new();
            t.put(
                "__address__",
                join_host_port(&addr.ip, &port_text(port.port)),
            );
            t.put(m!("endpoint_port_name"), &port.name);
            t.put(m!("endpoint_port_protocol"), &port.protocol);
            t.put(m!("endpoint_ready"), ready);
            if let Some(r) = &addr.target_ref {
                t.put(m!("endpoint_address_target_kind"), &r.kind);
                t.put(m!("endpoint_address_target_name"), &r.name);
            }
            if let Some(n) = &addr.node_name {
                t.put(m!("endpoint_node_name"), n);
            }
            if !addr.hostname.is_empty() {
                t.put(m!("endpoint_hostname"), &addr.hostname);
            }
            if attach.node {
                if let Some(n) = &addr.node_name {
                    node_meta(&mut t, lk, n);
                } else if let Some(r) = addr.target_ref.as_ref().filter(|r| &*r.kind == "Node") {
                    node_meta(&mut t, lk, &r.name);
                }
            }
            if let Some((key, pod)) = pod_ref(lk, addr.target_ref.as_ref()) {
                t.merge(&pod_labels(pod, lk, attach));
                container_port_labels(&mut t, pod, port.port, Some(&port.protocol));
                seen.entry(key)
                    .or_insert((pod, Vec::new()))
                    .1
                    .push(Some(port.port));
            }
            targets.push(t);
        };
    for ss in &eps.subsets {
        for port in &ss.ports {
            for a in &ss.addresses {
                add(a, port, "true");
            }
            for a in &ss.not_ready_addresses {
                add(a, port, "false");
            }
        }
    }
    extra_pod_targets(&seen, lk, attach, &mut targets);
    group(src, &mut g, targets)
}

fn build_endpoint_slice<'a>(
    src: String,
    eps: &'a super::objects::EndpointSlice,
    lk: &'a dyn Lookup,
    attach: &KubernetesAttachMetadata,
) -> TargetGroup {
    let mut g = Set::new();
    g.put(m!("namespace"), &eps.meta.namespace);
    g.put(m!("endpointslice_address_type"), &eps.address_type);
    object_meta(&mut g, &eps.meta, "endpointslice");
    let svc = eps.service_name().and_then(|name| {
        match lk.get(
            Resource::Services,
            &format!("{}/{name}", eps.meta.namespace),
        ) {
            Some(Object::Service(s)) => Some(&**s),
            _ => None,
        }
    });
    if let Some(svc) = svc {
        service_labels(&mut g, svc);
    }
    if attach.namespace {
        namespace_meta(&mut g, lk, &eps.meta.namespace);
    }
    // `nonPrimaryIPFamilySlice`: a dual-stack service's secondary family.
    if let Some(svc) = svc
        && matches!(
            &*svc.ip_family_policy,
            "PreferDualStack" | "RequireDualStack"
        )
        && let Some(first) = svc.ip_families.first()
        && *eps.address_type != **first
    {
        return group(src, &mut g, Vec::new());
    }
    let mut seen: SeenPods<'_> = BTreeMap::new();
    let mut targets = Vec::new();
    for ep in &eps.endpoints {
        for port in &eps.ports {
            for addr in &ep.addresses {
                targets.push(slice_target(addr, ep, port, lk, attach, &mut seen));
            }
        }
    }
    extra_pod_targets(&seen, lk, attach, &mut targets);
    group(src, &mut g, targets)
}

fn slice_target<'a>(
    addr: &'a str,
    ep: &'a super::objects::SliceEndpoint,
    port: &'a SlicePort,
    lk: &'a dyn Lookup,
    attach: &KubernetesAttachMetadata,
    seen: &mut SeenPods<'a>,
) -> Set<'a> {
    let mut t = Set::new();
    t.put(
        "__address__",
        match port.port {
            Some(p) => join_host_port(addr, &port_text(p)),
            None => addr.to_owned(),
        },
    );
    if let Some(n) = &port.name {
        t.put(m!("endpointslice_port_name"), n);
    }
    if let Some(p) = &port.protocol {
        t.put(m!("endpointslice_port_protocol"), p);
    }
    if let Some(p) = port.port {
        t.put(m!("endpointslice_port"), port_text(p));
    }
    if let Some(p) = &port.app_protocol {
        t.put(m!("endpointslice_port_app_protocol"), p);
    }
    let tf = |b: bool| if b { "true" } else { "false" };
    if let Some(b) = ep.conditions.ready {
        t.put(m!("endpointslice_endpoint_conditions_ready"), tf(b));
    }
    if let Some(b) = ep.conditions.serving {
        t.put(m!("endpointslice_endpoint_conditions_serving"), tf(b));
    }
    if let Some(b) = ep.conditions.terminating {
        t.put(m!("endpointslice_endpoint_conditions_terminating"), tf(b));
    }
    if let Some(h) = &ep.hostname {
        t.put(m!("endpointslice_endpoint_hostname"), h);
    }
    if let Some(r) = &ep.target_ref {
        t.put(m!("endpointslice_address_target_kind"), &r.kind);
        t.put(m!("endpointslice_address_target_name"), &r.name);
    }
    if let Some(n) = &ep.node_name {
        t.put(m!("endpointslice_endpoint_node_name"), n);
    }
    if let Some(z) = &ep.zone {
        t.put(m!("endpointslice_endpoint_zone"), z);
    }
    for (k, v) in ep.deprecated_topology.0.iter() {
        let n = sanitize(k);
        t.put(format!("{P}endpointslice_endpoint_topology_{n}"), &**v);
        t.put(
            format!("{P}endpointslice_endpoint_topology_present_{n}"),
            "true",
        );
    }
    if attach.node {
        match ep.target_ref.as_ref().filter(|r| &*r.kind == "Node") {
            Some(r) => node_meta(&mut t, lk, &r.name),
            None => {
                if let Some(n) = &ep.node_name {
                    node_meta(&mut t, lk, n);
                }
            }
        }
    }
    if let Some((key, pod)) = pod_ref(lk, ep.target_ref.as_ref()) {
        t.merge(&pod_labels(pod, lk, attach));
        if let Some(p) = port.port {
            container_port_labels(&mut t, pod, p, None);
        }
        seen.entry(key)
            .or_insert((pod, Vec::new()))
            .1
            .push(port.port);
    }
    t
}

/// `ingress.go:matchesHostnamePattern`.
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    if p[0] != "*" || p.len() != h.len() {
        return false;
    }
    p[1..] == h[1..]
}

fn build_ingress<'a>(
    src: String,
    ing: &'a super::objects::Ingress,
    lk: &'a dyn Lookup,
    attach: &KubernetesAttachMetadata,
) -> TargetGroup {
    let mut g = Set::new();
    g.put(m!("namespace"), &ing.meta.namespace);
    object_meta(&mut g, &ing.meta, "ingress");
    if let Some(c) = &ing.class_name {
        g.put(m!("ingress_class_name"), c);
    }
    if attach.namespace {
        namespace_meta(&mut g, lk, &ing.meta.namespace);
    }
    let mut targets = Vec::new();
    for rule in ing.rules.iter() {
        let scheme = if ing.tls_hosts.iter().any(|p| host_matches(p, &rule.host)) {
            "https"
        } else {
            "http"
        };
        let paths: Vec<&str> = match &rule.paths {
            None => vec!["/"],
            Some(p) => p.iter().map(|p| &**p).collect(),
        };
        for path in paths {
            let mut t = Set::new();
            t.put("__address__", &*rule.host);
            t.put(m!("ingress_scheme"), scheme);
            t.put(m!("ingress_host"), &rule.host);
            t.put(m!("ingress_path"), if path.is_empty() { "/" } else { path });
            targets.push(t);
        }
    }
    group(src, &mut g, targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[derive(Default)]
    struct Map(BTreeMap<(Resource, String), Object>);

    impl Map {
        fn add(&mut self, r: Resource, json: &str) -> &mut Map {
            let raw = RawValue::from_string(json.to_owned()).expect("json");
            let o = r.decode(&raw).expect("decodes");
            self.0.insert((r, o.meta().key()), o);
            self
        }
    }

    impl Lookup for Map {
        fn get(&self, resource: Resource, key: &str) -> Option<&Object> {
            self.0.get(&(resource, key.to_owned()))
        }
    }

    fn meta(g: &Labels) -> Vec<(String, String)> {
        g.iter()
            .map(|(n, v)| (n.strip_prefix(P).unwrap_or(n).to_owned(), v.to_owned()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = v
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        v.sort();
        v
    }

    const POD: &str = r#"{"metadata":{"name":"web-1","namespace":"prod","uid":"u1","resourceVersion":"5",
        "labels":{"app":"web","app.kubernetes.io/name":"w"},"annotations":{"prometheus.io/scrape":"true"},
        "ownerReferences":[{"kind":"ReplicaSet","name":"web-abc","controller":true}]},
      "spec":{"nodeName":"n1","containers":[
          {"name":"app","image":"img:1","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},{"containerPort":9090,"protocol":"TCP"}]},
          {"name":"side","image":"s:1"}],
        "initContainers":[{"name":"init","image":"i:1","ports":[{"containerPort":7000,"protocol":"UDP"}]}]},
      "status":{"podIP":"10.1.2.3","hostIP":"192.168.0.1","phase":"Running",
        "conditions":[{"type":"Ready","status":"False"}],
        "containerStatuses":[{"name":"app","containerID":"containerd://a"}]}}"#;

    #[test]
    fn a_pods_group_and_targets() {
        let mut m = Map::default();
        m.add(Resource::Pods, POD);
        let attach = KubernetesAttachMetadata::default();
        let g = build(Resource::Pods, "prod/web-1", &m, &attach).expect("group");
        assert_eq!(g.source, "pod/prod/web-1");
        assert_eq!(
            meta(&g.labels),
            pairs(&[
                ("namespace", "prod"),
                ("pod_annotation_prometheus_io_scrape", "true"),
                ("pod_annotationpresent_prometheus_io_scrape", "true"),
                ("pod_controller_kind", "ReplicaSet"),
                ("pod_controller_name", "web-abc"),
                ("pod_host_ip", "192.168.0.1"),
                ("pod_ip", "10.1.2.3"),
                ("pod_label_app", "web"),
                ("pod_label_app_kubernetes_io_name", "w"),
                ("pod_labelpresent_app", "true"),
                ("pod_labelpresent_app_kubernetes_io_name", "true"),
                ("pod_name", "web-1"),
                ("pod_node_name", "n1"),
                ("pod_phase", "Running"),
                ("pod_ready", "false"),
                ("pod_uid", "u1"),
            ])
        );
        let addrs: Vec<&str> = g
            .targets
            .iter()
            .map(|t| t.get("__address__").unwrap_or(""))
            .collect();
        assert_eq!(
            addrs,
            [
                "10.1.2.3:8080",
                "10.1.2.3:9090",
                "10.1.2.3",
                "10.1.2.3:7000"
            ]
        );
        assert_eq!(
            meta(&g.targets[0]),
            pairs(&[
                ("__address__", "10.1.2.3:8080"),
                ("pod_container_id", "containerd://a"),
                ("pod_container_image", "img:1"),
                ("pod_container_init", "false"),
                ("pod_container_name", "app"),
                ("pod_container_port_name", "http"),
                ("pod_container_port_number", "8080"),
                ("pod_container_port_protocol", "TCP"),
            ])
        );
        // A container without ports: the pod IP alone, no port labels.
        assert_eq!(
            g.targets[2].get(&format!("{P}pod_container_port_number")),
            None
        );
        assert_eq!(
            g.targets[3].get(&format!("{P}pod_container_init")),
            Some("true")
        );
        // Gone, or without an IP: the empty group.
        assert!(
            build(Resource::Pods, "prod/nope", &m, &attach)
                .is_some_and(|g| g.targets.is_empty() && g.labels.is_empty())
        );
    }

    #[test]
    fn attach_metadata_joins_nodes_namespaces_and_owners() {
        let mut m = Map::default();
        m.add(Resource::Pods, POD)
            .add(Resource::Namespaces, r#"{"metadata":{"name":"prod","labels":{"team":"a"}}}"#)
            .add(
                Resource::ReplicaSets,
                r#"{"metadata":{"name":"web-abc","namespace":"prod","ownerReferences":[{"kind":"Deployment","name":"web","controller":true}]}}"#,
            );
        let attach = KubernetesAttachMetadata {
            node: true,
            namespace: true,
            deployment: true,
            ..Default::default()
        };
        // The node is not known: the pod is held back (3.x: filtered by node selectors).
        let g = build(Resource::Pods, "prod/web-1", &m, &attach).expect("group");
        assert!(g.targets.is_empty());
        m.add(
            Resource::Nodes,
            r#"{"metadata":{"name":"n1","labels":{"zone":"z1"}}}"#,
        );
        let g = build(Resource::Pods, "prod/web-1", &m, &attach).expect("group");
        assert_eq!(g.labels.get(&format!("{P}node_label_zone")), Some("z1"));
        assert_eq!(g.labels.get(&format!("{P}node_name")), Some("n1"));
        assert_eq!(g.labels.get(&format!("{P}namespace_label_team")), Some("a"));
        assert_eq!(
            g.labels.get(&format!("{P}pod_deployment_name")),
            Some("web")
        );
    }

    #[test]
    fn nodes_take_the_first_address_in_3xs_order() {
        let mut m = Map::default();
        m.add(
            Resource::Nodes,
            r#"{"metadata":{"name":"n1","labels":{"kubernetes.io/os":"linux"}},"spec":{"providerID":"aws:///i-1"},
               "status":{"conditions":[{"type":"Ready","status":"True"},{"type":"DiskPressure","status":"False"}],
               "addresses":[{"type":"Hostname","address":"n1"},{"type":"ExternalIP","address":"1.2.3.4"},{"type":"InternalIP","address":"fd00::1"},{"type":"InternalIP","address":"10.0.0.9"}],
               "daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}"#,
        );
        let g = build(
            Resource::Nodes,
            "n1",
            &m,
            &KubernetesAttachMetadata::default(),
        )
        .expect("group");
        assert_eq!(g.source, "node/n1");
        assert_eq!(
            g.labels.get(&format!("{P}node_condition_ready")),
            Some("true")
        );
        assert_eq!(
            g.labels.get(&format!("{P}node_condition_diskpressure")),
            Some("false")
        );
        assert_eq!(
            g.labels.get(&format!("{P}node_provider_id")),
            Some("aws:///i-1")
        );
        assert_eq!(g.labels.get(&format!("{P}namespace")), None);
        let t = &g.targets[0];
        assert_eq!(t.get("__address__"), Some("[fd00::1]:10250"));
        assert_eq!(t.get("instance"), Some("n1"));
        assert_eq!(
            t.get(&format!("{P}node_address_InternalIP")),
            Some("fd00::1")
        );
        assert_eq!(t.get(&format!("{P}node_address_Hostname")), Some("n1"));
        // No address at all: nothing is sent.
        m.add(Resource::Nodes, r#"{"metadata":{"name":"n2"}}"#);
        assert!(
            build(
                Resource::Nodes,
                "n2",
                &m,
                &KubernetesAttachMetadata::default()
            )
            .is_none()
        );
    }

    #[test]
    fn services_one_target_per_port() {
        let mut m = Map::default();
        m.add(
            Resource::Services,
            r#"{"metadata":{"name":"web","namespace":"prod","labels":{"a":"b"}},
               "spec":{"type":"LoadBalancer","clusterIP":"10.96.0.5","loadBalancerIP":"5.5.5.5","ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#,
        );
        let g = build(
            Resource::Services,
            "prod/web",
            &m,
            &KubernetesAttachMetadata::default(),
        )
        .expect("group");
        assert_eq!(g.source, "svc/prod/web");
        assert_eq!(
            meta(&g.targets[0]),
            pairs(&[
                ("__address__", "web.prod.svc:80"),
                ("service_cluster_ip", "10.96.0.5"),
                ("service_loadbalancer_ip", "5.5.5.5"),
                ("service_port_name", "http"),
                ("service_port_number", "80"),
                ("service_port_protocol", "TCP"),
                ("service_type", "LoadBalancer"),
            ])
        );
        assert_eq!(g.labels.get(&format!("{P}service_label_a")), Some("b"));
    }

    #[test]
    fn endpoint_slices_join_pods_services_and_extra_container_ports() {
        let mut m = Map::default();
        m.add(Resource::Pods, POD).add(
            Resource::Services,
            r#"{"metadata":{"name":"web","namespace":"prod","labels":{"tier":"fe"}},"spec":{"clusterIP":"10.96.0.5"}}"#,
        ).add(
            Resource::EndpointSlices,
            r#"{"metadata":{"name":"web-x","namespace":"prod","labels":{"kubernetes.io/service-name":"web"}},
               "addressType":"IPv4",
               "endpoints":[
                 {"addresses":["10.1.2.3"],"conditions":{"ready":true,"serving":true,"terminating":false},
                  "targetRef":{"kind":"Pod","name":"web-1","namespace":"prod"},"nodeName":"n1","zone":"z",
                  "deprecatedTopology":{"topology.kubernetes.io/zone":"z"}},
                 {"addresses":["10.9.9.9"],"conditions":{"ready":false}}],
               "ports":[{"name":"http","port":8080,"protocol":"TCP","appProtocol":"http"}]}"#,
        );
        let g = build(
            Resource::EndpointSlices,
            "prod/web-x",
            &m,
            &KubernetesAttachMetadata::default(),
        )
        .expect("group");
        assert_eq!(g.source, "endpointslice/prod/web-x");
        assert_eq!(
            g.labels.get(&format!("{P}endpointslice_address_type")),
            Some("IPv4")
        );
        assert_eq!(g.labels.get(&format!("{P}service_label_tier")), Some("fe"));
        assert_eq!(g.labels.get(&format!("{P}service_name")), Some("web"));
        let addrs: Vec<&str> = g
            .targets
            .iter()
            .map(|t| t.get("__address__").unwrap_or(""))
            .collect();
        // The endpoint, the non-pod endpoint, then the pod's uncovered container ports.
        assert_eq!(
            addrs,
            [
                "10.1.2.3:8080",
                "10.9.9.9:8080",
                "10.1.2.3:9090",
                "10.1.2.3:7000"
            ]
        );
        let t = &g.targets[0];
        for (n, v) in [
            ("endpointslice_endpoint_conditions_ready", "true"),
            ("endpointslice_endpoint_conditions_terminating", "false"),
            ("endpointslice_port", "8080"),
            ("endpointslice_port_app_protocol", "http"),
            ("endpointslice_address_target_kind", "Pod"),
            (
                "endpointslice_endpoint_topology_topology_kubernetes_io_zone",
                "z",
            ),
            (
                "endpointslice_endpoint_topology_present_topology_kubernetes_io_zone",
                "true",
            ),
            ("pod_name", "web-1"),
            ("pod_container_name", "app"),
            ("pod_container_port_name", "http"),
        ] {
            assert_eq!(t.get(&format!("{P}{n}")), Some(v), "{n}");
        }
        assert_eq!(
            g.targets[1].get(&format!("{P}endpointslice_endpoint_conditions_serving")),
            None
        );
        assert_eq!(
            g.targets[2].get(&format!("{P}pod_container_port_number")),
            Some("9090")
        );
        assert_eq!(g.targets[2].get(&format!("{P}endpointslice_port")), None);
    }

    #[test]
    fn endpoints_ready_and_not_ready_addresses() {
        let mut m = Map::default();
        m.add(Resource::Pods, POD).add(
            Resource::Endpoints,
            r#"{"metadata":{"name":"web","namespace":"prod"},
               "subsets":[{"addresses":[{"ip":"10.1.2.3","nodeName":"n1","targetRef":{"kind":"Pod","name":"web-1","namespace":"prod"}}],
                           "notReadyAddresses":[{"ip":"10.1.2.4","hostname":"h"}],
                           "ports":[{"name":"m","port":9090,"protocol":"TCP"}]}]}"#,
        );
        let g = build(
            Resource::Endpoints,
            "prod/web",
            &m,
            &KubernetesAttachMetadata::default(),
        )
        .expect("group");
        assert_eq!(g.labels.get(&format!("{P}endpoints_name")), Some("web"));
        let addrs: Vec<&str> = g
            .targets
            .iter()
            .map(|t| t.get("__address__").unwrap_or(""))
            .collect();
        assert_eq!(
            addrs,
            [
                "10.1.2.3:9090",
                "10.1.2.4:9090",
                "10.1.2.3:8080",
                "10.1.2.3:7000"
            ]
        );
        assert_eq!(
            g.targets[0].get(&format!("{P}endpoint_ready")),
            Some("true")
        );
        assert_eq!(
            g.targets[0].get(&format!("{P}endpoint_node_name")),
            Some("n1")
        );
        assert_eq!(
            g.targets[0].get(&format!("{P}pod_container_name")),
            Some("app")
        );
        assert_eq!(
            g.targets[1].get(&format!("{P}endpoint_ready")),
            Some("false")
        );
        assert_eq!(
            g.targets[1].get(&format!("{P}endpoint_hostname")),
            Some("h")
        );
    }

    #[test]
    fn ingresses_scheme_from_tls_hosts() {
        let mut m = Map::default();
        m.add(
            Resource::Ingresses,
            r#"{"metadata":{"name":"i","namespace":"prod"},"spec":{"ingressClassName":"nginx",
               "tls":[{"hosts":["*.example.com"]}],
               "rules":[{"host":"a.example.com","http":{"paths":[{"path":"/x"},{"path":""}]}},{"host":"b.other"},{"host":"c","http":{"paths":[]}}]}}"#,
        );
        let g = build(
            Resource::Ingresses,
            "prod/i",
            &m,
            &KubernetesAttachMetadata::default(),
        )
        .expect("group");
        assert_eq!(
            g.labels.get(&format!("{P}ingress_class_name")),
            Some("nginx")
        );
        let t: Vec<(Option<&str>, Option<String>, Option<String>)> = g
            .targets
            .iter()
            .map(|t| {
                (
                    t.get("__address__"),
                    t.get(&format!("{P}ingress_scheme")).map(str::to_owned),
                    t.get(&format!("{P}ingress_path")).map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            t,
            vec![
                (
                    Some("a.example.com"),
                    Some("https".into()),
                    Some("/x".into())
                ),
                (
                    Some("a.example.com"),
                    Some("https".into()),
                    Some("/".into())
                ),
                (Some("b.other"), Some("http".into()), Some("/".into())),
            ]
        );
        assert!(host_matches("*", "x"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
    }

    #[test]
    fn label_names_are_sanitised_per_character() {
        assert_eq!(sanitize("app.kubernetes.io/name"), "app_kubernetes_io_name");
        assert_eq!(sanitize("é-1"), "__1");
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
        assert_eq!(port_text(-1), "18446744073709551615");
    }
}
