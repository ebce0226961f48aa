//! The Kubernetes objects discovery reads, decoded from the API's JSON into compact
//! owned records that keep only what some `__meta_kubernetes_*` label or join needs
//! (a pod's `managedFields`, volumes, env and the rest are skipped while parsing, never
//! held). Field names and meanings follow the `k8s.io/api` types 3.x's
//! `discovery/kubernetes` reads; `null` anywhere is treated as absent, as Go's decoder
//! leaves a zero value.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// The resources the roles list and watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// `v1` Pods.
    Pods,
    /// `v1` Services.
    Services,
    /// `v1` Endpoints.
    Endpoints,
    /// `discovery.k8s.io/v1` EndpointSlices.
    EndpointSlices,
    /// `networking.k8s.io/v1` Ingresses.
    Ingresses,
    /// `v1` Nodes (cluster-scoped).
    Nodes,
    /// `v1` Namespaces (cluster-scoped).
    Namespaces,
    /// `apps/v1` ReplicaSets.
    ReplicaSets,
    /// `batch/v1` Jobs.
    Jobs,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 9] = [
        Resource::Pods,
        Resource::Services,
        Resource::Endpoints,
        Resource::EndpointSlices,
        Resource::Ingresses,
        Resource::Nodes,
        Resource::Namespaces,
        Resource::ReplicaSets,
        Resource::Jobs,
    ];

    /// The API group and version's path prefix (`/api/v1`, `/apis/apps/v1`).
    pub fn prefix(self) -> &'static str {
        match self {
            Resource::Pods
            | Resource::Services
            | Resource::Endpoints
            | Resource::Nodes
            | Resource::Namespaces => "/api/v1",
            Resource::EndpointSlices => "/apis/discovery.k8s.io/v1",
            Resource::Ingresses => "/apis/networking.k8s.io/v1",
            Resource::ReplicaSets => "/apis/apps/v1",
            Resource::Jobs => "/apis/batch/v1",
        }
    }

    /// The plural name in paths (`pods`).
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Pods => "pods",
            Resource::Services => "services",
            Resource::Endpoints => "endpoints",
            Resource::EndpointSlices => "endpointslices",
            Resource::Ingresses => "ingresses",
            Resource::Nodes => "nodes",
            Resource::Namespaces => "namespaces",
            Resource::ReplicaSets => "replicasets",
            Resource::Jobs => "jobs",
        }
    }

    /// The object kind (`Pod`).
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Pods => "Pod",
            Resource::Services => "Service",
            Resource::Endpoints => "Endpoints",
            Resource::EndpointSlices => "EndpointSlice",
            Resource::Ingresses => "Ingress",
            Resource::Nodes => "Node",
            Resource::Namespaces => "Namespace",
            Resource::ReplicaSets => "ReplicaSet",
            Resource::Jobs => "Job",
        }
    }

    /// True for cluster-scoped resources (no namespace in paths).
    pub fn cluster_scoped(self) -> bool {
        matches!(self, Resource::Nodes | Resource::Namespaces)
    }

    /// The collection's path for `namespace` (`""`: all namespaces).
    pub fn path(self, namespace: &str) -> String {
        if namespace.is_empty() || self.cluster_scoped() {
            format!("{}/{}", self.prefix(), self.plural())
        } else {
            format!("{}/namespaces/{namespace}/{}", self.prefix(), self.plural())
        }
    }

    /// Decodes one object of this resource.
    pub fn decode(self, raw: &RawValue) -> Result<Object, String> {
        let text = raw.get();
        let r = |e: serde_json::Error| format!("unable to decode a {}: {e}", self.kind());
        Ok(match self {
            Resource::Pods => Object::Pod(serde_json::from_str(text).map_err(r)?),
            Resource::Services => Object::Service(serde_json::from_str(text).map_err(r)?),
            Resource::Endpoints => Object::Endpoints(serde_json::from_str(text).map_err(r)?),
            Resource::EndpointSlices => {
                Object::EndpointSlice(serde_json::from_str(text).map_err(r)?)
            }
            Resource::Ingresses => Object::Ingress(serde_json::from_str(text).map_err(r)?),
            Resource::Nodes => Object::Node(serde_json::from_str(text).map_err(r)?),
            Resource::Namespaces | Resource::ReplicaSets | Resource::Jobs => {
                Object::Meta(serde_json::from_str::<MetaOnly>(text).map_err(r)?.metadata)
            }
        })
    }
}

/// Deserializes `null` as the type's default (Go leaves the zero value).
fn nul<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Text: Box<str> keeps an owned string in two words.
pub type Text = Box<str>;

/// Name/value pairs (labels, annotations), sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs(pub Box<[(Text, Text)]>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m: Option<BTreeMap<Text, Text>> = Option::deserialize(d)?;
        Ok(Pairs(m.unwrap_or_default().into_iter().collect()))
    }
}

impl Pairs {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()
            .map(|i| &*self.0[i].1)
    }
}

/// A controller or target reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ref {
    /// `kind`.
    pub kind: Text,
    /// `name`.
    pub name: Text,
    /// `namespace` (target references only).
    pub namespace: Text,
}

#[derive(Deserialize, Default)]
struct RawOwner {
    #[serde(default, deserialize_with = "nul")]
    kind: Text,
    #[serde(default, deserialize_with = "nul")]
    name: Text,
    #[serde(default, deserialize_with = "nul")]
    controller: bool,
}

/// `metadata`: what every role reads of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// `name`.
    pub name: Text,
    /// `namespace` (empty for cluster-scoped objects).
    pub namespace: Text,
    /// `uid`.
    pub uid: Text,
    /// `resourceVersion`: a relist reports an object as changed only if this changed.
    pub resource_version: Text,
    /// `labels`.
    pub labels: Pairs,
    /// `annotations`.
    pub annotations: Pairs,
    /// The first owner reference with `controller: true` (kind, name).
    pub controller: Option<Ref>,
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            #[serde(default, deserialize_with = "nul")]
            name: Text,
            #[serde(default, deserialize_with = "nul")]
            namespace: Text,
            #[serde(default, deserialize_with = "nul")]
            uid: Text,
            #[serde(default, deserialize_with = "nul")]
            resource_version: Text,
            #[serde(default)]
            labels: Pairs,
            #[serde(default)]
            annotations: Pairs,
            #[serde(default, deserialize_with = "nul")]
            owner_references: Vec<RawOwner>,
        }
        let r = Option::<Raw>::deserialize(d)?;
        let Some(r) = r else {
            return Ok(Meta::default());
        };
        // 3.x: `metav1.GetControllerOf`, the first reference marked as controller.
        let controller = r
            .owner_references
            .into_iter()
            .find(|o| o.controller)
            .map(|o| Ref {
                kind: o.kind,
                name: o.name,
                namespace: Text::default(),
            });
        Ok(Meta {
            name: r.name,
            namespace: r.namespace,
            uid: r.uid,
            resource_version: r.resource_version,
            labels: r.labels,
            annotations: r.annotations,
            controller,
        })
    }
}

impl Meta {
    /// The store key: `namespace/name`, or `name` for cluster-scoped objects (client-go's
    /// `MetaNamespaceKeyFunc`).
    pub fn key(&self) -> String {
        if self.namespace.is_empty() {
            self.name.to_string()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

#[derive(Deserialize)]
struct MetaOnly {
    #[serde(default)]
    metadata: Meta,
}

/// A decoded object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// A Pod.
    Pod(Box<Pod>),
    /// A Service.
    Service(Box<Service>),
    /// An Endpoints.
    Endpoints(Box<Endpoints>),
    /// An EndpointSlice.
    EndpointSlice(Box<EndpointSlice>),
    /// An Ingress.
    Ingress(Box<Ingress>),
    /// A Node.
    Node(Box<Node>),
    /// A Namespace, ReplicaSet or Job: only its metadata is read.
    Meta(Meta),
}

impl Object {
    /// Its metadata.
    pub fn meta(&self) -> &Meta {
        match self {
            Object::Pod(o) => &o.meta,
            Object::Service(o) => &o.meta,
            Object::Endpoints(o) => &o.meta,
            Object::EndpointSlice(o) => &o.meta,
            Object::Ingress(o) => &o.meta,
            Object::Node(o) => &o.meta,
            Object::Meta(m) => m,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pod

/// A container port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// `name`.
    #[serde(default, deserialize_with = "nul")]
    pub name: Text,
    /// `containerPort`.
    #[serde(default, deserialize_with = "nul")]
    pub container_port: i32,
    /// `protocol` (the API server defaults it to `TCP`).
    #[serde(default, deserialize_with = "nul")]
    pub protocol: Text,
}

/// A container (or init container) with the id its status reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Container {
    /// `name`.
    pub name: Text,
    /// `image`.
    pub image: Text,
    /// `containerID` from the matching status entry ("" if none).
    pub id: Text,
    /// `ports`.
    pub ports: Box<[ContainerPort]>,
}

#[derive(Deserialize, Default)]
struct RawContainer {
    #[serde(default, deserialize_with = "nul")]
    name: Text,
    #[serde(default, deserialize_with = "nul")]
    image: Text,
    #[serde(default, deserialize_with = "nul")]
    ports: Vec<ContainerPort>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawContainerStatus {
    #[serde(default, deserialize_with = "nul")]
    name: Text,
    #[serde(default, rename = "containerID", deserialize_with = "nul")]
    container_id: Text,
}

#[derive(Deserialize, Default)]
struct RawCondition {
    #[serde(default, rename = "type", deserialize_with = "nul")]
    kind: Text,
    #[serde(default, deserialize_with = "nul")]
    status: Text,
}

/// A Pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pod {
    /// `metadata`.
    pub meta: Meta,
    /// `spec.nodeName`.
    pub node_name: Text,
    /// `status.podIP`.
    pub pod_ip: Text,
    /// `status.hostIP`.
    pub host_ip: Text,
    /// `status.phase`.
    pub phase: Text,
    /// The `Ready` condition's status, lower-cased, or `unknown` (3.x's `podReady`).
    pub ready: Text,
    /// `spec.containers`.
    pub containers: Box<[Container]>,
    /// `spec.initContainers`.
    pub init_containers: Box<[Container]>,
}

impl Pod {
    /// Containers then init containers, each with its init flag.
    pub fn all_containers(&self) -> impl Iterator<Item = (&Container, bool)> {
        self.containers
            .iter()
            .map(|c| (c, false))
            .chain(self.init_containers.iter().map(|c| (c, true)))
    }
}

impl<'de> Deserialize<'de> for Pod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            #[serde(default, deserialize_with = "nul")]
            node_name: Text,
            #[serde(default, deserialize_with = "nul")]
            containers: Vec<RawContainer>,
            #[serde(default, deserialize_with = "nul")]
            init_containers: Vec<RawContainer>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Status {
            #[serde(default, rename = "podIP", deserialize_with = "nul")]
            pod_ip: Text,
            #[serde(default, rename = "hostIP", deserialize_with = "nul")]
            host_ip: Text,
            #[serde(default, deserialize_with = "nul")]
            phase: Text,
            #[serde(default, deserialize_with = "nul")]
            conditions: Vec<RawCondition>,
            #[serde(default, deserialize_with = "nul")]
            container_statuses: Vec<RawContainerStatus>,
            #[serde(default, deserialize_with = "nul")]
            init_container_statuses: Vec<RawContainerStatus>,
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            metadata: Meta,
            #[serde(default, deserialize_with = "nul")]
            spec: Spec,
            #[serde(default, deserialize_with = "nul")]
            status: Status,
        }
        let r = Raw::deserialize(d)?;
        let (spec, status) = (r.spec, r.status);
        // 3.x `podReady`: the Ready condition's status, lower-cased.
        let ready = status
            .conditions
            .iter()
            .find(|c| &*c.kind == "Ready")
            .map_or_else(|| "unknown".into(), |c| c.status.to_lowercase().into());
        // 3.x `findContainerStatus`: the id of the status entry with the same name.
        let join = |cs: Vec<RawContainer>, st: &[RawContainerStatus]| -> Box<[Container]> {
            cs.into_iter()
                .map(|c| Container {
                    id: st
                        .iter()
                        .find(|s| s.name == c.name)
                        .map(|s| s.container_id.clone())
                        .unwrap_or_default(),
                    name: c.name,
                    image: c.image,
                    ports: c.ports.into(),
                })
                .collect()
        };
        Ok(Pod {
            meta: r.metadata,
            node_name: spec.node_name,
            pod_ip: status.pod_ip,
            host_ip: status.host_ip,
            phase: status.phase,
            ready,
            containers: join(spec.containers, &status.container_statuses),
            init_containers: join(spec.init_containers, &status.init_container_statuses),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Service

/// A service port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ServicePort {
    /// `name`.
    #[serde(default, deserialize_with = "nul")]
    pub name: Text,
    /// `port`.
    #[serde(default, deserialize_with = "nul")]
    pub port: i32,
    /// `protocol`.
    #[serde(default, deserialize_with = "nul")]
    pub protocol: Text,
}

/// A Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// `metadata`.
    pub meta: Meta,
    /// `spec.type`.
    pub kind: Text,
    /// `spec.clusterIP`.
    pub cluster_ip: Text,
    /// `spec.externalName`.
    pub external_name: Text,
    /// The load balancer's addresses: `status.loadBalancer.ingress[].ip` joined with
    /// commas, else `spec.loadBalancerIP`.
    pub load_balancer_ip: Text,
    /// `spec.ports`.
    pub ports: Box<[ServicePort]>,
    /// `spec.ipFamilyPolicy`.
    pub ip_family_policy: Text,
    /// `spec.ipFamilies`.
    pub ip_families: Box<[Text]>,
}

impl<'de> Deserialize<'de> for Service {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            #[serde(default, rename = "type", deserialize_with = "nul")]
            kind: Text,
            #[serde(default, rename = "clusterIP", deserialize_with = "nul")]
            cluster_ip: Text,
            #[serde(default, deserialize_with = "nul")]
            external_name: Text,
            #[serde(default, rename = "loadBalancerIP", deserialize_with = "nul")]
            load_balancer_ip: Text,
            #[serde(default, deserialize_with = "nul")]
            ports: Vec<ServicePort>,
            #[serde(default, deserialize_with = "nul")]
            ip_family_policy: Text,
            #[serde(default, deserialize_with = "nul")]
            ip_families: Vec<Text>,
        }
        #[derive(Deserialize, Default)]
        struct Ingress {
            #[serde(default, deserialize_with = "nul")]
            ip: Text,
        }
        #[derive(Deserialize, Default)]
        struct Lb {
            #[serde(default, deserialize_with = "nul")]
            ingress: Vec<Ingress>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Status {
            #[serde(default, deserialize_with = "nul")]
            load_balancer: Lb,
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            metadata: Meta,
            #[serde(default, deserialize_with = "nul")]
            spec: Spec,
            #[serde(default, deserialize_with = "nul")]
            status: Status,
        }
        let r = Raw::deserialize(d)?;
        // 3.x (after 3.14, `loadBalancerIPs`): the status's addresses, else the spec's.
        let ips: Vec<&str> = r
            .status
            .load_balancer
            .ingress
            .iter()
            .map(|i| &*i.ip)
            .filter(|ip| !ip.is_empty())
            .collect();
        let load_balancer_ip = if ips.is_empty() {
            r.spec.load_balancer_ip
        } else {
            ips.join(",").into()
        };
        Ok(Service {
            meta: r.metadata,
            kind: r.spec.kind,
            cluster_ip: r.spec.cluster_ip,
            external_name: r.spec.external_name,
            load_balancer_ip,
            ports: r.spec.ports.into(),
            ip_family_policy: r.spec.ip_family_policy,
            ip_families: r.spec.ip_families.into(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Endpoints

#[derive(Deserialize, Default)]
struct RawRef {
    #[serde(default, deserialize_with = "nul")]
    kind: Text,
    #[serde(default, deserialize_with = "nul")]
    name: Text,
    #[serde(default, deserialize_with = "nul")]
    namespace: Text,
}

fn target_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ref>, D::Error> {
    Ok(Option::<RawRef>::deserialize(d)?.map(|r| Ref {
        kind: r.kind,
        name: r.name,
        namespace: r.namespace,
    }))
}

/// An address of an Endpoints subset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAddress {
    /// `ip`.
    #[serde(default, deserialize_with = "nul")]
    pub ip: Text,
    /// `hostname`.
    #[serde(default, deserialize_with = "nul")]
    pub hostname: Text,
    /// `nodeName`.
    #[serde(default, deserialize_with = "nul")]
    pub node_name: Option<Text>,
    /// `targetRef`.
    #[serde(default, deserialize_with = "target_ref")]
    pub target_ref: Option<Ref>,
}

/// A port of an Endpoints subset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EndpointPort {
    /// `name`.
    #[serde(default, deserialize_with = "nul")]
    pub name: Text,
    /// `port`.
    #[serde(default, deserialize_with = "nul")]
    pub port: i32,
    /// `protocol`.
    #[serde(default, deserialize_with = "nul")]
    pub protocol: Text,
}

/// An Endpoints subset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    /// `addresses` (ready).
    #[serde(default, deserialize_with = "nul")]
    pub addresses: Vec<EndpointAddress>,
    /// `notReadyAddresses`.
    #[serde(default, deserialize_with = "nul")]
    pub not_ready_addresses: Vec<EndpointAddress>,
    /// `ports`.
    #[serde(default, deserialize_with = "nul")]
    pub ports: Vec<EndpointPort>,
}

/// An Endpoints object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Endpoints {
    /// `metadata`.
    #[serde(default, rename = "metadata")]
    pub meta: Meta,
    /// `subsets`.
    #[serde(default, deserialize_with = "nul")]
    pub subsets: Vec<Subset>,
}

// ---------------------------------------------------------------------------------------
// EndpointSlice

/// An endpoint's conditions (each only if set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Conditions {
    /// `ready`.
    #[serde(default)]
    pub ready: Option<bool>,
    /// `serving`.
    #[serde(default)]
    pub serving: Option<bool>,
    /// `terminating`.
    #[serde(default)]
    pub terminating: Option<bool>,
}

/// An endpoint of a slice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    /// `addresses`.
    #[serde(default, deserialize_with = "nul")]
    pub addresses: Vec<Text>,
    /// `conditions`.
    #[serde(default, deserialize_with = "nul")]
    pub conditions: Conditions,
    /// `hostname`.
    #[serde(default)]
    pub hostname: Option<Text>,
    /// `targetRef`.
    #[serde(default, deserialize_with = "target_ref")]
    pub target_ref: Option<Ref>,
    /// `nodeName`.
    #[serde(default)]
    pub node_name: Option<Text>,
    /// `zone`.
    #[serde(default)]
    pub zone: Option<Text>,
    /// `deprecatedTopology`.
    #[serde(default)]
    pub deprecated_topology: Pairs,
}

/// A port of a slice (each field only if set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlicePort {
    /// `name`.
    #[serde(default)]
    pub name: Option<Text>,
    /// `port`.
    #[serde(default)]
    pub port: Option<i32>,
    /// `protocol`.
    #[serde(default)]
    pub protocol: Option<Text>,
    /// `appProtocol`.
    #[serde(default)]
    pub app_protocol: Option<Text>,
}

/// An EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    /// `metadata`.
    #[serde(default, rename = "metadata")]
    pub meta: Meta,
    /// `addressType`.
    #[serde(default, deserialize_with = "nul")]
    pub address_type: Text,
    /// `endpoints`.
    #[serde(default, deserialize_with = "nul")]
    pub endpoints: Vec<SliceEndpoint>,
    /// `ports`.
    #[serde(default, deserialize_with = "nul")]
    pub ports: Vec<SlicePort>,
}

impl EndpointSlice {
    /// The service the slice belongs to (label `kubernetes.io/service-name`).
    pub fn service_name(&self) -> Option<&str> {
        self.meta.labels.get("kubernetes.io/service-name")
    }
}

// ---------------------------------------------------------------------------------------
// Node

/// A Node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// `metadata`.
    pub meta: Meta,
    /// `spec.providerID`.
    pub provider_id: Text,
    /// `status.conditions` (type, status).
    pub conditions: Box<[(Text, Text)]>,
    /// `status.addresses` (type, address), in order.
    pub addresses: Box<[(Text, Text)]>,
    /// `status.daemonEndpoints.kubeletEndpoint.Port`.
    pub kubelet_port: i32,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            #[serde(default, rename = "providerID", deserialize_with = "nul")]
            provider_id: Text,
        }
        #[derive(Deserialize, Default)]
        struct Address {
            #[serde(default, rename = "type", deserialize_with = "nul")]
            kind: Text,
            #[serde(default, deserialize_with = "nul")]
            address: Text,
        }
        #[derive(Deserialize, Default)]
        struct Kubelet {
            #[serde(default, rename = "Port", deserialize_with = "nul")]
            port: i32,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Daemon {
            #[serde(default, deserialize_with = "nul")]
            kubelet_endpoint: Kubelet,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Status {
            #[serde(default, deserialize_with = "nul")]
            conditions: Vec<RawCondition>,
            #[serde(default, deserialize_with = "nul")]
            addresses: Vec<Address>,
            #[serde(default, deserialize_with = "nul")]
            daemon_endpoints: Daemon,
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            metadata: Meta,
            #[serde(default, deserialize_with = "nul")]
            spec: Spec,
            #[serde(default, deserialize_with = "nul")]
            status: Status,
        }
        let r = Raw::deserialize(d)?;
        Ok(Node {
            meta: r.metadata,
            provider_id: r.spec.provider_id,
            conditions: r
                .status
                .conditions
                .into_iter()
                .map(|c| (c.kind, c.status))
                .collect(),
            addresses: r
                .status
                .addresses
                .into_iter()
                .map(|a| (a.kind, a.address))
                .collect(),
            kubelet_port: r.status.daemon_endpoints.kubelet_endpoint.port,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Ingress

/// An ingress rule: its host and paths (`None`: no `http` block, one path `/`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// `host`.
    pub host: Text,
    /// `http.paths[].path`, or `None` without `http`.
    pub paths: Option<Box<[Text]>>,
}

/// An Ingress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingress {
    /// `metadata`.
    pub meta: Meta,
    /// `spec.ingressClassName`.
    pub class_name: Option<Text>,
    /// Every host of every `spec.tls[]` entry.
    pub tls_hosts: Box<[Text]>,
    /// `spec.rules`.
    pub rules: Box<[Rule]>,
}

impl<'de> Deserialize<'de> for Ingress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        struct Path {
            #[serde(default, deserialize_with = "nul")]
            path: Text,
        }
        #[derive(Deserialize, Default)]
        struct Http {
            #[serde(default, deserialize_with = "nul")]
            paths: Vec<Path>,
        }
        #[derive(Deserialize, Default)]
        struct RawRule {
            #[serde(default, deserialize_with = "nul")]
            host: Text,
            #[serde(default)]
            http: Option<Http>,
        }
        #[derive(Deserialize, Default)]
        struct Tls {
            #[serde(default, deserialize_with = "nul")]
            hosts: Vec<Text>,
        }
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            #[serde(default)]
            ingress_class_name: Option<Text>,
            #[serde(default, deserialize_with = "nul")]
            tls: Vec<Tls>,
            #[serde(default, deserialize_with = "nul")]
            rules: Vec<RawRule>,
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            metadata: Meta,
            #[serde(default, deserialize_with = "nul")]
            spec: Spec,
        }
        let r = Raw::deserialize(d)?;
        Ok(Ingress {
            meta: r.metadata,
            class_name: r.spec.ingress_class_name,
            tls_hosts: r.spec.tls.into_iter().flat_map(|t| t.hosts).collect(),
            rules: r
                .spec
                .rules
                .into_iter()
                .map(|r| Rule {
                    host: r.host,
                    paths: r
                        .http
                        .map(|h| h.paths.into_iter().map(|p| p.path).collect()),
                })
                .collect(),
        })
    }
}

/// A `Status` (the object of an `ERROR` event, or an error response's body).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Status {
    /// `code`: the HTTP status it stands for (410: the version is too old).
    #[serde(default, deserialize_with = "nul")]
    pub code: u16,
    /// `reason` (`Expired`, `Gone`, `Forbidden`…).
    #[serde(default, deserialize_with = "nul")]
    pub reason: String,
    /// `message`.
    #[serde(default, deserialize_with = "nul")]
    pub message: String,
}

impl Status {
    /// Decodes a Status; anything else gives an empty one.
    pub fn decode(raw: &str) -> Status {
        serde_json::from_str(raw).unwrap_or_default()
    }

    /// True if the version asked for is no longer available (client-go's
    /// `IsResourceExpired` / `IsGone`).
    pub fn expired(&self) -> bool {
        self.code == 410 || self.reason == "Expired" || self.reason == "Gone"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).expect("json")
    }

    #[test]
    fn paths() {
        assert_eq!(Resource::Pods.path(""), "/api/v1/pods");
        assert_eq!(
            Resource::Pods.path("kube-system"),
            "/api/v1/namespaces/kube-system/pods"
        );
        assert_eq!(
            Resource::EndpointSlices.path("a"),
            "/apis/discovery.k8s.io/v1/namespaces/a/endpointslices"
        );
        assert_eq!(Resource::Nodes.path("a"), "/api/v1/nodes");
    }

    #[test]
    fn pods_keep_what_labels_need() {
        let p = Resource::Pods
            .decode(&raw(
                r#"{"metadata":{"name":"p","namespace":"ns","uid":"u","resourceVersion":"7",
                "labels":{"b":"2","a":"1"},"annotations":null,
                "ownerReferences":[{"kind":"X","name":"x"},{"kind":"ReplicaSet","name":"rs","controller":true}],
                "managedFields":[{"manager":"kubelet"}]},
                "spec":{"nodeName":"n1","containers":[{"name":"c","image":"i","ports":[{"containerPort":80,"protocol":"TCP"}]}],
                  "initContainers":null,"volumes":[{"name":"v"}]},
                "status":{"podIP":"10.0.0.1","phase":"Running","conditions":[{"type":"Ready","status":"True"}],
                  "containerStatuses":[{"name":"c","containerID":"containerd://abc"}]}}"#,
            ))
            .expect("pod");
        let Object::Pod(p) = p else {
            panic!("not a pod")
        };
        assert_eq!(p.meta.key(), "ns/p");
        assert_eq!(p.meta.labels.get("a"), Some("1"));
        assert_eq!(&*p.meta.labels.0[0].0, "a");
        assert_eq!(p.meta.controller.as_ref().map(|c| &*c.name), Some("rs"));
        assert_eq!(&*p.ready, "true");
        assert_eq!(&*p.containers[0].id, "containerd://abc");
        assert_eq!(p.containers[0].ports[0].container_port, 80);
        assert!(p.init_containers.is_empty());
    }

    #[test]
    fn nulls_and_absences_are_zero_values() {
        for text in [
            r#"{}"#,
            r#"{"metadata":null,"spec":null,"status":null}"#,
            r#"{"metadata":{"labels":null},"spec":{"containers":null}}"#,
        ] {
            for r in Resource::ALL {
                assert!(r.decode(&raw(text)).is_ok(), "{r:?} {text}");
            }
        }
        let Ok(Object::Pod(p)) = Resource::Pods.decode(&raw("{}")) else {
            panic!("pod")
        };
        assert_eq!(&*p.ready, "unknown");
        // A wrong type is an error naming the kind.
        let e = Resource::Nodes
            .decode(&raw(r#"{"metadata":{"name":5}}"#))
            .expect_err("bad");
        assert!(e.starts_with("unable to decode a Node: "), "{e}");
    }

    #[test]
    fn services_take_the_load_balancers_addresses() {
        let Ok(Object::Service(s)) = Resource::Services.decode(&raw(
            r#"{"spec":{"type":"LoadBalancer","loadBalancerIP":"1.1.1.1"},
               "status":{"loadBalancer":{"ingress":[{"ip":"2.2.2.2"},{"hostname":"h"},{"ip":"3.3.3.3"}]}}}"#,
        )) else {
            panic!("service")
        };
        assert_eq!(&*s.load_balancer_ip, "2.2.2.2,3.3.3.3");
        let Ok(Object::Service(s)) = Resource::Services.decode(&raw(
            r#"{"spec":{"type":"LoadBalancer","loadBalancerIP":"1.1.1.1"}}"#,
        )) else {
            panic!("service")
        };
        assert_eq!(&*s.load_balancer_ip, "1.1.1.1");
    }

    #[test]
    fn statuses() {
        let s = Status::decode(
            r#"{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (5)"}"#,
        );
        assert!(s.expired());
        assert!(!Status::decode("[]").expired());
    }
}
