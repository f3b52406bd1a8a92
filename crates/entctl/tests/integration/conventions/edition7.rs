//! Edition 7 of the conventions' text (domain review 38: G3, G4, G7, G8, G9): durations and time
//! limits in letters, counts with their thousands separated, the académie's money share stated
//! with its ceiling and payment, the convention constitutive's legal basis, single member and
//! art. 11; an avenant's date of effect that leaves the term alone; a résiliation shown in the
//! complete document and dated when recorded; model titles and school names in the console.
//! Edition 6 renders as it shipped and its signed hash re-derives.

use super::*;

// G9. Edition 7 writes the convention's duration, its renewals and the notice before its term in
// letters, and a count with its thousands separated; edition 6, signed, keeps its figures and
// re-derives its hash.
backend_test!(edition_7_writes_durations_in_letters_and_counts_grouped_and_edition_6_keeps_its_figures);
async fn edition_7_writes_durations_in_letters_and_counts_grouped_and_edition_6_keeps_its_figures(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let mut body = tripartite("2026-09-01");
    body["parameters"]["accounts"] = json!(4600);
    let id = c.create(body).await["id"].as_str().unwrap().to_string();
    let html = document_text(&c, &id).await;
    reads(
        name,
        "edition 7",
        &html,
        &[
            "prend effet le 1er septembre 2026 pour une durée de trente-six mois, soit jusqu'au 31 août 2029",
            "est de 4 600.",
            "<dt>Nombre prévisionnel de comptes ENT</dt><dd>4 600</dd>",
        ],
        &["36 mois", "de 4600", "<dd>4600</dd>"],
    );

    let bipartite = c.create(bipartite_split("2026-09-01", 100, 0)).await["id"].as_str().unwrap().to_string();
    reads(
        name,
        "bipartite art. 9",
        &document_text(&c, &bipartite).await,
        &[
            "pour une durée de trente-six mois, soit jusqu'au 31 août 2029",
            "pour une durée de trente-six mois à chaque fois",
            "reçue au moins trois mois avant son échéance",
        ],
        &["36 mois", "au moins 3 mois"],
    );

    written_in_edition(&c, &id, 6).await;
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let signed = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text.replace("&#x27;", "'");
    reads(
        name,
        "edition 6 as it shipped",
        &signed,
        &["pour une durée de 36 mois, soit jusqu'au 31 août 2029", "est de 4600."],
        &["trente-six", "4 600"],
    );
    signed_hash_rederives_in_edition(&c, &id, 6).await;
}

// G3. A bipartite whose académie pays a share of the cost is refused without its annual ceiling
// (422 naming the field, on creation and edit); with it, art. 4 states the base, the ceiling and
// the payment (titre de recettes on justificatifs, yearly) and the cost annex reads « participation
// financière », the in-kind wording kept for a 0 % share. Edition 6 keeps its in-kind row.
backend_test!(an_academie_money_share_needs_its_ceiling_and_reads_as_a_financial_participation);
async fn an_academie_money_share_needs_its_ceiling_and_reads_as_a_financial_participation(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let mut without = bipartite_split("2026-09-01", 80, 20);
    without["parameters"].as_object_mut().unwrap().remove("plafond_participation_academie");
    let (status, problem) = call(c.dan.post(c.url("")).json(&without)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    let errors = problem["errors"].as_array().unwrap();
    let error = errors.iter().find(|e| e["field"] == "parameters.plafond_participation_academie");
    let detail = error.unwrap_or_else(|| panic!("{name}: {problem}"))["message"].as_str().unwrap_or_default();
    assert!(detail.contains("Plafond annuel de la participation de l'académie"), "{name}: {problem}");
    assert!(detail.contains("Part de l'académie dans le coût du service"), "{name}: {problem}");
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}: {problem}");

    let id = c.create(bipartite_split("2026-09-01", 80, 20)).await["id"].as_str().unwrap().to_string();
    // Edition 7 as it shipped (edition 8 words the ceiling in letters: edition8.rs).
    written_in_edition(&c, &id, 7).await;
    let html = document_text(&c, &id).await;
    let in_kind =
        "participation éventuelle au coût du service (identité, accompagnement et support de niveau 2 fournis \
                   en nature)";
    reads(
        name,
        "a money share",
        &html,
        &[
            "s'applique au montant toutes taxes comprises effectivement payé par la collectivité",
            "elle ne peut excéder 12 000,00 € par année scolaire",
            "la collectivité émet à l'encontre des services académiques un titre de recettes accompagné des \
             justificatifs de la dépense",
            "participation financière au coût du service (abonnement, hébergement, maintenance et support de niveau \
             3), dans la limite du plafond annuel fixé à l'article 4",
            "<dt>Plafond annuel de la participation de l'académie</dt><dd>12 000,00 €</dd>",
            // The académie's contributions in kind are still said to be in kind.
            "sont fournis en nature et ne donnent lieu à aucune facturation",
        ],
        &[in_kind],
    );

    let (_, current) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let version = current["version"].as_i64().unwrap();
    let patch = json!({ "parameters": { "plafond_participation_academie": null } });
    let req = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
    let (status, problem) = call(req.json(&patch)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: an edit dropping it: {problem}");
    assert_eq!(problem["errors"][0]["field"], "parameters.plafond_participation_academie", "{name}: {problem}");

    let nothing = c.create(bipartite_split("2026-09-01", 100, 0)).await["id"].as_str().unwrap().to_string();
    let html = document_text(&c, &nothing).await;
    reads(name, "no money share", &html, &[in_kind], &["titre de recettes", "participation financière"]);

    written_in_edition(&c, &id, 6).await;
    let html = document_text(&c, &id).await;
    reads(name, "edition 6", &html, &[in_kind], &["titre de recettes", "participation financière"]);
}

// G8. The convention constitutive of a groupement cites its legal basis, words its single member
// as one, says what a coordinator's withdrawal does to a groupement of one member, and what a
// member's withdrawal stops (no « période d'exécution »: the accord-cadre has none). Edition 6
// keeps its text.
backend_test!(a_convention_constitutive_cites_its_basis_and_words_its_single_member_from_edition_7);
async fn a_convention_constitutive_cites_its_basis_and_words_its_single_member_from_edition_7(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let (_, conv_id, _) = groupement_joined_by_fresnes(&c).await;
    let html = document_text(&c, &conv_id).await;
    let basis = [
        "Vu le code de la commande publique, notamment ses articles L. 2113-6 à L. 2113-8 relatifs aux groupements \
         de commandes",
        "Vu le code général des collectivités territoriales, notamment son article L. 1414-3",
    ];
    let old = [
        "les membres suivants",
        "un nouveau coordonnateur est désigné par avenant parmi les membres",
        "période d'exécution en cours",
    ];
    let mut said = basis.to_vec();
    said.extend([
        "coordonnateur, et le membre suivant : la Commune de Fresnes",
        "le membre n'émet plus de bon de commande à compter de la prise d'effet de son retrait",
        "Si le coordonnateur se retire, le groupement est dissous à la prise d'effet de son retrait, à moins que le \
         membre n'en reprenne la coordination par un avenant conclu avant cette date",
    ]);
    reads(name, "edition 7", &html, &said, &old);

    written_in_edition(&c, &conv_id, 6).await;
    let html = document_text(&c, &conv_id).await;
    reads(name, "edition 6", &html, &old, &basis);
}

// G4. An avenant's start is its own date of effect: moving it leaves the convention's term; an
// explicit end_date moves the term, and the avenant then says so in its warnings. A count an
// avenant fixes for the first time reads « 4 600 (non fixé auparavant) ».
backend_test!(an_avenant_s_date_of_effect_keeps_the_term_and_a_moved_term_is_warned);
async fn an_avenant_s_date_of_effect_keeps_the_term_and_a_moved_term_is_warned(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let mut body = tripartite("2026-09-01");
    body["parameters"] = json!({});
    let id = c.create(body).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let avenant = c.amended(&id).await;

    let edited = c.edit(&avenant, json!({ "start_date": "2027-01-04", "parameters": { "accounts": 4600 } })).await;
    assert_eq!(edited["start_date"], "2027-01-04", "{name}: {edited}");
    assert_eq!(edited["end_date"], "2029-08-31", "{name}: the term stays: {edited}");
    assert!(edited.get("warnings").is_none(), "{name}: {edited}");
    let html = document_text(&c, &avenant).await;
    reads(
        name,
        "the avenant",
        &html,
        &["« Nombre prévisionnel de comptes ENT » : 4 600 (non fixé auparavant)"],
        &["au lieu de non fixé", "4600 ", "l'échéance de la convention, reportée"],
    );

    let edited = c.edit(&avenant, json!({ "end_date": "2030-08-31" })).await;
    assert_eq!(edited["end_date"], "2030-08-31", "{name}: {edited}");
    let moved = "L'échéance de la convention passe du 31 août 2029 au 31 août 2030";
    assert!(warnings(&edited).iter().any(|w| w.starts_with(moved)), "{name}: {edited}");
    let (_, read) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert!(warnings(&read).iter().any(|w| w.starts_with(moved)), "{name}: read: {read}");
    let html = document_text(&c, &avenant).await;
    reads(
        name,
        "a moved term",
        &html,
        &[
            "l'échéance de la convention, reportée du 31 août 2029 au 31 août 2030",
            "soit une durée de quarante-huit mois à compter de sa prise d'effet",
        ],
        &["48 mois"],
    );
}

// G7. A résiliation shows in the complete document (who notified it, the day it was recorded,
// the motif, the date of effect), outside the signed text, whose hash still re-derives; the
// console's history dates it when it was recorded, « prend effet le 31 août 2027 ».
backend_test!(a_termination_shows_in_the_complete_document_and_is_dated_when_recorded);
async fn a_termination_shows_in_the_complete_document_and_is_dated_when_recorded(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let before = document_text(&c, &id).await;
    assert!(!before.contains("Notifiée par"), "{name}: {before}");
    let reason = "Fermeture de l'école au 31 août 2027";
    let body = json!({ "reason": reason, "effective_date": "2027-08-31" });
    let ended = c.step_ok(&c.mairie, &id, "terminate", body).await;
    let at = ended["termination_notified"]["at"].as_str().unwrap_or_default();
    assert!(at.starts_with("2026-09-01T08:00:00"), "{name}: recorded now: {ended}");

    let html = document_text(&c, &id).await;
    // After the signature page (the text's own « Article 11 – Résiliation » comes before it).
    let block = html.split("<h2>Signatures</h2>").nth(1).unwrap_or_else(|| panic!("{name}: no signatures: {html}"));
    let block = block.split("<h2>Résiliation</h2>").nth(1).unwrap_or_else(|| panic!("{name}: no block: {html}"));
    reads(
        name,
        "the résiliation",
        block,
        &[
            "<dt>Notifiée par</dt><dd>Commune de Fresnes</dd>",
            "<dt>Enregistrée le</dt><dd>1er septembre 2026</dd>",
            &format!("<dt>Motif</dt><dd>{reason}</dd>"),
            "<dt>Prise d'effet</dt><dd>31 août 2027</dd>",
            "elle ne fait pas partie du texte signé",
        ],
        &[],
    );
    let (conv, hash) = rederived(&c, &id).await;
    assert_eq!(Some(hash), conv.document_hash, "{name}: the signed text is untouched");
    let signed = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text;
    assert!(!signed.contains("Notifiée par"), "{name}: the frozen text stays as signed");

    crate::console::with_password(&c.db.store, "ent@fresnes.fr").await;
    let session = crate::console::sign_in(&c.app, "ent@fresnes.fr").await;
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await.text.replace("&#x27;", "'");
    let event = format!("Résiliation notifiée par la Commune de Fresnes : {reason} ; prend effet le 31 août 2027");
    assert!(page.contains(&event), "{name}: « {event} » not in {page}");
    assert!(page.contains("1er septembre 2026 à 10 h 00"), "{name}: dated when recorded: {page}");
}

// G9 (console). The conventions list names each convention's model by its title, not its id; a
// commune's dashboard and the cost-split warning name a school as the documents do (« École »).
backend_test!(the_console_shows_model_titles_and_schools_named_as_the_documents_name_them);
async fn the_console_shows_model_titles_and_schools_named_as_the_documents_name_them(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let tri = signed_from(&c, "2026-09-01").await;
    let other = c.create(bipartite_split("2026-10-01", 80, 20)).await;
    let told = warnings(&other);
    assert!(
        told.iter().any(|w| w.contains("couvre aussi École élémentaire Robert Doisneau (0940176F)")),
        "{name}: {told:?}"
    );
    assert!(!told.iter().any(|w| w.contains("Ecole")), "{name}: {told:?}");

    for email in ["dan@ac-creteil.fr", "ent@fresnes.fr"] {
        crate::console::with_password(&c.db.store, email).await;
    }
    let dan = crate::console::sign_in(&c.app, "dan@ac-creteil.fr").await;
    let list = crate::console::get(&c.app, &dan, "/conventions").await.text.replace("&#x27;", "'");
    for title in [
        "Convention tripartite relative à l'espace numérique de travail d'une école",
        "Convention relative à l'espace numérique de travail des écoles d'une collectivité",
    ] {
        assert!(list.contains(title), "{name}: « {title} » not in {list}");
    }
    for id in [">tripartite-premier-degre<", ">bipartite-commune<"] {
        assert!(!list.contains(id), "{name}: {id} in {list}");
    }
    assert!(list.contains(&format!("&#x2F;conventions&#x2F;{tri}")), "{name}: {list}");

    let mairie = crate::console::sign_in(&c.app, "ent@fresnes.fr").await;
    let home = crate::console::get(&c.app, &mairie, "/").await.text;
    assert!(home.contains("École élémentaire Robert Doisneau"), "{name}: {home}");
    assert!(!home.contains("Ecole "), "{name}: a school named as the directory spells it: {home}");
}

migration_test!(the_edition_7_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 7);

// A tripartite's académie may pay a share of the cost in money too (`part_academie`, beside its
// contributions in kind): the same rule as the bipartite's holds, from the code (the model files
// keep their bytes). Without its annual ceiling the draft is refused (422 naming the field); with
// it, the « Caractéristiques » state it in euros; a 0 % share needs none.
backend_test!(a_tripartite_academie_money_share_needs_its_ceiling_as_the_bipartite_one);
async fn a_tripartite_academie_money_share_needs_its_ceiling_as_the_bipartite_one(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let mut paying = tripartite("2026-09-01");
    paying["parameters"]["part_collectivite"] = json!(80);
    paying["parameters"]["part_academie"] = json!(20);
    let (status, problem) = call(c.dan.post(c.url("")).json(&paying)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    let errors = problem["errors"].as_array().unwrap();
    let error = errors.iter().find(|e| e["field"] == "parameters.plafond_participation_academie");
    let detail = error.unwrap_or_else(|| panic!("{name}: {problem}"))["message"].as_str().unwrap_or_default();
    assert!(detail.contains("Part de l'académie dans le coût du service"), "{name}: {problem}");

    paying["parameters"]["plafond_participation_academie"] = json!(1_200_000);
    let id = c.create(paying).await["id"].as_str().unwrap().to_string();
    // As art. 4 states it from edition 9 (edition9.rs); in euros before, as edition 8 shipped.
    let html = document_text(&c, &id).await;
    // Labelled, from edition 12, by the party as the premier degré designates it.
    let ttc =
        "<dt>Plafond annuel de la participation des services académiques</dt><dd>douze mille euros (12 000,00 €) \
               toutes taxes comprises</dd>";
    reads(name, "a money share", &html, &[ttc], &[]);
    written_in_edition(&c, &id, 8).await;
    let html = document_text(&c, &id).await;
    reads(
        name,
        "edition 8",
        &html,
        &["<dt>Plafond annuel de la participation de l'académie</dt><dd>12 000,00 €</dd>"],
        &[],
    );
    let in_kind = c.create(tripartite("2026-09-01")).await;
    assert_eq!(in_kind["parameters"]["part_academie"], 0, "{name}: {in_kind}");
    assert!(in_kind["parameters"].get("plafond_participation_academie").is_none(), "{name}: {in_kind}");
}
