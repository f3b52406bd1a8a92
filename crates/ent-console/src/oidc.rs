//! Signing in through the OpenID Connect provider of `identity.oidc` (ProConnect, an
//! académie's own): `GET /connexion/oidc` keeps the pending login server-side in a
//! pre-session (table `console_oidc_pending`, cookie [`PENDING_COOKIE`]) and sends the
//! browser to the provider; its callback `GET /connexion/oidc/retour` completes the
//! sign-in with `identity::oidc` (which audits every outcome it sees), opens the
//! session (id rotated) and keeps the ID token for the sign-out at the provider.
//!
//! A signed-in person confirms their identity at the provider with `GET /compte/identite`
//! (`prompt=login`, `max_age=0`): the same callback, told apart by its pending login,
//! checks the new ID token ([`Oidc::confirm`]: fresh `auth_time`, the session's person) and
//! keeps it in place of the session's; it opens no session. The `auth_time` of the ID token
//! a session keeps is how recent its person's authentication is ([`authenticated_at`]): an
//! API token wants it recent from a person without a password (`account`).

use crate::auth::{self, Signed};
use crate::page::{self, Notice, PageError};
use crate::signin::{anonymous_page, safe_next, too_many};
use crate::ConsoleState;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use ent_kernel::config::Config;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::{timestamp, Store};
use ent_kernel::throttle::{address_key, Attempt};
use ent_platform::identity::hash_token;
use ent_platform::identity::oidc::{self as provider, Confirming, Oidc, PendingLogin};
use ent_platform::identity::sessions::{self, Event, Session, Timeouts};
use serde::Deserialize;

/// The pre-session cookie: the opaque id of a pending login, its SHA-256 stored.
pub const PENDING_COOKIE: &str = "entcp_oidc";

/// The configured provider, if any (built once at start from `identity.oidc`).
pub struct ConsoleOidc(Option<Oidc>);

impl ConsoleOidc {
    /// The provider of `identity.oidc` (its configuration checked), or none.
    pub fn new(config: &Config) -> Result<ConsoleOidc, Problem> {
        Ok(ConsoleOidc(config.identity.oidc.as_ref().map(Oidc::new).transpose()?))
    }

    pub fn get(&self) -> Option<&Oidc> {
        self.0.as_ref()
    }

    /// The label of the sign-in button (« ProConnect »…), when configured.
    pub fn label(&self) -> Option<&str> {
        self.get().map(Oidc::label)
    }
}

/// The origin (`https://host:port`) of the provider's issuer: the sign-out form is
/// redirected there, so the CSP's `form-action` must allow it.
pub fn provider_origin(config: &Config) -> Option<String> {
    let issuer = &config.identity.oidc.as_ref()?.issuer;
    let (scheme, rest) = issuer.split_once("://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

fn not_configured() -> Response {
    page::ErrorPage::response(StatusCode::NOT_FOUND, "la connexion par un fournisseur d'identité n'est pas configurée")
}

#[derive(Deserialize, Default)]
pub struct BeginQuery {
    suivant: Option<String>,
}

/// `GET /connexion/oidc?suivant=`: the pre-session, then 303 to the provider. Each one
/// counts against the client address's throttle of sign-in starts (it writes a row), taken
/// back when its callback signs in: a count of its own ([`start_key`]), so that starts nobody
/// finished (abandoned clicks, or a page of another site that links here) never lock the
/// password sign-in of everyone behind that address.
pub async fn begin(
    State(state): State<ConsoleState>,
    Query(query): Query<BeginQuery>,
    parts: Parts,
) -> Result<Response, PageError> {
    let Some(oidc) = state.oidc.get() else { return Ok(not_configured()) };
    let now = state.clock.now();
    let key = start_key(&auth::client_of(&state, &parts));
    if let Attempt::Refused { retry_after } = state.sign_in_throttle.0.attempt(&[key], now).await? {
        return Ok(too_many(retry_after));
    }
    let (url, pending) = oidc.begin(safe_next(query.suivant.as_deref()), now).await?;
    let secret = sessions::random_secret();
    keep_pending(&state.store, &secret, &pending, now).await?;
    let mut response = page::redirect(&url);
    response.headers_mut().append(header::SET_COOKIE, auth::set_cookie(&state, PENDING_COOKIE, Some(&secret)));
    Ok(response)
}

/// Where a confirmation leads back to: the account page, which says it.
pub const CONFIRMED_PATH: &str = "/compte?apres=identite";

/// `GET /compte/identite`: a confirmation of the signed-in person's identity at the provider
/// (a pre-session as [`begin`]'s, counted against the same throttle), then 303 to the
/// provider, asked to authenticate the person again.
pub async fn confirm_identity(
    State(state): State<ConsoleState>,
    signed: Signed,
    parts: Parts,
) -> Result<Response, PageError> {
    let Some(oidc) = state.oidc.get() else { return Ok(not_configured()) };
    let session = &signed.0;
    let now = state.clock.now();
    let key = start_key(&auth::client_of(&state, &parts));
    if let Attempt::Refused { retry_after } = state.sign_in_throttle.0.attempt(&[key], now).await? {
        return Ok(too_many(retry_after));
    }
    let confirming = Confirming { user_id: session.user_id.clone(), session: session.id_hash.clone() };
    let (url, pending) = oidc.begin_confirmation(CONFIRMED_PATH, confirming, now).await?;
    let secret = sessions::random_secret();
    keep_pending(&state.store, &secret, &pending, now).await?;
    let mut response = page::redirect(&url);
    response.headers_mut().append(header::SET_COOKIE, auth::set_cookie(&state, PENDING_COOKIE, Some(&secret)));
    Ok(response)
}

/// When the provider last authenticated the person of the session `session_hash`: the
/// `auth_time` of the ID token it keeps (verified when kept, at sign-in or confirmation);
/// `None` for a session opened otherwise, or a token without `auth_time`.
pub async fn authenticated_at(store: &Store, session_hash: &str) -> Result<Option<DateTime<Utc>>, Problem> {
    let id_token: Option<String> =
        sqlx::query_scalar("SELECT id_token FROM console_oidc_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .fetch_optional(store.pool())
            .await?;
    Ok(id_token.as_deref().and_then(provider::auth_time_of))
}

/// The throttle key of the sign-in starts from `client`'s address (apart from its password
/// sign-in attempts, [`address_key`]).
fn start_key(client: &str) -> String {
    format!("oidc-start:{}", address_key(client))
}

/// Stores a pending login under the hash of its cookie's id; forgets the expired ones.
async fn keep_pending(store: &Store, secret: &str, pending: &PendingLogin, now: DateTime<Utc>) -> Result<(), Problem> {
    let json = serde_json::to_string(pending)
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("pending login: {e}")))?;
    let mut tx = store.begin_write().await?;
    sessions::purge_pending_logins(&mut tx, now).await?;
    sqlx::query("INSERT INTO console_oidc_pending (id_hash, pending, created_at) VALUES ($1, $2, $3)")
        .bind(hash_token(secret))
        .bind(json)
        .bind(timestamp(now))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The pending login of a pre-session cookie, deleted (single use whatever follows).
async fn take_pending(store: &Store, secret: Option<&str>) -> Result<Option<PendingLogin>, Problem> {
    let Some(secret) = secret else { return Ok(None) };
    let id_hash = hash_token(secret);
    let mut tx = store.begin_write().await?;
    let json: Option<String> = sqlx::query_scalar("SELECT pending FROM console_oidc_pending WHERE id_hash = $1")
        .bind(&id_hash)
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM console_oidc_pending WHERE id_hash = $1").bind(&id_hash).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// The provider's refusal (`access_denied`…), instead of a code.
    error: Option<String>,
}

/// Why the console itself refused a callback (before the provider's answer was checked).
fn refusal(pending: Option<&PendingLogin>, query: &CallbackQuery) -> Option<(&'static str, String)> {
    if pending.is_none() {
        return Some(("no_pending_login", "connexion expirée ou déjà terminée : recommencez".into()));
    }
    if let Some(error) = &query.error {
        let text = format!("le fournisseur d'identité n'a pas terminé la connexion ({error}) : recommencez");
        return Some(("provider_error", text));
    }
    if query.code.is_none() || query.state.is_none() {
        return Some(("no_code", "le retour du fournisseur d'identité est incomplet : recommencez".into()));
    }
    None
}

/// `GET /connexion/oidc/retour?code&state`: the session, then the page asked; the
/// sign-in form with the reason otherwise.
pub async fn callback(
    State(state): State<ConsoleState>,
    Query(query): Query<CallbackQuery>,
    parts: Parts,
) -> Result<Response, PageError> {
    let Some(oidc) = state.oidc.get() else { return Ok(not_configured()) };
    let now = state.clock.now();
    let pending = take_pending(&state.store, auth::cookie(&parts.headers, PENDING_COOKIE)).await?;
    let begun = pending.as_ref().and_then(|p| DateTime::parse_from_rfc3339(&p.started_at).ok());
    let client = auth::client_of(&state, &parts);
    if let Some(pending) = pending.clone().filter(|p| p.confirming.is_some()) {
        let mut response = confirmation(&state, oidc, query, &parts, pending, now).await?;
        response.headers_mut().append(header::SET_COOKIE, auth::set_cookie(&state, PENDING_COOKIE, None));
        return Ok(response);
    }
    let outcome = match (refusal(pending.as_ref(), &query), pending) {
        (Some((reason, text)), _) => {
            audit_refusal(&state.store, &client, reason, now).await;
            Err((StatusCode::BAD_REQUEST, text))
        }
        (None, Some(pending)) => {
            let (code, returned) = (query.code.unwrap_or_default(), query.state.unwrap_or_default());
            oidc.finish(&state.store, pending, &code, &returned, now)
                .await
                .map_err(|problem| (problem.kind.status(), problem.detail))
        }
        (None, None) => Err((StatusCode::BAD_REQUEST, "connexion expirée : recommencez".into())),
    };
    let mut response = match outcome {
        Ok(signed_in) => {
            if let Some(begun) = begun {
                state.sign_in_throttle.0.take_back(&start_key(&client), begun.with_timezone(&Utc)).await?;
            }
            let replacing = auth::cookie(&parts.headers, auth::session_cookie(&state));
            let secret = sessions::open(&state.store, &signed_in.user.id, &client, "oidc", replacing, now).await?;
            keep_id_token(&state.store, &secret, &signed_in.id_token).await?;
            let mut response = page::redirect(safe_next(Some(&signed_in.return_to)));
            response.headers_mut().append(header::SET_COOKIE, auth::set_session_cookie(&state, Some(&secret)));
            response
        }
        Err((status, text)) => {
            let values = serde_json::json!({ "suivant": "/", "email": "" });
            anonymous_page(&state, &parts, status, "sign_in.html", Some(Notice::error(text)), values)
        }
    };
    response.headers_mut().append(header::SET_COOKIE, auth::set_cookie(&state, PENDING_COOKIE, None));
    Ok(response)
}

/// The callback of a confirmation ([`confirm_identity`]): only for the session that asked,
/// still live; the provider's answer checked by [`Oidc::confirm`], the new ID token kept in
/// place of the session's, back to the account page. Refused, the account page says why
/// (the session goes on as it was); without that session, the sign-in page.
async fn confirmation(
    state: &ConsoleState,
    oidc: &Oidc,
    query: CallbackQuery,
    parts: &Parts,
    pending: PendingLogin,
    now: DateTime<Utc>,
) -> Result<Response, PageError> {
    let client = auth::client_of(state, parts);
    let asker =
        pending.confirming.clone().unwrap_or_else(|| Confirming { user_id: String::new(), session: String::new() });
    let session = match auth::cookie(&parts.headers, auth::session_cookie(state)) {
        Some(secret) => sessions::find(&state.store, secret, Timeouts::of(&state.config.console), now).await?,
        None => None,
    };
    let Some(session) = session.filter(|s| s.id_hash == asker.session && s.user_id == asker.user_id) else {
        audit_refusal(&state.store, &client, "confirmation_without_its_session", now).await;
        let text = "confirmation impossible : la session qui l'a demandée est terminée ; connectez-vous à nouveau";
        let values = serde_json::json!({ "suivant": "/compte", "email": "" });
        let notice = Some(Notice::error(text));
        return Ok(anonymous_page(state, parts, StatusCode::BAD_REQUEST, "sign_in.html", notice, values));
    };
    let outcome = match refusal(Some(&pending), &query) {
        Some((reason, _)) => {
            audit_refusal(&state.store, &client, reason, now).await;
            let text = match &query.error {
                Some(error) => {
                    format!("le fournisseur d'identité n'a pas confirmé votre identité ({error}) : recommencez")
                }
                None => "le retour du fournisseur d'identité est incomplet : recommencez".to_string(),
            };
            Err((StatusCode::BAD_REQUEST, text))
        }
        None => {
            let (code, returned) = (query.code.unwrap_or_default(), query.state.unwrap_or_default());
            let begun = DateTime::parse_from_rfc3339(&pending.started_at).ok();
            let confirmed = oidc.confirm(&state.store, pending, &code, &returned, &session.actor, now).await;
            if let (Ok(_), Some(begun)) = (&confirmed, begun) {
                state.sign_in_throttle.0.take_back(&start_key(&client), begun.with_timezone(&Utc)).await?;
            }
            confirmed.map_err(|problem| (problem.kind.status(), problem.detail))
        }
    };
    match outcome {
        Ok(confirmed) => {
            replace_id_token(&state.store, &session.id_hash, &confirmed.id_token).await?;
            Ok(page::redirect(safe_next(Some(&confirmed.return_to))))
        }
        Err((status, text)) => {
            Ok(crate::account::after_refused_confirmation(state, &Signed(session), status, text).await?)
        }
    }
}

/// Keeps `id_token` as the ID token of the session `session_hash`, in place of any.
async fn replace_id_token(store: &Store, session_hash: &str, id_token: &str) -> Result<(), Problem> {
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM console_oidc_sessions WHERE session_hash = $1")
        .bind(session_hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO console_oidc_sessions (session_hash, id_token) VALUES ($1, $2)")
        .bind(session_hash)
        .bind(id_token)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A callback refused before `identity::oidc` saw it (which audits the others).
async fn audit_refusal(store: &Store, client: &str, reason: &str, now: DateTime<Utc>) {
    let written = async {
        let actor = format!("client:{client}");
        let summary = serde_json::json!({ "method": "oidc", "reason": reason });
        let event = Event { actor: &actor, action: "console.sign_in_failed", user_id: "inconnu", summary };
        let mut tx = store.begin_write().await?;
        sessions::record(&mut tx, store, event, now).await?;
        tx.commit().await?;
        Ok::<_, Problem>(())
    };
    if let Err(problem) = written.await {
        tracing::error!(error = %problem, "refused OpenID Connect callback not audited");
    }
}

async fn keep_id_token(store: &Store, session_secret: &str, id_token: &str) -> Result<(), Problem> {
    sqlx::query("INSERT INTO console_oidc_sessions (session_hash, id_token) VALUES ($1, $2)")
        .bind(hash_token(session_secret))
        .bind(id_token)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// At sign-out: the provider's end-session address for a session opened through it
/// (its ID token forgotten), none for the others or a provider without one.
pub async fn sign_out_location(state: &ConsoleState, session: &Session) -> Result<Option<String>, Problem> {
    let id_token: Option<String> =
        sqlx::query_scalar("SELECT id_token FROM console_oidc_sessions WHERE session_hash = $1")
            .bind(&session.id_hash)
            .fetch_optional(state.store.pool())
            .await?;
    let (Some(id_token), Some(oidc)) = (id_token, state.oidc.get()) else { return Ok(None) };
    sqlx::query("DELETE FROM console_oidc_sessions WHERE session_hash = $1")
        .bind(&session.id_hash)
        .execute(state.store.pool())
        .await?;
    oidc.logout_url(&id_token, &sessions::random_secret()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::yaml;

    #[test]
    fn the_provider_origin_is_the_issuers_scheme_and_host() {
        let mut config = Config::default();
        assert_eq!(provider_origin(&config), None);
        let yaml = "issuer: https://auth.exemple.fr:8443/api/v2\nclient_id: x\nclient_secret_env: PATH\nredirect_url: https://c.fr/cb\n";
        config.identity.oidc = Some(yaml::from_str(yaml).unwrap());
        assert_eq!(provider_origin(&config).as_deref(), Some("https://auth.exemple.fr:8443"));
    }

    #[test]
    fn a_callback_without_pre_session_code_or_with_an_error_is_refused_by_the_console() {
        let query = |code: Option<&str>, error: Option<&str>| CallbackQuery {
            code: code.map(str::to_string),
            state: Some("s".into()),
            error: error.map(str::to_string),
        };
        let pending = PendingLogin {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: None,
            return_to: "/".into(),
            started_at: "2026-09-01T08:00:00Z".into(),
            confirming: None,
        };
        assert_eq!(refusal(None, &query(Some("c"), None)).map(|r| r.0), Some("no_pending_login"));
        assert_eq!(refusal(Some(&pending), &query(None, Some("access_denied"))).map(|r| r.0), Some("provider_error"));
        assert_eq!(refusal(Some(&pending), &query(None, None)).map(|r| r.0), Some("no_code"));
        assert!(refusal(Some(&pending), &query(Some("c"), None)).is_none());
    }
}
