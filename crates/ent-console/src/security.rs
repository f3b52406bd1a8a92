//! What every console response carries: the security headers (a CSP without inline
//! scripts, no framing, referrer policy, nosniff, HSTS over https), and error pages rendered in French
//! with the request id (a handler answers a [`page::ErrorPage`] marker, rendered here).

use crate::auth::{self, Signed};
use crate::page::{self, ErrorPage};
use crate::ConsoleState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// Scripts, styles, fonts and images come from the console itself; no inline script,
/// no framing, forms post to the console only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// [`CONTENT_SECURITY_POLICY`], the sign-out form also allowed to go on to the
/// OpenID Connect provider (its end-session endpoint) when one is configured.
fn content_security_policy(state: &ConsoleState) -> HeaderValue {
    let policy = match crate::oidc::provider_origin(&state.config) {
        Some(origin) => CONTENT_SECURITY_POLICY.replace("form-action 'self'", &format!("form-action 'self' {origin}")),
        None => CONTENT_SECURITY_POLICY.to_string(),
    };
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY))
}

pub async fn headers(State(state): State<ConsoleState>, req: Request, next: Next) -> Response {
    let request_id = request_id_of(req.headers());
    let mut response = next.run(req).await;
    if let Some(error) = response.extensions_mut().remove::<ErrorPage>() {
        let session = response.extensions_mut().remove::<Signed>().map(|s| s.0);
        let kept = response.headers().clone();
        response = page::render_error(&state, session.as_ref(), response.status(), &error, &request_id);
        for (name, value) in kept.iter().filter(|(name, _)| *name != header::CONTENT_LENGTH) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    secured(&state, response)
}

fn request_id_of(headers: &HeaderMap) -> String {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string()
}

/// The console's error page of `status` saying `detail`, for a browser's request the
/// console's routes do not answer (an unknown address, a form's address opened): in the
/// shell of the person signed in, with the headers of every console page.
pub async fn browser_error(state: &ConsoleState, headers: &HeaderMap, status: StatusCode, detail: &str) -> Response {
    let session = auth::session_of(state, headers).await;
    let error = ErrorPage { detail: detail.to_string() };
    let response = page::render_error(state, session.as_ref(), status, &error, &request_id_of(headers));
    secured(state, response)
}

/// Whether a request comes from a browser reading pages, which gets the console's HTML
/// error page: it accepts HTML, and its address is not the API's (which answers
/// problem+json to everyone).
pub fn wants_page(path: &str, headers: &HeaderMap) -> bool {
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| accept.split(',').any(|media| media.trim().starts_with("text/html")));
    html && !path.starts_with("/api/")
}

/// `response` with the headers every console answer carries.
fn secured(state: &ConsoleState, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    // A page's own policy (a downloaded file's `sandbox`) is stricter: it stays.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, content_security_policy(state));
    }
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Served over TLS: the browser keeps to https for a year, even before the ingress's redirect.
    if state.config.console.is_https() {
        set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}
