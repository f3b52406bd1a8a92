//! The one authorisation function. Every route declares an [`Action`]; a
//! request is allowed when the actor holds a role the action accepts, at an
//! organisation whose scope contains the target. An out-of-scope read answers
//! 404 (existence is not revealed), an out-of-scope write 403.

use super::Actor;
use crate::registry::queries::{covers_condition, org_from_row, ORG_COLUMNS};
use crate::registry::Org;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::kernel::roles::{Action, Role};
use ent_kernel::store::Store;
use ent_kernel::store::{first_column, Condition};
use ent_kernel::validate::serde_in_french;
use sqlx::FromRow;

use Role::*;

const EVERYONE: &[Role] = &Role::ALL;

pub const ORGS_READ: Action = Action { name: "orgs.read", write: false, roles: EVERYONE };
pub const ORGS_CREATE: Action = Action { name: "orgs.create", write: true, roles: &[Admin, Dan] };
pub const ORGS_UPDATE: Action =
    Action { name: "orgs.update", write: true, roles: &[Admin, Dan, Collectivite, ChefEtablissement] };
pub const ORGS_MEMBERS_WRITE: Action =
    Action { name: "orgs.members.write", write: true, roles: &[Admin, Dan, Collectivite, Coordinateur] };
pub const IMPORTS_ANNUAIRE: Action = Action { name: "imports.annuaire", write: true, roles: &[Admin, Dan] };
pub const USERS_READ: Action = Action { name: "users.read", write: false, roles: &[Admin, Dan, Auditeur] };
pub const USERS_WRITE: Action = Action { name: "users.write", write: true, roles: &[Admin] };
pub const ROLES_WRITE: Action = Action { name: "roles.write", write: true, roles: &[Admin] };
pub const SELF_READ: Action = Action { name: "self.read", write: false, roles: EVERYONE };
/// One's own tokens; an admin's reach every user's.
pub const TOKENS_MANAGE: Action = Action { name: "tokens.manage", write: true, roles: EVERYONE };
/// One's own e-mail preferences (« Mon compte », `/api/v1/me/notification-preferences`).
pub const SELF_PREFERENCES: Action = Action { name: "self.preferences", write: true, roles: EVERYONE };
/// The convention models: public facts.
pub const CONVENTION_MODELS_READ: Action = Action { name: "convention-models.read", write: false, roles: EVERYONE };
/// Conventions (parameters, amounts, signers): the roles that work on them at a party —
/// signatories and writers, DPO, auditeur. Users and support staff do not.
pub const CONVENTIONS_READ: Action = Action {
    name: "conventions.read",
    write: false,
    roles: &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2, Dpo, Auditeur],
};
pub const CONVENTIONS_WRITE: Action = Action {
    name: "conventions.write",
    write: true,
    roles: &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur],
};
/// Visas, signatures and refusals: the signer's role at the party is checked by the workflow.
pub const CONVENTIONS_SIGN: Action = Action {
    name: "conventions.sign",
    write: true,
    roles: &[Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2],
};
/// Withdrawing a signature recorded by mistake on a convention still in signature: a platform
/// administrator's correction, for a stated reason (`workflow::withdraw_signature`).
pub const CONVENTIONS_SIGNATURE_WITHDRAW: Action =
    Action { name: "conventions.signatures.withdraw", write: true, roles: &[Admin] };
/// The service catalog and bouquets: public facts, for every authenticated role.
pub const CATALOG_READ: Action = Action { name: "catalog.read", write: false, roles: EVERYONE };
pub const TENANTS_READ: Action = Action { name: "tenants.read", write: false, roles: EVERYONE };
pub const TENANTS_WRITE: Action = Action { name: "tenants.write", write: true, roles: &[Admin, Dan, Collectivite] };
pub const TENANTS_TRANSITION: Action = Action { name: "tenants.transition", write: true, roles: &[Admin, Dan] };
pub const AUDIT_READ: Action = Action { name: "audit.read", write: false, roles: &[Admin, Auditeur, Dpo] };
/// Job runs and the mail outbox are platform-wide (one run serves every organisation, a
/// queued mail's recipients are personal data of any organisation): administrators only.
pub const JOBS_READ: Action = Action { name: "jobs.read", write: false, roles: &[Admin] };
pub const JOBS_RUN: Action = Action { name: "jobs.run", write: true, roles: &[Admin] };
pub const OUTBOX_READ: Action = Action { name: "outbox.read", write: false, roles: &[Admin] };
pub const OUTBOX_RETRY: Action = Action { name: "outbox.retry", write: true, roles: &[Admin] };
/// Groupements de commandes: public facts, own applications, member views (checked per route).
pub const GROUPEMENTS_READ: Action =
    Action { name: "groupements.read", write: false, roles: &[Admin, Dan, Collectivite, Coordinateur] };
/// The coordinator's work; the handler checks the binding at the groupement's coordinator.
pub const GROUPEMENTS_MANAGE: Action =
    Action { name: "groupements.manage", write: true, roles: &[Admin, Coordinateur] };
/// Applying for (or withdrawing) a collectivité in the caller's scope.
pub const GROUPEMENTS_APPLY: Action = Action { name: "groupements.apply", write: true, roles: &[Admin, Collectivite] };
/// The library of documents shared between académies.
pub const GROUPEMENTS_LIBRARY: Action =
    Action { name: "groupements.library", write: false, roles: &[Admin, Dan, Coordinateur] };
/// RGPD registers, breaches and requests: DPOs over what they cover, controllers over their
/// own organisation (`rgpd::authorize` narrows the scope further).
pub const RGPD_READ: Action =
    Action { name: "rgpd.read", write: false, roles: &[Admin, Dpo, Dan, Collectivite, ChefEtablissement] };
pub const RGPD_WRITE: Action =
    Action { name: "rgpd.write", write: true, roles: &[Admin, Dpo, Dan, Collectivite, ChefEtablissement] };
/// The breach log and the data-subject requests: each controller's own accountability
/// record, read by who keeps it (a DPO only where it writes, `rgpd::authorize`).
pub const RGPD_LOGS_READ: Action =
    Action { name: "rgpd.logs.read", write: false, roles: &[Admin, Dpo, Dan, Collectivite, ChefEtablissement] };

// Support desk: requesters (usager, chef d'établissement) and the three levels.
const SUPPORT_LEVELS: &[Role] = &[Admin, SupportN1, SupportN2, SupportN3];
/// Tickets: requesters see their own, each level what its scope and the ticket's path allow.
pub const SUPPORT_READ: Action = Action {
    name: "support.read",
    write: false,
    roles: &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2, SupportN3],
};
pub const SUPPORT_CREATE: Action =
    Action { name: "support.create", write: true, roles: &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2] };
/// Comments (a requester's replies included).
pub const SUPPORT_COMMENT: Action = Action {
    name: "support.comment",
    write: true,
    roles: &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2, SupportN3],
};
/// Status changes, escalations, returns, assignment: the level holding the ticket
/// (a requester may only close a resolved ticket of theirs).
pub const SUPPORT_HANDLE: Action = Action {
    name: "support.handle",
    write: true,
    roles: &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2, SupportN3],
};
pub const SUPPORT_REPORT: Action = Action { name: "support.report", write: false, roles: SUPPORT_LEVELS };
pub const SUPPORT_CONTRACTS_READ: Action =
    Action { name: "support.contracts.read", write: false, roles: &[Admin, Dan, SupportN1, SupportN2] };
pub const SUPPORT_CONTRACTS_WRITE: Action =
    Action { name: "support.contracts.write", write: true, roles: &[Admin, Dan] };

/// The organisations an action may reach for this actor.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Platform-wide (admin).
    All,
    /// What these organisations' scopes contain.
    Orgs(Vec<Org>),
}

impl Scope {
    /// The SQL condition on `orgs` rows in scope; `None` for everything.
    pub fn condition(&self) -> Option<Condition> {
        match self {
            Scope::All => None,
            Scope::Orgs(orgs) => Some(Condition::any(orgs.iter().map(org_scope_condition).collect())),
        }
    }
}

/// What a role held at `org` reaches: the organisation itself, what it covers,
/// and for an académie (or DSDEN) every organisation registered in it (or in
/// its département), so that the DAN sees the collectivités it works with.
pub fn org_scope_condition(org: &Org) -> Condition {
    // An académie (DSDEN) row carries its own code as `academie_code`
    // (`departement_code`), so one equality is the whole scope: the list then
    // walks `orgs_by_academie_name` (`orgs_by_departement_name`) in page order.
    if let Some((column, _)) = whole_scope_column(org) {
        let mut whole = Condition::default();
        whole.push(&format!("{column} = ?"), &[&org.code]);
        return whole;
    }
    let mut own = Condition::default();
    own.push("id = ?", &[&org.id]);
    let mut parts = vec![own, covers_condition(org)];
    match org.kind {
        OrgKind::Academie => {
            let mut in_academie = Condition::default();
            in_academie.push("academie_code = ?", &[&org.code]);
            parts.push(in_academie);
        }
        OrgKind::Dsden => {
            let mut in_departement = Condition::default();
            in_departement.push("departement_code = ?", &[&org.code]);
            parts.push(in_departement);
        }
        _ => {}
    }
    Condition::any(parts)
}

fn roles_allowing<'a>(actor: &'a Actor, action: &'a Action) -> impl Iterator<Item = &'a super::Binding> {
    actor.bindings.iter().filter(move |b| action.roles.contains(&b.role))
}

/// Whether the actor's roles allow the action at all (before any scope).
pub fn role_allows(actor: &Actor, action: &Action) -> bool {
    roles_allowing(actor, action).next().is_some()
}

/// The scope in which the actor may perform the action.
pub fn scope(actor: &Actor, action: &Action) -> Scope {
    if roles_allowing(actor, action).any(|b| b.role == Admin) {
        return Scope::All;
    }
    Scope::Orgs(roles_allowing(actor, action).filter_map(|b| b.org.clone()).collect())
}

pub fn forbidden(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::Forbidden, detail)
}

/// The refusal (403) of an action none of the actor's roles allows, whatever its target.
pub fn role_refused(action: &Action) -> Problem {
    forbidden(format!("votre rôle ne permet pas l'action {}", action.name))
}

/// Refuses, as the API's authentication layer does before any route (logged), an action none of
/// the actor's roles allows: for the ways in that have no such layer (`entctl --as`).
pub fn require_role(actor: &Actor, action: &Action) -> Result<(), Problem> {
    if role_allows(actor, action) {
        return Ok(());
    }
    log_decision(actor, action, "-", false, "no role allows the action");
    Err(role_refused(action))
}

/// Decides (actor, action, target organisation) and logs the reason.
pub async fn authorize(store: &Store, actor: &Actor, action: &Action, target: &Org) -> Result<(), Problem> {
    let decision = decide(store, actor, action, target).await?;
    let (allowed, reason) = match &decision {
        Ok(reason) => (true, reason.clone()),
        Err(reason) => (false, reason.clone()),
    };
    log_decision(actor, action, &target.qualified_code(), allowed, &reason);
    match decision {
        Ok(_) => Ok(()),
        Err(_) if !role_allows(actor, action) => Err(role_refused(action)),
        Err(_) if action.write => Err(out_of_scope_write(store, actor, target).await?),
        Err(_) => Err(not_found_org(target)),
    }
}

/// Authorisation decisions at DEBUG, denials at INFO; the actor by id, never by e-mail.
pub fn log_decision(actor: &Actor, action: &Action, target: &str, allowed: bool, reason: &str) {
    if allowed {
        tracing::debug!(actor = %actor.log_id(), action = action.name, target, allowed, reason, "authorisation");
    } else {
        tracing::info!(actor = %actor.log_id(), action = action.name, target, allowed, reason, "authorisation");
    }
}

/// The 404 of an organisation the caller may not see. It names nothing the caller did not
/// send: where the caller named the organisation, [`as_missing_key`] gives it the words of
/// that key naming nothing.
fn not_found_org(_target: &Org) -> Problem {
    Problem::not_found("aucune organisation à cette adresse")
}

/// A refusal as the caller who named the organisation `key` must read it: a 404 (out of
/// scope, not revealed) says exactly what a `key` naming nothing says; others are kept.
pub fn as_missing_key(problem: Problem, key: &str) -> Problem {
    match problem.kind {
        ProblemKind::NotFound => crate::registry::missing_org(key),
        _ => problem,
    }
}

/// [`authorize`] on the organisation the caller named `key`: out of scope and unreadable,
/// it answers the 404 of a key that names nothing, in the same words.
pub async fn authorize_key(
    store: &Store,
    actor: &Actor,
    action: &Action,
    key: &str,
    target: &Org,
) -> Result<(), Problem> {
    authorize(store, actor, action, target).await.map_err(|p| as_missing_key(p, key))
}

/// An out-of-scope write: 403 when the actor may read the target, else the
/// same 404 as for an organisation that does not exist.
pub async fn out_of_scope_write(store: &Store, actor: &Actor, target: &Org) -> Result<Problem, Problem> {
    Ok(if reads(store, actor, target).await? {
        forbidden(format!("{} est hors de votre périmètre", target.name))
    } else {
        not_found_org(target)
    })
}

/// Whether the actor may read `target` (`orgs.read` in its scope): an organisation it may
/// not read is answered about as one that does not exist. Not logged: a question, not a decision.
pub async fn reads(store: &Store, actor: &Actor, target: &Org) -> Result<bool, Problem> {
    Ok(decide(store, actor, &ORGS_READ, target).await?.is_ok())
}

/// The organisation `key` names ([`crate::registry::resolve_org`]), a bare code several
/// organisations share narrowed to those the actor [`reads`]: one, it; none, the 404 of a key
/// naming nothing; several, 409 listing only those. Whether the call may act on it is the
/// caller's to decide next.
pub async fn resolve_readable(store: &Store, actor: &Actor, key: &str) -> Result<Org, Problem> {
    match crate::registry::resolve_org(store, key).await {
        Err(problem) => readable_of_ambiguous(store, actor, key, problem).await,
        found => found,
    }
}

/// [`resolve_readable`] after a resolution of `key` failed with `problem` (kept unless the
/// code was ambiguous).
pub async fn readable_of_ambiguous(store: &Store, actor: &Actor, key: &str, problem: Problem) -> Result<Org, Problem> {
    if problem.kind != ProblemKind::AmbiguousCode {
        return Err(problem);
    }
    let mut readable = Vec::new();
    for org in crate::registry::queries::orgs_with_code(store, key).await? {
        if reads(store, actor, &org).await? {
            readable.push(org);
        }
    }
    crate::registry::queries::one_of(key, readable)
}

/// Decides a change that touches several organisations (an EPCI and the commune
/// joining it, a user and the organisation of a role): allowed only when every
/// one of them is in the actor's scope for the action. The first refusal
/// answers, as [`authorize`] does for that organisation.
pub async fn authorize_all(store: &Store, actor: &Actor, action: &Action, targets: &[&Org]) -> Result<(), Problem> {
    for target in targets {
        authorize(store, actor, action, target).await?;
    }
    Ok(())
}

/// Whether the actor acts *for* the commune `target` with this action (a membership it joins
/// or accepts): an admin, a DAN whose scope covers it, or its own `collectivite`. Any other
/// role (an académie's coordinateur, a group's roles, a département's élu) only invites: a
/// scope that reaches the commune is not its consent.
pub async fn acts_for(store: &Store, actor: &Actor, action: &Action, target: &Org) -> Result<bool, Problem> {
    for binding in roles_allowing(actor, action) {
        let speaks = match (binding.role, &binding.org) {
            (Admin, _) => true,
            (Dan, Some(org)) => in_org_scope(store, org, target).await?,
            (Collectivite, Some(org)) => org.id == target.id,
            _ => false,
        };
        if speaks {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the actor may detach the commune `commune` from `group` with this action: who
/// [`acts_for`] the commune (as for joining), or the group's own `collectivite`. A scope that
/// reaches both (an académie's coordinateur, a département's élu) is neither's decision.
pub async fn detaches(
    store: &Store,
    actor: &Actor,
    action: &Action,
    group: &Org,
    commune: &Org,
) -> Result<bool, Problem> {
    let groups_own = |b: &super::Binding| b.role == Collectivite && b.org.as_ref().is_some_and(|o| o.id == group.id);
    Ok(roles_allowing(actor, action).any(groups_own) || acts_for(store, actor, action, commune).await?)
}

async fn decide(
    store: &Store,
    actor: &Actor,
    action: &Action,
    target: &Org,
) -> Result<Result<String, String>, Problem> {
    if !role_allows(actor, action) {
        return Ok(Err("no role of the actor allows the action".into()));
    }
    match scope(actor, action) {
        Scope::All => Ok(Ok("platform-wide role".into())),
        Scope::Orgs(orgs) => {
            for org in &orgs {
                if in_org_scope(store, org, target).await? {
                    return Ok(Ok(format!("within the scope of {}", org.qualified_code())));
                }
            }
            Ok(Err("target outside every scope of the actor".into()))
        }
    }
}

/// Reads one column of an `orgs` row.
type ReadColumn = fn(&Org) -> Option<&str>;

/// The column of `orgs` (and how to read it on a row) whose equality to `org`'s
/// code is its whole scope, for an académie (DSDEN) whose row carries its own
/// code there.
fn whole_scope_column(org: &Org) -> Option<(&'static str, ReadColumn)> {
    let (column, read): (_, ReadColumn) = match org.kind {
        OrgKind::Academie => ("academie_code", |o| o.academie_code.as_deref()),
        OrgKind::Dsden => ("departement_code", |o| o.departement_code.as_deref()),
        _ => return None,
    };
    (read(org) == Some(org.code.as_str())).then_some((column, read))
}

/// Whether `target` (a row read from the store) is in the scope of a role held at `org`.
pub async fn in_org_scope(store: &Store, org: &Org, target: &Org) -> Result<bool, Problem> {
    match in_scope_by_rows(org, target) {
        Some(decided) => Ok(decided),
        None => in_org_scope_in(&mut *store.conn().await?, org, target).await,
    }
}

/// [`in_org_scope`] through `conn` (a transaction's connection).
pub async fn in_org_scope_in(conn: &mut sqlx::AnyConnection, org: &Org, target: &Org) -> Result<bool, Problem> {
    if let Some(decided) = in_scope_by_rows(org, target) {
        return Ok(decided);
    }
    let mut cond = org_scope_condition(org);
    cond.push("id = ?", &[&target.id]);
    let sql = format!("SELECT COUNT(*) AS n FROM orgs WHERE {}", cond.sql());
    let n: i64 = <(i64,)>::from_row(&cond.bind(sqlx::query(&sql)).fetch_one(conn).await?)?.0;
    Ok(n > 0)
}

/// What the two rows alone decide of [`in_org_scope`]: the organisation itself, or a
/// one-equality scope decided on the target's row as the query would; `None`: ask the store.
fn in_scope_by_rows(org: &Org, target: &Org) -> Option<bool> {
    if org.id == target.id {
        return Some(true);
    }
    whole_scope_column(org).map(|(_, read)| read(target) == Some(org.code.as_str()))
}

/// Whether `org` is of the State's own legal person, its académie its controller: an
/// académie, a DSDEN or a public school (one without a sector is public). Not a collectivité,
/// an éditeur or an hébergeur, nor a private school: each is another legal person and its own
/// controller (a private school's is its organisme de gestion: attack reviews 40 S1, 42 F1).
/// The one rule behind [`dpo_keeps`] and `identity::check_grantor` / `check_attacher`;
/// [`OF_THE_STATE`] says it in SQL.
pub fn of_the_state(org: &Org) -> bool {
    match org.kind {
        OrgKind::Academie | OrgKind::Dsden => true,
        OrgKind::Etablissement => org.is_public(),
        _ => false,
    }
}

/// Whether `org` is a private school: an établissement not [`of_the_state`], another legal
/// person (its organisme de gestion) and its own controller.
pub fn private_school(org: &Org) -> bool {
    org.kind == OrgKind::Etablissement && !of_the_state(org)
}

/// Whether `actor` keeps the record of `org` (writes its contact address, name, country) with
/// `action`, its scope checked apart ([`authorize`]): a role in scope keeps any but a private
/// school's ([`private_school`]), which only a role held at the school itself or an
/// administrator keeps — the académie's DAN reads it, never writes it (attack review 42, F1).
/// The one rule behind [`check_record_keeper`] and the console's edit form.
pub fn keeps_record(actor: &Actor, action: &Action, org: &Org) -> bool {
    let own = |b: &super::Binding| b.role == Admin || b.org.as_ref().is_some_and(|at| at.id == org.id);
    !private_school(org) || roles_allowing(actor, action).any(own)
}

/// 403 unless `actor` keeps the record of `org` with `action` ([`keeps_record`]).
pub fn check_record_keeper(actor: &Actor, action: &Action, org: &Org) -> Result<(), Problem> {
    if keeps_record(actor, action, org) {
        return Ok(());
    }
    log_decision(actor, action, &org.qualified_code(), false, "a private school's record is kept by its own roles");
    Err(forbidden(
        "seuls le chef de l'établissement et un administrateur modifient la fiche d'un établissement privé : il \
         relève de son organisme de gestion, une autre personne morale",
    ))
}

/// [`of_the_state`] in SQL over `orgs`.
const OF_THE_STATE: &str =
    "(kind IN ('academie', 'dsden') OR (kind = 'etablissement' AND (sector IS NULL OR sector <> 'prive')))";

/// Whether a DPO bound at `org` is the DPO of `target`, keeping its registers and logs: its
/// own organisation, and for the académie's DPO the organisations of the State in the académie
/// ([`of_the_state`]: its DSDEN and public schools, which have no DPO of their own). Not a
/// commune's écoles, nor a collectivité (another controller), nor a private school: it is its
/// own controller. The one rule: [`dpo_keeps_condition`] says it in SQL, [`dpos_keeping`]
/// names who it designates.
pub fn dpo_keeps(org: &Org, target: &Org) -> bool {
    org.id == target.id
        || (org.kind == OrgKind::Academie
            && of_the_state(target)
            && target.academie_code.as_deref() == Some(org.code.as_str()))
}

/// [`dpo_keeps`] in SQL over `orgs`: the organisations whose registers a DPO bound at `org` keeps.
pub fn dpo_keeps_condition(org: &Org) -> Condition {
    let mut own = Condition::default();
    own.push("id = ?", &[&org.id]);
    if org.kind != OrgKind::Academie {
        return own;
    }
    let mut schools = Condition::default();
    schools.push(&format!("{OF_THE_STATE} AND academie_code = ?"), &[&org.code]);
    Condition::any(vec![own, schools])
}

/// The e-mails of the active users bound as DPO where they keep the registers of `target`
/// ([`dpo_keeps`]): its own DPOs and, for a DSDEN or a public school, its académie's; sorted,
/// each once; read through `conn` (a transaction's connection). Only `target` itself and its
/// académie may keep them: those two are read, the rule decides.
pub async fn dpos_keeping(conn: &mut sqlx::AnyConnection, target: &Org) -> Result<Vec<String>, Problem> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1 OR (kind = 'academie' AND code = $2)");
    let academie = target.academie_code.as_deref().unwrap_or_default();
    let rows = sqlx::query(&sql).bind(&target.id).bind(academie).fetch_all(&mut *conn).await?;
    let mut keepers = Vec::new();
    for row in &rows {
        let org = org_from_row(row)?;
        if dpo_keeps(&org, target) {
            keepers.push(org.id);
        }
    }
    let mut emails = Vec::new();
    for mut cond in Condition::in_chunks("b.org_id", keepers) {
        cond.push("b.role = ? AND u.active = 1", &[Dpo.as_str()]);
        let sql = format!(
            "SELECT DISTINCT u.email FROM users u JOIN role_bindings b ON b.user_id = u.id WHERE {}",
            cond.sql()
        );
        let rows = cond.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await?;
        emails.extend(first_column::<String>(&rows)?);
    }
    emails.sort();
    emails.dedup();
    Ok(emails)
}

/// The e-mails of the active users holding `role` at `org_id`, sorted, each once; read through
/// `conn` (inside a transaction, the transaction's connection). Who a notice tells at an
/// organisation by role (conventions, tenants, support, RGPD, groupements).
pub async fn users_with_role(conn: &mut sqlx::AnyConnection, org_id: &str, role: &str) -> Result<Vec<String>, Problem> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT u.email FROM users u JOIN role_bindings b ON b.user_id = u.id \
         WHERE b.org_id = $1 AND b.role = $2 AND u.active = 1 ORDER BY u.email",
    )
    .bind(org_id)
    .bind(role)
    .fetch_all(conn)
    .await?)
}

/// What a handler works with: its capability's context (`C`, from the router state)
/// and the authenticated [`super::Caller`] with the route's action, in one extractor.
pub struct Call<C> {
    pub state: C,
    pub caller: super::Caller,
}

impl<S, C> axum::extract::FromRequestParts<S> for Call<C>
where
    S: Send + Sync,
    C: axum::extract::FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Problem> {
        let caller = super::Caller::from_request_parts(parts, state).await?;
        Ok(Call { state: C::from_ref(state), caller })
    }
}

/// A [`Call`] on the resource its path names: the context, the caller and the path's
/// parameters (`K`: `String` for one, a tuple for several), extracted in that order.
pub struct Op<C, K = String> {
    pub state: C,
    pub caller: super::Caller,
    pub key: K,
}

impl<S, C, K> axum::extract::FromRequestParts<S> for Op<C, K>
where
    S: Send + Sync,
    C: axum::extract::FromRef<S> + Send,
    K: serde::de::DeserializeOwned + Send,
{
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let Call { state, caller } =
            Call::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let axum::extract::Path(key) = axum::extract::Path::<K>::from_request_parts(parts, &()).await.map_err(|e| {
            Problem::bad_request(format!("adresse invalide : {}", serde_in_french(&e.body_text()))).into_response()
        })?;
        Ok(Op { state, caller, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Sector;
    use ent_kernel::store::Store;

    /// One organisation of the fixture: `kind` in the académie `academie`, of `sector`.
    fn org(id: &str, kind: OrgKind, academie: &str, sector: Option<Sector>) -> Org {
        Org { academie_code: Some(academie.into()), sector, ..Org::named(id, kind, id, id) }
    }

    /// The académie of Créteil and what it holds (its DSDEN, a public and a private school, a
    /// commune), with the académie of Versailles and one of its schools.
    fn fixture() -> Vec<Org> {
        vec![
            org("24", OrgKind::Academie, "24", None),
            org("dsden-94", OrgKind::Dsden, "24", None),
            org("college-public", OrgKind::Etablissement, "24", Some(Sector::Public)),
            org("ecole-sans-secteur", OrgKind::Etablissement, "24", None),
            org("college-prive", OrgKind::Etablissement, "24", Some(Sector::Prive)),
            org("commune-94034", OrgKind::Commune, "24", None),
            org("25", OrgKind::Academie, "25", None),
            org("lycee-versailles", OrgKind::Etablissement, "25", Some(Sector::Public)),
        ]
    }

    /// A store migrated from scratch holding the organisations of the fixture, and users bound
    /// as `(email, role, organisation id, active)`.
    async fn store_with(orgs: &[Org], users: &[(&str, Role, &str, bool)]) -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Some(1)).await.unwrap();
        store.migrate().await.unwrap();
        for o in orgs {
            sqlx::query(
                "INSERT INTO orgs (id, kind, code, name, sort_name, sector, academie_code, content_hash, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '', '', '')",
            )
            .bind(&o.id)
            .bind(o.kind.as_str())
            .bind(&o.code)
            .bind(&o.name)
            .bind(&o.name)
            .bind(o.sector.map(Sector::as_str))
            .bind(o.academie_code.as_deref())
            .execute(store.pool())
            .await
            .unwrap();
        }
        for (email, role, org_id, active) in users {
            let sql = "INSERT INTO users (id, email, display_name, active, created_at, updated_at) \
                       VALUES ($1, $2, $3, $4, '', '')";
            sqlx::query(sql)
                .bind(email)
                .bind(email)
                .bind(email)
                .bind(i64::from(*active))
                .execute(store.pool())
                .await
                .unwrap();
            let sql = "INSERT INTO role_bindings (id, user_id, role, org_id, created_at) VALUES ($1, $2, $3, $4, '')";
            let binding = format!("{email}-{}", role.as_str());
            sqlx::query(sql)
                .bind(binding)
                .bind(email)
                .bind(role.as_str())
                .bind(org_id)
                .execute(store.pool())
                .await
                .unwrap();
        }
        (store, dir)
    }

    /// The ids among `orgs` whose registers a DPO bound at `dpo` keeps, by [`dpo_keeps`].
    fn kept_by(dpo: &Org, orgs: &[Org]) -> Vec<String> {
        let mut ids: Vec<String> = orgs.iter().filter(|t| dpo_keeps(dpo, t)).map(|t| t.id.clone()).collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn the_dpo_keeps_rule_and_its_sql_condition_keep_the_same_organisations() {
        let orgs = fixture();
        let (store, _dir) = store_with(&orgs, &[]).await;
        let expected: [(&str, &[&str]); 5] = [
            // The académie's DPO: the académie, its DSDEN and its public schools (one without a
            // sector is public); not its private school, nor its commune, nor Versailles' school.
            ("24", &["24", "college-public", "dsden-94", "ecole-sans-secteur"]),
            ("dsden-94", &["dsden-94"]),
            ("commune-94034", &["commune-94034"]),
            ("college-prive", &["college-prive"]),
            ("25", &["25", "lycee-versailles"]),
        ];
        for (dpo, keeps) in expected {
            let dpo = orgs.iter().find(|o| o.id == dpo).unwrap();
            assert_eq!(kept_by(dpo, &orgs), keeps, "the function, for a DPO bound at {}", dpo.id);
            let cond = dpo_keeps_condition(dpo);
            let sql = format!("SELECT id FROM orgs WHERE {} ORDER BY id", cond.sql());
            let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await.unwrap();
            assert_eq!(first_column::<String>(&rows).unwrap(), keeps, "the condition, for a DPO bound at {}", dpo.id);
        }
    }

    #[tokio::test]
    async fn the_dpos_keeping_an_organisation_are_its_own_and_for_a_dsden_or_a_public_school_its_academie_s() {
        let orgs = fixture();
        let users = [
            ("dpd@ac-creteil.fr", Dpo, "24", true),
            ("ancien-dpd@ac-creteil.fr", Dpo, "24", false),
            ("dan@ac-creteil.fr", Dan, "24", true),
            ("dpd@dsden94.fr", Dpo, "dsden-94", true),
            ("dpd@fresnes.fr", Dpo, "commune-94034", true),
            ("dpd@ac-versailles.fr", Dpo, "25", true),
        ];
        let (store, _dir) = store_with(&orgs, &users).await;
        let expected: [(&str, &[&str]); 8] = [
            ("24", &["dpd@ac-creteil.fr"]),
            ("dsden-94", &["dpd@ac-creteil.fr", "dpd@dsden94.fr"]),
            ("college-public", &["dpd@ac-creteil.fr"]),
            ("ecole-sans-secteur", &["dpd@ac-creteil.fr"]),
            ("college-prive", &[]),
            ("commune-94034", &["dpd@fresnes.fr"]),
            ("25", &["dpd@ac-versailles.fr"]),
            ("lycee-versailles", &["dpd@ac-versailles.fr"]),
        ];
        let mut conn = store.conn().await.unwrap();
        for (target, told) in expected {
            let target = orgs.iter().find(|o| o.id == target).unwrap();
            assert_eq!(dpos_keeping(&mut conn, target).await.unwrap(), told, "the DPOs keeping {}", target.id);
            // Those the rule designates among the active DPOs, read the other way.
            let mut by_rule: Vec<&str> = users
                .iter()
                .filter(|(_, role, at, active)| {
                    *role == Dpo && *active && kept_by(org_of(&orgs, at), &orgs).contains(&target.id)
                })
                .map(|(email, ..)| *email)
                .collect();
            by_rule.sort();
            assert_eq!(by_rule, told, "the rule, for {}", target.id);
        }
    }

    #[test]
    fn a_private_school_s_record_is_kept_by_its_own_roles_and_an_administrator_only() {
        let orgs = fixture();
        let holding = |role: Role, at: Option<&str>| super::super::Actor {
            user_id: Some("u".into()),
            name: "user:u@t.fr".into(),
            bindings: vec![super::super::Binding { role, org: at.map(|id| org_of(&orgs, id).clone()) }],
        };
        let (dan, admin) = (holding(Dan, Some("24")), holding(Admin, None));
        let (head, other_head) =
            (holding(ChefEtablissement, Some("college-prive")), holding(ChefEtablissement, Some("college-public")));
        // Any organisation but a private school: the rule leaves it to the scope.
        for id in ["24", "dsden-94", "college-public", "ecole-sans-secteur", "commune-94034"] {
            assert!(keeps_record(&dan, &ORGS_UPDATE, org_of(&orgs, id)), "the DAN, at {id}");
        }
        let school = org_of(&orgs, "college-prive");
        assert!(!keeps_record(&dan, &ORGS_UPDATE, school), "the académie's DAN reads it, never writes it");
        assert_eq!(check_record_keeper(&dan, &ORGS_UPDATE, school).unwrap_err().kind, ProblemKind::Forbidden);
        assert!(!keeps_record(&other_head, &ORGS_UPDATE, school), "another school's head");
        assert!(keeps_record(&head, &ORGS_UPDATE, school), "its own head");
        assert!(keeps_record(&admin, &ORGS_UPDATE, school), "an administrator");
        // Its own role keeps it only with an action that role is given.
        assert!(!keeps_record(&head, &ORGS_MEMBERS_WRITE, school), "a role the action does not allow");
    }

    fn org_of<'o>(orgs: &'o [Org], id: &str) -> &'o Org {
        orgs.iter().find(|o| o.id == id).unwrap()
    }
}
