//! `/api/v1/rgpd/...`: registers (export, incomplete entries, snapshots, diff),
//! the organisations' RGPD contacts, the breach log and the data-subject requests.

use super::breaches::{self, Breach, BreachInput};
use super::contracts_export::{self, ContractLine};
use super::derive::{Incomplete, Profile, Register};
use super::export::Format;
use super::requests::{self, DataRequest, RequestInput};
use super::snapshots::{self, Diff, Snapshot};
use crate::rgpd::RgpdState;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ent_documents::documents;
use ent_kernel::error::Problem;
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::http::{IfMatchHeader, Versioned};
use ent_kernel::{route_table, version_field};
use ent_platform::identity::authz::{Op, RGPD_LOGS_READ, RGPD_READ, RGPD_WRITE};
use ent_platform::identity::Caller;
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::Deserialize;

/// The media types of the exports other than JSON (`format` parameter).
const EXPORTS: &[&str] = &[
    "text/csv; charset=utf-8",
    "application/vnd.oasis.opendocument.spreadsheet",
    "text/html; charset=utf-8",
    "application/pdf",
];

route_table!(RgpdState, "rgpd", |api| vec![
    api.get(
        "/api/v1/rgpd/registers/{org}",
        "Registre des traitements dérivé à la date du jour (json, csv, ods, html, pdf) ; rien n'est enregistré",
        &RGPD_READ,
        register,
    )
    .query::<FormatQuery>()
    .ok::<Register>()
    .produces(StatusCode::OK, EXPORTS),
    api.get(
        "/api/v1/rgpd/registers/{org}/incomplete",
        "Fiches incomplètes du registre, champs manquants nommés",
        &RGPD_READ,
        incomplete,
    )
    .ok::<Vec<Incomplete>>(),
    api.get("/api/v1/rgpd/registers/{org}/snapshots", "Instantanés du registre", &RGPD_READ, snapshot_list)
        .ok::<Vec<Snapshot>>(),
    api.post(
        "/api/v1/rgpd/registers/{org}/snapshots",
        "Enregistrer un instantané du registre (le dernier s'il est identique)",
        &RGPD_WRITE,
        snapshot_take,
    )
    .created::<Snapshot>()
    .ok::<Snapshot>(),
    api.get("/api/v1/rgpd/registers/{org}/snapshots/{id}", "Contenu d'un instantané", &RGPD_READ, snapshot_show)
        .ok::<Register>(),
    api.get(
        "/api/v1/rgpd/registers/{org}/diff",
        "Différences entre deux instantanés, ou entre un instantané et maintenant",
        &RGPD_READ,
        diff,
    )
    .query::<DiffQuery>()
    .ok::<Diff>(),
    api.get(
        "/api/v1/rgpd/contracts/{org}",
        "Contrats de sous-traitance (article 28) de l'organisation : annexes des conventions en vigueur, marchés et \
         contrats, services couverts, dates, SHA-256 du document signé (json, csv)",
        &RGPD_READ,
        contract_list,
    )
    .query::<FormatQuery>()
    .ok::<Vec<ContractLine>>()
    .produces(StatusCode::OK, &EXPORTS[..1]),
    api.get("/api/v1/rgpd/profiles/{org}", "Coordonnées RGPD d'une organisation", &RGPD_READ, profile_show)
        .ok_versioned::<Profile>(),
    api.put(
        "/api/v1/rgpd/profiles/{org}",
        "Enregistrer les coordonnées RGPD (responsable, DPO, représentant) ; If-Match pour modifier",
        &RGPD_WRITE,
        profile_save,
    )
    .if_match_optional()
    .json_body::<Profile>()
    .ok::<Profile>(),
    api.get(
        "/api/v1/rgpd/breaches/{org}",
        "Registre des violations de données (json, csv, ods, html, pdf)",
        &RGPD_LOGS_READ,
        breach_list,
    )
    .query::<FormatQuery>()
    .ok::<Vec<Breach>>()
    .produces(StatusCode::OK, EXPORTS),
    api.post("/api/v1/rgpd/breaches/{org}", "Consigner une violation de données", &RGPD_WRITE, breach_create)
        .creates::<BreachInput, Breach>(),
    api.put(
        "/api/v1/rgpd/breaches/{org}/{id}",
        "Mettre à jour une violation (If-Match requis)",
        &RGPD_WRITE,
        breach_update,
    )
    .if_match_update::<BreachInput, Breach>(),
    api.get(
        "/api/v1/rgpd/requests/{org}",
        "Registre des demandes d'exercice des droits (json, csv, ods, html, pdf)",
        &RGPD_LOGS_READ,
        request_list,
    )
    .query::<FormatQuery>()
    .ok::<Vec<DataRequest>>()
    .produces(StatusCode::OK, EXPORTS),
    api.post("/api/v1/rgpd/requests/{org}", "Consigner une demande d'exercice des droits", &RGPD_WRITE, request_create)
        .creates::<RequestInput, DataRequest>(),
    api.put(
        "/api/v1/rgpd/requests/{org}/{id}",
        "Mettre à jour une demande (If-Match requis)",
        &RGPD_WRITE,
        request_update,
    )
    .if_match_update::<RequestInput, DataRequest>(),
]);

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (default), `csv`, `ods`, `html` or `pdf`.
    #[schemars(extend("enum" = ["json", "csv", "ods", "html", "pdf"]))]
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// A snapshot id; the latest snapshot when absent.
    pub from: Option<String>,
    /// A snapshot id, or `now` (default).
    pub to: Option<String>,
}

/// The organisation of the path, if the caller may reach its registers.
async fn target(state: &RgpdState, caller: &Caller, key: &str) -> Result<Org, Problem> {
    super::resolve(state, &caller.actor, caller.action, key).await
}

fn file(bytes: Vec<u8>, format: Format, name: &str) -> Response {
    documents::response::document(bytes, format.content_type(), name)
}

async fn register(
    Op { state, caller, key }: Op<RgpdState>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> Result<Response, Problem> {
    let format = Format::parse(q.format.as_deref())?;
    let org = target(&state, &caller, &key).await?;
    let rendered = super::render_register(&state, &org, format).await?;
    let mut response = file(rendered.bytes, format, &rendered.file_name);
    response.headers_mut().insert("x-register-sha256", HeaderValue::from_str(&rendered.sha256).expect("hex"));
    Ok(response)
}

/// The processor contracts of the organisation ([`contracts_export`]), JSON or CSV; its scope is
/// checked before the format.
async fn contract_list(
    Op { state, caller, key }: Op<RgpdState>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let format = match Format::parse(q.format.as_deref())? {
        format @ (Format::Json | Format::Csv) => format,
        _ => return Err(Problem::invalid_field("format", "les contrats s'exportent en json ou en csv")),
    };
    let lines = contracts_export::lines(&state, &org).await?;
    let bytes = match format {
        Format::Csv => contracts_export::csv(&lines),
        _ => serde_json::to_vec(&lines).map_err(|e| anyhow::anyhow!("contracts: {e}"))?,
    };
    let today = ent_kernel::clock::today_in_france(state.clock.now()).format("%Y-%m-%d").to_string();
    Ok(file(bytes, format, &contracts_export::file_name(&org, &today, format)))
}

/// 201 with a new snapshot, or 200 with the latest one when the register has not changed since.
async fn snapshot_take(Op { state, caller, key }: Op<RgpdState>) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let register = super::current(&state, &org).await?;
    let now = state.clock.now();
    let (snapshot, created) =
        snapshots::record(&state, &caller.actor.name, &org, &register, "json", "manual", now).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(snapshot)).into_response())
}

async fn incomplete(Op { state, caller, key }: Op<RgpdState>) -> Result<Json<Vec<Incomplete>>, Problem> {
    let org = target(&state, &caller, &key).await?;
    Ok(Json(super::current(&state, &org).await?.incomplete))
}

async fn snapshot_list(Op { state, caller, key }: Op<RgpdState>) -> Result<Json<Vec<Snapshot>>, Problem> {
    let org = target(&state, &caller, &key).await?;
    Ok(Json(snapshots::list(&state, &org.id, 500).await?))
}

async fn snapshot_show(
    Op { state, caller, key: (key, id) }: Op<RgpdState, (String, String)>,
) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let (snapshot, register) = snapshots::get(&state, &id)
        .await?
        .filter(|(s, _)| s.org_id == org.id)
        .ok_or_else(|| Problem::not_found(format!("aucun instantané « {id} » pour {}", org.name)))?;
    let mut response = Json(register).into_response();
    response.headers_mut().insert("x-register-sha256", HeaderValue::from_str(&snapshot.sha256).expect("hex"));
    Ok(response)
}

async fn diff(
    Op { state, caller, key }: Op<RgpdState>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<Diff>, Problem> {
    let org = target(&state, &caller, &key).await?;
    Ok(Json(snapshots::diff_for(&state, &org, q.from.as_deref(), q.to.as_deref()).await?))
}

async fn profile_show(Op { state, caller, key }: Op<RgpdState>) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let (profile, version) = super::load::profile(&state.store, &org.id).await?.unwrap_or_default();
    Ok(Versioned::new(StatusCode::OK, version, profile).into_response())
}

async fn profile_save(
    Op { state, caller, key }: Op<RgpdState>,
    if_match: IfMatchHeader,
    ApiJson(profile): ApiJson<Profile>,
) -> Result<Response, Problem> {
    let org = target(&state, &caller, &key).await?;
    let expected = match super::load::profile(&state.store, &org.id).await? {
        Some((_, current)) => Some(if_match.version(current)?),
        None => None,
    };
    let version = super::save_profile(&state, &caller.actor, &org, &profile, expected, state.clock.now()).await?;
    Ok(Versioned::new(StatusCode::OK, version, profile).into_response())
}

async fn log(
    state: &RgpdState,
    caller: &Caller,
    key: &str,
    q: &FormatQuery,
    log: super::Log,
) -> Result<Response, Problem> {
    let format = Format::parse(q.format.as_deref())?;
    let org = target(state, caller, key).await?;
    let (bytes, name) = super::export_log(state, &caller.actor, &org, log, format).await?;
    Ok(file(bytes, format, &name))
}

/// The handlers of one log kept through the API (breaches, data-subject requests): its
/// export (`$list`), a new entry (`$create`) and an entry's update under `If-Match` (`$update`).
macro_rules! log_handlers {
    ($log:expr, $entries:ident, $input:ty, $table:literal, $list:ident, $create:ident, $update:ident) => {
        async fn $list(
            Op { state, caller, key }: Op<RgpdState>,
            ApiQuery(q): ApiQuery<FormatQuery>,
        ) -> Result<Response, Problem> {
            log(&state, &caller, &key, &q, $log).await
        }

        async fn $create(
            Op { state, caller, key }: Op<RgpdState>,
            ApiJson(input): ApiJson<$input>,
        ) -> Result<Response, Problem> {
            let org = target(&state, &caller, &key).await?;
            let mut entry = $entries::create(&state, &caller.actor, &org, input).await?;
            super::shown_authors(&state, &caller.actor, std::iter::once(&mut entry.created_by)).await?;
            Ok(Versioned::created(entry).into_response())
        }

        async fn $update(
            Op { state, caller, key: (key, id) }: Op<RgpdState, (String, String)>,
            if_match: IfMatchHeader,
            ApiJson(input): ApiJson<$input>,
        ) -> Result<Response, Problem> {
            let org = target(&state, &caller, &key).await?;
            let expected = if_match.version_in(&state.store, $table, &id).await?;
            let mut entry = $entries::update(&state, &caller.actor, &org, &id, input, expected).await?;
            super::shown_authors(&state, &caller.actor, std::iter::once(&mut entry.created_by)).await?;
            Ok(Versioned::ok(entry).into_response())
        }
    };
}

log_handlers!(super::Log::Breaches, breaches, BreachInput, "rgpd_breaches", breach_list, breach_create, breach_update);
log_handlers!(
    super::Log::Requests,
    requests,
    RequestInput,
    "rgpd_requests",
    request_list,
    request_create,
    request_update
);

version_field!(Breach, DataRequest);
