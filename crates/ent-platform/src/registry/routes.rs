//! HTTP routes of the registry.

use super::import::{import_annuaire, ImportOptions, ImportReport, ImportScope};
use super::invitations::{self, Invitation};
use super::manage::{self, Membership, NewOrg, OrgPatch};
use super::queries::{self, OrgFilter};
use super::{Org, OrgRef};
use crate::identity::authz::{
    self, forbidden, Call, Op, Scope, IMPORTS_ANNUAIRE, ORGS_CREATE, ORGS_MEMBERS_WRITE, ORGS_READ, ORGS_UPDATE,
};
use crate::identity::Caller;
use crate::registry::RegistryState;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::http::{IfMatchHeader, Versioned};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::store::{Page, PageQuery, Store};
use ent_kernel::{route_table, version_field};
use futures_util::TryStreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

route_table!(RegistryState, "registre", |api| vec![
    api.get("/api/v1/orgs", "Lister et rechercher les organisations de son périmètre", &ORGS_READ, list)
        .pages::<OrgFilter, Org>(),
    api.post("/api/v1/orgs", "Créer un EPCI, syndicat mixte, éditeur ou hébergeur", &ORGS_CREATE, create)
        .creates::<NewOrg, Org>(),
    api.get("/api/v1/orgs/{key}", "Consulter une organisation (id, code, ou type:code)", &ORGS_READ, show)
        .ok_versioned::<OrgDetail>(),
    api.patch(
        "/api/v1/orgs/{key}",
        "Modifier le nom ou le contact d'une organisation (If-Match requis)",
        &ORGS_UPDATE,
        update,
    )
    .if_match_update::<OrgPatch, Org>(),
    api.get("/api/v1/orgs/{key}/covers", "Organisations couvertes par une organisation", &ORGS_READ, covers)
        .pages::<PageQuery, Org>(),
    api.get("/api/v1/orgs/{key}/members", "Communes membres d'un EPCI ou syndicat mixte", &ORGS_READ, members)
        .ok::<Vec<Member>>(),
    api.put(
        "/api/v1/orgs/{key}/members/{commune}",
        "Ajouter une commune à un EPCI ou syndicat mixte",
        &ORGS_MEMBERS_WRITE,
        add_member,
    )
    .json_body::<MembershipBody>()
    .ok::<Vec<Member>>(),
    api.delete(
        "/api/v1/orgs/{key}/members/{commune}",
        "Retirer une commune d'un EPCI ou syndicat mixte",
        &ORGS_MEMBERS_WRITE,
        remove_member,
    ),
    api.get(
        "/api/v1/orgs/{key}/invitations",
        "Invitations à rejoindre un EPCI ou syndicat mixte, envoyées ou reçues",
        &ORGS_READ,
        invitations,
    )
    .ok::<Vec<Invitation>>(),
    api.post(
        "/api/v1/orgs/{key}/invitations",
        "Inviter une commune à rejoindre un EPCI ou syndicat mixte (elle doit accepter)",
        &ORGS_MEMBERS_WRITE,
        invite,
    )
    .json_body::<InvitationBody>()
    .created::<Invitation>(),
    api.post(
        "/api/v1/membership-invitations/{id}/accept",
        "Accepter, pour la commune, l'invitation d'un EPCI ou syndicat mixte",
        &ORGS_MEMBERS_WRITE,
        accept_invitation,
    )
    .ok::<Invitation>(),
    api.post(
        "/api/v1/membership-invitations/{id}/decline",
        "Refuser (commune) ou retirer (groupement) une invitation",
        &ORGS_MEMBERS_WRITE,
        decline_invitation,
    )
    .ok::<Invitation>(),
    api.post(
        "/api/v1/imports/annuaire",
        "Importer l'export CSV de l'Annuaire de l'éducation (lignes de son périmètre)",
        &IMPORTS_ANNUAIRE,
        import,
    )
    .query::<ImportQuery>()
    .csv_body()
    .ok::<ImportReport>(),
]);

/// An organisation with the organisations that cover it and, for an
/// établissement, the collectivité that funds its ENT.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OrgDetail {
    #[serde(flatten)]
    pub org: Org,
    pub covering_parents: Vec<OrgRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funding_collectivite: Option<OrgRef>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Member {
    #[serde(flatten)]
    pub commune: OrgRef,
    /// The commune delegated its ENT (and its funding) to the group.
    pub ent_delegated: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipBody {
    #[serde(default)]
    pub ent_delegated: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationBody {
    /// The commune invited: INSEE code, id or `commune:<code>`.
    pub commune: String,
    /// The commune would delegate its ENT (and its funding) to the group.
    #[serde(default)]
    pub ent_delegated: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ImportQuery {
    /// Report what would change without writing.
    #[serde(default)]
    pub dry_run: bool,
}

async fn list(
    Call { state, caller }: Call<RegistryState>,
    ApiQuery(filter): ApiQuery<OrgFilter>,
) -> Result<Response, Problem> {
    // The page's JSON is written by the database and sent as is (see `queries::list_orgs_json`).
    let page = queries::list_orgs_json(&state.store, &filter, caller.scope().condition()).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], page).into_response())
}

async fn create(
    Call { state, caller }: Call<RegistryState>,
    ApiJson(new): ApiJson<NewOrg>,
) -> Result<Response, Problem> {
    if !caller.actor.is_admin() {
        // A DAN creates the groups of its académie: their département must be in its scope.
        if !new.kind.groups_communes() {
            return Err(forbidden("seul un administrateur enregistre les éditeurs et hébergeurs"));
        }
        let code = new.departement.as_deref().ok_or_else(|| {
            Problem::invalid_field(
                "departement",
                "précisez le département du groupement (il situe le groupement dans votre périmètre)",
            )
        })?;
        let code =
            super::codes::parse_departement(code).map_err(|e| Problem::invalid_field("departement", e.to_string()))?;
        let missing = || Problem::invalid_field("departement", format!("département {code} absent du registre"));
        let departement = queries::get_by_code(&state.store, OrgKind::Departement, &code).await?.ok_or_else(missing)?;
        // Out of scope and unreadable: named like a département the registry does not hold.
        caller.require_or(&state.store, &departement, missing).await?;
    }
    let org = manage::create_org(&state.store, &caller.actor, new, state.clock.now()).await?;
    Ok(Versioned::created(org).into_response())
}

pub async fn org_detail(store: &Store, org: Org) -> Result<OrgDetail, Problem> {
    let relatives = queries::Relatives::of(store, &org).await?;
    Ok(detail_from(org, &relatives))
}

fn detail_from(org: Org, relatives: &queries::Relatives) -> OrgDetail {
    let covering_parents = relatives.covering_parents(&org);
    let funding_collectivite = relatives.funding(&org);
    OrgDetail { org, covering_parents, funding_collectivite }
}

/// Resolves the organisation of a path and checks the caller may act on it.
async fn target(state: &RegistryState, caller: &Caller, key: &str) -> Result<Org, Problem> {
    caller.resolve(&state.store, key).await
}

async fn show(Op { state, caller, key }: Op<RegistryState>) -> Result<Response, Problem> {
    // Its connection is given back before the authorisation, which may read through the pool.
    let (org, relatives) = match queries::org_with_relatives(&state.store, &key).await {
        Ok(found) => found,
        Err(problem) => {
            let org = authz::readable_of_ambiguous(&state.store, &caller.actor, &key, problem).await?;
            queries::org_with_relatives(&state.store, &org.id).await?
        }
    };
    caller.require_key(&state.store, &key, &org).await?;
    let version = org.version;
    Ok(Versioned::new(StatusCode::OK, version, detail_from(org, &relatives)).into_response())
}

async fn update(
    Op { state, caller, key }: Op<RegistryState>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<OrgPatch>,
) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let version = if_match.version(org.version)?;
    let updated = manage::update_org(&state.store, &caller.actor, &org, version, body, state.clock.now()).await?;
    Ok(Versioned::ok(updated).into_response())
}

async fn covers(
    Op { state, caller, key }: Op<RegistryState>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<Org>>, Problem> {
    let org = target(&state, &caller, &key).await?;
    let scope = caller.scope().condition();
    Ok(Json(queries::covers(&state.store, &org, scope, page.cursor.as_deref(), page.limit).await?))
}

async fn member_list(store: &Store, group: &Org) -> Result<Vec<Member>, Problem> {
    let members = queries::members_of_group(store, &group.id).await?;
    Ok(members.into_iter().map(|(commune, ent_delegated)| Member { commune, ent_delegated }).collect())
}

async fn members(Op { state, caller, key }: Op<RegistryState>) -> Result<Json<Vec<Member>>, Problem> {
    let group = target(&state, &caller, &key).await?;
    if !group.kind.groups_communes() {
        return Err(Problem::not_found(format!("{} n'est ni un EPCI ni un syndicat mixte", group.name)));
    }
    Ok(Json(member_list(&state.store, &group).await?))
}

/// The commune of a membership path or an invitation: an INSEE code means the commune, not a
/// DSDEN. Communes are public entries of the official geographic code; any other organisation
/// the caller may not read is named like a key that names nothing (the kind check that follows
/// would otherwise tell its name).
async fn resolve_commune(store: &Store, caller: &Caller, key: &str) -> Result<Org, Problem> {
    let org = match super::codes::parse_insee_commune(key) {
        Ok(code) => queries::resolve_org(store, &format!("commune:{code}")).await,
        Err(_) => authz::resolve_readable(store, &caller.actor, key).await,
    };
    match org {
        Ok(org) if org.kind == OrgKind::Commune || authz::reads(store, &caller.actor, &org).await? => Ok(org),
        Ok(_) => Err(queries::missing_org(key)),
        // Missing, it is named as the caller sent it.
        Err(p) if p.kind == ProblemKind::NotFound => Err(queries::missing_org(key)),
        Err(p) => Err(p),
    }
}

/// The commune a group may invite: one the caller reads, or one of the group's académie (a
/// group's officers read only its members, so a commune yet to join is outside their scope).
/// Any other is answered like a code that names nothing, in the same words, and no invitation
/// reaches it: a group across two académies is completed by an administrator (attack review
/// 40, S2: an invitation told that an out-of-scope commune is registered, and its id).
async fn invitable_commune(store: &Store, caller: &Caller, group: &Org, key: &str) -> Result<Org, Problem> {
    let commune = resolve_commune(store, caller, key).await?;
    let same_academie = group.academie_code.is_some() && commune.academie_code == group.academie_code;
    if same_academie || authz::reads(store, &caller.actor, &commune).await? {
        return Ok(commune);
    }
    Err(queries::missing_org(key))
}

/// The group and commune of a membership write, both in the caller's scope.
async fn membership(state: &RegistryState, caller: &Caller, key: &str, commune: &str) -> Result<(Org, Org), Problem> {
    let group = authz::resolve_readable(&state.store, &caller.actor, key).await?;
    let commune_key = commune;
    let commune = resolve_commune(&state.store, caller, commune_key).await?;
    // Each refusal in the words of the key the caller sent for that organisation.
    caller.require_key(&state.store, key, &group).await?;
    caller.require_key(&state.store, commune_key, &commune).await?;
    Ok((group, commune))
}

/// A commune joins a group directly only by someone acting for the commune
/// (an admin, a DAN of its académie, its own collectivité); a group's roles invite.
async fn add_member(
    Op { state, caller, key: (key, commune) }: Op<RegistryState, (String, String)>,
    ApiJson(body): ApiJson<MembershipBody>,
) -> Result<Json<Vec<Member>>, Problem> {
    let (group, commune) = membership(&state, &caller, &key, &commune).await?;
    if !authz::acts_for(&state.store, &caller.actor, caller.action, &commune).await? {
        return Err(forbidden(format!(
            "{} rejoint {} avec son accord : envoyez-lui une invitation (POST /api/v1/orgs/{}/invitations)",
            commune.name, group.name, group.id
        )));
    }
    manage::set_member(&state.store, &caller.actor, &group, &commune, body.ent_delegated, state.clock.now()).await?;
    Ok(Json(member_list(&state.store, &group).await?))
}

/// A commune leaves a group by its own decision or the group's: someone acting for the
/// commune (as for joining) or the group's own collectivité ([`authz::detaches`]).
async fn remove_member(
    Op { state, caller, key: (key, commune) }: Op<RegistryState, (String, String)>,
) -> Result<StatusCode, Problem> {
    let (group, commune) = membership(&state, &caller, &key, &commune).await?;
    if !authz::detaches(&state.store, &caller.actor, caller.action, &group, &commune).await? {
        return Err(forbidden(not_detached_by_you(&group, &commune)));
    }
    manage::remove_member(&state.store, &caller.actor, &group, &commune, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why someone who does not speak for the commune nor the group may not detach one from the other.
pub fn not_detached_by_you(group: &Org, commune: &Org) -> String {
    format!(
        "{} quitte {} par sa décision ou celle du groupement : seuls la commune, sa DAN, la collectivité du \
         groupement ou un administrateur l'en retirent",
        commune.name, group.name
    )
}

async fn invitations(Op { state, caller, key }: Op<RegistryState>) -> Result<Json<Vec<Invitation>>, Problem> {
    let org = target(&state, &caller, &key).await?;
    Ok(Json(invitations::list_for(&state.store, &org).await?))
}

async fn invite(
    Op { state, caller, key }: Op<RegistryState>,
    ApiJson(body): ApiJson<InvitationBody>,
) -> Result<(StatusCode, Json<Invitation>), Problem> {
    let group = target(&state, &caller, &key).await?;
    let commune = invitable_commune(&state.store, &caller, &group, &body.commune).await?;
    let proposed = Membership { group: &group, commune: &commune, ent_delegated: body.ent_delegated };
    let invitation = invitations::invite(&state.store, &caller.actor, &proposed, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// An invitation the caller may answer: for the commune (accept or decline) or,
/// unless `commune_side_only`, for the group (withdraw). 403 when the caller
/// can read either organisation, else the 404 of an unknown invitation.
async fn answerable(
    state: &RegistryState,
    caller: &Caller,
    id: &str,
    commune_side_only: bool,
) -> Result<Invitation, Problem> {
    let not_found = || Problem::not_found(format!("aucune invitation « {id} »"));
    let invitation = invitations::get(&state.store, id).await?.ok_or_else(not_found)?;
    let commune = queries::get_org(&state.store, &invitation.commune.id).await?.ok_or_else(not_found)?;
    if authz::acts_for(&state.store, &caller.actor, caller.action, &commune).await? {
        return Ok(invitation);
    }
    if !commune_side_only {
        let group = queries::get_org(&state.store, &invitation.group.id).await?.ok_or_else(not_found)?;
        if authz::authorize(&state.store, &caller.actor, caller.action, &group).await.is_ok() {
            return Ok(invitation);
        }
    }
    let readable =
        caller_reads(state, caller, &invitation.group.id).await? || caller_reads(state, caller, &commune.id).await?;
    if readable {
        Err(forbidden(format!("seule la commune {} accepte cette invitation", commune.name)))
    } else {
        Err(not_found())
    }
}

async fn caller_reads(state: &RegistryState, caller: &Caller, org_id: &str) -> Result<bool, Problem> {
    match queries::get_org(&state.store, org_id).await? {
        Some(org) => authz::reads(&state.store, &caller.actor, &org).await,
        None => Ok(false),
    }
}

async fn accept_invitation(Op { state, caller, key: id }: Op<RegistryState>) -> Result<Json<Invitation>, Problem> {
    let invitation = answerable(&state, &caller, &id, true).await?;
    Ok(Json(invitations::accept(&state.store, &caller.actor, &invitation, state.clock.now()).await?))
}

async fn decline_invitation(Op { state, caller, key: id }: Op<RegistryState>) -> Result<Json<Invitation>, Problem> {
    let invitation = answerable(&state, &caller, &id, false).await?;
    Ok(Json(invitations::decline(&state.store, &caller.actor, &invitation, state.clock.now()).await?))
}

/// Where a caller may import ([`ImportScope`]); `None` for everywhere (admin). A binding at
/// an académie reaches its académie, one at a DSDEN its département only; any other, nothing.
fn import_scope(caller: &Caller) -> Option<ImportScope> {
    match caller.scope() {
        Scope::All => None,
        Scope::Orgs(orgs) => {
            let mut scope = ImportScope::default();
            for org in orgs {
                match org.kind {
                    OrgKind::Academie => {
                        scope.academies.insert(org.code);
                    }
                    OrgKind::Dsden => {
                        scope.departements.insert(org.code, org.academie_code);
                    }
                    _ => {}
                }
            }
            Some(scope)
        }
    }
}

/// Streams the CSV body into the importer: the upload is never held whole in memory.
async fn import(
    Call { state, caller }: Call<RegistryState>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportReport>, Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "envoyez le fichier de l'annuaire en text/csv (séparateur point-virgule)",
        ));
    }
    let options = ImportOptions {
        dry_run: query.dry_run,
        scope: import_scope(&caller),
        ..ImportOptions::configured(&state.config.import)
    };
    let limit = state.config.server.max_body_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let report = match declared {
        // A declared length is enforced by the HTTP framing: too long is refused before
        // anything is read, otherwise the body streams into the importer.
        Some(length) if length > limit as u64 => return Err(too_large(limit)),
        Some(_) => {
            let stream = TryStreamExt::map_err(body.into_data_stream(), |e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
            });
            let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
            import_annuaire(&state.store, &caller.actor, reader, options, state.clock.now()).await?
        }
        // A chunked upload is spooled to a temporary file first, so that one over the limit
        // is refused with nothing imported (batches commit as they go).
        None => {
            let file = spool(body, limit).await?;
            import_annuaire(&state.store, &caller.actor, file, options, state.clock.now()).await?
        }
    };
    Ok(Json(report))
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        ProblemKind::PayloadTooLarge,
        format!("le fichier dépasse la taille autorisée ({limit} octets) : rien n'a été importé"),
    )
}

/// Copies a request body into an anonymous temporary file, refusing it past `limit` bytes.
async fn spool(body: Body, limit: usize) -> Result<std::fs::File, Problem> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let io = |e: std::io::Error| Problem::from(anyhow::anyhow!("temporary file: {e}"));
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().map_err(io)?);
    let mut stream = body.into_data_stream();
    let mut written = 0usize;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| Problem::invalid_field("fichier", format!("envoi interrompu : {e}")))?;
        written += chunk.len();
        if written > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.rewind().await.map_err(io)?;
    Ok(file.into_std().await)
}

version_field!(Org);
