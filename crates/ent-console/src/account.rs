//! « Mon compte »: who the person is, their live sessions (the others can be closed),
//! the e-mails they choose to receive, and the password change (which closes every
//! session). An administrator closes another user's sessions from that user's page.
//!
//! An API token outlives the session that creates it: its creator proves who they are
//! again, with their current password, or, without one, with an authentication at the
//! identity provider less than [`RECENT_SIGN_IN`] old by the provider's own word (the
//! `auth_time` of the ID token the session keeps); the page offers to confirm it there
//! (`GET /compte/identite`, `crate::oidc::confirm_identity`).

use crate::auth::{self, Signed};
use crate::form::FieldError;
use crate::forms::Fields;
use crate::page::{self, Notice, PageError, Shell};
use crate::signin::{field_message, throttled_check, throttled_text, Checked};
use crate::users::visible_user;
use crate::ConsoleState;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use ent_kernel::clock::french_moment;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::text::capitalised;
use ent_ops::notify::preferences;
use ent_platform::identity::oidc::recently_authenticated;
use ent_platform::identity::sessions::{self, Timeouts};
use ent_platform::identity::{self, authz, password};
use serde::Deserialize;

/// The page's two forms that a refusal is about: the summary names the form before its message.
const TOKEN_FORM: &str = "Créer un jeton d'API";
const PASSWORD_FORM: &str = "Changer de mot de passe";

/// The account page again (422) with `text` beside the control `control` of `form`.
async fn refused(
    state: &ConsoleState,
    signed: &Signed,
    (form, control): (&str, &str),
    text: String,
) -> Result<Response, PageError> {
    let error = FieldError::new("", control, text).at(control).labelled(form);
    render(state, signed, StatusCode::UNPROCESSABLE_ENTITY, None, None, vec![error]).await
}

async fn render(
    state: &ConsoleState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<Notice>,
    secret: Option<&str>,
    errors: Vec<FieldError>,
) -> Result<Response, PageError> {
    let session = &signed.0;
    let now = state.clock.now();
    let live = sessions::list_live(&state.store, &session.user_id, Timeouts::of(&state.config.console), now).await?;
    let listed: Vec<_> = live
        .iter()
        .map(|s| {
            serde_json::json!({
                "client": s.client,
                "created_at": french_moment(&s.created_at),
                "last_seen_at": french_moment(&s.last_seen_at),
                "current": s.id_hash == session.id_hash,
            })
        })
        .collect();
    let tokens: Vec<_> = identity::list_tokens(&state.store, Some(&session.user_id))
        .await?
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "created_at": french_moment(&t.created_at),
                "expires_at": t.expires_at.as_deref().map(french_moment),
                "last_used_at": t.last_used_at.as_deref().map(french_moment),
                "revoked_at": t.revoked_at.as_deref().map(french_moment),
            })
        })
        .collect();
    let mut conn = state.store.conn().await.map_err(Problem::from)?;
    let mails = preferences::of_user(&mut conn, &session.user_id).await?;
    drop(conn);
    let mandatory: Vec<_> = preferences::MANDATORY
        .iter()
        .map(|(label, hint)| serde_json::json!({ "label": label, "hint": hint }))
        .collect();
    let has_password = password::has_password(&state.store, &session.user_id).await?;
    // Without a password, a token wants a recent authentication at the provider.
    let recent = !has_password && authenticated_recently(state, session).await?;
    let shell = Shell::new(state, Some(session), "/compte").crumbs(&[("Mon compte", "/compte")]).notice(notice);
    let values = serde_json::json!({
        "email": session.email,
        "name": session.display_name,
        "sessions": listed,
        "roles": page::roles_of(&session.actor),
        "tokens": tokens,
        "secret": secret,
        "mails": mails,
        "mandatory": mandatory,
        "has_password": has_password,
        "recent_minutes": RECENT_SIGN_IN.num_minutes(),
        "recent": recent,
        "can_confirm": state.oidc.get().is_some(),
        "error": errors.iter().map(|e| (e.id.clone(), e.message.clone().into())).collect::<serde_json::Map<_, _>>(),
        "errors": errors,
    });
    Ok(page::render_status(status, "account.html", shell, values))
}

pub async fn page(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let text = format!(
        "Votre identité est confirmée : vous pouvez créer un jeton d'API dans les {} minutes.",
        RECENT_SIGN_IN.num_minutes()
    );
    let notice = Notice::after(query.get("apres"), &[("identite", text.as_str())]);
    render(&state, &signed, StatusCode::OK, notice, None, Vec::new()).await
}

/// The account page of `signed` after a confirmation at the provider was refused: `text`
/// (French, from `identity::oidc`) beside the token form, with `status`.
pub(crate) async fn after_refused_confirmation(
    state: &ConsoleState,
    signed: &Signed,
    status: StatusCode,
    text: String,
) -> Result<Response, PageError> {
    let error = FieldError::new("", "token-recent", sentence(&text)).at("token-recent").labelled(TOKEN_FORM);
    render(state, signed, status, None, None, vec![error]).await
}

/// `text` as a sentence: a capital first letter ([`capitalised`]) and a final full stop.
fn sentence(text: &str) -> String {
    let mut out = capitalised(text);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Whether the session's person was authenticated by the identity provider less than
/// [`RECENT_SIGN_IN`] ago, by the `auth_time` of the ID token the session keeps (not by when
/// the session opened: a sign-in through the provider may be silent).
async fn authenticated_recently(state: &ConsoleState, session: &sessions::Session) -> Result<bool, Problem> {
    let at = crate::oidc::authenticated_at(&state.store, &session.id_hash).await?;
    Ok(recently_authenticated(at, RECENT_SIGN_IN, state.clock.now()))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
}

/// Changes the password once the current one is given (checked under the sign-in
/// throttle, as at sign-in: a session left open is no way around it); every session ends,
/// this one included: the person signs in again.
pub async fn change_password(
    State(state): State<ConsoleState>,
    signed: Signed,
    parts: Parts,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let session = &signed.0;
    if let Some(refusal) = confirm_identity(&state, &signed, &parts, &form.current, "current", None).await? {
        return Ok(refusal);
    }
    if form.password != form.confirmation {
        return refused(&state, &signed, (PASSWORD_FORM, "confirmation"), "Les deux mots de passe diffèrent.".into())
            .await;
    }
    let (user_id, by, now) = (&session.user_id, password::ChosenBy::Owner, state.clock.now());
    match password::set_password(&state.store, &session.actor, user_id, &form.password, by, now).await {
        Ok(_) => {
            let mut response = page::redirect("/connexion?apres=mot-de-passe");
            response.headers_mut().append(header::SET_COOKIE, auth::set_session_cookie(&state, None));
            Ok(response)
        }
        Err(problem) if problem.kind == ProblemKind::Validation => {
            let text = format!("Mot de passe refusé : {}.", field_message(&problem));
            refused(&state, &signed, (PASSWORD_FORM, "password"), text).await
        }
        Err(problem) => Err(problem.into()),
    }
}

/// How recent the authentication at the identity provider of a person without a password
/// must be for them to create a token (its `auth_time`, see [`authenticated_recently`]).
const RECENT_SIGN_IN: chrono::Duration = chrono::Duration::minutes(15);

/// Checks that the person is who the session says, again: the current password they typed,
/// under the sign-in throttle (a session left open is no way around it), or, when
/// `recent_enough` is given and they sign in only through the identity provider, an
/// authentication there that recent ([`authenticated_recently`]: the token form). `None` when
/// proven, else the page that refuses, beside the control `control` where the password was
/// typed.
async fn confirm_identity(
    state: &ConsoleState,
    signed: &Signed,
    parts: &Parts,
    current: &str,
    control: &str,
    recent_enough: Option<chrono::Duration>,
) -> Result<Option<Response>, PageError> {
    let form = if recent_enough.is_some() { TOKEN_FORM } else { PASSWORD_FORM };
    let session = &signed.0;
    if let Some(window) = recent_enough.filter(|_| current.is_empty()) {
        if !password::has_password(&state.store, &session.user_id).await? {
            let at = crate::oidc::authenticated_at(&state.store, &session.id_hash).await?;
            if recently_authenticated(at, window, state.clock.now()) {
                return Ok(None);
            }
            let text = format!(
                "Confirmez votre identité auprès du fournisseur d'identité pour créer un jeton : votre dernière \
                 authentification date de plus de {} minutes, ou le fournisseur ne l'a pas datée.",
                window.num_minutes()
            );
            return Ok(Some(refused(state, signed, (form, "token-recent"), text).await?));
        }
    }
    let client = auth::client_of(state, parts);
    match throttled_check(state, &client, &session.email, current, state.clock.now()).await? {
        Checked::Right(user_id) if user_id == session.user_id => Ok(None),
        Checked::Throttled(seconds) => {
            let notice = Some(Notice::error(throttled_text(seconds)));
            let mut response = render(state, signed, StatusCode::TOO_MANY_REQUESTS, notice, None, Vec::new()).await?;
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            Ok(Some(response))
        }
        Checked::Right(_) | Checked::Wrong { .. } => {
            Ok(Some(refused(state, signed, (form, control), "Le mot de passe actuel est incorrect.".into()).await?))
        }
    }
}

/// Closes every other session of the signed-in person.
pub async fn revoke_others(State(state): State<ConsoleState>, signed: Signed) -> Result<Response, PageError> {
    let session = &signed.0;
    let now = state.clock.now();
    let ended =
        sessions::revoke_user_sessions(&state.store, &session.actor, &session.user_id, Some(&session.id_hash), now)
            .await?;
    let text = format!("{ended} autre(s) session(s) fermée(s).");
    render(&state, &signed, StatusCode::OK, Some(Notice::success(text)), None, Vec::new()).await
}

/// Closes every session of a user (administrators, from the user's page).
pub async fn revoke_user(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    // The same reading of the user as every user page: out of reach and unknown alike.
    let user = visible_user(&state, &signed, &id, &authz::USERS_WRITE).await?;
    sessions::revoke_user_sessions(&state.store, &signed.0.actor, &user.id, None, state.clock.now()).await?;
    Ok(page::redirect("/?apres=sessions"))
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    /// `AAAA-MM-JJ`, the token expiring at the start of that day (UTC); never when empty.
    #[serde(default)]
    expires: String,
    /// The person's current password; empty for one without a password (see [`confirm_identity`]).
    #[serde(default)]
    current: String,
}

/// `2027-06-30` → the start of that day in UTC; `None` when empty.
fn expiry_of(date: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    if date.trim().is_empty() {
        return Ok(None);
    }
    ent_kernel::validate::date(date.trim())
        .map(|d| Some(d.and_time(chrono::NaiveTime::MIN).and_utc()))
        .map_err(|message| format!("Date d'expiration : {message}."))
}

/// Creates an API token for the signed-in person; its secret is shown on this answer only.
pub async fn create_token(
    State(state): State<ConsoleState>,
    signed: Signed,
    parts: Parts,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let session = &signed.0;
    // A token outlives the session that creates it.
    let recent = Some(RECENT_SIGN_IN);
    if let Some(refusal) = confirm_identity(&state, &signed, &parts, &form.current, "token-current", recent).await? {
        return Ok(refusal);
    }
    let expires_at = match expiry_of(&form.expires) {
        Ok(at) => at,
        Err(text) => return refused(&state, &signed, (TOKEN_FORM, "token-expires"), text).await,
    };
    let now = state.clock.now();
    match identity::create_token(&state.store, &session.actor, &session.user_id, &form.name, expires_at, now).await {
        Ok(created) => {
            let text = format!("Jeton « {} » créé.", created.info.name);
            let notice = Some(Notice::success(text));
            render(&state, &signed, StatusCode::OK, notice, Some(&created.token), Vec::new()).await
        }
        Err(problem) if problem.kind == ProblemKind::Validation => {
            let text = format!("Jeton refusé : {}.", field_message(&problem));
            refused(&state, &signed, (TOKEN_FORM, "token-name"), text).await
        }
        Err(problem) => Err(problem.into()),
    }
}

/// Revokes one of the signed-in person's own tokens; another person's answers 404.
pub async fn revoke_token(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let session = &signed.0;
    let token = identity::get_token(&state.store, &id)
        .await?
        .filter(|t| t.user_id == session.user_id)
        .ok_or_else(|| Problem::not_found("jeton introuvable"))?;
    identity::revoke_token(&state.store, &session.actor, &token.id, state.clock.now()).await?;
    let text = format!("Jeton « {} » révoqué.", token.name);
    render(&state, &signed, StatusCode::OK, Some(Notice::success(text)), None, Vec::new()).await
}

/// Records which optional e-mails the signed-in person receives (their own preferences
/// only: the form names no user). Only the boxes changed since the page was shown are
/// written, each an idempotent upsert, audited.
pub async fn save_mail_preferences(
    State(state): State<ConsoleState>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let session = &signed.0;
    let choices = preferences::choices_from_form(&fields);
    preferences::set(&state.store, &session.actor, &session.user_id, &choices, state.clock.now()).await?;
    let text = "Vos préférences de courriel sont enregistrées.".to_string();
    render(&state, &signed, StatusCode::OK, Some(Notice::success(text)), None, Vec::new()).await
}
