//! The retention purge: an archived tenant keeps its data (volumes, credentials)
//! until its `purge_due_at` (set by its archiving: `provisioning.retention_months` later, so
//! that a change of the retention applies to tenants archived after it; [`due_of`]), then the
//! `tenants-purge` job marks it
//! purged (audited, with an event), forgets its credential seed and the services whose data it
//! retained (`retained_services`: they go with the rest), records what it asks to destroy
//! (`destruction::request`) and hands it to the work queue (`reconcile::through_queue`), whose
//! pass deletes every object it still has on the backend. The reconcile that finds it removed
//! issues the attestation of destruction, with the `purged` notice that gives it ([`attest`]). The same job announces each purge once, [`PURGE_NOTICE_DAYS`] before
//! its date ([`announce_pass`]); the purge never waits for its announcement, except for a
//! tenant archived before `purge_due_at` was stored (migration 0055): its date is only stored
//! when it is announced, and it is purged by a later run, never unannounced.

use crate::provisioning::backend::{Observation, Observed};
use crate::provisioning::ProvisioningState;
use crate::tenants::destruction::{self, Destroyed, Retention};
use crate::tenants::notices::{self, Audience};
use crate::tenants::{get_tenant, reconcile_inputs, Status, Tenant};
use chrono::{DateTime, Duration, Months, Utc};
use ent_kernel::clock::{french_day, french_moment, today_in_france};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::{parse_timestamp, timestamp, Tx};
use ent_ops::jobs::JobFuture;
use ent_platform::audit::{self, Target};
use ent_platform::registry::queries::get_org;
use serde_json::{json, Map, Value};

pub const ACTOR: &str = "system:tenants-purge";

/// What a purge pass did: the tenants purged, and those due but held, with why.
#[derive(Debug, Default)]
pub struct PurgePass {
    pub purged: Vec<String>,
    pub held: Vec<(String, String)>,
}

/// Who opens the tickets that hold a purge, as the archive and purge notices say: the head of a
/// school the tenant serves, or the support (an administrator included). A user's ticket is
/// answered all the same, but cannot delay a legal deletion.
const HOLDING_REQUESTERS: [Role; 4] = [Role::ChefEtablissement, Role::SupportN1, Role::SupportN2, Role::Admin];

/// What holds a tenant's purge: support tickets still open on it opened by a
/// [`HOLDING_REQUESTERS`] role (their answers may need its data), RGPD requests of its organisation still unanswered (an access request answered from
/// data deleted meanwhile is an answer lost).
#[derive(Debug, Default, PartialEq)]
struct Holds {
    tickets: i64,
    requests: i64,
}

impl Holds {
    /// Counted in the purge's transaction, after the tenant's row is taken: a ticket opened
    /// meanwhile either committed before (counted) or waits for the purge (its creation reads
    /// the tenant `FOR SHARE`) and finds it purged.
    async fn of(tx: &mut Tx, tenant_id: &str, org_id: &str) -> Result<Holds, Problem> {
        let tickets = sqlx::query_scalar(
            "SELECT COUNT(*) FROM support_tickets WHERE tenant_id = $1 AND status NOT IN ('resolved', 'closed') \
             AND requester_role IN ($2, $3, $4, $5)",
        )
        .bind(tenant_id);
        let tickets =
            HOLDING_REQUESTERS.iter().fold(tickets, |q, role| q.bind(role.as_str())).fetch_one(&mut **tx).await?;
        let requests = sqlx::query_scalar(
            "SELECT COUNT(*) FROM rgpd_requests WHERE org_id = $1 AND status IN ('received', 'in_progress')",
        )
        .bind(org_id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(Holds { tickets, requests })
    }

    fn any(&self) -> bool {
        self.tickets > 0 || self.requests > 0
    }

    /// What holds it, for the tenant's events, which every reader of the tenant sees: not how
    /// many (the RGPD log is the DPO's).
    fn reasons(&self) -> String {
        let mut why = Vec::new();
        if self.tickets > 0 {
            why.push("tickets de support ouverts");
        }
        if self.requests > 0 {
            why.push("demandes RGPD de l'organisation en cours");
        }
        why.join(", ")
    }

    fn event_text(&self) -> String {
        format!("purge différée : {} ; au plus {HOLD_DAYS} jours", self.reasons())
    }

    /// For the job's outcome, read by administrators.
    fn counted(&self) -> String {
        format!("purge différée ({} ticket(s) ouvert(s), {} demande(s) RGPD en cours)", self.tickets, self.requests)
    }
}

/// The longest a purge waits for what holds it, past its due date: the retention period is a
/// legal bound (RGPD art. 5.1.e), which an open ticket cannot push back indefinitely.
pub const HOLD_DAYS: i64 = 60;

/// How long before its date the purge of an archived tenant is announced (event and e-mail
/// `purge_planned`), so that the people concerned can take back what they still need.
pub const PURGE_NOTICE_DAYS: i64 = 30;

/// When the data of a tenant archived at `archived_at` is due for purging: `months` later.
pub fn due_at(archived_at: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    archived_at.checked_add_months(Months::new(months)).unwrap_or(archived_at)
}

/// When the purge of an archived tenant is due: its stored `purge_due_at`, or for one archived
/// before that column (migration 0055), `archived_at` + the current `months`.
pub fn due_from(purge_due_at: Option<&str>, archived_at: Option<&str>, months: u32) -> Option<DateTime<Utc>> {
    match purge_due_at {
        Some(due) => parse_timestamp(due),
        None => parse_timestamp(archived_at?).map(|archived| due_at(archived, months)),
    }
}

/// [`due_from`] for an archived `tenant` (`None` for any other status).
pub fn due_of(tenant: &Tenant, months: u32) -> Option<DateTime<Utc>> {
    if tenant.status != Status::Archived {
        return None;
    }
    let p = &tenant.provisioning_state;
    due_from(p.purge_due_at.as_deref(), p.archived_at.as_deref(), months)
}

/// The French days between which a purge happens, as a notice says them: `on`, not before its
/// due date (nor the day it is said), and `by`, [`HOLD_DAYS`] after its due date, the latest
/// a ticket or a request can hold it.
pub struct Window {
    pub on: String,
    pub by: String,
    /// The day the retention ends (ended): the due date.
    pub retention_end: String,
    /// Whether the retention ended before the notice (`due` <= `now`).
    pub retention_ended: bool,
    /// Whether the window opens the day it is said: no later day is left before which a copy can
    /// be asked for (a late announcement, the job having not run or the purge being already due).
    pub at_once: bool,
}

impl Window {
    /// The window of the purge due at `due`, said at `now`.
    pub fn of(due: DateTime<Utc>, now: DateTime<Utc>) -> Window {
        let earliest = due.max(now);
        let latest = (due + Duration::days(HOLD_DAYS)).max(earliest);
        let on = french_day(&timestamp(earliest));
        Window {
            at_once: on == french_day(&timestamp(now)),
            on,
            by: french_day(&timestamp(latest)),
            retention_end: french_day(&timestamp(due)),
            retention_ended: due <= now,
        }
    }

    /// As a notice's context: `purge_on`, `purge_by`, and for a window that opens the day it is
    /// said, `purge_at_once`, `retention_end` and `retention_ended` (the mail then asks for no
    /// copy « avant » a day already there, and says when the retention ends or ended).
    pub fn context(&self) -> Map<String, Value> {
        let mut days = Map::new();
        days.insert("purge_on".into(), self.on.clone().into());
        days.insert("purge_by".into(), self.by.clone().into());
        if self.at_once {
            days.insert("purge_at_once".into(), true.into());
            days.insert("retention_end".into(), self.retention_end.clone().into());
            days.insert("retention_ended".into(), self.retention_ended.into());
        }
        days
    }
}

/// The tenant of `id` and its organisation, read before a change that tells their people, with
/// who restitutes its data on the pass's day `now` ([`Audience::restituting`]).
async fn tenant_and_audience(
    state: &ProvisioningState,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Tenant, Audience)>, Problem> {
    let Some(tenant) = get_tenant(&state.store, id).await? else { return Ok(None) };
    let Some(org) = get_org(&state.store, &tenant.organisation.id).await? else { return Ok(None) };
    let today = today_in_france(now).to_string();
    let audience = Audience::of(&state.store, org).await?;
    let audience = audience.restituting(&state.store, &state.models, &tenant, &today).await?;
    Ok(Some((tenant, audience)))
}

/// Purges the tenants whose purge is due; returns their slugs.
pub async fn purge_due(state: &ProvisioningState, now: DateTime<Utc>) -> Result<Vec<String>, Problem> {
    Ok(purge_pass(state, now).await?.purged)
}

/// An archived tenant as the purge reads it: id, slug, organisation, `archived_at`,
/// `purge_due_at`.
type ArchivedRow = (String, String, String, Option<String>, Option<String>);

/// The archived tenants whose stored purge date has come at `now`, with that date. One archived
/// before that date was stored (NULL) waits for its announcement, which stores it.
async fn due_for_purge(
    state: &ProvisioningState,
    now: DateTime<Utc>,
) -> Result<Vec<(ArchivedRow, DateTime<Utc>)>, Problem> {
    let months = state.config.provisioning.retention_months;
    let rows: Vec<ArchivedRow> = sqlx::query_as(
        "SELECT id, slug, org_id, archived_at, purge_due_at FROM tenants WHERE status = 'archived' \
         AND purge_due_at IS NOT NULL AND purge_due_at <= $1 ORDER BY slug",
    )
    .bind(timestamp(now))
    .fetch_all(state.store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let due = due_from(row.4.as_deref(), row.3.as_deref(), months)?;
            (due <= now).then_some((row, due))
        })
        .collect())
}

/// Purges the tenants whose purge is due that nothing holds ([`Holds`]) or that were held
/// [`HOLD_DAYS`] already; a held one gets an event the first time (and when what holds it
/// changes), and is purged by the first pass after what held it is settled.
pub async fn purge_pass(state: &ProvisioningState, now: DateTime<Utc>) -> Result<PurgePass, Problem> {
    let mut pass = PurgePass::default();
    for ((id, slug, org_id, archived_at, _), due) in due_for_purge(state, now).await? {
        let Some(tenant) = get_tenant(&state.store, &id).await? else { continue };
        let Some(destroyed) = to_destroy(state, &slug).await? else { continue };
        let mut tx = state.store.begin_write().await?;
        // Guarded on the due date too: it may have changed meanwhile.
        let done = sqlx::query(
            "UPDATE tenants SET status = 'purged', purged_at = $1, secret_seed = NULL, retained_services = NULL, \
             version = version + 1, updated_at = $1 WHERE id = $2 AND status = 'archived' \
             AND purge_due_at IS NOT NULL AND purge_due_at <= $1",
        )
        .bind(timestamp(now))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            continue;
        }
        let holds = Holds::of(&mut tx, &id, &org_id).await?;
        let overdue = now >= due + Duration::days(HOLD_DAYS);
        if holds.any() && !overdue {
            tx.rollback().await?;
            note_held(state, &id, &holds.event_text(), now).await?;
            pass.held.push((slug, holds.counted()));
            continue;
        }
        let archived_on = archived_at.as_deref().map(french_day).unwrap_or_default();
        let due_on = french_day(&timestamp(due));
        let retention = Retention { archived_on: &archived_on, ended_on: &due_on };
        let mut message = format!("données supprimées : archivé le {archived_on}, purge prévue à partir du {due_on}");
        if holds.any() {
            message.push_str(&format!(" ; report de {HOLD_DAYS} jours écoulé malgré : {}", holds.reasons()));
        }
        message.push_str(" ; destruction demandée, attestation délivrée une fois la suppression constatée");
        crate::tenants::event(&mut tx, &id, ACTOR, notices::DESTROYED, &message, now).await?;
        let target = Target::new("tenant", &id, Some(&org_id));
        let summary = json!({ "archived_at": archived_at, "purge_due_at": timestamp(due),
            "open_tickets": holds.tickets, "open_rgpd_requests": holds.requests });
        audit::record(&mut tx, state.store.backend(), ACTOR, "tenants.purge", &target, summary, now).await?;
        let mut notice = json!({ "archived_on": archived_on, "purge_on": due_on });
        if holds.any() {
            notice["held_over"] = holds.reasons().into();
            notice["hold_days"] = HOLD_DAYS.into();
        }
        destruction::request(&mut tx, &tenant, destroyed, &retention, notice, (ACTOR, now)).await?;
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

/// What the purge of the tenant `slug` destroys, read from its provisioning before the purge's
/// transaction ([`destruction::destroyed`]); `None` for a tenant gone meanwhile.
async fn to_destroy(state: &ProvisioningState, slug: &str) -> Result<Option<Destroyed>, Problem> {
    let input = reconcile_inputs(&state.store, Some(slug)).await?.pop();
    Ok(input.map(|input| destruction::destroyed(&input, &state.catalog)))
}

/// The attestation of destruction a reconcile of a purged tenant that the backend reported
/// removed is to issue ([`attesting`]): what the purge asked to destroy and who is told.
pub struct Attesting {
    requested: destruction::Requested,
    audience: Audience,
}

/// What the attestation of `tenant` needs, read before the transaction that records the
/// backend's report `seen`: `None` but for a purged tenant reported removed whose attestation is
/// not issued yet. Its audience is that of the day of the purge's request.
pub async fn attesting(
    state: &ProvisioningState,
    tenant: &Tenant,
    seen: &Observation,
) -> Result<Option<Attesting>, Problem> {
    if tenant.status != Status::Purged || seen.state != Observed::Removed {
        return Ok(None);
    }
    let Some(requested) = destruction::requested(&state.store, &tenant.id).await? else { return Ok(None) };
    let Some(org) = get_org(&state.store, &tenant.organisation.id).await? else { return Ok(None) };
    let asked = parse_timestamp(&requested.requested_at).unwrap_or_else(|| state.clock.now());
    let today = today_in_france(asked).to_string();
    let audience = Audience::of(&state.store, org).await?;
    let audience = audience.restituting(&state.store, &state.models, tenant, &today).await?;
    Ok(Some(Attesting { requested, audience }))
}

/// Issues the attestation of destruction of `tenant` ([`destruction::attest`]) in the
/// transaction that records the backend's report at `now` (`confirmed`: the cluster confirmed the
/// namespace gone), with its event, its audit record and the purge's notice, which gives it to
/// the people concerned; nothing when another writer issued it.
pub async fn attest(
    tx: &mut Tx,
    state: &ProvisioningState,
    tenant: &Tenant,
    attesting: &Attesting,
    confirmed: bool,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let Attesting { requested, audience } = attesting;
    let Some(attested) = destruction::attest(tx, tenant, audience, requested, confirmed, now).await? else {
        return Ok(());
    };
    // Recorded at the attestation's moment: never before the purge's request.
    let at = parse_timestamp(&attested.attested_at).unwrap_or(now);
    let message = format!("attestation de destruction {} : {}", attested.reference, attested.said());
    crate::tenants::event(tx, &tenant.id, ACTOR, ATTESTED, &message, at).await?;
    let summary = json!({ "attestation": attested.reference, "attestation_sha256": attested.sha256,
        "requested_at": attested.requested_at, "destroyed_at": attested.destroyed_at });
    audit::record(tx, state.store.backend(), ACTOR, "tenants.destruction_attested", tenant, summary, at).await?;
    let mut extra = requested.notice.0.clone();
    extra["attestation"] = json!({ "reference": attested.reference, "sha256": attested.sha256,
        "confirmed": confirmed, "requested_on": french_moment(&attested.requested_at) });
    notices::notify(tx, tenant, audience, notices::DESTROYED, extra, at).await
}

/// The kind of the tenant event recording the attestation of destruction.
pub const ATTESTED: &str = "destruction_attested";

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

/// Announces, once, the purge of each tenant still archived whose purge is due within
/// [`PURGE_NOTICE_DAYS`] (one already due but held included, from today): event and e-mail
/// `purge_planned`, audited, and `purge_announced_at` set by a guarded update, so that two
/// replicas announce it once. Returns the slugs announced.
pub async fn announce_pass(state: &ProvisioningState, now: DateTime<Utc>) -> Result<Vec<String>, Problem> {
    let months = state.config.provisioning.retention_months;
    let horizon = now + Duration::days(PURGE_NOTICE_DAYS);
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, slug, archived_at, purge_due_at FROM tenants WHERE status = 'archived' \
         AND purge_announced_at IS NULL AND (purge_due_at IS NULL OR purge_due_at <= $1) ORDER BY slug",
    )
    .bind(timestamp(horizon))
    .fetch_all(state.store.pool())
    .await?;
    let mut announced = Vec::new();
    for (id, slug, archived_at, purge_due_at) in rows {
        let Some(due) = due_from(purge_due_at.as_deref(), archived_at.as_deref(), months) else { continue };
        if due > horizon {
            continue;
        }
        let Some((tenant, audience)) = tenant_and_audience(state, &id, now).await? else { continue };
        // One archived before `purge_due_at` existed keeps the day announced to it.
        let due = if purge_due_at.is_none() { due.max(now) } else { due };
        if announce(state, &tenant, &audience, due, now).await? {
            announced.push(slug);
        }
    }
    Ok(announced)
}

/// Announces the purge of `tenant`, due at `due`, in one transaction (storing `due` if it had
/// none); false when another pass announced it, or it left `archived`, meanwhile. The tenant's
/// `version` stays: a job is no edit, and a PUT read before it must not fail on it.
async fn announce(
    state: &ProvisioningState,
    tenant: &Tenant,
    audience: &Audience,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let mut tx = state.store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE tenants SET purge_announced_at = $1, purge_due_at = COALESCE(purge_due_at, $2) \
         WHERE id = $3 AND status = 'archived' AND purge_announced_at IS NULL",
    )
    .bind(timestamp(now))
    .bind(timestamp(due))
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let window = Window::of(due, now);
    let message = format!("purge des données prévue à partir du {}, au plus tard le {}", window.on, window.by);
    crate::tenants::event(&mut tx, &tenant.id, ACTOR, "purge_planned", &message, now).await?;
    let mut summary = window.context();
    summary.insert("purge_due_at".into(), timestamp(due).into());
    audit::record(&mut tx, state.store.backend(), ACTOR, "tenants.purge_planned", tenant, Value::Object(summary), now)
        .await?;
    notices::notify(&mut tx, tenant, audience, "purge_planned", Value::Object(window.context()), now).await?;
    tx.commit().await?;
    Ok(true)
}

/// The `tenants-purge` job: the purge pass, then the announcement of the purges to come, run
/// whatever the purge pass met (a tenant purged by this run is no longer archived: it is not
/// announced too); it fails, naming each pass that failed, if either did.
pub fn purge_job(state: &ProvisioningState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let purged = purge_pass(state, now).await;
        let announced = announce_pass(state, now).await;
        let said = [purged.as_ref().map(purge_said), announced.as_ref().map(|slugs| announce_said(slugs))];
        let text = |part: &Result<String, &Problem>, pass: &str| match part {
            Ok(said) => said.clone(),
            Err(problem) => format!("{pass} en échec : {}", problem.detail),
        };
        let outcome = format!("{} ; {}", text(&said[0], "purge"), text(&said[1], "annonce des purges"));
        if said.iter().any(Result::is_err) {
            return Err(anyhow::anyhow!(outcome));
        }
        Ok(outcome)
    })
}

/// What a purge pass did, for the job's outcome.
fn purge_said(pass: &PurgePass) -> String {
    let mut said = match pass.purged.len() {
        0 => "aucun tenant à purger".to_string(),
        n => format!("{n} tenant(s) purgé(s) : {}", pass.purged.join(", ")),
    };
    for (slug, why) in &pass.held {
        said.push_str(&format!(" ; {slug} : {why}"));
    }
    said
}

/// What an announcement pass did, for the job's outcome.
fn announce_said(announced: &[String]) -> String {
    match announced.len() {
        0 => "aucune purge à annoncer".to_string(),
        n => format!("{n} purge(s) annoncée(s) : {}", announced.join(", ")),
    }
}
