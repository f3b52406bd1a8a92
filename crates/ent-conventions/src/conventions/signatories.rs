//! Who represents each party and the act that empowers them: the délibération of a
//! commune, EPCI, syndicat mixte, département or région, the act of the conseil
//! d'administration of an EPLE (R. 421-20 of the code de l'éducation), the recteur or
//! DASEN themselves or a délégataire under an arrêté de délégation. Checked when given,
//! required before submission where the model says so, and written into the document.

use super::model::ConventionModel;
use super::{Convention, Party};
use chrono::NaiveDate;
use ent_kernel::clock::french_date;
use ent_kernel::error::{Checks, Problem};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::naming::{self, Designation};
use ent_kernel::skip_serializing_none;
use ent_kernel::text::fold;
use ent_kernel::validate::is_blank;
use ent_platform::registry::EtabType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The person who signs for a party, and the act that empowers them.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signatory {
    /// Civility and name, e.g. « M. Jean Dupont ».
    #[serde(default)]
    pub name: String,
    /// The quality in which they sign, e.g. « maire », « rectrice de l'académie de Créteil ».
    #[serde(default)]
    pub quality: String,
    /// When they sign « par délégation »: the act of delegation, e.g. « arrêté n° 2026-14 ».
    pub delegation: Option<String>,
    /// Date of the act of delegation, `YYYY-MM-DD`.
    #[schemars(extend("format" = "date"))]
    pub delegation_date: Option<String>,
    /// Number of the délibération (collectivité) or of the act of the conseil d'administration (EPLE)
    /// authorising the signature.
    pub act_number: Option<String>,
    /// Date of that délibération or act, `YYYY-MM-DD`.
    #[schemars(extend("format" = "date"))]
    pub act_date: Option<String>,
    /// Where the party signs (« Fait à … »); the commune's or académie's name by default.
    pub place: Option<String>,
}

/// What `PATCH /conventions/{id}` changes of a signatory, field by field: an absent field keeps
/// its value (the act a member's candidature recorded stays when only the name and quality are
/// given), `null` clears it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatoryPatch {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub quality: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub delegation: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(extend("format" = "date"))]
    pub delegation_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub act_number: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(extend("format" = "date"))]
    pub act_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub place: Option<Option<String>>,
}

/// A field given, `null` included (`Some(None)`), told from a field absent (`None`, by `default`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A whole signatory as a patch replacing every field (a form showing them all, the groupement's flow).
impl From<Signatory> for SignatoryPatch {
    fn from(s: Signatory) -> Self {
        SignatoryPatch {
            name: Some(Some(s.name)),
            quality: Some(Some(s.quality)),
            delegation: Some(s.delegation),
            delegation_date: Some(s.delegation_date),
            act_number: Some(s.act_number),
            act_date: Some(s.act_date),
            place: Some(s.place),
        }
    }
}

impl SignatoryPatch {
    /// `stored` with the fields given here over it.
    pub fn applied_to(&self, stored: Signatory) -> Signatory {
        let over = |given: &Option<Option<String>>, kept: Option<String>| match given {
            Some(value) => value.clone(),
            None => kept,
        };
        Signatory {
            name: over(&self.name, Some(stored.name)).unwrap_or_default(),
            quality: over(&self.quality, Some(stored.quality)).unwrap_or_default(),
            delegation: over(&self.delegation, stored.delegation),
            delegation_date: over(&self.delegation_date, stored.delegation_date),
            act_number: over(&self.act_number, stored.act_number),
            act_date: over(&self.act_date, stored.act_date),
            place: over(&self.place, stored.place),
        }
    }
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The deliberative body whose act empowers the party's signatory, if any.
fn deliberative_body(kind: OrgKind, etab_type: Option<EtabType>) -> Option<&'static str> {
    match kind {
        OrgKind::Commune => Some("du conseil municipal"),
        OrgKind::Epci => Some("du conseil communautaire"),
        OrgKind::SyndicatMixte => Some("du comité syndical"),
        OrgKind::Departement => Some("du conseil départemental"),
        OrgKind::Region => Some("du conseil régional"),
        OrgKind::Etablissement if etab_type.is_some_and(|t| !t.is_ecole()) => Some("du conseil d'administration"),
        _ => None,
    }
}

/// Whether the quality names the authority itself (the recteur, the DASEN), who needs no delegation.
fn is_authority(kind: OrgKind, quality: &str) -> bool {
    let quality = fold(quality);
    match kind {
        OrgKind::Academie => quality.starts_with("recteur") || quality.starts_with("rectrice"),
        OrgKind::Dsden => {
            quality.starts_with("directeur academique")
                || quality.starts_with("directrice academique")
                || quality.starts_with("ia dasen")
                || quality.starts_with("dasen")
        }
        _ => true,
    }
}

/// Checks the signatories given at creation or edit: known parties, dates well formed and not in the future.
pub fn check_given(
    model: &ConventionModel,
    given_signatories: &BTreeMap<String, Signatory>,
    today: NaiveDate,
    checks: &mut Checks,
) {
    for (key, signatory) in given_signatories {
        let field = format!("signatories.{key}");
        let party_key = key.split_once(':').map_or(key.as_str(), |(party, _)| party);
        if !model.parties.iter().any(|p| p.key == party_key) {
            checks.fail(&field, format!("le modèle {} n'a pas de partie « {key} »", model.id));
            continue;
        }
        let dates = [
            ("act_date", "la date de l'acte", &signatory.act_date),
            ("delegation_date", "la date de la délégation", &signatory.delegation_date),
        ];
        for (name, what, date) in dates {
            let Some(date) = given(date) else { continue };
            match ent_kernel::validate::date(date) {
                // The field names the party (the console labels it « … — la collectivité »).
                Ok(d) if d > today => checks.fail(
                    &format!("{field}.{name}"),
                    format!("{what} ({}) ne peut être dans le futur", french_date(date)),
                ),
                Ok(_) => {}
                Err(message) => checks.fail(&format!("{field}.{name}"), message),
            }
        }
    }
}

/// Refuses (on `field`) an act dated `date` that precedes the creation (`created_on`,
/// `YYYY-MM-DD`) of the groupement `reference`: a member's délibération approves the
/// groupement's convention constitutive, so it cannot precede the groupement.
pub fn check_not_before_groupement(
    field: &str,
    date: NaiveDate,
    reference: &str,
    created_on: &str,
    checks: &mut Checks,
) {
    if date.to_string().as_str() >= created_on {
        return;
    }
    checks.fail(
        field,
        format!(
            "la délibération ({}) ne peut pas précéder la création du groupement {reference} ({}) : elle approuve sa \
             convention constitutive",
            french_date(&date.to_string()),
            french_date(created_on)
        ),
    );
}

/// Refuses a submission while a party's signatory or empowering act is missing, naming the party
/// and the field (models with `require_signatories` only).
pub fn check_complete(model: &ConventionModel, conv: &Convention) -> Result<(), Problem> {
    if !model.require_signatories {
        return Ok(());
    }
    let mut checks = Checks::default();
    for party in conv.parties.iter().filter(|p| p.signature_required) {
        let who = format!("{} ({})", naming::of_org(party.org.kind, &party.org.name).official, party.label);
        let key = signatory_key(conv, party);
        let field = |name: &str| format!("signatories.{key}.{name}");
        let empty = Signatory::default();
        let s = party.signatory.as_ref().unwrap_or(&empty);
        if is_blank(&s.name) {
            checks.fail(&field("name"), format!("{who} : indiquez le nom de la personne qui signe"));
        }
        if is_blank(&s.quality) {
            checks.fail(&field("quality"), format!("{who} : indiquez la qualité du signataire"));
        }
        if let Some(body) = deliberative_body(party.org.kind, party.etab_type) {
            let act = if party.org.kind == OrgKind::Etablissement {
                "l'acte du conseil d'administration (article R. 421-20 du code de l'éducation)"
            } else {
                "la délibération"
            };
            if given(&s.act_number).is_none() {
                checks.fail(
                    &field("act_number"),
                    format!("{who} : indiquez le numéro de {act} {body} autorisant la signature"),
                );
            }
            if given(&s.act_date).is_none() {
                checks.fail(&field("act_date"), format!("{who} : indiquez la date de {act} {body}"));
            }
        }
        if !is_blank(&s.quality) && !is_authority(party.org.kind, &s.quality) && given(&s.delegation).is_none() {
            checks.fail(
                &field("delegation"),
                format!("{who} : {} signe par délégation ; indiquez l'arrêté de délégation de signature", s.quality),
            );
        }
    }
    checks.finish().map_err(|p| {
        let detail = format!("la convention ne peut être soumise à signature : {}", p.detail);
        Problem { detail, ..p }
    })
}

/// « par délégation (arrêté n° … du …) » when the signatory acts by delegation.
fn delegation_text(s: &Signatory) -> Option<String> {
    let act = given(&s.delegation)?;
    Some(match given(&s.delegation_date) {
        Some(date) => format!("par délégation ({act} du {})", french_date(date)),
        None => format!("par délégation ({act})"),
    })
}

/// The grammatical gender the civility opening a name gives (« M. », « Mme », « Monsieur »…),
/// `None` when the name opens with none.
pub fn civility_feminine(name: &str) -> Option<bool> {
    let first = name.split_whitespace().next().unwrap_or_default().trim_end_matches('.').to_lowercase();
    match first.as_str() {
        "m" | "monsieur" => Some(false),
        "mme" | "madame" | "mlle" | "mademoiselle" => Some(true),
        _ => None,
    }
}

/// « habilité », « habilitée », agreed with the civility of `name`; « habilité(e) » when it
/// has none, or in a text of an edition before [`crate::conventions::avenant::AUTHORITY_EDITION`]
/// (its signed bytes keep the word they had).
fn empowered(name: &str, edition: i64) -> &'static str {
    if edition < crate::conventions::avenant::AUTHORITY_EDITION {
        return "habilité(e)";
    }
    match civility_feminine(name) {
        Some(true) => "habilitée",
        Some(false) => "habilité",
        None => "habilité(e)",
    }
}

/// « dûment habilité par délibération du conseil municipal n° … du … », in the wording of `edition`.
fn empowerment_text(party: &Party, s: &Signatory, edition: i64) -> Option<String> {
    let body = deliberative_body(party.org.kind, party.etab_type)?;
    let number = given(&s.act_number).unwrap_or("……");
    let date = given(&s.act_date).map(french_date).unwrap_or_else(|| "……".into());
    let neutral = edition >= crate::conventions::document::WORDING_EDITION && civility_feminine(&s.name).is_none();
    let mut text = match neutral {
        true => format!("agissant en vertu de la délibération {body} n° {number} du {date}"),
        false => format!("dûment {} par délibération {body} n° {number} du {date}", empowered(&s.name, edition)),
    };
    if party.org.kind == OrgKind::Etablissement {
        text.push_str(" (article R. 421-20 du code de l'éducation)");
    }
    Some(text)
}

/// One party as the « Entre » block names it: « la Commune de Fresnes, représentée par M. …, maire,
/// dûment habilité par délibération du conseil municipal n° … du …, ci-après dénommée « la collectivité » »,
/// in the wording of `edition` (the convention's `document_edition`).
pub fn between_line(party: &Party, edition: i64) -> String {
    let called = if naming::of_org(party.org.kind, &party.org.name).feminine { "dénommée" } else { "dénommé" };
    format!("{}, ci-après {called} « {} »", between_description(party, edition), designation(&party.label, edition))
}

/// A party's label as the text designates it: from
/// [`crate::conventions::document::WORDING_EDITION`] with its article (« le membre du groupement »).
fn designation(label: &str, edition: i64) -> String {
    let with_article = ["le ", "la ", "les ", "l'", "l\u{2019}"].iter().any(|a| label.starts_with(a));
    match edition >= crate::conventions::document::WORDING_EDITION && !with_article {
        true => format!("le {label}"),
        false => label.to_string(),
    }
}

/// [`between_line`] without its designation: the organisation, who represents it and the act
/// that empowers them (a party designated with others, [`designated_together`]). From
/// [`crate::conventions::document::EPLE_EDITION`] an EPLE is designated as such, represented by
/// its chef d'établissement, its executive ([`eple_between`]).
pub fn between_description(party: &Party, edition: i64) -> String {
    if is_eple(party) && edition >= crate::conventions::document::EPLE_EDITION {
        return eple_between(party, edition);
    }
    let d = designation_in(party, edition);
    let mut parts = vec![d.article.clone()];
    match party.signatory.as_ref().filter(|s| !is_blank(&s.name)) {
        Some(s) => {
            parts.push(format!("{} par {}", d.represented(), s.name.trim()));
            if !is_blank(&s.quality) {
                parts.push(s.quality.trim().to_string());
            }
            parts.extend(delegation_text(s));
            parts.extend(empowerment_text(party, s, edition));
        }
        None => parts.push(format!("{} par son représentant légal (à compléter)", d.represented())),
    }
    parts.join(", ")
}

/// Whether `party` is an établissement public local d'enseignement (a collège, a lycée, an EREA:
/// an établissement that is no école), whose chef d'établissement is the executive.
pub fn is_eple(party: &Party) -> bool {
    party.org.kind == OrgKind::Etablissement && party.etab_type.is_some_and(|t| !t.is_ecole())
}

/// What the code de l'éducation makes the chef d'établissement of an EPLE: its executive.
const EPLE_EXECUTIVE: &str =
    "organe exécutif de l'établissement (articles L. 421-3 et R. 421-9 du code de l'éducation)";

/// An EPLE as the « Entre » of [`crate::conventions::document::EPLE_EDITION`] designates it: « le
/// Collège des Essais, établissement public local d'enseignement, représenté par son chef
/// d'établissement, M. Paul Girard, principal, agissant en qualité d'organe exécutif de
/// l'établissement (articles L. 421-3 et R. 421-9 du code de l'éducation), dûment habilité par
/// délibération du conseil d'administration … »; a signatory by délégation signs « par délégation
/// (…) du chef d'établissement, organe exécutif … ».
fn eple_between(party: &Party, edition: i64) -> String {
    let d = designation_in(party, edition);
    let mut parts = vec![d.article.clone(), "établissement public local d'enseignement".to_string()];
    let Some(s) = party.signatory.as_ref().filter(|s| !is_blank(&s.name)) else {
        parts.push(format!("{} par son chef d'établissement (à compléter), {EPLE_EXECUTIVE}", d.represented()));
        return parts.join(", ");
    };
    let quality = Some(s.quality.trim()).filter(|q| !q.is_empty()).map(str::to_string);
    match delegation_text(s) {
        None => {
            parts.push(format!("{} par son chef d'établissement, {}", d.represented(), s.name.trim()));
            parts.extend(quality);
            parts.push(format!("agissant en qualité d'{EPLE_EXECUTIVE}"));
        }
        Some(delegation) => {
            parts.push(format!("{} par {}", d.represented(), s.name.trim()));
            parts.extend(quality);
            parts.push(format!("{delegation} du chef d'établissement, {EPLE_EXECUTIVE}"));
        }
    }
    parts.extend(empowerment_text(party, s, edition));
    parts.join(", ")
}

/// « ci-après dénommées ensemble « les membres » »: the designation of `parties` (several
/// organisations of one party) together as `designation`, the participle agreeing with them
/// (feminine plural when every one is feminine).
pub fn designated_together(parties: &[&Party], designation: &str) -> String {
    let feminine = parties.iter().all(|p| naming::of_org(p.org.kind, &p.org.name).feminine);
    let called = if feminine { "dénommées" } else { "dénommés" };
    format!("ci-après {called} ensemble « {designation} »")
}

/// Who signs for a party and under which act, in one line (the console's convention page).
pub fn describe(party: &Party) -> Option<String> {
    let s = party.signatory.as_ref().filter(|s| !is_blank(&s.name))?;
    let mut parts = vec![s.name.trim().to_string()];
    if !is_blank(&s.quality) {
        parts.push(s.quality.trim().to_string());
    }
    parts.extend(delegation_text(s));
    parts.extend(empowerment_text(party, s, crate::conventions::avenant::CURRENT_EDITION));
    Some(parts.join(", "))
}

/// How a text of `edition` designates `party`'s organisation (`document::designation`).
fn designation_in(party: &Party, edition: i64) -> Designation {
    crate::conventions::document::designation(party.org.kind, &party.org.name, edition)
}

/// « la délibération du conseil municipal de Fresnes n° … du … » of `party`'s act, if recorded,
/// in a text of `edition`.
fn act_citation(party: &Party, s: &Signatory, edition: i64) -> Option<String> {
    let body = deliberative_body(party.org.kind, party.etab_type)?;
    let number = given(&s.act_number)?;
    let date = given(&s.act_date).map(|d| format!(" du {}", french_date(d))).unwrap_or_default();
    Some(format!("la délibération {body} {} n° {number}{date}", designation_in(party, edition).of))
}

/// The « Vu » lines of the parties' acts: délibérations, acts of the conseil d'administration, delegations.
pub fn vu_lines(conv: &Convention) -> Vec<String> {
    vu_lines_for(conv, "de la présente convention", None)
}

/// The « Vu » lines of an avenant's parties (from edition
/// [`crate::conventions::avenant::AUTHORITY_EDITION`]): each party's act authorising the avenant
/// itself, then the act that authorised the convention it amends (`previous`, cited as
/// `previous_named`: « la convention CONV-… »), when recorded and another.
pub fn avenant_vu_lines(conv: &Convention, previous: &Convention, previous_named: &str) -> Vec<String> {
    vu_lines_for(conv, "du présent avenant", Some((previous, previous_named)))
}

fn vu_lines_for(conv: &Convention, authorised: &str, previous: Option<(&Convention, &str)>) -> Vec<String> {
    let mut lines = Vec::new();
    for party in &conv.parties {
        let Some(s) = &party.signatory else { continue };
        if let Some(act) = act_citation(party, s, conv.document_edition) {
            lines.push(format!("Vu {act} autorisant la signature {authorised}"));
        }
        let before = previous.and_then(|(conv, named)| {
            let p = conv.parties.iter().find(|p| p.key == party.key && p.org.id == party.org.id)?;
            let act = act_citation(p, p.signatory.as_ref()?, conv.document_edition)?;
            (Some(&act) != act_citation(party, s, conv.document_edition).as_ref())
                .then(|| format!("Vu {act} ayant autorisé la signature de {named}"))
        });
        lines.extend(before);
        if let Some(act) = given(&s.delegation) {
            let date = given(&s.delegation_date).map(|d| format!(" du {}", french_date(d))).unwrap_or_default();
            lines.push(delegation_vu(party, &format!("{act}{date}"), conv.document_edition));
        }
    }
    lines
}

/// The « Vu » line of `party`'s act of délégation (`act`, with its date) in a text of `edition`:
/// from `document::DELEGATION_VU_EDITION` the act in parentheses after the party, as the « Entre »
/// cites it (« Vu l'acte de délégation de signature de l'académie de Créteil (arrêté n° 2025-07 du
/// 30 juin 2025) »); before, the act then the party's official name in parentheses.
fn delegation_vu(party: &Party, act: &str, edition: i64) -> String {
    if edition >= crate::conventions::document::DELEGATION_VU_EDITION {
        return format!("Vu l'acte de délégation de signature {} ({act})", designation_in(party, edition).of);
    }
    format!("Vu l'acte de délégation de signature {act} ({})", naming::of_org(party.org.kind, &party.org.name).official)
}

/// Where the party signs: the signatory's place, else the commune's or académie's name, and from
/// [`crate::conventions::document::SCHOOL_PLACE_EDITION`] an établissement's commune's (a text
/// of `edition`).
fn place(party: &Party, d: &Designation, edition: i64) -> String {
    if let Some(place) = party.signatory.as_ref().and_then(|s| given(&s.place)) {
        return place.to_string();
    }
    let school_place = edition >= crate::conventions::document::SCHOOL_PLACE_EDITION;
    match (party.org.kind, &party.commune) {
        (OrgKind::Etablissement, Some(commune)) if school_place => commune.clone(),
        (OrgKind::Commune, _) => party.org.name.clone(),
        (OrgKind::Academie, _) => {
            let official = d.official.trim_start_matches("Académie ").trim_start_matches("académie ");
            official.trim_start_matches("de ").trim_start_matches("d'").to_string()
        }
        _ => "……………………".into(),
    }
}

/// The signature block of each party in the body: who signs, in what quality, « Fait à …, le … ».
pub fn signature_blocks(conv: &Convention) -> Vec<String> {
    conv.parties
        .iter()
        .filter(|p| p.signature_required)
        .map(|party| {
            let d = designation_in(party, conv.document_edition);
            let who = match &party.signatory {
                Some(s) if !is_blank(&s.name) => {
                    let mut who = vec![s.name.trim().to_string()];
                    if !is_blank(&s.quality) {
                        who.push(s.quality.trim().to_string());
                    }
                    who.extend(delegation_text(s));
                    who.join(", ")
                }
                _ => "nom et qualité du signataire (à compléter)".into(),
            };
            format!("Pour {} : {who}. Fait à {}, le ……………………", d.article, place(party, &d, conv.document_edition))
        })
        .collect()
}

/// The signatories an avenant is drafted with: those of the convention it amends, without the
/// act (délibération, act of the conseil d'administration) that authorised the convention: the
/// avenant needs its own, required at its submission ([`check_complete`]).
pub fn for_avenant(mut signatories: BTreeMap<String, Signatory>) -> BTreeMap<String, Signatory> {
    for s in signatories.values_mut() {
        s.act_number = None;
        s.act_date = None;
    }
    signatories
}

/// Refuses the submission of an avenant (`conv`) one of whose parties cites, as the act
/// authorising it, the very act that authorised the convention it amends (`previous`): each
/// needs the délibération (or act of the conseil d'administration) authorising the avenant itself.
pub fn check_own_acts(conv: &Convention, previous: &Convention) -> Result<(), Problem> {
    let mut checks = Checks::default();
    for party in &conv.parties {
        let edition = conv.document_edition;
        let Some(act) = party.signatory.as_ref().and_then(|s| act_citation(party, s, edition)) else { continue };
        let same = previous.parties.iter().any(|p| {
            p.org.id == party.org.id
                && p.signatory.as_ref().and_then(|s| act_citation(p, s, edition)).as_ref() == Some(&act)
        });
        if same {
            let who = naming::of_org(party.org.kind, &party.org.name).official;
            checks.fail(
                &format!("signatories.{}.act_number", signatory_key(conv, party)),
                format!(
                    "{who} : {act} a autorisé la signature de la convention {} ; indiquez celle qui autorise le présent \
                     avenant",
                    previous.reference
                ),
            );
        }
    }
    checks.finish().map_err(|p| {
        let detail = format!("l'avenant ne peut être soumis à signature : {}", p.detail);
        Problem { detail, ..p }
    })
}

/// The signatories of a convention's parties, by party key (for the edit that keeps them).
pub fn current(conv: &Convention) -> BTreeMap<String, Signatory> {
    // Keyed by organisation: a party whose organisation changes, or a member joining a multiple
    // party, does not inherit another organisation's signatory.
    conv.parties.iter().filter_map(|p| p.signatory.clone().map(|s| (party_org_key(&p.key, &p.org.id), s))).collect()
}

/// The key naming a party's signatory in requests and errors: the party key, or `key:org_id` for each organisation of a
/// party several organisations play (the members of a groupement each have their signatory).
pub fn signatory_key(conv: &Convention, party: &Party) -> String {
    if conv.parties.iter().filter(|p| p.key == party.key).count() > 1 {
        party_org_key(&party.key, &party.org.id)
    } else {
        party.key.clone()
    }
}

/// The stored signatories (`key:org_id`) with the `edits` applied in turn, field by field
/// ([`SignatoryPatch`]): one given for an organisation (`key:org_id`) over its stored one; one
/// given for a whole party (`key`) over each stored one of its organisations, and as the party's
/// own for an organisation that has none.
pub fn merged(
    mut stored: BTreeMap<String, Signatory>,
    edits: impl IntoIterator<Item = (String, SignatoryPatch)>,
) -> BTreeMap<String, Signatory> {
    for (key, patch) in edits {
        if !key.contains(':') {
            let prefix = format!("{key}:");
            for (_, signatory) in stored.iter_mut().filter(|(k, _)| k.starts_with(&prefix)) {
                *signatory = patch.applied_to(std::mem::take(signatory));
            }
        }
        let signatory = patch.applied_to(stored.remove(&key).unwrap_or_default());
        stored.insert(key, signatory);
    }
    stored
}

/// `key:org_id`: the signatory key of one organisation of a multiple party.
pub fn party_org_key(key: &str, org_id: &str) -> String {
    format!("{key}:{org_id}")
}

/// The signatory of the party `key` played by `org_id`: the one given for this organisation
/// (`key:org_id`), else the one given for the party.
pub fn for_party<'a>(given: &'a BTreeMap<String, Signatory>, key: &str, org_id: &str) -> Option<&'a Signatory> {
    given.get(&party_org_key(key, org_id)).or_else(|| given.get(key))
}

/// A signatory as stored in `convention_parties.signatory` (JSON).
pub fn to_column(signatory: Option<&Signatory>) -> Option<String> {
    signatory.and_then(|s| serde_json::to_string(s).ok())
}

pub fn from_column(text: Option<&str>) -> Option<Signatory> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Signatory {
        Signatory { name: name.into(), ..Signatory::default() }
    }

    #[test]
    fn each_organisation_of_a_multiple_party_has_its_own_signatory() {
        let given: BTreeMap<String, Signatory> =
            [(party_org_key("membre", "fresnes"), named("M. Marie")), ("coordinateur".to_string(), named("Mme Roux"))]
                .into();
        assert_eq!(for_party(&given, "membre", "fresnes").map(|s| s.name.as_str()), Some("M. Marie"));
        assert_eq!(for_party(&given, "membre", "ivry"), None, "a member never takes another's signatory");
        assert_eq!(for_party(&given, "coordinateur", "sm94").map(|s| s.name.as_str()), Some("Mme Roux"));
    }

    #[test]
    fn a_signatory_given_for_a_party_replaces_the_stored_ones_of_its_organisations() {
        let stored: BTreeMap<String, Signatory> = [
            (party_org_key("academie", "creteil"), named("ancien")),
            (party_org_key("membre", "fresnes"), named("M. Marie")),
        ]
        .into();
        let merged = merged(stored, [("academie".to_string(), named("nouvelle").into())]);
        assert_eq!(for_party(&merged, "academie", "creteil").map(|s| s.name.as_str()), Some("nouvelle"));
        assert_eq!(for_party(&merged, "membre", "fresnes").map(|s| s.name.as_str()), Some("M. Marie"));
    }

    #[test]
    fn a_patch_changes_the_fields_it_gives_keeps_those_absent_and_clears_those_null() {
        let act = Signatory {
            act_number: Some("2026-DCM-001".into()),
            act_date: Some("2026-09-01".into()),
            delegation: Some("arrêté n° 12".into()),
            ..Signatory::default()
        };
        let key = party_org_key("membre", "fresnes");
        let patch: SignatoryPatch =
            serde_json::from_str(r#"{ "name": "M. Marie", "quality": "maire", "delegation": null }"#).unwrap();
        let merged = merged([(key.clone(), act)].into(), [(key.clone(), patch)]);
        let signatory = &merged[&key];
        assert_eq!((signatory.name.as_str(), signatory.quality.as_str()), ("M. Marie", "maire"));
        assert_eq!(
            (signatory.act_number.as_deref(), signatory.act_date.as_deref()),
            (Some("2026-DCM-001"), Some("2026-09-01")),
            "the act recorded stays"
        );
        assert_eq!(signatory.delegation, None, "null clears");
    }
}
