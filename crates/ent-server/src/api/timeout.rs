//! The server-wide request timeout (`server.request_timeout_seconds`): a request stuck on
//! a slow database or a hung peer is interrupted and answered 503 « délai de traitement
//! dépassé » instead of holding its connection and its pool slot. Uploads, imports,
//! downloads and exports legitimately run long and are not limited.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ent_kernel::error::{Problem, ProblemKind};
use std::time::Duration;

/// Route templates (API and console) that send or receive files, build exports or run a job:
/// no limit.
pub const RUNS_LONG: [&str; 19] = [
    "/api/v1/imports/annuaire",
    // A manual job run answers once the run ends (its own timeout: jobs.<name>.timeout_seconds).
    "/api/v1/jobs/{name}/run",
    "/api/v1/groupements/{id}/documents",
    "/api/v1/groupements/{id}/documents/{document}",
    "/api/v1/support/tickets/{id}/attachments",
    "/api/v1/support/tickets/{id}/attachments/{file}",
    "/api/v1/support/report",
    "/api/v1/conventions/{id}/document",
    "/api/v1/conventions/{id}/signed-document",
    "/api/v1/conventions/{id}/signed-copies",
    "/api/v1/rgpd/registers/{org}",
    "/api/v1/rgpd/breaches/{org}",
    "/api/v1/rgpd/requests/{org}",
    "/rgpd/{org}/export/{format}",
    "/tickets/rapports/csv",
    "/tickets/{ticket}/pieces-jointes/{fichier}",
    "/conventions/{convention}/document",
    "/groupements/{groupement}/documents",
    "/groupements/{groupement}/documents/{piece}",
];

/// Whether `req` may run past the request timeout: a route of [`RUNS_LONG`], or a form
/// that carries files (`multipart/form-data`: console uploads).
fn runs_long(req: &Request) -> bool {
    let template = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    if template.is_some_and(|template| RUNS_LONG.contains(&template)) {
        return true;
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data")
}

/// Runs the request within `server.request_timeout_seconds`; past it, the handler is
/// dropped (its transaction rolled back) and the caller gets a French problem+json 503.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let seconds = state.config.server.request_timeout_seconds;
    if seconds == 0 || runs_long(&req) {
        return next.run(req).await;
    }
    let may_write = !req.method().is_safe();
    let path = req.uri().path().to_string();
    match tokio::time::timeout(Duration::from_secs(seconds), next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(path = %path, seconds, "request interrupted: past server.request_timeout_seconds");
            timed_out(seconds, may_write).into_response()
        }
    }
}

/// The answer of a request interrupted after `seconds`.
pub fn timed_out(seconds: u64, may_write: bool) -> Problem {
    let outcome = if may_write {
        " ; la modification demandée n'a pas été confirmée : relisez la ressource avant de recommencer"
    } else {
        " : réessayez dans quelques instants"
    };
    Problem::new(
        ProblemKind::Timeout,
        format!(
            "la requête n'a pas abouti en {seconds} s (server.request_timeout_seconds) et a été interrompue{outcome}"
        ),
    )
}
