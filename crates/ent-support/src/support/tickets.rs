//! Tickets: creation, comments, status changes, escalation and return, field
//! updates. Every change appends to `support_events`, re-derives the SLA from
//! that log (stored due dates, per-level clocks), queues its notices and writes
//! an audit record, all in one transaction.

use super::policy::{Policies, GRADES};
use super::sla::{self, SlaEvent, SlaState, Step};
use super::{levels_of, parse_time, queue_emails, viewer, Category, Level, Priority, Status, Viewer};
use crate::support::SupportState;
use chrono::{DateTime, Datelike, Utc};
use ent_kernel::error::{conflict_unless, Checks, Problem};
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::expect_same_version;
use ent_kernel::store::{new_id, timestamp, Backend, Flag, Nullable, Store, Tx, UnknownValue};
use ent_kernel::store::{Condition, Page};
use ent_ops::notify::Notice;
use ent_platform::audit::{self, Audited};
use ent_platform::identity::authz::{self, forbidden};
use ent_platform::identity::Actor;
use ent_platform::registry::queries::get_org;
use ent_platform::registry::OrgRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, FromRow};

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
#[ent_kernel::skip_serializing_none]
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
    #[sqlx(try_from = "String")]
    pub level: Level,
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
    /// Due date of the first response at the current level (absent once given or while paused).
    pub first_response_due: Option<String>,
    pub resolution_due: Option<String>,
    /// SLA breaches flagged so far.
    pub breaches: i64,
    /// `convention_expiree` or `sans_convention` when no active convention covered the tenant at creation.
    pub convention_flag: Option<String>,
    /// Per-level clocks derived from the event log (single-ticket reads only).
    #[sqlx(skip)]
    pub sla: Option<SlaState>,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
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
    t.resolved_at, t.closed_at, t.version, t.created_at, t.updated_at";

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
    /// The ticket as `viewer` may see it: the vendor gets a pseudonym for the requester
    /// unless N2 shared the identity; the requester gets neither the team, the assignee,
    /// the breaches nor the SLA clocks; only the staff get the convention flag.
    pub fn seen_by(mut self, viewer: Viewer) -> Ticket {
        if hides_requester(viewer, &self) {
            let role = std::mem::take(&mut self.requester.role);
            self.requester = Requester { name: pseudonym(&self), role, email: None, pseudonymous: true };
        }
        if viewer == Viewer::Requester {
            self.assigned_team = None;
            self.assignee = None;
            self.breaches = 0;
            self.sla = None;
        }
        if viewer != Viewer::Staff {
            self.convention_flag = None;
        }
        self
    }
}

#[ent_kernel::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct HistoryEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    /// The acting user, to pseudonymise the requester's entries for the vendor.
    #[serde(skip)]
    actor_user_id: Option<String>,
    #[sqlx(try_from = "Nullable<Level>")]
    pub actor_level: Option<Level>,
    /// `created`, `status`, `comment`, `escalated`, `returned`, `updated`, `breach`.
    pub kind: String,
    #[sqlx(rename = "from_value")]
    pub from: Option<String>,
    #[sqlx(rename = "to_value")]
    pub to: Option<String>,
    /// `public` (the requester sees it), `support` (N1, N2, N3) or `internal` (N1, N2).
    pub visibility: String,
    pub body: Option<String>,
}

pub(crate) fn pseudonym(t: &Ticket) -> String {
    let hash = hex::encode(Sha256::digest(format!("{}:{}", t.id, t.requester_id).as_bytes()));
    format!("Demandeur {}", &hash[..8])
}

pub(crate) fn hides_requester(viewer: Viewer, t: &Ticket) -> bool {
    viewer == Viewer::Vendor && !t.requester_shared
}

// --- reading ------------------------------------------------------------------

/// The ticket and how the actor sees it; 404 when the actor may not see it.
pub async fn find(store: &Store, actor: &Actor, id: &str) -> Result<(Ticket, Viewer), Problem> {
    let not_found = || Problem::not_found(format!("aucun ticket « {id} »"));
    let mut conn = store.pool().acquire().await?;
    let t = load(&mut conn, id).await?.ok_or_else(not_found)?;
    drop(conn);
    let v = viewer(store, actor, &t).await?.ok_or_else(not_found)?;
    Ok((t, v))
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

fn filter_condition(f: &TicketFilter) -> Result<Condition, Problem> {
    let mut c = Condition::default();
    let mut checks = Checks::default();
    if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
        match Status::parse(s) {
            Some(s) => c.push("t.status = ?", &[s.as_str()]),
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
    let size = ent_kernel::store::sql::page_size(filter.limit)?;
    let mut cond = filter_condition(filter)?;
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
    Ok(entries
        .into_iter()
        .filter(|e| v.sees(&e.visibility))
        .map(|mut e| {
            if hide && e.actor_user_id.as_deref() == Some(t.requester_id.as_str()) {
                e.actor = pseudonym(&t);
            }
            e
        })
        .collect())
}

// --- the event log and the SLA ------------------------------------------------

pub(crate) async fn sla_events(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<SlaEvent>, Problem> {
    let rows: Vec<SlaEventRow> = sqlx::query_as(
        "SELECT at, kind, to_value, visibility, actor_level FROM support_events WHERE ticket_id = $1 ORDER BY seq",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(SlaEventRow::event).collect()
}

/// What the SLA reads of an event row.
#[derive(sqlx::FromRow)]
pub(crate) struct SlaEventRow {
    at: String,
    kind: String,
    to_value: Option<String>,
    visibility: String,
    #[sqlx(try_from = "Nullable<Level>")]
    actor_level: Option<Level>,
}

impl SlaEventRow {
    /// The SLA event; a time or a status/level value the code does not know is an error.
    pub(crate) fn event(self) -> Result<SlaEvent, Problem> {
        let at = parse_time(&self.at).ok_or(UnknownValue { what: "horodatage", value: self.at.clone() })?;
        let to = self.to_value.unwrap_or_default();
        let step = match self.kind.as_str() {
            "created" => Step::Created,
            "status" => Step::Status(Status::try_from(to)?),
            "escalated" => Step::Escalated(Level::try_from(to)?),
            "returned" => Step::Returned(Level::try_from(to)?),
            "comment" => Step::Comment { public: self.visibility == "public" },
            _ => Step::Other,
        };
        Ok(SlaEvent { at, step, actor_level: self.actor_level })
    }
}

/// An entry to append to a ticket's log.
pub(crate) struct NewEvent<'a> {
    pub kind: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub visibility: &'a str,
    pub body: Option<&'a str>,
    pub actor_level: Option<Level>,
}

impl<'a> NewEvent<'a> {
    /// An entry of `kind` that `visibility` sees, by no support level, with nothing more.
    pub(crate) fn new(kind: &'a str, visibility: &'a str) -> Self {
        NewEvent { kind, from: None, to: None, visibility, body: None, actor_level: None }
    }

    /// What moved (status, level) from `from` to `to`.
    pub(crate) fn moved(self, from: &'a str, to: &'a str) -> Self {
        NewEvent { from: Some(from), to: Some(to), ..self }
    }

    pub(crate) fn body(self, body: &'a str) -> Self {
        NewEvent { body: Some(body), ..self }
    }

    /// The support level the actor acted as.
    pub(crate) fn by(self, level: Level) -> Self {
        NewEvent { actor_level: Some(level), ..self }
    }
}

pub(crate) async fn append_event(
    tx: &mut Tx,
    ticket_id: &str,
    actor: &Actor,
    e: NewEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    // The ticket row is the lock: concurrent appends queue here and each gets the next number.
    let seq: i64 =
        sqlx::query_scalar("UPDATE support_tickets SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
            .bind(ticket_id)
            .fetch_one(&mut **tx)
            .await?;
    sqlx::query(
        "INSERT INTO support_events (id, ticket_id, seq, at, actor, actor_user_id, actor_level, kind, from_value, \
         to_value, visibility, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(new_id())
    .bind(ticket_id)
    .bind(seq)
    .bind(timestamp(now))
    .bind(&actor.name)
    .bind(&actor.user_id)
    .bind(e.actor_level.map(|l| l.as_str()))
    .bind(e.kind)
    .bind(e.from)
    .bind(e.to)
    .bind(e.visibility)
    .bind(e.body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Re-derives the SLA from the log and stores the due dates and per-level clocks.
pub(crate) async fn refresh(
    tx: &mut Tx,
    policies: &Policies,
    t: &Ticket,
    now: DateTime<Utc>,
) -> Result<SlaState, Problem> {
    let (policy, priority): (String, String) =
        sqlx::query_as("SELECT policy, priority FROM support_tickets WHERE id = $1")
            .bind(&t.id)
            .fetch_one(&mut **tx)
            .await?;
    let priority = Priority::try_from(priority)?;
    let events = sla_events(tx, &t.id).await?;
    let place = super::place_of(tx, &t.organisation.id).await?;
    let state = sla::derive(policies, &policy, &place, priority, &events, now);
    store_sla(tx, t, &state).await?;
    Ok(state)
}

/// Stores what `state` says of the ticket: current due dates, the next unflagged
/// due date (what the sweep waits for) and each level's clock.
pub(crate) async fn store_sla(tx: &mut Tx, t: &Ticket, state: &SlaState) -> Result<(), Problem> {
    let flagged: Vec<(String, String)> =
        sqlx::query_as("SELECT level, kind FROM support_breaches WHERE ticket_id = $1")
            .bind(&t.id)
            .fetch_all(&mut **tx)
            .await?;
    write_sla(tx, t, state, &flagged).await
}

/// [`store_sla`] knowing the flagged breaches, as (level, kind).
pub(crate) async fn write_sla(
    tx: &mut Tx,
    t: &Ticket,
    state: &SlaState,
    flagged: &[(String, String)],
) -> Result<(), Problem> {
    let is_flagged = |l: Level, k: sla::BreachKind| flagged.iter().any(|(fl, fk)| fl == l.as_str() && fk == k.as_str());
    let current = state.clock(state.level);
    sqlx::query(
        "UPDATE support_tickets SET first_response_due = $1, resolution_due = $2, next_due = $3, breaches = $4 \
         WHERE id = $5",
    )
    .bind(current.and_then(|c| c.first_response_due).map(timestamp))
    .bind(current.and_then(|c| c.resolution_due).map(timestamp))
    .bind(state.next_due(is_flagged).map(timestamp))
    .bind(flagged.len() as i64)
    .bind(&t.id)
    .execute(&mut **tx)
    .await?;
    for c in &state.levels {
        let breached = flagged.iter().any(|(l, _)| l == c.level.as_str());
        sqlx::query(
            "INSERT INTO support_ticket_levels (ticket_id, level, tenant_id, held_seconds, first_response_seconds, \
             resolution_seconds, breached) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ticket_id, level) DO UPDATE \
             SET held_seconds = $4, first_response_seconds = $5, resolution_seconds = $6, breached = $7",
        )
        .bind(&t.id)
        .bind(c.level.as_str())
        .bind(&t.tenant_id)
        .bind(c.held_seconds)
        .bind(c.first_response_seconds)
        .bind(c.resolution_seconds)
        .bind(i64::from(breached))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Queues the `support` mail for `event` to `recipients` (deduplicated), at `send_at`.
pub(crate) async fn notify(
    tx: &mut Tx,
    recipients: Vec<String>,
    t: &Ticket,
    event: &str,
    extra: Value,
    now: DateTime<Utc>,
    send_at: DateTime<Utc>,
) -> Result<(), Problem> {
    let subject = json!({
        "reference": t.reference,
        "subject": t.subject,
        "priority": t.priority.as_str(),
        "level": t.level.label(),
    });
    Notice::event("support", recipients, event)
        .with(subject)
        .with(extra)
        .page(format!("/tickets/{}", t.reference))
        .not_before(send_at)
        .enqueue(tx, now)
        .await?;
    Ok(())
}

/// The requester's address (read with the ticket), if the user still exists.
pub(crate) fn requester_email(t: &Ticket) -> Vec<String> {
    t.requester.email.clone().into_iter().collect()
}

impl Audited for Ticket {
    fn target_kind(&self) -> &'static str {
        "support_ticket"
    }
    fn target_id(&self) -> &str {
        &self.id
    }
    fn scope_org_id(&self) -> Option<&str> {
        Some(&self.organisation.id)
    }
}

/// Opens the write transaction of a change to `id` and checks `If-Match`.
/// The ticket row is locked until commit (PostgreSQL `FOR UPDATE`; SQLite's
/// `BEGIN IMMEDIATE` already serialises writers), so every decision is made on its
/// current state.
async fn begin(ctx: &Ctx<'_>, id: &str, expected: Option<i64>) -> Result<(Tx, Ticket), Problem> {
    let mut tx = ctx.store().begin_write().await?;
    let t = load_for_update(&mut tx, ctx.store().backend(), id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("aucun ticket « {id} »")))?;
    if let Some(expected) = expected {
        expect_same_version(expected, t.version)?;
    }
    Ok((tx, t))
}

async fn bump(
    tx: &mut Tx,
    t: &Ticket,
    sets: &str,
    values: &[Option<String>],
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let n = values.len();
    let sql = format!(
        "UPDATE support_tickets SET {sets}{}version = version + 1, updated_at = ${} WHERE id = ${}",
        if sets.is_empty() { "" } else { ", " },
        n + 1,
        n + 2
    );
    let mut q = sqlx::query(&sql);
    for v in values {
        q = q.bind(v.clone());
    }
    q.bind(timestamp(now)).bind(&t.id).execute(&mut **tx).await?;
    Ok(())
}

/// The level the actor acts as on `t`: the one holding it (403 otherwise).
async fn acting_level(ctx: &Ctx<'_>, t: &Ticket) -> Result<Level, Problem> {
    let levels = levels_of(ctx.store(), ctx.actor, t).await?;
    if levels.contains(&t.level) {
        return Ok(t.level);
    }
    if levels.is_empty() && viewer(ctx.store(), ctx.actor, t).await?.is_none() {
        return Err(Problem::not_found(format!("aucun ticket « {} »", t.reference)));
    }
    Err(forbidden(format!(
        "le ticket {} est au niveau {} : seul ce niveau peut le traiter",
        t.reference,
        t.level.label()
    )))
}

/// The tail of every change: audited as `action`, committed, read back as the caller sees it.
async fn finish(ctx: &Ctx<'_>, mut tx: Tx, t: &Ticket, action: &str, summary: Value) -> Result<Ticket, Problem> {
    audit::record(&mut tx, ctx.store().backend(), ctx.actor, action, t, summary, ctx.now).await?;
    tx.commit().await?;
    get(ctx, &t.id).await
}

/// The ticket `id` locked for a level change (`If-Match` checked), with the level
/// the actor acts as: the one holding it.
async fn begin_at_level(ctx: &Ctx<'_>, id: &str, expected: i64) -> Result<(Tx, Ticket, Level), Problem> {
    let (t, _) = find(ctx.store(), ctx.actor, id).await?;
    let level = acting_level(ctx, &t).await?;
    let (tx, t) = begin(ctx, &t.id, Some(expected)).await?;
    Ok((tx, t, level))
}

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

fn check_grade(checks: &mut Checks, field: &str, value: &str) {
    if !GRADES.contains(&value) {
        checks.fail(field, format!("« {value} » inconnu : haute, moyenne ou basse"));
    }
}

fn check_category(checks: &mut Checks, state: &SupportState, category: &str, service: Option<&str>) {
    match Category::parse(category) {
        None => {
            checks.fail("category", format!("catégorie « {category} » inconnue : acces, service, donnees ou autre"))
        }
        Some(Category::Service) => match service {
            None => checks.fail("service", "le service concerné est obligatoire pour la catégorie service"),
            Some(code) if state.catalog.service(code).is_none() => {
                checks.fail("service", format!("service « {code} » absent du catalogue"))
            }
            Some(_) => {}
        },
        Some(_) if service.is_some() => checks.fail("service", "réservé à la catégorie service"),
        Some(_) => {}
    }
}

fn parse_priority(checks: &mut Checks, value: Option<&str>) -> Option<Priority> {
    let v = value?;
    let p = Priority::parse(v);
    if p.is_none() {
        checks.fail("priority", format!("priorité « {v} » inconnue : P1, P2, P3 ou P4"));
    }
    p
}

/// `convention_expiree` / `sans_convention` when no active convention covers the tenant today.
async fn convention_flag(ctx: &Ctx<'_>, tenant: &ent_tenants::tenants::Tenant) -> Result<Option<String>, Problem> {
    let today = ent_kernel::clock::today_in_france(ctx.now).to_string();
    let active =
        ent_conventions::conventions::active_covering(ctx.store(), &ctx.state.models, &tenant.organisation.id, &today)
            .await?;
    Ok(match (active, &tenant.convention_id) {
        (Some(_), _) => None,
        (None, Some(_)) => Some("convention_expiree".into()),
        (None, None) => Some("sans_convention".into()),
    })
}

/// A ticket may be opened on a tenant in the actor's scope, or by the staff of
/// one of the tenant's schools (a commune-wide tenant serves all its écoles).
async fn may_open(store: &Store, actor: &Actor, tenant_org: &ent_platform::registry::Org) -> Result<(), Problem> {
    let refused = match authz::authorize(store, actor, &authz::SUPPORT_CREATE, tenant_org).await {
        Ok(()) => return Ok(()),
        Err(refused) => refused,
    };
    for b in actor.bindings.iter().filter(|b| authz::SUPPORT_CREATE.roles.contains(&b.role)) {
        if let Some(org) = &b.org {
            if ent_platform::registry::queries::covers_org(store, tenant_org, org).await? {
                return Ok(());
            }
        }
    }
    Err(refused)
}

/// Whether the actor supports the tenants of `tenant_org`: an administrator, or N1 or N2
/// over that organisation ([`super::staff_orgs`]); a support role elsewhere is not enough.
async fn supports(store: &Store, actor: &Actor, tenant_org: &ent_platform::registry::Org) -> Result<bool, Problem> {
    if actor.is_admin() {
        return Ok(true);
    }
    Ok(super::staff_orgs(store, actor, vec![tenant_org.id.clone()]).await?.contains(&tenant_org.id))
}

/// The role the actor opens a ticket on a tenant of `tenant_org` with: the first of its
/// roles that may open one there ([`may_open`]: over the organisation, or at one of the
/// schools it serves), not whatever role it holds elsewhere.
async fn requester_role(
    store: &Store,
    actor: &Actor,
    tenant_org: &ent_platform::registry::Org,
) -> Result<Role, Problem> {
    for b in actor.bindings.iter().filter(|b| authz::SUPPORT_CREATE.roles.contains(&b.role)) {
        let reaches = match &b.org {
            _ if b.role == Role::Admin => true,
            None => false,
            Some(org) => {
                authz::in_org_scope(store, org, tenant_org).await?
                    || ent_platform::registry::queries::covers_org(store, tenant_org, org).await?
            }
        };
        if reaches {
            return Ok(b.role);
        }
    }
    Err(forbidden("aucun de vos rôles ne permet d'ouvrir un ticket sur cet ENT"))
}

async fn tenant_visible(store: &Store, actor: &Actor, tenant: &ent_tenants::tenants::Tenant) -> Result<bool, Problem> {
    let Some(org) = get_org(store, &tenant.organisation.id).await? else {
        return Ok(false);
    };
    Ok(may_open(store, actor, &org).await.is_ok()
        || authz::authorize(store, actor, &authz::TENANTS_READ, &org).await.is_ok())
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
    // A tenant the actor can neither read nor open tickets on is not revealed: it is unknown.
    let tenant = match ent_tenants::tenants::get_tenant(store, &new.tenant).await? {
        Some(t) if tenant_visible(store, ctx.actor, &t).await? => Some(t),
        _ => None,
    };
    if tenant.is_none() {
        checks.fail("tenant", format!("aucun tenant « {} »", new.tenant));
    }
    checks.finish()?;
    let tenant = tenant.expect("checked");
    let org =
        get_org(store, &tenant.organisation.id).await?.ok_or_else(|| Problem::not_found("organisation introuvable"))?;
    may_open(store, ctx.actor, &org).await?;
    if forced.is_some() && !supports(store, ctx.actor, &org).await? {
        return Err(Problem::invalid_field("priority", "seul le support de cet ENT peut imposer une priorité"));
    }
    let user_id = ctx.actor.user_id.clone().ok_or_else(|| {
        Problem::invalid_field("requester", "un ticket est ouvert par un utilisateur : utilisez --as ADRESSE")
    })?;
    let priority = forced
        .or_else(|| ctx.state.support.priority(&new.impact, &new.urgency))
        .expect("the matrix is complete (validated at start)");
    let contract = super::resolve_contract(ctx.state, &tenant, ctx.now).await?;
    let flag = convention_flag(ctx, &tenant).await?;
    let role = requester_role(store, ctx.actor, &org).await?.as_str().to_string();
    let queue = creation_queue(&mut *store.conn().await?, &contract).await?;

    let id = new_id();
    let at = timestamp(ctx.now);
    let mut tx = store.begin_write().await?;
    let reference =
        ent_kernel::store::counters::next_reference(&mut tx, "ENT", ent_kernel::clock::today_in_france(ctx.now).year())
            .await?;
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
    // The N1 team reads the due date in its own time (an overseas school's, not Paris').
    let place = super::place_of(&mut tx, &org.id).await?;
    let tz = ctx.state.support.calendar_at(&contract.policy, Level::N1, &place).tz;
    let due = state.clock(Level::N1).and_then(|c| c.first_response_due).map(|due| french_time(due, tz));
    if queue.is_empty() {
        let body = format!(
            "aucun destinataire pour l'avis de création : ni utilisateur ni adresse au niveau 1 ({}) ni aux niveaux suivants",
            contract.n1.name
        );
        tracing::warn!(ticket = %reference, "{body}");
        let e = NewEvent::new("warning", "internal").body(&body);
        append_event(&mut tx, &id, ctx.actor, e, ctx.now).await?;
    }
    notify(&mut tx, queue, &t, "created", json!({ "tenant": tenant.slug, "due": due }), ctx.now, ctx.now).await?;
    let summary = json!({ "reference": reference, "tenant": tenant.slug, "priority": priority.as_str(), "flag": flag });
    finish(ctx, tx, &t, "support.tickets.create", summary).await
}

/// Who hears of a new ticket: the N1 queue, else (a commune with neither N1 user nor
/// address) the next level's queue that has someone.
async fn creation_queue(conn: &mut AnyConnection, contract: &super::Contract) -> Result<Vec<String>, Problem> {
    let levels =
        [(Level::N1, Some(&contract.n1)), (Level::N2, contract.n2.as_ref()), (Level::N3, contract.n3.as_ref())];
    for (level, org) in levels {
        let Some(org) = org else { continue };
        let queue = queue_emails(conn, level, &org.id).await?;
        if !queue.is_empty() {
            return Ok(queue);
        }
    }
    Ok(Vec::new())
}

/// `17 mai 2027 à 10:00` in `tz`, the time zone of the calendar of the level that reads it;
/// outside Paris time, said so with its offset: `23 février 2026 à 11:00 (heure locale, UTC-04:00)`.
pub fn french_time(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let local = at.with_timezone(&tz);
    let date = ent_kernel::clock::french_date(&local.date_naive().to_string());
    if tz == chrono_tz::Europe::Paris {
        format!("{date} à {}", local.format("%H:%M"))
    } else {
        format!("{date} à {} (heure locale, UTC{})", local.format("%H:%M"), local.format("%:z"))
    }
}

// --- comments ---------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    #[schemars(length(min = 1, max = 20000))]
    pub body: String,
    /// `public` (default: the requester sees it) or `internal` (support levels only).
    #[serde(default)]
    #[schemars(extend("enum" = ["public", "internal", null]))]
    pub visibility: Option<String>,
}

pub async fn comment(ctx: &Ctx<'_>, id: &str, c: NewComment) -> Result<Ticket, Problem> {
    comment_with_files(ctx, id, c, "files", Vec::new()).await
}

/// The comment and its `files` (checked by [`super::attachments::check`]), seen by
/// whom sees the comment, as one operation: both committed together, or neither.
/// Beyond [`super::attachments::MAX_PER_TICKET`] the refusal names field `field`
/// (the form control the files came from), before anything is written.
pub async fn comment_with_files(
    ctx: &Ctx<'_>,
    id: &str,
    c: NewComment,
    field: &str,
    files: Vec<super::attachments::Checked>,
) -> Result<Ticket, Problem> {
    let mut checks = Checks::default();
    checks.text("body", &c.body, 20_000);
    let public = match c.visibility.as_deref().unwrap_or("public") {
        "public" => true,
        "internal" => false,
        other => {
            checks.fail("visibility", format!("« {other} » inconnu : public ou internal"));
            true
        }
    };
    checks.finish()?;
    let (t, v) = find(ctx.store(), ctx.actor, id).await?;
    let levels = levels_of(ctx.store(), ctx.actor, &t).await?;
    let (mut tx, t) = begin(ctx, &t.id, None).await?;
    conflict_unless(t.status != Status::Closed, || {
        format!("le ticket {} est clos : ouvrez-en un nouveau", t.reference)
    })?;
    let file_visibility = if files.is_empty() { "public" } else { super::attachments::visibility_of(v, public)? };
    if let Some(refusal) = super::attachments::room_for(&mut tx, &t, files.len()).await? {
        return Err(Problem::invalid_field(field, refusal));
    }
    let body = c.body.trim();
    if v == Viewer::Requester {
        if !public {
            return Err(forbidden("un demandeur n'écrit que des commentaires publics"));
        }
        let e = NewEvent::new("comment", "public").body(body);
        append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
        // The requester's reply resumes a paused ticket and reopens a resolved one.
        if matches!(t.status, Status::WaitingRequester | Status::Resolved) {
            let e = NewEvent::new("status", "public").moved(t.status.as_str(), Status::InProgress.as_str());
            append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
            bump(&mut tx, &t, "status = $1, resolved_at = $2", &[Some("in_progress".into()), None], ctx.now).await?;
        } else {
            bump(&mut tx, &t, "", &[], ctx.now).await?;
        }
        if let Some(org) = holding_org(&t) {
            let queue = queue_emails(&mut tx, t.level, &org).await?;
            notify(&mut tx, queue, &t, "reply", json!({ "body": body }), ctx.now, ctx.now).await?;
        }
    } else {
        let level =
            if levels.contains(&t.level) { t.level } else { *levels.last().expect("a support viewer holds a level") };
        let visibility = match (public, level) {
            (true, _) => "public",
            (false, Level::N3) => "support",
            (false, _) => "internal",
        };
        let e = NewEvent::new("comment", visibility).body(body).by(level);
        append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
        bump(&mut tx, &t, "", &[], ctx.now).await?;
        if public {
            let to = requester_email(&t);
            notify(&mut tx, to, &t, "comment", json!({ "body": body }), ctx.now, ctx.now).await?;
        }
    }
    super::attachments::insert(&mut tx, ctx, &t, file_visibility, files).await?;
    refresh(&mut tx, &ctx.state.support, &t, ctx.now).await?;
    let summary = json!({ "visibility": if public { "public" } else { "internal" } });
    finish(ctx, tx, &t, "support.tickets.comment", summary).await
}

fn holding_org(t: &Ticket) -> Option<String> {
    match t.level {
        Level::N1 => Some(t.n1_org_id.clone()),
        Level::N2 => t.n2_org_id.clone(),
        Level::N3 => t.n3_org_id.clone(),
    }
}

// --- status -------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionInput {
    /// `in_progress`, `waiting_requester`, `resolved` or `closed`.
    #[schemars(extend("enum" = ["in_progress", "waiting_requester", "resolved", "closed"]))]
    pub to: String,
    /// A public message to the requester (the question asked, the solution given).
    pub message: Option<String>,
}

pub async fn transition(ctx: &Ctx<'_>, id: &str, expected: i64, input: TransitionInput) -> Result<Ticket, Problem> {
    let to = Status::parse(&input.to).ok_or_else(|| {
        Problem::invalid_field(
            "to",
            format!("statut « {} » inconnu : in_progress, waiting_requester, resolved, closed", input.to),
        )
    })?;
    let (t, v) = find(ctx.store(), ctx.actor, id).await?;
    let level = if v == Viewer::Requester {
        if !(t.status == Status::Resolved && to == Status::Closed) {
            return Err(forbidden("un demandeur peut seulement clore un ticket résolu ; répondez par un commentaire"));
        }
        None
    } else {
        Some(acting_level(ctx, &t).await?)
    };
    let (mut tx, t) = begin(ctx, &t.id, Some(expected)).await?;
    conflict_unless(t.status.can_move_to(to), || {
        format!("le ticket {} est {} : il ne peut pas passer à « {} »", t.reference, t.status.label(), to.label())
    })?;
    let message = input.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    let e = NewEvent {
        kind: "status",
        from: Some(t.status.as_str()),
        to: Some(to.as_str()),
        visibility: "public",
        body: message,
        actor_level: level,
    };
    append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
    let at = Some(timestamp(ctx.now));
    match to {
        Status::Resolved => {
            bump(&mut tx, &t, "status = $1, resolved_at = $2", &[Some(to.as_str().into()), at], ctx.now).await?
        }
        Status::Closed => {
            bump(&mut tx, &t, "status = $1, closed_at = $2", &[Some(to.as_str().into()), at], ctx.now).await?
        }
        _ => bump(&mut tx, &t, "status = $1, resolved_at = $2", &[Some(to.as_str().into()), None], ctx.now).await?,
    }
    if matches!(to, Status::Resolved | Status::WaitingRequester) {
        let event = if to == Status::Resolved { "resolved" } else { "waiting" };
        let recipients = requester_email(&t);
        notify(&mut tx, recipients, &t, event, json!({ "body": message }), ctx.now, ctx.now).await?;
    }
    refresh(&mut tx, &ctx.state.support, &t, ctx.now).await?;
    let summary = json!({ "from": t.status.as_str(), "to": to.as_str() });
    finish(ctx, tx, &t, "support.tickets.transition", summary).await
}

// --- escalation and return ------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateInput {
    /// Why the level cannot solve it (mandatory).
    #[schemars(length(min = 1, max = 5000))]
    pub reason: String,
    /// N2 → N3 only: show the requester's name to the vendor (default: a pseudonym).
    #[serde(default)]
    pub share_requester: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    /// The answer handed to the level below (mandatory).
    #[schemars(length(min = 1, max = 20000))]
    pub answer: String,
}

pub async fn escalate(ctx: &Ctx<'_>, id: &str, expected: i64, input: EscalateInput) -> Result<Ticket, Problem> {
    let mut checks = Checks::default();
    checks.text("reason", &input.reason, 5_000);
    checks.finish()?;
    let (mut tx, t, level) = begin_at_level(ctx, id, expected).await?;
    move_level(ctx, &mut tx, &t, Some(level), input.reason.trim(), true, input.share_requester).await?;
    let summary = json!({ "from": t.level.as_str(), "reason": input.reason.trim() });
    finish(ctx, tx, &t, "support.tickets.escalate", summary).await
}

pub async fn return_down(ctx: &Ctx<'_>, id: &str, expected: i64, input: ReturnInput) -> Result<Ticket, Problem> {
    let mut checks = Checks::default();
    checks.text("answer", &input.answer, 20_000);
    checks.finish()?;
    let (mut tx, t, level) = begin_at_level(ctx, id, expected).await?;
    move_level(ctx, &mut tx, &t, Some(level), input.answer.trim(), false, false).await?;
    let summary = json!({ "from": t.level.as_str() });
    finish(ctx, tx, &t, "support.tickets.return", summary).await
}

/// Moves the ticket one level up (escalation) or down (return), logs it,
/// re-derives the SLA and notifies the receiving queue.
pub(crate) async fn move_level(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    t: &Ticket,
    actor_level: Option<Level>,
    text: &str,
    up: bool,
    share_requester: bool,
) -> Result<(), Problem> {
    let target = if up { t.level.up() } else { t.level.down() };
    let Some(target) = target else {
        return Err(Problem::conflict(if up {
            format!("le ticket {} est déjà au niveau N3, le dernier niveau", t.reference)
        } else {
            format!("le ticket {} est déjà au niveau N1", t.reference)
        }));
    };
    conflict_unless(matches!(t.status, Status::New | Status::InProgress), || {
        format!(
            "le ticket {} est {} : seul un ticket nouveau ou en cours change de niveau",
            t.reference,
            t.status.label()
        )
    })?;
    let receiving = match target {
        Level::N1 => Some(t.n1_org_id.clone()),
        Level::N2 => t.n2_org_id.clone(),
        Level::N3 => Some(current_vendor(tx, t).await?),
    }
    .ok_or_else(|| {
        Problem::conflict(format!(
            "aucune organisation {} n'est désignée pour ce tenant : complétez son contrat de support",
            target.label()
        ))
    })?;
    let (kind, status) = if up { ("escalated", Status::New) } else { ("returned", Status::InProgress) };
    let visibility = if t.level == Level::N3 || target == Level::N3 { "support" } else { "internal" };
    let e = NewEvent {
        kind,
        from: Some(t.level.as_str()),
        to: Some(target.as_str()),
        visibility,
        body: Some(text),
        actor_level,
    };
    append_event(tx, &t.id, ctx.actor, e, ctx.now).await?;
    bump(tx, t, "level = $1, status = $2", &[Some(target.as_str().into()), Some(status.as_str().into())], ctx.now)
        .await?;
    let reached = target == Level::N3 || t.reached_n3;
    let shared = share_requester && target == Level::N3 || t.requester_shared;
    let n3_org_id = if target == Level::N3 { Some(receiving.clone()) } else { t.n3_org_id.clone() };
    sqlx::query("UPDATE support_tickets SET reached_n3 = $1, requester_shared = $2, n3_org_id = $3 WHERE id = $4")
        .bind(i64::from(reached))
        .bind(i64::from(shared))
        .bind(&n3_org_id)
        .bind(&t.id)
        .execute(&mut **tx)
        .await?;
    let moved = Ticket { level: target, n3_org_id, ..t.clone() };
    refresh(tx, &ctx.state.support, &moved, ctx.now).await?;
    let queue = queue_emails(tx, target, &receiving).await?;
    let event = if up { "escalated" } else { "returned" };
    notify(tx, queue, &moved, event, json!({ "from": t.level.label(), "body": text }), ctx.now, ctx.now).await?;
    Ok(())
}

/// The N3 a ticket escalates to: the tenant's vendor of record now (after an award, the
/// new one), its processor, whatever N3 was copied when the ticket was opened; a 409 when
/// the tenant has none, rather than hand personal data to an éditeur that is not its processor.
async fn current_vendor(tx: &mut Tx, t: &Ticket) -> Result<String, Problem> {
    let vendor: Option<(Option<String>,)> = sqlx::query_as("SELECT vendor_org_id FROM tenants WHERE id = $1")
        .bind(&t.tenant_id)
        .fetch_optional(&mut **tx)
        .await?;
    vendor.and_then(|(v,)| v).ok_or_else(|| {
        Problem::conflict(format!(
            "le ticket {} ne peut pas passer au niveau N3 : le tenant n'a pas d'éditeur déclaré, \
             seul sous-traitant à qui le confier ; déclarez son éditeur (spec.vendor)",
            t.reference
        ))
    })
}

// --- field updates ----------------------------------------------------------------------

/// Fields of `PATCH /support/tickets/{id}`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    pub assigned_team: Option<String>,
    /// The assignee's e-mail address.
    pub assignee: Option<String>,
    #[schemars(extend("enum" = ["haute", "moyenne", "basse", null]))]
    pub impact: Option<String>,
    #[schemars(extend("enum" = ["haute", "moyenne", "basse", null]))]
    pub urgency: Option<String>,
    /// P1 to P4; otherwise from impact × urgency.
    #[schemars(extend("enum" = ["P1", "P2", "P3", "P4", null]))]
    pub priority: Option<String>,
    #[schemars(extend("enum" = ["acces", "service", "donnees", "autre", null]))]
    pub category: Option<String>,
    pub service: Option<String>,
}

/// The id of the user `email` names if they may handle `t` at its level: an active account
/// holding that level's role over the ticket's school, or an admin. `None` for anyone
/// else, an unknown address included: one refusal for both, so that no address is probed.
async fn assignable(store: &Store, t: &Ticket, email: &str) -> Result<Option<String>, Problem> {
    let Some(user) = ent_platform::identity::get_user(store, email).await?.filter(|u| u.active) else {
        return Ok(None);
    };
    let bindings = ent_platform::identity::bindings_of(store, &user.id).await?;
    let actor = Actor { user_id: Some(user.id.clone()), name: user.email.clone(), bindings };
    Ok(levels_of(store, &actor, t).await?.contains(&t.level).then_some(user.id))
}

pub async fn update(ctx: &Ctx<'_>, id: &str, expected: i64, patch: TicketPatch) -> Result<Ticket, Problem> {
    let (t, _) = find(ctx.store(), ctx.actor, id).await?;
    let level = acting_level(ctx, &t).await?;
    let mut checks = Checks::default();
    let impact = patch.impact.clone().unwrap_or(t.impact.clone());
    let urgency = patch.urgency.clone().unwrap_or(t.urgency.clone());
    check_grade(&mut checks, "impact", &impact);
    check_grade(&mut checks, "urgency", &urgency);
    let category = patch.category.clone().unwrap_or(t.category.clone());
    let service =
        if patch.category.is_some() || patch.service.is_some() { patch.service.clone() } else { t.service.clone() };
    check_category(&mut checks, ctx.state, &category, service.as_deref());
    let forced = parse_priority(&mut checks, patch.priority.as_deref());
    if let Some(team) = &patch.assigned_team {
        checks.line("assigned_team", team);
    }
    let assignee = match patch.assignee.as_deref() {
        Some(email) => match assignable(ctx.store(), &t, email).await? {
            Some(id) => Some(id),
            None => {
                let level = t.level.label();
                checks.fail(
                    "assignee",
                    format!(
                        "« {email} » ne traite pas les tickets du niveau {level} de cet ENT : \
                         affectez le ticket à une personne de ce niveau"
                    ),
                );
                None
            }
        },
        None => t.assignee_id.clone(),
    };
    checks.finish()?;
    let priority = match forced {
        Some(p) => p,
        None if patch.impact.is_some() || patch.urgency.is_some() => {
            ctx.state.support.priority(&impact, &urgency).expect("complete matrix")
        }
        None => t.priority,
    };
    let team = patch.assigned_team.clone().or(t.assigned_team.clone());
    let (mut tx, t) = begin(ctx, &t.id, Some(expected)).await?;
    let summary = json!({
        "assigned_team": team, "assignee": patch.assignee, "impact": impact, "urgency": urgency,
        "priority": priority.as_str(), "category": category, "service": service,
    });
    let body = summary.to_string();
    let e = NewEvent::new("updated", "support").body(&body).by(level);
    append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
    bump(
        &mut tx,
        &t,
        "assigned_team = $1, assignee_id = $2, impact = $3, urgency = $4, priority = $5, category = $6, service = $7",
        &[team, assignee, Some(impact), Some(urgency), Some(priority.as_str().into()), Some(category), service],
        ctx.now,
    )
    .await?;
    refresh(&mut tx, &ctx.state.support, &t, ctx.now).await?;
    finish(ctx, tx, &t, "support.tickets.update", summary).await
}
