//! « Groupements de commandes » in the console: the list of groupements (the open ones
//! first asked by the communes), a groupement's page as its coordinator, a member, or
//! any other reader sees it, the coordinator's forms (`coordinator`), the commune's
//! application, withdrawal and own share (`member`), and the library of the documents
//! shared between académies (`library`). Every rule and every scope check is the
//! groupements domain's (`ent_groupements::groupements`, the functions its API calls).

mod coordinator;
mod library;
mod member;

use crate::auth::{caller, Signed};
use crate::form::FieldError;
use crate::forms::{short_label, Fields, On, Reply};
use crate::list::{self, Cell, Column, Filter, ListParams, ListSpec, ListView};
use crate::page::{self, Notice, PageError, Shell};
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::extract::{Path, Query};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use ent_conventions::conventions::{get_seen_convention, Status as ConventionStatus};
use ent_groupements::groupements::costs::{self, euros, Establishments, Shares};
use ent_groupements::groupements::documents::{self, StoredDocument};
use ent_groupements::groupements::membership::{self, Application, ApplicationStatus};
use ent_groupements::groupements::{self as gm, routes as domain, Groupement, GroupementsState, Status};
use ent_kernel::clock::{french_date, french_moment, today_in_france};
use ent_kernel::error::Problem;
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::store::Condition;
use ent_platform::identity::authz::{
    self, CONVENTIONS_READ, GROUPEMENTS_APPLY, GROUPEMENTS_LIBRARY, GROUPEMENTS_MANAGE, GROUPEMENTS_READ,
};
use ent_platform::identity::Caller;
use ent_platform::registry::Org;
use serde_json::{json, Value};

/// The pages of this screen.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<ConsoleRoute<S>>
where
    ConsoleState: FromRef<S>,
    GroupementsState: FromRef<S>,
{
    use Access::Signed as S_;
    let g = "/groupements/{groupement}";
    vec![
        route(Method::GET, "/groupements", S_(&GROUPEMENTS_READ), get(list)),
        route(Method::GET, "/groupements/nouveau", S_(&GROUPEMENTS_MANAGE), get(coordinator::new_form)),
        route(Method::POST, "/groupements/nouveau", S_(&GROUPEMENTS_MANAGE), post(coordinator::create)),
        route(Method::GET, g, S_(&GROUPEMENTS_READ), get(show)),
        route(Method::POST, "/groupements/{groupement}/decisions", S_(&GROUPEMENTS_MANAGE), post(coordinator::decide)),
        route(
            Method::POST,
            "/groupements/{groupement}/statut",
            S_(&GROUPEMENTS_MANAGE),
            post(coordinator::move_status),
        ),
        route(Method::POST, "/groupements/{groupement}/attribution", S_(&GROUPEMENTS_MANAGE), post(coordinator::award)),
        route(
            Method::POST,
            "/groupements/{groupement}/date-limite-offres",
            S_(&GROUPEMENTS_MANAGE),
            post(coordinator::move_offers_deadline),
        ),
        route(
            Method::POST,
            "/groupements/{groupement}/sans-suite",
            S_(&GROUPEMENTS_MANAGE),
            post(coordinator::declare_sans_suite),
        ),
        route(
            Method::POST,
            "/groupements/{groupement}/documents",
            S_(&GROUPEMENTS_MANAGE),
            post(coordinator::generate),
        ),
        route(Method::GET, "/groupements/{groupement}/documents/{piece}", S_(&GROUPEMENTS_READ), get(download)),
        route(Method::GET, "/groupements/{groupement}/decp", S_(&GROUPEMENTS_READ), get(decp)),
        route(
            Method::POST,
            "/groupements/{groupement}/decp/publication",
            S_(&GROUPEMENTS_MANAGE),
            post(coordinator::publish_decp),
        ),
        route(
            Method::POST,
            "/groupements/{groupement}/documents/{piece}/partage",
            S_(&GROUPEMENTS_MANAGE),
            post(coordinator::share),
        ),
        route(Method::GET, "/groupements/{groupement}/candidature", S_(&GROUPEMENTS_APPLY), get(member::apply_form)),
        route(Method::POST, "/groupements/{groupement}/candidature", S_(&GROUPEMENTS_APPLY), post(member::apply)),
        route(
            Method::GET,
            "/groupements/{groupement}/candidatures/{candidature}/modifier",
            S_(&GROUPEMENTS_APPLY),
            get(member::edit_form),
        ),
        route(
            Method::POST,
            "/groupements/{groupement}/candidatures/{candidature}/modifier",
            S_(&GROUPEMENTS_APPLY),
            post(member::edit),
        ),
        route(
            Method::POST,
            "/groupements/{groupement}/candidatures/{candidature}/retrait",
            S_(&GROUPEMENTS_APPLY),
            post(member::withdraw),
        ),
        route(
            Method::GET,
            "/groupements/{groupement}/quotes-parts/{membre}",
            S_(&GROUPEMENTS_READ),
            get(member::share),
        ),
        route(Method::GET, "/bibliotheque", S_(&GROUPEMENTS_LIBRARY), get(library::page)),
    ]
}

/// The organisations of one of `kinds` at which the signed-in person holds `role`.
fn own_orgs<'a>(signed: &'a Signed, role: Role, kinds: &'a [OrgKind]) -> impl Iterator<Item = &'a Org> {
    signed
        .0
        .actor
        .bindings
        .iter()
        .filter(move |b| b.role == role)
        .filter_map(|b| b.org.as_ref())
        .filter(move |o| kinds.contains(&o.kind))
}

const STATUSES: &[(&str, &str)] = &[
    ("open", "ouvert aux adhésions"),
    ("closed", "adhésions closes"),
    ("consultation", "en consultation"),
    ("awarded", "attribué"),
    ("running", "en exécution"),
    ("ended", "terminé"),
];

/// The list: every groupement (their facts are public to their readers), newest first.
pub const LIST: ListSpec = ListSpec {
    columns: &[
        Column { key: "reference", label: "Référence", order_by: Some("g.reference") },
        Column { key: "intitule", label: "Intitulé", order_by: Some("g.title") },
        Column { key: "coordonnateur", label: "Coordonnateur", order_by: Some("o.name") },
        Column { key: "statut", label: "État", order_by: Some("g.status") },
        Column { key: "limite", label: "Date limite des adhésions", order_by: Some("g.application_deadline") },
        Column { key: "membres", label: "Membres", order_by: None },
    ],
    filters: &[Filter { key: "statut", label: "État", choices: STATUSES }],
    default_sort: "reference",
    tie_break: "g.id",
    search: Some("Référence, intitulé ou coordonnateur"),
    keyset: false,
};

#[derive(sqlx::FromRow)]
struct Listed {
    reference: String,
    title: String,
    coordinator: String,
    status: String,
    application_deadline: String,
    consultation_launched_at: Option<String>,
    members: i64,
}

/// The list's condition; `?statut=open` keeps the groupements a collectivité may still join on
/// `today` (`YYYY-MM-DD`): open, their application deadline not passed.
fn list_condition(params: &ListParams, today: &str) -> Condition {
    let mut cond = Condition::default();
    if let Some(status) = params.filter("statut") {
        cond.push("g.status = ?", &[status]);
        if status == Status::Open.as_str() {
            cond.push("g.application_deadline >= ?", &[today]);
        }
    }
    if let Some(q) = &params.q {
        let pattern = list::contains_pattern(q);
        cond.push(
            "(LOWER(g.reference) LIKE ? OR LOWER(g.title) LIKE ? OR LOWER(o.name) LIKE ?)",
            &[&pattern, &pattern, &pattern],
        );
    }
    cond
}

/// When the adhesions of a listed groupement end ([`gm::AdhesionsEnd`]).
fn adhesions_end(g: &Listed) -> gm::AdhesionsEnd {
    let launched = g.consultation_launched_at.as_deref().and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
    gm::AdhesionsEnd::of(&g.application_deadline, launched.map(|at| today_in_france(at.with_timezone(&chrono::Utc))))
}

/// `/groupements`: the groupements, filtered by state (`?statut=open`: those a commune may join).
async fn list(
    On { console, state, signed }: On<GroupementsState>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let params = ListParams::parse(&LIST, &query.0);
    let today = state.ctx(&signed.0.actor).today().to_string();
    let cond = list_condition(&params, &today);
    let columns = "g.reference, g.title, o.name AS coordinator, g.status, g.application_deadline, \
                   g.consultation_launched_at, (SELECT COUNT(*) FROM groupement_members m WHERE m.groupement_id = g.id AND m.status = 'accepted') AS members";
    let from = "groupements g JOIN orgs o ON o.id = g.coordinator_org_id";
    let listed = list::fetch::<Listed>(&state.store, &LIST, &params, columns, from, &cond).await?;
    let rows = listed
        .page
        .items
        .iter()
        .map(|g| {
            vec![
                Cell::link(g.reference.clone(), format!("/groupements/{}", g.reference)),
                Cell::text(g.title.clone()),
                Cell::text(g.coordinator.clone()),
                Cell::text(Status::parse(&g.status).map_or(g.status.as_str(), |s| s.label())),
                Cell::text(adhesions_end(g).words()),
                Cell::text(g.members.to_string()),
            ]
        })
        .collect();
    let view = ListView::new("groupements", "/groupements", "Groupements de commandes", &LIST, &params, &listed, rows);
    let actor = &signed.0.actor;
    let shell = Shell::new(&console, Some(&signed.0), "/groupements").crumbs(&[("Groupements", "/groupements")]);
    let values = json!({
        "list": view,
        "can_create": authz::role_allows(actor, &GROUPEMENTS_MANAGE),
        "can_apply": authz::role_allows(actor, &GROUPEMENTS_APPLY),
        "can_library": authz::role_allows(actor, &GROUPEMENTS_LIBRARY),
    });
    Ok(page::render("groupements.html", shell, values))
}

/// The notice after a form of the groupement page (`?apres=…`).
fn notice_after(after: &str) -> Option<Notice> {
    let text = match after {
        "ouvert" => "Le groupement est ouvert aux adhésions.",
        "acceptees" => "Les candidatures cochées sont acceptées : les membres rejoignent la convention constitutive.",
        "refusees" => "Les candidatures cochées sont refusées ; chaque candidat est informé du motif.",
        "statut" => "L'état du groupement est changé.",
        "attribue" => "Le marché est attribué : les quotes-parts des membres sont calculées.",
        "date-limite-offres" => {
            "La date limite de réception des offres est modifiée : publiez-la aux candidats comme la première (avis \
             rectificatif, règlement de la consultation) et régénérez les pièces qui l'impriment."
        }
        "sans-suite" => {
            "La consultation est déclarée sans suite : le groupement revient à l'état « adhésions closes » et ses \
             membres en sont informés. Communiquez aussi les motifs de cette décision aux candidats qui ont participé \
             (article R. 2185-2 du code de la commande publique) ; vous pouvez relancer une consultation."
        }
        "document" => "Le document est généré.",
        "partage" => "Le partage du document avec la bibliothèque est mis à jour.",
        "decp-publiees" => "Les données essentielles du marché sont publiées : les membres peuvent les télécharger.",
        "candidature" => "Votre candidature est déposée : le coordonnateur l'examinera.",
        "retrait" => "Votre candidature est retirée.",
        "modification" => "Votre candidature est modifiée.",
        _ => return None,
    };
    Some(Notice::success(text))
}

async fn show(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    groupement_page(&on, &key, Reply::shown(&query, notice_after(query.get("apres")))).await
}

/// `can_withdraw`: the person applies for its collectivité and the groupement is open;
/// `can_edit`: besides, the application deadline has not passed.
fn application_view(app: &Application, can_withdraw: bool, can_edit: bool, fields: &Fields) -> Value {
    json!({
        "motif": fields.get(&format!("motif-{}", app.id)),
        // Ticked on the form refused: still ticked when it is shown again.
        "checked": fields.all("candidatures").contains(&app.id),
        "id": app.id,
        "applicant": app.applicant.name,
        "applicant_id": app.applicant.id,
        "status": app.status_label,
        "pending": app.status == ApplicationStatus::Applied,
        "deliberation": format!("n° {} du {}", app.deliberation_number, french_date(&app.deliberation_date)),
        "schools": count(app.quantities.schools),
        "classes": count(app.quantities.classes),
        "pupils": count(app.quantities.pupils),
        "accounts": count(app.accounts),
        "reason": app.decision_reason,
        "withdrawable": can_withdraw && matches!(app.status, ApplicationStatus::Applied | ApplicationStatus::Accepted),
        "editable": can_edit && app.status == ApplicationStatus::Applied,
    })
}

/// A count as the documents print it, in groups of three (« 4 510 », domain review 39, G7).
pub(super) fn count(n: i64) -> String {
    u64::try_from(n).map(ent_documents::documents::grouped).unwrap_or_else(|_| n.to_string())
}

/// The shares table: each member's part of the common expenses per contract year, and
/// its own orders at the awarded prices (paid by it to the vendor), shown apart.
fn shares_view(g: &Groupement, shares: &Shares) -> Value {
    let years = shares.shares.first().map_or(0, |s| s.common_expenses_per_year_cents.len());
    json!({
        "cost_key": shares.cost_key,
        "common": euros(shares.common_expenses_cents),
        "coordinator_common": euros(shares.coordinator_common_expenses_cents),
        "members_common": euros(shares.members_common_expenses_cents),
        "duration": shares.duration_months,
        "years": (1..=years).map(|y| format!("Année {y}")).collect::<Vec<_>>(),
        "rows": shares.shares.iter().map(|s| json!({
            "member": s.member.name,
            "href": format!("/groupements/{}/quotes-parts/{}", g.reference, s.member.id),
            "pupils": count(s.quantities.pupils),
            "schools": count(s.quantities.schools),
            "accounts": count(s.quantities.accounts()),
            "common": euros(s.common_expenses_cents),
            "per_year": s.common_expenses_per_year_cents.iter().map(|c| euros(*c)).collect::<Vec<_>>(),
            "own_ht": euros(s.own_orders_ht_cents),
            "own_ttc": euros(s.own_orders_ttc_cents),
        })).collect::<Vec<_>>(),
    })
}

fn document_view(g: &Groupement, d: &StoredDocument) -> Value {
    json!({
        "id": d.id,
        "title": d.title,
        // « du cahier … », « de la note … »: what the download links name for a screen reader.
        "of_title": ent_kernel::naming::of_title(&d.title, d.kind.feminine()),
        "kind": d.kind.label(),
        "version": d.version,
        "shared": d.shared,
        "at": french_moment(&d.created_at),
        "sha256": d.sha256,
        // A version of a consultation declared sans suite: shown as such, no longer a current piece.
        "abandoned": d.abandoned,
        // PDF is offered only where LibreOffice is installed (a direct link answers 406 elsewhere).
        "downloads": d.formats.iter().map(|f| json!({
            "label": f.to_uppercase(),
            "href": format!("/groupements/{}/documents/{}?format={f}", g.reference, d.id),
        })).collect::<Vec<_>>(),
    })
}

/// The groupement's facts as every reader sees them.
fn facts(state: &GroupementsState, g: &Groupement) -> Value {
    let name = |id: &String| state.catalog.bouquets.iter().find(|b| &b.id == id).map_or(id.clone(), |b| b.name.clone());
    let options: Vec<String> = g.terms.options.iter().map(name).collect();
    let bouquet = name(&g.terms.bouquet);
    let date = |d: &Option<String>| d.as_deref().map(french_date);
    json!({
        "reference": g.reference, "title": g.title, "object": g.object, "coordinator": g.coordinator.name,
        "status": g.status.as_str(), "status_label": g.status_label, "members": g.members,
        "lots": g.terms.lots.iter().map(|l| format!("Lot {} : {}", l.number, l.title)).collect::<Vec<_>>(),
        // Several lots: each one's lines, its titulaire or its declaration sans suite.
        "lots_detail": (g.terms.lots.len() > 1).then(|| lots_detail(g)),
        "bouquet": bouquet, "options": options, "cost_key": g.cost_key_label, "duration": g.terms.duration_months,
        "maximum_margin_percent": g.terms.maximum_margin_percent,
        "deadline": g.adhesions_end().words(), "adhesions_ended_at_launch": g.adhesions_end().at_launch,
        "consultation": date(&g.consultation_date), "award_planned": date(&g.award_planned_date),
        "consultation_launched": g.consultation_launched_on().map(|d| french_date(&d.to_string())),
        "offers_deadline": g.offers_deadline_at.as_deref().map(french_moment),
        "offers_deadline_warning": g.offers_deadline_warning,
        "sans_suite": g.sans_suite.as_ref().map(|s| json!({
            "declared": french_date(&s.declared_on), "motif": s.motif_label, "justification": s.justification,
            "launched": s.consultation_launched_at.as_deref().and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .map(|at| french_date(&today_in_france(at.with_timezone(&chrono::Utc)).to_string())),
        })),
        "estimated_amount": g.terms.estimated_amount_ht_cents.map(euros),
        "procedure": g.terms.procedure.name(),
        "award": g.award.as_ref().map(|a| json!({
            "vendor": a.vendor.name, "siret": a.vendor_siret, "ht": euros(a.amount_ht_cents),
            "ttc": euros(a.amount_ttc_cents), "notified": french_date(&a.notified_on),
            "advance": a.advance_renounced.map(|renounced| match renounced {
                true => "le titulaire a renoncé au bénéfice de l'avance (acte d'engagement, section F)",
                false => "le titulaire n'a pas renoncé au bénéfice de l'avance (article 7 du CCAP)",
            }),
        })),
    })
}

/// The lots of a groupement of several as its page lists them: the lines of a coordinator's lot
/// (« Journée de formation (40 journées) »), the award of each lot awarded, the lots declared sans
/// suite.
fn lots_detail(g: &Groupement) -> Vec<Value> {
    g.terms
        .lots
        .iter()
        .map(|l| {
            let lines: Vec<String> = l
                .lines
                .iter()
                .map(|x| format!("{} ({} {})", x.label, costs::quantity(x.quantity * 100), x.unit))
                .collect();
            let award = g.award.as_ref().and_then(|a| a.of_lot(l.number)).map(|a| {
                json!({
                    "vendor": a.vendor.name, "siret": a.vendor_siret, "ht": euros(a.amount_ht_cents),
                    "ttc": euros(a.amount_ttc_cents), "notified": french_date(&a.notified_on), "id": a.marche_id,
                })
            });
            let sans_suite = g.lots_sans_suite.iter().find(|d| d.lot == l.number).map(|d| {
                json!({ "declared": french_date(&d.declared_on), "motif": d.motif_label, "justification": d.justification })
            });
            json!({
                "number": l.number, "title": l.title, "ent": l.carries_ent(), "lines": lines,
                "award": award, "sans_suite": sans_suite,
            })
        })
        .collect()
}

/// The convention constitutive in force, for a reader who sees it (its parties' people): its
/// reference, where it stands and a link to it.
async fn constitutive_view(
    state: &GroupementsState,
    reader: &Caller,
    g: &Groupement,
) -> Result<Option<Value>, Problem> {
    let Some(id) = g.convention_id.as_deref() else { return Ok(None) };
    let seen = get_seen_convention(&state.store, &state.models, id, &reader.actor, &CONVENTIONS_READ).await?;
    Ok(seen.map(|c| {
        let standing = match c.status {
            ConventionStatus::Signed | ConventionStatus::Active => {
                format!("{}, jusqu'au {}", c.status.label(), french_date(&c.end_date))
            }
            other => other.label().to_string(),
        };
        json!({ "reference": c.reference, "standing": standing, "href": format!("/conventions/{}", c.reference) })
    }))
}

/// The states the coordinator may move the groupement to (the award has its own form).
fn moves(g: &Groupement) -> Vec<Value> {
    Status::ALL
        .into_iter()
        .filter(|to| *to != Status::Awarded && g.status.can_move_to(*to))
        .map(|to| {
            let label = match to {
                Status::Open => "Rouvrir les adhésions",
                Status::Closed => "Clore les adhésions",
                Status::Consultation => "Lancer la consultation",
                Status::Running => "Passer en exécution",
                _ => "Terminer le groupement",
            };
            json!({ "to": to.as_str(), "label": label })
        })
        .collect()
}

/// The groupement's page: its facts; the coordinator's applications, states, award form,
/// shares and documents; a member's own applications, share and documents.
pub(super) async fn groupement_page(
    on: &On<GroupementsState>,
    key: &str,
    reply: Reply<'_>,
) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let On { console, state, signed } = on;
    let g = gm::must_get(&state.store, key).await?;
    let reader = caller(signed, &GROUPEMENTS_READ);
    let coordinating = gm::is_coordinator(&reader.actor, &g);
    let member_view = domain::coordinator_or_member(state, &reader, &g).await.is_ok();
    let can_apply = authz::role_allows(&reader.actor, &GROUPEMENTS_APPLY);
    let before_deadline = state.ctx(&reader.actor).today().to_string() <= g.application_deadline;
    let open = can_apply && g.status == Status::Open;
    let applying = caller(signed, &GROUPEMENTS_APPLY);
    let mut applications: Vec<Value> = Vec::new();
    let visible = domain::visible_applications(state, &reader, &g).await?;
    let accepted: Vec<_> = visible.iter().filter(|a| a.status == ApplicationStatus::Accepted).cloned().collect();
    for a in visible {
        // Only its own collectivité (or an admin) acts in an applicant's name.
        let own = open && membership::speaks_for(&state.store, &applying, &a.applicant.id).await?;
        applications.push(application_view(&a, own, own && before_deadline && !coordinating, fields));
    }
    let shares = match (&g.award, member_view) {
        (Some(_), true) => Some(shares_view(&g, &domain::visible_shares(state, &reader, &g).await?)),
        _ => None,
    };
    let documents: Vec<Value> = if member_view {
        documents::versions(&state.store, &g.id).await?.iter().map(|d| document_view(&g, d)).collect()
    } else {
        Vec::new()
    };
    let award_fields = coordinator::award_fields(fields, &g.terms.lots, Establishments::of(&accepted));
    let errors = labelled_by_control(by_control(refusal.errors), &award_fields);
    let path = format!("/groupements/{}", g.reference);
    let shell = Shell::new(console, Some(&signed.0), "/groupements")
        .crumbs(&[("Groupements", "/groupements"), (&g.reference, &path)])
        .notice(refusal.notice.clone());
    let values = json!({
        "title": format!("{} — {}", g.reference, g.title),
        "path": path,
        "g": facts(state, &g),
        "coordinating": coordinating,
        "applications": applications,
        "can_apply": open && before_deadline,
        "moves": if coordinating { moves(&g) } else { Vec::new() },
        // Launching the consultation fixes the offers deadline.
        "launch": (coordinating && g.status.can_move_to(Status::Consultation))
            .then(|| json!({ "hint": launch_hint(&g, state.ctx(&reader.actor).today()) })),
        "offers_deadline_value": fields.get("date-limite-offres"),
        // What the award said of the members' tenants running services it does not cover.
        "award_warnings": award_warnings(&g, member_view),
        // Ending before the accord-cadre's term is a résiliation, whose reason the members read.
        "resiliation": coordinating && g.status.can_move_to(Status::Ended)
            && g.award.as_ref().and_then(gm::Award::last_day).is_some_and(|last| last >= state.ctx(&reader.actor).today()),
        "reason": fields.get("reason"),
        "can_decide": coordinating && matches!(g.status, Status::Open | Status::Closed),
        "can_award": coordinating && g.status == Status::Consultation,
        // The coordinator moves the offers deadline of the consultation running until it passes.
        "offers_deadline_form": (coordinating && g.status == Status::Consultation
            && g.offers_deadline().is_none_or(|at| at > state.ctx(&reader.actor).now))
        .then(|| json!({
            "value": fields.get("nouvelle-date-limite-offres"),
            "reason": fields.get("motif-date-limite-offres"),
            "hint": offers_deadline_hint(&g),
        })),
        // The coordinator may declare the consultation sans suite until its award.
        "sans_suite_form": (coordinating && g.status == Status::Consultation).then(|| json!({
            "motifs": coordinator::motifs(),
            "motif": fields.get("sans-suite-motif"),
            "justification": fields.get("sans-suite-justification"),
        })),
        "form_version": fields.opt("version").unwrap_or_else(|| g.version.to_string()),
        "shares": shares,
        // The members' tenants the award left with their vendor, and those handed over to a
        // titulaire since (`handover`): served like the unit prices.
        "kept_tenants": kept_said(&g, member_view, false),
        "handed_over_tenants": kept_said(&g, member_view, true),
        "documents": documents,
        "constitutive": if member_view { constitutive_view(state, &reader, &g).await? } else { None },
        // The DECP are open data: the coordinator publishes them once awarded (a form: a GET
        // that published could be forged cross-site), then it and the members download them.
        "decp": g.award.is_some() && g.decp_published_on.is_some() && (coordinating || member_view),
        "decp_unpublished": coordinating && g.award.is_some() && g.decp_published_on.is_none(),
        "kinds": documents::Kind::ALL.iter().map(|k| json!({ "value": k.as_str(), "label": k.label() })).collect::<Vec<_>>(),
        "award_fields": award_fields,
        "cost_key_warnings": if coordinating { costs::key_warnings(&g, &accepted) } else { Vec::new() },
        "errors": errors,
    });
    Ok(page::render_status(status, "groupement.html", shell, values))
}

/// The hint of the offers deadline on the launch form: the first day it may fall on if the
/// consultation is launched `today`, and why.
fn launch_hint(g: &Groupement, today: chrono::NaiveDate) -> String {
    use ent_groupements::groupements::consultation::{self, Procedure};
    let first = french_date(&consultation::first_offers_day(today, g.terms.procedure).to_string());
    match g.terms.procedure {
        Procedure::AppelOffresOuvert => format!(
            "Obligatoire pour lancer la consultation ; publiée par le règlement de la consultation (article 10). Appel \
             d'offres ouvert lancé aujourd'hui : le {first} au plus tôt ({} jours francs, les offres étant reçues par voie \
             électronique : articles R. 2161-2 et R. 2161-3 du code de la commande publique).",
            consultation::OFFER_DAYS_ELECTRONIC
        ),
        Procedure::ProcedureAdaptee => format!(
            "Obligatoire pour lancer la consultation ; publiée par le règlement de la consultation (article 10). \
             Procédure adaptée lancée aujourd'hui : le {first} au plus tôt ; la plateforme conseille au moins {} jours \
             pour préparer une offre (article R. 2151-1 du code de la commande publique).",
            consultation::ADAPTED_ADVISED_DAYS
        ),
    }
}

/// The hint of the form moving the offers deadline: the one recorded, and the rule a new one keeps.
fn offers_deadline_hint(g: &Groupement) -> String {
    use ent_groupements::groupements::consultation::{self, Procedure};
    let current = match &g.offers_deadline_at {
        Some(at) => format!("Actuellement le {} (heure de Paris). ", french_moment(at)),
        None => "Aucune date limite n'est encore enregistrée pour cette consultation. ".to_string(),
    };
    let launched = g.consultation_launched_on().map(|d| d.to_string());
    let first = g
        .consultation_launched_on()
        .map(|d| french_date(&consultation::first_offers_day(d, g.terms.procedure).to_string()));
    let rule = match (g.terms.procedure, first) {
        (Procedure::AppelOffresOuvert, Some(first)) => format!(
            "Appel d'offres ouvert lancé le {} : le {first} au plus tôt ({} jours francs, articles R. 2161-2 et \
             R. 2161-3 du code de la commande publique).",
            launched.as_deref().map(french_date).unwrap_or_default(),
            consultation::OFFER_DAYS_ELECTRONIC
        ),
        _ => "À venir, après le jour du lancement.".to_string(),
    };
    format!("{current}{rule} Le motif est journalisé avec l'ancienne et la nouvelle date.")
}

/// The sentences the award said of the members' tenants running services the accord-cadre does
/// not cover; none but for the award's members' view (served like its unit prices).
fn award_warnings(g: &Groupement, member_view: bool) -> Vec<String> {
    let Some(award) = g.award.as_ref().filter(|_| member_view) else { return Vec::new() };
    award.warnings.iter().map(|w| w.message.clone()).collect()
}

/// The sentences of the tenants `g`'s award kept (`handed_over`: false) — the latest word on
/// each, its release once the accord-cadre that bound it ended and it stayed — or of those
/// handed over to a titulaire since (true); none but for the award's members' view.
fn kept_said(g: &Groupement, member_view: bool, handed_over: bool) -> Vec<String> {
    let Some(award) = g.award.as_ref().filter(|_| member_view) else { return Vec::new() };
    let said = |k: &gm::award::KeptTenant| match &k.released {
        Some(r) => (r.vendor.is_some(), r.message.clone()),
        None => (false, k.message.clone()),
    };
    award.kept_tenants.iter().map(said).filter(|(moved, _)| *moved == handed_over).map(|(_, m)| m).collect()
}

/// The field errors named by their controls (the templates find a control's error by its name).
pub(super) fn by_control(errors: Vec<FieldError>) -> Vec<FieldError> {
    errors.into_iter().map(|e| FieldError { field: e.id.clone(), ..e }).collect()
}

/// The errors said after the label of the control (of `controls`, the award form's) they are at.
fn labelled_by_control(errors: Vec<FieldError>, controls: &[Value]) -> Vec<FieldError> {
    let label_of = |id: &str| controls.iter().find(|c| c["id"] == id).and_then(|c| c["label"].as_str());
    errors
        .into_iter()
        .map(|e| match label_of(&e.id) {
            Some(label) => e.labelled(short_label(label)),
            None => e,
        })
        .collect()
}

/// The tail of a form of the groupement page: the page after `after`, or the page again
/// with the domain's refusal (failures are the error page's).
pub(super) async fn answered<T>(
    on: &On<GroupementsState>,
    key: &str,
    fields: &Fields,
    done: Result<T, Problem>,
    after: &str,
    control: impl Fn(&str) -> String,
) -> Result<Response, PageError> {
    match done {
        Ok(_) => Ok(page::redirect(&format!("/groupements/{key}?apres={after}"))),
        Err(problem) if problem.kind.status().is_server_error() => Err(problem.into()),
        Err(problem) if problem.kind.status().as_u16() == 403 || problem.kind.status().as_u16() == 404 => {
            Err(problem.into())
        }
        Err(problem) => groupement_page(on, key, Reply::refused(fields, &problem, control)).await,
    }
}

/// `/groupements/{groupement}/decp`: the published DECP record of the award, as the API serves
/// it; never publishes (the coordinator's form does).
async fn decp(On { state, signed, .. }: On<GroupementsState>, Path(key): Path<String>) -> Result<Response, PageError> {
    let g = gm::must_get(&state.store, &key).await?;
    Ok(domain::decp_file(&state, &caller(&signed, &GROUPEMENTS_READ), &g).await?)
}

/// `/groupements/{groupement}/documents/{piece}?format=`: a version the person may read
/// (the coordinator, a member, a library reader for a shared one), as the API serves it.
async fn download(
    On { state, signed, .. }: On<GroupementsState>,
    Path((key, piece)): Path<(String, String)>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let g = gm::must_get(&state.store, &key).await?;
    Ok(domain::document_file(&state, &caller(&signed, &GROUPEMENTS_READ), &g, &piece, query.opt("format")).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_count_reads_in_groups_of_three_as_the_documents_print_it() {
        assert_eq!(super::count(4510), "4\u{a0}510");
        assert_eq!(super::count(1_234_567), "1\u{a0}234\u{a0}567");
        assert_eq!(super::count(999), "999");
        assert_eq!(super::count(-5), "-5");
    }
}
