//! « Utilisateurs et rôles », for administrators and for a DAN within its académie:
//! the users of the caller's scope (searchable, paginated, sortable), inviting a user
//! (an account and a one-time link to choose a password, e-mailed through the
//! outbox), granting and revoking role bindings, and cutting a user's access (their
//! console sessions and API tokens). A DAN grants no admin role and no role outside
//! its scope: every organisation touched is checked with `authorize`, and the writes
//! are the identity capability's (audited).

use crate::auth::Signed;
use crate::form::{errors_of, FieldError};
use crate::forms::Fields;
use crate::list::{self, Cell, Column, Filter, ListParams, ListSpec, ListView};
use crate::page::{self, Notice, PageError, Shell};
use crate::signin::link_address;
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use chrono::Duration;
use ent_kernel::clock::french_day;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::{Action, Role};
use ent_kernel::store::Condition;
use ent_kernel::text::fold_sql;
use ent_ops::notify;
use ent_platform::identity::password::{self, LinkPurpose};
use ent_platform::identity::sessions::{self, Event};
use ent_platform::identity::{self as identity, authz, User, UserRole};
use ent_platform::registry::{name_search, queries, Org};
use serde::{Deserialize, Serialize};

/// The users of one's scope and their roles (read).
pub const USERS_SCREEN: Action = Action { name: "console.users", write: false, roles: &[Role::Admin, Role::Dan] };
/// Inviting users, granting and revoking their roles, cutting their access.
pub const USERS_MANAGE: Action = Action { name: "console.users.manage", write: true, roles: &[Role::Admin, Role::Dan] };

/// Hours an invitation's link stays valid.
const INVITATION_HOURS: i64 = 72;

/// The pages of this screen.
pub fn routes<S>() -> Vec<ConsoleRoute<S>>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
{
    use Access::Signed;
    vec![
        route(Method::GET, "/utilisateurs", Signed(&USERS_SCREEN), get(search)),
        route(Method::POST, "/utilisateurs", Signed(&USERS_MANAGE), post(invite)),
        route(Method::GET, "/utilisateurs/{id}", Signed(&USERS_SCREEN), get(show)),
        route(Method::POST, "/utilisateurs/{id}/roles", Signed(&USERS_MANAGE), post(change_role::<true>)),
        route(Method::POST, "/utilisateurs/{id}/roles/retirer", Signed(&USERS_MANAGE), post(change_role::<false>)),
        route(Method::POST, "/utilisateurs/{id}/acces/revoquer", Signed(&USERS_MANAGE), post(cut_access)),
    ]
}

/// The user search.
pub const SEARCH: ListSpec = ListSpec {
    columns: &[
        Column { key: "email", label: "Adresse", order_by: Some("u.email") },
        Column { key: "nom", label: "Nom", order_by: Some("u.display_name") },
        Column { key: "organisation", label: "Organisation", order_by: Some("o.sort_name") },
        Column { key: "actif", label: "Actif", order_by: Some("u.active") },
    ],
    filters: &[Filter { key: "actif", label: "Compte", choices: &[("oui", "actif"), ("non", "désactivé")] }],
    default_sort: "email",
    tie_break: "u.id",
    search: Some("Adresse ou nom"),
    keyset: false,
};

#[derive(sqlx::FromRow)]
struct Listed {
    id: String,
    email: String,
    display_name: String,
    org_name: Option<String>,
    active: i64,
}

/// The users `actor` may see for `action`: all for an admin, else those whose
/// organisation is in scope and who are no pending invitees (in the query, before paging).
fn scope_condition(signed: &Signed, action: &Action) -> Condition {
    let mut cond = Condition::default();
    if let Some(scope) = authz::scope(&signed.0.actor, action).condition() {
        cond.and_wrapped("u.org_id IN (SELECT id FROM orgs WHERE ", scope, ")");
        cond.push(&identity::not_pending("u.id"), &[]);
    }
    cond
}

fn search_condition(params: &ListParams) -> Condition {
    let mut cond = Condition::default();
    if let Some(active) = params.filter("actif") {
        cond.push_int("u.active = ?", i64::from(active == "oui"));
    }
    if let Some(q) = &params.q {
        // The address as typed; the person's name and their organisation's, both folded.
        let pattern = list::contains_pattern(q.trim());
        let (names, mut values) = name_search(&fold_sql("u.display_name"), q, "u.email LIKE ?", &[&pattern]);
        let (orgs, org_values) = name_search("o.sort_name", q, "", &[]);
        values.extend(org_values);
        cond.push(&format!("({names} OR {orgs})"), &values.iter().map(String::as_str).collect::<Vec<_>>());
    }
    cond
}

#[derive(Serialize, Default)]
struct InviteForm {
    email: String,
    display_name: String,
    org: String,
    role: String,
    errors: Vec<FieldError>,
}

async fn render_list(
    state: &ConsoleState,
    signed: &Signed,
    pairs: &[(String, String)],
    status: StatusCode,
    notice: Option<Notice>,
    invite: InviteForm,
) -> Result<Response, PageError> {
    let params = ListParams::parse(&SEARCH, pairs);
    let mut cond = search_condition(&params);
    cond.and(scope_condition(signed, &USERS_SCREEN));
    let columns = "u.id, u.email, u.display_name, o.name AS org_name, u.active";
    let from = "users u LEFT JOIN orgs o ON o.id = u.org_id";
    let listed = list::fetch::<Listed>(&state.store, &SEARCH, &params, columns, from, &cond).await?;
    let rows = listed
        .page
        .items
        .iter()
        .map(|u| {
            vec![
                Cell::link(u.email.clone(), format!("/utilisateurs/{}", u.id)),
                Cell::text(u.display_name.clone()),
                Cell::text(u.org_name.clone().unwrap_or_else(|| "—".into())),
                Cell::text(if u.active != 0 { "oui" } else { "non" }),
            ]
        })
        .collect();
    let view = ListView::new("utilisateurs", "/utilisateurs", "Utilisateurs", &SEARCH, &params, &listed, rows);
    let shell = Shell::new(state, Some(&signed.0), "/utilisateurs")
        .crumbs(&[("Utilisateurs et rôles", "/utilisateurs")])
        .notice(notice);
    let may_invite = authz::role_allows(&signed.0.actor, &USERS_MANAGE);
    let values = serde_json::json!({
        "title": "Utilisateurs et rôles",
        "list": view,
        "may_invite": may_invite,
        "admin": signed.0.actor.is_admin(),
        "grantable": grantable(signed),
        "invite": invite,
    });
    Ok(page::render_status(status, "users.html", shell, values))
}

/// `/utilisateurs`: the users of the caller's scope, and the invitation form.
pub async fn search(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let notice = pairs
        .iter()
        .any(|(k, v)| k == "apres" && v == "invitation")
        .then(|| Notice::success("L'invitation est envoyée : le lien pour choisir un mot de passe part par courriel."));
    render_list(&state, &signed, &pairs, StatusCode::OK, notice, InviteForm::default()).await
}

/// The organisation a form names (id, code or `type:code`) if `action` may reach it:
/// an unknown or unreadable one is a field error on `field` (nothing revealed), a
/// readable one out of the write scope a refusal said on the field.
async fn org_in_scope(
    state: &ConsoleState,
    signed: &Signed,
    action: &Action,
    form: &str,
    field: &str,
    key: &str,
) -> Result<Result<Org, Refusal>, Problem> {
    let unknown = || {
        let text = format!("aucune organisation « {} » dans votre périmètre", key.trim());
        (StatusCode::UNPROCESSABLE_ENTITY, FieldError::new(form, field, text))
    };
    let org = match authz::resolve_readable(&state.store, &signed.0.actor, key).await {
        Ok(org) => org,
        Err(p) if p.kind.status().is_server_error() => return Err(p),
        Err(_) => return Ok(Err(unknown())),
    };
    match authz::authorize(&state.store, &signed.0.actor, action, &org).await {
        Ok(()) => Ok(Ok(org)),
        Err(p) if p.kind == ProblemKind::Forbidden => {
            Ok(Err((StatusCode::FORBIDDEN, FieldError::new(form, field, p.detail))))
        }
        Err(p) if p.kind == ProblemKind::NotFound => Ok(Err(unknown())),
        Err(p) => Err(p),
    }
}

/// The organisation an invitation attaches its account to: in the caller's scope
/// ([`org_in_scope`]) and one whose people the caller may attach ([`identity::check_attacher`]:
/// of the State's side unless an administrator). Checked before anything is written: a refused
/// invitation creates no account and sends no mail.
async fn attachable_org(state: &ConsoleState, signed: &Signed, key: &str) -> Result<Result<Org, Refusal>, Problem> {
    let org = match org_in_scope(state, signed, &USERS_MANAGE, "invitation", "org", key).await? {
        Ok(org) => org,
        Err(refusal) => return Ok(Err(refusal)),
    };
    Ok(match identity::check_attacher(&signed.0.actor, &org) {
        Ok(()) => Ok(org),
        Err(p) => Err((StatusCode::FORBIDDEN, FieldError::new("invitation", "org", p.detail))),
    })
}

/// A form refused: its status and the field's error.
type Refusal = (StatusCode, FieldError);

/// A role checked to be grantable, and the organisation where it is held.
type CheckedRole = (Role, Option<Org>);

#[derive(Deserialize)]
pub struct InviteInput {
    email: Option<String>,
    display_name: Option<String>,
    org: Option<String>,
    role: Option<String>,
}

/// Invites a user: the account (at an organisation of the caller's scope; none only
/// for an administrator) with the role chosen on the form at that organisation, then a
/// one-time link to choose a password, by e-mail. The account is pending
/// ([`identity::invite_user`]): until the invitee acts, only an administrator sees it, so that
/// a DAN sees the same whether the address was new or had an account out of sight; hence the
/// role is chosen with the invitation, the inviter having no page to grant it from meanwhile.
pub async fn invite(
    State(state): State<ConsoleState>,
    signed: Signed,
    Form(input): Form<InviteInput>,
) -> Result<Response, PageError> {
    let typed = InviteForm {
        email: input.email.unwrap_or_default(),
        display_name: input.display_name.unwrap_or_default(),
        org: input.org.unwrap_or_default(),
        role: input.role.unwrap_or_default(),
        errors: Vec::new(),
    };
    // The form's error summary is the page's one alert: no notice beside it.
    let refuse = |typed: InviteForm, errors: Vec<FieldError>| (InviteForm { errors, ..typed }, None::<Notice>);
    let org = if typed.org.trim().is_empty() {
        if !signed.0.actor.is_admin() {
            let (form, notice) =
                refuse(typed, vec![FieldError::new("invitation", "org", "indiquez l'organisation de la personne")]);
            return render_list(&state, &signed, &[], StatusCode::UNPROCESSABLE_ENTITY, notice, form).await;
        }
        None
    } else {
        match attachable_org(&state, &signed, &typed.org).await? {
            Ok(org) => Some(org),
            Err((status, error)) => {
                let (form, notice) = refuse(typed, vec![error]);
                return render_list(&state, &signed, &[], status, notice, form).await;
            }
        }
    };
    let role = match invited_role(&state, &signed, &typed).await? {
        Ok(role) => role,
        Err((status, error)) => {
            let (form, notice) = refuse(typed, vec![error]);
            return render_list(&state, &signed, &[], status, notice, form).await;
        }
    };
    let new = identity::NewUser {
        email: typed.email.clone(),
        display_name: typed.display_name.clone(),
        org: org.as_ref().map(|o| o.id.clone()),
    };
    let now = state.clock.now();
    let user = match identity::invite_user(&state.store, &signed.0.actor, new, now).await {
        Ok(user) => user,
        // Only who may see the account learns that the address has one: the others get the
        // answer of an invitation sent (a pending invitee a new link, anyone else no mail).
        Err(p) if p.kind == ProblemKind::Conflict && !sees_account(&state, &signed, &typed.email).await? => {
            resend_to_pending(&state, &signed, &typed.email, role, now).await?;
            return Ok(invitation_sent(&signed, None));
        }
        Err(p) => match errors_of(&p, "invitation", &["email", "display_name", "org"], "email") {
            Some(errors) => {
                let (form, notice) = refuse(typed, errors);
                return render_list(&state, &signed, &[], StatusCode::UNPROCESSABLE_ENTITY, notice, form).await;
            }
            None => return Err(p.into()),
        },
    };
    grant_invited(&state, &signed, &user, role, now).await?;
    send_invitation(&state, &signed, &user, now).await?;
    Ok(invitation_sent(&signed, Some(&user)))
}

/// The role an invitation form asks for, checked as a grant on the user's page is (at the
/// form's organisation); `None` when the form leaves it for later.
async fn invited_role(
    state: &ConsoleState,
    signed: &Signed,
    typed: &InviteForm,
) -> Result<Result<Option<CheckedRole>, Refusal>, Problem> {
    if typed.role.trim().is_empty() {
        return Ok(Ok(None));
    }
    let input = RoleInput { role: Some(typed.role.clone()), org: Some(typed.org.clone()) };
    Ok(checked_binding(state, signed, &input, "invitation").await?.map(Some))
}

/// Grants the invitee the role of their invitation, if any.
async fn grant_invited(
    state: &ConsoleState,
    signed: &Signed,
    user: &User,
    role: Option<CheckedRole>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    match role {
        Some((role, org)) => {
            identity::grant(&state.store, &signed.0.actor, UserRole::new(&user.id, role, org.as_ref()), now).await
        }
        None => Ok(()),
    }
}

/// Whether the account of address `email`, if any, is one the caller may see ([`visible_user`]).
async fn sees_account(state: &ConsoleState, signed: &Signed, email: &str) -> Result<bool, Problem> {
    let Some(user) = identity::get_user(&state.store, email.trim()).await? else {
        return Ok(false);
    };
    match visible_user(state, signed, &user.id, &USERS_SCREEN).await {
        Ok(_) => Ok(true),
        Err(p) if p.kind == ProblemKind::NotFound => Ok(false),
        Err(p) => Err(p),
    }
}

/// A new invitation link for the account of `email` if it is a pending invitee's (their first
/// link lost or expired) at an organisation the caller manages users of; nothing for any other
/// address (a pending invitee elsewhere included: no link goes out in the caller's name).
async fn resend_to_pending(
    state: &ConsoleState,
    signed: &Signed,
    email: &str,
    role: Option<CheckedRole>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    match identity::get_user(&state.store, email.trim()).await? {
        Some(user)
            if identity::is_pending(&state.store, &user.id).await? && manages_org_of(state, signed, &user).await? =>
        {
            grant_invited(state, signed, &user, role, now).await?;
            send_invitation(state, signed, &user, now).await
        }
        _ => Ok(()),
    }
}

/// Whether the caller may manage users ([`USERS_MANAGE`]) at `user`'s organisation: false for
/// an account without one, at an organisation out of the caller's scope, or at one whose people
/// only an administrator attaches ([`identity::check_attacher`]).
async fn manages_org_of(state: &ConsoleState, signed: &Signed, user: &User) -> Result<bool, Problem> {
    let Some(org) = &user.org else { return Ok(false) };
    let Some(org) = queries::get_org(&state.store, &org.id).await? else { return Ok(false) };
    if identity::check_attacher(&signed.0.actor, &org).is_err() {
        return Ok(false);
    }
    match authz::authorize(&state.store, &signed.0.actor, &USERS_MANAGE, &org).await {
        Ok(_) => Ok(true),
        Err(p) if matches!(p.kind, ProblemKind::NotFound | ProblemKind::Forbidden) => Ok(false),
        Err(p) => Err(p),
    }
}

/// The answer to an invitation sent: an administrator goes to the new user's page; anyone
/// else to the list, the same whether `user` was created or the address already had an
/// account out of their sight (`None`).
fn invitation_sent(signed: &Signed, user: Option<&User>) -> Response {
    match user {
        Some(user) if signed.0.actor.is_admin() => {
            page::redirect(&format!("/utilisateurs/{}?apres=invitation", user.id))
        }
        _ => page::redirect("/utilisateurs?apres=invitation"),
    }
}

/// Who invited `user_id` (their last invitation's sender, « Nom (adresse) »), the person a
/// role-less invitee asks for a role; `None` for an account not created by an invitation.
pub async fn inviter_of(state: &ConsoleState, user_id: &str) -> Result<Option<String>, Problem> {
    let actor: Option<String> = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'console.invitation_sent' AND target_kind = 'user' \
         AND target_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(state.store.pool())
    .await?;
    let Some(email) = actor.as_deref().and_then(|a| a.strip_prefix("user:")) else { return Ok(None) };
    let user = identity::get_user(&state.store, email).await?;
    Ok(Some(user.map_or_else(|| email.to_string(), |u| format!("{} ({})", u.display_name, u.email))))
}

/// The invitation's link, e-mailed through the outbox and audited, in one transaction.
async fn send_invitation(
    state: &ConsoleState,
    signed: &Signed,
    user: &User,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    let mut tx = state.store.begin_write().await?;
    let valid = Duration::hours(INVITATION_HOURS);
    let secret = password::issue_link(&mut tx, &user.id, LinkPurpose::Setup, valid, now).await?;
    let fields = serde_json::json!({
        "event": "invitation",
        "name": user.display_name,
        "inviter": signed.0.display_name,
        "link": link_address(&state.config.console, &secret),
        "hours": INVITATION_HOURS,
    });
    notify::Notice::new("console", vec![user.email.clone()]).with(fields).enqueue(&mut tx, now).await?;
    let event = Event {
        actor: &signed.0.actor.name,
        action: "console.invitation_sent",
        user_id: &user.id,
        summary: serde_json::json!({ "email": user.email }),
    };
    sessions::record(&mut tx, &state.store, event, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The user `id` if the caller may `action` on them: an administrator reaches every
/// user, a DAN those whose organisation is in its scope once they are no pending invitee;
/// anyone else is the same 404 as a user that does not exist.
pub(crate) async fn visible_user(
    state: &ConsoleState,
    signed: &Signed,
    id: &str,
    action: &Action,
) -> Result<User, Problem> {
    let missing = || Problem::not_found("aucun utilisateur à cette adresse");
    let user = identity::get_user(&state.store, id).await?.filter(|u| u.id == id).ok_or_else(missing)?;
    if signed.0.actor.is_admin() {
        return Ok(user);
    }
    let org = match &user.org {
        Some(_) if identity::is_pending(&state.store, &user.id).await? => return Err(missing()),
        Some(org) => queries::get_org(&state.store, &org.id).await?.ok_or_else(missing)?,
        None => return Err(missing()),
    };
    authz::authorize(&state.store, &signed.0.actor, action, &org).await.map_err(|p| match p.kind {
        ProblemKind::NotFound | ProblemKind::Forbidden => missing(),
        _ => p,
    })?;
    Ok(user)
}

#[derive(Serialize, Default)]
struct GrantForm {
    role: String,
    org: String,
    errors: Vec<FieldError>,
}

/// The roles a caller may grant: every one for an administrator, all but admin otherwise.
fn grantable(signed: &Signed) -> Vec<serde_json::Value> {
    let admin = signed.0.actor.is_admin();
    Role::ALL
        .iter()
        .filter(|r| admin || **r != Role::Admin)
        .map(|r| serde_json::json!({ "value": r.as_str(), "label": page::role_label(*r) }))
        .collect()
}

async fn render_user(
    state: &ConsoleState,
    signed: &Signed,
    user: User,
    status: StatusCode,
    notice: Option<Notice>,
    form: GrantForm,
) -> Result<Response, PageError> {
    let actor = &signed.0.actor;
    let user = identity::in_sight_of(&state.store, actor, user).await?;
    // A user's API tokens are theirs and the administrators' to see.
    let sees_tokens = actor.is_admin() || actor.user_id.as_deref() == Some(user.id.as_str());
    let tokens: Vec<_> = match sees_tokens {
        true => identity::list_tokens(&state.store, Some(&user.id)).await?,
        false => Vec::new(),
    };
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|t| t.revoked_at.is_none())
        .map(|t| serde_json::json!({ "name": t.name, "prefix": t.prefix, "created_on": french_day(&t.created_at) }))
        .collect();
    let revocable = revocable_roles(state, signed, &user.id).await?;
    let roles: Vec<_> = user
        .roles
        .iter()
        .map(|r| {
            let org_id = r.org.as_ref().map(|o| o.id.clone());
            serde_json::json!({
                "role": r.role.as_str(),
                "label": page::role_label(r.role),
                "org": r.org,
                "revocable": revocable.contains(&(r.role, org_id)),
            })
        })
        .collect();
    let may_cut = actor.is_admin() || beyond_reach(state, signed, &user).await?.is_none();
    let path = format!("/utilisateurs/{}", user.id);
    let shell = Shell::new(state, Some(&signed.0), &path)
        .crumbs(&[("Utilisateurs et rôles", "/utilisateurs"), (&user.email, &path)])
        .notice(notice);
    let values = serde_json::json!({
        "title": user.display_name,
        "user": user,
        "roles": roles,
        "tokens": tokens,
        "sees_tokens": sees_tokens,
        "may_manage": authz::role_allows(&signed.0.actor, &USERS_MANAGE),
        "may_cut": may_cut,
        "admin": signed.0.actor.is_admin(),
        "grantable": grantable(signed),
        "grant": form,
    });
    Ok(page::render_status(status, "user.html", shell, values))
}

/// The roles of `user_id` the caller may revoke ([`reaches`]), by role and organisation id: the
/// only ones a « Retirer » button is offered for.
async fn revocable_roles(
    state: &ConsoleState,
    signed: &Signed,
    user_id: &str,
) -> Result<std::collections::HashSet<(Role, Option<String>)>, Problem> {
    let mut revocable = std::collections::HashSet::new();
    if !authz::role_allows(&signed.0.actor, &USERS_MANAGE) {
        return Ok(revocable);
    }
    for binding in identity::bindings_of(&state.store, user_id).await? {
        if reaches(state, signed, &binding).await {
            revocable.insert((binding.role, binding.org.map(|o| o.id)));
        }
    }
    Ok(revocable)
}

/// The notices of a user's page shown after an action (`?apres=`).
const NOTICES: &[(&str, &str)] = &[
    ("invitation", "L'invitation est envoyée : le lien pour choisir un mot de passe part par courriel."),
    ("role-accorde", "Le rôle est accordé."),
    ("role-retire", "Le rôle est retiré."),
    ("acces", "Les sessions, les liens de mot de passe et les jetons d'API de l'utilisateur sont révoqués."),
];

/// `/utilisateurs/{id}`: a user, their roles and tokens, and the forms that change them.
pub async fn show(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let user = visible_user(&state, &signed, &id, &USERS_SCREEN).await?;
    render_user(&state, &signed, user, StatusCode::OK, Notice::after(query.get("apres"), NOTICES), GrantForm::default())
        .await
}

#[derive(Deserialize)]
pub struct RoleInput {
    role: Option<String>,
    org: Option<String>,
}

/// The binding form `form` names, checked as the API's rules say: the admin role only by
/// an administrator, any other at an organisation of the caller's scope, and at a
/// collectivité, an éditeur, an hébergeur or a private school only by an administrator
/// ([`identity::check_change`], [`identity::check_grantor`]).
async fn checked_binding(
    state: &ConsoleState,
    signed: &Signed,
    input: &RoleInput,
    form: &str,
) -> Result<Result<CheckedRole, Refusal>, Problem> {
    let unprocessable =
        |field: &str, text: String| Ok(Err((StatusCode::UNPROCESSABLE_ENTITY, FieldError::new(form, field, text))));
    let Some(role) = input.role.as_deref().and_then(Role::parse) else {
        return unprocessable("role", "choisissez un rôle".into());
    };
    if role == Role::Admin {
        if let Err(p) = identity::check_change(&signed.0.actor, None) {
            return Ok(Err((StatusCode::FORBIDDEN, FieldError::new(form, "role", p.detail))));
        }
        return Ok(Ok((role, None)));
    }
    let key = input.org.as_deref().unwrap_or_default();
    if key.trim().is_empty() {
        return unprocessable("org", "indiquez l'organisation où s'exerce le rôle".into());
    }
    let org = match org_in_scope(state, signed, &USERS_MANAGE, form, "org", key).await? {
        Ok(org) => org,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // Checked before anything is written: an invitation refused here creates no account.
    if let Err(p) = identity::check_binding(role, Some(&org)) {
        let text = p.errors.first().map_or(p.detail, |e| e.message.clone());
        return unprocessable("role", text);
    }
    if let Err(p) = identity::check_grantor(&signed.0.actor, &org) {
        return Ok(Err((StatusCode::FORBIDDEN, FieldError::new(form, "org", p.detail))));
    }
    Ok(Ok((role, Some(org))))
}

/// Grants (`ADD`) a role to a user of the caller's scope, or revokes it.
pub async fn change_role<const ADD: bool>(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(input): Form<RoleInput>,
) -> Result<Response, PageError> {
    let user = visible_user(&state, &signed, &id, &USERS_MANAGE).await?;
    let typed = GrantForm {
        role: input.role.clone().unwrap_or_default(),
        org: input.org.clone().unwrap_or_default(),
        errors: Vec::new(),
    };
    let what = if ADD { "Le rôle n'est pas accordé" } else { "Le rôle n'est pas retiré" };
    let (role, org) = match checked_binding(&state, &signed, &input, "role").await? {
        Ok(binding) => binding,
        Err((status, error)) => {
            return render_user(&state, &signed, user, status, None, GrantForm { errors: vec![error], ..typed }).await;
        }
    };
    let wanted = UserRole::new(&user.id, role, org.as_ref());
    let now = state.clock.now();
    let done = if ADD {
        identity::grant(&state.store, &signed.0.actor, wanted, now).await
    } else {
        identity::revoke(&state.store, &signed.0.actor, wanted, now).await
    };
    match done {
        Ok(()) => {
            let after = if ADD { "role-accorde" } else { "role-retire" };
            Ok(page::redirect(&format!("/utilisateurs/{}?apres={after}", user.id)))
        }
        // One's own roles (identity's refusal) said on the form, as the other refusals are.
        Err(p) if p.kind == ProblemKind::Forbidden => {
            let errors = vec![FieldError::new("role", "role", format!("{what} : {}", p.detail))];
            render_user(&state, &signed, user, StatusCode::FORBIDDEN, None, GrantForm { errors, ..typed }).await
        }
        Err(p) => {
            let errors = match errors_of(&p, "role", &["role", "org"], "role") {
                Some(errors) => errors,
                None if p.kind == ProblemKind::NotFound => vec![FieldError::new("role", "role", p.detail.clone())],
                None => return Err(p.into()),
            };
            render_user(&state, &signed, user, StatusCode::UNPROCESSABLE_ENTITY, None, GrantForm { errors, ..typed })
                .await
        }
    }
}

/// Whether the caller may grant and revoke `binding`: an administrator any; anyone else not the
/// admin role, and only at an organisation of its scope whose roles it grants
/// ([`identity::check_grantor`]: of the State, not a collectivité's, an éditeur's, an
/// hébergeur's or a private school's).
async fn reaches(state: &ConsoleState, signed: &Signed, binding: &identity::Binding) -> bool {
    let actor = &signed.0.actor;
    match &binding.org {
        _ if actor.is_admin() => true,
        Some(org) if binding.role != Role::Admin => {
            identity::check_grantor(actor, org).is_ok()
                && authz::authorize(&state.store, actor, &USERS_MANAGE, org).await.is_ok()
        }
        _ => false,
    }
}

/// What of `user` puts their access beyond the caller's reach, said for the caller (« a aussi le
/// rôle … », « est rattaché à … »): a role the caller could not grant ([`reaches`]), or an
/// organisation whose people the caller does not attach ([`identity::check_attacher`]: a person
/// of a private school, say, even without a role); `None` for an administrator.
async fn beyond_reach(state: &ConsoleState, signed: &Signed, user: &User) -> Result<Option<String>, Problem> {
    if signed.0.actor.is_admin() {
        return Ok(None);
    }
    for binding in identity::bindings_of(&state.store, &user.id).await? {
        if !reaches(state, signed, &binding).await {
            return Ok(Some(unreached_role(state, signed, &binding).await?));
        }
    }
    if let Some(home) = &user.org {
        let org = queries::get_org(&state.store, &home.id).await?;
        if org.is_some_and(|org| identity::check_attacher(&signed.0.actor, &org).is_err()) {
            return Ok(Some(format!(
                "est rattaché à {}, une autre personne morale dont vous ne gérez pas les comptes",
                home.name
            )));
        }
    }
    Ok(None)
}

/// How [`beyond_reach`] names a role of the user the caller does not grant: the role and its
/// organisation when the caller reads that organisation; otherwise neither (the caller sees
/// nothing of a role outside its scope, the admin role included: attack review 42), in words
/// that are the same whatever the role and wherever it is held.
async fn unreached_role(state: &ConsoleState, signed: &Signed, binding: &identity::Binding) -> Result<String, Problem> {
    let readable = match &binding.org {
        Some(org) if authz::reads(&state.store, &signed.0.actor, org).await? => Some(org),
        _ => None,
    };
    Ok(match readable {
        Some(org) => format!(
            "a aussi le rôle « {} » ({}), que vous n'accordez pas (hors de votre périmètre, ou au nom d'une \
             collectivité, d'un éditeur, d'un hébergeur ou d'un établissement privé)",
            page::role_label(binding.role),
            org.name
        ),
        None => "a aussi un rôle hors de votre périmètre, que vous n'accordez pas".into(),
    })
}

/// Ends every console session of a user, spends their live password links and revokes their
/// live API tokens; a DAN only for a user whose every role it grants and whom it attaches
/// ([`beyond_reach`]).
pub async fn cut_access(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let user = visible_user(&state, &signed, &id, &USERS_MANAGE).await?;
    let actor = &signed.0.actor;
    if let Some(outside) = beyond_reach(&state, &signed, &user).await? {
        let text =
            format!("Accès non coupé : cet utilisateur {outside} ; seul un administrateur peut couper tous ses accès.");
        return render_user(
            &state,
            &signed,
            user,
            StatusCode::FORBIDDEN,
            Some(Notice::error(text)),
            GrantForm::default(),
        )
        .await;
    }
    let now = state.clock.now();
    sessions::revoke_user_sessions(&state.store, actor, &user.id, None, now).await?;
    password::spend_user_links(&state.store, actor, &user, now).await?;
    for token in identity::list_tokens(&state.store, Some(&user.id)).await? {
        if token.revoked_at.is_none() {
            // Revoked meanwhile (with a token it was minted with, listed before it): done.
            match identity::revoke_token(&state.store, actor, &token.id, now).await {
                Err(p) if p.kind == ProblemKind::NotFound => {}
                done => {
                    done?;
                }
            }
        }
    }
    Ok(page::redirect(&format!("/utilisateurs/{}?apres=acces", user.id)))
}
