//! Convention models: YAML files declaring parties, signature circuit,
//! duration, parameters, clauses, indicators, cost sharing and RGPD roles.
//! The shipped models are embedded in the binary; a directory may add more.

use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::kernel::roles::Role;
use ent_kernel::yaml;
use ent_platform::registry::{EtabType, Org};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConventionModel {
    /// Stable identifier, e.g. `tripartite-premier-degre`.
    pub id: String,
    pub version: u32,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The version of the schéma directeur des ENT the text refers to (`sdet_version` in clauses);
    /// [`UNSTATED_SDET_VERSION`] when the file does not state it.
    #[serde(default = "default_sdet_version")]
    pub sdet_version: String,
    /// Citations of the « Vu » block, before those of the parties' acts.
    #[serde(default)]
    pub vu: Vec<String>,
    /// The préambule, after the « Vu » block (paragraphs separated by a blank line).
    #[serde(default)]
    pub preamble: String,
    /// Every signing party must record its signatory (name, quality, délégation) and the act
    /// that empowers it before the convention is submitted.
    #[serde(default)]
    pub require_signatories: bool,
    pub parties: Vec<PartySpec>,
    /// Which party's coverage gives the covered établissements (none: no school).
    #[serde(default)]
    pub covers: CoversRule,
    /// `ordered`: parties sign in their `order`; `parallel`: in any order.
    #[serde(default)]
    pub signatures: SignatureMode,
    /// Reviews without signature, all before the first signature, in this order.
    #[serde(default)]
    pub visas: Vec<VisaSpec>,
    #[serde(default = "default_duration")]
    pub duration_months: u32,
    /// Renewed by tacit agreement at its term, for [`ConventionModel::renewed_for`].
    #[serde(default)]
    pub renewable: bool,
    /// How long each tacit renewal lasts, as the model's text says (`renewable` models).
    #[serde(default)]
    pub renewed_for: RenewalPeriod,
    /// The convention takes effect on the day it is submitted for signature when the start
    /// date it was drafted with has passed by then (a groupement's convention constitutive).
    #[serde(default)]
    pub starts_at_submission: bool,
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    pub clauses: Vec<Clause>,
    #[serde(default)]
    pub indicators: Vec<Indicator>,
    pub cost_sharing: Vec<CostShare>,
    pub rgpd: RgpdRoles,
    /// Optional SLA annex: the support contract of the tenants the convention covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<SupportAnnex>,
}

impl ConventionModel {
    /// Whether a convention of this model governs the ENT processing of the schools it covers:
    /// a model that covers no school (the groupement de commandes, an act of purchase) does not,
    /// and is never « the convention in force » of a school or of a party.
    pub fn governs_ent(&self) -> bool {
        self.covers.party.is_some()
    }

    /// Whether its schools are « every école the collectivité covers » (the bipartite): a
    /// collectivité party gives them, so they follow the annuaire as it is on the day read (a
    /// school opened later is covered without avenant, a closed one no longer), not the list
    /// written when the convention was drafted.
    pub fn follows_registry(&self) -> bool {
        let Some(key) = &self.covers.party else { return false };
        self.parties.iter().any(|p| &p.key == key && !p.kinds.contains(&OrgKind::Etablissement))
    }

    /// Whether a convention of this model may cover `school`: the party it covers is the school
    /// itself, of a type that party allows, or a collectivité whose schools of the model's types
    /// it covers (the bipartite's écoles).
    pub fn may_cover(&self, school: &Org) -> bool {
        let Some(spec) = self.covers.party.as_ref().and_then(|key| self.parties.iter().find(|p| &p.key == key)) else {
            return false;
        };
        if school.kind != OrgKind::Etablissement {
            return spec.kinds.contains(&school.kind);
        }
        match spec.kinds.contains(&OrgKind::Etablissement) {
            true => spec.etab_types.is_empty() || school.etab_type.is_some_and(|t| spec.etab_types.contains(&t)),
            false => self.covers_type(school.etab_type),
        }
    }

    /// Whether a school of type `etab_type` is among the types the model covers.
    pub fn covers_type(&self, etab_type: Option<EtabType>) -> bool {
        self.covers.etab_types.is_empty() || etab_type.is_some_and(|t| self.covers.etab_types.contains(&t))
    }
}

/// How long a tacit renewal lasts: what the text of the model says of it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RenewalPeriod {
    /// The model's `duration_months` each time (« pour une durée de {{ renewal_duration }} »).
    #[default]
    ModelDuration,
    /// The convention's own duration, from its start to the end it was signed with (« pour une
    /// même durée »; version 1 of `bipartite-commune`).
    SameDuration,
}

/// Support commitments of a convention (its SLA annex): the policy of
/// `support/policies.yaml` that applies, and which parties are N1 and N2.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SupportAnnex {
    /// A support policy name (e.g. `renforce`).
    pub policy: String,
    /// The party providing level-1 support (e.g. `etablissement`).
    #[serde(default)]
    pub n1: Option<String>,
    /// The party providing level-2 support (e.g. `academie`).
    #[serde(default)]
    pub n2: Option<String>,
}

/// The version of the SDET in force, that the CCTP and the latest version of each shipped
/// model cite: when the ministry publishes a new one, update it and publish a new version of
/// each model stating it (`sdet_version`), never edit a version conventions were opened with.
pub const SDET_VERSION: &str = "6.4";

/// The version a model that does not state `sdet_version` refers to: the one in force when such
/// models were written (versions 1 and 2 of the shipped ones), kept so their text never changes.
pub const UNSTATED_SDET_VERSION: &str = "6.3";

fn default_sdet_version() -> String {
    UNSTATED_SDET_VERSION.into()
}

fn default_duration() -> u32 {
    36
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartySpec {
    /// Key used in clauses (`parties.<key>`) and in the other sections.
    pub key: String,
    /// How the document names the party's role, e.g. « la collectivité ».
    pub label: String,
    /// Organisation kinds allowed for this party.
    pub kinds: Vec<OrgKind>,
    /// For an établissement party: the types allowed (all when empty).
    #[serde(default)]
    pub etab_types: Vec<EtabType>,
    /// The role a user must hold at the party organisation to sign for it.
    pub signing_role: Role,
    #[serde(default = "yes")]
    pub signature_required: bool,
    /// Position in the signing order (ordered circuits).
    #[serde(default)]
    pub order: u32,
    /// The party is repeated (members of a groupement de commandes).
    #[serde(default)]
    pub multiple: bool,
    /// For a `multiple` party: how the « Entre » block designates its organisations together,
    /// once, after the last of them (« ci-après dénommées ensemble « les membres » »), when it has
    /// more than one; absent (or a single organisation), each is designated by its `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub designated_together: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoversRule {
    /// The party whose organisation (an établissement) or coverage (a commune, EPCI...)
    /// gives the schools of the convention.
    pub party: Option<String>,
    /// Only these types among what the party covers (all when empty).
    #[serde(default)]
    pub etab_types: Vec<EtabType>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMode {
    #[default]
    Parallel,
    Ordered,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisaSpec {
    pub key: String,
    /// E.g. « Visa du service juridique du rectorat ».
    pub label: String,
    /// The party whose users give the visa.
    pub party: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParameterType {
    Text,
    Integer,
    /// 0 to 100.
    Percent,
    /// `YYYY-MM-DD`.
    Date,
    /// Money in euro cents.
    Cents,
    Boolean,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub description: String,
    /// The least value of an `integer` or `cents` parameter (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// The greatest value of an `integer` or `cents` parameter (default: ten million for an
    /// integer, a billion euros for cents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// The key of a numeric parameter that makes this one required, and more than 0, when it is
    /// itself more than 0: a commitment the text states only with it (the académie's share of
    /// the cost with its annual ceiling in euros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_when_positive: Option<String>,
}

/// An integer parameter's greatest value when its model sets none: a count of accounts,
/// meetings or months is far below it, and an absurd one is refused before it is printed.
const INTEGER_MAX: i64 = 10_000_000;
/// A cents parameter's: one billion euros, the bound of the groupements' amounts.
const CENTS_MAX: i64 = 100_000_000_000;

/// The bounds of the parameters the shipped models share, for a model that sets none: their
/// files keep their bytes (a convention opened with one renders the same text), so these
/// bounds are the code's. A meeting at least once a year, at most monthly; a notice of one
/// month to two years.
const KNOWN_BOUNDS: [(&str, i64, i64); 3] =
    [("comite_pilotage_frequence", 1, 12), ("preavis_resiliation_mois", 1, 24), ("preavis_retrait_mois", 1, 24)];

/// The shipped models whose académie may pay a share of the cost in money (`part_academie`, a
/// percentage beside its contributions in kind) but whose file, byte-pinned since conventions
/// were opened with it, has no annual ceiling for it: the tripartites' latest versions. The code
/// adds [`academie_ceiling`] to them ([`with_code_parameters`]), as the bipartite's file has it,
/// so that the same rule holds (`required_when_positive`, `workflow::require_commitments`): a
/// money share is stated with a determined amount. Older versions keep their parameters (their
/// conventions open no more). The document states it among the « Caractéristiques » and, from
/// edition 10, in the article 5 the code writes for them (`code_text`).
const ACADEMIE_CEILING_MODELS: [(&str, u32); 2] = [("tripartite-premier-degre", 3), ("tripartite-second-degre", 3)];

/// The key of the académie's annual ceiling.
pub const ACADEMIE_CEILING: &str = "plafond_participation_academie";

/// Whether `model` is one of [`ACADEMIE_CEILING_MODELS`] with its ceiling: a tripartite whose
/// article 5 the code also words from edition 10 (`code_text`).
pub(crate) fn has_code_ceiling(model: &ConventionModel) -> bool {
    ACADEMIE_CEILING_MODELS.contains(&(model.id.as_str(), model.version))
        && model.parameters.iter().any(|p| p.key == ACADEMIE_CEILING)
}

/// The académie's annual ceiling, as the bipartite's file words it.
fn academie_ceiling() -> ParameterSpec {
    ParameterSpec {
        key: ACADEMIE_CEILING.into(),
        label: "Plafond annuel de la participation de l'académie (centimes)".into(),
        kind: ParameterType::Cents,
        required: false,
        default: None,
        description: "Montant maximal, en centimes d'euro, que les services académiques versent par année scolaire \
                      au titre de leur part du coût du service. Obligatoire lorsque cette part dépasse 0 % : \
                      l'engagement juridique de l'État porte sur un montant déterminé (décret n° 2012-1246 du 7 \
                      novembre 2012, art. 30 et suivants)."
            .into(),
        min: None,
        max: None,
        required_when_positive: Some("part_academie".into()),
    }
}

/// `model` with the parameters the code adds to a shipped model ([`ACADEMIE_CEILING_MODELS`]),
/// after the one they depend on, unless its file already has them.
fn with_code_parameters(mut model: ConventionModel) -> ConventionModel {
    let listed = ACADEMIE_CEILING_MODELS.contains(&(model.id.as_str(), model.version));
    if listed && !model.parameters.iter().any(|p| p.key == ACADEMIE_CEILING) {
        let after =
            model.parameters.iter().position(|p| p.key == "part_academie").map_or(model.parameters.len(), |i| i + 1);
        model.parameters.insert(after, academie_ceiling());
    }
    model
}

impl ParameterSpec {
    /// The inclusive bounds of an `integer` or `cents` parameter: the model's, else those
    /// [`KNOWN_BOUNDS`] gives its key, else from 0 to the kind's greatest value.
    pub fn bounds(&self) -> (i64, i64) {
        let max = if self.kind == ParameterType::Cents { CENTS_MAX } else { INTEGER_MAX };
        let known = KNOWN_BOUNDS.iter().find(|(key, ..)| *key == self.key).map(|&(_, min, max)| (min, max));
        let (min, max) = known.unwrap_or((0, max));
        (self.min.unwrap_or(min), self.max.unwrap_or(max))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// E.g. « Article 1 – Objet ».
    pub title: String,
    /// French text; tera syntax for variables (`{{ parties.collectivite.name }}`).
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub key: String,
    pub name: String,
    pub definition: String,
    pub target: f64,
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CostShare {
    pub party: String,
    /// What the share pays for, e.g. « abonnement au service ENT ».
    pub item: String,
    /// Fixed share in %, or
    #[serde(default)]
    pub share: Option<f64>,
    /// the key of a `percent` parameter giving it.
    #[serde(default)]
    pub share_parameter: Option<String>,
    /// What the share pays for when it is more than 0 %, from edition 7
    /// (`document::FIGURES_EDITION`): a party whose `item` tells its contributions in kind (« fournis
    /// en nature ») then pays money, « participation financière au coût du service ».
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_item: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RgpdRoles {
    /// The party responsible for the ENT processing (responsable de traitement).
    pub controller: String,
    #[serde(default)]
    pub joint_controllers: Vec<String>,
    /// Parties acting as processors (sous-traitants) for the controller.
    #[serde(default)]
    pub processors: Vec<String>,
    /// Free text shown in the document (who does what under RGPD).
    #[serde(default)]
    pub notes: String,
}

/// The models shipped with the product, embedded so `entctl` runs from anywhere.
pub const SHIPPED: &[(&str, &str)] = &[
    ("tripartite-second-degre.yaml", include_str!("../../../../conventions/tripartite-second-degre.yaml")),
    ("tripartite-premier-degre.yaml", include_str!("../../../../conventions/tripartite-premier-degre.yaml")),
    ("bipartite-commune.yaml", include_str!("../../../../conventions/bipartite-commune.yaml")),
    ("groupement-de-commandes.yaml", include_str!("../../../../conventions/groupement-de-commandes.yaml")),
    ("tripartite-second-degre-v2.yaml", include_str!("../../../../conventions/tripartite-second-degre-v2.yaml")),
    ("tripartite-premier-degre-v2.yaml", include_str!("../../../../conventions/tripartite-premier-degre-v2.yaml")),
    ("bipartite-commune-v2.yaml", include_str!("../../../../conventions/bipartite-commune-v2.yaml")),
    ("tripartite-second-degre-v3.yaml", include_str!("../../../../conventions/tripartite-second-degre-v3.yaml")),
    ("tripartite-premier-degre-v3.yaml", include_str!("../../../../conventions/tripartite-premier-degre-v3.yaml")),
    ("bipartite-commune-v3.yaml", include_str!("../../../../conventions/bipartite-commune-v3.yaml")),
    ("groupement-de-commandes-v2.yaml", include_str!("../../../../conventions/groupement-de-commandes-v2.yaml")),
    ("groupement-de-commandes-v3.yaml", include_str!("../../../../conventions/groupement-de-commandes-v3.yaml")),
];

/// Parses and validates one model file; errors name the file and line.
pub fn parse_model(file: &str, text: &str) -> anyhow::Result<ConventionModel> {
    let model: ConventionModel = yaml::from_str(text).map_err(|e| anyhow::anyhow!("{file} : {e}"))?;
    validate(&model).map_err(|e| anyhow::anyhow!("{file} : {e}"))?;
    Ok(model)
}

fn validate(m: &ConventionModel) -> Result<(), String> {
    let keys: HashSet<&str> = m.parties.iter().map(|p| p.key.as_str()).collect();
    if keys.len() != m.parties.len() {
        return Err("deux parties portent la même clé".into());
    }
    let known = |k: &str, what: &str| {
        if keys.contains(k) {
            Ok(())
        } else {
            Err(format!("{what} : partie inconnue « {k} »"))
        }
    };
    for p in &m.parties {
        if p.kinds.is_empty() {
            return Err(format!("la partie {} n'admet aucun type d'organisation", p.key));
        }
        if p.designated_together.is_some() && !p.multiple {
            return Err(format!("la partie {} n'est pas multiple : rien à désigner ensemble", p.key));
        }
    }
    if let Some(party) = &m.covers.party {
        known(party, "covers")?;
    }
    for v in &m.visas {
        known(&v.party, &format!("visa {}", v.key))?;
    }
    let params: BTreeMap<&str, &ParameterSpec> = m.parameters.iter().map(|p| (p.key.as_str(), p)).collect();
    for p in &m.parameters {
        let bounded = matches!(p.kind, ParameterType::Integer | ParameterType::Cents);
        if (p.min.is_some() || p.max.is_some()) && !bounded {
            return Err(format!("paramètre {} : min et max ne valent que pour un entier ou un montant", p.key));
        }
        let (min, max) = p.bounds();
        if bounded && min > max {
            return Err(format!("paramètre {} : min ({min}) au-dessus de max ({max})", p.key));
        }
    }
    for (spec, key) in m.parameters.iter().filter_map(|p| Some((p, p.required_when_positive.as_deref()?))) {
        let numeric = [ParameterType::Integer, ParameterType::Percent, ParameterType::Cents];
        if !params.get(key).is_some_and(|p| numeric.contains(&p.kind)) || !numeric.contains(&spec.kind) {
            return Err(format!("required_when_positive de {} : « {key} » n'est pas un paramètre numérique", spec.key));
        }
    }
    let mut fixed = 0.0;
    for share in &m.cost_sharing {
        known(&share.party, "cost_sharing")?;
        match (&share.share, &share.share_parameter) {
            (Some(v), None) => fixed += v,
            (None, Some(key)) => match params.get(key.as_str()) {
                Some(p) if p.kind == ParameterType::Percent => {}
                _ => return Err(format!("cost_sharing : « {key} » n'est pas un paramètre de type percent")),
            },
            _ => return Err(format!("cost_sharing de {} : indiquez share ou share_parameter", share.party)),
        }
    }
    let all_fixed = m.cost_sharing.iter().all(|s| s.share.is_some());
    if all_fixed && (fixed - 100.0).abs() > 1e-9 {
        return Err(format!("les parts de financement font {fixed} % au lieu de 100 %"));
    }
    known(&m.rgpd.controller, "rgpd.controller")?;
    for k in m.rgpd.joint_controllers.iter().chain(&m.rgpd.processors) {
        known(k, "rgpd")?;
    }
    if let Some(annex) = &m.support {
        for k in annex.n1.iter().chain(&annex.n2) {
            known(k, "support")?;
        }
        if annex.policy.trim().is_empty() {
            return Err("support : la politique est obligatoire".into());
        }
    }
    if m.duration_months == 0 {
        return Err("duration_months doit être positif".into());
    }
    let texts = m.clauses.iter().map(|c| (c.title.as_str(), c.text.as_str()));
    let opening = m.vu.iter().map(|v| ("vu", v.as_str())).chain([("preamble", m.preamble.as_str())]);
    for (title, text) in texts.chain(opening) {
        clause_template(text).map_err(|e| format!("clause « {title} » : gabarit invalide : {e}"))?;
    }
    Ok(())
}

/// The template of a clause text (a clause, a « Vu » line, the préambule), parsed once per
/// process: when its model loads (validation), else at its first rendering (the model a
/// convention was frozen with). Every document of a convention renders every clause of its
/// model; each used to be parsed again for each document.
pub(crate) fn clause_template(text: &str) -> Result<std::sync::Arc<tera::Tera>, tera::Error> {
    type Parsed = std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tera::Tera>>>;
    static PARSED: std::sync::LazyLock<Parsed> = std::sync::LazyLock::new(Default::default);
    if let Some(tera) = PARSED.lock().ok().and_then(|parsed| parsed.get(text).cloned()) {
        return Ok(tera);
    }
    let mut tera = tera::Tera::default();
    tera.add_raw_template(CLAUSE, text)?;
    // As `Tera::one_off(text, context, false)`: never escaped.
    tera.autoescape_on(Vec::new());
    let tera = std::sync::Arc::new(tera);
    if let Ok(mut parsed) = PARSED.lock() {
        parsed.insert(text.to_string(), tera.clone());
    }
    Ok(tera)
}

/// The name of the one template of a [`clause_template`].
pub(crate) const CLAUSE: &str = "clause";

/// All models: the shipped ones, then those of `dir` (a later file with the
/// same id and version replaces an earlier one). The shipped ones alone are parsed and
/// validated once per process ([`ent_kernel::yaml::shipped_once`]).
pub fn load_models(dir: Option<&std::path::Path>) -> anyhow::Result<Vec<ConventionModel>> {
    static SHIPPED_MODELS: std::sync::OnceLock<Vec<ConventionModel>> = std::sync::OnceLock::new();
    match dir {
        None => yaml::shipped_once(&SHIPPED_MODELS, || parse_models(None)),
        Some(_) => parse_models(dir),
    }
}

/// [`load_models`], parsed.
fn parse_models(dir: Option<&std::path::Path>) -> anyhow::Result<Vec<ConventionModel>> {
    let mut models: Vec<ConventionModel> = Vec::new();
    for (file, text) in yaml::shipped_then_overlay(SHIPPED, "conventions_dir", dir)? {
        let model = with_code_parameters(parse_model(&file, &text)?);
        validate(&model).map_err(|e| anyhow::anyhow!("{file} : {e}"))?;
        models.retain(|m| !(m.id == model.id && m.version == model.version));
        models.push(model);
    }
    models.sort_by(|a, b| (a.id.as_str(), a.version).cmp(&(b.id.as_str(), b.version)));
    Ok(models)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_documents::documents::sha256_hex;

    #[test]
    fn an_sla_annex_is_optional_and_names_known_parties() {
        let (file, text) = SHIPPED.iter().find(|(f, _)| f.contains("second-degre")).unwrap();
        let mut model = parse_model(file, text).unwrap();
        assert_eq!(model.support, None, "models without an annex still load");
        model.support = Some(SupportAnnex {
            policy: "renforce".into(),
            n1: Some("etablissement".into()),
            n2: Some("academie".into()),
        });
        assert_eq!(validate(&model), Ok(()));
        let yaml = yaml::to_string(&model).unwrap();
        assert_eq!(yaml::from_str::<ConventionModel>(&yaml).unwrap().support, model.support);
        model.support.as_mut().unwrap().n2 = Some("editeur".into());
        assert!(validate(&model).unwrap_err().contains("editeur"));
        let bad = yaml.replace("policy: renforce", "policy: renforce\n  astreinte: true");
        assert!(yaml::from_str::<ConventionModel>(&bad).is_err(), "unknown annex fields are refused");
    }

    #[test]
    fn integer_parameters_are_bounded_by_the_model_else_by_their_key_else_by_their_kind() {
        let spec = |key: &str, kind: ParameterType, min: Option<i64>, max: Option<i64>| ParameterSpec {
            key: key.into(),
            label: key.into(),
            kind,
            required: false,
            default: None,
            description: String::new(),
            min,
            max,
            required_when_positive: None,
        };
        assert_eq!(spec("accounts", ParameterType::Integer, None, None).bounds(), (0, INTEGER_MAX));
        assert_eq!(spec("montant_estime", ParameterType::Cents, None, None).bounds(), (0, CENTS_MAX));
        assert_eq!(spec("preavis_resiliation_mois", ParameterType::Integer, None, None).bounds(), (1, 24));
        assert_eq!(spec("comite_pilotage_frequence", ParameterType::Integer, None, Some(4)).bounds(), (1, 4));
        let (file, text) = SHIPPED.iter().find(|(f, _)| f.contains("bipartite-commune-v3")).unwrap();
        let mut model = parse_model(file, text).unwrap();
        let frequency = model.parameters.iter().position(|p| p.key == "comite_pilotage_frequence").unwrap();
        model.parameters[frequency].min = Some(13);
        assert!(validate(&model).unwrap_err().contains("au-dessus de max"));
        let text_parameter = model.parameters.iter().position(|p| p.kind == ParameterType::Text);
        if let Some(i) = text_parameter {
            model.parameters[frequency].min = None;
            model.parameters[i].max = Some(3);
            assert!(validate(&model).unwrap_err().contains("un entier ou un montant"));
        }
    }

    #[test]
    fn every_model_whose_academie_may_pay_money_has_its_ceiling_required_when_it_does() {
        for model in load_models(None).unwrap().iter().filter(|m| m.governs_ent()) {
            let share = model.cost_sharing.iter().find(|s| s.party == "academie");
            let Some(key) = share.and_then(|s| s.share_parameter.as_deref()) else { continue };
            let latest = load_models(None).unwrap().iter().filter(|m2| m2.id == model.id).map(|m2| m2.version).max();
            if Some(model.version) != latest {
                continue;
            }
            let ceiling = model.parameters.iter().find(|p| p.key == ACADEMIE_CEILING);
            let ceiling = ceiling.unwrap_or_else(|| panic!("{} v{}: no ceiling", model.id, model.version));
            assert_eq!(ceiling.required_when_positive.as_deref(), Some(key), "{}", model.id);
            assert_eq!(ceiling.kind, ParameterType::Cents, "{}", model.id);
        }
        let tripartite = load_models(None).unwrap();
        let v2 = tripartite.iter().find(|m| m.id == "tripartite-premier-degre" && m.version == 2).unwrap();
        assert!(!v2.parameters.iter().any(|p| p.key == ACADEMIE_CEILING), "an older version keeps its parameters");
    }

    #[test]
    fn shipped_models_load_and_validate() {
        let models = load_models(None).unwrap();
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        for id in
            ["bipartite-commune", "groupement-de-commandes", "tripartite-premier-degre", "tripartite-second-degre"]
        {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        for m in &models {
            assert_eq!(m.duration_months, 36, "{}", m.id);
            assert!(!m.clauses.is_empty());
        }
        // The latest version of each model states the convention's own duration, never a fixed one.
        for id in ["bipartite-commune", "tripartite-premier-degre", "tripartite-second-degre"] {
            let latest = models.iter().filter(|m| m.id == id).max_by_key(|m| m.version).unwrap();
            let text: String = latest.clauses.iter().map(|c| c.text.as_str()).collect();
            assert!(latest.version >= 2 && text.contains("{{ duration }}"), "{id}");
            assert!(!text.contains("trente-six mois"), "{id}");
            // It cites the SDET in force; versions 1 and 2 keep the one they were written with.
            assert_eq!(latest.sdet_version, SDET_VERSION, "{id}");
            for older in models.iter().filter(|m| m.id == id && m.version <= 2) {
                assert_eq!(older.sdet_version, UNSTATED_SDET_VERSION, "{id} v{}", older.version);
            }
        }
    }

    /// Conventions were opened with these versions: their files are never edited (a text change
    /// is a new version in a new file), so their drafts keep rendering the same text.
    #[test]
    fn the_model_versions_conventions_were_opened_with_keep_their_bytes() {
        let pinned = [
            ("tripartite-second-degre.yaml", "5019d58efa18b49a4c030ceebea7ea5136c74726a281d67897e2f45dbf29dad9"),
            ("tripartite-premier-degre.yaml", "fc4c8abdff703914bf035233a3bbfe501d3a23e7bbb08d26ee1b58211c350c91"),
            ("bipartite-commune.yaml", "2cabcea6e095ad8789db219ba15fa77da16f7760680361d7d72070a5da1b1ba3"),
            ("tripartite-second-degre-v2.yaml", "fd302b252fabb32c897b3331af978b6547fe68da5dff27dac2e848d4a0fa023d"),
            ("tripartite-premier-degre-v2.yaml", "7e47a9bc3db4b71608b159fed9569920052a92afe25831640583477371b9ada5"),
            ("bipartite-commune-v2.yaml", "7d8c85327382cfd53cc16382085349d4e730abd86c138af52c80a736a6d19c86"),
            ("groupement-de-commandes.yaml", "ba5438e39be1103336dc84d1bdf5869332d0a40c3e37be5bef548e29578f3d4c"),
            ("groupement-de-commandes-v2.yaml", "b8bdb80efea496479d16ef6e9cb42c6488af5f4149485935b2637f3fc64ed554"),
        ];
        for (file, sum) in pinned {
            let (_, text) = SHIPPED.iter().find(|(f, _)| *f == file).unwrap();
            assert_eq!(sha256_hex(text.as_bytes()), sum, "{file} was edited");
        }
    }

    /// Every clause text of the shipped models is parsed once, when its model loads, and renders
    /// as `Tera::one_off` (unescaped) rendered it before: « & », « < » and quotes stay as written.
    #[test]
    fn a_clause_is_parsed_once_and_renders_as_a_one_off_template() {
        let mut context = tera::Context::new();
        context.insert("params", &serde_json::json!({ "accounts": "<250 & « plus »>" }));
        context.insert("duration", "36 mois");
        for model in load_models(None).unwrap() {
            let texts = model.clauses.iter().map(|c| c.text.as_str()).chain(model.vu.iter().map(String::as_str));
            for text in texts.chain([model.preamble.as_str(), "{{ params.accounts }} pendant {{ duration }}"]) {
                let parsed = clause_template(text).unwrap();
                assert!(std::sync::Arc::ptr_eq(&parsed, &clause_template(text).unwrap()), "parsed once: {text}");
                let rendered = parsed.render(CLAUSE, &context).map_err(|e| format!("{e:?}"));
                let one_off = tera::Tera::one_off(text, &context, false).map_err(|e| format!("{e:?}"));
                assert_eq!(rendered.is_ok(), one_off.is_ok(), "{text}");
                if let (Ok(rendered), Ok(one_off)) = (rendered, one_off) {
                    assert_eq!(rendered, one_off, "{text}");
                }
            }
        }
        let unescaped = clause_template("{{ params.accounts }}").unwrap().render(CLAUSE, &context).unwrap();
        assert_eq!(unescaped, "<250 & « plus »>");
    }

    #[test]
    fn unknown_keys_are_refused_with_file_and_line() {
        let text = SHIPPED[0].1.replacen("title:", "titel:", 1);
        let err = parse_model("x.yaml", &text).unwrap_err().to_string();
        assert!(err.starts_with("x.yaml") && err.contains("titel") && err.contains("ligne"), "{err}");
    }
}
