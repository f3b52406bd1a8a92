//! The rules of a convention's life, along its seams: drafting (`draft`: creation and
//! validation, edits that void signatures, avenants), the visa and signature circuit (`signing`:
//! refusal, signed copies, the date-driven moves; `withdrawal`: an administrator's withdrawal of a
//! signature given by mistake), its end (`ending`: termination, avenants and
//! drafts left in preparation). Here: what every step shares (`Ctx`, who writes a convention,
//! the audit to its parties, status and version writes, the row locks); `workflow::X` paths are
//! re-exported as before.

mod costs;
mod draft;
mod ending;
mod signing;
mod withdrawal;

pub use costs::{cost_conflicts, with_warnings, CostConflict};

pub(crate) use draft::others_on;
pub use draft::{
    amend, check_edit, check_new, create, create_constitutive, create_constitutive_in, update, update_constitutive,
    update_constitutive_in, CheckedEdit, CheckedNew, ConventionPatch, NewConvention, PartyDetail, PartyInput, Span,
    CONVENTION_DAYS, GROUPEMENT_TERMS,
};
pub use ending::{
    controller_dpos, end_in_preparation, end_in_preparation_in, end_of_notice, end_on_termination_date, notice_months,
    reversibility_article, terminate, Termination, NOTICE_PARAMETER,
};
pub(crate) use ending::{end_pending_avenants, require_no_notified_termination, Ended};
pub(crate) use signing::signer_of;
pub use signing::{
    activate_if_started, awaited_actors, awaited_text, complete_if_all_signed, give_visa, may_deposit_signed,
    may_refuse, parties_to_sign, party_signers, pending_signers, refuse, require_pdf, sign, submit, unreachable_steps,
    upload_signed, visa_for, Completion, Signing, MAX_SIGNED_COPIES,
};
pub use withdrawal::{withdraw_signature, Withdrawal, WithdrawalBody};

use super::model::ConventionModel;
use super::{find_model, get_convention, Convention, Status, AUDIT_KIND};
use chrono::{DateTime, NaiveDate, Utc};
use ent_kernel::clock::today_in_france;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::store::{serialise, timestamp, Backend, SerialLock, Store, Tx};
use ent_platform::audit::{self, Target};
use ent_platform::identity::authz::{self, forbidden};
use ent_platform::identity::{Actor, Binding};
use serde_json::Value;

/// Everything a workflow step needs.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub models: &'a [ConventionModel],
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// Today in France, where convention dates are meant.
    pub fn today(&self) -> NaiveDate {
        today_in_france(self.now)
    }
}

/// Whether the binding `b` writes a convention of `model` (drafts, edits, submits, terminates,
/// amends it) for its organisation, if that one is a party; opposing its renewal is also asked
/// of its signing role there (`renewal::may_oppose`), filing its signed copies of that role
/// only (`signing::may_deposit_signed`). A groupement's convention constitutive: any role that writes conventions (its
/// coordinator, through the groupement's flow). An ENT convention (tripartite, bipartite): the
/// DAN and the collectivité of a party, and the chef d'établissement of an EPLE (collège,
/// lycée, EREA: a legal person); not an école's head (an école has no legal personality: its
/// head signs where the model says so, nothing more), nor a coordinateur.
pub(crate) fn writes_as_party(b: &Binding, model: &ConventionModel) -> bool {
    let Some(org) = &b.org else { return false };
    if !authz::CONVENTIONS_WRITE.roles.contains(&b.role) {
        return false;
    }
    if !model.governs_ent() {
        return true;
    }
    match b.role {
        Role::Dan | Role::Collectivite => true,
        Role::ChefEtablissement => org.etab_type.is_some_and(|t| !t.is_ecole()),
        _ => false,
    }
}

/// Whether `actor` writes a convention of `model` for the party organisation `org_id`: an
/// admin, or a binding there that [`writes_as_party`].
pub(crate) fn writes_for(actor: &Actor, model: &ConventionModel, org_id: &str) -> bool {
    actor.is_admin()
        || actor.bindings.iter().any(|b| b.org.as_ref().is_some_and(|o| o.id == org_id) && writes_as_party(b, model))
}

/// Whether `actor` writes `conv`, of `model`, for one of its parties ([`writes_for`]): whom the
/// console offers its writing forms.
pub fn writes_convention(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    conv.parties.iter().any(|p| writes_for(actor, model, &p.org.id))
}

/// Only an admin, or a user who writes a convention of `model` for one of the party
/// organisations ([`writes_as_party`]), writes a convention: a writing role held elsewhere (a
/// commune's) does not extend to a party where the user is only DPO or auditeur.
pub(crate) fn require_party_member(
    actor: &Actor,
    model: &ConventionModel,
    party_org_ids: &[String],
) -> Result<(), Problem> {
    if party_org_ids.iter().any(|id| writes_for(actor, model, id)) {
        return Ok(());
    }
    let mut detail =
        "vous n'avez, à aucune des parties de cette convention, un rôle qui permet de la modifier".to_string();
    if model.governs_ent() {
        detail.push_str(
            " : une convention ENT est rédigée, soumise, amendée, résiliée ou non reconduite par la DAN, la \
             collectivité ou le chef d'un établissement public local d'enseignement (collège, lycée) qui y est partie ; \
             le directeur d'école la signe seulement, le coordonnateur n'écrit que la convention constitutive de son \
             groupement",
        );
    }
    Err(forbidden(detail))
}

/// [`require_party_member`] for `conv`, under its own model.
pub(crate) fn require_writer_of(ctx: &Ctx<'_>, conv: &Convention) -> Result<(), Problem> {
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    require_party_member(ctx.actor, model, &conv.party_org_ids())
}

/// The party of a groupement's convention constitutive that drafts it: the groupement's
/// coordinator, who accepts its members and carries its terms.
pub const COORDINATOR_PARTY: &str = "coordinateur";

/// Whether `actor` leads a convention of `model` between `parties` (party key, organisation id):
/// sets every party's signatory and, for a groupement's convention constitutive, its title,
/// dates and the parameters the groupement does not set, submits it, amends it and terminates
/// it. An admin; for a convention constitutive, a writer at its coordinator party (the other
/// parties are members: each writes its own signatory only); for an ENT convention, the DAN of
/// an académie party, who drafts it (a collectivité or an établissement designates its own
/// signatory only).
pub(crate) fn leads<'p>(
    actor: &Actor,
    model: &ConventionModel,
    mut parties: impl Iterator<Item = (&'p str, &'p str)>,
) -> bool {
    if actor.is_admin() {
        return true;
    }
    if !model.governs_ent() {
        return parties.any(|(key, org)| key == COORDINATOR_PARTY && writes_for(actor, model, org));
    }
    parties.any(|(_, org)| {
        actor
            .bindings
            .iter()
            .any(|b| b.role == Role::Dan && b.org.as_ref().is_some_and(|o| o.id == org) && writes_as_party(b, model))
    })
}

/// [`leads`] for `conv`'s parties.
pub(crate) fn leads_convention(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    leads(actor, model, conv.parties.iter().map(|p| (p.key.as_str(), p.org.id.as_str())))
}

/// Whether `actor` may submit, amend or terminate `conv`, of `model`: a writer of one of its
/// parties ([`writes_convention`]); for a groupement's convention constitutive, its coordinator
/// side only ([`leads`]): a member signs it, or refuses it, but does not conduct it.
pub fn conducts_convention(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    if model.governs_ent() {
        return writes_convention(actor, model, conv);
    }
    leads_convention(actor, model, conv)
}

/// [`require_writer_of`], and for a groupement's convention constitutive its coordinator side
/// ([`conducts_convention`]): 403 for a member.
pub(crate) fn require_conductor_of(ctx: &Ctx<'_>, conv: &Convention) -> Result<(), Problem> {
    require_writer_of(ctx, conv)?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if conducts_convention(ctx.actor, model, conv) {
        return Ok(());
    }
    Err(forbidden(COORDINATOR_ONLY))
}

/// Why a member of a groupement is refused what its coordinator does on the convention constitutive.
pub(crate) const COORDINATOR_ONLY: &str =
    "la convention constitutive d'un groupement de commandes est conduite par son coordonnateur (titre, dates, \
     paramètres, soumission, avenant, résiliation) : un membre y désigne son propre signataire, puis la signe ou \
     la refuse";

/// Records what a party did on a convention (a visa, a signature), scoped to that party.
pub(crate) async fn record(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    action: &str,
    convention_id: &str,
    scope: Option<&str>,
    summary: Value,
) -> Result<(), Problem> {
    let target = Target::new(AUDIT_KIND, convention_id, scope);
    audit::record(tx, ctx.store.backend(), ctx.actor, action, &target, summary, ctx.now).await
}

/// Records `action` on `conv` as `ctx`'s actor, for its parties ([`audit_to_parties`]).
pub(crate) async fn record_for_parties(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    action: &str,
    conv: &Convention,
    summary: Value,
) -> Result<(), Problem> {
    audit_to_parties(tx, ctx.store.backend(), ctx.actor, action, &conv.id, &party_orgs(conv), summary, ctx.now).await
}

/// The ids of the organisations party to `conv`.
pub(crate) fn party_orgs(conv: &Convention) -> Vec<&str> {
    conv.parties.iter().map(|p| p.org.id.as_str()).collect()
}

/// Records `action` on the convention `id` once per organisation among `parties`, scoped to it
/// (as `registry::invitations` does for its two sides): an audit record is read within its
/// organisation's scope, and the auditors and DPOs of every party read the whole lifecycle.
/// Unscoped when there is no party.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn audit_to_parties(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    action: &str,
    id: &str,
    parties: &[&str],
    summary: Value,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let mut scopes: Vec<Option<&str>> = parties.iter().map(|p| Some(*p)).collect();
    scopes.sort_unstable();
    scopes.dedup();
    if scopes.is_empty() {
        scopes.push(None);
    }
    for scope in scopes {
        let target = Target::new(AUDIT_KIND, id, scope);
        audit::record(tx, backend, actor, action, &target, summary.clone(), now).await?;
    }
    Ok(())
}

pub(super) async fn reload(ctx: &Ctx<'_>, id: &str) -> Result<Convention, Problem> {
    get_convention(ctx.store, ctx.models, id).await?.ok_or_else(|| Problem::not_found("convention introuvable"))
}

/// The tail of every change: committed, then read back.
pub(crate) async fn commit_and_reload(ctx: &Ctx<'_>, tx: Tx, id: &str) -> Result<Convention, Problem> {
    tx.commit().await?;
    reload(ctx, id).await
}

/// Voids the live steps and returns the e-mails of their authors.
pub(super) async fn void_steps(
    tx: &mut Tx,
    conv: &Convention,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, Problem> {
    let authors: Vec<String> =
        conv.steps.iter().filter(|s| s.voided_at.is_none()).map(|s| s.user_email.clone()).collect();
    sqlx::query(
        "UPDATE convention_steps SET voided_at = $1, void_reason = $2 WHERE convention_id = $3 AND voided_at IS NULL",
    )
    .bind(timestamp(now))
    .bind(reason)
    .bind(&conv.id)
    .execute(&mut **tx)
    .await?;
    Ok(authors)
}

pub(super) async fn set_document_hash(tx: &mut Tx, id: &str, hash: &str) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET document_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn set_status(tx: &mut Tx, id: &str, status: Status, now: DateTime<Utc>) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(timestamp(now))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) fn require_status(conv: &Convention, allowed: &[Status], what: &str) -> Result<(), Problem> {
    if allowed.contains(&conv.status) {
        Ok(())
    } else {
        Err(Problem::conflict(format!("impossible {} une convention {}", naming::de(what), conv.status.label())))
    }
}

/// The e-mails of the DANs of `conv`'s académie parties, who govern the ENT it covers: told of
/// services a tenant runs outside its signed annex (`tenants::annex`) and of a breach a processor
/// notifies to a school it covers (`rgpd::breaches`). Read through `conn`.
pub async fn academie_dans(conn: &mut sqlx::AnyConnection, conv: &Convention) -> Result<Vec<String>, Problem> {
    let mut emails = Vec::new();
    for party in conv.parties.iter().filter(|p| p.org.kind == OrgKind::Academie) {
        emails.extend(authz::users_with_role(&mut *conn, &party.org.id, Role::Dan.as_str()).await?);
    }
    Ok(emails)
}

/// A change to the convention that leaves its status: a new version (`ETag`).
pub(crate) async fn new_version(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET version = version + 1, updated_at = $1 WHERE id = $2")
        .bind(timestamp(now))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes, until the end of `tx`, the lock that serialises what puts conventions in force on
/// schools ([`SerialLock::ConventionCoverage`]): a signature, a completion, a tacit renewal.
/// Taken before any audit record of `tx` (the audit chain's lock is always taken after it).
pub(crate) async fn serialise_coverage(tx: &mut Tx) -> Result<(), Problem> {
    let backend = Backend::of_connection(tx);
    serialise(tx, backend, SerialLock::ConventionCoverage).await?;
    Ok(())
}

/// Opens the write transaction of a change to `id`, its row locked until commit.
pub(crate) async fn begin_locked(ctx: &Ctx<'_>, id: &str) -> Result<(Tx, Convention), Problem> {
    lock_if_exists(ctx, id).await?.ok_or_else(not_found)
}

/// [`begin_locked`], for a convention that may be gone.
pub(crate) async fn lock_if_exists(ctx: &Ctx<'_>, id: &str) -> Result<Option<(Tx, Convention)>, Problem> {
    let mut tx = ctx.store.begin_write().await?;
    Ok(super::read_convention(&mut tx, ctx.models, id, true).await?.map(|conv| (tx, conv)))
}

/// Problems are `ProblemKind` values; used by routes to map missing conventions.
pub fn not_found() -> Problem {
    Problem::new(ProblemKind::NotFound, "convention introuvable")
}
