//! The end of a convention: termination with its notice, the avenants left in preparation, a
//! draft ended before anyone signed.

use super::signing::party_signers;
use super::{
    audit_to_parties, begin_locked, commit_and_reload, lock_if_exists, new_version, not_found, party_orgs,
    record_for_parties, require_conductor_of, require_status, require_writer_of, set_status, void_steps,
    writes_as_party, Ctx,
};
use crate::conventions::model::ConventionModel;
use crate::conventions::{find_model, Convention, Status};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use ent_kernel::clock::french_date;
use ent_kernel::error::{conflict_unless, Problem};
use ent_kernel::naming;
use ent_kernel::store::{timestamp, Backend, Tx};
use ent_kernel::text::fold;
use ent_kernel::validate::{is_blank, parse_any_date, parse_date};
use ent_platform::identity::authz::{dpos_keeping, forbidden};
use ent_platform::identity::Actor;
use ent_platform::registry::queries::get_org_in;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Termination {
    #[schemars(length(min = 1))]
    pub reason: String,
    /// `YYYY-MM-DD`. When absent: the end of the notice (`preavis_resiliation_mois` months from
    /// today) when the convention has one and the parties do not agree otherwise, else today;
    /// never before the start.
    #[schemars(extend("format" = "date"))]
    pub effective_date: Option<String>,
    /// The résiliation is agreed by every party: it may take effect before the end of the notice.
    #[serde(default)]
    pub mutual_agreement: bool,
}

/// The parameter of the models giving a résiliation's notice, in months.
pub const NOTICE_PARAMETER: &str = "preavis_resiliation_mois";

/// The notice a résiliation of `conv` gives, in months, if its parameters set one.
pub fn notice_months(conv: &Convention) -> Option<u32> {
    conv.parameters.get(NOTICE_PARAMETER).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok())
}

/// The first day a résiliation notified on `today` with a notice of `months` may take effect:
/// the same day of the month `months` later, or, when that month is too short for it (notified
/// on 30 November with 3 months), the first day of the month after (1 March): never a notice
/// cut short by the end of February.
pub fn end_of_notice(today: NaiveDate, months: u32) -> Result<NaiveDate, Problem> {
    let out_of_calendar =
        || Problem::invalid_field("effective_date", format!("préavis de {months} mois hors du calendrier"));
    let same_day = today.checked_add_months(Months::new(months)).ok_or_else(out_of_calendar)?;
    match same_day.day() < today.day() {
        true => same_day.succ_opt().ok_or_else(out_of_calendar),
        false => Ok(same_day),
    }
}

/// Who may record what: a résiliation d'un commun accord only by an administrator, on sight of
/// the agreement every party signed (one party alone cannot waive the others' notice), and only
/// such a résiliation may take effect on a day already past (a résiliation acts for the future).
fn check_termination_rights(
    actor: &Actor,
    t: &Termination,
    today: NaiveDate,
    effective: NaiveDate,
) -> Result<(), Problem> {
    if t.mutual_agreement && !actor.is_admin() {
        return Err(forbidden(
            "une résiliation d'un commun accord s'enregistre par un administrateur de la plateforme, au vu de l'accord \
             signé par toutes les parties ; une partie seule résilie avec le préavis de la convention",
        ));
    }
    if effective < today && !t.mutual_agreement {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "une résiliation ne prend pas effet dans le passé : au plus tôt aujourd'hui, le {}",
                french_date(&today.to_string())
            ),
        ));
    }
    Ok(())
}

/// A résiliation under notice takes effect at the end of the notice (`earliest`) or later,
/// by `end`, the last day of the term it falls in (for a convention renewed at its term, the
/// renewed one: [`term_in_force`]); when the convention's own end comes first, it simply
/// expires then: nothing to notify.
fn check_notice(months: u32, earliest: NaiveDate, end: NaiveDate, effective: NaiveDate) -> Result<(), Problem> {
    let agreed = "d'un commun accord de toutes les parties (champ mutual_agreement)";
    if earliest > end {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "le préavis de {months} mois s'achève le {}, après le terme de la convention, le {} : elle prend fin \
                 d'elle-même à son terme, sans résiliation ; une résiliation plus tôt ne se fait que {agreed}",
                french_date(&earliest.to_string()),
                french_date(&end.to_string())
            ),
        ));
    }
    if effective < earliest {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "la résiliation prend effet à l'expiration du préavis de {months} mois : au plus tôt le {}, sauf \
                 résiliation {agreed}",
                french_date(&earliest.to_string())
            ),
        ));
    }
    Ok(())
}

pub async fn terminate(ctx: &Ctx<'_>, conv: &Convention, t: Termination) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    require_conductor_of(ctx, conv)?;
    require_status(conv, &[Status::Active, Status::Signed], "résilier")?;
    require_no_notified_termination(conv)?;
    if is_blank(&t.reason) {
        return Err(Problem::invalid_field("reason", "indiquez le motif de la résiliation"));
    }
    let (start, end) = (parse_any_date("start_date", &conv.start_date)?, parse_any_date("end_date", &conv.end_date)?);
    // Agreed by every party, the résiliation gives no notice.
    let notice = notice_months(conv).filter(|_| !t.mutual_agreement);
    let earliest = match notice {
        Some(months) => end_of_notice(ctx.today(), months)?,
        None => ctx.today(),
    };
    let effective = match &t.effective_date {
        Some(d) => parse_date("effective_date", d)?,
        // Signed but not started: it ends before it ever takes effect, on its start date.
        None => earliest.max(start),
    };
    check_termination_rights(ctx.actor, &t, ctx.today(), effective)?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let end = term_in_force(&mut tx, (ctx.models, model), conv, end, earliest).await?;
    if let Some(months) = notice {
        check_notice(months, earliest, end, effective)?;
    }
    check_termination_date(start, end, effective)?;
    // Notified for a later day, the convention stays in force until then (`jobs::daily` ends it).
    let scheduled = effective > ctx.today();
    if scheduled {
        new_version(&mut tx, &conv.id, ctx.now).await?;
    } else {
        set_status(&mut tx, &conv.id, Status::Terminated, ctx.now).await?;
    }
    sqlx::query(
        "UPDATE conventions SET termination_reason = $1, termination_effective = $2, termination_notified_at = $3, \
         termination_notified_by = $4, termination_notified_org = $5 WHERE id = $6",
    )
    .bind(t.reason.trim())
    .bind(effective.to_string())
    .bind(timestamp(ctx.now))
    .bind(&ctx.actor.name)
    .bind(notifying_party(ctx.actor, model, conv))
    .bind(&conv.id)
    .execute(&mut *tx)
    .await?;
    record_for_parties(
        ctx,
        &mut tx,
        "conventions.terminate",
        conv,
        json!({
            "reason": t.reason.trim(),
            "effective": effective.to_string(),
            "scheduled": scheduled,
            "mutual_agreement": t.mutual_agreement,
            "notice_months": notice_months(conv),
        }),
    )
    .await?;
    let backend = ctx.store.backend();
    let ended = Ended {
        on: &effective.to_string(),
        how: &format!("est résiliée à compter du {}", french_date(&effective.to_string())),
    };
    end_pending_avenants(&mut tx, backend, ctx.actor, conv, &ended, ctx.now).await?;
    let mut recipients = party_signers(&mut tx, model, conv).await?;
    recipients.extend(controller_dpos(&mut tx, conv).await?);
    recipients.sort();
    recipients.dedup();
    let by = notifying_party(ctx.actor, model, conv).and_then(|id| conv.parties.iter().find(|p| p.org.id == id));
    let extra = json!({
        "reason": sentence(&t.reason),
        "effective": french_date(&effective.to_string()),
        "mutual_agreement": t.mutual_agreement,
        "notified_on": french_date(&ctx.today().to_string()),
        "notified_by": by.map(|p| naming::of_org(p.org.kind, &naming::display_name(&p.org.name)).article),
        "reversibility": reversibility_article(model),
    });
    crate::conventions::jobs::notify(&mut tx, &recipients, conv, "terminated", extra, ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// The DPOs who keep the register of `conv`'s controller (domain review 39, G4): the
/// controller's own, and for a DSDEN or a public school its académie's ([`dpos_keeping`], the
/// rule of who writes that register). Told of a résiliation, which ends the processing it records,
/// and of a tenant that runs a service its signed Art. 28 annex does not cover (`tenants::annex`).
pub async fn controller_dpos(tx: &mut Tx, conv: &Convention) -> Result<Vec<String>, Problem> {
    let Some(controller) = &conv.rgpd_controller else { return Ok(Vec::new()) };
    match get_org_in(tx, &controller.id).await? {
        Some(controller) => dpos_keeping(tx, &controller).await,
        None => Ok(Vec::new()),
    }
}

/// The clause of `model` on réversibilité, as a sentence names it: « l'article 8 de la
/// convention », the phase a résiliation opens (and an archived tenant's notice names,
/// `tenants::notices`); `None` for a model without one.
pub fn reversibility_article(model: &ConventionModel) -> Option<String> {
    model.clauses.iter().find_map(|c| {
        let (number, what) = c.title.split_once(" – ")?;
        let number = naming::in_sentence(number.trim());
        fold(what).contains("reversibilite").then(|| format!("{} de la convention", naming::le(&number, false)))
    })
}

/// `text` trimmed and closed by a full stop unless it ends with a punctuation of its own.
fn sentence(text: &str) -> String {
    let text = text.trim();
    match text.ends_with(['.', '!', '?', '…']) {
        true => text.to_string(),
        false => format!("{text}."),
    }
}

/// The party organisation on whose behalf `actor` notifies a résiliation: the first party it
/// writes for (`writes_as_party`); `None` for an admin acting for none.
fn notifying_party<'c>(actor: &Actor, model: &ConventionModel, conv: &'c Convention) -> Option<&'c str> {
    let writes = |org_id: &str| {
        actor.bindings.iter().any(|b| b.org.as_ref().is_some_and(|o| o.id == org_id) && writes_as_party(b, model))
    };
    conv.parties.iter().map(|p| p.org.id.as_str()).find(|org_id| writes(org_id))
}

/// The last day of the term a résiliation whose notice ends on `earliest` falls in: the
/// convention's `end`, or, when the notice runs past it and the convention is renewed tacitly
/// there ([`crate::conventions::renewal::renews_at_term`]), the end of the renewed period (the résiliation
/// then takes effect in it, as the clause says, and the daily job renews it first).
async fn term_in_force(
    tx: &mut Tx,
    (models, model): (&[ConventionModel], &ConventionModel),
    conv: &Convention,
    end: NaiveDate,
    earliest: NaiveDate,
) -> Result<NaiveDate, Problem> {
    use crate::conventions::renewal::{renewal_span, renewed_end, renews_at_term, signed_term};
    if earliest <= end || !renews_at_term(tx, models, model, conv).await? {
        return Ok(end);
    }
    renewed_end(end, renewal_span(model, &signed_term(tx, conv).await?)?)
}

/// Refuses a second résiliation while one is notified for a later day.
pub(crate) fn require_no_notified_termination(conv: &Convention) -> Result<(), Problem> {
    conflict_unless(conv.termination_effective.is_none(), || {
        format!(
            "la résiliation de la convention {} est déjà notifiée : elle prend effet le {}",
            conv.reference,
            french_date(conv.termination_effective.as_deref().unwrap_or_default())
        )
    })
}

/// A convention whose notified résiliation takes effect by `today` (French date): terminated,
/// audited as `actor` (the daily job); false when there is nothing to end.
pub async fn end_on_termination_date(ctx: &Ctx<'_>, id: &str) -> Result<bool, Problem> {
    let Some((mut tx, conv)) = lock_if_exists(ctx, id).await? else { return Ok(false) };
    let today = ctx.today().to_string();
    let due = conv.termination_effective.as_deref().is_some_and(|d| d <= today.as_str());
    if !due || !matches!(conv.status, Status::Active | Status::Signed) {
        return Ok(false);
    }
    set_status(&mut tx, &conv.id, Status::Terminated, ctx.now).await?;
    let summary = json!({ "reason": conv.termination_reason, "effective": conv.termination_effective });
    record_for_parties(ctx, &mut tx, "conventions.terminated", &conv, summary).await?;
    tx.commit().await?;
    Ok(true)
}

/// A résiliation takes effect (its first day without the convention) between the start, where
/// the convention never applied, and the day after the end, which is its expiry.
fn check_termination_date(start: NaiveDate, end: NaiveDate, effective: NaiveDate) -> Result<(), Problem> {
    if effective < start {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "la résiliation ne peut prendre effet le {} : la convention ne commence que le {}",
                french_date(&effective.to_string()),
                french_date(&start.to_string())
            ),
        ));
    }
    if effective > end {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "la convention prend fin le {} : une résiliation au {} n'aurait pas d'objet",
                french_date(&end.to_string()),
                french_date(&effective.to_string())
            ),
        ));
    }
    Ok(())
}

/// An avenant amends a convention in force: when `original` ends, its avenants still in
/// preparation (draft, in signature, signed and not started) end with it, audited as `actor`;
/// signed later, one would make the ended convention live again as « amended ».
pub(crate) async fn end_pending_avenants(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    original: &Convention,
    ended: &Ended<'_>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let effective = ended.on;
    let (original_id, original_reference) = (&original.id, &original.reference);
    // An avenant is between the original's parties.
    let parties = party_orgs(original);
    let pending: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, reference FROM conventions WHERE amends_id = $1 AND status IN ('draft', 'in_signature', 'signed') \
         ORDER BY id",
    )
    .bind(original_id)
    .fetch_all(&mut **tx)
    .await?;
    let reason = format!("la convention {original_reference} qu'il modifiait {}", ended.how);
    for (id, reference) in pending {
        let ending =
            AvenantEnd { id: &id, reference: &reference, amends: Some(original_reference), reason: &reason, effective };
        end_avenant(tx, backend, actor, &ending, &parties, now).await?;
    }
    Ok(())
}

/// How the convention an avenant amended ends: the day (`YYYY-MM-DD`) the avenant ends with it,
/// and what its reason says of the convention, in a tense true that day: « a pris fin » once
/// it has, « est résiliée à compter du 31 août 2027 » for a résiliation notified ahead (domain
/// review 39, G4: the convention may not even have started).
pub(crate) struct Ended<'a> {
    pub on: &'a str,
    pub how: &'a str,
}

/// An avenant ended before it took effect, and why.
struct AvenantEnd<'a> {
    id: &'a str,
    reference: &'a str,
    /// The reference of the convention it amended (none for a convention constitutive).
    amends: Option<&'a str>,
    reason: &'a str,
    /// `YYYY-MM-DD`.
    effective: &'a str,
}

/// Ends the avenant `ending` (terminated, its reason and day recorded), audited as `actor` to `parties`.
async fn end_avenant(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    ending: &AvenantEnd<'_>,
    parties: &[&str],
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    sqlx::query(
        "UPDATE conventions SET status = 'terminated', termination_reason = $1, termination_effective = $2, \
         version = version + 1, updated_at = $3 WHERE id = $4",
    )
    .bind(ending.reason)
    .bind(ending.effective)
    .bind(timestamp(now))
    .bind(ending.id)
    .execute(&mut **tx)
    .await?;
    let summary = json!({
        "reference": ending.reference, "reason": ending.reason, "effective": ending.effective, "amends": ending.amends
    });
    audit_to_parties(tx, backend, actor, "conventions.terminate", ending.id, parties, summary, now).await
}

/// Ends a convention still in preparation (draft or in signature) that has lost its object — the
/// groupement's flow: an avenant when the member it was adding leaves before signing, its
/// convention constitutive when its last member leaves — for `reason`, today; written by a party
/// (the one leaving included). Its collected visas and signatures are voided.
pub async fn end_in_preparation(ctx: &Ctx<'_>, conv: &Convention, reason: &str) -> Result<Convention, Problem> {
    let mut tx = ctx.store.begin_write().await?;
    end_in_preparation_in(ctx, &mut tx, &conv.id, reason).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// [`end_in_preparation`] of the convention `id`, read again and locked in the write transaction
/// `tx`, which the caller commits with what must happen with it (the groupement unlinking the
/// convention constitutive it ends) or not at all.
pub async fn end_in_preparation_in(ctx: &Ctx<'_>, tx: &mut Tx, id: &str, reason: &str) -> Result<(), Problem> {
    let conv = &crate::conventions::read_convention(tx, ctx.models, id, true).await?.ok_or_else(not_found)?;
    require_writer_of(ctx, conv)?;
    require_status(conv, &[Status::Draft, Status::InSignature], "abandonner")?;
    let amends: Option<String> = match &conv.amends_id {
        Some(original) => Some(
            sqlx::query_scalar("SELECT reference FROM conventions WHERE id = $1")
                .bind(original)
                .fetch_one(&mut **tx)
                .await?,
        ),
        None => None,
    };
    void_steps(tx, conv, reason, ctx.now).await?;
    let today = ctx.today().to_string();
    let ending =
        AvenantEnd { id: &conv.id, reference: &conv.reference, amends: amends.as_deref(), reason, effective: &today };
    end_avenant(tx, ctx.store.backend(), ctx.actor, &ending, &party_orgs(conv), ctx.now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::error::ProblemKind;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_notice_runs_from_today_and_a_convention_ending_first_simply_expires() {
        assert_eq!(end_of_notice(day("2026-09-01"), 3).unwrap(), day("2026-12-01"));
        assert_eq!(end_of_notice(day("2026-11-28"), 3).unwrap(), day("2027-02-28"));
        for (notified, months) in [("2026-11-29", 3), ("2026-11-30", 3), ("2027-01-31", 1)] {
            let earliest = end_of_notice(day(notified), months).unwrap();
            assert_eq!(earliest, day("2027-03-01"), "{notified}: never cut short by a shorter month");
        }
        assert_eq!(end_of_notice(day("2027-11-29"), 3).unwrap(), day("2028-02-29"), "a leap February is long enough");
        let earliest = end_of_notice(day("2026-11-30"), 3).unwrap();
        let end = day("2029-08-31");
        assert!(check_notice(3, earliest, end, earliest).is_ok());
        let early = check_notice(3, earliest, end, day("2027-02-28")).unwrap_err();
        assert_eq!(early.errors[0].field, "effective_date");
        assert!(early.errors[0].message.contains("au plus tôt le 1er mars 2027"), "{early:?}");
        let late = check_notice(3, earliest, day("2027-01-31"), day("2027-01-31")).unwrap_err();
        assert!(late.errors[0].message.contains("prend fin d'elle-même à son terme"), "{late:?}");
    }

    #[test]
    fn a_termination_takes_effect_from_the_start_to_the_day_after_the_end() {
        let (start, end) = (day("2026-09-01"), day("2029-08-31"));
        assert!(check_termination_date(start, end, start).is_ok(), "never in force");
        assert!(check_termination_date(start, end, end).is_ok());
        for refused in ["2026-08-31", "2029-09-01"] {
            let problem = check_termination_date(start, end, day(refused)).unwrap_err();
            assert_eq!(problem.kind, ProblemKind::Validation, "{refused}");
        }
    }
}
