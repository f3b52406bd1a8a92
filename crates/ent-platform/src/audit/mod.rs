//! Append-only audit chain: every state change writes a record in the same
//! transaction; each record carries the previous record's hash and its own,
//! SHA-256 over a canonical encoding, so any edited or deleted row is detected.
//!
//! One way in: [`record`] (or [`record_in_copy`] inside a PostgreSQL bulk load) with
//! an [`AuditActor`] (an [`Actor`] or an actor name such as `system:<job>`), an action,
//! and an [`Audited`] target (an entity, or a [`Target`] named by its parts).

mod people;
pub mod readers;
pub mod routes;
pub mod state;

use crate::identity::Actor;
use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::{self, timestamp, Backend, CopyTx, JsonText, SerialLock, Store};
use ent_kernel::store::{page_size, Condition, Page};
pub use people::{mask_people, names_of, Shown};
pub use readers::{about_orgs, KindReaders, KindRules, Reader};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::FromRow;
pub use state::AuditState;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A change to record (built only by [`record`] and [`record_in_copy`]).
struct Change<'a> {
    /// Who: `user:<email>`, `cli:<login>` or `system:<job>`.
    actor: &'a str,
    /// What: `orgs.create`, `users.update`, `imports.annuaire`, ...
    action: &'a str,
    target_kind: &'a str,
    target_id: &'a str,
    /// The organisation the change concerns, for scoped reading of the log.
    scope_org_id: Option<&'a str>,
    summary: serde_json::Value,
}

/// Who the audit log names for a change: an [`Actor`] (its `name`), or the name itself
/// where no actor is at hand (`system:<job>`, `anonymous`, `cli:<login>`).
pub trait AuditActor {
    fn audit_name(&self) -> &str;
}

impl AuditActor for Actor {
    fn audit_name(&self) -> &str {
        &self.name
    }
}

impl AuditActor for str {
    fn audit_name(&self) -> &str {
        self
    }
}

impl AuditActor for String {
    fn audit_name(&self) -> &str {
        self
    }
}

impl<T: AuditActor + ?Sized> AuditActor for &T {
    fn audit_name(&self) -> &str {
        (**self).audit_name()
    }
}

/// What the audit log records changes to: a kind of entity, its id, and the
/// organisation whose scope may read the record.
pub trait Audited {
    fn target_kind(&self) -> &'static str;
    fn target_id(&self) -> &str;
    fn scope_org_id(&self) -> Option<&str>;
}

/// A target named by its parts, where the entity itself is not at hand.
pub struct Target<'a> {
    pub kind: &'static str,
    pub id: &'a str,
    pub scope_org_id: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn new(kind: &'static str, id: &'a str, scope_org_id: Option<&'a str>) -> Self {
        Target { kind, id, scope_org_id }
    }
}

impl Audited for Target<'_> {
    fn target_kind(&self) -> &'static str {
        self.kind
    }
    fn target_id(&self) -> &str {
        self.id
    }
    fn scope_org_id(&self) -> Option<&str> {
        self.scope_org_id
    }
}

/// Records `action` by `actor` on `entity` in the transaction's audit chain.
/// `tx` is a connection inside a transaction (a [`Tx`](ent_kernel::store::Tx), or one a bulk load holds).
pub async fn record(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    actor: &(impl AuditActor + ?Sized),
    action: &str,
    entity: &impl Audited,
    summary: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), Problem> {
    append(tx, backend, Change::new(actor, action, entity, summary), at).await?;
    Ok(())
}

/// What a change moved, for its audit summary: each field of `after` (a JSON object; the fields
/// of nested objects named with dots, `terms.cost_key`) whose value differs from `before`'s, as
/// `{"before": …, "after": …}`. An auditor then reads the old and new values, not only that a
/// record changed.
pub fn changes(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    let mut moved = serde_json::Map::new();
    collect_changes("", before, after, &mut moved);
    serde_json::Value::Object(moved)
}

fn collect_changes(
    prefix: &str,
    before: &serde_json::Value,
    after: &serde_json::Value,
    moved: &mut serde_json::Map<String, serde_json::Value>,
) {
    let Some(fields) = after.as_object() else { return };
    for (name, value) in fields {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let old = before.get(name).unwrap_or(&serde_json::Value::Null);
        if value.is_object() && old.is_object() {
            collect_changes(&path, old, value, moved);
        } else if old != value {
            moved.insert(path, serde_json::json!({ "before": old, "after": value }));
        }
    }
}

/// [`record`] inside a native PostgreSQL transaction (a bulk load by `COPY`).
pub async fn record_in_copy(
    tx: &mut CopyTx,
    actor: &(impl AuditActor + ?Sized),
    action: &str,
    entity: &impl Audited,
    summary: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), Problem> {
    append_in_copy(tx, Change::new(actor, action, entity, summary), at).await?;
    Ok(())
}

impl<'a> Change<'a> {
    fn new(
        actor: &'a (impl AuditActor + ?Sized),
        action: &'a str,
        entity: &'a impl Audited,
        summary: serde_json::Value,
    ) -> Self {
        Change {
            actor: actor.audit_name(),
            action,
            target_kind: entity.target_kind(),
            target_id: entity.target_id(),
            scope_org_id: entity.scope_org_id(),
            summary,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, sqlx::FromRow)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    /// Who: `user:<email>`, `cli:<login>`, `cli:<login> pour user:<email>`, `system:<job>`,
    /// `client:<ip>`. Except for an administrator, a person's address shows only to who reads
    /// their account (their own, and those of a `users.read` scope), `(masqué)` otherwise (an
    /// operator then by login alone); the same goes for the addresses of `summary`.
    pub actor: String,
    /// The name, in the directory, of the person who acted (or for whom the operator recorded),
    /// when known (not an address); given whether their address shows or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[sqlx(skip)]
    pub actor_name: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_org_id: Option<String>,
    #[sqlx(try_from = "JsonText")]
    pub summary: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// An `audit_log` row as stored, its summary as the text that was hashed.
#[derive(sqlx::FromRow)]
struct StoredRecord {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target_kind: String,
    target_id: String,
    scope_org_id: Option<String>,
    summary: String,
    prev_hash: String,
    hash: String,
}

/// SHA-256 over the JSON array of the record's fields (object keys sorted).
fn record_hash(seq: i64, at: &str, c: &Change<'_>, summary: &str, prev_hash: &str) -> String {
    let canonical =
        serde_json::json!([seq, at, c.actor, c.action, c.target_kind, c.target_id, c.scope_org_id, summary, prev_hash]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends a record inside the caller's transaction and returns its sequence.
/// `tx` is a connection inside a transaction (a [`Tx`](ent_kernel::store::Tx), or one a bulk load holds).
async fn append(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    change: Change<'_>,
    at: DateTime<Utc>,
) -> Result<i64, Problem> {
    // Serialises appenders so that two transactions never chain onto the same record.
    store::serialise(tx, backend, SerialLock::AuditLog).await?;
    append_on::<sqlx::Any>(tx, change, at).await
}

/// [`append`] inside a native PostgreSQL transaction (a bulk load by `COPY`).
async fn append_in_copy(tx: &mut CopyTx, change: Change<'_>, at: DateTime<Utc>) -> Result<i64, Problem> {
    store::serialise_copy(tx, SerialLock::AuditLog).await?;
    append_on::<sqlx::Postgres>(tx, change, at).await
}

/// Chains `change` onto the last record, through a connection of either driver
/// (its transaction holding the appenders' lock).
async fn append_on<DB>(conn: &mut DB::Connection, change: Change<'_>, at: DateTime<Utc>) -> Result<i64, Problem>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> (i64, String): FromRow<'r, DB::Row>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let at = timestamp(at);
    let summary = change.summary.to_string();
    let hash = record_hash(seq, &at, &change, &summary, &prev_hash);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, target_kind, target_id, scope_org_id, summary, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(at.as_str())
    .bind(change.actor)
    .bind(change.action)
    .bind(change.target_kind)
    .bind(change.target_id)
    .bind(change.scope_org_id)
    .bind(summary.as_str())
    .bind(prev_hash.as_str())
    .bind(hash.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(seq)
}

/// Outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Verification {
    Intact { records: i64 },
    Broken { seq: i64, reason: String },
}

/// The outcome as `entctl audit verify` and `entctl restore` print it.
impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verification::Intact { records } => write!(f, "OK : chaîne d'audit intègre ({records} enregistrements)"),
            Verification::Broken { seq, reason } => write!(f, "ROMPUE à l'enregistrement {seq} : {reason}"),
        }
    }
}

/// Walks the whole chain in order and reports the first broken record.
pub async fn verify(store: &Store) -> Result<Verification, Problem> {
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS.to_string();
    loop {
        let rows: Vec<StoredRecord> = sqlx::query_as(
            "SELECT seq, at, actor, action, target_kind, target_id, scope_org_id, summary, prev_hash, hash \
             FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 5000",
        )
        .bind(expected_seq)
        .fetch_all(store.pool())
        .await?;
        if rows.is_empty() {
            return Ok(Verification::Intact { records: expected_seq - 1 });
        }
        for row in rows {
            let seq = row.seq;
            let broken = |reason: &str| Ok(Verification::Broken { seq, reason: reason.to_string() });
            if seq != expected_seq {
                return Ok(Verification::Broken { seq: expected_seq, reason: "enregistrement manquant".into() });
            }
            if row.prev_hash != prev_hash {
                return broken("chaînage rompu : le hachage précédent ne correspond pas");
            }
            let change = Change {
                actor: &row.actor,
                action: &row.action,
                target_kind: &row.target_kind,
                target_id: &row.target_id,
                scope_org_id: row.scope_org_id.as_deref(),
                summary: serde_json::Value::Null,
            };
            let hash = row.hash;
            if record_hash(seq, &row.at, &change, &row.summary, &prev_hash) != hash {
                return broken("contenu modifié : le hachage ne correspond pas");
            }
            prev_hash = hash;
            expected_seq += 1;
        }
    }
}

/// Filters of `GET /audit`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct AuditFilter {
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub actor: Option<String>,
    /// From this time (RFC 3339, inclusive).
    pub from: Option<String>,
    /// Until this time (RFC 3339, exclusive).
    pub to: Option<String>,
    /// Records older than this sequence number (the `next_cursor` of the previous page).
    pub cursor: Option<String>,
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

fn time_bound(field: &str, value: &str) -> Result<String, Problem> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| timestamp(t.with_timezone(&Utc)))
        .map_err(|_| Problem::invalid_field(field, "date attendue au format RFC 3339 (2026-09-01T00:00:00Z)"))
}

/// The condition that leaves out the records about a pending invitee (their account, their
/// tokens), as the users list does for whoever is not an administrator
/// ([`crate::identity::not_pending`]): they show once the invitee has acted.
fn not_about_pending_invitees() -> String {
    let pending_users = crate::identity::not_pending("target_id");
    // Correlated on the token's primary key: found by index, never a scan of the tokens.
    format!(
        "(target_kind <> 'user' OR {pending_users}) AND (target_kind <> 'token' OR NOT EXISTS \
         (SELECT 1 FROM api_tokens t JOIN pending_invitees p ON p.user_id = t.user_id \
         WHERE t.id = audit_log.target_id))"
    )
}

/// Newest first; `reader` (`None`: the whole log) restricts to records about organisations in
/// the caller's scope, of a kind with a narrower register only where that register is read
/// ([`Reader`]), and leaves out those about pending invitees ([`not_about_pending_invitees`]);
/// all in the query, before paging. Each record names its actor ([`AuditRecord::actor_name`]);
/// a reader reads the addresses of the accounts it reads alone, the others masked, and its
/// `actor` filter finds none of theirs ([`people`]).
pub async fn list(store: &Store, filter: &AuditFilter, reader: Option<Reader>) -> Result<Page<AuditRecord>, Problem> {
    let mut cond = Condition::default();
    if let Some(v) = &filter.target_kind {
        cond.push("target_kind = ?", &[v]);
    }
    if let Some(v) = &filter.target_id {
        cond.push("target_id = ?", &[v]);
    }
    if let Some(v) = &filter.actor {
        cond.push("actor = ?", &[v]);
        if let Some(acted) = reader.as_ref().and_then(|r| people::acted_by(v, &r.accounts)) {
            cond.and(acted);
        }
    }
    if let Some(v) = &filter.from {
        cond.push("at >= ?", &[&time_bound("from", v)?]);
    }
    if let Some(v) = &filter.to {
        cond.push("at < ?", &[&time_bound("to", v)?]);
    }
    if let Some(reader) = &reader {
        cond.and(reader.condition());
        cond.push(&not_about_pending_invitees(), &[]);
    }
    let size = page_size(filter.limit)?;
    if let Some(cursor) = &filter.cursor {
        let before: i64 = cursor.parse().map_err(|_| Problem::invalid_field("cursor", "curseur invalide"))?;
        cond.push_int("seq < ?", before);
    }
    let sql = format!(
        "SELECT seq, at, actor, action, target_kind, target_id, scope_org_id, summary, prev_hash, hash \
         FROM audit_log WHERE {} ORDER BY seq DESC LIMIT {}",
        cond.sql(),
        size + 1
    );
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    let items: Vec<AuditRecord> = rows.iter().map(AuditRecord::from_row).collect::<sqlx::Result<_>>()?;
    let mut page = Page::from_overfetch(items, size, |r| r.seq.to_string());
    people::present(store, reader.as_ref().map(|r| &r.accounts), &mut page.items).await?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn changes_name_each_moved_field_with_its_old_and_new_value() {
        let before = json!({ "title": "ENT", "terms": { "cost_key": "eleves", "common_expenses_cents": 1200000 } });
        let after =
            json!({ "title": "ENT", "terms": { "cost_key": "eleves", "common_expenses_cents": 9900000 }, "new": 1 });
        assert_eq!(
            super::changes(&before, &after),
            json!({
                "terms.common_expenses_cents": { "before": 1200000, "after": 9900000 },
                "new": { "before": null, "after": 1 }
            })
        );
        assert_eq!(super::changes(&after, &after), json!({}));
    }
}
