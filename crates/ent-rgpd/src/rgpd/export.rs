//! Exports of a register: JSON (the [`Register`] schema), CSV (`;`, UTF-8 with
//! BOM), ODS after the CNIL's model register, HTML (A4) and PDF. Every export
//! lists the same Art. 30 fields, from [`entry_fields`].

use super::derive::{
    named, Actor, ContractRef, DataCategory, Dpia, Dpo, Entry, ProcessorEntry, ProcessorLink, Register, NO_CONTRACT,
};
use ent_conventions::conventions::processing::one_parenthesis;
use ent_documents::documents::{self, Block, Document, Section};
use ent_kernel::clock::{french_date, french_day};
use ent_kernel::error::Problem;
use ent_kernel::naming;
use ent_platform::catalog::PersonalData;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Ods,
    Html,
    Pdf,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Json, Format::Csv, Format::Ods, Format::Html, Format::Pdf];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Ods => "ods",
            Format::Html => "html",
            Format::Pdf => "pdf",
        }
    }

    /// `json` when absent; a validation problem naming the formats otherwise.
    pub fn parse(value: Option<&str>) -> Result<Format, Problem> {
        let value = value.unwrap_or("json").trim();
        Format::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(value)).ok_or_else(|| {
            Problem::invalid_field("format", format!("format inconnu « {value} » : json, csv, ods, html ou pdf"))
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Format::Html => "text/html; charset=utf-8",
            Format::Pdf => "application/pdf",
        }
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b {
        "oui"
    } else {
        "non"
    }
}

pub fn contact(a: &Actor) -> String {
    [a.head.as_str(), a.address.as_str(), a.email.as_str(), a.phone.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ; ")
}

pub fn dpo_contact(d: &Dpo) -> String {
    [d.address.as_str(), d.email.as_str(), d.phone.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ; ")
}

fn actor_line(a: &Actor) -> String {
    let c = contact(a);
    if c.is_empty() {
        a.name.clone()
    } else {
        format!("{} ({c})", a.name)
    }
}

fn or_none(items: Vec<String>, none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items.join("\n")
    }
}

/// Transfers outside the EU as text: « aucun » when there are none.
pub fn transfers_text(transfers: &[super::derive::Transfer]) -> String {
    or_none(
        transfers
            .iter()
            .map(|t| {
                let doc = if t.documentation.is_empty() { "à documenter" } else { &t.documentation };
                let safeguard = if t.safeguard.is_empty() { "garanties non documentées" } else { &t.safeguard };
                format!("{} ({}) : {safeguard} ; documentation : {doc}", t.recipient, t.country)
            })
            .collect(),
        "aucun",
    )
}

fn processors_text(e: &Entry) -> String {
    or_none(
        e.processors
            .iter()
            .map(|p| {
                let contract = match &p.contract {
                    Some(c) => c.citation(),
                    None if !p.uncovered.is_empty() => format!("{NO_CONTRACT} pour ce service ({})", p.uncovered),
                    None => NO_CONTRACT.to_string(),
                };
                let (name, acts_for) = (named(&p.org).official, acts_for(e, p));
                format!("{name} — {}, pour {acts_for}, {} ; {contract}", p.role, p.org.country)
            })
            .collect(),
        "aucun",
    )
}

/// Whom the processor link `p` of `e` acts for, as an official text names it (« la DSDEN du
/// Val-de-Marne », [`named`]): the entry's controller or a link above it in the chain, which
/// `p.acts_for` names by its registry name; a name none of them bears, as it is shown.
fn acts_for(e: &Entry, p: &ProcessorLink) -> String {
    let mut above =
        std::iter::once(&e.controller).chain(&e.joint_controllers).chain(e.processors.iter().map(|l| &l.org));
    match above.find(|a| a.name == p.acts_for) {
        Some(client) => named(client).article,
        None => naming::display_name(&p.acts_for),
    }
}

/// What a blank mandatory value shows: never a silent blank.
pub const NOT_GIVEN: &str = "NON RENSEIGNÉ";

/// Label / value of every field of an Art. 30(1) entry, in register order; blanks say so.
pub fn entry_fields(e: &Entry) -> Vec<(&'static str, String)> {
    said_blank(all_entry_fields(e))
}

/// `fields` with each blank value saying so ([`NOT_GIVEN`]).
fn said_blank(mut fields: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    for (_, v) in fields.iter_mut().filter(|(_, v)| v.trim().is_empty()) {
        *v = NOT_GIVEN.to_string();
    }
    fields
}

/// « AIPD requise » with the criteria named and what requires it, or why not.
pub fn dpia_text(d: &Dpia) -> String {
    let scale = if d.scale.is_empty() { String::new() } else { format!(" — grande échelle : {}", d.scale) };
    if d.required {
        let basis = if d.basis.is_empty() { String::new() } else { format!(" — fondement : {}", d.basis) };
        format!("AIPD requise ({} critères) : {}{scale}{basis}", d.reasons.len(), d.reasons.join(" ; "))
    } else if d.undetermined {
        format!(
            "à déterminer (un critère : {} ; la grande échelle, second critère possible, n'est pas évaluable){scale}",
            d.reasons.join(" ; ")
        )
    } else if d.reasons.is_empty() {
        format!("non requise (aucun critère){scale}")
    } else {
        format!("non requise (un seul critère : {}){scale}", d.reasons.join(" ; "))
    }
}

/// The AIPD field of an entry: the AIPD of the ENT that covers it (« couvert par l'AIPD de
/// l'ENT 94-ENT : AIPD requise … »), or, in a register derived before, the entry's own.
pub fn entry_dpia_text(e: &Entry) -> String {
    match e.dpia_covered_by.as_str() {
        "" => dpia_text(&e.dpia),
        ent => format!("couvert par l'AIPD de l'ENT ({ent}) : {}", dpia_text(&e.dpia)),
    }
}

/// The accounts of an entry's deployed tenants: never a bare « 0 » when no figure is known.
fn accounts_text(e: &Entry) -> String {
    match e.accounts > 0 {
        true => super::derive::count(e.accounts),
        false => "non évaluable".into(),
    }
}

/// A data category as a register names it: a sensitive one in one parenthesis citing its
/// article, from the catalog's category (article 9 for a health datum, article 10 for offences),
/// as the Art. 28 annex does ([`one_parenthesis`]); the others as the catalog names them.
pub fn category_label(d: &DataCategory) -> String {
    let data =
        PersonalData { category: d.category.clone(), sensitive: d.sensitive, highly_personal: d.highly_personal };
    one_parenthesis(&data.annex_label())
}

/// A data category with its markers: its article when sensitive ([`category_label`]), highly
/// personal.
fn data_category(d: &DataCategory) -> String {
    match (d.sensitive, d.highly_personal) {
        (true, _) => category_label(d),
        (false, true) => format!("{} [hautement personnelle]", d.category),
        (false, false) => d.category.clone(),
    }
}

fn all_entry_fields(e: &Entry) -> Vec<(&'static str, String)> {
    let personal_data = e.personal_data.iter().map(data_category).collect::<Vec<_>>().join("\n");
    vec![
        ("Référence", e.reference.clone()),
        ("Traitement", e.name.clone()),
        ("Responsable de traitement", named(&e.controller).official),
        ("Coordonnées du responsable", contact(&e.controller)),
        ("Responsables conjoints", or_none(e.joint_controllers.iter().map(actor_line).collect(), "aucun")),
        ("Représentant", e.representative.clone()),
        ("Délégué à la protection des données", e.dpo.name.clone()),
        ("Coordonnées du délégué", dpo_contact(&e.dpo)),
        ("Finalité principale", e.purposes.first().cloned().unwrap_or_default()),
        ("Sous-finalités", or_none(e.purposes.iter().skip(1).cloned().collect(), "aucune")),
        ("Base légale", e.legal_basis.clone()),
        ("Catégories de personnes concernées", e.data_subjects.join("\n")),
        ("Données de mineurs", yes_no(e.minors).into()),
        ("Catégories de données", personal_data),
        ("Données sensibles (art. 9 et 10)", yes_no(e.sensitive_data).into()),
        ("Données hautement personnelles", yes_no(e.highly_personal_data).into()),
        ("Catégories de destinataires", e.recipients.join("\n")),
        ("Transferts hors EEE", transfers_text(&e.transfers)),
        ("Durées de conservation", e.retention.clone()),
        ("Mesures de sécurité", e.security_measures.join("\n")),
        ("Source des données", e.data_source.clone()),
        ("Sous-traitants", processors_text(e)),
        (
            "Établissements concernés",
            e.establishments.iter().map(|s| format!("{} {}", s.uai, s.name)).collect::<Vec<_>>().join("\n"),
        ),
        ("Comptes", accounts_text(e)),
        ("Conventions", or_none(e.conventions.clone(), "aucune convention en vigueur")),
        ("Analyse d'impact (AIPD)", entry_dpia_text(e)),
        ("Date de création", french_day(&e.first_recorded)),
        ("Dernière mise à jour", french_day(&e.last_changed)),
        ("Alertes", or_none(e.warnings.clone(), "aucune")),
        ("Champs manquants", or_none(e.missing.clone(), "aucun (fiche complète)")),
    ]
}

/// The contract of an Art. 30(2) entry — each of its contracts with its clients when it works for
/// the controller under several: « MARCHE-ENT-94034 — Marché ENT des écoles, avec la Commune de
/// Fresnes » —, then the processing it leaves under no contract: « AUCUN CONTRAT art. 28 pour :
/// Visioconférence : le marché GC-… ne couvre pas ce service ».
fn contract_text(e: &ProcessorEntry) -> String {
    let line = |c: &ContractRef| match c.ccap {
        Some(_) => format!("{} — {} ({})", c.reference, c.title, c.clauses()),
        None => format!("{} — {}", c.reference, c.title),
    };
    let contracts: Vec<String> = match e.contracts.is_empty() {
        true => e.contract.iter().map(line).collect(),
        false => e
            .contracts
            .iter()
            .map(|c| format!("{}, avec {}", line(&c.contract), naming::and_list(&c.clients)))
            .collect(),
    };
    let uncovered = e.uncovered.iter().map(|u| format!("{NO_CONTRACT} pour : {u}"));
    let lines: Vec<String> = contracts.into_iter().chain(uncovered).collect();
    or_none(lines, "aucun")
}

/// Label / value of every field of an Art. 30(2) entry; blanks say so, as in the 30(1) fiches.
pub fn processor_fields(e: &ProcessorEntry) -> Vec<(&'static str, String)> {
    said_blank(vec![
        ("Responsable de traitement", named(&e.controller).official),
        ("Coordonnées du responsable", contact(&e.controller)),
        (
            "Délégué du responsable",
            format!("{} {}", e.controller_dpo.name, dpo_contact(&e.controller_dpo)).trim().to_string(),
        ),
        ("Rôle", e.roles.join(", ")),
        ("Catégories de traitements", e.processing.join("\n")),
        ("Établissements", e.establishments.to_string()),
        (CONTRACT_COLUMN, contract_text(e)),
        ("Transferts hors EEE", transfers_text(&e.transfers)),
        ("Mesures de sécurité", e.security_measures.join("\n")),
        ("Sous-traitants ultérieurs", or_none(e.sub_processors.clone(), "aucun")),
        ("Alertes", or_none(e.warnings.clone(), "aucune")),
        ("Champs manquants", or_none(e.missing.clone(), "aucun (fiche complète)")),
    ])
}

fn owned(fields: Vec<(&'static str, String)>) -> Vec<(String, String)> {
    fields.into_iter().map(|(l, v)| (l.to_string(), v)).collect()
}

/// Beyond this many establishments in an entry, documents list them once, in an annex.
const INLINE_ESTABLISHMENTS: usize = 30;

/// Every establishment of the register once, with the activities it is concerned by.
fn annex(r: &Register) -> Section {
    let mut by_uai: std::collections::BTreeMap<&str, (&str, &str, Vec<&str>)> = std::collections::BTreeMap::new();
    for e in &r.entries {
        for s in &e.establishments {
            by_uai.entry(&s.uai).or_insert((&s.name, &s.tenant, Vec::new())).2.push(&e.reference);
        }
    }
    let rows = by_uai.into_iter().map(|(uai, (name, tenant, refs))| {
        vec![uai.to_string(), name.to_string(), tenant.to_string(), refs.join(", ")]
    });
    Section::new("Annexe : établissements concernés").table(["UAI", "Établissement", "Tenant", "Activités"], rows)
}

/// The register's title, naming its organisation as an official text does: « Registre des
/// activités de traitement du Département du Val-de-Marne ».
pub fn title(r: &Register) -> String {
    format!("Registre des activités de traitement {}", named(&r.organisation).of)
}

/// What the register is and when it was derived: « État au 5 décembre 2026 — article 30 du RGPD ».
pub fn state_line(r: &Register) -> String {
    format!("État au {} — article 30 du RGPD", french_date(&r.as_of))
}

/// The register as a document (HTML, PDF).
pub fn document(r: &Register) -> Document {
    let o = &r.organisation;
    let mut doc = Document::new(title(r)).with_subtitle(state_line(r)).section(
        Section::new("Organisme").fields(
            [
                ("Organisme", named(o).official),
                ("Identifiant", o.code.clone()),
                ("Responsable (représentant légal)", o.head.clone()),
                ("Coordonnées", contact(o)),
                ("Représentant", r.representative.clone()),
                ("Délégué à la protection des données", r.dpo.name.clone()),
                ("Coordonnées du délégué", dpo_contact(&r.dpo)),
            ]
            .map(|(l, v)| (l, if v.trim().is_empty() { NOT_GIVEN.to_string() } else { v })),
        ),
    );
    let rows: Vec<Vec<String>> = r
        .entries
        .iter()
        .map(|e| {
            vec![
                e.reference.clone(),
                e.name.clone(),
                french_day(&e.first_recorded),
                french_day(&e.last_changed),
                e.purposes.first().cloned().unwrap_or_default(),
                yes_no(e.sensitive_data).into(),
            ]
        })
        .collect();
    doc =
        doc.section(Section::new("Activités de traitement (article 30.1)").table(
            ["Référence", "Activité", "Création", "Mise à jour", "Finalité principale", "Données sensibles"],
            rows,
        ));
    for p in &r.processings {
        let fields = [
            ("Référence", p.reference.clone()),
            ("Traitement", p.name.clone()),
            ("Responsable de traitement", named(&p.controller).official),
            ("Fiches (une par service, sous-finalités du traitement)", p.entries.join(", ")),
            ("Analyse d'impact (AIPD), pour tout l'ENT", dpia_text(&p.dpia)),
        ];
        let title = format!("Traitement {} — l'ENT et son analyse d'impact (article 35)", p.reference);
        doc = doc.section(Section::new(title).block(Block::Fields(owned(fields.to_vec()))));
    }
    let long = r.entries.iter().any(|e| e.establishments.len() > INLINE_ESTABLISHMENTS);
    for e in &r.entries {
        let mut fields = entry_fields(e);
        if long {
            for (_, value) in fields.iter_mut().filter(|(l, _)| *l == "Établissements concernés") {
                let n = e.establishments.len() as i64;
                *value = format!("{} : voir l'annexe", super::derive::counted(n, "établissement", "établissements"));
            }
        }
        doc = doc
            .section(Section::new(format!("Fiche {} — {}", e.reference, e.name)).block(Block::Fields(owned(fields))));
    }
    for e in &r.processor_entries {
        doc = doc.section(
            Section::new(format!("{} (article 30.2)", e.title())).block(Block::Fields(owned(processor_fields(e)))),
        );
    }
    if long {
        doc = doc.section(annex(r));
    }
    let incomplete: Vec<String> =
        r.incomplete.iter().map(|i| format!("{} — {} : {}", i.reference, i.name, i.missing.join(", "))).collect();
    doc.section(Section::new("Fiches incomplètes").bullets(if incomplete.is_empty() {
        vec![match r.entries_count() {
            0 => "Aucune : le registre ne porte encore aucune activité de traitement.".to_string(),
            _ => "Aucune : le registre et toutes ses fiches sont complets.".to_string(),
        }]
    } else {
        incomplete
    }))
}

/// The CSV column of an Art. 30(2) entry's contract ([`contract_text`]), after the Art. 30(1)
/// columns: empty on an Art. 30(1) row, whose « Sous-traitants » name each contract.
const CONTRACT_COLUMN: &str = "Contrat";

/// CSV, `;`-separated, UTF-8 with BOM: one row per entry (Art. 30(1) then 30(2)); the columns
/// of an Art. 30(1) entry in their order, then [`CONTRACT_COLUMN`].
pub fn csv(r: &Register) -> Vec<u8> {
    let sample = r.entries.first().map(entry_fields).unwrap_or_else(|| entry_fields(&empty_entry()));
    let mut header = vec!["Registre"];
    header.extend(sample.iter().map(|(l, _)| *l));
    header.push(CONTRACT_COLUMN);
    let controller_rows = r.entries.iter().map(|e| {
        let mut row = vec!["article 30.1".to_string()];
        row.extend(entry_fields(e).into_iter().map(|(_, v)| v));
        row.push(String::new());
        row
    });
    let processor_rows = r.processor_entries.iter().map(|e| {
        let f = processor_fields(e);
        let value = |label: &str| f.iter().find(|(l, _)| *l == label).map(|(_, v)| v.clone()).unwrap_or_default();
        std::iter::once("article 30.2".to_string())
            .chain(header[1..].iter().map(|label| match *label {
                "Traitement" => format!("Sous-traitance ({})", value("Rôle")),
                "Référence" => format!("ST-{}", e.controller.code),
                "Finalité principale" => value("Catégories de traitements"),
                "Sous-traitants" => value("Sous-traitants ultérieurs"),
                "Délégué à la protection des données" => value("Délégué du responsable"),
                "Établissements concernés" => value("Établissements"),
                other => value(other),
            }))
            .collect::<Vec<String>>()
    });
    documents::csv::write(&header, controller_rows.chain(processor_rows).collect::<Vec<_>>(), true)
}

fn empty_entry() -> Entry {
    serde_json::from_value(serde_json::json!({
        "key": "", "reference": "", "name": "", "service": "",
        "controller": { "id": "", "kind": "", "code": "", "name": "", "country": "", "address": "", "email": "", "phone": "", "head": "" },
        "joint_controllers": [], "representative": "", "dpo": { "name": "", "email": "", "phone": "", "address": "" },
        "purposes": [], "data_subjects": [], "minors": false, "personal_data": [], "sensitive_data": false, "highly_personal_data": false,
        "recipients": [], "transfers": [], "retention": "", "security_measures": [], "legal_basis": "", "data_source": "",
        "processors": [], "establishments": [], "accounts": 0, "conventions": [],
        "dpia": { "required": false, "reasons": [], "scale": "" }, "first_recorded": "", "last_changed": "", "warnings": [], "missing": []
    }))
    .expect("empty entry")
}

/// Renders `r` in `format`. PDF blocks on LibreOffice: call from `spawn_blocking`.
pub fn render(r: &Register, format: Format) -> Result<Vec<u8>, Problem> {
    Ok(match format {
        Format::Json => serde_json::to_vec_pretty(r).expect("register serialises"),
        Format::Csv => csv(r),
        Format::Ods => super::ods::register(r),
        Format::Html => documents::to_html(&document(r)).into_bytes(),
        Format::Pdf => documents::to_pdf(&document(r)).map_err(Problem::from)?,
    })
}

/// The file name of an export.
pub fn file_name(prefix: &str, code: &str, as_of: &str, format: Format) -> String {
    let code: String = code.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{prefix}-{code}-{as_of}.{}", format.as_str())
}

/// A log (breaches, requests) as CSV, ODS, HTML or PDF: one row per record.
pub fn table(
    title: &str,
    org: &str,
    header: &[&str],
    rows: &[Vec<String>],
    format: Format,
) -> Result<Vec<u8>, Problem> {
    let doc = || {
        Document::new(title)
            .with_subtitle(org.to_string())
            .section(Section::new(title.to_string()).table(header.iter().copied(), rows.iter().map(|r| r.to_vec())))
    };
    Ok(match format {
        Format::Json => unreachable!("JSON logs are serialised by their callers"),
        Format::Csv => documents::csv::write(header, rows.iter().cloned(), true),
        Format::Ods => super::ods::table(title, header, rows),
        Format::Html => documents::to_html(&doc()).into_bytes(),
        Format::Pdf => documents::to_pdf(&doc()).map_err(Problem::from)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_in_french_on_their_day_in_paris() {
        let mut e = empty_entry();
        // 00:30 in Paris on 1 September.
        e.first_recorded = "2026-08-31T22:30:00.000000Z".into();
        e.last_changed = "2026-09-15T08:00:00.000000Z".into();
        let fields = entry_fields(&e);
        let value = |label: &str| fields.iter().find(|(l, _)| *l == label).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(value("Date de création"), "1er septembre 2026");
        assert_eq!(value("Dernière mise à jour"), "15 septembre 2026");
    }

    /// Domain review 40, G8: the accounts read in groups of three, as the AIPD line of the fiche.
    #[test]
    fn accounts_read_in_groups_of_three() {
        let e = Entry { accounts: 3530, ..empty_entry() };
        let accounts = entry_fields(&e).into_iter().find(|(l, _)| *l == "Comptes").unwrap().1;
        assert_eq!(accounts, "3\u{a0}530");
    }

    /// An Art. 30(2) entry of a host for the DSDEN of the Val-de-Marne, without contract nor
    /// contacts, with `fields` set over it.
    fn processor_entry(fields: serde_json::Value) -> ProcessorEntry {
        let mut entry = serde_json::json!({
            "key": "k",
            "controller": { "id": "d", "kind": "dsden", "code": "0941", "name": "DSDEN du Val-de-Marne", "country": "FR",
                            "address": "", "email": "", "phone": "", "head": "" },
            "controller_dpo": { "name": "", "email": "", "phone": "", "address": "" },
            "roles": ["hébergeur"], "processing": ["ENT"], "establishments": 3, "contract": null, "transfers": [],
            "security_measures": [], "sub_processors": [], "warnings": [], "missing": []
        });
        for (field, value) in fields.as_object().expect("fields") {
            entry[field] = value.clone();
        }
        serde_json::from_value(entry).unwrap()
    }

    /// Domain review 40, G9: an Art. 30(2) entry without the controller's contacts or DPO says
    /// so (« NON RENSEIGNÉ »), as the 30(1) fiches do; given ones read as given.
    #[test]
    fn a_processor_entry_says_what_is_not_given() {
        let mut e = processor_entry(serde_json::json!({}));
        let value = |e: &ProcessorEntry, label: &str| {
            processor_fields(e).into_iter().find(|(l, _)| *l == label).map(|(_, v)| v).unwrap()
        };
        assert_eq!(value(&e, "Coordonnées du responsable"), NOT_GIVEN);
        assert_eq!(value(&e, "Délégué du responsable"), NOT_GIVEN);
        e.controller.email = "dsden94@ac-creteil.fr".into();
        e.controller_dpo.name = "DPO académique".into();
        assert_eq!(value(&e, "Coordonnées du responsable"), "dsden94@ac-creteil.fr");
        assert_eq!(value(&e, "Délégué du responsable"), "DPO académique");
        assert!(processor_fields(&e).iter().all(|(_, v)| !v.trim().is_empty()), "no blank cell");
    }

    /// A link a contract binds for other services only reads « AUCUN CONTRAT art. 28 pour ce
    /// service » with why; a register derived before (no `uncovered`) reads as it did.
    #[test]
    fn a_service_outside_its_contract_reads_under_no_contract() {
        let mut e = empty_entry();
        e.processors = vec![serde_json::from_value(serde_json::json!({
            "org": { "id": "v", "kind": "editeur", "code": "V", "name": "Éditeur", "country": "FR", "address": "",
                     "email": "", "phone": "", "head": "" },
            "role": "éditeur", "acts_for": "Fresnes", "contract": null, "art28_contract": false,
            "uncovered": "le marché GC-2026-000002 ne couvre pas le service « Visioconférence »"
        }))
        .unwrap()];
        let value = |e: &Entry| entry_fields(e).into_iter().find(|(l, _)| *l == "Sous-traitants").unwrap().1;
        assert_eq!(
            value(&e),
            "Éditeur — éditeur, pour Fresnes, FR ; AUCUN CONTRAT art. 28 pour ce service (le marché GC-2026-000002 \
             ne couvre pas le service « Visioconférence »)"
        );
        e.processors[0].uncovered.clear();
        assert_eq!(value(&e), "Éditeur — éditeur, pour Fresnes, FR ; AUCUN CONTRAT art. 28");
    }

    /// An Art. 30(2) entry under several contracts (or for several clients) reads each contract
    /// with its clients, one a line, as French lists them; under one, the contract alone.
    #[test]
    fn a_processor_entry_under_several_contracts_names_the_clients_of_each() {
        let mut e = processor_entry(serde_json::json!({
            "roles": ["éditeur"],
            "contract": { "reference": "M-1", "title": "Marché ENT des écoles", "art28": true },
            "contracts": [
                { "contract": { "reference": "M-1", "title": "Marché ENT des écoles", "art28": true },
                  "clients": ["la Commune de Fresnes"] },
                { "contract": { "reference": "GC-2", "title": "Marché du groupement", "art28": true,
                                "ccap": { "version": 2, "sha256": "abc" } },
                  "clients": ["la Commune de Vitry-sur-Seine", "la Commune d'Ivry-sur-Seine", "l'EPCI Grand-Orly"] }
            ]
        }));
        let contract =
            |e: &ProcessorEntry| processor_fields(e).into_iter().find(|(l, _)| *l == CONTRACT_COLUMN).unwrap().1;
        assert_eq!(
            contract(&e),
            "M-1 — Marché ENT des écoles, avec la Commune de Fresnes\n\
             GC-2 — Marché du groupement (clauses art. 28 : article 9 du CCAP, version 2, SHA-256 abc), avec la Commune \
             de Vitry-sur-Seine, la Commune d'Ivry-sur-Seine et l'EPCI Grand-Orly"
        );
        e.contracts.clear();
        assert_eq!(contract(&e), "M-1 — Marché ENT des écoles");
    }

    /// An Art. 30(2) row carries its contract in the last column, « Contrat », neutralised when a
    /// spreadsheet would read it as a formula; an Art. 30(1) row leaves it empty.
    #[test]
    fn the_csv_carries_the_contract_of_a_processor_s_entry() {
        let entry: ProcessorEntry = serde_json::from_value(serde_json::json!({
            "key": "dsden", "controller": { "id": "d", "kind": "dsden", "code": "94", "name": "DSDEN – Val-de-Marne",
              "country": "FR", "address": "", "email": "", "phone": "", "head": "" },
            "controller_dpo": { "name": "", "email": "", "phone": "", "address": "" },
            "roles": ["éditeur"], "processing": [], "establishments": 1,
            "contract": { "reference": "=MARCHE-1", "title": "Marché ENT", "art28": true },
            "uncovered": ["Visioconférence : le marché =MARCHE-1 ne couvre pas ce service"],
            "transfers": [], "security_measures": [], "sub_processors": [], "warnings": [], "missing": []
        }))
        .unwrap();
        let mut register: Register = serde_json::from_value(serde_json::json!({
            "schema": "x", "organisation": { "id": "e", "kind": "editeur", "code": "1", "name": "Éditeur",
              "country": "FR", "address": "", "email": "", "phone": "", "head": "" },
            "dpo": { "name": "", "email": "", "phone": "", "address": "" }, "representative": "", "as_of": "2026-09-01",
            "entries": [], "processor_entries": [], "incomplete": []
        }))
        .unwrap();
        register.processor_entries.push(entry);
        register.entries.push(empty_entry());
        let bytes = csv(&register);
        let mut reader = ::csv::ReaderBuilder::new().delimiter(b';').has_headers(false).from_reader(&bytes[3..]);
        let rows: Vec<Vec<String>> =
            reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
        assert_eq!(rows[0].last().map(String::as_str), Some(CONTRACT_COLUMN));
        assert_eq!(rows[1].last().map(String::as_str), Some(""), "an Art. 30(1) row: {:?}", rows[1]);
        assert_eq!(
            rows[2].last().map(String::as_str),
            Some("'=MARCHE-1 — Marché ENT\nAUCUN CONTRAT art. 28 pour : Visioconférence : le marché =MARCHE-1 ne couvre pas ce service"),
        );
        assert_eq!(rows[2].len(), rows[0].len());
    }

    #[test]
    fn a_log_exported_as_csv_neutralises_formula_cells() {
        let rows = vec![vec!["V-1".to_string(), "=HYPERLINK(\"http://x\")".to_string(), "@cmd".to_string()]];
        let out = table("Violations", "École", &["Référence", "Nature", "Mesures"], &rows, Format::Csv).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("V-1;\"'=HYPERLINK(\"\"http://x\"\")\";'@cmd"), "{text}");
    }
}
