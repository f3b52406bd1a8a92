//! RGPD registers derived from what is deployed: Art. 30(1) entries of each
//! controller and Art. 30(2) entries of each processor, computed from the live
//! tenants, the catalog's RGPD facts and the active conventions' RGPD roles
//! (`derive`, pure; `load`, the queries), exported as JSON, CSV, ODS, HTML and PDF
//! (`export`), recorded as snapshots that can be diffed (`snapshots`), plus the
//! breach log (`breaches`) and the data-subject requests (`requests`).

pub mod breaches;
pub mod contracts_export;
pub mod derive;
pub mod export;
pub mod jobs;
pub mod load;
pub mod ods;
pub mod requests;
pub mod routes;
pub mod snapshots;
pub mod state;

use chrono::{DateTime, Datelike, Utc};
pub use derive::{Profile, Register};
use ent_kernel::clock::today_in_france;
use ent_kernel::error::{precondition_failed, Checks, Problem, ProblemKind};
use ent_kernel::kernel::roles::Action;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::kernel::roles::Role;
use ent_kernel::naming;
use ent_kernel::store::{new_id, timestamp, Backend, Condition, Store, Tx};
use ent_kernel::validate::printable;
use ent_platform::audit::{self, Target};
use ent_platform::contracts;
use ent_platform::identity::authz;
use ent_platform::identity::Actor;
use ent_platform::registry::Org;
use sqlx::any::AnyRow;
pub use state::RgpdState;
use std::sync::Arc;

/// The register of `org` now. An entry recorded before that reads as changed since its history
/// (dated now) is compared with the latest snapshot, read only then: one only reworded keeps its
/// date ([`snapshots::keep_dates`]).
pub async fn current(state: &RgpdState, org: &Org) -> Result<Register, Problem> {
    let now = state.clock.now();
    let today = today_in_france(now).format("%Y-%m-%d").to_string();
    let world =
        load::world(&state.store, &state.catalog, &state.models, &state.config.provisioning, &today, &org.id).await?;
    let at = timestamp(now);
    let mut register = derive::derive(&world, &state.catalog, &org.id, &today, &at);
    if register.entries.iter().any(|e| e.last_changed == at && e.first_recorded != at) {
        if let Some((_, before)) = snapshots::latest(state, &org.id).await? {
            snapshots::keep_dates(&before, &mut register);
        }
    }
    Ok(register)
}

/// The RGPD roles of `client` under the conventions in force today ([`derive::client_roles`]):
/// what a processor contract's chain starts from.
pub async fn client_roles(state: &RgpdState, client: &Org) -> Result<derive::ClientRoles, Problem> {
    let today = today_in_france(state.clock.now()).format("%Y-%m-%d").to_string();
    let world =
        load::world(&state.store, &state.catalog, &state.models, &state.config.provisioning, &today, &client.id)
            .await?;
    Ok(derive::client_roles(&world, &client.id))
}

/// Who may read or keep the registers of `target`: an admin; a DPO bound to an
/// organisation whose scope holds it (its logs, [`authz::RGPD_LOGS_READ`]: one it keeps,
/// [`authz::dpo_keeps`]); a controller at the organisation itself (a
/// DAN also for the DSDEN of its académie). Others get 404 (read) or 403 (write).
pub async fn authorize(state: &RgpdState, actor: &Actor, action: &Action, target: &Org) -> Result<(), Problem> {
    if !authz::role_allows(actor, action) {
        return Err(authz::forbidden(format!("votre rôle ne permet pas l'action {}", action.name)));
    }
    for b in actor.bindings.iter().filter(|b| action.roles.contains(&b.role)) {
        let Some(org) = &b.org else {
            if b.role == Role::Admin {
                return Ok(());
            }
            continue;
        };
        let allowed = match b.role {
            Role::Admin => true,
            // A DPO reads the registers of what its organisation covers; it keeps (writes) the
            // registers, and reads the logs, of the organisations it is the DPO of ([`authz::dpo_keeps`]).
            Role::Dpo if action.write || action.name == authz::RGPD_LOGS_READ.name => authz::dpo_keeps(org, target),
            Role::Dpo => authz::in_org_scope(&state.store, org, target).await?,
            Role::Dan if org.kind == OrgKind::Academie => {
                org.id == target.id
                    || (target.kind == OrgKind::Dsden && target.academie_code.as_deref() == Some(org.code.as_str()))
            }
            _ => org.id == target.id,
        };
        if allowed {
            return Ok(());
        }
    }
    authz::log_decision(actor, action, &target.qualified_code(), false, "rgpd: outside the actor's scope");
    if action.write && Box::pin(authorize(state, actor, &authz::RGPD_READ, target)).await.is_ok() {
        Err(authz::forbidden(format!("les registres {} sont hors de votre périmètre", naming::de(&target.name))))
    } else if action.write {
        Err(authz::out_of_scope_write(&state.store, actor, target).await?)
    } else {
        Err(Problem::not_found(format!("aucune organisation « {} »", target.code)))
    }
}

/// The organisations whose logs a binding of `role` at `org` reads (and whose registers and
/// logs it writes), in SQL over `orgs`: a DPO those it keeps ([`authz::dpo_keeps_condition`]), an
/// académie's DAN the académie and its DSDEN, any other role its own organisation.
pub fn logs_condition(role: Role, org: &Org) -> Condition {
    let mut own = Condition::default();
    own.push("id = ?", &[&org.id]);
    match role {
        Role::Dpo => authz::dpo_keeps_condition(org),
        Role::Dan if org.kind == OrgKind::Academie => {
            let mut dsden = Condition::default();
            dsden.push("kind = 'dsden' AND academie_code = ?", &[&org.code]);
            Condition::any(vec![own, dsden])
        }
        _ => own,
    }
}

/// [`authorize`] in SQL over `orgs`: the organisations whose registers `actor` may reach for
/// `action` ([`authz::RGPD_READ`], [`authz::RGPD_LOGS_READ`]); `None`: every one (an administrator).
pub fn readable_condition(actor: &Actor, action: &Action) -> Option<Condition> {
    let mut parts = Vec::new();
    for b in actor.bindings.iter().filter(|b| action.roles.contains(&b.role)) {
        let Some(org) = &b.org else {
            if b.role == Role::Admin {
                return None;
            }
            continue;
        };
        parts.push(match b.role {
            Role::Admin => return None,
            Role::Dpo if !action.write && action.name != authz::RGPD_LOGS_READ.name => authz::org_scope_condition(org),
            role => logs_condition(role, org),
        });
    }
    Some(Condition::any(parts))
}

/// The audit target kinds of the breach and request logs' entries.
pub const BREACH_KIND: &str = "rgpd_breach";
pub const REQUEST_KIND: &str = "rgpd_request";
/// The audit target kinds of a register's snapshots and of an organisation's RGPD contacts.
pub const REGISTER_KIND: &str = "rgpd_register";
pub const PROFILE_KIND: &str = "rgpd_profile";

/// Who reads the audit records of the RGPD registers: who reads the register itself
/// ([`readable_condition`]). The logs' records (a breach's facts, a request's right and
/// status) by who keeps those logs, not the DPO of an académie for a commune (another
/// controller); the registers', contacts' and processor contracts' (read on the client's
/// registers, `/rgpd/{org}/contrats`) by who reads the registers. An `auditeur` reads none of
/// them, as it reads no register.
#[derive(Debug, Clone, Copy)]
pub enum AuditReaders {
    Logs,
    Registers,
}

impl AuditReaders {
    /// Both rules, as the audit capability takes them ([`audit::KindRules`]).
    pub fn all() -> Vec<Arc<dyn audit::KindReaders>> {
        vec![Arc::new(AuditReaders::Logs), Arc::new(AuditReaders::Registers)]
    }
}

impl audit::KindReaders for AuditReaders {
    fn kinds(&self) -> &'static [&'static str] {
        match self {
            AuditReaders::Logs => &[BREACH_KIND, REQUEST_KIND],
            AuditReaders::Registers => &[REGISTER_KIND, PROFILE_KIND, contracts::AUDIT_KIND],
        }
    }

    fn readable(&self, actor: &Actor) -> Option<Condition> {
        let action = match self {
            AuditReaders::Logs => &authz::RGPD_LOGS_READ,
            AuditReaders::Registers => &authz::RGPD_READ,
        };
        readable_condition(actor, action).map(audit::about_orgs)
    }
}

/// The organisation `key` names (id, `kind:code` or code; an ambiguous code narrowed to what
/// `actor` reads, [`authz::resolve_readable`]), if `actor` may reach its
/// registers for `action` ([`authorize`]); one out of the actor's scope answers the 404 of
/// a key that names nothing, in the same words (its code is not revealed either).
pub async fn resolve(state: &RgpdState, actor: &Actor, action: &Action, key: &str) -> Result<Org, Problem> {
    let org = authz::resolve_readable(&state.store, actor, key).await?;
    match authorize(state, actor, action, &org).await {
        Ok(()) => Ok(org),
        Err(p) if p.kind == ProblemKind::NotFound => {
            Err(Problem::not_found(format!("aucune organisation « {} »", key.trim())))
        }
        Err(p) => Err(p),
    }
}

/// Records an error unless `value` holds `max` characters at most (« 5 000 caractères au plus »).
pub(crate) fn at_most(checks: &mut Checks, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        checks.fail(field, format!("{} caractères au plus", count_text(max)));
    }
}

/// A list `field` of `count` items (`what`, in French) holds `max` at most.
pub(crate) fn at_most_items(checks: &mut Checks, field: &str, count: usize, max: usize, what: &str) {
    if count > max {
        let (max, count) = (count_text(max), count_text(count));
        checks.fail(field, format!("{max} {what} au plus : la liste en compte {count}"));
    }
}

/// A number as a message says it, its thousands apart (`5 000`, below a million).
fn count_text(n: usize) -> String {
    let digits = n.to_string();
    match digits.len() {
        4.. => format!("{} {}", &digits[..digits.len() - 3], &digits[digits.len() - 3..]),
        _ => digits,
    }
}

fn check_email(checks: &mut Checks, field: &str, value: &str) {
    if !value.is_empty() {
        checks.email(field, value);
    }
}

fn check_profile(p: &Profile) -> Result<(), Problem> {
    let mut checks = Checks::default();
    check_email(&mut checks, "email", &p.email);
    check_email(&mut checks, "dpo_email", &p.dpo_email);
    let all = [
        ("head_name", &p.head_name),
        ("head_title", &p.head_title),
        ("address", &p.address),
        ("phone", &p.phone),
        ("dpo_name", &p.dpo_name),
        ("dpo_phone", &p.dpo_phone),
        ("dpo_address", &p.dpo_address),
        ("representative", &p.representative),
    ];
    for (field, value) in all {
        if value.chars().count() > 500 {
            checks.fail(field, "500 caractères au plus");
        }
    }
    // Postal addresses may span several lines; the other contact fields are one line.
    for (field, value) in all.iter().filter(|(field, _)| !field.ends_with("address")) {
        checks.line(field, value);
    }
    if p.security_measures.chars().count() > 5000 {
        checks.fail("security_measures", "5 000 caractères au plus");
    }
    check_safeguard(&mut checks, p);
    checks.finish()
}

/// The transfer safeguard: one of [`derive::TRANSFER_SAFEGUARDS`] with its reference (one
/// line of 500 characters at most), or neither.
fn check_safeguard(checks: &mut Checks, p: &Profile) {
    let reference = "transfer_safeguard_reference";
    if p.transfer_safeguard.is_empty() {
        if !p.transfer_safeguard_reference.trim().is_empty() {
            checks.fail("transfer_safeguard", "choisissez la garantie que cette référence documente");
        }
        return;
    }
    if !derive::TRANSFER_SAFEGUARDS.iter().any(|(value, _)| *value == p.transfer_safeguard) {
        let known: Vec<&str> = derive::TRANSFER_SAFEGUARDS.iter().map(|(value, _)| *value).collect();
        checks.fail(
            "transfer_safeguard",
            format!("garantie « {} » inconnue : attendu {}", printable(&p.transfer_safeguard), known.join(", ")),
        );
    }
    checks.text(reference, &p.transfer_safeguard_reference, 500);
    checks.line(reference, &p.transfer_safeguard_reference);
}

/// Records the RGPD contacts of `org`; `expected` is the version read (`None`: creation).
pub async fn save_profile(
    state: &RgpdState,
    actor: &Actor,
    org: &Org,
    profile: &Profile,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64, Problem> {
    check_profile(profile)?;
    let mut tx = state.store.begin_write().await?;
    let (previous, current) = match load::profile_in(&mut tx, &org.id).await? {
        Some((previous, version)) => (previous, Some(version)),
        None => (Profile::default(), None),
    };
    let at = timestamp(now);
    let version = match (current, expected) {
        (Some(v), Some(e)) if v == e => v + 1,
        (Some(v), _) => return Err(precondition_failed(v)),
        (None, Some(_)) => return Err(Problem::not_found("aucune fiche RGPD enregistrée pour cette organisation")),
        (None, None) => 1,
    };
    sqlx::query(
        "INSERT INTO rgpd_profiles (org_id, head_name, head_title, address, phone, email, dpo_name, dpo_email, dpo_phone, \
         dpo_address, representative, security_measures, version, updated_by, updated_at, transfer_safeguard, \
         transfer_safeguard_reference) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (org_id) DO UPDATE SET head_name = $2, head_title = $3, address = $4, phone = $5, email = $6, \
         dpo_name = $7, dpo_email = $8, dpo_phone = $9, dpo_address = $10, representative = $11, \
         security_measures = $12, version = $13, updated_by = $14, updated_at = $15, transfer_safeguard = $16, \
         transfer_safeguard_reference = $17",
    )
    .bind(&org.id)
    .bind(&profile.head_name)
    .bind(&profile.head_title)
    .bind(&profile.address)
    .bind(&profile.phone)
    .bind(&profile.email)
    .bind(&profile.dpo_name)
    .bind(&profile.dpo_email)
    .bind(&profile.dpo_phone)
    .bind(&profile.dpo_address)
    .bind(&profile.representative)
    .bind(&profile.security_measures)
    .bind(version)
    .bind(&actor.name)
    .bind(&at)
    .bind(&profile.transfer_safeguard)
    .bind(profile.transfer_safeguard_reference.trim())
    .execute(&mut *tx)
    .await?;
    let target = Target::new(PROFILE_KIND, &org.id, Some(&org.id));
    audit::record(
        &mut tx,
        state.store.backend(),
        actor,
        "rgpd.profile.update",
        &target,
        serde_json::json!({
            "version": version,
            "transfer_safeguard": profile.transfer_safeguard,
            "changes": audit::changes(&serde_json::json!(previous), &serde_json::json!(profile)),
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// An export of a register and the snapshot recording it.
pub struct Exported {
    pub bytes: Vec<u8>,
    pub format: export::Format,
    pub file_name: String,
    pub snapshot: snapshots::Snapshot,
}

/// `org`'s register derived now and rendered, nothing recorded: what a read shows.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub file_name: String,
    /// The register's fingerprint, as a snapshot of it would have ([`snapshots::fingerprint`]).
    pub sha256: String,
}

/// Derives and renders `org`'s register without storing anything.
pub async fn render_register(state: &RgpdState, org: &Org, format: export::Format) -> Result<Rendered, Problem> {
    let register = current(state, org).await?;
    let bytes = render_blocking(&register, format).await?;
    Ok(Rendered {
        bytes,
        file_name: export::file_name("registre-rgpd", &org.code, &register.as_of, format),
        sha256: snapshots::fingerprint(&register),
    })
}

/// Renders `org`'s register in `format`, then records it as a snapshot, unless the latest
/// one is identical (a failed rendering, e.g. PDF without LibreOffice, records nothing).
pub async fn export_register(
    state: &RgpdState,
    actor: &str,
    org: &Org,
    format: export::Format,
) -> Result<Exported, Problem> {
    let register = current(state, org).await?;
    let bytes = render_blocking(&register, format).await?;
    let (snapshot, _) =
        snapshots::record(state, actor, org, &register, format.as_str(), "export", state.clock.now()).await?;
    Ok(Exported {
        bytes,
        format,
        file_name: export::file_name("registre-rgpd", &org.code, &register.as_of, format),
        snapshot,
    })
}

/// [`export::render`], on a blocking thread for PDF.
pub async fn render_blocking(register: &Register, format: export::Format) -> Result<Vec<u8>, Problem> {
    if format != export::Format::Pdf {
        return export::render(register, format);
    }
    let register = register.clone();
    tokio::task::spawn_blocking(move || export::render(&register, format))
        .await
        .map_err(|e| anyhow::anyhow!("pdf task: {e}"))?
}

/// The logs a controller keeps besides its register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    Breaches,
    Requests,
}

impl Log {
    /// The table of its entries.
    pub(crate) const fn table(self) -> &'static str {
        match self {
            Log::Breaches => "rgpd_breaches",
            Log::Requests => "rgpd_requests",
        }
    }

    /// The prefix of its references (`VIOL-2026-000001`, `DEM-2026-000001`).
    fn prefix(self) -> &'static str {
        match self {
            Log::Breaches => "VIOL",
            Log::Requests => "DEM",
        }
    }
}

/// The authors of log entries (`created_by`) as `reader` reads them: a person's address only
/// where it reads the account, `(masqué)` otherwise, as the audit log shows the same person
/// ([`audit::mask_people`]): a processor's agent who notified a breach is no person of the
/// controller's DPO.
pub async fn shown_authors<'a>(
    state: &RgpdState,
    reader: &Actor,
    authors: impl Iterator<Item = &'a mut String>,
) -> Result<(), Problem> {
    audit::mask_people(&state.store, reader, authors.collect()).await
}

/// A log as exported: its records in JSON, and as a table.
struct LogTable {
    json: Vec<u8>,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl LogTable {
    fn of<T: serde::Serialize>(records: &[T], rows: fn(&[T]) -> Vec<Vec<String>>, header: &[&'static str]) -> LogTable {
        let json = serde_json::to_vec_pretty(records).expect("records serialise");
        LogTable { json, header: header.to_vec(), rows: rows(records) }
    }
}

/// The entries of `org` in the log `table` (read with `columns`), in `order`.
async fn log_entries<R>(store: &Store, table: &str, columns: &str, org: &Org, order: &str) -> Result<Vec<R>, Problem>
where
    R: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
{
    let sql = format!("SELECT {columns} FROM {table} WHERE org_id = $1 ORDER BY {order}");
    Ok(sqlx::query_as(&sql).bind(&org.id).fetch_all(store.pool()).await?)
}

/// The entry of `org` in the log `table` whose id or reference is `key`.
async fn log_entry<R>(store: &Store, table: &str, columns: &str, org: &Org, key: &str) -> Result<Option<R>, Problem>
where
    R: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
{
    let sql = format!("SELECT {columns} FROM {table} WHERE org_id = $1 AND (id = $2 OR reference = $3)");
    Ok(sqlx::query_as(&sql).bind(&org.id).bind(key).bind(key).fetch_optional(store.pool()).await?)
}

/// A new log entry of `org_id`: its id and reference `PREFIX-YYYY-NNNNNN`, numbered in the
/// entry's transaction `tx` in the controller's own series of the year in France
/// ([`next_reference`]). The organisation's row is locked first, until commit: two entries of
/// one controller are numbered one after the other, and a second send of the same entry waits
/// for the first one and then finds it, even across New Year's midnight.
async fn new_log_entry(tx: &mut Tx, log: Log, org_id: &str, now: DateTime<Utc>) -> Result<(String, String), Problem> {
    lock_org_row(tx, org_id).await?;
    let reference = next_reference(tx, log, org_id, today_in_france(now).year()).await?;
    Ok((new_id(), reference))
}

/// The next reference of `log` for the controller `org_id` in `year`: one above the highest
/// number its log already holds that year (`VIOL-2026-000001` for its first). Each controller
/// has its own series, so that no one infers from its numbers how many entries others
/// recorded, and a register's numbers follow each other without gaps (a rolled-back entry
/// gives its number back). References written before the series (six hexadecimal digits) are
/// kept, and a number among them in digits alone is carried on from. The caller holds the
/// organisation's row lock ([`lock_org_row`]), so two entries never get the same number.
pub async fn next_reference(tx: &mut Tx, log: Log, org_id: &str, year: i32) -> Result<String, Problem> {
    let prefix = format!("{}-{year}-", log.prefix());
    let number = format!("SUBSTR(reference, {})", prefix.len() + 1);
    let sql = format!(
        "SELECT MAX(CAST({number} AS BIGINT)) FROM {} WHERE org_id = $1 AND reference LIKE $2 \
         AND {number} <> '' AND LTRIM({number}, '0123456789') = ''",
        log.table()
    );
    let last: Option<i64> =
        sqlx::query_scalar(&sql).bind(org_id).bind(format!("{prefix}%")).fetch_one(&mut **tx).await?;
    Ok(format!("{prefix}{:06}", last.unwrap_or(0) + 1))
}

/// Locks the row of the organisation `org_id` until the end of `tx` (PostgreSQL; SQLite's
/// write transaction already holds every other writer off).
pub(crate) async fn lock_org_row(tx: &mut Tx, org_id: &str) -> Result<(), Problem> {
    let lock = Backend::of_connection(tx).for_update();
    sqlx::query(&format!("SELECT id FROM orgs WHERE id = $1{lock}")).bind(org_id).fetch_optional(&mut **tx).await?;
    Ok(())
}

/// A log of `org` in `format` (JSON: the records as the API shows them to `reader`, [`shown_authors`])
/// and its file name.
pub async fn export_log(
    state: &RgpdState,
    reader: &Actor,
    org: &Org,
    log: Log,
    format: export::Format,
) -> Result<(Vec<u8>, String), Problem> {
    let today = today_in_france(state.clock.now()).format("%Y-%m-%d").to_string();
    let table = match log {
        Log::Breaches => {
            let mut entries = breaches::list(state, org).await?;
            shown_authors(state, reader, entries.iter_mut().map(|b| &mut b.created_by)).await?;
            LogTable::of(&entries, breaches::rows, &breaches::HEADER)
        }
        Log::Requests => {
            let mut entries = requests::list(state, org).await?;
            shown_authors(state, reader, entries.iter_mut().map(|r| &mut r.created_by)).await?;
            LogTable::of(&entries, requests::rows, &requests::HEADER)
        }
    };
    let (title, prefix) = match log {
        Log::Breaches => ("Registre des violations de données personnelles", "violations"),
        Log::Requests => ("Registre des demandes d'exercice des droits", "demandes-droits"),
    };
    let name = export::file_name(prefix, &org.code, &today, format);
    if format == export::Format::Json {
        return Ok((table.json, name));
    }
    let (org_name, header, rows) = (org.name.clone(), table.header, table.rows);
    let render = move || export::table(title, &org_name, &header, &rows, format);
    let bytes = if format == export::Format::Pdf {
        tokio::task::spawn_blocking(render).await.map_err(|e| anyhow::anyhow!("pdf task: {e}"))??
    } else {
        render()?
    };
    Ok((bytes, name))
}
