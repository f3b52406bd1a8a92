//! Tenant + catalog services → the Kubernetes objects that run its ENT, built
//! with typed `k8s-openapi` structs. Pure: the same input gives the same objects.

use crate::tenants::{Status, Tenant};
use ent_kernel::config::ClusterConfig;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::yaml;
use ent_platform::catalog::{self, thousands, Service};
use ent_platform::registry::Org;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, LimitRange, LimitRangeItem,
    LimitRangeSpec, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceQuota, ResourceQuotaSpec, ResourceRequirements,
    SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Service as KubeService, ServicePort, ServiceSpec,
    Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IPBlock, Ingress, IngressBackend, IngressRule, IngressServiceBackend,
    IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "entcp";
pub const TENANT_LABEL: &str = "entcp.education.fr/tenant";
/// On the volume of a service the tenant no longer has: kept (not pruned) until the purge.
pub const RETAINED_LABEL: &str = "entcp.education.fr/retained";

/// One desired object, serialised with its `apiVersion` and `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedObject {
    pub kind: String,
    pub name: String,
    pub manifest: serde_json::Value,
}

fn object<T: Serialize + k8s_openapi::Resource>(name: &str, value: T) -> RenderedObject {
    RenderedObject {
        kind: T::KIND.to_string(),
        name: name.to_string(),
        manifest: serde_json::to_value(value).expect("k8s object serialises"),
    }
}

fn labels(tenant: &Tenant, org: &Org, component: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), MANAGED_BY.to_string()),
        ("app.kubernetes.io/part-of".to_string(), format!("ent-{}", tenant.slug)),
        ("app.kubernetes.io/instance".to_string(), tenant.slug.clone()),
        (TENANT_LABEL.to_string(), tenant.id.clone()),
    ]);
    let code_label = if org.kind == OrgKind::Commune { "entcp.education.fr/commune" } else { "entcp.education.fr/uai" };
    labels.insert(code_label.to_string(), org.code.clone());
    if let Some(academie) = &org.academie_code {
        labels.insert("entcp.education.fr/academie".to_string(), academie.clone());
    }
    if let Some(component) = component {
        labels.insert("app.kubernetes.io/name".to_string(), component.to_string());
        labels.insert("app.kubernetes.io/component".to_string(), component.to_string());
    }
    labels
}

/// A service's labels and the version of its image: the tag of `registry/name:tag` when it
/// is a valid label value (a digest or an odd tag is left out).
fn workload_labels(tenant: &Tenant, org: &Org, service: &Service) -> BTreeMap<String, String> {
    let mut labels = labels(tenant, org, Some(&service.code));
    let image = service.deployment.image.split('@').next().unwrap_or_default();
    let tag = image.rsplit_once(':').map(|(_, tag)| tag).filter(|tag| !tag.contains('/'));
    let valid = |v: &str| {
        v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if let Some(tag) = tag.filter(|t| valid(t)) {
        labels.insert("app.kubernetes.io/version".to_string(), tag.to_string());
    }
    labels
}

/// The tenant's labels, and Pod Security « restricted » enforced (and warned, audited) on
/// every pod of the namespace by the API server's admission.
fn namespace_labels(tenant: &Tenant, org: &Org) -> BTreeMap<String, String> {
    let mut labels = labels(tenant, org, None);
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(format!("pod-security.kubernetes.io/{mode}"), "restricted".into());
    }
    labels
}

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn quantities(pairs: &[(&str, String)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.clone()))).collect()
}

/// A credential derived from the tenant's secret seed: stable across reconciles, never logged.
fn credential(seed: &str, service: &str) -> String {
    hex::encode(&Sha256::digest(format!("{seed}:{service}").as_bytes())[..16])
}

/// The namespace of the tenant `slug`: every object of it but the namespace lives there.
pub fn namespace_of(slug: &str) -> String {
    format!("ent-{slug}")
}

/// The volume claim of a service's data (`code` the service's), in the tenant's namespace.
pub fn volume_name(code: &str) -> String {
    format!("{code}-data")
}

/// The objects of a tenant in its current state: nothing while requested; the
/// whole ENT while provisioning, active or suspended (suspended: zero replicas);
/// only the namespace and the data (volumes, configuration, credentials) while
/// decommissioning or archived; nothing once purged.
pub fn render(
    tenant: &Tenant,
    org: &Org,
    services: &[&Service],
    secret_seed: &str,
    cluster: &ClusterConfig,
) -> Vec<RenderedObject> {
    if matches!(tenant.status, Status::Requested | Status::Purged) {
        return vec![];
    }
    let ns = namespace_of(&tenant.slug);
    let workloads = matches!(tenant.status, Status::Provisioning | Status::Active | Status::Suspended);
    let replicas = if tenant.status == Status::Suspended { 0 } else { 1 };
    let k = thousands(tenant.accounts);
    let mut objects = vec![object(
        &ns,
        Namespace { metadata: meta(&ns, None, namespace_labels(tenant, org)), ..Namespace::default() },
    )];
    // Room for one more pod of each Deployment while it rolls out (RollingUpdate surges by one
    // pod); a Deployment with a volume is recreated, its old pod stopped first.
    let pods = |s: &&Service| if s.deployment.needs_storage() { 1 } else { 2 };
    let cpu: u64 = services.iter().map(|s| u64::from(s.deployment.cpu_millicores_per_1000) * k * pods(s)).sum();
    let memory: u64 = services.iter().map(|s| u64::from(s.deployment.memory_mib_per_1000) * k * pods(s)).sum();
    let storage: u64 = services.iter().map(|s| s.deployment.storage_gib(tenant.accounts)).sum();
    objects.push(object(
        "quota",
        ResourceQuota {
            metadata: meta("quota", Some(&ns), labels(tenant, org, None)),
            spec: Some(ResourceQuotaSpec {
                hard: Some(quantities(&[
                    ("requests.cpu", format!("{cpu}m")),
                    ("limits.cpu", format!("{}m", cpu * 2)),
                    ("requests.memory", format!("{memory}Mi")),
                    ("limits.memory", format!("{}Mi", memory * 2)),
                    ("requests.storage", format!("{storage}Gi")),
                ])),
                ..ResourceQuotaSpec::default()
            }),
            ..ResourceQuota::default()
        },
    ));
    objects.push(object(
        "limits",
        LimitRange {
            metadata: meta("limits", Some(&ns), labels(tenant, org, None)),
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".into(),
                    default: Some(quantities(&[("cpu", "500m".into()), ("memory", "512Mi".into())])),
                    default_request: Some(quantities(&[("cpu", "50m".into()), ("memory", "64Mi".into())])),
                    ..LimitRangeItem::default()
                }],
            }),
        },
    ));
    objects.push(network_policy(tenant, org, &ns, services, cluster));
    let enabled: Vec<serde_json::Value> = services
        .iter()
        .map(|s| serde_json::json!({ "code": s.code, "name": s.name, "path": s.deployment.ingress_path, "port": s.deployment.port }))
        .collect();
    objects.push(object(
        "ent-services",
        ConfigMap {
            metadata: meta("ent-services", Some(&ns), labels(tenant, org, None)),
            data: Some(BTreeMap::from([
                ("services.json".to_string(), serde_json::to_string(&enabled).expect("json")),
                ("hostname".to_string(), tenant.hostname.clone()),
                (
                    "identity-source".to_string(),
                    serde_json::to_value(tenant.identity_source)
                        .expect("json")
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            ])),
            ..ConfigMap::default()
        },
    ));
    for service in services {
        objects.push(credentials(tenant, org, &ns, service, secret_seed));
    }
    for service in services {
        if service.deployment.needs_storage() {
            objects.push(volume_claim(tenant, org, &ns, service, cluster));
        }
        if workloads {
            objects.push(deployment(tenant, org, &ns, service, k, replicas));
            objects.push(kube_service(tenant, org, &ns, service));
            objects.extend(egress_policy(tenant, org, &ns, service, cluster));
        }
    }
    if workloads {
        objects.push(ingress(tenant, org, &ns, services, cluster));
    }
    objects
}

fn network_policy(
    tenant: &Tenant,
    org: &Org,
    ns: &str,
    services: &[&Service],
    cluster: &ClusterConfig,
) -> RenderedObject {
    let ports: Vec<NetworkPolicyPort> = services
        .iter()
        .map(|s| NetworkPolicyPort {
            port: Some(IntOrString::Int(s.deployment.port as i32)),
            protocol: Some("TCP".into()),
            ..NetworkPolicyPort::default()
        })
        .collect();
    let from_ingress_controller = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_string(),
                cluster.ingress_namespace.clone(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let same_namespace =
        NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..NetworkPolicyPeer::default() };
    // Name resolution, over UDP and TCP (large answers), to the cluster's DNS only
    // (CoreDNS and kube-dns pods carry `k8s-app: kube-dns` in kube-system).
    let dns: Vec<NetworkPolicyPort> = ["UDP", "TCP"]
        .into_iter()
        .map(|protocol| NetworkPolicyPort {
            port: Some(IntOrString::Int(53)),
            protocol: Some(protocol.into()),
            ..NetworkPolicyPort::default()
        })
        .collect();
    let selecting = |key: &str, value: &str| LabelSelector {
        match_labels: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
        ..LabelSelector::default()
    };
    let cluster_dns = NetworkPolicyPeer {
        namespace_selector: Some(selecting("kubernetes.io/metadata.name", "kube-system")),
        pod_selector: Some(selecting("k8s-app", "kube-dns")),
        ..NetworkPolicyPeer::default()
    };
    object(
        "default-deny-with-allowances",
        NetworkPolicy {
            metadata: meta("default-deny-with-allowances", Some(ns), labels(tenant, org, None)),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![
                    NetworkPolicyIngressRule { from: Some(vec![from_ingress_controller]), ports: Some(ports) },
                    NetworkPolicyIngressRule { from: Some(vec![same_namespace.clone()]), ports: None },
                ]),
                egress: Some(vec![
                    NetworkPolicyEgressRule { to: Some(vec![same_namespace]), ports: None },
                    NetworkPolicyEgressRule { to: Some(vec![cluster_dns]), ports: Some(dns) },
                ]),
            }),
        },
    )
}

/// The service's pods, and only them, may reach the external endpoints it declares in the
/// catalog, at the addresses and ports the configuration gives (none configured: no policy).
fn egress_policy(
    tenant: &Tenant,
    org: &Org,
    ns: &str,
    service: &Service,
    cluster: &ClusterConfig,
) -> Option<RenderedObject> {
    let rules: Vec<NetworkPolicyEgressRule> = service
        .deployment
        .egress
        .iter()
        .filter_map(|name| cluster.egress.get(name))
        .map(|endpoint| NetworkPolicyEgressRule {
            to: Some(
                endpoint
                    .cidrs
                    .iter()
                    .map(|cidr| NetworkPolicyPeer {
                        ip_block: Some(IPBlock { cidr: cidr.clone(), except: None }),
                        ..NetworkPolicyPeer::default()
                    })
                    .collect(),
            ),
            ports: Some(
                endpoint
                    .ports
                    .iter()
                    .map(|port| NetworkPolicyPort {
                        port: Some(IntOrString::Int(i32::from(*port))),
                        protocol: Some("TCP".into()),
                        ..NetworkPolicyPort::default()
                    })
                    .collect(),
            ),
        })
        .collect();
    if rules.is_empty() {
        return None;
    }
    let name = format!("{}-egress", service.code);
    let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), service.code.clone())]);
    Some(object(
        &name,
        NetworkPolicy {
            metadata: meta(&name, Some(ns), labels(tenant, org, Some(&service.code))),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector { match_labels: Some(selector), ..LabelSelector::default() }),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(rules),
                ingress: None,
            }),
        },
    ))
}

/// Where a container finds its service's credentials, one file per key.
pub const SECRETS_PATH: &str = "/run/secrets";

/// The name of a service's Secret.
pub fn credentials_name(service: &str) -> String {
    format!("{service}-credentials")
}

/// One Secret per service, holding its `password`. `data`, not `stringData`: under
/// server-side apply a key of `stringData` is never owned, so one removed from the
/// rendered Secret would stay in the live one (kubernetes#108008).
fn credentials(tenant: &Tenant, org: &Org, ns: &str, service: &Service, seed: &str) -> RenderedObject {
    let name = credentials_name(&service.code);
    let password = ByteString(credential(seed, &service.code).into_bytes());
    object(
        &name,
        Secret {
            metadata: meta(&name, Some(ns), labels(tenant, org, Some(&service.code))),
            data: Some(BTreeMap::from([("password".to_string(), password)])),
            type_: Some("Opaque".into()),
            ..Secret::default()
        },
    )
}

fn volume_claim(tenant: &Tenant, org: &Org, ns: &str, service: &Service, cluster: &ClusterConfig) -> RenderedObject {
    let name = volume_name(&service.code);
    object(
        &name,
        PersistentVolumeClaim {
            metadata: meta(&name, Some(ns), labels(tenant, org, Some(&service.code))),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: cluster.storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(quantities(&[(
                        "storage",
                        format!("{}Gi", service.deployment.storage_gib(tenant.accounts)),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        },
    )
}

fn deployment(tenant: &Tenant, org: &Org, ns: &str, service: &Service, k: u64, replicas: i32) -> RenderedObject {
    let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), service.code.clone())]);
    let d = &service.deployment;
    // The root file system is read-only (Pod Security « restricted » hardening): scratch
    // space is an emptyDir on /tmp, data the service's volume on /data.
    let mut volumes =
        vec![Volume { name: "tmp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }];
    let mut mounts = vec![VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..VolumeMount::default() }];
    // The service's own credentials, and only them, as read-only files in /run/secrets.
    volumes.push(Volume {
        name: "credentials".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(credentials_name(&service.code)),
            default_mode: Some(0o400),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    });
    mounts.push(VolumeMount {
        name: "credentials".into(),
        mount_path: SECRETS_PATH.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    });
    if d.needs_storage() {
        let claim = PersistentVolumeClaimVolumeSource { claim_name: volume_name(&service.code), ..Default::default() };
        volumes.push(Volume { name: "data".into(), persistent_volume_claim: Some(claim), ..Volume::default() });
        mounts.push(VolumeMount { name: "data".into(), mount_path: "/data".into(), ..VolumeMount::default() });
    }
    let container = Container {
        name: service.code.clone(),
        image: Some(d.image_ref()),
        ports: Some(vec![ContainerPort { container_port: d.port as i32, ..ContainerPort::default() }]),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[
                ("cpu", format!("{}m", u64::from(d.cpu_millicores_per_1000) * k)),
                ("memory", format!("{}Mi", u64::from(d.memory_mib_per_1000) * k)),
            ])),
            limits: Some(quantities(&[
                ("cpu", format!("{}m", u64::from(d.cpu_millicores_per_1000) * k * 2)),
                ("memory", format!("{}Mi", u64::from(d.memory_mib_per_1000) * k * 2)),
            ])),
            ..ResourceRequirements::default()
        }),
        volume_mounts: Some(mounts),
        security_context: Some(restricted_container()),
        // Up once its health path answers: ready to serve, alive, started within its time.
        startup_probe: Some(probe(d, 5, d.startup_seconds().div_ceil(5).max(1) as i32)),
        readiness_probe: Some(probe(d, 10, 3)),
        liveness_probe: Some(probe(d, 20, 3)),
        ..Container::default()
    };
    object(
        &service.code,
        Deployment {
            metadata: meta(&service.code, Some(ns), workload_labels(tenant, org, service)),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(workload_labels(tenant, org, service)),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        volumes: Some(volumes),
                        automount_service_account_token: Some(false),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            seccomp_profile: Some(runtime_default()),
                            ..PodSecurityContext::default()
                        }),
                        ..PodSpec::default()
                    }),
                },
                // A ReadWriteOnce volume cannot be mounted by the old and the new pod at once.
                strategy: d
                    .needs_storage()
                    .then(|| DeploymentStrategy { type_: Some("Recreate".into()), ..DeploymentStrategy::default() }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        },
    )
}

/// An HTTP probe of the service's health path, every `period` seconds, failed after `failures`.
fn probe(d: &catalog::Deployment, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(d.probe_path().to_string()),
            port: IntOrString::Int(d.port as i32),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }
}

/// What Pod Security « restricted » asks of every container, and a read-only root.
fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

fn kube_service(tenant: &Tenant, org: &Org, ns: &str, service: &Service) -> RenderedObject {
    object(
        &service.code,
        KubeService {
            metadata: meta(&service.code, Some(ns), labels(tenant, org, Some(&service.code))),
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app.kubernetes.io/name".to_string(), service.code.clone())])),
                ports: Some(vec![ServicePort {
                    port: service.deployment.port as i32,
                    target_port: Some(IntOrString::Int(service.deployment.port as i32)),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..KubeService::default()
        },
    )
}

fn ingress(tenant: &Tenant, org: &Org, ns: &str, services: &[&Service], cluster: &ClusterConfig) -> RenderedObject {
    let paths = services
        .iter()
        .map(|s| HTTPIngressPath {
            path: Some(s.deployment.ingress_path.clone()),
            path_type: "Prefix".into(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: s.code.clone(),
                    port: Some(ServiceBackendPort {
                        number: Some(s.deployment.port as i32),
                        ..ServiceBackendPort::default()
                    }),
                }),
                ..IngressBackend::default()
            },
        })
        .collect();
    let mut metadata = meta("ent", Some(ns), labels(tenant, org, None));
    if let Some(issuer) = &cluster.cert_manager_issuer {
        metadata.annotations = Some(BTreeMap::from([("cert-manager.io/cluster-issuer".to_string(), issuer.clone())]));
    }
    object(
        "ent",
        Ingress {
            metadata,
            spec: Some(IngressSpec {
                ingress_class_name: cluster.ingress_class.clone(),
                tls: Some(vec![IngressTLS {
                    hosts: Some(vec![tenant.hostname.clone()]),
                    secret_name: Some(format!("ent-{}-tls", tenant.slug)),
                }]),
                rules: Some(vec![IngressRule {
                    host: Some(tenant.hostname.clone()),
                    http: Some(HTTPIngressRuleValue { paths }),
                }]),
                ..IngressSpec::default()
            }),
            ..Ingress::default()
        },
    )
}

/// The security measures the objects of a tenant put in place, as the Art. 30 register states
/// them: each one read from the objects [`render`] made, so the register says what is deployed
/// and nothing else (no backup, no log retention, no account deletion: none is rendered).
pub fn security_measures(objects: &[RenderedObject]) -> Vec<&'static str> {
    let of_kind = |kind: &'static str| objects.iter().filter(move |o| o.kind == kind);
    let mut out = Vec::new();
    if of_kind("Namespace").next().is_some() {
        out.push(MEASURE_NAMESPACE);
    }
    if of_kind("ResourceQuota").next().is_some() && of_kind("LimitRange").next().is_some() {
        out.push(MEASURE_QUOTAS);
    }
    let denies_both = |o: &RenderedObject| {
        let types = &o.manifest["spec"]["policyTypes"];
        o.manifest["spec"]["podSelector"] == serde_json::json!({})
            && ["Ingress", "Egress"].iter().all(|t| types.as_array().is_some_and(|a| a.iter().any(|v| v == t)))
    };
    if of_kind("NetworkPolicy").any(denies_both) {
        out.push(MEASURE_NETWORK);
    }
    if of_kind("NetworkPolicy").any(|o| o.name.ends_with("-egress")) {
        out.push(MEASURE_EGRESS);
    }
    if of_kind("Secret").next().is_some() {
        out.push(MEASURE_CREDENTIALS);
    }
    let restricted = |o: &RenderedObject| {
        let containers = &o.manifest["spec"]["template"]["spec"]["containers"];
        containers.as_array().is_some_and(|cs| {
            !cs.is_empty()
                && cs.iter().all(|c| {
                    let sc = &c["securityContext"];
                    sc["runAsNonRoot"] == true
                        && sc["readOnlyRootFilesystem"] == true
                        && sc["allowPrivilegeEscalation"] == false
                })
        })
    };
    let deployments: Vec<&RenderedObject> = of_kind("Deployment").collect();
    if !deployments.is_empty() && deployments.iter().all(|o| restricted(o)) {
        out.push(MEASURE_CONTAINERS);
    }
    let tls = |o: &RenderedObject| o.manifest["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty());
    if of_kind("Ingress").any(tls) {
        out.push(MEASURE_TLS);
    }
    out
}

/// The measures [`security_measures`] may state, one per kind of rendered object.
pub const MEASURE_NAMESPACE: &str = "Chaque ENT s'exécute dans un espace de noms Kubernetes qui lui est propre";
pub const MEASURE_QUOTAS: &str = "Quotas et limites de ressources (processeur, mémoire, stockage) propres à chaque ENT";
pub const MEASURE_NETWORK: &str =
    "Filtrage réseau par défaut en entrée et en sortie : seuls le contrôleur d'entrée du \
     cluster (vers les ports des services), les services du même ENT et le DNS du cluster sont autorisés";
pub const MEASURE_EGRESS: &str =
    "Sorties vers l'extérieur limitées, service par service, aux adresses et ports déclarés dans la configuration";
pub const MEASURE_CREDENTIALS: &str = "Identifiants techniques propres à chaque service de chaque ENT";
pub const MEASURE_CONTAINERS: &str = "Conteneurs sans privilèges : utilisateur non root, système de fichiers racine \
     en lecture seule, élévation de privilèges et capacités retirées, profil seccomp par défaut";
pub const MEASURE_TLS: &str = "Accès des utilisateurs en HTTPS (TLS) sur le nom d'hôte de l'ENT";

/// The objects as one multi-document YAML stream.
pub fn to_yaml(objects: &[RenderedObject]) -> String {
    objects.iter().map(|o| yaml::to_string(&o.manifest).expect("yaml")).collect::<Vec<_>>().join("---\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tenants::IdentitySource;
    use ent_platform::catalog::Catalog;
    use ent_platform::registry::{Degree, EtabType, OrgRef};
    use serde_json::json;

    fn school() -> Org {
        Org {
            etab_type: Some(EtabType::EcoleElementaire),
            degree: Some(Degree::D1),
            commune_code: Some("94034".into()),
            departement_code: Some("94".into()),
            academie_code: Some("24".into()),
            region_code: Some("11".into()),
            pupils: Some(250),
            ..Org::named("org-1", OrgKind::Etablissement, "0940176F", "Ecole élémentaire Robert Doisneau")
        }
    }

    fn tenant(status: Status, options: &[&str]) -> Tenant {
        let org = school();
        Tenant {
            id: "tenant-1".into(),
            slug: "doisneau".into(),
            organisation: OrgRef { id: org.id, kind: org.kind, code: org.code, name: org.name },
            hostname: "doisneau.ent.example.fr".into(),
            bouquet: "socle-1d".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            accounts: 1500,
            identity_source: IdentitySource::Educonnect,
            status,
            gate_override: None,
            convention_id: None,
            coverage_lapsed_at: None,
            coverage_uncovered: Vec::new(),
            vendor: None,
            host: None,
            provisioning_state: Default::default(),
            declared_by: None,
            destruction: None,
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn rendered(status: Status, options: &[&str]) -> Vec<RenderedObject> {
        let catalog = Catalog::load(None).unwrap();
        let t = tenant(status, options);
        let services = catalog.resolve(&t.bouquet, options).unwrap();
        render(&t, &school(), &services, "seed", &ClusterConfig::default())
    }

    /// The Secret of `service` of an active école tenant, as rendered (the fixture of the
    /// tests of what the `manifests` backend writes in its place: `sealed.rs`, `external.rs`).
    pub(crate) fn credentials_of(service: &str) -> RenderedObject {
        let name = credentials_name(service);
        let mut objects = rendered(Status::Active, &[]).into_iter();
        objects.find(|o| o.kind == "Secret" && o.name == name).expect("a rendered Secret")
    }

    #[test]
    fn the_security_measures_are_read_from_the_rendered_objects() {
        let active = security_measures(&rendered(Status::Active, &[]));
        assert_eq!(
            active,
            [MEASURE_NAMESPACE, MEASURE_QUOTAS, MEASURE_NETWORK, MEASURE_CREDENTIALS, MEASURE_CONTAINERS, MEASURE_TLS]
        );
        // No workload, no Ingress while archived: neither restricted containers nor TLS is claimed.
        let archived = security_measures(&rendered(Status::Archived, &[]));
        assert!(!archived.contains(&MEASURE_TLS) && !archived.contains(&MEASURE_CONTAINERS), "{archived:?}");
        assert!(security_measures(&rendered(Status::Requested, &[])).is_empty());
        // Without its default-deny policy, no filtering is claimed.
        let mut objects = rendered(Status::Active, &[]);
        objects.retain(|o| o.kind != "NetworkPolicy");
        assert!(!security_measures(&objects).contains(&MEASURE_NETWORK));
    }

    fn names(objects: &[RenderedObject]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = objects.iter().map(|o| (o.kind.clone(), o.name.clone())).collect();
        v.sort();
        v
    }

    /// What the API server's Pod Security admission checks at level « restricted »
    /// (v1.29 to v1.31) on one pod spec, as rendered JSON: the broken rules.
    fn restricted_violations(pod: &serde_json::Value) -> Vec<String> {
        let mut broken = Vec::new();
        let pod_non_root = pod["securityContext"]["runAsNonRoot"] == true;
        let pod_seccomp = pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault";
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            if pod[key] == true {
                broken.push(key.to_string());
            }
        }
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            let allowed = ["configMap", "emptyDir", "persistentVolumeClaim", "projected", "secret", "ephemeral"];
            let kinds: Vec<&String> = volume.as_object().unwrap().keys().filter(|k| *k != "name").collect();
            if !kinds.iter().all(|k| allowed.contains(&k.as_str())) {
                broken.push(format!("volume type {kinds:?}"));
            }
        }
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            if sc["allowPrivilegeEscalation"] != false {
                broken.push(format!("{}: allowPrivilegeEscalation", c["name"]));
            }
            if sc["privileged"] == true {
                broken.push(format!("{}: privileged", c["name"]));
            }
            let drops = sc["capabilities"]["drop"].as_array().cloned().unwrap_or_default();
            if !drops.iter().any(|d| d == "ALL") {
                broken.push(format!("{}: capabilities.drop ALL", c["name"]));
            }
            let adds = sc["capabilities"]["add"].as_array().cloned().unwrap_or_default();
            if adds.iter().any(|a| a != "NET_BIND_SERVICE") {
                broken.push(format!("{}: capabilities.add", c["name"]));
            }
            if !(sc["runAsNonRoot"] == true || (pod_non_root && sc["runAsNonRoot"] != false)) {
                broken.push(format!("{}: runAsNonRoot", c["name"]));
            }
            if sc["runAsUser"] == 0 {
                broken.push(format!("{}: runAsUser 0", c["name"]));
            }
            let seccomp = &sc["seccompProfile"]["type"];
            if !(seccomp == "RuntimeDefault" || seccomp == "Localhost" || (pod_seccomp && seccomp.is_null())) {
                broken.push(format!("{}: seccompProfile", c["name"]));
            }
            if c["ports"].as_array().into_iter().flatten().any(|p| !p["hostPort"].is_null()) {
                broken.push(format!("{}: hostPort", c["name"]));
            }
        }
        broken
    }

    #[test]
    fn every_pod_meets_pod_security_restricted_in_every_state() {
        for status in Status::ALL {
            let objects = rendered(status, &["visio"]);
            for o in objects.iter().filter(|o| o.kind == "Namespace") {
                let labels = &o.manifest["metadata"]["labels"];
                assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted", "{status:?}");
            }
            for o in objects.iter().filter(|o| o.kind == "Deployment") {
                let pod = &o.manifest["spec"]["template"]["spec"];
                assert_eq!(restricted_violations(pod), Vec::<String>::new(), "{status:?} {}", o.name);
                assert_eq!(pod["automountServiceAccountToken"], false, "{}", o.name);
                let container = &pod["containers"][0];
                assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true, "{}", o.name);
                let mounts: Vec<&str> = container["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["mountPath"].as_str().unwrap())
                    .collect();
                assert!(mounts.contains(&"/tmp"), "{}: scratch space on a read-only root", o.name);
                let rwo = mounts.contains(&"/data");
                let strategy = o.manifest["spec"]["strategy"]["type"].as_str();
                assert_eq!(strategy == Some("Recreate"), rwo, "{}: a RWO volume is never mounted twice", o.name);
            }
        }
        // The checker itself refuses what the renderer used to produce.
        let bare = serde_json::json!({ "containers": [{ "name": "portail", "image": "x" }] });
        assert_eq!(restricted_violations(&bare).len(), 4, "{:?}", restricted_violations(&bare));
    }

    #[test]
    fn the_quota_holds_every_pod_and_one_surge_pod_per_rolling_deployment() {
        let objects = rendered(Status::Active, &["visio"]);
        let number =
            |q: &serde_json::Value, unit: &str| q.as_str().unwrap().trim_end_matches(unit).parse::<u64>().unwrap();
        let (mut cpu, mut memory) = (0, 0);
        for o in objects.iter().filter(|o| o.kind == "Deployment") {
            let pods = if o.manifest["spec"]["strategy"]["type"] == "Recreate" { 1 } else { 2 };
            let requests = &o.manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"];
            cpu += number(&requests["cpu"], "m") * pods;
            memory += number(&requests["memory"], "Mi") * pods;
        }
        let quota = objects.iter().find(|o| o.kind == "ResourceQuota").unwrap();
        let hard = &quota.manifest["spec"]["hard"];
        assert!(cpu > 0 && number(&hard["requests.cpu"], "m") >= cpu, "{hard} < {cpu}m");
        assert!(number(&hard["requests.memory"], "Mi") >= memory, "{hard} < {memory}Mi");
    }

    #[test]
    fn the_cluster_settings_name_the_ingress_class_issuer_controller_and_storage() {
        let cluster = ClusterConfig {
            ingress_class: Some("traefik".into()),
            ingress_namespace: "traefik-system".into(),
            cert_manager_issuer: Some("letsencrypt".into()),
            storage_class: Some("ceph-rbd".into()),
            ..ClusterConfig::default()
        };
        let services = Catalog::load(None).unwrap();
        let services = services.resolve("socle-1d", &[]).unwrap();
        let objects = render(&tenant(Status::Active, &[]), &school(), &services, "seed", &cluster);
        let of = |kind: &'static str| objects.iter().filter(move |o| o.kind == kind).map(|o| &o.manifest);
        let ingress = of("Ingress").next().unwrap();
        assert_eq!(ingress["spec"]["ingressClassName"], "traefik");
        assert_eq!(ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"], "letsencrypt");
        assert!(of("PersistentVolumeClaim").all(|pvc| pvc["spec"]["storageClassName"] == "ceph-rbd"));
        assert!(of("PersistentVolumeClaim").count() > 0);
        let policy = of("NetworkPolicy").next().unwrap().to_string();
        assert!(policy.contains("traefik-system") && !policy.contains("ingress-nginx"), "{policy}");
        // By default: the nginx class, no issuer, the cluster's default storage class.
        let default = rendered(Status::Active, &[]);
        let ingress = &default.iter().find(|o| o.kind == "Ingress").unwrap().manifest;
        assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
        assert!(ingress["metadata"]["annotations"].is_null());
    }

    #[test]
    fn every_container_is_probed_on_its_health_path() {
        let catalog = Catalog::load(None).unwrap();
        for o in rendered(Status::Active, &["visio"]).iter().filter(|o| o.kind == "Deployment") {
            let service = catalog.service(&o.name).unwrap();
            let c = &o.manifest["spec"]["template"]["spec"]["containers"][0];
            for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
                assert_eq!(c[kind]["httpGet"]["path"], service.deployment.probe_path(), "{} {kind}", o.name);
                assert_eq!(c[kind]["httpGet"]["port"], service.deployment.port, "{} {kind}", o.name);
            }
            let startup = &c["startupProbe"];
            let allowed = startup["periodSeconds"].as_u64().unwrap() * startup["failureThreshold"].as_u64().unwrap();
            assert!(allowed >= u64::from(service.deployment.startup_seconds()), "{}: {startup}", o.name);
        }
    }

    #[test]
    fn objects_carry_the_recommended_labels() {
        let objects = rendered(Status::Active, &[]);
        for o in &objects {
            assert_eq!(o.manifest["metadata"]["labels"]["app.kubernetes.io/instance"], "doisneau", "{}", o.name);
        }
        for o in objects.iter().filter(|o| o.kind == "Deployment") {
            for labels in [&o.manifest["metadata"]["labels"], &o.manifest["spec"]["template"]["metadata"]["labels"]] {
                assert_eq!(labels["app.kubernetes.io/component"], o.name.as_str());
                let version = labels["app.kubernetes.io/version"].as_str().unwrap_or_default();
                let image = o.manifest["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
                assert!(!version.is_empty() && image.ends_with(&format!(":{version}")), "{image} {labels}");
            }
        }
    }

    #[test]
    fn dns_goes_to_the_cluster_dns_only_over_udp_and_tcp() {
        let objects = rendered(Status::Active, &[]);
        let policy = objects.iter().find(|o| o.kind == "NetworkPolicy").unwrap();
        let egress = policy.manifest["spec"]["egress"].as_array().unwrap();
        let dns: Vec<&serde_json::Value> =
            egress.iter().filter(|rule| rule["ports"].to_string().contains("53")).collect();
        assert_eq!(dns.len(), 1, "{egress:?}");
        let protocols: Vec<&str> =
            dns[0]["ports"].as_array().unwrap().iter().map(|p| p["protocol"].as_str().unwrap()).collect();
        assert_eq!(protocols, ["UDP", "TCP"]);
        let peer = &dns[0]["to"][0];
        assert_eq!(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "kube-system");
        assert_eq!(peer["podSelector"]["matchLabels"]["k8s-app"], "kube-dns");
        assert!(egress.iter().all(|rule| !rule["to"].is_null()), "no egress rule open to any destination");
    }

    #[test]
    fn every_object_is_labelled_with_the_tenant_and_its_school() {
        let objects = rendered(Status::Active, &[]);
        assert_eq!(objects[0].kind, "Namespace");
        assert_eq!(objects[0].manifest["metadata"]["name"], "ent-doisneau");
        for o in &objects {
            let labels = &o.manifest["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/managed-by"], "entcp", "{}", o.name);
            assert_eq!(labels[TENANT_LABEL], "tenant-1");
            assert_eq!(labels["entcp.education.fr/uai"], "0940176F");
            assert!(o.manifest["apiVersion"].is_string() && o.manifest["kind"] == o.kind.as_str());
        }
        let yaml = to_yaml(&objects);
        assert!(yaml.contains("kind: Ingress") && yaml.contains("doisneau.ent.example.fr"));
    }

    #[test]
    fn an_option_adds_exactly_the_objects_of_its_service() {
        let base = names(&rendered(Status::Active, &[]));
        let with_visio = names(&rendered(Status::Active, &["visio"]));
        let added: Vec<&(String, String)> = with_visio.iter().filter(|o| !base.contains(o)).collect();
        assert!(!added.is_empty());
        assert!(added.iter().all(|(_, name)| name.starts_with("visio")), "{added:?}");
        assert!(added.iter().any(|(kind, _)| kind == "Deployment") && added.iter().any(|(kind, _)| kind == "Service"));
        assert!(base.iter().all(|o| with_visio.contains(o)), "removing the option prunes only its objects");
    }

    #[test]
    fn suspension_scales_to_zero_and_decommissioning_keeps_only_the_data() {
        let suspended = rendered(Status::Suspended, &[]);
        let deployments: Vec<&RenderedObject> = suspended.iter().filter(|o| o.kind == "Deployment").collect();
        assert!(!deployments.is_empty());
        assert!(deployments.iter().all(|d| d.manifest["spec"]["replicas"] == 0));
        let gone = rendered(Status::Decommissioning, &[]);
        assert!(gone.iter().all(|o| !matches!(o.kind.as_str(), "Deployment" | "Service" | "Ingress")));
        assert!(gone.iter().any(|o| o.kind == "Namespace") && gone.iter().any(|o| o.kind == "Secret"));
        assert!(rendered(Status::Requested, &[]).is_empty());
        assert!(rendered(Status::Purged, &[]).is_empty());
    }

    #[test]
    fn each_deployment_mounts_only_its_services_secret_as_read_only_files() {
        let objects = rendered(Status::Active, &["visio"]);
        let secrets: Vec<&str> = objects.iter().filter(|o| o.kind == "Secret").map(|o| o.name.as_str()).collect();
        let deployments: Vec<&RenderedObject> = objects.iter().filter(|o| o.kind == "Deployment").collect();
        assert_eq!(secrets.len(), deployments.len(), "one Secret per service: {secrets:?}");
        for o in deployments {
            let pod = &o.manifest["spec"]["template"]["spec"];
            let container = &pod["containers"][0];
            assert!(container["envFrom"].is_null() && container["env"].is_null(), "{}: no credential as env", o.name);
            let from_secrets: Vec<&serde_json::Value> =
                pod["volumes"].as_array().unwrap().iter().filter(|v| !v["secret"].is_null()).collect();
            assert_eq!(from_secrets.len(), 1, "{}", o.name);
            let volume = from_secrets[0];
            assert_eq!(volume["secret"]["secretName"], format!("{}-credentials", o.name));
            assert_eq!(volume["secret"]["defaultMode"], 0o400);
            assert!(secrets.contains(&format!("{}-credentials", o.name).as_str()));
            let mount = container["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == volume["name"]);
            let mount = mount.unwrap_or_else(|| panic!("{}: secret volume not mounted", o.name));
            assert_eq!((&mount["mountPath"], &mount["readOnly"]), (&json!("/run/secrets"), &json!(true)), "{}", o.name);
        }
    }

    #[test]
    fn credentials_are_stable_and_never_the_seed() {
        let a = rendered(Status::Active, &[]);
        let b = rendered(Status::Active, &[]);
        assert_eq!(a, b, "rendering is pure");
        let mut values = Vec::new();
        for secret in a.iter().filter(|o| o.kind == "Secret") {
            assert!(secret.manifest["stringData"].is_null(), "server-side apply owns the keys of data only");
            values.extend(
                secret.manifest["data"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|v| String::from_utf8(serde_json::from_value::<ByteString>(v.clone()).unwrap().0).unwrap()),
            );
        }
        assert!(!values.is_empty() && values.iter().all(|v| v.len() == 32 && v != "seed"), "{values:?}");
    }
}
