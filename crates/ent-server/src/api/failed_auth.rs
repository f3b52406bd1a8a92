//! Failed bearer authentications: each is written to the audit log (the presented
//! secret never is: only the token id `entcp_<prefix>` or 8 hex of its SHA-256), and
//! counted per client address and per token id by a [`Throttle`] kept in the database
//! (shared by every replica, kept across restarts); a blocked address gets 429 before
//! its token is even looked up.

use super::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use ent_kernel::error::{Problem, ProblemKind};
pub use ent_kernel::http::client_address;
use ent_kernel::kernel::roles::Action;
use ent_kernel::throttle::address_key;
use ent_platform::audit::{self, Target};
use ent_platform::identity::{hash_token, TokenRefusal};

/// Why a request carried no usable credentials (recorded, never shown to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An `Authorization` header that is not one `Bearer <token>`.
    MalformedHeader,
    /// A token refused by [`ent_platform::identity::check_token`].
    Token(TokenRefusal),
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::MalformedHeader => "malformed_header",
            Failure::Token(refusal) => refusal.as_str(),
        }
    }
}

/// What identifies a presented token without revealing it, and whether that is a
/// token id (`entcp_<8 hex>`, shared by every guess at one token) or a hash prefix.
fn token_label(token: &str) -> (String, bool) {
    let id = token.strip_prefix("entcp_").and_then(|rest| rest.split_once('_')).map(|(prefix, _)| prefix);
    match id {
        Some(prefix) if prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (format!("entcp_{}", prefix.to_ascii_lowercase()), true)
        }
        _ => (format!("sha256:{}", &hash_token(token)[..8]), false),
    }
}

/// 429 with `Retry-After`, before anything is looked up, if `client` is blocked (the
/// store's problem if the count cannot be read: never let an attempt through unseen).
pub async fn blocked(state: &AppState, client: &str) -> Option<Response> {
    match state.auth_throttle.retry_after(&address_key(client), state.clock.now()).await {
        Ok(seconds) => Some(too_many("depuis cette adresse", seconds?)),
        Err(problem) => Some(problem.into_response()),
    }
}

fn too_many(origin: &str, seconds: u64) -> Response {
    let detail = format!("trop d'échecs d'authentification {origin} : réessayez dans {seconds} s");
    let mut response = Problem::new(ProblemKind::TooManyRequests, detail).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Records and counts a failure, then answers 401 (429 when the token id is blocked).
pub async fn refuse(
    state: &AppState,
    client: &str,
    action: &'static Action,
    failure: Failure,
    token: Option<&str>,
) -> Response {
    let now = state.clock.now();
    let (label, is_id) = token.map(token_label).unwrap_or_else(|| ("-".into(), false));
    let id_key = is_id.then(|| format!("token:{label}"));
    let counted = async {
        let id_blocked = match &id_key {
            Some(key) => state.auth_throttle.retry_after(key, now).await?,
            None => None,
        };
        let mut tripped = state.auth_throttle.record_failure(&address_key(client), now).await?;
        if let Some(key) = &id_key {
            tripped |= state.auth_throttle.record_failure(key, now).await?;
        }
        Ok::<_, Problem>((id_blocked, tripped))
    };
    let (id_blocked, tripped) = match counted.await {
        Ok(counted) => counted,
        Err(problem) => return problem.into_response(),
    };
    tracing::warn!(client, reason = failure.reason(), token = %label, action = action.name, "authentication failed");
    record(state, client, "auth.failed", &label, failure.reason(), action).await;
    if tripped {
        record(state, client, "auth.throttled", &label, failure.reason(), action).await;
    }
    match id_blocked {
        Some(seconds) => too_many("avec cet identifiant de jeton", seconds),
        None => super::unauthorized("jeton invalide, expiré ou révoqué"),
    }
}

/// One audit record (actor `client:<address>`, target the token label); a failure to
/// write it is logged, the caller still gets its 401.
async fn record(state: &AppState, client: &str, what: &str, label: &str, reason: &str, action: &'static Action) {
    let actor = format!("client:{client}");
    let target = Target::new("token", label, None);
    let summary = serde_json::json!({ "reason": reason, "route_action": action.name });
    let written = async {
        let mut tx = state.store.begin_write().await?;
        audit::record(&mut tx, state.store.backend(), &actor, what, &target, summary, state.clock.now()).await?;
        tx.commit().await?;
        Ok::<_, Problem>(())
    };
    if let Err(problem) = written.await {
        tracing::error!(error = %problem, "failed authentication not audited");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_labelled_by_its_id_or_a_short_hash_never_its_secret() {
        let secret = "0".repeat(64);
        assert_eq!(token_label(&format!("entcp_ABCD1234_{secret}")), ("entcp_abcd1234".into(), true));
        let (label, is_id) = token_label("mot-de-passe");
        assert!(label.starts_with("sha256:") && label.len() == 15 && !is_id, "{label}");
        assert!(!token_label("entcp_zz_x").1);
    }
}
