//! ODS exports after the CNIL's model register (`registre-traitement-simplifie.ods`):
//! a first sheet with the contact blocks of the organisation's head, representative
//! and DPO, then the list of processing activities; one *fiche* sheet per activity
//! (actors, purposes, data categories with retention, sensitive data, persons,
//! recipients, security, transfers outside the EU), plus the legal basis and the
//! derived facts the CNIL sheet lacks; the Art. 30(2) sheet and the incomplete entries.

use super::derive::{named, Actor, Dpo, Entry, Register};
use super::export::{category_label, entry_fields, processor_fields, state_line, title, yes_no, NOT_GIVEN};
use ent_documents::documents::{to_ods, Cell, Sheet, Spreadsheet};
use ent_kernel::clock::today_in_france;

fn h(s: &str) -> Cell {
    Cell::header(s)
}

fn t(s: impl Into<String>) -> Cell {
    Cell::text(s)
}

/// The day a timestamp falls on in Paris, as a date cell.
fn date(ts: &str) -> Cell {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => {
            let day = today_in_france(t.with_timezone(&chrono::Utc));
            Cell::Date(day.format("%Y-%m-%d").to_string())
        }
        Err(_) => Cell::Empty,
    }
}

fn actor_row(role: &str, a: &Actor) -> Vec<Cell> {
    vec![h(role), t(&a.name), t(&a.head), t(&a.address), t(&a.country), t(&a.phone), t(&a.email)]
}

/// A mandatory value: « NON RENSEIGNÉ » when blank.
fn required(s: &str) -> Cell {
    t(if s.trim().is_empty() { NOT_GIVEN } else { s })
}

fn dpo_row(d: &Dpo) -> Vec<Cell> {
    let contact_missing = d.email.is_empty() && d.address.is_empty() && d.phone.is_empty();
    let email = if contact_missing { required("") } else { t(&d.email) };
    vec![h("Délégué à la protection des données"), required(&d.name), t(""), t(&d.address), t(""), t(&d.phone), email]
}

fn first_sheet(r: &Register) -> Sheet {
    let o = &r.organisation;
    let mut rows = vec![
        vec![h(&title(r))],
        vec![t(state_line(r))],
        vec![],
        vec![h("Coordonnées du responsable de l'organisme")],
        vec![h("Organisme"), t(&named(o).official)],
        vec![h("Responsable (nom, fonction)"), t(&o.head)],
        vec![h("Adresse"), t(&o.address)],
        vec![h("Pays"), t(&o.country)],
        vec![h("Téléphone"), t(&o.phone)],
        vec![h("Adresse de messagerie"), t(&o.email)],
        vec![],
        vec![h("Représentant du responsable (article 27)")],
        vec![h("Nom et coordonnées"), t(&r.representative)],
        vec![],
        vec![h("Délégué à la protection des données")],
        vec![h("Nom"), required(&r.dpo.name)],
        vec![h("Adresse"), t(&r.dpo.address)],
        vec![h("Téléphone"), t(&r.dpo.phone)],
        vec![h("Adresse de messagerie"), t(&r.dpo.email)],
        vec![],
        vec![h("Activités de traitement")],
        [
            "N° / Référence",
            "Activité",
            "Date de création",
            "Dernière mise à jour",
            "Finalité principale",
            "Données sensibles",
            "Données de mineurs",
            "Fiche complète",
        ]
        .into_iter()
        .map(h)
        .collect(),
    ];
    for e in &r.entries {
        rows.push(vec![
            t(&e.reference),
            t(&e.name),
            date(&e.first_recorded),
            date(&e.last_changed),
            t(e.purposes.first().cloned().unwrap_or_default()),
            t(yes_no(e.sensitive_data)),
            t(yes_no(e.minors)),
            t(if e.missing.is_empty() { "oui".to_string() } else { format!("non : {}", e.missing.join(", ")) }),
        ]);
    }
    Sheet { name: "Registre".into(), column_widths_cm: vec![5.0, 7.0, 3.5, 3.5, 8.0, 3.0, 3.0, 8.0], rows }
}

fn fiche(e: &Entry) -> Sheet {
    let mut rows = vec![
        vec![h("Fiche de registre"), t(&e.name)],
        vec![],
        vec![h("Description du traitement")],
        vec![h("Nom / sigle"), t(&e.name)],
        vec![h("N° / Référence"), t(&e.reference)],
        vec![h("Date de création"), date(&e.first_recorded)],
        vec![h("Mise à jour"), date(&e.last_changed)],
        vec![],
        vec![h("Acteurs")],
        ["", "Nom", "Responsable", "Adresse", "Pays", "Téléphone", "Adresse de messagerie"]
            .into_iter()
            .map(h)
            .collect(),
        actor_row("Responsable du traitement", &e.controller),
        dpo_row(&e.dpo),
        vec![h("Représentant du responsable"), t(&e.representative)],
    ];
    if e.joint_controllers.is_empty() {
        rows.push(vec![h("Responsable(s) conjoint(s)"), t("aucun")]);
    }
    rows.extend(e.joint_controllers.iter().map(|j| actor_row("Responsable conjoint", j)));
    rows.push(vec![]);
    rows.push(vec![h("Finalité(s) du traitement effectué")]);
    rows.push(vec![h("Finalité principale"), t(e.purposes.first().cloned().unwrap_or_default())]);
    for (i, p) in e.purposes.iter().enumerate().skip(1) {
        rows.push(vec![h(&format!("Sous-finalité {i}")), t(p)]);
    }
    rows.push(vec![h("Base légale"), t(&e.legal_basis)]);
    rows.push(vec![]);
    rows.push(vec![h("Catégories de données personnelles concernées")]);
    rows.push(vec![h("Catégorie"), h("Description"), h("Durée de conservation")]);
    for d in &e.personal_data {
        let kind = match (d.sensitive, d.highly_personal) {
            (true, _) => "Donnée sensible ou susceptible d'en révéler",
            (false, true) => "Donnée à caractère hautement personnel",
            (false, false) => "Donnée courante",
        };
        rows.push(vec![t(category_label(d)), t(kind), t(&d.retention)]);
    }
    rows.push(vec![h("Durées de conservation"), t(&e.retention)]);
    rows.push(vec![h("Données sensibles (art. 9 et 10)"), t(yes_no(e.sensitive_data))]);
    rows.push(vec![h("Données hautement personnelles"), t(yes_no(e.highly_personal_data))]);
    rows.push(vec![]);
    rows.push(vec![h("Catégories de personnes concernées")]);
    rows.extend(e.data_subjects.iter().map(|s| vec![t(s)]));
    rows.push(vec![h("Données de mineurs"), t(yes_no(e.minors))]);
    rows.push(vec![]);
    rows.push(vec![h("Destinataires")]);
    rows.extend(e.recipients.iter().map(|s| vec![t(s)]));
    rows.push(vec![]);
    rows.push(vec![h("Mesures de sécurité")]);
    rows.extend(e.security_measures.iter().map(|s| vec![t(s)]));
    rows.push(vec![]);
    rows.push(vec![h("Transferts des données hors EEE")]);
    if e.transfers.is_empty() {
        rows.push(vec![t("aucun")]);
    } else {
        rows.push(
            ["Destinataire", "Pays", "Type de garanties", "Lien vers la documentation"].into_iter().map(h).collect(),
        );
        rows.extend(
            e.transfers.iter().map(|x| vec![t(&x.recipient), t(&x.country), t(&x.safeguard), t(&x.documentation)]),
        );
    }
    rows.push(vec![]);
    rows.push(vec![h("Autres mentions (dérivées de ce qui est déployé)")]);
    let others = [
        "Source des données",
        "Sous-traitants",
        "Établissements concernés",
        "Comptes",
        "Conventions",
        "Analyse d'impact (AIPD)",
        "Alertes",
        "Champs manquants",
    ];
    rows.extend(entry_fields(e).into_iter().filter(|(l, _)| others.contains(l)).map(|(l, v)| vec![h(l), t(v)]));
    Sheet { name: e.reference.clone(), column_widths_cm: vec![6.0, 8.0, 6.0, 7.0, 2.0, 3.5, 6.0], rows }
}

fn processors_sheet(r: &Register) -> Option<Sheet> {
    let first = r.processor_entries.first()?;
    let mut rows = vec![processor_fields(first).iter().map(|(l, _)| h(l)).collect::<Vec<_>>()];
    rows.extend(r.processor_entries.iter().map(|e| processor_fields(e).into_iter().map(|(_, v)| t(v)).collect()));
    Some(Sheet { name: "Sous-traitance (art. 30-2)".into(), column_widths_cm: vec![6.0; 12], rows })
}

fn incomplete_sheet(r: &Register) -> Sheet {
    let mut rows = vec![vec![h("Référence"), h("Activité"), h("Champs manquants")]];
    rows.extend(r.incomplete.iter().map(|i| vec![t(&i.reference), t(&i.name), t(i.missing.join("\n"))]));
    if r.incomplete.is_empty() {
        rows.push(vec![t("aucune fiche incomplète")]);
    }
    Sheet { name: "Fiches incomplètes".into(), column_widths_cm: vec![5.0, 7.0, 12.0], rows }
}

/// The register as an `.ods` file.
pub fn register(r: &Register) -> Vec<u8> {
    let mut sheets = vec![first_sheet(r)];
    sheets.extend(r.entries.iter().map(fiche));
    sheets.extend(processors_sheet(r));
    sheets.push(incomplete_sheet(r));
    to_ods(&Spreadsheet { title: title(r), sheets })
}

/// A log (breaches, requests) as an `.ods` file: one sheet, a header row.
pub fn table(title: &str, header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut cells = vec![header.iter().map(|s| h(s)).collect::<Vec<_>>()];
    cells.extend(rows.iter().map(|r| r.iter().map(|v| t(v.clone())).collect()));
    let sheet =
        Sheet { name: title.chars().take(31).collect(), column_widths_cm: vec![5.0; header.len()], rows: cells };
    to_ods(&Spreadsheet { title: title.into(), sheets: vec![sheet] })
}
