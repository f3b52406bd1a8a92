//! The reconciler: for each tenant, render the desired objects, compare their
//! hash with the last applied one, and apply only what changed. A pass where
//! nothing changed writes nothing to the backend. A failing tenant is retried
//! with exponential backoff without holding up the others.

use super::backend::{Backend, Observation, Observed};
use crate::api::AppState;
use crate::catalog::Service;
use crate::error::Problem;
use crate::store::timestamp;
use crate::tenants::{self, ReconcileInput, Tenant};
use chrono::{DateTime, Duration, Utc};
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
    /// Tenants waiting for their retry time.
    pub deferred: u64,
}

/// Bumped when `render` changes (or what is hashed), so that every tenant is re-applied once.
const RENDER_VERSION: &str = "2";

/// The hash of everything `render` reads. Rendering is pure, so equal inputs mean
/// equal desired objects: a no-op pass need not even render. Of a service, `render`
/// reads only its code, name and deployment facts (not its RGPD facts).
fn inputs_hash(input: &ReconcileInput, services: &[&Service]) -> String {
    let t = &input.tenant;
    let o = &input.org;
    let services: Vec<_> = services.iter().map(|s| (&s.code, &s.name, &s.deployment)).collect();
    let key = (
        RENDER_VERSION,
        &t.id,
        &t.slug,
        &t.hostname,
        t.accounts,
        t.identity_source,
        t.status,
        o.kind,
        &o.code,
        &o.academie_code,
        &input.secret_seed,
        services,
    );
    hex::encode(Sha256::digest(serde_json::to_vec(&key).expect("render inputs serialise")))
}

/// Delay before the next attempt after `failures` failures: 1 min doubling, at most 1 h.
pub fn backoff(failures: i64) -> Duration {
    Duration::minutes((1i64 << failures.clamp(1, 7).saturating_sub(1)).min(60))
}

enum Outcome {
    Applied,
    Unchanged,
    Deferred,
}

const ACTOR: &str = "system:reconciler";

/// Records what the backend reports, when it changed; an event when its state changed.
async fn record_observation(
    tx: &mut crate::store::Tx,
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

/// Reconciles one tenant: render and apply only if its inputs changed; otherwise
/// only read back a rollout still under way (kube), never writing to the backend.
async fn reconcile_one(
    state: &AppState,
    backend: &Backend,
    input: &ReconcileInput,
    now: DateTime<Utc>,
) -> Result<Outcome, Problem> {
    let tenant = &input.tenant;
    if tenant.provisioning_state.retry_at.as_ref().is_some_and(|at| *at > timestamp(now)) {
        return Ok(Outcome::Deferred);
    }
    let options: Vec<&str> = tenant.options.iter().map(String::as_str).collect();
    let services = state.catalog.resolve(&tenant.bouquet, &options)?;
    let hash = inputs_hash(input, &services);
    if input.applied_hash.as_deref() == Some(hash.as_str()) {
        if Observed::unsettled(tenant.provisioning_state.observed.as_deref()) {
            let objects = super::render(tenant, &input.org, &services, &input.secret_seed);
            if let Ok(Some(seen)) = backend.observe(tenant, &objects).await {
                let mut tx = state.store.begin_write().await?;
                record_observation(&mut tx, tenant, &seen, now).await?;
                tx.commit().await?;
            }
        }
        return Ok(Outcome::Unchanged);
    }
    let objects = super::render(tenant, &input.org, &services, &input.secret_seed);
    let result = backend.apply(tenant, &objects).await;
    let mut tx = state.store.begin_write().await?;
    match &result {
        Ok(seen) => {
            sqlx::query(
                "UPDATE tenants SET applied_hash = $1, reconciled_at = $2, reconcile_error = NULL, reconcile_failures = 0, \
                 retry_at = NULL WHERE id = $3",
            )
            .bind(&hash)
            .bind(timestamp(now))
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await?;
            tenants::event(
                &mut tx,
                &tenant.id,
                ACTOR,
                "reconciled",
                &format!("{} objets appliqués", objects.len()),
                now,
            )
            .await?;
            record_observation(&mut tx, tenant, seen, now).await?;
        }
        Err(e) => {
            let failures = tenant.provisioning_state.failures + 1;
            let retry_at = now + backoff(failures);
            sqlx::query(
                "UPDATE tenants SET reconcile_error = $1, reconcile_failures = $2, retry_at = $3 WHERE id = $4",
            )
            .bind(e)
            .bind(failures)
            .bind(timestamp(retry_at))
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
        Err(e) => Err(Problem::new(crate::error::ProblemKind::Unavailable, format!("{}: {e}", tenant.slug))),
    }
}

/// One pass over every tenant (or one), `provisioning.concurrency` at a time,
/// each failure isolated: a failing or slow tenant never holds up the others.
pub async fn pass(state: &AppState, only: Option<&str>, now: DateTime<Utc>) -> Result<PassReport, Problem> {
    // Passes of one process never write the same tenant at once.
    static ONE_PASS_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = ONE_PASS_AT_A_TIME.lock().await;
    let backend = Backend::from_config(&state.config)
        .await
        .map_err(|e| Problem::new(crate::error::ProblemKind::Unavailable, e))?;
    let inputs = tenants::reconcile_inputs(&state.store, only).await?;
    let concurrency = state.config.provisioning.concurrency.max(1);
    // Futures built up front (not by a closure of the stream): their lifetimes stay concrete.
    let work: Vec<_> = inputs.iter().map(|input| reconcile_one(state, &backend, input, now)).collect();
    let outcomes: Vec<Result<Outcome, Problem>> =
        futures_util::stream::iter(work).buffer_unordered(concurrency).collect().await;
    let mut report = PassReport { tenants: inputs.len() as u64, ..PassReport::default() };
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Applied) => report.applied += 1,
            Ok(Outcome::Unchanged) => report.unchanged += 1,
            Ok(Outcome::Deferred) => report.deferred += 1,
            Err(e) => {
                tracing::warn!(error = %e.detail, "reconcile failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Reconciles a tenant in the background right after it changed.
pub fn reconcile_soon(state: &AppState, slug: &str) {
    let (state, slug) = (state.clone(), slug.to_string());
    tokio::spawn(async move {
        if let Err(e) = pass(&state, Some(&slug), state.clock.now()).await {
            tracing::warn!(tenant = %slug, error = %e.detail, "reconcile after change failed");
        }
    });
}

/// The scheduled resync.
pub fn jobs() -> Vec<crate::jobs::Job> {
    vec![crate::jobs::Job {
        name: "tenants-reconcile",
        description: "Réconcilie les tenants : applique les objets qui ont changé, rien sinon",
        default_schedule: "*/5 * * * *",
        run: reconcile_job,
    }]
}

fn reconcile_job(state: &AppState, now: DateTime<Utc>) -> crate::jobs::JobFuture<'_> {
    Box::pin(async move {
        let r = pass(state, None, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
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
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::minutes(1));
        assert_eq!(backoff(2), Duration::minutes(2));
        assert_eq!(backoff(4), Duration::minutes(8));
        assert_eq!(backoff(12), Duration::minutes(60));
    }
}
