//! Support desk: N1 / N2 / N3 tickets on tenants, with SLA clocks per level
//! derived from each ticket's event log (`sla`), business calendars
//! (`calendar`), policies as data (`policy`), the breach sweep and auto-close
//! (`jobs`), reports (`report`) and the HTTP routes (`routes`).
//!
//! Who sees what: the requester their own tickets (public entries only); N1 and
//! N2 the tickets of tenants in their scope, and those whose contract designated
//! their organisation at their level (everything); N3 only tickets that reached
//! N3 at its organisation, always the tenant's vendor (its processor) at the time
//! of the escalation, with the requester pseudonymised unless N2 shared the
//! identity, and without the académie's internal comments.

pub mod attachments;
pub mod calendar;
pub mod jobs;
pub mod policy;
pub mod report;
pub mod routes;
pub mod school;
pub mod sla;
pub mod state;
pub mod tickets;

use chrono::{DateTime, Utc};
use ent_conventions::conventions::active_covering;
use ent_kernel::clock::today_in_france;
use ent_kernel::error::{Checks, Problem};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::kernel::roles::Role;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::Condition;
use ent_kernel::store::{timestamp, Store};
use ent_kernel::text_enum;
use ent_platform::audit::{self, Target};
use ent_platform::identity::authz::users_with_role;
use ent_platform::identity::authz::{
    in_org_scope_in, org_scope_condition, resolve_readable, scope, SUPPORT_CONTRACTS_READ,
};
use ent_platform::identity::{Actor, Caller};
use ent_platform::registry::queries::{
    funding_collectivite, funds_condition, get_by_code, get_org, get_org_in, orgs_by_id, orgs_by_id_in,
};
use ent_platform::registry::{Degree, Org, OrgRef};
use ent_tenants::tenants::{find_for, Tenant};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
pub use state::SupportState;
use std::collections::HashSet;
use std::sync::Arc;

pub use tickets::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    N1,
    N2,
    N3,
}

text_enum!(pub Level { N1 = "n1", N2 = "n2", N3 = "n3" });
text_enum!(pub Priority { P1 = "P1", P2 = "P2", P3 = "P3", P4 = "P4" });
text_enum!(pub Status from Self::ALL);

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::N1 => "N1",
            Level::N2 => "N2",
            Level::N3 => "N3",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn up(self) -> Option<Level> {
        match self {
            Level::N1 => Some(Level::N2),
            Level::N2 => Some(Level::N3),
            Level::N3 => None,
        }
    }

    pub fn down(self) -> Option<Level> {
        match self {
            Level::N1 => None,
            Level::N2 => Some(Level::N1),
            Level::N3 => Some(Level::N2),
        }
    }

    /// Who works on a ticket held at this level, as its requester reads it (« Votre ticket est
    /// pris en charge par le support de l'académie »): the levels' names are the support's.
    pub fn handled_by(self) -> &'static str {
        match self {
            Level::N1 => "pris en charge par le support de proximité",
            Level::N2 => "transmis au support de l'académie, qui le prend en charge",
            Level::N3 => "transmis au support de l'éditeur de l'ENT, qui le prend en charge",
        }
    }

    pub fn role(self) -> Role {
        match self {
            Level::N1 => Role::SupportN1,
            Level::N2 => Role::SupportN2,
            Level::N3 => Role::SupportN3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    InProgress,
    WaitingRequester,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] =
        [Status::New, Status::InProgress, Status::WaitingRequester, Status::Resolved, Status::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::InProgress => "in_progress",
            Status::WaitingRequester => "waiting_requester",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::New => "nouveau",
            Status::InProgress => "en cours",
            Status::WaitingRequester => "en attente du demandeur",
            Status::Resolved => "résolu",
            Status::Closed => "clos",
        }
    }

    /// The moves of the workflow by hand (a requester's reply is handled apart; who may
    /// make each one is [`Status::staff_may_move`]'s, and closing a resolved ticket the
    /// requester's).
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (New, InProgress | WaitingRequester | Resolved)
                | (InProgress, WaitingRequester | Resolved)
                | (WaitingRequester, InProgress | Resolved)
                | (Resolved, InProgress | Closed)
        )
    }

    /// The moves the support holding a ticket at `level` may make by hand: those that face
    /// the requester ([`Status::faces_requester`]) are N1's; nobody on the support closes a
    /// ticket: the requester closes their resolved ticket, or it closes by itself 7 days
    /// after its resolution (`auto_close`).
    pub fn staff_may_move(self, level: Level, to: Status) -> bool {
        self.can_move_to(to) && to != Status::Closed && (!to.faces_requester() || level == Level::N1)
    }

    /// The status as the requester reads it at `level`: a ticket escalated is new to the level
    /// receiving it, but to the requester it is taken in charge (`in_progress`), whichever level
    /// works on it; nothing tells them of the escalation.
    pub fn seen_by_requester(self, level: Level) -> Status {
        if self == Status::New && level != Level::N1 {
            Status::InProgress
        } else {
            self
        }
    }

    /// Whether moving to this status speaks to the requester for the support, as only the N1
    /// does: resolving (the solution given) and waiting on them (the question asked). The N2
    /// and the N3 hand their answer, or their question, down with `return`.
    pub fn faces_requester(self) -> bool {
        matches!(self, Status::Resolved | Status::WaitingRequester)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Accès / authentification.
    Acces,
    /// A service of the catalog (`service` names it).
    Service,
    /// Données / RGPD.
    Donnees,
    Autre,
}

text_enum!(pub Category { Acces = "acces", Service = "service", Donnees = "donnees", Autre = "autre" });

/// Where the school of a tenant's organisation is, for its SLA calendars: its
/// département's territory, its académie (time zone, school holiday zone), and
/// whether it runs écoles (an école or a commune).
pub async fn place_of(conn: &mut AnyConnection, org_id: &str) -> Result<calendar::Place, Problem> {
    let Some(org) = get_org_in(conn, org_id).await? else { return Ok(calendar::Place::default()) };
    Ok(place_of_org(&org))
}

/// The places of `org_ids` in one query (per 500 ids), for a page of tickets; an
/// organisation that no longer exists is at the default place, as in [`place_of`].
pub async fn places_of(
    store: &Store,
    org_ids: Vec<String>,
) -> Result<std::collections::HashMap<String, calendar::Place>, Problem> {
    let orgs = orgs_by_id(store, org_ids).await?;
    Ok(orgs.into_iter().map(|(id, org)| (id, place_of_org(&org))).collect())
}

pub fn place_of_org(org: &Org) -> calendar::Place {
    let own = |kind: OrgKind| (org.kind == kind).then_some(org.code.as_str());
    let departement = org.departement_code.as_deref().or(own(OrgKind::Departement));
    let academie = org.academie_code.as_deref().or(own(OrgKind::Academie));
    let ecole = org.kind == OrgKind::Commune || (org.kind == OrgKind::Etablissement && org.degree == Some(Degree::D1));
    calendar::Place::new(departement, academie, ecole)
}

/// Who supports a tenant, and under which policy.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Contract {
    pub n1: OrgRef,
    pub n2: Option<OrgRef>,
    pub n3: Option<OrgRef>,
    pub policy: String,
    /// The schools the tenant serves whose own N1 answers their users ([`school_n1`]), by name:
    /// a ticket one of their users opens goes to that N1 rather than to `n1`. Given when the
    /// contract is read for the tenant, not for one requester.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schools: Vec<SchoolN1>,
}

/// A school served by a collectivité's tenant and the N1 that answers its users there.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SchoolN1 {
    pub school: OrgRef,
    pub n1: OrgRef,
}

impl Contract {
    pub fn org(&self, level: Level) -> Option<&OrgRef> {
        match level {
            Level::N1 => Some(&self.n1),
            Level::N2 => self.n2.as_ref(),
            Level::N3 => self.n3.as_ref(),
        }
    }
}

/// A stored contract row: fields set at one organisation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractInput {
    /// N1 organisation (établissement or commune), by id, code or kind:code.
    pub n1: Option<String>,
    /// N2 organisation (académie, DSDEN).
    pub n2: Option<String>,
    /// N3 organisation (éditeur).
    pub n3: Option<String>,
    /// Policy name from the support policies.
    pub policy: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ContractRow {
    #[sqlx(rename = "n1_org_id")]
    n1: Option<String>,
    #[sqlx(rename = "n2_org_id")]
    n2: Option<String>,
    policy: Option<String>,
}

async fn contract_row(store: &Store, org_id: &str) -> Result<Option<ContractRow>, Problem> {
    Ok(sqlx::query_as("SELECT n1_org_id, n2_org_id, policy FROM support_contracts WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(store.pool())
        .await?)
}

async fn org_ref(store: &Store, id: Option<String>) -> Result<Option<OrgRef>, Problem> {
    match id {
        Some(id) => Ok(get_org(store, &id).await?.map(|o| o.as_ref())),
        None => Ok(None),
    }
}

/// The académie of an organisation, if it has one.
pub async fn academie_of(store: &Store, org: &Org) -> Result<Option<Org>, Problem> {
    match &org.academie_code {
        Some(code) => get_by_code(store, OrgKind::Academie, code).await,
        None => Ok(None),
    }
}

/// The vendor of a tenant's services: its N3, the processor that may read its tickets.
pub fn tenant_vendor(tenant: &Tenant) -> Option<OrgRef> {
    tenant.vendor.clone()
}

/// The support commitments of the active convention covering the tenant's
/// organisation, if its model has an SLA annex: (policy, N1, N2).
async fn convention_annex(
    state: &crate::support::SupportState,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<(Option<String>, Option<OrgRef>, Option<OrgRef>), Problem> {
    let today = today_in_france(now).to_string();
    let Some(conv) = active_covering(&state.store, &state.models, org_id, &today).await? else {
        return Ok((None, None, None));
    };
    let annex = state
        .models
        .iter()
        .find(|m| m.id == conv.model_id && m.version == conv.model_version)
        .and_then(|m| m.support.clone());
    let Some(annex) = annex else { return Ok((None, None, None)) };
    let party = |key: &Option<String>| {
        key.as_ref().and_then(|k| conv.parties.iter().find(|p| &p.key == k)).map(|p| p.org.clone())
    };
    let policy = Some(annex.policy.clone()).filter(|p| state.support.exists(p));
    Ok((policy, party(&annex.n1), party(&annex.n2)))
}

/// The contract in effect for the tenant `slug` ([`resolve_contract`]), as `caller` reads it:
/// the tenant is found among those it reads ([`find_for`]), so that one out of its scope and a
/// slug naming none are the same 404 after the same statements, then the action's own check.
pub async fn tenant_contract(
    state: &SupportState,
    caller: &Caller,
    slug: &str,
    now: DateTime<Utc>,
) -> Result<Contract, Problem> {
    let tenant =
        find_for(&state.store, caller, slug, || Problem::not_found(format!("aucun tenant « {slug} »"))).await?;
    resolve_contract(state, &tenant, None, now).await
}

/// The support contract of a tenant. Each field comes from, in order: a
/// contract set at the tenant's organisation, the SLA annex of the active
/// convention covering it, a contract set at its funding collectivité or its
/// académie; else N1 is the tenant's organisation, N2 its académie, and the
/// policy `standard`. N3 is always the tenant's vendor, its processor: an `n3`
/// stored in a contract never sends a tenant's tickets to another éditeur.
///
/// `requester_school` is the school through which a requester reaches a tenant that is not
/// its own (a commune's ENT for its écoles): unless the tenant's organisation set its own N1,
/// that school's N1 answers its users ([`school_n1`]).
pub async fn resolve_contract(
    state: &crate::support::SupportState,
    tenant: &Tenant,
    requester_school: Option<&Org>,
    now: DateTime<Utc>,
) -> Result<Contract, Problem> {
    let store = &state.store;
    let org = get_org(store, &tenant.organisation.id)
        .await?
        .ok_or_else(|| Problem::not_found("organisation du tenant introuvable"))?;
    let academie = academie_of(store, &org).await?;
    let own = contract_row(store, &org.id).await?;
    let mut inherited = Vec::new();
    if org.kind == OrgKind::Etablissement {
        if let Some(c) = funding_collectivite(store, &org).await? {
            inherited.extend(contract_row(store, &c.id).await?);
        }
    }
    if let Some(a) = &academie {
        inherited.extend(contract_row(store, &a.id).await?);
    }
    let (annex_policy, annex_n1, annex_n2) = convention_annex(state, &org.id, now).await?;
    let own_field = |f: fn(&ContractRow) -> &Option<String>| own.as_ref().and_then(|r| f(r).clone());
    let inherited_field = |f: fn(&ContractRow) -> &Option<String>| inherited.iter().find_map(|r| f(r).clone());
    let level =
        async |f: fn(&ContractRow) -> &Option<String>, annex: Option<OrgRef>| -> Result<Option<OrgRef>, Problem> {
            if let Some(id) = own_field(f) {
                return org_ref(store, Some(id)).await;
            }
            if annex.is_some() {
                return Ok(annex);
            }
            org_ref(store, inherited_field(f)).await
        };
    let school = match requester_school.filter(|s| s.id != org.id) {
        Some(school) if own_field(|r| &r.n1).is_none() => school_n1(store, school).await?,
        _ => None,
    };
    let n1 = match school {
        Some(n1) => n1,
        None => level(|r| &r.n1, annex_n1).await?.unwrap_or_else(|| org.as_ref()),
    };
    let n2 = level(|r| &r.n2, annex_n2).await?.or_else(|| academie.map(|a| a.as_ref()));
    let n3 = tenant_vendor(tenant);
    let policy = own_field(|r| &r.policy)
        .or(annex_policy)
        .or_else(|| inherited_field(|r| &r.policy))
        .unwrap_or_else(|| policy::DEFAULT_POLICY.to_string());
    let schools = match requester_school {
        None if own_field(|r| &r.n1).is_none() => schools_n1(store, &org).await?,
        _ => Vec::new(),
    };
    Ok(Contract { n1, n2, n3, policy, schools })
}

/// The N1 that answers the users of `school` on its collectivité's tenant: the école provides
/// N1 to its own users (tripartite, article 4 « Engagements de l'école » ; bipartite : « le
/// support de niveau 1 dans chaque école »). The N1 named by a contract set at the school, else
/// the school itself when one of its active users holds the N1 role there; `None` (the tenant's
/// own N1) when the school has named nobody to take its tickets.
async fn school_n1(store: &Store, school: &Org) -> Result<Option<OrgRef>, Problem> {
    if let Some(n1) = contract_row(store, &school.id).await?.and_then(|r| r.n1) {
        return org_ref(store, Some(n1)).await;
    }
    let staff = users_with_role(&mut *store.conn().await?, &school.id, Role::SupportN1.as_str()).await?;
    Ok((!staff.is_empty()).then(|| school.as_ref()))
}

/// The schools a tenant of `org` serves (those it funds: `funds_condition`) whose own N1
/// answers their users there ([`school_n1`]), by name; none for a school's own tenant.
async fn schools_n1(store: &Store, org: &Org) -> Result<Vec<SchoolN1>, Problem> {
    if org.kind == OrgKind::Etablissement {
        return Ok(Vec::new());
    }
    let mut cond = funds_condition(org);
    cond.push("kind = ?", &[OrgKind::Etablissement.as_str()]);
    cond.push(
        "(EXISTS (SELECT 1 FROM role_bindings b JOIN users u ON u.id = b.user_id \
         WHERE b.org_id = orgs.id AND b.role = ? AND u.active = 1) \
         OR EXISTS (SELECT 1 FROM support_contracts c WHERE c.org_id = orgs.id AND c.n1_org_id IS NOT NULL))",
        &[Role::SupportN1.as_str()],
    );
    let sql = format!("SELECT id FROM orgs WHERE {} ORDER BY sort_name, id", cond.sql());
    let ids: Vec<String> =
        ent_kernel::store::first_column(&cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?)?;
    let mut out = Vec::new();
    for id in ids {
        let Some(school) = get_org(store, &id).await? else { continue };
        if let Some(n1) = school_n1(store, &school).await? {
            out.push(SchoolN1 { school: school.as_ref(), n1 });
        }
    }
    Ok(out)
}

/// Sets the contract fields held at `org` (absent fields inherit). Audited.
pub async fn set_contract(
    state: &crate::support::SupportState,
    actor: &Actor,
    org: &Org,
    input: &ContractInput,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let store = &state.store;
    let mut checks = Checks::default();
    let mut resolve = async |field: &str, key: &Option<String>, kinds: &[OrgKind]| -> Result<Option<String>, Problem> {
        let Some(key) = key.as_deref().filter(|k| !k.trim().is_empty()) else { return Ok(None) };
        match resolve_readable(store, actor, key).await {
            Ok(o) if kinds.contains(&o.kind) => Ok(Some(o.id)),
            Ok(o) => {
                checks.fail(field, format!("{} n'est pas d'un type accepté à ce niveau", o.name));
                Ok(None)
            }
            Err(e) => {
                checks.fail(field, e.detail);
                Ok(None)
            }
        }
    };
    let n1 = resolve("n1", &input.n1, Level::N1.role().org_kinds()).await?;
    let n2 = resolve("n2", &input.n2, Level::N2.role().org_kinds()).await?;
    let n3 = resolve("n3", &input.n3, Level::N3.role().org_kinds()).await?;
    if let Some(p) = &input.policy {
        if !state.support.exists(p) {
            checks.fail("policy", format!("politique de support « {p} » inconnue"));
        }
    }
    checks.finish()?;
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO support_contracts (org_id, n1_org_id, n2_org_id, n3_org_id, policy, version, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7) ON CONFLICT (org_id) DO UPDATE SET n1_org_id = $2, n2_org_id = $3, \
         n3_org_id = $4, policy = $5, version = support_contracts.version + 1, updated_by = $6, updated_at = $7",
    )
    .bind(&org.id)
    .bind(&n1)
    .bind(&n2)
    .bind(&n3)
    .bind(&input.policy)
    .bind(&actor.name)
    .bind(timestamp(now))
    .execute(&mut *tx)
    .await?;
    let target = Target::new("org", &org.id, Some(&org.id));
    let summary = serde_json::json!({ "n1": n1, "n2": n2, "n3": n3, "policy": input.policy });
    audit::record(&mut tx, store.backend(), actor, CONTRACT_SET, &target, summary, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The SQL condition (alias `t`) on the tickets an actor may see; `None` for all.
pub fn visible_condition(actor: &Actor) -> Option<Condition> {
    let support = support_condition(actor)?;
    let Some(user) = &actor.user_id else { return Some(support) };
    let mut own = Condition::default();
    own.push("t.requester_id = ?", &[user]);
    Some(Condition::any(vec![support, own]))
}

/// The SQL condition (alias `t`) on the tickets an actor sees as support, not as their
/// requester: N1 and N2 in scope or designated, N3 what reached it (the tickets
/// [`viewer_given`] answers `Staff` or `Vendor` for); `None` for all (an admin). On the
/// others, the actor gets what [`tickets::Ticket::seen_by`] leaves a requester.
pub fn support_condition(actor: &Actor) -> Option<Condition> {
    let mut parts = staff_parts(actor)?;
    for b in &actor.bindings {
        if let (Role::SupportN3, Some(org)) = (b.role, &b.org) {
            let mut c = Condition::default();
            c.push("t.n3_org_id = ? AND t.reached_n3 = 1", &[&org.id]);
            parts.push(c);
        }
    }
    Some(Condition::any(parts))
}

/// The SQL condition (alias `t`) on the tickets an actor sees as their staff, everything of
/// them ([`Viewer::Staff`]): N1 and N2 in scope or designated; `None` for all (an admin).
pub fn staff_condition(actor: &Actor) -> Option<Condition> {
    staff_parts(actor).map(Condition::any)
}

/// The parts of [`staff_condition`], one per N1 or N2 binding's scope and designation;
/// `None` for an admin.
fn staff_parts(actor: &Actor) -> Option<Vec<Condition>> {
    let mut parts = Vec::new();
    for b in &actor.bindings {
        match (b.role, &b.org) {
            (Role::Admin, _) => return None,
            (Role::SupportN1 | Role::SupportN2, Some(org)) => {
                let mut c = Condition::default();
                c.and_wrapped("t.tenant_org_id IN (SELECT id FROM orgs WHERE ", org_scope_condition(org), ")");
                parts.push(c);
                let mut designated = Condition::default();
                let column = if b.role == Role::SupportN1 { "t.n1_org_id = ?" } else { "t.n2_org_id = ?" };
                designated.push(column, &[&org.id]);
                parts.push(designated);
            }
            _ => {}
        }
    }
    Some(parts)
}

/// The audit target kind of a ticket.
pub const TICKET_KIND: &str = "support_ticket";
/// The audit action of a support contract set at an organisation (recorded about it, kind `org`).
pub const CONTRACT_SET: &str = "support.contracts.set";

/// Who reads the support desk's audit records. A ticket's (its escalations and their reasons,
/// returns, assignments, notes, attachments) by its staff alone ([`staff_condition`]): they
/// name internal facts the vendor (N3) and the requester never read, and an `auditeur` or a DPO,
/// who read no ticket, read none of them. A support contract's by who reads the contracts
/// ([`SUPPORT_CONTRACTS_READ`] in its scope).
#[derive(Debug, Clone, Copy)]
pub enum AuditReaders {
    Tickets,
    Contracts,
}

impl AuditReaders {
    /// Both rules, as the audit capability takes them ([`audit::KindRules`]).
    pub fn all() -> Vec<Arc<dyn audit::KindReaders>> {
        vec![Arc::new(AuditReaders::Tickets), Arc::new(AuditReaders::Contracts)]
    }
}

impl audit::KindReaders for AuditReaders {
    fn kinds(&self) -> &'static [&'static str] {
        match self {
            AuditReaders::Tickets => &[TICKET_KIND],
            AuditReaders::Contracts => &[],
        }
    }

    fn actions(&self) -> &'static [&'static str] {
        match self {
            AuditReaders::Tickets => &[],
            AuditReaders::Contracts => &[CONTRACT_SET],
        }
    }

    fn readable(&self, actor: &Actor) -> Option<Condition> {
        match self {
            AuditReaders::Tickets => {
                let staff = staff_condition(actor)?;
                // Correlated on the ticket's primary key: found by index, never a scan of the tickets.
                let mut cond = Condition::default();
                cond.and_wrapped(
                    "EXISTS (SELECT 1 FROM support_tickets t WHERE t.id = audit_log.target_id AND ",
                    staff,
                    ")",
                );
                Some(cond)
            }
            AuditReaders::Contracts => scope(actor, &SUPPORT_CONTRACTS_READ).condition().map(audit::about_orgs),
        }
    }
}

/// The status as the requester reads it ([`Status::seen_by_requester`]), in SQL on `t`: a
/// ticket escalated while new is `in_progress` to them.
pub const REQUESTER_STATUS_SQL: &str =
    "CASE WHEN t.status = 'new' AND t.level <> 'n1' THEN 'in_progress' ELSE t.status END";

/// The tickets whose status as their requester reads it is `status` ([`REQUESTER_STATUS_SQL`]).
pub fn requester_status_condition(status: Status) -> Condition {
    let mut c = Condition::default();
    c.push(&format!("{REQUESTER_STATUS_SQL} = ?"), &[status.as_str()]);
    c
}

/// The tickets whose status, as `actor` reads each, is `status`: the stored one on those
/// they see as support ([`support_condition`]), the requester's on their own others, so
/// that a filter tells a requester nothing of what [`Ticket::seen_by`] hides from them.
pub fn status_seen_condition(actor: &Actor, status: Status) -> Condition {
    let mut stored = Condition::default();
    stored.push("t.status = ?", &[status.as_str()]);
    let Some(support) = support_condition(actor) else { return stored };
    let mut as_support = support.clone();
    as_support.and(stored);
    let mut as_requester = outside(support);
    as_requester.and(requester_status_condition(status));
    Condition::any(vec![as_support, as_requester])
}

/// The rows `c` does not match, a row it leaves unknown (NULL) among them.
fn outside(c: Condition) -> Condition {
    let mut out = Condition::default();
    out.and_wrapped("(CASE WHEN ", c, " THEN 1 ELSE 0 END) = 0");
    out
}

/// The tickets whose `column` (`t.level`, `l.level`) is one of `levels` (`… = ? OR …`).
pub fn at_levels(column: &str, levels: &[Level]) -> Condition {
    let parts = levels
        .iter()
        .map(|l| {
            let mut c = Condition::default();
            c.push(&format!("{column} = ?"), &[l.as_str()]);
            c
        })
        .collect();
    Condition::any(parts)
}

/// How a viewer sees a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// N1, N2, admin: everything.
    Staff,
    /// N3: public and support entries, requester pseudonymised unless shared.
    Vendor,
    /// The requester: public entries.
    Requester,
}

impl Viewer {
    pub fn sees(self, visibility: &str) -> bool {
        match self {
            Viewer::Staff => true,
            Viewer::Vendor => visibility != "internal",
            Viewer::Requester => visibility == "public",
        }
    }
}

/// The support levels an actor holds on a ticket (every level for an admin).
pub async fn levels_of(store: &Store, actor: &Actor, t: &Ticket) -> Result<Vec<Level>, Problem> {
    if actor.is_admin() {
        return Ok(Level::ALL.to_vec());
    }
    let target =
        get_org(store, &t.organisation.id).await?.ok_or_else(|| Problem::not_found("organisation introuvable"))?;
    let mut levels = Vec::new();
    let mut conn = store.conn().await?;
    for b in &actor.bindings {
        let Some(org) = &b.org else { continue };
        let level = match b.role {
            Role::SupportN1 => Level::N1,
            Role::SupportN2 => Level::N2,
            Role::SupportN3 => {
                if t.reached_n3 && t.n3_org_id.as_deref() == Some(org.id.as_str()) && !levels.contains(&Level::N3) {
                    levels.push(Level::N3);
                }
                continue;
            }
            _ => continue,
        };
        if !levels.contains(&level) && acts_at(&mut conn, designated(t, level), org, &target).await? {
            levels.push(level);
        }
    }
    levels.sort();
    Ok(levels)
}

/// The organisation the ticket's contract designated as its N1 or N2 (`level`): the holders of
/// that level's role there are staff of the ticket, as its mails say.
fn designated(t: &Ticket, level: Level) -> Option<&str> {
    match level {
        Level::N1 => Some(t.n1_org_id.as_str()),
        Level::N2 => t.n2_org_id.as_deref(),
        Level::N3 => None,
    }
}

/// Whether the ticket's contract designated `org_id` as its N1 or N2 (`level`) ([`designated`]).
fn designated_at(t: &Ticket, level: Level, org_id: &str) -> bool {
    designated(t, level) == Some(org_id)
}

/// Whether a binding of an N1 or N2 role at `org` acts at that level on a ticket of the school
/// `target`: it is the organisation the contract designates for the level (`designated`), or
/// the school is in its scope. The one rule of [`levels_of`] (who handles a ticket) and of
/// [`queue_emails`] (who hears of it); [`staff_orgs`] is its SQL for a page of tickets.
async fn acts_at(conn: &mut AnyConnection, designated: Option<&str>, org: &Org, target: &Org) -> Result<bool, Problem> {
    Ok(designated == Some(org.id.as_str()) || in_org_scope_in(conn, org, target).await?)
}

/// Whether one of the actor's N1 or N2 roles is held at the organisation the ticket's
/// contract designated for that level.
fn designated_staff(actor: &Actor, t: &Ticket) -> bool {
    actor.bindings.iter().any(|b| {
        let level = match b.role {
            Role::SupportN1 => Level::N1,
            Role::SupportN2 => Level::N2,
            _ => return false,
        };
        b.org.as_ref().is_some_and(|org| designated_at(t, level, &org.id))
    })
}

/// How `actor` sees the ticket, or `None` when it is not theirs to see.
pub async fn viewer(store: &Store, actor: &Actor, t: &Ticket) -> Result<Option<Viewer>, Problem> {
    let staff = staff_orgs(store, actor, vec![t.organisation.id.clone()]).await?;
    Ok(viewer_given(actor, t, staff.contains(&t.organisation.id)))
}

/// How `actor` sees `t` (`None`: not theirs to see), `staff` saying whether the ticket's
/// organisation is in the scope of one of the actor's N1 or N2 roles ([`staff_orgs`]):
/// N1, N2 (in scope, or at the organisation designated for their level) and admins see everything; N3 what reached N3 on its tenants; the requester
/// their own ticket. No query: a page of tickets is decided by one [`staff_orgs`].
pub fn viewer_given(actor: &Actor, t: &Ticket, staff: bool) -> Option<Viewer> {
    if actor.is_admin() || staff || designated_staff(actor, t) {
        return Some(Viewer::Staff);
    }
    let vendor = actor.bindings.iter().any(|b| {
        b.role == Role::SupportN3
            && b.org.as_ref().is_some_and(|org| t.reached_n3 && t.n3_org_id.as_deref() == Some(org.id.as_str()))
    });
    if vendor {
        return Some(Viewer::Vendor);
    }
    if actor.user_id.as_deref() == Some(t.requester_id.as_str()) {
        return Some(Viewer::Requester);
    }
    None
}

/// The organisations among `org_ids` in the scope of one of the actor's N1 or N2 roles,
/// in one query (per 500 ids); none, without a query, for an actor without such a role
/// or an admin (who sees everything anyway).
pub async fn staff_orgs(store: &Store, actor: &Actor, org_ids: Vec<String>) -> Result<HashSet<String>, Problem> {
    let scopes: Vec<Condition> = actor
        .bindings
        .iter()
        .filter_map(|b| match (b.role, &b.org) {
            (Role::SupportN1 | Role::SupportN2, Some(org)) => Some(org_scope_condition(org)),
            _ => None,
        })
        .collect();
    let mut found = HashSet::new();
    if scopes.is_empty() || actor.is_admin() {
        return Ok(found);
    }
    let scope = Condition::any(scopes);
    for mut cond in Condition::in_chunks("id", org_ids) {
        cond.and(scope.clone());
        let sql = format!("SELECT id FROM orgs WHERE {}", cond.sql());
        let ids: Vec<String> = cond
            .bind(sqlx::query(&sql))
            .try_map(|r| <(String,) as sqlx::FromRow<_>>::from_row(&r).map(|(id,)| id))
            .fetch_all(store.pool())
            .await?;
        found.extend(ids);
    }
    Ok(found)
}

/// E-mails of a level's queue for a ticket of the school `school` whose contract designates
/// `org_id` for that level: the active users holding the level's role at `org_id`; at N1 and N2,
/// when it has none, the others who act on the ticket at that level ([`acts_at`], the rule that
/// lists the ticket for them: a DSDEN's N2 agent for the schools of its département when the
/// académie designated has none, domain review 41, F5); else the organisation's address.
pub async fn queue_emails(
    conn: &mut AnyConnection,
    level: Level,
    org_id: &str,
    school: &Org,
) -> Result<Vec<String>, Problem> {
    let users = match level {
        Level::N3 => users_with_role(conn, org_id, level.role().as_str()).await?,
        _ => acting_users(conn, level, org_id, school).await?,
    };
    if !users.is_empty() {
        return Ok(users);
    }
    Ok(get_org_in(conn, org_id).await?.and_then(|o| o.email).into_iter().collect())
}

/// The active users holding the role of `level` (N1 or N2) who act on a ticket of `school` at
/// that level ([`acts_at`], `designated` the organisation its contract designates): those bound
/// at `designated` when there are any (the school that named its own N1 answers its users, not
/// the commune's), else all of them; each once, in address order.
async fn acting_users(
    conn: &mut AnyConnection,
    level: Level,
    designated: &str,
    school: &Org,
) -> Result<Vec<String>, Problem> {
    let bindings: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.email, b.org_id FROM users u JOIN role_bindings b ON b.user_id = u.id \
         WHERE b.role = $1 AND b.org_id IS NOT NULL AND u.active = 1 ORDER BY u.email",
    )
    .bind(level.role().as_str())
    .fetch_all(&mut *conn)
    .await?;
    let at_designated: Vec<String> =
        bindings.iter().filter(|(_, org)| org == designated).map(|(email, _)| email.clone()).collect();
    if !at_designated.is_empty() {
        return Ok(at_designated);
    }
    let ids: HashSet<String> = bindings.iter().map(|(_, id)| id.clone()).collect();
    let orgs = orgs_by_id_in(conn, ids.into_iter().collect()).await?;
    let mut emails: Vec<String> = Vec::new();
    for (email, org_id) in bindings {
        let Some(org) = orgs.get(&org_id) else { continue };
        if !emails.contains(&email) && acts_at(conn, Some(designated), org, school).await? {
            emails.push(email);
        }
    }
    Ok(emails)
}

/// E-mails of a level's lead: the organisation's functional address, else its queue
/// ([`queue_emails`] for a ticket of `school`).
pub async fn lead_emails(
    conn: &mut AnyConnection,
    level: Level,
    org_id: &str,
    school: &Org,
) -> Result<Vec<String>, Problem> {
    match get_org_in(conn, org_id).await?.and_then(|o| o.email) {
        Some(email) => Ok(vec![email]),
        None => queue_emails(conn, level, org_id, school).await,
    }
}
