//! `/api/v1/support`: tickets, their history, comments, status changes,
//! escalations and returns (If-Match), reports, policies and contracts.

use super::attachments::{self, Attachment, Upload};
use super::report::{self, GroupBy, ReportQuery, ReportRow};
use super::tickets::{
    self, Ctx, EscalateInput, HistoryEntry, NewComment, NewTicket, ReturnInput, Ticket, TicketFilter, TicketPatch,
    TransitionInput,
};
use super::{set_contract, tenant_contract, Contract, ContractInput};
use crate::support::SupportState;
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ent_documents::documents;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::http::{IfMatchHeader, Versioned};
use ent_kernel::store::Page;
use ent_kernel::{route_table, version_field};
use ent_platform::identity::authz::{
    resolve_readable, Call, Op, SUPPORT_COMMENT, SUPPORT_CONTRACTS_READ, SUPPORT_CONTRACTS_WRITE, SUPPORT_CREATE,
    SUPPORT_HANDLE, SUPPORT_READ, SUPPORT_REPORT,
};
use ent_platform::identity::Caller;
use schemars::JsonSchema;
use serde::Deserialize;

route_table!(SupportState, "support", |api| {
    vec![
    api.get("/api/v1/support/tickets", "Lister les tickets visibles", &SUPPORT_READ, list)
        .pages::<TicketFilter, Ticket>(),
    api.post("/api/v1/support/tickets", "Ouvrir un ticket", &SUPPORT_CREATE, create).creates::<NewTicket, Ticket>(),
    api.get("/api/v1/support/tickets/{id}", "Consulter un ticket (id ou référence)", &SUPPORT_READ, show)
        .ok_versioned::<Ticket>(),
    api.patch("/api/v1/support/tickets/{id}", "Affecter, requalifier (If-Match requis)", &SUPPORT_HANDLE, update)
        .if_match_update::<TicketPatch, Ticket>(),
    api.get("/api/v1/support/tickets/{id}/history", "Historique visible du ticket", &SUPPORT_READ, history)
        .ok::<Vec<HistoryEntry>>(),
    // A retried comment (its first answer lost) is replayed, not written twice.
    api.post("/api/v1/support/tickets/{id}/comments", "Commenter : message du demandeur, réponse du N1 au demandeur ou note au support", &SUPPORT_COMMENT, comment)
        .idempotent()
        .json_body::<NewComment>()
        .created_versioned::<Ticket>(),
    api.get(
        "/api/v1/support/tickets/{id}/attachments",
        "Pièces jointes visibles du ticket (nom, type, taille, auteur, date)",
        &SUPPORT_READ,
        list_attachments,
    )
    .ok::<Vec<Attachment>>(),
    api.post(
        "/api/v1/support/tickets/{id}/attachments",
        "Joindre un fichier (corps brut, nom en paramètre ; 5 Mio, types acceptés)",
        &SUPPORT_COMMENT,
        attach,
    )
    .query::<AttachQuery>()
    .file_body()
    .created::<Vec<Attachment>>(),
    api.get(
        "/api/v1/support/tickets/{id}/attachments/{file}",
        "Télécharger une pièce jointe (toujours en téléchargement)",
        &SUPPORT_READ,
        download_attachment,
    )
    .produces(StatusCode::OK, &attachments::content_types()),
    api.post(
        "/api/v1/support/tickets/{id}/transition",
        "Changer le statut (If-Match requis)",
        &SUPPORT_HANDLE,
        transition,
    )
    .if_match_update::<TransitionInput, Ticket>(),
    api.post(
        "/api/v1/support/tickets/{id}/escalate",
        "Escalader au niveau supérieur (If-Match requis)",
        &SUPPORT_HANDLE,
        escalate,
    )
    .if_match_update::<EscalateInput, Ticket>(),
    api.post(
        "/api/v1/support/tickets/{id}/return",
        "Renvoyer au niveau inférieur avec une réponse (If-Match requis)",
        &SUPPORT_HANDLE,
        return_down,
    )
    .if_match_update::<ReturnInput, Ticket>(),
    api.get("/api/v1/support/report", "Indicateurs par niveau ou par tenant, sur une période (tickets créés du `from` au `to` inclus, ou le mois `month`)", &SUPPORT_REPORT, report)
        .query::<ReportQuery>()
        .ok::<Vec<ReportRow>>()
        .produces(StatusCode::OK, &["text/csv; charset=utf-8"]),
    api.get("/api/v1/support/policies", "Politiques de support et calendriers", &SUPPORT_READ, policies)
        .ok::<super::policy::PolicyFile>(),
    api.get(
        "/api/v1/support/tenants/{slug}/contract",
        "Contrat de support effectif d'un tenant",
        &SUPPORT_CONTRACTS_READ,
        contract,
    )
    .ok::<Contract>(),
    api.put(
        "/api/v1/support/contracts/{org}",
        "Définir le contrat de support porté par une organisation",
        &SUPPORT_CONTRACTS_WRITE,
        put_contract,
    )
    .json_body::<ContractInput>(),
]
});

fn ctx<'a>(state: &'a SupportState, caller: &'a Caller) -> Ctx<'a> {
    Ctx { state, actor: &caller.actor, now: state.clock.now() }
}

/// A ticket operation under `If-Match`: the version expected read against the ticket's
/// version as the caller reads it (the requester's own, `Ticket::seen_by`), the operation run
/// as the caller, the ticket answered with its `ETag`.
async fn under_if_match<B>(
    Op { state, caller, key: id }: Op<SupportState>,
    if_match: IfMatchHeader,
    body: B,
    operation: impl AsyncFnOnce(&Ctx<'_>, &str, i64, B) -> Result<Ticket, Problem>,
) -> Result<Response, Problem> {
    let if_match = if_match.parse()?;
    let context = ctx(&state, &caller);
    // A ticket the caller may not see reads as version 0: the operation answers its own 404.
    let current = match tickets::find(&state.store, &caller.actor, &id).await {
        Ok((t, viewer)) => t.version_seen_by(viewer),
        Err(p) if p.kind == ProblemKind::NotFound => 0,
        Err(p) => return Err(p),
    };
    let version = if_match.expected(current);
    Ok(Versioned::ok(operation(&context, &id, version, body).await?).into_response())
}

/// The handlers of ticket operations under `If-Match` with a JSON body: `handler: Body => operation`.
macro_rules! under_if_match_handlers {
    ($($handler:ident: $body:ty => $operation:path),* $(,)?) => {$(
        async fn $handler(op: Op<SupportState>, if_match: IfMatchHeader, ApiJson(body): ApiJson<$body>) -> Result<Response, Problem> {
            under_if_match(op, if_match, body, $operation).await
        }
    )*};
}

under_if_match_handlers! {
    update: TicketPatch => tickets::update,
    transition: TransitionInput => tickets::transition,
    escalate: EscalateInput => tickets::escalate,
    return_down: ReturnInput => tickets::return_down,
}

async fn list(
    Call { state, caller }: Call<SupportState>,
    ApiQuery(filter): ApiQuery<TicketFilter>,
) -> Result<Json<Page<Ticket>>, Problem> {
    Ok(Json(tickets::list(&ctx(&state, &caller), &filter).await?))
}

async fn create(
    Call { state, caller }: Call<SupportState>,
    ApiJson(new): ApiJson<NewTicket>,
) -> Result<Response, Problem> {
    Ok(Versioned::created(tickets::create(&ctx(&state, &caller), new).await?).into_response())
}

async fn show(Op { state, caller, key: id }: Op<SupportState>) -> Result<Response, Problem> {
    Ok(Versioned::ok(tickets::get(&ctx(&state, &caller), &id).await?).into_response())
}

async fn history(Op { state, caller, key: id }: Op<SupportState>) -> Result<Json<Vec<HistoryEntry>>, Problem> {
    Ok(Json(tickets::history(&ctx(&state, &caller), &id).await?))
}

async fn comment(
    Op { state, caller, key: id }: Op<SupportState>,
    ApiJson(body): ApiJson<NewComment>,
) -> Result<Response, Problem> {
    Ok(Versioned::created(tickets::comment(&ctx(&state, &caller), &id, body).await?).into_response())
}

/// `POST …/attachments?name=&visibility=`: the file is the raw body.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AttachQuery {
    /// The file's name; its extension must match its content (PDF, PNG, JPEG, TXT, CSV, ODT, ODS, DOCX, XLSX).
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// `public` (default: the requester sees it) or `internal` (support levels only), as a comment's.
    #[schemars(extend("enum" = ["public", "internal"]))]
    pub visibility: Option<String>,
}

async fn list_attachments(Op { state, caller, key: id }: Op<SupportState>) -> Result<Json<Vec<Attachment>>, Problem> {
    Ok(Json(attachments::list(&ctx(&state, &caller), &id).await?))
}

async fn attach(
    Op { state, caller, key: id }: Op<SupportState>,
    ApiQuery(q): ApiQuery<AttachQuery>,
    body: Body,
) -> Result<Response, Problem> {
    let public = match q.visibility.as_deref().unwrap_or("public") {
        "public" => true,
        "internal" => false,
        other => {
            return Err(Problem::invalid_field(
                "visibility",
                format!("visibilité « {other} » inconnue : public ou internal"),
            ))
        }
    };
    let context = ctx(&state, &caller);
    // The ticket first: one the caller may not see is not revealed by a check of the file.
    tickets::get(&context, &id).await?;
    let bytes = to_bytes(body, attachments::MAX_BYTES)
        .await
        .map_err(|_| Problem::new(ProblemKind::PayloadTooLarge, "le fichier dépasse 5 Mio"))?;
    let file = attachments::check("file", Upload { name: q.name, bytes: bytes.to_vec() })?;
    let added = attachments::attach(&context, &id, public, vec![file]).await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

async fn download_attachment(
    Op { state, caller, key: (id, file) }: Op<SupportState, (String, String)>,
) -> Result<Response, Problem> {
    let (attachment, bytes) = attachments::read(&ctx(&state, &caller), &id, &file).await?;
    Ok(attachments::served(&attachment, bytes))
}

async fn report(
    Call { state, caller }: Call<SupportState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, Problem> {
    let by = q.by.unwrap_or(GroupBy::Level);
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(Problem::invalid_field("format", format!("format « {format} » inconnu : json ou csv")));
    }
    let period = q.period()?;
    let rows = report::report(&state.store, &caller.actor, by, period.as_ref()).await?;
    if format == "json" {
        return Ok(Json(rows).into_response());
    }
    Ok(documents::response::document(
        report::to_csv(&rows, by, period.as_ref()),
        "text/csv; charset=utf-8",
        &report::csv_name(by, period.as_ref()),
    ))
}

async fn policies(State(state): State<SupportState>) -> Json<super::policy::PolicyFile> {
    Json(state.support.spec.clone())
}

async fn contract(Op { state, caller, key: slug }: Op<SupportState>) -> Result<Json<Contract>, Problem> {
    Ok(Json(tenant_contract(&state, &caller, &slug, state.clock.now()).await?))
}

async fn put_contract(
    Op { state, caller, key }: Op<SupportState>,
    ApiJson(input): ApiJson<ContractInput>,
) -> Result<StatusCode, Problem> {
    let org = caller.resolve(&state.store, &key).await?;
    // The N1 and N2 organisations named become staff of the tickets they are designated for
    // (`support::visible_condition`, `levels_of`): they must be in the caller's scope too.
    check_named(&state, &caller, "n1", input.n1.as_deref()).await?;
    check_named(&state, &caller, "n2", input.n2.as_deref()).await?;
    set_contract(&state, &caller.actor, &org, &input, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An organisation named in a contract, in the caller's scope; one the caller cannot
/// read answers like an unknown one (`set_contract` reports those).
async fn check_named(state: &SupportState, caller: &Caller, field: &str, key: Option<&str>) -> Result<(), Problem> {
    let Some(key) = key.filter(|k| !k.trim().is_empty()) else { return Ok(()) };
    let Ok(named) = resolve_readable(&state.store, &caller.actor, key).await else {
        return Ok(());
    };
    match caller.require(&state.store, &named).await {
        Err(p) if p.kind == ProblemKind::NotFound => {
            Err(Problem::invalid_field(field, format!("aucune organisation « {key} »")))
        }
        other => other,
    }
}

version_field!(Ticket);
