//! Who may sign for a party. The document names the party's representative (« M. Jean Dupont,
//! maire »); the signature of anyone else binds the party only by a délégation de signature:
//! they sign « pour le maire et par délégation », citing the act (arrêté or décision, number,
//! date) and their own quality. The representative is recognised by name: the signer's name in
//! the directory and the name the document gives, compared folded (case, accents, hyphens and
//! apostrophes aside), without civility or punctuation, in any order (« DUPONT Jean » is
//! « M. Jean Dupont »). A signer whose name differs — another elected official, the DAN for the
//! recteur — is asked for the délégation; a mistaken refusal costs the representative the act
//! they cite or a corrected name, never a signature bound to the wrong person.

use super::signatories::{self, civility_feminine, Signatory};
use super::{ConventionModel, Party, Status};
use chrono::NaiveDate;
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::naming;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::parse_timestamp;
use ent_kernel::text::fold;
use ent_kernel::validate::is_blank;
use ent_platform::identity::Actor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

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
    /// Who gave it: the representative the document names, recorded with the signature (set by
    /// the platform: a value given must name that representative, else 422 on
    /// `delegation.delegator`); absent when the document names none, and on a signature recorded
    /// before it was kept.
    #[serde(default)]
    pub delegator: Option<String>,
}

/// The longest quality and act number accepted.
const MAX_QUALITY: usize = 200;
const MAX_NUMBER: usize = 50;

impl Delegation {
    /// The délégation checked (`today`, the day in France) and given by `delegator`, the
    /// representative the document names: every field given, on one line, the date a day up to
    /// today, a `delegator` sent naming that representative ([`check_delegator`]); 422 naming
    /// each field (`delegation.quality`, …) otherwise.
    pub fn checked(self, today: NaiveDate, delegator: Option<String>) -> Result<Delegation, Problem> {
        let mut checks = Checks::default();
        check_delegator(self.delegator.as_deref(), delegator.as_deref(), &mut checks);
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
        Ok(Delegation { quality, act: self.act, number, date: self.date.trim().to_string(), delegator })
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

/// Who gave a délégation is the platform's to record (the representative the document names,
/// `named`): a `sent` value naming another person (or any, where the document names none) is
/// refused on `delegation.delegator` rather than silently replaced; one naming the same person
/// ([`name_words`]), or blank, is accepted.
fn check_delegator(sent: Option<&str>, named: Option<&str>, checks: &mut Checks) {
    let Some(sent) = sent.filter(|s| !is_blank(s)) else { return };
    match named {
        Some(named) if name_words(sent) == name_words(named) => {}
        Some(named) => checks.fail(
            "delegation.delegator",
            format!(
                "la délégation est donnée par le représentant que la convention désigne, {} : la plateforme \
                 l'inscrit d'elle-même ; « {} » ne peut y être indiqué (laissez ce champ vide)",
                named.trim(),
                sent.trim()
            ),
        ),
        None => checks.fail(
            "delegation.delegator",
            "la convention ne désigne pas de représentant pour cette partie : qui a donné la délégation n'est pas \
             inscrit (laissez ce champ vide)",
        ),
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
        (_, Some(given)) => {
            let delegator = named.map(|n| n.name.trim().to_string());
            given.checked(today, delegator).map(Some)
        }
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

/// A live signature given for an organisation: the convention, the signatory its document names
/// for the organisation, who signed and when.
#[derive(sqlx::FromRow)]
struct SignedRow {
    convention_id: String,
    signatory: Option<String>,
    user_name: Option<String>,
    at: String,
}

/// A signature in one's own name: the person the document named (as it names them), the
/// convention signed and the day (in France) of the signature.
struct OwnSignature {
    name: String,
    convention_id: String,
    day: NaiveDate,
}

/// The signatures given for `org_id` by the person its convention names there, in their own
/// name: recorded (a submission or a draft names, only a signature says « I represent it »),
/// still live (a convention refused back to draft, modified or abandoned voids its signatures),
/// without délégation, by the person named (their directory name is the document's). A
/// convention in signature counts once that person has signed it, whatever the other parties.
/// The platform does not know when a representative takes office: only when they signed.
async fn own_name_signatures(conn: &mut AnyConnection, org_id: &str) -> Result<Vec<OwnSignature>, Problem> {
    let rows: Vec<SignedRow> = sqlx::query_as(
        "SELECT s.convention_id, p.signatory, COALESCE(u.display_name, s.user_email) AS user_name, s.at \
         FROM convention_steps s JOIN convention_parties p ON p.convention_id = s.convention_id \
         AND p.party_key = s.step_key AND p.org_id = s.org_id LEFT JOIN users u ON u.id = s.user_id \
         WHERE s.org_id = $1 AND s.kind = 'signature' AND s.voided_at IS NULL AND s.delegation IS NULL \
         AND p.signatory IS NOT NULL",
    )
    .bind(org_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let named = signatories::from_column(row.signatory.as_deref())?;
            let own_name = named.delegation.as_deref().is_none_or(is_blank);
            let by_them = own_name && is_representative(row.user_name.as_deref()?, &named);
            let day = today_in_france(parse_timestamp(&row.at)?);
            by_them.then(|| OwnSignature { name: named.name.trim().to_string(), convention_id: row.convention_id, day })
        })
        .collect())
}

/// A délégation de signature ends with the office of whom gave it. Signing for `party` by
/// `delegation` in place of the representative the document names in their own name, the act
/// must not be dated before the day another person last signed for the organisation in their
/// own name ([`own_name_signatures`]; the same day passes: both may be true that day): else it
/// was given by them, and is refused (422 on `delegation.date`), naming the convention to
/// `actor` if they read it and saying how to correct it if it names that person by mistake. A
/// document naming a délégataire (its signatory's own délégation) leaves the act as given.
pub async fn require_given_by_current(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    actor: &Actor,
    party: &Party,
    delegation: &Delegation,
) -> Result<(), Problem> {
    let Some(named) = party.signatory.as_ref() else { return Ok(()) };
    let Ok(act_day) = NaiveDate::parse_from_str(&delegation.date, "%Y-%m-%d") else { return Ok(()) };
    if is_blank(&named.name) || !named.delegation.as_deref().is_none_or(is_blank) {
        return Ok(());
    }
    let current = name_words(&named.name);
    let previous = own_name_signatures(conn, &party.org.id)
        .await?
        .into_iter()
        .filter(|s| name_words(&s.name) != current && s.day > act_day)
        .max_by_key(|s| s.day);
    let Some(previous) = previous else { return Ok(()) };
    let signed = super::read_convention(conn, models, &previous.convention_id, false).await?;
    let seen = signed.as_ref().and_then(|c| c.reference_for(actor).map(|r| (r, c.status)));
    Err(Problem::invalid_field("delegation.date", ended_delegation(party, delegation, &previous, seen)))
}

/// Why a délégation given before `previous` signed is refused, and how to correct a convention
/// naming them by mistake: `seen`, the reference and state of the convention they signed, when
/// the caller reads it. In signature, it is modified (its signatures are voided) or an
/// administrator withdraws that one signature (`workflow::withdraw_signature`); signed by every
/// party, its signatures stand: an avenant corrects it, and the délégation is given again. To
/// one who does not read it, what an administrator can do, without its state.
fn ended_delegation(
    party: &Party,
    delegation: &Delegation,
    previous: &OwnSignature,
    seen: Option<(&str, Status)>,
) -> String {
    let named = party.signatory.as_ref().map(named_with_quality).unwrap_or_default();
    let current = party.signatory.as_ref().map_or("", |s| s.name.trim());
    let signature = format!("la seule signature de {}", previous.name);
    let (which, again, fix, otherwise) = match seen {
        Some((reference, Status::InSignature)) => (
            format!("la convention {reference}"),
            reference.to_string(),
            format!(
                "faites-la modifier tant qu'elle est en signature (ses signatures sont alors annulées), ou demandez \
                 à un administrateur de la plateforme d'en retirer {signature}, motif à l'appui"
            ),
            "sinon",
        ),
        Some((reference, _)) => (
            format!("la convention {reference}"),
            reference.to_string(),
            "elle ne se corrige plus que par avenant : signée par toutes ses parties, ses signatures ne se retirent \
             plus"
                .to_string(),
            "dans les deux cas",
        ),
        None => (
            "une convention".to_string(),
            "cette convention".to_string(),
            format!(
                "un administrateur de la plateforme peut en retirer {signature} tant qu'elle est en signature : \
                 signalez-le-lui"
            ),
            "sinon",
        ),
    };
    format!(
        "une délégation de signature prend fin avec les fonctions de qui l'a donnée : l'acte de délégation ({}) est \
         antérieur au {}, jour où {} a signé en son nom propre {which}, comme la personne qui représentait {} ; la \
         convention désigne désormais {named}. Si {again} nomme {} par erreur, {fix} ; {otherwise}, faites établir \
         une nouvelle délégation par {current} et indiquez-la",
        delegation.act_text(),
        french_date(&previous.day.to_string()),
        previous.name,
        naming::of_org(party.org.kind, &party.org.name).article,
        previous.name,
    )
}

/// « M. Jean Dupont, maire », or the name alone without a quality.
fn named_with_quality(named: &Signatory) -> String {
    match is_blank(&named.quality) {
        true => named.name.trim().to_string(),
        false => format!("{}, {}", named.name.trim(), named.quality.trim()),
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
    fn a_delegator_sent_is_accepted_only_naming_the_representative_named() {
        let failed = |sent: Option<&str>, named: Option<&str>| {
            let mut checks = Checks::default();
            check_delegator(sent, named, &mut checks);
            checks.finish().err().map(|p| p.errors[0].field.clone())
        };
        assert_eq!(failed(None, Some("M. Jean Dupont")), None);
        assert_eq!(failed(Some(" "), None), None);
        assert_eq!(failed(Some("DUPONT Jean"), Some("M. Jean Dupont")), None, "the same person");
        let refused = Some("delegation.delegator".to_string());
        assert_eq!(failed(Some("Mme Hélène Roy"), Some("M. Jean Dupont")), refused);
        assert_eq!(failed(Some("Mme Hélène Roy"), None), refused, "no representative named");
    }

    #[test]
    fn a_delegation_is_checked_field_by_field() {
        let today = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
        let given = Delegation {
            quality: " adjoint au maire ".into(),
            act: ActKind::Arrete,
            number: "2026-114".into(),
            date: "2026-03-03".into(),
            delegator: None,
        };
        let checked = given.clone().checked(today, None).unwrap();
        assert_eq!(checked.quality, "adjoint au maire");
        assert_eq!(checked.act_text(), "arrêté n° 2026-114 du 3 mars 2026");
        let future = Delegation { date: "2026-09-02".into(), ..given.clone() };
        let problem = future.checked(today, None).unwrap_err();
        assert_eq!(problem.errors[0].field, "delegation.date", "{problem:?}");
        let blank = Delegation { quality: " ".into(), number: "a\nb".into(), ..given };
        let fields: Vec<String> = blank.checked(today, None).unwrap_err().errors.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["delegation.quality", "delegation.number"]);
    }
}
