//! Edition 10 of the conventions' text (domain review 41): an avenant whose only change is the
//! services of the art. 28 annex names them in its « Objet », restates the annex and is submitted
//! and signed (F2); a tripartite's article 5 states the académie's money share with its ceiling
//! in letters and figures, its proration and its payment, and its cost annex a financial
//! participation (F4); the second degré's art. 28 annex lists its persons and data once and names
//! the ENT of the établissement (F9). Edition 9 renders as it shipped and its signed hash
//! re-derives.

use super::*;

/// The tenant `slug` of the école or collège `org` (bouquet `bouquet`) requested with `options`
/// by an administrator, through the capability (nothing reconciled): created, or changed.
pub(super) async fn tenant_with(db: &common::TestDb, slug: &str, org: &str, bouquet: &str, options: Value) {
    let mut tenant = crate::tenants::doc(slug, org, &format!("{slug}.ent.example.fr"));
    tenant["spec"]["bouquet"] = json!(bouquet);
    tenant["spec"]["options"] = options;
    let state = common::app::app_state(db.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let tenant: entcp::tenants::EntTenant = serde_json::from_value(tenant).unwrap();
    entcp::tenants::apply(&state.tenants(), &common::admin(), &tenant, None).await.unwrap();
}

/// The section of `html` from the heading `title` (set in French typography) to the next heading.
pub(super) fn section<'h>(html: &'h str, title: &str) -> &'h str {
    let heading = format!("<h2>{}</h2>", french(title));
    let start = html.find(&heading).unwrap_or_else(|| panic!("no « {title} »: {html}"));
    let rest = &html[start + heading.len()..];
    rest.find("<h2>").map_or(rest, |end| &rest[..end])
}

// F2. A bipartite académie – Fresnes signed while the ENT of the école Doisneau ran the socle
// alone; an avenant drafted then changes nothing and is refused (422). The collectivité adds the
// visio and Moodle options to the tenant: the same avenant's « Objet » names the services added
// to the art. 28 annex and the data that follow, its « Stipulations modifiées » restate the
// annex's services, and it is submitted (200) and signed by both parties, its hash re-deriving.
// Written in edition 9, the same avenant says it modifies nothing and is refused, as it shipped.
backend_test!(an_avenant_whose_only_change_is_the_services_of_the_art_28_annex_names_them_and_is_signed);
async fn an_avenant_whose_only_change_is_the_services_of_the_art_28_annex_names_them_and_is_signed(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    tenant_with(&c.db, "fresnes-doisneau", "0940176F", "socle-1d", json!([])).await;
    let id = bipartite_signed(&c, "2026-09-01").await;
    let avenant = c.amended(&id).await;
    let (status, problem) = c.post(&c.dan, &avenant, "submit", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: nothing changes yet: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("aucune modification"), "{name}: {problem}");
    assert!(detail.contains("services de l'annexe relative à l'article 28 du RGPD"), "{name}: {problem}");

    tenant_with(&c.db, "fresnes-doisneau", "0940176F", "socle-1d", json!(["visio", "moodle"])).await;
    let objet = [
        "Le présent avenant a pour objet de modifier la convention",
        "services ajoutés à l'annexe relative à l'article 28 du RGPD : Visioconférence ; Exercices et parcours \
         (Moodle)",
        "types de données ajoutés à l'annexe relative à l'article 28 du RGPD : Nom affiché des participants ; Image et \
         voix des participants (flux non enregistrés par défaut) ; Adresse IP et journaux techniques des sessions ; \
         Identité et classe des élèves ; Réponses, scores et progression des élèves",
        "Les stipulations suivantes de l'annexe relative à l'article 28 du RGPD (clauses de sous-traitance) sont \
         désormais ainsi rédigées :",
        "les données à caractère personnel de l'ENT des écoles couvertes, du",
    ];
    let nothing = ["ne modifie aucune stipulation"];
    let html = document_text(&c, &avenant).await;
    reads(name, "edition 10", &html, &objet, &nothing);
    let stipulations = section(&html, "Article 2 – Stipulations modifiées");
    let restated = ["Visioconférence ; Exercices et parcours (Moodle).", "Types de données : "];
    reads(name, "the annex restated", stipulations, &restated, &[]);

    written_in_edition(&c, &avenant, 9).await;
    let html = document_text(&c, &avenant).await;
    reads(name, "edition 9 as it shipped", &html, &nothing, &[objet[1]]);
    let (status, problem) = c.post(&c.dan, &avenant, "submit", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: edition 9 compares no annex: {problem}");
    written_in_edition(&c, &avenant, 10).await;

    c.step_ok(&c.dan, &avenant, "submit", json!({})).await;
    for who in [&c.mairie, &c.dan] {
        c.step_ok(who, &avenant, "sign", json!({})).await;
    }
    let (conv, hash) = rederived(&c, &avenant).await;
    assert!(matches!(conv.status, entcp::conventions::Status::Signed | entcp::conventions::Status::Active), "{name}");
    assert_eq!(Some(hash), conv.document_hash, "{name}: the signed avenant's hash re-derives");
    let signed = c.dan.get(c.url(&format!("/{avenant}/signed-document"))).send().await.text.replace("&#x27;", "'");
    reads(name, "the signed copy", &signed, &objet[..2], &nothing);
}

/// The tripartite premier degré from 4 January 2027 whose académie pays 10 %, capped at
/// 12 345,67 € a year.
fn paying_tripartite() -> Value {
    let mut body = tripartite("2027-01-04");
    body["parameters"]["part_collectivite"] = json!(90);
    body["parameters"]["part_academie"] = json!(10);
    body["parameters"]["plafond_participation_academie"] = json!(1_234_567);
    body
}

/// What article 5 of an edition-10 tripartite says of the académie's ceiling, whoever it names.
pub(super) const CEILING: [&str; 3] = [
    "elle ne peut excéder, par année scolaire, douze mille trois cent quarante-cinq euros et soixante-sept centimes \
     (12 345,67 €) toutes taxes comprises.",
    "ce plafond est réduit au prorata du nombre de mois de l'année scolaire couverts par la convention : il est égal à \
     autant de douzièmes du plafond annuel que de mois couverts, arrondi au centime inférieur, un mois étant couvert \
     lorsque la convention est en vigueur le 15 de ce mois.",
    "Aucune somme n'est due au-delà du plafond de l'année scolaire.",
];

/// The cost annex's line of an académie paying money, from edition 10.
const FINANCIAL: &str = "participation financière au coût du service (abonnement, hébergement, maintenance et support \
                         de niveau 3), dans la limite du plafond annuel fixé à l'article 5";

/// The cost annex's line of the académie's contributions in kind, as the files word it.
const IN_KIND: &str =
    "participation éventuelle au coût du service (identité, accompagnement et support de niveau 2 fournis en nature)";

// F4. A tripartite premier degré whose académie pays 10 % capped at 12 345,67 €: edition 10's
// article 5 states the share within the ceiling, the base, the ceiling in letters and figures TTC,
// the proration by twelfths to the cent below and the payment by the services académiques, and
// its cost annex a financial participation within that ceiling. The same convention written in
// edition 9 reads article 5 as its file (an uncapped 10 %), is submitted, signed by the three
// parties, and its hash re-derives.
backend_test!(edition_10_states_the_academie_s_ceiling_and_its_proration_in_the_tripartite_s_article_5);
async fn edition_10_states_the_academie_s_ceiling_and_its_proration_in_the_tripartite_s_article_5(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(paying_tripartite()).await["id"].as_str().unwrap().to_string();
    written_in_edition(&c, &id, 10).await;
    let html = document_text(&c, &id).await;
    let article = section(&html, "Article 5 – Dispositions financières");
    let mut said = vec![
        "90 % à la charge de la collectivité et 10 % à la charge des services académiques, dans la limite du plafond \
         annuel fixé ci-après.",
        "La participation des services académiques s'applique au montant toutes taxes comprises effectivement payé \
         par la collectivité au titulaire du marché pour le service ENT de l'école, année scolaire par année \
         scolaire, du 1er septembre au 31 août",
        "la collectivité émet à l'encontre des services académiques un titre de recettes",
        "les services académiques le paient dans un délai de trente jours à compter de sa réception, sur les crédits \
         du programme budgétaire dont ils relèvent.",
        "L'école ne supporte aucune charge financière au titre de la présente convention.",
    ];
    said.extend(CEILING);
    reads(name, "edition 10, article 5", article, &said, &[]);
    let costs = section(&html, "Annexe – Répartition des coûts");
    reads(name, "edition 10, cost annex", costs, &[FINANCIAL], &[IN_KIND]);
    // An académie paying nothing: no ceiling, the contributions in kind, as the file says them.
    let in_kind = c.create(tripartite("2026-09-01")).await["id"].as_str().unwrap().to_string();
    written_in_edition(&c, &in_kind, 10).await;
    let html = document_text(&c, &in_kind).await;
    let article = section(&html, "Article 5 – Dispositions financières");
    reads(name, "no money share", article, &["0 % à la charge des services académiques.</p>"], &CEILING);
    reads(name, "no money share", section(&html, "Annexe – Répartition des coûts"), &[IN_KIND], &[FINANCIAL]);

    written_in_edition(&c, &id, 9).await;
    let html = document_text(&c, &id).await;
    let article = section(&html, "Article 5 – Dispositions financières");
    let shipped = ["90 % à la charge de la collectivité et 10 % à la charge des services académiques.</p>"];
    reads(name, "edition 9, article 5", article, &shipped, &CEILING);
    reads(name, "edition 9, cost annex", section(&html, "Annexe – Répartition des coûts"), &[IN_KIND], &[FINANCIAL]);
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let (conv, hash) = rederived(&c, &id).await;
    assert_eq!(conv.document_edition, 9, "{name}");
    assert_eq!(Some(hash), conv.document_hash, "{name}: the hash edition 9 signed re-derives");
}

/// Edits the convention `id` as `dan` (If-Match of its current version).
async fn edited(dan: &Client, id: &str, patch: Value) {
    let url = format!("/api/v1/conventions/{id}");
    let version = call(dan.get(&url)).await.1["version"].as_i64().unwrap();
    let (s, body) = call(dan.patch(&url).header("if-match", format!("\"{version}\"")).json(&patch)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

// F4 and F9 in the second degré. A collège's tripartite whose académie pays 10 % capped at
// 12 345,67 €: article 5 states the ceiling, the proration and the payment by l'académie, the titre
// de recettes on a statement of costs left to the établissement's share. Its art. 28 annex lists
// the personnels once and the casiers' sender and recipient within the messagerie's, and names the
// ENT « de l'établissement », not « des écoles et établissements couverts ». Edition 9 keeps both.
backend_test!(edition_10_words_the_second_degre_article_5_and_lists_its_annex_once);
async fn edition_10_words_the_second_degre_article_5_and_lists_its_annex_once(db: crate::common::TestDb) {
    let name = db.name;
    let (_app, dan, id) = college_tenant_draft(&db, "college-dix", json!(["visio"])).await;
    let shares = json!({ "part_collectivite": 90, "part_academie": 10, "plafond_participation_academie": 1_234_567 });
    edited(&dan, &id, json!({ "parameters": shares })).await;
    let edition_10 = "UPDATE conventions SET document_edition = 10 WHERE id = $1";
    sqlx::query(edition_10).bind(&id).execute(db.store.pool()).await.unwrap();
    let document = || async { dan.get(format!("/api/v1/conventions/{id}/document")).send().await.text };
    let html = document().await.replace("&#x27;", "'");
    let article = section(&html, "Article 5 – Dispositions financières");
    let mut said = vec![
        "90 % à la charge de la collectivité, 10 % à la charge de l'académie, dans la limite du plafond annuel fixé \
         ci-après, et 0 % à la charge de l'établissement.",
        "pour le service ENT de l'établissement, année scolaire par année scolaire",
        "l'académie le paie dans un délai de trente jours à compter de sa réception, sur les crédits du programme \
         budgétaire dont elle relève.",
        "Toute participation financière de l'établissement fait l'objet d'un titre de recettes émis par la \
         collectivité, sur présentation d'un état annuel des coûts constatés.",
    ];
    said.extend(CEILING);
    reads(name, "edition 10, article 5", article, &said, &["de l'académie ou de l'établissement"]);
    reads(name, "edition 10, cost annex", section(&html, "Annexe – Répartition des coûts"), &[FINANCIAL], &[IN_KIND]);
    let annex = section(&html, "Annexe – Clauses de sous-traitance (article 28, paragraphe 3, du RGPD)");
    let once = [
        "les données à caractère personnel de l'ENT de l'établissement, du 1er septembre 2026",
        "Catégories de personnes concernées : élèves (mineurs) ; responsables légaux ; personnels.",
        "Identité et identifiant ENT de l'expéditeur et des destinataires",
    ];
    let twice = [
        "personnels enseignants",
        "Identité de l'expéditeur et du destinataire",
        "des écoles et établissements couverts",
    ];
    reads(name, "edition 10, art. 28 annex", annex, &once, &twice);

    let edition_9 = "UPDATE conventions SET document_edition = 9 WHERE id = $1";
    sqlx::query(edition_9).bind(&id).execute(db.store.pool()).await.unwrap();
    let html = document().await.replace("&#x27;", "'");
    let article = section(&html, "Article 5 – Dispositions financières");
    let shipped = [
        "90 % à la charge de la collectivité, 10 % à la charge de l'académie et 0 % à la charge de l'établissement.",
        "Toute participation financière de l'académie ou de l'établissement fait l'objet d'un titre de recettes",
    ];
    reads(name, "edition 9, article 5", article, &shipped, &CEILING);
    let annex = section(&html, "Annexe – Clauses de sous-traitance (article 28, paragraphe 3, du RGPD)");
    let as_shipped = [
        "Catégories de personnes concernées : élèves (mineurs) ; responsables légaux ; personnels ; personnels \
         enseignants ; personnels enseignants et documentalistes.",
        "Identité de l'expéditeur et du destinataire",
        "de l'ENT des écoles et établissements couverts",
    ];
    reads(name, "edition 9, art. 28 annex", annex, &as_shipped, &[once[0]]);
}

migration_test!(the_edition_10_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 10);
