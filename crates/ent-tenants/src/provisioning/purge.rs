//! The retention purge: an archived tenant keeps its data (volumes, credentials)
//! for `provisioning.retention_months`, then the `tenants-purge` job marks it
//! purged (audited, with an event), forgets its credential seed and the services whose data
//! it retained (`retained_services`: they go with the rest) and hands it to the
//! work queue (`reconcile::through_queue`), whose pass deletes every object it still
//! has on the backend.

use crate::provisioning::ProvisioningState;
use chrono::{DateTime, Months, Utc};
use ent_kernel::clock::french_day;
use ent_kernel::error::Problem;
use ent_kernel::store::timestamp;
use ent_ops::jobs::JobFuture;
use ent_platform::audit::{self, Target};

pub const ACTOR: &str = "system:tenants-purge";

/// What a purge pass did: the tenants purged, and those due but held, with why.
#[derive(Debug, Default)]
pub struct PurgePass {
    pub purged: Vec<String>,
    pub held: Vec<(String, String)>,
}

/// Why a tenant due for purge is kept for now, in French: support tickets still open on it
/// (their answers may need its data), or RGPD requests of its organisation still unanswered
/// (an access request answered from data deleted meanwhile is an answer lost). `None`: nothing
/// holds it.
async fn held_by(state: &ProvisioningState, tenant_id: &str, org_id: &str) -> Result<Option<String>, Problem> {
    let tickets: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM support_tickets WHERE tenant_id = $1 AND status NOT IN ('resolved', 'closed')",
    )
    .bind(tenant_id)
    .fetch_one(state.store.pool())
    .await?;
    let requests: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM rgpd_requests WHERE org_id = $1 AND status IN ('received', 'in_progress')",
    )
    .bind(org_id)
    .fetch_one(state.store.pool())
    .await?;
    let mut why = Vec::new();
    if tickets > 0 {
        why.push(format!("{tickets} ticket(s) de support ouvert(s)"));
    }
    if requests > 0 {
        why.push(format!("{requests} demande(s) RGPD de l'organisation sans réponse"));
    }
    Ok((!why.is_empty()).then(|| format!("purge différée : {}", why.join(", "))))
}

/// Purges the tenants archived before the retention period; returns their slugs.
pub async fn purge_due(state: &ProvisioningState, now: DateTime<Utc>) -> Result<Vec<String>, Problem> {
    Ok(purge_pass(state, now).await?.purged)
}

/// Purges the tenants archived before the retention period that nothing holds ([`held_by`]);
/// a held one gets an event the first time (and when the reason changes), and is purged by
/// the first pass after what held it is settled.
pub async fn purge_pass(state: &ProvisioningState, now: DateTime<Utc>) -> Result<PurgePass, Problem> {
    let months = state.config.provisioning.retention_months;
    let cutoff = now.checked_sub_months(Months::new(months)).unwrap_or(now);
    let due: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, slug, org_id, archived_at FROM tenants WHERE status = 'archived' AND archived_at <= $1 ORDER BY slug",
    )
    .bind(timestamp(cutoff))
    .fetch_all(state.store.pool())
    .await?;
    let mut pass = PurgePass::default();
    for (id, slug, org_id, archived_at) in due {
        if let Some(why) = held_by(state, &id, &org_id).await? {
            note_held(state, &id, &why, now).await?;
            pass.held.push((slug, why));
            continue;
        }
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
            format!("données supprimées : archivé le {}, conservation {months} mois écoulée", french_day(&archived_at));
        crate::tenants::event(&mut tx, &id, ACTOR, "purged", &message, now).await?;
        let target = Target::new("tenant", &id, Some(&org_id));
        let summary = serde_json::json!({ "archived_at": archived_at, "retention_months": months });
        audit::record(&mut tx, state.store.backend(), ACTOR, "tenants.purge", &target, summary, now).await?;
        tx.commit().await?;
        pass.purged.push(slug);
    }
    for slug in &pass.purged {
        // Through the work queue (no job waits on a cluster); a backend failure is retried
        // by the scheduled resync, with backoff.
        super::reconcile::through_queue(state, Some(slug), state.clock.now()).await?;
    }
    Ok(pass)
}

/// Records on the tenant why its purge waits, unless its last such event says the same.
async fn note_held(state: &ProvisioningState, tenant_id: &str, why: &str, now: DateTime<Utc>) -> Result<(), Problem> {
    let last: Option<String> = sqlx::query_scalar(
        "SELECT message FROM tenant_events WHERE tenant_id = $1 AND kind = 'purge_held' ORDER BY at DESC, id DESC LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(state.store.pool())
    .await?;
    if last.as_deref() == Some(why) {
        return Ok(());
    }
    let mut tx = state.store.begin_write().await?;
    crate::tenants::event(&mut tx, tenant_id, ACTOR, "purge_held", why, now).await?;
    tx.commit().await?;
    Ok(())
}

pub fn purge_job(state: &ProvisioningState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let pass = purge_pass(state, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        let mut said = match pass.purged.len() {
            0 => "aucun tenant à purger".to_string(),
            n => format!("{n} tenant(s) purgé(s) : {}", pass.purged.join(", ")),
        };
        for (slug, why) in &pass.held {
            said.push_str(&format!(" ; {slug} : {why}"));
        }
        Ok(said)
    })
}
