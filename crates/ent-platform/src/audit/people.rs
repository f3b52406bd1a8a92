//! The people the log names, as its reader may read them. Each record gives its actor's name
//! from the directory (`actor_name`); a scoped reader reads a person's address (in `actor`, or
//! a whole value of `summary`: an invitee's, a token owner's) only where it reads the account
//! ([`crate::identity::readers::readable_accounts`]: its own, those of its `users.read` scope),
//! and `(masqué)` otherwise, an operator by login ([`masked_actor`]), as the conventions show
//! them to their DPO and auditeur. Nor does the `actor` filter find what the reader does not read.
//! Other records that name people (a tenant's events, its gate override, the RGPD logs' entries)
//! are shown by the same rule through [`Shown`] ([`mask_people`] for a list of names in place).

use super::AuditRecord;
use crate::identity::readers::readable_accounts;
use crate::identity::{address_in, masked_actor, Actor};
use ent_kernel::error::Problem;
use ent_kernel::store::{Condition, Store};
use serde_json::Value;
use sqlx::FromRow;
use std::collections::{HashMap, HashSet};

/// The records `actor` (the `actor` filter's value) names: none for an address of an account
/// the reader does not read (`accounts`, rows `u` of `users`), as for an address that never
/// acted; `None` for a name that carries no address (a command, a job).
pub(super) fn acted_by(actor: &str, accounts: &Condition) -> Option<Condition> {
    let address = address_in(actor)?;
    let mut account = Condition::default();
    account.push("u.email = ?", &[address]);
    account.and(accounts.clone());
    let mut cond = Condition::default();
    // On the users' unique e-mail: found by index.
    cond.and_wrapped("EXISTS (SELECT 1 FROM users u WHERE ", account, ")");
    Some(cond)
}

/// Gives each record its actor's name, and, for a scoped reader (`accounts`: the accounts whose
/// address it reads; `None`: every one), masks the other addresses of its actor and summary.
pub(super) async fn present(
    store: &Store,
    accounts: Option<&Condition>,
    items: &mut [AuditRecord],
) -> Result<(), Problem> {
    let actors: Vec<String> = items.iter().filter_map(|r| address_in(&r.actor)).map(str::to_string).collect();
    let names = names_of(store, actors.clone()).await?;
    let mut addresses = actors;
    if accounts.is_some() {
        for r in items.iter_mut() {
            each_address(&mut r.summary, &mut |a| addresses.push(a.to_string()));
        }
    }
    let shown = Shown::of(store, accounts, addresses).await?;
    for r in items.iter_mut() {
        r.actor_name = address_in(&r.actor).and_then(|a| names.get(a).cloned());
        r.actor = shown.name(&r.actor);
        each_person(&mut r.summary, &mut |s| *s = shown.name(s));
    }
    Ok(())
}

/// Masks each of `names` (actors' names, bare addresses) as [`Shown`] shows it to `reader`.
pub async fn mask_people(store: &Store, reader: &Actor, names: Vec<&mut String>) -> Result<(), Problem> {
    let shown = Shown::to(store, reader, names.iter().map(|n| n.as_str())).await?;
    for name in names {
        *name = shown.name(name);
    }
    Ok(())
}

/// The addresses a reader reads among those a page names, and the rule that shows a name to it:
/// the address of an account it reads ([`readable_accounts`]: its own, those of its `users.read`
/// scope; every one for an administrator), [`masked_actor`] otherwise. The audit log's rule, for
/// every page that names people (a tenant's events and gate override too).
pub struct Shown {
    /// `None`: every address is read.
    readable: Option<HashSet<String>>,
}

impl Shown {
    /// What `reader` reads of the people `names` name (actors' names or bare addresses).
    pub async fn to<'n>(
        store: &Store,
        reader: &Actor,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<Shown, Problem> {
        let addresses = names.into_iter().filter_map(address_in).map(str::to_string).collect();
        Shown::of(store, readable_accounts(reader).as_ref(), addresses).await
    }

    /// Of `addresses`, those of the accounts `accounts` selects (`None`: every one).
    async fn of(store: &Store, accounts: Option<&Condition>, addresses: Vec<String>) -> Result<Shown, Problem> {
        let readable = match accounts {
            Some(accounts) => Some(readable_of(store, addresses, accounts).await?),
            None => None,
        };
        Ok(Shown { readable })
    }

    /// `name` (an actor's name or a bare address) as the reader reads it.
    pub fn name(&self, name: &str) -> String {
        let hidden = |readable: &HashSet<String>| address_in(name).is_some_and(|a| !readable.contains(a));
        match &self.readable {
            Some(readable) if hidden(readable) => masked_actor(name),
            _ => name.to_string(),
        }
    }
}

/// The address each whole string value of `summary` (at any depth) names
/// ([`each_person`]), to `f`.
fn each_address(summary: &mut Value, f: &mut impl FnMut(&str)) {
    each_person(summary, &mut |s| {
        if let Some(address) = address_in(s) {
            f(address);
        }
    });
}

/// Calls `f` on each string value of `value`, at any depth, that names a person: an actor's
/// name with an address or a bare address, not a text that mentions one (whitespace in the
/// address: a comment, a reason).
fn each_person(value: &mut Value, f: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(s) if address_in(s).is_some_and(|a| !a.contains(char::is_whitespace)) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| each_person(v, f)),
        Value::Object(fields) => fields.values_mut().for_each(|v| each_person(v, f)),
        _ => {}
    }
}

/// The directory name of each account of `addresses`, by address; none where that name is
/// itself an address (as the conventions' `created_by_name`). What a page shows of a person to a
/// reader who is given names, not addresses (a ticket's requester reading who answered).
pub async fn names_of(store: &Store, addresses: Vec<String>) -> Result<HashMap<String, String>, Problem> {
    let mut names = HashMap::new();
    for cond in Condition::in_chunks("email", addresses) {
        let sql = format!("SELECT email, display_name FROM users WHERE {}", cond.sql());
        for row in cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
            let (email, name) = <(String, String)>::from_row(&row)?;
            if !name.contains('@') {
                names.insert(email, name);
            }
        }
    }
    Ok(names)
}

/// Those of `addresses` that are the address of an account of `accounts`.
async fn readable_of(store: &Store, addresses: Vec<String>, accounts: &Condition) -> Result<HashSet<String>, Problem> {
    let mut readable = HashSet::new();
    for mut cond in Condition::in_chunks("u.email", addresses) {
        cond.and(accounts.clone());
        let sql = format!("SELECT u.email FROM users u WHERE {}", cond.sql());
        for row in cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
            readable.insert(<(String,)>::from_row(&row)?.0);
        }
    }
    Ok(readable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::MASKED;
    use serde_json::json;

    #[test]
    fn a_summary_s_people_are_its_whole_addresses_not_the_texts_that_mention_one() {
        let mut summary = json!({
            "email": "invite@fresnes.fr",
            "by": "cli:jdupont pour user:maire@fresnes.fr",
            "changes": { "contact": { "before": "user:a@b.fr", "after": null } },
            "comment": "écrire à a@b.fr",
            "count": 3,
        });
        let mut seen = Vec::new();
        each_address(&mut summary, &mut |a| seen.push(a.to_string()));
        seen.sort();
        assert_eq!(seen, ["a@b.fr", "invite@fresnes.fr", "maire@fresnes.fr"]);
        each_person(&mut summary, &mut |s| *s = masked_actor(s));
        assert_eq!(
            summary,
            json!({
                "email": MASKED,
                "by": "cli:jdupont",
                "changes": { "contact": { "before": MASKED, "after": null } },
                "comment": "écrire à a@b.fr",
                "count": 3,
            })
        );
    }
}
