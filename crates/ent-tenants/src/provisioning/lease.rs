//! Tenant leases (`tenant_leases`): one writer per tenant across processes and
//! replicas on one database. A reconciler takes a tenant's lease before writing
//! it, renews it while it writes (a third of the lease at a time), releases it
//! after; at shutdown it releases every lease it still holds but those another of its
//! tasks still writes under (released by that task when done). A holder that
//! died leaves a lease that expires (`provisioning.reconcile.lease_seconds`).
//! `entctl operator` also leases each `EntTenant` resource under its name
//! (`EntTenant <namespace>/<name>`): one operator process handles a resource at a time.

use super::ProvisioningState;
use chrono::{DateTime, Duration, Utc};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::timestamp;

/// Who writes, and since when (lease times move on with the time a pass takes,
/// from the pass's `now`, so that a fixed clock still sees leases run out).
pub struct Writer {
    pub holder: String,
    started: std::time::Instant,
    now: DateTime<Utc>,
    lease: Duration,
}

impl Writer {
    pub fn new(state: &ProvisioningState, now: DateTime<Utc>) -> Writer {
        let seconds = state.config.provisioning.reconcile.lease_seconds as i64;
        Writer {
            holder: state.reconciler.holder.clone(),
            started: std::time::Instant::now(),
            now,
            lease: Duration::seconds(seconds),
        }
    }

    /// The current instant and the end of a lease taken or renewed now.
    fn lease_end(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let current = self.now + Duration::from_std(self.started.elapsed()).unwrap_or_default();
        (current, current + self.lease)
    }
}

/// Takes the lease `tenant_id` (a tenant's id; the operator also leases a resource under
/// its name). False when another writer holds it and its lease still runs.
pub async fn take(state: &ProvisioningState, tenant_id: &str, writer: &Writer) -> Result<bool, Problem> {
    let (current, until) = writer.lease_end();
    let taken = sqlx::query(
        "INSERT INTO tenant_leases (tenant_id, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE tenant_leases.expires_at <= $4",
    )
    .bind(tenant_id)
    .bind(&writer.holder)
    .bind(timestamp(until))
    .bind(timestamp(current))
    .execute(state.store.pool())
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Takes the tenant's lease, waiting at most a lease's length (and 30 s) if another
/// writer holds it; false when it is still held after that.
pub async fn wait_for(state: &ProvisioningState, tenant_id: &str, writer: &Writer) -> Result<bool, Problem> {
    let wait = writer.lease.to_std().unwrap_or_default().min(std::time::Duration::from_secs(30));
    let deadline = std::time::Instant::now() + wait;
    loop {
        if take(state, tenant_id, writer).await? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Extends the lease; false when this writer no longer holds it.
async fn renew(state: &ProvisioningState, tenant_id: &str, writer: &Writer) -> Result<bool, Problem> {
    let (_, until) = writer.lease_end();
    let renewed = sqlx::query("UPDATE tenant_leases SET expires_at = $1 WHERE tenant_id = $2 AND holder = $3")
        .bind(timestamp(until))
        .bind(tenant_id)
        .bind(&writer.holder)
        .execute(state.store.pool())
        .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Renews the lease every third of its length while the writer works; returns
/// only when the lease was lost (taken over after it ran out) or cannot be renewed.
pub async fn keep(state: &ProvisioningState, tenant_id: &str, writer: &Writer) -> Problem {
    let every = (writer.lease / 3).to_std().unwrap_or_default().max(std::time::Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        match renew(state, tenant_id, writer).await {
            Ok(true) => continue,
            Ok(false) => {
                return Problem::new(
                    ProblemKind::Unavailable,
                    "bail du tenant perdu : écriture interrompue".to_string(),
                )
            }
            Err(e) => return e,
        }
    }
}

pub async fn release(state: &ProvisioningState, tenant_id: &str, writer: &Writer) -> Result<(), Problem> {
    sqlx::query("DELETE FROM tenant_leases WHERE tenant_id = $1 AND holder = $2")
        .bind(tenant_id)
        .bind(&writer.holder)
        .execute(state.store.pool())
        .await?;
    Ok(())
}

/// Releases every lease this process holds (at shutdown) but those a task of this process
/// still writes under ([`Reconciler::writing`](super::runtime::Reconciler::writing): a job's
/// pass the scheduler lets finish releases its own); how many were released.
pub async fn release_all(state: &ProvisioningState) -> Result<u64, Problem> {
    release_held(state, true).await
}

/// Releases every lease this process holds as it exits, those of writes still in flight too:
/// their tasks end with the process (the operator's cut-short reconcile, a job's pass the
/// scheduler's drain gave up on).
pub async fn release_at_exit(state: &ProvisioningState) -> Result<u64, Problem> {
    release_held(state, false).await
}

async fn release_held(state: &ProvisioningState, keep_writing: bool) -> Result<u64, Problem> {
    let holder = &state.reconciler.holder;
    let held: Vec<String> = sqlx::query_scalar("SELECT tenant_id FROM tenant_leases WHERE holder = $1")
        .bind(holder)
        .fetch_all(state.store.pool())
        .await?;
    let mut released = 0;
    for key in held.iter().filter(|key| !(keep_writing && state.reconciler.is_writing(key))) {
        let done = sqlx::query("DELETE FROM tenant_leases WHERE tenant_id = $1 AND holder = $2")
            .bind(key)
            .bind(holder)
            .execute(state.store.pool())
            .await?;
        released += done.rows_affected();
    }
    Ok(released)
}
