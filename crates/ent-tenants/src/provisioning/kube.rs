//! The `kube` backend: server-side apply of a tenant's objects to a cluster
//! (`PATCH … ?fieldManager=entcp&force=true`, `application/apply-patch+yaml`),
//! Namespace first; then pruning of the objects carrying the tenant's label that
//! are no longer desired (a 404 on delete means already gone); then the
//! Deployments' status read back into an observation.

use super::backend::{BackendError, Observation, Observed};
use super::render::{MANAGED_BY, TENANT_LABEL};
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
use std::collections::HashSet;

pub struct KubeBackend {
    client: Client,
    field_manager: String,
}

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

fn rank(kind: &str) -> usize {
    kinds().iter().position(|(k, _)| *k == kind).unwrap_or(usize::MAX)
}

/// The label selector of everything the control plane made for this tenant.
fn selector(tenant: &Tenant) -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY},{TENANT_LABEL}={}", tenant.id)
}

/// A failed call, with the API server's Status when there is one.
fn failure(verb: &'static str, kind: &str, at: &str, e: kube::Error) -> BackendError {
    let (kind, at) = (kind.to_string(), at.to_string());
    match e {
        kube::Error::Api(s) => BackendError::Api { verb, kind, at, code: s.code, reason: s.reason, message: s.message },
        other => BackendError::Request { verb, kind, at, detail: other.to_string() },
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl KubeBackend {
    pub fn new(client: Client, field_manager: &str) -> KubeBackend {
        KubeBackend { client, field_manager: field_manager.to_string() }
    }

    /// A client from the configured kubeconfig (and context), else the standard
    /// inference: in-cluster service account, then `KUBECONFIG` / `~/.kube/config`.
    pub async fn from_config(config: &KubeConfig) -> Result<KubeBackend, BackendError> {
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
        let client = Client::try_from(kube_config).map_err(|e| BackendError::Client(e.to_string()))?;
        Ok(KubeBackend::new(client, &config.field_manager))
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    async fn delete(
        &self,
        resource: &ApiResource,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), BackendError> {
        match self.api(resource, namespace).delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(failure("suppression de", kind, &format!("{}/{name}", namespace.unwrap_or("")), e)),
        }
    }

    async fn list(
        &self,
        resource: &ApiResource,
        kind: &str,
        tenant: &Tenant,
        namespace: Option<&str>,
    ) -> Result<Vec<DynamicObject>, BackendError> {
        let params = ListParams::default().labels(&selector(tenant));
        match self.api(resource, namespace).list(&params).await {
            Ok(list) => Ok(list.items),
            Err(e) => Err(failure("lecture des", kind, namespace.unwrap_or("(cluster)"), e)),
        }
    }

    /// Applies the desired objects, prunes the others, reads the Deployments back.
    pub async fn apply(&self, tenant: &Tenant, objects: &[RenderedObject]) -> Result<Observation, BackendError> {
        let kinds = kinds();
        if objects.is_empty() {
            // Nothing desired: the tenant's namespaces go, and everything in them with them.
            let (_, namespaces) = &kinds[0];
            for ns in self.list(namespaces, "Namespace", tenant, None).await? {
                let name = ns.metadata.name.unwrap_or_default();
                self.delete(namespaces, "Namespace", None, &name).await?;
            }
            return Ok(Observation { state: Observed::Removed, detail: "aucun objet dans le cluster".into() });
        }
        let mut ordered: Vec<&RenderedObject> = objects.iter().collect();
        ordered.sort_by_key(|o| rank(&o.kind));
        let namespace = ordered
            .iter()
            .find(|o| o.kind == "Namespace")
            .map(|o| o.name.clone())
            .unwrap_or_else(|| format!("ent-{}", tenant.slug));
        let params = PatchParams::apply(&self.field_manager).force();
        for object in &ordered {
            let Some((_, resource)) = kinds.iter().find(|(k, _)| *k == object.kind) else {
                return Err(BackendError::UnsupportedKind(object.kind.clone()));
            };
            let ns = (object.kind != "Namespace").then_some(namespace.as_str());
            if let Err(e) = self.api(resource, ns).patch(&object.name, &params, &Patch::Apply(&object.manifest)).await {
                let at = format!("{}/{}", ns.unwrap_or(""), object.name);
                return Err(failure("application de", &object.kind, &at, e));
            }
        }
        let desired: HashSet<(&str, &str)> = objects.iter().map(|o| (o.kind.as_str(), o.name.as_str())).collect();
        let mut deployments = Vec::new();
        for (kind, resource) in kinds.iter().skip(1).rev() {
            for live in self.list(resource, kind, tenant, Some(&namespace)).await? {
                let name = live.metadata.name.clone().unwrap_or_default();
                if !desired.contains(&(*kind, name.as_str())) {
                    self.delete(resource, kind, Some(&namespace), &name).await?;
                } else if *kind == "Deployment" {
                    deployments.push(live);
                }
            }
        }
        Ok(observation(objects, &deployments))
    }

    /// Reads the tenant's Deployments again (one list request).
    pub async fn observe(&self, tenant: &Tenant, objects: &[RenderedObject]) -> Result<Observation, BackendError> {
        let namespace = format!("ent-{}", tenant.slug);
        let resource = ApiResource::erase::<Deployment>(&());
        let live = self.list(&resource, "Deployment", tenant, Some(&namespace)).await?;
        Ok(observation(objects, &live))
    }
}

/// A Deployment whose rollout failed: progress deadline exceeded or replica failure.
fn failed(live: &DynamicObject) -> bool {
    let conditions = live.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.iter().any(|c| {
        (c["type"] == "Progressing" && c["status"] == "False")
            || (c["type"] == "ReplicaFailure" && c["status"] == "True")
    })
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
        if d.data["status"]["availableReplicas"].as_i64().unwrap_or(0) >= *replicas {
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
        let ok = json!({ "availableReplicas": 1 });
        let stuck = json!({ "conditions": [{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }] });
        let seen = observation(&objects, &[live("portail", ok.clone()), live("blog", ok.clone())]);
        assert_eq!((seen.state, seen.detail.as_str()), (Observed::Available, "2/2 déploiements disponibles"));
        let seen = observation(&objects, &[live("portail", ok.clone())]);
        assert_eq!(seen.state, Observed::Progressing);
        let seen = observation(&objects, &[live("portail", ok), live("blog", stuck)]);
        assert_eq!(seen.state, Observed::Degraded);
        assert!(seen.detail.ends_with("en échec : blog"), "{}", seen.detail);
        assert_eq!(observation(&[desired("portail", 0)], &[]).state, Observed::Stopped);
        assert_eq!(observation(&[], &[]).state, Observed::DataOnly);
    }

    #[test]
    fn objects_are_applied_namespace_first_and_workloads_last() {
        assert_eq!(rank("Namespace"), 0);
        assert!(rank("Secret") < rank("PersistentVolumeClaim") && rank("PersistentVolumeClaim") < rank("Deployment"));
        assert!(rank("Deployment") < rank("Ingress"));
    }
}
