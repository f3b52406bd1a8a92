//! Edition 8 of the conventions' text (domain review 39: G1, G2, G3): an avenant cites the
//! convention it amends by its date of effect, with no tense judged on any day; the académie's
//! annual ceiling in letters and figures, « toutes taxes comprises », prorated for an incomplete
//! school year, and a change of share or ceiling by avenant applied to the payments from its date
//! of effect (restated by the avenant, warned when mid-year); a notice period read « 3 mois ».
//! Edition 7 renders as it shipped.

use super::*;

// G1. A convention signed on 1 September 2026 for 4 January 2027, amended by an avenant taking
// effect on 1 March 2027: edition 8 cites it « prenant effet le 4 janvier 2027 » (« Vu ») and
// « elle prend effet le 4 janvier 2027 » (préambule), never « entrée en vigueur », whatever day
// the text is read, and the hash of the signed avenant re-derives from its data. Edition 7 keeps
// the tense it shipped with (the avenant starting after the convention: « entrée en vigueur »).
backend_test!(an_avenant_of_edition_8_cites_the_convention_by_its_date_of_effect_without_a_tense);
async fn an_avenant_of_edition_8_cites_the_convention_by_its_date_of_effect_without_a_tense(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2027-01-04").await;
    let avenant = c.amended(&id).await;
    c.edit(&avenant, json!({ "start_date": "2027-03-01", "parameters": { "accounts": 300 } })).await;
    let neutral = [
        "signée le 1er septembre 2026, prenant effet le 4 janvier 2027",
        "Signée le 1er septembre 2026, elle prend effet le 4 janvier 2027.",
    ];
    let past = ["entrée en vigueur le 4 janvier 2027"];
    reads(name, "edition 8", &document_text(&c, &avenant).await, &neutral, &past);

    written_in_edition(&c, &avenant, 7).await;
    let html = document_text(&c, &avenant).await;
    reads(name, "edition 7 as it shipped", &html, &["elle est entrée en vigueur le 4 janvier 2027"], &neutral);
    written_in_edition(&c, &avenant, 8).await;

    c.step_ok(&c.dan, &avenant, "submit", json!({})).await;
    c.signed_by_all(&avenant).await;
    c.clock.set(Utc.with_ymd_and_hms(2027, 6, 1, 9, 0, 0).unwrap());
    let models = load_models();
    let conv = entcp::conventions::get_convention(&c.db.store, &models, &avenant).await.unwrap().unwrap();
    assert_eq!(conv.document_edition, 8, "{name}");
    let model = entcp::conventions::find_model(&models, &conv.model_id, Some(conv.model_version)).unwrap();
    let mut conn = c.db.store.conn().await.unwrap();
    let amended = entcp::conventions::avenant::amended_of(&mut conn, model, &conv).await.unwrap();
    let recomputed = entcp::conventions::document::body_hash(model, &conv, amended.as_ref()).unwrap();
    assert_eq!(Some(recomputed), conv.document_hash, "{name}: read after both dates, the signed hash re-derives");
    let signed = c.dan.get(c.url(&format!("/{avenant}/signed-document"))).send().await.text.replace("&#x27;", "'");
    reads(name, "the signed copy", &signed, &neutral, &past);
}

migration_test!(the_edition_8_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 8);

/// The part of `html` from `from` to `to` (to its end without one).
fn part<'a>(html: &'a str, from: &str, to: &str) -> &'a str {
    let start = html.find(from).unwrap_or_else(|| panic!("no « {from} » in {html}"));
    let rest = &html[start..];
    rest.find(to).map_or(rest, |end| &rest[..end])
}

// G2, G3. A bipartite whose académie pays 20 %, capped at 12 345,67 €, from 4 January 2027: edition 8
// states the ceiling in letters and figures, « toutes taxes comprises », prorated for an
// incomplete school year (one twelfth a month in force on its 15th), and a change by avenant
// applied to the payments from its date of effect; the « Caractéristiques » read « 3 mois ».
// Edition 7 renders as it shipped.
backend_test!(edition_8_states_the_ceiling_in_letters_ttc_and_prorated_and_a_notice_in_months);
async fn edition_8_states_the_ceiling_in_letters_ttc_and_prorated_and_a_notice_in_months(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(bipartite_capped("2027-01-04")).await["id"].as_str().unwrap().to_string();
    let edition_8 = [
        "elle ne peut excéder, par année scolaire, douze mille trois cent quarante-cinq euros et soixante-sept \
         centimes (12 345,67 €) toutes taxes comprises.",
        "ce plafond est réduit au prorata du nombre de mois de l'année scolaire couverts par la convention : il est \
         égal à autant de douzièmes du plafond annuel que de mois couverts, un mois étant couvert lorsque la \
         convention est en vigueur le 15 de ce mois.",
        "Une modification de la part des services académiques ou du plafond par avenant s'applique aux paiements \
         effectués par la collectivité à compter de la prise d'effet de l'avenant",
        "<dt>Préavis de résiliation ou de non-reconduction</dt><dd>3 mois</dd>",
    ];
    let edition_7 = [
        "elle ne peut excéder 12 345,67 € par année scolaire.",
        "<dt>Préavis de résiliation ou de non-reconduction (mois)</dt><dd>3</dd>",
    ];
    // Edition 11 words article 4 anew (edition11.rs): the text edition 8 shipped.
    written_in_edition(&c, &id, 8).await;
    let html = document_text(&c, &id).await;
    reads(name, "edition 8", &html, &edition_8, &edition_7);
    written_in_edition(&c, &id, 7).await;
    let html = document_text(&c, &id).await;
    reads(name, "edition 7 as it shipped", &html, &edition_7, &edition_8);
    assert!(!html.contains("toutes taxes comprises (") && !html.contains("douze mille"), "{name}: {html}");
}

// G2. An avenant raising the académie's share and ceiling from 1 March 2027 (mid school year) is
// warned on its edit and read; its « Stipulations modifiées » say which payments the new share and
// ceiling apply to and how that year's ceiling is split, its consolidated art. 4 states the new
// ceiling in letters. From 1 September, no warning; an avenant leaving them alone says nothing of
// them. Edition 7 has no such paragraph.
backend_test!(an_avenant_changing_the_academie_share_mid_year_is_warned_and_says_which_payments_it_applies_to);
async fn an_avenant_changing_the_academie_share_mid_year_is_warned_and_says_which_payments_it_applies_to(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(bipartite_capped("2027-01-04")).await["id"].as_str().unwrap().to_string();
    bipartite_submitted_and_signed(&c, &id).await;
    let avenant = c.amended(&id).await;
    let unrelated = c.edit(&avenant, json!({ "parameters": { "accounts": 5000 } })).await;
    let mid_year = "L'avenant modifie";
    assert!(!warnings(&unrelated).iter().any(|w| w.starts_with(mid_year)), "{name}: {unrelated}");
    let html = document_text(&c, &avenant).await;
    reads(name, "accounts only", &html, &[], &["de la participation ainsi fix"]);

    let raised = json!({ "start_date": "2027-03-01", "parameters": { "part_collectivite": 70, "part_academie": 30,
                         "plafond_participation_academie": 2_000_000 } });
    let edited = c.edit(&avenant, raised).await;
    let warned = "L'avenant modifie la part et le plafond annuel de la participation et prend effet le 1er mars 2027, \
                  en cours d'année scolaire";
    assert!(warnings(&edited).iter().any(|w| w.starts_with(warned)), "{name}: {edited}");
    let (_, read) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert!(warnings(&read).iter().any(|w| w.starts_with(warned)), "{name}: read: {read}");
    let html = document_text(&c, &avenant).await;
    let restated =
        ["La part et le plafond annuel de la participation ainsi fixés s'appliquent aux paiements effectués par la \
         collectivité à compter de la prise d'effet du présent avenant ; les paiements effectués auparavant \
         demeurent régis par les stipulations antérieures. Pour l'année scolaire au cours de laquelle le présent \
         avenant prend effet, le plafond est la somme des douzièmes de l'ancien plafond pour les mois couverts dont \
         le 15 précède cette prise d'effet et des douzièmes du nouveau plafond pour les autres mois couverts."];
    reads(name, "the avenant", part(&html, "Stipulations modifiées", "Autres stipulations"), &restated, &[]);
    let annex = part(&html, "Annexe – Texte consolidé", "\u{0}");
    reads(
        name,
        "the consolidated art. 4",
        annex,
        &["elle ne peut excéder, par année scolaire, vingt mille euros (20 000,00 €) toutes taxes comprises."],
        &[],
    );

    let september = c.edit(&avenant, json!({ "start_date": "2027-09-01" })).await;
    assert!(!warnings(&september).iter().any(|w| w.starts_with(mid_year)), "{name}: {september}");
    let ceiling_only = json!({ "start_date": "2027-03-01", "parameters": { "part_collectivite": 80,
                               "part_academie": 20 } });
    let edited = c.edit(&avenant, ceiling_only).await;
    let warned = "L'avenant modifie le plafond annuel de la participation et prend effet le 1er mars 2027";
    assert!(warnings(&edited).iter().any(|w| w.starts_with(warned)), "{name}: {edited}");
    let html = document_text(&c, &avenant).await;
    reads(name, "the ceiling only", &html, &["Le plafond annuel de la participation ainsi fixé s'applique"], &[]);

    written_in_edition(&c, &avenant, 7).await;
    let html = document_text(&c, &avenant).await;
    reads(name, "edition 7", &html, &[], &["de la participation ainsi fix", "toutes taxes comprises ("]);
}
