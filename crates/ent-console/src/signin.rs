//! Signing in and out with a local password, and choosing a password through a
//! one-time link (« mot de passe oublié », first set-up). Attempts are throttled per
//! account and per address, counted in the database (every replica sees them, a restart
//! forgets none) *before* the password is checked: past the limit, or when the count
//! cannot be written, the password is not checked at all. A successful sign-in takes its
//! attempt back from the address and clears its account's count, and so does a password
//! chosen through a link (the owner of an account kept locked out gets back in by « mot de
//! passe oublié »); sign-ins, failures and sign-outs are audited. « Mot de passe oublié »
//! counts per address (told) and per account (silently: no link sent past the limit, the
//! page the same, so that it reveals nothing about the account).

use crate::auth::{self, Signed};
use crate::page::{self, ErrorPage, Notice, PageError, Shell};
use crate::ConsoleState;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use chrono::{DateTime, Duration, Utc};
use ent_kernel::config::ConsoleConfig;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::Store;
use ent_kernel::throttle::{address_key, Attempt};
use ent_ops::notify;
use ent_platform::identity::get_user;
use ent_platform::identity::password::{self, LinkPurpose};
use ent_platform::identity::sessions::{self, Event};
use serde::Deserialize;

/// A local path to go back to after sign-in (never another site): a plain path of this
/// site, without backslash, control character or blank (a browser strips a tab or a
/// newline, so `/\t/evil.example` would end at `//evil.example`); anything else, `/`.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if is_plain_path(path) => path,
        _ => "/",
    }
}

/// Whether `path` is an absolute path of this site and nothing a browser could read as another one.
fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    suivant: Option<String>,
    /// `deconnexion`, `mot-de-passe`, `expiration`, `expiration-formulaire`: what the page
    /// says above the form.
    apres: Option<String>,
}

/// A page shown before sign-in, with its double-submit cookie set when new (and the
/// label of the provider's sign-in button when one is configured).
pub(crate) fn anonymous_page(
    state: &ConsoleState,
    parts: &Parts,
    status: StatusCode,
    name: &str,
    notice: Option<Notice>,
    mut values: serde_json::Value,
) -> Response {
    if let (Some(label), Some(map)) = (state.oidc.label(), values.as_object_mut()) {
        let next = map.get("suivant").and_then(|v| v.as_str()).unwrap_or("/");
        let href = format!("/connexion/oidc?{}", serde_urlencoded::to_string([("suivant", next)]).unwrap_or_default());
        map.insert("oidc".into(), serde_json::json!({ "label": label, "href": href }));
    }
    let (token, fresh) = auth::anonymous_form_token(state, &parts.headers);
    let shell = Shell::new(state, None, parts.uri.path()).form_token(&token).notice(notice);
    let mut response = page::render_status(status, name, shell, values);
    if fresh {
        response
            .headers_mut()
            .append(header::SET_COOKIE, auth::set_cookie(state, auth::form_cookie(state), Some(&token)));
    }
    response
}

pub async fn form(State(state): State<ConsoleState>, Query(query): Query<SignInQuery>, parts: Parts) -> Response {
    let notice = match query.apres.as_deref().unwrap_or_default() {
        "expiration" => {
            Some(Notice::info("Votre session a expiré : reconnectez-vous pour revenir à la page demandée."))
        }
        "expiration-formulaire" => Some(Notice::info(
            "Votre session a expiré : le formulaire envoyé n'a pas été enregistré. Reconnectez-vous pour revenir \
             à sa page, puis saisissez-le de nouveau.",
        )),
        after => Notice::after(
            after,
            &[
                ("deconnexion", "Vous êtes déconnecté."),
                ("mot-de-passe", "Votre mot de passe est enregistré : connectez-vous."),
            ],
        ),
    };
    let next = safe_next(query.suivant.as_deref());
    anonymous_page(
        &state,
        &parts,
        StatusCode::OK,
        "sign_in.html",
        notice,
        serde_json::json!({ "suivant": next, "email": "" }),
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    suivant: Option<String>,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// Throttle key of an account: the address as typed, trimmed and without case, whether
/// or not an account has it (an unknown address is counted like a known one).
fn account_key(email: &str) -> String {
    format!("login:{}", email.trim().to_lowercase())
}

/// Throttle key of the reset links asked for an account, typed as [`account_key`]'s; apart
/// from it, so that failed sign-ins never stop the owner's reset mail.
fn reset_key(email: &str) -> String {
    format!("reset:{}", email.trim().to_lowercase())
}

/// What a client past the sign-in throttle's limit is told, blocked `seconds` more.
pub(crate) fn throttled_text(seconds: u64) -> String {
    format!("Trop de tentatives : réessayez dans {} minute(s).", seconds.div_ceil(60))
}

/// The answer to a client past the sign-in throttle's limit: French page, `Retry-After`.
pub(crate) fn too_many(seconds: u64) -> Response {
    let mut response = ErrorPage::response(StatusCode::TOO_MANY_REQUESTS, throttled_text(seconds));
    response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    response
}

/// What a password checked under the sign-in throttle gave.
pub(crate) enum Checked {
    /// The address or the account is at its limit: not checked; blocked so many seconds.
    Throttled(u64),
    /// Wrong (or no such active account); `tripped` when this attempt completed a count.
    Wrong { tripped: bool },
    /// Right: the account's id.
    Right(String),
}

/// Checks `password` for `email`, counted first against the client's address and the account
/// (see the module's doc): right, the attempt is taken back from the address and the
/// account's count cleared.
pub(crate) async fn throttled_check(
    state: &ConsoleState,
    client: &str,
    email: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Checked, Problem> {
    let throttle = &state.sign_in_throttle.0;
    let keys = [address_key(client), account_key(email)];
    // Counted before the (slow) check: attempts fired at once never pass the limit, and
    // one that cannot be counted (the store's error page) is never checked.
    let tripped = match throttle.attempt(&keys, now).await? {
        Attempt::Counted { tripped } => tripped,
        Attempt::Refused { retry_after } => return Ok(Checked::Throttled(retry_after)),
    };
    match password::check_password(&state.store, email, password).await? {
        Some(user_id) => {
            throttle.take_back(&keys[0], now).await?;
            throttle.reset(&keys[1]).await?;
            Ok(Checked::Right(user_id))
        }
        None => Ok(Checked::Wrong { tripped }),
    }
}

pub async fn sign_in(
    State(state): State<ConsoleState>,
    parts: Parts,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    if !auth::anonymous_form_ok(&state, &parts.headers, form.csrf.as_deref()) {
        return Ok(auth::csrf_refused());
    }
    let now = state.clock.now();
    let client = auth::client_of(&state, &parts);
    let next = safe_next(form.suivant.as_deref()).to_string();
    let retry = |state: &ConsoleState, status, text: String| {
        let values = serde_json::json!({ "suivant": next, "email": form.email.trim() });
        anonymous_page(state, &parts, status, "sign_in.html", Some(Notice::error(text)), values)
    };
    match throttled_check(&state, &client, &form.email, &form.password, now).await? {
        Checked::Throttled(seconds) => {
            let mut response = retry(&state, StatusCode::TOO_MANY_REQUESTS, throttled_text(seconds));
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            Ok(response)
        }
        Checked::Right(user_id) => {
            let replacing = auth::cookie(&parts.headers, auth::session_cookie(&state));
            let secret = sessions::open(&state.store, &user_id, &client, "password", replacing, now).await?;
            let mut response = page::redirect(&next);
            response.headers_mut().append(header::SET_COOKIE, auth::set_session_cookie(&state, Some(&secret)));
            Ok(response)
        }
        Checked::Wrong { tripped } => {
            audit_failure(&state.store, &client, &form.email, tripped, now).await;
            let text = "Adresse ou mot de passe incorrect.".to_string();
            Ok(retry(&state, StatusCode::UNAUTHORIZED, text))
        }
    }
}

/// Records a failed sign-in (the account's id when it exists, never the password); a
/// failure to write it is logged, the person still gets the form again.
async fn audit_failure(store: &Store, client: &str, email: &str, tripped: bool, now: DateTime<Utc>) {
    let written = async {
        let user = get_user(store, email.trim()).await?;
        let target = user.map_or_else(|| "inconnu".to_string(), |u| u.id);
        let actor = format!("client:{client}");
        let mut tx = store.begin_write().await?;
        let summary = serde_json::json!({ "method": "password", "throttled": tripped });
        let event = Event { actor: &actor, action: "console.sign_in_failed", user_id: &target, summary };
        sessions::record(&mut tx, store, event, now).await?;
        tx.commit().await?;
        Ok::<_, Problem>(())
    };
    if let Err(problem) = written.await {
        tracing::error!(error = %problem, "failed sign-in not audited");
    }
}

pub async fn sign_out(State(state): State<ConsoleState>, Signed(session): Signed) -> Result<Response, PageError> {
    let at_provider = crate::oidc::sign_out_location(&state, &session).await?;
    sessions::close(&state.store, &session, state.clock.now()).await?;
    let mut response = page::redirect(at_provider.as_deref().unwrap_or("/connexion?apres=deconnexion"));
    response.headers_mut().append(header::SET_COOKIE, auth::set_session_cookie(&state, None));
    Ok(response)
}

pub async fn forgot_form(State(state): State<ConsoleState>, parts: Parts) -> Response {
    anonymous_page(&state, &parts, StatusCode::OK, "forgot.html", None, serde_json::json!({ "sent": false }))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// Sends a one-time link to the address if an active account has it; the page says
/// the same either way (whether an account exists is not revealed). Requests count
/// against the address's sign-in throttle (refused past it) and the account's reset count
/// (past it, no link is sent and the page says the same: the last link sent stays live).
pub async fn forgot(
    State(state): State<ConsoleState>,
    parts: Parts,
    Form(form): Form<ForgotForm>,
) -> Result<Response, PageError> {
    if !auth::anonymous_form_ok(&state, &parts.headers, form.csrf.as_deref()) {
        return Ok(auth::csrf_refused());
    }
    let now = state.clock.now();
    let throttle = &state.sign_in_throttle.0;
    let client = address_key(&auth::client_of(&state, &parts));
    if let Attempt::Refused { retry_after } = throttle.attempt(&[client], now).await? {
        return Ok(too_many(retry_after));
    }
    // Counted whether or not an account has the address, and never told.
    if let Attempt::Counted { .. } = throttle.attempt(&[reset_key(&form.email)], now).await? {
        send_reset_link(&state, form.email.trim(), now).await?;
    }
    Ok(anonymous_page(&state, &parts, StatusCode::OK, "forgot.html", None, serde_json::json!({ "sent": true })))
}

/// The address of a one-time link.
pub fn link_address(config: &ConsoleConfig, secret: &str) -> String {
    config.address(&format!("/mot-de-passe/{secret}"))
}

async fn send_reset_link(state: &ConsoleState, email: &str, now: DateTime<Utc>) -> Result<(), Problem> {
    let Some(user) = get_user(&state.store, email).await?.filter(|u| u.active && u.email == email.to_lowercase())
    else {
        return Ok(());
    };
    let minutes = state.config.console.link_minutes;
    let mut tx = state.store.begin_write().await?;
    let secret =
        password::issue_link(&mut tx, &user.id, LinkPurpose::Reset, Duration::minutes(i64::from(minutes)), now).await?;
    let fields = serde_json::json!({ "event": "reset", "name": user.display_name, "link": link_address(&state.config.console, &secret), "minutes": minutes });
    notify::Notice::new("console", vec![user.email.clone()]).with(fields).enqueue(&mut tx, now).await?;
    let actor = format!("user:{}", user.email);
    let event = Event {
        actor: &actor,
        action: "console.password_link_sent",
        user_id: &user.id,
        summary: serde_json::json!({}),
    };
    sessions::record(&mut tx, &state.store, event, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Issues the first administrator's set-up link (valid a day) and returns its address.
pub async fn setup_link(
    store: &Store,
    config: &ConsoleConfig,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    let mut tx = store.begin_write().await?;
    let secret = password::issue_link(&mut tx, user_id, LinkPurpose::Setup, Duration::hours(24), now).await?;
    tx.commit().await?;
    Ok(link_address(config, &secret))
}

pub async fn reset_form(
    State(state): State<ConsoleState>,
    Path(secret): Path<String>,
    parts: Parts,
) -> Result<Response, PageError> {
    let user = password::link_user(&state.store, &secret, state.clock.now()).await?;
    let Some(user) = user else {
        return Ok(ErrorPage::response(StatusCode::NOT_FOUND, "ce lien n'est plus valable : demandez-en un nouveau"));
    };
    let values = serde_json::json!({ "email": user.email, "error": null });
    Ok(anonymous_page(&state, &parts, StatusCode::OK, "reset.html", None, values))
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

pub async fn reset(
    State(state): State<ConsoleState>,
    Path(secret): Path<String>,
    parts: Parts,
    Form(form): Form<ResetForm>,
) -> Result<Response, PageError> {
    if !auth::anonymous_form_ok(&state, &parts.headers, form.csrf.as_deref()) {
        return Ok(auth::csrf_refused());
    }
    let now = state.clock.now();
    // The message beside the field it is about (`password` or `confirmation`).
    let refused = |state: &ConsoleState, email: &str, field: &str, error: String| {
        let values = serde_json::json!({ "email": email, "error": { "field": field, "message": error } });
        anonymous_page(state, &parts, StatusCode::UNPROCESSABLE_ENTITY, "reset.html", None, values)
    };
    let Some(user) = password::link_user(&state.store, &secret, now).await? else {
        return Ok(ErrorPage::response(StatusCode::NOT_FOUND, "ce lien n'est plus valable : demandez-en un nouveau"));
    };
    if form.password != form.confirmation {
        return Ok(refused(&state, &user.email, "confirmation", "les deux mots de passe diffèrent".into()));
    }
    match password::reset_with_link(&state.store, &secret, &form.password, now).await {
        Ok(user) => {
            // The owner is back: failed sign-ins (someone else's) no longer lock the account.
            state.sign_in_throttle.0.reset(&account_key(&user.email)).await?;
            Ok(page::redirect("/connexion?apres=mot-de-passe"))
        }
        Err(problem) if problem.kind == ProblemKind::Validation => {
            Ok(refused(&state, &user.email, "password", field_message(&problem)))
        }
        Err(problem) => Err(problem.into()),
    }
}

/// The message of a validation problem's first field (the detail otherwise).
pub fn field_message(problem: &Problem) -> String {
    problem.errors.first().map_or_else(|| problem.detail.clone(), |e| e.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/tableau-de-bord/x?a=1")), "/tableau-de-bord/x?a=1");
        let bad_ones = [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "\t//evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/\u{85}/evil.example",
            "/\u{a0}/evil.example",
        ];
        for bad in bad_ones {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
