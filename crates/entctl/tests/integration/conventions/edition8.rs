//! Edition 8 of the conventions' text (domain review 39: G1, G2, G3): an avenant cites the
//! convention it amends by its date of effect, with no tense judged on any day; the académie's
//! annual ceiling in letters and figures, « toutes taxes comprises », prorated for an incomplete
//! school year, and a change of share or ceiling by avenant applied to the payments from its date
//! of effect (restated by the avenant, warned when mid-year); a notice period read « 3 mois ».
//! Edition 7 renders as it shipped.

use super::*;

/// Asserts every `said` is in `html` (set in French typography) and no `gone` is.
fn reads(name: &str, what: &str, html: &str, said: &[&str], gone: &[&str]) {
    for said in said {
        assert!(html.contains(&french(said)), "{name}: {what}: « {said} » not in {html}");
    }
    for gone in gone {
        assert!(!html.contains(&french(gone)), "{name}: {what}: still « {gone} » in {html}");
    }
}

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

#[tokio::test]
async fn the_edition_8_migration_moves_drafts_only_on_sqlite() {
    crate::counters::on_sqlite(|url| async move {
        an_edition_migration_moves_drafts_only(&url, entcp::store::Backend::Sqlite, 8).await
    })
    .await;
}

#[tokio::test]
async fn the_edition_8_migration_moves_drafts_only_on_postgres() {
    crate::counters::on_postgres(|url| async move {
        an_edition_migration_moves_drafts_only(&url, entcp::store::Backend::Postgres, 8).await
    })
    .await;
}
