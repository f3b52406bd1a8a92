//! Drafting a convention: its parties, schools, parameters and dates checked, created, edited
//! (signatures voided), amended (an avenant); the coverage rules (no école under two conventions).

use super::ending::require_no_notified_termination;
use super::{
    audit_to_parties, commit_and_reload, leads, leads_convention, record_for_parties, require_conductor_of,
    require_party_member, require_status, require_writer_of, set_document_hash, void_steps, writes_for, Ctx,
    COORDINATOR_ONLY,
};
use crate::conventions::frozen::{Frozen, Rendering};
use crate::conventions::model::{ConventionModel, ParameterType};
use crate::conventions::signatories::{self, Signatory, SignatoryPatch};
use crate::conventions::{
    effective_controller, find_model, get_seen_convention, roles_key, Convention, RolesKey, Status,
};
use chrono::{Datelike, Days, NaiveDate};
use ent_documents::documents::grouped;
use ent_kernel::clock::{french_date, term_end};
use ent_kernel::error::{conflict_unless, Checks, Problem};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::store::counters::next_reference;
use ent_kernel::store::expect_version;
use ent_kernel::store::{new_id, timestamp, Backend, Store, Tx};
use ent_kernel::validate::{self, is_blank, parse_any_date};
use ent_platform::identity::authz::{self, forbidden, in_org_scope};
use ent_platform::identity::Actor;
use ent_platform::registry::queries::missing_org;
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::AnyConnection;
use std::collections::BTreeMap;

/// One organisation, or several for a `multiple` party, or one organisation with its signatory.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PartyInput {
    One(String),
    Many(Vec<String>),
    Detailed(PartyDetail),
}

/// What a party may be given as, said when it is given otherwise.
const PARTY_FORMS: &str = "une partie se donne par la clé de son organisation (« commune:94034 », un UAI, un \
     identifiant), par une liste de clés pour une partie qui en admet plusieurs ([\"commune:94034\", \
     \"commune:94041\"]), ou par un objet { \"org\": clé, \"signatory\": { … } } pour une seule organisation \
     avec son signataire";

/// Read by its shape (a key, a list of keys, an object), so that a party given otherwise is
/// refused in French rather than by serde's words on untagged enums.
impl<'de> Deserialize<'de> for PartyInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(key) => Ok(PartyInput::One(key)),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(key) => Ok(key),
                    _ => Err(D::Error::custom(PARTY_FORMS)),
                })
                .collect::<Result<_, _>>()
                .map(PartyInput::Many),
            detail @ Value::Object(_) => PartyDetail::deserialize(detail).map(PartyInput::Detailed).map_err(|e| {
                D::Error::custom(format!("{} ({PARTY_FORMS})", ent_kernel::validate::serde_in_french(&e.to_string())))
            }),
            _ => Err(D::Error::custom(PARTY_FORMS)),
        }
    }
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
    crate::conventions::signatories::check_given(model, given, ctx.today(), &mut checks);
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
    /// Replaces every party: all of the model's are given (422 on `parties` naming those left
    /// out); a title generated for the old parties is generated again for the new ones.
    pub parties: Option<BTreeMap<String, PartyInput>>,
    /// Party key (or `key:org_id`) → who signs for it and the act that empowers them, field by
    /// field: an absent field keeps its value (a member's act, taken from its candidature), `null`
    /// clears it.
    pub signatories: Option<BTreeMap<String, SignatoryPatch>>,
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
    /// `key:org_id` ([`crate::conventions::signatories::party_org_key`]) → the organisation's own cost share,
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
                        format!("{} est {} ; attendu : {}", org.name, org.kind.with_article(), allowed.join(", "))
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
    if let Err(mut refused) = require_party_member(naming.actor, model, &named) {
        if let Some(needed) = dsden_role_needed(naming, &parties).await? {
            refused.detail = format!("{}. {needed}", refused.detail);
        }
        return Err(refused);
    }
    Ok(parties)
}

/// For a DAN of an académie refused a convention whose académie party is one of its DSDEN:
/// which role at which organisation is needed. The registry places the DSDEN in the académie's
/// scope (its DAN reads it), but a convention is written, signed and read by its parties' own
/// roles (`Convention::is_seen_by`): the DSDEN is the IA-DASEN's, who signs for it, and a
/// convention drafted by the académie's DAN in its name would be one its drafter could not open.
async fn dsden_role_needed(naming: &Naming<'_>, parties: &[(String, Org)]) -> Result<Option<String>, Problem> {
    let dans = naming.actor.bindings.iter().filter(|b| b.role == Role::Dan).filter_map(|b| b.org.as_ref());
    for academie in dans.filter(|o| o.kind == OrgKind::Academie) {
        for (_, dsden) in parties.iter().filter(|(_, o)| o.kind == OrgKind::Dsden) {
            if in_org_scope(naming.store, academie, dsden).await? {
                let (academie, dsden) =
                    (naming::of_org(academie.kind, &academie.name), naming::of_org(dsden.kind, &dsden.name));
                return Ok(Some(format!(
                    "Votre rôle DAN à {} ne s'étend pas aux conventions dont {} est partie : il faut le rôle DAN à {} \
                     elle-même, ou nommer {} comme partie académique",
                    academie.article, dsden.article, dsden.article, academie.article,
                )));
            }
        }
    }
    Ok(None)
}

/// The parameters of `model` given, checked; `start` is the `start_date` parameter, `None`
/// when the start date is invalid (said once, on its own field).
fn check_parameters(
    model: &ConventionModel,
    given: &Map<String, Value>,
    start: Option<&str>,
    checks: &mut Checks,
) -> Map<String, Value> {
    let mut params = Map::new();
    for key in given.keys() {
        if key == "start_date" {
            // The start is its own field (`start_date`), with its checks; a copy here would be
            // accepted and dropped (attack review 39, F3).
            checks.fail("parameters.start_date", "la date de prise d'effet se donne par le champ start_date");
        } else if !model.parameters.iter().any(|p| &p.key == key) {
            checks.fail(&format!("parameters.{key}"), "paramètre inconnu du modèle");
        }
    }
    for spec in &model.parameters {
        let field = format!("parameters.{}", spec.key);
        let value = if spec.key == "start_date" {
            let Some(start) = start else { continue };
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
        if let (ParameterType::Date, Some(Err(message))) = (spec.kind, value.as_str().map(validate::date)) {
            checks.fail(&field, format!("{} : {message}", spec.label));
            continue;
        }
        let ok = match spec.kind {
            ParameterType::Text => value
                .as_str()
                .is_some_and(|s| validate::multiline(s).is_ok() && s.chars().count() <= MAX_TEXT_PARAMETER),
            ParameterType::Integer | ParameterType::Cents => {
                let (min, max) = spec.bounds();
                value.as_i64().is_some_and(|v| (min..=max).contains(&v))
            }
            ParameterType::Percent => value.as_f64().is_some_and(|v| (0.0..=100.0).contains(&v)),
            ParameterType::Boolean => value.is_boolean(),
            ParameterType::Date => value.as_str().is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        };
        if !ok {
            let (min, max) = spec.bounds();
            let digits = |n: i64| format!("{}{}", if n < 0 { "-" } else { "" }, grouped(n.unsigned_abs()));
            let expected = match spec.kind {
                ParameterType::Text => "un texte de 1 000 caractères au plus".to_string(),
                ParameterType::Integer => format!("un entier de {} à {}", digits(min), digits(max)),
                ParameterType::Cents => format!("un montant entier en centimes, de {} à {}", digits(min), digits(max)),
                ParameterType::Percent => "un pourcentage entre 0 et 100".to_string(),
                ParameterType::Boolean => "vrai ou faux".to_string(),
                ParameterType::Date => "une date AAAA-MM-JJ".to_string(),
            };
            checks.fail(&field, format!("{} : attendu {expected}", spec.label));
            continue;
        }
        params.insert(spec.key.clone(), one_line(spec.kind, value));
    }
    params
}

/// A parameter the model requires when another is more than 0 (`required_when_positive`), given
/// and more than 0. The académie's share of a bipartite's cost is a financial commitment of the
/// State: its legal commitment is made for a determined amount, within an authorisation of
/// commitment (décret n° 2012-1246 du 7 novembre 2012 relatif à la gestion budgétaire et
/// comptable publique, art. 30 et s.), and the commune budgets the receipt (CGCT, art. L. 2311-1
/// et s.): a percentage alone, on no amount and with no ceiling, commits to nothing definite.
/// Checked on a draft's creation, edit and submission, not when an avenant is opened: the
/// avenant of a convention signed without it is how the parties add it. A text of an edition
/// before `document::FIGURES_EDITION` (a refused one back in draft) states no such commitment.
pub(crate) fn require_commitments(
    model: &ConventionModel,
    edition: i64,
    params: &Map<String, Value>,
) -> Result<(), Problem> {
    if edition < crate::conventions::document::FIGURES_EDITION {
        return Ok(());
    }
    let mut checks = Checks::default();
    check_required_when_positive(model, params, &mut checks);
    checks.finish()
}

fn check_required_when_positive(model: &ConventionModel, params: &Map<String, Value>, checks: &mut Checks) {
    for spec in &model.parameters {
        let Some(key) = spec.required_when_positive.as_deref() else { continue };
        if !params.get(key).and_then(Value::as_f64).is_some_and(|v| v > 0.0) {
            continue;
        }
        if params.get(&spec.key).and_then(Value::as_f64).is_some_and(|v| v > 0.0) {
            continue;
        }
        let when = model.parameters.iter().find(|p| p.key == key).map_or(key, |p| p.label.as_str());
        checks.fail(
            &format!("parameters.{}", spec.key),
            format!(
                "paramètre obligatoire lorsque « {when} » dépasse 0 : indiquez « {} » ({}), supérieur à 0 ; un \
                 engagement financier porte sur un montant déterminé",
                spec.label, spec.key
            ),
        );
    }
}

/// A text parameter is set inside a clause's sentence: its line breaks and runs of spaces
/// become one space (a groupement's objet typed as a paragraph included), so that no value
/// adds a paragraph that reads as an article.
fn one_line(kind: ParameterType, value: Value) -> Value {
    match (kind, value.as_str()) {
        (ParameterType::Text, Some(text)) => Value::String(text.split_whitespace().collect::<Vec<_>>().join(" ")),
        _ => value,
    }
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
/// [`crate::conventions::convention_departement`]: an avenant covers the schools of the convention it amends).
async fn derive_schools(
    store: &Store,
    model: &ConventionModel,
    parties: &[(String, Org)],
    fixed: Option<&str>,
) -> Result<Vec<Covered>, Problem> {
    let Some(party_key) = &model.covers.party else { return Ok(vec![]) };
    let departement =
        crate::conventions::dsden_departement(parties.iter().map(|(_, o)| (o.kind, o.code.as_str()))).or(fixed);
    let mut schools = Vec::new();
    for (_, org) in parties.iter().filter(|(k, _)| k == party_key) {
        if org.kind == OrgKind::Etablissement {
            schools.push(Covered { school: org.clone(), by: org.clone() });
            continue;
        }
        let covered = crate::conventions::covered_etablissements(store, org).await?.into_iter().filter(|o| {
            (model.covers.etab_types.is_empty() || o.etab_type.is_some_and(|t| model.covers.etab_types.contains(&t)))
                && crate::conventions::within_departement(departement, o)
        });
        schools.extend(covered.map(|school| Covered { school, by: org.clone() }));
    }
    Ok(schools)
}

/// The draft of a convention as named; `existing`, the convention it edits or amends, whose
/// département its schools then stay within ([`kept_departement`]), as the convention in force
/// covers them, though its collectivité party came to cover écoles of another one since (a
/// commune delegating its ENT to an EPCI). Without one, an académie-controlled draft whose
/// écoles span two départements is refused ([`crate::conventions::require_one_dsden`]).
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
    existing: Option<&Convention>,
) -> Result<Draft, Problem> {
    let mut checks = Checks::default();
    let start = checks.date("start_date", start_date);
    let store = ctx.store;
    let mut naming = Naming::new(store, ctx.actor);
    let parties = resolve_parties(&mut naming, model, parties_input, parties_before, &mut checks).await?;
    // In the same round as the parties: a party the caller may not read, refused for its scope,
    // fails beside the other errors exactly as a key naming nothing does.
    let departement = existing.and_then(|conv| kept_departement(conv, &parties));
    let covered = derive_schools(store, model, &parties, departement).await?;
    check_schools_in_scope(&mut naming, &parties, &covered, &mut checks).await?;
    if covered.is_empty() {
        check_unread_coverers(&mut naming, model, &parties, &mut checks).await?;
    }
    let parameters = check_parameters(model, params_input, start.map(|_| start_date), &mut checks);
    check_shares(model, &parameters, &mut checks);
    let end = match (start, end_date) {
        (_, Some(end)) => checks.date("end_date", end),
        (Some(start), None) => term_end(start, model.duration_months),
        (None, None) => None,
    };
    let start = start.filter(|day| within_convention_days("start_date", *day, &mut checks));
    let end = end.filter(|day| within_convention_days("end_date", *day, &mut checks));
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
        crate::conventions::require_one_dsden(&mut *store.conn().await?, &controller.as_ref(), &refs).await?;
    }
    Ok(Draft {
        title: title.filter(|t| !is_blank(t)).unwrap_or_else(|| default_title(model, &parties)),
        parties,
        parameters,
        start: start.expect("checked"),
        end: end.expect("checked"),
        schools,
        signatories: signatories_in(parties_input),
        shares: BTreeMap::new(),
    })
}

/// A draft covering no school is refused for it once every other check passed (« aucun
/// établissement couvert »): said of a covering party the caller may not read, that refusal
/// would tell it exists. Such a party fails in the same round as a key naming nothing, in
/// the same words, on create and edit alike.
async fn check_unread_coverers(
    naming: &mut Naming<'_>,
    model: &ConventionModel,
    parties: &[(String, Org)],
    checks: &mut Checks,
) -> Result<(), Problem> {
    let Some(covering) = &model.covers.party else { return Ok(()) };
    for (key, org) in parties.iter().filter(|(key, _)| key == covering) {
        if !naming.reads(org).await? {
            checks.fail(&format!("parties.{key}"), missing_org(&naming.key_of(org)).detail);
        }
    }
    Ok(())
}

/// The first and last days a convention's dates may name: those of any date entered
/// ([`validate::DAYS`]).
pub const CONVENTION_DAYS: (NaiveDate, NaiveDate) = validate::DAYS;

/// Whether `day`, the convention's `field`, lies within [`CONVENTION_DAYS`]; records the error
/// otherwise (for an end the model's duration computed, the start that brought it there is named).
fn within_convention_days(field: &str, day: NaiveDate, checks: &mut Checks) -> bool {
    checks.check(field, validate::within_days(day)).is_some()
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

/// The title of a draft naming `parties`: [`title_naming`] with their names as a document shows
/// them (`naming::display_name`: « École … », not the directory's « Ecole … »).
fn default_title(model: &ConventionModel, parties: &[(String, Org)]) -> String {
    title_naming(model, parties.iter().map(|(_, o)| naming::display_name(&o.name)))
}

/// The model's title followed by the names of the parties after the first (in the model's order).
fn title_naming(model: &ConventionModel, party_names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = party_names.skip(1).collect();
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
            let of = || naming::of_org(party.kind, &party.name).of;
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
pub(super) struct Coverage<'a> {
    pub(super) model: &'a ConventionModel,
    pub(super) schools: &'a [Org],
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
    /// Its lineage (root id): an avenant does not conflict with its original.
    pub(super) lineage: Option<&'a str>,
    pub(super) roles: RolesKey,
    /// The id of the convention it explicitly replaces.
    pub(super) supersedes: Option<&'a str>,
    /// Checked as it is drafted (created, edited), not as it is signed: a successor of a
    /// convention its drafter does not read is refused whatever that convention's term
    /// ([`overlap_refusal`]).
    pub(super) drafted: bool,
}

/// A live convention on one of the schools a new one covers, as [`check_no_overlap`] reads it.
#[derive(sqlx::FromRow)]
pub(crate) struct Other {
    pub(crate) id: String,
    pub(super) model_id: String,
    model_version: i64,
    end_date: String,
    non_renewal_at: Option<String>,
    pub(crate) supersedes_id: Option<String>,
}

impl Other {
    /// Whether it is renewed tacitly at its term: a renewable model, no non-reconduction
    /// ([`crate::conventions::renewal::renews`]).
    fn renews(&self, models: &[ConventionModel]) -> bool {
        let renewable = u32::try_from(self.model_version)
            .ok()
            .and_then(|v| find_model(models, &self.model_id, Some(v)).ok())
            .is_some_and(|m| m.renewable);
        renewable && self.non_renewal_at.is_none()
    }

    /// Whether a convention starting on `start` takes over from it the day after its term,
    /// where it is then not renewed ([`crate::conventions::renewal::succession`]).
    fn succeeded_on(&self, models: &[ConventionModel], start: NaiveDate) -> Result<bool, Problem> {
        let end = parse_any_date("end_date", &self.end_date)?;
        Ok(self.renews(models) && end.succ_opt() == Some(start))
    }

    /// Whether it still covers the school on `start`: its term is not before, or it is renewed
    /// tacitly at its term and `start` is not the day after that term ([`Other::succeeded_on`]).
    pub(super) fn overlaps_from(&self, models: &[ConventionModel], start: NaiveDate) -> Result<bool, Problem> {
        let end = parse_any_date("end_date", &self.end_date)?;
        Ok(end >= start || (self.renews(models) && !self.succeeded_on(models, start)?))
    }

    /// Whether `new`, a successor from the day after its term (else it does not cover `new`'s
    /// dates), is drafted by an `actor` who does not read it: it is then refused as on any
    /// other day ([`check_no_overlap`]).
    async fn unread_successor(
        &self,
        conn: &mut AnyConnection,
        models: &[ConventionModel],
        new: &Coverage<'_>,
        actor: &Actor,
    ) -> Result<bool, Problem> {
        Ok(new.drafted
            && self.succeeded_on(models, new.start)?
            && self.reference_for(conn, models, actor).await?.is_none())
    }

    /// Its reference as a refusal may tell `actor` ([`Convention::reference_for`]), read through `conn`.
    async fn reference_for(
        &self,
        conn: &mut AnyConnection,
        models: &[ConventionModel],
        actor: &Actor,
    ) -> Result<Option<String>, Problem> {
        let conv = crate::conventions::read_convention(conn, models, &self.id, false).await?;
        Ok(conv.as_ref().and_then(|c| c.reference_for(actor)).map(str::to_string))
    }

    /// How many of the schools it covers today ([`crate::conventions::schools_covered_now`]: an
    /// école opened in its commune since it was drafted too) a successor from the day after its
    /// term (`new`) leaves out, unless it replaces it explicitly (`supersedes`): 0 when it covers
    /// them all. A successor ends its tacit renewal on every school it covers, so the others
    /// would lose their convention.
    async fn left_out_by(
        &self,
        conn: &mut AnyConnection,
        models: &[ConventionModel],
        new: &Coverage<'_>,
    ) -> Result<usize, Problem> {
        if new.supersedes == Some(self.id.as_str()) {
            return Ok(0);
        }
        let Some(conv) = crate::conventions::read_convention(&mut *conn, models, &self.id, false).await? else {
            return Ok(0);
        };
        let schools = crate::conventions::schools_covered_now(conn, models, &conv).await?;
        Ok(schools.iter().filter(|id| !new.schools.iter().any(|s| &s.id == *id)).count())
    }

    /// The refusal of a successor from the day after its term that leaves `left_out` of its
    /// schools out ([`Other::left_out_by`]), to whom may be told its `reference`
    /// ([`Convention::reference_for`]): with its term and how to end its renewal. Another is
    /// never told it ([`check_no_overlap`]): its very existence would date the term.
    fn partial_succession_refusal(&self, reference: &str, left_out: usize) -> Problem {
        let problem = Problem::conflict(format!(
            "{it} est reconduite tacitement à son terme, le {term}, sauf si une autre lui succède le lendemain : \
             celle-ci lui succéderait sans couvrir {left_out} de ses écoles, qui perdraient alors leur convention. \
             Couvrez toutes ses écoles, notifiez à temps la non-reconduction de {reference}, ou indiquez que la \
             nouvelle convention la remplace (champ supersedes)",
            it = opposed_name(Some(reference)),
            term = french_date(&self.end_date),
        ));
        naming_it(problem, Some(reference))
    }

    /// For a convention renewed tacitly: how to succeed it. Its term and the day after it are
    /// told only to whom may be told its reference (`told`, [`Convention::reference_for`]), for
    /// a new one starting after its term. To another, whenever it renews, wherever its term
    /// falls (before, on or after the new one's start: nothing here depends on it), that a
    /// successor from the day after its term covering all its schools takes over, and who
    /// knows that day.
    fn renewal_hint(&self, models: &[ConventionModel], start: NaiveDate, told: bool) -> Result<String, Problem> {
        if !told {
            return Ok(match self.renews(models) {
                true => " (elle est reconduite tacitement à son terme) : une nouvelle convention qui commence le \
                         lendemain de ce terme et couvre toutes ses écoles lui succède sans reconduction ; ses \
                         parties, qui en connaissent la date, peuvent aussi en notifier la non-reconduction"
                    .to_string(),
                false => String::new(),
            });
        }
        let end = parse_any_date("end_date", &self.end_date)?;
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

/// The live conventions (in signature, signed, in force) that cover the school `school_id` as
/// they stand on the day of the check, whose dates may meet `start..=end` (a tacitly renewed one
/// may, beyond its stored term: see [`Other::overlaps_from`]), outside the lineage `lineage` (an
/// avenant's original): those listing it, and those whose covering party is one of the school's
/// covering parents today (a commune's, or an EPCI's it delegated to), kept if they cover it now
/// under their model (`conventions::covers_school_now`: a bipartite covers an école opened or
/// joined after it was drafted, within its département). Each convention of a lineage (an
/// avenant with its own schools and parties) is tried for itself. The one helper every overlap
/// check reads (drafting, submission, each signature, the cost warnings).
pub(crate) async fn others_on(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    school_id: &str,
    (start, end): (NaiveDate, NaiveDate),
    lineage: Option<&str>,
) -> Result<Vec<Other>, Problem> {
    let Some(school) = ent_platform::registry::queries::get_org_in(&mut *conn, school_id).await? else {
        return Ok(vec![]);
    };
    let parents = crate::conventions::covering_parents_in(&mut *conn, &school).await?;
    let by_party = match parents.is_empty() {
        true => String::new(),
        false => {
            let list = (0..parents.len()).map(|i| format!("${}", i + 6)).collect::<Vec<_>>().join(", ");
            format!(" OR c.id IN (SELECT convention_id FROM convention_parties WHERE org_id IN ({list}))")
        }
    };
    let sql = format!(
        "SELECT c.id, c.model_id, c.model_version, c.end_date, c.non_renewal_at, c.supersedes_id \
         FROM conventions c WHERE (c.id IN (SELECT convention_id FROM convention_schools WHERE org_id = $1){by_party}) \
         AND c.status IN ('in_signature', 'signed', 'active') \
         AND c.start_date <= $2 AND (c.end_date >= $3 OR c.non_renewal_at IS NULL) \
         AND (c.termination_effective IS NULL OR c.termination_effective > $4) \
         AND c.root_id <> $5 ORDER BY c.start_date, c.id"
    );
    let mut query = sqlx::query_as::<_, Other>(&sql)
        .bind(school_id)
        .bind(end.to_string())
        .bind(start.to_string())
        .bind(start.to_string())
        .bind(lineage.unwrap_or(""));
    for parent in &parents {
        query = query.bind(parent);
    }
    let candidates: Vec<Other> = query.fetch_all(&mut *conn).await?;
    let mut covering = Vec::new();
    for other in candidates {
        let Some(conv) = crate::conventions::read_convention(&mut *conn, models, &other.id, false).await? else {
            continue;
        };
        if crate::conventions::covers_school_now(models, &conv, &school, &parents) {
            covering.push(other);
        }
    }
    Ok(covering)
}

/// How a refusal speaks of another convention whose reference it may tell (`reference`,
/// [`Convention::reference_for`]): by it, else as one the caller does not read.
fn opposed_name(reference: Option<&str>) -> String {
    reference.map_or_else(
        || "une autre convention (que vous ne consultez pas)".to_string(),
        |reference| format!("la convention {reference}"),
    )
}

/// `problem` naming the convention it opposes in `conflicting_convention`, if its reference
/// may be told ([`Convention::reference_for`]).
pub(super) fn naming_it(problem: Problem, reference: Option<&str>) -> Problem {
    match reference {
        Some(reference) => problem.with_extra(json!({ "conflicting_convention": reference })),
        None => problem,
    }
}

/// Refuses two live conventions of the same model covering a school over overlapping dates,
/// and one of another model designating other RGPD roles unless it is explicitly superseded.
/// A convention renewed tacitly covers beyond its stored term ([`Other::overlaps_from`]).
/// The other convention is named (in the detail and `conflicting_convention`) only to an
/// `actor` who sees it ([`Convention::reference_for`]), as the cost-split warnings name it.
/// Reads through `conn`: inside a write transaction, pass the transaction's.
pub(super) async fn check_no_overlap(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    new: &Coverage<'_>,
    actor: &Actor,
) -> Result<(), Problem> {
    for school in new.schools {
        let span = (new.start, new.end);
        for other in others_on(&mut *conn, models, &school.id, span, new.lineage).await? {
            let left_out = match other.succeeded_on(models, new.start)? {
                true => other.left_out_by(conn, models, new).await?,
                false => 0,
            };
            if left_out > 0 {
                if let Some(reference) = other.reference_for(conn, models, actor).await? {
                    return Err(other.partial_succession_refusal(&reference, left_out));
                }
            }
            // To whom does not read it, a partial successor is answered as a convention
            // starting on any other day would be: refused in the bytes of the overlap refusal
            // (same model, other RGPD roles), else not refused here, whatever its term. The
            // term stays unknown; each signature checks again for its signer, and a reader is
            // refused there; one signed by none is `renewal::succession`'s partial successor.
            // A full successor is drafted only by whom reads it: to another it is refused as on
            // any other day (accepted on that day alone, the answer would date the term), and
            // the refusal sends them to its parties, who know the day.
            if left_out == 0
                && !other.overlaps_from(models, new.start)?
                && !other.unread_successor(conn, models, new, actor).await?
            {
                continue;
            }
            overlap_refusal(conn, models, new, school, &other, actor).await?;
        }
    }
    Ok(())
}

/// Refuses `new` on `school` over `other`, which covers it on its dates: of the same model, or
/// of another designating other RGPD roles unless `new` supersedes it. Named (reference, term,
/// controller) only to an `actor` who reads it ([`Convention::reference_for`]).
async fn overlap_refusal(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    new: &Coverage<'_>,
    school: &Org,
    other: &Other,
    actor: &Actor,
) -> Result<(), Problem> {
    if other.model_id == new.model.id {
        let reference = other.reference_for(conn, models, actor).await?;
        // Its model is told with its reference only: to another, the bytes of the refusal over
        // one of another model (below), which tell neither.
        let model = if reference.is_some() { " du même modèle" } else { "" };
        return Err(covered_refusal(models, new, school, other, reference.as_deref(), model)?);
    }
    if new.supersedes == Some(other.id.as_str()) {
        return Ok(());
    }
    let Some(conv) = crate::conventions::read_convention(conn, models, &other.id, false).await? else { return Ok(()) };
    let Ok(other_model) = find_model(models, &conv.model_id, Some(conv.model_version)) else { return Ok(()) };
    let reference = conv.reference_for(actor);
    if roles_key(other_model, &conv.parties, conv.rgpd_controller.as_ref()) == new.roles {
        // Same roles, another model: they coexist, but a successor from the day after its term
        // leaving some of its schools out is refused ([`Other::partial_succession_refusal`]).
        // To a drafter who does not read it, whatever its term (refused on that day only, the
        // answer would date it), as the same model is: the bytes tell neither term nor id.
        if new.drafted && reference.is_none() && other.renews(models) && other.left_out_by(conn, models, new).await? > 0
        {
            return Err(covered_refusal(models, new, school, other, None, "")?);
        }
        return Ok(());
    }
    let hint = other.renewal_hint(models, new.start, reference.is_some())?;
    // Its roles are told with its reference only, as its dates are.
    let (controller, remedy) = match reference {
        Some(_) => (
            format!(
                " (responsable de traitement : {})",
                conv.rgpd_controller.as_ref().map_or("aucun", |o| o.name.as_str())
            ),
            "Résiliez-la, rédigez un avenant, ou indiquez que la nouvelle convention la remplace (champ supersedes)",
        ),
        None => (String::new(), "Ses parties seules peuvent la résilier ou la modifier par avenant"),
    };
    let problem = Problem::conflict(format!(
        "{} ({}) est déjà couvert sur ces dates par {}{hint}, qui désigne d'autres rôles au sens du RGPD\
         {controller} : une école n'a qu'un responsable de traitement. {remedy}",
        school.name,
        school.code,
        opposed_name(reference),
    ));
    Err(naming_it(problem, reference))
}

/// The refusal of `new` on `school`, already covered on its dates by `other` (`model`: « du même
/// modèle » to whom may be told its `reference`, or nothing), named only by a `reference` the
/// caller may be told, with how a convention renewed tacitly is succeeded ([`Other::renewal_hint`]).
fn covered_refusal(
    models: &[ConventionModel],
    new: &Coverage<'_>,
    school: &Org,
    other: &Other,
    reference: Option<&str>,
    model: &str,
) -> Result<Problem, Problem> {
    let hint = other.renewal_hint(models, new.start, reference.is_some())?;
    let problem = Problem::conflict(format!(
        "{} ({}) est déjà couvert par {}{model} sur ces dates{hint}",
        school.name,
        school.code,
        opposed_name(reference),
    ));
    Ok(naming_it(problem, reference))
}

/// The parties of a draft as a convention lists them.
fn draft_parties(model: &ConventionModel, draft: &Draft) -> Vec<crate::conventions::Party> {
    draft
        .parties
        .iter()
        .map(|(key, org)| {
            let spec = model.parties.iter().find(|s| &s.key == key).expect("party of the model");
            crate::conventions::Party {
                key: key.clone(),
                label: spec.label.clone(),
                org: org.as_ref(),
                signature_required: spec.signature_required,
                order: spec.order,
                signatory: crate::conventions::signatories::for_party(&draft.signatories, key, &org.id).cloned(),
                share_percent: draft
                    .shares
                    .get(&crate::conventions::signatories::party_org_key(key, &org.id))
                    .copied()
                    .map(crate::conventions::percent_of_bp),
                etab_type: org.etab_type,
                commune: None,
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
pub(super) fn start_at_submission(
    ctx: &Ctx<'_>,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Convention, Problem> {
    let today = ctx.today();
    let start = parse_any_date("start_date", &conv.start_date)?;
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
    let conv = get_seen_convention(ctx.store, ctx.models, key, ctx.actor, &authz::CONVENTIONS_READ)
        .await?
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
        .bind(crate::conventions::signatories::to_column(crate::conventions::signatories::for_party(
            &draft.signatories,
            key,
            &org.id,
        )))
        .bind(draft.shares.get(&crate::conventions::signatories::party_org_key(key, &org.id)).copied())
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
    let given = given_signatories::<Signatory>(None, Some(&input.parties));
    let checked = check_new(ctx, input).await?;
    require_signatory_writers(ctx.actor, checked.model, &checked.draft.parties, &given)?;
    let mut tx = ctx.store.begin_write().await?;
    let id = create_constitutive_in(ctx, &mut tx, &checked).await?;
    commit_and_reload(ctx, tx, &id).await
}

/// The longest text parameter (it is set inside a clause's sentence).
const MAX_TEXT_PARAMETER: usize = 1000;

/// A convention's title is one line of 500 characters at most (it heads the document and
/// the notices; an avenant's is « Avenant n° N à la convention « … » (…) », `avenant::new_title`).
fn check_title(title: Option<&str>) -> Result<(), Problem> {
    let mut checks = Checks::default();
    if let Some(title) = title {
        checks.line("title", title);
        if title.chars().count() > 500 {
            checks.fail("title", "500 caractères au plus");
        }
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
    // The signatories' errors and the draft's, in one round (the console's form shows them all).
    let mut checks = Checks::default();
    checks.collect(check_signatories(ctx, model, &signatories))?;
    let draft = build_draft(
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
    .await;
    let draft = checks.collect(draft)?;
    if let Some(draft) = &draft {
        checks.collect(require_commitments(model, crate::conventions::document::CURRENT_EDITION, &draft.parameters))?;
    }
    checks.finish()?;
    let mut draft = draft.expect("checked");
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
        drafted: true,
    };
    check_no_overlap(&mut *ctx.store.conn().await?, ctx.models, &coverage, ctx.actor).await?;
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
    let reference = next_reference(tx, "CONV", ctx.today().year()).await?;
    let root = amends.map(|c| c.root_id.clone()).unwrap_or_else(|| id.clone());
    sqlx::query(
        "INSERT INTO conventions (id, reference, model_id, model_version, title, status, parameters, start_date, end_date, \
         amends_id, root_id, document_edition, version, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $10, $11, 1, $12, $13, $14)",
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
    .bind(crate::conventions::document::CURRENT_EDITION)
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
    conflict_unless(matches!(status.as_deref(), Some("active" | "signed")), || {
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

/// Edits a draft or a convention in signature as a person asks (the API, the console, the CLI):
/// the parties of a groupement's convention constitutive are not named by hand
/// ([`parties_follow_the_groupement`]), nor the terms its groupement sets ([`GROUPEMENT_TERMS`]);
/// its other terms are its coordinator's ([`leads`]); a party's signatory is designated by that
/// party or by whoever leads the convention ([`require_signatory_writers`]).
pub async fn update(
    ctx: &Ctx<'_>,
    conv: &Convention,
    expected_version: i64,
    patch: ConventionPatch,
) -> Result<Convention, Problem> {
    // Role first: who may not write it is refused whatever its state or the patch.
    require_writer_of(ctx, conv)?;
    check_title(patch.title.as_deref())?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if patch.parties.is_some() {
        parties_follow_the_groupement(
            model,
            "parties",
            "les parties d'une convention constitutive de groupement de commandes suivent les adhésions : le \
             coordonnateur accepte ou rejette les candidatures depuis le groupement",
        )?;
    }
    if !model.governs_ent() {
        if edits_terms(&patch) && !leads_convention(ctx.actor, model, conv) {
            return Err(forbidden(COORDINATOR_ONLY));
        }
        refuse_groupement_terms(&patch)?;
    }
    if let Some(parties) = &patch.parties {
        require_every_party(model, parties)?;
    }
    let given = given_signatories(patch.signatories.as_ref(), patch.parties.as_ref());
    let checked = check_edit(ctx, conv, expected_version, patch).await?;
    require_signatory_writers(ctx.actor, model, &checked.draft.parties, &given)?;
    check_member_acts(ctx, model, conv, &checked.draft.signatories, &given).await?;
    // An edit leaving it as it is: the convention as read, no version, audit record or notice
    // (nor signature voided); a stale `If-Match` is still refused.
    if checked.changes_nothing() {
        if expected_version != conv.version {
            return Err(ent_kernel::error::precondition_failed(conv.version));
        }
        return Ok(conv.clone());
    }
    let mut tx = ctx.store.begin_write().await?;
    update_constitutive_in(ctx, &mut tx, &checked).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// The délibération of a member of a groupement (a party several organisations play in a
/// convention constitutive), taken from its candidature, is replaced by no act dated before the
/// groupement's creation, as the candidature refuses one
/// ([`signatories::check_not_before_groupement`]): 422 on each signatory of `given` whose act does.
async fn check_member_acts(
    ctx: &Ctx<'_>,
    model: &ConventionModel,
    conv: &Convention,
    merged: &BTreeMap<String, Signatory>,
    given: &[String],
) -> Result<(), Problem> {
    let is_member = |key: &str| {
        let party = key.split_once(':').map_or(key, |(party, _)| party);
        model.parties.iter().any(|p| p.key == party && p.multiple)
    };
    let members: Vec<&String> = given.iter().filter(|key| is_member(key)).collect();
    if model.governs_ent() || members.is_empty() {
        return Ok(());
    }
    let groupement: Option<(String, String)> =
        sqlx::query_as("SELECT reference, created_at FROM groupements WHERE convention_id = $1")
            .bind(&conv.root_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    let Some((reference, created_at)) = groupement else { return Ok(()) };
    let created_on = created_at.get(..10).unwrap_or(&created_at);
    let mut checks = Checks::default();
    for key in members {
        let dated = merged.get(key.as_str()).and_then(|s| s.act_date.as_deref());
        let Some(date) = dated.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) else { continue };
        let field = format!("signatories.{key}.act_date");
        signatories::check_not_before_groupement(&field, date, &reference, created_on, &mut checks);
    }
    checks.finish()
}

/// The parameters of a groupement's convention constitutive that its flow writes from the
/// groupement (`membership::parameters_for`: its object, cost key, the coordinator's and the
/// members' parts, the établissements they equip): edited on the groupement, never on the convention.
pub const GROUPEMENT_TERMS: [&str; 5] =
    ["objet", "cle_repartition", "part_coordinateur", "part_membres", "etablissements"];

/// Whether `patch` edits more than signatories: the title, dates or parameters.
fn edits_terms(patch: &ConventionPatch) -> bool {
    patch.title.is_some()
        || patch.parameters.is_some()
        || patch.start_date.is_some()
        || patch.end_date.is_some()
        || patch.backdate_reason.is_some()
}

/// Refuses (422 on each) the parameters of a convention constitutive its groupement sets.
fn refuse_groupement_terms(patch: &ConventionPatch) -> Result<(), Problem> {
    let mut checks = Checks::default();
    for key in patch.parameters.iter().flat_map(|p| p.keys()).filter(|k| GROUPEMENT_TERMS.contains(&k.as_str())) {
        checks.fail(
            &format!("parameters.{key}"),
            "ce terme de la convention constitutive suit le groupement de commandes : le coordonnateur le modifie \
             sur le groupement (PATCH /api/v1/groupements/{id}), qui reporte la modification dans sa convention",
        );
    }
    checks.finish()
}

/// A `parties` map replaces every party of the convention: one that leaves out a party of the
/// model is refused (422 on `parties`, naming those missing), before any is looked up.
fn require_every_party(model: &ConventionModel, parties: &BTreeMap<String, PartyInput>) -> Result<(), Problem> {
    let missing: Vec<String> = model
        .parties
        .iter()
        .filter(|spec| !parties.contains_key(&spec.key))
        .map(|spec| format!("{} ({})", spec.label, spec.key))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Problem::invalid_field(
        "parties",
        format!(
            "la clé parties remplace toutes les parties de la convention : donnez-les toutes, il y manque {}",
            missing.join(", ")
        ),
    ))
}

/// The keys of the signatories a request designates: those of `signatories` and those given
/// with `parties` (`{ "org": …, "signatory": … }`).
fn given_signatories<S>(
    signatories: Option<&BTreeMap<String, S>>,
    parties: Option<&BTreeMap<String, PartyInput>>,
) -> Vec<String> {
    let mut keys: Vec<String> = signatories.into_iter().flat_map(|s| s.keys().cloned()).collect();
    keys.extend(parties.map(signatories_in).unwrap_or_default().into_keys());
    keys
}

/// A party's signatory (`key`, or `key:org_id` for one organisation of a multiple party) is
/// designated by a writer of that party itself, or by whoever [`leads`] the convention between
/// `parties` (an admin, the DAN who drafts it, a groupement's coordinator): a party does not
/// name who commits another (403).
fn require_signatory_writers(
    actor: &Actor,
    model: &ConventionModel,
    parties: &[(String, Org)],
    keys: &[String],
) -> Result<(), Problem> {
    if leads(actor, model, parties.iter().map(|(k, o)| (k.as_str(), o.id.as_str()))) {
        return Ok(());
    }
    for key in keys {
        let (party, org) = match key.split_once(':') {
            Some((party, org)) => (party, Some(org)),
            None => (key.as_str(), None),
        };
        let mut designated = parties.iter().filter(|(k, o)| k == party && org.is_none_or(|id| id == o.id));
        if designated.all(|(_, o)| writes_for(actor, model, &o.id)) {
            continue;
        }
        let label = model.parties.iter().find(|p| p.key == party).map_or(party, |p| p.label.as_str());
        let leader =
            if model.governs_ent() { "la DAN qui rédige la convention" } else { "le coordonnateur du groupement" };
        return Err(forbidden(format!(
            "le signataire de la partie « {label} » est désigné par cette partie elle-même, par {leader} ou par un \
             administrateur : vous ne désignez que celui de votre propre partie"
        )));
    }
    Ok(())
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

impl CheckedEdit<'_> {
    /// Whether the convention as edited is the convention as it is: title, parameters, dates,
    /// reason for a backdated start, parties in order (organisation, signatory, share), schools.
    pub fn changes_nothing(&self) -> bool {
        let (conv, draft) = (self.conv, &self.draft);
        let party = |key: &str, org: &str| {
            let share = draft.shares.get(&signatories::party_org_key(key, org)).copied();
            (key.to_string(), org.to_string(), signatories::for_party(&draft.signatories, key, org).cloned(), share)
        };
        let edited: Vec<_> = draft.parties.iter().map(|(key, org)| party(key, &org.id)).collect();
        let shares = current_shares(conv);
        let current: Vec<_> = conv
            .parties
            .iter()
            .map(|p| {
                let share = shares.get(&signatories::party_org_key(&p.key, &p.org.id)).copied();
                (p.key.clone(), p.org.id.clone(), p.signatory.clone(), share)
            })
            .collect();
        let schools = |ids: Vec<String>| ids.into_iter().collect::<std::collections::BTreeSet<_>>();
        draft.title == conv.title
            && draft.parameters == conv.parameters
            && draft.start.to_string() == conv.start_date
            && draft.end.to_string() == conv.end_date
            && self.backdate_reason == conv.backdate_reason
            && edited == current
            && schools(draft.schools.iter().map(|s| s.id.clone()).collect())
                == schools(conv.schools.iter().map(|s| s.id.clone()).collect())
    }
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
        // An avenant's start is its own date of effect: the convention's term stays where it
        // is, unless the edit gives an `end_date` (domain review 38, G4).
        (None, Some(_)) if conv.amends_id.is_some() => Some(conv.end_date.clone()),
        (None, Some(moved)) => end_after_moved_start(model, conv, moved),
        (None, None) => Some(conv.end_date.clone()),
    };
    let title = patch.title.clone().or_else(|| kept_title(model, conv, patch.parties.is_some()));
    let before = writers_before(model, conv);
    let mut draft =
        build_draft(ctx, model, title, &parties, &before, &params, &start, end.as_deref(), Some(conv)).await?;
    require_commitments(model, conv.document_edition, &draft.parameters)?;
    // Those given with the parties replace; those of `signatories` change the fields they give.
    let with_parties = draft.signatories.clone().into_iter().map(|(key, s)| (key, SignatoryPatch::from(s)));
    let edits = with_parties.chain(patch.signatories.clone().unwrap_or_default());
    draft.signatories = signatories::merged(signatories::current(conv), edits);
    check_signatories(ctx, model, &draft.signatories)?;
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
        drafted: true,
    };
    check_no_overlap(&mut *ctx.store.conn().await?, ctx.models, &coverage, ctx.actor).await?;
    // In signature, the edited text is frozen as a new version (rendered before the write lock).
    let rendering = match conv.status {
        Status::InSignature => {
            let mut edited = with_draft(conv, model, &draft);
            crate::conventions::with_communes(&mut *ctx.store.conn().await?, &mut edited.parties, &draft.parties)
                .await?;
            let schools: Vec<_> = draft.schools.iter().map(Org::as_ref).collect();
            edited.rgpd_controller =
                effective_controller(&mut *ctx.store.conn().await?, model, &edited.parties, &schools).await?;
            let amended =
                crate::conventions::avenant::amended_of(&mut *ctx.store.conn().await?, model, &edited).await?;
            let frozen = Frozen::of(crate::conventions::document::body(model, &edited, amended.as_ref())?, &edited);
            let typography = crate::conventions::document::typography(&edited);
            Some(Rendering::of(&frozen, typography)?.with_pdf().await?)
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
        crate::conventions::frozen::store(tx, &conv.id, rendering, ctx.actor, ctx.now).await?;
        set_document_hash(tx, &conv.id, &rendering.fingerprint()).await?;
        if !voided.is_empty() {
            crate::conventions::jobs::notify(tx, &voided, conv, "signatures_voided", json!({}), ctx.now).await?;
        }
    }
    Ok(())
}

/// The title an edit keeps when it gives none: the current one, unless the edit names the
/// parties (`renames_parties`) and the title is the one drafted for the current parties
/// ([`default_title`], or as it was drafted before it showed names, with the directory's), which
/// names them: `None`, drafted again for the new ones. A title someone typed is kept.
fn kept_title(model: &ConventionModel, conv: &Convention, renames_parties: bool) -> Option<String> {
    let names = || conv.parties.iter().map(|p| p.org.name.clone());
    let drafted = [title_naming(model, names()), title_naming(model, names().map(|n| naming::display_name(&n)))];
    (!renames_parties || !drafted.contains(&conv.title)).then(|| conv.title.clone())
}

/// The département the schools of a draft naming `parties` stay within when it edits or amends
/// `conv` ([`crate::conventions::convention_departement`]): an avenant keeps that of the
/// convention it amends; a draft keeps its own while it names the same parties, though its
/// collectivité party came to cover écoles of another département since (they stay out, as on
/// the convention's page). A draft naming other parties has none fixed (écoles across two
/// départements are refused, as for a new one).
fn kept_departement<'c>(conv: &'c Convention, parties: &[(String, Org)]) -> Option<&'c str> {
    let mut named: Vec<(&str, &str)> = parties.iter().map(|(k, o)| (k.as_str(), o.id.as_str())).collect();
    let mut current: Vec<(&str, &str)> = conv.parties.iter().map(|p| (p.key.as_str(), p.org.id.as_str())).collect();
    named.sort_unstable();
    current.sort_unstable();
    let same_parties = named == current;
    (conv.amends_id.is_some() || same_parties).then(|| crate::conventions::convention_departement(conv)).flatten()
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
    let day = |field: &str, value: &str| parse_any_date(field, value).ok();
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
            Some((crate::conventions::signatories::party_org_key(&p.key, &p.org.id), bp))
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

/// An avenant is submitted and signed only while the convention it amends binds its parties:
/// signed (before its start) or in force.
pub(super) async fn require_original_in_force(conn: &mut AnyConnection, conv: &Convention) -> Result<(), Problem> {
    let Some(original) = &conv.amends_id else { return Ok(()) };
    let row: Option<(String, String)> = sqlx::query_as("SELECT reference, status FROM conventions WHERE id = $1")
        .bind(original)
        .fetch_optional(conn)
        .await?;
    let Some((reference, status)) = row else { return Ok(()) };
    let status = Status::parse(&status);
    conflict_unless(matches!(status, Some(Status::Active | Status::Signed)), || {
        let label = status.map_or("close", Status::label);
        format!("la convention {reference} que cet avenant modifie est {label} : l'avenant n'a plus d'objet")
    })
}

/// Starts an avenant: a draft copy of a convention in force, or signed and not yet in force
/// (an avenant may be concluded before the convention takes effect), to be edited and signed.
pub async fn amend(ctx: &Ctx<'_>, conv: &Convention) -> Result<Convention, Problem> {
    require_conductor_of(ctx, conv)?;
    require_status(conv, &[Status::Active, Status::Signed], "amender")?;
    require_no_notified_termination(conv)?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let mut params = conv.parameters.clone();
    params.remove("start_date");
    let today = ctx.today().to_string();
    let start = avenant_start(conv, &today);
    let mut draft = build_draft(
        ctx,
        model,
        Some(crate::conventions::avenant::new_title(&mut *ctx.store.conn().await?, conv).await?),
        &current_parties(conv),
        &[],
        &params,
        &start,
        Some(&conv.end_date),
        Some(conv),
    )
    .await?;
    let signatories = crate::conventions::signatories::current(conv);
    // An ENT convention's parties each authorise the avenant itself; a groupement's flow sets
    // its members' délibérations from their applications.
    draft.signatories = match model.governs_ent() {
        true => crate::conventions::signatories::for_avenant(signatories),
        false => signatories,
    };
    draft.shares = current_shares(conv);
    let mut tx = ctx.store.begin_write().await?;
    let id = insert_in(ctx, &mut tx, model, &draft, Some(conv)).await?;
    commit_and_reload(ctx, tx, &id).await
}

/// The day an avenant of `conv` drafted `today` (both `YYYY-MM-DD`) takes effect: its own
/// date, never retroactively, so today; but not before the convention it amends (signed, not
/// yet in force: its start); an original past its end (its expiry not yet run) keeps its
/// dates, and such an avenant is refused at submission.
fn avenant_start(conv: &Convention, today: &str) -> String {
    if today > conv.end_date.as_str() {
        return conv.start_date.clone();
    }
    today.max(conv.start_date.as_str()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `objet` the groupement model's parameters keep, or `None` when refused.
    fn kept(objet: &str) -> Option<String> {
        let models = crate::conventions::model::load_models(None).expect("shipped models");
        let model = models.iter().rfind(|m| m.id == "groupement-de-commandes").expect("the groupement model");
        let given = serde_json::json!({ "objet": objet }).as_object().cloned().unwrap_or_default();
        let mut checks = Checks::default();
        let params = check_parameters(model, &given, Some("2026-09-01"), &mut checks);
        let refused = checks.finish().err().is_some_and(|p| p.errors.iter().any(|e| e.field == "parameters.objet"));
        (!refused).then(|| params["objet"].as_str().unwrap_or_default().to_string())
    }

    #[test]
    fn a_text_parameter_is_one_bounded_line_set_inside_its_clause() {
        assert_eq!(kept("l'ENT des écoles des membres").as_deref(), Some("l'ENT des écoles des membres"));
        let typed_as_a_paragraph = kept("l'ENT des écoles\n\nArticle 12 – Les membres renoncent");
        assert_eq!(typed_as_a_paragraph.as_deref(), Some("l'ENT des écoles Article 12 – Les membres renoncent"));
        assert_eq!(kept("l'ENT\u{202e}"), None);
        assert_eq!(kept(&"x".repeat(1001)), None);
    }
}
