//! Reads of the registry, and the two rules every later capability needs:
//! what an organisation *covers*, and which collectivité *funds* an établissement.

use super::{fold, EtabType, Org, OrgKind, OrgRef};
use crate::error::Problem;
use crate::store::{Flag, Store};
use base64::Engine;
use sqlx::any::AnyRow;
use sqlx::FromRow;

pub const ORG_COLUMNS: &str = "id, kind, code, name, siren, siret, etab_type, nature_code, \
    nature_label, sector, degree, commune_code, departement_code, academie_code, region_code, \
    pupils, is_open, email, country, version, created_at, updated_at";

/// An organisation from a row of [`ORG_COLUMNS`].
pub fn org_from_row(row: &AnyRow) -> sqlx::Result<Org> {
    Org::from_row(row)
}

/// A SQL condition with its bound values, composed into larger queries.
/// Clauses hold `?` markers, numbered `$1, $2, ...` only when rendered, so that
/// conditions can be combined with AND and OR freely.
#[derive(Debug, Default, Clone)]
pub struct Condition {
    clauses: Vec<String>,
    values: Vec<SqlValue>,
}

/// A value bound to a `?` of a [`Condition`].
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl Condition {
    /// Adds `template` (ANDed), where each `?` stands for the next value.
    pub fn push(&mut self, template: &str, values: &[&str]) {
        debug_assert_eq!(template.matches('?').count(), values.len());
        self.clauses.push(template.to_string());
        self.values.extend(values.iter().map(|v| SqlValue::Text(v.to_string())));
    }

    /// Adds `template` (ANDed) with one integer value.
    pub fn push_int(&mut self, template: &str, value: i64) {
        debug_assert_eq!(template.matches('?').count(), 1);
        self.clauses.push(template.to_string());
        self.values.push(SqlValue::Int(value));
    }

    /// ANDs `prefix (inner) suffix`, e.g. a sub-select filtered by `inner`.
    pub fn and_wrapped(&mut self, prefix: &str, inner: Condition, suffix: &str) {
        self.clauses.push(format!("{prefix}{}{suffix}", inner.template()));
        self.values.extend(inner.values);
    }

    /// A condition that matches nothing.
    pub fn never() -> Condition {
        Condition { clauses: vec!["1 = 0".into()], values: vec![] }
    }

    /// Matches what any of `conditions` matches (nothing if there are none).
    pub fn any(conditions: Vec<Condition>) -> Condition {
        if conditions.is_empty() {
            return Condition::never();
        }
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        for c in conditions {
            clauses.push(format!("({})", c.template()));
            values.extend(c.values);
        }
        Condition { clauses: vec![format!("({})", clauses.join(" OR "))], values }
    }

    /// ANDs another condition into this one.
    pub fn and(&mut self, other: Condition) {
        self.clauses.push(format!("({})", other.template()));
        self.values.extend(other.values);
    }

    fn template(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }

    /// The SQL with `$n` placeholders from `$1`.
    pub fn sql(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for part in self.template().split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(head) => {
                    n += 1;
                    out.push_str(head);
                    out.push_str(&format!("${n}"));
                }
                None => out.push_str(part),
            }
        }
        out
    }

    pub fn values(&self) -> &[SqlValue] {
        &self.values
    }

    /// Binds the values in order onto a query built from [`Condition::sql`].
    pub fn bind<'q>(&'q self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for value in &self.values {
            query = match value {
                SqlValue::Text(s) => query.bind(s.as_str()),
                SqlValue::Int(i) => query.bind(*i),
            };
        }
        query
    }
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

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass it as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from rows fetched with `LIMIT size + 1`: the extra row, if any,
    /// only says that another page exists, whose cursor is the last kept row's.
    pub fn from_overfetch(mut items: Vec<T>, size: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if items.len() > size as usize {
            items.truncate(size as usize);
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

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
            let pattern = format!("%{}%", fold(q).replace(['%', '_'], ""));
            cond.push("(sort_name LIKE ? OR code = ?)", &[&pattern, &q.trim().to_ascii_uppercase()]);
        }
        Ok(cond)
    }
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn encode_cursor(org: &Org) -> String {
    let raw = serde_json::json!([fold(&org.name), org.id]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Result<(String, String), Problem> {
    let bad = || Problem::invalid_field("cursor", "curseur invalide : reprenez depuis la première page");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice::<(String, String)>(&raw).map_err(|_| bad())
}

pub fn page_size(limit: Option<u32>) -> Result<u32, Problem> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(Problem::invalid_field("limit", format!("entre 1 et {MAX_PAGE}"))),
    }
}

/// One page of organisations matching `cond`, ordered by name then id.
async fn page_where(
    store: &Store,
    mut cond: Condition,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Org>, Problem> {
    let size = page_size(limit)?;
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        let (name, id) = decode_cursor(cursor)?;
        cond.push("(sort_name > ? OR (sort_name = ? AND id > ?))", &[&name, &name, &id]);
    }
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE {} ORDER BY sort_name, id LIMIT {}", cond.sql(), size + 1);
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    Ok(Page::from_overfetch(rows.iter().map(org_from_row).collect::<sqlx::Result<_>>()?, size, encode_cursor))
}

/// One page of organisations matching `filter`, restricted to `scope` when given.
pub async fn list_orgs(store: &Store, filter: &OrgFilter, scope: Option<Condition>) -> Result<Page<Org>, Problem> {
    let mut cond = filter.condition()?;
    if let Some(scope) = scope {
        cond.and(scope);
    }
    page_where(store, cond, filter.cursor.as_deref(), filter.limit).await
}

pub async fn get_org(store: &Store, id: &str) -> Result<Option<Org>, Problem> {
    get_org_in(&mut *store.conn().await?, id).await
}

/// [`get_org`] through `conn` (a transaction's connection).
pub async fn get_org_in(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<Org>, Problem> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    Ok(row.as_ref().map(org_from_row).transpose()?)
}

pub async fn get_by_code(store: &Store, kind: OrgKind, code: &str) -> Result<Option<Org>, Problem> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE kind = $1 AND code = $2");
    let row = sqlx::query(&sql).bind(kind.as_str()).bind(code).fetch_optional(store.pool()).await?;
    Ok(row.as_ref().map(org_from_row).transpose()?)
}

/// Finds an organisation by id, by `kind:code`, or by a bare code when only one
/// organisation has it (a UAI, an INSEE code); an ambiguous code answers 409
/// with the qualified codes to use instead.
pub async fn resolve_org(store: &Store, key: &str) -> Result<Org, Problem> {
    let key = key.trim();
    let not_found = || Problem::not_found(format!("aucune organisation « {key} »"));
    if uuid::Uuid::parse_str(key).is_ok() {
        return get_org(store, key).await?.ok_or_else(not_found);
    }
    if let Some((kind, code)) = key.split_once(':') {
        let kind = OrgKind::parse(kind).ok_or_else(not_found)?;
        return get_by_code(store, kind, &code.to_ascii_uppercase()).await?.ok_or_else(not_found);
    }
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE code = $1 ORDER BY kind LIMIT 20");
    let rows = sqlx::query(&sql).bind(key.to_ascii_uppercase()).fetch_all(store.pool()).await?;
    let mut orgs: Vec<Org> = rows.iter().map(org_from_row).collect::<sqlx::Result<_>>()?;
    match orgs.len() {
        0 => Err(not_found()),
        1 => Ok(orgs.remove(0)),
        _ => {
            let candidates: Vec<String> = orgs.iter().map(Org::qualified_code).collect();
            Err(Problem::new(
                crate::error::ProblemKind::AmbiguousCode,
                format!("le code « {key} » désigne plusieurs organisations : {}", candidates.join(", ")),
            )
            .with_extra(serde_json::json!({ "candidates": candidates })))
        }
    }
}

/// The condition selecting every organisation that `org` covers.
pub fn covers_condition(org: &Org) -> Condition {
    let mut cond = Condition::default();
    let etab = OrgKind::Etablissement.as_str();
    match org.kind {
        OrgKind::Academie => cond.push("kind = ? AND academie_code = ?", &[etab, &org.code]),
        OrgKind::Dsden => cond.push("kind = ? AND departement_code = ?", &[etab, &org.code]),
        OrgKind::Commune => cond.push("kind = ? AND commune_code = ? AND degree = ?", &[etab, &org.code, "1D"]),
        OrgKind::Departement => cond.push(
            "kind = ? AND departement_code = ? AND etab_type = ?",
            &[etab, &org.code, EtabType::College.as_str()],
        ),
        OrgKind::Region => cond.push(
            "kind = ? AND region_code = ? AND etab_type IN (?, ?, ?)",
            &[etab, &org.code, "lycee", "lycee_professionnel", "erea"],
        ),
        OrgKind::Epci | OrgKind::SyndicatMixte => cond.push(
            "((kind = 'commune' AND id IN (SELECT member_id FROM org_members WHERE group_id = ?)) \
             OR (kind = 'etablissement' AND degree = '1D' AND commune_code IN \
             (SELECT m.code FROM org_members om JOIN orgs m ON m.id = om.member_id WHERE om.group_id = ?)))",
            &[&org.id, &org.id],
        ),
        OrgKind::Etablissement | OrgKind::Editeur | OrgKind::Hebergeur => return Condition::never(),
    }
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
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT g.id, g.kind, g.code, g.name, om.ent_delegated FROM org_members om \
         JOIN orgs g ON g.id = om.group_id WHERE om.member_id = $1 ORDER BY g.sort_name, g.id",
    )
    .bind(commune_id)
    .fetch_all(store.pool())
    .await?;
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
pub struct Relatives {
    by_code: Vec<Org>,
    groups: Vec<(OrgRef, bool)>,
}

impl Relatives {
    pub async fn of(store: &Store, org: &Org) -> Result<Relatives, Problem> {
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
                .fetch_all(store.pool())
                .await?
                .iter()
                .map(org_from_row)
                .collect::<sqlx::Result<_>>()?
        };
        let commune_id = match org.kind {
            OrgKind::Commune => Some(org.id.as_str()),
            OrgKind::Etablissement if org.etab_type.is_some_and(EtabType::is_ecole) => {
                Self::find(&by_code, OrgKind::Commune, &org.commune_code).map(|c| c.id.as_str())
            }
            _ => None,
        };
        let groups = match commune_id {
            Some(id) => groups_of_commune(store, id).await?,
            None => Vec::new(),
        };
        Ok(Relatives { by_code, groups })
    }

    /// The (kind, code) of every organisation above `org` named by its codes.
    fn codes(org: &Org) -> Vec<(OrgKind, &str)> {
        if org.kind != OrgKind::Etablissement {
            return Vec::new();
        }
        let above = match org.etab_type {
            Some(t) if t.is_ecole() => Some((OrgKind::Commune, &org.commune_code)),
            Some(EtabType::College) => Some((OrgKind::Departement, &org.departement_code)),
            Some(_) => Some((OrgKind::Region, &org.region_code)),
            None => None,
        };
        [Some((OrgKind::Academie, &org.academie_code)), Some((OrgKind::Dsden, &org.departement_code)), above]
            .into_iter()
            .flatten()
            .filter_map(|(kind, code)| Some((kind, code.as_deref()?)))
            .collect()
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
    /// EPCI it delegated its ENT to), collège → département, lycée and EREA → région.
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
        match etab_type {
            EtabType::College => self.get(OrgKind::Departement, &etab.departement_code),
            _ => self.get(OrgKind::Region, &etab.region_code),
        }
        .map(Org::as_ref)
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
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT m.id, m.kind, m.code, m.name, om.ent_delegated FROM org_members om \
         JOIN orgs m ON m.id = om.member_id WHERE om.group_id = $1 ORDER BY m.sort_name, m.id",
    )
    .bind(group_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().map(|r| (r.org, r.ent_delegated)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let org = Org {
            id: "0190".into(),
            kind: OrgKind::Commune,
            code: "94034".into(),
            name: "Fresnes".into(),
            siren: None,
            siret: None,
            etab_type: None,
            nature_code: None,
            nature_label: None,
            sector: None,
            degree: None,
            commune_code: None,
            departement_code: None,
            academie_code: None,
            region_code: None,
            pupils: None,
            open: true,
            email: None,
            country: "FR".into(),
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&org)).unwrap(), ("fresnes".into(), "0190".into()));
        assert!(decode_cursor("not a cursor").is_err());
    }
}
