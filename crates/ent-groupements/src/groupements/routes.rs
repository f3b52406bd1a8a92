//! `/api/v1/groupements`: the coordinator manages its groupements; a
//! collectivité applies for itself (or what it covers) and sees its own
//! applications; members see the member list, their share and the documents;
//! the public facts (and, once awarded, the DECP record) are open to every
//! reader; shared documents to every coordinator.

use super::award::{self, AwardInput};
use super::costs::Shares;
use super::documents::{self, Kind, LibraryFilter, StoredDocument};
use super::guard;
use super::membership::{self, Application, ApplicationPatch, NewApplication, Prefill};
use super::sans_suite::{self, SansSuiteInput};
use super::{Ctx, GroupementsState};
use super::{Groupement, GroupementFilter, GroupementPatch, NewGroupement, Status};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ent_documents::documents::response::document as document_response;
use ent_documents::documents::{ODS_MIME, ODT_MIME};
use ent_kernel::error::Problem;
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::http::{IfMatchHeader, Versioned};
use ent_kernel::store::{Page, Store};
use ent_kernel::{route_table, version_field};
use ent_platform::identity::authz::{
    self, forbidden, in_org_scope, Call, Op, GROUPEMENTS_APPLY, GROUPEMENTS_LIBRARY, GROUPEMENTS_MANAGE,
    GROUPEMENTS_READ,
};
use ent_platform::identity::Caller;
use ent_platform::registry::{get_org, Org};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

route_table!(GroupementsState, "groupements", |api| vec![
    api.get("/api/v1/groupements", "Lister les groupements de commandes", &GROUPEMENTS_READ, list)
        .pages::<GroupementFilter, Groupement>(),
    api.post("/api/v1/groupements", "Ouvrir un groupement (coordonnateur)", &GROUPEMENTS_MANAGE, create)
        .creates::<NewGroupement, Groupement>(),
    api.get("/api/v1/groupements/{id}", "Consulter un groupement", &GROUPEMENTS_READ, show)
        .ok_versioned::<Groupement>(),
    api.patch("/api/v1/groupements/{id}", "Modifier (If-Match ; ouvert ou clos)", &GROUPEMENTS_MANAGE, update)
        .if_match_update::<GroupementPatch, Groupement>(),
    api.post(
        "/api/v1/groupements/{id}/transition",
        "Clore, rouvrir, lancer la consultation, exécuter, terminer",
        &GROUPEMENTS_MANAGE,
        transition,
    )
    .json_body::<TransitionBody>()
    .ok_versioned::<Groupement>(),
    api.post(
        "/api/v1/groupements/{id}/sans-suite",
        "Déclarer la consultation sans suite (If-Match ; motif et justification ; retour à l'état clos)",
        &GROUPEMENTS_MANAGE,
        declare_sans_suite,
    )
    .if_match()
    .json_body::<SansSuiteInput>()
    .ok_versioned::<Groupement>(),
    api.post(
        "/api/v1/groupements/{id}/lots/{lot}/sans-suite",
        "Déclarer un lot sans suite (If-Match ; motif et justification ; les autres lots restent à attribuer)",
        &GROUPEMENTS_MANAGE,
        declare_lot_sans_suite,
    )
    .if_match()
    .json_body::<SansSuiteInput>()
    .ok_versioned::<Groupement>(),
    api.post("/api/v1/groupements/{id}/award", "Attribuer le marché (chaque lot)", &GROUPEMENTS_MANAGE, award_route)
        .json_body::<AwardInput>()
        .ok_versioned::<Groupement>(),
    api.get(
        "/api/v1/groupements/{id}/decp",
        "Données essentielles (DECP v2, JSON) du marché attribué",
        &GROUPEMENTS_READ,
        decp_record,
    )
    .ok::<serde_json::Value>(),
    api.get(
        "/api/v1/groupements/{id}/prefill",
        "Quantités d'une candidature préremplies depuis le répertoire",
        &GROUPEMENTS_APPLY,
        prefill,
    )
    .query::<PrefillQuery>()
    .ok::<Prefill>(),
    api.get(
        "/api/v1/groupements/{id}/applications",
        "Candidatures (toutes pour le coordonnateur, les siennes sinon)",
        &GROUPEMENTS_READ,
        applications,
    )
    .ok::<Vec<Application>>(),
    api.post(
        "/api/v1/groupements/{id}/applications",
        "Candidater (délibération et quantités)",
        &GROUPEMENTS_APPLY,
        apply,
    )
    .creates::<NewApplication, Application>(),
    api.patch(
        "/api/v1/groupements/{id}/applications/{application}",
        "Modifier sa candidature (If-Match ; jusqu'à la date limite, avant la décision)",
        &GROUPEMENTS_APPLY,
        update_application,
    )
    .if_match_update::<ApplicationPatch, Application>(),
    api.post(
        "/api/v1/groupements/{id}/applications/{application}/withdraw",
        "Retirer sa candidature (jusqu'à la clôture)",
        &GROUPEMENTS_APPLY,
        withdraw,
    )
    .ok_versioned::<Application>(),
    api.post(
        "/api/v1/groupements/{id}/applications/{application}/accept",
        "Accepter une candidature (rejoint la convention constitutive)",
        &GROUPEMENTS_MANAGE,
        accept,
    )
    .ok_versioned::<Application>(),
    api.post(
        "/api/v1/groupements/{id}/acceptances",
        "Accepter plusieurs candidatures d'un coup (une seule mise à jour de la convention)",
        &GROUPEMENTS_MANAGE,
        accept_many,
    )
    .json_body::<AcceptBody>()
    .ok::<Vec<Application>>(),
    api.post(
        "/api/v1/groupements/{id}/applications/{application}/reject",
        "Refuser une candidature (motif)",
        &GROUPEMENTS_MANAGE,
        reject,
    )
    .json_body::<RejectBody>()
    .ok_versioned::<Application>(),
    api.get("/api/v1/groupements/{id}/members", "Membres du groupement", &GROUPEMENTS_READ, members)
        .ok::<Vec<Application>>(),
    api.get(
        "/api/v1/groupements/{id}/shares",
        "Quotes-parts (toutes pour le coordonnateur, la sienne pour un membre)",
        &GROUPEMENTS_READ,
        shares,
    )
    .ok::<Shares>(),
    api.get(
        "/api/v1/groupements/{id}/documents",
        "Documents générés et leurs versions",
        &GROUPEMENTS_READ,
        document_versions,
    )
    .ok::<Vec<StoredDocument>>(),
    api.post(
        "/api/v1/groupements/{id}/documents",
        "Générer un document (nouvelle version s'il a changé)",
        &GROUPEMENTS_MANAGE,
        generate,
    )
    .json_body::<GenerateBody>()
    .created::<StoredDocument>(),
    api.get(
        "/api/v1/groupements/{id}/documents/{document}",
        "Télécharger une version (format=html|odt|pdf|ods)",
        &GROUPEMENTS_READ,
        download,
    )
    .query::<FormatQuery>()
    .produces(StatusCode::OK, &["text/html; charset=utf-8", ODT_MIME, ODS_MIME, "application/pdf",],),
    api.post(
        "/api/v1/groupements/{id}/documents/{document}/share",
        "Partager une version avec les coordonnateurs de toutes les académies",
        &GROUPEMENTS_MANAGE,
        share,
    )
    .json_body::<ShareBody>()
    .ok::<StoredDocument>(),
    api.get(
        "/api/v1/groupement-library",
        "Bibliothèque des documents partagés entre académies",
        &GROUPEMENTS_LIBRARY,
        library,
    )
    .pages::<LibraryFilter, StoredDocument>(),
]);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// `closed`, `open` (reopen), `consultation`, `running` or `ended`.
    pub to: Status,
    /// `ended` before the term of the accord-cadre (a résiliation): its reason, required then,
    /// sent to the members (2 000 characters at most).
    #[serde(default)]
    pub reason: Option<String>,
    /// `consultation` only, and required then: the date and time limits for the receipt of
    /// offers the RC publishes, RFC 3339 or `AAAA-MM-JJTHH:MM` (heure de Paris); after the
    /// launch day, and for an appel d'offres ouvert 30 full days after it at least (articles
    /// R. 2161-2 and R. 2161-3, 2°, du code de la commande publique: offers sent electronically).
    #[serde(default)]
    pub offers_deadline: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PrefillQuery {
    /// The applying collectivité (id or `kind:code`).
    pub applicant: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// Ids of applications in the `applied` state.
    pub applications: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    pub reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// `presentation`, `rc`, `ae`, `ccap`, `cctp`, `membres` or `quantites`.
    pub kind: Kind,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct FormatQuery {
    /// `html` (default for text documents), `odt`, `pdf`, or `ods` (quantity annex).
    #[schemars(extend("enum" = ["html", "odt", "pdf", "ods"]))]
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    pub shared: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Generated {
    #[serde(flatten)]
    document: StoredDocument,
    /// False when the document had not changed since its latest version.
    new_version: bool,
}

/// The groupement of the path, its coordinator calling ([`guard::coordinated`]: 404, then 403).
pub async fn coordinated(state: &GroupementsState, caller: &Caller, id: &str) -> Result<Groupement, Problem> {
    guard::coordinated(&state.store, caller, id).await
}

/// Organisations the caller holds a role at for this route's action.
fn caller_orgs(caller: &Caller) -> Vec<Org> {
    caller
        .actor
        .bindings
        .iter()
        .filter(|b| caller.action.roles.contains(&b.role))
        .filter_map(|b| b.org.clone())
        .collect()
}

/// Whether the caller acts for an accepted member of `members`.
pub fn member_of<'m>(caller: &Caller, members: &'m [Application]) -> Vec<&'m Application> {
    let orgs = caller_orgs(caller);
    members.iter().filter(|m| orgs.iter().any(|o| o.id == m.applicant.id)).collect()
}

/// The coordinator, or a member; 403 for anyone else (who reads the groupement itself: a 404
/// would deny what `GET /groupements/{id}` shows).
pub async fn coordinator_or_member(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
) -> Result<Vec<Application>, Problem> {
    let members = membership::members(&state.store, &g.id).await?;
    if coordinates_or_belongs(caller, g, &members) {
        Ok(members)
    } else {
        Err(forbidden(format!(
            "réservé au coordonnateur ({}) et aux membres du groupement {}",
            g.coordinator.name, g.reference
        )))
    }
}

/// Whether the caller acts for `g`'s coordinator (or is an administrator) or for one of its
/// accepted `members`.
fn coordinates_or_belongs(caller: &Caller, g: &Groupement, members: &[Application]) -> bool {
    super::is_coordinator(&caller.actor, g) || !member_of(caller, members).is_empty()
}

/// Whether the caller sees the award's unit prices of `g` (the winner's BPU, its commercial
/// terms): the coordinator's users and administrators, and the users of an accepted member.
async fn sees_prices(state: &GroupementsState, caller: &Caller, g: &Groupement) -> Result<bool, Problem> {
    if super::is_coordinator(&caller.actor, g) {
        return Ok(true);
    }
    let members = membership::members(&state.store, &g.id).await?;
    Ok(!member_of(caller, &members).is_empty())
}

/// `g` as the caller reads it: its award without the unit prices nor the members' tenants it
/// left with their vendor unless it [`sees_prices`].
async fn as_read(state: &GroupementsState, caller: &Caller, mut g: Groupement) -> Result<Groupement, Problem> {
    if g.award.is_some() && !sees_prices(state, caller, &g).await? {
        if let Some(award) = g.award.as_mut() {
            award.unit_prices.clear();
            award.kept_tenants.clear();
            award.warnings.clear();
            award.lots.iter_mut().for_each(|l| l.unit_prices.clear());
        }
    }
    Ok(g)
}

async fn list(
    Call { state, caller }: Call<GroupementsState>,
    ApiQuery(filter): ApiQuery<GroupementFilter>,
) -> Result<Json<Page<Groupement>>, Problem> {
    let page = super::list(&state.store, &caller.actor, &filter).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for g in page.items {
        items.push(as_read(&state, &caller, g).await?);
    }
    Ok(Json(Page { items, next_cursor: page.next_cursor }))
}

async fn create(
    Call { state, caller }: Call<GroupementsState>,
    ApiJson(body): ApiJson<NewGroupement>,
) -> Result<Response, Problem> {
    let g = super::create(&state.ctx(&caller.actor), body).await?;
    Ok(Versioned::created(g).into_response())
}

async fn show(Op { state, caller, key: id }: Op<GroupementsState>) -> Result<Response, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    Ok(Versioned::ok(as_read(&state, &caller, g).await?).into_response())
}

/// An operation of the coordinator on the groupement of the path (404, then 403), run
/// as the caller; the groupement answered with its `ETag`.
async fn coordinator_step(
    Op { state, caller, key: id }: Op<GroupementsState>,
    step: impl AsyncFnOnce(&Ctx<'_>, &Groupement) -> Result<Groupement, Problem>,
) -> Result<Response, Problem> {
    let g = coordinated(&state, &caller, &id).await?;
    Ok(Versioned::ok(step(&state.ctx(&caller.actor), &g).await?).into_response())
}

/// The coordinator's decision on an application of the groupement of the path; the
/// application answered with its `ETag`.
async fn decision(
    Op { state, caller, key: (id, application) }: Op<GroupementsState, (String, String)>,
    decide: impl AsyncFnOnce(&Ctx<'_>, &Groupement, &Application) -> Result<Application, Problem>,
) -> Result<Response, Problem> {
    let g = coordinated(&state, &caller, &id).await?;
    let app = membership::get(&state.store, &g.id, &application).await?;
    Ok(Versioned::ok(decide(&state.ctx(&caller.actor), &g, &app).await?).into_response())
}

async fn update(
    op: Op<GroupementsState>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<GroupementPatch>,
) -> Result<Response, Problem> {
    coordinator_step(op, async |ctx, g| super::update(ctx, g, if_match.version(g.version)?, body).await).await
}

async fn transition(op: Op<GroupementsState>, ApiJson(body): ApiJson<TransitionBody>) -> Result<Response, Problem> {
    coordinator_step(op, async |ctx, g| {
        super::transition(ctx, g, body.to, body.reason.as_deref(), body.offers_deadline.as_deref()).await
    })
    .await
}

async fn declare_sans_suite(
    op: Op<GroupementsState>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<SansSuiteInput>,
) -> Result<Response, Problem> {
    coordinator_step(op, async |ctx, g| sans_suite::declare(ctx, g, if_match.version(g.version)?, &body).await).await
}

async fn declare_lot_sans_suite(
    Op { state, caller, key: (id, lot) }: Op<GroupementsState, (String, String)>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<SansSuiteInput>,
) -> Result<Response, Problem> {
    let g = coordinated(&state, &caller, &id).await?;
    let number =
        lot.parse().map_err(|_| Problem::not_found(format!("le groupement {} n'a pas de lot {lot}", g.reference)))?;
    let ctx = state.ctx(&caller.actor);
    let declared = sans_suite::declare_lot(&ctx, &g, if_match.version(g.version)?, number, &body).await?;
    Ok(Versioned::ok(declared).into_response())
}

async fn award_route(op: Op<GroupementsState>, ApiJson(body): ApiJson<AwardInput>) -> Result<Response, Problem> {
    coordinator_step(op, async |ctx, g| award::award(ctx, g, body).await).await
}

async fn decp_record(Op { state, caller, key: id }: Op<GroupementsState>) -> Result<Response, Problem> {
    let mut g = super::must_get(&state.store, &id).await?;
    // Through the API (a bearer token, no ambient credential) the coordinator's first download
    // publishes; the console publishes by a form (a GET there could be forged cross-site).
    if g.decp_published_on.is_none() && g.award.is_some() && super::is_coordinator(&caller.actor, &g) {
        g = award::publish_decp(&state.ctx(&caller.actor), &g).await?;
    }
    decp_file(&state, &caller, &g).await
}

/// The published DECP record of `g`'s award, a JSON file to download (`decp-GC-….json`), as
/// the API and the console serve it.
pub async fn decp_file(state: &GroupementsState, caller: &Caller, g: &Groupement) -> Result<Response, Problem> {
    let file = award::decp_publication(&state.ctx(&caller.actor), g).await?;
    let disposition = format!("attachment; filename=\"decp-{}.json\"", g.reference);
    let mut response = Json(file).into_response();
    response.headers_mut().insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("ascii"));
    Ok(response)
}

async fn prefill(
    Op { state, caller, key: id }: Op<GroupementsState>,
    ApiQuery(q): ApiQuery<PrefillQuery>,
) -> Result<Json<Prefill>, Problem> {
    super::must_get(&state.store, &id).await?;
    Ok(Json(prefill_for(&state, &caller, &q.applicant).await?))
}

/// The registry's figures for the applicant `key`, in the caller's scope.
pub async fn prefill_for(state: &GroupementsState, caller: &Caller, key: &str) -> Result<Prefill, Problem> {
    let applicant = membership::applicant_for(&state.store, caller, key).await?;
    membership::prefill(&state.store, &applicant).await
}

async fn applications(Op { state, caller, key: id }: Op<GroupementsState>) -> Result<Json<Vec<Application>>, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    Ok(Json(visible_applications(&state, &caller, &g).await?))
}

/// The applications of `g` the caller sees: all for its coordinator, else those of the
/// collectivités in the caller's scope.
pub async fn visible_applications(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
) -> Result<Vec<Application>, Problem> {
    let all = membership::list(&state.store, &g.id, None).await?;
    if super::is_coordinator(&caller.actor, g) {
        return Ok(all);
    }
    let orgs = caller_orgs(caller);
    let mut own = Vec::new();
    for app in all {
        let Some(applicant) = get_org(&state.store, &app.applicant.id).await? else { continue };
        for org in &orgs {
            if in_org_scope(&state.store, org, &applicant).await? {
                own.push(app);
                break;
            }
        }
    }
    Ok(own)
}

async fn apply(
    Op { state, caller, key: id }: Op<GroupementsState>,
    ApiJson(body): ApiJson<NewApplication>,
) -> Result<Response, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    Ok(Versioned::created(apply_for(&state, &caller, &g, body).await?).into_response())
}

/// Files the application `body` to `g`, its applicant in the caller's scope.
pub async fn apply_for(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
    body: NewApplication,
) -> Result<Application, Problem> {
    let applicant = membership::applicant_for(&state.store, caller, &body.applicant).await?;
    membership::apply(&state.ctx(&caller.actor), g, &applicant, body).await
}

async fn withdraw(
    Op { state, caller, key: (id, application) }: Op<GroupementsState, (String, String)>,
) -> Result<Response, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    Ok(Versioned::ok(withdraw_for(&state, &caller, &g, &application).await?).into_response())
}

/// Withdraws the application `application` of `g`, its applicant in the caller's scope.
pub async fn withdraw_for(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
    application: &str,
) -> Result<Application, Problem> {
    let app = own_application(state, caller, g, application).await?;
    membership::withdraw(&state.ctx(&caller.actor), g, &app).await
}

async fn update_application(
    Op { state, caller, key: (id, application) }: Op<GroupementsState, (String, String)>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<ApplicationPatch>,
) -> Result<Response, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    let app = own_application(&state, &caller, &g, &application).await?;
    let version = if_match.version(app.version)?;
    let updated = membership::update(&state.ctx(&caller.actor), &g, &app, version, body).await?;
    Ok(Versioned::ok(updated).into_response())
}

/// The application `application` of `g` the caller acts on as its applicant ([`guard::own_application`]).
pub async fn own_application(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
    application: &str,
) -> Result<Application, Problem> {
    guard::own_application(&state.store, caller, g, application).await
}

/// Changes the application `application` of `g` (its applicant in the caller's scope) from
/// the `expected_version` the caller read.
pub async fn update_for(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
    application: &str,
    expected_version: i64,
    patch: ApplicationPatch,
) -> Result<Application, Problem> {
    let app = own_application(state, caller, g, application).await?;
    membership::update(&state.ctx(&caller.actor), g, &app, expected_version, patch).await
}

async fn accept(op: Op<GroupementsState, (String, String)>) -> Result<Response, Problem> {
    decision(op, membership::accept).await
}

async fn accept_many(
    Op { state, caller, key: id }: Op<GroupementsState>,
    ApiJson(body): ApiJson<AcceptBody>,
) -> Result<Json<Vec<Application>>, Problem> {
    let g = coordinated(&state, &caller, &id).await?;
    Ok(Json(accept_these(&state, &caller, &g, &body.applications).await?))
}

/// The coordinator accepts the applications `ids` of `g` at once.
pub async fn accept_these(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
    ids: &[String],
) -> Result<Vec<Application>, Problem> {
    if ids.len() > 1000 {
        return Err(Problem::invalid_field("applications", "1 000 candidatures au plus par appel"));
    }
    let mut apps = Vec::new();
    for app in ids {
        apps.push(membership::get(&state.store, &g.id, app).await?);
    }
    membership::accept_many(&state.ctx(&caller.actor), g, &apps).await
}

async fn reject(
    op: Op<GroupementsState, (String, String)>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Response, Problem> {
    decision(op, async |ctx, g, app| membership::reject(ctx, g, app, &body.reason).await).await
}

async fn members(Op { state, caller, key: id }: Op<GroupementsState>) -> Result<Json<Vec<Application>>, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    Ok(Json(coordinator_or_member(&state, &caller, &g).await?))
}

async fn shares(Op { state, caller, key: id }: Op<GroupementsState>) -> Result<Json<Shares>, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    Ok(Json(visible_shares(&state, &caller, &g).await?))
}

/// The shares of `g` the caller sees: every member's for its coordinator, a member's own
/// otherwise (404 for anyone else, 409 before the award).
pub async fn visible_shares(state: &GroupementsState, caller: &Caller, g: &Groupement) -> Result<Shares, Problem> {
    let members = coordinator_or_member(state, caller, g).await?;
    let mut shares = membership::shares_of(g, &members)?;
    if !super::is_coordinator(&caller.actor, g) {
        let own: Vec<String> = member_of(caller, &members).iter().map(|m| m.applicant.id.clone()).collect();
        shares.shares.retain(|s| own.contains(&s.member.id));
    }
    Ok(shares)
}

async fn document_versions(
    Op { state, caller, key: id }: Op<GroupementsState>,
) -> Result<Json<Vec<StoredDocument>>, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    coordinator_or_member(&state, &caller, &g).await?;
    Ok(Json(documents::versions(&state.store, &g.id).await?))
}

async fn generate(
    Op { state, caller, key: id }: Op<GroupementsState>,
    ApiJson(body): ApiJson<GenerateBody>,
) -> Result<Response, Problem> {
    let g = coordinated(&state, &caller, &id).await?;
    let (document, new_version) = documents::generate(&state.ctx(&caller.actor), &g, body.kind).await?;
    let status = if new_version { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Generated { document, new_version })).into_response())
}

/// The version `document` of `g` (404 when it is another groupement's).
pub async fn version_of(state: &GroupementsState, g: &Groupement, document: &str) -> Result<StoredDocument, Problem> {
    documents::get_version(&state.store, document)
        .await?
        .filter(|d| d.groupement_id == g.id)
        .ok_or_else(|| Problem::not_found(format!("aucun document « {document} »")))
}

/// A version of this groupement the caller may read: coordinator, member, or
/// a coordinator (DAN, admin) browsing one the library serves (shared, and printing no
/// titulaire's unit prices: [`documents::kept_from_library`]). Anyone else who reads the
/// groupement is refused (403) as for the list of its documents, whether the version exists
/// or not; a version the coordinator or a member asks that is not this groupement's, 404.
pub async fn readable_document(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
    document: &str,
) -> Result<StoredDocument, Problem> {
    let doc = documents::get_version(&state.store, document).await?.filter(|d| d.groupement_id == g.id);
    if let Some(doc) = doc.as_ref().filter(|d| lent_by_library(caller, g, d)) {
        return Ok(doc.clone());
    }
    coordinator_or_member(state, caller, g).await?;
    doc.ok_or_else(|| Problem::not_found(format!("aucun document « {document} »")))
}

/// Whether the library lends `doc` of `g` to the caller: a version shared and not kept from it,
/// to a library reader.
fn lent_by_library(caller: &Caller, g: &Groupement, doc: &StoredDocument) -> bool {
    let library_reader = caller.actor.bindings.iter().any(|b| GROUPEMENTS_LIBRARY.roles.contains(&b.role));
    doc.shared && library_reader && !documents::kept_from_library(g, doc)
}

/// Whether the caller (as `groupements.read`, the document route's action) may read `doc` of
/// `g` by [`readable_document`]'s rule, for a page that would link it: lent by the library, or
/// the coordinator's or a member's.
pub async fn reads_document(
    store: &Store,
    caller: &Caller,
    g: &Groupement,
    doc: &StoredDocument,
) -> Result<bool, Problem> {
    if !authz::role_allows(&caller.actor, caller.action) {
        return Ok(false);
    }
    if lent_by_library(caller, g, doc) {
        return Ok(true);
    }
    Ok(coordinates_or_belongs(caller, g, &membership::members(store, &g.id).await?))
}

async fn download(
    Op { state, caller, key: (id, document) }: Op<GroupementsState, (String, String)>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> Result<Response, Problem> {
    let g = super::must_get(&state.store, &id).await?;
    document_file(&state, &caller, &g, &document, q.format).await
}

/// The file of version `document` of `g` in `format` (its first format by default), for a
/// caller who may read it.
pub async fn document_file(
    state: &GroupementsState,
    caller: &Caller,
    g: &Groupement,
    document: &str,
    format: Option<String>,
) -> Result<Response, Problem> {
    let doc = readable_document(state, caller, g, document).await?;
    let format = format.unwrap_or_else(|| doc.formats[0].clone());
    let (bytes, content_type) = documents::content(&state.store, &doc, &format).await?;
    let file_name = format!("{}-{}-v{}.{format}", g.reference, doc.kind.as_str(), doc.version);
    let mut response = document_response(bytes, content_type, &file_name);
    response.headers_mut().insert("x-document-sha256", HeaderValue::from_str(&doc.sha256).expect("hex"));
    Ok(response)
}

async fn share(
    Op { state, caller, key: (id, document) }: Op<GroupementsState, (String, String)>,
    ApiJson(body): ApiJson<ShareBody>,
) -> Result<Json<StoredDocument>, Problem> {
    let g = coordinated(&state, &caller, &id).await?;
    let doc = version_of(&state, &g, &document).await?;
    Ok(Json(documents::set_shared(&state.ctx(&caller.actor), &g, &doc, body.shared).await?))
}

async fn library(
    State(state): State<GroupementsState>,
    ApiQuery(filter): ApiQuery<LibraryFilter>,
) -> Result<Json<Page<StoredDocument>>, Problem> {
    Ok(Json(documents::library(&state.store, &filter).await?))
}

version_field!(Groupement, Application);
