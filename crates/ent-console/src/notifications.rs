//! « Notifications »: what awaits the person, each a link to where it is done. For the
//! support levels: the new tickets of their level to take, the tickets assigned to
//! them, the breached ones; for a requester: their tickets waiting for their answer
//! or their confirmation. Scoped like the queue they link to (the support domain's
//! `visible_condition`). Besides the tickets: the conventions awaiting the person's visa
//! or signature (the conventions domain's `awaited_actors`, among the conventions the
//! person's organisations are party to), the applications awaiting the decision of a
//! groupement's coordinator, and, for those who keep RGPD logs, the breaches whose 72-hour
//! CNIL deadline is near or passed without a decision and the data-subject requests whose
//! deadline is near or passed without an answer, of every organisation whose log page the
//! person may open (an académie's DPO: its schools' too; each organisation checked as its
//! log page checks it, so nothing out of scope shows). The header shows the count (loaded
//! by htmx; the link works without it).

use crate::forms::On;
use crate::page::{self, PageError, Shell};
use crate::rgpd::{BREACH_CLOSE_HOURS, REQUEST_CLOSE_DAYS};
use crate::tickets::work_levels;
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::http::Method;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ent_conventions::conventions::routes::visible_orgs;
use ent_conventions::conventions::{self as conventions, workflow, ConventionsState};
use ent_groupements::groupements::membership::{self, ApplicationStatus};
use ent_groupements::groupements::{self as groupements, GroupementFilter};
use ent_kernel::clock::{french_date, french_moment, today_in_france};
use ent_kernel::error::Problem;
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::Role;
use ent_kernel::naming;
use ent_kernel::store::{Condition, Store};
use ent_platform::identity::authz::{self, CONVENTIONS_READ, RGPD_LOGS_READ};
use ent_platform::identity::{Actor, Caller};
use ent_platform::registry::{get_org, Org};
use ent_rgpd::rgpd::breaches::{self, CnilDecision};
use ent_rgpd::rgpd::requests::{self, RequestStatus};
use ent_rgpd::rgpd::{self as rgpd, RgpdState};
use ent_support::support::{self as support, SupportState};
use serde::Serialize;

/// The pages of this screen.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<ConsoleRoute<S>>
where
    ConsoleState: FromRef<S>,
    SupportState: FromRef<S>,
    ConventionsState: FromRef<S>,
    RgpdState: FromRef<S>,
{
    vec![
        route(Method::GET, "/notifications", Access::Signed(&authz::SELF_READ), get(page)),
        route(Method::GET, "/notifications/compte", Access::Signed(&authz::SELF_READ), get(count)),
    ]
}

/// The capabilities the notification centre reads.
#[derive(Clone)]
struct Sources {
    support: SupportState,
    conventions: ConventionsState,
    rgpd: RgpdState,
}

impl<S> FromRef<S> for Sources
where
    SupportState: FromRef<S>,
    ConventionsState: FromRef<S>,
    RgpdState: FromRef<S>,
{
    fn from_ref(state: &S) -> Sources {
        Sources {
            support: SupportState::from_ref(state),
            conventions: ConventionsState::from_ref(state),
            rgpd: RgpdState::from_ref(state),
        }
    }
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

/// The tickets of the support levels the person works at, among those they see as support: a
/// ticket they opened elsewhere tells them neither its level, its assignment nor its breaches.
fn at_levels(actor: &Actor) -> Option<Condition> {
    let levels = work_levels(actor);
    (!levels.is_empty()).then(|| {
        let mut cond = support::at_levels("t.level", &levels);
        if let Some(support) = support::support_condition(actor) {
            cond.and(support);
        }
        cond
    })
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

/// The ticket groups awaiting the person (the empty ones left out).
async fn tickets(state: &SupportState, actor: &Actor) -> Result<Vec<Group>, Problem> {
    let mut found = Vec::new();
    if !authz::role_allows(actor, &authz::SUPPORT_READ) {
        return Ok(found);
    }
    for (id, title, mut cond) in ticket_groups(actor) {
        if let Some(scope) = support::visible_condition(actor) {
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

/// Conventions read for the person at most (in signature, not yet signed by their
/// organisation, newest first).
const CONVENTIONS_READ_AT_MOST: u32 = 50;

/// The conventions in signature the person's organisations are party to (as the convention
/// page shows them) whose next visa or signature is the person's: what « Notifications » lists
/// and what the dashboard marks « attendue » (and lists on the person's own dashboard), so
/// that the two pages never disagree.
pub(crate) async fn conventions_awaiting(
    state: &ConventionsState,
    actor: &Actor,
    email: &str,
) -> Result<Vec<conventions::Convention>, Problem> {
    let caller = Caller { actor: actor.clone(), action: &CONVENTIONS_READ };
    let Some(orgs) = visible_orgs(&caller).filter(|orgs| !orgs.is_empty()) else {
        // An administrator signs for no party; a role without an organisation reads none.
        return Ok(Vec::new());
    };
    let ids = conventions::unsigned_by(&state.store, &orgs, CONVENTIONS_READ_AT_MOST).await?;
    let mut items = Vec::new();
    for id in ids {
        let Some(conv) = conventions::get_convention(&state.store, &state.models, &id).await? else { continue };
        let Ok(model) = conventions::find_model(&state.models, &conv.model_id, Some(conv.model_version)) else {
            continue;
        };
        let awaited = workflow::awaited_actors(&mut *state.store.conn().await?, model, &conv).await?;
        if awaited.iter().any(|e| e.eq_ignore_ascii_case(email)) {
            items.push(conv);
        }
    }
    items.truncate(LISTED as usize);
    Ok(items)
}

/// [`conventions_awaiting`] the person, as notification items.
async fn conventions_to_sign(state: &ConventionsState, actor: &Actor, email: &str) -> Result<Vec<Item>, Problem> {
    let awaiting = conventions_awaiting(state, actor, email).await?;
    Ok(awaiting
        .into_iter()
        .map(|conv| Item {
            label: format!("{} — {}", conv.reference, conv.title),
            href: format!("/conventions/{}", conv.id),
        })
        .collect())
}

/// The applications awaiting a decision in the groupements the person coordinates.
async fn applications_to_review(store: &Store, actor: &Actor) -> Result<Vec<Item>, Problem> {
    let mut items = Vec::new();
    let coordinators = actor.bindings.iter().filter(|b| b.role == Role::Coordinateur).filter_map(|b| b.org.as_ref());
    for org in coordinators {
        let filter = GroupementFilter { coordinator: Some(org.id.clone()), limit: Some(500), ..Default::default() };
        for g in groupements::list(store, actor, &filter).await?.items {
            if !groupements::is_coordinator(actor, &g) {
                continue;
            }
            for app in membership::list(store, &g.id, Some(ApplicationStatus::Applied)).await? {
                items.push(Item {
                    label: format!("{} — {} : candidature {}", g.reference, g.title, naming::de(&app.applicant.name)),
                    href: format!("/groupements/{}", g.reference),
                });
            }
        }
    }
    items.truncate(LISTED as usize);
    Ok(items)
}

/// Organisations with open log entries read at most for one person (each then checked).
const LOG_ORGS_AT_MOST: i64 = 200;

/// Where the open entries of a log are due: the column read (the earliest first) and,
/// when that column holds the deadline itself, the latest deadline notified.
struct Due<'a> {
    column: &'a str,
    by: Option<&'a str>,
}

/// The organisations whose log `table` holds entries matching `open` (and due, see
/// [`Due`]), whose log page the person may open, the one with the earliest such entry
/// first: among the organisations in the scope of the person's RGPD roles (DPO, DAN,
/// controller; an operator is not notified of every organisation's logs) as the RGPD
/// domain allows that page ([`rgpd::logs_condition`], the rule of `rgpd::authorize` for
/// reading the logs), so that the limit only ever drops the person's least urgent
/// organisations; each is then checked by the domain. The
/// statements run do not grow with the number of organisations in the scope.
async fn log_orgs(
    state: &RgpdState,
    actor: &Actor,
    table: &str,
    open: &str,
    due: Due<'_>,
) -> Result<Vec<Org>, Problem> {
    let keepers: Vec<Condition> = actor
        .bindings
        .iter()
        .filter(|b| b.role != Role::Admin && RGPD_LOGS_READ.roles.contains(&b.role))
        .filter_map(|b| Some(rgpd::logs_condition(b.role, b.org.as_ref()?)))
        .collect();
    if keepers.is_empty() {
        return Ok(Vec::new());
    }
    let column = due.column;
    let mut cond = Condition::default();
    cond.push(open, &[]);
    if let Some(by) = due.by {
        cond.push(&format!("{column} <= ?"), &[by]);
    }
    cond.and_wrapped("org_id IN (SELECT id FROM orgs WHERE ", Condition::any(keepers), ")");
    let sql = format!(
        "SELECT org_id, MIN({column}) AS first_due FROM {table} WHERE {} \
         GROUP BY org_id ORDER BY first_due, org_id LIMIT {LOG_ORGS_AT_MOST}",
        cond.sql()
    );
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(state.store.pool()).await?;
    let mut orgs = Vec::new();
    for row in rows {
        let id: String = sqlx::Row::try_get(&row, 0)?;
        let Some(org) = get_org(&state.store, &id).await? else { continue };
        if rgpd::authorize(state, actor, &RGPD_LOGS_READ, &org).await.is_ok() {
            orgs.push(org);
        }
    }
    Ok(orgs)
}

/// Breaches without a CNIL decision whose 72-hour deadline is near or passed.
async fn breaches_due(state: &RgpdState, orgs: &[Org], now: DateTime<Utc>) -> Result<Vec<Item>, Problem> {
    let mut items = Vec::new();
    for org in orgs {
        if items.len() >= LISTED as usize {
            break;
        }
        for b in breaches::list(state, org).await? {
            let Ok(deadline) = DateTime::parse_from_rfc3339(&b.cnil_deadline) else { continue };
            if b.input.cnil_decision != CnilDecision::Pending
                || deadline.with_timezone(&Utc) - now > Duration::hours(BREACH_CLOSE_HOURS)
            {
                continue;
            }
            items.push(Item {
                label: format!(
                    "{} — {} ({}) : notification à la CNIL avant le {}",
                    b.reference,
                    b.input.title,
                    org.name,
                    french_moment(&b.cnil_deadline)
                ),
                href: format!("/rgpd/{}/violations", org.id),
            });
        }
    }
    items.truncate(LISTED as usize);
    Ok(items)
}

/// Breaches of a high risk whose people are neither told nor dispensed (Art. 34(3)), however
/// long ago they were known: Art. 34(1) asks « dans les meilleurs délais ».
async fn breaches_untold(state: &RgpdState, orgs: &[Org]) -> Result<Vec<Item>, Problem> {
    let mut items = Vec::new();
    for org in orgs {
        if items.len() >= LISTED as usize {
            break;
        }
        for b in breaches::list(state, org).await? {
            let i = &b.input;
            if !b.people_untold() {
                continue;
            }
            items.push(Item {
                label: format!("{} — {} ({}) : informer les personnes concernées", b.reference, i.title, org.name),
                href: format!("/rgpd/{}/violations/{}", org.id, b.id),
            });
        }
    }
    items.truncate(LISTED as usize);
    Ok(items)
}

/// Days a request's stored due date can run after the one computed when read (three months from
/// the reception, as written before Art. 12(3)'s two further months: 30 April for 28 April).
const STORED_DUE_MARGIN_DAYS: i64 = 3;

/// Data-subject requests not answered whose deadline is near or passed.
async fn requests_due(state: &RgpdState, orgs: &[Org], now: DateTime<Utc>) -> Result<Vec<Item>, Problem> {
    let today = today_in_france(now);
    let mut items = Vec::new();
    for org in orgs {
        if items.len() >= LISTED as usize {
            break;
        }
        for r in requests::list(state, org).await? {
            let Ok(due) = NaiveDate::parse_from_str(&r.due_on, "%Y-%m-%d") else { continue };
            let open = !matches!(r.input.status, RequestStatus::Answered | RequestStatus::Rejected);
            if !open || due - today > Duration::days(REQUEST_CLOSE_DAYS) {
                continue;
            }
            items.push(Item {
                label: format!("{} ({}) : réponse due le {}", r.reference, org.name, french_date(&r.due_on)),
                href: format!("/rgpd/{}/demandes", org.id),
            });
        }
    }
    items.truncate(LISTED as usize);
    Ok(items)
}

/// What awaits the person, group by group (the empty ones left out).
async fn groups(sources: &Sources, signed: &crate::auth::Signed) -> Result<Vec<Group>, Problem> {
    let actor = &signed.0.actor;
    let mut found = tickets(&sources.support, actor).await?;
    let mut push = |id: &'static str, title: &'static str, items: Vec<Item>| {
        if !items.is_empty() {
            found.push(Group { id, title, items });
        }
    };
    let to_sign = conventions_to_sign(&sources.conventions, actor, &signed.0.email).await?;
    push("conventions", "Conventions qui attendent votre visa ou votre signature", to_sign);
    let applications = applications_to_review(&sources.support.store, actor).await?;
    push("candidatures", "Candidatures à examiner dans vos groupements", applications);
    let now = sources.rgpd.clock.now();
    // The deadline of a breach is its moment of awareness (as typed, with its offset) plus
    // 72 hours: the oldest pending breach of an organisation is its most urgent.
    // A processor's breach is its controllers' to notify (Art. 33(2)): theirs are listed.
    let pending = format!("cnil_decision = 'pending' AND {}", breaches::OWN_DECISIONS);
    let aware = Due { column: "aware_at", by: None };
    let orgs = log_orgs(&sources.rgpd, actor, "rgpd_breaches", &pending, aware).await?;
    let breaches = breaches_due(&sources.rgpd, &orgs, now).await?;
    push("violations", "Violations de données à notifier à la CNIL (échéance de 72 h proche ou dépassée)", breaches);
    let untold = format!(
        "risk = 'high' AND people_notified_at IS NULL AND people_exception NOT IN ('encrypted', 'risk_removed') \
         AND {}",
        breaches::OWN_DECISIONS
    );
    let orgs = log_orgs(&sources.rgpd, actor, "rgpd_breaches", &untold, Due { column: "aware_at", by: None }).await?;
    let untold = breaches_untold(&sources.rgpd, &orgs).await?;
    push("violations-personnes", "Violations à risque élevé : personnes concernées à informer (article 34)", untold);
    // The stored `due_on` of an open request may be a date an earlier rule wrote (up to three days
    // after the one `requests::list` computes): read with that margin, each then judged as read.
    let close = Duration::days(REQUEST_CLOSE_DAYS + STORED_DUE_MARGIN_DAYS);
    let request_due = (today_in_france(now) + close).to_string();
    let unanswered = "status NOT IN ('answered', 'rejected')";
    let due_on = Due { column: "due_on", by: Some(&request_due) };
    let orgs = log_orgs(&sources.rgpd, actor, "rgpd_requests", unanswered, due_on).await?;
    let requests = requests_due(&sources.rgpd, &orgs, now).await?;
    push("demandes-rgpd", "Demandes d'exercice des droits sans réponse (échéance proche ou dépassée)", requests);
    Ok(found)
}

/// `/notifications`.
async fn page(On { console, state, signed }: On<Sources>) -> Result<Response, PageError> {
    let groups = groups(&state, &signed).await?;
    let total: usize = groups.iter().map(|g| g.items.len()).sum();
    let shell = Shell::new(&console, Some(&signed.0), "/notifications").crumbs(&[("Notifications", "/notifications")]);
    Ok(page::render("notifications.html", shell, serde_json::json!({ "groups": groups, "total": total })))
}

/// `/notifications/compte`: the count the header shows (` (3)`, or nothing).
async fn count(On { state, signed, .. }: On<Sources>) -> Result<Response, PageError> {
    let total: usize = groups(&state, &signed).await?.iter().map(|g| g.items.len()).sum();
    let text = if total == 0 { String::new() } else { format!(" ({total})") };
    Ok(Html(text).into_response())
}
