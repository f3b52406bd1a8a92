//! Edition 12 of the conventions' text (the tripartites and the bipartite read end to end): the
//! art. 28 sub-processors in one clause; the parameters labelled by the party as the text names
//! it; the EPLE represented by its chef d'établissement, its executive, and the collectivité de
//! rattachement's own article; the cost shared toutes taxes comprises (migration 0078 lists every
//! change). Edition 11 renders as it shipped: the text of each model, drafted, submitted and signed
//! in edition 11, hashes to the SHA-256 pinned here.

use super::*;

/// Who signs the collège's tripartite: the DAN (signature for the académie), the juriste of the
/// rectorat (legal visa), the département and the principal.
struct SecondDegre {
    juriste: Client,
    cd: Client,
    principal: Client,
}

/// The Collège des Essais (Fresnes, `0940999A`) imported, its tenant run by an éditeur and an
/// hébergeur, and the clients of those who sign its convention.
async fn second_degre_world(c: &Cycle) -> SecondDegre {
    use entcp::kernel::roles::OrgKind;
    common::import_college(&c.db.store).await;
    let fixtures = |n| common::fixtures::siren(n);
    let editeur =
        common::fixtures::new_org(&c.db.store, OrgKind::Editeur, "Éditeur ENT SAS", &fixtures(1201), None).await;
    let hebergeur =
        common::fixtures::new_org(&c.db.store, OrgKind::Hebergeur, "Hébergeur Souverain SA", &fixtures(1202), None)
            .await;
    let mut tenant = crate::tenants::doc("clg-essais", "0940999A", "essais.ent.example.fr");
    tenant["spec"]["bouquet"] = json!("socle-2d");
    tenant["spec"]["options"] = json!([]);
    tenant["spec"]["vendor"] = json!(format!("editeur:{}", editeur.code));
    tenant["spec"]["host"] = json!(format!("hebergeur:{}", hebergeur.code));
    let state = common::app::app_state(c.db.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let tenant: entcp::tenants::EntTenant = serde_json::from_value(tenant).unwrap();
    entcp::tenants::apply(&state.tenants(), &common::admin(), &tenant, None).await.unwrap();
    let client = |token: String| c.app.client(&token);
    SecondDegre {
        juriste: client(token_for(&c.db.store, "juriste@ac-creteil.fr", Role::Dan, Some("academie:24")).await),
        cd: client(token_for(&c.db.store, "ent@valdemarne.fr", Role::Collectivite, Some("departement:94")).await),
        principal: client(
            token_for(&c.db.store, "principal@college.fr", Role::ChefEtablissement, Some("0940999A")).await,
        ),
    }
}

/// The collège's tripartite from 1 September 2026 as an académie drafts it: its three parties
/// represented by the persons who sign, the département's délibération and the conseil
/// d'administration's act, 650 accounts, the cost shared 80 / 10 / 10, the académie's share
/// capped at 5 000 € a year.
fn second_degre() -> Value {
    json!({
        "model": "tripartite-second-degre",
        "parties": {
            "academie": { "org": "academie:24", "signatory": {
                "name": "M. Antoine Leroy", "quality": "délégué de région académique au numérique éducatif",
                "delegation": "arrêté n° 2025-07", "delegation_date": "2025-06-30" } },
            "collectivite": { "org": "departement:94", "signatory": {
                "name": "Mme Sophie Bernard", "quality": "vice-présidente chargée des collèges",
                "delegation": "arrêté n° 2025-118", "delegation_date": "2025-07-01",
                "act_number": "2026-3-12", "act_date": "2026-06-15" } },
            "etablissement": { "org": "0940999A", "signatory": {
                "name": "M. Paul Girard", "quality": "principal",
                "act_number": "2026-14", "act_date": "2026-06-20" } }
        },
        "start_date": "2026-09-01",
        "parameters": {
            "accounts": 650, "part_collectivite": 80, "part_academie": 10, "part_etablissement": 10,
            "plafond_participation_academie": 500_000
        }
    })
}

/// The premier degré's tripartite of the école Doisneau (Fresnes) from 1 September 2026: 250
/// accounts, the académie paying 20 % capped at 12 000 € a year.
fn premier_degre() -> Value {
    let mut body = tripartite("2026-09-01");
    body["parameters"]["part_collectivite"] = json!(80);
    body["parameters"]["part_academie"] = json!(20);
    body["parameters"]["plafond_participation_academie"] = json!(1_200_000);
    body
}

/// The groupement de commandes of the département and the commune of Fresnes, coordinated by the
/// département: its convention constitutive, drafted as the groupement's flow drafts it.
fn groupement() -> Value {
    json!({
        "model": "groupement-de-commandes",
        "parties": { "coordinateur": "departement:94", "membre": ["commune:94034"] },
        "start_date": "2026-09-01",
    })
}

/// The four models drafted in edition `edition` (second degré, premier degré, bipartite,
/// groupement, in this order, so that their references are the same on each backend): their ids.
async fn drafted_in_edition(c: &Cycle, edition: i64) -> [String; 4] {
    let id = |conv: Value| conv["id"].as_str().unwrap().to_string();
    let second = id(c.create(second_degre()).await);
    let premier = id(c.create(premier_degre()).await);
    let bipartite = id(c.create(bipartite_capped("2026-09-01")).await);
    let groupement = common::fixtures::constitutive(&c.db.store, groupement()).await;
    let ids = [second, premier, bipartite, groupement];
    for id in &ids {
        written_in_edition(c, id, edition).await;
    }
    ids
}

/// The SHA-256 of each model's text in edition 11 (second degré, premier degré, bipartite,
/// groupement), as it shipped: a change to any of them is a change to a text signed in edition 11.
const EDITION_11: [&str; 4] = [
    "b8aced713ec7b28b055c6ff0eb7bdcfc460836eacc8bc1af9473acfb9a67ae06",
    "e066df7d75883f42a1679ff609cf8e56d84e70367eb1b2e617277c4ec7f79519",
    "5551d984f590052059a421c8f0729193ee4c8fff88b5f0cf9dc2af186e3df240",
    "5c736b6445174e63ede0da013d6c92486be8709c287321be29245dc5eb7374ea",
];

// Each model drafted in edition 11 renders the text edition 11 shipped, byte for byte: its hash
// is the one pinned. The tripartites and the bipartite are then submitted and signed by every
// party: their signatures bind that hash, and it re-derives from their stored text.
backend_test!(edition_11_renders_each_model_byte_for_byte_as_it_shipped);
async fn edition_11_renders_each_model_byte_for_byte_as_it_shipped(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let college = second_degre_world(&c).await;
    let ids = drafted_in_edition(&c, 11).await;
    for (id, pinned) in ids.iter().zip(EDITION_11) {
        let (conv, hash) = rederived(&c, id).await;
        assert_eq!(hash, pinned, "{name}: {} in edition 11", conv.model_id);
    }
    let [second, premier, bipartite, _] = &ids;
    let steps = [
        (&c.dan, "submit"),
        (&college.juriste, "visa"),
        (&c.dan, "sign"),
        (&college.cd, "sign"),
        (&college.principal, "sign"),
    ];
    for (who, action) in steps {
        c.step_ok(who, second, action, json!({})).await;
    }
    c.step_ok(&c.dan, premier, "submit", json!({})).await;
    c.signed_by_all(premier).await;
    bipartite_submitted_and_signed(&c, bipartite).await;
    for (id, pinned) in ids[..3].iter().zip(EDITION_11) {
        let (conv, hash) = rederived(&c, id).await;
        assert_eq!(conv.status.label(), "en vigueur", "{name}: {}", conv.model_id);
        assert_eq!(conv.document_hash.as_deref(), Some(pinned), "{name}: {} signed in edition 11", conv.model_id);
        assert_eq!(hash, pinned, "{name}: {} re-derives", conv.model_id);
    }
}

// The collège's tripartite drafted now is written in edition 12 and reads as a lawyer would have
// it: the EPLE represented by its chef d'établissement, its executive (L. 421-3, R. 421-9); the
// département's own article (L. 213-2), not the région's; the cost shared toutes taxes comprises,
// the excess over the académie's ceiling left to the département, the établissement's share on
// the same base with its titre de recettes, and its cost line saying so; « l'article 32 du RGPD »;
// the processor's register kept « pour le compte du responsable de traitement »; the
// sub-processors in one clause; the controller « en la personne de son chef d'établissement ».
// Written in edition 11, the same draft reads as edition 11 shipped.
backend_test!(a_second_degre_draft_of_edition_12_designates_the_eple_and_its_collectivite_as_the_law_does);
async fn a_second_degre_draft_of_edition_12_designates_the_eple_and_its_collectivite_as_the_law_does(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    second_degre_world(&c).await;
    let id = c.create(second_degre()).await["id"].as_str().unwrap().to_string();
    assert_eq!(rederived(&c, &id).await.0.document_edition, 12, "{name}: a draft is written in edition 12");
    let html = document_text(&c, &id).await;
    let fixed = [
        "et le Collège des Essais, établissement public local d'enseignement, représenté par son chef \
         d'établissement, M. Paul Girard, principal, agissant en qualité d'organe exécutif de l'établissement \
         (articles L. 421-3 et R. 421-9 du code de l'éducation), dûment habilité par délibération du conseil \
         d'administration n° 2026-14 du 20 juin 2026 (article R. 421-20 du code de l'éducation), ci-après dénommé \
         « l'établissement ».",
        "Vu le code de l'éducation, notamment son article L. 213-2 relatif aux charges du département pour les \
         collèges, dont l'acquisition et la maintenance des équipements et logiciels nécessaires à l'enseignement et \
         aux échanges entre les membres de la communauté éducative, ses articles L. 421-3 et R. 421-9 relatifs au \
         chef d'établissement, organe exécutif de l'établissement public local d'enseignement, et son article \
         R. 421-20 relatif aux compétences du conseil d'administration",
        "la collectivité de rattachement qui, en application de l'article L. 213-2 du code de l'éducation,",
        "la communauté éducative (article L. 213-2 du code de l'éducation)",
        "Le chef d'établissement la signe, en sa qualité d'organe exécutif de l'établissement (articles L. 421-3 et \
         R. 421-9 du code de l'éducation), après accord du conseil d'administration",
        "<dt>Nombre minimal de réunions du comité de pilotage par an</dt><dd>1</dd>",
        "et communiquer leurs coordonnées aux autres parties",
        "Le coût toutes taxes comprises du service ENT, comprenant",
        "Aucune somme n'est due par l'académie au-delà du plafond de l'année scolaire ; le surplus demeure à la \
         charge de la collectivité.",
        "La participation de l'établissement s'applique au montant toutes taxes comprises effectivement payé par la \
         collectivité au titulaire du marché pour le service ENT de l'établissement",
        "l'établissement le paie sur son budget dans un délai de trente jours à compter de sa réception.",
        "prévues à l'article 32 du RGPD, l'assistance",
        "le registre des catégories d'activités effectuées pour le compte du responsable de traitement.",
        "<td>participation financière au coût du service (abonnement, hébergement, maintenance et support de niveau \
         3), dans les conditions fixées à l'article 5</td><td>10 %</td>",
        "<dd>Collège des Essais (l'établissement), en la personne de son chef d'établissement</dd>",
        "(choix imposé de services, exploitation des traces), celle qui les détermine ainsi devient responsable \
         conjoint",
        "Sous-traitants ultérieurs : l'éditeur de la solution, Éditeur ENT SAS, et l'hébergeur, Hébergeur Souverain \
         SA. Le sous-traitant",
        "Obligations du responsable de traitement : il fournit au sous-traitant les données nécessaires au \
         traitement, documente par écrit toute instruction",
    ];
    let shipped = [
        "L. 214-6",
        "éditeur de la solution : ",
        "et à communiquer",
        "pour son compte.",
        "prévues à l'article 32, ",
        "participation éventuelle aux services optionnels",
        "état annuel des coûts constatés",
        "elles deviennent responsables conjoints",
        "<dt>Réunions du comité de pilotage par an</dt>",
    ];
    reads(name, "edition 12, second degré", &html, &fixed, &shipped);

    written_in_edition(&c, &id, 11).await;
    let html = document_text(&c, &id).await;
    reads(name, "edition 11, second degré", &html, &shipped, &fixed);
}

// The premier degré's tripartite and the bipartite drafted now: their « Caractéristiques » name
// the party « les services académiques » as the document does, their RGPD notes too; the
// financial article leaves the excess over the ceiling to the collectivité; with no tenant, the
// sub-processors still to name read « l'éditeur de la solution (à compléter) et l'hébergeur (à
// compléter) ». Written in edition 11, they read as edition 11 shipped.
backend_test!(the_services_academiques_are_named_so_in_the_labels_of_edition_12);
async fn the_services_academiques_are_named_so_in_the_labels_of_edition_12(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let premier = c.create(premier_degre()).await["id"].as_str().unwrap().to_string();
    let bipartite = c.create(bipartite_capped("2026-09-01")).await["id"].as_str().unwrap().to_string();
    let fixed = [
        "<dt>Part des services académiques dans le coût du service</dt>",
        "<dt>Plafond annuel de la participation des services académiques</dt>",
        "quel que soit le signataire pour les services académiques",
        "Aucune somme n'est due par les services académiques au-delà du plafond de l'année scolaire ; le surplus \
         demeure à la charge de la collectivité.",
        "Sous-traitants ultérieurs : l'éditeur de la solution (à compléter) et l'hébergeur (à compléter).",
        "prévues à l'article 32 du RGPD, l'assistance",
    ];
    let shipped = [
        "<dt>Part de l'académie dans le coût du service</dt>",
        "<dt>Plafond annuel de la participation de l'académie</dt>",
        "quel que soit le signataire pour l'académie",
        "Sous-traitants ultérieurs : éditeur de la solution : à compléter ; hébergeur : à compléter.",
    ];
    for id in [&premier, &bipartite] {
        let html = document_text(&c, id).await;
        reads(name, "edition 12", &html, &fixed, &shipped);
        written_in_edition(&c, id, 11).await;
        let html = document_text(&c, id).await;
        reads(name, "edition 11", &html, &shipped, &fixed);
    }
}

migration_test!(the_edition_12_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 12);
