//! The retention purge: an archived tenant keeps its data (volumes, credentials)
//! for `provisioning.retention_months`, then the `tenants-purge` job marks it
//! purged (audited, with an event), forgets its credential seed and the services whose data
//! it retained (`retained_services`: they go with the rest) and hands it to the
//! work queue (`reconcile::through_queue`), whose pass deletes every object it still
//! has on the backend.

use crate::provisioning::ProvisioningState;
use chrono::{DateTime, Months, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::timestamp;
use ent_ops::jobs::JobFuture;
use ent_platform::audit::{self, Target};

pub const ACTOR: &str = "system:tenants-purge";

/// Purges the tenants archived before the retention period; returns their slugs.
pub async fn purge_due(state: &ProvisioningState, now: DateTime<Utc>) -> Result<Vec<String>, Problem> {
    let months = state.config.provisioning.retention_months;
    let cutoff = now.checked_sub_months(Months::new(months)).unwrap_or(now);
    let due: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, slug, org_id, archived_at FROM tenants WHERE status = 'archived' AND archived_at <= $1 ORDER BY slug",
    )
    .bind(timestamp(cutoff))
    .fetch_all(state.store.pool())
    .await?;
    let mut purged = Vec::new();
    for (id, slug, org_id, archived_at) in due {
        let mut tx = state.store.begin_write().await?;
        let done = sqlx::query(
            "UPDATE tenants SET status = 'purged', purged_at = $1, secret_seed = NULL, retained_services = NULL, \
             version = version + 1, updated_at = $2 WHERE id = $3 AND status = 'archived'",
        )
        .bind(timestamp(now))
        .bind(timestamp(now))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            continue;
        }
        let message =
            format!("données supprimées : archivé le {}, conservation {months} mois écoulée", &archived_at[..10]);
        crate::tenants::event(&mut tx, &id, ACTOR, "purged", &message, now).await?;
        let target = Target::new("tenant", &id, Some(&org_id));
        let summary = serde_json::json!({ "archived_at": archived_at, "retention_months": months });
        audit::record(&mut tx, state.store.backend(), ACTOR, "tenants.purge", &target, summary, now).await?;
        tx.commit().await?;
        purged.push(slug);
    }
    for slug in &purged {
        // Through the work queue (no job waits on a cluster); a backend failure is retried
        // by the scheduled resync, with backoff.
        super::reconcile::through_queue(state, Some(slug), state.clock.now()).await?;
    }
    Ok(purged)
}

pub fn purge_job(state: &ProvisioningState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let purged = purge_due(state, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        Ok(match purged.len() {
            0 => "aucun tenant à purger".to_string(),
            n => format!("{n} tenant(s) purgé(s) : {}", purged.join(", ")),
        })
    })
}
