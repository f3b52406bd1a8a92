//! Who is signed in: the session cookie, the guard of every signed-in page (session,
//! role, CSRF token of every POST), and the double-submit token of the forms shown
//! before sign-in.

use crate::forms::Fields;
use crate::page::{self, ErrorPage};
use crate::ConsoleState;
use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ent_kernel::http::client_address_of;
use ent_kernel::kernel::roles::Action;
use ent_kernel::validate;
use ent_platform::identity::sessions::{self, Session, Timeouts};
use ent_platform::identity::{authz, Actor, Caller};

/// The session cookie: an opaque random id, its SHA-256 stored.
pub const SESSION_COOKIE: &str = "entcp_session";
/// The double-submit cookie of the forms shown before sign-in (see [`form_cookie`]).
pub const FORM_COOKIE: &str = "entcp_formulaire";

/// The name of [`FORM_COOKIE`] as the console sets it ([`host_only`]), so that a sibling
/// subdomain cannot plant a token of its choosing for the sign-in form.
pub fn form_cookie(state: &ConsoleState) -> &'static str {
    host_only(state, FORM_COOKIE, "__Host-entcp_formulaire")
}

/// The name of [`SESSION_COOKIE`] as the console sets and reads it ([`host_only`]), so that a
/// sibling subdomain cannot plant a session of its choosing (signing the person in to the
/// planter's account).
pub fn session_cookie(state: &ConsoleState) -> &'static str {
    host_only(state, SESSION_COOKIE, "__Host-entcp_session")
}

/// Over https, `prefixed` (`__Host-` and `name`), which browsers accept only from this very host
/// (`Secure`, `Path=/`, no `Domain`: [`set_cookie`]); over http (local development), `name`.
fn host_only(state: &ConsoleState, name: &'static str, prefixed: &'static str) -> &'static str {
    if state.config.console.is_https() {
        prefixed
    } else {
        name
    }
}
/// The form field every POST carries its CSRF token in.
pub const CSRF_FIELD: &str = "_csrf";
/// Largest form a console page accepts.
const FORM_LIMIT: usize = 64 * 1024;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` over https;
/// `None` clears the cookie.
pub fn set_cookie(state: &ConsoleState, name: &str, value: Option<&str>) -> HeaderValue {
    let secure = if state.config.console.is_https() { "; Secure" } else { "" };
    let text = match value {
        Some(value) => format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).expect("cookie values are hex")
}

/// The `Set-Cookie` of the session ([`session_cookie`], [`set_cookie`]); `None` clears it.
pub fn set_session_cookie(state: &ConsoleState, secret: Option<&str>) -> HeaderValue {
    set_cookie(state, session_cookie(state), secret)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in person of a page behind [`guard`].
#[derive(Clone)]
pub struct Signed(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<Signed>()
            .cloned()
            .ok_or_else(|| ErrorPage::response(StatusCode::INTERNAL_SERVER_ERROR, "page montée sans authentification"))
    }
}

/// The signed-in person calling as the API route of `action` would.
pub fn caller(signed: &Signed, action: &'static Action) -> Caller {
    Caller { actor: signed.0.actor.clone(), action }
}

/// Where a page asked without a session sends the browser: the sign-in form, then back
/// to the page asked — for a form, the page it was on (its same-origin `Referer`), the
/// form itself being lost. `expired` (a session cookie came, no live session): the sign-in
/// page says so (`apres=expiration`, or `expiration-formulaire` for a form).
fn to_sign_in(req: &Request, expired: bool) -> Response {
    let post = req.method() != Method::GET;
    let back = match post {
        true => referer_path(req.headers()),
        false => req.uri().path_and_query().map(|pq| pq.as_str().to_string()),
    };
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(back) = back.as_deref().filter(|b| *b != "/") {
        query.push(("suivant", back));
    }
    if expired {
        query.push(("apres", if post { "expiration-formulaire" } else { "expiration" }));
    }
    match query.is_empty() {
        true => page::redirect("/connexion"),
        false => page::redirect(&format!("/connexion?{}", serde_urlencoded::to_string(query).unwrap_or_default())),
    }
}

/// The path and query of the request's `Referer` when it is a page of this site (the
/// same host as the request's), else `None`.
fn referer_path(headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let rest = referer.strip_prefix("https://").or_else(|| referer.strip_prefix("http://"))?;
    let path = rest.strip_prefix(host)?;
    let path = path.split('#').next().unwrap_or_default();
    path.starts_with('/').then(|| crate::signin::safe_next(Some(path)).to_string())
}

/// A page after sign-in only: the live session of the cookie (else the sign-in form,
/// then back to the page asked), a role allowing `action` (else 403), and on a POST the
/// session's CSRF token in the form (else 403). The session is put in the request.
/// Whether `actor` may open a page of `action`: one of their roles allows it, or it is one of
/// their own pages (`SELF_READ`: home, account, sign-out), open to a person with no role yet,
/// such as an invitee, who reads on the home page whom to ask for one.
fn allowed(actor: &Actor, action: &Action) -> bool {
    authz::role_allows(actor, action) || (action.name == authz::SELF_READ.name && actor.bindings.is_empty())
}

pub async fn guard(State(state): State<ConsoleState>, action: &'static Action, req: Request, next: Next) -> Response {
    let now = state.clock.now();
    let timeouts = Timeouts::of(&state.config.console);
    let session = match cookie(req.headers(), session_cookie(&state)) {
        Some(secret) => match sessions::find(&state.store, secret, timeouts, now).await {
            Ok(found) => found,
            Err(problem) => return page::PageError(problem).into_response(),
        },
        None => None,
    };
    let Some(session) = session else {
        let expired = cookie(req.headers(), session_cookie(&state)).is_some();
        let mut response = to_sign_in(&req, expired);
        if expired {
            response.headers_mut().append(header::SET_COOKIE, set_session_cookie(&state, None));
        }
        return response;
    };
    if !allowed(&session.actor, action) {
        authz::log_decision(&session.actor, action, "-", false, "no role allows the action");
        let refused = ErrorPage::response(StatusCode::FORBIDDEN, "vos rôles ne donnent pas accès à cette page");
        return with_session_on_error(refused, session);
    }
    let req = if req.method() == Method::POST {
        match with_checked_csrf(req, &session.csrf_token).await {
            Ok(req) => req,
            Err(refused) => return refused,
        }
    } else {
        req
    };
    let mut req = req;
    req.extensions_mut().insert(Signed(session.clone()));
    with_session_on_error(next.run(req).await, session)
}

/// An error page answered to a signed-in person keeps their session, so that it is shown
/// in their shell (see [`crate::security::headers`]).
fn with_session_on_error(mut response: Response, session: Session) -> Response {
    if response.extensions().get::<ErrorPage>().is_some() {
        response.extensions_mut().insert(Signed(session));
    }
    response
}

/// The live session of the request's cookie, if any, for a page outside the guard (an
/// error page); a store that fails to answer is no session.
pub async fn session_of(state: &ConsoleState, headers: &HeaderMap) -> Option<Session> {
    let secret = cookie(headers, session_cookie(state))?;
    let timeouts = Timeouts::of(&state.config.console);
    sessions::find(&state.store, secret, timeouts, state.clock.now()).await.ok().flatten()
}

/// The form's `_csrf` field, if the body is a form that has one.
pub fn form_token(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value)
}

/// The request again, once its form's CSRF token is `expected` (403 otherwise).
async fn with_checked_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let content_type = crate::multipart::content_type(&parts.headers);
    let multipart = crate::multipart::boundary(content_type).is_some();
    let limit = if multipart { crate::multipart::UPLOAD_LIMIT } else { FORM_LIMIT };
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ErrorPage::response(StatusCode::PAYLOAD_TOO_LARGE, "formulaire trop volumineux"))?;
    let fields = match multipart {
        true => crate::multipart::parse(content_type, &bytes).map(|p| p.fields),
        false => serde_urlencoded::from_bytes::<Fields>(&bytes).ok(),
    };
    let token = match (multipart, &fields) {
        (true, Some(fields)) => fields.opt(CSRF_FIELD),
        (false, Some(_)) => form_token(&bytes),
        (_, None) => None,
    };
    match token {
        Some(token) if same_secret(&token, expected) => {}
        _ => {
            tracing::warn!(path = %parts.uri.path(), "console form refused: CSRF token missing or wrong");
            return Err(csrf_refused());
        }
    }
    if let Some(field) = fields.as_ref().and_then(field_with_controls) {
        tracing::info!(path = %parts.uri.path(), field = %field, "console form refused: control character");
        return Err(controls_refused(&field));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The first field of a posted form (its name, printable) whose name or value holds a
/// control character other than a line break or a tab: what the API refuses in any JSON
/// string (`ApiJson`), refused here for every console form before its handler runs, so a
/// capability never stores one (nor PostgreSQL fails on a NUL). Files are not fields.
fn field_with_controls(fields: &Fields) -> Option<String> {
    fields
        .0
        .iter()
        .find(|(name, value)| validate::multiline(name).is_err() || validate::multiline(value).is_err())
        .map(|(name, _)| validate::printable(name))
}

/// The answer to a form with a control character in `field`: nothing is written.
fn controls_refused(field: &str) -> Response {
    ErrorPage::response(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!(
            "le champ « {field} » contient un caractère de contrôle interdit (seuls les retours à la ligne et les \
             tabulations sont admis) : rien n'est enregistré ; revenez au formulaire, corrigez la saisie puis \
             envoyez-le de nouveau"
        ),
    )
}

/// The answer to a form whose CSRF token is missing or wrong.
pub fn csrf_refused() -> Response {
    ErrorPage::response(
        StatusCode::FORBIDDEN,
        "le jeton de sécurité du formulaire est absent ou périmé : rechargez la page puis recommencez",
    )
}

/// The double-submit token of a form shown before sign-in: the cookie's, or a new one
/// (then set on the response by the caller).
pub fn anonymous_form_token(state: &ConsoleState, headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, form_cookie(state)).filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(existing) => (existing.to_string(), false),
        None => (sessions::random_secret(), true),
    }
}

/// Whether a form posted before sign-in carries the token of its cookie.
pub fn anonymous_form_ok(state: &ConsoleState, headers: &HeaderMap, posted: Option<&str>) -> bool {
    match (cookie(headers, form_cookie(state)), posted) {
        (Some(cookie), Some(posted)) => !cookie.is_empty() && same_secret(cookie, posted),
        _ => false,
    }
}

/// The client address as the sign-in throttle counts it.
pub fn client_of(state: &ConsoleState, parts: &Parts) -> String {
    client_address_of(&parts.headers, &parts.extensions, state.config.server.trust_forwarded_for)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_and_secrets_compared_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; entcp_session=abc; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab"));
        assert_eq!(form_token(b"x=1&_csrf=t0k&y=2").as_deref(), Some("t0k"));
        assert_eq!(form_token(b"x=1"), None);
    }

    #[test]
    fn a_field_with_a_control_character_is_named_and_line_breaks_pass() {
        let form = |pairs: &[(&str, &str)]| Fields(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        assert_eq!(field_with_controls(&form(&[("a", "un\r\n\tdeux"), ("b", "é")])), None);
        assert_eq!(field_with_controls(&form(&[("a", "ok"), ("faits", "x\u{0}y")])).as_deref(), Some("faits"));
        assert_eq!(field_with_controls(&form(&[("a\u{1b}", "ok")])).as_deref(), Some("a\\u{1b}"));
    }
}
