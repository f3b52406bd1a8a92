//! Service catalog: the ENT services of the SDET family (with the RGPD facts the
//! registers derive from and the deployment facts provisioning renders), and the
//! versioned bouquets tenants subscribe to. The shipped files are embedded in the
//! binary; `catalog_dir` may add or override services and bouquets.

pub mod routes;
pub mod state;

use crate::registry::Degree;
use ent_kernel::error::{Checks, Problem};
use ent_kernel::text_enum;
use ent_kernel::validate::is_dns_1035_label;
use ent_kernel::yaml;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use state::CatalogState;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Where a tenant's accounts come from (`tenants.identity_source`): the tenants
/// store and render it, the RGPD registers derive the AAF processing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    /// EduConnect for pupils and parents, the académie's agent portal for staff.
    Educonnect,
    /// Accounts from the AAF directory import.
    Aaf,
}

impl IdentitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Educonnect => "educonnect",
            IdentitySource::Aaf => "aaf",
        }
    }
}

text_enum!(pub IdentitySource from [IdentitySource::Educonnect, IdentitySource::Aaf]);

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Stable code, e.g. `cahier-de-textes`.
    pub code: String,
    pub name: String,
    pub description: String,
    /// Degrees the service is offered in.
    pub degrees: Vec<Degree>,
    /// Degrees in which every base bouquet must contain it.
    #[serde(default)]
    pub mandatory_in: Vec<Degree>,
    pub rgpd: ServiceRgpd,
    pub deployment: Deployment,
}

/// What the RGPD registers (Art. 30) say about the service's processing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceRgpd {
    pub purposes: Vec<String>,
    /// Categories of data subjects, e.g. « élèves (mineurs) ».
    pub data_subjects: Vec<String>,
    pub personal_data: Vec<PersonalData>,
    pub recipients: Vec<String>,
    pub retention: String,
    pub legal_basis: String,
    /// Who processes the data on the controller's behalf.
    pub processors: Vec<ProcessorRole>,
    /// Transfers outside the EU and their safeguards (none when absent).
    #[serde(default)]
    pub transfers_outside_eu: Option<String>,
}

/// A category of personal data.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PersonalData {
    pub category: String,
    /// Special-category data (RGPD art. 9) or data on offences (art. 10), or data that may
    /// reveal them (absence reasons may reveal health): registers flag it as « sensible ».
    #[serde(default)]
    pub sensitive: bool,
    /// Highly personal data in the sense of the WP248 guidelines (electronic communications,
    /// images and voice, assessments, absences, sanctions): a DPIA criterion of its own.
    #[serde(default)]
    pub highly_personal: bool,
}

impl PersonalData {
    /// The category as an Art. 28(3) annex names it: special categories (art. 9 and 10) flagged.
    pub fn annex_label(&self) -> String {
        if self.sensitive {
            format!("{} (donnée sensible : articles 9 ou 10 du RGPD)", self.category)
        } else {
            self.category.clone()
        }
    }
}

/// The types of personal data and the categories of data subjects of `services`, each once,
/// in order, as an Art. 28(3) annex states them.
pub fn processed_data<'s>(services: impl IntoIterator<Item = &'s Service> + Clone) -> (Vec<String>, Vec<String>) {
    let data =
        distinct(services.clone().into_iter().flat_map(|s| s.rgpd.personal_data.iter().map(PersonalData::annex_label)));
    let subjects = distinct(services.into_iter().flat_map(|s| s.rgpd.data_subjects.iter().cloned()));
    (data, subjects)
}

/// `items` once each, in order.
pub fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// A processor of the service, resolved per tenant to an organisation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorRole {
    /// The éditeur of the ENT.
    Vendor,
    /// The hébergeur.
    Host,
}

impl ProcessorRole {
    pub fn label(self) -> &'static str {
        match self {
            ProcessorRole::Vendor => "éditeur",
            ProcessorRole::Host => "hébergeur",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub image: String,
    pub port: u32,
    pub cpu_millicores_per_1000: u32,
    pub memory_mib_per_1000: u32,
    /// 0: no persistent storage.
    pub storage_gib_per_1000: u32,
    pub ingress_path: String,
    /// The HTTP path that answers 2xx once the service is up (its start-up, readiness and
    /// liveness probes); the ingress path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    /// The longest the service takes to start, in seconds (its start-up probe); 60 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_seconds: Option<u32>,
    /// The image's digest (`sha256:` and 64 hex digits): when given, the image is pulled by
    /// digest, so a tag moved in the registry never changes what runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The external endpoints the service reaches, by their name in the configuration
    /// (`provisioning.cluster.egress`: `educonnect`, `gar`, `smtp-relay`, `academie-idp`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<String>,
}

impl Deployment {
    /// The image as pulled: by digest when the catalog gives one.
    pub fn image_ref(&self) -> String {
        match &self.digest {
            Some(digest) => format!("{}@{digest}", self.image.split('@').next().unwrap_or_default()),
            None => self.image.clone(),
        }
    }

    pub fn needs_storage(&self) -> bool {
        self.storage_gib_per_1000 > 0
    }

    /// The path its probes ask.
    pub fn probe_path(&self) -> &str {
        self.health_path.as_deref().unwrap_or(&self.ingress_path)
    }

    /// Seconds its start-up probe waits for it.
    pub fn startup_seconds(&self) -> u32 {
        self.startup_seconds.unwrap_or(60)
    }

    /// The size of the service's volume for `accounts` accounts, in GiB.
    pub fn storage_gib(&self, accounts: i64) -> u64 {
        u64::from(self.storage_gib_per_1000) * thousands(accounts)
    }
}

/// Thousands of accounts, at least one: the unit of the catalog's per-1,000 sizing.
pub fn thousands(accounts: i64) -> u64 {
    (accounts.max(1) as u64).div_ceil(1000)
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BouquetKind {
    /// The socle of a degree; a tenant has exactly one.
    Base,
    /// Added to a base of a degree it targets.
    Option,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bouquet {
    /// E.g. `socle-2d`, `visio`.
    pub id: String,
    pub version: u32,
    pub kind: BouquetKind,
    /// A base targets one degree; an option one or both.
    pub degrees: Vec<Degree>,
    pub name: String,
    pub description: String,
    /// Service codes.
    pub services: Vec<String>,
    /// Parameters such as quotas.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
}

/// One catalog file: services, bouquets, or both.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    services: Vec<Service>,
    #[serde(default)]
    bouquets: Vec<Bouquet>,
}

/// The files shipped with the product, embedded so `entctl` runs from anywhere.
pub const SHIPPED: &[(&str, &str)] = &[
    ("services.yaml", include_str!("../../../../tenants/catalog/services.yaml")),
    ("bouquets.yaml", include_str!("../../../../tenants/catalog/bouquets.yaml")),
];

/// Services and bouquets, validated as a whole.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct Catalog {
    /// Sorted by code.
    pub services: Vec<Service>,
    /// Sorted by id, then version.
    pub bouquets: Vec<Bouquet>,
}

impl Catalog {
    /// The shipped files, then the YAML files of `dir` (sorted by name): a service
    /// with a known code or a bouquet with a known id and version replaces it. The shipped
    /// files alone are parsed and validated once per process ([`ent_kernel::yaml::shipped_once`]).
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Catalog> {
        static SHIPPED_CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        match dir {
            None => yaml::shipped_once(&SHIPPED_CATALOG, || Catalog::parse(None)),
            Some(_) => Catalog::parse(dir),
        }
    }

    /// [`Catalog::load`], parsed.
    fn parse(dir: Option<&Path>) -> anyhow::Result<Catalog> {
        let files = yaml::shipped_then_overlay(SHIPPED, "catalog_dir", dir)?;
        let files: Vec<(&str, &str)> = files.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
        Catalog::from_files(&files)
    }

    /// Parses and merges `files` (name, text) in order, then validates the whole.
    pub fn from_files(files: &[(&str, &str)]) -> anyhow::Result<Catalog> {
        let mut catalog = Catalog::default();
        for (file, text) in files {
            catalog.merge(parse_file(file, text)?);
        }
        catalog.services.sort_by(|a, b| a.code.cmp(&b.code));
        catalog.bouquets.sort_by(|a, b| (a.id.as_str(), a.version).cmp(&(b.id.as_str(), b.version)));
        catalog.validate().map_err(|e| anyhow::anyhow!("catalogue : {e}"))?;
        Ok(catalog)
    }

    fn merge(&mut self, file: CatalogFile) {
        for service in file.services {
            self.services.retain(|s| s.code != service.code);
            self.services.push(service);
        }
        for bouquet in file.bouquets {
            self.bouquets.retain(|b| !(b.id == bouquet.id && b.version == bouquet.version));
            self.bouquets.push(bouquet);
        }
    }

    pub fn service(&self, code: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.code == code)
    }

    /// The given version of a bouquet, or its latest when `version` is `None`.
    pub fn bouquet(&self, id: &str, version: Option<u32>) -> Option<&Bouquet> {
        self.bouquets.iter().filter(|b| b.id == id && version.is_none_or(|v| b.version == v)).max_by_key(|b| b.version)
    }

    /// The codes of the services of every version the catalog has of each bouquet `ids`, each
    /// once, in order: what a subscription may have run when the version it ran is not known.
    pub fn services_of_any_version<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut codes: Vec<String> = Vec::new();
        for id in ids {
            for code in self.bouquets.iter().filter(|b| b.id == id).flat_map(|b| &b.services) {
                if !codes.contains(code) {
                    codes.push(code.clone());
                }
            }
        }
        codes
    }

    /// The latest version of every bouquet.
    pub fn latest_bouquets(&self) -> Vec<&Bouquet> {
        let ids: HashSet<&str> = self.bouquets.iter().map(|b| b.id.as_str()).collect();
        let mut latest: Vec<&Bouquet> = ids.into_iter().filter_map(|id| self.bouquet(id, None)).collect();
        latest.sort_by(|a, b| a.id.cmp(&b.id));
        latest
    }

    /// The services of the latest `base_id` plus the latest `options`, each once,
    /// in bouquet order. Refuses an unknown bouquet, a base that is not one (field `base`), and
    /// each option unknown, not an option or not for the base's degree (field `options[i]`, `i`
    /// its index in `options`).
    pub fn resolve(&self, base_id: &str, options: &[&str]) -> Result<Vec<&Service>, Problem> {
        if base_id.trim().is_empty() {
            return Err(Problem::invalid_field("base", "choisissez un bouquet de base"));
        }
        let base = self
            .bouquet(base_id, None)
            .ok_or_else(|| Problem::invalid_field("base", format!("bouquet inconnu « {base_id} »")))?;
        if base.kind != BouquetKind::Base {
            return Err(Problem::invalid_field(
                "base",
                format!("« {base_id} » est une option, pas un bouquet de base"),
            ));
        }
        let degree = base.degrees[0];
        let mut bouquets = vec![base];
        let mut checks = Checks::default();
        for (i, &id) in options.iter().enumerate() {
            if let Some(option) = checks.check(&format!("options[{i}]"), self.option_for(id, degree)) {
                bouquets.push(option);
            }
        }
        checks.finish()?;
        let mut seen = HashSet::new();
        let codes = bouquets.iter().flat_map(|b| &b.services).filter(|code| seen.insert(code.as_str()));
        Ok(codes.map(|code| self.service(code).expect("bouquet services are validated at load")).collect())
    }

    /// The services a market asking for `bouquet` and `options` covers: those its CCTP (article
    /// 4) asks for and its CCAP (article 9.1, its Art. 28 clauses) lists as « services
    /// concernés », the [`Catalog::resolve`] of its bouquet and options; none when the catalog no
    /// longer resolves them (the CCAP then says « ceux du bouquet retenu »). The one source of that
    /// list: the pieces, the award's warnings and the registers read it here.
    pub fn market_services(&self, bouquet: &str, options: &[String]) -> Vec<&Service> {
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        self.resolve(bouquet, &options).unwrap_or_default()
    }

    /// The latest option `id` for a base of `degree`; why not, otherwise.
    fn option_for(&self, id: &str, degree: Degree) -> Result<&Bouquet, String> {
        let option = self.bouquet(id, None).ok_or_else(|| format!("option inconnue « {id} »"))?;
        if option.kind != BouquetKind::Option {
            return Err(format!("« {id} » est un bouquet de base, pas une option"));
        }
        if !option.degrees.contains(&degree) {
            return Err(format!("l'option « {id} » n'est pas proposée dans le {}", degree_label(degree)));
        }
        Ok(option)
    }

    fn validate(&self) -> Result<(), String> {
        self.services.iter().try_for_each(validate_service)?;
        self.bouquets.iter().try_for_each(|b| self.validate_bouquet(b))
    }

    fn validate_bouquet(&self, b: &Bouquet) -> Result<(), String> {
        let name = format!("bouquet {} v{}", b.id, b.version);
        if b.degrees.is_empty() || (b.kind == BouquetKind::Base && b.degrees.len() != 1) {
            return Err(format!("{name} : un bouquet de base vise un degré, une option un ou deux"));
        }
        if b.services.is_empty() {
            return Err(format!("{name} : aucun service"));
        }
        for code in &b.services {
            let service = self.service(code).ok_or_else(|| format!("{name} : service inconnu « {code} »"))?;
            if let Some(d) = b.degrees.iter().find(|d| !service.degrees.contains(d)) {
                return Err(format!("{name} : le service « {code} » n'est pas proposé dans le {}", degree_label(*d)));
            }
        }
        if b.kind == BouquetKind::Base {
            let degree = b.degrees[0];
            let missing =
                self.services.iter().find(|s| s.mandatory_in.contains(&degree) && !b.services.contains(&s.code));
            if let Some(s) = missing {
                return Err(format!(
                    "{name} : le service « {} » ({}) est obligatoire dans le {} et manque au bouquet",
                    s.code,
                    s.name,
                    degree_label(degree)
                ));
            }
        }
        Ok(())
    }
}

/// « premier degré » / « second degré ».
pub fn degree_label(degree: Degree) -> &'static str {
    match degree {
        Degree::D1 => "premier degré",
        Degree::D2 => "second degré",
    }
}

/// Parses one file; errors name the file (and the line, for YAML errors). A file
/// may not declare a service code or a bouquet version twice.
fn parse_file(file: &str, text: &str) -> anyhow::Result<CatalogFile> {
    let parsed: CatalogFile = yaml::from_str(text).map_err(|e| anyhow::anyhow!("{file} : {e}"))?;
    unique(parsed.services.iter().map(|s| s.code.clone()), "code de service")
        .and_then(|_| unique(parsed.bouquets.iter().map(|b| format!("{} v{}", b.id, b.version)), "bouquet"))
        .map_err(|e| anyhow::anyhow!("{file} : {e}"))?;
    Ok(parsed)
}

fn unique(keys: impl Iterator<Item = String>, what: &str) -> Result<(), String> {
    let mut seen = HashSet::new();
    for key in keys {
        if !seen.insert(key.clone()) {
            return Err(format!("{what} en double : {key}"));
        }
    }
    Ok(())
}

/// Whether the service's legal basis names what lets it process its special-category data
/// (art. 9) or data on offences (art. 10): the exception of art. 9.2, or art. 10 (true when
/// it declares none). The register flags an entry whose service does not.
pub fn sensitive_data_has_its_condition(rgpd: &ServiceRgpd) -> bool {
    let basis = rgpd.legal_basis.replace(['\u{a0}', '\u{202f}'], " ");
    // `9.2` but not `19.2`, `art. 10` but not `art. 100`.
    let cites = |article: &str| {
        basis.match_indices(article).any(|(at, _)| {
            let before = basis[..at].chars().next_back();
            let after = basis[at + article.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit() || c == '.') && !after.is_some_and(|c| c.is_ascii_digit())
        })
    };
    !rgpd.personal_data.iter().any(|d| d.sensitive) || cites("9.2") || cites("art. 10") || cites("article 10")
}

fn validate_service(s: &Service) -> Result<(), String> {
    let fail = |message: String| Err(format!("service {} : {message}", s.code));
    if s.code.trim().is_empty() || s.name.trim().is_empty() {
        return fail("code et nom sont obligatoires".into());
    }
    // The code names the service's Kubernetes Service, Deployment and container.
    if !is_dns_1035_label(&s.code) {
        return fail(
            "le code doit être un nom DNS (RFC 1035) : minuscules sans accent, chiffres et tirets, \
             commençant par une lettre, 63 caractères au plus"
                .into(),
        );
    }
    if s.degrees.is_empty() {
        return fail("aucun degré".into());
    }
    if let Some(d) = s.mandatory_in.iter().find(|d| !s.degrees.contains(d)) {
        return fail(format!("obligatoire dans le {} où il n'est pas proposé", degree_label(*d)));
    }
    if let Some(field) = empty_rgpd_field(&s.rgpd) {
        return fail(format!("le fait RGPD « {field} » est vide"));
    }
    let d = &s.deployment;
    if d.image.trim().is_empty() {
        return fail("deployment.image est vide".into());
    }
    if !(1..=65535).contains(&d.port) {
        return fail(format!("deployment.port {} hors de 1..65535", d.port));
    }
    if !d.ingress_path.starts_with('/') {
        return fail(format!("deployment.ingress_path « {} » doit commencer par /", d.ingress_path));
    }
    if !d.probe_path().starts_with('/') {
        return fail(format!("deployment.health_path « {} » doit commencer par /", d.probe_path()));
    }
    if !(1..=1800).contains(&d.startup_seconds()) {
        return fail(format!("deployment.startup_seconds {} hors de 1..1800", d.startup_seconds()));
    }
    let hex64 = |h: &str| h.len() == 64 && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if let Some(digest) = d.digest.as_deref().filter(|g| !g.strip_prefix("sha256:").is_some_and(hex64)) {
        return fail(format!("deployment.digest « {digest} » : attendu sha256: suivi de 64 chiffres hexadécimaux"));
    }
    Ok(())
}

/// The first mandatory RGPD fact left empty, by its YAML name.
fn empty_rgpd_field(r: &ServiceRgpd) -> Option<&'static str> {
    let blank = |items: &[String]| items.is_empty() || items.iter().any(|i| i.trim().is_empty());
    [
        ("rgpd.purposes", blank(&r.purposes)),
        ("rgpd.data_subjects", blank(&r.data_subjects)),
        (
            "rgpd.personal_data",
            r.personal_data.is_empty() || r.personal_data.iter().any(|p| p.category.trim().is_empty()),
        ),
        ("rgpd.recipients", blank(&r.recipients)),
        ("rgpd.retention", r.retention.trim().is_empty()),
        ("rgpd.legal_basis", r.legal_basis.trim().is_empty()),
        ("rgpd.processors", r.processors.is_empty()),
    ]
    .into_iter()
    .find_map(|(field, empty)| empty.then_some(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &str = SHIPPED[0].1;
    const BOUQUETS: &str = SHIPPED[1].1;

    fn codes(services: &[&Service]) -> Vec<String> {
        services.iter().map(|s| s.code.clone()).collect()
    }

    #[test]
    fn shipped_catalog_loads_with_the_sdet_services() {
        let catalog = Catalog::load(None).unwrap();
        for code in [
            "portail",
            "messagerie",
            "actualites",
            "cahier-de-textes",
            "vie-scolaire",
            "espace-documentaire",
            "blog",
            "agenda",
            "mediacentre",
            "exercices",
            "pad",
            "visio",
            "carnet-de-liaison",
            "casiers",
        ] {
            assert!(catalog.service(code).is_some(), "{code} missing");
        }
        for id in ["socle-1d", "socle-2d", "visio", "moodle"] {
            assert!(catalog.bouquet(id, None).is_some(), "{id} missing");
        }
        let notes = &catalog.service("vie-scolaire").unwrap().rgpd.personal_data;
        assert!(notes.iter().any(|p| p.sensitive), "notes and absences are sensitive");
    }

    #[test]
    fn sensitive_data_needs_an_article_9_2_condition_in_its_legal_basis() {
        let catalog = Catalog::load(None).unwrap();
        let mut rgpd = catalog.service("vie-scolaire").unwrap().rgpd.clone();
        assert!(sensitive_data_has_its_condition(&rgpd));
        for (basis, cites) in [
            ("Mission d'intérêt public (art. 6.1.e RGPD)", false),
            ("art. 19.2 du code", false),
            ("art. 100 du code", false),
            ("motif d'intérêt public important (art.\u{a0}9.2.g RGPD)", true),
            ("autorité publique (art. 10 RGPD)", true),
        ] {
            rgpd.legal_basis = basis.into();
            assert_eq!(sensitive_data_has_its_condition(&rgpd), cites, "{basis}");
        }
        for d in &mut rgpd.personal_data {
            d.sensitive = false;
        }
        assert!(sensitive_data_has_its_condition(&rgpd), "no sensitive data, no condition needed");
    }

    #[test]
    fn cahier_de_textes_is_mandatory_in_2d_and_in_socle_2d() {
        let catalog = Catalog::load(None).unwrap();
        let cdt = catalog.service("cahier-de-textes").unwrap();
        assert_eq!(cdt.mandatory_in, vec![Degree::D2]);
        for version in [Some(1), None] {
            let socle = catalog.bouquet("socle-2d", version).unwrap();
            assert!(socle.services.contains(&cdt.code), "socle-2d {version:?}");
        }
        assert_eq!(catalog.bouquet("socle-2d", None).unwrap().version, 2);
    }

    #[test]
    fn a_base_bouquet_missing_a_mandatory_service_is_refused_in_french() {
        let bouquets = BOUQUETS.replacen("cahier-de-textes, ", "", 1);
        let err =
            Catalog::from_files(&[("services.yaml", SERVICES), ("bouquets.yaml", &bouquets)]).unwrap_err().to_string();
        assert!(err.contains("bouquet socle-2d v1"), "{err}");
        assert!(err.contains("« cahier-de-textes » (Cahier de textes) est obligatoire dans le second degré"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_file_and_line() {
        let text = SERVICES.replacen("    mandatory_in: []", "    mandatory: []", 1);
        let err = Catalog::from_files(&[("x.yaml", &text)]).unwrap_err().to_string();
        assert!(err.starts_with("x.yaml") && err.contains("mandatory") && err.contains("ligne"), "{err}");
    }

    #[test]
    fn empty_rgpd_facts_and_bad_deployments_name_the_service_and_field() {
        let cases = [
            (
                "retention: \"3 mois après la fin du besoin ; messages supprimés avec le compte\"",
                "retention: \" \"",
                "rgpd.retention",
            ),
            ("image: registry.example.org/ent/blog:1.9.0", "image: \" \"", "deployment.image"),
            ("port: 9001", "port: 70000", "deployment.port"),
        ];
        for (from, to, field) in cases {
            let text = SERVICES.replacen(from, to, 1);
            assert_ne!(text, SERVICES, "{from} not found");
            let err = Catalog::from_files(&[("s.yaml", &text)]).unwrap_err().to_string();
            assert!(err.contains("service ") && err.contains(field), "{err}");
        }
    }

    #[test]
    fn a_code_that_cannot_name_a_kubernetes_service_is_refused() {
        let long = format!("a{}", "b".repeat(63));
        for code in ["Labo_3D", "3d-labo", "labo-", "labo.3d", long.as_str()] {
            let text = SERVICES.replacen("  - code: blog", &format!("  - code: \"{code}\""), 1);
            let err = Catalog::from_files(&[("s.yaml", &text)]).unwrap_err().to_string();
            assert!(err.contains(&format!("service {code} : le code doit être un nom DNS")), "{code}: {err}");
        }
        let text = SERVICES.replacen("  - code: blog", "  - code: labo-3d", 1);
        assert!(Catalog::from_files(&[("s.yaml", &text)]).is_ok(), "labo-3d is a valid code");
    }

    #[test]
    fn a_file_declaring_a_code_twice_is_refused() {
        let text = format!(
            "{SERVICES}{}",
            &SERVICES[SERVICES.find("  - code: blog").unwrap()..SERVICES.find("  - code: agenda").unwrap()]
        );
        let err = Catalog::from_files(&[("s.yaml", &text)]).unwrap_err().to_string();
        assert!(err.starts_with("s.yaml") && err.contains("code de service en double : blog"), "{err}");
    }

    #[test]
    fn a_directory_overrides_and_adds() {
        let dir = tempfile::tempdir().unwrap();
        let extra = "bouquets:\n  - id: visio\n    version: 2\n    kind: option\n    degrees: [2D]\n    \
                     name: Visio 2\n    description: Seconde version\n    services: [visio, pad]\n";
        std::fs::write(dir.path().join("local.yaml"), extra).unwrap();
        let catalog = Catalog::load(Some(dir.path())).unwrap();
        assert_eq!(catalog.bouquet("visio", None).unwrap().version, 2);
        assert_eq!(catalog.bouquet("visio", Some(1)).unwrap().services, vec!["visio"]);
        assert!(catalog.resolve("socle-1d", &["visio"]).is_err(), "visio v2 is 2D only");
    }

    #[test]
    fn resolve_dedups_and_checks_options() {
        let catalog = Catalog::load(None).unwrap();
        let services = catalog.resolve("socle-2d", &["visio", "collaboratif", "moodle"]).unwrap();
        let codes = codes(&services);
        assert_eq!(codes.iter().filter(|c| *c == "casiers").count(), 1, "{codes:?}");
        assert!(
            codes.contains(&"visio".into()) && codes.contains(&"pad".into()) && codes.contains(&"exercices".into())
        );
        assert_eq!(codes[0], "portail");

        let wrong = catalog.resolve("socle-1d", &["vie-scolaire"]).unwrap_err();
        assert!(wrong.detail.contains("« vie-scolaire » n'est pas proposée dans le premier degré"), "{}", wrong.detail);
        let unknown = catalog.resolve("socle-1d", &["karaoke"]).unwrap_err();
        assert!(unknown.detail.contains("option inconnue « karaoke »"), "{}", unknown.detail);
        assert!(catalog.resolve("visio", &[]).is_err(), "an option is no base");
        assert!(catalog.resolve("socle-3d", &[]).is_err());
    }

    #[test]
    fn each_refused_option_is_named_at_its_index_and_the_base_as_base() {
        let catalog = Catalog::load(None).unwrap();
        let fields = |base: &str, options: &[&str]| {
            let refused = catalog.resolve(base, options).unwrap_err();
            refused.errors.iter().map(|e| (e.field.clone(), e.message.clone())).collect::<Vec<_>>()
        };
        let refused = fields("socle-1d", &["visio", "karaoke", "vie-scolaire", "socle-2d"]);
        let named: Vec<&str> = refused.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(named, ["options[1]", "options[2]", "options[3]"], "{refused:?}");
        assert!(refused[0].1.contains("option inconnue « karaoke »"), "{refused:?}");
        assert!(refused[1].1.contains("« vie-scolaire » n'est pas proposée dans le premier degré"), "{refused:?}");
        assert!(refused[2].1.contains("« socle-2d » est un bouquet de base, pas une option"), "{refused:?}");
        let base = fields("visio", &["moodle"]);
        assert_eq!(base.len(), 1, "{base:?}");
        assert_eq!(base[0].0, "base", "{base:?}");
        assert_eq!(fields("socle-3d", &[])[0].0, "base");
    }
}
