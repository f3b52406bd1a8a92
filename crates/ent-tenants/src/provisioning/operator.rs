//! `entctl operator`: the tenants declared as `EntTenant` custom resources. A kube-rs
//! `Controller` watches the resources (and the Deployments the control plane owns) and
//! feeds each resource into the same [`tenants::apply_declared`] and lifecycle as the
//! API, then the same reconcile pass (under the tenant's database lease: one process
//! writes a tenant at a time), then writes the resource's `status` through the status
//! subresource. A finalizer holds a deleted resource until its tenant is decommissioned
//! the normal way. A tenant declared by a resource is read-only in the API and the
//! console; a resource never adopts a tenant the API created (`GovernanceBlocked`).
//!
//! Several operator processes may watch one cluster (replicas, a rollout): each resource
//! is handled under a database lease of its own (`EntTenant <namespace>/<name>`), so one
//! process at a time declares it; another that meets the lease held leaves the resource
//! to its holder and looks again after [`HELD`]. The status is written under the tenant's
//! lease too (no `serve` replica writes the tenant meanwhile: else it is left to the next
//! reconcile), from the tenant read again under that lease, and only over the
//! `resourceVersion` it was computed from: a 409 Conflict (the resource changed since)
//! re-reads the resource and tries once more, then leaves it to the next reconcile. A
//! condition's `lastTransitionTime` thus moves once per change of its status, whichever
//! process saw it first.
//!
//! `observedGeneration` means "this generation was reconciled": a pass deferred because
//! another process held the tenant's lease claims nothing (the status is left as it was,
//! the resource looked at again after [`HELD`]), even if the lease is free by the time the
//! status could be written; and a status written again after a conflict keeps the
//! generation this reconcile declared, never the newer one the resource was read again at.
//! Nor does `observedGeneration` ever go backwards: a process that stalled longer than its
//! leases (another took the resource over and wrote the status of a newer generation)
//! meets a 409 on its stale `resourceVersion`, reads the resource again, and writes nothing
//! when the status read already names a newer generation than its own.

use super::lease::{self, Writer};
use super::{conditions, reconcile, ProvisioningState};
use crate::tenants::{self, EntTenant, Metadata, Move, Status, Tenant, TenantSpec, TenantsState};
use chrono::{DateTime, Utc};
use ent_kernel::error::{Problem, ProblemKind};
use ent_platform::identity::Actor;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The finalizer the operator puts on each resource it adopts.
pub const FINALIZER: &str = "entcp.education.fr/decommission";

/// The audit log's name of the operator.
const ACTOR: &str = "operator";

/// How soon a resource is looked at again while its tenant rolls out, or after a failure.
const SOON: Duration = Duration::from_secs(30);

/// How soon a resource is looked at again when another process held its lease (or its
/// tenant's) or changed it twice while its status was written.
pub const HELD: Duration = Duration::from_secs(5);

/// The `EntTenant` resource type (group, version, kind, plural of the CRD).
pub fn resource() -> ApiResource {
    let (group, version) = tenants::API_VERSION.split_once('/').expect("group/version");
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, tenants::KIND), "enttenants")
}

/// How the tenant's row names the resource that declares it: `EntTenant <namespace>/<name>`.
pub fn declared_by(namespace: &str, name: &str) -> String {
    format!("{} {namespace}/{name}", tenants::KIND)
}

/// A failed reconcile of a resource (retried by the controller after [`SOON`]).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Domain(String),
    #[error("API Kubernetes : {0}")]
    Kube(#[from] kube::Error),
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Failure {
        Failure::Domain(p.detail)
    }
}

/// What this process did with the resources' status, for the logs and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StatusFigures {
    /// Status patches the API server took.
    pub written: u64,
    /// Reconciles that found the status already right.
    pub unchanged: u64,
    /// Reconciles that left the resource to another operator process holding its lease.
    pub resource_held: u64,
    /// Status writes left to the next reconcile: another process held the tenant's lease
    /// (through this reconcile's pass, or when the status was to be written).
    pub tenant_held: u64,
    /// Status patches refused with 409 Conflict (the resource changed since it was read).
    pub conflicts: u64,
    /// Status writes given up because the resource (read again after a conflict) showed a
    /// newer `observedGeneration` than this reconcile's: written by a process that
    /// reconciled a later generation; `observedGeneration` never goes backwards.
    pub superseded: u64,
    /// The `resourceVersion` of the resource whose status this process last wrote or found right.
    pub confirmed: Option<String>,
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    state: TenantsState,
    /// The resource of each tenant seen (tenant id → resource), to map a Deployment's
    /// event (its tenant label holds the id) to the resource to reconcile.
    resources: Mutex<HashMap<String, (String, ObjectRef<DynamicObject>)>>,
    /// The Deployments (namespace, name) of each tenant (by id) with an event since its last
    /// reconcile: compared with the render then ([`Context::resync_if_drifted`]).
    deployment_events: Mutex<HashMap<String, BTreeSet<(String, String)>>>,
    figures: Mutex<StatusFigures>,
}

impl Context {
    pub fn new(client: Client, state: TenantsState) -> Arc<Context> {
        Arc::new(Context {
            client,
            state,
            resources: Mutex::default(),
            deployment_events: Mutex::default(),
            figures: Mutex::default(),
        })
    }

    /// What this process did with the resources' status so far.
    pub fn figures(&self) -> StatusFigures {
        self.figures.lock().expect("figures lock").clone()
    }

    fn count(&self, change: impl FnOnce(&mut StatusFigures)) {
        change(&mut self.figures.lock().expect("figures lock"));
    }

    fn remember(&self, tenant: &Tenant, object: &DynamicObject) {
        let reference = ObjectRef::from_obj_with(object, resource());
        self.resources.lock().expect("resources lock").insert(tenant.id.clone(), (tenant.slug.clone(), reference));
    }

    /// The resource to reconcile for a Deployment's event; the Deployment noted, to be
    /// compared with the render by that reconcile (a rollout's progress applies nothing).
    fn resource_of(&self, deployment: &Deployment) -> Option<ObjectRef<DynamicObject>> {
        let tenant_id = super::watch::tenant_of(deployment)?;
        let (_, reference) = self.resources.lock().expect("resources lock").get(&tenant_id).cloned()?;
        let deployment = (deployment.namespace().unwrap_or_default(), deployment.name_any());
        self.deployment_events.lock().expect("deployment events lock").entry(tenant_id).or_default().insert(deployment);
        Some(reference)
    }

    /// One request to the API server within the reconciler's per-request timeout
    /// (`provisioning.reconcile.request_timeout_seconds`), as the backend sends its own: a hung
    /// server does not hold a tenant's lease for the client's five-minute read timeout.
    async fn within<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Failure> {
        let limit = self.state.config.provisioning.reconcile.request_timeout();
        match tokio::time::timeout(limit, request).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Failure::Domain(format!(
                "API Kubernetes : pas de réponse en {} s (délai par requête)",
                limit.as_secs_f64()
            ))),
        }
    }

    /// Makes `tenant` due for a resync when one of its Deployments with an event since its
    /// last reconcile, read now, no longer holds the render (scaled or edited by hand, deleted).
    async fn resync_if_drifted(&self, tenant: &Tenant) {
        let noted = self.deployment_events.lock().expect("deployment events lock").remove(&tenant.id);
        let provisioning = self.state.provisioning();
        for (namespace, name) in noted.unwrap_or_default() {
            match self.within(Api::<Deployment>::namespaced(self.client.clone(), &namespace).get_opt(&name)).await {
                Ok(live) => super::watch::resync_if_drifted(&provisioning, &tenant.slug, &name, live.as_ref()).await,
                Err(e) => {
                    tracing::warn!(tenant = %tenant.slug, deployment = %name, error = %e, "deployment not read: resync");
                    provisioning.reconciler.request_resync(&tenant.slug);
                }
            }
        }
    }
}

/// Watches the resources of every namespace and reconciles them until `shutdown`.
pub async fn run(context: Arc<Context>, shutdown: tokio_util::sync::CancellationToken) {
    let resources: Api<DynamicObject> = Api::all_with(context.client.clone(), &resource());
    let deployments: Api<Deployment> = Api::all(context.client.clone());
    let mapper = {
        let context = context.clone();
        move |deployment: Deployment| context.resource_of(&deployment)
    };
    // Both watches list again when their resourceVersion expired (`watch::relisting`).
    let writer = kube::runtime::reflector::store::Writer::new(resource());
    let reader = writer.as_reader();
    let own = super::watch::relisting(resources, watcher::Config::default()).reflect(writer).applied_objects();
    let owned = super::watch::relisting(deployments, super::watch::config()).touched_objects();
    let controller = Controller::for_stream_with(own, reader, resource())
        .watches_stream_with(owned, mapper, ())
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(resource = %object, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "operator reconcile failed"),
            }
        });
    // A reconcile cut short leaves its leases (the resource's, its tenant's), released by the caller at exit.
    tokio::select! {
        _ = controller => {}
        _ = shutdown.cancelled() => {}
    }
}

fn error_policy(
    object: Arc<DynamicObject>,
    error: &kube::runtime::finalizer::Error<Failure>,
    _: Arc<Context>,
) -> Action {
    tracing::warn!(resource = %object.name_any(), error = %error, "resource reconcile failed: retried");
    Action::requeue(SOON)
}

async fn reconcile(
    object: Arc<DynamicObject>,
    context: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<Failure>> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(context.client.clone(), &namespace, &resource());
    let resources = api.clone();
    finalizer(&api, FINALIZER, object, |event| async move {
        let (object, cleanup) = match event {
            Event::Apply(object) => (object, false),
            Event::Cleanup(object) => (object, true),
        };
        // One operator process at a time handles a resource: under its lease.
        let provisioning = context.state.provisioning();
        let key = declared_by(&object.namespace().unwrap_or_default(), &object.name_any());
        let done = if cleanup {
            leased(&provisioning, &key, decommission(&context, &object)).await?
        } else {
            leased(&provisioning, &key, declare(&context, &resources, &object)).await?
        };
        Ok(done.unwrap_or_else(|| {
            // Another process handles the resource now; this one looks again later.
            context.count(|f| f.resource_held += 1);
            Action::requeue(HELD)
        }))
    })
    .await
}

/// Runs `work` under the lease `key` (a tenant's id, or a resource's name), renewed while
/// it runs and released after; `None`, with nothing done, when another process holds it.
async fn leased<T>(
    state: &ProvisioningState,
    key: &str,
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<Option<T>, Failure> {
    let writer = Writer::new(state, state.clock.now());
    let _writing = state.reconciler.writing(key);
    if !lease::take(state, key, &writer).await? {
        return Ok(None);
    }
    let done = tokio::select! {
        done = work => done,
        lost = lease::keep(state, key, &writer) => Err(lost.into()),
    };
    lease::release(state, key, &writer).await?;
    done.map(Some)
}

/// What became of a resource's status.
enum Written {
    /// Patched, or already right: the resource's `resourceVersion` then.
    Done(Option<String>),
    /// Left to the next reconcile (the resource changed twice while its status was written,
    /// or its status already names a newer generation).
    Later,
}

/// The verdict on a resource, for its status.
#[derive(Clone)]
struct Verdict {
    tenant: Option<Tenant>,
    /// Why the tenant is held back (a name taken by the API, no convention in force).
    blocked: Option<(&'static str, String)>,
    /// A spec refused by the domain (bad organisation, guardrail).
    refused: Option<String>,
}

/// The resource applied as a tenant: the document through `apply_declared`, the tenant moved
/// past the governance gate, one reconcile pass; then its status written (nothing written
/// when the pass was deferred by another process holding the tenant).
async fn declare(context: &Context, api: &Api<DynamicObject>, object: &DynamicObject) -> Result<Action, Failure> {
    let state = &context.state;
    let name = object.name_any();
    let by = declared_by(&object.namespace().unwrap_or_default(), &name);
    let actor = Actor::system(ACTOR);
    let verdict = match serde_json::from_value::<TenantSpec>(object.data["spec"].clone()) {
        Err(e) => Verdict { tenant: None, blocked: None, refused: Some(format!("spécification illisible : {e}")) },
        Ok(spec) => {
            let doc = EntTenant {
                api_version: tenants::API_VERSION.into(),
                kind: tenants::KIND.into(),
                metadata: Metadata { name: name.clone(), labels: Default::default() },
                spec,
            };
            match tenants::apply_declared(state, &actor, &doc, None, Some(&by)).await {
                Ok((_, tenant)) => {
                    context.remember(&tenant, object);
                    context.resync_if_drifted(&tenant).await;
                    let Some(verdict) = provision(state, &actor, tenant).await? else {
                        // This generation was not reconciled (another process held the tenant):
                        // the status claims nothing of it; looked at again later.
                        context.count(|f| f.tenant_held += 1);
                        return Ok(Action::requeue(HELD));
                    };
                    verdict
                }
                Err(p) => {
                    let tenant = tenants::get_tenant(&state.store, &name).await?;
                    let ours = tenant.as_ref().is_some_and(|t| t.declared_by.as_deref() == Some(by.as_str()));
                    let elsewhere = matches!(p.kind, ProblemKind::Conflict | ProblemKind::DeclaredByResource);
                    // A purged tenant of this name (this resource's own, declared again): its name is taken
                    // for good, never provisioned again.
                    let purged = tenant.as_ref().is_some_and(|t| t.status == Status::Purged);
                    match tenant {
                        // A tenant of this name declared elsewhere (the API, another resource): never adopted.
                        Some(_) if (!ours && elsewhere) || purged => {
                            Verdict { tenant: None, blocked: Some(("NameTaken", p.detail)), refused: None }
                        }
                        _ if p.kind.status().is_server_error() => return Err(p.into()),
                        // A spec the domain refuses: shown, and waits for a change of the resource.
                        tenant => {
                            Verdict { tenant: tenant.filter(|_| ours), blocked: None, refused: Some(problem_text(&p)) }
                        }
                    }
                }
            }
        }
    };
    if let Some(tenant) = &verdict.tenant {
        context.remember(tenant, object);
    }
    let provisioning = state.provisioning();
    let (written, verdict) = match verdict.tenant.as_ref().map(|t| t.id.clone()) {
        // Under the tenant's lease: no other process writes the tenant while its status is written.
        Some(id) => match leased(&provisioning, &id, write_fresh_status(context, api, object, verdict, &id)).await? {
            Some(done) => done,
            None => {
                context.count(|f| f.tenant_held += 1);
                return Ok(Action::requeue(HELD));
            }
        },
        None => (write_status(context, api, object, &verdict).await?, verdict),
    };
    let Written::Done(version) = written else {
        return Ok(Action::requeue(HELD));
    };
    context.count(|f| f.confirmed = version);
    let settled = verdict.tenant.as_ref().is_some_and(|t| {
        t.provisioning_state.error.is_none()
            && !super::backend::Observed::unsettled(t.provisioning_state.observed.as_deref())
    });
    Ok(match (&verdict.blocked, &verdict.refused) {
        // A convention may be signed: looked at again; a refused spec waits for a change.
        (Some(("NoConvention", _)), _) => Action::requeue(SOON * 10),
        (Some(_), _) | (_, Some(_)) => Action::await_change(),
        _ if settled => Action::requeue(Duration::from_secs(state.config.provisioning.reconcile.resync_seconds)),
        _ => Action::requeue(SOON),
    })
}

/// Under the tenant's lease: the tenant read again (another process may have written it
/// since this reconcile's pass), then the resource's status written from it.
async fn write_fresh_status(
    context: &Context,
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    verdict: Verdict,
    tenant_id: &str,
) -> Result<(Written, Verdict), Failure> {
    let verdict = Verdict { tenant: tenants::get_tenant(&context.state.store, tenant_id).await?, ..verdict };
    let written = write_status(context, api, object, &verdict).await?;
    Ok((written, verdict))
}

/// Writes the resource's status if it is not the one of `verdict` yet, over the
/// `resourceVersion` it was read with: the API server refuses the patch (409 Conflict) when
/// the resource changed since; then the resource is read again and the status computed from
/// it (a condition whose status holds keeps its `lastTransitionTime`) and written once more,
/// still for the generation of `object` (the one declared; the resource read again may be
/// newer, its own reconcile to come). A second conflict is left to the next reconcile: never
/// an error, never a loop. Nothing is written over a status whose `observedGeneration` is
/// newer than the generation of `object` (as Kubernetes controllers do): a process that
/// stalled longer than its leases, its resource since reconciled by another at a later
/// generation, never moves `observedGeneration` back.
async fn write_status(
    context: &Context,
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    verdict: &Verdict,
) -> Result<Written, Failure> {
    let name = object.name_any();
    let generation = object.metadata.generation.unwrap_or(0);
    let mut current = object.clone();
    for attempt in 0..2 {
        if observed_generation(&current).is_some_and(|newer| newer > generation) {
            context.count(|f| f.superseded += 1);
            tracing::info!(resource = %name, generation, "status left: the resource shows a newer observedGeneration");
            return Ok(Written::Later);
        }
        let status = status_of(&current, verdict, generation, context.state.clock.now());
        if current.data.get("status") == Some(&status) {
            context.count(|f| f.unchanged += 1);
            return Ok(Written::Done(current.resource_version()));
        }
        let mut patch = serde_json::json!({ "status": status });
        if let Some(version) = current.resource_version() {
            patch["metadata"] = serde_json::json!({ "resourceVersion": version });
        }
        match context.within(api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))).await {
            Ok(written) => {
                context.count(|f| f.written += 1);
                return Ok(Written::Done(written.resource_version()));
            }
            Err(Failure::Kube(kube::Error::Api(e))) if e.code == 409 => {
                context.count(|f| f.conflicts += 1);
                tracing::info!(resource = %name, attempt, "status conflict: the resource changed since it was read");
                if attempt == 0 {
                    current = context.within(api.get(&name)).await?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Written::Later)
}

/// The `observedGeneration` a resource's status names, if any.
fn observed_generation(object: &DynamicObject) -> Option<i64> {
    object.data.get("status").and_then(|s| s.get("observedGeneration")).and_then(serde_json::Value::as_i64)
}

/// A problem's detail with its field errors.
fn problem_text(p: &Problem) -> String {
    let fields: Vec<String> = p.errors.iter().map(|e| format!("{} : {}", e.field, e.message)).collect();
    if fields.is_empty() {
        p.detail.clone()
    } else {
        format!("{} ({})", p.detail, fields.join(" ; "))
    }
}

/// Moves a newly declared tenant through the governance gate to `active` (as a DAN does
/// through the API), then runs its reconcile pass; `None` when that pass did not run
/// because another process held the tenant's lease all the while it waited.
async fn provision(state: &TenantsState, actor: &Actor, tenant: Tenant) -> Result<Option<Verdict>, Failure> {
    let mut tenant = tenant;
    let mut blocked = None;
    for to in [Status::Provisioning, Status::Active] {
        if !tenant.status.can_move_to(to) || !matches!(tenant.status, Status::Requested | Status::Provisioning) {
            continue;
        }
        match tenants::transition(state, actor, &tenant, Move::to(to)).await {
            Ok(moved) => tenant = moved,
            Err(p) if p.kind == ProblemKind::Conflict => {
                blocked = Some(("NoConvention", p.detail));
                break;
            }
            Err(p) => return Err(p.into()),
        }
    }
    if blocked.is_none() {
        let provisioning = state.provisioning();
        // A failed apply is recorded on the tenant (and shown as Degraded): not an error of this
        // reconcile. A pass that could not run at all (no cluster client, no database) is: the
        // status then claims nothing.
        let report = reconcile::pass(&provisioning, Some(&tenant.slug), state.clock.now()).await?;
        if report.held > 0 {
            tracing::info!(tenant = %tenant.slug, "operator pass deferred: another process holds the tenant");
            return Ok(None);
        }
    }
    let tenant = tenants::get_tenant(&state.store, &tenant.id).await?;
    Ok(Some(Verdict { tenant, blocked, refused: None }))
}

/// The resource was deleted: its tenant decommissioned the normal way (the lifecycle move,
/// then a pass that removes the workloads and keeps the data) before the finalizer goes;
/// the tenant then returns to the API (for archiving).
async fn decommission(context: &Context, object: &DynamicObject) -> Result<Action, Failure> {
    let state = &context.state;
    let by = declared_by(&object.namespace().unwrap_or_default(), &object.name_any());
    let Some(tenant) = tenants::get_tenant(&state.store, &object.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if tenant.declared_by.as_deref() != Some(by.as_str()) {
        // Never adopted (a tenant of the API of the same name): nothing of it is ours to remove.
        return Ok(Action::await_change());
    }
    let actor = Actor::system(ACTOR);
    let tenant = if tenant.status.can_move_to(Status::Decommissioning) {
        let reason = format!("ressource Kubernetes {by} supprimée du cluster");
        tenants::transition(state, &actor, &tenant, Move::to(Status::Decommissioning).because(&reason)).await?
    } else {
        tenant
    };
    let report = reconcile::pass(&state.provisioning(), Some(&tenant.slug), state.clock.now()).await?;
    if report.failed > 0 || report.deferred > 0 {
        return Err(Failure::Domain(format!("tenant {} : décommissionnement pas encore appliqué", tenant.slug)));
    }
    tenants::release_declaration(&state.store, &tenant, &actor.name, &by, state.clock.now()).await?;
    context.resources.lock().expect("resources lock").remove(&tenant.id);
    Ok(Action::await_change())
}

/// The `status` of a resource: `phase` (the tenant's lifecycle state, or `Blocked`,
/// `Invalid`), `observedGeneration` (`generation`, the one the verdict is about), and the
/// conditions Ready, Progressing, Degraded, GovernanceBlocked; a condition keeps its
/// `lastTransitionTime` from `object`'s status while its status holds.
fn status_of(object: &DynamicObject, verdict: &Verdict, generation: i64, now: DateTime<Utc>) -> serde_json::Value {
    let previous: Vec<Condition> = object
        .data
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let provisioning = match (&verdict.tenant, &verdict.refused) {
        (_, Some(message)) => tenants::ProvisioningState { error: Some(message.clone()), ..Default::default() },
        (Some(tenant), None) => tenant.provisioning_state.clone(),
        (None, None) => tenants::ProvisioningState::default(),
    };
    let mut all = conditions::conditions(&provisioning, generation, &previous, now);
    if verdict.refused.is_some() {
        for c in &mut all {
            c.reason = "InvalidSpec".into();
        }
    }
    if let Some((reason, message)) = &verdict.blocked {
        // Held back by governance: neither progressing nor degraded, not ready; false since
        // the previous status if it said so already (a later reconcile moves no time).
        all = all
            .iter()
            .map(|c| conditions::condition(&c.type_, false, reason, message.clone(), generation, &previous, now))
            .collect();
    }
    let blocked = conditions::condition(
        "GovernanceBlocked",
        verdict.blocked.is_some(),
        verdict.blocked.as_ref().map_or("Allowed", |b| b.0),
        verdict.blocked.as_ref().map_or_else(|| "gouvernance respectée".to_string(), |(_, m)| m.clone()),
        generation,
        &previous,
        now,
    );
    all.push(blocked);
    let phase = match (&verdict.blocked, &verdict.refused, &verdict.tenant) {
        (Some(_), _, _) => "Blocked".to_string(),
        (_, Some(_), _) => "Invalid".to_string(),
        (_, _, Some(tenant)) => tenant.status.as_str().to_string(),
        _ => "Pending".to_string(),
    };
    serde_json::json!({
        "phase": phase,
        "observedGeneration": generation,
        "conditions": all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(generation: i64, status: Option<serde_json::Value>) -> DynamicObject {
        let mut o = DynamicObject::new("doisneau", &resource()).within("ecoles");
        o.metadata.generation = Some(generation);
        if let Some(status) = status {
            o.data = serde_json::json!({ "status": status });
        }
        o
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
    }

    fn condition<'a>(status: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
        status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == kind).unwrap()
    }

    #[test]
    fn a_blocked_resource_shows_governance_blocked_with_its_reason_and_the_generation() {
        let verdict = Verdict { tenant: None, blocked: Some(("NameTaken", "un tenant existe".into())), refused: None };
        let status = status_of(&object(3, None), &verdict, 3, at(0));
        assert_eq!(status["phase"], "Blocked");
        assert_eq!(status["observedGeneration"], 3);
        let blocked = condition(&status, "GovernanceBlocked");
        assert_eq!((&blocked["status"], &blocked["reason"]), (&"True".into(), &"NameTaken".into()));
        assert_eq!(condition(&status, "Ready")["status"], "False");
        assert_eq!(condition(&status, "Progressing")["status"], "False");
    }

    #[test]
    fn the_transition_time_of_governance_blocked_moves_only_when_its_status_changes() {
        let blocked = Verdict { tenant: None, blocked: Some(("NoConvention", "aucune".into())), refused: None };
        let first = status_of(&object(1, None), &blocked, 1, at(0));
        let again = status_of(&object(1, Some(first.clone())), &blocked, 1, at(60));
        for kind in ["Ready", "Progressing", "Degraded", "GovernanceBlocked"] {
            let (before, after) = (condition(&first, kind), condition(&again, kind));
            assert_eq!(after["lastTransitionTime"], before["lastTransitionTime"], "{kind}");
        }
        let free = Verdict { tenant: None, blocked: None, refused: None };
        let lifted = status_of(&object(1, Some(again.clone())), &free, 1, at(120));
        let moved = condition(&lifted, "GovernanceBlocked");
        assert_eq!(moved["status"], "False");
        assert_ne!(moved["lastTransitionTime"], condition(&again, "GovernanceBlocked")["lastTransitionTime"]);
    }

    #[test]
    fn a_refused_spec_is_degraded_with_the_domains_message() {
        let verdict = Verdict { tenant: None, blocked: None, refused: Some("spec.hostname : invalide".into()) };
        let status = status_of(&object(2, None), &verdict, 2, at(0));
        assert_eq!(status["phase"], "Invalid");
        let degraded = condition(&status, "Degraded");
        assert_eq!((&degraded["status"], &degraded["reason"]), (&"True".into(), &"InvalidSpec".into()));
        assert_eq!(degraded["message"], "spec.hostname : invalide");
    }
}
