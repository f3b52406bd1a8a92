//! Reads the [`World`] a derivation needs in a handful of queries, whatever the
//! number of tenants: live tenants, their organisations and schools, active
//! conventions with their parties and schools, the DSDEN, profiles and history.

use super::derive::{Assignment, Ccap, ContractFact, Forecast, LiveTenant, OrgFacts, Profile, World};
use ent_conventions::conventions::model::ConventionModel;
use ent_conventions::conventions::{find_model, frozen, rgpd_roles, schools_now};
use ent_kernel::clock::french_day;
use ent_kernel::config::{ClusterConfig, ProvisioningConfig};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::store::{timestamp, Flag, JsonObject, JsonText, Store, Tx};
use ent_platform::catalog::{Catalog, IdentitySource, Service};
use ent_platform::contracts::{ccap_versions, in_force_at, ClausesVersion, FROM_GROUPEMENT};
use ent_platform::registry::queries::{covers_condition, org_from_row, ORG_COLUMNS};
use ent_platform::registry::{get_org, Org};
use ent_tenants::provisioning::{self, purge, reconcile};
use ent_tenants::tenants::{self, get_tenant};
use serde::Deserialize;
use sqlx::FromRow;
use std::collections::HashMap;

/// Statuses of a tenant whose personal data are still processed: running, being
/// decommissioned, or archived with its volumes kept until the retention purge (`purged`
/// is the only status whose data are gone). Storage is processing (Art. 4(2)).
pub const LIVE: &str = "('provisioning', 'active', 'suspended', 'decommissioning', 'archived')";

/// What the register knows of `org`, its name as a register shows it
/// (`naming::display_name`: « École … », not the directory's « Ecole … »; a snapshot taken before
/// keeps the name it holds).
pub fn facts(org: &Org) -> OrgFacts {
    OrgFacts {
        id: org.id.clone(),
        kind: org.kind,
        code: org.code.clone(),
        name: ent_kernel::naming::display_name(&org.name),
        etab_type: org.etab_type,
        private: !org.is_public(),
        departement_code: org.departement_code.clone(),
        academie_code: org.academie_code.clone(),
        email: org.email.clone(),
        country: org.country.clone(),
        profile: None,
        pupils: org.pupils,
    }
}

async fn orgs_where(store: &Store, condition: &str, date: Option<&str>) -> Result<Vec<Org>, Problem> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE {condition}");
    let mut query = sqlx::query(&sql);
    if let Some(date) = date {
        query = query.bind(date).bind(date);
    }
    Ok(query.fetch_all(store.pool()).await?.iter().map(org_from_row).collect::<sqlx::Result<_>>()?)
}

const ACTIVE_CONVENTIONS: &str =
    "SELECT id FROM conventions WHERE status = 'active' AND start_date <= $1 AND end_date >= $2";

/// The world on `date` (`YYYY-MM-DD`), with the history of `org_id`'s register; `provisioning`
/// renders the tenants' objects (their security measures) and says how long an archived
/// tenant's data are kept before the purge.
pub async fn world(
    store: &Store,
    catalog: &Catalog,
    models: &[ConventionModel],
    provisioning: &ProvisioningConfig,
    date: &str,
    org_id: &str,
) -> Result<World, Problem> {
    world_citing(store, catalog, models, provisioning, date, org_id, Vec::new()).await
}

/// [`world`], whose CCAP versions ([`World::ccaps`]) are also those of the groupements `markets`
/// (the markets of a contract list, ended ones too: the contracts export), read with those of the
/// contracts in force in one statement.
pub async fn world_citing(
    store: &Store,
    catalog: &Catalog,
    models: &[ConventionModel],
    provisioning: &ProvisioningConfig,
    date: &str,
    org_id: &str,
    markets: Vec<String>,
) -> Result<World, Problem> {
    let mut world = World { purge_after_months: provisioning.retention_months, ..World::default() };
    let add = |world: &mut World, org: &Org| {
        world.orgs.entry(org.id.clone()).or_insert_with(|| facts(org));
    };
    let tenant_orgs =
        orgs_where(store, &format!("id IN (SELECT org_id FROM tenants WHERE status IN {LIVE})"), None).await?;
    let mut schools_of: HashMap<String, Vec<String>> = HashMap::new();
    for org in &tenant_orgs {
        add(&mut world, org);
        if org.kind == OrgKind::Etablissement {
            schools_of.insert(org.id.clone(), vec![org.id.clone()]);
            continue;
        }
        // The open schools it covers: a school the annuaire says is closed runs no ENT, and no
        // processor works for it.
        let cond = covers_condition(org);
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM orgs WHERE kind = 'etablissement' AND is_open <> 0 AND {} ORDER BY sort_name",
            cond.sql()
        );
        let covered: Vec<Org> = cond
            .bind(sqlx::query(&sql))
            .fetch_all(store.pool())
            .await?
            .iter()
            .map(org_from_row)
            .collect::<sqlx::Result<_>>()?;
        schools_of.insert(org.id.clone(), covered.iter().map(|o| o.id.clone()).collect());
        covered.iter().for_each(|o| add(&mut world, o));
    }
    for org in orgs_where(
        store,
        "kind IN ('dsden', 'editeur', 'hebergeur') OR id IN (SELECT org_id FROM rgpd_profiles) \
         OR id IN (SELECT client_org_id FROM processor_contracts)",
        None,
    )
    .await?
    {
        if org.kind == OrgKind::Dsden {
            world.dsden_by_departement.insert(org.code.clone(), org.id.clone());
        }
        add(&mut world, &org);
    }
    for org in orgs_where(
        store,
        &format!("id IN (SELECT org_id FROM convention_parties WHERE convention_id IN ({ACTIVE_CONVENTIONS}))"),
        Some(date),
    )
    .await?
    {
        add(&mut world, &org);
    }
    if let Some(org) = get_org(store, org_id).await? {
        add(&mut world, &org);
    }
    world.assignments = assignments(store, models, date).await?;
    world.ahead = signed_ahead(store, models, date)
        .await?
        .into_iter()
        .filter(|(school, _)| !world.assignments.contains_key(school))
        .map(|(school, (roles, start))| (school, (roles, french_day(&start))))
        .collect();
    world.annexes = signed_annexes(store, catalog, date).await?;
    world.tenants = live_tenants(store, catalog, provisioning, &schools_of).await?;
    declared_forecasts(store, date, &mut world.tenants).await?;
    (world.contracts, world.ccaps) = contracts(store, catalog, date, markets).await?;
    for (id, profile) in profiles(store).await? {
        if let Some(org) = world.orgs.get_mut(&id) {
            org.profile = Some(profile);
        }
    }
    world.history = history(store, org_id).await?;
    Ok(world)
}

/// A convention as [`roles_by_school`] reads it.
#[derive(sqlx::FromRow)]
struct ConventionRef {
    id: String,
    reference: String,
    model_id: String,
    model_version: i64,
    start_date: String,
}

/// The RGPD roles of every school covered by a convention in force (the latest starting wins).
async fn assignments(
    store: &Store,
    models: &[ConventionModel],
    date: &str,
) -> Result<HashMap<String, Assignment>, Problem> {
    let in_force = "status = 'active' AND start_date <= $1 AND end_date >= $2";
    let by_school = roles_by_school(store, models, in_force, "start_date, id", date).await?;
    Ok(by_school.into_iter().map(|(school, (assignment, _))| (school, assignment)).collect())
}

/// The RGPD roles of every school a convention signed but not yet in force on `date` will
/// cover, with its first day (the earliest to come wins): what governs a tenant run by an
/// administrator's override before its convention takes effect.
async fn signed_ahead(
    store: &Store,
    models: &[ConventionModel],
    date: &str,
) -> Result<HashMap<String, (Assignment, String)>, Problem> {
    let later = "status IN ('signed', 'active') AND start_date > $1 AND start_date > $2 \
                 AND (termination_effective IS NULL OR termination_effective > start_date)";
    roles_by_school(store, models, later, "start_date DESC, id DESC", date).await
}

/// The RGPD roles of every school covered by the conventions meeting `condition` (on
/// `conventions`, binding `date` as `$1` and `$2`), each with its convention's start date;
/// where several cover a school, the last in `order` wins.
async fn roles_by_school(
    store: &Store,
    models: &[ConventionModel],
    condition: &str,
    order: &str,
    date: &str,
) -> Result<HashMap<String, (Assignment, String)>, Problem> {
    let sql = format!(
        "SELECT id, reference, model_id, model_version, start_date FROM conventions WHERE {condition} ORDER BY {order}"
    );
    let conventions: Vec<ConventionRef> = sqlx::query_as(&sql).bind(date).bind(date).fetch_all(store.pool()).await?;
    let selected = format!("SELECT id FROM conventions WHERE {condition}");
    let parties_sql = format!(
        "SELECT convention_id, party_key, org_id FROM convention_parties WHERE convention_id IN ({selected}) \
         ORDER BY convention_id, position"
    );
    let mut parties: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as(&parties_sql).bind(date).bind(date).fetch_all(store.pool()).await?;
    for (convention_id, party_key, org_id) in rows {
        parties.entry(convention_id).or_default().push((party_key, org_id));
    }
    let schools_sql =
        format!("SELECT convention_id, org_id FROM convention_schools WHERE convention_id IN ({selected})");
    let mut schools: HashMap<String, Vec<String>> = HashMap::new();
    let rows: Vec<(String, String)> =
        sqlx::query_as(&schools_sql).bind(date).bind(date).fetch_all(store.pool()).await?;
    for (convention_id, org_id) in rows {
        schools.entry(convention_id).or_default().push(org_id);
    }
    let mut out = HashMap::new();
    for c in conventions {
        let id = c.id;
        let Ok(model) = find_model(models, &c.model_id, Some(c.model_version as u32)) else {
            continue;
        };
        let of = |key: &str| -> Vec<String> {
            parties.get(&id).into_iter().flatten().filter(|(k, _)| k == key).map(|(_, o)| o.clone()).collect()
        };
        let Some((controller, joint_controllers, processors)) = rgpd_roles(model, of) else {
            continue;
        };
        let assignment = Assignment { convention: c.reference, controller, joint_controllers, processors };
        let listed = schools.get(&id).map(Vec::as_slice).unwrap_or_default();
        let of_convention = parties.get(&id).map(Vec::as_slice).unwrap_or_default();
        for school in schools_now(store, model, of_convention, listed).await? {
            out.insert(school, (assignment.clone(), c.start_date.clone()));
        }
    }
    Ok(out)
}

/// The catalog codes of the services the signed Art. 28 annex of each active convention lists,
/// by reference: what that convention binds its processor for, whatever its ENT run since. The
/// names its frozen text lists are read back as the catalog names them (a name the catalog no
/// longer has covers nothing). A convention without frozen text is left out.
async fn signed_annexes(store: &Store, catalog: &Catalog, date: &str) -> Result<HashMap<String, Vec<String>>, Problem> {
    let rows: Vec<(String, String)> =
        sqlx::query_as(&format!("SELECT id, reference FROM conventions WHERE id IN ({ACTIVE_CONVENTIONS})"))
            .bind(date)
            .bind(date)
            .fetch_all(store.pool())
            .await?;
    let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    let mut codes = frozen::signed_annex_codes(&mut *store.conn().await?, catalog, &ids).await?;
    Ok(rows.into_iter().filter_map(|(id, reference)| Some((reference, codes.remove(&id)?))).collect())
}

/// A live tenant as [`live_tenants`] reads it.
#[derive(sqlx::FromRow)]
struct LiveTenantRow {
    slug: String,
    status: String,
    org_id: String,
    base_bouquet: String,
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    options: Vec<String>,
    accounts: i64,
    #[sqlx(try_from = "String")]
    identity_source: IdentitySource,
    vendor_org_id: Option<String>,
    host_org_id: Option<String>,
    applied_services: Option<String>,
    retained_services: Option<String>,
    archived_at: Option<String>,
    purge_due_at: Option<String>,
}

/// The services a live tenant runs, and the note the register gives when the catalog no
/// longer resolves its bouquet and options.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningServices {
    pub codes: Vec<String>,
    /// In French: how the services are known when the catalog entry of the offer is gone.
    pub note: Option<String>,
}

/// How the services of a tenant last applied are known when its offer left the catalog.
const FROM_DEPLOYMENT: &str = "services décrits d'après ceux déployés sur le tenant";

/// How the services of a tenant never applied are known when its offer left the catalog.
const FROM_SUBSCRIPTION: &str = "services décrits d'après le bouquet et les options souscrits, tels que le catalogue \
     les liste encore (aucun déploiement enregistré)";

/// What a tenant runs, as its convention's Art. 28 annex describes it: the services last applied
/// to it once recorded (`applied`, `tenants.applied_services`), else the catalog's resolution of
/// its bouquet and options ([`reconcile::running_services`]). When an overlay or a release
/// removed or changed an offer it subscribed to, with a note saying that the catalog entry is
/// gone; its services, never recorded, are then those of its bouquet and options in any version
/// the catalog still has ([`subscribed`]).
pub fn running_services(catalog: &Catalog, bouquet: &str, options: &[String], applied: &[String]) -> RunningServices {
    let refs: Vec<&str> = options.iter().map(String::as_str).collect();
    let gone = catalog.resolve(bouquet, &refs).err().map(unresolved);
    let running = reconcile::running_services(catalog, bouquet, options, applied);
    let codes = |services: Vec<&Service>| services.into_iter().map(|s| s.code.clone()).collect();
    let Some(error) = gone else {
        return RunningServices { codes: running.map(codes).unwrap_or_default(), note: None };
    };
    let (codes, described) = match running {
        Ok(services) => (codes(services), FROM_DEPLOYMENT),
        Err(_) => (subscribed(catalog, bouquet, options), FROM_SUBSCRIPTION),
    };
    let note = format!("l'entrée du catalogue de son offre n'existe plus ({error}) : {described}");
    RunningServices { codes, note: Some(note) }
}

/// Why the catalog does not resolve a subscription, in words a register can print: the
/// messages of the refusal without the names of its fields.
fn unresolved(refusal: Problem) -> String {
    if refusal.errors.is_empty() {
        return refusal.detail;
    }
    refusal.errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join(" ; ")
}

/// The services of a bouquet and options in any version the catalog still has, each once: the
/// version a tenant subscribed to is not recorded, and a DPO would rather see a processing
/// listed that a later version dropped than miss one the tenant may run.
fn subscribed(catalog: &Catalog, bouquet: &str, options: &[String]) -> Vec<String> {
    catalog.services_of_any_version(std::iter::once(bouquet).chain(options.iter().map(String::as_str)))
}

async fn live_tenants(
    store: &Store,
    catalog: &Catalog,
    provisioning: &ProvisioningConfig,
    schools_of: &HashMap<String, Vec<String>>,
) -> Result<Vec<LiveTenant>, Problem> {
    let (cluster, retention_months) = (&provisioning.cluster, provisioning.retention_months);
    let sql = format!(
        "SELECT slug, status, org_id, base_bouquet, options, accounts, identity_source, vendor_org_id, host_org_id, \
         applied_services, retained_services, archived_at, purge_due_at FROM tenants WHERE status IN {LIVE} \
         ORDER BY slug"
    );
    let mut measures: HashMap<(String, Vec<String>), Vec<String>> = HashMap::new();
    let mut out = Vec::new();
    let rows: Vec<LiveTenantRow> = sqlx::query_as(&sql).fetch_all(store.pool()).await?;
    for r in rows {
        let applied = tenants::codes(r.applied_services);
        let running = running_services(catalog, &r.base_bouquet, &r.options, &applied);
        let key = (r.status.clone(), running.codes.clone());
        let security = match measures.get(&key) {
            Some(m) => m.clone(),
            None => {
                let m = deployed_measures(store, catalog, cluster, &r.slug, &running.codes).await?;
                measures.insert(key, m.clone());
                m
            }
        };
        let retained = tenants::codes(r.retained_services);
        let purge_from = match r.status.as_str() {
            "archived" => purge::due_from(r.purge_due_at.as_deref(), r.archived_at.as_deref(), retention_months)
                .map(|due| french_day(&timestamp(due))),
            _ => None,
        };
        out.push(LiveTenant {
            slug: r.slug,
            schools: schools_of.get(&r.org_id).cloned().unwrap_or_default(),
            retained: retained.into_iter().filter(|code| !running.codes.contains(code)).collect(),
            catalog_note: running.note,
            purge_from,
            services: running.codes,
            accounts: r.accounts.max(0),
            forecasts: Vec::new(),
            org: r.org_id,
            aaf: r.identity_source == IdentitySource::Aaf,
            vendor: r.vendor_org_id,
            host: r.host_org_id,
            security,
        });
    }
    Ok(out)
}

/// The security measures the objects rendered for tenant `slug` with the services it runs
/// (`codes`, [`running_services`]) put in place: the same for every tenant of its state and
/// services, so rendered once for each of them.
async fn deployed_measures(
    store: &Store,
    catalog: &Catalog,
    cluster: &ClusterConfig,
    slug: &str,
    codes: &[String],
) -> Result<Vec<String>, Problem> {
    let Some(tenant) = get_tenant(store, slug).await? else { return Ok(vec![]) };
    let Some(org) = get_org(store, &tenant.organisation.id).await? else { return Ok(vec![]) };
    let services: Vec<&Service> = codes.iter().filter_map(|code| catalog.service(code)).collect();
    // The credentials' seed changes no measure: none is read here.
    let objects = provisioning::render(&tenant, &org, &services, "", cluster);
    Ok(provisioning::security_measures(&objects).into_iter().map(String::from).collect())
}

/// Records on each tenant the account figures declared for its schools, its forecasts
/// ([`Forecast`]): the « accounts » parameter of each active convention covering them (a total
/// for all the établissements it covers, whether they run an ENT or not) and its
/// organisation's declared needs as an accepted member of a groupement de commandes. They
/// never make the scale of a register, which its tenants' own accounts make.
async fn declared_forecasts(store: &Store, date: &str, tenants: &mut [LiveTenant]) -> Result<(), Problem> {
    let sql = format!(
        "SELECT c.reference, c.parameters, s.org_id FROM conventions c JOIN convention_schools s \
         ON s.convention_id = c.id WHERE c.id IN ({ACTIVE_CONVENTIONS}) ORDER BY c.reference"
    );
    let rows: Vec<(String, JsonText<JsonObject>, String)> =
        sqlx::query_as(&sql).bind(date).bind(date).fetch_all(store.pool()).await?;
    let mut covered: HashMap<String, usize> = HashMap::new();
    let mut by_school: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for (reference, JsonText(params), school) in rows {
        *covered.entry(reference.clone()).or_default() += 1;
        let accounts = params.get("accounts").and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()));
        if let Some(accounts) = accounts.filter(|a| *a > 0) {
            by_school.entry(school).or_default().push((reference, accounts));
        }
    }
    let members: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT g.reference, m.org_id, m.pupils + m.teacher_accounts + m.parent_accounts FROM groupement_members m \
         JOIN groupements g ON g.id = m.groupement_id WHERE m.status = 'accepted' ORDER BY g.reference",
    )
    .fetch_all(store.pool())
    .await?;
    for tenant in tenants.iter_mut() {
        let mut conventions: Vec<(String, i64)> =
            tenant.schools.iter().filter_map(|s| by_school.get(s)).flatten().cloned().collect();
        conventions.sort();
        conventions.dedup();
        let of_conventions = conventions.into_iter().map(|(reference, accounts)| Forecast {
            source: format!("convention {reference}, pour {}", covered_count(covered.get(&reference))),
            key: reference,
            accounts,
        });
        let of_groupements = members.iter().filter(|(_, org, a)| *org == tenant.org && *a > 0).map(|(g, org, a)| {
            Forecast { key: format!("{g}:{org}"), source: format!("groupement {g}, besoins déclarés"), accounts: *a }
        });
        tenant.forecasts = of_conventions.chain(of_groupements).collect();
    }
    Ok(())
}

/// « 42 établissements couverts », « 1 établissement couvert ».
fn covered_count(n: Option<&usize>) -> String {
    let n = n.copied().unwrap_or_default() as i64;
    super::derive::counted(n, "établissement couvert", "établissements couverts")
}

const PROFILE_COLUMNS: &str = "org_id, head_name, head_title, address, phone, email, dpo_name, dpo_email, dpo_phone, \
    dpo_address, representative, security_measures, version, updated_by, updated_at, transfer_safeguard, \
    transfer_safeguard_reference";

/// A profile from a row of [`PROFILE_COLUMNS`].
pub fn profile_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<Profile> {
    Profile::from_row(r)
}

/// A row of `rgpd_profiles`: its organisation, the profile and its version.
#[derive(sqlx::FromRow)]
struct ProfileRow {
    org_id: String,
    #[sqlx(flatten)]
    profile: Profile,
    version: i64,
}

async fn profiles(store: &Store) -> Result<Vec<(String, Profile)>, Problem> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM rgpd_profiles");
    let rows: Vec<ProfileRow> = sqlx::query_as(&sql).fetch_all(store.pool()).await?;
    Ok(rows.into_iter().map(|r| (r.org_id, r.profile)).collect())
}

/// A profile and its version, if one was recorded.
pub async fn profile(store: &Store, org_id: &str) -> Result<Option<(Profile, i64)>, Problem> {
    profile_from(store.pool(), org_id).await
}

/// [`profile`], read in `tx` (by the change that replaces it).
pub async fn profile_in(tx: &mut Tx, org_id: &str) -> Result<Option<(Profile, i64)>, Problem> {
    profile_from(&mut **tx, org_id).await
}

async fn profile_from<'c>(
    db: impl sqlx::Executor<'c, Database = sqlx::Any>,
    org_id: &str,
) -> Result<Option<(Profile, i64)>, Problem> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM rgpd_profiles WHERE org_id = $1");
    let row: Option<ProfileRow> = sqlx::query_as(&sql).bind(org_id).fetch_optional(db).await?;
    Ok(row.map(|r| (r.profile, r.version)))
}

pub async fn history(store: &Store, org_id: &str) -> Result<HashMap<String, (String, String, String)>, Problem> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT entry_key, first_recorded_at, last_changed_at, content_hash FROM rgpd_entry_history WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().map(|(key, first, last, hash)| (key, (first, last, hash))).collect())
}

/// A processor contract as [`contracts`] reads it, with the terms of the groupement whose award
/// recorded it.
#[derive(sqlx::FromRow)]
struct ContractRow {
    processor_org_id: String,
    client_org_id: String,
    parent_processor_org_id: Option<String>,
    reference: String,
    title: String,
    art28_clauses: Flag,
    source_kind: String,
    source_id: Option<String>,
    created_at: String,
    terms: Option<String>,
}

/// What a market's terms (`groupements.terms`) say of the services it asks for.
#[derive(Deserialize)]
struct MarketTerms {
    bouquet: String,
    #[serde(default)]
    options: Vec<String>,
}

/// The processor contracts in force on `date`: an ended or future contract binds nobody. A
/// groupement's market covers the services of its bouquet and options, as its CCAP's Art. 28
/// clauses list them ([`market_services`]), and cites the CCAP version holding them
/// (`contracts::in_force_at`); another contract's description is not recorded here. With the
/// CCAP versions of their markets and of the groupements `markets`, by groupement, read in one
/// statement.
async fn contracts(
    store: &Store,
    catalog: &Catalog,
    date: &str,
    mut markets: Vec<String>,
) -> Result<(Vec<ContractFact>, CcapVersions), Problem> {
    let sql = format!(
        "SELECT c.processor_org_id, c.client_org_id, c.parent_processor_org_id, c.reference, c.title, \
         c.art28_clauses, c.source_kind, c.source_id, c.created_at, g.terms FROM processor_contracts c \
         LEFT JOIN groupements g ON c.source_kind = '{FROM_GROUPEMENT}' AND g.id = c.source_id \
         WHERE (c.starts_on IS NULL OR c.starts_on <= $1) AND (c.ends_on IS NULL OR c.ends_on >= $2) \
         ORDER BY c.reference, c.id"
    );
    let rows: Vec<ContractRow> = sqlx::query_as(&sql).bind(date).bind(date).fetch_all(store.pool()).await?;
    let market = |r: &ContractRow| r.source_id.clone().filter(|_| r.source_kind == FROM_GROUPEMENT);
    markets.extend(rows.iter().filter_map(market));
    let ccaps = ccap_versions(store, markets).await?;
    let ccap_of = |r: &ContractRow| {
        let v = in_force_at(ccaps.get(&market(r)?)?, &r.created_at)?;
        Some(Ccap { version: v.version, sha256: v.sha256.clone() })
    };
    let facts = rows
        .iter()
        .map(|r| ContractFact {
            services: r.terms.as_deref().and_then(|terms| market_services(catalog, terms)),
            ccap: ccap_of(r),
            processor: r.processor_org_id.clone(),
            client: r.client_org_id.clone(),
            reference: r.reference.clone(),
            title: r.title.clone(),
            art28: r.art28_clauses.into(),
            parent: r.parent_processor_org_id.clone(),
            cctp: r.source_kind == FROM_GROUPEMENT,
            annex: false,
        })
        .collect();
    Ok((facts, ccaps))
}

/// CCAP versions by groupement, in the order of their numbers (`contracts::ccap_versions`).
type CcapVersions = HashMap<String, Vec<ClausesVersion>>;

/// The codes of the services a market whose terms are `terms` covers
/// ([`Catalog::market_services`]); when the catalog no longer resolves them, those of its bouquet
/// and options in any version it still has (the CCAP then says « ceux du bouquet retenu »).
/// `None` when the terms do not read.
pub(crate) fn market_services(catalog: &Catalog, terms: &str) -> Option<Vec<String>> {
    let terms: MarketTerms = serde_json::from_str(terms).ok()?;
    let resolved = catalog.market_services(&terms.bouquet, &terms.options);
    if resolved.is_empty() {
        let ids = std::iter::once(terms.bouquet.as_str()).chain(terms.options.iter().map(String::as_str));
        return Some(catalog.services_of_any_version(ids));
    }
    Some(resolved.into_iter().map(|s| s.code.clone()).collect())
}
