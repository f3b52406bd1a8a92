//! The back-fill of `tenants.retained_services` (migration 0050): the services tenants dropped
//! before the release of migration 0048, whose data they still hold since nothing purged them,
//! recorded as the reconciler records those dropped since ([`retained_after`]), so that the RGPD
//! register lists them the same way until the purge.
//!
//! SQL cannot derive them: whether a service keeps a volume is the configured catalog's
//! (`storage_gib_per_1000`, overlays included), and the audit holds bouquet and option ids, not
//! services. Migration 0050 therefore records the step as pending (`data_backfills`), and the
//! program that migrates the store with its catalog runs it ([`retained_services`]: every
//! `entctl` command that migrates), once: it claims the row in the transaction that writes the
//! tenants, so two replicas starting together, or a second start, add nothing.
//!
//! What a tenant ran, from its `tenants.create` / `tenants.configure` audit records (each holds
//! the whole spec: bouquet and options) and its `tenants.transition` records: every spec from
//! the one in force when it first moved to `provisioning` (a spec replaced while it was only
//! requested never ran; with no such transition recorded, every spec counts), plus its
//! `applied_services` (migration 0047). Which version of a bouquet ran then is not known (the
//! catalog of that time is not either): every version the catalog still has counts, so a
//! service a later version dropped is listed. The past is thus over-approximated, never
//! under: for a DPO, a processing listed whose data may be gone (the register's warning asks
//! to check that they are still needed) is better than data held and listed nowhere. What the
//! catalog no longer has is left out (its storage is unknown), as [`retained_after`] does.
//! Requested tenants (nothing provisioned) and purged ones (nothing held) get nothing.

use super::reconcile::{rendered_services, retained_after, Subscribed};
use crate::tenants::{self, Status};
use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::{limit_lock_waits, timestamp, JsonText, Store, Tx};
use ent_platform::catalog::Catalog;
use std::collections::HashMap;

/// The step's row in `data_backfills` (migration 0050).
pub const RETAINED_SERVICES: &str = "retained_services";

/// Who writes the tenants' events of the back-fill.
pub const ACTOR: &str = "system:migration-0050";

/// The longest the step waits for a tenant row another transaction holds (a reconcile pass of a
/// replica still running): past it, the step is rolled back and left pending for the next start.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the back-fill of `tenants.retained_services` if migration 0050 left it pending, in one
/// transaction that marks it done: its outcome (in French), `None` when it ran before.
pub async fn retained_services(
    store: &Store,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<Option<String>, Problem> {
    let mut tx = store.begin_write().await?;
    limit_lock_waits(&mut tx, store.backend(), LOCK_WAIT).await?;
    if !claim(&mut tx, RETAINED_SERVICES, now).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    let history = run_specs(&mut tx).await?;
    let mut filled = Vec::new();
    for tenant in held_tenants(&mut tx, store).await? {
        let ran = ran_services(catalog, history.get(&tenant.id).map(Vec::as_slice), &tenant.applied);
        let subscribed = Subscribed { status: tenant.status, bouquet: &tenant.base_bouquet, options: &tenant.options };
        // Not known to run anything (neither resolved nor applied): nothing of it is running.
        let running = rendered_services(catalog, &subscribed, &tenant.applied).unwrap_or_default();
        let retained = retained_after(&tenant.retained, &ran, &running, catalog);
        if retained == tenant.retained {
            continue;
        }
        let added: Vec<&str> =
            retained.iter().filter(|code| !tenant.retained.contains(code)).map(String::as_str).collect();
        record(&mut tx, &tenant.id, &retained, &added, now).await?;
        filled.push(format!("{} ({})", tenant.slug, added.join(", ")));
    }
    let outcome = match filled.len() {
        0 => "aucun service conservé à reprendre de l'historique des tenants".to_string(),
        n => format!("services conservés repris de l'historique de {n} tenant(s) : {}", filled.join(" ; ")),
    };
    sqlx::query("UPDATE data_backfills SET outcome = $1 WHERE name = $2")
        .bind(&outcome)
        .bind(RETAINED_SERVICES)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(outcome))
}

/// Marks the step `name` done if it is pending; whether it was (the caller then runs it in
/// the same transaction). A concurrent claim waits for this transaction and finds it done.
async fn claim(tx: &mut Tx, name: &str, now: DateTime<Utc>) -> Result<bool, Problem> {
    let done = sqlx::query("UPDATE data_backfills SET done_at = $1 WHERE name = $2 AND done_at IS NULL")
        .bind(timestamp(now))
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A tenant that may hold data: provisioned once, not purged.
#[derive(sqlx::FromRow)]
struct HeldRow {
    id: String,
    slug: String,
    #[sqlx(try_from = "String")]
    status: Status,
    base_bouquet: String,
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    options: Vec<String>,
    applied_services: Option<String>,
    retained_services: Option<String>,
}

/// [`HeldRow`] with its service codes read.
struct Held {
    id: String,
    slug: String,
    status: Status,
    base_bouquet: String,
    options: Vec<String>,
    applied: Vec<String>,
    retained: Vec<String>,
}

/// The tenants that may hold data, locked (PostgreSQL) until the back-fill commits.
async fn held_tenants(tx: &mut Tx, store: &Store) -> Result<Vec<Held>, Problem> {
    let sql = format!(
        "SELECT id, slug, status, base_bouquet, options, applied_services, retained_services FROM tenants \
         WHERE status NOT IN ('requested', 'purged') ORDER BY slug{}",
        store.backend().for_update()
    );
    let rows: Vec<HeldRow> = sqlx::query_as(&sql).fetch_all(&mut **tx).await?;
    Ok(rows
        .into_iter()
        .map(|r| Held {
            id: r.id,
            slug: r.slug,
            status: r.status,
            base_bouquet: r.base_bouquet,
            options: r.options,
            applied: tenants::codes(r.applied_services),
            retained: tenants::codes(r.retained_services),
        })
        .collect())
}

/// A bouquet and options a tenant's spec subscribed to, as its audit record holds them.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Spec {
    bouquet: String,
    #[serde(default)]
    options: Vec<String>,
}

/// The specs each tenant may have run (by tenant id), from its audit records ([`specs_run`]).
async fn run_specs(tx: &mut Tx) -> Result<HashMap<String, Vec<Spec>>, Problem> {
    let records: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT target_id, action, summary FROM audit_log WHERE target_kind = 'tenant' \
         AND action IN ('tenants.create', 'tenants.configure', 'tenants.transition') ORDER BY seq",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut by_tenant: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (tenant, action, summary) in records {
        by_tenant.entry(tenant).or_default().push((action, summary));
    }
    Ok(by_tenant.into_iter().map(|(tenant, records)| (tenant, specs_run(&records))).collect())
}

/// The specs a tenant may have run, from its audit records `(action, summary)` in order: every
/// spec from the one in force at its first move to `provisioning` (those replaced before never
/// ran); every spec when no such move is recorded. A summary that does not read is skipped.
fn specs_run(records: &[(String, String)]) -> Vec<Spec> {
    let mut specs: Vec<Spec> = Vec::new();
    let mut provisioned_from = None;
    for (action, summary) in records {
        if action == "tenants.transition" {
            let to = serde_json::from_str::<serde_json::Value>(summary)
                .ok()
                .and_then(|s| s["to"].as_str().map(String::from));
            if provisioned_from.is_none() && to.as_deref() == Some(Status::Provisioning.as_str()) {
                provisioned_from = Some(specs.len().saturating_sub(1));
            }
        } else if let Ok(spec) = serde_json::from_str::<Spec>(summary) {
            specs.push(spec);
        }
    }
    specs.split_off(provisioned_from.unwrap_or(0).min(specs.len()))
}

/// The codes of the services a tenant may have run: those of every version the catalog has of
/// each bouquet and option of `specs`, and those it was last applied with (`applied`), once each.
fn ran_services(catalog: &Catalog, specs: Option<&[Spec]>, applied: &[String]) -> Vec<String> {
    let ids = specs.unwrap_or_default().iter().flat_map(|s| std::iter::once(&s.bouquet).chain(&s.options));
    let mut codes = catalog.services_of_any_version(ids.map(String::as_str));
    for code in applied {
        if !codes.contains(code) {
            codes.push(code.clone());
        }
    }
    codes
}

/// Writes the services a tenant holds (`retained`), with an event naming those `added`.
async fn record(
    tx: &mut Tx,
    tenant_id: &str,
    retained: &[String],
    added: &[&str],
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let codes = serde_json::to_string(retained).expect("codes serialise");
    sqlx::query("UPDATE tenants SET retained_services = $1 WHERE id = $2")
        .bind(codes)
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    let message = format!(
        "services retirés avant la version qui les suit, données conservées jusqu'à la purge (repris de l'historique) : {}",
        added.join(", ")
    );
    tenants::event(tx, tenant_id, ACTOR, "retained", &message, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(options: &[&str]) -> String {
        serde_json::json!({ "organisation": "0940176F", "hostname": "h", "bouquet": "socle-1d", "options": options })
            .to_string()
    }

    fn records(items: &[(&str, String)]) -> Vec<(String, String)> {
        items.iter().map(|(a, s)| (a.to_string(), s.clone())).collect()
    }

    #[test]
    fn the_specs_run_start_with_the_one_in_force_at_the_first_provisioning() {
        let to = |to: &str| serde_json::json!({ "from": "x", "to": to }).to_string();
        let history = records(&[
            ("tenants.create", spec(&["moodle"])),
            ("tenants.configure", spec(&["visio"])),
            ("tenants.transition", to("provisioning")),
            ("tenants.configure", spec(&[])),
            ("tenants.transition", to("active")),
        ]);
        let options: Vec<Vec<String>> = specs_run(&history).into_iter().map(|s| s.options).collect();
        assert_eq!(options, [vec!["visio".to_string()], vec![]]);
        // No move recorded: every spec may have run.
        assert_eq!(specs_run(&history[..2]).len(), 2);
    }

    #[test]
    fn every_version_of_a_bouquet_counts_as_run() {
        let catalog = Catalog::load(None).unwrap();
        let specs = [Spec { bouquet: "socle-2d".into(), options: vec!["moodle".into()] }];
        let ran = ran_services(&catalog, Some(&specs), &["pad".to_string()]);
        for code in ["blog", "casiers", "exercices", "pad"] {
            assert!(ran.contains(&code.to_string()), "{code}: {ran:?}");
        }
        assert_eq!(ran.len(), ran.iter().collect::<std::collections::HashSet<_>>().len(), "{ran:?}");
    }
}
