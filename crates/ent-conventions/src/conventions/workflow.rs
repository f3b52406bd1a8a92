//! The rules of a convention's life: creation and validation, edits that void
//! signatures, the visa and signature circuit, refusal, termination, avenants,
//! signed copies, and the date-driven moves (activation, expiry).

use super::frozen::{Frozen, Rendering};
use super::model::{ConventionModel, ParameterType, SignatureMode};
use super::signatories::Signatory;
use super::{effective_controller, find_model, get_convention, roles_key, Convention, RolesKey, Status};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use ent_kernel::error::{conflict_unless, Checks, Problem, ProblemKind};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::store::{expect_same_version, expect_version};
use ent_kernel::store::{new_id, timestamp, Backend, SerialLock, Store, Tx};
use ent_kernel::validate::parse_date;
use ent_platform::audit::{self, Target};
use ent_platform::identity::authz::{self, forbidden, in_org_scope};
use ent_platform::identity::{Actor, Binding};
use ent_platform::registry::queries::{get_org_in, missing_org};
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::AnyConnection;
use std::collections::BTreeMap;

/// Everything a workflow step needs.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub models: &'a [ConventionModel],
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// Today in France, where convention dates are meant.
    pub fn today(&self) -> NaiveDate {
        today_in_france(self.now)
    }
}

use ent_kernel::clock::{french_date, term_end, today_in_france};

/// One organisation, or several for a `multiple` party, or one organisation with its signatory.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PartyInput {
    One(String),
    Many(Vec<String>),
    Detailed(PartyDetail),
}

/// A party given with who signs for it and the act that empowers them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyDetail {
    /// The organisation (id, code or kind:code).
    pub org: String,
    pub signatory: Option<Signatory>,
}

impl PartyInput {
    fn keys(&self) -> Vec<&str> {
        match self {
            PartyInput::One(k) => vec![k.as_str()],
            PartyInput::Many(ks) => ks.iter().map(String::as_str).collect(),
            PartyInput::Detailed(d) => vec![d.org.as_str()],
        }
    }
}

/// The signatories given with the parties, by party key.
fn signatories_in(parties: &BTreeMap<String, PartyInput>) -> BTreeMap<String, Signatory> {
    parties
        .iter()
        .filter_map(|(key, p)| match p {
            PartyInput::Detailed(PartyDetail { signatory: Some(s), .. }) => Some((key.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// Checks the signatories given (known parties, past dates); refuses with every error.
fn check_signatories(
    ctx: &Ctx<'_>,
    model: &ConventionModel,
    given: &BTreeMap<String, Signatory>,
) -> Result<(), Problem> {
    let mut checks = Checks::default();
    super::signatories::check_given(model, given, ctx.today(), &mut checks);
    checks.finish()
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConvention {
    /// Model id, e.g. `tripartite-premier-degre`.
    pub model: String,
    /// Model version; the latest when absent.
    pub version: Option<u32>,
    /// Party key → organisation (id, code or kind:code), or a list for a multiple party.
    pub parties: BTreeMap<String, PartyInput>,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// `YYYY-MM-DD`.
    #[schemars(extend("format" = "date"))]
    pub start_date: String,
    /// `YYYY-MM-DD`; start + the model's duration when absent.
    #[schemars(extend("format" = "date"))]
    pub end_date: Option<String>,
    pub title: Option<String>,
    /// A convention in force on the same schools, of another model and other RGPD roles, that
    /// this one replaces (id or reference): it is terminated when this one takes effect.
    pub supersedes: Option<String>,
    /// Required when `start_date` is before today: why the convention takes effect in the past.
    pub backdate_reason: Option<String>,
    /// Party key or `key:org_id` → who signs for it and the act that empowers them, besides those
    /// given with `parties` (each member's délibération): set by the groupement's flow only,
    /// never read from a request.
    #[serde(skip)]
    #[schemars(skip)]
    pub signatories: BTreeMap<String, Signatory>,
    /// `key:org_id` → the organisation's own cost share, in hundredths of a percent
    /// ([`ConventionPatch::party_shares`]): set by the groupement's flow only.
    #[serde(skip)]
    #[schemars(skip)]
    pub party_shares: BTreeMap<String, i64>,
}

/// Fields of `PATCH /conventions/{id}`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConventionPatch {
    pub title: Option<String>,
    /// Replaces the given parameters (others kept).
    pub parameters: Option<Map<String, Value>>,
    #[schemars(extend("format" = "date"))]
    pub start_date: Option<String>,
    #[schemars(extend("format" = "date"))]
    pub end_date: Option<String>,
    pub parties: Option<BTreeMap<String, PartyInput>>,
    /// Party key → who signs for it and the act that empowers them (replaces the given parties' ones).
    pub signatories: Option<BTreeMap<String, Signatory>>,
    /// Required when the new `start_date` is before today.
    pub backdate_reason: Option<String>,
    /// `key:org_id` → the organisation's own cost share, in hundredths of a percent (each
    /// member's quote-part in a convention constitutive): set by the groupement's flow only,
    /// never read from a request; absent, the shares recorded are kept.
    #[serde(skip)]
    #[schemars(skip)]
    pub party_shares: Option<BTreeMap<String, i64>>,
}

/// What a convention would be: checked before anything is written.
struct Draft {
    title: String,
    parties: Vec<(String, Org)>,
    parameters: Map<String, Value>,
    start: NaiveDate,
    end: NaiveDate,
    schools: Vec<Org>,
    /// Party key → signatory.
    signatories: BTreeMap<String, Signatory>,
    /// `key:org_id` ([`super::signatories::party_org_key`]) → the organisation's own cost share,
    /// in hundredths of a percent.
    shares: BTreeMap<String, i64>,
}

/// The caller naming organisations as parties. One it may not read (`authz::reads`) is spoken
/// of as one that does not exist: the words of the key it sent naming nothing, never its name,
/// kind or type.
struct Naming<'a> {
    store: &'a Store,
    actor: &'a Actor,
    /// Organisation id → the key the caller sent for it (the first one).
    sent: BTreeMap<String, String>,
    /// Organisation id → whether the caller reads it, asked once.
    read: BTreeMap<String, bool>,
}

impl<'a> Naming<'a> {
    fn new(store: &'a Store, actor: &'a Actor) -> Self {
        Naming { store, actor, sent: BTreeMap::new(), read: BTreeMap::new() }
    }

    async fn reads(&mut self, org: &Org) -> Result<bool, Problem> {
        if let Some(read) = self.read.get(&org.id) {
            return Ok(*read);
        }
        let read = authz::reads(self.store, self.actor, org).await?;
        self.read.insert(org.id.clone(), read);
        Ok(read)
    }

    /// `detail` about `org`, sent as `key`, when the caller reads it; else what `key` naming
    /// nothing answers.
    async fn about(&mut self, org: &Org, key: &str, detail: impl FnOnce() -> String) -> Result<String, Problem> {
        Ok(if self.reads(org).await? { detail() } else { missing_org(key).detail })
    }

    /// The key the caller sent for `org` (its id if it was not named).
    fn key_of(&self, org: &Org) -> String {
        self.sent.get(&org.id).cloned().unwrap_or_else(|| org.id.clone())
    }
}

/// The organisations the input names, by party: each of a kind (and type) the model expects.
/// A caller bound to none of those it names (nor of `parties_before`, the edited convention's
/// parties it may still write for: [`writers_before`]) is refused (403) before anything is said
/// of them, so that an organisation it may not read answers as a missing one, refusal for refusal.
async fn resolve_parties(
    naming: &mut Naming<'_>,
    model: &ConventionModel,
    input: &BTreeMap<String, PartyInput>,
    parties_before: &[String],
    checks: &mut Checks,
) -> Result<Vec<(String, Org)>, Problem> {
    let mut parties = Vec::new();
    let mut named = Vec::new();
    for key in input.keys() {
        if !model.parties.iter().any(|p| &p.key == key) {
            checks.fail(&format!("parties.{key}"), format!("le modèle {} n'a pas de partie « {key} »", model.id));
        }
    }
    for spec in &model.parties {
        let field = format!("parties.{}", spec.key);
        let Some(given) = input.get(&spec.key) else {
            checks.fail(&field, format!("partie obligatoire : {}", spec.label));
            continue;
        };
        let keys = given.keys();
        if keys.len() != 1 && !spec.multiple {
            checks.fail(&field, "une seule organisation attendue");
            continue;
        }
        if keys.is_empty() {
            checks.fail(&field, "au moins une organisation attendue");
        }
        for key in keys {
            let org = match authz::resolve_readable(naming.store, naming.actor, key).await {
                Ok(org) => org,
                Err(e) => {
                    checks.fail(&field, e.detail);
                    continue;
                }
            };
            naming.sent.entry(org.id.clone()).or_insert_with(|| key.trim().to_string());
            named.push(org.id.clone());
            if !spec.kinds.contains(&org.kind) {
                let allowed: Vec<&str> = spec.kinds.iter().map(|k| k.label()).collect();
                let detail = naming
                    .about(&org, key, || {
                        format!("{} est un(e) {} ; attendu : {}", org.name, org.kind.label(), allowed.join(", "))
                    })
                    .await?;
                checks.fail(&field, detail);
                continue;
            }
            if !spec.etab_types.is_empty() && !org.etab_type.is_some_and(|t| spec.etab_types.contains(&t)) {
                let detail = naming
                    .about(&org, key, || {
                        format!("{} n'est pas d'un type d'établissement prévu par le modèle", org.name)
                    })
                    .await?;
                checks.fail(&field, detail);
                continue;
            }
            parties.push((spec.key.clone(), org));
        }
    }
    named.extend(parties_before.iter().cloned());
    require_party_member(naming.actor, model, &named)?;
    Ok(parties)
}

fn check_parameters(
    model: &ConventionModel,
    given: &Map<String, Value>,
    start: &str,
    checks: &mut Checks,
) -> Map<String, Value> {
    let mut params = Map::new();
    for key in given.keys() {
        if !model.parameters.iter().any(|p| &p.key == key) {
            checks.fail(&format!("parameters.{key}"), "paramètre inconnu du modèle");
        }
    }
    for spec in &model.parameters {
        let field = format!("parameters.{}", spec.key);
        let value = if spec.key == "start_date" {
            Some(Value::String(start.to_string()))
        } else {
            given.get(&spec.key).cloned().or_else(|| spec.default.clone())
        };
        let Some(value) = value.filter(|v| !v.is_null()) else {
            if spec.required {
                checks.fail(&field, format!("paramètre obligatoire : {}", spec.label));
            }
            continue;
        };
        let ok = match spec.kind {
            ParameterType::Text => value.is_string(),
            ParameterType::Integer | ParameterType::Cents => value.as_i64().is_some(),
            ParameterType::Percent => value.as_f64().is_some_and(|v| (0.0..=100.0).contains(&v)),
            ParameterType::Boolean => value.is_boolean(),
            ParameterType::Date => value.as_str().is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        };
        if !ok {
            let expected = match spec.kind {
                ParameterType::Text => "un texte",
                ParameterType::Integer => "un entier",
                ParameterType::Cents => "un montant entier en centimes",
                ParameterType::Percent => "un pourcentage entre 0 et 100",
                ParameterType::Boolean => "vrai ou faux",
                ParameterType::Date => "une date AAAA-MM-JJ",
            };
            checks.fail(&field, format!("{} : attendu {expected}", spec.label));
            continue;
        }
        params.insert(spec.key.clone(), value);
    }
    params
}

fn check_shares(model: &ConventionModel, params: &Map<String, Value>, checks: &mut Checks) {
    let total: f64 = model
        .cost_sharing
        .iter()
        .map(|s| {
            s.share
                .or_else(|| s.share_parameter.as_ref().and_then(|k| params.get(k)).and_then(Value::as_f64))
                .unwrap_or(0.0)
        })
        .sum();
    if (total - 100.0).abs() > 1e-6 {
        checks.fail("parameters", format!("les parts de financement totalisent {total} % au lieu de 100 %"));
    }
}

/// A school a convention covers, and the party organisation that brings it (itself for an
/// établissement party).
struct Covered {
    school: Org,
    by: Org,
}

/// The établissements a convention covers, from the model's `covers` rule, within the
/// département a DSDEN party confines it to, else within `fixed` (an existing convention's,
/// [`super::convention_departement`]: an avenant covers the schools of the convention it amends).
async fn derive_schools(
    store: &Store,
    model: &ConventionModel,
    parties: &[(String, Org)],
    fixed: Option<&str>,
) -> Result<Vec<Covered>, Problem> {
    let Some(party_key) = &model.covers.party else { return Ok(vec![]) };
    let departement = super::dsden_departement(parties.iter().map(|(_, o)| (o.kind, o.code.as_str()))).or(fixed);
    let mut schools = Vec::new();
    for (_, org) in parties.iter().filter(|(k, _)| k == party_key) {
        if org.kind == OrgKind::Etablissement {
            schools.push(Covered { school: org.clone(), by: org.clone() });
            continue;
        }
        let covered = super::covered_etablissements(store, org).await?.into_iter().filter(|o| {
            (model.covers.etab_types.is_empty() || o.etab_type.is_some_and(|t| model.covers.etab_types.contains(&t)))
                && super::within_departement(departement, o)
        });
        schools.extend(covered.map(|school| Covered { school, by: org.clone() }));
    }
    Ok(schools)
}

/// The draft of a convention as named; `departement` is the one an existing convention is
/// confined to (an avenant's, [`departement_of_existing`]): its schools are those of that
/// département, as the convention in force covers them, though its collectivité party came to
/// cover écoles of another one since (a commune delegating its ENT to an EPCI). Without it, an
/// académie-controlled draft whose écoles span two départements is refused
/// ([`super::require_one_dsden`]).
#[allow(clippy::too_many_arguments)]
async fn build_draft(
    ctx: &Ctx<'_>,
    model: &ConventionModel,
    title: Option<String>,
    parties_input: &BTreeMap<String, PartyInput>,
    parties_before: &[String],
    params_input: &Map<String, Value>,
    start_date: &str,
    end_date: Option<&str>,
    departement: Option<&str>,
) -> Result<Draft, Problem> {
    let mut checks = Checks::default();
    let start = checks.date("start_date", start_date);
    let store = ctx.store;
    let mut naming = Naming::new(store, ctx.actor);
    let parties = resolve_parties(&mut naming, model, parties_input, parties_before, &mut checks).await?;
    // In the same round as the parties: a party the caller may not read, refused for its scope,
    // fails beside the other errors exactly as a key naming nothing does.
    let covered = derive_schools(store, model, &parties, departement).await?;
    check_schools_in_scope(&mut naming, &parties, &covered, &mut checks).await?;
    let parameters = check_parameters(model, params_input, start_date, &mut checks);
    check_shares(model, &parameters, &mut checks);
    let end = match (start, end_date) {
        (_, Some(end)) => checks.date("end_date", end),
        (Some(start), None) => term_end(start, model.duration_months),
        (None, None) => None,
    };
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            checks.fail("end_date", format!("la fin ({end}) doit suivre le début ({start})"));
        }
    }
    checks.finish()?;
    if model.covers.party.is_some() && covered.is_empty() {
        return Err(Problem::invalid_field("parties", "aucun établissement couvert par cette convention"));
    }
    let schools: Vec<Org> = covered.into_iter().map(|c| c.school).collect();
    if let Some((_, controller)) = parties.iter().find(|(key, _)| *key == model.rgpd.controller) {
        let refs: Vec<_> = schools.iter().map(Org::as_ref).collect();
        super::require_one_dsden(&mut *store.conn().await?, &controller.as_ref(), &refs).await?;
    }
    Ok(Draft {
        title: title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| default_title(model, &parties)),
        parties,
        parameters,
        start: start.expect("checked"),
        end: end.expect("checked"),
        schools,
        signatories: signatories_in(parties_input),
        shares: BTreeMap::new(),
    })
}

/// A length of time as a convention's text states it: whole months by the rule of
/// [`term_end`], then the days left (« 10 mois et 15 jours »).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub months: u32,
    pub days: u64,
}

impl Span {
    /// The span of a convention from `start` to `end`, its last day (both included); `None`
    /// when `end` is before `start`.
    pub fn between(start: NaiveDate, end: NaiveDate) -> Option<Span> {
        let ends = |months: u32| term_end(start, months).filter(|last| *last <= end);
        let mut months = 0;
        while ends(months + 1).is_some() {
            months += 1;
        }
        let days = match ends(months) {
            Some(last) if months > 0 => (end - last).num_days(),
            _ => (end - start).num_days() + 1,
        };
        Some(Span { months, days: u64::try_from(days).ok()? })
    }

    /// The last day of a period of this span from `start`: the inverse of [`Span::between`].
    pub fn end_from(self, start: NaiveDate) -> Option<NaiveDate> {
        match self.months {
            0 => start.checked_add_days(Days::new(self.days))?.pred_opt(),
            months => term_end(start, months)?.checked_add_days(Days::new(self.days)),
        }
    }
}

fn default_title(model: &ConventionModel, parties: &[(String, Org)]) -> String {
    let names: Vec<&str> = parties.iter().skip(1).map(|(_, o)| o.name.as_str()).collect();
    if names.is_empty() {
        model.title.clone()
    } else {
        format!("{} – {}", model.title, names.join(", "))
    }
}

/// Every covered school must lie in the scope of each collectivité or académie party, each
/// failure recorded in `checks`. What the caller may not read is not described: the party, or
/// the school's, answers as a missing one.
async fn check_schools_in_scope(
    naming: &mut Naming<'_>,
    parties: &[(String, Org)],
    covered: &[Covered],
    checks: &mut Checks,
) -> Result<(), Problem> {
    let field_of = |org: &Org| {
        let key = parties.iter().find(|(_, o)| o.id == org.id).map_or("", |(k, _)| k.as_str());
        format!("parties.{key}")
    };
    let mut failures: Vec<(String, String)> = Vec::new();
    for (key, party) in parties.iter().filter(|(_, o)| o.kind != OrgKind::Etablissement && o.kind != OrgKind::Editeur) {
        for Covered { school, by } in covered {
            if in_org_scope(naming.store, party, school).await? {
                continue;
            }
            let of = || super::naming::of_org(&party.as_ref()).of;
            let failure = if !naming.reads(party).await? {
                (format!("parties.{key}"), missing_org(&naming.key_of(party)).detail)
            } else if naming.reads(school).await? {
                (
                    format!("parties.{key}"),
                    format!("{} ({}) n'est pas dans le périmètre {}", school.name, school.code, of()),
                )
            } else {
                let detail = naming
                    .about(by, &naming.key_of(by), || {
                        format!("un établissement que couvre {} n'est pas dans le périmètre {}", by.name, of())
                    })
                    .await?;
                (field_of(by), detail)
            };
            if !failures.contains(&failure) {
                failures.push(failure);
            }
        }
    }
    for (field, detail) in failures {
        checks.fail(&field, detail);
    }
    Ok(())
}

/// What a new or edited convention is checked against the others on its schools.
struct Coverage<'a> {
    model: &'a ConventionModel,
    schools: &'a [Org],
    start: NaiveDate,
    end: NaiveDate,
    /// Its lineage (root id): an avenant does not conflict with its original.
    lineage: Option<&'a str>,
    roles: RolesKey,
    /// The id of the convention it explicitly replaces.
    supersedes: Option<&'a str>,
}

/// A live convention on one of the schools a new one covers, as [`check_no_overlap`] reads it.
#[derive(sqlx::FromRow)]
struct Other {
    id: String,
    reference: String,
    model_id: String,
    model_version: i64,
    end_date: String,
    non_renewal_at: Option<String>,
}

impl Other {
    /// Whether it is renewed tacitly at its term: a renewable model, no non-reconduction
    /// ([`super::renewal::renews`]).
    fn renews(&self, models: &[ConventionModel]) -> bool {
        let renewable = u32::try_from(self.model_version)
            .ok()
            .and_then(|v| find_model(models, &self.model_id, Some(v)).ok())
            .is_some_and(|m| m.renewable);
        renewable && self.non_renewal_at.is_none()
    }

    /// Whether a convention starting on `start` takes over from it the day after its term,
    /// where it is then not renewed ([`super::renewal::succession`]).
    fn succeeded_on(&self, models: &[ConventionModel], start: NaiveDate) -> Result<bool, Problem> {
        let end = parse_date("end_date", &self.end_date)?;
        Ok(self.renews(models) && end.succ_opt() == Some(start))
    }

    /// Whether it still covers the school on `start`: its term is not before, or it is renewed
    /// tacitly at its term and `start` is not the day after that term ([`Other::succeeded_on`]).
    fn overlaps_from(&self, models: &[ConventionModel], start: NaiveDate) -> Result<bool, Problem> {
        let end = parse_date("end_date", &self.end_date)?;
        Ok(end >= start || (self.renews(models) && !self.succeeded_on(models, start)?))
    }

    /// A successor from the day after its term ends its tacit renewal on every school it
    /// covers: refused unless it covers them all (or replaces it explicitly, `supersedes`), as
    /// the schools it left out would lose their convention.
    async fn require_whole_succession(&self, conn: &mut AnyConnection, new: &Coverage<'_>) -> Result<(), Problem> {
        if new.supersedes == Some(self.id.as_str()) {
            return Ok(());
        }
        let schools: Vec<String> = sqlx::query_scalar("SELECT org_id FROM convention_schools WHERE convention_id = $1")
            .bind(&self.id)
            .fetch_all(conn)
            .await?;
        let left_out = schools.iter().filter(|id| !new.schools.iter().any(|s| &s.id == *id)).count();
        if left_out == 0 {
            return Ok(());
        }
        Err(Problem::conflict(format!(
            "la convention {reference} est reconduite tacitement à son terme, le {end}, sauf si une autre lui succède \
             le lendemain : celle-ci lui succéderait sans couvrir {left_out} de ses écoles, qui perdraient alors leur \
             convention. Couvrez toutes ses écoles, notifiez à temps la non-reconduction de {reference}, ou indiquez \
             que la nouvelle convention la remplace (champ supersedes)",
            reference = self.reference,
            end = french_date(&self.end_date),
        ))
        .with_extra(json!({ "conflicting_convention": self.reference })))
    }

    /// For a convention ending before the new one but renewed tacitly: how to succeed it.
    fn renewal_hint(&self, start: NaiveDate) -> Result<String, Problem> {
        let end = parse_date("end_date", &self.end_date)?;
        if end >= start {
            return Ok(String::new());
        }
        let next = end.succ_opt().unwrap_or(end);
        Ok(format!(
            " (elle est reconduite tacitement à son terme, le {}) : faites commencer la nouvelle convention le {}, \
             lendemain de ce terme, où elle lui succède sans reconduction, ou notifiez sa non-reconduction",
            french_date(&self.end_date),
            french_date(&next.to_string())
        ))
    }
}

/// Refuses two live conventions of the same model covering a school over overlapping dates,
/// and one of another model designating other RGPD roles unless it is explicitly superseded.
/// A convention renewed tacitly covers beyond its stored term ([`Other::overlaps_from`]).
/// Reads through `conn`: inside a write transaction, pass the transaction's.
async fn check_no_overlap(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    new: &Coverage<'_>,
) -> Result<(), Problem> {
    for school in new.schools {
        let others: Vec<Other> = sqlx::query_as(
            "SELECT c.id, c.reference, c.model_id, c.model_version, c.end_date, c.non_renewal_at FROM conventions c \
             JOIN convention_schools s ON s.convention_id = c.id \
             WHERE s.org_id = $1 AND c.status IN ('in_signature', 'signed', 'active') \
             AND c.start_date <= $2 AND (c.end_date >= $3 OR c.non_renewal_at IS NULL) \
             AND (c.termination_effective IS NULL OR c.termination_effective > $4) \
             AND c.root_id <> $5 ORDER BY c.start_date, c.id",
        )
        .bind(&school.id)
        .bind(new.end.to_string())
        .bind(new.start.to_string())
        .bind(new.start.to_string())
        .bind(new.lineage.unwrap_or(""))
        .fetch_all(&mut *conn)
        .await?;
        for other in others {
            if other.succeeded_on(models, new.start)? {
                other.require_whole_succession(conn, new).await?;
            }
            if !other.overlaps_from(models, new.start)? {
                continue;
            }
            let (id, reference, hint) = (&other.id, &other.reference, other.renewal_hint(new.start)?);
            if other.model_id == new.model.id {
                return Err(Problem::conflict(format!(
                    "{} ({}) est déjà couvert par la convention {reference} du même modèle sur ces dates{hint}",
                    school.name, school.code,
                )));
            }
            if new.supersedes == Some(id.as_str()) {
                continue;
            }
            let Some(other) = super::read_convention(conn, models, id, false).await? else { continue };
            let Ok(other_model) = find_model(models, &other.model_id, Some(other.model_version)) else { continue };
            if roles_key(other_model, &other.parties, other.rgpd_controller.as_ref()) != new.roles {
                let controller = other.rgpd_controller.as_ref().map(|o| o.name.as_str()).unwrap_or("aucun");
                return Err(Problem::conflict(format!(
                    "{} ({}) est déjà couvert sur ces dates par la convention {reference}{hint}, qui désigne d'autres \
                     rôles au sens du RGPD (responsable de traitement : {controller}) : une école n'a qu'un responsable \
                     de traitement. Résiliez-la, rédigez un avenant, ou indiquez que la nouvelle convention la remplace \
                     (champ supersedes)",
                    school.name, school.code,
                ))
                .with_extra(json!({ "conflicting_convention": reference })));
            }
        }
    }
    Ok(())
}

/// The parties of a draft as a convention lists them.
fn draft_parties(model: &ConventionModel, draft: &Draft) -> Vec<super::Party> {
    draft
        .parties
        .iter()
        .map(|(key, org)| {
            let spec = model.parties.iter().find(|s| &s.key == key).expect("party of the model");
            super::Party {
                key: key.clone(),
                label: spec.label.clone(),
                org: org.as_ref(),
                signature_required: spec.signature_required,
                order: spec.order,
                signatory: super::signatories::for_party(&draft.signatories, key, &org.id).cloned(),
                share_percent: draft
                    .shares
                    .get(&super::signatories::party_org_key(key, &org.id))
                    .copied()
                    .map(super::percent_of_bp),
                etab_type: org.etab_type,
            }
        })
        .collect()
}

/// The RGPD roles a draft designates (the controller as [`effective_controller`] finds it).
async fn draft_roles(store: &Store, model: &ConventionModel, draft: &Draft) -> Result<RolesKey, Problem> {
    let parties = draft_parties(model, draft);
    let schools: Vec<_> = draft.schools.iter().map(Org::as_ref).collect();
    let controller = effective_controller(&mut *store.conn().await?, model, &parties, &schools).await?;
    Ok(roles_key(model, &parties, controller.as_ref()))
}

/// A start date before today needs a stated reason.
fn check_start(ctx: &Ctx<'_>, start: NaiveDate, reason: Option<&str>) -> Result<Option<String>, Problem> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if start < ctx.today() && reason.is_none() {
        return Err(Problem::invalid_field(
            "start_date",
            format!(
                "la date de prise d'effet ({}) est passée : une convention ne prend pas effet rétroactivement sans \
                 motif ; reportez-la ou indiquez le motif (champ backdate_reason)",
                french_date(&start.to_string())
            ),
        ));
    }
    Ok(reason.map(str::to_string))
}

/// The convention as it is submitted: a model that [starts at submission] moves a start date
/// that has passed to today; otherwise a past start needs the reason given when it was set,
/// and an avenant, which takes effect on its own date, may not start before its submission.
///
/// [starts at submission]: ConventionModel::starts_at_submission
fn start_at_submission(ctx: &Ctx<'_>, model: &ConventionModel, conv: &Convention) -> Result<Convention, Problem> {
    let today = ctx.today();
    let start = parse_date("start_date", &conv.start_date)?;
    let mut submitted = conv.clone();
    if start >= today {
        return Ok(submitted);
    }
    if model.starts_at_submission {
        submitted.start_date = today.to_string();
        if submitted.end_date < submitted.start_date {
            return Err(Problem::invalid_field(
                "end_date",
                format!("la convention s'achève le {} : elle ne peut plus prendre effet", french_date(&conv.end_date)),
            ));
        }
        return Ok(submitted);
    }
    if conv.amends_id.is_some() {
        return Err(Problem::invalid_field(
            "start_date",
            format!(
                "un avenant prend effet à sa propre date, au plus tôt le jour de sa soumission à signature : \
                 reportez sa date de prise d'effet ({}) au {} ou après",
                french_date(&conv.start_date),
                french_date(&today.to_string())
            ),
        ));
    }
    check_start(ctx, start, conv.backdate_reason.as_deref())?;
    Ok(submitted)
}

/// The id of the convention `key` (id or reference) names as superseded by a new convention on
/// `schools`. One the caller does not see answers as an unknown reference; the caller must be
/// able to write it as a party ([`require_writer_of`]), as for a résiliation; and it must be
/// signed or in force on at least one of the same schools: a convention replaces the one that
/// covers its schools, not any other.
async fn resolve_superseded(ctx: &Ctx<'_>, key: Option<&str>, schools: &[Org]) -> Result<Option<String>, Problem> {
    let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else { return Ok(None) };
    let conv = get_convention(ctx.store, ctx.models, key)
        .await?
        .filter(|c| c.is_seen_by(ctx.actor, &authz::CONVENTIONS_READ))
        .ok_or_else(|| Problem::invalid_field("supersedes", format!("aucune convention « {key} »")))?;
    require_writer_of(ctx, &conv).map_err(|_| {
        forbidden(format!(
            "vous n'avez, à aucune des parties de la convention {}, un rôle qui permet de la modifier : vous ne \
             pouvez pas la remplacer",
            conv.reference
        ))
    })?;
    conflict_unless(matches!(conv.status, Status::Active | Status::Signed), || {
        format!(
            "la convention {} est {} : seule une convention signée ou en vigueur se remplace",
            conv.reference,
            conv.status.label()
        )
    })?;
    let ids: Vec<&str> = schools.iter().map(|s| s.id.as_str()).collect();
    if !conv.covers_any(&ids) {
        return Err(Problem::invalid_field(
            "supersedes",
            format!(
                "la convention {} ne couvre aucune des écoles ou établissements de la nouvelle convention : une \
                 convention ne remplace que celle qui couvre les mêmes écoles",
                conv.reference
            ),
        ));
    }
    Ok(Some(conv.id))
}

/// Whether the binding `b` writes a convention of `model` (drafts, edits, submits, terminates,
/// opposes its renewal, amends it, files its signed copies) for its organisation, if that one
/// is a party. A groupement's convention constitutive: any role that writes conventions (its
/// coordinator, through the groupement's flow). An ENT convention (tripartite, bipartite): the
/// DAN and the collectivité of a party, and the chef d'établissement of an EPLE (collège,
/// lycée, EREA: a legal person); not an école's head (an école has no legal personality: its
/// head signs where the model says so, nothing more), nor a coordinateur.
pub(crate) fn writes_as_party(b: &Binding, model: &ConventionModel) -> bool {
    let Some(org) = &b.org else { return false };
    if !authz::CONVENTIONS_WRITE.roles.contains(&b.role) {
        return false;
    }
    if !model.governs_ent() {
        return true;
    }
    match b.role {
        Role::Dan | Role::Collectivite => true,
        Role::ChefEtablissement => org.etab_type.is_some_and(|t| !t.is_ecole()),
        _ => false,
    }
}

/// Whether `actor` writes a convention of `model` for the party organisation `org_id`: an
/// admin, or a binding there that [`writes_as_party`].
pub(crate) fn writes_for(actor: &Actor, model: &ConventionModel, org_id: &str) -> bool {
    actor.is_admin()
        || actor.bindings.iter().any(|b| b.org.as_ref().is_some_and(|o| o.id == org_id) && writes_as_party(b, model))
}

/// Whether `actor` writes `conv`, of `model`, for one of its parties ([`writes_for`]): whom the
/// console offers its writing forms.
pub fn writes_convention(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    conv.parties.iter().any(|p| writes_for(actor, model, &p.org.id))
}

/// Only an admin, or a user who writes a convention of `model` for one of the party
/// organisations ([`writes_as_party`]), writes a convention: a writing role held elsewhere (a
/// commune's) does not extend to a party where the user is only DPO or auditeur.
pub(crate) fn require_party_member(
    actor: &Actor,
    model: &ConventionModel,
    party_org_ids: &[String],
) -> Result<(), Problem> {
    if party_org_ids.iter().any(|id| writes_for(actor, model, id)) {
        return Ok(());
    }
    let mut detail =
        "vous n'avez, à aucune des parties de cette convention, un rôle qui permet de la modifier".to_string();
    if model.governs_ent() {
        detail.push_str(
            " : une convention ENT est rédigée, soumise, amendée, résiliée ou non reconduite par la DAN, la \
             collectivité ou le chef d'un établissement public local d'enseignement (collège, lycée) qui y est partie ; \
             le directeur d'école la signe seulement, le coordonnateur n'écrit que la convention constitutive de son \
             groupement",
        );
    }
    Err(forbidden(detail))
}

/// [`require_party_member`] for `conv`, under its own model.
pub(crate) fn require_writer_of(ctx: &Ctx<'_>, conv: &Convention) -> Result<(), Problem> {
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    require_party_member(ctx.actor, model, &conv.party_org_ids())
}

async fn write_parties_and_schools(tx: &mut Tx, id: &str, draft: &Draft) -> Result<(), Problem> {
    sqlx::query("DELETE FROM convention_parties WHERE convention_id = $1").bind(id).execute(&mut **tx).await?;
    sqlx::query("DELETE FROM convention_schools WHERE convention_id = $1").bind(id).execute(&mut **tx).await?;
    for (position, (key, org)) in draft.parties.iter().enumerate() {
        sqlx::query(
            "INSERT INTO convention_parties (convention_id, party_key, org_id, position, signatory, share_bp) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(key)
        .bind(&org.id)
        .bind(position as i64)
        .bind(super::signatories::to_column(super::signatories::for_party(&draft.signatories, key, &org.id)))
        .bind(draft.shares.get(&super::signatories::party_org_key(key, &org.id)).copied())
        .execute(&mut **tx)
        .await?;
    }
    for school in &draft.schools {
        sqlx::query("INSERT INTO convention_schools (convention_id, org_id) VALUES ($1, $2)")
            .bind(id)
            .bind(&school.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Records what a party did on a convention (a visa, a signature), scoped to that party.
pub(crate) async fn record(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    action: &str,
    convention_id: &str,
    scope: Option<&str>,
    summary: Value,
) -> Result<(), Problem> {
    let target = Target::new("convention", convention_id, scope);
    audit::record(tx, ctx.store.backend(), ctx.actor, action, &target, summary, ctx.now).await
}

/// Records `action` on `conv` as `ctx`'s actor, for its parties ([`audit_to_parties`]).
pub(crate) async fn record_for_parties(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    action: &str,
    conv: &Convention,
    summary: Value,
) -> Result<(), Problem> {
    audit_to_parties(tx, ctx.store.backend(), ctx.actor, action, &conv.id, &party_orgs(conv), summary, ctx.now).await
}

/// The ids of the organisations party to `conv`.
pub(crate) fn party_orgs(conv: &Convention) -> Vec<&str> {
    conv.parties.iter().map(|p| p.org.id.as_str()).collect()
}

/// Records `action` on the convention `id` once per organisation among `parties`, scoped to it
/// (as `registry::invitations` does for its two sides): an audit record is read within its
/// organisation's scope, and the auditors and DPOs of every party read the whole lifecycle.
/// Unscoped when there is no party.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn audit_to_parties(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    action: &str,
    id: &str,
    parties: &[&str],
    summary: Value,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let mut scopes: Vec<Option<&str>> = parties.iter().map(|p| Some(*p)).collect();
    scopes.sort_unstable();
    scopes.dedup();
    if scopes.is_empty() {
        scopes.push(None);
    }
    for scope in scopes {
        let target = Target::new("convention", id, scope);
        audit::record(tx, backend, actor, action, &target, summary.clone(), now).await?;
    }
    Ok(())
}

async fn reload(ctx: &Ctx<'_>, id: &str) -> Result<Convention, Problem> {
    get_convention(ctx.store, ctx.models, id).await?.ok_or_else(|| Problem::not_found("convention introuvable"))
}

/// The tail of every change: committed, then read back.
pub(crate) async fn commit_and_reload(ctx: &Ctx<'_>, tx: Tx, id: &str) -> Result<Convention, Problem> {
    tx.commit().await?;
    reload(ctx, id).await
}

/// A groupement's convention constitutive (a model covering no school, whose parties no
/// school anchors in anyone's scope) names the coordinator and the members it accepted: its
/// parties are set by the groupement's flow ([`create_constitutive`], [`update_constitutive`]),
/// never named by hand (422 on `field`, whoever asks, before any party is looked up).
fn parties_follow_the_groupement(model: &ConventionModel, field: &str, detail: &str) -> Result<(), Problem> {
    if model.governs_ent() {
        return Ok(());
    }
    Err(Problem::invalid_field(field, detail))
}

/// Creates a draft convention from what a person names (the API, the console, the CLI); a
/// groupement's convention constitutive is refused ([`parties_follow_the_groupement`]).
pub async fn create(ctx: &Ctx<'_>, input: NewConvention) -> Result<Convention, Problem> {
    check_title(input.title.as_deref())?;
    let model = find_model(ctx.models, &input.model, input.version)?;
    parties_follow_the_groupement(
        model,
        "model",
        "une convention constitutive de groupement de commandes ne se crée pas directement : elle naît du \
         groupement, dont le coordonnateur accepte les candidatures des membres",
    )?;
    create_constitutive(ctx, input).await
}

/// A convention's title is one line (it heads the document and the notices).
fn check_title(title: Option<&str>) -> Result<(), Problem> {
    let mut checks = Checks::default();
    if let Some(title) = title {
        checks.line("title", title);
    }
    checks.finish()
}

/// Creates a draft convention of any model: the groupement's flow, for its convention
/// constitutive (its coordinator and the members it accepted).
pub async fn create_constitutive(ctx: &Ctx<'_>, input: NewConvention) -> Result<Convention, Problem> {
    let checked = check_new(ctx, input).await?;
    let mut tx = ctx.store.begin_write().await?;
    let id = create_constitutive_in(ctx, &mut tx, &checked).await?;
    commit_and_reload(ctx, tx, &id).await
}

/// A new convention checked ([`check_new`]), not written yet.
pub struct CheckedNew<'m> {
    model: &'m ConventionModel,
    draft: Draft,
    supersedes: Option<String>,
    backdate_reason: Option<String>,
}

/// Checks a new convention of any model (its parties, parameters, dates, signatories, and the
/// others on its schools), reading through the pool: done before the write transaction opens,
/// which then takes no second connection.
pub async fn check_new<'m>(ctx: &Ctx<'m>, input: NewConvention) -> Result<CheckedNew<'m>, Problem> {
    let model = find_model(ctx.models, &input.model, input.version)?;
    let signatories: BTreeMap<String, Signatory> =
        signatories_in(&input.parties).into_iter().chain(input.signatories).collect();
    check_signatories(ctx, model, &signatories)?;
    let mut draft = build_draft(
        ctx,
        model,
        input.title.clone(),
        &input.parties,
        &[],
        &input.parameters,
        &input.start_date,
        input.end_date.as_deref(),
        None,
    )
    .await?;
    draft.signatories = signatories;
    draft.shares = input.party_shares;
    let backdate_reason = check_start(ctx, draft.start, input.backdate_reason.as_deref())?;
    let supersedes = resolve_superseded(ctx, input.supersedes.as_deref(), &draft.schools).await?;
    let coverage = Coverage {
        model,
        schools: &draft.schools,
        start: draft.start,
        end: draft.end,
        lineage: None,
        roles: draft_roles(ctx.store, model, &draft).await?,
        supersedes: supersedes.as_deref(),
    };
    check_no_overlap(&mut *ctx.store.conn().await?, ctx.models, &coverage).await?;
    Ok(CheckedNew { model, draft, supersedes, backdate_reason })
}

/// [`create_constitutive`] of the convention `checked`, in the write transaction `tx`, which
/// the caller commits with what must happen with it (the groupement linking its convention
/// constitutive) or not at all: its id.
pub async fn create_constitutive_in(ctx: &Ctx<'_>, tx: &mut Tx, checked: &CheckedNew<'_>) -> Result<String, Problem> {
    let id = insert_in(ctx, tx, checked.model, &checked.draft, None).await?;
    sqlx::query("UPDATE conventions SET supersedes_id = $1, backdate_reason = $2 WHERE id = $3")
        .bind(&checked.supersedes)
        .bind(&checked.backdate_reason)
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// Writes the convention `draft` of `model` (an avenant of `amends` when given) in `tx`: its id.
async fn insert_in(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    model: &ConventionModel,
    draft: &Draft,
    amends: Option<&Convention>,
) -> Result<String, Problem> {
    let id = new_id();
    let at = timestamp(ctx.now);
    if let Some(original) = amends {
        claim_amendment(tx, original).await?;
    }
    let reference = ent_kernel::store::counters::next_reference(tx, "CONV", ctx.today().year()).await?;
    let root = amends.map(|c| c.root_id.clone()).unwrap_or_else(|| id.clone());
    sqlx::query(
        "INSERT INTO conventions (id, reference, model_id, model_version, title, status, parameters, start_date, end_date, \
         amends_id, root_id, version, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $10, 1, $11, $12, $13)",
    )
    .bind(&id)
    .bind(&reference)
    .bind(&model.id)
    .bind(i64::from(model.version))
    .bind(&draft.title)
    .bind(Value::Object(draft.parameters.clone()).to_string())
    .bind(draft.start.to_string())
    .bind(draft.end.to_string())
    .bind(amends.map(|c| c.id.clone()))
    .bind(&root)
    .bind(&ctx.actor.name)
    .bind(&at)
    .bind(&at)
    .execute(&mut **tx)
    .await?;
    write_parties_and_schools(tx, &id, draft).await?;
    let action = if amends.is_some() { "conventions.amend" } else { "conventions.create" };
    let summary = json!({
        "reference": reference,
        "model": format!("{} v{}", model.id, model.version),
        "parties": draft.parties.iter().map(|(k, o)| format!("{k}={}", o.qualified_code())).collect::<Vec<_>>(),
        "schools": draft.schools.len(),
        "amends": amends.map(|c| c.reference.clone()),
    });
    let parties: Vec<&str> = draft.parties.iter().map(|(_, o)| o.id.as_str()).collect();
    audit_to_parties(tx, ctx.store.backend(), ctx.actor, action, &id, &parties, summary, ctx.now).await?;
    Ok(id)
}

/// Checks, under the row lock of the convention `original` (PostgreSQL; SQLite's `BEGIN
/// IMMEDIATE` already serialises writers), that it is still in force and has no avenant in
/// progress: of two avenants asked at once, one is created and the other refused.
async fn claim_amendment(tx: &mut Tx, original: &Convention) -> Result<(), Problem> {
    let lock = Backend::of_connection(tx).for_update();
    let status: Option<String> = sqlx::query_scalar(&format!("SELECT status FROM conventions WHERE id = $1{lock}"))
        .bind(&original.id)
        .fetch_optional(&mut **tx)
        .await?;
    conflict_unless(status.as_deref() == Some("active"), || {
        format!("la convention {} n'est plus en vigueur : elle ne s'amende plus", original.reference)
    })?;
    let pending: Option<String> = sqlx::query_scalar(
        "SELECT reference FROM conventions WHERE amends_id = $1 AND status IN ('draft', 'in_signature', 'signed')",
    )
    .bind(&original.id)
    .fetch_optional(&mut **tx)
    .await?;
    match pending {
        Some(reference) => Err(Problem::conflict(format!("un avenant est déjà en cours : {reference}"))),
        None => Ok(()),
    }
}

/// Edits a draft or a convention in signature as a person asks (the API); the parties of a
/// groupement's convention constitutive are not named by hand ([`parties_follow_the_groupement`]).
pub async fn update(
    ctx: &Ctx<'_>,
    conv: &Convention,
    expected_version: i64,
    patch: ConventionPatch,
) -> Result<Convention, Problem> {
    check_title(patch.title.as_deref())?;
    if patch.parties.is_some() {
        let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
        parties_follow_the_groupement(
            model,
            "parties",
            "les parties d'une convention constitutive de groupement de commandes suivent les adhésions : le \
             coordonnateur accepte ou rejette les candidatures depuis le groupement",
        )?;
    }
    update_constitutive(ctx, conv, expected_version, patch).await
}

/// Edits a draft or a convention in signature, its parties included whatever its model (the
/// groupement's flow sets those of its convention constitutive); in signature, collected visas
/// and signatures are voided and their authors told.
pub async fn update_constitutive(
    ctx: &Ctx<'_>,
    conv: &Convention,
    expected_version: i64,
    patch: ConventionPatch,
) -> Result<Convention, Problem> {
    let checked = check_edit(ctx, conv, expected_version, patch).await?;
    let mut tx = ctx.store.begin_write().await?;
    update_constitutive_in(ctx, &mut tx, &checked).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// An edit of a convention checked ([`check_edit`]), not written yet.
pub struct CheckedEdit<'c> {
    conv: &'c Convention,
    expected_version: i64,
    draft: Draft,
    backdate_reason: Option<String>,
    /// The text frozen anew, for a convention in signature.
    rendering: Option<Rendering>,
}

/// Checks the edit `patch` of `conv` (a draft or in signature) and, in signature, renders its
/// text, reading through the pool: done before the write transaction opens, which then takes
/// no second connection.
pub async fn check_edit<'c>(
    ctx: &Ctx<'_>,
    conv: &'c Convention,
    expected_version: i64,
    patch: ConventionPatch,
) -> Result<CheckedEdit<'c>, Problem> {
    conflict_unless(matches!(conv.status, Status::Draft | Status::InSignature), || {
        format!("une convention {} ne se modifie plus : rédigez un avenant", conv.status.label())
    })?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let parties: BTreeMap<String, PartyInput> = match &patch.parties {
        Some(p) => p.clone(),
        None => current_parties(conv),
    };
    let mut params = conv.parameters.clone();
    params.remove("start_date");
    if let Some(more) = &patch.parameters {
        for (k, v) in more {
            params.insert(k.clone(), v.clone());
        }
    }
    let start = patch.start_date.clone().unwrap_or_else(|| conv.start_date.clone());
    let end = match (&patch.end_date, &patch.start_date) {
        (Some(end), _) => Some(end.clone()),
        (None, Some(moved)) => end_after_moved_start(model, conv, moved),
        (None, None) => Some(conv.end_date.clone()),
    };
    let title = patch.title.clone().or_else(|| Some(conv.title.clone()));
    let before = writers_before(model, conv);
    let departement = departement_of_existing(conv);
    let mut draft =
        build_draft(ctx, model, title, &parties, &before, &params, &start, end.as_deref(), departement).await?;
    let edited_signatories: BTreeMap<String, Signatory> =
        draft.signatories.clone().into_iter().chain(patch.signatories.clone().unwrap_or_default()).collect();
    check_signatories(ctx, model, &edited_signatories)?;
    draft.signatories = super::signatories::merged(super::signatories::current(conv), edited_signatories);
    draft.shares = patch.party_shares.clone().unwrap_or_else(|| current_shares(conv));
    let backdate_reason = match &patch.start_date {
        Some(_) => check_start(ctx, draft.start, patch.backdate_reason.as_deref())?,
        None => conv.backdate_reason.clone(),
    };
    let coverage = Coverage {
        model,
        schools: &draft.schools,
        start: draft.start,
        end: draft.end,
        lineage: Some(&conv.root_id),
        roles: draft_roles(ctx.store, model, &draft).await?,
        supersedes: conv.supersedes_id.as_deref(),
    };
    check_no_overlap(&mut *ctx.store.conn().await?, ctx.models, &coverage).await?;
    // In signature, the edited text is frozen as a new version (rendered before the write lock).
    let rendering = match conv.status {
        Status::InSignature => {
            let mut edited = with_draft(conv, model, &draft);
            let schools: Vec<_> = draft.schools.iter().map(Org::as_ref).collect();
            edited.rgpd_controller =
                effective_controller(&mut *ctx.store.conn().await?, model, &edited.parties, &schools).await?;
            let frozen = Frozen::of(super::document::body(model, &edited)?, &edited);
            Some(Rendering::of(&frozen)?.with_pdf().await?)
        }
        _ => None,
    };
    Ok(CheckedEdit { conv, expected_version, draft, backdate_reason, rendering })
}

/// [`update_constitutive`] of the edit `checked`, in the write transaction `tx`, which the
/// caller commits with what must happen with it (the acceptance of the members it joins) or
/// not at all.
pub async fn update_constitutive_in(ctx: &Ctx<'_>, tx: &mut Tx, checked: &CheckedEdit<'_>) -> Result<(), Problem> {
    let CheckedEdit { conv, expected_version, draft, backdate_reason, rendering } = checked;
    let done = sqlx::query(
        "UPDATE conventions SET title = $1, parameters = $2, start_date = $3, end_date = $4, version = version + 1, \
         updated_at = $5, backdate_reason = $6 WHERE id = $7 AND version = $8",
    )
    .bind(&draft.title)
    .bind(Value::Object(draft.parameters.clone()).to_string())
    .bind(draft.start.to_string())
    .bind(draft.end.to_string())
    .bind(timestamp(ctx.now))
    .bind(backdate_reason)
    .bind(&conv.id)
    .bind(expected_version)
    .execute(&mut **tx)
    .await?;
    expect_version(&done, conv.version)?;
    write_parties_and_schools(tx, &conv.id, draft).await?;
    let voided = void_steps(tx, conv, "la convention a été modifiée", ctx.now).await?;
    record_for_parties(ctx, tx, "conventions.update", conv, json!({ "voided_steps": voided.len() })).await?;
    if let Some(rendering) = rendering {
        super::frozen::store(tx, &conv.id, rendering, ctx.actor, ctx.now).await?;
        set_document_hash(tx, &conv.id, &rendering.fingerprint()).await?;
        if !voided.is_empty() {
            super::jobs::notify(tx, &voided, conv, "signatures_voided", json!({}), ctx.now).await?;
        }
    }
    Ok(())
}

/// The département the schools of `conv` stay within when it is edited: an avenant's is that of
/// the convention it amends, which it keeps ([`super::convention_departement`]); a new draft
/// has none fixed (its écoles across two départements are refused).
fn departement_of_existing(conv: &Convention) -> Option<&str> {
    conv.amends_id.as_ref().and_then(|_| super::convention_departement(conv))
}

/// The parties of `conv` for which its edit is written besides those it will name: a groupement's
/// convention constitutive (whose parties follow the groupement's members, never named by hand:
/// [`parties_follow_the_groupement`]) is edited by a member leaving it before it binds, for
/// itself, though the edit no longer names it; an ENT convention, by a party it names only.
fn writers_before(model: &ConventionModel, conv: &Convention) -> Vec<String> {
    if model.governs_ent() {
        return Vec::new();
    }
    conv.party_org_ids()
}

/// The end of `conv` when only its start moves to `start`, as the model's text reads: a model
/// whose start is its submission day (`starts_at_submission`, the groupement's « s'achève le … »
/// following its contract) keeps the end stated; any other, « pour une durée de … », keeps its
/// duration ([`Span`]), the end moving by the same span. `None` (the model's default duration)
/// only when a date does not read, which `build_draft` then reports.
fn end_after_moved_start(model: &ConventionModel, conv: &Convention, start: &str) -> Option<String> {
    if model.starts_at_submission {
        return Some(conv.end_date.clone());
    }
    let day = |field: &str, value: &str| parse_date(field, value).ok();
    let span = Span::between(day("start_date", &conv.start_date)?, day("end_date", &conv.end_date)?)?;
    span.end_from(day("start_date", start)?).map(|end| end.to_string())
}

/// The convention as this draft makes it (for the document hash before commit).
fn with_draft(conv: &Convention, model: &ConventionModel, draft: &Draft) -> Convention {
    let mut fresh = conv.clone();
    fresh.title = draft.title.clone();
    fresh.parameters = draft.parameters.clone();
    fresh.start_date = draft.start.to_string();
    fresh.end_date = draft.end.to_string();
    fresh.parties = draft_parties(model, draft);
    fresh.schools = draft.schools.iter().map(Org::as_ref).collect();
    fresh
}

/// The parties' own cost shares recorded on `conv`, in hundredths of a percent.
fn current_shares(conv: &Convention) -> BTreeMap<String, i64> {
    conv.parties
        .iter()
        .filter_map(|p| {
            let bp = (p.share_percent? * 100.0).round() as i64;
            Some((super::signatories::party_org_key(&p.key, &p.org.id), bp))
        })
        .collect()
}

fn current_parties(conv: &Convention) -> BTreeMap<String, PartyInput> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &conv.parties {
        map.entry(p.key.clone()).or_default().push(p.org.id.clone());
    }
    map.into_iter()
        .map(|(k, v)| (k, if v.len() == 1 { PartyInput::One(v[0].clone()) } else { PartyInput::Many(v) }))
        .collect()
}

/// Voids the live steps and returns the e-mails of their authors.
async fn void_steps(tx: &mut Tx, conv: &Convention, reason: &str, now: DateTime<Utc>) -> Result<Vec<String>, Problem> {
    let authors: Vec<String> =
        conv.steps.iter().filter(|s| s.voided_at.is_none()).map(|s| s.user_email.clone()).collect();
    sqlx::query(
        "UPDATE convention_steps SET voided_at = $1, void_reason = $2 WHERE convention_id = $3 AND voided_at IS NULL",
    )
    .bind(timestamp(now))
    .bind(reason)
    .bind(&conv.id)
    .execute(&mut **tx)
    .await?;
    Ok(authors)
}

async fn set_document_hash(tx: &mut Tx, id: &str, hash: &str) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET document_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn set_status(tx: &mut Tx, id: &str, status: Status, now: DateTime<Utc>) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(timestamp(now))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn require_status(conv: &Convention, allowed: &[Status], what: &str) -> Result<(), Problem> {
    if allowed.contains(&conv.status) {
        Ok(())
    } else {
        Err(Problem::conflict(format!("impossible de {what} une convention {}", conv.status.label())))
    }
}

/// Draft → in signature: the document is frozen by its hash; visa givers, or
/// the signers when there is no visa, are notified.
pub async fn submit(ctx: &Ctx<'_>, conv: &Convention) -> Result<Convention, Problem> {
    require_status(conv, &[Status::Draft], "soumettre à signature")?;
    require_writer_of(ctx, conv)?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    super::signatories::check_complete(model, conv)?;
    let conv = &start_at_submission(ctx, model, conv)?;
    check_no_overlap_of(&mut *ctx.store.conn().await?, ctx.models, model, conv).await?;
    let rendering = Rendering::of(&Frozen::of(super::document::body(model, conv)?, conv))?.with_pdf().await?;
    let hash = rendering.fingerprint();
    let (mut tx, current) = begin_locked(ctx, &conv.id).await?;
    require_status(&current, &[Status::Draft], "soumettre à signature")?;
    expect_same_version(conv.version, current.version)?;
    require_original_in_force(&mut tx, &current).await?;
    set_status(&mut tx, &conv.id, Status::InSignature, ctx.now).await?;
    super::frozen::store(&mut tx, &conv.id, &rendering, ctx.actor, ctx.now).await?;
    sqlx::query(
        "UPDATE conventions SET document_hash = $1, submitted_at = $2, refusal_comment = NULL, start_date = $3 \
         WHERE id = $4",
    )
    .bind(&hash)
    .bind(timestamp(ctx.now))
    .bind(&conv.start_date)
    .bind(&conv.id)
    .execute(&mut *tx)
    .await?;
    record_for_parties(ctx, &mut tx, "conventions.submit", conv, json!({ "document_hash": hash })).await?;
    let recipients = next_actors(&mut tx, model, conv, &[]).await?;
    super::jobs::notify(&mut tx, &recipients, conv, "submitted", json!({}), ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// [`check_no_overlap`] for a convention as it stands (its schools, dates and parties), read
/// through `conn`.
async fn check_no_overlap_of(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    model: &ConventionModel,
    conv: &Convention,
) -> Result<(), Problem> {
    let (start, end) = (parse_date("start_date", &conv.start_date)?, parse_date("end_date", &conv.end_date)?);
    let schools = school_orgs(conn, conv).await?;
    let coverage = Coverage {
        model,
        schools: &schools,
        start,
        end,
        lineage: Some(&conv.root_id),
        roles: roles_key(model, &conv.parties, conv.rgpd_controller.as_ref()),
        supersedes: conv.supersedes_id.as_deref(),
    };
    check_no_overlap(conn, models, &coverage).await
}

async fn school_orgs(conn: &mut AnyConnection, conv: &Convention) -> Result<Vec<Org>, Problem> {
    let mut schools = Vec::new();
    for s in &conv.schools {
        if let Some(org) = get_org_in(&mut *conn, &s.id).await? {
            schools.push(org);
        }
    }
    Ok(schools)
}

/// E-mails of the active users holding `role` at `org_id`.
/// Takes a connection: inside a transaction, pass the transaction's.
pub async fn users_with_role(conn: &mut AnyConnection, org_id: &str, role: &str) -> Result<Vec<String>, Problem> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT u.email FROM users u JOIN role_bindings b ON b.user_id = u.id \
         WHERE b.org_id = $1 AND b.role = $2 AND u.active = 1 ORDER BY u.email",
    )
    .bind(org_id)
    .bind(role)
    .fetch_all(conn)
    .await?)
}

/// Who must act next: the pending visa, else the parties whose turn it is to sign.
async fn next_actors(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
    done_steps: &[&str],
) -> Result<Vec<String>, Problem> {
    let visas_done: Vec<&str> =
        conv.live_steps("visa").map(|s| s.step_key.as_str()).chain(done_steps.iter().copied()).collect();
    if let Some(visa) = model.visas.iter().find(|v| !visas_done.contains(&v.key.as_str())) {
        let mut emails = Vec::new();
        for party in conv.parties.iter().filter(|p| p.key == visa.party) {
            emails.extend(users_with_role(conn, &party.org.id, visa.role.as_str()).await?);
        }
        return Ok(emails);
    }
    let mut emails = Vec::new();
    for party in pending_signers(model, conv) {
        let spec = model.parties.iter().find(|s| s.key == party.key).expect("party of the model");
        emails.extend(users_with_role(conn, &party.org.id, spec.signing_role.as_str()).await?);
    }
    Ok(emails)
}

/// Who must act once a step is recorded (`after`, plus the `done` steps not in it yet) and
/// did not have to before it (`before`): the only ones the `submitted` notice goes to then.
/// In a parallel circuit every pending signatory was told at once; a signature tells no one.
async fn newly_awaited(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    before: &Convention,
    after: &Convention,
    done: &[&str],
) -> Result<Vec<String>, Problem> {
    let already = next_actors(conn, model, before, &[]).await?;
    let next = next_actors(conn, model, after, done).await?;
    Ok(next.into_iter().filter(|e| !already.contains(e)).collect())
}

/// The e-mails of who must act next on `conv` (the holders of the pending visa, else the
/// signatories of the parties whose turn it is): those the `submitted` notice goes to.
pub async fn awaited_actors(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Vec<String>, Problem> {
    if conv.status != Status::InSignature {
        return Ok(Vec::new());
    }
    next_actors(conn, model, conv, &[]).await
}

/// Parties whose signature is required, missing, and (ordered circuits) due now.
pub fn pending_signers<'c>(model: &ConventionModel, conv: &'c Convention) -> Vec<&'c super::Party> {
    let signed: Vec<(&str, &str)> =
        conv.live_steps("signature").map(|s| (s.step_key.as_str(), s.org_id.as_str())).collect();
    let missing: Vec<&super::Party> = conv
        .parties
        .iter()
        .filter(|p| p.signature_required && !signed.contains(&(p.key.as_str(), p.org.id.as_str())))
        .collect();
    match model.signatures {
        SignatureMode::Parallel => missing,
        SignatureMode::Ordered => {
            let Some(first) = missing.iter().map(|p| p.order).min() else { return vec![] };
            missing.into_iter().filter(|p| p.order == first).collect()
        }
    }
}

/// The party (and organisation) the actor may sign or visa for, by role.
fn acting_party<'c>(
    actor: &Actor,
    conv: &'c Convention,
    role: ent_kernel::kernel::roles::Role,
    key: Option<&str>,
) -> Vec<&'c super::Party> {
    conv.parties
        .iter()
        .filter(|p| key.is_none_or(|k| p.key == k))
        .filter(|p| actor.bindings.iter().any(|b| b.role == role && b.org.as_ref().is_some_and(|o| o.id == p.org.id)))
        .collect()
}

/// The visa the circuit of `conv` (of `model`) waits for, if any.
fn visa_due<'m>(model: &'m ConventionModel, conv: &Convention) -> Option<&'m super::model::VisaSpec> {
    let done: Vec<&str> = conv.live_steps("visa").map(|s| s.step_key.as_str()).collect();
    model.visas.iter().find(|v| !done.contains(&v.key.as_str()))
}

/// The visa `actor` may give now ([`give_visa`] accepts it): the one due, in signature, which
/// it gives for its party by role, not having signed this convention.
pub fn visa_for<'m>(
    actor: &Actor,
    model: &'m ConventionModel,
    conv: &Convention,
) -> Option<&'m super::model::VisaSpec> {
    let visa = visa_due(model, conv).filter(|_| conv.status == Status::InSignature)?;
    let party = acting_party(actor, conv, visa.role, Some(&visa.party));
    (!party.is_empty() && not_both_visa_and_signature(actor, conv, "signature").is_ok()).then_some(visa)
}

pub async fn give_visa(ctx: &Ctx<'_>, conv: &Convention, visa_key: Option<&str>) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    require_status(conv, &[Status::InSignature], "viser")?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let Some(visa) = visa_due(model, conv) else {
        return Err(Problem::conflict("aucun visa n'est attendu sur cette convention"));
    };
    conflict_unless(visa_key.is_none_or(|k| k == visa.key), || {
        format!("le visa attendu maintenant est « {} »", visa.label)
    })?;
    let Some(party) = acting_party(ctx.actor, conv, visa.role, Some(&visa.party)).into_iter().next() else {
        return Err(forbidden(format!(
            "le visa « {} » revient au rôle {} de la partie {}",
            visa.label,
            visa.role.as_str(),
            visa.party
        )));
    };
    not_both_visa_and_signature(ctx.actor, conv, "signature")?;
    insert_step(&mut tx, ctx, conv, "visa", &visa.key, &party.org.id, visa.role.as_str()).await?;
    record(ctx, &mut tx, "conventions.visa", &conv.id, Some(&party.org.id), json!({ "visa": visa.key })).await?;
    let next = newly_awaited(&mut tx, model, conv, conv, &[visa.key.as_str()]).await?;
    super::jobs::notify(&mut tx, &next, conv, "submitted", json!({}), ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

async fn insert_step(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    conv: &Convention,
    kind: &str,
    key: &str,
    org_id: &str,
    role: &str,
) -> Result<(), Problem> {
    let hash = conv.document_hash.clone().unwrap_or_default();
    sqlx::query(
        "INSERT INTO convention_steps (id, convention_id, kind, step_key, org_id, user_id, user_email, role, document_hash, at, \
         recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new_id())
    .bind(&conv.id)
    .bind(kind)
    .bind(key)
    .bind(org_id)
    .bind(ctx.actor.user_id.clone().unwrap_or_default())
    .bind(ctx.actor.email())
    .bind(role)
    .bind(hash)
    .bind(timestamp(ctx.now))
    .bind(ctx.actor.recorded_on_behalf())
    .execute(&mut **tx)
    .await?;
    // A visa or a signature changes the convention: an edit based on the version read before it
    // must not void it unseen (412 on its If-Match).
    new_version(tx, &conv.id, ctx.now).await
}

/// A change to the convention that leaves its status: a new version (`ETag`).
pub(crate) async fn new_version(tx: &mut Tx, id: &str, now: DateTime<Utc>) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET version = version + 1, updated_at = $1 WHERE id = $2")
        .bind(timestamp(now))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The legal visa and a signature are two persons' acts: refuses the actor's step when
/// they already gave a live step of the `other` kind on this convention.
fn not_both_visa_and_signature(actor: &Actor, conv: &Convention, other: &str) -> Result<(), Problem> {
    let Some(user_id) = actor.user_id.as_deref() else { return Ok(()) };
    if conv.live_steps(other).any(|s| s.user_id == user_id) {
        let done = if other == "visa" { "donné le visa juridique" } else { "signé" };
        return Err(forbidden(format!(
            "vous avez déjà {done} sur cette convention : le visa juridique et la signature reviennent à deux \
             personnes distinctes"
        )));
    }
    Ok(())
}

/// One person commits one party: refuses `actor`'s signature for `party` when they already signed
/// this convention for a party of another organisation (a visa is refused by
/// [`not_both_visa_and_signature`]), whatever roles they hold there. One organisation that is two
/// parties (a coordinator also member of its groupement) is one legal person: one signer signs both.
fn not_two_parties(actor: &Actor, conv: &Convention, party: &super::Party) -> Result<(), Problem> {
    let Some(user_id) = actor.user_id.as_deref() else { return Ok(()) };
    let other = |s: &&super::Step| s.user_id == user_id && s.org_id != party.org.id;
    let Some(signed) = conv.live_steps("signature").find(other) else { return Ok(()) };
    let org = conv.parties.iter().find(|p| p.org.id == signed.org_id);
    let name = org.map_or(signed.step_key.as_str(), |p| p.org.name.as_str());
    Err(Problem::conflict(format!(
        "vous avez déjà signé cette convention pour {name} : une même personne n'engage pas deux parties, la \
         signature de {} revient à un autre de ses signataires",
        party.org.name
    )))
}

/// Signs for the actor's party. `document_hash`, when given, must be the hash
/// of the text the signer read. Decided on the convention as locked in the write
/// transaction: simultaneous signers queue, the last one completes it, and the
/// same party signing twice records one signature (409 for the other).
pub async fn sign(
    ctx: &Ctx<'_>,
    conv: &Convention,
    party_key: Option<&str>,
    document_hash: Option<&str>,
) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    require_still_alone(&mut tx, ctx.models, conv).await?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let party = signing_party(ctx.actor, model, conv, party_key, document_hash)?;
    not_both_visa_and_signature(ctx.actor, conv, "visa")?;
    require_original_in_force(&mut tx, conv).await?;
    let spec = model.parties.iter().find(|s| s.key == party.key).expect("party of the model");
    insert_step(&mut tx, ctx, conv, "signature", &party.key, &party.org.id, spec.signing_role.as_str()).await?;
    record(
        ctx,
        &mut tx,
        "conventions.sign",
        &conv.id,
        Some(&party.org.id),
        json!({ "party": party.key, "document_hash": conv.document_hash }),
    )
    .await?;
    let mut after = conv.clone();
    after.steps.push(super::Step {
        id: String::new(),
        kind: "signature".into(),
        step_key: party.key.clone(),
        org_id: party.org.id.clone(),
        user_id: String::new(),
        user_name: String::new(),
        user_email: String::new(),
        role: String::new(),
        document_hash: String::new(),
        at: String::new(),
        voided_at: None,
        void_reason: None,
        recorded_by: None,
    });
    let remaining = pending_signers(model, &after);
    if remaining.is_empty() {
        mark_signed(&mut tx, ctx.store.backend(), ctx.actor, conv, ctx.now).await?;
    } else {
        let next = newly_awaited(&mut tx, model, conv, &after, &[]).await?;
        super::jobs::notify(&mut tx, &next, conv, "submitted", json!({}), ctx.now).await?;
    }
    tx.commit().await?;
    if remaining.is_empty() {
        activate_if_started(ctx, &conv.id).await?;
    }
    reload(ctx, &conv.id).await
}

/// A convention in signature is checked again against the others on its schools before each
/// signature and at its completion: one renewed tacitly since its submission (no successor was
/// signed by its term) covers them on the same dates, and the signature is refused (409) naming
/// it. Checked inside the write transaction `tx`, under [`serialise_coverage`]: a tacit renewal
/// of the other one is either committed and seen, or waits for this transaction.
async fn require_still_alone(tx: &mut Tx, models: &[ConventionModel], conv: &Convention) -> Result<(), Problem> {
    if conv.status != Status::InSignature {
        return Ok(());
    }
    serialise_coverage(tx).await?;
    let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
    check_no_overlap_of(tx, models, model, conv).await.map_err(|p| match p.kind {
        ProblemKind::Conflict => Problem {
            detail: format!("la convention {} ne peut plus être signée : {}", conv.reference, p.detail),
            ..p
        },
        _ => p,
    })
}

/// Takes, until the end of `tx`, the lock that serialises what puts conventions in force on
/// schools ([`SerialLock::ConventionCoverage`]): a signature, a completion, a tacit renewal.
/// Taken before any audit record of `tx` (the audit chain's lock is always taken after it).
pub(crate) async fn serialise_coverage(tx: &mut Tx) -> Result<(), Problem> {
    let backend = Backend::of_connection(tx);
    ent_kernel::store::serialise(tx, backend, SerialLock::ConventionCoverage).await?;
    Ok(())
}

/// Opens the write transaction of a change to `id`, its row locked until commit.
pub(crate) async fn begin_locked(ctx: &Ctx<'_>, id: &str) -> Result<(Tx, Convention), Problem> {
    lock_if_exists(ctx, id).await?.ok_or_else(not_found)
}

/// [`begin_locked`], for a convention that may be gone.
pub(crate) async fn lock_if_exists(ctx: &Ctx<'_>, id: &str) -> Result<Option<(Tx, Convention)>, Problem> {
    let mut tx = ctx.store.begin_write().await?;
    Ok(super::read_convention(&mut tx, ctx.models, id, true).await?.map(|conv| (tx, conv)))
}

/// The parties (the one named by `party_key`, or all) at whose organisation `actor` holds the
/// party's signing role.
fn signer_of<'c>(
    actor: &Actor,
    model: &ConventionModel,
    conv: &'c Convention,
    party_key: Option<&str>,
) -> Vec<&'c super::Party> {
    conv.parties
        .iter()
        .filter(|p| party_key.is_none_or(|k| p.key == k))
        .filter(|p| {
            let role = model.parties.iter().find(|s| s.key == p.key).map(|s| s.signing_role);
            actor.bindings.iter().any(|b| Some(b.role) == role && b.org.as_ref().is_some_and(|o| o.id == p.org.id))
        })
        .collect()
}

/// The parties `actor` may sign for now ([`sign`] accepts it): in signature, the visas given,
/// its party's turn and not signed yet, it holds the signing role there, gave no visa and
/// signed for no other organisation.
pub fn parties_to_sign<'c>(actor: &Actor, model: &ConventionModel, conv: &'c Convention) -> Vec<&'c super::Party> {
    let visas_given = conv.live_steps("visa").count() >= model.visas.len();
    if conv.status != Status::InSignature || !visas_given || not_both_visa_and_signature(actor, conv, "visa").is_err() {
        return Vec::new();
    }
    let due = pending_signers(model, conv);
    signer_of(actor, model, conv, None)
        .into_iter()
        .filter(|p| due.iter().any(|d| d.key == p.key && d.org.id == p.org.id))
        .filter(|p| not_two_parties(actor, conv, p).is_ok())
        .collect()
}

/// The party the actor signs for now, or why not.
fn signing_party<'c>(
    actor: &Actor,
    model: &ConventionModel,
    conv: &'c Convention,
    party_key: Option<&str>,
    document_hash: Option<&str>,
) -> Result<&'c super::Party, Problem> {
    conflict_unless(conv.status != Status::Draft, || {
        "une convention en brouillon ne se signe pas : soumettez-la d'abord"
    })?;
    require_status(conv, &[Status::InSignature], "signer")?;
    let visas_done = conv.live_steps("visa").count();
    conflict_unless(visas_done >= model.visas.len(), || {
        format!("visa attendu avant les signatures : {}", model.visas[visas_done].label)
    })?;
    if let (Some(given), Some(current)) = (document_hash, &conv.document_hash) {
        // Hexadecimal either case: `sha256sum` prints it in lower case, PowerShell's Get-FileHash in upper.
        conflict_unless(given.trim().eq_ignore_ascii_case(current), || {
            "le document a changé depuis votre lecture : relisez-le avant de signer"
        })?;
    }
    let candidates = signer_of(actor, model, conv, party_key);
    if candidates.is_empty() {
        return Err(forbidden("vous ne détenez le rôle de signataire d'aucune partie de cette convention"));
    }
    let signed: Vec<(&str, &str)> =
        conv.live_steps("signature").map(|s| (s.step_key.as_str(), s.org_id.as_str())).collect();
    let Some(party) = candidates.into_iter().find(|p| !signed.contains(&(p.key.as_str(), p.org.id.as_str()))) else {
        return Err(Problem::conflict("votre partie a déjà signé cette convention"));
    };
    not_two_parties(actor, conv, party)?;
    let due = pending_signers(model, conv);
    conflict_unless(due.iter().any(|p| p.key == party.key && p.org.id == party.org.id), || {
        "ce n'est pas encore le tour de votre partie de signer (circuit ordonné)"
    })?;
    Ok(party)
}

/// In signature → signed, once every required signature is present; audited as `actor`
/// (the last signer, or the daily job that completes it) for its parties, like every lifecycle
/// record ([`audit_to_parties`]).
pub(crate) async fn mark_signed(
    tx: &mut Tx,
    backend: ent_kernel::store::Backend,
    actor: &Actor,
    conv: &Convention,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET signed_at = $1 WHERE id = $2")
        .bind(timestamp(now))
        .bind(&conv.id)
        .execute(&mut **tx)
        .await?;
    set_status(tx, &conv.id, Status::Signed, now).await?;
    audit_to_parties(tx, backend, actor, "conventions.signed", &conv.id, &party_orgs(conv), json!({}), now).await
}

/// Whether `actor` may refuse `conv` ([`refuse`]): in signature, it holds the signing role or a
/// visa's role at a party's organisation.
pub fn may_refuse(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    conv.status == Status::InSignature
        && conv.parties.iter().any(|p| {
            let signing = model.parties.iter().filter(|s| s.key == p.key).map(|s| s.signing_role);
            let roles: Vec<Role> =
                signing.chain(model.visas.iter().filter(|v| v.party == p.key).map(|v| v.role)).collect();
            actor.bindings.iter().any(|b| roles.contains(&b.role) && b.org.as_ref().is_some_and(|o| o.id == p.org.id))
        })
}

/// A signer or visa giver refuses: back to draft, steps voided, comment kept.
pub async fn refuse(ctx: &Ctx<'_>, conv: &Convention, comment: &str) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    require_status(conv, &[Status::InSignature], "refuser")?;
    if comment.trim().is_empty() {
        return Err(Problem::invalid_field("comment", "indiquez le motif du refus"));
    }
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if !may_refuse(ctx.actor, model, conv) {
        return Err(forbidden("seuls les signataires et viseurs des parties peuvent refuser"));
    }
    let authors = void_steps(&mut tx, conv, "convention refusée et renvoyée en brouillon", ctx.now).await?;
    set_status(&mut tx, &conv.id, Status::Draft, ctx.now).await?;
    sqlx::query("UPDATE conventions SET refusal_comment = $1 WHERE id = $2")
        .bind(comment.trim())
        .bind(&conv.id)
        .execute(&mut *tx)
        .await?;
    record_for_parties(ctx, &mut tx, "conventions.refuse", conv, json!({ "comment": comment.trim() })).await?;
    let mut recipients = authors;
    recipients.extend(party_signers(&mut tx, model, conv).await?);
    super::jobs::notify(&mut tx, &recipients, conv, "refused", json!({ "comment": comment.trim() }), ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// Users holding the signing role at every party.
pub async fn party_signers(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Vec<String>, Problem> {
    let mut emails = Vec::new();
    for party in &conv.parties {
        if let Some(spec) = model.parties.iter().find(|s| s.key == party.key) {
            emails.extend(users_with_role(conn, &party.org.id, spec.signing_role.as_str()).await?);
        }
    }
    emails.sort();
    emails.dedup();
    Ok(emails)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Termination {
    #[schemars(length(min = 1))]
    pub reason: String,
    /// `YYYY-MM-DD`. When absent: the end of the notice (`preavis_resiliation_mois` months from
    /// today) when the convention has one and the parties do not agree otherwise, else today;
    /// never before the start.
    #[schemars(extend("format" = "date"))]
    pub effective_date: Option<String>,
    /// The résiliation is agreed by every party: it may take effect before the end of the notice.
    #[serde(default)]
    pub mutual_agreement: bool,
}

/// The parameter of the models giving a résiliation's notice, in months.
pub const NOTICE_PARAMETER: &str = "preavis_resiliation_mois";

/// The notice a résiliation of `conv` gives, in months, if its parameters set one.
pub fn notice_months(conv: &Convention) -> Option<u32> {
    conv.parameters.get(NOTICE_PARAMETER).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok())
}

/// The first day a résiliation notified on `today` with a notice of `months` may take effect:
/// the same day of the month `months` later, or, when that month is too short for it (notified
/// on 30 November with 3 months), the first day of the month after (1 March): never a notice
/// cut short by the end of February.
pub fn end_of_notice(today: NaiveDate, months: u32) -> Result<NaiveDate, Problem> {
    let out_of_calendar =
        || Problem::invalid_field("effective_date", format!("préavis de {months} mois hors du calendrier"));
    let same_day = today.checked_add_months(Months::new(months)).ok_or_else(out_of_calendar)?;
    match same_day.day() < today.day() {
        true => same_day.succ_opt().ok_or_else(out_of_calendar),
        false => Ok(same_day),
    }
}

/// Who may record what: a résiliation d'un commun accord only by an administrator, on sight of
/// the agreement every party signed (one party alone cannot waive the others' notice), and only
/// such a résiliation may take effect on a day already past (a résiliation acts for the future).
fn check_termination_rights(
    actor: &Actor,
    t: &Termination,
    today: NaiveDate,
    effective: NaiveDate,
) -> Result<(), Problem> {
    if t.mutual_agreement && !actor.is_admin() {
        return Err(forbidden(
            "une résiliation d'un commun accord s'enregistre par un administrateur de la plateforme, au vu de l'accord \
             signé par toutes les parties ; une partie seule résilie avec le préavis de la convention",
        ));
    }
    if effective < today && !t.mutual_agreement {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "une résiliation ne prend pas effet dans le passé : au plus tôt aujourd'hui, le {}",
                french_date(&today.to_string())
            ),
        ));
    }
    Ok(())
}

/// A résiliation under notice takes effect at the end of the notice (`earliest`) or later,
/// by `end`, the last day of the term it falls in (for a convention renewed at its term, the
/// renewed one: [`term_in_force`]); when the convention's own end comes first, it simply
/// expires then: nothing to notify.
fn check_notice(months: u32, earliest: NaiveDate, end: NaiveDate, effective: NaiveDate) -> Result<(), Problem> {
    let agreed = "d'un commun accord de toutes les parties (champ mutual_agreement)";
    if earliest > end {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "le préavis de {months} mois s'achève le {}, après le terme de la convention, le {} : elle prend fin \
                 d'elle-même à son terme, sans résiliation ; une résiliation plus tôt ne se fait que {agreed}",
                french_date(&earliest.to_string()),
                french_date(&end.to_string())
            ),
        ));
    }
    if effective < earliest {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "la résiliation prend effet à l'expiration du préavis de {months} mois : au plus tôt le {}, sauf \
                 résiliation {agreed}",
                french_date(&earliest.to_string())
            ),
        ));
    }
    Ok(())
}

pub async fn terminate(ctx: &Ctx<'_>, conv: &Convention, t: Termination) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    require_status(conv, &[Status::Active, Status::Signed], "résilier")?;
    require_no_notified_termination(conv)?;
    require_writer_of(ctx, conv)?;
    if t.reason.trim().is_empty() {
        return Err(Problem::invalid_field("reason", "indiquez le motif de la résiliation"));
    }
    let (start, end) = (parse_date("start_date", &conv.start_date)?, parse_date("end_date", &conv.end_date)?);
    // Agreed by every party, the résiliation gives no notice.
    let notice = notice_months(conv).filter(|_| !t.mutual_agreement);
    let earliest = match notice {
        Some(months) => end_of_notice(ctx.today(), months)?,
        None => ctx.today(),
    };
    let effective = match &t.effective_date {
        Some(d) => parse_date("effective_date", d)?,
        // Signed but not started: it ends before it ever takes effect, on its start date.
        None => earliest.max(start),
    };
    check_termination_rights(ctx.actor, &t, ctx.today(), effective)?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let end = term_in_force(&mut tx, model, conv, end, earliest).await?;
    if let Some(months) = notice {
        check_notice(months, earliest, end, effective)?;
    }
    check_termination_date(start, end, effective)?;
    // Notified for a later day, the convention stays in force until then (`jobs::daily` ends it).
    let scheduled = effective > ctx.today();
    if scheduled {
        new_version(&mut tx, &conv.id, ctx.now).await?;
    } else {
        set_status(&mut tx, &conv.id, Status::Terminated, ctx.now).await?;
    }
    sqlx::query("UPDATE conventions SET termination_reason = $1, termination_effective = $2 WHERE id = $3")
        .bind(t.reason.trim())
        .bind(effective.to_string())
        .bind(&conv.id)
        .execute(&mut *tx)
        .await?;
    record_for_parties(
        ctx,
        &mut tx,
        "conventions.terminate",
        conv,
        json!({
            "reason": t.reason.trim(),
            "effective": effective.to_string(),
            "scheduled": scheduled,
            "mutual_agreement": t.mutual_agreement,
            "notice_months": notice_months(conv),
        }),
    )
    .await?;
    let backend = ctx.store.backend();
    end_pending_avenants(&mut tx, backend, ctx.actor, conv, &effective.to_string(), ctx.now).await?;
    let recipients = party_signers(&mut tx, model, conv).await?;
    let extra = json!({
        "reason": t.reason.trim(),
        "effective": french_date(&effective.to_string()),
        "mutual_agreement": t.mutual_agreement,
    });
    super::jobs::notify(&mut tx, &recipients, conv, "terminated", extra, ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// The last day of the term a résiliation whose notice ends on `earliest` falls in: the
/// convention's `end`, or, when the notice runs past it and the convention is renewed tacitly
/// there ([`super::renewal::renews_at_term`]), the end of the renewed period (the résiliation
/// then takes effect in it, as the clause says, and the daily job renews it first).
async fn term_in_force(
    tx: &mut Tx,
    model: &ConventionModel,
    conv: &Convention,
    end: NaiveDate,
    earliest: NaiveDate,
) -> Result<NaiveDate, Problem> {
    use super::renewal::{renewal_span, renewed_end, renews_at_term, signed_term};
    if earliest <= end || !renews_at_term(tx, model, conv).await? {
        return Ok(end);
    }
    renewed_end(end, renewal_span(model, &signed_term(tx, conv).await?)?)
}

/// Refuses a second résiliation while one is notified for a later day.
pub(crate) fn require_no_notified_termination(conv: &Convention) -> Result<(), Problem> {
    conflict_unless(conv.termination_effective.is_none(), || {
        format!(
            "la résiliation de la convention {} est déjà notifiée : elle prend effet le {}",
            conv.reference,
            french_date(conv.termination_effective.as_deref().unwrap_or_default())
        )
    })
}

/// A convention whose notified résiliation takes effect by `today` (French date): terminated,
/// audited as `actor` (the daily job); false when there is nothing to end.
pub async fn end_on_termination_date(ctx: &Ctx<'_>, id: &str) -> Result<bool, Problem> {
    let Some((mut tx, conv)) = lock_if_exists(ctx, id).await? else { return Ok(false) };
    let today = ctx.today().to_string();
    let due = conv.termination_effective.as_deref().is_some_and(|d| d <= today.as_str());
    if !due || !matches!(conv.status, Status::Active | Status::Signed) {
        return Ok(false);
    }
    set_status(&mut tx, &conv.id, Status::Terminated, ctx.now).await?;
    let summary = json!({ "reason": conv.termination_reason, "effective": conv.termination_effective });
    record_for_parties(ctx, &mut tx, "conventions.terminated", &conv, summary).await?;
    tx.commit().await?;
    Ok(true)
}

/// A résiliation takes effect (its first day without the convention) between the start, where
/// the convention never applied, and the day after the end, which is its expiry.
fn check_termination_date(start: NaiveDate, end: NaiveDate, effective: NaiveDate) -> Result<(), Problem> {
    if effective < start {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "la résiliation ne peut prendre effet le {} : la convention ne commence que le {}",
                french_date(&effective.to_string()),
                french_date(&start.to_string())
            ),
        ));
    }
    if effective > end {
        return Err(Problem::invalid_field(
            "effective_date",
            format!(
                "la convention prend fin le {} : une résiliation au {} n'aurait pas d'objet",
                french_date(&end.to_string()),
                french_date(&effective.to_string())
            ),
        ));
    }
    Ok(())
}

/// An avenant amends a convention in force: when `original` ends, its avenants still in
/// preparation (draft, in signature, signed and not started) end with it, audited as `actor`;
/// signed later, one would make the ended convention live again as « amended ».
pub(crate) async fn end_pending_avenants(
    tx: &mut Tx,
    backend: ent_kernel::store::Backend,
    actor: &Actor,
    original: &Convention,
    effective: &str,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let (original_id, original_reference) = (&original.id, &original.reference);
    // An avenant is between the original's parties.
    let parties = party_orgs(original);
    let pending: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, reference FROM conventions WHERE amends_id = $1 AND status IN ('draft', 'in_signature', 'signed') \
         ORDER BY id",
    )
    .bind(original_id)
    .fetch_all(&mut **tx)
    .await?;
    let reason = format!("la convention {original_reference} qu'il modifiait a pris fin");
    for (id, reference) in pending {
        let ending =
            AvenantEnd { id: &id, reference: &reference, amends: Some(original_reference), reason: &reason, effective };
        end_avenant(tx, backend, actor, &ending, &parties, now).await?;
    }
    Ok(())
}

/// An avenant ended before it took effect, and why.
struct AvenantEnd<'a> {
    id: &'a str,
    reference: &'a str,
    /// The reference of the convention it amended (none for a convention constitutive).
    amends: Option<&'a str>,
    reason: &'a str,
    /// `YYYY-MM-DD`.
    effective: &'a str,
}

/// Ends the avenant `ending` (terminated, its reason and day recorded), audited as `actor` to `parties`.
async fn end_avenant(
    tx: &mut Tx,
    backend: ent_kernel::store::Backend,
    actor: &Actor,
    ending: &AvenantEnd<'_>,
    parties: &[&str],
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    sqlx::query(
        "UPDATE conventions SET status = 'terminated', termination_reason = $1, termination_effective = $2, \
         version = version + 1, updated_at = $3 WHERE id = $4",
    )
    .bind(ending.reason)
    .bind(ending.effective)
    .bind(timestamp(now))
    .bind(ending.id)
    .execute(&mut **tx)
    .await?;
    let summary = json!({
        "reference": ending.reference, "reason": ending.reason, "effective": ending.effective, "amends": ending.amends
    });
    audit_to_parties(tx, backend, actor, "conventions.terminate", ending.id, parties, summary, now).await
}

/// Ends a convention still in preparation (draft or in signature) that has lost its object — the
/// groupement's flow: an avenant when the member it was adding leaves before signing, its
/// convention constitutive when its last member leaves — for `reason`, today; written by a party
/// (the one leaving included). Its collected visas and signatures are voided.
pub async fn end_in_preparation(ctx: &Ctx<'_>, conv: &Convention, reason: &str) -> Result<Convention, Problem> {
    let mut tx = ctx.store.begin_write().await?;
    end_in_preparation_in(ctx, &mut tx, &conv.id, reason).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// [`end_in_preparation`] of the convention `id`, read again and locked in the write transaction
/// `tx`, which the caller commits with what must happen with it (the groupement unlinking the
/// convention constitutive it ends) or not at all.
pub async fn end_in_preparation_in(ctx: &Ctx<'_>, tx: &mut Tx, id: &str, reason: &str) -> Result<(), Problem> {
    let conv = &super::read_convention(tx, ctx.models, id, true).await?.ok_or_else(not_found)?;
    require_status(conv, &[Status::Draft, Status::InSignature], "abandonner")?;
    require_writer_of(ctx, conv)?;
    let amends: Option<String> = match &conv.amends_id {
        Some(original) => Some(
            sqlx::query_scalar("SELECT reference FROM conventions WHERE id = $1")
                .bind(original)
                .fetch_one(&mut **tx)
                .await?,
        ),
        None => None,
    };
    void_steps(tx, conv, reason, ctx.now).await?;
    let today = ctx.today().to_string();
    let ending =
        AvenantEnd { id: &conv.id, reference: &conv.reference, amends: amends.as_deref(), reason, effective: &today };
    end_avenant(tx, ctx.store.backend(), ctx.actor, &ending, &party_orgs(conv), ctx.now).await
}

/// An avenant is submitted and signed only while the convention it amends is in force.
async fn require_original_in_force(conn: &mut AnyConnection, conv: &Convention) -> Result<(), Problem> {
    let Some(original) = &conv.amends_id else { return Ok(()) };
    let row: Option<(String, String)> = sqlx::query_as("SELECT reference, status FROM conventions WHERE id = $1")
        .bind(original)
        .fetch_optional(conn)
        .await?;
    let Some((reference, status)) = row else { return Ok(()) };
    let status = Status::parse(&status);
    conflict_unless(status == Some(Status::Active), || {
        let label = status.map_or("close", Status::label);
        format!("la convention {reference} que cet avenant modifie est {label} : l'avenant n'a plus d'objet")
    })
}

/// Starts an avenant: a draft copy of an active convention, to be edited and signed.
pub async fn amend(ctx: &Ctx<'_>, conv: &Convention) -> Result<Convention, Problem> {
    require_status(conv, &[Status::Active], "amender")?;
    require_no_notified_termination(conv)?;
    require_writer_of(ctx, conv)?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let mut params = conv.parameters.clone();
    params.remove("start_date");
    // An avenant takes effect on its own date: today, not the original's start. An original past
    // its end (its expiry not yet run) keeps its dates: such an avenant is refused at submission.
    let today = ctx.today().to_string();
    let start = if today <= conv.end_date { &today } else { &conv.start_date };
    let mut draft = build_draft(
        ctx,
        model,
        Some(format!("Avenant – {}", conv.title)),
        &current_parties(conv),
        &[],
        &params,
        start,
        Some(&conv.end_date),
        super::convention_departement(conv),
    )
    .await?;
    draft.signatories = super::signatories::current(conv);
    draft.shares = current_shares(conv);
    let mut tx = ctx.store.begin_write().await?;
    let id = insert_in(ctx, &mut tx, model, &draft, Some(conv)).await?;
    commit_and_reload(ctx, tx, &id).await
}

/// Signed copies kept per convention: the parties' copies, a few re-scans at most.
pub const MAX_SIGNED_COPIES: i64 = 10;

/// An externally signed copy (e.g. a PDF from a parapheur), stored with its hash;
/// refused on a draft and beyond [`MAX_SIGNED_COPIES`].
pub async fn upload_signed(
    ctx: &Ctx<'_>,
    conv: &Convention,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Result<Convention, Problem> {
    require_writer_of(ctx, conv)?;
    conflict_unless(conv.status != Status::Draft, || {
        format!(
            "la convention {} est un brouillon : un exemplaire signé se dépose une fois la convention soumise à signature",
            conv.reference
        )
    })?;
    if bytes.is_empty() {
        return Err(Problem::invalid_field("fichier", "fichier vide"));
    }
    let name = file_name.trim();
    if name.is_empty() || name.len() > 200 || name.contains(['/', '\\']) {
        return Err(Problem::invalid_field(
            "fichier",
            "nom de fichier invalide (en-tête Content-Disposition ou paramètre name)",
        ));
    }
    let sha = ent_documents::documents::sha256_hex(bytes);
    let mut tx = ctx.store.begin_write().await?;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM convention_files WHERE convention_id = $1")
        .bind(&conv.id)
        .fetch_one(&mut *tx)
        .await?;
    conflict_unless(stored < MAX_SIGNED_COPIES, || {
        format!(
            "la convention {} a déjà {MAX_SIGNED_COPIES} exemplaires signés : aucun autre n'est accepté",
            conv.reference
        )
    })?;
    sqlx::query(
        "INSERT INTO convention_files (id, convention_id, file_name, content_type, sha256, size, content, uploaded_by, uploaded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(&conv.id)
    .bind(name)
    .bind(content_type)
    .bind(&sha)
    .bind(bytes.len() as i64)
    .bind(bytes.to_vec())
    .bind(&ctx.actor.name)
    .bind(timestamp(ctx.now))
    .execute(&mut *tx)
    .await?;
    record_for_parties(
        ctx,
        &mut tx,
        "conventions.upload_signed",
        conv,
        json!({ "file": name, "sha256": sha, "size": bytes.len() }),
    )
    .await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// What [`complete_if_all_signed`] did with a convention in signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every visa and signature present: now signed (active if started).
    Completed,
    /// Nothing to complete: a signature or visa is missing, or it is no longer in signature.
    Left,
    /// Every signature present, but another convention came into force on its schools
    /// meanwhile ([`require_still_alone`]): left in signature, audited
    /// `conventions.completion_refused`.
    Refused,
}

/// In signature → signed for a convention whose required visas and signatures are
/// all present but whose status was left behind (the daily job repairs it), unless another
/// convention now in force on its schools would overlap it ([`Completion::Refused`]).
pub async fn complete_if_all_signed(ctx: &Ctx<'_>, id: &str) -> Result<Completion, Problem> {
    let (store, models) = (ctx.store, ctx.models);
    let all_signed = |conv: &Convention| -> Result<bool, Problem> {
        let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
        Ok(conv.status == Status::InSignature
            && conv.live_steps("visa").count() >= model.visas.len()
            && pending_signers(model, conv).is_empty())
    };
    // A plain read first: only a complete convention takes the write lock.
    match get_convention(store, models, id).await? {
        Some(conv) if all_signed(&conv)? => {}
        _ => return Ok(Completion::Left),
    }
    let Some((mut tx, conv)) = lock_if_exists(ctx, id).await? else { return Ok(Completion::Left) };
    if !all_signed(&conv)? {
        return Ok(Completion::Left);
    }
    match require_still_alone(&mut tx, models, &conv).await {
        Ok(()) => {}
        Err(p) if p.kind == ProblemKind::Conflict => {
            let summary = json!({ "reason": p.detail });
            let parties = party_orgs(&conv);
            let action = "conventions.completion_refused";
            audit_to_parties(&mut tx, store.backend(), ctx.actor, action, &conv.id, &parties, summary, ctx.now).await?;
            tx.commit().await?;
            return Ok(Completion::Refused);
        }
        Err(p) => return Err(p),
    }
    mark_signed(&mut tx, store.backend(), ctx.actor, &conv, ctx.now).await?;
    tx.commit().await?;
    activate_if_started(ctx, &conv.id).await?;
    Ok(Completion::Completed)
}

/// Signed → active once the start date is reached; an avenant replaces its original.
pub async fn activate_if_started(ctx: &Ctx<'_>, id: &str) -> Result<bool, Problem> {
    let (store, models, actor, now) = (ctx.store, ctx.models, ctx.actor, ctx.now);
    let Some((mut tx, conv)) = lock_if_exists(ctx, id).await? else { return Ok(false) };
    let today = today_in_france(now).to_string();
    if conv.status != Status::Signed || conv.start_date > today {
        return Ok(false);
    }
    let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
    set_status(&mut tx, &conv.id, Status::Active, now).await?;
    if let Some(original) = &conv.amends_id {
        set_status(&mut tx, original, Status::Amended, now).await?;
        super::renewal::carry_non_renewal(&mut tx, original, &conv.id).await?;
    }
    let superseded = match &conv.supersedes_id {
        Some(replaced) => end_superseded(&mut tx, models, actor, replaced, &conv, now).await?,
        None => false,
    };
    let summary = json!({ "replaces": conv.amends_id, "supersedes": conv.supersedes_id, "superseded": superseded });
    audit_to_parties(
        &mut tx,
        store.backend(),
        actor,
        "conventions.activate",
        &conv.id,
        &party_orgs(&conv),
        summary,
        now,
    )
    .await?;
    let recipients = party_signers(&mut tx, model, &conv).await?;
    super::jobs::notify(&mut tx, &recipients, &conv, "active", json!({}), now).await?;
    tx.commit().await?;
    Ok(true)
}

/// The résiliation of a convention replaced by `by` (a convention of another model), recorded
/// on the day `by` takes effect, audited as `actor`, its parties' signatories notified. Checked
/// again now, as it may have changed since `by` was created: only while it is signed or in force
/// and still covers one of `by`'s schools; false when it is left as it is.
async fn end_superseded(
    tx: &mut Tx,
    models: &[ConventionModel],
    actor: &Actor,
    replaced: &str,
    by: &Convention,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let Some(old) = super::read_convention(tx, models, replaced, true).await? else { return Ok(false) };
    let schools: Vec<&str> = by.schools.iter().map(|s| s.id.as_str()).collect();
    if !matches!(old.status, Status::Active | Status::Signed) || !old.covers_any(&schools) {
        return Ok(false);
    }
    let reason = format!("remplacée par la convention {}", by.reference);
    sqlx::query(
        "UPDATE conventions SET status = 'terminated', termination_reason = $1, termination_effective = $2, \
         version = version + 1, updated_at = $3 WHERE id = $4",
    )
    .bind(&reason)
    .bind(&by.start_date)
    .bind(timestamp(now))
    .bind(&old.id)
    .execute(&mut **tx)
    .await?;
    let backend = Backend::of_connection(tx);
    let summary = json!({ "reason": reason, "effective": by.start_date, "superseded_by": by.reference });
    audit_to_parties(tx, backend, actor, "conventions.terminate", &old.id, &party_orgs(&old), summary, now).await?;
    end_pending_avenants(tx, backend, actor, &old, &by.start_date, now).await?;
    let model = find_model(models, &old.model_id, Some(old.model_version))?;
    let recipients = party_signers(tx, model, &old).await?;
    let extra = json!({ "reason": reason, "effective": french_date(&by.start_date), "mutual_agreement": false });
    super::jobs::notify(tx, &recipients, &old, "terminated", extra, now).await?;
    Ok(true)
}

/// Problems are `ProblemKind` values; used by routes to map missing conventions.
pub fn not_found() -> Problem {
    Problem::new(ProblemKind::NotFound, "convention introuvable")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_notice_runs_from_today_and_a_convention_ending_first_simply_expires() {
        assert_eq!(end_of_notice(day("2026-09-01"), 3).unwrap(), day("2026-12-01"));
        assert_eq!(end_of_notice(day("2026-11-28"), 3).unwrap(), day("2027-02-28"));
        for (notified, months) in [("2026-11-29", 3), ("2026-11-30", 3), ("2027-01-31", 1)] {
            let earliest = end_of_notice(day(notified), months).unwrap();
            assert_eq!(earliest, day("2027-03-01"), "{notified}: never cut short by a shorter month");
        }
        assert_eq!(end_of_notice(day("2027-11-29"), 3).unwrap(), day("2028-02-29"), "a leap February is long enough");
        let earliest = end_of_notice(day("2026-11-30"), 3).unwrap();
        let end = day("2029-08-31");
        assert!(check_notice(3, earliest, end, earliest).is_ok());
        let early = check_notice(3, earliest, end, day("2027-02-28")).unwrap_err();
        assert_eq!(early.errors[0].field, "effective_date");
        assert!(early.errors[0].message.contains("au plus tôt le 1er mars 2027"), "{early:?}");
        let late = check_notice(3, earliest, day("2027-01-31"), day("2027-01-31")).unwrap_err();
        assert!(late.errors[0].message.contains("prend fin d'elle-même à son terme"), "{late:?}");
    }

    #[test]
    fn a_termination_takes_effect_from_the_start_to_the_day_after_the_end() {
        let (start, end) = (day("2026-09-01"), day("2029-08-31"));
        assert!(check_termination_date(start, end, start).is_ok(), "never in force");
        assert!(check_termination_date(start, end, end).is_ok());
        for refused in ["2026-08-31", "2029-09-01"] {
            let problem = check_termination_date(start, end, day(refused)).unwrap_err();
            assert_eq!(problem.kind, ProblemKind::Validation, "{refused}");
        }
    }
}
