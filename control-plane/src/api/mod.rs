//! Mounts every capability's routes under `/api/v1`, the health endpoints, the
//! OpenAPI document (generated from the same route table), and the middleware:
//! authentication and the route's declared action, idempotency keys, metrics.

pub mod extract;
pub mod failed_auth;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod shutdown;

use crate::config::Config;
use crate::error::{Problem, ProblemKind};
use crate::identity::authz::{self, Action, Scope};
use crate::identity::Actor;
use crate::registry::Org;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use schemars::{JsonSchema, SchemaGenerator};
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// JSON bodies are small; the annuaire upload has its own, configured limit.
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn crate::clock::Clock>,
    pub metrics: Arc<metrics::Metrics>,
    /// Convention models, loaded and validated at start.
    pub models: Arc<Vec<crate::conventions::model::ConventionModel>>,
    /// Services and bouquets, loaded and validated at start.
    pub catalog: Arc<crate::catalog::Catalog>,
    /// Support calendars and SLA policies, loaded and validated at start.
    pub support: Arc<crate::support::policy::Policies>,
    /// Failed authentications per client address and token id (in memory, per process).
    pub auth_throttle: Arc<crate::throttle::Throttle>,
}

impl AppState {
    pub fn new(store: Store, config: Config, clock: Arc<dyn crate::clock::Clock>) -> AppState {
        let models = crate::conventions::model::load_models(config.conventions_dir.as_deref())
            .expect("convention models are validated at start (entctl checks them before building the state)");
        let catalog = crate::catalog::Catalog::load(config.catalog_dir.as_deref())
            .expect("the catalog is validated at start (entctl checks it before building the state)");
        let support = crate::support::policy::Policies::load(config.support_dir.as_deref())
            .expect("support policies are validated at start (entctl checks them before building the state)");
        AppState {
            auth_throttle: Arc::new(crate::throttle::Throttle::new(config.server.auth_throttle)),
            support: Arc::new(support),
            store,
            config: Arc::new(config),
            clock,
            metrics: Arc::new(metrics::Metrics::default()),
            models: Arc::new(models),
            catalog: Arc::new(catalog),
        }
    }
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
    /// What the route does, for authorisation.
    pub action: &'static Action,
    /// Accepts an `Idempotency-Key` (POST creations).
    pub idempotent: bool,
    pub query: Option<SchemaFn>,
    pub request: Option<(&'static str, SchemaFn)>,
    /// Success responses: status, content type, and the JSON schema of JSON bodies
    /// (files have none). No entry: 204 No Content.
    pub responses: Vec<(StatusCode, &'static str, Option<SchemaFn>)>,
}

impl ApiRoute {
    pub fn new(
        method: Method,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
        action: &'static Action,
        handler: MethodRouter<AppState>,
    ) -> Self {
        ApiRoute {
            method,
            path,
            summary,
            tag,
            handler,
            action,
            idempotent: false,
            query: None,
            request: None,
            responses: Vec::new(),
        }
    }

    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
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

    /// A PDF file as the body.
    pub fn pdf_body(mut self) -> Self {
        self.request = Some(("application/pdf", |_| schemars::json_schema!({ "contentMediaType": "application/pdf" })));
        self
    }

    /// A JSON success response; call it once per status the route can answer.
    pub fn responds<T: JsonSchema>(mut self, status: StatusCode) -> Self {
        self.responses.push((status, "application/json", Some(schema_of::<T>)));
        self
    }

    /// A file success response in each of `content_types` (chosen by the `format` parameter).
    pub fn produces(mut self, status: StatusCode, content_types: &[&'static str]) -> Self {
        self.responses.extend(content_types.iter().map(|content_type| (status, *content_type, None)));
        self
    }
}

/// Every `/api/v1` route of every capability.
pub fn routes() -> Vec<ApiRoute> {
    let mut routes = Vec::new();
    routes.extend(crate::registry::routes::routes());
    routes.extend(crate::identity::routes::routes());
    routes.extend(crate::audit::routes::routes());
    routes.extend(crate::conventions::routes::routes());
    routes.extend(crate::tenants::routes::routes());
    routes.extend(crate::catalog::routes::routes());
    routes.extend(crate::jobs::routes());
    routes.extend(crate::notify::routes());
    routes.extend(crate::support::routes::routes());
    routes.extend(crate::groupements::routes::routes());
    routes.extend(crate::rgpd::routes::routes());
    routes
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let mut api = Router::new();
    for route in routes() {
        let action = route.action;
        let mut handler = route.handler;
        if route.idempotent {
            handler = handler.route_layer(middleware::from_fn_with_state(state.clone(), idempotency::layer));
        }
        handler = handler.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |state: State<AppState>, req: Request, next: Next| authenticate(state, action, req, next),
        ));
        api = api.route(route.path, handler);
    }
    Router::new()
        .merge(api)
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                .make_span_with(|req: &axum::http::Request<_>| {
                    let request_id =
                        req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The authenticated caller of a route and the action the route declared.
#[derive(Clone)]
pub struct Caller {
    pub actor: Actor,
    pub action: &'static Action,
}

impl Caller {
    /// Allows the call on `target` or answers 404 (read) / 403 (write).
    pub async fn require(&self, store: &Store, target: &Org) -> Result<(), Problem> {
        authz::authorize(store, &self.actor, self.action, target).await
    }

    /// The organisations this call may reach.
    pub fn scope(&self) -> Scope {
        authz::scope(&self.actor, self.action)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Problem::new(ProblemKind::Internal, "route mounted without authentication"))
    }
}

/// The bearer token of the only `Authorization` header (several: none is trusted).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(ProblemKind::Unauthorized, detail).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"entcp\""));
    response
}

/// Authenticates the bearer token and checks that one of the actor's roles
/// allows the route's action; the scope is checked by the handler on its target.
async fn authenticate(
    State(state): State<AppState>,
    action: &'static Action,
    mut req: Request,
    next: Next,
) -> Response {
    let client = failed_auth::client_address(&req, state.config.server.trust_forwarded_for);
    if let Some(too_many) = failed_auth::blocked(&state, &client) {
        return too_many;
    }
    let Some(token) = bearer_token(req.headers()) else {
        if req.headers().contains_key(header::AUTHORIZATION) {
            return failed_auth::refuse(&state, &client, action, failed_auth::Failure::MalformedHeader, None).await;
        }
        return unauthorized("authentification requise : en-tête Authorization: Bearer <jeton>");
    };
    let actor = match crate::identity::check_token(&state.store, token, state.clock.now()).await {
        Ok(Ok(actor)) => actor,
        Ok(Err(refusal)) => {
            let failure = failed_auth::Failure::Token(refusal);
            return failed_auth::refuse(&state, &client, action, failure, Some(token)).await;
        }
        Err(problem) => return problem.into_response(),
    };
    if !authz::role_allows(&actor, action) {
        authz::log_decision(&actor, action, "-", false, "no role allows the action");
        return authz::forbidden(format!("votre rôle ne permet pas l'action {}", action.name)).into_response();
    }
    req.extensions_mut().insert(Caller { actor, action });
    next.run(req).await
}

/// `ETag` of a resource at `version`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("ascii etag")
}

/// What an `If-Match` header accepts (RFC 9110 §13.1.1, strong comparison).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: whatever the current version is.
    Any,
    /// One or more strong tags (`"3"` or `"3", "4"`).
    Versions(Vec<i64>),
}

impl IfMatch {
    /// The version the update must find: the current one if the header accepts it.
    pub fn expected(&self, current: i64) -> i64 {
        match self {
            IfMatch::Any => current,
            IfMatch::Versions(v) if v.contains(&current) => current,
            IfMatch::Versions(v) => v[0],
        }
    }

    /// [`Self::expected`] against the version stored in the row of `table` whose id or
    /// reference is `key` (0 when absent, so that the update then answers its own 404).
    pub async fn expected_in(&self, store: &Store, table: &'static str, key: &str) -> Result<i64, Problem> {
        if let IfMatch::Versions(v) = self {
            if v.len() == 1 {
                return Ok(v[0]);
            }
        }
        let sql = format!("SELECT version FROM {table} WHERE id = $1 OR reference = $1");
        let current: Option<i64> = sqlx::query_scalar(&sql).bind(key).fetch_optional(store.pool()).await?;
        Ok(self.expected(current.unwrap_or(0)))
    }
}

/// Parses `If-Match` (required: 428 without): `*` or strong tags; a weak tag never
/// matches (412), an unquoted one is malformed (400).
pub fn if_match(headers: &HeaderMap) -> Result<IfMatch, Problem> {
    let value = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        Problem::new(
            ProblemKind::PreconditionRequired,
            "en-tête If-Match requis : renvoyez l'ETag lu avec la ressource",
        )
    })?;
    if value.trim() == "*" {
        return Ok(IfMatch::Any);
    }
    let mut versions = Vec::new();
    for tag in value.split(',').map(str::trim) {
        if tag.starts_with("W/") {
            return Err(Problem::new(
                ProblemKind::PreconditionFailed,
                format!("If-Match « {tag} » : une étiquette faible ne valide pas une modification (comparaison forte)"),
            ));
        }
        let version = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).and_then(|t| t.parse().ok());
        match version {
            Some(v) => versions.push(v),
            None => {
                return Err(Problem::bad_request(format!(
                    "If-Match « {tag} » mal formé : attendu l'ETag entre guillemets (\"3\") ou *"
                )))
            }
        }
    }
    Ok(IfMatch::Versions(versions))
}

/// The version an update is based on, given the resource's `current` version.
pub fn if_match_version(headers: &HeaderMap, current: i64) -> Result<i64, Problem> {
    Ok(if_match(headers)?.expected(current))
}

/// 412: the resource changed since the caller read it.
pub fn precondition_failed(current_version: i64) -> Problem {
    Problem::new(
        ProblemKind::PreconditionFailed,
        format!("la ressource a été modifiée entre-temps (version actuelle {current_version}) : relisez-la puis recommencez"),
    )
    .with_extra(serde_json::json!({ "current_version": current_version }))
}

async fn openapi_document() -> impl IntoResponse {
    Json(openapi::document(&routes()))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database before answering « indisponible ».
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, Problem> {
    state.store.check_ready(READY_TIMEOUT).await?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

async fn unknown_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("aucune ressource à l'adresse {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(ProblemKind::MethodNotAllowed, format!("la méthode {method} n'est pas acceptée sur {}", uri.path()))
}
