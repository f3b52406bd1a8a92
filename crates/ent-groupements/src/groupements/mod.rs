//! Group purchases (groupements de commandes): a coordinator (EPCI, syndicat
//! mixte, département, région or académie) opens a purchase, collectivités
//! apply with their council decision and quantities prefilled from the
//! registry, the coordinator accepts them (each acceptance joins the
//! `groupement-de-commandes` convention), generates the consultation's
//! documents, awards the contract and publishes its DECP record; members see
//! their share of the cost.
//!
//! Status: `open` → `closed` → `consultation` → `awarded` → `running` → `ended`; a consultation
//! declared sans suite goes back to `closed` ([`sans_suite`]), to be relaunched.

pub mod award;
pub mod cctp;
pub mod consultation;
pub mod costs;
pub mod decp;
pub mod documents;
pub mod ending;
pub mod guard;
pub mod handover;
pub mod lots;
pub mod membership;
pub mod readers;
pub mod routes;
pub mod sans_suite;
pub mod shares;
pub mod state;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ent_conventions::conventions::model::ConventionModel;
use ent_conventions::conventions::workflow;
use ent_conventions::conventions::{get_convention, Status as ConventionStatus};
use ent_kernel::clock::{french_date, french_moment, term_end, today_in_france};
use ent_kernel::error::{conflict_unless, Checks, Problem};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::kernel::roles::Role;
use ent_kernel::naming;
use ent_kernel::store::counters::next_reference;
use ent_kernel::store::sql::{page_size, AnyQuery, Condition, Page};
use ent_kernel::store::{expect_version, update_versioned};
use ent_kernel::store::{new_id, timestamp, JsonText, Store, Tx};
use ent_kernel::validate;
use ent_kernel::{skip_serializing_none, text_enum};
use ent_platform::audit::{self, Target};
use ent_platform::catalog::Catalog;
use ent_platform::identity::authz::resolve_readable;
use ent_platform::identity::Actor;
use ent_platform::registry::queries::field_org_kind;
use ent_platform::registry::{get_org, missing_org, resolve_readable_field, Org, OrgRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shares::{Basis, KeyPart};
use sqlx::any::AnyRow;
use sqlx::FromRow;
pub use state::GroupementsState;

/// Organisation kinds that may coordinate a groupement.
pub const COORDINATOR_KINDS: [OrgKind; 5] =
    [OrgKind::Epci, OrgKind::SyndicatMixte, OrgKind::Departement, OrgKind::Region, OrgKind::Academie];

/// Organisation kinds that may join one.
pub const MEMBER_KINDS: [OrgKind; 5] =
    [OrgKind::Commune, OrgKind::Epci, OrgKind::SyndicatMixte, OrgKind::Departement, OrgKind::Region];

/// The convention model every member signs.
pub const CONVENTION_MODEL: &str = "groupement-de-commandes";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Applications accepted until the deadline.
    Open,
    /// No more applications; the coordinator finalises the needs.
    Closed,
    /// The procedure is running.
    Consultation,
    /// A vendor was chosen (see `award`).
    Awarded,
    /// The contract is being executed.
    Running,
    Ended,
}

text_enum!(pub Status from Self::ALL);

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Open, Status::Closed, Status::Consultation, Status::Awarded, Status::Running, Status::Ended];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Closed => "closed",
            Status::Consultation => "consultation",
            Status::Awarded => "awarded",
            Status::Running => "running",
            Status::Ended => "ended",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Open => "ouvert aux adhésions",
            Status::Closed => "adhésions closes",
            Status::Consultation => "en consultation",
            Status::Awarded => "attribué",
            Status::Running => "en exécution",
            Status::Ended => "terminé",
        }
    }

    /// Moves a transition may make; `awarded` is reached only by an award. A notified
    /// accord-cadre ends from `awarded` as from `running`: at its term, or résilié before by
    /// its coordinator, who concluded it for the members (art. L. 2195-3 du code de la commande
    /// publique), whether or not a bon de commande was issued.
    pub fn can_move_to(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Status::Open, Status::Closed)
                | (Status::Closed, Status::Open)
                | (Status::Closed, Status::Consultation)
                | (Status::Consultation, Status::Awarded)
                | (Status::Awarded, Status::Running)
                | (Status::Awarded, Status::Ended)
                | (Status::Running, Status::Ended)
        )
    }
}

/// A lot of the purchase: a distinct prestation, awarded apart as its own accord-cadre (article
/// L. 2113-10 du code de la commande publique). The lot carrying the ENT has no `lines`: it is
/// priced by the bouquet's lines (account-years and set-ups, from the members' quantities); every
/// other lot (« Accompagnement et formation »…) has the lines its coordinator defines. A
/// groupement has exactly one lot carrying the ENT ([`check_lots`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lot {
    pub number: u32,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The price lines of a lot other than the ENT's, 1 to [`MAX_LOT_LINES`]; absent (empty) for
    /// the lot carrying the ENT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LotLine>,
}

impl Lot {
    /// Whether this lot carries the ENT (the bouquet): it has no lines of its own.
    pub fn carries_ent(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lot's price lines, in the BPU's order: the bouquet's for the ENT lot, its own else.
    pub fn price_lines(&self) -> Vec<costs::PriceLine> {
        match self.carries_ent() {
            true => costs::PriceLine::ALL.to_vec(),
            false => (1..=self.lines.len() as u32).map(costs::PriceLine::Custom).collect(),
        }
    }

    /// The coordinator's line `n` (1-based) of this lot, if any.
    pub fn line(&self, n: u32) -> Option<&LotLine> {
        self.lines.get(usize::try_from(n).ok()?.checked_sub(1)?)
    }

    /// The coordinator's line that `line` names in this lot, if it is one.
    pub fn line_of(&self, line: costs::PriceLine) -> Option<&LotLine> {
        match line {
            costs::PriceLine::Custom(n) => self.line(n),
            _ => None,
        }
    }
}

/// A price line the coordinator defines for a lot other than the ENT's: what is bought, its unit,
/// the quantity over the whole duration of the accord-cadre (the DQE's), and optionally the unit
/// price HT the coordinator estimates (the lot's estimate, [`costs::lot_estimate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LotLine {
    /// « Journée de formation des enseignants sur site ».
    #[schemars(length(min = 1, max = 200))]
    pub label: String,
    /// « journée », « session », « heure ».
    #[schemars(length(min = 1, max = 50))]
    pub unit: String,
    /// Whole units over the whole duration, 1 to [`MAX_LINE_QUANTITY`].
    pub quantity: i64,
    /// The unit price HT the coordinator estimates, in cents (0 to 100 000 €).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_unit_price_ht_cents: Option<i64>,
}

/// The most lines a lot of the coordinator's has.
pub const MAX_LOT_LINES: usize = 30;

/// The most lots a groupement has.
pub const MAX_LOTS: usize = 10;

/// The largest quantity of a coordinator's line, over the whole duration.
pub const MAX_LINE_QUANTITY: i64 = 10_000_000;

/// The level-3 (vendor) support expected for one priority, in business hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportLevel {
    /// `P1` (blocking) to `P4` (request).
    pub priority: String,
    pub label: String,
    pub first_response_hours: u32,
    pub resolution_hours: u32,
}

/// The N3 (vendor) commitments of a support policy, written into the CCTP when the
/// coordinator gives none. Groupements declare what they need; the composition root provides it
/// from the support desk's policies (`ent-server`: `api::commitments::SupportDesk`).
pub trait SupportCommitments: Send + Sync {
    /// The commitments of the policy `name` (the desk's default policy when absent), one per
    /// priority; an unknown policy is an invalid `support_policy` field.
    fn n3_commitments(&self, name: Option<&str>) -> Result<Vec<SupportLevel>, Problem>;
}

pub(crate) fn default_lots() -> Vec<Lot> {
    vec![Lot {
        number: 1,
        title: "Solution d'espace numérique de travail".into(),
        description: Some("fourniture, hébergement, maintenance et assistance de niveau 3".into()),
        lines: Vec::new(),
    }]
}

/// The editable terms of a groupement, stored as one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Terms {
    pub lots: Vec<Lot>,
    /// Required base bouquet (catalog id).
    pub bouquet: String,
    /// Options of the catalog asked in the consultation.
    pub options: Vec<String>,
    pub support: Vec<SupportLevel>,
    pub cost_key: Vec<KeyPart>,
    pub duration_months: u32,
    /// Why the accord-cadre lasts more than [`MAX_MONTHS_UNJUSTIFIED`] months (art. R. 2162-4
    /// du code de la commande publique): required beyond, printed where the duration is stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_justification: Option<String>,
    /// The groupement's common expenses over the contract (procedure, management), in cents,
    /// split as the convention constitutive says; 0 when the coordinator bears none to share.
    #[serde(default)]
    pub common_expenses_cents: i64,
    /// The coordinator's part of the common expenses, in percent (0: coordination free of charge).
    #[serde(default)]
    pub coordinator_share_percent: u32,
    /// The procedure of the consultation (the appel d'offres ouvert when absent): the RC, the AE
    /// and the CCAP print it, the award's délais and the DECP's `procedure` are its own.
    #[serde(default)]
    pub procedure: consultation::Procedure,
    /// The estimated value of the need HT, in cents: every lot over the whole duration of the
    /// accord-cadre, renewals included (articles R. 2121-1 et suivants du code de la commande
    /// publique). Required for a procédure adaptée, which it must keep below the threshold of the
    /// formalised procedures ([`check_procedure`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_amount_ht_cents: Option<i64>,
    /// The margin of the accord-cadre's maximum over the DQE's quantities, in percent (0 to
    /// 100; 0, the maximum equal to the declared quantities, when absent): each line's maximum is
    /// its DQE quantity raised by it, rounded up to the whole unit ([`costs::with_margin`]), for
    /// the écoles opened or attached and the rolls growing during the execution (article R. 2162-4
    /// du code de la commande publique). The CCAP, the RC and the AE print it; the DQE stays the
    /// basis of the comparison of the offers; the award's amount and the DECP's `montant` are the
    /// maximum at the titulaire's unit prices. Set before the launch, frozen with the terms after.
    #[serde(default)]
    pub maximum_margin_percent: u32,
}

/// The award: who won, for how much, from when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Award {
    pub vendor: OrgRef,
    pub vendor_siret: String,
    pub amount_ht_cents: i64,
    pub amount_ttc_cents: i64,
    /// `YYYY-MM-DD`: notification of the contract.
    pub notified_on: String,
    pub duration_months: u32,
    /// The awarded unit prices of the BPU (members' own orders are priced at them): served
    /// only to the coordinator's and the accepted members' users (and administrators); absent
    /// for other readers, as when none was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unit_prices: Vec<costs::UnitPrice>,
    pub decp: decp::DecpFacts,
    /// The members' tenants the award left with their vendor: the titulaire of another
    /// groupement's accord-cadre still running on the notification day (no titulaire changes
    /// silently before its term). Served to the same readers as `unit_prices`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_tenants: Vec<award::KeptTenant>,
    /// The members' tenants passing to the titulaire that run services the accord-cadre does not
    /// cover (neither its bouquet nor its options: the CCTP's article 4, the CCAP's article 9),
    /// each said at the award and in the member's notice. Served to the same readers as
    /// `unit_prices`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<award::ServicesOutside>,
    /// The titulaire's choice on the advance of the CCAP's article 7, as its acte d'engagement
    /// states it (section F): `true` when it renounced it. Absent for an award recorded before the
    /// platform asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_renounced: Option<bool>,
    /// For a groupement of several lots, the lot carrying the ENT, whose award the fields above
    /// are (the members' processor, the tenants' vendor). Absent for a groupement of one lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<u32>,
    /// For a groupement of several lots, the award of each lot awarded, the ENT's included, each
    /// its own accord-cadre ([`lots::LotAward`]). Absent for a groupement of one lot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots: Vec<lots::LotAward>,
}

impl Award {
    /// The last day of the accord-cadre: from its notification to the eve of the same day at
    /// its term ([`term_end`]); None for an unreadable notification date.
    pub fn last_day(&self) -> Option<NaiveDate> {
        let notified = NaiveDate::parse_from_str(&self.notified_on, "%Y-%m-%d").ok()?;
        term_end(notified, self.duration_months)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Groupement {
    pub id: String,
    /// `GC-2026-000001`.
    pub reference: String,
    pub coordinator: OrgRef,
    pub title: String,
    pub object: String,
    #[serde(flatten)]
    pub terms: Terms,
    /// The cost key in words.
    pub cost_key_label: String,
    /// `YYYY-MM-DD`: last day to apply.
    pub application_deadline: String,
    /// `YYYY-MM-DD`: the planned launch of the consultation.
    pub consultation_date: Option<String>,
    /// `YYYY-MM-DD`: the planned award.
    pub award_planned_date: Option<String>,
    /// When the consultation was really launched (the groupement entered `consultation`),
    /// RFC 3339; absent before. Its day in France is [`Groupement::consultation_launched_on`].
    pub consultation_launched_at: Option<String>,
    /// The date and time limits for the receipt of offers (article R. 2151-1 du code de la
    /// commande publique), RFC 3339 in UTC: set at the launch of the consultation, editable while
    /// it runs (`PATCH` with `offers_deadline_reason`); absent before the launch, and for a
    /// consultation launched before the platform recorded it (see `offers_deadline_warning`).
    pub offers_deadline_at: Option<String>,
    /// What the offers deadline calls for, in a French sentence: none recorded for a consultation
    /// launched (an award is then checked against the procedure's minimum délais alone), or a
    /// procédure adaptée's delay shorter than the platform advises. Absent otherwise.
    pub offers_deadline_warning: Option<String>,
    pub status: Status,
    pub status_label: String,
    /// The convention constitutive in force (`groupement-de-commandes`, the one the accepted
    /// members signed or are to sign): once an avenant of it took effect, that avenant (see
    /// `constitutive_id`); an avenant in preparation is not.
    pub convention_id: Option<String>,
    /// The convention constitutive the groupement first linked (the lineage's first convention,
    /// which its avenants amend).
    pub first_convention_id: Option<String>,
    pub award: Option<Award>,
    /// `YYYY-MM-DD`: first export of the DECP record (its `datePublicationDonnees`).
    pub decp_published_on: Option<String>,
    /// The latest consultation declared sans suite (articles R. 2185-1 and R. 2185-2 du code de
    /// la commande publique): its motif, justification and day, the launch and offers deadline it
    /// ended. The groupement went back to `closed` then; kept once a new consultation is launched.
    pub sans_suite: Option<sans_suite::SansSuite>,
    /// The lots of the consultation running declared sans suite while the others go on to their
    /// award ([`sans_suite::declare_lot`]); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots_sans_suite: Vec<sans_suite::LotSansSuite>,
    pub members: i64,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Groupement {
    /// `YYYY-MM-DD`: the day the groupement was created, before which none of its acts (a
    /// member's délibération, the notification of the contract) can be dated.
    pub fn created_on(&self) -> &str {
        self.created_at.get(..10).unwrap_or(&self.created_at)
    }

    /// The last day of its convention constitutive: the contract's last day were it notified
    /// [`AWARD_SLACK_MONTHS`] after the planned award (else the consultation, else the
    /// application deadline), so that the convention governs the contract to its term.
    pub fn convention_end(&self) -> Option<NaiveDate> {
        let planned =
            self.award_planned_date.as_ref().or(self.consultation_date.as_ref()).unwrap_or(&self.application_deadline);
        convention_end_after(NaiveDate::parse_from_str(planned, "%Y-%m-%d").ok()?, self.terms.duration_months)
    }

    /// The day in France the consultation was launched, once it was.
    pub fn consultation_launched_on(&self) -> Option<NaiveDate> {
        let at = DateTime::parse_from_rfc3339(self.consultation_launched_at.as_deref()?).ok()?;
        Some(today_in_france(at.with_timezone(&Utc)))
    }

    /// The offers deadline, once recorded.
    pub fn offers_deadline(&self) -> Option<DateTime<Utc>> {
        let at = DateTime::parse_from_rfc3339(self.offers_deadline_at.as_deref()?).ok()?;
        Some(at.with_timezone(&Utc))
    }

    /// The `offers_deadline_warning` of this groupement as read.
    fn deadline_warning(&self) -> Option<String> {
        let launched = self.consultation_launched_on()?;
        match self.offers_deadline() {
            Some(at) => consultation::short_delay_warning(at, launched, self.terms.procedure),
            None if self.status == Status::Consultation => Some(
                "Aucune date limite de réception des offres n'est enregistrée : la consultation a été lancée avant que la \
                 plateforme la demande. L'attribution reste possible, contrôlée sur les seuls délais minimaux de la \
                 procédure ; enregistrez la date et l'heure limites publiées (modification du groupement, avec un motif)."
                    .into(),
            ),
            None => Some(
                "Aucune date limite de réception des offres n'est enregistrée : la consultation a été lancée avant que la \
                 plateforme la demande, et l'attribution n'a été contrôlée que sur les délais minimaux de la procédure."
                    .into(),
            ),
        }
    }

    /// When the adhesions end ([`AdhesionsEnd`]).
    pub fn adhesions_end(&self) -> AdhesionsEnd {
        AdhesionsEnd::of(&self.application_deadline, self.consultation_launched_on())
    }
}

/// When a groupement's adhesions end: its application deadline, or the launch of its
/// consultation when that came first (article 2 of the convention constitutive: no adhesion is
/// possible after the launch). Every piece and page that dates the adhesions says it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdhesionsEnd {
    /// `YYYY-MM-DD`: the last day.
    pub day: String,
    /// Whether the launch of the consultation ended them before the deadline.
    pub at_launch: bool,
    /// `YYYY-MM-DD`: the deadline the groupement set.
    pub deadline: String,
}

impl AdhesionsEnd {
    /// Of the application `deadline` (`YYYY-MM-DD`) and the launch of the consultation, if any.
    pub fn of(deadline: &str, launched: Option<NaiveDate>) -> AdhesionsEnd {
        let day = launched.map(|d| d.to_string()).filter(|d| d.as_str() < deadline);
        AdhesionsEnd {
            at_launch: day.is_some(),
            day: day.unwrap_or_else(|| deadline.to_string()),
            deadline: deadline.to_string(),
        }
    }

    /// In words: « 20 décembre 2026 », or « 5 décembre 2026, au lancement de la consultation
    /// (date limite fixée au 20 décembre 2026) ».
    pub fn words(&self) -> String {
        match self.at_launch {
            false => french_date(&self.day),
            true => format!(
                "{}, au lancement de la consultation (date limite fixée au {})",
                french_date(&self.day),
                french_date(&self.deadline)
            ),
        }
    }
}

/// The last day of a convention constitutive ([`Groupement::convention_end`]) for the award
/// planned on `planned` and a contract of `duration_months`.
fn convention_end_after(planned: NaiveDate, duration_months: u32) -> Option<NaiveDate> {
    term_end(planned.checked_add_months(chrono::Months::new(AWARD_SLACK_MONTHS))?, duration_months)
}

/// Records, on `field` (the last date planned), that the convention constitutive would end past
/// the last day a date may name ([`validate::within_days`]): refused now, not when it is written.
fn check_convention_end(field: &str, planned: NaiveDate, duration_months: u32, checks: &mut Checks) {
    let Some(end) = convention_end_after(planned, duration_months) else { return };
    if let Err(message) = validate::within_days(end) {
        checks.fail(
            field,
            format!(
                "la convention constitutive, qui court {AWARD_SLACK_MONTHS} mois après cette date puis la durée du \
                 marché, finirait trop tard : {message}"
            ),
        );
    }
}

/// How late after its planned date the award may come and the convention constitutive still
/// cover the contract without an avenant.
pub const AWARD_SLACK_MONTHS: u32 = 12;

/// `POST /groupements`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupement {
    /// The coordinator organisation (id, `kind:code`).
    pub coordinator: String,
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// Object of the purchase, one paragraph (the DECP `objet`, 1,000 characters at most).
    #[schemars(length(min = 1, max = 1000))]
    pub object: String,
    /// One lot « Solution d'espace numérique de travail » when absent.
    pub lots: Option<Vec<Lot>>,
    /// `socle-1d` when absent.
    pub bouquet: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
    /// N3 commitments; when absent, those of the support-desk policy `support_policy`.
    pub support: Option<Vec<SupportLevel>>,
    /// A support-desk policy (`standard` when absent) whose N3 targets become the commitments.
    #[serde(default)]
    pub support_policy: Option<String>,
    /// 100 % per account when absent.
    pub cost_key: Option<Vec<KeyPart>>,
    /// 36 when absent; beyond 48, only with a `duration_justification`.
    pub duration_months: Option<u32>,
    /// Why the accord-cadre lasts more than 48 months (art. R. 2162-4 du code de la commande publique).
    pub duration_justification: Option<String>,
    /// Common expenses (procedure, management) over the contract, in cents; 0 when absent.
    pub common_expenses_cents: Option<i64>,
    /// The coordinator's part of the common expenses, in percent; 0 when absent.
    pub coordinator_share_percent: Option<u32>,
    /// `appel_offres_ouvert` when absent, or `procedure_adaptee` (below the European thresholds
    /// only): the procedure the pieces print and the award declares.
    pub procedure: Option<consultation::Procedure>,
    /// The estimated value of the need HT in cents, all lots over the whole duration, renewals
    /// included: required for a `procedure_adaptee`, which it must keep below the threshold.
    pub estimated_amount_ht_cents: Option<i64>,
    /// The margin of the accord-cadre's maximum over the declared quantities (the DQE's), in
    /// percent, 0 to 100; 0 (the maximum equal to them) when absent.
    pub maximum_margin_percent: Option<u32>,
    pub application_deadline: String,
    pub consultation_date: Option<String>,
    pub award_planned_date: Option<String>,
}

/// `PATCH /groupements/{id}`: absent fields are kept. Only while open or closed.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupementPatch {
    pub title: Option<String>,
    pub object: Option<String>,
    pub lots: Option<Vec<Lot>>,
    pub bouquet: Option<String>,
    pub options: Option<Vec<String>>,
    pub support: Option<Vec<SupportLevel>>,
    pub cost_key: Option<Vec<KeyPart>>,
    pub duration_months: Option<u32>,
    /// Empty to remove it.
    pub duration_justification: Option<String>,
    pub common_expenses_cents: Option<i64>,
    pub coordinator_share_percent: Option<u32>,
    pub procedure: Option<consultation::Procedure>,
    pub estimated_amount_ht_cents: Option<i64>,
    /// 0 to 100: settable until the consultation is launched, like every term.
    pub maximum_margin_percent: Option<u32>,
    pub application_deadline: Option<String>,
    pub consultation_date: Option<String>,
    pub award_planned_date: Option<String>,
    /// Only while in consultation, with `offers_deadline_reason` and nothing else: the new date
    /// and time limits for the receipt of offers, RFC 3339 or `AAAA-MM-JJTHH:MM` (heure de Paris).
    pub offers_deadline: Option<String>,
    /// Why the offers deadline moves (audited; 2 000 characters at most).
    pub offers_deadline_reason: Option<String>,
}

impl GroupementPatch {
    /// Whether the patch changes the offers deadline and nothing else.
    fn only_offers_deadline(&self) -> bool {
        let GroupementPatch { offers_deadline, offers_deadline_reason: _, .. } = self;
        let others = [
            self.title.is_some(),
            self.object.is_some(),
            self.lots.is_some(),
            self.bouquet.is_some(),
            self.options.is_some(),
            self.support.is_some(),
            self.cost_key.is_some(),
            self.duration_months.is_some(),
            self.duration_justification.is_some(),
            self.common_expenses_cents.is_some(),
            self.coordinator_share_percent.is_some(),
            self.procedure.is_some(),
            self.estimated_amount_ht_cents.is_some(),
            self.application_deadline.is_some(),
            self.consultation_date.is_some(),
            self.award_planned_date.is_some(),
        ];
        offers_deadline.is_some() && !others.contains(&true)
    }
}

/// Everything an operation needs.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub catalog: &'a Catalog,
    /// The N3 commitments asked of the vendor (the support desk's policies).
    pub support: &'a dyn SupportCommitments,
    pub models: &'a [ConventionModel],
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// Today in France, as the conventions workflow reads it.
    pub fn today(&self) -> NaiveDate {
        self.conventions().today()
    }

    pub fn conventions(&self) -> workflow::Ctx<'_> {
        workflow::Ctx { store: self.store, models: self.models, actor: self.actor, now: self.now }
    }

    pub async fn record(
        &self,
        tx: &mut Tx,
        action: &str,
        target_id: &str,
        scope: Option<&str>,
        summary: serde_json::Value,
    ) -> Result<(), Problem> {
        let target = Target::new(readers::AUDIT_KIND, target_id, scope);
        audit::record(tx, self.store.backend(), self.actor, action, &target, summary, self.now).await
    }
}

/// Whether the actor coordinates `g`: an admin, or `coordinateur` at its coordinator.
pub fn is_coordinator(actor: &Actor, g: &Groupement) -> bool {
    actor.is_admin() || holds_role_at(actor, Role::Coordinateur, &g.coordinator.id)
}

pub fn holds_role_at(actor: &Actor, role: Role, org_id: &str) -> bool {
    actor.bindings.iter().any(|b| b.role == role && b.org.as_ref().is_some_and(|o| o.id == org_id))
}

/// The console page of the groupement (the link of its notices).
pub fn page_of(g: &Groupement) -> String {
    format!("/groupements/{}", g.reference)
}

pub fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("aucun groupement « {id} »"))
}

/// The checked fields of a groupement (creation or edit).
struct Checked {
    title: String,
    object: String,
    terms: Terms,
    deadline: String,
    consultation: Option<String>,
    award_planned: Option<String>,
}

impl Checked {
    /// Binds the fields in their column order (`title` to `award_planned_date`), after what `query` already binds.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.title)
            .bind(&self.object)
            .bind(serde_json::to_string(&self.terms).expect("terms serialise"))
            .bind(&self.deadline)
            .bind(self.consultation.clone())
            .bind(self.award_planned.clone())
    }
}

/// The longest accord-cadre a pouvoir adjudicateur concludes without a stated justification
/// (art. L. 2125-1 and R. 2162-4 du code de la commande publique).
pub const MAX_MONTHS_UNJUSTIFIED: u32 = 48;

/// The duration of the contract, executed by each member's purchase orders (an accord-cadre):
/// 1 to 120 months, beyond four years only with a justification (kept only then, trimmed).
fn check_duration(mut terms: Terms, checks: &mut Checks) -> Terms {
    let months = terms.duration_months;
    let justification = terms.duration_justification.take().map(|j| j.trim().to_string()).filter(|j| !j.is_empty());
    if !(1..=120).contains(&months) {
        checks.fail("duration_months", "durée du marché entre 1 et 120 mois");
    } else if months > MAX_MONTHS_UNJUSTIFIED {
        match justification {
            None => checks.fail(
                "duration_months",
                format!(
                    "un accord-cadre exécuté par bons de commande ne dépasse pas quatre ans ({MAX_MONTHS_UNJUSTIFIED} \
                     mois) sauf cas exceptionnel dûment justifié (art. L. 2125-1 et R. 2162-4 du code de la commande \
                     publique) : ramenez la durée ({months} mois) à {MAX_MONTHS_UNJUSTIFIED} mois ou justifiez une \
                     durée supérieure à {MAX_MONTHS_UNJUSTIFIED} mois"
                ),
            ),
            Some(j) => {
                let j = checks.text("duration_justification", &j, 2000);
                checks.line("duration_justification", &j);
                terms.duration_justification = Some(j);
            }
        }
    }
    terms
}

/// The N3 commitments written into the CCTP: P1 to P4, once each, P1 required, delays in
/// business hours. Checked at creation and when a patch sends them: a groupement recorded
/// before the rule keeps its levels until they are edited.
fn check_support(support: &[SupportLevel]) -> Result<(), Problem> {
    let mut checks = Checks::default();
    // The CCTP states a total outage as a P1 and the recovery time as its resolution.
    if !support.iter().any(|s| s.priority == "P1") {
        checks.fail("support", "au moins le niveau de service P1 (interruption totale du service)");
    }
    for (i, s) in support.iter().enumerate() {
        if !["P1", "P2", "P3", "P4"].contains(&s.priority.as_str()) {
            checks.fail(&format!("support[{i}].priority"), "priorité P1, P2, P3 ou P4");
        } else if support[..i].iter().any(|o| o.priority == s.priority) {
            checks.fail(&format!("support[{i}].priority"), "une seule ligne par priorité");
        }
        if s.first_response_hours == 0 || s.resolution_hours < s.first_response_hours {
            checks.fail(
                &format!("support[{i}]"),
                "délais en heures ouvrées : prise en charge ≥ 1, résolution ≥ prise en charge",
            );
        }
    }
    checks.finish()
}

/// A deadline set now (at creation, or an edit that moves it) may not be already past: the
/// groupement would be listed open to applications all refused as late. A malformed date
/// is [`check_fields`]' to report.
fn check_deadline_ahead(deadline: &str, today: NaiveDate) -> Result<(), Problem> {
    match validate::date(deadline.trim()) {
        Ok(date) if date < today => Err(Problem::invalid_field(
            "application_deadline",
            format!(
                "la date limite des adhésions ({}) est passée : choisissez aujourd'hui ({}) ou une date à venir",
                french_date(&date.to_string()),
                french_date(&today.to_string())
            ),
        )),
        _ => Ok(()),
    }
}

/// The day the consultation of `checked` is launched, when the value of its need is estimated
/// (article R. 2121-1): its planned `consultation_date`, else `today`.
fn launch_day(checked: &Checked, today: NaiveDate) -> NaiveDate {
    checked.consultation.as_deref().and_then(|d| validate::date(d).ok()).unwrap_or(today)
}

/// A procédure adaptée only for a need whose estimated value (`estimated_amount_ht_cents`: every
/// lot over the whole duration, renewals included, articles R. 2121-1 et suivants) is below the
/// threshold of the formalised procedures in force on `launch` for the category of `buyer`
/// ([`consultation::formalised_threshold`]: the State's central authorities' when an académie or
/// a DSDEN coordinates or joins, the lowest applying; article R. 2123-1, 1°): refused (422, on
/// `procedure` and `estimated_amount_ht_cents`) when that value is missing, or reaches it.
/// Checked wherever the procedure is fixed: creation, every edit, the launch.
fn check_procedure(terms: &Terms, launch: NaiveDate, buyer: consultation::Buyer) -> Result<(), Problem> {
    if terms.procedure != consultation::Procedure::ProcedureAdaptee {
        return Ok(());
    }
    let threshold = consultation::formalised_threshold(launch, buyer);
    let seuil = format!(
        "{} ({} ; article R. 2123-1, 1°, du code de la commande publique)",
        threshold.words(),
        threshold.source
    );
    let value_of = value_of_the_need(terms.maximum_margin_percent);
    let mut checks = Checks::default();
    match terms.estimated_amount_ht_cents {
        None => {
            checks.fail(
                "estimated_amount_ht_cents",
                format!("une procédure adaptée suppose une valeur estimée du besoin HT inférieure au {seuil} : indiquez-la, {value_of}"),
            );
            checks.fail("procedure", "la procédure adaptée demande la valeur estimée du besoin, qui manque");
        }
        Some(estimate) if estimate >= threshold.cents => {
            let value = costs::euros(estimate);
            checks.fail(
                "estimated_amount_ht_cents",
                format!("la valeur estimée du besoin, {value} HT ({value_of}), atteint le {seuil}"),
            );
            checks.fail(
                "procedure",
                format!(
                    "la procédure adaptée n'est ouverte qu'en dessous du {seuil} ; la valeur estimée du besoin, {value} \
                     HT, l'atteint : choisissez l'appel d'offres ouvert"
                ),
            );
        }
        Some(_) => {}
    }
    checks.finish()
}

/// The category of buyer of `g` ([`consultation::Buyer::of`]): its coordinator and its accepted members.
pub async fn buyer(store: &Store, g: &Groupement) -> Result<consultation::Buyer, Problem> {
    Ok(buyer_of(g, &membership::members(store, &g.id).await?))
}

/// [`buyer`] of `g` whose accepted members are `members`.
pub fn buyer_of(g: &Groupement, members: &[membership::Application]) -> consultation::Buyer {
    let kinds = members.iter().map(|m| (m.applicant.kind, m.applicant.name.as_str()));
    consultation::Buyer::of((g.coordinator.kind, &g.coordinator.name), kinds)
}

/// What the estimated value of the need covers, in words: every lot over the whole duration,
/// renewals included and, for an accord-cadre whose maximum raises the declared quantities by
/// `margin` percent, up to that maximum (article R. 2121-8: an accord-cadre's value is its maximum).
fn value_of_the_need(margin: u32) -> String {
    const VALUE: &str = "tous les lots sur toute la durée du marché, reconductions comprises (articles R. 2121-1 et \
                         suivants du code de la commande publique)";
    match margin {
        0 => VALUE.to_string(),
        _ => format!(
            "{VALUE}, jusqu'au maximum de l'accord-cadre : les quantités déclarées majorées de {margin} % (article \
             R. 2121-8)"
        ),
    }
}

/// A planned award (`award_planned_date`: the contract signed and notified) no earlier than the
/// first day the planned launch (`consultation_date`) allows: the rule of the offers deadline then
/// of the notification ([`consultation::earliest_notification`], cited as [`award::launch_delays`]
/// does), for the groupement's `procedure` — the rejections sent electronically (the shortest
/// standstill) as nothing planned says otherwise. Checked at creation, and when an edit moves
/// either date or the procedure. Unplanned, malformed or inverted dates are [`check_fields`]' to
/// report.
fn check_planned_award(
    procedure: consultation::Procedure,
    consultation: Option<&str>,
    award_planned: Option<&str>,
) -> Result<(), Problem> {
    let day = |d: Option<&str>| d.and_then(|d| validate::date(d.trim()).ok());
    let (Some(launch), Some(planned)) = (day(consultation), day(award_planned)) else { return Ok(()) };
    let first = consultation::earliest_notification(launch, procedure, false);
    if planned < launch || planned >= first {
        return Ok(());
    }
    let words = |d: NaiveDate| french_date(&d.to_string());
    Err(Problem::invalid_field(
        "award_planned_date",
        format!(
            "l'accord-cadre ne pourra pas être notifié avant le {} (attribution prévue : {}){} ; prévoyez l'attribution \
             le {} au plus tôt",
            words(first),
            words(planned),
            award::launch_delays(launch, true, procedure, false),
            words(first)
        ),
    ))
}

/// The margin of the accord-cadre's maximum over the DQE's quantities: a whole percentage from
/// 0 to [`costs::MAX_MAXIMUM_MARGIN_PERCENT`].
fn check_margin(margin: u32, checks: &mut Checks) {
    if margin > costs::MAX_MAXIMUM_MARGIN_PERCENT {
        checks.fail(
            "maximum_margin_percent",
            format!(
                "marge du maximum de l'accord-cadre sur les quantités déclarées : un pourcentage entier de 0 à {} % \
                 (0 : maximum égal aux quantités du détail quantitatif estimatif)",
                costs::MAX_MAXIMUM_MARGIN_PERCENT
            ),
        );
    }
}

/// The lots of `terms`, checked: 1 to [`MAX_LOTS`], numbered uniquely from 1, titled on one line;
/// exactly one carries the ENT (no lines of its own: the bouquet's, [`Lot::carries_ent`]), every
/// other has 1 to [`MAX_LOT_LINES`] lines, each labelled, with its unit, a whole quantity and
/// optionally an estimated unit price (the texts trimmed). 422 on `lots` or the lot's field.
fn check_lots(mut terms: Terms, checks: &mut Checks) -> Terms {
    let lots = &mut terms.lots;
    if lots.is_empty() {
        checks.fail("lots", "au moins un lot");
    }
    if lots.len() > MAX_LOTS {
        checks.fail("lots", format!("{MAX_LOTS} lots au plus"));
    }
    match lots.iter().filter(|l| l.carries_ent()).count() {
        _ if lots.is_empty() => {}
        0 => checks.fail(
            "lots",
            "un lot porte la solution d'espace numérique de travail (le bouquet du groupement) : laissez-le sans \
             lignes de prix, elles sont celles du bouquet (abonnements et mises en service)",
        ),
        1 => {}
        _ => checks.fail(
            "lots",
            "un seul lot porte la solution d'espace numérique de travail (le bouquet) : chacun des autres lots, \
             prestation distincte (article L. 2113-10 du code de la commande publique), définit ses propres lignes \
             de prix",
        ),
    }
    for i in 0..lots.len() {
        // Each lot heads the BPU and DQE: one line, bounded like the groupement's title.
        let field = format!("lots[{i}].title");
        let lot_title = checks.text(&field, &lots[i].title, 200);
        checks.line(&field, &lot_title);
        if lots[i].description.as_ref().is_some_and(|d| d.chars().count() > 2000) {
            checks.fail(&format!("lots[{i}].description"), "description du lot : 2 000 caractères au plus");
        }
        let number = lots[i].number;
        if number == 0 || lots[..i].iter().any(|l| l.number == number) {
            checks.fail(&format!("lots[{i}].number"), "numéros de lot uniques, à partir de 1");
        }
        if lots[i].lines.len() > MAX_LOT_LINES {
            checks.fail(&format!("lots[{i}].lines"), format!("{MAX_LOT_LINES} lignes de prix au plus par lot"));
        }
        for (j, line) in lots[i].lines.iter_mut().enumerate() {
            check_line(line, &format!("lots[{i}].lines[{j}]"), checks);
        }
    }
    terms
}

/// One line of a coordinator's lot, at `field` (`lots[1].lines[0]`): its label and unit trimmed,
/// each on one line; a whole quantity from 1 to [`MAX_LINE_QUANTITY`]; an estimated unit price
/// HT from 0 to [`costs::MAX_UNIT_PRICE_HT_CENTS`].
fn check_line(line: &mut LotLine, field: &str, checks: &mut Checks) {
    let label = checks.text(&format!("{field}.label"), &line.label, 200);
    checks.line(&format!("{field}.label"), &label);
    line.label = label;
    let unit = checks.text(&format!("{field}.unit"), &line.unit, 50);
    checks.line(&format!("{field}.unit"), &unit);
    line.unit = unit;
    if !(1..=MAX_LINE_QUANTITY).contains(&line.quantity) {
        checks.fail(
            &format!("{field}.quantity"),
            "quantité sur toute la durée de l'accord-cadre : un nombre entier de 1 à 10 000 000",
        );
    }
    if line.estimated_unit_price_ht_cents.is_some_and(|p| !(0..=costs::MAX_UNIT_PRICE_HT_CENTS).contains(&p)) {
        checks.fail(
            &format!("{field}.estimated_unit_price_ht_cents"),
            "prix unitaire HT estimé en centimes, de 0 à 100 000,00 € au plus",
        );
    }
}

/// The common expenses of a groupement, in cents: at most a billion euros, so that every
/// share and total computed from them stays far inside an `i64`.
const MAX_COMMON_EXPENSES_CENTS: i64 = 100_000_000_000;

fn check_fields(
    catalog: &Catalog,
    title: &str,
    object: &str,
    terms: Terms,
    deadline: &str,
    consultation: Option<&str>,
    award_planned: Option<&str>,
) -> Result<Checked, Problem> {
    let mut checks = Checks::default();
    let title = checks.text("title", title, 200);
    checks.line("title", &title);
    let object = checks.text("object", object, 1000);
    let terms = check_lots(terms, &mut checks);
    let options: Vec<&str> = terms.options.iter().map(String::as_str).collect();
    if let Err(p) = catalog.resolve(&terms.bouquet, &options) {
        for e in p.errors {
            let field = if e.field == "base" { "bouquet".to_string() } else { e.field };
            checks.fail(&field, e.message);
        }
    }
    shares::check_key(&terms.cost_key, "cost_key", &mut checks);
    if !(0..=MAX_COMMON_EXPENSES_CENTS).contains(&terms.common_expenses_cents) {
        checks.fail("common_expenses_cents", "dépenses communes en centimes, de 0 à 1 milliard d'euros");
    }
    if terms.coordinator_share_percent > 100 {
        checks.fail("coordinator_share_percent", "part du coordonnateur entre 0 et 100 %");
    }
    if terms.estimated_amount_ht_cents.is_some_and(|e| !(1..=MAX_COMMON_EXPENSES_CENTS).contains(&e)) {
        checks.fail(
            "estimated_amount_ht_cents",
            "valeur estimée du besoin HT en centimes, de 0,01 € à 1 milliard d'euros",
        );
    }
    check_margin(terms.maximum_margin_percent, &mut checks);
    let terms = check_duration(terms, &mut checks);
    let d = checks.date("application_deadline", deadline.trim());
    let c = consultation.and_then(|v| checks.date("consultation_date", v.trim()));
    let a = award_planned.and_then(|v| checks.date("award_planned_date", v.trim()));
    if let (Some(d), Some(c)) = (d, c) {
        if c < d {
            checks.fail("consultation_date", "la consultation suit la clôture des adhésions");
        }
    }
    if let (Some(c), Some(a)) = (c.or(d), a) {
        if a < c {
            checks.fail("award_planned_date", "l'attribution suit la consultation");
        }
    }
    let last_planned = [("award_planned_date", a), ("consultation_date", c), ("application_deadline", d)]
        .into_iter()
        .find_map(|(field, day)| day.map(|day| (field, day)));
    if let Some((field, planned)) = last_planned {
        check_convention_end(field, planned, terms.duration_months, &mut checks);
    }
    checks.finish()?;
    Ok(Checked {
        title,
        object,
        terms,
        deadline: d.expect("checked").to_string(),
        consultation: c.map(|d| d.to_string()),
        award_planned: a.map(|d| d.to_string()),
    })
}

/// The id of the convention constitutive in force of the lineage of the convention `$linked`
/// names (an SQL expression): the last avenant that took effect, else the lineage's first
/// convention ([`constitutive_id`]).
macro_rules! in_force_of {
    ($linked:expr) => {
        concat!(
            "(SELECT COALESCE((SELECT c.id FROM conventions c JOIN conventions o ON o.id = c.amends_id \
             WHERE c.root_id = l.root_id AND o.status = 'amended' AND c.status IN ('active', 'expired', 'terminated') \
             ORDER BY c.created_at DESC, c.id DESC LIMIT 1), l.root_id) FROM conventions l WHERE l.id = ",
            $linked,
            ")"
        )
    };
}

/// The convention the groupement `g` links (an SQL expression), unless it was ended before it
/// was ever signed: a convention constitutive whose last member left while it was in preparation
/// is no longer the groupement's (the next acceptance drafts a new one), even where a failure
/// left the groupement linking it ([`membership::end_memberless_convention`] unlinks it as it
/// ends it).
macro_rules! linked_convention {
    () => {
        "(SELECT lc.id FROM conventions lc WHERE lc.id = g.convention_id \
         AND NOT (lc.status = 'terminated' AND lc.signed_at IS NULL))"
    };
}

const COLUMNS: &str = concat!(
    "g.id, g.reference, g.coordinator_org_id, g.title, g.object, g.terms, g.application_deadline, \
    g.consultation_date, g.award_planned_date, g.consultation_launched_at, g.offers_deadline_at, g.status, ",
    linked_convention!(),
    " AS first_convention_id, ",
    in_force_of!(linked_convention!()),
    " AS convention_id, g.award, g.decp_published_on, g.sans_suite, g.lots_sans_suite, g.version, g.created_at, \
    g.updated_at, o.kind AS c_kind, o.code AS c_code, o.name AS c_name, \
    (SELECT COUNT(*) FROM groupement_members m WHERE m.groupement_id = g.id AND m.status = 'accepted') AS members"
);

/// A row of [`COLUMNS`] as stored.
#[derive(FromRow)]
struct GroupementRow {
    id: String,
    reference: String,
    coordinator_org_id: String,
    title: String,
    object: String,
    terms: JsonText<Terms>,
    application_deadline: String,
    consultation_date: Option<String>,
    award_planned_date: Option<String>,
    consultation_launched_at: Option<String>,
    offers_deadline_at: Option<String>,
    #[sqlx(try_from = "String")]
    status: Status,
    first_convention_id: Option<String>,
    convention_id: Option<String>,
    award: Option<JsonText<Award>>,
    decp_published_on: Option<String>,
    sans_suite: Option<JsonText<sans_suite::SansSuite>>,
    lots_sans_suite: Option<JsonText<Vec<sans_suite::LotSansSuite>>>,
    version: i64,
    created_at: String,
    updated_at: String,
    #[sqlx(try_from = "String")]
    c_kind: OrgKind,
    c_code: String,
    c_name: String,
    members: i64,
}

fn from_row(row: &AnyRow) -> Result<Groupement, Problem> {
    let row = GroupementRow::from_row(row)?;
    let terms = row.terms.0;
    let mut g = Groupement {
        id: row.id,
        reference: row.reference,
        coordinator: OrgRef { id: row.coordinator_org_id, kind: row.c_kind, code: row.c_code, name: row.c_name },
        title: row.title,
        object: row.object,
        // As the convention constitutive states it (its signed term): in écoles whatever the members.
        cost_key_label: shares::describe(&terms.cost_key, costs::Establishments::Ecoles),
        terms,
        application_deadline: row.application_deadline,
        consultation_date: row.consultation_date,
        award_planned_date: row.award_planned_date,
        consultation_launched_at: row.consultation_launched_at,
        offers_deadline_at: row.offers_deadline_at,
        offers_deadline_warning: None,
        status_label: row.status.label().into(),
        status: row.status,
        convention_id: row.convention_id,
        first_convention_id: row.first_convention_id,
        award: row.award.map(|award| award.0),
        decp_published_on: row.decp_published_on,
        sans_suite: row.sans_suite.map(|s| s.0),
        lots_sans_suite: row.lots_sans_suite.map(|s| s.0).unwrap_or_default(),
        members: row.members,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    };
    g.offers_deadline_warning = g.deadline_warning();
    Ok(g)
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Groupement>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM groupements g JOIN orgs o ON o.id = g.coordinator_org_id WHERE g.id = $1 OR g.reference = $1");
    match sqlx::query(&sql).bind(id).fetch_optional(store.pool()).await? {
        Some(row) => Ok(Some(from_row(&row)?)),
        None => Ok(None),
    }
}

pub async fn must_get(store: &Store, id: &str) -> Result<Groupement, Problem> {
    get(store, id).await?.ok_or_else(|| not_found(id))
}

/// Filters of `GET /groupements`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct GroupementFilter {
    #[schemars(extend("enum" = ["open", "closed", "consultation", "awarded", "running", "ended"]))]
    pub status: Option<String>,
    /// Coordinator organisation (id or `kind:code`).
    pub coordinator: Option<String>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

/// One page of groupements, newest first (ids are UUIDv7); the coordinator filter as `actor`
/// names it (an ambiguous code narrowed to what it reads).
pub async fn list(store: &Store, actor: &Actor, filter: &GroupementFilter) -> Result<Page<Groupement>, Problem> {
    let size = page_size(filter.limit)?;
    let mut cond = Condition::default();
    if let Some(s) = filter.status.as_deref().filter(|s| !s.is_empty()) {
        let status = Status::parse(s).ok_or_else(|| {
            Problem::invalid_field("status", "valeurs : open, closed, consultation, awarded, running, ended")
        })?;
        cond.push("g.status = ?", &[status.as_str()]);
    }
    if let Some(key) = filter.coordinator.as_deref().filter(|s| !s.is_empty()) {
        let org = resolve_readable(store, actor, key).await?;
        if !coordinator_known_to(store, actor, &org).await? {
            return Err(missing_org(key));
        }
        cond.push("g.coordinator_org_id = ?", &[&org.id]);
    }
    if let Some(cursor) = filter.cursor.as_deref().filter(|s| !s.is_empty()) {
        cond.push("g.id < ?", &[cursor]);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM groupements g JOIN orgs o ON o.id = g.coordinator_org_id WHERE {} ORDER BY g.id DESC LIMIT {}",
        cond.sql(),
        size + 1
    );
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(items, size, |g| g.id.clone()))
}

/// Whether `actor` may be answered about `org` as a coordinator filter: it reads it, or `org`
/// coordinates a groupement (every reader lists every groupement with its coordinator). Any
/// other organisation answers as a key naming nothing: the filter tells no one what exists
/// outside its scope.
async fn coordinator_known_to(store: &Store, actor: &Actor, org: &Org) -> Result<bool, Problem> {
    if ent_platform::identity::authz::reads(store, actor, org).await? {
        return Ok(true);
    }
    let coordinates: Option<String> =
        sqlx::query_scalar("SELECT id FROM groupements WHERE coordinator_org_id = $1 LIMIT 1")
            .bind(&org.id)
            .fetch_optional(store.pool())
            .await?;
    Ok(coordinates.is_some())
}

/// Opens a groupement; the actor must coordinate for its coordinator organisation.
pub async fn create(ctx: &Ctx<'_>, input: NewGroupement) -> Result<Groupement, Problem> {
    use ent_platform::identity::authz;
    let expected = "le coordonnateur est un EPCI, un syndicat mixte, un département, une région ou une académie";
    let key = input.coordinator.as_str();
    // Every field's error in one round: the coordinator's with the others'.
    let mut checks = Checks::default();
    let coordinator = checks.collect(resolve_readable_field(ctx.store, ctx.actor, "coordinator", key).await)?;
    if let Some(coordinator) = &coordinator {
        // The scope before the kind: an organisation the actor cannot read is named like one that
        // does not exist (neither its name nor its kind is revealed).
        if !ctx.actor.is_admin() && !holds_role_at(ctx.actor, Role::Coordinateur, &coordinator.id) {
            if !authz::reads(ctx.store, ctx.actor, coordinator).await? {
                let missing = missing_org(key);
                return Err(Problem::invalid_field("coordinator", missing.detail));
            }
            return Err(authz::forbidden(format!(
                "il faut le rôle coordinateur auprès {} pour ouvrir un groupement en son nom",
                naming::de(&coordinator.name)
            )));
        }
        checks.collect(field_org_kind("coordinator", coordinator, &COORDINATOR_KINDS, expected))?;
    }
    let terms = Terms {
        lots: input.lots.unwrap_or_else(default_lots),
        bouquet: input.bouquet.unwrap_or_else(|| "socle-1d".into()),
        options: input.options,
        support: match input.support {
            Some(support) => support,
            None => ctx.support.n3_commitments(input.support_policy.as_deref())?,
        },
        cost_key: input.cost_key.unwrap_or_else(|| vec![KeyPart { basis: Basis::Accounts, weight: 100 }]),
        duration_months: input.duration_months.unwrap_or(36),
        duration_justification: input.duration_justification,
        common_expenses_cents: input.common_expenses_cents.unwrap_or(0),
        coordinator_share_percent: input.coordinator_share_percent.unwrap_or(0),
        procedure: input.procedure.unwrap_or_default(),
        estimated_amount_ht_cents: input.estimated_amount_ht_cents,
        maximum_margin_percent: input.maximum_margin_percent.unwrap_or(0),
    };
    checks.collect(check_support(&terms.support))?;
    let checked = checks.collect(check_fields(
        ctx.catalog,
        &input.title,
        &input.object,
        terms,
        &input.application_deadline,
        input.consultation_date.as_deref(),
        input.award_planned_date.as_deref(),
    ))?;
    checks.collect(check_deadline_ahead(&input.application_deadline, ctx.today()))?;
    let (launch, planned) = (input.consultation_date.as_deref(), input.award_planned_date.as_deref());
    checks.collect(check_planned_award(input.procedure.unwrap_or_default(), launch, planned))?;
    if let (Some(checked), Some(coordinator)) = (&checked, &coordinator) {
        let buyer = consultation::Buyer::of((coordinator.kind, &coordinator.name), []);
        checks.collect(check_procedure(&checked.terms, launch_day(checked, ctx.today()), buyer))?;
    }
    checks.finish()?;
    let (coordinator, checked) = (coordinator.expect("checked"), checked.expect("checked"));
    let id = new_id();
    let at = timestamp(ctx.now);
    let mut tx = ctx.store.begin_write().await?;
    let reference = next_reference(&mut tx, "GC", ctx.today().year()).await?;
    let insert = sqlx::query(
        "INSERT INTO groupements (id, reference, coordinator_org_id, title, object, terms, application_deadline, \
         consultation_date, award_planned_date, status, version, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', 1, $10, $11, $12)",
    )
    .bind(&id)
    .bind(&reference)
    .bind(&coordinator.id);
    checked.bind(insert).bind(&ctx.actor.name).bind(&at).bind(&at).execute(&mut *tx).await?;
    ctx.record(
        &mut tx,
        "groupements.create",
        &id,
        Some(&coordinator.id),
        json!({ "reference": reference, "title": checked.title, "deadline": checked.deadline }),
    )
    .await?;
    tx.commit().await?;
    must_get(ctx.store, &id).await
}

/// Whether `patch` moves the end of the convention constitutive (duration, or a date it is
/// computed from: the planned award, else the consultation, else the application deadline).
fn moves_convention_end(g: &Groupement, patch: &GroupementPatch) -> bool {
    let mut next = g.clone();
    if let Some(deadline) = &patch.application_deadline {
        next.application_deadline = deadline.clone();
    }
    if let Some(date) = &patch.consultation_date {
        next.consultation_date = Some(date.clone());
    }
    if let Some(date) = &patch.award_planned_date {
        next.award_planned_date = Some(date.clone());
    }
    if let Some(months) = patch.duration_months {
        next.terms.duration_months = months;
    }
    next.convention_end() != g.convention_end()
}

/// Edits the terms while the groupement is open or closed (If-Match).
pub async fn update(
    ctx: &Ctx<'_>,
    g: &Groupement,
    expected_version: i64,
    patch: GroupementPatch,
) -> Result<Groupement, Problem> {
    guard::require_coordinates(ctx.actor, g)?;
    if g.status == Status::Consultation && patch.only_offers_deadline() {
        let given = patch.offers_deadline.as_deref().unwrap_or_default();
        return change_offers_deadline(ctx, g, expected_version, given, patch.offers_deadline_reason.as_deref()).await;
    }
    conflict_unless(matches!(g.status, Status::Open | Status::Closed), || {
        format!(
            "un groupement {} ne se modifie plus : la consultation est lancée{}",
            g.status.label(),
            match g.status {
                Status::Consultation =>
                    " (seules la date limite de réception des offres et son motif se modifient encore)",
                _ => "",
            }
        )
    })?;
    if patch.offers_deadline.is_some() || patch.offers_deadline_reason.is_some() {
        return Err(Problem::invalid_field(
            "offers_deadline",
            "la date limite de réception des offres se fixe au lancement de la consultation (passage à l'état « en \
             consultation »)",
        ));
    }
    let rewrites_convention = patch.object.as_ref().is_some_and(|o| o.trim() != g.object)
        || patch.cost_key.as_ref().is_some_and(|k| *k != g.terms.cost_key)
        || patch.coordinator_share_percent.is_some_and(|p| p != g.terms.coordinator_share_percent)
        || moves_convention_end(g, &patch);
    if rewrites_convention {
        membership::check_convention_editable(ctx, g).await?;
    }
    if let Some(support) = &patch.support {
        check_support(support)?;
    }
    let old = &g.terms;
    let terms = Terms {
        lots: patch.lots.unwrap_or_else(|| old.lots.clone()),
        bouquet: patch.bouquet.unwrap_or_else(|| old.bouquet.clone()),
        options: patch.options.unwrap_or_else(|| old.options.clone()),
        support: patch.support.unwrap_or_else(|| old.support.clone()),
        cost_key: patch.cost_key.unwrap_or_else(|| old.cost_key.clone()),
        duration_months: patch.duration_months.unwrap_or(old.duration_months),
        duration_justification: patch.duration_justification.or_else(|| old.duration_justification.clone()),
        common_expenses_cents: patch.common_expenses_cents.unwrap_or(old.common_expenses_cents),
        coordinator_share_percent: patch.coordinator_share_percent.unwrap_or(old.coordinator_share_percent),
        procedure: patch.procedure.unwrap_or(old.procedure),
        estimated_amount_ht_cents: patch.estimated_amount_ht_cents.or(old.estimated_amount_ht_cents),
        maximum_margin_percent: patch.maximum_margin_percent.unwrap_or(old.maximum_margin_percent),
    };
    let consultation = patch.consultation_date.or_else(|| g.consultation_date.clone());
    let award_planned = patch.award_planned_date.or_else(|| g.award_planned_date.clone());
    let checked = check_fields(
        ctx.catalog,
        patch.title.as_deref().unwrap_or(&g.title),
        patch.object.as_deref().unwrap_or(&g.object),
        terms,
        patch.application_deadline.as_deref().unwrap_or(&g.application_deadline),
        consultation.as_deref(),
        award_planned.as_deref(),
    )?;
    if checked.deadline != g.application_deadline {
        check_deadline_ahead(&checked.deadline, ctx.today())?;
    }
    let procedure = checked.terms.procedure;
    if checked.consultation != g.consultation_date
        || checked.award_planned != g.award_planned_date
        || procedure != g.terms.procedure
    {
        check_planned_award(procedure, checked.consultation.as_deref(), checked.award_planned.as_deref())?;
    }
    check_procedure(&checked.terms, launch_day(&checked, ctx.today()), buyer(ctx.store, g).await?)?;
    let mut tx = ctx.store.begin_write().await?;
    let update = sqlx::query(
        "UPDATE groupements SET title = $1, object = $2, terms = $3, application_deadline = $4, consultation_date = $5, \
         award_planned_date = $6, version = version + 1, updated_at = $7 WHERE id = $8 AND version = $9",
    );
    update_versioned(&mut tx, checked.bind(update), ctx.now, &g.id, expected_version, g.version).await?;
    let before = json!({
        "title": g.title, "object": g.object, "terms": g.terms, "application_deadline": g.application_deadline,
        "consultation_date": g.consultation_date, "award_planned_date": g.award_planned_date,
    });
    let after = json!({
        "title": checked.title, "object": checked.object, "terms": checked.terms,
        "application_deadline": checked.deadline, "consultation_date": checked.consultation,
        "award_planned_date": checked.award_planned,
    });
    let summary = json!({ "title": checked.title, "changes": audit::changes(&before, &after) });
    ctx.record(&mut tx, "groupements.update", &g.id, Some(&g.coordinator.id), summary).await?;
    tx.commit().await?;
    let updated = must_get(ctx.store, &g.id).await?;
    // The convention constitutive states the object, the cost key and its end: keep it in step.
    let coordinator_part_changed = updated.terms.coordinator_share_percent != g.terms.coordinator_share_percent;
    let end_changed = updated.convention_end() != g.convention_end();
    if updated.convention_id.is_some()
        && (updated.object != g.object
            || updated.cost_key_label != g.cost_key_label
            || coordinator_part_changed
            || end_changed)
    {
        membership::refresh_convention(ctx, &updated).await?;
    }
    Ok(updated)
}

/// Sets the status inside a transaction, checking the version it was read at.
pub async fn set_status(tx: &mut Tx, g: &Groupement, to: Status, now: DateTime<Utc>) -> Result<(), Problem> {
    let done = sqlx::query(
        "UPDATE groupements SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4",
    )
    .bind(to.as_str())
    .bind(timestamp(now))
    .bind(&g.id)
    .bind(g.version)
    .execute(&mut **tx)
    .await?;
    expect_version(&done, g.version)?;
    Ok(())
}

/// Why `transition` refuses `awarded`.
const AWARD_ROUTE: &str = "l'attribution se fait par POST /groupements/{id}/award, avec le titulaire et le montant";

/// A status change other than the award: close, reopen, consult (with the `offers_deadline`,
/// required then and only then: [`launch_deadline`]), run, end.
pub async fn transition(
    ctx: &Ctx<'_>,
    g: &Groupement,
    to: Status,
    reason: Option<&str>,
    offers_deadline: Option<&str>,
) -> Result<Groupement, Problem> {
    guard::require_coordinates(ctx.actor, g)?;
    conflict_unless(to != Status::Awarded, || AWARD_ROUTE)?;
    conflict_unless(g.status.can_move_to(to), || {
        format!("un groupement {} ne peut pas passer à l'état « {} »", g.status.label(), to.label())
    })?;
    let reason = match to {
        Status::Ended => ending::resiliation_reason(g, ctx.today(), reason)?,
        _ => None,
    };
    conflict_unless(!(to == Status::Consultation && g.members == 0), || {
        "aucun membre accepté : la consultation ne peut pas être lancée"
    })?;
    let deadline = match (to, offers_deadline) {
        (Status::Consultation, given) => {
            // Launched today: the value of the need is estimated now, against today's threshold.
            check_procedure(&g.terms, ctx.today(), buyer(ctx.store, g).await?)?;
            require_constituted(ctx, g, "la consultation ne peut pas être lancée").await?;
            Some(consultation::stored_deadline(launch_deadline(ctx, g.terms.procedure, given)?))
        }
        (_, Some(given)) if !given.trim().is_empty() => return Err(Problem::invalid_field(
            "offers_deadline",
            "la date limite de réception des offres se fixe au lancement de la consultation (passage à l'état « en \
                 consultation »), puis se modifie avec un motif tant que la consultation est en cours",
        )),
        _ => None,
    };
    let mut tx = ctx.store.begin_write().await?;
    set_status(&mut tx, g, to, ctx.now).await?;
    if let Some(deadline) = &deadline {
        sqlx::query("UPDATE groupements SET consultation_launched_at = $1, offers_deadline_at = $2 WHERE id = $3")
            .bind(timestamp(ctx.now))
            .bind(deadline)
            .bind(&g.id)
            .execute(&mut *tx)
            .await?;
    }
    let mut summary = json!({ "from": g.status.as_str(), "to": to.as_str(), "reason": reason });
    if let Some(deadline) = deadline {
        summary["offers_deadline"] = json!(deadline);
    }
    ctx.record(&mut tx, "groupements.transition", &g.id, Some(&g.coordinator.id), summary).await?;
    if to == Status::Ended {
        ending::notify(&mut tx, ctx.store, g, reason.as_deref(), ctx.now).await?;
    }
    tx.commit().await?;
    if to == Status::Ended {
        // Right after: the tenants its accord-cadre kept from later awards pass to their titulaire
        // now; what fails here is the daily `groupements-handover` job's to finish.
        handover::after_ending(ctx.store, ctx.catalog, ctx.actor, ctx.now, &g.reference).await;
    }
    let launched = must_get(ctx.store, &g.id).await?;
    if to == Status::Consultation && g.sans_suite.is_some() {
        // A relaunch publishes its own RC and AE, with its offers deadline (README « Sans suite »).
        for kind in documents::RELAUNCH_PIECES {
            documents::generate(ctx, &launched, kind).await?;
        }
    }
    Ok(launched)
}

/// The offers deadline given at the launch of a consultation by `procedure`, today: required,
/// to come, after the launch day and, for an open call, past its minimum délai
/// ([`consultation::check_offers_deadline`]); 422 on `offers_deadline` otherwise.
fn launch_deadline(
    ctx: &Ctx<'_>,
    procedure: consultation::Procedure,
    given: Option<&str>,
) -> Result<DateTime<Utc>, Problem> {
    let refused = |message: String| Problem::invalid_field("offers_deadline", message);
    let Some(given) = given.filter(|v| !v.trim().is_empty()) else {
        let first = consultation::first_offers_day(ctx.today(), procedure);
        return Err(refused(format!(
            "la date et l'heure limites de réception des offres sont obligatoires pour lancer la consultation : le \
             règlement de la consultation les publie (article 10) et les délais de la procédure en partent ; \
             indiquez-les, heure de Paris (le {} au plus tôt pour {} lancée aujourd'hui)",
            french_date(&first.to_string()),
            procedure.with_article()
        )));
    };
    let at = consultation::parse_offers_deadline(given).map_err(refused)?;
    consultation::check_offers_deadline(at, ctx.today(), ctx.now, procedure).map_err(refused)?;
    Ok(at)
}

/// Moves the offers deadline of a consultation running (If-Match), for `reason` (required,
/// audited with both deadlines): to come, after the launch day and, for an open call, past its
/// minimum délai; refused (409) once the deadline recorded has passed — the offers are in.
/// Also records the deadline of a consultation launched before the platform asked for it.
async fn change_offers_deadline(
    ctx: &Ctx<'_>,
    g: &Groupement,
    expected_version: i64,
    given: &str,
    reason: Option<&str>,
) -> Result<Groupement, Problem> {
    if let Some(current) = g.offers_deadline().filter(|at| *at <= ctx.now) {
        return Err(Problem::conflict(format!(
            "la date limite de réception des offres ({}, heure de Paris) est passée : les offres sont reçues, elle ne se \
             modifie plus",
            french_moment(&consultation::stored_deadline(current))
        )));
    }
    let mut checks = Checks::default();
    let launched = g.consultation_launched_on().unwrap_or(ctx.today());
    let at = checks.check("offers_deadline", consultation::parse_offers_deadline(given));
    if let Some(at) = at {
        let checked = consultation::check_offers_deadline(at, launched, ctx.now, g.terms.procedure);
        checks.check("offers_deadline", checked);
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let reason = match reason {
        Some(r) => Some(checks.text("offers_deadline_reason", r, 2000)),
        None => {
            checks.fail(
                "offers_deadline_reason",
                "motif obligatoire pour modifier la date limite de réception des offres d'une consultation en cours \
                 (par exemple : report après une modification du dossier de consultation, article R. 2151-4 du code de \
                 la commande publique)",
            );
            None
        }
    };
    checks.finish()?;
    let (at, reason) = (consultation::stored_deadline(at.expect("checked")), reason.expect("checked"));
    let mut tx = ctx.store.begin_write().await?;
    let update = sqlx::query(
        "UPDATE groupements SET offers_deadline_at = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4",
    )
    .bind(&at);
    update_versioned(&mut tx, update, ctx.now, &g.id, expected_version, g.version).await?;
    let summary = json!({ "from": g.offers_deadline_at, "to": at, "reason": reason });
    ctx.record(&mut tx, "groupements.offers_deadline", &g.id, Some(&g.coordinator.id), summary).await?;
    tx.commit().await?;
    must_get(ctx.store, &g.id).await
}

/// Refuses (409) what needs the groupement constituted — consultation, award — while its
/// convention constitutive is not signed by every party (active), or while the groupement's
/// accepted members or signed terms differ from that convention's (a member accepted, or a term
/// edited, since it took effect: the avenant that carries it is not in force). The members bought
/// for are the parties of the convention in force (art. L. 2113-6 du code de la commande publique).
pub async fn require_constituted(ctx: &Ctx<'_>, g: &Groupement, what: &str) -> Result<(), Problem> {
    let conv = match constitutive_id(ctx.store, g).await? {
        Some(id) => get_convention(ctx.store, ctx.models, &id).await?,
        None => None,
    };
    let Some(conv) = conv else {
        return Err(Problem::conflict(format!(
            "le groupement n'est pas constitué : aucune convention constitutive ; {what}"
        )));
    };
    conflict_unless(conv.status == ConventionStatus::Active, || {
        format!(
            "le groupement n'est pas constitué : sa convention constitutive {} n'est pas signée par toutes les \
             parties (état « {} ») ; {what}",
            conv.reference,
            conv.status.label()
        )
    })?;
    let unsigned = membership::unsigned_changes(ctx.store, g, &conv).await?;
    if unsigned.is_empty() {
        return Ok(());
    }
    let avenant = match avenant_in_preparation(ctx.store, &conv.id).await? {
        Some(id) => sqlx::query_scalar("SELECT reference FROM conventions WHERE id = $1")
            .bind(id)
            .fetch_optional(ctx.store.pool())
            .await?
            .map(|reference: String| format!("l'avenant {reference}")),
        None => None,
    };
    Err(Problem::conflict(format!(
        "la convention constitutive {} en vigueur ne porte pas le groupement tel qu'il est : {} ; faites signer {} par \
         toutes les parties (article 10 : toute modification fait l'objet d'un avenant approuvé par l'ensemble des \
         membres) ; {what}",
        conv.reference,
        unsigned.join(" ; "),
        avenant.as_deref().unwrap_or("un avenant")
    )))
}

/// The id of the convention constitutive of `g` as in force: in the lineage of the one it links
/// (same `root_id`), the last avenant that took effect (in force, or expired or terminated since;
/// one that amends a convention replaced, `amended`), else the lineage's first convention. An
/// avenant in preparation — a member's joining, drafted, in signature or refused back to draft —
/// is never read: consultation, award and edits follow the convention the parties signed until
/// it takes effect ([`avenant_in_preparation`] is the one a change edits). Read from the store
/// now (`g.convention_id` is the same as of when `g` was read).
pub async fn constitutive_id(store: &Store, g: &Groupement) -> Result<Option<String>, Problem> {
    let Some(linked) = &g.first_convention_id else { return Ok(None) };
    let in_force: Option<String> =
        sqlx::query_scalar(concat!("SELECT ", in_force_of!("$1"))).bind(linked).fetch_one(store.pool()).await?;
    Ok(Some(in_force.unwrap_or_else(|| linked.clone())))
}

/// The avenant of the convention `id` in preparation (drafted or in signature, a refused one back
/// in draft included), if any: what a change of the groupement's members or terms edits.
pub async fn avenant_in_preparation(store: &Store, id: &str) -> Result<Option<String>, Problem> {
    let pending = sqlx::query_scalar(
        "SELECT id FROM conventions WHERE amends_id = $1 AND status IN ('draft', 'in_signature') \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    Ok(pending)
}

/// The coordinator organisation of `g`.
pub async fn coordinator_org(store: &Store, g: &Groupement) -> Result<Org, Problem> {
    get_org(store, &g.coordinator.id).await?.ok_or_else(|| not_found(&g.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planned_award_waits_for_the_open_calls_delais_from_the_planned_launch() {
        let refused =
            |c: &str, a: &str| check_planned_award(OPEN, Some(c), Some(a)).err().map(|p| p.errors[0].message.clone());
        const OPEN: consultation::Procedure = consultation::Procedure::AppelOffresOuvert;
        // 5 December + 30 full days of offers (the deadline's rule: 5 January) + 11 of standstill:
        // 16 January, not the 20th the 35 days of R. 2161-2 alone would give.
        assert_eq!(refused("2026-12-05", "2027-01-16"), None);
        let said = refused("2026-12-05", "2027-01-15").expect("refused");
        assert!(said.starts_with("l'accord-cadre ne pourra pas être notifié avant le 16 janvier 2027"), "{said}");
        assert!(said.contains("article R. 2161-2") && said.contains("article R. 2182-1"), "{said}");
        assert!(said.contains("au moins 30 jours francs") && said.contains("R. 2161-3, 2°"), "{said}");
        // Unplanned, malformed or inverted dates are another check's.
        assert_eq!(check_planned_award(OPEN, None, Some("2027-01-01")).ok(), Some(()));
        // A procédure adaptée: offers the day after the launch at the earliest, judged after them.
        let adapted = consultation::Procedure::ProcedureAdaptee;
        assert_eq!(check_planned_award(adapted, Some("2026-12-05"), Some("2026-12-07")).ok(), Some(()));
        let said =
            check_planned_award(adapted, Some("2026-12-05"), Some("2026-12-06")).unwrap_err().errors[0].message.clone();
        assert!(
            said.contains("avant le 7 décembre 2026") && said.contains("la procédure adaptée dont le lancement"),
            "{said}"
        );
        assert!(!said.contains("appel d'offres"), "{said}");
        assert_eq!(refused("2026-12-05", "2026-12-01"), None);
        assert_eq!(refused("2026-12-05", "pas une date"), None);
    }

    #[test]
    fn the_status_machine_only_moves_forward_except_reopening() {
        assert!(Status::Open.can_move_to(Status::Closed));
        assert!(Status::Closed.can_move_to(Status::Open));
        assert!(Status::Closed.can_move_to(Status::Consultation));
        assert!(Status::Consultation.can_move_to(Status::Awarded));
        assert!(Status::Awarded.can_move_to(Status::Running));
        assert!(Status::Running.can_move_to(Status::Ended));
        assert!(Status::Awarded.can_move_to(Status::Ended), "a notified accord-cadre may be résilié before running");
        assert!(!Status::Consultation.can_move_to(Status::Ended));
        assert!(!Status::Open.can_move_to(Status::Consultation));
        assert!(!Status::Consultation.can_move_to(Status::Open));
        assert!(!Status::Ended.can_move_to(Status::Running));
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert!(!s.can_move_to(s));
        }
    }
}
