//! « Support »: the support desk in the console. The queue of the level the person
//! works at (or the requester's own tickets), sorted by the next due date with the
//! time left in business hours and a mark when breached; the form that opens a ticket
//! (tenant pre-selected from the person's school or commune, the priority that impact
//! and urgency give previewed through htmx); and a ticket's page: its history as a
//! timeline (internal notes marked, never shown to the requester nor the vendor), the
//! SLA clock of each level, and the moves the person may make. Every rule is the
//! support domain's (`ent_support::support::tickets`): the pages only call it.

use crate::forms::{answer, Fields, On, Reply};
use crate::list::{self, Cell, Column, Filter, ListParams, ListSpec, ListView};
use crate::multipart::Posted;
use crate::page::{self, Notice, PageError, Shell};
use crate::submission::{self, Claim};
use crate::ticket_files::{self, FILES_FIELD};
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use chrono::{DateTime, Utc};
use ent_kernel::clock::french_moment;
use ent_kernel::error::Problem;
use ent_kernel::http::FromRef;
use ent_kernel::store::{parse_timestamp, Condition};
use ent_platform::identity::authz::{self, SUPPORT_COMMENT, SUPPORT_CREATE, SUPPORT_HANDLE, SUPPORT_READ};
use ent_platform::identity::{shown_actor, Actor};
use ent_platform::registry::queries::{get_org, Relatives};
use ent_support::support::attachments;
use ent_support::support::calendar::Place;
use ent_support::support::sla::SlaState;
use ent_support::support::tickets::{
    self, Ctx, EscalateInput, HistoryEntry, NewComment, NewTicket, ReturnInput, Ticket, TicketPatch, TransitionInput,
    Written,
};
use ent_support::support::{
    at_levels, levels_of, places_of, requester_status_condition, support_condition, Category, Level, Status,
    SupportState, Viewer, REQUESTER_STATUS_SQL,
};
use serde_json::{json, Value};

/// The pages of this screen.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<ConsoleRoute<S>>
where
    ConsoleState: FromRef<S>,
    SupportState: FromRef<S>,
{
    vec![
        route(Method::GET, "/tickets", Access::Signed(&SUPPORT_READ), get(queue)),
        route(Method::GET, "/tickets/nouveau", Access::Signed(&SUPPORT_CREATE), get(new_form)),
        route(Method::POST, "/tickets/nouveau", Access::Signed(&SUPPORT_CREATE), post(open)),
        route(Method::GET, "/tickets/priorite", Access::Signed(&SUPPORT_CREATE), get(priority_preview)),
        route(Method::GET, "/tickets/{ticket}", Access::Signed(&SUPPORT_READ), get(show)),
        route(Method::POST, "/tickets/{ticket}/commentaire", Access::Signed(&SUPPORT_COMMENT), post(comment)),
        route(Method::GET, "/tickets/{ticket}/pieces-jointes/{fichier}", Access::Signed(&SUPPORT_READ), get(download)),
        route(Method::POST, "/tickets/{ticket}/statut", Access::Signed(&SUPPORT_HANDLE), post(move_status)),
        route(Method::POST, "/tickets/{ticket}/escalade", Access::Signed(&SUPPORT_HANDLE), post(escalate)),
        route(Method::POST, "/tickets/{ticket}/renvoi", Access::Signed(&SUPPORT_HANDLE), post(return_down)),
        route(Method::POST, "/tickets/{ticket}/affectation", Access::Signed(&SUPPORT_HANDLE), post(assign)),
    ]
}

const STATUSES: &[(&str, &str)] = &[
    ("new", "nouveau"),
    ("in_progress", "en cours"),
    ("waiting_requester", "en attente du demandeur"),
    ("resolved", "résolu"),
    ("closed", "clos"),
];
const PRIORITIES: &[(&str, &str)] = &[("P1", "P1"), ("P2", "P2"), ("P3", "P3"), ("P4", "P4")];
const LEVELS: &[(&str, &str)] = &[("n1", "N1"), ("n2", "N2"), ("n3", "N3")];
const CATEGORIES: &[(&str, &str)] = &[
    ("acces", "Accès, authentification"),
    ("service", "Un service"),
    ("donnees", "Données, RGPD"),
    ("autre", "Autre"),
];
const ASSIGNEES: &[(&str, &str)] = &[("moi", "Moi"), ("personne", "Personne")];
/// Impact and urgency in words: the value the domain knows, and what the form says.
const IMPACTS: &[(&str, &str)] = &[("haute", "élevé"), ("moyenne", "moyen"), ("basse", "faible")];
const URGENCIES: &[(&str, &str)] = &[("haute", "élevée"), ("moyenne", "moyenne"), ("basse", "faible")];

const BY_STATUS: Filter = Filter { key: "statut", label: "Statut", choices: STATUSES };
const BY_PRIORITY: Filter = Filter { key: "priorite", label: "Priorité", choices: PRIORITIES };
const BY_TENANT: Filter = Filter { key: "ent", label: "ENT (nom court)", choices: &[] };
const BY_CATEGORY: Filter = Filter { key: "categorie", label: "Catégorie", choices: CATEGORIES };
const BY_ASSIGNEE: Filter = Filter { key: "affecte", label: "Affecté à", choices: ASSIGNEES };
const BY_LEVEL: Filter = Filter { key: "niveau", label: "Niveau", choices: LEVELS };
/// The filter that turns a support person's queue into the tickets they opened, as their requester.
const OPENED: Filter = Filter { key: "ouverts", label: "Ouverts par vous", choices: &[("oui", "Oui")] };
/// A support person's queue filters: status, priority, tenant, category, assignee, level, and
/// « ouverts par vous » ([`OPENED`]).
const SUPPORT_FILTERS: [Filter; 7] = [BY_STATUS, BY_PRIORITY, BY_TENANT, BY_CATEGORY, BY_ASSIGNEE, BY_LEVEL, OPENED];

/// The queue of the levels a support person works at: the tickets they see as support, the
/// next due date first.
pub const QUEUE: ListSpec = ListSpec {
    columns: &[
        Column { key: "reference", label: "Référence", order_by: Some("t.reference") },
        Column { key: "sujet", label: "Sujet", order_by: None },
        Column { key: "ent", label: "ENT", order_by: Some("te.slug") },
        Column { key: "priorite", label: "Priorité", order_by: Some("t.priority") },
        Column { key: "statut", label: "Statut", order_by: Some("t.status") },
        Column { key: "niveau", label: "Niveau", order_by: Some("t.level") },
        Column { key: "affecte", label: "Affecté à", order_by: None },
        Column { key: "echeance", label: "Prochaine échéance", order_by: Some("COALESCE(t.next_due, '9999')") },
    ],
    filters: &SUPPORT_FILTERS,
    default_sort: "echeance",
    tie_break: "t.id",
    search: Some("Référence ou sujet"),
    // Tickets come and go while the queue is read: it pages by cursor.
    keyset: true,
};

/// The columns of the tickets a person opened, as their requester reads them (`Ticket::seen_by`):
/// nothing of the routing to show or sort by (no level, assignee nor due date), the status sorted
/// as they read it.
const OWN_COLUMNS: [Column; 5] = [
    Column { key: "reference", label: "Référence", order_by: Some("t.reference") },
    Column { key: "sujet", label: "Sujet", order_by: None },
    Column { key: "ent", label: "ENT", order_by: Some("te.slug") },
    Column { key: "priorite", label: "Priorité", order_by: Some("t.priority") },
    Column { key: "statut", label: "Statut", order_by: Some(REQUESTER_STATUS_SQL) },
];

/// A requester's filters: nothing of the routing either (no assignee nor level).
const OWN_FILTERS: [Filter; 4] = [BY_STATUS, BY_PRIORITY, BY_TENANT, BY_CATEGORY];

/// A requester's tickets (the newest last, by reference).
pub const OWN: ListSpec = ListSpec { columns: &OWN_COLUMNS, filters: &OWN_FILTERS, default_sort: "reference", ..QUEUE };

/// The tickets a support person opened ([`OPENED`]), as [`OWN`] (its filter kept in the links).
const OWN_OF_SUPPORT: ListSpec = ListSpec { filters: &SUPPORT_FILTERS, ..OWN };

fn label_of(choices: &[(&str, &'static str)], value: &str) -> String {
    choices.iter().find(|(v, _)| *v == value).map_or_else(|| value.to_string(), |(_, l)| (*l).to_string())
}

fn ctx<'a>(state: &'a SupportState, actor: &'a Actor) -> Ctx<'a> {
    Ctx { state, actor, now: state.clock.now() }
}

/// The support levels the person works at (by role), lowest first.
pub(crate) fn work_levels(actor: &Actor) -> Vec<Level> {
    let mut levels: Vec<Level> = Level::ALL
        .into_iter()
        .filter(|l| actor.is_admin() || actor.bindings.iter().any(|b| b.role == l.role()))
        .collect();
    levels.dedup();
    levels
}

/// `3 h 20` of business time.
fn business_duration(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m:02}"),
    }
}

/// What is left before a due date, in business hours, or the mark of a breach.
#[derive(serde::Serialize)]
struct Left {
    late: bool,
    text: String,
}

/// What is left before `due` in the business hours of `policy` at `level` for a ticket
/// of a school at `place` (its territory's holidays, its time zone, its school pause:
/// the calendar its due dates were computed in).
fn time_left(
    state: &SupportState,
    policy: &str,
    level: Level,
    place: &Place,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Left {
    if due <= now {
        return Left { late: true, text: "en retard".into() };
    }
    let seconds = state.support.calendar_at(policy, level, place).business_seconds(now, due);
    Left { late: false, text: format!("{} ouvrées", business_duration(seconds)) }
}

/// The queue's due cell: the time left before the next due date, « en retard » when a
/// delay of the ticket is breached.
fn due_cell(state: &SupportState, t: &Queued, place: &Place, now: DateTime<Utc>) -> String {
    let due = t.next_due.as_deref().and_then(parse_timestamp);
    match (due, Level::parse(&t.level)) {
        (Some(due), Some(level)) => {
            let left = time_left(state, &t.policy, level, place, due, now);
            if t.breaches > 0 && !left.late {
                format!("en retard ({} avant l'échéance suivante)", left.text)
            } else {
                left.text
            }
        }
        _ if t.breaches > 0 => "en retard".into(),
        _ => "aucune".into(),
    }
}

/// A ticket in the queue.
#[derive(sqlx::FromRow)]
struct Queued {
    reference: String,
    subject: String,
    tenant: String,
    priority: String,
    status: String,
    level: String,
    policy: String,
    org_id: String,
    next_due: Option<String>,
    breaches: i64,
    assignee: Option<String>,
}

/// The condition of the queue's filters and of what the person works on: as support, the tickets
/// they see as support at the levels they work at; as requester (`own`), the tickets they opened,
/// filtered on what they read of them (the status as `Status::seen_by_requester` gives it; the
/// assignee and the level, the support's, match none).
fn queue_condition(actor: &Actor, params: &ListParams, own: bool) -> Condition {
    let mut cond = Condition::default();
    let simple = [("priorite", "t.priority = ?"), ("ent", "te.slug = ?"), ("categorie", "t.category = ?")];
    for (key, sql) in simple {
        if let Some(value) = params.filter(key) {
            cond.push(sql, &[value]);
        }
    }
    if let Some(status) = params.filter("statut").and_then(Status::parse) {
        if own {
            cond.and(requester_status_condition(status));
        } else {
            cond.push("t.status = ?", &[status.as_str()]);
        }
    }
    if let Some(q) = &params.q {
        let pattern = list::contains_pattern(q);
        cond.push("(LOWER(t.reference) LIKE ? OR LOWER(t.subject) LIKE ?)", &[&pattern, &pattern]);
    }
    if own {
        let me = actor.user_id.as_deref().unwrap_or("");
        cond.push("t.requester_id = ?", &[me]);
        // The assignee and the level are the support's: a requester is told neither who handles
        // their ticket, nor whether someone does, nor which level holds it.
        if params.filter("affecte").is_some() || params.filter("niveau").is_some() {
            cond.and(Condition::never());
        }
        return cond;
    }
    match params.filter("affecte") {
        Some("moi") => cond.push("t.assignee_id = ?", &[actor.user_id.as_deref().unwrap_or("")]),
        Some("personne") => cond.push("t.assignee_id IS NULL", &[]),
        _ => {}
    }
    match params.filter("niveau") {
        Some(level) => cond.push("t.level = ?", &[level]),
        // A support person sees the queue of the levels they work at.
        None if !actor.is_admin() => cond.and(at_levels("t.level", &work_levels(actor))),
        None => {}
    }
    if let Some(support) = support_condition(actor) {
        cond.and(support);
    }
    cond
}

/// `/tickets`: the queue of the person's level(s), or the tickets they opened (a requester's
/// only list; `ouverts=oui` for a support person), each as they read it.
async fn queue(
    On { console, state, signed }: On<SupportState>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let actor = &signed.0.actor;
    let support = !work_levels(actor).is_empty();
    let opened = ListParams::parse(&QUEUE, &query.0).filter(OPENED.key) == Some("oui");
    let own = !support || opened;
    let spec = match (support, own) {
        (false, _) => &OWN,
        (true, true) => &OWN_OF_SUPPORT,
        (true, false) => &QUEUE,
    };
    let params = ListParams::parse(spec, &query.0);
    let cond = queue_condition(actor, &params, own);
    let columns = "t.reference, t.subject, te.slug AS tenant, t.priority, t.status, t.level, t.policy, \
                   t.tenant_org_id AS org_id, t.next_due, t.breaches, u.display_name AS assignee";
    let from = "support_tickets t JOIN tenants te ON te.id = t.tenant_id LEFT JOIN users u ON u.id = t.assignee_id";
    let listed = list::fetch::<Queued>(&state.store, spec, &params, columns, from, &cond).await?;
    let now = state.clock.now();
    let places = if own {
        Default::default()
    } else {
        let orgs: std::collections::BTreeSet<String> = listed.page.items.iter().map(|t| t.org_id.clone()).collect();
        places_of(&state.store, orgs.into_iter().collect()).await?
    };
    let rows = listed
        .page
        .items
        .iter()
        .map(|t| {
            let mut cells = vec![
                Cell::link(t.reference.clone(), format!("/tickets/{}", t.reference)),
                Cell::text(t.subject.clone()),
                Cell::text(t.tenant.clone()),
                Cell::text(t.priority.clone()),
                Cell::text(label_of(STATUSES, &status_seen(t, !own))),
            ];
            // The level, the assignee and the due date are the support's (`Ticket::seen_by`).
            if !own {
                let place = places.get(&t.org_id).cloned().unwrap_or_default();
                cells.push(Cell::text(label_of(LEVELS, &t.level)));
                cells.push(Cell::text(t.assignee.clone().unwrap_or_else(|| "—".into())));
                cells.push(Cell::text(due_cell(&state, t, &place, now)));
            }
            cells
        })
        .collect();
    let caption = if own { "Vos tickets" } else { "Tickets de votre file" };
    let view = ListView::new("tickets", "/tickets", caption, spec, &params, &listed, rows);
    let shell = Shell::new(&console, Some(&signed.0), "/tickets").crumbs(&[("Support", "/tickets")]);
    let levels: Vec<&str> = work_levels(actor).iter().map(|l| l.label()).collect();
    let values = json!({
        "list": view,
        "levels": levels.join(", "),
        "own": own,
        "can_open": authz::role_allows(actor, &SUPPORT_CREATE),
    });
    Ok(page::render("tickets.html", shell, values))
}

/// The status of a queued ticket as the person reads it: as support, as stored; as its
/// requester, as `Status::seen_by_requester` says (an escalated ticket is in progress).
fn status_seen(t: &Queued, as_support: bool) -> String {
    match (Status::parse(&t.status), Level::parse(&t.level)) {
        (Some(status), Some(level)) if !as_support => status.seen_by_requester(level).as_str().to_string(),
        _ => t.status.clone(),
    }
}

// --- opening a ticket -----------------------------------------------------------------

/// The tenants the person may open a ticket on (the domain's `may_open`): those of their
/// scope and those of every organisation covering their school — the collectivité funding
/// it first, then its commune even when the commune delegates its ENT to a group (a
/// commune-wide ENT still serves its écoles), the group, the académie. The person's own
/// organisation comes first.
async fn candidate_tenants(state: &SupportState, actor: &Actor) -> Result<Vec<(String, String)>, Problem> {
    let mut parts = Vec::new();
    if let Some(scope) = authz::scope(actor, &SUPPORT_CREATE).condition() {
        let mut c = Condition::default();
        c.and_wrapped("t.org_id IN (SELECT id FROM orgs WHERE ", scope, ")");
        parts.push(c);
    } else {
        let mut c = Condition::default();
        c.push("1 = 1", &[]);
        parts.push(c);
    }
    let mut own = Vec::new();
    for b in actor.bindings.iter().filter(|b| SUPPORT_CREATE.roles.contains(&b.role)) {
        let Some(org) = &b.org else { continue };
        own.push(org.id.clone());
        let Some(org) = get_org(&state.store, &org.id).await? else { continue };
        let relatives = Relatives::of(&state.store, &org).await?;
        let funder = relatives.funding(&org);
        let parents = relatives.covering_parents(&org);
        for parent in funder.iter().chain(parents.iter().filter(|p| Some(&p.id) != funder.as_ref().map(|f| &f.id))) {
            let mut c = Condition::default();
            c.push("t.org_id = ?", &[&parent.id]);
            parts.push(c);
            own.push(parent.id.clone());
        }
    }
    let mut cond = Condition::any(parts);
    cond.push("t.status NOT IN ('archived', 'purged')", &[]);
    let sql = format!(
        "SELECT t.slug, o.name, t.org_id FROM tenants t JOIN orgs o ON o.id = t.org_id WHERE {} ORDER BY t.slug",
        cond.sql()
    );
    let rows: Vec<(String, String, String)> =
        cond.bind(sqlx::query(&sql)).fetch_all(state.store.pool()).await?.iter().map(row3).collect::<Result<_, _>>()?;
    let mut tenants: Vec<(usize, String, String)> = rows
        .into_iter()
        .map(|(slug, name, org)| (own.iter().position(|o| *o == org).unwrap_or(usize::MAX), slug, name))
        .collect();
    tenants.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(tenants.into_iter().map(|(_, slug, name)| (slug, name)).collect())
}

fn row3(row: &sqlx::any::AnyRow) -> Result<(String, String, String), sqlx::Error> {
    use sqlx::Row;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// The priority impact × urgency give (the domain's matrix), in words.
fn priority_text(state: &SupportState, impact: &str, urgency: &str) -> String {
    match state.support.priority(impact, urgency) {
        Some(p) => format!("Priorité qui en résulte : {}", p.as_str()),
        None => "Choisissez l'impact et l'urgence pour connaître la priorité.".to_string(),
    }
}

/// `/tickets/priorite?impact=…&urgence=…`: the preview the form updates through htmx.
async fn priority_preview(On { state, .. }: On<SupportState>, Query(query): Query<Fields>) -> Response {
    Html(escape(&priority_text(&state, query.get("impact"), query.get("urgence")))).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The id of the control of a field of `NewTicket`.
fn control_id(field: &str) -> String {
    match field {
        "tenant" => "ent",
        "subject" => "sujet",
        "category" => "categorie",
        "service" => "service",
        "impact" => "impact",
        "urgency" => "urgence",
        "description" => "description",
        FILES_FIELD => FILES_FIELD,
        _ => "nouveau-ticket",
    }
    .to_string()
}

/// The label of a field of `NewTicket` on the form, as the error summary names it.
fn field_label(field: &str) -> Option<&'static str> {
    let label = match field {
        "tenant" => "ENT concerné",
        "subject" => "Sujet",
        "category" => "Catégorie",
        "service" => "Service concerné",
        "impact" => "Impact",
        "urgency" => "Urgence",
        "description" => "Description",
        FILES_FIELD => "Pièces jointes",
        _ => return None,
    };
    Some(label)
}

/// The fields of `NewTicket` in the order the form shows their controls: the order of its error
/// summary (RGAA 11.10).
const FORM_ORDER: [&str; 8] =
    ["tenant", "subject", "category", "service", "impact", "urgency", "description", FILES_FIELD];

async fn open_page(on: &On<SupportState>, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.in_order_of(FORM_ORDER).labelled(field_label);
    let On { console, state, signed } = on;
    let tenants = candidate_tenants(state, &signed.0.actor).await?;
    let chosen = fields.opt("ent").or_else(|| tenants.first().map(|(slug, _)| slug.clone()));
    let tenants: Vec<Value> = tenants
        .iter()
        .map(|(slug, name)| json!({ "value": slug, "label": format!("{slug} — {name}"), "selected": Some(slug) == chosen.as_ref() }))
        .collect();
    let pick = |name: &str, default: &str| fields.opt(name).unwrap_or_else(|| default.to_string());
    let (impact, urgency, category) =
        (pick("impact", "moyenne"), pick("urgence", "moyenne"), pick("categorie", "acces"));
    let grades = |words: &[(&str, &str)], chosen: &str| -> Vec<Value> {
        words.iter().map(|(v, l)| json!({ "value": v, "label": l, "checked": *v == chosen })).collect()
    };
    let categories: Vec<Value> =
        CATEGORIES.iter().map(|(v, l)| json!({ "value": v, "label": l, "selected": *v == category })).collect();
    // The services the chosen ENT runs (the domain refuses any other), the whole catalog when
    // it no longer resolves them.
    let run = match &chosen {
        Some(slug) => tickets::services_of_tenant(state, &signed.0.actor, slug).await?.unwrap_or_default(),
        None => Vec::new(),
    };
    let services: Vec<Value> = state
        .catalog
        .services
        .iter()
        .filter(|s| run.is_empty() || run.contains(&s.code))
        .map(|s| json!({ "value": s.code, "label": s.name, "selected": fields.get("service") == s.code }))
        .collect();
    let shell = Shell::new(console, Some(&signed.0), "/tickets")
        .crumbs(&[("Support", "/tickets"), ("Ouvrir un ticket", "/tickets/nouveau")])
        .notice(refusal.notice.clone());
    let values = json!({
        "tenants": tenants,
        "categories": categories,
        "services": services,
        "grades": [
            { "name": "impact", "legend": "Impact : combien de personnes sont gênées ?", "items": grades(IMPACTS, &impact) },
            { "name": "urgence", "legend": "Urgence : à quel point est-ce pressant ?", "items": grades(URGENCIES, &urgency) },
        ],
        "priority": priority_text(state, &impact, &urgency),
        "fields": { "sujet": fields.get("sujet"), "description": fields.get("description") },
        "errors": refusal.errors,
        "error": {
            "ent": refusal.message("tenant"), "sujet": refusal.message("subject"),
            "categorie": refusal.message("category"), "service": refusal.message("service"),
            "description": refusal.message("description"), "pieces": refusal.message(FILES_FIELD),
        },
        "accepted": attachments::ACCEPTED,
        "envoi": submission::token(fields),
    });
    Ok(page::render_status(status, "ticket_new.html", shell, values))
}

/// `/tickets/nouveau`.
async fn new_form(on: On<SupportState>, Query(query): Query<Fields>) -> Result<Response, PageError> {
    open_page(&on, Reply::shown(&query, None)).await
}

/// Posted form: the ticket is opened by the domain, its files joined, and its page shown.
/// The form's one-time token makes a second post of it (a double click) open the ticket
/// the first one opened rather than another.
async fn open(on: On<SupportState>, headers: HeaderMap, body: Body) -> Result<Response, PageError> {
    let Posted { fields, files } = ticket_files::posted(&headers, body).await?;
    let On { state, signed, .. } = &on;
    let submission =
        match submission::claim(&state.store, &signed.0.actor, "tickets", &fields, state.clock.now()).await? {
            Claim::First(submission) => submission,
            Claim::Done(answer) => return Ok(answer),
        };
    let files = match ticket_files::checked(files) {
        Ok(files) => files,
        Err(problem) => {
            submission.release().await?;
            return open_page(&on, Reply::refused(&fields, &problem, control_id)).await;
        }
    };
    let new = NewTicket {
        tenant: fields.get("ent").to_string(),
        subject: fields.get("sujet").to_string(),
        description: fields.get("description").to_string(),
        category: fields.get("categorie").to_string(),
        service: fields.opt("service").filter(|_| fields.get("categorie") == Category::Service.as_str()),
        impact: fields.get("impact").to_string(),
        urgency: fields.get("urgence").to_string(),
        priority: None,
    };
    let context = ctx(state, &signed.0.actor);
    match submission.run(tickets::create(&context, new)).await {
        Ok(ticket) => {
            let after = if ticket.warning.is_some() { WARNED } else { "ouvert" };
            let location = format!("/tickets/{}?apres={after}", ticket.reference);
            submission.done(&location).await?;
            attachments::attach(&context, &ticket.id, true, files).await?;
            Ok(page::redirect(&location))
        }
        Err(problem) => {
            submission.release().await?;
            if problem.kind.status().is_server_error() {
                return Err(problem.into());
            }
            open_page(&on, Reply::refused(&fields, &problem, control_id)).await
        }
    }
}

// --- a ticket's page --------------------------------------------------------------------

/// What an entry of the history says.
fn entry_view(e: &HistoryEntry) -> Value {
    // Flagged where the support alone reads it: a note, an escalation or a return kept from the vendor.
    let internal = e.visibility == "internal"
        && !matches!(e.kind.as_str(), "created" | "status" | "updated" | "priority" | "breach");
    json!({
        "at": french_moment(&e.at),
        "actor": shown_actor(&e.actor),
        "level": e.actor_level.map(|l| l.label()),
        "title": e.title,
        "internal": internal,
        "body": e.body.clone().filter(|_| e.kind != "updated"),
    })
}

/// The clock of each level the ticket went through.
fn clocks(state: &SupportState, ticket: &Ticket, sla: &SlaState, place: &Place, now: DateTime<Utc>) -> Vec<Value> {
    sla.levels
        .iter()
        .map(|c| {
            let left =
                |due: Option<DateTime<Utc>>| due.map(|d| time_left(state, &ticket.policy, c.level, place, d, now));
            json!({
                "level": c.level.label(),
                "held": business_duration(c.held_seconds),
                "first_response": match c.first_response_seconds {
                    Some(s) => format!("donnée en {}", business_duration(s)),
                    None => "pas encore donnée".to_string(),
                },
                "first_response_target": business_duration(c.first_response_target_seconds),
                "first_response_left": left(c.first_response_due),
                "resolution": match c.resolution_seconds {
                    Some(s) => format!("en {}", business_duration(s)),
                    None => "pas encore".to_string(),
                },
                "resolution_target": business_duration(c.resolution_target_seconds),
                "resolution_left": left(c.resolution_due),
            })
        })
        .collect()
}

/// What the person may do on the ticket, as the page offers it.
struct Moves {
    acting: bool,
    statuses: Vec<Value>,
}

fn status_button(to: Status, from: Status) -> &'static str {
    match (from, to) {
        (Status::WaitingRequester, Status::InProgress) => "Reprendre (fin de la pause)",
        (Status::Resolved, Status::InProgress) => "Rouvrir",
        (_, Status::InProgress) => "Prendre en charge",
        (_, Status::WaitingRequester) => "Mettre en pause : attendre le demandeur",
        (_, Status::Resolved) => "Résoudre",
        (_, Status::Closed) => "Clore",
        (_, Status::New) => "",
    }
}

async fn moves(state: &SupportState, actor: &Actor, row: &Ticket, viewer: Viewer) -> Result<Moves, Problem> {
    if viewer == Viewer::Requester {
        let statuses = if row.status == Status::Resolved {
            vec![json!({ "to": "closed", "label": "Clore le ticket" })]
        } else {
            Vec::new()
        };
        return Ok(Moves { acting: false, statuses });
    }
    let acting = levels_of(&state.store, actor, row).await?.contains(&row.level);
    let mut statuses: Vec<Value> = if acting {
        Status::ALL
            .into_iter()
            .filter(|to| row.status.staff_may_move(row.level, *to))
            .map(|to| json!({ "to": to.as_str(), "label": status_button(to, row.status) }))
            .collect()
    } else {
        Vec::new()
    };
    // A member of the support who opened the ticket closes it once resolved, as any requester.
    if row.status == Status::Resolved && actor.user_id.as_deref() == Some(row.requester_id.as_str()) {
        statuses.push(json!({ "to": "closed", "label": "Clore le ticket" }));
    }
    Ok(Moves { acting, statuses })
}

/// `?apres=…` after opening a ticket with a warning (`Ticket::warning`): the page's notice
/// says its history's public warnings ([`warned_notice`]).
const WARNED: &str = "ouvert-avec-avertissement";

/// The notices of `/tickets/{ticket}` after `?apres=…`, besides those of a comment ([`notice_after`]).
const NOTICES: &[(&str, &str)] = &[
    ("ouvert", "Votre ticket est ouvert : le support vous répondra ici et par courriel."),
    ("statut", "Le statut du ticket est changé."),
    ("escalade", "Le ticket est escaladé au niveau supérieur."),
    ("renvoi", "Le ticket est renvoyé au niveau inférieur avec votre réponse."),
    ("affectation", "Le ticket est affecté."),
];

async fn show(
    on: On<SupportState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    ticket_page(&on, &key, Reply::shown(&query, notice_after(query.get("apres")))).await
}

/// The notice after `?apres=after`: a comment's says what it did, to whom ([`Written`]: a reply
/// sent to the requester, a note only the N1 and the N2 read, the vendor's note to the support…).
fn notice_after(after: &str) -> Option<Notice> {
    match Written::ALL.into_iter().find(|w| w.key() == after) {
        Some(written) => Some(Notice::success(written.confirmation())),
        None => Notice::after(after, NOTICES),
    }
}

/// The notice after opening a ticket with a warning (`?apres=`[`WARNED`]): the public
/// warnings of its history, as the creation's answer said them (`Ticket::warning`).
fn warned_notice(fields: &Fields, history: &[HistoryEntry]) -> Option<Notice> {
    if fields.get("apres") != WARNED {
        return None;
    }
    let public = history.iter().filter(|e| e.kind == "warning" && e.visibility == "public");
    let said: Vec<&str> = public.filter_map(|e| e.body.as_deref()).collect();
    (!said.is_empty()).then(|| Notice::info(format!("Avertissement : {}", said.join(" "))))
}

/// The label of a field of the ticket page's forms, as the error summary names it.
fn ticket_label(field: &str) -> Option<&'static str> {
    let label = match field {
        "body" => "Message",
        "message" => "Message au demandeur",
        "reason" => "Motif de l'escalade",
        "answer" => "Réponse pour le niveau inférieur",
        "assignee" => "Affecter à",
        FILES_FIELD => "Joindre des fichiers",
        _ => return None,
    };
    Some(label)
}

/// The service a ticket is about, as the catalog names it (« Vie scolaire (notes et absences) »),
/// its code when the catalog no longer has it.
fn service_name(state: &SupportState, code: Option<&str>) -> Option<String> {
    code.map(|code| state.catalog.service(code).map_or_else(|| code.to_string(), |s| s.name.clone()))
}

async fn ticket_page(on: &On<SupportState>, key: &str, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.labelled(ticket_label);
    let On { console, state, signed } = on;
    let actor = &signed.0.actor;
    let context = ctx(state, actor);
    let (row, viewer) = tickets::find(&state.store, actor, key).await?;
    let ticket = tickets::get(&context, &row.id).await?;
    let entries = tickets::history(&context, &row.id).await?;
    let notice = refusal.notice.clone().or_else(|| warned_notice(fields, &entries));
    let history: Vec<Value> = entries.iter().map(entry_view).collect();
    let files: Vec<Value> = attachments::list(&context, &row.id)
        .await?
        .iter()
        .map(|a| {
            json!({
                "name": a.file_name, "size": ticket_files::size_text(a.size), "by": a.uploaded_by,
                "at": french_moment(&a.created_at), "internal": a.visibility == "internal",
                "href": format!("/tickets/{}/pieces-jointes/{}", row.reference, a.id),
            })
        })
        .collect();
    let org = ticket.organisation.id.clone();
    let place = places_of(&state.store, vec![org.clone()]).await?.remove(&org).unwrap_or_default();
    let clocks = match &ticket.sla {
        Some(sla) => clocks(state, &ticket, sla, &place, context.now),
        None => Vec::new(),
    };
    let progress = (viewer == Viewer::Requester).then(|| requester_progress(state, &row, &place)).flatten();
    let moves = moves(state, actor, &row, viewer).await?;
    // Only the N1 writes to the requester (`tickets::refuse_public_above_n1`): above it, the
    // page offers a note to the support, not a reply.
    let levels = levels_of(&state.store, actor, &row).await?;
    let writes_to_requester =
        viewer == Viewer::Requester || tickets::writing_level(&levels, &row).is_none_or(|l| l == Level::N1);
    let path = format!("/tickets/{}", ticket.reference);
    let shell = Shell::new(console, Some(&signed.0), "/tickets")
        .crumbs(&[("Support", "/tickets"), (&ticket.reference, &path)])
        .notice(notice);
    let open = ticket.status != Status::Closed;
    let values = json!({
        "title": format!("Ticket {} — {}", ticket.reference, ticket.subject),
        "path": path,
        "ticket": {
            "reference": ticket.reference, "subject": ticket.subject, "description": ticket.description,
            "tenant": ticket.tenant, "organisation": ticket.organisation.name,
            "requester": ticket.requester.name, "pseudonymous": ticket.requester.pseudonymous,
            "category": label_of(CATEGORIES, &ticket.category), "service": service_name(state, ticket.service.as_deref()),
            "impact": label_of(IMPACTS, &ticket.impact), "urgency": label_of(URGENCIES, &ticket.urgency),
            "priority": ticket.priority.as_str(), "level": ticket.shown_level.map(|l| l.label()),
            "status": ticket.status.label(), "assignee": ticket.assignee, "team": ticket.assigned_team,
            "version": ticket.version, "flag": ticket.convention_flag,
        },
        "progress": progress,
        "viewer": match viewer { Viewer::Staff => "staff", Viewer::Vendor => "vendor", Viewer::Requester => "requester" },
        "history": history,
        "files": files,
        "accepted": attachments::ACCEPTED,
        "envoi": submission::token(fields),
        "clocks": clocks,
        "can_comment": open,
        "can_reply": open && writes_to_requester,
        "can_note": open && viewer != Viewer::Requester,
        "vendor": viewer == Viewer::Vendor,
        "can_message": viewer != Viewer::Requester && row.level == Level::N1,
        "acting": moves.acting && open,
        "statuses": moves.statuses,
        "can_escalate": moves.acting && ticket.level.up().is_some(),
        "share_option": ticket.level == Level::N2,
        "can_return": moves.acting && ticket.level.down().is_some(),
        "can_assign": moves.acting && open,
        "fields": {
            "message": fields.get("message"), "message_statut": fields.get("message_statut"), "motif": fields.get("motif"),
            "reponse": fields.get("reponse"), "affecte": fields.get("affecte"),
        },
        "errors": refusal.errors,
        "error": {
            "message": refusal.message("body"), "motif": refusal.message("reason"),
            "reponse": refusal.message("answer"), "affecte": refusal.message("assignee"),
            "pieces": refusal.message(FILES_FIELD),
        },
    });
    Ok(page::render_status(status, "ticket.html", shell, values))
}

/// What the requester reads of where their open ticket stands: who handles it (its level in
/// their words, `Level::handled_by`) and when the next step is due, in the time of the calendar
/// it is counted in (`tickets::due_moment`, as the e-mails write it): their first response
/// until they are answered, else the resolution the holding level aims at; the pause said.
fn requester_progress(state: &SupportState, row: &Ticket, place: &Place) -> Option<Value> {
    if !matches!(row.status, Status::New | Status::InProgress | Status::WaitingRequester) {
        return None;
    }
    let due = |stored: &Option<String>, level: Level| {
        let due = stored.as_deref().and_then(parse_timestamp)?;
        Some(tickets::due_moment(due, state.support.calendar_at(&row.policy, level, place).tz))
    };
    let next = match row.status {
        Status::WaitingRequester => {
            Some("Le support attend votre réponse : le délai de traitement est suspendu jusqu'à celle-ci.".to_string())
        }
        _ => match (due(&row.first_response_due, Level::N1), due(&row.resolution_due, row.level)) {
            (Some(first), _) => Some(format!("Première réponse attendue au plus tard le {first}.")),
            (None, Some(resolution)) => Some(format!("Résolution visée au plus tard le {resolution}.")),
            (None, None) => None,
        },
    };
    Some(json!({ "handled_by": row.level.handled_by(), "next": next }))
}

/// The id of the control of a field of the ticket page's forms.
fn ticket_control(field: &str) -> String {
    match field {
        "body" => "message",
        "message" => "message-statut",
        "reason" => "motif",
        "answer" => "reponse",
        "assignee" => "affecte",
        FILES_FIELD => FILES_FIELD,
        _ => "actions",
    }
    .to_string()
}

/// The tail of every form of the ticket page: back to the page (`after` says what was
/// done) or the page again with the domain's refusal.
async fn answered(
    on: &On<SupportState>,
    key: &str,
    fields: &Fields,
    done: Result<Ticket, Problem>,
    after: &str,
) -> Result<Response, PageError> {
    answer(
        done,
        |ticket| format!("/tickets/{}?apres={after}", ticket.reference),
        async |problem| ticket_page(on, key, Reply::refused(fields, &problem, ticket_control)).await,
    )
    .await
}

/// The version the form was shown at (`If-Match` of the API).
fn version(fields: &Fields) -> Result<i64, Problem> {
    fields
        .get("version")
        .parse()
        .map_err(|_| Problem::invalid_field("version", "version du ticket absente du formulaire : rechargez la page"))
}

/// A form of the ticket page: the ticket found as the person may see it (a ticket they
/// may not see answers 404 like a missing one, whatever the form says), then the
/// domain's `operation` at the version the form was shown at.
async fn act(
    on: &On<SupportState>,
    key: &str,
    fields: &Fields,
    after: &str,
    operation: impl AsyncFnOnce(&Ctx<'_>, &str, i64) -> Result<Ticket, Problem>,
) -> Result<Response, PageError> {
    let context = ctx(&on.state, &on.signed.0.actor);
    let (row, _) = tickets::find(&on.state.store, context.actor, key).await?;
    let done = match version(fields) {
        Ok(v) => operation(&context, &row.id, v).await,
        Err(p) => Err(p),
    };
    answered(on, key, fields, done, after).await
}

/// A reply (`visibilite=public`) or an internal note (`visibilite=interne`), with
/// its files (seen by whom sees the message). The form's one-time token makes a second
/// post of it (a double click, the answer reloaded) lead to the ticket without writing
/// the message again; a refused post frees it.
async fn comment(
    on: On<SupportState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    let Posted { fields, files } = ticket_files::posted(&headers, body).await?;
    let context = ctx(&on.state, &on.signed.0.actor);
    let (row, viewer) = tickets::find(&on.state.store, context.actor, &key).await?;
    let submission =
        match submission::claim(&on.state.store, context.actor, "commentaires", &fields, context.now).await? {
            Claim::First(submission) => submission,
            Claim::Done(answer) => return Ok(answer),
        };
    let internal = fields.get("visibilite") == "interne";
    let c = NewComment {
        body: fields.get("message").to_string(),
        visibility: Some(if internal { "internal" } else { "public" }.to_string()),
    };
    // The files are checked before anything is written; the reply and its files are
    // then written together, or neither (one file too many for the ticket, say).
    let done = match ticket_files::checked(files) {
        Ok(files) => submission.run(tickets::comment_with_files(&context, &row.id, c, FILES_FIELD, files)).await,
        Err(problem) => Err(problem),
    };
    let after = tickets::written_by(&on.state.store, context.actor, &row, viewer, !internal).await?.key();
    match &done {
        Ok(ticket) => submission.done(&format!("/tickets/{}?apres={after}", ticket.reference)).await?,
        Err(_) => submission.release().await?,
    }
    answered(&on, &key, &fields, done, after).await
}

/// `/tickets/{ticket}/pieces-jointes/{fichier}`: the file, to whom may see it, as a download.
async fn download(
    On { state, signed, .. }: On<SupportState>,
    Path((key, piece)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (attachment, bytes) = attachments::read(&ctx(&state, &signed.0.actor), &key, &piece).await?;
    Ok(ticket_files::served(&attachment, bytes))
}

/// A status change (`vers`), with its public message (`message_statut`, apart from the reply
/// box's `message`); the pause is `waiting_requester`.
async fn move_status(
    on: On<SupportState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let input = TransitionInput { to: fields.get("vers").to_string(), message: fields.opt("message_statut") };
    act(&on, &key, &fields, "statut", async |c, id, v| tickets::transition(c, id, v, input).await).await
}

/// An escalation with its mandatory reason (`partager=oui`: the vendor sees the requester).
async fn escalate(
    on: On<SupportState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let input =
        EscalateInput { reason: fields.get("motif").to_string(), share_requester: fields.get("partager") == "oui" };
    act(&on, &key, &fields, "escalade", async |c, id, v| tickets::escalate(c, id, v, input).await).await
}

/// A return to the level below with the answer.
async fn return_down(
    on: On<SupportState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let input = ReturnInput { answer: fields.get("reponse").to_string() };
    act(&on, &key, &fields, "renvoi", async |c, id, v| tickets::return_down(c, id, v, input).await).await
}

/// Take (`affecte` empty: the person themself) or assign (`affecte` an e-mail address).
async fn assign(
    on: On<SupportState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let email = fields.opt("affecte").unwrap_or_else(|| on.signed.0.email.clone());
    let patch = TicketPatch { assignee: Some(email), ..Default::default() };
    act(&on, &key, &fields, "affectation", async |c, id, v| tickets::update(c, id, v, patch).await).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_durations_read_in_hours_and_minutes() {
        assert_eq!(business_duration(59), "0 min");
        assert_eq!(business_duration(45 * 60), "45 min");
        assert_eq!(business_duration(3 * 3600), "3 h");
        assert_eq!(business_duration(3 * 3600 + 5 * 60), "3 h 05");
        assert_eq!((label_of(IMPACTS, "haute"), label_of(URGENCIES, "haute")), ("élevé".into(), "élevée".into()));
        assert_eq!(escape("<b>&"), "&lt;b&gt;&amp;");
    }
}
