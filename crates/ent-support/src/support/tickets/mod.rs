//! Tickets: what a ticket is and how it is read (here), opened (`create`), worked
//! (`handle`: comments, status changes, escalation and return, field updates). Every
//! change (`change`: its frame) appends to `support_events`, re-derives the SLA from
//! that log (`events`: stored due dates, per-level clocks), queues its notices and writes
//! an audit record, all in one transaction.

mod change;
mod create;
mod events;
mod handle;

pub(crate) use change::tell_requester;
pub use create::{create, due_moment, services_of_tenant, NewTicket};
pub(crate) use events::{
    append_event, notify, refresh, requester_email, sla_events, write_sla, NewEvent, SlaEventRow, PUBLIC_MESSAGE,
};
pub use handle::{
    comment, comment_with_files, escalate, return_down, transition, update, EscalateInput, NewComment, ReturnInput,
    TicketPatch, TransitionInput,
};
pub(crate) use handle::{move_level, refuse_public_above_n1};
pub use handle::{writing_level, written_by, Written};

use crate::support::policy::Policies;
use crate::support::sla::{self, SlaState};
use crate::support::SupportState;
use crate::support::{viewer, Level, Priority, Status, Viewer, TICKET_KIND};
use chrono::{DateTime, Utc};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::skip_serializing_none;
use ent_kernel::store::sql::page_size;
use ent_kernel::store::{Backend, Flag, Nullable, Store, Tx};
use ent_kernel::store::{Condition, Page};
use ent_platform::audit::{names_of, Audited};
use ent_platform::identity::{address_in, masked_actor, Actor};
use ent_platform::registry::OrgRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, FromRow};
use std::collections::HashMap;

/// What every ticket operation needs.
pub struct Ctx<'a> {
    pub state: &'a SupportState,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn store(&self) -> &Store {
        &self.state.store
    }
}

// A ticket: its row with what it names (its tenant's slug, its organisation, its
// requester's and assignee's names), read in one statement with `COLUMNS`, and its API
// representation. The fields marked `serde(skip)` are the facts the rules read (who
// asked, who holds which level) and never leave the server; `Ticket::seen_by` hides
// the rest from whom may not see it: every ticket a caller receives went through it.
// (Plain comments: a doc comment here would become the OpenAPI schema's description.)
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct Ticket {
    // Read as `ticket_id`: `id` is its organisation's (the columns of `OrgRef`).
    #[sqlx(rename = "ticket_id")]
    pub id: String,
    pub reference: String,
    pub tenant: String,
    #[serde(skip)]
    pub tenant_id: String,
    #[sqlx(flatten)]
    pub organisation: OrgRef,
    #[sqlx(flatten)]
    pub requester: Requester,
    #[serde(skip)]
    pub requester_id: String,
    /// N2 showed the requester's identity to the vendor.
    #[serde(skip)]
    #[sqlx(try_from = "Flag")]
    pub requester_shared: bool,
    pub subject: String,
    pub description: String,
    pub category: String,
    pub service: Option<String>,
    pub impact: String,
    pub urgency: String,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    pub policy: String,
    // The level holding the ticket: the rules read it; `shown_level` is what a viewer gets of it.
    #[serde(skip)]
    #[sqlx(try_from = "String")]
    pub level: Level,
    /// The level holding the ticket; not shown to the requester, whom the N1 answers whichever
    /// level works on it.
    #[serde(rename = "level")]
    #[sqlx(skip)]
    pub shown_level: Option<Level>,
    #[serde(skip)]
    #[sqlx(try_from = "Flag")]
    pub reached_n3: bool,
    #[serde(skip)]
    pub n1_org_id: String,
    #[serde(skip)]
    pub n2_org_id: Option<String>,
    #[serde(skip)]
    pub n3_org_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub assigned_team: Option<String>,
    pub assignee: Option<String>,
    #[serde(skip)]
    pub assignee_id: Option<String>,
    /// Due date of the requester's first response, whichever level gives it (absent once they
    /// were answered, or while paused); each level's own first response is in `sla`.
    pub first_response_due: Option<String>,
    /// Due date of the resolution at the level holding the ticket (not shown to the requester).
    pub resolution_due: Option<String>,
    /// SLA breaches flagged so far (not shown to the requester).
    pub breaches: Option<i64>,
    /// `convention_expiree` or `sans_convention` when no active convention covered the tenant at creation.
    pub convention_flag: Option<String>,
    /// Per-level clocks derived from the event log (single-ticket reads only).
    #[sqlx(skip)]
    pub sla: Option<SlaState>,
    /// In the answer to its creation only: what the requester should know of how it will be
    /// handled, in French (the ENT not running: not yet open, suspended, withdrawn or archived;
    /// no support designated for it); the same words are its history's public « Avertissement ».
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    // What the requester reads as `version` (their `ETag`) and `updated_at`: moved only when
    // what they see changes (`change::finish`).
    #[serde(skip)]
    pub seen_version: i64,
    // The number of the ticket's last history entry.
    #[serde(skip)]
    pub last_seq: i64,
    #[serde(skip)]
    pub seen_at: String,
}

/// The columns of a [`Ticket`] (alias `t` on `support_tickets`). What it names is read
/// by scalar sub-selects on primary keys, so that `FROM support_tickets t` stays the
/// whole `FROM` (PostgreSQL's `FOR UPDATE` then locks the ticket's row only). A user
/// that no longer exists is named « utilisateur supprimé ».
pub(crate) const COLUMNS: &str = "t.id AS ticket_id, t.reference, \
    (SELECT te.slug FROM tenants te WHERE te.id = t.tenant_id) AS tenant, t.tenant_id, \
    t.tenant_org_id AS id, (SELECT o.kind FROM orgs o WHERE o.id = t.tenant_org_id) AS kind, \
    (SELECT o.code FROM orgs o WHERE o.id = t.tenant_org_id) AS code, \
    (SELECT o.name FROM orgs o WHERE o.id = t.tenant_org_id) AS name, \
    COALESCE((SELECT u.display_name FROM users u WHERE u.id = t.requester_id), 'utilisateur supprimé') \
    AS requester_name, t.requester_role, (SELECT u.email FROM users u WHERE u.id = t.requester_id) AS requester_email, \
    t.requester_id, t.requester_shared, t.subject, t.description, t.category, t.service, t.impact, t.urgency, \
    t.priority, t.policy, t.level, t.reached_n3, t.n1_org_id, t.n2_org_id, t.n3_org_id, t.status, t.assigned_team, \
    CASE WHEN t.assignee_id IS NULL THEN NULL \
    ELSE COALESCE((SELECT u.display_name FROM users u WHERE u.id = t.assignee_id), 'utilisateur supprimé') END \
    AS assignee, t.assignee_id, t.first_response_due, t.resolution_due, t.breaches, t.convention_flag, \
    t.resolved_at, t.closed_at, t.version, t.created_at, t.updated_at, t.seen_version, t.last_seq, \
    COALESCE(t.seen_at, t.created_at) AS seen_at";

pub async fn load(conn: &mut AnyConnection, id_or_reference: &str) -> Result<Option<Ticket>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM support_tickets t WHERE t.id = $1 OR t.reference = $2");
    Ok(sqlx::query_as(&sql).bind(id_or_reference).bind(id_or_reference).fetch_optional(conn).await?)
}

/// [`load`] locking the row until the end of the transaction.
pub(crate) async fn load_for_update(tx: &mut Tx, backend: Backend, id: &str) -> Result<Option<Ticket>, Problem> {
    let lock = backend.for_update();
    let sql = format!("SELECT {COLUMNS} FROM support_tickets t WHERE t.id = $1 OR t.reference = $2{lock}");
    Ok(sqlx::query_as(&sql).bind(id).bind(id).fetch_optional(&mut **tx).await?)
}

/// The requester as a viewer may see them.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct Requester {
    #[sqlx(rename = "requester_name")]
    pub name: String,
    #[sqlx(rename = "requester_role")]
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(rename = "requester_email")]
    pub email: Option<String>,
    /// True when the name is a pseudonym (N3 without the requester's identity shared).
    #[sqlx(skip)]
    pub pseudonymous: bool,
}

impl Ticket {
    /// The version `viewer` reads (their `ETag`): the requester's own (see [`Ticket::seen_by`]).
    pub fn version_seen_by(&self, viewer: Viewer) -> i64 {
        if viewer == Viewer::Requester {
            self.seen_version
        } else {
            self.version
        }
    }

    /// The ticket as `viewer` may see it: the vendor gets a pseudonym for the requester
    /// unless N2 shared the identity; only the staff get the convention flag. The requester,
    /// whom the N1 answers whichever level works on the ticket, sees nothing of how the support
    /// routes it: neither the level, the team, the assignee, the breaches, the SLA clocks nor
    /// the holding level's resolution due date; a ticket new at N2 or N3 (escalated) is
    /// `in_progress` to them, taken in charge; its `version` and `updated_at` are theirs, moved
    /// only when what they see changes.
    pub fn seen_by(mut self, viewer: Viewer) -> Ticket {
        if hides_requester(viewer, &self) {
            let role = std::mem::take(&mut self.requester.role);
            self.requester = Requester { name: pseudonym(&self), role, email: None, pseudonymous: true };
        }
        self.shown_level = Some(self.level);
        if viewer == Viewer::Requester {
            self.shown_level = None;
            self.status = self.status.seen_by_requester(self.level);
            self.assigned_team = None;
            self.assignee = None;
            self.breaches = None;
            self.sla = None;
            self.resolution_due = None;
            self.version = self.seen_version;
            self.updated_at = self.seen_at.clone();
        }
        if viewer != Viewer::Staff {
            self.convention_flag = None;
        }
        self
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct HistoryEntry {
    /// Position in the history as the caller sees it: 1, 2, 3… over the entries they see,
    /// so that it says nothing of the entries hidden from them.
    pub seq: i64,
    pub at: String,
    pub actor: String,
    /// The acting user, to pseudonymise the requester's entries for the vendor.
    #[serde(skip)]
    actor_user_id: Option<String>,
    #[sqlx(try_from = "Nullable<Level>")]
    pub actor_level: Option<Level>,
    /// `created`, `status`, `comment`, `escalated`, `returned`, `updated`, `breach`, `warning`.
    pub kind: String,
    #[sqlx(rename = "from_value")]
    pub from: Option<String>,
    #[sqlx(rename = "to_value")]
    pub to: Option<String>,
    /// `public` (the requester sees it), `support` (N1, N2, N3) or `internal` (N1, N2).
    pub visibility: String,
    pub body: Option<String>,
    /// What the entry is, in French (« Message du demandeur », « Réponse du support », « Note
    /// interne »…): as the console and `entctl support show` title it.
    #[sqlx(skip)]
    pub title: String,
}

impl HistoryEntry {
    /// The entry's title ([`HistoryEntry::title`]): a comment by no support level is the
    /// requester's message (`Written::ToSupport`), a public one by a level the support's reply.
    pub fn titled(&self) -> String {
        let status = |v: &Option<String>| {
            v.as_deref()
                .and_then(Status::parse)
                .map_or_else(|| v.clone().unwrap_or_default(), |s| s.label().to_string())
        };
        let level = |v: &Option<String>| v.as_deref().and_then(Level::parse).map_or("", |l| l.label()).to_string();
        match (self.kind.as_str(), self.visibility.as_str()) {
            ("created", _) => "Ticket ouvert".into(),
            ("comment", "internal") => "Note interne".into(),
            ("comment", "support") => "Note du support".into(),
            ("comment", _) if self.actor_level.is_none() => "Message du demandeur".into(),
            ("comment", _) => "Réponse du support".into(),
            ("status", _) => format!("Statut : {} → {}", status(&self.from), status(&self.to)),
            ("escalated", _) => format!("Escaladé de {} à {}", level(&self.from), level(&self.to)),
            ("returned", _) => format!("Renvoyé de {} à {}", level(&self.from), level(&self.to)),
            ("updated", _) => "Ticket mis à jour".into(),
            ("priority", _) => {
                format!("Priorité {} → {}", self.from.as_deref().unwrap_or(""), self.to.as_deref().unwrap_or(""))
            }
            ("breach", _) => "Délai dépassé".into(),
            ("warning", _) => "Avertissement".into(),
            (kind, _) => kind.into(),
        }
    }
}

pub(crate) fn pseudonym(t: &Ticket) -> String {
    let hash = hex::encode(Sha256::digest(format!("{}:{}", t.id, t.requester_id).as_bytes()));
    format!("Demandeur {}", &hash[..8])
}

pub(crate) fn hides_requester(viewer: Viewer, t: &Ticket) -> bool {
    viewer == Viewer::Vendor && !t.requester_shared
}

// --- reading ------------------------------------------------------------------

/// The ticket and how the actor sees it; 404 when the actor may not see it. The actor's
/// visibility decides in the statement that finds it ([`load_seen`]): a ticket out of sight
/// costs what an unknown key costs (same statement, no row), so the 404's timing tells nothing
/// of what exists (attack review 42); only a ticket seen is then placed ([`viewer`]).
pub async fn find(store: &Store, actor: &Actor, id: &str) -> Result<(Ticket, Viewer), Problem> {
    let not_found = || Problem::not_found(format!("aucun ticket « {id} »"));
    let t = load_seen(store, actor, id).await?.ok_or_else(not_found)?;
    let v = viewer(store, actor, &t).await?.ok_or_else(not_found)?;
    Ok((t, v))
}

/// The ticket of id or reference `id_or_reference` among those `actor` sees
/// ([`super::visible_condition`], the rule of [`viewer`] in SQL), in one statement.
async fn load_seen(store: &Store, actor: &Actor, id_or_reference: &str) -> Result<Option<Ticket>, Problem> {
    let mut cond = Condition::default();
    cond.push("(t.id = ? OR t.reference = ?)", &[id_or_reference, id_or_reference]);
    if let Some(seen) = super::visible_condition(actor) {
        cond.and(seen);
    }
    let sql = format!("SELECT {COLUMNS} FROM support_tickets t WHERE {}", cond.sql());
    Ok(cond.bind(sqlx::query(&sql)).try_map(|r| Ticket::from_row(&r)).fetch_optional(store.pool()).await?)
}

/// The SLA of a ticket as of `now`, derived from its events.
pub async fn sla_now(store: &Store, policies: &Policies, t: &Ticket, now: DateTime<Utc>) -> Result<SlaState, Problem> {
    let mut conn = store.pool().acquire().await?;
    let events = sla_events(&mut conn, &t.id).await?;
    let place = super::place_of(&mut conn, &t.organisation.id).await?;
    Ok(sla::derive(policies, &t.policy, &place, t.priority, &events, now))
}

pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Ticket, Problem> {
    let (t, v) = find(ctx.store(), ctx.actor, id).await?;
    let sla = sla_now(ctx.store(), &ctx.state.support, &t, ctx.now).await?;
    Ok(Ticket { sla: Some(sla), ..t }.seen_by(v))
}

/// Filters of `GET /support/tickets`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketFilter {
    #[schemars(extend("enum" = ["new", "in_progress", "waiting_requester", "resolved", "closed"]))]
    pub status: Option<String>,
    #[schemars(extend("enum" = ["n1", "n2", "n3"]))]
    pub level: Option<String>,
    /// Tenant slug.
    pub tenant: Option<String>,
    #[schemars(extend("enum" = ["P1", "P2", "P3", "P4"]))]
    pub priority: Option<String>,
    /// Only tickets with a flagged breach.
    pub breached: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

fn filter_condition(actor: &Actor, f: &TicketFilter) -> Result<Condition, Problem> {
    let mut c = Condition::default();
    let mut checks = Checks::default();
    if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
        match Status::parse(s) {
            // As each ticket reads to the actor: a requester's escalated new ticket is `in_progress`.
            Some(s) => c.and(crate::support::status_seen_condition(actor, s)),
            None => checks.fail(
                "status",
                format!("statut « {s} » inconnu (new, in_progress, waiting_requester, resolved, closed)"),
            ),
        }
    }
    if let Some(l) = f.level.as_deref().filter(|s| !s.is_empty()) {
        match Level::parse(l) {
            Some(l) => c.push("t.level = ?", &[l.as_str()]),
            None => checks.fail("level", format!("niveau « {l} » inconnu (n1, n2, n3)")),
        }
    }
    if let Some(p) = f.priority.as_deref().filter(|s| !s.is_empty()) {
        match Priority::parse(p) {
            Some(p) => c.push("t.priority = ?", &[p.as_str()]),
            None => checks.fail("priority", format!("priorité « {p} » inconnue (P1 à P4)")),
        }
    }
    if let Some(slug) = f.tenant.as_deref().filter(|s| !s.is_empty()) {
        c.push("t.tenant_id IN (SELECT id FROM tenants WHERE slug = ?)", &[slug]);
    }
    if f.breached == Some(true) {
        c.push_int("t.breaches > ?", 0);
    }
    // The level and the breaches are the support's (`Ticket::seen_by`): filtering on them
    // keeps to the tickets the actor sees as support, not telling a requester of their own.
    let by_level = f.level.as_deref().is_some_and(|l| !l.is_empty());
    if by_level || f.breached == Some(true) {
        if let Some(support) = crate::support::support_condition(actor) {
            c.and(support);
        }
    }
    if let Some(cursor) = f.cursor.as_deref().filter(|s| !s.is_empty()) {
        c.push("t.id < ?", &[cursor]);
    }
    checks.finish()?;
    Ok(c)
}

/// The tickets the actor may see, newest first, as the actor may see each: a statement
/// for the page and one for which of its organisations the actor's N1 or N2 roles cover,
/// whatever the page's size.
pub async fn list(ctx: &Ctx<'_>, filter: &TicketFilter) -> Result<Page<Ticket>, Problem> {
    let size = page_size(filter.limit)?;
    let mut cond = filter_condition(ctx.actor, filter)?;
    if let Some(scope) = super::visible_condition(ctx.actor) {
        cond.and(scope);
    }
    let sql =
        format!("SELECT {COLUMNS} FROM support_tickets t WHERE {} ORDER BY t.id DESC LIMIT {}", cond.sql(), size + 1);
    let rows: Vec<Ticket> =
        cond.bind(sqlx::query(&sql)).try_map(|r| Ticket::from_row(&r)).fetch_all(ctx.store().pool()).await?;
    let orgs = rows.iter().map(|t| t.organisation.id.clone()).collect();
    let staff = super::staff_orgs(ctx.store(), ctx.actor, orgs).await?;
    let items = rows
        .into_iter()
        .map(|t| {
            let v = super::viewer_given(ctx.actor, &t, staff.contains(&t.organisation.id));
            t.seen_by(v.unwrap_or(Viewer::Requester))
        })
        .collect();
    Ok(Page::from_overfetch(items, size, |t| t.id.clone()))
}

pub async fn history(ctx: &Ctx<'_>, id: &str) -> Result<Vec<HistoryEntry>, Problem> {
    let (t, v) = find(ctx.store(), ctx.actor, id).await?;
    let entries: Vec<HistoryEntry> = sqlx::query_as(
        "SELECT seq, at, actor, actor_user_id, actor_level, kind, from_value, to_value, visibility, body \
         FROM support_events WHERE ticket_id = $1 ORDER BY seq",
    )
    .bind(&t.id)
    .fetch_all(ctx.store().pool())
    .await?;
    let hide = hides_requester(v, &t);
    let names = match v {
        Viewer::Requester => Some(
            names_of(ctx.store(), entries.iter().filter_map(|e| address_in(&e.actor)).map(str::to_string).collect())
                .await?,
        ),
        _ => None,
    };
    Ok(entries
        .into_iter()
        .filter(|e| v.sees(&e.visibility))
        .zip(1..)
        .map(|(mut e, seq)| {
            e.seq = seq;
            e.title = e.titled();
            if hide && e.actor_user_id.as_deref() == Some(t.requester_id.as_str()) {
                e.actor = pseudonym(&t);
            }
            if let Some(names) = &names {
                e.actor = named_for_requester(&e.actor, names);
            }
            e
        })
        .collect())
}

/// An entry's actor as the requester reads it: a person by their name in the directory, never
/// by address (a support agent's mailbox is not theirs to know); one whose name is an address,
/// masked; a job as it is.
fn named_for_requester(actor: &str, names: &HashMap<String, String>) -> String {
    match address_in(actor) {
        Some(address) => names.get(address).cloned().unwrap_or_else(|| masked_actor(actor)),
        None => actor.to_string(),
    }
}

impl Audited for Ticket {
    fn target_kind(&self) -> &'static str {
        TICKET_KIND
    }
    fn target_id(&self) -> &str {
        &self.id
    }
    fn scope_org_id(&self) -> Option<&str> {
        Some(&self.organisation.id)
    }
}
