//! The reconciler: for each tenant, render the desired objects, compare their
//! hash with the last applied one and check that the backend still holds them,
//! and apply only what changed. A pass where nothing changed writes nothing to
//! the backend. A tenant is written under its lease (`tenant_leases`): one
//! writer per tenant across processes. A failing tenant is retried with
//! exponential backoff without holding up the others. During a rolling upgrade, a
//! replica leaves alone what a newer replica rendered from the same tenant inputs
//! ([`left_to_newer`]): replicas of two releases do not roll a tenant back and forth.

use super::backend::{Backend, BackendError, Observation, Observed};
use super::lease::{self, Writer};
use super::platform::{self, Platform};
use super::purge;
use super::quantity;
use crate::provisioning::ProvisioningState;
use crate::tenants::{self, ReconcileInput, Status, Tenant};
use chrono::{DateTime, Duration, Utc};
use ent_kernel::clock::ticks_every;
use ent_kernel::config::ClusterConfig;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::{timestamp, Tx};
use ent_ops::jobs::JobFuture;
use ent_platform::catalog::{Catalog, Service};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PassReport {
    pub tenants: u64,
    /// Tenants whose objects were written to the backend.
    pub applied: u64,
    pub unchanged: u64,
    pub failed: u64,
    /// Tenants waiting for their retry time, or held by another writer.
    pub deferred: u64,
    /// Of the deferred, the tenants another writer held (their lease) longer than this pass
    /// waited: not reconciled by this pass.
    pub held: u64,
}

/// The hash of everything `render` reads: the tenant's own inputs, the render version
/// and the cluster configuration. Rendering is pure, so equal inputs mean equal desired
/// objects: a no-op pass need not even render. Of a service, `render` reads only its
/// code, name and deployment facts (not its RGPD facts).
fn inputs_hash(input: &ReconcileInput, services: &[&Service], render_version: i64, cluster: &ClusterConfig) -> String {
    let services: Vec<_> = services.iter().map(|s| (&s.code, &s.name, &s.deployment)).collect();
    // The version as the text it was before it could be set (a hash unchanged by that).
    let mut items = vec![json(&render_version.to_string())];
    items.extend(own_fields(input));
    items.extend([json(&services), json(cluster)]);
    hash_of(&items)
}

/// The hash of the tenant's own inputs only (its spec, organisation, secret seed and
/// services' codes and names), whatever renders them: what a newer replica's render must
/// have been made from for an older one to leave it alone. The services' deployment facts
/// (images, digests) are the catalog's, platform side ([`platform::platform_hash`]): a
/// release that bumps an image still defers to (or supersedes) the other's render.
fn own_inputs_hash(input: &ReconcileInput, services: &[&Service]) -> String {
    let services: Vec<_> = services.iter().map(|s| (&s.code, &s.name)).collect();
    let mut items = own_fields(input);
    items.push(json(&services));
    hash_of(&items)
}

/// The tenant's fields that both [`inputs_hash`] and [`own_inputs_hash`] read, in their
/// order, each as its JSON text.
fn own_fields(input: &ReconcileInput) -> Vec<String> {
    let t = &input.tenant;
    let o = &input.org;
    vec![
        json(&t.id),
        json(&t.slug),
        json(&t.hostname),
        json(&t.accounts),
        json(&t.identity_source),
        json(&t.status),
        json(&o.kind),
        json(&o.code),
        json(&o.academie_code),
        json(&input.secret_seed),
    ]
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("render inputs serialise")
}

/// The SHA-256 (hex) of the JSON array of `items` (each a JSON text): the very bytes
/// `serde_json` writes for a tuple of the values, which the stored hashes were made of.
fn hash_of(items: &[String]) -> String {
    hex::encode(Sha256::digest(format!("[{}]", items.join(","))))
}

/// Delay before the next attempt after `failures` failures: 1 min doubling, at most 1 h.
pub fn backoff(failures: i64) -> Duration {
    Duration::minutes((1i64 << failures.clamp(1, 7).saturating_sub(1)).min(60))
}

/// [`backoff`] plus up to a fifth more, drawn from the tenant and the failure count:
/// tenants that failed together (a cluster outage) do not all come back at once.
pub fn backoff_with_jitter(tenant_id: &str, failures: i64) -> Duration {
    let base = backoff(failures);
    let draw = Sha256::digest(format!("{tenant_id}/{failures}").as_bytes());
    let fraction = f64::from(u16::from_be_bytes([draw[0], draw[1]])) / f64::from(u16::MAX);
    base + Duration::milliseconds((base.num_milliseconds() as f64 * 0.2 * fraction) as i64)
}

enum Outcome {
    Applied,
    Unchanged,
    Deferred,
    /// Deferred: another writer held the tenant's lease.
    Held,
}

const ACTOR: &str = "system:reconciler";

/// Records what the backend reports, when it changed; an event when its state changed.
async fn record_observation(
    tx: &mut Tx,
    tenant: &Tenant,
    seen: &Observation,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let before = &tenant.provisioning_state;
    if before.observed.as_deref() == Some(seen.state.as_str())
        && before.observed_detail.as_deref() == Some(&seen.detail)
    {
        return Ok(());
    }
    sqlx::query("UPDATE tenants SET observed = $1, observed_detail = $2, observed_at = $3 WHERE id = $4")
        .bind(seen.state.as_str())
        .bind(&seen.detail)
        .bind(timestamp(now))
        .bind(&tenant.id)
        .execute(&mut **tx)
        .await?;
    // A tenant never deployed (still requested) has nothing to report as removed.
    let first_and_empty = before.observed.is_none() && seen.state == Observed::Removed;
    if before.observed.as_deref() != Some(seen.state.as_str()) && !first_and_empty {
        if let Some(kind) = seen.state.event_kind() {
            tenants::event(tx, &tenant.id, ACTOR, kind, &seen.detail, now).await?;
        }
    }
    Ok(())
}

/// Records what the backend reports ([`record_observation`]) and, for a purged tenant it reports
/// removed, issues its attestation of destruction ([`purge::attest`], `attesting` read before the
/// transaction): dated now, confirmed when the backend confirms a removal (kube).
async fn record_report(
    tx: &mut Tx,
    (state, backend): (&ProvisioningState, &Backend),
    tenant: &Tenant,
    seen: &Observation,
    attesting: Option<&purge::Attesting>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    record_observation(tx, tenant, seen, now).await?;
    match attesting {
        Some(attesting) => purge::attest(tx, state, tenant, attesting, backend.confirms_removal(), now).await,
        None => Ok(()),
    }
}

/// Reconciles one tenant: render and apply if its inputs changed or the backend
/// no longer holds what was applied (a damaged manifests folder); otherwise only
/// read back a rollout still under way (kube), never writing to the backend.
async fn reconcile_one(
    state: &ProvisioningState,
    backend: &Backend,
    input: &ReconcileInput,
    writer: &Writer,
    now: DateTime<Utc>,
) -> Result<Outcome, Problem> {
    let tenant = &input.tenant;
    if let Err(e) = services(state, input) {
        return report_unresolved(state, input, writer, e, now).await;
    }
    if backing_off(state, input, now)? {
        return Ok(Outcome::Deferred);
    }
    // A watch event asked for this tenant: applied again (a no-op server-side apply
    // writes nothing; a scaled Deployment is put back) and read back.
    // Unless what is applied is a newer replica's render: its drift is that replica's to repair.
    let resync = state.reconciler.take_resync(&tenant.slug);
    // Without the lease, only a settled tenant with nothing to record is left alone: a
    // rollout to read back or an error to clear is written under the lease, from the
    // tenant read again (else a stale read could overwrite what the holder just wrote).
    if settled(state, backend, input, resync, now)? && !to_record(tenant) && !services_unrecorded(state, input) {
        return Ok(Outcome::Unchanged);
    }
    // Until this write ends (or is cut short), the shutdown leaves its lease to it.
    let _writing = state.reconciler.writing(&tenant.id);
    if !lease::wait_for(state, &tenant.id, writer).await? {
        // Another writer holds this tenant for long: its pass records the outcome.
        return Ok(Outcome::Held);
    }
    let outcome = tokio::select! {
        outcome = write_fresh(state, backend, &tenant.slug, resync, now) => outcome,
        lost = lease::keep(state, &tenant.id, writer) => Err(lost),
    };
    lease::release(state, &tenant.id, writer).await?;
    outcome
}

/// Whether the tenant waits for its retry time: its last apply failed with the
/// inputs it still has. Changed inputs (a corrected spec) are applied at once.
fn backing_off(state: &ProvisioningState, input: &ReconcileInput, now: DateTime<Utc>) -> Result<bool, Problem> {
    let waiting = input.tenant.provisioning_state.retry_at.as_ref().is_some_and(|at| *at > timestamp(now));
    if !waiting {
        return Ok(false);
    }
    Ok(input.failed_hash.as_deref() == Some(inputs(state, input)?.hash.as_str()))
}

/// Under the tenant's lease: reads the tenant again (another writer may have
/// written newer inputs since this pass read them) and writes it if still needed.
async fn write_fresh(
    state: &ProvisioningState,
    backend: &Backend,
    slug: &str,
    resync: bool,
    now: DateTime<Utc>,
) -> Result<Outcome, Problem> {
    let Some(input) = tenants::reconcile_inputs(&state.store, Some(slug)).await?.into_iter().next() else {
        return Ok(Outcome::Unchanged);
    };
    if backing_off(state, &input, now)? {
        return Ok(Outcome::Deferred);
    }
    if settled(state, backend, &input, resync, now)? {
        record_settled(state, backend, &input, now).await?;
        return Ok(Outcome::Unchanged);
    }
    let inputs = inputs(state, &input)?;
    apply_and_record(state, backend, &input, &inputs, &render(state, &input, &inputs.services), now).await
}

/// What this replica renders a tenant from.
struct Inputs<'a> {
    services: Vec<&'a Service>,
    /// The hash of everything `render` reads ([`inputs_hash`], `tenants.applied_hash`).
    hash: String,
    /// The hash of the tenant's own inputs ([`own_inputs_hash`], `tenants.applied_inputs_hash`).
    own: String,
    /// The recorded service codes the catalog no longer has, rendered without ([`left_out`]).
    left_out: Vec<String>,
}

/// The services of the tenant and the hashes of what `render` reads.
fn inputs<'a>(state: &'a ProvisioningState, input: &ReconcileInput) -> Result<Inputs<'a>, Problem> {
    let services = services(state, input)?;
    let hash = inputs_hash(input, &services, state.reconciler.render_version, &state.config.provisioning.cluster);
    let own = own_inputs_hash(input, &services);
    Ok(Inputs { services, hash, own, left_out: left_out(state, input) })
}

/// The services of the tenant: the catalog's resolution of its bouquet and options. A tenant
/// the catalog no longer resolves (an overlay or a release changed a bouquet) is rendered with
/// none when its state renders nothing (requested, purged), else with the services it was last
/// applied with (`tenants.applied_services`), as the catalog has them now: its suspension,
/// decommissioning or purge still reaches the backend. Without them, the error names the tenant.
fn services<'a>(state: &'a ProvisioningState, input: &ReconcileInput) -> Result<Vec<&'a Service>, Problem> {
    let tenant = &input.tenant;
    let subscribed = Subscribed { status: tenant.status, bouquet: &tenant.bouquet, options: &tenant.options };
    rendered_services(&state.catalog, &subscribed, &input.applied_services).map_err(|error| {
        let detail = format!(
            "le catalogue ne résout plus le bouquet « {} » du tenant {} ({}) et les services appliqués ne sont pas \
             connus : tenant non réconcilié",
            tenant.bouquet, tenant.slug, error.detail
        );
        Problem::new(ProblemKind::Unavailable, detail)
    })
}

/// A tenant's state and subscription, as [`rendered_services`] reads them.
pub struct Subscribed<'a> {
    pub status: Status,
    pub bouquet: &'a str,
    pub options: &'a [String],
}

/// The services a tenant is rendered with (see [`services`]): the catalog's resolution of its
/// bouquet and options; when the catalog no longer resolves them, none in a state that renders
/// nothing (requested, purged), else those it was last applied with (`applied`) that the
/// catalog still has. The refusal of the resolution when those are not known either.
pub fn rendered_services<'c>(
    catalog: &'c Catalog,
    tenant: &Subscribed<'_>,
    applied: &[String],
) -> Result<Vec<&'c Service>, Problem> {
    let options: Vec<&str> = tenant.options.iter().map(String::as_str).collect();
    let error = match catalog.resolve(tenant.bouquet, &options) {
        Ok(services) => return Ok(services),
        Err(e) => e,
    };
    if matches!(tenant.status, Status::Requested | Status::Purged) {
        return Ok(vec![]);
    }
    // A recorded code the catalog no longer has (a service a release removed) is left out.
    let applied: Vec<&Service> = applied.iter().filter_map(|code| catalog.service(code)).collect();
    Some(applied).filter(|services| !services.is_empty()).ok_or(error)
}

/// The services a tenant runs, as the catalog describes them: those it was last applied with
/// (`applied`, `tenants.applied_services`) once recorded, whatever the catalog's bouquets have
/// become since (a code the catalog no longer has is left out: nothing describes it); the
/// catalog's resolution of its bouquet and options while nothing is recorded (requested, or not
/// applied since migration 0047), or its refusal. Not [`rendered_services`]: what the next apply
/// renders, not what the last one deployed.
pub fn running_services<'c>(
    catalog: &'c Catalog,
    bouquet: &str,
    options: &[String],
    applied: &[String],
) -> Result<Vec<&'c Service>, Problem> {
    if !applied.is_empty() {
        return Ok(applied.iter().filter_map(|code| catalog.service(code)).collect());
    }
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    catalog.resolve(bouquet, &options)
}

/// The codes of the services the tenant was last applied with that the catalog no longer has,
/// when [`services`] renders it from them (the catalog no longer resolves its bouquet and
/// options): left out of its render, and named in its `reconciled` event.
fn left_out(state: &ProvisioningState, input: &ReconcileInput) -> Vec<String> {
    let tenant = &input.tenant;
    let options: Vec<&str> = tenant.options.iter().map(String::as_str).collect();
    if matches!(tenant.status, Status::Requested | Status::Purged)
        || state.catalog.resolve(&tenant.bouquet, &options).is_ok()
    {
        return vec![];
    }
    input.applied_services.iter().filter(|code| state.catalog.service(code).is_none()).cloned().collect()
}

/// The detail of a `reconciled` event: the objects applied, and the services left out of the
/// render because the catalog no longer has them ([`left_out`]).
fn applied_detail(objects: usize, left_out: &[String]) -> String {
    match left_out {
        [] => format!("{objects} objets appliqués"),
        codes => {
            format!("{objects} objets appliqués ; services retirés du catalogue laissés de côté : {}", codes.join(", "))
        }
    }
}

/// A tenant whose services cannot be known ([`services`]): its error and an event recorded
/// once (under its lease), the failure counted (`cause="catalog"`) and logged on every pass.
async fn report_unresolved(
    state: &ProvisioningState,
    input: &ReconcileInput,
    writer: &Writer,
    error: Problem,
    now: DateTime<Utc>,
) -> Result<Outcome, Problem> {
    let tenant = &input.tenant;
    tracing::error!(tenant = %tenant.slug, error = %error.detail, "tenant not reconciled: catalog does not resolve it");
    state.reconciler.tenant_done(&tenant.slug, 0.0, Some("catalog"), state.clock.now().timestamp());
    let recorded = tenant.provisioning_state.error.as_deref() == Some(error.detail.as_str());
    let _writing = state.reconciler.writing(&tenant.id);
    if !recorded && lease::wait_for(state, &tenant.id, writer).await? {
        let mut tx = state.store.begin_write().await?;
        sqlx::query("UPDATE tenants SET reconcile_error = $1 WHERE id = $2")
            .bind(&error.detail)
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await?;
        tenants::event(&mut tx, &tenant.id, ACTOR, "reconcile_failed", &error.detail, now).await?;
        tx.commit().await?;
        lease::release(state, &tenant.id, writer).await?;
    }
    Err(error)
}

/// The platform side of this replica's renders.
fn this_platform(state: &ProvisioningState) -> Platform {
    Platform {
        render_version: state.reconciler.render_version,
        cluster: platform::platform_hash(&state.config.provisioning.cluster, &state.catalog),
        started_at: state.reconciler.started_at.clone(),
    }
}

fn render(state: &ProvisioningState, input: &ReconcileInput, services: &[&Service]) -> Vec<super::RenderedObject> {
    super::render(&input.tenant, &input.org, services, &input.secret_seed, &state.config.provisioning.cluster)
}

/// True when the applied inputs are the current ones (or a newer replica's render of
/// them: [`left_to_newer`]) and the backend still holds their objects (checked without
/// rendering). `resync`: this replica's own render is due again (a watch event). Writes
/// nothing: what a settled tenant still has to record is [`record_settled`]'s, under the lease.
fn settled(
    state: &ProvisioningState,
    backend: &Backend,
    input: &ReconcileInput,
    resync: bool,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let tenant = &input.tenant;
    let inputs = inputs(state, input)?;
    let intact = |hash: &str| {
        backend.intact(tenant, hash, || render(state, input, &inputs.services).is_empty()).unwrap_or(false)
    };
    if input.applied_hash.as_deref() == Some(inputs.hash.as_str()) {
        let period = state.config.provisioning.reconcile.resync_seconds;
        let due = resync || backend.resync_due(tenant.provisioning_state.reconciled_at.as_deref(), now, period);
        return Ok(intact(&inputs.hash) && !due);
    }
    // A newer replica's render: its resyncs (periodic or asked by a watch event) are its own.
    Ok(left_to_newer(state, input, &inputs, now) && input.applied_hash.as_deref().is_some_and(intact))
}

/// Whether the applied objects are a newer replica's render of the tenant's current inputs
/// (a rolling upgrade: a newer render version; or a cluster configuration or catalog image
/// rolled out: the same version, another platform fingerprint, a process started later):
/// this replica leaves them as they are instead of rolling them back. Changed tenant inputs are applied (the newer
/// replica then applies its render once more). Only while that render is kept fresh,
/// applied within two resync periods (a newer `kube` replica applies it again every period):
/// past that its writer is taken for gone (a rollback) and this replica applies its own.
fn left_to_newer(state: &ProvisioningState, input: &ReconcileInput, inputs: &Inputs, now: DateTime<Utc>) -> bool {
    let applied = &input.applied_by;
    let Some(by) = Platform::applied(applied) else { return false };
    let window = Duration::seconds(2 * state.config.provisioning.reconcile.resync_seconds as i64);
    let since = timestamp(now - window);
    let fresh = input.tenant.provisioning_state.reconciled_at.as_deref().is_some_and(|at| at > since.as_str());
    applied.applied_inputs_hash.as_deref() == Some(inputs.own.as_str()) && fresh && by.supersedes(&this_platform(state))
}

/// Whether the Deployment `name` of the tenant, as a watch event shows it (its `spec`; `None`:
/// deleted), no longer holds what this replica renders: a rendered field of its `spec` missing or
/// changed (scaled or edited by hand), a rendered one deleted, or one not rendered at all still
/// there. The event of a rollout's progress (its status), of this replica's own apply or of its
/// prune holds the render: no apply for it.
pub fn drifted(
    state: &ProvisioningState,
    input: &ReconcileInput,
    name: &str,
    live_spec: Option<&serde_json::Value>,
) -> Result<bool, Problem> {
    let services = inputs(state, input)?.services;
    let rendered = render(state, input, &services);
    let desired = rendered.iter().find(|o| o.kind == "Deployment" && o.name == name);
    Ok(match (desired, live_spec) {
        (None, None) => false,
        (Some(desired), Some(live)) => !holds(live, &desired.manifest["spec"]),
        (None, Some(_)) | (Some(_), None) => true,
    })
}

/// Whether `live` holds every field `desired` sets, with its value (the fields the API
/// server adds, its defaults, are not compared). Quantities are compared by value: the
/// API server returns them canonicalised (`1024Mi` as `1Gi`, `1000m` as `1`).
fn holds(live: &serde_json::Value, desired: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (live, desired) {
        (Value::Object(live), Value::Object(desired)) => {
            desired.iter().all(|(key, value)| value.is_null() || live.get(key).is_some_and(|l| holds(l, value)))
        }
        (Value::Array(live), Value::Array(desired)) => {
            live.len() == desired.len() && live.iter().zip(desired).all(|(l, d)| holds(l, d))
        }
        (Value::String(live), Value::String(desired)) => live == desired || quantity::same_value(live, desired),
        _ => live == desired,
    }
}

/// Whether a settled tenant has something to record: a rollout to read back, a leftover error.
fn to_record(tenant: &Tenant) -> bool {
    Observed::unsettled(tenant.provisioning_state.observed.as_deref()) || tenant.provisioning_state.error.is_some()
}

/// Whether a settled tenant's services are not recorded yet (`tenants.applied_services` NULL:
/// applied by a release before migration 0047, and settled since): [`record_settled`] records
/// them, so that the tenant can still be suspended or purged once the catalog no longer resolves it.
fn services_unrecorded(state: &ProvisioningState, input: &ReconcileInput) -> bool {
    input.applied_services.is_empty() && services(state, input).is_ok_and(|services| !services.is_empty())
}

/// The codes of `services`, as `tenants.applied_services` holds them (a JSON array).
fn service_codes(services: &[&Service]) -> String {
    json(&services.iter().map(|s| &s.code).collect::<Vec<_>>())
}

/// Records the services a settled tenant was applied with ([`services_unrecorded`]): its applied
/// hash is that of its current inputs (or a newer replica's render of the same own inputs), so
/// they are the services it renders now.
async fn record_services(state: &ProvisioningState, input: &ReconcileInput) -> Result<(), Problem> {
    let codes = service_codes(&inputs(state, input)?.services);
    sqlx::query("UPDATE tenants SET applied_services = $1 WHERE id = $2")
        .bind(codes)
        .bind(&input.tenant.id)
        .execute(state.store.pool())
        .await?;
    Ok(())
}

/// Under the tenant's lease, of a settled tenant read under it: reads back an unsettled
/// rollout, clears a leftover error and records services not recorded yet.
async fn record_settled(
    state: &ProvisioningState,
    backend: &Backend,
    input: &ReconcileInput,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let tenant = &input.tenant;
    if Observed::unsettled(tenant.provisioning_state.observed.as_deref()) {
        let services = inputs(state, input)?.services;
        if let Ok(Some(seen)) = backend.observe(tenant, &render(state, input, &services)).await {
            let attesting = purge::attesting(state, tenant, &seen).await?;
            let mut tx = state.store.begin_write().await?;
            record_report(&mut tx, (state, backend), tenant, &seen, attesting.as_ref(), now).await?;
            tx.commit().await?;
        }
    }
    if tenant.provisioning_state.error.is_some() {
        clear_error(state, &tenant.id).await?;
        state.reconciler.tenants_read([(tenant.slug.as_str(), false)], false);
    }
    if services_unrecorded(state, input) {
        record_services(state, input).await?;
    }
    Ok(())
}

/// The backend holds what was applied: no error stays on the tenant.
async fn clear_error(state: &ProvisioningState, tenant_id: &str) -> Result<(), Problem> {
    sqlx::query(
        "UPDATE tenants SET reconcile_error = NULL, reconcile_failures = 0, retry_at = NULL, failed_hash = NULL \
         WHERE id = $1",
    )
    .bind(tenant_id)
    .execute(state.store.pool())
    .await?;
    Ok(())
}

/// Before a change is applied, what the cluster holds is no longer known: a pass cut short
/// (a shutdown, a lost lease) leaves no applied hash behind it, and the next pass applies
/// whatever the inputs are then, a spec reverted meanwhile included (it would otherwise read
/// as settled on the half-applied change until the periodic resync).
async fn forget_applied(state: &ProvisioningState, tenant_id: &str) -> Result<(), Problem> {
    sqlx::query(
        "UPDATE tenants SET applied_hash = NULL, applied_inputs_hash = NULL, applied_render_version = NULL, \
         applied_cluster_hash = NULL, applied_started_at = NULL WHERE id = $1",
    )
    .bind(tenant_id)
    .execute(state.store.pool())
    .await?;
    Ok(())
}

/// Applies the objects (under the tenant's lease) and records the outcome.
async fn apply_and_record(
    state: &ProvisioningState,
    backend: &Backend,
    input: &ReconcileInput,
    inputs: &Inputs<'_>,
    objects: &[super::RenderedObject],
    now: DateTime<Utc>,
) -> Result<Outcome, Problem> {
    let tenant = &input.tenant;
    let hash = inputs.hash.as_str();
    if input.applied_hash.as_deref().is_some_and(|applied| applied != hash) {
        forget_applied(state, &tenant.id).await?;
    }
    let deadline = state.config.provisioning.reconcile.tenant_deadline();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(deadline, backend.apply(tenant, objects, hash))
        .await
        .unwrap_or(Err(BackendError::Deadline(deadline.as_secs_f64())));
    let cause = result.as_ref().err().map(BackendError::cause);
    let seconds = started.elapsed().as_secs_f64();
    state.reconciler.tenant_done(&tenant.slug, seconds, cause.as_deref(), state.clock.now().timestamp());
    let attesting = match &result {
        Ok(seen) => purge::attesting(state, tenant, seen).await?,
        Err(_) => None,
    };
    let mut tx = state.store.begin_write().await?;
    match &result {
        Ok(seen) => {
            // Recorded with what rendered it: an older replica leaves it alone (`left_to_newer`).
            let by = this_platform(state);
            sqlx::query(
                "UPDATE tenants SET applied_hash = $1, reconciled_at = $2, reconcile_error = NULL, reconcile_failures = 0, \
                 retry_at = NULL, failed_hash = NULL, applied_inputs_hash = $3, applied_render_version = $4, \
                 applied_cluster_hash = $5, applied_started_at = $6, applied_services = $7 WHERE id = $8",
            )
            .bind(hash)
            .bind(timestamp(now))
            .bind(&inputs.own)
            .bind(by.render_version)
            .bind(&by.cluster)
            .bind(&by.started_at)
            .bind(service_codes(&inputs.services))
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await?;
            // A resync applies the same inputs again: no event for it.
            if input.applied_hash.as_deref() != Some(hash) {
                let detail = applied_detail(objects.len(), &inputs.left_out);
                tenants::event(&mut tx, &tenant.id, ACTOR, "reconciled", &detail, now).await?;
            }
            record_report(&mut tx, (state, backend), tenant, seen, attesting.as_ref(), now).await?;
            record_retained(&mut tx, state, input, &inputs.services).await?;
        }
        Err(e) => {
            // The same inputs failing again double the delay; new inputs start over.
            let again = input.failed_hash.as_deref() == Some(hash);
            let failures = if again { tenant.provisioning_state.failures + 1 } else { 1 };
            let retry_at = now + backoff_with_jitter(&tenant.id, failures);
            // Part of the objects may have been written: what was applied is no longer
            // known, so the next pass applies whatever the inputs are then (a reverted spec too).
            sqlx::query(
                "UPDATE tenants SET reconcile_error = $1, reconcile_failures = $2, retry_at = $3, applied_hash = NULL, \
                 failed_hash = $4, applied_inputs_hash = NULL, applied_render_version = NULL, applied_cluster_hash = NULL, \
                 applied_started_at = NULL WHERE id = $5",
            )
            .bind(e.to_string())
            .bind(failures)
            .bind(timestamp(retry_at))
            .bind(hash)
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await?;
            let message = format!("échec n° {failures}, nouvel essai à {} : {e}", timestamp(retry_at));
            tenants::event(&mut tx, &tenant.id, ACTOR, "reconcile_failed", &message, now).await?;
        }
    }
    tx.commit().await?;
    match result {
        Ok(_) => Ok(Outcome::Applied),
        Err(e) => Err(Problem::new(ProblemKind::Unavailable, format!("{}: {e}", tenant.slug))),
    }
}

/// The services whose data the tenant still holds without running them, once applied with
/// `applied`: those held before and those `previous_applied` had that `applied` no longer
/// has and whose volume the backends keep (a removed service's claim stays, marked
/// retained, until the purge deletes the namespace or folder), less those applied again.
pub fn retained_after(
    held: &[String],
    previous_applied: &[String],
    applied: &[&Service],
    catalog: &Catalog,
) -> Vec<String> {
    let applied_again = |code: &String| applied.iter().any(|s| s.code == *code);
    let keeps_volume = |code: &String| catalog.service(code).is_some_and(|s| s.deployment.needs_storage());
    let dropped = previous_applied.iter().filter(|code| keeps_volume(code));
    let mut retained: Vec<String> = Vec::new();
    for code in held.iter().chain(dropped).filter(|code| !applied_again(code)) {
        if !retained.contains(code) {
            retained.push(code.clone());
        }
    }
    retained
}

/// Records after an apply the services whose data the tenant holds without running them
/// (`tenants.retained_services`, migration 0048, read by the RGPD register): [`retained_after`],
/// none once purged (that apply removed everything). Written only when it changes.
async fn record_retained(
    tx: &mut Tx,
    state: &ProvisioningState,
    input: &ReconcileInput,
    applied: &[&Service],
) -> Result<(), Problem> {
    let retained = match input.tenant.status {
        Status::Purged => Vec::new(),
        _ => retained_after(&input.retained_services, &input.applied_services, applied, &state.catalog),
    };
    if retained == input.retained_services {
        return Ok(());
    }
    sqlx::query("UPDATE tenants SET retained_services = $1 WHERE id = $2")
        .bind((!retained.is_empty()).then(|| json(&retained)))
        .bind(&input.tenant.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One pass over every tenant (or one), `provisioning.concurrency` at a time,
/// each failure isolated: a failing or slow tenant never holds up the others.
pub async fn pass(state: &ProvisioningState, only: Option<&str>, now: DateTime<Utc>) -> Result<PassReport, Problem> {
    // Two passes (of this process or another) never write one tenant at once: each
    // tenant is written under its lease; a tenant held by another writer is deferred.
    let backend = build_backend(state).await?;
    let inputs = tenants::reconcile_inputs(&state.store, only).await?;
    let read = inputs.iter().map(|i| (i.tenant.slug.as_str(), i.tenant.provisioning_state.error.is_some()));
    state.reconciler.tenants_read(read, only.is_none());
    let concurrency = state.config.provisioning.concurrency.max(1);
    // Futures built up front (not by a closure of the stream): their lifetimes stay concrete.
    let writer = Writer::new(state, now);
    let (started, sent) = (std::time::Instant::now(), state.reconciler.requests_sent());
    let work: Vec<_> = inputs.iter().map(|input| reconcile_one(state, &backend, input, &writer, now)).collect();
    let outcomes: Vec<Result<Outcome, Problem>> =
        futures_util::stream::iter(work).buffer_unordered(concurrency).collect().await;
    state.reconciler.pass_done(started.elapsed().as_secs_f64(), state.reconciler.requests_sent() - sent);
    let mut report = PassReport { tenants: inputs.len() as u64, ..PassReport::default() };
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Applied) => report.applied += 1,
            Ok(Outcome::Unchanged) => report.unchanged += 1,
            Ok(Outcome::Deferred) => report.deferred += 1,
            Ok(Outcome::Held) => {
                report.deferred += 1;
                report.held += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e.detail, "reconcile failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// The configured backend; a failure to build it (a kubeconfig, an in-cluster account,
/// a sealing certificate that cannot be read) is logged and counted (`cause="config"`).
async fn build_backend(state: &ProvisioningState) -> Result<Backend, Problem> {
    Backend::from_config(&state.config, &state.reconciler).await.map_err(|e| {
        tracing::error!(error = %e, "reconcile pass failed: provisioning backend not built");
        state.reconciler.pass_failed(&e.cause());
        Problem::new(ProblemKind::Unavailable, e.to_string())
    })
}

/// What became of a pass asked outside the work queue's task ([`through_queue`]).
pub enum Routed {
    /// Handed to this process's work queue.
    Queued,
    /// Left to the next pass (on a live replica, or at restart): the queue was closed at shutdown.
    Left,
    /// Run here: no work queue runs in this process (a command, a test).
    Done(PassReport),
}

/// Hands a pass (of one tenant, or of all: `None`) to the work queue when this process runs
/// one; when the queue was closed at shutdown, leaves it to the next pass (no task of a
/// process that ends takes a tenant's lease). `None`: no queue, the pass is the caller's.
fn hand_over(state: &ProvisioningState, only: Option<&str>) -> Option<Routed> {
    if state.reconciler.enqueue(only.map(str::to_string)) {
        return Some(Routed::Queued);
    }
    if state.reconciler.shutting_down() {
        tracing::info!(tenant = only.unwrap_or("*"), "reconcile left to the next pass: the process is shutting down");
        return Some(Routed::Left);
    }
    None
}

/// A pass asked by a job (`tenants-reconcile`, `tenants-purge`): through the work queue, so
/// that no job waits on a cluster; run here only when no queue runs in this process.
pub async fn through_queue(
    state: &ProvisioningState,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Routed, Problem> {
    if let Some(routed) = hand_over(state, only) {
        return Ok(routed);
    }
    Ok(Routed::Done(pass(state, only, now).await?))
}

/// Reconciles a tenant in the background right after it changed: through the
/// work queue when this process runs one, else in a task of its own; nothing once
/// the queue is closed at shutdown.
pub fn reconcile_soon(state: &ProvisioningState, slug: &str) {
    if hand_over(state, Some(slug)).is_some() {
        return;
    }
    let (state, slug) = (state.clone(), slug.to_string());
    tokio::spawn(async move {
        if let Err(e) = pass(&state, Some(&slug), state.clock.now()).await {
            tracing::warn!(tenant = %slug, error = %e.detail, "reconcile after change failed");
        }
    });
}

/// How often the work queue's task runs a full pass of its own (retries that came
/// due, resyncs, rollouts to read back), besides the tenants queued on a change.
const QUEUE_PASS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The work queue (`entctl serve`): takes the tenants queued by a change and the
/// full passes asked for, and runs them here, outside the job scheduler, so that
/// no job (mail, SLA, RGPD) ever waits on a cluster. Runs until `shutdown`.
pub async fn run_queue(state: ProvisioningState, shutdown: tokio_util::sync::CancellationToken) {
    let mut queue = state.reconciler.open_queue();
    let mut every = ticks_every(QUEUE_PASS_EVERY);
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => None,
            work = queue.recv() => match work { Some(work) => { state.reconciler.depth.fetch_sub(1, std::sync::atomic::Ordering::Relaxed); work } None => break },
        };
        let mut full = first.is_none();
        let mut slugs: std::collections::BTreeSet<String> = first.into_iter().collect();
        while let Ok(work) = queue.try_recv() {
            state.reconciler.depth.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            match work {
                Some(slug) => drop(slugs.insert(slug)),
                None => full = true,
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = run_work(&state, full, &slugs) => {}
        }
    }
    state.reconciler.close_queue();
    // A write cut short leaves its lease: released, so that another replica takes the tenant at once.
    match lease::release_all(&state).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "tenant leases released at shutdown"),
        Err(e) => tracing::warn!(error = %e.detail, "tenant leases not released at shutdown"),
    }
}

/// One round of the queue: a full pass, or a pass per queued tenant.
async fn run_work(state: &ProvisioningState, full: bool, slugs: &std::collections::BTreeSet<String>) {
    let only: Vec<Option<&str>> = if full { vec![None] } else { slugs.iter().map(|s| Some(s.as_str())).collect() };
    for slug in only {
        // Each pass reads the clock: its lease, `reconciled_at` and `retry_at` count from when it
        // starts, not from the round's start (a lease dated back would be expired when taken).
        if let Err(e) = pass(state, slug, state.clock.now()).await {
            tracing::warn!(tenant = slug.unwrap_or("*"), error = %e.detail, "reconcile from the queue failed");
        }
    }
}

pub fn reconcile_job(state: &ProvisioningState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        if state.reconciler.queue_open() {
            // The queue's pass would fail the same way: the run fails here, not in a log only.
            build_backend(state).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        }
        let r = match through_queue(state, None, now).await.map_err(|p| anyhow::anyhow!(p.detail))? {
            Routed::Queued => return Ok("passe complète confiée à la file de réconciliation".to_string()),
            Routed::Left => return Ok("passe complète laissée à la suivante : arrêt du processus en cours".to_string()),
            Routed::Done(r) => r,
        };
        Ok(format!(
            "{} tenant(s) : {} appliqué(s), {} inchangé(s), {} en échec, {} en attente",
            r.tenants, r.applied, r.unchanged, r.failed, r.deferred
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_service_with_a_volume_is_retained_until_it_is_applied_again() {
        let catalog = Catalog::load(None).unwrap();
        let services = |codes: &[&str]| codes.iter().map(|c| catalog.service(c).unwrap()).collect::<Vec<_>>();
        let codes = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        // Moodle's exercices keep their volume; visio has none, nothing of it is left.
        let before = codes(&["portail", "exercices", "visio"]);
        assert_eq!(retained_after(&[], &before, &services(&["portail"]), &catalog), ["exercices"]);
        // What was held stays held beside what is removed now, once each.
        let held = codes(&["exercices"]);
        let now = retained_after(&held, &codes(&["portail", "pad", "exercices"]), &services(&["portail"]), &catalog);
        assert_eq!(now, ["exercices", "pad"]);
        // Applied again: running, no longer retained.
        assert!(retained_after(&held, &codes(&["portail"]), &services(&["portail", "exercices"]), &catalog).is_empty());
    }

    #[test]
    fn the_inputs_hash_is_that_of_the_tuple_of_its_values() {
        // `applied_hash` values are stored: the JSON texts joined must hash to the bytes
        // `serde_json` wrote for the tuple the hashes were first computed over.
        let cluster = ClusterConfig::default();
        let services = vec![("portail".to_string(), "Portail « élève » \"2\"".to_string())];
        let status = tenants::Status::Requested;
        let tuple = ("3".to_string(), "t-1", 1200i64, status, Some("0940198E"), None::<String>, &services, &cluster);
        let expected = hex::encode(Sha256::digest(serde_json::to_vec(&tuple).expect("serialises")));
        let items = [
            json(&"3".to_string()),
            json(&"t-1"),
            json(&1200i64),
            json(&status),
            json(&Some("0940198E")),
            json(&None::<String>),
            json(&services),
            json(&cluster),
        ];
        assert_eq!(hash_of(&items), expected);
        assert_ne!(hash_of(&items[1..]), expected, "every item counts");
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::minutes(1));
        assert_eq!(backoff(2), Duration::minutes(2));
        assert_eq!(backoff(4), Duration::minutes(8));
        assert_eq!(backoff(12), Duration::minutes(60));
    }

    #[test]
    fn jitter_adds_up_to_a_fifth_and_differs_between_tenants() {
        let delays: Vec<Duration> = (0..20).map(|i| backoff_with_jitter(&format!("tenant-{i}"), 3)).collect();
        assert!(delays.iter().all(|d| *d >= Duration::minutes(4) && *d <= Duration::minutes(4) * 6 / 5), "{delays:?}");
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 10, "{delays:?}");
        assert!(backoff_with_jitter("t", 40) <= Duration::minutes(72), "capped");
        assert_eq!(backoff_with_jitter("t", 2), backoff_with_jitter("t", 2), "the same draw for the same attempt");
    }

    #[test]
    fn a_live_spec_holds_the_rendered_fields_whatever_the_server_adds() {
        use serde_json::json;
        let desired =
            json!({ "replicas": 1, "template": { "spec": { "containers": [{ "name": "portail", "image": "i:1" }] } } });
        let defaulted = json!({ "replicas": 1, "revisionHistoryLimit": 10,
            "template": { "spec": { "containers": [{ "name": "portail", "image": "i:1", "imagePullPolicy": "IfNotPresent" }] } } });
        assert!(holds(&defaulted, &desired));
        let scaled = json!({ "replicas": 0, "template": defaulted["template"].clone() });
        assert!(!holds(&scaled, &desired));
        let sidecar = json!({ "replicas": 1, "template": { "spec": { "containers": [
            { "name": "portail", "image": "i:1" }, { "name": "intrus", "image": "x" }] } } });
        assert!(!holds(&sidecar, &desired), "a container added by hand");
        assert!(!holds(&json!({ "template": defaulted["template"].clone() }), &desired), "a rendered field removed");
    }

    #[test]
    fn a_live_spec_holds_quantities_the_server_spelled_otherwise() {
        use serde_json::json;
        let resources = |memory: &str, cpu: &str, limit: &str| {
            json!({ "template": { "spec": { "containers": [{ "name": "portail", "resources": {
                "requests": { "memory": memory, "cpu": cpu }, "limits": { "cpu": limit } } }] } } })
        };
        let desired = resources("1024Mi", "500m", "2");
        assert!(holds(&resources("1Gi", "0.5", "2000m"), &desired), "canonicalised by the API server");
        assert!(holds(&desired, &desired));
        assert!(!holds(&resources("2Gi", "0.5", "2000m"), &desired), "more memory: a real difference");
        assert!(!holds(&resources("1Gi", "600m", "2"), &desired), "more cpu: a real difference");
        assert!(!holds(&resources("1G", "500m", "2"), &desired), "1G is not 1024Mi");
        assert!(!holds(&json!({ "image": "i:2" }), &json!({ "image": "i:1" })), "other strings compared literally");
    }
}
