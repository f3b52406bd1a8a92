//! The `kube` backend: server-side apply of a tenant's objects to a cluster
//! (`PATCH … ?fieldManager=entcp&force=true`, `application/apply-patch+yaml`),
//! Namespace first (never one made by someone else), fitted to the live volumes; then
//! pruning of the objects carrying the tenant's label that are no longer desired (a 404
//! on delete means already gone), a volume kept and marked retained instead; then the
//! Deployments' status read back into an observation.

use super::backend::{BackendError, Observation, Observed};
use super::quantity;
use super::render::{namespace_of, MANAGED_BY, RETAINED_LABEL, TENANT_LABEL};
use super::RenderedObject;
use crate::tenants::Tenant;
use ent_kernel::config::KubeConfig;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota, Secret, Service as KubeService,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::runtime::Reconciler;
use ent_kernel::config::ReconcileConfig;

pub struct KubeBackend {
    client: Client,
    field_manager: String,
    limits: Limits,
}

/// What every request to the API server goes through: the process's rate limit,
/// a timeout per attempt, a few retries of what a server says is transient.
struct Limits {
    reconciler: Arc<Reconciler>,
    timeout: Duration,
    retries: u32,
}

/// Sent with every request, so that the API server's audit log names the control plane.
pub const USER_AGENT: &str = concat!("entcp/", env!("CARGO_PKG_VERSION"));

/// The kinds `render` produces, in apply order: the Namespace first, then what
/// constrains and configures the namespace, then storage, then workloads and their exposure.
fn kinds() -> [(&'static str, ApiResource); 10] {
    [
        ("Namespace", ApiResource::erase::<Namespace>(&())),
        ("ResourceQuota", ApiResource::erase::<ResourceQuota>(&())),
        ("LimitRange", ApiResource::erase::<LimitRange>(&())),
        ("NetworkPolicy", ApiResource::erase::<NetworkPolicy>(&())),
        ("ConfigMap", ApiResource::erase::<ConfigMap>(&())),
        ("Secret", ApiResource::erase::<Secret>(&())),
        ("PersistentVolumeClaim", ApiResource::erase::<PersistentVolumeClaim>(&())),
        ("Service", ApiResource::erase::<KubeService>(&())),
        ("Deployment", ApiResource::erase::<Deployment>(&())),
        ("Ingress", ApiResource::erase::<Ingress>(&())),
    ]
}

/// The RBAC verbs of the calls this backend makes, next to them: a server-side apply
/// (and its dry-run) is a PATCH that creates a missing object, so it needs `create` and
/// `patch`; the prune and the read-back list by label; the prune deletes.
pub const APPLY_VERBS: [&str; 2] = ["create", "patch"];
pub const LIST_VERBS: [&str; 1] = ["list"];
pub const DELETE_VERBS: [&str; 1] = ["delete"];

/// One Kubernetes RBAC `PolicyRule` (the fields a ClusterRole or Role lists).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

/// The least RBAC the backend needs: `cluster` over cluster-scoped kinds (the tenants'
/// Namespaces), `namespaced` inside the tenants' `ent-*` namespaces. Derived from
/// [`kinds`] (what `apply` sends and prunes) and the verbs above; `entctl tenants rbac`
/// prints it and the terraform module grants exactly it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rbac {
    pub cluster: Vec<PolicyRule>,
    pub namespaced: Vec<PolicyRule>,
    /// The watch on the owned Deployments (`entctl serve`'s reconciler and `entctl operator`),
    /// across namespaces by label: bound cluster-wide.
    pub watch: Vec<PolicyRule>,
    /// What `entctl operator` needs besides: watch the `EntTenant` resources, add and
    /// remove its finalizer (a patch of the resource), write their `status` subresource.
    pub operator: Vec<PolicyRule>,
}

/// The verbs of the watches: a list, then a watch from its `resourceVersion`.
pub const WATCH_VERBS: [&str; 2] = ["list", "watch"];

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| items.iter().map(|i| i.to_string()).collect();
    PolicyRule { api_groups: vec![group.to_string()], resources: strings(resources), verbs: strings(verbs) }
}

pub fn rbac() -> Rbac {
    let mut verbs: Vec<String> =
        APPLY_VERBS.iter().chain(&LIST_VERBS).chain(&DELETE_VERBS).map(|v| v.to_string()).collect();
    verbs.sort();
    let mut cluster = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut namespaced = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (kind, resource) in kinds() {
        let scope = if kind == "Namespace" { &mut cluster } else { &mut namespaced };
        scope.entry(resource.group.clone()).or_default().push(resource.plural.clone());
    }
    let rules = |groups: std::collections::BTreeMap<String, Vec<String>>| {
        groups
            .into_iter()
            .map(|(group, mut resources)| {
                resources.sort();
                PolicyRule { api_groups: vec![group], resources, verbs: verbs.clone() }
            })
            .collect()
    };
    let deployments = ApiResource::erase::<Deployment>(&());
    let tenants = super::operator::resource();
    let status = format!("{}/status", tenants.plural);
    Rbac {
        cluster: rules(cluster),
        namespaced: rules(namespaced),
        watch: vec![rule(&deployments.group, &[deployments.plural.as_str()], &WATCH_VERBS)],
        operator: vec![
            rule(&tenants.group, &[tenants.plural.as_str()], &["get", "list", "patch", "watch"]),
            rule(&tenants.group, &[status.as_str()], &["patch"]),
        ],
    }
}

fn rank(kind: &str) -> usize {
    kinds().iter().position(|(k, _)| *k == kind).unwrap_or(usize::MAX)
}

/// The label selector of everything the control plane made for this tenant.
fn selector(tenant: &Tenant) -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY},{TENANT_LABEL}={}", tenant.id)
}

/// A failed call, with the API server's Status when there is one, else the whole
/// chain of causes (« client error (Connect) : tcp connect error : Connection refused »).
fn failure(verb: &'static str, kind: &str, at: &str, e: kube::Error) -> BackendError {
    let (kind, at) = (kind.to_string(), at.to_string());
    match e {
        kube::Error::Api(s) => BackendError::Api { verb, kind, at, code: s.code, reason: s.reason, message: s.message },
        other => BackendError::Request { verb, kind, at, detail: with_causes(&other) },
    }
}

/// An error and its sources, each once.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(" : ")
}

/// What a server says will pass: too many requests, unavailable, gateway timeout;
/// and a connection that could not be made or was cut (not a request left unanswered).
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The pause before retry `attempt` (1, 2, …): 200 ms doubling, at most 5 s.
fn retry_delay(attempt: u32) -> Duration {
    (Duration::from_millis(200) * 2u32.saturating_pow(attempt.saturating_sub(1))).min(Duration::from_secs(5))
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl KubeBackend {
    /// A client from the configured kubeconfig (and context), else the standard
    /// inference: in-cluster service account, then `KUBECONFIG` / `~/.kube/config`.
    /// The client's own retries are off: [`Self::send`] retries, a capped number of times.
    pub async fn from_config(
        config: &KubeConfig,
        limits: &ReconcileConfig,
        reconciler: Arc<Reconciler>,
    ) -> Result<KubeBackend, BackendError> {
        let options = KubeConfigOptions { context: config.context.clone(), ..KubeConfigOptions::default() };
        let missing = |e: &dyn std::fmt::Display| BackendError::ClusterConfig(e.to_string());
        let kube_config = match &config.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| BackendError::Kubeconfig {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                kube::Config::from_custom_kubeconfig(file, &options).await.map_err(|e| missing(&e))?
            }
            None if config.context.is_some() => {
                kube::Config::from_kubeconfig(&options).await.map_err(|e| missing(&e))?
            }
            None => kube::Config::infer().await.map_err(|e| missing(&e))?,
        };
        let mut kube_config = kube_config;
        kube_config.default_retry = false;
        kube_config.connect_timeout = Some(limits.request_timeout());
        kube_config.headers.push((axum::http::header::USER_AGENT, axum::http::HeaderValue::from_static(USER_AGENT)));
        // kube's TLS is built on ring; when another crate of the build also enables aws-lc-rs
        // (the browser tests' WebDriver client does), rustls can no longer pick one by itself.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::try_from(kube_config).map_err(|e| BackendError::Client(with_causes(&e)))?;
        Ok(KubeBackend {
            client,
            field_manager: config.field_manager.clone(),
            limits: Limits { reconciler, timeout: limits.request_timeout(), retries: limits.request_retries },
        })
    }

    /// Sends one request (`call` makes it): in its turn under the rate limit, failing
    /// after the per-request timeout, retried a few times when the failure is transient.
    async fn send<T, F, Fut>(&self, verb: &'static str, kind: &str, at: &str, call: F) -> Result<T, BackendError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        let mut attempt = 0;
        loop {
            self.limits.reconciler.limiter.acquire().await;
            self.limits.reconciler.count_request();
            let Ok(result) = tokio::time::timeout(self.limits.timeout, call()).await else {
                let detail = format!("pas de réponse en {} s (délai par requête)", self.limits.timeout.as_secs_f64());
                return Err(BackendError::Request { verb, kind: kind.to_string(), at: at.to_string(), detail });
            };
            match result {
                Ok(value) => return Ok(value),
                Err(e) if transient(&e) && attempt < self.limits.retries => {
                    attempt += 1;
                    tracing::debug!(verb, kind, at, attempt, error = %with_causes(&e), "transient failure: retried");
                    tokio::time::sleep(retry_delay(attempt)).await;
                }
                Err(e) => return Err(failure(verb, kind, at, e)),
            }
        }
    }

    /// The client (configured, with the control plane's `User-Agent`), for the watches.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Deletes an object (a 404 means already gone); whether it is still there, being
    /// deleted (finalizers pending: a `deletionTimestamp`).
    async fn delete(
        &self,
        resource: &ApiResource,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, BackendError> {
        let api = self.api(resource, namespace);
        let at = format!("{}/{name}", namespace.unwrap_or(""));
        let api = &api;
        self.send("suppression de", kind, &at, move || async move {
            match api.delete(name, &DeleteParams::background()).await {
                Err(e) if is_not_found(&e) => Ok(false),
                Ok(either) => Ok(either.left().is_some_and(|o| o.metadata.deletion_timestamp.is_some())),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn list(
        &self,
        resource: &ApiResource,
        kind: &str,
        tenant: &Tenant,
        namespace: Option<&str>,
    ) -> Result<Vec<DynamicObject>, BackendError> {
        let params = ListParams::default().labels(&selector(tenant));
        let api = self.api(resource, namespace);
        let list = self.send("lecture des", kind, namespace.unwrap_or("(cluster)"), || api.list(&params)).await?;
        Ok(list.items)
    }

    /// Applies the desired objects, prunes the others, reads the Deployments back.
    /// A volume no longer desired (its service removed) is kept, marked retained, until
    /// the namespace goes at the purge: removing an option never deletes its data.
    pub async fn apply(&self, tenant: &Tenant, objects: &[RenderedObject]) -> Result<Observation, BackendError> {
        if objects.is_empty() {
            return self.remove(tenant).await;
        }
        let namespace = objects
            .iter()
            .find(|o| o.kind == "Namespace")
            .map(|o| o.name.clone())
            .unwrap_or_else(|| namespace_of(&tenant.slug));
        let exists = self.own_namespace(tenant, &namespace).await?;
        let claims =
            if exists { self.list_kind("PersistentVolumeClaim", tenant, &namespace).await? } else { Vec::new() };
        let fitted = fit_to_volumes(objects, &claims);
        if exists {
            self.switch_strategies(tenant, &namespace, &fitted.objects).await?;
        }
        let mut ordered: Vec<&RenderedObject> = fitted.objects.iter().collect();
        ordered.sort_by_key(|o| rank(&o.kind));
        let params = PatchParams::apply(&self.field_manager).force();
        if exists && fitted.storage_grows {
            // The quota admission checks a volume's dry-run against the live quota: raise it first.
            let quota: Vec<&RenderedObject> = ordered.iter().copied().filter(|o| o.kind == "ResourceQuota").collect();
            self.dry_run(&quota, &namespace, &params).await?;
            self.write(&quota, &namespace, &params).await?;
        }
        self.dry_run(&ordered, &namespace, &params).await?;
        self.write(&ordered, &namespace, &params).await?;
        let desired: HashSet<(&str, &str)> =
            fitted.objects.iter().map(|o| (o.kind.as_str(), o.name.as_str())).collect();
        let mut deployments = Vec::new();
        for (kind, resource) in kinds().iter().skip(1).rev() {
            for live in self.list(resource, kind, tenant, Some(&namespace)).await? {
                let name = live.metadata.name.clone().unwrap_or_default();
                if desired.contains(&(*kind, name.as_str())) {
                    if *kind == "Deployment" {
                        deployments.push(live);
                    }
                } else if *kind == "PersistentVolumeClaim" {
                    self.retain(&live, &namespace, &params).await?;
                } else {
                    self.delete(resource, kind, Some(&namespace), &name).await?;
                }
            }
        }
        Ok(observation(objects, &deployments))
    }

    /// Nothing desired: the tenant's namespaces go, and everything in them with them. A
    /// namespace already being deleted (`Terminating`: finalizers) is left to finish: a second
    /// DELETE would get 409 Conflict, taken as done too. Then listed again: the tenant is
    /// removed once the cluster lists none of them ([`Self::namespaces_left`]), else removing.
    async fn remove(&self, tenant: &Tenant) -> Result<Observation, BackendError> {
        let (_, namespaces) = &kinds()[0];
        let live = self.list(namespaces, "Namespace", tenant, None).await?;
        if live.is_empty() {
            return Ok(left(0));
        }
        for ns in live.into_iter().filter(|ns| ns.metadata.deletion_timestamp.is_none()) {
            let name = ns.metadata.name.unwrap_or_default();
            match self.delete(namespaces, "Namespace", None, &name).await {
                Ok(_) | Err(BackendError::Api { code: 409, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.namespaces_left(tenant).await
    }

    /// Whether the cluster still lists any of the tenant's namespaces, whose deletion was asked:
    /// none is the cluster's confirmation that they are gone, with their volumes
    /// ([`Observed::Removed`]); some are still being deleted ([`Observed::Removing`]).
    async fn namespaces_left(&self, tenant: &Tenant) -> Result<Observation, BackendError> {
        let (_, namespaces) = &kinds()[0];
        Ok(left(self.list(namespaces, "Namespace", tenant, None).await?.len()))
    }

    /// Whether the tenant's namespace exists; an error when it exists without the tenant's
    /// label (made by someone else: never taken over, so never deleted at the purge either).
    async fn own_namespace(&self, tenant: &Tenant, namespace: &str) -> Result<bool, BackendError> {
        let (_, resource) = &kinds()[0];
        let params = ListParams::default().fields(&format!("metadata.name={namespace}"));
        let api = self.api(resource, None);
        let list = self.send("lecture des", "Namespace", namespace, || api.list(&params)).await?;
        let Some(live) = list.items.into_iter().next() else { return Ok(false) };
        let owner = live.metadata.labels.as_ref().and_then(|l| l.get(TENANT_LABEL));
        if owner != Some(&tenant.id) {
            return Err(BackendError::NamespaceTaken(namespace.to_string()));
        }
        Ok(true)
    }

    /// The tenant's live objects of one kind in its namespace.
    async fn list_kind(
        &self,
        kind: &str,
        tenant: &Tenant,
        namespace: &str,
    ) -> Result<Vec<DynamicObject>, BackendError> {
        let Some((_, resource)) = kinds().into_iter().find(|(k, _)| *k == kind) else {
            return Err(BackendError::UnsupportedKind(kind.to_string()));
        };
        self.list(&resource, kind, tenant, Some(namespace)).await
    }

    /// Switches the strategy of a live Deployment whose volume came or went, by a merge patch
    /// before the apply: one moving to `Recreate` (its service got a volume) still holds the
    /// `rollingUpdate` the API server defaulted, owned by no manager, so server-side apply
    /// keeps it and the merged object is invalid (422): removed. One that lost its last volume
    /// (rendered without a strategy) would stay `Recreate`, its old pod stopped before the new
    /// one starts at every rollout: put back to `RollingUpdate` (the server defaults the rest).
    async fn switch_strategies(
        &self,
        tenant: &Tenant,
        namespace: &str,
        objects: &[RenderedObject],
    ) -> Result<(), BackendError> {
        let rendered: HashMap<&str, bool> = objects
            .iter()
            .filter(|o| o.kind == "Deployment")
            .map(|o| (o.name.as_str(), o.manifest["spec"]["strategy"]["type"] == "Recreate"))
            .collect();
        if rendered.is_empty() {
            return Ok(());
        }
        let resource = ApiResource::erase::<Deployment>(&());
        let api = self.api(&resource, Some(namespace));
        let params = PatchParams { field_manager: Some(self.field_manager.clone()), ..PatchParams::default() };
        for live in self.list_kind("Deployment", tenant, namespace).await? {
            let name = live.metadata.name.clone().unwrap_or_default();
            let strategy = &live.data["spec"]["strategy"];
            let (action, patch) = match rendered.get(name.as_str()) {
                Some(true) if !strategy["rollingUpdate"].is_null() => {
                    ("passage en Recreate de", serde_json::json!({ "type": "Recreate", "rollingUpdate": null }))
                }
                Some(false) if strategy["type"] == "Recreate" => {
                    ("passage en RollingUpdate de", serde_json::json!({ "type": "RollingUpdate" }))
                }
                _ => continue,
            };
            let patch = Patch::Merge(serde_json::json!({ "spec": { "strategy": patch } }));
            let at = format!("{namespace}/{name}");
            self.send(action, "Deployment", &at, || api.patch(&name, &params, &patch)).await?;
        }
        Ok(())
    }

    /// Keeps the volume of a removed service, marked [`RETAINED_LABEL`] (once): its live
    /// spec applied again with the label, so that no field entcp owned is dropped.
    async fn retain(&self, live: &DynamicObject, namespace: &str, params: &PatchParams) -> Result<(), BackendError> {
        let labels = live.metadata.labels.clone().unwrap_or_default();
        if labels.contains_key(RETAINED_LABEL) {
            return Ok(());
        }
        let name = live.metadata.name.clone().unwrap_or_default();
        let mut labels = labels;
        labels.insert(RETAINED_LABEL.to_string(), "true".to_string());
        let spec = &live.data["spec"];
        let mut kept = serde_json::json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": { "name": name, "labels": labels },
            "spec": { "accessModes": spec["accessModes"], "resources": { "requests": spec["resources"]["requests"] } },
        });
        if !spec["storageClassName"].is_null() {
            kept["spec"]["storageClassName"] = spec["storageClassName"].clone();
        }
        let resource = ApiResource::erase::<PersistentVolumeClaim>(&());
        let api = self.api(&resource, Some(namespace));
        let patch = Patch::Apply(&kept);
        let at = format!("{namespace}/{name}");
        self.send("conservation de", "PersistentVolumeClaim", &at, || api.patch(&name, params, &patch)).await?;
        Ok(())
    }

    /// The API of `object`'s kind (in `namespace`, save the Namespace itself), that namespace,
    /// and `namespace/name` for messages.
    fn object_api<'o>(
        &self,
        object: &RenderedObject,
        namespace: &'o str,
    ) -> Result<(Api<DynamicObject>, Option<&'o str>, String), BackendError> {
        let Some((_, resource)) = kinds().into_iter().find(|(k, _)| *k == object.kind) else {
            return Err(BackendError::UnsupportedKind(object.kind.clone()));
        };
        let ns = (object.kind != "Namespace").then_some(namespace);
        let at = format!("{}/{}", ns.unwrap_or(""), object.name);
        Ok((self.api(&resource, ns), ns, at))
    }

    /// Server-side apply of `ordered`, one after the other.
    async fn write(
        &self,
        ordered: &[&RenderedObject],
        namespace: &str,
        params: &PatchParams,
    ) -> Result<(), BackendError> {
        for object in ordered {
            let (api, _, at) = self.object_api(object, namespace)?;
            let patch = Patch::Apply(&object.manifest);
            self.send("application de", &object.kind, &at, || api.patch(&object.name, params, &patch)).await?;
        }
        Ok(())
    }

    /// Server-side dry-run of every object before the first write: what the API server
    /// or an admission webhook refuses fails the pass with nothing written. A namespaced
    /// object of a namespace not created yet answers 404 to a dry-run: accepted, its
    /// real apply is then the check.
    async fn dry_run(
        &self,
        ordered: &[&RenderedObject],
        namespace: &str,
        params: &PatchParams,
    ) -> Result<(), BackendError> {
        let mut params = params.clone();
        params.dry_run = true;
        for object in ordered {
            let (api, ns, at) = self.object_api(object, namespace)?;
            let patch = Patch::Apply(&object.manifest);
            let (api, params, patch, name) = (&api, &params, &patch, object.name.as_str());
            self.send("validation (dry-run) de", &object.kind, &at, move || async move {
                match api.patch(name, params, patch).await {
                    Err(e) if ns.is_some() && is_not_found(&e) => Ok(()),
                    other => other.map(|_| ()),
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Reads the tenant's Deployments again (one list request); with nothing desired, whether
    /// its namespaces are gone ([`Self::namespaces_left`]).
    pub async fn observe(&self, tenant: &Tenant, objects: &[RenderedObject]) -> Result<Observation, BackendError> {
        if objects.is_empty() {
            return self.namespaces_left(tenant).await;
        }
        let namespace = namespace_of(&tenant.slug);
        let resource = ApiResource::erase::<Deployment>(&());
        let live = self.list(&resource, "Deployment", tenant, Some(&namespace)).await?;
        Ok(observation(objects, &live))
    }
}

/// What a removal observes, the cluster still listing `namespaces` of the tenant's namespaces.
fn left(namespaces: usize) -> Observation {
    match namespaces {
        0 => Observation { state: Observed::Removed, detail: "aucun objet dans le cluster".into() },
        n => Observation {
            state: Observed::Removing,
            detail: format!("aucun objet souhaité ; {n} espace(s) de noms en cours de suppression"),
        },
    }
}

/// The rendered objects fitted to the tenant's live volumes, and whether they ask for more storage.
pub(super) struct Fitted {
    pub(super) objects: Vec<RenderedObject>,
    storage_grows: bool,
}

/// A claim's storage request, in bytes (0 when unreadable).
fn claim_bytes(spec: &serde_json::Value) -> i128 {
    spec["resources"]["requests"]["storage"].as_str().and_then(quantity::whole).unwrap_or(0)
}

/// Fits the rendered objects to the live claims: a claim that exists keeps its storage class
/// (immutable once created) and never asks for less than it has (a request cannot shrink),
/// whatever the configuration or the catalog now say; the quota's `requests.storage` holds
/// every claim there will be, the retained ones (of removed services) included.
pub(super) fn fit_to_volumes(objects: &[RenderedObject], live: &[DynamicObject]) -> Fitted {
    let mut objects = objects.to_vec();
    let live_named = |name: &str| live.iter().find(|c| c.metadata.name.as_deref() == Some(name));
    let mut desired = 0;
    for claim in objects.iter_mut().filter(|o| o.kind == "PersistentVolumeClaim") {
        if let Some(current) = live_named(&claim.name) {
            let spec = &current.data["spec"];
            let class = &spec["storageClassName"];
            if class.is_null() {
                claim.manifest["spec"].as_object_mut().map(|s| s.remove("storageClassName"));
            } else {
                claim.manifest["spec"]["storageClassName"] = class.clone();
            }
            if claim_bytes(spec) > claim_bytes(&claim.manifest["spec"]) {
                claim.manifest["spec"]["resources"]["requests"]["storage"] =
                    spec["resources"]["requests"]["storage"].clone();
            }
        }
        desired += claim_bytes(&claim.manifest["spec"]);
    }
    let names: HashSet<String> =
        objects.iter().filter(|o| o.kind == "PersistentVolumeClaim").map(|o| o.name.clone()).collect();
    let retained: i128 = live
        .iter()
        .filter(|c| !names.contains(c.metadata.name.as_deref().unwrap_or_default()))
        .map(|c| claim_bytes(&c.data["spec"]))
        .sum();
    let before: i128 = live.iter().map(|c| claim_bytes(&c.data["spec"])).sum();
    if let Some(quota) = objects.iter_mut().find(|o| o.kind == "ResourceQuota") {
        quota.manifest["spec"]["hard"]["requests.storage"] = quantity::bytes_text(desired + retained).into();
    }
    Fitted { objects, storage_grows: desired + retained > before }
}

/// A Deployment whose rollout failed: progress deadline exceeded or replica failure.
fn failed(live: &DynamicObject) -> bool {
    let conditions = live.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.iter().any(|c| {
        (c["type"] == "Progressing" && c["status"] == "False")
            || (c["type"] == "ReplicaFailure" && c["status"] == "True")
    })
}

/// A Deployment whose controller has seen its latest spec (`observedGeneration`),
/// with every replica updated to it and available, and not reported unavailable.
fn rolled_out(live: &DynamicObject, replicas: i64) -> bool {
    let status = &live.data["status"];
    let count = |field: &str| status[field].as_i64().unwrap_or(0);
    let generation = live.metadata.generation.unwrap_or(0);
    let unavailable = status["conditions"]
        .as_array()
        .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "Available" && c["status"] == "False"));
    count("observedGeneration") >= generation
        && count("updatedReplicas") >= replicas
        && count("availableReplicas") >= replicas
        && !unavailable
}

/// Compares the desired Deployments with their live status.
pub fn observation(objects: &[RenderedObject], live: &[DynamicObject]) -> Observation {
    let wanted: Vec<(&str, i64)> = objects
        .iter()
        .filter(|o| o.kind == "Deployment")
        .map(|o| (o.name.as_str(), o.manifest["spec"]["replicas"].as_i64().unwrap_or(1)))
        .collect();
    if wanted.is_empty() {
        return Observation {
            state: Observed::DataOnly,
            detail: "aucune charge de travail ; volumes et identifiants conservés".into(),
        };
    }
    if wanted.iter().all(|(_, replicas)| *replicas == 0) {
        return Observation {
            state: Observed::Stopped,
            detail: format!("{} déploiements à zéro réplique", wanted.len()),
        };
    }
    let mut available = 0;
    let mut degraded = Vec::new();
    for (name, replicas) in &wanted {
        let Some(d) = live.iter().find(|d| d.metadata.name.as_deref() == Some(*name)) else { continue };
        if rolled_out(d, *replicas) {
            available += 1;
        } else if failed(d) {
            degraded.push(*name);
        }
    }
    let counts = format!("{available}/{} déploiements disponibles", wanted.len());
    if !degraded.is_empty() {
        Observation { state: Observed::Degraded, detail: format!("{counts} ; en échec : {}", degraded.join(", ")) }
    } else if available == wanted.len() {
        Observation { state: Observed::Available, detail: counts }
    } else {
        Observation { state: Observed::Progressing, detail: counts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired(name: &str, replicas: i64) -> RenderedObject {
        RenderedObject {
            kind: "Deployment".into(),
            name: name.into(),
            manifest: json!({ "kind": "Deployment", "metadata": { "name": name }, "spec": { "replicas": replicas } }),
        }
    }

    fn live(name: &str, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": name }, "status": status
        }))
        .unwrap()
    }

    #[test]
    fn deployments_read_back_give_the_tenant_state() {
        let objects = [desired("portail", 1), desired("blog", 1)];
        let ok = json!({ "observedGeneration": 0, "updatedReplicas": 1, "availableReplicas": 1 });
        let stuck = json!({ "conditions": [{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }] });
        let seen = observation(&objects, &[live("portail", ok.clone()), live("blog", ok.clone())]);
        assert_eq!((seen.state, seen.detail.as_str()), (Observed::Available, "2/2 déploiements disponibles"));
        let seen = observation(&objects, &[live("portail", ok.clone())]);
        assert_eq!(seen.state, Observed::Progressing);
        let seen = observation(&objects, &[live("portail", ok), live("blog", stuck)]);
        assert_eq!(seen.state, Observed::Degraded);
        assert!(seen.detail.ends_with("en échec : blog"), "{}", seen.detail);
        assert_eq!(observation(&[desired("portail", 0)], &[]).state, Observed::Stopped);
        // A new spec not yet seen by the Deployment controller, or replicas of the old one: not available.
        let mut behind =
            live("portail", json!({ "observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1 }));
        behind.metadata.generation = Some(2);
        assert_eq!(observation(&objects[..1], &[behind]).state, Observed::Progressing);
        let old = json!({ "observedGeneration": 0, "updatedReplicas": 0, "availableReplicas": 1 });
        assert_eq!(observation(&objects[..1], &[live("portail", old)]).state, Observed::Progressing);
        let down = json!({ "updatedReplicas": 1, "availableReplicas": 1,
                           "conditions": [{ "type": "Available", "status": "False" }] });
        assert_eq!(observation(&objects[..1], &[live("portail", down)]).state, Observed::Progressing);
        assert_eq!(observation(&[], &[]).state, Observed::DataOnly);
    }

    #[test]
    fn objects_are_applied_namespace_first_and_workloads_last() {
        assert_eq!(rank("Namespace"), 0);
        assert!(rank("Secret") < rank("PersistentVolumeClaim") && rank("PersistentVolumeClaim") < rank("Deployment"));
        assert!(rank("Deployment") < rank("Ingress"));
    }
}
