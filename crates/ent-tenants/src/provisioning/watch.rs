//! Watches on the Deployments the control plane owns: an event (a rollout that fails,
//! a `kubectl scale`, a Deployment deleted by hand) queues its tenant at once, applied
//! again and read back, without waiting for the resync period (which stays the safety
//! net: a watch can miss events while it reconnects). Used by `entctl serve`'s work
//! queue and by `entctl operator`.

use super::render::{MANAGED_BY, TENANT_LABEL};
use super::ProvisioningState;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};

/// The label selector of the Deployments the control plane rendered.
pub fn selector() -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY}")
}

/// The watch's configuration: only the control plane's Deployments.
pub fn config() -> watcher::Config {
    watcher::Config::default().labels(&selector())
}

/// The tenant (its id, from the label the renderer sets) of a Deployment in an `ent-*` namespace.
pub fn tenant_of(deployment: &Deployment) -> Option<String> {
    let namespace = deployment.namespace()?;
    if !namespace.starts_with("ent-") {
        return None;
    }
    deployment.labels().get(TENANT_LABEL).cloned()
}

/// Queues a tenant whose Deployment changed: a resync of it, through the work queue.
async fn queue(state: &ProvisioningState, tenant_id: &str) {
    match crate::tenants::get_tenant(&state.store, tenant_id).await {
        Ok(Some(tenant)) => {
            state.reconciler.request_resync(&tenant.slug);
            if !state.reconciler.enqueue(Some(tenant.slug.clone())) {
                tracing::debug!(tenant = %tenant.slug, "deployment event: no work queue in this process");
            }
        }
        Ok(None) => tracing::debug!(tenant = %tenant_id, "deployment event of an unknown tenant"),
        Err(e) => tracing::warn!(tenant = %tenant_id, error = %e.detail, "deployment event: tenant not read"),
    }
}

/// `entctl serve`: watches the owned Deployments (kube backend only) until `shutdown`,
/// queueing their tenants.
pub async fn watch_deployments(state: ProvisioningState, shutdown: tokio_util::sync::CancellationToken) {
    if state.config.provisioning.backend != ent_kernel::config::ProvisioningBackend::Kube {
        return;
    }
    let backend = match super::backend::Backend::from_config(&state.config, &state.reconciler).await {
        Ok(super::backend::Backend::Kube(kube)) => kube,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "deployment watch not started: no cluster client");
            return;
        }
    };
    run(state, backend.client(), shutdown).await;
}

/// Watches the owned Deployments with `client` until `shutdown`.
pub async fn run(state: ProvisioningState, client: Client, shutdown: tokio_util::sync::CancellationToken) {
    let deployments: Api<Deployment> = Api::all(client);
    let mut events = std::pin::pin!(watcher(deployments, config()).default_backoff().touched_objects());
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Ok(deployment)) => {
                if let Some(tenant_id) = tenant_of(&deployment) {
                    queue(&state, &tenant_id).await;
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "deployment watch: retried"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(namespace: &str, tenant: Option<&str>) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.namespace = Some(namespace.into());
        d.metadata.name = Some("moodle".into());
        if let Some(id) = tenant {
            d.metadata.labels = Some([(TENANT_LABEL.to_string(), id.to_string())].into());
        }
        d
    }

    #[test]
    fn a_deployment_maps_to_its_tenant_only_inside_the_ent_namespaces() {
        assert_eq!(tenant_of(&deployment("ent-doisneau", Some("t1"))).as_deref(), Some("t1"));
        assert_eq!(tenant_of(&deployment("kube-system", Some("t1"))), None);
        assert_eq!(tenant_of(&deployment("ent-doisneau", None)), None);
    }
}
