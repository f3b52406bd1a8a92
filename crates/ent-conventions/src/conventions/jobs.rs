//! Convention notices and the daily `conventions-daily` job: résiliations notified for a
//! later day taking effect, activation on the start date, tacit renewal at the term of a
//! renewable convention no party opposed (`renewal`), expiry after the end date of the others,
//! reminders 90/30/7 days before the term (none under notice) and, for a renewable one, before
//! the last day to oppose its renewal, and for signatures pending more than 7 days. Each
//! reminder is sent once (per term, for a renewable convention).

use super::model::ConventionModel;
use super::renewal::{
    opposition_deadline, renew_or_refuse, renewal_span, renewed_end, renews_at_term, signed_term, RenewalOutcome,
};
use super::workflow::{
    activate_if_started, audit_to_parties, complete_if_all_signed, end_on_termination_date, end_pending_avenants,
    party_orgs, party_signers, pending_signers, Completion, Ctx, Ended,
};
use super::ConventionsState;
use super::{find_model, get_convention, Convention, Status};
use chrono::{DateTime, Utc};
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::Problem;
use ent_kernel::store::{timestamp, Store, Tx};
use ent_kernel::validate::parse_any_date;
use ent_ops::jobs::JobFuture;
use ent_ops::notify::Notice;
use ent_platform::identity::authz::users_with_role;
use ent_platform::identity::Actor;
use serde_json::{json, Value};

pub const EXPIRY_REMINDER_DAYS: [i64; 3] = [90, 30, 7];
pub const PENDING_SIGNATURE_DAYS: i64 = 7;

/// Queues the `convention` mail for `event` to the recipients (deduplicated).
pub async fn notify(
    tx: &mut Tx,
    recipients: &[String],
    conv: &Convention,
    event: &str,
    extra: Value,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let subject = json!({
        "reference": conv.reference,
        "title": conv.title,
        "start_date": french_date(&conv.start_date),
        "end_date": french_date(&conv.end_date),
    });
    Notice::event("convention", recipients.to_vec(), event)
        .with(subject)
        .with(extra)
        .page(format!("/conventions/{}", conv.id))
        .enqueue(tx, now)
        .await?;
    Ok(())
}

/// Records a reminder; false if it was already sent.
async fn claim_reminder(tx: &mut Tx, id: &str, reminder: &str, now: DateTime<Utc>) -> Result<bool, Problem> {
    let done = sqlx::query(
        "INSERT INTO convention_reminders (convention_id, reminder, sent_at) VALUES ($1, $2, $3) \
         ON CONFLICT (convention_id, reminder) DO NOTHING",
    )
    .bind(id)
    .bind(reminder)
    .bind(timestamp(now))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Signed or active conventions with a résiliation notified (their effective day past or not).
async fn notified_terminations(store: &Store) -> Result<Vec<String>, Problem> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM conventions WHERE status IN ('signed', 'active') AND termination_effective IS NOT NULL \
         ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?)
}

async fn ids_with_status(store: &Store, status: Status) -> Result<Vec<String>, Problem> {
    Ok(sqlx::query_scalar("SELECT id FROM conventions WHERE status = $1 ORDER BY id")
        .bind(status.as_str())
        .fetch_all(store.pool())
        .await?)
}

/// What a daily pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DailyReport {
    /// Conventions found in signature with every signature present, now signed.
    pub completed: u32,
    /// Conventions found in signature with every signature present but left there: another
    /// convention came into force on their schools meanwhile (audited
    /// `conventions.completion_refused`; the job run then fails, naming the count).
    pub left_in_signature: u32,
    /// Conventions whose notified résiliation took effect.
    pub terminated: u32,
    pub activated: u32,
    /// Renewable conventions renewed tacitly at their term.
    pub renewed: u32,
    /// The references of renewable conventions not renewed over a successor covering some of
    /// their écoles, which they cannot leave out (`renewal::over_partial_successor`; audited
    /// `conventions.renewal_refused`): they expire at their term, and the job run then fails
    /// naming them, for a human to settle the écoles the successor does not cover.
    pub renewals_refused: Vec<String>,
    pub expired: u32,
    pub reminders: u32,
}

/// The step of `conventions-daily` that dates take: the résiliations notified for today or
/// before end their conventions, then the signed conventions whose start date has come are
/// activated. Guarded per convention and idempotent, so that a job that needs today's
/// conventions in force (`tenants-coverage`) runs it first, whichever job starts first.
/// How many were ended, how many activated.
pub async fn take_effect(ctx: &Ctx<'_>) -> Result<(u32, u32), Problem> {
    let (mut terminated, mut activated) = (0, 0);
    // Before activation: a convention résiliée from its start never takes effect.
    for id in notified_terminations(ctx.store).await? {
        if end_on_termination_date(ctx, &id).await? {
            terminated += 1;
        }
    }
    for id in ids_with_status(ctx.store, Status::Signed).await? {
        if activate_if_started(ctx, &id).await? {
            activated += 1;
        }
    }
    Ok((terminated, activated))
}

pub async fn daily(store: &Store, models: &[ConventionModel], now: DateTime<Utc>) -> Result<DailyReport, Problem> {
    let mut report = DailyReport::default();
    let today = today_in_france(now);
    let actor = Actor::system("conventions-daily");
    let ctx = Ctx { store, models, actor: &actor, now };
    for id in ids_with_status(store, Status::InSignature).await? {
        match complete_if_all_signed(&ctx, &id).await? {
            Completion::Completed => report.completed += 1,
            Completion::Refused => report.left_in_signature += 1,
            Completion::Left => {}
        }
    }
    (report.terminated, report.activated) = take_effect(&ctx).await?;
    for id in ids_with_status(store, Status::Active).await? {
        match renew_or_refuse(&ctx, &id).await? {
            RenewalOutcome::Renewed => report.renewed += 1,
            RenewalOutcome::Refused { reference, .. } => report.renewals_refused.push(reference),
            RenewalOutcome::Unchanged => {}
        }
        let Some(conv) = get_convention(store, models, &id).await? else { continue };
        let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
        let end = parse_any_date("end_date", &conv.end_date)?;
        let mut tx = store.begin_write().await?;
        let recipients = party_signers(&mut tx, model, &conv).await?;
        if end < today {
            // Guarded: a run overlapping this one (another replica) may have expired it already.
            let expired = sqlx::query(
                "UPDATE conventions SET status = 'expired', version = version + 1, updated_at = $1 \
                 WHERE id = $2 AND status = 'active'",
            )
            .bind(timestamp(now))
            .bind(&conv.id)
            .execute(&mut *tx)
            .await?;
            if expired.rows_affected() == 0 {
                continue;
            }
            let summary = json!({ "end_date": conv.end_date });
            let parties = party_orgs(&conv);
            let backend = store.backend();
            audit_to_parties(&mut tx, backend, &actor, "conventions.expire", &conv.id, &parties, summary, now).await?;
            let today = today.to_string();
            let ended = Ended { on: &today, how: "a pris fin" };
            end_pending_avenants(&mut tx, backend, &actor, &conv, &ended, now).await?;
            notify(&mut tx, &recipients, &conv, "expired", json!({}), now).await?;
            report.expired += 1;
        } else if conv.termination_effective.is_none() {
            report.reminders += term_reminders(&mut tx, (models, model), &conv, &recipients, today, now).await?;
        }
        tx.commit().await?;
    }
    for id in ids_with_status(store, Status::InSignature).await? {
        let Some(conv) = get_convention(store, models, &id).await? else { continue };
        let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
        let submitted: Option<String> = sqlx::query_scalar("SELECT submitted_at FROM conventions WHERE id = $1")
            .bind(&conv.id)
            .fetch_one(store.pool())
            .await?;
        let Some(submitted) = submitted else { continue };
        let since = chrono::DateTime::parse_from_rfc3339(&submitted)
            .map(|t| (now - t.with_timezone(&Utc)).num_days())
            .unwrap_or(0);
        if since < PENDING_SIGNATURE_DAYS {
            continue;
        }
        let mut tx = store.begin_write().await?;
        // One reminder per pending party and week of waiting.
        for party in pending_signers(model, &conv) {
            let key = format!("pending-{}-{}-{}", party.key, party.org.id, since / PENDING_SIGNATURE_DAYS);
            if claim_reminder(&mut tx, &conv.id, &key, now).await? {
                let spec = model.parties.iter().find(|s| s.key == party.key).expect("party of the model");
                let to = users_with_role(&mut tx, &party.org.id, spec.signing_role.as_str()).await?;
                notify(
                    &mut tx,
                    &to,
                    &conv,
                    "signature_pending",
                    json!({ "days": since, "party": party.org.name }),
                    now,
                )
                .await?;
                report.reminders += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(report)
}

/// The reminder due `days_left` before a day, if any: the smallest of [`EXPIRY_REMINDER_DAYS`]
/// not before it.
fn reminder_due(days_left: i64) -> Option<i64> {
    EXPIRY_REMINDER_DAYS.iter().copied().filter(|d| days_left <= *d).min()
}

/// The reminders of an active convention's term: « expiring » before it (for a renewable one no
/// party opposed, saying until when it renews and the last day to oppose) and, for such a one,
/// « non_renewal_deadline » before the last day to oppose. How many were queued.
async fn term_reminders(
    tx: &mut Tx,
    (models, model): (&[ConventionModel], &ConventionModel),
    conv: &Convention,
    recipients: &[String],
    today: chrono::NaiveDate,
    now: DateTime<Utc>,
) -> Result<u32, Problem> {
    let end = parse_any_date("end_date", &conv.end_date)?;
    // A renewed convention has a term per period: its reminders are claimed per term. Its first
    // term keeps the keys every convention had before renewals existed (none sent twice).
    let term = match model.renewable && super::renewal::was_renewed(tx, &conv.id).await? {
        true => format!("-{end}"),
        false => String::new(),
    };
    let mut sent = 0;
    let mut extra = json!({ "days": (end - today).num_days() });
    if renews_at_term(tx, models, model, conv).await? {
        let deadline = opposition_deadline(conv)?;
        extra["renews"] = json!(true);
        let span = renewal_span(model, &signed_term(tx, conv).await?)?;
        extra["renewed_until"] = json!(french_date(&renewed_end(end, span)?.to_string()));
        let left = (deadline - today).num_days();
        let deadline = json!(french_date(&deadline.to_string()));
        if left >= 0 {
            // Past it, the reminders say a résiliation alone can end it, not a day gone by.
            extra["deadline"] = deadline.clone();
        } else {
            extra["notice_months"] = json!(super::workflow::notice_months(conv).unwrap_or(0));
        }
        if let Some(days) = reminder_due(left).filter(|_| left >= 0) {
            if claim_reminder(tx, &conv.id, &format!("non-renewal-{days}{term}"), now).await? {
                let notice = json!({ "days": left, "deadline": deadline, "renewed_until": extra["renewed_until"] });
                notify(tx, recipients, conv, "non_renewal_deadline", notice, now).await?;
                sent += 1;
            }
        }
    }
    if let Some(days) = reminder_due((end - today).num_days()) {
        if claim_reminder(tx, &conv.id, &format!("expiry-{days}{term}"), now).await? {
            notify(tx, recipients, conv, "expiring", extra, now).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

pub fn daily_job(state: &ConventionsState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let r = daily(&state.store, &state.models, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        daily_outcome(&r)
    })
}

/// The message of a daily run: its counts, or an error naming them when a convention with every
/// signature was left in signature, or a renewal was refused (someone must settle the overlap).
fn daily_outcome(r: &DailyReport) -> anyhow::Result<String> {
    let counts = format!(
        "{} achevée(s), {} résiliée(s), {} activée(s), {} reconduite(s), {} expirée(s), {} rappel(s)",
        r.completed, r.terminated, r.activated, r.renewed, r.expired, r.reminders
    );
    let mut problems = Vec::new();
    if r.left_in_signature > 0 {
        problems.push(format!(
            "{} convention(s) signée(s) par toutes les parties laissée(s) en signature : une autre convention est \
             entrée en vigueur sur leurs écoles (voir l'audit conventions.completion_refused)",
            r.left_in_signature
        ));
    }
    if !r.renewals_refused.is_empty() {
        problems.push(format!(
            "{} convention(s) non reconduite(s) ({}) : une convention leur succède sur une partie seulement de leurs \
             écoles, qui suivent l'annuaire ; les autres écoles n'ont plus de convention (voir l'audit \
             conventions.renewal_refused)",
            r.renewals_refused.len(),
            r.renewals_refused.join(", ")
        ));
    }
    if !problems.is_empty() {
        anyhow::bail!("{} ; {counts}", problems.join(" ; "));
    }
    Ok(counts)
}
