//! Mounts every capability's routes under `/api/v1`, the health endpoints, the
//! OpenAPI document (generated from the same route table), and the middleware:
//! authentication and the route's declared action, idempotency keys, metrics, the
//! request timeout.

pub mod commitments;
pub mod failed_auth;
pub mod idempotency;
pub mod job_routes;
pub mod jobs;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod scheduler;
pub mod shutdown;
pub mod timeout;

use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ent_console::oidc::ConsoleOidc;
use ent_console::{self as console, ConsoleState, SignInThrottle};
use ent_conventions::conventions::model::{load_models, ConventionModel};
use ent_conventions::conventions::processing;
use ent_conventions::conventions::{self, ConventionsState};
use ent_groupements::groupements::{self, GroupementsState, SupportCommitments};
use ent_kernel::clock::Clock;
use ent_kernel::config::Config;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::ApiRoute;
use ent_kernel::kernel::roles::Action;
use ent_kernel::store::Store;
use ent_kernel::throttle::Throttle;
use ent_kernel::validate;
use ent_ops::notify::{self, NotifyState};
use ent_platform::audit::{self, AuditState, KindRules};
use ent_platform::catalog::{self, Catalog, CatalogState};
use ent_platform::identity::authz;
use ent_platform::identity::{self, Caller, IdentityState};
use ent_platform::registry::{self, RegistryState};
use ent_rgpd::rgpd::{self, RgpdState};
use ent_support::support::policy::Policies;
use ent_support::support::{self, SupportState};
use ent_tenants::provisioning::runtime::Reconciler;
use ent_tenants::provisioning::ProvisioningState;
use ent_tenants::tenants::{self, TenantsState};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// JSON bodies are small; the annuaire upload has its own, configured limit.
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<metrics::Metrics>,
    /// Convention models, loaded and validated at start.
    pub models: Arc<Vec<ConventionModel>>,
    /// Services and bouquets, loaded and validated at start.
    pub catalog: Arc<Catalog>,
    /// Support calendars and SLA policies, loaded and validated at start.
    pub support: Arc<Policies>,
    /// The same policies as the groupements see them (N3 commitments).
    pub support_commitments: Arc<dyn SupportCommitments>,
    /// The audit records read as their entity is ([`audit_rules`]).
    pub audit_rules: KindRules,
    /// Failed authentications per client address and token id (in the database, shared by replicas).
    pub auth_throttle: Arc<Throttle>,
    /// The reconciler's rate limit, figures and work queue (per process).
    pub reconciler: Arc<Reconciler>,
    /// Failed console sign-ins per account and per address (in the database, shared by replicas).
    pub sign_in_throttle: Arc<SignInThrottle>,
    /// The console's OpenID Connect provider (`identity.oidc`), if any.
    pub oidc: Arc<ConsoleOidc>,
    /// Cancelled at SIGTERM: `/readyz` answers 503 from then on (see `server.unready_seconds`).
    pub stopping: tokio_util::sync::CancellationToken,
    /// Cancelled at the shutdown deadline (`Scheduler::run_until`; at the signal for `entctl
    /// jobs run`): every job run of the process still going, scheduled or manual, stops and
    /// is released to a live process.
    pub interrupt_jobs: tokio_util::sync::CancellationToken,
    /// The manual runs going on in this process, which the shutdown waits for.
    pub manual_runs: scheduler::ManualRuns,
}

impl AppState {
    /// The state of a running application: the configuration's models, catalog and
    /// support policies loaded and validated (an invalid one is an error).
    pub fn load(store: Store, mut config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        config.derive_public_url(None);
        let models = load_models(config.conventions_dir.as_deref())?;
        let catalog = Arc::new(Catalog::load(config.catalog_dir.as_deref())?);
        // The Art. 28(3) annex of conventions lists the services of this catalog.
        processing::use_catalog(catalog.clone());
        let support = Arc::new(Policies::load(config.support_dir.as_deref())?);
        Ok(AppState {
            auth_throttle: Arc::new(Throttle::new(store.clone(), "api", config.server.auth_throttle)),
            reconciler: Arc::new(Reconciler::new(&config.provisioning.reconcile)),
            sign_in_throttle: Arc::new(SignInThrottle::new(&store, &config)),
            oidc: Arc::new(ConsoleOidc::new(&config).map_err(|p| anyhow::anyhow!(p.detail))?),
            support_commitments: Arc::new(commitments::SupportDesk(support.clone())),
            audit_rules: audit_rules(),
            support,
            store,
            config: Arc::new(config),
            clock,
            metrics: Arc::new(metrics::Metrics::default()),
            models: Arc::new(models),
            catalog,
            stopping: tokio_util::sync::CancellationToken::new(),
            interrupt_jobs: tokio_util::sync::CancellationToken::new(),
            manual_runs: Default::default(),
        })
    }

    /// [`Self::load`] for a configuration already validated (tests, benches).
    pub fn new(store: Store, config: Config, clock: Arc<dyn Clock>) -> AppState {
        AppState::load(store, config, clock).expect("a configuration validated before building the state")
    }
}

/// Every capability's rule on who reads the audit records of the kinds it owns: each kind's
/// records are read by who reads the entity through its own routes.
fn audit_rules() -> KindRules {
    KindRules::new(
        [
            identity::readers::AuditReaders::all(),
            conventions::AuditReaders::all(),
            support::AuditReaders::all(),
            groupements::readers::AuditReaders::all(),
            rgpd::AuditReaders::all(),
        ]
        .concat(),
    )
}

/// Each capability's context, for the commands and jobs that call capability functions.
macro_rules! contexts {
    ($($name:ident: $ty:ty),* $(,)?) => {
        impl AppState {
            $(pub fn $name(&self) -> $ty {
                axum::extract::FromRef::from_ref(self)
            })*
        }
    };
}

contexts! {
    audit: AuditState,
    catalog: CatalogState,
    console: ConsoleState,
    conventions: ConventionsState,
    groupements: GroupementsState,
    identity: IdentityState,
    notify: NotifyState,
    provisioning: ProvisioningState,
    registry: RegistryState,
    rgpd: RgpdState,
    support: SupportState,
    tenants: TenantsState,
}

/// Each part of the state, for handlers and capability contexts that extract it.
macro_rules! state_part {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(impl axum::extract::FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        })*
    };
}

state_part! {
    store: Store,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    metrics: Arc<metrics::Metrics>,
    models: Arc<Vec<ConventionModel>>,
    catalog: Arc<Catalog>,
    support: Arc<Policies>,
    support_commitments: Arc<dyn SupportCommitments>,
    audit_rules: KindRules,
    auth_throttle: Arc<Throttle>,
    reconciler: Arc<Reconciler>,
    sign_in_throttle: Arc<SignInThrottle>,
    oidc: Arc<ConsoleOidc>,
}

/// Every `/api/v1` route of every capability.
pub fn routes() -> Vec<ApiRoute<AppState>> {
    [
        registry::routes::routes(),
        identity::routes::routes(),
        audit::routes::routes(),
        conventions::routes::routes(),
        tenants::routes::routes(),
        catalog::routes::routes(),
        job_routes::routes(),
        notify::routes(),
        support::routes::routes(),
        groupements::routes::routes(),
        rgpd::routes::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    state.store.set_read_cache(state.config.database.read_cache.unwrap_or(true));
    state.store.watch_changes();
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
    let routes = Router::new()
        .merge(api)
        .merge(console::router(&state, console::routes()))
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed);
    layered(routes, state)
}

/// `routes` inside the layers every request of the application goes through (from the
/// outermost: request id, trace, cached reads dropped after writes, metrics, time limit, body
/// limit, a panic caught as a 500, unreadable addresses refused), with `state`: what [`app`]
/// serves, and what a test serves a route of its own through.
pub fn layered(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(middleware::from_fn(refuse_unreadable_address))
        .layer(CatchPanicLayer::custom(answer_panic))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), timeout::limit))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(middleware::from_fn_with_state(state.clone(), drop_cached_reads_after_writes))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                .make_span_with(|req: &axum::http::Request<_>| {
                    let request_id =
                        req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
                    let path = logged_path(req);
                    tracing::info_span!("request", method = %req.method(), path = %path, request_id)
                }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// A handler that panicked (a bug) answers a 500 `problem+json`, logged, instead of a
/// connection closed without a word.
fn answer_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    Problem::new(ProblemKind::Internal, format!("panic: {what}")).into_response()
}

/// Route parameters that are secrets (the token of a password link): `***` in the logs.
const SECRET_PARAMETERS: [&str; 1] = ["{jeton}"];

/// The path of a request as its log lines show it: the segments of a secret route
/// parameter masked (the route template is known here: layers run after routing).
fn logged_path<B>(req: &axum::http::Request<B>) -> String {
    let path = req.uri().path();
    let Some(template) = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str) else {
        return path.to_string();
    };
    if !SECRET_PARAMETERS.iter().any(|secret| template.contains(secret)) {
        return path.to_string();
    }
    template
        .split('/')
        .zip(path.split('/'))
        .map(|(param, segment)| if SECRET_PARAMETERS.contains(&param) { "***" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

/// A request whose path, once decoded, is not one-line UTF-8 text (a NUL, a line break, a lone
/// `%FF`), or whose query string holds a NUL, is refused with a 400 before any route reads it.
async fn refuse_unreadable_address(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let checked = validate::address_path(uri.path()).and_then(|()| uri.query().map_or(Ok(()), validate::address_query));
    match checked {
        Ok(()) => next.run(req).await,
        Err(detail) => Problem::bad_request(detail).into_response(),
    }
}

/// A request that may write drops the cached reads once it is handled, before its
/// answer leaves: the next read, this client's included, sees what it wrote.
async fn drop_cached_reads_after_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let may_write = !req.method().is_safe();
    let response = next.run(req).await;
    if may_write {
        state.store.note_change();
    }
    response
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
    if let Some(too_many) = failed_auth::blocked(&state, &client).await {
        return too_many;
    }
    let Some(token) = bearer_token(req.headers()) else {
        if req.headers().contains_key(header::AUTHORIZATION) {
            return failed_auth::refuse(&state, &client, action, failed_auth::Failure::MalformedHeader, None).await;
        }
        return unauthorized("authentification requise : en-tête Authorization: Bearer <jeton>");
    };
    let (actor, presented) = match identity::check_token(&state.store, token, state.clock.now()).await {
        Ok(Ok(authenticated)) => authenticated,
        Ok(Err(refusal)) => {
            let failure = failed_auth::Failure::Token(refusal);
            return failed_auth::refuse(&state, &client, action, failure, Some(token)).await;
        }
        Err(problem) => return problem.into_response(),
    };
    if let Err(refused) = authz::require_role(&actor, action) {
        return refused.into_response();
    }
    req.extensions_mut().insert(Caller { actor, action });
    req.extensions_mut().insert(presented);
    next.run(req).await
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
    if state.stopping.is_cancelled() {
        return Err(Problem::new(
            ProblemKind::Unavailable,
            "ce réplica s'arrête : il ne reçoit plus de nouvelles requêtes",
        ));
    }
    state.store.check_ready(READY_TIMEOUT).await?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

/// An address no route answers: the console's error page for a browser reading pages
/// (`console::wants_page`), the problem+json of the API otherwise.
async fn unknown_route(State(state): State<AppState>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if console::wants_page(uri.path(), &headers) {
        let detail = "aucune page à cette adresse : vérifiez-la, ou repartez de l'accueil";
        return console::browser_error(&ConsoleState::from_ref(&state), &headers, StatusCode::NOT_FOUND, detail).await;
    }
    Problem::not_found(format!("aucune ressource à l'adresse {}", uri.path())).into_response()
}

/// A method an address does not take: for a browser, mostly a form's address opened (a
/// reload after the form was refused), said on the console's error page.
async fn method_not_allowed(
    State(state): State<AppState>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if console::wants_page(uri.path(), &headers) {
        let detail = "cette adresse reçoit les formulaires envoyés depuis une page, elle ne s'ouvre pas directement : \
                      revenez à la page précédente pour saisir de nouveau le formulaire";
        let status = StatusCode::METHOD_NOT_ALLOWED;
        return console::browser_error(&ConsoleState::from_ref(&state), &headers, status, detail).await;
    }
    Problem::new(ProblemKind::MethodNotAllowed, format!("la méthode {method} n'est pas acceptée sur {}", uri.path()))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_answers_a_logged_internal_problem() {
        let response = answer_panic(Box::new(String::from("attempt to add with overflow")));
        assert_eq!(response.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
    }
}
