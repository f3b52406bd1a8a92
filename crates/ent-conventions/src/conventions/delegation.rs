//! Who may sign for a party. The document names the party's representative (« M. Jean Dupont,
//! maire »); the signature of anyone else binds the party only by a délégation de signature:
//! they sign « pour le maire et par délégation », citing the act (arrêté or décision, number,
//! date) and their own quality. The representative is recognised by name: the signer's name in
//! the directory and the name the document gives, compared folded (case, accents, hyphens and
//! apostrophes aside), without civility or punctuation, in any order (« DUPONT Jean » is
//! « M. Jean Dupont »). A signer whose name differs — another elected official, the DAN for the
//! recteur — is asked for the délégation; a mistaken refusal costs the representative the act
//! they cite or a corrected name, never a signature bound to the wrong person.

use super::signatories::{civility_feminine, Signatory};
use super::Party;
use chrono::NaiveDate;
use ent_kernel::clock::french_date;
use ent_kernel::error::{Checks, Problem};
use ent_kernel::naming;
use ent_kernel::skip_serializing_none;
use ent_kernel::text::fold;
use ent_kernel::validate::is_blank;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The act delegating the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActKind {
    /// An arrêté (of the maire, the président, the recteur…).
    Arrete,
    /// A décision (of the directeur académique, of an établissement's head…).
    Decision,
}

impl ActKind {
    pub fn label(self) -> &'static str {
        match self {
            ActKind::Arrete => "arrêté",
            ActKind::Decision => "décision",
        }
    }

    /// The kind a form's value names (`arrete`, `decision`).
    pub fn parse(value: &str) -> Option<ActKind> {
        match value.trim() {
            "arrete" => Some(ActKind::Arrete),
            "decision" => Some(ActKind::Decision),
            _ => None,
        }
    }
}

/// A signature given by délégation de signature: the signer's quality and the act.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// The signer's quality, e.g. « adjoint au maire chargé de l'éducation ».
    pub quality: String,
    /// `arrete` or `decision`.
    pub act: ActKind,
    /// The act's number, e.g. « 2026-114 ».
    pub number: String,
    /// The act's date, `YYYY-MM-DD`, not in the future.
    #[schemars(extend("format" = "date"))]
    pub date: String,
}

/// The longest quality and act number accepted.
const MAX_QUALITY: usize = 200;
const MAX_NUMBER: usize = 50;

impl Delegation {
    /// The délégation checked (`today`, the day in France): every field given, on one line, the
    /// date a day up to today; 422 naming each field (`delegation.quality`, …) otherwise.
    pub fn checked(self, today: NaiveDate) -> Result<Delegation, Problem> {
        let mut checks = Checks::default();
        let quality = checks.text("delegation.quality", &self.quality, MAX_QUALITY);
        checks.line("delegation.quality", &quality);
        let number = checks.text("delegation.number", &self.number, MAX_NUMBER);
        checks.line("delegation.number", &number);
        if let Some(day) = checks.date("delegation.date", self.date.trim()) {
            if day > today {
                checks.fail(
                    "delegation.date",
                    format!("l'acte de délégation ({}) ne peut être daté dans le futur", french_date(&day.to_string())),
                );
            }
        }
        checks.finish()?;
        Ok(Delegation { quality, act: self.act, number, date: self.date.trim().to_string() })
    }

    /// « arrêté n° 2026-114 du 3 mars 2026 ».
    pub fn act_text(&self) -> String {
        format!("{} n° {} du {}", self.act.label(), self.number, french_date(&self.date))
    }

    /// « Pour le maire et par délégation, Karim Benali, adjoint au maire, arrêté n° … du … »:
    /// `signer` signing for `party` in place of its representative.
    pub fn phrase(&self, signer: &str, party: &Party) -> String {
        let signer = person_name(signer);
        format!("Pour {} et par délégation, {signer}, {}, {}", delegator(party), self.quality, self.act_text())
    }

    /// As stored in `convention_steps.delegation` (JSON).
    pub fn to_column(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }

    pub fn from_column(text: Option<&str>) -> Option<Delegation> {
        text.and_then(|t| serde_json::from_str(t).ok())
    }
}

/// Who delegates: « le maire », « la rectrice de l'académie » (the named representative's
/// quality, its article from their civility), else the party itself (« la Commune de Fresnes »).
fn delegator(party: &Party) -> String {
    match party.signatory.as_ref().filter(|s| !is_blank(&s.quality)) {
        Some(s) => naming::le(s.quality.trim(), civility_feminine(&s.name).unwrap_or(false)),
        None => naming::of_org(party.org.kind, &party.org.name).article,
    }
}

/// Civilities and titles a name may open with, folded: left out of the comparison.
const CIVILITIES: &[&str] = &["m", "mme", "mlle", "monsieur", "madame", "mademoiselle", "mr", "dr"];

/// A person's name as compared: folded words, civility and punctuation left out, sorted.
fn name_words(name: &str) -> Vec<String> {
    let folded = fold(name);
    let mut words: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !CIVILITIES.contains(w))
        .map(str::to_string)
        .collect();
    words.sort_unstable();
    words
}

/// The person a directory's display name names: what precedes its first comma (« Sophie
/// Durand, directrice de l'école Robert Doisneau » is Sophie Durand; the rest is a label).
pub fn person_name(display: &str) -> &str {
    display.split(',').next().unwrap_or(display).trim()
}

/// Whether `signer` (their name in the directory, [`person_name`]) is the representative
/// `named` by the document.
pub fn is_representative(signer: &str, named: &Signatory) -> bool {
    let named = name_words(person_name(&named.name));
    !named.is_empty() && named == name_words(person_name(signer))
}

/// What `signer` signing for `party` must give, and gave: `Ok(None)` when they sign as the
/// representative the document names (a délégation given is then not theirs to record) or
/// when the document names none; `Ok(Some(d))` by délégation, checked; 422 on `delegation`,
/// in French, when they are not the representative and gave none.
pub fn required(
    signer: &str,
    party: &Party,
    given: Option<Delegation>,
    today: NaiveDate,
) -> Result<Option<Delegation>, Problem> {
    let named = party.signatory.as_ref().filter(|s| !is_blank(&s.name));
    match (named, given) {
        (Some(named), _) if is_representative(signer, named) => Ok(None),
        (_, Some(given)) => given.checked(today).map(Some),
        (None, None) => Ok(None),
        (Some(named), None) => {
            let who = match is_blank(&named.quality) {
                true => named.name.trim().to_string(),
                false => format!("{}, {},", named.name.trim(), named.quality.trim()),
            };
            Err(Problem::invalid_field(
                "delegation",
                format!(
                    "la convention désigne {who} pour signer au nom {} : vous ({}) ne signez à sa place que par \
                     délégation de signature ; indiquez votre qualité et l'acte qui vous la donne (arrêté ou décision, \
                     numéro, date)",
                    naming::of_org(party.org.kind, &party.org.name).of,
                    person_name(signer)
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Signatory {
        Signatory { name: name.into(), quality: "maire".into(), ..Signatory::default() }
    }

    #[test]
    fn the_representative_is_recognised_by_name_whatever_its_case_order_and_civility() {
        assert!(is_representative("Jean Dupont", &named("M. Jean Dupont")));
        assert!(is_representative("DUPONT Jean", &named("M. Jean Dupont")));
        assert!(is_representative("Hélène Lefèvre-Martin", &named("Mme Helene Lefevre Martin")));
        assert!(!is_representative("Karim Benali", &named("M. Jean Dupont")));
        assert!(!is_representative("Jean Dupont-Moretti", &named("M. Jean Dupont")), "a word more is another person");
        assert!(!is_representative("M.", &named("Mme")), "no name to compare");
        assert!(
            is_representative("Sophie Durand, directrice de l'école Robert Doisneau", &named("Mme Sophie Durand")),
            "a display name's label after its comma is not the name"
        );
        assert!(!is_representative("Karim Benali, adjoint au maire", &named("M. Jean Dupont")));
    }

    #[test]
    fn a_delegation_is_checked_field_by_field() {
        let today = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
        let given = Delegation {
            quality: " adjoint au maire ".into(),
            act: ActKind::Arrete,
            number: "2026-114".into(),
            date: "2026-03-03".into(),
        };
        let checked = given.clone().checked(today).unwrap();
        assert_eq!(checked.quality, "adjoint au maire");
        assert_eq!(checked.act_text(), "arrêté n° 2026-114 du 3 mars 2026");
        let future = Delegation { date: "2026-09-02".into(), ..given.clone() };
        let problem = future.checked(today).unwrap_err();
        assert_eq!(problem.errors[0].field, "delegation.date", "{problem:?}");
        let blank = Delegation { quality: " ".into(), number: "a\nb".into(), ..given };
        let fields: Vec<String> = blank.checked(today).unwrap_err().errors.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["delegation.quality", "delegation.number"]);
    }
}
