//! The frame of every change to a ticket: its row locked, `If-Match` checked, the acting
//! level, the version bumped (the support's, and the requester's when they see the change),
//! audited and committed.

use super::{find, get, load_for_update, Ctx, Ticket};
use crate::support::{levels_of, viewer, Level, Viewer};
use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::expect_same_version;
use ent_kernel::store::{timestamp, Backend, Tx};
use ent_platform::audit;
use ent_platform::identity::authz::forbidden;
use serde_json::Value;

/// Opens the write transaction of a change to `id` and checks `If-Match`.
/// The ticket row is locked until commit (PostgreSQL `FOR UPDATE`; SQLite's
/// `BEGIN IMMEDIATE` already serialises writers), so every decision is made on its
/// current state.
pub(super) async fn begin(ctx: &Ctx<'_>, id: &str, expected: Option<i64>) -> Result<(Tx, Ticket), Problem> {
    let mut tx = ctx.store().begin_write().await?;
    let t = load_for_update(&mut tx, ctx.store().backend(), id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("aucun ticket « {id} »")))?;
    if let Some(expected) = expected {
        expect_same_version(expected, t.version)?;
    }
    Ok((tx, t))
}

pub(super) async fn bump(
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
pub(super) async fn acting_level(ctx: &Ctx<'_>, t: &Ticket) -> Result<Level, Problem> {
    let levels = levels_of(ctx.store(), ctx.actor, t).await?;
    if levels.contains(&t.level) {
        return Ok(t.level);
    }
    if levels.is_empty() {
        if viewer(ctx.store(), ctx.actor, t).await?.is_none() {
            return Err(Problem::not_found(format!("aucun ticket « {} »", t.reference)));
        }
        // The requester (or a vendor the ticket no longer reaches) is not told which level holds
        // it: the same refusal whichever level does.
        return Err(forbidden(format!("seul le support peut traiter le ticket {}", t.reference)));
    }
    Err(forbidden(format!(
        "le ticket {} est au niveau {} : seul ce niveau peut le traiter",
        t.reference,
        t.level.label()
    )))
}

/// The tail of every change: the requester's version moved if they see the change
/// ([`tell_requester`]), audited as `action`, committed, read back as the caller sees it.
pub(super) async fn finish(
    ctx: &Ctx<'_>,
    mut tx: Tx,
    t: &Ticket,
    action: &str,
    summary: Value,
) -> Result<Ticket, Problem> {
    tell_requester(&mut tx, ctx.store().backend(), t, ctx.now).await?;
    audit::record(&mut tx, ctx.store().backend(), ctx.actor, action, t, summary, ctx.now).await?;
    tx.commit().await?;
    get(ctx, &t.id).await
}

/// Moves the requester's `version` (their `ETag`) and `updated_at` when the change made in `tx`
/// to `before` (the ticket as locked before it) is one they see: an entry of their history
/// (public) or a field of the ticket as they read it ([`Ticket::seen_by`]). An escalation, a
/// return, an assignment or a note moves the support's `version` alone (or nothing, for a
/// note): the requester cannot count the support's work on their ticket.
pub(crate) async fn tell_requester(
    tx: &mut Tx,
    backend: Backend,
    before: &Ticket,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let after =
        load_for_update(tx, backend, &before.id).await?.ok_or_else(|| Problem::not_found("ticket introuvable"))?;
    let entries: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM support_events WHERE ticket_id = $1 AND seq > $2 AND visibility = 'public'",
    )
    .bind(&before.id)
    .bind(before.last_seq)
    .fetch_one(&mut **tx)
    .await?;
    if entries > 0 || as_requester_reads(before) != as_requester_reads(&after) {
        sqlx::query("UPDATE support_tickets SET seen_version = seen_version + 1, seen_at = $1 WHERE id = $2")
            .bind(timestamp(now))
            .bind(&before.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The ticket as its requester reads it, but for its version and date.
fn as_requester_reads(t: &Ticket) -> Value {
    let mut seen = serde_json::to_value(t.clone().seen_by(Viewer::Requester)).unwrap_or_default();
    if let Some(fields) = seen.as_object_mut() {
        fields.remove("version");
        fields.remove("updated_at");
    }
    seen
}

/// The ticket `id` locked for a level change (`If-Match` checked), with the level
/// the actor acts as: the one holding it.
pub(super) async fn begin_at_level(ctx: &Ctx<'_>, id: &str, expected: i64) -> Result<(Tx, Ticket, Level), Problem> {
    let (t, _) = find(ctx.store(), ctx.actor, id).await?;
    let level = acting_level(ctx, &t).await?;
    let (tx, t) = begin(ctx, &t.id, Some(expected)).await?;
    Ok((tx, t, level))
}
