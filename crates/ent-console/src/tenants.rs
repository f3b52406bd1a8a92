//! « ENT »: the tenants of the person's scope (filtered by status), the request of a
//! tenant for a school or a commune (bouquet and options from the catalog, with the RGPD
//! facts of their services), and a tenant's page: the lifecycle moves the role allows
//! (with their « Motif », required to suspend or withdraw; the governance gate's refusal
//! shown as it is), its events, its provisioning state and purge date, a warning when no
//! convention in force covers it any more (`tenants-coverage`, also a badge and a filter of
//! the list), and for administrators the Kubernetes objects rendered for it.

use crate::auth::{caller, Signed};
use crate::forms::{answer, chosen_org, org_choices, searching, Fields, On, Refusal, Reply};
use crate::list::{self, Cell, Column, Filter, ListParams, ListSpec, ListView};
use crate::page::{self, Notice, PageError, Shell};
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use ent_kernel::clock::{french_day, french_moment, today_in_france};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::{Action, OrgKind};
use ent_kernel::store::Condition;
use ent_kernel::text::fold;
use ent_platform::catalog::{degree_label, BouquetKind, Service};
use ent_platform::identity::authz::{self, TENANTS_READ, TENANTS_TRANSITION, TENANTS_WRITE};
use ent_platform::identity::{Actor, Caller};
use ent_platform::registry::queries::{get_org, list_orgs, OrgFilter};
use ent_tenants::provisioning::purge;
use ent_tenants::provisioning::reconcile::reconcile_soon;
use ent_tenants::tenants::{
    annex_warnings, apply, create, declared_elsewhere, destruction, events_read_by, find_for, market_notice, read_by,
    read_scope, render, transition, EntTenant, Metadata, Move, Status, Tenant, TenantSpec, TenantsState, API_VERSION,
    KIND,
};
use serde_json::{json, Value};

/// Organisations proposed after a search.
const PROPOSED: u32 = 10;

/// The pages of this screen.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<ConsoleRoute<S>>
where
    ConsoleState: FromRef<S>,
    TenantsState: FromRef<S>,
{
    vec![
        route(Method::GET, "/ent", Access::Signed(&TENANTS_READ), get(list)),
        route(Method::GET, "/ent/nouveau", Access::Signed(&TENANTS_WRITE), get(new_form)),
        route(Method::POST, "/ent/nouveau", Access::Signed(&TENANTS_WRITE), post(request)),
        route(Method::GET, "/ent/{ent}", Access::Signed(&TENANTS_READ), get(show)),
        route(Method::GET, "/ent/{ent}/attestation-destruction", Access::Signed(&TENANTS_READ), get(attestation)),
        route(Method::POST, "/ent/{ent}/etat", Access::Signed(&TENANTS_TRANSITION), post(move_to)),
        route(Method::POST, "/ent/{ent}/services", Access::Signed(&TENANTS_WRITE), post(add_service)),
    ]
}

/// French name of a tenant status.
pub fn status_label(status: Status) -> &'static str {
    status.label()
}

/// The button of a move to `status`.
fn move_label(status: Status) -> &'static str {
    match status {
        Status::Provisioning => "Lancer le déploiement",
        Status::Active => "Déclarer actif",
        Status::Suspended => "Suspendre",
        Status::Decommissioning => "Retirer le service",
        Status::Archived => "Archiver",
        Status::Requested | Status::Purged => "",
    }
}

/// The French names of a tenant's event kinds (a move records the status it leads to).
const EVENT_KINDS: &[(&str, &str)] = &[
    ("created", "demande"),
    ("configured", "configuration"),
    ("approved", "comptes approuvés"),
    ("processors", "éditeur ou hébergeur"),
    ("released", "rendu à l'API"),
    ("reconciled", "application au cluster"),
    ("reconcile_failed", "échec de l'application au cluster"),
    ("provisioned", "services disponibles"),
    ("progressing", "déploiement en cours"),
    ("degraded", "services dégradés"),
    ("stopped", "services arrêtés"),
    ("workloads_removed", "services retirés, données gardées"),
    ("removing", "suppression en cours dans le cluster"),
    ("removed", "retiré du cluster"),
    ("destruction_attested", "attestation de destruction"),
    ("purge_held", "purge différée"),
    ("purge_planned", "purge annoncée"),
    ("convention_lapsed", "plus de convention en vigueur"),
    ("convention_restored", "de nouveau couvert par une convention"),
    ("annex_gap", "hors de l'annexe de l'article 28"),
];

/// The French names of what the provisioning backend observes of a tenant.
const OBSERVED: &[(&str, &str)] = &[
    ("written", "manifestes écrits"),
    ("progressing", "déploiement en cours"),
    ("available", "services disponibles"),
    ("degraded", "services dégradés"),
    ("stopped", "services arrêtés (suspendu)"),
    ("data_only", "données seules, sans service"),
    ("removing", "suppression en cours dans le cluster"),
    ("removed", "retiré du cluster"),
];

/// The French name `table` gives `code`; a status as « état : … »; else the code as it is.
fn french_code(table: &[(&str, &'static str)], code: &str) -> String {
    match (table.iter().find(|(c, _)| *c == code), Status::parse(code)) {
        (Some((_, label)), _) => (*label).to_string(),
        (None, Some(status)) => format!("état : {}", status_label(status)),
        (None, None) => code.to_string(),
    }
}

/// What a move that cuts or removes the service does, asked to confirm before it is made
/// (`None`: a move made at once).
fn consequence(status: Status) -> Option<&'static str> {
    match status {
        Status::Suspended => Some("Les utilisateurs de l'ENT n'y accèdent plus jusqu'à ce qu'il soit de nouveau déclaré actif."),
        Status::Decommissioning => Some(
            "Le service est arrêté pour de bon : seules les données restent, jusqu'à l'archivage puis la purge ; \
             il n'y a pas de retour en arrière.",
        ),
        Status::Archived => {
            Some("L'ENT est archivé ; ses données seront purgées à la fin de la durée de conservation, sans retour possible.")
        }
        _ => None,
    }
}

/// The label of the « Motif » box of a move's confirmation.
fn reason_label(status: Status) -> &'static str {
    if status.needs_reason() {
        "Motif (obligatoire)"
    } else {
        "Motif (facultatif)"
    }
}

/// The list of tenants: the columns, the status filter, the search.
pub const LIST: ListSpec = ListSpec {
    columns: &[
        Column { key: "nom", label: "Nom", order_by: Some("t.slug") },
        Column { key: "organisation", label: "Organisation", order_by: Some("o.sort_name") },
        Column { key: "adresse", label: "Adresse", order_by: Some("t.hostname") },
        Column { key: "bouquet", label: "Bouquet", order_by: Some("t.base_bouquet") },
        Column { key: "etat", label: "État", order_by: Some("t.status") },
    ],
    filters: &[
        Filter { key: "statut", label: "État", choices: crate::dashboard::TENANT_STATUSES },
        Filter {
            key: "convention",
            label: "Convention",
            choices: &[(WITHOUT_CONVENTION, "sans convention en vigueur")],
        },
    ],
    default_sort: "nom",
    tie_break: "t.id",
    search: Some("Nom, adresse ou organisation"),
    keyset: false,
};

/// The value of the list's `convention` filter: the tenants whose coverage lapsed (the API's
/// `uncovered=true`).
const WITHOUT_CONVENTION: &str = "sans";

/// A tenant in the list.
#[derive(sqlx::FromRow)]
struct Listed {
    slug: String,
    org_name: String,
    org_code: String,
    hostname: String,
    bouquet: String,
    status: String,
    coverage_lapsed_at: Option<String>,
}

/// What a tenant's page and list say of a lapsed coverage (`tenants-coverage`).
fn without_convention_since(lapsed_at: &str) -> String {
    format!("Sans convention en vigueur (constaté le {})", french_day(lapsed_at))
}

/// `/ent`: the tenants of the person's scope, on the shared list (search, status
/// filter, sort, pages).
async fn list(
    On { console, state, signed }: On<TenantsState>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let params = ListParams::parse(&LIST, &query.0);
    let mut cond = Condition::default();
    if let Some(status) = params.filter("statut") {
        cond.push("t.status = ?", &[status]);
    }
    if params.filter("convention") == Some(WITHOUT_CONVENTION) {
        cond.push("t.coverage_lapsed_at IS NOT NULL", &[]);
    }
    if let Some(q) = &params.q {
        let pattern = list::contains_pattern(q);
        let folded = format!("%{}%", fold(q).replace(['%', '_'], ""));
        cond.push("(t.slug LIKE ? OR t.hostname LIKE ? OR o.sort_name LIKE ?)", &[&pattern, &pattern, &folded]);
    }
    if let Some(scope) = read_scope(&state.store, &signed.0.actor).await? {
        cond.and_wrapped("t.org_id IN (SELECT id FROM orgs WHERE ", scope, ")");
    }
    let columns = "t.slug, o.name AS org_name, o.code AS org_code, t.hostname, t.base_bouquet AS bouquet, t.status, \
                   t.coverage_lapsed_at";
    let from = "tenants t JOIN orgs o ON o.id = t.org_id";
    let listed = list::fetch::<Listed>(&state.store, &LIST, &params, columns, from, &cond).await?;
    let rows = listed
        .page
        .items
        .iter()
        .map(|t| {
            let status = Status::parse(&t.status).map_or_else(|| t.status.clone(), |s| status_label(s).to_string());
            let lapse = t.coverage_lapsed_at.as_deref().map(without_convention_since);
            vec![
                Cell::link(t.slug.clone(), format!("/ent/{}", t.slug)),
                Cell::text(format!("{} ({})", t.org_name, t.org_code)),
                Cell::text(t.hostname.clone()),
                Cell::text(t.bouquet.clone()),
                Cell::text(status).warning(lapse),
            ]
        })
        .collect();
    let view = ListView::new("ent", "/ent", "ENT de votre périmètre", &LIST, &params, &listed, rows);
    let shell = Shell::new(&console, Some(&signed.0), "/ent").crumbs(&[("ENT", "/ent")]);
    let values = json!({ "list": view, "can_request": authz::role_allows(&signed.0.actor, &TENANTS_WRITE) });
    Ok(page::render("tenants.html", shell, values))
}

/// What the page says of a service's processing: data, recipients, and whether its data
/// is a DPIA criterion (sensitive or highly personal).
fn service_facts(service: &Service) -> Value {
    let data: Vec<String> = service
        .rgpd
        .personal_data
        .iter()
        .map(|d| match (d.sensitive, d.highly_personal) {
            (true, _) => format!("{} (sensible)", d.category),
            (false, true) => format!("{} (hautement personnelle)", d.category),
            _ => d.category.clone(),
        })
        .collect();
    let dpia = service.rgpd.personal_data.iter().any(|d| d.sensitive || d.highly_personal);
    json!({
        "code": service.code,
        "name": service.name,
        "subjects": service.rgpd.data_subjects.join(", "),
        "data": data.join(" ; "),
        "recipients": service.rgpd.recipients.join(", "),
        "dpia": dpia,
        "transfers": service.rgpd.transfers_outside_eu,
    })
}

/// The base bouquets and options of the catalog, each with its services' RGPD facts.
fn offer(state: &TenantsState, fields: &Fields) -> (Vec<Value>, Vec<Value>) {
    let chosen_options = fields.all("options");
    let (mut bases, mut options) = (Vec::new(), Vec::new());
    for bouquet in state.catalog.latest_bouquets() {
        let services: Vec<Value> =
            bouquet.services.iter().filter_map(|code| state.catalog.service(code)).map(service_facts).collect();
        let degrees: Vec<&str> = bouquet.degrees.iter().map(|d| degree_label(*d)).collect::<Vec<_>>();
        let item = json!({
            "id": bouquet.id, "name": bouquet.name, "description": bouquet.description,
            "degrees": degrees.join(", "), "services": services,
            "checked": fields.get("bouquet") == bouquet.id || chosen_options.contains(&bouquet.id),
        });
        match bouquet.kind {
            BouquetKind::Base => bases.push(item),
            BouquetKind::Option => options.push(item),
        }
    }
    (bases, options)
}

/// The request form, filled from `fields`, with `refusal`'s messages beside the fields.
async fn request_page(on: &On<TenantsState>, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.labelled(field_label);
    let On { console, state, signed } = on;
    let chosen = chosen_org(&state.store, &signed.0.actor, fields.opt("organisation"), |_| false).await?;
    let search = fields.get("recherche");
    let mut found: Vec<_> = chosen.iter().cloned().collect();
    for kind in [OrgKind::Etablissement, OrgKind::Commune] {
        let filter = OrgFilter {
            kind: Some(kind.as_str().into()),
            q: Some(search.to_string()).filter(|s| !s.is_empty()),
            limit: Some(PROPOSED),
            ..Default::default()
        };
        let scope = authz::scope(&signed.0.actor, &TENANTS_WRITE).condition();
        found.extend(list_orgs(&state.store, &filter, scope).await?.items);
    }
    let candidates = org_choices(found, chosen.as_ref());
    let (bases, options) = offer(state, fields);
    let shell = Shell::new(console, Some(&signed.0), "/ent")
        .crumbs(&[("ENT", "/ent"), ("Demander un ENT", "/ent/nouveau")])
        .notice(refusal.notice.clone());
    let values = json!({
        "search": search,
        "candidates": candidates,
        "groups": [
            { "name": "bouquet", "legend": "3. Bouquet de services (obligatoire)", "input": "radio", "items": bases,
              "error": refusal.message("spec.bouquet") },
            { "name": "options", "legend": "4. Options", "input": "checkbox", "items": options,
              "error": options_message(&refusal) },
        ],
        "fields": { "nom": fields.get("nom"), "adresse": fields.get("adresse"), "comptes": fields.get("comptes") },
        "errors": refusal.errors,
        "error": {
            "organisation": refusal.message("spec.organisation"),
            "nom": refusal.message("metadata.name"),
            "adresse": refusal.message("spec.hostname"),
            "comptes": refusal.message("spec.accounts"),
        },
    });
    Ok(page::render_status(status, "tenant_new.html", shell, values))
}

/// `/ent/nouveau`.
async fn new_form(on: On<TenantsState>, Query(query): Query<Fields>) -> Result<Response, PageError> {
    request_page(&on, Reply::shown(&query, None)).await
}

/// What the refusal says of the options (`spec.options[i]`, each option at fault), if anything.
fn options_message(refusal: &Refusal) -> Option<String> {
    let said: Vec<&str> =
        refusal.errors.iter().filter(|e| is_options_field(&e.field)).map(|e| e.message.as_str()).collect();
    (!said.is_empty()).then(|| said.join(" ; "))
}

/// Whether `field` is the document's options or one of them (`spec.options[i]`).
fn is_options_field(field: &str) -> bool {
    field == "spec.options" || field.starts_with("spec.options[")
}

/// The label of a field of the request form, as the error summary names it.
fn field_label(field: &str) -> Option<&'static str> {
    let label = match field {
        "spec.organisation" => "Organisation retenue",
        "metadata.name" | "name" => "Nom court",
        "spec.hostname" => "Adresse web",
        "spec.bouquet" => "Bouquet de services",
        f if is_options_field(f) => "Options",
        "spec.accounts" => "Nombre de comptes prévu",
        _ => return None,
    };
    Some(label)
}

/// The id of the form control of a field of the `EntTenant` document.
fn control_id(field: &str) -> String {
    match field {
        "spec.organisation" => "organisation",
        "metadata.name" | "name" => "nom",
        "spec.hostname" => "adresse",
        "spec.bouquet" => "bouquet",
        f if is_options_field(f) => "options",
        "spec.accounts" => "comptes",
        _ => "demande",
    }
    .to_string()
}

/// The document the form describes, for `tenants::create`.
fn document_of(fields: &Fields) -> Result<EntTenant, Problem> {
    let accounts = match fields.opt("comptes") {
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| Problem::invalid_field("spec.accounts", "un nombre entier de comptes est attendu"))?,
        ),
        None => None,
    };
    let organisation = fields.opt("organisation").unwrap_or_default();
    let spec = json!({
        "organisation": organisation,
        "hostname": fields.get("adresse"),
        "bouquet": fields.get("bouquet"),
        "options": fields.all("options"),
        "accounts": accounts,
    });
    let spec: TenantSpec = serde_json::from_value(spec).map_err(|e| Problem::bad_request(e.to_string()))?;
    Ok(EntTenant {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: Metadata { name: fields.get("nom").to_string(), labels: Default::default() },
        spec,
    })
}

/// Posted request form: a search (`forms::searching`: its button, or Enter in a changed search box) shows it again with the organisations found,
/// otherwise the tenant is created (a slug already taken is refused, never reconfigured)
/// and its page opened.
async fn request(on: On<TenantsState>, Form(fields): Form<Fields>) -> Result<Response, PageError> {
    let On { state, signed, .. } = &on;
    if searching(&fields) {
        return request_page(&on, Reply::shown(&fields, None)).await;
    }
    let applied = match document_of(&fields) {
        Ok(doc) => create(state, &signed.0.actor, &doc).await,
        Err(problem) => Err(problem),
    };
    answer(
        applied,
        |tenant| reconciled_page(state, &tenant, "demande"),
        async |problem| request_page(&on, Reply::refused(&fields, &problem, control_id)).await,
    )
    .await
}

/// The page of `tenant` after a change (`after` names it), the tenant reconciled soon.
fn reconciled_page(state: &TenantsState, tenant: &Tenant, after: &str) -> String {
    reconcile_soon(&state.provisioning(), &tenant.slug);
    format!("/ent/{}?apres={after}", tenant.slug)
}

/// The tenant of the path if the person may read it (404 otherwise, as for a missing one).
async fn readable(state: &TenantsState, signed: &Signed, key: &str) -> Result<Tenant, Problem> {
    let not_found = || Problem::not_found(format!("aucun ENT « {key} »"));
    find_for(&state.store, &caller(signed, &TENANTS_READ), key, not_found)
        .await
        .map_err(|p| page::as_missing(p, not_found))
}

/// The tenant of the path (`/ent/{ent}`) once the person may read it ([`readable`]), with what
/// its page works with.
struct TenantOfPath {
    on: On<TenantsState>,
    tenant: Tenant,
}

impl<S> FromRequestParts<S> for TenantOfPath
where
    S: Sync,
    (On<TenantsState>, Path<String>): FromRequestParts<S, Rejection = Response>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let (on, Path(key)) = <(On<TenantsState>, Path<String>)>::from_request_parts(parts, state).await?;
        let tenant = readable(&on.state, &on.signed, &key).await.map_err(|p| PageError(p).into_response())?;
        Ok(TenantOfPath { on, tenant })
    }
}

/// `/ent/{ent}`.
async fn show(TenantOfPath { on, tenant }: TenantOfPath, Query(query): Query<Fields>) -> Result<Response, PageError> {
    let notice = match query.get("apres") {
        "etat" => Some(Notice::success(format!("L'ENT est désormais {}.", status_label(tenant.status)))),
        after => Notice::after(
            after,
            &[
                ("demande", "L'ENT est demandé : son déploiement attend une convention en vigueur."),
                ("service", "Le service est ajouté à l'ENT."),
            ],
        ),
    };
    tenant_page(&on, &tenant, Reply::shown(&Fields::default(), notice), None).await
}

/// `/ent/{ent}/attestation-destruction`: the attestation of destruction of a purged tenant's
/// data, as stored when it was issued (the API's `/tenants/{slug}/destruction`).
async fn attestation(TenantOfPath { on, tenant }: TenantOfPath) -> Result<Response, PageError> {
    let missing = || PageError(Problem::not_found("aucune attestation de destruction pour cet ENT"));
    destruction::document(&on.state.store, &tenant.id).await?.ok_or_else(missing)
}

/// The tenant's page; `confirm`: the move the person is asked to confirm.
async fn tenant_page(
    on: &On<TenantsState>,
    tenant: &Tenant,
    reply: Reply<'_>,
    confirm: Option<Status>,
) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let On { console, state, signed } = on;
    let actor = &signed.0.actor;
    // A tenant a custom resource declares changes through it only: no form offered.
    let writable = tenant.declared_by.is_none();
    let moves: Vec<Value> = if writable && may(state, actor, &TENANTS_TRANSITION, tenant).await? {
        Status::ALL
            .iter()
            .filter(|to| tenant.status.can_move_to(**to))
            .map(|to| json!({ "to": to.as_str(), "label": move_label(*to), "destructive": consequence(*to).is_some() }))
            .collect()
    } else {
        Vec::new()
    };
    let addable = if writable && may(state, actor, &TENANTS_WRITE, tenant).await? {
        addable_options(state, tenant)
    } else {
        Vec::new()
    };
    let objects: Vec<Value> = if actor.is_admin() {
        render(state, tenant)
            .await?
            .into_iter()
            .map(|o| {
                let text = serde_json::to_string_pretty(&o.manifest).unwrap_or_default();
                json!({ "kind": o.kind, "name": o.name, "manifest": text })
            })
            .collect()
    } else {
        Vec::new()
    };
    let events: Vec<Value> = events_read_by(&state.store, actor, &tenant.id)
        .await?
        .into_iter()
        .map(|e| {
            json!({ "at": french_moment(&e.at), "actor": e.actor, "kind": french_code(EVENT_KINDS, &e.kind),
                    "message": e.message })
        })
        .collect();
    let p = &tenant.provisioning_state;
    let moment = |t: &Option<String>| t.as_deref().map(french_moment);
    let purge = purge_window(state, tenant);
    let mut shown = [tenant.clone()];
    read_by(&state.store, actor, &mut shown).await?;
    let [shown] = shown;
    let path = format!("/ent/{}", tenant.slug);
    let shell = Shell::new(console, Some(&signed.0), "/ent")
        .crumbs(&[("ENT", "/ent"), (&tenant.slug, &path)])
        .notice(refusal.notice.clone());
    let values = json!({
        "title": format!("ENT {}", tenant.slug),
        "tenant": {
            "slug": tenant.slug, "organisation": tenant.organisation.name, "code": tenant.organisation.code,
            "hostname": tenant.hostname, "bouquet": tenant.bouquet, "options": tenant.options.join(", "),
            "accounts": tenant.accounts, "status": tenant.status.as_str(), "status_label": status_label(tenant.status),
            "convention": tenant.convention_id,
            "lapse": tenant.coverage_lapsed_at.as_deref().map(|at| json!({
                "title": without_convention_since(at), "uncovered": tenant.coverage_uncovered.join(", "),
            })),
            "override": shown.gate_override.as_ref().map(|o| json!({ "by": o.by, "reason": o.reason,
                                                                       "uncovered": o.uncovered.join(", ") })),
            "vendor": tenant.vendor.as_ref().map(|o| o.name.clone()),
            "host": tenant.host.as_ref().map(|o| o.name.clone()),
            "declared_by": tenant.declared_by,
            "destruction": tenant.destruction.as_ref().map(|d| json!({ "reference": d.reference,
                "at": french_moment(&d.attested_at), "sha256": d.sha256, "said": d.said(),
                "href": format!("/ent/{}/attestation-destruction", tenant.slug) })),
            "destruction_requested": destruction_requested(state, tenant).await?,
        },
        "provisioning": {
            "reconciled_at": moment(&p.reconciled_at), "error": p.error, "failures": p.failures,
            "retry_at": moment(&p.retry_at), "observed": p.observed.as_deref().map(|o| french_code(OBSERVED, o)), "observed_detail": p.observed_detail,
            "observed_at": moment(&p.observed_at), "archived_at": moment(&p.archived_at),
            "purge_on": purge.as_ref().map(|w| &w.on), "purge_by": purge.as_ref().map(|w| &w.by),
            "purge_announced_at": moment(&p.purge_announced_at),
        },
        "moves": moves,
        "confirm": confirm.map(|to| json!({ "to": to.as_str(), "label": move_label(to), "consequence": consequence(to),
                                             "needs_reason": to.needs_reason(), "reason_label": reason_label(to) })),
        "addable": addable,
        "market": market(state, tenant).await?,
        "annex_warnings": annex_warnings(state, actor, tenant).await?,
        "admin": actor.is_admin(),
        "objects": objects,
        "events": events,
        "fields": { "derogation": fields.get("derogation"), "motif": fields.get("motif"), "service": fields.get("service") },
        "error": refusal.by_control(),
        "errors": refusal.errors,
    });
    Ok(page::render_status(status, "tenant.html", shell, values))
}

/// What the accord-cadre binding a tenant still served says of its éditeur, as the API's answers
/// say it (`tenants::market_notice`): the titulaire's role, or the warning of another éditeur.
async fn market(state: &TenantsState, tenant: &Tenant) -> Result<Option<Value>, Problem> {
    if !tenant.status.still_served() {
        return Ok(None);
    }
    let today = today_in_france(state.clock.now());
    let notice = market_notice(&state.store, tenant, today).await?;
    Ok(notice.map(|n| json!({ "text": n.text, "other_vendor": n.other_vendor })))
}

/// When the purge of a purged tenant whose attestation is not issued yet asked for the
/// destruction of its data (the attestation waits for the backend to report it removed).
async fn destruction_requested(state: &TenantsState, tenant: &Tenant) -> Result<Option<String>, Problem> {
    if tenant.status != Status::Purged || tenant.destruction.is_some() {
        return Ok(None);
    }
    let requested = destruction::requested(&state.store, &tenant.id).await?;
    Ok(requested.map(|r| french_moment(&r.requested_at)))
}

/// The days between which the data of an archived tenant are purged, as the page says them:
/// from its stored due date (`purge::due_of`), at the latest `purge::HOLD_DAYS` after it.
fn purge_window(state: &TenantsState, tenant: &Tenant) -> Option<purge::Window> {
    let due = purge::due_of(tenant, state.config.provisioning.retention_months)?;
    Some(purge::Window::of(due, due))
}

/// The control of a field of a move (`reason`: the « Motif » box).
fn move_control(field: &str) -> String {
    match field {
        "override_reason" => "derogation",
        "reason" => "motif",
        other => other,
    }
    .to_string()
}

/// Moves the tenant to the status posted (`vers`), for the reason posted (`motif`); the
/// gate's refusal is shown as it is. A move that cuts or removes the service is first shown
/// to confirm (its consequence, the reason, a button posting it again with
/// `confirmation=oui`), and made only then; a reason refused shows that confirmation again.
async fn move_to(TenantOfPath { on, tenant }: TenantOfPath, Form(fields): Form<Fields>) -> Result<Response, PageError> {
    let On { state, signed, .. } = &on;
    let target = Status::parse(fields.get("vers"));
    let confirmed = target.filter(|to| consequence(*to).is_some());
    if let Some(to) = confirmed.filter(|_| fields.get("confirmation") != "oui") {
        let offered = tenant.declared_by.is_none() && tenant.status.can_move_to(to);
        if offered && may(state, &signed.0.actor, &TENANTS_TRANSITION, &tenant).await? {
            return tenant_page(&on, &tenant, Reply::shown(&fields, None), Some(to)).await;
        }
    }
    let (reason, derogation) = (fields.opt("motif"), fields.opt("derogation"));
    let moved = match target {
        Some(_) if tenant.declared_by.is_some() => declared_elsewhere(&tenant, None).map(|()| tenant.clone()),
        Some(to) => {
            let step = Move { to, reason: reason.as_deref(), override_reason: derogation.as_deref() };
            transition(state, &signed.0.actor, &tenant, step).await
        }
        None => Err(Problem::invalid_field("vers", "choisissez l'état visé")),
    };
    match moved {
        Err(problem) if problem.kind == ProblemKind::Validation && confirmed.is_some() => {
            tenant_page(&on, &tenant, Reply::refused(&fields, &problem, move_control), confirmed).await
        }
        moved => changed(&on, &tenant, &fields, moved, "etat", move_control).await,
    }
}

/// The tail of a form of the tenant page: the tenant reconciled soon and its page shown
/// with the notice of `after`, or the page again with the domain's refusal (`id_of`
/// names the controls of its fields).
async fn changed(
    on: &On<TenantsState>,
    tenant: &Tenant,
    fields: &Fields,
    done: Result<Tenant, Problem>,
    after: &str,
    id_of: impl Fn(&str) -> String,
) -> Result<Response, PageError> {
    answer(
        done,
        |changed| reconciled_page(&on.state, &changed, after),
        async |problem| tenant_page(on, tenant, Reply::refused(fields, &problem, id_of), None).await,
    )
    .await
}

/// Whether `actor` may `action` on the tenant's organisation (the forms of its page are
/// offered only then; the domain checks it again on each change).
async fn may(state: &TenantsState, actor: &Actor, action: &'static Action, tenant: &Tenant) -> Result<bool, Problem> {
    let Some(org) = get_org(&state.store, &tenant.organisation.id).await? else {
        return Ok(false);
    };
    match (Caller { actor: actor.clone(), action }).require(&state.store, &org).await {
        Ok(()) => Ok(true),
        Err(p) if p.kind.status().is_server_error() => Err(p),
        Err(_) => Ok(false),
    }
}

/// The catalog's options the tenant has not yet, offered to those who may change it.
fn addable_options(state: &TenantsState, tenant: &Tenant) -> Vec<Value> {
    state
        .catalog
        .latest_bouquets()
        .into_iter()
        .filter(|b| b.kind == BouquetKind::Option && !tenant.options.contains(&b.id))
        .map(|b| json!({ "id": b.id, "name": b.name }))
        .collect()
}

/// The tenant's document as it stands, with the option `option` added.
fn with_option(tenant: &Tenant, option: &str) -> Result<EntTenant, Problem> {
    if let Some(i) = tenant.options.iter().position(|o| o == option) {
        return Err(Problem::invalid_field(&format!("spec.options[{i}]"), "ce service fait déjà partie de l'ENT"));
    }
    let mut options = tenant.options.clone();
    options.push(option.to_string());
    Ok(EntTenant {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: Metadata { name: tenant.slug.clone(), labels: Default::default() },
        spec: TenantSpec {
            organisation: tenant.organisation.id.clone(),
            hostname: tenant.hostname.clone(),
            bouquet: tenant.bouquet.clone(),
            options,
            accounts: Some(tenant.accounts),
            identity_source: tenant.identity_source,
            vendor: None,
            host: None,
        },
    })
}

/// Adds the option posted (`service`) to the tenant: the document applied as the API's
/// `PUT` does, at the version read; the domain's refusal shown on the page.
async fn add_service(
    TenantOfPath { on, tenant }: TenantOfPath,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let On { state, signed, .. } = &on;
    let applied = match fields.opt("service") {
        Some(option) => match with_option(&tenant, &option) {
            Ok(doc) => apply(state, &signed.0.actor, &doc, Some(tenant.version)).await.map(|(_, t)| t),
            Err(problem) => Err(problem),
        },
        None => Err(Problem::invalid_field("spec.options", "choisissez le service à ajouter")),
    };
    let id_of = |f: &str| if f.starts_with("spec.options") { "service".into() } else { f.into() };
    changed(&on, &tenant, &fields, applied, "service", id_of).await
}
