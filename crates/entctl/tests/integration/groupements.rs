//! Groupements de commandes through the API, on both backends: 25 communes of
//! the Val-de-Marne sample apply with quantities prefilled from the registry,
//! are accepted (joining the convention constitutive), the documents are
//! generated and read back (ODT, ODS), the contract is awarded, the shares sum
//! exactly to the amount, the DECP record carries every required field; and
//! the bad inputs of the issue get precise problems.

use crate::common;

use common::app::{Client, Req};
use common::fixtures::{luhn, new_org};
use common::{admin, t0, token_for, TestApp};
use ent_documents::documents::read_back::{mimetype, ods_formulas, ods_sheets, odt_text, part};
use entcp::clock::FixedClock;
use entcp::documents::typography::french;
use entcp::kernel::roles::OrgKind;
use entcp::kernel::roles::Role;
use entcp::registry::Org;
use entcp::store::Store;
use serde_json::{json, Value};
use std::sync::Arc;

/// The same number with a wrong key.
fn bad_luhn(valid: &str) -> String {
    let (body, last) = valid.split_at(valid.len() - 1);
    let d: u32 = last.parse().unwrap();
    format!("{body}{}", (d + 1) % 10)
}

struct World {
    app: TestApp,
    store: Store,
    coordinator: Org,
    coord: Client,
    communes: Vec<(Org, Client)>,
    /// A collectivité bound to a commune that never applies.
    outsider: Client,
    outsider_commune: Org,
}

impl World {
    /// A client of the operator (an administrator).
    async fn admin(&self) -> Client {
        self.app.client(&token_for(&self.store, "admin@test.fr", Role::Admin, None).await)
    }
}

async fn world(db: &common::TestDb) -> World {
    let store = db.store.clone();
    let app = TestApp::over(&store).build().await;
    common::import_sample(&store).await;
    // The sample carries no head counts: give every école a deterministic one.
    let ids = common::texts(&store, "SELECT id FROM orgs WHERE kind = 'etablissement' ORDER BY id", &[]).await;
    let mut tx = store.begin_write().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        sqlx::query("UPDATE orgs SET pupils = $1 WHERE id = $2")
            .bind(80 + (i as i64 * 37) % 250)
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let coordinator = val_de_marne_syndicat(&store).await;
    let coord = app.client(&token_for(&store, "coord@sm94.fr", Role::Coordinateur, Some(&coordinator.id)).await);
    let mut communes = Vec::new();
    for org in communes_having_schools(&store, Degree::Any, 27).await {
        let token = token_for(&store, &format!("mairie{}@test.fr", org.code), Role::Collectivite, Some(&org.id)).await;
        communes.push((org, app.client(&token)));
    }
    let (outsider_commune, outsider) = communes.pop().unwrap();
    World { app, store, coordinator, coord, communes, outsider, outsider_commune }
}

/// The syndicat mixte of the Val-de-Marne that coordinates the groupements of the tests.
pub(crate) async fn val_de_marne_syndicat(store: &Store) -> Org {
    let name = "Syndicat mixte numérique du Val-de-Marne";
    new_org(store, OrgKind::SyndicatMixte, name, &luhn("25940001"), Some("94")).await
}

/// Which établissements make a commune one [`communes_having_schools`].
#[derive(Clone, Copy)]
pub(crate) enum Degree {
    Any,
    First,
}

/// The first `limit` communes of the sample, by code, having an établissement (of the first
/// degree if `degree` says so).
pub(crate) async fn communes_having_schools(store: &Store, degree: Degree, limit: u32) -> Vec<Org> {
    let degree = match degree {
        Degree::Any => "",
        Degree::First => "e.degree = '1D' AND ",
    };
    let sql = format!(
        "SELECT c.code FROM orgs c WHERE c.kind = 'commune' AND EXISTS (SELECT 1 FROM orgs e WHERE \
         e.kind = 'etablissement' AND {degree}e.commune_code = c.code) ORDER BY c.code LIMIT {limit}"
    );
    let mut communes = Vec::new();
    for code in common::texts(store, &sql, &[]).await {
        communes.push(entcp::registry::resolve_org(store, &format!("commune:{code}")).await.unwrap());
    }
    communes
}

async fn send(req: Req<'_>) -> (u16, Value) {
    let resp = req.send().await;
    (resp.status, serde_json::from_str(&resp.text).unwrap_or(Value::String(resp.text)))
}

/// The body of the smallest groupement its coordinator may create (the coordinator by its
/// key, a title, an object, the deadline of the applications).
fn minimal_groupement(w: &World, application_deadline: &str) -> Value {
    json!({
        "coordinator": format!("syndicat_mixte:{}", w.coordinator.code),
        "title": "ENT 1er degré",
        "object": "ENT des écoles",
        "application_deadline": application_deadline,
    })
}

/// Creates, as its coordinator, a [`minimal_groupement`] taking applications until 30
/// September 2026 (201); its id.
async fn created_minimal_groupement(w: &World, name: &str) -> String {
    let (status, g) = send(w.coord.post(api("/groupements")).json(&minimal_groupement(w, "2026-09-30"))).await;
    assert_eq!(status, 201, "{name}: {g}");
    g["id"].as_str().unwrap().to_string()
}

/// The world with a [`created_minimal_groupement`]: the world and the groupement's id.
async fn world_with_groupement(db: &common::TestDb) -> (World, String) {
    let w = world(db).await;
    let id = created_minimal_groupement(&w, db.name).await;
    (w, id)
}

/// The application of the commune `member` (its agent's client beside it) to the groupement
/// `id`, by its délibération `number` of 1 September 2026 (201): the application.
async fn apply(member: &(Org, Client), id: &str, number: &str) -> Value {
    let (commune, client) = member;
    let application =
        json!({ "applicant": commune.id, "deliberation_number": number, "deliberation_date": "2026-09-01" });
    let (status, app) = send(client.post(api(&format!("/groupements/{id}/applications"))).json(&application)).await;
    assert_eq!(status, 201, "{id}: {app}");
    app
}

/// `w`'s first commune applies ([`apply`]) to the groupement `id` and the coordinator accepts it
/// (200): the id of the convention constitutive the acceptance creates.
async fn first_commune_accepted(w: &World, id: &str) -> String {
    let app = apply(&w.communes[0], id, "2026-DCM-001").await;
    let accept = api(&format!("/groupements/{id}/applications/{}/accept", app["id"].as_str().unwrap()));
    assert_eq!(send(w.coord.post(accept)).await.0, 200, "{id}");
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    g["convention_id"].as_str().expect("a convention constitutive").to_string()
}

/// The id of the first établissement (by id) of the sample whose row meets `condition`, `$1`
/// standing for `commune`'s code.
async fn first_etablissement(w: &World, condition: &str, commune: &Org) -> String {
    let sql = format!("SELECT id FROM orgs WHERE kind = 'etablissement' AND {condition} ORDER BY id LIMIT 1");
    common::texts(&w.store, &sql, &[&commune.code]).await.remove(0)
}

/// The document of `kind` the coordinator generates for the groupement `id`, downloaded in `format`.
async fn generated(w: &World, id: &str, kind: &str, format: &str) -> Vec<u8> {
    let (status, doc) =
        send(w.coord.post(api(&format!("/groupements/{id}/documents"))).json(&json!({ "kind": kind }))).await;
    assert_eq!(status, 201, "{kind}: {doc}");
    let url = api(&format!("/groupements/{id}/documents/{}?format={format}", doc["id"].as_str().unwrap()));
    w.coord.get(url).send().await.bytes
}

/// The address of an API path (`/groupements` → `/api/v1/groupements`).
fn api(path: &str) -> String {
    format!("/api/v1{path}")
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["field"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Écoles of a commune and their pupils, counted independently of the module.
pub(crate) async fn registry_counts(store: &Store, commune: &Org) -> (i64, i64) {
    sqlx::query_as(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(pupils), 0) AS BIGINT) AS p FROM orgs WHERE kind = 'etablissement' \
         AND degree = '1D' AND is_open = 1 AND commune_code = $1",
    )
    .bind(&commune.code)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// The convention constitutive submitted, then signed by the coordinator and every member, in order.
/// Submission first asks who signs for every party; each member's act is its délibération.
async fn constitute(w: &World, convention: &str, members: &[(Org, Client)]) {
    let url = |p: &str| format!("/api/v1/conventions/{convention}{p}");
    let (status, problem) = send(w.coord.post(url("/submit")).json(&json!({}))).await;
    assert_eq!(status, 422, "signatories are required: {problem}");
    let asked = fields(&problem);
    let member = |field: &str| format!("signatories.membre:{}.{field}", members[0].0.id);
    assert!(asked.contains(&member("name")) && asked.contains(&member("quality")), "{asked:?}");
    assert!(asked.contains(&"signatories.coordinateur.act_number".to_string()), "{asked:?}");
    assert!(!asked.contains(&member("act_number")), "the member's délibération is its act: {asked:?}");
    let (_, conv) = send(w.coord.get(url(""))).await;
    let version = conv["version"].as_i64().unwrap();
    let (status, conv) = send(
        w.coord
            .patch(url(""))
            .header("if-match", format!("\"{version}\""))
            .json(&common::fixtures::groupement_signatories(&conv)),
    )
    .await;
    assert_eq!(status, 200, "{conv}");
    let (status, body) = send(w.coord.post(url("/submit")).json(&json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let html = w.coord.get(url("/document?format=html")).send().await.text;
    for needle in [
        "délibération du conseil municipal n° 2026-DCM-000",
        "représentée par M. le maire de",
        "comité syndical n° 2026-CS-12",
    ] {
        assert!(html.contains(&french(needle)), "the convention constitutive lacks « {needle} »");
    }
    for client in std::iter::once(&w.coord).chain(members.iter().map(|(_, c)| c)) {
        let (status, body) =
            send(client.post(url("/sign")).json(&crate::common::fixtures::by_delegation(json!({})))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = send(w.coord.get(url(""))).await;
    assert_eq!(body["status"], "active", "{body}");
}

/// The formats a text document lists: HTML, ODT, and PDF only where this machine has a
/// converter (LibreOffice).
fn text_formats() -> Value {
    match entcp::documents::pdf_available() {
        true => json!(["html", "odt", "pdf"]),
        false => json!(["html", "odt"]),
    }
}

/// Cents as the ODS writes a currency value: `1234.50`.
fn euro_value(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Cents as the documents print them: `1 234,50 €` (no-break spaces).
fn euros_fr(cents: i64) -> String {
    entcp::groupements::costs::euros(cents)
}

/// An amount as the awarded AE commits to it: in figures, then in letters with its `taxes`
/// (« 141 156,00 € (cent quarante et un mille cent cinquante-six euros hors taxes) »).
fn euros_in_letters(cents: i64, taxes: &str) -> String {
    let words = entcp::conventions::letters::euros_in_letters(cents).unwrap();
    format!("{} ({words} {taxes})", euros_fr(cents))
}

/// Closes the applications of groupement `id` and launches its consultation, as `coord`, the
/// offers received until noon (Paris) 31 days after the launch ([`offers_deadline_after`]).
async fn launch_consultation(coord: &Client, id: &str, name: &str) {
    let transition = api(&format!("/groupements/{id}/transition"));
    let (status, g) = send(coord.post(&transition).json(&json!({ "to": "closed" }))).await;
    assert_eq!(status, 200, "{name}: closed: {g}");
    let body = json!({ "to": "consultation", "offers_deadline": offers_deadline_after(&g, 31) });
    let (status, g) = send(coord.post(&transition).json(&body)).await;
    assert_eq!(status, 200, "{name}: consultation: {g}");
}

/// Closes the applications of groupement `id` and launches its consultation, as `coord`, the
/// offers received until `deadline` (`AAAA-MM-JJTHH:MM`, heure de Paris).
async fn launch_until(coord: &Client, id: &str, deadline: &str, name: &str) {
    let transition = api(&format!("/groupements/{id}/transition"));
    let (status, g) = send(coord.post(&transition).json(&json!({ "to": "closed" }))).await;
    assert_eq!(status, 200, "{name}: closed: {g}");
    let (status, g) = send(coord.post(&transition).json(&moving_to("consultation", deadline))).await;
    assert_eq!(status, 200, "{name}: consultation: {g}");
}

/// Noon in Paris `days` after the day of `g`'s last change (the server's clock then, in Paris):
/// `AAAA-MM-JJT12:00`. 31 days: the open call's minimum (30 full days after the launch).
fn offers_deadline_after(g: &Value, days: i64) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(g["updated_at"].as_str().expect("updated_at")).unwrap();
    let day = entcp::clock::today_in_france(at.with_timezone(&chrono::Utc)) + chrono::Duration::days(days);
    format!("{day}T12:00")
}

/// The body of a transition `to`: when it launches the consultation, the offers received until
/// `deadline` (`AAAA-MM-JJTHH:MM`, heure de Paris).
fn moving_to(to: &str, deadline: &str) -> Value {
    match to {
        "consultation" => json!({ "to": to, "offers_deadline": deadline }),
        _ => json!({ "to": to }),
    }
}

/// The award of the test vendor (SIRET `81234567…0001`), notified on `date`.
fn award_notified_on(date: &str) -> Value {
    let mut body = award_body(&luhn(&format!("{}0001", luhn("81234567"))));
    body["notified_on"] = json!(date);
    body
}

fn award_body(siret: &str) -> Value {
    json!({
        "vendor_siret": siret,
        "vendor_name": "ENT Éditions SAS",
        // The titulaire renounced the advance in its AE: the DECP declares none.
        "advance_renounced": true,
        // 46 days after a launch on the first day of the tests' clock (1 September 2026): the open
        // call's 35 days for the offers and 11 of standstill.
        "notified_on": "2026-10-17",
        "unit_prices": [
            { "lot": 1, "line": "account_year", "unit_price_ht_cents": 450 },
            { "lot": 1, "line": "school_setup", "unit_price_ht_cents": 35_000 }
        ],
        "decp": {
            "acheteur_siret": luhn(&format!("{}0001", luhn("25940001"))),
            "code_cpv": "48190000",
            "techniques": ["Accord-cadre"],
            "modalites_execution": ["Bons de commande"],
            "marche_innovant": false,
            "ccag": "Techniques de l'information et de la communication",
            "offres_recues": 4,
            "attribution_avance": false,
            "type_groupement_operateurs": "Pas de groupement",
            "sous_traitance_declaree": false,
            "procedure": "Appel d'offres ouvert",
            "forme_prix": "Unitaire",
            "types_prix": ["Définitif révisable"],
            "considerations_sociales": ["Pas de considération sociale"],
            "considerations_environnementales": ["Clause environnementale"]
        }
    })
}

backend_test!(a_groupement_of_25_communes_runs_from_applications_to_decp);
async fn a_groupement_of_25_communes_runs_from_applications_to_decp(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;

    // A cost key that does not sum to 100 % is refused, field named.
    let mut body = json!({
        "coordinator": w.coordinator.id,
        "title": "ENT 1er degré 2027-2030",
        "object": "Fourniture, hébergement, maintenance et assistance d'un ENT pour les écoles des membres",
        "cost_key": [{ "basis": "pupils", "weight": 60 }, { "basis": "equal", "weight": 30 }],
        "common_expenses_cents": 1_200_000,
        "coordinator_share_percent": 10,
        // Two years and a half: the last contract year is priced for its 6 months only.
        "duration_months": 30,
        "application_deadline": "2026-10-15",
        "consultation_date": "2026-11-02",
        "award_planned_date": "2027-01-15",
    });
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    assert!(fields(&problem).contains(&"cost_key".into()) && problem["detail"].as_str().unwrap().contains("90 %"));
    body["cost_key"] = json!([{ "basis": "pupils", "weight": 70 }, { "basis": "equal", "weight": 30 }]);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["status"], "open");
    assert_eq!(g["bouquet"], "socle-1d");

    // A collectivité cannot open a groupement.
    let (status, _) = send(w.communes[0].1.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 403, "{name}");

    // 25 applications, prefilled from the registry.
    let members = &w.communes[..25];
    for (i, (commune, client)) in members.iter().enumerate() {
        let (status, pre) =
            send(client.get(api(&format!("/groupements/{id}/prefill?applicant=commune:{}", commune.code)))).await;
        assert_eq!(status, 200, "{name}: {pre}");
        let (schools, pupils) = registry_counts(&w.store, commune).await;
        assert!(schools > 0);
        assert_eq!(pre["quantities"]["schools"], schools, "{name} {}", commune.code);
        assert_eq!(pre["quantities"]["pupils"], pupils, "{name} {}", commune.code);
        assert_eq!(pre["schools"].as_array().unwrap().len() as i64, schools);
        let application = json!({
            "applicant": format!("commune:{}", commune.code),
            "deliberation_number": format!("2026-DCM-{i:03}"),
            "deliberation_date": "2026-09-01",
            "classes": schools * 5,
            "teacher_accounts": schools * 6,
            "parent_accounts": pupils,
        });
        let (status, app) = send(client.post(api(&format!("/groupements/{id}/applications"))).json(&application)).await;
        assert_eq!(status, 201, "{name}: {app}");
        assert_eq!(app["quantities"]["schools"], schools, "prefilled écoles kept");
        assert_eq!(app["quantities"]["pupils"], pupils, "prefilled pupils kept");
        assert_eq!(app["status"], "applied");
        if i == 0 {
            // Twice: 409, naming the existing application.
            let (status, problem) =
                send(client.post(api(&format!("/groupements/{id}/applications"))).json(&application)).await;
            assert_eq!(status, 409, "{name}: {problem}");
            assert_eq!(problem["application_id"], app["id"]);
        }
    }

    // Bad input from the outsider: absurd or negative quantities, a future decision, another's commune.
    let outsider_key = format!("commune:{}", w.outsider_commune.code);
    let (covered, _) = registry_counts(&w.store, &w.outsider_commune).await;
    let bad = json!({
        "applicant": outsider_key, "deliberation_number": "D-1", "deliberation_date": "2027-01-01",
        "schools": covered + 1, "pupils": -3,
    });
    let (status, problem) = send(w.outsider.post(api(&format!("/groupements/{id}/applications"))).json(&bad)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    let f = fields(&problem);
    assert!(f.contains(&"pupils".into()) && f.contains(&"deliberation_date".into()), "{f:?}");
    let bad = json!({ "applicant": outsider_key, "deliberation_number": "D-1", "deliberation_date": "2026-09-01", "schools": covered + 1 });
    let (status, problem) = send(w.outsider.post(api(&format!("/groupements/{id}/applications"))).json(&bad)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    assert_eq!(fields(&problem), vec!["schools"]);
    assert!(problem["detail"].as_str().unwrap().contains(&format!("n'en couvre que {covered}")), "{problem}");
    let absurd = json!({ "applicant": outsider_key, "deliberation_number": "D-1", "deliberation_date": "2026-09-01", "pupils": 10_000_000 });
    let (status, problem) = send(w.outsider.post(api(&format!("/groupements/{id}/applications"))).json(&absurd)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["pupils".to_string()]), "{name}: {problem}");
    let theirs = json!({ "applicant": format!("commune:{}", members[0].0.code), "deliberation_number": "X", "deliberation_date": "2026-09-01" });
    let (status, problem) = send(w.outsider.post(api(&format!("/groupements/{id}/applications"))).json(&theirs)).await;
    // Another commune the caller cannot read is not revealed: named like one that does not exist.
    assert_eq!(
        (status, fields(&problem)),
        (422, vec!["applicant".to_string()]),
        "{name}: applying for another commune"
    );

    // After the deadline (another server, clock later): 409.
    let late_clock = Arc::new(FixedClock::new(t0() + chrono::Duration::days(60)));
    let late = TestApp::over(&w.store).clock(late_clock).build().await;
    let ok = json!({ "applicant": outsider_key, "deliberation_number": "D-2", "deliberation_date": "2026-09-01" });
    let (status, problem) =
        send(w.outsider.to(&late).post(format!("/api/v1/groupements/{id}/applications")).json(&ok)).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("date limite"), "{problem}");

    // The outsider applies in time, then withdraws; it sees only its own application.
    let (status, app) = send(w.outsider.post(api(&format!("/groupements/{id}/applications"))).json(&ok)).await;
    assert_eq!(status, 201, "{name}: {app}");
    let (_, own) = send(w.outsider.get(api(&format!("/groupements/{id}/applications")))).await;
    assert_eq!(own.as_array().unwrap().len(), 1, "{name}: an applicant sees its own application only");
    let app_id = app["id"].as_str().unwrap();
    let (status, withdrawn) =
        send(w.outsider.post(api(&format!("/groupements/{id}/applications/{app_id}/withdraw")))).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");

    // The coordinator accepts the 25 (the first 24, a members list, then the last).
    let (_, apps) = send(w.coord.get(api(&format!("/groupements/{id}/applications")))).await;
    let applied: Vec<&Value> = apps.as_array().unwrap().iter().filter(|a| a["status"] == "applied").collect();
    let pending: Vec<String> = applied.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    let last = applied[24]["applicant"]["name"].as_str().unwrap().to_string();
    assert_eq!(pending.len(), 25, "{name}");
    let (status, _) =
        send(members[0].1.post(api(&format!("/groupements/{id}/applications/{}/accept", pending[0])))).await;
    assert_eq!(status, 403, "{name}: an applicant does not accept itself");
    for app in &pending[..12] {
        let (status, a) = send(w.coord.post(api(&format!("/groupements/{id}/applications/{app}/accept")))).await;
        assert_eq!(status, 200, "{name}: {a}");
    }
    // The next twelve at once; an application already accepted in the batch refuses it whole.
    let acceptances = api(&format!("/groupements/{id}/acceptances"));
    let mixed = json!({ "applications": [pending[12], pending[0]] });
    let (status, problem) = send(w.coord.post(&acceptances).json(&mixed)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["applications[1]".to_string()]), "{name}: {problem}");
    let (status, batch) = send(w.coord.post(&acceptances).json(&json!({ "applications": pending[12..24] }))).await;
    assert_eq!(status, 200, "{name}: {batch}");
    assert!(batch.as_array().unwrap().iter().all(|a| a["status"] == "accepted"));
    let gen = |kind: &str| w.coord.post(api(&format!("/groupements/{id}/documents"))).json(&json!({ "kind": kind }));
    let (status, membres_v1) = send(gen("membres")).await;
    assert_eq!((status, membres_v1["version"].as_i64()), (201, Some(1)), "{name}: {membres_v1}");
    let (status, _) = send(w.coord.post(api(&format!("/groupements/{id}/applications/{}/accept", pending[24])))).await;
    assert_eq!(status, 200, "{name}");

    // One convention constitutive: the groupement-de-commandes convention; the groupement's
    // own summary is a presentation note, and no other document takes that title.
    let (status, problem) = send(gen("convention")).await;
    assert_eq!(status, 422, "{name}: no second convention constitutive: {problem}");
    let (status, note) = send(gen("presentation")).await;
    assert_eq!(status, 201, "{name}: {note}");
    assert_eq!(note["title"], "Note de présentation du groupement de commandes");
    let note_html = w
        .coord
        .get(api(&format!("/groupements/{id}/documents/{}?format=html", note["id"].as_str().unwrap())))
        .send()
        .await
        .text;
    // Domain review 39, G6: the note (not the estimated value) is what « ne vaut pas convention
    // constitutive », said before the definition list.
    let said = note_html.find("La présente note ne vaut pas convention constitutive");
    let list = note_html.find("Procédure de passation");
    assert!(said.is_some() && said < list, "{name}: {note_html}");
    assert!(!note_html.contains("Elle ne vaut pas"), "{name}");
    assert!(!note_html.contains("Titulaire") && note_html.contains("Attribution prévue"), "{name}: not awarded yet");
    for kind in entcp::groupements::documents::Kind::ALL {
        assert!(!kind.label().contains("onvention constitutive"), "{name}: {kind:?} is not the convention");
    }

    // The convention constitutive links the coordinator and the 25 members.
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!(g["members"], 25);
    let conv_id = g["convention_id"].as_str().unwrap();
    let (status, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    assert_eq!(status, 200, "{name}: {conv}");
    assert_eq!(conv["model_id"], "groupement-de-commandes");
    assert!(conv["title"].as_str().unwrap().starts_with("Convention constitutive du groupement de commandes"));
    let parties = conv["parties"].as_array().unwrap();
    assert_eq!(parties.iter().filter(|p| p["key"] == "membre").count(), 25, "{name}");
    // Editing the object rewrites the convention's, members kept.
    let version = g["version"].as_i64().unwrap();
    let (status, edited) = send(
        w.coord
            .patch(api(&format!("/groupements/{id}")))
            .header("if-match", format!("\"{version}\""))
            .json(&json!({ "object": "ENT des écoles publiques du territoire" })),
    )
    .await;
    assert_eq!(status, 200, "{name}: {edited}");
    let (_, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    assert_eq!(conv["parameters"]["objet"], "ENT des écoles publiques du territoire", "{name}: {conv}");
    let parties = conv["parties"].as_array().unwrap();
    assert_eq!(parties.iter().filter(|p| p["key"] == "membre").count(), 25, "{name}");

    // Documents: regenerating the members list after a change gives v2, v1 stays downloadable.
    let (status, membres_v2) = send(gen("membres")).await;
    assert_eq!((status, membres_v2["version"].as_i64()), (201, Some(2)), "{name}");
    let (status, again) = send(gen("membres")).await;
    assert_eq!((status, again["new_version"].as_bool(), again["version"].as_i64()), (200, Some(false), Some(2)));
    let download = |doc: &Value, format: &str| {
        w.coord.get(api(&format!("/groupements/{id}/documents/{}?format={format}", doc["id"].as_str().unwrap())))
    };
    let v1 = download(&membres_v1, "odt").send().await;
    assert_eq!(v1.status, 200);
    let v1_text = odt_text(&v1.bytes);
    let v2_text = odt_text(&download(&membres_v2, "odt").send().await.bytes);
    assert!(!v1_text.contains(last.as_str()) && v2_text.contains(last.as_str()), "{name}: v1 before, v2 after");

    // The CCTP as ODT, read back.
    let (status, cctp) = send(gen("cctp")).await;
    assert_eq!(status, 201, "{name}: {cctp}");
    let odt = download(&cctp, "odt").send().await;
    assert_eq!(odt.headers["content-type"], entcp::documents::ODT_MIME);
    let odt = odt.bytes;
    assert_eq!(mimetype(&odt), entcp::documents::ODT_MIME);
    let text = odt_text(&odt);
    for needle in ["article 28", "Union européenne", "réversibilité", "SDET", "EduConnect", "GAR", "RGAA", "P1"] {
        assert!(text.to_lowercase().contains(&french(needle).to_lowercase()), "{name}: CCTP lacks {needle}");
    }
    cctp_sections_are_there(&text, name);
    assert!(text.contains(&french("L. 2113-11, 1° et 2°")), "{name}: one lot, justified");
    let catalog = entcp::catalog::Catalog::load(None).unwrap();
    for service in catalog.resolve("socle-1d", &[]).unwrap() {
        assert!(text.contains(&service.name), "{name}: CCTP lacks service {}", service.name);
    }
    // Its article 6 no longer holds the Art. 28(3) contract (moved to the CCAP's article 8, below):
    // it refers to it and keeps the technical duties.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!flat.contains("une instruction constitue une violation"), "{name}: the Art. 28 clauses are the CCAP's");
    assert!(flat.contains("supprimer les comptes au plus tard trois mois après la fin du besoin"), "{name}");
    // PDF when LibreOffice is installed, otherwise a 406 naming the formats this server gives.
    let pdf = download(&cctp, "pdf").send().await;
    match pdf.status {
        200 => assert!(pdf.bytes.starts_with(b"%PDF")),
        406 => assert!(pdf.text.contains("Format indisponible") && pdf.text.contains("ODT"), "{}", pdf.text),
        other => panic!("{name}: PDF answered {other}"),
    }
    let html = download(&cctp, "html").send().await.text;
    assert!(html.contains("<html") && html.contains("CCTP"));

    // The quantity annex as ODS, read back: one row per member and the totals.
    let (status, annex) = send(gen("quantites")).await;
    assert_eq!(status, 201, "{name}: {annex}");
    let ods = download(&annex, "ods").send().await.bytes;
    let sheets = ods_sheets(&ods);
    assert_eq!(sheets[0].0, "Quantités");
    let rows = &sheets[0].1;
    assert_eq!(rows.len(), 1 + 25 + 1, "{name}: header, 25 members, totals");
    let accounts_col = rows[0].iter().position(|h| h == "Comptes ENT").unwrap();
    let sum: i64 = rows[1..26].iter().map(|r| r[accounts_col].parse::<i64>().unwrap()).sum();
    assert_eq!(rows[26][accounts_col].parse::<i64>().unwrap(), sum);
    assert_eq!(rows[26][0], "Total");
    // Its totals are formulas over the member rows, the value computed here cached beside them
    // (a buyer's edit recomputes; a reader that does not recalculate sees the figure); each
    // member's ENT accounts, the sum of its pupils', teachers' and parents'.
    let formulas = &ods_formulas(&ods)[0];
    assert_eq!(formulas.len(), rows.len(), "{name}");
    for (i, column) in ["E", "F", "G", "H", "I", "J"].iter().enumerate() {
        let col = 4 + i;
        let sum: i64 = rows[1..26].iter().map(|r| r[col].parse::<i64>().unwrap()).sum();
        assert_eq!(formulas[26][col], format!("of:=SUM([.{column}2:.{column}26])"), "{name}: {column}");
        assert_eq!(rows[26][col].parse::<i64>().unwrap(), sum, "{name}: {column}");
    }
    assert_eq!(formulas[5][accounts_col], "of:=[.G6]+[.H6]+[.I6]", "{name}");
    let parts: i64 = (6..9).map(|c| rows[5][c].parse::<i64>().unwrap()).sum();
    assert_eq!(rows[5][accounts_col].parse::<i64>().unwrap(), parts, "{name}");
    assert!(formulas[5][..accounts_col].iter().all(String::is_empty), "{name}: declared, not computed");
    // Its BPU/DQE before the award: the quantities, blank unit prices, the formulas already there.
    let content = part(&ods, "content.xml");
    assert!(
        content.contains(
            r#"table:formula="of:=[.C4]*[.D4]" office:value-type="currency" office:currency="EUR" office:value="0.00""#
        ),
        "{name}"
    );
    assert_eq!(sheets[1].0, "BPU-DQE", "{name}");
    assert_eq!(sheets[1].1[1][0], "Lot 1 – Solution d'espace numérique de travail", "{name}");
    // Its quantities follow the « Quantités » sheet's totals (row 27): the account-years over the
    // 30 months from the ENT accounts, the set-ups from the schools, their values cached.
    let bpu = (&sheets[1].1, &ods_formulas(&ods)[1]);
    assert_eq!(bpu.1[2][2], "of:=ROUND([$'Quantités'.J27]*30/12;2)", "{name}");
    assert_eq!(bpu.1[3][2], "of:=[$'Quantités'.E27]", "{name}");
    let accounts: i64 = rows[26][accounts_col].parse().unwrap();
    let hundredths = entcp::groupements::costs::account_years(accounts, 30);
    let shown = match hundredths % 100 {
        0 => (hundredths / 100).to_string(),
        cents => format!("{},{}", hundredths / 100, format!("{cents:02}").trim_end_matches('0')),
    };
    assert_eq!(bpu.0[2][2].replace('\u{a0}', ""), shown, "{name}: {accounts} accounts");
    assert_eq!(bpu.0[3][2], rows[26][rows[0].iter().position(|h| h == "Écoles").unwrap()], "{name}");
    let (status, problem) = send(download(&annex, "odt")).await;
    assert_eq!(status, 422, "{name}: the annex is a spreadsheet only: {problem}");

    // The CCAP before the award: an accord-cadre à bons de commande whose maximum, in quantity, is
    // the DQE's (account-years over the 30 months, set-ups); the penalties the CCTP no longer
    // carries; the Art. 28(3) contract (moved from the CCTP's article 6) and the liability.
    let schools_col = rows[0].iter().position(|h| h == "Écoles").unwrap();
    let declared_accounts = rows[26][accounts_col].parse::<i64>().unwrap();
    let declared_schools = rows[26][schools_col].parse::<i64>().unwrap();
    let (status, ccap) = send(gen("ccap")).await;
    assert_eq!(status, 201, "{name}: {ccap}");
    assert_eq!(ccap["title"], "Cahier des clauses administratives particulières (CCAP)", "{name}");
    assert_eq!(ccap["formats"], text_formats(), "{name}: the CCTP's formats");
    let ccap_text = odt_text(&download(&ccap, "odt").send().await.bytes);
    let quantity = entcp::groupements::costs::quantity;
    for needle in [
        "Le marché est un accord-cadre à bons de commande mono-attributaire".to_string(),
        "sans minimum et avec un maximum fixé en quantité".to_string(),
        format!("Abonnements annuels par compte ENT\n{} comptes × an sur 30 mois\n", quantity(declared_accounts * 250)),
        format!("Mises en service d'une école\n{}\n", quantity(declared_schools * 100)),
    ] {
        assert!(ccap_text.contains(&french(&needle)), "{name}: the CCAP lacks « {needle} »: {ccap_text}");
    }
    assert!(!ccap_text.contains("Montant maximum HT"), "{name}: valued only at the awarded prices");
    let ccap_flat = ccap_text.split_whitespace().collect::<Vec<_>>().join(" ");
    let (data, subjects) = entcp::catalog::processed_data(catalog.resolve("socle-1d", &[]).unwrap());
    assert!(!data.is_empty() && !subjects.is_empty(), "{name}: the catalog states them");
    // F13 (domain review 37): as the écoles' conventions list them (edition 6), a sensitive datum
    // in one parenthesis, the premier degré's persons without documentaliste.
    use entcp::conventions::processing::{one_parenthesis, school_subjects};
    let data: Vec<String> = data.iter().map(|d| one_parenthesis(d)).collect();
    let subjects = school_subjects(subjects);
    for gone in ["documentalistes", "articles 9 ou 10", "RGPD) ("] {
        assert!(!ccap_flat.contains(gone), "{name}: the CCAP says « {gone} »: {ccap_flat}");
    }
    assert!(ccap_flat.contains(&format!("types de données : {}", data.join(" ; "))), "{name}: {ccap_flat}");
    assert!(ccap_flat.contains(&format!("catégories de personnes concernées : {}", subjects.join(" ; "))), "{name}");
    for clause in [
        // The penalties, moved from the CCTP, and the one CCAG-TIC article they derogate to.
        "Article 10 – Pénalités",
        "150 € HT par heure ouvrée de retard",
        "100 € HT par jour ouvré de retard",
        "Dérogations au CCAG-TIC",
        "article 14 (pénalités)",
        // What the CCAG-TIC keeps: the contradictory procedure and the small-penalty exemption.
        "invite à présenter ses observations (article 14.1.1 du CCAG-TIC)",
        "exonéré des pénalités dont le montant total ne dépasse pas 1 000 euros HT pour l'ensemble de l'accord-cadre",
        "approuvé par l'arrêté du 30 mars 2021",
        // The pieces in their order of precedence.
        "l'acte d'engagement (AE) et ses annexes ; le présent cahier des clauses administratives particulières (CCAP) ; \
         le cahier des clauses techniques particulières (CCTP)",
        "délai global de paiement est de trente jours",
        "R. 2192-10",
        // Art. 28: the contract, instructions, confidentiality, security, sub-processors, assistance,
        // return or deletion, audits; the titulaire liable for its sub-processors; Art. 82.
        "sous-traitant ultérieur",
        "article 28, paragraphe 3",
        "une instruction constitue une violation",
        "article 32 du RGPD",
        "autorisation écrite préalable, spécifique ou générale, du responsable de traitement",
        "demeure pleinement responsable",
        "articles 32 à 36 du RGPD",
        "restituer les données",
        "audits, y compris des inspections",
        "article 82 du RGPD",
        "ne lui est nullement imputable",
    ] {
        assert!(ccap_flat.contains(clause), "{name}: the CCAP lacks « {clause} »");
    }

    // Closed; neither consultation nor award while the convention constitutive is unsigned.
    let transition =
        |to: &str| w.coord.post(api(&format!("/groupements/{id}/transition"))).json(&moving_to(to, "2026-10-06T12:00"));
    let (status, g) = send(transition("closed")).await;
    assert_eq!(status, 200, "{name}: {g}");
    let (status, problem) = send(transition("consultation")).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("convention constitutive"), "{name}: {problem}");
    let award_url = api(&format!("/groupements/{id}/award"));
    let (status, problem) = send(w.coord.post(&award_url).json(&award_body("73282932000074"))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("n'est pas constitué"), "{name}: {problem}");
    // Consultation once every party signed, then the DECP before the award: 409.
    let conv_id = g["convention_id"].as_str().expect("a convention constitutive").to_string();
    constitute(&w, &conv_id, members).await;
    // The cost annex gives each member its own share of the members' 90 %, by the cost key (70 %
    // pupils, 30 % equal parts), not 90 % each: the shares and the coordinator's 10 % make 100 %.
    let (_, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    let shares: Vec<f64> = conv["parties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["key"] == "membre")
        .map(|p| p["share_percent"].as_f64().expect("each member's own share"))
        .collect();
    assert_eq!(shares.len(), 25, "{name}: {conv}");
    let total: f64 = shares.iter().sum();
    assert!((total - 90.0).abs() < 1e-6, "{name}: members' shares total {total}");
    assert!(shares.iter().all(|s| *s > 1.0 && *s < 10.0), "{name}: {shares:?}");
    let html = w.coord.get(api(&format!("/conventions/{conv_id}/document?format=html"))).send().await.text;
    let costs = &html[html.find("Répartition des coûts").unwrap()..];
    assert!(!costs.contains(">90\u{a0}%<") && costs.contains(">10\u{a0}%<"), "{name}: {costs}");
    let first = format!("{}\u{a0}%", shares[0]).replace('.', ",");
    assert!(costs.contains(&first), "{name}: « {first} » in {costs}");
    let (status, g) = send(transition("consultation")).await;
    assert_eq!(status, 200, "{name}: {g}");
    let (status, problem) = send(w.coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 409, "{name}: {problem}");

    // The award comes once the open call's délais have run: 35 days for the offers, 11 of
    // standstill after the rejections (notified on 17 October for a launch on 1 September).
    let after_standstill = TestApp::over(&w.store).clock(clock_on(2026, 10, 20)).build().await;
    let late = w.coord.to(&after_standstill);
    // Awarding without a SIRET, with a wrong key, or without the DECP facts: 422.
    let vendor_siret = luhn(&format!("{}0001", luhn("81234567")));
    let mut bad = award_body(&vendor_siret);
    bad.as_object_mut().unwrap().remove("vendor_siret");
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&bad)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["vendor_siret".to_string()]), "{name}: {problem}");
    let (status, problem) =
        send(late.post(api(&format!("/groupements/{id}/award"))).json(&award_body(&bad_luhn(&vendor_siret)))).await;
    assert_eq!(status, 422, "{name}");
    assert!(problem["detail"].as_str().unwrap().contains("Luhn"), "{problem}");
    // A BPU line without its unit price: 422 naming it (the DQE and the shares need it).
    let mut unpriced = award_body(&vendor_siret);
    unpriced["unit_prices"].as_array_mut().unwrap().pop();
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&unpriced)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["unit_prices".to_string()]), "{name}: {problem}");
    assert!(problem.to_string().contains("prix unitaire manquant : lot 1"), "{name}: {problem}");
    // A line offered free is priced 0 (only the missing SIRET is named); a negative price is refused.
    let mut free = award_body(&vendor_siret);
    free.as_object_mut().unwrap().remove("vendor_siret");
    free["unit_prices"][1]["unit_price_ht_cents"] = json!(0);
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&free)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["vendor_siret".to_string()]), "{name}: {problem}");
    // Negative, or so high that the totals would overflow: refused on the field.
    for price in [-1_i64, 100_000_000_000_000_000] {
        let mut wrong = award_body(&vendor_siret);
        wrong["unit_prices"][1]["unit_price_ht_cents"] = json!(price);
        let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&wrong)).await;
        let field = "unit_prices[1].unit_price_ht_cents".to_string();
        assert_eq!((status, fields(&problem)), (422, vec![field]), "{name} {price}: {problem}");
        assert!(problem.to_string().contains("de 0 à 100 000,00 €"), "{name}: {problem}");
    }
    // Repeated considerations fail the official schema (`uniqueItems`): 422 on the field.
    let mut twice = award_body(&vendor_siret);
    twice["decp"]["considerations_sociales"] = json!(["Clause sociale", "Clause sociale"]);
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&twice)).await;
    let field = "decp.considerations_sociales".to_string();
    assert_eq!((status, fields(&problem)), (422, vec![field]), "{name}: {problem}");
    assert!(problem.to_string().contains("répétée"), "{name}: {problem}");
    let mut no_facts = award_body(&vendor_siret);
    no_facts["decp"] = json!({});
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&no_facts)).await;
    assert_eq!(status, 422, "{name}");
    let f = fields(&problem);
    for field in ["decp.acheteur_siret", "decp.code_cpv", "decp.offres_recues"] {
        assert!(f.contains(&field.to_string()), "{name}: {field} not asked in {f:?}");
    }
    // The procedure, the form and type of price, the technique, the mode of execution and the
    // CCAG are the consultation documents': not asked.
    let documented = ["decp.procedure", "decp.forme_prix", "decp.types_prix", "decp.techniques"];
    for field in documented.into_iter().chain(["decp.modalites_execution", "decp.ccag"]) {
        assert!(!f.contains(&field.to_string()), "{name}: {field} asked in {f:?}");
    }

    // The buyer is the coordinator: a member's SIRET is refused, and so is no SIRET at all
    // while the registry holds none for the coordinator.
    assert_eq!(w.coordinator.siret, None, "{name}: the coordinator starts without a SIRET");
    let mut member_buyer = award_body(&vendor_siret);
    member_buyer["decp"]["acheteur_siret"] = json!(luhn(&format!("{}0001", luhn("21940028"))));
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&member_buyer)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["decp.acheteur_siret".to_string()]), "{name}: {problem}");
    assert!(
        problem["errors"][0]["message"].as_str().unwrap().contains("n'est pas celui du coordonnateur"),
        "{problem}"
    );
    let mut no_buyer = award_body(&vendor_siret);
    no_buyer["decp"].as_object_mut().unwrap().remove("acheteur_siret");
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&no_buyer)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["decp.acheteur_siret".to_string()]), "{name}: {problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("n'a pas de SIRET au répertoire"), "{problem}");

    // A tenant of a member's école, to receive the vendor of record.
    let ecole: String =
        sqlx::query_scalar("SELECT id FROM orgs WHERE kind = 'etablissement' AND commune_code = $1 LIMIT 1")
            .bind(&members[3].0.code)
            .fetch_one(w.store.pool())
            .await
            .unwrap();
    let state = crate::common::app::app_state(w.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "ecole-membre" },
        "spec": { "organisation": ecole, "hostname": "ecole-membre.ent.example.fr", "bouquet": "socle-1d" }
    }))
    .unwrap();
    entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();

    // The titulaire's SIREN is already the registry's as an hébergeur: one legal person, one
    // name; another name is refused, naming the one known to a caller who reads it (an
    // administrator; see an_award_takes_no_public_body_for_titulaire… for the coordinator).
    new_org(&w.store, OrgKind::Hebergeur, "ENT Éditions SAS", &vendor_siret[..9], None).await;
    let mut renamed = award_body(&vendor_siret);
    renamed["vendor_name"] = json!("Nouvel éditeur <b>SARL</b>");
    let admin_late = w.admin().await.to(&after_standstill);
    let (status, problem) = send(admin_late.post(api(&format!("/groupements/{id}/award"))).json(&renamed)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["vendor_name".to_string()]), "{name}: {problem}");
    assert!(problem.to_string().contains("sous le nom « ENT Éditions SAS »"), "{name}: {problem}");

    // The amounts awarded are the accord-cadre's maximum, the DQE at the titulaire's prices:
    // another figure (the M2 review's 1,00 €) is refused on its field, naming the right one.
    let mut one_euro = award_body(&vendor_siret);
    one_euro["amount_ht_cents"] = json!(100);
    one_euro["amount_ttc_cents"] = json!(100);
    let (status, problem) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&one_euro)).await;
    let both = vec!["amount_ht_cents".to_string(), "amount_ttc_cents".to_string()];
    assert_eq!((status, fields(&problem)), (422, both), "{name}: {problem}");
    assert!(problem.to_string().contains("maximum aux prix unitaires du titulaire"), "{name}: {problem}");

    // The award.
    let (status, g) = send(late.post(api(&format!("/groupements/{id}/award"))).json(&award_body(&vendor_siret))).await;
    assert_eq!(status, 200, "{name}: {g}");
    let awarded_ht = g["award"]["amount_ht_cents"].as_i64().unwrap();
    let awarded_ttc = g["award"]["amount_ttc_cents"].as_i64().unwrap();
    assert_eq!(g["status"], "awarded");
    let vendor = entcp::registry::resolve_org(&w.store, &format!("editeur:{}", &vendor_siret[..9])).await.unwrap();
    assert_eq!(vendor.siret.as_deref(), Some(vendor_siret.as_str()), "{name}: vendor in the registry");
    let contracts = entcp::contracts::list_for_processor(&w.store, &vendor.id).await.unwrap();
    assert_eq!(contracts.len(), 25, "{name}");
    assert!(contracts.iter().all(|c| c.art28_clauses && c.source_kind == "groupement"));
    let tenant = entcp::tenants::get_tenant(&w.store, "ecole-membre").await.unwrap().unwrap();
    assert_eq!(tenant.vendor.map(|v| v.id), Some(vendor.id.clone()), "{name}: the tenant points to the vendor");

    // The notices name the page where their reader acts: the coordinator the groupement, each
    // member its own quote-part (the mailer turns the page into a link, see `support`).
    let reference = g["reference"].as_str().unwrap();
    let notices = common::queued_notices(&w.store, "groupement").await;
    let pages = |event: &str| -> Vec<String> {
        let of_event = notices.iter().filter(|m| m.context["event"] == event);
        of_event.map(|m| m.context["page"].as_str().unwrap_or_default().to_string()).collect()
    };
    assert!(pages("applied").len() >= 25, "{name}");
    assert!(pages("applied").iter().all(|p| *p == format!("/groupements/{reference}")), "{name}");
    let mut shares: Vec<String> =
        members.iter().map(|(c, _)| format!("/groupements/{reference}/quotes-parts/{}", c.id)).collect();
    shares.sort();
    let mut awarded = pages("awarded");
    awarded.sort();
    assert_eq!(awarded, shares, "{name}: one notice per member, to its own quote-part");

    // Shares: only the common expenses are split (10 % to the coordinator, 90 % by the key),
    // exactly, per member and per year; each member's own orders, apart, are its quantities × the
    // awarded unit prices — the awarded maximum is never divided.
    let (status, shares) = send(w.coord.get(api(&format!("/groupements/{id}/shares")))).await;
    assert_eq!(status, 200, "{name}: {shares}");
    assert_eq!(shares["common_expenses_cents"], 1_200_000, "{name}");
    assert_eq!(shares["coordinator_common_expenses_cents"], 120_000, "{name}");
    let list = shares["shares"].as_array().unwrap();
    assert_eq!(list.len(), 25);
    let total = |key: &str| list.iter().map(|s| s[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!(total("common_expenses_cents"), 1_080_000, "{name}");
    assert!(list.iter().all(|s| s.get("amount_ttc_cents").is_none()), "{name}: no division of the whole amount");
    let years_of =
        |s: &Value, key: &str| -> Vec<i64> { s[key].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect() };
    for s in list {
        let q = &s["quantities"];
        let accounts =
            ["pupils", "teacher_accounts", "parent_accounts"].iter().map(|k| q[k].as_i64().unwrap()).sum::<i64>();
        let schools = q["schools"].as_i64().unwrap();
        let own = s["own_orders_ht_cents"].as_i64().unwrap();
        // 30 months: two years of subscriptions, then half a year (accounts × 6 / 12 account-years).
        assert_eq!(own, accounts * 450 * 2 + accounts * 225 + schools * 35_000, "{name}: {s}");
        assert_eq!(s["own_orders_ttc_cents"].as_i64().unwrap(), own + (own * 20 + 50) / 100, "{name}");
        let common = years_of(s, "common_expenses_per_year_cents");
        assert_eq!(common.len(), 3);
        assert_eq!(common.iter().sum::<i64>(), s["common_expenses_cents"].as_i64().unwrap());
        let orders = years_of(s, "own_orders_per_year_ht_cents");
        assert_eq!(orders, vec![accounts * 450 + schools * 35_000, accounts * 450, accounts * 225], "{name}");
    }
    // The presentation note shows the same table: each member's common share and its own orders.
    let (status, note) = send(gen("presentation")).await;
    assert_eq!(status, 201, "{name}: {note}");
    let note_text = odt_text(&download(&note, "odt").send().await.bytes);
    let first = &list[0];
    let first_name = first["member"]["name"].as_str().unwrap();
    let common_euros = euros_fr(first["common_expenses_cents"].as_i64().unwrap());
    let own_euros = euros_fr(first["own_orders_ht_cents"].as_i64().unwrap());
    assert!(note_text.contains(first_name) && note_text.contains(&common_euros), "{name}: {common_euros} in the note");
    assert!(note_text.contains(&own_euros), "{name}: own orders {own_euros} in the note");
    // Once awarded, it names the titulaire, the notification, the end and the awarded amounts.
    for needle in [
        format!("Titulaire\n{} (SIRET {vendor_siret})\n", vendor.name),
        "Date de notification\n17 octobre 2026\n".to_string(),
        "Fin du marché\n16 avril 2029\n".to_string(),
        // Domain review 39, G6: the awarded amount is the accord-cadre's maximum, the DQE beside it.
        french(&format!("Montant maximum de l'accord-cadre HT\n{}\n", euros_fr(awarded_ht))),
        french(&format!("Montant maximum de l'accord-cadre TTC\n{}\n", euros_fr(awarded_ttc))),
        "Montant du DQE HT aux prix unitaires du titulaire\n".to_string(),
        "Notification du marché\n17 octobre 2026\n".to_string(),
    ] {
        assert!(note_text.contains(&needle), "{name}: the awarded note lacks « {needle} »: {note_text}");
    }
    assert!(!note_text.contains("Attribution prévue"), "{name}: the award took place");
    // F10 (domain review 37): the note states the convention constitutive's end as its article 10
    // does and, when it outlasts the marché, says so.
    let (_, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    let end = conv["end_date"].as_str().unwrap();
    let said = french(&format!("la convention constitutive court jusqu'au {}", entcp::clock::french_date(end)));
    assert!(note_text.contains(&said), "{name}: « {said} » in {note_text}");
    let outlasts = french(", au-delà du terme du marché (16 avril 2029)");
    assert_eq!(note_text.contains(&outlasts), end > "2029-04-16", "{name}: {end}: {note_text}");
    assert!(!note_text.contains("court jusqu'à son terme"), "{name}: {note_text}");
    // The BPU/DQE once awarded: the awarded unit prices, line amounts, TVA and TTC as formulas.
    let (status, bpu) = send(gen("quantites")).await;
    assert_eq!((status, bpu["version"].as_i64()), (201, Some(2)), "{name}: {bpu}");
    let content = part(&download(&bpu, "ods").send().await.bytes, "content.xml");
    let total_accounts: i64 = list
        .iter()
        .map(|s| {
            ["pupils", "teacher_accounts", "parent_accounts"]
                .iter()
                .map(|k| s["quantities"][k].as_i64().unwrap())
                .sum::<i64>()
        })
        .sum();
    let total_schools: i64 = list.iter().map(|s| s["quantities"]["schools"].as_i64().unwrap()).sum();
    // Account-years over 30 months: total × 30 / 12, to the hundredth; the amount to the cent.
    let account_years_hundredths = total_accounts * 250;
    let accounts_ht = (account_years_hundredths * 450 + 50) / 100;
    let lot_ht = accounts_ht + total_schools * 35_000;
    let vat = (lot_ht * 20 + 50) / 100;
    assert_eq!((awarded_ht, awarded_ttc), (lot_ht, lot_ht + vat), "{name}: the award is the DQE's maximum");
    let account_formula =
        if account_years_hundredths % 100 == 0 { "of:=[.C3]*[.D3]" } else { "of:=ROUND([.C3]*[.D3];2)" };
    for (formula, cents) in [
        (account_formula, accounts_ht),
        ("of:=[.C4]*[.D4]", total_schools * 35_000),
        ("of:=SUM([.E3:.E4])", lot_ht),
        ("of:=ROUND([.E5]*20/100;2)", vat),
        ("of:=[.E5]+[.E6]", lot_ht + vat),
    ] {
        let cell = format!(
            r#"table:formula="{formula}" office:value-type="currency" office:currency="EUR" office:value="{}""#,
            euro_value(cents)
        );
        assert!(content.contains(&cell), "{name}: the BPU/DQE lacks {cell}");
    }
    let quantity = if account_years_hundredths % 100 == 0 {
        (account_years_hundredths / 100).to_string()
    } else {
        (account_years_hundredths as f64 / 100.0).to_string()
    };
    assert!(content.contains(&format!(r#"office:value="{quantity}""#)), "{name}: account-years quantity {quantity}");
    assert!(content.contains("compte × an sur 30\u{a0}mois"), "{name}: the duration beside the quantity");
    assert!(content.contains(r#"office:value="4.50""#), "{name}: the awarded unit price");
    // The CCAP once awarded: the titulaire, and the maximum valued at its unit prices (the DQE's
    // totals: HT, and TTC with the lot's TVA).
    let (status, ccap_awarded) = send(gen("ccap")).await;
    assert_eq!((status, ccap_awarded["version"].as_i64()), (201, Some(2)), "{name}: {ccap_awarded}");
    let ccap_text = odt_text(&download(&ccap_awarded, "odt").send().await.bytes);
    for needle in [
        format!("Titulaire\n{} (SIRET {vendor_siret})\n", vendor.name),
        format!("Montant maximum HT aux prix unitaires du titulaire\n{}\n", euros_fr(lot_ht)),
        format!("Montant maximum TTC aux prix unitaires du titulaire\n{}\n", euros_fr(lot_ht + vat)),
        "soit jusqu'au 16 avril 2029".to_string(),
    ] {
        assert!(ccap_text.contains(&french(&needle)), "{name}: the awarded CCAP lacks « {needle} »: {ccap_text}");
    }
    // A member sees the member list and its own share only; an outsider neither.
    let (status, own) = send(members[5].1.get(api(&format!("/groupements/{id}/shares")))).await;
    assert_eq!(status, 200, "{name}: {own}");
    assert_eq!(own["shares"].as_array().unwrap().len(), 1);
    assert_eq!(own["shares"][0]["member"]["id"], members[5].0.id.as_str());
    let (status, list) = send(members[5].1.get(api(&format!("/groupements/{id}/members")))).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(25)), "{name}");
    // The outsider reads the groupement itself: refused (403), not told it does not exist.
    for part in ["members", "shares", "documents"] {
        let (status, problem) = send(w.outsider.get(api(&format!("/groupements/{id}/{part}")))).await;
        assert_eq!(status, 403, "{name}: {part}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("réservé au coordonnateur"), "{name}: {problem}");
    }

    // The DECP record: published by the coordinator (a reader's GET publishes nothing), then
    // open to every reader, with every required field of the schema.
    let decp_url = api(&format!("/groupements/{id}/decp"));
    let (status, early) = send(w.outsider.get(&decp_url)).await;
    assert_eq!(status, 409, "{name}: not published yet: {early}");
    let (status, published) = send(late.get(&decp_url)).await;
    assert_eq!(status, 200, "{name}: {published}");
    let (status, decp) = send(w.outsider.get(&decp_url)).await;
    assert_eq!(status, 200, "{name}: {decp}");
    assert_eq!(decp, published, "{name}: the publication date is fixed by the coordinator's export");
    let marche = &decp["marches"]["marche"][0];
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../ent-groupements/src/groupements/schema_decp_v2.0.3.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for field in schema["definitions"]["marche"]["required"].as_array().unwrap() {
        assert!(marche.get(field.as_str().unwrap()).is_some(), "{name}: DECP lacks {field}");
    }
    assert_eq!(entcp::groupements::decp::check(marche), vec![], "{name}");
    // The published file validates against the complete official schema, shipped with its version.
    assert_eq!(entcp::groupements::decp::check_publication(&decp), vec![], "{name}");
    assert_eq!(entcp::groupements::decp::SCHEMA_VERSION, "2.0.3");
    assert_eq!(marche["titulaires"][0]["titulaire"]["id"], vendor_siret.as_str());
    let buyer = luhn(&format!("{}0001", luhn("25940001")));
    assert_eq!(marche["acheteur"]["id"], buyer.as_str(), "{name}: the coordinator's SIRET");
    let coordinator = entcp::registry::resolve_org(&w.store, &w.coordinator.id).await.unwrap();
    assert_eq!(coordinator.siret, None, "{name}: kept on the award, the registry untouched");
    assert_eq!(marche["montant"].as_f64(), Some(awarded_ht as f64 / 100.0), "{name}: {marche}");
    assert_eq!(marche["dateNotification"], "2026-10-17");
    assert_eq!(marche["id"], g["reference"]);

    // The shared library: another académie's coordinator finds the shared CCTP only.
    let other =
        new_org(&w.store, OrgKind::Epci, "Communauté d'agglomération d'ailleurs", &luhn("24000002"), Some("13")).await;
    let elsewhere = w.app.client(&token_for(&w.store, "coord@ailleurs.fr", Role::Coordinateur, Some(&other.id)).await);
    let cctp_id = cctp["id"].as_str().unwrap();
    let (status, _) = send(elsewhere.get(api(&format!("/groupements/{id}/documents/{cctp_id}")))).await;
    assert_eq!(status, 403, "{name}: not shared yet: refused, as the list of its documents");
    let (status, shared) = send(
        w.coord.post(api(&format!("/groupements/{id}/documents/{cctp_id}/share"))).json(&json!({ "shared": true })),
    )
    .await;
    assert_eq!((status, shared["shared"].as_bool()), (200, Some(true)), "{name}: {shared}");
    let (status, library) = send(elsewhere.get(api("/groupement-library"))).await;
    assert_eq!(status, 200, "{name}");
    let items = library["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{name}: {library}");
    assert!(!library.to_string().contains("coord@sm94.fr"), "no personal data in the library");
    let resp = elsewhere.get(api(&format!("/groupements/{id}/documents/{cctp_id}?format=odt"))).send().await;
    assert_eq!(resp.status, 200, "{name}");
    let (status, _) =
        send(elsewhere.get(api(&format!("/groupements/{id}/documents/{}", annex["id"].as_str().unwrap())))).await;
    assert_eq!(status, 403, "{name}: the unshared annex stays private");
    // A version that does not exist: refused all the same to a non-member (nothing told of which
    // exist), unknown to the coordinator.
    let unknown = api(&format!("/groupements/{id}/documents/0190aaaa-0000-7000-8000-000000000000"));
    assert_eq!(send(elsewhere.get(&unknown)).await.0, 403, "{name}");
    assert_eq!(send(w.coord.get(&unknown)).await.0, 404, "{name}");

    // Once awarded, the BPU/DQE, the presentation note and the CCAP print the titulaire's unit
    // prices (its lines, the members' own orders, the maximum valued): never shared, 409 saying why.
    for doc in [&bpu, &note, &ccap_awarded] {
        let share = api(&format!("/groupements/{id}/documents/{}/share", doc["id"].as_str().unwrap()));
        let (status, problem) = send(w.coord.post(&share).json(&json!({ "shared": true }))).await;
        assert_eq!(status, 409, "{name}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("prix unitaires du titulaire"), "{name}: {problem}");
    }
    // Versions shared before this rule (the pre-award annex among them) are no longer served to
    // a library reader, listed or downloaded; the coordinator and the members still read them.
    let priced = [annex["id"].as_str().unwrap(), bpu["id"].as_str().unwrap(), note["id"].as_str().unwrap()];
    for doc in priced {
        let mut tx = w.store.begin_write().await.unwrap();
        sqlx::query("UPDATE groupement_documents SET shared = 1 WHERE id = $1")
            .bind(doc)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    for filter in ["", "?kind=quantites", "?kind=presentation"] {
        let (status, library) = send(elsewhere.get(api(&format!("/groupement-library{filter}")))).await;
        assert_eq!(status, 200, "{name}: {library}");
        let ids: Vec<&str> = library["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert!(ids.iter().all(|d| *d == cctp_id), "{name} {filter}: {library}");
    }
    for doc in priced {
        let url = api(&format!("/groupements/{id}/documents/{doc}"));
        let (status, problem) = send(elsewhere.get(&url)).await;
        assert_eq!(status, 403, "{name}: {problem}");
        assert_eq!(w.coord.get(&url).send().await.status, 200, "{name}: the coordinator");
        assert_eq!(members[5].1.get(&url).send().await.status, 200, "{name}: a member");
    }
    // The coordinator may still stop sharing one.
    let unshare = api(&format!("/groupements/{id}/documents/{}/share", priced[1]));
    let (status, unshared) = send(w.coord.post(&unshare).json(&json!({ "shared": false }))).await;
    assert_eq!((status, unshared["shared"].as_bool()), (200, Some(false)), "{name}: {unshared}");
}

/// The CCTP sections a buyer needs; its administrative clauses (penalties, Art. 28 contract) are
/// the CCAP's, to which it refers.
fn cctp_sections_are_there(text: &str, name: &str) {
    for needle in [
        "L. 2113-10",
        // The SDET in force, in the text and in the list of annexes.
        "version 6.4, que le présent CCTP référence et rend applicable au marché",
        "(SDET), version 6.4, publié par le ministère chargé de l'éducation nationale",
        "SecNumCloud",
        "« cloud au centre »",
        "législation d'un État tiers",
        "disponibilité mensuelle du service est d'au moins 99,5 %",
        "objectif de point de reprise (RPO) est de 24 heures",
        "objectif de délai de reprise (RTO)",
        "test d'intrusion",
        "auditer la sécurité",
        "Pénalités",
        "sont fixées par l'article 10 du cahier des clauses administratives particulières (CCAP)",
        "reprend les données et contenus de la solution précédente",
        "heures de formation",
        // The support desk's standard N3 target for P1, in business hours, both where it is promised.
        "Une interruption totale du service est un incident de priorité P1 : elle est résolue dans un délai de 8 heures ouvrées",
        "8 h ouvrées",
        // The Art. 28(3) contract is the CCAP's article 9.
        "par l'article 9 du cahier des clauses administratives particulières (CCAP), qui tient lieu de contrat",
    ] {
        assert!(text.contains(&french(needle)), "{name}: CCTP lacks « {needle} »");
    }
    // The CCTP's art. 7 refers to the CCAP's authorisation (article 9.2); the clause is the CCAP's.
    for moved in [
        "€ HT par heure ouvrée de retard",
        "Par dérogation au CCAG-TIC",
        "autorisation écrite préalable, spécifique ou générale",
    ] {
        assert!(!text.contains(&french(moved)), "{name}: the CCTP still holds « {moved} », the CCAP's");
    }
}

/// Edits the stored terms of the groupement `id` behind the API, as a row recorded under
/// earlier rules holds them.
async fn edit_terms(store: &Store, id: &str, edit: impl FnOnce(&mut Value)) {
    let terms: String = sqlx::query_scalar("SELECT terms FROM groupements WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let mut terms: Value = serde_json::from_str(&terms).unwrap();
    edit(&mut terms);
    sqlx::query("UPDATE groupements SET terms = $1 WHERE id = $2")
        .bind(terms.to_string())
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap();
}

backend_test!(a_groupement_of_several_lots_awards_each_lot_apart);
/// Domain review 42, F2: each lot is a distinct prestation awarded apart (article L. 2113-10 du
/// code de la commande publique). A lot other than the ENT's has the lines its coordinator defines
/// (two such lots, different lines, checked: 422 on the line's field; exactly one lot carries the
/// ENT); a lot is declared sans suite while the others go on (R. 2185-1), never the ENT's; the
/// award names a titulaire, prices and a notification per lot; the DECP publishes one record per
/// awarded lot, each its own id, amount and titulaire; the acte d'engagement is one per lot with
/// its amounts; a member's own orders are counted per lot and summed; its notice lists each lot;
/// and the market that binds a member's ENT is the ENT lot's titulaire, not the training lot's.
async fn a_groupement_of_several_lots_awards_each_lot_apart(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let ent_lot = json!({ "number": 2, "title": "Solution d'espace numérique de travail" });
    let training = json!({ "number": 1, "title": "Accompagnement et formation", "lines": [
        { "label": "Journée de formation des enseignants sur site", "unit": "journée", "quantity": 40,
          "estimated_unit_price_ht_cents": 90_000 },
        { "label": "Classe virtuelle", "unit": "session", "quantity": 20 }
    ] });
    let assistance = json!({ "number": 3, "title": "Assistance aux usagers", "lines": [
        { "label": "Heure d'assistance téléphonique", "unit": "heure", "quantity": 100 }
    ] });
    // Two lots carrying the ENT, then a line without quantity: refused on their fields, nothing written.
    let before = common::count(&w.store, "SELECT COUNT(*) FROM groupements", &[]).await;
    let mut body = minimal_groupement(&w, "2026-09-30");
    body["lots"] = json!([{ "number": 1, "title": "ENT" }, ent_lot]);
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["lots".to_string()]), "{name}: {problem}");
    let mut bad = training.clone();
    bad["lines"][1]["quantity"] = json!(0);
    body["lots"] = json!([bad, ent_lot]);
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["lots[0].lines[1].quantity".to_string()]), "{name}: {problem}");
    let after = common::count(&w.store, "SELECT COUNT(*) FROM groupements", &[]).await;
    assert_eq!(after, before, "{name}: nothing written");

    body["lots"] = json!([training, ent_lot, assistance]);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    assert_eq!(g["lots"][0]["lines"][0]["quantity"], 40, "{name}: {g}");
    assert!(g["lots"][1].get("lines").is_none(), "{name}: the ENT lot has the bouquet's lines: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    let reference = g["reference"].as_str().unwrap().to_string();
    // A member may not write the lots (the coordinator's act).
    let url = api(&format!("/groupements/{id}"));
    let version = format!("\"{}\"", g["version"]);
    let edit = json!({ "lots": [ent_lot] });
    let (status, _) = send(w.communes[0].1.patch(&url).header("if-match", &version).json(&edit)).await;
    assert_eq!(status, 403, "{name}: a collectivité edits no lot");
    let conv = first_commune_accepted(&w, &id).await;
    sign_constitutive(&w, &signing, &conv, None, &[0]).await;
    let coord = w.coord.to(&signing);
    launch_consultation(&coord, &id, name).await;

    // The BPU/DQE gives each lot its own lines.
    let sheets = ods_sheets(&generated(&w, &id, "quantites", "ods").await);
    let bpu = format!("{sheets:?}");
    for line in ["Journée de formation des enseignants sur site", "Classe virtuelle", "Heure d'assistance téléphonique"]
    {
        assert_eq!(bpu.matches(line).count(), 1, "{name}: « {line} » once, in its lot: {bpu}");
    }
    assert_eq!(bpu.matches("Abonnement annuel par compte ENT").count(), 1, "{name}: the ENT lot only");

    // Lot 3 sans suite; the ENT lot may not be, nor a lot unknown.
    let (_, g) = send(coord.get(&url)).await;
    let declare = |lot: u32, version: &Value| {
        coord
            .post(api(&format!("/groupements/{id}/lots/{lot}/sans-suite")))
            .header("if-match", format!("\"{version}\""))
            .json(&json!({ "motif": "infructuosite", "justification": "Aucune offre reçue pour ce lot." }))
    };
    let (status, problem) = send(declare(2, &g["version"])).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("porte la solution"), "{name}: {problem}");
    assert_eq!(send(declare(9, &g["version"])).await.0, 404, "{name}: no lot 9");
    let (status, g) = send(declare(3, &g["version"])).await;
    assert_eq!(status, 200, "{name}: {g}");
    assert_eq!((g["status"].as_str(), g["lots_sans_suite"][0]["lot"].as_i64()), (Some("consultation"), Some(3)));

    // The award, lot by lot: lot 3 is not awarded, every other lot is.
    let later = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    let coord = w.coord.to(&later);
    let ent = award_notified_on("2026-11-30");
    let trainer_siret = luhn(&format!("{}0001", luhn("81234568")));
    let mut trainer = award_body(&trainer_siret);
    trainer["vendor_name"] = json!("Formations numériques SARL");
    trainer["notified_on"] = json!("2026-11-27");
    trainer["unit_prices"] = json!([
        { "lot": 1, "line": { "custom": 1 }, "unit_price_ht_cents": 50_000 },
        { "lot": 1, "line": { "custom": 2 }, "unit_price_ht_cents": 20_000 }
    ]);
    let entry = |lot: u32, award: &Value| {
        let mut e = award.clone();
        e.as_object_mut().unwrap().retain(|k, _| k != "rejections_by_post");
        e["lot"] = json!(lot);
        // Each price names the lot it prices.
        e["unit_prices"].as_array_mut().unwrap().iter_mut().for_each(|p| p["lot"] = json!(lot));
        e
    };
    let award_url = api(&format!("/groupements/{id}/award"));
    let (status, problem) =
        send(coord.post(&award_url).json(&json!({ "lots": [entry(2, &ent), entry(3, &trainer)] }))).await;
    let mut refused = fields(&problem);
    refused.sort();
    assert_eq!((status, refused), (422, vec!["lots".to_string(), "lots[1].lot".to_string()]), "{name}: {problem}");
    let (status, g) = send(coord.post(&award_url).json(&json!({ "lots": [entry(1, &trainer), entry(2, &ent)] }))).await;
    assert_eq!(status, 200, "{name}: {g}");
    assert_eq!((g["status"].as_str(), g["award"]["lot"].as_i64()), (Some("awarded"), Some(2)), "{name}: {g}");
    assert_eq!(g["award"]["vendor"]["name"], "ENT Éditions SAS", "{name}: the ENT lot's titulaire");
    let lots = g["award"]["lots"].as_array().unwrap();
    assert_eq!(lots.len(), 2, "{name}: {g}");
    // 40 journées × 500 € + 20 sessions × 200 €, no margin.
    assert_eq!((lots[0]["lot"].as_i64(), lots[0]["amount_ht_cents"].as_i64()), (Some(1), Some(2_400_000)));
    assert_eq!(lots[0]["amount_ttc_cents"], 2_880_000, "{name}: {g}");
    assert_eq!(lots[0]["vendor"]["name"], "Formations numériques SARL", "{name}: {g}");
    assert_eq!(lots[1]["amount_ht_cents"], g["award"]["amount_ht_cents"], "{name}: the ENT lot is the award's");
    let ent_amount = lots[1]["amount_ht_cents"].as_i64().unwrap();
    let ids = [format!("{}L1", &reference[3..]), format!("{}L2", &reference[3..])];
    assert_eq!(lots[0]["marche_id"], ids[0].as_str(), "{name}: {g}");

    // DECP: one record per awarded lot, its own id, amount and titulaire; none for lot 3.
    let (status, file) = send(coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 200, "{name}: {file}");
    let records = file["marches"]["marche"].as_array().unwrap();
    let got: Vec<(&str, f64, &str)> = records
        .iter()
        .map(|m| {
            let titulaire = m["titulaires"][0]["titulaire"]["id"].as_str().unwrap();
            (m["id"].as_str().unwrap(), m["montant"].as_f64().unwrap(), titulaire)
        })
        .collect();
    let ent_siret = ent["vendor_siret"].as_str().unwrap();
    let expected = vec![
        (ids[0].as_str(), 24_000.0, trainer_siret.as_str()),
        (ids[1].as_str(), ent_amount as f64 / 100.0, ent_siret),
    ];
    assert_eq!(got, expected, "{name}: {file}");
    assert!(entcp::groupements::decp::check_publication(&file).is_empty(), "{name}: {file}");

    // The acte d'engagement: one per lot, each its titulaire and amounts.
    let ae = odt_text(&generated(&w, &id, "ae", "odt").await);
    assert!(ae.contains(&french("Lot n° 1 – Accompagnement et formation – A – Objet")), "{name}: {ae}");
    assert!(ae.contains("Formations numériques SARL") && ae.contains("ENT Éditions SAS"), "{name}: {ae}");
    assert!(ae.contains(&euros_in_letters(2_400_000, "hors taxes")), "{name}: lot 1's DQE: {ae}");
    assert!(!ae.contains("Assistance aux usagers –"), "{name}: no AE for the lot sans suite");

    // The member's own orders, per lot and summed: all of lot 1's DQE (the only member).
    let (status, shares) = send(coord.get(api(&format!("/groupements/{id}/shares")))).await;
    assert_eq!(status, 200, "{name}: {shares}");
    let share = &shares["shares"][0];
    let per_lot: Vec<(i64, i64)> = share["lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["lot"].as_i64().unwrap(), l["own_orders_ht_cents"].as_i64().unwrap()))
        .collect();
    assert_eq!(per_lot[0], (1, 2_400_000), "{name}: {shares}");
    assert_eq!(per_lot.len(), 2, "{name}: no lot 3: {shares}");
    assert_eq!(share["own_orders_ht_cents"].as_i64(), Some(per_lot[0].1 + per_lot[1].1), "{name}: {shares}");

    // The member's notice lists each lot, its titulaire, or its sans suite.
    let notices = common::queued_notices(&w.store, "groupement").await;
    let awarded: Vec<_> = notices
        .iter()
        .filter(|n| n.context["event"] == "awarded" && n.context["reference"] == reference.as_str())
        .collect();
    let mail = entcp::notify::mailer::render("groupement", &awarded[0].context).unwrap();
    let text = mail.text;
    for said in ["attribué lot par lot", "Formations numériques SARL", "Assistance aux usagers", "déclaré sans suite"]
    {
        assert!(text.contains(said), "{name}: the notice lacks « {said} »: {text}");
    }

    // The market binding the member's ENT is the ENT lot's titulaire, not the training lot's.
    let member = &w.communes[0].0;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let mut conn = w.store.conn().await.unwrap();
    let market = entcp::contracts::binding_market(&mut conn, member, day, day).await.unwrap().expect("a market");
    assert_eq!(market.vendor.name, "ENT Éditions SAS", "{name}");
    assert_eq!(market.reference, reference, "{name}");
}

backend_test!(the_rc_and_the_ae_are_written_from_the_groupement_before_and_after_the_award);
/// The règlement de la consultation and the acte d'engagement: listed with the other pieces, in
/// the text pieces' formats, written from what the groupement holds (its coordinator as the
/// buyer, its members, its reference, its duration); the RC lists the pieces of the consultation
/// file (itself included, not the presentation note) and the criteria with their weights; the AE
/// leaves the contractor's fields to the candidate before the award and names the titulaire, its
/// DQE at its unit prices and the notification after it. A hostile titulaire name stays text.
async fn the_rc_and_the_ae_are_written_from_the_groupement_before_and_after_the_award(db: crate::common::TestDb) {
    use entcp::groupements::documents::Kind;
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    let reference = g["reference"].as_str().unwrap().to_string();
    let member = &w.communes[0].0;
    let gen = |kind: &str| w.coord.post(api(&format!("/groupements/{id}/documents"))).json(&json!({ "kind": kind }));
    let download = |doc: &Value, format: &str| {
        w.coord.get(api(&format!("/groupements/{id}/documents/{}?format={format}", doc["id"].as_str().unwrap())))
    };
    let (status, rc) = send(gen("rc")).await;
    assert_eq!(status, 201, "{name}: {rc}");
    assert_eq!(rc["title"], "Règlement de la consultation (RC)", "{name}");
    assert_eq!(rc["formats"], text_formats(), "{name}: the CCTP's formats");
    let (status, ae) = send(gen("ae")).await;
    assert_eq!(status, 201, "{name}: {ae}");
    assert_eq!(ae["title"], "Acte d'engagement (AE)", "{name}");
    assert_eq!(ae["formats"], text_formats(), "{name}");
    let (status, listed) = send(w.coord.get(api(&format!("/groupements/{id}/documents")))).await;
    assert_eq!(status, 200, "{name}: {listed}");
    let kinds: Vec<&str> = listed.as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"rc") && kinds.contains(&"ae"), "{name}: {kinds:?}");
    // Every format a version lists is one this server makes: each downloads.
    for doc in listed.as_array().unwrap() {
        assert_eq!(doc["formats"], text_formats(), "{name}: {doc}");
        for format in doc["formats"].as_array().unwrap() {
            let got = download(doc, format.as_str().unwrap()).send().await;
            assert_eq!(got.status, 200, "{name}: {} in {format}: {}", doc["kind"], got.text);
        }
    }
    for doc in [&rc, &ae] {
        let html = download(doc, "html").send().await;
        assert_eq!(html.status, 200, "{name}");
        assert!(html.text.contains("<html") && html.text.contains(&reference), "{name}");
        let pdf = download(doc, "pdf").send().await;
        match pdf.status {
            200 => assert!(pdf.bytes.starts_with(b"%PDF"), "{name}"),
            406 => {
                assert!(pdf.text.contains("Format indisponible") && pdf.text.contains("ODT"), "{name}: {}", pdf.text)
            }
            other => panic!("{name}: PDF answered {other}"),
        }
    }

    // The RC: the coordinator is the buyer for the members it lists; the open procedure the CCAP's
    // accord-cadre presupposes; every piece of the consultation file; the weighted criteria.
    let rc_text = odt_text(&download(&rc, "odt").send().await.bytes);
    let rc_flat = rc_text.split_whitespace().collect::<Vec<_>>().join(" ");
    let coordinator = &w.coordinator.name;
    for needle in [
        format!("Acheteur {coordinator}, coordonnateur du groupement de commandes {reference}"),
        "articles L. 2113-6 et L. 2113-7 du code de la commande publique".to_string(),
        format!("Le groupement compte un membre : Membre Type Code {} commune {}", member.name, member.code),
        "procédure d'appel d'offres ouvert, en application des articles L. 2124-2, R. 2124-2 et R. 2161-2 à R. 2161-5"
            .to_string(),
        "articles R. 2162-1 à R. 2162-6, R. 2162-13 et R. 2162-14".to_string(),
        "conclu pour une durée de 36 mois à compter de sa notification".to_string(),
        "DC1 (lettre de candidature) et DC2".to_string(),
        "articles R. 2143-3 et R. 2143-4".to_string(),
        "conformément à l'article R. 2152-7 du code de la commande publique".to_string(),
        "Valeur technique, appréciée au vu du mémoire technique : 60 points".to_string(),
        "Prix, apprécié au vu du montant total HT du détail quantitatif estimatif (DQE) : 40 points".to_string(),
        "Le délai de validité des offres est de 120 jours".to_string(),
        "conformément à l'article R. 2132-7".to_string(),
        "référé précontractuel (article L. 551-1 du code de justice administrative)".to_string(),
    ] {
        assert!(rc_flat.contains(&needle), "{name}: the RC lacks « {needle} »: {rc_text}");
    }
    for kind in Kind::ALL {
        let listed =
            rc_text.lines().any(|l| [" ;", "."].iter().any(|end| l == french(&format!("{}{end}", kind.label()))));
        // Every piece but the presentation note, the coordinator's note to its members.
        assert_eq!(listed, kind != Kind::Presentation, "{name}: {kind:?} in the RC's file: {rc_text}");
    }

    // The AE before the award: the buyer and the members; the contractor's fields left to the
    // candidate, clearly marked; the DQE's amounts to fill in; the buyer's signature block.
    let ae_text = odt_text(&download(&ae, "odt").send().await.bytes);
    for needle in [
        format!("Groupement de commandes\n{reference}\n"),
        format!("Acheteur\n{coordinator}, coordonnateur du groupement de commandes {reference}\n"),
        format!("{}\ncommune\n{}\n", member.name, member.code),
        "Raison sociale\n…… (à compléter par le candidat)\n".to_string(),
        "Numéro SIRET\n…… (à compléter par le candidat)\n".to_string(),
        "Montant total HT du DQE\n…… € (à compléter par le candidat)\n".to_string(),
        "IBAN\n…… (à compléter par le candidat)\n".to_string(),
        format!("Pour le coordonnateur du groupement ({coordinator})\nLe représentant du pouvoir adjudicateur\n"),
        "36 mois à compter de sa notification.".to_string(),
    ] {
        assert!(ae_text.contains(&french(&needle)), "{name}: the AE before the award lacks « {needle} »: {ae_text}");
    }
    assert!(!ae_text.contains("Titulaire\n"), "{name}: no titulaire yet: {ae_text}");

    // Awarded to a titulaire whose name carries markup and separators.
    // Launched on 30 November, notified 46 days later, once the open call's délais have run.
    let launching = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    launch_consultation(&w.coord.to(&launching), &id, name).await;
    let mut body = award_notified_on("2027-01-15");
    let hostile = "ENT <b>Éditions</b> | SAS :: =HYPERLINK(\"http://x\")";
    body["vendor_name"] = json!(hostile);
    let notifying = TestApp::over(&w.store).clock(clock_on(2027, 1, 15)).build().await;
    let (status, g) = send(w.coord.to(&notifying).post(api(&format!("/groupements/{id}/award"))).json(&body)).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
    assert_eq!(g["award"]["vendor"]["name"], hostile, "{name}: the titulaire is the one just named");
    let siret = g["award"]["vendor_siret"].as_str().unwrap().to_string();

    // The AE after the award: the titulaire, its DQE at its unit prices (4,50 € a year per
    // account over 36 months, 350 € a set-up), the term and the notification.
    let (status, shares) = send(w.coord.get(api(&format!("/groupements/{id}/shares")))).await;
    assert_eq!(status, 200, "{name}: {shares}");
    let quantities = &shares["shares"][0]["quantities"];
    let accounts: i64 =
        ["pupils", "teacher_accounts", "parent_accounts"].iter().map(|k| quantities[k].as_i64().unwrap()).sum();
    let schools = quantities["schools"].as_i64().unwrap();
    assert!(accounts > 0 && schools > 0, "{name}: {quantities}");
    let dqe_ht = accounts * 3 * 450 + schools * 35_000;
    let dqe_ttc = dqe_ht + (dqe_ht * 20 + 50) / 100;
    let (status, ae_awarded) = send(gen("ae")).await;
    assert_eq!((status, ae_awarded["version"].as_i64()), (201, Some(2)), "{name}: {ae_awarded}");
    let text = odt_text(&download(&ae_awarded, "odt").send().await.bytes);
    for needle in [
        "Titulaire\nENT <b>Éditions</b> ¦ SAS : =HYPERLINK(\"http://x\")\n".to_string(),
        format!("SIRET\n{siret}\n"),
        // Domain review 40, G4: in figures and in letters.
        format!("Montant du DQE HT aux prix unitaires du titulaire\n{}\n", euros_in_letters(dqe_ht, "hors taxes")),
        format!(
            "Montant du DQE TTC aux prix unitaires du titulaire\n{}\n",
            euros_in_letters(dqe_ttc, "toutes taxes comprises")
        ),
        "soit du 15 janvier 2027 au 14 janvier 2030".to_string(),
        "Date de notification de l'accord-cadre\n15 janvier 2027\n".to_string(),
        "IBAN\n…… (à compléter par le titulaire)\n".to_string(),
        format!("{}\ncommune\n{}\n", member.name, member.code),
    ] {
        assert!(text.contains(&french(&needle)), "{name}: the awarded AE lacks « {needle} »: {text}");
    }
    assert!(!text.contains("à compléter par le candidat"), "{name}: the candidate's blanks are gone: {text}");
    // The titulaire's AE: its mémoire technique among the pieces, no more offer to bind a candidate.
    assert!(text.contains("mémoire technique du titulaire") && !text.contains("candidat"), "{name}: {text}");
    let html = download(&ae_awarded, "html").send().await.text;
    assert!(!html.contains("<b>Éditions") && html.contains("&lt;b&gt;Éditions"), "{name}: markup stays text");
    // It prints the titulaire's prices: never shared.
    let share = api(&format!("/groupements/{id}/documents/{}/share", ae_awarded["id"].as_str().unwrap()));
    let (status, problem) = send(w.coord.post(&share).json(&json!({ "shared": true }))).await;
    assert_eq!(status, 409, "{name}: {problem}");
}

backend_test!(a_hostile_object_adds_no_article_bullet_or_field_to_the_rc_nor_the_ae);
/// The object of the groupement, a free text of several lines, is printed in the RC and the AE
/// as one line of text: no heading, bullet, table cell or field of its own, no markup.
async fn a_hostile_object_adds_no_article_bullet_or_field_to_the_rc_nor_the_ae(db: crate::common::TestDb) {
    let name = db.name;
    let w = world(&db).await;
    let mut body = minimal_groupement(&w, "2026-09-30");
    body["object"] = json!("ENT\n## Article 99 – Clause ajoutée\n- puce | cellule :: champ <script>alert(1)</script>");
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    let id = g["id"].as_str().unwrap();
    let one_line = "ENT ## Article 99 – Clause ajoutée - puce ¦ cellule : champ <script>alert(1)</script>";
    for kind in ["rc", "ae"] {
        let (status, doc) =
            send(w.coord.post(api(&format!("/groupements/{id}/documents"))).json(&json!({ "kind": kind }))).await;
        assert_eq!(status, 201, "{name}: {doc}");
        let download = |format: &str| {
            w.coord.get(api(&format!("/groupements/{id}/documents/{}?format={format}", doc["id"].as_str().unwrap())))
        };
        let text = odt_text(&download("odt").send().await.bytes);
        assert!(text.contains(&french(one_line)), "{name} {kind}: {text}");
        let article = french("Article 99");
        assert!(!text.lines().any(|l| l.starts_with(&article) || l == "puce"), "{name} {kind}: {text}");
        let html = download("html").send().await.text;
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{name} {kind}");
        assert!(!html.contains(&format!(">{article}")), "{name} {kind}: no heading of its own");
    }
}

// The shared costs every member pays are public procurement terms: an edit's audit record says
// what moved, old and new values, not only that the groupement changed.
backend_test!(a_groupement_edit_is_audited_with_the_old_and_new_value_of_each_term_it_moved);
async fn a_groupement_edit_is_audited_with_the_old_and_new_value_of_each_term_it_moved(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let (status, g) = send(w.coord.post(api("/groupements")).json(&minimal_groupement(&w, "2026-12-31"))).await;
    assert_eq!(status, 201, "{name}: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    let (expenses, share) = (g["common_expenses_cents"].clone(), g["coordinator_share_percent"].clone());
    let change = json!({ "common_expenses_cents": 9_900_000, "coordinator_share_percent": 25 });
    let version = g["version"].as_i64().unwrap();
    let url = api(&format!("/groupements/{id}"));
    let (status, edited) = send(w.coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&change)).await;
    assert_eq!(status, 200, "{name}: {edited}");
    let summary = common::audit_summary(&w.store, "groupements.update", &id).await;
    let changes = summary["changes"].clone();
    assert_eq!(
        changes,
        json!({
            "terms.common_expenses_cents": { "before": expenses, "after": 9_900_000 },
            "terms.coordinator_share_percent": { "before": share, "after": 25 },
        }),
        "{name}: {summary}"
    );
}

// Support levels are checked when sent: a groupement recorded before the P1 rule is still
// edited (its title), and a patch sending levels without P1 is refused on `support`.
backend_test!(a_groupement_recorded_without_p1_is_edited_and_support_is_checked_only_when_sent);
async fn a_groupement_recorded_without_p1_is_edited_and_support_is_checked_only_when_sent(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let (status, g) = send(w.coord.post(api("/groupements")).json(&minimal_groupement(&w, "2026-12-31"))).await;
    assert_eq!(status, 201, "{name}: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    edit_terms(&w.store, &id, |terms| terms["support"].as_array_mut().unwrap().retain(|s| s["priority"] != "P1")).await;
    let url = api(&format!("/groupements/{id}"));
    let version = g["version"].as_i64().unwrap();
    let (status, edited) = send(
        w.coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&json!({ "title": "Nouveau titre" })),
    )
    .await;
    assert_eq!((status, edited["title"].as_str()), (200, Some("Nouveau titre")), "{name}: {edited}");
    let version = edited["version"].as_i64().unwrap();
    let without_p1 = json!({ "support": [{ "priority": "P2", "label": "Majeur", "first_response_hours": 2, "resolution_hours": 16 }] });
    let (status, problem) =
        send(w.coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&without_p1)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["support".to_string()]), "{name}: {problem}");
}

backend_test!(state_rules_versions_and_reapplications_answer_precisely);
async fn state_rules_versions_and_reapplications_answer_precisely(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let body = minimal_groupement(&w, "2026-12-31");
    // Idempotent creation: the same key gives the same groupement.
    let create = || w.coord.post(api("/groupements")).header("idempotency-key", "creation-1").json(&body);
    let (status, g) = send(create()).await;
    assert_eq!(status, 201, "{name}: {g}");
    let (status, again) = send(create()).await;
    assert_eq!((status, &again["id"]), (201, &g["id"]), "{name}");
    let id = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["cost_key_label"], "au prorata du nombre de comptes ENT");
    // The N3 commitments are those of the support desk's `standard` policy (P1: 1 h / 8 h).
    assert_eq!(g["support"].as_array().unwrap().len(), 4, "default N3 policy");
    assert_eq!(
        (g["support"][0]["priority"].as_str(), g["support"][0]["resolution_hours"].as_u64()),
        (Some("P1"), Some(8))
    );
    // Levels given by the coordinator: P1 to P4, once each, P1 among them (the CCTP's outage and RTO).
    for support in [
        json!([{ "priority": "P2", "label": "Majeur", "first_response_hours": 2, "resolution_hours": 16 }]),
        json!([{ "priority": "P1", "label": "Bloquant", "first_response_hours": 1, "resolution_hours": 8 },
               { "priority": "P1", "label": "Bloquant", "first_response_hours": 1, "resolution_hours": 8 }]),
        json!([{ "priority": "P7", "label": "Autre", "first_response_hours": 1, "resolution_hours": 8 }]),
    ] {
        let mut custom = body.clone();
        custom["support"] = support.clone();
        let (status, problem) = send(w.coord.post(api("/groupements")).json(&custom)).await;
        assert_eq!(status, 422, "{name}: {support} gives {problem}");
        assert!(problem.to_string().contains("priorit") || problem.to_string().contains("P1"), "{name}: {problem}");
    }
    let mut renforce = body.clone();
    renforce["support_policy"] = json!("renforce");
    let (status, r) = send(w.coord.post(api("/groupements")).json(&renforce)).await;
    assert_eq!(status, 201, "{name}: {r}");
    assert_eq!(r["support"][0]["resolution_hours"], 4, "{name}: the renforce policy's N3 P1 resolution");
    // A commune and an EPCI it belongs to cannot both apply: their écoles would count twice.
    let renforce_id = r["id"].as_str().unwrap();
    let (commune, client) = &w.communes[1];
    let epci =
        new_org(&w.store, OrgKind::Epci, "Communauté d'agglomération de test", &luhn("24940002"), Some("94")).await;
    entcp::registry::manage::set_member(&w.store, &admin(), &epci, commune, false, t0()).await.unwrap();
    let applications = api(&format!("/groupements/{renforce_id}/applications"));
    let application =
        |org: &Org| json!({ "applicant": org.id, "deliberation_number": "DCM-1", "deliberation_date": "2026-09-01" });
    let (status, app) = send(client.post(&applications).json(&application(commune))).await;
    assert_eq!(status, 201, "{name}: {app}");
    let root = w.app.root_client().await;
    let (status, problem) = send(root.post(&applications).json(&application(&epci))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert_eq!(problem["overlaps"], format!("commune:{}", commune.code), "{problem}");
    // The other way round: a commune whose EPCI applied first is refused too.
    let (member, member_client) = &w.communes[2];
    let other_epci =
        new_org(&w.store, OrgKind::Epci, "Communauté de communes de test", &luhn("24940003"), Some("94")).await;
    entcp::registry::manage::set_member(&w.store, &admin(), &other_epci, member, false, t0()).await.unwrap();
    let (status, app) = send(root.post(&applications).json(&application(&other_epci))).await;
    assert_eq!(status, 201, "{name}: {app}");
    let (status, problem) = send(member_client.post(&applications).json(&application(member))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert_eq!(problem["overlaps"], format!("epci:{}", other_epci.code), "{problem}");
    renforce["support_policy"] = json!("platine");
    let (status, p) = send(w.coord.post(api("/groupements")).json(&renforce)).await;
    assert_eq!(status, 422, "{name}: {p}");
    assert!(p.to_string().contains("support_policy"), "{p}");

    // Edits need If-Match; a stale version is refused; a bad key is named.
    let url = api(&format!("/groupements/{id}"));
    let (status, _) = send(w.coord.patch(&url).json(&json!({ "title": "Nouveau titre" }))).await;
    assert_eq!(status, 428, "{name}");
    let (status, _) =
        send(w.coord.patch(&url).header("if-match", "\"99\"").json(&json!({ "title": "Nouveau titre" }))).await;
    assert_eq!(status, 412, "{name}");
    let stale = g["version"].as_i64().unwrap();
    let bad_key = json!({ "cost_key": [{ "basis": "schools", "weight": 50 }, { "basis": "schools", "weight": 50 }] });
    let (status, problem) = send(w.coord.patch(&url).header("if-match", format!("\"{stale}\"")).json(&bad_key)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    assert!(fields(&problem).contains(&"cost_key[1].basis".to_string()), "{problem}");
    let (status, g) =
        send(w.coord.patch(&url).header("if-match", format!("\"{stale}\"")).json(&json!({ "title": "Nouveau titre" })))
            .await;
    assert_eq!((status, g["title"].as_str()), (200, Some("Nouveau titre")), "{name}: {g}");

    // The status machine.
    let to = |target: &str| w.coord.post(api(&format!("/groupements/{id}/transition"))).json(&json!({ "to": target }));
    let (status, problem) = send(to("running")).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let (status, _) = send(to("closed")).await;
    assert_eq!(status, 200, "{name}");
    let (status, problem) = send(to("consultation")).await;
    assert_eq!(status, 409, "{name}: no member yet");
    assert!(problem["detail"].as_str().unwrap().contains("aucun membre"));
    let (commune, client) = &w.communes[0];
    let application = json!({
        "applicant": commune.id, "deliberation_number": "DCM-12", "deliberation_date": "2026-09-01",
    });
    let apply = || client.post(api(&format!("/groupements/{id}/applications"))).json(&application);
    let (status, problem) = send(apply()).await;
    assert_eq!(status, 409, "{name}: closed: {problem}");
    let (status, _) = send(to("open")).await;
    assert_eq!(status, 200, "{name}: reopened");

    // Rejection needs a reason; a rejected commune may apply again (same application).
    let (status, app) = send(apply()).await;
    assert_eq!(status, 201, "{name}: {app}");
    let app_id = app["id"].as_str().unwrap().to_string();
    let reject = |reason: &str| {
        w.coord.post(api(&format!("/groupements/{id}/applications/{app_id}/reject"))).json(&json!({ "reason": reason }))
    };
    for blank in [" ", "   \u{200b} ", "\u{ad}\u{2060}"] {
        let (status, problem) = send(reject(blank)).await;
        assert_eq!((status, fields(&problem)), (422, vec!["reason".to_string()]), "{name}: {blank:?}");
    }
    let (status, rejected) = send(reject("Délibération non transmise")).await;
    assert_eq!((status, rejected["status"].as_str()), (200, Some("rejected")), "{name}");
    assert_eq!(rejected["decision_reason"], "Délibération non transmise");
    let (status, again) = send(apply()).await;
    assert_eq!((status, again["id"].as_str(), again["status"].as_str()), (201, Some(app_id.as_str()), Some("applied")));

    // Accepted, then closed: withdrawal now goes through the coordinator; the award waits for the consultation.
    let (status, _) = send(w.coord.post(api(&format!("/groupements/{id}/applications/{app_id}/accept")))).await;
    assert_eq!(status, 200, "{name}");
    let (status, problem) = send(w.coord.post(api(&format!("/groupements/{id}/award"))).json(&json!({}))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let (status, _) = send(to("closed")).await;
    assert_eq!(status, 200);
    let (status, problem) = send(client.post(api(&format!("/groupements/{id}/applications/{app_id}/withdraw")))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let (status, problem) = send(w.coord.get(api(&format!("/groupements/{id}/shares")))).await;
    assert_eq!(status, 409, "{name}: shares before the award: {problem}");

    // A document holding an e-mail address is never shared.
    let mut leaky = body.clone();
    leaky["object"] = json!("ENT des écoles ; renseignements auprès de jeanne.martin@sm94.fr");
    let (_, leaky) = send(w.coord.post(api("/groupements")).json(&leaky)).await;
    let leaky_id = leaky["id"].as_str().unwrap();
    let (status, doc) =
        send(w.coord.post(api(&format!("/groupements/{leaky_id}/documents"))).json(&json!({ "kind": "cctp" }))).await;
    assert_eq!(status, 201, "{name}: {doc}");
    let share = format!("/groupements/{leaky_id}/documents/{}/share", doc["id"].as_str().unwrap());
    let (status, problem) = send(w.coord.post(api(&share)).json(&json!({ "shared": true }))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["shared".to_string()]), "{name}: {problem}");

    // Public facts for any reader; every change is in the audit chain.
    let (status, public) = send(w.outsider.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!((status, public["status"].as_str()), (200, Some("closed")), "{name}");
    let actions = common::texts(
        &w.store,
        "SELECT action FROM audit_log WHERE target_kind = 'groupement' AND target_id = $1 ORDER BY seq",
        &[&id],
    )
    .await;
    for action in
        ["groupements.create", "groupements.update", "groupements.apply", "groupements.reject", "groupements.accept"]
    {
        assert!(actions.contains(&action.to_string()), "{name}: {action} not audited in {actions:?}");
    }
    assert!(matches!(entcp::audit::verify(&w.store).await.unwrap(), entcp::audit::Verification::Intact { .. }));
}

backend_test!(a_commune_edits_its_application_until_the_deadline_and_never_another_ones);
async fn a_commune_edits_its_application_until_the_deadline_and_never_another_ones(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id) = world_with_groupement(&db).await;
    let (commune, client) = &w.communes[0];
    let app = apply(&w.communes[0], &id, "DCM-1").await;
    let app_id = app["id"].as_str().unwrap().to_string();
    let version = app["version"].as_i64().unwrap();
    let url = api(&format!("/groupements/{id}/applications/{app_id}"));
    let change = json!({ "deliberation_number": "DCM-1 rectifiée", "classes": 3, "pupils": 1 });

    // Without If-Match, then at another version: refused, nothing changed.
    let (status, _) = send(client.patch(&url).json(&change)).await;
    assert_eq!(status, 428, "{name}");
    let (status, _) = send(client.patch(&url).header("if-match", format!("\"{}\"", version + 5)).json(&change)).await;
    assert_eq!(status, 412, "{name}");
    // A quantity beyond what the registry allows is named.
    let too_many = json!({ "schools": app["quantities"]["schools"].as_i64().unwrap() + 1 });
    let (status, problem) = send(client.patch(&url).header("if-match", format!("\"{version}\"")).json(&too_many)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["schools".to_string()]), "{name}: {problem}");

    // Before the deadline: changed, the rest kept, a new version, audited.
    let (status, edited) = send(client.patch(&url).header("if-match", format!("\"{version}\"")).json(&change)).await;
    assert_eq!(status, 200, "{name}: {edited}");
    assert_eq!(edited["deliberation_number"], "DCM-1 rectifiée", "{edited}");
    assert_eq!(edited["deliberation_date"], "2026-09-01", "{edited}");
    assert_eq!((edited["quantities"]["classes"].as_i64(), edited["quantities"]["pupils"].as_i64()), (Some(3), Some(1)));
    assert_eq!(edited["quantities"]["schools"], app["quantities"]["schools"], "{edited}");
    assert_eq!(edited["version"].as_i64(), Some(version + 1), "{edited}");
    let (status, again) = send(client.patch(&url).header("if-match", format!("\"{version}\"")).json(&change)).await;
    assert_eq!(status, 412, "{name}: the version read before the change is stale: {again}");
    let audited = common::texts(
        &w.store,
        "SELECT summary FROM audit_log WHERE action = 'groupements.application_update' AND target_id = $1",
        &[&id],
    )
    .await;
    assert_eq!(audited.len(), 1, "{name}: {audited:?}");
    assert!(audited[0].contains("DCM-1 rectifiée") && audited[0].contains("\"DCM-1\""), "{audited:?}");

    // Another commune (and the outsider) cannot edit it: not revealed.
    let current = format!("\"{}\"", version + 1);
    let (other, other_client) = &w.communes[1];
    assert_ne!(other.id, commune.id);
    let (status, problem) = send(other_client.patch(&url).header("if-match", &current).json(&change)).await;
    assert_eq!(status, 404, "{name}: {problem}");
    let (status, _) = send(w.outsider.patch(&url).header("if-match", &current).json(&change)).await;
    assert_eq!(status, 404, "{name}");

    // After the deadline (another server, clock later): 409, nothing changed.
    let late =
        TestApp::over(&w.store).clock(Arc::new(FixedClock::new(t0() + chrono::Duration::days(30)))).build().await;
    let (status, problem) = send(client.to(&late).patch(&url).header("if-match", &current).json(&change)).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("date limite"), "{problem}");
    assert_eq!(problem["title"].as_str().map(|t| t.is_empty()), Some(false), "{problem}");

    // Once decided: 409.
    let (status, _) = send(w.coord.post(api(&format!("/groupements/{id}/applications/{app_id}/accept")))).await;
    assert_eq!(status, 200, "{name}");
    let (_, accepted) = send(client.get(api(&format!("/groupements/{id}/applications")))).await;
    let accepted_version = accepted[0]["version"].as_i64().unwrap();
    let (status, problem) =
        send(client.patch(&url).header("if-match", format!("\"{accepted_version}\"")).json(&change)).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("ne se modifie plus"), "{problem}");
}

backend_test!(a_ccap_whose_members_declared_schools_but_no_account_leaves_that_maximum_to_fix);
async fn a_ccap_whose_members_declared_schools_but_no_account_leaves_that_maximum_to_fix(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id) = world_with_groupement(&db).await;
    // The commune declares its écoles, and no account (no pupil, teacher nor parent).
    let (commune, client) = &w.communes[0];
    let application = json!({ "applicant": commune.id, "deliberation_number": "DCM-3", "deliberation_date": "2026-09-01",
        "pupils": 0, "teacher_accounts": 0, "parent_accounts": 0 });
    let (status, app) = send(client.post(api(&format!("/groupements/{id}/applications"))).json(&application)).await;
    assert_eq!(status, 201, "{name}: {app}");
    let accept = api(&format!("/groupements/{id}/applications/{}/accept", app["id"].as_str().unwrap()));
    assert_eq!(send(w.coord.post(accept)).await.0, 200, "{name}");
    let ccap = odt_text(&generated(&w, &id, "ccap", "odt").await);
    let to_fix = "Abonnements annuels par compte ENT\nà fixer avant le lancement de la consultation (aucun compte \
                  déclaré par les membres)\n";
    assert!(ccap.contains(to_fix), "{name}: no maximum of 0 accounts, which would forbid every order: {ccap}");
    assert!(!ccap.contains("\n0 comptes × an"), "{name}: {ccap}");
}

backend_test!(the_coordinator_never_applies_to_its_own_groupement);
async fn the_coordinator_never_applies_to_its_own_groupement(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id) = world_with_groupement(&db).await;
    let own = w.app.client(&token_for(&w.store, "elu@sm94.fr", Role::Collectivite, Some(&w.coordinator.id)).await);
    let application =
        json!({ "applicant": w.coordinator.id, "deliberation_number": "DCS-7", "deliberation_date": "2026-09-01" });
    let (status, problem) = send(own.post(api(&format!("/groupements/{id}/applications"))).json(&application)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["applicant".to_string()]), "{name}: {problem}");
    assert!(problem.to_string().contains("coordonne le groupement"), "{name}: {problem}");
    let recorded = "SELECT COUNT(*) FROM groupement_members WHERE groupement_id = $1";
    assert_eq!(common::count(&w.store, recorded, &[&id]).await, 0, "{name}: nothing recorded");
    // A commune still applies.
    apply(&w.communes[0], &id, "DCM-1").await;
}

backend_test!(an_applicant_out_of_scope_answers_like_a_missing_one_before_its_kind_is_checked);
async fn an_applicant_out_of_scope_answers_like_a_missing_one_before_its_kind_is_checked(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id) = world_with_groupement(&db).await;
    // A collectivité whose commune has an école (in its scope, of a kind that may not apply).
    let with_ecoles = common::texts(
        &w.store,
        "SELECT DISTINCT commune_code FROM orgs WHERE kind = 'etablissement' AND degree = '1D'",
        &[],
    )
    .await;
    let (commune, client) =
        w.communes.iter().find(|(c, _)| with_ecoles.contains(&c.code)).expect("a commune with an école");
    // A school of another commune: out of this collectivité's scope, and not a kind that may apply.
    let school = first_etablissement(&w, "commune_code <> $1", commune).await;
    let school = entcp::registry::resolve_org(&w.store, &school).await.unwrap();
    let missing = "00000000-0000-4000-8000-000000000000";
    let application =
        |key: &str| json!({ "applicant": key, "deliberation_number": "DCM-1", "deliberation_date": "2026-09-01" });
    let applications = api(&format!("/groupements/{id}/applications"));
    let prefill = |key: &str| api(&format!("/groupements/{id}/prefill?applicant={key}"));

    let (missing_status, missing_problem) = send(client.post(&applications).json(&application(missing))).await;
    assert_eq!(
        (missing_status, fields(&missing_problem)),
        (422, vec!["applicant".to_string()]),
        "{name}: {missing_problem}"
    );
    // Out of scope: the same status and the same words, with the key it was sent; neither the
    // school's name nor its code nor its kind.
    for key in [school.id.clone(), school.qualified_code()] {
        let (status, problem) = send(client.post(&applications).json(&application(&key))).await;
        let (prefill_status, prefill_problem) = send(client.get(prefill(&key))).await;
        for (status, problem) in [(status, &problem), (prefill_status, &prefill_problem)] {
            assert_eq!(status, missing_status, "{name}: {problem}");
            assert_eq!(problem.to_string().replace(&key, missing), missing_problem.to_string(), "{name}: {key}");
            let text = problem.to_string();
            assert!(!text.contains(&school.name) && !text.contains("établissement"), "{name}: {text}");
        }
    }
    let (_, own) = send(client.get(&applications)).await;
    assert_eq!(own.as_array().map(Vec::len), Some(0), "{name}: nothing is recorded: {own}");

    // In scope but of a kind that may not apply (one of its own écoles): the kind is named.
    let own_school = first_etablissement(&w, "commune_code = $1 AND degree = '1D'", commune).await;
    let (status, problem) = send(client.post(&applications).json(&application(&own_school))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["applicant".to_string()]), "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("adhèrent les communes"), "{name}: {problem}");
}

backend_test!(a_deliberation_dated_before_the_groupement_existed_is_refused);
async fn a_deliberation_dated_before_the_groupement_existed_is_refused(db: crate::common::TestDb) {
    let name = db.name;
    // Created on 1 September 2026 (the clock of the world).
    let (w, id) = world_with_groupement(&db).await;
    let (commune, client) = &w.communes[0];
    let applications = api(&format!("/groupements/{id}/applications"));
    let dated =
        |date: &str| json!({ "applicant": commune.id, "deliberation_number": "DCM-1", "deliberation_date": date });
    let (status, problem) = send(client.post(&applications).json(&dated("2026-08-31"))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["deliberation_date".to_string()]), "{name}: {problem}");
    assert!(
        problem["errors"][0]["message"].as_str().unwrap().contains("précéder la création du groupement"),
        "{problem}"
    );
    let (_, listed) = send(w.coord.get(&applications)).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{name}: nothing recorded: {listed}");
    // Dated the day the groupement was created: accepted; moved before it by an edit: refused.
    let (status, app) = send(client.post(&applications).json(&dated("2026-09-01"))).await;
    assert_eq!(status, 201, "{name}: {app}");
    let url = api(&format!("/groupements/{id}/applications/{}", app["id"].as_str().unwrap()));
    let version = app["version"].as_i64().unwrap();
    let edit = json!({ "deliberation_date": "2026-06-30" });
    let (status, problem) = send(client.patch(&url).header("if-match", format!("\"{version}\"")).json(&edit)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["deliberation_date".to_string()]), "{name}: {problem}");
    let (_, listed) = send(w.coord.get(&applications)).await;
    assert_eq!(listed[0]["deliberation_date"], "2026-09-01", "{name}: unchanged: {listed}");
}

backend_test!(a_contract_of_more_than_four_years_needs_a_justification_printed_in_the_cctp);
async fn a_contract_of_more_than_four_years_needs_a_justification_printed_in_the_cctp(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let mut body = minimal_groupement(&w, "2026-09-30");
    body["duration_months"] = json!(48);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!((status, g["duration_months"].as_u64()), (201, Some(48)), "{name}: four years need no reason: {g}");
    body["duration_months"] = json!(60);
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["duration_months".to_string()]), "{name}: {problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("R. 2162-4"), "{problem}");
    body["duration_justification"] = json!("   ");
    let (status, _) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 422, "{name}: a blank justification is none");
    let reason = "amortissement de la reprise des données de 40 000 comptes sur cinq années scolaires";
    body["duration_justification"] = json!(reason);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    assert_eq!(g["duration_justification"], reason, "{name}: stored");
    let id = g["id"].as_str().unwrap();
    let text = odt_text(&generated(&w, id, "cctp", "odt").await);
    let stated = text.contains(&french("durée de 60 mois")) && text.contains(&french(reason));
    assert!(stated, "{name}: the CCTP states why: {text}");
    assert!(text.contains("R. 2162-4"), "{name}: {text}");
    // Shortened by an edit to 48 months, the justification is dropped with it.
    let version = g["version"].as_i64().unwrap();
    let (status, g) = send(
        w.coord
            .patch(api(&format!("/groupements/{id}")))
            .header("if-match", format!("\"{version}\""))
            .json(&json!({ "duration_months": 36 })),
    )
    .await;
    assert_eq!(status, 200, "{name}: {g}");
    assert!(g.get("duration_justification").is_none(), "{name}: {g}");
}

backend_test!(the_convention_constitutive_starts_at_its_submission_and_lasts_as_long_as_the_contract);
async fn the_convention_constitutive_starts_at_its_submission_and_lasts_as_long_as_the_contract(
    db: crate::common::TestDb,
) {
    use chrono::TimeZone;
    let name = db.name;
    let (w, id) = world_with_groupement(&db).await;
    let client = &w.communes[0].1;
    let conv_id = first_commune_accepted(&w, &id).await;
    let conv_url = |p: &str| api(&format!("/conventions/{conv_id}{p}"));
    let (_, conv) = send(w.coord.get(conv_url(""))).await;
    // A contract of 36 months notified at the latest a year after the deadline (30 September
    // 2027) ends on 29 September 2030: so does the convention, not 36 months after its start.
    assert_eq!(conv["end_date"], "2030-09-29", "{name}: {conv}");

    // Submitted six weeks after the acceptance: it takes effect that day, as its article 10 says.
    let at = |y, m, d| Arc::new(FixedClock::new(chrono::Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()));
    let later = TestApp::over(&w.store).clock(at(2026, 10, 15)).build().await;
    let coord = w.coord.to(&later);
    let version = conv["version"].as_i64().unwrap();
    let signatories = common::fixtures::groupement_signatories(&conv);
    let (status, conv) =
        send(coord.patch(conv_url("")).header("if-match", format!("\"{version}\"")).json(&signatories)).await;
    assert_eq!(status, 200, "{name}: {conv}");
    let (status, submitted) = send(coord.post(conv_url("/submit")).json(&json!({}))).await;
    assert_eq!(status, 200, "{name}: {submitted}");
    assert_eq!(
        (submitted["start_date"].as_str(), submitted["end_date"].as_str()),
        (Some("2026-10-15"), Some("2030-09-29")),
        "{name}: {submitted}"
    );
    let html = coord.get(conv_url("/document?format=html")).send().await.text;
    assert!(html.contains("prend effet le 15 octobre 2026") && html.contains("29 septembre 2030"), "{name}: {html}");
    for signer in [&coord, &client.to(&later)] {
        let (status, body) =
            send(signer.post(conv_url("/sign")).json(&crate::common::fixtures::by_delegation(json!({})))).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    launch_consultation(&coord, &id, name).await;

    // Notified in November 2027, the contract would outlive the convention: 409, an avenant first.
    let late = TestApp::over(&w.store).clock(at(2027, 11, 2)).build().await;
    let award_url = api(&format!("/groupements/{id}/award"));
    let mut body = award_notified_on("2027-11-02");
    let (status, problem) = send(w.coord.to(&late).post(&award_url).json(&body)).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("avenant") && detail.contains("29 septembre 2030"), "{name}: {detail}");
    let (_, still) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!(still["status"], "consultation", "{name}: nothing awarded");
    // Notified on 30 September 2027, it ends with the convention: awarded.
    body["notified_on"] = json!("2027-09-30");
    let (status, g) = send(w.coord.to(&late).post(&award_url).json(&body)).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
}

/// A groupement of `w`'s first commune (applications until 30 September 2026), its convention
/// constitutive submitted and signed by both parties on the day of `app`'s clock, taking effect
/// then or on `start` when given (later): the ids of the groupement and of the convention.
async fn signed_groupement(w: &World, app: &TestApp, start: Option<&str>) -> (String, String) {
    let id = created_minimal_groupement(w, "signed_groupement").await;
    let conv_id = first_commune_accepted(w, &id).await;
    sign_constitutive(w, app, &conv_id, start, &[0]).await;
    (id, conv_id)
}

/// Names the signatories of the convention constitutive `conv_id` (and its start, when given),
/// submits it and has it signed by the coordinator and `w`'s communes `members` (by index), on the
/// day of `app`'s clock.
async fn sign_constitutive(w: &World, app: &TestApp, conv_id: &str, start: Option<&str>, members: &[usize]) {
    let conv_url = |p: &str| api(&format!("/conventions/{conv_id}{p}"));
    let coord = w.coord.to(app);
    let (_, conv) = send(coord.get(conv_url(""))).await;
    let mut patch = common::fixtures::groupement_signatories(&conv);
    if let Some(start) = start {
        // A new start alone keeps the end its article 10 states (the contract's).
        patch["start_date"] = json!(start);
    }
    let version = conv["version"].as_i64().unwrap();
    let (status, conv) =
        send(coord.patch(conv_url("")).header("if-match", format!("\"{version}\"")).json(&patch)).await;
    assert_eq!(status, 200, "{conv}");
    let (status, submitted) = send(coord.post(conv_url("/submit")).json(&json!({}))).await;
    assert_eq!(status, 200, "{submitted}");
    let signers = std::iter::once(coord).chain(members.iter().map(|i| w.communes[*i].1.to(app)));
    for signer in signers {
        let (status, body) =
            send(signer.post(conv_url("/sign")).json(&crate::common::fixtures::by_delegation(json!({})))).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// The world and an app over its store whose clock reads 15 October 2026, the day the tests sign
/// their [`signed_groupement`].
async fn world_signing_on_15_october(db: &common::TestDb) -> (World, TestApp) {
    let w = world(db).await;
    let signing = TestApp::over(&w.store).clock(clock_on(2026, 10, 15)).build().await;
    (w, signing)
}

/// A groupement of the first commune constituted, and its consultation launched, on 15 October
/// 2026 ([`world_signing_on_15_october`]), and the app of 30 November 2026, 46 days after the
/// launch, once the open call's délais have run: the day its award is notified.
async fn launched_for_an_award_on_30_november(db: &common::TestDb) -> (World, String, TestApp) {
    let (w, signing) = world_signing_on_15_october(db).await;
    let id = constituted_groupement(&w, &signing, &[0]).await;
    launch_consultation(&w.coord.to(&signing), &id, db.name).await;
    let notifying = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    (w, id, notifying)
}

/// A groupement of the first commune signed, and its consultation launched, on 15 October 2026
/// ([`world_signing_on_15_october`]).
async fn launched_on_15_october(db: &common::TestDb) -> (World, String) {
    let (w, signing) = world_signing_on_15_october(db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    launch_consultation(&w.coord.to(&signing), &id, db.name).await;
    (w, id)
}

fn clock_on(y: i32, m: u32, d: u32) -> Arc<FixedClock> {
    use chrono::TimeZone;
    Arc::new(FixedClock::new(chrono::Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()))
}

// A contract that would outlive the convention constitutive is refused until an avenant extends
// it; once that avenant (made through the conventions' routes, signed by every party) is in
// force, the groupement reads it, not the convention it replaced: awarded.
backend_test!(an_avenant_extending_the_convention_constitutive_lets_the_groupement_award_a_longer_contract);
async fn an_avenant_extending_the_convention_constitutive_lets_the_groupement_award_a_longer_contract(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, conv_id) = signed_groupement(&w, &signing, None).await;
    let coord = w.coord.to(&signing);
    launch_consultation(&coord, &id, name).await;

    // Notified on 2 November 2027 for 36 months, the contract runs to 1 November 2030, past the
    // convention's 29 September 2030: 409.
    let late = TestApp::over(&w.store).clock(clock_on(2027, 11, 2)).build().await;
    let coord = w.coord.to(&late);
    let award_url = api(&format!("/groupements/{id}/award"));
    let body = award_notified_on("2027-11-02");
    let (status, problem) = send(coord.post(&award_url).json(&body)).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("29 septembre 2030"), "{name}: {problem}");

    // The avenant extending it to 31 December 2030, signed by both parties, takes effect.
    let conv_url = |conv: &str, p: &str| api(&format!("/conventions/{conv}{p}"));
    let (status, avenant) = send(coord.post(conv_url(&conv_id, "/amend")).json(&json!({}))).await;
    assert_eq!(status, 201, "{name}: {avenant}");
    let avenant_id = avenant["id"].as_str().unwrap().to_string();
    let version = avenant["version"].as_i64().unwrap();
    let extend = json!({ "end_date": "2030-12-31" });
    let (status, extended) =
        send(coord.patch(conv_url(&avenant_id, "")).header("if-match", format!("\"{version}\"")).json(&extend)).await;
    assert_eq!(status, 200, "{name}: {extended}");
    assert_eq!(send(coord.post(conv_url(&avenant_id, "/submit")).json(&json!({}))).await.0, 200, "{name}");
    for signer in [&coord, &w.communes[0].1.to(&late)] {
        let (status, signed) =
            send(signer.post(conv_url(&avenant_id, "/sign")).json(&crate::common::fixtures::by_delegation(json!({}))))
                .await;
        assert_eq!(status, 200, "{name}: {signed}");
    }
    let (_, in_force) = send(coord.get(conv_url(&avenant_id, ""))).await;
    assert_eq!((in_force["status"].as_str(), in_force["end_date"].as_str()), (Some("active"), Some("2030-12-31")));
    let (_, replaced) = send(coord.get(conv_url(&conv_id, ""))).await;
    assert_eq!(replaced["status"], "amended", "{name}: {replaced}");

    // The groupement still links the convention it created, and reads the avenant in its stead:
    // its body names the avenant the convention in force, the convention it created the first.
    let (_, g) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    let linked = (g["convention_id"].as_str(), g["first_convention_id"].as_str());
    assert_eq!(linked, (Some(avenant_id.as_str()), Some(conv_id.as_str())), "{name}: {g}");
    let (status, g) = send(coord.post(&award_url).json(&body)).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
}

// A member accepted once the convention constitutive is in force joins it by an avenant; the
// groupement keeps linking and reading the convention in force until that avenant takes effect.
// Refused by the new member (back to draft), the avenant is not what the groupement reads: an
// edit of the groupement goes into that avenant (no second one, no 409), the convention in force
// is unchanged. The members bought for are the parties of the convention in force (L. 2113-6):
// while the new member and the new object are not signed, neither the consultation nor the
// award passes (409 naming the member, the term and the avenant); once every party signs the
// avenant, the consultation opens and the contract is awarded for both members.
backend_test!(a_member_avenant_refused_keeps_the_consultation_closed_until_it_is_signed);
async fn a_member_avenant_refused_keeps_the_consultation_closed_until_it_is_signed(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, conv_id) = signed_groupement(&w, &signing, None).await;
    let (commune, client) = &w.communes[1];
    let applied = apply(&w.communes[1], &id, "2026-DCM-002").await;

    let later = TestApp::over(&w.store).clock(clock_on(2026, 10, 20)).build().await;
    let coord = w.coord.to(&later);
    let accept = api(&format!("/groupements/{id}/applications/{}/accept", applied["id"].as_str().unwrap()));
    assert_eq!(send(coord.post(accept)).await.0, 200, "{name}");
    let conv_url = |conv: &str, p: &str| api(&format!("/conventions/{conv}{p}"));
    let avenant_id: String = sqlx::query_scalar("SELECT id FROM conventions WHERE amends_id = $1")
        .bind(&conv_id)
        .fetch_one(w.store.pool())
        .await
        .unwrap();
    let (_, avenant) = send(coord.get(conv_url(&avenant_id, ""))).await;
    let version = avenant["version"].as_i64().unwrap();
    let signatories = common::fixtures::groupement_signatories(&avenant);
    let patch = coord.patch(conv_url(&avenant_id, "")).header("if-match", format!("\"{version}\""));
    assert_eq!(send(patch.json(&signatories)).await.0, 200, "{name}");
    assert_eq!(send(coord.post(conv_url(&avenant_id, "/submit")).json(&json!({}))).await.0, 200, "{name}");
    let refusal = json!({ "comment": "Délibération à reprendre" });
    let (status, refused) = send(client.to(&later).post(conv_url(&avenant_id, "/refuse")).json(&refusal)).await;
    assert_eq!((status, refused["status"].as_str()), (200, Some("draft")), "{name}: {refused}");

    let url = api(&format!("/groupements/{id}"));
    let (_, g) = send(coord.get(&url)).await;
    assert_eq!(g["convention_id"].as_str(), Some(conv_id.as_str()), "{name}: {g}");
    let version = g["version"].as_i64().unwrap();
    let edit = json!({ "object": "ENT et ressources des écoles" });
    let (status, edited) = send(coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&edit)).await;
    assert_eq!(status, 200, "{name}: {edited}");
    let (_, avenant) = send(coord.get(conv_url(&avenant_id, ""))).await;
    assert_eq!(avenant["parameters"]["objet"], "ENT et ressources des écoles", "{name}: {avenant}");
    let (_, in_force) = send(coord.get(conv_url(&conv_id, ""))).await;
    assert_eq!(
        (in_force["status"].as_str(), in_force["parameters"]["objet"].as_str()),
        (Some("active"), Some("ENT des écoles")),
        "{name}: {in_force}"
    );
    let avenants = common::count(&w.store, "SELECT COUNT(*) FROM conventions WHERE amends_id = $1", &[&conv_id]).await;
    assert_eq!(avenants, 1, "{name}");

    let transition =
        |to: &str| coord.post(api(&format!("/groupements/{id}/transition"))).json(&moving_to(to, "2026-11-24T12:00"));
    assert_eq!(send(transition("closed")).await.0, 200, "{name}");
    let (status, problem) = send(transition("consultation")).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    let avenant_ref = avenant["reference"].as_str().unwrap();
    for expected in [commune.name.as_str(), "n'y est pas partie", "l'objet signé est « ENT des écoles »", avenant_ref]
    {
        assert!(detail.contains(expected), "{name}: « {expected} » in {detail}");
    }
    let (_, g) = send(coord.get(&url)).await;
    assert_eq!(g["status"], "closed", "{name}: {g}");

    // Every party signs the avenant: it takes effect, and the groupement is bought for as it is.
    let (status, submitted) = send(coord.post(conv_url(&avenant_id, "/submit")).json(&json!({}))).await;
    assert_eq!(status, 200, "{name}: {submitted}");
    for signer in [&coord, &w.communes[0].1.to(&later), &client.to(&later)] {
        let (status, signed) =
            send(signer.post(conv_url(&avenant_id, "/sign")).json(&crate::common::fixtures::by_delegation(json!({}))))
                .await;
        assert_eq!(status, 200, "{name}: {signed}");
    }
    let (_, in_force) = send(coord.get(conv_url(&avenant_id, ""))).await;
    assert_eq!(in_force["status"], "active", "{name}: {in_force}");
    let (status, g) = send(transition("consultation")).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("consultation")), "{name}: {g}");
    // Launched on 20 October: notified 46 days later, once the open call's délais have run.
    let body = award_notified_on("2026-12-05");
    let notifying = TestApp::over(&w.store).clock(clock_on(2026, 12, 5)).build().await;
    let (status, g) = send(w.coord.to(&notifying).post(api(&format!("/groupements/{id}/award"))).json(&body)).await;
    assert_eq!((status, g["status"].as_str(), g["members"].as_i64()), (200, Some("awarded"), Some(2)), "{name}: {g}");
}

// A party of the convention constitutive in force is bound by it: withdrawing its application
// is refused (409, article 11: délibération, notice of six months, avenant), it stays a member,
// and the consultation opens on the convention in force.
backend_test!(a_party_of_the_convention_in_force_does_not_withdraw_its_application);
async fn a_party_of_the_convention_in_force_does_not_withdraw_its_application(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    let apps = api(&format!("/groupements/{id}/applications"));
    let (_, listed) = send(w.coord.get(&apps)).await;
    let signatory = listed.as_array().unwrap()[0]["id"].as_str().unwrap().to_string();
    let (status, problem) = send(w.communes[0].1.post(format!("{apps}/{signatory}/withdraw"))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("article 11") && detail.contains("6 mois"), "{name}: {detail}");
    let (_, kept) = send(w.coord.get(&apps)).await;
    assert_eq!(kept[0]["status"], "accepted", "{name}: {kept}");

    let coord = w.coord.to(&signing);
    let transition =
        |to: &str| coord.post(api(&format!("/groupements/{id}/transition"))).json(&moving_to(to, "2027-06-30T12:00"));
    assert_eq!(send(transition("closed")).await.0, 200, "{name}");
    let (status, g) = send(transition("consultation")).await;
    assert_eq!(
        (status, g["status"].as_str(), g["members"].as_i64()),
        (200, Some("consultation"), Some(1)),
        "{name}: {g}"
    );
}

/// The member parties of the convention `conv_id` (organisation ids, in order), and its status.
async fn member_parties(coord: &Client, conv_id: &str) -> (Vec<String>, String) {
    let (_, conv) = send(coord.get(api(&format!("/conventions/{conv_id}")))).await;
    let members = conv["parties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["key"] == "membre")
        .map(|p| p["org"]["id"].as_str().unwrap().to_string())
        .collect();
    (members, conv["status"].as_str().unwrap().to_string())
}

/// `communes` apply (on 1 September 2026) and the coordinator, through `coord`, accepts each;
/// their application ids.
async fn accepted(coord: &Client, id: &str, communes: &[(Org, Client)]) -> Vec<String> {
    let apps = api(&format!("/groupements/{id}/applications"));
    let mut ids = Vec::new();
    for (i, (commune, client)) in communes.iter().enumerate() {
        let body = json!({
            "applicant": commune.id, "deliberation_number": format!("2026-DCM-1{i}"), "deliberation_date": "2026-09-01"
        });
        let (status, applied) = send(client.post(&apps).json(&body)).await;
        assert_eq!(status, 201, "{applied}");
        let app_id = applied["id"].as_str().unwrap().to_string();
        let (status, member) = send(coord.post(format!("{apps}/{app_id}/accept"))).await;
        assert_eq!((status, member["status"].as_str()), (200, Some("accepted")), "{member}");
        ids.push(app_id);
    }
    ids
}

// Accepted into a convention constitutive still in draft, a member withdraws (it used to get
// 403: the convention edited without it no longer named its collectivité); the convention
// keeps the other member only.
backend_test!(an_accepted_member_withdraws_from_the_draft_convention_constitutive);
async fn an_accepted_member_withdraws_from_the_draft_convention_constitutive(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let ids = accepted(&w.coord, &id, &w.communes[..2]).await;
    let conv_id = linked_convention(&w.coord, &id).await;
    let both = vec![w.communes[0].0.id.clone(), w.communes[1].0.id.clone()];
    assert_eq!(member_parties(&w.coord, &conv_id).await, (both, "draft".into()), "{name}");

    let url = api(&format!("/groupements/{id}/applications/{}/withdraw", ids[0]));
    let (status, withdrawn) = send(w.communes[0].1.post(url)).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
    let left = vec![w.communes[1].0.id.clone()];
    assert_eq!(member_parties(&w.coord, &conv_id).await, (left, "draft".into()), "{name}");
}

// A deadline in year 2100 was taken, and failed only once the convention constitutive was
// written. Every date of a groupement is checked as any date entered is (2000 to 2099, the same
// words), on its field; so is the end of the convention constitutive its dates plan.
backend_test!(every_date_of_a_groupement_lies_between_2000_and_2099_and_is_refused_on_its_field);
async fn every_date_of_a_groupement_lies_between_2000_and_2099_and_is_refused_on_its_field(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    const BOUNDS: &str = "ne tombe pas entre le 1er janvier 2000 et le 31 décembre 2099";
    let cases = [
        ("application_deadline", json!({ "application_deadline": "2100-01-01" }), BOUNDS),
        ("consultation_date", json!({ "consultation_date": "2100-03-01" }), BOUNDS),
        ("award_planned_date", json!({ "award_planned_date": "2100-06-01" }), BOUNDS),
        // The convention constitutive would run 12 months past the award, then 48 months.
        ("award_planned_date", json!({ "award_planned_date": "2097-06-30", "duration_months": 48 }), "2102"),
    ];
    for (field, change, said) in cases {
        let mut body = minimal_groupement(&w, "2026-09-30");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, problem) = send(w.coord.post(api("/groupements")).json(&body)).await;
        assert_eq!(status, 422, "{name}: {change}: {problem}");
        assert_eq!(fields(&problem), [field], "{name}: {change}: {problem}");
        assert!(problem.to_string().contains(said), "{name}: {change}: {problem}");
    }
    let (_, list) = send(w.coord.get(api("/groupements"))).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{name}: nothing created: {list}");
    // An edit moving the deadline past 2099 is refused alike.
    let id = created_minimal_groupement(&w, name).await;
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    let version = format!("\"{}\"", g["version"].as_i64().unwrap());
    let patch = json!({ "application_deadline": "2100-01-01" });
    let req = w.coord.patch(api(&format!("/groupements/{id}"))).header("if-match", version);
    let (status, problem) = send(req.json(&patch)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["application_deadline".to_string()]), "{name}: {problem}");
    assert!(problem.to_string().contains(BOUNDS), "{name}: {problem}");
}

// A member asked to amend (or terminate) the draft convention constitutive and was told its
// state (409) before its role (403): the role comes first, whatever the state; the coordinator
// still learns the state.
backend_test!(a_member_is_refused_conducting_the_convention_constitutive_whatever_its_state);
async fn a_member_is_refused_conducting_the_convention_constitutive_whatever_its_state(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    accepted(&w.coord, &id, &w.communes[..1]).await;
    let url = api(&format!("/conventions/{}", linked_convention(&w.coord, &id).await));
    let member = &w.communes[0].1;
    let termination = json!({ "reason": "fin du besoin" });
    let (status, problem) = send(member.post(format!("{url}/amend")).json(&json!({}))).await;
    assert_eq!(status, 403, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("coordonnateur"), "{name}: {problem}");
    let (status, problem) = send(member.post(format!("{url}/terminate")).json(&termination)).await;
    assert_eq!(status, 403, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("coordonnateur"), "{name}: {problem}");
    // The coordinator conducts it: the state answers.
    let (status, problem) = send(w.coord.post(format!("{url}/amend")).json(&json!({}))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let (status, problem) = send(w.coord.post(format!("{url}/terminate")).json(&termination)).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let (_, conv) = send(w.coord.get(&url)).await;
    assert_eq!(conv["status"], "draft", "{name}: {conv}");
}

// The reviewer's requests, replayed by a member of the groupement: it rewrote the convention
// constitutive's terms, its coordinator's and another member's signatories, its end, and
// submitted it, while the groupement itself refused it (403). A member now designates its own
// signatory only; the coordinator conducts the convention (title, dates, submission), and the
// terms the groupement sets are edited on the groupement, by no one through the convention.
backend_test!(a_member_writes_only_its_own_signatory_on_the_convention_constitutive);
async fn a_member_writes_only_its_own_signatory_on_the_convention_constitutive(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    accepted(&w.coord, &id, &w.communes[..2]).await;
    let url = api(&format!("/conventions/{}", linked_convention(&w.coord, &id).await));
    let ((member, client), (other, _)) = (&w.communes[0], &w.communes[1]);
    let version = |conv: &Value| format!("\"{}\"", conv["version"].as_i64().unwrap());
    let (_, before) = send(w.coord.get(&url)).await;
    let signatory = json!({ "name": "M. Paul Martin", "quality": "maire" });
    let member_only = [
        json!({ "title": "Autre titre", "parameters": { "part_coordinateur": 60, "part_membres": 40 } }),
        json!({ "title": "Autre titre" }),
        json!({ "parameters": { "comite_pilotage_frequence": 4 } }),
        json!({ "end_date": "2040-12-31" }),
        json!({ "signatories": { "coordinateur": signatory } }),
        json!({ "signatories": { format!("membre:{}", other.id): signatory } }),
    ];
    for patch in &member_only {
        let (status, problem) = send(client.patch(&url).header("if-match", version(&before)).json(patch)).await;
        assert_eq!(status, 403, "{name}: {patch}: {problem}");
    }
    let (status, problem) = send(client.post(format!("{url}/submit")).json(&json!({}))).await;
    assert_eq!(status, 403, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("coordonnateur"), "{name}: {problem}");
    let (_, unchanged) = send(w.coord.get(&url)).await;
    assert_eq!(
        (&unchanged["title"], &unchanged["parameters"], &unchanged["end_date"], &unchanged["status"]),
        (&before["title"], &before["parameters"], &before["end_date"], &before["status"]),
        "{name}: nothing written"
    );

    // Its own signatory, yes (with the délibération it applied with: a signatory given replaces the one recorded).
    let mut mine = signatory.clone();
    mine["act_number"] = json!("2026-DCM-10");
    mine["act_date"] = json!("2026-09-01");
    let own = json!({ "signatories": { format!("membre:{}", member.id): mine } });
    let (status, edited) = send(client.patch(&url).header("if-match", version(&before)).json(&own)).await;
    assert_eq!(status, 200, "{name}: {edited}");
    let party = edited["parties"].as_array().unwrap().iter().find(|p| p["org"]["id"] == member.id.as_str()).unwrap();
    assert_eq!(party["signatory"]["name"], "M. Paul Martin", "{name}: {edited}");

    // The groupement's terms go through the groupement, even for its coordinator (422, named).
    let terms = json!({ "parameters": { "part_coordinateur": 60, "part_membres": 40 } });
    let (status, problem) = send(w.coord.patch(&url).header("if-match", version(&edited)).json(&terms)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    assert_eq!(fields(&problem), ["parameters.part_coordinateur", "parameters.part_membres"], "{name}: {problem}");
    assert!(problem.to_string().contains("/api/v1/groupements/"), "{name}: {problem}");
    // The coordinator designates every signatory and conducts the convention.
    let (status, conv) = send(
        w.coord
            .patch(&url)
            .header("if-match", version(&edited))
            .json(&common::fixtures::groupement_signatories(&edited)),
    )
    .await;
    assert_eq!(status, 200, "{name}: {conv}");
    let (status, submitted) = send(w.coord.post(format!("{url}/submit")).json(&json!({}))).await;
    assert_eq!((status, submitted["status"].as_str()), (200, Some("in_signature")), "{name}: {submitted}");
}

// The list's coordinator filter said whether an organisation out of the caller's sight exists
// (200 and an empty page, against 404 for a key naming nothing): both now answer alike. A
// coordinator every reader sees in the list (the syndicat mixte) still filters.
backend_test!(a_coordinator_filter_out_of_sight_answers_as_a_missing_one);
async fn a_coordinator_filter_out_of_sight_answers_as_a_missing_one(db: crate::common::TestDb) {
    let (w, _id) = world_with_groupement(&db).await;
    let name = db.name;
    let (mairie, other) = (&w.communes[0].1, &w.communes[1].0);
    let list = |key: &str| mairie.get(api(&format!("/groupements?coordinator={key}")));
    let out = format!("commune:{}", other.code);
    let (out_status, out_body) = send(list(&out)).await;
    let (missing_status, missing_body) = send(list("commune:99999")).await;
    assert_eq!(out_status, missing_status, "{name}: {out_body} / {missing_body}");
    assert_eq!(
        out_body.to_string().replace(&out, "KEY"),
        missing_body.to_string().replace("commune:99999", "KEY"),
        "{name}: out of sight and missing answer alike"
    );
    let (status, page) = send(list(&format!("syndicat_mixte:{}", w.coordinator.code))).await;
    assert_eq!((status, page["items"].as_array().map(Vec::len)), (200, Some(1)), "{name}: {page}");
}

// Two members accepted once the convention constitutive is in force join it by one avenant.
// One withdraws before signing: the avenant no longer names it (nobody signs for a member that
// left). The other withdraws too: the avenant, adding no one, is ended, its reason naming the
// member; the consultation then opens on the convention in force, whose own party still cannot
// withdraw (article 11, 409).
backend_test!(a_member_leaving_before_its_avenant_is_signed_takes_itself_out_of_it);
async fn a_member_leaving_before_its_avenant_is_signed_takes_itself_out_of_it(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let signing = TestApp::over(&w.store).clock(clock_on(2026, 10, 15)).build().await;
    let (id, conv_id) = signed_groupement(&w, &signing, None).await;
    let later = TestApp::over(&w.store).clock(clock_on(2026, 10, 20)).build().await;
    let coord = w.coord.to(&later);
    let ids = accepted(&coord, &id, &w.communes[1..3]).await;
    let avenant_id: String = sqlx::query_scalar("SELECT id FROM conventions WHERE amends_id = $1")
        .bind(&conv_id)
        .fetch_one(w.store.pool())
        .await
        .unwrap();
    let org = |i: usize| w.communes[i].0.id.clone();
    assert_eq!(member_parties(&coord, &avenant_id).await, (vec![org(0), org(1), org(2)], "draft".into()));

    let withdraw = |i: usize, app: &str| {
        w.communes[i].1.to(&later).post(api(&format!("/groupements/{id}/applications/{app}/withdraw")))
    };
    let (status, withdrawn) = send(withdraw(2, &ids[1])).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
    assert_eq!(member_parties(&coord, &avenant_id).await, (vec![org(0), org(1)], "draft".into()), "{name}");

    let (status, withdrawn) = send(withdraw(1, &ids[0])).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
    let (_, avenant) = send(coord.get(api(&format!("/conventions/{avenant_id}")))).await;
    assert_eq!(avenant["status"], "terminated", "{name}: {avenant}");
    let reason = avenant["termination_reason"].as_str().unwrap();
    assert!(reason.contains(&w.communes[1].0.name) && reason.contains("retir"), "{name}: {reason}");
    assert_eq!(member_parties(&coord, &conv_id).await, (vec![org(0)], "active".into()), "{name}");

    let apps = api(&format!("/groupements/{id}/applications"));
    let (_, listed) = send(coord.get(&apps)).await;
    let signatory = listed.as_array().unwrap().iter().find(|a| a["applicant"]["id"] == org(0).as_str()).unwrap();
    let url = format!("{apps}/{}/withdraw", signatory["id"].as_str().unwrap());
    let (status, problem) = send(w.communes[0].1.to(&later).post(url)).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    // How to leave, article 11: a délibération to the coordinator, the notice's end, the avenant.
    for expected in ["article 11", w.coordinator.name.as_str(), "au plus tôt le 20 avril 2027", "avenant"] {
        assert!(detail.contains(expected), "{name}: « {expected} » in {detail}");
    }

    let transition =
        |to: &str| coord.post(api(&format!("/groupements/{id}/transition"))).json(&moving_to(to, "2027-06-30T12:00"));
    assert_eq!(send(transition("closed")).await.0, 200, "{name}");
    let (status, g) = send(transition("consultation")).await;
    assert_eq!((status, g["members"].as_i64()), (200, Some(1)), "{name}: {g}");
}

// An edit of the groupement that moves the end of its convention constitutive (here the
// application deadline alone, from which that end is computed) is checked against the convention
// before anything is written: signed, not yet in force, it can no longer follow (409, the
// groupement unchanged). An edit leaving that end where it is passes.
backend_test!(an_edit_moving_the_end_of_a_signed_convention_constitutive_is_refused_before_it_is_written);
async fn an_edit_moving_the_end_of_a_signed_convention_constitutive_is_refused_before_it_is_written(
    db: crate::common::TestDb,
) {
    let w = world(&db).await;
    let name = db.name;
    let (id, conv_id) = signed_groupement(&w, &w.app, Some("2026-11-02")).await;
    let conv_url = api(&format!("/conventions/{conv_id}"));
    let (_, conv) = send(w.coord.get(&conv_url)).await;
    let signed_state = (Some("signed"), Some("2030-09-29"));
    assert_eq!((conv["status"].as_str(), conv["end_date"].as_str()), signed_state, "{name}: {conv}");
    let url = api(&format!("/groupements/{id}"));
    let (_, before) = send(w.coord.get(&url)).await;
    let version = before["version"].as_i64().unwrap();
    let edit = |patch: Value| w.coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&patch);

    // Applications until 10 October would end the convention on 9 October 2030: refused.
    let (status, problem) = send(edit(json!({ "application_deadline": "2026-10-10" }))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(conv["reference"].as_str().unwrap()) && detail.contains("ne peuvent plus changer"),
        "{detail}"
    );
    let (_, after) = send(w.coord.get(&url)).await;
    assert_eq!(
        (after["application_deadline"].as_str(), after["version"].as_i64()),
        (Some("2026-09-30"), Some(version)),
        "{name}: nothing written: {after}"
    );
    let (_, conv) = send(w.coord.get(&conv_url)).await;
    assert_eq!((conv["status"].as_str(), conv["end_date"].as_str()), signed_state, "{name}: {conv}");

    // The same deadline and a new title leave the end where it is: saved.
    let same_end = json!({ "application_deadline": "2026-09-30", "title": "ENT des écoles du syndicat" });
    let (status, g) = send(edit(same_end)).await;
    assert_eq!((status, g["title"].as_str()), (200, Some("ENT des écoles du syndicat")), "{name}: {g}");
}

// A commune's competence (L. 212-4 du code de l'éducation) is over its public écoles: a private
// école of its territory (sous contrat) is neither counted in its prefilled quantities nor read
// by its agents (the same 404 as an organisation that does not exist).
backend_test!(a_private_ecole_of_the_commune_is_not_prefilled_nor_read_by_the_commune);
async fn a_private_ecole_of_the_commune_is_not_prefilled_nor_read_by_the_commune(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id) = world_with_groupement(&db).await;
    let (commune, client) = &w.communes[0];
    let ecoles: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, code, pupils FROM orgs WHERE kind = 'etablissement' AND degree = '1D' AND is_open = 1 \
         AND commune_code = $1 ORDER BY code",
    )
    .bind(&commune.code)
    .fetch_all(w.store.pool())
    .await
    .unwrap();
    assert!(ecoles.len() >= 2, "{name}: a public and a private école in the same commune");
    let (private_id, private_code, private_pupils) = ecoles[0].clone();
    let public_code = ecoles[1].1.clone();
    let (schools, pupils) = registry_counts(&w.store, commune).await;
    sqlx::query("UPDATE orgs SET sector = 'prive' WHERE id = $1")
        .bind(&private_id)
        .execute(w.store.pool())
        .await
        .unwrap();

    let prefill = api(&format!("/groupements/{id}/prefill?applicant=commune:{}", commune.code));
    let (status, pre) = send(client.get(&prefill)).await;
    assert_eq!(status, 200, "{name}: {pre}");
    assert_eq!(pre["quantities"]["schools"], schools - 1, "{name}: {pre}");
    assert_eq!(pre["quantities"]["pupils"], pupils - private_pupils, "{name}: {pre}");
    let listed: Vec<&str> = pre["schools"].as_array().unwrap().iter().map(|s| s["code"].as_str().unwrap()).collect();
    assert!(listed.contains(&public_code.as_str()) && !listed.contains(&private_code.as_str()), "{name}: {listed:?}");

    // Its agents no longer read it, as if it did not exist; the public école beside it, yes.
    let (status, missing) = send(client.get(api("/orgs/0949999Z"))).await;
    let (private_status, private) = send(client.get(api(&format!("/orgs/{private_code}")))).await;
    assert_eq!((private_status, status), (404, 404), "{name}: {private}");
    assert_eq!(private.to_string().replace(&private_code, "0949999Z"), missing.to_string(), "{name}");
    assert_eq!(send(client.get(api(&format!("/orgs/{public_code}")))).await.0, 200, "{name}");
}

// The contract is notified after the procedure that awards it, its délais run: launched (the avis
// de marché sent) on 30 November, an open call receives its offers until the deadline fixed at the
// launch (4 January 2027 at noon), then the accord-cadre is signed 11 days after the rejections at
// the earliest (R. 2182-1; 16 by post): notified on 15 January 2027 at the earliest. Earlier, the award is
// refused (422 on `notified_on` saying that day and the articles, nothing awarded); that day, it
// is awarded, and the contract notified for 36 months ends on 14 January 2030.
backend_test!(an_open_call_is_notified_once_its_offer_delay_and_standstill_have_run);
async fn an_open_call_is_notified_once_its_offer_delay_and_standstill_have_run(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    let launching = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    let coord = w.coord.to(&launching);
    launch_until(&coord, &id, "2027-01-04T12:00", name).await;

    let later = TestApp::over(&w.store).clock(clock_on(2027, 1, 20)).build().await;
    let coord = w.coord.to(&later);
    let award_url = api(&format!("/groupements/{id}/award"));
    let refused = async |body: &Value| {
        let (status, problem) = send(coord.post(&award_url).json(body)).await;
        assert_eq!((status, fields(&problem)), (422, vec!["notified_on".to_string()]), "{name}: {problem}");
        problem["errors"][0]["message"].as_str().unwrap().to_string()
    };
    // Before the launch, the day of the launch, the day before the standstill ends: refused.
    for day in ["2026-11-29", "2026-11-30", "2027-01-14"] {
        let message = refused(&award_notified_on(day)).await;
        for needle in [
            "l'accord-cadre ne peut pas être notifié avant le 15 janvier 2027",
            "les offres sont reçues jusqu'au 4 janvier 2027 à 12 h 00 (heure de Paris), date et heure limites de \
             réception des offres",
            "au moins 11 jours (article R. 2182-1 du code de la commande publique ; 16 jours si ce rejet ne leur est \
             pas transmis",
        ] {
            assert!(message.contains(needle), "{name} {day}: « {needle} » in {message}");
        }
    }
    // The rejections sent by post: 16 days of standstill, 20 January at the earliest.
    let mut by_post = award_notified_on("2027-01-15");
    by_post["rejections_by_post"] = json!(true);
    let message = refused(&by_post).await;
    assert!(
        message.contains("avant le 20 janvier 2027") && message.contains("16 jours, ce rejet"),
        "{name}: {message}"
    );
    let (_, still) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!(still["status"], "consultation", "{name}: nothing awarded");

    let (status, g) = send(coord.post(&award_url).json(&award_notified_on("2027-01-15"))).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
    let ends: Vec<String> = sqlx::query_scalar(
        "SELECT ends_on FROM processor_contracts WHERE reference = $1 AND source_kind = 'groupement'",
    )
    .bind(g["reference"].as_str().unwrap())
    .fetch_all(w.store.pool())
    .await
    .unwrap();
    assert_eq!(ends, ["2030-01-14"], "{name}: the contract's last day");
}

/// A signed groupement whose consultation was launched on 15 October, and an app on 30 November,
/// its offers deadline past, to award it: the world, that app and the groupement's id.
async fn awardable_on_30_november(db: &common::TestDb) -> (World, TestApp, String) {
    let (w, id) = launched_on_15_october(db).await;
    let later = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    (w, later, id)
}

// The DECP's technique, mode of execution and CCAG are the consultation documents' own: the RC
// (article 4) and the CCAP (article 2) conclude an accord-cadre à bons de commande, the CCAP's
// article 3 makes the CCAG-TIC a contract piece. « Sans objet » or « Pas de CCAG » is refused (422
// on each field, citing the piece, nothing awarded); left out, the DECP publishes the pieces'.
backend_test!(the_decp_technique_execution_and_ccag_are_those_of_the_rc_and_ccap);
async fn the_decp_technique_execution_and_ccag_are_those_of_the_rc_and_ccap(db: crate::common::TestDb) {
    let name = db.name;
    let (w, later, id) = awardable_on_30_november(&db).await;
    let coord = w.coord.to(&later);
    let award_url = api(&format!("/groupements/{id}/award"));
    let mut contradicting = award_notified_on("2026-11-30");
    contradicting["decp"]["techniques"] = json!(["Sans objet"]);
    contradicting["decp"]["modalites_execution"] = json!(["Sans objet"]);
    contradicting["decp"]["ccag"] = json!("Pas de CCAG");
    let (status, problem) = send(coord.post(&award_url).json(&contradicting)).await;
    let mut refused = fields(&problem);
    refused.sort();
    let expected: Vec<String> = ["decp.ccag", "decp.modalites_execution", "decp.techniques"].map(String::from).into();
    assert_eq!((status, refused), (422, expected), "{name}: {problem}");
    let message = problem.to_string();
    for cited in [
        "le règlement de la consultation (article 4) et le CCAP (article 2) du groupement stipulent un accord-cadre \
         à bons de commande mono-attributaire",
        "la technique d'achat déclarée est « Accord-cadre », pas « Sans objet »",
        "la modalité d'exécution déclarée est « Bons de commande », pas « Sans objet »",
        "le CCAP du groupement (article 3 « Pièces contractuelles »)",
        "le CCAG de référence déclaré est « Techniques de l'information et de la communication », pas « Pas de CCAG »",
    ] {
        assert!(message.contains(cited), "{name}: {cited} in {message}");
    }
    let (_, g) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!(g["status"], "consultation", "{name}: nothing awarded");
    let mut documented = award_notified_on("2026-11-30");
    for fact in ["techniques", "modalites_execution", "ccag"] {
        documented["decp"].as_object_mut().unwrap().remove(fact);
    }
    let (status, g) = send(coord.post(&award_url).json(&documented)).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
    let (status, decp) = send(coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 200, "{name}: {decp}");
    let marche = &decp["marches"]["marche"][0];
    assert_eq!(marche["techniques"], json!({ "technique": ["Accord-cadre"] }), "{name}: {marche}");
    assert_eq!(marche["modalitesExecution"], json!({ "modaliteExecution": ["Bons de commande"] }), "{name}");
    assert_eq!(marche["ccag"], "Techniques de l'information et de la communication", "{name}: {marche}");
    assert_eq!(entcp::groupements::decp::check_publication(&decp), vec![], "{name}");
}

// The DECP's type and form of price, the procedure and the rate of the avance are the consultation
// documents' own: the AE's prices are revised each year (« Définitif révisable »), the BPU's are
// unit prices, the RC organises an open call, the CCAP's article 7 grants an avance of 10 %. A
// contradicting value is refused (422 naming the field, the AE's formula and the CCAP's rate
// quoted); left out, they are the documents' and the DECP publishes them.
backend_test!(the_decp_prices_procedure_and_avance_rate_are_those_of_the_consultation_documents);
async fn the_decp_prices_procedure_and_avance_rate_are_those_of_the_consultation_documents(db: crate::common::TestDb) {
    let name = db.name;
    let (w, later, id) = awardable_on_30_november(&db).await;
    let coord = w.coord.to(&later);
    let award_url = api(&format!("/groupements/{id}/award"));
    let mut firm = award_notified_on("2026-11-30");
    firm["decp"]["types_prix"] = json!(["Définitif ferme"]);
    firm["decp"]["forme_prix"] = json!("Forfaitaire");
    firm["decp"]["procedure"] = json!("Dialogue compétitif");
    // The titulaire kept the avance (its AE): granted, at the CCAP's rate.
    firm["advance_renounced"] = json!(false);
    firm["decp"]["attribution_avance"] = json!(true);
    firm["decp"]["taux_avance"] = json!(0.05);
    let (status, problem) = send(coord.post(&award_url).json(&firm)).await;
    let mut refused = fields(&problem);
    refused.sort();
    assert_eq!(
        (status, refused),
        (
            422,
            vec![
                "decp.forme_prix".into(),
                "decp.procedure".into(),
                "decp.taux_avance".into(),
                "decp.types_prix".into()
            ]
        ),
        "{name}: {problem}"
    );
    assert!(
        problem.to_string().contains(
            "le CCAP du groupement (article 7 « Avance ») fixe le taux de l'avance à 10 % du montant TTC du bon de \
             commande (article R. 2191-7 du code de la commande publique) : le taux déclaré est 0,1, pas 0,05"
        ),
        "{name}: {problem}"
    );
    let message = problem.to_string();
    assert!(
        message.contains("le type de prix est « Définitif révisable », pas « Définitif ferme »")
            && message.contains("P = P0 × (0,15 + 0,85 × I / I0)"),
        "{name}: {message}"
    );
    let mut documented = award_notified_on("2026-11-30");
    for fact in ["types_prix", "forme_prix", "procedure"] {
        documented["decp"].as_object_mut().unwrap().remove(fact);
    }
    documented["advance_renounced"] = json!(false);
    documented["decp"].as_object_mut().unwrap().remove("attribution_avance");
    let (status, g) = send(coord.post(&award_url).json(&documented)).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
    let (status, decp) = send(coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 200, "{name}: {decp}");
    let marche = &decp["marches"]["marche"][0];
    assert_eq!(marche["typesPrix"], json!({ "typePrix": ["Définitif révisable"] }), "{name}: {marche}");
    assert_eq!(
        (marche["formePrix"].as_str(), marche["procedure"].as_str()),
        (Some("Unitaire"), Some("Appel d'offres ouvert")),
        "{name}"
    );
    assert_eq!(
        (marche["attributionAvance"].as_bool(), marche["tauxAvance"].as_f64()),
        (Some(true), Some(0.1)),
        "{name}: the CCAP's rate: {marche}"
    );
}

// The DECP declares the procedure the pieces were issued under. A groupement's pieces organise an
// appel d'offres ouvert by default (the RC's article 3, the AE, the CCAP): a « Procédure adaptée »
// declared at its award is refused (422 on `decp.procedure`, nothing awarded), and the open
// call's délais apply whatever the DECP says.
backend_test!(an_open_call_groupement_refuses_a_procedure_adaptee_at_award);
async fn an_open_call_groupement_refuses_a_procedure_adaptee_at_award(db: crate::common::TestDb) {
    let name = db.name;
    let (w, later, id) = awardable_on_30_november(&db).await;
    let ae = odt_text(&generated(&w, &id, "ae", "odt").await);
    let open =
        "Procédure\nappel d'offres ouvert (articles L. 2124-2, R. 2124-2 et R. 2161-2 à R. 2161-5 du code de la \
                commande publique)\n";
    assert!(ae.contains(&french(open)), "{name}: {ae}");
    let coord = w.coord.to(&later);
    let award_url = api(&format!("/groupements/{id}/award"));
    let mut adapted = award_notified_on("2026-11-30");
    adapted["decp"]["procedure"] = json!("Procédure adaptée");
    let (status, problem) = send(coord.post(&award_url).json(&adapted)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["decp.procedure".to_string()]), "{name}: {problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("organisent un appel d'offres ouvert (articles L. 2124-2, R. 2124-2 et R. 2161-2 à R. 2161-5")
            && message.contains("la procédure déclarée est « Appel d'offres ouvert », pas « Procédure adaptée »"),
        "{name}: {message}"
    );
    // Declared adaptée to notify on the launch day: the open call's délais still apply.
    let mut early = adapted.clone();
    early["notified_on"] = json!("2026-10-15");
    let (status, problem) = send(coord.post(&award_url).json(&early)).await;
    let mut refused = fields(&problem);
    refused.sort();
    assert_eq!((status, refused), (422, vec!["decp.procedure".into(), "notified_on".into()]), "{name}: {problem}");
    let (_, still) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!(still["status"], "consultation", "{name}: nothing awarded");
}

// A groupement whose procedure is a procédure adaptée (chosen before the launch) prints it with
// its articles in the RC, the AE and the CCAP — no appel d'offres ouvert, no 35-day délai, no
// commission d'appel d'offres —, declares it in its DECP (an « Appel d'offres ouvert » refused)
// and may be notified the day after its offers deadline.
backend_test!(a_procedure_adaptee_is_printed_in_the_pieces_and_declared_at_award);
async fn a_procedure_adaptee_is_printed_in_the_pieces_and_declared_at_award(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    let url = api(&format!("/groupements/{id}"));
    let (_, before) = send(w.coord.get(&url)).await;
    let version = before["version"].as_i64().unwrap();
    let patch = json!({ "procedure": "procedure_adaptee", "estimated_amount_ht_cents": 15_000_000 });
    let (status, g) = send(w.coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&patch)).await;
    assert_eq!((status, g["procedure"].as_str()), (200, Some("procedure_adaptee")), "{name}: {g}");

    let flat = |bytes: Vec<u8>| odt_text(&bytes).split_whitespace().collect::<Vec<_>>().join(" ");
    let rc = flat(generated(&w, &id, "rc", "odt").await);
    for needle in [
        "La consultation est passée selon une procédure adaptée, en application des articles L. 2123-1, R. 2123-1, \
         1°, et R. 2123-4 du code de la commande publique",
        "(article R. 2151-1 du code de la commande publique)",
        "choisi par le coordonnateur, sous réserve",
    ] {
        assert!(rc.contains(needle), "{name}: the RC lacks « {needle} »: {rc}");
    }
    for absent in ["appel d'offres ouvert", "trente-cinq jours", "commission d'appel d'offres", "R. 2161-2"] {
        assert!(!rc.contains(absent), "{name}: the RC still says « {absent} »: {rc}");
    }
    let ae = odt_text(&generated(&w, &id, "ae", "odt").await);
    let adapted = "Procédure\nprocédure adaptée (articles L. 2123-1, R. 2123-1, 1°, et R. 2123-4 du code de la \
                   commande publique)\n";
    assert!(ae.contains(&french(adapted)) && !ae.contains("appel d'offres ouvert"), "{name}: {ae}");
    let ccap = flat(generated(&w, &id, "ccap", "odt").await);
    let passed = "L'accord-cadre est passé selon une procédure adaptée (articles L. 2123-1, R. 2123-1, 1°, et \
                  R. 2123-4 du code de la commande publique)";
    assert!(ccap.contains(passed) && !ccap.contains("appel d'offres ouvert"), "{name}: {ccap}");

    launch_until(&w.coord.to(&signing), &id, "2026-10-22T12:00", name).await;
    let after = TestApp::over(&w.store).clock(clock_on(2026, 10, 23)).build().await;
    let coord = w.coord.to(&after);
    let award_url = api(&format!("/groupements/{id}/award"));
    // The test body declares an « Appel d'offres ouvert »: not the pieces' procedure.
    let (status, problem) = send(coord.post(&award_url).json(&award_notified_on("2026-10-23"))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["decp.procedure".to_string()]), "{name}: {problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("« Procédure adaptée », pas « Appel d'offres ouvert »"), "{name}: {message}");
    let mut body = award_notified_on("2026-10-23");
    body["decp"].as_object_mut().unwrap().remove("procedure");
    let (status, g) = send(coord.post(&award_url).json(&body)).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: notified after the deadline: {g}");
    let (status, decp) = send(coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 200, "{name}: {decp}");
    assert_eq!(decp["marches"]["marche"][0]["procedure"], "Procédure adaptée", "{name}: {decp}");
}

// A procédure adaptée only below the threshold of the formalised procedures for the supplies and
// services of the collectivités territoriales in force at the launch (216 000 € HT from 1 January
// 2026), the need's value estimated over every lot and the whole duration: refused without that
// value, and at it, at creation and when an edit keeps it; one cent below is taken, the open call
// is taken above; a groupement recorded before this rule without its value is refused at launch.
backend_test!(a_procedure_adaptee_is_refused_from_the_formalised_threshold_on_and_taken_below_it);
async fn a_procedure_adaptee_is_refused_from_the_formalised_threshold_on_and_taken_below_it(db: crate::common::TestDb) {
    let name = db.name;
    let w = world(&db).await;
    let adapted = |estimate: Option<i64>| {
        let mut body = minimal_groupement(&w, "2026-09-30");
        body["procedure"] = json!("procedure_adaptee");
        body["consultation_date"] = json!("2026-10-15");
        if let Some(estimate) = estimate {
            body["estimated_amount_ht_cents"] = json!(estimate);
        }
        body
    };
    let both = vec!["estimated_amount_ht_cents".to_string(), "procedure".to_string()];
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&adapted(None))).await;
    assert_eq!((status, fields(&problem)), (422, both.clone()), "{name}: {problem}");
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&adapted(Some(21_600_000)))).await;
    assert_eq!((status, fields(&problem)), (422, both.clone()), "{name}: {problem}");
    assert_eq!(problem["title"], "Données invalides", "{name}: {problem}");
    let said = problem["errors"].to_string();
    for needle in [
        "216\u{a0}000,00\u{a0}€ HT pour une consultation lancée à compter du 1er janvier 2026",
        "règlement délégué (UE) 2025/2152",
        "tous les lots sur toute la durée du marché, reconductions comprises",
        "choisissez l'appel d'offres ouvert",
    ] {
        assert!(said.contains(needle), "{name}: « {needle} » in {said}");
    }
    let (status, g) = send(w.coord.post(api("/groupements")).json(&adapted(Some(21_599_999)))).await;
    assert_eq!((status, g["estimated_amount_ht_cents"].as_i64()), (201, Some(21_599_999)), "{name}: {g}");

    // Keeping it while the value reaches the threshold: refused, the groupement untouched; the
    // open call with the same value is taken.
    let url = api(&format!("/groupements/{}", g["id"].as_str().unwrap()));
    let version = format!("\"{}\"", g["version"]);
    let raise = json!({ "estimated_amount_ht_cents": 30_000_000 });
    let (status, problem) = send(w.coord.patch(&url).header("if-match", &version).json(&raise)).await;
    assert_eq!((status, fields(&problem)), (422, both.clone()), "{name}: {problem}");
    let (_, kept) = send(w.coord.get(&url)).await;
    assert_eq!(kept["estimated_amount_ht_cents"], 21_599_999, "{name}: {kept}");
    let open = json!({ "estimated_amount_ht_cents": 30_000_000, "procedure": "appel_offres_ouvert" });
    let (status, g) = send(w.coord.patch(&url).header("if-match", &version).json(&open)).await;
    assert_eq!((status, g["procedure"].as_str()), (200, Some("appel_offres_ouvert")), "{name}: {g}");

    // A procédure adaptée recorded before this rule, without its value: its launch is refused.
    let id = created_minimal_groupement(&w, name).await;
    first_commune_accepted(&w, &id).await;
    sqlx::query("UPDATE groupements SET terms = REPLACE(terms, '\"appel_offres_ouvert\"', '\"procedure_adaptee\"') WHERE id = $1")
        .bind(&id)
        .execute(w.store.pool())
        .await
        .unwrap();
    let transition = api(&format!("/groupements/{id}/transition"));
    assert_eq!(send(w.coord.post(&transition).json(&json!({ "to": "closed" }))).await.0, 200, "{name}");
    let (status, problem) = send(w.coord.post(&transition).json(&json!({ "to": "consultation" }))).await;
    assert_eq!((status, fields(&problem)), (422, both), "{name}: {problem}");
}

// An académie (the State: its rectorat conducts, signs and notifies) applies the threshold of the
// central authorities, 140 000 € HT in 2026-2027 (143 000 € HT in 2024-2025), not the
// collectivités' 216 000 € HT: its procédure adaptée is refused from it on, in words naming the
// category and the académie; one cent below is taken and the RC names that threshold.
backend_test!(a_groupement_of_an_academie_applies_the_central_authorities_threshold);
async fn a_groupement_of_an_academie_applies_the_central_authorities_threshold(db: crate::common::TestDb) {
    let name = db.name;
    let w = world(&db).await;
    let rectorat =
        w.app.client(&token_for(&w.store, "achat@ac-creteil.fr", Role::Coordinateur, Some("academie:24")).await);
    let adapted = |estimate: i64, launch: &str| {
        let mut body = minimal_groupement(&w, "2026-09-30");
        body["coordinator"] = json!("academie:24");
        body["procedure"] = json!("procedure_adaptee");
        body["consultation_date"] = json!(launch);
        body["estimated_amount_ht_cents"] = json!(estimate);
        body
    };
    let both = vec!["estimated_amount_ht_cents".to_string(), "procedure".to_string()];
    let (status, problem) = send(rectorat.post(api("/groupements")).json(&adapted(18_000_000, "2026-10-15"))).await;
    assert_eq!((status, fields(&problem)), (422, both.clone()), "{name}: {problem}");
    let said = problem["errors"].to_string();
    for needle in [
        "des autorités publiques centrales",
        "l'académie de Créteil, coordonnateur du groupement",
        "140\u{a0}000,00\u{a0}€ HT pour une consultation lancée à compter du 1er janvier 2026",
        "règlement délégué (UE) 2025/2152",
    ] {
        assert!(said.contains(needle), "{name}: « {needle} » in {said}");
    }
    assert!(!said.contains("216\u{a0}000") && !said.contains("autres que"), "{name}: {said}");
    // The same need for a syndicat mixte stays below the collectivités' threshold.
    let mut collectivite = adapted(18_000_000, "2026-10-15");
    collectivite["coordinator"] = json!(format!("syndicat_mixte:{}", w.coordinator.code));
    assert_eq!(send(w.coord.post(api("/groupements")).json(&collectivite)).await.0, 201, "{name}");
    // The 2024-2025 history (143 000 € HT) is the unit tests' (consultation.rs): a launch planned
    // before the application deadline is refused for that first.

    let (status, g) = send(rectorat.post(api("/groupements")).json(&adapted(13_999_999, "2026-10-15"))).await;
    assert_eq!(status, 201, "{name}: {g}");
    let docs = api(&format!("/groupements/{}/documents", g["id"].as_str().unwrap()));
    let (status, rc) = send(rectorat.post(&docs).json(&json!({ "kind": "rc" }))).await;
    assert_eq!(status, 201, "{name}: {rc}");
    let odt = rectorat.get(format!("{docs}/{}?format=odt", rc["id"].as_str().unwrap())).send().await.bytes;
    let text = odt_text(&odt);
    let expected = french(
        "est inférieure au seuil des procédures formalisées pour les marchés de fournitures et de services des \
         autorités publiques centrales, l'État conduisant ou rejoignant le groupement (l'académie de Créteil, \
         coordonnateur du groupement), 140\u{a0}000,00\u{a0}€ HT",
    );
    assert!(text.contains(&expected), "{name}: « {expected} » in {text}");
}

// The contract's last day and the convention constitutive's end follow the one rule of terms: a
// 30-month contract planned for 31 May 2027 may be notified until 31 May 2028 and then runs to
// 30 November 2030 (not 29 November, a day short).
backend_test!(a_convention_constitutive_planned_from_a_month_end_lasts_to_the_last_day_of_the_shorter_month);
async fn a_convention_constitutive_planned_from_a_month_end_lasts_to_the_last_day_of_the_shorter_month(
    db: crate::common::TestDb,
) {
    let w = world(&db).await;
    let name = db.name;
    let mut body = minimal_groupement(&w, "2026-09-30");
    body["duration_months"] = json!(30);
    body["award_planned_date"] = json!("2027-05-31");
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    let conv_id = first_commune_accepted(&w, g["id"].as_str().unwrap()).await;
    let (_, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    assert_eq!(conv["end_date"], "2030-11-30", "{name}: {conv}");
}

backend_test!(an_epci_agent_never_applies_edits_nor_withdraws_in_a_member_communes_name);
/// Joining a groupement is each member's own decision (its délibération): the agent of an EPCI
/// whose scope holds a member commune applies, prefills, edits and withdraws for the EPCI only,
/// never for the commune (403, the commune being readable to it; nothing recorded nor changed);
/// the commune's own agent still does all of it.
async fn an_epci_agent_never_applies_edits_nor_withdraws_in_a_member_communes_name(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id) = world_with_groupement(&db).await;
    let (commune, mairie) = &w.communes[0];
    let epci = new_org(&w.store, OrgKind::Epci, "Communauté d'agglomération", &luhn("24940009"), Some("94")).await;
    entcp::registry::manage::set_member(&w.store, &admin(), &epci, commune, true, t0()).await.unwrap();
    let agent = w.app.client(&token_for(&w.store, "agent@ca94.fr", Role::Collectivite, Some(&epci.id)).await);
    let applications = api(&format!("/groupements/{id}/applications"));
    let application =
        json!({ "applicant": commune.id, "deliberation_number": "DCM-1", "deliberation_date": "2026-09-01" });
    let refused_in_french = |status: u16, problem: &Value| {
        assert_eq!(status, 403, "{name}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&commune.name) && detail.contains("délibération"), "{name}: {problem}");
    };

    // The EPCI's agent, for the commune: refused, nothing recorded.
    let (status, problem) = send(agent.post(&applications).json(&application)).await;
    refused_in_french(status, &problem);
    let (status, problem) = send(agent.get(api(&format!("/groupements/{id}/prefill?applicant={}", commune.id)))).await;
    refused_in_french(status, &problem);
    let (_, listed) = send(mairie.get(&applications)).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{name}: {listed}");

    // The commune's own agent applies; the EPCI's agent neither edits nor withdraws it.
    let (status, app) = send(mairie.post(&applications).json(&application)).await;
    assert_eq!(status, 201, "{name}: {app}");
    let url = format!("{applications}/{}", app["id"].as_str().unwrap());
    let version = format!("\"{}\"", app["version"]);
    let change = json!({ "deliberation_number": "DCM-1 de l'EPCI" });
    let (status, problem) = send(agent.patch(&url).header("if-match", &version).json(&change)).await;
    refused_in_french(status, &problem);
    let (status, problem) = send(agent.post(format!("{url}/withdraw"))).await;
    refused_in_french(status, &problem);
    let (_, listed) = send(mairie.get(&applications)).await;
    assert_eq!(
        (listed[0]["status"].as_str(), listed[0]["deliberation_number"].as_str(), listed[0]["version"].as_i64()),
        (Some("applied"), Some("DCM-1"), app["version"].as_i64()),
        "{name}: unchanged: {listed}"
    );

    // The commune's own agent edits, then withdraws it.
    let (status, edited) = send(mairie.patch(&url).header("if-match", &version).json(&change)).await;
    assert_eq!(status, 200, "{name}: {edited}");
    let (status, withdrawn) = send(mairie.post(format!("{url}/withdraw"))).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
}

backend_test!(an_epci_funds_only_the_communes_that_delegated_their_ent_to_it);
/// An EPCI pays the ENT of the communes that delegated it (`ent_delegated`) and of their écoles
/// only: a member commune that runs its own ENT keeps its vendor at the EPCI's award, is not
/// counted in its prefilled quantities, and its écoles are not covered by its conventions.
async fn an_epci_funds_only_the_communes_that_delegated_their_ent_to_it(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let ((delegating, _), (own_ent, _)) = (&w.communes[0], &w.communes[1]);
    let epci = new_org(&w.store, OrgKind::Epci, "CA Grand-Orly Seine Bièvre", &luhn("20005478"), Some("94")).await;
    for (commune, delegated) in [(delegating, true), (own_ent, false)] {
        entcp::registry::manage::set_member(&w.store, &admin(), &epci, commune, delegated, t0()).await.unwrap();
    }
    let state = crate::common::app::app_state(w.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    for commune in [delegating, own_ent] {
        let ecole: String = sqlx::query_scalar(
            "SELECT id FROM orgs WHERE kind = 'etablissement' AND commune_code = $1 ORDER BY id LIMIT 1",
        )
        .bind(&commune.code)
        .fetch_one(w.store.pool())
        .await
        .unwrap();
        let slug = format!("ecole-{}", commune.code);
        let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": { "organisation": ecole, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" }
        }))
        .unwrap();
        entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    }

    let funded = entcp::groupements::award::funded_tenants_of(&w.store, &epci).await.unwrap();
    let slugs: Vec<&str> = funded.iter().map(|t| t.slug.as_str()).collect();
    assert_eq!(slugs, [format!("ecole-{}", delegating.code)], "{name}: {slugs:?}");

    let prefill = entcp::groupements::membership::prefill(&w.store, &epci).await.unwrap();
    let (schools, pupils) = registry_counts(&w.store, delegating).await;
    assert_eq!((prefill.quantities.schools, prefill.quantities.pupils), (schools, pupils), "{name}");

    let covered = entcp::conventions::covered_etablissements(&w.store, &epci).await.unwrap();
    assert_eq!(covered.iter().filter(|s| s.open).count() as i64, schools, "{name}");
    let communes: std::collections::HashSet<_> = covered.iter().filter_map(|s| s.commune_code.clone()).collect();
    assert_eq!(communes, [delegating.code.clone()].into(), "{name}: {communes:?}");
}

// A groupement whose adhesion deadline is already past would be listed « ouvert aux
// adhésions » with a form whose every candidature is refused as late: its creation, or an
// edit moving the deadline into the past, is refused on the field (422, in French). Today
// (the app's day, 1 September 2026) is accepted, and so is the README's sample as printed.
backend_test!(a_groupement_whose_adhesion_deadline_is_past_is_refused_on_that_field);
async fn a_groupement_whose_adhesion_deadline_is_past_is_refused_on_that_field(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&minimal_groupement(&w, "2026-08-31"))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["application_deadline".to_string()]), "{name}: {problem}");
    let detail = problem.to_string();
    assert!(detail.contains("la date limite des adhésions (31 août 2026) est passée"), "{name}: {problem}");
    let listed = common::count(&w.store, "SELECT COUNT(*) FROM groupements", &[]).await;
    assert_eq!(listed, 0, "{name}: nothing written");

    let (status, g) = send(w.coord.post(api("/groupements")).json(&minimal_groupement(&w, "2026-09-01"))).await;
    assert_eq!(status, 201, "{name}: today is still open: {g}");
    let url = api(&format!("/groupements/{}", g["id"].as_str().unwrap()));
    let version = g["version"].as_i64().unwrap();
    let edit = |patch: Value| w.coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&patch);
    let (status, problem) = send(edit(json!({ "application_deadline": "2026-08-15" }))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["application_deadline".to_string()]), "{name}: {problem}");
    let (status, g) = send(edit(json!({ "title": "ENT des écoles du syndicat" }))).await;
    assert_eq!(status, 200, "{name}: an edit keeping the deadline passes: {g}");

    // The README's groupement.yaml, posted as printed, is accepted: on the app's day (before its
    // deadline), not the real today, which passes the printed deadline one day.
    let readme = include_str!("../../../../README.md");
    let start = readme.find("# groupement.yaml (corps de POST /api/v1/groupements)").expect("the README sample");
    let sample = &readme[start..start + readme[start..].find("```").unwrap()];
    let body: Value = entcp::yaml::from_str(sample).unwrap();
    assert_eq!(body["coordinator"], json!(format!("syndicat_mixte:{}", w.coordinator.code)), "{name}");
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: the README sample works as printed: {g}");
}

// The annuaire carries no head counts: a candidature filed with the CLI and no pupil, in a
// groupement whose cost key counts pupils, is accepted with a warning saying so (as the
// console's form does), not silently.
backend_test!(a_candidature_without_pupils_under_a_pupil_key_is_warned_about_on_the_command_line);
async fn a_candidature_without_pupils_under_a_pupil_key_is_warned_about_on_the_command_line(db: crate::common::TestDb) {
    let w = world(&db).await;
    let mut body = minimal_groupement(&w, "2090-06-30");
    body["cost_key"] = json!([{ "basis": "pupils", "weight": 70 }, { "basis": "equal", "weight": 30 }]);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{}: {g}", db.name);
    let reference = g["reference"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, code: &str, pupils: u32| {
        let path = dir.path().join(name);
        let text = format!(
            "applicant: commune:{code}\ndeliberation_number: \"2026-45\"\ndeliberation_date: \"2026-10-01\"\npupils: {pupils}\n"
        );
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let apply = |path: String, code: &str| {
        let who = format!("mairie{code}@test.fr");
        common::entctl(&db.url, &["groupements", "apply", reference, &path, "--as", &who])
    };
    let (none, some) = (&w.communes[0].0.code, &w.communes[1].0.code);
    let (ok, out) = apply(file("sans.yaml", none, 0), none);
    assert!(ok && out.contains("aucun élève déclaré pour"), "{}: {out}", db.name);
    let (ok, out) = apply(file("avec.yaml", some, 120), some);
    assert!(ok && !out.contains("aucun élève"), "{}: {out}", db.name);
}

// The annuaire carries no head counts: under a key of « 70 % au prorata du nombre d'élèves »,
// members that declare no pupil share that part equally (no division by zero), and the
// presentation note says so instead of presenting an equal split as a pro-rata; the shares
// of the API say it too. Once a member declares pupils, the pro-rata applies, and the note
// names the members that pay nothing of that part.
backend_test!(a_pupil_key_without_pupils_is_said_to_split_equally_in_the_documents);
async fn a_pupil_key_without_pupils_is_said_to_split_equally_in_the_documents(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let mut body = minimal_groupement(&w, "2026-09-30");
    body["cost_key"] = json!([{ "basis": "pupils", "weight": 70 }, { "basis": "equal", "weight": 30 }]);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    let apps = api(&format!("/groupements/{id}/applications"));
    let apply = |i: usize, pupils: i64| {
        let (commune, client) = &w.communes[i];
        let body = json!({
            "applicant": commune.id, "deliberation_number": format!("2026-DCM-2{i}"),
            "deliberation_date": "2026-09-01", "pupils": pupils,
        });
        client.post(&apps).json(&body)
    };
    for (i, pupils) in [(0, 0), (1, 0)] {
        let (status, applied) = send(apply(i, pupils)).await;
        assert_eq!(status, 201, "{name}: {applied}");
        let accept = format!("{apps}/{}/accept", applied["id"].as_str().unwrap());
        assert_eq!(send(w.coord.post(accept)).await.0, 200, "{name}");
    }
    let text = odt_text(&generated(&w, &id, "presentation", "odt").await);
    let fallback = "70 % au prorata du nombre d'élèves (aucun élève déclaré : cette part est répartie à parts égales)";
    assert!(text.contains(&french(fallback)), "{name}: {text}");
    assert!(text.contains(&french("Attention : Aucun élève déclaré par les membres : les 70 %")), "{name}: {text}");

    let (status, applied) = send(apply(2, 120)).await;
    assert_eq!(status, 201, "{name}: {applied}");
    assert_eq!(send(w.coord.post(format!("{apps}/{}/accept", applied["id"].as_str().unwrap()))).await.0, 200);
    let text = odt_text(&generated(&w, &id, "presentation", "odt").await);
    assert!(
        !text.contains(&french("aucun élève déclaré :"))
            && text.contains(&french("70 % au prorata du nombre d'élèves, 30 %")),
        "{name}: {text}"
    );
    let warning =
        text.lines().find(|l| l.contains(&french("Aucun élève déclaré par la Commune d"))).unwrap_or_default();
    // Each named with its article, the verb agreeing with the two of them.
    assert!(warning.contains(&french(", qui ne paient rien des 70 % répartis « au prorata")), "{name}: {text}");
    assert!(!warning.contains("paie(nt)"), "{name}: {warning}");
    assert!(warning.contains(&w.communes[0].0.name) && warning.contains(&w.communes[1].0.name), "{name}: {text}");
    assert!(!warning.contains(&w.communes[2].0.name), "{name}: {warning}");
}

// The convention constitutive opens on the latest version of its model (3), which, as version 2, names what the members
// equip by their kinds (version 1 said « écoles » for every member): a département's collèges,
// a commune's écoles.
backend_test!(the_convention_constitutive_names_what_its_members_equip);
async fn the_convention_constitutive_names_what_its_members_equip(db: crate::common::TestDb) {
    let w = world(&db).await;
    // A collège the département funds: a member joins for an établissement it equips.
    common::import_college(&w.store).await;
    let name = db.name;
    let departement = entcp::registry::resolve_org(&w.store, "departement:94").await.unwrap();
    let token = token_for(&w.store, "cd94@test.fr", Role::Collectivite, Some(&departement.id)).await;
    let cases = [
        (vec![(departement, w.app.client(&token))], "socle-2d", "collèges", "écoles"),
        (vec![(w.communes[0].0.clone(), w.communes[0].1.to(&w.app))], "socle-1d", "écoles", "collèges"),
    ];
    for (members, bouquet, equipped, other) in cases {
        let mut body = minimal_groupement(&w, "2026-09-30");
        body["bouquet"] = json!(bouquet);
        let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
        assert_eq!(status, 201, "{name}: {g}");
        let id = g["id"].as_str().unwrap().to_string();
        accepted(&w.coord, &id, &members).await;
        let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
        let conv_url = |p: &str| api(&format!("/conventions/{}{p}", g["convention_id"].as_str().unwrap()));
        let (_, conv) = send(w.coord.get(conv_url(""))).await;
        let version = (conv["model_version"].as_i64(), conv["parameters"]["etablissements"].as_str());
        assert_eq!(version, (Some(3), Some(equipped)), "{name}: {conv}");
        let html = w.coord.get(conv_url("/document?format=html")).send().await.text;
        for expected in [format!("dans ses {equipped}, la convention"), format!("les {equipped} qu")] {
            assert!(html.contains(&expected), "{name}: « {expected} » in {html}");
        }
        assert!(!html.contains(&format!("dans ses {other}")), "{name}: {html}");
    }
}

// A member joins for its own needs (L. 2113-6): a département, which funds collèges, cannot apply
// to a premier-degré groupement (422 on `applicant`, in words naming its degree and the bouquet),
// and an application declaring 0 établissement is refused at acceptance (422), nothing joined.
backend_test!(a_member_the_bouquet_does_not_serve_or_without_etablissement_is_refused);
async fn a_member_the_bouquet_does_not_serve_or_without_etablissement_is_refused(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let apps = api(&format!("/groupements/{id}/applications"));
    let departement = entcp::registry::resolve_org(&w.store, "departement:94").await.unwrap();
    let cd94 = w.app.client(&token_for(&w.store, "cd94@test.fr", Role::Collectivite, Some(&departement.id)).await);
    let body = |applicant: &str, extra: Value| {
        let mut body =
            json!({ "applicant": applicant, "deliberation_number": "2026-CD-7", "deliberation_date": "2026-09-01" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, problem) = send(cd94.post(&apps).json(&body(&departement.id, json!({})))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["applicant".to_string()]), "{name}: {problem}");
    let said = problem["errors"][0]["message"].as_str().unwrap();
    for needle in [
        "Le Département du Val-de-Marne finance des établissements du second degré",
        "ne sert que le premier degré",
        "L. 2113-6",
    ] {
        assert!(said.contains(needle), "{name}: « {needle} » in {said}");
    }

    let (commune, client) = &w.communes[0];
    let (status, app) = send(client.post(&apps).json(&body(&commune.id, json!({ "schools": 0, "pupils": 0 })))).await;
    assert_eq!(status, 201, "{name}: {app}");
    let accept = format!("{apps}/{}/accept", app["id"].as_str().unwrap());
    let (status, problem) = send(w.coord.post(&accept)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    let said = problem["errors"][0]["message"].as_str().unwrap();
    assert!(said.contains("déclare 0 établissement") && said.contains(&commune.name), "{name}: {said}");
    assert!(accepted_members(&w.coord, &id).await.is_empty(), "{name}: nothing joined");
}

/// The accepted members of the groupement `id` (organisation ids, sorted).
async fn accepted_members(coord: &Client, id: &str) -> Vec<String> {
    let (_, members) = send(coord.get(api(&format!("/groupements/{id}/members")))).await;
    let mut ids: Vec<String> =
        members.as_array().unwrap().iter().map(|m| m["applicant"]["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

/// The id of the convention constitutive the groupement `id` links, as `coord` reads it.
async fn linked_convention(coord: &Client, id: &str) -> String {
    let (_, g) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    g["convention_id"].as_str().unwrap().to_string()
}

/// The member parties of the convention `conv_id`, sorted.
async fn sorted_member_parties(coord: &Client, conv_id: &str) -> Vec<String> {
    let mut parties = member_parties(coord, conv_id).await.0;
    parties.sort();
    parties
}

// The last member leaving a convention constitutive still in preparation ends it (it used to
// stay, in draft, linked by the groupement, with no member): terminated, its reason naming the
// member, the groupement links none any more (audited), and the next member accepted opens a
// new one naming it alone.
backend_test!(the_last_member_leaving_ends_the_draft_convention_constitutive);
async fn the_last_member_leaving_ends_the_draft_convention_constitutive(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let ids = accepted(&w.coord, &id, &w.communes[..1]).await;
    let url = api(&format!("/groupements/{id}"));
    let conv_id = linked_convention(&w.coord, &id).await;
    assert_eq!(member_parties(&w.coord, &conv_id).await, (vec![w.communes[0].0.id.clone()], "draft".into()));

    let withdraw = api(&format!("/groupements/{id}/applications/{}/withdraw", ids[0]));
    let (status, withdrawn) = send(w.communes[0].1.post(withdraw)).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
    let (_, ended) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    assert_eq!(ended["status"], "terminated", "{name}: {ended}");
    let reason = ended["termination_reason"].as_str().unwrap();
    assert!(reason.contains(&w.communes[0].0.name) && reason.contains("plus de membre"), "{name}: {reason}");
    let (_, g) = send(w.coord.get(&url)).await;
    assert_eq!(
        (g["convention_id"].as_str(), g["first_convention_id"].as_str(), g["members"].as_i64()),
        (None, None, Some(0))
    );
    let unlinked = "SELECT COUNT(*) FROM audit_log WHERE action = 'groupements.convention' AND target_id = $1 \
                    AND summary LIKE '%\"convention\":null%'";
    assert_eq!(common::count(&w.store, unlinked, &[&id]).await, 1, "{name}: audited");

    accepted(&w.coord, &id, &w.communes[1..2]).await;
    let (_, g) = send(w.coord.get(&url)).await;
    let new_id = g["convention_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, conv_id, "{name}");
    assert_eq!(g["first_convention_id"].as_str(), Some(new_id.as_str()), "{name}: {g}");
    assert_eq!(member_parties(&w.coord, &new_id).await, (vec![w.communes[1].0.id.clone()], "draft".into()));
}

// Membership changes of one groupement run one at a time: two members withdrawing at once, then
// a member accepted while another withdraws, both succeed and leave the convention constitutive
// naming exactly the accepted members (each used to rewrite it from the member list it had read
// before the other's decision: a member gone stayed a party, or one of them failed on the
// convention's version).
backend_test!(concurrent_membership_changes_leave_the_convention_with_the_accepted_members);
async fn concurrent_membership_changes_leave_the_convention_with_the_accepted_members(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let ids = accepted(&w.coord, &id, &w.communes[..4]).await;
    let conv_id = linked_convention(&w.coord, &id).await;
    let withdraw = |i: usize| w.communes[i].1.post(api(&format!("/groupements/{id}/applications/{}/withdraw", ids[i])));

    let (first, second) = tokio::join!(send(withdraw(0)), send(withdraw(1)));
    assert_eq!((first.0, second.0), (200, 200), "{name}: {first:?} {second:?}");
    let members = accepted_members(&w.coord, &id).await;
    assert_eq!(members.len(), 2, "{name}");
    assert_eq!(sorted_member_parties(&w.coord, &conv_id).await, members, "{name}: after two withdrawals");

    let applied = apply(&w.communes[4], &id, "2026-DCM-104").await;
    let accept =
        w.coord.post(api(&format!("/groupements/{id}/applications/{}/accept", applied["id"].as_str().unwrap())));
    let (accepted_now, withdrawn) = tokio::join!(send(accept), send(withdraw(2)));
    assert_eq!((accepted_now.0, withdrawn.0), (200, 200), "{name}: {accepted_now:?} {withdrawn:?}");
    let members = accepted_members(&w.coord, &id).await;
    let mut expected = vec![w.communes[3].0.id.clone(), w.communes[4].0.id.clone()];
    expected.sort();
    assert_eq!(members, expected, "{name}");
    assert_eq!(
        sorted_member_parties(&w.coord, &conv_id).await,
        members,
        "{name}: after an acceptance and a withdrawal"
    );
}

/// The convention the groupement `id` links as stored (`groupements.convention_id`, unread).
async fn stored_link(store: &Store, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT convention_id FROM groupements WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

// The last member leaving ends the draft convention constitutive and the groupement unlinks it
// in one transaction: when the unlinking fails (as a crash between the two would), the draft is
// not ended either and the member is still one (it used to be ended, the groupement still
// linking it, and every later acceptance got a 409); once the database answers again, the
// withdrawal ends the draft and leaves the groupement linking no convention.
backend_test!(the_last_member_leaving_ends_the_draft_and_unlinks_it_together_or_not_at_all);
async fn the_last_member_leaving_ends_the_draft_and_unlinks_it_together_or_not_at_all(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let ids = accepted(&w.coord, &id, &w.communes[..1]).await;
    let conv_id = stored_link(&w.store, &id).await.expect("a convention constitutive");
    let withdraw = || w.communes[0].1.post(api(&format!("/groupements/{id}/applications/{}/withdraw", ids[0])));

    fails_while_updating(&w, "groupements", "NEW.convention_id IS NULL", withdraw(), name).await;
    let (_, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    assert_eq!(conv["status"], "draft", "{name}: not ended without its unlinking: {conv}");
    assert_eq!(stored_link(&w.store, &id).await.as_deref(), Some(conv_id.as_str()), "{name}");
    assert_eq!(accepted_members(&w.coord, &id).await, vec![w.communes[0].0.id.clone()], "{name}");

    let (status, withdrawn) = send(withdraw()).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
    let (_, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    assert_eq!(conv["status"], "terminated", "{name}: {conv}");
    assert_eq!(stored_link(&w.store, &id).await, None, "{name}: no link to the ended draft");
}

// A database where the draft convention constitutive was ended but the groupement still links it
// (left by a crash between the two, before they were one transaction) heals: the groupement
// reads as linking no convention, the next acceptance drafts a new one (it used to get a 409 for
// ever, « attendez sa prise d'effet »), and the member the crash left accepted still withdraws.
backend_test!(a_groupement_still_linking_the_draft_its_last_member_ended_accepts_again);
async fn a_groupement_still_linking_the_draft_its_last_member_ended_accepts_again(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let ids = accepted(&w.coord, &id, &w.communes[..1]).await;
    let conv_id = stored_link(&w.store, &id).await.expect("a convention constitutive");
    let ended = "UPDATE conventions SET status = 'terminated', termination_reason = 'dernier membre retiré', \
                 termination_effective = '2026-09-15', version = version + 1 WHERE id = $1";
    assert_eq!(common::execute(&w.store, ended, &[&conv_id]).await, 1, "{name}");
    let url = api(&format!("/groupements/{id}"));
    let (_, g) = send(w.coord.get(&url)).await;
    assert_eq!((g["convention_id"].as_str(), g["first_convention_id"].as_str()), (None, None), "{name}: {g}");

    accepted(&w.coord, &id, &w.communes[1..2]).await;
    let (_, g) = send(w.coord.get(&url)).await;
    let new_id = g["convention_id"].as_str().unwrap_or_else(|| panic!("{name}: {g}")).to_string();
    assert_ne!(new_id, conv_id, "{name}");
    assert_eq!(stored_link(&w.store, &id).await.as_deref(), Some(new_id.as_str()), "{name}");
    let mut both = vec![w.communes[0].0.id.clone(), w.communes[1].0.id.clone()];
    both.sort();
    assert_eq!(sorted_member_parties(&w.coord, &new_id).await, both, "{name}");

    let withdraw = api(&format!("/groupements/{id}/applications/{}/withdraw", ids[0]));
    let (status, withdrawn) = send(w.communes[0].1.post(withdraw)).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
    assert_eq!(member_parties(&w.coord, &new_id).await, (vec![w.communes[1].0.id.clone()], "draft".into()));
}

// Membership changes of more groupements at once than the pool has connections all succeed: a
// change holding the lock of its groupement's membership takes one pooled connection at a time
// (on PostgreSQL the lock used to hold one of the pool's own, every one of them then held by a
// change waiting for a second: all waited out the acquire timeout and failed).
backend_test!(membership_changes_of_more_groupements_than_pooled_connections_all_succeed);
async fn membership_changes_of_more_groupements_than_pooled_connections_all_succeed(db: crate::common::TestDb) {
    const POOL: u32 = 2;
    let w = world(&db).await;
    let name = db.name;
    let mut applications = Vec::new();
    for (i, member) in w.communes[..3 * POOL as usize].iter().enumerate() {
        let id = created_minimal_groupement(&w, name).await;
        let app = apply(member, &id, &format!("2026-DCM-2{i}")).await;
        applications.push((id, app["id"].as_str().unwrap().to_string()));
    }
    // Patient: a change waits for a connection as long as the others take, never for ever.
    let options = entcp::store::PoolOptions {
        max_connections: Some(POOL),
        acquire_timeout: std::time::Duration::from_secs(20),
        ..Default::default()
    };
    let small = Store::connect_with(&db.url, options).await.unwrap();
    let app = TestApp::over(&small).build().await;
    let coord = w.coord.to(&app);
    let accepts = applications
        .iter()
        .map(|(id, app_id)| send(coord.post(api(&format!("/groupements/{id}/applications/{app_id}/accept")))));
    let answers = tokio::time::timeout(std::time::Duration::from_secs(180), futures_util::future::join_all(accepts))
        .await
        .unwrap_or_else(|_| panic!("{name}: the changes never finished"));
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, vec![200; applications.len()], "{name}: {answers:?}");
    for (id, _) in &applications {
        assert!(stored_link(&w.store, id).await.is_some(), "{name}: {id} links its convention");
    }
    small.close().await;
}

/// Sends `req` while each `UPDATE` of `table` where `when` holds fails (as a crash there would):
/// the answer is a server error; the fault is lifted.
async fn fails_while_updating(w: &World, table: &str, when: &str, req: Req<'_>, name: &str) {
    common::inject_fault(&w.store, table, "UPDATE", when).await;
    let (status, failed) = send(req).await;
    assert!(status >= 500, "{name}: {status} {failed}");
    common::lift_fault(&w.store, table).await;
}

/// How many conventions of the groupements' model the database holds.
async fn constitutive_conventions(store: &Store) -> i64 {
    common::count(store, "SELECT COUNT(*) FROM conventions WHERE model_id = 'groupement-de-commandes'", &[]).await
}

/// The `groupement` notices of `event` queued in the outbox (a mail to each of their recipients).
async fn queued_notices(store: &Store, event: &str) -> i64 {
    let notices = common::queued_notices(store, "groupement").await;
    notices.iter().filter(|n| n.context["event"] == event).count() as i64
}

/// The status of the application `app_id` of the groupement `id`, as its coordinator reads it.
async fn application_status(coord: &Client, id: &str, app_id: &str) -> String {
    let (_, apps) = send(coord.get(api(&format!("/groupements/{id}/applications")))).await;
    let app = apps.as_array().unwrap().iter().find(|a| a["id"] == app_id).unwrap_or_else(|| panic!("{apps}"));
    app["status"].as_str().unwrap().to_string()
}

// The first acceptance creates the convention constitutive, sets its signatories and shares and
// links it in one transaction with the decision: when the link fails (as a crash after the draft
// was created would), nothing is left, no draft that no groupement links (the next acceptance
// used to draft a second one); once the database answers again, the acceptance creates exactly
// one convention, linked.
backend_test!(a_failure_linking_the_new_convention_constitutive_leaves_no_draft_behind);
async fn a_failure_linking_the_new_convention_constitutive_leaves_no_draft_behind(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let app = apply(&w.communes[0], &id, "2026-DCM-001").await;
    let app_id = app["id"].as_str().unwrap();
    let accept = || w.coord.post(api(&format!("/groupements/{id}/applications/{app_id}/accept")));

    fails_while_updating(&w, "groupements", "NEW.convention_id IS NOT NULL", accept(), name).await;
    assert_eq!(constitutive_conventions(&w.store).await, 0, "{name}: no convention left unlinked");
    assert_eq!(stored_link(&w.store, &id).await, None, "{name}");
    assert_eq!(application_status(&w.coord, &id, app_id).await, "applied", "{name}");
    assert_eq!(queued_notices(&w.store, "accepted").await, 0, "{name}: nobody told");

    let (status, member) = send(accept()).await;
    assert_eq!((status, member["status"].as_str()), (200, Some("accepted")), "{name}: {member}");
    assert_eq!(constitutive_conventions(&w.store).await, 1, "{name}: exactly one convention");
    let conv_id = stored_link(&w.store, &id).await.expect("linked");
    assert_eq!(member_parties(&w.coord, &conv_id).await, (vec![w.communes[0].0.id.clone()], "draft".into()));
    assert_eq!(queued_notices(&w.store, "accepted").await, 1, "{name}");
}

// The decisions of an acceptance join the transaction of the convention they join the members
// to: when the second of two decisions fails, neither the convention, nor the groupement's
// link, nor the first decision, nor its notice is left (members of the convention whose
// application still read « candidature déposée »); accepted again, both are members of one
// convention.
backend_test!(a_failed_decision_leaves_neither_the_convention_nor_its_link_nor_any_decision);
async fn a_failed_decision_leaves_neither_the_convention_nor_its_link_nor_any_decision(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let first = apply(&w.communes[0], &id, "2026-DCM-001").await["id"].as_str().unwrap().to_string();
    let second = apply(&w.communes[1], &id, "2026-DCM-002").await["id"].as_str().unwrap().to_string();
    let acceptances = api(&format!("/groupements/{id}/acceptances"));
    let both = json!({ "applications": [first, second] });

    let when = format!("NEW.id = '{second}' AND NEW.status = 'accepted'");
    fails_while_updating(&w, "groupement_members", &when, w.coord.post(&acceptances).json(&both), name).await;
    assert_eq!(constitutive_conventions(&w.store).await, 0, "{name}: no convention");
    assert_eq!(stored_link(&w.store, &id).await, None, "{name}: no link");
    for app_id in [&first, &second] {
        assert_eq!(application_status(&w.coord, &id, app_id).await, "applied", "{name}: no decision");
    }
    assert_eq!(queued_notices(&w.store, "accepted").await, 0, "{name}: nobody told");

    let (status, accepted) = send(w.coord.post(&acceptances).json(&both)).await;
    assert_eq!(status, 200, "{name}: {accepted}");
    assert_eq!(constitutive_conventions(&w.store).await, 1, "{name}");
    let conv_id = stored_link(&w.store, &id).await.expect("linked");
    let mut members = vec![w.communes[0].0.id.clone(), w.communes[1].0.id.clone()];
    members.sort();
    assert_eq!(sorted_member_parties(&w.coord, &conv_id).await, members, "{name}");
    assert_eq!(accepted_members(&w.coord, &id).await, members, "{name}");
    assert_eq!(queued_notices(&w.store, "accepted").await, 2, "{name}");
}

// A database where a crash left the draft convention constitutive of a groupement unlinked
// (created, the groupement's link never written) heals: the next acceptance takes that draft,
// the only one of the groupement's model whose coordinator party is its coordinator and whose
// title names its reference, edits it with the members and links it, instead of drafting a
// second one; a draft naming another reference is left as it is.
backend_test!(the_next_acceptance_adopts_the_draft_a_crash_left_unlinked);
async fn the_next_acceptance_adopts_the_draft_a_crash_left_unlinked(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    let reference = g["reference"].as_str().unwrap();
    let draft = |title: String| {
        json!({
            "model": "groupement-de-commandes",
            "parties": { "coordinateur": w.coordinator.id, "membre": [w.communes[0].0.id] },
            "start_date": "2026-09-01",
            "title": title,
        })
    };
    let left = common::fixtures::constitutive(
        &w.store,
        draft(format!("Convention constitutive du groupement de commandes {reference} – ENT 1er degré")),
    )
    .await;
    let other = common::fixtures::constitutive(
        &w.store,
        draft(format!("Convention constitutive du groupement de commandes {reference}9 – ENT 1er degré")),
    )
    .await;

    accepted(&w.coord, &id, &w.communes[1..2]).await;
    assert_eq!(stored_link(&w.store, &id).await.as_deref(), Some(left.as_str()), "{name}: adopted");
    assert_eq!(constitutive_conventions(&w.store).await, 2, "{name}: no third one");
    assert_eq!(member_parties(&w.coord, &left).await, (vec![w.communes[1].0.id.clone()], "draft".into()));
    assert_eq!(member_parties(&w.coord, &other).await, (vec![w.communes[0].0.id.clone()], "draft".into()));
    let adopted = "SELECT COUNT(*) FROM audit_log WHERE action = 'groupements.convention' AND target_id = $1 \
                   AND summary LIKE '%\"adopted\":true%'";
    assert_eq!(common::count(&w.store, adopted, &[&id]).await, 1, "{name}: audited");
}

/// Refuses together, as the coordinator's console form does (`membership::reject_many`; the API
/// refuses one application at a time), the applications `app_ids` of the groupement `id`.
async fn refused_together(w: &World, id: &str, app_ids: &[&str]) -> Result<(), entcp::error::Problem> {
    use entcp::groupements::{self as gm, membership};
    let (catalog, models) = crate::authz::groupements::groupement_fixtures();
    let support = entcp::api::commitments::SupportDesk(Arc::new(entcp::support::policy::Policies::shipped()));
    let actor = admin();
    let ctx = gm::Ctx { store: &w.store, catalog, support: &support, models, actor: &actor, now: t0() };
    let g = gm::must_get(&w.store, id).await?;
    let mut refusals = Vec::new();
    for app_id in app_ids {
        refusals.push((membership::get(&w.store, id, app_id).await?, "Délibération illisible".to_string()));
    }
    membership::reject_many(&ctx, &g, &refusals).await.map(|_| ())
}

// A batch of refusals is all or none, their notices with them: when the second of two refusals
// fails (as a crash between them would), neither application is refused and no applicant is told
// (the first used to be refused, and told, alone); refused again, both are.
backend_test!(a_failed_refusal_in_a_batch_leaves_every_application_awaiting_its_decision);
async fn a_failed_refusal_in_a_batch_leaves_every_application_awaiting_its_decision(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let first = apply(&w.communes[0], &id, "2026-DCM-001").await["id"].as_str().unwrap().to_string();
    let second = apply(&w.communes[1], &id, "2026-DCM-002").await["id"].as_str().unwrap().to_string();

    let when = format!("NEW.id = '{second}' AND NEW.status = 'rejected'");
    common::inject_fault(&w.store, "groupement_members", "UPDATE", &when).await;
    let failed = refused_together(&w, &id, &[&first, &second]).await;
    common::lift_fault(&w.store, "groupement_members").await;
    assert!(matches!(&failed, Err(p) if p.kind.status().is_server_error()), "{name}: {failed:?}");
    for app_id in [&first, &second] {
        assert_eq!(application_status(&w.coord, &id, app_id).await, "applied", "{name}: none refused");
    }
    assert_eq!(queued_notices(&w.store, "rejected").await, 0, "{name}: nobody told");

    refused_together(&w, &id, &[&first, &second]).await.unwrap_or_else(|p| panic!("{name}: {p:?}"));
    for app_id in [&first, &second] {
        assert_eq!(application_status(&w.coord, &id, app_id).await, "rejected", "{name}");
    }
    assert_eq!(queued_notices(&w.store, "rejected").await, 2, "{name}");
}

// An accepted member's withdrawal takes it out of the convention constitutive and records the
// decision in one transaction: when the decision fails (as a crash after the convention was
// rewritten would), the convention still names it and its application still reads accepted (it
// used to be out of the convention, yet a member); once the database answers again, the
// withdrawal goes through and the convention names the other member only.
backend_test!(a_failed_withdrawal_leaves_the_member_in_the_convention_and_accepted);
async fn a_failed_withdrawal_leaves_the_member_in_the_convention_and_accepted(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let ids = accepted(&w.coord, &id, &w.communes[..2]).await;
    let conv_id = stored_link(&w.store, &id).await.expect("a convention constitutive");
    let mut both = vec![w.communes[0].0.id.clone(), w.communes[1].0.id.clone()];
    both.sort();
    let withdraw = || w.communes[0].1.post(api(&format!("/groupements/{id}/applications/{}/withdraw", ids[0])));

    let when = format!("NEW.id = '{}' AND NEW.status = 'withdrawn'", ids[0]);
    fails_while_updating(&w, "groupement_members", &when, withdraw(), name).await;
    assert_eq!(sorted_member_parties(&w.coord, &conv_id).await, both, "{name}: still a party");
    assert_eq!(application_status(&w.coord, &id, &ids[0]).await, "accepted", "{name}");
    assert_eq!(queued_notices(&w.store, "withdrawn").await, 0, "{name}: nobody told");

    let (status, withdrawn) = send(withdraw()).await;
    assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{name}: {withdrawn}");
    assert_eq!(member_parties(&w.coord, &conv_id).await, (vec![w.communes[1].0.id.clone()], "draft".into()));
    assert_eq!(queued_notices(&w.store, "withdrawn").await, 1, "{name}");
}

// The school basis of a cost key names what the members equip: a groupement of a département
// shares « au prorata du nombre de collèges », in its documents and its shares, not of écoles.
backend_test!(a_school_cost_key_names_the_members_etablissements_in_the_documents);
async fn a_school_cost_key_names_the_members_etablissements_in_the_documents(db: crate::common::TestDb) {
    let w = world(&db).await;
    // A collège the département funds: a member joins for an établissement it equips.
    common::import_college(&w.store).await;
    let name = db.name;
    let mut body = minimal_groupement(&w, "2026-09-30");
    body["cost_key"] = json!([{ "basis": "schools", "weight": 100 }]);
    body["bouquet"] = json!("socle-2d");
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    let departement = entcp::registry::resolve_org(&w.store, "departement:94").await.unwrap();
    let token = token_for(&w.store, "cd94@test.fr", Role::Collectivite, Some(&departement.id)).await;
    accepted(&w.coord, &id, &[(departement, w.app.client(&token))]).await;
    let text = odt_text(&generated(&w, &id, "presentation", "odt").await);
    assert!(text.contains("au prorata du nombre de collèges"), "{name}: {text}");
    assert!(!text.contains("nombre d'écoles") && !text.contains("aucune école"), "{name}: {text}");
}

/// The version of the migration that records when a groupement's consultation was launched,
/// and the one before it, read from the list of migrations (their numbers may move at a merge).
fn consultation_launched_migration() -> (i64, i64) {
    let number = |file: &str| file[..4].parse::<i64>().unwrap();
    let files = entcp::store::migrations::FILES;
    let mine = files.iter().position(|(f, _)| f.ends_with("_groupement_consultation_launched.sql")).unwrap();
    (number(files[mine - 1].0), number(files[mine].0))
}

/// On the schema before the migration, a groupement launched in consultation (its audit records
/// a transition to `closed`, then the launch), one still open; migrated, the first holds the
/// instant of its launch, the second none.
async fn consultation_launches_are_backfilled(url: &str, backend: entcp::store::Backend) {
    let (before, mine) = consultation_launched_migration();
    let (store, t) = crate::counters::store_before(url, backend, mine).await;
    let applied = "SELECT MAX(version) FROM _sqlx_migrations";
    assert_eq!(common::count(&store, applied, &[]).await, before);
    for (id, reference, status) in [("g1", "GC-2026-000001", "consultation"), ("g2", "GC-2026-000002", "open")] {
        sqlx::query(
            "INSERT INTO groupements (id, reference, coordinator_org_id, title, object, terms, application_deadline, \
             status, created_by, created_at, updated_at) VALUES ($1, $2, 'o1', 'T', 'O', '{}', '2026-03-01', $3, 'u', $4, $4)",
        )
        .bind(id)
        .bind(reference)
        .bind(status)
        .bind(t)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let launched = "2026-04-02T08:30:00.000000Z";
    let audits = [
        (1_i64, "2026-04-01T16:00:00.000000Z", "g1", r#"{"from":"open","to":"closed"}"#),
        (2, launched, "g1", r#"{"from":"closed","to":"consultation"}"#),
        (3, "2026-04-03T09:00:00.000000Z", "g2", r#"{"from":"open","to":"closed"}"#),
        (4, "2026-04-04T09:00:00.000000Z", "g2", r#"{"from":"closed","to":"open"}"#),
    ];
    for (seq, at, target, summary) in audits {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target_kind, target_id, scope_org_id, summary, prev_hash, \
             hash) VALUES ($1, $2, 'coord@sm94.fr', 'groupements.transition', 'groupement', $3, 'o1', $4, 'p', 'h')",
        )
        .bind(seq)
        .bind(at)
        .bind(target)
        .bind(summary)
        .execute(store.pool())
        .await
        .unwrap();
    }

    crate::counters::migrate_through(&store, backend, mine).await;
    assert_eq!(common::count(&store, applied, &[]).await, mine);
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, consultation_launched_at FROM groupements ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(rows, [("g1".to_string(), Some(launched.to_string())), ("g2".to_string(), None)]);
    store.close().await;
}

migration_test!(consultation_launches_are_backfilled);

/// A groupement of `w`'s communes `members` (by index; applications until 30 September 2026),
/// each accepted, its convention constitutive submitted and signed by every party on the day of
/// `app`'s clock: the groupement's id.
async fn constituted_groupement(w: &World, app: &TestApp, members: &[usize]) -> String {
    let id = created_minimal_groupement(w, "constituted_groupement").await;
    for (n, i) in members.iter().enumerate() {
        let app = apply(&w.communes[*i], &id, &format!("2026-DCM-{n:03}")).await;
        let accept = api(&format!("/groupements/{id}/applications/{}/accept", app["id"].as_str().unwrap()));
        assert_eq!(send(w.coord.post(accept)).await.0, 200, "{id}");
    }
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    let conv_id = g["convention_id"].as_str().expect("a convention constitutive");
    sign_constitutive(w, app, conv_id, None, members).await;
    id
}

/// The text of the latest `kind` document of groupement `id`, generated now by its coordinator.
async fn document_text(w: &World, id: &str, kind: &str) -> String {
    odt_text(&generated(w, id, kind, "odt").await)
}

// The calendar of the presentation note (and the RC's launch) says what took place as it took
// place: before the launch, the planned launch as planned; once launched, the day it really was
// (not the planned one, never « à fixer »); once awarded, the notification.
backend_test!(the_calendar_prints_the_real_launch_and_notification_once_they_took_place);
async fn the_calendar_prints_the_real_launch_and_notification_once_they_took_place(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let id = constituted_groupement(&w, &signing, &[0]).await;
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    assert!(g.get("consultation_launched_at").is_none(), "{name}: not launched yet: {g}");
    let planned = "Lancement prévu de la consultation\nà fixer\n";
    for kind in ["presentation", "rc"] {
        let text = document_text(&w, &id, kind).await;
        assert!(text.contains(planned), "{name}: {kind} before the launch: {text}");
        assert!(!text.contains("Lancement de la consultation\n"), "{name}: {kind}: {text}");
    }
    // A planned date is printed as planned.
    sqlx::query("UPDATE groupements SET consultation_date = '2026-11-15' WHERE id = $1")
        .bind(&id)
        .execute(w.store.pool())
        .await
        .unwrap();
    let text = document_text(&w, &id, "presentation").await;
    assert!(text.contains("Lancement prévu de la consultation\n15 novembre 2026\n"), "{name}: {text}");

    let launching = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    launch_consultation(&w.coord.to(&launching), &id, name).await;
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    assert!(g["consultation_launched_at"].as_str().is_some_and(|at| at.starts_with("2026-11-30")), "{name}: {g}");
    let launched = "Lancement de la consultation\n30 novembre 2026\n";
    for kind in ["presentation", "rc"] {
        let text = document_text(&w, &id, kind).await;
        assert!(text.contains(launched), "{name}: {kind} once launched: {text}");
        assert!(!text.contains("Lancement prévu") && !text.contains("15 novembre 2026"), "{name}: {kind}: {text}");
    }

    let later = TestApp::over(&w.store).clock(clock_on(2027, 1, 15)).build().await;
    let (status, g) =
        send(w.coord.to(&later).post(api(&format!("/groupements/{id}/award"))).json(&award_notified_on("2027-01-15")))
            .await;
    assert_eq!(status, 200, "{name}: {g}");
    let text = document_text(&w, &id, "presentation").await;
    for needle in [launched, "Notification du marché\n15 janvier 2027\n"] {
        assert!(text.contains(needle), "{name}: the awarded note lacks « {needle} »: {text}");
    }
    assert!(!text.contains("Attribution prévue"), "{name}: {text}");
    // The console's page of the groupement says the same.
    crate::console::with_password(&w.store, "coord@sm94.fr").await;
    let session = crate::console::sign_in(&w.app, "coord@sm94.fr").await;
    let page = format!("/groupements/{}", g["reference"].as_str().unwrap());
    let text = crate::console::get(&w.app, &session, &page).await.text;
    for needle in ["consultation lancée le 30 novembre 2026", "marché notifié le 15 janvier 2027"] {
        assert!(text.contains(needle), "{name}: the console lacks « {needle} »: {text}");
    }
    assert!(!text.contains("prévue le"), "{name}: {text}");
}

/// An éditeur of the registry (SIREN from `prefix`) and a tenant of `org` whose vendor it is,
/// declared by the administrator `admin`: the éditeur.
async fn tenant_with_vendor(w: &World, admin: &Client, org: &Org, slug: &str, vendor_name: &str, prefix: &str) -> Org {
    let vendor = new_org(&w.store, OrgKind::Editeur, vendor_name, &luhn(prefix), None).await;
    let doc = json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
        "spec": {
            "organisation": org.id, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d",
            "vendor": format!("editeur:{}", vendor.code),
        }
    });
    let (status, body) = send(admin.post("/api/v1/tenants").json(&doc)).await;
    assert_eq!(status, 201, "{body}");
    vendor
}

/// The value of the field `label` of an HTML document (the `<dd>` after its `<dt>`).
fn html_field<'a>(html: &'a str, label: &str) -> &'a str {
    let at = html.find(&format!("<dt>{label}</dt><dd>")).unwrap_or_else(|| panic!("no field {label}: {html}"));
    let value = &html[at + format!("<dt>{label}</dt><dd>").len()..];
    &value[..value.find("</dd>").expect("a value")]
}

// Sub-processors are named down the Art. 28 chain a processor party opens: the API's list and
// the document say the same. A tripartite convention of a commune whose tenant has an éditeur
// names it in both; the convention constitutive of a groupement that commune joined organises a
// purchase, no ENT processing: none in the API, « aucun » in its annex.
backend_test!(the_api_and_the_document_of_a_convention_name_the_same_sub_processors);
async fn the_api_and_the_document_of_a_convention_name_the_same_sub_processors(db: crate::common::TestDb) {
    let name = db.name;
    let w = world(&db).await;
    let commune = &w.communes[0].0;
    let admin = w.admin().await;
    let vendor = tenant_with_vendor(&w, &admin, commune, "ent-commune", "ENT Éditions SAS", "81234567").await;

    let school = first_etablissement(&w, "commune_code = $1 AND degree = '1D'", commune).await;
    let body = common::fixtures::tripartite("academie:24", &commune.id, &school, "2027-01-01");
    let (status, tripartite) = send(admin.post("/api/v1/conventions").json(&body)).await;
    assert_eq!(status, 201, "{name}: {tripartite}");
    let listed: Vec<&str> =
        tripartite["subprocessors"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [vendor.id.as_str()], "{name}: {tripartite}");
    let doc = admin.get(api(&format!("/conventions/{}/document?format=html", tripartite["id"].as_str().unwrap())));
    let html = doc.send().await.text;
    assert!(
        html.contains(
            &french(&format!("Sous-traitants ultérieurs : l'éditeur de la solution, {},", vendor.name))
                .replace('\'', "&#x27;")
        ),
        "{name}: the tripartite's annex names its éditeur: {html}"
    );

    let id = created_minimal_groupement(&w, name).await;
    let conv_id = first_commune_accepted(&w, &id).await;
    let (_, conv) = send(w.coord.get(api(&format!("/conventions/{conv_id}")))).await;
    assert_eq!(conv["subprocessors"], json!([]), "{name}: the constitutive has none: {conv}");
    let html = w.coord.get(api(&format!("/conventions/{conv_id}/document?format=html"))).send().await.text;
    assert_eq!(html_field(&html, "Sous-traitants"), "aucun", "{name}");
    assert!(!html.contains(&vendor.name), "{name}: no éditeur named in the constitutive: {html}");
}

/// Two groupements sharing `w`'s first commune, whose tenant `ent-des-deux` is kept: the first
/// (that commune alone) awarded to « ENT Éditions SAS », notified on 15 January 2027 (last day
/// 14 January 2030); the second (with the second commune, whose `ent-du-second` is
/// `second_status`) awarded to « Autre Éditeur SAS » on 16 January 2027 (last day 15 January
/// 2030), both launched on 30 November 2026.
struct KeptByFirst {
    w: World,
    admin: Client,
    first: String,
    g1: Value,
    g2: Value,
}

async fn kept_by_first(db: &crate::common::TestDb, second_status: &str) -> KeptByFirst {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(db).await;
    let (both, only_second) = (&w.communes[0].0, &w.communes[1].0);
    let admin = w.admin().await;
    for (commune, slug) in [(both, "ent-des-deux"), (only_second, "ent-du-second")] {
        let doc = json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": { "organisation": commune.id, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" }
        });
        assert_eq!(send(admin.post("/api/v1/tenants").json(&doc)).await.0, 201, "{name}");
    }
    sqlx::query("UPDATE tenants SET status = $1 WHERE slug = 'ent-du-second'")
        .bind(second_status)
        .execute(w.store.pool())
        .await
        .unwrap();
    let first = constituted_groupement(&w, &signing, &[0]).await;
    let second = constituted_groupement(&w, &signing, &[0, 1]).await;
    let launching = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    for id in [&first, &second] {
        launch_consultation(&w.coord.to(&launching), id, name).await;
    }
    let later = TestApp::over(&w.store).clock(clock_on(2027, 1, 15)).build().await;
    let coord = w.coord.to(&later);
    let (status, g1) =
        send(coord.post(api(&format!("/groupements/{first}/award"))).json(&award_notified_on("2027-01-15"))).await;
    assert_eq!(status, 200, "{name}: {g1}");
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("ENT Éditions SAS"), "{name}");
    let mut body = award_body(&luhn(&format!("{}0001", luhn("82345678"))));
    body["vendor_name"] = json!("Autre Éditeur SAS");
    body["notified_on"] = json!("2027-01-16");
    let next_day = TestApp::over(&w.store).clock(clock_on(2027, 1, 16)).build().await;
    let (status, g2) = send(w.coord.to(&next_day).post(api(&format!("/groupements/{second}/award"))).json(&body)).await;
    assert_eq!(status, 200, "{name}: {g2}");
    KeptByFirst { w, admin, first, g1, g2 }
}

/// The name of the vendor of tenant `slug`, as `admin` reads it.
async fn vendor_of(admin: &Client, slug: &str) -> Option<String> {
    let (_, t) = send(admin.get(api(&format!("/tenants/{slug}")))).await;
    t["vendor"]["name"].as_str().map(str::to_string)
}

// A commune in two groupements: the later award changes no titulaire silently. Its tenant,
// whose vendor is the titulaire of the first groupement's accord-cadre still running, keeps it;
// the award names it in its result and its audit; a member bound to nothing else gets the new
// titulaire.
backend_test!(a_later_award_leaves_a_tenant_bound_to_a_running_accord_cadre_and_says_so);
async fn a_later_award_leaves_a_tenant_bound_to_a_running_accord_cadre_and_says_so(db: crate::common::TestDb) {
    let name = db.name;
    let KeptByFirst { w, admin, g1, g2, .. } = kept_by_first(&db, "requested").await;
    let kept = g2["award"]["kept_tenants"].as_array().cloned().unwrap_or_default();
    assert_eq!(kept.len(), 1, "{name}: {g2}");
    assert_eq!(
        (kept[0]["tenant"].as_str(), kept[0]["vendor"].as_str(), kept[0]["groupement"].as_str()),
        (Some("ent-des-deux"), Some("ENT Éditions SAS"), g1["reference"].as_str()),
        "{name}: {kept:?}"
    );
    let message = kept[0]["message"].as_str().unwrap();
    assert!(message.contains("garde son éditeur ENT Éditions SAS") && message.contains("14 janvier 2030"), "{message}");
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("ENT Éditions SAS"), "{name}: kept");
    assert_eq!(
        vendor_of(&admin, "ent-du-second").await.as_deref(),
        Some("Autre Éditeur SAS"),
        "{name}: bound to nothing else"
    );

    let summary = common::audit_summary(&w.store, "groupements.award", g2["id"].as_str().unwrap()).await;
    assert_eq!(summary["kept_tenants"][0]["tenant"], "ent-des-deux", "{name}: {summary}");
    assert_eq!(summary["tenants"], 1, "{name}: one tenant changed: {summary}");
    // The members' tenants are not the business of every reader of the award.
    let (_, seen) = send(w.outsider.get(api(&format!("/groupements/{}", g2["id"].as_str().unwrap())))).await;
    assert!(seen["award"].get("kept_tenants").is_none(), "{name}: {seen}");
    // The console's page of the groupement says it to its coordinator, not to another reader.
    let page = format!("/groupements/{}", g2["reference"].as_str().unwrap());
    for (email, shown) in
        [("coord@sm94.fr", true), (format!("mairie{}@test.fr", w.outsider_commune.code).as_str(), false)]
    {
        crate::console::with_password(&w.store, email).await;
        let session = crate::console::sign_in(&w.app, email).await;
        let text = crate::console::get(&w.app, &session, &page).await.text;
        assert_eq!(text.contains("id=\"ent-conserves\""), shown, "{name} {email}: {text}");
        if shown {
            assert!(text.contains("garde son éditeur ENT Éditions SAS"), "{name}: {text}");
        }
    }
    // The award's notice to the member that funds it names it (the hand-over's notice later
    // recalls that the award left it); the other member's, which funds no kept tenant, does not.
    let notices = common::queued_notices(&w.store, "groupement").await;
    let awarded_to = |i: usize| {
        let notice = award_notice_to(&notices, &w, i, Some(&g2["reference"]));
        entcp::notify::mailer::render("groupement", &notice.context).unwrap()
    };
    let (funding, other) = (awarded_to(0), awarded_to(1));
    for text in [&funding.text, &funding.html] {
        assert!(text.contains("laisse à leur éditeur actuel les ENT suivants"), "{name}: {text}");
        assert!(text.contains("garde son éditeur ENT Éditions SAS") && text.contains("ent-des-deux"), "{name}: {text}");
    }
    assert!(!other.text.contains("garde son éditeur") && !other.text.contains("laisse à leur éditeur"), "{name}");
}

/// Among `notices`, the award's notice to the mayor of `w`'s commune `i` (of the groupement
/// `reference` when given).
fn award_notice_to<'a>(
    notices: &'a [common::QueuedNotice],
    w: &World,
    i: usize,
    reference: Option<&Value>,
) -> &'a common::QueuedNotice {
    let mayor = format!("mairie{}@test.fr", w.communes[i].0.code);
    notices
        .iter()
        .find(|n| {
            n.context["event"] == "awarded"
                && reference.is_none_or(|reference| n.context["reference"] == *reference)
                && n.recipients == [mayor.as_str()]
        })
        .unwrap_or_else(|| panic!("the award's notice to commune {i}"))
}

/// Runs `groupements-handover` through the API at the clock of `app`, as `admin`: what it says.
async fn run_handover(admin: &Client, app: &TestApp) -> String {
    let (status, run) = send(admin.to(app).post("/api/v1/jobs/groupements-handover/run")).await;
    assert_eq!((status, run["outcome"].as_str()), (200, Some("success")), "{run}");
    run["message"].as_str().unwrap().to_string()
}

/// What a hand-over left: the `groupements.handover` audit summaries of groupement `id`, the
/// `processors` events of `ent-des-deux`, the `handover` notices (context, recipients) and the
/// kept entry of `id`'s award as its coordinator reads it, with the groupement's version.
async fn handover_traces(w: &World, id: &str) -> (Vec<Value>, i64, Vec<(Value, Vec<String>)>, Value, i64) {
    let audits = common::audit_summaries(&w.store, "groupements.handover", id).await;
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tenant_events e JOIN tenants t ON t.id = e.tenant_id \
         WHERE t.slug = 'ent-des-deux' AND e.kind = 'processors'",
    )
    .fetch_one(w.store.pool())
    .await
    .unwrap();
    let notices = common::queued_notices(&w.store, "groupement").await;
    let notices = notices.into_iter().filter(|n| n.context["event"] == "handover");
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    (
        audits,
        events,
        notices.map(|n| (n.context, n.recipients)).collect(),
        g["award"]["kept_tenants"][0].clone(),
        g["version"].as_i64().unwrap(),
    )
}

// The accord-cadre that kept a tenant from a later award reaches its term: the daily job hands
// the tenant over to the titulaire of the later accord-cadre, still running — its vendor, the
// award's entry (released, dated), the audit, the notice to the member's collectivité, the
// console — and a second run changes nothing.
backend_test!(the_job_hands_a_kept_tenant_over_once_the_accord_cadre_that_kept_it_ends);
async fn the_job_hands_a_kept_tenant_over_once_the_accord_cadre_that_kept_it_ends(db: crate::common::TestDb) {
    let name = db.name;
    let KeptByFirst { w, admin, g1, g2, .. } = kept_by_first(&db, "requested").await;
    let (second, second_ref) = (g2["id"].as_str().unwrap(), g2["reference"].as_str().unwrap());
    // On its last day, the first accord-cadre still binds: nothing moves.
    let last_day = TestApp::over(&w.store).clock(clock_on(2030, 1, 14)).build().await;
    let said = run_handover(&admin, &last_day).await;
    assert!(said.starts_with("0 ENT passé(s)"), "{name}: {said}");
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("ENT Éditions SAS"), "{name}");

    let after = TestApp::over(&w.store).clock(clock_on(2030, 1, 15)).build().await;
    let said = run_handover(&admin, &after).await;
    assert!(said.starts_with("1 ENT passé(s) au titulaire de l'accord-cadre en cours, 0 laissé(s)"), "{name}: {said}");
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("Autre Éditeur SAS"), "{name}: moved");
    let (audits, events, notices, kept, version) = handover_traces(&w, second).await;
    assert_eq!(audits.len(), 1, "{name}: {audits:?}");
    assert_eq!(
        (audits[0]["tenant"].as_str(), audits[0]["from"].as_str(), audits[0]["to"].as_str()),
        (Some("ent-des-deux"), Some("ENT Éditions SAS"), Some("Autre Éditeur SAS")),
        "{name}: {audits:?}"
    );
    assert_eq!(audits[0]["binding"], g1["reference"], "{name}");
    let released = &kept["released"];
    assert_eq!(
        (released["on"].as_str(), released["vendor"].as_str(), released["groupement"].as_str()),
        (Some("2030-01-15"), Some("Autre Éditeur SAS"), Some(second_ref)),
        "{name}: {kept}"
    );
    assert!(released.get("warnings").is_none(), "{name}: the socle alone, covered: {kept}");
    let message = released["message"].as_str().unwrap();
    let first_ref = g1["reference"].as_str().unwrap();
    for needle in [
        "est passé le 15 janvier 2030 à Autre Éditeur SAS".to_string(),
        format!(
            "l'accord-cadre du groupement {first_ref} qui le liait à ENT Éditions SAS s'est achevé le 14 janvier 2030"
        ),
    ] {
        assert!(message.contains(&needle), "{name}: « {needle} » in {message}");
    }
    let mayor = format!("mairie{}@test.fr", w.communes[0].0.code);
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    assert_eq!(notices[0].1, [mayor], "{name}: the member funding it, as the award told it");
    let mail = entcp::notify::mailer::render("groupement", &notices[0].0).unwrap();
    assert!(mail.subject.contains("ENT passé au titulaire"), "{name}: {}", mail.subject);
    assert!(mail.text.contains(message), "{name}: {}", mail.text);
    // The console's page of the award says it moved, and when.
    crate::console::with_password(&w.store, "coord@sm94.fr").await;
    let session = crate::console::sign_in(&w.app, "coord@sm94.fr").await;
    let text = crate::console::get(&w.app, &session, &format!("/groupements/{second_ref}")).await.text;
    assert!(text.contains("id=\"ent-transferes\"") && !text.contains("id=\"ent-conserves\""), "{name}: {text}");
    assert!(text.contains("est passé le 15 janvier 2030 à Autre Éditeur SAS"), "{name}: {text}");

    // Again, the next day: nothing changes.
    let next = TestApp::over(&w.store).clock(clock_on(2030, 1, 15)).build().await;
    let said = run_handover(&admin, &next).await;
    assert!(said.starts_with("0 ENT passé(s) au titulaire de l'accord-cadre en cours, 0 laissé(s)"), "{name}: {said}");
    let again = handover_traces(&w, second).await;
    assert_eq!((again.0.len(), again.1, again.2.len(), &again.3, again.4), (1, events, 1, &kept, version), "{name}");
}

// The accord-cadre that kept a tenant ends with no other accord-cadre running that covers it
// (the later one ended by its coordinator): the tenant keeps its vendor, the award says why, and
// a second run changes nothing.
backend_test!(a_kept_tenant_no_running_accord_cadre_covers_stays_with_its_vendor_and_the_award_says_why);
async fn a_kept_tenant_no_running_accord_cadre_covers_stays_with_its_vendor_and_the_award_says_why(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let KeptByFirst { w, admin, g2, .. } = kept_by_first(&db, "requested").await;
    let second = g2["id"].as_str().unwrap();
    let ending = TestApp::over(&w.store).clock(clock_on(2028, 3, 1)).build().await;
    for to in ["running", "ended"] {
        let body = json!({ "to": to, "reason": "intérêt général" });
        let (status, g) =
            send(w.coord.to(&ending).post(api(&format!("/groupements/{second}/transition"))).json(&body)).await;
        assert_eq!(status, 200, "{name}: {to}: {g}");
    }
    let after = TestApp::over(&w.store).clock(clock_on(2030, 1, 17)).build().await;
    let said = run_handover(&admin, &after).await;
    assert!(said.starts_with("0 ENT passé(s) au titulaire de l'accord-cadre en cours, 1 laissé(s)"), "{name}: {said}");
    assert!(said.contains("aucun accord-cadre en cours ne le couvre"), "{name}: {said}");
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("ENT Éditions SAS"), "{name}: stays");
    let (audits, events, notices, kept, version) = handover_traces(&w, second).await;
    assert_eq!((audits.len(), audits[0]["to"].clone()), (1, Value::Null), "{name}: {audits:?}");
    let released = &kept["released"];
    assert!(released.get("vendor").is_none(), "{name}: {kept}");
    assert_eq!(released["on"], "2030-01-17", "{name}: {kept}");
    assert!(released["message"].as_str().unwrap().contains("garde son éditeur ENT Éditions SAS"), "{name}: {kept}");
    let mail = entcp::notify::mailer::render("groupement", &notices[0].0).unwrap();
    assert!(mail.subject.contains("ENT laissé à son éditeur"), "{name}: {}", mail.subject);

    let said = run_handover(&admin, &after).await;
    assert!(said.starts_with("0 ENT passé(s) au titulaire de l'accord-cadre en cours, 0 laissé(s)"), "{name}: {said}");
    let again = handover_traces(&w, second).await;
    assert_eq!((again.0.len(), again.1, again.2.len(), &again.3, again.4), (1, events, 1, &kept, version), "{name}");
}

// The accord-cadre that kept a tenant is ended by its coordinator before its term: the tenant
// passes to the later titulaire at once, the entry saying it « a pris fin »; the job then has
// nothing left to do.
backend_test!(ending_the_accord_cadre_that_kept_a_tenant_hands_it_over_at_once);
async fn ending_the_accord_cadre_that_kept_a_tenant_hands_it_over_at_once(db: crate::common::TestDb) {
    let name = db.name;
    let KeptByFirst { w, admin, first, g2, .. } = kept_by_first(&db, "requested").await;
    let ending = TestApp::over(&w.store).clock(clock_on(2028, 3, 1)).build().await;
    for to in ["running", "ended"] {
        let body = json!({ "to": to, "reason": "intérêt général" });
        let (status, g) =
            send(w.coord.to(&ending).post(api(&format!("/groupements/{first}/transition"))).json(&body)).await;
        assert_eq!(status, 200, "{name}: {to}: {g}");
    }
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("Autre Éditeur SAS"), "{name}: at once");
    let (audits, events, _, kept, version) = handover_traces(&w, g2["id"].as_str().unwrap()).await;
    assert_eq!(audits.len(), 1, "{name}: {audits:?}");
    assert_eq!(kept["released"]["on"], "2028-03-01", "{name}: {kept}");
    assert!(kept["released"]["message"].as_str().unwrap().contains("ENT Éditions SAS a pris fin"), "{name}: {kept}");
    let said = run_handover(&admin, &ending).await;
    assert!(said.starts_with("0 ENT passé(s)"), "{name}: {said}");
    let again = handover_traces(&w, g2["id"].as_str().unwrap()).await;
    assert_eq!((again.0.len(), again.1, &again.3, again.4), (1, events, &kept, version), "{name}");
}

// A kept tenant that now runs an option the later accord-cadre does not cover (visioconférence,
// the groupement asking for the socle alone) is flagged at its hand-over as an award flags it:
// the release's `warnings`, the audit, the job's summary and the member's notice say it.
backend_test!(a_tenant_handed_over_with_services_outside_the_accord_cadre_is_flagged_as_at_award);
async fn a_tenant_handed_over_with_services_outside_the_accord_cadre_is_flagged_as_at_award(db: crate::common::TestDb) {
    let name = db.name;
    let KeptByFirst { w, admin, g2, .. } = kept_by_first(&db, "requested").await;
    sqlx::query("UPDATE tenants SET options = $1 WHERE slug = 'ent-des-deux'")
        .bind(r#"["visio"]"#)
        .execute(w.store.pool())
        .await
        .unwrap();
    let after = TestApp::over(&w.store).clock(clock_on(2030, 1, 15)).build().await;
    let said = run_handover(&admin, &after).await;
    let sentence = format!(
        "L'ENT « ent-des-deux » {} fournit un service que l'accord-cadre du groupement {} ne couvre pas (ni son \
         bouquet ni ses options, article 4 du CCTP) : Visioconférence. Le titulaire n'est pas tenu de le fournir : \
         retirez-le de cet ENT ou prévoyez-le par un autre contrat.",
        entcp::naming::de(&w.communes[0].0.name),
        g2["reference"].as_str().unwrap()
    );
    assert!(said.contains(&sentence), "{name}: the job's summary: {said}");
    let (audits, _, notices, kept, _) = handover_traces(&w, g2["id"].as_str().unwrap()).await;
    let warnings = &kept["released"]["warnings"];
    assert_eq!(
        (warnings[0]["tenant"].as_str(), warnings[0]["services"].clone(), warnings[0]["message"].as_str()),
        (Some("ent-des-deux"), json!(["Visioconférence"]), Some(sentence.as_str())),
        "{name}: {kept}"
    );
    assert_eq!(audits[0]["warnings"], *warnings, "{name}: {audits:?}");
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    let mail = entcp::notify::mailer::render("groupement", &notices[0].0).unwrap();
    for text in [&mail.text, &mail.html] {
        assert!(text.contains("Services que le marché ne couvre pas"), "{name}: {text}");
        assert!(text.contains("fournit un service que") && text.contains("Visioconférence"), "{name}: {text}");
    }
    assert!(mail.text.contains(&sentence), "{name}: {}", mail.text);
}

/// The `ended` notices queued for groupement `reference`: (context, recipients).
async fn ended_notices(w: &World, reference: &str) -> Vec<(Value, Vec<String>)> {
    let notices = common::queued_notices(&w.store, "groupement").await;
    notices
        .into_iter()
        .filter(|n| n.context["event"] == "ended" && n.context["reference"] == reference)
        .map(|n| (n.context, n.recipients))
        .collect()
}

/// The `groupements.transition` audit records of groupement `id` to `ended`: (actor, summary).
async fn endings_audited(w: &World, id: &str) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, summary FROM audit_log WHERE action = 'groupements.transition' AND target_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(w.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(actor, s)| (actor, serde_json::from_str::<Value>(&s).unwrap()))
        .filter(|(_, s)| s["to"] == "ended")
        .collect()
}

// The accord-cadre of an awarded groupement reaches its term: the daily job moves the groupement
// to `ended` (audited, its member told), then hands over at once the tenant it had kept from a
// later award; on its last day nothing moves, and a second run changes nothing.
backend_test!(the_job_ends_a_groupement_at_the_term_of_its_accord_cadre_and_tells_its_members);
async fn the_job_ends_a_groupement_at_the_term_of_its_accord_cadre_and_tells_its_members(db: crate::common::TestDb) {
    let name = db.name;
    let KeptByFirst { w, admin, first, g1, g2, .. } = kept_by_first(&db, "requested").await;
    let first_ref = g1["reference"].as_str().unwrap();
    let status = |app: &TestApp, id: &str| {
        let coord = w.coord.to(app);
        let url = api(&format!("/groupements/{id}"));
        async move { send(coord.get(url)).await.1["status"].as_str().unwrap().to_string() }
    };
    let last_day = TestApp::over(&w.store).clock(clock_on(2030, 1, 14)).build().await;
    let said = run_handover(&admin, &last_day).await;
    assert!(!said.contains("terminé"), "{name}: {said}");
    assert_eq!(status(&last_day, &first).await, "awarded", "{name}: its last day still runs");
    assert!(ended_notices(&w, first_ref).await.is_empty(), "{name}");

    let after = TestApp::over(&w.store).clock(clock_on(2030, 1, 15)).build().await;
    let said = run_handover(&admin, &after).await;
    assert!(
        said.contains(&format!(
            "1 groupement(s) terminé(s) au terme de leur accord-cadre : {first_ref} (échu le 14 janvier 2030)"
        )),
        "{name}: {said}"
    );
    assert_eq!(status(&after, &first).await, "ended", "{name}");
    assert_eq!(status(&after, g2["id"].as_str().unwrap()).await, "awarded", "{name}: the later one runs on");
    let audited = endings_audited(&w, &first).await;
    assert_eq!(audited.len(), 1, "{name}: {audited:?}");
    assert!(audited[0].0.contains("groupements-handover"), "{name}: {audited:?}");
    assert_eq!(
        (audited[0].1["from"].as_str(), audited[0].1["term"].as_str()),
        (Some("awarded"), Some("2030-01-14")),
        "{name}: {audited:?}"
    );
    let notices = ended_notices(&w, first_ref).await;
    let mayor = format!("mairie{}@test.fr", w.communes[0].0.code);
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    assert_eq!(notices[0].1, ["coord@sm94.fr".to_string(), mayor], "{name}: its coordinator and its member");
    let mail = entcp::notify::mailer::render("groupement", &notices[0].0).unwrap();
    assert!(mail.subject.contains("Groupement terminé"), "{name}: {}", mail.subject);
    assert!(
        mail.text.contains(&format!(
            "Le groupement de commandes {first_ref} « ENT 1er degré » est terminé : son accord-cadre avec \
             ENT Éditions SAS s'est achevé le 14 janvier 2030, à son terme."
        )),
        "{name}: {}",
        mail.text
    );
    // The hand-over ran on the ending, in the same run.
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("Autre Éditeur SAS"), "{name}");
    let version = send(w.coord.get(api(&format!("/groupements/{first}")))).await.1["version"].clone();

    let said = run_handover(&admin, &after).await;
    assert!(!said.contains("terminé"), "{name}: {said}");
    assert_eq!(endings_audited(&w, &first).await.len(), 1, "{name}: once");
    assert_eq!(ended_notices(&w, first_ref).await.len(), 1, "{name}: once");
    let again = send(w.coord.get(api(&format!("/groupements/{first}")))).await.1["version"].clone();
    assert_eq!(again, version, "{name}");
}

// Two passes of the ending at once (two replicas on one database): the groupement is ended once,
// audited once, its member told once. A pass that read the groupement as awarded and finds it
// ended once it holds its row (another replica, or its coordinator, ended it meanwhile) does
// nothing.
race_test!(two_passes_at_once_end_a_groupement_at_its_term_once);
async fn two_passes_at_once_end_a_groupement_at_its_term_once(db: crate::common::TestDb) {
    use entcp::groupements::ending::end_at_term;
    let name = db.name;
    let KeptByFirst { w, first, g1, .. } = kept_by_first(&db, "requested").await;
    let first_ref = g1["reference"].as_str().unwrap().to_string();
    let actor = entcp::identity::Actor::system(entcp::groupements::handover::JOB);
    let now = entcp::clock::Clock::now(&*clock_on(2030, 1, 15));

    // Held: the pass lists it awarded, then waits for its row, which is ended before it gets it.
    let mut tx = w.store.begin_write().await.unwrap();
    let lock = w.store.backend().for_update();
    let sql = format!("SELECT id FROM groupements WHERE id = $1{lock}");
    sqlx::query(&sql).bind(&first).fetch_all(&mut *tx).await.unwrap();
    let (store, held_actor) = (w.store.clone(), actor.clone());
    let waiting = tokio::spawn(async move { end_at_term(&store, &held_actor, now).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    sqlx::query("UPDATE groupements SET status = 'ended' WHERE id = $1").bind(&first).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let pass = waiting.await.unwrap().unwrap();
    assert!(pass.ended.is_empty() && pass.failed.is_empty(), "{name}: {pass:?}");
    assert!(endings_audited(&w, &first).await.is_empty(), "{name}: nothing recorded");
    assert!(ended_notices(&w, &first_ref).await.is_empty(), "{name}: nobody told twice");

    sqlx::query("UPDATE groupements SET status = 'awarded' WHERE id = $1")
        .bind(&first)
        .execute(w.store.pool())
        .await
        .unwrap();
    let pass = |store: Store, actor: entcp::identity::Actor| {
        tokio::spawn(async move { end_at_term(&store, &actor, now).await })
    };
    let (a, b) = (pass(w.store.clone(), actor.clone()), pass(w.store.clone(), actor));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert!(a.failed.is_empty() && b.failed.is_empty(), "{name}: {a:?} {b:?}");
    assert_eq!(a.ended.len() + b.ended.len(), 1, "{name}: {a:?} {b:?}");
    assert_eq!(endings_audited(&w, &first).await.len(), 1, "{name}");
    assert_eq!(ended_notices(&w, &first_ref).await.len(), 1, "{name}");
}

// A notified accord-cadre may be résilié before any bon de commande (art. L. 2195-3 du code de
// la commande publique): its coordinator ends an awarded groupement directly — audited, its
// member told, the tenant it kept from a later award handed over at once; a groupement still in
// consultation cannot be ended (409), and a member cannot end it (403).
backend_test!(a_coordinator_ends_an_awarded_groupement_directly_by_resiliation);
async fn a_coordinator_ends_an_awarded_groupement_directly_by_resiliation(db: crate::common::TestDb) {
    let name = db.name;
    let KeptByFirst { w, admin, first, g1, .. } = kept_by_first(&db, "requested").await;
    let first_ref = g1["reference"].as_str().unwrap();
    // The console offers it on the awarded groupement's page.
    crate::console::with_password(&w.store, "coord@sm94.fr").await;
    let session = crate::console::sign_in(&w.app, "coord@sm94.fr").await;
    let text = crate::console::get(&w.app, &session, &format!("/groupements/{first_ref}")).await.text;
    assert!(text.contains("Terminer le groupement") && text.contains("Passer en exécution"), "{name}: {text}");
    let ending = TestApp::over(&w.store).clock(clock_on(2028, 3, 1)).build().await;
    let url = api(&format!("/groupements/{first}/transition"));
    let (status, problem) = send(w.communes[0].1.to(&ending).post(&url).json(&json!({ "to": "ended" }))).await;
    assert_eq!(status, 403, "{name}: a member does not end it: {problem}");
    // A résiliation states its reason, which the members read: none, or blank, is refused.
    for body in [json!({ "to": "ended" }), json!({ "to": "ended", "reason": " \u{200b} " })] {
        let (status, problem) = send(w.coord.to(&ending).post(&url).json(&body)).await;
        assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("reason")), "{name}: {problem}");
    }
    assert!(endings_audited(&w, &first).await.is_empty(), "{name}: nothing ended");
    let reason = "motif d'intérêt général : reprise de l'ENT par la région";
    let body = json!({ "to": "ended", "reason": reason });
    let (status, g) = send(w.coord.to(&ending).post(&url).json(&body)).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("ended")), "{name}: {g}");
    let audited = endings_audited(&w, &first).await;
    assert_eq!(audited.len(), 1, "{name}: {audited:?}");
    assert_eq!(audited[0].1["from"], "awarded", "{name}: {audited:?}");
    assert_eq!(audited[0].1["reason"], reason, "{name}: {audited:?}");
    let notices = ended_notices(&w, first_ref).await;
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    assert_eq!(
        notices[0].1,
        ["coord@sm94.fr".to_string(), format!("mairie{}@test.fr", w.communes[0].0.code)],
        "{name}"
    );
    let mail = entcp::notify::mailer::render("groupement", &notices[0].0).unwrap();
    assert!(
        mail.text.contains(&format!(
            "est terminé : son coordonnateur, {}, a résilié le 1er mars 2028 son accord-cadre avec ENT Éditions SAS, \
             qui devait courir jusqu'au 14 janvier 2030, pour le motif suivant : {reason}.",
            w.coordinator.name
        )),
        "{name}: {}",
        mail.text
    );
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("Autre Éditeur SAS"), "{name}: at once");

    let other = constituted_groupement(&w, &ending, &[1]).await;
    launch_consultation(&w.coord.to(&ending), &other, name).await;
    let url = api(&format!("/groupements/{other}/transition"));
    let (status, problem) = send(w.coord.to(&ending).post(&url).json(&json!({ "to": "ended" }))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("ne peut pas passer à l'état « terminé »"),
        "{name}: {problem}"
    );
}

/// Grants `role` at `org` (an org key) to the existing user `email`, who then holds two roles.
async fn grant_also(store: &Store, email: &str, role: Role, org: &str) {
    let user: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(store.pool()).await.unwrap();
    let org = entcp::registry::resolve_org(store, org).await.unwrap();
    let binding = entcp::identity::UserRole::new(&user, role, Some(&org));
    entcp::identity::grant(store, &admin(), binding, t0()).await.unwrap();
}

// Who a groupement's end tells, each once: its coordinator's team, each member's representatives
// and DPO, and the DANs and DPOs whose scope holds an ENT a member funds (the commune's
// `ent-des-deux`: the académie de Créteil's). A person holding two of these roles gets one mail;
// the member of another groupement only, the DPO of a commune outside it, are not told.
backend_test!(a_groupements_end_tells_its_coordinators_members_dpos_and_the_dans_of_its_ent_once_each);
async fn a_groupements_end_tells_its_coordinators_members_dpos_and_the_dans_of_its_ent_once_each(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let KeptByFirst { w, first, g1, .. } = kept_by_first(&db, "requested").await;
    let (member, other) = (&w.communes[0].0, &w.communes[1].0);
    let mayor = format!("mairie{}@test.fr", member.code);
    let key = |o: &Org| format!("commune:{}", o.code);
    let coordinator = format!("syndicat_mixte:{}", w.coordinator.code);
    for (email, role, org) in [
        ("coord2@sm94.fr", Role::Coordinateur, coordinator.clone()),
        ("dpo@mairie.fr", Role::Dpo, key(member)),
        ("dan@ac-creteil.fr", Role::Dan, "academie:24".to_string()),
        ("dpo@ac-creteil.fr", Role::Dpo, "academie:24".to_string()),
        ("dpo@autre-membre.fr", Role::Dpo, key(other)),
        ("dpo@dehors.fr", Role::Dpo, key(&w.outsider_commune)),
    ] {
        token_for(&w.store, email, role, Some(&org)).await;
    }
    // The mayor is also the commune's DPO; the DAN also coordinates (two roles, one mail each).
    grant_also(&w.store, &mayor, Role::Dpo, &key(member)).await;
    grant_also(&w.store, "dan@ac-creteil.fr", Role::Coordinateur, &coordinator).await;
    let ending = TestApp::over(&w.store).clock(clock_on(2028, 3, 1)).build().await;
    let body = json!({ "to": "ended", "reason": "intérêt général" });
    let (status, g) =
        send(w.coord.to(&ending).post(api(&format!("/groupements/{first}/transition"))).json(&body)).await;
    assert_eq!(status, 200, "{name}: {g}");
    let notices = ended_notices(&w, g1["reference"].as_str().unwrap()).await;
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    let mut told = notices[0].1.clone();
    told.sort();
    let mut expected =
        vec!["coord2@sm94.fr", "coord@sm94.fr", "dan@ac-creteil.fr", "dpo@ac-creteil.fr", "dpo@mairie.fr", &mayor];
    expected.sort();
    assert_eq!(told, expected, "{name}");
}

/// Binds, beside `w`'s mayors, a DPO at `w`'s first and second communes, the DAN and the DPO of
/// the académie de Créteil (over every ENT of `w`'s communes) and a DPO of the outsider commune;
/// the first commune's mayor is also its DPO (two roles, one mail).
async fn dpos_and_dans(w: &World) {
    let key = |o: &Org| format!("commune:{}", o.code);
    for (email, role, org) in [
        ("dpo@mairie.fr", Role::Dpo, key(&w.communes[0].0)),
        ("dan@ac-creteil.fr", Role::Dan, "academie:24".to_string()),
        ("dpo@ac-creteil.fr", Role::Dpo, "academie:24".to_string()),
        ("dpo@autre-membre.fr", Role::Dpo, key(&w.communes[1].0)),
        ("dpo@dehors.fr", Role::Dpo, key(&w.outsider_commune)),
    ] {
        token_for(&w.store, email, role, Some(&org)).await;
    }
    let mayor = format!("mairie{}@test.fr", w.communes[0].0.code);
    grant_also(&w.store, &mayor, Role::Dpo, &key(&w.communes[0].0)).await;
}

// Who a hand-over tells, each once: the representatives and the DPO of the member funding the ENT
// (its processor changed: its register names the titulaire) and the DAN and the DPO over the ENT;
// not the DPO of the other member, which does not fund it, nor the outsider's.
backend_test!(a_hand_over_tells_the_members_representatives_and_dpo_and_the_dan_and_dpo_over_the_ent_once_each);
async fn a_hand_over_tells_the_members_representatives_and_dpo_and_the_dan_and_dpo_over_the_ent_once_each(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let KeptByFirst { w, admin, g2, .. } = kept_by_first(&db, "requested").await;
    dpos_and_dans(&w).await;
    let after = TestApp::over(&w.store).clock(clock_on(2030, 1, 15)).build().await;
    run_handover(&admin, &after).await;
    let (_, _, notices, _, _) = handover_traces(&w, g2["id"].as_str().unwrap()).await;
    assert_eq!(notices.len(), 1, "{name}: {notices:?}");
    let mayor = format!("mairie{}@test.fr", w.communes[0].0.code);
    let mut told = notices[0].1.clone();
    told.sort();
    let mut expected = vec!["dan@ac-creteil.fr", "dpo@ac-creteil.fr", "dpo@mairie.fr", mayor.as_str()];
    expected.sort();
    assert_eq!(told, expected, "{name}");
}

// A tenant two later awards kept for the same accord-cadre: at its hand-over, its member gets one
// notice naming both awards, each award's entry released and audited.
backend_test!(a_tenant_kept_by_two_awards_gets_one_notice_at_hand_over);
async fn a_tenant_kept_by_two_awards_gets_one_notice_at_hand_over(db: crate::common::TestDb) {
    let name = db.name;
    let KeptByFirst { w, admin, g2, .. } = kept_by_first(&db, "requested").await;
    let signing = TestApp::over(&w.store).clock(clock_on(2026, 10, 15)).build().await;
    let third = constituted_groupement(&w, &signing, &[0]).await;
    let launching = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    launch_consultation(&w.coord.to(&launching), &third, name).await;
    let mut body = award_body(&luhn(&format!("{}0001", luhn("83456789"))));
    body["vendor_name"] = json!("Troisième Éditeur SAS");
    body["notified_on"] = json!("2027-01-17");
    let day = TestApp::over(&w.store).clock(clock_on(2027, 1, 17)).build().await;
    let (status, g3) = send(w.coord.to(&day).post(api(&format!("/groupements/{third}/award"))).json(&body)).await;
    assert_eq!(status, 200, "{name}: {g3}");
    assert_eq!(g3["award"]["kept_tenants"][0]["tenant"], "ent-des-deux", "{name}: kept twice: {g3}");

    let after = TestApp::over(&w.store).clock(clock_on(2030, 1, 15)).build().await;
    run_handover(&admin, &after).await;
    assert_eq!(vendor_of(&admin, "ent-des-deux").await.as_deref(), Some("Troisième Éditeur SAS"), "{name}");
    for g in [&g2, &g3] {
        let (audits, _, _, kept, _) = handover_traces(&w, g["id"].as_str().unwrap()).await;
        assert_eq!(audits.len(), 1, "{name}: {audits:?}");
        assert_eq!(kept["released"]["vendor"], "Troisième Éditeur SAS", "{name}: {kept}");
    }
    let mayor = format!("mairie{}@test.fr", w.communes[0].0.code);
    let mails = common::queued_mails(&w.store, "groupement").await;
    let told: Vec<_> = mails.iter().filter(|m| m.context["event"] == "handover" && m.recipient() == mayor).collect();
    assert_eq!(
        told.len(),
        1,
        "{name}: one notice for one tenant: {:?}",
        told.iter().map(|m| &m.context).collect::<Vec<_>>()
    );
    let mail = entcp::notify::mailer::render("groupement", &told[0].context).unwrap();
    let (r2, r3) = (g2["reference"].as_str().unwrap(), g3["reference"].as_str().unwrap());
    assert!(mail.text.contains("est passé le 15 janvier 2030 à Troisième Éditeur SAS"), "{name}: {}", mail.text);
    assert!(
        mail.text.contains(&format!(
            "Les attributions des marchés des groupements de commandes {r2} « ENT 1er degré » et {r3} « ENT 1er \
             degré » avaient laissé cet ENT à son éditeur"
        )),
        "{name}: {}",
        mail.text
    );
}

// The planned dates follow the délais the award enforces at notification: a planned award
// earlier than the open call's 35 days and 11 days of standstill after the planned launch is
// refused on its field, citing the articles, at creation and when an edit moves a date; the
// first lawful day is taken; an edit that moves no date leaves a former plan alone.
backend_test!(a_planned_award_before_the_delais_from_the_planned_launch_is_refused);
async fn a_planned_award_before_the_delais_from_the_planned_launch_is_refused(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let mut body = minimal_groupement(&w, "2026-10-15");
    body["consultation_date"] = json!("2026-12-05");
    // The rule of the offers deadline (30 full days, 5 January at the earliest), then 11 days.
    body["award_planned_date"] = json!("2027-01-15");
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    assert_eq!(fields(&problem), ["award_planned_date"], "{name}: {problem}");
    let said = problem.to_string();
    for needle in [
        "l'accord-cadre ne pourra pas être notifié avant le 16 janvier 2027 (attribution prévue : 15 janvier 2027)",
        "dont le lancement est prévu le 5 décembre 2026",
        "laisse au moins 30 jours francs aux candidats",
        "article R. 2161-2",
        "article R. 2161-3, 2°",
        "article R. 2182-1",
        "16 jours si ce rejet ne leur est pas transmis par voie électronique",
    ] {
        assert!(said.contains(needle), "{name}: « {needle} » in {problem}");
    }
    body["award_planned_date"] = json!("2027-01-16");
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: the first lawful day: {g}");
    let id = g["id"].as_str().unwrap();

    let patch = |g: &Value, change: Value| {
        let version = g["version"].as_i64().unwrap();
        w.coord.patch(api(&format!("/groupements/{id}"))).header("if-match", format!("\"{version}\"")).json(&change)
    };
    let (status, problem) = send(patch(&g, json!({ "consultation_date": "2026-12-06" }))).await;
    assert_eq!(status, 422, "{name}: the launch moved later: {problem}");
    assert_eq!(fields(&problem), ["award_planned_date"], "{name}: {problem}");
    let (_, kept) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!(kept["consultation_date"], "2026-12-05", "{name}: nothing written");

    // A plan recorded before the rule is left alone by an edit that moves no date.
    sqlx::query("UPDATE groupements SET award_planned_date = '2026-12-20' WHERE id = $1")
        .bind(id)
        .execute(w.store.pool())
        .await
        .unwrap();
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    let (status, edited) = send(patch(&g, json!({ "title": "ENT 1er degré 2027-2031" }))).await;
    assert_eq!(status, 200, "{name}: {edited}");
}

// A suspended tenant is still to be served: the award switches it with the others, and its
// notice to the member says so — the titulaire serves it on resumption.
backend_test!(an_award_switches_a_suspended_tenant_and_its_notice_says_the_titulaire_serves_it_on_resumption);
async fn an_award_switches_a_suspended_tenant_and_its_notice_says_the_titulaire_serves_it_on_resumption(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let KeptByFirst { w, admin, g2, .. } = kept_by_first(&db, "suspended").await;
    assert_eq!(vendor_of(&admin, "ent-du-second").await.as_deref(), Some("Autre Éditeur SAS"), "{name}: switched");
    let notices = common::queued_notices(&w.store, "groupement").await;
    let awarded = award_notice_to(&notices, &w, 1, Some(&g2["reference"]));
    let mail = entcp::notify::mailer::render("groupement", &awarded.context).unwrap();
    let sentence = format!(
        "L'ENT « ent-du-second » {}, suspendu, passe lui aussi à Autre Éditeur SAS : c'est ce titulaire qui le \
         servira à sa remise en service.",
        entcp::naming::de(&w.communes[1].0.name)
    );
    assert!(mail.text.contains(&sentence), "{name}: « {sentence} » in {}", mail.text);
    // The first commune funds no suspended tenant: its notice says nothing of one.
    let other = award_notice_to(&notices, &w, 0, Some(&g2["reference"]));
    assert_eq!(other.context["suspended"], json!([]), "{name}");
    let summary = common::audit_summary(&w.store, "groupements.award", g2["id"].as_str().unwrap()).await;
    assert_eq!(summary["suspended_tenants"].as_array().map(Vec::len), Some(1), "{name}: {summary}");
}

backend_test!(an_application_decided_twice_and_its_notice_name_the_commune_with_its_elision);
/// Ablon-sur-Seine's application, accepted, is accepted again: the refusal reads « la
/// candidature d'Ablon-sur-Seine », and the e-mail of the acceptance « L'adhésion
/// d'Ablon-sur-Seine », never « de Ablon ».
async fn an_application_decided_twice_and_its_notice_name_the_commune_with_its_elision(db: crate::common::TestDb) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    assert_eq!(w.communes[0].0.name, "Ablon-sur-Seine", "{name}: the sample's first commune");
    let app = apply(&w.communes[0], &id, "2026-DCM-001").await;
    let accept = api(&format!("/groupements/{id}/applications/{}/accept", app["id"].as_str().unwrap()));
    assert_eq!(send(w.coord.post(&accept)).await.0, 200, "{name}");
    let (status, problem) = send(w.coord.post(&accept)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("la candidature d'Ablon-sur-Seine est "),
        "{name}: {problem}"
    );
    let notices = common::queued_notices(&w.store, "groupement").await;
    let accepted = notices.iter().find(|n| n.context["event"] == "accepted").expect("the acceptance's notice");
    let mail = entcp::notify::mailer::render("groupement", &accepted.context).unwrap();
    // Named as the documents name it, with its designation and article (domain review 42, F7).
    let said = "L'adhésion de la Commune d'Ablon-sur-Seine au groupement";
    assert!(mail.text.contains(said), "{name}: {}", mail.text);
    let in_html = "L'adhésion de la Commune d&#x27;Ablon-sur-Seine au groupement";
    assert!(mail.html.contains(in_html), "{name}: {}", mail.html);
    let applied = notices.iter().find(|n| n.context["event"] == "applied").expect("the application's notice");
    let mail = entcp::notify::mailer::render("groupement", &applied.context).unwrap();
    assert!(mail.text.contains("La Commune d'Ablon-sur-Seine demande à adhérer"), "{name}: {}", mail.text);
}

/// A [`constituted_groupement`] of `w`'s communes `members`, its consultation launched on the day
/// of `signing`'s clock and its award notified on 30 November 2026, 46 days after the launch, once
/// the open call's délais have run: its id and the awarded groupement.
async fn awarded_on_30_november(w: &World, signing: &TestApp, members: &[usize], name: &str) -> (String, Value) {
    let id = constituted_groupement(w, signing, members).await;
    launch_consultation(&w.coord.to(signing), &id, name).await;
    let notifying = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    let (status, g) = send(
        w.coord.to(&notifying).post(api(&format!("/groupements/{id}/award"))).json(&award_notified_on("2026-11-30")),
    )
    .await;
    assert_eq!(status, 200, "{name}: {g}");
    (id, g)
}

// An award switches only the tenants still to be served: a member's purged tenant (its data
// deleted) and its archived one (its data still with the old vendor) keep their vendor and gain
// no `processors` event (a reconciler may record its own passes meanwhile), the archived one named
// in the award's kept list; its active one switches.
backend_test!(an_award_leaves_archived_and_purged_tenants_with_the_vendor_that_held_their_data);
async fn an_award_leaves_archived_and_purged_tenants_with_the_vendor_that_held_their_data(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let admin = w.admin().await;
    let old = new_org(&w.store, OrgKind::Editeur, "Ancien Éditeur SAS", &luhn("83456789"), None).await;
    let tenants = [(0, "ent-actif", "active"), (1, "ent-archive", "archived"), (2, "ent-purge", "purged")];
    for (i, slug, status) in tenants {
        let doc = json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": {
                "organisation": w.communes[i].0.id, "hostname": format!("{slug}.ent.example.fr"),
                "bouquet": "socle-1d", "vendor": format!("editeur:{}", old.code),
            }
        });
        assert_eq!(send(admin.post("/api/v1/tenants").json(&doc)).await.0, 201, "{name}");
        sqlx::query("UPDATE tenants SET status = $1 WHERE slug = $2")
            .bind(status)
            .bind(slug)
            .execute(w.store.pool())
            .await
            .unwrap();
    }
    let events = |slug: &'static str| {
        let store = w.store.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM tenant_events e JOIN tenants t ON t.id = e.tenant_id \
                 WHERE t.slug = $1 AND e.kind = 'processors'",
            )
            .bind(slug)
            .fetch_one(store.pool())
            .await
            .unwrap();
            n
        }
    };
    let before = [events("ent-actif").await, events("ent-archive").await, events("ent-purge").await];
    let (_, g) = awarded_on_30_november(&w, &signing, &[0, 1, 2], name).await;

    let vendor_of = |slug: &'static str| {
        let admin = &admin;
        async move { send(admin.get(api(&format!("/tenants/{slug}")))).await.1["vendor"]["name"].clone() }
    };
    assert_eq!(vendor_of("ent-actif").await, "ENT Éditions SAS", "{name}: the active tenant switches");
    assert_eq!(vendor_of("ent-archive").await, "Ancien Éditeur SAS", "{name}: its data sits with the old vendor");
    assert_eq!(vendor_of("ent-purge").await, "Ancien Éditeur SAS", "{name}: a purged tenant never changes");
    assert_eq!(events("ent-actif").await, before[0] + 1, "{name}: a processors event");
    assert_eq!(events("ent-archive").await, before[1], "{name}: no event after archiving");
    assert_eq!(events("ent-purge").await, before[2], "{name}: no event after the purge");

    let kept = g["award"]["kept_tenants"].as_array().cloned().unwrap_or_default();
    assert_eq!(kept.len(), 1, "{name}: only the archived one is named: {g}");
    assert_eq!(
        (kept[0]["tenant"].as_str(), kept[0]["vendor"].as_str(), kept[0]["status"].as_str()),
        (Some("ent-archive"), Some("Ancien Éditeur SAS"), Some("archived")),
        "{name}: {kept:?}"
    );
    let message = kept[0]["message"].as_str().unwrap();
    assert!(
        message.contains("archivé, garde son éditeur Ancien Éditeur SAS, qui détient ses données"),
        "{name}: {message}"
    );
    assert!(kept[0].get("groupement").is_none(), "{name}: no other accord-cadre binds it: {kept:?}");
}

// A member's tenant that runs a service the accord-cadre does not cover (the visioconférence
// option, when the groupement asks for the socle-1d bouquet without options) is flagged at the
// award: a warning in the award's response naming the tenant and the service, and the sentence in
// that member's notice — not in the notice of a member whose tenant the marché covers.
backend_test!(an_award_flags_a_member_tenant_running_services_the_accord_cadre_does_not_cover);
async fn an_award_flags_a_member_tenant_running_services_the_accord_cadre_does_not_cover(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let admin = w.admin().await;
    for (i, slug, options) in [(0, "ent-visio", json!(["visio"])), (1, "ent-socle", json!([]))] {
        let doc = json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": {
                "organisation": w.communes[i].0.id, "hostname": format!("{slug}.ent.example.fr"),
                "bouquet": "socle-1d", "options": options,
            }
        });
        let (status, body) = send(admin.post("/api/v1/tenants").json(&doc)).await;
        assert_eq!(status, 201, "{name}: {body}");
    }
    let (_, g) = awarded_on_30_november(&w, &signing, &[0, 1], name).await;
    let warnings = g["award"]["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{name}: only the tenant with the option: {g}");
    assert_eq!(
        (warnings[0]["tenant"].as_str(), warnings[0]["services"].clone()),
        (Some("ent-visio"), json!(["Visioconférence"])),
        "{name}: {warnings:?}"
    );
    let sentence = format!(
        "L'ENT « ent-visio » {} fournit un service que l'accord-cadre du groupement {} ne couvre pas (ni son bouquet \
         ni ses options, article 4 du CCTP) : Visioconférence. Le titulaire n'est pas tenu de le fournir : retirez-le \
         de cet ENT ou prévoyez-le par un autre contrat.",
        entcp::naming::de(&w.communes[0].0.name),
        g["reference"].as_str().unwrap()
    );
    assert_eq!(warnings[0]["message"], sentence, "{name}");

    let notices = common::queued_notices(&w.store, "groupement").await;
    let awarded_to = |i: usize| {
        let notice = award_notice_to(&notices, &w, i, None);
        entcp::notify::mailer::render("groupement", &notice.context).unwrap()
    };
    let first = awarded_to(0);
    assert!(first.text.contains("Services que le marché ne couvre pas :"), "{name}: {}", first.text);
    assert!(first.text.contains(&sentence), "{name}: « {sentence} » in {}", first.text);
    assert!(first.html.contains("Services que le marché ne couvre pas"), "{name}: {}", first.html);
    let second = awarded_to(1);
    assert!(!second.text.contains("ne couvre pas"), "{name}: its tenant is covered: {}", second.text);
}

// Who an award tells: each member, its representatives and its DPO (the titulaire is its processor
// of record), once each, in its own notice linking its share; the DAN and the DPO over the
// members' ENT the award switched, which of those ENT passed to the titulaire (their processor),
// linking the groupement; not the outsider's DPO.
// A consultation declared sans suite: each member's DPO gets its own notice, as the award's
// (`award::notify_member_dpos`): no contract will be concluded under this consultation, nothing
// changes in its register, which the link opens; not the DPO of a commune that is no member, nor
// the académie's. The mayor who is also the member's DPO gets both messages.
backend_test!(a_consultation_declared_sans_suite_tells_each_members_dpo_that_nothing_changes_in_its_register);
async fn a_consultation_declared_sans_suite_tells_each_members_dpo_that_nothing_changes_in_its_register(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    dpos_and_dans(&w).await;
    let id = constituted_groupement(&w, &signing, &[0, 1]).await;
    let coord = w.coord.to(&signing);
    launch_consultation(&coord, &id, name).await;
    let (_, g) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    let reference = g["reference"].as_str().unwrap().to_string();
    let version = format!("\"{}\"", g["version"]);
    let body = json!({ "motif": "besoin_redefini", "justification": "Le besoin des membres est redéfini." });
    let declare = coord.post(api(&format!("/groupements/{id}/sans-suite"))).header("if-match", &version);
    let (status, closed) = send(declare.json(&body)).await;
    assert_eq!(status, 200, "{name}: {closed}");
    let notices = common::queued_notices(&w.store, "groupement").await;
    let ours = |event: &str| -> Vec<&common::QueuedNotice> {
        let of =
            |n: &&common::QueuedNotice| n.context["event"] == event && n.context["reference"] == reference.as_str();
        notices.iter().filter(of).collect()
    };
    let theirs = ours("sans_suite_processor");
    for (i, dpo) in [(0, "dpo@mairie.fr"), (1, "dpo@autre-membre.fr")] {
        let mine: Vec<_> = theirs.iter().filter(|n| n.recipients.contains(&dpo.to_string())).collect();
        assert_eq!(mine.len(), 1, "{name}: {dpo}: one notice");
        let member = &w.communes[i].0;
        assert_eq!(mine[0].context["page"], format!("/rgpd/{}", member.id), "{name}: {dpo}: its register");
        let mail = entcp::notify::mailer::render("groupement", &mine[0].context).unwrap();
        assert_eq!(
            mail.subject,
            format!("Consultation sans suite : aucun nouveau sous-traitant : groupement {reference}"),
            "{name}"
        );
        let commune = format!("la Commune {}", entcp::naming::de(&entcp::naming::display_name(&member.name)));
        for said in [
            format!("La consultation du groupement de commandes {reference} « "),
            "a été déclarée sans suite le 15 octobre 2026 par son coordonnateur".to_string(),
            format!(
                "Aucun contrat ne sera conclu au titre de cette consultation : aucun titulaire ne devient \
                 sous-traitant ultérieur pour les ENT financés par {commune}, et rien ne change dans le registre \
                 des activités de traitement de {commune}."
            ),
            format!("page /rgpd/{}", member.id),
        ] {
            assert!(mail.text.contains(&said), "{name}: {dpo}: « {said} » not in {}", mail.text);
        }
    }
    for outside in ["dpo@dehors.fr", "dpo@ac-creteil.fr", "dan@ac-creteil.fr"] {
        let declared = [ours("sans_suite"), ours("sans_suite_processor")].concat();
        let told = declared.iter().any(|n| n.recipients.contains(&outside.to_string()));
        assert!(!told, "{name}: {outside} is told nothing");
    }
    let mayor = format!("mairie{}@test.fr", w.communes[0].0.code);
    let mut events: Vec<&str> = ["sans_suite", "sans_suite_processor"]
        .into_iter()
        .filter(|e| ours(e).iter().any(|n| n.recipients.contains(&mayor)))
        .collect();
    events.sort();
    assert_eq!(events, ["sans_suite", "sans_suite_processor"], "{name}: the mayor, also DPO");
}

backend_test!(an_award_tells_each_members_representatives_and_dpo_and_the_dan_and_dpo_over_the_ent_it_switched);
async fn an_award_tells_each_members_representatives_and_dpo_and_the_dan_and_dpo_over_the_ent_it_switched(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let admin = w.admin().await;
    for (i, slug) in [(0, "ent-premier"), (1, "ent-second")] {
        let doc = json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": { "organisation": w.communes[i].0.id, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" }
        });
        assert_eq!(send(admin.post("/api/v1/tenants").json(&doc)).await.0, 201, "{name}");
    }
    dpos_and_dans(&w).await;
    let id = constituted_groupement(&w, &signing, &[0, 1]).await;
    launch_consultation(&w.coord.to(&signing), &id, name).await;
    let notifying = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    let ccap = json!({ "kind": "ccap" });
    let (status, ccap) =
        send(w.coord.to(&notifying).post(api(&format!("/groupements/{id}/documents"))).json(&ccap)).await;
    assert!(status == 200 || status == 201, "{name}: {ccap}");
    let (status, g) = send(
        w.coord.to(&notifying).post(api(&format!("/groupements/{id}/award"))).json(&award_notified_on("2026-11-30")),
    )
    .await;
    assert_eq!(status, 200, "{name}: {g}");
    let notices = common::queued_notices(&w.store, "groupement").await;
    let awarded: Vec<_> = notices.iter().filter(|n| n.context["event"] == "awarded").collect();
    let to = |i: usize| -> Vec<String> {
        let mut to: Vec<String> = awarded
            .iter()
            .find(|n| n.recipients.contains(&format!("mairie{}@test.fr", w.communes[i].0.code)))
            .map(|n| n.recipients.clone())
            .unwrap_or_default();
        to.sort();
        to
    };
    let mayors: Vec<String> = (0..2).map(|i| format!("mairie{}@test.fr", w.communes[i].0.code)).collect();
    assert_eq!(to(0), vec![mayors[0].clone()], "{name}: the first member's representative, once");
    assert_eq!(to(1), vec![mayors[1].clone()], "{name}");
    // The member's notice says its contract: notified when, until when, the lot, its own orders.
    let (_, shares) = send(w.coord.get(api(&format!("/groupements/{id}/shares")))).await;
    let own = shares["shares"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["member"]["id"] == w.communes[0].0.id.as_str())
        .and_then(|s| s["own_orders_ht_cents"].as_i64())
        .unwrap();
    let first = awarded.iter().find(|n| n.recipients.contains(&mayors[0])).unwrap();
    let mail = entcp::notify::mailer::render("groupement", &first.context).unwrap();
    for said in [
        "L'accord-cadre a été notifié le 30 novembre 2026 et prend fin le ".to_string(),
        "Lot unique : ".to_string(),
        format!("s'élèvent à {} HT : vous émettez vous-même vos bons de commande", euros_fr(own)),
    ] {
        assert!(mail.text.contains(&said), "{name}: « {said} » in {}", mail.text);
    }
    // Domain review 39, G5: the member's DPO gets its own message, on its new sub-processor and
    // the Art. 28 contract, linking that contract's page in its register (the quote-part, a
    // buyer's page, answers 403 to a DPO).
    for (i, dpo) in [(0, "dpo@mairie.fr"), (1, "dpo@autre-membre.fr")] {
        let theirs: Vec<_> = notices.iter().filter(|n| n.recipients.contains(&dpo.to_string())).collect();
        assert_eq!(theirs.len(), 1, "{name}: {dpo}: one notice");
        // The mayor also DPO: both messages, each once.
        let mayor = notices.iter().filter(|n| n.recipients.contains(&mayors[i]));
        let mut events: Vec<_> = mayor
            .map(|n| n.context["event"].as_str().unwrap_or_default())
            .filter(|e| e.starts_with("awarded"))
            .collect();
        events.sort();
        let expected = if i == 0 { vec!["awarded", "awarded_processor"] } else { vec!["awarded"] };
        assert_eq!(events, expected, "{name}: {}", mayors[i]);
        assert_eq!(theirs[0].context["event"], "awarded_processor", "{name}: {dpo}");
        let member = &w.communes[i].0.id;
        let page = theirs[0].context["page"].as_str().unwrap_or_default();
        assert!(page.starts_with(&format!("/rgpd/{member}/contrats/")), "{name}: {dpo}: {page}");
        let contract = page.rsplit('/').next().unwrap();
        let sql = "SELECT id FROM processor_contracts WHERE client_org_id = $1";
        let known = common::texts(&w.store, sql, &[member]).await;
        assert_eq!(known, vec![contract.to_string()], "{name}: {dpo}: the contract the award recorded");
        let (version, sha) = (&ccap["version"], ccap["sha256"].as_str().unwrap_or_default());
        let mail = entcp::notify::mailer::render("groupement", &theirs[0].context).unwrap();
        let commune = entcp::naming::display_name(&w.communes[i].0.name);
        for said in [
            format!(
                "Pour les ENT financés par la Commune {}, ENT Éditions SAS devient son sous-traitant ultérieur",
                entcp::naming::de(&commune)
            ),
            format!("Le contrat de l'article 28 est l'article 9 du CCAP du marché (version {version}, SHA-256 {sha})"),
        ] {
            assert!(mail.text.contains(&said), "{name}: {dpo}: « {said} » not in {}", mail.text);
        }
        assert!(!mail.text.contains("quote-part"), "{name}: {dpo}: {}", mail.text);
    }
    let reference = g["reference"].as_str().unwrap();
    for (over, page) in
        [("dan@ac-creteil.fr", format!("/groupements/{reference}")), ("dpo@ac-creteil.fr", "/rgpd".into())]
    {
        let theirs: Vec<_> = awarded.iter().filter(|n| n.recipients.contains(&over.to_string())).collect();
        assert_eq!(theirs[0].context["page"], page.as_str(), "{name}: {over}: a page they open");
    }
    for over in ["dan@ac-creteil.fr", "dpo@ac-creteil.fr"] {
        let theirs: Vec<_> = awarded.iter().filter(|n| n.recipients.contains(&over.to_string())).collect();
        let mails: usize = theirs.iter().map(|n| n.recipients.iter().filter(|r| *r == over).count()).sum();
        assert_eq!(mails, 1, "{name}: {over}: one mail");
        let mail = entcp::notify::mailer::render("groupement", &theirs[0].context).unwrap();
        for slug in ["ent-premier", "ent-second"] {
            assert!(mail.text.contains(&format!("- ENT « {slug} »")), "{name}: {over}: {}", mail.text);
        }
        assert!(
            mail.text.contains("est attribué à ENT Éditions SAS, qui devient l'éditeur des ENT suivants")
                && !mail.text.contains("Votre quote-part"),
            "{name}: {}",
            mail.text
        );
    }
    assert!(!awarded.iter().any(|n| n.recipients.contains(&"dpo@dehors.fr".to_string())), "{name}");
}

// A member's ENT runs the visioconférence the marché (socle-1d, no option) does not cover, and the
// titulaire already was its éditeur (nothing switches): the award's warning reaches the controller's
// side too — the DAN and the DPO over that ENT get it in one notice each, with the ENT of the other
// member that did switch, and are told that no Art. 28 clause of the marché covers those services;
// the members' people are told once. From the award on, the registers say so: the DSDEN's fiche of
// the visioconférence has the éditeur under no contract for it, and alerts; the portail's names the
// marché; the éditeur's Art. 30(2) entry lists the visioconférence under no contract.
backend_test!(an_award_leaving_a_service_outside_the_market_tells_the_controller_and_the_registers_say_so);
async fn an_award_leaving_a_service_outside_the_market_tells_the_controller_and_the_registers_say_so(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let admin = w.admin().await;
    let titulaire = new_org(&w.store, OrgKind::Editeur, "ENT Éditions SAS", &luhn("81234567"), None).await;
    for (i, slug, vendor) in [(0, "ent-visio", Some(&titulaire)), (1, "ent-visio-autre", None)] {
        let mut doc = json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": {
                "organisation": w.communes[i].0.id, "hostname": format!("{slug}.ent.example.fr"),
                "bouquet": "socle-1d", "options": ["visio"],
            }
        });
        if let Some(vendor) = vendor {
            doc["spec"]["vendor"] = json!(format!("editeur:{}", vendor.code));
        }
        let (status, body) = send(admin.post("/api/v1/tenants").json(&doc)).await;
        assert_eq!(status, 201, "{name}: {body}");
    }
    dpos_and_dans(&w).await;
    let convention = ent_testkit::conventions::ActiveConvention {
        id: "bipartite-visio",
        model_id: "bipartite-commune",
        model_version: 3,
        start: "2026-09-01",
        end: "2029-08-31",
        parties: vec![
            ("academie", entcp::registry::resolve_org(&w.store, "academie:24").await.unwrap().id),
            ("collectivite", w.communes[0].0.id.clone()),
        ],
        schools: vec![],
    };
    ent_testkit::conventions::insert_active(w.store.pool(), &convention).await.unwrap();
    let (_, g) = awarded_on_30_november(&w, &signing, &[0, 1], name).await;
    let reference = g["reference"].as_str().unwrap().to_string();
    let sentences: Vec<String> =
        g["award"]["warnings"].as_array().unwrap().iter().map(|w| w["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(sentences.len(), 2, "{name}: {g}");

    let notices = common::queued_notices(&w.store, "groupement").await;
    let awarded: Vec<_> = notices.iter().filter(|n| n.context["event"] == "awarded").collect();
    for over in ["dan@ac-creteil.fr", "dpo@ac-creteil.fr"] {
        let theirs: Vec<_> = awarded.iter().filter(|n| n.recipients.contains(&over.to_string())).collect();
        assert_eq!(theirs.len(), 1, "{name}: {over}: one notice");
        let mail = entcp::notify::mailer::render("groupement", &theirs[0].context).unwrap();
        for sentence in &sentences {
            assert!(mail.text.contains(&format!("- {sentence}")), "{name}: {over}: « {sentence} » in {}", mail.text);
        }
        for needle in [
            "Services que le marché ne couvre pas :",
            "- ENT « ent-visio-autre »",
            "ne s'appliquent pas à ces services : tant qu'un autre contrat ne les couvre pas, leur traitement par le \
             titulaire n'est encadré par aucun contrat de sous-traitance.",
        ] {
            assert!(mail.text.contains(needle), "{name}: {over}: « {needle} » in {}", mail.text);
        }
        assert!(!mail.text.contains("- ENT « ent-visio »"), "{name}: it kept its éditeur: {}", mail.text);
        assert!(!mail.text.contains("Votre quote-part"), "{name}: {}", mail.text);
        assert!(mail.html.contains("Services que le marché ne couvre pas"), "{name}: {}", mail.html);
    }
    // Domain review 40, G2: each member's DPO (its processor engages the titulaire) is told which of
    // its ENT's services the marché does not cover, and that its Art. 28 clauses do not apply to
    // them, as the controller's side is; G3: that the controller's register cites the contract only
    // where a convention in force makes the member its processor (the first commune's bipartite).
    let warnings = g["award"]["warnings"].as_array().unwrap();
    let sentence_of = |slug: &str| warnings.iter().find(|w| w["tenant"] == slug).unwrap()["message"].clone();
    for (i, dpo, slug, other) in [
        (0, "dpo@mairie.fr", "ent-visio", "ent-visio-autre"),
        (1, "dpo@autre-membre.fr", "ent-visio-autre", "ent-visio"),
    ] {
        let theirs: Vec<_> = notices
            .iter()
            .filter(|n| n.context["event"] == "awarded_processor" && n.recipients.contains(&dpo.to_string()))
            .collect();
        assert_eq!(theirs.len(), 1, "{name}: {dpo}");
        let mail = entcp::notify::mailer::render("groupement", &theirs[0].context).unwrap();
        let (own, others) = (sentence_of(slug), sentence_of(other));
        let own = own.as_str().unwrap();
        for needle in [
            "Services que le marché ne couvre pas :".to_string(),
            format!("- {own}"),
            "Les clauses de l'article 28 du RGPD que porte le marché (article 9 du CCAP) ne s'appliquent pas à ces \
             services : tant qu'un autre contrat ne les couvre pas, leur traitement par le titulaire n'est encadré \
             par aucun contrat de sous-traitance."
                .to_string(),
        ] {
            assert!(mail.text.contains(&needle), "{name}: {dpo}: « {needle} » in {}", mail.text);
        }
        assert!(!mail.text.contains(others.as_str().unwrap()), "{name}: {dpo}: the other member's: {}", mail.text);
        assert!(mail.html.contains("ne s'appliquent pas à ces services"), "{name}: {dpo}: {}", mail.html);
        let commune = entcp::naming::display_name(&w.communes[i].0.name);
        let unbound = format!(
            "Aucune convention en vigueur ne lie encore la Commune {} au responsable de traitement : le registre de \
             celui-ci citera ce contrat dès qu'une convention en vigueur les liera.",
            entcp::naming::de(&commune)
        );
        let cited = "que le registre du responsable de traitement cite aussi.";
        match i {
            0 => assert!(mail.text.contains(cited) && !mail.text.contains(&unbound), "{name}: {dpo}: {}", mail.text),
            _ => assert!(mail.text.contains(&unbound) && !mail.text.contains(cited), "{name}: {dpo}: {}", mail.text),
        }
    }
    for member_person in ["dpo@mairie.fr", "dpo@autre-membre.fr"] {
        let award_notices =
            notices.iter().filter(|n| n.context["event"] == "awarded" || n.context["event"] == "awarded_processor");
        let told: usize = award_notices.map(|n| n.recipients.iter().filter(|r| *r == member_person).count()).sum();
        assert_eq!(told, 1, "{name}: {member_person}: once");
    }

    // The registers, once the marché is in force; the first commune's écoles under its bipartite
    // (in force since before the award).
    common::execute(&w.store, "UPDATE tenants SET status = 'active'", &[]).await;
    let after = TestApp::over(&w.store).clock(clock_on(2026, 12, 1)).build().await;
    let dsden = common::texts(&w.store, "SELECT code FROM orgs WHERE kind = 'dsden' ORDER BY code", &[]).await;
    let (status, register) =
        send(admin.to(&after).get(format!("/api/v1/rgpd/registers/dsden:{}", dsden[0]).as_str())).await;
    assert_eq!(status, 200, "{name}: {register}");
    let commune = entcp::naming::display_name(&w.communes[0].0.name);
    let vendor_link = |service: &str| -> Value {
        let entry = register["entries"].as_array().unwrap().iter().find(|e| e["service"] == service).unwrap();
        let links = entry["processors"].as_array().unwrap();
        let link = links.iter().find(|l| l["role"] == "éditeur" && l["acts_for"] == commune.as_str());
        link.unwrap_or_else(|| panic!("{name}: the éditeur for {commune}: {entry}")).clone()
    };
    let uncovered = format!("le marché {reference} ne couvre pas le service « Visioconférence »");
    let visio = vendor_link("visio");
    assert_eq!((&visio["contract"], &visio["uncovered"]), (&Value::Null, &json!(uncovered)), "{name}: {visio}");
    assert_eq!(vendor_link("portail")["contract"]["reference"], json!(reference), "{name}");
    let fiche = register["entries"].as_array().unwrap().iter().find(|e| e["service"] == "visio").unwrap();
    let alert = format!(
        "ENT Éditions SAS (éditeur) : aucun contrat comportant les clauses de l'article 28 pour ce service ({uncovered})"
    );
    assert!(fiche["warnings"].as_array().unwrap().contains(&json!(alert)), "{name}: {fiche}");

    let (status, register) =
        send(admin.to(&after).get(format!("/api/v1/rgpd/registers/editeur:{}", titulaire.code).as_str())).await;
    assert_eq!(status, 200, "{name}: {register}");
    let entries = register["processor_entries"].as_array().unwrap();
    let for_dsden = entries.iter().find(|e| e["controller"]["kind"] == "dsden").expect("its entry for the DSDEN");
    assert_eq!(
        for_dsden["uncovered"],
        json!([format!("Visioconférence : le marché {reference} ne couvre pas ce service")]),
        "{name}: {for_dsden}"
    );
    let warnings = for_dsden["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().ends_with(&format!(
            "pour le service « Visioconférence » : le marché {reference} ne couvre pas ce service"
        ))),
        "{name}: {warnings:?}"
    );
}

// The CCAP grants the avance its article 7 organises (per bon de commande above 50 000 € HT and two
// months, R. 2191-3 and R. 2191-16; its rate, R. 2191-7; its repayment, R. 2191-11 and R. 2191-19)
// and the AE's avance box refers to it; the CCAP's later articles are renumbered and the CCTP
// refers to them. The CCTP justifies its single lot by the services of the bouquet it asks for
// (art. L. 2113-11, 1° and 2°) and states the « cloud au centre » requirement as the buyer's own;
// the AE lists the contract's pieces (the CCAG-TIC, the mémoire technique) as the CCAP's
// article 3 does; the presentation note names no internal model.
backend_test!(the_pieces_state_the_avance_their_single_lot_and_their_contract_pieces_consistently);
async fn the_pieces_state_the_avance_their_single_lot_and_their_contract_pieces_consistently(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let w = world(&db).await;
    let (id, _) = groupement_of(&w, "Fourniture d'un ENT pour les écoles des membres", "2026-09-30", &[0]).await;
    let flat = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let ccap = flat(document_text(&w, &id, "ccap").await);
    for needle in [
        "Article 7 – Avance",
        "une avance est accordée au titulaire pour chaque bon de commande d'un montant supérieur à 50 000 euros hors \
         taxes et d'une durée d'exécution supérieure à deux mois (articles R. 2191-3 et R. 2191-16 du code de la \
         commande publique), sauf s'il a renoncé à son bénéfice dans l'acte d'engagement",
        "Le montant de l'avance est égal à 10 % du montant toutes taxes comprises du bon de commande",
        "(article R. 2191-7 du code de la commande publique)",
        "petite ou moyenne entreprise",
        "par précompte, sur les sommes dues au titulaire au titre du même bon de commande (article R. 2191-11",
        "atteint 65 % de son montant toutes taxes comprises et doit être terminé lorsque ce montant atteint 80 % \
         (article R. 2191-19 du même code)",
        "Article 8 – Réception et admission",
        "Article 9 – Protection des données",
        "Article 10 – Pénalités",
        "Article 11 – Dérogations au CCAG-TIC",
        "approuvé par l'arrêté du 30 mars 2021 ; le mémoire technique du titulaire",
        "décroissante : l'acte d'engagement (AE) et ses annexes ; le présent cahier des clauses administratives \
         particulières (CCAP) ; le cahier des clauses techniques particulières (CCTP) et son annexe, ainsi que le \
         schéma directeur des espaces numériques de travail (SDET) dans la version que référence l'article 5 du CCTP ;",
    ] {
        assert!(ccap.contains(needle), "{name}: the CCAP lacks « {needle} »: {ccap}");
    }
    let ae = flat(document_text(&w, &id, "ae").await);
    for needle in [
        "ne renonce pas au bénéfice de l'avance, dans les conditions de l'article 7 du CCAP",
        // Domain review 40, G5: the pieces of the CCAP's article 3, the AE itself and the SDET included.
        "pièces constitutives de l'accord-cadre énumérées à l'article 3 du CCAP (le présent acte d'engagement (AE) et \
         ses annexes ; le cahier des clauses administratives particulières (CCAP) ; le cahier des clauses techniques \
         particulières (CCTP) et son annexe, ainsi que le schéma directeur des espaces numériques de travail (SDET) \
         dans la version que référence l'article 5 du CCTP ; le bordereau des prix unitaires et le détail quantitatif \
         estimatif (BPU/DQE) ; le cahier des clauses administratives générales",
        "(CCAG-TIC), approuvé par l'arrêté du 30 mars 2021 ; le mémoire technique du candidat)",
        "ne lie le candidat que si",
    ] {
        assert!(ae.contains(needle), "{name}: the AE lacks « {needle} »: {ae}");
    }
    assert!(!ae.contains("prévues par le code de la commande publique"), "{name}: {ae}");

    let cctp = flat(document_text(&w, &id, "cctp").await);
    let catalog = entcp::catalog::Catalog::load(None).unwrap();
    let asked: Vec<String> =
        catalog.resolve("socle-1d", &[]).unwrap().iter().map(|s| entcp::naming::in_sentence(&s.name)).collect();
    let justified = format!(
        "en application de l'article L. 2113-11, 1° et 2°, de ce code : les services de l'espace numérique de travail \
         demandé ({}) partagent",
        asked.join(", ")
    );
    for needle in [
        justified.as_str(),
        "plus coûteuse (2°), et le coordonnateur n'est pas en mesure d'assurer par lui-même les missions \
         d'organisation, de pilotage et de coordination",
        "S'inspirant de la doctrine d'utilisation de l'informatique en nuage par l'État « cloud au centre »",
        "qui ne lie que les administrations de l'État, l'acheteur exige",
        "par l'article 9 du cahier des clauses administratives particulières (CCAP), qui tient lieu de contrat",
        "sont fixées par l'article 10 du cahier des clauses administratives particulières (CCAP)",
        // Domain review 38, G6: the art. 28 rights are the controllers', not only the coordinator's.
        "soumis à l'autorisation écrite préalable des responsables de traitement, transmise par les membres",
        "Le responsable de traitement, chaque membre pour les écoles qu'il équipe et le coordonnateur au titre de \
         l'exécution du marché, ou un auditeur qu'ils mandatent, peuvent auditer",
        "cette limite ne s'applique pas à un audit qui suit un incident de sécurité ou une violation de données",
    ] {
        assert!(cctp.contains(needle), "{name}: the CCTP lacks « {needle} »: {cctp}");
    }
    for gone in [
        "cahier de textes, vie scolaire",
        "L. 2113-11, 2° de ce code",
        "Conformément à la doctrine",
        "accord préalable du coordonnateur",
        "Le coordonnateur, ou un auditeur qu'il mandate",
    ] {
        assert!(!cctp.contains(gone), "{name}: the CCTP still says « {gone} »: {cctp}");
    }
    let note = flat(document_text(&w, &id, "presentation").await);
    assert!(
        note.contains("Le groupement a pour objet : fourniture d'un ENT pour les écoles des membres."),
        "{name}: {note}"
    );
    assert!(!note.contains("groupement-de-commandes") && !note.contains("dont l'objet est"), "{name}: {note}");
}

// A coordinator the registry holds neither SIRET nor SIREN for (an académie's case): the buyer
// SIRET given at award is refused when the registry says it is another organisation's — that
// SIRET held by another (an école), or its SIREN another's (a member commune's) — and an own one
// is published in the DECP from the award, the registry left as it was.
backend_test!(a_coordinator_without_siret_gives_its_own_buyer_siret_never_another_organisation_s);
async fn a_coordinator_without_siret_gives_its_own_buyer_siret_never_another_organisation_s(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let id = constituted_groupement(&w, &signing, &[0]).await;
    let coord = w.coord.to(&signing);
    launch_consultation(&coord, &id, name).await;
    sqlx::query("UPDATE orgs SET siren = NULL, siret = NULL WHERE id = $1")
        .bind(&w.coordinator.id)
        .execute(w.store.pool())
        .await
        .unwrap();
    let school_siret: String = common::texts(
        &w.store,
        "SELECT siret FROM orgs WHERE kind = 'etablissement' AND siret IS NOT NULL ORDER BY id LIMIT 1",
        &[],
    )
    .await
    .remove(0);
    // Another establishment (a NIC no school has) of the same legal person as that école.
    let siren = &school_siret[..9];
    let another_siret = luhn(&format!("{siren}9999"));
    let award = api(&format!("/groupements/{id}/award"));
    // Notified 46 days after the launch, once the open call's délais have run.
    let notifying = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    let coord = w.coord.to(&notifying);
    let school: String = sqlx::query_scalar("SELECT name FROM orgs WHERE siret = $1")
        .bind(&school_siret)
        .fetch_one(w.store.pool())
        .await
        .unwrap();
    let said_of_siren = format!("du SIREN {siren}, qui est au répertoire celui d'une autre organisation");
    for (buyer, said) in
        [(&school_siret, "celui d'une autre organisation du répertoire"), (&another_siret, &said_of_siren)]
    {
        let mut body = award_notified_on("2026-11-30");
        body["decp"]["acheteur_siret"] = json!(buyer);
        let (status, problem) = send(coord.post(&award).json(&body)).await;
        assert_eq!((status, fields(&problem)), (422, vec!["decp.acheteur_siret".to_string()]), "{name}: {problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(said) && message.contains("pas un membre ni un tiers"), "{name}: {message}");
        assert!(!message.contains(&school), "{name}: the other organisation is not named: {message}");
    }

    let own = luhn(&format!("{}0001", luhn("17940001")));
    let mut body = award_notified_on("2026-11-30");
    body["decp"]["acheteur_siret"] = json!(own);
    let (status, g) = send(coord.post(&award).json(&body)).await;
    assert_eq!(status, 200, "{name}: {g}");
    let coordinator = entcp::registry::resolve_org(&w.store, &w.coordinator.id).await.unwrap();
    assert_eq!((coordinator.siret, coordinator.siren), (None, None), "{name}: an award rewrites no registry entry");
    let (status, decp) = send(coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 200, "{name}: {decp}");
    assert_eq!(decp["marches"]["marche"][0]["acheteur"]["id"], own.as_str(), "{name}: read from the award");
}

// The titulaire is an operator, never a public body: a vendor SIRET whose SIREN the registry
// holds for an organisation other than an éditeur or an hébergeur (an école's own SIRET, another
// establishment under its commune's SIREN, a member commune's) is refused on `vendor_siret`,
// for the coordinator and an administrator alike, naming no organisation and creating none.
// An hébergeur's SIREN the coordinator may not read is answered as an unknown SIREN: its name is
// never echoed, and the name given is the one the new éditeur takes; an administrator, who
// reads it, is told the name the registry holds.
backend_test!(an_award_takes_no_public_body_for_titulaire_and_echoes_no_name_out_of_scope);
async fn an_award_takes_no_public_body_for_titulaire_and_echoes_no_name_out_of_scope(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id, notifying) = launched_for_an_award_on_30_november(&db).await;
    let coord = w.coord.to(&notifying);
    let admin = w.admin().await.to(&notifying);
    let award = api(&format!("/groupements/{id}/award"));
    let (school, school_siret): (String, String) = sqlx::query_as(
        "SELECT name, siret FROM orgs WHERE kind = 'etablissement' AND siret IS NOT NULL ORDER BY id LIMIT 1",
    )
    .fetch_one(w.store.pool())
    .await
    .unwrap();
    let (commune, commune_siren) = (&w.communes[0].0.name, w.communes[0].0.siren.clone());
    let mut public = vec![school_siret.clone(), luhn(&format!("{}9999", &school_siret[..9]))];
    public.extend(commune_siren.map(|siren| luhn(&format!("{siren}0001"))));
    let editeurs = || common::texts(&w.store, "SELECT id FROM orgs WHERE kind = 'editeur' ORDER BY id", &[]);
    let before = editeurs().await;
    for siret in &public {
        for caller in [&coord, &admin] {
            let mut body = award_notified_on("2026-11-30");
            body["vendor_siret"] = json!(siret);
            body["vendor_name"] = json!(school);
            let (status, problem) = send(caller.post(&award).json(&body)).await;
            assert_eq!(
                (status, fields(&problem)),
                (422, vec!["vendor_siret".to_string()]),
                "{name} {siret}: {problem}"
            );
            let message = problem["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains("organisme public"), "{name}: {message}");
            assert!(!message.contains(school.as_str()) && !message.contains(commune.as_str()), "{name}: {message}");
        }
    }
    // Attack review 39, F2: a SIREN numbered from 2 that no organisation holds yet is a
    // collectivité's or one of its établissements publics': registered as the titulaire, it
    // would keep the EPCI or syndicat mixte that holds it out of the registry.
    let collectivite = luhn(&format!("{}0001", common::fixtures::group_siren(41)));
    for caller in [&coord, &admin] {
        let mut body = award_notified_on("2026-11-30");
        body["vendor_siret"] = json!(collectivite);
        body["vendor_name"] = json!("Syndicat numérique");
        let (status, problem) = send(caller.post(&award).json(&body)).await;
        assert_eq!((status, fields(&problem)), (422, vec!["vendor_siret".to_string()]), "{name}: {problem}");
        assert!(problem.to_string().contains("commence par 2"), "{name}: {problem}");
    }
    assert_eq!(editeurs().await, before, "{name}: no éditeur created after a public body");
    let (_, g) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!(g["status"], "consultation", "{name}: {g}");

    // An hébergeur out of the coordinator's scope: as an unknown SIREN, to the letter.
    let hidden = luhn(&format!("{}0001", luhn("83456789")));
    let unknown = luhn(&format!("{}0001", luhn("84567890")));
    new_org(&w.store, OrgKind::Hebergeur, "Hébergeur Discret SAS", &hidden[..9], None).await;
    let unnamed = |siret: &str| {
        let mut body = award_notified_on("2026-11-30");
        body["vendor_siret"] = json!(siret);
        body.as_object_mut().unwrap().remove("vendor_name");
        body
    };
    let (status, of_hidden) = send(coord.post(&award).json(&unnamed(&hidden))).await;
    let (_, of_unknown) = send(coord.post(&award).json(&unnamed(&unknown))).await;
    assert_eq!((status, fields(&of_hidden)), (422, vec!["vendor_name".to_string()]), "{name}: {of_hidden}");
    let same = of_unknown.to_string().replace(&unknown[..9], &hidden[..9]);
    assert_eq!(of_hidden.to_string(), same, "{name}: answered as an unknown SIREN");
    assert!(!of_hidden.to_string().contains("Discret"), "{name}: {of_hidden}");
    // An administrator reads it: another name is refused, naming the registry's.
    let mut renamed = unnamed(&hidden);
    renamed["vendor_name"] = json!("Autre Nom SAS");
    let (status, problem) = send(admin.post(&award).json(&renamed)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["vendor_name".to_string()]), "{name}: {problem}");
    assert!(problem.to_string().contains("sous le nom « Hébergeur Discret SAS »"), "{name}: {problem}");
    // The coordinator's name is taken as for an unknown SIREN.
    let (status, g) = send(coord.post(&award).json(&renamed)).await;
    assert_eq!(status, 200, "{name}: {g}");
    assert_eq!(g["award"]["vendor"]["name"], "Autre Nom SAS", "{name}: {g}");
}

// A DAN's import may give a private collège a vendor's SIREN the registry does not hold yet (its
// organisme de gestion's may be a company's; an école takes none but its commune's, said on its
// line, a public collège none but one numbered from 1): registering that éditeur afterwards takes the
// collège's copy away (audited), and an award to the vendor goes through instead of being
// refused as one to a public body. A SIREN a public body holds (a commune's, which its écoles
// carry) is not registered as an éditeur's.
backend_test!(a_vendors_siren_a_dans_import_gave_a_school_blocks_no_award_once_registered);
async fn a_vendors_siren_a_dans_import_gave_a_school_blocks_no_award_once_registered(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id, notifying) = launched_for_an_award_on_30_november(&db).await;
    let coord = w.coord.to(&notifying);
    let admin = w.admin().await.to(&notifying);
    let dan = w.app.client(&token_for(&w.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await);
    let vendor = luhn("81111111");
    let vendor_siret = luhn(&format!("{vendor}0001"));
    let uai = |digits: &str| format!("{digits}{}", entcp::registry::codes::uai_check_letter(digits.parse().unwrap()));
    let (college, ecole) = (uai("0949901"), uai("0949902"));
    let csv = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Code_commune;\
         Code_departement;Code_academie;SIREN_SIRET\n{college};Collège Squat;College;Privé;94034;094;24;{vendor_siret}\n\
         {ecole};Ecole Squat;Ecole;Public;94034;094;24;{vendor_siret}\n"
    );
    let resp = dan.post(api("/imports/annuaire")).bytes("text/csv", csv).send().await;
    assert_eq!(resp.status, 200, "{name}: {}", resp.text);
    let report: Value = serde_json::from_str(&resp.text).unwrap();
    assert_eq!(report["etablissements"]["created"], 2, "{name}: {report}");
    let remark = format!(
        "SIREN {vendor} ignoré, SIRET compris : un établissement n'a pour SIREN que le sien ou celui de sa commune"
    );
    assert_eq!(report["warnings"], json!([{ "line": 3, "uai": ecole, "reason": remark }]), "{name}");
    let siren_of = |uai: String| {
        let store = w.store.clone();
        async move { entcp::registry::resolve_org(&store, &uai).await.unwrap() }
    };
    let squatting = siren_of(college.clone()).await;
    assert_eq!(squatting.siren.as_deref(), Some(vendor.as_str()), "{name}: no one held it");
    assert_eq!(siren_of(ecole.clone()).await.siren, None, "{name}: not an école's");

    let (status, problem) = send(admin.post(api("/orgs")).json(&json!({
        "kind": "editeur", "siren": "219400348", "name": "Fresnes SAS"
    })))
    .await;
    assert_eq!(status, 409, "{name}: a commune's: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("organisme public"), "{name}: {problem}");
    let (status, created) = send(admin.post(api("/orgs")).json(&json!({
        "kind": "editeur", "siren": vendor, "name": "Vrai Éditeur SAS"
    })))
    .await;
    assert_eq!(status, 201, "{name}: {created}");
    let dropped = siren_of(college).await;
    assert_eq!((dropped.siren, dropped.siret), (None, None), "{name}: the collège's copy taken away");
    assert_eq!(common::audited_on(&w.store, "orgs.siren_dropped", &squatting.id).await, 1, "{name}");

    let mut body = award_notified_on("2026-11-30");
    body["vendor_siret"] = json!(vendor_siret);
    body["vendor_name"] = json!("Vrai Éditeur SAS");
    let (status, g) = send(coord.post(api(&format!("/groupements/{id}/award"))).json(&body)).await;
    assert_eq!(status, 200, "{name}: {g}");
    assert_eq!(g["award"]["vendor"]["name"], "Vrai Éditeur SAS", "{name}: {g}");
}

// The pieces read as French sentences: the coordinator with its article (« passé par le
// Syndicat mixte … »), the object inside the sentence, lower case and ended (RC art. 2, CCAP
// and CCTP art. 1), « 1 h ouvrée », « Fait à ……, le …… », counts in groups of three (members
// list, CCTP art. 3, the annex's cells); the SDET is referenced, published, never « joint »
// (RC art. 5 and CCTP art. 5 agree); the Art. 28(2) authorisation of the titulaire is the
// responsable de traitement's, given by the ENT convention and passed on by the member.
backend_test!(groupement_pieces_read_as_french_sentences_and_agree_on_the_sdet_and_the_art_28_authorisation);
async fn groupement_pieces_read_as_french_sentences_and_agree_on_the_sdet_and_the_art_28_authorisation(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let w = world(&db).await;
    let (id, _) = groupement_of(&w, "Fourniture d'un ENT pour les écoles des membres", "2026-09-30", &[0]).await;
    sqlx::query("UPDATE groupement_members SET pupils = 8410, teacher_accounts = 1800 WHERE groupement_id = $1")
        .bind(&id)
        .execute(w.store.pool())
        .await
        .unwrap();
    let coordinator = "le Syndicat mixte numérique du Val-de-Marne, coordonnateur du groupement de commandes";
    let in_sentence = "a pour objet : fourniture d'un ENT pour les écoles des membres.";
    let rc = document_text(&w, &id, "rc").await;
    let ccap = document_text(&w, &id, "ccap").await;
    let cctp = document_text(&w, &id, "cctp").await;
    let ae = document_text(&w, &id, "ae").await;
    let membres = document_text(&w, &id, "membres").await;
    for (kind, text, needle) in [
        ("rc", &rc, "La consultation a pour objet : fourniture d'un ENT pour les écoles des membres.".to_string()),
        ("ccap", &ccap, format!("l'accord-cadre passé par {coordinator}")),
        (
            "ccap",
            &ccap,
            format!("(un membre, désigné dans la liste des membres du groupement). L'accord-cadre {in_sentence}"),
        ),
        ("cctp", &cctp, format!("du marché passé par {coordinator}")),
        ("cctp", &cctp, format!("(un membre). Le marché {in_sentence}")),
        ("cctp", &cctp, "1 h ouvrée\n".to_string()),
        ("cctp", &cctp, "Élèves\n8 410\n".to_string()),
        ("cctp", &cctp, "Comptes enseignants\n1 800\n".to_string()),
        ("membres", &membres, "Élèves\n8 410\n".to_string()),
        ("ae", &ae, "Fait à ……, le ……".to_string()),
        // The SDET: referenced by the CCTP, published by the ministry, joined nowhere.
        ("rc", &rc, "que référence l'article 5 du CCTP".to_string()),
        ("rc", &rc, "ne sont pas joints : ils sont publiés, le SDET par le ministère".to_string()),
        ("cctp", &cctp, "Le SDET n'est pas joint au présent CCTP : il est publié par le ministère".to_string()),
        // Art. 28(2): the responsable de traitement authorises, through the ENT convention.
        ("ccap", &ccap, "est donnée par le responsable de traitement que désigne la convention ENT".to_string()),
        ("ccap", &ccap, "le membre, lui-même sous-traitant, ne fait que la transmettre au titulaire".to_string()),
    ] {
        assert!(text.contains(&french(&needle)), "{name} {kind}: « {needle} » in {text}");
    }
    for (kind, text, gone) in [
        ("rc", &rc, "porte sur : "),
        // The object never follows a preposition without its article (« portant sur fourniture »).
        ("rc", &rc, "porte sur fourniture"),
        ("ccap", &ccap, "portant sur fourniture"),
        ("cctp", &cctp, "portant sur fourniture"),
        ("ccap", &ccap, "passé par Syndicat"),
        ("cctp", &cctp, "passé par Syndicat"),
        ("cctp", &cctp, " : Fourniture"),
        ("cctp", &cctp, "1 h ouvrées"),
        ("cctp", &cctp, "8410"),
        ("membres", &membres, "8410"),
        ("ae", &ae, "Fait à……"),
        ("ae", &ae, "Fait à\n"),
        ("cctp", &cctp, "jointe en annexe"),
        ("rc", &rc, "annexe 1 du CCTP"),
        ("ccap", &ccap, "qui l'a autorisé en adhérant"),
    ] {
        assert!(!text.contains(gone) && !text.contains(&french(gone)), "{name} {kind}: « {gone} » in {text}");
    }
    // The annex's counts show grouped, their values as they are.
    let ods = generated(&w, &id, "quantites", "ods").await;
    let content = part(&ods, "content.xml");
    assert!(content.contains("office:value=\"8410\"><text:p>8\u{a0}410</text:p>"), "{name}: {content}");
}

/// A groupement of `w`'s communes `members` (their applications accepted) whose object is
/// `object` and whose applications end on `deadline`: its id and its convention constitutive's.
async fn groupement_of(w: &World, object: &str, deadline: &str, members: &[usize]) -> (String, String) {
    let mut body = minimal_groupement(w, deadline);
    body["object"] = json!(object);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{g}");
    let id = g["id"].as_str().unwrap().to_string();
    for (n, i) in members.iter().enumerate() {
        let app = apply(&w.communes[*i], &id, &format!("2026-DCM-{n:03}")).await;
        let accept = api(&format!("/groupements/{id}/applications/{}/accept", app["id"].as_str().unwrap()));
        assert_eq!(send(w.coord.post(accept)).await.0, 200, "{id}");
    }
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    (id, g["convention_id"].as_str().expect("a convention constitutive").to_string())
}

/// The HTML of convention `conv`'s document, apostrophes as written.
async fn convention_html(w: &World, conv: &str) -> String {
    let html = w.coord.get(api(&format!("/conventions/{conv}/document?format=html"))).send().await.text;
    html.replace("&#x27;", "'")
}

// A convention constitutive opened now (model version 3) names the coordinator and each member
// with its article (« le Syndicat mixte … », « la Commune de … ») and the object inside its
// sentence, in lower case and ended; its « Entre » block designates the members together, once;
// its article 10 takes effect on its date or, not yet signed by every party, on the last
// signature. One opened on version 2 keeps version 2's text, signed as it was written: the bytes
// served are those its signatures bind.
backend_test!(the_convention_constitutive_names_its_parties_and_takes_effect_at_the_last_signature);
async fn the_convention_constitutive_names_its_parties_and_takes_effect_at_the_last_signature(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let w = world(&db).await;
    let object = "Fourniture d'un ENT pour les écoles des membres";
    let (_, conv) = groupement_of(&w, object, "2026-09-30", &[0, 1]).await;
    let (_, body) = send(w.coord.get(api(&format!("/conventions/{conv}")))).await;
    assert_eq!(body["model_version"], 3, "{name}: {body}");
    let html = convention_html(&w, &conv).await;
    let (a, b) = (&w.communes[0].0.name, &w.communes[1].0.name);
    let (la_a, la_b) =
        (entcp::naming::of_org(OrgKind::Commune, a).article, entcp::naming::of_org(OrgKind::Commune, b).article);
    for needle in [
        format!(
            "il est constitué entre le Syndicat mixte numérique du Val-de-Marne, coordonnateur, et les membres \
             suivants : {la_a}, {la_b}, un groupement de commandes ayant pour objet la passation et l'exécution d'un \
             ou de plusieurs marchés ayant eux-mêmes pour objet : fourniture d'un ENT pour les écoles des membres."
        ),
        "solidairement responsables des seules opérations de passation ou d'exécution du marché menées \
         conjointement en leur nom et pour leur compte"
            .to_string(),
        "ci-après dénommées ensemble « les membres ».".to_string(),
        "prend effet le 1er septembre 2026 ou, si elle n'est pas signée par le coordonnateur et par chaque membre à \
         cette date, le jour de la dernière signature, et s'achève le"
            .to_string(),
    ] {
        let needle = french(&needle);
        assert!(html.contains(&needle), "{name}: « {needle} » in {html}");
    }
    assert_eq!(html.matches("ci-après dénommées ensemble").count(), 1, "{name}: the members designated once");
    assert!(!html.contains("dénommée « membre du groupement »"), "{name}: {html}");
    // Edition 4 (before the review of L. 2113-7 and of the object's wording) keeps its text.
    common::execute(&w.store, "UPDATE conventions SET document_edition = 4 WHERE id = $1", &[&conv]).await;
    let html = convention_html(&w, &conv).await;
    for needle in ["marchés portant sur fourniture", "des seules opérations de passation menées conjointement"] {
        assert!(html.contains(&french(needle)), "{name}: edition 4 keeps « {needle} »: {html}");
    }

    // Version 2: its text, as signed.
    let (_, old) = groupement_of(&w, object, "2026-09-30", &[2, 3]).await;
    sqlx::query("UPDATE conventions SET model_version = 2 WHERE id = $1")
        .bind(&old)
        .execute(w.store.pool())
        .await
        .unwrap();
    constitute(&w, &old, &w.communes[2..4]).await;
    let (_, signed) = send(w.coord.get(api(&format!("/conventions/{old}")))).await;
    assert_eq!(signed["status"], "active", "{name}: {signed}");
    let file = w.coord.get(api(&format!("/conventions/{old}/signed-document"))).send().await;
    let hash = signed["document_hash"].as_str().unwrap();
    assert_eq!(entcp::documents::sha256_hex(&file.bytes), hash, "{name}: the bytes its signatures bind");
    let html = file.text.replace("&#x27;", "'");
    for needle in [
        "il est constitué entre Syndicat mixte numérique du Val-de-Marne, coordonnateur",
        "portant sur Fourniture",
        "après sa signature par le coordonnateur et par chaque membre, et s'achève",
        // Drafted now, in edition 6 (F13): a party designated with its article.
        "dénommée « le membre du groupement »",
    ] {
        assert!(html.contains(&french(needle)), "{name}: version 2 keeps « {needle} »: {html}");
    }
    assert!(!html.contains("le jour de la dernière signature") && !html.contains("dénommées ensemble"), "{name}");
}

// Article 2 of the convention constitutive: no adhesion after the launch. Launched on 5 December,
// before its deadline of 20 December, the groupement's adhesions ended at the launch: the
// presentation note and the console's pages say so, never « 20 décembre » as the deadline.
backend_test!(once_launched_the_adhesions_read_as_ended_at_the_launch);
async fn once_launched_the_adhesions_read_as_ended_at_the_launch(db: crate::common::TestDb) {
    let name = db.name;
    let w = world(&db).await;
    let (id, conv) = groupement_of(&w, "ENT des écoles", "2026-12-20", &[0, 1]).await;
    let text = document_text(&w, &id, "presentation").await;
    assert!(text.contains("Date limite des adhésions\n20 décembre 2026\n"), "{name}: before the launch: {text}");
    constitute(&w, &conv, &w.communes[..2]).await;
    let launching = TestApp::over(&w.store).clock(clock_on(2026, 12, 5)).build().await;
    launch_consultation(&w.coord.to(&launching), &id, name).await;
    let ended = "5 décembre 2026, au lancement de la consultation (date limite fixée au 20 décembre 2026)";
    let text = document_text(&w, &id, "presentation").await;
    assert!(text.contains(&format!("Fin des adhésions\n{ended}\n")), "{name}: {text}");
    assert!(!text.contains("Date limite des adhésions"), "{name}: {text}");
    crate::console::with_password(&w.store, "coord@sm94.fr").await;
    let session = crate::console::sign_in(&w.app, "coord@sm94.fr").await;
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    let page =
        crate::console::get(&w.app, &session, &format!("/groupements/{}", g["reference"].as_str().unwrap())).await;
    assert!(page.text.contains(&format!("adhésions closes le {ended}")), "{name}: {}", page.text);
    let list = crate::console::get(&w.app, &session, "/groupements").await;
    assert!(list.text.contains(ended) && !list.text.contains(">20 décembre 2026<"), "{name}: {}", list.text);
}

// Every piece of the consultation file, the presentation note and the convention constitutive
// are set in French typography (`documents::typography`): no-break spaces before « ; : ! ? »,
// inside « », in amounts and after units, in HTML and ODT alike, and in the text cells of the
// quantity annex. A version stored before keeps its bytes and its hash; generating again adds
// a version rather than rewriting it.
backend_test!(every_groupement_piece_is_set_in_french_typography_and_an_older_version_keeps_its_bytes);
async fn every_groupement_piece_is_set_in_french_typography_and_an_older_version_keeps_its_bytes(
    db: crate::common::TestDb,
) {
    let (w, id) = world_with_groupement(&db).await;
    let name = db.name;
    let conv_id = first_commune_accepted(&w, &id).await;
    let generate =
        |kind: &str| w.coord.post(api(&format!("/groupements/{id}/documents"))).json(&json!({ "kind": kind }));
    let download =
        |doc: &str, format: &str| w.coord.get(api(&format!("/groupements/{id}/documents/{doc}?format={format}")));
    let mut texts = std::collections::BTreeMap::new();
    for kind in ["presentation", "rc", "ae", "ccap", "cctp", "membres"] {
        let (status, doc) = send(generate(kind)).await;
        assert_eq!(status, 201, "{name} {kind}: {doc}");
        let doc = doc["id"].as_str().unwrap();
        let html = download(doc, "html").send().await.text;
        let text = odt_text(&download(doc, "odt").send().await.bytes);
        for (format, text) in [("html", common::html_body(&html)), ("odt", text.as_str())] {
            assert_eq!(common::loose_spaces(text), Vec::<String>::new(), "{name} {kind} {format}");
            assert!(text.contains("Référence\u{202f}: "), "{name} {kind} {format}: {text}");
        }
        texts.insert(kind, text);
    }
    let (rc, ccap) = (&texts["rc"], &texts["ccap"]);
    let priced = "Prix, apprécié au vu du montant total HT du détail quantitatif estimatif (DQE)\u{202f}: 40 points";
    assert!(rc.contains(priced) && rc.contains("est rectifié\u{202f}; le candidat"), "{name}: {rc}");
    assert!(rc.contains("durée de 36\u{a0}mois") && rc.contains("articles\u{a0}L. 2113-6"), "{name}: {rc}");
    assert!(ccap.contains("(article\u{a0}R. 2192-10") && ccap.contains("de 40\u{a0}euros"), "{name}: {ccap}");
    let annex = ods_sheets(&generated(&w, &id, "quantites", "ods").await);
    let cells: Vec<&String> = annex.iter().flat_map(|(_, rows)| rows.iter().flatten()).collect();
    assert!(cells.iter().any(|c| c.contains("36\u{a0}mois")), "{name}: {cells:?}");
    assert!(!cells.iter().any(|c| c.contains("36 mois")), "{name}: {cells:?}");
    // The convention constitutive, drafted now, is of the edition set in French.
    let constitutive = w.coord.get(api(&format!("/conventions/{conv_id}/document?format=html"))).send().await.text;
    assert_eq!(common::loose_spaces(common::html_body(&constitutive)), Vec::<String>::new(), "{name}");
    assert!(constitutive.contains("Référence\u{202f}: "), "{name}: {constitutive}");

    // A CCTP version stored before the pass (its spaces as written): served as stored, under its hash.
    let (_, cctp) = send(generate("cctp")).await;
    let (old_id, old_version) = (cctp["id"].as_str().unwrap(), cctp["version"].as_i64().unwrap());
    let as_written = download(old_id, "html").send().await.text.replace(['\u{202f}', '\u{a0}'], " ");
    let old_hash = entcp::documents::sha256_hex(as_written.as_bytes());
    sqlx::query("UPDATE groupement_documents SET html = $1, sha256 = $2 WHERE id = $3")
        .bind(&as_written)
        .bind(&old_hash)
        .bind(old_id)
        .execute(w.store.pool())
        .await
        .unwrap();
    let (status, again) = send(generate("cctp")).await;
    assert_eq!(status, 201, "{name}: the document now reads otherwise, a new version: {again}");
    assert_eq!(again["version"].as_i64(), Some(old_version + 1), "{name}: {again}");
    assert_ne!(again["sha256"].as_str(), Some(old_hash.as_str()), "{name}");
    let old = download(old_id, "html").send().await;
    assert_eq!(old.text, as_written, "{name}: the older version keeps its bytes");
    assert_eq!(entcp::documents::sha256_hex(&old.bytes), old_hash, "{name}: and re-derives its hash");
    assert_eq!(old.headers["x-document-sha256"], old_hash.as_str(), "{name}");
    let new = download(again["id"].as_str().unwrap(), "html").send().await;
    assert_eq!(entcp::documents::sha256_hex(&new.bytes), again["sha256"].as_str().unwrap(), "{name}");
    assert!(new.text.contains('\u{202f}'), "{name}");
}

/// The message of the one error of `problem` on `field` (422), asserted alone.
fn only_error(problem: &Value, status: u16, field: &str, name: &str) -> String {
    assert_eq!((status, fields(problem)), (422, vec![field.to_string()]), "{name}: {problem}");
    problem["errors"][0]["message"].as_str().unwrap().to_string()
}

// F2. An open call launches only with its offers deadline (422 on `offers_deadline` when missing,
// passed, or inside the 30 full days R. 2161-2 and R. 2161-3, 2°, leave when offers are received
// electronically); the RC prints it and its article 11 counts back from it; a move while the
// consultation runs needs a reason (audited); the award waits for it and the standstill.
backend_test!(an_open_call_launches_with_an_offers_deadline_its_minimum_allows_and_is_awarded_after_it);
async fn an_open_call_launches_with_an_offers_deadline_its_minimum_allows_and_is_awarded_after_it(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    let coord = w.coord.to(&signing);
    let transition = api(&format!("/groupements/{id}/transition"));
    assert_eq!(send(coord.post(&transition).json(&json!({ "to": "closed" }))).await.0, 200, "{name}");
    let launch = async |deadline: Option<&str>| {
        send(coord.post(&transition).json(&json!({ "to": "consultation", "offers_deadline": deadline }))).await
    };
    let (status, problem) = launch(None).await;
    let message = only_error(&problem, status, "offers_deadline", name);
    assert!(
        message.contains("obligatoires pour lancer la consultation")
            && message.contains("le 15 novembre 2026 au plus tôt"),
        "{name}: {message}"
    );
    let (status, problem) = launch(Some("2026-10-01T12:00")).await;
    assert!(only_error(&problem, status, "offers_deadline", name).contains("est passée"), "{name}");
    // Launched on 15 October: 30 full days (16 October to 14 November), the deadline on the 15th.
    for early in ["2026-10-15T18:00", "2026-11-14T23:59"] {
        let (status, problem) = launch(Some(early)).await;
        let message = only_error(&problem, status, "offers_deadline", name);
        for needle in [
            "article R. 2161-2",
            "ramenés à 30 jours",
            "article R. 2161-3, 2°",
            "choisissez le 15 novembre 2026 au plus tôt",
        ] {
            assert!(message.contains(needle), "{name} {early}: « {needle} » in {message}");
        }
    }
    let (_, still) = send(coord.get(api(&format!("/groupements/{id}")))).await;
    assert_eq!((still["status"].as_str(), still.get("offers_deadline_at")), (Some("closed"), None), "{name}: {still}");
    let (status, g) = launch(Some("2026-11-15T12:00")).await;
    assert_eq!((status, g["offers_deadline_at"].as_str()), (200, Some("2026-11-15T11:00:00Z")), "{name}: {g}");
    assert!(g.get("offers_deadline_warning").is_none(), "{name}: {g}");

    let rc = document_text(&w, &id, "rc").await;
    for needle in [
        "Date et heure limites de réception des offres\n15 novembre 2026 à 12 h 00 (heure de Paris)",
        "au plus tard 10 jours avant la date limite de réception des offres, soit le 5 novembre 2026",
        "au plus tard 6 jours avant cette date, soit le 9 novembre 2026",
    ] {
        assert!(rc.contains(&french(needle)), "{name}: the RC lacks « {needle} »: {rc}");
    }
    assert!(!rc.contains("fixées au lancement"), "{name}: {rc}");

    // Moved while the consultation runs: a reason, required, is audited with both deadlines.
    let url = api(&format!("/groupements/{id}"));
    let version = g["version"].as_i64().unwrap();
    let patch = |body: Value| coord.patch(&url).header("if-match", format!("\"{version}\"")).json(&body);
    let (status, problem) = send(patch(json!({ "offers_deadline": "2026-11-20T12:00" }))).await;
    only_error(&problem, status, "offers_deadline_reason", name);
    let (status, problem) = send(patch(json!({ "offers_deadline": "2026-11-20T12:00", "title": "Autre" }))).await;
    assert_eq!(status, 409, "{name}: only the deadline moves: {problem}");
    let reason = "Report après une modification du CCTP";
    let (status, g) =
        send(patch(json!({ "offers_deadline": "2026-11-20T12:00", "offers_deadline_reason": reason }))).await;
    assert_eq!((status, g["offers_deadline_at"].as_str()), (200, Some("2026-11-20T11:00:00Z")), "{name}: {g}");
    let summary = common::audit_summary(&w.store, "groupements.offers_deadline", &id).await;
    assert_eq!(
        (summary["from"].as_str(), summary["to"].as_str(), summary["reason"].as_str()),
        (Some("2026-11-15T11:00:00Z"), Some("2026-11-20T11:00:00Z"), Some(reason)),
        "{name}: {summary}"
    );
    // Offers on 11 January 2027: the questions' last day, 1 January, a public holiday, moves to
    // the next working day, Monday 4 January; the answers' (5 January) stays.
    let moved = |g: &Value, to: &str| {
        let body = json!({ "offers_deadline": to, "offers_deadline_reason": reason });
        coord.patch(&url).header("if-match", format!("\"{}\"", g["version"])).json(&body)
    };
    let (status, january) = send(moved(&g, "2027-01-11T12:00")).await;
    assert_eq!(status, 200, "{name}: {january}");
    let rc = document_text(&w, &id, "rc").await;
    for needle in ["soit le 4 janvier 2027", "au plus tard 6 jours avant cette date, soit le 5 janvier 2027"] {
        assert!(rc.contains(&french(needle)), "{name}: the RC lacks « {needle} »: {rc}");
    }
    assert!(!rc.contains("soit le 1er janvier 2027"), "{name}: {rc}");
    let (status, g) = send(moved(&january, "2026-11-20T12:00")).await;
    assert_eq!(status, 200, "{name}: {g}");

    // Notified before the deadline, or inside the standstill after it: refused, saying the deadline.
    let later = TestApp::over(&w.store).clock(clock_on(2026, 12, 5)).build().await;
    let award_url = api(&format!("/groupements/{id}/award"));
    for day in ["2026-11-20", "2026-11-30"] {
        let (status, problem) = send(w.coord.to(&later).post(&award_url).json(&award_notified_on(day))).await;
        let message = only_error(&problem, status, "notified_on", name);
        for needle in ["avant le 1er décembre 2026", "les offres sont reçues jusqu'au 20 novembre 2026 à 12 h 00"] {
            assert!(message.contains(needle), "{name} {day}: « {needle} » in {message}");
        }
    }
    let (status, g) = send(w.coord.to(&later).post(&award_url).json(&award_notified_on("2026-12-01"))).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
    // Awarded, the deadline no longer moves.
    let version = g["version"].as_i64().unwrap();
    let moved = json!({ "offers_deadline": "2026-12-20T12:00", "offers_deadline_reason": reason });
    let (status, _) =
        send(w.coord.to(&later).patch(&url).header("if-match", format!("\"{version}\"")).json(&moved)).await;
    assert_eq!(status, 409, "{name}");
}

/// A groupement by procédure adaptée (its need estimated at 150 000 € HT), constituted with the
/// first commune on the day of `app`'s clock: its id.
async fn adapted_groupement(w: &World, app: &TestApp, name: &str) -> String {
    let mut body = minimal_groupement(w, "2026-09-30");
    body["procedure"] = json!("procedure_adaptee");
    body["estimated_amount_ht_cents"] = json!(15_000_000);
    let (status, g) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!(status, 201, "{name}: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    let conv_id = first_commune_accepted(w, &id).await;
    sign_constitutive(w, app, &conv_id, None, &[0]).await;
    id
}

// F2 and F9 for a procédure adaptée: no legal minimum, but never the launch day (422); a delay
// under the platform's advice is warned of, not refused; notified the day after the deadline at
// the earliest. The titulaire's choice on the avance is required at award, ticks its box in the
// AE, and makes the DECP's avance: a contradicting DECP is refused.
backend_test!(a_procedure_adaptee_awards_after_its_deadline_with_the_titulaires_avance_choice);
async fn a_procedure_adaptee_awards_after_its_deadline_with_the_titulaires_avance_choice(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let id = adapted_groupement(&w, &signing, name).await;
    let coord = w.coord.to(&signing);
    let transition = api(&format!("/groupements/{id}/transition"));
    assert_eq!(send(coord.post(&transition).json(&json!({ "to": "closed" }))).await.0, 200, "{name}");
    let (status, problem) = send(coord.post(&transition).json(&moving_to("consultation", "2026-10-15T18:00"))).await;
    let message = only_error(&problem, status, "offers_deadline", name);
    assert!(
        message.contains("ne peut pas tomber le jour du lancement") && message.contains("le 16 octobre 2026"),
        "{name}: {message}"
    );
    let (status, g) = send(coord.post(&transition).json(&moving_to("consultation", "2026-10-22T12:00"))).await;
    assert_eq!(status, 200, "{name}: {g}");
    let warning = g["offers_deadline_warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("7 jours") && warning.contains("21 jours") && warning.contains("R. 2151-1"),
        "{name}: {g}"
    );

    let later = TestApp::over(&w.store).clock(clock_on(2026, 10, 30)).build().await;
    let award_url = api(&format!("/groupements/{id}/award"));
    let award = |day: &str| {
        let mut body = award_notified_on(day);
        body["decp"].as_object_mut().unwrap().remove("procedure");
        body
    };
    let (status, problem) = send(w.coord.to(&later).post(&award_url).json(&award("2026-10-22"))).await;
    let message = only_error(&problem, status, "notified_on", name);
    assert!(
        message.contains("avant le 23 octobre 2026") && message.contains("22 octobre 2026 à 12 h 00"),
        "{name}: {message}"
    );
    // The choice is required; a DECP contradicting it is refused.
    let mut unchosen = award("2026-10-23");
    unchosen.as_object_mut().unwrap().remove("advance_renounced");
    let (status, problem) = send(w.coord.to(&later).post(&award_url).json(&unchosen)).await;
    only_error(&problem, status, "advance_renounced", name);
    let mut contradicting = award("2026-10-23");
    contradicting["decp"]["attribution_avance"] = json!(true);
    let (status, problem) = send(w.coord.to(&later).post(&award_url).json(&contradicting)).await;
    let message = only_error(&problem, status, "decp.attribution_avance", name);
    assert!(message.contains("renonce au bénéfice de l'avance"), "{name}: {message}");
    let mut kept = award("2026-10-23");
    kept["advance_renounced"] = json!(false);
    kept["decp"].as_object_mut().unwrap().remove("attribution_avance");
    let (status, g) = send(w.coord.to(&later).post(&award_url).json(&kept)).await;
    assert_eq!((status, g["award"]["advance_renounced"].as_bool()), (200, Some(false)), "{name}: {g}");

    let ae = document_text(&w, &id, "ae").await;
    let flat = ae.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "Avance (choix du titulaire)",
        "☐ le titulaire renonce au bénéfice de l'avance",
        "☒ le titulaire ne renonce pas au bénéfice de l'avance",
    ] {
        assert!(flat.contains(needle), "{name}: the AE lacks « {needle} »: {flat}");
    }
    let (status, decp) = send(w.coord.to(&later).get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 200, "{name}: {decp}");
    let marche = &decp["marches"]["marche"][0];
    assert_eq!(
        (marche["attributionAvance"].as_bool(), marche["tauxAvance"].as_f64()),
        (Some(true), Some(0.1)),
        "{name}: {marche}"
    );
    let note = document_text(&w, &id, "presentation").await;
    for needle in [
        "Valeur estimée du besoin HT\n150 000,00 €",
        "Date et heure limites de réception des offres\n22 octobre 2026 à 12 h 00",
    ] {
        assert!(note.contains(&french(needle)), "{name}: the note lacks « {needle} »: {note}");
    }
}

// A consultation launched before the platform recorded its offers deadline (NULL) keeps working:
// its award is checked against the open call's minimum délais from the launch, and the groupement
// says so in its `offers_deadline_warning`, before and after the award. The titulaire who renounced
// the avance has its box ticked and a DECP avance of 0.
backend_test!(a_legacy_consultation_without_an_offers_deadline_is_awarded_with_a_warning);
async fn a_legacy_consultation_without_an_offers_deadline_is_awarded_with_a_warning(db: crate::common::TestDb) {
    let name = db.name;
    let (w, id) = launched_on_15_october(&db).await;
    common::execute(&w.store, "UPDATE groupements SET offers_deadline_at = NULL WHERE id = $1", &[&id]).await;
    let (_, g) = send(w.coord.get(api(&format!("/groupements/{id}")))).await;
    let warning = g["offers_deadline_warning"].as_str().unwrap_or_default();
    assert!(warning.starts_with("Aucune date limite de réception des offres n'est enregistrée"), "{name}: {g}");
    let rc = document_text(&w, &id, "rc").await;
    assert!(rc.contains("fixées au lancement de la consultation, au moins trente-cinq jours"), "{name}: {rc}");
    // Launched on 15 October: the offers deadline's rule (30 full days, 15 November at the
    // earliest) and 11 days of standstill, 26 November.
    let later = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    let award_url = api(&format!("/groupements/{id}/award"));
    let (status, problem) = send(w.coord.to(&later).post(&award_url).json(&award_notified_on("2026-11-25"))).await;
    let said = only_error(&problem, status, "notified_on", name);
    assert!(said.contains("avant le 26 novembre 2026") && said.contains("au moins 30 jours francs"), "{name}: {said}");
    let (status, g) = send(w.coord.to(&later).post(&award_url).json(&award_notified_on("2026-11-26"))).await;
    assert_eq!((status, g["status"].as_str()), (200, Some("awarded")), "{name}: {g}");
    let warning = g["offers_deadline_warning"].as_str().unwrap_or_default();
    assert!(warning.contains("l'attribution n'a été contrôlée que sur les délais minimaux"), "{name}: {g}");
    let ae = document_text(&w, &id, "ae").await;
    let flat = ae.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("☒ le titulaire renonce au bénéfice de l'avance ;"), "{name}: {flat}");
    let (_, decp) = send(w.coord.to(&later).get(api(&format!("/groupements/{id}/decp")))).await;
    let marche = &decp["marches"]["marche"][0];
    assert_eq!(
        (marche["attributionAvance"].as_bool(), marche["tauxAvance"].as_f64()),
        (Some(false), Some(0.0)),
        "{name}: {marche}"
    );
}

/// `text` with its runs of spaces (no-break ones and line breaks included) as single spaces.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The DQE of the groupement `id`'s accepted members over 36 months: its account-years and set-ups (whole).
async fn dqe_over_36_months(w: &World, id: &str) -> (i64, i64) {
    let (status, members) = send(w.coord.get(api(&format!("/groupements/{id}/members")))).await;
    assert_eq!(status, 200, "{members}");
    let (mut accounts, mut schools) = (0, 0);
    for m in members.as_array().unwrap() {
        let q = &m["quantities"];
        let n = |f: &str| q[f].as_i64().unwrap();
        accounts += n("pupils") + n("teacher_accounts") + n("parent_accounts");
        schools += n("schools");
    }
    (accounts * 3, schools)
}

/// A whole quantity raised by `percent`, rounded up to the unit.
fn raised(n: i64, percent: i64) -> i64 {
    (n * (100 + percent) + 99) / 100
}

// G2 (domain review 38): the coordinator sets, before the launch, a margin on the accord-cadre's
// maximum (0 to 100 %, else 422 on its field, nothing changed); the CCAP's article 2, the RC's
// article 4 and the AE print the DQE's quantities raised by it (rounded up to the unit), the DQE
// staying the basis of the comparison of the offers; the margin is frozen from the launch (409);
// the award takes the maximum at the titulaire's prices — the DQE's amount refused, naming the
// maximum — and the DECP publishes it as its `montant`.
backend_test!(a_margin_raises_the_accord_cadres_maximum_in_the_pieces_the_award_and_the_decp);
async fn a_margin_raises_the_accord_cadres_maximum_in_the_pieces_the_award_and_the_decp(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let mut body = minimal_groupement(&w, "2026-09-30");
    body["maximum_margin_percent"] = json!(101);
    let (status, problem) = send(w.coord.post(api("/groupements")).json(&body)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["maximum_margin_percent".to_string()]), "{name}: {problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("de 0 à 100 %"), "{name}: {problem}");

    let (id, _) = signed_groupement(&w, &signing, None).await;
    let url = api(&format!("/groupements/{id}"));
    let (_, g) = send(w.coord.get(&url)).await;
    assert_eq!(g["maximum_margin_percent"], 0, "{name}: none by default: {g}");
    let if_match = |g: &Value| format!("\"{}\"", g["version"]);
    let (status, problem) =
        send(w.coord.patch(&url).header("if-match", if_match(&g)).json(&json!({ "maximum_margin_percent": 150 })))
            .await;
    assert_eq!((status, fields(&problem)), (422, vec!["maximum_margin_percent".to_string()]), "{name}: {problem}");
    let (status, g) =
        send(w.coord.patch(&url).header("if-match", if_match(&g)).json(&json!({ "maximum_margin_percent": 20 }))).await;
    assert_eq!((status, g["maximum_margin_percent"].as_i64()), (200, Some(20)), "{name}: {g}");

    let (dqe_years, dqe_schools) = dqe_over_36_months(&w, &id).await;
    assert!(dqe_years > 0 && dqe_schools > 0, "{name}: the member declares both");
    let (max_years, max_schools) = (raised(dqe_years, 20), raised(dqe_schools, 20));
    assert!(max_schools >= 2, "{name}");
    let q = |n: i64| entcp::groupements::costs::quantity(n * 100);
    let text = async |kind: &str| flat(&odt_text(&generated(&w, &id, kind, "odt").await));
    let ccap = text("ccap").await;
    for needle in [
        "égal aux quantités du détail quantitatif estimatif (annexe BPU/DQE), établies sur les besoins déclarés par les \
         membres lors de leur adhésion, majorées de 20 % pour tenir compte des écoles ouvertes ou rattachées et de \
         l'évolution des effectifs en cours d'exécution, et arrondies à l'unité supérieure"
            .to_string(),
        format!(
            "Abonnements annuels par compte ENT {} comptes × an sur 36 mois (détail quantitatif estimatif : {})",
            q(max_years),
            q(dqe_years)
        ),
        format!("Mises en service d'une école {} (détail quantitatif estimatif : {})", q(max_schools), q(dqe_schools)),
        "Lorsque ce maximum est atteint, l'accord-cadre a épuisé ses effets".to_string(),
    ] {
        assert!(ccap.contains(&flat(&french(&needle))), "{name}: the CCAP lacks « {needle} »: {ccap}");
    }
    let in_words = format!("{} comptes × an sur 36 mois et {} mises en service d'écoles", q(max_years), q(max_schools));
    let rc = text("rc").await;
    for needle in [
        format!(
            "Ce maximum est égal aux quantités du détail quantitatif estimatif (DQE) majorées de 20 %, pour tenir compte \
             des écoles ouvertes ou rattachées et de l'évolution des effectifs en cours d'exécution, et arrondies à \
             l'unité supérieure : {in_words}."
        ),
        "Le DQE, établi sur les quantités déclarées par les membres, reste la base du jugement des offres : ses \
         quantités et ses totaux ne sont pas majorés."
            .to_string(),
    ] {
        assert!(rc.contains(&flat(&french(&needle))), "{name}: the RC lacks « {needle} »: {rc}");
    }
    let ae = text("ae").await;
    let ae_max = format!(
        "Le maximum de l'accord-cadre (article 2 du CCAP) est égal aux quantités du DQE majorées de 20 % et arrondies à \
         l'unité supérieure : {in_words}."
    );
    assert!(ae.contains(&flat(&french(&ae_max))), "{name}: the AE lacks « {ae_max} »: {ae}");

    // Launched: frozen with the other terms.
    launch_consultation(&w.coord.to(&signing), &id, name).await;
    let (_, g) = send(w.coord.get(&url)).await;
    let (status, problem) =
        send(w.coord.patch(&url).header("if-match", if_match(&g)).json(&json!({ "maximum_margin_percent": 30 }))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    let (_, g) = send(w.coord.get(&url)).await;
    assert_eq!(g["maximum_margin_percent"], 20, "{name}: {g}");

    // The award: 4,50 € an account-year, 350 € a set-up (the test body's prices).
    let (dqe_ht, max_ht) = (dqe_years * 450 + dqe_schools * 35_000, max_years * 450 + max_schools * 35_000);
    let vat = |ht: i64| (ht * 20 + 50) / 100;
    let later = TestApp::over(&w.store).clock(clock_on(2026, 11, 30)).build().await;
    let coord = w.coord.to(&later);
    let award_url = api(&format!("/groupements/{id}/award"));
    let mut at_dqe = award_notified_on("2026-11-30");
    at_dqe["amount_ht_cents"] = json!(dqe_ht);
    let (status, problem) = send(coord.post(&award_url).json(&at_dqe)).await;
    assert_eq!((status, fields(&problem)), (422, vec!["amount_ht_cents".to_string()]), "{name}: {problem}");
    let said = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        said.contains("(les quantités du DQE majorées de 20 %)") && said.contains(&euros_fr(max_ht)),
        "{name}: {said}"
    );
    let mut at_maximum = award_notified_on("2026-11-30");
    at_maximum["amount_ht_cents"] = json!(max_ht);
    let (status, g) = send(coord.post(&award_url).json(&at_maximum)).await;
    assert_eq!(status, 200, "{name}: {g}");
    assert_eq!(g["award"]["amount_ht_cents"].as_i64(), Some(max_ht), "{name}: {g}");
    assert_eq!(g["award"]["amount_ttc_cents"].as_i64(), Some(max_ht + vat(max_ht)), "{name}: {g}");
    let (status, decp) = send(coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 200, "{name}: {decp}");
    assert_eq!(decp["marches"]["marche"][0]["montant"].as_f64(), Some(max_ht as f64 / 100.0), "{name}: {decp}");

    let ccap = text("ccap").await;
    let valued = format!("Montant maximum HT aux prix unitaires du titulaire {}", euros_fr(max_ht));
    assert!(ccap.contains(&flat(&french(&valued))), "{name}: the CCAP lacks « {valued} »: {ccap}");
    let ae = text("ae").await;
    for needle in [
        format!("Montant du DQE HT aux prix unitaires du titulaire {}", euros_in_letters(dqe_ht, "hors taxes")),
        format!(
            "Montant maximum HT de l'accord-cadre aux prix unitaires du titulaire {}",
            euros_in_letters(max_ht, "hors taxes")
        ),
        format!(
            "Montant maximum TTC de l'accord-cadre aux prix unitaires du titulaire {}",
            euros_in_letters(max_ht + vat(max_ht), "toutes taxes comprises")
        ),
    ] {
        assert!(ae.contains(&flat(&french(&needle))), "{name}: the awarded AE lacks « {needle} »: {ae}");
    }
}

// A procédure adaptée concludes no accord-cadre whose maximum reaches the threshold of the
// formalised procedures (its value, article R. 2121-8): the estimate's refusal says it covers the
// maximum raised by the margin, and at award, the maximum at the titulaire's prices — the DQE's
// doubled by a 100 % margin — reaching 216 000 € HT is refused (422 on `amount_ht_cents`, nothing
// awarded) though the DQE's own amount stays below; one cent a line less, it is awarded.
backend_test!(a_procedure_adaptee_whose_maximum_reaches_the_threshold_is_refused_at_award);
async fn a_procedure_adaptee_whose_maximum_reaches_the_threshold_is_refused_at_award(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    let url = api(&format!("/groupements/{id}"));
    let (_, g) = send(w.coord.get(&url)).await;
    let version = format!("\"{}\"", g["version"]);
    let unestimated = json!({ "procedure": "procedure_adaptee", "maximum_margin_percent": 100 });
    let (status, problem) = send(w.coord.patch(&url).header("if-match", &version).json(&unestimated)).await;
    assert_eq!(status, 422, "{name}: {problem}");
    assert!(
        problem["errors"]
            .to_string()
            .contains("jusqu'au maximum de l'accord-cadre : les quantités déclarées majorées de 100 %"),
        "{name}: {problem}"
    );
    let adapted = json!({ "procedure": "procedure_adaptee", "maximum_margin_percent": 100, "estimated_amount_ht_cents": 15_000_000 });
    let (status, g) = send(w.coord.patch(&url).header("if-match", &version).json(&adapted)).await;
    assert_eq!((status, g["maximum_margin_percent"].as_i64()), (200, Some(100)), "{name}: {g}");
    // Launched on 15 October, offers until the next day: notified on the 17th, after the deadline.
    launch_until(&w.coord.to(&signing), &id, "2026-10-16T12:00", name).await;

    let (dqe_years, _) = dqe_over_36_months(&w, &id).await;
    let threshold = 21_600_000;
    // An account-year price carrying the maximum (twice the DQE's) to the threshold; set-ups free.
    let price = (threshold + 2 * dqe_years - 1) / (2 * dqe_years);
    assert!(price * dqe_years < threshold && price * 2 * dqe_years >= threshold, "{name}: the DQE stays below");
    let body = |price: i64| {
        let mut body = award_notified_on("2026-10-17");
        body["decp"].as_object_mut().unwrap().remove("procedure");
        body["unit_prices"] = json!([
            { "lot": 1, "line": "account_year", "unit_price_ht_cents": price },
            { "lot": 1, "line": "school_setup", "unit_price_ht_cents": 0 }
        ]);
        body
    };
    let notifying = TestApp::over(&w.store).clock(clock_on(2026, 10, 17)).build().await;
    let coord = w.coord.to(&notifying);
    let award_url = api(&format!("/groupements/{id}/award"));
    let (status, problem) = send(coord.post(&award_url).json(&body(price))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["amount_ht_cents".to_string()]), "{name}: {problem}");
    let said = problem["errors"][0]["message"].as_str().unwrap();
    for needle in [
        format!("le maximum de l'accord-cadre aux prix unitaires du titulaire, {} HT", euros_fr(price * 2 * dqe_years)),
        "les quantités du DQE majorées de 100 %".to_string(),
        "atteint le seuil des procédures formalisées pour les marchés de fournitures et de services des pouvoirs \
         adjudicateurs autres que les autorités publiques centrales"
            .to_string(),
        "216\u{a0}000,00\u{a0}€ HT pour une consultation lancée à compter du 1er janvier 2026".to_string(),
        "article R. 2121-8".to_string(),
    ] {
        assert!(said.contains(&needle), "{name}: « {needle} » in {said}");
    }
    let (_, still) = send(w.coord.get(&url)).await;
    assert_eq!(still["status"], "consultation", "{name}: nothing awarded");
    let (status, g) = send(coord.post(&award_url).json(&body(price - 1))).await;
    assert_eq!(status, 200, "{name}: {g}");
    assert_eq!(g["award"]["amount_ht_cents"].as_i64(), Some((price - 1) * 2 * dqe_years), "{name}: {g}");
}

/// The `sans_suite` notices of groupement `reference`: (context, recipients).
async fn sans_suite_notices(w: &World, reference: &str) -> Vec<(Value, Vec<String>)> {
    let notices = common::queued_notices(&w.store, "groupement").await;
    notices
        .into_iter()
        .filter(|n| n.context["event"] == "sans_suite" && n.context["reference"] == reference)
        .map(|n| (n.context, n.recipients))
        .collect()
}

// R. 2185-1 and R. 2185-2: the coordinator declares the consultation sans suite (If-Match; a
// known motif and a printable justification, each refused on its field), its members are told
// in French (the groupement, the motif, the day), the groupement goes back to `closed` with its
// launch and offers deadline kept in the declaration; nothing is awarded nor published from it
// (409), it is not declared twice, and a new consultation is launched with a new deadline.
backend_test!(a_consultation_declared_sans_suite_goes_back_to_closed_tells_the_members_and_is_relaunched);
async fn a_consultation_declared_sans_suite_goes_back_to_closed_tells_the_members_and_is_relaunched(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (id, _) = signed_groupement(&w, &signing, None).await;
    let coord = w.coord.to(&signing);
    launch_until(&coord, &id, "2026-11-20T12:00", name).await;
    let url = api(&format!("/groupements/{id}"));
    let declare = api(&format!("/groupements/{id}/sans-suite"));
    let (_, g) = send(coord.get(&url)).await;
    let reference = g["reference"].as_str().unwrap().to_string();
    let version = format!("\"{}\"", g["version"]);
    let body = json!({ "motif": "infructuosite", "justification": "Aucune offre reçue à la date limite." });
    // The first consultation's RC, with its deadline.
    let docs = api(&format!("/groupements/{id}/documents"));
    let (status, first_rc) = send(coord.post(&docs).json(&json!({ "kind": "rc" }))).await;
    assert_eq!(status, 201, "{name}: {first_rc}");

    let (status, problem) = send(coord.post(&declare).json(&body)).await;
    assert_eq!(status, 428, "{name}: If-Match required: {problem}");
    let (status, problem) = send(coord.post(&declare).header("if-match", "\"1\"").json(&body)).await;
    assert_eq!(status, 412, "{name}: a stale version: {problem}");
    let (status, problem) =
        send(w.communes[0].1.to(&signing).post(&declare).header("if-match", &version).json(&body)).await;
    assert_eq!(status, 403, "{name}: a member does not declare it: {problem}");
    let bad = json!({ "motif": "caprice", "justification": "  " });
    let (status, problem) = send(coord.post(&declare).header("if-match", &version).json(&bad)).await;
    assert_eq!(
        (status, fields(&problem)),
        (422, vec!["motif".to_string(), "justification".to_string()]),
        "{name}: {problem}"
    );
    assert!(
        problem["errors"][0]["message"].as_str().unwrap().contains("infructuosite, interet_general"),
        "{name}: {problem}"
    );
    let hostile = json!({ "motif": "interet_general", "justification": "Budget \u{202e}épuisé" });
    let (status, problem) = send(coord.post(&declare).header("if-match", &version).json(&hostile)).await;
    // Refused as every body's control character is (the domain refuses it too, for the console and the CLI).
    assert_eq!(status, 422, "{name}: {problem}");
    assert!(fields(&problem).iter().all(|f| f.ends_with("justification")), "{name}: {problem}");
    let (_, still) = send(coord.get(&url)).await;
    assert_eq!(
        (still["status"].as_str(), still["version"].clone()),
        (Some("consultation"), g["version"].clone()),
        "{name}"
    );
    assert!(sans_suite_notices(&w, &reference).await.is_empty(), "{name}: nobody told of a refusal");

    let (status, closed) = send(coord.post(&declare).header("if-match", &version).json(&body)).await;
    assert_eq!(status, 200, "{name}: {closed}");
    assert_eq!(closed["status"], "closed", "{name}: {closed}");
    let record = &closed["sans_suite"];
    assert_eq!(
        (record["motif"].as_str(), record["declared_on"].as_str()),
        (Some("infructuosite"), Some("2026-10-15")),
        "{name}: {record}"
    );
    assert_eq!(record["offers_deadline_at"], "2026-11-20T11:00:00Z", "{name}: {record}");
    assert!(record["consultation_launched_at"].is_string(), "{name}: {record}");
    assert!(
        closed.get("offers_deadline_at").is_none() && closed.get("consultation_launched_at").is_none(),
        "{name}: {closed}"
    );
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT summary FROM audit_log WHERE action = 'groupements.sans_suite' AND target_id = $1")
            .bind(&id)
            .fetch_all(w.store.pool())
            .await
            .unwrap();
    assert_eq!(audited.len(), 1, "{name}");
    assert!(audited[0].contains("infructuosite") && audited[0].contains("Aucune offre reçue"), "{name}: {audited:?}");

    let notices = sans_suite_notices(&w, &reference).await;
    assert_eq!(notices.len(), 1, "{name}: one notice");
    let (context, recipients) = &notices[0];
    let member = format!("mairie{}@test.fr", w.communes[0].0.code);
    assert!(
        recipients.contains(&"coord@sm94.fr".to_string()) && recipients.contains(&member),
        "{name}: {recipients:?}"
    );
    let mail = entcp::notify::mailer::render("groupement", context).unwrap();
    assert_eq!(mail.subject, format!("Consultation déclarée sans suite : groupement {reference}"), "{name}");
    for needle in [
        format!("La consultation du groupement de commandes {reference} « "),
        ", lancée le 15 octobre 2026, a été déclarée sans suite le 15 octobre 2026 par son coordonnateur, le Syndicat \
         mixte"
            .to_string(),
        "pour le motif suivant : procédure infructueuse : aucune offre".to_string(),
        "Justification : Aucune offre reçue à la date limite.".to_string(),
        "Aucun marché n'est attribué au titre de cette consultation.".to_string(),
    ] {
        assert!(mail.text.contains(&needle), "{name}: « {needle} » in {}", mail.text);
    }

    // Nothing is awarded nor published from it; it is not declared twice.
    let award_url = api(&format!("/groupements/{id}/award"));
    let (status, problem) = send(coord.post(&award_url).json(&award_notified_on("2026-10-15"))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert_eq!(problem["title"], "Conflit avec l'état actuel", "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("a été déclarée sans suite le 15 octobre 2026")
            && detail.contains("aucun marché ne s'attribue"),
        "{name}: {detail}"
    );
    let (status, problem) = send(coord.get(api(&format!("/groupements/{id}/decp")))).await;
    assert_eq!(status, 409, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("déclarée sans suite"), "{name}: {problem}");
    let again = format!("\"{}\"", closed["version"]);
    let (status, problem) = send(coord.post(&declare).header("if-match", &again).json(&body)).await;
    assert_eq!(status, 409, "{name}: {problem}");

    // Relaunched: a new consultation with a new offers deadline; the declaration stays on record.
    let (status, relaunched) = send(
        coord.post(api(&format!("/groupements/{id}/transition"))).json(&moving_to("consultation", "2026-11-30T12:00")),
    )
    .await;
    assert_eq!(status, 200, "{name}: {relaunched}");
    assert_eq!(relaunched["offers_deadline_at"], "2026-11-30T11:00:00Z", "{name}: {relaunched}");
    assert_eq!(relaunched["sans_suite"]["motif"], "infructuosite", "{name}: {relaunched}");
    // The abandoned consultation's RC is marked as such, no longer current; the relaunch made its
    // own RC and AE, with the new deadline.
    let (_, versions) = send(coord.get(&docs)).await;
    let versions = versions.as_array().unwrap();
    let first = versions.iter().find(|d| d["id"] == first_rc["id"]).unwrap();
    assert_eq!(first["abandoned"], "consultation déclarée sans suite le 15 octobre 2026", "{name}: {first}");
    let mut current = Vec::new();
    for kind in ["rc", "ae"] {
        let of_kind: Vec<&Value> = versions.iter().filter(|d| d["kind"] == kind && d["abandoned"].is_null()).collect();
        assert_eq!(of_kind.len(), 1, "{name}: one current {kind}: {versions:?}");
        current.push(of_kind[0]["id"].as_str().unwrap().to_string());
    }
    let rc = odt_text(&coord.get(format!("{docs}/{}?format=odt", current[0])).send().await.bytes);
    assert!(
        rc.contains(&french("30 novembre 2026 à 12 h 00")) && !rc.contains("20 novembre 2026 à 12"),
        "{name}: {rc}"
    );
    // Generated again unchanged, the relaunch's RC is given back, never the abandoned one.
    let (status, again) = send(coord.post(&docs).json(&json!({ "kind": "rc" }))).await;
    assert!((200..300).contains(&status) && again["id"] == current[0].as_str(), "{name}: {again}");
}

/// An `EntTenant` document of `org`'s ENT `slug` (bouquet `socle-1d`), its éditeur `vendor` when given.
fn tenant_doc(org: &Org, slug: &str, vendor: Option<&str>) -> Value {
    let mut doc = json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
        "spec": { "organisation": org.id, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" }
    });
    if let Some(vendor) = vendor {
        doc["spec"]["vendor"] = json!(vendor);
    }
    doc
}

// A member's ENT requested after the award (domain review 42, F3): created without an éditeur,
// it takes the titulaire of the accord-cadre, which is then its N3, and the answer says so,
// naming the accord-cadre; one naming another éditeur keeps it, warned that the member is bound.
// A commune outside the groupement gets neither.
backend_test!(a_members_tenant_created_after_the_award_takes_the_titulaire_as_its_editeur);
async fn a_members_tenant_created_after_the_award_takes_the_titulaire_as_its_editeur(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (_, g) = awarded_on_30_november(&w, &signing, &[0], name).await;
    let reference = g["reference"].as_str().unwrap();
    let later = TestApp::over(&w.store).clock(clock_on(2026, 12, 7)).build().await;
    let (member, client) = &w.communes[0];
    let client = client.to(&later);

    let (status, created) = send(client.post("/api/v1/tenants").json(&tenant_doc(member, "ent-membre", None))).await;
    assert_eq!(status, 201, "{name}: {created}");
    assert_eq!(created["tenant"]["vendor"]["name"], "ENT Éditions SAS", "{name}: {created}");
    let warnings: Vec<&str> = created["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let said = format!("Éditeur : ENT Éditions SAS, titulaire de l'accord-cadre {reference}, en cours jusqu'au ");
    assert!(warnings.iter().any(|w| w.starts_with(&said)), "{name}: « {said} » in {warnings:?}");
    let admin = w.admin().await;
    let (status, contract) = send(admin.get("/api/v1/support/tenants/ent-membre/contract")).await;
    assert_eq!(status, 200, "{name}: {contract}");
    assert_eq!(contract["n3"]["name"], "ENT Éditions SAS", "{name}: the titulaire is its N3: {contract}");

    let other = new_org(&w.store, OrgKind::Editeur, "Autre Éditeur SAS", &luhn("83456789"), None).await;
    let named = format!("editeur:{}", other.code);
    let doc = tenant_doc(member, "ent-autre", Some(&named));
    let (status, created) = send(client.post("/api/v1/tenants").json(&doc)).await;
    assert_eq!(status, 201, "{name}: {created}");
    assert_eq!(created["tenant"]["vendor"]["name"], "Autre Éditeur SAS", "{name}: the éditeur named is kept");
    let warning = created["warnings"][0].as_str().unwrap_or_default();
    let said = format!("L'éditeur indiqué, Autre Éditeur SAS, n'est pas le titulaire de l'accord-cadre {reference}");
    assert!(warning.starts_with(&said), "{name}: « {said} » in {created}");

    let (outsider, outsider_client) = (&w.communes[1].0, w.communes[1].1.to(&later));
    let (status, created) =
        send(outsider_client.post("/api/v1/tenants").json(&tenant_doc(outsider, "ent-hors-marche", None))).await;
    assert_eq!(status, 201, "{name}: {created}");
    assert!(created["tenant"]["vendor"].is_null(), "{name}: no accord-cadre binds it: {created}");
    assert_eq!(created["warnings"], json!([]), "{name}: {created}");
}

// The console's tenant page shows what the API's creation answers of the accord-cadre (one
// rule, `tenants::market_notice`): a member's ENT requested in the console after the award takes
// the titulaire, and its page, right after the request, says so (a DSFR information alert); one
// naming another éditeur is warned (a warning alert); a commune outside the groupement gets none.
backend_test!(the_console_tenants_page_shows_the_accord_cadre_notice_of_its_editeur);
async fn the_console_tenants_page_shows_the_accord_cadre_notice_of_its_editeur(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (_, g) = awarded_on_30_november(&w, &signing, &[0], name).await;
    let reference = g["reference"].as_str().unwrap();
    let later = TestApp::over(&w.store).clock(clock_on(2026, 12, 7)).build().await;
    let (member, client) = &w.communes[0];
    let mairie = format!("mairie{}@test.fr", member.code);
    crate::console::with_password(&w.store, &mairie).await;
    let session = crate::console::sign_in(&later, &mairie).await;

    let fields = [
        ("organisation", member.id.as_str()),
        ("nom", "ent-console"),
        ("adresse", "ent-console.ent.example.fr"),
        ("bouquet", "socle-1d"),
    ];
    let requested = crate::console::post_form(&later, &session, "/ent/nouveau", &fields).await;
    assert_eq!(requested.header("location"), Some("/ent/ent-console?apres=demande"), "{name}: {}", requested.text);
    let page = crate::console::get(&later, &session, "/ent/ent-console?apres=demande").await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    let said =
        format!("Éditeur : ENT Éditions SAS, titulaire de l&#x27;accord-cadre {reference}, en cours jusqu&#x27;au ");
    assert!(page.text.contains(&said), "{name}: « {said} » in {}", page.text);
    assert!(
        page.text.contains("class=\"fr-alert fr-alert--info fr-mb-4w\" id=\"accord-cadre\""),
        "{name}: {}",
        page.text
    );
    // The API's answer for the same tenant says the same.
    let tenant = entcp::tenants::get_tenant(&w.store, "ent-console").await.unwrap().unwrap();
    let api = entcp::tenants::market_warnings(&w.store, &tenant, chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
    let api = api.await.unwrap();
    assert!(api[0].starts_with(&said.replace("&#x27;", "'")), "{name}: {api:?}");
    assert!(page.text.contains(&crate::console::escaped(&api[0])), "{name}: the page says the API's words");

    let other = new_org(&w.store, OrgKind::Editeur, "Autre Éditeur SAS", &luhn("83456789"), None).await;
    let doc = tenant_doc(member, "ent-autre", Some(&format!("editeur:{}", other.code)));
    let (status, created) = send(client.to(&later).post("/api/v1/tenants").json(&doc)).await;
    assert_eq!(status, 201, "{name}: {created}");
    let page = crate::console::get(&later, &session, "/ent/ent-autre").await;
    let said = format!(
        "L&#x27;éditeur indiqué, Autre Éditeur SAS, n&#x27;est pas le titulaire de l&#x27;accord-cadre {reference}"
    );
    assert!(page.text.contains(&said), "{name}: « {said} » in {}", page.text);
    assert!(page.text.contains("fr-alert--warning fr-mb-4w\" id=\"accord-cadre\""), "{name}: {}", page.text);

    let (outsider, outsider_client) = (&w.communes[1].0, w.communes[1].1.to(&later));
    let (status, _) = send(outsider_client.post("/api/v1/tenants").json(&tenant_doc(outsider, "ent-hors", None))).await;
    assert_eq!(status, 201, "{name}");
    let outsider_mairie = format!("mairie{}@test.fr", outsider.code);
    crate::console::with_password(&w.store, &outsider_mairie).await;
    let outsider_session = crate::console::sign_in(&later, &outsider_mairie).await;
    let page = crate::console::get(&later, &outsider_session, "/ent/ent-hors").await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    assert!(!page.text.contains("id=\"accord-cadre\""), "{name}: no accord-cadre binds it: {}", page.text);
}

// A convention a member drafts after the award (domain review 42, F4), its tenants naming no
// éditeur, names the titulaire among its sub-processors, citing the accord-cadre, in the API and
// in its annex; a draft of a commune outside the groupement still says « à compléter ».
backend_test!(a_members_draft_convention_after_the_award_names_the_titulaire_in_its_annex);
async fn a_members_draft_convention_after_the_award_names_the_titulaire_in_its_annex(db: crate::common::TestDb) {
    let name = db.name;
    let (w, signing) = world_signing_on_15_october(&db).await;
    let (_, g) = awarded_on_30_november(&w, &signing, &[0], name).await;
    let reference = g["reference"].as_str().unwrap();
    let admin = w.admin().await;
    for (i, member) in [(0, true), (1, false)] {
        let commune = &w.communes[i].0;
        let school = first_etablissement(&w, "commune_code = $1 AND degree = '1D'", commune).await;
        let body = common::fixtures::tripartite("academie:24", &commune.id, &school, "2027-01-04");
        let (status, draft) = send(admin.post("/api/v1/conventions").json(&body)).await;
        assert_eq!(status, 201, "{name}: {draft}");
        let listed: Vec<&str> =
            draft["subprocessors"].as_array().unwrap().iter().filter_map(|o| o["name"].as_str()).collect();
        let html = admin
            .get(api(&format!("/conventions/{}/document?format=html", draft["id"].as_str().unwrap())))
            .send()
            .await
            .text;
        let line = match member {
            true => {
                assert_eq!(listed, ["ENT Éditions SAS"], "{name}: {draft}");
                assert_eq!(draft["subprocessors_market"]["reference"], reference, "{name}: {draft}");
                format!(
                    "Sous-traitants ultérieurs : l'éditeur de la solution, ENT Éditions SAS, titulaire de \
                     l'accord-cadre {reference}, et l'hébergeur (à compléter)."
                )
            }
            false => {
                assert!(listed.is_empty(), "{name}: {draft}");
                "Sous-traitants ultérieurs : l'éditeur de la solution (à compléter) et l'hébergeur (à compléter)."
                    .into()
            }
        };
        let escaped = french(&line).replace('\'', "&#x27;");
        assert!(html.contains(&escaped), "{name}: « {line} » in {html}");
    }
}
