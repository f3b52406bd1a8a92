//! Edition 11 of the conventions' text: the bipartite's article 4 states the académie's money
//! share within its ceiling and the proration of that ceiling to the cent below, in the wording of
//! the tripartite's article 5; the art. 28 annex names its bouquets as a French list, each once;
//! the bipartite counts its écoles in letters, a « Vu » cites an act of délégation after its
//! party, and an avenant states a changed ceiling in letters and figures, toutes taxes comprises.
//! Edition 10 renders as it shipped and its signed hash re-derives.

use super::edition10::{section, tenant_with, CEILING};
use super::*;

/// The financial article of the bipartite.
const ARTICLE_4: &str = "Article 4 – Dispositions financières";

// A bipartite from 4 January 2027 whose académie pays 20 %, capped at 12 345,67 € a year: edition
// 11's article 4 states the share within the ceiling, the base of the écoles couvertes, the
// ceiling in letters and figures TTC, its proration by twelfths « arrondi au centime inférieur »
// and the payment. Written in edition 10, the same convention reads article 4 as its file does
// (no rounding, no « dans la limite »), is submitted and signed by both parties, and the hash its
// signatures bind re-derives from edition 10's text.
backend_test!(edition_11_states_the_bipartite_s_proration_to_the_cent_below_and_edition_10_keeps_its_bytes);
async fn edition_11_states_the_bipartite_s_proration_to_the_cent_below_and_edition_10_keeps_its_bytes(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(bipartite_capped("2027-01-04")).await["id"].as_str().unwrap().to_string();
    written_in_edition(&c, &id, 11).await;
    let html = document_text(&c, &id).await;
    let article = section(&html, ARTICLE_4);
    let mut said = vec![
        "80 % à la charge de la collectivité et 20 % à la charge des services académiques, dans la limite du plafond \
         annuel fixé ci-après.",
        "La participation des services académiques s'applique au montant toutes taxes comprises effectivement payé \
         par la collectivité au titulaire du marché pour le service ENT des écoles couvertes, année scolaire par année \
         scolaire, du 1er septembre au 31 août",
        "les services académiques le paient dans un délai de trente jours à compter de sa réception, sur les crédits \
         du programme budgétaire dont ils relèvent.",
        "Les écoles ne supportent aucune charge financière au titre de la présente convention.",
    ];
    said.extend(CEILING);
    reads(name, "edition 11, article 4", article, &said, &[]);
    let elsewhere = [
        "au nombre de onze à la date de la signature",
        "Vu l'acte de délégation de signature de l'académie de Créteil (arrêté n° 2025-07 du 30 juin 2025)",
        "Vu l'acte de délégation de signature de la Commune de Fresnes (arrêté n° 2025-07 du 30 juin 2025)",
    ];
    let as_edition_10 = [
        "au nombre de 11 à la date de la signature",
        "Vu l'acte de délégation de signature arrêté n° 2025-07 du 30 juin 2025 (Académie de Créteil)",
    ];
    reads(name, "edition 11, article 1 and « Vu »", &html, &elsewhere, &as_edition_10);

    written_in_edition(&c, &id, 10).await;
    let html = document_text(&c, &id).await;
    let article = section(&html, ARTICLE_4);
    let shipped = [
        "80 % à la charge de la collectivité et 20 % à la charge des services académiques.</p>",
        "il est égal à autant de douzièmes du plafond annuel que de mois couverts, un mois étant couvert lorsque la \
         convention est en vigueur le 15 de ce mois.",
    ];
    reads(name, "edition 10, article 4", article, &shipped, &["arrondi au centime inférieur", "fixé ci-après"]);
    reads(name, "edition 10, article 1 and « Vu »", &html, &as_edition_10, &elsewhere);
    bipartite_submitted_and_signed(&c, &id).await;
    signed_hash_rederives_in_edition(&c, &id, 10).await;
}

/// The bouquets' line of the art. 28 annex: « services concernés (…) », set in French typography.
fn bouquets(html: &str) -> &str {
    let start = html.find("services concernés (").unwrap_or_else(|| panic!("no bouquets: {html}"));
    let rest = &html[start..];
    rest.find(&french(") : ")).map_or(rest, |end| &rest[..end + 1])
}

// A bipartite académie – Fresnes signed while the ENT of the école Doisneau ran the socle with
// the visio option, the commune's other écoles standing on the socle: its annex names « Socle
// premier degré et Option visioconférence », the socle once. The commune swaps visio for Moodle:
// the avenant's « Objet » names the service added and the service removed once each, and its
// « Stipulations modifiées » name the bouquets as a French list, each once. Written in edition 10,
// the same avenant names them as edition 10 shipped, the socle twice.
backend_test!(edition_11_names_the_annex_s_bouquets_as_a_french_list_each_once);
async fn edition_11_names_the_annex_s_bouquets_as_a_french_list_each_once(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    tenant_with(&c.db, "fresnes-doisneau", "0940176F", "socle-1d", json!(["visio"])).await;
    let id = bipartite_signed(&c, "2026-09-01").await;
    let signed = document_text(&c, &id).await;
    assert_eq!(bouquets(&signed), "services concernés (Socle premier degré et Option visioconférence)", "{name}");

    tenant_with(&c.db, "fresnes-doisneau", "0940176F", "socle-1d", json!(["moodle"])).await;
    let avenant = c.amended(&id).await;
    let html = document_text(&c, &avenant).await;
    let objet = section(&html, "Article 1 – Objet de l'avenant");
    let points = [
        "service ajouté à l'annexe relative à l'article 28 du RGPD : Exercices et parcours (Moodle)",
        "service retiré de l'annexe relative à l'article 28 du RGPD : Visioconférence",
    ];
    reads(name, "edition 11, Objet", objet, &points, &[]);
    for service in ["Exercices et parcours (Moodle)", "Visioconférence"] {
        assert_eq!(objet.matches(service).count(), 1, "{name}: « {service} » once in {objet}");
    }
    let stipulations = section(&html, "Article 2 – Stipulations modifiées");
    let listed = "services concernés (Socle premier degré et Option exercices (Moodle))";
    assert_eq!(bouquets(stipulations), listed, "{name}");
    assert_eq!(stipulations.matches("Socle premier degré").count(), 1, "{name}: {stipulations}");

    written_in_edition(&c, &avenant, 10).await;
    let html = document_text(&c, &avenant).await;
    let shipped = "services concernés (Socle premier degré + Option exercices (Moodle) ; Socle premier degré)";
    let restated = section(&html, "Article 2 – Stipulations modifiées");
    assert_eq!(bouquets(restated), french(shipped), "{name}: as edition 10 shipped");
}

// A bipartite whose académie pays 20 % capped at 12 345,67 €, signed; its avenant raises the
// ceiling to 20 000 €: edition 11 states the new and the former ceiling in its « Objet », and the
// new one in its « Stipulations modifiées », as the « Caractéristiques » do — in letters and
// figures, toutes taxes comprises. Written in edition 10, the avenant states them as it shipped.
backend_test!(edition_11_states_an_avenant_s_ceiling_in_letters_and_figures_toutes_taxes_comprises);
async fn edition_11_states_an_avenant_s_ceiling_in_letters_and_figures_toutes_taxes_comprises(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(bipartite_capped("2026-09-01")).await["id"].as_str().unwrap().to_string();
    bipartite_submitted_and_signed(&c, &id).await;
    let avenant = c.amended(&id).await;
    c.edit(&avenant, json!({ "parameters": { "plafond_participation_academie": 2_000_000 } })).await;
    written_in_edition(&c, &avenant, 11).await;
    let html = document_text(&c, &avenant).await;
    let objet = "« Plafond annuel de la participation de l'académie » : vingt mille euros (20 000,00 €) toutes taxes \
                 comprises au lieu de douze mille trois cent quarante-cinq euros et soixante-sept centimes \
                 (12 345,67 €) toutes taxes comprises";
    let fixed = "<dt>Plafond annuel de la participation de l'académie</dt><dd>vingt mille euros (20 000,00 €) toutes \
                 taxes comprises</dd>";
    let shipped = "« Plafond annuel de la participation de l'académie » : 20 000,00 € au lieu de 12 345,67 €";
    reads(name, "edition 11, Objet", section(&html, "Article 1 – Objet de l'avenant"), &[objet], &[shipped]);
    reads(name, "edition 11, Stipulations", section(&html, "Article 2 – Stipulations modifiées"), &[fixed], &[]);

    written_in_edition(&c, &avenant, 10).await;
    let html = document_text(&c, &avenant).await;
    reads(name, "edition 10, Objet", section(&html, "Article 1 – Objet de l'avenant"), &[shipped], &[objet]);
    let as_shipped = "<dt>Plafond annuel de la participation de l'académie</dt><dd>20 000,00 €</dd>";
    reads(name, "edition 10, Stipulations", section(&html, "Article 2 – Stipulations modifiées"), &[as_shipped], &[]);
}

migration_test!(the_edition_11_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 11);
