//! `/api/v1/users`, `/api/v1/tokens`, `/api/v1/me`.

use super::authz::{ROLES_WRITE, SELF_READ, TOKENS_MANAGE, USERS_READ, USERS_WRITE};
use super::IdentityState;
use super::{
    create_token_from, create_user, get_token, get_user, grant, in_sight_of, list_tokens, list_users, revoke,
    revoke_token, update_user, CreatedToken, NewToken, NewUser, PresentedToken, TokenInfo, User, UserPatch, UserRole,
};
use crate::identity::authz::{forbidden, Call, Op, Scope};
use crate::identity::Caller;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Utc};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::extract::{ApiJson, ApiQuery};
use ent_kernel::http::{IfMatchHeader, Versioned};
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::{Page, PageQuery};
use ent_kernel::{route_table, version_field};
use schemars::JsonSchema;
use serde::Deserialize;

route_table!(IdentityState, "identité", |api| {
    vec![
    api.get("/api/v1/me", "Qui suis-je : utilisateur et rôles", &SELF_READ, me).ok_versioned::<User>(),
    api.get("/api/v1/users", "Lister les utilisateurs", &USERS_READ, users).pages::<PageQuery, User>(),
    api.post("/api/v1/users", "Créer un utilisateur", &USERS_WRITE, add_user).creates::<NewUser, User>(),
    api.get("/api/v1/users/{id}", "Consulter un utilisateur (id ou e-mail)", &USERS_READ, show_user)
        .ok_versioned::<User>(),
    api.patch("/api/v1/users/{id}", "Modifier un utilisateur (If-Match requis)", &USERS_WRITE, patch_user)
        .if_match_update::<UserPatch, User>(),
    api.post("/api/v1/users/{id}/roles", "Accorder un rôle dans une organisation", &ROLES_WRITE, grant_role)
        .json_body::<RoleRequest>()
        .ok_versioned::<User>(),
    api.delete("/api/v1/users/{id}/roles/{role}", "Retirer un rôle (paramètre org)", &ROLES_WRITE, revoke_role)
        .query::<RoleQuery>(),
    api.get("/api/v1/tokens", "Lister ses jetons (tous pour un admin avec all=true)", &TOKENS_MANAGE, tokens)
        .query::<TokensQuery>()
        .ok::<Vec<TokenInfo>>(),
    api.post(
        "/api/v1/tokens",
        "Créer un jeton d'API (affiché une seule fois ; il expire au plus tard avec le jeton qui le crée, et sa révocation le révoque)",
        &TOKENS_MANAGE,
        add_token,
    )
        .json_body::<NewToken>()
        .created::<CreatedToken>(),
    api.delete("/api/v1/tokens/{id}", "Révoquer un jeton (et ceux créés avec lui)", &TOKENS_MANAGE, remove_token).ok::<TokenInfo>(),
]
});

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role: Role,
    /// Organisation (id, code or kind:code); absent for `admin`.
    pub org: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RoleQuery {
    /// Organisation of the binding (id, code or kind:code); absent for `admin`.
    pub org: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TokensQuery {
    /// Every user's tokens (admin only).
    #[serde(default)]
    pub all: bool,
}

async fn me(State(state): State<IdentityState>, caller: Caller) -> Result<Response, Problem> {
    let id = caller.actor.user_id.clone().ok_or_else(|| Problem::not_found("aucun utilisateur"))?;
    let user = get_user(&state.store, &id).await?.ok_or_else(|| Problem::not_found("utilisateur introuvable"))?;
    Ok(Versioned::ok(user).into_response())
}

/// A user is visible to a scoped reader when their organisation is in scope and they are no
/// pending invitee ([`super::invite_user`]).
async fn visible(state: &IdentityState, caller: &Caller, user: &User) -> Result<bool, Problem> {
    match caller.scope() {
        Scope::All => Ok(true),
        Scope::Orgs(_) if super::is_pending(&state.store, &user.id).await? => Ok(false),
        Scope::Orgs(_) => match &user.org {
            Some(org) => {
                let org = crate::registry::queries::get_org(&state.store, &org.id).await?;
                Ok(match org {
                    Some(org) => caller.require(&state.store, &org).await.is_ok(),
                    None => false,
                })
            }
            None => Ok(false),
        },
    }
}

async fn users(
    Call { state, caller }: Call<IdentityState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<User>>, Problem> {
    let mut page = list_users(&state.store, q.cursor.as_deref(), q.limit, caller.scope().condition()).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for user in page.items {
        items.push(in_sight_of(&state.store, &caller.actor, user).await?);
    }
    page.items = items;
    Ok(Json(page))
}

async fn add_user(
    Call { state, caller }: Call<IdentityState>,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<Response, Problem> {
    let user = create_user(&state.store, &caller.actor, new, state.clock.now()).await?;
    Ok(Versioned::created(user).into_response())
}

async fn find_visible_user(state: &IdentityState, caller: &Caller, id: &str) -> Result<User, Problem> {
    let not_found = || Problem::not_found(format!("aucun utilisateur « {id} »"));
    let user = get_user(&state.store, id).await?.ok_or_else(not_found)?;
    if visible(state, caller, &user).await? {
        in_sight_of(&state.store, &caller.actor, user).await
    } else {
        Err(not_found())
    }
}

async fn show_user(Op { state, caller, key: id }: Op<IdentityState>) -> Result<Response, Problem> {
    Ok(Versioned::ok(find_visible_user(&state, &caller, &id).await?).into_response())
}

async fn patch_user(
    Op { state, caller, key: id }: Op<IdentityState>,
    if_match: IfMatchHeader,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Response, Problem> {
    let user = find_visible_user(&state, &caller, &id).await?;
    let version = if_match.version(user.version)?;
    let updated = update_user(&state.store, &caller.actor, &user.id, version, body, state.clock.now()).await?;
    Ok(Versioned::ok(updated).into_response())
}

/// The organisation of a role the caller names (`org`), narrowed to what it reads.
async fn binding_org(
    state: &IdentityState,
    caller: &Caller,
    key: Option<&str>,
) -> Result<Option<crate::registry::Org>, Problem> {
    match key {
        Some(key) => Ok(Some(crate::registry::resolve_readable_field(&state.store, &caller.actor, "org", key).await?)),
        None => Ok(None),
    }
}

async fn grant_role(
    Op { state, caller, key: id }: Op<IdentityState>,
    ApiJson(body): ApiJson<RoleRequest>,
) -> Result<Response, Problem> {
    let user = find_visible_user(&state, &caller, &id).await?;
    let org = binding_org(&state, &caller, body.org.as_deref()).await?;
    grant(&state.store, &caller.actor, UserRole::new(&user.id, body.role, org.as_ref()), state.clock.now()).await?;
    show_user(Op { state, caller, key: user.id }).await
}

async fn revoke_role(
    Op { state, caller, key: (id, role) }: Op<IdentityState, (String, String)>,
    ApiQuery(q): ApiQuery<RoleQuery>,
) -> Result<StatusCode, Problem> {
    let user = find_visible_user(&state, &caller, &id).await?;
    let role = Role::parse(&role).ok_or_else(|| Problem::invalid_field("role", format!("rôle inconnu : {role}")))?;
    let org = binding_org(&state, &caller, q.org.as_deref()).await?;
    revoke(&state.store, &caller.actor, UserRole::new(&user.id, role, org.as_ref()), state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tokens(
    Call { state, caller }: Call<IdentityState>,
    ApiQuery(q): ApiQuery<TokensQuery>,
) -> Result<Json<Vec<TokenInfo>>, Problem> {
    if q.all {
        if !caller.actor.is_admin() {
            return Err(forbidden("seul un administrateur voit les jetons de tous"));
        }
        return Ok(Json(list_tokens(&state.store, None).await?));
    }
    let own = caller.actor.user_id.clone().unwrap_or_default();
    Ok(Json(list_tokens(&state.store, Some(&own)).await?))
}

fn parse_expiry(value: Option<&str>) -> Result<Option<DateTime<Utc>>, Problem> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Problem::invalid_field("expires_at", "date attendue au format RFC 3339"))
        })
        .transpose()
}

async fn add_token(
    Call { state, caller }: Call<IdentityState>,
    presented: Option<Extension<PresentedToken>>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), Problem> {
    let own = caller.actor.user_id.clone().unwrap_or_default();
    let found = match &body.user {
        Some(user) => get_user(&state.store, user).await?.map(|u| u.id),
        None => Some(own.clone()),
    };
    // Only an admin learns whether another user exists: others get the same refusal either way.
    let owner = match found {
        Some(id) if id == own || caller.actor.is_admin() => id,
        _ if !caller.actor.is_admin() => {
            return Err(forbidden("seul un administrateur crée des jetons pour un autre utilisateur"))
        }
        _ => return Err(Problem::invalid_field("user", "utilisateur introuvable")),
    };
    let expires_at = parse_expiry(body.expires_at.as_deref())?;
    let (store, actor, now) = (&state.store, &caller.actor, state.clock.now());
    // The API authenticates by token only: one minted here is always a child of it.
    let Some(Extension(parent)) = presented else {
        return Err(Problem::new(ProblemKind::Internal, "jeton présenté inconnu : route montée sans authentification"));
    };
    let created = create_token_from(store, actor, &parent, &owner, &body.name, expires_at, now).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn remove_token(Op { state, caller, key: id }: Op<IdentityState>) -> Result<Json<TokenInfo>, Problem> {
    let token = get_token(&state.store, &id).await?.ok_or_else(|| Problem::not_found("jeton introuvable"))?;
    if Some(&token.user_id) != caller.actor.user_id.as_ref() && !caller.actor.is_admin() {
        return Err(Problem::not_found("jeton introuvable"));
    }
    Ok(Json(revoke_token(&state.store, &caller.actor, &id, state.clock.now()).await?))
}

version_field!(User);
