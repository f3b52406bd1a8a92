//! Reads of the registry, and the two rules every later capability needs:
//! what an organisation *covers*, and which collectivité *funds* an établissement.

use super::{funded_types, EtabType, Org, OrgRef};
use crate::identity::Actor;
use base64::Engine;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::store::{json, Backend, Flag, Store};
use ent_kernel::store::{page_size, Condition, Page};
use ent_kernel::text::fold;
use sqlx::any::AnyRow;
use sqlx::FromRow;

pub const ORG_COLUMNS: &str = "id, kind, code, name, siren, siret, etab_type, nature_code, \
    nature_label, sector, degree, commune_code, departement_code, academie_code, region_code, \
    pupils, is_open, email, country, version, created_at, updated_at";

/// An organisation from a row of [`ORG_COLUMNS`].
pub fn org_from_row(row: &AnyRow) -> sqlx::Result<Org> {
    Org::from_row(row)
}

/// Filters of `GET /orgs`.
#[derive(Debug, Default, Clone, serde::Deserialize, schemars::JsonSchema)]
pub struct OrgFilter {
    #[schemars(extend("enum" = ["academie", "dsden", "region", "departement", "commune", "epci", "syndicat_mixte",
        "etablissement", "editeur", "hebergeur"]))]
    pub kind: Option<String>,
    pub academie: Option<String>,
    pub departement: Option<String>,
    pub commune: Option<String>,
    /// `1D` or `2D`.
    #[schemars(extend("enum" = ["1D", "2D"]))]
    pub degree: Option<String>,
    #[schemars(extend("enum" = ["ecole_maternelle", "ecole_elementaire", "ecole_primaire", "college", "lycee",
        "lycee_professionnel", "erea"]))]
    pub etab_type: Option<String>,
    /// Text searched in names (accent- and case-insensitive) or an exact code.
    pub q: Option<String>,
    /// Opaque cursor returned as `next_cursor` by the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

impl OrgFilter {
    fn condition(&self) -> Result<Condition, Problem> {
        let mut cond = Condition::default();
        if let Some(kind) = nonempty(&self.kind) {
            let kind = OrgKind::parse(kind)
                .ok_or_else(|| Problem::invalid_field("kind", format!("type d'organisation inconnu : {kind}")))?;
            cond.push("kind = ?", &[kind.as_str()]);
        }
        if let Some(v) = nonempty(&self.academie) {
            cond.push("academie_code = ?", &[v]);
        }
        if let Some(v) = nonempty(&self.departement) {
            let code =
                super::codes::parse_departement(v).map_err(|e| Problem::invalid_field("departement", e.to_string()))?;
            cond.push("departement_code = ?", &[&code]);
        }
        if let Some(v) = nonempty(&self.commune) {
            let code =
                super::codes::parse_insee_commune(v).map_err(|e| Problem::invalid_field("commune", e.to_string()))?;
            cond.push("commune_code = ?", &[&code]);
        }
        if let Some(v) = nonempty(&self.degree) {
            let degree = v.to_ascii_uppercase();
            if degree != "1D" && degree != "2D" {
                return Err(Problem::invalid_field("degree", "valeurs possibles : 1D, 2D"));
            }
            cond.push("degree = ?", &[&degree]);
        }
        if let Some(v) = nonempty(&self.etab_type) {
            let t = EtabType::parse(v)
                .ok_or_else(|| Problem::invalid_field("etab_type", format!("type d'établissement inconnu : {v}")))?;
            cond.push("etab_type = ?", &[t.as_str()]);
        }
        if let Some(q) = nonempty(&self.q) {
            let (sql, values) = super::name_search("sort_name", q, "code = ?", &[&q.trim().to_ascii_uppercase()]);
            cond.push(&sql, &values.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Ok(cond)
    }
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn encode_cursor(org: &Org) -> String {
    cursor_after(&org.name, &org.id)
}

/// The cursor of the page that follows the organisation `name`, `id`.
fn cursor_after(name: &str, id: &str) -> String {
    let raw = serde_json::json!([fold(name), id]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Result<(String, String), Problem> {
    let bad = || Problem::invalid_field("cursor", "curseur invalide : reprenez depuis la première page");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice::<(String, String)>(&raw).map_err(|_| bad())
}

/// One page of organisations matching `cond`, ordered by name then id.
async fn page_where(
    store: &Store,
    mut cond: Condition,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Org>, Problem> {
    let size = page_size(limit)?;
    after_cursor(&mut cond, cursor)?;
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE {} ORDER BY sort_name, id LIMIT {}", cond.sql(), size + 1);
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    Ok(Page::from_overfetch(rows.iter().map(org_from_row).collect::<sqlx::Result<_>>()?, size, encode_cursor))
}

/// Restricts `cond` to the organisations after `cursor` in page order.
fn after_cursor(cond: &mut Condition, cursor: Option<&str>) -> Result<(), Problem> {
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        let (name, id) = decode_cursor(cursor)?;
        cond.push("(sort_name > ? OR (sort_name = ? AND id > ?))", &[&name, &name, &id]);
    }
    Ok(())
}

/// An `orgs` row as the JSON object `Org` serialises to (same keys, order, types
/// and absent fields), written by the database.
fn org_json_sql(backend: Backend) -> String {
    let etab_types: Vec<&str> = EtabType::ALL.iter().map(|t| t.as_str()).collect();
    let fields = [
        ("id", "id".to_string()),
        ("kind", "kind".into()),
        ("code", "code".into()),
        ("name", "name".into()),
        ("siren", "siren".into()),
        ("siret", "siret".into()),
        ("etab_type", json::known_value(backend, "etab_type", &etab_types)),
        ("nature_code", "nature_code".into()),
        ("nature_label", "nature_label".into()),
        ("sector", json::known_value(backend, "sector", &["public", "prive"])),
        ("degree", json::known_value(backend, "degree", &["1D", "2D"])),
        ("commune_code", "commune_code".into()),
        ("departement_code", "departement_code".into()),
        ("academie_code", "academie_code".into()),
        ("region_code", "region_code".into()),
        ("pupils", "pupils".into()),
        ("open", json::boolean(backend, "is_open <> 0")),
        ("email", "email".into()),
        ("country", "COALESCE(country, 'FR')".into()),
        ("version", "version".into()),
        ("created_at", "created_at".into()),
        ("updated_at", "updated_at".into()),
    ];
    json::object_without_nulls(backend, &fields)
}

/// The one row of [`page_json_query`].
#[derive(FromRow, Clone)]
struct PageJson {
    items: String,
    fetched: i64,
    last_name: Option<String>,
    last_id: Option<String>,
}

/// [`page_where`] as the JSON text of its [`Page`], built by the database in one
/// query: the page's objects aggregated in page order, with the name and id of
/// its last row and whether one more row exists (for `next_cursor`).
async fn page_json_where(
    store: &Store,
    cond: Condition,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<String, Problem> {
    let (sql, cond, size) = page_json_query(store.backend(), cond, cursor, limit)?;
    let key = cond.cache_key(&sql);
    let row = store
        .cached(key, async {
            Ok::<_, Problem>(PageJson::from_row(&cond.bind(sqlx::query(&sql)).fetch_one(store.pool()).await?)?)
        })
        .await?;
    let mut page = format!("{{\"items\":{}", row.items);
    if let (true, Some(name), Some(id)) = (row.fetched > i64::from(size), &row.last_name, &row.last_id) {
        page.push_str(&format!(",\"next_cursor\":\"{}\"", cursor_after(name, id)));
    }
    page.push('}');
    Ok(page)
}

/// The query of [`page_json_where`], its condition with the cursor's, and the page size.
fn page_json_query(
    backend: Backend,
    mut cond: Condition,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<(String, Condition, u32), Problem> {
    let size = page_size(limit)?;
    after_cursor(&mut cond, cursor)?;
    let sql = format!(
        "SELECT {items} AS items, COUNT(*) AS fetched, \
         MAX(CASE WHEN rn = {size} THEN name END) AS last_name, MAX(CASE WHEN rn = {size} THEN id END) AS last_id \
         FROM (SELECT o, name, id, row_number() OVER (ORDER BY sort_name, id) AS rn FROM \
         (SELECT {object} AS o, name, id, sort_name FROM orgs WHERE {cond} ORDER BY sort_name, id LIMIT {fetch}) AS picked) AS page",
        items = json::array_agg(backend, "o", "rn", &format!("rn <= {size}")),
        object = org_json_sql(backend),
        cond = cond.sql(),
        fetch = size + 1,
    );
    Ok((sql, cond, size))
}

/// The organisations matching `filter`, restricted to `scope` when given.
fn list_condition(filter: &OrgFilter, scope: Option<Condition>) -> Result<Condition, Problem> {
    let mut cond = filter.condition()?;
    if let Some(scope) = scope {
        cond.and(scope);
    }
    Ok(cond)
}

/// One page of organisations matching `filter`, restricted to `scope` when given.
pub async fn list_orgs(store: &Store, filter: &OrgFilter, scope: Option<Condition>) -> Result<Page<Org>, Problem> {
    let cond = list_condition(filter, scope)?;
    page_where(store, cond, filter.cursor.as_deref(), filter.limit).await
}

/// [`list_orgs`] as the JSON text of the page, written by the database.
pub async fn list_orgs_json(store: &Store, filter: &OrgFilter, scope: Option<Condition>) -> Result<String, Problem> {
    page_json_where(store, list_condition(filter, scope)?, filter.cursor.as_deref(), filter.limit).await
}

/// The database's plan of the [`list_orgs_json`] query, one line per step (for the bench).
pub async fn explain_list_orgs_json(
    store: &Store,
    filter: &OrgFilter,
    scope: Option<Condition>,
) -> Result<Vec<String>, Problem> {
    let cond = list_condition(filter, scope)?;
    let (sql, cond, _) = page_json_query(store.backend(), cond, filter.cursor.as_deref(), filter.limit)?;
    let sql = store.explain_statement(&sql);
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    Ok(rows.iter().map(|row| store.plan_step(row)).collect::<sqlx::Result<_>>()?)
}

/// The organisation `key` names ([`resolve_org`]) and its relatives, read through one
/// connection, or as last read if the database has not changed since.
pub async fn org_with_relatives(store: &Store, key: &str) -> Result<(Org, Relatives), Problem> {
    store
        .cached(format!("registry.org\u{0}{key}"), async {
            let mut conn = store.conn().await?;
            let org = resolve_org_in(&mut conn, key).await?;
            let relatives = Relatives::of_in(&mut conn, &org).await?;
            Ok((org, relatives))
        })
        .await
}

pub async fn get_org(store: &Store, id: &str) -> Result<Option<Org>, Problem> {
    get_org_in(&mut *store.conn().await?, id).await
}

/// Organisations by id, in one query per 500 ids (a page of rows that name them).
pub async fn orgs_by_id(store: &Store, ids: Vec<String>) -> Result<std::collections::HashMap<String, Org>, Problem> {
    orgs_by_id_in(&mut *store.conn().await?, ids).await
}

/// [`orgs_by_id`] through `conn`.
pub async fn orgs_by_id_in(
    conn: &mut sqlx::AnyConnection,
    ids: Vec<String>,
) -> Result<std::collections::HashMap<String, Org>, Problem> {
    let mut orgs = std::collections::HashMap::new();
    for cond in Condition::in_chunks("id", ids) {
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE {}", cond.sql());
        for row in cond.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
            let org = org_from_row(&row)?;
            orgs.insert(org.id.clone(), org);
        }
    }
    Ok(orgs)
}

/// [`get_org`] through `conn` (a transaction's connection).
pub async fn get_org_in(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<Org>, Problem> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    Ok(row.as_ref().map(org_from_row).transpose()?)
}

pub async fn get_by_code(store: &Store, kind: OrgKind, code: &str) -> Result<Option<Org>, Problem> {
    get_by_code_in(&mut *store.conn().await?, kind, code).await
}

/// [`get_by_code`] through `conn`.
pub async fn get_by_code_in(conn: &mut sqlx::AnyConnection, kind: OrgKind, code: &str) -> Result<Option<Org>, Problem> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE kind = $1 AND code = $2");
    let row = sqlx::query(&sql).bind(kind.as_str()).bind(code).fetch_optional(conn).await?;
    Ok(row.as_ref().map(org_from_row).transpose()?)
}

/// Finds an organisation by id, by `kind:code`, or by a bare code when only one
/// organisation has it (a UAI, an INSEE code); an ambiguous code answers 409
/// with the qualified codes to use instead. Answering a caller, use
/// `authz::resolve_readable` (or `Caller::resolve`, [`resolve_readable_field`]): it lists only
/// what the caller may read.
pub async fn resolve_org(store: &Store, key: &str) -> Result<Org, Problem> {
    resolve_org_in(&mut *store.conn().await?, key).await
}

/// The 404 of an organisation key that names nothing; an organisation out of the caller's
/// scope answers it too, in the same words (built from the key the caller sent).
pub fn missing_org(key: &str) -> Problem {
    Problem::not_found(format!("aucune organisation « {} »", key.trim()))
}

/// The organisation `actor` names in the request's `field` (id, `kind:code`, code), an ambiguous
/// code narrowed to what it reads (`authz::resolve_readable`): a key naming nothing, or a code
/// shared only by organisations it may not read, is a 422 on `field` in the words of
/// [`missing_org`]. An id or a unique code resolves whether or not the actor may read it:
/// check the scope before saying anything of the organisation.
pub async fn resolve_readable_field(store: &Store, actor: &Actor, field: &str, key: &str) -> Result<Org, Problem> {
    crate::identity::authz::resolve_readable(store, actor, key).await.map_err(|p| {
        match p.kind.status().is_server_error() {
            true => p,
            false => Problem::invalid_field(field, p.detail),
        }
    })
}

/// [`resolve_readable_field`], which must be one of `kinds`: a 422 on `field` otherwise,
/// ending with `expected` (who may be named).
pub async fn resolve_field_org(
    store: &Store,
    actor: &Actor,
    field: &str,
    key: &str,
    kinds: &[OrgKind],
    expected: &str,
) -> Result<Org, Problem> {
    let org = resolve_readable_field(store, actor, field, key).await?;
    field_org_kind(field, &org, kinds, expected)?;
    Ok(org)
}

/// The 422 on `field` unless `org` is one of `kinds` (`expected` says who may be named).
/// It names the organisation and its kind: check first that the caller may see it.
pub fn field_org_kind(field: &str, org: &Org, kinds: &[OrgKind], expected: &str) -> Result<(), Problem> {
    if !kinds.contains(&org.kind) {
        let detail = format!("{} est {} : {expected}", org.name, org.kind.with_article());
        return Err(Problem::invalid_field(field, detail));
    }
    Ok(())
}

/// [`resolve_org`] through `conn`.
pub async fn resolve_org_in(conn: &mut sqlx::AnyConnection, key: &str) -> Result<Org, Problem> {
    let key = key.trim();
    let not_found = || missing_org(key);
    if uuid::Uuid::parse_str(key).is_ok() {
        return get_org_in(conn, key).await?.ok_or_else(not_found);
    }
    if let Some((kind, code)) = key.split_once(':') {
        let kind = OrgKind::parse(kind).ok_or_else(not_found)?;
        return get_by_code_in(conn, kind, &code.to_ascii_uppercase()).await?.ok_or_else(not_found);
    }
    one_of(key, orgs_with_code_in(conn, key).await?)
}

/// The organisations of every kind whose code is the bare `code` (a UAI, an INSEE code).
pub async fn orgs_with_code(store: &Store, code: &str) -> Result<Vec<Org>, Problem> {
    orgs_with_code_in(&mut *store.conn().await?, code).await
}

/// [`orgs_with_code`] through `conn`.
async fn orgs_with_code_in(conn: &mut sqlx::AnyConnection, code: &str) -> Result<Vec<Org>, Problem> {
    // One probe of the unique (kind, code) index per kind: no index on the code alone.
    let kinds: Vec<String> = OrgKind::ALL.iter().map(|k| format!("'{}'", k.as_str())).collect();
    let sql = format!(
        "SELECT {ORG_COLUMNS} FROM orgs WHERE kind IN ({}) AND code = $1 ORDER BY kind LIMIT 20",
        kinds.join(", ")
    );
    let rows = sqlx::query(&sql).bind(code.trim().to_ascii_uppercase()).fetch_all(conn).await?;
    Ok(rows.iter().map(org_from_row).collect::<sqlx::Result<_>>()?)
}

/// The organisation a bare code `key` names among `orgs` (those having it): none, the 404 of a
/// key naming nothing; several, 409 listing their `kind:code` (`candidates`).
pub fn one_of(key: &str, mut orgs: Vec<Org>) -> Result<Org, Problem> {
    let key = key.trim();
    match orgs.len() {
        0 => Err(missing_org(key)),
        1 => Ok(orgs.remove(0)),
        _ => {
            let candidates: Vec<String> = orgs.iter().map(Org::qualified_code).collect();
            Err(Problem::new(
                ProblemKind::AmbiguousCode,
                format!("le code « {key} » désigne plusieurs organisations : {}", candidates.join(", ")),
            )
            .with_extra(serde_json::json!({ "candidates": candidates })))
        }
    }
}

/// Rows that are not private schools: a collectivité's competence over schools (L. 212-4,
/// L. 213-2, L. 214-6 du code de l'éducation) is over public ones; a private school (sous
/// contrat) is its organisme de gestion's. A school without a sector (an annuaire without the
/// column) is public. The SQL mirror of [`Org::is_public`].
const PUBLIC_SECTOR: &str = "COALESCE(sector, 'public') <> 'prive'";

/// The condition selecting every organisation that `org` covers: the académie and the DSDEN
/// every school of their territory (the State's control reaches private schools sous contrat),
/// a collectivité the public schools it funds ([`PUBLIC_SECTOR`]).
pub fn covers_condition(org: &Org) -> Condition {
    let mut cond = Condition::default();
    let etab = OrgKind::Etablissement.as_str();
    if !matches!(org.kind, OrgKind::Academie | OrgKind::Dsden) {
        cond.push(PUBLIC_SECTOR, &[]);
    }
    match org.kind {
        OrgKind::Academie => cond.push("kind = ? AND academie_code = ?", &[etab, &org.code]),
        OrgKind::Dsden => cond.push("kind = ? AND departement_code = ?", &[etab, &org.code]),
        OrgKind::Commune => {
            push_ecoles(&mut cond);
            cond.push("commune_code = ?", &[&org.code]);
        }
        OrgKind::Departement | OrgKind::Region => {
            let types = funded_types(org.kind, &org.code);
            if types.is_empty() {
                return Condition::never();
            }
            let column = if org.kind == OrgKind::Departement { "departement_code" } else { "region_code" };
            let marks = vec!["?"; types.len()].join(", ");
            let mut values = vec![etab, org.code.as_str()];
            values.extend(types.iter().map(|t| t.as_str()));
            cond.push(&format!("kind = ? AND {column} = ? AND etab_type IN ({marks})"), &values);
        }
        OrgKind::Epci | OrgKind::SyndicatMixte => push_members(&mut cond, org, ""),
        OrgKind::Etablissement | OrgKind::Editeur | OrgKind::Hebergeur => return Condition::never(),
    }
    cond
}

/// Adds to `cond` the écoles a commune covers, whatever its commune: first-degree
/// établissements (the commune's code comes on top).
fn push_ecoles(cond: &mut Condition) {
    cond.push("kind = ? AND degree = ?", &[OrgKind::Etablissement.as_str(), "1D"]);
}

/// Adds to `cond` the member communes of `group` (those of `members`, a condition on its
/// membership `om`, or all) and their écoles.
fn push_members(cond: &mut Condition, group: &Org, members: &str) {
    let sql = format!(
        "((kind = 'commune' AND id IN (SELECT om.member_id FROM org_members om WHERE om.group_id = ?{members})) \
         OR (kind = 'etablissement' AND degree = '1D' AND commune_code IN \
         (SELECT m.code FROM org_members om JOIN orgs m ON m.id = om.member_id WHERE om.group_id = ?{members})))"
    );
    cond.push(&sql, &[&group.id, &group.id]);
}

/// The condition selecting what `org` pays the ENT of ([`Relatives::funding`]): what it covers
/// ([`covers_condition`]), save that an EPCI or syndicat mixte funds only the communes that
/// delegated their ENT to it (`ent_delegated`) and their écoles; the others run and pay their
/// own. Awards, prefilled quantities and the schools a convention covers follow it.
pub fn funds_condition(org: &Org) -> Condition {
    if !matches!(org.kind, OrgKind::Epci | OrgKind::SyndicatMixte) {
        return covers_condition(org);
    }
    let mut cond = Condition::default();
    cond.push(PUBLIC_SECTOR, &[]);
    push_members(&mut cond, org, " AND om.ent_delegated <> 0");
    cond
}

/// Every établissement `org` funds ([`funds_condition`]), open or not, by name.
pub async fn funded_etablissements(store: &Store, org: &Org) -> Result<Vec<Org>, Problem> {
    funded_etablissements_in(&mut *store.conn().await?, org).await
}

/// [`funded_etablissements`] read through `conn` (inside a transaction, the transaction's).
pub async fn funded_etablissements_in(conn: &mut sqlx::AnyConnection, org: &Org) -> Result<Vec<Org>, Problem> {
    let mut cond = funds_condition(org);
    cond.push("kind = ?", &[OrgKind::Etablissement.as_str()]);
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE {} ORDER BY sort_name, id", cond.sql());
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(conn).await?;
    Ok(rows.iter().map(org_from_row).collect::<sqlx::Result<_>>()?)
}

/// [`funded_etablissements`] of many communes at once, by commune code (each list in the
/// same order), in one query per 500 communes.
pub async fn funded_ecoles_by_commune(
    store: &Store,
    communes: &[&Org],
) -> Result<std::collections::HashMap<String, Vec<Org>>, Problem> {
    let codes = communes.iter().filter(|c| c.kind == OrgKind::Commune).map(|c| c.code.clone()).collect();
    let mut by_commune: std::collections::HashMap<String, Vec<Org>> = std::collections::HashMap::new();
    for mut cond in Condition::in_chunks("commune_code", codes) {
        cond.push(PUBLIC_SECTOR, &[]);
        push_ecoles(&mut cond);
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE {} ORDER BY sort_name, id", cond.sql());
        for row in cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
            let ecole = org_from_row(&row)?;
            by_commune.entry(ecole.commune_code.clone().unwrap_or_default()).or_default().push(ecole);
        }
    }
    Ok(by_commune)
}

/// The open établissements among the organisations: the schools a figure counts (groupement
/// prefill, dashboard coverage). A closed school stays in the registry but counts nowhere.
pub fn open_schools() -> Condition {
    let mut cond = Condition::default();
    cond.push("kind = ? AND is_open <> 0", &[OrgKind::Etablissement.as_str()]);
    cond
}

/// One page of the organisations `org` covers.
pub async fn covers(
    store: &Store,
    org: &Org,
    scope: Option<Condition>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Org>, Problem> {
    let mut cond = covers_condition(org);
    if let Some(scope) = scope {
        cond.and(scope);
    }
    page_where(store, cond, cursor, limit).await
}

/// Whether `org` covers `target` (or is it): the basis of organisation scopes.
pub async fn covers_org(store: &Store, org: &Org, target: &Org) -> Result<bool, Problem> {
    if org.id == target.id {
        return Ok(true);
    }
    let mut cond = covers_condition(org);
    cond.push("id = ?", &[&target.id]);
    let sql = format!("SELECT COUNT(*) AS n FROM orgs WHERE {}", cond.sql());
    let n: i64 = <(i64,)>::from_row(&cond.bind(sqlx::query(&sql)).fetch_one(store.pool()).await?)?.0;
    Ok(n > 0)
}

/// The EPCIs and syndicats mixtes a commune belongs to, with the delegation flag.
pub async fn groups_of_commune(store: &Store, commune_id: &str) -> Result<Vec<(OrgRef, bool)>, Problem> {
    groups_of_commune_in(&mut *store.conn().await?, commune_id).await
}

/// [`groups_of_commune`] through `conn`.
async fn groups_of_commune_in(
    conn: &mut sqlx::AnyConnection,
    commune_id: &str,
) -> Result<Vec<(OrgRef, bool)>, Problem> {
    memberships(conn, "group_id", "member_id", commune_id).await
}

/// The organisations at the `wanted` end of the `org_members` rows whose `given` end is `id`
/// (both `group_id` or `member_id`), sorted by name, with the delegation flag.
async fn memberships(
    conn: &mut sqlx::AnyConnection,
    wanted: &str,
    given: &str,
    id: &str,
) -> Result<Vec<(OrgRef, bool)>, Problem> {
    let sql = format!(
        "SELECT o.id, o.kind, o.code, o.name, om.ent_delegated FROM org_members om \
         JOIN orgs o ON o.id = om.{wanted} WHERE om.{given} = $1 ORDER BY o.sort_name, o.id"
    );
    let rows: Vec<MemberRow> = sqlx::query_as(&sql).bind(id).fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| (r.org, r.ent_delegated)).collect())
}

/// A member or group of `org_members`, with its delegation flag.
#[derive(sqlx::FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    org: OrgRef,
    #[sqlx(try_from = "Flag")]
    ent_delegated: bool,
}

/// The organisations above an établissement or a commune, read at once: the
/// académie, DSDEN, commune, département and région its codes name (one query),
/// and the EPCIs and syndicats mixtes of its commune (one more, for an école or a
/// commune). [`covering_parents`] and [`funding_collectivite`] are derived from it.
#[derive(Clone)]
pub struct Relatives {
    by_code: Vec<Org>,
    groups: Vec<(OrgRef, bool)>,
}

impl Relatives {
    pub async fn of(store: &Store, org: &Org) -> Result<Relatives, Problem> {
        Self::of_in(&mut *store.conn().await?, org).await
    }

    /// [`Relatives::of`] through `conn`.
    pub async fn of_in(conn: &mut sqlx::AnyConnection, org: &Org) -> Result<Relatives, Problem> {
        let wanted = Self::codes(org);
        let by_code = if wanted.is_empty() {
            Vec::new()
        } else {
            let cond = Condition::any(
                wanted
                    .iter()
                    .map(|(kind, code)| {
                        let mut c = Condition::default();
                        c.push("kind = ? AND code = ?", &[kind.as_str(), code]);
                        c
                    })
                    .collect(),
            );
            let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE {}", cond.sql());
            cond.bind(sqlx::query(&sql))
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(org_from_row)
                .collect::<sqlx::Result<_>>()?
        };
        let groups = match Self::commune_id(org, &by_code) {
            Some(id) => groups_of_commune_in(conn, id).await?,
            None => Vec::new(),
        };
        Ok(Relatives { by_code, groups })
    }

    /// The commune whose EPCIs and syndicats mixtes are above `org` (itself, or a public
    /// école's, found among `by_code`).
    fn commune_id<'a>(org: &'a Org, by_code: &'a [Org]) -> Option<&'a str> {
        match org.kind {
            OrgKind::Commune => Some(org.id.as_str()),
            OrgKind::Etablissement if org.etab_type.is_some_and(EtabType::is_ecole) && org.is_public() => {
                Self::find(by_code, OrgKind::Commune, &org.commune_code).map(|c| c.id.as_str())
            }
            _ => None,
        }
    }

    /// The (kind, code) of every organisation above `org` named by its codes: its académie and
    /// DSDEN, and the collectivité funding it unless it is private (as [`covers_condition`]).
    fn codes(org: &Org) -> Vec<(OrgKind, &str)> {
        if org.kind != OrgKind::Etablissement {
            return Vec::new();
        }
        let above = match org.etab_type {
            _ if !org.is_public() => None,
            Some(t) if t.is_ecole() => Some((OrgKind::Commune, &org.commune_code)),
            Some(t) => Self::secondary_funder(org, t),
            None => None,
        };
        [Some((OrgKind::Academie, &org.academie_code)), Some((OrgKind::Dsden, &org.departement_code)), above]
            .into_iter()
            .flatten()
            .filter_map(|(kind, code)| Some((kind, code.as_deref()?)))
            .collect()
    }

    /// The (kind, code) of the collectivité funding a second-degree school of type `t`.
    fn secondary_funder(org: &Org, t: EtabType) -> Option<(OrgKind, &Option<String>)> {
        match t.secondary_funder(org.departement_code.as_deref())? {
            OrgKind::Departement => Some((OrgKind::Departement, &org.departement_code)),
            kind => Some((kind, &org.region_code)),
        }
    }

    fn find<'a>(orgs: &'a [Org], kind: OrgKind, code: &Option<String>) -> Option<&'a Org> {
        let code = code.as_deref()?;
        orgs.iter().find(|o| o.kind == kind && o.code == code)
    }

    fn get(&self, kind: OrgKind, code: &Option<String>) -> Option<&Org> {
        Self::find(&self.by_code, kind, code)
    }

    /// Every organisation that covers `org` (the inverse of [`covers`]).
    pub fn covering_parents(&self, org: &Org) -> Vec<OrgRef> {
        let parents = Self::codes(org)
            .into_iter()
            .filter_map(|(kind, code)| self.by_code.iter().find(|o| o.kind == kind && o.code == code).map(Org::as_ref));
        parents.chain(self.groups.iter().map(|(g, _)| g.clone())).collect()
    }

    /// The collectivité that pays an établissement's ENT: école → its commune (or the
    /// EPCI it delegated its ENT to), collège → département, lycée and EREA → région, save
    /// where one collectivité holds both powers ([`super::SECONDARY_FUNDING`]); none for a
    /// private school.
    /// A group is only named here (its row was not read): see [`funding_collectivite`].
    pub fn funding(&self, etab: &Org) -> Option<OrgRef> {
        let etab_type = etab.etab_type?;
        if etab_type.is_ecole() {
            let commune = self.get(OrgKind::Commune, &etab.commune_code)?;
            return match self.groups.iter().find(|(_, delegated)| *delegated) {
                Some((group, _)) => Some(group.clone()),
                None => Some(commune.as_ref()),
            };
        }
        let (kind, code) = Self::secondary_funder(etab, etab_type)?;
        self.get(kind, code).map(Org::as_ref)
    }
}

/// What [`Relatives::of`] reads, read once for every organisation: the organisations an
/// établissement's codes may name (every one but the établissements) by kind and code, and the
/// EPCIs and syndicats mixtes of every commune (by commune id, sorted by name). Two queries,
/// whatever the number of organisations asked about afterwards.
pub struct RelativesIndex {
    by_code: std::collections::HashMap<(OrgKind, String), Org>,
    groups: std::collections::HashMap<String, Vec<(OrgRef, bool)>>,
}

impl RelativesIndex {
    pub async fn load(store: &Store) -> Result<RelativesIndex, Problem> {
        // Named kinds, not `kind <>`: the unique (kind, code) index finds them, a scan would
        // read the établissements too.
        let kinds = OrgKind::ALL.iter().filter(|k| **k != OrgKind::Etablissement);
        let kinds: Vec<String> = kinds.map(|k| format!("'{}'", k.as_str())).collect();
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE kind IN ({})", kinds.join(", "));
        let mut by_code = std::collections::HashMap::new();
        for row in sqlx::query(&sql).fetch_all(store.pool()).await? {
            let org = org_from_row(&row)?;
            by_code.insert((org.kind, org.code.clone()), org);
        }
        #[derive(sqlx::FromRow)]
        struct GroupRow {
            member_id: String,
            #[sqlx(flatten)]
            group: MemberRow,
        }
        let rows: Vec<GroupRow> = sqlx::query_as(
            "SELECT om.member_id, o.id, o.kind, o.code, o.name, om.ent_delegated FROM org_members om \
             JOIN orgs o ON o.id = om.group_id ORDER BY o.sort_name, o.id",
        )
        .fetch_all(store.pool())
        .await?;
        let mut groups: std::collections::HashMap<String, Vec<(OrgRef, bool)>> = std::collections::HashMap::new();
        for row in rows {
            groups.entry(row.member_id).or_default().push((row.group.org, row.group.ent_delegated));
        }
        Ok(RelativesIndex { by_code, groups })
    }

    /// [`Relatives::of`] `org`, without a query.
    pub fn relatives(&self, org: &Org) -> Relatives {
        let by_code: Vec<Org> = Relatives::codes(org)
            .into_iter()
            .filter_map(|(kind, code)| self.by_code.get(&(kind, code.to_string())).cloned())
            .collect();
        let groups = Relatives::commune_id(org, &by_code).and_then(|id| self.groups.get(id)).cloned();
        Relatives { groups: groups.unwrap_or_default(), by_code }
    }
}

/// The collectivité that pays an établissement's ENT (see [`Relatives::funding`]).
pub async fn funding_collectivite(store: &Store, etab: &Org) -> Result<Option<Org>, Problem> {
    if etab.etab_type.is_none() {
        return Ok(None);
    }
    let relatives = Relatives::of(store, etab).await?;
    let Some(funder) = relatives.funding(etab) else { return Ok(None) };
    match relatives.by_code.into_iter().find(|o| o.id == funder.id) {
        Some(org) => Ok(Some(org)),
        None => get_org(store, &funder.id).await,
    }
}

/// Every organisation that covers `org` (the inverse of [`covers`]).
pub async fn covering_parents(store: &Store, org: &Org) -> Result<Vec<OrgRef>, Problem> {
    Ok(Relatives::of(store, org).await?.covering_parents(org))
}

/// The member communes of an EPCI or syndicat mixte.
pub async fn members_of_group(store: &Store, group_id: &str) -> Result<Vec<(OrgRef, bool)>, Problem> {
    memberships(&mut *store.conn().await?, "member_id", "group_id", group_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::store::SqlValue;

    #[test]
    fn conditions_combine_with_or_and_keep_numbering() {
        let mut a = Condition::default();
        a.push("x = ?", &["1"]);
        let mut b = Condition::default();
        b.push("y = ?", &["2"]);
        b.push("z = ?", &["3"]);
        let mut all = Condition::default();
        all.push("kind = ?", &["k"]);
        all.and(Condition::any(vec![a, b]));
        assert_eq!(all.sql(), "kind = $1 AND (((x = $2) OR (y = $3 AND z = $4)))");
        let mut then_and = Condition::any(vec![Condition::never(), Condition::default()]);
        then_and.push("id = ?", &["9"]);
        assert_eq!(then_and.sql(), "((1 = 0) OR (1 = 1)) AND id = $1", "OR binds looser than a later AND");
        let texts: Vec<SqlValue> = ["k", "1", "2", "3"].iter().map(|v| SqlValue::Text(v.to_string())).collect();
        assert_eq!(all.values(), texts);
        assert_eq!(Condition::any(vec![]).sql(), "1 = 0");
    }

    #[test]
    fn condition_numbers_placeholders_in_order() {
        let mut cond = Condition::default();
        cond.push("kind = ?", &["commune"]);
        cond.push("(a > ? OR (a = ? AND id > ?))", &["x", "x", "y"]);
        assert_eq!(cond.sql(), "kind = $1 AND (a > $2 OR (a = $3 AND id > $4))");
        assert_eq!(cond.values().len(), 4);
    }

    #[test]
    fn cursor_round_trips_and_garbage_is_refused() {
        let org = Org::named("0190", OrgKind::Commune, "94034", "Fresnes");
        assert_eq!(decode_cursor(&encode_cursor(&org)).unwrap(), ("fresnes".into(), "0190".into()));
        assert!(decode_cursor("not a cursor").is_err());
    }
}
