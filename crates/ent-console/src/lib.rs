//! The web console: French, server-rendered pages (tera templates under
//! `templates/console/`, DSFR markup) beside the API, mounted at `/` by `ent-server`.
//! Pages call the capability functions and `authz` directly, never the HTTP API, and
//! authenticate people by a server-side session (`identity::sessions`), never a token.
//!
//! Each page is a row of [`routes`]: method, path, who may open it ([`Access`]) and its
//! handler; [`router`] wraps every signed-in page in [`auth::guard`] (session, role,
//! CSRF token of every POST) and every page in [`security::headers`].

pub mod accessibility;
pub mod account;
mod assets;
pub mod auth;
pub mod conventions;
pub mod dashboard;
mod form;
mod forms;
pub mod groupements;
pub mod list;
mod multipart;
pub mod notifications;
pub mod oidc;
pub mod organisations;
pub mod page;
pub mod reports;
pub mod rgpd;
mod security;
pub use security::{browser_error, wants_page};
pub mod signin;
mod submission;
pub mod tenants;
mod ticket_files;
pub mod tickets;
pub mod users;

use axum::http::Method;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use ent_conventions::conventions::ConventionsState;
use ent_groupements::groupements::GroupementsState;
use ent_kernel::capability_state;
use ent_kernel::clock::Clock;
use ent_kernel::config::Config;
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::{Action, Role};
use ent_kernel::store::Store;
use ent_kernel::throttle::Throttle;
use ent_platform::identity::authz;
use ent_rgpd::rgpd::RgpdState;
use ent_support::support::SupportState;
use ent_tenants::tenants::TenantsState;
use std::sync::Arc;

/// Failed sign-ins per account and per address (in the database, shared by replicas).
pub struct SignInThrottle(pub Throttle);

impl SignInThrottle {
    pub fn new(store: &Store, config: &Config) -> SignInThrottle {
        SignInThrottle(Throttle::new(store.clone(), "sign_in", config.console.sign_in_throttle))
    }
}

capability_state! {
    /// The parts of the application state the console uses.
    pub struct ConsoleState {
        pub store: Store,
        pub config: Arc<Config>,
        pub clock: Arc<dyn Clock>,
        pub sign_in_throttle: Arc<SignInThrottle>,
        pub oidc: Arc<oidc::ConsoleOidc>,
    }
}

/// Who may open a page.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone (sign-in, password reset, static files).
    Public,
    /// A signed-in person one of whose roles allows the action (its scope is the
    /// handler's to check on the page's target).
    Signed(&'static Action),
}

/// One console page.
pub struct ConsoleRoute<S> {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<S>,
}

/// The dashboard of an organisation: the DAN's académie, the commune's own.
pub const DASHBOARD: Action =
    Action { name: "console.dashboard", write: false, roles: &[Role::Admin, Role::Dan, Role::Collectivite] };

pub(crate) fn route<S>(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<S>,
) -> ConsoleRoute<S> {
    ConsoleRoute { method, path, access, handler }
}

/// A page and the form it posts back to, at one path: `page` on GET for `read`, `save` on
/// POST for `write`.
pub(crate) fn form_page<S>(
    path: &'static str,
    read: Access,
    write: Access,
    page: MethodRouter<S>,
    save: MethodRouter<S>,
) -> Vec<ConsoleRoute<S>> {
    vec![route(Method::GET, path, read, page), route(Method::POST, path, write, save)]
}

/// Every console page.
pub fn routes<S>() -> Vec<ConsoleRoute<S>>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
    ConventionsState: FromRef<S>,
    TenantsState: FromRef<S>,
    SupportState: FromRef<S>,
    RgpdState: FromRef<S>,
    GroupementsState: FromRef<S>,
{
    use Access::*;
    let mut pages = vec![
        route(Method::GET, "/assets/{*path}", Public, get(assets::serve)),
        route(Method::GET, "/connexion", Public, get(signin::form)),
        route(Method::POST, "/connexion", Public, post(signin::sign_in)),
        route(Method::GET, "/connexion/oidc", Public, get(oidc::begin)),
        route(Method::GET, "/connexion/oidc/retour", Public, get(oidc::callback)),
        route(Method::POST, "/deconnexion", Signed(&authz::SELF_READ), post(signin::sign_out)),
        route(Method::GET, "/mot-de-passe-oublie", Public, get(signin::forgot_form)),
        route(Method::POST, "/mot-de-passe-oublie", Public, post(signin::forgot)),
        route(Method::GET, "/mot-de-passe/{jeton}", Public, get(signin::reset_form)),
        route(Method::GET, accessibility::PATH, Public, get(accessibility::page)),
        route(Method::POST, "/mot-de-passe/{jeton}", Public, post(signin::reset)),
        route(Method::GET, "/", Signed(&authz::SELF_READ), get(dashboard::home)),
        route(Method::GET, "/tableau-de-bord/{org}", Signed(&DASHBOARD), get(dashboard::page)),
        route(Method::GET, "/compte", Signed(&authz::SELF_READ), get(account::page)),
        route(Method::GET, "/compte/identite", Signed(&authz::SELF_READ), get(oidc::confirm_identity)),
        route(Method::POST, "/compte/mot-de-passe", Signed(&authz::SELF_READ), post(account::change_password)),
        route(Method::POST, "/compte/sessions/revoquer", Signed(&authz::SELF_READ), post(account::revoke_others)),
        route(
            Method::POST,
            "/compte/courriels",
            Signed(&authz::SELF_PREFERENCES),
            post(account::save_mail_preferences),
        ),
        route(Method::POST, "/compte/jetons", Signed(&authz::TOKENS_MANAGE), post(account::create_token)),
        route(
            Method::POST,
            "/compte/jetons/{jeton_api}/revoquer",
            Signed(&authz::TOKENS_MANAGE),
            post(account::revoke_token),
        ),
        route(
            Method::POST,
            "/utilisateurs/{id}/sessions/revoquer",
            Signed(&authz::USERS_WRITE),
            post(account::revoke_user),
        ),
    ];
    pages.extend(organisations::routes());
    pages.extend(users::routes());
    pages.extend(conventions::routes());
    pages.extend(tenants::routes());
    pages.extend(tickets::routes());
    pages.extend(rgpd::routes());
    pages.extend(reports::routes());
    pages.extend(notifications::routes());
    pages.extend(groupements::routes());
    pages
}

/// The console's router over the application state `state`: the `pages` (every console page
/// is `routes()`), each signed one behind the guard of its action.
pub fn router<S>(state: &S, pages: Vec<ConsoleRoute<S>>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
{
    let console = ConsoleState::from_ref(state);
    let mut router = Router::new();
    for page in pages {
        let mut handler = page.handler;
        if let Access::Signed(action) = page.access {
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                console.clone(),
                move |state: axum::extract::State<ConsoleState>, req, next| auth::guard(state, action, req, next),
            ));
        }
        router = router.route(page.path, handler);
    }
    router.layer(axum::middleware::from_fn_with_state(console, security::headers))
}
