//! Watches on the Deployments the control plane owns: an event queues its tenant at once,
//! without waiting for the resync period (which stays the safety net: a watch can miss
//! events while it reconnects). A drifted Deployment (a `kubectl scale`, an edit, one
//! deleted by hand: no longer as this replica renders it) makes its tenant due for a resync,
//! applied again and read back; any other event (a rollout's progress, the replica's own
//! apply) goes through the settled check: read back if its rollout is under way, never
//! applied, so that every replica watching does not apply the tenant on every event. Used by
//! `entctl serve`'s work queue and by `entctl operator` (`selector`, `config`, `tenant_of`).

use super::render::{MANAGED_BY, TENANT_LABEL};
use super::ProvisioningState;
use crate::tenants;
use ent_kernel::config::ProvisioningBackend;
use ent_kernel::error::Problem;
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

/// A watcher of `api` that starts over from a fresh list when its resourceVersion expired.
/// kube-runtime's watcher re-lists on a `410 Gone` ERROR event of the watch stream (how the
/// API server's watch cache tells a compacted version), but when the API server refuses the
/// watch request itself with `410 Gone` (etcd compacted past it: « The resourceVersion for the
/// provided watch is too old »), it asks again from the same expired version, for ever: it never
/// sees a change again. Here that answer drops the watcher: the next one lists afresh (its
/// `Init` events refill a reflector's store) and watches from the list's version.
pub fn relisting<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    type Watch<T> = futures_util::stream::BoxStream<'static, Result<watcher::Event<T>, watcher::Error>>;
    futures_util::stream::unfold(None::<Watch<K>>, move |current| {
        let (api, config) = (api.clone(), config.clone());
        async move {
            let mut events = current.unwrap_or_else(|| watcher(api, config).boxed());
            let event = events.next().await?;
            if expired(&event) {
                tracing::info!("watch refused with 410 Gone (expired resourceVersion): listed again");
                return Some((event, None));
            }
            Some((event, Some(events)))
        }
    })
}

/// Whether the API server refused a watch request with `410 Gone`.
fn expired<K>(event: &Result<watcher::Event<K>, watcher::Error>) -> bool {
    matches!(event, Err(watcher::Error::WatchStartFailed(kube::Error::Api(status))) if status.code == 410)
}

/// The tenant (its id, from the label the renderer sets) of a Deployment in an `ent-*` namespace.
pub fn tenant_of(deployment: &Deployment) -> Option<String> {
    let namespace = deployment.namespace()?;
    if !namespace.starts_with("ent-") {
        return None;
    }
    deployment.labels().get(TENANT_LABEL).cloned()
}

/// Queues a tenant whose Deployment changed (`deleted`: the event of its deletion) through
/// the work queue; a resync of it when the Deployment drifted from its render.
async fn queue(state: &ProvisioningState, tenant_id: &str, deployment: &Deployment, deleted: bool) {
    match tenants::get_tenant(&state.store, tenant_id).await {
        Ok(Some(tenant)) => {
            let live = (!deleted).then_some(deployment);
            resync_if_drifted(state, &tenant.slug, &deployment.name_any(), live).await;
            if !state.reconciler.enqueue(Some(tenant.slug.clone())) {
                tracing::debug!(tenant = %tenant.slug, "deployment event: no work queue in this process");
            }
        }
        Ok(None) => tracing::debug!(tenant = %tenant_id, "deployment event of an unknown tenant"),
        Err(e) => tracing::warn!(tenant = %tenant_id, error = %e.detail, "deployment event: tenant not read"),
    }
}

/// Makes tenant `slug` due for a resync (applied again at its next pass) when its Deployment
/// `name`, as `live` shows it (`None`: deleted), no longer holds what this process renders;
/// a rollout's progress, or this process's own apply, asks for nothing. `serve`'s watch and
/// `entctl operator` both decide so.
pub async fn resync_if_drifted(state: &ProvisioningState, slug: &str, name: &str, live: Option<&Deployment>) {
    match drifted(state, slug, name, live).await {
        Ok(false) => {}
        Ok(true) => state.reconciler.request_resync(slug),
        Err(e) => {
            tracing::warn!(tenant = %slug, error = %e.detail, "deployment event: render not compared");
            state.reconciler.request_resync(slug);
        }
    }
}

/// Whether the Deployment `name` (`live`; `None`: deleted) no longer holds what this replica
/// renders for its tenant.
async fn drifted(
    state: &ProvisioningState,
    slug: &str,
    name: &str,
    live: Option<&Deployment>,
) -> Result<bool, Problem> {
    let Some(input) = tenants::reconcile_inputs(&state.store, Some(slug)).await?.into_iter().next() else {
        return Ok(false);
    };
    let spec = live.map(|d| serde_json::to_value(&d.spec).unwrap_or_default());
    super::reconcile::drifted(state, &input, name, spec.as_ref())
}

/// `entctl serve`: watches the owned Deployments (kube backend only) until `shutdown`,
/// queueing their tenants.
pub async fn watch_deployments(state: ProvisioningState, shutdown: tokio_util::sync::CancellationToken) {
    if state.config.provisioning.backend != ProvisioningBackend::Kube {
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
    let mut events = std::pin::pin!(relisting(deployments, config()).default_backoff());
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Ok(watcher::Event::Apply(deployment) | watcher::Event::InitApply(deployment))) => {
                changed(&state, &deployment, false).await;
            }
            Some(Ok(watcher::Event::Delete(deployment))) => changed(&state, &deployment, true).await,
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
            Some(Err(e)) => tracing::warn!(error = %e, "deployment watch: retried"),
        }
    }
}

/// A Deployment's event: its tenant (if it is one of an `ent-*` namespace's) queued.
async fn changed(state: &ProvisioningState, deployment: &Deployment, deleted: bool) {
    if let Some(tenant_id) = tenant_of(deployment) {
        queue(state, &tenant_id, deployment, deleted).await;
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
