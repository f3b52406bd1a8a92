//! The reconciler: for each tenant, render the desired objects, compare their
//! hash with the last applied one, and apply only what changed. A pass where
//! nothing changed writes nothing to the backend. A failing tenant is retried
//! with exponential backoff without holding up the others.

use super::manifests::ManifestsBackend;
use crate::api::AppState;
use crate::catalog::Service;
use crate::error::Problem;
use crate::store::{new_id, timestamp};
use crate::tenants::{self, ReconcileInput};
use chrono::{DateTime, Duration, Utc};
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

/// Bumped when `render` changes, so that every tenant is re-applied once.
const RENDER_VERSION: &str = "1";

/// The hash of everything `render` reads. Rendering is pure, so equal inputs mean
/// equal desired objects: a no-op pass need not even render.
fn inputs_hash(input: &ReconcileInput, services: &[&Service]) -> String {
    let t = &input.tenant;
    let o = &input.org;
    let key = serde_json::json!([
        RENDER_VERSION,
        t.id,
        t.slug,
        t.hostname,
        t.accounts,
        t.identity_source,
        t.status,
        o.kind,
        o.code,
        o.academie_code,
        input.secret_seed,
        services,
    ]);
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
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

/// Reconciles one tenant: render and write only if its inputs changed.
async fn reconcile_one(
    state: &AppState,
    backend: &ManifestsBackend,
    input: &ReconcileInput,
    now: DateTime<Utc>,
) -> Result<Outcome, Problem> {
    if input.retry_at.as_ref().is_some_and(|at| *at > timestamp(now)) {
        return Ok(Outcome::Deferred);
    }
    let tenant = &input.tenant;
    let options: Vec<&str> = tenant.options.iter().map(String::as_str).collect();
    let services = state.catalog.resolve(&tenant.bouquet, &options)?;
    let hash = inputs_hash(input, &services);
    if input.applied_hash.as_deref() == Some(hash.as_str()) {
        return Ok(Outcome::Unchanged);
    }
    let objects = super::render(tenant, &input.org, &services, &input.secret_seed);
    let result = backend.apply(&tenant.slug, &objects);
    let mut tx = state.store.begin_write().await?;
    let (kind, message) = match &result {
        Ok(()) => {
            sqlx::query(
                "UPDATE tenants SET applied_hash = $1, reconciled_at = $2, reconcile_error = NULL, reconcile_failures = 0, \
                 retry_at = NULL WHERE id = $3",
            )
            .bind(&hash)
            .bind(timestamp(now))
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await?;
            ("reconciled", format!("{} objets appliqués", objects.len()))
        }
        Err(e) => {
            let failures = input.failures + 1;
            sqlx::query(
                "UPDATE tenants SET reconcile_error = $1, reconcile_failures = $2, retry_at = $3 WHERE id = $4",
            )
            .bind(e.to_string())
            .bind(failures)
            .bind(timestamp(now + backoff(failures)))
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await?;
            ("reconcile_failed", format!("échec ({failures}) : {e}"))
        }
    };
    sqlx::query("INSERT INTO tenant_events (id, tenant_id, at, actor, kind, message) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(new_id())
        .bind(&tenant.id)
        .bind(timestamp(now))
        .bind("system:reconciler")
        .bind(kind)
        .bind(&message)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    match result {
        Ok(()) => Ok(Outcome::Applied),
        Err(e) => Err(Problem::new(crate::error::ProblemKind::Unavailable, format!("{}: {e}", tenant.slug))),
    }
}

/// One pass over every tenant (or one), each failure isolated.
pub async fn pass(state: &AppState, only: Option<&str>, now: DateTime<Utc>) -> Result<PassReport, Problem> {
    // Passes of one process never write the same tenant's folder at once.
    static ONE_PASS_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = ONE_PASS_AT_A_TIME.lock().await;
    let backend = ManifestsBackend::new(state.config.manifests_dir());
    let mut report = PassReport::default();
    for input in tenants::reconcile_inputs(&state.store, only).await? {
        report.tenants += 1;
        match reconcile_one(state, &backend, &input, now).await {
            Ok(Outcome::Applied) => report.applied += 1,
            Ok(Outcome::Unchanged) => report.unchanged += 1,
            Ok(Outcome::Deferred) => report.deferred += 1,
            Err(e) => {
                tracing::warn!(tenant = %input.tenant.slug, error = %e.detail, "reconcile failed");
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
