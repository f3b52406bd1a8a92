//! Import of the national "Annuaire de l'éducation" CSV export.
//!
//! A parser thread streams the file (never whole in memory), matches columns by
//! header name, validates each row and sends batches over a bounded channel; the
//! writer applies each batch in one transaction, writing only rows whose content
//! hash changed. Batches are idempotent upserts, so a run killed at any point and
//! started again converges to the state of one clean run.

use super::codes::{self, departement_of_commune};
use super::etab_siren::EtabSiren;
use super::import_lock::{duration_in_words, ImportLock, IMPORT_LEASE};
use super::{EtabType, OrgKind, Sector};
use crate::audit::{self, Target};
use crate::identity::Actor;
use chrono::{DateTime, Duration, Utc};
use ent_kernel::error::Problem;
use ent_kernel::naming;
use ent_kernel::store::{
    copy_rows, defer_indexes_if_empty, markers, new_id, relax_durability, restore_indexes, restore_indexes_on,
    timestamp, write_rows, Backend, BulkValue, RestoreOnDrop, Store,
};
use ent_kernel::text::fold;
use ent_kernel::validate;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;

/// At most this many rejected rows and warnings are listed in a report (counts stay exact).
pub const REPORT_LIST_LIMIT: usize = 1000;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub batch_size: usize,
    /// What the caller answers for; everything when `None` (admin). A row is imported
    /// when every organisation it writes is new in that scope or already registered in
    /// it: an import never takes an organisation out of another's scope.
    pub scope: Option<ImportScope>,
    /// How long the import's locks hold without being renewed (`import.lease_seconds`).
    pub lease: Duration,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { dry_run: false, batch_size: 5000, scope: None, lease: IMPORT_LEASE }
    }
}

impl ImportOptions {
    /// The options of an import as configured (`import:`): its batch size and lease.
    pub fn configured(config: &ent_kernel::config::ImportConfig) -> ImportOptions {
        let lease = Duration::seconds(i64::try_from(config.lease_seconds).unwrap_or(i64::MAX / 1000));
        ImportOptions { batch_size: config.batch_size, lease, ..ImportOptions::default() }
    }
}

/// Where a scoped caller (a DAN) may import: the académies of its bindings at an académie,
/// the départements of its bindings at a DSDEN (each with the DSDEN's académie). Shared
/// reference rows (régions: no académie, no département) are in no one's.
#[derive(Debug, Clone, Default)]
pub struct ImportScope {
    pub academies: HashSet<String>,
    /// Département code → the académie of its DSDEN.
    pub departements: HashMap<String, Option<String>>,
}

impl ImportScope {
    /// Whether an organisation placed in `academie` and `departement` is in this scope:
    /// its académie is one of ours, or its département is, in that DSDEN's académie.
    pub fn holds(&self, academie: Option<&str>, departement: Option<&str>) -> bool {
        let in_academie = academie.is_some_and(|a| self.academies.contains(a));
        let in_departement =
            departement.and_then(|d| self.departements.get(d)).is_some_and(|of| of.as_deref() == academie);
        in_academie || in_departement
    }
}

/// A row that was refused or imported with a remark, by its line in the file.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct LineIssue {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uai: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Data rows read (the header excluded).
    pub rows: u64,
    /// Établissements created / updated / unchanged.
    pub etablissements: Counts,
    /// Rows of kinds the ENT does not host, by their `Type_etablissement`.
    pub skipped: u64,
    pub skipped_by_type: BTreeMap<String, u64>,
    /// Rows outside the caller's scope (an académie or, for a DSDEN, a département of
    /// theirs; or an établissement, commune or département registered outside it), left untouched.
    pub out_of_scope: u64,
    /// Rows in the caller's scope when the import read the registry, found out of it when their
    /// batch was written (a concurrent change placed the établissement, its commune, its
    /// département or its DSDEN elsewhere meanwhile): not imported, each by its line and why
    /// (also counted in `out_of_scope`).
    pub moved_out_of_scope: Vec<LineIssue>,
    pub rejected: u64,
    pub rejections: Vec<LineIssue>,
    /// Rows imported with a field left out (e.g. an invalid SIRET), organisations created
    /// under a placeholder name (no label), labels a later row gives otherwise (the first kept).
    pub warnings: Vec<LineIssue>,
    /// Communes, départements, DSDEN, académies and régions the rows reference.
    pub related: BTreeMap<String, Counts>,
    pub duration_ms: u64,
}

impl ImportReport {
    /// Whether the import added organisations (établissements or those they reference).
    pub fn wrote_rows(&self) -> bool {
        self.etablissements.created > 0 || self.related.values().any(|counts| counts.created > 0)
    }

    /// The report as the CLI prints it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let title = if self.dry_run { "Simulation d'import (rien n'a été écrit)" } else { "Import terminé" };
        let lines = if self.rows > 1 { "lignes" } else { "ligne" };
        let seconds = format!("{:.1}", self.duration_ms as f64 / 1000.0).replace('.', ",");
        out.push_str(&format!("{title} : {} {lines} en {seconds} s\n", self.rows));
        out.push_str(&format!("  établissements : {}\n", self.etablissements.said(false)));
        for (kind, c) in &self.related {
            // The kinds of [`related_label`]: only the départements are masculine.
            out.push_str(&format!("  {kind} : {}\n", c.said(kind != "départements")));
        }
        out.push_str(&format!("  ignorés (types non hébergés) : {}\n", self.skipped));
        for (t, n) in &self.skipped_by_type {
            out.push_str(&format!("    {t} : {n}\n"));
        }
        if self.out_of_scope > 0 {
            out.push_str(&format!("  hors de votre périmètre (non importés) : {}\n", self.out_of_scope));
        }
        for m in &self.moved_out_of_scope {
            out.push_str(&format!("    ligne {} : {}\n", m.line, m.reason));
        }
        out.push_str(&format!("  rejetés : {}\n", self.rejected));
        for r in &self.rejections {
            out.push_str(&format!("    ligne {} : {}\n", r.line, r.reason));
        }
        if !self.warnings.is_empty() {
            out.push_str(&format!("  remarques : {}\n", self.warnings.len()));
            for w in &self.warnings {
                out.push_str(&format!("    ligne {} : {}\n", w.line, w.reason));
            }
        }
        out
    }
}

impl Counts {
    /// « 1 créé, 0 mis à jour, 3 inchangés », the participles agreed with each count and with
    /// the gender of what is counted (`feminine`: « 2 créées, 1 mise à jour »).
    fn said(&self, feminine: bool) -> String {
        format!(
            "{}, {}, {}",
            agreed(self.created, "créé", feminine),
            agreed(self.updated, "mis à jour", feminine),
            agreed(self.unchanged, "inchangé", feminine)
        )
    }
}

/// `n` and the past participle `masculine` (its first word agrees: « créé », « mis à jour »)
/// agreed in number with it (the singular for 0 and 1, as French counts) and in gender.
fn agreed(n: u64, masculine: &str, feminine: bool) -> String {
    let (word, rest) = masculine.split_once(' ').map_or((masculine, ""), |(w, r)| (w, r));
    let mut word = word.to_string();
    if feminine {
        word.push('e');
    }
    if n > 1 && !word.ends_with('s') {
        word.push('s');
    }
    match rest {
        "" => format!("{n} {word}"),
        rest => format!("{n} {word} {rest}"),
    }
}

/// The columns we read, each with the header spellings seen across export years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Uai,
    Name,
    Type,
    Sector,
    CommuneCode,
    CommuneName,
    Departement,
    DepartementName,
    Academie,
    AcademieName,
    Region,
    RegionName,
    Maternelle,
    Elementaire,
    Mail,
    Siret,
    Etat,
    NatureCode,
    NatureLabel,
    Pupils,
}

/// How many [`Field`]s there are (the size of a [`Columns`] index).
const FIELD_COUNT: usize = Field::Pupils as usize + 1;

const FIELD_ALIASES: &[(Field, &[&str])] = &[
    (Field::Uai, &["identifiant_de_l_etablissement", "uai", "numero_uai", "code_uai"]),
    (Field::Name, &["nom_etablissement", "appellation_officielle", "nom_de_l_etablissement"]),
    (Field::Type, &["type_etablissement", "type_d_etablissement"]),
    (Field::Sector, &["statut_public_prive", "secteur_public_prive", "secteur"]),
    (Field::CommuneCode, &["code_commune", "code_insee_commune", "code_insee"]),
    (Field::CommuneName, &["nom_commune", "libelle_commune", "commune"]),
    (Field::Departement, &["code_departement"]),
    (Field::DepartementName, &["libelle_departement", "nom_departement"]),
    (Field::Academie, &["code_academie"]),
    (Field::AcademieName, &["libelle_academie", "nom_academie"]),
    (Field::Region, &["code_region"]),
    (Field::RegionName, &["libelle_region", "nom_region"]),
    (Field::Maternelle, &["ecole_maternelle"]),
    (Field::Elementaire, &["ecole_elementaire"]),
    (Field::Mail, &["mail", "email", "courriel", "adresse_mail"]),
    (Field::Siret, &["siren_siret", "siret"]),
    (Field::Etat, &["etat", "etat_etablissement"]),
    (Field::NatureCode, &["code_nature"]),
    (Field::NatureLabel, &["libelle_nature"]),
    (Field::Pupils, &["nombre_d_eleves", "nombre_eleves", "effectif", "nb_eleves"]),
];

const REQUIRED: &[(Field, &str)] = &[
    (Field::Uai, "Identifiant_de_l_etablissement"),
    (Field::Name, "Nom_etablissement"),
    (Field::Type, "Type_etablissement"),
    (Field::CommuneCode, "Code_commune"),
    (Field::Academie, "Code_academie"),
];

/// `Code postal`, `Code_postal` and `code-postal` all become `code_postal`.
fn normalise_header(raw: &str) -> String {
    let folded = fold(raw.trim_start_matches('\u{feff}').trim());
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// Where each known field sits in this file's header (by `Field as usize`).
struct Columns {
    index: [Option<usize>; FIELD_COUNT],
    width: usize,
    /// Each column's name as the header spells it, for the reasons that name a column.
    names: Vec<String>,
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Result<Columns, Problem> {
        let spelled: Vec<String> = header
            .iter()
            .map(|h| validate::printable(String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim()))
            .collect();
        let names: Vec<String> = spelled.iter().map(|h| normalise_header(h)).collect();
        let mut index = [None; FIELD_COUNT];
        for (field, aliases) in FIELD_ALIASES {
            index[*field as usize] = aliases.iter().find_map(|a| names.iter().position(|n| n == a));
        }
        let missing: Vec<&str> =
            REQUIRED.iter().filter(|(f, _)| index[*f as usize].is_none()).map(|(_, name)| *name).collect();
        if !missing.is_empty() {
            return Err(Problem::invalid_field(
                "en-tête",
                format!(
                    "colonnes obligatoires absentes : {} (le fichier est-il bien l'export « Annuaire de l'éducation », séparé par des points-virgules ?)",
                    missing.join(", ")
                ),
            ));
        }
        Ok(Columns { index, width: header.len(), names: spelled })
    }
}

/// One organisation as the import wants it stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgRecord {
    pub kind: Option<OrgKind>,
    pub code: String,
    pub name: String,
    pub siren: Option<String>,
    pub siret: Option<String>,
    pub etab_type: Option<EtabType>,
    pub nature_code: Option<String>,
    pub nature_label: Option<String>,
    pub sector: Option<&'static str>,
    pub degree: Option<&'static str>,
    pub commune_code: Option<String>,
    pub departement_code: Option<String>,
    pub academie_code: Option<String>,
    pub region_code: Option<String>,
    pub pupils: Option<i64>,
    pub is_open: bool,
    pub email: Option<String>,
}

impl OrgRecord {
    fn kind(&self) -> OrgKind {
        self.kind.expect("record has a kind")
    }

    /// Hash over every stored field: equal hashes mean nothing to write.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        let fields: [&str; 17] = [
            self.kind().as_str(),
            &self.code,
            &self.name,
            self.siren.as_deref().unwrap_or(""),
            self.siret.as_deref().unwrap_or(""),
            self.etab_type.map(EtabType::as_str).unwrap_or(""),
            self.nature_code.as_deref().unwrap_or(""),
            self.nature_label.as_deref().unwrap_or(""),
            self.sector.unwrap_or(""),
            self.degree.unwrap_or(""),
            self.commune_code.as_deref().unwrap_or(""),
            self.departement_code.as_deref().unwrap_or(""),
            self.academie_code.as_deref().unwrap_or(""),
            self.region_code.as_deref().unwrap_or(""),
            &self.pupils.map(|p| p.to_string()).unwrap_or_default(),
            if self.is_open { "1" } else { "0" },
            self.email.as_deref().unwrap_or(""),
        ];
        for f in fields {
            h.update(f.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// A record with what is stored beside it, computed on the parser thread (off the
/// writer's path): its content hash and its folded name.
#[derive(Clone)]
struct Staged {
    record: OrgRecord,
    /// [`OrgRecord::content_hash`].
    hash: String,
    /// [`fold`] of the name: what the registry sorts and searches by.
    sort_name: String,
    /// The file's line that sent it (the last one in its batch, for a related organisation).
    line: u64,
    /// A related organisation whose row left its label out: its name is a placeholder
    /// (`Commune 92002`), given to it only if it is new (see [`BatchWriter::keep_known_name`]).
    provisional: bool,
}

impl Staged {
    fn new(record: OrgRecord, line: u64) -> Staged {
        Staged { hash: record.content_hash(), sort_name: fold(&record.name), record, line, provisional: false }
    }
}

/// What the parser made of one batch of lines.
#[derive(Default)]
struct Batch {
    rows: u64,
    /// Rows of a place (académie, département) outside the caller's scope: counted only.
    out_of_scope: u64,
    /// Writes again a related organisation an earlier batch wrote (the label of a commune an
    /// earlier line left out): it must wait for the earlier batches, so that its value wins.
    revises_earlier: bool,
    etabs: Vec<Staged>,
    related: Vec<Staged>,
    skipped: Vec<String>,
    rejected: Vec<LineIssue>,
    warnings: Vec<LineIssue>,
}

impl Batch {
    /// An empty batch with room for the établissements of `rows` lines (up to a bound:
    /// no reallocation of a large vector as it fills).
    fn for_rows(rows: usize) -> Batch {
        Batch { etabs: Vec::with_capacity(rows.min(10_000)), ..Batch::default() }
    }
}

/// The longest value of a field read (an e-mail address may have 254 characters).
const MAX_FIELD_CHARS: usize = 255;

/// More pupils than any French établissement has (the largest cités scolaires count a few
/// thousand): a larger figure is a typing error, kept out of the groupements' totals.
pub const MAX_PUPILS: i64 = 20_000;

/// The values of one CSV row, by field.
struct RowView<'a> {
    record: &'a csv::ByteRecord,
    columns: &'a Columns,
}

impl<'a> RowView<'a> {
    fn get(&self, field: Field) -> Result<Option<&'a str>, String> {
        let Some(i) = self.columns.index[field as usize] else {
            return Ok(None);
        };
        // An address is checked whole by `validate::email` (one that does not parse is dropped
        // with a warning, the row kept); any other value is one-line text.
        let text = field_text(self.record.get(i).unwrap_or_default())
            .and_then(|text| if field == Field::Mail { Ok(text) } else { one_line(text) })
            .map_err(|reason| format!("colonne « {} » : {reason}", self.columns.names[i]))?;
        Ok(if text.is_empty() { None } else { Some(text) })
    }
}

/// A value read, trimmed, if it may be stored: text of [`MAX_FIELD_CHARS`] at most.
fn field_text(raw: &[u8]) -> Result<&str, String> {
    // PostgreSQL stores no NUL in a text: refused on either backend, the row named.
    if raw.contains(&0) {
        return Err("caractère nul (octet 0) dans le texte".to_string());
    }
    let text = std::str::from_utf8(raw).map_err(|_| "texte non UTF-8".to_string())?;
    let text = text.trim();
    // No code, name or address read is longer; a longer one (a broken or hostile line)
    // is refused before it reaches a name index (PostgreSQL's hold 2,704 bytes at most).
    if text.len() > MAX_FIELD_CHARS && text.chars().count() > MAX_FIELD_CHARS {
        return Err(format!("champ de {} caractères ({MAX_FIELD_CHARS} au plus)", text.chars().count()));
    }
    Ok(text)
}

/// `text` if it is one-line text by the API's rule (no control character, nor a bidirectional
/// one, that pages and documents would show); printable ASCII, most values, needs no closer look.
fn one_line(text: &str) -> Result<&str, String> {
    if text.bytes().any(|b| !(b' '..=b'~').contains(&b)) {
        validate::line(text)?;
    }
    Ok(text)
}

enum RowOutcome {
    Etab { etab: Box<OrgRecord>, warnings: Vec<String> },
    Skipped(String),
}

fn classify_type(type_label: &str, row: &RowView) -> Result<Option<EtabType>, String> {
    let folded = fold(type_label);
    let nature_code = row.get(Field::NatureCode)?.unwrap_or("");
    // Read (an unreadable label refuses the row) but folded only for the rows that need it
    // (most schools name their levels in two columns).
    let nature_label = row.get(Field::NatureLabel)?.unwrap_or("");
    let nature = || fold(nature_label);
    let t = if folded.starts_with("ecole") {
        let maternelle = row.get(Field::Maternelle)? == Some("1");
        let elementaire = row.get(Field::Elementaire)? == Some("1");
        match (maternelle, elementaire) {
            (true, true) => EtabType::EcolePrimaire,
            (true, false) => EtabType::EcoleMaternelle,
            (false, true) => EtabType::EcoleElementaire,
            _ => {
                let nature = nature();
                if nature.contains("maternelle") {
                    EtabType::EcoleMaternelle
                } else if nature.contains("elementaire") {
                    EtabType::EcoleElementaire
                } else {
                    EtabType::EcolePrimaire
                }
            }
        }
    } else if folded.starts_with("college") {
        EtabType::College
    } else if folded.starts_with("lycee") {
        if nature_code == "320" || nature().contains("professionnel") {
            EtabType::LyceeProfessionnel
        } else {
            EtabType::Lycee
        }
    } else if folded.starts_with("erea") {
        EtabType::Erea
    } else {
        return Ok(None);
    };
    Ok(Some(t))
}

/// What comes before an académie's label in its name: `Académie de Créteil`, `Académie d'Amiens`.
fn academie_prefix(label: &str) -> &'static str {
    if naming::elides(label) {
        "Académie d'"
    } else {
        "Académie de "
    }
}

/// Refuses a row whose codes disagree: the commune of another département, the département
/// of another académie, a UAI numbered in another département. A row places the commune,
/// département and DSDEN it names in its académie; a coherent row may only name its own.
fn check_places(uai: &str, commune: &str, departement: &str, academie: &str) -> Result<(), String> {
    if departement_of_commune(commune) != departement {
        return Err(format!("la commune « {commune} » n'est pas du département « {departement} »"));
    }
    match codes::academie_of_departement(departement) {
        Some(expected) if expected != academie => {
            return Err(format!(
                "le département « {departement} » relève de l'académie « {expected} », pas de « {academie} »"
            ))
        }
        _ => {}
    }
    if !codes::uai_in_departement(uai, departement) {
        return Err(format!("l'UAI « {uai} » n'est pas numéroté dans le département « {departement} »"));
    }
    Ok(())
}

/// The annuaire's `Code_academie`: two digits, as every académie and vice-rectorat has.
fn parse_academie_code(raw: &str) -> Result<String, String> {
    if raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(raw.to_string());
    }
    let shown = validate::printable(&raw.chars().take(20).collect::<String>());
    Err(format!("code académie « {shown} » invalide : attendu 2 chiffres"))
}

fn parse_row(row: &RowView) -> Result<RowOutcome, String> {
    let uai = codes::parse_uai(row.get(Field::Uai)?.ok_or("UAI manquant")?).map_err(|e| e.to_string())?;
    let type_label = row.get(Field::Type)?.ok_or("type d'établissement manquant")?;
    let Some(etab_type) = classify_type(type_label, row)? else {
        return Ok(RowOutcome::Skipped(type_label.to_string()));
    };
    let name = row.get(Field::Name)?.ok_or("nom de l'établissement manquant")?.to_string();
    let commune_raw = row.get(Field::CommuneCode)?.ok_or("code commune manquant")?;
    let commune_code = codes::parse_insee_commune(commune_raw).map_err(|e| e.to_string())?;
    let departement_code = match row.get(Field::Departement)? {
        Some(raw) => codes::parse_departement(raw).map_err(|e| e.to_string())?,
        None => departement_of_commune(&commune_code).to_string(),
    };
    let academie_code = parse_academie_code(row.get(Field::Academie)?.ok_or("code académie manquant")?)?;
    check_places(&uai, &commune_code, &departement_code, &academie_code)?;
    let mut warnings = Vec::new();
    let region_code = match row.get(Field::Region)? {
        Some(raw) if raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_digit()) => Some(raw.to_string()),
        Some(raw) => {
            let shown = validate::printable(&raw.chars().take(20).collect::<String>());
            warnings
                .push(format!("code région « {shown} » invalide (code INSEE de 2 chiffres attendu) : région ignorée"));
            None
        }
        None => None,
    };
    let (siren, siret) = match row.get(Field::Siret)? {
        None => (None, None),
        Some(raw) if raw.len() == 9 => match codes::parse_siren(raw) {
            Ok(siren) => (Some(siren), None),
            Err(e) => {
                warnings.push(format!("{e} : SIREN ignoré"));
                (None, None)
            }
        },
        Some(raw) => match codes::parse_siret(raw) {
            Ok(siret) => (Some(siret[..9].to_string()), Some(siret)),
            Err(e) => {
                warnings.push(format!("{e} : SIRET ignoré"));
                (None, None)
            }
        },
    };
    let pupils = match row.get(Field::Pupils)? {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (0..=MAX_PUPILS).contains(&n) => Some(n),
            Ok(n) if n > MAX_PUPILS => {
                warnings.push(format!("nombre d'élèves {n} invraisemblable (plus de {MAX_PUPILS}) : ignoré"));
                None
            }
            _ => {
                warnings.push(format!("nombre d'élèves « {raw} » illisible : ignoré"));
                None
            }
        },
    };
    let sector = match row.get(Field::Sector)?.map(fold).as_deref() {
        Some(s) if s.starts_with("priv") => "prive",
        _ => "public",
    };
    let (siren, siret) = numbered_as_its_own(siren, siret, etab_type, sector, &commune_code, &mut warnings);
    let is_open = !matches!(row.get(Field::Etat)?.map(fold).as_deref(), Some("ferme"));
    let email = match row.get(Field::Mail)?.filter(|m| !m.trim().is_empty()) {
        Some(raw) => match validate::email(raw) {
            Ok(email) => Some(email),
            Err(e) => {
                warnings.push(format!("{e} : adresse ignorée"));
                None
            }
        },
        None => None,
    };
    let etab = OrgRecord {
        kind: Some(OrgKind::Etablissement),
        code: uai,
        name,
        siren,
        siret,
        etab_type: Some(etab_type),
        nature_code: row.get(Field::NatureCode)?.map(str::to_string),
        nature_label: row.get(Field::NatureLabel)?.map(str::to_string),
        sector: Some(sector),
        degree: Some(etab_type.degree().as_str()),
        commune_code: Some(commune_code),
        departement_code: Some(departement_code),
        academie_code: Some(academie_code),
        region_code,
        pupils,
        is_open,
        email,
    };
    Ok(RowOutcome::Etab { etab: Box::new(etab), warnings })
}

/// A related organisation as a row names it, its text borrowed from the row: most rows
/// name organisations sent already, unchanged, and are compared without building a record.
#[derive(Debug, Clone, Copy)]
struct RelatedRef<'a> {
    kind: OrgKind,
    code: &'a str,
    /// The name: a fixed prefix, then text of the row (`Académie de ` + `Créteil`).
    name: (&'static str, &'a str),
    /// The row has no label for it: its name is a placeholder made of its code.
    provisional: bool,
    commune_code: Option<&'a str>,
    departement_code: Option<&'a str>,
    academie_code: Option<&'a str>,
    region_code: Option<&'a str>,
}

impl RelatedRef<'_> {
    fn to_record(self) -> OrgRecord {
        let (prefix, text) = self.name;
        OrgRecord {
            kind: Some(self.kind),
            code: self.code.to_string(),
            name: format!("{prefix}{text}"),
            commune_code: self.commune_code.map(str::to_string),
            departement_code: self.departement_code.map(str::to_string),
            academie_code: self.academie_code.map(str::to_string),
            region_code: self.region_code.map(str::to_string),
            is_open: true,
            ..OrgRecord::default()
        }
    }

    /// `self.to_record() == *record`, without building the record.
    fn matches(&self, record: &OrgRecord) -> bool {
        let OrgRecord {
            kind,
            code,
            name,
            siren,
            siret,
            etab_type,
            nature_code,
            nature_label,
            sector,
            degree,
            commune_code,
            departement_code,
            academie_code,
            region_code,
            pupils,
            is_open,
            email,
        } = record;
        let (prefix, text) = self.name;
        *kind == Some(self.kind)
            && code == self.code
            && name.strip_prefix(prefix) == Some(text)
            && commune_code.as_deref() == self.commune_code
            && departement_code.as_deref() == self.departement_code
            && academie_code.as_deref() == self.academie_code
            && region_code.as_deref() == self.region_code
            && *is_open
            && (siren, siret, nature_code, nature_label, email) == (&None, &None, &None, &None, &None)
            && (etab_type, sector, degree, pupils) == (&None, &None, &None, &None)
    }
}

/// A related organisation's name as a row gives it: `prefix` then its label, or without a
/// label (column absent or empty) the placeholder `placeholder` then its code, said as such.
fn label_or_placeholder<'a>(
    label: Option<&'a str>,
    prefix: &'static str,
    placeholder: &'static str,
    code: &'a str,
) -> ((&'static str, &'a str), bool) {
    match label {
        Some(label) => ((prefix, label), false),
        None => ((placeholder, code), true),
    }
}

/// The commune, département, DSDEN, académie and région a row references.
fn related_records<'a>(row: &RowView<'a>, etab: &'a OrgRecord) -> Result<Vec<RelatedRef<'a>>, String> {
    let commune = etab.commune_code.as_deref().expect("etab has a commune");
    let dept = etab.departement_code.as_deref().expect("etab has a département");
    let academie = etab.academie_code.as_deref().expect("etab has an académie");
    let region = etab.region_code.as_deref();
    let dept_label = row.get(Field::DepartementName)?;
    let academie_label = row.get(Field::AcademieName)?;
    let base = |kind, code, (name, provisional)| RelatedRef {
        kind,
        code,
        name,
        provisional,
        commune_code: None,
        departement_code: Some(dept),
        academie_code: Some(academie),
        region_code: region,
    };
    let commune_name = label_or_placeholder(row.get(Field::CommuneName)?, "", "Commune ", commune);
    let academie_prefix = academie_prefix(academie_label.unwrap_or(academie));
    let mut related = vec![
        RelatedRef { commune_code: Some(commune), ..base(OrgKind::Commune, commune, commune_name) },
        base(OrgKind::Departement, dept, label_or_placeholder(dept_label, "", "Département ", dept)),
        base(OrgKind::Dsden, dept, label_or_placeholder(dept_label, "DSDEN – ", "DSDEN – ", dept)),
        RelatedRef {
            departement_code: None,
            ..base(
                OrgKind::Academie,
                academie,
                label_or_placeholder(academie_label, academie_prefix, academie_prefix, academie),
            )
        },
    ];
    if let Some(region) = region {
        let name = label_or_placeholder(row.get(Field::RegionName)?, "", "Région ", region);
        related.push(RelatedRef { departement_code: None, academie_code: None, ..base(OrgKind::Region, region, name) });
    }
    Ok(related)
}

/// The column that gives a related organisation's label.
fn label_column(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Commune => "Nom_commune",
        OrgKind::Departement | OrgKind::Dsden => "Libelle_departement",
        OrgKind::Academie => "Libelle_academie",
        OrgKind::Region => "Libelle_region",
        _ => "nom",
    }
}

/// The related organisations already sent in this run: each is sent once, or
/// again only if a later row adds to it (a label where the first had none, another
/// région: once per batch at most). The first label a file gives an organisation is
/// kept: a later row that names it otherwise is reported.
#[derive(Default)]
struct RelatedSeen {
    /// By kind: a handful, found by a linear search (cheaper than hashing the kind).
    kinds: Vec<(OrgKind, SeenOfKind)>,
}

/// What [`RelatedSeen`] holds for one kind, by code.
#[derive(Default)]
struct SeenOfKind {
    sent: HashMap<String, Sent>,
    /// Where each one sent in the batch under way sits in it.
    in_batch: HashMap<String, usize>,
}

/// A related organisation as sent, with where its name comes from.
struct Sent {
    record: OrgRecord,
    /// Its name is a placeholder: no row has given its label yet.
    provisional: bool,
    /// The line that gave the name kept.
    named_at: u64,
}

/// What [`RelatedSeen::add`] did with a row's related organisation.
#[derive(Default)]
struct Added {
    /// It revises what an earlier batch sent.
    revises_earlier: bool,
    /// The row names it otherwise than an earlier row did: the remark for its line.
    conflict: Option<String>,
}

impl RelatedSeen {
    /// Adds `related` to the batch unless sent already as it is.
    fn add(&mut self, related: &RelatedRef, line: u64, batch: &mut Vec<Staged>) -> Added {
        let at = match self.kinds.iter().position(|(kind, _)| *kind == related.kind) {
            Some(at) => at,
            None => {
                self.kinds.push((related.kind, SeenOfKind::default()));
                self.kinds.len() - 1
            }
        };
        let SeenOfKind { sent, in_batch } = &mut self.kinds[at].1;
        let mut added = Added::default();
        let mut record = related.to_record();
        let (mut provisional, mut named_at) = (related.provisional, line);
        if let Some(earlier) = sent.get(related.code) {
            if related.matches(&earlier.record) {
                return added;
            }
            // The first label given is kept: over a later one, and over a later row without.
            if related.provisional || !earlier.provisional {
                if !related.provisional && earlier.record.name != record.name && related.kind != OrgKind::Dsden {
                    added.conflict = Some(format!(
                        "{} {} : nom « {} » différent de celui de la ligne {} (« {} »), qui est conservé",
                        related.kind.label(),
                        related.code,
                        record.name,
                        earlier.named_at,
                        earlier.record.name,
                    ));
                }
                record.name.clone_from(&earlier.record.name);
                (provisional, named_at) = (earlier.provisional, earlier.named_at);
            }
            if record == earlier.record {
                return added;
            }
            added.revises_earlier = !in_batch.contains_key(related.code);
        }
        let staged = Staged { provisional, ..Staged::new(record.clone(), line) };
        match in_batch.get(related.code) {
            Some(&i) => batch[i] = staged,
            None => {
                in_batch.insert(related.code.to_string(), batch.len());
                batch.push(staged);
            }
        }
        sent.insert(related.code.to_string(), Sent { record, provisional, named_at });
        added
    }

    fn end_batch(&mut self) {
        self.kinds.iter_mut().for_each(|(_, seen)| seen.in_batch.clear());
    }
}

/// The records of a written batch, handed back to the parser thread that allocated
/// them: freed there, their memory goes back to that thread's own allocator arena (freed
/// by the writer, each free takes that arena's lock, which the parser allocating
/// meanwhile contends for).
type Spent = std::sync::mpsc::Receiver<Vec<Staged>>;

/// How many lines after its first a record took by a quote left open: a quoted value may
/// hold a line break (an address on two lines), but not the separators of a whole row after
/// it, and a record that spans lines with the wrong number of columns did not close its
/// quote where it meant to. 0 for a record read as one row.
fn swallowed_lines(record: &csv::ByteRecord, width: usize) -> u64 {
    let breaks = record.as_slice().trim_ascii_end().iter().filter(|&&b| b == b'\n').count() as u64;
    if breaks == 0 {
        return 0;
    }
    let row_after_break =
        |field: &[u8]| field.iter().position(|&b| b == b'\n').is_some_and(|i| field[i..].contains(&b';'));
    if record.len() != width || record.iter().any(row_after_break) {
        breaks
    } else {
        0
    }
}

/// The longest line the import reads: an annuaire line is a few hundred bytes. Longer, the
/// file has no line feeds (lines ended by CR alone) or is not an annuaire, and is refused
/// before it is held whole in memory as one header.
const MAX_LINE_BYTES: usize = 1 << 20;

/// The line feeds the reader has passed, by byte offset, so that a record's line is its
/// line in the file: the CSV reader's own count leaves out the blank lines it skips.
#[derive(Default)]
struct LineFeeds {
    /// The line feeds not yet behind every record asked about: offset, and whether the line
    /// it ends is empty.
    feeds: std::collections::VecDeque<(u64, bool)>,
    /// Line feeds dropped from `feeds`, all before the last record asked about.
    before: u64,
}

impl LineFeeds {
    /// The line (from 1) of the record the reader placed at `offset`: the reader places a
    /// record where the previous one ended, before the empty lines it skips.
    fn record_line(&mut self, offset: u64) -> u64 {
        while let Some(&(feed, empty)) = self.feeds.front() {
            if feed >= offset && !empty {
                break;
            }
            self.feeds.pop_front();
            self.before += 1;
        }
        self.before + 1
    }
}

/// The input as the CSV reader reads it, noting each line feed's offset and refusing a line
/// longer than [`MAX_LINE_BYTES`].
struct FeedCounting<R> {
    inner: R,
    read: u64,
    line_bytes: usize,
    /// Whether the current line holds a CR before its end (CR-only line endings).
    line_has_cr: bool,
    feeds: std::rc::Rc<std::cell::RefCell<LineFeeds>>,
}

impl<R: Read> Read for FeedCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut feeds = self.feeds.borrow_mut();
        for (i, &byte) in buf[..n].iter().enumerate() {
            if byte == b'\n' {
                feeds.feeds.push_back((self.read + i as u64, self.line_bytes == 0));
                (self.line_bytes, self.line_has_cr) = (0, false);
            } else {
                self.line_bytes += 1;
                self.line_has_cr |= byte == b'\r';
                if self.line_bytes > MAX_LINE_BYTES {
                    return Err(std::io::Error::other(match self.line_has_cr {
                        true => {
                            "ligne de plus d'un Mio : le fichier n'a pas de fins de ligne LF \
                                 (fins de ligne CR seules ?) ; enregistrez-le en LF ou CRLF"
                        }
                        false => {
                            "ligne de plus d'un Mio : aucune ligne de l'annuaire n'est aussi longue, \
                                  vérifiez le fichier (un champ entre guillemets non refermé ?)"
                        }
                    }));
                }
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Whether a row's établissement is in the caller's scope, placed there by the row's codes and
/// writable there as the registry places it and its places ([`row_in_scope`]). A row out of
/// scope is only counted: nothing of it is written or remarked upon, and it lends nothing to
/// the rows in scope (the label of a place they name).
fn in_place_of(scope: Option<&ImportScope>, elsewhere: &PlacedElsewhere, etab: &OrgRecord) -> bool {
    scope.is_none_or(|scope| {
        scope.holds(etab.academie_code.as_deref(), etab.departement_code.as_deref())
            && row_in_scope(scope, etab, |kind, code| elsewhere.get(kind, code))
    })
}

/// Where the registry places an organisation: its académie and département codes.
type Placement<'p> = (Option<&'p str>, Option<&'p str>);

/// Whether a caller of `scope` may write `record`, `placed` where the registry places it (`None`:
/// not registered): a registered organisation only from the scope it is registered in (the DAN
/// of the académie or DSDEN it would leave), a new one only into the caller's scope.
fn may_write_placed(scope: &ImportScope, record: &OrgRecord, placed: Option<Placement<'_>>) -> bool {
    match placed {
        Some((academie, departement)) => scope.holds(academie, departement),
        None => scope.holds(record.academie_code.as_deref(), record.departement_code.as_deref()),
    }
}

/// Whether a caller of `scope` may write a row's établissement: itself, and no commune or
/// département registered elsewhere out of the caller's scope would have to move for it.
/// `placed` tells where the registry places an organisation of a kind and code.
fn row_in_scope<'p>(
    scope: &ImportScope,
    etab: &OrgRecord,
    placed: impl Fn(OrgKind, &str) -> Option<Placement<'p>>,
) -> bool {
    row_kept_out_by(scope, etab, placed).is_none()
}

/// What keeps a row's établissement out of the caller's scope ([`row_in_scope`]): the
/// établissement itself, or its commune, département or DSDEN, registered elsewhere; `None`
/// when the row is in scope.
fn row_kept_out_by<'p>(
    scope: &ImportScope,
    etab: &OrgRecord,
    placed: impl Fn(OrgKind, &str) -> Option<Placement<'p>>,
) -> Option<(OrgKind, String)> {
    let place_stays = |kind: OrgKind, code: &Option<String>| {
        let Some((academie, departement)) = code.as_deref().and_then(|c| placed(kind, c)) else {
            return true;
        };
        let unplaced = academie.is_none();
        let same = academie == etab.academie_code.as_deref() && departement == etab.departement_code.as_deref();
        unplaced || same || scope.holds(academie, departement)
    };
    if !may_write_placed(scope, etab, placed(OrgKind::Etablissement, &etab.code)) {
        return Some((OrgKind::Etablissement, etab.code.clone()));
    }
    let places = [
        (OrgKind::Commune, &etab.commune_code),
        (OrgKind::Departement, &etab.departement_code),
        (OrgKind::Dsden, &etab.departement_code),
    ];
    places
        .into_iter()
        .find(|(kind, code)| !place_stays(*kind, code))
        .map(|(kind, code)| (kind, code.clone().unwrap_or_default()))
}

/// Why a row the parser found in scope is not written: what its batch's transaction found
/// registered out of the caller's scope, moved there since the import read the registry.
fn moved_out_of_scope(staged: &Staged, (kind, code): (OrgKind, String)) -> LineIssue {
    let what = match kind {
        OrgKind::Etablissement => format!("l'établissement {code} a été enregistré"),
        OrgKind::Commune => format!("sa commune {code} a été enregistrée"),
        OrgKind::Departement => format!("son département {code} a été enregistré"),
        _ => format!("sa DSDEN {code} a été enregistrée"),
    };
    LineIssue {
        line: staged.line,
        uai: Some(staged.record.code.clone()),
        reason: format!("{what} hors de votre périmètre pendant l'import : ligne non importée"),
    }
}

/// The établissements, communes, départements and DSDEN the registry places out of a scoped
/// caller's scope, read before the file: with them the parser finds out of scope every row
/// the writer would ([`row_in_scope`]), before the row lends anything to the rows in scope.
/// Those the registry places in the scope are left out (placed there, a row in scope by its
/// codes may write them). Only the codes a row in scope may name are read
/// ([`departements_in_reach`], [`code_ranges`]): not the whole country for one académie.
/// Empty for an unscoped import.
#[derive(Default)]
struct PlacedElsewhere {
    by_kind: HashMap<OrgKind, HashMap<String, Placed>>,
    /// The rows read, placed elsewhere or not.
    read: usize,
}

/// Where the registry places an organisation, as read: its académie and département codes.
type Placed = (Option<String>, Option<String>);

/// After every code that starts with a prefix: codes are made of digits and uppercase letters
/// (8 at most), which the C collation and the usual ones order digits first, then A to Z.
const AFTER_PREFIX: &str = "ZZZZZZZZ";

/// The départements a row in `scope` may name ([`ImportScope::holds`] by its codes, which
/// [`check_places`] keeps coherent): those of its académies, its DSDEN's, and those of no
/// known académie (a row there may name any académie).
fn departements_in_reach(scope: &ImportScope) -> Vec<String> {
    codes::departements()
        .filter(|d| match codes::academie_of_departement(d) {
            Some(academie) => scope.academies.contains(academie) || scope.departements.contains_key(d.as_str()),
            None => true,
        })
        .collect()
}

/// The codes of `kind` a row naming one of `departements` may name, as ranges (lowest, highest):
/// the UAIs numbered there, the communes of their INSEE prefix, the départements and DSDEN.
fn code_ranges(kind: OrgKind, departements: &[String]) -> Vec<(String, String)> {
    let mut prefixes: Vec<String> = match kind {
        OrgKind::Etablissement => departements.iter().flat_map(|d| codes::uai_prefixes(d)).collect(),
        OrgKind::Commune => departements.to_vec(),
        _ => return departements.iter().map(|d| (d.clone(), d.clone())).collect(),
    };
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes.into_iter().map(|p| (p.clone(), format!("{p}{AFTER_PREFIX}"))).collect()
}

impl PlacedElsewhere {
    const KINDS: [OrgKind; 4] = [OrgKind::Etablissement, OrgKind::Commune, OrgKind::Departement, OrgKind::Dsden];

    async fn read(store: &Store, scope: Option<&ImportScope>) -> Result<PlacedElsewhere, Problem> {
        let mut elsewhere = PlacedElsewhere::default();
        let Some(scope) = scope else {
            return Ok(elsewhere);
        };
        let marker = |i| markers(store.backend(), i, 1);
        let sql = format!(
            "SELECT code, academie_code, departement_code FROM orgs WHERE kind = {} AND code BETWEEN {} AND {}",
            marker(1),
            marker(2),
            marker(3)
        );
        let departements = departements_in_reach(scope);
        for kind in Self::KINDS {
            for (low, high) in code_ranges(kind, &departements) {
                let mut rows = sqlx::query(&sql).bind(kind.as_str()).bind(low).bind(high).fetch(store.pool());
                while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
                    let (code, academie, departement) = <(String, Option<String>, Option<String>)>::from_row(&row)?;
                    elsewhere.read += 1;
                    if !scope.holds(academie.as_deref(), departement.as_deref()) {
                        elsewhere.by_kind.entry(kind).or_default().insert(code, (academie, departement));
                    }
                }
            }
        }
        Ok(elsewhere)
    }

    fn len(&self) -> usize {
        self.by_kind.values().map(HashMap::len).sum()
    }

    fn get(&self, kind: OrgKind, code: &str) -> Option<Placement<'_>> {
        let (academie, departement) = self.by_kind.get(&kind)?.get(code)?;
        Some((academie.as_deref(), departement.as_deref()))
    }
}

/// What the pre-read of a scoped import ([`PlacedElsewhere`]) read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreRead {
    /// Établissements, communes, départements and DSDEN read: those a row in scope may name.
    pub read: usize,
    /// Those of them the registry places outside the scope.
    pub placed_elsewhere: usize,
}

/// The pre-read of a scoped import alone ([`PlacedElsewhere`]) (`entctl bench import` times it).
pub async fn read_places_elsewhere(store: &Store, scope: &ImportScope) -> Result<PreRead, Problem> {
    let elsewhere = PlacedElsewhere::read(store, Some(scope)).await?;
    Ok(PreRead { read: elsewhere.read, placed_elsewhere: elsewhere.len() })
}

/// Reads the CSV and sends batches; runs on a blocking thread.
fn parse_stream<R: Read>(
    input: R,
    scope: Option<ImportScope>,
    elsewhere: PlacedElsewhere,
    batch_size: usize,
    tx: tokio::sync::mpsc::Sender<Result<Batch, Problem>>,
    spent: Spent,
) {
    let feeds = std::rc::Rc::new(std::cell::RefCell::new(LineFeeds::default()));
    let line_of = |position: Option<&csv::Position>| position.map(|p| feeds.borrow_mut().record_line(p.byte()));
    let input = FeedCounting { inner: input, read: 0, line_bytes: 0, line_has_cr: false, feeds: feeds.clone() };
    // Records end at LF; a CR before it is trimmed with the last field.
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(true)
        .has_headers(true)
        .from_reader(input);
    let columns = match reader.byte_headers() {
        Ok(header) if header.iter().any(|name| name.trim_ascii_end().contains(&b'\r')) => {
            let _ = tx.blocking_send(Err(Problem::invalid_field(
                "en-tête",
                "fins de ligne CR seules : enregistrez le fichier avec des fins de ligne LF ou CRLF",
            )));
            return;
        }
        Ok(header) => match Columns::from_header(header) {
            Ok(c) => c,
            Err(p) => {
                let _ = tx.blocking_send(Err(p));
                return;
            }
        },
        Err(e) => {
            let _ = tx.blocking_send(Err(Problem::invalid_field("en-tête", format!("fichier illisible : {e}"))));
            return;
        }
    };
    let mut seen_uai: HashMap<String, u64> = HashMap::new();
    let mut related_seen = RelatedSeen::default();
    let mut batch = Batch::for_rows(batch_size);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // The record the reader failed on starts where it placed it.
                let line = line_of(e.position().or(record.position())).unwrap_or(0);
                if let csv::ErrorKind::Io(io) = e.kind() {
                    // Nothing after it can be read: the import stops, said as such, and what
                    // was read before is written (a new import of the fixed file completes it).
                    let _ = tx.blocking_send(Ok(batch));
                    let _ = tx.blocking_send(Err(Problem::invalid_field(
                        "fichier",
                        format!(
                            "lecture arrêtée à la ligne {line} : {io} ; les lignes d'avant sont importées, \
                             importez à nouveau le fichier corrigé (sans doublon)"
                        ),
                    )));
                    return;
                }
                batch.rows += 1;
                batch.rejected.push(LineIssue { line, uai: None, reason: format!("ligne illisible : {e}") });
                continue;
            }
        }
        // A blank line of a CRLF file (its CR alone) is skipped, as the reader skips LF ones.
        if record.len() == 1 && record[0].trim_ascii().is_empty() {
            continue;
        }
        batch.rows += 1;
        let line = line_of(record.position()).unwrap_or(0);
        let view = RowView { record: &record, columns: &columns };
        // The UAI a refusal names (built only for a refused line).
        let uai_hint = || view.get(Field::Uai).ok().flatten().map(str::to_ascii_uppercase);
        let breaks = swallowed_lines(&record, columns.width);
        if breaks > 0 {
            // A quote opened and not closed on its line made the lines after it one field:
            // said, with every line it took, rather than read as one row.
            batch.rows += breaks;
            batch.rejected.push(LineIssue {
                line,
                uai: uai_hint(),
                reason: format!(
                    "guillemet ouvert sans être fermé : les lignes {line} à {} sont lues comme une seule, \
                     aucune n'est importée ; corrigez le guillemet puis importez le fichier à nouveau",
                    line + breaks
                ),
            });
        } else if record.len() != columns.width {
            batch.rejected.push(LineIssue {
                line,
                uai: uai_hint(),
                reason: format!("{} colonnes au lieu de {}", record.len(), columns.width),
            });
        } else {
            match parse_row(&view) {
                Ok(RowOutcome::Skipped(kind)) => batch.skipped.push(kind),
                Ok(RowOutcome::Etab { etab, .. }) if !in_place_of(scope.as_ref(), &elsewhere, &etab) => {
                    batch.out_of_scope += 1
                }
                Ok(RowOutcome::Etab { etab, warnings }) => match related_records(&view, &etab) {
                    Err(reason) => batch.rejected.push(LineIssue { line, uai: uai_hint(), reason }),
                    Ok(_) if seen_uai.contains_key(&etab.code) => batch.rejected.push(LineIssue {
                        line,
                        uai: Some(etab.code.clone()),
                        reason: format!("UAI {} en double (déjà présent ligne {})", etab.code, seen_uai[&etab.code]),
                    }),
                    Ok(related) => {
                        let mut remarks = Vec::new();
                        for r in &related {
                            let added = related_seen.add(r, line, &mut batch.related);
                            batch.revises_earlier |= added.revises_earlier;
                            remarks.extend(added.conflict);
                        }
                        seen_uai.insert(etab.code.clone(), line);
                        for w in warnings.into_iter().chain(remarks) {
                            batch.warnings.push(LineIssue { line, uai: Some(etab.code.clone()), reason: w });
                        }
                        batch.etabs.push(Staged::new(*etab, line));
                    }
                },
                Err(reason) => batch.rejected.push(LineIssue { line, uai: uai_hint(), reason }),
            }
        }
        if batch.rows as usize >= batch_size {
            related_seen.end_batch();
            spent.try_iter().for_each(drop);
            if tx.blocking_send(Ok(std::mem::replace(&mut batch, Batch::for_rows(batch_size)))).is_err() {
                return;
            }
        }
    }
    let _ = tx.blocking_send(Ok(batch));
}

/// Imports an annuaire export read from `input`.
pub async fn import_annuaire<R: Read + Send + 'static>(
    store: &Store,
    actor: &Actor,
    input: R,
    options: ImportOptions,
    now: DateTime<Utc>,
) -> Result<ImportReport, Problem> {
    let started = std::time::Instant::now();
    // No other import writes in its académies meanwhile (a dry run writes nothing, takes none).
    let lock = match options.dry_run {
        true => None,
        false => ImportLock::take(store, actor, options.scope.as_ref(), options.lease, now).await?,
    };
    let report = import_locked(store, actor, input, &options, lock.as_ref(), started, now).await;
    if let Some(lock) = lock {
        if let Err(e) = lock.release().await {
            tracing::warn!(error = %e.detail, "annuaire import: its locks are left to their lease");
        }
    }
    report
}

/// [`import_annuaire`] once its locks are held.
async fn import_locked<R: Read + Send + 'static>(
    store: &Store,
    actor: &Actor,
    input: R,
    options: &ImportOptions,
    lock: Option<&ImportLock>,
    started: std::time::Instant,
    now: DateTime<Utc>,
) -> Result<ImportReport, Problem> {
    // Indexes an interrupted first import left set aside are built before any lookup.
    restore_indexes(store).await?;
    // The first import into an empty registry writes without the secondary indexes
    // of `orgs` and builds them once at the end (also after a failure). The guard is armed
    // first: a request dropped once they are set aside, even before this call returns,
    // builds them again.
    let restore = RestoreOnDrop::new(store);
    // An administrator's only: a scoped caller's registry holds at least its académie, and its
    // rows are looked up (the scope of each is checked against what is registered).
    let bulk = !options.dry_run && options.scope.is_none() && defer_indexes_if_empty(store, "orgs").await?;
    let restore = match bulk {
        true => Some(restore),
        false => {
            restore.done();
            None
        }
    };
    // On SQLite it keeps one connection from its first batch to the index builds, and with
    // it the page cache its writes filled; its batches are checkpointed once, during the index
    // builds (PostgreSQL's new rows go by its native pool).
    let held = match bulk && !store.backend().is_postgres() {
        true => Some(tokio::sync::Mutex::new(store.bulk_connection().await?)),
        false => None,
    };
    let written = write_batches(store, actor, input, options, lock, bulk, held.as_ref(), now).await;
    match held {
        Some(conn) => {
            let mut conn = conn.into_inner();
            // The batches' pages are copied into the database file (mostly a wait for the
            // flush) while the indexes are built (a sort on the other core).
            let build = async {
                store.checkpoint_as_usual(&mut conn).await?;
                restore_indexes_on(store, &mut conn).await
            };
            let (copied, built) = tokio::join!(store.checkpoint(), build);
            built?;
            // The build's commit copies its own pages, unless it found the first copy running.
            if let Err(e) = copied.and(store.checkpoint().await) {
                tracing::warn!(error = %e, "annuaire import: its pages are left to SQLite's next checkpoint");
            }
        }
        None if bulk => {
            restore_indexes(store).await?;
        }
        None => {}
    }
    if let Some(restore) = restore {
        restore.done();
    }
    let mut report = written?;
    if !options.dry_run && report.wrote_rows() {
        // PostgreSQL: a first import refreshes its statistics only before a batch that looks its
        // rows up; the plans of the lists of orgs follow the final size at once.
        store.analyze("orgs").await?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Parses `input` and writes its batches: what [`import_annuaire`] reports.
#[allow(clippy::too_many_arguments)]
async fn write_batches<R: Read + Send + 'static>(
    store: &Store,
    actor: &Actor,
    input: R,
    options: &ImportOptions,
    lock: Option<&ImportLock>,
    bulk: bool,
    held: Option<&HeldConnection>,
    now: DateTime<Utc>,
) -> Result<ImportReport, Problem> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let (spent_tx, spent_rx) = std::sync::mpsc::channel();
    let batch_size = options.batch_size.max(1);
    let scope = options.scope.clone();
    let elsewhere = PlacedElsewhere::read(store, scope.as_ref()).await?;
    let parser = tokio::task::spawn_blocking(move || parse_stream(input, scope, elsewhere, batch_size, tx, spent_rx));
    store.analyze("orgs (kind, code)").await?;
    let writer = BatchWriter { held, lock, ..BatchWriter::new(store, actor, options, bulk, now) };
    // A batch of new rows written by `COPY` or plain `INSERT` looks nothing up: in a first
    // import the statistics are refreshed only before a batch that does.
    let statistics = StatisticsRefresh { before_lookups_only: bulk, ..StatisticsRefresh::default() };
    let report = ImportReport { dry_run: options.dry_run, ..ImportReport::default() };
    let mut settled = Settled { report, statistics, lease_ran_out: false };
    let concurrency = store.bulk_writers();
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut input_open = true;
    // Reading stops at the end of the file or once the lease has run out.
    while (input_open && !settled.lease_ran_out) || !in_flight.is_empty() {
        while input_open && !settled.lease_ran_out && in_flight.len() < concurrency {
            match rx.recv().await {
                Some(Err(problem)) => {
                    // The writes already under way finish first: the lines read before the
                    // failure are written, as the refusal says.
                    while let Some(done) = futures_util::StreamExt::next(&mut in_flight).await {
                        settled.settle(store, options, done?).await?;
                    }
                    return Err(problem);
                }
                Some(Ok(_)) if lock.is_some_and(ImportLock::is_lost) => settled.lease_ran_out = true,
                Some(Ok(mut batch)) => {
                    record_line_outcomes(&mut settled.report, &batch);
                    let remarks = std::mem::take(&mut batch.warnings);
                    if batch.revises_earlier {
                        while let Some(done) = futures_util::StreamExt::next(&mut in_flight).await {
                            settled.settle(store, options, done?).await?;
                        }
                    }
                    if !writer.writes_new_rows_only(batch.revises_earlier) {
                        settled.statistics.before_lookups(store).await?;
                    }
                    let (etabs, related, revises) = (batch.etabs, batch.related, batch.revises_earlier);
                    in_flight.push(writer.apply(batch.rows, etabs, related, remarks, revises, &spent_tx));
                }
                None => input_open = false,
            }
        }
        if let Some(done) = futures_util::StreamExt::next(&mut in_flight).await {
            settled.settle(store, options, done?).await?;
        }
    }
    if settled.lease_ran_out {
        // The batches under way that had begun are written; the others, and the rest of the
        // file, are not.
        return Err(lock_lost(&settled.report, options.lease));
    }
    parser.await.map_err(|e| anyhow::anyhow!("import parser thread failed: {e}"))?;
    Ok(settled.report)
}

/// What the writer has made of the batches written so far.
struct Settled {
    report: ImportReport,
    statistics: StatisticsRefresh,
    /// The locks' lease ran out (or another import took them over) before a batch was written:
    /// nothing more is.
    lease_ran_out: bool,
}

impl Settled {
    /// Adds a batch's outcome to the report ([`StatisticsRefresh::settle`]).
    async fn settle(&mut self, store: &Store, options: &ImportOptions, counts: BatchCounts) -> Result<(), Problem> {
        self.lease_ran_out |= counts.lease_ran_out;
        self.statistics.settle(store, options, &mut self.report, counts).await
    }
}

/// The import stalled past its locks' lease (another may have taken them over, or did): it stops,
/// what it wrote kept (a new import of the file goes on from there).
fn lock_lost(report: &ImportReport, lease: Duration) -> Problem {
    Problem::conflict(format!(
        "import interrompu après {} lignes : il est resté bloqué plus de {} et un autre import \
         de vos académies a pu commencer ; les lignes lues sont importées, relancez l'import du fichier \
         une fois l'autre terminé",
        report.rows,
        duration_in_words(lease)
    ))
}

/// What the parser alone decided about a batch's lines (its lines are counted once written:
/// [`BatchCounts::lines`]).
fn record_line_outcomes(report: &mut ImportReport, batch: &Batch) {
    report.out_of_scope += batch.out_of_scope;
    report.skipped += batch.skipped.len() as u64;
    for kind in &batch.skipped {
        *report.skipped_by_type.entry(kind.clone()).or_default() += 1;
    }
    report.rejected += batch.rejected.len() as u64;
    append_capped(&mut report.rejections, batch.rejected.clone());
}

fn append_capped(list: &mut Vec<LineIssue>, more: Vec<LineIssue>) {
    let room = REPORT_LIST_LIMIT.saturating_sub(list.len());
    list.extend(more.into_iter().take(room));
}

const UPSERT_COLUMNS: [&str; 22] = [
    "id",
    "kind",
    "code",
    "name",
    "sort_name",
    "siren",
    "siret",
    "etab_type",
    "nature_code",
    "nature_label",
    "sector",
    "degree",
    "commune_code",
    "departement_code",
    "academie_code",
    "region_code",
    "pupils",
    "is_open",
    "email",
    "content_hash",
    "created_at",
    "updated_at",
];

/// The connection a first import on SQLite writes through from batch to batch.
type HeldConnection = tokio::sync::Mutex<sqlx::AnyConnection>;

/// See [`BatchWriter::connection`].
enum BatchConnection<'h> {
    Held(tokio::sync::MutexGuard<'h, sqlx::AnyConnection>),
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl std::ops::Deref for BatchConnection<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        match self {
            BatchConnection::Held(conn) => conn,
            BatchConnection::Pooled(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for BatchConnection<'_> {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        match self {
            BatchConnection::Held(conn) => conn,
            BatchConnection::Pooled(conn) => conn,
        }
    }
}

/// Applies batches, one write transaction each.
struct BatchWriter<'a> {
    /// Where new rows go, when the import holds a connection for them.
    held: Option<&'a HeldConnection>,
    /// The import's locks: a batch is written only while their lease holds.
    lock: Option<&'a ImportLock>,
    store: &'a Store,
    actor: &'a Actor,
    /// Groups the audit records of one run.
    run_id: String,
    dry_run: bool,
    scope: Option<&'a ImportScope>,
    /// A first import into an empty registry: a batch that revises nothing an earlier
    /// batch wrote holds new rows only, written without looking them up, by plain
    /// `INSERT` (SQLite) or `COPY` (PostgreSQL).
    bulk: bool,
    at: DateTime<Utc>,
    now: String,
}

/// What one batch created, updated or left unchanged.
#[derive(Default)]
struct BatchCounts {
    etablissements: Counts,
    related: BTreeMap<String, Counts>,
    out_of_scope: u64,
    /// The lines of the établissements found out of scope.
    out_of_scope_lines: HashSet<u64>,
    /// Why each of them is ([`moved_out_of_scope`]).
    moved: Vec<LineIssue>,
    /// The remarks on the batch's lines: the parser's on the rows in scope, and the
    /// writer's (organisations named provisionally, régions a scoped caller named
    /// otherwise than registered).
    warnings: Vec<LineIssue>,
    written: u64,
    /// The batch's lines (the file's data rows it holds), once written.
    lines: u64,
    /// Not written: the locks' lease ran out before it ([`ImportLock::is_lost`]).
    lease_ran_out: bool,
}

impl BatchCounts {
    /// A batch not written: the import's locks were lost before its commit.
    fn lease_ran_out() -> BatchCounts {
        BatchCounts { lease_ran_out: true, ..BatchCounts::default() }
    }

    fn count(&mut self, kind: OrgKind, change: &RowChange) {
        let counts = if kind == OrgKind::Etablissement {
            &mut self.etablissements
        } else {
            self.related.entry(related_label(kind).to_string()).or_default()
        };
        match change {
            RowChange::Created => counts.created += 1,
            RowChange::Updated => counts.updated += 1,
            RowChange::Unchanged => counts.unchanged += 1,
        }
    }

    /// Adds the parser's remarks on the batch's lines, but those on lines found out of
    /// scope (nothing of such a row is said but its count), in the order of the lines.
    fn add_line_remarks(&mut self, remarks: Vec<LineIssue>) {
        let in_scope = remarks.into_iter().filter(|r| !self.out_of_scope_lines.contains(&r.line));
        self.warnings.splice(0..0, in_scope);
        self.warnings.sort_by_key(|w| w.line);
    }

    fn add_to(&self, report: &mut ImportReport) {
        report.rows += self.lines;
        add_counts(&mut report.etablissements, &self.etablissements);
        report.out_of_scope += self.out_of_scope;
        append_capped(&mut report.moved_out_of_scope, self.moved.clone());
        append_capped(&mut report.warnings, self.warnings.clone());
        for (kind, counts) in &self.related {
            add_counts(report.related.entry(kind.clone()).or_default(), counts);
        }
    }
}

/// PostgreSQL plans the batch lookups from table statistics; on a table that
/// grows by the import, stale statistics turn index lookups into full scans.
/// Refresh them whenever the table has grown fourfold since the last refresh (in a
/// first import, only once a batch that looks its rows up comes: an `ANALYZE` awaited
/// between batches holds every writer up).
#[derive(Default)]
struct StatisticsRefresh {
    written_since: u64,
    rows_at_last: u64,
    /// Refresh in [`StatisticsRefresh::before_lookups`] rather than after a write.
    before_lookups_only: bool,
    /// A refresh is due before the next batch that looks its rows up.
    due: bool,
}

impl StatisticsRefresh {
    /// Adds a written batch's counts to the report, then refreshes the statistics when due.
    async fn settle(
        &mut self,
        store: &Store,
        options: &ImportOptions,
        report: &mut ImportReport,
        counts: BatchCounts,
    ) -> Result<(), Problem> {
        counts.add_to(report);
        if options.dry_run {
            return Ok(());
        }
        self.after_write(store, counts.written).await
    }

    async fn after_write(&mut self, store: &Store, written: u64) -> Result<(), Problem> {
        self.written_since += written;
        if self.written_since < 1000 || self.written_since < 3 * self.rows_at_last {
            return Ok(());
        }
        self.rows_at_last += self.written_since;
        self.written_since = 0;
        self.due = true;
        if self.before_lookups_only {
            return Ok(());
        }
        self.before_lookups(store).await
    }

    /// Runs the refresh when one is due.
    async fn before_lookups(&mut self, store: &Store) -> Result<(), Problem> {
        if std::mem::take(&mut self.due) {
            store.analyze("orgs (kind, code)").await?;
        }
        Ok(())
    }
}

fn add_counts(total: &mut Counts, more: &Counts) {
    total.created += more.created;
    total.updated += more.updated;
    total.unchanged += more.unchanged;
}

enum RowChange {
    Created,
    Updated,
    Unchanged,
}

impl<'a> BatchWriter<'a> {
    fn new(store: &'a Store, actor: &'a Actor, options: &'a ImportOptions, bulk: bool, at: DateTime<Utc>) -> Self {
        let (dry_run, scope) = (options.dry_run, options.scope.as_ref());
        BatchWriter {
            store,
            actor,
            held: None,
            lock: None,
            run_id: new_id(),
            dry_run,
            scope,
            bulk,
            at,
            now: timestamp(at),
        }
    }

    /// Whether the caller may write `record` over what is registered ([`may_write_placed`]).
    /// Régions (no académie, no département) are shared reference data: an administrator's only.
    fn may_write(&self, record: &OrgRecord, existing: &HashMap<(OrgKind, String), Existing>) -> bool {
        self.scope.is_none_or(|scope| {
            may_write_placed(
                scope,
                record,
                existing.get(&(record.kind(), record.code.clone())).map(Existing::placement),
            )
        })
    }

    /// What keeps a row's établissement from being written ([`row_kept_out_by`]; the parser found
    /// it in scope with what was registered before the file: said again, in the batch's
    /// transaction, with what is registered now).
    fn kept_out_by(
        &self,
        etab: &OrgRecord,
        existing: &HashMap<(OrgKind, String), Existing>,
    ) -> Option<(OrgKind, String)> {
        let scope = self.scope?;
        row_kept_out_by(scope, etab, |kind, code| existing.get(&(kind, code.to_string())).map(Existing::placement))
    }

    /// The summary of a batch's audit record (one per batch that wrote), naming what it wrote.
    fn audit_summary(written: &[Cow<'_, Staged>]) -> serde_json::Value {
        let codes: Vec<String> =
            written.iter().map(|s| format!("{}:{}", s.record.kind().as_str(), s.record.code)).collect();
        serde_json::json!({ "written": codes.len(), "orgs": codes })
    }

    /// Writes one batch in one transaction, only the rows whose hash changed. In a first
    /// import, a batch that revises nothing an earlier batch wrote holds new rows only: they
    /// go without being looked up ([`BatchWriter::apply_new`]); any other batch by upsert.
    /// The records go back to the parser thread afterwards (see [`Spent`]). Nothing is written
    /// once the locks' lease has run out, even by a batch received before ([`ImportLock::is_lost`]).
    async fn apply(
        &self,
        lines: u64,
        etabs: Vec<Staged>,
        related: Vec<Staged>,
        remarks: Vec<LineIssue>,
        revises_earlier: bool,
        spent: &std::sync::mpsc::Sender<Vec<Staged>>,
    ) -> Result<BatchCounts, Problem> {
        let mut remarks = remarks;
        let etabs = self.without_claimed_sirens(etabs, &mut remarks).await?;
        let counts = match self.lease_ran_out() {
            true => Ok(BatchCounts::lease_ran_out()),
            false => self.apply_records(&etabs, &related, revises_earlier).await.map(|mut counts| {
                counts.add_line_remarks(remarks);
                // Rolled back before its commit, a batch's lines are not written.
                counts.lines = if counts.lease_ran_out { 0 } else { lines };
                counts
            }),
        };
        // Freed here when the parser is done (its end of the channel closed).
        let _ = spent.send(etabs);
        let _ = spent.send(related);
        counts
    }

    /// The batch's établissements, each SIREN (or SIRET) that is not theirs ignored, with a remark
    /// on its line ([`not_its_siren`]): a public école's SIREN is its commune's, an EPLE's (or a
    /// private school's) its own, never an éditeur's, a hébergeur's or another public body's,
    /// which a groupement's award and DECP then read. The remark is one sentence whatever the
    /// SIREN is and whoever holds it. Only holders in the caller's scope count
    /// ([`Self::siren_holders`]): one out of it is as no one, so that neither the report nor
    /// what is stored tells whether an organisation out of reach holds a SIREN.
    async fn without_claimed_sirens(
        &self,
        mut etabs: Vec<Staged>,
        remarks: &mut Vec<LineIssue>,
    ) -> Result<Vec<Staged>, Problem> {
        let sirens: BTreeSet<&str> = etabs.iter().filter_map(|s| s.record.siren.as_deref()).collect();
        if sirens.is_empty() {
            return Ok(etabs);
        }
        let holders = self.siren_holders(&sirens).await?;
        for staged in &mut etabs {
            let record = &staged.record;
            let Some(siren) = record.siren.as_deref() else { continue };
            if not_its_siren(record, siren, holders.get(siren).map_or(&[][..], Vec::as_slice)) {
                remarks.push(LineIssue {
                    line: staged.line,
                    uai: Some(record.code.clone()),
                    reason: format!(
                        "SIREN {siren} ignoré, SIRET compris : un établissement n'a pour SIREN que le sien ou celui de \
                         sa commune"
                    ),
                });
                let record = OrgRecord { siren: None, siret: None, ..record.clone() };
                *staged = Staged { provisional: staged.provisional, ..Staged::new(record, staged.line) };
            }
        }
        Ok(etabs)
    }

    /// The organisations other than établissements in the caller's scope (every one for an
    /// administrator) that hold each of `sirens` (by their SIREN, their SIRET, or an EPCI's or
    /// syndicat mixte's code, which is its SIREN). The same statements run whoever holds them.
    async fn siren_holders(&self, sirens: &BTreeSet<&str>) -> Result<HashMap<String, Vec<(String, String)>>, Problem> {
        let mut holders: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let sirens: Vec<&str> = sirens.iter().copied().collect();
        for chunk in sirens.chunks(500) {
            let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT CASE WHEN siren IN ({list}) THEN siren WHEN SUBSTR(siret, 1, 9) IN ({list}) \
                 THEN SUBSTR(siret, 1, 9) ELSE code END AS held, kind, code, academie_code, departement_code \
                 FROM orgs WHERE kind <> 'etablissement' AND (siren IN ({list}) OR SUBSTR(siret, 1, 9) IN ({list}) \
                 OR (kind IN ('epci', 'syndicat_mixte') AND code IN ({list})))"
            );
            let mut query = sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>)>(&sql);
            for siren in chunk {
                query = query.bind(*siren);
            }
            let mut conn = self.connection().await?;
            for (held, kind, code, academie, departement) in query.fetch_all(&mut *conn).await? {
                if self.scope.is_none_or(|scope| scope.holds(academie.as_deref(), departement.as_deref())) {
                    holders.entry(held).or_default().push((kind, code));
                }
            }
        }
        Ok(holders)
    }

    async fn apply_records(
        &self,
        etabs: &[Staged],
        related: &[Staged],
        revises_earlier: bool,
    ) -> Result<BatchCounts, Problem> {
        if etabs.is_empty() && related.is_empty() {
            return Ok(BatchCounts::default());
        }
        if self.writes_new_rows_only(revises_earlier) {
            if let Some(counts) = self.apply_new(etabs, related).await? {
                return Ok(counts);
            }
        }
        self.apply_by_upsert(etabs, related).await
    }

    /// Whether the import's locks are lost ([`ImportLock::is_lost`]): a batch then writes nothing,
    /// checked before its transaction and again before its commit (a batch begun before the
    /// import stalled is rolled back).
    fn lease_ran_out(&self) -> bool {
        self.lock.is_some_and(ImportLock::is_lost)
    }

    /// Whether [`BatchWriter::apply`] writes a batch as new rows, without looking them up.
    fn writes_new_rows_only(&self, revises_earlier: bool) -> bool {
        self.bulk && !self.dry_run && !revises_earlier
    }

    async fn apply_by_upsert(&self, etabs: &[Staged], related: &[Staged]) -> Result<BatchCounts, Problem> {
        let mut conn = self.connection().await?;
        let mut tx = self.store.begin_write_on(&mut conn).await?;
        // A batch lost in a crash is rewritten by the next run (batches are
        // idempotent), so the import need not wait for each commit's flush.
        relax_durability(&mut tx, self.store.backend()).await?;
        let mut existing = self.lookup(&mut tx, etabs, related).await?;
        let mut plan = self.plan(&existing, etabs, related);
        if self.scope.is_some() && self.store.backend().locks_rows() && !plan.to_write.is_empty() {
            // What the plan writes and the places of its établissements are read again, locked
            // until the commit: a change committed since the lookup is seen, and none can come
            // before the batch's writes. Unchanged rows, written by no one, are not locked.
            let keys = decided_on(&plan.to_write, &existing);
            let keys: Vec<(OrgKind, &str)> = keys.iter().map(|(kind, code)| (*kind, code.as_str())).collect();
            let locked = existing_orgs(&mut tx, self.store.backend(), &keys, true).await?;
            for (kind, code) in &keys {
                existing.remove(&(*kind, code.to_string()));
            }
            existing.extend(locked);
            plan = self.plan(&existing, etabs, related);
        }
        for chunk in plan.to_write.chunks(1000) {
            upsert(&mut tx, self.store.backend(), chunk, &self.now).await?;
        }
        if !plan.to_write.is_empty() {
            let target = Target::new("import", &self.run_id, None);
            let summary = Self::audit_summary(&plan.to_write);
            audit::record(&mut tx, self.store.backend(), self.actor, "imports.annuaire", &target, summary, self.at)
                .await?;
        }
        let lost = !self.dry_run && self.lease_ran_out();
        if self.dry_run || lost {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(if lost { BatchCounts::lease_ran_out() } else { plan.counts })
    }

    /// A batch of new organisations only (a first import's batch that revises nothing an
    /// earlier batch wrote), written without looking its rows up: by `COPY` in a native
    /// transaction on PostgreSQL, by plain `INSERT` on SQLite. `None` (nothing written)
    /// when a row turns out registered already (by another writer meanwhile): the
    /// constraint on (kind, code) refuses it, and the batch then goes by upsert.
    async fn apply_new(&self, etabs: &[Staged], related: &[Staged]) -> Result<Option<BatchCounts>, Problem> {
        let plan = self.plan(&HashMap::new(), etabs, related);
        let rows: Vec<Vec<BulkValue<'_>>> = plan.to_write.iter().map(|s| upsert_row(s, &self.now)).collect();
        let target = Target::new("import", &self.run_id, None);
        if let Some(mut tx) = self.store.begin_copy().await? {
            match copy_rows(&mut tx, "orgs", &UPSERT_COLUMNS, &rows).await {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(None),
                written => written?,
            };
            if !plan.to_write.is_empty() {
                let summary = Self::audit_summary(&plan.to_write);
                audit::record_in_copy(&mut tx, self.actor, "imports.annuaire", &target, summary, self.at).await?;
            }
            if self.lease_ran_out() {
                tx.rollback().await?;
                return Ok(Some(BatchCounts::lease_ran_out()));
            }
            tx.commit().await?;
            return Ok(Some(plan.counts));
        }
        let mut conn = self.connection().await?;
        let mut tx = self.store.begin_write_on(&mut conn).await?;
        match insert(&mut tx, self.store.backend(), &rows).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                return Ok(None);
            }
            written => written?,
        };
        if !plan.to_write.is_empty() {
            let summary = Self::audit_summary(&plan.to_write);
            audit::record(&mut tx, self.store.backend(), self.actor, "imports.annuaire", &target, summary, self.at)
                .await?;
        }
        if self.lease_ran_out() {
            tx.rollback().await?;
            return Ok(Some(BatchCounts::lease_ran_out()));
        }
        tx.commit().await?;
        Ok(Some(plan.counts))
    }

    /// The connection a batch writes through: the one the import holds, else a pooled one.
    async fn connection(&self) -> Result<BatchConnection<'a>, Problem> {
        Ok(match self.held {
            Some(held) => BatchConnection::Held(held.lock().await),
            None => BatchConnection::Pooled(self.store.conn().await?),
        })
    }

    /// What is registered under the keys a batch writes or places its rows in.
    async fn lookup(
        &self,
        conn: &mut sqlx::AnyConnection,
        etabs: &[Staged],
        related: &[Staged],
    ) -> Result<HashMap<(OrgKind, String), Existing>, Problem> {
        let mut keys: Vec<(OrgKind, &str)> =
            related.iter().chain(etabs.iter()).map(|s| (s.record.kind(), s.record.code.as_str())).collect();
        for etab in etabs.iter().map(|s| &s.record) {
            if let Some(commune) = &etab.commune_code {
                keys.push((OrgKind::Commune, commune.as_str()));
            }
            if let Some(departement) = &etab.departement_code {
                keys.extend([(OrgKind::Departement, departement.as_str()), (OrgKind::Dsden, departement.as_str())]);
            }
        }
        existing_orgs(conn, self.store.backend(), &keys, false).await
    }

    /// What a batch writes: the rows in the caller's scope whose hash changed, with
    /// the counts of what is created, updated, unchanged and out of scope. A related
    /// organisation is written only for a row in scope that names it.
    fn plan<'r>(
        &self,
        existing: &HashMap<(OrgKind, String), Existing>,
        etabs: &'r [Staged],
        related: &'r [Staged],
    ) -> BatchPlan<'r> {
        let mut counts = BatchCounts::default();
        let mut etabs_in_scope = Vec::with_capacity(etabs.len());
        for etab in etabs {
            match self.kept_out_by(&etab.record, existing) {
                None => etabs_in_scope.push(etab),
                Some(by) => {
                    counts.out_of_scope_lines.insert(etab.line);
                    counts.moved.push(moved_out_of_scope(etab, by));
                }
            }
        }
        counts.out_of_scope = counts.moved.len() as u64;
        let named = (!counts.moved.is_empty()).then(|| places_named(&etabs_in_scope));
        let related_in_scope: Vec<Cow<'r, Staged>> = related
            .iter()
            .filter(|r| named.as_ref().is_none_or(|named| named.contains(&(r.record.kind(), r.record.code.as_str()))))
            .map(|r| keep_known_name(r, existing))
            .filter(|r| match self.shared_reference(&r.record) {
                true => self.keep_registered(r, existing, &mut counts),
                false => self.may_write(&r.record, existing),
            })
            .collect();
        let mut to_write = Vec::new();
        for record in related_in_scope.into_iter().chain(etabs_in_scope.into_iter().map(Cow::Borrowed)) {
            let registered = match existing.is_empty() {
                true => None,
                false => existing.get(&(record.record.kind(), record.record.code.clone())),
            };
            let change = match registered {
                None => RowChange::Created,
                Some(old) if old.content_hash != record.hash => RowChange::Updated,
                Some(_) => RowChange::Unchanged,
            };
            counts.count(record.record.kind(), &change);
            if matches!(change, RowChange::Created) && record.provisional {
                counts.warnings.push(provisional_name_remark(&record));
            }
            if !matches!(change, RowChange::Unchanged) {
                to_write.push(record);
            }
        }
        counts.written = to_write.len() as u64;
        BatchPlan { counts, to_write }
    }
}

/// The SIREN and SIRET a row gives an établissement, unless the INSEE's numbering says the SIREN
/// cannot be its own ([`EtabSiren::numbering_refusal`]: a public EPLE's from 1, a private
/// school's outside 1 and 2): then both are dropped, with a remark on the row's line. Decided on
/// the row alone, before any holder is looked up, it says the same whoever holds the SIREN.
fn numbered_as_its_own(
    siren: Option<String>,
    siret: Option<String>,
    etab_type: EtabType,
    sector: &str,
    commune_code: &str,
    warnings: &mut Vec<String>,
) -> (Option<String>, Option<String>) {
    let Some(number) = siren.as_deref() else { return (siren, siret) };
    let etab = EtabSiren {
        etab_type: Some(etab_type),
        sector: Some(if sector == "prive" { Sector::Prive } else { Sector::Public }),
        commune_code: Some(commune_code),
        commune_siren: None,
    };
    match etab.numbering_refusal(number) {
        Some(reason) => {
            warnings.push(format!("SIREN {number} ignoré, SIRET compris : {reason}"));
            (None, None)
        }
        None => (siren, siret),
    }
}

/// Whether `siren`, which a row gives the établissement `record`, is not its own: a public
/// école takes its commune's only ([`EtabSiren::is_communes`], the registry's record of its
/// commune among `held`), whoever else holds the SIREN or not; an EPLE or a private school takes
/// any that no other organisation than its commune holds (`held`: the registered holders other
/// than établissements, by kind and code), once the INSEE's numbering admitted it
/// ([`numbered_as_its_own`], at parsing).
fn not_its_siren(record: &OrgRecord, siren: &str, held: &[(String, String)]) -> bool {
    let its_commune = |(kind, code): &(String, String)| {
        kind == OrgKind::Commune.as_str() && Some(code.as_str()) == record.commune_code.as_deref()
    };
    let etab = EtabSiren {
        etab_type: record.etab_type,
        sector: Some(if record.sector == Some("prive") { Sector::Prive } else { Sector::Public }),
        commune_code: record.commune_code.as_deref(),
        commune_siren: held.iter().any(its_commune).then_some(siren),
    };
    match etab.takes_its_communes() {
        true => !etab.is_communes(siren),
        false => !held.iter().all(its_commune),
    }
}

/// The registered organisations a batch's writes were decided on: those it writes, and the
/// établissement, commune, département and DSDEN of each établissement it writes.
fn decided_on(to_write: &[Cow<'_, Staged>], existing: &HashMap<(OrgKind, String), Existing>) -> Vec<(OrgKind, String)> {
    let mut keys = Vec::new();
    for record in to_write.iter().map(|s| &s.record) {
        keys.push((record.kind(), record.code.clone()));
        if record.kind() == OrgKind::Etablissement {
            let places = [
                (OrgKind::Commune, &record.commune_code),
                (OrgKind::Departement, &record.departement_code),
                (OrgKind::Dsden, &record.departement_code),
            ];
            keys.extend(places.into_iter().filter_map(|(kind, code)| Some((kind, code.clone()?))));
        }
    }
    keys.retain(|key| existing.contains_key(key));
    keys.sort_unstable_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    keys.dedup();
    keys
}

/// The related organisations the rows of `etabs` name (their commune, département, DSDEN,
/// académie and région).
fn places_named<'r>(etabs: &[&'r Staged]) -> HashSet<(OrgKind, &'r str)> {
    let mut named = HashSet::new();
    for etab in etabs.iter().map(|s| &s.record) {
        let places = [
            (OrgKind::Commune, &etab.commune_code),
            (OrgKind::Departement, &etab.departement_code),
            (OrgKind::Dsden, &etab.departement_code),
            (OrgKind::Academie, &etab.academie_code),
            (OrgKind::Region, &etab.region_code),
        ];
        named.extend(places.into_iter().filter_map(|(kind, code)| Some((kind, code.as_deref()?))));
    }
    named
}

/// A related organisation the row names without its label, as it is written: a registered
/// one keeps its name (a placeholder never replaces a known name); a new one takes the
/// placeholder.
fn keep_known_name<'r>(staged: &'r Staged, existing: &HashMap<(OrgKind, String), Existing>) -> Cow<'r, Staged> {
    let known = match staged.provisional {
        true => existing.get(&(staged.record.kind(), staged.record.code.clone())).and_then(|e| e.name.as_ref()),
        false => None,
    };
    match known {
        Some(name) => {
            let record = OrgRecord { name: name.clone(), ..staged.record.clone() };
            Cow::Owned(Staged::new(record, staged.line))
        }
        None => Cow::Borrowed(staged),
    }
}

/// The remark on a related organisation created under a placeholder name.
fn provisional_name_remark(staged: &Staged) -> LineIssue {
    let kind = staged.record.kind();
    let reason = format!(
        "{} {} : nouvelle organisation enregistrée sous le nom provisoire « {} », la ligne ne donnant pas \
         son libellé (colonne « {} » absente ou vide) ; un import qui le donne remplacera ce nom",
        kind.label(),
        staged.record.code,
        staged.record.name,
        label_column(kind)
    );
    LineIssue { line: staged.line, uai: None, reason }
}

impl BatchWriter<'_> {
    /// A région (no académie, no département) as a scoped caller's row names it: shared
    /// reference data, written by an administrator only.
    fn shared_reference(&self, record: &OrgRecord) -> bool {
        self.scope.is_some() && record.academie_code.is_none() && record.departement_code.is_none()
    }

    /// A [`BatchWriter::shared_reference`] row is never written: as registered, it is counted
    /// unchanged; otherwise its line is reported and it is left as registered (or absent).
    /// Always false (nothing to write).
    fn keep_registered(
        &self,
        staged: &Staged,
        existing: &HashMap<(OrgKind, String), Existing>,
        counts: &mut BatchCounts,
    ) -> bool {
        let record = &staged.record;
        let reason = match existing.get(&(record.kind(), record.code.clone())) {
            Some(old) if old.content_hash == staged.hash => {
                counts.count(record.kind(), &RowChange::Unchanged);
                return false;
            }
            Some(_) => format!(
                "région {} « {} » : diffère de la région enregistrée, non appliquée \
                 (seul un administrateur modifie une région)",
                record.code, record.name
            ),
            None => format!("région {} inconnue : non créée (seul un administrateur ajoute une région)", record.code),
        };
        counts.warnings.push(LineIssue { line: staged.line, uai: None, reason });
        false
    }
}

/// What [`BatchWriter::plan`] found a batch writes.
struct BatchPlan<'r> {
    counts: BatchCounts,
    /// Borrowed from the batch, or owned when its name was replaced ([`keep_known_name`]).
    to_write: Vec<Cow<'r, Staged>>,
}

fn related_label(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Commune => "communes",
        OrgKind::Departement => "départements",
        OrgKind::Dsden => "DSDEN",
        OrgKind::Academie => "académies",
        OrgKind::Region => "régions",
        _ => "autres",
    }
}

/// What is registered under a (kind, code) before a batch is written.
struct Existing {
    content_hash: String,
    /// The name of a related organisation (not read for an établissement).
    name: Option<String>,
    academie_code: Option<String>,
    departement_code: Option<String>,
}

impl Existing {
    fn placement(&self) -> Placement<'_> {
        (self.academie_code.as_deref(), self.departement_code.as_deref())
    }
}

/// What is registered under `keys`; with `lock`, the rows are locked until the end of the
/// transaction ([`Backend::for_update`]), taken in one order (kind, then code) by every batch,
/// so that two batches of one import never wait for each other both ways.
async fn existing_orgs(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    keys: &[(OrgKind, &str)],
    lock: bool,
) -> Result<HashMap<(OrgKind, String), Existing>, Problem> {
    let mut by_kind: HashMap<OrgKind, Vec<&str>> = HashMap::new();
    for (kind, code) in keys {
        by_kind.entry(*kind).or_default().push(code);
    }
    let mut by_kind: Vec<(OrgKind, Vec<&str>)> = by_kind.into_iter().collect();
    by_kind.sort_unstable_by_key(|(kind, _)| kind.as_str());
    let locking = match lock {
        true => format!(" ORDER BY code{}", backend.for_update()),
        false => String::new(),
    };
    let mut found = HashMap::new();
    for (kind, mut codes) in by_kind {
        codes.sort_unstable();
        codes.dedup();
        for chunk in codes.chunks(500) {
            // A related organisation's name is kept over a placeholder ([`keep_known_name`]).
            let name = if kind == OrgKind::Etablissement { "NULL" } else { "name" };
            let sql = format!(
                "SELECT code, content_hash, academie_code, departement_code, {name} FROM orgs \
                 WHERE kind = {} AND code IN ({}){locking}",
                markers(backend, 1, 1),
                markers(backend, 2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(kind.as_str());
            for code in chunk {
                query = query.bind(*code);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let (code, content_hash, academie_code, departement_code, name) =
                    <(String, String, Option<String>, Option<String>, Option<String>)>::from_row(&row)?;
                found.insert((kind, code), Existing { content_hash, name, academie_code, departement_code });
            }
        }
    }
    Ok(found)
}

/// `INSERT INTO orgs (...) <source> ON CONFLICT ... DO UPDATE` for a row source.
fn upsert_into_orgs(source: &str) -> String {
    let updates: Vec<String> = UPSERT_COLUMNS
        .iter()
        .filter(|c| !matches!(**c, "id" | "kind" | "code" | "created_at"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO orgs ({}) {source} ON CONFLICT (kind, code) DO UPDATE SET {}, version = orgs.version + 1",
        UPSERT_COLUMNS.join(", "),
        updates.join(", ")
    )
}

/// Inserts new rows (values of [`upsert_row`]) into `orgs` in the backend's bulk form.
async fn insert(tx: &mut sqlx::AnyConnection, backend: Backend, rows: &[Vec<BulkValue<'_>>]) -> sqlx::Result<()> {
    let columns: Vec<(&str, bool)> = UPSERT_COLUMNS.iter().map(|c| (*c, matches!(*c, "pupils" | "is_open"))).collect();
    let insert = |source: &str| format!("INSERT INTO orgs ({}) {source}", UPSERT_COLUMNS.join(", "));
    write_rows(tx, backend, &columns, rows, insert).await
}

/// Upserts `records` (with their content hash) into `orgs` in the backend's bulk form.
async fn upsert(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    records: &[Cow<'_, Staged>],
    now: &str,
) -> Result<(), Problem> {
    let columns: Vec<(&str, bool)> = UPSERT_COLUMNS.iter().map(|c| (*c, matches!(*c, "pupils" | "is_open"))).collect();
    let rows: Vec<Vec<BulkValue<'_>>> = records.iter().map(|s| upsert_row(s, now)).collect();
    write_rows(tx, backend, &columns, &rows, upsert_into_orgs).await?;
    Ok(())
}

/// The values of one record, in the order of [`UPSERT_COLUMNS`].
fn upsert_row<'a>(staged: &'a Staged, now: &'a str) -> Vec<BulkValue<'a>> {
    use BulkValue::{Int, Text};
    let text = |value: Option<&'a str>| Text(value.map(Cow::Borrowed));
    let r = &staged.record;
    vec![
        Text(Some(Cow::Owned(new_id()))),
        text(Some(r.kind().as_str())),
        text(Some(&r.code)),
        text(Some(&r.name)),
        text(Some(&staged.sort_name)),
        text(r.siren.as_deref()),
        text(r.siret.as_deref()),
        text(r.etab_type.map(EtabType::as_str)),
        text(r.nature_code.as_deref()),
        text(r.nature_label.as_deref()),
        text(r.sector),
        text(r.degree),
        text(r.commune_code.as_deref()),
        text(r.departement_code.as_deref()),
        text(r.academie_code.as_deref()),
        text(r.region_code.as_deref()),
        Int(r.pupils),
        Int(Some(i64::from(r.is_open))),
        text(r.email.as_deref()),
        text(Some(&staged.hash)),
        text(Some(now)),
        text(Some(now)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_agrees_its_counts_in_number_and_gender() {
        let mut report = ImportReport { rows: 1, ..Default::default() };
        report.etablissements = Counts { created: 1, updated: 0, unchanged: 3 };
        report.related.insert("communes".into(), Counts { created: 2, updated: 1, unchanged: 0 });
        report.related.insert("départements".into(), Counts { created: 1, updated: 2, unchanged: 1 });
        let text = report.to_text();
        assert!(text.starts_with("Import terminé : 1 ligne en 0,0 s\n"), "{text}");
        assert!(text.contains("  établissements : 1 créé, 0 mis à jour, 3 inchangés\n"), "{text}");
        assert!(text.contains("  communes : 2 créées, 1 mise à jour, 0 inchangée\n"), "{text}");
        assert!(text.contains("  départements : 1 créé, 2 mis à jour, 1 inchangé\n"), "{text}");
    }

    #[test]
    fn headers_of_different_years_normalise_alike() {
        assert_eq!(normalise_header("\u{feff}Identifiant_de_l_etablissement"), "identifiant_de_l_etablissement");
        assert_eq!(normalise_header("Code postal"), "code_postal");
        assert_eq!(normalise_header("Code_postal"), "code_postal");
        assert_eq!(normalise_header("Nom établissement"), "nom_etablissement");
    }

    /// A related organisation a row names is found equal to what was sent exactly when
    /// the record it would build is: however its name is split into prefix and text.
    #[test]
    fn related_organisations_match_the_records_they_build() {
        let commune = RelatedRef {
            kind: OrgKind::Commune,
            code: "94034",
            name: ("Commune ", "94034"),
            provisional: true,
            commune_code: Some("94034"),
            departement_code: Some("094"),
            academie_code: Some("24"),
            region_code: None,
        };
        let record = commune.to_record();
        assert_eq!(record.name, "Commune 94034");
        assert!(commune.matches(&record));
        assert!(RelatedRef { name: ("", "Commune 94034"), ..commune }.matches(&record));
        for other in [
            RelatedRef { name: ("", "Fresnes"), ..commune },
            RelatedRef { name: ("Commune", " 94034 "), ..commune },
            RelatedRef { region_code: Some("11"), ..commune },
            RelatedRef { academie_code: None, ..commune },
            RelatedRef { kind: OrgKind::Departement, ..commune },
        ] {
            assert!(!other.matches(&record), "{other:?}");
            assert!(other.matches(&other.to_record()), "{other:?}");
        }
        let closed = OrgRecord { is_open: false, ..record.clone() };
        let with_email = OrgRecord { email: Some("a@b.fr".into()), ..record };
        assert!(!commune.matches(&closed) && !commune.matches(&with_email));
    }

    #[test]
    fn academie_codes_have_two_digits() {
        assert_eq!(parse_academie_code("24").as_deref(), Ok("24"));
        for wrong in ["2", "024", "2A", "２４"] {
            let refusal = parse_academie_code(wrong).unwrap_err();
            assert!(refusal.contains("attendu 2 chiffres"), "{wrong}: {refusal}");
        }
        let long = "9".repeat(500);
        assert!(parse_academie_code(&long).unwrap_err().len() < 100, "the refusal shows a bounded excerpt");
    }

    #[test]
    fn academie_names_elide_before_vowels() {
        assert_eq!(academie_prefix("Créteil"), "Académie de ");
        assert_eq!(academie_prefix("Amiens"), "Académie d'");
        assert_eq!(academie_prefix("Orléans-Tours"), "Académie d'");
        assert_eq!(academie_prefix("Île-de-France"), "Académie d'");
    }
}
