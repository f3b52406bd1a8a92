//! Local passwords: argon2id hashes with the parameters OWASP recommends (19 MiB,
//! two passes, one lane), the strength rules, and the one-time links (password reset,
//! first set-up) that let a person choose one. A password change ends every session.

use super::{get_user, sessions, Actor, User};
use crate::audit::{self, Target};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Duration, Utc};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::{timestamp, Store, Tx};

/// Fewer characters are refused.
pub const MIN_LENGTH: usize = 12;
/// More are refused too (hashing cost is bounded).
pub const MAX_LENGTH: usize = 256;

/// Passwords refused whatever their length: the most common ones of at least
/// [`MIN_LENGTH`] characters, compared without case.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "azertyuiopqsdf",
    "azertyuiop123",
    "qwertyuiop123",
    "motdepasse123",
    "motdepasse1234",
    "mot de passe123",
    "password1234",
    "passwordpassword",
    "password123456",
    "iloveyou1234",
    "soleil123456",
    "doudou123456",
    "bonjour123456",
    "administrateur",
    "administrator",
    "azertyazerty",
    "qwertyqwerty",
    "000000000000",
    "111111111111",
    "abcdefghijkl",
    "abcdef123456",
    "changeme1234",
    "bienvenue1234",
    "education123",
    "education2024",
    "education2025",
    "education2026",
];

/// The argon2id hasher with the OWASP parameters.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system provides randomness");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a salt");
    hasher().hash_password(password.as_bytes(), &salt).expect("argon2 hashes any password").to_string()
}

/// Whether `password` matches the PHC string `hash` (false for a malformed one).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Why a new password is refused, in French, or nothing.
pub fn weakness(password: &str, email: &str) -> Option<String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Some(format!("le mot de passe doit compter au moins {MIN_LENGTH} caractères"));
    }
    if length > MAX_LENGTH {
        return Some(format!("le mot de passe compte au plus {MAX_LENGTH} caractères"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) || password.chars().all(|c| password.starts_with(c)) {
        return Some("ce mot de passe est trop courant : choisissez-en un autre".into());
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if local.chars().count() >= 4 && lower.contains(&local) {
        return Some("le mot de passe ne doit pas contenir votre adresse".into());
    }
    None
}

/// [`weakness`] as a 422 on the `password` field.
pub fn check_strength(password: &str, email: &str) -> Result<(), Problem> {
    match weakness(password, email) {
        Some(why) => Err(Problem::invalid_field("password", why)),
        None => Ok(()),
    }
}

/// Hashes off the async runtime: argon2 takes tens of milliseconds by design.
async fn hash_blocking(password: &str) -> Result<String, Problem> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("hachage interrompu : {e}")))
}

/// Who chooses a new password: the account's owner (« Mon compte », a reset link), who takes the
/// account back from whoever held the old one (its API tokens are revoked too), or an operator
/// for them (an administrator, the CLI: the tokens are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    Owner,
    Operator,
}

/// Sets a user's password (checked for strength), ends all their sessions (and, chosen by the
/// owner, revokes their API tokens), audited.
pub async fn set_password(
    store: &Store,
    actor: &Actor,
    user_id: &str,
    password: &str,
    by: ChosenBy,
    now: DateTime<Utc>,
) -> Result<User, Problem> {
    let user = get_user(store, user_id).await?.ok_or_else(|| Problem::not_found("utilisateur introuvable"))?;
    check_strength(password, &user.email)?;
    let hash = hash_blocking(password).await?;
    let mut tx = store.begin_write().await?;
    store_password(&mut tx, store, actor, &user, &hash, by, now).await?;
    tx.commit().await?;
    super::forget_authenticated_tokens();
    Ok(user)
}

/// The write of a new password hash in `tx`: every link of the user still live spent (an
/// earlier reset, an invitation: a mailbox read later opens nothing), sessions ended and, when
/// the owner replaces a password, API tokens revoked (whoever held the old one may have minted
/// one), audited. The caller empties the token cache once committed.
async fn store_password(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    user: &User,
    hash: &str,
    by: ChosenBy,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let replaced: Option<i64> = sqlx::query_scalar("SELECT 1 FROM user_passwords WHERE user_id = $1")
        .bind(&user.id)
        .fetch_optional(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO user_passwords (user_id, hash, changed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, changed_at = excluded.changed_at",
    )
    .bind(&user.id)
    .bind(hash)
    .bind(timestamp(now))
    .execute(&mut **tx)
    .await?;
    let links = spend_links(tx, &user.id, None, now).await?;
    let ended = sessions::revoke_all(tx, &user.id, None, now).await?;
    // A first password (an invitation, the first administrator's link) takes nothing back.
    let tokens = match (by, replaced) {
        (ChosenBy::Owner, Some(_)) => super::revoke_user_tokens(tx, &user.id, now).await?,
        _ => 0,
    };
    let target = Target::new("user", &user.id, user.org.as_ref().map(|o| o.id.as_str()));
    let summary = serde_json::json!({ "sessions_ended": ended, "links_spent": links, "tokens_revoked": tokens });
    audit::record(tx, store.backend(), actor, "users.password", &target, summary, now).await
}

/// Spends every link of the user still live, or only those of `purpose` (a new password, a
/// deactivated account: a link in a mailbox opens nothing after it); how many were.
pub(super) async fn spend_links(
    tx: &mut Tx,
    user_id: &str,
    purpose: Option<LinkPurpose>,
    now: DateTime<Utc>,
) -> Result<u64, Problem> {
    let of_purpose = if purpose.is_some() { " AND purpose = $3" } else { "" };
    let sql = format!("UPDATE one_time_links SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL{of_purpose}");
    let mut query = sqlx::query(&sql).bind(timestamp(now)).bind(user_id);
    if let Some(purpose) = purpose {
        query = query.bind(purpose.as_str());
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

/// Spends every live link of `user` (their access cut from the console: a link still in a
/// mailbox would let them choose a password and sign in again), audited when any was; how many.
pub async fn spend_user_links(store: &Store, actor: &Actor, user: &User, now: DateTime<Utc>) -> Result<u64, Problem> {
    let mut tx = store.begin_write().await?;
    let spent = spend_links(&mut tx, &user.id, None, now).await?;
    if spent > 0 {
        let target = Target::new("user", &user.id, user.org.as_ref().map(|o| o.id.as_str()));
        let summary = serde_json::json!({ "links_spent": spent });
        audit::record(&mut tx, store.backend(), actor, "users.links_spent", &target, summary, now).await?;
    }
    tx.commit().await?;
    Ok(spent)
}

/// A PHC string no password matches, verified when the login is unknown so that an
/// unknown login takes as long as a wrong password.
static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password("leurre, jamais accepté"));

/// Whether the user signs in with a password of their own (not only through the identity provider).
pub async fn has_password(store: &Store, user_id: &str) -> Result<bool, Problem> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM user_passwords WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(store.pool())
        .await?;
    Ok(found.is_some())
}

/// The id of the active user whose e-mail and password these are.
pub async fn check_password(store: &Store, email: &str, password: &str) -> Result<Option<String>, Problem> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT u.id, p.hash FROM users u JOIN user_passwords p ON p.user_id = u.id \
         WHERE u.email = $1 AND u.active = 1",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(store.pool())
    .await?;
    let (user_id, hash) = match row {
        Some((id, hash)) => (Some(id), hash),
        None => (None, DECOY.clone()),
    };
    if password.chars().count() > MAX_LENGTH {
        return Ok(None);
    }
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("vérification interrompue : {e}")))?;
    Ok(user_id.filter(|_| matches))
}

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// « Mot de passe oublié » : sent by e-mail.
    Reset,
    /// The first administrator's set-up link, printed at first start.
    Setup,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Reset => "reset",
            LinkPurpose::Setup => "setup",
        }
    }
}

/// Issues a one-time link's secret for `user_id` (stored hashed), valid for `valid`; the
/// user's earlier live links of the same purpose are spent (one « mot de passe oublié » link
/// live at a time, the last one sent; a reset request leaves a pending invitation alone).
pub async fn issue_link(
    tx: &mut Tx,
    user_id: &str,
    purpose: LinkPurpose,
    valid: Duration,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    spend_links(tx, user_id, Some(purpose), now).await?;
    let secret = sessions::random_secret();
    sqlx::query(
        "INSERT INTO one_time_links (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(super::hash_token(&secret))
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(timestamp(now))
    .bind(timestamp(now + valid))
    .execute(&mut **tx)
    .await?;
    Ok(secret)
}

/// The condition on `one_time_links` of a live link: unspent, unexpired, of an active
/// account; its token hash bound as `$n`, the moment as `$n+1`.
fn live_link(n: usize) -> String {
    format!(
        "token_hash = ${n} AND used_at IS NULL AND expires_at > ${} \
         AND user_id IN (SELECT id FROM users WHERE active = 1)",
        n + 1
    )
}

/// The user a live link stands for (see [`live_link`]): none for a link of an account
/// deactivated since, exactly as for an expired one.
pub async fn link_user(store: &Store, secret: &str, now: DateTime<Utc>) -> Result<Option<User>, Problem> {
    let user_id: Option<String> =
        sqlx::query_scalar(&format!("SELECT user_id FROM one_time_links WHERE {}", live_link(1)))
            .bind(super::hash_token(secret))
            .bind(timestamp(now))
            .fetch_optional(store.pool())
            .await?;
    match user_id {
        Some(id) => get_user(store, &id).await,
        None => Ok(None),
    }
}

/// Spends a live link and sets the password it was issued for, in one transaction
/// (a link works once); every session of the user ends, and an invitee has acted
/// ([`super::invite_user`]). 404 when the link is not live.
pub async fn reset_with_link(store: &Store, secret: &str, password: &str, now: DateTime<Utc>) -> Result<User, Problem> {
    let gone = || Problem::not_found("ce lien n'est plus valable : demandez-en un nouveau");
    let user = link_user(store, secret, now).await?.ok_or_else(gone)?;
    check_strength(password, &user.email)?;
    let hash = hash_blocking(password).await?;
    let mut tx = store.begin_write().await?;
    // Checked again in the transaction: a link spent, or its account deactivated, meanwhile.
    let spent = sqlx::query(&format!("UPDATE one_time_links SET used_at = $1 WHERE {}", live_link(2)))
        .bind(timestamp(now))
        .bind(super::hash_token(secret))
        .bind(timestamp(now))
        .execute(&mut *tx)
        .await?;
    if spent.rows_affected() == 0 {
        return Err(gone());
    }
    let actor = Actor { user_id: Some(user.id.clone()), name: format!("user:{}", user.email), bindings: vec![] };
    store_password(&mut tx, store, &actor, &user, &hash, ChosenBy::Owner, now).await?;
    super::settle_invitee(&mut tx, &user.id).await?;
    tx.commit().await?;
    super::forget_authenticated_tokens();
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_with_the_owasp_parameters_and_verifies_only_its_password() {
        let hash = hash_password("cheval correct pile agrafe");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password(&hash, "cheval correct pile agrafe"));
        assert!(!verify_password(&hash, "cheval correct pile agrafE"));
        assert!(!verify_password("pas un hachage", "x"));
        assert_ne!(hash, hash_password("cheval correct pile agrafe"), "a fresh salt each time");
    }

    #[test]
    fn short_common_or_address_passwords_are_refused() {
        assert!(weakness("court", "a@b.fr").is_some_and(|w| w.contains("12 caractères")));
        assert!(weakness("MotDePasse123", "a@b.fr").is_some_and(|w| w.contains("courant")));
        assert!(weakness("aaaaaaaaaaaaaaa", "a@b.fr").is_some());
        assert!(weakness("claire.martin-2026!", "claire.martin@ac-creteil.fr").is_some());
        assert!(weakness(&"x".repeat(MAX_LENGTH + 1), "a@b.fr").is_some());
        assert_eq!(weakness("cheval correct pile agrafe", "a@b.fr"), None);
    }
}
