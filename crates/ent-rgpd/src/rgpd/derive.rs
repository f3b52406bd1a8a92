//! The pure derivation of a register: live tenants × catalog × conventions'
//! RGPD roles × organisations (contacts, countries, contracts) → Art. 30(1)
//! entries of the organisation as controller (or joint controller) and Art. 30(2)
//! entries of the organisation as processor. No I/O: [`super::load`] builds the
//! [`World`], this module only reads it.

use ent_conventions::conventions::processing::{sensitive_article, sensitive_note, without_article};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::naming;
use ent_platform::catalog::{sensitive_data_has_its_condition, Catalog, ProcessorRole, Service};
use ent_platform::contracts::ClausesVersion;
use ent_platform::registry::EtabType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Version of the JSON schema of [`Register`].
pub const SCHEMA: &str = "entcp.rgpd.register/v1";

/// EU member states and the three other EEA states (Iceland, Liechtenstein, Norway), ISO
/// 3166 alpha-2: the GDPR applies in the EEA (EEA agreement), so a processor elsewhere means
/// a transfer to a third country (Art. 44).
pub const EU_COUNTRIES: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV",
    "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO",
];

/// Persons concerned (accounts) from which a processing is treated as large-scale (DPIA criterion).
pub const LARGE_SCALE_ACCOUNTS: i64 = 5_000;

/// Établissements from which a processing is treated as large-scale (its geographical extent).
pub const LARGE_SCALE_ESTABLISHMENTS: usize = 50;

/// The threshold of the large-scale criterion and its source, as the AIPD line states it.
pub const LARGE_SCALE_THRESHOLD: &str = "seuil retenu : 5\u{a0}000 personnes concernées ou 50 établissements, \
     appréciation du critère « traitement à grande échelle » des lignes directrices du G29 sur l'AIPD \
     (WP248 rév. 01 : nombre de personnes concernées, étendue géographique), reprises par la CNIL";

/// The large-scale basis when no tenant of the entry has an account figure: never « 0 comptes ».
pub const NOT_ASSESSABLE: &str = "non évaluable : aucun nombre de comptes connu pour les ENT déployés";

/// Where the persons concerned of the large-scale line come from ([`Scale::line`]).
const DEPLOYED_ACCOUNTS: &str =
    "comptes des élèves, personnels et familles des ENT déployés : nombre de comptes de chaque tenant";

/// The wordings registers derived before used for what they say now: (then, now). A snapshot
/// taken before a derivation reworded a line reads, against one taken after, as unchanged
/// (`snapshots::same_meaning`, with the grouping of figures and « établissement(s) »): its
/// DPOs are not told of a change that is none. Add a pair when a derivation rewords, never
/// when what a line says changes.
pub(crate) const REWORDED: &[(&str, &str)] = &[
    // Session 41, the scale (`Scale`): a tenant's own figure, the only source then named
    // « capacité du tenant », is its deployed accounts.
    ("comptes déclarés des élèves, personnels et familles : capacité du tenant", DEPLOYED_ACCOUNTS),
    ("non évaluable : aucun nombre de comptes déclaré (convention, groupement ou capacité du tenant)", NOT_ASSESSABLE),
];

/// What the figures declared for more than the deployed ENT are ([`Forecast`]), as the
/// large-scale line labels them: shown, never judged on.
const FORECAST: &str = "prévision déclarée, pour tous les établissements couverts, qu'un ENT y soit déployé ou non, \
     non retenue pour apprécier le critère";

/// The recipients article 4 of the arrêté du 30 novembre 2006 modifié adds to every ENT
/// processing, beyond the users a service's own recipients name.
pub const ARRETE_RECIPIENTS: [&str; 2] = [
    "Personnels de la collectivité de rattachement et des services académiques chargés de l'administration \
     et de l'assistance de l'ENT, dans la limite de leurs attributions (article 4 de l'arrêté du 30 novembre 2006 modifié)",
    "Autorités et organismes habilités par un texte à en connaître (corps d'inspection, juridictions), sur demande \
     (article 4 de l'arrêté du 30 novembre 2006 modifié)",
];

/// What the vendor of a market awarded by a groupement de commandes must do under its CCTP
/// (`templates/documents/groupements/cctp.txt`), stated as its obligations: the platform deploys
/// none of them (the technical measures are those [`LiveTenant::security`] reads from the
/// rendered objects).
pub const CCTP_OBLIGATIONS: [&str; 3] = [
    "Suppression des comptes au plus tard trois mois après la fin du besoin (arrêté du 30 novembre 2006 modifié) : \
     à la charge du titulaire selon le CCTP, art. 6",
    "Sauvegarde des données au moins une fois par jour dans un second centre de données de l'Union européenne, \
     restauration testée chaque année : à la charge du titulaire selon le CCTP, art. 9",
    "Test d'intrusion annuel par un prestataire qualifié PASSI et audits de sécurité : à la charge du titulaire \
     selon le CCTP, art. 10",
];

/// The contacts of an organisation that the registry does not hold (`rgpd_profiles`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, sqlx::FromRow)]
pub struct Profile {
    #[schemars(length(max = 500))]
    pub head_name: String,
    #[schemars(length(max = 500))]
    pub head_title: String,
    #[schemars(length(max = 500))]
    pub address: String,
    #[schemars(length(max = 500))]
    pub phone: String,
    pub email: String,
    #[schemars(length(max = 500))]
    pub dpo_name: String,
    pub dpo_email: String,
    #[schemars(length(max = 500))]
    pub dpo_phone: String,
    #[schemars(length(max = 500))]
    pub dpo_address: String,
    /// Representative (Art. 27) when the organisation is established outside the EU; empty otherwise.
    #[schemars(length(max = 500))]
    pub representative: String,
    /// Organisational measures added to the platform's technical ones, one per line.
    #[schemars(length(max = 5000))]
    pub security_measures: String,
    /// For a processor outside the EEA, what a transfer to it rests on: `adequacy` (Art. 45),
    /// `scc` (standard contractual clauses, Art. 46(2)(c)), `bcr` (Art. 47); empty when none.
    #[serde(default)]
    pub transfer_safeguard: String,
    /// The decision, clauses or rules that safeguard cites (title, date, where they are kept).
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub transfer_safeguard_reference: String,
}

/// The safeguards a transfer outside the EEA may rest on: the value, what the register says.
pub const TRANSFER_SAFEGUARDS: [(&str, &str); 3] = [
    ("adequacy", "décision d'adéquation de la Commission européenne (article 45 du RGPD)"),
    ("scc", "clauses contractuelles types de la Commission européenne (article 46.2.c du RGPD)"),
    ("bcr", "règles d'entreprise contraignantes approuvées (articles 46.2.b et 47 du RGPD)"),
];

/// The safeguard a processor's profile records for transfers to it, with its reference;
/// empty when none is recorded.
pub fn safeguard_text(profile: &Profile) -> String {
    TRANSFER_SAFEGUARDS
        .iter()
        .find(|(value, _)| *value == profile.transfer_safeguard)
        .map(|(_, label)| format!("{label} : {}", profile.transfer_safeguard_reference.trim()))
        .unwrap_or_default()
}

/// An organisation as the derivation knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgFacts {
    pub id: String,
    pub kind: OrgKind,
    pub code: String,
    pub name: String,
    pub etab_type: Option<EtabType>,
    /// A private school (sous contrat): its own controller, not the IA-DASEN's.
    pub private: bool,
    pub departement_code: Option<String>,
    pub academie_code: Option<String>,
    pub email: Option<String>,
    /// ISO 3166 alpha-2.
    pub country: String,
    pub profile: Option<Profile>,
    /// The pupils the annuaire counts for it (an établissement), when it does.
    pub pupils: Option<i64>,
}

impl OrgFacts {
    /// An organisation known by its identity only: public, in France, without a département or
    /// académie code, an e-mail, a profile or a count of pupils.
    pub fn identity_only(id: &str, kind: OrgKind, code: &str, name: String) -> OrgFacts {
        OrgFacts {
            id: id.to_string(),
            kind,
            code: code.to_string(),
            name,
            etab_type: None,
            private: false,
            departement_code: None,
            academie_code: None,
            email: None,
            country: "FR".into(),
            profile: None,
            pupils: None,
        }
    }
}

/// The RGPD roles of a school under its active convention.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub convention: String,
    pub controller: String,
    pub joint_controllers: Vec<String>,
    pub processors: Vec<String>,
}

/// A tenant that really runs (provisioning, active or suspended).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveTenant {
    pub slug: String,
    /// The organisation that holds it.
    pub org: String,
    /// The établissements it serves (one, or a commune's écoles).
    pub schools: Vec<String>,
    /// Catalog codes of the services it runs: what was last applied to it once recorded, else
    /// its resolved bouquet and options (`load::running_services`; `catalog_note` when the
    /// catalog no longer resolves them).
    pub services: Vec<String>,
    /// Catalog codes of services removed from it whose data it still holds until its purge
    /// (`tenants.retained_services`): still processed (stored), no longer running.
    pub retained: Vec<String>,
    /// In French, when the catalog entry of its offer is gone: how `services` were known.
    pub catalog_note: Option<String>,
    /// Archived: the French day from which its data may be purged (`tenants.purge_due_at`).
    /// Its services no longer run; it only keeps their data until then.
    pub purge_from: Option<String>,
    /// Its accounts (`spec.accounts`): the persons concerned by the ENT really deployed; 0 when
    /// unknown (the scale is then « non évaluable » on it).
    pub accounts: i64,
    /// The account figures declared for its schools beyond it ([`Forecast`]): shown as
    /// forecasts, never the scale.
    pub forecasts: Vec<Forecast>,
    pub aaf: bool,
    pub vendor: Option<String>,
    pub host: Option<String>,
    /// The security measures its rendered objects put in place (`provisioning::security_measures`).
    pub security: Vec<String>,
}

#[cfg(test)]
impl LiveTenant {
    /// A tenant of `org` for `schools` running `services`, its capacity (`accounts`) the figure
    /// known; without vendor, host, security measure or service retained.
    pub(crate) fn running(slug: &str, org: &str, schools: &[&str], services: &[&str], accounts: i64) -> LiveTenant {
        let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
        LiveTenant {
            slug: slug.into(),
            org: org.into(),
            schools: strings(schools),
            services: strings(services),
            retained: vec![],
            catalog_note: None,
            purge_from: None,
            accounts,
            forecasts: Vec::new(),
            aaf: false,
            vendor: None,
            host: None,
            security: vec![],
        }
    }
}

/// An account figure declared for more than a deployed ENT: the « accounts » of a convention
/// (a total for every établissement it covers, ENT or not) or a groupement member's declared
/// needs. A register shows it as a forecast and never judges the large scale on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// What counts it once per entry, however many tenants it is declared for: the
    /// convention's reference, the groupement and member.
    pub key: String,
    /// In French: « convention CONV-…, pour 42 établissements couverts », « groupement GC-…,
    /// besoins déclarés ».
    pub source: String,
    pub accounts: i64,
}

/// A processing contract (`processor_contracts`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContractFact {
    pub processor: String,
    pub client: String,
    pub reference: String,
    pub title: String,
    pub art28: bool,
    /// For a sub-processor: the processor it works for.
    pub parent: Option<String>,
    /// Recorded by the award of a groupement's market: its CCTP binds the processor.
    pub cctp: bool,
    /// The Art. 28 annex of a convention binding the processor that is its party
    /// ([`World::annex`]), not a row of `processor_contracts`.
    pub annex: bool,
    /// The catalog codes of the services its Art. 28 description covers, when the platform knows
    /// it: a groupement's market covers its bouquet and options (CCAP article 9.1,
    /// `Catalog::market_services`), a convention the services its signed annex lists
    /// ([`World::annexes`]). `None`: a contract its client declared, whose description is not
    /// recorded here, or a convention without frozen text, taken to cover the chain it binds.
    pub services: Option<Vec<String>>,
    /// A groupement's market: the CCAP version whose article 9 holds its Art. 28 clauses
    /// (`contracts::in_force_at`, as the contracts export lists it); `None` otherwise.
    pub ccap: Option<Ccap>,
}

impl ContractFact {
    /// Whether its Art. 28 description covers the service `code`.
    pub fn covers(&self, code: &str) -> bool {
        self.services.as_ref().is_none_or(|services| services.iter().any(|s| s == code))
    }

    /// Why it binds nobody for a service it does not cover, `what` naming that service: « le
    /// marché GC-2026-000002 ne couvre pas le service « Visioconférence » ».
    fn leaves_out(&self, what: &str) -> String {
        let kind = match (self.annex, self.cctp) {
            (true, _) => "l'annexe de l'article 28 de la convention",
            (false, true) => "le marché",
            (false, false) => "le contrat",
        };
        format!("{kind} {} ne couvre pas {what}", self.reference)
    }
}

impl World {
    /// The Art. 28 annex of the convention `reference` as a contract binding the processor that
    /// is its party: it covers the services its signed text lists ([`World::annexes`]), all
    /// those of its chains when its text was never frozen.
    pub fn annex(&self, reference: &str) -> ContractFact {
        ContractFact {
            processor: String::new(),
            client: String::new(),
            reference: reference.to_string(),
            title: "Convention ENT (rôles RGPD, article 28)".into(),
            art28: true,
            parent: None,
            cctp: false,
            annex: true,
            services: self.annexes.get(reference).cloned(),
            ccap: None,
        }
    }
}

/// Everything a derivation reads.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub orgs: HashMap<String, OrgFacts>,
    /// By établissement id.
    pub assignments: HashMap<String, Assignment>,
    pub tenants: Vec<LiveTenant>,
    pub contracts: Vec<ContractFact>,
    /// By convention reference: the catalog codes of the services its signed Art. 28 annex lists
    /// (`load::signed_annexes`), those it binds its processor for ([`World::annex`]). A
    /// convention without frozen text is not here.
    pub annexes: HashMap<String, Vec<String>>,
    /// By établissement id without a convention in force: the RGPD roles of the convention
    /// signed for it that will take effect, with its first day in French (« 4 janvier 2027 »).
    pub ahead: HashMap<String, (Assignment, String)>,
    /// DSDEN (or académie) id by département code: the default controller of écoles.
    pub dsden_by_departement: HashMap<String, String>,
    /// When each entry of the register was first recorded and last changed (key → (first, last, content hash)).
    pub history: HashMap<String, (String, String, String)>,
    /// Months an archived tenant's data are kept before the purge (`provisioning.retention_months`).
    pub purge_after_months: u32,
    /// The CCAP versions of the groupements whose markets `contracts` cite (and of any other the
    /// load was asked for, `load::world_citing`), by groupement, in the order of their numbers.
    pub ccaps: HashMap<String, Vec<ClausesVersion>>,
}

/// An organisation as a register shows it, with its contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub id: String,
    pub kind: String,
    pub code: String,
    pub name: String,
    pub country: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    /// Who heads it (name and title).
    pub head: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dpo {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DataCategory {
    pub category: String,
    /// Special-category data (art. 9) or offences (art. 10), or data that may reveal them.
    pub sensitive: bool,
    /// Highly personal data (WP248): communications, images and voice, assessments...
    #[serde(default)]
    pub highly_personal: bool,
    pub retention: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContractRef {
    pub reference: String,
    pub title: String,
    pub art28: bool,
    /// A groupement's market: the CCAP version holding its clauses. Absent otherwise, and in
    /// registers derived before it was cited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ccap: Option<Ccap>,
}

/// What a register says of a processor that no contract with Art. 28 clauses binds.
pub const NO_CONTRACT: &str = "AUCUN CONTRAT art. 28";

/// The CCAP version whose article 9 is the Art. 28 contract of a groupement's market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ccap {
    pub version: i64,
    pub sha256: String,
}

impl ContractRef {
    /// The contract as it was covered (`c`).
    fn of(c: &ContractFact) -> ContractRef {
        ContractRef { reference: c.reference.clone(), title: c.title.clone(), art28: c.art28, ccap: c.ccap.clone() }
    }

    /// Its clauses as every register cites them: « clauses art. 28 », a market's with the CCAP
    /// version that holds them (« clauses art. 28 : article 9 du CCAP, version 2, SHA-256 … »), or
    /// « SANS clauses art. 28 ».
    pub fn clauses(&self) -> String {
        match (&self.ccap, self.art28) {
            (_, false) => "SANS clauses art. 28".into(),
            (Some(ccap), true) => {
                format!("clauses art. 28 : article 9 du CCAP, version {}, SHA-256 {}", ccap.version, ccap.sha256)
            }
            (None, true) => "clauses art. 28".into(),
        }
    }

    /// « contrat M-2026-01 (clauses art. 28) », « contrat X SANS clauses art. 28 »: how a
    /// register's line of a processor cites the contract binding it ([`ContractRef::clauses`]).
    pub fn citation(&self) -> String {
        match self.art28 {
            true => format!("contrat {} ({})", self.reference, self.clauses()),
            false => format!("contrat {} {}", self.reference, self.clauses()),
        }
    }
}

/// One link of the processor chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessorLink {
    pub org: Actor,
    /// « sous-traitant (collectivité) », « éditeur », « hébergeur », « sous-traitant ultérieur ».
    pub role: String,
    /// Name of the organisation it acts for.
    pub acts_for: String,
    pub contract: Option<ContractRef>,
    /// False when no contract with Art. 28 clauses binds it: the entry is flagged.
    pub art28_contract: bool,
    /// When a contract binds it whose Art. 28 description leaves the entry's service out (a
    /// groupement's market whose bouquet and options lack it): why it is under no contract for
    /// this service (« le marché GC-… ne couvre pas le service « Visioconférence » »), `contract`
    /// being none. Empty otherwise, and in registers derived before coverage was checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uncovered: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Transfer {
    pub recipient: String,
    pub country: String,
    pub safeguard: String,
    pub documentation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Establishment {
    pub uai: String,
    pub name: String,
    pub tenant: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dpia {
    pub required: bool,
    /// Neither required nor not: one criterion is met and the large scale, which would be
    /// the second, cannot be judged for want of an account figure (« à déterminer »).
    #[serde(default)]
    pub undetermined: bool,
    /// The WP248 criteria met, named.
    pub reasons: Vec<String>,
    /// The large-scale criterion's line: its verdict (« critère rempli », « non rempli », « non
    /// évaluable »), the figures it was judged on (persons concerned from the declared accounts
    /// and their sources — « non évaluable », never « 0 », when none is known —, pupils from the
    /// annuaire, établissements) and the threshold with its source ([`LARGE_SCALE_THRESHOLD`]).
    /// Before the verdict was stated, the account sources only (kept as stored).
    #[serde(default)]
    pub scale: String,
    /// When an AIPD is required, what requires it (articles 35.1 and, for sensitive data on a
    /// large scale, 35.3.b of the RGPD; [`dpia_basis`]). Empty otherwise, and in registers derived
    /// before it was stated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis: String,
}

/// An Art. 30(1) entry: one processing activity of one controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// Stable key `controller-id:service-code`.
    pub key: String,
    /// Human reference, e.g. `0940198E-visio`.
    pub reference: String,
    pub name: String,
    pub service: String,
    pub controller: Actor,
    pub joint_controllers: Vec<Actor>,
    /// The controller's representative (Art. 27), or « sans objet ».
    pub representative: String,
    pub dpo: Dpo,
    /// The main purpose first, then the sub-purposes.
    pub purposes: Vec<String>,
    pub data_subjects: Vec<String>,
    pub minors: bool,
    pub personal_data: Vec<DataCategory>,
    /// Art. 9/10 data (or data that may reveal it).
    pub sensitive_data: bool,
    /// Highly personal data in the sense of WP248, apart from art. 9/10 data.
    #[serde(default)]
    pub highly_personal_data: bool,
    /// The service's recipients, the arrêté's (article 4), then the processors.
    pub recipients: Vec<String>,
    /// Empty: « aucun ».
    pub transfers: Vec<Transfer>,
    pub retention: String,
    pub security_measures: Vec<String>,
    pub legal_basis: String,
    pub data_source: String,
    pub processors: Vec<ProcessorLink>,
    pub establishments: Vec<Establishment>,
    /// The accounts of its tenants; 0 with `dpia.scale` « non évaluable » when unknown.
    pub accounts: i64,
    pub conventions: Vec<String>,
    /// The impact assessment of the ENT this service is part of (one processing, arrêté du 30
    /// novembre 2006 modifié): the verdict of [`Processing::dpia`], the same on every service of
    /// the controller's ENT. Before it was stated at the ENT's level, the service's own (kept as stored).
    pub dpia: Dpia,
    /// The reference of the [`Processing`] whose AIPD covers this service (« 94-ENT »); empty in
    /// registers derived before the AIPD was stated at the ENT's level.
    #[serde(default)]
    pub dpia_covered_by: String,
    pub first_recorded: String,
    pub last_changed: String,
    /// Flags a DPO must look at (processor without Art. 28 contract, no active convention).
    pub warnings: Vec<String>,
    /// Mandatory fields that are missing, named in French; empty when the entry is complete.
    pub missing: Vec<String>,
}

/// An Art. 30(2) entry: what the organisation does as processor for one controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessorEntry {
    /// Stable key `controller-id`.
    pub key: String,
    pub controller: Actor,
    pub controller_dpo: Dpo,
    /// The organisation's roles in the chain (éditeur, hébergeur...).
    pub roles: Vec<String>,
    /// Categories of processing carried out for the controller.
    pub processing: Vec<String>,
    pub establishments: usize,
    /// The contract it works under for the controller (the first, in chain order, when several).
    pub contract: Option<ContractRef>,
    /// When it works for the controller under several contracts or for several clients (an
    /// éditeur working for several communes of the DSDEN: one contract a commune, or one market for
    /// all), each contract with the clients it binds it to, in chain order. Empty otherwise
    /// (`contract` says it all), and in registers derived before they were listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contracts: Vec<ClientContract>,
    /// The processing it carries out for the controller that no Art. 28 contract of its own
    /// covers, each with why (« Visioconférence : le marché GC-… ne couvre pas le service
    /// « Visioconférence » »). Empty otherwise, and in registers derived before it was checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncovered: Vec<String>,
    pub transfers: Vec<Transfer>,
    pub security_measures: Vec<String>,
    pub sub_processors: Vec<String>,
    pub warnings: Vec<String>,
    pub missing: Vec<String>,
    /// The convention signed but not yet in force that will make the organisation processor for
    /// the controller (`World::ahead`): the entry says what it will carry out, for whom and from
    /// when, and binds it to nothing yet. Absent on an entry in force, and in registers derived
    /// before it was stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<Ahead>,
}

/// A convention signed for a controller's schools that is not in force yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ahead {
    pub convention: String,
    /// Its first day, in French (« 4 janvier 2027 »).
    pub takes_effect: String,
}

/// A contract a processor works under for a controller, with the clients it binds it to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClientContract {
    pub contract: ContractRef,
    /// Its clients in the chains, as an official text names them (« la Commune de Fresnes »).
    pub clients: Vec<String>,
}

impl ProcessorEntry {
    /// « Sous-traitance pour la DSDEN du Val-de-Marne »: the entry named after its controller
    /// as an official text names it ([`named`]); « Sous-traitance à venir pour … (convention pas
    /// encore en vigueur) » under a convention not in force yet.
    pub fn title(&self) -> String {
        match &self.ahead {
            None => format!("Sous-traitance pour {}", named(&self.controller).article),
            Some(_) => format!(
                "Sous-traitance à venir pour {} (convention pas encore en vigueur)",
                named(&self.controller).article
            ),
        }
    }
}

/// The ENT of one controller as one processing (convention art. 8, arrêté du 30 novembre 2006
/// modifié): its services are the entries' sub-purposes, and its impact assessment is judged
/// once, on the union of their WP248 criteria (the AIPD covers a processing, not a module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Processing {
    /// « 94-ENT »: the controller's code.
    pub reference: String,
    pub name: String,
    pub controller: Actor,
    /// The references of the entries (one per service) it covers.
    pub entries: Vec<String>,
    pub dpia: Dpia,
}

/// The name of the ENT processing of a controller ([`Processing`]).
pub const ENT_PROCESSING: &str = "ENT — espace numérique de travail (arrêté du 30 novembre 2006 modifié)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Incomplete {
    pub reference: String,
    pub name: String,
    pub missing: Vec<String>,
}

/// The register of one organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Register {
    pub schema: String,
    pub organisation: Actor,
    pub dpo: Dpo,
    pub representative: String,
    /// `YYYY-MM-DD` of the derivation.
    pub as_of: String,
    /// Art. 30(1): the processing activities it is controller or joint controller of.
    pub entries: Vec<Entry>,
    /// Art. 30(2): the controllers it processes data for.
    pub processor_entries: Vec<ProcessorEntry>,
    pub incomplete: Vec<Incomplete>,
    /// The ENT of each controller among `entries`, with the AIPD that covers its services; empty
    /// in registers derived before it was stated.
    #[serde(default)]
    pub processings: Vec<Processing>,
}

impl Register {
    pub fn entries_count(&self) -> usize {
        self.entries.len() + self.processor_entries.len()
    }
}

fn or_unknown<'a>(org_id: &str, world: &'a World) -> Cow<'a, OrgFacts> {
    if let Some(org) = world.orgs.get(org_id) {
        return Cow::Borrowed(org);
    }
    Cow::Owned(OrgFacts::identity_only(org_id, OrgKind::Etablissement, "", format!("organisation inconnue {org_id}")))
}

pub fn actor(org: &OrgFacts) -> Actor {
    let p = org.profile.clone().unwrap_or_default();
    let email = if p.email.is_empty() { org.email.clone().unwrap_or_default() } else { p.email };
    let head = match (p.head_name.is_empty(), p.head_title.is_empty()) {
        (false, false) => format!("{}, {}", p.head_name, p.head_title),
        (false, true) => p.head_name,
        (true, false) => p.head_title,
        (true, true) => String::new(),
    };
    Actor {
        id: org.id.clone(),
        kind: org.kind.as_str().into(),
        code: org.code.clone(),
        name: org.name.clone(),
        country: org.country.clone(),
        address: p.address,
        email,
        phone: p.phone,
        head,
    }
}

pub fn dpo(org: &OrgFacts) -> Dpo {
    let p = org.profile.clone().unwrap_or_default();
    Dpo { name: p.dpo_name, email: p.dpo_email, phone: p.dpo_phone, address: p.dpo_address }
}

fn representative(org: &OrgFacts) -> String {
    org.profile
        .as_ref()
        .map(|p| p.representative.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "sans objet".into())
}

pub fn in_eu(country: &str) -> bool {
    EU_COUNTRIES.contains(&country.to_ascii_uppercase().as_str())
}

/// The controller, joint controllers and convention processors of a school, and
/// whether no active convention says so (the defaults of the arrêté apply).
/// The controller of a public école is the IA-DASEN (the DSDEN of its département), whoever
/// signed for the académie: an académie named by a convention gives way to that DSDEN. A private
/// école, like any other school, is its own controller.
fn roles_of<'a>(world: &'a World, school: &OrgFacts) -> (Cow<'a, Assignment>, bool) {
    if let Some(a) = world.assignments.get(&school.id) {
        return (signed_roles(world, school, a), false);
    }
    let controller = ecole_dsden(world, school).cloned().unwrap_or_else(|| school.id.clone());
    let assignment =
        Assignment { convention: String::new(), controller, joint_controllers: vec![], processors: vec![] };
    (Cow::Owned(assignment), true)
}

/// The roles a convention signed for `school` gives it in the registers ([`roles_of`]): for a
/// public école, the IA-DASEN (its DSDEN) where the convention names the académie.
fn signed_roles<'a>(world: &World, school: &OrgFacts, a: &'a Assignment) -> Cow<'a, Assignment> {
    let academie = world.orgs.get(&a.controller).is_some_and(|o| o.kind == OrgKind::Academie);
    match ecole_dsden(world, school) {
        Some(dsden) if academie => Cow::Owned(Assignment { controller: dsden.clone(), ..a.clone() }),
        _ => Cow::Borrowed(a),
    }
}

/// The DSDEN of a public école's département (the IA-DASEN, its controller), when known.
fn ecole_dsden<'a>(world: &'a World, school: &OrgFacts) -> Option<&'a String> {
    school
        .etab_type
        .filter(|t| t.is_ecole() && !school.private)
        .and(school.departement_code.as_ref())
        .and_then(|d| world.dsden_by_departement.get(d))
}

/// The RGPD roles under each convention in force that binds `org_id` — as controller (the DSDEN
/// of a public école, or the académie that signed for it), joint controller or processor —, once
/// per convention and controller, as the registers assign them ([`roles_of`]).
pub fn conventions_binding(world: &World, org_id: &str) -> Vec<Assignment> {
    let mut schools: Vec<(&String, &Assignment)> = world.assignments.iter().collect();
    schools.sort_by(|a, b| (&a.1.convention, a.0).cmp(&(&b.1.convention, b.0)));
    let mut out: Vec<Assignment> = Vec::new();
    for (school, signed) in schools {
        let roles = match world.orgs.get(school) {
            Some(school) => roles_of(world, school).0.into_owned(),
            None => signed.clone(),
        };
        let parties = [&signed.controller, &roles.controller].into_iter().chain(&roles.joint_controllers);
        let binds = parties.chain(&roles.processors).any(|o| o == org_id);
        let known = out.iter().any(|a| a.convention == roles.convention && a.controller == roles.controller);
        if binds && !known {
            out.push(roles);
        }
    }
    out
}

/// The name of the organisation `id` as the registers name it (« DSDEN du Val-de-Marne »).
pub fn official_name(world: &World, id: &str) -> String {
    designation(&or_unknown(id, world)).official
}

/// One link of a chain before it is rendered: processor, client, role label, and the
/// convention that binds it when it is a party of the convention (its Art. 28 instrument).
type Link = (String, String, &'static str, Option<String>);

const COLLECTIVITE: &str = "sous-traitant (collectivité)";

/// The processor chain of a service at a school: convention processors, then the
/// tenant's vendor and host as the catalog says, then the sub-processors contracts name.
fn chain(world: &World, roles: &Assignment, tenant: &LiveTenant, service: &Service) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    let mut client = roles.controller.clone();
    for p in &roles.processors {
        links.push((p.clone(), roles.controller.clone(), COLLECTIVITE, Some(roles.convention.clone())));
        client = p.clone();
    }
    let first_vendor_link = links.len();
    let wants = |r: ProcessorRole| service.rgpd.processors.contains(&r);
    if let Some(vendor) = tenant.vendor.as_ref().filter(|_| wants(ProcessorRole::Vendor)) {
        links.push((vendor.clone(), client.clone(), "éditeur", None));
        client = vendor.clone();
    }
    if let Some(host) = tenant.host.as_ref().filter(|_| wants(ProcessorRole::Host)) {
        links.push((host.clone(), client.clone(), "hébergeur", None));
    }
    let mut i = first_vendor_link;
    while i < links.len() {
        let node = links[i].0.clone();
        for c in world.contracts.iter().filter(|c| c.parent.as_deref() == Some(&node)) {
            if c.processor != roles.controller && !links.iter().any(|l| l.0 == c.processor) {
                links.push((c.processor.clone(), node.clone(), "sous-traitant ultérieur", None));
            }
        }
        i += 1;
    }
    links
}

/// The links of one chain that work, directly or through other sub-processors, for
/// `processor`: each link after its position whose client is `processor` or one of
/// the links already kept. A sibling appended later (a sub-processor of the vendor
/// when `processor` is the host) is not downstream of it.
fn downstream_of<'a>(links: &'a [Link], processor: &str) -> Vec<&'a Link> {
    let Some(position) = links.iter().position(|l| l.0 == processor) else { return Vec::new() };
    let mut upstream: Vec<&str> = vec![processor];
    let mut out = Vec::new();
    for link in &links[position + 1..] {
        if link.0 != processor && upstream.contains(&link.1.as_str()) {
            upstream.push(link.0.as_str());
            out.push(link);
        }
    }
    out
}

/// What binds a processor to its client for a service.
#[derive(Debug, Clone, PartialEq)]
enum Binding<'a> {
    /// A contract whose description covers the service (or any service, when none is asked).
    Covered(Cow<'a, ContractFact>),
    /// Contracts bind them, none whose description covers the service: the one that binds them
    /// for other services (a groupement's market whose bouquet leaves it out, a convention whose
    /// signed annex does not list it).
    Outside(Cow<'a, ContractFact>),
    /// No contract.
    Unbound,
}

/// What binds the processor of `link` to its client for `service` (any, when `None`): the
/// Art. 28 annex of the convention that makes it a party ([`World::annex`]: the services its
/// signed text lists, not those its ENT run now), else its contracts ([`binding`]). The one
/// coverage path of every register: a fiche's links, a processor's services under no contract.
fn link_binding<'a>(world: &'a World, link: &Link, controller: &str, service: Option<&str>) -> Binding<'a> {
    let Some(reference) = link.3.as_deref().filter(|c| !c.is_empty()) else {
        return binding(world, &link.0, (&link.1, controller), service);
    };
    let annex = world.annex(reference);
    match service.is_none_or(|code| annex.covers(code)) {
        true => Binding::Covered(Cow::Owned(annex)),
        false => Binding::Outside(Cow::Owned(annex)),
    }
}

/// What binds `processor` to `client` (or else to the controller) for `service` (any, when
/// `None`): the contracts with its client first, those with Art. 28 clauses first; a contract
/// binds it for the service only if its description covers it ([`ContractFact::covers`]).
fn binding<'a>(
    world: &'a World,
    processor: &str,
    (client, controller): (&str, &str),
    service: Option<&str>,
) -> Binding<'a> {
    let all: Vec<&ContractFact> = world.contracts.iter().filter(|c| c.processor == processor).collect();
    let with_client = |c: &&ContractFact| c.client == client || c.parent.as_deref() == Some(client);
    let best = |pred: &dyn Fn(&&ContractFact) -> bool| all.iter().copied().filter(pred).max_by_key(|c| c.art28);
    let covers = |c: &&ContractFact| service.is_none_or(|code| c.covers(code));
    let covered = best(&|c| with_client(c) && covers(c)).or_else(|| best(&|c| c.client == controller && covers(c)));
    if let Some(c) = covered {
        return Binding::Covered(Cow::Borrowed(c));
    }
    match best(&with_client).or_else(|| best(&|c| c.client == controller)) {
        Some(c) => Binding::Outside(Cow::Borrowed(c)),
        None => Binding::Unbound,
    }
}

/// The Art. 28 contract binding `processor` to `client` (or to the controller) for `service`
/// (any, when `None`), if any ([`binding`]).
fn contract_for<'a>(
    world: &'a World,
    processor: &str,
    (client, controller): (&str, &str),
    service: Option<&str>,
) -> Option<&'a ContractFact> {
    match binding(world, processor, (client, controller), service) {
        // `binding` reads `world.contracts`: what it covers is borrowed from there.
        Binding::Covered(Cow::Borrowed(c)) => Some(c),
        Binding::Covered(Cow::Owned(_)) => None,
        Binding::Outside(_) | Binding::Unbound => None,
    }
}

/// Whether a processor of `links` (`only` that one, when given) works under a contract a
/// groupement's award recorded (its CCTP) for `service` (any, when `None`).
fn under_cctp(world: &World, links: &[Link], controller: &str, only: Option<&str>, service: Option<&str>) -> bool {
    links.iter().filter(|(processor, ..)| only.is_none_or(|o| o == processor)).any(|(processor, client, _, _)| {
        contract_for(world, processor, (client, controller), service).is_some_and(|c| c.cctp)
    })
}

/// The services a processor carries out for a controller, each with the links of its chains
/// that are the processor's own or downstream of it (its sub-processors), in chain order.
type ServiceLinks<'s> = BTreeMap<&'s str, Vec<Link>>;

/// What the services of an entry are aggregated from.
#[derive(Default)]
struct Agg {
    establishments: BTreeMap<String, Establishment>,
    tenants: BTreeSet<String>,
    accounts: i64,
    conventions: BTreeSet<String>,
    joint: BTreeSet<String>,
    links: Vec<Link>,
    /// For a processor's Art. 30(2) entry: the links downstream of that processor in
    /// each chain it appears in (its sub-processors), deduplicated in chain order.
    /// `links` is the union of every chain of the controller and cannot tell them apart.
    downstream: Vec<Link>,
    /// Schools without an active convention (default roles).
    defaulted: BTreeSet<String>,
    aaf: bool,
    educonnect: bool,
    /// Tenants with an account figure (`accounts` is their sum), and those without one.
    known_accounts: usize,
    unknown_accounts: usize,
    /// The forecasts declared for its tenants' schools, each once by key: (source, accounts).
    forecasts: BTreeMap<String, (String, i64)>,
    /// For schools without a convention in force, the conventions signed for them that will
    /// take effect, by reference: their roles, first day and the schools' names.
    ahead: BTreeMap<String, (Assignment, String, BTreeSet<String>)>,
    /// Écoles (pupils in ONDE) and collèges or lycées (pupils in SIECLE) among the schools.
    ecoles: bool,
    secondary: bool,
    /// Lycées and EREA: pupils may be of age.
    adults: bool,
    /// Tenants that no longer run the service but still hold its data until their purge, each
    /// with the day the purge may start when it is archived.
    retained_by: BTreeMap<String, Option<String>>,
    /// Tenants whose offer the catalog no longer has, with how their services were known.
    catalog_notes: BTreeSet<String>,
}

/// The register of `org_id` on `as_of` (`YYYY-MM-DD`), `now` stamping entries recorded for the first time.
pub fn derive(world: &World, catalog: &Catalog, org_id: &str, as_of: &str, now: &str) -> Register {
    // By controller, then service code: no allocation per (school, service).
    let mut entries: BTreeMap<String, BTreeMap<&str, Agg>> = BTreeMap::new();
    let by_code: HashMap<&str, &Service> = catalog.services.iter().map(|s| (s.code.as_str(), s)).collect();
    let mut processed: BTreeMap<String, (BTreeSet<&str>, ServiceLinks, Agg)> = BTreeMap::new();
    // By controller: what a convention signed, not yet in force, will make `org_id` process.
    let mut to_come: BTreeMap<String, ToCome> = BTreeMap::new();
    // By controller: its ENT's schools, tenants and accounts over all its services (one scale).
    let mut ents: BTreeMap<String, Agg> = BTreeMap::new();
    for tenant in &world.tenants {
        for school_id in &tenant.schools {
            let school = or_unknown(school_id, world);
            let (roles, defaulted) = roles_of(world, &school);
            if defaulted {
                ToCome::add(&mut to_come, world, org_id, &school, &tenant.services);
            }
            let controls = roles.controller == org_id || roles.joint_controllers.iter().any(|j| j == org_id);
            // Services with the same processor roles share a chain.
            let mut chains: Vec<(&[ProcessorRole], Vec<Link>)> = Vec::new();
            // The services it runs (none, archived), then those whose data it still holds until its purge.
            let running = tenant.services.iter().map(|code| (code, tenant.purge_from.is_some()));
            for (code, retained) in running.chain(tenant.retained.iter().map(|code| (code, true))) {
                let Some(service) = by_code.get(code.as_str()).copied() else { continue };
                let wanted = service.rgpd.processors.as_slice();
                let links = match chains.iter().position(|(w, _)| *w == wanted) {
                    Some(i) => &chains[i].1,
                    None => {
                        chains.push((wanted, chain(world, &roles, tenant, service)));
                        &chains[chains.len() - 1].1
                    }
                };
                let as_processor = links.iter().any(|l| l.0 == org_id);
                if !controls && !as_processor {
                    continue;
                }
                if controls {
                    if !entries.contains_key(roles.controller.as_str()) {
                        entries.insert(roles.controller.clone(), BTreeMap::new());
                    }
                    let per_service = entries.get_mut(roles.controller.as_str()).expect("inserted above");
                    let agg = per_service.entry(service.code.as_str()).or_default();
                    agg.add(&school, tenant, &roles, defaulted, links);
                    if defaulted {
                        agg.add_ahead(world, &school);
                    }
                    ents.entry(roles.controller.clone()).or_default().add(&school, tenant, &roles, defaulted, &[]);
                    if retained {
                        agg.retained_by.insert(tenant.slug.clone(), tenant.purge_from.clone());
                    }
                }
                if as_processor {
                    if !processed.contains_key(roles.controller.as_str()) {
                        processed.insert(roles.controller.clone(), Default::default());
                    }
                    let (roles_here, services, agg) =
                        processed.get_mut(roles.controller.as_str()).expect("inserted above");
                    roles_here.extend(links.iter().filter(|l| l.0 == org_id).map(|l| l.2));
                    agg.add(&school, tenant, &roles, false, links);
                    let below = downstream_of(links, org_id);
                    let of_service = services.entry(service.code.as_str()).or_default();
                    for link in links.iter().filter(|l| l.0 == org_id).chain(below.iter().copied()) {
                        if !of_service.contains(link) {
                            of_service.push(link.clone());
                        }
                    }
                    for link in below {
                        if !agg.downstream.contains(link) {
                            agg.downstream.push(link.clone());
                        }
                    }
                }
            }
        }
    }
    let org = or_unknown(org_id, world);
    let mut processings = Vec::new();
    let mut all = Vec::new();
    for (controller, per_service) in entries {
        let ent = ents.remove(&controller).unwrap_or_default();
        let processing = ent_processing(world, &by_code, &controller, &per_service, &ent);
        all.extend(
            per_service.into_iter().map(|(code, agg)| entry(world, &controller, by_code[code], agg, now, &processing)),
        );
        processings.push(processing);
    }
    let entries = all;
    let mut processor_entries: Vec<ProcessorEntry> = processed
        .into_iter()
        .map(|(controller, (roles, services, agg))| {
            processor_entry(world, catalog, &org, &controller, roles, services, agg)
        })
        .collect();
    for (controller, ahead) in to_come {
        if !processor_entries.iter().any(|e| e.key == controller) {
            processor_entries.push(ahead_entry(world, catalog, &org, &controller, ahead));
        }
    }
    let mut incomplete: Vec<Incomplete> = entries
        .iter()
        .filter(|e| !e.missing.is_empty())
        .map(|e| Incomplete { reference: e.reference.clone(), name: e.name.clone(), missing: e.missing.clone() })
        .collect();
    incomplete.extend(processor_entries.iter().filter(|e| !e.missing.is_empty()).map(|e| Incomplete {
        reference: format!("ST-{}", e.controller.code),
        name: e.title(),
        missing: e.missing.clone(),
    }));
    let (organisation, dpo) = (actor(&org), dpo(&org));
    incomplete.extend(head_incomplete(&organisation, &dpo));
    Register {
        schema: SCHEMA.into(),
        organisation,
        dpo,
        representative: representative(&org),
        as_of: as_of.into(),
        entries,
        processor_entries,
        incomplete,
        processings,
    }
}

/// The ENT of `controller` as one processing: the references of its services' entries and
/// one AIPD judged on the union of their criteria — minors if any service concerns pupils, the
/// sensitive or highly personal data of every service, the scale of the whole ENT (`ent`).
fn ent_processing(
    world: &World,
    by_code: &HashMap<&str, &Service>,
    controller: &str,
    per_service: &BTreeMap<&str, Agg>,
    ent: &Agg,
) -> Processing {
    let code = or_unknown(controller, world).code.clone();
    let services = || per_service.iter().map(|(code, agg)| (by_code[code], agg));
    let minors = services().any(|(service, agg)| data_subjects(service, false, agg).iter().any(|s| is_minor(s)));
    let mut data: Vec<DataCategory> = Vec::new();
    for d in services().flat_map(|(service, _)| &service.rgpd.personal_data) {
        if !data.iter().any(|known| known.category == d.category) {
            let (sensitive, highly_personal) = (d.sensitive, d.highly_personal);
            data.push(DataCategory {
                category: d.category.clone(),
                sensitive,
                highly_personal,
                retention: String::new(),
            });
        }
    }
    Processing {
        reference: format!("{code}-ENT"),
        name: ENT_PROCESSING.into(),
        controller: actor(&or_unknown(controller, world)),
        entries: per_service.keys().map(|service| format!("{code}-{service}")).collect(),
        dpia: dpia(minors, &data, ent, &Scale::of(world, ent)),
    }
}

/// Whether a category of data subjects is (or includes) minors.
fn is_minor(subject: &str) -> bool {
    subject.contains("mineur") || subject.starts_with("élèves")
}

/// What a client of processor contracts is in the ENT's processing under the conventions in
/// force: the controllers it processes the data for, each with the convention that binds it (its
/// Art. 28 instrument), and whether it is itself the controller (or a joint controller) of schools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientRoles {
    pub controllers: Vec<(Actor, String)>,
    pub controls: bool,
}

/// The [`ClientRoles`] of `client` in `world`, from the conventions' RGPD roles (not from who
/// signed its contracts): a commune is the processor of the IA-DASEN (DSDEN) for its écoles.
pub fn client_roles(world: &World, client: &str) -> ClientRoles {
    let mut controllers: BTreeSet<(String, String)> = BTreeSet::new();
    let mut controls = false;
    for (school_id, a) in &world.assignments {
        let controller = match world.orgs.get(school_id) {
            Some(school) => roles_of(world, school).0.controller.clone(),
            None => ecoles_controller(world, a, client),
        };
        controls |= controller == client || a.joint_controllers.iter().any(|j| j == client);
        if a.processors.iter().any(|p| p == client) {
            controllers.insert((controller, a.convention.clone()));
        }
    }
    let controllers = controllers.into_iter().map(|(c, conv)| (actor(&or_unknown(&c, world)), conv)).collect();
    ClientRoles { controllers, controls }
}

/// The controllers the registers apply by default (no convention in force: the arrêté of
/// 30 November 2006 as amended, [`roles_of`]) to the schools of the live tenants `client` holds:
/// the IA-DASEN (the DSDEN of the département) for a commune's public écoles, an établissement
/// itself otherwise — a collège holding its own ENT is its own controller, as its register says;
/// a collectivité never is, no school defaulting to it. Each once, in order.
pub fn default_controllers(world: &World, client: &str) -> Vec<Actor> {
    let mut out: Vec<String> = Vec::new();
    let schools = world.tenants.iter().filter(|t| t.org == client).flat_map(|t| &t.schools);
    for school in schools.filter_map(|id| world.orgs.get(id)) {
        let (roles, defaulted) = roles_of(world, school);
        if defaulted && !out.contains(&roles.controller) {
            out.push(roles.controller.clone());
        }
    }
    out.iter().map(|id| actor(&or_unknown(id, world))).collect()
}

/// The controller of a school of a convention the world does not describe: for a commune's
/// convention naming the académie (its écoles), the IA-DASEN, the DSDEN of the commune's
/// département, as [`roles_of`] says for a known école; else the convention's controller.
fn ecoles_controller(world: &World, a: &Assignment, client: &str) -> String {
    let academie = world.orgs.get(&a.controller).is_some_and(|o| o.kind == OrgKind::Academie);
    let commune = world.orgs.get(client).filter(|o| o.kind == OrgKind::Commune);
    match commune.and_then(|c| c.departement_code.as_ref()).and_then(|d| world.dsden_by_departement.get(d)) {
        Some(dsden) if academie => dsden.clone(),
        _ => a.controller.clone(),
    }
}

/// Every organisation that has a register in `world`: controllers, joint controllers and processors.
pub fn register_holders(world: &World, catalog: &Catalog) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for tenant in &world.tenants {
        for school_id in &tenant.schools {
            let (roles, _) = roles_of(world, &or_unknown(school_id, world));
            out.insert(roles.controller.clone());
            out.extend(roles.joint_controllers.iter().cloned());
            for service in tenant.services.iter().chain(&tenant.retained).filter_map(|c| catalog.service(c)) {
                out.extend(chain(world, &roles, tenant, service).into_iter().map(|l| l.0));
            }
        }
    }
    out
}

impl Agg {
    /// Counts a school of a tenant in the entry, with its roles and processor chain.
    fn add(&mut self, school: &OrgFacts, tenant: &LiveTenant, roles: &Assignment, defaulted: bool, links: &[Link]) {
        if !self.establishments.contains_key(&school.id) {
            let est =
                Establishment { uai: school.code.clone(), name: school.name.clone(), tenant: tenant.slug.clone() };
            self.establishments.insert(school.id.clone(), est);
        }
        if !self.tenants.contains(&tenant.slug) {
            self.tenants.insert(tenant.slug.clone());
            self.add_accounts(tenant);
        }
        match school.etab_type {
            Some(t) if t.is_ecole() => self.ecoles = true,
            Some(EtabType::Lycee | EtabType::LyceeProfessionnel | EtabType::Erea) => {
                self.secondary = true;
                self.adults = true;
            }
            Some(_) => self.secondary = true,
            None => {}
        }
        if !roles.convention.is_empty() && !self.conventions.contains(&roles.convention) {
            self.conventions.insert(roles.convention.clone());
        }
        for j in &roles.joint_controllers {
            if !self.joint.contains(j) {
                self.joint.insert(j.clone());
            }
        }
        if defaulted && !self.defaulted.contains(&school.name) {
            self.defaulted.insert(school.name.clone());
        }
        if let Some(note) = &tenant.catalog_note {
            self.catalog_notes.insert(format!("tenant {} : {note}", tenant.slug));
        }
        if tenant.aaf {
            self.aaf = true;
        } else {
            self.educonnect = true;
        }
        for link in links {
            if !self.links.contains(link) {
                self.links.push(link.clone());
            }
        }
    }

    /// A tenant's accounts, counted apart when it has none, and its forecasts the entry has not
    /// counted yet (a convention's figure covers all its schools).
    fn add_accounts(&mut self, tenant: &LiveTenant) {
        match tenant.accounts > 0 {
            true => {
                self.accounts += tenant.accounts;
                self.known_accounts += 1;
            }
            false => self.unknown_accounts += 1,
        }
        for f in &tenant.forecasts {
            self.forecasts.entry(f.key.clone()).or_insert_with(|| (f.source.clone(), f.accounts));
        }
    }

    /// Notes the convention signed for a school without one in force, if any ([`World::ahead`]).
    fn add_ahead(&mut self, world: &World, school: &OrgFacts) {
        if let Some((roles, start)) = world.ahead.get(&school.id) {
            let roles = signed_roles(world, school, roles).into_owned();
            let (_, _, names) =
                self.ahead.entry(roles.convention.clone()).or_insert_with(|| (roles, start.clone(), BTreeSet::new()));
            names.insert(designation(school).article);
        }
    }
}

/// Data subjects as the register names them: the catalog's, staff split by function as the
/// schools served have them (an école has a directeur, no « personnels de direction »), pupils
/// of lycées and EREA said to be partly of age.
fn data_subjects(service: &Service, with_collectivite: bool, schools: &Agg) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in &service.rgpd.data_subjects {
        if schools.adults && s == "élèves (mineurs)" {
            out.push("élèves (mineurs, et majeurs en lycée)".into());
        } else if s == "personnels" {
            out.push("personnels enseignants".into());
            if schools.secondary || !schools.ecoles {
                out.push("personnels de direction et non enseignants".into());
            }
            if schools.ecoles {
                out.push("directeurs d'école et personnels non enseignants des écoles".into());
            }
        } else {
            out.push(s.clone());
        }
    }
    if with_collectivite && service.code == "portail" {
        out.push("agents de la collectivité (administration de l'ENT)".into());
    }
    out.dedup();
    out
}

/// Identities come from the académie's applications (ONDE for écoles, SIECLE for
/// collèges and lycées, the staff directory) through the AAF; EduConnect only authenticates.
fn data_source(agg: &Agg, service: &Service) -> String {
    let mut parts = Vec::new();
    let pupils = match (agg.ecoles, agg.secondary) {
        (true, true) => "ONDE (écoles) et SIECLE (collèges et lycées)",
        (true, false) => "ONDE",
        (false, true) => "SIECLE",
        (false, false) => "ONDE ou SIECLE",
    };
    let identities = format!(
        "élèves et responsables légaux : {pupils} ; personnels : annuaire académique ; transmis par l'annuaire \
         fédérateur de l'académie (AAF)"
    );
    parts.push(identities.as_str());
    if agg.aaf {
        parts.push("comptes créés par les imports de l'AAF");
    }
    if agg.educonnect {
        parts.push("authentification par EduConnect (élèves et responsables légaux) et le guichet agents (personnels)");
    }
    if service.code != "portail" {
        parts.push("saisies des utilisateurs de l'ENT");
    }
    parts.join(" ; ")
}

/// The measures of an entry: those the objects rendered for its tenants put in place, the
/// obligations of a CCTP that binds one of its processors (`cctp`), then the organisation's own.
fn security(world: &World, agg: &Agg, cctp: bool, org: &OrgFacts) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tenant in world.tenants.iter().filter(|t| agg.tenants.contains(&t.slug)) {
        for measure in &tenant.security {
            if !out.contains(measure) {
                out.push(measure.clone());
            }
        }
    }
    if cctp {
        out.extend(CCTP_OBLIGATIONS.iter().map(|s| s.to_string()));
    }
    if let Some(p) = &org.profile {
        out.extend(p.security_measures.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
    }
    out
}

/// The links of a chain as a register shows them, with the alerts of those no Art. 28 contract
/// binds; for the fiche of `service` (any service when `None`), a contract binds a link only if
/// it covers that service ([`link_binding`]): a convention's Art. 28 annex covers the services
/// its signed text lists ([`ent_conventions::conventions::processing::annex`] at signature), not
/// one its ENT added since.
fn links_rendered(
    world: &World,
    links: &[Link],
    controller: &str,
    service: Option<&Service>,
) -> (Vec<ProcessorLink>, Vec<String>) {
    let mut warnings = Vec::new();
    let rendered = links
        .iter()
        .map(|link| {
            let (processor, client, role, _) = link;
            let org = or_unknown(processor, world);
            let mut uncovered = String::new();
            let contract = match link_binding(world, link, controller, service.map(|s| s.code.as_str())) {
                Binding::Covered(c) => Some(ContractRef::of(&c)),
                Binding::Outside(c) => {
                    let named = service.map(|s| format!("le service « {} »", s.name)).unwrap_or_default();
                    uncovered = c.leaves_out(&named);
                    None
                }
                Binding::Unbound => None,
            };
            let art28 = contract.as_ref().is_some_and(|c| c.art28);
            if !uncovered.is_empty() {
                warnings.push(format!(
                    "{} ({role}) : aucun contrat comportant les clauses de l'article 28 pour ce service ({uncovered})",
                    org.name
                ));
            } else if !art28 {
                warnings.push(format!("{} ({role}) : aucun contrat comportant les clauses de l'article 28", org.name));
            }
            ProcessorLink {
                org: actor(&org),
                role: role.to_string(),
                acts_for: or_unknown(client, world).name.clone(),
                contract,
                art28_contract: art28,
                uncovered,
            }
        })
        .collect();
    (rendered, warnings)
}

/// Transfers outside the EEA, computed from each processor's country, with the safeguard
/// its register profile records (adequacy decision, standard contractual clauses, binding
/// corporate rules); empty until recorded, which reports the entry incomplete. The
/// catalog's free-text note on transfers is a claim, not a safeguard, and is not used.
fn transfers(world: &World, links: &[ProcessorLink]) -> Vec<Transfer> {
    let mut out: Vec<Transfer> = Vec::new();
    for l in links.iter().filter(|l| !in_eu(&l.org.country)) {
        let profile = world.orgs.get(&l.org.id).and_then(|o| o.profile.as_ref());
        let t = Transfer {
            recipient: l.org.name.clone(),
            country: l.org.country.clone(),
            safeguard: profile.map(safeguard_text).unwrap_or_default(),
            documentation: l.contract.as_ref().map(|c| c.reference.clone()).unwrap_or_default(),
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The missing-field label of a transfer without documented safeguards.
fn missing_safeguards(transfers: &[Transfer]) -> impl Iterator<Item = String> + '_ {
    transfers
        .iter()
        .filter(|t| t.safeguard.is_empty())
        .map(|t| format!("garanties du transfert hors EEE vers {} ({})", t.recipient, t.country))
}

/// The WP248 criteria of an entry: vulnerable data subjects (minors, recital 75), sensitive or
/// highly personal data (named, each kind with what makes it so: article 9 or article 10 only
/// for the categories processed that fall under it, [`sensitive_article`]), large scale
/// ([`Scale`]: judged on known figures only, « non évaluable » otherwise). Two criteria or more
/// call for an impact assessment, on the basis [`dpia_basis`] states.
fn dpia(minors: bool, personal_data: &[DataCategory], agg: &Agg, scale: &Scale) -> Dpia {
    let mut reasons = Vec::new();
    if minors {
        reasons.push("personnes vulnérables : élèves mineurs (considérant 75 du RGPD)".to_string());
    }
    let of_article = |article: u8| -> Vec<String> {
        let special = personal_data.iter().filter(|d| d.sensitive && sensitive_article(&d.category) == article);
        special.map(|d| without_article(&d.category)).collect()
    };
    let personal: Vec<String> =
        personal_data.iter().filter(|d| d.highly_personal && !d.sensitive).map(|d| d.category.clone()).collect();
    let kinds = [
        (sensitive_note(9, true), of_article(9)),
        (sensitive_note(10, true), of_article(10)),
        ("données à caractère hautement personnel", personal),
    ];
    let named: Vec<String> = kinds
        .iter()
        .filter(|(_, categories)| !categories.is_empty())
        .map(|(kind, categories)| format!("{kind} : {}", categories.join(" ; ")))
        .collect();
    if !named.is_empty() {
        reasons.push(named.join(" ; "));
    }
    let large = scale.large();
    if large {
        reasons.push(scale.reason());
    }
    // One criterion and a scale no figure lets judge: the scale could be the second.
    let undetermined = reasons.len() == 1 && !large && !scale.accounts_known;
    let required = reasons.len() >= 2;
    let special = personal_data.iter().any(|d| d.sensitive);
    let basis = if required { dpia_basis(large && special) } else { String::new() };
    Dpia { required, undetermined, reasons, scale: scale.line(agg), basis }
}

/// What requires the AIPD of an entry that needs one: article 35.3.b when it processes special
/// categories (or data on offences) on a large scale (`special_at_scale`), and article 35.1 as
/// the CNIL applies it beyond its list of processing requiring an AIPD: two WP248 criteria met.
fn dpia_basis(special_at_scale: bool) -> String {
    let criteria = "article 35, paragraphe 1, du RGPD : deux critères au moins des lignes directrices du G29 sur \
                    l'AIPD (WP248 rév. 01) réunis, que la CNIL applique au-delà de sa liste des types d'opérations \
                    de traitement pour lesquelles une AIPD est requise (délibération n° 2018-327 du 11 octobre 2018)";
    match special_at_scale {
        true => format!(
            "article 35, paragraphe 3, b), du RGPD : traitement à grande échelle de données sensibles ; {criteria}"
        ),
        false => criteria.to_string(),
    }
}

/// What the large-scale criterion of an entry is judged on: the accounts of its deployed
/// tenants (the persons concerned: pupils, staff, families; 0 when none is known), the pupils
/// the annuaire counts in its établissements (and how many it gives no figure for), its
/// établissements. The one place the scale is computed and worded: the figures declared for
/// more than what is deployed (conventions, groupements) are shown as forecasts, never judged on.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scale {
    pub accounts: i64,
    pub accounts_known: bool,
    pub pupils: i64,
    pub pupils_unknown: usize,
    pub establishments: usize,
}

impl Scale {
    /// The scale of `agg`, its établissements' pupils read in `world`.
    fn of(world: &World, agg: &Agg) -> Scale {
        let pupils: Vec<Option<i64>> =
            agg.establishments.keys().map(|id| world.orgs.get(id).and_then(|o| o.pupils)).collect();
        Scale {
            accounts: agg.accounts,
            accounts_known: agg.known_accounts > 0,
            pupils: pupils.iter().flatten().sum(),
            pupils_unknown: pupils.iter().filter(|p| p.is_none()).count(),
            establishments: agg.establishments.len(),
        }
    }

    /// The persons concerned at least: the deployed accounts, or the annuaire's pupils if more.
    fn persons(&self) -> i64 {
        self.accounts.max(self.pupils)
    }

    /// The criterion is met: enough persons concerned (a known lower bound) or établissements.
    fn large(&self) -> bool {
        self.persons() >= LARGE_SCALE_ACCOUNTS || self.establishments >= LARGE_SCALE_ESTABLISHMENTS
    }

    /// « critère rempli », « critère non rempli » on known accounts, « critère non évaluable »
    /// when no account figure is known and the known figures stay below the threshold.
    fn verdict(&self) -> &'static str {
        match (self.large(), self.accounts_known) {
            (true, _) => "critère rempli",
            (false, true) => "critère non rempli",
            (false, false) => "critère non évaluable",
        }
    }

    /// The criterion's reason when met: « traitement à grande échelle (5 000 personnes
    /// concernées, 1 établissement) ».
    fn reason(&self) -> String {
        let establishments = counted(self.establishments as i64, "établissement", "établissements");
        format!("traitement à grande échelle ({} personnes concernées, {establishments})", count(self.persons()))
    }

    /// The criterion's line ([`Dpia::scale`]): verdict, figures and their sources, the
    /// forecasts declared beyond what is deployed, labelled as such, then the threshold.
    fn line(&self, agg: &Agg) -> String {
        let persons = match (self.accounts_known, agg.unknown_accounts) {
            (false, _) => NOT_ASSESSABLE.to_string(),
            (true, 0) => format!("{} ({DEPLOYED_ACCOUNTS})", count(self.accounts)),
            (true, n) => format!(
                "{} au moins ({DEPLOYED_ACCOUNTS} ; {} sans nombre de comptes connu)",
                count(self.accounts),
                counted(n as i64, "tenant", "tenants")
            ),
        };
        let pupils = match (self.pupils_unknown, self.establishments) {
            (0, _) => count(self.pupils),
            (unknown, all) if unknown == all => "effectifs non renseignés dans l'annuaire".to_string(),
            (unknown, _) => format!(
                "{} (effectif inconnu pour {})",
                count(self.pupils),
                counted(unknown as i64, "établissement", "établissements")
            ),
        };
        let forecast = match agg.forecasts.is_empty() {
            true => String::new(),
            false => {
                let each: Vec<String> = agg
                    .forecasts
                    .values()
                    .map(|(source, accounts)| format!("{} comptes ({source})", count(*accounts)))
                    .collect();
                format!(" ; {FORECAST} : {}", each.join(", "))
            }
        };
        format!(
            "{} — personnes concernées : {persons} ; élèves selon l'annuaire : {pupils} ; établissements : {}{forecast} ; \
             {LARGE_SCALE_THRESHOLD}",
            self.verdict(),
            count(self.establishments as i64)
        )
    }
}

/// `n` things in words that agree with it, as a French reader writes the number: « 1
/// établissement », « 0 tenant », « 3 530 établissements ».
pub(crate) fn counted(n: i64, one: &str, many: &str) -> String {
    let noun = if n.abs() < 2 { one } else { many };
    format!("{} {noun}", count(n))
}

/// A count as a French reader writes it (« 5 000 »).
pub(crate) fn count(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}", ent_documents::documents::grouped(n.unsigned_abs()))
}

/// The missing-field label of an impact assessment the account count must decide.
pub const DPIA_UNDETERMINED: &str =
    "nombre de comptes (un critère d'AIPD est rempli, la grande échelle décide : AIPD à déterminer)";

/// The retention of an entry: the service's, and, when tenants that no longer run the service
/// still hold its data (`retained_by`), until their purge ([`retained_retention`]).
fn retention_of(service: &Service, retained_by: &BTreeMap<String, Option<String>>, purge_after_months: u32) -> String {
    if retained_by.is_empty() {
        return service.rgpd.retention.clone();
    }
    format!("{} ; {}", service.rgpd.retention, retained_retention(retained_by, purge_after_months))
}

/// What applies to the data of a service removed from `tenants` (or of every service of an
/// archived one): kept, no longer used by the service, until the purge of the tenant's data,
/// `purge_after_months` after its archiving, or from the day an archived tenant was given.
pub fn retained_retention(tenants: &BTreeMap<String, Option<String>>, purge_after_months: u32) -> String {
    let when = match (tenants.values().all(Option::is_some), tenants.len()) {
        (true, 1) => "à la date indiquée".to_string(),
        (true, _) => "aux dates indiquées".to_string(),
        (false, _) => format!("{purge_after_months} mois après son archivage"),
    };
    format!(
        "service retiré {} : ses données ne sont plus traitées par le service mais restent conservées \
         (volume de stockage maintenu) jusqu'à la purge des données du tenant, {when} (limitation de la \
         conservation, article 5.1.e du RGPD)",
        of_tenants(tenants)
    )
}

/// The warning of an entry whose service tenants no longer run but whose data they hold.
fn retained_warning(tenants: &BTreeMap<String, Option<String>>) -> String {
    format!(
        "données conservées jusqu'à la purge : le service a été retiré {} mais ses données y restent \
         stockées ; vérifier qu'elles sont encore nécessaires (article 5.1.e du RGPD)",
        of_tenants(tenants)
    )
}

/// Tenants as a register names them: « du tenant a », « des tenants a, b (archivé, purge à
/// partir du 1er mars 2027) ».
fn of_tenants(tenants: &BTreeMap<String, Option<String>>) -> String {
    let named = |(slug, purge_from): (&String, &Option<String>)| match purge_from {
        Some(day) => format!("{slug} (archivé, purge à partir du {day})"),
        None => slug.clone(),
    };
    let names = tenants.iter().map(named).collect::<Vec<_>>().join(", ");
    if tenants.len() > 1 {
        format!("des tenants {names}")
    } else {
        format!("du tenant {names}")
    }
}

/// The recipients of an entry: the service's, the arrêté's, then each processor once.
fn recipients(service: &Service, processors: &[ProcessorLink]) -> Vec<String> {
    let mut out = service.rgpd.recipients.clone();
    out.extend(ARRETE_RECIPIENTS.iter().map(|r| r.to_string()));
    for p in processors {
        let line = recipient_line(p);
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// A processor as a recipient, its role said once and no parenthesis nested: « Sous-traitant
/// (collectivité) : Commune de Vitry-sur-Seine », « Sous-traitant (éditeur) : … »,
/// « Sous-traitant ultérieur : … ».
fn recipient_line(p: &ProcessorLink) -> String {
    let role = match p.role.strip_prefix("sous-traitant") {
        Some(rest) => format!("Sous-traitant{rest}"),
        None => format!("Sous-traitant ({})", p.role),
    };
    format!("{role} : {}", named(&p.org).official)
}

/// What a fiche says of the convention signed for schools without one in force, that will take
/// effect later: « la convention CONV-… signée, qui prendra effet le 4 janvier 2027, fixe … », its
/// roles named; until then the default roles apply and it binds no processor.
fn ahead_warning(
    world: &World,
    reference: &str,
    roles: &Assignment,
    start: &str,
    schools: &BTreeSet<String>,
) -> String {
    let name = |id: &String| official_name(world, id);
    let mut roles_said = vec![format!("responsable de traitement : {}", name(&roles.controller))];
    if !roles.joint_controllers.is_empty() {
        let joint: Vec<String> = roles.joint_controllers.iter().map(name).collect();
        roles_said.push(format!("responsables conjoints : {}", naming::and_list(&joint)));
    }
    if !roles.processors.is_empty() {
        let processors: Vec<String> = roles.processors.iter().map(name).collect();
        roles_said.push(format!("{COLLECTIVITE} : {} (article 28 du RGPD)", naming::and_list(&processors)));
    }
    let schools: Vec<String> = schools.iter().cloned().collect();
    format!(
        "la convention {reference} signée, qui prendra effet le {start}, fixe les rôles RGPD de ce traitement pour {} \
         ({}) ; d'ici là, les rôles par défaut s'appliquent et elle ne lie encore aucun sous-traitant",
        naming::and_list(&schools),
        roles_said.join(" ; ")
    )
}

fn entry(world: &World, controller_id: &str, service: &Service, agg: Agg, now: &str, ent: &Processing) -> Entry {
    let controller = or_unknown(controller_id, world);
    let (processors, mut warnings) = links_rendered(world, &agg.links, controller_id, Some(service));
    if !agg.defaulted.is_empty() {
        let names: Vec<&str> = agg.defaulted.iter().take(5).map(String::as_str).collect();
        let more = if agg.defaulted.len() > 5 { ", …" } else { "" };
        warnings.push(format!(
            "aucune convention en vigueur pour {} ({}{more}) : responsable de traitement par défaut \
             (arrêté du 30 novembre 2006 modifié)",
            counted(agg.defaulted.len() as i64, "établissement", "établissements"),
            names.join(", ")
        ));
    }
    warnings.extend(
        agg.ahead
            .iter()
            .map(|(reference, (roles, start, schools))| ahead_warning(world, reference, roles, start, schools)),
    );
    warnings.extend(agg.catalog_notes.iter().cloned());
    let retention = retention_of(service, &agg.retained_by, world.purge_after_months);
    if !agg.retained_by.is_empty() {
        warnings.push(retained_warning(&agg.retained_by));
    }
    let with_collectivite = processors.iter().any(|p| p.role == COLLECTIVITE);
    let subjects = data_subjects(service, with_collectivite, &agg);
    let minors = subjects.iter().any(|s| is_minor(s));
    let personal_data: Vec<DataCategory> = service
        .rgpd
        .personal_data
        .iter()
        .map(|d| DataCategory {
            category: d.category.clone(),
            sensitive: d.sensitive,
            highly_personal: d.highly_personal,
            retention: retention.clone(),
        })
        .collect();
    let sensitive = personal_data.iter().any(|d| d.sensitive);
    let highly_personal = personal_data.iter().any(|d| d.highly_personal);
    let transfers = transfers(world, &processors);
    let source = data_source(&agg, service);
    let recipients = recipients(service, &processors);
    let cctp = under_cctp(world, &agg.links, controller_id, None, Some(&service.code));
    let security_measures = security(world, &agg, cctp, &controller);
    let establishments: Vec<Establishment> = agg.establishments.into_values().collect();
    let mut e = Entry {
        key: format!("{controller_id}:{}", service.code),
        reference: format!("{}-{}", controller.code, service.code),
        name: format!("ENT — {}", service.name),
        service: service.code.clone(),
        controller: actor(&controller),
        joint_controllers: agg.joint.iter().map(|j| actor(&or_unknown(j, world))).collect(),
        representative: representative(&controller),
        dpo: dpo(&controller),
        purposes: service.rgpd.purposes.clone(),
        data_subjects: subjects,
        minors,
        personal_data,
        sensitive_data: sensitive,
        highly_personal_data: highly_personal,
        recipients,
        transfers,
        retention,
        security_measures,
        legal_basis: service.rgpd.legal_basis.clone(),
        data_source: source,
        dpia: ent.dpia.clone(),
        dpia_covered_by: ent.reference.clone(),
        processors,
        establishments,
        accounts: agg.accounts,
        conventions: agg.conventions.into_iter().collect(),
        first_recorded: String::new(),
        last_changed: String::new(),
        warnings,
        missing: Vec::new(),
    };
    e.missing = missing_fields(&e, service);
    let hash = entry_hash(&e);
    let (first, last) = match world.history.get(&e.key) {
        Some((first, last, h)) if *h == hash => (first.clone(), last.clone()),
        Some((first, _, _)) => (first.clone(), now.to_string()),
        None => (now.to_string(), now.to_string()),
    };
    e.first_recorded = first;
    e.last_changed = last;
    e
}

/// SHA-256 of an entry without its dates: what "changed" means.
pub fn entry_hash(e: &Entry) -> String {
    if !e.first_recorded.is_empty() || !e.last_changed.is_empty() {
        let undated = Entry { first_recorded: String::new(), last_changed: String::new(), ..e.clone() };
        return entry_hash(&undated);
    }
    /// Feeds what serde writes straight into the digest: no intermediate JSON.
    struct Digest(sha2::Sha256);
    impl std::io::Write for Digest {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            sha2::Digest::update(&mut self.0, bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut digest = Digest(<sha2::Sha256 as sha2::Digest>::new());
    serde_json::to_writer(&mut digest, e).expect("entry serialises");
    hex::encode(sha2::Digest::finalize(digest.0))
}

/// The Art. 30(1) fields an entry lacks, in French.
/// The missing-field label of sensitive data whose service's legal basis names no art. 9.2 (or
/// art. 10) condition (an overlay of the catalog may omit it).
pub const SENSITIVE_CONDITION_MISSING: &str =
    "condition de l'article 9.2 (ou 10) du RGPD permettant de traiter les données sensibles";

/// Whether an organisation of a register has no way to reach it (art. 30: « coordonnées »).
/// The register's own heading (art. 30.1.a and 30.2.a: the name and contact details of the
/// organisation that keeps it and of its DPO), reported like an incomplete entry when a part is
/// missing: a register with every entry complete still lacks them.
fn head_incomplete(organisation: &Actor, dpo: &Dpo) -> Option<Incomplete> {
    let mut missing = Vec::new();
    if no_contact(organisation) {
        missing.push(format!("coordonnées {}", named(organisation).of));
    }
    if dpo.name.is_empty() {
        missing.push("nom du délégué à la protection des données".to_string());
    }
    if dpo.email.is_empty() && dpo.address.is_empty() && dpo.phone.is_empty() {
        missing.push("coordonnées du délégué à la protection des données".to_string());
    }
    (!missing.is_empty()).then(|| Incomplete {
        reference: "REGISTRE".into(),
        name: "En-tête du registre (article 30.1.a et 30.2.a)".into(),
        missing,
    })
}

fn no_contact(a: &Actor) -> bool {
    a.email.is_empty() && a.address.is_empty() && a.phone.is_empty()
}

fn missing_fields(e: &Entry, service: &Service) -> Vec<String> {
    let mut m = Vec::new();
    let c = &e.controller;
    if c.name.is_empty() {
        m.push("nom du responsable de traitement".to_string());
    }
    if no_contact(c) {
        m.push("coordonnées du responsable de traitement".into());
    }
    for j in &e.joint_controllers {
        if no_contact(j) {
            m.push(format!("coordonnées du responsable conjoint {}", j.name));
        }
    }
    if e.dpo.name.is_empty() {
        m.push("nom du délégué à la protection des données".into());
    }
    if e.dpo.email.is_empty() && e.dpo.address.is_empty() && e.dpo.phone.is_empty() {
        m.push("coordonnées du délégué à la protection des données".into());
    }
    let empty = [
        (e.purposes.is_empty(), "finalités"),
        (e.data_subjects.is_empty(), "catégories de personnes concernées"),
        (e.personal_data.is_empty(), "catégories de données"),
        (e.recipients.is_empty(), "catégories de destinataires"),
        (e.retention.trim().is_empty(), "durées de conservation"),
        (e.security_measures.is_empty(), "mesures de sécurité"),
        (e.legal_basis.trim().is_empty(), "base légale"),
    ];
    m.extend(empty.iter().filter(|(missing, _)| *missing).map(|(_, name)| name.to_string()));
    if !sensitive_data_has_its_condition(&service.rgpd) {
        m.push(SENSITIVE_CONDITION_MISSING.into());
    }
    for role in &service.rgpd.processors {
        let label = role.label();
        if !e.processors.iter().any(|p| p.role == label) {
            m.push(format!("sous-traitant {label} (non renseigné sur le tenant)"));
        }
    }
    m.extend(missing_safeguards(&e.transfers));
    if e.dpia.undetermined {
        m.push(DPIA_UNDETERMINED.into());
    }
    m
}

/// An organisation named as an official text names it (« DSDEN du Val-de-Marne », « Commune de
/// Fresnes », « École élémentaire … »): [`naming::of_org`] of its shown name.
pub fn designation(org: &OrgFacts) -> naming::Designation {
    naming::of_org(org.kind, &naming::display_name(&org.name))
}

/// An organisation of a register named as an official text names it ([`designation`]); one of
/// an unknown kind by its name.
pub fn named(a: &Actor) -> naming::Designation {
    let name = naming::display_name(&a.name);
    match OrgKind::parse(&a.kind) {
        Some(kind) => naming::of_org(kind, &name),
        None => naming::Designation { of: naming::de(&name), article: name.clone(), official: name, feminine: true },
    }
}

/// The alert of a processor that no Art. 28 contract binds to `client`, its direct client in
/// the chain `links`: « … avec la Commune de Vitry-sur-Seine, sous-traitant de la DSDEN du
/// Val-de-Marne » when that client is itself a processor (of the organisation it acts for).
fn missing_contract_with(world: &World, links: &[Link], client: &str) -> String {
    let named = designation(&or_unknown(client, world));
    let above = links.iter().find(|l| l.0 == client).map(|l| designation(&or_unknown(&l.1, world)));
    match above {
        Some(above) => format!(
            "aucun contrat comportant les clauses de l'article 28 avec {}, sous-traitant {}",
            named.article, above.of
        ),
        None => format!("aucun contrat comportant les clauses de l'article 28 avec {}", named.article),
    }
}

/// `item` at the end of `list` unless it is there already.
fn push_once(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The alert of a processor's register on a sub-processor `link` of its chain bound by no Art. 28
/// contract (`why` it is not, for one service): « aucun contrat comportant les clauses de
/// l'article 28 avec Hébergeur de démonstration, sous-traitant ultérieur (article 28,
/// paragraphe 4, du RGPD) » when it works for `processor`, « … entre X et Y … » further down.
fn sub_processor_alert(world: &World, processor: &str, link: &Link, why: Option<(&Service, String)>) -> String {
    let sub = designation(&or_unknown(&link.0, world)).article;
    let parties = match link.1 == processor {
        true => format!("avec {sub}"),
        false => format!("entre {} et {sub}", designation(&or_unknown(&link.1, world)).article),
    };
    let alert = format!("aucun contrat comportant les clauses de l'article 28 {parties}, sous-traitant ultérieur");
    match why {
        Some((service, why)) => {
            format!("{alert}, pour le service « {} » : {why} (article 28, paragraphe 4, du RGPD)", service.name)
        }
        None => format!("{alert} (article 28, paragraphe 4, du RGPD)"),
    }
}

/// The services `org` carries out for the controller that a contract of its chains binds for
/// other services only ([`Binding::Outside`]): for its own links, each service listed as under
/// no contract (« Visioconférence : le marché GC-… ne couvre pas ce service ») with its alert;
/// for its sub-processors' links, the alert. `chains` are all the links of the controller's
/// chains it is in (who its client works for).
fn uncovered_services(
    world: &World,
    catalog: &Catalog,
    org: &OrgFacts,
    (controller, chains): (&str, &[Link]),
    services: &ServiceLinks,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let mut uncovered = Vec::new();
    for (code, links) in services {
        let Some(service) = catalog.service(code) else { continue };
        for link in links {
            let Binding::Outside(c) = link_binding(world, link, controller, Some(code)) else { continue };
            let why = c.leaves_out("ce service");
            if link.0 == org.id {
                push_once(&mut uncovered, format!("{} : {why}", service.name));
                let alert = missing_contract_with(world, chains, &link.1);
                push_once(warnings, format!("{alert}, pour le service « {} » : {why}", service.name));
            } else {
                push_once(warnings, sub_processor_alert(world, &org.id, link, Some((service, why))));
            }
        }
    }
    uncovered
}

/// The contracts binding `processor` in the links `links` (rendered as `rendered`), each once with
/// the clients it binds it to, in chain order.
fn contracts_of(world: &World, processor: &str, links: &[Link], rendered: &[ProcessorLink]) -> Vec<ClientContract> {
    let mut out: Vec<ClientContract> = Vec::new();
    for (link, l) in links.iter().zip(rendered).filter(|(link, _)| link.0 == processor) {
        let Some(contract) = &l.contract else { continue };
        let client = designation(&or_unknown(&link.1, world)).article;
        match out.iter_mut().find(|c| c.contract == *contract) {
            Some(listed) => push_once(&mut listed.clients, client),
            None => out.push(ClientContract { contract: contract.clone(), clients: vec![client] }),
        }
    }
    out
}

/// Whether `contracts` are more than one contract with one client: then an entry lists them.
fn several(contracts: &[ClientContract]) -> bool {
    contracts.len() > 1 || contracts.iter().any(|c| c.clients.len() > 1)
}

fn processor_entry(
    world: &World,
    catalog: &Catalog,
    org: &OrgFacts,
    controller_id: &str,
    roles: BTreeSet<&str>,
    services: ServiceLinks,
    agg: Agg,
) -> ProcessorEntry {
    let controller = or_unknown(controller_id, world);
    let (links, _) = links_rendered(world, &agg.links, controller_id, None);
    let contracts = contracts_of(world, &org.id, &agg.links, &links);
    let contract = contracts.first().map(|c| c.contract.clone());
    let mut warnings: Vec<String> = Vec::new();
    // The contract a processor lacks is with its direct client (art. 28(4)): the commune it
    // works for, itself the processor of the controller, not the controller.
    for (link, rendered) in agg.links.iter().zip(&links) {
        if link.0 == org.id && !rendered.art28_contract {
            push_once(&mut warnings, missing_contract_with(world, &agg.links, &link.1));
        }
    }
    // Only the links downstream of this processor in its own chains: another
    // commune's chain of the same controller is not subcontracted by it.
    let (downstream, _) = links_rendered(world, &agg.downstream, controller_id, None);
    let mut sub_processors: Vec<String> = Vec::new();
    for (link, l) in agg.downstream.iter().zip(&downstream) {
        let contract = l.contract.as_ref().map_or_else(|| NO_CONTRACT.to_string(), ContractRef::citation);
        push_once(&mut sub_processors, format!("{} ({}, {}) ; {contract}", l.org.name, l.role, l.org.country));
        // Its sub-processors are its own obligation (art. 28(4)): its register raises them.
        if !l.art28_contract {
            push_once(&mut warnings, sub_processor_alert(world, &org.id, link, None));
        }
    }
    let uncovered = uncovered_services(world, catalog, org, (controller_id, &agg.links), &services, &mut warnings);
    let processing = processing_of(catalog, services.keys().copied());
    let controller_dpo = dpo(&controller);
    let mut missing = Vec::new();
    // Art. 30.2.a: the name and contact details of the processor and of each controller.
    if no_contact(&actor(org)) {
        missing.push("coordonnées du sous-traitant".into());
    }
    let of_controller = designation(&controller).of;
    if no_contact(&actor(&controller)) {
        missing.push(format!("coordonnées {of_controller}"));
    }
    if controller_dpo.name.is_empty() && controller_dpo.email.is_empty() {
        missing.push(format!("délégué à la protection des données {of_controller}"));
    }
    let p = org.profile.clone().unwrap_or_default();
    if p.dpo_name.is_empty() && p.dpo_email.is_empty() {
        missing.push("délégué à la protection des données du sous-traitant".into());
    }
    let transfers = transfers(world, &downstream);
    missing.extend(missing_safeguards(&transfers));
    ProcessorEntry {
        key: controller_id.to_string(),
        controller: actor(&controller),
        controller_dpo,
        roles: roles.into_iter().map(String::from).collect(),
        processing,
        establishments: agg.establishments.len(),
        contract,
        contracts: if several(&contracts) { contracts } else { Vec::new() },
        uncovered,
        transfers,
        security_measures: security(
            world,
            &agg,
            under_cctp(world, &agg.links, controller_id, Some(&org.id), None),
            org,
        ),
        sub_processors,
        warnings,
        missing,
        ahead: None,
    }
}

/// The categories of processing an Art. 30(2) entry names for the services `codes`: each
/// service with its purposes (« Messagerie : … »).
fn processing_of<'a>(catalog: &Catalog, codes: impl Iterator<Item = &'a str>) -> Vec<String> {
    codes
        .filter_map(|code| catalog.service(code))
        .map(|s| format!("{} : {}", s.name, s.rgpd.purposes.join(" ; ")))
        .collect()
}

/// What a convention signed but not yet in force ([`World::ahead`]) will make an organisation
/// process for one controller: the convention, its first day, the services of the schools it
/// will cover and those schools.
#[derive(Default)]
struct ToCome<'w> {
    convention: String,
    start: String,
    services: BTreeSet<&'w str>,
    schools: BTreeSet<String>,
}

impl<'w> ToCome<'w> {
    /// Adds `school`, running `services` under the default roles, when the convention signed for
    /// it names `org_id` among its processors (the roles the registers will assign, [`signed_roles`]).
    fn add(
        to_come: &mut BTreeMap<String, ToCome<'w>>,
        world: &World,
        org_id: &str,
        school: &OrgFacts,
        services: &'w [String],
    ) {
        let Some((signed, start)) = world.ahead.get(&school.id) else { return };
        let roles = signed_roles(world, school, signed);
        if roles.controller == org_id || !roles.processors.iter().any(|p| p == org_id) {
            return;
        }
        let entry = to_come.entry(roles.controller.clone()).or_default();
        if entry.convention.is_empty() {
            (entry.convention, entry.start) = (roles.convention.clone(), start.clone());
        }
        entry.services.extend(services.iter().map(String::as_str));
        entry.schools.insert(designation(school).article);
    }
}

/// The Art. 30(2) entry of what a convention signed but not yet in force will make `org` process
/// for `controller_id` (domain review 41, F8, the processor's side): labelled as such, it names
/// the convention, its first day, the processing to come and the schools, as the controller's
/// fiche cites it ([`ahead_warning`]); it binds `org` to nothing yet.
fn ahead_entry(
    world: &World,
    catalog: &Catalog,
    org: &OrgFacts,
    controller_id: &str,
    to_come: ToCome,
) -> ProcessorEntry {
    let controller = or_unknown(controller_id, world);
    let schools: Vec<String> = to_come.schools.iter().cloned().collect();
    let warning = format!(
        "pas encore en vigueur : la convention {} signée, qui prendra effet le {}, fera {} le {COLLECTIVITE} {} pour \
         {} (article 28 du RGPD) ; d'ici là, elle ne le lie pas et les rôles par défaut s'appliquent",
        to_come.convention,
        to_come.start,
        designation(org).of,
        designation(&controller).of,
        naming::and_list(&schools),
    );
    let contract = ContractRef {
        reference: to_come.convention.clone(),
        title: format!("Convention ENT (rôles RGPD, article 28), signée, prendra effet le {}", to_come.start),
        art28: true,
        ccap: None,
    };
    ProcessorEntry {
        key: controller_id.to_string(),
        controller: actor(&controller),
        controller_dpo: dpo(&controller),
        roles: vec![COLLECTIVITE.to_string()],
        processing: processing_of(catalog, to_come.services.iter().copied()),
        establishments: to_come.schools.len(),
        contract: Some(contract),
        contracts: Vec::new(),
        uncovered: Vec::new(),
        transfers: Vec::new(),
        security_measures: Vec::new(),
        sub_processors: Vec::new(),
        warnings: vec![warning],
        missing: Vec::new(),
        ahead: Some(Ahead { convention: to_come.convention, takes_effect: to_come.start }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str, kind: OrgKind, etab_type: Option<EtabType>) -> OrgFacts {
        OrgFacts {
            etab_type,
            departement_code: Some("094".into()),
            academie_code: Some("24".into()),
            ..OrgFacts::identity_only(id, kind, &id.to_uppercase(), format!("Org {id}"))
        }
    }

    fn profile() -> Profile {
        Profile {
            head_name: "Mme Dupont".into(),
            head_title: "principale".into(),
            address: "1 rue de l'École, 94000 Créteil".into(),
            email: "ce.0940001a@ac-creteil.fr".into(),
            dpo_name: "M. Martin".into(),
            dpo_email: "dpd@ac-creteil.fr".into(),
            ..Profile::default()
        }
    }

    /// A collège with an active tripartite convention, a vendor in the EU and a host outside it.
    fn world() -> World {
        let mut w = World::default();
        let mut college = org("college", OrgKind::Etablissement, Some(EtabType::College));
        college.profile = Some(profile());
        let mut host = org("host", OrgKind::Hebergeur, None);
        host.country = "US".into();
        for o in [college, org("dep", OrgKind::Departement, None), org("vendor", OrgKind::Editeur, None), host] {
            w.orgs.insert(o.id.clone(), o);
        }
        w.assignments.insert(
            "college".into(),
            Assignment {
                convention: "CONV-1".into(),
                controller: "college".into(),
                joint_controllers: vec![],
                processors: vec!["dep".into()],
            },
        );
        w.tenants.push(LiveTenant {
            vendor: Some("vendor".into()),
            host: Some("host".into()),
            security: vec!["mesure rendue".into()],
            ..LiveTenant::running("t1", "dep", &["college"], &["portail", "visio"], 600)
        });
        w.contracts.push(ContractFact {
            processor: "vendor".into(),
            client: "dep".into(),
            reference: "M-2026-01".into(),
            title: "Marché ENT".into(),
            art28: true,
            parent: None,
            cctp: false,
            annex: false,
            services: None,
            ccap: None,
        });
        w
    }

    fn catalog() -> Catalog {
        Catalog::load(None).unwrap()
    }

    #[test]
    fn the_security_measures_are_those_rendered_and_a_cctp_s_obligations_are_the_vendor_s() {
        let mut w = world();
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert_eq!(r.entries[0].security_measures, ["mesure rendue"], "no CCTP binds the vendor");
        let untrue = ["Journalisation", "conservée un an", "sauvegardes des données"];
        let all = |r: &Register| {
            let mut v: Vec<String> = r.entries.iter().flat_map(|e| e.security_measures.clone()).collect();
            v.extend(r.processor_entries.iter().flat_map(|e| e.security_measures.clone()));
            v
        };
        assert!(all(&r).iter().all(|m| !untrue.iter().any(|u| m.contains(u))), "{:?}", all(&r));
        // The vendor's market was awarded by a groupement: its CCTP's obligations are stated as its own.
        w.contracts[0].cctp = true;
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let measures = &r.entries[0].security_measures;
        assert_eq!(measures[0], "mesure rendue");
        assert_eq!(&measures[1..], CCTP_OBLIGATIONS.map(String::from));
        assert!(measures[1..].iter().all(|m| m.contains("à la charge du titulaire selon le CCTP, art.")));
        let vendor = derive(&w, &catalog(), "vendor", "2026-09-01", "now");
        assert!(vendor.processor_entries[0].security_measures.ends_with(&CCTP_OBLIGATIONS.map(String::from)));
    }

    /// The articles [`CCTP_OBLIGATIONS`] cite are those of the CCTP template, with that content.
    #[test]
    fn the_cctp_obligations_cite_the_template_s_articles() {
        let cctp = include_str!("../../../../templates/documents/groupements/cctp.txt");
        let article = |n: u32| {
            let start = cctp.find(&format!("## Article {n} –")).expect("article");
            let rest = &cctp[start + 3..];
            &rest[..rest.find("## ").unwrap_or(rest.len())]
        };
        assert!(article(6).contains("supprimer les comptes au plus tard trois mois après la fin du besoin"));
        assert!(article(9).contains("sauvegardées au moins une fois par jour dans un second centre de données"));
        assert!(article(10).contains("test d'intrusion") && article(10).contains("PASSI"));
        for (n, obligation) in [6, 9, 10].into_iter().zip(CCTP_OBLIGATIONS) {
            assert!(obligation.ends_with(&format!("selon le CCTP, art. {n}")), "{obligation}");
        }
    }

    #[test]
    fn a_service_removed_from_a_tenant_stays_in_the_register_until_its_data_are_purged() {
        let mut w = world();
        w.purge_after_months = 3;
        w.tenants[0].services = vec!["portail".into()];
        w.tenants[0].retained = vec!["exercices".into()];
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let services: Vec<&str> = r.entries.iter().map(|e| e.service.as_str()).collect();
        assert_eq!(services, ["exercices", "portail"]);
        let kept = &r.entries[0];
        let catalog = catalog();
        let own = &catalog.service("exercices").unwrap().rgpd.retention;
        assert!(kept.retention.starts_with(own.as_str()), "{}", kept.retention);
        let until =
            "jusqu'à la purge des données du tenant, 3 mois après son archivage (limitation de la conservation, \
                     article 5.1.e du RGPD)";
        assert!(kept.retention.contains(until) && kept.retention.contains("retiré du tenant t1"), "{}", kept.retention);
        assert!(kept.personal_data.iter().all(|d| d.retention == kept.retention));
        assert!(
            kept.warnings.iter().any(|w| w.starts_with("données conservées jusqu'à la purge")),
            "{:?}",
            kept.warnings
        );
        assert_eq!(r.entries[1].retention, catalog.service("portail").unwrap().rgpd.retention);

        // Archived: no service runs; each keeps its data until the purge, from the day stored.
        let mut archived = w.clone();
        archived.tenants[0].purge_from = Some("1er mars 2027".into());
        let r = derive(&archived, &catalog, "college", "2026-09-01", "now");
        let dated = "du tenant t1 (archivé, purge à partir du 1er mars 2027) : ses données ne sont plus traitées par \
                     le service mais restent conservées (volume de stockage maintenu) jusqu'à la purge des données \
                     du tenant, à la date indiquée";
        for entry in &r.entries {
            assert!(entry.retention.contains(dated), "{}: {}", entry.service, entry.retention);
            assert!(!entry.retention.contains("3 mois après son archivage"), "{}", entry.retention);
        }
        // Its host still stores them: a processor of the controller.
        assert!(register_holders(&w, &catalog).contains("host"));
        assert_eq!(derive(&w, &catalog, "host", "2026-09-01", "now").processor_entries[0].processing.len(), 2);
    }

    #[test]
    fn a_tenant_described_from_what_it_runs_says_that_its_catalog_entry_is_gone() {
        let mut w = world();
        w.tenants[0].catalog_note = Some("l'entrée du catalogue de son offre n'existe plus".into());
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert_eq!(r.entries.len(), 2);
        for e in &r.entries {
            let note = "tenant t1 : l'entrée du catalogue de son offre n'existe plus";
            assert!(e.warnings.iter().any(|w| w == note), "{:?}", e.warnings);
        }
    }

    /// CONV-1's signed annex lists the portail only: the visio its ENT added since is under no
    /// contract, on the controller's fiche and in the collectivité's Art. 30(2) entry.
    #[test]
    fn a_convention_covers_the_services_its_signed_annex_lists_not_one_added_since() {
        let mut w = world();
        w.annexes.insert("CONV-1".into(), vec!["portail".into()]);
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let why = "l'annexe de l'article 28 de la convention CONV-1 ne couvre pas le service « Visioconférence »";
        let (portail, visio) = (&r.entries[0].processors[0], &r.entries[1].processors[0]);
        assert_eq!(portail.contract.as_ref().map(|c| c.reference.as_str()), Some("CONV-1"));
        assert_eq!((visio.contract.as_ref(), visio.uncovered.as_str()), (None, why));
        let alert = format!("Org dep (sous-traitant (collectivité)) : aucun contrat comportant les clauses de l'article 28 pour ce service ({why})");
        assert!(r.entries[1].warnings.contains(&alert), "{:?}", r.entries[1].warnings);
        let dep = derive(&w, &catalog(), "dep", "2026-09-01", "now");
        assert_eq!(
            dep.processor_entries[0].uncovered,
            ["Visioconférence : l'annexe de l'article 28 de la convention CONV-1 ne couvre pas ce service"]
        );
        // A convention whose text was never frozen covers the services of its chains.
        w.annexes.clear();
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert!(r.entries[1].processors[0].contract.is_some(), "{:?}", r.entries[1].processors[0]);
    }

    /// The AIPD names the art. 9 category the ENT processes (never art. 10 without data on offences)
    /// and says what requires it: art. 35.1, with 35.3.b only for sensitive data at large scale.
    #[test]
    fn the_aipd_cites_the_articles_of_the_categories_processed_and_what_requires_it() {
        let mut w = world();
        w.tenants[0].services = vec!["vie-scolaire".into()];
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let ent = &r.entries[0].dpia;
        assert_eq!(ent.reasons[0], "personnes vulnérables : élèves mineurs (considérant 75 du RGPD)");
        assert!(ent.reasons[1].starts_with("données sensibles au sens de l'article 9 du RGPD : Absences"), "{ent:?}");
        assert!(ent.reasons[1].contains("; données à caractère hautement personnel : Notes"), "{ent:?}");
        assert!(!ent.reasons.iter().any(|r| r.contains("article 10")), "{ent:?}");
        assert!(ent.basis.starts_with("article 35, paragraphe 1, du RGPD"), "{ent:?}");
        w.tenants[0].accounts = 6_000;
        let large = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert!(
            large.entries[0].dpia.basis.starts_with("article 35, paragraphe 3, b), du RGPD"),
            "{:?}",
            large.entries[0].dpia
        );
        let data = |category: &str| DataCategory {
            category: category.into(),
            sensitive: true,
            highly_personal: false,
            retention: String::new(),
        };
        let offences = dpia(
            false,
            &[data("Signalements (faits pouvant constituer une infraction, art. 10 RGPD)")],
            &Agg::default(),
            &Scale::default(),
        );
        assert!(
            offences.reasons[0]
                .starts_with("données relatives aux condamnations pénales et aux infractions au sens de l'article 10"),
            "{offences:?}"
        );
        assert!(!offences.reasons[0].contains("article 9"), "{offences:?}");
    }

    #[test]
    fn a_controller_gets_one_entry_per_running_service_with_its_chain() {
        let r = derive(&world(), &catalog(), "college", "2026-09-01", "2026-09-01T08:00:00Z");
        let names: Vec<&str> = r.entries.iter().map(|e| e.service.as_str()).collect();
        assert_eq!(names, ["portail", "visio"]);
        let visio = &r.entries[1];
        let roles: Vec<&str> = visio.processors.iter().map(|p| p.role.as_str()).collect();
        assert_eq!(roles, ["sous-traitant (collectivité)", "éditeur", "hébergeur"]);
        assert_eq!(
            visio.processors[0].contract.as_ref().unwrap().reference,
            "CONV-1",
            "the convention binds the collectivité"
        );
        assert_eq!(visio.processors[2].acts_for, "Org vendor");
        // Image and voice are highly personal (WP248): with minors, two criteria.
        assert!(visio.minors && visio.dpia.required, "minors and image and voice: {:?}", visio.dpia);
        assert_eq!(visio.dpia.reasons.len(), 2, "{:?}", visio.dpia);
        // The portail has minors only, but it is part of the same ENT: the ENT's AIPD covers it.
        assert_eq!(r.entries[0].dpia, visio.dpia);
        assert_eq!(r.entries[0].dpia_covered_by, "COLLEGE-ENT");
        assert_eq!(visio.establishments[0].uai, "COLLEGE");
        assert_eq!(visio.conventions, ["CONV-1"]);
    }

    /// The ENT is one processing: every service line of a controller carries the one AIPD verdict
    /// judged on the union of the services' criteria, and says that the ENT's AIPD covers it.
    #[test]
    fn the_aipd_is_judged_once_for_the_ent_and_covers_every_service() {
        let r = derive(&world(), &catalog(), "college", "2026-09-01", "now");
        assert_eq!(r.processings.len(), 1);
        let ent = &r.processings[0];
        assert_eq!((ent.reference.as_str(), ent.name.as_str()), ("COLLEGE-ENT", ENT_PROCESSING));
        assert_eq!(ent.entries, ["COLLEGE-portail", "COLLEGE-visio"]);
        // Minors (every service) and image and voice (the visio's): two criteria, for the whole ENT.
        assert!(ent.dpia.required, "{:?}", ent.dpia);
        assert_eq!(ent.dpia.reasons.len(), 2, "{:?}", ent.dpia);
        for e in &r.entries {
            assert_eq!((&e.dpia, e.dpia_covered_by.as_str()), (&ent.dpia, "COLLEGE-ENT"), "{}", e.reference);
            let field = crate::rgpd::export::entry_fields(e);
            let aipd = &field.iter().find(|(l, _)| *l == "Analyse d'impact (AIPD)").unwrap().1;
            assert!(
                aipd.starts_with("couvert par l'AIPD de l'ENT (COLLEGE-ENT) : AIPD requise (2 critères)"),
                "{aipd}"
            );
        }
        let html = ent_documents::documents::to_html(&crate::rgpd::export::document(&r));
        assert!(!html.contains("non requise"), "no service line says the ENT needs none");
        assert!(html.contains("Traitement COLLEGE-ENT"), "the ENT's own section");
    }

    #[test]
    fn large_scale_processing_of_minors_data_requires_a_dpia_and_says_why() {
        let mut w = world();
        w.tenants[0].services = vec!["portail".into()];
        w.tenants[0].accounts = LARGE_SCALE_ACCOUNTS;
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        // The portail: minors, no highly personal data; the scale makes the second criterion.
        let dpia = &r.entries[0].dpia;
        assert!(dpia.required);
        assert_eq!(dpia.reasons.len(), 2);
        let reason = "traitement à grande échelle (5\u{a0}000 personnes concernées, 1 établissement)";
        assert_eq!(dpia.reasons[1], reason, "{:?}", dpia.reasons);
        assert!(dpia.scale.starts_with("critère rempli — personnes concernées : 5\u{a0}000 "), "{}", dpia.scale);
    }

    // The large-scale line states its figures — the persons concerned from the declared accounts
    // and their source, the pupils the annuaire counts, the établissements —, the threshold and
    // its source, and its verdict; the rendered AIPD carries it.
    #[test]
    fn the_large_scale_line_states_its_figures_its_threshold_and_its_verdict() {
        let mut w = world();
        w.tenants[0].services = vec!["portail".into()];
        w.orgs.get_mut("college").unwrap().pupils = Some(1234);
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let portail = &r.entries[0];
        let line = format!(
            "critère non rempli — personnes concernées : 600 (comptes des élèves, personnels et familles des ENT \
             déployés : nombre de comptes de chaque tenant) ; élèves selon l'annuaire : 1\u{a0}234 ; établissements : 1 ; \
             {LARGE_SCALE_THRESHOLD}"
        );
        assert_eq!(portail.dpia.scale, line);
        assert!(LARGE_SCALE_THRESHOLD.contains("5\u{a0}000 personnes concernées ou 50 établissements"));
        assert!(LARGE_SCALE_THRESHOLD.contains("G29") && LARGE_SCALE_THRESHOLD.contains("WP248"));
        assert!(LARGE_SCALE_THRESHOLD.contains("CNIL"));
        let text = crate::rgpd::export::dpia_text(&portail.dpia);
        assert_eq!(
            text,
            format!(
                "non requise (un seul critère : personnes vulnérables : élèves mineurs (considérant 75 du RGPD)) — \
                 grande échelle : {line}"
            )
        );
        // The annuaire's pupils alone make the scale: met, with no account figure at all.
        w.orgs.get_mut("college").unwrap().pupils = Some(LARGE_SCALE_ACCOUNTS);
        w.tenants[0].accounts = 0;
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let dpia = &r.entries[0].dpia;
        assert!(dpia.required && !dpia.undetermined, "{dpia:?}");
        let expected = format!(
            "critère rempli — personnes concernées : {NOT_ASSESSABLE} ; élèves selon l'annuaire : 5\u{a0}000 ; \
             établissements : 1 ; "
        );
        assert!(dpia.scale.starts_with(&expected), "{}", dpia.scale);
        // Neither figure: not assessable, and said so.
        w.orgs.get_mut("college").unwrap().pupils = None;
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let dpia = &r.entries[0].dpia;
        assert!(dpia.undetermined, "{dpia:?}");
        assert!(dpia.scale.starts_with("critère non évaluable — "), "{}", dpia.scale);
        assert!(dpia.scale.contains("élèves selon l'annuaire : effectifs non renseignés dans l'annuaire ;"));
        assert!(crate::rgpd::export::dpia_text(dpia).contains("— grande échelle : critère non évaluable — "));
    }

    /// Domain review 41 (F7): a convention's declared accounts are a total for all the écoles it
    /// covers, ENT or not: a forecast the line shows once, labelled, never the scale — the persons
    /// concerned are the deployed tenants' accounts, and the criterion is judged on them.
    #[test]
    fn a_convention_s_declared_accounts_are_a_forecast_shown_once_never_the_scale() {
        let mut w = world();
        w.tenants[0].services = vec!["vie-scolaire".into()];
        let second_school = org("college2", OrgKind::Etablissement, Some(EtabType::College));
        w.orgs.insert(second_school.id.clone(), second_school);
        w.assignments.insert("college2".into(), w.assignments["college"].clone());
        let mut second = w.tenants[0].clone();
        second.slug = "t2".into();
        second.schools = vec!["college2".into()];
        w.tenants.push(second);
        let forecast = Forecast {
            key: "CONV-1".into(),
            source: "convention CONV-1, pour 42 établissements couverts".into(),
            accounts: 6200,
        };
        for t in &mut w.tenants {
            t.accounts = 320;
            t.forecasts = vec![forecast.clone()];
        }
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let e = &r.entries[0];
        assert_eq!((e.establishments.len(), e.accounts), (2, 640), "the deployed accounts, not the convention's");
        assert!(e.dpia.scale.starts_with("critère non rempli — personnes concernées : 640 ("), "{}", e.dpia.scale);
        let shown = format!("{FORECAST} : 6\u{a0}200 comptes (convention CONV-1, pour 42 établissements couverts) ;");
        assert_eq!(e.dpia.scale.matches(&shown).count(), 1, "once, labelled: {}", e.dpia.scale);
        assert!(!e.dpia.reasons.iter().any(|r| r.contains("grande échelle")), "{:?}", e.dpia.reasons);
        assert!(!e.dpia.basis.contains("35, paragraphe 3"), "no art. 35.3.b on a forecast: {:?}", e.dpia);
        // The deployed accounts reach the threshold: met, the établissements in agreement.
        w.tenants[1].accounts = LARGE_SCALE_ACCOUNTS;
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let dpia = &r.entries[0].dpia;
        let reason = "traitement à grande échelle (5\u{a0}320 personnes concernées, 2 établissements)";
        assert!(dpia.reasons.iter().any(|r| r == reason), "{:?}", dpia.reasons);
        assert!(dpia.basis.starts_with("article 35, paragraphe 3, b), du RGPD"), "{dpia:?}");
    }

    /// Domain review 41 (F8): a school run before its convention takes effect keeps the default
    /// roles, and its fiche cites the signed convention that will govern it, its roles named.
    #[test]
    fn a_fiche_cites_the_signed_convention_that_will_take_effect() {
        let mut w = world();
        // The convention is signed, not yet in force: it names the département processor.
        let ahead = Assignment { convention: "CONV-9".into(), ..w.assignments.remove("college").unwrap() };
        w.ahead.insert("college".into(), (ahead, "4 janvier 2027".into()));
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let warnings = &r.entries[0].warnings;
        assert!(
            warnings.iter().any(|w| w.starts_with("aucune convention en vigueur pour 1 établissement (")),
            "{warnings:?}"
        );
        let cited = warnings.iter().find(|w| w.starts_with("la convention CONV-9 signée, qui prendra effet le 4 janvier 2027, fixe les rôles RGPD de ce traitement pour "));
        let cited = cited.unwrap_or_else(|| panic!("{warnings:?}"));
        assert!(cited.contains(&format!("{COLLECTIVITE} : ")) && cited.contains("(article 28 du RGPD)"), "{cited}");
        assert!(
            cited.ends_with("d'ici là, les rôles par défaut s'appliquent et elle ne lie encore aucun sous-traitant")
        );
        // Once in force, the convention's roles apply and nothing is cited ahead.
        let (roles, _) = w.ahead.remove("college").unwrap();
        w.assignments.insert("college".into(), roles);
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert!(!r.entries[0].warnings.iter().any(|w| w.contains("prendra effet")), "{:?}", r.entries[0].warnings);
    }

    #[test]
    fn minors_with_no_account_figure_leave_the_dpia_to_be_determined_never_not_required() {
        let mut w = world();
        w.tenants[0].services = vec!["portail".into()];
        w.tenants[0].accounts = 0;
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        // The portail: minors only, and a scale nothing lets judge.
        let portail = &r.entries[0];
        assert!(!portail.dpia.required && portail.dpia.undetermined, "{:?}", portail.dpia);
        let text = crate::rgpd::export::dpia_text(&portail.dpia);
        assert!(text.starts_with("à déterminer") && !text.contains("non requise"), "{text}");
        assert!(portail.missing.iter().any(|m| m == DPIA_UNDETERMINED), "{:?}", portail.missing);
        // With the visio in the ENT, two criteria without the scale: required, not undetermined.
        w.tenants[0].services.push("visio".into());
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert!(r.entries.iter().all(|e| e.dpia.required && !e.dpia.undetermined), "{:?}", r.entries[0].dpia);
        // With a known figure below the threshold, the portail alone needs none.
        let mut w = world();
        w.tenants[0].services = vec!["portail".into()];
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert!(!r.entries[0].dpia.undetermined && !r.entries[0].missing.iter().any(|m| m == DPIA_UNDETERMINED));
    }

    #[test]
    fn a_processor_outside_the_eu_is_a_transfer_and_missing_contracts_are_flagged() {
        let r = derive(&world(), &catalog(), "college", "2026-09-01", "now");
        let portail = &r.entries[0];
        assert_eq!(portail.transfers.len(), 1);
        assert_eq!(portail.transfers[0].country, "US");
        // The portail has no transfer note in the catalog: its safeguards are missing.
        assert!(portail.missing.iter().any(|m| m.contains("garanties du transfert")), "{:?}", portail.missing);
        // The visio's catalog note says its servers are in the EU: a claim, not a safeguard
        // of the computed transfer, which stays undocumented and makes the entry incomplete.
        let visio = &r.entries[1];
        assert_eq!(visio.transfers.len(), 1);
        assert_eq!(visio.transfers[0].country, "US");
        assert!(visio.transfers[0].safeguard.is_empty(), "{:?}", visio.transfers[0]);
        assert!(
            visio.missing.iter().any(|m| m == "garanties du transfert hors EEE vers Org host (US)"),
            "{:?}",
            visio.missing
        );
        assert!(r.incomplete.iter().any(|i| i.reference == "COLLEGE-visio"), "{:?}", r.incomplete);
        assert!(visio.warnings.iter().any(|w| w.contains("Org host (hébergeur)")), "{:?}", visio.warnings);
        assert!(!visio.warnings.iter().any(|w| w.contains("Org vendor")));
    }

    #[test]
    fn a_complete_entry_has_nothing_missing_and_an_incomplete_one_names_the_field() {
        let mut w = world();
        w.orgs.get_mut("host").unwrap().country = "DE".into();
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert!(r.entries.iter().all(|e| e.missing.is_empty()), "{:?}", r.incomplete);
        w.orgs.get_mut("college").unwrap().profile.as_mut().unwrap().dpo_email.clear();
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let entries: Vec<_> = r.incomplete.iter().filter(|i| i.reference != "REGISTRE").collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].missing, ["coordonnées du délégué à la protection des données"]);
        let head = r.incomplete.iter().find(|i| i.reference == "REGISTRE").expect("the heading's DPO");
        assert_eq!(head.missing, ["coordonnées du délégué à la protection des données"]);
    }

    #[test]
    fn a_register_whose_heading_lacks_its_dpo_is_incomplete_even_without_an_entry() {
        let mut w = world();
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert!(r.incomplete.iter().all(|i| i.reference != "REGISTRE"), "{:?}", r.incomplete);
        w.tenants.clear();
        let profile = w.orgs.get_mut("college").unwrap().profile.as_mut().unwrap();
        (profile.dpo_name, profile.dpo_email, profile.dpo_phone, profile.dpo_address) = Default::default();
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        assert_eq!(r.entries_count(), 0);
        let head = r.incomplete.iter().find(|i| i.reference == "REGISTRE").expect("the heading is incomplete");
        assert!(head.missing.iter().any(|m| m == "nom du délégué à la protection des données"), "{:?}", head.missing);
    }

    #[test]
    fn sensitive_data_without_its_article_9_2_condition_is_a_missing_field() {
        let mut w = world();
        w.tenants[0].services.push("vie-scolaire".into());
        let entry = |c: &Catalog| {
            let r = derive(&w, c, "college", "2026-09-01", "now");
            r.entries.into_iter().find(|e| e.service == "vie-scolaire").expect("vie scolaire entry")
        };
        assert!(!entry(&catalog()).missing.iter().any(|m| m == SENSITIVE_CONDITION_MISSING));
        let mut overlay = catalog();
        let service = overlay.services.iter_mut().find(|s| s.code == "vie-scolaire").unwrap();
        service.rgpd.legal_basis = "Mission d'intérêt public (art. 6.1.e RGPD)".into();
        let flagged = entry(&overlay);
        assert!(flagged.missing.iter().any(|m| m == SENSITIVE_CONDITION_MISSING), "{:?}", flagged.missing);
    }

    #[test]
    fn a_processor_entry_names_the_missing_contact_details_of_the_processor_and_the_controller() {
        let mut w = world();
        let r = derive(&w, &catalog(), "vendor", "2026-09-01", "now");
        let missing = &r.processor_entries[0].missing;
        assert!(missing.contains(&"coordonnées du sous-traitant".to_string()), "{missing:?}");
        assert!(!missing.iter().any(|m| m.starts_with("coordonnées de l'Org college")), "{missing:?}");
        w.orgs.get_mut("vendor").unwrap().email = Some("contact@editeur.example".into());
        w.orgs.get_mut("college").unwrap().profile = None;
        let r = derive(&w, &catalog(), "vendor", "2026-09-01", "now");
        let missing = &r.processor_entries[0].missing;
        assert!(!missing.iter().any(|m| m == "coordonnées du sous-traitant"), "{missing:?}");
        assert!(missing.contains(&"coordonnées de l'Org college".to_string()), "{missing:?}");
    }

    #[test]
    fn processors_get_an_art_30_2_entry_per_controller() {
        let r = derive(&world(), &catalog(), "vendor", "2026-09-01", "now");
        assert!(r.entries.is_empty());
        assert_eq!(r.processor_entries.len(), 1);
        let p = &r.processor_entries[0];
        assert_eq!(p.controller.name, "Org college");
        assert_eq!(p.roles, ["éditeur"]);
        assert_eq!(p.contract.as_ref().unwrap().reference, "M-2026-01");
        assert_eq!(p.sub_processors, ["Org host (hébergeur, US) ; AUCUN CONTRAT art. 28"]);
    }

    #[test]
    fn a_processor_s_sub_processors_are_those_downstream_of_it_in_its_own_chains() {
        // The DSDEN controls the écoles of two communes, each a processor under its
        // convention; both tenants have the same vendor and host: c1→vendor→host, c2→vendor→host.
        let mut w = world();
        w.orgs.insert("dsden".into(), org("dsden", OrgKind::Dsden, None));
        for (ecole, commune, conv, slug) in [("e1", "c1", "CONV-E1", "t1"), ("e2", "c2", "CONV-E2", "t2")] {
            w.orgs.insert(ecole.into(), org(ecole, OrgKind::Etablissement, Some(EtabType::EcoleElementaire)));
            w.orgs.insert(commune.into(), org(commune, OrgKind::Commune, None));
            w.assignments.insert(
                ecole.into(),
                Assignment {
                    convention: conv.into(),
                    controller: "dsden".into(),
                    joint_controllers: vec![],
                    processors: vec![commune.into()],
                },
            );
            let mut tenant = w.tenants[0].clone();
            tenant.slug = slug.into();
            tenant.schools = vec![ecole.into()];
            w.tenants.push(tenant);
        }
        w.tenants.remove(0);
        let r = derive(&w, &catalog(), "vendor", "2026-09-01", "now");
        assert_eq!(r.processor_entries.len(), 1);
        let p = &r.processor_entries[0];
        assert_eq!(p.controller.name, "Org dsden");
        assert_eq!(p.sub_processors, ["Org host (hébergeur, US) ; AUCUN CONTRAT art. 28"]);
        // Its transfers come from its sub-processors only, once, without documented safeguards.
        let transfers: Vec<(&str, &str)> =
            p.transfers.iter().map(|t| (t.recipient.as_str(), t.country.as_str())).collect();
        assert_eq!(transfers, [("Org host", "US")]);
        assert!(p.missing.iter().any(|m| m == "garanties du transfert hors EEE vers Org host (US)"), "{:?}", p.missing);
        // A commune subcontracts to the vendor and the host of its own chain, not to the other commune.
        let r = derive(&w, &catalog(), "c1", "2026-09-01", "now");
        assert_eq!(
            r.processor_entries[0].sub_processors,
            ["Org vendor (éditeur, FR) ; AUCUN CONTRAT art. 28", "Org host (hébergeur, US) ; AUCUN CONTRAT art. 28"]
        );
        // The DSDEN's own entries still list both chains (the vendor once per commune it acts for).
        let r = derive(&w, &catalog(), "dsden", "2026-09-01", "now");
        let visio = r.entries.iter().find(|e| e.service == "visio").unwrap();
        let links: Vec<(&str, &str)> =
            visio.processors.iter().map(|l| (l.org.name.as_str(), l.acts_for.as_str())).collect();
        assert_eq!(
            links,
            [
                ("Org c1", "Org dsden"),
                ("Org vendor", "Org c1"),
                ("Org host", "Org vendor"),
                ("Org c2", "Org dsden"),
                ("Org vendor", "Org c2")
            ]
        );
    }

    /// The DSDEN controls an école of Vitry, the commune its processor under the convention,
    /// the vendor the commune's: the contract the vendor lacks is with the commune.
    /// [`world`] with the collège's tenant serving instead an école of Vitry, whose controller is
    /// the DSDEN and processor the commune (convention CONV-4), as the demo names them.
    fn vitry_world() -> World {
        let mut w = world();
        let mut dsden = org("dsden", OrgKind::Dsden, None);
        dsden.name = "DSDEN – Val-de-Marne".into();
        let mut vitry = org("vitry", OrgKind::Commune, None);
        vitry.name = "Vitry-sur-Seine".into();
        for o in [dsden, vitry, org("ecole", OrgKind::Etablissement, Some(EtabType::EcoleElementaire))] {
            w.orgs.insert(o.id.clone(), o);
        }
        let roles = Assignment {
            convention: "CONV-4".into(),
            controller: "dsden".into(),
            joint_controllers: vec![],
            processors: vec!["vitry".into()],
        };
        w.assignments.insert("ecole".into(), roles);
        w.tenants[0].schools = vec!["ecole".into()];
        w
    }

    /// A commune's role comes from the conventions: the DSDEN's processor, also for écoles of its
    /// convention that no tenant serves yet (an académie named by the convention gives way to the
    /// DSDEN of the commune's département); the collège controls its own processing.
    #[test]
    fn a_client_s_roles_come_from_the_conventions_not_from_its_contracts() {
        let mut w = vitry_world();
        w.orgs.insert("acad".into(), org("acad", OrgKind::Academie, None));
        w.dsden_by_departement.insert("094".into(), "dsden".into());
        let unserved = Assignment {
            convention: "CONV-5".into(),
            controller: "acad".into(),
            joint_controllers: vec![],
            processors: vec!["vitry".into()],
        };
        w.assignments.insert("ecole-sans-tenant".into(), unserved);
        let roles = client_roles(&w, "vitry");
        let said: Vec<(&str, &str)> = roles.controllers.iter().map(|(a, c)| (a.name.as_str(), c.as_str())).collect();
        assert_eq!(said, [("DSDEN – Val-de-Marne", "CONV-4"), ("DSDEN – Val-de-Marne", "CONV-5")]);
        assert!(!roles.controls);
        let college = client_roles(&w, "college");
        assert!(college.controls && college.controllers.is_empty(), "{college:?}");
    }

    /// A world without convention in force: the organisations `orgs`, the DSDEN of the
    /// Val-de-Marne (094) and the live tenants `tenants` (slug, the client holding it, its schools).
    fn defaults_world(orgs: Vec<OrgFacts>, tenants: &[(&str, &str, &[&str])]) -> World {
        let mut w = World::default();
        for o in orgs.into_iter().chain([org("dsden", OrgKind::Dsden, None)]) {
            w.orgs.insert(o.id.clone(), o);
        }
        w.dsden_by_departement.insert("094".into(), "dsden".into());
        for (slug, client, schools) in tenants {
            w.tenants.push(LiveTenant::running(slug, client, schools, &["portail"], 100));
        }
        w
    }

    /// The ids of the controllers [`default_controllers`] names for `client`, in order.
    fn defaults_of(w: &World, client: &str) -> Vec<String> {
        default_controllers(w, client).into_iter().map(|a| a.id).collect()
    }

    /// A commune's (or an EPCI's) public écoles: the IA-DASEN, the DSDEN of their département,
    /// named once for all of them; an école a convention in force covers is not a default.
    #[test]
    fn by_default_the_ecoles_of_a_commune_or_an_epci_fall_to_the_dsden_once() {
        let ecole = |id: &str, t: EtabType| org(id, OrgKind::Etablissement, Some(t));
        let orgs = vec![
            org("fresnes", OrgKind::Commune, None),
            org("epci", OrgKind::Epci, None),
            ecole("maternelle", EtabType::EcoleMaternelle),
            ecole("elementaire", EtabType::EcoleElementaire),
            ecole("primaire", EtabType::EcolePrimaire),
            ecole("sous-convention", EtabType::EcolePrimaire),
        ];
        let tenants: [(&str, &str, &[&str]); 3] = [
            ("fresnes", "fresnes", &["maternelle", "elementaire"]),
            ("epci", "epci", &["primaire"]),
            ("couverte", "fresnes", &["sous-convention"]),
        ];
        let mut w = defaults_world(orgs, &tenants);
        assert_eq!(defaults_of(&w, "fresnes"), ["dsden"]);
        assert_eq!(default_controllers(&w, "fresnes")[0].kind, "dsden");
        assert_eq!(defaults_of(&w, "epci"), ["dsden"]);
        let roles = Assignment {
            convention: "CONV-1".into(),
            controller: "dsden".into(),
            joint_controllers: vec![],
            processors: vec!["fresnes".into()],
        };
        for school in ["maternelle", "elementaire", "sous-convention"] {
            w.assignments.insert(school.into(), roles.clone());
        }
        assert!(defaults_of(&w, "fresnes").is_empty(), "a convention in force fixes the roles");
        assert_eq!(defaults_of(&w, "epci"), ["dsden"], "the EPCI's école is under no convention");
    }

    /// A département's collèges and a région's lycées: each school is its own controller (its
    /// chef d'établissement), named in the order of the tenants' schools; another client's
    /// tenant names none of them.
    #[test]
    fn by_default_the_colleges_of_a_departement_and_the_lycees_of_a_region_are_their_own_controllers() {
        let school = |id: &str, t: EtabType| org(id, OrgKind::Etablissement, Some(t));
        let orgs = vec![
            org("dep", OrgKind::Departement, None),
            org("region", OrgKind::Region, None),
            school("college-b", EtabType::College),
            school("college-a", EtabType::College),
            school("lycee", EtabType::Lycee),
        ];
        let tenants: [(&str, &str, &[&str]); 2] =
            [("colleges", "dep", &["college-b", "college-a"]), ("lycees", "region", &["lycee"])];
        let w = defaults_world(orgs, &tenants);
        assert_eq!(defaults_of(&w, "dep"), ["college-b", "college-a"]);
        assert_eq!(defaults_of(&w, "region"), ["lycee"]);
        assert!(defaults_of(&w, "dsden").is_empty(), "it holds no tenant");
    }

    /// A private école, and an école of a département whose DSDEN the registry lacks, are their
    /// own controllers; a school holding its own ENT is its own controller, as its register says;
    /// one the world does not know names none.
    #[test]
    fn by_default_a_private_ecole_one_without_a_known_dsden_or_a_college_holding_its_ent_is_its_own_controller() {
        let mut prive = org("prive", OrgKind::Etablissement, Some(EtabType::EcoleElementaire));
        prive.private = true;
        let mut ailleurs = org("ailleurs", OrgKind::Etablissement, Some(EtabType::EcoleElementaire));
        ailleurs.departement_code = Some("093".into());
        let orgs = vec![
            org("commune", OrgKind::Commune, None),
            prive,
            ailleurs,
            org("college", OrgKind::Etablissement, Some(EtabType::College)),
        ];
        let tenants: [(&str, &str, &[&str]); 2] =
            [("commune", "commune", &["prive", "ailleurs", "inconnue"]), ("college", "college", &["college"])];
        let w = defaults_world(orgs, &tenants);
        assert_eq!(defaults_of(&w, "commune"), ["prive", "ailleurs"]);
        assert_eq!(defaults_of(&w, "college"), ["college"], "its own controller, as its register says");
        assert_eq!(derive(&w, &catalog(), "college", "2026-09-01", "t").entries[0].controller.id, "college");
    }

    /// [`vitry_world`] with a second commune, Fresnes, processor of the DSDEN for an école of its
    /// own (convention CONV-5) whose ENT the same vendor runs; the vendor's contract is with each
    /// commune: M-2026-01 with Vitry, M-2026-02 with Fresnes.
    fn two_communes_world() -> World {
        let mut w = vitry_world();
        let mut fresnes = org("fresnes", OrgKind::Commune, None);
        fresnes.name = "Fresnes".into();
        for o in [fresnes, org("ecole-f", OrgKind::Etablissement, Some(EtabType::EcoleMaternelle))] {
            w.orgs.insert(o.id.clone(), o);
        }
        let roles = Assignment {
            convention: "CONV-5".into(),
            controller: "dsden".into(),
            joint_controllers: vec![],
            processors: vec!["fresnes".into()],
        };
        w.assignments.insert("ecole-f".into(), roles);
        w.tenants.push(LiveTenant {
            vendor: Some("vendor".into()),
            ..LiveTenant::running("t2", "fresnes", &["ecole-f"], &["portail"], 100)
        });
        w.contracts[0].client = "vitry".into();
        let fresnes_contract = ContractFact {
            client: "fresnes".into(),
            reference: "M-2026-02".into(),
            title: "Marché ENT de Fresnes".into(),
            ..w.contracts[0].clone()
        };
        w.contracts.push(fresnes_contract);
        w
    }

    /// The vendor works for the DSDEN through two communes: its one art. 30.2 entry for the DSDEN
    /// lists both contracts, each with its commune, the first also as `contract`; one market
    /// binding it to both is one contract with both clients; one contract with one client is
    /// `contract` alone.
    #[test]
    fn a_processor_working_for_several_communes_of_a_controller_lists_each_contract_with_its_client() {
        let mut w = two_communes_world();
        let listed = |w: &World| {
            let r = derive(w, &catalog(), "vendor", "2026-09-01", "now");
            assert_eq!(r.processor_entries.len(), 1, "one entry for the DSDEN: {:?}", r.processor_entries);
            let e = r.processor_entries[0].clone();
            let contracts: Vec<(String, Vec<String>)> =
                e.contracts.iter().map(|c| (c.contract.reference.clone(), c.clients.clone())).collect();
            (e.contract.map(|c| c.reference), contracts)
        };
        let (first, contracts) = listed(&w);
        assert_eq!(first.as_deref(), Some("M-2026-01"));
        assert_eq!(
            contracts,
            [
                ("M-2026-01".to_string(), vec!["la Commune de Vitry-sur-Seine".to_string()]),
                ("M-2026-02".to_string(), vec!["la Commune de Fresnes".to_string()]),
            ]
        );
        w.contracts[1] = ContractFact { client: "fresnes".into(), ..w.contracts[0].clone() };
        let (first, contracts) = listed(&w);
        assert_eq!(first.as_deref(), Some("M-2026-01"));
        let both = vec!["la Commune de Vitry-sur-Seine".to_string(), "la Commune de Fresnes".to_string()];
        assert_eq!(contracts, [("M-2026-01".to_string(), both)]);
        w.contracts.pop();
        let (first, contracts) = listed(&w);
        assert_eq!((first.as_deref(), contracts), (Some("M-2026-01"), vec![]), "Fresnes' link is under no contract");
    }

    #[test]
    fn the_vendor_s_missing_contract_alert_names_its_direct_client_not_the_controller() {
        let mut w = vitry_world();
        w.contracts.push(host_contract());
        let r = derive(&w, &catalog(), "vendor", "2026-09-01", "now");
        assert_eq!(
            r.processor_entries[0].warnings,
            ["aucun contrat comportant les clauses de l'article 28 avec la Commune de Vitry-sur-Seine, \
              sous-traitant de la DSDEN du Val-de-Marne"]
        );
        // Bound to the commune: no alert.
        w.contracts[0].client = "vitry".into();
        let r = derive(&w, &catalog(), "vendor", "2026-09-01", "now");
        assert!(r.processor_entries[0].warnings.is_empty(), "{:?}", r.processor_entries[0].warnings);
    }

    /// The host's Art. 28 contract with the vendor, its sub-processor.
    fn host_contract() -> ContractFact {
        ContractFact {
            processor: "host".into(),
            client: "vendor".into(),
            reference: "H-1".into(),
            title: "Hébergement".into(),
            art28: true,
            parent: Some("vendor".into()),
            cctp: false,
            annex: false,
            services: None,
            ccap: None,
        }
    }

    /// [`vitry_world`] after a groupement's award: the vendor bound to Vitry by the market,
    /// whose bouquet (socle-1d) leaves out the visioconférence the tenant runs with the portail.
    fn awarded_world() -> World {
        let mut w = vitry_world();
        let catalog = catalog();
        let market = catalog.market_services("socle-1d", &[]).iter().map(|s| s.code.clone()).collect();
        w.contracts[0] = ContractFact {
            processor: "vendor".into(),
            client: "vitry".into(),
            reference: "GC-2026-000002".into(),
            title: "Marché ENT du groupement de commandes GC-2026-000002".into(),
            art28: true,
            parent: None,
            cctp: true,
            annex: false,
            services: Some(market),
            ccap: Some(Ccap { version: 2, sha256: "c".repeat(64) }),
        };
        w.contracts.push(host_contract());
        w
    }

    /// A market's contract covers the services of its bouquet and options only: the fiche of a
    /// service it leaves out says the vendor works under no contract for it, and alerts; the
    /// fiche of a service it covers names it. The CCTP's obligations are not claimed for the
    /// service outside it.
    #[test]
    fn a_market_covers_the_fiches_of_its_bouquet_s_services_only() {
        let r = derive(&awarded_world(), &catalog(), "dsden", "2026-09-01", "now");
        let fiche = |code: &str| r.entries.iter().find(|e| e.service == code).unwrap();
        let vendor = |e: &Entry| e.processors.iter().find(|p| p.role == "éditeur").unwrap().clone();
        let portail = vendor(fiche("portail"));
        assert_eq!(portail.contract.map(|c| c.reference).as_deref(), Some("GC-2026-000002"));
        assert!(portail.art28_contract && portail.uncovered.is_empty());
        assert!(fiche("portail").warnings.is_empty(), "{:?}", fiche("portail").warnings);
        assert!(fiche("portail").security_measures.ends_with(&CCTP_OBLIGATIONS.map(String::from)));
        let visio = vendor(fiche("visio"));
        assert_eq!((visio.contract, visio.art28_contract), (None, false));
        assert_eq!(visio.uncovered, "le marché GC-2026-000002 ne couvre pas le service « Visioconférence »");
        assert_eq!(
            fiche("visio").warnings,
            ["Org vendor (éditeur) : aucun contrat comportant les clauses de l'article 28 pour ce service (le \
              marché GC-2026-000002 ne couvre pas le service « Visioconférence »)"]
        );
        assert!(!fiche("visio").security_measures.iter().any(|m| m.contains("CCTP")), "{:?}", fiche("visio"));
        // A contract whose description is not recorded covers the chain it binds.
        let mut w = awarded_world();
        w.contracts[0].services = None;
        let r = derive(&w, &catalog(), "dsden", "2026-09-01", "now");
        assert!(r.entries.iter().all(|e| e.warnings.is_empty()), "{:?}", r.entries);
    }

    /// The vendor's Art. 30(2) entry lists the service its market leaves out as under no
    /// contract, with an alert naming its client; the commune's entry alerts on it too (its
    /// sub-processor works under no contract for it).
    #[test]
    fn a_processor_s_register_lists_the_services_its_contract_leaves_out() {
        let r = derive(&awarded_world(), &catalog(), "vendor", "2026-09-01", "now");
        let p = &r.processor_entries[0];
        assert_eq!(p.contract.as_ref().map(|c| c.reference.as_str()), Some("GC-2026-000002"));
        assert_eq!(p.uncovered, ["Visioconférence : le marché GC-2026-000002 ne couvre pas ce service"]);
        assert_eq!(
            p.warnings,
            ["aucun contrat comportant les clauses de l'article 28 avec la Commune de Vitry-sur-Seine, sous-traitant \
              de la DSDEN du Val-de-Marne, pour le service « Visioconférence » : le marché GC-2026-000002 ne couvre \
              pas ce service"]
        );
        let r = derive(&awarded_world(), &catalog(), "vitry", "2026-09-01", "now");
        let p = &r.processor_entries[0];
        assert!(p.uncovered.is_empty(), "the convention binds the commune: {:?}", p.uncovered);
        assert_eq!(
            p.warnings,
            ["aucun contrat comportant les clauses de l'article 28 avec Org vendor, sous-traitant ultérieur, pour le \
              service « Visioconférence » : le marché GC-2026-000002 ne couvre pas ce service (article 28, \
              paragraphe 4, du RGPD)"]
        );
    }

    /// The market's contract is cited alike by the three registers of its chain, with the CCAP
    /// version holding its clauses: the commune's Art. 30(2) entry with its sub-processors (the
    /// éditeur under the market, the host under its own contract), the éditeur's as its contract,
    /// the DSDEN's fiche as the éditeur's.
    #[test]
    fn the_registers_of_a_market_s_chain_cite_its_ccap_alike() {
        let market = format!(
            "contrat GC-2026-000002 (clauses art. 28 : article 9 du CCAP, version 2, SHA-256 {})",
            "c".repeat(64)
        );
        let r = derive(&awarded_world(), &catalog(), "vitry", "2026-09-01", "now");
        assert_eq!(
            r.processor_entries[0].sub_processors,
            [
                format!("Org vendor (éditeur, FR) ; {market}"),
                "Org host (hébergeur, US) ; contrat H-1 (clauses art. 28)".into()
            ]
        );
        let r = derive(&awarded_world(), &catalog(), "vendor", "2026-09-01", "now");
        let contract = r.processor_entries[0].contract.clone().unwrap();
        assert_eq!(contract.citation(), market);
        let r = derive(&awarded_world(), &catalog(), "dsden", "2026-09-01", "now");
        let portail = r.entries.iter().find(|e| e.service == "portail").unwrap();
        let vendor = portail.processors.iter().find(|p| p.role == "éditeur").unwrap();
        assert_eq!(vendor.contract.as_ref().map(ContractRef::citation), Some(market));
    }

    /// A processor's own sub-processor without an Art. 28 contract is its obligation (art.
    /// 28(4)): its register raises it, as the controller's does; a commune's register raises
    /// its vendor and, further down, its vendor's host.
    #[test]
    fn a_processor_s_register_alerts_on_its_sub_processors_without_contract() {
        let mut w = vitry_world();
        w.contracts[0].client = "vitry".into();
        let alerts = |w: &World, org: &str| {
            derive(w, &catalog(), org, "2026-09-01", "now").processor_entries[0].warnings.clone()
        };
        assert_eq!(
            alerts(&w, "vendor"),
            ["aucun contrat comportant les clauses de l'article 28 avec Org host, sous-traitant ultérieur (article \
              28, paragraphe 4, du RGPD)"]
        );
        assert_eq!(
            alerts(&w, "vitry"),
            ["aucun contrat comportant les clauses de l'article 28 entre Org vendor et Org host, sous-traitant \
              ultérieur (article 28, paragraphe 4, du RGPD)"]
        );
        w.contracts.push(host_contract());
        assert!(alerts(&w, "vendor").is_empty(), "{:?}", alerts(&w, "vendor"));
        assert!(alerts(&w, "vitry").is_empty(), "{:?}", alerts(&w, "vitry"));
        w.contracts.remove(0);
        assert_eq!(
            alerts(&w, "vitry"),
            ["aucun contrat comportant les clauses de l'article 28 avec Org vendor, sous-traitant ultérieur (article \
              28, paragraphe 4, du RGPD)"]
        );
    }

    /// Organisations named as the register's title names them, with elision and article, and
    /// no parentheses nested in a recipient.
    #[test]
    fn registers_name_organisations_officially_with_elision() {
        let mut w = vitry_world();
        w.orgs.get_mut("vendor").unwrap().name = "Éditeur ENT de démonstration".into();
        let r = derive(&w, &catalog(), "vendor", "2026-09-01", "now");
        let head = r.incomplete.iter().find(|i| i.reference == "REGISTRE").expect("no contact details");
        assert_eq!(head.missing[0], "coordonnées d'Éditeur ENT de démonstration");
        let entry = &r.processor_entries[0].missing;
        assert!(entry.contains(&"coordonnées de la DSDEN du Val-de-Marne".to_string()), "{entry:?}");
        assert!(
            entry.contains(&"délégué à la protection des données de la DSDEN du Val-de-Marne".to_string()),
            "{entry:?}"
        );
        let sheet = r.incomplete.iter().find(|i| i.reference.starts_with("ST-")).unwrap();
        assert_eq!(sheet.name, "Sous-traitance pour la DSDEN du Val-de-Marne");
        let r = derive(&w, &catalog(), "dsden", "2026-09-01", "now");
        let recipients = &r.entries[0].recipients;
        let processors: Vec<&str> =
            recipients.iter().filter(|l| l.starts_with("Sous-traitant")).map(String::as_str).collect();
        assert_eq!(
            processors,
            [
                "Sous-traitant (collectivité) : Commune de Vitry-sur-Seine",
                "Sous-traitant (éditeur) : Éditeur ENT de démonstration",
                "Sous-traitant (hébergeur) : Org host"
            ]
        );
    }

    #[test]
    fn sub_processors_named_by_contracts_extend_the_chain() {
        let mut w = world();
        let mut backup = org("backup", OrgKind::Hebergeur, None);
        backup.country = "CH".into();
        w.orgs.insert("backup".into(), backup);
        w.contracts.push(ContractFact {
            processor: "backup".into(),
            client: "host".into(),
            reference: "S-9".into(),
            title: "Sauvegardes".into(),
            art28: true,
            parent: Some("host".into()),
            cctp: false,
            annex: false,
            services: None,
            ccap: None,
        });
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let last = r.entries[1].processors.last().unwrap();
        assert_eq!(
            (last.role.as_str(), last.acts_for.as_str(), last.art28_contract),
            ("sous-traitant ultérieur", "Org host", true)
        );
        assert_eq!(r.entries[1].transfers.iter().map(|t| t.country.as_str()).collect::<Vec<_>>(), ["US", "CH"]);
    }

    #[test]
    fn an_ecole_without_convention_falls_to_the_dsden_with_a_warning() {
        let mut w = world();
        w.orgs.insert("ecole".into(), org("ecole", OrgKind::Etablissement, Some(EtabType::EcoleElementaire)));
        w.orgs.insert("dsden".into(), org("dsden", OrgKind::Dsden, None));
        w.dsden_by_departement.insert("094".into(), "dsden".into());
        w.tenants[0].schools = vec!["ecole".into()];
        let r = derive(&w, &catalog(), "dsden", "2026-09-01", "now");
        assert_eq!(r.entries.len(), 2);
        assert!(r.entries[0].warnings.iter().any(|x| x.contains("aucune convention en vigueur")));
        // An école has a directeur, no « personnels de direction »; a collège has them.
        let staff = |r: &Register| r.entries.iter().flat_map(|e| e.data_subjects.clone()).collect::<Vec<_>>();
        let at_the_ecole = staff(&r);
        assert!(at_the_ecole.iter().any(|s| s == "personnels enseignants"), "{at_the_ecole:?}");
        assert!(at_the_ecole.iter().any(|s| s.starts_with("directeurs d'école")), "{at_the_ecole:?}");
        assert!(!at_the_ecole.iter().any(|s| s.starts_with("personnels de direction")), "{at_the_ecole:?}");
        let at_the_college = staff(&derive(&world(), &catalog(), "college", "2026-09-01", "now"));
        assert!(at_the_college.iter().any(|s| s.starts_with("personnels de direction")), "{at_the_college:?}");
        assert!(!at_the_college.iter().any(|s| s.starts_with("directeurs d'école")), "{at_the_college:?}");
    }

    #[test]
    fn a_private_ecole_is_its_own_controller_not_the_dsden() {
        let mut w = world();
        let mut ecole = org("ecole", OrgKind::Etablissement, Some(EtabType::EcoleElementaire));
        ecole.private = true;
        w.orgs.insert("ecole".into(), ecole);
        w.orgs.insert("dsden".into(), org("dsden", OrgKind::Dsden, None));
        w.dsden_by_departement.insert("094".into(), "dsden".into());
        w.tenants[0].schools = vec!["ecole".into()];
        assert!(derive(&w, &catalog(), "dsden", "2026-09-01", "now").entries.is_empty());
        assert_eq!(derive(&w, &catalog(), "ecole", "2026-09-01", "now").entries.len(), 2);
    }

    #[test]
    fn dates_come_from_the_history_and_move_only_when_the_entry_changes() {
        let mut w = world();
        let first = derive(&w, &catalog(), "college", "2026-09-01", "T1");
        for e in &first.entries {
            w.history.insert(e.key.clone(), ("T0".into(), "T0".into(), entry_hash(e)));
        }
        let same = derive(&w, &catalog(), "college", "2026-09-01", "T2");
        assert!(same.entries.iter().all(|e| e.first_recorded == "T0" && e.last_changed == "T0"));
        w.tenants[0].accounts = 700;
        let changed = derive(&w, &catalog(), "college", "2026-09-01", "T3");
        assert_eq!(
            (changed.entries[0].first_recorded.as_str(), changed.entries[0].last_changed.as_str()),
            ("T0", "T3")
        );
    }

    #[test]
    fn art_9_data_is_told_apart_from_highly_personal_data_and_an_unknown_scale_is_not_zero() {
        let mut w = world();
        w.tenants[0].services = vec!["vie-scolaire".into()];
        w.tenants[0].accounts = 0;
        w.orgs.get_mut("college").unwrap().etab_type = Some(EtabType::Lycee);
        let r = derive(&w, &catalog(), "college", "2026-09-01", "now");
        let e = &r.entries[0];
        let flags: Vec<(bool, bool)> = e.personal_data.iter().map(|d| (d.sensitive, d.highly_personal)).collect();
        // Grades and sanctions are highly personal; absence reasons may reveal health data (art. 9).
        assert_eq!(flags, [(false, true), (true, true), (false, true), (false, false)]);
        assert!(e.sensitive_data && e.highly_personal_data);
        assert!(
            e.dpia.required
                && e.dpia.reasons[1].starts_with("données sensibles au sens de l'article 9 du RGPD : Absences")
                && !e.dpia.reasons[1].contains("article 10"),
            "{:?}",
            e.dpia
        );
        assert!(e.dpia.scale.contains(&format!("personnes concernées : {NOT_ASSESSABLE} ;")), "{}", e.dpia.scale);
        // Lycéens are not all minors; their identities come from SIECLE.
        assert!(
            e.data_subjects.contains(&"élèves (mineurs, et majeurs en lycée)".to_string()),
            "{:?}",
            e.data_subjects
        );
        assert!(e.data_source.contains("SIECLE") && !e.data_source.contains("ONDE"), "{}", e.data_source);
    }
}
