//! ENT tenants: one ENT instance for an établissement or a commune (all its
//! écoles), its bouquet, capacity and identity source, and its lifecycle
//! (requested → provisioning → active → suspended → decommissioning → archived)
//! behind the governance gate: no provisioning without an active convention.

pub mod annex;
pub mod coverage;
pub mod destruction;
pub mod guardrails;
pub mod hostnames;
pub mod notices;
pub mod routes;
pub mod state;

use crate::provisioning::purge;
use chrono::{DateTime, NaiveDate, Utc};
use ent_conventions::conventions::{active_covering, convention_needed, covered_etablissements, covering_later};
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::{conflict_unless, Checks, FieldError, Problem, ProblemKind};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::naming;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::expect_version;
use ent_kernel::store::sql::{AnyQuery, Condition};
use ent_kernel::store::{new_id, on_constraint, page_size, timestamp, JsonText, Page, Store, Tx};
use ent_kernel::text_enum;
use ent_kernel::validate::{self, is_dns_label, is_hostname};
use ent_platform::audit::{self, Audited, Shown, Target};
pub use ent_platform::catalog::IdentitySource;
use ent_platform::catalog::{thousands, Catalog, Service};
use ent_platform::contracts::{binding_market, Market};
use ent_platform::identity::authz::{self, TENANTS_READ, TENANTS_TRANSITION};
use ent_platform::identity::{Actor, Caller};
use ent_platform::registry::queries::{covers, get_org, orgs_by_id, Relatives};
use ent_platform::registry::{funded_degree, missing_org, Org, OrgRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::FromRow;
pub use state::TenantsState;

pub const API_VERSION: &str = "entcp.education.fr/v1";
pub const KIND: &str = "EntTenant";

/// What a tenant should be: the `spec` of an `EntTenant` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantSpec {
    /// The établissement (UAI) or commune (`commune:INSEE`) served.
    pub organisation: String,
    pub hostname: String,
    /// Base bouquet id (`socle-1d`, `socle-2d`).
    pub bouquet: String,
    #[serde(default)]
    pub options: Vec<String>,
    /// Expected accounts; from the registry's pupil counts when absent.
    #[serde(default)]
    pub accounts: Option<i64>,
    #[serde(default = "default_identity")]
    pub identity_source: IdentitySource,
    /// The vendor (éditeur) of the ENT solution, `editeur:<SIREN>`: the N3 support and a processor.
    /// When absent, the vendor of record (e.g. set by a group purchase award) is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The host (hébergeur), `hebergeur:<SIREN>`: a processor, or a sub-processor of the vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

fn default_identity() -> IdentitySource {
    IdentitySource::Educonnect
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The tenant's slug: a DNS label.
    pub name: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The Kubernetes-style document (`kubectl apply` shape), also a CRD in GitOps repositories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntTenant {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: TenantSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Requested,
    Provisioning,
    Active,
    Suspended,
    Decommissioning,
    Archived,
    /// Data deleted once the retention period after archiving ran out (the `tenants-purge` job).
    Purged,
}

impl Status {
    /// Its French name, as pages, events and errors say it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Requested => "demandé",
            Status::Provisioning => "en déploiement",
            Status::Active => "actif",
            Status::Suspended => "suspendu",
            Status::Decommissioning => "en retrait",
            Status::Archived => "archivé",
            Status::Purged => "purgé",
        }
    }

    /// The moves the lifecycle allows (purging is the retention job's, not a move).
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Requested, Provisioning)
                | (Provisioning, Active)
                | (Active, Suspended)
                | (Suspended, Active)
                | (Active | Suspended | Provisioning, Decommissioning)
                | (Decommissioning, Archived)
        )
    }

    /// Whether the tenant is still to be served (requested, provisioning, active, suspended):
    /// a new contract's vendor takes it over. A tenant withdrawn or archived keeps the vendor
    /// that holds its data until the purge; a purged one has nothing left to hand over.
    pub fn still_served(self) -> bool {
        matches!(self, Status::Requested | Status::Provisioning | Status::Active | Status::Suspended)
    }

    /// Whether a move to this state needs a reason: it cuts the service (suspension,
    /// withdrawal), and the people concerned are told why.
    pub fn needs_reason(self) -> bool {
        matches!(self, Status::Suspended | Status::Decommissioning)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub organisation: OrgRef,
    pub hostname: String,
    pub bouquet: String,
    pub options: Vec<String>,
    pub accounts: i64,
    pub identity_source: IdentitySource,
    pub status: Status,
    /// Set when an admin let the tenant through the governance gate without a convention.
    pub gate_override: Option<GateOverride>,
    /// The convention that allowed provisioning.
    pub convention_id: Option<String>,
    /// When the daily job `tenants-coverage` found that no convention in force covers some
    /// établissement the tenant serves (absent while every one is covered; an override of the
    /// gate does not silence it). The tenant keeps running: the DAN decides.
    pub coverage_lapsed_at: Option<String>,
    /// The établissements (UAI; the organisation's own code when it serves no école) that no
    /// convention in force covers, as the job last found them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage_uncovered: Vec<String>,
    /// The vendor (éditeur) of the solution: N3 support, processor.
    pub vendor: Option<OrgRef>,
    /// The host (hébergeur): processor or sub-processor.
    pub host: Option<OrgRef>,
    /// What the reconciler did and what the backend reports.
    pub provisioning_state: ProvisioningState,
    /// The custom resource that declares the tenant (`EntTenant <namespace>/<name>`), watched by
    /// `entctl operator`: the tenant is then changed through it only. Absent: the API declares it.
    pub declared_by: Option<String>,
    /// The attestation of destruction of its data, once purged (migration 0073).
    pub destruction: Option<destruction::Destruction>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// The reconciler's record of a tenant.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, sqlx::FromRow)]
pub struct ProvisioningState {
    /// Last successful apply to the backend.
    pub reconciled_at: Option<String>,
    /// Last failure, until an apply succeeds.
    #[sqlx(rename = "reconcile_error")]
    pub error: Option<String>,
    /// Failures in a row; the next attempt waits `retry_at`.
    #[sqlx(rename = "reconcile_failures")]
    pub failures: i64,
    pub retry_at: Option<String>,
    /// What the backend reports: `written` (manifests), `progressing`, `available`,
    /// `degraded`, `stopped` (suspended), `data_only` (decommissioned), `removed`.
    pub observed: Option<String>,
    pub observed_detail: Option<String>,
    pub observed_at: Option<String>,
    pub archived_at: Option<String>,
    /// When the `tenants-purge` job announced the purge of the archived tenant (event and
    /// e-mail `purge_planned`), once.
    pub purge_announced_at: Option<String>,
    /// When the purge of the archived tenant is due, set by its archiving (`retention_months`
    /// then); it is purged from then on, at most `purge::HOLD_DAYS` later.
    pub purge_due_at: Option<String>,
    pub purged_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GateOverride {
    pub by: String,
    pub reason: String,
    /// The schools (UAI) the override let through without a convention in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncovered: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct TenantEvent {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub message: String,
}

/// A spec checked against the registry and the catalog.
struct Checked {
    org: Org,
    accounts: i64,
    vendor: Option<Org>,
    host: Option<Org>,
    spec_hash: String,
}

/// Binds the six columns a spec sets: hostname, bouquet, options, accounts, identity source, hash.
fn bind_spec<'q>(query: AnyQuery<'q>, spec: &'q TenantSpec, checked: &'q Checked) -> AnyQuery<'q> {
    query
        .bind(&spec.hostname)
        .bind(&spec.bouquet)
        .bind(serde_json::to_string(&spec.options).expect("options"))
        .bind(checked.accounts)
        .bind(spec.identity_source.as_str())
        .bind(&checked.spec_hash)
}

/// The organisation `actor` names `key` ([`authz::resolve_readable`]), refused as a key
/// naming nothing when it may not read it ([`authz::reads`]): before anything is said of it
/// (its name, its kind), out of scope and missing answer alike.
async fn readable_org(store: &Store, actor: &Actor, key: &str) -> Result<Org, Problem> {
    let org = authz::resolve_readable(store, actor, key).await?;
    if !authz::reads(store, actor, &org).await? {
        return Err(missing_org(key));
    }
    Ok(org)
}

/// Resolves an optional processor reference `actor` names, which must be of `kind` (an
/// éditeur or hébergeur may be named out of the caller's scope, as before). One of another
/// kind is named as such only when `actor` may read it ([`authz::reads`]); otherwise the
/// check says what it says of a key naming nothing (neither its name nor its kind).
async fn processor_org(
    store: &Store,
    actor: &Actor,
    checks: &mut Checks,
    field: &str,
    key: Option<&str>,
    kind: OrgKind,
) -> Result<Option<Org>, Problem> {
    let Some(key) = key else { return Ok(None) };
    match authz::resolve_readable(store, actor, key).await {
        Ok(org) if org.kind == kind => Ok(Some(org)),
        Ok(org) if authz::reads(store, actor, &org).await? => {
            checks.fail(field, format!("{} n'est pas un {}", org.name, kind.as_str()));
            Ok(None)
        }
        Ok(_) => {
            checks.fail(field, missing_org(key).detail);
            Ok(None)
        }
        Err(e) => {
            checks.fail(field, e.detail);
            Ok(None)
        }
    }
}

fn spec_hash(slug: &str, spec: &TenantSpec) -> String {
    let canonical = serde_json::to_string(&(slug, spec)).expect("spec serialises");
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Pupils of an établissement, or of a commune's écoles.
async fn pupils_of(store: &Store, org: &Org) -> Result<i64, Problem> {
    if org.kind == OrgKind::Etablissement {
        return Ok(org.pupils.unwrap_or(0));
    }
    let mut total = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = covers(store, org, None, cursor.as_deref(), Some(500)).await?;
        total += page.items.iter().filter_map(|o| o.pupils).sum::<i64>();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(total),
        }
    }
}

/// The document's spec checked, its organisations as `actor` names them (an ambiguous code
/// narrowed to what it reads, [`authz::resolve_readable`]).
async fn check_spec(
    store: &Store,
    actor: &Actor,
    catalog: &Catalog,
    slug: &str,
    spec: &TenantSpec,
) -> Result<Checked, Problem> {
    let mut checks = Checks::default();
    if !is_dns_label(slug, 40) {
        checks.fail("metadata.name", "identifiant invalide : minuscules, chiffres et tirets, 40 caractères au plus");
    }
    if !is_hostname(&spec.hostname) {
        checks.fail("spec.hostname", format!("nom d'hôte « {} » invalide", spec.hostname));
    }
    if spec.accounts.is_some_and(|a| a < 0) {
        checks.fail("spec.accounts", "nombre de comptes négatif");
    }
    let org = match readable_org(store, actor, &spec.organisation).await {
        Ok(org) if matches!(org.kind, OrgKind::Etablissement | OrgKind::Commune) => Some(org),
        Ok(org) => {
            checks.fail("spec.organisation", format!("{} n'est ni un établissement ni une commune", org.name));
            None
        }
        Err(e) => {
            checks.fail("spec.organisation", e.detail);
            None
        }
    };
    let vendor =
        processor_org(store, actor, &mut checks, "spec.vendor", spec.vendor.as_deref(), OrgKind::Editeur).await?;
    let host = processor_org(store, actor, &mut checks, "spec.host", spec.host.as_deref(), OrgKind::Hebergeur).await?;
    for (i, option) in spec.options.iter().enumerate() {
        if let Some(first) = spec.options[..i].iter().position(|o| o == option) {
            checks.fail(
                &format!("spec.options[{i}]"),
                format!("option « {option} » déjà demandée (spec.options[{first}])"),
            );
        }
    }
    checks.collect(resolve_spec(catalog, spec))?;
    if let Some(org) = &org {
        hostnames::check_uais(store, org, &spec.hostname, &mut checks).await?;
    }
    if let (Some(org), Some(bouquet)) = (&org, catalog.bouquet(&spec.bouquet, None)) {
        let degree = funded_degree(org.kind).or(org.degree);
        if degree.is_some_and(|d| !bouquet.degrees.contains(&d)) {
            checks.fail(
                "spec.bouquet",
                format!("le bouquet {} ne convient pas au degré {}", spec.bouquet, naming::de(&org.name)),
            );
        }
    }
    checks.finish()?;
    let org = org.expect("checked");
    let accounts = match spec.accounts {
        Some(a) => a,
        None => pupils_of(store, &org).await?,
    };
    Ok(Checked { org, accounts, vendor, host, spec_hash: spec_hash(slug, spec) })
}

/// A tenant past `requested` is served, and its certificate asked, under its hostname: moving
/// it to another name (any the syntax allows, another body's included) is decided by the DAN
/// or an admin, as its deployment was, not by the collectivité or the school that declares it.
async fn check_hostname_change(
    store: &Store,
    actor: &Actor,
    current: &Tenant,
    spec: &TenantSpec,
    org: &Org,
) -> Result<(), Problem> {
    if current.hostname == spec.hostname || current.status == Status::Requested {
        return Ok(());
    }
    authz::authorize(store, actor, &authz::TENANTS_TRANSITION, org).await.map_err(|p| match p.kind {
        ProblemKind::Forbidden | ProblemKind::NotFound => authz::forbidden(format!(
            "le nom d'hôte d'un ENT déjà déployé ({}) ne se change que par la DAN ou un administrateur",
            current.hostname
        )),
        _ => p,
    })
}

/// The services of `spec`'s bouquet and options ([`Catalog::resolve`]); a refusal names the
/// document's field at fault: `spec.bouquet` for the base bouquet (the catalog's `base`),
/// `spec.options[i]` for the option at index `i`.
fn resolve_spec<'c>(catalog: &'c Catalog, spec: &TenantSpec) -> Result<Vec<&'c Service>, Problem> {
    let options: Vec<&str> = spec.options.iter().map(String::as_str).collect();
    catalog.resolve(&spec.bouquet, &options).map_err(|refused| {
        let field = |field: String| match field.as_str() {
            "base" => "spec.bouquet".to_string(),
            _ => format!("spec.{field}"),
        };
        let errors = refused.errors.into_iter().map(|e| FieldError { field: field(e.field), message: e.message });
        Problem::invalid(errors.collect())
    })
}

/// The field of `spec` that brings the service `code`: `spec.bouquet` when its base bouquet
/// holds it, else `spec.options[i]` of the first option that does.
fn field_of_service(catalog: &Catalog, spec: &TenantSpec, code: &str) -> String {
    let holds = |id: &str| catalog.bouquet(id, None).is_some_and(|b| b.services.iter().any(|s| s == code));
    match spec.options.iter().position(|id| holds(id)) {
        Some(i) if !holds(&spec.bouquet) => format!("spec.options[{i}]"),
        _ => "spec.bouquet".into(),
    }
}

/// Refuses a change that would make a volume of a tenant already provisioned smaller:
/// Kubernetes refuses to shrink a PersistentVolumeClaim (422, retried for ever), and the
/// data would not fit anyway. A tenant still `requested` has no volume yet.
fn refuse_shrinking_volumes(
    catalog: &Catalog,
    current: &Tenant,
    spec: &TenantSpec,
    accounts: i64,
) -> Result<(), Problem> {
    if matches!(current.status, Status::Requested | Status::Purged) {
        return Ok(());
    }
    let old_options: Vec<&str> = current.options.iter().map(String::as_str).collect();
    // A bouquet no longer in the catalog: nothing to compare with.
    let Ok(before) = catalog.resolve(&current.bouquet, &old_options) else { return Ok(()) };
    let after = resolve_spec(catalog, spec)?;
    let shrunk: Vec<String> = after
        .iter()
        .filter_map(|service| {
            let old = before.iter().find(|b| b.code == service.code)?;
            let (from, to) = (old.deployment.storage_gib(current.accounts), service.deployment.storage_gib(accounts));
            (to < from).then(|| format!("{} ({from} Gio → {to} Gio)", service.code))
        })
        .collect();
    if shrunk.is_empty() {
        return Ok(());
    }
    Err(Problem::invalid_field(
        "spec.accounts",
        format!(
            "un volume déjà provisionné ne peut pas rétrécir : {} ; gardez au moins {} comptes",
            shrunk.join(", "),
            (thousands(current.accounts) - 1) * 1000 + 1
        ),
    ))
}

/// The configured guardrails on the spec (see [`guardrails`]); the approval the change needed.
/// A document a resource declares (`declared_by`) never approves, whoever applies it.
async fn check_guardrails(
    state: &TenantsState,
    actor: &Actor,
    doc: &EntTenant,
    checked: &Checked,
    existing: Option<&Tenant>,
    declared_by: Option<&str>,
) -> Result<Option<guardrails::Approval>, Problem> {
    let approver = match declared_by {
        Some(_) => guardrails::Approver::Resource,
        None if guardrails::approves(&state.store, actor, &checked.org).await? => guardrails::Approver::Yes,
        None => guardrails::Approver::No,
    };
    let services = resolve_spec(&state.catalog, &doc.spec)?;
    let field_of = |code: &str| field_of_service(&state.catalog, &doc.spec, code);
    let request = guardrails::Request {
        org: &checked.org,
        hostname: &doc.spec.hostname,
        accounts: checked.accounts,
        current_accounts: existing.map(|t| t.accounts),
        services: &services,
        field_of: &field_of,
    };
    let provisioning = &state.config.provisioning;
    guardrails::check(&provisioning.guardrails, &provisioning.cluster, &request, approver)
}

/// What `apply` did, as `kubectl apply` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

/// Appends an event to the tenant's log, in the caller's transaction.
pub async fn event(
    tx: &mut Tx,
    tenant_id: &str,
    actor: &str,
    kind: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    sqlx::query("INSERT INTO tenant_events (id, tenant_id, at, actor, kind, message) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(new_id())
        .bind(tenant_id)
        .bind(timestamp(now))
        .bind(actor)
        .bind(kind)
        .bind(message)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Audited for Tenant {
    fn target_kind(&self) -> &'static str {
        "tenant"
    }
    fn target_id(&self) -> &str {
        &self.id
    }
    fn scope_org_id(&self) -> Option<&str> {
        Some(&self.organisation.id)
    }
}

/// Creates or updates a tenant from its document; `expected_version` (If-Match) guards updates.
/// A tenant a custom resource declares is refused (409): it changes through its resource.
pub async fn apply(
    state: &TenantsState,
    actor: &Actor,
    doc: &EntTenant,
    expected_version: Option<i64>,
) -> Result<(Applied, Tenant), Problem> {
    apply_declared(state, actor, doc, expected_version, None).await
}

/// Creates a tenant from its document, as a creation form does: an existing slug is refused
/// (409 on `metadata.name`, the same words whoever holds it), never reconfigured.
pub async fn create(state: &TenantsState, actor: &Actor, doc: &EntTenant) -> Result<Tenant, Problem> {
    write_document(state, actor, doc, Mode { expected_version: None, declared_by: None, existing: OnExisting::Refuse })
        .await
        .map(|(_, tenant)| tenant)
}

/// Creates a tenant from its document, as `POST /api/v1/tenants` does: a document sent again
/// unchanged (a retry whose answer was lost) answers `unchanged`; a different one for an
/// existing slug is refused (409), since only `PUT` with `If-Match` changes a tenant, so that
/// no edit overwrites another unseen.
pub async fn create_or_same(
    state: &TenantsState,
    actor: &Actor,
    doc: &EntTenant,
) -> Result<(Applied, Tenant), Problem> {
    write_document(
        state,
        actor,
        doc,
        Mode { expected_version: None, declared_by: None, existing: OnExisting::KeepIfSame },
    )
    .await
}

/// The 409 of a `POST` of another document for an existing tenant: only `PUT` changes one.
fn update_through_put(slug: &str) -> Problem {
    Problem::conflict(format!(
        "le tenant « {slug} » existe déjà : modifiez-le par PUT /api/v1/tenants/{slug} avec l'en-tête If-Match \
         de la version lue"
    ))
}

/// The hash of a tenant's stored specification.
async fn stored_spec_hash(store: &Store, id: &str) -> Result<String, Problem> {
    Ok(sqlx::query_scalar("SELECT spec_hash FROM tenants WHERE id = $1").bind(id).fetch_one(store.pool()).await?)
}

/// The 409 of a change to a tenant declared elsewhere than where the change comes from:
/// through the API (or console) to a tenant a custom resource declares, or through a
/// custom resource to a tenant of the same name the API (or another resource) declared.
pub fn declared_elsewhere(tenant: &Tenant, by: Option<&str>) -> Result<(), Problem> {
    match (tenant.declared_by.as_deref(), by) {
        (current, by) if current == by => Ok(()),
        (Some(resource), _) => Err(Problem::new(
            ProblemKind::DeclaredByResource,
            format!(
                "le tenant {} est géré par la ressource Kubernetes {resource} : modifiez son manifeste puis \
                 appliquez-le (`kubectl apply -f`, ou par votre dépôt GitOps) ; l'API et la console ne le \
                 modifient pas",
                tenant.slug
            ),
        )
        .with_extra(serde_json::json!({ "declared_by": resource }))),
        (None, _) => Err(Problem::conflict(format!(
            "un tenant {} existe déjà, créé par l'API ou la console : la ressource ne l'adopte pas \
             (renommez-la, ou supprimez-la)",
            tenant.slug
        ))),
    }
}

/// The 409 of a slug held by a tenant the actor may not read: the same for every such tenant,
/// naming neither its organisation nor where it is declared.
fn slug_taken(slug: &str) -> Problem {
    Problem::conflict(format!("l'identifiant « {slug} » est déjà pris par un autre tenant : choisissez-en un autre"))
}

/// The refusal of a creation whose slug is taken: [`slug_taken`] on the `metadata.name` field,
/// whether or not the actor may read the tenant holding it.
fn slug_taken_on_create(slug: &str) -> Problem {
    let mut problem = slug_taken(slug);
    problem.errors.push(FieldError {
        field: "metadata.name".into(),
        message: format!(
            "l'identifiant « {slug} » est déjà pris : choisissez-en un autre (un ENT existant se modifie depuis sa page)"
        ),
    });
    problem
}

/// The 409 of a document naming a purged tenant: its data were deleted at the end of the
/// retention period and its slug stays its own (its events and audit records name it), so
/// a new ENT takes another slug rather than being declared silently over the purged one.
fn refuse_purged(tenant: &Tenant) -> Result<(), Problem> {
    if tenant.status != Status::Purged {
        return Ok(());
    }
    let when = tenant.provisioning_state.purged_at.as_deref().map(|at| format!(" le {}", &at[..at.len().min(10)]));
    Err(Problem::conflict(format!(
        "le tenant {} a été purgé{} (ses données ont été supprimées à la fin de la durée de conservation) : \
         son identifiant ne peut pas être réutilisé pour un nouvel ENT ; choisissez-en un autre",
        tenant.slug,
        when.unwrap_or_default()
    ))
    .with_extra(serde_json::json!({ "purged_at": tenant.provisioning_state.purged_at })))
}

/// Whether the actor may read `org` (a tenant's registered organisation; none: only an admin).
async fn reads_org(store: &Store, actor: &Actor, org: Option<&Org>) -> Result<bool, Problem> {
    match org {
        Some(org) => authz::reads(store, actor, org).await,
        None => Ok(actor.is_admin()),
    }
}

/// `tenants.write` on the organisation the document names `key`: one the actor cannot read
/// is named like an unknown one (422 on `spec.organisation`).
async fn authorize_named(store: &Store, actor: &Actor, key: &str, org: &Org) -> Result<(), Problem> {
    match authz::authorize(store, actor, &authz::TENANTS_WRITE, org).await {
        Err(p) if p.kind == ProblemKind::NotFound => {
            Err(Problem::invalid_field("spec.organisation", format!("aucune organisation « {key} »")))
        }
        other => other,
    }
}

/// The custom resource that declared the tenant is gone (after its decommissioning):
/// the tenant returns to the API and the console (for archiving). Evented.
pub async fn release_declaration(
    store: &Store,
    tenant: &Tenant,
    actor: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let mut tx = store.begin_write().await?;
    sqlx::query("UPDATE tenants SET declared_by = NULL, version = version + 1, updated_at = $1 WHERE id = $2 AND declared_by = $3")
        .bind(timestamp(now))
        .bind(&tenant.id)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    let message = format!("ressource {by} supprimée : tenant décommissionné, rendu à l'API");
    event(&mut tx, &tenant.id, actor, "released", &message, now).await?;
    tx.commit().await?;
    Ok(())
}

/// [`apply`] for a document `declared_by` a custom resource (`None`: the API, console or CLI).
pub async fn apply_declared(
    state: &TenantsState,
    actor: &Actor,
    doc: &EntTenant,
    expected_version: Option<i64>,
    declared_by: Option<&str>,
) -> Result<(Applied, Tenant), Problem> {
    write_document(state, actor, doc, Mode { expected_version, declared_by, existing: OnExisting::Update }).await
}

/// How [`write_document`] treats a document: the version an update expects, the custom resource
/// declaring it, and what it does to an existing tenant of the same slug.
struct Mode<'a> {
    expected_version: Option<i64>,
    declared_by: Option<&'a str>,
    existing: OnExisting,
}

/// What a document does to an existing tenant of its slug.
#[derive(PartialEq)]
enum OnExisting {
    /// Reconfigures it (`PUT`, `entctl apply -f`, a custom resource).
    Update,
    /// Refused whatever it holds (the console's creation form).
    Refuse,
    /// Nothing when it holds the same, refused otherwise (`POST`).
    KeepIfSame,
}

/// The document applied (see [`apply_declared`] and [`create`]).
async fn write_document(
    state: &TenantsState,
    actor: &Actor,
    doc: &EntTenant,
    Mode { expected_version, declared_by, existing: on_existing }: Mode<'_>,
) -> Result<(Applied, Tenant), Problem> {
    if doc.api_version != API_VERSION || doc.kind != KIND {
        return Err(Problem::invalid_field(
            "kind",
            format!("document attendu : apiVersion {API_VERSION}, kind {KIND}"),
        ));
    }
    let (store, now) = (&state.store, state.clock.now());
    let slug = doc.metadata.name.as_str();
    let mut checked = check_spec(store, actor, &state.catalog, slug, &doc.spec).await?;
    // The organisation the document names is authorised before anything about the slug is told.
    authorize_named(store, actor, &doc.spec.organisation, &checked.org).await?;
    let existing = get_tenant(store, slug).await?;
    if existing.is_none() {
        take_market_processors(store, &doc.spec, &mut checked, today_in_france(now)).await?;
    }
    let registered = match &existing {
        Some(t) => get_org(store, &t.organisation.id).await?,
        None => None,
    };
    if on_existing == OnExisting::Refuse && existing.is_some() {
        return Err(slug_taken_on_create(slug));
    }
    if let Some(current) = &existing {
        // A tenant the actor may not read: its slug is taken, by whom is not told.
        if !reads_org(store, actor, registered.as_ref()).await? {
            return Err(slug_taken(slug));
        }
        refuse_purged(current)?;
        declared_elsewhere(current, declared_by)?;
        // A POST of another document is the 409 that points to PUT, before any check of the change.
        if on_existing == OnExisting::KeepIfSame && stored_spec_hash(store, &current.id).await? != checked.spec_hash {
            return Err(update_through_put(slug));
        }
    }
    // A change also touches the tenant's organisation as registered.
    if let Some(org) = registered.as_ref().filter(|o| o.id != checked.org.id) {
        authz::authorize(store, actor, &authz::TENANTS_WRITE, org).await?;
    }
    if let Some(current) = &existing {
        refuse_shrinking_volumes(&state.catalog, current, &doc.spec, checked.accounts)?;
        check_hostname_change(store, actor, current, &doc.spec, &checked.org).await?;
    }
    let approval = check_guardrails(state, actor, doc, &checked, existing.as_ref(), declared_by).await?;
    let outside_annex = added_outside_annex(state, actor, doc, &checked.org, existing.as_ref()).await?;
    let mut tx = store.begin_write().await?;
    let (applied, id) = match &existing {
        None => {
            let id = new_id();
            let insert = sqlx::query(
                "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
                 spec_hash, version, created_at, updated_at, secret_seed, vendor_org_id, host_org_id, declared_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', $9, 1, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&id)
            .bind(slug)
            .bind(&checked.org.id);
            let inserted = bind_spec(insert, &doc.spec, &checked)
                .bind(timestamp(now))
                .bind(timestamp(now))
                .bind(new_secret_seed())
                .bind(checked.vendor.as_ref().map(|o| o.id.clone()))
                .bind(checked.host.as_ref().map(|o| o.id.clone()))
                .bind(declared_by)
                .execute(&mut *tx)
                .await
                .map_err(hostname_taken(&doc.spec.hostname));
            if let Err(problem) = inserted {
                // Its connection back to the pool before another is taken to read.
                drop(tx);
                // Slug or hostname: a tenant of this slug created meanwhile is the slug's 409,
                // or, when it is this very document sent twice at once (a retry), `unchanged`.
                let raced = match problem.kind {
                    ProblemKind::Conflict => get_tenant(store, slug).await?,
                    _ => None,
                };
                let Some(raced) = raced else { return Err(problem) };
                if on_existing == OnExisting::KeepIfSame
                    && declared_elsewhere(&raced, declared_by).is_ok()
                    && reads_org(store, actor, Some(&checked.org)).await?
                    && raced.organisation.id == checked.org.id
                    && stored_spec_hash(store, &raced.id).await? == checked.spec_hash
                {
                    return Ok((Applied::Unchanged, raced));
                }
                return Err(slug_taken_on_create(slug));
            }
            event(&mut tx, &id, &actor.name, "created", "tenant demandé", now).await?;
            (Applied::Created, id)
        }
        Some(current) => {
            let stored_hash: String = sqlx::query_scalar("SELECT spec_hash FROM tenants WHERE id = $1")
                .bind(&current.id)
                .fetch_one(&mut *tx)
                .await?;
            if stored_hash == checked.spec_hash {
                tx.rollback().await?;
                return Ok((Applied::Unchanged, current.clone()));
            }
            if on_existing == OnExisting::KeepIfSame {
                return Err(update_through_put(slug));
            }
            if current.organisation.id != checked.org.id {
                return Err(Problem::invalid_field(
                    "spec.organisation",
                    "un tenant ne change pas d'organisation : créez-en un autre",
                ));
            }
            let version = expected_version.unwrap_or(current.version);
            let update = sqlx::query(
                "UPDATE tenants SET hostname = $1, base_bouquet = $2, options = $3, accounts = $4, identity_source = $5, \
                 spec_hash = $6, version = version + 1, updated_at = $7, vendor_org_id = COALESCE($10, vendor_org_id), \
                 host_org_id = COALESCE($11, host_org_id) WHERE id = $8 AND version = $9",
            );
            let done = bind_spec(update, &doc.spec, &checked)
                .bind(timestamp(now))
                .bind(&current.id)
                .bind(version)
                .bind(checked.vendor.as_ref().map(|o| o.id.clone()))
                .bind(checked.host.as_ref().map(|o| o.id.clone()))
                .execute(&mut *tx)
                .await
                .map_err(hostname_taken(&doc.spec.hostname))?;
            expect_version(&done, current.version)?;
            let message = format!(
                "bouquet {} + [{}], {} comptes",
                doc.spec.bouquet,
                doc.spec.options.join(", "),
                checked.accounts
            );
            event(&mut tx, &current.id, &actor.name, "configured", &message, now).await?;
            (Applied::Configured, current.id.clone())
        }
    };
    let action = if applied == Applied::Created { "tenants.create" } else { "tenants.configure" };
    let target = Target::new("tenant", &id, Some(&checked.org.id));
    let summary = serde_json::to_value(&doc.spec).expect("spec");
    audit::record(&mut tx, store.backend(), actor, action, &target, summary, now).await?;
    if let Some(approval) = approval {
        let message = format!("{} comptes approuvés (seuil : {})", approval.accounts, approval.approval_above);
        event(&mut tx, &id, &actor.name, "approved", &message, now).await?;
        let summary = serde_json::to_value(&approval).expect("approval");
        audit::record(&mut tx, store.backend(), actor, "tenants.accounts_approved", &target, summary, now).await?;
    }
    let subject = annex::Subject { id: &id, slug, hostname: &doc.spec.hostname, org: &checked.org };
    annex::notify(&mut tx, &state.catalog, &subject, &outside_annex, actor, now).await?;
    tx.commit().await?;
    Ok((applied, get_tenant(store, slug).await?.expect("just written")))
}

/// A tenant created without `spec.vendor` for an organisation an accord-cadre in force binds
/// ([`binding_market`]: a member of the groupement, or one it funds) takes its titulaire as
/// vendor, and the hébergeur declared under the market when `spec.host` is absent too: what the
/// award gave the members' tenants it found ([`market_warnings`] says so in the answer).
async fn take_market_processors(
    store: &Store,
    spec: &TenantSpec,
    checked: &mut Checked,
    today: NaiveDate,
) -> Result<(), Problem> {
    if spec.vendor.is_some() {
        return Ok(());
    }
    let Some(market) = binding_market(&mut *store.conn().await?, &checked.org, today, today).await? else {
        return Ok(());
    };
    if spec.host.is_none() {
        checked.host = market.host;
    }
    checked.vendor = Some(market.vendor);
    Ok(())
}

/// What an accord-cadre in force binding a tenant's organisation says of its éditeur
/// ([`market_notice`]): the API's answers and the console's tenant page say it.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketNotice {
    /// In French.
    pub text: String,
    /// The tenant's éditeur is not the titulaire (a warning); else it is (information).
    pub other_vendor: bool,
}

/// What an accord-cadre in force on `today` binding `tenant`'s organisation ([`binding_market`])
/// says of its éditeur: the titulaire's role when it is the titulaire (taken as vendor by a
/// document that named none, or named), a warning when it is another éditeur. None without an
/// éditeur or an accord-cadre.
pub async fn market_notice(store: &Store, tenant: &Tenant, today: NaiveDate) -> Result<Option<MarketNotice>, Problem> {
    let Some(vendor) = tenant.vendor.as_ref() else { return Ok(None) };
    let Some(org) = get_org(store, &tenant.organisation.id).await? else { return Ok(None) };
    let Some(market) = binding_market(&mut *store.conn().await?, &org, today, today).await? else {
        return Ok(None);
    };
    Ok(Some(match vendor.id == market.vendor.id {
        true => MarketNotice { text: market_vendor_taken(&market), other_vendor: false },
        false => MarketNotice { text: market_vendor_other(&market, &vendor.name), other_vendor: true },
    }))
}

/// The warnings, in French, of a tenant that an accord-cadre in force on `today` binds
/// ([`market_notice`]), as the API's answers list them.
pub async fn market_warnings(store: &Store, tenant: &Tenant, today: NaiveDate) -> Result<Vec<String>, Problem> {
    Ok(market_notice(store, tenant, today).await?.map(|notice| notice.text).into_iter().collect())
}

/// « jusqu'au 5 décembre 2029 », or nothing when the accord-cadre's last day is unknown.
fn market_term(market: &Market) -> String {
    market.ends_on.as_deref().map(|d| format!(" jusqu'au {}", french_date(d))).unwrap_or_default()
}

/// The warning of a tenant given the titulaire of `market` as vendor.
fn market_vendor_taken(market: &Market) -> String {
    let host = market.host.as_ref().map(|h| format!(" ; hébergeur : {}", h.name)).unwrap_or_default();
    format!(
        "Éditeur : {}, titulaire de l'accord-cadre {}, en cours{}{host}. Il assure le support de niveau 3 de cet ENT \
         et en est le sous-traitant.",
        market.vendor.name,
        market.reference,
        market_term(market)
    )
}

/// The warning of a tenant whose document names `named` as vendor, not the titulaire of `market`.
fn market_vendor_other(market: &Market, named: &str) -> String {
    format!(
        "L'éditeur indiqué, {named}, n'est pas le titulaire de l'accord-cadre {}, en cours{}, qui lie le membre du \
         groupement de commandes finançant cet ENT : {}. Commander cet ENT à un autre éditeur suppose un contrat \
         distinct de ce marché.",
        market.reference,
        market_term(market),
        market.vendor.name
    )
}

/// Whether a tenant in `status` runs its services (or is being deployed to run them): what
/// the signed Art. 28 annex of its conventions must cover ([`annex`]).
fn runs_services(status: Status) -> bool {
    matches!(status, Status::Provisioning | Status::Active | Status::Suspended)
}

/// The services a change adds to a tenant already deployed ([`runs_services`]) that the signed
/// annex of a convention in force covering it leaves out ([`annex::gaps`]): refused (409) when
/// one processes sensitive data, else returned, to be told ([`annex::notify`]). A tenant still
/// `requested` runs nothing yet: its provisioning checks the annex ([`pass_gate`]).
async fn added_outside_annex(
    state: &TenantsState,
    actor: &Actor,
    doc: &EntTenant,
    org: &Org,
    existing: Option<&Tenant>,
) -> Result<Vec<annex::Gap>, Problem> {
    let Some(current) = existing.filter(|t| runs_services(t.status)) else { return Ok(Vec::new()) };
    let before = annex::services_of(&state.catalog, &current.bouquet, &current.options);
    let after = annex::services_of(&state.catalog, &doc.spec.bouquet, &doc.spec.options);
    let added: Vec<String> = after.into_iter().filter(|c| !before.contains(c)).collect();
    if added.is_empty() {
        return Ok(Vec::new());
    }
    let gaps = annex::gaps(state, &org.id, &added).await?;
    match annex::refusal(&state.catalog, &gaps, actor, "") {
        Some(refusal) => Err(refusal),
        None => Ok(gaps),
    }
}

/// The warnings, in French, of the services `tenant` runs (or is to run) that the signed annex
/// of a convention in force covering it does not list ([`annex::warnings`]), as `actor` may be
/// told them: what the API's answers and the console's tenant page say. None once it is
/// withdrawn (its services stopped).
pub async fn annex_warnings(state: &TenantsState, actor: &Actor, tenant: &Tenant) -> Result<Vec<String>, Problem> {
    if !(runs_services(tenant.status) || tenant.status == Status::Requested) {
        return Ok(Vec::new());
    }
    let services = annex::services_of(&state.catalog, &tenant.bouquet, &tenant.options);
    let gaps = annex::gaps(state, &tenant.organisation.id, &services).await?;
    Ok(annex::warnings(&state.catalog, &gaps, actor))
}

/// The 409 of a write that would give `hostname` to a second tenant (whose, is not told).
fn hostname_taken(hostname: &str) -> impl FnOnce(sqlx::Error) -> Problem {
    on_constraint(format!("le nom d'hôte {hostname} sert déjà un autre tenant"))
}

/// Sets the vendor and/or host of record of a tenant (e.g. after a group purchase is awarded),
/// in the caller's transaction; `None` leaves that one unchanged. Evented and audited.
pub async fn set_processors(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    tenant: &Tenant,
    vendor: Option<&Org>,
    host: Option<&Org>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    if vendor.is_some_and(|v| v.kind != OrgKind::Editeur) || host.is_some_and(|h| h.kind != OrgKind::Hebergeur) {
        return Err(Problem::invalid_field("vendor", "l'éditeur doit être un editeur, l'hébergeur un hebergeur"));
    }
    sqlx::query(
        "UPDATE tenants SET vendor_org_id = COALESCE($1, vendor_org_id), host_org_id = COALESCE($2, host_org_id), \
         version = version + 1, updated_at = $3 WHERE id = $4",
    )
    .bind(vendor.map(|o| o.id.clone()))
    .bind(host.map(|o| o.id.clone()))
    .bind(timestamp(now))
    .bind(&tenant.id)
    .execute(&mut **tx)
    .await?;
    let names: Vec<String> = [("éditeur", vendor), ("hébergeur", host)]
        .into_iter()
        .filter_map(|(label, org)| org.map(|o| format!("{label} {}", o.name)))
        .collect();
    event(tx, &tenant.id, &actor.name, "processors", &names.join(", "), now).await?;
    let summary = serde_json::json!({ "vendor": vendor.map(|o| &o.id), "host": host.map(|o| &o.id) });
    audit::record(tx, store.backend(), actor, "tenants.processors", tenant, summary, now).await
}

fn new_secret_seed() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}

/// The seed the tenant's credentials derive from (never shown by the API).
pub async fn secret_seed(store: &Store, tenant_id: &str) -> Result<String, Problem> {
    let seed: Option<String> = sqlx::query_scalar("SELECT secret_seed FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(store.pool())
        .await?;
    Ok(seed.unwrap_or_default())
}

/// The desired Kubernetes objects of a tenant, from the catalog.
pub async fn render(
    state: &TenantsState,
    tenant: &Tenant,
) -> Result<Vec<crate::provisioning::RenderedObject>, Problem> {
    let org = get_org(&state.store, &tenant.organisation.id)
        .await?
        .ok_or_else(|| Problem::not_found("organisation introuvable"))?;
    let options: Vec<&str> = tenant.options.iter().map(String::as_str).collect();
    let services = state.catalog.resolve(&tenant.bouquet, &options)?;
    let seed = secret_seed(&state.store, &tenant.id).await?;
    Ok(crate::provisioning::render(tenant, &org, &services, &seed, &state.config.provisioning.cluster))
}

text_enum!(pub Status {
    Requested = "requested", Provisioning = "provisioning", Active = "active", Suspended = "suspended",
    Decommissioning = "decommissioning", Archived = "archived", Purged = "purged",
});

/// The governance gate: each établissement the tenant of `org_id` serves (its own, or those its
/// collectivité covers) must be covered by a convention in force. The conventions in force that
/// cover them (ids, each once, the first found first: the one a provisioning records), and the
/// schools no convention covers.
async fn gate(state: &TenantsState, org_id: &str) -> Result<(Vec<String>, Vec<Org>), Problem> {
    gate_on(&Asked::on(state, today_in_france(state.clock.now())), org_id).await
}

/// Where [`gate_on`] reads its answers: the store, question by question ([`Asked`]), or what a
/// coverage pass read once for all its tenants (`coverage::PassMemo`); the same answers.
trait GateAnswers {
    /// The organisation `id`, if it exists.
    async fn organisation(&self, id: &str) -> Result<Option<Org>, Problem>;
    /// Every établissement the collectivité `org` covers (`covered_etablissements`), closed ones too.
    async fn covered_etablissements(&self, org: &Org) -> Result<Vec<Org>, Problem>;
    /// The id of the first convention in force that covers `org` on the day asked (`active_covering`).
    async fn covering(&self, org: &Org) -> Result<Option<String>, Problem>;
}

/// The gate's answers asked of the store as they come, on the French calendar day `today`.
struct Asked<'a> {
    state: &'a TenantsState,
    today: String,
}

impl<'a> Asked<'a> {
    fn on(state: &'a TenantsState, today: NaiveDate) -> Asked<'a> {
        Asked { state, today: today.to_string() }
    }
}

impl GateAnswers for Asked<'_> {
    async fn organisation(&self, id: &str) -> Result<Option<Org>, Problem> {
        get_org(&self.state.store, id).await
    }

    async fn covered_etablissements(&self, org: &Org) -> Result<Vec<Org>, Problem> {
        covered_etablissements(&self.state.store, org).await
    }

    async fn covering(&self, org: &Org) -> Result<Option<String>, Problem> {
        let covering = active_covering(&self.state.store, &self.state.models, &org.id, &self.today).await?;
        Ok(covering.map(|c| c.id))
    }
}

/// [`gate`] on the day and from the source `answers` read (the coverage job's: [`coverage`]).
async fn gate_on(answers: &impl GateAnswers, org_id: &str) -> Result<(Vec<String>, Vec<Org>), Problem> {
    let org =
        answers.organisation(org_id).await?.ok_or_else(|| Problem::not_found("organisation du tenant introuvable"))?;
    let served = match org.kind {
        OrgKind::Etablissement => vec![org.clone()],
        // A school the annuaire says is closed runs no ENT: it needs no convention.
        _ => answers.covered_etablissements(&org).await?.into_iter().filter(|o| o.open).collect(),
    };
    if served.is_empty() {
        return Ok(match answers.covering(&org).await? {
            Some(id) => (vec![id], vec![]),
            None => (vec![], vec![org]),
        });
    }
    let (mut covering, mut uncovered) = (Vec::new(), Vec::new());
    for school in served {
        match answers.covering(&school).await? {
            Some(id) if !covering.contains(&id) => covering.push(id),
            Some(_) => {}
            None => uncovered.push(school),
        }
    }
    Ok((covering, uncovered))
}

/// The conventions signed to cover some of `uncovered` that come into force later (reference
/// and first day, the first to come for each school), and how many of `uncovered` they cover:
/// a refused gate names them, and promises a day only when they cover every school.
struct Ahead {
    conventions: Vec<(String, String)>,
    covered: usize,
}

/// How many uncovered schools [`signed_ahead`] looks at: a refusal names at most ten
/// conventions, and beyond this the count it gives is a lower bound.
const AHEAD_LOOKED_AT: usize = 200;

async fn signed_ahead(state: &TenantsState, uncovered: &[Org]) -> Result<Ahead, Problem> {
    let today = today_in_france(state.clock.now()).to_string();
    let mut ahead = Ahead { conventions: Vec::new(), covered: 0 };
    for org in uncovered.iter().take(AHEAD_LOOKED_AT) {
        if let Some(c) = covering_later(&state.store, &state.models, &org.id, &today).await? {
            ahead.covered += 1;
            if ahead.conventions.len() < 10 && !ahead.conventions.iter().any(|(r, _)| *r == c.reference) {
                ahead.conventions.push((c.reference, c.start_date));
            }
        }
    }
    Ok(ahead)
}

/// The 409 of a gate that schools without a convention in force keep closed, with the conventions
/// signed for them that come into force later ([`signed_ahead`]); for the tenant's own school, the
/// convention under way for it and what it awaits, or the models that may cover it
/// (`conventions::convention_needed`: a tripartite for an EPLE).
async fn gate_refusal(state: &TenantsState, tenant: &Tenant, uncovered: &[Org]) -> Result<Problem, Problem> {
    let ahead = signed_ahead(state, uncovered).await?;
    let org = &tenant.organisation;
    let detail = match uncovered {
        [one] if one.id == org.id => format!(
            "aucune convention en vigueur ne couvre {} ({}) : {}",
            naming::display_name(&org.name),
            org.code,
            convention_needed(&state.store, &state.models, one).await?
        ),
        _ => {
            let names: Vec<String> =
                uncovered.iter().map(|o| format!("{} ({})", naming::display_name(&o.name), o.code)).collect();
            format!(
                "aucune convention en vigueur ne couvre {} des établissements que sert ce tenant : {}. Signez une convention \
                 pour chacun (ou une convention bipartite pour toutes les écoles {}) avant de provisionner",
                uncovered.len(),
                names.join(", "),
                naming::de(&org.name)
            )
        }
    };
    let detail = format!("{detail}{}", ahead_said(&ahead.conventions, ahead.covered, uncovered.len()));
    let codes: Vec<&str> = uncovered.iter().map(|o| o.code.as_str()).collect();
    let ahead: Vec<_> =
        ahead.conventions.iter().map(|(r, start)| serde_json::json!({ "reference": r, "start_date": start })).collect();
    Ok(Problem::conflict(detail).with_extra(serde_json::json!({
        "missing": "convention", "organisation": org.code, "uncovered": codes, "signed_ahead": ahead,
    })))
}

/// An administrator's override of the gate, with its reason kept in the tenant's history and the audit.
macro_rules! overriding {
    () => {
        "un administrateur peut passer outre en indiquant un motif (override_reason), conservé dans l'historique et \
         le journal d'audit"
    };
}

/// How an ENT is prepared before its conventions come into force (for the first day of school):
/// an administrator's override ([`overriding`]).
const EARLIER: &str = concat!(" ; pour le préparer plus tôt, ", overriding!());

/// How an ENT is deployed with a service processing sensitive data that the signed annex does not
/// cover, before an avenant adds it: an administrator's override ([`overriding`]).
const OVERRIDE: &str = concat!(" ; à défaut, ", overriding!());

/// What a refusal says of the conventions signed ahead (`conventions`) that cover `covered` of
/// the `uncovered` schools: the day deployment becomes possible only when they cover them all.
fn ahead_said(conventions: &[(String, String)], covered: usize, uncovered: usize) -> String {
    let said = || -> Vec<String> {
        conventions.iter().map(|(r, start)| format!("{r} (en vigueur le {})", french_date(start))).collect()
    };
    match conventions {
        [] => String::new(),
        [(reference, start)] if covered >= uncovered => format!(
            ". La convention {reference} est signée : elle entre en vigueur le {}, le déploiement sera \
             possible à partir de ce jour{EARLIER}",
            french_date(start)
        ),
        _ if covered >= uncovered => {
            let last = conventions.iter().map(|(_, start)| start.as_str()).max().unwrap_or_default();
            format!(
                ". Les conventions {} sont signées : le déploiement sera possible à partir du {}, quand elles seront \
                 toutes en vigueur{EARLIER}",
                said().join(", "),
                french_date(last)
            )
        }
        [_] => format!(
            ". La convention {} est signée, mais elle ne couvre que {covered} des {uncovered} établissements sans \
             convention en vigueur : les autres en demandent une",
            said().join(", ")
        ),
        _ => format!(
            ". Les conventions {} sont signées, mais elles ne couvrent que {covered} des {uncovered} établissements \
             sans convention en vigueur : les autres en demandent une",
            said().join(", ")
        ),
    }
}

fn json_list(text: Option<&str>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

/// Why `transition` refuses `purged`.
const PURGE_BY_JOB: &str = "la purge est faite par la tâche tenants-purge à la fin de la durée de conservation";

/// The longest reason of a lifecycle move, in characters.
pub const REASON_MAX: usize = 500;

/// A lifecycle move asked of [`transition`]: the state aimed at, why (required to suspend or
/// withdraw, [`Status::needs_reason`]: the people concerned are told), and an admin's reason
/// to let the tenant leave `requested` without a convention in force.
#[derive(Debug, Clone, Copy)]
pub struct Move<'a> {
    pub to: Status,
    pub reason: Option<&'a str>,
    pub override_reason: Option<&'a str>,
}

impl<'a> Move<'a> {
    pub fn to(to: Status) -> Move<'a> {
        Move { to, reason: None, override_reason: None }
    }

    /// The move, for `reason`.
    pub fn because(self, reason: &'a str) -> Move<'a> {
        Move { reason: Some(reason), ..self }
    }

    /// The move, past the governance gate by an admin's override for `reason`.
    pub fn overriding(self, reason: &'a str) -> Move<'a> {
        Move { override_reason: Some(reason), ..self }
    }
}

/// The reason of `step`, trimmed: one line of [`REASON_MAX`] characters at most, required
/// when the move [`Status::needs_reason`].
fn checked_reason(step: &Move) -> Result<Option<String>, Problem> {
    let invalid = |message: String| Problem::invalid_field("reason", format!("motif invalide : {message}"));
    match step.reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => {
            validate::text(reason, REASON_MAX).map_err(invalid)?;
            validate::line(reason).map_err(invalid)?;
            Ok(Some(reason.to_string()))
        }
        None if step.to.needs_reason() => Err(Problem::invalid_field(
            "reason",
            format!(
                "un motif est obligatoire pour passer un ENT à l'état « {} » ; il est journalisé et envoyé par \
                 courriel aux personnes concernées",
                step.to.label()
            ),
        )),
        None => Ok(None),
    }
}

/// Whether `actor` may move `tenant` along its lifecycle: `tenants.transition` over the
/// tenant's organisation, whoever calls (a role allowing it elsewhere is not enough). Out of
/// scope, 403 when the tenant is readable, else the 404 of a tenant that does not exist.
/// Returns the organisation.
async fn authorize_transition(store: &Store, actor: &Actor, tenant: &Tenant) -> Result<Org, Problem> {
    let not_found = || Problem::not_found(format!("aucun tenant « {} »", tenant.slug));
    let org = get_org(store, &tenant.organisation.id).await?.ok_or_else(not_found)?;
    let caller = Caller { actor: actor.clone(), action: &TENANTS_TRANSITION };
    caller.require_or(store, &org, not_found).await?;
    Ok(org)
}

/// What let a tenant leave `requested`: the convention in force, or an admin's override and
/// the schools (UAI) it let through without one. Empty for any other move.
#[derive(Default)]
struct GatePassed {
    convention_id: Option<String>,
    override_reason: Option<String>,
    uncovered: Vec<String>,
    /// The services the signed annex of a covering convention does not list ([`annex::among`]).
    outside_annex: Vec<annex::Gap>,
    /// Those of them processing sensitive data, let through by the override.
    sensitive: Vec<String>,
}

/// The governance gate, for a tenant leaving `requested`: open when a convention in force
/// covers what it serves and the signed annex of each covering convention lists the services it
/// runs that process sensitive data ([`annex::refusal`]), else only to an admin's override with a
/// reason. The services outside an annex are returned, to be told ([`annex::notify`]).
async fn pass_gate(
    state: &TenantsState,
    actor: &Actor,
    tenant: &Tenant,
    override_reason: Option<&str>,
) -> Result<GatePassed, Problem> {
    if tenant.status != Status::Requested {
        return Ok(GatePassed::default());
    }
    let (covering, uncovered) = gate(state, &tenant.organisation.id).await?;
    let services = annex::services_of(&state.catalog, &tenant.bouquet, &tenant.options);
    let outside_annex = annex::among(state, &covering, &services).await?;
    let sensitive = annex::refusal(&state.catalog, &outside_annex, actor, OVERRIDE);
    let mut passed = GatePassed { convention_id: covering.first().cloned(), ..GatePassed::default() };
    if uncovered.is_empty() && sensitive.is_none() {
        passed.outside_annex = outside_annex;
        return Ok(passed);
    }
    match override_reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) if actor.is_admin() => {
            passed.override_reason = Some(reason.to_string());
            passed.uncovered = uncovered.iter().map(|o| o.code.clone()).collect();
            passed.sensitive = annex::sensitive_codes(&state.catalog, &outside_annex);
            passed.outside_annex = outside_annex;
            Ok(passed)
        }
        Some(_) => Err(authz::forbidden("seul un administrateur peut passer outre la convention")),
        None if uncovered.is_empty() => Err(sensitive.expect("refused")),
        None => Err(gate_refusal(state, tenant, &uncovered).await?),
    }
}

/// The event of a move: « actif → suspendu », what let it through the gate, then its reason.
fn move_message(from: Status, to: Status, gate: &GatePassed, reason: Option<&str>) -> String {
    let moved = format!("{} → {}", from.label(), to.label());
    let mut message = match (&gate.override_reason, &gate.convention_id) {
        (Some(why), _) => {
            let mut without = Vec::new();
            if !gate.uncovered.is_empty() {
                without.push(format!("sans convention pour {}", gate.uncovered.join(", ")));
            }
            if !gate.sensitive.is_empty() {
                without.push(format!("hors de l'annexe de l'article 28 pour {}", gate.sensitive.join(", ")));
            }
            format!("{moved} {} (dérogation : {why})", without.join(" et "))
        }
        (None, Some(conv)) => format!("{moved} (convention {conv})"),
        _ => moved,
    };
    if let Some(reason) = reason {
        message.push_str(&format!(" : {reason}"));
    }
    message
}

/// What the notice of a move says beside the tenant: its reason, and for an archiving the
/// days between which its data will be purged (`purge_due`, stored by the move).
fn notice_extra(reason: Option<&str>, purge_due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> serde_json::Value {
    let mut extra = serde_json::Map::new();
    if let Some(reason) = reason {
        extra.insert("reason".into(), reason.into());
    }
    if let Some(due) = purge_due {
        extra.extend(purge::Window::of(due, now).context());
    }
    serde_json::Value::Object(extra)
}

/// Moves a tenant along its lifecycle, if `actor` may ([`authorize_transition`]). Leaving
/// `requested` needs an active convention covering the organisation, or an admin override
/// with a reason ([`pass_gate`]); suspending or withdrawing needs a reason. The people the
/// tenant concerns are told of a move that changes their service ([`notices::of_move`]).
pub async fn transition(
    state: &TenantsState,
    actor: &Actor,
    tenant: &Tenant,
    step: Move<'_>,
) -> Result<Tenant, Problem> {
    let (store, now, to) = (&state.store, state.clock.now(), step.to);
    let org = authorize_transition(store, actor, tenant).await?;
    conflict_unless(to != Status::Purged, || PURGE_BY_JOB)?;
    conflict_unless(tenant.status.can_move_to(to), || {
        format!("un tenant {} ne passe pas à l'état « {} »", tenant.status.label(), to.label())
    })?;
    let reason = checked_reason(&step)?;
    let gate = pass_gate(state, actor, tenant, step.override_reason).await?;
    let mut audience = notices::Audience::of(store, org).await?;
    if notices::restitutes_on(to) {
        let today = today_in_france(now).to_string();
        audience = audience.restituting(store, &state.models, tenant, &today).await?;
    }
    // Fixed now: a later change of the retention applies to tenants archived after it.
    let purge_due = (to == Status::Archived).then(|| purge::due_at(now, state.config.provisioning.retention_months));
    let mut tx = store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE tenants SET status = $1, version = version + 1, updated_at = $2, \
         convention_id = COALESCE($3, convention_id), gate_override_by = COALESCE($4, gate_override_by), \
         gate_override_reason = COALESCE($5, gate_override_reason), gate_uncovered = COALESCE($6, gate_uncovered), \
         archived_at = COALESCE($7, archived_at), purge_due_at = COALESCE($10, purge_due_at), \
         coverage_lapsed_at = CASE WHEN $1 = 'decommissioning' THEN NULL ELSE coverage_lapsed_at END, \
         coverage_uncovered = CASE WHEN $1 = 'decommissioning' THEN NULL ELSE coverage_uncovered END \
         WHERE id = $8 AND status = $9",
    )
    .bind(to.as_str())
    .bind(timestamp(now))
    .bind(gate.convention_id.clone())
    .bind(gate.override_reason.as_ref().map(|_| actor.name.clone()))
    .bind(gate.override_reason.clone())
    .bind((!gate.uncovered.is_empty()).then(|| serde_json::json!(gate.uncovered).to_string()))
    .bind((to == Status::Archived).then(|| timestamp(now)))
    .bind(&tenant.id)
    .bind(tenant.status.as_str())
    .bind(purge_due.map(timestamp))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        // Another move got there first: the state machine is checked against what it left.
        return Err(Problem::conflict(format!(
            "le tenant {} a changé d'état entre-temps : relisez-le avant de le faire passer à l'état « {} »",
            tenant.slug,
            to.label()
        )));
    }
    let message = move_message(tenant.status, to, &gate, reason.as_deref());
    event(&mut tx, &tenant.id, &actor.name, to.as_str(), &message, now).await?;
    let summary = serde_json::json!({ "from": tenant.status.as_str(), "to": to.as_str(), "reason": reason,
        "convention": gate.convention_id, "override": gate.override_reason, "uncovered": gate.uncovered,
        "sensitive_outside_annex": gate.sensitive,
        "purge_due_at": purge_due.map(timestamp) });
    audit::record(&mut tx, store.backend(), actor, "tenants.transition", tenant, summary, now).await?;
    if let Some(kind) = notices::of_move(tenant.status, to) {
        let extra = notice_extra(reason.as_deref(), purge_due, now);
        notices::notify(&mut tx, tenant, &audience, kind, extra, now).await?;
    }
    let subject = annex::Subject { id: &tenant.id, slug: &tenant.slug, hostname: &tenant.hostname, org: &audience.org };
    annex::notify(&mut tx, &state.catalog, &subject, &gate.outside_annex, actor, now).await?;
    tx.commit().await?;
    Ok(get_tenant(store, &tenant.slug).await?.expect("exists"))
}

const COLUMNS: &str = "id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
    gate_override_by, gate_override_reason, gate_uncovered, convention_id, vendor_org_id, host_org_id, version, created_at, updated_at, \
    reconciled_at, reconcile_error, reconcile_failures, retry_at, observed, observed_detail, observed_at, archived_at, \
    purge_announced_at, purge_due_at, purged_at, declared_by, coverage_lapsed_at, coverage_uncovered";

/// A `tenants` row (read with [`COLUMNS`]).
#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    slug: String,
    org_id: String,
    hostname: String,
    base_bouquet: String,
    options: JsonText<Vec<String>>,
    accounts: i64,
    #[sqlx(try_from = "String")]
    identity_source: IdentitySource,
    #[sqlx(try_from = "String")]
    status: Status,
    gate_override_by: Option<String>,
    gate_override_reason: Option<String>,
    gate_uncovered: Option<String>,
    convention_id: Option<String>,
    vendor_org_id: Option<String>,
    host_org_id: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
    #[sqlx(flatten)]
    provisioning_state: ProvisioningState,
    declared_by: Option<String>,
    coverage_lapsed_at: Option<String>,
    coverage_uncovered: Option<String>,
}

/// [`TenantRow`] with what only the reconciler reads.
#[derive(sqlx::FromRow)]
struct ReconcileRow {
    #[sqlx(flatten)]
    tenant: TenantRow,
    secret_seed: Option<String>,
    applied_hash: Option<String>,
    failed_hash: Option<String>,
    applied_services: Option<String>,
    retained_services: Option<String>,
    #[sqlx(flatten)]
    applied_by: AppliedBy,
}

/// What the applied objects were rendered from, apart from `applied_hash` (which hashes it
/// all): the tenant's own inputs, and the platform side of the render (migration 0041).
/// Unknown (`None`) when nothing is applied, after a failure, or when written by a release
/// that did not record it.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AppliedBy {
    /// The hash of the tenant's own inputs (spec, organisation, bouquet, options, services).
    pub applied_inputs_hash: Option<String>,
    pub applied_render_version: Option<i64>,
    /// The fingerprint of the writer's `provisioning.cluster`.
    pub applied_cluster_hash: Option<String>,
    /// When the writer's process started.
    pub applied_started_at: Option<String>,
}

/// The organisation, vendor and host of a tenant row.
fn org_ids(row: &TenantRow) -> impl Iterator<Item = &String> {
    [Some(&row.org_id), row.vendor_org_id.as_ref(), row.host_org_id.as_ref()].into_iter().flatten()
}

/// Tenants from their rows, with their organisations read in one query.
async fn tenants_from_rows(store: &Store, rows: Vec<TenantRow>) -> Result<Vec<Tenant>, Problem> {
    Ok(tenants_and_orgs_from_rows(store, rows).await?.0)
}

/// [`tenants_from_rows`], and the organisations read (theirs, their vendors' and hosts') by id.
async fn tenants_and_orgs_from_rows(
    store: &Store,
    rows: Vec<TenantRow>,
) -> Result<(Vec<Tenant>, std::collections::HashMap<String, Org>), Problem> {
    let ids: Vec<String> = rows.iter().flat_map(org_ids).cloned().collect();
    let orgs = orgs_by_id(store, ids).await?;
    let mut tenants = Vec::with_capacity(rows.len());
    for row in rows {
        if org_ids(&row).any(|id| !orgs.contains_key(id)) {
            return Err(Problem::not_found("organisation du tenant introuvable"));
        }
        let org = &orgs[&row.org_id];
        tenants.push(tenant_with_org(row, org, &orgs));
    }
    with_destructions(store, &mut tenants).await?;
    Ok((tenants, orgs))
}

/// Gives each purged tenant of `tenants` its attestation of destruction (one query per 500).
async fn with_destructions(store: &Store, tenants: &mut [Tenant]) -> Result<(), Problem> {
    let purged = tenants.iter().filter(|t| t.status == Status::Purged);
    let slugs: std::collections::HashMap<String, String> = purged.map(|t| (t.id.clone(), t.slug.clone())).collect();
    if slugs.is_empty() {
        return Ok(());
    }
    let mut found = destruction::of_tenants(store, &slugs).await?;
    for tenant in tenants.iter_mut() {
        tenant.destruction = found.remove(&tenant.id);
    }
    Ok(())
}

/// A tenant from its row; `orgs` holds its vendor and host organisations by id.
fn tenant_with_org(row: TenantRow, org: &Org, orgs: &std::collections::HashMap<String, Org>) -> Tenant {
    let processor = |id: Option<String>| id.and_then(|id| orgs.get(&id)).map(Org::as_ref);
    Tenant {
        id: row.id,
        slug: row.slug,
        organisation: org.as_ref(),
        hostname: row.hostname,
        bouquet: row.base_bouquet,
        options: row.options.0,
        accounts: row.accounts,
        identity_source: row.identity_source,
        status: row.status,
        gate_override: row.gate_override_by.zip(row.gate_override_reason).map(|(by, reason)| GateOverride {
            by,
            reason,
            uncovered: json_list(row.gate_uncovered.as_deref()),
        }),
        convention_id: row.convention_id,
        coverage_lapsed_at: row.coverage_lapsed_at,
        coverage_uncovered: json_list(row.coverage_uncovered.as_deref()),
        vendor: processor(row.vendor_org_id),
        host: processor(row.host_org_id),
        provisioning_state: row.provisioning_state,
        declared_by: row.declared_by,
        destruction: None,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// A tenant with what the reconciler needs, loaded for all tenants in two queries.
pub struct ReconcileInput {
    pub tenant: Tenant,
    pub org: Org,
    pub secret_seed: String,
    pub applied_hash: Option<String>,
    /// The inputs hash of the last failed apply (its backoff holds for these inputs only).
    pub failed_hash: Option<String>,
    pub applied_by: AppliedBy,
    /// The codes of the services last applied (migration 0047); empty when not known.
    pub applied_services: Vec<String>,
    /// The codes of the services removed from the tenant whose data it still holds until its
    /// purge (migration 0048); empty when none.
    pub retained_services: Vec<String>,
}

/// Every tenant, or the one named `only`, with their organisations (read by id, in
/// one query per 500: a query by sub-selects over `tenants` scanned every organisation).
pub async fn reconcile_inputs(store: &Store, only: Option<&str>) -> Result<Vec<ReconcileInput>, Problem> {
    let filter = if only.is_some() { "WHERE slug = $1" } else { "" };
    let sql = format!(
        "SELECT {COLUMNS}, secret_seed, applied_hash, failed_hash, applied_services, retained_services, \
         applied_inputs_hash, applied_render_version, applied_cluster_hash, applied_started_at FROM tenants {filter} ORDER BY slug"
    );
    let mut query = sqlx::query(&sql);
    if let Some(slug) = only {
        query = query.bind(slug);
    }
    let rows: Vec<ReconcileRow> = query.try_map(|row| ReconcileRow::from_row(&row)).fetch_all(store.pool()).await?;
    let ids: Vec<String> = rows.iter().flat_map(|r| org_ids(&r.tenant)).cloned().collect();
    let orgs = orgs_by_id(store, ids).await?;
    let mut inputs = Vec::with_capacity(rows.len());
    for row in rows {
        let ReconcileRow {
            tenant,
            secret_seed,
            applied_hash,
            failed_hash,
            applied_services,
            retained_services,
            applied_by,
        } = row;
        let Some(org) = orgs.get(&tenant.org_id) else { continue };
        inputs.push(ReconcileInput {
            tenant: tenant_with_org(tenant, org, &orgs),
            org: org.clone(),
            secret_seed: secret_seed.unwrap_or_default(),
            applied_hash,
            failed_hash,
            applied_by,
            applied_services: codes(applied_services),
            retained_services: codes(retained_services),
        });
    }
    Ok(inputs)
}

/// Service codes stored as a JSON array (`applied_services`, `retained_services`); none when NULL.
pub fn codes(stored: Option<String>) -> Vec<String> {
    stored.and_then(|codes| serde_json::from_str(&codes).ok()).unwrap_or_default()
}

pub async fn get_tenant(store: &Store, slug_or_id: &str) -> Result<Option<Tenant>, Problem> {
    get_tenant_in(store, slug_or_id, None).await
}

/// The tenant `slug_or_id` names among those whose organisation is in `scope` (every one when
/// `None`, [`read_scope`]): one query, which finds nothing alike for a tenant out of scope and
/// for a slug naming none, doing the same work for both.
pub async fn get_tenant_in(
    store: &Store,
    slug_or_id: &str,
    scope: Option<Condition>,
) -> Result<Option<Tenant>, Problem> {
    let mut cond = Condition::default();
    cond.push("(slug = ? OR id = ?)", &[slug_or_id, slug_or_id]);
    in_scope(&mut cond, scope);
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE {}", cond.sql());
    let row: Option<TenantRow> =
        cond.bind(sqlx::query(&sql)).try_map(|row| TenantRow::from_row(&row)).fetch_optional(store.pool()).await?;
    Ok(tenants_from_rows(store, row.into_iter().collect()).await?.pop())
}

/// The filter and paging of `GET /api/v1/tenants`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TenantFilter {
    /// Only the tenants in this state.
    pub status: Option<Status>,
    /// `true`: only the tenants no convention in force fully covers any more
    /// (`coverage_lapsed_at` set); `false`: only the others.
    pub uncovered: Option<bool>,
    /// Opaque cursor returned as `next_cursor` by the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

/// The organisations whose ENT serve the schools `actor` is bound at: every organisation
/// covering such a school (its commune, the group it belongs to, its département or région,
/// DSDEN and académie: `Relatives::covering_parents`). Their tenants are read by the school's
/// staff (read only), the ENT they use and open tickets on (`support::tickets::may_open`).
pub async fn serving_orgs(store: &Store, actor: &Actor) -> Result<Vec<String>, Problem> {
    let mut ids = Vec::new();
    for bound in actor.bindings.iter().filter_map(|b| b.org.as_ref()).filter(|o| o.kind == OrgKind::Etablissement) {
        let Some(school) = get_org(store, &bound.id).await? else { continue };
        let relatives = Relatives::of(store, &school).await?;
        ids.extend(relatives.covering_parents(&school).into_iter().map(|p| p.id));
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The organisations whose tenants `actor` reads, as a condition on `orgs` (`None`: every
/// one): its scope for `tenants.read`, and those serving its schools ([`serving_orgs`]).
pub async fn read_scope(store: &Store, actor: &Actor) -> Result<Option<Condition>, Problem> {
    let Some(scope) = authz::scope(actor, &TENANTS_READ).condition() else { return Ok(None) };
    let serving = serving_orgs(store, actor).await?;
    if serving.is_empty() {
        return Ok(Some(scope));
    }
    let mut theirs = Condition::default();
    let marks = vec!["?"; serving.len()].join(", ");
    theirs.push(&format!("id IN ({marks})"), &serving.iter().map(String::as_str).collect::<Vec<_>>());
    Ok(Some(Condition::any(vec![scope, theirs])))
}

/// Whether `caller` may act on the tenants of `org`: its own check ([`Caller::require_or`],
/// `missing` out of scope), and for `tenants.read` also a tenant serving its schools
/// ([`read_scope`]); another action (a support contract's reading) is only its own.
pub async fn require_on(
    store: &Store,
    caller: &Caller,
    org: &Org,
    missing: impl FnOnce() -> Problem,
) -> Result<(), Problem> {
    let Err(refused) = caller.require(store, org).await else { return Ok(()) };
    if refused.kind != ProblemKind::NotFound {
        return Err(refused);
    }
    if caller.action.name == TENANTS_READ.name && serving_orgs(store, &caller.actor).await?.contains(&org.id) {
        return Ok(());
    }
    Err(missing())
}

/// The tenant `key` names, for `caller`'s action on it: looked up among those it reads
/// ([`read_scope`], [`get_tenant_in`]), so that one out of its scope and a key naming none
/// are the same `missing` after the same work; then the action's own check ([`require_on`]).
/// Every route naming a tenant finds it here: the tenants routes and the console's `/ent/{ent}`,
/// a tenant's support contract, the opening of a ticket (API and console).
pub async fn find_for(
    store: &Store,
    caller: &Caller,
    key: &str,
    missing: impl Fn() -> Problem,
) -> Result<Tenant, Problem> {
    let scope = read_scope(store, &caller.actor).await?;
    let tenant = get_tenant_in(store, key, scope).await?.ok_or_else(&missing)?;
    let org = get_org(store, &tenant.organisation.id).await?.ok_or_else(&missing)?;
    require_on(store, caller, &org, missing).await?;
    Ok(tenant)
}

/// Restricts `cond` to the tenants whose organisation is in `scope` (a condition on `orgs`).
fn in_scope(cond: &mut Condition, scope: Option<Condition>) {
    if let Some(scope) = scope {
        cond.and_wrapped("org_id IN (SELECT id FROM orgs WHERE ", scope, ")");
    }
}

/// Tenants whose organisation is in `scope` (all when `None`), by slug.
pub async fn list_tenants(store: &Store, scope: Option<Condition>) -> Result<Vec<Tenant>, Problem> {
    let mut cond = Condition::default();
    in_scope(&mut cond, scope);
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE {} ORDER BY slug", cond.sql());
    let rows: Vec<TenantRow> =
        cond.bind(sqlx::query(&sql)).try_map(|row| TenantRow::from_row(&row)).fetch_all(store.pool()).await?;
    tenants_from_rows(store, rows).await
}

/// One page of the tenants matching `filter` whose organisation is in `scope`, by
/// slug (the cursor is the last slug of the previous page): two queries a page.
pub async fn page_tenants(
    store: &Store,
    filter: &TenantFilter,
    scope: Option<Condition>,
) -> Result<Page<Tenant>, Problem> {
    let size = page_size(filter.limit)?;
    let mut cond = Condition::default();
    if let Some(cursor) = filter.cursor.as_deref().filter(|c| !c.is_empty()) {
        cond.push("slug > ?", &[cursor]);
    }
    if let Some(status) = filter.status {
        cond.push("status = ?", &[status.as_str()]);
    }
    match filter.uncovered {
        Some(true) => cond.push("coverage_lapsed_at IS NOT NULL", &[]),
        Some(false) => cond.push("coverage_lapsed_at IS NULL", &[]),
        None => {}
    }
    in_scope(&mut cond, scope);
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE {} ORDER BY slug LIMIT {}", cond.sql(), size + 1);
    let rows: Vec<TenantRow> =
        cond.bind(sqlx::query(&sql)).try_map(|row| TenantRow::from_row(&row)).fetch_all(store.pool()).await?;
    let tenants = tenants_from_rows(store, rows).await?;
    Ok(Page::from_overfetch(tenants, size, |t| t.slug.clone()))
}

/// The tenant's events as `reader` reads them: each actor's address only where it reads the
/// account, as the audit log shows them ([`Shown`]).
pub async fn events_read_by(store: &Store, reader: &Actor, tenant_id: &str) -> Result<Vec<TenantEvent>, Problem> {
    let mut events = events(store, tenant_id).await?;
    let shown = Shown::to(store, reader, events.iter().map(|e| e.actor.as_str())).await?;
    for event in &mut events {
        event.actor = shown.name(&event.actor);
    }
    Ok(events)
}

/// `tenants` as `reader` reads them: the address of who overrode the gate only where it reads
/// the account, as the audit log shows it ([`Shown`]).
pub async fn read_by(store: &Store, reader: &Actor, tenants: &mut [Tenant]) -> Result<(), Problem> {
    let names = tenants.iter().filter_map(|t| t.gate_override.as_ref()).map(|o| o.by.clone()).collect::<Vec<_>>();
    let shown = Shown::to(store, reader, names.iter().map(String::as_str)).await?;
    for over in tenants.iter_mut().filter_map(|t| t.gate_override.as_mut()) {
        over.by = shown.name(&over.by);
    }
    Ok(())
}

pub async fn events(store: &Store, tenant_id: &str) -> Result<Vec<TenantEvent>, Problem> {
    Ok(sqlx::query_as("SELECT at, actor, kind, message FROM tenant_events WHERE tenant_id = $1 ORDER BY at, id")
        .bind(tenant_id)
        .fetch_all(store.pool())
        .await?)
}

/// The JSON Schema of `EntTenant`, for GitOps repositories and editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(EntTenant)).expect("schema serialises")
}

/// Makes a generated schema one the API server accepts in a CRD (a structural schema):
/// no `additionalProperties: false` beside `properties` (unknown fields are pruned, or
/// refused by a strict field validation), a lone `allOf` (how a default is put
/// beside an inlined type) merged into its parent, a documented enum made a plain one.
fn structural(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(obj) => {
            if obj.get("additionalProperties") == Some(&serde_json::Value::Bool(false)) {
                obj.remove("additionalProperties");
            }
            if let Some(serde_json::Value::Array(mut all)) = obj.remove("allOf") {
                if let [serde_json::Value::Object(only)] = all.as_mut_slice() {
                    for (key, value) in std::mem::take(only) {
                        obj.entry(key).or_insert(value);
                    }
                } else {
                    obj.insert("allOf".into(), serde_json::Value::Array(all));
                }
            }
            if let Some(values) = obj.get("oneOf").and_then(string_enum) {
                obj.remove("oneOf");
                obj.insert("type".into(), "string".into());
                obj.insert("enum".into(), serde_json::Value::Array(values));
            }
            obj.values_mut().for_each(structural);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(structural),
        _ => {}
    }
}

/// The values of a `oneOf` of string constants (a documented enum), for a plain `enum`:
/// the branches of a structural schema may not carry a type.
fn string_enum(one_of: &serde_json::Value) -> Option<Vec<serde_json::Value>> {
    let mut values = Vec::new();
    for branch in one_of.as_array()? {
        if branch["type"] != "string" {
            return None;
        }
        values.extend(branch["enum"].as_array()?.iter().cloned());
    }
    Some(values)
}

/// The schema of the `status` `entctl operator` writes: the tenant's `phase`, the generation
/// it saw, and the conditions (Kubernetes `metav1.Condition`).
fn status_schema() -> serde_json::Value {
    let text = |description: &str| serde_json::json!({ "type": "string", "description": description });
    serde_json::json!({
        "type": "object",
        "properties": {
            "phase": text("Lifecycle state of the tenant (requested, provisioning, active, …), Blocked or Invalid."),
            "observedGeneration": { "type": "integer", "format": "int64" },
            "conditions": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": {
                    "type": "object",
                    "required": ["type", "status", "reason", "message", "lastTransitionTime"],
                    "properties": {
                        "type": text("Ready, Progressing, Degraded or GovernanceBlocked."),
                        "status": { "type": "string", "enum": ["True", "False", "Unknown"] },
                        "reason": { "type": "string" },
                        "message": { "type": "string" },
                        "lastTransitionTime": { "type": "string", "format": "date-time" },
                        "observedGeneration": { "type": "integer", "format": "int64" }
                    }
                }
            }
        }
    })
}

/// A CustomResourceDefinition declaring `EntTenant` to a Kubernetes cluster.
pub fn crd() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::openapi3().with(|s| s.inline_subschemas = true);
    let spec_schema = serde_json::to_value(settings.into_generator().into_root_schema_for::<TenantSpec>());
    let mut spec_schema = spec_schema.expect("schema");
    if let Some(obj) = spec_schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
        obj.remove("components");
    }
    structural(&mut spec_schema);
    let (group, version) = API_VERSION.split_once('/').expect("group/version");
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("enttenants.{group}") },
        "spec": {
            "group": group,
            "names": { "kind": KIND, "plural": "enttenants", "singular": "enttenant", "shortNames": ["ent"] },
            "scope": "Namespaced",
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": spec_schema, "status": status_schema() },
                    "required": ["spec"]
                }},
                // `entctl operator` writes `status` through its own subresource: a status
                // write never changes `spec` nor bumps `metadata.generation`.
                "subresources": { "status": {} },
                "additionalPrinterColumns": [
                    { "name": "Phase", "type": "string", "jsonPath": ".status.phase" },
                    { "name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status" },
                    { "name": "Hostname", "type": "string", "jsonPath": ".spec.hostname" }
                ]
            }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_allows_only_its_moves() {
        assert!(Status::Requested.can_move_to(Status::Provisioning));
        assert!(!Status::Requested.can_move_to(Status::Active));
        assert!(Status::Suspended.can_move_to(Status::Active));
        assert!(!Status::Archived.can_move_to(Status::Active));
        assert!(Status::Decommissioning.can_move_to(Status::Archived));
        assert!(Status::Requested.still_served() && Status::Suspended.still_served());
        assert!(!Status::Decommissioning.still_served() && !Status::Archived.still_served());
        assert!(!Status::Purged.still_served());
    }

    #[test]
    fn slugs_and_hostnames_are_dns_names() {
        assert!(is_dns_label("ecole-doisneau-fresnes", 40));
        assert!(!is_dns_label("École", 40));
        assert!(!is_dns_label("-x", 40));
        assert!(is_hostname("doisneau.ent.fresnes.fr"));
        assert!(!is_hostname("localhost"));
        assert!(!is_hostname("a..b"));
        assert!(!is_hostname("127.0.0.1") && !is_hostname("10.0.0.12"), "an IP address is no hostname");
        assert!(is_hostname("ent.college-1.fr") && is_hostname("0940176f.ent.fr"));
    }

    #[test]
    fn the_crd_embeds_the_spec_schema() {
        let crd = crd();
        assert_eq!(crd["spec"]["names"]["kind"], "EntTenant");
        let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert!(props["hostname"].is_object() && props["bouquet"].is_object(), "{crd}");
        // A structural schema, as the API server requires: every type inlined, nothing it refuses.
        let text = crd.to_string();
        for refused in ["$ref", "allOf", "\"additionalProperties\":false", "components"] {
            assert!(!text.contains(refused), "{refused} in {crd}");
        }
        assert_eq!(props["identitySource"]["type"], "string", "{crd}");
        assert_eq!(props["identitySource"]["default"], "educonnect");
        assert_eq!(props["identitySource"]["enum"], serde_json::json!(["educonnect", "aaf"]));
    }

    #[test]
    fn the_crd_declares_the_status_subresource_the_operator_writes() {
        let crd = crd();
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["subresources"]["status"], serde_json::json!({}), "{crd}");
        let status = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
        assert_eq!(status["observedGeneration"]["type"], "integer");
        let condition = &status["conditions"]["items"]["properties"];
        for field in ["type", "status", "reason", "message", "lastTransitionTime"] {
            assert!(condition[field].is_object(), "{field} in {crd}");
        }
    }
}
