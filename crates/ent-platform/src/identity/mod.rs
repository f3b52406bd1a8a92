//! Identity: users, role bindings (a role at an organisation), API tokens, and
//! the `Actor` every request and command acts as. Tokens are one way in; a
//! web-console session or an OIDC login only has to produce the same `Actor`.

pub mod authz;
pub mod oidc;
pub mod password;
pub mod readers;
pub mod routes;
pub mod sessions;
pub mod state;

use crate::audit::{self, Target};
use crate::registry::queries::get_org;
use crate::registry::{Org, OrgRef};
use authz::Scope;
use chrono::{DateTime, Utc};
use ent_kernel::error::{conflict_unless, Checks, Problem, ProblemKind};
use ent_kernel::files;
use ent_kernel::kernel::roles::{Action, OrgKind, Role};
use ent_kernel::skip_serializing_none;
use ent_kernel::store::update_versioned;
use ent_kernel::store::{new_id, on_constraint, timestamp, Flag, Store, Tx};
use ent_kernel::store::{page_size, Condition, Page};
use ent_kernel::validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::FromRow;
pub use state::IdentityState;

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

    /// [`Caller::require`] on the organisation the caller named `key`: out of scope, the
    /// same 404 as a `key` that names nothing ([`authz::authorize_key`]).
    pub async fn require_key(&self, store: &Store, key: &str, target: &Org) -> Result<(), Problem> {
        authz::authorize_key(store, &self.actor, self.action, key, target).await
    }

    /// [`Caller::require`] on the organisation of a resource the caller named otherwise (a
    /// tenant, an application): out of scope and unreadable, `missing` (the 404 of that
    /// resource not existing) rather than anything about the organisation.
    pub async fn require_or(
        &self,
        store: &Store,
        target: &Org,
        missing: impl FnOnce() -> Problem,
    ) -> Result<(), Problem> {
        match self.require(store, target).await {
            Err(p) if p.kind == ProblemKind::NotFound => Err(missing()),
            other => other,
        }
    }

    /// The organisation `key` names, if the call may act on it; out of scope and unreadable,
    /// the 404 of a key that names nothing, in the same words.
    pub async fn resolve(&self, store: &Store, key: &str) -> Result<Org, Problem> {
        let org = authz::resolve_readable(store, &self.actor, key).await?;
        self.require_key(store, key, &org).await?;
        Ok(org)
    }

    /// The organisations this call may reach.
    pub fn scope(&self) -> Scope {
        authz::scope(&self.actor, self.action)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Problem::new(ProblemKind::Internal, "route mounted without authentication"))
    }
}

/// A role held at an organisation (none for the platform-wide admin).
#[derive(Debug, Clone)]
pub struct Binding {
    pub role: Role,
    pub org: Option<Org>,
}

/// Who is acting: a user authenticated by a token (or, later, a session), or
/// the operator at the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<String>,
    /// How the actor appears in the audit log.
    pub name: String,
    pub bindings: Vec<Binding>,
}

/// What joins, in an actor's name, the operator to the user it records for.
const ON_BEHALF: &str = "pour user:";

/// An actor's name (`user:<email>`, `cli:<login>`, `cli:<login> pour user:<email>`,
/// `system:<job>`) as a person reads it on a page: the address, the operator, the job in words.
pub fn shown_actor(name: &str) -> String {
    if let Some((operator, email)) = name.split_once(ON_BEHALF) {
        let login = operator.trim().trim_start_matches("cli:");
        return format!("{login} (ligne de commande), pour {email}");
    }
    if let Some(email) = name.strip_prefix("user:") {
        return email.to_string();
    }
    if let Some(login) = name.strip_prefix("cli:") {
        return format!("{login} (ligne de commande)");
    }
    match name.strip_prefix("system:") {
        Some(job) => format!("tâche automatique « {job} »"),
        None => name.to_string(),
    }
}

/// What stands for an address a reader does not see (the audit log's, a convention's).
pub const MASKED: &str = "(masqué)";

/// An actor's name (or a person's bare address) as a reader who does not see the address
/// reads it: a person's account masked ([`MASKED`]; the reader is given the person's name
/// beside it, from the directory); an operator by login, without the account they recorded
/// for; a command or a job as it is.
pub fn masked_actor(name: &str) -> String {
    match name.split_once(ON_BEHALF) {
        Some((operator, _)) => operator.trim().to_string(),
        None if name.contains('@') => MASKED.into(),
        None => name.to_string(),
    }
}

/// The e-mail address an actor's name carries (`user:<email>`, `cli:<login> pour
/// user:<email>`), or a bare address itself; `None` for a command, a job or a client.
pub fn address_in(name: &str) -> Option<&str> {
    if let Some((_, email)) = name.split_once(ON_BEHALF) {
        return Some(email.trim());
    }
    let address = name.strip_prefix("user:").unwrap_or(name);
    address.contains('@').then_some(address)
}

/// `cli:<login>`: the operator running `entctl`, by login name (`$USER`, `$LOGNAME`), else
/// (a container's shell sets neither, or sets them empty) the system account running it.
fn cli_name() -> String {
    let var = |name: &str| std::env::var(name).ok();
    format!("cli:{}", cli_login(var("USER"), var("LOGNAME"), system_login))
}

/// The first login named and not blank, else the system's; `anonyme` when none is known.
fn cli_login(user: Option<String>, logname: Option<String>, system: fn() -> Option<String>) -> String {
    [user, logname]
        .into_iter()
        .flatten()
        .map(|login| login.trim().to_string())
        .find(|login| !login.is_empty())
        .or_else(system)
        .unwrap_or_else(|| "anonyme".into())
}

/// The account the process runs as: the owner of `/proc/self`, by its name in `/etc/passwd`
/// (`uid1000` when it has none there); `None` without `/proc` (not Linux).
fn system_login() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let named = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 2 && fields[2] == uid && !fields[0].is_empty()).then(|| fields[0].to_string())
        });
        Some(named.unwrap_or_else(|| format!("uid{uid}")))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

impl Actor {
    /// The operator running `entctl` on the server: full rights, audited by login name.
    pub fn cli() -> Actor {
        Actor { user_id: None, name: cli_name(), bindings: vec![Binding { role: Role::Admin, org: None }] }
    }

    /// The operator recording with `entctl` what a user decided off the platform (a signature
    /// received on paper): the user's id and role bindings only (checked as for the API), audited
    /// as `cli:<login> pour user:<email>`.
    pub fn cli_on_behalf_of(user: &User, bindings: Vec<Binding>) -> Actor {
        Actor { user_id: Some(user.id.clone()), name: format!("{} {ON_BEHALF}{}", cli_name(), user.email), bindings }
    }

    /// Which column, and which value, find this actor's earlier rows in a table that records
    /// both who acted (`name_column`, the actor's name) and their account (`account_column`):
    /// the account when the actor has one (the name follows a changed e-mail address), else
    /// the name (the command line).
    pub fn recorded_as(&self, account_column: &'static str, name_column: &'static str) -> (&'static str, &str) {
        match &self.user_id {
            Some(user_id) => (account_column, user_id),
            None => (name_column, &self.name),
        }
    }

    /// The e-mail address of the user the actor is or acts for; its name otherwise.
    pub fn email(&self) -> &str {
        match self.name.split_once(ON_BEHALF) {
            Some((_, email)) => email,
            None => self.name.trim_start_matches("user:"),
        }
    }

    /// Who recorded, on a user's behalf, what the actor does ([`Actor::cli_on_behalf_of`]):
    /// the whole name, `cli:<login> pour user:<email>`; `None` for a user acting themselves.
    pub fn recorded_on_behalf(&self) -> Option<&str> {
        self.name.contains(ON_BEHALF).then_some(self.name.as_str())
    }

    /// A scheduled job (`system:{job}` in the audit log), with full rights.
    pub fn system(job: &str) -> Actor {
        Actor { user_id: None, name: format!("system:{job}"), bindings: vec![Binding { role: Role::Admin, org: None }] }
    }

    pub fn is_admin(&self) -> bool {
        self.bindings.iter().any(|b| b.role == Role::Admin)
    }

    /// How logs name the actor: `user:<id>` (never an e-mail address), or its name otherwise.
    pub fn log_id(&self) -> String {
        match &self.user_id {
            Some(id) => format!("user:{id}"),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoleView {
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgRef>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgRef>,
    pub active: bool,
    pub roles: Vec<RoleView>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schemars(email, length(max = 254))]
    pub email: String,
    #[schemars(length(min = 1, max = 200))]
    pub display_name: String,
    /// The user's organisation (id, code or kind:code).
    pub org: Option<String>,
}

/// Fields of `PATCH /users/{id}`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[schemars(length(min = 1, max = 200))]
    pub display_name: Option<String>,
    pub active: Option<bool>,
}

fn check_email(checks: &mut Checks, email: &str) {
    if email.len() > 254 {
        checks.fail("email", "adresse de 254 caractères au plus");
    } else {
        checks.email("email", email);
    }
}

fn check_display_name(checks: &mut Checks, name: &str) {
    if validate::is_blank(name) || name.chars().count() > 200 {
        checks.fail("display_name", "nom obligatoire, 200 caractères au plus");
    }
    checks.line("display_name", name);
}

pub async fn create_user(store: &Store, actor: &Actor, new: NewUser, now: DateTime<Utc>) -> Result<User, Problem> {
    insert_user(store, actor, new, false, now).await
}

/// [`create_user`] for an invitation: the account is pending ([`is_pending`]) until the invitee
/// acts (chooses a password through a link, or signs in). Until then only an administrator sees
/// it, so that whoever invited sees the same whether the address already had an account or not.
pub async fn invite_user(store: &Store, actor: &Actor, new: NewUser, now: DateTime<Utc>) -> Result<User, Problem> {
    insert_user(store, actor, new, true, now).await
}

/// The condition, on the users' id column `id`, that leaves out pending invitees (what a caller
/// other than an administrator is shown of the users).
pub fn not_pending(id: &str) -> String {
    format!("{id} NOT IN (SELECT user_id FROM pending_invitees)")
}

/// Whether `user_id` is an invitee who has not acted yet ([`invite_user`]).
pub async fn is_pending(store: &Store, user_id: &str) -> Result<bool, Problem> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) AS n FROM pending_invitees WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(store.pool())
        .await?;
    Ok(n > 0)
}

/// The invitee `user_id` has acted (a password chosen through a link, a sign-in): their account
/// is shown to whoever may see it. Harmless for any other account.
pub(crate) async fn settle_invitee(tx: &mut Tx, user_id: &str) -> Result<(), Problem> {
    sqlx::query("DELETE FROM pending_invitees WHERE user_id = $1").bind(user_id).execute(&mut **tx).await?;
    Ok(())
}

async fn insert_user(
    store: &Store,
    actor: &Actor,
    new: NewUser,
    invited: bool,
    now: DateTime<Utc>,
) -> Result<User, Problem> {
    let email = new.email.trim().to_ascii_lowercase();
    let mut checks = Checks::default();
    // Checked before trimming: a trailing line break is refused, not silently cut.
    check_email(&mut checks, &new.email);
    check_display_name(&mut checks, &new.display_name);
    let org = match &new.org {
        Some(key) => match authz::resolve_readable(store, actor, key).await {
            Ok(org) => Some(org),
            Err(e) => {
                checks.fail("org", e.detail);
                None
            }
        },
        None => None,
    };
    if let Some(org) = &org {
        check_attacher(actor, org)?;
    }
    checks.finish()?;
    let id = new_id();
    let at = timestamp(now);
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO users (id, email, display_name, org_id, active, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, 1, $5, $6)",
    )
    .bind(&id)
    .bind(&email)
    .bind(new.display_name.trim())
    .bind(org.as_ref().map(|o| o.id.clone()))
    .bind(&at)
    .bind(&at)
    .execute(&mut *tx)
    .await
    .map_err(on_constraint(format!("un utilisateur a déjà l'adresse {email}")))?;
    let mut summary = serde_json::json!({ "email": email, "display_name": new.display_name.trim() });
    if invited {
        sqlx::query("INSERT INTO pending_invitees (user_id, invited_at) VALUES ($1, $2)")
            .bind(&id)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        summary["invited"] = true.into();
    }
    let target = Target::new("user", &id, org.as_ref().map(|o| o.id.as_str()));
    audit::record(&mut tx, store.backend(), actor, "users.create", &target, summary, now).await?;
    tx.commit().await?;
    get_user(store, &id).await?.ok_or_else(|| Problem::not_found("utilisateur introuvable"))
}

/// Applies a patch if `expected_version` is the current one (optimistic concurrency).
pub async fn update_user(
    store: &Store,
    actor: &Actor,
    id: &str,
    expected_version: i64,
    patch: UserPatch,
    now: DateTime<Utc>,
) -> Result<User, Problem> {
    let mut checks = Checks::default();
    if let Some(name) = &patch.display_name {
        check_display_name(&mut checks, name);
    }
    checks.finish()?;
    let current = get_user(store, id).await?.ok_or_else(|| Problem::not_found("utilisateur introuvable"))?;
    let display_name = patch.display_name.as_deref().map(str::trim).unwrap_or(&current.display_name).to_string();
    let active = patch.active.unwrap_or(current.active);
    let mut tx = store.begin_write().await?;
    let query = sqlx::query(
        "UPDATE users SET display_name = $1, active = $2, version = version + 1, updated_at = $3 \
         WHERE id = $4 AND version = $5",
    )
    .bind(&display_name)
    .bind(i64::from(active));
    update_versioned(&mut tx, query, now, id, expected_version, current.version).await?;
    let mut summary = serde_json::json!({ "display_name": display_name, "active": active });
    if current.active != active {
        // A password link in the mailbox of a deactivated account opens nothing, even
        // once the account is active again: its links are spent when it is deactivated, and
        // again when it is reactivated (one issued meanwhile, by a request that read the
        // account still active, would otherwise come alive).
        summary["links_spent"] = password::spend_links(&mut tx, id, None, now).await?.into();
    }
    if current.active && !active {
        // Deactivating takes the account back (a compromised one, a departure): its sessions
        // end and its API tokens are revoked, so that reactivating it hands neither back.
        summary["sessions_ended"] = sessions::revoke_all(&mut tx, id, None, now).await?.into();
        summary["tokens_revoked"] = revoke_user_tokens(&mut tx, id, now).await?.into();
    }
    let target = Target::new("user", id, current.org.as_ref().map(|o| o.id.as_str()));
    audit::record(&mut tx, store.backend(), actor, "users.update", &target, summary, now).await?;
    tx.commit().await?;
    forget_authenticated_tokens();
    get_user(store, id).await?.ok_or_else(|| Problem::not_found("utilisateur introuvable"))
}

const USER_COLUMNS: &str = "id, email, display_name, org_id, active, version, created_at, updated_at";

/// A `users` row (read with [`USER_COLUMNS`]).
#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    display_name: String,
    org_id: Option<String>,
    #[sqlx(try_from = "Flag")]
    active: bool,
    version: i64,
    created_at: String,
    updated_at: String,
}

async fn user_from_row(store: &Store, row: UserRow) -> Result<User, Problem> {
    let org = match &row.org_id {
        Some(org_id) => get_org(store, org_id).await?.map(|o| o.as_ref()),
        None => None,
    };
    let roles = bindings_of(store, &row.id)
        .await?
        .into_iter()
        .map(|b| RoleView { role: b.role, org: b.org.map(|o| o.as_ref()) })
        .collect();
    Ok(User {
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        org,
        active: row.active,
        roles,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub async fn get_user(store: &Store, id: &str) -> Result<Option<User>, Problem> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR email = $2");
    let row = sqlx::query_as(&sql).bind(id).bind(id.to_ascii_lowercase()).fetch_optional(store.pool()).await?;
    match row {
        Some(row) => Ok(Some(user_from_row(store, row).await?)),
        None => Ok(None),
    }
}

/// `user` as `actor` may see them: an administrator and the user themself see every role;
/// anyone else only the roles held at an organisation they read (`orgs.read`), and nothing of
/// the others (an admin binding included).
pub async fn in_sight_of(store: &Store, actor: &Actor, mut user: User) -> Result<User, Problem> {
    let Some(readable) = authz::scope(actor, &authz::ORGS_READ).condition() else {
        return Ok(user);
    };
    if actor.user_id.as_deref() == Some(user.id.as_str()) {
        return Ok(user);
    }
    let ids = user.roles.iter().filter_map(|r| r.org.as_ref().map(|o| o.id.clone())).collect();
    let mut seen = std::collections::HashSet::new();
    for mut cond in Condition::in_chunks("id", ids) {
        cond.and(readable.clone());
        let sql = format!("SELECT id FROM orgs WHERE {}", cond.sql());
        for row in cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
            seen.insert(<(String,)>::from_row(&row)?.0);
        }
    }
    user.roles.retain(|r| r.org.as_ref().is_some_and(|o| seen.contains(&o.id)));
    Ok(user)
}

/// Users ordered by e-mail; `cursor` is the last e-mail of the previous page.
/// Users by e-mail; `scope` (a condition on `orgs`) keeps those whose organisation
/// it matches, pending invitees left out ([`not_pending`]), in the query, so that pages and
/// cursors only ever hold visible users.
pub async fn list_users(
    store: &Store,
    cursor: Option<&str>,
    limit: Option<u32>,
    scope: Option<Condition>,
) -> Result<Page<User>, Problem> {
    let size = page_size(limit)?;
    let mut cond = Condition::default();
    cond.push("email > ?", &[cursor.unwrap_or("")]);
    if let Some(scope) = scope {
        cond.and_wrapped("org_id IN (SELECT id FROM orgs WHERE ", scope, ")");
        cond.push(&not_pending("id"), &[]);
    }
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {} ORDER BY email LIMIT {}", cond.sql(), size + 1);
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    let mut items = Vec::new();
    for row in rows.iter().take(size as usize) {
        items.push(user_from_row(store, UserRow::from_row(row)?).await?);
    }
    let next_cursor = (rows.len() > size as usize).then(|| items.last().map(|u: &User| u.email.clone())).flatten();
    Ok(Page { items, next_cursor })
}

pub async fn bindings_of(store: &Store, user_id: &str) -> Result<Vec<Binding>, Problem> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT role, org_id FROM role_bindings WHERE user_id = $1 ORDER BY role, org_id")
            .bind(user_id)
            .fetch_all(store.pool())
            .await?;
    let mut bindings = Vec::new();
    for (role, org_id) in rows {
        let role = Role::try_from(role)?;
        let org = match org_id {
            Some(id) => match get_org(store, &id).await? {
                Some(org) => Some(org),
                None => continue,
            },
            None => None,
        };
        bindings.push(Binding { role, org });
    }
    Ok(bindings)
}

/// Whether `role` may be held at `org` (none for admin, a kind the role is exercised in otherwise).
pub fn check_binding(role: Role, org: Option<&Org>) -> Result<(), Problem> {
    match (role, org) {
        (Role::Admin, None) => Ok(()),
        (Role::Admin, Some(_)) => {
            Err(Problem::invalid_field("org", "le rôle admin vaut pour toute la plateforme : pas d'organisation"))
        }
        (_, None) => Err(Problem::invalid_field(
            "org",
            format!("le rôle {} s'exerce dans une organisation : précisez-la", role.as_str()),
        )),
        (_, Some(org)) if !role.org_kinds().contains(&org.kind) => {
            let allowed: Vec<&str> = role.org_kinds().iter().map(|k| k.label()).collect();
            Err(Problem::invalid_field(
                "org",
                format!(
                    "le rôle {} ne s'exerce pas dans {} (possible : {})",
                    role.as_str(),
                    org.kind.with_article(),
                    allowed.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Whether `actor` acts for the people of `org` (its scope checked apart): an administrator
/// anywhere, anyone else only at an organisation of the State ([`authz::of_the_state`]: an
/// académie, a DSDEN, a public school). A role at a collectivité, an éditeur, an hébergeur or a
/// private school acts for another legal person (signs its conventions, reads its RGPD logs):
/// only an administrator grants it. The one rule behind [`check_grantor`] and
/// [`check_attacher`].
fn acts_for_people_of(actor: &Actor, org: &Org) -> bool {
    actor.is_admin() || authz::of_the_state(org)
}

/// How a refusal names the kind of `org` another legal person holds: « une commune », « un
/// établissement privé ».
fn other_person(org: &Org) -> String {
    match org.kind {
        OrgKind::Etablissement if !org.is_public() => "un établissement privé".into(),
        kind => kind.with_article(),
    }
}

/// Whether `actor` may grant or revoke a role at `org` ([`acts_for_people_of`]).
pub fn check_grantor(actor: &Actor, org: &Org) -> Result<(), Problem> {
    if acts_for_people_of(actor, org) {
        return Ok(());
    }
    Err(authz::forbidden(format!(
        "seul un administrateur accorde ou retire un rôle dans {} : ce rôle agit au nom d'une autre personne morale",
        other_person(org)
    )))
}

/// Whether `actor` may attach an account to `org` (create or invite a person of that
/// organisation), by the rule of a grant there ([`acts_for_people_of`]): a person of a
/// collectivité, an éditeur, an hébergeur or a private school is attached by an administrator
/// only.
pub fn check_attacher(actor: &Actor, org: &Org) -> Result<(), Problem> {
    if acts_for_people_of(actor, org) {
        return Ok(());
    }
    Err(authz::forbidden(format!(
        "seul un administrateur invite une personne rattachée à {} : son compte agirait au nom d'une autre personne \
         morale",
        other_person(org)
    )))
}

/// A role of a user, at an organisation (`None`: platform-wide, admin only).
#[derive(Debug, Clone, Copy)]
pub struct UserRole<'a> {
    pub user_id: &'a str,
    pub role: Role,
    pub org: Option<&'a Org>,
}

impl<'a> UserRole<'a> {
    pub fn new(user_id: &'a str, role: Role, org: Option<&'a Org>) -> UserRole<'a> {
        UserRole { user_id, role, org }
    }
}

/// Grants the role; granting twice is harmless.
pub async fn grant(store: &Store, actor: &Actor, wanted: UserRole<'_>, now: DateTime<Utc>) -> Result<(), Problem> {
    check_binding(wanted.role, wanted.org)?;
    let (user, mut tx) = binding_change(store, actor, wanted).await?;
    let exists = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) AS n FROM role_bindings WHERE user_id = $1 AND role = $2 AND COALESCE(org_id, '') = $3",
    )
    .bind(&user.id)
    .bind(wanted.role.as_str())
    .bind(org_key(wanted.org))
    .fetch_one(&mut *tx)
    .await?
        > 0;
    if exists {
        return Ok(());
    }
    sqlx::query("INSERT INTO role_bindings (id, user_id, role, org_id, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(new_id())
        .bind(&user.id)
        .bind(wanted.role.as_str())
        .bind(wanted.org.map(|o| o.id.clone()))
        .bind(timestamp(now))
        .execute(&mut *tx)
        .await?;
    finish_binding_change(tx, store, actor, "roles.grant", &user, wanted, now).await
}

/// Revokes the role; a 404 when the user does not hold it.
pub async fn revoke(store: &Store, actor: &Actor, held: UserRole<'_>, now: DateTime<Utc>) -> Result<(), Problem> {
    let (user, mut tx) = binding_change(store, actor, held).await?;
    let done = sqlx::query("DELETE FROM role_bindings WHERE user_id = $1 AND role = $2 AND COALESCE(org_id, '') = $3")
        .bind(&user.id)
        .bind(held.role.as_str())
        .bind(org_key(held.org))
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Problem::not_found(format!("{} n'a pas ce rôle", user.email)));
    }
    finish_binding_change(tx, store, actor, "roles.revoke", &user, held, now).await
}

/// 403 when a user who is not an administrator changes their own roles: a DAN would grant
/// itself what its scope reaches (a commune's `collectivite`, a school's head) and act as them.
fn refuse_own_roles(actor: &Actor, user_id: &str) -> Result<(), Problem> {
    if actor.user_id.as_deref() == Some(user_id) && !actor.is_admin() {
        return Err(authz::forbidden("vous ne pouvez pas modifier vos propres rôles"));
    }
    Ok(())
}

/// Whether `actor` may grant or revoke a role at `org`: the platform-wide admin role
/// (`None`) by an administrator only, a role at an organisation by [`check_grantor`]. The
/// caller's scope over `org` is checked apart.
pub fn check_change(actor: &Actor, org: Option<&Org>) -> Result<(), Problem> {
    match org {
        Some(org) => check_grantor(actor, org),
        None if actor.is_admin() => Ok(()),
        None => Err(authz::forbidden("seul un administrateur accorde ou retire le rôle administrateur")),
    }
}

/// The organisation of a binding as `role_bindings` compares it (`''`: none).
fn org_key(org: Option<&Org>) -> String {
    org.map(|o| o.id.clone()).unwrap_or_default()
}

/// The user whose binding changes (404 when unknown) and the write transaction; one's own
/// roles only by an administrator ([`refuse_own_roles`]), and a role only where the actor may
/// grant it ([`check_change`]), whoever calls (API, console, command line).
async fn binding_change(store: &Store, actor: &Actor, change: UserRole<'_>) -> Result<(User, Tx), Problem> {
    let user = get_user(store, change.user_id).await?.ok_or_else(|| Problem::not_found("utilisateur introuvable"))?;
    refuse_own_roles(actor, &user.id)?;
    check_change(actor, change.org)?;
    Ok((user, store.begin_write().await?))
}

/// The tail of a binding change: audited, committed, and the cached tokens forgotten.
async fn finish_binding_change(
    mut tx: Tx,
    store: &Store,
    actor: &Actor,
    action: &str,
    user: &User,
    change: UserRole<'_>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let target = Target::new("user", &user.id, change.org.map(|o| o.id.as_str()));
    let summary = serde_json::json!({ "role": change.role.as_str(), "org": change.org.map(Org::qualified_code) });
    audit::record(&mut tx, store.backend(), actor, action, &target, summary, now).await?;
    tx.commit().await?;
    forget_authenticated_tokens();
    Ok(())
}

/// A token as listed: never the secret.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The visible start of the token, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// Keep it now: it is stored hashed and cannot be shown again.
    pub token: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// Owner (id or e-mail); yourself when absent. Only an admin creates tokens for others.
    pub user: Option<String>,
    /// Expiry (RFC 3339); never when absent.
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `entcp_<8 hex prefix>_<64 hex secret>`: 288 random bits from the OS.
fn generate_token() -> (String, String) {
    let mut bytes = [0u8; 36];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let prefix = hex::encode(&bytes[..4]);
    let token = format!("entcp_{prefix}_{}", hex::encode(&bytes[4..]));
    (format!("entcp_{prefix}"), token)
}

/// Live (neither revoked nor expired) tokens a user may hold at once.
pub const MAX_LIVE_TOKENS: i64 = 20;

pub async fn create_token(
    store: &Store,
    actor: &Actor,
    user_id: &str,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<CreatedToken, Problem> {
    insert_token(store, actor, user_id, name, expires_at, None, now).await
}

/// A token minted through the API with the token `parent`: it never outlives its parent (its
/// expiry is the earlier of the one asked and the parent's), and revoking the parent revokes
/// it, so that a time-limited or leaked token cannot turn itself into a permanent one.
pub async fn create_token_from(
    store: &Store,
    actor: &Actor,
    parent: &PresentedToken,
    user_id: &str,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<CreatedToken, Problem> {
    let bound = match parent.expires_at.as_deref() {
        None => None,
        Some(at) => Some(DateTime::parse_from_rfc3339(at).map_err(|_| {
            Problem::new(ProblemKind::Internal, format!("échéance illisible du jeton {} : {at}", parent.id))
        })?),
    };
    let expires_at = match (expires_at, bound.map(|b| b.with_timezone(&Utc))) {
        (Some(asked), Some(bound)) => Some(asked.min(bound)),
        (asked, bound) => asked.or(bound),
    };
    insert_token(store, actor, user_id, name, expires_at, Some(&parent.id), now).await
}

/// The token a request was authenticated with (set by the API's authentication).
#[derive(Debug, Clone)]
pub struct PresentedToken {
    pub id: String,
    pub expires_at: Option<String>,
}

async fn insert_token(
    store: &Store,
    actor: &Actor,
    user_id: &str,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    parent_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CreatedToken, Problem> {
    if validate::is_blank(name) || name.chars().count() > 100 {
        return Err(Problem::invalid_field("name", "nom du jeton obligatoire, 100 caractères au plus"));
    }
    validate::line(name).map_err(|e| Problem::invalid_field("name", e))?;
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Problem::invalid_field("expires_at", "la date d'expiration est déjà passée"));
    }
    let user = get_user(store, user_id).await?.ok_or_else(|| Problem::not_found("utilisateur introuvable"))?;
    let (prefix, token) = generate_token();
    let id = new_id();
    let mut tx = store.begin_write().await?;
    if let Some(parent) = parent_id {
        // Read (and on PostgreSQL locked) in this transaction: a parent revoked meanwhile, on
        // another replica whose cache still held it, mints nothing; one revoked after this
        // commits finds the child and revokes it.
        let sql = format!(
            "SELECT id FROM api_tokens WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2){}",
            store.backend().for_update()
        );
        let live: Option<String> =
            sqlx::query_scalar(&sql).bind(parent).bind(timestamp(now)).fetch_optional(&mut *tx).await?;
        if live.is_none() {
            return Err(Problem::new(ProblemKind::Unauthorized, "jeton révoqué ou expiré : aucun jeton créé"));
        }
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(&user.id)
    .bind(timestamp(now))
    .fetch_one(&mut *tx)
    .await?;
    conflict_unless(live < MAX_LIVE_TOKENS, || {
        format!("{} a déjà {MAX_LIVE_TOKENS} jetons valides : révoquez-en un avant d'en créer un autre", user.email)
    })?;
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&user.id)
    .bind(name.trim())
    .bind(&prefix)
    .bind(hash_token(&token))
    .bind(timestamp(now))
    .bind(expires_at.map(timestamp))
    .execute(&mut *tx)
    .await?;
    // Only a token minted with a token names its parent (migration 0051): one made otherwise is
    // written as releases before it wrote it.
    if let Some(parent) = parent_id {
        sqlx::query("UPDATE api_tokens SET parent_id = $1 WHERE id = $2")
            .bind(parent)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    let target = Target::new("token", &id, user.org.as_ref().map(|o| o.id.as_str()));
    let mut summary = serde_json::json!({ "user": user.email, "name": name.trim(), "prefix": prefix });
    if let Some(parent) = parent_id {
        summary["parent"] = parent.into();
    }
    audit::record(&mut tx, store.backend(), actor, "tokens.create", &target, summary, now).await?;
    tx.commit().await?;
    let info = get_token(store, &id).await?.expect("just created");
    Ok(CreatedToken { info, token })
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, expires_at, revoked_at, last_used_at";

pub async fn get_token(store: &Store, id: &str) -> Result<Option<TokenInfo>, Problem> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(store.pool()).await?)
}

/// Tokens of one user, or of everyone (admin), newest first.
pub async fn list_tokens(store: &Store, user_id: Option<&str>) -> Result<Vec<TokenInfo>, Problem> {
    Ok(match user_id {
        Some(user_id) => {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id DESC");
            sqlx::query_as(&sql).bind(user_id).fetch_all(store.pool()).await?
        }
        None => {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id DESC");
            sqlx::query_as(&sql).fetch_all(store.pool()).await?
        }
    })
}

/// Revokes in `tx` every live API token of a user (a new password takes the account back
/// from whoever minted one with the old); how many were. The caller empties the cache of
/// authenticated tokens once committed ([`forget_authenticated_tokens`]).
pub(crate) async fn revoke_user_tokens(tx: &mut Tx, user_id: &str, now: DateTime<Utc>) -> Result<u64, Problem> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(timestamp(now))
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    // What the user's tokens minted goes with them (another user's, by an admin's token,
    // included). Read after the update: a token created meanwhile and revoked by it is walked too.
    let all: Vec<String> =
        sqlx::query_scalar("SELECT id FROM api_tokens WHERE user_id = $1").bind(user_id).fetch_all(&mut **tx).await?;
    for id in &all {
        revoke_minted_with(tx, id, now).await?;
    }
    Ok(done.rows_affected())
}

pub async fn revoke_token(store: &Store, actor: &Actor, id: &str, now: DateTime<Utc>) -> Result<TokenInfo, Problem> {
    let mut tx = store.begin_write().await?;
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(timestamp(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Problem::not_found("jeton introuvable ou déjà révoqué"));
    }
    let minted = revoke_minted_with(&mut tx, id, now).await?;
    let target = Target::new("token", id, None);
    let summary =
        if minted.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "minted_with_it": minted }) };
    audit::record(&mut tx, store.backend(), actor, "tokens.revoke", &target, summary, now).await?;
    tx.commit().await?;
    forget_authenticated_tokens();
    Ok(get_token(store, id).await?.expect("exists"))
}

/// Revokes in `tx` the live tokens minted with the token `id` through the API, and those
/// minted with them in turn; their ids.
async fn revoke_minted_with(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<Vec<String>, Problem> {
    let mut revoked = Vec::new();
    let mut parents = vec![id.to_string()];
    while let Some(parent) = parents.pop() {
        // Every child, revoked ones too: what a revoked child minted is walked as well.
        let children: Vec<String> = sqlx::query_scalar("SELECT id FROM api_tokens WHERE parent_id = $1")
            .bind(&parent)
            .fetch_all(&mut **tx)
            .await?;
        for child in children {
            let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(timestamp(now))
                .bind(&child)
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() > 0 {
                revoked.push(child.clone());
            }
            parents.push(child);
        }
    }
    Ok(revoked)
}

/// Why a bearer token was refused; recorded for auditors, never told to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    Expired,
    Revoked,
    InactiveUser,
}

impl TokenRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRefusal::Unknown => "unknown_token",
            TokenRefusal::Expired => "expired_token",
            TokenRefusal::Revoked => "revoked_token",
            TokenRefusal::InactiveUser => "inactive_user",
        }
    }
}

/// The actor a bearer token stands for, if it is valid, unexpired, unrevoked
/// and its user active.
pub async fn authenticate_token(store: &Store, token: &str, now: DateTime<Utc>) -> Result<Option<Actor>, Problem> {
    Ok(check_token(store, token, now).await?.ok().map(|(actor, _)| actor))
}

/// How long an authenticated token is trusted without reading the database
/// again. Identity changes made by this process (revocation, deactivation, role
/// changes) take effect at once; those made by another process (a replica,
/// `entctl tokens revoke`) within this delay.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// A token recently authenticated, by SHA-256 (the token itself is never kept).
#[derive(Clone)]
struct CachedToken {
    actor: Actor,
    token_id: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    cached_at: std::time::Instant,
    /// `TOKEN_CACHE_GENERATION` when it was read: any identity change since makes it stale.
    generation: u64,
}

static TOKEN_CACHE_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn token_cache_generation() -> u64 {
    TOKEN_CACHE_GENERATION.load(std::sync::atomic::Ordering::SeqCst)
}

type TokenCache = std::sync::Mutex<std::collections::HashMap<String, CachedToken>>;

fn token_cache() -> &'static TokenCache {
    static CACHE: std::sync::OnceLock<TokenCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Empties the authenticated-token cache (after any identity change).
pub fn forget_authenticated_tokens() {
    TOKEN_CACHE_GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    token_cache().lock().expect("token cache lock").clear();
}

/// The actor a bearer token stands for, or why it is refused. Records the last use
/// at most once a minute.
pub async fn check_token(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Result<(Actor, PresentedToken), TokenRefusal>, Problem> {
    let hash = hash_token(token);
    let cached = token_cache().lock().expect("token cache lock").get(&hash).cloned();
    let fresh = |c: &CachedToken| c.cached_at.elapsed() < TOKEN_CACHE_TTL && c.generation == token_cache_generation();
    let mut entry = match cached.filter(fresh) {
        Some(entry) => entry,
        None => match lookup_token(store, &hash).await? {
            Ok(entry) => entry,
            Err(refusal) => return Ok(Err(refusal)),
        },
    };
    let now_text = timestamp(now);
    if entry.expires_at.as_ref().is_some_and(|e| *e <= now_text) {
        return Ok(Err(TokenRefusal::Expired));
    }
    let a_minute_ago = timestamp(now - chrono::Duration::minutes(1));
    if entry.last_used_at.as_ref().is_none_or(|t| *t < a_minute_ago) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(&now_text)
            .bind(&entry.token_id)
            .execute(store.pool())
            .await?;
        entry.last_used_at = Some(now_text);
    }
    let actor = entry.actor.clone();
    let presented = PresentedToken { id: entry.token_id.clone(), expires_at: entry.expires_at.clone() };
    let mut cache = token_cache().lock().expect("token cache lock");
    if cache.len() > 10_000 {
        cache.retain(|_, c| fresh(c));
    }
    cache.insert(hash, entry);
    Ok(Ok((actor, presented)))
}

/// What authentication reads of a token and its user.
#[derive(sqlx::FromRow)]
struct TokenUserRow {
    id: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    user_id: String,
    email: String,
    #[sqlx(try_from = "Flag")]
    active: bool,
}

/// The live token of `hash` and its user's actor, read from the database, or why
/// it is refused (expiry is checked by the caller, against its clock).
async fn lookup_token(store: &Store, hash: &str) -> Result<Result<CachedToken, TokenRefusal>, Problem> {
    let (cached_at, generation) = (std::time::Instant::now(), token_cache_generation());
    let row: Option<TokenUserRow> = sqlx::query_as(
        "SELECT t.id, t.expires_at, t.revoked_at, t.last_used_at, u.id AS user_id, u.email, u.active \
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(Err(TokenRefusal::Unknown)) };
    if row.revoked_at.is_some() {
        return Ok(Err(TokenRefusal::Revoked));
    }
    if !row.active {
        return Ok(Err(TokenRefusal::InactiveUser));
    }
    let bindings = bindings_of(store, &row.user_id).await?;
    let actor = Actor { name: format!("user:{}", row.email), user_id: Some(row.user_id), bindings };
    Ok(Ok(CachedToken {
        actor,
        token_id: row.id,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        cached_at,
        generation,
    }))
}

/// On an empty database, creates the first admin and a token for it; returns
/// the e-mail and the token to show once. Does nothing if any user exists, nor
/// when another process (a replica started at the same time) creates the first
/// admin concurrently: the unique e-mail lets exactly one of them create it.
/// With `force` (for `entctl admin bootstrap`), adds a new token to the existing
/// first admin or creates one.
pub async fn bootstrap_admin(
    store: &Store,
    email: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>, Problem> {
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) AS n FROM users").fetch_one(store.pool()).await?;
    if users > 0 && !force {
        return Ok(None);
    }
    let actor = Actor { user_id: None, name: "system:bootstrap".into(), ..Actor::cli() };
    let existing = if force { get_user(store, email).await? } else { None };
    let user = match existing {
        Some(user) => user,
        None => {
            let new = NewUser { email: email.into(), display_name: "Administrateur".into(), org: None };
            match create_user(store, &actor, new, now).await {
                Ok(user) => user,
                // Another process created it first: it owns the first token.
                Err(p) if p.kind == ProblemKind::Conflict && !force => return Ok(None),
                Err(p) => return Err(p),
            }
        }
    };
    grant(store, &actor, UserRole::new(&user.id, Role::Admin, None), now).await?;
    let created = create_token(store, &actor, &user.id, "bootstrap", None, now).await?;
    Ok(Some((user.email, created.token)))
}

/// Where the first start leaves the first administrator's token, readable by the owner only.
pub fn first_token_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("premier-jeton-admin.txt")
}

/// Where the first start leaves the first administrator's console set-up link (as secret as
/// a password for 24 hours), readable by the owner only.
pub fn first_link_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("premier-lien-admin.txt")
}

/// On an empty database, creates the first admin (see [`bootstrap_admin`]) and writes
/// its token to [`first_token_path`] (mode 0600), never to the logs; returns that path
/// when this process created it.
pub async fn bootstrap_first_admin(
    store: &Store,
    email: &str,
    data_dir: &std::path::Path,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let Some((_, token)) = bootstrap_admin(store, email, false, now).await.map_err(|p| anyhow::anyhow!(p.detail))?
    else {
        return Ok(None);
    };
    let path = first_token_path(data_dir);
    write_private(&path, &format!("{token}\n"))
        .map_err(|e| anyhow::anyhow!("écriture du premier jeton dans {} impossible : {e}", path.display()))?;
    Ok(Some(path))
}

/// Writes a file only its owner can read (0600 on Unix) in a folder created if needed,
/// replacing any previous one.
pub fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    files::write_private(path, content.as_bytes())
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_actor_s_name_reads_as_a_person_a_command_or_a_job() {
        assert_eq!(shown_actor("user:dan@ac-creteil.fr"), "dan@ac-creteil.fr");
        assert_eq!(
            shown_actor("cli:jdupont pour user:maire@fresnes.fr"),
            "jdupont (ligne de commande), pour maire@fresnes.fr"
        );
        assert_eq!(shown_actor("cli:root"), "root (ligne de commande)");
        assert_eq!(shown_actor("system:groupements-handover"), "tâche automatique « groupements-handover »");
    }

    #[test]
    fn a_masked_actor_keeps_the_operator_and_the_job_never_an_address() {
        assert_eq!(masked_actor("user:dan@ac-creteil.fr"), MASKED);
        assert_eq!(masked_actor("dan@ac-creteil.fr"), MASKED);
        assert_eq!(masked_actor("cli:jdupont pour user:maire@fresnes.fr"), "cli:jdupont");
        assert_eq!(masked_actor("cli:root"), "cli:root");
        assert_eq!(masked_actor("system:conventions-daily"), "system:conventions-daily");
        assert_eq!(address_in("user:dan@ac-creteil.fr"), Some("dan@ac-creteil.fr"));
        assert_eq!(address_in("cli:jdupont pour user:maire@fresnes.fr"), Some("maire@fresnes.fr"));
        assert_eq!(address_in("maire@fresnes.fr"), Some("maire@fresnes.fr"));
        assert_eq!(address_in("client:127.0.0.1"), None);
        assert_eq!(address_in("system:conventions-daily"), None);
    }
    use super::*;

    /// An actor holding `role` at `org` (`None`: platform-wide).
    fn holding(role: Role, org: Option<Org>) -> Actor {
        Actor { user_id: Some("u".into()), name: "user:u".into(), bindings: vec![Binding { role, org }] }
    }

    #[test]
    fn a_dan_grants_revokes_and_attaches_at_the_state_s_organisations_only_never_a_private_school() {
        use crate::registry::Sector;
        let school = |sector| Org { sector, ..Org::named("e", OrgKind::Etablissement, "0940001A", "École") };
        let academie = Org::named("a", OrgKind::Academie, "24", "Académie de Créteil");
        let dan = holding(Role::Dan, Some(academie.clone()));
        let admin = holding(Role::Admin, None);
        let of_the_state = [
            academie.clone(),
            Org::named("d", OrgKind::Dsden, "94", "DSDEN du Val-de-Marne"),
            school(Some(Sector::Public)),
            school(None),
        ];
        for org in &of_the_state {
            assert!(check_grantor(&dan, org).is_ok() && check_attacher(&dan, org).is_ok(), "{}", org.id);
            assert!(check_change(&dan, Some(org)).is_ok(), "{}", org.id);
        }
        let private = school(Some(Sector::Prive));
        let commune = Org::named("c", OrgKind::Commune, "94034", "Fresnes");
        for (org, said) in [(&private, "un établissement privé"), (&commune, "une commune")] {
            let refused = check_grantor(&dan, org).unwrap_err();
            assert_eq!(refused.kind, ProblemKind::Forbidden);
            assert!(refused.detail.contains(&format!("rôle dans {said} :")), "{}", refused.detail);
            assert_eq!(check_change(&dan, Some(org)).unwrap_err().detail, refused.detail);
            let refused = check_attacher(&dan, org).unwrap_err();
            assert!(refused.detail.contains(&format!("rattachée à {said} :")), "{}", refused.detail);
            assert!(check_grantor(&admin, org).is_ok() && check_attacher(&admin, org).is_ok());
        }
        assert_eq!(check_change(&dan, None).unwrap_err().kind, ProblemKind::Forbidden, "the admin role");
        assert!(check_change(&admin, None).is_ok());
    }

    #[test]
    fn the_cli_operator_is_named_by_login_then_by_system_account_never_unknown() {
        let root = || Some("root".to_string());
        let none = || None;
        assert_eq!(cli_login(Some("alice".into()), Some("bob".into()), root), "alice");
        assert_eq!(cli_login(Some(" ".into()), Some("bob".into()), root), "bob");
        assert_eq!(cli_login(Some(String::new()), None, root), "root", "an empty $USER (kubectl exec)");
        assert_eq!(cli_login(None, None, none), "anonyme");
        #[cfg(target_os = "linux")]
        assert!(system_login().is_some_and(|login| !login.is_empty()));
    }

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let (prefix, token) = generate_token();
        let (_, other) = generate_token();
        assert!(token.starts_with(&format!("{prefix}_")));
        assert_eq!(token.len(), "entcp_".len() + 8 + 1 + 64);
        assert_ne!(token, other);
        assert_eq!(hash_token(&token).len(), 64);
        assert_ne!(hash_token(&token), hash_token(&other));
    }

    #[test]
    fn roles_round_trip_and_admin_has_no_org() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(check_binding(Role::Admin, None).is_ok());
        assert!(check_binding(Role::Dan, None).is_err());
    }
}
