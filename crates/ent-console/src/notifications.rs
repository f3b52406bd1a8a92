//! « Notifications »: what awaits the person, each a link to where it is done. For the
//! support levels: the new tickets of their level to take, the tickets assigned to
//! them, the breached ones; for a requester: their tickets waiting for their answer
//! or their confirmation. Scoped like the queue they link to (the support domain's
//! `visible_condition`). The header shows the count (loaded by htmx; the link works
//! without it).

use crate::forms::On;
use crate::page::{self, PageError, Shell};
use crate::tickets::work_levels;
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::http::Method;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use ent_kernel::error::Problem;
use ent_kernel::http::FromRef;
use ent_kernel::store::Condition;
use ent_platform::identity::authz;
use ent_platform::identity::Actor;
use ent_support::support::SupportState;
use serde::Serialize;

/// The pages of this screen.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<ConsoleRoute<S>>
where
    ConsoleState: FromRef<S>,
    SupportState: FromRef<S>,
{
    vec![
        route(Method::GET, "/notifications", Access::Signed(&authz::SELF_READ), get(page)),
        route(Method::GET, "/notifications/compte", Access::Signed(&authz::SELF_READ), get(count)),
    ]
}

/// Most items listed per group.
const LISTED: i64 = 20;

/// One thing awaiting the person.
#[derive(Serialize)]
struct Item {
    label: String,
    href: String,
}

/// A kind of thing awaiting the person, with its items.
#[derive(Serialize)]
struct Group {
    id: &'static str,
    title: &'static str,
    items: Vec<Item>,
}

/// The tickets of the support levels the person works at.
fn at_levels(actor: &Actor) -> Option<Condition> {
    let levels = work_levels(actor);
    (!levels.is_empty()).then(|| crate::tickets::at_levels(&levels))
}

/// The ticket groups: `(id, title, condition)` for the person.
fn ticket_groups(actor: &Actor) -> Vec<(&'static str, &'static str, Condition)> {
    let mut groups = Vec::new();
    let me = actor.user_id.clone().unwrap_or_default();
    let open = "t.status NOT IN ('resolved', 'closed')";
    if let Some(levels) = at_levels(actor) {
        let mut new = levels.clone();
        new.push("t.status = 'new' AND t.assignee_id IS NULL", &[]);
        groups.push(("a-prendre", "Nouveaux tickets à prendre en charge à votre niveau", new));
        let mut breached = levels;
        breached.push(&format!("t.breaches > 0 AND {open}"), &[]);
        groups.push(("en-retard", "Tickets en retard à votre niveau", breached));
        let mut assigned = Condition::default();
        assigned.push(&format!("t.assignee_id = ? AND {open}"), &[me.as_str()]);
        groups.push(("affectes", "Tickets qui vous sont affectés", assigned));
    }
    let mut waiting = Condition::default();
    waiting.push("t.requester_id = ? AND t.status IN ('waiting_requester', 'resolved')", &[me.as_str()]);
    groups.push(("vos-tickets", "Vos tickets qui attendent votre réponse ou votre confirmation", waiting));
    groups
}

/// What awaits the person, group by group (the empty ones left out).
async fn groups(state: &SupportState, actor: &Actor) -> Result<Vec<Group>, Problem> {
    let mut found = Vec::new();
    if !authz::role_allows(actor, &authz::SUPPORT_READ) {
        return Ok(found);
    }
    for (id, title, mut cond) in ticket_groups(actor) {
        if let Some(scope) = ent_support::support::visible_condition(actor) {
            cond.and(scope);
        }
        let sql = format!(
            "SELECT t.reference, t.subject FROM support_tickets t WHERE {} \
             ORDER BY COALESCE(t.next_due, '9999'), t.id LIMIT {LISTED}",
            cond.sql()
        );
        let rows = cond.bind(sqlx::query(&sql)).fetch_all(state.store.pool()).await?;
        let items: Vec<Item> = rows
            .iter()
            .map(|row| {
                use sqlx::Row;
                let (reference, subject): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                Ok(Item { label: format!("{reference} — {subject}"), href: format!("/tickets/{reference}") })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        if !items.is_empty() {
            found.push(Group { id, title, items });
        }
    }
    Ok(found)
}

/// `/notifications`.
async fn page(On { console, state, signed }: On<SupportState>) -> Result<Response, PageError> {
    let groups = groups(&state, &signed.0.actor).await?;
    let total: usize = groups.iter().map(|g| g.items.len()).sum();
    let shell = Shell::new(&console, Some(&signed.0), "/notifications").crumbs(&[("Notifications", "/notifications")]);
    Ok(page::render("notifications.html", shell, serde_json::json!({ "groups": groups, "total": total })))
}

/// `/notifications/compte`: the count the header shows (` (3)`, or nothing).
async fn count(On { state, signed, .. }: On<SupportState>) -> Result<Response, PageError> {
    let total: usize = groups(&state, &signed.0.actor).await?.iter().map(|g| g.items.len()).sum();
    let text = if total == 0 { String::new() } else { format!(" ({total})") };
    Ok(Html(text).into_response())
}
