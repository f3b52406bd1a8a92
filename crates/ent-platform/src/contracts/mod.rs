//! Processor contracts (Art. 28 RGPD): which organisation processes personal
//! data for which other one, under which contract, and whether that contract
//! carries the Art. 28 clauses. A contract whose client is itself a processor
//! (`parent_processor`) is a link of a sub-processing chain (vendor → host → ...).
//! Recorded by the capabilities that create them (a group purchase award) or
//! by hand; read by the RGPD registers.

use crate::audit::{self, Audited, Target};
use crate::identity::Actor;
use crate::registry::queries::{funds_condition, get_org_in, orgs_by_id};
use crate::registry::{Org, OrgRef};
use chrono::{DateTime, NaiveDate, Utc};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::{new_id, timestamp, update_versioned, Condition, Flag, Store, Tx};
use ent_kernel::validate::is_blank;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use std::collections::HashMap;

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ProcessorContract {
    pub id: String,
    pub processor: OrgRef,
    /// The controller the processor acts for, or the processor above it in a chain.
    pub client: OrgRef,
    /// Set when the client is itself a processor: this contract binds a sub-processor.
    pub parent_processor: Option<OrgRef>,
    pub reference: String,
    pub title: String,
    /// Whether the contract carries the clauses of Art. 28(3) RGPD.
    pub art28_clauses: bool,
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
    /// Where the contract comes from: `groupement`, `manual`, ...
    pub source_kind: String,
    pub source_id: Option<String>,
    /// Checked by an edit against the version it was based on.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// The audit target kind of a processor contract. Its records are read as the contracts are, on
/// the RGPD registers of their client (`rgpd::AuditReaders::Registers` decides them).
pub const AUDIT_KIND: &str = "processor_contract";

impl Audited for ProcessorContract {
    fn target_kind(&self) -> &'static str {
        AUDIT_KIND
    }
    fn target_id(&self) -> &str {
        &self.id
    }
    fn scope_org_id(&self) -> Option<&str> {
        Some(&self.client.id)
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    pub processor_org_id: String,
    pub client_org_id: String,
    #[serde(default)]
    pub parent_processor_org_id: Option<String>,
    pub reference: String,
    pub title: String,
    pub art28_clauses: bool,
    #[serde(default)]
    pub starts_on: Option<String>,
    #[serde(default)]
    pub ends_on: Option<String>,
    pub source_kind: String,
    #[serde(default)]
    pub source_id: Option<String>,
}

async fn check(conn: &mut sqlx::AnyConnection, new: &NewContract) -> Result<(), Problem> {
    let mut checks = Checks::default();
    // Processors (éditeurs, hébergeurs) are national entries anyone may name; any other
    // organisation, existing or not, gets one answer: its name or existence is no one's to learn here.
    let processor = get_org_in(conn, &new.processor_org_id).await?;
    if !processor.is_some_and(|o| matches!(o.kind, OrgKind::Editeur | OrgKind::Hebergeur)) {
        checks.fail("processor_org_id", "aucun éditeur ni hébergeur n'a cet identifiant au répertoire");
    }
    if get_org_in(conn, &new.client_org_id).await?.is_none() {
        checks.fail("client_org_id", "organisation introuvable");
    }
    if let Some(parent) = &new.parent_processor_org_id {
        if parent != &new.client_org_id {
            checks.fail("parent_processor_org_id", "le sous-traitant de rang supérieur est le client du contrat");
        }
    }
    if new.processor_org_id == new.client_org_id {
        checks.fail("client_org_id", "une organisation ne se sous-traite pas à elle-même");
    }
    if is_blank(&new.reference) {
        checks.fail("reference", "référence du contrat obligatoire");
    }
    checks.line("reference", &new.reference);
    checks.line("title", &new.title);
    for (field, value, max) in [("reference", &new.reference, 100), ("title", &new.title, 300)] {
        if value.trim().chars().count() > max {
            checks.fail(field, format!("{max} caractères au plus"));
        }
    }
    if is_blank(&new.title) {
        checks.fail("title", "intitulé du contrat obligatoire");
    }
    for (field, date) in [("starts_on", &new.starts_on), ("ends_on", &new.ends_on)] {
        if let Some(d) = date {
            checks.date(field, d);
        }
    }
    if let (Some(s), Some(e)) = (&new.starts_on, &new.ends_on) {
        if e < s {
            checks.fail("ends_on", "la fin précède le début");
        }
    }
    checks.finish()
}

/// Records a contract, or updates the one with the same processor, client and
/// reference (idempotent), in the caller's transaction. Audited. Returns its id.
pub async fn record(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    new: &NewContract,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    check(tx, new).await?;
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT id FROM processor_contracts WHERE processor_org_id = $1 AND client_org_id = $2 AND reference = $3",
    )
    .bind(&new.processor_org_id)
    .bind(&new.client_org_id)
    .bind(new.reference.trim())
    .fetch_optional(&mut **tx)
    .await?;
    let id = existing.clone().unwrap_or_else(new_id);
    sqlx::query(
        "INSERT INTO processor_contracts (id, processor_org_id, client_org_id, parent_processor_org_id, reference, \
         title, art28_clauses, starts_on, ends_on, source_kind, source_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
         ON CONFLICT (id) DO UPDATE SET parent_processor_org_id = $4, title = $6, art28_clauses = $7, \
         starts_on = $8, ends_on = $9, source_kind = $10, source_id = $11, updated_at = $12, \
         version = processor_contracts.version + 1",
    )
    .bind(&id)
    .bind(&new.processor_org_id)
    .bind(&new.client_org_id)
    .bind(new.parent_processor_org_id.clone())
    .bind(new.reference.trim())
    .bind(new.title.trim())
    .bind(new.art28_clauses as i64)
    .bind(new.starts_on.clone())
    .bind(new.ends_on.clone())
    .bind(&new.source_kind)
    .bind(new.source_id.clone())
    .bind(timestamp(now))
    .execute(&mut **tx)
    .await?;
    let action = if existing.is_some() { "contracts.update" } else { "contracts.create" };
    let target = Target::new(AUDIT_KIND, &id, Some(&new.client_org_id));
    let summary = serde_json::json!({
        "processor": new.processor_org_id, "client": new.client_org_id, "reference": new.reference,
        "art28_clauses": new.art28_clauses, "source": new.source_kind,
    });
    audit::record(tx, store.backend(), actor, action, &target, summary, now).await?;
    Ok(id)
}

/// The `source_kind` of a contract a groupement's award recorded (its `source_id` is the
/// groupement's id): the Art. 28 clauses are those of the market's notified CCAP (art. 9).
pub const FROM_GROUPEMENT: &str = "groupement";

/// The accord-cadre of a groupement de commandes that binds an organisation's ENT: awarded
/// to its titulaire, which the award recorded as the processor of each member
/// ([`FROM_GROUPEMENT`]), and, when the titulaire declared one under the market's contracts
/// ([`FROM_CONTRACT`]), its hébergeur.
#[derive(Debug, Clone, PartialEq)]
pub struct Market {
    /// The groupement's id, and its reference (`GC-2026-000001`), the accord-cadre's.
    pub groupement_id: String,
    pub reference: String,
    /// The titulaire (an éditeur): the ENT's vendor, its N3 support and processor.
    pub vendor: Org,
    /// The hébergeur the titulaire engaged under the market, if declared.
    pub host: Option<Org>,
    /// `YYYY-MM-DD`: the last day of the accord-cadre, if known.
    pub ends_on: Option<String>,
}

/// The accord-cadre in force on some day of `from..=to` — its groupement awarded or running,
/// notified by `to`, its last day not before `from` — whose contract the award recorded for a
/// member that is `org` or funds it ([`funds_condition`]: a commune's écoles, an EPCI's
/// delegating communes): the latest notified. The one answer to « which market binds this
/// ENT »: a tenant created for such an organisation takes its titulaire, a convention's
/// draft names it among the sub-processors.
pub async fn binding_market(
    conn: &mut sqlx::AnyConnection,
    org: &Org,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<Market>, Problem> {
    let rows: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT pc.client_org_id, pc.processor_org_id, g.id, g.reference, pc.ends_on FROM processor_contracts pc \
         JOIN groupements g ON g.id = pc.source_id \
         WHERE pc.source_kind = $1 AND pc.parent_processor_org_id IS NULL AND g.status IN ('awarded', 'running') \
         AND g.vendor_org_id = pc.processor_org_id AND pc.starts_on <= $2 AND (pc.ends_on IS NULL OR pc.ends_on >= $3) \
         ORDER BY pc.starts_on DESC, g.reference DESC, pc.id",
    )
    .bind(FROM_GROUPEMENT)
    .bind(to.to_string())
    .bind(from.to_string())
    .fetch_all(&mut *conn)
    .await?;
    for (client, vendor, groupement_id, reference, ends_on) in rows {
        if !member_funds(conn, &client, org).await? {
            continue;
        }
        let Some(vendor) = get_org_in(conn, &vendor).await? else { continue };
        let host = market_host(conn, &vendor, &groupement_id).await?;
        return Ok(Some(Market { groupement_id, reference, vendor, host, ends_on }));
    }
    Ok(None)
}

/// Whether the member `client` (an organisation's id) is `org` or funds its ENT.
async fn member_funds(conn: &mut sqlx::AnyConnection, client: &str, org: &Org) -> Result<bool, Problem> {
    if client == org.id {
        return Ok(true);
    }
    let Some(member) = get_org_in(conn, client).await? else { return Ok(false) };
    let mut cond = Condition::default();
    cond.push("id = ?", &[&org.id]);
    cond.and(funds_condition(&member));
    let sql = format!("SELECT id FROM orgs WHERE {}", cond.sql());
    Ok(cond.bind(sqlx::query(&sql)).fetch_optional(conn).await?.is_some())
}

/// The hébergeur the titulaire `vendor` declared as its sub-processor under one of the
/// contracts the award of the groupement `groupement_id` recorded (the first by name).
async fn market_host(
    conn: &mut sqlx::AnyConnection,
    vendor: &Org,
    groupement_id: &str,
) -> Result<Option<Org>, Problem> {
    let host: Option<String> = sqlx::query_scalar(
        "SELECT sub.processor_org_id FROM processor_contracts sub \
         JOIN processor_contracts pc ON pc.id = sub.source_id JOIN orgs o ON o.id = sub.processor_org_id \
         WHERE sub.source_kind = $1 AND sub.client_org_id = $2 AND sub.parent_processor_org_id = $2 \
         AND o.kind = $3 AND pc.source_kind = $4 AND pc.source_id = $5 ORDER BY o.name, o.id LIMIT 1",
    )
    .bind(FROM_CONTRACT)
    .bind(&vendor.id)
    .bind(OrgKind::Hebergeur.as_str())
    .bind(FROM_GROUPEMENT)
    .bind(groupement_id)
    .fetch_optional(&mut *conn)
    .await?;
    match host {
        Some(id) => get_org_in(conn, &id).await,
        None => Ok(None),
    }
}

/// The CCAP version that holds the Art. 28 clauses of a contract a groupement's award recorded
/// ([`FROM_GROUPEMENT`]): its document's id, its version number and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClausesVersion {
    pub id: String,
    pub groupement_id: String,
    #[sqlx(rename = "version_no")]
    pub version: i64,
    pub sha256: String,
    pub created_at: String,
}

/// The CCAP versions of the groupements `ids`, by groupement, in the order of their numbers, in one
/// statement per 500 groupements.
pub async fn ccap_versions(store: &Store, ids: Vec<String>) -> Result<HashMap<String, Vec<ClausesVersion>>, Problem> {
    let mut ccaps: HashMap<String, Vec<ClausesVersion>> = HashMap::new();
    for cond in Condition::in_chunks("groupement_id", ids) {
        let sql = format!(
            "SELECT id, groupement_id, version_no, sha256, created_at FROM groupement_documents \
             WHERE kind = 'ccap' AND {} ORDER BY groupement_id, version_no",
            cond.sql()
        );
        let rows: Vec<ClausesVersion> =
            cond.bind(sqlx::query(&sql)).try_map(|r| ClausesVersion::from_row(&r)).fetch_all(store.pool()).await?;
        for row in rows {
            ccaps.entry(row.groupement_id.clone()).or_default().push(row);
        }
    }
    Ok(ccaps)
}

/// Among a groupement's CCAP `versions` (in the order of their numbers), the one holding the
/// clauses of the contract its award recorded at `recorded_at`: the last one made by then (the
/// notified one), else the last one. The one rule the registers, the contracts export and the
/// console's contract page read it by.
pub fn in_force_at<'v>(versions: &'v [ClausesVersion], recorded_at: &str) -> Option<&'v ClausesVersion> {
    versions.iter().rev().find(|v| v.created_at.as_str() <= recorded_at).or(versions.last())
}

/// The CCAP version holding the clauses of each of `contracts` a groupement's award recorded
/// ([`in_force_at`]), by contract id, in one statement per 500 groupements; a groupement with no
/// CCAP generated gives none.
pub async fn clauses_versions(
    store: &Store,
    contracts: &[ProcessorContract],
) -> Result<HashMap<String, ClausesVersion>, Problem> {
    let ccaps = ccap_versions(store, contracts.iter().filter_map(market_of).map(str::to_string).collect()).await?;
    Ok(clauses_of(&ccaps, contracts))
}

/// [`clauses_versions`] among CCAP versions already read (`ccaps`, by groupement, as
/// [`ccap_versions`] gives them): the version holding the clauses of each of `contracts` a
/// groupement's award recorded ([`in_force_at`]), by contract id.
pub fn clauses_of(
    ccaps: &HashMap<String, Vec<ClausesVersion>>,
    contracts: &[ProcessorContract],
) -> HashMap<String, ClausesVersion> {
    let in_force = |c: &ProcessorContract| in_force_at(ccaps.get(market_of(c)?)?, &c.created_at).cloned();
    contracts.iter().filter_map(|c| Some((c.id.clone(), in_force(c)?))).collect()
}

/// The groupement whose market `c` is, if a groupement's award recorded it.
pub fn market_of(c: &ProcessorContract) -> Option<&str> {
    c.source_id.as_deref().filter(|_| c.source_kind == FROM_GROUPEMENT)
}

/// The refusal of a change to the Art. 28 flag of a contract whose clauses sit in a notified
/// market's CCAP ([`FROM_GROUPEMENT`]): what the CCAP says is not undone by ticking a box.
fn clauses_in_the_ccap(current: &ProcessorContract) -> Problem {
    Problem::invalid_field(
        "art28_clauses",
        format!(
            "les clauses de l'article 28 de ce contrat sont celles de l'article 9 du CCAP du marché {}, notifié : \
             elles ne se retirent pas ici, seul un avenant au marché peut les modifier",
            current.reference
        ),
    )
}

/// What the client of a contract changes in it (the parties and the reference stay).
#[derive(Debug, Clone)]
pub struct ContractChange {
    pub title: String,
    pub art28_clauses: bool,
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
}

/// Changes `current` as `change` says, if it is still at the `expected` version (412
/// otherwise), in the caller's transaction; checked as a new contract is; the Art. 28 flag of a
/// contract a groupement's award recorded stays as its CCAP says ([`FROM_GROUPEMENT`]). Audited.
pub async fn update(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    current: &ProcessorContract,
    change: &ContractChange,
    expected: i64,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let as_new = NewContract {
        processor_org_id: current.processor.id.clone(),
        client_org_id: current.client.id.clone(),
        parent_processor_org_id: current.parent_processor.as_ref().map(|p| p.id.clone()),
        reference: current.reference.clone(),
        title: change.title.clone(),
        art28_clauses: change.art28_clauses,
        starts_on: change.starts_on.clone(),
        ends_on: change.ends_on.clone(),
        source_kind: current.source_kind.clone(),
        source_id: current.source_id.clone(),
    };
    check(tx, &as_new).await?;
    if current.source_kind == FROM_GROUPEMENT && change.art28_clauses != current.art28_clauses {
        return Err(clauses_in_the_ccap(current));
    }
    let query = sqlx::query(
        "UPDATE processor_contracts SET title = $1, art28_clauses = $2, starts_on = $3, ends_on = $4, \
         version = version + 1, updated_at = $5 WHERE id = $6 AND version = $7",
    )
    .bind(change.title.trim().to_string())
    .bind(change.art28_clauses as i64)
    .bind(change.starts_on.clone())
    .bind(change.ends_on.clone());
    update_versioned(tx, query, now, &current.id, expected, current.version).await?;
    let summary = serde_json::json!({
        "processor": current.processor.id, "client": current.client.id, "reference": current.reference,
        "before": { "title": current.title, "art28_clauses": current.art28_clauses,
                    "starts_on": current.starts_on, "ends_on": current.ends_on },
        "title": change.title, "art28_clauses": change.art28_clauses,
        "starts_on": change.starts_on, "ends_on": change.ends_on,
    });
    audit::record(tx, store.backend(), actor, "contracts.update", current, summary, now).await?;
    Ok(())
}

/// The `source_kind` of a sub-processing contract declared from the page of the contract
/// above it (its `source_id` is that contract's id).
pub const FROM_CONTRACT: &str = "contrat";

/// A sub-processor the client of a contract declares under it: the processor of that
/// contract engages `processor_org_id` (an éditeur or an hébergeur) under this contract.
#[derive(Debug, Clone)]
pub struct NewSubProcessor {
    pub processor_org_id: String,
    pub reference: String,
    pub title: String,
    pub art28_clauses: bool,
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
}

/// Moves `contract` to its next version if it is still at `expected` (412 otherwise):
/// a change of its sub-processors is a change of the contract, made under its version.
async fn next_version(
    tx: &mut Tx,
    contract: &ProcessorContract,
    expected: i64,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let query = sqlx::query(
        "UPDATE processor_contracts SET version = version + 1, updated_at = $1 WHERE id = $2 AND version = $3",
    );
    update_versioned(tx, query, now, &contract.id, expected, contract.version).await
}

/// The audit record, on `contract` and its client, of a change of its sub-processors.
async fn audit_sub_change(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    action: &str,
    contract: &ProcessorContract,
    sub: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let summary = serde_json::json!({
        "reference": contract.reference, "processor": contract.processor.id, "sub_processor": sub,
    });
    audit::record(tx, store.backend(), actor, action, contract, summary, now).await
}

/// The sub-processors engaged by the processor of `contract`: the contracts whose client and
/// parent are that processor (the next links of its chain), by reference.
pub async fn sub_processors(store: &Store, contract: &ProcessorContract) -> Result<Vec<ProcessorContract>, Problem> {
    let above = &contract.processor.id;
    let below = list_for_client(store, above).await?;
    Ok(below.into_iter().filter(|c| c.parent_processor.as_ref().is_some_and(|p| &p.id == above)).collect())
}

/// Adds a sub-processor under `contract` at its `expected` version (412 otherwise), in the
/// caller's transaction: a contract binding the sub-processor to the contract's processor
/// (its parent in the chain), checked and audited as [`record`] does, sourced from
/// `contract`; refused when a contract already binds that organisation to the processor
/// (another one's contract is never overwritten). Audited on `contract` too. Returns the
/// new contract's id.
pub async fn add_sub_processor(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    contract: &ProcessorContract,
    sub: &NewSubProcessor,
    expected: i64,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    next_version(tx, contract, expected, now).await?;
    let bound: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM processor_contracts WHERE processor_org_id = $1 AND client_org_id = $2",
    )
    .bind(&sub.processor_org_id)
    .bind(&contract.processor.id)
    .fetch_one(&mut **tx)
    .await?;
    if bound > 0 {
        return Err(Problem::invalid_field(
            "processor_org_id",
            format!("un contrat lie déjà cette organisation à {}", contract.processor.name),
        ));
    }
    let new = NewContract {
        processor_org_id: sub.processor_org_id.clone(),
        client_org_id: contract.processor.id.clone(),
        parent_processor_org_id: Some(contract.processor.id.clone()),
        reference: sub.reference.clone(),
        title: sub.title.clone(),
        art28_clauses: sub.art28_clauses,
        starts_on: sub.starts_on.clone(),
        ends_on: sub.ends_on.clone(),
        source_kind: FROM_CONTRACT.into(),
        source_id: Some(contract.id.clone()),
    };
    let id = record(tx, store, actor, &new, now).await?;
    let summary = serde_json::json!({ "id": id, "processor": new.processor_org_id, "reference": new.reference });
    audit_sub_change(tx, store, actor, "contracts.sub_processors.add", contract, summary, now).await?;
    Ok(id)
}

/// Removes the sub-processor contract `sub_id` from under `contract` at its `expected`
/// version (412 otherwise; 404 when `sub_id` is not one of its [`sub_processors`]), in the
/// caller's transaction. Audited on both contracts.
pub async fn remove_sub_processor(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    contract: &ProcessorContract,
    sub_id: &str,
    expected: i64,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    next_version(tx, contract, expected, now).await?;
    let above = &contract.processor.id;
    let removed: Option<(String, String)> = sqlx::query_as(
        "DELETE FROM processor_contracts WHERE id = $1 AND client_org_id = $2 AND parent_processor_org_id = $3 \
         RETURNING processor_org_id, reference",
    )
    .bind(sub_id)
    .bind(above)
    .bind(above)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((processor, reference)) = removed else {
        return Err(Problem::not_found(format!("aucun sous-traitant ultérieur « {sub_id} » sous ce contrat")));
    };
    let target = Target::new(AUDIT_KIND, sub_id, Some(above));
    let summary = serde_json::json!({
        "processor": processor, "client": above, "reference": reference, "under": contract.id,
    });
    audit::record(tx, store.backend(), actor, "contracts.delete", &target, summary, now).await?;
    let summary = serde_json::json!({ "id": sub_id });
    audit_sub_change(tx, store, actor, "contracts.sub_processors.remove", contract, summary, now).await
}

const COLUMNS: &str = "id, processor_org_id, client_org_id, parent_processor_org_id, reference, title, \
    art28_clauses, starts_on, ends_on, source_kind, source_id, version, created_at, updated_at";

/// A `processor_contracts` row (read with [`COLUMNS`]).
#[derive(sqlx::FromRow)]
struct ContractRow {
    id: String,
    processor_org_id: String,
    client_org_id: String,
    parent_processor_org_id: Option<String>,
    reference: String,
    title: String,
    #[sqlx(try_from = "Flag")]
    art28_clauses: bool,
    starts_on: Option<String>,
    ends_on: Option<String>,
    source_kind: String,
    source_id: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
}

async fn list_where(store: &Store, column: &str, org_id: &str) -> Result<Vec<ProcessorContract>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM processor_contracts WHERE {column} = $1 ORDER BY reference, id");
    let rows: Vec<ContractRow> = sqlx::query_as(&sql).bind(org_id).fetch_all(store.pool()).await?;
    // Every party of every row in one statement.
    let ids = rows.iter().flat_map(|r| {
        [Some(&r.processor_org_id), Some(&r.client_org_id), r.parent_processor_org_id.as_ref()].into_iter().flatten()
    });
    let orgs = orgs_by_id(store, ids.cloned().collect()).await?;
    let org_ref =
        |id: &str| orgs.get(id).map(|o| o.as_ref()).ok_or_else(|| Problem::not_found("organisation introuvable"));
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(ProcessorContract {
            processor: org_ref(&row.processor_org_id)?,
            client: org_ref(&row.client_org_id)?,
            parent_processor: row.parent_processor_org_id.as_deref().map(org_ref).transpose()?,
            id: row.id,
            reference: row.reference,
            title: row.title,
            art28_clauses: row.art28_clauses,
            starts_on: row.starts_on,
            ends_on: row.ends_on,
            source_kind: row.source_kind,
            source_id: row.source_id,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        });
    }
    Ok(out)
}

/// The contracts under which `org_id` processes data (as processor or sub-processor).
pub async fn list_for_processor(store: &Store, org_id: &str) -> Result<Vec<ProcessorContract>, Problem> {
    list_where(store, "processor_org_id", org_id).await
}

/// The contracts binding processors to `org_id` (a controller, or a processor for its sub-processors).
pub async fn list_for_client(store: &Store, org_id: &str) -> Result<Vec<ProcessorContract>, Problem> {
    list_where(store, "client_org_id", org_id).await
}
