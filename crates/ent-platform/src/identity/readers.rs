//! Who reads the audit records about accounts and tokens: who reads the account, or the token,
//! through their own routes (`audit::KindReaders`).

use super::authz::{scope, USERS_READ};
use super::Actor;
use crate::audit::KindReaders;
use ent_kernel::store::Condition;
use std::sync::Arc;

/// The audit target kinds of an account and of an API token.
pub const USER_KIND: &str = "user";
pub const TOKEN_KIND: &str = "token";

/// An account's records (its creation with address and name, its roles, its sign-ins and
/// preferences) are read as `GET /users/{id}` reads the account: by a [`USERS_READ`] role whose
/// scope holds the account's organisation (a DPO, who reads no account, reads none), and by the
/// user themself (`GET /me`). A token's records by its owner alone, as only they (and an
/// administrator) list it.
#[derive(Debug, Clone, Copy)]
pub enum AuditReaders {
    Users,
    Tokens,
}

impl AuditReaders {
    /// Both rules, as the audit capability takes them ([`crate::audit::KindRules`]).
    pub fn all() -> Vec<Arc<dyn KindReaders>> {
        vec![Arc::new(AuditReaders::Users), Arc::new(AuditReaders::Tokens)]
    }
}

impl KindReaders for AuditReaders {
    fn kinds(&self) -> &'static [&'static str] {
        match self {
            AuditReaders::Users => &[USER_KIND],
            AuditReaders::Tokens => &[TOKEN_KIND],
        }
    }

    fn readable(&self, actor: &Actor) -> Option<Condition> {
        if actor.is_admin() {
            return None;
        }
        Some(match self {
            AuditReaders::Users => Condition::any(vec![own(actor, "audit_log.target_id = ?"), in_read_scope(actor)]),
            // Correlated on the token's primary key: found by index, never a scan of the tokens.
            AuditReaders::Tokens => {
                own(actor, "EXISTS (SELECT 1 FROM api_tokens t WHERE t.id = audit_log.target_id AND t.user_id = ?)")
            }
        })
    }
}

/// The records about an account whose organisation is in the actor's [`USERS_READ`] scope.
fn in_read_scope(actor: &Actor) -> Condition {
    let mut cond = Condition::default();
    // Correlated on the account's primary key: found by index, never a scan of the users.
    cond.and_wrapped("EXISTS (SELECT 1 FROM users u WHERE u.id = audit_log.target_id AND ", in_users_read(actor), ")");
    cond
}

/// The accounts (rows `u` of `users`) whose organisation is in the actor's [`USERS_READ`] scope.
fn in_users_read(actor: &Actor) -> Condition {
    let orgs = scope(actor, &USERS_READ).condition().unwrap_or_default();
    let mut cond = Condition::default();
    cond.and_wrapped("u.org_id IN (SELECT id FROM orgs WHERE ", orgs, ")");
    cond
}

/// The accounts (rows `u` of `users`) `actor` reads as `GET /users/{id}` reads them: its own,
/// and those of its [`USERS_READ`] scope but pending invitees ([`super::not_pending`]); `None`:
/// every one (an administrator). The audit log shows the address of these accounts alone.
pub fn readable_accounts(actor: &Actor) -> Option<Condition> {
    if actor.is_admin() {
        return None;
    }
    let mut scoped = in_users_read(actor);
    scoped.push(&super::not_pending("u.id"), &[]);
    Some(Condition::any(vec![own(actor, "u.id = ?"), scoped]))
}

/// The rows of `actor`'s own account: `template` with one `?` for its id (none without one).
fn own(actor: &Actor, template: &str) -> Condition {
    let Some(user) = &actor.user_id else { return Condition::never() };
    let mut c = Condition::default();
    c.push(template, &[user]);
    c
}
