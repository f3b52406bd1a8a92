//! `/api/v1/conventions`: a party sees and acts on its conventions, nobody else.

use super::model::ConventionModel;
use super::renewal::{self, Opposition};
use super::workflow::{self, ConventionPatch, Ctx, NewConvention, Termination};
use super::ConventionsState;
use super::{get_seen_convention, Convention, ConventionFilter};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ent_documents::documents::{self, ODT_MIME};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::http::{IfMatchHeader, Versioned};
use ent_kernel::store::Page;
use ent_kernel::{route_table, version_field};
use ent_platform::identity::authz::{
    self, Call, Op, CONVENTIONS_READ, CONVENTIONS_SIGN, CONVENTIONS_SIGNATURE_WITHDRAW, CONVENTIONS_WRITE,
    CONVENTION_MODELS_READ,
};
use ent_platform::identity::{masked_actor, Caller, MASKED};
use ent_platform::registry::queries::{missing_org, resolve_readable_field};
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::Deserialize;

/// Signed PDFs from a parapheur can be large; JSON bodies keep the small default.
pub const SIGNED_COPY_LIMIT: usize = 32 * 1024 * 1024;

route_table!(ConventionsState, "conventions", |api| vec![
    api.get("/api/v1/convention-models", "Modèles de convention", &CONVENTION_MODELS_READ, models)
        .ok::<Vec<ConventionModel>>(),
    api.get("/api/v1/conventions", "Lister ses conventions", &CONVENTIONS_READ, list)
        .pages::<ConventionFilter, Convention>(),
    api.post("/api/v1/conventions", "Créer une convention (brouillon)", &CONVENTIONS_WRITE, create)
        .creates::<NewConvention, Convention>(),
    api.get("/api/v1/conventions/{id}", "Consulter une convention", &CONVENTIONS_READ, show)
        .ok_versioned::<Convention>(),
    api.patch(
        "/api/v1/conventions/{id}",
        "Modifier (If-Match ; annule les signatures recueillies)",
        &CONVENTIONS_WRITE,
        update,
    )
    .if_match_update::<ConventionPatch, Convention>(),
    api.post("/api/v1/conventions/{id}/submit", "Soumettre à visa et signature", &CONVENTIONS_WRITE, submit)
        .ok_versioned::<Convention>(),
    api.post("/api/v1/conventions/{id}/visa", "Viser", &CONVENTIONS_SIGN, visa)
        .json_body::<VisaBody>()
        .ok_versioned::<Convention>(),
    api.post("/api/v1/conventions/{id}/sign", "Signer pour sa partie", &CONVENTIONS_SIGN, sign)
        .json_body::<SignBody>()
        .ok_versioned::<Convention>(),
    api.post(
        "/api/v1/conventions/{id}/signatures/{party}/withdraw",
        "Retirer une signature donnée par erreur sur une convention en signature (administrateur ; motif, \
         If-Match) : la partie signe à nouveau, les autres signatures sont gardées",
        &CONVENTIONS_SIGNATURE_WITHDRAW,
        withdraw_signature,
    )
    .if_match_update::<workflow::WithdrawalBody, Convention>(),
    api.post("/api/v1/conventions/{id}/refuse", "Refuser (retour en brouillon)", &CONVENTIONS_SIGN, refuse)
        .json_body::<RefuseBody>()
        .ok_versioned::<Convention>(),
    api.post("/api/v1/conventions/{id}/terminate", "Résilier", &CONVENTIONS_WRITE, terminate)
        .json_body::<Termination>()
        .ok_versioned::<Convention>(),
    api.post(
        "/api/v1/conventions/{id}/non-renewal",
        "S'opposer à la reconduction tacite (non-reconduction, au plus tard le préavis avant l'échéance), par le \
         représentant d'une partie : qui la signe pour elle",
        &CONVENTIONS_SIGN,
        non_renewal,
    )
    .json_body::<Opposition>()
    .ok_versioned::<Convention>(),
    api.post("/api/v1/conventions/{id}/amend", "Rédiger un avenant", &CONVENTIONS_WRITE, amend)
        .created_versioned::<Convention>(),
    api.get("/api/v1/conventions/{id}/document", "Télécharger (format=html|odt|pdf)", &CONVENTIONS_READ, document)
        .query::<DocumentQuery>()
        .produces(StatusCode::OK, &["text/html; charset=utf-8", ODT_MIME, "application/pdf"]),
    api.get(
        "/api/v1/conventions/{id}/signed-document",
        "Télécharger le document soumis à signature, tel que conservé (format=html|odt|pdf, version)",
        &CONVENTIONS_READ,
        signed_document,
    )
    .query::<SignedDocumentQuery>()
    .produces(StatusCode::OK, &["text/html; charset=utf-8", ODT_MIME, "application/pdf"]),
    api.post(
        "/api/v1/conventions/{id}/signed-copies",
        "Déposer un exemplaire signé hors plateforme (PDF), par le signataire d'une partie",
        &CONVENTIONS_SIGN,
        upload,
    )
    .body_limit(SIGNED_COPY_LIMIT)
    .query::<UploadQuery>()
    .pdf_body()
    .ok_versioned::<Convention>(),
    api.get(
        "/api/v1/conventions/{id}/signed-copies/{file_id}",
        "Télécharger un exemplaire signé déposé (PDF, tel que déposé ; identifiant dans signed_files)",
        &CONVENTIONS_READ,
        signed_copy,
    )
    .produces(StatusCode::OK, &["application/pdf", "application/octet-stream"]),
]);

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisaBody {
    /// The visa given (the pending one when absent).
    pub visa: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// The party signed for, when the signer holds the role at several.
    pub party: Option<String>,
    /// The SHA-256 of the document the signer read; refused if it changed since.
    pub document_hash: Option<String>,
    /// Required of one who is not the representative the document names (compared by name):
    /// their quality and the act delegating them the signature (422 without it).
    pub delegation: Option<crate::conventions::delegation::Delegation>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseBody {
    pub comment: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DocumentQuery {
    /// `html` (default), `odt` or `pdf`.
    #[schemars(extend("enum" = ["html", "odt", "pdf"]))]
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SignedDocumentQuery {
    /// `html` (default; its SHA-256 is the convention's `document_hash`), `odt` or `pdf`.
    #[schemars(extend("enum" = ["html", "odt", "pdf"]))]
    pub format: Option<String>,
    /// A stored version (`documents[].version_no`); the latest when absent.
    pub version: Option<i64>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UploadQuery {
    /// File name of the signed copy.
    pub name: Option<String>,
}

fn ctx<'a>(state: &'a ConventionsState, caller: &'a Caller) -> Ctx<'a> {
    Ctx { store: &state.store, models: &state.models, actor: &caller.actor, now: state.clock.now() }
}

/// The organisations whose conventions the caller sees; `None` for an admin.
pub fn visible_orgs(caller: &Caller) -> Option<Vec<String>> {
    super::visible_orgs_of(&caller.actor, caller.action)
}

/// The convention of the path, if the caller is party to it (404 otherwise, as for an unknown
/// id, at the same cost: [`get_seen_convention`] decides before it reads the convention).
pub async fn find(state: &ConventionsState, caller: &Caller, id: &str) -> Result<Convention, Problem> {
    get_seen_convention(&state.store, &state.models, id, &caller.actor, caller.action)
        .await?
        .ok_or_else(|| Problem::not_found(format!("aucune convention « {id} »")))
}

/// Whether the caller sees who signed: an admin, or a signatory or writer at a party. The
/// other readers (DPO, auditeur) read the persons by name, never by address ([`redacted`]).
pub fn sees_signers(caller: &Caller, conv: &Convention) -> bool {
    let works_on = |role| CONVENTIONS_WRITE.roles.contains(role) || CONVENTIONS_SIGN.roles.contains(role);
    caller.actor.is_admin()
        || caller
            .actor
            .bindings
            .iter()
            .any(|b| works_on(&b.role) && b.org.as_ref().is_some_and(|o| conv.parties.iter().any(|p| p.org.id == o.id)))
}

/// The convention as the caller may read it: every address of a person (signer, depositor,
/// drafter, notifier of a résiliation or of a non-reconduction, operator's principal) masked
/// for the other readers (DPO, auditeur) by [`masked_actor`] (the audit log's rule); their
/// names stay (the convention names them beside it, by the directory: `name` fields).
pub fn redacted(caller: &Caller, mut conv: Convention) -> Convention {
    if sees_signers(caller, &conv) {
        return conv;
    }
    for step in &mut conv.steps {
        step.user_email = MASKED.into();
        if step.user_name.contains('@') {
            step.user_name = MASKED.into();
        }
        step.recorded_by = step.recorded_by.as_deref().map(masked_actor);
    }
    for file in &mut conv.signed_files {
        file.uploaded_by = masked_actor(&file.uploaded_by);
    }
    if let Some(notified) = &mut conv.termination_notified {
        notified.by = notified.by.as_deref().map(masked_actor);
    }
    if let Some(opposed) = &mut conv.non_renewal {
        opposed.by = masked_actor(&opposed.by);
    }
    conv.created_by = masked_actor(&conv.created_by);
    conv
}

async fn models(State(state): State<ConventionsState>) -> Json<Vec<ConventionModel>> {
    Json(state.models.to_vec())
}

async fn list(
    Call { state, caller }: Call<ConventionsState>,
    ApiQuery(filter): ApiQuery<ConventionFilter>,
) -> Result<Json<Page<Convention>>, Problem> {
    let visible = visible_orgs(&caller);
    let filter = readable_filter(&state, &caller, filter).await?;
    // One connection, and one query per kind of thing a convention holds, for the whole page.
    let page = super::list_page(&state.store, &state.models, &filter, visible.as_deref()).await?;
    let items = page.items.into_iter().map(|conv| redacted(&caller, conv)).collect();
    Ok(Json(Page { items, next_cursor: page.next_cursor }))
}

/// The filter's organisations (`party`, `school`) by id, an ambiguous bare code narrowed to what
/// the caller reads ([`authz::resolve_readable`]); a key naming nothing, 422 on its field. An
/// organisation the caller neither reads nor finds in a convention it sees answers exactly as a
/// key naming nothing ([`known_to`]): the filter is no way to learn what exists elsewhere.
async fn readable_filter(
    state: &ConventionsState,
    caller: &Caller,
    mut filter: ConventionFilter,
) -> Result<ConventionFilter, Problem> {
    for (field, key) in [("party", &mut filter.party), ("school", &mut filter.school)] {
        if let Some(given) = key.as_deref().filter(|k| !k.is_empty()) {
            let org = resolve_readable_field(&state.store, &caller.actor, field, given).await?;
            if !known_to(state, caller, &org, field == "school").await? {
                return Err(Problem::invalid_field(field, missing_org(given).detail));
            }
            *key = Some(org.id);
        }
    }
    Ok(filter)
}

/// Whether the caller may be answered about `org` in a filter: it reads it, or `org` is a party
/// to (`school`: a school of) a convention the caller sees.
async fn known_to(state: &ConventionsState, caller: &Caller, org: &Org, school: bool) -> Result<bool, Problem> {
    if authz::reads(&state.store, &caller.actor, org).await? {
        return Ok(true);
    }
    match visible_orgs(caller) {
        None => Ok(true),
        Some(visible) => super::named_in_seen(&state.store, &org.id, school, &visible).await,
    }
}

/// `conv` as answered to the caller, with the warnings they should read
/// ([`workflow::with_warnings`]: another convention on its schools splitting the costs otherwise).
async fn warned(state: &ConventionsState, caller: &Caller, conv: Convention) -> Result<Convention, Problem> {
    workflow::with_warnings(&mut *state.store.conn().await?, &state.models, &caller.actor, conv).await
}

async fn create(
    Call { state, caller }: Call<ConventionsState>,
    ApiJson(body): ApiJson<NewConvention>,
) -> Result<Response, Problem> {
    let conv = workflow::create(&ctx(&state, &caller), body).await?;
    Ok(Versioned::created(warned(&state, &caller, conv).await?).into_response())
}

async fn show(Op { state, caller, key: id }: Op<ConventionsState>) -> Result<Response, Problem> {
    let conv = redacted(&caller, find(&state, &caller, &id).await?);
    Ok(Versioned::ok(warned(&state, &caller, conv).await?).into_response())
}

async fn update(
    Op { state, caller, key: id }: Op<ConventionsState>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<ConventionPatch>,
) -> Result<Response, Problem> {
    let conv = find(&state, &caller, &id).await?;
    let version = if_match.version(conv.version)?;
    let updated = workflow::update(&ctx(&state, &caller), &conv, version, body).await?;
    Ok(Versioned::ok(warned(&state, &caller, updated).await?).into_response())
}

/// A workflow step on the convention of the path (404 if the caller is not party to
/// it), run as the caller; the convention answered with `status` and its `ETag`.
async fn step(
    Op { state, caller, key: id }: Op<ConventionsState>,
    status: StatusCode,
    step: impl AsyncFnOnce(&Ctx<'_>, &Convention) -> Result<Convention, Problem>,
) -> Result<Response, Problem> {
    let conv = find(&state, &caller, &id).await?;
    let stepped = step(&ctx(&state, &caller), &conv).await?;
    Ok(Versioned::with_status(status, warned(&state, &caller, stepped).await?).into_response())
}

async fn submit(op: Op<ConventionsState>) -> Result<Response, Problem> {
    step(op, StatusCode::OK, workflow::submit).await
}

async fn visa(op: Op<ConventionsState>, ApiJson(body): ApiJson<VisaBody>) -> Result<Response, Problem> {
    step(op, StatusCode::OK, async |ctx, conv| workflow::give_visa(ctx, conv, body.visa.as_deref()).await).await
}

async fn sign(op: Op<ConventionsState>, ApiJson(body): ApiJson<SignBody>) -> Result<Response, Problem> {
    let signing = workflow::Signing {
        party: body.party.as_deref(),
        document_hash: body.document_hash.as_deref(),
        delegation: body.delegation,
    };
    step(op, StatusCode::OK, async |ctx, conv| workflow::sign(ctx, conv, signing).await).await
}

/// `party`: the party's key, or `key:org_id` for one organisation of a party several play.
async fn withdraw_signature(
    Op { state, caller, key: (id, party) }: Op<ConventionsState, (String, String)>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<workflow::WithdrawalBody>,
) -> Result<Response, Problem> {
    let conv = find(&state, &caller, &id).await?;
    let version = if_match.version(conv.version)?;
    let asked = workflow::Withdrawal { party: &party, reason: &body.reason, version };
    let withdrawn = workflow::withdraw_signature(&ctx(&state, &caller), &conv, asked).await?;
    Ok(Versioned::ok(warned(&state, &caller, redacted(&caller, withdrawn)).await?).into_response())
}

async fn refuse(op: Op<ConventionsState>, ApiJson(body): ApiJson<RefuseBody>) -> Result<Response, Problem> {
    step(op, StatusCode::OK, async |ctx, conv| workflow::refuse(ctx, conv, &body.comment).await).await
}

async fn terminate(op: Op<ConventionsState>, ApiJson(body): ApiJson<Termination>) -> Result<Response, Problem> {
    step(op, StatusCode::OK, async |ctx, conv| workflow::terminate(ctx, conv, body).await).await
}

async fn non_renewal(op: Op<ConventionsState>, ApiJson(body): ApiJson<Opposition>) -> Result<Response, Problem> {
    step(op, StatusCode::OK, async |ctx, conv| renewal::oppose(ctx, conv, body).await).await
}

async fn amend(op: Op<ConventionsState>, body: Bytes) -> Result<Response, Problem> {
    step(op, StatusCode::CREATED, async |ctx, conv| {
        refuse_changes_at_drafting(&body)?;
        workflow::amend(ctx, conv).await
    })
    .await
}

/// An avenant is drafted from the convention as it is, then changed like any draft: a body
/// that carries changes would otherwise be dropped without a word (`{}` or none is fine).
fn refuse_changes_at_drafting(body: &[u8]) -> Result<(), Problem> {
    let empty = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(fields)) => fields.is_empty(),
        Ok(serde_json::Value::Null) => true,
        _ => body.iter().all(u8::is_ascii_whitespace),
    };
    if empty {
        return Ok(());
    }
    Err(Problem::new(
        ProblemKind::Validation,
        "l'avenant se rédige d'abord sans modification (corps vide) ; ses modifications s'apportent ensuite au \
         brouillon créé, par PATCH /api/v1/conventions/{id} avec son If-Match",
    ))
}

async fn document(
    Op { state, caller, key: id }: Op<ConventionsState>,
    ApiQuery(q): ApiQuery<DocumentQuery>,
) -> Result<Response, Problem> {
    let conv = redacted(&caller, find(&state, &caller, &id).await?);
    rendered_document(&state, &conv, q.format.as_deref()).await
}

/// The convention rendered now in `format` (`html` when absent, `odt`, `pdf`), as a download.
pub async fn rendered_document(
    state: &ConventionsState,
    conv: &Convention,
    format: Option<&str>,
) -> Result<Response, Problem> {
    let model = super::find_model(&state.models, &conv.model_id, Some(conv.model_version))?;
    let doc = super::document::full(&state.store, model, conv).await?;
    let typography = super::document::typography(conv);
    let (bytes, content_type, ext) = match format.unwrap_or("html") {
        "html" => (documents::to_html_as(&doc, typography).into_bytes(), "text/html; charset=utf-8", "html"),
        "odt" => (documents::to_odt_as(&doc, typography), ODT_MIME, "odt"),
        "pdf" => {
            let doc = doc.clone();
            let pdf = tokio::task::spawn_blocking(move || documents::to_pdf_as(&doc, typography))
                .await
                .map_err(|e| anyhow::anyhow!("pdf task: {e}"))?
                .map_err(Problem::from)?;
            (pdf, "application/pdf", "pdf")
        }
        other => return Err(Problem::invalid_field("format", format!("format inconnu : {other} (html, odt ou pdf)"))),
    };
    let mut response = documents::response::document(bytes, content_type, &format!("{}.{ext}", conv.reference));
    if let Some(hash) = &conv.document_hash {
        response.headers_mut().insert("x-document-sha256", HeaderValue::from_str(hash).expect("hex"));
    }
    Ok(response)
}

/// The stored bytes of a frozen version: byte for byte what was submitted for signature.
async fn signed_document(
    Op { state, caller, key: id }: Op<ConventionsState>,
    ApiQuery(q): ApiQuery<SignedDocumentQuery>,
) -> Result<Response, Problem> {
    let conv = find(&state, &caller, &id).await?;
    frozen_document(&state, &conv, q.format.as_deref(), q.version).await
}

/// A stored frozen version (the latest when `version` is absent) in `format`, as a download.
pub async fn frozen_document(
    state: &ConventionsState,
    conv: &Convention,
    format: Option<&str>,
    version: Option<i64>,
) -> Result<Response, Problem> {
    let format = format.unwrap_or("html");
    if !super::frozen::FORMATS.contains(&format) {
        return Err(Problem::invalid_field("format", format!("format inconnu : {format} (html, odt ou pdf)")));
    }
    let stored = super::frozen::read(&mut *state.store.conn().await?, &conv.id, version, format).await?;
    let Some((file, bytes)) = stored else {
        return Err(Problem::not_found(match (conv.status, format) {
            (super::Status::Draft, _) if conv.documents.is_empty() => {
                format!("la convention {} n'a pas encore été soumise à signature", conv.reference)
            }
            (_, "pdf") => "aucun PDF conservé pour cette version (aucun convertisseur lors de la soumission)".into(),
            _ => "version inconnue".into(),
        }));
    };
    let name = format!("{}-v{}.{format}", conv.reference, file.version_no);
    let mut response = documents::response::document(bytes, &file.content_type, &name);
    response.headers_mut().insert("x-document-sha256", HeaderValue::from_str(&file.sha256).expect("hex"));
    Ok(response)
}

async fn upload(
    Op { state, caller, key: id }: Op<ConventionsState>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let conv = find(&state, &caller, &id).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type != "application/pdf" {
        return Err(Problem::new(ProblemKind::UnsupportedMediaType, "déposez l'exemplaire signé en application/pdf"));
    }
    workflow::require_pdf(&body)?;
    let name = q.name.unwrap_or_else(|| format!("{}-signee.pdf", conv.reference));
    let updated = workflow::upload_signed(&ctx(&state, &caller), &conv, &name, content_type, &body).await?;
    Ok(Versioned::ok(warned(&state, &caller, updated).await?).into_response())
}

/// A signed copy deposited for the convention (`file_id`, listed in its `signed_files`): the bytes
/// as deposited ([`signed_copy_download`]). Seen by whoever reads the convention; a convention
/// out of the caller's scope answers as an unknown one.
async fn signed_copy(
    Op { state, caller, key: (id, file_id) }: Op<ConventionsState, (String, String)>,
) -> Result<Response, Problem> {
    signed_copy_download(&state, &find(&state, &caller, &id).await?, &file_id).await
}

/// The signed copy `file_id` of `conv` (a convention the caller reads) as a download: `attachment`,
/// `nosniff`, a safe file name, `application/pdf` only for what was deposited as PDF.
pub async fn signed_copy_download(
    state: &ConventionsState,
    conv: &Convention,
    file_id: &str,
) -> Result<Response, Problem> {
    let unknown =
        || Problem::not_found(format!("aucun exemplaire signé « {file_id} » pour la convention {}", conv.reference));
    let file = conv.signed_files.iter().find(|f| f.id == file_id).ok_or_else(unknown)?;
    let content: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT content FROM convention_files WHERE id = $1 AND convention_id = $2")
            .bind(&file.id)
            .bind(&conv.id)
            .fetch_optional(state.store.pool())
            .await?;
    let content = content.ok_or_else(unknown)?;
    // Only the PDF deposits are checked to be: any other stored type is served as bytes, never rendered.
    let content_type =
        if file.content_type == "application/pdf" { "application/pdf" } else { "application/octet-stream" };
    Ok(documents::response::attachment(content, content_type, &file.file_name))
}

version_field!(Convention);
