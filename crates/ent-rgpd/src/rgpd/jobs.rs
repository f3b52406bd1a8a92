//! The monthly `rgpd-snapshots` job: a snapshot of every register that changed
//! since its previous one (or has none yet), and a mail to the organisation's DPO
//! saying what changed. A register a derivation only reworded (`snapshots::keep_dates`) is
//! recorded with its entries' dates kept, and no DPO is told.

use super::derive::{self, Register};
use super::snapshots::{self, Diff};
use crate::rgpd::{lock_org_row, RgpdState};
use chrono::{DateTime, Utc};
use ent_kernel::clock::today_in_france;
use ent_kernel::error::Problem;
use ent_kernel::store::{timestamp, Tx};
use ent_ops::jobs::JobFuture;
use ent_ops::notify::Notice;
use ent_platform::identity::authz::dpos_keeping;
use ent_platform::registry::{get_org, Org};

pub const ACTOR: &str = "system:rgpd-snapshots";

pub fn run_job(state: &RgpdState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let r = monthly(state, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        Ok(format!(
            "{} registre(s) examiné(s), {} instantané(s), {} DPO prévenu(s)",
            r.registers, r.snapshots, r.notified
        ))
    })
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MonthlyReport {
    pub registers: usize,
    pub snapshots: usize,
    pub notified: usize,
}

/// The addresses of the DPO of `org`, whose register is `register`: its RGPD contacts, then the
/// users bound as DPO who keep that register ([`dpos_keeping`]: for a DSDEN or a public school,
/// the académie's); read in `tx`.
async fn dpo_recipients(tx: &mut Tx, org: &Org, register: &Register) -> Result<Vec<String>, Problem> {
    let mut to = dpos_keeping(tx, org).await?;
    if !register.dpo.email.is_empty() {
        to.push(register.dpo.email.clone());
    }
    to.sort();
    to.dedup();
    Ok(to)
}

fn labels(items: impl Iterator<Item = (String, String)>) -> Vec<String> {
    items.map(|(reference, name)| format!("{reference} — {name}")).collect()
}

/// One pass: derive every register, snapshot those that changed, tell their DPO.
pub async fn monthly(state: &RgpdState, now: DateTime<Utc>) -> Result<MonthlyReport, Problem> {
    let today = today_in_france(now).format("%Y-%m-%d").to_string();
    let mut world =
        super::load::world(&state.store, &state.catalog, &state.models, &state.config.provisioning, &today, "").await?;
    let mut holders = derive::register_holders(&world, &state.catalog);
    let snapshotted: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT org_id FROM rgpd_snapshots").fetch_all(state.store.pool()).await?;
    holders.extend(snapshotted);
    let mut report = MonthlyReport::default();
    for org_id in holders {
        let Some(org) = get_org(&state.store, &org_id).await? else { continue };
        // The world was loaded for no organisation in particular: add this one's facts.
        world.orgs.entry(org.id.clone()).or_insert_with(|| super::load::facts(&org));
        report.registers += 1;
        world.history = super::load::history(&state.store, &org_id).await?;
        let mut register = derive::derive(&world, &state.catalog, &org_id, &today, &timestamp(now));
        let previous = snapshots::latest(state, &org_id).await?;
        // Entries a derivation only reworded keep their date, and are no change to tell.
        let reworded = previous.as_ref().map_or(0, |(_, before)| snapshots::keep_dates(before, &mut register));
        let diff: Option<Diff> = previous.as_ref().map(|(s, before)| snapshots::diff(&s.id, before, "now", &register));
        let unchanged = diff.as_ref().is_some_and(Diff::is_empty);
        if (unchanged && reworded == 0) || (previous.is_none() && register.entries_count() == 0) {
            continue;
        }
        let mut tx = state.store.begin_write().await?;
        let previous_id = previous.as_ref().map(|(s, _)| s.id.as_str());
        if !still_latest(&mut tx, &org_id, previous_id).await? {
            continue;
        }
        let snapshot =
            snapshots::record_in(&mut tx, state.store.backend(), ACTOR, &org, &register, ("json", "scheduled"), now)
                .await?;
        report.snapshots += 1;
        // Reworded only: recorded (its entries' history takes the new wording), no DPO told.
        if let (Some(diff), Some((before, _)), false) = (&diff, &previous, unchanged) {
            let to = dpo_recipients(&mut tx, &org, &register).await?;
            if !to.is_empty() {
                let context = serde_json::json!({
                    "organisation": org.name,
                    "previous": before.taken_at.get(..10).unwrap_or_default(),
                    "snapshot": snapshot.id,
                    "added": labels(diff.added.iter().map(|e| (e.reference.clone(), e.name.clone()))),
                    "removed": labels(diff.removed.iter().map(|e| (e.reference.clone(), e.name.clone()))),
                    "changed": labels(diff.changed.iter().map(|e| (e.reference.clone(), e.name.clone()))),
                    "incomplete": register.incomplete.len(),
                });
                let page = format!("/rgpd/{}/ecarts?de={}&a={}", org.id, before.id, snapshot.id);
                Notice::new("rgpd", to).with(context).page(page).enqueue(&mut tx, now).await?;
                report.notified += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(report)
}

/// Whether `previous` is still the latest snapshot of `org_id`, read under the organisation's
/// row lock (PostgreSQL; SQLite's write transaction holds every writer off): a run overlapping
/// this one (another replica) that recorded one first makes this one skip, so two runs make
/// one snapshot and one mail.
async fn still_latest(tx: &mut Tx, org_id: &str, previous: Option<&str>) -> Result<bool, Problem> {
    lock_org_row(tx, org_id).await?;
    let latest: Option<String> =
        sqlx::query_scalar("SELECT id FROM rgpd_snapshots WHERE org_id = $1 ORDER BY taken_at DESC, id DESC LIMIT 1")
            .bind(org_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(latest.as_deref() == previous)
}
