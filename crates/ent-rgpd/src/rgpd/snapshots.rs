//! Snapshots of registers (every export, every scheduled pass) and the diff
//! between two of them, or between one and the register now.

use super::derive::{entry_hash, Entry, Register, REWORDED};
use crate::rgpd::{RgpdState, REGISTER_KIND};
use chrono::{DateTime, Utc};
use ent_documents::documents::sha256_hex;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::naming;
use ent_kernel::store::{new_id, timestamp, Backend, Tx};
use ent_platform::audit::{self, Target};
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, sqlx::FromRow)]
pub struct Snapshot {
    pub id: String,
    pub org_id: String,
    /// `export`, `manual` (`POST …/snapshots`) or `scheduled`.
    pub reason: String,
    /// The format exported (`json`, `csv`, `ods`, `html`, `pdf`), `json` for scheduled passes.
    pub format: String,
    /// The register's [`fingerprint`]: SHA-256 of its canonical JSON without the date of
    /// derivation, so that the same register derived on another day has the same one.
    pub sha256: String,
    pub entries: i64,
    pub taken_by: String,
    pub taken_at: String,
}

const COLUMNS: &str = "id, org_id, reason, format, sha256, entries, taken_by, taken_at";

/// The canonical JSON of a register: what a snapshot stores.
pub fn canonical(register: &Register) -> String {
    serde_json::to_string(register).expect("register serialises")
}

/// SHA-256 of the canonical JSON of `register` with its `as_of` blanked: what tells two
/// registers apart. The date of derivation moves every day while nothing deployed changes; it
/// is kept in the snapshot's content, not in what identifies the register.
pub fn fingerprint(register: &Register) -> String {
    let undated = Register { as_of: String::new(), ..register.clone() };
    sha256_hex(canonical(&undated).as_bytes())
}

/// Records `register` as a snapshot of `org`, moves the entries' history forward and audits it;
/// a register identical to the latest snapshot is not stored again: that snapshot is returned,
/// with `false`.
pub async fn record(
    state: &RgpdState,
    actor: &str,
    org: &Org,
    register: &Register,
    format: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(Snapshot, bool), Problem> {
    let mut tx = state.store.begin_write().await?;
    let sha256 = fingerprint(register);
    if let Some(latest) = latest_in(&mut tx, &org.id).await?.filter(|s| s.sha256 == sha256) {
        return Ok((latest, false));
    }
    let snapshot = record_in(&mut tx, state.store.backend(), actor, org, register, (format, reason), now).await?;
    tx.commit().await?;
    Ok((snapshot, true))
}

/// The latest snapshot of `org_id`, read in a write transaction (so that two identical
/// snapshots cannot both find none).
async fn latest_in(tx: &mut Tx, org_id: &str) -> Result<Option<Snapshot>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM rgpd_snapshots WHERE org_id = $1 ORDER BY taken_at DESC, id DESC LIMIT 1");
    Ok(sqlx::query_as(&sql).bind(org_id).fetch_optional(&mut **tx).await?)
}

/// [`record`] in the caller's transaction, unconditionally; `what` is (format, reason).
pub async fn record_in(
    tx: &mut Tx,
    backend: Backend,
    actor: &str,
    org: &Org,
    register: &Register,
    (format, reason): (&str, &str),
    now: DateTime<Utc>,
) -> Result<Snapshot, Problem> {
    let content = canonical(register);
    let snapshot = Snapshot {
        id: new_id(),
        org_id: org.id.clone(),
        reason: reason.into(),
        format: format.into(),
        sha256: fingerprint(register),
        entries: register.entries_count() as i64,
        taken_by: actor.into(),
        taken_at: timestamp(now),
    };
    sqlx::query(
        "INSERT INTO rgpd_snapshots (id, org_id, reason, format, content, sha256, entries, taken_by, taken_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&snapshot.id)
    .bind(&org.id)
    .bind(reason)
    .bind(format)
    .bind(&content)
    .bind(&snapshot.sha256)
    .bind(snapshot.entries)
    .bind(actor)
    .bind(&snapshot.taken_at)
    .execute(&mut **tx)
    .await?;
    for e in &register.entries {
        sqlx::query(
            "INSERT INTO rgpd_entry_history (org_id, entry_key, content_hash, first_recorded_at, last_changed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, entry_key) DO UPDATE SET content_hash = $3, last_changed_at = $5",
        )
        .bind(&org.id)
        .bind(&e.key)
        .bind(entry_hash(e))
        .bind(&e.first_recorded)
        .bind(&e.last_changed)
        .execute(&mut **tx)
        .await?;
    }
    let target = Target::new(REGISTER_KIND, &org.id, Some(&org.id));
    let summary =
        serde_json::json!({ "snapshot": snapshot.id, "sha256": snapshot.sha256, "format": format, "reason": reason });
    audit::record(tx, backend, actor, "rgpd.snapshot", &target, summary, now).await?;
    Ok(snapshot)
}

/// Snapshots of `org`'s register, newest first.
pub async fn list(state: &RgpdState, org_id: &str, limit: u32) -> Result<Vec<Snapshot>, Problem> {
    let sql =
        format!("SELECT {COLUMNS} FROM rgpd_snapshots WHERE org_id = $1 ORDER BY taken_at DESC, id DESC LIMIT {limit}");
    Ok(sqlx::query_as(&sql).bind(org_id).fetch_all(state.store.pool()).await?)
}

/// The latest snapshot of `org_id` with its register.
pub async fn latest(state: &RgpdState, org_id: &str) -> Result<Option<(Snapshot, Register)>, Problem> {
    match list(state, org_id, 1).await?.into_iter().next() {
        Some(s) => get(state, &s.id).await,
        None => Ok(None),
    }
}

/// A snapshot row with its content (the register's canonical JSON).
#[derive(sqlx::FromRow)]
struct StoredSnapshot {
    #[sqlx(flatten)]
    snapshot: Snapshot,
    content: String,
}

/// A snapshot and the register it holds.
pub async fn get(state: &RgpdState, id: &str) -> Result<Option<(Snapshot, Register)>, Problem> {
    let sql = format!("SELECT {COLUMNS}, content FROM rgpd_snapshots WHERE id = $1");
    let stored: Option<StoredSnapshot> = sqlx::query_as(&sql).bind(id).fetch_optional(state.store.pool()).await?;
    let Some(StoredSnapshot { snapshot, content }) = stored else { return Ok(None) };
    let register: Register = serde_json::from_str(&content)
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("instantané illisible : {e}")))?;
    Ok(Some((snapshot, register)))
}

/// A snapshot of `org`; 404 when it is missing or belongs to another register, in the same
/// words (another organisation's snapshot is not revealed).
pub async fn get_of(state: &RgpdState, org: &Org, id: &str) -> Result<(Snapshot, Register), Problem> {
    match get(state, id).await? {
        Some((snapshot, register)) if snapshot.org_id == org.id => Ok((snapshot, register)),
        _ => Err(Problem::not_found(format!("aucun instantané « {id} »"))),
    }
}

/// The diff of `org`'s register from snapshot `from` (the latest when `None`) to snapshot
/// `to` (now when `None` or `now`).
pub async fn diff_for(state: &RgpdState, org: &Org, from: Option<&str>, to: Option<&str>) -> Result<Diff, Problem> {
    let (from_id, before) = match from.filter(|s| !s.is_empty()) {
        Some(id) => {
            let (s, r) = get_of(state, org, id).await?;
            (s.id, r)
        }
        None => {
            let (s, r) = latest(state, &org.id).await?.ok_or_else(|| {
                Problem::invalid_field(
                    "from",
                    format!("aucun instantané du registre {} : exportez-le d'abord", naming::de(&org.name)),
                )
            })?;
            (s.id, r)
        }
    };
    let (to_id, after) = match to.filter(|s| !s.is_empty() && *s != "now") {
        Some(id) => {
            let (s, r) = get_of(state, org, id).await?;
            (s.id, r)
        }
        None => ("now".to_string(), super::current(state, org).await?),
    };
    Ok(diff(&from_id, &before, &to_id, &after))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntryRef {
    pub key: String,
    pub reference: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntryChange {
    pub key: String,
    pub reference: String,
    pub name: String,
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Diff {
    /// Snapshot id, or `now`.
    pub from: String,
    pub to: String,
    pub added: Vec<EntryRef>,
    pub removed: Vec<EntryRef>,
    pub changed: Vec<EntryChange>,
    /// Changes to the organisation's own block (contacts, DPO, representative).
    pub organisation: Vec<FieldChange>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty() && self.organisation.is_empty()
    }
}

/// Fields that say when, not what: never a change.
const VOLATILE: [&str; 3] = ["first_recorded", "last_changed", "as_of"];

/// Every entry of both registers (Art. 30(1) and 30(2)) by key, as JSON objects.
fn keyed(register: &Register) -> BTreeMap<String, (EntryRef, Value)> {
    let mut out = BTreeMap::new();
    for e in &register.entries {
        let r = EntryRef { key: e.key.clone(), reference: e.reference.clone(), name: e.name.clone() };
        out.insert(format!("30-1:{}", e.key), (r, serde_json::to_value(e).expect("entry serialises")));
    }
    for e in &register.processor_entries {
        let r = EntryRef { key: e.key.clone(), reference: format!("ST-{}", e.controller.code), name: e.title() };
        out.insert(format!("30-2:{}", e.key), (r, serde_json::to_value(e).expect("entry serialises")));
    }
    out
}

/// The fields of `after` that say something else than in `before`: a field reworded only
/// ([`same_meaning`]) is no change.
fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else { return vec![] };
    let mut fields: Vec<&String> = b.keys().chain(a.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|f| !VOLATILE.contains(&f.as_str()))
        .filter_map(|f| {
            let (x, y) = (b.get(f).cloned().unwrap_or(Value::Null), a.get(f).cloned().unwrap_or(Value::Null));
            (!same_meaning(&x, &y)).then(|| FieldChange { field: f.clone(), before: x, after: y })
        })
        .collect()
}

/// Whether two values of a register's field say the same: equal, or equal once each text in
/// them is read as registers word it today ([`as_worded_now`]).
fn same_meaning(before: &Value, after: &Value) -> bool {
    before == after || as_worded_now(before) == as_worded_now(after)
}

/// `value` with each of its texts read as registers word it today: the wordings of earlier
/// derivations ([`REWORDED`]) replaced by today's, figures ungrouped (« 5 000 » and « 5000 »
/// are one figure), and « N établissement(s) » agreed with N (« 1 établissement », « 3
/// établissements »), as [`super::derive::counted`] writes it.
fn as_worded_now(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(agreed(&ungrouped(&reworded(text)))),
        Value::Array(items) => Value::Array(items.iter().map(as_worded_now).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), as_worded_now(v))).collect()),
        other => other.clone(),
    }
}

fn reworded(text: &str) -> String {
    REWORDED.iter().fold(text.to_string(), |text, (then, now)| text.replace(then, now))
}

/// `text` without the spaces that group a figure's digits by three (space, no-break and narrow
/// no-break space).
fn ungrouped(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let grouping = |i: usize| {
        matches!(chars[i], ' ' | '\u{a0}' | '\u{202f}')
            && i > 0
            && digit(i - 1)
            && (i + 1..i + 4).all(digit)
            && !digit(i + 4)
    };
    (0..chars.len()).filter(|&i| !grouping(i)).map(|i| chars[i]).collect()
}

/// `text` whose « N nom(s) » agree with N: « 1 nom », « 2 noms » (figures ungrouped).
fn agreed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("(s)") {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let word = head.trim_end_matches(|c: char| c.is_alphabetic());
        let figure = word.strip_suffix(' ').map(|w| &w[w.trim_end_matches(|c: char| c.is_ascii_digit()).len()..]);
        match figure.filter(|f| !f.is_empty() && word.len() < head.len()).and_then(|f| f.parse::<u64>().ok()) {
            Some(n) if n < 2 => {}
            Some(_) => out.push('s'),
            None => out.push_str("(s)"),
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    out
}

/// Gives each entry of `register` that says what it said in `before`, its wording aside
/// ([`same_meaning`]), the date it last changed there: a derivation that only rewords an entry
/// does not date a change of it (its content hash differs from the one its history holds until
/// a snapshot records the new wording). Returns how many entries it gave their date back.
pub fn keep_dates(before: &Register, register: &mut Register) -> usize {
    let then: HashMap<&str, &Entry> = before.entries.iter().map(|b| (b.key.as_str(), b)).collect();
    let mut kept = 0;
    for e in &mut register.entries {
        let Some(b) = then.get(e.key.as_str()).filter(|b| b.last_changed != e.last_changed) else { continue };
        let as_json = |e: &Entry| serde_json::to_value(e).expect("entry serialises");
        if field_changes(&as_json(b), &as_json(e)).is_empty() {
            e.last_changed = b.last_changed.clone();
            kept += 1;
        }
    }
    kept
}

/// What changed from `before` to `after`: entries added, removed, and changed field by field.
pub fn diff(from: &str, before: &Register, to: &str, after: &Register) -> Diff {
    let (b, a) = (keyed(before), keyed(after));
    let added = a.iter().filter(|(k, _)| !b.contains_key(*k)).map(|(_, (r, _))| r.clone()).collect();
    let removed = b.iter().filter(|(k, _)| !a.contains_key(*k)).map(|(_, (r, _))| r.clone()).collect();
    let changed = a
        .iter()
        .filter_map(|(k, (r, after))| {
            let (_, before) = b.get(k)?;
            let fields = field_changes(before, after);
            (!fields.is_empty()).then(|| EntryChange {
                key: r.key.clone(),
                reference: r.reference.clone(),
                name: r.name.clone(),
                fields,
            })
        })
        .collect();
    let head = |r: &Register| serde_json::json!({ "organisation": r.organisation, "dpo": r.dpo, "representative": r.representative });
    Diff {
        from: from.into(),
        to: to.into(),
        added,
        removed,
        changed,
        organisation: field_changes(&head(before), &head(after)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rgpd::derive::{self, Assignment, LiveTenant, OrgFacts, World};
    use ent_kernel::kernel::roles::OrgKind;
    use ent_platform::catalog::Catalog;
    use ent_platform::registry::EtabType;
    use serde_json::json;

    fn world() -> World {
        let mut w = World::default();
        let etab = OrgFacts {
            etab_type: Some(EtabType::College),
            ..OrgFacts::identity_only("e", OrgKind::Etablissement, "0940001A", "Collège".into())
        };
        w.orgs.insert("e".into(), etab);
        w.assignments.insert(
            "e".into(),
            Assignment {
                convention: "C".into(),
                controller: "e".into(),
                joint_controllers: vec![],
                processors: vec![],
            },
        );
        w.tenants.push(LiveTenant::running("t", "e", &["e"], &["portail", "messagerie"], 100));
        w
    }

    #[test]
    fn a_new_service_is_added_a_removed_one_removed_and_a_change_names_its_field() {
        let catalog = Catalog::load(None).unwrap();
        let mut w = world();
        let before = derive::derive(&w, &catalog, "e", "2026-09-01", "T1");
        w.tenants[0].services = vec!["portail".into(), "visio".into()];
        w.tenants[0].accounts = 120;
        let after = derive::derive(&w, &catalog, "e", "2026-10-01", "T2");
        let d = diff("a", &before, "now", &after);
        assert_eq!(d.added.iter().map(|e| e.reference.as_str()).collect::<Vec<_>>(), ["0940001A-visio"]);
        assert_eq!(d.removed.iter().map(|e| e.reference.as_str()).collect::<Vec<_>>(), ["0940001A-messagerie"]);
        assert_eq!(d.changed.len(), 1);
        let fields: Vec<&str> = d.changed[0].fields.iter().map(|f| f.field.as_str()).collect();
        // The AIPD's large-scale line states the account figure: it changes with it.
        assert_eq!(fields, ["accounts", "dpia"]);
        assert!(diff("a", &after, "b", &after).is_empty());
    }

    /// `register` as a derivation before the scale change (session 41) worded it: the tenant's own
    /// figure « capacité du tenant », « établissement(s) », figures grouped with plain spaces.
    fn worded_before(register: &Register) -> Register {
        let text = canonical(register)
            .replace(
                "comptes des élèves, personnels et familles des ENT déployés : nombre de comptes de chaque tenant",
                "comptes déclarés des élèves, personnels et familles : capacité du tenant",
            )
            .replace(" établissement ;", " établissement(s) ;")
            .replace("5\u{a0}000", "5 000");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_register_only_reworded_is_no_change_and_keeps_its_dates_a_changed_figure_is_one() {
        let catalog = Catalog::load(None).unwrap();
        let mut w = world();
        let now = derive::derive(&w, &catalog, "e", "2026-10-01", "T2");
        let mut before = worded_before(&now);
        assert_ne!(before.entries, now.entries, "the wording differs");
        for e in &mut before.entries {
            e.last_changed = "T1".into();
        }
        assert!(diff("a", &before, "now", &now).is_empty(), "{:?}", diff("a", &before, "now", &now));
        let mut kept = now.clone();
        assert_eq!(keep_dates(&before, &mut kept), now.entries.len());
        assert!(kept.entries.iter().all(|e| e.last_changed == "T1"));

        w.tenants[0].accounts = 120;
        let mut changed = derive::derive(&w, &catalog, "e", "2026-10-01", "T2");
        let d = diff("a", &before, "now", &changed);
        let fields: Vec<&str> = d.changed[0].fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!((d.changed.len(), fields), (2, vec!["accounts", "dpia"]), "{d:?}");
        assert_eq!(keep_dates(&before, &mut changed), 0, "a change is dated");
    }

    #[test]
    fn figures_are_read_ungrouped_and_a_noun_after_its_figure_agrees_with_it() {
        assert_eq!(
            ungrouped("5\u{a0}000 personnes, 12 345 678 comptes ; 2 ; 120"),
            "5000 personnes, 12345678 comptes ; 2 ; 120"
        );
        assert_eq!(ungrouped("1 2345 et 12\u{202f}000"), "1 2345 et 12000");
        assert_eq!(agreed("pour 1 établissement(s) (Collège)"), "pour 1 établissement (Collège)");
        assert_eq!(agreed("3 établissement(s), 0 tenant(s)"), "3 établissements, 0 tenant");
        assert_eq!(agreed("compte(s) : 4 élève(s)"), "compte(s) : 4 élèves");
        let (then, now) = (json!(["pour 2 établissement(s)", 5000]), json!(["pour 2 établissements", 5000]));
        assert!(same_meaning(&then, &now));
        assert!(!same_meaning(&json!("pour 2 établissement(s)"), &json!("pour 3 établissements")));
    }
}
