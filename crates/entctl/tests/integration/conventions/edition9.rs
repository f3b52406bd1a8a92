//! Edition 9 of the conventions' text (domain review 40): the « Caractéristiques » state the
//! académie's annual ceiling as art. 4 does, in letters and figures, « toutes taxes comprises »,
//! and for a first or last school year the convention does not cover in full the ceiling of that
//! year by art. 4's rule (one twelfth a month in force on its 15th). Edition 8 renders as it
//! shipped.

use super::*;

/// The « Caractéristiques » of `html` (to the schools covered).
fn characteristics(html: &str) -> &str {
    let start = html.find("<h2>Caractéristiques</h2>").unwrap_or_else(|| panic!("no Caractéristiques: {html}"));
    let rest = &html[start..];
    rest.find("</dl>").map_or(rest, |end| &rest[..end])
}

/// A « Caractéristiques » line (label, value) as the HTML document writes it, in French typography.
fn line(label: &str, value: &str) -> String {
    french(&format!("<dt>{label}</dt><dd>{value}</dd>"))
}

// A bipartite from 4 January 2027 whose académie pays 20 %, capped at 12 345,67 € a year: its
// ceiling reads TTC in letters and figures; its first school year (in force on the 15th of eight
// months, January to August) and its last (four, September to December 2029) each state their
// twelfths, to the cent below: 8 230,44 € and 4 115,22 €. From 1 September 2026 for three whole
// school years, no prorated line. Edition 8 renders as it shipped.
backend_test!(edition_9_states_the_ceiling_ttc_and_the_prorated_ceiling_of_an_incomplete_school_year);
async fn edition_9_states_the_ceiling_ttc_and_the_prorated_ceiling_of_an_incomplete_school_year(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let created = c.create(bipartite_capped("2027-01-04")).await;
    assert_eq!(created["end_date"], "2030-01-03", "{name}: {created}");
    let id = created["id"].as_str().unwrap().to_string();
    // Written in edition 9 (edition 12 labels the ceiling « des services académiques »: edition12.rs).
    written_in_edition(&c, &id, 9).await;
    let annual = line(
        "Plafond annuel de la participation de l'académie",
        "douze mille trois cent quarante-cinq euros et soixante-sept centimes (12 345,67 €) toutes taxes comprises",
    );
    let first = line(
        "Plafond de la participation pour l'année scolaire 2026-2027 (huit mois couverts sur douze)",
        "huit mille deux cent trente euros et quarante-quatre centimes (8 230,44 €) toutes taxes comprises",
    );
    let last = line(
        "Plafond de la participation pour l'année scolaire 2029-2030 (quatre mois couverts sur douze)",
        "quatre mille cent quinze euros et vingt-deux centimes (4 115,22 €) toutes taxes comprises",
    );
    let html = document_text(&c, &id).await;
    let said = characteristics(&html);
    for expected in [&annual, &first, &last] {
        assert!(said.contains(expected.as_str()), "{name}: « {expected} » not in {said}");
    }
    assert_eq!(said.matches("Plafond de la participation pour").count(), 2, "{name}: {said}");

    written_in_edition(&c, &id, 8).await;
    let html = document_text(&c, &id).await;
    let said = characteristics(&html);
    let shipped = line("Plafond annuel de la participation de l'académie", "12 345,67 €");
    assert!(said.contains(&shipped), "{name}: edition 8 as it shipped: {said}");
    assert!(!said.contains("toutes taxes comprises") && !said.contains("année scolaire"), "{name}: {said}");
    written_in_edition(&c, &id, 9).await;

    // Three whole school years: the annual ceiling alone.
    c.edit(&id, json!({ "start_date": "2026-09-01", "end_date": "2029-08-31" })).await;
    let html = document_text(&c, &id).await;
    let said = characteristics(&html);
    assert!(said.contains(&annual), "{name}: {said}");
    assert!(!said.contains("année scolaire"), "{name}: whole school years, no prorated ceiling: {said}");
}

// Edition 9 names the académie « l'académie de Créteil » wherever its text names it, through
// `naming::of_org`, as the console and the notices do; a text of edition 5, which shipped with
// « l'Académie », keeps it (editions 6 to 8 lowered it in their body, and still do).
backend_test!(edition_9_names_the_academie_in_lower_case_and_edition_5_keeps_its_capital);
async fn edition_9_names_the_academie_in_lower_case_and_edition_5_keeps_its_capital(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(bipartite_split("2026-09-01", 100, 0)).await["id"].as_str().unwrap().to_string();
    let lower = ["l'académie de Créteil, représentée par", "Pour l'académie de Créteil :"];
    let html = document_text(&c, &id).await;
    for said in lower {
        assert!(html.contains(&french(said)), "{name}: « {said} » not in {html}");
    }
    assert!(!html.contains("l'Académie"), "{name}: {html}");
    written_in_edition(&c, &id, 5).await;
    let html = document_text(&c, &id).await;
    assert!(html.contains(&french("l'Académie de Créteil, représentée par")), "{name}: edition 5: {html}");
    assert!(!html.contains("l'académie de Créteil, représentée"), "{name}: edition 5: {html}");
    written_in_edition(&c, &id, 9).await;

    bipartite_submitted_and_signed(&c, &id).await;
    crate::console::with_password(&c.db.store, "dan@ac-creteil.fr").await;
    let session = crate::console::sign_in(&c.app, "dan@ac-creteil.fr").await;
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await.text;
    let said = crate::console::escaped("Signature pour l'académie de Créteil (");
    assert!(page.contains(&said), "{name}: « {said} » not in {page}");
    assert!(!page.contains(&crate::console::escaped("l'Académie")), "{name}: {page}");
}

migration_test!(the_edition_9_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 9);
