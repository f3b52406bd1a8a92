//! Conventions between académies, collectivités and établissements: models,
//! instances and their lifecycle (draft → in_signature → signed → active →
//! expired | terminated | amended), the visa and signature circuit, documents,
//! reminders, and the queries later capabilities ask.

pub mod avenant;
pub mod code_text;
pub mod delegation;
pub mod document;
pub mod frozen;
pub mod jobs;
pub mod letters;
pub mod model;
pub mod processing;
pub mod renewal;
pub mod routes;
pub mod signatories;
pub mod state;
pub mod workflow;

use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::{Action, OrgKind};
use ent_kernel::naming;
use ent_kernel::store::Page;
use ent_kernel::store::{first_column, page_size, Backend, Condition, JsonObject, JsonText, Store};
use ent_kernel::validate::parse_any_date;
use ent_kernel::{skip_serializing_none, text_enum};
use ent_platform::audit;
use ent_platform::contracts;
use ent_platform::identity::authz::CONVENTIONS_READ;
use ent_platform::identity::Actor;
use ent_platform::registry::queries::{covering_parents, funded_etablissements, orgs_by_id_in, RelativesIndex};
use ent_platform::registry::{get_org, resolve_org, Degree, EtabType, Org, OrgRef};
use model::ConventionModel;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
pub use state::ConventionsState;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    InSignature,
    /// Every required signature collected, start date not reached yet.
    Signed,
    Active,
    Expired,
    Terminated,
    /// Replaced by an avenant that became active.
    Amended,
}

text_enum!(pub Status {
    Draft = "draft", InSignature = "in_signature", Signed = "signed", Active = "active", Expired = "expired",
    Terminated = "terminated", Amended = "amended",
});

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Draft => "brouillon",
            Status::InSignature => "en signature",
            Status::Signed => "signée",
            Status::Active => "en vigueur",
            Status::Expired => "expirée",
            Status::Terminated => "résiliée",
            Status::Amended => "remplacée par avenant",
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Party {
    pub key: String,
    pub label: String,
    pub org: OrgRef,
    pub signature_required: bool,
    pub order: u32,
    /// Who signs for the party and the act that empowers them.
    pub signatory: Option<signatories::Signatory>,
    /// Its own share, in percent, of a cost line it holds with the other organisations of a
    /// multiple party (a member of a groupement de commandes: its quote-part of the members'
    /// part); absent, the line's share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_percent: Option<f64>,
    /// The organisation's type of établissement (an EPLE's act is its conseil d'administration's).
    #[serde(skip)]
    pub etab_type: Option<EtabType>,
    /// The name of the commune an établissement stands in (where it signs by default, from
    /// `document::SCHOOL_PLACE_EDITION`), when the registry knows it.
    #[serde(skip)]
    pub commune: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct Step {
    pub id: String,
    /// `visa` or `signature`.
    pub kind: String,
    /// The visa key, or the party key for a signature.
    pub step_key: String,
    pub org_id: String,
    #[serde(skip)]
    pub user_id: String,
    /// The signer's name as the directory holds it.
    pub user_name: String,
    pub user_email: String,
    pub role: String,
    pub document_hash: String,
    pub at: String,
    pub voided_at: Option<String>,
    pub void_reason: Option<String>,
    /// A signature recorded with `entctl conventions sign --as` (received on paper): who recorded
    /// it, `cli:<login> pour user:<email>` (as the audit names it); absent when the signer signed
    /// on the platform.
    pub recorded_by: Option<String>,
    /// A signature given in place of the representative the document names: the signer's
    /// quality and the act delegating the signature; absent for the representative's own.
    #[sqlx(skip)]
    pub delegation: Option<delegation::Delegation>,
    /// `convention_steps.delegation` as stored (JSON), read into `delegation`.
    #[serde(skip)]
    #[schemars(skip)]
    #[sqlx(rename = "delegation")]
    pub delegation_column: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
pub struct SignedFile {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub sha256: String,
    pub size: i64,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Convention {
    pub id: String,
    /// Human reference, e.g. `CONV-2026-000012`.
    pub reference: String,
    pub model_id: String,
    pub model_version: u32,
    pub title: String,
    pub status: Status,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// `YYYY-MM-DD`.
    pub start_date: String,
    pub end_date: String,
    pub parties: Vec<Party>,
    /// The établissements the convention covers.
    pub schools: Vec<OrgRef>,
    pub amends_id: Option<String>,
    /// A convention of another model this one explicitly replaces on its schools (terminated at activation).
    pub supersedes_id: Option<String>,
    /// Why a start date in the past was accepted.
    pub backdate_reason: Option<String>,
    /// The controller (responsable de traitement) of the ENT at the covered schools: the controller
    /// party's organisation, or for écoles the DSDEN of their département (the IA-DASEN), whoever
    /// signs for the académie.
    pub rgpd_controller: Option<OrgRef>,
    /// The éditeurs and hébergeurs of the ENT tenants of the parties and covered schools, when
    /// known: the sub-processors the Art. 28 clause names. Empty under a model whose RGPD roles
    /// name no processor party (`processing::processor_party`: the convention constitutive of a
    /// groupement de commandes), whose document says « aucun ».
    pub subprocessors: Vec<OrgRef>,
    /// On a draft whose tenants name no éditeur, the accord-cadre of a groupement de commandes
    /// binding its processor party in its term ([`market_subprocessors`]): its titulaire (and
    /// the hébergeur declared under it) are among `subprocessors`, cited by its reference.
    pub subprocessors_market: Option<MarketNamed>,
    /// What the tenants of its parties and covered schools run, for its Art. 28(3) annex.
    #[serde(skip)]
    #[schemars(skip)]
    pub processed: Processed,
    pub root_id: String,
    /// SHA-256 of the rendered document submitted for signature.
    pub document_hash: Option<String>,
    pub steps: Vec<Step>,
    pub signed_files: Vec<SignedFile>,
    /// The frozen document of each submission (every version kept): what a party downloads and checks.
    pub documents: Vec<frozen::FrozenFile>,
    pub refusal_comment: Option<String>,
    pub termination_reason: Option<String>,
    pub termination_effective: Option<String>,
    /// Who notified the résiliation and when it was recorded (`None` before migration 0067
    /// recorded it, or without a résiliation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_notified: Option<TerminationNotified>,
    /// A party's opposition to the tacit renewal (model `renewable`): the convention then
    /// expires at its term.
    pub non_renewal: Option<renewal::NonRenewal>,
    /// The edition of the text its document is written in, fixed when it was drafted
    /// ([`document::CURRENT_EDITION`]; migration 0059): what it signs reads the same ever after.
    #[serde(skip)]
    #[schemars(skip)]
    pub document_edition: i64,
    /// What the caller should know before going on (in French), on the answer of a single
    /// convention: another convention on one of its schools over common dates whose cost split
    /// differs (`workflow::cost_conflicts`); an avenant that moves the term of the convention it
    /// amends (`avenant::term_warning`). Absent when there is nothing to say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub version: i64,
    /// Who drafted it, as the audit names them (masked for DPO and auditeur: `routes::redacted`).
    pub created_by: String,
    /// The person who drafted it, as the directory names them (`delegation::person_name`);
    /// absent when their account is unknown (a command-line operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A directory's display name as the person it names (`delegation::person_name`), if it names one.
pub(crate) fn person(display: Option<&str>) -> Option<String> {
    display.map(delegation::person_name).filter(|n| !n.is_empty() && !n.contains('@')).map(str::to_string)
}

impl Convention {
    /// Visas and signatures that still count.
    pub fn live_steps<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps.iter().filter(move |s| s.kind == kind && s.voided_at.is_none())
    }

    pub fn party_org_ids(&self) -> Vec<String> {
        self.parties.iter().map(|p| p.org.id.clone()).collect()
    }

    /// Whether `actor` may see it under `action`: an admin, or a binding of one of the action's
    /// roles at a party (a convention the actor does not see answers as one that does not exist).
    pub fn is_seen_by(&self, actor: &Actor, action: &Action) -> bool {
        actor.is_admin()
            || actor.bindings.iter().any(|b| {
                action.roles.contains(&b.role)
                    && b.org.as_ref().is_some_and(|o| self.parties.iter().any(|p| p.org.id == o.id))
            })
    }

    /// Its reference if `actor` may be told it where another convention's answer speaks of it
    /// (a cost-split warning, a refusal of overlapping coverage): to whom sees it
    /// ([`Convention::is_seen_by`] under [`CONVENTIONS_READ`]), else the answer names no convention.
    pub fn reference_for(&self, actor: &Actor) -> Option<&str> {
        self.is_seen_by(actor, &CONVENTIONS_READ).then_some(self.reference.as_str())
    }

    /// Whether it covers one of `schools` (organisation ids).
    pub fn covers_any(&self, schools: &[&str]) -> bool {
        self.schools.iter().any(|s| schools.contains(&s.id.as_str()))
    }
}

/// The models known to this process.
pub fn find_model<'a>(
    models: &'a [ConventionModel],
    id: &str,
    version: Option<u32>,
) -> Result<&'a ConventionModel, Problem> {
    let mut candidates = models.iter().filter(|m| m.id == id);
    let found = match version {
        Some(v) => candidates.find(|m| m.version == v),
        None => candidates.max_by_key(|m| m.version),
    };
    found.ok_or_else(|| {
        let known: Vec<String> = models.iter().map(|m| format!("{} v{}", m.id, m.version)).collect();
        Problem::invalid_field(
            "model",
            format!(
                "modèle inconnu : {id}{} (modèles : {})",
                version.map(|v| format!(" v{v}")).unwrap_or_default(),
                known.join(", ")
            ),
        )
    })
}

/// When a résiliation was recorded and by whom (`POST /conventions/{id}/terminate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TerminationNotified {
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// Who recorded it, as the audit log names them (unknown for one recorded before 0067).
    pub by: Option<String>,
    /// The party organisation that notified it (none for an admin, or before 0067).
    pub org_id: Option<String>,
    /// The person who recorded it, as the directory names them (`delegation::person_name`:
    /// « Karim Benali »); absent when their account is unknown (a command-line operator).
    pub name: Option<String>,
    /// The role they hold at `org_id` (what the document states as their quality when they are
    /// not the representative it names).
    pub role: Option<String>,
}

/// The directory name of the person an actor column names (`user:<email>`, as the audit names
/// them), read through the users' email index; `NULL` for an operator or a job.
fn person_of(column: &str, alias: &str) -> String {
    format!(
        "(SELECT MIN(u.display_name) FROM users u WHERE u.email = SUBSTR({column}, 6) AND {column} LIKE 'user:%') AS {alias}"
    )
}

/// The role that person holds at the organisation of column `org`.
fn role_of(column: &str, org: &str, alias: &str) -> String {
    format!(
        "(SELECT MIN(b.role) FROM role_bindings b JOIN users u ON u.id = b.user_id \
         WHERE u.email = SUBSTR({column}, 6) AND {column} LIKE 'user:%' AND b.org_id = {org}) AS {alias}"
    )
}

/// The columns a [`ConventionRow`] is read from, with the directory names of the persons who
/// drafted it, notified its résiliation or its non-reconduction (what a reader who does not
/// see addresses reads of them: `routes::redacted`).
static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    [
        "id, reference, model_id, model_version, title, status, parameters, start_date, end_date, amends_id, \
         supersedes_id, backdate_reason, root_id, document_hash, refusal_comment, termination_reason, \
         termination_effective, termination_notified_at, termination_notified_by, termination_notified_org"
            .to_string(),
        person_of("termination_notified_by", "termination_notified_name"),
        role_of("termination_notified_by", "termination_notified_org", "termination_notified_role"),
        "non_renewal_at, non_renewal_by, non_renewal_org, non_renewal_reason".to_string(),
        person_of("non_renewal_by", "non_renewal_name"),
        role_of("non_renewal_by", "non_renewal_org", "non_renewal_role"),
        person_of("created_by", "created_by_name"),
        "document_edition, version, created_by, created_at, updated_at".to_string(),
    ]
    .join(", ")
});

/// A `conventions` row (read with [`COLUMNS`]).
#[derive(sqlx::FromRow)]
struct ConventionRow {
    id: String,
    reference: String,
    model_id: String,
    model_version: i64,
    title: String,
    #[sqlx(try_from = "String")]
    status: Status,
    #[sqlx(try_from = "JsonText<JsonObject>")]
    parameters: JsonObject,
    start_date: String,
    end_date: String,
    amends_id: Option<String>,
    supersedes_id: Option<String>,
    backdate_reason: Option<String>,
    root_id: String,
    document_hash: Option<String>,
    refusal_comment: Option<String>,
    termination_reason: Option<String>,
    termination_effective: Option<String>,
    termination_notified_at: Option<String>,
    termination_notified_by: Option<String>,
    termination_notified_org: Option<String>,
    termination_notified_name: Option<String>,
    termination_notified_role: Option<String>,
    #[sqlx(flatten)]
    non_renewal: renewal::NonRenewalColumns,
    document_edition: i64,
    version: i64,
    created_by: String,
    created_by_name: Option<String>,
    created_at: String,
    updated_at: String,
}

/// Reads a convention with its parties, schools, steps and files.
pub async fn get_convention(
    store: &Store,
    models: &[ConventionModel],
    id: &str,
) -> Result<Option<Convention>, Problem> {
    read_convention(&mut *store.conn().await?, models, id, false).await
}

/// The convention `key` (id or reference) names, read as [`get_convention`] reads it, if `actor`
/// sees it under `action` ([`Convention::is_seen_by`]); `None` for one it does not see as for
/// one that does not exist. The decision is taken first, by one statement on the convention's
/// id and its parties' organisations ([`seen_condition`]): a convention out of the actor's scope
/// costs exactly what an unknown key costs (the same statement, no row), and nothing else of it
/// (parties, signatures, documents) is read before it is known to be seen.
pub async fn get_seen_convention(
    store: &Store,
    models: &[ConventionModel],
    key: &str,
    actor: &Actor,
    action: &Action,
) -> Result<Option<Convention>, Problem> {
    let mut conn = store.conn().await?;
    let Some(id) = seen_id(&mut conn, key, actor, action).await? else { return Ok(None) };
    let conv = read_convention(&mut conn, models, &id, false).await?;
    // Its parties may have changed between the two statements: decided again on what is answered.
    Ok(conv.filter(|c| c.is_seen_by(actor, action)))
}

/// The id of the convention `key` (id or reference) names, if `actor` sees it under `action`:
/// one statement, whose plan and cost do not depend on whether the convention exists.
async fn seen_id(
    conn: &mut sqlx::AnyConnection,
    key: &str,
    actor: &Actor,
    action: &Action,
) -> Result<Option<String>, Problem> {
    let mut cond = Condition::default();
    cond.push("(c.id = ? OR c.reference = ?)", &[key, &key.to_ascii_uppercase()]);
    if let Some(seen) = seen_condition(actor, action) {
        cond.and(seen);
    }
    let sql = format!("SELECT c.id FROM conventions c WHERE {}", cond.sql());
    Ok(first_column(&cond.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await?)?.into_iter().next())
}

/// [`get_convention`] through `conn`; `lock` (inside a write transaction) locks the
/// convention's row until commit on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already
/// serialises writers), so that a step is decided on the current state.
pub async fn read_convention(
    conn: &mut sqlx::AnyConnection,
    models: &[ConventionModel],
    id: &str,
    lock: bool,
) -> Result<Option<Convention>, Problem> {
    let lock = if lock { Backend::of_connection(conn).for_update() } else { "" };
    let sql = format!("SELECT {} FROM conventions WHERE id = $1 OR reference = $2{lock}", *COLUMNS);
    let row: Option<ConventionRow> =
        sqlx::query_as(&sql).bind(id).bind(id.to_ascii_uppercase()).fetch_optional(&mut *conn).await?;
    Ok(match row {
        Some(row) => assemble(conn, models, vec![row]).await?.pop(),
        None => None,
    })
}

/// The conventions `ids` (a page), in that order, each as [`read_convention`] reads it, in a
/// number of queries that does not grow with the page: one per kind of thing a convention
/// holds (parties, their organisations, schools, steps, files, documents, sub-processors,
/// DSDEN), and one more of each per 500 conventions. Unknown ids are left out.
pub async fn read_conventions(
    conn: &mut sqlx::AnyConnection,
    models: &[ConventionModel],
    ids: &[String],
) -> Result<Vec<Convention>, Problem> {
    let mut rows: Vec<ConventionRow> = Vec::with_capacity(ids.len());
    for cond in Condition::in_chunks("id", ids.to_vec()) {
        let sql = format!("SELECT {} FROM conventions WHERE {}", *COLUMNS, cond.sql());
        let found: Vec<ConventionRow> =
            cond.bind(sqlx::query(&sql)).try_map(|r| ConventionRow::from_row(&r)).fetch_all(&mut *conn).await?;
        rows.extend(found);
    }
    let position: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    rows.sort_by_key(|row| position.get(row.id.as_str()).copied());
    assemble(conn, models, rows).await
}

/// Rows of `select` (whose `{in}` is replaced by `column IN (...)`) for the conventions
/// `ids`, one query per 500 of them, each row split by `split` into its convention's id
/// and an item; the items of a convention keep the query's order.
pub(crate) async fn grouped<R, T>(
    conn: &mut sqlx::AnyConnection,
    select: &str,
    column: &str,
    ids: &[String],
    mut split: impl FnMut(R) -> (String, T),
) -> Result<HashMap<String, Vec<T>>, Problem>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut grouped: HashMap<String, Vec<T>> = HashMap::new();
    for cond in Condition::in_chunks(column, ids.to_vec()) {
        let sql = select.replace("{in}", &cond.sql());
        let rows: Vec<R> = cond.bind(sqlx::query(&sql)).try_map(|r| R::from_row(&r)).fetch_all(&mut *conn).await?;
        for row in rows {
            let (id, item) = split(row);
            grouped.entry(id).or_default().push(item);
        }
    }
    Ok(grouped)
}

/// What the conventions of `rows` hold, read together, and the conventions built from it.
///
/// Each statement is a round trip that, on a loaded machine, waits for both processes to be
/// scheduled again: what belongs together is joined into one (a school and the DSDEN that may
/// take the académie's place, a tenant and its vendor and host).
/// The names of the communes the établissements among `orgs` stand in, by INSEE code.
async fn commune_names(
    conn: &mut sqlx::AnyConnection,
    orgs: &HashMap<String, Org>,
) -> Result<HashMap<String, String>, Problem> {
    let codes: std::collections::BTreeSet<String> =
        orgs.values().filter(|o| o.kind == OrgKind::Etablissement).filter_map(|o| o.commune_code.clone()).collect();
    let mut names = HashMap::new();
    for cond in Condition::in_chunks("code", codes.into_iter().collect()) {
        let sql = format!("SELECT code, name FROM orgs WHERE kind = 'commune' AND {}", cond.sql());
        for row in cond.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
            use sqlx::Row;
            names.insert(row.try_get::<String, _>("code")?, row.try_get::<String, _>("name")?);
        }
    }
    Ok(names)
}

/// Gives each établissement among `parties` the name of the commune it stands in
/// ([`Party::commune`], `orgs` the organisations the parties are), as a convention read from the
/// store has it: a text rendered from an edit places a school as the one first rendered did.
pub(crate) async fn with_communes(
    conn: &mut sqlx::AnyConnection,
    parties: &mut [Party],
    orgs: &[(String, Org)],
) -> Result<(), Problem> {
    let orgs: HashMap<String, Org> = orgs.iter().map(|(_, o)| (o.id.clone(), o.clone())).collect();
    let communes = commune_names(conn, &orgs).await?;
    for party in parties {
        let code = orgs.get(&party.org.id).and_then(|o| o.commune_code.as_ref());
        party.commune = code.and_then(|code| communes.get(code)).cloned();
    }
    Ok(())
}

async fn assemble(
    conn: &mut sqlx::AnyConnection,
    models: &[ConventionModel],
    rows: Vec<ConventionRow>,
) -> Result<Vec<Convention>, Problem> {
    #[derive(sqlx::FromRow)]
    struct PartyRow {
        convention_id: String,
        party_key: String,
        org_id: String,
        signatory: Option<String>,
        share_bp: Option<i64>,
    }
    /// A covered school, and the DSDEN of its département when it is an école.
    #[derive(sqlx::FromRow)]
    struct SchoolRow {
        convention_id: String,
        id: String,
        code: String,
        name: String,
        dsden_id: Option<String>,
        dsden_code: Option<String>,
        dsden_name: Option<String>,
        degree: Option<String>,
    }
    #[derive(sqlx::FromRow)]
    struct StepRow {
        convention_id: String,
        #[sqlx(flatten)]
        step: Step,
    }
    #[derive(sqlx::FromRow)]
    struct FileRow {
        convention_id: String,
        #[sqlx(flatten)]
        file: SignedFile,
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    // The parties' organisations apart, by primary key: joined, PostgreSQL hashes the whole
    // `orgs` table under a few tens of thousands of rows (3.9 ms a page at bench scale 0.3).
    let mut party_rows = grouped(
        conn,
        "SELECT convention_id, party_key, org_id, signatory, share_bp FROM convention_parties WHERE {in} \
         ORDER BY convention_id, position",
        "convention_id",
        &ids,
        |r: PartyRow| (r.convention_id.clone(), r),
    )
    .await?;
    let party_org_ids = party_rows.values().flatten().map(|p| p.org_id.clone()).collect();
    let orgs = orgs_by_id_in(conn, party_org_ids).await?;
    let communes = commune_names(conn, &orgs).await?;
    let mut dsdens: HashMap<String, OrgRef> = HashMap::new();
    let mut degrees: HashMap<String, Option<Degree>> = HashMap::new();
    let mut schools = grouped(
        conn,
        "SELECT s.convention_id, o.id, o.code, o.name, d.id AS dsden_id, d.code AS dsden_code, d.name AS dsden_name, \
         o.degree FROM convention_schools s JOIN orgs o ON o.id = s.org_id \
         LEFT JOIN orgs d ON d.kind = 'dsden' AND d.code = o.departement_code \
         AND o.etab_type IN ('ecole_maternelle', 'ecole_elementaire', 'ecole_primaire') \
         AND COALESCE(o.sector, 'public') <> 'prive' \
         WHERE {in} ORDER BY o.sort_name, o.id",
        "s.convention_id",
        &ids,
        |r: SchoolRow| {
            let degree = match r.degree.as_deref() {
                Some("1D") => Some(Degree::D1),
                Some("2D") => Some(Degree::D2),
                _ => None,
            };
            degrees.insert(r.id.clone(), degree);
            if let (Some(id), Some(code), Some(name)) = (r.dsden_id, r.dsden_code, r.dsden_name) {
                dsdens.insert(r.id.clone(), OrgRef { id, kind: OrgKind::Dsden, code, name });
            }
            let school = OrgRef { id: r.id, kind: OrgKind::Etablissement, code: r.code, name: r.name };
            (r.convention_id, school)
        },
    )
    .await?;
    let mut steps = grouped(
        conn,
        "SELECT s.convention_id, s.id, s.kind, s.step_key, s.org_id, s.user_id, \
         COALESCE(u.display_name, s.user_email) AS user_name, s.user_email, s.role, s.document_hash, s.at, \
         s.voided_at, s.void_reason, s.recorded_by, s.delegation \
         FROM convention_steps s LEFT JOIN users u ON u.id = s.user_id \
         WHERE {in} ORDER BY s.at, s.id",
        "s.convention_id",
        &ids,
        |r: StepRow| {
            let mut step = r.step;
            step.delegation = delegation::Delegation::from_column(step.delegation_column.as_deref());
            (r.convention_id, step)
        },
    )
    .await?;
    let mut signed_files = grouped(
        conn,
        "SELECT convention_id, id, file_name, content_type, sha256, size, uploaded_by, uploaded_at \
         FROM convention_files WHERE {in} ORDER BY uploaded_at, id",
        "convention_id",
        &ids,
        |r: FileRow| (r.convention_id, r.file),
    )
    .await?;
    let mut documents = frozen::list_of(conn, &ids).await?;
    let mut covered: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
    for (id, parties) in &party_rows {
        covered.entry(id.clone()).or_default().extend(parties.iter().map(|p| p.org_id.clone()));
    }
    for (id, orgs) in &schools {
        covered.entry(id.clone()).or_default().extend(orgs.iter().map(|o| o.id.clone()));
    }
    let tenants = tenants_of(conn, covered.values().flatten().cloned().collect()).await?;
    let mut subprocessors = Subprocessors::load(conn, covered).await?;
    let mut built = Vec::with_capacity(rows.len());
    for row in rows {
        let model_version = row.model_version as u32;
        let model = find_model(models, &row.model_id, Some(model_version)).ok();
        let mut parties = Vec::new();
        for party in party_rows.remove(&row.id).unwrap_or_default() {
            let Some(org) = orgs.get(&party.org_id) else { continue };
            let key = party.party_key;
            let spec = model.and_then(|m| m.parties.iter().find(|s| s.key == key));
            parties.push(Party {
                label: spec.map(|s| s.label.clone()).unwrap_or_else(|| key.clone()),
                signature_required: spec.is_none_or(|s| s.signature_required),
                order: spec.map(|s| s.order).unwrap_or(0),
                key,
                signatory: signatories::from_column(party.signatory.as_deref()),
                share_percent: party.share_bp.map(percent_of_bp),
                etab_type: org.etab_type,
                commune: org.commune_code.as_ref().and_then(|code| communes.get(code)).cloned(),
                org: org.as_ref(),
            });
        }
        let schools = schools.remove(&row.id).unwrap_or_default();
        // For écoles, the DSDEN of their département takes the académie's place (see `effective_controller`).
        let controller =
            model.and_then(|model| controller_party(model, &parties)).map(|controller| {
                match dsden_school(&controller, &schools).and_then(|school| dsdens.get(&school.id)) {
                    Some(dsden) => dsden.clone(),
                    None => controller,
                }
            });
        // The vendors and hosts of its tenants are sub-processors only down an Art. 28 chain a
        // processor party opens: the one source of the API's list and of the document's annexes.
        let processor = model.map(|model| processing::processor_party(model, &parties));
        let (subprocessors, subprocessors_market) = match processor {
            Some(None) => {
                subprocessors.take(&row.id);
                (Vec::new(), None)
            }
            Some(Some(party)) => {
                let found = subprocessors.take(&row.id);
                market_subprocessors(conn, found, orgs.get(&party.org.id), &row).await?
            }
            None => (subprocessors.take(&row.id), None),
        };
        let of_parties: Vec<(String, bool)> =
            parties.iter().map(|p| (p.org.id.clone(), p.org.kind == OrgKind::Etablissement)).collect();
        let of_schools: Vec<(String, Option<Degree>)> =
            schools.iter().map(|s| (s.id.clone(), degrees.get(&s.id).copied().flatten())).collect();
        let processed = Processed::of(&tenants, &of_parties, &of_schools);
        built.push(Convention {
            id: row.id.clone(),
            reference: row.reference,
            model_id: row.model_id,
            model_version,
            title: row.title,
            status: row.status,
            parameters: row.parameters,
            start_date: row.start_date,
            end_date: row.end_date,
            parties,
            schools,
            amends_id: row.amends_id,
            supersedes_id: row.supersedes_id,
            backdate_reason: row.backdate_reason,
            rgpd_controller: controller,
            subprocessors,
            subprocessors_market,
            processed,
            root_id: row.root_id,
            document_hash: row.document_hash,
            steps: steps.remove(&row.id).unwrap_or_default(),
            signed_files: signed_files.remove(&row.id).unwrap_or_default(),
            documents: documents.remove(&row.id).unwrap_or_default(),
            refusal_comment: row.refusal_comment,
            termination_reason: row.termination_reason,
            termination_effective: row.termination_effective,
            termination_notified: row.termination_notified_at.map(|at| TerminationNotified {
                at,
                by: row.termination_notified_by,
                org_id: row.termination_notified_org,
                name: person(row.termination_notified_name.as_deref()),
                role: row.termination_notified_role,
            }),
            non_renewal: row.non_renewal.into_recorded(),
            document_edition: row.document_edition,
            warnings: Vec::new(),
            version: row.version,
            created_by: row.created_by,
            created_by_name: person(row.created_by_name.as_deref()),
            created_at: row.created_at,
            updated_at: row.updated_at,
        });
    }
    Ok(built)
}

/// What a convention's processing covers, as its tenants say: each tenant (requested to
/// suspended) of a party or covered school, and the degree of each covered school that none of
/// them serves (its base bouquet then stands in).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processed {
    pub tenants: Vec<ProcessedTenant>,
    pub unserved_degrees: Vec<Degree>,
}

/// A tenant of a convention's parties or schools, as its Art. 28(3) annex describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedTenant {
    /// The bouquet and options it subscribed to (what the annex names it by).
    pub bouquet: String,
    pub options: Vec<String>,
    /// The catalog codes of what it really processes, once applied: the services it was last
    /// applied with (`tenants.applied_services`, migration 0047), then those whose data it
    /// still holds until its purge (`tenants.retained_services`, migration 0048). `None` for a
    /// tenant not applied yet (requested, or applied before these were recorded): the
    /// catalog's resolution of its bouquet and options then stands.
    pub services: Option<Vec<String>>,
}

/// The tenants that run or are requested, by organisation.
async fn tenants_of(
    conn: &mut sqlx::AnyConnection,
    org_ids: Vec<String>,
) -> Result<HashMap<String, Vec<ProcessedTenant>>, Problem> {
    #[derive(sqlx::FromRow)]
    struct Row {
        org_id: String,
        base_bouquet: String,
        #[sqlx(try_from = "JsonText<Vec<String>>")]
        options: Vec<String>,
        applied_services: Option<String>,
        retained_services: Option<String>,
    }
    /// Service codes stored as a JSON array; none when NULL or unreadable.
    fn codes(stored: Option<&str>) -> Option<Vec<String>> {
        stored.and_then(|codes| serde_json::from_str(codes).ok())
    }
    let mut out: HashMap<String, Vec<ProcessedTenant>> = HashMap::new();
    for cond in Condition::in_chunks("org_id", org_ids) {
        let sql = format!(
            "SELECT org_id, base_bouquet, options, applied_services, retained_services FROM tenants WHERE status IN \
             ('requested', 'provisioning', 'active', 'suspended') AND {} ORDER BY slug",
            cond.sql()
        );
        let rows: Vec<Row> = cond.bind(sqlx::query(&sql)).try_map(|r| Row::from_row(&r)).fetch_all(&mut *conn).await?;
        for r in rows {
            let services = codes(r.applied_services.as_deref()).filter(|applied| !applied.is_empty()).map(|mut all| {
                for code in codes(r.retained_services.as_deref()).unwrap_or_default() {
                    if !all.contains(&code) {
                        all.push(code);
                    }
                }
                all
            });
            let tenant = ProcessedTenant { bouquet: r.base_bouquet, options: r.options, services };
            out.entry(r.org_id).or_default().push(tenant);
        }
    }
    Ok(out)
}

impl Processed {
    /// For a convention of `parties` (organisation, is it an établissement) and `schools`
    /// (id, degree): a party's tenant (a commune's) serves the schools it covers.
    fn of(
        tenants: &HashMap<String, Vec<ProcessedTenant>>,
        parties: &[(String, bool)],
        schools: &[(String, Option<Degree>)],
    ) -> Processed {
        let mut out = Processed::default();
        let orgs = parties.iter().map(|(id, _)| id).chain(schools.iter().map(|(id, _)| id));
        for tenant in orgs.filter_map(|id| tenants.get(id)).flatten() {
            if !out.tenants.contains(tenant) {
                out.tenants.push(tenant.clone());
            }
        }
        let party_serves = parties.iter().any(|(id, etab)| !etab && tenants.contains_key(id));
        for (id, degree) in schools {
            let served = party_serves || tenants.contains_key(id);
            if let (false, Some(d)) = (served, degree) {
                if !out.unserved_degrees.contains(d) {
                    out.unserved_degrees.push(*d);
                }
            }
        }
        out
    }
}

/// The accord-cadre whose titulaire (and hébergeur) a draft names among its sub-processors.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MarketNamed {
    /// The groupement's reference, the accord-cadre's (`GC-2026-000001`).
    pub reference: String,
    /// The organisations (ids) named from it: its titulaire, and its hébergeur when declared.
    pub named: Vec<String>,
}

/// The sub-processors `found` on the tenants of a convention of `row`, completed on a draft
/// of an edition from [`processing::MARKET_SUBPROCESSORS_EDITION`] when no tenant names an
/// éditeur: by the titulaire of the accord-cadre binding its `processor` party (a member of a
/// groupement de commandes, or funded by one) on some day of its term
/// ([`contracts::binding_market`]), and by the hébergeur declared under it when none is named.
/// A text past the draft is frozen: it keeps what it was submitted with.
async fn market_subprocessors(
    conn: &mut sqlx::AnyConnection,
    mut found: Vec<OrgRef>,
    processor: Option<&Org>,
    row: &ConventionRow,
) -> Result<(Vec<OrgRef>, Option<MarketNamed>), Problem> {
    let open = row.status == Status::Draft && row.document_edition >= processing::MARKET_SUBPROCESSORS_EDITION;
    let named = |kind: OrgKind, found: &[OrgRef]| found.iter().any(|o| o.kind == kind);
    let (Some(processor), true, false) = (processor, open, named(OrgKind::Editeur, &found)) else {
        return Ok((found, None));
    };
    let (Ok(from), Ok(to)) = (parse_any_date("start_date", &row.start_date), parse_any_date("end_date", &row.end_date))
    else {
        return Ok((found, None));
    };
    let Some(market) = contracts::binding_market(conn, processor, from, to).await? else {
        return Ok((found, None));
    };
    let mut from_market = vec![market.vendor.as_ref()];
    from_market.extend(market.host.as_ref().filter(|_| !named(OrgKind::Hebergeur, &found)).map(Org::as_ref));
    let named = from_market.iter().map(|o| o.id.clone()).collect();
    found.extend(from_market);
    found.sort_by(|a, b| (a.kind.as_str(), &a.name).cmp(&(b.kind.as_str(), &b.name)));
    Ok((found, Some(MarketNamed { reference: market.reference, named })))
}

/// The vendors and hosts recorded on the tenants of conventions' parties and schools
/// (read through `tenants_by_org`), sorted by kind and name: the sub-processors.
struct Subprocessors {
    /// Per convention, the organisations its parties and schools are.
    covered: HashMap<String, std::collections::BTreeSet<String>>,
    /// Per organisation, the vendors and hosts of its tenants.
    of_org: HashMap<String, std::collections::BTreeSet<String>>,
    /// Every vendor and host found, in the order they are listed.
    sorted: Vec<OrgRef>,
}

impl Subprocessors {
    /// `covered`: per convention, the organisations its parties and schools are; the
    /// tenants of these organisations joined to their vendors and hosts in one query
    /// (per 500 organisations).
    async fn load(
        conn: &mut sqlx::AnyConnection,
        covered: HashMap<String, std::collections::BTreeSet<String>>,
    ) -> Result<Subprocessors, Problem> {
        #[derive(sqlx::FromRow)]
        struct Row {
            org_id: String,
            #[sqlx(flatten)]
            processor: OrgRef,
        }
        let org_ids: Vec<String> = covered.values().flatten().cloned().collect();
        let mut of_org: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        let mut sorted: Vec<OrgRef> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let chunks = Condition::in_chunks("t.org_id", org_ids);
        let several = chunks.len() > 1;
        for cond in chunks {
            let sql = format!(
                "SELECT t.org_id, o.id, o.kind, o.code, o.name FROM tenants t \
                 JOIN orgs o ON o.id IN (t.vendor_org_id, t.host_org_id) WHERE {} ORDER BY o.kind, o.name",
                cond.sql()
            );
            let rows: Vec<Row> =
                cond.bind(sqlx::query(&sql)).try_map(|r| Row::from_row(&r)).fetch_all(&mut *conn).await?;
            for Row { org_id, processor } in rows {
                of_org.entry(org_id).or_default().insert(processor.id.clone());
                if seen.insert(processor.id.clone()) {
                    sorted.push(processor);
                }
            }
        }
        if several {
            // Each query sorted its own; over several, sorted again (byte order).
            sorted.sort_by(|a, b| (a.kind.as_str(), &a.name).cmp(&(b.kind.as_str(), &b.name)));
        }
        Ok(Subprocessors { covered, of_org, sorted })
    }

    /// The sub-processors of one convention.
    fn take(&mut self, convention_id: &str) -> Vec<OrgRef> {
        let Some(covered) = self.covered.remove(convention_id) else { return Vec::new() };
        let named: std::collections::BTreeSet<&String> =
            covered.iter().filter_map(|org| self.of_org.get(org)).flatten().collect();
        self.sorted.iter().filter(|o| named.contains(&o.id)).cloned().collect()
    }
}

/// The conventions one of `orgs` is party to, as a condition on `conventions c`: « chaque
/// partie voit ses conventions » ([`Convention::is_seen_by`]) in SQL; none without `orgs`.
pub fn party_to_any(orgs: &[String]) -> Condition {
    let party = |org: &String| {
        let mut c = Condition::default();
        c.push("c.id IN (SELECT convention_id FROM convention_parties WHERE org_id = ?)", &[org]);
        c
    };
    Condition::any(orgs.iter().map(party).collect())
}

/// Whether the organisation `org_id` is a party to (`school`: a school covered by) a convention
/// one of `visible_orgs` is party to: a caller that sees that convention knows the
/// organisation, though it may not read it in the registry.
pub async fn named_in_seen(
    store: &Store,
    org_id: &str,
    school: bool,
    visible_orgs: &[String],
) -> Result<bool, Problem> {
    let table = if school { "convention_schools" } else { "convention_parties" };
    let mut cond = Condition::default();
    cond.push(&format!("c.id IN (SELECT convention_id FROM {table} WHERE org_id = ?)"), &[org_id]);
    cond.and(party_to_any(visible_orgs));
    let sql = format!("SELECT c.id FROM conventions c WHERE {} LIMIT 1", cond.sql());
    Ok(cond.bind(sqlx::query(&sql)).fetch_optional(store.pool()).await?.is_some())
}

/// The organisations whose conventions `actor` sees under `action` (those where it holds one
/// of the action's roles); `None` for an admin, who sees them all.
pub fn visible_orgs_of(actor: &Actor, action: &Action) -> Option<Vec<String>> {
    if actor.is_admin() {
        return None;
    }
    let orgs = actor.bindings.iter().filter(|b| action.roles.contains(&b.role)).filter_map(|b| b.org.as_ref());
    Some(orgs.map(|o| o.id.clone()).collect())
}

/// The conventions `actor` sees under `action`, as a condition on `conventions c`
/// ([`party_to_any`] of [`visible_orgs_of`]); `None` for an admin.
pub fn seen_condition(actor: &Actor, action: &Action) -> Option<Condition> {
    visible_orgs_of(actor, action).map(|orgs| party_to_any(&orgs))
}

/// The audit target kind of a convention (its records, one per party, `workflow::audit_to_parties`).
pub const AUDIT_KIND: &str = "convention";

/// Who reads a convention's audit records: who sees the convention ([`Convention::is_seen_by`]
/// under [`CONVENTIONS_READ`]: a binding of one of its roles at a party), not every reader whose
/// scope holds a party (an EPCI's auditeur does not read its member commune's tripartite).
pub struct AuditReaders;

impl AuditReaders {
    /// The rule, as the audit capability takes it ([`audit::KindRules`]).
    pub fn all() -> Vec<Arc<dyn audit::KindReaders>> {
        vec![Arc::new(AuditReaders)]
    }
}

impl audit::KindReaders for AuditReaders {
    fn kinds(&self) -> &'static [&'static str] {
        &[AUDIT_KIND]
    }

    fn readable(&self, actor: &Actor) -> Option<Condition> {
        let orgs = visible_orgs_of(actor, &CONVENTIONS_READ)?;
        let parties = Condition::any(Condition::in_chunks("p.org_id", orgs));
        // Correlated on the convention's parties by their key: found by index, never a scan.
        let mut cond = Condition::default();
        cond.and_wrapped(
            "EXISTS (SELECT 1 FROM convention_parties p WHERE p.convention_id = audit_log.target_id AND ",
            parties,
            ")",
        );
        Some(cond)
    }
}

/// Filters of `GET /conventions`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct ConventionFilter {
    #[schemars(extend("enum" = ["draft", "in_signature", "signed", "active", "expired", "terminated", "amended"]))]
    pub status: Option<String>,
    /// A party organisation (id, code or kind:code). One the caller neither reads nor finds in
    /// a convention it sees answers as a key naming nothing (422).
    pub party: Option<String>,
    /// A covered établissement (id or UAI), read as `party` is.
    pub school: Option<String>,
    /// Ends on or before this date (`YYYY-MM-DD`).
    #[schemars(extend("format" = "date"))]
    pub expiring_before: Option<String>,
    pub model: Option<String>,
    pub cursor: Option<String>,
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

/// Ids of conventions matching the filter, newest first; `visible_orgs` limits
/// to conventions one of these organisations is party to (`None`: all).
pub async fn list_ids(
    store: &Store,
    filter: &ConventionFilter,
    visible_orgs: Option<&[String]>,
) -> Result<(Vec<String>, Option<String>), Problem> {
    let (cond, size) = list_condition(store, filter, visible_orgs).await?;
    let sql = format!("SELECT c.id FROM conventions c WHERE {} ORDER BY c.id DESC LIMIT {}", cond.sql(), size + 1);
    let ids: Vec<String> = first_column(&cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?)?;
    let page = Page::from_overfetch(ids, size, Clone::clone);
    Ok((page.items, page.next_cursor))
}

/// The page of conventions matching the filter (as [`list_ids`] selects them), each as
/// [`read_convention`] reads it: the page's rows are read by the query that selects them,
/// then what they hold as [`read_conventions`] does, on one connection.
pub async fn list_page(
    store: &Store,
    models: &[ConventionModel],
    filter: &ConventionFilter,
    visible_orgs: Option<&[String]>,
) -> Result<Page<Convention>, Problem> {
    let (cond, size) = list_condition(store, filter, visible_orgs).await?;
    let sql =
        format!("SELECT {} FROM conventions c WHERE {} ORDER BY c.id DESC LIMIT {}", *COLUMNS, cond.sql(), size + 1);
    let mut conn = store.conn().await?;
    let rows: Vec<ConventionRow> =
        cond.bind(sqlx::query(&sql)).try_map(|r| ConventionRow::from_row(&r)).fetch_all(&mut *conn).await?;
    let Page { items, next_cursor } = Page::from_overfetch(rows, size, |row| row.id.clone());
    Ok(Page { items: assemble(&mut conn, models, items).await?, next_cursor })
}

/// The condition of [`list_ids`] on `conventions c`, and the page size.
async fn list_condition(
    store: &Store,
    filter: &ConventionFilter,
    visible_orgs: Option<&[String]>,
) -> Result<(Condition, u32), Problem> {
    let mut cond = Condition::default();
    if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
        let status = Status::parse(status)
            .ok_or_else(|| Problem::invalid_field("status", format!("statut inconnu : {status}")))?;
        cond.push("c.status = ?", &[status.as_str()]);
    }
    // The API sends ids it narrowed to the caller (`routes::readable_filter`); else the operator's keys.
    if let Some(key) = filter.party.as_deref().filter(|s| !s.is_empty()) {
        let org = resolve_org(store, key).await.map_err(|e| Problem::invalid_field("party", e.detail))?;
        cond.push("c.id IN (SELECT convention_id FROM convention_parties WHERE org_id = ?)", &[&org.id]);
    }
    if let Some(key) = filter.school.as_deref().filter(|s| !s.is_empty()) {
        let org = resolve_org(store, key).await.map_err(|e| Problem::invalid_field("school", e.detail))?;
        cond.push("c.id IN (SELECT convention_id FROM convention_schools WHERE org_id = ?)", &[&org.id]);
    }
    if let Some(date) = filter.expiring_before.as_deref().filter(|s| !s.is_empty()) {
        // Stored ends lie within the convention days: a later day selects them all, as their last does.
        let day = parse_any_date("expiring_before", date)?.min(workflow::CONVENTION_DAYS.1).to_string();
        cond.push("c.end_date <= ?", &[&day]);
    }
    if let Some(model) = filter.model.as_deref().filter(|s| !s.is_empty()) {
        cond.push("c.model_id = ?", &[model]);
    }
    if let Some(orgs) = visible_orgs {
        cond.and(party_to_any(orgs));
    }
    if let Some(cursor) = filter.cursor.as_deref().filter(|s| !s.is_empty()) {
        cond.push("c.id < ?", &[cursor]);
    }
    let size = page_size(filter.limit)?;
    Ok((cond, size))
}

/// Ids of the conventions in signature where one of `orgs` is a party that has not signed
/// yet (its visas come before any signature), newest first, `limit` at most: those where a
/// visa or a signature of someone acting for these organisations may be awaited
/// ([`workflow::awaited_actors`] says whose it is).
pub async fn unsigned_by(store: &Store, orgs: &[String], limit: u32) -> Result<Vec<String>, Problem> {
    use ent_kernel::store::Condition;
    let mut cond = Condition::default();
    cond.push("c.status = ?", &[Status::InSignature.as_str()]);
    let mut any = Vec::new();
    for org in orgs {
        let mut c = Condition::default();
        c.push(
            "EXISTS (SELECT 1 FROM convention_parties p WHERE p.convention_id = c.id AND p.org_id = ? \
             AND NOT EXISTS (SELECT 1 FROM convention_steps s WHERE s.convention_id = c.id \
             AND s.kind = 'signature' AND s.voided_at IS NULL AND s.step_key = p.party_key AND s.org_id = p.org_id))",
            &[org],
        );
        any.push(c);
    }
    cond.and(Condition::any(any));
    let sql = format!("SELECT c.id FROM conventions c WHERE {} ORDER BY c.id DESC LIMIT {limit}", cond.sql());
    Ok(first_column(&cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?)?)
}

/// Every établissement a convention naming `org` as its collectivité party covers: those it
/// funds (`queries::funds_condition`: the écoles of a commune, of an EPCI's delegating communes).
pub async fn covered_etablissements(store: &Store, org: &Org) -> Result<Vec<Org>, Problem> {
    funded_etablissements(store, org).await
}

/// The département a convention's DSDEN party confines it to (a DSDEN's code is its
/// département's): a collectivité spanning two départements (an EPCI, a syndicat) signs one
/// convention per département, each with that département's DSDEN, which covers only its
/// écoles (an école's controller is the IA-DASEN of its own département).
pub fn dsden_departement<'a>(parties: impl IntoIterator<Item = (OrgKind, &'a str)>) -> Option<&'a str> {
    parties.into_iter().find(|(kind, _)| *kind == OrgKind::Dsden).map(|(_, code)| code)
}

/// The département an académie's convention is confined to: its DSDEN party's
/// ([`dsden_departement`]) or, when the académie is its controller party, that of the IA-DASEN
/// who takes its place for the écoles it was drafted for (one département, [`require_one_dsden`]).
/// An école of another département its collectivité party covers later (a commune delegating
/// its ENT to an EPCI) is not covered by it ([`schools_outside_departement`]). None for another
/// convention.
pub fn convention_departement(conv: &Convention) -> Option<&str> {
    dsden_departement(conv.parties.iter().map(|p| (p.org.kind, p.org.code.as_str()))).or_else(|| {
        let controller = conv.rgpd_controller.as_ref().filter(|c| c.kind == OrgKind::Dsden);
        controller.map(|c| c.code.as_str())
    })
}

/// The open schools of the model's types the collectivité party of `conv` covers today that
/// lie outside its [`convention_departement`]: left out of its schools, listed on its page.
/// Empty unless its schools follow the annuaire ([`ConventionModel::follows_registry`]).
pub async fn schools_outside_departement(
    store: &Store,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Vec<Org>, Problem> {
    let Some(departement) = convention_departement(conv) else { return Ok(vec![]) };
    if !model.governs_ent() || !model.follows_registry() {
        return Ok(vec![]);
    }
    let parties: Vec<(String, String)> = conv.parties.iter().map(|p| (p.key.clone(), p.org.id.clone())).collect();
    let schools = registry_schools(store, model, &parties).await?;
    Ok(schools.into_iter().filter(|s| !within_departement(Some(departement), s)).collect())
}

/// Whether `school` lies in the département a DSDEN party confines its convention to (any
/// school when there is none).
pub fn within_departement(departement: Option<&str>, school: &Org) -> bool {
    departement.is_none_or(|d| school.departement_code.as_deref() == Some(d))
}

/// The active convention covering an établissement (or naming a commune/EPCI as
/// party) on `date`, if any: the governance gate of provisioning. One whose notified
/// résiliation takes effect by `date` no longer covers, even before the daily job ends it.
/// Only a model that governs the ENT processing counts ([`ConventionModel::governs_ent`]: not
/// a groupement de commandes a commune is a member of); under a model whose schools follow the
/// annuaire ([`ConventionModel::follows_registry`]), an open school its collectivité party
/// covers today is covered, whether or not it was listed when the convention was drafted.
pub async fn active_covering(
    store: &Store,
    models: &[ConventionModel],
    org_id: &str,
    date: &str,
) -> Result<Option<Convention>, Problem> {
    first_covering(store, models, org_id, in_force_on(date), NEWEST_FIRST).await
}

/// The convention signed to cover `org_id` that comes into force after `date`, the first to
/// come: what a refused gate names (« signée, en vigueur le … »). A signature does not open
/// the gate; the convention's first day does.
pub async fn covering_later(
    store: &Store,
    models: &[ConventionModel],
    org_id: &str,
    date: &str,
) -> Result<Option<Convention>, Problem> {
    let mut later = Condition::default();
    later.push(
        "c.status IN ('signed', 'active') AND c.start_date > ? \
         AND (c.termination_effective IS NULL OR c.termination_effective > c.start_date)",
        &[date],
    );
    first_covering(store, models, org_id, later, "c.start_date, c.id").await
}

/// What `school`, which no convention in force covers, needs before its ENT is provisioned, as the
/// gate's refusal says it after « : »: the convention under way for it (in preparation or in
/// signature, naming what it awaits: `workflow::awaited_text`), else the models under which one
/// may cover it ([`ConventionModel::may_cover`], their latest versions: a tripartite for an EPLE).
pub async fn convention_needed(store: &Store, models: &[ConventionModel], school: &Org) -> Result<String, Problem> {
    let mut under_way = Condition::default();
    under_way.push("c.status IN ('draft', 'in_signature')", &[]);
    let found = first_covering(store, models, &school.id, under_way, "c.status DESC, c.id").await?;
    if let Some(conv) = found {
        let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
        let state = if conv.status == Status::Draft { "en préparation" } else { "en signature" };
        let this = if school.etab_type.is_some_and(EtabType::is_ecole) { "cette école" } else { "cet établissement" };
        return Ok(format!(
            "la convention {}, {state} pour {this}, {} ; le déploiement sera possible une fois qu'elle sera signée et \
             en vigueur",
            conv.reference,
            workflow::awaited_text(model, &conv)
        ));
    }
    let mut ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let fitting: Vec<String> = ids
        .into_iter()
        .filter_map(|id| find_model(models, id, None).ok())
        .filter(|m| m.governs_ent() && m.may_cover(school))
        .map(|m| format!("une {}", naming::in_sentence(&m.title)))
        .collect();
    let which = if fitting.is_empty() { "une convention".to_string() } else { fitting.join(" ou ") };
    Ok(format!("signez {which} avant de provisionner"))
}

/// The first convention (`c`) meeting `cond`, in `order`, that covers `org_id` under its model:
/// tried among those naming it (as party or school) or one of its covering parents as party.
async fn first_covering(
    store: &Store,
    models: &[ConventionModel],
    org_id: &str,
    mut cond: Condition,
    order: &str,
) -> Result<Option<Convention>, Problem> {
    let Some(org) = get_org(store, org_id).await? else { return Ok(None) };
    let parents: Vec<String> = if has_covering_parents(&org) {
        covering_parents(store, &org).await?.into_iter().map(|p| p.id).collect()
    } else {
        vec![]
    };
    let mut any = Vec::new();
    let mut listed = Condition::default();
    listed.push("c.id IN (SELECT convention_id FROM convention_schools WHERE org_id = ?)", &[org_id]);
    any.push(listed);
    for party in std::iter::once(org_id.to_string()).chain(parents.iter().cloned()) {
        let mut c = Condition::default();
        c.push("c.id IN (SELECT convention_id FROM convention_parties WHERE org_id = ?)", &[&party]);
        any.push(c);
    }
    cond.and(Condition::any(any));
    let sql = format!("SELECT c.id FROM conventions c WHERE {} ORDER BY {order}", cond.sql());
    let ids: Vec<String> = first_column(&cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?)?;
    for id in ids {
        let Some(convention) = get_convention(store, models, &id).await? else { continue };
        if covers_under_its_model(models, &convention, &org, &parents) {
            return Ok(Some(convention));
        }
    }
    Ok(None)
}

/// The conventions (`c`) in force on `date`: active, within their dates, no résiliation
/// taking effect by then. Sorted for [`active_covering`] by `ORDER BY` [`NEWEST_FIRST`].
fn in_force_on(date: &str) -> Condition {
    let mut cond = Condition::default();
    cond.push(
        "c.status = 'active' AND c.start_date <= ? AND c.end_date >= ? \
         AND (c.termination_effective IS NULL OR c.termination_effective > ?)",
        &[date, date, date],
    );
    cond
}

/// The order in which [`active_covering`] tries the conventions in force: the first that
/// covers is the answer.
const NEWEST_FIRST: &str = "c.start_date DESC, c.id DESC";

/// Whether the organisations covering `org` in the annuaire may bring it under a convention:
/// an open établissement's.
fn has_covering_parents(org: &Org) -> bool {
    org.kind == OrgKind::Etablissement && org.open
}

/// The organisations (ids) covering `school` in the annuaire today through which a convention
/// may cover it ([`has_covering_parents`]; none for another): what [`covers_school_now`] is
/// given, by `workflow::draft::others_on` and [`schools_covered_now`]. Read through `conn`.
pub(crate) async fn covering_parents_in(conn: &mut sqlx::AnyConnection, school: &Org) -> Result<Vec<String>, Problem> {
    if !has_covering_parents(school) {
        return Ok(vec![]);
    }
    let relatives = ent_platform::registry::queries::Relatives::of_in(&mut *conn, school).await?;
    Ok(relatives.covering_parents(school).into_iter().map(|p| p.id).collect())
}

/// The schools (ids) `conv` covers as things stand, by the rule the overlap checks read
/// ([`covers_school_now`], `workflow::draft::others_on`): those it lists, and under a model
/// following the annuaire the établissements its covering party funds today (an école opened
/// in the commune after it was drafted counts). Read through `conn`.
pub(crate) async fn schools_covered_now(
    conn: &mut sqlx::AnyConnection,
    models: &[ConventionModel],
    conv: &Convention,
) -> Result<Vec<String>, Problem> {
    let mut candidates: Vec<String> = conv.schools.iter().map(|s| s.id.clone()).collect();
    if let Ok(model) = find_model(models, &conv.model_id, Some(conv.model_version)) {
        let key = model.covers.party.as_deref().unwrap_or_default();
        for party in conv.parties.iter().filter(|p| model.follows_registry() && p.key == key) {
            let Some(org) = ent_platform::registry::queries::get_org_in(&mut *conn, &party.org.id).await? else {
                continue;
            };
            let funded = ent_platform::registry::queries::funded_etablissements_in(&mut *conn, &org).await?;
            candidates.extend(funded.into_iter().map(|o| o.id));
        }
    }
    candidates.sort();
    candidates.dedup();
    let mut covered = Vec::new();
    for id in candidates {
        let Some(school) = ent_platform::registry::queries::get_org_in(&mut *conn, &id).await? else { continue };
        let parents = covering_parents_in(&mut *conn, &school).await?;
        if covers_school_now(models, conv, &school, &parents) {
            covered.push(id);
        }
    }
    Ok(covered)
}

/// Whether `convention` covers the school `org` as things stand ([`covers_now`] under its own
/// model), `parents` being its covering parents: the rule of the gate, for the overlap checks.
pub(crate) fn covers_school_now(
    models: &[ConventionModel],
    convention: &Convention,
    org: &Org,
    parents: &[String],
) -> bool {
    covers_under_its_model(models, convention, org, parents)
}

/// [`covers_now`] under the convention's own model (none known: it covers nothing).
fn covers_under_its_model(models: &[ConventionModel], convention: &Convention, org: &Org, parents: &[String]) -> bool {
    find_model(models, &convention.model_id, Some(convention.model_version))
        .is_ok_and(|model| covers_now(model, convention, org, parents))
}

/// The conventions in force on a day, read at once with what [`active_covering`] reads about
/// the organisations above a school: its answer for any organisation without a further query
/// (the memo of a `tenants-coverage` pass). A convention can only cover an organisation it
/// names, as party or school, or whose covering parent it names as party: those are the only
/// ones tried, in [`active_covering`]'s order, so that the first found is the same.
pub struct InForce {
    /// In [`NEWEST_FIRST`] order.
    conventions: Vec<Convention>,
    /// The positions in `conventions` of those naming an organisation (by id), ascending.
    naming: HashMap<String, Vec<usize>>,
    relatives: RelativesIndex,
}

impl InForce {
    /// The conventions in force on `date` (AAAA-MM-JJ), read in a number of queries that grows
    /// with them by the 500 ([`read_conventions`]), not with the organisations asked about.
    pub async fn load(store: &Store, models: &[ConventionModel], date: &str) -> Result<InForce, Problem> {
        let cond = in_force_on(date);
        let sql = format!("SELECT c.id FROM conventions c WHERE {} ORDER BY {NEWEST_FIRST}", cond.sql());
        let ids: Vec<String> = first_column(&cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?)?;
        let conventions = read_conventions(&mut *store.conn().await?, models, &ids).await?;
        let mut naming: HashMap<String, Vec<usize>> = HashMap::new();
        for (at, convention) in conventions.iter().enumerate() {
            let parties = convention.parties.iter().map(|p| &p.org.id);
            for org_id in parties.chain(convention.schools.iter().map(|s| &s.id)) {
                let positions = naming.entry(org_id.clone()).or_default();
                if positions.last() != Some(&at) {
                    positions.push(at);
                }
            }
        }
        Ok(InForce { conventions, naming, relatives: RelativesIndex::load(store).await? })
    }

    /// [`active_covering`] `org` on the day loaded.
    pub fn covering(&self, models: &[ConventionModel], org: &Org) -> Option<&Convention> {
        let parents: Vec<String> = if has_covering_parents(org) {
            self.relatives.relatives(org).covering_parents(org).into_iter().map(|p| p.id).collect()
        } else {
            vec![]
        };
        let named = std::iter::once(&org.id).chain(&parents).filter_map(|id| self.naming.get(id));
        let mut positions: Vec<usize> = named.flatten().copied().collect();
        positions.sort_unstable();
        positions.dedup();
        let mut tried = positions.into_iter().map(|at| &self.conventions[at]);
        tried.find(|c| covers_under_its_model(models, c, org, &parents))
    }
}

/// Whether `convention` (of `model`) covers `org` today; `parents` are the organisations that
/// cover it in the annuaire (empty unless it is an open établissement).
fn covers_now(model: &ConventionModel, convention: &Convention, org: &Org, parents: &[String]) -> bool {
    if !model.governs_ent() {
        return false;
    }
    if convention.parties.iter().any(|p| p.org.id == org.id) {
        return true;
    }
    if !model.follows_registry() {
        return convention.schools.iter().any(|s| s.id == org.id);
    }
    let key = model.covers.party.as_deref().unwrap_or_default();
    let departement = convention_departement(convention);
    model.covers_type(org.etab_type)
        && within_departement(departement, org)
        && !parents.is_empty()
        && convention.parties.iter().any(|p| p.key == key && parents.contains(&p.org.id))
}

/// The open schools `convention` (of `model`) covers on the day read: its collectivité party's
/// current écoles when the model follows the annuaire (within its département, as
/// [`convention_departement`] reads it), else the schools listed when drafted.
pub async fn schools_now(
    store: &Store,
    model: &ConventionModel,
    parties: &[(String, String)],
    listed: &[String],
) -> Result<Vec<String>, Problem> {
    if !model.governs_ent() {
        return Ok(vec![]);
    }
    if !model.follows_registry() {
        return Ok(listed.to_vec());
    }
    let departement = listed_departement(store, model, parties, listed).await?;
    let schools = registry_schools(store, model, parties).await?;
    Ok(schools.into_iter().filter(|s| within_departement(departement.as_deref(), s)).map(|s| s.id).collect())
}

/// The open schools of the model's types its covering (collectivité) party among `parties`
/// (party key, organisation id) covers in the annuaire today.
async fn registry_schools(
    store: &Store,
    model: &ConventionModel,
    parties: &[(String, String)],
) -> Result<Vec<Org>, Problem> {
    let key = model.covers.party.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for (_, org_id) in parties.iter().filter(|(k, _)| k == key) {
        let Some(org) = get_org(store, org_id).await? else { continue };
        let covered = covered_etablissements(store, &org).await?;
        out.extend(covered.into_iter().filter(|s| s.open && model.covers_type(s.etab_type)));
    }
    Ok(out)
}

/// [`convention_departement`] from a convention's party organisations and listed schools (the
/// IA-DASEN of an académie controller is the DSDEN of its listed public écoles' département).
async fn listed_departement(
    store: &Store,
    model: &ConventionModel,
    parties: &[(String, String)],
    listed: &[String],
) -> Result<Option<String>, Problem> {
    let mut orgs = Vec::new();
    for (key, org_id) in parties {
        if let Some(org) = get_org(store, org_id).await? {
            orgs.push((key, org));
        }
    }
    if let Some(code) = dsden_departement(orgs.iter().map(|(_, o)| (o.kind, o.code.as_str()))) {
        return Ok(Some(code.to_string()));
    }
    if !orgs.iter().any(|(key, o)| **key == model.rgpd.controller && o.kind == OrgKind::Academie) {
        return Ok(None);
    }
    let dsdens = dsdens_of_ecoles(&mut *store.conn().await?, listed.to_vec()).await?;
    Ok(dsdens.into_values().map(|d| d.code).min())
}

/// RGPD roles of an établissement's ENT under its active convention.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RgpdAssignment {
    pub convention_id: String,
    pub controller: OrgRef,
    pub joint_controllers: Vec<OrgRef>,
    pub processors: Vec<OrgRef>,
    pub notes: String,
}

/// RGPD roles under a model: (controller, joint controllers, processors), each the
/// organisations of the party the model names; `None` without a controller party.
/// `party_orgs` gives the organisations of a party key in the convention.
pub fn rgpd_roles<T>(model: &ConventionModel, party_orgs: impl Fn(&str) -> Vec<T>) -> Option<(T, Vec<T>, Vec<T>)> {
    let controller = party_orgs(&model.rgpd.controller).into_iter().next()?;
    let joint = model.rgpd.joint_controllers.iter().flat_map(|k| party_orgs(k)).collect();
    let processors = model.rgpd.processors.iter().flat_map(|k| party_orgs(k)).collect();
    Some((controller, joint, processors))
}

/// The DSDEN of each public école's département among `school_ids`, whose director (the
/// IA-DASEN) is the controller of the ENT of public écoles; other schools (a private école is
/// its own controller), or without that DSDEN in the registry, are left out. One query (per 500 schools).
async fn dsdens_of_ecoles(
    conn: &mut sqlx::AnyConnection,
    school_ids: Vec<String>,
) -> Result<HashMap<String, OrgRef>, Problem> {
    #[derive(sqlx::FromRow)]
    struct Row {
        school_id: String,
        #[sqlx(flatten)]
        dsden: OrgRef,
    }
    let mut found = HashMap::new();
    for cond in Condition::in_chunks("s.id", school_ids) {
        let sql = format!(
            "SELECT s.id AS school_id, d.id, d.kind, d.code, d.name FROM orgs s \
             JOIN orgs d ON d.kind = 'dsden' AND d.code = s.departement_code \
             WHERE {} AND s.etab_type IN ('ecole_maternelle', 'ecole_elementaire', 'ecole_primaire') \
             AND COALESCE(s.sector, 'public') <> 'prive'",
            cond.sql()
        );
        let rows: Vec<Row> = cond.bind(sqlx::query(&sql)).try_map(|r| Row::from_row(&r)).fetch_all(&mut *conn).await?;
        found.extend(rows.into_iter().map(|r| (r.school_id, r.dsden)));
    }
    Ok(found)
}

/// 422 on `parties` when the controller party is an académie and the public écoles covered are
/// in several départements: the controller of an école is the IA-DASEN of its own département
/// (the register derives it so), and a convention names one controller, so one convention per
/// département.
pub async fn require_one_dsden(
    conn: &mut sqlx::AnyConnection,
    controller: &OrgRef,
    schools: &[OrgRef],
) -> Result<(), Problem> {
    if controller.kind != OrgKind::Academie {
        return Ok(());
    }
    let found = dsdens_of_ecoles(conn, schools.iter().map(|s| s.id.clone()).collect()).await?;
    let mut dsdens: Vec<&OrgRef> = found.values().collect();
    dsdens.sort_by(|a, b| a.code.cmp(&b.code));
    dsdens.dedup_by(|a, b| a.id == b.id);
    if dsdens.len() < 2 {
        return Ok(());
    }
    let names: Vec<String> = dsdens.iter().map(|d| format!("{} ({})", d.name, d.code)).collect();
    Err(Problem::invalid_field(
        "parties",
        format!(
            "les écoles couvertes relèvent de {} départements ({}) : le responsable de traitement d'une école est \
             l'IA-DASEN de son département, et une convention n'en désigne qu'un ; concluez une convention par \
             département, avec la DSDEN de ce département pour partie académique (elle ne couvre que ses écoles)",
            dsdens.len(),
            names.join(", ")
        ),
    ))
}

/// The organisation of the model's controller party.
fn controller_party(model: &ConventionModel, parties: &[Party]) -> Option<OrgRef> {
    parties.iter().find(|p| p.key == model.rgpd.controller).map(|p| p.org.clone())
}

/// The school whose DSDEN takes the controller's place: the first school, when the controller
/// party is an académie.
fn dsden_school<'a>(controller: &OrgRef, schools: &'a [OrgRef]) -> Option<&'a OrgRef> {
    if controller.kind == OrgKind::Academie {
        schools.first()
    } else {
        None
    }
}

/// The controller a convention designates: the organisation of the model's controller party,
/// except that an académie's place is taken, for écoles, by the DSDEN of their département.
pub async fn effective_controller(
    conn: &mut sqlx::AnyConnection,
    model: &ConventionModel,
    parties: &[Party],
    schools: &[OrgRef],
) -> Result<Option<OrgRef>, Problem> {
    let Some(party) = controller_party(model, parties) else { return Ok(None) };
    if let Some(school) = dsden_school(&party, schools) {
        if let Some(dsden) = dsdens_of_ecoles(conn, vec![school.id.clone()]).await?.remove(&school.id) {
            return Ok(Some(dsden));
        }
    }
    Ok(Some(party))
}

/// The RGPD roles a convention designates, as compared between conventions on one school:
/// (controller, joint controllers, processors), organisation ids, lists sorted.
pub type RolesKey = (Option<String>, Vec<String>, Vec<String>);

pub fn roles_key(model: &ConventionModel, parties: &[Party], controller: Option<&OrgRef>) -> RolesKey {
    let ids = |keys: &[String]| -> Vec<String> {
        let mut ids: Vec<String> = parties.iter().filter(|p| keys.contains(&p.key)).map(|p| p.org.id.clone()).collect();
        ids.sort();
        ids
    };
    (controller.map(|c| c.id.clone()), ids(&model.rgpd.joint_controllers), ids(&model.rgpd.processors))
}

pub async fn rgpd_roles_for(
    store: &Store,
    models: &[ConventionModel],
    etab_id: &str,
    date: &str,
) -> Result<Option<RgpdAssignment>, Problem> {
    let Some(convention) = active_covering(store, models, etab_id, date).await? else { return Ok(None) };
    let model = find_model(models, &convention.model_id, Some(convention.model_version))?;
    let orgs_of = |key: &str| -> Vec<OrgRef> {
        convention.parties.iter().filter(|p| p.key == key).map(|p| p.org.clone()).collect()
    };
    let Some((controller, joint_controllers, processors)) = rgpd_roles(model, orgs_of) else { return Ok(None) };
    Ok(Some(RgpdAssignment {
        convention_id: convention.id.clone(),
        controller: convention.rgpd_controller.clone().unwrap_or(controller),
        joint_controllers,
        processors,
        notes: model.rgpd.notes.clone(),
    }))
}

/// A party's share of the costs under a convention.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct CostShareView {
    pub party: String,
    pub org: OrgRef,
    pub item: String,
    pub percent: f64,
}

/// Hundredths of a percent as a percent.
pub fn percent_of_bp(bp: i64) -> f64 {
    bp as f64 / 100.0
}

/// The cost shares of a convention, parameters resolved; a party with its own share (one
/// organisation of a multiple party) has that one.
pub fn cost_shares(model: &ConventionModel, convention: &Convention) -> Vec<CostShareView> {
    let mut shares = Vec::new();
    for share in &model.cost_sharing {
        let percent = share.share.unwrap_or_else(|| {
            share
                .share_parameter
                .as_ref()
                .and_then(|k| convention.parameters.get(k))
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
        });
        for party in convention.parties.iter().filter(|p| p.key == share.party) {
            shares.push(CostShareView {
                party: party.key.clone(),
                org: party.org.clone(),
                item: share.item.clone(),
                percent: party.share_percent.unwrap_or(percent),
            });
        }
    }
    shares
}

/// Who pays what under a convention, to compare two conventions: each paying organisation's
/// total share in hundredths of a percent ([`cost_shares`]), the organisations that pay
/// nothing left out (the items' wording aside).
pub fn cost_split(model: &ConventionModel, convention: &Convention) -> std::collections::BTreeMap<String, i64> {
    let mut split = std::collections::BTreeMap::new();
    for share in cost_shares(model, convention) {
        *split.entry(share.org.id).or_insert(0) += (share.percent * 100.0).round() as i64;
    }
    split.retain(|_, bp| *bp != 0);
    split
}
