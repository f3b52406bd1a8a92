//! The reconciler: for each tenant, render the desired objects, compare their
//! hash with the last applied one, and apply only what changed. A pass where
//! nothing changed writes nothing to the backend. A failing tenant is retried
//! with exponential backoff without holding up the others.

use super::manifests::ManifestsBackend;
use crate::api::AppState;
use crate::error::Problem;
use crate::store::{new_id, timestamp};
use crate::tenants::{self, Tenant};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;

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

fn desired_hash(objects: &[super::RenderedObject]) -> String {
    let mut h = Sha256::new();
    for o in objects {
        h.update(serde_json::to_vec(&o.manifest).expect("json"));
    }
    hex::encode(h.finalize())
}

/// Delay before the next attempt after `failures` failures: 1 min doubling, at most 1 h.
pub fn backoff(failures: i64) -> Duration {
    Duration::minutes((1i64 << failures.clamp(1, 7).saturating_sub(1)).min(60))
}

struct Applied {
    hash: Option<String>,
    failures: i64,
    retry_at: Option<String>,
}

async fn applied_state(state: &AppState, tenant_id: &str) -> Result<Applied, Problem> {
    let row = sqlx::query("SELECT applied_hash, reconcile_failures, retry_at FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(state.store.pool())
        .await?;
    Ok(Applied {
        hash: row.try_get("applied_hash").ok().flatten(),
        failures: row.get("reconcile_failures"),
        retry_at: row.try_get("retry_at").ok().flatten(),
    })
}

/// Reconciles one tenant; returns whether the backend was written.
pub async fn reconcile_tenant(
    state: &AppState,
    backend: &ManifestsBackend,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> Result<Option<bool>, Problem> {
    let applied = applied_state(state, &tenant.id).await?;
    if applied.retry_at.as_ref().is_some_and(|at| *at > timestamp(now)) {
        return Ok(None);
    }
    let objects = tenants::render(state, tenant).await?;
    let hash = desired_hash(&objects);
    if applied.hash.as_deref() == Some(hash.as_str()) {
        return Ok(Some(false));
    }
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
            let failures = applied.failures + 1;
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
        Ok(()) => Ok(Some(true)),
        Err(e) => Err(Problem::new(crate::error::ProblemKind::Unavailable, format!("{}: {e}", tenant.slug))),
    }
}

/// One pass over every tenant (or one), each failure isolated.
pub async fn pass(state: &AppState, only: Option<&str>, now: DateTime<Utc>) -> Result<PassReport, Problem> {
    let backend = ManifestsBackend::new(state.config.manifests_dir());
    let mut report = PassReport::default();
    for tenant in tenants::list_tenants(&state.store, None).await? {
        if only.is_some_and(|slug| slug != tenant.slug) {
            continue;
        }
        report.tenants += 1;
        match reconcile_tenant(state, &backend, &tenant, now).await {
            Ok(Some(true)) => report.applied += 1,
            Ok(Some(false)) => report.unchanged += 1,
            Ok(None) => report.deferred += 1,
            Err(e) => {
                tracing::warn!(tenant = %tenant.slug, error = %e.detail, "reconcile failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
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
