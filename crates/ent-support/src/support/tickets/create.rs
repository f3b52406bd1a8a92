//! Opening a ticket: who may, on which tenant, its category, priority and first queue.

use super::change::finish;
use super::events::{append_event, notify, refresh, requester_email, NewEvent};
use super::{load, Ctx, Ticket};
use crate::support::policy::GRADES;
use crate::support::SupportState;
use crate::support::{queue_emails, Category, Level, Priority};
use chrono::{DateTime, Datelike, Utc};
use ent_conventions::conventions::active_covering;
use ent_kernel::clock::{french_date, french_moment_in, today_in_france};
use ent_kernel::error::{Checks, Problem, ProblemKind};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::store::counters::next_reference;
use ent_kernel::store::Tx;
use ent_kernel::store::{new_id, timestamp, Store};
use ent_ops::notify::Notice;
use ent_platform::identity::authz::users_with_role;
use ent_platform::identity::authz::{self, forbidden};
use ent_platform::identity::{Actor, Caller};
use ent_platform::registry::queries::{covers_org, get_org};
use ent_platform::registry::Org;
use ent_tenants::tenants::annex::services_of;
use ent_tenants::tenants::{find_for, Status as TenantStatus, Tenant};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use sqlx::AnyConnection;

// --- creation -------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Tenant slug.
    pub tenant: String,
    #[schemars(length(min = 1, max = 200))]
    pub subject: String,
    #[schemars(length(min = 1, max = 20000))]
    pub description: String,
    /// `acces`, `service`, `donnees` or `autre`.
    #[schemars(extend("enum" = ["acces", "service", "donnees", "autre"]))]
    pub category: String,
    /// Catalog service code, for the `service` category.
    pub service: Option<String>,
    /// `haute`, `moyenne` or `basse`.
    #[schemars(extend("enum" = ["haute", "moyenne", "basse"]))]
    pub impact: String,
    /// `haute`, `moyenne` or `basse`.
    #[schemars(extend("enum" = ["haute", "moyenne", "basse"]))]
    pub urgency: String,
    /// Overrides the priority of the impact × urgency matrix (P1 to P4; support levels only).
    #[schemars(extend("enum" = ["P1", "P2", "P3", "P4", null]))]
    pub priority: Option<String>,
}

pub(super) fn check_grade(checks: &mut Checks, field: &str, value: &str) {
    if !GRADES.contains(&value) {
        checks.fail(field, format!("« {value} » inconnu : haute, moyenne ou basse"));
    }
}

pub(super) fn check_category(checks: &mut Checks, state: &SupportState, category: &str, service: Option<&str>) {
    match Category::parse(category) {
        None => {
            checks.fail("category", format!("catégorie « {category} » inconnue : acces, service, donnees ou autre"))
        }
        Some(Category::Service) => match service {
            None => checks
                .fail("service", "choisissez le service concerné : il est obligatoire pour un ticket sur un service"),
            Some(code) if state.catalog.service(code).is_none() => {
                checks.fail("service", format!("service « {code} » absent du catalogue"))
            }
            Some(_) => {}
        },
        Some(_) if service.is_some() => checks.fail("service", "réservé à la catégorie service"),
        Some(_) => {}
    }
}

pub(super) fn parse_priority(checks: &mut Checks, value: Option<&str>) -> Option<Priority> {
    let v = value?;
    let p = Priority::parse(v);
    if p.is_none() {
        checks.fail("priority", format!("priorité « {v} » inconnue : P1, P2, P3 ou P4"));
    }
    p
}

/// The catalog codes of the services `tenant` runs (its bouquet and options); none when the
/// catalog no longer resolves them.
pub fn services_run(state: &SupportState, tenant: &Tenant) -> Vec<String> {
    services_of(&state.catalog, &tenant.bouquet, &tenant.options)
}

/// The services of the tenant `slug` names among those `actor` reads, as the ticket form offers
/// them; `None` for a tenant out of its reach or naming none.
pub async fn services_of_tenant(
    state: &SupportState,
    actor: &Actor,
    slug: &str,
) -> Result<Option<Vec<String>>, Problem> {
    Ok(readable_tenant(&state.store, actor, slug).await?.map(|tenant| services_run(state, &tenant)))
}

/// A ticket's service must be one its ENT runs (422 on `service`, naming those it runs), when the
/// catalog still resolves them; a code absent from the catalog is [`check_category`]'s.
fn check_service_run(checks: &mut Checks, state: &SupportState, tenant: &Tenant, service: Option<&str>) {
    let Some(code) = service.filter(|code| state.catalog.service(code).is_some()) else { return };
    let run = services_run(state, tenant);
    if run.is_empty() || run.iter().any(|c| c == code) {
        return;
    }
    let name = |code: &str| state.catalog.service(code).map_or_else(|| code.to_string(), |s| s.name.clone());
    let names: Vec<String> = run.iter().map(|c| format!("« {} »", name(c))).collect();
    checks.fail(
        "service",
        format!(
            "l'ENT {} ne fait pas fonctionner le service « {} » : choisissez l'un des siens ({})",
            tenant.slug,
            name(code),
            names.join(", ")
        ),
    );
}

/// `convention_expiree` / `sans_convention` when no active convention covers the tenant today.
async fn convention_flag(ctx: &Ctx<'_>, tenant: &Tenant) -> Result<Option<String>, Problem> {
    let today = today_in_france(ctx.now).to_string();
    let active = active_covering(ctx.store(), &ctx.state.models, &tenant.organisation.id, &today).await?;
    Ok(match (active, &tenant.convention_id) {
        (Some(_), _) => None,
        (None, Some(_)) => Some("convention_expiree".into()),
        (None, None) => Some("sans_convention".into()),
    })
}

/// A ticket may be opened on a tenant in the actor's scope, or by the staff of
/// one of the tenant's schools (a commune-wide tenant serves all its écoles).
pub(crate) async fn may_open(store: &Store, actor: &Actor, tenant_org: &Org) -> Result<(), Problem> {
    let refused = match authz::authorize(store, actor, &authz::SUPPORT_CREATE, tenant_org).await {
        Ok(()) => return Ok(()),
        Err(refused) => refused,
    };
    for b in actor.bindings.iter().filter(|b| authz::SUPPORT_CREATE.roles.contains(&b.role)) {
        if let Some(org) = &b.org {
            if covers_org(store, tenant_org, org).await? {
                return Ok(());
            }
        }
    }
    Err(refused)
}

/// Whether the actor supports the tenants of `tenant_org`: an administrator, or N1 or N2
/// over that organisation ([`crate::support::staff_orgs`]); a support role elsewhere is not enough.
async fn supports(store: &Store, actor: &Actor, tenant_org: &Org) -> Result<bool, Problem> {
    if actor.is_admin() {
        return Ok(true);
    }
    Ok(crate::support::staff_orgs(store, actor, vec![tenant_org.id.clone()]).await?.contains(&tenant_org.id))
}

/// The role the actor opens a ticket on a tenant of `tenant_org` with: the first of its
/// roles that may open one there ([`may_open`]: over the organisation, or at one of the
/// schools it serves), not whatever role it holds elsewhere; and the school it holds that role
/// at when that is how it reaches the tenant (a commune's ENT reached from one of its écoles),
/// whose N1 answers it ([`crate::support::resolve_contract`]).
async fn requester_role(store: &Store, actor: &Actor, tenant_org: &Org) -> Result<(Role, Option<Org>), Problem> {
    for b in actor.bindings.iter().filter(|b| authz::SUPPORT_CREATE.roles.contains(&b.role)) {
        let org = match &b.org {
            _ if b.role == Role::Admin => return Ok((b.role, None)),
            None => continue,
            Some(org) => org,
        };
        if authz::in_org_scope(store, org, tenant_org).await? {
            return Ok((b.role, None));
        }
        if covers_org(store, tenant_org, org).await? {
            let school = (org.kind == OrgKind::Etablissement).then(|| org.clone());
            return Ok((b.role, school));
        }
    }
    Err(forbidden("aucun de vos rôles ne permet d'ouvrir un ticket sur cet ENT"))
}

/// The tenant `slug` names among those `actor` reads ([`find_for`] as `tenants.read`: its scope
/// and the tenants serving its schools, where it may open tickets), `None` alike for one out of
/// its reach and for a slug naming none, after the same statements; [`may_open`] then decides.
async fn readable_tenant(store: &Store, actor: &Actor, slug: &str) -> Result<Option<Tenant>, Problem> {
    let caller = Caller { actor: actor.clone(), action: &authz::TENANTS_READ };
    match find_for(store, &caller, slug, || Problem::not_found("aucun tenant")).await {
        Ok(tenant) => Ok(Some(tenant)),
        Err(problem) if problem.kind == ProblemKind::NotFound => Ok(None),
        Err(problem) => Err(problem),
    }
}

/// The 409 of a ticket on a purged tenant: nothing is left to look at.
fn purged_tenant(tenant: &Tenant) -> Problem {
    Problem::conflict(format!(
        "l'ENT {} est purgé : ses données sont supprimées, aucun ticket ne peut plus y être ouvert",
        tenant.slug
    ))
}

pub async fn create(ctx: &Ctx<'_>, new: NewTicket) -> Result<Ticket, Problem> {
    let store = ctx.store();
    let mut checks = Checks::default();
    checks.text("subject", &new.subject, 200);
    checks.line("subject", &new.subject);
    checks.text("description", &new.description, 20_000);
    check_category(&mut checks, ctx.state, &new.category, new.service.as_deref());
    check_grade(&mut checks, "impact", &new.impact);
    check_grade(&mut checks, "urgency", &new.urgency);
    let forced = parse_priority(&mut checks, new.priority.as_deref());
    // A tenant the actor cannot read is not revealed: it is unknown.
    let tenant = readable_tenant(store, ctx.actor, &new.tenant).await?;
    match &tenant {
        None => checks.fail("tenant", format!("aucun tenant « {} »", new.tenant)),
        Some(tenant) => check_service_run(&mut checks, ctx.state, tenant, new.service.as_deref()),
    }
    checks.finish()?;
    let tenant = tenant.expect("checked");
    let org =
        get_org(store, &tenant.organisation.id).await?.ok_or_else(|| Problem::not_found("organisation introuvable"))?;
    may_open(store, ctx.actor, &org).await?;
    if tenant.status == TenantStatus::Purged {
        return Err(purged_tenant(&tenant));
    }
    if forced.is_some() && !supports(store, ctx.actor, &org).await? {
        return Err(Problem::invalid_field("priority", "seul le support de cet ENT peut imposer une priorité"));
    }
    let user_id = ctx.actor.user_id.clone().ok_or_else(|| {
        Problem::invalid_field("requester", "un ticket est ouvert par un utilisateur : utilisez --as ADRESSE")
    })?;
    let priority = forced
        .or_else(|| ctx.state.support.priority(&new.impact, &new.urgency))
        .expect("the matrix is complete (validated at start)");
    let (role, school) = requester_role(store, ctx.actor, &org).await?;
    let role = role.as_str().to_string();
    let contract = crate::support::resolve_contract(ctx.state, &tenant, school.as_ref(), ctx.now).await?;
    let flag = convention_flag(ctx, &tenant).await?;
    let queue = creation_queue(&mut *store.conn().await?, &contract, &org).await?;

    let id = new_id();
    let at = timestamp(ctx.now);
    let mut tx = store.begin_write().await?;
    // The tenant's state read again, and kept from changing until this ticket commits: a purge
    // committing meanwhile either counted it or waits for it and finds it (`purge::Holds`).
    let status: String =
        sqlx::query_scalar(&format!("SELECT status FROM tenants WHERE id = $1{}", store.backend().for_share()))
            .bind(&tenant.id)
            .fetch_one(&mut *tx)
            .await?;
    if status == TenantStatus::Purged.as_str() {
        return Err(purged_tenant(&tenant));
    }
    let reference = next_reference(&mut tx, "ENT", today_in_france(ctx.now).year()).await?;
    sqlx::query(
        "INSERT INTO support_tickets (id, reference, tenant_id, tenant_org_id, requester_id, requester_role, subject, \
         description, category, service, impact, urgency, priority, policy, level, n1_org_id, n2_org_id, n3_org_id, \
         status, convention_flag, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, 'n1', $15, $16, $17, 'new', $18, $19, $20)",
    )
    .bind(&id)
    .bind(&reference)
    .bind(&tenant.id)
    .bind(&org.id)
    .bind(&user_id)
    .bind(&role)
    .bind(new.subject.trim())
    .bind(new.description.trim())
    .bind(&new.category)
    .bind(&new.service)
    .bind(&new.impact)
    .bind(&new.urgency)
    .bind(priority.as_str())
    .bind(&contract.policy)
    .bind(&contract.n1.id)
    .bind(contract.n2.as_ref().map(|o| o.id.clone()))
    .bind(contract.n3.as_ref().map(|o| o.id.clone()))
    .bind(&flag)
    .bind(&at)
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    let t = load(&mut tx, &id).await?.expect("just inserted");
    let e =
        NewEvent { kind: "created", from: None, to: Some("n1"), visibility: "public", body: None, actor_level: None };
    append_event(&mut tx, &id, ctx.actor, e, ctx.now).await?;
    let state = refresh(&mut tx, &ctx.state.support, &t, ctx.now).await?;
    // Nobody to hear of it: the ENT's governors are told instead.
    let told = match queue.is_empty() {
        true => Some(governors(&mut tx, &org, contract.n2.as_ref().map(|o| o.id.as_str())).await?),
        false => None,
    };
    let mut warnings: Vec<String> = not_running_said(&tenant).into_iter().collect();
    warnings.extend(told.as_ref().map(|told| unstaffed_said(!told.is_empty())));
    let warning = warn(&mut tx, ctx, &t, &warnings).await?;
    // As opened, its warnings included: the requester's version starts here (`change::tell_requester`).
    let t = load(&mut tx, &id).await?.expect("just inserted");
    // The N1 team reads the due date in its own time (an overseas school's, not Paris').
    let place = crate::support::place_of(&mut tx, &org.id).await?;
    let tz = ctx.state.support.calendar_at(&contract.policy, Level::N1, &place).tz;
    let due = state.clock(Level::N1).and_then(|c| c.first_response_due).map(|due| due_moment(due, tz));
    if let Some(told) = told {
        note_unstaffed(&mut tx, ctx, &t, &contract, &told).await?;
        notify_unstaffed(&mut tx, told, &t, &tenant.slug, &contract, ctx.now).await?;
    }
    let acknowledged = acknowledgement_to(&t, &queue);
    notify(&mut tx, queue, &t, "created", json!({ "tenant": tenant.slug, "due": due }), ctx.now, ctx.now).await?;
    let said = json!({ "tenant": tenant.slug, "due": due, "warning": warning });
    notify(&mut tx, acknowledged, &t, "received", said, ctx.now, ctx.now).await?;
    let summary = json!({ "reference": reference, "tenant": tenant.slug, "priority": priority.as_str(), "flag": flag });
    let mut t = finish(ctx, tx, &t, "support.tickets.create", summary).await?;
    t.warning = warning;
    Ok(t)
}

/// Who is told that ticket `t` is registered (« Ticket enregistré »): its requester, unless the
/// creation notice to the N1 `queue` already reaches them (a support person opening one).
fn acknowledgement_to(t: &Ticket, queue: &[String]) -> Vec<String> {
    let heard = |email: &String| queue.iter().any(|q| q.eq_ignore_ascii_case(email));
    requester_email(t).into_iter().filter(|email| !heard(email)).collect()
}

/// The warnings of a new ticket, each a public « Avertissement » of its history (the
/// requester and the support read it); together, the ticket's [`Ticket::warning`].
async fn warn(tx: &mut Tx, ctx: &Ctx<'_>, t: &Ticket, warnings: &[String]) -> Result<Option<String>, Problem> {
    for said in warnings {
        append_event(tx, &t.id, ctx.actor, NewEvent::new("warning", "public").body(said), ctx.now).await?;
    }
    Ok((!warnings.is_empty()).then(|| warnings.join(" ")))
}

/// What the requester reads of a ticket on an ENT that is not running: not yet open
/// (requested, being deployed, its deployment failing), suspended, being withdrawn or
/// archived. The ticket is kept, but what needs the ENT running waits for it, and a closed
/// ENT's support only handles its data. `None` while it runs (a purged one takes no ticket).
fn not_running_said(tenant: &Tenant) -> Option<String> {
    const OPENING: &str = "un problème d'accès ou de service ne pourra être traité qu'une fois l'ENT ouvert";
    const DATA_ONLY: &str =
        "seules les demandes sur ses données (récupération, suppression) peuvent encore être traitées";
    let (state, then) = match tenant.status {
        TenantStatus::Active | TenantStatus::Purged => return None,
        TenantStatus::Requested => {
            ("Cet ENT n'est pas encore ouvert : il est demandé, son déploiement n'a pas commencé".into(), OPENING)
        }
        TenantStatus::Provisioning if tenant.provisioning_state.error.is_some() => {
            ("Cet ENT n'est pas encore ouvert : son déploiement a échoué et sera repris".into(), OPENING)
        }
        TenantStatus::Provisioning => {
            ("Cet ENT n'est pas encore ouvert : il est en cours de déploiement".into(), OPENING)
        }
        TenantStatus::Suspended => (
            "Cet ENT est suspendu : ses services sont interrompus".into(),
            "un problème d'accès ou de service ne pourra être traité qu'à sa réouverture",
        ),
        TenantStatus::Decommissioning => ("Cet ENT est en cours de retrait : ses services ferment".into(), DATA_ONLY),
        TenantStatus::Archived => (archived_said(tenant), DATA_ONLY),
    };
    Some(format!("{state}. Votre ticket est enregistré ; {then}."))
}

/// « Cet ENT est fermé », and from when its data may be deleted (the purge's due date, Paris time).
fn archived_said(tenant: &Tenant) -> String {
    let due = tenant.provisioning_state.purge_due_at.as_deref().and_then(|d| DateTime::parse_from_rfc3339(d).ok());
    match due {
        Some(due) => format!(
            "Cet ENT est fermé : il est archivé, ses données peuvent être supprimées à partir du {}",
            french_date(&today_in_france(due.with_timezone(&Utc)).to_string())
        ),
        None => "Cet ENT est fermé : il est archivé, seules ses données sont conservées".into(),
    }
}

/// Who answers for the ENT when nobody supports it: the tenant organisation's governors (its
/// chef d'établissement, or its collectivité's users) and the DAN of the académie at N2 (`n2`,
/// the organisation the contract designates for it). Told of a new ticket, or of one escalated
/// or returned to a level, that nobody would hear of.
pub(crate) async fn governors(conn: &mut AnyConnection, org: &Org, n2: Option<&str>) -> Result<Vec<String>, Problem> {
    let role = match org.kind {
        OrgKind::Etablissement => Role::ChefEtablissement,
        _ => Role::Collectivite,
    };
    let mut told = users_with_role(&mut *conn, &org.id, role.as_str()).await?;
    if let Some(n2) = n2 {
        told.extend(users_with_role(&mut *conn, n2, Role::Dan.as_str()).await?);
    }
    told.sort();
    told.dedup();
    Ok(told)
}

/// What the requester reads of a ticket nobody supports: it is kept, and who was told.
fn unstaffed_said(told: bool) -> String {
    let who = match told {
        true => "les responsables de l'ENT en sont avertis",
        false => "mais personne n'en a été averti : signalez-le à votre collectivité ou à la délégation académique au numérique",
    };
    format!("Aucun support n'est encore désigné pour cet ENT : votre ticket est enregistré, {who}.")
}

/// The support's (internal) warning of a ticket nobody supports: which level lacks whom and who
/// was told instead; the requester's is [`unstaffed_said`] ([`warn`]).
async fn note_unstaffed(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    t: &Ticket,
    contract: &crate::support::Contract,
    told: &[String],
) -> Result<(), Problem> {
    let instead = match told {
        [] => "personne n'a été prévenu".to_string(),
        _ => format!("prévenus à la place : {}", told.join(", ")),
    };
    let body = format!(
        "aucun destinataire pour l'avis de création : ni utilisateur ni adresse au niveau 1 ({}) ni au niveau 2 \
         ; {instead}",
        contract.n1.name
    );
    // The addresses stay in the ticket's internal event: the central log gets ids and a count.
    tracing::warn!(
        ticket = %t.reference,
        tenant = %t.tenant_id,
        n1 = %contract.n1.id,
        told = told.len(),
        "no recipient for the creation notice at N1 or N2: the ENT's governors told instead"
    );
    append_event(tx, &t.id, ctx.actor, NewEvent::new("warning", "internal").body(&body), ctx.now).await
}

/// The governors' mail of a ticket nobody supports: which ENT and level lack whom, a link to the
/// N1 organisation to designate one. Not the ticket's subject: their roles do not read tickets,
/// and a requester's free text often names a pupil.
async fn notify_unstaffed(
    tx: &mut Tx,
    told: Vec<String>,
    t: &Ticket,
    tenant: &str,
    contract: &crate::support::Contract,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let context = json!({ "reference": t.reference, "priority": t.priority.as_str(), "tenant": tenant,
        "n1": contract.n1.name });
    Notice::event("support", told, "unstaffed")
        .with(context)
        .page(format!("/organisations/{}", contract.n1.id))
        .enqueue(tx, now)
        .await?;
    Ok(())
}

/// Who hears of a new ticket of the school `school`: the N1 queue, else (a commune with neither
/// N1 user nor address) the N2's. Never the N3: the éditeur hears of a ticket only when it is
/// escalated to it.
async fn creation_queue(
    conn: &mut AnyConnection,
    contract: &crate::support::Contract,
    school: &Org,
) -> Result<Vec<String>, Problem> {
    let levels = [(Level::N1, Some(&contract.n1)), (Level::N2, contract.n2.as_ref())];
    for (level, org) in levels {
        let Some(org) = org else { continue };
        let queue = queue_emails(conn, level, &org.id, school).await?;
        if !queue.is_empty() {
            return Ok(queue);
        }
    }
    Ok(Vec::new())
}

/// A due date in `tz`, the time zone of the calendar of the level that reads it, as the platform
/// writes a day and an hour ([`french_moment_in`]: `17 mai 2027 à 10 h 00`); outside Paris time,
/// said so with its offset: `23 février 2026 à 11 h 00 (heure locale, UTC-04:00)`.
pub fn due_moment(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let said = french_moment_in(at, tz);
    match tz == chrono_tz::Europe::Paris {
        true => said,
        false => format!("{said} (heure locale, UTC{})", at.with_timezone(&tz).format("%:z")),
    }
}
