//! Registry and import behaviour, run on SQLite and PostgreSQL alike.

use crate::common;

use common::{admin, count_kind, fixture, registry_fingerprint, t0};
use entcp::error::ProblemKind;
use entcp::kernel::roles::OrgKind;
use entcp::registry::import::{import_annuaire, ImportOptions, ImportReport};
use entcp::registry::manage::{create_org, remove_member, set_member, NewOrg};
use entcp::registry::queries::{self, covers_org, OrgFilter};
use entcp::registry::EtabType;
use entcp::store::Store;
use entcp::synthetic::{write_annuaire, SyntheticOptions};

const HEADER: &str = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Code postal;Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;Libelle_departement;Libelle_academie;Libelle_region;Ecole_maternelle;Ecole_elementaire;SIREN_SIRET;etat\n";

async fn import_bytes(store: &Store, bytes: Vec<u8>, dry_run: bool) -> ImportReport {
    let options = ImportOptions { dry_run, batch_size: 100, scope: None, ..ImportOptions::default() };
    import_annuaire(store, &admin(), std::io::Cursor::new(bytes), options, t0()).await.expect("import runs")
}

async fn import_sample(store: &Store) -> ImportReport {
    import_bytes(store, std::fs::read(fixture("annuaire-education-94-ecoles.csv")).unwrap(), false).await
}

fn synthetic(rows: usize, communes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    write_annuaire(&mut out, &SyntheticOptions { etablissements: rows, communes, seed: 7 }).unwrap();
    out
}

backend_test!(real_sample_imports_613_ecoles_and_a_rerun_changes_nothing);
async fn real_sample_imports_613_ecoles_and_a_rerun_changes_nothing(db: crate::common::TestDb) {
    let first = import_sample(&db.store).await;
    assert_eq!(first.rows, 613, "{}", db.name);
    assert_eq!(first.etablissements.created, 613, "{}", db.name);
    assert_eq!(first.rejected, 0, "{}: {:?}", db.name, first.rejections);
    assert_eq!(count_kind(&db.store, "etablissement").await, 613);
    assert_eq!(count_kind(&db.store, "commune").await, 47);
    assert_eq!(count_kind(&db.store, "academie").await, 1);
    assert_eq!(count_kind(&db.store, "dsden").await, 1);
    let before = registry_fingerprint(&db.store).await;

    let second = import_sample(&db.store).await;
    assert_eq!(second.etablissements.unchanged, 613, "{}", db.name);
    assert_eq!(second.etablissements.created + second.etablissements.updated, 0);
    assert!(second.related.values().all(|c| c.created == 0 && c.updated == 0), "{:?}", second.related);
    assert_eq!(registry_fingerprint(&db.store).await, before);
}

backend_test!(dry_run_reports_changes_without_writing);
async fn dry_run_reports_changes_without_writing(db: crate::common::TestDb) {
    let report =
        import_bytes(&db.store, std::fs::read(fixture("annuaire-education-94-ecoles.csv")).unwrap(), true).await;
    assert!(report.dry_run);
    assert_eq!(report.etablissements.created, 613, "{}", db.name);
    assert_eq!(report.related["communes"].created, 47, "communes counted once across batches");
    assert_eq!(count_kind(&db.store, "etablissement").await, 0, "{}", db.name);
    assert_eq!(count_kind(&db.store, "commune").await, 0, "{}", db.name);
}

backend_test!(bad_rows_are_reported_by_line_and_good_rows_imported);
async fn bad_rows_are_reported_by_line_and_good_rows_imported(db: crate::common::TestDb) {
    let csv = format!(
        "\u{feff}{HEADER}\
0940176F;Ecole Doisneau;Ecole;Public;94260;94034;Fresnes;094;24;11;Val-de-Marne;Créteil;Ile-de-France;0;1;21940034800195;OUVERT\n\
0940176G;Mauvaise lettre;Ecole;Public;94260;94034;Fresnes;094;24;11;Val-de-Marne;Créteil;Ile-de-France;0;1;;OUVERT\n\
0940198E;Sans commune;Ecole;Public;94400;;Vitry;094;24;11;Val-de-Marne;Créteil;Ile-de-France;0;1;;OUVERT\n\
0940204L;Trop court;Ecole;Public\n\
\"0940209S\";Ecole du Jardin;Ecole;Public;\"94240\nCedex\";94038;L'Haÿ-les-Roses;094;24;11;Val-de-Marne;Créteil;Ile-de-France;1;1;123;OUVERT\n\
0941033M;Rectorat annexe;Service Administratif;Public;94000;94028;Créteil;094;24;11;Val-de-Marne;Créteil;Ile-de-France;;;;OUVERT\n\
0940176f;Doublon;Ecole;Public;94260;94034;Fresnes;094;24;11;Val-de-Marne;Créteil;Ile-de-France;0;1;;OUVERT\n\
0940101Z;Commune invalide;Ecole;Public;94260;2C034;Fresnes;094;24;11;Val-de-Marne;Créteil;Ile-de-France;0;1;;OUVERT\n"
    );
    let report = import_bytes(&db.store, csv.clone().into_bytes(), false).await;
    assert_eq!(report.rows, 8, "{}", db.name);
    assert_eq!(report.etablissements.created, 2, "{}: {:?}", db.name, report.rejections);
    assert_eq!(report.skipped, 1);
    assert_eq!(report.skipped_by_type["Service Administratif"], 1);
    let lines: Vec<(u64, &str)> = report.rejections.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(report.rejected, 5, "{lines:?}");
    assert_eq!(lines[0].0, 3);
    assert!(lines[0].1.contains("lettre de contrôle devrait être « F »"), "{lines:?}");
    assert_eq!(lines[1].0, 4);
    assert!(lines[1].1.contains("code commune manquant"), "{lines:?}");
    assert_eq!(lines[2].0, 5);
    assert!(lines[2].1.contains("4 colonnes au lieu de 17"), "{lines:?}");
    // The quoted postcode (a column not read) spans lines 6-7, so the next rows are on lines 8, 9, 10.
    assert_eq!(lines[3].0, 9);
    assert!(lines[3].1.contains("en double (déjà présent ligne 2)"), "{lines:?}");
    assert_eq!(lines[4].0, 10);
    assert!(lines[4].1.contains("code INSEE"), "{lines:?}");
    assert_eq!(report.warnings.len(), 1, "the invalid SIRET is dropped, the row kept");
    assert_eq!(report.warnings[0].line, 6);

    let multi_line = queries::resolve_org(&db.store, "0940209S").await.unwrap();
    assert_eq!(multi_line.name, "Ecole du Jardin");
    assert_eq!(multi_line.etab_type, Some(EtabType::EcolePrimaire));
    assert_eq!(multi_line.siret, None);
    assert_eq!(count_kind(&db.store, "etablissement").await, 2);
}

backend_test!(a_quote_left_open_names_every_line_it_took_and_the_fixed_file_imports_them);
async fn a_quote_left_open_names_every_line_it_took_and_the_fixed_file_imports_them(db: crate::common::TestDb) {
    let row = |uai: &str, name: &str, etat: &str| {
        format!(
            "{uai};{name};Ecole;Public;94260;94034;Fresnes;094;24;11;Val-de-Marne;Créteil;Ile-de-France;0;1;;{etat}\n"
        )
    };
    let rows = [
        row("0940176F", "Ecole Doisneau", "OUVERT"),
        row("0940289D", "Ecole Monet", "\"OUVERT"),
        row("0940198E", "Ecole Wallon", "OUVERT"),
        row("0940204L", "Ecole Ferry", "OUVERT"),
    ];
    let report = import_bytes(&db.store, format!("{HEADER}{}", rows.concat()).into_bytes(), false).await;
    assert_eq!((report.rows, report.etablissements.created, report.rejected), (4, 1, 1), "{}: {:?}", db.name, report);
    assert_eq!(report.rejections[0].line, 3);
    assert!(report.rejections[0].reason.contains("les lignes 3 à 5"), "{:?}", report.rejections);
    assert_eq!(count_kind(&db.store, "etablissement").await, 1, "{}", db.name);

    let fixed = rows.concat().replace("\"OUVERT", "OUVERT");
    let again = import_bytes(&db.store, format!("{HEADER}{fixed}").into_bytes(), false).await;
    assert_eq!(
        (again.etablissements.created, again.etablissements.unchanged, again.rejected),
        (3, 1, 0),
        "{}",
        db.name
    );

    // A region code that is no INSEE code is dropped with a warning, the school kept.
    let odd = row("0940235V", "Ecole Rolland", "OUVERT").replace(";11;", ";=HYPERLINK(1);");
    let report = import_bytes(&db.store, format!("{HEADER}{odd}").into_bytes(), false).await;
    assert_eq!((report.etablissements.created, report.warnings.len()), (1, 1), "{}: {:?}", db.name, report);
    assert!(report.warnings[0].reason.contains("code région"), "{:?}", report.warnings);
    assert_eq!(queries::resolve_org(&db.store, "0940235V").await.unwrap().region_code, None);
}

// Every value of an imported row is stored as read, NULLs included (PostgreSQL sends a
// batch as delimited text, U+001D to U+001F its delimiters); a value holding one of those
// control characters is no name to store: its line is refused by its number.
backend_test!(imported_values_are_stored_as_read_and_a_delimiter_in_a_value_refused);
async fn imported_values_are_stored_as_read_and_a_delimiter_in_a_value_refused(db: crate::common::TestDb) {
    let csv = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;\
Code_academie;Code_region;Mail;SIREN_SIRET;Nombre_d_eleves\n\
0940176F;Ecole du Port;Ecole;94034;Fresnes;24;11;ce.0940176f@ac-creteil.fr;;212\n\
0940209S;Ecole du Jardin;Ecole;94038;L'Haÿ-les-Roses;24;;;21940038900199;\n\
0940262Z;Ecole\u{1f}du\u{1e}Bled\u{1d};Ecole;94068;Saint-Maur-des-Fossés;24;;;;\n";
    let options = ImportOptions { dry_run: false, batch_size: 1, scope: None, ..ImportOptions::default() };
    let actor = admin();
    let import =
        || import_annuaire(&db.store, &actor, std::io::Cursor::new(csv.as_bytes().to_vec()), options.clone(), t0());
    let first = import().await.expect("import runs");
    assert_eq!(first.etablissements.created, 2, "{}: {:?}", db.name, first.rejections);
    assert_refused(&first, &[(4, "0940262Z")], "colonne « Nom_etablissement » : caractère de contrôle", db.name);
    assert!(queries::resolve_org(&db.store, "0940262Z").await.is_err(), "{}", db.name);

    let odd = queries::resolve_org(&db.store, "0940176F").await.unwrap();
    assert_eq!(odd.name, "Ecole du Port", "{}", db.name);
    assert_eq!(
        (odd.pupils, odd.email.as_deref(), odd.siret.as_deref()),
        (Some(212), Some("ce.0940176f@ac-creteil.fr"), None)
    );
    assert_eq!(odd.region_code.as_deref(), Some("11"));
    let plain = queries::resolve_org(&db.store, "0940209S").await.unwrap();
    assert_eq!(plain.name, "Ecole du Jardin", "{}", db.name);
    assert_eq!((plain.pupils, plain.email, plain.region_code), (None, None, None), "{}", db.name);
    assert_eq!(plain.siret.as_deref(), Some("21940038900199"));
    assert_eq!(plain.siren.as_deref(), Some("219400389"), "{}: its commune's", db.name);
    assert_eq!(count_kind(&db.store, "commune").await, 2);

    // The stored content hashes are those of the rows read: a rerun changes nothing.
    let rerun = import().await.expect("import runs");
    assert_eq!(rerun.etablissements.unchanged, 2, "{}", db.name);
    assert_eq!(rerun.related["communes"].unchanged, 2, "{}: {:?}", db.name, rerun.related);
}

// A first import into an empty registry goes in by `COPY` on PostgreSQL: a value holding
// COPY's escape (a backslash, `\N` its NULL) is stored as read; a batch that finds
// a row registered already (the commune an earlier batch wrote, renamed by a later row)
// goes by upsert instead; each batch that wrote is one record of an unbroken audit chain.
backend_test!(a_first_import_stores_every_character_and_upserts_what_an_earlier_batch_wrote);
async fn a_first_import_stores_every_character_and_upserts_what_an_earlier_batch_wrote(db: crate::common::TestDb) {
    use entcp::audit::{verify, Verification};
    // The second line gives the label of the commune the first left out: the second batch revises the first's.
    let csv =
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;Code_academie\n\
0940176F;\"Ecole du\\Port \\N Sud\";Ecole;94034;;24\n\
0940209S;Ecole du Jardin;Ecole;94034;Fresnes-sur-Bièvre;24\n";
    let options = ImportOptions { dry_run: false, batch_size: 1, scope: None, ..ImportOptions::default() };
    let report = import_annuaire(&db.store, &admin(), std::io::Cursor::new(csv.as_bytes().to_vec()), options, t0())
        .await
        .expect("import runs");
    assert_eq!(report.etablissements.created, 2, "{}: {:?}", db.name, report.rejections);
    let communes = &report.related["communes"];
    assert_eq!((communes.created, communes.updated), (1, 1), "{}: {:?}", db.name, report.related);

    let odd = queries::resolve_org(&db.store, "0940176F").await.unwrap();
    assert_eq!(odd.name, "Ecole du\\Port \\N Sud", "{}", db.name);
    let commune = queries::resolve_org(&db.store, "commune:94034").await.unwrap();
    assert_eq!((commune.name.as_str(), commune.version), ("Fresnes-sur-Bièvre", 2), "{}", db.name);
    assert_eq!(verify(&db.store).await.unwrap(), Verification::Intact { records: 2 }, "{}", db.name);
}

/// The remarks of `report` but those on organisations named provisionally (a file without labels).
fn remarks_but_provisional_names(report: &ImportReport) -> Vec<&entcp::registry::import::LineIssue> {
    report.warnings.iter().filter(|w| !w.reason.contains("nom provisoire")).collect()
}

/// Asserts that `report` refused exactly `lines` (line, UAI), each for a reason naming `reason`.
fn assert_refused(report: &ImportReport, lines: &[(u64, &str)], reason: &str, backend: &str) {
    let refused: Vec<(u64, Option<&str>)> = report.rejections.iter().map(|r| (r.line, r.uai.as_deref())).collect();
    let expected: Vec<(u64, Option<&str>)> = lines.iter().map(|(line, uai)| (*line, Some(*uai))).collect();
    assert_eq!(refused, expected, "{backend}");
    assert!(report.rejections.iter().all(|r| r.reason.contains(reason)), "{backend}: {:?}", report.rejections);
}

// A NUL byte cannot be stored in a PostgreSQL text: the line holding one is refused with
// its number, on both backends alike, and the rest of the file (and of its batch) is imported,
// by a first import (COPY) as by a later one (upsert), the stored row left as it was.
backend_test!(a_line_with_a_nul_byte_is_refused_by_its_number_and_the_rest_imported);
async fn a_line_with_a_nul_byte_is_refused_by_its_number_and_the_rest_imported(db: crate::common::TestDb) {
    let head = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;\
Code_academie;Mail\n";
    let first = format!(
        "{head}0940176F;Ecole Doisneau;Ecole;94034;Fresnes;24;\n\
0940209S;Ecole\u{0}du Jardin;Ecole;94038;L'Haÿ-les-Roses;24;\n\
0940262Z;Ecole Bled;Ecole;94068;Saint-Maur-des-Fossés;24;ce.0940262z@ac-creteil.fr\u{0}\n"
    );
    let report = import_bytes(&db.store, first.into_bytes(), false).await;
    assert_eq!(report.etablissements.created, 1, "{}: {:?}", db.name, report.rejections);
    assert_refused(&report, &[(3, "0940209S"), (4, "0940262Z")], "caractère nul", db.name);
    assert_eq!(queries::resolve_org(&db.store, "0940176F").await.unwrap().name, "Ecole Doisneau");
    assert_eq!(count_kind(&db.store, "etablissement").await, 1, "{}", db.name);

    let second = format!(
        "{head}0940176F;Ecole\u{0}Doisneau;Ecole;94034;Fresnes;24;\n\
0940209S;Ecole du Jardin;Ecole;94038;L'Haÿ-les-Roses;24;\n"
    );
    let report = import_bytes(&db.store, second.into_bytes(), false).await;
    assert_eq!((report.etablissements.created, report.rejected), (1, 1), "{}: {:?}", db.name, report.rejections);
    assert_eq!(report.rejections[0].line, 2);
    assert_eq!(queries::resolve_org(&db.store, "0940176F").await.unwrap().name, "Ecole Doisneau", "{}", db.name);
    assert_eq!(queries::resolve_org(&db.store, "0940209S").await.unwrap().name, "Ecole du Jardin");
}

// A name the size of a whole file (a broken export, a hostile line) is no name: the line is
// refused by its number whichever field it sits in, the others imported, and the next import
// runs (PostgreSQL indexes no text over 2,704 bytes: the first import's index build failed).
backend_test!(a_line_with_an_oversized_field_is_refused_by_its_number_and_the_registry_stays_importable);
async fn a_line_with_an_oversized_field_is_refused_by_its_number_and_the_registry_stays_importable(
    db: crate::common::TestDb,
) {
    let head = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;\
Code_academie;Adresse\n";
    let huge = "Ecole ".to_string() + &"x".repeat(300_000);
    let csv = format!(
        "{head}0940176F;Ecole Doisneau;Ecole;94034;Fresnes;24;{huge}\n\
0940209S;{huge};Ecole;94038;L'Haÿ-les-Roses;24;\n\
0940262Z;Ecole Bled;Ecole;94068;{huge};24;\n\
0940336E;Ecole Marinville;Ecole;94068;Saint-Maur-des-Fossés;24;\n"
    );
    let report = import_bytes(&db.store, csv.into_bytes(), false).await;
    assert_eq!(report.etablissements.created, 2, "{}: {:?}", db.name, report.rejections);
    assert_refused(&report, &[(3, "0940209S"), (4, "0940262Z")], "255 au plus", db.name);
    assert_eq!(queries::resolve_org(&db.store, "commune:94068").await.unwrap().name, "Saint-Maur-des-Fossés");

    let again = format!("{head}0940209S;Ecole du Jardin;Ecole;94038;L'Haÿ-les-Roses;24;\n");
    let report = import_bytes(&db.store, again.into_bytes(), false).await;
    assert_eq!(report.etablissements.created, 1, "{}: {:?}", db.name, report.rejections);
    assert_eq!(count_kind(&db.store, "etablissement").await, 3, "{}", db.name);
}

// A control character (C0, DEL, C1) or a bidirectional override read in any column would be
// stored and shown in pages and documents: its line is refused by its number, the column
// named, by the rule of the API's one-line text; the other lines are imported, and no stored
// organisation (établissement or commune) holds one. An address holding one does not parse:
// dropped with a warning, its row kept, as any unreadable address.
backend_test!(a_line_with_a_control_character_is_refused_by_its_number_and_column);
async fn a_line_with_a_control_character_is_refused_by_its_number_and_column(db: crate::common::TestDb) {
    let csv = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;\
Code_academie;Mail;Libelle_nature\n\
0940176F;Ecole Doisneau;Ecole;94034;Fresnes;24;ce.0940176f@ac-creteil.fr;ECOLE ELEMENTAIRE\n\
0940209S;Ecole \u{1b}[31mdu Jardin;Ecole;94038;L'Haÿ-les-Roses;24;;\n\
0940262Z;Ecole Bled;Ecole;94068;Saint-Maur\u{7f};24;;\n\
0940336E;Ecole Marinville;Ecole;94068;Saint-Maur-des-Fossés;24;ce.0940336e\u{9b}@ac-creteil.fr;\n\
0940400Z;Ecole \u{202e}nidraJ;Ecole;94041;Ivry-sur-Seine;24;;\n\
0940401A;Ecole Hébert;Ecole;94041;Ivry-sur-Seine;24;;ECOLE \u{2066}PRIMAIRE\u{2069}\n\
0940402B;Ecole\tdes Lilas;Ecole;94041;Ivry-sur-Seine;24;;\n\
0940403C;École Jean-Moulin – Ivry;Ecole;94041;Ivry-sur-Seine;24;;\n";
    let report = import_bytes(&db.store, csv.as_bytes().to_vec(), false).await;
    let refused: Vec<(u64, Option<&str>, &str)> =
        report.rejections.iter().map(|r| (r.line, r.uai.as_deref(), r.reason.as_str())).collect();
    let expected = [
        (3, "0940209S", "Nom_etablissement"),
        (4, "0940262Z", "Nom_commune"),
        (6, "0940400Z", "Nom_etablissement"),
        (7, "0940401A", "Libelle_nature"),
        (8, "0940402B", "Nom_etablissement"),
    ];
    assert_eq!(refused.len(), expected.len(), "{}: {refused:?}", db.name);
    for ((line, uai, reason), (want_line, want_uai, column)) in refused.iter().zip(expected) {
        assert_eq!((*line, *uai), (want_line, Some(want_uai)), "{}: {refused:?}", db.name);
        assert!(reason.starts_with(&format!("colonne « {column} » : caractère de contrôle interdit")), "{reason}");
    }
    assert_eq!(report.etablissements.created, 3, "{}: {refused:?}", db.name);
    assert_eq!(queries::resolve_org(&db.store, "0940403C").await.unwrap().name, "École Jean-Moulin – Ivry");
    let warnings = remarks_but_provisional_names(&report);
    let warned: Vec<u64> = warnings.iter().map(|w| w.line).collect();
    assert_eq!(warned, [5], "{}: {:?}", db.name, report.warnings);
    assert!(warnings[0].reason.contains("adresse ignorée"), "{:?}", report.warnings);
    assert_eq!(queries::resolve_org(&db.store, "0940336E").await.unwrap().email, None, "{}", db.name);
    assert_eq!(count_kind(&db.store, "etablissement").await, 3, "{}", db.name);
    // The commune of refused lines only (94038) is not created either.
    assert_eq!(count_kind(&db.store, "commune").await, 3, "{}", db.name);

    let stored: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT code, name || COALESCE(email, ''), COALESCE(nature_label, '') || COALESCE(commune_code, '') FROM orgs",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    for (code, a, b) in &stored {
        assert!(
            entcp::validate::line(a).is_ok() && entcp::validate::line(b).is_ok(),
            "{}: {code} {a:?} {b:?}",
            db.name
        );
    }
}

// Blank lines, which the CSV reader skips, do not shift the lines a report names; a pupil
// count no établissement has is dropped with a warning, its row kept (a sum of such figures
// overflowed in the groupements' prefill).
backend_test!(lines_after_blank_lines_keep_their_numbers_and_an_implausible_pupil_count_is_dropped);
async fn lines_after_blank_lines_keep_their_numbers_and_an_implausible_pupil_count_is_dropped(
    db: crate::common::TestDb,
) {
    let csv = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;\
Code_academie;Nombre_d_eleves\n\
\n\
\r\n\
0940176F;Ecole Doisneau;Ecole;94034;Fresnes;24;9223372036854775807\n\
\n\
\n\
0940176G;Mauvaise lettre;Ecole;94034;Fresnes;24;12\n\
0940209S;Ecole du Jardin;Ecole;94038;L'Haÿ-les-Roses;24;180\n";
    let report = import_bytes(&db.store, csv.as_bytes().to_vec(), false).await;
    let refused: Vec<u64> = report.rejections.iter().map(|r| r.line).collect();
    // Line 3, a CRLF file's blank line (its CR alone), is skipped too.
    assert_eq!(refused, [7], "{}: {:?}", db.name, report.rejections);
    assert_eq!(report.rows, 3, "{}", db.name);
    assert!(report.rejections[0].reason.contains("lettre de contrôle"), "{:?}", report.rejections);
    let warned: Vec<(u64, &str)> =
        remarks_but_provisional_names(&report).iter().map(|w| (w.line, w.reason.as_str())).collect();
    assert_eq!(warned.len(), 1, "{}: {warned:?}", db.name);
    assert_eq!(warned[0].0, 4, "{}: {warned:?}", db.name);
    assert!(warned[0].1.contains("invraisemblable"), "{warned:?}");
    assert_eq!(queries::resolve_org(&db.store, "0940176F").await.unwrap().pupils, None, "{}", db.name);
    assert_eq!(queries::resolve_org(&db.store, "0940209S").await.unwrap().pupils, Some(180), "{}", db.name);
}

// A file whose lines end with CR alone is one header line to the reader: refused as such,
// not imported as an empty file; a line longer than any annuaire line is refused before it
// is held whole.
backend_test!(a_file_with_carriage_returns_alone_is_refused_by_its_line_endings);
async fn a_file_with_carriage_returns_alone_is_refused_by_its_line_endings(db: crate::common::TestDb) {
    let admin = admin();
    let import = |bytes: Vec<u8>| {
        let options = ImportOptions { dry_run: false, batch_size: 100, scope: None, ..ImportOptions::default() };
        import_annuaire(&db.store, &admin, std::io::Cursor::new(bytes), options, t0())
    };
    let csv = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;\
Code_academie\r0940176F;Ecole Doisneau;Ecole;94034;Fresnes;24\r";
    let err = import(csv.as_bytes().to_vec()).await.unwrap_err();
    assert_eq!(err.kind, ProblemKind::Validation, "{}: {}", db.name, err.detail);
    assert!(err.body().to_string().contains("fins de ligne CR seules"), "{}: {}", db.name, err.body());
    let mut long = csv.repeat(30_000).into_bytes();
    long.push(b'\n');
    let err = import(long).await.unwrap_err();
    assert!(err.body().to_string().contains("plus d'un Mio"), "{}: {}", db.name, err.body());
    assert_eq!(count_kind(&db.store, "etablissement").await, 0);
    // Past the header, such a line stops the import with its line, not a silent partial one.
    let head = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;\
Code_academie\n0940176F;Ecole Doisneau;Ecole;94034;Fresnes;24\n\n";
    let mut cut = head.as_bytes().to_vec();
    cut.extend(std::iter::repeat_n(b'x', 2 << 20));
    cut.extend(b"\n0940209S;Ecole du Jardin;Ecole;94038;L'Ha\xc3\xbf-les-Roses;24\n");
    let err = import(cut).await.unwrap_err();
    assert!(err.body().to_string().contains("lecture arrêtée à la ligne 4"), "{}: {}", db.name, err.body());
    let said = err.body().to_string();
    assert!(
        !said.contains("CR seules") && said.contains("non refermé"),
        "{}: LF endings, no CR blamed: {said}",
        db.name
    );
    assert_eq!(count_kind(&db.store, "etablissement").await, 1, "{}: the line before it is written", db.name);
}

backend_test!(a_file_without_the_required_columns_is_refused_whole);
async fn a_file_without_the_required_columns_is_refused_whole(db: crate::common::TestDb) {
    let options = ImportOptions { dry_run: false, batch_size: 100, scope: None, ..ImportOptions::default() };
    let csv = "UAI,Nom,Commune\n0940176F,Ecole,94034\n";
    let err = import_annuaire(&db.store, &admin(), std::io::Cursor::new(csv.as_bytes().to_vec()), options, t0())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProblemKind::Validation);
    assert!(err.detail.contains("Type_etablissement"), "{}", err.detail);
    assert_eq!(count_kind(&db.store, "etablissement").await, 0);
}

// A first import writes the new rows of a batch without looking them up; a row another
// writer registered after the import began (here between its start and its first line)
// is refused by the (kind, code) key, and the batch is written by upsert instead: the
// file's values win, nothing is written twice.
backend_test!(a_first_import_upserts_a_row_registered_while_it_ran);
async fn a_first_import_upserts_a_row_registered_while_it_ran(db: crate::common::TestDb) {
    /// The file, readable once the test opens the gate.
    struct Gated(std::sync::mpsc::Receiver<()>, std::io::Cursor<Vec<u8>>);
    impl std::io::Read for Gated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            self.1.read(buf)
        }
    }
    let csv =
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Nom_commune;Code_academie\n\
0940176F;Ecole du Port;Ecole;94034;Fresnes;24\n";
    let (open, gate) = std::sync::mpsc::channel();
    let store = db.store.clone();
    let import = tokio::spawn(async move {
        let options = ImportOptions { dry_run: false, batch_size: 100, scope: None, ..ImportOptions::default() };
        let file = Gated(gate, std::io::Cursor::new(csv.as_bytes().to_vec()));
        import_annuaire(&store, &admin(), file, options, t0()).await
    });
    // The import has found the registry empty once it sets the indexes aside.
    let set_aside = || async {
        assert!(!import.is_finished(), "{}: the import ended before setting the indexes aside", db.name);
        common::count(&db.store, "SELECT COUNT(*) FROM deferred_indexes", &[]).await != 0
    };
    let every = std::time::Duration::from_millis(5);
    assert!(common::within(60, every, set_aside).await, "{}: no index set aside within 60 s", db.name);
    sqlx::query(
        "INSERT INTO orgs (id, kind, code, name, sort_name, content_hash, created_at, updated_at) \
         VALUES ('other-writer', 'commune', '94034', 'Fresnes (ancien)', 'fresnes (ancien)', 'x', 'now', 'now')",
    )
    .execute(db.store.pool())
    .await
    .unwrap();
    drop(open);
    let report = import.await.unwrap().expect("import runs");
    assert_eq!(report.etablissements.created, 1, "{}: {:?}", db.name, report.rejections);
    let communes = &report.related["communes"];
    assert_eq!((communes.created, communes.updated), (0, 1), "{}: {:?}", db.name, report.related);
    assert_eq!(count_kind(&db.store, "commune").await, 1, "{}", db.name);
    let commune = queries::resolve_org(&db.store, "commune:94034").await.unwrap();
    assert_eq!((commune.id.as_str(), commune.name.as_str()), ("other-writer", "Fresnes"), "{}", db.name);
}

// The first import into an empty registry writes without the secondary indexes of
// `orgs` and builds them again at its end, also when it fails; indexes left aside by
// an import that did not live to its end are built at start and by the next import.
backend_test!(a_first_import_builds_again_the_indexes_it_set_aside);
async fn a_first_import_builds_again_the_indexes_it_set_aside(db: crate::common::TestDb) {
    use entcp::store::{defer_indexes_if_empty, secondary_index_names};
    let store = &db.store;
    let indexes = secondary_index_names(store, "orgs").await.unwrap();
    assert!(indexes.contains(&"orgs_by_sort_name".to_string()), "{}: {indexes:?}", db.name);
    let deferred = || common::count(store, "SELECT COUNT(*) FROM deferred_indexes", &[]);

    // What an interrupted first import leaves: the indexes set aside, then a restart.
    assert!(defer_indexes_if_empty(store, "orgs").await.unwrap(), "{}", db.name);
    assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), Vec::<String>::new(), "{}", db.name);
    assert_eq!(deferred().await, indexes.len() as i64);
    store.migrate().await.unwrap();
    assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), indexes, "{}: built at start", db.name);

    // Left aside again, then a first import that fails on its header, then one that runs.
    assert!(defer_indexes_if_empty(store, "orgs").await.unwrap());
    let options = ImportOptions { dry_run: false, batch_size: 100, scope: None, ..ImportOptions::default() };
    let bad = std::io::Cursor::new(b"UAI,Nom\n0940176F,Ecole\n".to_vec());
    assert!(import_annuaire(store, &admin(), bad, options, t0()).await.is_err());
    assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), indexes, "{}: built after a failure", db.name);
    let first = import_sample(store).await;
    assert_eq!(first.etablissements.created, 613, "{}", db.name);
    assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), indexes, "{}", db.name);
    assert_eq!(deferred().await, 0, "{}", db.name);

    // A registry with rows keeps its indexes.
    assert!(!defer_indexes_if_empty(store, "orgs").await.unwrap(), "{}", db.name);
    assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), indexes, "{}", db.name);
}

// SQLite: a first import's batches stay in the WAL until its end (no checkpoint per batch),
// then the import copies them into the database file itself: the next writer's commit
// does not pay for copying the whole import.
#[tokio::test]
async fn a_first_sqlite_import_leaves_its_pages_in_the_database_file() {
    let db = common::sqlite().await;
    let report = import_bytes(&db.store, synthetic(3000, 300), false).await;
    assert!(report.etablissements.created > 2000, "{:?}", report.etablissements);
    let pages = common::count(&db.store, "SELECT page_count FROM pragma_page_count()", &[]).await;
    let page_size = common::count(&db.store, "SELECT page_size FROM pragma_page_size()", &[]).await;
    let path = db.url.trim_start_matches("sqlite://").split('?').next().unwrap().to_string();
    let in_file = std::fs::metadata(&path).unwrap().len() as i64;
    assert!(pages > 200, "{pages} pages");
    assert!(in_file >= pages * page_size, "{in_file} bytes in the file for {pages} pages of {page_size}");
}

// The indexes set aside are built again so that `deferred_indexes` always names exactly
// those still missing: on PostgreSQL each in its own transaction (all at once), so one
// that cannot be built leaves only its own record; on SQLite in one transaction, so it
// leaves them all. Two restorers at once (two replicas starting) both succeed.
backend_test!(indexes_set_aside_stay_recorded_until_each_is_built);
async fn indexes_set_aside_stay_recorded_until_each_is_built(db: crate::common::TestDb) {
    use entcp::store::{defer_indexes_if_empty, restore_indexes, secondary_index_names, Backend};
    let store = &db.store;
    let indexes = secondary_index_names(store, "orgs").await.unwrap();
    let deferred = || common::count(store, "SELECT COUNT(*) FROM deferred_indexes", &[]);

    assert!(defer_indexes_if_empty(store, "orgs").await.unwrap(), "{}", db.name);
    let (a, b) = tokio::join!(restore_indexes(store), restore_indexes(store));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, indexes.len(), "{}: {a} + {b} built", db.name);
    assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), indexes, "{}", db.name);
    assert_eq!(deferred().await, 0, "{}", db.name);

    assert!(defer_indexes_if_empty(store, "orgs").await.unwrap(), "{}", db.name);
    sqlx::query(
        "INSERT INTO deferred_indexes (name, table_name, definition, deferred_at) \
         VALUES ('orgs_by_nothing', 'orgs', 'CREATE INDEX orgs_by_nothing ON orgs (no_such_column)', 'now')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert!(restore_indexes(store).await.is_err(), "{}", db.name);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT name FROM deferred_indexes ORDER BY name").fetch_all(store.pool()).await.unwrap();
    if store.backend() == Backend::Postgres {
        assert_eq!(left, ["orgs_by_nothing"], "{}", db.name);
        assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), indexes, "{}", db.name);
    } else {
        assert_eq!(left.len(), indexes.len() + 1, "{}: {left:?}", db.name);
        assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), Vec::<String>::new(), "{}", db.name);
    }
    sqlx::query("DELETE FROM deferred_indexes WHERE name = 'orgs_by_nothing'").execute(store.pool()).await.unwrap();
    restore_indexes(store).await.unwrap();
    assert_eq!(secondary_index_names(store, "orgs").await.unwrap(), indexes, "{}", db.name);
}

backend_test!(a_changed_row_is_updated_and_its_version_bumped);
async fn a_changed_row_is_updated_and_its_version_bumped(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    let original = std::fs::read_to_string(fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let renamed = original.replacen("Ecole élémentaire Robert Doisneau", "Ecole Robert-Doisneau", 1);
    let report = import_bytes(&db.store, renamed.into_bytes(), false).await;
    assert_eq!(report.etablissements.updated, 1, "{}", db.name);
    assert_eq!(report.etablissements.unchanged, 612);
    let org = queries::resolve_org(&db.store, "0940176F").await.unwrap();
    assert_eq!(org.name, "Ecole Robert-Doisneau");
    assert_eq!(org.version, 2);
}

backend_test!(covers_and_funding_follow_the_rules_of_each_kind);
async fn covers_and_funding_follow_the_rules_of_each_kind(db: crate::common::TestDb) {
    let report = import_bytes(&db.store, synthetic(3000, 300), false).await;
    assert_eq!(report.rejected, 0, "{:?}", report.rejections);
    let store = &db.store;
    let page = queries::list_orgs(store, &OrgFilter { kind: Some("college".into()), ..Default::default() }, None).await;
    assert!(page.is_err(), "college is not an org kind");

    let college = first_of_type(store, EtabType::College).await;
    let funder = queries::funding_collectivite(store, &college).await.unwrap().unwrap();
    assert_eq!((funder.kind, Some(funder.code.clone())), (OrgKind::Departement, college.departement_code.clone()));
    assert!(covers_org(store, &funder, &college).await.unwrap());

    let lycee = first_of_type(store, EtabType::Lycee).await;
    let region = queries::funding_collectivite(store, &lycee).await.unwrap().unwrap();
    assert_eq!(region.kind, OrgKind::Region);
    assert!(covers_org(store, &region, &lycee).await.unwrap());
    let dept_of_lycee = queries::get_by_code(store, OrgKind::Departement, lycee.departement_code.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!covers_org(store, &dept_of_lycee, &lycee).await.unwrap(), "a département does not cover lycées");

    let ecole = first_of_type(store, EtabType::EcoleElementaire).await;
    let commune = queries::funding_collectivite(store, &ecole).await.unwrap().unwrap();
    assert_eq!((commune.kind, Some(commune.code.clone())), (OrgKind::Commune, ecole.commune_code.clone()));
    assert!(covers_org(store, &commune, &ecole).await.unwrap());
    assert!(!covers_org(store, &commune, &college).await.unwrap());

    let academie =
        queries::get_by_code(store, OrgKind::Academie, ecole.academie_code.as_ref().unwrap()).await.unwrap().unwrap();
    let covered = queries::covers(store, &academie, None, None, Some(500)).await.unwrap();
    assert!(covered.items.iter().all(|o| o.academie_code.as_deref() == Some(academie.code.as_str())));
    assert!(covered.items.iter().any(|o| o.id == ecole.id));

    // An EPCI covers its member communes and their écoles, and funds them once delegated.
    let epci = create_org(store, &admin(), epci_named("CA Grand Paris Sud", "200059228"), t0()).await.unwrap();
    set_member(store, &admin(), &epci, &commune, false, t0()).await.unwrap();
    assert!(covers_org(store, &epci, &ecole).await.unwrap());
    assert!(covers_org(store, &epci, &commune).await.unwrap());
    assert!(!covers_org(store, &epci, &college).await.unwrap());
    assert_eq!(queries::funding_collectivite(store, &ecole).await.unwrap().unwrap().id, commune.id);
    set_member(store, &admin(), &epci, &commune, true, t0()).await.unwrap();
    assert_eq!(queries::funding_collectivite(store, &ecole).await.unwrap().unwrap().id, epci.id);
    let parents = queries::covering_parents(store, &ecole).await.unwrap();
    let kinds: Vec<OrgKind> = parents.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [OrgKind::Academie, OrgKind::Dsden, OrgKind::Commune, OrgKind::Epci]);

    // Delegating to a second group is refused; removing the membership restores the commune.
    let other = create_org(store, &admin(), epci_named("SIVU ENT", "200054781"), t0()).await.unwrap();
    let refused = set_member(store, &admin(), &other, &commune, true, t0()).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::Conflict);
    remove_member(store, &admin(), &epci, &commune, t0()).await.unwrap();
    assert_eq!(queries::funding_collectivite(store, &ecole).await.unwrap().unwrap().id, commune.id);
    assert!(!covers_org(store, &epci, &ecole).await.unwrap());
}

fn epci_named(name: &str, siren: &str) -> NewOrg {
    NewOrg { kind: OrgKind::Epci, siren: siren.into(), name: name.into(), email: None, departement: None }
}

async fn first_of_type(store: &Store, t: EtabType) -> entcp::registry::Org {
    let filter = OrgFilter { etab_type: Some(t.as_str().into()), limit: Some(1), ..Default::default() };
    queries::list_orgs(store, &filter, None).await.unwrap().items.remove(0)
}

backend_test!(pages_walk_every_organisation_once_in_name_order);
async fn pages_walk_every_organisation_once_in_name_order(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let filter = OrgFilter { kind: Some("etablissement".into()), cursor, limit: Some(100), ..Default::default() };
        let page = queries::list_orgs(&db.store, &filter, None).await.unwrap();
        seen.extend(page.items.iter().map(|o| (entcp::text::fold(&o.name), o.id.clone())));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 613, "{}", db.name);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "{}: pages are in (name, id) order", db.name);
    sorted.dedup();
    assert_eq!(sorted.len(), 613, "no organisation twice");
}

backend_test!(filters_and_search_ignore_accents_and_case);
async fn filters_and_search_ignore_accents_and_case(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    let search = |q: &str| OrgFilter { q: Some(q.into()), limit: Some(500), ..Default::default() };
    let found = queries::list_orgs(&db.store, &search("HAY LES ROSES"), None).await.unwrap();
    assert!(found.items.iter().any(|o| o.kind == OrgKind::Commune && o.code == "94038"), "{}", db.name);
    let by_uai = queries::list_orgs(&db.store, &search("0940176f"), None).await.unwrap();
    assert_eq!(by_uai.items.len(), 1);
    let in_fresnes =
        OrgFilter { commune: Some("94034".into()), degree: Some("1d".into()), limit: Some(500), ..Default::default() };
    let page = queries::list_orgs(&db.store, &in_fresnes, None).await.unwrap();
    assert!(!page.items.is_empty());
    assert!(page.items.iter().all(|o| o.commune_code.as_deref() == Some("94034")));
    let bad = OrgFilter { departement: Some("20".into()), ..Default::default() };
    let err = queries::list_orgs(&db.store, &bad, None).await.unwrap_err();
    assert_eq!(err.errors[0].field, "departement");
}

async fn searched_codes(store: &Store, q: &str) -> Vec<(OrgKind, String)> {
    let filter = OrgFilter { q: Some(q.into()), limit: Some(500), ..Default::default() };
    queries::list_orgs(store, &filter, None).await.unwrap().items.into_iter().map(|o| (o.kind, o.code)).collect()
}

// Addresses and many names abbreviate « Saint » (`94100 ST MAUR DES FOSSES`): a DAN types
// « st maur » and finds Saint-Maur-des-Fossés, and « Saint » finds a name written « St ».
backend_test!(search_reads_st_and_ste_as_saint_and_sainte_both_ways);
async fn search_reads_st_and_ste_as_saint_and_sainte_both_ways(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    create_org(&db.store, &admin(), epci_named("SIVOM de St-Maur et Ste-Marie", "200054781"), t0()).await.unwrap();
    let codes = |q: &'static str| searched_codes(&db.store, q);
    for q in ["st maur des", "ST-MAUR-DES-FOSSES", "St Maur des Fossés", "saint-maur-des"] {
        let found = codes(q).await;
        assert!(found.contains(&(OrgKind::Commune, "94068".to_string())), "{}: {q} found {found:?}", db.name);
    }
    for q in ["Saint-Maur et Sainte-Marie", "st maur et ste marie", "sivom de st maur"] {
        let found = codes(q).await;
        assert_eq!(found, vec![(OrgKind::Epci, "200054781".to_string())], "{}: {q}", db.name);
    }
    // « Ste » is « Sainte », never « Saint »; only a whole word is read as an abbreviation.
    assert!(codes("ste maur").await.is_empty(), "{}", db.name);
    assert!(codes("saintmaur").await.is_empty(), "{}", db.name);
}

backend_test!(ambiguous_codes_name_their_candidates);
async fn ambiguous_codes_name_their_candidates(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    let err = queries::resolve_org(&db.store, "94").await.unwrap_err();
    assert_eq!(err.kind, ProblemKind::AmbiguousCode, "{}", db.name);
    assert!(err.detail.contains("departement:94") && err.detail.contains("dsden:94"), "{}", err.detail);
    let dsden = queries::resolve_org(&db.store, "dsden:94").await.unwrap();
    assert_eq!(dsden.kind, OrgKind::Dsden);
    let missing = queries::resolve_org(&db.store, "0000000A").await.unwrap_err();
    assert_eq!(missing.kind, ProblemKind::NotFound);
}

backend_test!(an_ambiguous_code_answers_with_only_the_organisations_the_caller_reads);
/// `94` is both `departement:94` and `dsden:94`: the 409 lists only those the caller may read;
/// one readable, the code names it; none, the 404 of a code naming nothing, word for word.
async fn an_ambiguous_code_answers_with_only_the_organisations_the_caller_reads(db: crate::common::TestDb) {
    use common::{token_for, TestApp};
    use entcp::kernel::roles::Role;
    import_sample(&db.store).await;
    let app = TestApp::over(&db.store).build().await;
    let admin = app.client(&token_for(&db.store, "admin@ent.fr", Role::Admin, None).await);
    let conseil =
        app.client(&token_for(&db.store, "ent@valdemarne.fr", Role::Collectivite, Some("departement:94")).await);
    let mairie = app.client(&token_for(&db.store, "ent@fresnes.fr", Role::Collectivite, Some("commune:94034")).await);
    for path in ["/api/v1/orgs/{}", "/api/v1/orgs/{}/covers"] {
        let at = |key: &str| path.replace("{}", key);
        let resp = admin.get(at("94")).send().await;
        assert_eq!(resp.status, 409, "{} {path}: {}", db.name, resp.body);
        assert_eq!(resp.body["candidates"], serde_json::json!(["departement:94", "dsden:94"]), "{}", db.name);

        let resp = conseil.get(at("94")).send().await;
        assert_eq!(resp.status, 200, "{} {path}: {}", db.name, resp.body);
        let own = conseil.get(at("departement:94")).send().await;
        assert_eq!(resp.body, own.body, "{} {path}: the one it reads", db.name);

        let resp = mairie.get(at("94")).send().await;
        let unknown = mairie.get(at("98")).send().await;
        assert_eq!((resp.status, unknown.status), (404, 404), "{} {path}: {}", db.name, resp.body);
        let words = |body: &serde_json::Value, key: &str| body.to_string().replace(key, "<clé>");
        assert_eq!(words(&resp.body, "94"), words(&unknown.body, "98"), "{} {path}", db.name);
    }
    // A convention filter names its party the same way (422 on the field).
    let party = |key: &str| format!("/api/v1/conventions?party={key}");
    let resp = admin.get(party("94")).send().await;
    assert_eq!(resp.status, 422, "{}: {}", db.name, resp.body);
    assert!(resp.body.to_string().contains("dsden:94"), "{}: {}", db.name, resp.body);
    let resp = conseil.get(party("94")).send().await;
    assert_eq!(resp.status, 200, "{}: {}", db.name, resp.body);
    let (resp, unknown) = (mairie.get(party("94")).send().await, mairie.get(party("98")).send().await);
    assert_eq!((resp.status, unknown.status), (422, 422), "{}: {}", db.name, resp.body);
    let words = |body: &serde_json::Value, key: &str| body.to_string().replace(key, "<clé>");
    assert_eq!(words(&resp.body, "94"), words(&unknown.body, "98"), "{}", db.name);
}

backend_test!(manual_organisations_are_validated_field_by_field);
async fn manual_organisations_are_validated_field_by_field(db: crate::common::TestDb) {
    let bad = NewOrg {
        kind: OrgKind::Commune,
        siren: "123456789".into(),
        name: " ".into(),
        email: Some("x".into()),
        departement: Some("20".into()),
    };
    let err = create_org(&db.store, &admin(), bad, t0()).await.unwrap_err();
    let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["kind", "siren", "name", "email", "departement"], "{}", db.name);
    assert!(err.errors[1].message.contains("Luhn"));

    let ok = NewOrg {
        kind: OrgKind::Editeur,
        siren: "552 100 554".into(),
        name: "Éditeur ENT".into(),
        email: None,
        departement: None,
    };
    let created = create_org(&db.store, &admin(), ok.clone(), t0()).await.unwrap();
    assert_eq!(created.code, "552100554");
    let dup = create_org(&db.store, &admin(), ok, t0()).await.unwrap_err();
    assert_eq!(dup.kind, ProblemKind::Conflict);
}

// Security review 38, F1: a public group's SIREN is numbered from 2 (a vendor's never is) and
// is its own alone. Registering an EPCI or a syndicat mixte under a SIREN any organisation holds
// (an éditeur, another group, an établissement carrying its commune's) is refused in one
// sentence naming no holder, so that no award to a vendor can be blocked by a group squatting
// its SIREN, and nothing tells which kind of organisation holds it.
backend_test!(a_public_group_takes_a_siren_numbered_from_2_that_no_organisation_holds);
async fn a_public_group_takes_a_siren_numbered_from_2_that_no_organisation_holds(db: crate::common::TestDb) {
    let name = db.name;
    let group = |kind: OrgKind, siren: &str| NewOrg {
        kind,
        siren: siren.into(),
        name: "Groupement".into(),
        email: None,
        departement: Some("94".into()),
    };
    let vendor = common::fixtures::luhn("90000001");
    common::fixtures::new_org(&db.store, OrgKind::Editeur, "Éditeur ENT", &vendor, None).await;
    for kind in [OrgKind::Epci, OrgKind::SyndicatMixte] {
        let refused = create_org(&db.store, &admin(), group(kind, &vendor), t0()).await.unwrap_err();
        assert_eq!(refused.kind, ProblemKind::Validation, "{name}: {refused:?}");
        assert_eq!(refused.errors[0].field, "siren", "{name}");
        assert!(refused.errors[0].message.contains("commence par 2"), "{name}: {refused:?}");
    }
    let host = common::fixtures::group_siren(7);
    common::fixtures::new_org(&db.store, OrgKind::Hebergeur, "Syndicat informatique hébergeur", &host, None).await;
    common::fixtures::new_org(&db.store, OrgKind::Epci, "Grand-Orly Seine Bièvre", "200054781", Some("94")).await;
    let mut said = Vec::new();
    for (kind, siren) in [(OrgKind::SyndicatMixte, "200054781"), (OrgKind::Epci, host.as_str())] {
        let refused = create_org(&db.store, &admin(), group(kind, siren), t0()).await.unwrap_err();
        assert_eq!(refused.kind, ProblemKind::Conflict, "{name}: {refused:?}");
        assert!(!refused.detail.contains("Grand-Orly") && !refused.detail.contains("hébergeur"), "{name}: {refused:?}");
        said.push(refused.detail.replace(siren, "<SIREN>").replace("un syndicat mixte", "un EPCI"));
    }
    assert_eq!(said[0], said[1], "{name}: one sentence whoever holds it");
    let held =
        common::count(&db.store, "SELECT COUNT(*) FROM orgs WHERE siren = '200054781' OR siren = $1", &[&host]).await;
    assert_eq!(held, 2, "{name}: nothing registered twice");
    let own = create_org(&db.store, &admin(), group(OrgKind::SyndicatMixte, "259400018"), t0()).await.unwrap();
    assert_eq!(own.code, "259400018", "{name}");

    // Attack review 39, F1: a collège carrying a group's SIREN (an annuaire row of before the
    // numbering rule) holds it as no public body: the group is registered, the copy taken back.
    let college = common::fixtures::uai("0949950");
    let csv = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Code postal;\
         Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;Ecole_maternelle;Ecole_elementaire;etat\n\
         {college};Collège Test;Collège;Public;94260;94034;Fresnes;094;24;11;;;OUVERT\n"
    );
    common::fixtures::annuaire(&db.store, &csv).await;
    let squatted = common::fixtures::group_siren(8);
    common::execute(&db.store, "UPDATE orgs SET siren = $1 WHERE code = $2", &[squatted.as_str(), college.as_str()])
        .await;
    let registered = create_org(&db.store, &admin(), group(OrgKind::Epci, &squatted), t0()).await.unwrap();
    assert_eq!(registered.code, squatted, "{name}");
    let kept: Option<String> = sqlx::query_scalar("SELECT siren FROM orgs WHERE code = $1")
        .bind(&college)
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(kept, None, "{name}: the collège's copy is taken back");
}

// A first import cut mid-way (the client or the ingress hung up: hyper drops the request)
// left the indexes of `orgs` it had set aside dropped until the next start or import; they
// are now built again in a task of their own.
backend_test!(a_first_import_cut_mid_way_builds_again_the_indexes_it_set_aside);
async fn a_first_import_cut_mid_way_builds_again_the_indexes_it_set_aside(db: crate::common::TestDb) {
    use entcp::store::secondary_index_names;
    /// A file that never comes (until the test lets it go).
    struct Stalled(std::sync::mpsc::Receiver<()>);
    impl std::io::Read for Stalled {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(0)
        }
    }
    let indexes = secondary_index_names(&db.store, "orgs").await.unwrap();
    assert!(indexes.contains(&"orgs_by_sort_name".to_string()), "{}: {indexes:?}", db.name);
    let start_import = || {
        let (release, stalled) = std::sync::mpsc::channel::<()>();
        let store = db.store.clone();
        let import = tokio::spawn(async move {
            let options = ImportOptions { dry_run: false, batch_size: 100, scope: None, ..ImportOptions::default() };
            import_annuaire(&store, &admin(), Stalled(stalled), options, t0()).await
        });
        (import, release)
    };
    let all_built_again = || async {
        let mut built = secondary_index_names(&db.store, "orgs").await.unwrap();
        for _ in 0..100 {
            if built == indexes {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            built = secondary_index_names(&db.store, "orgs").await.unwrap();
        }
        assert_eq!(built, indexes, "{}: the indexes stayed dropped", db.name);
        assert_eq!(common::count(&db.store, "SELECT COUNT(*) FROM deferred_indexes", &[]).await, 0, "{}", db.name);
    };

    // Cut as soon as the indexes are set aside: the import may still be waiting for the
    // answer to its commit (the guard was armed only after it, and a cut there left the
    // indexes dropped: seen in a loaded run).
    for _ in 0..12 {
        let (import, release) = start_import();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while common::count(&db.store, "SELECT COUNT(*) FROM deferred_indexes", &[]).await == 0 {
            assert!(!import.is_finished(), "{}: the import ended before setting the indexes aside", db.name);
            assert!(std::time::Instant::now() < deadline, "{}: no index set aside within 60 s", db.name);
            tokio::task::yield_now().await;
        }
        import.abort();
        assert!(import.await.unwrap_err().is_cancelled());
        drop(release);
        all_built_again().await;
    }
}

/// The export's columns but its labels (commune, département, académie, région).
const HEADER_WITHOUT_LABELS: &str =
    "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_departement;Code_academie;Code_region\n";

/// An école of the Hauts-de-Seine (Versailles, Île-de-France) with every label of `HEADER`.
fn labelled_row(uai: &str, commune: &str, commune_name: &str, academie_name: &str) -> String {
    format!(
        "{uai};Ecole {uai};Ecole;Public;92160;{commune};{commune_name};092;25;11;Hauts-de-Seine;{academie_name};Ile-de-France;0;1;;OUVERT\n"
    )
}

async fn import_in_batches(store: &Store, csv: &str, batch_size: usize, dry_run: bool) -> ImportReport {
    let options = ImportOptions { dry_run, batch_size, scope: None, ..ImportOptions::default() };
    let input = std::io::Cursor::new(csv.as_bytes().to_vec());
    import_annuaire(store, &admin(), input, options, t0()).await.expect("import runs")
}

async fn name_of(store: &Store, key: &str) -> String {
    queries::resolve_org(store, key).await.unwrap_or_else(|e| panic!("{key}: {e:?}")).name
}

/// Whether an import wrote nothing about the organisations its rows name.
fn related_untouched(report: &ImportReport) -> bool {
    report.related.values().all(|c| c.created == 0 && c.updated == 0)
}

backend_test!(a_missing_or_empty_label_never_replaces_a_known_name);
async fn a_missing_or_empty_label_never_replaces_a_known_name(db: crate::common::TestDb) {
    let uai = common::fixtures::uai;
    let labelled = format!("{HEADER}{}", labelled_row(&uai("0929901"), "92002", "Antony", "Versailles"));
    import_in_batches(&db.store, &labelled, 100, false).await;
    let named = [
        ("academie:25", "Académie de Versailles"),
        ("commune:92002", "Antony"),
        ("departement:92", "Hauts-de-Seine"),
        ("dsden:92", "DSDEN – Hauts-de-Seine"),
        ("region:11", "Ile-de-France"),
    ];
    // An école of the same commune, from an export without the label columns, then with them empty.
    let without = format!("{HEADER_WITHOUT_LABELS}{};Ecole 2;Ecole;92002;092;25;11\n", uai("0929902"));
    let empty = format!("{HEADER}{};Ecole 3;Ecole;Public;92160;92002;;092;25;11;;;;0;1;;OUVERT\n", uai("0929903"));
    for csv in [without, empty] {
        let report = import_in_batches(&db.store, &csv, 100, false).await;
        assert_eq!(report.etablissements.created, 1, "{}: {report:?}", db.name);
        assert!(related_untouched(&report), "{}: {:?}", db.name, report.related);
        assert_eq!(report.warnings, [], "{}: known names are no news", db.name);
        for (key, name) in named {
            assert_eq!(name_of(&db.store, key).await, name, "{}: {key}", db.name);
        }
        let again = import_in_batches(&db.store, &csv, 100, false).await;
        assert_eq!(again.etablissements.unchanged, 1, "{}: {again:?}", db.name);
        assert!(related_untouched(&again), "{}: a re-run changes nothing: {:?}", db.name, again.related);
    }
}

backend_test!(a_new_organisation_without_label_is_named_provisionally_until_an_import_gives_its_label);
async fn a_new_organisation_without_label_is_named_provisionally_until_an_import_gives_its_label(
    db: crate::common::TestDb,
) {
    let uai = common::fixtures::uai;
    let csv = format!("{HEADER_WITHOUT_LABELS}{};Ecole 1;Ecole;92004;092;25;11\n", uai("0929904"));
    let report = import_in_batches(&db.store, &csv, 100, false).await;
    assert_eq!(name_of(&db.store, "commune:92004").await, "Commune 92004", "{}", db.name);
    assert_eq!(name_of(&db.store, "dsden:92").await, "DSDEN – 92", "{}", db.name);
    let provisional: Vec<(u64, &str)> = report.warnings.iter().map(|w| (w.line, w.reason.as_str())).collect();
    assert_eq!(provisional.len(), 5, "{}: commune, département, DSDEN, académie, région: {provisional:?}", db.name);
    assert!(
        provisional.iter().all(|(line, reason)| *line == 2 && reason.contains("nom provisoire")),
        "{provisional:?}"
    );
    assert!(
        provisional.iter().any(|(_, reason)| reason.contains("« Commune 92004 »") && reason.contains("Nom_commune")),
        "{}: {provisional:?}",
        db.name
    );
    let again = import_in_batches(&db.store, &csv, 100, false).await;
    assert!(related_untouched(&again), "{}: {:?}", db.name, again.related);
    assert_eq!(again.warnings, [], "{}: named once, when created", db.name);

    // The export with its labels names them.
    let labelled = format!("{HEADER}{}", labelled_row(&uai("0929904"), "92004", "Asnières-sur-Seine", "Versailles"));
    let report = import_in_batches(&db.store, &labelled, 100, false).await;
    assert_eq!(report.related["communes"].updated, 1, "{}: {:?}", db.name, report.related);
    assert_eq!(report.related["académies"].updated, 1, "{}: {:?}", db.name, report.related);
    assert_eq!(name_of(&db.store, "commune:92004").await, "Asnières-sur-Seine", "{}", db.name);
    assert_eq!(name_of(&db.store, "academie:25").await, "Académie de Versailles", "{}", db.name);
    assert_eq!(name_of(&db.store, "dsden:92").await, "DSDEN – Hauts-de-Seine", "{}", db.name);
    assert_eq!(name_of(&db.store, "region:11").await, "Ile-de-France", "{}", db.name);
}

/// Two écoles of Antony that name the commune and the académie otherwise, then two of
/// Asnières, the first without its commune's label.
fn conflicting_labels_csv() -> String {
    let uai = common::fixtures::uai;
    let mut csv = HEADER.to_string();
    csv.push_str(&labelled_row(&uai("0929905"), "92002", "Antony", "Versailles"));
    csv.push_str(&labelled_row(&uai("0929906"), "92002", "Antony PWN", "Versailles PWN"));
    csv.push_str(&labelled_row(&uai("0929907"), "92004", "", "Versailles"));
    csv.push_str(&labelled_row(&uai("0929908"), "92004", "Asnières-sur-Seine", "Versailles"));
    csv
}

backend_test!(labels_a_file_gives_otherwise_for_one_organisation_keep_the_first_and_name_both_lines);
async fn labels_a_file_gives_otherwise_for_one_organisation_keep_the_first_and_name_both_lines(
    db: crate::common::TestDb,
) {
    let csv = conflicting_labels_csv();
    // In one batch (simulated), then a batch per line.
    for (batch_size, dry_run) in [(100, true), (1, false)] {
        let report = import_in_batches(&db.store, &csv, batch_size, dry_run).await;
        let at_line = |line: u64| -> Vec<&str> {
            report.warnings.iter().filter(|w| w.line == line).map(|w| w.reason.as_str()).collect()
        };
        assert_eq!(
            at_line(3),
            [
                "commune 92002 : nom « Antony PWN » différent de celui de la ligne 2 (« Antony »), qui est conservé",
                "académie 25 : nom « Académie de Versailles PWN » différent de celui de la ligne 2 \
                 (« Académie de Versailles »), qui est conservé",
            ],
            "{} (batches of {batch_size}): {:?}",
            db.name,
            report.warnings
        );
        assert_eq!(at_line(5), Vec::<&str>::new(), "{}: a label after none is no conflict", db.name);
        assert_eq!(report.etablissements.created, 4, "{}: {report:?}", db.name);
    }
    for (key, name) in [
        ("commune:92002", "Antony"),
        ("academie:25", "Académie de Versailles"),
        ("commune:92004", "Asnières-sur-Seine"),
    ] {
        assert_eq!(name_of(&db.store, key).await, name, "{}: {key}", db.name);
    }
    let again = import_in_batches(&db.store, &csv, 1, false).await;
    assert!(related_untouched(&again), "{}: a re-run changes nothing: {:?}", db.name, again.related);
    assert_eq!(again.etablissements.unchanged, 4, "{}: {again:?}", db.name);
}

backend_test!(the_cli_import_reports_conflicting_labels_and_a_rerun_updates_nothing);
async fn the_cli_import_reports_conflicting_labels_and_a_rerun_updates_nothing(db: crate::common::TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("annuaire.csv");
    std::fs::write(&file, conflicting_labels_csv()).unwrap();
    let (ok, said) = common::entctl(&db.url, &["import", "annuaire", file.to_str().unwrap()]);
    assert!(ok, "{}: {said}", db.name);
    assert!(
        said.contains("ligne 3 : académie 25 : nom « Académie de Versailles PWN » différent de celui de la ligne 2"),
        "{}: {said}",
        db.name
    );
    assert_eq!(name_of(&db.store, "commune:92002").await, "Antony", "{}", db.name);
    let (ok, said) = common::entctl(&db.url, &["import", "annuaire", "--json", file.to_str().unwrap()]);
    assert!(ok, "{}: {said}", db.name);
    let report: serde_json::Value = serde_json::from_str(said.trim()).unwrap_or_else(|e| panic!("{e}: {said}"));
    for (kind, counts) in report["related"].as_object().unwrap() {
        assert_eq!((&counts["created"], &counts["updated"]), (&0.into(), &0.into()), "{}: {kind}", db.name);
    }
    assert_eq!(report["etablissements"]["updated"], 0, "{}: {report}", db.name);
}

/// The SIREN stored for the établissement `uai`.
async fn siren_of(store: &Store, uai: &str) -> Option<String> {
    sqlx::query_scalar("SELECT siren FROM orgs WHERE kind = 'etablissement' AND code = $1")
        .bind(uai)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// An annuaire row of `kind` (`Ecole`, `College`) in the académie de Créteil.
fn school_row(uai: &str, kind: &str, commune: &str, commune_name: &str, siret: &str) -> String {
    let levels = if kind == "Ecole" { "0;1" } else { ";" };
    format!(
        "{uai};{kind} {uai};{kind};Public;94260;{commune};{commune_name};094;24;11;Val-de-Marne;Créteil;Ile-de-France;\
         {levels};{siret};OUVERT\n"
    )
}

/// A valid UAI of `digits` (seven), its check letter appended.
fn uai(digits: &str) -> String {
    format!("{digits}{}", entcp::registry::codes::uai_check_letter(digits.parse().unwrap()))
}

/// The one remark on a SIREN an établissement may not take, whatever the SIREN and its holder.
fn not_its_own(siren: &str) -> String {
    format!("SIREN {siren} ignoré, SIRET compris : un établissement n'a pour SIREN que le sien ou celui de sa commune")
}

/// The remark on a public EPLE's SIREN the INSEE does not number from 1, whoever holds it.
fn not_an_eples(siren: &str) -> String {
    format!(
        "SIREN {siren} ignoré, SIRET compris : un EPLE public (collège, lycée, EREA) a un SIREN que l'INSEE numérote \
         à partir de 1, comme les organismes publics de l'État"
    )
}

/// The remark on a private school's SIREN in the public ranges (1, 2), whoever holds it.
fn not_a_private_schools(siren: &str) -> String {
    format!(
        "SIREN {siren} ignoré, SIRET compris : un établissement privé a pour SIREN celui de son organisme de \
         gestion, de droit privé, que l'INSEE ne numérote ni à partir de 1 ni à partir de 2 comme un organisme public"
    )
}

/// [`school_row`] for a private school.
fn private_row(uai: &str, kind: &str, commune: &str, commune_name: &str, siret: &str) -> String {
    school_row(uai, kind, commune, commune_name, siret).replacen(";Public;", ";Privé;", 1)
}

// A public école has no legal personality: its SIREN is its commune's (by the INSEE's numbering or
// as the registry records it), whatever else a row gives it is dropped with a remark on its line,
// the rest of the row kept — an éditeur's, a vendor's not registered yet, another commune's. An
// EPLE keeps its own SIREN (numbered from 1), not one the INSEE numbers otherwise (an éditeur's,
// a company's no one holds).
backend_test!(an_imported_ecole_takes_its_communes_siren_only_and_an_eple_its_own);
async fn an_imported_ecole_takes_its_communes_siren_only_and_an_eple_its_own(db: crate::common::TestDb) {
    let name = db.name;
    let editeur = common::fixtures::luhn("90000001");
    common::fixtures::new_org(&db.store, OrgKind::Editeur, "Éditeur ENT", &editeur, None).await;
    let unregistered = common::fixtures::luhn("20000000");
    let siret = |siren: &str| common::fixtures::luhn(&format!("{siren}0001"));
    let college_own = common::fixtures::luhn("19940500");
    let squatted = common::fixtures::luhn("30000000");
    let (fresnes, lhay) = (("94034", "Fresnes"), ("94038", "L'Haÿ-les-Roses"));
    let rows = [
        (uai("0940901"), "Ecole", fresnes, siret("219400348"), Some("219400348")),
        (uai("0940902"), "Ecole", lhay, siret(&editeur), None),
        (uai("0940903"), "Ecole", fresnes, siret(&unregistered), None),
        (uai("0940904"), "Ecole", lhay, siret("219400348"), None),
        (uai("0940905"), "College", fresnes, siret(&college_own), Some(college_own.as_str())),
        (uai("0940906"), "College", lhay, siret(&editeur), None),
        (uai("0940907"), "College", lhay, siret(&squatted), None),
    ];
    let csv: String = rows.iter().map(|(u, kind, (c, n), s, _)| school_row(u, kind, c, n, s)).collect();
    let report = import_bytes(&db.store, format!("{HEADER}{csv}").into_bytes(), false).await;
    assert_eq!(report.etablissements.created, 7, "{name}: every row imported: {:?}", report.rejections);
    for (uai, _, _, _, kept) in &rows {
        assert_eq!(siren_of(&db.store, uai).await.as_deref(), *kept, "{name}: {uai}");
    }
    let said: Vec<(u64, String)> = report.warnings.iter().map(|w| (w.line, w.reason.clone())).collect();
    let expected = vec![
        (3, not_its_own(&editeur)),
        (4, not_its_own(&unregistered)),
        (5, not_its_own("219400348")),
        (7, not_an_eples(&editeur)),
        (8, not_an_eples(&squatted)),
    ];
    assert_eq!(said, expected, "{name}");
    // A public body holds the commune's SIREN (its écoles) and the EPLE's own, not the private
    // one a row gave an EPLE: an award to that SIREN is not refused for it.
    for (siren, public) in [("219400348", true), (college_own.as_str(), true), (squatted.as_str(), false)] {
        let held = entcp::registry::etab_siren::held_by_public_body(&db.store, siren).await.unwrap();
        assert_eq!(held, public, "{name}: {siren}");
    }

    // The commune's SIREN of record counts as its own (a commune nouvelle's, 200…).
    let nouvelle = common::fixtures::luhn("20009999");
    sqlx::query("UPDATE orgs SET siren = $1 WHERE kind = 'commune' AND code = '94038'")
        .bind(&nouvelle)
        .execute(db.store.pool())
        .await
        .unwrap();
    let csv = school_row(&rows[1].0, "Ecole", "94038", "L'Haÿ-les-Roses", &siret(&nouvelle));
    let report = import_bytes(&db.store, format!("{HEADER}{csv}").into_bytes(), false).await;
    assert_eq!(siren_of(&db.store, &rows[1].0).await, Some(nouvelle), "{name}: {:?}", report.warnings);
    assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
}

// No oracle: a DAN's (dry run) import of an école and a collège given a foreign SIREN reports
// the same bytes whether that SIREN is an éditeur's, an EPCI's out of the DAN's scope, or no
// one's: the école's is dropped (not its commune's), the public collège's too (not numbered
// from 1), each with its one remark. Imported, public collèges under an EPCI's SIREN out of
// scope, in scope, or no one's are dropped alike; a private collège keeps an éditeur's SIREN
// out of the DAN's scope as one no one holds, as only holders in the DAN's scope count.
backend_test!(the_import_says_the_same_of_a_registered_and_an_unregistered_siren);
async fn the_import_says_the_same_of_a_registered_and_an_unregistered_siren(db: crate::common::TestDb) {
    let name = db.name;
    common::import_sample(&db.store).await;
    let editeur = common::fixtures::luhn("90000001");
    common::fixtures::new_org(&db.store, OrgKind::Editeur, "Éditeur ENT", &editeur, None).await;
    common::fixtures::new_org(&db.store, OrgKind::Epci, "Métropole du Grand Paris", "200054781", Some("75")).await;
    let ours = common::fixtures::luhn("20005800");
    common::fixtures::new_org(&db.store, OrgKind::Epci, "Grand-Orly Seine Bièvre", &ours, Some("94")).await;
    let unregistered = common::fixtures::luhn("20000000");
    let scope = entcp::registry::import::ImportScope {
        academies: ["24".to_string()].into_iter().collect(),
        ..Default::default()
    };
    let siret = |siren: &str| common::fixtures::luhn(&format!("{siren}0001"));
    let import = |csv: String, dry_run: bool| {
        let options = ImportOptions { dry_run, scope: Some(scope.clone()), ..ImportOptions::default() };
        let store = db.store.clone();
        async move {
            import_annuaire(&store, &admin(), std::io::Cursor::new(csv.into_bytes()), options, t0())
                .await
                .expect("import runs")
        }
    };
    let mut reports = Vec::new();
    for siren in [editeur.as_str(), "200054781", unregistered.as_str()] {
        let ecole = school_row(&uai("0949901"), "Ecole", "94034", "Fresnes", &siret(siren));
        let college = school_row(&uai("0949902"), "College", "94034", "Fresnes", &siret(siren));
        let report = import(format!("{HEADER}{ecole}{college}"), true).await;
        let said: Vec<(u64, &str)> = report.warnings.iter().map(|w| (w.line, w.reason.as_str())).collect();
        let (ecole, college) = (not_its_own(siren), not_an_eples(siren));
        assert_eq!(said, [(2, ecole.as_str()), (3, college.as_str())], "{name}: the école's and the collège's");
        let mut json = serde_json::to_value(&report).unwrap();
        json["duration_ms"] = 0.into();
        reports.push(json.to_string().replace(siren, "SIREN"));
    }
    assert_eq!(reports[0], reports[2], "{name}: an éditeur's and no one's");
    assert_eq!(reports[1], reports[2], "{name}: an out-of-scope EPCI's and no one's");

    let colleges = [(uai("0949903"), "200054781"), (uai("0949904"), unregistered.as_str()), (uai("0949905"), &ours)];
    let mut csv: String =
        colleges.iter().map(|(u, s)| school_row(u, "College", "94034", "Fresnes", &siret(s))).collect();
    let private = uai("0949906");
    csv.push_str(&private_row(&private, "College", "94034", "Fresnes", &siret(&editeur)));
    let report = import(format!("{HEADER}{csv}"), false).await;
    assert_eq!(report.etablissements.created, 4, "{name}: {:?}", report.rejections);
    let said: Vec<(u64, String)> = report.warnings.iter().map(|w| (w.line, w.reason.clone())).collect();
    let expected: Vec<(u64, String)> = (2..).zip(colleges.iter().map(|(_, s)| not_an_eples(s))).collect();
    assert_eq!(said, expected, "{name}: out of scope, no one's, in the académie: alike");
    for (uai, _) in &colleges {
        assert_eq!(siren_of(&db.store, uai).await, None, "{name}: {uai}");
    }
    assert_eq!(siren_of(&db.store, &private).await, Some(editeur.clone()), "{name}: held out of the DAN's scope");
}

// A public EPLE keeps only a SIREN numbered from 1 (19…), a private school (its organisme de
// gestion's) only one outside the public ranges 1 and 2: any other is dropped with its SIRET
// and a remark on its line, the rest of the row imported; the same remark whoever holds the
// SIREN, and the same report whether an administrator or the académie's DAN imports it. The
// CLI says it on the line too.
backend_test!(an_imported_eple_keeps_a_siren_from_1_and_a_private_school_none_of_the_public_ranges);
async fn an_imported_eple_keeps_a_siren_from_1_and_a_private_school_none_of_the_public_ranges(
    db: crate::common::TestDb,
) {
    let name = db.name;
    common::import_sample(&db.store).await;
    // A commune of another académie holds one of them: no holder changes what is said.
    common::fixtures::new_org(&db.store, OrgKind::Epci, "Métropole du Grand Paris", "200054781", Some("75")).await;
    let siret = |siren: &str| common::fixtures::luhn(&format!("{siren}0001"));
    let (eple, association) = (common::fixtures::luhn("19940600"), common::fixtures::luhn("77568873"));
    let rows: Vec<(String, String, Option<String>, Option<String>)> = vec![
        (
            uai("0949911"),
            school_row(&uai("0949911"), "College", "94034", "Fresnes", &siret(&eple)),
            Some(eple.clone()),
            None,
        ),
        (
            uai("0949912"),
            school_row(&uai("0949912"), "College", "94034", "Fresnes", &siret("200054781")),
            None,
            Some(not_an_eples("200054781")),
        ),
        (
            uai("0949913"),
            school_row(&uai("0949913"), "Lycee", "94034", "Fresnes", &siret("219400348")),
            None,
            Some(not_an_eples("219400348")),
        ),
        (
            uai("0949914"),
            school_row(&uai("0949914"), "Lycee", "94034", "Fresnes", &siret(&association)),
            None,
            Some(not_an_eples(&association)),
        ),
        (
            uai("0949915"),
            private_row(&uai("0949915"), "Ecole", "94034", "Fresnes", &siret("219400348")),
            None,
            Some(not_a_private_schools("219400348")),
        ),
        (
            uai("0949916"),
            private_row(&uai("0949916"), "College", "94034", "Fresnes", &siret(&eple)),
            None,
            Some(not_a_private_schools(&eple)),
        ),
        (
            uai("0949917"),
            private_row(&uai("0949917"), "College", "94034", "Fresnes", &siret(&association)),
            Some(association.clone()),
            None,
        ),
    ];
    let csv = format!("{HEADER}{}", rows.iter().map(|r| r.1.as_str()).collect::<String>());
    let expected: Vec<(u64, String)> =
        (2..).zip(rows.iter().map(|r| r.3.clone())).filter_map(|(line, said)| Some((line, said?))).collect();
    let scope = entcp::registry::import::ImportScope {
        academies: ["24".to_string()].into_iter().collect(),
        ..Default::default()
    };
    let mut reports = Vec::new();
    for scope in [None, Some(scope)] {
        let options = ImportOptions { dry_run: true, scope, ..ImportOptions::default() };
        let cursor = std::io::Cursor::new(csv.clone().into_bytes());
        let report = import_annuaire(&db.store, &admin(), cursor, options, t0()).await.expect("import runs");
        let said: Vec<(u64, String)> = report.warnings.iter().map(|w| (w.line, w.reason.clone())).collect();
        assert_eq!(said, expected, "{name}");
        let mut json = serde_json::to_value(&report).unwrap();
        json["duration_ms"] = 0.into();
        reports.push(json.to_string());
    }
    assert_eq!(reports[0], reports[1], "{name}: an administrator's and the DAN's");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("annuaire.csv");
    std::fs::write(&file, &csv).unwrap();
    let (ok, said) = common::entctl(&db.url, &["import", "annuaire", file.to_str().unwrap()]);
    assert!(ok, "{name}: {said}");
    assert!(said.contains(&format!("ligne 3 : {}", not_an_eples("200054781"))), "{name}: {said}");
    for (uai, _, kept, _) in &rows {
        assert_eq!(siren_of(&db.store, uai).await, *kept, "{name}: {uai}, imported with the rest of its row");
    }
}
