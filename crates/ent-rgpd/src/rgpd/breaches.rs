//! The log of personal-data breaches of a controller (Art. 33(5)): facts,
//! categories and approximate numbers of people and records, consequences,
//! measures, the CNIL notification decision and the information of the people.
//! A breach known for more than 72 h without a CNIL decision carries a warning.
//! A processor's breach is notified to the controllers it names (Art. 33(2), `reports`): its
//! entry has their 48 hours instead, and each controller an entry of its own in its log.
//! Which of the two an entry is, is stored when it is written ([`ReportedAs`], migration 0079)
//! and read back by every deadline, warning, list and export.

mod reports;

pub use reports::{processor_for, NotifiedController, ReportedBy, CONTROLLER_DELAY_HOURS};

use crate::rgpd::{log_entries, log_entry, new_log_entry, Log, RgpdState, BREACH_KIND};
use chrono::{DateTime, Duration, Utc};
use ent_kernel::clock::french_moment;
use ent_kernel::error::{Checks, Problem};
use ent_kernel::store::sql::AnyQuery;
use ent_kernel::store::update_versioned;
use ent_kernel::store::{parse_timestamp, timestamp, JsonText, Tx};
use ent_kernel::text_enum;
use ent_kernel::validate;
use ent_kernel::validate::is_blank;
use ent_platform::audit::{self, Target};
use ent_platform::identity::Actor;
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The CNIL must be notified within 72 hours of awareness (Art. 33(1)).
pub const CNIL_DELAY_HOURS: i64 = 72;

/// The RGPD's entry into application (art. 99), 25 May 2018 at midnight in Paris: the breach
/// log (art. 33(5)) starts then.
const RGPD_APPLICABLE: chrono::DateTime<chrono::Utc> =
    chrono::DateTime::from_timestamp(1_527_199_200, 0).expect("2018-05-24T22:00:00Z");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CnilDecision {
    /// Not decided yet.
    Pending,
    Notified,
    /// Unlikely to result in a risk: recorded with the reason.
    NotRequired,
}

text_enum!(pub CnilDecision { Pending = "pending", Notified = "notified", NotRequired = "not_required" });

/// Whose breach an entry records (`rgpd_breaches.reported_as`), decided when it is written: a
/// processor's, notified to the controllers it names (Art. 33(2)), or a breach of the
/// organisation's own processing (Art. 33(1)), a controller's entry a processor notified
/// included. Entries recorded before it was stored read as the links between entries said then
/// (migration 0079): those of processors that could not yet name their controllers are the
/// organisation's own until it names one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportedAs {
    /// Its own processing: the CNIL's 72 hours and the people are the organisation's.
    #[default]
    Controller,
    /// A processor's: its controllers' 48 hours; the CNIL and the people are theirs.
    Processor,
}

text_enum!(pub ReportedAs { Controller = "controller", Processor = "processor" });

impl ReportedAs {
    /// What an entry whose input is `input` is, as the write that records it decides: a
    /// processor's when it names controllers, once and for good (a notification made is never
    /// taken back), else what it was (`stored`; a new entry its organisation's own).
    fn of(input: &BreachInput, stored: Option<ReportedAs>) -> ReportedAs {
        match input.notifies_controllers() {
            true => ReportedAs::Processor,
            false => stored.unwrap_or_default(),
        }
    }
}

impl CnilDecision {
    fn label(self) -> &'static str {
        match self {
            CnilDecision::Pending => "décision en attente",
            CnilDecision::Notified => "notifiée",
            CnilDecision::NotRequired => "non requise",
        }
    }
}

/// The risk the breach presents to the people's rights and freedoms (Art. 33(1), 34(1)):
/// it decides whether the CNIL is notified and whether the people are told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Not assessed yet.
    #[default]
    Unassessed,
    /// Unlikely to result in a risk: no notification required.
    None,
    /// A risk: the CNIL is notified.
    Risk,
    /// A high risk: the CNIL is notified and the people are told (Art. 34).
    High,
}

text_enum!(pub RiskLevel { Unassessed = "unassessed", None = "none", Risk = "risk", High = "high" });

/// Why the people concerned by a high-risk breach are not told one by one (Art. 34(3)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeopleException {
    /// None: they are told (Art. 34(1)).
    #[default]
    None,
    /// (a) The data were unintelligible to whoever reached them (encryption).
    Encrypted,
    /// (b) Measures taken since make the high risk no longer likely to materialise.
    RiskRemoved,
    /// (c) Telling each would take disproportionate effort: a public communication instead.
    PublicCommunication,
}

text_enum!(pub PeopleException {
    None = "none",
    Encrypted = "encrypted",
    RiskRemoved = "risk_removed",
    PublicCommunication = "public_communication",
});

impl PeopleException {
    pub fn label(self) -> &'static str {
        match self {
            PeopleException::None => "aucune",
            PeopleException::Encrypted => "article 34.3.a : données incompréhensibles (chiffrement)",
            PeopleException::RiskRemoved => "article 34.3.b : mesures rendant le risque élevé improbable",
            PeopleException::PublicCommunication => "article 34.3.c : communication publique",
        }
    }

    /// Whether it dispenses with telling the people (a public communication tells them too).
    fn dispenses(self) -> bool {
        matches!(self, PeopleException::Encrypted | PeopleException::RiskRemoved)
    }
}

impl RiskLevel {
    pub fn label(self) -> &'static str {
        match self {
            RiskLevel::Unassessed => "non évalué",
            RiskLevel::None => "risque improbable",
            RiskLevel::Risk => "risque",
            RiskLevel::High => "risque élevé",
        }
    }
}

/// What a DPO records about a breach (creation and full replacement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreachInput {
    pub title: String,
    /// What happened.
    pub facts: String,
    /// RFC 3339, when known.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// RFC 3339: when the controller became aware of it (the 72 h start).
    pub aware_at: String,
    #[schemars(length(min = 1, max = CATEGORIES_MAX))]
    pub data_categories: Vec<String>,
    /// Categories of people concerned (Art. 33(3)(a)): pupils, parents, staff… Like the
    /// other fields added with them (`risk`, `cnil_reference`, `people_exception`,
    /// `people_reason`), when absent from an update the stored value stays.
    #[serde(default)]
    #[schemars(length(max = CATEGORIES_MAX))]
    pub people_categories: Option<Vec<String>>,
    /// Approximate number of people concerned.
    #[schemars(range(min = 0))]
    pub people_approx: i64,
    /// Approximate number of records concerned.
    #[schemars(range(min = 0))]
    pub records_approx: i64,
    pub consequences: String,
    pub measures: String,
    /// The risk assessed, which the decisions below follow from (`unassessed` when never given).
    #[serde(default)]
    pub risk: Option<RiskLevel>,
    #[serde(default = "pending")]
    pub cnil_decision: CnilDecision,
    #[serde(default)]
    pub cnil_notified_at: Option<String>,
    /// The number the CNIL's notification service gave, once notified.
    #[serde(default)]
    pub cnil_reference: Option<String>,
    /// Why no notification is required, or why it was late.
    #[serde(default)]
    pub cnil_reason: String,
    /// When the people concerned were informed (Art. 34), if they were.
    #[serde(default)]
    pub people_notified_at: Option<String>,
    /// The Art. 34(3) exception under which the people of a high-risk breach are not told one by one.
    #[serde(default)]
    pub people_exception: Option<PeopleException>,
    /// What justifies that exception (for (c): the public communication made, where).
    #[serde(default)]
    pub people_reason: Option<String>,
    /// Where the organisation is processor of the ENT concerned (Art. 28; its register's
    /// Art. 30(2) entries): the controllers it notifies the breach to (Art. 33(2)), by id, code or
    /// `kind:code`, among those it processes data for ([`processor_for`]); none for a breach of
    /// its own processing. Each gets an entry in its own log, whose CNIL decision is its own; the
    /// CNIL and the people are then theirs to tell, not the processor's. Read back as ids. Absent
    /// from an update: those notified stay (a notification is never taken back; one added is
    /// made then).
    #[serde(default)]
    pub controllers: Option<Vec<String>>,
}

impl BreachInput {
    pub fn people_categories(&self) -> &[String] {
        self.people_categories.as_deref().unwrap_or_default()
    }

    pub fn risk(&self) -> RiskLevel {
        self.risk.unwrap_or_default()
    }

    pub fn cnil_reference(&self) -> &str {
        self.cnil_reference.as_deref().unwrap_or_default()
    }

    pub fn people_exception(&self) -> PeopleException {
        self.people_exception.unwrap_or_default()
    }

    pub fn people_reason(&self) -> &str {
        self.people_reason.as_deref().unwrap_or_default()
    }

    pub fn controllers(&self) -> &[String] {
        self.controllers.as_deref().unwrap_or_default()
    }

    /// Whether it is a processor's breach, notified to controllers (Art. 33(2)).
    pub fn notifies_controllers(&self) -> bool {
        self.controllers().iter().any(|c| !c.trim().is_empty())
    }

    /// The fields added after the first release that an update leaves out, as `stored` has them:
    /// a client written before them does not erase them by sending back what it knows.
    fn keep_unsent(&mut self, stored: &BreachInput) {
        self.people_categories.get_or_insert_with(|| stored.people_categories().to_vec());
        self.risk.get_or_insert(stored.risk());
        self.cnil_reference.get_or_insert_with(|| stored.cnil_reference().to_string());
        self.people_exception.get_or_insert(stored.people_exception());
        self.people_reason.get_or_insert_with(|| stored.people_reason().to_string());
        self.controllers.get_or_insert_with(|| stored.controllers().to_vec());
    }

    /// Whether the people of a high-risk breach of the organisation's own processing are still
    /// to be told: neither told, nor dispensed by Art. 34(3)(a) or (b) ([`Breach::people_untold`]).
    fn people_to_tell(&self) -> bool {
        self.risk() == RiskLevel::High && self.people_notified_at.is_none() && !self.people_exception().dispenses()
    }
}

fn pending() -> CnilDecision {
    CnilDecision::Pending
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Breach {
    pub id: String,
    pub reference: String,
    pub org_id: String,
    #[serde(flatten)]
    pub input: BreachInput,
    /// Whose breach it records, as stored when it was written ([`ReportedAs`]): `processor` for a
    /// processor's breach notified to its controllers, `controller` otherwise.
    pub reported_as: ReportedAs,
    /// `aware_at` + 72 h; empty on a processor's breach notified to its controllers, which
    /// are the ones to notify the CNIL (`controller_deadline`).
    pub cnil_deadline: String,
    /// On a processor's breach: `aware_at` + 48 h, by when it notifies its controllers (Art. 33(2):
    /// the conventions' 48 hours, so that they may notify the CNIL within their 72).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_deadline: Option<String>,
    /// On a processor's breach: the controllers it was notified to, and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<NotifiedController>,
    /// On a controller's breach a processor notified: the processor, its reference, when (the
    /// controller's `aware_at`, from which its 72 hours run, is that notification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<ReportedBy>,
    /// Set when 72 h passed since awareness without a CNIL decision, or when a high risk
    /// has neither its people told nor the exception that dispenses with it; on a processor's
    /// breach, when its controllers were notified more than 48 h after awareness.
    pub warning: Option<String>,
    pub version: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Breach {
    /// Whether the people of a high-risk breach are still to be told by the organisation:
    /// neither told, nor dispensed by Art. 34(3)(a) or (b); a processor's breach never (its
    /// controllers tell them).
    pub fn people_untold(&self) -> bool {
        self.reported_as == ReportedAs::Controller && self.input.people_to_tell()
    }

    /// Whether it is a processor's breach notified to its controllers (Art. 33(2)).
    pub fn is_processor_s(&self) -> bool {
        self.reported_as == ReportedAs::Processor
    }
}

fn parse_time(checks: &mut Checks, field: &str, value: &str) -> Option<DateTime<Utc>> {
    if is_blank(value) {
        checks.fail(field, "date et heure obligatoires");
        return None;
    }
    checks.check(
        field,
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("date et heure « {value} » invalides : attendu RFC 3339, ex. 2026-09-01T08:00:00Z")),
    )
}

/// The entries of `rgpd_breaches` whose CNIL decision and people to tell are the organisation's
/// own, in SQL: all but a processor's breaches notified to their controllers (Art. 33(2)), as
/// stored ([`ReportedAs`]).
pub const OWN_DECISIONS: &str = "reported_as = 'controller'";

/// Longest one-line text of an entry (title, data category), and longest text (facts…).
pub(crate) const LINE_MAX: usize = 200;
pub(crate) const TEXT_MAX: usize = 5000;
/// Most categories of data, and of people, an entry lists (the CNIL's notification form asks
/// for a dozen at most; each is copied into the log and the e-mail of every controller notified).
pub const CATEGORIES_MAX: usize = 50;
/// Most controllers a processor's entry names (those it processes for, each once: a région's
/// lycées are a few hundred).
pub const CONTROLLERS_MAX: usize = 1000;

/// Checks `input`, written over `stored` when it updates an entry.
fn validate(input: &BreachInput, stored: Option<&BreachInput>, now: DateTime<Utc>) -> Result<(), Problem> {
    let mut checks = Checks::default();
    for (field, value) in [
        ("title", &input.title),
        ("facts", &input.facts),
        ("consequences", &input.consequences),
        ("measures", &input.measures),
    ] {
        if is_blank(value) {
            checks.fail(field, "champ obligatoire");
        }
    }
    checks.line("title", &input.title);
    super::at_most(&mut checks, "title", &input.title, LINE_MAX);
    for (field, value) in [
        ("facts", &input.facts),
        ("consequences", &input.consequences),
        ("measures", &input.measures),
        ("cnil_reason", &input.cnil_reason),
    ] {
        super::at_most(&mut checks, field, value, TEXT_MAX);
    }
    super::at_most(&mut checks, "people_reason", input.people_reason(), TEXT_MAX);
    check_lines(&mut checks, "data_categories", &input.data_categories);
    check_lines(&mut checks, "people_categories", input.people_categories());
    for (field, count, max, what) in [
        ("data_categories", input.data_categories.len(), CATEGORIES_MAX, "catégories"),
        ("people_categories", input.people_categories().len(), CATEGORIES_MAX, "catégories"),
        ("controllers", input.controllers().len(), CONTROLLERS_MAX, "responsables de traitement"),
    ] {
        super::at_most_items(&mut checks, field, count, max, what);
    }
    check_lines(&mut checks, "cnil_reference", &[input.cnil_reference().to_string()]);
    if input.data_categories.iter().all(|c| is_blank(c)) {
        checks.fail("data_categories", "au moins une catégorie de données");
    }
    if input.people_approx < 0 {
        checks.fail("people_approx", "nombre positif ou nul attendu");
    }
    if input.records_approx < 0 {
        checks.fail("records_approx", "nombre positif ou nul attendu");
    }
    let aware = parse_time(&mut checks, "aware_at", &input.aware_at);
    if aware.is_some_and(|a| a > now + Duration::minutes(5)) {
        checks.fail("aware_at", "la date de prise de connaissance est dans le futur");
    }
    if aware.is_some_and(|a| a < RGPD_APPLICABLE) {
        checks.fail(
            "aware_at",
            "la date de prise de connaissance précède le 25 mai 2018, date d'entrée en application du RGPD",
        );
    }
    let mut moment =
        |field: &str, value: &Option<String>| value.as_deref().and_then(|v| parse_time(&mut checks, field, v));
    let occurred = moment("occurred_at", &input.occurred_at);
    let notified = moment("cnil_notified_at", &input.cnil_notified_at);
    let informed = moment("people_notified_at", &input.people_notified_at);
    for (field, at) in [("cnil_notified_at", notified), ("people_notified_at", informed)] {
        if at.is_some_and(|t| t > now + Duration::minutes(5)) {
            checks.fail(field, "cette date est dans le futur : enregistrez-la une fois l'acte accompli");
        }
    }
    // The dates follow each other: a breach occurs, then is known, then is notified and told.
    if let Some(a) = aware {
        if occurred.is_some_and(|o| o > a) {
            checks.fail("occurred_at", "la violation ne peut survenir après sa prise de connaissance");
        }
        if notified.is_some_and(|n| n < a) {
            checks.fail("cnil_notified_at", "la notification à la CNIL précède la prise de connaissance");
        }
        if informed.is_some_and(|i| i < a) {
            checks.fail("people_notified_at", "l'information des personnes précède la prise de connaissance");
        }
    }
    let late = matches!((notified, aware), (Some(n), Some(a)) if n > a + Duration::hours(CNIL_DELAY_HOURS));
    if input.notifies_controllers() {
        check_processor_entry(&mut checks, input);
    } else {
        check_decision(&mut checks, input, stored, late);
    }
    checks.finish()
}

/// A processor's breach leaves the CNIL and the people to its controllers (Art. 33(2), 34):
/// it records neither a CNIL decision nor the information of the people.
fn check_processor_entry(checks: &mut Checks, input: &BreachInput) {
    let cnil = "la notification à la CNIL revient au responsable de traitement, à qui le sous-traitant notifie la \
                violation (article 33.2 du RGPD)";
    let people = "l'information des personnes concernées revient au responsable de traitement (article 34 du RGPD)";
    let fields = [
        ("cnil_decision", input.cnil_decision != CnilDecision::Pending, cnil),
        ("cnil_notified_at", input.cnil_notified_at.is_some(), cnil),
        ("cnil_reference", !input.cnil_reference().trim().is_empty(), cnil),
        ("people_notified_at", input.people_notified_at.is_some(), people),
        ("people_exception", input.people_exception() != PeopleException::None, people),
    ];
    for (field, set, why) in fields {
        if set {
            checks.fail(field, why);
        }
    }
}

/// The CNIL decision (Art. 33(1)) and the information of the people (Art. 34) of a breach of
/// the organisation's own processing; `late`: notified more than 72 hours after awareness.
fn check_decision(checks: &mut Checks, input: &BreachInput, stored: Option<&BreachInput>, late: bool) {
    match input.cnil_decision {
        CnilDecision::Notified if input.cnil_notified_at.is_none() => {
            checks.fail("cnil_notified_at", "la date de notification à la CNIL est requise")
        }
        // Art. 33(1): a notification made after 72 hours comes with the reasons for the delay.
        CnilDecision::Notified if late && is_blank(&input.cnil_reason) => checks.fail(
            "cnil_reason",
            "notifiée plus de 72 heures après la prise de connaissance : indiquez les motifs du retard (article 33.1 du RGPD)",
        ),
        CnilDecision::NotRequired if is_blank(&input.cnil_reason) => {
            checks.fail("cnil_reason", "indiquez pourquoi la notification n'est pas requise")
        }
        // Art. 33(1): only a breach unlikely to result in a risk goes without notification.
        CnilDecision::NotRequired if matches!(input.risk(), RiskLevel::Risk | RiskLevel::High) => checks.fail(
            "cnil_decision",
            "une violation qui présente un risque pour les personnes est notifiée à la CNIL (article 33.1 du RGPD)",
        ),
        _ => {}
    }
    // An entry recorded « non requise » before the risk was asked stays editable as it is, by a
    // client that does not know the field; a new such decision needs the risk assessed.
    let grandfathered =
        stored.is_some_and(|s| s.cnil_decision == CnilDecision::NotRequired && s.risk() == RiskLevel::Unassessed);
    if input.cnil_decision == CnilDecision::NotRequired && input.risk() == RiskLevel::Unassessed && !grandfathered {
        checks.fail(
            "risk",
            "évaluez le risque : seule une violation au risque improbable se passe de notification (article 33.1 du RGPD)",
        );
    }
    if !input.cnil_reference().trim().is_empty() && input.cnil_decision != CnilDecision::Notified {
        checks.fail("cnil_reference", "une référence de notification CNIL suppose une violation notifiée");
    }
    check_people_exception(checks, input);
}

/// Art. 34(3): an exception only for a high risk, each with what justifies it; a public
/// communication (c) with its date.
fn check_people_exception(checks: &mut Checks, input: &BreachInput) {
    let exception = input.people_exception();
    if exception == PeopleException::None {
        return;
    }
    if input.risk() != RiskLevel::High {
        checks
            .fail("people_exception", "une exception de l'article 34.3 ne vaut que pour une violation à risque élevé");
    }
    if input.people_reason().trim().is_empty() {
        let asked = match exception {
            PeopleException::PublicCommunication => "indiquez la communication publique faite (moyen, support)",
            _ => "justifiez l'exception retenue",
        };
        checks.fail("people_reason", asked);
    }
    if exception == PeopleException::PublicCommunication && input.people_notified_at.is_none() {
        checks.fail("people_notified_at", "indiquez la date de la communication publique");
    }
}

/// Each value of a list of one-line texts (categories, a reference) is one line, not too long.
fn check_lines(checks: &mut Checks, field: &str, values: &[String]) {
    if let Some(value) = values.iter().find(|c| c.chars().count() > LINE_MAX) {
        super::at_most(checks, field, value, LINE_MAX);
    }
    if let Some(value) = values.iter().find(|c| validate::line(c).is_err()) {
        checks.line(field, value);
    }
}

const TABLE: &str = Log::Breaches.table();
const COLUMNS: &str = "id, reference, org_id, title, facts, occurred_at, aware_at, data_categories, people_approx, \
    records_approx, consequences, measures, cnil_decision, cnil_notified_at, cnil_reason, people_notified_at, \
    people_categories, risk, cnil_reference, people_exception, people_reason, reported_as, version, created_by, \
    created_at, updated_at";

/// A row of `rgpd_breaches` as stored ([`COLUMNS`]).
#[derive(sqlx::FromRow)]
struct BreachRow {
    id: String,
    reference: String,
    org_id: String,
    title: String,
    facts: String,
    occurred_at: Option<String>,
    aware_at: String,
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    data_categories: Vec<String>,
    people_approx: i64,
    records_approx: i64,
    consequences: String,
    measures: String,
    #[sqlx(try_from = "String")]
    cnil_decision: CnilDecision,
    cnil_notified_at: Option<String>,
    cnil_reason: String,
    people_notified_at: Option<String>,
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    people_categories: Vec<String>,
    #[sqlx(try_from = "String")]
    risk: RiskLevel,
    cnil_reference: String,
    #[sqlx(try_from = "String")]
    people_exception: PeopleException,
    people_reason: String,
    #[sqlx(try_from = "String")]
    reported_as: ReportedAs,
    version: i64,
    created_by: String,
    created_at: String,
    updated_at: String,
}

fn from_row(r: BreachRow, links: &mut reports::Links, now: DateTime<Utc>) -> Breach {
    let notified = links.notified.remove(&r.id).unwrap_or_default();
    let input = BreachInput {
        title: r.title,
        facts: r.facts,
        occurred_at: r.occurred_at,
        aware_at: r.aware_at,
        data_categories: r.data_categories,
        people_categories: Some(r.people_categories),
        people_approx: r.people_approx,
        records_approx: r.records_approx,
        consequences: r.consequences,
        measures: r.measures,
        risk: Some(r.risk),
        cnil_decision: r.cnil_decision,
        cnil_notified_at: r.cnil_notified_at,
        cnil_reference: Some(r.cnil_reference),
        cnil_reason: r.cnil_reason,
        people_notified_at: r.people_notified_at,
        people_exception: Some(r.people_exception),
        people_reason: Some(r.people_reason),
        controllers: Some(notified.iter().map(|c| c.id.clone()).collect()),
    };
    let aware = parse_timestamp(&input.aware_at);
    let (cnil_deadline, controller_deadline, warnings) = match r.reported_as {
        ReportedAs::Controller => {
            let deadline = aware.map(|a| a + Duration::hours(CNIL_DELAY_HOURS));
            (deadline.map(timestamp).unwrap_or_default(), None, own_warnings(&input, deadline, now))
        }
        ReportedAs::Processor => {
            let deadline = aware.map(|a| a + Duration::hours(CONTROLLER_DELAY_HOURS));
            (String::new(), deadline.map(timestamp), notified_late(&input, deadline, &notified).into_iter().collect())
        }
    };
    let warning = (!warnings.is_empty()).then(|| warnings.join(" ; "));
    Breach {
        reported_by: links.reported.remove(&r.id),
        id: r.id,
        reference: r.reference,
        org_id: r.org_id,
        reported_as: r.reported_as,
        cnil_deadline,
        controller_deadline,
        notified,
        warning,
        input,
        version: r.version,
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// The warnings of a breach of the organisation's own processing: no CNIL decision past its
/// `deadline`, a high risk whose people are neither told nor dispensed.
fn own_warnings(input: &BreachInput, deadline: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Vec<String> {
    let late = match deadline {
        Some(d) if input.cnil_decision == CnilDecision::Pending && now > d => Some(format!(
            "plus de 72 h depuis la prise de connaissance (le {}, heure de Paris) sans décision de notification à la CNIL",
            french_moment(&input.aware_at)
        )),
        _ => None,
    };
    let untold = input.people_to_tell().then(|| {
        "risque élevé : informez les personnes concernées dans les meilleurs délais (article 34), ou \
         indiquez l'exception de l'article 34.3 qui s'applique"
            .to_string()
    });
    late.into_iter().chain(untold).collect()
}

/// The warning of a processor's breach first notified to its controllers after its 48 hours.
fn notified_late(
    input: &BreachInput,
    deadline: Option<DateTime<Utc>>,
    notified: &[NotifiedController],
) -> Option<String> {
    let first = notified.iter().filter_map(|c| parse_timestamp(&c.notified_at)).min()?;
    (first > deadline?).then(|| {
        format!(
            "notifiée au responsable de traitement le {}, plus de 48 h après la prise de connaissance (le {}, heure \
             de Paris ; article 33.2 du RGPD)",
            french_moment(&timestamp(first)),
            french_moment(&input.aware_at)
        )
    })
}

/// Breaches of `org`, most recent awareness first: by the instant, whatever UTC offset each
/// `aware_at` was typed with (`…T23:30:00+01:00` is after `…T22:00:00Z`, not before).
pub async fn list(state: &RgpdState, org: &Org) -> Result<Vec<Breach>, Problem> {
    let now = state.clock.now();
    let rows: Vec<BreachRow> = log_entries(&state.store, TABLE, COLUMNS, org, "aware_at DESC, id DESC").await?;
    let mut links = reports::links(&state.store, &org.id).await?;
    let mut breaches: Vec<Breach> = rows.into_iter().map(|r| from_row(r, &mut links, now)).collect();
    by_awareness(&mut breaches);
    Ok(breaches)
}

/// Most recent awareness first, by the instant; the latest recorded first among equals.
fn by_awareness(breaches: &mut [Breach]) {
    breaches.sort_by(|a, b| {
        parse_timestamp(&b.input.aware_at).cmp(&parse_timestamp(&a.input.aware_at)).then_with(|| b.id.cmp(&a.id))
    });
}

pub async fn get(state: &RgpdState, org: &Org, id: &str) -> Result<Breach, Problem> {
    let row: Option<BreachRow> = log_entry(&state.store, TABLE, COLUMNS, org, id).await?;
    let Some(row) = row else { return Err(Problem::not_found(format!("aucune violation « {id} »"))) };
    let mut links = reports::links(&state.store, &org.id).await?;
    Ok(from_row(row, &mut links, state.clock.now()))
}

/// Audits `b` as written by `action`; an update with each field it changed, before and after
/// (Art. 5(2): the log shows how a decision came about).
async fn audit_change(
    tx: &mut Tx,
    state: &RgpdState,
    actor: &Actor,
    action: &str,
    b: &Breach,
    before: Option<&BreachInput>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let target = Target::new(BREACH_KIND, &b.id, Some(&b.org_id));
    let i = &b.input;
    let mut summary = serde_json::json!({
        "reference": b.reference, "risk": i.risk().as_str(), "cnil_decision": i.cnil_decision.as_str()
    });
    if b.is_processor_s() {
        summary["controllers"] = serde_json::json!(i.controllers());
    }
    if let Some(before) = before {
        summary["changes"] = audit::changes(&serde_json::json!(before), &serde_json::json!(i));
    }
    audit::record(tx, state.store.backend(), actor, action, &target, summary, now).await
}

/// The checks [`create`] runs on `input`, writing nothing: a form that could not read some
/// fields says their errors with these, in one round.
pub fn check_new(state: &RgpdState, input: &BreachInput) -> Result<(), Problem> {
    validate(input, None, state.clock.now())
}

/// Records `input` in `org`'s log. A processor's breach names the controllers it is notified
/// to, among those `org` processes data for ([`processor_for`], derived only then); each is
/// notified in the same transaction ([`reports::notify`]).
pub async fn create(state: &RgpdState, actor: &Actor, org: &Org, mut input: BreachInput) -> Result<Breach, Problem> {
    let now = state.clock.now();
    let mut checks = Checks::default();
    checks.collect(validate(&input, None, now))?;
    let controllers = match input.notifies_controllers() {
        true => reports::chosen(&mut checks, org, &processor_for(state, org).await?, input.controllers()),
        false => Vec::new(),
    };
    checks.finish()?;
    input.controllers = Some(controllers.iter().map(|c| c.id.clone()).collect());
    let governing = reports::governing(state, controllers.iter().map(|c| c.id.clone()).collect()).await?;
    let at = timestamp(now);
    let mut tx = state.store.begin_write().await?;
    // Numbered first, under the organisation's row lock: a second send waits for the first one
    // and then finds it (a duplicate rolls the number back with the rest).
    let (id, reference) = new_log_entry(&mut tx, Log::Breaches, &org.id, now).await?;
    // The same title, facts and moment of awareness are the same breach (a form sent twice,
    // or once through the console in UTC and once through the API with an offset): the one
    // recorded answers, nothing is written, audited or notified again.
    let candidates: Vec<(String, String)> =
        sqlx::query_as("SELECT id, aware_at FROM rgpd_breaches WHERE org_id = $1 AND title = $2 AND facts = $3")
            .bind(&org.id)
            .bind(&input.title)
            .bind(&input.facts)
            .fetch_all(&mut *tx)
            .await?;
    let aware = parse_timestamp(&input.aware_at);
    let same = candidates.into_iter().find(|(_, at)| parse_timestamp(at) == aware).map(|(id, _)| id);
    if let Some(recorded) = same {
        drop(tx);
        return get(state, org, &recorded).await;
    }
    let reported_as = ReportedAs::of(&input, None);
    insert(&mut tx, (&id, &reference, &org.id), (&input, reported_as), (&actor.name, &at), None).await?;
    let breach = Breach {
        id,
        reference,
        org_id: org.id.clone(),
        reported_as,
        cnil_deadline: String::new(),
        controller_deadline: None,
        notified: Vec::new(),
        reported_by: None,
        warning: None,
        input,
        version: 1,
        created_by: actor.name.clone(),
        created_at: at.clone(),
        updated_at: at,
    };
    audit_change(&mut tx, state, actor, "rgpd.breach.create", &breach, None, now).await?;
    reports::notify(&mut tx, state, (actor, org), &breach, (&controllers, &governing), now).await?;
    tx.commit().await?;
    get(state, org, &breach.id).await
}

/// Writes the new entry `id` (`reference`) of `org_id`'s log, whose breach it is
/// (`reported_as`), created by whom and when; a controller's entry a processor notified names
/// the processor's entry (`reported_by`), the notification made when it is written.
async fn insert(
    tx: &mut Tx,
    (id, reference, org_id): (&str, &str, &str),
    (input, reported_as): (&BreachInput, ReportedAs),
    (by, at): (&str, &str),
    reported_by: Option<&str>,
) -> Result<(), Problem> {
    let insert = sqlx::query(
        "INSERT INTO rgpd_breaches (id, reference, org_id, title, facts, occurred_at, aware_at, data_categories, \
         people_approx, records_approx, consequences, measures, cnil_decision, cnil_notified_at, cnil_reason, \
         people_notified_at, people_categories, risk, cnil_reference, people_exception, people_reason, version, \
         created_by, created_at, updated_at, reported_by, reported_at, reported_as) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 1, \
         $22, $23, $23, $24, $25, $26)",
    )
    .bind(id.to_string())
    .bind(reference.to_string())
    .bind(org_id.to_string());
    bind_input(insert, input)
        .bind(by.to_string())
        .bind(at.to_string())
        .bind(reported_by.map(str::to_string))
        .bind(reported_by.map(|_| at.to_string()))
        .bind(reported_as.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Binds the eighteen columns an input sets, from `title` to `people_reason` (the order of
/// [`COLUMNS`]).
fn bind_input<'q>(query: AnyQuery<'q>, input: &'q BreachInput) -> AnyQuery<'q> {
    query
        .bind(&input.title)
        .bind(&input.facts)
        .bind(&input.occurred_at)
        .bind(&input.aware_at)
        .bind(serde_json::to_string(&input.data_categories).expect("strings serialise"))
        .bind(input.people_approx)
        .bind(input.records_approx)
        .bind(&input.consequences)
        .bind(&input.measures)
        .bind(input.cnil_decision.as_str())
        .bind(&input.cnil_notified_at)
        .bind(&input.cnil_reason)
        .bind(&input.people_notified_at)
        .bind(serde_json::to_string(input.people_categories()).expect("strings serialise"))
        .bind(input.risk().as_str())
        .bind(input.cnil_reference().to_string())
        .bind(input.people_exception().as_str())
        .bind(input.people_reason().to_string())
}

/// Replaces the entry `id` of `org`'s log with `input` at version `expected`. A processor's
/// breach keeps the controllers it was notified to; one added is notified then, and those
/// notified before are told what it completed ([`reports::complete`]).
pub async fn update(
    state: &RgpdState,
    actor: &Actor,
    org: &Org,
    id: &str,
    mut input: BreachInput,
    expected: i64,
) -> Result<Breach, Problem> {
    let now = state.clock.now();
    let current = get(state, org, id).await?;
    input.keep_unsent(&current.input);
    let mut checks = Checks::default();
    checks.collect(validate(&input, Some(&current.input), now))?;
    let added = added_controllers(&mut checks, state, org, &current, input.controllers()).await?;
    checks.finish()?;
    let notified = current.notified.iter().map(|c| c.id.clone());
    input.controllers = Some(notified.chain(added.iter().map(|c| c.id.clone())).collect());
    let governing = reports::governing(state, input.controllers().to_vec()).await?;
    let mut tx = state.store.begin_write().await?;
    let update = sqlx::query(
        "UPDATE rgpd_breaches SET title = $1, facts = $2, occurred_at = $3, aware_at = $4, data_categories = $5, \
         people_approx = $6, records_approx = $7, consequences = $8, measures = $9, cnil_decision = $10, \
         cnil_notified_at = $11, cnil_reason = $12, people_notified_at = $13, people_categories = $14, risk = $15, \
         cnil_reference = $16, people_exception = $17, people_reason = $18, reported_as = $19, version = version + 1, \
         updated_at = $20 WHERE id = $21 AND version = $22",
    );
    let reported_as = ReportedAs::of(&input, Some(current.reported_as));
    let update = bind_input(update, &input).bind(reported_as.as_str());
    update_versioned(&mut tx, update, now, &current.id, expected, current.version).await?;
    let before = current.input.clone();
    let completed = reports::completed(&before, &input);
    let updated = Breach { input, reported_as, ..current };
    audit_change(&mut tx, state, actor, "rgpd.breach.update", &updated, Some(&before), now).await?;
    if !updated.notified.is_empty() && !completed.is_empty() {
        reports::complete(&mut tx, state, (actor, org), &updated, (&completed, &governing), now).await?;
    }
    reports::notify(&mut tx, state, (actor, org), &updated, (&added, &governing), now).await?;
    tx.commit().await?;
    get(state, org, &updated.id).await
}

/// The controllers an update of `current` notifies besides those it was: the names of `named`
/// that are not one of theirs, chosen as at creation ([`reports::chosen`]; the register derived
/// only then). Each controller notified stays named (a notification made is not taken back), and
/// a controller's entry a processor notified names none (its CNIL is its own to notify).
async fn added_controllers(
    checks: &mut Checks,
    state: &RgpdState,
    org: &Org,
    current: &Breach,
    named: &[String],
) -> Result<Vec<crate::rgpd::derive::Actor>, Problem> {
    let known = |key: &str| current.notified.iter().any(|c| c.id == key.trim());
    if current.reported_by.is_some() && named.iter().any(|k| !k.trim().is_empty()) {
        checks.fail(
            "controllers",
            "une violation notifiée par un sous-traitant est notifiée par le responsable de traitement à la CNIL, \
             non à un autre responsable de traitement",
        );
        return Ok(Vec::new());
    }
    let fresh: Vec<String> = named.iter().filter(|k| !k.trim().is_empty() && !known(k)).cloned().collect();
    let mut added = match fresh.is_empty() {
        true => Vec::new(),
        false => reports::chosen(checks, org, &processor_for(state, org).await?, &fresh),
    };
    added.retain(|a| !known(&a.id));
    for c in current.notified.iter().filter(|c| !named.iter().any(|k| k.trim() == c.id)) {
        checks.fail(
            "controllers",
            format!(
                "{} a reçu notification de cette violation le {} : une notification faite ne se retire pas",
                c.name,
                french_moment(&c.notified_at)
            ),
        );
    }
    Ok(added)
}

pub const HEADER: [&str; 18] = [
    "Référence",
    "Intitulé",
    "Faits",
    "Survenue (heure de Paris)",
    "Prise de connaissance (heure de Paris)",
    "Catégories de données",
    "Catégories de personnes",
    "Personnes (approx.)",
    "Enregistrements (approx.)",
    "Conséquences",
    "Mesures",
    "Risque pour les personnes",
    "Notification CNIL",
    "Date de notification CNIL (heure de Paris)",
    "Référence de notification CNIL",
    "Information des personnes (heure de Paris)",
    "Sous-traitance (article 33.2)",
    "Alerte",
];

pub fn rows(breaches: &[Breach]) -> Vec<Vec<String>> {
    breaches
        .iter()
        .map(|b| {
            let i = &b.input;
            let decision = match (i.cnil_decision, i.cnil_reason.is_empty()) {
                _ if b.is_processor_s() => BY_CONTROLLER.to_string(),
                (d, false) => format!("{} ({})", d.label(), i.cnil_reason),
                (d, true) => d.label().to_string(),
            };
            vec![
                b.reference.clone(),
                i.title.clone(),
                i.facts.clone(),
                i.occurred_at.as_deref().map(french_moment).unwrap_or_else(|| "inconnue".into()),
                french_moment(&i.aware_at),
                i.data_categories.join(", "),
                or_unknown(i.people_categories().join(", ")),
                i.people_approx.to_string(),
                i.records_approx.to_string(),
                i.consequences.clone(),
                i.measures.clone(),
                i.risk().label().to_string(),
                decision,
                i.cnil_notified_at.as_deref().map(french_moment).unwrap_or_default(),
                i.cnil_reference().to_string(),
                people_told(b),
                processing_for(b),
                b.warning.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

fn or_unknown(text: String) -> String {
    if text.is_empty() {
        "non renseignées".into()
    } else {
        text
    }
}

/// What a processor's breach says of the CNIL and the people: theirs to tell (Art. 33(2), 34).
const BY_CONTROLLER: &str = "par le responsable de traitement";

/// Who a processor's breach was notified to, and when; or who notified a controller's, its
/// reference, and when (Art. 33(2)); empty for a breach of the organisation's own processing.
pub fn processing_for(b: &Breach) -> String {
    if let Some(by) = &b.reported_by {
        return format!(
            "notifiée par le sous-traitant {} (sa référence {}) le {}",
            by.processor,
            by.reference,
            french_moment(&by.notified_at)
        );
    }
    let to: Vec<String> =
        b.notified.iter().map(|c| format!("{} le {}", c.name, french_moment(&c.notified_at))).collect();
    match to.is_empty() {
        true => String::new(),
        false => format!("notifiée au responsable de traitement : {}", to.join(" ; ")),
    }
}

/// When the people were told, or that they were not and why (Art. 34(3)).
fn people_told(b: &Breach) -> String {
    if b.is_processor_s() {
        return BY_CONTROLLER.to_string();
    }
    let i = &b.input;
    let exception = i.people_exception();
    let why = match (exception, i.people_reason().trim()) {
        (PeopleException::None, _) => String::new(),
        (e, "") => format!(" ({})", e.label()),
        (e, reason) => format!(" ({} : {reason})", e.label()),
    };
    match i.people_notified_at.as_deref() {
        Some(at) => format!("{}{why}", french_moment(at)),
        None => format!("non{why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).unwrap()
    }

    /// A breach known on 1 September 2026 at 06:30 UTC, its risk assessed.
    fn input(controllers: &[&str]) -> BreachInput {
        serde_json::from_value(serde_json::json!({
            "title": "Notes exposées", "facts": "Carnet de notes lisible", "aware_at": "2026-09-01T06:30:00Z",
            "data_categories": ["évaluations"], "people_approx": 600, "records_approx": 4200,
            "consequences": "atteinte à la vie privée", "measures": "droits corrigés", "risk": "high",
            "controllers": controllers,
        }))
        .unwrap()
    }

    fn row(input: &BreachInput) -> BreachRow {
        BreachRow {
            reported_as: ReportedAs::Controller,
            id: "b1".into(),
            reference: "VIOL-2026-000001".into(),
            org_id: "departement-94".into(),
            title: input.title.clone(),
            facts: input.facts.clone(),
            occurred_at: None,
            aware_at: input.aware_at.clone(),
            data_categories: input.data_categories.clone(),
            people_approx: input.people_approx,
            records_approx: input.records_approx,
            consequences: input.consequences.clone(),
            measures: input.measures.clone(),
            cnil_decision: CnilDecision::Pending,
            cnil_notified_at: None,
            cnil_reason: String::new(),
            people_notified_at: None,
            people_categories: Vec::new(),
            risk: input.risk(),
            cnil_reference: String::new(),
            people_exception: PeopleException::None,
            people_reason: String::new(),
            version: 1,
            created_by: "dpd@valdemarne.fr".into(),
            created_at: "2026-09-01T08:00:00Z".into(),
            updated_at: "2026-09-01T08:00:00Z".into(),
        }
    }

    /// A processor's entry, as stored.
    fn processor_row(input: &BreachInput) -> BreachRow {
        BreachRow { reported_as: ReportedAs::Processor, ..row(input) }
    }

    /// The links of a processor's breach `b1` notified to the collège at `notified_at`.
    fn notified_at(notified_at: &str) -> reports::Links {
        let mut links = reports::Links::default();
        let college = NotifiedController {
            id: "college".into(),
            name: "Collège des Essais".into(),
            notified_at: notified_at.into(),
        };
        links.notified.insert("b1".into(), vec![college]);
        links
    }

    #[test]
    fn a_processor_s_breach_is_due_to_its_controllers_in_48_hours_and_leaves_the_cnil_and_the_people_to_them() {
        let now = at("2026-09-10T08:00:00Z");
        let b = from_row(processor_row(&input(&[])), &mut notified_at("2026-09-01T08:00:00Z"), now);
        assert_eq!(b.input.controllers(), ["college"]);
        assert_eq!(b.controller_deadline.as_deref(), Some("2026-09-03T06:30:00.000000Z"));
        assert_eq!(b.cnil_deadline, "", "the CNIL is the controller's to notify");
        assert_eq!(b.warning, None, "notified in time; neither the CNIL's 72 h nor the people are its own");
        assert!(!b.people_untold());

        let late = from_row(processor_row(&input(&[])), &mut notified_at("2026-09-03T07:00:00Z"), now);
        assert_eq!(
            late.warning.as_deref(),
            Some(
                "notifiée au responsable de traitement le 3 septembre 2026 à 09 h 00, plus de 48 h après la prise de \
                 connaissance (le 1er septembre 2026 à 08 h 30, heure de Paris ; article 33.2 du RGPD)"
            )
        );

        // Its own breach, notified to nobody: the CNIL's 72 hours, and its people to tell.
        let own = from_row(row(&input(&[])), &mut reports::Links::default(), now);
        assert_eq!((own.cnil_deadline.as_str(), own.controller_deadline), ("2026-09-04T06:30:00.000000Z", None));
        let warning = own.warning.unwrap();
        assert!(warning.contains("plus de 72 h") && warning.contains("risque élevé"), "{warning}");
    }

    /// Whose breach an entry is, is read as stored, not from its links: a processor's entry
    /// whose controllers' entries cannot be read stays on their 48 hours, and an entry stored
    /// as its organisation's own stays on the CNIL's 72 hours whatever points at it.
    #[test]
    fn an_entry_reads_whose_breach_it_is_as_stored() {
        let now = at("2026-09-10T08:00:00Z");
        let unlinked = from_row(processor_row(&input(&[])), &mut reports::Links::default(), now);
        assert_eq!(unlinked.reported_as, ReportedAs::Processor);
        assert_eq!(
            (unlinked.cnil_deadline.as_str(), unlinked.controller_deadline.as_deref()),
            ("", Some("2026-09-03T06:30:00.000000Z"))
        );
        assert!(!unlinked.people_untold() && unlinked.warning.is_none(), "{unlinked:?}");
        assert_eq!(rows(&[unlinked])[0][12], BY_CONTROLLER);

        let own = from_row(row(&input(&[])), &mut notified_at("2026-09-01T08:00:00Z"), now);
        assert_eq!(
            (own.cnil_deadline.as_str(), own.controller_deadline.as_deref()),
            ("2026-09-04T06:30:00.000000Z", None)
        );
        assert!(own.people_untold(), "a high risk of its own, its people untold");
    }

    #[test]
    fn the_stored_marker_decodes_its_two_values_and_refuses_any_other() {
        for value in ReportedAs::ALL {
            assert_eq!(ReportedAs::try_from(value.as_str().to_string()).unwrap(), value);
        }
        let unknown = ReportedAs::try_from("sous-traitant".to_string()).unwrap_err();
        assert_eq!((unknown.what, unknown.value.as_str()), ("ReportedAs", "sous-traitant"));
    }

    #[test]
    fn an_entry_becomes_a_processor_s_when_it_names_controllers_and_stays_one() {
        assert_eq!(ReportedAs::of(&input(&[]), None), ReportedAs::Controller);
        assert_eq!(ReportedAs::of(&input(&[" "]), None), ReportedAs::Controller, "a blank name names nobody");
        assert_eq!(ReportedAs::of(&input(&["college"]), None), ReportedAs::Processor);
        assert_eq!(ReportedAs::of(&input(&["college"]), Some(ReportedAs::Controller)), ReportedAs::Processor);
        assert_eq!(ReportedAs::of(&input(&[]), Some(ReportedAs::Processor)), ReportedAs::Processor);
    }

    #[test]
    fn a_processor_s_breach_records_no_cnil_decision_nor_the_information_of_the_people() {
        let now = at("2026-09-01T08:00:00Z");
        let mut decided = input(&["college"]);
        decided.cnil_decision = CnilDecision::Notified;
        decided.cnil_notified_at = Some("2026-09-01T07:00:00Z".into());
        decided.people_exception = Some(PeopleException::PublicCommunication);
        let problem = validate(&decided, None, now).unwrap_err();
        let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["cnil_decision", "cnil_notified_at", "people_exception"]);
        assert!(problem.errors[0].message.contains("article 33.2"), "{:?}", problem.errors);
        // The same decision on a breach of its own processing is the CNIL's rule as before.
        decided.controllers = Some(Vec::new());
        let fields: Vec<String> =
            validate(&decided, None, now).unwrap_err().errors.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["people_reason", "people_notified_at"]);
        assert!(validate(&input(&["college"]), None, now).is_ok());
    }

    #[test]
    fn a_breach_lists_fifty_categories_and_a_thousand_controllers_at_most() {
        let now = at("2026-09-01T08:00:00Z");
        let many = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
        let mut full = input(&["college"]);
        full.data_categories = many(CATEGORIES_MAX);
        full.people_categories = Some(many(CATEGORIES_MAX));
        full.controllers = Some(many(CONTROLLERS_MAX));
        assert!(validate(&full, None, now).is_ok());
        full.data_categories.push("une de trop".into());
        full.people_categories.as_mut().unwrap().push("une de trop".into());
        full.controllers.as_mut().unwrap().push("un de trop".into());
        let errors = validate(&full, None, now).unwrap_err().errors;
        let said: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            said,
            [
                ("data_categories", "50 catégories au plus : la liste en compte 51"),
                ("people_categories", "50 catégories au plus : la liste en compte 51"),
                ("controllers", "1 000 responsables de traitement au plus : la liste en compte 1 001"),
            ]
        );
    }

    #[test]
    fn an_update_that_omits_the_controllers_keeps_those_notified() {
        let stored = input(&["college"]);
        let mut sent = input(&[]);
        sent.controllers = None;
        sent.keep_unsent(&stored);
        assert_eq!(sent.controllers(), ["college"]);
    }
}
