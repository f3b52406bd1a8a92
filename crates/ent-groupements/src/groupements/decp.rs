//! DECP v2 (données essentielles de la commande publique): the `marche` record
//! of an awarded groupement, built from what the platform knows and from the
//! facts the coordinator gave at award time — never invented — and checked
//! against the complete official schema `schema_decp_v2.0.3.json` (from
//! github.com/139bercy/format-commande-publique, shipped unchanged beside this file),
//! plus the rules its documentation states and the schema cannot (advance rate when an
//! advance is granted, subcontracting acts when subcontracting is declared).

use super::consultation;
use ent_kernel::error::FieldError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The official DECP schema, complete and unchanged (publication file, `marche`, `contrat-concession`).
pub const SCHEMA_TEXT: &str = include_str!("schema_decp_v2.0.3.json");

/// The version of [`SCHEMA_TEXT`].
pub const SCHEMA_VERSION: &str = "2.0.3";

/// The `marche` definition inside the schema.
fn marche_schema() -> &'static Value {
    &schema()["definitions"]["marche"]
}

pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(SCHEMA_TEXT).expect("the embedded DECP schema is valid JSON"))
}

/// The facts of the contract that only the coordinator knows, given at award.
/// Absent ones are reported, never guessed; `marche_id`, `acheteur_siret`,
/// `nature` and the place of execution default to what the platform knows
/// (the groupement's reference, the coordinator's SIRET and département).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecpFacts {
    /// Internal contract number (1 to 16 characters); the groupement's reference by default.
    pub marche_id: Option<String>,
    /// SIRET of the coordinator running the procedure, when the registry does not hold it.
    pub acheteur_siret: Option<String>,
    /// `Marché` by default.
    pub nature: Option<String>,
    /// CPV code, e.g. `48190000` (educational software package).
    pub code_cpv: Option<String>,
    /// `["Accord-cadre"]` (RC art. 4, CCAP art. 2: [`TECHNIQUE`]), the default; another is refused
    /// ([`documented`]).
    pub techniques: Option<Vec<String>>,
    /// `["Bons de commande"]` (RC art. 4, CCAP art. 2: [`MODALITE_EXECUTION`]), the default; another
    /// is refused ([`documented`]).
    pub modalites_execution: Option<Vec<String>>,
    pub marche_innovant: Option<bool>,
    /// `Techniques de l'information et de la communication` (CCAP art. 3: [`CCAG`]), the default;
    /// another is refused ([`documented`]).
    pub ccag: Option<String>,
    pub offres_recues: Option<i64>,
    pub attribution_avance: Option<bool>,
    /// Rate of the advance (0.1 = 10 %): the CCAP's (article 7 « Avance »,
    /// [`super::cctp::ADVANCE_PERCENT`]) when an advance is granted and none is given; another
    /// is refused ([`documented`]), but 0 for an advance the titulaire renounced.
    pub taux_avance: Option<f64>,
    /// `Conjoint`, `Solidaire` or `Pas de groupement` (of the economic operators).
    pub type_groupement_operateurs: Option<String>,
    pub sous_traitance_declaree: Option<bool>,
    /// The special subcontracting acts notified (objects of the official `ActeSousTraitance`
    /// definition), required when subcontracting is declared.
    #[schemars(with = "Option<Vec<serde_json::Map<String, Value>>>")]
    pub actes_sous_traitance: Option<Vec<Value>>,
    /// The procedure of the groupement's pieces (its `procedure` term: `Appel d'offres ouvert` or
    /// `Procédure adaptée`), the default; another is refused ([`documented`]).
    pub procedure: Option<String>,
    /// Place of execution; the coordinator's département by default.
    pub lieu_execution_code: Option<String>,
    /// `Code département`, `Code commune`, ...
    pub lieu_execution_type: Option<String>,
    /// `Unitaire` (the BPU's unit prices), the default; another is refused ([`documented`]).
    pub forme_prix: Option<String>,
    /// `["Définitif révisable"]` (the AE's yearly revision), the default; another is refused
    /// ([`documented`]).
    pub types_prix: Option<Vec<String>>,
    /// E.g. `["Pas de considération sociale"]`.
    pub considerations_sociales: Option<Vec<String>>,
    /// E.g. `["Clause environnementale"]`.
    pub considerations_environnementales: Option<Vec<String>>,
}

/// The type of price of the accord-cadre as the DECP names it: the AE's prices are revised each
/// year by its formula (section D, [`super::consultation::REVISION_INDEX`]).
pub const TYPE_PRIX: &str = "Définitif révisable";
/// The form of price as the DECP names it: the BPU's unit prices.
pub const FORME_PRIX: &str = "Unitaire";
/// The purchasing technique as the DECP names it (`technique`): the RC (article 4) and the CCAP
/// (article 2) conclude an accord-cadre.
pub const TECHNIQUE: &str = "Accord-cadre";
/// The mode of execution as the DECP names it (`modaliteExecution`): the accord-cadre is executed
/// by purchase orders (RC article 4, CCAP article 2).
pub const MODALITE_EXECUTION: &str = "Bons de commande";
/// The CCAG of reference as the DECP names it: the CCAG-TIC, a contract piece (CCAP article 3).
pub const CCAG: &str = "Techniques de l'information et de la communication";

/// Why the RC and the CCAP refuse a declared `technique` or `modaliteExecution`: the form of the
/// accord-cadre they fix.
const FORM_OF_CONTRACT: &str = "le règlement de la consultation (article 4) et le CCAP (article 2) du groupement \
     stipulent un accord-cadre à bons de commande mono-attributaire (articles R. 2162-1 à R. 2162-6, R. 2162-13 \
     et R. 2162-14 du code de la commande publique)";

/// `facts` with what the consultation's documents fix filled in when absent: the groupement's
/// `procedure`, the one its RC, AE and CCAP print ([`consultation::Procedure::decp`]), the type
/// and form of price of the AE and the BPU ([`TYPE_PRIX`], [`FORME_PRIX`]), the technique, the
/// mode of execution and the CCAG of the RC and the CCAP ([`form_of_contract`]), the rate of an
/// advance granted, the CCAP's ([`advance_rate`]); and, for each of these given otherwise, why
/// the documents contradict it, by request field.
pub fn documented(facts: &DecpFacts, procedure: consultation::Procedure) -> (DecpFacts, Vec<FieldError>) {
    let mut errors = Vec::new();
    let mut facts = facts.clone();
    let given = facts.procedure.get_or_insert_with(|| procedure.decp().into());
    if given != procedure.decp() {
        errors.push(FieldError {
            field: "decp.procedure".into(),
            message: format!(
                "les pièces de la consultation du groupement (règlement de la consultation, acte d'engagement, CCAP) \
                 organisent {} ({} du code de la commande publique) : la procédure déclarée est « {} », pas « {given} » ; \
                 laissez ce champ vide pour la reprendre",
                procedure.with_article(),
                procedure.articles(),
                procedure.decp()
            ),
        });
    }
    let types = facts.types_prix.get_or_insert_with(|| vec![TYPE_PRIX.into()]);
    if types.as_slice() != [TYPE_PRIX] {
        errors.push(FieldError {
            field: "decp.types_prix".into(),
            message: format!(
                "l'acte d'engagement du groupement stipule des prix révisables chaque année (P = P0 × ({} + {} × I / I0), \
                 {}) : le type de prix est « {TYPE_PRIX} », pas {} ; laissez ce champ vide pour le reprendre",
                consultation::revision_fixed(),
                consultation::revision_indexed(),
                consultation::REVISION_INDEX,
                quoted(types)
            ),
        });
    }
    let form = facts.forme_prix.get_or_insert_with(|| FORME_PRIX.into());
    if form != FORME_PRIX {
        errors.push(FieldError {
            field: "decp.forme_prix".into(),
            message: format!(
                "l'accord-cadre est rémunéré aux prix unitaires du bordereau (BPU) appliqués aux quantités commandées : \
                 la forme du prix est « {FORME_PRIX} », pas « {form} » ; laissez ce champ vide pour la reprendre"
            ),
        });
    }
    errors.extend(form_of_contract(&mut facts));
    errors.extend(check_advance_rate(&mut facts));
    (facts, errors)
}

/// The technique, the mode of execution and the CCAG that the RC (article 4) and the CCAP
/// (articles 2 and 3) fix ([`TECHNIQUE`], [`MODALITE_EXECUTION`], [`CCAG`]): filled in when
/// absent; each declared otherwise refused, by request field.
fn form_of_contract(facts: &mut DecpFacts) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let techniques = facts.techniques.get_or_insert_with(|| vec![TECHNIQUE.into()]);
    if techniques.as_slice() != [TECHNIQUE] {
        errors.push(FieldError {
            field: "decp.techniques".into(),
            message: format!(
                "{FORM_OF_CONTRACT} : la technique d'achat déclarée est « {TECHNIQUE} », pas {} ; laissez ce champ vide \
                 pour la reprendre",
                quoted(techniques)
            ),
        });
    }
    let modes = facts.modalites_execution.get_or_insert_with(|| vec![MODALITE_EXECUTION.into()]);
    if modes.as_slice() != [MODALITE_EXECUTION] {
        errors.push(FieldError {
            field: "decp.modalites_execution".into(),
            message: format!(
                "{FORM_OF_CONTRACT}, qui s'exécute par l'émission de bons de commande : la modalité d'exécution déclarée est \
                 « {MODALITE_EXECUTION} », pas {} ; laissez ce champ vide pour la reprendre",
                quoted(modes)
            ),
        });
    }
    let ccag = facts.ccag.get_or_insert_with(|| CCAG.into());
    if ccag != CCAG {
        errors.push(FieldError {
            field: "decp.ccag".into(),
            message: format!(
                "le CCAP du groupement (article 3 « Pièces contractuelles ») fait du cahier des clauses administratives \
                 générales applicables aux marchés publics de techniques de l'information et de la communication \
                 (CCAG-TIC), approuvé par l'arrêté du 30 mars 2021, une pièce de l'accord-cadre : le CCAG de référence \
                 déclaré est « {CCAG} », pas « {ccag} » ; laissez ce champ vide pour le reprendre"
            ),
        });
    }
    errors
}

/// `facts` made to follow the titulaire's choice on the advance (`renounced`, its acte
/// d'engagement's section F): `attribution_avance` is whether it kept the CCAP's advance, the
/// rate 0 when it renounced it (the CCAP's, [`advance_rate`], is [`documented`]'s to fill in
/// otherwise); a declared value that contradicts the choice is refused, by request field.
pub fn chosen_advance(facts: &mut DecpFacts, renounced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let choice = match renounced {
        true => "renonce au bénéfice de l'avance",
        false => "ne renonce pas au bénéfice de l'avance",
    };
    let granted = facts.attribution_avance.get_or_insert(!renounced);
    if *granted == renounced {
        // Said once: the rate is then checked against the choice, not against the contradiction.
        *granted = !renounced;
        errors.push(FieldError {
            field: "decp.attribution_avance".into(),
            message: format!(
                "le titulaire {choice} dans son acte d'engagement (section F ; article 7 du CCAP) : l'avance déclarée aux \
                 données essentielles est donc « {} », pas « {} » ; laissez ce champ vide pour la reprendre",
                if renounced { "non" } else { "oui" },
                if renounced { "oui" } else { "non" }
            ),
        });
    }
    if renounced {
        match facts.taux_avance {
            Some(rate) if rate.abs() > 1e-9 => errors.push(FieldError {
                field: "decp.taux_avance".into(),
                message: format!(
                    "le titulaire {choice} dans son acte d'engagement (section F) : le taux de l'avance déclaré est 0, pas \
                     {} ; laissez ce champ vide pour le reprendre",
                    rate.to_string().replace('.', ",")
                ),
            }),
            _ => facts.taux_avance = Some(0.0),
        }
    }
    errors
}

/// The rate of the advance the CCAP grants (its article 7 « Avance »), as the DECP writes it:
/// 0.1 for 10 %.
pub fn advance_rate() -> f64 {
    f64::from(super::cctp::ADVANCE_PERCENT) / 100.0
}

/// The rate of `facts`' advance against the CCAP's ([`advance_rate`]): filled in when an advance
/// is granted without one; refused when another is declared (0 is taken when the titulaire
/// renounced the advance, `attribution_avance` false).
fn check_advance_rate(facts: &mut DecpFacts) -> Option<FieldError> {
    let rate = advance_rate();
    let renounced = facts.attribution_avance == Some(false);
    match facts.taux_avance {
        None if facts.attribution_avance == Some(true) => {
            facts.taux_avance = Some(rate);
            None
        }
        Some(given) if (given - rate).abs() > 1e-9 && !(renounced && given.abs() < 1e-9) => {
            let decimal = |r: f64| r.to_string().replace('.', ",");
            Some(FieldError {
                field: "decp.taux_avance".into(),
                message: format!(
                    "le CCAP du groupement (article 7 « Avance ») fixe le taux de l'avance à {} % du montant TTC du \
                     bon de commande (article R. 2191-7 du code de la commande publique) : le taux déclaré est {}, pas \
                     {} ; laissez ce champ vide pour le reprendre",
                    super::cctp::ADVANCE_PERCENT,
                    decimal(rate),
                    decimal(given)
                ),
            })
        }
        _ => None,
    }
}

/// « « A » et « B » », a list of values quoted.
fn quoted(values: &[String]) -> String {
    match values {
        [] => "une liste vide".into(),
        _ => values.iter().map(|v| format!("« {v} »")).collect::<Vec<_>>().join(" et "),
    }
}

/// What the platform knows about the contract.
pub struct Known<'a> {
    pub reference: &'a str,
    pub object: &'a str,
    pub coordinator_siret: Option<&'a str>,
    pub coordinator_departement: Option<&'a str>,
    pub vendor_siret: &'a str,
    pub amount_ht_cents: i64,
    pub duration_months: u32,
    pub notified_on: &'a str,
    /// `YYYY-MM-DD` of the first publication.
    pub published_on: &'a str,
}

/// The request field behind each schema property, so errors name what to fix.
const REQUEST_FIELDS: &[(&str, &str)] = &[
    ("id", "decp.marche_id"),
    ("acheteur", "decp.acheteur_siret"),
    ("nature", "decp.nature"),
    ("objet", "object"),
    ("codeCPV", "decp.code_cpv"),
    ("techniques", "decp.techniques"),
    ("modalitesExecution", "decp.modalites_execution"),
    ("marcheInnovant", "decp.marche_innovant"),
    ("ccag", "decp.ccag"),
    ("offresRecues", "decp.offres_recues"),
    ("attributionAvance", "decp.attribution_avance"),
    ("tauxAvance", "decp.taux_avance"),
    ("actesSousTraitance", "decp.actes_sous_traitance"),
    ("typeGroupementOperateurs", "decp.type_groupement_operateurs"),
    ("sousTraitanceDeclaree", "decp.sous_traitance_declaree"),
    ("procedure", "decp.procedure"),
    ("lieuExecution", "decp.lieu_execution_code"),
    ("dureeMois", "duration_months"),
    ("dateNotification", "notified_on"),
    ("montant", "amount_ht_cents"),
    ("typesPrix", "decp.types_prix"),
    ("formePrix", "decp.forme_prix"),
    ("titulaires", "vendor_siret"),
    ("considerationsSociales", "decp.considerations_sociales"),
    ("considerationsEnvironnementales", "decp.considerations_environnementales"),
];

fn wrapped(key: &str, items: &Option<Vec<String>>) -> Option<Value> {
    items.as_ref().map(|list| json!({ key: list }))
}

/// The `marche` object: known facts and given facts; absent facts stay absent.
pub fn marche(known: &Known<'_>, facts: &DecpFacts) -> Value {
    let mut m = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            m.insert(key.to_string(), value);
        }
    };
    let id = facts.marche_id.clone().or_else(|| (known.reference.len() <= 16).then(|| known.reference.to_string()));
    put("id", id.map(Value::from));
    // The buyer is the coordinator that runs the procedure: its SIRET of record wins.
    let siret = known.coordinator_siret.or(facts.acheteur_siret.as_deref());
    put("acheteur", siret.map(|s| json!({ "id": s })));
    put("nature", Some(Value::from(facts.nature.clone().unwrap_or_else(|| "Marché".into()))));
    put("objet", Some(Value::from(known.object)));
    put("codeCPV", facts.code_cpv.clone().map(Value::from));
    put("techniques", wrapped("technique", &facts.techniques));
    put("modalitesExecution", wrapped("modaliteExecution", &facts.modalites_execution));
    put("marcheInnovant", facts.marche_innovant.map(Value::from));
    put("ccag", facts.ccag.clone().map(Value::from));
    put("offresRecues", facts.offres_recues.map(Value::from));
    put("attributionAvance", facts.attribution_avance.map(Value::from));
    put("tauxAvance", facts.taux_avance.and_then(serde_json::Number::from_f64).map(Value::Number));
    put("typeGroupementOperateurs", facts.type_groupement_operateurs.clone().map(Value::from));
    put("sousTraitanceDeclaree", facts.sous_traitance_declaree.map(Value::from));
    put("actesSousTraitance", facts.actes_sous_traitance.clone().map(Value::Array));
    put("procedure", facts.procedure.clone().map(Value::from));
    let lieu = match (&facts.lieu_execution_code, &facts.lieu_execution_type) {
        (Some(code), kind) => {
            Some(json!({ "code": code, "typeCode": kind.clone().unwrap_or_else(|| "Code département".into()) }))
        }
        (None, _) => known.coordinator_departement.map(|d| json!({ "code": d, "typeCode": "Code département" })),
    };
    put("lieuExecution", lieu);
    put("dureeMois", Some(Value::from(known.duration_months)));
    put("dateNotification", Some(Value::from(known.notified_on)));
    put("datePublicationDonnees", Some(Value::from(known.published_on)));
    put("montant", Some(amount_in_euros(known.amount_ht_cents)));
    put("typesPrix", wrapped("typePrix", &facts.types_prix));
    put("formePrix", facts.forme_prix.clone().map(Value::from));
    put("titulaires", Some(json!([{ "titulaire": { "typeIdentifiant": "SIRET", "id": known.vendor_siret } }])));
    put("considerationsSociales", wrapped("considerationSociale", &facts.considerations_sociales));
    put(
        "considerationsEnvironnementales",
        wrapped("considerationEnvironnementale", &facts.considerations_environnementales),
    );
    Value::Object(m)
}

/// Euros with cents, as a JSON number (`123456.78`).
fn amount_in_euros(cents: i64) -> Value {
    if cents % 100 == 0 {
        Value::from(cents / 100)
    } else {
        serde_json::Number::from_f64(cents as f64 / 100.0).map(Value::Number).unwrap_or(Value::Null)
    }
}

/// The publication file: `{"marches": {"marche": [ ... ]}}`.
pub fn publication(marche: Value) -> Value {
    publication_of(vec![marche])
}

/// The publication file of several marchés: the lots of a groupement, one record each.
pub fn publication_of(marches: Vec<Value>) -> Value {
    json!({ "marches": { "marche": marches } })
}

/// The DECP `id` of the lot `lot` of a groupement of several lots whose reference is
/// `reference` (`GC-2026-000001`): each lot is a marché with its own id, within the format's 16
/// characters — the reference without its `GC-` prefix, then `L` and the lot's number
/// (`2026-000001L2`, 13 characters; a groupement of one lot publishes its reference itself).
pub fn lot_marche_id(reference: &str, lot: u32) -> String {
    format!("{}L{lot}", reference.strip_prefix("GC-").unwrap_or(reference))
}

/// Checks a `marche` object against the schema; errors name the request fields.
pub fn check(marche: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate(marche, marche_schema(), "", &mut errors);
    errors.extend(conditional(marche));
    for e in &mut errors {
        let top = e.field.split(['.', '[']).next().unwrap_or_default();
        if let Some((_, field)) = REQUEST_FIELDS.iter().find(|(p, _)| *p == top) {
            e.message = format!("{} ({})", e.message, e.field);
            e.field = field.to_string();
        }
    }
    errors
}

/// The rules the schema's documentation states and the schema cannot express.
fn conditional(marche: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if marche["attributionAvance"] == Value::Bool(true) && marche.get("tauxAvance").is_none() {
        errors.push(FieldError {
            field: "tauxAvance".into(),
            message: "une avance est attribuée : son taux est obligatoire (0,1 pour 10 % ; 0 si inconnu)".into(),
        });
    }
    if marche["sousTraitanceDeclaree"] == Value::Bool(true) && marche.get("actesSousTraitance").is_none() {
        errors.push(FieldError {
            field: "actesSousTraitance".into(),
            message: "une sous-traitance est déclarée : les actes spéciaux de sous-traitance sont obligatoires".into(),
        });
    }
    errors
}

/// Checks a whole publication file against the root of the official schema.
pub fn check_publication(file: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate(file, schema(), "", &mut errors);
    for m in file["marches"]["marche"].as_array().into_iter().flatten() {
        errors.extend(conditional(m));
    }
    errors
}

/// The schema a local `$ref` (`#/definitions/...`) points to.
fn resolve(reference: &str) -> Option<&'static Value> {
    reference.strip_prefix("#/")?.split('/').try_fold(schema(), |node, key| node.get(key))
}

fn type_matches(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn type_label(expected: &str) -> &'static str {
    match expected {
        "object" => "un objet",
        "array" => "une liste",
        "string" => "un texte",
        "integer" => "un entier",
        "number" => "un nombre",
        "boolean" => "vrai ou faux",
        _ => "une valeur",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The subset of JSON Schema the DECP file uses: type, required, properties,
/// additionalProperties (false), enum, pattern, minimum, minLength,
/// maxLength, minItems, items.
pub fn validate(value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str).and_then(resolve) {
        validate(value, target, path, errors);
    }
    if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
        let fits = |v: &Value| {
            let mut inner = Vec::new();
            validate(value, v, path, &mut inner);
            inner.is_empty()
        };
        if !variants.iter().any(fits) {
            errors.push(FieldError { field: path.to_string(), message: "aucune des formes admises".into() });
        }
    }
    let mut fail = |message: String| errors.push(FieldError { field: path.to_string(), message });
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        if !type_matches(value, expected) {
            fail(format!("attendu {}", type_label(expected)));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().filter_map(Value::as_str).map(|s| format!("« {s} »")).collect();
            fail(format!("valeur {value} non prévue par les DECP ; valeurs admises : {}", list.join(", ")));
        }
    }
    if let (Some(pattern), Some(text)) = (schema.get("pattern").and_then(Value::as_str), value.as_str()) {
        let re = regex::Regex::new(pattern).expect("the schema's patterns compile");
        if !re.is_match(text) {
            fail(format!("« {text} » n'a pas le format attendu ({pattern})"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if n < min {
            fail(format!("au moins {min}"));
        }
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), value.as_f64()) {
        if n > max {
            fail(format!("au plus {max}"));
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| len < min) {
            fail("texte vide".into());
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64).filter(|max| len > *max) {
            fail(format!("{len} caractères pour {max} au plus"));
        }
    }
    if let Some(items) = value.as_array() {
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|min| (items.len() as u64) < min) {
            fail("au moins un élément".into());
        }
        let repeated = items.iter().enumerate().find(|(i, item)| items[..*i].contains(item));
        if let Some((_, item)) = repeated.filter(|_| schema.get("uniqueItems") == Some(&Value::Bool(true))) {
            fail(format!("valeur {item} répétée : chaque élément ne figure qu'une fois"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(item, item_schema, &format!("{path}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(key) {
                errors.push(FieldError {
                    field: join(path, key),
                    message: "donnée obligatoire des DECP manquante : à fournir lors de l'attribution".into(),
                });
            }
        }
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => validate(item, sub, &join(path, key), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => errors.push(FieldError {
                    field: join(path, key),
                    message: "champ non prévu par le schéma des DECP".into(),
                }),
                None => {}
            }
        }
    }
}

/// The required fields of the `marche` object, as the schema lists them.
pub fn required_fields() -> Vec<&'static str> {
    marche_schema()["required"].as_array().expect("required list").iter().filter_map(Value::as_str).collect()
}

#[cfg(test)]
pub(crate) fn complete_facts() -> DecpFacts {
    DecpFacts {
        code_cpv: Some("48190000".into()),
        techniques: Some(vec!["Accord-cadre".into()]),
        modalites_execution: Some(vec!["Bons de commande".into()]),
        marche_innovant: Some(false),
        ccag: Some("Techniques de l'information et de la communication".into()),
        offres_recues: Some(4),
        attribution_avance: Some(false),
        type_groupement_operateurs: Some("Pas de groupement".into()),
        sous_traitance_declaree: Some(false),
        procedure: Some("Appel d'offres ouvert".into()),
        forme_prix: Some("Unitaire".into()),
        types_prix: Some(vec!["Définitif révisable".into()]),
        considerations_sociales: Some(vec!["Pas de considération sociale".into()]),
        considerations_environnementales: Some(vec!["Clause environnementale".into()]),
        ..DecpFacts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known<'static> {
        Known {
            reference: "GC-2026-000001",
            object: "Fourniture d'un ENT pour les écoles",
            coordinator_siret: Some("20005478100022"),
            coordinator_departement: Some("94"),
            vendor_siret: "73282932000074",
            amount_ht_cents: 12_345_678,
            duration_months: 36,
            notified_on: "2027-01-15",
            published_on: "2027-01-20",
        }
    }

    #[test]
    fn the_price_and_procedure_facts_are_the_documents_own() {
        use consultation::Procedure::{AppelOffresOuvert as Open, ProcedureAdaptee as Adapted};
        let (filled, errors) = documented(&DecpFacts::default(), Open);
        assert_eq!(errors, vec![]);
        assert_eq!(filled.types_prix, Some(vec!["Définitif révisable".to_string()]));
        assert_eq!(
            (filled.procedure.as_deref(), filled.forme_prix.as_deref()),
            (Some("Appel d'offres ouvert"), Some("Unitaire"))
        );
        // The procedure is the pieces': a procédure adaptée declared for pieces that organise an
        // appel d'offres ouvert is refused, and the other way round; each accepted for its own.
        let adapted = DecpFacts { procedure: Some("Procédure adaptée".into()), ..complete_facts() };
        assert_eq!(documented(&adapted, Adapted).1, vec![]);
        let refused = documented(&adapted, Open).1;
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].field, "decp.procedure");
        assert!(
            refused[0].message.contains(
                "organisent un appel d'offres ouvert (articles L. 2124-2, R. 2124-2 et R. 2161-2 à R. 2161-5 du code \
                 de la commande publique) : la procédure déclarée est « Appel d'offres ouvert », pas « Procédure adaptée »"
            ),
            "{refused:?}"
        );
        let open = DecpFacts { procedure: Some("Appel d'offres ouvert".into()), ..complete_facts() };
        assert_eq!(documented(&open, Adapted).1[0].field, "decp.procedure");
        assert_eq!(documented(&DecpFacts::default(), Adapted).0.procedure.as_deref(), Some("Procédure adaptée"));
        let contradicting = DecpFacts {
            types_prix: Some(vec!["Définitif ferme".into()]),
            forme_prix: Some("Forfaitaire".into()),
            procedure: Some("Dialogue compétitif".into()),
            ..complete_facts()
        };
        let (kept, errors) = documented(&contradicting, Open);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["decp.procedure", "decp.types_prix", "decp.forme_prix"], "{errors:?}");
        assert!(errors[1].message.contains("« Définitif révisable », pas « Définitif ferme »"), "{errors:?}");
        assert!(errors[1].message.contains("P = P0 × (0,15 + 0,85 × I / I0)"), "{errors:?}");
        assert_eq!(kept.types_prix, contradicting.types_prix, "a given value is never rewritten");
    }

    #[test]
    fn the_technique_the_mode_of_execution_and_the_ccag_are_the_rc_and_ccaps() {
        use consultation::Procedure::AppelOffresOuvert as Open;
        let (filled, errors) = documented(&DecpFacts::default(), Open);
        assert_eq!(errors, vec![]);
        assert_eq!(filled.techniques, Some(vec!["Accord-cadre".to_string()]));
        assert_eq!(filled.modalites_execution, Some(vec!["Bons de commande".to_string()]));
        assert_eq!(filled.ccag.as_deref(), Some("Techniques de l'information et de la communication"));
        // The values filled in are the official nomenclature's (arrêté du 22 décembre 2022, schema 2.0.3).
        let given = DecpFacts { techniques: None, modalites_execution: None, ccag: None, ..complete_facts() };
        assert_eq!(check(&marche(&known(), &documented(&given, Open).0)), vec![]);
        // « Sans objet » and « Pas de CCAG » contradict the pieces: refused on their field, citing them.
        let contradicting = DecpFacts {
            techniques: Some(vec!["Sans objet".into()]),
            modalites_execution: Some(vec!["Bons de commande".into(), "Tranches".into()]),
            ccag: Some("Pas de CCAG".into()),
            ..complete_facts()
        };
        let (kept, errors) = documented(&contradicting, Open);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["decp.techniques", "decp.modalites_execution", "decp.ccag"], "{errors:?}");
        assert!(
            errors[0].message.contains("règlement de la consultation (article 4) et le CCAP (article 2)"),
            "{errors:?}"
        );
        assert!(errors[0].message.contains("« Accord-cadre », pas « Sans objet »"), "{errors:?}");
        assert!(
            errors[1].message.contains("« Bons de commande », pas « Bons de commande » et « Tranches »"),
            "{errors:?}"
        );
        assert!(errors[2].message.contains("CCAP du groupement (article 3"), "{errors:?}");
        assert!(errors[2]
            .message
            .contains("« Techniques de l'information et de la communication », pas « Pas de CCAG »"));
        assert_eq!(kept.ccag.as_deref(), Some("Pas de CCAG"), "a given value is never rewritten");
        assert_eq!(documented(&complete_facts(), Open).1, vec![]);
    }

    #[test]
    fn the_schema_lists_the_required_fields_of_the_official_marche() {
        let required = required_fields();
        for field in ["id", "acheteur", "codeCPV", "titulaires", "considerationsEnvironnementales", "ccag"] {
            assert!(required.contains(&field), "{field}");
        }
        assert_eq!(required.len(), 24);
    }

    #[test]
    fn a_lot_of_several_has_its_own_id_within_sixteen_characters() {
        assert_eq!(lot_marche_id("GC-2026-000001", 2), "2026-000001L2");
        assert!(lot_marche_id("GC-2026-999999", 10).len() <= 16);
        let file = publication_of(vec![json!({ "id": "a" }), json!({ "id": "b" })]);
        assert_eq!(file["marches"]["marche"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_complete_record_passes() {
        let m = marche(&known(), &complete_facts());
        assert_eq!(check(&m), vec![], "{m:#}");
        assert_eq!(m["montant"], json!(123456.78));
        assert_eq!(m["acheteur"]["id"], "20005478100022");
        assert_eq!(m["lieuExecution"], json!({ "code": "94", "typeCode": "Code département" }));
        let file = publication(m);
        assert!(file["marches"]["marche"][0]["titulaires"][0]["titulaire"]["id"].is_string());
    }

    #[test]
    fn missing_facts_are_reported_by_request_field_not_invented() {
        let mut k = known();
        k.coordinator_siret = None;
        let errors = check(&marche(&k, &DecpFacts::default()));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for field in ["decp.acheteur_siret", "decp.code_cpv", "decp.procedure", "decp.ccag", "decp.offres_recues"] {
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
        assert!(errors.iter().all(|e| e.message.contains("manquante")), "{errors:?}");
    }

    #[test]
    fn the_advance_rate_is_the_ccaps_but_zero_when_renounced() {
        let with = |granted: bool, rate: Option<f64>| {
            let facts = DecpFacts { attribution_avance: Some(granted), taux_avance: rate, ..complete_facts() };
            let (facts, errors) = documented(&facts, super::super::consultation::Procedure::AppelOffresOuvert);
            (facts.taux_avance, errors.into_iter().map(|e| e.field).collect::<Vec<_>>())
        };
        assert_eq!(with(true, None), (Some(0.1), vec![]));
        assert_eq!(with(true, Some(0.1)), (Some(0.1), vec![]));
        assert_eq!(with(true, Some(0.05)).1, ["decp.taux_avance"]);
        assert_eq!(with(true, Some(0.0)).1, ["decp.taux_avance"]);
        assert_eq!(with(false, Some(0.0)), (Some(0.0), vec![]));
        assert_eq!(with(false, Some(0.3)).1, ["decp.taux_avance"]);
        assert_eq!(with(false, None), (None, vec![]));
    }

    #[test]
    fn bad_values_are_named() {
        let facts = DecpFacts {
            code_cpv: Some("4819".into()),
            procedure: Some("Gré à gré".into()),
            offres_recues: Some(0),
            techniques: Some(vec![]),
            ..complete_facts()
        };
        let errors = check(&marche(&known(), &facts));
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            vec!["decp.code_cpv", "decp.offres_recues", "decp.procedure", "decp.techniques"],
            "{errors:?}"
        );
        let mut extra = marche(&known(), &complete_facts());
        extra["inconnu"] = json!(1);
        assert_eq!(check(&extra)[0].message, "champ non prévu par le schéma des DECP");
    }

    #[test]
    fn the_complete_official_schema_refuses_repeated_techniques_and_conditional_facts_missing() {
        let twice =
            DecpFacts { techniques: Some(vec!["Accord-cadre".into(), "Accord-cadre".into()]), ..complete_facts() };
        let errors = check(&marche(&known(), &twice));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "decp.techniques");
        assert!(errors[0].message.contains("répétée"), "{errors:?}");
        let advance = DecpFacts { attribution_avance: Some(true), ..complete_facts() };
        assert_eq!(check(&marche(&known(), &advance))[0].field, "decp.taux_avance");
        let rated = DecpFacts { taux_avance: Some(0.1), ..advance };
        assert_eq!(check(&marche(&known(), &rated)), vec![]);
        let too_high = DecpFacts { taux_avance: Some(1.5), ..rated };
        assert_eq!(check(&marche(&known(), &too_high))[0].field, "decp.taux_avance");
        let subcontracted = DecpFacts { sous_traitance_declaree: Some(true), ..complete_facts() };
        assert_eq!(check(&marche(&known(), &subcontracted))[0].field, "decp.actes_sous_traitance");
        // The whole publication file validates against the root of the official schema.
        assert_eq!(check_publication(&publication(marche(&known(), &complete_facts()))), vec![]);
        assert!(!check_publication(&json!({ "marches": {} })).is_empty(), "a file with no marche is refused");
        assert_eq!(SCHEMA_VERSION, "2.0.3");
        assert!(SCHEMA_TEXT.contains("schema_decp") || schema()["$id"].as_str().is_some());
    }
}
