//! Console sessions, stored in the database: the cookie carries an opaque random id,
//! the table its SHA-256, the user, the session's CSRF token (synchronizer pattern)
//! and when it was opened and last used. A session ends after `idle` without use,
//! `absolute` after sign-in, at sign-out, or when revoked (password change, user page).

use super::password::LinkPurpose;
use super::{bindings_of, hash_token, Actor};
use crate::audit::{self, Target};
use chrono::{DateTime, Duration, Utc};
use ent_kernel::config::ConsoleConfig;
use ent_kernel::error::Problem;
use ent_kernel::store::{timestamp, Flag, Store, Tx};

/// How long a session lives.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Without any request.
    pub idle: Duration,
    /// After sign-in, whatever the activity.
    pub absolute: Duration,
}

impl Timeouts {
    pub fn of(config: &ConsoleConfig) -> Timeouts {
        Timeouts {
            idle: Duration::minutes(i64::from(config.idle_minutes)),
            absolute: Duration::hours(i64::from(config.absolute_hours)),
        }
    }
}

/// 256 random bits from the OS, hex: session ids, CSRF tokens, one-time links.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}

/// A live session and the actor it stands for.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie's id: how the session is named once opened.
    pub id_hash: String,
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub csrf_token: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub actor: Actor,
}

/// A session as a user's page lists it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct SessionInfo {
    pub id_hash: String,
    pub client: String,
    pub created_at: String,
    pub last_seen_at: String,
}

/// Opens a session for `user_id` (signed in from `client`), audited as a sign-in with
/// `method` (`password`, `oidc`); returns the cookie's secret id and the session.
/// `replacing` (the id presented at sign-in, if any) is closed: the id rotates. An invitee who
/// signs in has acted ([`super::invite_user`]).
pub async fn open(
    store: &Store,
    user_id: &str,
    client: &str,
    method: &str,
    replacing: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    let secret = random_secret();
    let at = timestamp(now);
    let mut tx = store.begin_write().await?;
    if let Some(old) = replacing {
        end(&mut tx, &hash_token(old), now).await?;
    }
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, user_id, csrf_token, client, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash_token(&secret))
    .bind(user_id)
    .bind(random_secret())
    .bind(client)
    .bind(&at)
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    let email: String =
        sqlx::query_scalar("SELECT email FROM users WHERE id = $1").bind(user_id).fetch_one(&mut *tx).await?;
    let actor = format!("user:{email}");
    let mut summary = serde_json::json!({ "method": method, "client": client });
    // Signed in (through the provider, say): the invitation's link to choose a first password
    // has served its turn; left live, whoever holds the e-mail could still set one.
    let invitations = super::password::spend_links(&mut tx, user_id, Some(LinkPurpose::Setup), now).await?;
    if invitations > 0 {
        summary["invitation_links_spent"] = invitations.into();
    }
    record(&mut tx, store, Event { actor: &actor, action: "console.sign_in", user_id, summary }, now).await?;
    super::settle_invitee(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(secret)
}

/// One audit record about a user's sessions.
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub user_id: &'a str,
    pub summary: serde_json::Value,
}

/// Appends `event` to the audit chain in `tx`, about the user (no organisation scope).
pub async fn record(tx: &mut Tx, store: &Store, event: Event<'_>, now: DateTime<Utc>) -> Result<(), Problem> {
    let target = Target::new("user", event.user_id, None);
    audit::record(tx, store.backend(), event.actor, event.action, &target, event.summary, now).await
}

/// What a session lookup reads.
#[derive(sqlx::FromRow)]
struct SessionRow {
    id_hash: String,
    user_id: String,
    csrf_token: String,
    created_at: String,
    last_seen_at: String,
    revoked_at: Option<String>,
    email: String,
    display_name: String,
    #[sqlx(try_from = "Flag")]
    active: bool,
}

/// The live session of a cookie's id, its last use recorded (at most once a minute).
pub async fn find(
    store: &Store,
    secret: &str,
    timeouts: Timeouts,
    now: DateTime<Utc>,
) -> Result<Option<Session>, Problem> {
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT s.id_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.revoked_at, \
         u.email, u.display_name, u.active \
         FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1",
    )
    .bind(hash_token(secret))
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row.filter(|r| r.revoked_at.is_none() && r.active) else { return Ok(None) };
    if row.last_seen_at <= timestamp(now - timeouts.idle) || row.created_at <= timestamp(now - timeouts.absolute) {
        return Ok(None);
    }
    let mut last_seen_at = row.last_seen_at;
    if last_seen_at < timestamp(now - Duration::minutes(1)) {
        last_seen_at = timestamp(now);
        sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(&last_seen_at)
            .bind(&row.id_hash)
            .execute(store.pool())
            .await?;
    }
    let bindings = bindings_of(store, &row.user_id).await?;
    let actor = Actor { user_id: Some(row.user_id.clone()), name: format!("user:{}", row.email), bindings };
    Ok(Some(Session {
        id_hash: row.id_hash,
        user_id: row.user_id,
        email: row.email,
        display_name: row.display_name,
        csrf_token: row.csrf_token,
        created_at: row.created_at,
        last_seen_at,
        actor,
    }))
}

/// Deletes the pending OpenID Connect logins (pre-sessions) begun more than
/// [`super::oidc::PENDING_LIFETIME`] before `now`: their callback is refused anyway.
pub async fn purge_pending_logins(tx: &mut Tx, now: DateTime<Utc>) -> Result<u64, Problem> {
    let deleted = sqlx::query("DELETE FROM console_oidc_pending WHERE created_at < $1")
        .bind(timestamp(now - super::oidc::PENDING_LIFETIME))
        .execute(&mut **tx)
        .await?;
    Ok(deleted.rows_affected())
}

/// Deletes the sessions that can no longer be used (signed out, revoked, idle past `idle`
/// or older than `absolute` at `now`), with the OpenID Connect ID token kept for their
/// sign-out, and the expired pending OpenID Connect logins; returns how many sessions.
pub async fn purge_ended(store: &Store, timeouts: Timeouts, now: DateTime<Utc>) -> Result<u64, Problem> {
    const ENDED: &str = "revoked_at IS NOT NULL OR last_seen_at <= $1 OR created_at <= $2";
    let (idle, absolute) = (timestamp(now - timeouts.idle), timestamp(now - timeouts.absolute));
    let mut tx = store.begin_write().await?;
    purge_pending_logins(&mut tx, now).await?;
    sqlx::query(&format!(
        "DELETE FROM console_oidc_sessions WHERE session_hash IN (SELECT id_hash FROM console_sessions WHERE {ENDED})"
    ))
    .bind(&idle)
    .bind(&absolute)
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query(&format!("DELETE FROM console_sessions WHERE {ENDED}"))
        .bind(&idle)
        .bind(&absolute)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(deleted.rows_affected())
}

/// Ends one session (sign-out), audited.
pub async fn close(store: &Store, session: &Session, now: DateTime<Utc>) -> Result<(), Problem> {
    let mut tx = store.begin_write().await?;
    end(&mut tx, &session.id_hash, now).await?;
    let event = Event {
        actor: &session.actor.name,
        action: "console.sign_out",
        user_id: &session.user_id,
        summary: serde_json::json!({}),
    };
    record(&mut tx, store, event, now).await?;
    tx.commit().await?;
    Ok(())
}

async fn end(tx: &mut Tx, id_hash: &str, now: DateTime<Utc>) -> Result<u64, Problem> {
    let done = sqlx::query("UPDATE console_sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL")
        .bind(timestamp(now))
        .bind(id_hash)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Ends every session of `user_id` but `except` (an id hash) in `tx`; how many ended.
pub async fn revoke_all(tx: &mut Tx, user_id: &str, except: Option<&str>, now: DateTime<Utc>) -> Result<u64, Problem> {
    let done = sqlx::query(
        "UPDATE console_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id_hash <> $3",
    )
    .bind(timestamp(now))
    .bind(user_id)
    .bind(except.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Ends every session of a user (from the user's page), audited; how many ended.
pub async fn revoke_user_sessions(
    store: &Store,
    actor: &Actor,
    user_id: &str,
    except: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, Problem> {
    let mut tx = store.begin_write().await?;
    let ended = revoke_all(&mut tx, user_id, except, now).await?;
    let summary = serde_json::json!({ "sessions_ended": ended });
    record(&mut tx, store, Event { actor: &actor.name, action: "console.sessions_revoked", user_id, summary }, now)
        .await?;
    tx.commit().await?;
    Ok(ended)
}

/// The live sessions of a user, most recently used first.
pub async fn list_live(
    store: &Store,
    user_id: &str,
    timeouts: Timeouts,
    now: DateTime<Utc>,
) -> Result<Vec<SessionInfo>, Problem> {
    Ok(sqlx::query_as(
        "SELECT id_hash, client, created_at, last_seen_at FROM console_sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND last_seen_at > $2 AND created_at > $3 \
         ORDER BY last_seen_at DESC",
    )
    .bind(user_id)
    .bind(timestamp(now - timeouts.idle))
    .bind(timestamp(now - timeouts.absolute))
    .fetch_all(store.pool())
    .await?)
}
