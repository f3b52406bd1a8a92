//! Mounts every capability's routes under `/api/v1`, the health endpoints, the
//! OpenAPI document (generated from the same route table), and the middleware.

pub mod extract;
pub mod openapi;

use crate::config::Config;
use crate::error::{Problem, ProblemKind};
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use schemars::{JsonSchema, SchemaGenerator};
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

fn root_schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.root_schema_for::<T>()
}

/// One API route: how it is mounted and how the OpenAPI document describes it.
pub struct ApiRoute {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub handler: MethodRouter<AppState>,
    pub query: Option<SchemaFn>,
    pub request: Option<(&'static str, SchemaFn)>,
    pub response: Option<(StatusCode, SchemaFn)>,
}

impl ApiRoute {
    pub fn new(
        method: Method,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        ApiRoute {
            method,
            path,
            summary,
            tag,
            handler,
            query: None,
            request: None,
            response: None,
        }
    }

    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(root_schema_of::<T>);
        self
    }

    pub fn json_body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(("application/json", schema_of::<T>));
        self
    }

    pub fn csv_body(mut self) -> Self {
        self.request = Some(("text/csv", schema_of::<String>));
        self
    }

    pub fn responds<T: JsonSchema>(mut self, status: StatusCode) -> Self {
        self.response = Some((status, schema_of::<T>));
        self
    }
}

/// Every `/api/v1` route of every capability.
pub fn routes() -> Vec<ApiRoute> {
    let mut routes = Vec::new();
    routes.extend(crate::registry::routes::routes());
    routes.extend(crate::jobs::routes());
    routes.extend(crate::notify::routes());
    routes
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let mut api = Router::new();
    for route in routes() {
        api = api.route(route.path, route.handler);
    }
    Router::new()
        .merge(api)
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn openapi_document() -> impl IntoResponse {
    Json(openapi::document(&routes()))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, Problem> {
    if state.store.ping().await {
        Ok(Json(serde_json::json!({ "status": "ready" })))
    } else {
        Err(Problem::new(
            ProblemKind::Unavailable,
            "La base de données ne répond pas.",
        ))
    }
}

async fn unknown_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("aucune ressource à l'adresse {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        ProblemKind::MethodNotAllowed,
        format!("la méthode {method} n'est pas acceptée sur {}", uri.path()),
    )
}
