//! Tacit renewal (« reconduction tacite ») of the conventions whose model is `renewable`: at its
//! term an active convention is renewed for what its text says ([`renewal_span`]: the model's
//! `duration_months`, or its own duration for a model renewed « pour une même durée »), unless
//! a party recorded its opposition (« non-reconduction ») at the latest
//! `preavis_resiliation_mois` months before the term; it then expires at its term as any other.

use super::jobs::notify;
use super::model::{ConventionModel, RenewalPeriod};
use super::workflow::Span;
use super::workflow::{
    begin_locked, commit_and_reload, lock_if_exists, new_version, notice_months, party_signers, record_for_parties,
    require_no_notified_termination, serialise_coverage, signer_of, writes_for, Ctx,
};
use super::{find_model, Convention, Party, Status};
use chrono::{Months, NaiveDate};
use ent_kernel::clock::french_date;
use ent_kernel::error::{conflict_unless, Problem, ProblemKind};
use ent_kernel::store::{timestamp, Tx};
use ent_kernel::validate::parse_any_date;
use ent_platform::identity::authz::forbidden;
use ent_platform::identity::Actor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A party's opposition to the tacit renewal, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct NonRenewal {
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// Who recorded it, as the audit log names them.
    pub by: String,
    /// The party organisation that opposes the renewal.
    pub org_id: String,
    pub reason: Option<String>,
    /// The person who recorded it, as the directory names them (`delegation::person_name`);
    /// absent when their account is unknown (a command-line operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The role they hold at `org_id` (what the history states as their quality).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The `non_renewal_*` columns of a `conventions` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NonRenewalColumns {
    non_renewal_at: Option<String>,
    non_renewal_by: Option<String>,
    non_renewal_org: Option<String>,
    non_renewal_reason: Option<String>,
    non_renewal_name: Option<String>,
    non_renewal_role: Option<String>,
}

impl NonRenewalColumns {
    pub(crate) fn into_recorded(self) -> Option<NonRenewal> {
        Some(NonRenewal {
            at: self.non_renewal_at?,
            by: self.non_renewal_by.unwrap_or_default(),
            org_id: self.non_renewal_org.unwrap_or_default(),
            reason: self.non_renewal_reason,
            name: super::person(self.non_renewal_name.as_deref()),
            role: self.non_renewal_role,
        })
    }
}

/// The body of `POST /conventions/{id}/non-renewal`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Opposition {
    /// Why the party does not want the convention renewed (optional).
    pub reason: Option<String>,
    /// The party key opposing, when the caller represents several parties.
    pub party: Option<String>,
}

/// The last day a party may oppose the renewal of `conv`: its end date less the notice of
/// résiliation (`preavis_resiliation_mois`), or its end date when it sets none.
pub fn opposition_deadline(conv: &Convention) -> Result<NaiveDate, Problem> {
    let end = parse_any_date("end_date", &conv.end_date)?;
    let months = Months::new(notice_months(conv).unwrap_or(0));
    end.checked_sub_months(months).ok_or_else(|| Problem::invalid_field("end_date", "échéance hors du calendrier"))
}

/// The term a lineage was signed for: the start and end of its first convention (an avenant
/// starts on its own date and keeps the original's end), that end before its first renewal.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedTerm {
    pub start: String,
    pub end: String,
}

/// The [`SignedTerm`] of `conv`'s lineage: its root convention (`root_id`, the one its
/// avenants amend in turn), the end before the root's first renewal if it was renewed.
pub async fn signed_term(conn: &mut sqlx::AnyConnection, conv: &Convention) -> Result<SignedTerm, Problem> {
    let (start, end): (String, String) = sqlx::query_as("SELECT start_date, end_date FROM conventions WHERE id = $1")
        .bind(&conv.root_id)
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or_else(|| (conv.start_date.clone(), conv.end_date.clone()));
    let first_renewal = renewals(conn, &conv.root_id).await?.into_iter().next();
    Ok(SignedTerm { start, end: first_renewal.map_or(end, |r| r.previous_end) })
}

/// How long each tacit renewal lasts, as the signed text says: the model's `duration_months`,
/// or (`same_duration`) the duration the lineage was signed for ([`signed_term`]).
pub fn renewal_span(model: &ConventionModel, signed: &SignedTerm) -> Result<Span, Problem> {
    match model.renewed_for {
        RenewalPeriod::ModelDuration => Ok(Span { months: model.duration_months, days: 0 }),
        RenewalPeriod::SameDuration => {
            let (start, end) = (parse_any_date("start_date", &signed.start)?, parse_any_date("end_date", &signed.end)?);
            Span::between(start, end)
                .ok_or_else(|| Problem::invalid_field("end_date", "la fin de la convention précède son début"))
        }
    }
}

/// The end of the period a renewal at the term `end` opens: `span` from the day after, by the
/// rule of a convention's default end; always after `end`.
pub fn renewed_end(end: NaiveDate, span: Span) -> Result<NaiveDate, Problem> {
    end.succ_opt()
        .and_then(|next| span.end_from(next))
        .filter(|next| *next > end)
        .ok_or_else(|| Problem::invalid_field("end_date", "reconduction hors du calendrier"))
}

/// Whether `conv` is renewed at its term as things stand: its model is renewable, no party
/// opposed, no résiliation takes effect by its term (one notified for a day after the term,
/// a notice running past it, takes effect in the renewed period).
pub fn renews(renewable: bool, conv: &Convention) -> bool {
    let ends_by_term = conv.termination_effective.as_deref().is_some_and(|t| t <= conv.end_date.as_str());
    renewable && conv.non_renewal.is_none() && !ends_by_term
}

/// Who takes over from `conv` at its term, as [`succession`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Succession {
    /// No convention of its lineage's succession: it is renewed (as things stand).
    None,
    /// The reference of its successor: one covering all its schools, or one that
    /// replaces it (`supersedes`). It is then not renewed: it expires at its term.
    Whole(String),
    /// The reference of a convention (stored before drafting refused it) from the day after
    /// its term on some of its schools only: the others would lose their convention. What the
    /// renewal then does is [`over_partial_successor`]'s.
    Partial(String),
}

/// What the tacit renewal of a convention does over a [`Succession::Partial`] successor, so
/// that no école is under two conventions in force on one day (two texts, possibly two
/// controllers, for one ENT), as a DAN reads the situation:
///
/// - its schools are listed per convention (a model whose covered party is an établissement):
///   the renewal goes on for the écoles no successor takes over, and leaves out those the
///   successors cover ([`RenewalOutcome::Renewed`], audited `conventions.renewed_over_partial_successor`
///   with the écoles left out): each école keeps exactly one convention;
/// - its schools follow the annuaire (the bipartite: « every école of the collectivité »): no
///   école can be left out of it, so it is not renewed ([`RenewalOutcome::Refused`], audited
///   `conventions.renewal_refused` with the reason) and expires at its term; the daily run fails
///   naming it, for a human to settle the écoles the successor does not cover (a new
///   convention for them, or the successor's avenant). Its term reminders already said it
///   would not be renewed ([`renews_at_term`]).
pub fn over_partial_successor(model: &ConventionModel) -> PartialSuccession {
    if model.follows_registry() {
        PartialSuccession::Refuse
    } else {
        PartialSuccession::LeaveOutItsSchools
    }
}

/// [`over_partial_successor`]'s choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialSuccession {
    LeaveOutItsSchools,
    Refuse,
}

/// A school of `conv` that a convention of another lineage covers the day after its term.
struct Candidate {
    id: String,
    reference: String,
    supersedes_id: Option<String>,
    /// The school of `conv` it covers.
    org_id: String,
}

/// The successors of a convention on its schools, as the renewal reads them.
struct Successors {
    /// The schools `conv` covers today ([`super::schools_covered_now`]).
    schools: Vec<String>,
    /// Every (successor, school of `conv` it covers): another lineage's convention, signed or in
    /// force, starting after `conv` and covering one of its schools the day after its term as
    /// things stand (`workflow::draft::others_on`), of any model, earliest first.
    candidates: Vec<Candidate>,
}

/// The [`Successors`] of `conv`, by today's coverage of both (an école opened in the commune
/// after either was drafted counts), read through `conn`.
async fn successors(
    conn: &mut sqlx::AnyConnection,
    models: &[ConventionModel],
    conv: &Convention,
) -> Result<Successors, Problem> {
    let schools = super::schools_covered_now(conn, models, conv).await?;
    let end = parse_any_date("end_date", &conv.end_date)?;
    let Some(next) = end.succ_opt() else { return Ok(Successors { schools, candidates: vec![] }) };
    let mut found: Vec<(String, Candidate)> = Vec::new();
    for school in &schools {
        for other in super::workflow::others_on(conn, models, school, (next, next), Some(&conv.root_id)).await? {
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT reference, start_date FROM conventions WHERE id = $1 AND status IN ('signed', 'active') \
                 AND end_date >= $2 AND start_date > $3",
            )
            .bind(&other.id)
            .bind(next.to_string())
            .bind(&conv.start_date)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((reference, start)) = row else { continue };
            let candidate =
                Candidate { id: other.id, reference, supersedes_id: other.supersedes_id, org_id: school.clone() };
            found.push((start, candidate));
        }
    }
    found.sort_by(|(a, x), (b, y)| (a, &x.id, &x.org_id).cmp(&(b, &y.id, &y.org_id)));
    Ok(Successors { schools, candidates: found.into_iter().map(|(_, c)| c).collect() })
}

impl Successors {
    /// Whether the successor `id` covers every school of the convention.
    fn covers_all(&self, id: &str) -> bool {
        self.schools.iter().all(|s| self.candidates.iter().any(|c| c.id == id && &c.org_id == s))
    }

    /// The schools of the convention (organisation ids) its successors cover.
    fn succeeded_schools(&self) -> Vec<String> {
        let mut schools: Vec<String> = self.candidates.iter().map(|c| c.org_id.clone()).collect();
        schools.sort();
        schools.dedup();
        schools
    }
}

/// Who succeeds `conv` ([`Succession`]): among its [`successors`], as drafting decides
/// (`workflow`'s `Other::succeeded_on`): one that drafting took for a successor never leaves
/// `conv` renewed beside it. Reads through `conn`.
pub async fn succession(
    conn: &mut sqlx::AnyConnection,
    models: &[ConventionModel],
    conv: &Convention,
) -> Result<Succession, Problem> {
    Ok(successors(conn, models, conv).await?.succession(conv))
}

impl Successors {
    fn succession(&self, conv: &Convention) -> Succession {
        let mut partial = None;
        for candidate in &self.candidates {
            if candidate.supersedes_id.as_deref() == Some(conv.id.as_str()) || self.covers_all(&candidate.id) {
                return Succession::Whole(candidate.reference.clone());
            }
            partial.get_or_insert(candidate.reference.clone());
        }
        partial.map_or(Succession::None, Succession::Partial)
    }
}

/// [`renews`], and no successor takes over at its term ([`succession`]): neither a whole one,
/// nor a partial one where its schools cannot be left out ([`over_partial_successor`]).
pub async fn renews_at_term(
    conn: &mut sqlx::AnyConnection,
    models: &[ConventionModel],
    model: &ConventionModel,
    conv: &Convention,
) -> Result<bool, Problem> {
    if !renews(model.renewable, conv) {
        return Ok(false);
    }
    Ok(match succession(conn, models, conv).await? {
        Succession::None => true,
        Succession::Whole(_) => false,
        Succession::Partial(_) => over_partial_successor(model) == PartialSuccession::LeaveOutItsSchools,
    })
}

/// The parties of `conv` (the one named by `key`, or all) whose representative `actor` is: it
/// holds the party's signing role at its organisation, as who signs for it ([`signer_of`], the
/// rule of `sign`), and the party is a legal person it writes for ([`writes_for`]: not an école,
/// whose head signs only). An administrator signs for none.
fn represented<'c>(actor: &Actor, model: &ConventionModel, conv: &'c Convention, key: Option<&str>) -> Vec<&'c Party> {
    signer_of(actor, model, conv, key).into_iter().filter(|p| writes_for(actor, model, &p.org.id)).collect()
}

/// Whether `actor` may oppose the renewal of `conv` (of `model`), whatever its state: the
/// representative of one of its parties ([`represented`]). Whom the console offers « Refuser la
/// reconduction ».
pub fn may_oppose(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    !represented(actor, model, conv, None).is_empty()
}

/// Why one who represents no party of a convention may not oppose its renewal.
const NOT_A_REPRESENTATIVE: &str = "vous ne représentez aucune partie de cette convention : la non-reconduction est \
     décidée pour une partie par celui qui la signe en son nom, la DAN pour l'académie, la collectivité ou le chef \
     d'un établissement public local d'enseignement (collège, lycée) ; le directeur d'école la signe seulement, le \
     coordonnateur ne la signe pas";

/// The party `actor` opposes for: the one named, or the first it represents ([`represented`]).
fn opposing_party<'c>(
    actor: &Actor,
    model: &ConventionModel,
    conv: &'c Convention,
    key: Option<&str>,
) -> Result<&'c Party, Problem> {
    represented(actor, model, conv, key).into_iter().next().ok_or_else(|| {
        Problem::invalid_field(
            "party",
            "vous ne représentez pas cette partie : seul celui qui la signe s'y oppose en son nom",
        )
    })
}

/// Records a party's opposition to the tacit renewal, by its representative ([`may_oppose`]:
/// 403 whatever the state); accepted up to [`opposition_deadline`]; audited, notified to the
/// parties; the convention then expires at its term.
pub async fn oppose(ctx: &Ctx<'_>, conv: &Convention, o: Opposition) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if !may_oppose(ctx.actor, model, conv) {
        return Err(forbidden(NOT_A_REPRESENTATIVE));
    }
    conflict_unless(matches!(conv.status, Status::Active | Status::Signed), || {
        format!(
            "la convention {} est {} : il n'y a plus de reconduction à refuser",
            conv.reference,
            conv.status.label()
        )
    })?;
    if !model.renewable {
        return Err(Problem::new(
            ProblemKind::Validation,
            format!(
                "la convention {} n'est pas reconduite tacitement : elle prend fin d'elle-même à son terme, le {}",
                conv.reference,
                french_date(&conv.end_date)
            ),
        ));
    }
    conflict_unless(conv.non_renewal.is_none(), || {
        format!("la non-reconduction de la convention {} est déjà enregistrée", conv.reference)
    })?;
    require_no_notified_termination(conv)?;
    let deadline = opposition_deadline(conv)?;
    if ctx.today() > deadline {
        return Err(Problem::new(
            ProblemKind::Validation,
            format!(
                "la non-reconduction devait être notifiée au moins {} mois avant l'échéance du {}, soit au plus tard le \
                 {} : la convention sera reconduite ; seule une résiliation peut désormais y mettre fin",
                notice_months(conv).unwrap_or(0),
                french_date(&conv.end_date),
                french_date(&deadline.to_string())
            ),
        ));
    }
    let party = opposing_party(ctx.actor, model, conv, o.party.as_deref())?;
    let reason = o.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    new_version(&mut tx, &conv.id, ctx.now).await?;
    sqlx::query(
        "UPDATE conventions SET non_renewal_at = $1, non_renewal_by = $2, non_renewal_org = $3, \
         non_renewal_reason = $4 WHERE id = $5",
    )
    .bind(timestamp(ctx.now))
    .bind(&ctx.actor.name)
    .bind(&party.org.id)
    .bind(reason)
    .bind(&conv.id)
    .execute(&mut *tx)
    .await?;
    let summary = json!({ "party": party.key, "org_id": party.org.id, "reason": reason, "end_date": conv.end_date });
    record_for_parties(ctx, &mut tx, "conventions.non_renewal", conv, summary).await?;
    let recipients = party_signers(&mut tx, model, conv).await?;
    let extra = json!({ "party": party.org.name, "reason": reason });
    notify(&mut tx, &recipients, conv, "non_renewal", extra, ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// An avenant taking effect keeps the non-reconduction a party recorded on the convention it
/// replaces (unless it has one of its own): it still ends at the term, as the parties were told.
pub(crate) async fn carry_non_renewal(tx: &mut Tx, original: &str, avenant: &str) -> Result<(), Problem> {
    let from_original = |column: &str| format!("{column} = (SELECT o.{column} FROM conventions o WHERE o.id = $1)");
    let columns = ["non_renewal_at", "non_renewal_by", "non_renewal_org", "non_renewal_reason"];
    let set: Vec<String> = columns.iter().map(|c| from_original(c)).collect();
    sqlx::query(&format!("UPDATE conventions SET {} WHERE id = $2 AND non_renewal_at IS NULL", set.join(", ")))
        .bind(original)
        .bind(avenant)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether the convention `id` was renewed at least once (its reminders are then per term).
pub(crate) async fn was_renewed(tx: &mut Tx, id: &str) -> Result<bool, Problem> {
    let renewals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM convention_renewals WHERE convention_id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(renewals > 0)
}

/// What [`renew_or_refuse`] did with a convention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalOutcome {
    /// Nothing to renew (not due, run twice), or not renewed over a whole successor.
    Unchanged,
    Renewed,
    /// Not renewed over a partial successor its schools cannot be left out of
    /// ([`over_partial_successor`]): its reference and why, as audited.
    Refused {
        reference: String,
        reason: String,
    },
}

/// [`renew_or_refuse`]: whether it renewed.
pub async fn renew_if_due(ctx: &Ctx<'_>, id: &str) -> Result<bool, Problem> {
    Ok(renew_or_refuse(ctx, id).await? == RenewalOutcome::Renewed)
}

/// Renews an active convention of a renewable model whose term passed (French date) with no
/// opposition nor résiliation notified, for as many periods ([`renewal_span`]) as it takes to be in force today;
/// audited as `ctx.actor` (the daily job), notified. Unchanged when there is nothing to renew:
/// run twice, or on two replicas, the second finds the new end date under the row lock.
/// The [`succession`] is looked for under [`serialise_coverage`]: the last signature of one either
/// committed before (it is then found) or waits for the renewal (and is then refused). Over a
/// partial successor, [`over_partial_successor`] decides: its écoles left out, or refused.
pub async fn renew_or_refuse(ctx: &Ctx<'_>, id: &str) -> Result<RenewalOutcome, Problem> {
    let Some((mut tx, conv)) = lock_if_exists(ctx, id).await? else { return Ok(RenewalOutcome::Unchanged) };
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let first = parse_any_date("end_date", &conv.end_date)?;
    if conv.status != Status::Active || !renews(model.renewable, &conv) || first >= ctx.today() {
        return Ok(RenewalOutcome::Unchanged);
    }
    serialise_coverage(&mut tx).await?;
    let successors = successors(&mut tx, ctx.models, &conv).await?;
    match successors.succession(&conv) {
        Succession::Whole(next) => {
            let summary = json!({ "end_date": conv.end_date, "successor": next });
            record_for_parties(ctx, &mut tx, "conventions.not_renewed", &conv, summary).await?;
            tx.commit().await?;
            return Ok(RenewalOutcome::Unchanged);
        }
        Succession::Partial(next) => match over_partial_successor(model) {
            PartialSuccession::Refuse => {
                let reason = format!(
                    "la convention {next} couvre une partie de ses écoles dès le lendemain de son terme ; ses écoles \
                     suivent l'annuaire et ne peuvent pas en être retirées : reconduite, elle couvrirait ces écoles en \
                     même temps que {next}. Elle expire à son terme ; concluez une convention pour les écoles que \
                     {next} ne couvre pas",
                );
                let summary = json!({ "end_date": conv.end_date, "partial_successor": next, "reason": reason });
                record_for_parties(ctx, &mut tx, "conventions.renewal_refused", &conv, summary).await?;
                tx.commit().await?;
                return Ok(RenewalOutcome::Refused { reference: conv.reference, reason });
            }
            PartialSuccession::LeaveOutItsSchools => {
                let left_out = successors.succeeded_schools();
                if left_out.len() >= successors.schools.len() {
                    // Its successors together take over every school: as a whole successor.
                    let summary = json!({ "end_date": conv.end_date, "successor": next });
                    record_for_parties(ctx, &mut tx, "conventions.not_renewed", &conv, summary).await?;
                    tx.commit().await?;
                    return Ok(RenewalOutcome::Unchanged);
                }
                for school in &left_out {
                    sqlx::query("DELETE FROM convention_schools WHERE convention_id = $1 AND org_id = $2")
                        .bind(&conv.id)
                        .bind(school)
                        .execute(&mut *tx)
                        .await?;
                }
                let codes: Vec<&str> =
                    conv.schools.iter().filter(|s| left_out.contains(&s.id)).map(|s| s.code.as_str()).collect();
                let summary = json!({ "end_date": conv.end_date, "partial_successor": next, "left_out": codes });
                record_for_parties(ctx, &mut tx, "conventions.renewed_over_partial_successor", &conv, summary).await?;
            }
        },
        Succession::None => {}
    }
    let span = renewal_span(model, &signed_term(&mut tx, &conv).await?)?;
    let mut end = first;
    while end < ctx.today() {
        let next = renewed_end(end, span)?;
        sqlx::query(
            "INSERT INTO convention_renewals (convention_id, previous_end, new_end, renewed_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&conv.id)
        .bind(end.to_string())
        .bind(next.to_string())
        .bind(timestamp(ctx.now))
        .execute(&mut *tx)
        .await?;
        let summary = json!({ "previous_end": end.to_string(), "end_date": next.to_string() });
        record_for_parties(ctx, &mut tx, "conventions.renew", &conv, summary).await?;
        end = next;
    }
    sqlx::query("UPDATE conventions SET end_date = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(end.to_string())
        .bind(timestamp(ctx.now))
        .bind(&conv.id)
        .execute(&mut *tx)
        .await?;
    let recipients = party_signers(&mut tx, model, &conv).await?;
    let renewed = Convention { end_date: end.to_string(), ..conv };
    let extra = json!({ "previous_end": french_date(&first.to_string()) });
    notify(&mut tx, &recipients, &renewed, "renewed", extra, ctx.now).await?;
    tx.commit().await?;
    Ok(RenewalOutcome::Renewed)
}

/// A renewal the daily job made: the term passed and the end it set.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Renewal {
    pub previous_end: String,
    pub new_end: String,
    pub renewed_at: String,
}

/// The renewals of convention `id`, oldest first.
pub async fn renewals(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Vec<Renewal>, Problem> {
    Ok(sqlx::query_as(
        "SELECT previous_end, new_end, renewed_at FROM convention_renewals WHERE convention_id = $1 \
         ORDER BY previous_end",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn months(months: u32) -> Span {
        Span { months, days: 0 }
    }

    #[test]
    fn a_renewal_runs_from_the_day_after_the_term_by_the_end_of_month_rule() {
        assert_eq!(renewed_end(day("2029-08-31"), months(36)).unwrap(), day("2032-08-31"));
        let leap = renewed_end(day("2027-02-28"), months(12)).unwrap();
        assert_eq!(leap, day("2028-02-29"), "from 1 March, across a leap day");
        assert_eq!(renewed_end(day("2027-01-30"), months(1)).unwrap(), day("2027-02-28"), "from a 31st: the last day");
    }

    #[test]
    fn a_renewal_for_the_same_duration_repeats_the_span_signed() {
        let span = |start, end| Span::between(day(start), day(end)).unwrap();
        assert_eq!(span("2026-09-01", "2028-08-31"), months(24));
        assert_eq!(renewed_end(day("2028-08-31"), span("2026-09-01", "2028-08-31")).unwrap(), day("2030-08-31"));
        let odd = span("2026-09-01", "2027-07-15");
        assert_eq!(odd, Span { months: 10, days: 15 });
        assert_eq!(renewed_end(day("2027-07-15"), odd).unwrap(), day("2028-05-30"), "10 months, then 15 days");
        let short = span("2026-09-01", "2026-09-20");
        assert_eq!(renewed_end(day("2026-09-20"), short).unwrap(), day("2026-10-10"), "20 days");
    }
}
