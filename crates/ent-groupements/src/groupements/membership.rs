//! Applications and members: quantities prefilled from the registry, the
//! applicant's council decision, acceptance (which joins the member to the
//! `groupement-de-commandes` convention), rejection, withdrawal, and each
//! member's share of the awarded amount.

use super::costs::{self, Shares};
use super::shares::Quantities;
use super::{Ctx, Groupement, Status, MEMBER_KINDS};
use ent_conventions::conventions::model::ConventionModel;
use ent_conventions::conventions::signatories::{self, Signatory};
use ent_conventions::conventions::workflow::{self, ConventionPatch, NewConvention, PartyInput};
use ent_conventions::conventions::{find_model, get_convention, Convention, Status as ConventionStatus};
use ent_kernel::clock::french_date;
use ent_kernel::error::{conflict_unless, Checks, Problem, ProblemKind};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::store::update_versioned;
use ent_kernel::store::{new_id, timestamp, Store, Tx};
use ent_kernel::text::capitalised;
use ent_kernel::validate::is_blank;
use ent_kernel::{skip_serializing_none, text_enum};
use ent_ops::notify::Notice;
use ent_platform::catalog::{degree_label, Catalog};
use ent_platform::identity::{authz, Actor, Caller};
use ent_platform::registry::queries::{covers_org, field_org_kind, funded_etablissements, ORG_COLUMNS};
use ent_platform::registry::{funded_degree, get_org, resolve_field_org, resolve_readable_field, Org, OrgRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::FromRow;
use std::collections::BTreeMap;

/// Bounds beyond which a quantity is taken for a typing error.
pub const MAX_PUPILS_PER_SCHOOL: i64 = 2_000;
pub const MAX_CLASSES_PER_SCHOOL: i64 = 40;
pub const MAX_TEACHERS_PER_CLASS: i64 = 5;
/// Pupils a class is reckoned to hold when an application declares no classes: the teacher
/// accounts are then judged against the classes its pupils make (about 25 a class in the 1er degré).
pub const PUPILS_PER_CLASS_RECKONED: i64 = 25;
/// Two legal guardians per pupil.
pub const MAX_PARENTS_PER_PUPIL: i64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    Applied,
    Accepted,
    Rejected,
    Withdrawn,
}

text_enum!(ApplicationStatus);

impl ApplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Applied => "applied",
            ApplicationStatus::Accepted => "accepted",
            ApplicationStatus::Rejected => "rejected",
            ApplicationStatus::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> Option<ApplicationStatus> {
        match s {
            "applied" => Some(ApplicationStatus::Applied),
            "accepted" => Some(ApplicationStatus::Accepted),
            "rejected" => Some(ApplicationStatus::Rejected),
            "withdrawn" => Some(ApplicationStatus::Withdrawn),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ApplicationStatus::Applied => "candidature déposée",
            ApplicationStatus::Accepted => "membre",
            ApplicationStatus::Rejected => "refusée",
            ApplicationStatus::Withdrawn => "retirée",
        }
    }
}

/// What a member declares it needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, FromRow)]
pub struct MemberQuantities {
    pub schools: i64,
    pub classes: i64,
    pub pupils: i64,
    pub teacher_accounts: i64,
    pub parent_accounts: i64,
}

impl MemberQuantities {
    /// Pupil, teacher and parent accounts.
    pub fn accounts(&self) -> i64 {
        self.pupils + self.teacher_accounts + self.parent_accounts
    }

    pub fn for_key(&self) -> Quantities {
        Quantities { pupils: self.pupils, schools: self.schools, accounts: self.accounts() }
    }
}

/// What the registry says about an applicant, offered as the application's defaults.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Prefill {
    pub applicant: OrgRef,
    pub quantities: MemberQuantities,
    /// Écoles (or établissements) the applicant covers, that the quantities count.
    pub schools: Vec<OrgRef>,
    /// Établissements of the registry without a pupil count (not in `pupils`).
    pub schools_without_pupils: usize,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Application {
    pub id: String,
    pub groupement_id: String,
    pub applicant: OrgRef,
    pub status: ApplicationStatus,
    pub status_label: String,
    pub deliberation_number: String,
    /// `YYYY-MM-DD`.
    pub deliberation_date: String,
    pub quantities: MemberQuantities,
    pub accounts: i64,
    pub decision_reason: Option<String>,
    pub applied_at: String,
    pub decided_at: Option<String>,
    pub version: i64,
}

/// `POST /groupements/{id}/applications`: absent quantities are taken from the registry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// The applying collectivité (id or `kind:code`).
    pub applicant: String,
    /// Number of the council decision (délibération).
    #[schemars(length(min = 1, max = 50))]
    pub deliberation_number: String,
    /// `YYYY-MM-DD`, not in the future.
    #[schemars(extend("format" = "date"))]
    pub deliberation_date: String,
    pub schools: Option<i64>,
    pub classes: Option<i64>,
    pub pupils: Option<i64>,
    pub teacher_accounts: Option<i64>,
    pub parent_accounts: Option<i64>,
}

/// The open établissements an organisation funds (`queries::funds_condition`: écoles for a
/// commune, for an EPCI those of the communes that delegated their ENT to it).
pub async fn covered_schools(store: &Store, org: &Org) -> Result<Vec<Org>, Problem> {
    let schools = funded_etablissements(store, org).await?;
    Ok(schools.into_iter().filter(|o| o.open).collect())
}

/// The registry's figures for an applicant.
pub async fn prefill(store: &Store, applicant: &Org) -> Result<Prefill, Problem> {
    let schools = covered_schools(store, applicant).await?;
    let quantities = MemberQuantities {
        schools: schools.len() as i64,
        // Saturating: a figure stored before the import bounded it cannot overflow the sum.
        pupils: schools.iter().filter_map(|s| s.pupils).fold(0, i64::saturating_add),
        ..MemberQuantities::default()
    };
    Ok(Prefill {
        applicant: applicant.as_ref(),
        quantities,
        schools_without_pupils: schools.iter().filter(|s| s.pupils.is_none()).count(),
        schools: schools.iter().map(Org::as_ref).collect(),
    })
}

/// Who may apply, as a refused applicant reads it.
const APPLICANT_KINDS: &str = "adhèrent les communes, EPCI, syndicats mixtes, départements et régions";

/// The applicant `actor` names in a request (narrowed to what it reads), checked to be a kind
/// that may join.
pub async fn applicant_org(store: &Store, actor: &Actor, key: &str) -> Result<Org, Problem> {
    resolve_field_org(store, actor, "applicant", key, &MEMBER_KINDS, APPLICANT_KINDS).await
}

/// Whether `caller` applies, edits and withdraws in the name of the organisation
/// `applicant_id` ([`require_speaks_for`]); an unknown one, no.
pub async fn speaks_for(store: &Store, caller: &Caller, applicant_id: &str) -> Result<bool, Problem> {
    match get_org(store, applicant_id).await? {
        Some(org) => authz::acts_for(store, &caller.actor, caller.action, &org).await,
        None => Ok(false),
    }
}

/// The applicant `key` names for `caller`, checked in this order: it exists; it is in the
/// caller's scope (out of it and unreadable, the 422 of a key that names nothing, in the same
/// words: neither its name nor its kind is revealed); it is a kind that may join; the caller
/// speaks for it ([`require_speaks_for`]).
pub async fn applicant_for(store: &Store, caller: &Caller, key: &str) -> Result<Org, Problem> {
    let on_field = |p: Problem| match p.kind {
        ProblemKind::NotFound => Problem::invalid_field("applicant", p.detail),
        _ => p,
    };
    let org = resolve_readable_field(store, &caller.actor, "applicant", key).await?;
    caller.require_key(store, key, &org).await.map_err(on_field)?;
    field_org_kind("applicant", &org, &MEMBER_KINDS, APPLICANT_KINDS)?;
    require_speaks_for(store, caller, &org).await?;
    Ok(org)
}

/// Joining a groupement is each member's own decision, by its deliberating body (CCP
/// L2113-6 and -7): only who acts for the applicant ([`authz::acts_for`]: an admin, or its
/// own `collectivite`) applies, edits or withdraws in its name. A scope that reaches it (an
/// EPCI's agent over its member communes) is not its consent: 403, the applicant being one
/// the caller already reads (it passed the scope check).
pub async fn require_speaks_for(store: &Store, caller: &Caller, applicant: &Org) -> Result<(), Problem> {
    if authz::acts_for(store, &caller.actor, caller.action, applicant).await? {
        return Ok(());
    }
    Err(authz::forbidden(format!(
        "l'adhésion {} au groupement relève de sa propre délibération : seule sa collectivité (ou un \
         administrateur) dépose, modifie ou retire sa candidature",
        naming::de(&applicant.name)
    )))
}

/// `PATCH /groupements/{id}/applications/{application}` (with `If-Match`): what the applicant
/// changes before the deadline; an absent field keeps its value.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPatch {
    /// Number of the council decision (délibération).
    #[schemars(length(min = 1, max = 50))]
    pub deliberation_number: Option<String>,
    /// `YYYY-MM-DD`, not in the future.
    #[schemars(extend("format" = "date"))]
    pub deliberation_date: Option<String>,
    pub schools: Option<i64>,
    pub classes: Option<i64>,
    pub pupils: Option<i64>,
    pub teacher_accounts: Option<i64>,
    pub parent_accounts: Option<i64>,
}

/// Checks the délibération of an application to `g`: dated neither in the future nor before
/// the groupement existed (it approves the groupement's convention); the trimmed number.
fn check_deliberation(
    g: &Groupement,
    number: &str,
    date: &str,
    today: chrono::NaiveDate,
    checks: &mut Checks,
) -> String {
    let number = number.trim().to_string();
    if number.is_empty() || number.chars().count() > 50 {
        checks.fail("deliberation_number", "numéro de la délibération obligatoire (50 caractères au plus)");
    }
    checks.line("deliberation_number", &number);
    match checks.date("deliberation_date", date.trim()) {
        Some(d) if d > today => {
            checks.fail("deliberation_date", "la délibération ne peut pas être datée dans le futur")
        }
        Some(d) => {
            signatories::check_not_before_groupement("deliberation_date", d, &g.reference, g.created_on(), checks)
        }
        None => {}
    }
    number
}

fn check_quantities(q: MemberQuantities, pre: &Prefill, checks: &mut Checks) -> MemberQuantities {
    let fields = [
        ("schools", q.schools),
        ("classes", q.classes),
        ("pupils", q.pupils),
        ("teacher_accounts", q.teacher_accounts),
        ("parent_accounts", q.parent_accounts),
    ];
    let mut negative = false;
    for (field, value) in fields {
        if value < 0 {
            checks.fail(field, format!("quantité négative : {value}"));
            negative = true;
        }
    }
    if negative {
        return q;
    }
    let covered = pre.quantities.schools;
    if q.schools > covered {
        checks.fail(
            "schools",
            format!(
                "{} écoles déclarées, mais {} n'en couvre que {covered} selon le répertoire",
                q.schools, pre.applicant.name
            ),
        );
    }
    let per_school = |limit: i64| limit * q.schools.max(1);
    if q.pupils > per_school(MAX_PUPILS_PER_SCHOOL) {
        checks.fail("pupils", format!("{} élèves pour {} école(s) : nombre invraisemblable", q.pupils, q.schools));
    }
    if q.classes > per_school(MAX_CLASSES_PER_SCHOOL) {
        checks.fail("classes", format!("{} classes pour {} école(s) : nombre invraisemblable", q.classes, q.schools));
    }
    if let Some(refusal) = too_many_teachers(&q) {
        checks.fail("teacher_accounts", refusal);
    }
    if q.parent_accounts > MAX_PARENTS_PER_PUPIL * q.pupils {
        checks.fail(
            "parent_accounts",
            format!("{} comptes parents pour {} élèves : au plus deux par élève", q.parent_accounts, q.pupils),
        );
    }
    q
}

/// Why `q`'s teacher accounts are taken for a typing error, if they are: more than
/// [`MAX_TEACHERS_PER_CLASS`] a class, the classes declared or, when none are, those its
/// pupils make ([`PUPILS_PER_CLASS_RECKONED`]) and at least one a school.
fn too_many_teachers(q: &MemberQuantities) -> Option<String> {
    let reckoned = (q.pupils + PUPILS_PER_CLASS_RECKONED - 1) / PUPILS_PER_CLASS_RECKONED;
    let classes = if q.classes > 0 { q.classes } else { reckoned.max(q.schools).max(1) };
    let limit = MAX_TEACHERS_PER_CLASS * classes;
    if q.teacher_accounts <= limit {
        return None;
    }
    let basis = if q.classes > 0 {
        format!("pour {} classe{}", q.classes, if q.classes > 1 { "s" } else { "" })
    } else {
        format!(
            "sans nombre de classes déclaré, pour {classes} classe{} comptée{} d'après {} élève{} et {} école{} ; \
             indiquez le nombre de classes s'il est plus grand",
            if classes > 1 { "s" } else { "" },
            if classes > 1 { "s" } else { "" },
            q.pupils,
            if q.pupils > 1 { "s" } else { "" },
            q.schools,
            if q.schools > 1 { "s" } else { "" },
        )
    };
    Some(format!(
        "{} comptes enseignants, c'est plus de {MAX_TEACHERS_PER_CLASS} par classe (au plus {limit}) {basis}",
        q.teacher_accounts
    ))
}

const COLUMNS: &str = "m.id, m.groupement_id, m.org_id, m.status, m.deliberation_number, m.deliberation_date, \
    m.schools, m.classes, m.pupils, m.teacher_accounts, m.parent_accounts, m.decision_reason, m.version, \
    m.applied_at, m.decided_at, o.kind AS o_kind, o.code AS o_code, o.name AS o_name";

/// A row of [`COLUMNS`] as stored.
#[derive(FromRow)]
struct ApplicationRow {
    id: String,
    groupement_id: String,
    org_id: String,
    #[sqlx(try_from = "String")]
    status: ApplicationStatus,
    deliberation_number: String,
    deliberation_date: String,
    #[sqlx(flatten)]
    quantities: MemberQuantities,
    decision_reason: Option<String>,
    version: i64,
    applied_at: String,
    decided_at: Option<String>,
    #[sqlx(try_from = "String")]
    o_kind: OrgKind,
    o_code: String,
    o_name: String,
}

fn from_row(row: ApplicationRow) -> Application {
    Application {
        id: row.id,
        groupement_id: row.groupement_id,
        applicant: OrgRef { id: row.org_id, kind: row.o_kind, code: row.o_code, name: row.o_name },
        status: row.status,
        status_label: row.status.label().into(),
        deliberation_number: row.deliberation_number,
        deliberation_date: row.deliberation_date,
        accounts: row.quantities.accounts(),
        quantities: row.quantities,
        decision_reason: row.decision_reason,
        applied_at: row.applied_at,
        decided_at: row.decided_at,
        version: row.version,
    }
}

/// An earlier application of the same organisation to the same groupement.
#[derive(FromRow)]
struct PreviousApplication {
    id: String,
    #[sqlx(try_from = "String")]
    status: ApplicationStatus,
}

/// Applications of a groupement, by applicant name; only `status` ones when given.
pub async fn list(
    store: &Store,
    groupement_id: &str,
    status: Option<ApplicationStatus>,
) -> Result<Vec<Application>, Problem> {
    let sql = format!(
        "SELECT {COLUMNS} FROM groupement_members m JOIN orgs o ON o.id = m.org_id \
         WHERE m.groupement_id = $1 AND ($2 = '' OR m.status = $2) ORDER BY o.sort_name, o.id"
    );
    let rows: Vec<ApplicationRow> = sqlx::query_as(&sql)
        .bind(groupement_id)
        .bind(status.map(ApplicationStatus::as_str).unwrap_or(""))
        .fetch_all(store.pool())
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The accepted members.
pub async fn members(store: &Store, groupement_id: &str) -> Result<Vec<Application>, Problem> {
    list(store, groupement_id, Some(ApplicationStatus::Accepted)).await
}

pub async fn get(store: &Store, groupement_id: &str, id: &str) -> Result<Application, Problem> {
    let sql = format!(
        "SELECT {COLUMNS} FROM groupement_members m JOIN orgs o ON o.id = m.org_id WHERE m.groupement_id = $1 AND m.id = $2"
    );
    let row: Option<ApplicationRow> =
        sqlx::query_as(&sql).bind(groupement_id).bind(id).fetch_optional(store.pool()).await?;
    row.map(from_row).ok_or_else(|| Problem::not_found(format!("aucune candidature « {id} »")))
}

/// Queues the `groupement` notice to the users holding `role` at `org_id`.
async fn notify(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    g: &Groupement,
    org_id: &str,
    role: Role,
    event: &str,
    extra: Value,
) -> Result<(), Problem> {
    let to = authz::users_with_role(tx, org_id, role.as_str()).await?;
    let subject = json!({ "event": event, "reference": g.reference, "title": g.title });
    Notice::new("groupement", to).with(subject).with(extra).page(super::page_of(g)).enqueue(tx, ctx.now).await?;
    Ok(())
}

/// `extra` of a notice naming `member` as the documents do ([`Org::designation`]): `member` at the
/// start of a sentence (« La Commune de Fresnes », « L'Établissement public territorial … »),
/// `member_of` after a noun (« de la Commune de Fresnes »).
fn member_named(member: &OrgRef, mut extra: Value) -> Value {
    let designation = naming::of_org(member.kind, &naming::display_name(&member.name));
    extra["member"] = json!(capitalised(&designation.article));
    extra["member_of"] = json!(designation.of);
    extra
}

/// Refuses an applicant that covers, or is covered by, a current applicant or member (a commune
/// and the EPCI it belongs to): their écoles would be counted, and paid for, twice. Only grouping
/// kinds cover other collectivités, so a commune is compared with the groups only.
async fn refuse_overlap(store: &Store, g: &Groupement, applicant: &Org) -> Result<(), Problem> {
    let groups = |o: &Org| !matches!(o.kind, OrgKind::Commune);
    // A commune covers no other commune: only the groups among the others can overlap it (read
    // them alone, or each of a département's 460 applications reads all the others).
    let others_kinds = if groups(applicant) { "" } else { " AND kind <> 'commune'" };
    let sql = format!(
        "SELECT {} FROM orgs WHERE id IN (SELECT org_id FROM groupement_members WHERE groupement_id = $1 \
         AND status IN ('applied', 'accepted') AND org_id <> $2){others_kinds}",
        ORG_COLUMNS
    );
    let others: Vec<Org> = sqlx::query_as(&sql).bind(&g.id).bind(&applicant.id).fetch_all(store.pool()).await?;
    for other in others {
        let overlap = (groups(&other) && covers_org(store, &other, applicant).await?)
            || (groups(applicant) && covers_org(store, applicant, &other).await?);
        if overlap {
            return Err(Problem::conflict(format!(
                "{} et {} se recouvrent (l'un couvre l'autre) : leurs écoles seraient comptées deux fois ; une seule des deux candidatures est possible",
                applicant.name, other.name
            ))
            .with_extra(json!({ "overlaps": other.qualified_code() })));
        }
    }
    Ok(())
}

/// Whether `g` takes applications on `today`: open, its deadline not passed; otherwise a 409
/// whose detail ends with `closed` (the groupement no longer open) or `late` (the deadline passed).
pub fn taking_applications(g: &Groupement, today: chrono::NaiveDate, closed: &str, late: &str) -> Result<(), Problem> {
    conflict_unless(g.status == Status::Open, || {
        format!("le groupement {} est {} : {closed}", g.reference, g.status.label())
    })?;
    conflict_unless(today.to_string() <= g.application_deadline, || {
        format!(
            "la date limite des adhésions au groupement {} était le {} : {late}",
            g.reference,
            french_date(&g.application_deadline)
        )
    })
}

/// Files (or files again, after a withdrawal or a rejection) an application.
pub async fn apply(
    ctx: &Ctx<'_>,
    g: &Groupement,
    applicant: &Org,
    input: NewApplication,
) -> Result<Application, Problem> {
    super::guard::require_applicant(ctx, applicant).await?;
    let today = ctx.today();
    taking_applications(g, today, "il n'accepte plus de candidatures", "candidature hors délai")?;
    if applicant.id == g.coordinator.id {
        return Err(Problem::invalid_field(
            "applicant",
            format!(
                "{} coordonne le groupement {} : le coordonnateur en est déjà partie et n'y candidate pas",
                applicant.name, g.reference
            ),
        ));
    }
    let existing: Option<PreviousApplication> =
        sqlx::query_as("SELECT id, status FROM groupement_members WHERE groupement_id = $1 AND org_id = $2")
            .bind(&g.id)
            .bind(&applicant.id)
            .fetch_optional(ctx.store.pool())
            .await?;
    if let Some(PreviousApplication { id, status }) = &existing {
        if matches!(status, ApplicationStatus::Applied | ApplicationStatus::Accepted) {
            return Err(Problem::conflict(format!(
                "{} a déjà une candidature au groupement {} ({})",
                applicant.name,
                g.reference,
                status.label()
            ))
            .with_extra(json!({ "application_id": id })));
        }
    }
    refuse_overlap(ctx.store, g, applicant).await?;
    if let Err(why) = served_by_bouquet(ctx.catalog, g, &applicant.as_ref()) {
        return Err(Problem::invalid_field("applicant", why));
    }
    let pre = prefill(ctx.store, applicant).await?;
    let mut checks = Checks::default();
    let number = check_deliberation(g, &input.deliberation_number, &input.deliberation_date, today, &mut checks);
    let declared = MemberQuantities {
        schools: input.schools.unwrap_or(pre.quantities.schools),
        classes: input.classes.unwrap_or(0),
        pupils: input.pupils.unwrap_or(pre.quantities.pupils),
        teacher_accounts: input.teacher_accounts.unwrap_or(0),
        parent_accounts: input.parent_accounts.unwrap_or(0),
    };
    let q = check_quantities(declared, &pre, &mut checks);
    checks.finish()?;
    let at = timestamp(ctx.now);
    let mut tx = ctx.store.begin_write().await?;
    // A withdrawn or rejected applicant files again on its own row.
    let id = existing.map(|previous| previous.id).unwrap_or_else(new_id);
    let done = sqlx::query(
        "INSERT INTO groupement_members (id, groupement_id, org_id, status, deliberation_number, deliberation_date, \
         schools, classes, pupils, teacher_accounts, parent_accounts, version, applied_by, applied_at, updated_at) \
         VALUES ($1, $2, $3, 'applied', $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $12) \
         ON CONFLICT (groupement_id, org_id) DO UPDATE SET status = 'applied', \
         deliberation_number = excluded.deliberation_number, deliberation_date = excluded.deliberation_date, \
         schools = excluded.schools, classes = excluded.classes, pupils = excluded.pupils, \
         teacher_accounts = excluded.teacher_accounts, parent_accounts = excluded.parent_accounts, \
         decision_reason = NULL, decided_at = NULL, applied_by = excluded.applied_by, \
         applied_at = excluded.applied_at, updated_at = excluded.updated_at, version = groupement_members.version + 1 \
         WHERE groupement_members.status IN ('rejected', 'withdrawn')",
    )
    .bind(&id)
    .bind(&g.id)
    .bind(&applicant.id)
    .bind(&number)
    .bind(input.deliberation_date.trim())
    .bind(q.schools)
    .bind(q.classes)
    .bind(q.pupils)
    .bind(q.teacher_accounts)
    .bind(q.parent_accounts)
    .bind(&ctx.actor.name)
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    conflict_unless(done.rows_affected() != 0, || {
        format!("{} a déjà une candidature à ce groupement", applicant.name)
    })?;
    ctx.record(
        &mut tx,
        "groupements.apply",
        &g.id,
        Some(&applicant.id),
        json!({ "application": id, "applicant": applicant.qualified_code(), "deliberation": number, "quantities": q }),
    )
    .await?;
    let extra = json!({ "deliberation": number });
    let extra = member_named(&applicant.as_ref(), extra);
    notify(&mut tx, ctx, g, &g.coordinator.id, Role::Coordinateur, "applied", extra).await?;
    tx.commit().await?;
    get(ctx.store, &g.id, &id).await
}

/// The applicant changes its application (délibération, quantities) while it awaits the
/// coordinator's decision and the application deadline has not passed; `expected_version` is
/// the version the change was based on (412 otherwise).
pub async fn update(
    ctx: &Ctx<'_>,
    g: &Groupement,
    app: &Application,
    expected_version: i64,
    patch: ApplicationPatch,
) -> Result<Application, Problem> {
    super::guard::require_own(ctx, app).await?;
    let today = ctx.today();
    taking_applications(g, today, "les candidatures ne se modifient plus", "la candidature ne se modifie plus")?;
    conflict_unless(app.status == ApplicationStatus::Applied, || {
        format!("cette candidature est {} : elle ne se modifie plus", app.status.label())
    })?;
    let applicant =
        get_org(ctx.store, &app.applicant.id).await?.ok_or_else(|| Problem::not_found("candidat introuvable"))?;
    let pre = prefill(ctx.store, &applicant).await?;
    let mut checks = Checks::default();
    let number = check_deliberation(
        g,
        patch.deliberation_number.as_deref().unwrap_or(&app.deliberation_number),
        patch.deliberation_date.as_deref().unwrap_or(&app.deliberation_date),
        today,
        &mut checks,
    );
    let date = patch.deliberation_date.as_deref().unwrap_or(&app.deliberation_date).trim().to_string();
    let old = app.quantities;
    let declared = MemberQuantities {
        schools: patch.schools.unwrap_or(old.schools),
        classes: patch.classes.unwrap_or(old.classes),
        pupils: patch.pupils.unwrap_or(old.pupils),
        teacher_accounts: patch.teacher_accounts.unwrap_or(old.teacher_accounts),
        parent_accounts: patch.parent_accounts.unwrap_or(old.parent_accounts),
    };
    let q = check_quantities(declared, &pre, &mut checks);
    checks.finish()?;
    let mut tx = ctx.store.begin_write().await?;
    let query = sqlx::query(
        "UPDATE groupement_members SET deliberation_number = $1, deliberation_date = $2, schools = $3, classes = $4, \
         pupils = $5, teacher_accounts = $6, parent_accounts = $7, version = version + 1, updated_at = $8 \
         WHERE id = $9 AND version = $10",
    )
    .bind(&number)
    .bind(&date)
    .bind(q.schools)
    .bind(q.classes)
    .bind(q.pupils)
    .bind(q.teacher_accounts)
    .bind(q.parent_accounts);
    update_versioned(&mut tx, query, ctx.now, &app.id, expected_version, app.version).await?;
    ctx.record(
        &mut tx,
        "groupements.application_update",
        &g.id,
        Some(&app.applicant.id),
        json!({
            "application": app.id,
            "applicant": app.applicant.code,
            "deliberation": number,
            "before": { "deliberation_number": app.deliberation_number, "deliberation_date": app.deliberation_date, "quantities": old },
            "quantities": q,
        }),
    )
    .await?;
    tx.commit().await?;
    get(ctx.store, &g.id, &app.id).await
}

/// A decision on an application: its new status and, for a refusal, its reason.
struct Decision<'a> {
    app: &'a Application,
    to: ApplicationStatus,
    reason: Option<&'a str>,
}

impl<'a> Decision<'a> {
    fn accept(app: &'a Application) -> Self {
        Decision { app, to: ApplicationStatus::Accepted, reason: None }
    }

    fn withdraw(app: &'a Application) -> Self {
        Decision { app, to: ApplicationStatus::Withdrawn, reason: None }
    }
}

/// Writes `decisions` in one transaction of their own ([`decide_in`]): all or none.
async fn decide(ctx: &Ctx<'_>, g: &Groupement, decisions: &[Decision<'_>]) -> Result<(), Problem> {
    let mut tx = ctx.store.begin_write().await?;
    decide_in(ctx, &mut tx, g, decisions).await?;
    tx.commit().await?;
    Ok(())
}

/// [`decide`] in the write transaction `tx`, each decision in turn ([`decide_one_in`]).
async fn decide_in(ctx: &Ctx<'_>, tx: &mut Tx, g: &Groupement, decisions: &[Decision<'_>]) -> Result<(), Problem> {
    for decision in decisions {
        decide_one_in(ctx, tx, g, decision).await?;
    }
    Ok(())
}

/// The decision `d` in the write transaction `tx`: the application's new status, audited, and
/// the notice to whom it concerns queued in the outbox (sent only if `tx` commits).
async fn decide_one_in(ctx: &Ctx<'_>, tx: &mut Tx, g: &Groupement, d: &Decision<'_>) -> Result<(), Problem> {
    let Decision { app, to, reason } = *d;
    let query = sqlx::query(
        "UPDATE groupement_members SET status = $1, decision_reason = $2, decided_at = $3, updated_at = $3, \
         version = version + 1 WHERE id = $4 AND version = $5",
    )
    .bind(to.as_str())
    .bind(reason);
    update_versioned(tx, query, ctx.now, &app.id, app.version, app.version).await?;
    let action = match to {
        ApplicationStatus::Accepted => "groupements.accept",
        ApplicationStatus::Rejected => "groupements.reject",
        ApplicationStatus::Withdrawn => "groupements.withdraw",
        ApplicationStatus::Applied => "groupements.apply",
    };
    ctx.record(
        tx,
        action,
        &g.id,
        Some(&app.applicant.id),
        json!({ "application": app.id, "applicant": app.applicant.code, "reason": reason }),
    )
    .await?;
    let extra = member_named(&app.applicant, json!({ "reason": reason.unwrap_or_default() }));
    let event = match to {
        ApplicationStatus::Accepted => "accepted",
        ApplicationStatus::Rejected => "rejected",
        _ => "withdrawn",
    };
    let (org, role) = if to == ApplicationStatus::Withdrawn {
        (g.coordinator.id.as_str(), Role::Coordinateur)
    } else {
        (app.applicant.id.as_str(), Role::Collectivite)
    };
    notify(tx, ctx, g, org, role, event, extra).await?;
    Ok(())
}

/// Accepts an application and joins the member to the groupement's convention.
pub async fn accept(ctx: &Ctx<'_>, g: &Groupement, app: &Application) -> Result<Application, Problem> {
    Ok(accept_many(ctx, g, std::slice::from_ref(app)).await?.remove(0))
}

/// Accepts several applications at once: the convention is updated once for all, the
/// groupement and the applications read again under the lock of its membership ([`one_at_a_time`]).
pub async fn accept_many(ctx: &Ctx<'_>, g: &Groupement, apps: &[Application]) -> Result<Vec<Application>, Problem> {
    super::guard::require_coordinates(ctx.actor, g)?;
    one_at_a_time(ctx, g, async |g| {
        let mut current = Vec::with_capacity(apps.len());
        for app in apps {
            current.push(get(ctx.store, &g.id, &app.id).await?);
        }
        accept_now(ctx, g, &current).await
    })
    .await
}

/// [`accept_many`], its lock held.
async fn accept_now(ctx: &Ctx<'_>, g: &Groupement, apps: &[Application]) -> Result<Vec<Application>, Problem> {
    conflict_unless(matches!(g.status, Status::Open | Status::Closed), || {
        format!("le groupement est {} : les adhésions sont arrêtées", g.status.label())
    })?;
    if apps.is_empty() {
        return Err(Problem::invalid_field("applications", "au moins une candidature à accepter"));
    }
    let mut checks = Checks::default();
    for (i, app) in apps.iter().enumerate() {
        if app.status != ApplicationStatus::Applied {
            checks.fail(
                &format!("applications[{i}]"),
                format!(
                    "la candidature {} est {} : rien à accepter",
                    naming::de(&app.applicant.name),
                    app.status.label()
                ),
            );
        } else if let Err(why) = acceptable(ctx.catalog, g, app) {
            checks.fail(&format!("applications[{i}]"), why);
        }
    }
    checks.finish()?;
    let mut member_ids: Vec<String> = members(ctx.store, &g.id).await?.into_iter().map(|m| m.applicant.id).collect();
    for app in apps {
        if !member_ids.contains(&app.applicant.id) {
            member_ids.push(app.applicant.id.clone());
        }
    }
    let decisions: Vec<Decision> = apps.iter().map(Decision::accept).collect();
    link_convention(ctx, g, member_ids, &decisions).await?;
    let mut accepted = Vec::new();
    for app in apps {
        accepted.push(get(ctx.store, &g.id, &app.id).await?);
    }
    Ok(accepted)
}

/// Why `applicant` cannot join `g`: its kind funds schools of a degree the groupement's base
/// bouquet does not serve ([`funded_degree`]; a département's collèges in a premier-degré
/// groupement), so that it could order nothing under the accord-cadre it would pay a share of
/// (a member joins for its own needs: article L. 2113-6 du code de la commande publique).
/// Refused when it applies and when it is accepted.
fn served_by_bouquet(catalog: &Catalog, g: &Groupement, applicant: &OrgRef) -> Result<(), String> {
    let (Some(degree), Some(bouquet)) = (funded_degree(applicant.kind), catalog.bouquet(&g.terms.bouquet, None)) else {
        return Ok(());
    };
    if bouquet.degrees.contains(&degree) {
        return Ok(());
    }
    let served: Vec<&str> = bouquet.degrees.iter().map(|d| degree_label(*d)).collect();
    let designation = naming::of_org(applicant.kind, &naming::display_name(&applicant.name));
    Err(format!(
        "{} finance des établissements du {} : le bouquet « {} » du groupement {} ne sert que le {} ; {} n'y \
         commanderait rien et ne peut pas adhérer à ce groupement, un membre y adhérant pour ses propres besoins \
         (article L. 2113-6 du code de la commande publique)",
        capitalised(&designation.article),
        degree_label(degree),
        bouquet.name,
        g.reference,
        served.join(" et le "),
        designation.pronoun()
    ))
}

/// Why the application `app` cannot be accepted into `g`: its kind is not served by the
/// groupement's bouquet ([`served_by_bouquet`]), or it declares no établissement (the état des
/// besoins of the convention constitutive: the établissements it equips).
fn acceptable(catalog: &Catalog, g: &Groupement, app: &Application) -> Result<(), String> {
    served_by_bouquet(catalog, g, &app.applicant)?;
    if app.quantities.schools > 0 {
        return Ok(());
    }
    let designation = naming::of_org(app.applicant.kind, &naming::display_name(&app.applicant.name));
    Err(format!(
        "la candidature {} déclare 0 établissement : un membre adhère pour équiper ses propres établissements \
         (article L. 2113-6 du code de la commande publique) ; {} doit d'abord déclarer le nombre d'établissements \
         qu'{} équipe",
        designation.of,
        designation.article,
        designation.pronoun()
    ))
}

pub async fn reject(ctx: &Ctx<'_>, g: &Groupement, app: &Application, reason: &str) -> Result<Application, Problem> {
    super::guard::require_coordinates(ctx.actor, g)?;
    if app.status == ApplicationStatus::Applied && is_blank(reason) {
        return Err(Problem::invalid_field("reason", "indiquez le motif du refus"));
    }
    Ok(reject_many(ctx, g, &[(app.clone(), reason.to_string())]).await?.remove(0))
}

/// Refuses several applications, each with its reason, all or none: every one is checked
/// (still awaiting a decision: 409; a reason given: 422 naming each `applications[i].reason`
/// missing, all at once) before any is refused; the refusals and their notices to the
/// applicants are then written in one transaction.
pub async fn reject_many(
    ctx: &Ctx<'_>,
    g: &Groupement,
    refusals: &[(Application, String)],
) -> Result<Vec<Application>, Problem> {
    super::guard::require_coordinates(ctx.actor, g)?;
    if refusals.is_empty() {
        return Err(Problem::invalid_field("applications", "au moins une candidature à refuser"));
    }
    for (app, _) in refusals {
        conflict_unless(app.status == ApplicationStatus::Applied, || {
            format!("la candidature {} est {} : rien à refuser", naming::de(&app.applicant.name), app.status.label())
        })?;
    }
    let mut checks = Checks::default();
    for (i, (app, reason)) in refusals.iter().enumerate() {
        if is_blank(reason) {
            checks.fail(
                &format!("applications[{i}].reason"),
                format!("{} : indiquez le motif du refus", app.applicant.name),
            );
        }
    }
    checks.finish()?;
    let decisions: Vec<Decision> = refusals
        .iter()
        .map(|(app, reason)| Decision { app, to: ApplicationStatus::Rejected, reason: Some(reason.trim()) })
        .collect();
    decide(ctx, g, &decisions).await?;
    let mut refused = Vec::new();
    for (app, _) in refusals {
        refused.push(get(ctx.store, &g.id, &app.id).await?);
    }
    Ok(refused)
}

/// The applicant withdraws, until the groupement closes; a member leaves the convention it has
/// not signed yet ([`leave_convention`]; a party of the convention signed or in force cannot:
/// [`refuse_signatory_withdrawal`]).
pub async fn withdraw(ctx: &Ctx<'_>, g: &Groupement, app: &Application) -> Result<Application, Problem> {
    super::guard::require_own(ctx, app).await?;
    one_at_a_time(ctx, g, async |g| {
        let app = get(ctx.store, &g.id, &app.id).await?;
        withdraw_now(ctx, g, &app).await
    })
    .await
}

/// [`withdraw`], the lock of the groupement's membership held.
async fn withdraw_now(ctx: &Ctx<'_>, g: &Groupement, app: &Application) -> Result<Application, Problem> {
    conflict_unless(g.status == Status::Open, || {
        format!(
            "le groupement est {} : le retrait passe désormais par une délibération notifiée au coordonnateur",
            g.status.label()
        )
    })?;
    conflict_unless(matches!(app.status, ApplicationStatus::Applied | ApplicationStatus::Accepted), || {
        format!("cette candidature est déjà {}", app.status.label())
    })?;
    if app.status == ApplicationStatus::Accepted {
        refuse_signatory_withdrawal(ctx, g, app).await?;
        leave_convention(ctx, g, app).await?;
    } else {
        decide(ctx, g, &[Decision::withdraw(app)]).await?;
    }
    get(ctx.store, &g.id, &app.id).await
}

/// Takes the member `app` out of the convention the groupement's changes edit
/// ([`edited_convention_id`]) before it signs, and records its withdrawal, in one transaction
/// (a failure leaves both as they were): an avenant in preparation that would then carry
/// nothing the convention in force does not ([`unsigned_changes`]) is ended, with the member's
/// departure as its reason; otherwise the convention (or avenant) is rewritten with the other
/// members ([`link_convention`]). The last member leaving the convention constitutive still in
/// preparation ends it ([`end_memberless_convention`]). A convention that does not name the
/// member is left as it is.
async fn leave_convention(ctx: &Ctx<'_>, g: &Groupement, app: &Application) -> Result<(), Problem> {
    let withdrawal = [Decision::withdraw(app)];
    let Some(edited) = edited_naming(ctx, g, app).await? else { return decide(ctx, g, &withdrawal).await };
    let others: Vec<Application> =
        members(ctx.store, &g.id).await?.into_iter().filter(|m| m.applicant.id != app.applicant.id).collect();
    if edited.amends_id.is_some() {
        let in_force = match super::constitutive_id(ctx.store, g).await? {
            Some(id) => get_convention(ctx.store, ctx.models, &id).await?,
            None => None,
        };
        if let Some(in_force) = in_force {
            if changes_from(g, &others, &in_force).is_empty() {
                let reason = format!(
                    "{} s'est retiré(e) du groupement {} avant de signer l'avenant, qui n'a plus d'objet",
                    app.applicant.name, g.reference
                );
                let mut tx = ctx.store.begin_write().await?;
                workflow::end_in_preparation_in(&ctx.conventions(), &mut tx, &edited.id, &reason).await?;
                decide_in(ctx, &mut tx, g, &withdrawal).await?;
                tx.commit().await?;
                return Ok(());
            }
        }
    }
    match (others.is_empty(), edited.amends_id.is_none()) {
        (true, true) => end_memberless_convention(ctx, g, &edited, app).await,
        (true, false) => decide(ctx, g, &withdrawal).await,
        (false, _) => link_convention(ctx, g, others.into_iter().map(|m| m.applicant.id).collect(), &withdrawal).await,
    }
}

/// The convention the groupement's changes edit ([`edited_convention_id`]) if it names `app`'s
/// applicant as a member.
async fn edited_naming(ctx: &Ctx<'_>, g: &Groupement, app: &Application) -> Result<Option<Convention>, Problem> {
    let Some(id) = edited_convention_id(ctx.store, g).await? else { return Ok(None) };
    let edited = get_convention(ctx.store, ctx.models, &id).await?;
    Ok(edited.filter(|c| c.parties.iter().any(|p| p.key == "membre" && p.org.id == app.applicant.id)))
}

/// The convention constitutive `conv` of `g`, still in preparation (draft or in signature), that
/// the last member `leaving` leaves: ended, with its departure as the reason (a convention
/// constitutive binds members; none is left to sign it), no longer linked by the groupement,
/// audited, and the member's withdrawal recorded, in one transaction (a groupement never links
/// the draft it ended): the next acceptance drafts a new one.
pub async fn end_memberless_convention(
    ctx: &Ctx<'_>,
    g: &Groupement,
    conv: &Convention,
    leaving: &Application,
) -> Result<(), Problem> {
    let reason = format!(
        "{}, dernier membre du groupement {}, s'est retiré(e) avant la signature : la convention constitutive n'a \
         plus de membre",
        leaving.applicant.name, g.reference
    );
    let mut tx = ctx.store.begin_write().await?;
    workflow::end_in_preparation_in(&ctx.conventions(), &mut tx, &conv.id, &reason).await?;
    let summary = json!({ "convention": null, "ended": conv.reference, "reason": reason });
    write_convention_link(ctx, &mut tx, g, None, Some(&conv.id), summary).await?;
    decide_in(ctx, &mut tx, g, &[Decision::withdraw(leaving)]).await?;
    tx.commit().await?;
    Ok(())
}

/// 409 when `app`'s applicant is a party of the convention constitutive signed (every party
/// signed, not yet started) or in force: it is bound by it, and its article 11 has it leave by a
/// délibération notified to the coordinator, after a notice, then an avenant; not by withdrawing
/// its application. A member accepted since (its avenant not in force) still withdraws.
async fn refuse_signatory_withdrawal(ctx: &Ctx<'_>, g: &Groupement, app: &Application) -> Result<(), Problem> {
    let Some(id) = super::constitutive_id(ctx.store, g).await? else { return Ok(()) };
    let Some(conv) = get_convention(ctx.store, ctx.models, &id).await? else { return Ok(()) };
    let party = conv.parties.iter().any(|p| p.key == "membre" && p.org.id == app.applicant.id);
    if !matches!(conv.status, ConventionStatus::Active | ConventionStatus::Signed) || !party {
        return Ok(());
    }
    let notice = conv.parameters.get("preavis_retrait_mois").map(parameter_text).unwrap_or_else(|| "?".into());
    let earliest = notice
        .parse::<u32>()
        .ok()
        .and_then(|months| workflow::end_of_notice(ctx.today(), months).ok())
        .map(|day| {
            format!(", soit au plus tôt le {} pour une notification reçue aujourd'hui", french_date(&day.to_string()))
        })
        .unwrap_or_default();
    // Its art. 11 as its edition words it: from edition 7 no « période d'exécution » (the
    // accord-cadre has none), the member stops ordering (domain review 38, G8).
    let effect = match conv.document_edition >= ent_conventions::conventions::document::FIGURES_EDITION {
        true => "le membre n'émettant plus de bon de commande à compter de cette date ; il s'inscrit",
        false => "n'est opposable au titulaire qu'au terme de la période d'exécution en cours, et s'inscrit",
    };
    Err(Problem::conflict(format!(
        "{member} est partie à la convention constitutive {reference} {status} : elle ne s'en retire pas en retirant \
         sa candidature. Selon son article 11, l'assemblée délibérante {of_member} adopte une délibération de retrait, \
         notifiée à {coordinator}, coordonnateur, par lettre recommandée avec accusé de réception ; le retrait prend \
         effet à l'expiration d'un préavis de {notice} mois{earliest}, {effect} dans un avenant à la \
         convention {reference} signé par le coordonnateur et les autres membres ; d'ici là, {member} reste membre et \
         doit sa quote-part",
        member = app.applicant.name,
        of_member = naming::de(&app.applicant.name),
        reference = conv.reference,
        status = conv.status.label(),
        coordinator = g.coordinator.name,
    )))
}

/// 409 unless the groupement's convention (if any) can still follow its terms: a draft or a
/// convention in signature is edited, an active one amended; a signed, expired or ended one cannot.
pub(super) async fn check_convention_editable(ctx: &Ctx<'_>, g: &Groupement) -> Result<(), Problem> {
    let Some(id) = super::constitutive_id(ctx.store, g).await? else { return Ok(()) };
    let Some(conv) = get_convention(ctx.store, ctx.models, &id).await? else { return Ok(()) };
    match conv.status {
        ConventionStatus::Draft | ConventionStatus::InSignature | ConventionStatus::Active => Ok(()),
        other => Err(Problem::conflict(format!(
            "la convention {} du groupement est {} : son objet et sa clé de répartition ne peuvent plus changer",
            conv.reference,
            other.label()
        ))),
    }
}

/// Rewrites the groupement's convention with its current terms and accepted members, as they
/// are once it holds the lock of the groupement's membership.
pub(super) async fn refresh_convention(ctx: &Ctx<'_>, g: &Groupement) -> Result<(), Problem> {
    one_at_a_time(ctx, g, async |g| {
        let members: Vec<String> = members(ctx.store, &g.id).await?.into_iter().map(|m| m.applicant.id).collect();
        if members.is_empty() {
            return Ok(());
        }
        link_convention(ctx, g, members, &[]).await
    })
    .await
}

/// The namespace of the lock of a groupement's membership ([`Store::lock_key`]).
const MEMBERSHIP_LOCK: &str = "groupement-membership";

/// Runs `change` of the members of `g` (acceptance, withdrawal, refresh of the convention) alone:
/// under the lock of `g`'s membership, across processes, on `g` read again once it is held. Each
/// change reads the members, then rewrites the convention and records its decisions (in one
/// transaction); two at once would write the convention from a list another one changed.
async fn one_at_a_time<T>(
    ctx: &Ctx<'_>,
    g: &Groupement,
    change: impl AsyncFnOnce(&Groupement) -> Result<T, Problem>,
) -> Result<T, Problem> {
    let lock = ctx.store.lock_key(MEMBERSHIP_LOCK, &g.id).await?;
    let done = match super::get(ctx.store, &g.id).await {
        Ok(Some(current)) => change(&current).await,
        Ok(None) => Err(super::not_found(&g.id)),
        Err(p) => Err(p),
    };
    lock.release().await?;
    done
}

/// The convention parameters the groupement determines.
fn convention_parameters(g: &Groupement) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("objet".into(), Value::from(g.object.clone()));
    params.insert("cle_repartition".into(), Value::from(g.cost_key_label.clone()));
    params.insert("part_coordinateur".into(), Value::from(g.terms.coordinator_share_percent));
    params.insert("part_membres".into(), Value::from(100 - g.terms.coordinator_share_percent));
    params
}

/// The parameter of the convention constitutive (model version 2 on) naming the établissements
/// the members equip.
const ESTABLISHMENTS_PARAMETER: &str = "etablissements";

/// [`convention_parameters`] for a convention of `model` between `members`: a model that words
/// the établissements they equip ([`ESTABLISHMENTS_PARAMETER`]) names them by the members' kinds
/// ([`costs::Establishments`]: écoles, collèges, lycées or établissements).
fn parameters_for(g: &Groupement, model: &ConventionModel, members: &[Application]) -> Map<String, Value> {
    let mut params = convention_parameters(g);
    if model.parameters.iter().any(|p| p.key == ESTABLISHMENTS_PARAMETER) {
        params.insert(ESTABLISHMENTS_PARAMETER.into(), Value::from(costs::Establishments::of(members).many()));
    }
    // The convention API refuses exactly these terms (they are edited on the groupement).
    debug_assert!(params.keys().all(|k| workflow::GROUPEMENT_TERMS.contains(&k.as_str())), "{params:?}");
    params
}

/// The terms of the convention constitutive the groupement sets, as its readers name them, signed
/// and current (the members' part follows from the coordinator's).
const SIGNED_TERMS: [(&str, &str, &str); 3] = [
    ("objet", "l'objet signé", "celui"),
    ("cle_repartition", "la clé de répartition signée", "celle"),
    ("part_coordinateur", "la part du coordonnateur signée", "celle"),
];

/// A convention parameter in words (a number as written, a text as is).
fn parameter_text(value: &Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string())
}

/// Organisation names, « A, B et C ».
fn names(orgs: &[&OrgRef]) -> String {
    naming::and_list(&orgs.iter().map(|o| o.name.clone()).collect::<Vec<_>>())
}

/// What the convention constitutive `conv` (the one in force) does not bind: accepted members
/// that are not its parties, parties no longer accepted, and terms of the groupement edited since
/// it was signed (object, cost key, coordinator's part); empty when it carries the groupement as
/// it is. Each entry in words.
pub(super) async fn unsigned_changes(store: &Store, g: &Groupement, conv: &Convention) -> Result<Vec<String>, Problem> {
    Ok(changes_from(g, &members(store, &g.id).await?, conv))
}

/// [`unsigned_changes`] of the convention `conv` were `members` the accepted members.
fn changes_from(g: &Groupement, members: &[Application], conv: &Convention) -> Vec<String> {
    let parties: Vec<&OrgRef> = conv.parties.iter().filter(|p| p.key == "membre").map(|p| &p.org).collect();
    let mut changes = Vec::new();
    let joining: Vec<&OrgRef> =
        members.iter().map(|m| &m.applicant).filter(|a| !parties.iter().any(|p| p.id == a.id)).collect();
    match joining.len() {
        0 => {}
        1 => changes.push(format!("{}, membre accepté, n'y est pas partie", names(&joining))),
        _ => changes.push(format!("{}, membres acceptés, n'y sont pas parties", names(&joining))),
    }
    let leaving: Vec<&OrgRef> =
        parties.iter().copied().filter(|p| !members.iter().any(|m| m.applicant.id == p.id)).collect();
    match leaving.len() {
        0 => {}
        1 => changes.push(format!("{} y est partie sans être membre accepté", names(&leaving))),
        _ => changes.push(format!("{} y sont parties sans être membres acceptés", names(&leaving))),
    }
    let current = convention_parameters(g);
    for (key, signed_label, current_label) in SIGNED_TERMS {
        let (Some(now), signed) = (current.get(key), conv.parameters.get(key)) else { continue };
        let same = signed.is_some_and(|s| s == now || (s.as_f64().is_some() && s.as_f64() == now.as_f64()));
        if !same {
            let signed = signed.map(parameter_text).unwrap_or_default();
            let now = parameter_text(now);
            changes.push(format!("{signed_label} est « {signed} », {current_label} du groupement « {now} »"));
        }
    }
    changes
}

/// Each member's signatory on the convention constitutive with its empowering act, the
/// délibération of its application (who signs, and in what quality, stay as recorded).
fn member_acts(conv: Option<&Convention>, members: &[Application]) -> BTreeMap<String, Signatory> {
    let recorded = conv.map(signatories::current).unwrap_or_default();
    let mut acts = BTreeMap::new();
    for app in members {
        let key = signatories::party_org_key("membre", &app.applicant.id);
        let mut signatory = recorded.get(&key).cloned().unwrap_or_default();
        signatory.act_number = Some(app.deliberation_number.clone());
        signatory.act_date = Some(app.deliberation_date.clone());
        acts.insert(key, signatory);
    }
    acts
}

/// Each member's own share of the common expenses, in hundredths of a percent: the members'
/// part split by the cost key over their declared quantities (summing exactly to that part),
/// what the convention's cost annex prints for each.
fn member_shares(g: &Groupement, members: &[Application]) -> BTreeMap<String, i64> {
    let part = i64::from(100 - g.terms.coordinator_share_percent.min(100)) * 100;
    let quantities: Vec<_> = members.iter().map(|m| m.quantities.for_key()).collect();
    let split = super::shares::split(part, &g.terms.cost_key, &quantities);
    members.iter().zip(split).map(|(m, bp)| (signatories::party_org_key("membre", &m.applicant.id), bp)).collect()
}

/// The convention a change of the groupement edits: the avenant in preparation of the one in
/// force if there is one (a refused one, back in draft, included), else the one in force.
async fn edited_convention_id(store: &Store, g: &Groupement) -> Result<Option<String>, Problem> {
    let Some(in_force) = super::constitutive_id(store, g).await? else { return Ok(None) };
    Ok(Some(super::avenant_in_preparation(store, &in_force).await?.unwrap_or(in_force)))
}

/// Creates the groupement's convention with `member_ids`, or sets its members, and writes the
/// `decisions` (the acceptances of the members it joins, the withdrawal of the one it leaves
/// out): a draft or a convention in signature is edited (signatures collected are voided by the
/// workflow), an active one is amended (or its avenant in preparation edited); the groupement
/// keeps linking its first convention. The convention created or edited, the groupement's link
/// and the decisions are written in one transaction (all or nothing: a failure leaves no draft
/// unlinked, no member of the convention whose application still awaits its decision, no member
/// left out of it whose application still reads accepted); only the avenant of an active
/// convention is drafted before, in its own ([`workflow::amend`]: the next change edits it).
async fn link_convention(
    ctx: &Ctx<'_>,
    g: &Groupement,
    member_ids: Vec<String>,
    decisions: &[Decision<'_>],
) -> Result<(), Problem> {
    let conv_ctx = ctx.conventions();
    let mut parties = BTreeMap::new();
    parties.insert("coordinateur".to_string(), PartyInput::One(g.coordinator.id.clone()));
    parties.insert("membre".to_string(), PartyInput::Many(member_ids.clone()));
    let (current, adopted) = match edited_convention_id(ctx.store, g).await? {
        Some(id) => (get_convention(ctx.store, ctx.models, &id).await?, false),
        None => match unlinked_draft(ctx.store, g).await? {
            Some(id) => (get_convention(ctx.store, ctx.models, &id).await?, true),
            None => (None, false),
        },
    };
    let mut members = list(ctx.store, &g.id, None).await?;
    members.retain(|a| member_ids.contains(&a.applicant.id));
    let signatories = member_acts(current.as_ref(), &members);
    let shares = member_shares(g, &members);
    // Its end covers the contract (article 10); its start moves to its submission (the model's
    // `starts_at_submission`), after which every member's signature follows.
    let end_date = g.convention_end().map(|d| d.to_string());
    let model = match &current {
        Some(conv) => find_model(ctx.models, &conv.model_id, Some(conv.model_version))?,
        None => find_model(ctx.models, super::CONVENTION_MODEL, None)?,
    };
    let parameters = parameters_for(g, model, &members);
    let Some(conv) = current else {
        let new = NewConvention {
            model: model.id.clone(),
            version: Some(model.version),
            parties,
            parameters,
            start_date: ctx.today().to_string(),
            end_date,
            title: Some(constitutive_title(g)),
            supersedes: None,
            backdate_reason: None,
            signatories,
            party_shares: shares,
        };
        let checked = workflow::check_new(&conv_ctx, new).await?;
        let mut tx = ctx.store.begin_write().await?;
        let id = workflow::create_constitutive_in(&conv_ctx, &mut tx, &checked).await?;
        return commit_linked(ctx, tx, g, &id, false, decisions).await;
    };
    let conv = match conv.status {
        ConventionStatus::Draft | ConventionStatus::InSignature => conv,
        ConventionStatus::Active => workflow::amend(&conv_ctx, &conv).await?,
        other => {
            return Err(Problem::conflict(format!(
                "la convention {} du groupement est {} : attendez sa prise d'effet pour y joindre un membre",
                conv.reference,
                other.label()
            )))
        }
    };
    let patch = ConventionPatch {
        parties: Some(parties),
        parameters: Some(parameters),
        signatories: Some(signatories.into_iter().map(|(key, s)| (key, s.into())).collect()),
        party_shares: Some(shares),
        end_date,
        ..ConventionPatch::default()
    };
    let checked = workflow::check_edit(&conv_ctx, &conv, conv.version, patch).await?;
    let mut tx = ctx.store.begin_write().await?;
    workflow::update_constitutive_in(&conv_ctx, &mut tx, &checked).await?;
    commit_linked(ctx, tx, g, &conv.id, adopted, decisions).await
}

/// The title of the groupement's convention constitutive: it names the groupement's reference.
fn constitutive_title(g: &Groupement) -> String {
    format!("{}{}", constitutive_title_prefix(g), g.title)
}

/// What [`constitutive_title`] starts with, whatever the groupement's title became since.
fn constitutive_title_prefix(g: &Groupement) -> String {
    format!("Convention constitutive du groupement de commandes {} – ", g.reference)
}

/// The tail of [`link_convention`], in its transaction `tx`: the groupement links the convention
/// `id` if it linked none (its first convention; an avenant is read in its stead once in force),
/// audited (`adopted`: a draft a failure had left unlinked, [`unlinked_draft`]), the
/// `decisions` are written ([`decide_in`]), then all is committed.
async fn commit_linked(
    ctx: &Ctx<'_>,
    mut tx: Tx,
    g: &Groupement,
    id: &str,
    adopted: bool,
    decisions: &[Decision<'_>],
) -> Result<(), Problem> {
    if g.first_convention_id.is_none() {
        let reference: String =
            sqlx::query_scalar("SELECT reference FROM conventions WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
        let summary = if adopted {
            json!({ "convention": reference, "adopted": true })
        } else {
            json!({ "convention": reference })
        };
        write_convention_link(ctx, &mut tx, g, Some(id), None, summary).await?;
    }
    decide_in(ctx, &mut tx, g, decisions).await?;
    tx.commit().await?;
    Ok(())
}

/// The draft convention constitutive a failure left unlinked when `g` links none: before its
/// creation, its signatories and the groupement's link were one transaction, a crash between
/// them left a draft of the groupement's model that no groupement links, its coordinator party
/// `g`'s coordinator, its title naming `g`'s reference ([`constitutive_title_prefix`]). Only
/// when there is exactly one (never submitted, an original, not an avenant) is it taken as `g`'s
/// own: [`link_convention`] then edits it with the members and links it, instead of drafting a
/// second one. None when `g` links a convention.
async fn unlinked_draft(store: &Store, g: &Groupement) -> Result<Option<String>, Problem> {
    if g.first_convention_id.is_some() {
        return Ok(None);
    }
    let drafts: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.id, c.title FROM conventions c WHERE c.model_id = $1 AND c.status = 'draft' \
         AND c.amends_id IS NULL AND EXISTS (SELECT 1 FROM convention_parties p WHERE p.convention_id = c.id \
         AND p.party_key = 'coordinateur' AND p.org_id = $2) \
         AND NOT EXISTS (SELECT 1 FROM groupements o WHERE o.convention_id = c.id)",
    )
    .bind(super::CONVENTION_MODEL)
    .bind(&g.coordinator.id)
    .fetch_all(store.pool())
    .await?;
    let prefix = constitutive_title_prefix(g);
    let mut named = drafts.into_iter().filter(|(_, title)| title.starts_with(&prefix));
    match (named.next(), named.next()) {
        (Some((id, _)), None) => Ok(Some(id)),
        _ => Ok(None),
    }
}

/// Sets the convention `g` links (`None`: none), where it still links `replacing` when given,
/// audited `groupements.convention` with `summary`, in the write transaction `tx`.
async fn write_convention_link(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    g: &Groupement,
    link: Option<&str>,
    replacing: Option<&str>,
    summary: serde_json::Value,
) -> Result<(), Problem> {
    sqlx::query("UPDATE groupements SET convention_id = $1 WHERE id = $2 AND ($3 IS NULL OR convention_id = $3)")
        .bind(link)
        .bind(&g.id)
        .bind(replacing)
        .execute(&mut **tx)
        .await?;
    ctx.record(tx, "groupements.convention", &g.id, Some(&g.coordinator.id), summary).await?;
    Ok(())
}

/// Each member's share of the common expenses and its own orders at the awarded unit prices
/// (409 before the award).
pub fn shares_of(g: &Groupement, members: &[Application]) -> Result<Shares, Problem> {
    let Some(award) = &g.award else {
        return Err(Problem::conflict(
            "les commandes de chaque membre ne sont chiffrées qu'après l'attribution du marché",
        ));
    };
    Ok(costs::shares(g, members, &award.all_unit_prices()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantities(schools: i64, classes: i64, pupils: i64, teachers: i64) -> MemberQuantities {
        MemberQuantities { schools, classes, pupils, teacher_accounts: teachers, parent_accounts: 0 }
    }

    #[test]
    fn teacher_accounts_are_judged_against_declared_classes() {
        assert_eq!(too_many_teachers(&quantities(11, 75, 1800, 375)), None);
        let refusal = too_many_teachers(&quantities(11, 75, 1800, 376)).expect("over five a class");
        assert_eq!(refusal, "376 comptes enseignants, c'est plus de 5 par classe (au plus 375) pour 75 classes");
    }

    #[test]
    fn without_classes_teacher_accounts_are_judged_against_the_classes_pupils_make() {
        // 1 800 pupils make 72 classes: 110 accounts (one for 16 pupils) are ordinary.
        assert_eq!(too_many_teachers(&quantities(11, 0, 1800, 110)), None);
        assert_eq!(too_many_teachers(&quantities(11, 0, 1800, 360)), None);
        let refusal = too_many_teachers(&quantities(11, 0, 1800, 361)).expect("over five a reckoned class");
        assert_eq!(
            refusal,
            "361 comptes enseignants, c'est plus de 5 par classe (au plus 360) sans nombre de classes déclaré, \
             pour 72 classes comptées d'après 1800 élèves et 11 écoles ; indiquez le nombre de classes s'il est plus grand"
        );
        // No pupils known: one class a school.
        assert!(too_many_teachers(&quantities(3, 0, 0, 15)).is_none());
        assert!(too_many_teachers(&quantities(3, 0, 0, 16)).is_some());
    }
}
