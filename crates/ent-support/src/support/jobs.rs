//! Scheduled support work: the breach sweep (one indexed query on the stored
//! `next_due`, each breach flagged once, its lead notified in working hours
//! except for P1, optional automatic escalation; first, the tickets left open on a
//! purged tenant closed), the reminders of requesters who leave a question
//! unanswered (then the resolution of their ticket after `AUTO_CLOSE_DAYS`) and the
//! auto-close of tickets resolved for `auto_close_days`.

use super::calendar::Place;
use super::sla::{self, BreachKind};
use super::tickets::{
    append_event, load_for_update, move_level, notify, refresh, tell_requester, write_sla, Ctx, NewEvent, SlaEventRow,
    Ticket, COLUMNS, PUBLIC_MESSAGE,
};
use super::{lead_emails, Category, Level, Priority, Status, TICKET_KIND};
use crate::support::SupportState;
use chrono::{DateTime, Duration, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::{parse_timestamp, timestamp, Tx};
use ent_ops::jobs::JobFuture;
use ent_platform::audit::{self, Target};
use ent_platform::identity::Actor;
use ent_platform::registry::queries::get_org_in;
use serde_json::json;
use std::collections::HashMap;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Tickets whose earliest due date had passed.
    pub examined: usize,
    /// Breaches flagged by this pass (each breach is flagged once).
    pub breaches: usize,
    pub escalated: usize,
    /// Tickets closed because their tenant was purged ([`close_on_purged_tenants`]).
    pub closed_purged: usize,
    /// The references of the tickets whose closing failed (logged; the sweep went on).
    pub failed: Vec<String>,
}

impl SweepReport {
    /// What the sweep did, as the job and `entctl support sweep` say it.
    pub fn outcome(&self) -> String {
        let said = format!(
            "{} ticket(s) examiné(s), {} dépassement(s), {} escalade(s), {} ticket(s) clos (ENT purgé)",
            self.examined, self.breaches, self.escalated, self.closed_purged
        );
        with_failures(said, &self.failed)
    }
}

/// A job's outcome `said`, then the tickets it failed on, if any.
fn with_failures(said: String, failed: &[String]) -> String {
    match failed {
        [] => said,
        _ => format!("{said} ; en échec : {}", failed.join(", ")),
    }
}

/// A job's outcome as its run ends: a failure naming the tickets it failed on, if any.
fn job_result(outcome: String, failed: &[String]) -> anyhow::Result<String> {
    if failed.is_empty() {
        Ok(outcome)
    } else {
        Err(anyhow::anyhow!(outcome))
    }
}

/// What a job's pass over tickets did: how many it changed, and the ids of those it failed on.
#[derive(Default)]
struct Tally {
    changed: usize,
    failed: Vec<String>,
}

impl Tally {
    /// Counts what `job`'s step did on ticket `id`: a change, nothing, or a failure, logged
    /// and kept to name in the outcome (the pass goes on with the next ticket).
    fn count(&mut self, job: &str, id: &str, step: Result<bool, Problem>) {
        match step {
            Ok(true) => self.changed += 1,
            Ok(false) => {}
            Err(problem) => {
                tracing::warn!(ticket = %id, error = %problem.detail, "{job}: ticket skipped after an error");
                self.failed.push(id.to_string());
            }
        }
    }

    fn outcome(self) -> (usize, Vec<String>) {
        (self.changed, self.failed)
    }
}

/// Finds and flags the breaches due at `now`.
/// An event of one of the tickets the sweep examines.
#[derive(sqlx::FromRow)]
struct TicketEventRow {
    ticket_id: String,
    #[sqlx(flatten)]
    event: SlaEventRow,
}

/// The version of the rules `sla::derive` applies: raised when they change (what counts as a
/// first response, how a priority change counts, which due date the ticket stores), so that open
/// tickets are derived again.
const SLA_RULES: u32 = 5;

/// The row of the current support policies in `data_backfills`: `support_sla:`, the rules'
/// version and a hash of the merged policy files (targets, calendars, school holidays).
fn policies_mark(state: &SupportState) -> String {
    let spec = serde_json::to_vec(&state.support.spec).expect("policies serialise");
    format!("support_sla:v{SLA_RULES}:{}", &ent_documents::documents::sha256_hex(&spec)[..16])
}

/// Re-derives the SLA of every open ticket once per set of policies: a target, a calendar or
/// the school holidays edited since the tickets' due dates were stored move those dates (the
/// sweep selects on the stored `next_due`, which would otherwise wait for the old one). The
/// set is recorded in `data_backfills` once done, whichever replica ran it; a pass cut short is
/// run again whole (deriving is idempotent). `None` when this set was already applied.
pub async fn refresh_for_policies(state: &SupportState, now: DateTime<Utc>) -> Result<Option<usize>, Problem> {
    let mark = policies_mark(state);
    let done: Option<String> =
        sqlx::query_scalar("SELECT name FROM data_backfills WHERE name = $1 AND done_at IS NOT NULL")
            .bind(&mark)
            .fetch_optional(state.store.pool())
            .await?;
    if done.is_some() {
        return Ok(None);
    }
    let open: Vec<String> =
        sqlx::query_scalar("SELECT id FROM support_tickets WHERE status NOT IN ('resolved', 'closed') ORDER BY id")
            .fetch_all(state.store.pool())
            .await?;
    // A ticket a change holds right now is skipped: that change derives it under these policies.
    let sql = format!(
        "SELECT {COLUMNS} FROM support_tickets t WHERE t.id = $1{}",
        state.store.backend().for_update_skip_locked()
    );
    for batch in open.chunks(200) {
        let mut tx = state.store.begin_write().await?;
        for id in batch {
            let ticket: Option<Ticket> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut *tx).await?;
            if let Some(t) = ticket {
                refresh(&mut tx, &state.support, &t, now).await?;
            }
        }
        tx.commit().await?;
    }
    // Earlier marks are kept: replicas briefly running other policies (a rolling change) would
    // otherwise erase each other's and derive every ticket at each sweep.
    let mut tx = state.store.begin_write().await?;
    sqlx::query(
        "INSERT INTO data_backfills (name, done_at, outcome) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&mark)
    .bind(timestamp(now))
    .bind(format!("{} ticket(s) ouvert(s) recalculé(s) selon les politiques en vigueur", open.len()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(open.len()))
}

pub async fn sweep(state: &SupportState, now: DateTime<Utc>) -> Result<SweepReport, Problem> {
    // Due dates stored under other policies are derived again first.
    refresh_for_policies(state, now).await?;
    // Before the due dates are read: the clocks of those tickets stop at the purge.
    let (closed_purged, failed) = close_on_purged_tenants(state, now).await?;
    const DUE: &str = "SELECT id FROM support_tickets WHERE next_due IS NOT NULL AND next_due <= $1";
    let mut tx = state.store.begin_write().await?;
    // Three reads for the whole pass: the tickets due, their events, their flagged breaches.
    // The tickets are locked as they are read, so that the pass decides (flag, escalate) on
    // their committed state: one a change holds right now is left to the next pass rather
    // than escalated from a status read before that change commits (PostgreSQL; SQLite's
    // `BEGIN IMMEDIATE` already queues the pass behind any writer).
    let lock = state.store.backend().for_update_skip_locked();
    let sql = format!(
        "SELECT {COLUMNS} FROM support_tickets t WHERE t.next_due IS NOT NULL AND t.next_due <= $1 \
         ORDER BY t.next_due LIMIT 20000{lock}"
    );
    let tickets: Vec<Ticket> = sqlx::query_as(&sql).bind(timestamp(now)).fetch_all(&mut *tx).await?;
    let mut report = SweepReport { examined: tickets.len(), closed_purged, failed, ..Default::default() };
    if tickets.is_empty() {
        return Ok(report);
    }
    let mut events: HashMap<String, Vec<sla::SlaEvent>> = HashMap::new();
    let sql = format!(
        "SELECT ticket_id, at, kind, from_value, to_value, visibility, actor_level, {PUBLIC_MESSAGE} FROM support_events \
         WHERE ticket_id IN ({DUE}) ORDER BY ticket_id, seq"
    );
    let rows: Vec<TicketEventRow> = sqlx::query_as(&sql).bind(timestamp(now)).fetch_all(&mut *tx).await?;
    for r in rows {
        events.entry(r.ticket_id).or_default().push(r.event.event()?);
    }
    let mut breaches: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let sql = format!("SELECT ticket_id, level, kind FROM support_breaches WHERE ticket_id IN ({DUE})");
    let rows: Vec<(String, String, String)> = sqlx::query_as(&sql).bind(timestamp(now)).fetch_all(&mut *tx).await?;
    for (ticket_id, level, kind) in rows {
        breaches.entry(ticket_id).or_default().push((level, kind));
    }
    let actor = Actor::system("support-sweep");
    let ctx = Ctx { state, actor: &actor, now };
    let mut flagged = Vec::new();
    let mut leads: HashMap<(Level, String, String), Vec<String>> = HashMap::new();
    let mut places: HashMap<String, Place> = HashMap::new();
    for t in &tickets {
        let id = &t.id;
        let place = match places.get(&t.organisation.id) {
            Some(place) => place.clone(),
            None => {
                let place = super::place_of(&mut tx, &t.organisation.id).await?;
                places.insert(t.organisation.id.clone(), place.clone());
                place
            }
        };
        let events = events.get(id).map_or(&[][..], |e| e);
        let derived = sla::derive(&state.support, &t.policy, &place, t.priority, events, now);
        let mut known = breaches.remove(id).unwrap_or_default();
        let mut escalate = false;
        for (level, kind, due) in derived.overdue(now) {
            if known.iter().any(|(l, k)| l == level.as_str() && k == kind.as_str()) {
                continue;
            }
            let inserted = sqlx::query(
                "INSERT INTO support_breaches (ticket_id, level, kind, due_at, detected_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (ticket_id, level, kind) DO NOTHING",
            )
            .bind(id)
            .bind(level.as_str())
            .bind(kind.as_str())
            .bind(timestamp(due))
            .bind(timestamp(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            known.push((level.as_str().to_string(), kind.as_str().to_string()));
            if inserted == 0 {
                continue;
            }
            report.breaches += 1;
            flagged.push(format!("{} {} {}", t.reference, level.label(), kind.as_str()));
            // Said in the time of the level's calendar, as its lead reads it.
            let calendar = state.support.calendar_at(&t.policy, level, &place);
            let due_text = super::tickets::due_moment(due, calendar.tz);
            let body = format!("échéance de {} dépassée ({due_text})", kind.label_at(level));
            let e = NewEvent::new("breach", "support").moved(level.as_str(), kind.as_str()).body(&body);
            append_event(&mut tx, id, &actor, e, now).await?;
            let org = match level {
                Level::N1 => Some(t.n1_org_id.clone()),
                Level::N2 => t.n2_org_id.clone(),
                Level::N3 => t.n3_org_id.clone(),
            };
            if let Some(org) = org {
                let key = (level, org.clone(), t.organisation.id.clone());
                let lead = match leads.get(&key) {
                    Some(lead) => lead.clone(),
                    None => {
                        let school = get_org_in(&mut tx, &t.organisation.id).await?;
                        let school = school.ok_or_else(|| Problem::not_found("organisation introuvable"))?;
                        let lead = lead_emails(&mut tx, level, &org, &school).await?;
                        leads.insert(key, lead.clone());
                        lead
                    }
                };
                // Breach notices wait for the lead's working hours, except for P1.
                let send_at = if t.priority == Priority::P1 { now } else { calendar.next_open(now) };
                let context = json!({
                    "kind": kind.label_at(level),
                    "breach_level": level.label(),
                    "due": due_text,
                });
                notify(&mut tx, lead, t, "breach", context, now, send_at).await?;
            }
            escalate |= kind == BreachKind::Resolution
                && level == t.level
                && state.support.auto_escalate(&t.policy, level)
                && matches!(t.status, Status::New | Status::InProgress);
        }
        if escalate && t.level.up().is_some() {
            let reason = "escalade automatique : échéance de résolution dépassée";
            if move_level(&ctx, &mut tx, t, None, reason, true, false).await.is_ok() {
                report.escalated += 1;
                refresh(&mut tx, &state.support, t, now).await?;
                tell_requester(&mut tx, state.store.backend(), t, now).await?;
                continue;
            }
        }
        // The breach entries do not move the clocks: the derived state stands.
        write_sla(&mut tx, t, &derived, &known).await?;
    }
    if !flagged.is_empty() {
        let target = Target::new(TICKET_KIND, "*", None);
        audit::record(
            &mut tx,
            state.store.backend(),
            &actor,
            "support.sweep",
            &target,
            json!({ "breaches": flagged, "escalated": report.escalated }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Closes the tickets resolved at least `auto_close_days` ago.
pub async fn auto_close(state: &SupportState, now: DateTime<Utc>) -> Result<usize, Problem> {
    let days = state.support.auto_close_days();
    let cutoff = now - Duration::days(i64::from(days));
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM support_tickets WHERE status = 'resolved' AND resolved_at <= $1 ORDER BY id",
    )
    .bind(timestamp(cutoff))
    .fetch_all(state.store.pool())
    .await?;
    let actor = Actor::system("support-auto-close");
    let body = format!("clos automatiquement {days} jours après sa résolution");
    for id in &ids {
        let Some((mut tx, t)) = lock_if(state, id, |s| s == Status::Resolved).await? else { continue };
        settle_by_job(state, &mut tx, &actor, &t, Status::Closed, &body, now, now).await?;
        let summary = json!({ "reference": t.reference, "days": days });
        commit_audited(state, tx, &actor, "support.tickets.auto_close", &t, summary, now).await?;
    }
    Ok(ids.len())
}

/// Moves the locked ticket `t` to `to` (resolved or closed) for a job, logged at `at`: its
/// public status event saying `body`, the status with its date, the SLA figures derived again.
#[allow(clippy::too_many_arguments)]
async fn settle_by_job(
    state: &SupportState,
    tx: &mut Tx,
    actor: &Actor,
    t: &Ticket,
    to: Status,
    body: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let e = NewEvent::new("status", "public").moved(t.status.as_str(), to.as_str()).body(body);
    append_event(tx, &t.id, actor, e, at).await?;
    let update = match to {
        Status::Resolved => {
            "UPDATE support_tickets SET status = 'resolved', resolved_at = $1, version = version + 1, updated_at = $2, \
             seen_version = seen_version + 1, seen_at = $2 WHERE id = $3"
        }
        _ => {
            "UPDATE support_tickets SET status = 'closed', closed_at = $1, version = version + 1, updated_at = $2, \
             seen_version = seen_version + 1, seen_at = $2 WHERE id = $3"
        }
    };
    sqlx::query(update).bind(timestamp(at)).bind(timestamp(now)).bind(&t.id).execute(&mut **tx).await?;
    refresh(tx, &state.support, t, now).await?;
    Ok(())
}

/// The ticket `id` locked in a new write transaction, if its status is still one `wanted` takes.
async fn lock_if(
    state: &SupportState,
    id: &str,
    wanted: impl Fn(Status) -> bool,
) -> Result<Option<(Tx, Ticket)>, Problem> {
    let mut tx = state.store.begin_write().await?;
    let ticket = load_for_update(&mut tx, state.store.backend(), id).await?.filter(|t| wanted(t.status));
    Ok(ticket.map(|t| (tx, t)))
}

fn is_open(status: Status) -> bool {
    !matches!(status, Status::Resolved | Status::Closed)
}

/// What the requester reads in the ticket's log when it is closed with its purged tenant.
const CLOSED_BY_PURGE: &str = "clôturé : les données de l'ENT ont été purgées";

/// Closes the tickets still open on a purged tenant (a purge that went ahead after its hold,
/// `provisioning::purge::HOLD_DAYS`): nothing is left to answer them from. Each once (its row
/// locked and found still open), with a public event, the requester's notice and an audit
/// record. The event is dated at the purge (or at the ticket's last event, if later): the
/// clocks stop there, so no breach is counted for the time after it. A ticket whose closing
/// fails is logged and skipped (the sweep's breach detection follows): how many were closed,
/// and the ids of those that failed.
pub async fn close_on_purged_tenants(
    state: &SupportState,
    now: DateTime<Utc>,
) -> Result<(usize, Vec<String>), Problem> {
    // Through the tenants purged (by status), then their open tickets (migration 0056's
    // partial index on the open tickets by tenant).
    let open: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT t.id, n.purged_at FROM tenants n JOIN support_tickets t ON t.tenant_id = n.id \
         WHERE n.status = 'purged' AND t.status NOT IN ('resolved', 'closed') ORDER BY t.id",
    )
    .fetch_all(state.store.pool())
    .await?;
    let actor = Actor::system("support-sweep");
    let mut tally = Tally::default();
    for (id, purged_at) in &open {
        tally.count("support-sweep", id, close_purged(state, &actor, id, purged_at.as_deref(), now).await);
    }
    Ok(tally.outcome())
}

/// Closes ticket `id` of a tenant purged at `purged_at`, if still open; whether it did.
async fn close_purged(
    state: &SupportState,
    actor: &Actor,
    id: &str,
    purged_at: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let Some((mut tx, t)) = lock_if(state, id, is_open).await? else { return Ok(false) };
    let at = closing_time(&mut tx, id, purged_at, now).await?;
    settle_by_job(state, &mut tx, actor, &t, Status::Closed, CLOSED_BY_PURGE, at, now).await?;
    let send_at = requester_hours(state, &mut tx, &t, now).await?;
    let to = super::tickets::requester_email(&t);
    notify(&mut tx, to, &t, "purged", json!({ "tenant": t.tenant }), now, send_at).await?;
    let summary = json!({ "reference": t.reference, "from": t.status.as_str(), "purged_at": purged_at });
    commit_audited(state, tx, actor, "support.tickets.close_purged", &t, summary, now).await?;
    Ok(true)
}

/// When a ticket closed with its purged tenant is logged closed: at the purge, never before
/// its last event (the log stays in order) nor after `now`.
async fn closing_time(
    tx: &mut Tx,
    id: &str,
    purged_at: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Problem> {
    let last: Option<String> = sqlx::query_scalar("SELECT MAX(at) FROM support_events WHERE ticket_id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    let purged = purged_at.and_then(parse_timestamp).unwrap_or(now);
    let last = last.as_deref().and_then(parse_timestamp).unwrap_or(purged);
    Ok(purged.max(last).min(now))
}

/// When a notice to the requester of `t` goes: at once for P1, else at the next opening of
/// the N1 calendar of the ticket's school (their working hours).
async fn requester_hours(
    state: &SupportState,
    tx: &mut Tx,
    t: &Ticket,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Problem> {
    if t.priority == Priority::P1 {
        return Ok(now);
    }
    let place = super::place_of(tx, &t.organisation.id).await?;
    Ok(state.support.calendar_at(&t.policy, Level::N1, &place).next_open(now))
}

/// The tail of a job's change to `t`: audited as the job's `actor`, committed.
async fn commit_audited(
    state: &SupportState,
    mut tx: Tx,
    actor: &Actor,
    action: &str,
    t: &Ticket,
    summary: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    audit::record(&mut tx, state.store.backend(), actor, action, t, summary, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Days a ticket may wait on its requester before they are reminded (once per wait).
pub const REMINDER_DAYS: i64 = 3;

/// Days a ticket may wait on its requester before it is resolved without their answer
/// ([`resolve_unanswered`]); a reply reopens it, as on any resolved ticket, until the
/// policy's `auto_close_days` close it.
pub const AUTO_CLOSE_DAYS: i64 = 15;

/// The tickets waiting on their requester since `since` or before (the current wait), that
/// also meet `also` (SQL on `t`, or empty).
async fn waiting_since(state: &SupportState, since: DateTime<Utc>, also: &str) -> Result<Vec<String>, Problem> {
    let sql = format!(
        "SELECT t.id FROM support_tickets t WHERE t.status = 'waiting_requester' {also} \
         AND (SELECT w.at FROM support_events w WHERE w.ticket_id = t.id AND w.seq = {WAITING_SINCE}) <= $1 \
         ORDER BY t.id"
    );
    Ok(sqlx::query_scalar(&sql).bind(timestamp(since)).fetch_all(state.store.pool()).await?)
}

/// Reminds the requesters of tickets waiting on them for `REMINDER_DAYS`, once per wait,
/// in their working hours (the N1 calendar; at once for P1).
pub async fn remind(state: &SupportState, now: DateTime<Utc>) -> Result<usize, Problem> {
    let also = format!("AND {NOT_REMINDED_IN_THIS_WAIT}");
    let ids = waiting_since(state, now - Duration::days(REMINDER_DAYS), &also).await?;
    let actor = Actor::system("support-reminders");
    let mut reminded = 0;
    for id in &ids {
        let Some((mut tx, t)) = lock_if(state, id, |s| s == Status::WaitingRequester).await? else { continue };
        // Under the ticket's lock: another run (on another replica) may have reminded it since.
        if reminded_in_this_wait(&mut tx, id).await? {
            continue;
        }
        let body = format!("relance du demandeur après {REMINDER_DAYS} jours d'attente");
        let e = NewEvent::new("reminder", "public").body(&body);
        append_event(&mut tx, id, &actor, e, now).await?;
        let send_at = requester_hours(state, &mut tx, &t, now).await?;
        let to = super::tickets::requester_email(&t);
        notify(&mut tx, to, &t, "reminder", json!({ "days": REMINDER_DAYS }), now, send_at).await?;
        commit_audited(state, tx, &actor, "support.tickets.remind", &t, json!({ "reference": t.reference }), now)
            .await?;
        reminded += 1;
    }
    Ok(reminded)
}

/// Resolves the tickets whose requester left the support's question unanswered for
/// `AUTO_CLOSE_DAYS` since the wait began: a public status event, the requester's notice in
/// their working hours, an audit record. Each once: under the ticket's lock it must still be in
/// that same wait (a reply, or a run on another replica, ended it). The SLA counts it as any
/// resolution: the clocks stood still during the wait, so the level's resolution time is the
/// time it held the ticket before asking; the requester was not answered by it.
///
/// Only when its notice can go at once (P1, or the N1 calendar open at `now`): the requester
/// then has the whole `auto_close_days` after reading it to reopen the ticket, even when the
/// wait ends during the school holidays (the ticket waits for the next opening). A question
/// on personal data (category `donnees`), or a ticket held above N1, is never resolved for
/// silence. A ticket whose
/// resolution fails is logged and skipped: how many were resolved, and the ids that failed.
pub async fn resolve_unanswered(state: &SupportState, now: DateTime<Utc>) -> Result<(usize, Vec<String>), Problem> {
    let since = now - Duration::days(AUTO_CLOSE_DAYS);
    // Only the N1 resolves: a question asked at N2 or N3 stays open until that level hands
    // the ticket back down.
    let not_data = format!("AND t.category <> '{}' AND t.level = '{}'", Category::Donnees.as_str(), Level::N1.as_str());
    let ids = waiting_since(state, since, &not_data).await?;
    let actor = Actor::system("support-reminders");
    let mut tally = Tally::default();
    for id in &ids {
        tally.count("support-reminders", id, resolve_one(state, &actor, id, since, now).await);
    }
    Ok(tally.outcome())
}

/// Resolves ticket `id` if it is still in the wait begun by `since` and its requester can be
/// told now; whether it did.
async fn resolve_one(
    state: &SupportState,
    actor: &Actor,
    id: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let body = format!("résolu sans réponse du demandeur après {AUTO_CLOSE_DAYS} jours");
    let Some((mut tx, t)) = lock_if(state, id, |s| s == Status::WaitingRequester).await? else { return Ok(false) };
    if !waiting_began_by(&mut tx, id, since).await? {
        return Ok(false);
    }
    let send_at = requester_hours(state, &mut tx, &t, now).await?;
    if send_at > now {
        return Ok(false);
    }
    settle_by_job(state, &mut tx, actor, &t, Status::Resolved, &body, now, now).await?;
    let to = super::tickets::requester_email(&t);
    notify(&mut tx, to, &t, "unanswered", json!({ "days": AUTO_CLOSE_DAYS }), now, now).await?;
    let summary = json!({ "reference": t.reference, "days": AUTO_CLOSE_DAYS });
    commit_audited(state, tx, actor, "support.tickets.auto_resolve", &t, summary, now).await?;
    Ok(true)
}

/// What a pass over the tickets waiting on their requester did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WaitingPass {
    pub resolved: usize,
    pub reminded: usize,
    /// The ids of the tickets whose resolution failed (logged; the others went on).
    pub failed: Vec<String>,
}

impl WaitingPass {
    /// As the job `support-reminders` and `entctl support remind` say it.
    pub fn outcome(&self) -> String {
        let said =
            format!("{} relance(s), {} ticket(s) résolu(s) sans réponse du demandeur", self.reminded, self.resolved);
        with_failures(said, &self.failed)
    }
}

/// The job `support-reminders`: the tickets unanswered for `AUTO_CLOSE_DAYS` resolved first (one
/// past both delays is not reminded as well), then the requesters waited on for `REMINDER_DAYS`
/// reminded.
pub async fn follow_up_waiting(state: &SupportState, now: DateTime<Utc>) -> Result<WaitingPass, Problem> {
    let (resolved, failed) = resolve_unanswered(state, now).await?;
    let reminded = remind(state, now).await?;
    Ok(WaitingPass { resolved, reminded, failed })
}

/// Whether the current wait of ticket `id` on its requester began at `since` or before (read in `tx`).
async fn waiting_began_by(tx: &mut Tx, id: &str, since: DateTime<Utc>) -> Result<bool, Problem> {
    let sql = format!(
        "SELECT COUNT(*) FROM support_tickets t WHERE t.id = $1 \
         AND (SELECT w.at FROM support_events w WHERE w.ticket_id = t.id AND w.seq = {WAITING_SINCE}) <= $2"
    );
    let n: i64 = sqlx::query_scalar(&sql).bind(id).bind(timestamp(since)).fetch_one(&mut **tx).await?;
    Ok(n > 0)
}

/// The `seq` of the event that put ticket `t` in its current wait on its requester.
macro_rules! waiting_since {
    () => {
        "(SELECT MAX(w.seq) FROM support_events w WHERE w.ticket_id = t.id AND w.kind = 'status' \
         AND w.to_value = 'waiting_requester')"
    };
}
const WAITING_SINCE: &str = waiting_since!();

/// Ticket `t` has had no reminder since its current wait began.
const NOT_REMINDED_IN_THIS_WAIT: &str = concat!(
    "NOT EXISTS (SELECT 1 FROM support_events r WHERE r.ticket_id = t.id AND r.kind = 'reminder' AND r.seq > ",
    waiting_since!(),
    ")"
);

/// Whether the ticket `id` was reminded since its current wait began (read in `tx`).
async fn reminded_in_this_wait(tx: &mut Tx, id: &str) -> Result<bool, Problem> {
    let sql = format!("SELECT COUNT(*) FROM support_tickets t WHERE t.id = $1 AND NOT {NOT_REMINDED_IN_THIS_WAIT}");
    let n: i64 = sqlx::query_scalar(&sql).bind(id).fetch_one(&mut **tx).await?;
    Ok(n > 0)
}

pub fn sweep_job(state: &SupportState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let report = sweep(state, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        job_result(report.outcome(), &report.failed)
    })
}

pub fn remind_job(state: &SupportState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let pass = follow_up_waiting(state, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        job_result(pass.outcome(), &pass.failed)
    })
}

pub fn auto_close_job(state: &SupportState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let n = auto_close(state, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        Ok(format!("{n} ticket(s) clos"))
    })
}
