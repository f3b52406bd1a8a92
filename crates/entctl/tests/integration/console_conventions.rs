//! The « Conventions » and « ENT » screens of the web console in process: a DAN creates
//! a tripartite convention for an école of the sample annuaire and submits it, its parties
//! sign it on the fingerprint the page shows (the API's), another commune sees none of it
//! (a forged address answers 404 like a missing one); a tenant requested and moved to
//! provisioning through the pages, the governance gate's refusal shown as it is.

use crate::common;
use crate::console::{
    add_person, assert_refusal_announced, follow, get, key_of, page_showing, post_form, sign_in, summary_links,
};
use crate::console_tickets::envoi_of;

use common::{TestApp, TestDb};
use entcp::kernel::roles::Role;
use serde_json::json;
use sha2::Digest;

pub(crate) const DAN: &str = "dan@ac-creteil.fr";
pub(crate) const MAIRIE: &str = "ent@fresnes.fr";
pub(crate) const DIRECTEUR: &str = "dir@ecole.fr";
pub(crate) const VITRY: &str = "ent@vitry.fr";
const ROOT: &str = "root@test.fr";

/// The sample annuaire; the DAN of Créteil, the mairies of Fresnes and Vitry, the
/// directeur of the école Robert Doisneau (Fresnes) and an admin, all with [`crate::console::PASSWORD`].
pub(crate) async fn fresnes(db: TestDb) -> TestApp {
    common::import_sample(&db.store).await;
    let mut app = TestApp::builder(db).build().await;
    let users = [
        (DAN, Role::Dan, Some("academie:24")),
        (MAIRIE, Role::Collectivite, Some("commune:94034")),
        (DIRECTEUR, Role::ChefEtablissement, Some("0940176F")),
        (VITRY, Role::Collectivite, Some("commune:94081")),
        (ROOT, Role::Admin, None),
    ];
    for (email, role, org) in users {
        add_person(&mut app, email, role, org).await;
    }
    app
}

async fn org_id(app: &TestApp, key: &str) -> String {
    entcp::registry::resolve_org(&app.store, key).await.unwrap().id
}

/// The fields of the tripartite convention of the école Robert Doisneau from t0.
async fn doisneau_fields(app: &TestApp) -> Vec<(String, String)> {
    vec![
        ("modele".into(), "tripartite-premier-degre".into()),
        ("partie.academie".into(), org_id(app, "academie:24").await),
        ("partie.collectivite".into(), org_id(app, "commune:94034").await),
        ("partie.etablissement".into(), org_id(app, "0940176F").await),
        ("param.part_collectivite".into(), "100".into()),
        ("param.part_academie".into(), "0".into()),
    ]
    .into_iter()
    .chain(signatory_fields())
    .collect()
}

/// Posts, as `session`, the creation form of [`doisneau_fields`] starting on `start`.
async fn post_doisneau_from(app: &TestApp, session: &str, start: &str) -> common::Resp {
    let mut fields = doisneau_fields(app).await;
    fields.push(("debut".into(), start.into()));
    post_form(app, session, "/conventions/nouvelle", &as_refs(&fields)).await
}

/// The signatory of each party as the creation form takes it (#15: required before submission).
fn signatory_fields() -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for key in ["academie", "collectivite", "etablissement"] {
        for (name, value) in [
            ("nom", "Mme Camille Martin"),
            ("qualite", "représentante habilitée"),
            ("delegation", "arrêté n° 2025-07"),
            ("acte_numero", "2025-42"),
            ("acte_date", "2025-06-30"),
        ] {
            fields.push((format!("signataire.{key}.{name}"), value.to_string()));
        }
    }
    fields
}

fn as_refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The fields of the « Demander un ENT » form: the school `organisation`, the short name `nom`,
/// the address `adresse` and the base bouquet, then `more`.
fn tenant_request<'a>(
    organisation: &'a str,
    nom: &'a str,
    adresse: &'a str,
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("organisation", organisation), ("nom", nom), ("adresse", adresse), ("bouquet", "socle-1d")];
    fields.extend_from_slice(more);
    fields
}

/// The convention id of a page address `/conventions/{id}?…`.
fn id_of(location: &str) -> String {
    key_of(location, "/conventions/")
}

backend_test!(a_form_address_naming_an_organisation_out_of_scope_shows_nothing_of_it);
/// The creation forms preselect the organisations their address names: one out of the person's
/// scope is shown as an id that names nothing (not its name, nor the schools it covers).
async fn a_form_address_naming_an_organisation_out_of_scope_shows_nothing_of_it(db: TestDb) {
    let app = fresnes(db).await;
    let (ecole, mairie) = (org_id(&app, "0940176F").await, org_id(&app, "commune:94034").await);
    let convention = |collectivite: &str, etablissement: &str| {
        format!(
            "/conventions/nouvelle?modele=tripartite-premier-degre&partie.collectivite={collectivite}\
             &partie.etablissement={etablissement}"
        )
    };
    let vitry = sign_in(&app, VITRY).await;
    let forged = get(&app, &vitry, &convention(&mairie, &ecole)).await;
    let unknown = get(&app, &vitry, &convention("inconnue", "inconnue")).await;
    assert_eq!((forged.status, unknown.status), (200, 200), "{}", forged.text);
    let tenant = get(&app, &vitry, &format!("/ent/nouveau?organisation={ecole}")).await;
    assert_eq!(tenant.status, 200, "{}", tenant.text);
    for page in [&forged, &tenant] {
        for hidden in ["Doisneau", "0940176F", &ecole, &mairie] {
            assert!(!page.text.contains(hidden), "{hidden} shown: {}", page.text);
        }
    }

    // The same addresses preselect them for the mairie of Fresnes, whose they are.
    let fresnes = sign_in(&app, MAIRIE).await;
    let own = get(&app, &fresnes, &convention(&mairie, &ecole)).await;
    assert!(own.text.contains("Robert Doisneau (0940176F)"), "covered school shown: {}", own.text);
    let own = get(&app, &fresnes, &format!("/ent/nouveau?organisation={ecole}")).await;
    assert!(own.text.contains(&format!("<option value=\"{ecole}\" selected")), "{}", own.text);
}

backend_test!(a_dan_creates_a_tripartite_convention_in_pages_and_its_parties_sign_the_fingerprint_shown);
async fn a_dan_creates_a_tripartite_convention_in_pages_and_its_parties_sign_the_fingerprint_shown(db: TestDb) {
    let app = fresnes(db).await;
    let dan = sign_in(&app, DAN).await;

    // The model first, then the form; parties found by search in the DAN's scope.
    page_showing(&app, &dan, "/conventions/nouvelle", "id=\"modele-tripartite-premier-degre\"").await;
    let form = get(&app, &dan, "/conventions/nouvelle?modele=tripartite-premier-degre").await;
    assert!(form.text.contains("id=\"param-part_collectivite\""), "{}", form.text);
    let ecole = org_id(&app, "0940176F").await;
    let found = post_form(
        &app,
        &dan,
        "/conventions/nouvelle",
        &[("modele", "tripartite-premier-degre"), ("etape", "rechercher"), ("recherche.etablissement", "Doisneau")],
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(found.text.contains(&format!("<option value=\"{ecole}\"")), "the école proposed: {}", found.text);

    // Without a start date and with an act dated in the future: refused, both messages beside
    // their fields and in the summary, in one round; the party named once (by the field's label).
    let mut fields = doisneau_fields(&app).await;
    let future = with(fields.clone(), "signataire.collectivite.acte_date", "2030-01-01");
    let refused = post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&future)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let links = summary_links(&refused.text);
    assert!(links.iter().any(|(id, _)| id == "signataire-collectivite-acte_date"), "{links:?}");
    assert!(links.iter().any(|(id, _)| id == "start-date"), "{links:?}");
    assert!(!refused.text.contains("la collectivité : la collectivité"), "{}", refused.text);
    let refused = post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&fields)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("href=\"#start-date\""), "summary linked to the field: {}", refused.text);
    assert!(refused.text.contains("id=\"start-date-erreur\""), "{}", refused.text);
    assert!(refused.text.contains(&format!("<option value=\"{ecole}\" selected")), "form kept");
    assert!(refused.text.contains("Robert Doisneau (0940176F)"), "covered school shown: {}", refused.text);

    fields.push(("debut".into(), "2026-09-01".into()));
    let created = post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&fields)).await;
    let page = follow(&app, &dan, &created).await;
    let id = id_of(created.header("location").unwrap());
    assert!(page.text.contains("La convention est créée (brouillon)."), "{}", page.text);
    assert!(page.text.contains("Création du brouillon"), "the timeline");
    assert!(page.text.contains("id=\"document\""), "the document in the page");
    // The draft in HTML and ODT; in PDF only where LibreOffice can convert it.
    assert!(page.text.contains("ODT (brouillon)"), "{}", page.text);
    assert_eq!(page.text.contains("PDF (brouillon)"), entcp::documents::pdf_available(), "{}", page.text);

    let submitted = post_form(&app, &dan, &format!("/conventions/{id}/soumettre"), &[]).await;
    let page = follow(&app, &dan, &submitted).await;
    assert!(page.text.contains("en signature"), "{}", page.text);
    // The DAN's dashboard links the convention awaiting its signature, its day in French.
    let home = get(&app, &dan, "/").await;
    assert!(home.text.contains(&format!("<a href=\"/conventions/{id}\">")), "{}", home.text);
    assert!(home.text.contains("de ce que couvre l&#x27;académie."), "{}", home.text);
    assert!(home.text.contains("Situation au 1er septembre 2026 de ce que"), "{}", home.text);
    // At 0 h 30 in Paris (22 h 30 UTC), the dashboard's day is already the next one.
    app.clock.set(common::t0() + chrono::Duration::minutes(14 * 60 + 30));
    let late = sign_in(&app, DAN).await;
    assert!(get(&app, &late, "/").await.text.contains("Situation au 2 septembre 2026 de ce que"));
    app.clock.set(common::t0());

    // A refusal without its reason: the page again, the message linked; with one, back to draft.
    let directeur = sign_in(&app, DIRECTEUR).await;
    let no_reason = post_form(&app, &directeur, &format!("/conventions/{id}/refuser"), &[("motif", "")]).await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    assert!(no_reason.text.contains("href=\"#motif\""), "{}", no_reason.text);
    // The message is tied to its field (RGAA 11.10): invalid, described by the message beside it.
    let tied = "id=\"motif\" name=\"motif\" rows=\"3\" aria-invalid=\"true\" aria-describedby=\"motif-erreur\"";
    assert!(no_reason.text.contains(tied), "{}", no_reason.text);
    assert!(no_reason.text.contains("id=\"motif-erreur\""), "{}", no_reason.text);
    let refused =
        post_form(&app, &directeur, &format!("/conventions/{id}/refuser"), &[("motif", "Article 3 à revoir")]).await;
    let page = follow(&app, &directeur, &refused).await;
    assert!(
        page.text.contains("Dernier refus : Article 3 à revoir") && page.text.contains("brouillon"),
        "{}",
        page.text
    );
    let page = follow(&app, &dan, &post_form(&app, &dan, &format!("/conventions/{id}/soumettre"), &[]).await).await;

    // The fingerprint the page shows is the API's, and that of the file downloaded.
    let api = app.client(app.token(DAN)).get(format!("/api/v1/conventions/{id}")).send().await;
    let hash = api.body["document_hash"].as_str().unwrap().to_string();
    assert!(page.text.contains(&format!("<code id=\"empreinte\">{hash}</code>")), "{}", page.text);
    let file = get(&app, &dan, &format!("/conventions/{id}/document?format=html")).await;
    assert_eq!(file.status, 200);
    assert_eq!(hex::encode(sha2::Sha256::digest(file.text.as_bytes())), hash);
    // The signed document embedded under the page's « Document » (h2): its headings below it,
    // its tables' headers scoped, its « - » lines a list; the file keeps its own h1 and text.
    let shown = &page.text[page.text.find("id=\"document\"").unwrap()..];
    assert_eq!(page.text.matches("<h1").count(), 1, "one h1, the page's: {}", page.text);
    assert!(shown.contains("<h3>") && shown.contains("<h4>Parties</h4>") && !shown.contains("<h2>"), "{shown}");
    assert!(shown.contains("<th scope=\"col\">") && !shown.contains("<th>"), "{shown}");
    assert!(shown.contains("<ul><li>") && !shown.contains("<br>- "), "{shown}");
    assert!(file.text.contains("<h1>") && file.text.contains("<br>- "), "the file as signed");

    for (who, party) in [(&dan, "Créteil"), (&sign_in(&app, MAIRIE).await, "Fresnes"), (&directeur, "Doisneau")] {
        let page = get(&app, who, &format!("/conventions/{id}")).await;
        assert!(page.text.contains(&hash), "each signer is shown the fingerprint");
        let signs_for = page.text.split("id=\"signataire\">").nth(1).unwrap().split("</p>").next().unwrap();
        assert!(signs_for.contains(party), "{party}: {signs_for}");
        let mut form = vec![("empreinte", hash.as_str())];
        form.extend(crate::common::fixtures::DELEGATION_FORM);
        let done = post_form(&app, who, &format!("/conventions/{id}/signer"), &form).await;
        let after = follow(&app, who, &done).await;
        assert!(after.text.contains("Votre signature est enregistrée."), "{}", after.text);
    }
    let page = get(&app, &dan, &format!("/conventions/{id}")).await;
    assert!(page.text.contains("en vigueur"), "{}", page.text);
    assert_eq!(page.text.matches("Signature pour ").count(), 3, "three signatures in the timeline");
    // Domain review 39, G7: each party named as the documents name it.
    assert!(page.text.contains("Signature pour la Commune de Fresnes ("), "{}", page.text);
    assert!(page.text.contains("Responsable de traitement : la DSDEN du Val-de-Marne."), "{}", page.text);
    // Signing again: the workflow's refusal shown on the page.
    let again = post_form(&app, &dan, &format!("/conventions/{id}/signer"), &[("empreinte", &hash)]).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains("Action refusée"), "{}", again.text);

    // An avenant opens as a new draft; a résiliation needs its reason.
    let amended = post_form(&app, &dan, &format!("/conventions/{id}/avenant"), &[]).await;
    let avenant = follow(&app, &dan, &amended).await;
    // Its title is its document's, numbered (« Avenant n° 1 à la convention « … » (…) »).
    let numbered = avenant.text.contains("Avenant n") && avenant.text.contains("1 à la convention");
    assert!(numbered && !avenant.text.contains("Avenant – ") && avenant.text.contains("brouillon"), "{}", avenant.text);
    assert_ne!(id_of(amended.header("location").unwrap()), id);
    let no_reason = post_form(&app, &dan, &format!("/conventions/{id}/resilier"), &[("resiliation", "")]).await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    assert!(no_reason.text.contains("href=\"#resiliation\""), "{}", no_reason.text);
    assert!(
        no_reason.text.contains("aria-invalid=\"true\" aria-describedby=\"resiliation-erreur\""),
        "{}",
        no_reason.text
    );
    // Under the model's notice of three months, an earlier date is refused beside its field, the
    // form kept; agreed by every party (the box ticked), the résiliation takes effect today.
    let form = get(&app, &dan, &format!("/conventions/{id}")).await;
    assert!(form.text.contains("préavis de 3 mois"), "{}", form.text);
    assert!(!form.text.contains("id=\"accord\""), "a party does not record a mutual agreement: {}", form.text);
    let early = [("resiliation", "Fermeture"), ("effet", "2026-09-02")];
    let early = post_form(&app, &dan, &format!("/conventions/{id}/resilier"), &early).await;
    assert_eq!(early.status, 422, "{}", early.text);
    assert!(early.text.contains("href=\"#effet\"") && early.text.contains("id=\"effet-erreur\""), "{}", early.text);
    assert!(
        early
            .text
            .contains("name=\"effet\" value=\"2026-09-02\" aria-invalid=\"true\" aria-describedby=\"effet-erreur\""),
        "{}",
        early.text
    );
    assert!(early.text.contains("au plus tôt le 1er décembre 2026"), "{}", early.text);
    assert!(early.text.contains(">Fermeture</textarea>"), "the reason kept: {}", early.text);
    let agreed = [("resiliation", "Fermeture"), ("accord", "1")];
    let forged = post_form(&app, &dan, &format!("/conventions/{id}/resilier"), &agreed).await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    let root = sign_in(&app, ROOT).await;
    let form = get(&app, &root, &format!("/conventions/{id}")).await;
    assert!(form.text.contains("id=\"accord\""), "an administrator records it: {}", form.text);
    let ended = post_form(&app, &root, &format!("/conventions/{id}/resilier"), &agreed).await;
    let page = follow(&app, &dan, &ended).await;
    // Dated when recorded (domain review 38, G7), the day it takes effect said.
    let recorded = "Résiliation enregistrée : Fermeture ; prend effet le";
    assert!(page.text.contains(recorded) && page.text.contains("résiliée"), "{}", page.text);

    // Another commune: the convention is neither listed nor revealed (the 404 of a missing one).
    let vitry = sign_in(&app, VITRY).await;
    let reference = api.body["reference"].as_str().unwrap();
    let listed = get(&app, &vitry, "/conventions").await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(reference));
    assert!(get(&app, &dan, "/conventions").await.text.contains(reference), "the DAN's list has it");
    assert!(get(&app, &dan, &format!("/conventions?statut=terminated&q={reference}")).await.text.contains(reference));
    assert!(!get(&app, &dan, "/conventions?statut=draft").await.text.contains(reference), "filtered by status");
    let forged = get(&app, &vitry, &format!("/conventions/{id}")).await;
    let missing = get(&app, &vitry, "/conventions/inexistante-0000").await;
    assert_eq!((forged.status, missing.status), (404, 404));
    assert!(!forged.text.contains(reference) && !forged.text.contains("Doisneau"));
    assert_eq!(get(&app, &vitry, &format!("/conventions/{id}/document")).await.status, 404);
    let signed = post_form(&app, &vitry, &format!("/conventions/{id}/signer"), &[]).await;
    assert_eq!(signed.status, 404);
}

// A writing role held at one organisation does not extend to a party where the user only reads
// (DPO): the Vitry mairie's agent, also DPO of Fresnes, neither résilie nor amends the Doisneau
// convention, in the console (which shows it to a DPO) or through the API.
backend_test!(a_writing_role_elsewhere_does_not_let_a_reader_of_a_party_resilier_its_convention);
async fn a_writing_role_elsewhere_does_not_let_a_reader_of_a_party_resilier_its_convention(db: TestDb) {
    let (mut app, id) = fresnes_with_doisneau_in_force(db).await;
    let double = "double@vitry.fr";
    add_person(&mut app, double, Role::Collectivite, Some("commune:94081")).await;
    let user = entcp::identity::get_user(&app.store, double).await.unwrap().unwrap();
    let fresnes = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    let dpo = entcp::identity::UserRole::new(&user.id, Role::Dpo, Some(&fresnes));
    entcp::identity::grant(&app.store, &common::admin(), dpo, common::t0()).await.unwrap();
    let session = sign_in(&app, double).await;

    assert_eq!(get(&app, &session, &format!("/conventions/{id}")).await.status, 200, "a DPO of a party reads it");
    let ended = [("resiliation", "Fermeture"), ("accord", "1")];
    let refused = post_form(&app, &session, &format!("/conventions/{id}/resilier"), &ended).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let refused = post_form(&app, &session, &format!("/conventions/{id}/avenant"), &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let api = app.client(app.token(double));
    let body = json!({ "reason": "Fermeture", "mutual_agreement": true });
    let refused = api.post(format!("/api/v1/conventions/{id}/terminate")).json(&body).send().await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    let conv = app.client(app.token(DAN)).get(format!("/api/v1/conventions/{id}")).send().await;
    assert!(conv.body["termination_effective"].is_null() && conv.body["termination_reason"].is_null(), "{}", conv.text);
}

/// The app of [`fresnes`] with [`doisneau_in_force`]: the app and the convention's id.
async fn fresnes_with_doisneau_in_force(db: TestDb) -> (TestApp, String) {
    let app = fresnes(db).await;
    let id = doisneau_in_force(&app).await;
    (app, id)
}

/// Signs the tripartite convention of the école Robert Doisneau through the API; its id.
async fn doisneau_in_force(app: &TestApp) -> String {
    let id = doisneau_draft_through_api(app).await;
    submit_through_api(app, &id).await;
    sign_through_api(app, &id, &[DAN, MAIRIE, DIRECTEUR]).await;
    id
}

/// The tripartite convention of the école Robert Doisneau, created by the DAN through the API
/// with its signatories: its id.
async fn doisneau_draft_through_api(app: &TestApp) -> String {
    let body = crate::common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": "2026-09-01"
    }));
    let conv = app.client(app.token(DAN)).post("/api/v1/conventions").json(&body).send().await;
    conv.body["id"].as_str().unwrap().to_string()
}

/// Submits the convention `id` to visa and signature through the API, as the DAN.
async fn submit_through_api(app: &TestApp, id: &str) {
    app.client(app.token(DAN)).post(format!("/api/v1/conventions/{id}/submit")).json(&json!({})).send().await;
}

/// Signs the convention `id` through the API as each of `signers`, by delegation: 200 each.
async fn sign_through_api(app: &TestApp, id: &str, signers: &[&str]) {
    for who in signers {
        let signed = app
            .client(app.token(who))
            .post(format!("/api/v1/conventions/{id}/sign"))
            .json(&crate::common::fixtures::by_delegation(json!({})))
            .send()
            .await;
        assert_eq!(signed.status, 200, "{who}: {}", signed.text);
    }
}

/// The value of the first submit button of the form posting to `action` (the one Enter presses).
fn first_submit<'a>(html: &'a str, action: &str) -> &'a str {
    let form = &html[html.find(&format!("action=\"{action}\"")).expect("the form")..];
    let value = &form[form.find("type=\"submit\"").expect("a submit button")..];
    let value = &value[value.find("value=\"").expect("its value") + 7..];
    &value[..value.find('"').unwrap()]
}

backend_test!(enter_in_a_creation_form_submits_it_and_searches_only_from_a_changed_search_box);
async fn enter_in_a_creation_form_submits_it_and_searches_only_from_a_changed_search_box(db: TestDb) {
    let app = fresnes(db).await;
    let dan = sign_in(&app, DAN).await;
    let drafts = || common::count(&app.store, "SELECT COUNT(*) FROM conventions", &[]);

    // « Nouvelle convention »: Enter presses the out-of-sight default button, not « Rechercher ».
    let form = get(&app, &dan, "/conventions/nouvelle?modele=tripartite-premier-degre").await;
    assert_eq!(first_submit(&form.text, "/conventions/nouvelle"), "entree", "{}", form.text);
    // Each party's repeated controls say whose they are (RGAA 11.2).
    for label in ["la collectivité", "l&#x27;école"] {
        let context = format!("<span class=\"fr-sr-only\"> — {label}</span>");
        assert!(form.text.contains(&format!("Organisation retenue (obligatoire){context}")), "{label}: {}", form.text);
        assert!(form.text.contains(&format!("Rechercher{context}</button>")), "{label}: {}", form.text);
        assert!(
            form.text.contains(&format!("Qualité (ex. « maire », « rectrice de l&#x27;académie »){context}")),
            "{label}"
        );
    }
    // Enter after typing in a search box: a search, nothing created.
    let ecole = org_id(&app, "0940176F").await;
    let mut fields = doisneau_fields(&app).await;
    fields.extend([("debut".to_string(), "2026-09-01".to_string()), ("etape".into(), "entree".into())]);
    // The search box typed in, and the value it showed.
    let searching = |shown: &str| {
        let mut typed = fields.clone();
        typed.extend([
            ("recherche.etablissement".into(), "Doisneau".into()),
            ("vue.recherche.etablissement".into(), shown.into()),
        ]);
        typed
    };
    let searched = post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&searching(""))).await;
    assert_eq!(searched.status, 200, "{}", searched.text);
    assert!(searched.text.contains(&format!("<option value=\"{ecole}\" selected")), "{}", searched.text);
    assert!(searched.text.contains("name=\"vue.recherche.etablissement\" value=\"Doisneau\""), "{}", searched.text);
    assert_eq!(drafts().await, 0, "a search creates nothing");
    // Enter elsewhere (the search box as it was shown): the draft is created.
    let created = post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&searching("Doisneau"))).await;
    assert_eq!(created.status, 303, "{}", created.text);
    assert!(created.header("location").unwrap().ends_with("?apres=creee"), "{:?}", created.header("location"));
    assert_eq!(drafts().await, 1);

    // « Demander un ENT » likewise.
    let form = get(&app, &dan, "/ent/nouveau").await;
    assert_eq!(first_submit(&form.text, "/ent/nouveau"), "entree", "{}", form.text);
    let more = [("etape", "entree"), ("recherche", "Doisneau")];
    let request = tenant_request(&ecole, "doisneau-fresnes", "doisneau.ent.fresnes.example.fr", &more);
    let searched = post_form(&app, &dan, "/ent/nouveau", &[&request[..], &[("vue.recherche", "")]].concat()).await;
    assert_eq!(searched.status, 200, "{}", searched.text);
    assert!(entcp::tenants::get_tenant(&app.store, "doisneau-fresnes").await.unwrap().is_none(), "nothing requested");
    let requested =
        post_form(&app, &dan, "/ent/nouveau", &[&request[..], &[("vue.recherche", "Doisneau")]].concat()).await;
    assert_eq!(requested.header("location"), Some("/ent/doisneau-fresnes?apres=demande"), "{}", requested.text);
}

backend_test!(a_tenant_is_requested_and_moved_to_provisioning_in_pages_once_the_gate_opens);
async fn a_tenant_is_requested_and_moved_to_provisioning_in_pages_once_the_gate_opens(db: TestDb) {
    let app = fresnes(db).await;
    let mairie = sign_in(&app, MAIRIE).await;
    let form = page_showing(&app, &mairie, "/ent/nouveau", "id=\"bouquet-socle-1d\"").await;
    assert!(form.text.contains("Critère d'AIPD") && form.text.contains("oui (données sensibles"), "RGPD facts");
    let ecole = org_id(&app, "0940176F").await;
    let found = post_form(&app, &mairie, "/ent/nouveau", &[("etape", "rechercher"), ("recherche", "Doisneau")]).await;
    assert!(found.text.contains(&format!("<option value=\"{ecole}\"")), "{}", found.text);

    let mut fields = tenant_request(&ecole, "Pas Un Nom", "doisneau.ent.fresnes.example.fr", &[("options", "visio")]);
    let refused = post_form(&app, &mairie, "/ent/nouveau", &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("href=\"#nom\""), "{}", refused.text);
    assert!(refused.text.contains("id=\"options-visio\" name=\"options\" value=\"visio\" checked"), "form kept");
    fields[1] = ("nom", "doisneau-fresnes");
    let requested = post_form(&app, &mairie, "/ent/nouveau", &fields).await;
    assert_eq!(requested.header("location"), Some("/ent/doisneau-fresnes?apres=demande"), "{}", requested.text);
    let page = follow(&app, &mairie, &requested).await;
    assert!(page.text.contains("demandé"), "{}", page.text);
    assert!(!page.text.contains("id=\"vers-provisioning\""), "a commune does not move tenants");
    let forbidden = post_form(&app, &mairie, "/ent/doisneau-fresnes/etat", &[("vers", "provisioning")]).await;
    assert_eq!(forbidden.status, 403);

    // The DAN: the gate refuses while no convention is in force, its reason shown as is.
    let dan = sign_in(&app, DAN).await;
    let page = get(&app, &dan, "/ent/doisneau-fresnes").await;
    assert!(page.text.contains("id=\"vers-provisioning\""), "{}", page.text);
    assert!(!page.text.contains("Objets Kubernetes rendus"), "for admins only");
    let gate = post_form(&app, &dan, "/ent/doisneau-fresnes/etat", &[("vers", "provisioning")]).await;
    assert_eq!(gate.status, 409, "{}", gate.text);
    assert!(gate.text.contains("aucune convention en vigueur ne couvre"), "{}", gate.text);
    doisneau_in_force(&app).await;
    let moved = post_form(&app, &dan, "/ent/doisneau-fresnes/etat", &[("vers", "provisioning")]).await;
    let page = follow(&app, &dan, &moved).await;
    assert!(page.text.contains("L&#x27;ENT est désormais en déploiement."), "{}", page.text);
    assert!(page.text.contains("convention qui a ouvert le déploiement"), "{}", page.text);
    let listed = get(&app, &dan, "/ent?statut=provisioning").await;
    assert!(listed.text.contains(">doisneau-fresnes</a>"), "{}", listed.text);
    assert!(!get(&app, &dan, "/ent?statut=active").await.text.contains(">doisneau-fresnes</a>"));

    // The commune sees it; another commune does not (404 like a missing one); the admin sees its objects.
    assert!(get(&app, &mairie, "/ent").await.text.contains("doisneau-fresnes"));
    let vitry = sign_in(&app, VITRY).await;
    assert!(!get(&app, &vitry, "/ent").await.text.contains("doisneau-fresnes"));
    let forged = get(&app, &vitry, "/ent/doisneau-fresnes").await;
    assert_eq!((forged.status, get(&app, &vitry, "/ent/inexistant").await.status), (404, 404));
    let root = sign_in(&app, ROOT).await;
    let admin_page = get(&app, &root, "/ent/doisneau-fresnes").await;
    assert!(admin_page.text.contains("Objets Kubernetes rendus") && admin_page.text.contains("Deployment"));
}

backend_test!(a_tenant_no_convention_covers_any_more_is_flagged_on_its_page_and_in_the_list);
async fn a_tenant_no_convention_covers_any_more_is_flagged_on_its_page_and_in_the_list(db: TestDb) {
    let app = fresnes(db).await;
    let client = |email: &str| app.client(app.token(email));
    doisneau_in_force(&app).await;
    for (who, slug, school) in [(MAIRIE, "doisneau-fresnes", "0940176F"), (ROOT, "wallon-vitry", "0940198E")] {
        let doc = json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": { "organisation": school, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" } });
        assert_eq!(client(who).post("/api/v1/tenants").json(&doc).send().await.status, 201);
    }
    let moved = client(DAN).post("/api/v1/tenants/doisneau-fresnes/transition").json(&json!({ "to": "provisioning" }));
    assert_eq!(moved.send().await.status, 200);
    let dan = sign_in(&app, DAN).await;
    let page = page_showing(&app, &dan, "/ent/doisneau-fresnes", "convention qui a ouvert le déploiement").await;
    assert!(!page.text.contains("id=\"sans-convention\""), "covered: no warning");

    // The day after the convention's last day, the daily job finds the école uncovered.
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2029-09-01T06:45:00+02:00").unwrap().into());
    let run = client(ROOT).post("/api/v1/jobs/tenants-coverage/run").send().await;
    assert_eq!(run.body["outcome"], "success", "{}", run.text);
    let dan = sign_in(&app, DAN).await;
    let page = page_showing(&app, &dan, "/ent/doisneau-fresnes", "id=\"sans-convention\"").await;
    let warning = &page.text[page.text.find("id=\"sans-convention\"").unwrap()..];
    let warning = &warning[..warning.find("</div>").unwrap()];
    assert!(
        warning.contains("class=\"fr-alert__title\">Sans convention en vigueur (constaté le 1er septembre 2029)</h2>")
    );
    assert!(
        warning.contains("ne couvre plus : 0940176F") && warning.contains("Le plan de contrôle ne suspend pas l'ENT"),
        "{warning}"
    );
    assert!(page.text.contains("<td>plus de convention en vigueur</td>"), "its event, in French: {}", page.text);

    // The list: a badge on its state, and a filter for the tenants without a convention in force.
    let badge = "<strong class=\"fr-badge fr-badge--warning fr-badge--sm\">Sans convention en vigueur \
                 (constaté le 1er septembre 2029)</strong>";
    let list = page_showing(&app, &dan, "/ent", badge).await;
    assert_eq!(list.text.matches(badge).count(), 1, "the requested tenant is not flagged: {}", list.text);
    assert!(list.text.contains("<label class=\"fr-label\" for=\"ent-convention\">Convention</label>"), "{}", list.text);
    assert!(list.text.contains("<option value=\"sans\">sans convention en vigueur</option>"), "{}", list.text);
    let filtered = page_showing(&app, &dan, "/ent?convention=sans", ">doisneau-fresnes</a>").await;
    assert!(!filtered.text.contains(">wallon-vitry</a>"), "{}", filtered.text);
    assert!(get(&app, &dan, "/ent").await.text.contains(">wallon-vitry</a>"));
}

backend_test!(the_request_form_refuses_a_short_name_already_taken_and_changes_nothing);
async fn the_request_form_refuses_a_short_name_already_taken_and_changes_nothing(db: TestDb) {
    let app = fresnes(db).await;
    let ecole = org_id(&app, "0940176F").await;
    let mairie = sign_in(&app, MAIRIE).await;
    let first = tenant_request(&ecole, "doisneau-fresnes", "doisneau.ent.fresnes.example.fr", &[]);
    let requested = post_form(&app, &mairie, "/ent/nouveau", &first).await;
    assert_eq!(requested.header("location"), Some("/ent/doisneau-fresnes?apres=demande"), "{}", requested.text);
    let stored = || async {
        sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT hostname, base_bouquet, options, version FROM tenants WHERE slug = 'doisneau-fresnes'",
        )
        .fetch_one(app.store.pool())
        .await
        .unwrap()
    };
    let before = stored().await;

    // The same short name again, another address and options: refused on the « Nom court » field.
    let again = tenant_request(&ecole, "doisneau-fresnes", "autre.ent.fresnes.example.fr", &[("options", "visio")]);
    for who in [DAN, MAIRIE] {
        let session = sign_in(&app, who).await;
        let refused = post_form(&app, &session, "/ent/nouveau", &again).await;
        assert_eq!(refused.status, 409, "{who}: {}", refused.text);
        assert!(refused.text.contains("href=\"#nom\""), "{}", refused.text);
        assert!(refused.text.contains("id=\"nom-erreur\""), "{}", refused.text);
        assert!(refused.text.contains("est déjà pris"), "{}", refused.text);
        assert!(refused.text.contains("value=\"autre.ent.fresnes.example.fr\""), "what was typed is kept");
        assert_eq!(stored().await, before, "{who}: the existing ENT is unchanged");
    }
    // Another commune naming the slug for its own school hears the same words, its own organisation aside.
    let vitry = sign_in(&app, VITRY).await;
    let own = org_id(&app, "commune:94081").await;
    let fields = tenant_request(&own, "doisneau-fresnes", "x.ent.vitry.example.fr", &[]);
    let refused = post_form(&app, &vitry, "/ent/nouveau", &fields).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("id=\"nom-erreur\""), "{}", refused.text);
    assert_eq!(stored().await, before);
}

/// The `EntTenant` document of the école Robert Doisneau's tenant.
fn doisneau_doc() -> entcp::tenants::EntTenant {
    serde_json::from_value(json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "doisneau-fresnes" },
        "spec": { "organisation": "0940176F", "hostname": "doisneau.ent.fresnes.example.fr", "bouquet": "socle-1d" }
    }))
    .unwrap()
}

backend_test!(suspending_or_removing_an_ent_asks_for_a_confirmation_first);
async fn suspending_or_removing_an_ent_asks_for_a_confirmation_first(db: TestDb) {
    use entcp::tenants::Status;
    let app = fresnes(db).await;
    let state = common::app::app_state(app.store.clone(), common::app::test_config(), app.clock.clone());
    let doc = doisneau_doc();
    let (_, mut tenant) = entcp::tenants::apply(&state.tenants(), &common::admin(), &doc, None).await.unwrap();
    for to in [Status::Provisioning, Status::Active] {
        let step = entcp::tenants::Move::to(to).overriding("essai");
        tenant = entcp::tenants::transition(&state.tenants(), &common::admin(), &tenant, step).await.unwrap();
    }
    let status = || async { entcp::tenants::get_tenant(&app.store, "doisneau-fresnes").await.unwrap().unwrap().status };
    let dan = sign_in(&app, DAN).await;
    let page = get(&app, &dan, "/ent/doisneau-fresnes").await;
    // Neither destructive move is the page's primary button.
    for to in ["suspended", "decommissioning"] {
        let button = format!("class=\"fr-btn fr-btn--secondary\" type=\"submit\" name=\"vers\" value=\"{to}\"");
        assert!(page.text.contains(&button), "{to}: {}", page.text);
    }
    for (to, words) in [("suspended", "n&#x27;y accèdent plus"), ("decommissioning", "pas de retour en arrière")] {
        let asked = post_form(&app, &dan, "/ent/doisneau-fresnes/etat", &[("vers", to)]).await;
        assert_eq!(asked.status, 200, "{}", asked.text);
        assert!(asked.text.contains("Confirmez-vous"), "{}", asked.text);
        assert!(asked.text.contains(words), "{}", asked.text);
        assert!(asked.text.contains(&format!("id=\"confirmer-{to}\"")), "{}", asked.text);
        assert!(asked.text.contains("name=\"confirmation\" value=\"oui\""), "{}", asked.text);
        // The confirmation asks for the reason, required, with its label.
        assert!(asked.text.contains("<label class=\"fr-label\" for=\"motif\">Motif (obligatoire)"), "{}", asked.text);
        assert!(asked.text.contains("type=\"text\" id=\"motif\" name=\"motif\" value=\"\" required"), "{}", asked.text);
        assert_eq!(status().await, Status::Active, "{to}: nothing done before the confirmation");
    }
    // Confirmed without a reason: refused on the « Motif » box, the confirmation shown again.
    let unexplained = [("vers", "suspended"), ("motif", "  "), ("confirmation", "oui")];
    let refused = post_form(&app, &dan, "/ent/doisneau-fresnes/etat", &unexplained).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("id=\"motif-erreur\"") && refused.text.contains("href=\"#motif\""),
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("un motif est obligatoire pour passer un ENT à l&#x27;état « suspendu »"),
        "{}",
        refused.text
    );
    assert!(refused.text.contains("id=\"confirmer-suspended\""), "{}", refused.text);
    assert_eq!(status().await, Status::Active, "nothing done without a reason");
    let confirmed = [("vers", "suspended"), ("motif", "Maintenance du serveur"), ("confirmation", "oui")];
    let moved = post_form(&app, &dan, "/ent/doisneau-fresnes/etat", &confirmed).await;
    assert_eq!(moved.header("location"), Some("/ent/doisneau-fresnes?apres=etat"), "{}", moved.text);
    assert_eq!(status().await, Status::Suspended);
    let told = common::queued_notices(&app.store, "tenant").await;
    assert_eq!(told.len(), 1, "the suspension is told once, in a mail to each recipient");
    assert_eq!(told[0].context["event"], "suspended");
    assert_eq!(told[0].context["reason"], "Maintenance du serveur");
    // The page names events and the observed state in French, not by their codes. The pass the
    // move started may still record what it observed: the state is set again until it stays.
    let mut page = get(&app, &dan, "/ent/doisneau-fresnes").await;
    for _ in 0..50 {
        common::execute(&app.store, "UPDATE tenants SET observed = 'stopped' WHERE slug = 'doisneau-fresnes'", &[])
            .await;
        page = get(&app, &dan, "/ent/doisneau-fresnes").await;
        if page.text.contains("<dd>services arrêtés") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for shown in [
        "<td>demande</td>",
        "<td>état : suspendu</td>",
        "<td>actif → suspendu : Maintenance du serveur</td>",
        "<dd>services arrêtés (suspendu)",
    ] {
        assert!(page.text.contains(shown), "{shown}: {}", page.text);
    }
    assert!(!page.text.contains("<td>created</td>") && !page.text.contains("<dd>stopped"), "{}", page.text);
    // Back to active: no confirmation asked.
    let back = post_form(&app, &dan, "/ent/doisneau-fresnes/etat", &[("vers", "active")]).await;
    assert_eq!(back.status, 303, "{}", back.text);
    assert_eq!(status().await, Status::Active);
    // A commune, which does not move tenants, is refused rather than asked to confirm.
    let mairie = sign_in(&app, MAIRIE).await;
    let refused = post_form(&app, &mairie, "/ent/doisneau-fresnes/etat", &[("vers", "suspended")]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
}

backend_test!(a_tenant_declared_by_a_custom_resource_is_read_only_in_the_console);
async fn a_tenant_declared_by_a_custom_resource_is_read_only_in_the_console(db: TestDb) {
    let app = fresnes(db).await;
    // Declared as `entctl operator` declares the tenant of an EntTenant resource.
    let state = common::app::app_state(app.store.clone(), common::app::test_config(), app.clock.clone());
    let doc = doisneau_doc();
    let by = "EntTenant ecoles/doisneau-fresnes";
    entcp::tenants::apply_declared(&state.tenants(), &common::admin(), &doc, None, Some(by)).await.unwrap();

    let dan = sign_in(&app, DAN).await;
    let page = get(&app, &dan, "/ent/doisneau-fresnes").await;
    assert_eq!(page.status, 200, "{}", page.text);
    // The page shows the resource's name (HTML-escaped by the templates).
    let shown = "EntTenant ecoles&#x2F;doisneau-fresnes";
    assert!(page.text.contains("id=\"lecture-seule\"") && page.text.contains(shown), "{}", page.text);
    assert!(!page.text.contains("id=\"vers-provisioning\""), "no lifecycle form: {}", page.text);
    let refused = post_form(&app, &dan, "/ent/doisneau-fresnes/etat", &[("vers", "provisioning")]).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains(shown), "the reason names the resource: {}", refused.text);
    let tenant = entcp::tenants::get_tenant(&app.store, "doisneau-fresnes").await.unwrap().unwrap();
    assert_eq!(tenant.status, entcp::tenants::Status::Requested);
}

backend_test!(a_convention_form_posted_twice_creates_one_draft_and_another_form_another);
async fn a_convention_form_posted_twice_creates_one_draft_and_another_form_another(db: TestDb) {
    let app = fresnes(db).await;
    let dan = sign_in(&app, DAN).await;
    let title = "Convention envoyée deux fois";
    let form = async || {
        let page = get(&app, &dan, "/conventions/nouvelle?modele=tripartite-premier-degre").await;
        assert_eq!(page.status, 200, "{}", page.text);
        envoi_of(&page.text)
    };
    let mut fields = doisneau_fields(&app).await;
    fields.extend([("debut".into(), "2026-09-01".into()), ("titre".into(), title.into())]);
    let created = async |token: &str| {
        let mut fields = fields.clone();
        fields.push(("_envoi".into(), token.into()));
        post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&fields)).await
    };
    let drafts =
        async || common::count(&app.store, "SELECT COUNT(*) AS n FROM conventions WHERE title = $1", &[title]).await;

    // The same form posted twice (a double click): one draft, both answers lead to it.
    let token = form().await;
    let first = created(&token).await;
    let second = created(&token).await;
    assert_eq!((first.status, second.status), (303, 303), "{} {}", first.text, second.text);
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(drafts().await, 1);

    // Another form: another draft.
    let other = form().await;
    assert_ne!(other, token, "each form its own token");
    let third = created(&other).await;
    assert_eq!(third.status, 303, "{}", third.text);
    assert_ne!(third.header("location"), first.header("location"));
    assert_eq!(drafts().await, 2);
}

backend_test!(an_organisation_page_lists_its_conventions_only_to_the_roles_that_read_them);
async fn an_organisation_page_lists_its_conventions_only_to_the_roles_that_read_them(db: TestDb) {
    let (mut app, id) = fresnes_with_doisneau_in_force(db).await;
    let teacher = "prof@ecole.fr";
    add_person(&mut app, teacher, Role::Usager, Some("0940176F")).await;
    let ecole = format!("/organisations/{}", org_id(&app, "0940176F").await);

    // The directeur reads the école's conventions; a teacher of the école reads its page without them.
    let directeur = get(&app, &sign_in(&app, DIRECTEUR).await, &ecole).await;
    assert!(directeur.text.contains(&format!("href=\"/conventions/{id}\"")), "{}", directeur.text);
    // Its status in French (RGAA 3.x: no code of the API in a page).
    assert!(directeur.text.contains("</a> (en vigueur)") && !directeur.text.contains("(active)"), "{}", directeur.text);
    let page = get(&app, &sign_in(&app, teacher).await, &ecole).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Doisneau"), "{}", page.text);
    assert!(!page.text.contains(&id) && !page.text.contains("id=\"conventions\""), "{}", page.text);
    let api = app.client(app.token(teacher)).get(format!("/api/v1/conventions/{id}")).send().await;
    assert_eq!(api.status, 403, "as the API: {}", api.text);
}

// A bipartite convention renewed tacitly shows the renewal in its circuit; the mairie refuses
// the next renewal from the page (the button then gone), the circuit shows who did and the
// page that it ends at its term; Vitry's mairie, not a party, gets the page of a missing one.
backend_test!(a_party_refuses_the_tacit_renewal_from_the_convention_page_and_the_circuit_shows_renewals);
async fn a_party_refuses_the_tacit_renewal_from_the_convention_page_and_the_circuit_shows_renewals(db: TestDb) {
    let app = fresnes(db).await;
    let client = |email: &str| app.client(app.token(email));
    let id = bipartite_in_force(&app).await;
    let models = entcp::conventions::model::load_models(None).unwrap();
    let term = chrono::DateTime::parse_from_rfc3339("2029-09-01T04:00:00Z").unwrap().to_utc();
    let report = entcp::conventions::jobs::daily(&app.store, &models, term).await.unwrap();
    assert_eq!(report.renewed, 1, "{}", app.backend);

    let mairie = sign_in(&app, MAIRIE).await;
    let page = page_showing(
        &app,
        &mairie,
        &format!("/conventions/{id}"),
        "Échéance du 31 août 2029 : reconduite tacitement jusqu",
    )
    .await;
    assert!(page.text.contains("31 août 2032") && page.text.contains("id=\"non-reconduction\""), "{}", app.backend);

    let vitry = sign_in(&app, VITRY).await;
    let path = format!("/conventions/{id}/non-reconduction");
    let refused = post_form(&app, &vitry, &path, &[("reconduction", "Erreur")]).await;
    assert_eq!(refused.status, 404, "{}: {}", app.backend, refused.text);

    let done = post_form(&app, &mairie, &path, &[("reconduction", "Changement de prestataire")]).await;
    let page = follow(&app, &mairie, &done).await;
    assert!(page.text.contains("La non-reconduction est enregistrée"), "{}", page.text);
    assert!(page.text.contains("Non-reconduction notifiée par"), "{}", page.text);
    assert!(page.text.contains("Changement de prestataire ; la convention prend fin à son terme"), "{}", page.text);
    assert!(!page.text.contains("id=\"non-reconduction\""), "{}: nothing left to refuse", app.backend);
    let api = client(DAN).get(format!("/api/v1/conventions/{id}")).send().await;
    assert_eq!(api.body["non_renewal"]["reason"], "Changement de prestataire", "{}", api.text);
}

/// The commune of Fresnes and a new EPCI of the Val-de-Marne (no member yet).
async fn fresnes_and_grand_orly(app: &TestApp) -> (entcp::registry::Org, entcp::registry::Org) {
    let fresnes = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    let epci = common::fixtures::new_org(
        &app.store,
        entcp::kernel::roles::OrgKind::Epci,
        "Communauté d'agglomération Grand-Orly",
        &common::fixtures::luhn("24940009"),
        Some("94"),
    )
    .await;
    (fresnes, epci)
}

backend_test!(an_epci_agent_sees_on_the_dashboard_and_organisation_pages_only_the_conventions_the_epci_is_party_to);
/// « Chaque partie voit ses conventions » : the agent of an EPCI whose scope holds Fresnes (a
/// member) sees neither on its dashboard nor on Fresnes's or the école's page the tripartite
/// convention of Fresnes's école (the EPCI is no party), as the conventions list; the
/// mairie of Fresnes, a party, sees it on each.
async fn an_epci_agent_sees_on_the_dashboard_and_organisation_pages_only_the_conventions_the_epci_is_party_to(
    db: TestDb,
) {
    let mut app = fresnes(db).await;
    let (fresnes, epci) = fresnes_and_grand_orly(&app).await;
    entcp::registry::manage::set_member(&app.store, &common::admin(), &epci, &fresnes, true, common::t0())
        .await
        .unwrap();
    let agent = "agent@grand-orly.fr";
    add_person(&mut app, agent, Role::Collectivite, Some(&epci.id)).await;
    // In signature: the dashboards list it among those awaiting signature.
    let body = crate::common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": "2026-09-01"
    }));
    let dan = app.client(app.token(DAN));
    let conv = dan.post("/api/v1/conventions").json(&body).send().await;
    let (id, reference) = (conv.body["id"].as_str().unwrap(), conv.body["reference"].as_str().unwrap());
    let submitted = dan.post(format!("/api/v1/conventions/{id}/submit")).json(&json!({})).send().await;
    assert_eq!(submitted.status, 200, "{}", submitted.text);

    let pages = [
        "/".to_string(),
        format!("/organisations/{}", fresnes.id),
        format!("/organisations/{}", org_id(&app, "0940176F").await),
    ];
    let (mairie, agent) = (sign_in(&app, MAIRIE).await, sign_in(&app, agent).await);
    for page in &pages {
        let party = get(&app, &mairie, page).await;
        assert!(party.text.contains(reference), "{page}: the mairie, a party, sees it: {}", party.text);
        let other = get(&app, &agent, page).await;
        assert_eq!(other.status, 200, "{page}: {}", other.text);
        assert!(!other.text.contains(reference) && !other.text.contains(id), "{page}: {}", other.text);
    }
    // The agent reads Fresnes's page (in its scope), its conventions section empty.
    let fresnes_page = get(&app, &agent, &pages[1]).await;
    assert!(fresnes_page.text.contains(&fresnes.name), "{}", fresnes_page.text);
    let dashboard = get(&app, &agent, "/").await;
    assert!(dashboard.text.contains("Tableau de bord — Communauté d"), "its own dashboard: {}", dashboard.text);
    assert!(dashboard.text.contains("Grand-Orly"), "its own dashboard: {}", dashboard.text);
}

backend_test!(an_epci_dashboard_counts_only_the_ecoles_of_the_communes_that_delegated_their_ent);
/// An EPCI funds only the écoles of the communes that delegated their ENT to it (the rule of
/// conventions, awards and the groupement prefill): its dashboard lists none of a member
/// commune's écoles before the delegation, and as many as the prefill after it.
async fn an_epci_dashboard_counts_only_the_ecoles_of_the_communes_that_delegated_their_ent(db: TestDb) {
    let mut app = fresnes(db).await;
    let (fresnes, epci) = fresnes_and_grand_orly(&app).await;
    let agent = "agent@grand-orly.fr";
    add_person(&mut app, agent, Role::Collectivite, Some(&epci.id)).await;
    let listed =
        |page: &str| page.matches("</td><td>oui</td></tr>").count() + page.matches("</td><td>non</td></tr>").count();
    for delegated in [false, true] {
        entcp::registry::manage::set_member(&app.store, &common::admin(), &epci, &fresnes, delegated, common::t0())
            .await
            .unwrap();
        let session = sign_in(&app, agent).await;
        let page = get(&app, &session, "/").await;
        assert_eq!(page.status, 200, "{}: {}", app.backend, page.text);
        let prefill = entcp::groupements::membership::prefill(&app.store, &epci).await.unwrap();
        assert_eq!(listed(&page.text) as i64, prefill.quantities.schools, "{} delegated={delegated}", app.backend);
        assert_eq!(listed(&page.text) > 0, delegated, "{} delegated={delegated}: {}", app.backend, page.text);
    }
}

backend_test!(a_closed_school_counts_neither_in_the_dashboards_nor_in_the_groupement_prefill);
/// The annuaire keeps closed schools: the DAN's département figures and the commune's school
/// list leave them out, as the groupement prefill does, so both screens give the same count.
async fn a_closed_school_counts_neither_in_the_dashboards_nor_in_the_groupement_prefill(db: TestDb) {
    let app = fresnes(db).await;
    let (dan, mairie) = (sign_in(&app, DAN).await, sign_in(&app, MAIRIE).await);
    let in_94 = |text: &str| -> i64 {
        let row = text.split("<tr><th scope=\"row\">Département du Val-de-Marne (94)</th><td>").nth(1);
        let row = row.expect("the row of the Val-de-Marne");
        row.split('<').next().unwrap().parse().unwrap()
    };
    let before = in_94(&get(&app, &dan, "/").await.text);
    let (code, name): (String, String) = sqlx::query_as(
        "SELECT code, name FROM orgs WHERE kind = 'etablissement' AND commune_code = '94034' AND degree = '1D' \
         AND is_open = 1 ORDER BY code LIMIT 1",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    common::execute(&app.store, "UPDATE orgs SET is_open = 0 WHERE kind = 'etablissement' AND code = $1", &[&code])
        .await;
    let after = in_94(&get(&app, &dan, "/").await.text);
    assert_eq!(after, before - 1, "{}: the closed école is not a school to cover", app.backend);

    let page = get(&app, &mairie, "/").await.text;
    assert!(!page.contains(&format!("<td>{code}</td>")), "{}: {name} is not listed: {page}", app.backend);
    let listed = page.matches("</td><td>oui</td></tr>").count() + page.matches("</td><td>non</td></tr>").count();
    let fresnes = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    let prefill = entcp::groupements::membership::prefill(&app.store, &fresnes).await.unwrap();
    assert!(listed > 0, "{}: {page}", app.backend);
    assert_eq!(listed as i64, prefill.quantities.schools, "{}: the same écoles on both screens", app.backend);
}

/// Which of « Viser », « Signer », « Refuser » the page of convention `id` offers `email`.
async fn offered(app: &TestApp, email: &str, id: &str) -> [bool; 3] {
    let session = sign_in(app, email).await;
    let page = get(app, &session, &format!("/conventions/{id}")).await;
    assert_eq!(page.status, 200, "{email}: {}", page.text);
    ["id=\"viser\"", "id=\"signer\"", "id=\"refuser\""].map(|button| page.text.contains(button))
}

// A second-degré convention in signature (the rectorat's legal visa, then ordered signatures:
// académie, département, collège): each person is offered only the step the circuit takes from
// them now, not every holder of a signing role (the département's agent was shown « Viser »,
// and « Signer » before its turn).
backend_test!(the_convention_page_offers_the_visa_and_signature_only_to_whom_the_circuit_takes_them_from);
async fn the_convention_page_offers_the_visa_and_signature_only_to_whom_the_circuit_takes_them_from(db: TestDb) {
    let (academie, departement, college) = crate::conventions::college_world(&db.store).await;
    let mut app = TestApp::builder(db).build().await;
    let (dan, juriste, cd, chef) = ("dan@ac.fr", "juridique@ac.fr", "ent@departement.fr", "principal@college.fr");
    for (email, role, org) in
        [(dan, Role::Dan, &academie), (juriste, Role::Dan, &academie), (cd, Role::Collectivite, &departement)]
            .into_iter()
            .chain([(chef, Role::ChefEtablissement, &college)])
    {
        add_person(&mut app, email, role, Some(org)).await;
    }
    let client = |email: &str| app.client(app.token(email));
    let body = crate::common::fixtures::with_signatories(json!({
        "model": "tripartite-second-degre",
        "parties": { "academie": academie, "collectivite": departement, "etablissement": college },
        "start_date": "2026-09-01"
    }));
    let created = client(dan).post("/api/v1/conventions").json(&body).send().await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let step = |who: &'static str, action: &'static str| {
        let id = id.clone();
        let api = client(who);
        async move {
            let body = if action == "sign" { crate::common::fixtures::by_delegation(json!({})) } else { json!({}) };
            let done = api.post(format!("/api/v1/conventions/{id}/{action}")).json(&body).send().await;
            assert_eq!(done.status, 200, "{who} {action}: {}", done.text);
        }
    };
    step(dan, "submit").await;
    // [viser, signer, refuser]
    for (who, expected) in [(dan, [true, false, true]), (cd, [false, false, true]), (chef, [false, false, true])] {
        assert_eq!(offered(&app, who, &id).await, expected, "{who}, before the visa ({})", app.backend);
    }
    step(juriste, "visa").await;
    for (who, expected) in [(juriste, [false, false, true]), (dan, [false, true, true]), (cd, [false, false, true])] {
        assert_eq!(offered(&app, who, &id).await, expected, "{who}, the académie's turn ({})", app.backend);
    }
    step(dan, "sign").await;
    for (who, expected) in [(dan, [false, false, true]), (cd, [false, true, true]), (chef, [false, false, true])] {
        assert_eq!(offered(&app, who, &id).await, expected, "{who}, the département's turn ({})", app.backend);
    }
}

// « Nouvelle convention » offers only the models a person creates: a groupement's convention
// constitutive is born of the groupement. Asked for by address or posted, it is refused on the
// form, its summary linking to the model shown.
backend_test!(the_new_convention_page_offers_no_groupement_model_and_its_refusal_links_to_the_model);
async fn the_new_convention_page_offers_no_groupement_model_and_its_refusal_links_to_the_model(db: TestDb) {
    let app = fresnes(db).await;
    let dan = sign_in(&app, DAN).await;
    let models = page_showing(&app, &dan, "/conventions/nouvelle", "id=\"modele-tripartite-premier-degre\"").await;
    assert!(!models.text.contains("id=\"modele-groupement-de-commandes\""), "{}", models.text);
    assert!(models.text.contains("href=\"/groupements\""), "where it is born: {}", models.text);
    let direct = get(&app, &dan, "/conventions/nouvelle?modele=groupement-de-commandes").await;
    assert!(direct.text.contains("id=\"choix-modele\""), "the choice again: {}", direct.text);
    assert!(!direct.text.contains("id=\"creation-convention\""), "{}", direct.text);
    let posted = post_form(&app, &dan, "/conventions/nouvelle", &[("modele", "groupement-de-commandes")]).await;
    assert_eq!(posted.status, 422, "{}", posted.text);
    assert!(posted.text.contains("href=\"#modele\"") && posted.text.contains("id=\"modele\""), "{}", posted.text);
}

// An académie's bipartite convention with an EPCI covers the écoles of one département (its
// IA-DASEN is their controller): an école of another département whose commune later delegates
// its ENT to the EPCI was covered too, under the wrong IA-DASEN. It is left out (the governance
// gate finds it uncovered) and the convention's page lists it as not covered.
backend_test!(an_ecole_of_another_departement_delegated_later_is_left_out_and_listed_on_the_convention_page);
async fn an_ecole_of_another_departement_delegated_later_is_left_out_and_listed_on_the_convention_page(db: TestDb) {
    let app = fresnes(db).await;
    crate::conventions::import_aubervilliers_ecole(&app.store).await;
    let fresnes = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    let aubervilliers = entcp::registry::resolve_org(&app.store, "commune:93001").await.unwrap();
    let luhn = common::fixtures::luhn("20000999");
    let epci = common::fixtures::epci(&app.store, "Communauté d'agglomération test", &luhn, &[&fresnes]).await;
    let admin = app.client(&common::token_for(&app.store, "admin@test.fr", Role::Admin, None).await);
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": epci.id },
        "start_date": "2026-10-01"
    }));
    let created = common::fixtures::expect(admin.post("/api/v1/conventions").json(&body).send().await, 201, "created");
    let id = created["id"].as_str().unwrap().to_string();
    // Signed by its parties (outside this test's subject): in force.
    common::execute(&app.store, "UPDATE conventions SET status = 'active' WHERE id = $1", &[&id]).await;
    let admin_actor = common::admin();
    entcp::registry::manage::set_member(&app.store, &admin_actor, &epci, &aubervilliers, true, common::t0())
        .await
        .unwrap();

    let models = entcp::conventions::model::load_models(None).unwrap();
    let covering = |school: String| {
        let (store, models) = (&app.store, &models);
        async move { entcp::conventions::active_covering(store, models, &school, "2026-10-02").await.unwrap() }
    };
    let elsewhere = org_id(&app, "0930999F").await;
    assert!(covering(elsewhere).await.is_none(), "{}: the 93 école is not covered", app.backend);
    let doisneau = covering(org_id(&app, "0940176F").await).await.map(|c| c.id);
    assert_eq!(doisneau, Some(id.clone()), "{}: the 94 écoles still are", app.backend);
    let dan = sign_in(&app, DAN).await;
    let path = format!("/conventions/{id}");
    let page = page_showing(&app, &dan, &path, "Écoles non couvertes par cette convention").await;
    let warning = page.text.split("ecoles-non-couvertes").nth(1).and_then(|t| t.split("</div>").next()).unwrap();
    assert!(warning.contains("0930999F") && !warning.contains("0940176F"), "{}: {warning}", app.backend);
}

// RGAA 11.10, 7.5: a refused creation form links each error to a control of the page (the
// start date, a parameter of the model, is asked under « Objet et dates »), and an error on a
// group of controls (the parameters, the bouquet) is read with its fieldset.
backend_test!(refused_creation_forms_link_every_error_to_a_control_of_the_page);
async fn refused_creation_forms_link_every_error_to_a_control_of_the_page(db: TestDb) {
    let app = fresnes(db).await;
    let name = app.backend;
    let dan = sign_in(&app, DAN).await;
    let refused = post_doisneau_from(&app, &dan, "2026-13-45").await;
    assert_refusal_announced(&refused);
    let links = summary_links(&refused.text);
    let on_start: Vec<_> = links.iter().filter(|(id, _)| id == "start-date").collect();
    assert_eq!(on_start.len(), 1, "{name}: the invalid date said once, on its field: {links:?}");
    assert!(on_start[0].1.starts_with("Date de prise d&#x27;effet : "), "{name}: {links:?}");
    assert!(refused.text.contains("id=\"start-date-erreur\""), "{name}: the message beside the date");

    let mairie = sign_in(&app, MAIRIE).await;
    let refused = post_form(&app, &mairie, "/ent/nouveau", &[("etape", "demander")]).await;
    assert_refusal_announced(&refused);
    let links = summary_links(&refused.text);
    assert!(links.iter().any(|(id, _)| id == "bouquet"), "{name}: {links:?}");
    assert!(!links.iter().any(|(id, _)| id == "demande"), "{name}: no error on the whole form: {links:?}");
    assert!(
        refused.text.contains("aria-labelledby=\"bouquet-legende bouquet-erreur\" id=\"bouquet\""),
        "{name}: the fieldset reads its error: {}",
        refused.text
    );
}

// The dashboard and the notification centre agree on the conventions awaiting the person:
// the mairie's agent whose signature is awaited finds the convention in both, even when her
// home dashboard is that of the other commune she works for (she once read « Aucune convention
// n'attend de signature » there while « Notifications » listed it).
backend_test!(the_dashboard_and_the_notifications_agree_on_a_convention_awaiting_the_mairie);
async fn the_dashboard_and_the_notifications_agree_on_a_convention_awaiting_the_mairie(db: TestDb) {
    let app = fresnes(db).await;
    let name = app.backend;
    // Her other commune comes first among her roles (its id before Fresnes's): her home is its dashboard.
    let neighbour = org_id(&app, "commune:94028").await;
    let first = "00000000-0000-7000-8000-000000000001";
    common::execute(&app.store, "UPDATE orgs SET id = $1 WHERE id = $2", &[first, &neighbour]).await;
    let other = entcp::registry::queries::get_org(&app.store, first).await.unwrap().unwrap();
    let user = entcp::identity::get_user(&app.store, MAIRIE).await.unwrap().unwrap();
    let role = entcp::identity::UserRole::new(&user.id, Role::Collectivite, Some(&other));
    entcp::identity::grant(&app.store, &common::admin(), role, common::t0()).await.unwrap();
    let dan = sign_in(&app, DAN).await;
    let created = post_doisneau_from(&app, &dan, "2026-09-01").await;
    let id = id_of(created.header("location").unwrap());
    follow(&app, &dan, &post_form(&app, &dan, &format!("/conventions/{id}/soumettre"), &[]).await).await;
    let api = app.client(app.token(DAN)).get(format!("/api/v1/conventions/{id}")).send().await;
    let hash = api.body["document_hash"].as_str().unwrap().to_string();
    let mut form = vec![("empreinte", hash.as_str())];
    form.extend(crate::common::fixtures::DELEGATION_FORM);
    let signed = post_form(&app, &dan, &format!("/conventions/{id}/signer"), &form).await;
    assert_eq!(signed.status, 303, "{name}: {}", signed.text);

    let mairie = sign_in(&app, MAIRIE).await;
    let link = format!("<a href=\"/conventions/{id}\">");
    let notifications = get(&app, &mairie, "/notifications").await;
    assert!(notifications.text.contains(&id), "{name}: {}", notifications.text);
    let home = get(&app, &mairie, "/").await;
    let title = crate::console::escaped(&format!("Tableau de bord — {}", other.name));
    assert!(home.text.contains(&title), "{name}: {}", home.text);
    assert!(home.text.contains(&link), "{name}: the dashboard lists it too: {}", home.text);
    assert!(!home.text.contains("Aucune convention n&#x27;attend de signature"), "{name}: {}", home.text);
    assert!(home.text.contains("attendue"), "{name}: marked as awaiting the mairie: {}", home.text);
}

/// The fields a browser posts from the form `form_id` of `html` (its CSRF token aside, which
/// [`post_form`] adds): each input's name and value, a checkbox only when ticked.
fn posted_inputs(html: &str, form_id: &str) -> Vec<(String, String)> {
    let start = html.find(&format!("id=\"{form_id}\"")).unwrap_or_else(|| panic!("no form {form_id}: {html}"));
    let form = &html[start..start + html[start..].find("</form>").unwrap()];
    let attr = |tag: &str, name: &str| {
        let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    let unescaped = |v: String| {
        [("&#x27;", "'"), ("&quot;", "\""), ("&lt;", "<"), ("&gt;", ">"), ("&#x2F;", "/"), ("&amp;", "&")]
            .iter()
            .fold(v, |v, (entity, c)| v.replace(entity, c))
    };
    form.split("<input ")
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap()])
        .filter(|tag| attr(tag, "type").as_deref() != Some("checkbox") || tag.contains(" checked"))
        .filter_map(|tag| Some((attr(tag, "name")?, unescaped(attr(tag, "value").unwrap_or_default()))))
        .filter(|(name, _)| name != "_csrf")
        .collect()
}

/// `fields` with the value of `name` replaced (or added).
fn with(mut fields: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    fields.retain(|(k, _)| k != name);
    fields.push((name.into(), value.into()));
    fields
}

/// The links of a page's error summary to another page (`href="/…#id"`).
fn summary_links_away(html: &str) -> Vec<String> {
    let Some(at) = html.find("console-error-summary") else { return Vec::new() };
    let summary = &html[at..at + html[at..].find("</div>").unwrap()];
    // The template escapes the address's slashes, as any value it writes.
    let summary = summary.replace("&#x2F;", "/");
    summary.split("<a href=\"/").skip(1).map(|link| format!("/{}", &link[..link.find('"').unwrap()])).collect()
}

/// The Doisneau tripartite created in the console by the DAN without any signatory (the form
/// says they are required before the submission only): its id.
async fn doisneau_draft_without_signatories(app: &TestApp, dan: &str) -> String {
    let mut fields: Vec<(String, String)> =
        doisneau_fields(app).await.into_iter().filter(|(k, _)| !k.starts_with("signataire.")).collect();
    fields.push(("debut".into(), "2026-09-01".into()));
    let created = post_form(app, dan, "/conventions/nouvelle", &as_refs(&fields)).await;
    assert_eq!(created.status, 303, "{}", created.text);
    id_of(created.header("location").unwrap())
}

/// The app of [`fresnes`] with the DAN signed in and a [`doisneau_draft_without_signatories`]:
/// the app, the DAN's session, the draft's id and the path of its edit page.
async fn draft_on_its_edit_page(db: TestDb) -> (TestApp, String, String, String) {
    let app = fresnes(db).await;
    let dan = sign_in(&app, DAN).await;
    let id = doisneau_draft_without_signatories(&app, &dan).await;
    let edit = format!("/conventions/{id}/modifier");
    (app, dan, id, edit)
}

/// The fields of the edit form at `edit` as `session` is shown them, `field` set to `value`.
async fn edit_form_with(app: &TestApp, session: &str, edit: &str, field: &str, value: &str) -> Vec<(String, String)> {
    with(posted_inputs(&get(app, session, edit).await.text, "projet"), field, value)
}

/// The convention as the API answers it to the DAN.
async fn convention_of(app: &TestApp, id: &str) -> serde_json::Value {
    let api = app.client(app.token(DAN)).get(format!("/api/v1/conventions/{id}")).send().await;
    assert_eq!(api.status, 200, "{}", api.text);
    api.body
}

// A draft created without its signatories is completed in the console: its refused submission
// links each error to the control of the edit form where it is corrected (not to an anchor of
// the convention's page, where there is none), the edit form comes pre-filled, refuses a future
// act's date beside its field, then saves (version bumped, audited) and the draft is submitted.
backend_test!(a_draft_without_signatories_is_completed_on_its_edit_page_then_submitted);
async fn a_draft_without_signatories_is_completed_on_its_edit_page_then_submitted(db: TestDb) {
    let (app, dan, id, edit) = draft_on_its_edit_page(db).await;
    let name = app.backend;
    let draft = page_showing(&app, &dan, &format!("/conventions/{id}"), "id=\"modifier-projet\"").await;
    assert!(draft.text.contains(&format!("href=\"{edit}\" id=\"modifier-projet\"")), "{name}: {}", draft.text);

    let refused = post_form(&app, &dan, &format!("/conventions/{id}/soumettre"), &[]).await;
    assert_refusal_announced(&refused);
    assert!(summary_links(&refused.text).is_empty(), "{name}: no anchor of this page: {}", refused.text);
    let links = summary_links_away(&refused.text);
    assert!(links.len() >= 6, "{name}: a name and a quality per party at least: {links:?}");
    assert!(refused.text.contains(&format!("href=\"{edit}\" id=\"completer-projet\"")), "{name}: {}", refused.text);
    assert!(
        refused.text.contains("Nom du signataire — les services académiques : "),
        "{name}: named: {}",
        refused.text
    );
    let form = page_showing(&app, &dan, &edit, "id=\"enregistrer-projet\"").await;
    for link in &links {
        let (page, target) = link.split_once('#').unwrap();
        assert_eq!(page, edit, "{name}: {links:?}");
        assert!(form.text.contains(&format!(" id=\"{target}\"")), "{name}: #{target} on the edit form: {}", form.text);
    }
    assert!(links.contains(&format!("{edit}#signataire-academie-nom")), "{name}: {links:?}");

    // Pre-filled as stored, at the stored version.
    let stored = convention_of(&app, &id).await;
    let version = stored["version"].as_i64().unwrap();
    let shown = posted_inputs(&form.text, "projet");
    let value = |name: &str| shown.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(value("version"), Some(version.to_string()), "{name}");
    assert_eq!(value("debut").as_deref(), stored["start_date"].as_str(), "{name}");
    assert_eq!(value("titre").as_deref(), stored["title"].as_str(), "{name}");
    assert_eq!(value("param.part_collectivite").as_deref(), Some("100"), "{name}");

    // A délibération dated in the future: the domain's refusal beside its field, the input kept.
    let mut filled = shown.clone();
    for (field, value) in signatory_fields() {
        filled = with(filled, &field, &value);
    }
    let future = with(filled.clone(), "signataire.collectivite.acte_date", "2030-01-01");
    let refused = post_form(&app, &dan, &edit, &as_refs(&future)).await;
    assert_refusal_announced(&refused);
    let links = summary_links(&refused.text);
    assert!(links.iter().any(|(id, _)| id == "signataire-collectivite-acte_date"), "{name}: {links:?}");
    assert!(refused.text.contains("aria-describedby=\"signataire-collectivite-acte_date-erreur\""), "{name}");
    assert!(refused.text.contains("value=\"2030-01-01\""), "{name}: the input kept: {}", refused.text);
    assert_eq!(convention_of(&app, &id).await["version"].as_i64(), Some(version), "{name}: nothing saved");

    let saved = post_form(&app, &dan, &edit, &as_refs(&filled)).await;
    let page = follow(&app, &dan, &saved).await;
    assert!(page.text.contains("Le projet est enregistré."), "{name}: {}", page.text);
    assert!(page.text.contains("Mme Camille Martin"), "{name}: the signatory shown: {}", page.text);
    let edited = convention_of(&app, &id).await;
    assert_eq!(edited["version"].as_i64(), Some(version + 1), "{name}: {edited}");
    assert_eq!(edited["title"], stored["title"], "{name}: unchanged fields kept");
    assert!(common::audited_on(&app.store, "conventions.update", &id).await > 0, "{name}: the edit audited");

    let submitted = post_form(&app, &dan, &format!("/conventions/{id}/soumettre"), &[]).await;
    let page = follow(&app, &dan, &submitted).await;
    assert!(page.text.contains("La convention est soumise à visa et signature."), "{name}: {}", page.text);
    assert!(!page.text.contains("id=\"modifier-projet\""), "{name}: in signature, no edit offered");
    assert_eq!(get(&app, &dan, &edit).await.status, 409, "{name}: only a draft is edited here");
}

// An edit posted at a version changed meanwhile (through the API) saves nothing: the form comes
// back with what was typed and says so in French, at the newer version, so that saving again
// replaces it.
backend_test!(a_stale_edit_of_a_draft_keeps_the_input_and_saves_only_when_posted_again);
async fn a_stale_edit_of_a_draft_keeps_the_input_and_saves_only_when_posted_again(db: TestDb) {
    let (app, dan, id, edit) = draft_on_its_edit_page(db).await;
    let name = app.backend;
    let typed = edit_form_with(&app, &dan, &edit, "titre", "ENT des écoles de Fresnes").await;

    let version = convention_of(&app, &id).await["version"].as_i64().unwrap();
    let api = app.client(app.token(DAN));
    let patched = api
        .patch(format!("/api/v1/conventions/{id}"))
        .header("if-match", format!("\"{version}\""))
        .json(&json!({ "title": "Titre posé par l'API" }))
        .send()
        .await;
    assert_eq!(patched.status, 200, "{name}: {}", patched.text);

    let stale = post_form(&app, &dan, &edit, &as_refs(&typed)).await;
    assert_refusal_announced(&stale);
    assert_eq!(stale.status, 409, "{name}");
    assert!(
        stale.text.contains("modifié par quelqu&#x27;un d&#x27;autre pendant votre saisie"),
        "{name}: {}",
        stale.text
    );
    assert!(stale.text.contains("value=\"ENT des écoles de Fresnes\""), "{name}: the input kept");
    assert_eq!(convention_of(&app, &id).await["title"], "Titre posé par l'API", "{name}: nothing saved");
    let again = posted_inputs(&stale.text, "projet");
    assert!(again.contains(&("version".to_string(), (version + 1).to_string())), "{name}: {again:?}");

    let saved = post_form(&app, &dan, &edit, &as_refs(&again)).await;
    assert_eq!(saved.status, 303, "{name}: {}", saved.text);
    let stored = convention_of(&app, &id).await;
    assert_eq!(
        (stored["title"].as_str(), stored["version"].as_i64()),
        (Some("ENT des écoles de Fresnes"), Some(version + 2))
    );
}

// Whoever may not write the draft gets on its edit page (shown or posted) the 404 of a missing
// convention: the école's directeur, who reads it (his école is a party) and signs it only, and
// the mairie of another commune; the draft's page offers him no edit.
backend_test!(the_edit_page_of_a_draft_answers_404_to_whoever_may_not_write_it);
async fn the_edit_page_of_a_draft_answers_404_to_whoever_may_not_write_it(db: TestDb) {
    let (app, dan, id, edit) = draft_on_its_edit_page(db).await;
    let name = app.backend;
    let typed = edit_form_with(&app, &dan, &edit, "titre", "Détourné").await;
    let before = convention_of(&app, &id).await;
    let (version, reference) = (before["version"].clone(), before["reference"].as_str().unwrap().to_string());

    let directeur = sign_in(&app, DIRECTEUR).await;
    let page = page_showing(&app, &directeur, &format!("/conventions/{id}"), "Création du brouillon").await;
    assert!(!page.text.contains("id=\"modifier-projet\""), "{name}: no edit offered: {}", page.text);
    let missing = get(&app, &directeur, "/conventions/inexistante-0000/modifier").await;
    assert_eq!(missing.status, 404, "{name}: {}", missing.text);
    for who in [directeur, sign_in(&app, VITRY).await] {
        let shown = get(&app, &who, &edit).await;
        let posted = post_form(&app, &who, &edit, &as_refs(&typed)).await;
        assert_eq!((shown.status, posted.status), (404, 404), "{name}: {} {}", shown.text, posted.text);
        for answer in [&shown, &posted] {
            assert!(!answer.text.contains(&reference) && !answer.text.contains("Détourné"), "{name}: {}", answer.text);
        }
    }
    let stored = convention_of(&app, &id).await;
    assert_eq!((&stored["version"], stored["title"] == "Détourné"), (&version, false), "{name}: nothing saved");
}

// An avenant, created as a draft copy of the convention in force, is edited the same way: its
// form comes with the signatories copied from the original, and saving it changes the avenant only.
backend_test!(an_avenant_is_edited_on_its_edit_page_with_the_signatories_copied_from_the_original);
async fn an_avenant_is_edited_on_its_edit_page_with_the_signatories_copied_from_the_original(db: TestDb) {
    let (app, original) = fresnes_with_doisneau_in_force(db).await;
    let name = app.backend;
    let dan = sign_in(&app, DAN).await;
    let amended = post_form(&app, &dan, &format!("/conventions/{original}/avenant"), &[]).await;
    let page = follow(&app, &dan, &amended).await;
    let avenant = id_of(amended.header("location").unwrap());
    let edit = format!("/conventions/{avenant}/modifier");
    assert!(page.text.contains(&format!("href=\"{edit}\" id=\"modifier-projet\"")), "{name}: {}", page.text);

    let form = page_showing(&app, &dan, &edit, "Avenant en brouillon").await;
    let shown = posted_inputs(&form.text, "projet");
    let copied = convention_of(&app, &avenant).await;
    let academie = copied["parties"].as_array().unwrap().iter().find(|p| p["key"] == "academie").unwrap();
    let signatory = academie["signatory"]["name"].as_str().unwrap().to_string();
    assert!(!signatory.is_empty(), "{name}: {copied}");
    assert!(shown.contains(&("signataire.academie.nom".to_string(), signatory)), "{name}: {shown:?}");

    let titled = with(shown, "titre", "Avenant n° 1 – ENT des écoles de Fresnes");
    let saved = post_form(&app, &dan, &edit, &as_refs(&titled)).await;
    assert_eq!(saved.status, 303, "{name}: {}", saved.text);
    let edited = convention_of(&app, &avenant).await;
    assert_eq!(edited["title"], "Avenant n° 1 – ENT des écoles de Fresnes", "{name}");
    assert_eq!(edited["version"].as_i64(), copied["version"].as_i64().map(|v| v + 1), "{name}");
    assert_ne!(convention_of(&app, &original).await["title"], edited["title"], "{name}: the original untouched");
}

// A draft whose start passed while it waited is refused at submission until a reason is given:
// the refusal links to the start date of the edit form, where the reason alone, the start kept,
// is saved; the draft is then submitted.
backend_test!(a_start_passed_meanwhile_is_kept_with_the_reason_given_on_the_edit_page);
async fn a_start_passed_meanwhile_is_kept_with_the_reason_given_on_the_edit_page(db: TestDb) {
    let app = fresnes(db).await;
    let name = app.backend;
    let dan = sign_in(&app, DAN).await;
    let created = post_doisneau_from(&app, &dan, "2026-09-01").await;
    let id = id_of(created.header("location").unwrap());
    let edit = format!("/conventions/{id}/modifier");
    app.clock.set(common::t0() + chrono::Duration::days(10));
    let dan = sign_in(&app, DAN).await;

    let refused = post_form(&app, &dan, &format!("/conventions/{id}/soumettre"), &[]).await;
    assert_refusal_announced(&refused);
    assert_eq!(summary_links_away(&refused.text), vec![format!("{edit}#start-date")], "{name}: {}", refused.text);

    let reason =
        edit_form_with(&app, &dan, &edit, "motif_retroactif", "Délibération du conseil municipal tardive").await;
    let saved = post_form(&app, &dan, &edit, &as_refs(&reason)).await;
    assert_eq!(saved.status, 303, "{name}: {}", saved.text);
    let stored = convention_of(&app, &id).await;
    assert_eq!((stored["start_date"].as_str(), stored["end_date"].as_str()), (Some("2026-09-01"), Some("2029-08-31")));
    let submitted = post_form(&app, &dan, &format!("/conventions/{id}/soumettre"), &[]).await;
    let page = follow(&app, &dan, &submitted).await;
    assert!(page.text.contains("La convention est soumise à visa et signature."), "{name}: {}", page.text);
}

// The convention's page lists the signed copies deposited, each with its download link, which
// serves the file as deposited.
backend_test!(the_convention_page_links_each_signed_copy_deposited);
async fn the_convention_page_links_each_signed_copy_deposited(db: TestDb) {
    let app = fresnes(db).await;
    let body = common::fixtures::tripartite("academie:24", "commune:94034", "0940176F", "2026-09-01");
    let conv = common::fixtures::convention(&app, DAN, &body).await;
    let id = conv["id"].as_str().unwrap().to_string();
    let api = |who: &str| app.client(app.token(who));
    assert_eq!(api(DAN).post(format!("/api/v1/conventions/{id}/submit")).send().await.status, 200);
    let pdf = b"%PDF-1.7\n% exemplaire papier\n".to_vec();
    let deposit = api(MAIRIE).post(format!("/api/v1/conventions/{id}/signed-copies?name=signee-fresnes.pdf"));
    let deposited = deposit.bytes("application/pdf", pdf.clone()).send().await;
    assert_eq!(deposited.status, 200, "{}", deposited.text);
    let file_id = deposited.body["signed_files"][0]["id"].as_str().unwrap().to_string();

    let mairie = sign_in(&app, MAIRIE).await;
    let page = get(&app, &mairie, &format!("/conventions/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let href = format!("/conventions/{id}/exemplaires-signes/{file_id}");
    assert!(page.text.contains("Exemplaires signés déposés"), "{}", page.text);
    assert!(
        page.text.contains(&format!("href=\"{}\"", crate::console::escaped(&href)))
            && page.text.contains("signee-fresnes.pdf"),
        "{}",
        page.text
    );
    let file = get(&app, &mairie, &href).await;
    assert_eq!((file.status, file.bytes.clone()), (200, pdf), "{}", file.text);
    assert_eq!(file.header("content-disposition"), Some("attachment; filename=\"signee-fresnes.pdf\""));
    let vitry = sign_in(&app, VITRY).await;
    assert_eq!(get(&app, &vitry, &href).await.status, 404, "out of scope: as unknown");
}

// The console's « Viser » and « Signer » posts run the capability's steps: a coordonnateur of
// the académie (a party), who neither writes, signs nor gives a visa on the convention, is
// refused for the role (403) whether the convention is a draft, in signature or signed, never
// told its state; the école's head (who signs but gives no visa) is refused the visa likewise,
// and told the state of a signature (409) as the DAN is of a visa; the mairie of Vitry, no
// party, gets the 404 of a missing convention.
backend_test!(a_visa_or_a_signature_posted_in_pages_by_who_may_give_neither_is_refused_for_the_role);
async fn a_visa_or_a_signature_posted_in_pages_by_who_may_give_neither_is_refused_for_the_role(db: TestDb) {
    let mut app = fresnes(db).await;
    let name = app.backend;
    let coordinateur = "coord@ac-creteil.fr";
    add_person(&mut app, coordinateur, Role::Coordinateur, Some("academie:24")).await;
    let id = doisneau_draft_through_api(&app).await;
    let sessions = [sign_in(&app, coordinateur).await, sign_in(&app, DIRECTEUR).await, sign_in(&app, DAN).await];
    let vitry = sign_in(&app, VITRY).await;
    let [coordinateur, directeur, dan] = &sessions;
    for state in ["draft", "in_signature", "signed"] {
        match state {
            "in_signature" => submit_through_api(&app, &id).await,
            "signed" => sign_through_api(&app, &id, &[DAN, MAIRIE, DIRECTEUR]).await,
            _ => {}
        }
        let app = &app;
        let posted = |session: &str, action: &str| {
            let path = format!("/conventions/{id}/{action}");
            let session = session.to_string();
            async move { post_form(app, &session, &path, &[]).await }
        };
        for action in ["viser", "signer"] {
            let refused = posted(coordinateur, action).await;
            assert_eq!(refused.status, 403, "{name}: {state}: {action}: {}", refused.text);
            assert_eq!(posted(&vitry, action).await.status, 404, "{name}: {state}: {action}");
        }
        assert_eq!(posted(directeur, "viser").await.status, 403, "{name}: {state}");
        assert_eq!(posted(dan, "viser").await.status, 409, "{name}: {state}");
        if state != "in_signature" {
            assert_eq!(posted(directeur, "signer").await.status, 409, "{name}: {state}");
        }
    }
}

/// A bipartite convention of Fresnes in force from 1 September 2026, renewable, signed by the
/// DAN and the mairie through the API: its id.
async fn bipartite_in_force(app: &TestApp) -> String {
    let client = |email: &str| app.client(app.token(email));
    let body = crate::common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
        "start_date": "2026-09-01"
    }));
    let conv = client(DAN).post("/api/v1/conventions").json(&body).send().await;
    let id = conv.body["id"].as_str().unwrap().to_string();
    submit_through_api(app, &id).await;
    sign_through_api(app, &id, &[DAN, MAIRIE]).await;
    id
}

// « Refuser la reconduction » was offered to whoever wrote the convention, an administrator
// included, who signs for no party. It is offered to a party's representative only (the mairie,
// the DAN), and the administrator's post is refused for its role.
backend_test!(the_refusal_of_the_renewal_is_offered_to_a_party_representative_only);
async fn the_refusal_of_the_renewal_is_offered_to_a_party_representative_only(db: TestDb) {
    let app = fresnes(db).await;
    let id = bipartite_in_force(&app).await;
    let path = format!("/conventions/{id}");
    let button = "id=\"non-reconduction\"";
    for who in [MAIRIE, DAN] {
        let page = get(&app, &sign_in(&app, who).await, &path).await;
        assert!(page.text.contains(button), "{}: {who}: {}", app.backend, page.text);
    }
    let root = sign_in(&app, ROOT).await;
    let page = get(&app, &root, &path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("sauf non-reconduction notifiée"), "{}: the renewal box: {}", app.backend, page.text);
    assert!(!page.text.contains(button), "{}: an administrator signs for no party: {}", app.backend, page.text);
    let refused = post_form(&app, &root, &format!("{path}/non-reconduction"), &[("reconduction", "Erreur")]).await;
    assert_eq!(refused.status, 403, "{}: {}", app.backend, refused.text);
    let conv = app.client(app.token(DAN)).get(format!("/api/v1/conventions/{id}")).send().await;
    assert!(conv.body["non_renewal"].is_null(), "{}: {}", app.backend, conv.text);
}

/// The document shown on a convention's page (the `console-document` article).
fn shown_document(page: &str) -> &str {
    let start = page.find("id=\"document\"").expect("the document");
    &page[start..start + page[start..].find("</article>").expect("its end")]
}

// The convention's page shows a signed convention as signed, whatever the registry says since:
// its école renamed, the document shown and its download are the frozen ones. One with no
// frozen text (written before texts were frozen) is offered as « texte reconstitué », never as
// the draft, and its document says so.
backend_test!(the_convention_page_shows_the_signed_text_and_a_reconstituted_one_as_such);
async fn the_convention_page_shows_the_signed_text_and_a_reconstituted_one_as_such(db: TestDb) {
    let (app, id) = fresnes_with_doisneau_in_force(db).await;
    let api = app.client(app.token(DAN));
    let frozen = api.get(format!("/api/v1/conventions/{id}/signed-document")).send().await.bytes;
    crate::conventions::rename_doisneau(&app.store).await;
    let dan = sign_in(&app, DAN).await;
    let page = get(&app, &dan, &format!("/conventions/{id}")).await;
    let shown = shown_document(&page.text);
    assert!(shown.contains("Robert Doisneau") && !shown.contains("Simone Veil"), "{}: {shown}", app.backend);
    let href = format!("/conventions/{id}/document?format=html&version=1");
    assert!(page.text.contains(&crate::console::escaped(&href)), "{}: {}", app.backend, page.text);
    assert_eq!(get(&app, &dan, &href).await.bytes, frozen, "{}: the frozen download", app.backend);
    let latest = get(&app, &dan, &format!("/conventions/{id}/document?format=html")).await;
    assert_eq!(latest.bytes, frozen, "{}: the latest frozen version", app.backend);

    let legacy = crate::conventions::in_force_without_frozen_text(&app.store).await;
    let page = get(&app, &dan, &format!("/conventions/{legacy}")).await;
    assert_eq!(page.status, 200, "{}: {}", app.backend, page.text);
    assert!(page.text.contains("HTML (texte reconstitué)") && !page.text.contains("(brouillon)"), "{}", page.text);
    assert!(shown_document(&page.text).contains("Texte reconstitué"), "{}: {}", app.backend, page.text);
}

// An administrator withdraws, from the convention's page, a signature given by mistake on a
// convention in signature: the form (the signature, the reason) is offered to an administrator
// only; posted without a reason it is refused beside its field, nothing withdrawn; confirmed, the
// mairie's signature is no longer on the page and the mairie is offered « Signer » again.
backend_test!(an_administrator_withdraws_a_signature_from_the_convention_page_offered_to_no_one_else);
async fn an_administrator_withdraws_a_signature_from_the_convention_page_offered_to_no_one_else(db: TestDb) {
    let app = fresnes(db).await;
    let id = doisneau_draft_through_api(&app).await;
    submit_through_api(&app, &id).await;
    sign_through_api(&app, &id, &[MAIRIE]).await;
    let path = format!("/conventions/{id}");
    for who in [DAN, MAIRIE, DIRECTEUR] {
        let page = get(&app, &sign_in(&app, who).await, &path).await;
        assert!(!page.text.contains("retrait-signature"), "{who} ({}): {}", app.backend, page.text);
    }
    let root = sign_in(&app, ROOT).await;
    let page = page_showing(&app, &root, &path, "Retirer une signature donnée par erreur").await;
    let form = posted_inputs(&page.text, "retrait-signature");
    assert!(form.contains(&("signature_partie".into(), "collectivite".into())), "{form:?}");
    let action = format!("/conventions/{id}/signatures/retirer");

    let refused = post_form(&app, &root, &action, &as_refs(&form)).await;
    assert_eq!(refused.status, 422, "{}: {}", app.backend, refused.text);
    assert!(refused.text.contains("id=\"motif_retrait-erreur\""), "{}: {}", app.backend, refused.text);
    assert!(!offered(&app, MAIRIE, &id).await[1], "{}: still signed", app.backend);

    let confirmed = with(form, "motif_retrait", "Signée par erreur pour la commune");
    let done = post_form(&app, &root, &action, &as_refs(&confirmed)).await;
    assert_eq!(done.status, 303, "{}: {}", app.backend, done.text);
    let page = follow(&app, &root, &done).await;
    assert!(page.text.contains("La signature est retirée"), "{}: {}", app.backend, page.text);
    assert!(page.text.contains("signature retirée par un administrateur : Signée par erreur"), "{}", page.text);
    assert!(!page.text.contains("retrait-signature"), "{}: none left to withdraw: {}", app.backend, page.text);
    assert!(offered(&app, MAIRIE, &id).await[1], "{}: the mairie signs again", app.backend);
}

/// The history of the page (`<ol>` of events) of `page`.
fn history_of(page: &str) -> &str {
    let start = page.find("Création du brouillon").expect("the history");
    let end = page[start..].find("</ol>").map_or(page.len(), |e| start + e);
    &page[start..end]
}

// The history named the persons by their address to a DPO and an auditeur: the drafter, who
// notified the non-reconduction, who recorded a paper signature. They read them by name and
// quality, as the résiliation's notifier, and the API masks the addresses as it masks
// `termination_notified.by`; the parties still read them.
backend_test!(a_dpo_and_an_auditeur_read_the_persons_of_the_history_by_name_never_by_address);
async fn a_dpo_and_an_auditeur_read_the_persons_of_the_history_by_name_never_by_address(db: TestDb) {
    let mut app = fresnes(db).await;
    let (dpo, auditeur) = ("dpo@ac-creteil.fr", "audit@ac-creteil.fr");
    add_person(&mut app, dpo, Role::Dpo, Some("academie:24")).await;
    add_person(&mut app, auditeur, Role::Auditeur, Some("academie:24")).await;
    let id = bipartite_in_force(&app).await;
    for (email, display) in [(DAN, "Sophie Durand, DAN de Créteil"), (MAIRIE, "Karim Benali, mairie de Fresnes")] {
        let sql = "UPDATE users SET display_name = $1 WHERE email = $2";
        sqlx::query(sql).bind(display).bind(email).execute(app.store.pool()).await.unwrap();
    }
    // The commune's signature received on paper, recorded at the command line (`sign --as`).
    let sql = "UPDATE convention_steps SET recorded_by = $1 WHERE convention_id = $2 AND step_key = 'collectivite'";
    let paper = format!("cli:exploitant pour user:{MAIRIE}");
    sqlx::query(sql).bind(&paper).bind(&id).execute(app.store.pool()).await.unwrap();
    let opposed = app
        .client(app.token(MAIRIE))
        .post(format!("/api/v1/conventions/{id}/non-renewal"))
        .json(&json!({ "reason": "Changement de prestataire" }))
        .send()
        .await;
    assert_eq!(opposed.status, 200, "{}: {}", app.backend, opposed.text);

    let path = format!("/conventions/{id}");
    for reader in [dpo, auditeur] {
        let page = page_showing(&app, &sign_in(&app, reader).await, &path, "Création du brouillon").await;
        let history = history_of(&page.text);
        for address in [DAN, MAIRIE] {
            assert!(!page.text.contains(address), "{}: {reader} reads {address}: {}", app.backend, page.text);
        }
        for said in [
            "Création du brouillon — Sophie Durand</li>",
            "signature papier enregistrée par exploitant (ligne de commande)</li>",
            "la convention prend fin à son terme — Karim Benali, pour la Commune de Fresnes</li>",
        ] {
            let said = crate::console::escaped(said).replace("&lt;&#x2F;li&gt;", "</li>");
            assert!(history.contains(&said), "{}: {reader}: « {said} » not in {history}", app.backend);
        }
        let api = app.client(app.token(reader)).get(format!("/api/v1/conventions/{id}")).send().await;
        assert_eq!(api.body["created_by"], "(masqué)", "{}: {}", app.backend, api.text);
        assert_eq!(api.body["created_by_name"], "Sophie Durand", "{}: {}", app.backend, api.text);
        assert_eq!(api.body["non_renewal"]["by"], "(masqué)", "{}: {}", app.backend, api.text);
        assert_eq!(api.body["non_renewal"]["name"], "Karim Benali", "{}: {}", app.backend, api.text);
        assert!(!api.text.contains(DAN) && !api.text.contains(MAIRIE), "{}: {reader}: {}", app.backend, api.text);
    }
    // The parties read who acted by address, as before.
    let page = page_showing(&app, &sign_in(&app, MAIRIE).await, &path, "Création du brouillon").await;
    let history = history_of(&page.text);
    let said = crate::console::escaped(&format!("enregistrée par exploitant (ligne de commande), pour {MAIRIE}"));
    assert!(history.contains(&format!("Création du brouillon — {DAN}")), "{}: {history}", app.backend);
    assert!(history.contains(&said), "{}: {history}", app.backend);
    let api = app.client(app.token(MAIRIE)).get(format!("/api/v1/conventions/{id}")).send().await;
    assert_eq!(api.body["created_by"], format!("user:{DAN}"), "{}: {}", app.backend, api.text);
    assert_eq!(api.body["non_renewal"]["by"], format!("user:{MAIRIE}"), "{}: {}", app.backend, api.text);
}

// The edit form saved as it was shown recorded a version, an audit record, as any edit. It
// records nothing now, and the page says so; a field changed is still saved.
backend_test!(the_edit_form_saved_unchanged_records_nothing_and_says_so);
async fn the_edit_form_saved_unchanged_records_nothing_and_says_so(db: TestDb) {
    let (app, dan, id, edit) = draft_on_its_edit_page(db).await;
    let name = app.backend;
    let before = convention_of(&app, &id).await;
    let updates = async || {
        let sql = "SELECT COUNT(*) FROM audit_log WHERE target_id = $1 AND action = 'conventions.update'";
        common::count(&app.store, sql, &[id.as_str()]).await
    };
    let shown = posted_inputs(&get(&app, &dan, &edit).await.text, "projet");
    let saved = post_form(&app, &dan, &edit, &as_refs(&shown)).await;
    assert_eq!(saved.status, 303, "{name}: {}", saved.text);
    assert!(saved.header("location").unwrap().ends_with("?apres=inchangee"), "{name}: {:?}", saved.header("location"));
    let page = follow(&app, &dan, &saved).await;
    assert!(page.text.contains(&crate::console::escaped("Le projet n'est pas modifié")), "{name}: {}", page.text);
    assert_eq!(convention_of(&app, &id).await["version"], before["version"], "{name}: no version");
    assert_eq!(updates().await, 0, "{name}: no audit record");

    let changed = edit_form_with(&app, &dan, &edit, "titre", "Convention ENT de l'école Robert Doisneau").await;
    let saved = post_form(&app, &dan, &edit, &as_refs(&changed)).await;
    assert!(saved.header("location").unwrap().ends_with("?apres=modifiee"), "{name}: {:?}", saved.header("location"));
    let after = convention_of(&app, &id).await;
    assert_eq!(after["version"].as_i64(), before["version"].as_i64().map(|v| v + 1), "{name}: {after}");
    assert!(updates().await > 0, "{name}: recorded (once per party)");
}

// The creation form asks the académie's annual ceiling in euros (« 4 321,09 », stored in cents
// as the API takes it; what reads as no amount refused on its field) and each party's act as its
// kind takes it: an arrêté or a décision for the académie, a délibération for the commune, the
// conseil d'administration only for an EPLE.
backend_test!(the_creation_form_asks_the_ceiling_in_euros_and_each_party_s_act_by_its_kind);
async fn the_creation_form_asks_the_ceiling_in_euros_and_each_party_s_act_by_its_kind(db: TestDb) {
    let app = fresnes(db).await;
    let name = app.backend;
    let dan = sign_in(&app, DAN).await;
    let form = get(&app, &dan, "/conventions/nouvelle?modele=tripartite-premier-degre").await;
    assert!(
        form.text.contains("Plafond annuel de la participation de l&#x27;académie (euros)"),
        "{name}: {}",
        form.text
    );
    assert!(!form.text.contains("(centimes)"), "{name}: {}", form.text);
    assert!(form.text.contains("N° de l&#x27;arrêté ou de la décision"), "{name}: the académie's act");
    assert!(form.text.contains("N° de la délibération"), "{name}: the commune's act");
    assert!(!form.text.contains("conseil d&#x27;administration"), "{name}: an école has none: {}", form.text);
    let second = get(&app, &dan, "/conventions/nouvelle?modele=tripartite-second-degre").await;
    assert!(second.text.contains("N° de l&#x27;acte du conseil d&#x27;administration"), "{name}: {}", second.text);

    let fields = with(doisneau_fields(&app).await, "param.part_collectivite", "90");
    let fields = with(with(fields, "param.part_academie", "10"), "debut", "2026-09-01");
    let ceiling = "param.plafond_participation_academie";
    let bad = with(fields.clone(), ceiling, "4 321,O9");
    let refused = post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&bad)).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    let links = summary_links(&refused.text);
    let said = links.iter().find(|(id, _)| id == "param-plafond_participation_academie");
    assert!(said.is_some_and(|(_, text)| text.contains("attendu un montant en euros")), "{name}: {links:?}");
    let created = post_form(&app, &dan, "/conventions/nouvelle", &as_refs(&with(fields, ceiling, "4 321,09"))).await;
    assert_eq!(created.status, 303, "{name}: {}", created.text);
    let id = id_of(created.header("location").unwrap());
    let stored: String = sqlx::query_scalar("SELECT parameters FROM conventions WHERE id = $1")
        .bind(&id)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(stored.contains("\"plafond_participation_academie\":432109"), "{name}: in cents: {stored}");
    let edit = get(&app, &dan, &format!("/conventions/{id}/modifier")).await;
    assert!(edit.text.contains("value=\"4321,09\""), "{name}: shown in euros: {}", edit.text);
}

// An école's page names it with its article (« Codes et rattachements de l'École … »), its
// funding commune by its designation, answers its UAI as the API does, and offers a DAN the next
// steps of its onboarding: its convention (the models that may cover it, the party chosen) and
// its ENT.
backend_test!(an_ecole_s_page_found_by_its_uai_names_it_and_links_the_next_onboarding_steps);
async fn an_ecole_s_page_found_by_its_uai_names_it_and_links_the_next_onboarding_steps(db: TestDb) {
    let app = fresnes(db).await;
    let name = app.backend;
    let dan = sign_in(&app, DAN).await;
    let ecole = org_id(&app, "0940176F").await;
    let page = get(&app, &dan, "/organisations/0940176F").await;
    assert_eq!(page.status, 200, "{name}: the UAI, as the API takes it: {}", page.text);
    assert!(
        page.text.contains("Codes et rattachements de l&#x27;École élémentaire Robert Doisneau"),
        "{name}: {}",
        page.text
    );
    assert!(page.text.contains("Organisations qui couvrent cette école"), "{name}: {}", page.text);
    assert!(page.text.contains("Commune de Fresnes</a> (94034)"), "{name}: {}", page.text);
    let convention = format!("href=\"&#x2F;conventions&#x2F;nouvelle?organisation={ecole}\"");
    assert!(page.text.contains(&convention) && page.text.contains("Rédiger la convention de cette école"), "{name}");
    assert!(
        page.text.contains(&format!("href=\"&#x2F;ent&#x2F;nouveau?organisation={ecole}\"")),
        "{name}: {}",
        page.text
    );
    assert_eq!(get(&app, &dan, "/organisations/0949999Z").await.status, 404, "{name}");

    let models = get(&app, &dan, &format!("/conventions/nouvelle?organisation={ecole}")).await;
    let offered = models.text.split("id=\"modeles-possibles\"").nth(1).and_then(|t| t.split("</ul>").next());
    let offered = offered.unwrap_or_else(|| panic!("{name}: {}", models.text));
    assert!(offered.contains(&format!("partie.etablissement={ecole}")), "{name}: {offered}");
    assert!(offered.contains("modele=bipartite-commune") && !offered.contains("second degré"), "{name}: {offered}");

    // The mairie, which funds it, is offered its ENT request too.
    let mairie = sign_in(&app, MAIRIE).await;
    let page = get(&app, &mairie, &format!("/organisations/{ecole}")).await;
    assert!(page.text.contains("id=\"demander-ent\""), "{name}: {}", page.text);
}

// The DAN's dashboard names each département as the documents do, not by its code alone.
backend_test!(the_dashboard_names_each_departement_by_its_designation);
async fn the_dashboard_names_each_departement_by_its_designation(db: TestDb) {
    let app = fresnes(db).await;
    let dan = sign_in(&app, DAN).await;
    let home = get(&app, &dan, "/").await;
    assert!(
        home.text.contains("<th scope=\"row\">Département du Val-de-Marne (94)</th>"),
        "{}: {}",
        app.backend,
        home.text
    );
    assert!(!home.text.contains(">Département 94<"), "{}: {}", app.backend, home.text);
}

// The navigation names `/` as the page it opens: « Accueil » (its title and heading) for a
// directeur, who has no dashboard; « Tableau de bord » for the DAN, whose dashboard it is.
backend_test!(the_navigation_names_the_home_page_as_its_title_does);
async fn the_navigation_names_the_home_page_as_its_title_does(db: TestDb) {
    let app = fresnes(db).await;
    let name = app.backend;
    let directeur = sign_in(&app, DIRECTEUR).await;
    let home = get(&app, &directeur, "/").await;
    let link = |label: &str| format!("<a class=\"fr-nav__link\" href=\"&#x2F;\" aria-current=\"page\">{label}</a>");
    assert!(home.text.contains(&link("Accueil")) && home.text.contains("<h1>Accueil</h1>"), "{name}: {}", home.text);
    assert!(home.text.contains("<title>Accueil — "), "{name}: {}", home.text);
    assert!(!home.text.contains("Tableau de bord"), "{name}: {}", home.text);
    let dan = sign_in(&app, DAN).await;
    assert!(get(&app, &dan, "/").await.text.contains(&link("Tableau de bord")), "{name}");
}
