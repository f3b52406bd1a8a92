//! The event log of a ticket and the SLA derived from it, stored with each change; its notices.

use super::Ticket;
use crate::support::policy::Policies;
use crate::support::sla::{self, SlaEvent, SlaState, Step};
use crate::support::{Level, Priority, Status};
use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::{new_id, parse_timestamp, timestamp, Flag, Nullable, Tx, UnknownValue};
use ent_ops::notify::Notice;
use ent_platform::identity::Actor;
use serde_json::{json, Value};
use sqlx::AnyConnection;

// --- the event log and the SLA ------------------------------------------------

pub(crate) async fn sla_events(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<SlaEvent>, Problem> {
    let sql = format!(
        "SELECT at, kind, from_value, to_value, visibility, actor_level, {PUBLIC_MESSAGE} FROM support_events \
         WHERE ticket_id = $1 ORDER BY seq"
    );
    let rows: Vec<SlaEventRow> = sqlx::query_as(&sql).bind(ticket_id).fetch_all(conn).await?;
    rows.into_iter().map(SlaEventRow::event).collect()
}

/// The column `public_message` of an event row: a message the requester sees.
pub(crate) const PUBLIC_MESSAGE: &str = "CAST(CASE WHEN visibility = 'public' AND body IS NOT NULL AND body <> '' \
    THEN 1 ELSE 0 END AS BIGINT) AS public_message";

/// What the SLA reads of an event row.
#[derive(sqlx::FromRow)]
pub(crate) struct SlaEventRow {
    at: String,
    kind: String,
    from_value: Option<String>,
    to_value: Option<String>,
    visibility: String,
    #[sqlx(try_from = "Nullable<Level>")]
    actor_level: Option<Level>,
    #[sqlx(try_from = "Flag")]
    public_message: bool,
}

impl SlaEventRow {
    /// The SLA event; a time or a status/level value the code does not know is an error.
    pub(crate) fn event(self) -> Result<SlaEvent, Problem> {
        let at = parse_timestamp(&self.at).ok_or(UnknownValue { what: "horodatage", value: self.at.clone() })?;
        let to = self.to_value.unwrap_or_default();
        let step = match self.kind.as_str() {
            "created" => Step::Created,
            "status" => Step::Status(Status::try_from(to)?),
            "escalated" => Step::Escalated(Level::try_from(to)?),
            "returned" => Step::Returned(Level::try_from(to)?),
            "priority" => Step::Priority {
                from: Priority::try_from(self.from_value.unwrap_or_default())?,
                to: Priority::try_from(to)?,
            },
            "comment" => Step::Comment { public: self.visibility == "public" },
            _ => Step::Other,
        };
        Ok(SlaEvent { at, step, actor_level: self.actor_level, public_message: self.public_message })
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
    let place = crate::support::place_of(tx, &t.organisation.id).await?;
    let state = sla::derive(policies, &policy, &place, priority, &events, now);
    store_sla(tx, t, &state).await?;
    Ok(state)
}

/// Stores what `state` says of the ticket: the due date of the requester's first response
/// (whichever level gives it: an internal note or a return does not answer them), the holding
/// level's resolution due date, the next unflagged due date (what the sweep waits for) and
/// each level's clock.
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
        "UPDATE support_tickets SET first_response_due = $1, resolution_due = $2, next_due = $3, breaches = $4, \
         answered_seconds = $5 WHERE id = $6",
    )
    .bind(state.answer_due.map(timestamp))
    .bind(current.and_then(|c| c.resolution_due).map(timestamp))
    .bind(state.next_due(is_flagged).map(timestamp))
    .bind(flagged.len() as i64)
    .bind(state.answered_seconds)
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
