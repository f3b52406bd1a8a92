//! Conventions over HTTP, on SQLite and PostgreSQL: a full tripartite cycle for
//! a real école as three users, voided signatures, documents, the circuit's
//! refusals, bad input, and expiry reminders that reach a real SMTP server.

use crate::common;

use axum::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use common::app::{Client, Req};
use common::smtp::{smtp_sink_and_config, smtp_sink_available};
use common::TestApp;
use common::{t0, token_for};
use entcp::clock::{Clock, FixedClock};
use entcp::documents::typography::french;
use entcp::kernel::roles::Role;
use serde_json::{json, Value};
use std::sync::Arc;

mod edition10;
mod edition11;
mod edition12;
mod edition7;
mod edition8;
mod edition9;
mod termination_notice;
mod unchanged_edit;

struct Cycle {
    app: TestApp,
    clock: Arc<FixedClock>,
    dan: Client,
    mairie: Client,
    directeur: Client,
    /// Records a résiliation d'un commun accord (no party may alone).
    admin: Client,
    db: common::TestDb,
}

async fn import_sample(store: &entcp::store::Store) {
    common::import_sample(store).await;
}

async fn setup(db: common::TestDb) -> Cycle {
    import_sample(&db.store).await;
    let clock = Arc::new(FixedClock::new(t0()));
    let app = TestApp::over(&db.store).clock(clock.clone()).build().await;
    let dan = app.client(&token_for(&db.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await);
    let mairie = app.client(&token_for(&db.store, "ent@fresnes.fr", Role::Collectivite, Some("commune:94034")).await);
    let directeur =
        app.client(&token_for(&db.store, "ce.0940176f@ac-creteil.fr", Role::ChefEtablissement, Some("0940176F")).await);
    let admin = app.client(&token_for(&db.store, "root@test.fr", Role::Admin, None).await);
    Cycle { app, clock, dan, mairie, directeur, admin, db }
}

/// The délibération authorising the avenant `id` (`signatories.<party>` of a PATCH): its own number.
fn avenant_act(id: &str) -> Value {
    json!({ "act_number": format!("AV-{}", &id[id.len() - 8..]), "act_date": "2026-08-20" })
}

/// The `body` of `action`, a signature (`sign`) given by délégation unless it says `delegation`
/// ([`common::fixtures::by_delegation`]).
fn delegated(action: &str, body: Value) -> Value {
    match action {
        "sign" => common::fixtures::by_delegation(body),
        _ => body,
    }
}

async fn call(req: Req<'_>) -> (StatusCode, Value) {
    let resp = req.send().await;
    (StatusCode::from_u16(resp.status).unwrap(), resp.body)
}

/// The [`tripartite`] convention from `start` to `end`.
fn tripartite_until(start: &str, end: &str) -> Value {
    let mut body = tripartite(start);
    body["end_date"] = json!(end);
    body
}

/// 06:15 UTC on that day, the hour the tests run the daily job at.
fn day(y: i32, m: u32, d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 6, 15, 0).unwrap()
}

fn tripartite(start: &str) -> Value {
    common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": start,
        "parameters": { "accounts": 250 }
    }))
}

impl Cycle {
    fn url(&self, path: &str) -> String {
        format!("/api/v1/conventions{path}")
    }

    /// The DAN's creation of `tripartite("2026-09-01")` after `change`: the status and body answered.
    async fn create_changed(&self, change: impl FnOnce(&mut Value)) -> (StatusCode, Value) {
        let mut body = tripartite("2026-09-01");
        change(&mut body);
        call(self.dan.post(self.url("")).json(&body)).await
    }

    async fn create(&self, body: Value) -> Value {
        let (status, conv) = call(self.dan.post(self.url("")).json(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{conv}");
        conv
    }

    /// `who` posts `action` on the convention `id`. A signature (`sign`) is given by délégation
    /// unless `body` says `delegation` ([`common::fixtures::by_delegation`]): the kit's users are
    /// not the representatives its conventions name.
    async fn post(&self, who: &Client, id: &str, action: &str, body: Value) -> (StatusCode, Value) {
        call(who.post(self.url(&format!("/{id}/{action}"))).json(&delegated(action, body))).await
    }

    /// [`Cycle::post`] of a step that must succeed (200); answers the convention.
    async fn step_ok(&self, who: &Client, id: &str, action: &str, body: Value) -> Value {
        let (status, answer) = self.post(who, id, action, body).await;
        assert_eq!(status, StatusCode::OK, "{} {action}: {answer}", self.db.name);
        answer
    }

    /// Opens an avenant of the convention `id` as the DAN (201), drafted without the
    /// délibération that authorised the convention; the avenant's id.
    async fn drafted_avenant(&self, id: &str) -> String {
        let (s, avenant) = self.post(&self.dan, id, "amend", json!({})).await;
        assert_eq!(s, StatusCode::CREATED, "{}: {avenant}", self.db.name);
        avenant["id"].as_str().unwrap().to_string()
    }

    /// [`Cycle::drafted_avenant`], the commune giving the délibération authorising it
    /// ([`avenant_act`]); the avenant's id.
    async fn amended(&self, id: &str) -> String {
        let avenant = self.drafted_avenant(id).await;
        self.edit(&avenant, json!({ "signatories": { "collectivite": avenant_act(&avenant) } })).await;
        avenant
    }

    /// An avenant of the convention `id` [`Cycle::amended`], [`Cycle::ready_avenant`] and
    /// submitted by the DAN; its id.
    async fn submitted_avenant(&self, id: &str) -> String {
        let avenant = self.amended(id).await;
        self.ready_avenant(&avenant).await;
        self.step_ok(&self.dan, &avenant, "submit", json!({})).await;
        avenant
    }

    /// Makes the avenant `id` ([`Cycle::amended`]) ready for submission: it changes something
    /// (300 accounts).
    async fn ready_avenant(&self, id: &str) -> Value {
        self.edit(id, json!({ "parameters": { "accounts": 300 } })).await
    }

    /// Signs the submitted tripartite convention `id` as its three parties, in turn.
    async fn signed_by_all(&self, id: &str) {
        for who in [&self.directeur, &self.mairie, &self.dan] {
            self.step_ok(who, id, "sign", json!({})).await;
        }
    }

    /// Edits the convention as the DAN (If-Match of its current version); the edited convention.
    async fn edit(&self, id: &str, patch: Value) -> Value {
        let (_, current) = call(self.dan.get(self.url(&format!("/{id}")))).await;
        let version = current["version"].as_i64().unwrap();
        let req = self.dan.patch(self.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
        let (s, edited) = call(req.json(&patch)).await;
        assert_eq!(s, StatusCode::OK, "{edited}");
        edited
    }

    /// Mail queued to `to` with this event, from the outbox.
    async fn mails(&self, to: &str, event: &str) -> usize {
        let mails = crate::common::queued_mails(&self.db.store, "convention").await;
        mails.iter().filter(|m| m.recipients.contains(to) && m.context["event"] == event).count()
    }
}

// Security review 38, F2: an integer parameter is bounded (the model's bounds, else 0 to ten
// million), so that no negative notice, no notice of i64::MAX months and no absurd meeting
// frequency reaches the document the parties sign by hash; each is named on its own field.
backend_test!(out_of_range_integer_parameters_are_refused_each_on_its_field);
async fn out_of_range_integer_parameters_are_refused_each_on_its_field(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let (status, problem) = c
        .create_changed(|body| {
            body["parameters"] = json!({ "accounts": i64::MAX, "comite_pilotage_frequence": 999_999_999_999_i64,
                                         "preavis_resiliation_mois": -5 });
        })
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    let said = |field: &str| {
        problem["errors"].as_array().unwrap().iter().find(|e| e["field"] == field).map(|e| e["message"].to_string())
    };
    let nbsp = '\u{a0}';
    for (field, bounds) in [
        ("parameters.accounts", format!("de 0 à 10{nbsp}000{nbsp}000")),
        ("parameters.comite_pilotage_frequence", "de 1 à 12".to_string()),
        ("parameters.preavis_resiliation_mois", "de 1 à 24".to_string()),
    ] {
        let message = said(field).unwrap_or_else(|| panic!("{name}: nothing said on {field}: {problem}"));
        assert!(message.contains(&format!("attendu un entier {bounds}")), "{name}: {message}");
    }
    let count = common::count(&c.db.store, "SELECT COUNT(*) FROM conventions", &[]).await;
    assert_eq!(count, 0, "{name}: nothing drafted");
    let conv = c
        .create({
            let mut body = tripartite("2026-09-01");
            body["parameters"]["comite_pilotage_frequence"] = json!(12);
            body["parameters"]["preavis_resiliation_mois"] = json!(24);
            body
        })
        .await;
    let id = conv["id"].as_str().unwrap();
    let version = conv["version"].as_i64().unwrap();
    let req = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
    let (status, problem) = call(req.json(&json!({ "parameters": { "preavis_resiliation_mois": 0 } }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: an edit is bounded too: {problem}");
    let (_, kept) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(kept["parameters"]["preavis_resiliation_mois"], 24, "{name}: {kept}");
    // Security review 39, F3: the start given as a parameter was accepted and dropped, the
    // version bumped; it is said to go in `start_date`, and nothing changes.
    for start in ["not-a-date", "2026-10-01"] {
        let req = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
        let (status, problem) = call(req.json(&json!({ "parameters": { "start_date": start } }))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "parameters.start_date", "{name}: {problem}");
        assert!(problem.to_string().contains("champ start_date"), "{name}: {problem}");
    }
    let (_, kept) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!((kept["version"].as_i64(), &kept["start_date"]), (Some(version), &json!("2026-09-01")), "{name}");
}

backend_test!(a_tripartite_convention_goes_from_draft_to_active_signed_by_three_users);
async fn a_tripartite_convention_goes_from_draft_to_active_signed_by_three_users(db: crate::common::TestDb) {
    let c = setup(db).await;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    assert_eq!(conv["status"], "draft");
    assert_eq!(conv["schools"][0]["code"], "0940176F");
    assert!(conv["reference"].as_str().unwrap().starts_with("CONV-2026-"));
    assert_eq!(conv["end_date"], "2029-08-31", "36 months by default");

    let (s, body) = c.post(&c.directeur, &id, "sign", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "a draft is not signed: {body}");
    let (s, submitted) = c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{submitted}");
    assert_eq!(submitted["status"], "in_signature");
    let first_hash = submitted["document_hash"].as_str().unwrap().to_string();
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "submitted").await, 1);

    assert_eq!(c.mails("ent@fresnes.fr", "submitted").await, 1);
    let (s, _) = c.post(&c.directeur, &id, "sign", json!({ "document_hash": first_hash })).await;
    assert_eq!(s, StatusCode::OK);
    // A parallel circuit told every signatory at submission: one signature tells no one again.
    assert_eq!(c.mails("ent@fresnes.fr", "submitted").await, 1, "{}", c.db.name);
    let (s, body) = c.post(&c.directeur, &id, "sign", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "signing twice: {body}");
    let (s, body) = c.post(&c.directeur, &id, "sign", json!({ "party": "collectivite" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "signing for another party: {body}");

    // An edit in signature voids the collected signature and tells the signer.
    let edited = c.edit(&id, json!({ "parameters": { "accounts": 260 } })).await;
    let voided: Vec<&Value> =
        edited["steps"].as_array().unwrap().iter().filter(|s| !s["voided_at"].is_null()).collect();
    assert_eq!(voided.len(), 1);
    let new_hash = edited["document_hash"].as_str().unwrap().to_string();
    assert_ne!(new_hash, first_hash, "the edited text has another hash");
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "signatures_voided").await, 1);
    let (s, _) = c.post(&c.directeur, &id, "sign", json!({ "document_hash": first_hash })).await;
    assert_eq!(s, StatusCode::CONFLICT, "the old text can no longer be signed");

    for who in [&c.directeur, &c.mairie, &c.dan] {
        c.step_ok(who, &id, "sign", json!({ "document_hash": new_hash })).await;
    }
    let (_, active) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(active["status"], "active", "{}", c.db.name);
    assert_eq!(c.mails("ent@fresnes.fr", "active").await, 1);

    let html = c.dan.get(c.url(&format!("/{id}/document?format=html"))).send().await.text;
    assert!(html.contains(&new_hash), "the signature page shows the hash");
    assert!(html.contains("École élémentaire Robert Doisneau") && html.contains("Signatures"));
    let odt = c.dan.get(c.url(&format!("/{id}/document?format=odt"))).send().await;
    assert_eq!(odt.headers["content-type"], entcp::documents::ODT_MIME);
    let bytes = odt.bytes;
    assert_eq!(&bytes[30..38], b"mimetype", "the first zip entry is the mimetype");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut content = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("content.xml").unwrap(), &mut content).unwrap();
    assert!(content.contains(&new_hash));

    // The three parties see it; another commune does not.
    let other = user(&c, "ent@vitry.fr", Role::Collectivite, Some("commune:94081")).await;
    let (s, _) = call(other.get(c.url(&format!("/{id}")))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, listed) = call(other.get(c.url("?status=active"))).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    let (_, mine) = call(c.mairie.get(c.url("?status=active"))).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);

    let today = "2026-09-01";
    let covering =
        entcp::conventions::active_covering(&c.db.store, &load_models(), &org_id(&c, "0940176F").await, today)
            .await
            .unwrap();
    assert_eq!(covering.unwrap().id, id);
    let rgpd = entcp::conventions::rgpd_roles_for(&c.db.store, &load_models(), &org_id(&c, "0940176F").await, today)
        .await
        .unwrap()
        .unwrap();
    // #15: for an école the controller is the IA-DASEN (the DSDEN of its département), whoever signs for the académie.
    assert_eq!((rgpd.controller.kind.as_str(), rgpd.controller.code.as_str()), ("dsden", "94"));
}

fn load_models() -> Vec<entcp::conventions::model::ConventionModel> {
    entcp::conventions::model::load_models(None).unwrap()
}

async fn org_id(c: &Cycle, key: &str) -> String {
    entcp::registry::resolve_org(&c.db.store, key).await.unwrap().id
}

backend_test!(bad_conventions_get_precise_errors);
async fn bad_conventions_get_precise_errors(db: crate::common::TestDb) {
    let c = setup(db).await;
    let (s, p) = c.create_changed(|body| body["model"] = json!("tripartite-inconnue")).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("model")), "{p}");

    let (s, p) = c.create_changed(|body| body["parties"]["collectivite"] = json!("departement:94")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["errors"][0]["field"], "parties.collectivite", "{p}");

    let (s, p) = c.create_changed(|body| body["end_date"] = json!("2026-01-01")).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("end_date")), "{p}");

    let (s, p) = c.create_changed(|body| body["parties"]["collectivite"] = json!("commune:94081")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("périmètre"), "{p}");

    let shares = entcp::conventions::model::load_models(None).unwrap();
    let model = shares.iter().find(|m| m.id == "tripartite-premier-degre").unwrap();
    let param = model.cost_sharing.iter().find_map(|s| s.share_parameter.clone());
    let param = param.expect("the premier-degré model shares costs through a parameter");
    let (s, p) = c.create_changed(|body| body["parameters"][param] = json!(40)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("100 %"), "{p}");

    let conv = c.create(tripartite("2026-09-01")).await;
    let (s, _) = c.post(&c.dan, conv["id"].as_str().unwrap(), "submit", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, p) = call(c.dan.post(c.url("")).json(&tripartite("2027-01-01"))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("déjà couvert"), "{p}");

    let (s, p) = c.post(&c.mairie, conv["id"].as_str().unwrap(), "refuse", json!({ "comment": "\u{200b}" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a comment that shows nothing: {p}");
    let (s, refused) =
        c.post(&c.mairie, conv["id"].as_str().unwrap(), "refuse", json!({ "comment": "Montant à revoir" })).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(refused["status"], "draft");
    assert_eq!(refused["refusal_comment"], "Montant à revoir");
}

backend_test!(expiry_reminders_reach_the_smtp_server_on_the_right_days_and_the_convention_expires);
async fn expiry_reminders_reach_the_smtp_server_on_the_right_days_and_the_convention_expires(
    db: crate::common::TestDb,
) {
    if !smtp_sink_available() {
        return;
    }
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let models = load_models();
    let (_data, sink, mut config) = smtp_sink_and_config();
    config.console.public_url = "https://ent.ac-creteil.fr".into();
    let send = |at| {
        let store = c.db.store.clone();
        let config = config.clone();
        async move { entcp::notify::send_due(&store, &config, "test", &FixedClock::new(at)).await.unwrap() }
    };
    send(c.clock.now()).await;
    let before = sink.received().len();

    // End 2029-08-31: reminders on 2029-06-02 (90 days), 2029-08-01 (30), 2029-08-24 (7).
    let expected =
        [(day(2029, 6, 1), 0), (day(2029, 6, 2), 1), (day(2029, 6, 3), 0), (day(2029, 8, 1), 1), (day(2029, 8, 24), 1)];
    for (at, reminders) in expected {
        let report = entcp::conventions::jobs::daily(&c.db.store, &models, at).await.unwrap();
        assert_eq!(report.reminders, reminders, "{}: on {at}", c.db.name);
        send(at).await;
    }
    let received = sink.deliveries();
    // Subjects and bodies are MIME-encoded (accents): count the messages instead.
    let reminders = &received[before..];
    let signers = ["dan@ac-creteil.fr", "ent@fresnes.fr", "ce.0940176f@ac-creteil.fr"];
    assert_eq!(reminders.len(), 3 * signers.len(), "each reminder in a mail to each signer alone");
    for who in signers {
        let to_them = reminders.iter().filter(|m| m.addressees() == [format!("To: {who}")]);
        assert_eq!(to_them.count(), 3, "{who} is reminded three times, in mails to them alone");
    }
    assert!(reminders.iter().all(|m| m.rcpt_to.len() == 1), "{}: one recipient each", c.db.name);
    let page = format!("Ouvrir dans le plan de contrôle ENT : https://ent.ac-creteil.fr/conventions/{id}\n");
    for m in reminders {
        assert!(common::smtp::decoded(&m.raw).contains(&page), "{}: the reminder links the convention", c.db.name);
    }
    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 9, 1)).await.unwrap();
    assert_eq!(report.expired, 1);
    let (_, expired) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(expired["status"], "expired");
    send(day(2029, 9, 1) + Duration::minutes(1)).await;
    assert_eq!(sink.received().len(), before + 4 * signers.len(), "the expiry notice is sent to each signer");
}

/// A collège of the synthetic country, with its académie and département.
pub(crate) async fn college_world(store: &entcp::store::Store) -> (String, String, String) {
    common::fixtures::synthetic_annuaire(store, 800, 120, 9).await;
    let filter =
        entcp::registry::queries::OrgFilter { etab_type: Some("college".into()), limit: Some(1), ..Default::default() };
    let college = entcp::registry::queries::list_orgs(store, &filter, None).await.unwrap().items.remove(0);
    (
        format!("academie:{}", college.academie_code.unwrap()),
        format!("departement:{}", college.departement_code.unwrap()),
        college.code,
    )
}

/// A draft tripartite second-degré convention of (académie, département, collège), created by `dan`; its id.
async fn second_degre_draft(dan: &Client, [academie, departement, college]: [&str; 3]) -> String {
    let body = common::fixtures::with_signatories(json!({
        "model": "tripartite-second-degre",
        "parties": { "academie": academie, "collectivite": departement, "etablissement": college },
        "start_date": "2026-09-01"
    }));
    let (s, conv) = call(dan.post("/api/v1/conventions").json(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{conv}");
    conv["id"].as_str().unwrap().to_string()
}

backend_test!(the_second_degre_circuit_takes_a_visa_then_ordered_signatures_and_avenants_replace_the_text);
async fn the_second_degre_circuit_takes_a_visa_then_ordered_signatures_and_avenants_replace_the_text(
    db: crate::common::TestDb,
) {
    let (academie, departement, college) = college_world(&db.store).await;
    let clock = Arc::new(FixedClock::new(t0()));
    let app = TestApp::over(&db.store).clock(clock.clone()).build().await;
    let dan = app.client(&token_for(&db.store, "dan@ac.fr", Role::Dan, Some(&academie)).await);
    let cd = app.client(&token_for(&db.store, "ent@departement.fr", Role::Collectivite, Some(&departement)).await);
    let chef = app.client(&token_for(&db.store, "principal@college.fr", Role::ChefEtablissement, Some(&college)).await);
    // #15: the legal visa and the académie's signature are two persons' acts.
    let juriste = app.client(&token_for(&db.store, "juridique@ac.fr", Role::Dan, Some(&academie)).await);
    let url = |path: &str| format!("/api/v1/conventions{path}");
    let id = second_degre_draft(&dan, [&academie, &departement, &college]).await;
    let post = |who: &Client, action: &str, body: Value| {
        who.post(url(&format!("/{id}/{action}"))).json(&delegated(action, body))
    };
    assert_eq!(call(post(&dan, "submit", json!({}))).await.0, StatusCode::OK);

    let (s, p) = call(post(&dan, "sign", json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "the visa comes first: {p}");
    let (s, p) = call(post(&juriste, "visa", json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let (s, p) = call(post(&chef, "sign", json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "ordered: the académie signs first: {p}");
    for who in [&dan, &cd, &chef] {
        let (s, p) = call(post(who, "sign", json!({}))).await;
        assert_eq!(s, StatusCode::OK, "{p}");
    }
    let (_, active) = call(dan.get(url(&format!("/{id}")))).await;
    assert_eq!(active["status"], "active", "{}", db.name);
    // Each is told once that it is their turn: the académie (visa or signature) at submission,
    // the département after the académie's signature, the collège after the département's.
    let mails = crate::common::queued_mails(&db.store, "convention").await;
    for to in ["dan@ac.fr", "juridique@ac.fr", "ent@departement.fr", "principal@college.fr"] {
        let told = mails.iter().filter(|m| m.recipients.contains(to) && m.context["event"] == "submitted").count();
        assert_eq!(told, 1, "{}: {to}", db.name);
    }
    let audit = entcp::audit::list(
        &db.store,
        &entcp::audit::AuditFilter { target_id: Some(id.clone()), limit: Some(50), ..Default::default() },
        None,
    )
    .await
    .unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|r| r.action.as_str()).collect();
    for step in
        ["conventions.create", "conventions.submit", "conventions.visa", "conventions.sign", "conventions.activate"]
    {
        assert!(actions.contains(&step), "{step} not audited: {actions:?}");
    }

    // An avenant changes a parameter; once signed it is the active text and the original is kept, amended.
    let (s, avenant) = call(post(&dan, "amend", json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{avenant}");
    let avenant_id = avenant["id"].as_str().unwrap().to_string();
    assert_eq!(avenant["amends_id"], id.as_str());
    let (s, p) = call(post(&dan, "amend", json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "one avenant at a time: {p}");
    let av = |path: &str| url(&format!("/{avenant_id}{path}"));
    let version = avenant["version"].as_i64().unwrap();
    let (s, p) = call(dan.patch(av("")).header("if-match", format!("\"{version}\"")).json(
        &json!({ "parameters": { "comite_pilotage_frequence": 2 },
                           "signatories": { "collectivite": avenant_act(&avenant_id),
                                            "etablissement": avenant_act(&avenant_id) } }),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        call(dan.post(av("/submit")).json(&json!({}))).await.0,
        StatusCode::OK,
        "the original's dates do not block its avenant"
    );
    assert_eq!(call(juriste.post(av("/visa")).json(&json!({}))).await.0, StatusCode::OK);
    for who in [&dan, &cd, &chef] {
        let (s, p) = call(who.post(av("/sign")).json(&delegated("sign", json!({})))).await;
        assert_eq!(s, StatusCode::OK, "{p}");
    }
    let (_, original) = call(dan.get(url(&format!("/{id}")))).await;
    assert_eq!(original["status"], "amended");
    let (_, current) = call(dan.get(av(""))).await;
    assert_eq!(current["status"], "active");

    // Termination by a party, with a reason, for the end of the school year: in force until then.
    let (s, p) = call(
        cd.post(av("/terminate")).json(&json!({ "reason": "Changement de solution", "effective_date": "2027-06-30" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["status"], "active");
    assert_eq!(p["termination_effective"], "2027-06-30");
    let on = Utc.with_ymd_and_hms(2027, 6, 30, 4, 15, 0).unwrap();
    let report = entcp::conventions::jobs::daily(&db.store, &load_models(), on).await.unwrap();
    assert_eq!(report.terminated, 1, "{}", db.name);
    let (_, ended) = call(dan.get(av(""))).await;
    assert_eq!(ended["status"], "terminated");
}

backend_test!(a_signature_waiting_more_than_a_week_is_chased_once_a_week);
async fn a_signature_waiting_more_than_a_week_is_chased_once_a_week(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = submitted(&c).await;
    c.post(&c.dan, &id, "sign", json!({})).await;
    c.post(&c.mairie, &id, "sign", json!({})).await;
    let models = load_models();
    let daily = |days| entcp::conventions::jobs::daily(&c.db.store, &models, t0() + Duration::days(days));
    assert_eq!(daily(3).await.unwrap().reminders, 0, "{}", c.db.name);
    assert_eq!(daily(8).await.unwrap().reminders, 1);
    assert_eq!(daily(9).await.unwrap().reminders, 0, "not every day");
    assert_eq!(daily(15).await.unwrap().reminders, 1, "again the next week");
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "signature_pending").await, 2);
    assert_eq!(c.mails("ent@fresnes.fr", "signature_pending").await, 0, "the commune has signed");
}

#[tokio::test]
async fn the_signed_hash_is_the_hash_of_the_body_as_it_reads_once_active() {
    let c = setup(common::sqlite().await).await;
    let id = submitted(&c).await;
    for who in [&c.directeur, &c.mairie, &c.dan] {
        c.post(who, &id, "sign", json!({})).await;
    }
    let (active, recomputed) = rederived(&c, &id).await;
    assert_eq!(active.status, entcp::conventions::Status::Active);
    assert_eq!(Some(recomputed), active.document_hash, "anyone can re-derive the signed hash from the active text");
}

#[tokio::test]
async fn a_signed_copy_larger_than_json_bodies_is_stored_with_its_hash() {
    let c = setup(common::sqlite().await).await;
    let id = submitted(&c).await;
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(3 * 1024 * 1024, b' ');
    let expected = entcp::documents::sha256_hex(&pdf);
    let resp = c
        .mairie
        .post(c.url(&format!("/{id}/signed-copies?name=convention-signee.pdf")))
        .header("content-type", "application/pdf")
        .body(pdf)
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let body: Value = resp.body;
    assert_eq!(body["signed_files"][0]["sha256"], expected.as_str());
    assert_eq!(body["signed_files"][0]["uploaded_by"], "user:ent@fresnes.fr");
    let not_pdf = c
        .mairie
        .post(c.url(&format!("/{id}/signed-copies")))
        .header("content-type", "application/pdf")
        .body("hello")
        .send()
        .await;
    assert_eq!(not_pdf.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The name is printed in the convention's document: a line break or a bidirectional
    // override (which would reverse the hash and the date shown after it) is refused.
    for name in ["copie%E2%80%AEfdp.pdf", "copie%0AFaux.pdf"] {
        let resp = c
            .mairie
            .post(c.url(&format!("/{id}/signed-copies?name={name}")))
            .header("content-type", "application/pdf")
            .body(b"%PDF-1.7\n".to_vec())
            .send()
            .await;
        assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {:?}", resp.body);
        assert_eq!(resp.body["errors"][0]["field"], "fichier", "{name}: {:?}", resp.body);
    }
}

/// Sends each request at the same time; the statuses in order.
async fn all_at_once(requests: Vec<Req<'static>>) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, req) in requests.into_iter().enumerate() {
        tasks.spawn(async move { (i, call(req).await) });
    }
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers
        .into_iter()
        .map(|(_, (status, body))| {
            assert!(!status.is_server_error(), "{status}: {body}");
            status
        })
        .collect()
}

/// Live (not voided) steps of a convention as (kind, step_key).
async fn live_steps(c: &Cycle, id: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kind, step_key FROM convention_steps WHERE convention_id = $1 AND voided_at IS NULL ORDER BY step_key",
    )
    .bind(id)
    .fetch_all(c.db.store.pool())
    .await
    .unwrap()
}

async fn submitted(c: &Cycle) -> String {
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    id
}

race_test!(three_parties_signing_at_the_same_instant_leave_the_convention_signed);
async fn three_parties_signing_at_the_same_instant_leave_the_convention_signed(db: crate::common::TestDb) {
    let c = setup(db).await;
    for _ in 0..5 {
        let id = submitted(&c).await;
        let sign = |who: &Client| who.post(c.url(&format!("/{id}/sign"))).json(&delegated("sign", json!({})));
        let statuses = all_at_once(vec![sign(&c.directeur), sign(&c.mairie), sign(&c.dan)]).await;
        assert_eq!(statuses, vec![StatusCode::OK; 3], "{}", c.db.name);
        let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
        assert_eq!(conv["status"], "active", "{}: {conv}", c.db.name);
        assert_eq!(live_steps(&c, &id).await.len(), 3);
        // Ended, so that the next trial may cover the same école.
        c.step_ok(&c.admin, &id, "terminate", json!({ "reason": "Essai suivant", "mutual_agreement": true })).await;
    }
}

race_test!(the_same_party_signing_twice_at_once_records_one_signature_and_a_conflict);
async fn the_same_party_signing_twice_at_once_records_one_signature_and_a_conflict(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = submitted(&c).await;
    let sign = || c.directeur.post(c.url(&format!("/{id}/sign"))).json(&delegated("sign", json!({})));
    let mut statuses = all_at_once(vec![sign(), sign(), sign()]).await;
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CONFLICT, StatusCode::CONFLICT], "{}", c.db.name);
    assert_eq!(live_steps(&c, &id).await, vec![("signature".to_string(), "etablissement".to_string())]);
}

race_test!(two_avenants_asked_at_once_make_one_and_a_conflict);
async fn two_avenants_asked_at_once_make_one_and_a_conflict(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let amend = || c.dan.post(c.url(&format!("/{id}/amend"))).json(&json!({}));
    let mut statuses = all_at_once(vec![amend(), amend(), amend()]).await;
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::CREATED, StatusCode::CONFLICT, StatusCode::CONFLICT], "{}", c.db.name);
    let avenants = common::count(&c.db.store, "SELECT COUNT(*) FROM conventions WHERE amends_id = $1", &[&id]).await;
    assert_eq!(avenants, 1, "{}", c.db.name);
}

// An avenant is drafted from the convention as it is: changes sent with the request would be
// dropped without a word, so they are refused (422) and nothing is drafted; `{}` drafts it.
backend_test!(an_avenant_asked_with_changes_is_refused_and_drafts_nothing);
async fn an_avenant_asked_with_changes_is_refused_and_drafts_nothing(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let with_changes = json!({ "parameters": { "cout_par_eleve": 500 } });
    let (status, problem) = call(c.dan.post(c.url(&format!("/{id}/amend"))).json(&with_changes)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("PATCH"), "{name}: {problem}");
    let sql = "SELECT COUNT(*) AS n FROM conventions WHERE amends_id = $1";
    assert_eq!(common::count(&c.db.store, sql, &[&id]).await, 0, "{name}: nothing drafted");
    let (status, avenant) = call(c.dan.post(c.url(&format!("/{id}/amend"))).json(&json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {avenant}");
}

// A convention signed by every party before its start is not in force yet: its signers are told
// it is signed and when it will be (`signed`), then told again when it comes into force
// (`active`); one signed on or after its start is told once, that it is in force.
backend_test!(the_signers_are_told_a_convention_is_signed_before_it_comes_into_force);
async fn the_signers_are_told_a_convention_is_signed_before_it_comes_into_force(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let now = signed_from(&c, "2026-09-01").await;
    let later = signed_from(&c, "2029-09-01").await;
    let events = async |id: &str| {
        let reference = conv_reference(&c, id).await;
        let mails = common::queued_mails(&c.db.store, "convention").await;
        let to_mairie = mails.into_iter().filter(|m| m.context["reference"] == reference.as_str());
        to_mairie
            .filter(|m| m.recipients.contains("ent@fresnes.fr"))
            .map(|m| m.context["event"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(events(&later).await, ["submitted", "signed"], "{name}: told it is signed, not in force");
    let mails = common::queued_mails(&c.db.store, "convention").await;
    let signed = mails.iter().find(|m| m.context["event"] == "signed").unwrap();
    let mail = entcp::notify::mailer::render("convention", &signed.context).unwrap();
    assert!(mail.text.contains("entrera en vigueur le 1er septembre 2029"), "{name}: {}", mail.text);
    assert!(mail.subject.starts_with("Signée : convention"), "{name}: {}", mail.subject);
    assert_eq!(events(&now).await, ["submitted", "active"], "{name}: in force at once, told once");
}

// The signatures page names each party officially (« Commune de Fresnes », not « Fresnes ») and
// the quality each signer signed in: the délégation's, not the role's generic label.
backend_test!(the_signatures_page_names_the_party_officially_and_the_quality_signed_in);
async fn the_signatures_page_names_the_party_officially_and_the_quality_signed_in(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let html = c.dan.get(c.url(&format!("/{id}/document"))).send().await.text;
    let page = &html[html.rfind("Signatures").unwrap_or_else(|| panic!("{name}: {html}"))..];
    let page = page.replace(['\u{a0}', '\u{202f}'], " ");
    assert!(page.contains("<td>Commune de Fresnes</td>"), "{name}: {page}");
    assert!(page.contains("<td>adjointe chargée du numérique</td>"), "{name}: {page}");
    assert!(!page.contains("représentant(e) de"), "{name}: {page}");
}

backend_test!(the_daily_job_finishes_a_convention_left_in_signature_with_every_signature);
async fn the_daily_job_finishes_a_convention_left_in_signature_with_every_signature(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    // What the race of earlier versions left: every signature, the status behind.
    common::execute(
        &c.db.store,
        "UPDATE conventions SET status = 'in_signature', signed_at = NULL WHERE id = $1",
        &[&id],
    )
    .await;
    let report = entcp::conventions::jobs::daily(&c.db.store, &load_models(), c.clock.now()).await.unwrap();
    assert_eq!(report.completed, 1, "{}", c.db.name);
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "active", "{}: {conv}", c.db.name);
    let again = entcp::conventions::jobs::daily(&c.db.store, &load_models(), c.clock.now()).await.unwrap();
    assert_eq!(again.completed, 0);
}

// Two daily runs at once (two replicas) both read the convention active past its end: each
// expired it, audited it, ended its avenants and told its signers, twice. The UPDATE is
// guarded by the status, and only the run whose UPDATE changed the row goes on.
race_test!(two_daily_runs_at_once_expire_a_convention_once);
async fn two_daily_runs_at_once_expire_a_convention_once(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let models = load_models();
    let replica_b = entcp::store::Store::connect(&c.db.url, None).await.unwrap();
    let after_end = Utc.with_ymd_and_hms(2029, 9, 1, 6, 15, 0).unwrap();
    // Both runs read the convention active, then wait for its row.
    let hold = common::hold_writes(&c.db.store, "SELECT id FROM conventions WHERE id = $1 FOR UPDATE", &[&id]).await;
    let runs = [c.db.store.clone(), replica_b.clone()].map(|store| {
        let models = models.clone();
        tokio::spawn(async move { entcp::conventions::jobs::daily(&store, &models, after_end).await.unwrap() })
    });
    common::let_them_queue().await;
    hold.commit().await.unwrap();
    let mut expired = 0;
    for run in runs {
        expired += run.await.unwrap().expired;
    }
    assert_eq!(expired, 1, "{}", c.db.name);
    let notices = common::queued_notices(&c.db.store, "convention").await;
    let notified = notices.iter().filter(|n| n.context["event"] == "expired").count();
    assert_eq!(notified, 1, "{}: one notice to the signers, a mail to each", c.db.name);
    let audited = common::audited(&c.db.store, "conventions.expire").await;
    // Once, recorded for each of the three parties.
    assert_eq!(audited, 3, "{}", c.db.name);
    replica_b.close().await;
}

backend_test!(every_convention_step_runs_on_a_pool_of_one_connection);
async fn every_convention_step_runs_on_a_pool_of_one_connection(db: crate::common::TestDb) {
    let c = setup(db).await;
    // A step asking the pool for a second connection while its transaction holds the only one
    // would wait out the acquire timeout and fail.
    let options = entcp::store::PoolOptions {
        max_connections: Some(1),
        acquire_timeout: std::time::Duration::from_secs(3),
        ..Default::default()
    };
    let one = entcp::store::Store::connect_with(&c.db.url, options).await.unwrap();
    let app = TestApp::over(&one).clock(c.clock.clone()).build().await;
    let (dan, mairie, directeur) = (c.dan.to(&app), c.mairie.to(&app), c.directeur.to(&app));
    let c = Cycle { admin: c.admin.to(&app), app, dan, mairie, directeur, ..c };
    let id = submitted(&c).await;
    c.step_ok(&c.mairie, &id, "refuse", json!({ "comment": "Montant à revoir" })).await;
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let body =
        c.step_ok(&c.admin, &id, "terminate", json!({ "reason": "Fin du service", "mutual_agreement": true })).await;
    assert_eq!(body["status"], "terminated");
}

backend_test!(signed_copies_are_refused_on_a_draft_and_bounded_in_number);
async fn signed_copies_are_refused_on_a_draft_and_bounded_in_number(db: crate::common::TestDb) {
    let c = setup(db).await;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    let upload_as = |who: &Client, n: usize| {
        who.post(c.url(&format!("/{id}/signed-copies?name=copie-{n}.pdf")))
            .header("content-type", "application/pdf")
            .body(format!("%PDF-1.7\n% copie {n}\n"))
            .send()
    };
    let upload = |n: usize| upload_as(&c.mairie, n);
    assert_eq!(upload(0).await.status, StatusCode::CONFLICT, "a draft has no signed copy");
    c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(upload(0).await.status, StatusCode::OK);
    // The same file sent again (its answer lost): answered, neither stored nor audited twice.
    let audited = || {
        common::count(&c.db.store, "SELECT COUNT(*) FROM audit_log WHERE action = $1", &["conventions.upload_signed"])
    };
    let before = audited().await;
    assert_eq!(upload(0).await.status, StatusCode::OK);
    let files =
        common::count(&c.db.store, "SELECT COUNT(*) FROM convention_files WHERE convention_id = $1", &[id.as_str()])
            .await;
    assert_eq!((files, audited().await), (1, before), "{}", c.db.name);
    // A copy deposited before the account was recorded (migration 0053) is recognised by the
    // actor's name.
    let account: String =
        sqlx::query_scalar("SELECT uploaded_by_user_id FROM convention_files WHERE convention_id = $1")
            .bind(&id)
            .fetch_one(c.db.store.pool())
            .await
            .unwrap();
    let set_account = |account: Option<String>| {
        let sql = "UPDATE convention_files SET uploaded_by_user_id = $1 WHERE convention_id = $2";
        sqlx::query(sql).bind(account).bind(&id).execute(c.db.store.pool())
    };
    set_account(None).await.unwrap();
    assert_eq!(upload(0).await.status, StatusCode::OK);
    let files =
        common::count(&c.db.store, "SELECT COUNT(*) FROM convention_files WHERE convention_id = $1", &[id.as_str()])
            .await;
    assert_eq!((files, audited().await), (1, before), "by name, {}", c.db.name);
    set_account(Some(account)).await.unwrap();
    // Recognised by the account, not by the name the actor carries: the retry still matches
    // after the person's address changed, and another person's copy of the same file is theirs.
    sqlx::query("UPDATE users SET email = 'mairie@fresnes.fr' WHERE email = 'ent@fresnes.fr'")
        .execute(c.db.store.pool())
        .await
        .unwrap();
    entcp::identity::forget_authenticated_tokens();
    assert_eq!(upload(0).await.status, StatusCode::OK);
    assert_eq!(upload_as(&c.dan, 0).await.status, StatusCode::OK);
    let files =
        common::count(&c.db.store, "SELECT COUNT(*) FROM convention_files WHERE convention_id = $1", &[id.as_str()])
            .await;
    assert_eq!(files, 2, "one copy each for the commune and the DAN, {}", c.db.name);
    for n in 2..entcp::conventions::workflow::MAX_SIGNED_COPIES as usize {
        assert_eq!(upload(n).await.status, StatusCode::OK);
    }
    let resp = upload(99).await;
    assert_eq!(resp.status, StatusCode::CONFLICT);
}

/// The SHA-256 of the versions' files in `format`, by version number, from a convention's JSON.
fn frozen_hashes(conv: &Value, format: &str) -> Vec<(i64, String)> {
    conv["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["format"] == format)
        .map(|f| (f["version_no"].as_i64().unwrap(), f["sha256"].as_str().unwrap().to_string()))
        .collect()
}

backend_test!(an_ecole_renamed_after_signature_leaves_the_downloaded_signed_document_byte_identical);
async fn an_ecole_renamed_after_signature_leaves_the_downloaded_signed_document_byte_identical(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    let signed = |query: &str| c.dan.get(c.url(&format!("/{id}/signed-document{query}"))).send();
    assert_eq!(signed("").await.status, 404, "a draft has no frozen document");
    let (s, body) = c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // An edit in signature freezes a second version; the first is kept.
    c.edit(&id, json!({ "parameters": { "accounts": 260 } })).await;
    for who in [&c.directeur, &c.mairie, &c.dan] {
        let (s, body) = c.post(who, &id, "sign", json!({})).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (_, active) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(active["status"], "active", "{}", c.db.name);
    let hash = active["document_hash"].as_str().unwrap().to_string();
    let html_versions = frozen_hashes(&active, "html");
    assert_eq!(html_versions.iter().map(|(v, _)| *v).collect::<Vec<_>>(), vec![1, 2], "both versions listed");
    assert_eq!(html_versions[1].1, hash, "the fingerprint is the hash of the latest stored HTML file");
    assert_ne!(html_versions[0].1, hash);

    let html = signed("").await;
    assert_eq!(html.status, 200);
    assert_eq!(entcp::documents::sha256_hex(&html.bytes), hash, "sha256sum of the download is the fingerprint");
    assert_eq!(html.header("x-document-sha256"), Some(hash.as_str()));
    let odt = signed("?format=odt").await;
    assert_eq!(entcp::documents::sha256_hex(&odt.bytes), frozen_hashes(&active, "odt")[1].1);
    let first = signed("?version=1").await;
    assert_eq!(entcp::documents::sha256_hex(&first.bytes), html_versions[0].1, "older versions stay downloadable");

    // The annuaire renames the école after signature.
    let csv = std::fs::read_to_string(common::fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let renamed = csv.replace("Ecole élémentaire Robert Doisneau", "Ecole élémentaire Simone Veil");
    common::fixtures::annuaire(&c.db.store, &renamed).await;
    let ecole = entcp::registry::resolve_org(&c.db.store, "0940176F").await.unwrap();
    assert_eq!(ecole.name, "Ecole élémentaire Simone Veil", "the registry took the new name");

    let html_after = signed("").await;
    assert_eq!(html_after.bytes, html.bytes, "{}: the signed HTML is byte-identical", c.db.name);
    assert_eq!(entcp::documents::sha256_hex(&html_after.bytes), hash);
    assert_eq!(signed("?format=odt").await.bytes, odt.bytes, "the signed ODT is byte-identical");
    let full = c.dan.get(c.url(&format!("/{id}/document?format=html"))).send().await.text;
    assert!(full.contains("Robert Doisneau") && !full.contains("Simone Veil"), "the full document reads as signed");
    assert!(full.contains(&hash));
    let (_, after) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(after["document_hash"], hash.as_str());
}

backend_test!(an_academie_signed_premier_degre_convention_names_the_dsden_as_controller_in_its_annex);
async fn an_academie_signed_premier_degre_convention_names_the_dsden_as_controller_in_its_annex(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let conv = c.create(tripartite("2026-09-01")).await;
    assert_eq!(conv["rgpd_controller"]["kind"], "dsden", "{conv}");
    let id = conv["id"].as_str().unwrap().to_string();
    let (s, body) = c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let html = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text;
    let annex = &html[html.find("Rôles au sens du RGPD").expect("the RGPD annex")..];
    let controller = &annex[annex.find("Responsable de traitement").unwrap()..][..400];
    assert!(
        controller.contains("DSDEN du Val-de-Marne") && controller.contains("IA-DASEN"),
        "{}: {controller}",
        c.db.name
    );
    assert!(!controller.contains("Académie de Créteil"), "{controller}");
}

/// The bipartite model with the collectivité as joint controller instead of processor.
fn joint_controller_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../../../conventions/bipartite-commune.yaml");
    let joint = shipped.replacen("id: bipartite-commune", "id: bipartite-commune-conjointe", 1).replacen(
        "joint_controllers: []\n  processors: [collectivite]",
        "joint_controllers: [collectivite]\n  processors: []",
        1,
    );
    assert_ne!(joint, shipped);
    std::fs::write(dir.path().join("conjointe.yaml"), joint).unwrap();
    dir
}

backend_test!(a_convention_with_other_rgpd_roles_on_a_covered_ecole_is_refused_unless_it_supersedes_it);
async fn a_convention_with_other_rgpd_roles_on_a_covered_ecole_is_refused_unless_it_supersedes_it(
    db: crate::common::TestDb,
) {
    let models = joint_controller_model();
    let c = over_models(setup(db).await, &models).await;
    let tri = submitted(&c).await;
    for who in [&c.directeur, &c.mairie, &c.dan] {
        assert_eq!(c.post(who, &tri, "sign", json!({})).await.0, StatusCode::OK);
    }
    let bipartite = |model: &str| {
        common::fixtures::with_signatories(json!({
            "model": model,
            "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
            "start_date": "2026-10-01"
        }))
    };
    // Same roles (the DSDEN controls, the commune processes) under another model: accepted.
    let (s, same) = call(c.dan.post(c.url("")).json(&bipartite("bipartite-commune"))).await;
    assert_eq!(s, StatusCode::CREATED, "{}: {same}", c.db.name);
    // The commune as joint controller of the same école: refused, in French, naming the convention in force.
    let (s, p) = call(c.dan.post(c.url("")).json(&bipartite("bipartite-commune-conjointe"))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
    assert!(p["detail"].as_str().unwrap().contains("rôles au sens du RGPD"), "{p}");
    let (_, tri_conv) = call(c.dan.get(c.url(&format!("/{tri}")))).await;
    assert_eq!(p["conflicting_convention"], tri_conv["reference"]);
    // Explicitly superseding it is accepted; once in force the tripartite one is terminated, recorded.
    let mut body = bipartite("bipartite-commune-conjointe");
    body["supersedes"] = tri_conv["reference"].clone();
    let (s, conjointe) = call(c.dan.post(c.url("")).json(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{conjointe}");
    let id = conjointe["id"].as_str().unwrap().to_string();
    assert_eq!(c.post(&c.dan, &id, "submit", json!({})).await.0, StatusCode::OK);
    for who in [&c.mairie, &c.dan] {
        let (s, body) = c.post(who, &id, "sign", json!({})).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let report = entcp::conventions::jobs::daily(&c.db.store, &app_models(models.path()), t0() + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(report.activated, 1, "{report:?}");
    let (_, old) = call(c.dan.get(c.url(&format!("/{tri}")))).await;
    assert_eq!(old["status"], "terminated", "{old}");
    assert!(old["termination_reason"].as_str().unwrap().contains(conjointe["reference"].as_str().unwrap()));
    // Its parties are told, the directeur too, who is no party of the new one.
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "terminated").await, 1, "{}", c.db.name);
}

/// A bipartite académie – commune convention from 1 October 2026 replacing `supersedes`.
fn bipartite_superseding(commune: &str, supersedes: &str) -> Value {
    let mut body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": commune },
        "start_date": "2026-10-01"
    }));
    body["supersedes"] = json!(supersedes);
    body
}

backend_test!(only_a_party_that_writes_a_convention_on_the_same_schools_supersedes_it_and_its_parties_are_told);
async fn only_a_party_that_writes_a_convention_on_the_same_schools_supersedes_it_and_its_parties_are_told(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let tri = signed_from(&c, "2026-09-01").await;
    let (_, in_force) = call(c.dan.get(c.url(&format!("/{tri}")))).await;
    assert_eq!(in_force["status"], "active", "{in_force}");
    let reference = in_force["reference"].as_str().unwrap().to_string();
    let create = |who: &Client, body: Value| call(who.post(c.url("")).json(&body));

    // Vitry's agent, no party to it, cannot see it: the answer of a reference that names nothing.
    let vitry = "ent@vitry.fr";
    let agent = user(&c, vitry, Role::Collectivite, Some("commune:94081")).await;
    let (s, hidden) = create(&agent, bipartite_superseding("commune:94081", &reference)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {hidden}", c.db.name);
    let (s, unknown) = create(&agent, bipartite_superseding("commune:94081", "CONV-2026-9999")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{unknown}");
    assert_eq!(hidden["errors"][0]["field"], "supersedes", "{hidden}");
    let same = |p: &Value, key: &str| p["errors"].to_string().replace(key, "KEY");
    assert_eq!(same(&hidden, &reference), same(&unknown, "CONV-2026-9999"));
    assert_eq!(
        hidden["detail"].to_string().replace(&reference, "KEY"),
        unknown["detail"].to_string().replace("CONV-2026-9999", "KEY")
    );

    // Also DPO of Fresnes, the agent reads it but writes it at no party: refused.
    common::fixtures::grant_also(&c.db.store, vitry, Role::Dpo, "commune:94034").await;
    let (s, p) = create(&agent, bipartite_superseding("commune:94081", &reference)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{}: {p}", c.db.name);
    assert!(p["detail"].as_str().unwrap().contains("un rôle qui permet de la modifier"), "{p}");

    // The DAN writes it, but a convention on Vitry's écoles does not replace Fresnes's.
    let (s, p) = create(&c.dan, bipartite_superseding("commune:94081", &reference)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {p}", c.db.name);
    assert_eq!(p["errors"][0]["field"], "supersedes", "{p}");
    assert!(p.to_string().contains("ne couvre aucune des écoles"), "{p}");

    // Accepted on Fresnes, then moved to Vitry while a draft: in force, it leaves the old one alone.
    let (s, moved) = create(&c.dan, bipartite_superseding("commune:94034", &reference)).await;
    assert_eq!(s, StatusCode::CREATED, "{moved}");
    let moved = moved["id"].as_str().unwrap().to_string();
    let vitry_parties = common::fixtures::with_signatories(json!({
        "parties": { "academie": "academie:24", "collectivite": "commune:94081" }
    }));
    c.edit(&moved, json!({ "parties": vitry_parties["parties"] })).await;
    c.step_ok(&c.dan, &moved, "submit", json!({})).await;
    for who in [&agent, &c.dan] {
        c.step_ok(who, &moved, "sign", json!({})).await;
    }
    let models = load_models();
    let day = t0() + Duration::days(30);
    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day).await.unwrap();
    assert_eq!(report.activated, 1, "{report:?}");
    let (_, kept) = call(c.dan.get(c.url(&format!("/{tri}")))).await;
    assert_eq!(kept["status"], "active", "{}: {kept}", c.db.name);
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "terminated").await, 0);

    // One on Fresnes's écoles replaces it the day it takes effect; its three parties are told.
    let (s, new) = create(&c.dan, bipartite_superseding("commune:94034", &reference)).await;
    assert_eq!(s, StatusCode::CREATED, "{new}");
    let new_id = new["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &new_id, "submit", json!({})).await;
    for who in [&c.mairie, &c.dan] {
        c.step_ok(who, &new_id, "sign", json!({})).await;
    }
    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day).await.unwrap();
    assert_eq!(report.activated, 1, "{report:?}");
    let (_, ended) = call(c.dan.get(c.url(&format!("/{tri}")))).await;
    assert_eq!(ended["status"], "terminated", "{}: {ended}", c.db.name);
    assert!(ended["termination_reason"].as_str().unwrap().contains(new["reference"].as_str().unwrap()));
    for who in ["ce.0940176f@ac-creteil.fr", "ent@fresnes.fr", "dan@ac-creteil.fr"] {
        assert_eq!(c.mails(who, "terminated").await, 1, "{who} is told");
    }
}

backend_test!(one_person_holding_the_signing_role_at_two_parties_signs_for_one_only);
async fn one_person_holding_the_signing_role_at_two_parties_signs_for_one_only(db: crate::common::TestDb) {
    let c = setup(db).await;
    let double = "double@fresnes.fr";
    let both = user(&c, double, Role::Collectivite, Some("commune:94034")).await;
    common::fixtures::grant_also(&c.db.store, double, Role::ChefEtablissement, "0940176F").await;
    let id = submitted(&c).await;
    let first = c.step_ok(&both, &id, "sign", json!({})).await;
    let signed_for = first["steps"].as_array().unwrap().iter().find(|s| s["kind"] == "signature").unwrap();
    let other = if signed_for["step_key"] == "collectivite" { "etablissement" } else { "collectivite" };
    for body in [json!({}), json!({ "party": other })] {
        let (s, p) = c.post(&both, &id, "sign", body).await;
        assert_eq!(s, StatusCode::CONFLICT, "{}: the same person signs a second party: {p}", c.db.name);
        assert!(p["detail"].as_str().unwrap().contains("n'engage pas deux parties"), "{p}");
    }
    let after_dan = c.step_ok(&c.dan, &id, "sign", json!({})).await;
    assert_eq!(after_dan["status"], "in_signature", "{}: one party is still to sign: {after_dan}", c.db.name);
    let signer = if other == "etablissement" { &c.directeur } else { &c.mairie };
    let done = c.step_ok(signer, &id, "sign", json!({})).await;
    assert_eq!(done["status"], "active", "a second person signs for it: {done}");
}

fn app_models(dir: &std::path::Path) -> Vec<entcp::conventions::model::ConventionModel> {
    entcp::conventions::model::load_models(Some(dir)).unwrap()
}

backend_test!(the_user_who_gave_the_legal_visa_cannot_sign_and_the_signature_page_shows_names_and_french_dates);
async fn the_user_who_gave_the_legal_visa_cannot_sign_and_the_signature_page_shows_names_and_french_dates(
    db: crate::common::TestDb,
) {
    let (academie, departement, college) = college_world(&db.store).await;
    let app = TestApp::over(&db.store).build().await;
    let dan = app.client(&token_for(&db.store, "dan@ac.fr", Role::Dan, Some(&academie)).await);
    let juriste = app.client(&token_for(&db.store, "juridique@ac.fr", Role::Dan, Some(&academie)).await);
    let url = |path: &str| format!("/api/v1/conventions{path}");
    let id = second_degre_draft(&dan, [&academie, &departement, &college]).await;
    let post =
        |who: &Client, action: &str| who.post(url(&format!("/{id}/{action}"))).json(&delegated(action, json!({})));
    assert_eq!(call(post(&dan, "submit")).await.0, StatusCode::OK);
    assert_eq!(call(post(&dan, "visa")).await.0, StatusCode::OK);
    let (s, p) = call(post(&dan, "sign")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{}: the visa giver signs too: {p}", db.name);
    assert!(p["detail"].as_str().unwrap().contains("deux personnes distinctes"), "{p}");
    let (s, p) = call(post(&juriste, "sign")).await;
    assert_eq!(s, StatusCode::OK, "another DAN user signs for the académie: {p}");
    let html = dan.get(url(&format!("/{id}/document"))).send().await.text;
    let page = &html[html.rfind("Signatures").unwrap()..];
    assert!(page.contains("Fait le 1er septembre 2026") && page.contains("Visa juridique"), "{page}");
    // The quality signed in: the délégation's (the signer is not the representative named).
    assert!(page.contains("<td>adjointe chargée du numérique</td>"), "{page}");
    assert!(!page.contains("pour les services académiques"), "not the role's generic label: {page}");
    assert!(!page.contains("(dan)") && !page.contains("2026-09-01T"), "no role slug nor ISO timestamp: {page}");
}

backend_test!(a_draft_whose_start_passed_before_its_submission_is_not_submitted_without_a_reason);
async fn a_draft_whose_start_passed_before_its_submission_is_not_submitted_without_a_reason(db: crate::common::TestDb) {
    let c = setup(db).await;
    let conv = c.create(tripartite("2026-12-15")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    // Submitted on 1 February 2027: the 15 December start has passed.
    c.clock.set(Utc.with_ymd_and_hms(2027, 2, 1, 9, 0, 0).unwrap());
    let (s, p) = c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("start_date")), "{p}");
    assert!(p.to_string().contains("15 décembre 2026") && p.to_string().contains("backdate_reason"), "{p}");
    let (_, still) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(still["status"], "draft", "{}: nothing submitted", c.db.name);
    // Kept, with the reason stated: submitted, the reason on record.
    c.edit(&id, json!({ "start_date": "2026-12-15", "backdate_reason": "service ouvert le 15 décembre" })).await;
    let submitted = c.step_ok(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(submitted["status"], "in_signature", "{submitted}");
    assert_eq!(submitted["backdate_reason"], "service ouvert le 15 décembre", "{submitted}");
}

backend_test!(an_avenant_takes_effect_on_its_own_date_never_before_its_submission);
async fn an_avenant_takes_effect_on_its_own_date_never_before_its_submission(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    // Amended on 10 January 2027: the avenant starts that day, not on the original's 1 September 2026.
    c.clock.set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let (s, avenant) = c.post(&c.dan, &id, "amend", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{avenant}");
    assert_eq!(avenant["start_date"], "2027-01-10", "{}: {avenant}", c.db.name);
    let act = avenant_act(avenant["id"].as_str().unwrap());
    c.edit(avenant["id"].as_str().unwrap(), json!({ "signatories": { "collectivite": act } })).await;
    assert_eq!(avenant["end_date"], "2029-08-31", "the original's end is kept: {avenant}");
    let avenant_id = avenant["id"].as_str().unwrap().to_string();
    // Submitted a week later, its start has passed: refused, even with a reason, until moved.
    c.clock.set(Utc.with_ymd_and_hms(2027, 1, 17, 9, 0, 0).unwrap());
    // It changes the accounts: its date of effect alone changes nothing (domain review 38, G4).
    let patch =
        json!({ "start_date": "2027-01-10", "backdate_reason": "rattrapage", "parameters": { "accounts": 300 } });
    c.edit(&avenant_id, patch).await;
    let (s, p) = c.post(&c.dan, &avenant_id, "submit", json!({})).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("start_date")), "{p}");
    assert!(p.to_string().contains("avenant prend effet à sa propre date"), "{p}");
    c.edit(&avenant_id, json!({ "start_date": "2027-01-17" })).await;
    c.step_ok(&c.dan, &avenant_id, "submit", json!({})).await;
    c.signed_by_all(&avenant_id).await;
    let (_, active) = call(c.dan.get(c.url(&format!("/{avenant_id}")))).await;
    assert_eq!((active["status"].as_str(), active["start_date"].as_str()), (Some("active"), Some("2027-01-17")));
    // The avenant states its own start in its body; its consolidated annex (edition 3) is the
    // convention as amended, which took effect on its own date (an avenant of edition 2 keeps
    // the annex dated from the avenant: `an_avenant_consolidates_the_convention_at_its_own_dates…`).
    let html = document_text(&c, &avenant_id).await;
    let (body, annex) = html.split_at(html.find("Annexe – Texte consolidé").expect("the consolidated annex"));
    assert!(body.contains("Le présent avenant prend effet le 17 janvier 2027"), "its own start: {body}");
    // (Its préambule cites the convention « elle prend effet le 1er septembre 2026 », edition 8.)
    assert!(!body.contains("avenant prend effet le 1er septembre 2026"), "not the original's: {body}");
    assert!(annex.contains("La présente convention prend effet le 1er septembre 2026"), "{annex}");
    assert!(!annex.contains("prend effet le 17 janvier 2027"), "the avenant's start is its body's: {annex}");
}

backend_test!(a_start_date_in_the_past_needs_a_reason);
async fn a_start_date_in_the_past_needs_a_reason(db: crate::common::TestDb) {
    let c = setup(db).await;
    let (s, p) = call(c.dan.post(c.url("")).json(&tripartite("2026-06-01"))).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("start_date")), "{p}");
    assert!(p["errors"][0]["detail"].to_string().contains("1er juin 2026") || p.to_string().contains("1er juin 2026"));
    let mut body = tripartite("2026-06-01");
    body["backdate_reason"] = json!("régularisation d'un service ouvert en juin");
    let conv = c.create(body).await;
    assert_eq!(conv["backdate_reason"], "régularisation d'un service ouvert en juin", "{}", c.db.name);
}

/// The Doisneau tripartite convention with the signatories a real file gives: the rectrice herself,
/// the maire empowered by a délibération (`commune_act`, when given), the directrice.
fn doisneau_with_signatories(commune_act: Option<(&str, &str)>) -> Value {
    let mut maire = json!({ "name": "M. Jean Dupont", "quality": "maire", "place": "Fresnes" });
    if let Some((number, date)) = commune_act {
        maire["act_number"] = json!(number);
        maire["act_date"] = json!(date);
    }
    json!({
        "model": "tripartite-premier-degre",
        "parties": {
            "academie": { "org": "academie:24", "signatory": { "name": "Mme Claire Lenoir", "quality": "rectrice de l'académie de Créteil" } },
            "collectivite": { "org": "commune:94034", "signatory": maire },
            "etablissement": { "org": "0940176F", "signatory": { "name": "Mme Aline Petit", "quality": "directrice d'école" } }
        },
        "start_date": "2026-09-01",
        "parameters": { "accounts": 250 }
    })
}

backend_test!(a_submitted_premier_degre_convention_names_its_signatories_acts_and_art_28_clauses_as_the_law_reads_them);
async fn a_submitted_premier_degre_convention_names_its_signatories_acts_and_art_28_clauses_as_the_law_reads_them(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let conv = c.create(doisneau_with_signatories(Some(("DEL-2026-045", "2026-06-18")))).await;
    let id = conv["id"].as_str().unwrap().to_string();
    let (s, body) = c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{}: {body}", c.db.name);
    let html = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text.replace("&#x27;", "'");
    for expected in [
        "la Commune de Fresnes, représentée par M. Jean Dupont, maire, dûment habilité par délibération du conseil \
         municipal n° DEL-2026-045 du 18 juin 2026",
        "l'académie de Créteil, représentée par Mme Claire Lenoir, rectrice de l'académie de Créteil",
        "Vu la délibération du conseil municipal de la Commune de Fresnes n° DEL-2026-045 du 18 juin 2026",
        "article L. 212-4",
        "Préambule",
        "SDET) dans sa version 6.4",
        "Pour la Commune de Fresnes : M. Jean Dupont, maire. Fait à Fresnes, le",
        "Pour l'École élémentaire Robert Doisneau : Mme Aline Petit, directrice d'école. Fait à Fresnes, le",
        "DSDEN du Val-de-Marne",
        // Art. 28(3) RGPD, the commune processing for the DSDEN.
        "article 28, paragraphe 3",
        "pour le compte de la DSDEN du Val-de-Marne",
        "Types de données : État civil",
        "Catégories de personnes concernées : élèves (mineurs)",
        "Confidentialité : ",
        "Sécurité (article 32 du RGPD)",
        "Sous-traitants ultérieurs : l'éditeur de la solution (à compléter) et l'hébergeur (à compléter).",
        "Droits des personnes : ",
        "Violations de données : ",
        "Fin du traitement : ",
        "Audits : ",
        "y compris d'inspections",
        "Instruction illicite : ",
    ] {
        assert!(html.contains(&french(expected)), "{}: « {expected} » missing from {html}", c.db.name);
    }
    assert!(html.contains("<h2>Vu</h2>") || html.contains(">Vu<"), "a « Vu » block: {html}");
    for leaked in
        ["« academie »", "« collectivite »", ">collectivite<", ">academie<", "de Académie", "de Ivry", "DSDEN – "]
    {
        assert!(!html.contains(leaked), "{}: internal key or unqualified name « {leaked} » in {html}", c.db.name);
    }
    // The costs name the parties, not their keys.
    let costs = &html[html.find("Répartition des coûts").unwrap()..];
    assert!(costs.contains("Commune de Fresnes") && costs.contains("la collectivité"), "{costs}");
    // The API and the full document with its signature page.
    assert_eq!(body["parties"][1]["signatory"]["act_number"], "DEL-2026-045", "{body}");
    let full = c.dan.get(c.url(&format!("/{id}/document"))).send().await.text.replace("&#x27;", "'");
    assert!(full.contains("Fait à Fresnes, le") && full.contains("représentée par M. Jean Dupont"), "{full}");
}

backend_test!(a_submission_without_the_communes_deliberation_is_refused_in_french_naming_the_party);
async fn a_submission_without_the_communes_deliberation_is_refused_in_french_naming_the_party(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let conv = c.create(doisneau_with_signatories(None)).await;
    let id = conv["id"].as_str().unwrap().to_string();
    let (s, p) = c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {p}", c.db.name);
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["signatories.collectivite.act_number", "signatories.collectivite.act_date"], "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("Commune de Fresnes (la collectivité)") && detail.contains("délibération"), "{detail}");
    assert!(detail.contains("ne peut être soumise"), "{detail}");
    // An act dated in the future is refused, naming the field.
    let future = json!({ "signatories": { "collectivite": {
        "name": "M. Jean Dupont", "quality": "maire", "act_number": "DEL-2026-045", "act_date": "2026-12-03" } } });
    let (_, current) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let version = current["version"].as_i64().unwrap();
    let req = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
    let (s, p) = call(req.json(&future)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "signatories.collectivite.act_date", "{p}");
    // Recorded by an edit, the délibération is enough for the commune; an académie signatory who is
    // not the recteur then needs the arrêté de délégation.
    let maire =
        json!({ "name": "M. Jean Dupont", "quality": "maire", "act_number": "DEL-2026-045", "act_date": "2026-06-18" });
    let dan = json!({ "name": "M. Paul Roy", "quality": "délégué académique au numérique" });
    let edited = c.edit(&id, json!({ "signatories": { "collectivite": maire, "academie": dan } })).await;
    assert_eq!(edited["parties"][1]["signatory"]["act_date"], "2026-06-18", "{edited}");
    let (s, p) = c.post(&c.dan, &id, "submit", json!({})).await;
    let field = p["errors"][0]["field"].as_str();
    assert_eq!((s, field), (StatusCode::UNPROCESSABLE_ENTITY, Some("signatories.academie.delegation")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("Académie de Créteil (les services académiques)"), "{p}");
    let delegated = json!({ "name": "M. Paul Roy", "quality": "délégué académique au numérique",
        "delegation": "arrêté n° 2026-31 portant délégation de signature", "delegation_date": "2026-08-25" });
    c.edit(&id, json!({ "signatories": { "academie": delegated } })).await;
    let (s, body) = c.post(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{}: {body}", c.db.name);
    let html = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text;
    assert!(
        html.contains(&french("par délégation (arrêté n° 2026-31 portant délégation de signature du 25 août 2026)")),
        "{html}"
    );
}

backend_test!(a_page_of_conventions_takes_as_many_statements_at_ten_as_at_two);
async fn a_page_of_conventions_takes_as_many_statements_at_ten_as_at_two(db: crate::common::TestDb) {
    let c = setup(db).await;
    // Conventions holding something of every kind: parties, a school, frozen documents, a
    // signature; one after the other on the school (36 months each), so none overlaps another.
    for k in 0..10 {
        let conv = c.create(tripartite(&format!("{}-09-01", 2026 + 3 * k))).await;
        let id = conv["id"].as_str().unwrap().to_string();
        c.step_ok(&c.dan, &id, "submit", json!({})).await;
        c.step_ok(&c.directeur, &id, "sign", json!({})).await;
    }
    let (status, page) = call(c.dan.get(c.url("?limit=10"))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed: Vec<Value> = page["items"].as_array().unwrap().clone();
    let ids: Vec<String> = listed.iter().map(|conv| conv["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 10);
    // A store of its own, so no request of the app runs a statement meanwhile (the app's change
    // watcher still polls on its own connection: the capture leaves its statements out).
    let store = entcp::store::Store::connect(&c.db.url, Some(1)).await.unwrap();
    let mut conn = store.conn().await.unwrap();
    let models = load_models();
    let statements = common::logs::Statements::capture();
    let mut counts = Vec::new();
    for size in [1, 2, 10] {
        let before = statements.count();
        let read = entcp::conventions::read_conventions(&mut conn, &models, &ids[..size]).await.unwrap();
        counts.push((size, statements.count() - before, statements.since(before)));
        assert_eq!(read.len(), size);
        for (conv, id) in read.iter().zip(&ids) {
            let alone = entcp::conventions::read_convention(&mut conn, &models, id, false).await.unwrap().unwrap();
            assert_eq!(serde_json::to_value(conv).unwrap(), serde_json::to_value(&alone).unwrap(), "{}", c.db.name);
        }
    }
    let (one, two, ten) = (&counts[0], &counts[1], &counts[2]);
    assert!(one.1 > 0, "{}: statements are counted", c.db.name);
    assert_eq!(two.1, ten.1, "{}: a page of 10 takes the statements of a page of 2: {:#?}", c.db.name, ten.2);
    // The conventions' rows, then parties, their organisations, schools with their DSDEN,
    // steps, signed copies, frozen documents, tenants with their vendors and hosts, tenants'
    // bouquets and options (the Art. 28(3) annex's services), the communes of the schools among
    // the parties (where a school signs, from edition 5).
    assert!(ten.1 <= 10, "{}: one statement per kind of thing a convention holds: {:#?}", c.db.name, ten.2);
    // The route's page selects the rows themselves: one statement more than the rest, no list of ids first.
    drop(conn);
    let filter = entcp::conventions::ConventionFilter { limit: Some(10), ..Default::default() };
    let (page_ids, _) = entcp::conventions::list_ids(&store, &filter, None).await.unwrap();
    let before = statements.count();
    let page = entcp::conventions::list_page(&store, &models, &filter, None).await.unwrap();
    let (paged, paged_statements) = (statements.count() - before, statements.since(before));
    assert_eq!(paged, ten.1, "{}: the page is read as its ids are: {paged_statements:#?}", c.db.name);
    let read =
        entcp::conventions::read_conventions(&mut store.conn().await.unwrap(), &models, &page_ids).await.unwrap();
    assert_eq!(serde_json::to_value(&page.items).unwrap(), serde_json::to_value(&read).unwrap(), "{}", c.db.name);
    // The route answers what the conventions read one by one are (the caller sees every signer).
    for (conv, id) in listed.iter().zip(&ids) {
        let (_, alone) = call(c.dan.get(c.url(&format!("/{id}")))).await;
        assert_eq!(conv, &alone, "{}", c.db.name);
    }
}

/// The audit records of a convention as (action, actor), oldest first.
async fn audited(c: &Cycle, id: &str) -> Vec<(String, String)> {
    let filter = entcp::audit::AuditFilter { target_id: Some(id.to_string()), limit: Some(100), ..Default::default() };
    let page = entcp::audit::list(&c.db.store, &filter, None).await.unwrap();
    let mut records: Vec<_> = page.items.into_iter().rev().map(|r| (r.action, r.actor)).collect();
    // One event is recorded once per party organisation, one after the other.
    records.dedup();
    records
}

backend_test!(the_auditor_of_a_party_reads_the_whole_lifecycle_of_its_conventions);
/// Each lifecycle record of a convention is scoped to every party: the auditor of the commune
/// reads the creation, submission, completion (`conventions.signed`), activation and expiry,
/// not only its own side's signatures.
async fn the_auditor_of_a_party_reads_the_whole_lifecycle_of_its_conventions(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let end = Utc.with_ymd_and_hms(2029, 9, 1, 6, 0, 0).unwrap();
    assert_eq!(entcp::conventions::jobs::daily(&c.db.store, &load_models(), end).await.unwrap().expired, 1);
    let auditor = user(&c, "audit@fresnes.fr", Role::Auditeur, Some("commune:94034")).await;
    let (status, page) = call(auditor.get(format!("/api/v1/audit?target_id={id}&limit=100"))).await;
    assert_eq!(status, StatusCode::OK, "{}: {page}", c.db.name);
    let actions: Vec<&str> = page["items"].as_array().unwrap().iter().filter_map(|r| r["action"].as_str()).collect();
    for action in
        ["conventions.create", "conventions.submit", "conventions.signed", "conventions.activate", "conventions.expire"]
    {
        assert!(actions.contains(&action), "{}: {action} not read: {actions:?}", c.db.name);
    }
    // Another commune's auditor reads none of it.
    let other = user(&c, "audit@vitry.fr", Role::Auditeur, Some("commune:94081")).await;
    let (status, page) = call(other.get(format!("/api/v1/audit?target_id={id}&limit=100"))).await;
    assert_eq!(status, StatusCode::OK, "{}: {page}", c.db.name);
    assert_eq!(page["items"], json!([]), "{}: {page}", c.db.name);
}

backend_test!(a_signature_made_through_the_api_is_audited_under_the_signers_name_and_the_expiry_under_the_jobs);
async fn a_signature_made_through_the_api_is_audited_under_the_signers_name_and_the_expiry_under_the_jobs(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let records = audited(&c, &id).await;
    let by = |action| by_action(&records, action);
    assert_eq!(
        by("conventions.sign"),
        ["user:ce.0940176f@ac-creteil.fr", "user:ent@fresnes.fr", "user:dan@ac-creteil.fr"],
        "{}: {records:?}",
        c.db.name
    );
    // The last signature completes the convention: the last signer signed and activated it.
    assert_eq!(by("conventions.signed"), ["user:dan@ac-creteil.fr"], "{}: {records:?}", c.db.name);
    assert_eq!(by("conventions.activate"), ["user:dan@ac-creteil.fr"], "{}: {records:?}", c.db.name);

    let end = Utc.with_ymd_and_hms(2029, 9, 1, 6, 0, 0).unwrap();
    assert_eq!(entcp::conventions::jobs::daily(&c.db.store, &load_models(), end).await.unwrap().expired, 1);
    assert_eq!(by_action(&audited(&c, &id).await, "conventions.expire"), ["system:conventions-daily"], "{}", c.db.name);
}

backend_test!(a_paper_signature_recorded_with_the_cli_names_the_operator_on_behalf_of_the_signer);
async fn a_paper_signature_recorded_with_the_cli_names_the_operator_on_behalf_of_the_signer(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = submitted(&c).await;
    c.step_ok(&c.directeur, &id, "sign", json!({})).await;
    let delegation =
        ["--delegation-quality", "adjointe", "--delegation-act", "arrete", "--delegation-number", "2025-19"];
    let sign_as = |email: &str| {
        let mut args = vec!["conventions", "sign", &id, "--as", email];
        args.extend(delegation);
        args.extend(["--delegation-date", "2025-06-30"]);
        common::entctl(&c.db.url, &args)
    };
    // As the API: a user cannot sign for a party where they do not hold its signing role...
    let (ok, out) = common::entctl(
        &c.db.url,
        &["conventions", "sign", &id, "--as", "dan@ac-creteil.fr", "--party", "collectivite"],
    );
    assert!(!ok && out.contains("rôle de signataire"), "{}: {out}", c.db.name);
    // ... nor a deactivated one, whatever their roles.
    sqlx::query("UPDATE users SET active = 0 WHERE email = 'ent@fresnes.fr'").execute(c.db.store.pool()).await.unwrap();
    let (ok, out) = sign_as("ent@fresnes.fr");
    assert!(!ok && out.contains("utilisateur désactivé"), "{}: {out}", c.db.name);
    sqlx::query("UPDATE users SET active = 1 WHERE email = 'ent@fresnes.fr'").execute(c.db.store.pool()).await.unwrap();

    let (ok, out) = sign_as("ent@fresnes.fr");
    assert!(ok, "{}: {out}", c.db.name);
    let records = audited(&c, &id).await;
    assert_eq!(
        by_action(&records, "conventions.sign"),
        ["user:ce.0940176f@ac-creteil.fr", "cli:exploitant pour user:ent@fresnes.fr"],
        "{}: {records:?}",
        c.db.name
    );
    // The signatory stays the user; the history says the operator recorded it for them.
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let steps = conv["steps"].as_array().unwrap();
    let paper = steps.iter().find(|s| s["step_key"] == "collectivite").unwrap();
    assert_eq!(paper["user_email"], "ent@fresnes.fr", "{}: {paper}", c.db.name);
    assert_eq!(paper["role"], "collectivite", "{}: {paper}", c.db.name);
    assert_eq!(paper["recorded_by"], "cli:exploitant pour user:ent@fresnes.fr", "{}: {paper}", c.db.name);
    let online = steps.iter().find(|s| s["step_key"] == "etablissement").unwrap();
    assert!(online.get("recorded_by").is_none(), "{}: {online}", c.db.name);
    // The console's timeline says it too.
    crate::console::with_password(&c.db.store, "dan@ac-creteil.fr").await;
    let session = crate::console::sign_in(&c.app, "dan@ac-creteil.fr").await;
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await;
    let said = crate::console::escaped(
        "— Collectivité, signature papier enregistrée par exploitant (ligne de commande), pour ent@fresnes.fr",
    );
    assert!(page.text.contains(&said), "{}: the role by its French name: {}", c.db.name, page.text);

    // Every other `--as` command is recorded the same way: the DAN's signature, then the
    // commune's résiliation (with its notice), each by the operator on the user's behalf.
    let (ok, out) = sign_as("dan@ac-creteil.fr");
    assert!(ok, "{}: {out}", c.db.name);
    let terminate = ["conventions", "terminate", &id, "--reason", "Changement de solution", "--as", "ent@fresnes.fr"];
    let (ok, out) = common::entctl(&c.db.url, &terminate);
    assert!(ok, "{}: {out}", c.db.name);
    let records = audited(&c, &id).await;
    let terminated = by_action(&records, "conventions.terminate");
    assert_eq!(terminated, ["cli:exploitant pour user:ent@fresnes.fr"], "{}: {records:?}", c.db.name);
}

/// The actors of the records of `action`.
fn by_action<'r>(records: &'r [(String, String)], action: &str) -> Vec<&'r str> {
    records.iter().filter(|(a, _)| a == action).map(|(_, actor)| actor.as_str()).collect()
}

backend_test!(an_edit_based_on_the_version_read_before_a_signature_is_refused_and_the_signature_kept);
async fn an_edit_based_on_the_version_read_before_a_signature_is_refused_and_the_signature_kept(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let id = submitted(&c).await;
    let read = c.dan.get(c.url(&format!("/{id}"))).send().await;
    let etag_read = read.header("etag").unwrap().to_string();
    // The directeur signs while the DAN edits the text it read before.
    let signed = c.directeur.post(c.url(&format!("/{id}/sign"))).json(&delegated("sign", json!({}))).send().await;
    assert_eq!(signed.status, 200, "{}", c.db.name);
    assert_ne!(signed.header("etag"), Some(etag_read.as_str()), "{}: a signature changes the convention", c.db.name);
    let patch = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", &etag_read);
    let (s, p) = call(patch.json(&json!({ "parameters": { "accounts": 260 } }))).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{}: {p}", c.db.name);
    assert_eq!(live_steps(&c, &id).await, vec![("signature".to_string(), "etablissement".to_string())]);
    assert_eq!(c.mails("ce.0940176f@ac-creteil.fr", "signatures_voided").await, 0);
}

backend_test!(a_document_hash_given_in_capitals_as_get_filehash_prints_it_signs_the_document);
async fn a_document_hash_given_in_capitals_as_get_filehash_prints_it_signs_the_document(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = submitted(&c).await;
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let hash = conv["document_hash"].as_str().unwrap().to_string();
    let (s, p) = c.post(&c.directeur, &id, "sign", json!({ "document_hash": hash.to_uppercase() })).await;
    assert_eq!(s, StatusCode::OK, "{}: {p}", c.db.name);
    let other = format!("{}0", &hash[..63]);
    let other = if other == hash { format!("{}1", &hash[..63]) } else { other };
    let (s, p) = c.post(&c.mairie, &id, "sign", json!({ "document_hash": other })).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: another document is still refused: {p}", c.db.name);
}

/// A submitted tripartite convention starting on `start`, signed by its three parties.
async fn signed_from(c: &Cycle, start: &str) -> String {
    let id = c.create(tripartite(start)).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    id
}

backend_test!(a_termination_takes_effect_between_the_start_and_the_day_after_the_end);
async fn a_termination_takes_effect_between_the_start_and_the_day_after_the_end(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    for (effective, why) in [("2026-08-31", "before the start"), ("2029-09-01", "after the end (2029-08-31)")] {
        let body = json!({ "reason": "Changement de solution", "effective_date": effective });
        let (s, p) = c.post(&c.dan, &id, "terminate", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {why}: {p}", c.db.name);
        assert_eq!(p["errors"][0]["field"], "effective_date", "{p}");
    }
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "active", "{}: refused terminations change nothing", c.db.name);
    let agreed = json!({ "reason": "Changement de solution", "mutual_agreement": true });
    let ended = c.step_ok(&c.admin, &id, "terminate", agreed).await;
    assert_eq!(ended["termination_effective"], "2026-09-01", "agreed by all parties: today, by default");

    // Signed for next January, terminated today: it ends on its start, never before it, and
    // never takes effect.
    let later = signed_from(&c, "2027-01-01").await;
    let (_, conv) = call(c.dan.get(c.url(&format!("/{later}")))).await;
    assert_eq!(conv["status"], "signed", "{}", c.db.name);
    let ended = c.step_ok(&c.mairie, &later, "terminate", json!({ "reason": "Renoncement" })).await;
    assert_eq!(ended["termination_effective"], "2027-01-01", "{}: {ended}", c.db.name);
    let new_year = Utc.with_ymd_and_hms(2027, 1, 1, 5, 15, 0).unwrap();
    let report = entcp::conventions::jobs::daily(&c.db.store, &load_models(), new_year).await.unwrap();
    assert_eq!((report.terminated, report.activated), (1, 0), "{}", c.db.name);
    let (_, conv) = call(c.dan.get(c.url(&format!("/{later}")))).await;
    assert_eq!(conv["status"], "terminated", "{}", c.db.name);
}

backend_test!(an_avenant_in_preparation_ends_with_the_convention_it_amends_and_never_revives_it);
async fn an_avenant_in_preparation_ends_with_the_convention_it_amends_and_never_revives_it(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let avenant = c.submitted_avenant(&id).await;
    c.step_ok(&c.directeur, &avenant, "sign", json!({})).await;

    let agreed = json!({ "reason": "Changement de solution", "mutual_agreement": true });
    c.step_ok(&c.admin, &id, "terminate", agreed).await;
    let (_, av) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert_eq!(av["status"], "terminated", "{}: {av}", c.db.name);
    for who in [&c.mairie, &c.dan] {
        let (s, p) = c.post(who, &avenant, "sign", json!({})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
    }
    let (_, original) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(original["status"], "terminated", "{}", c.db.name);
    assert_eq!(by_action(&audited(&c, &avenant).await, "conventions.terminate"), ["user:root@test.fr"]);
    // The école may take a new convention: the ended avenant holds no place on it.
    let (s, p) = call(c.dan.post(c.url("")).json(&tripartite("2026-10-01"))).await;
    assert_eq!(s, StatusCode::CREATED, "{}: {p}", c.db.name);
}

backend_test!(an_avenant_of_a_convention_that_expired_is_neither_submitted_nor_left_holding_the_ecole);
async fn an_avenant_of_a_convention_that_expired_is_neither_submitted_nor_left_holding_the_ecole(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let avenant = c.amended(&id).await;
    let end = Utc.with_ymd_and_hms(2029, 9, 1, 6, 0, 0).unwrap();
    assert_eq!(entcp::conventions::jobs::daily(&c.db.store, &load_models(), end).await.unwrap().expired, 1);
    let (_, av) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert_eq!(av["status"], "terminated", "{}: {av}", c.db.name);
    let (s, p) = c.post(&c.dan, &avenant, "submit", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
}

backend_test!(an_avenant_whose_original_an_earlier_version_left_terminated_is_not_signed);
async fn an_avenant_whose_original_an_earlier_version_left_terminated_is_not_signed(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let avenant = c.submitted_avenant(&id).await;
    // What earlier versions left: the original terminated, its avenant still in signature.
    sqlx::query("UPDATE conventions SET status = 'terminated' WHERE id = $1")
        .bind(&id)
        .execute(c.db.store.pool())
        .await
        .unwrap();
    let (s, p) = c.post(&c.directeur, &avenant, "sign", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
    assert!(p["detail"].as_str().unwrap().contains("résiliée"), "{p}");
    assert!(live_steps(&c, &avenant).await.is_empty(), "{}", c.db.name);
}

backend_test!(a_termination_notified_for_a_later_day_leaves_the_convention_in_force_until_paris_midnight);
async fn a_termination_notified_for_a_later_day_leaves_the_convention_in_force_until_paris_midnight(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let school = org_id(&c, "0940176F").await;
    let body = json!({ "reason": "Fin d'année scolaire", "effective_date": "2027-07-01" });
    let notified = c.step_ok(&c.mairie, &id, "terminate", body).await;
    assert_eq!(
        (notified["status"].as_str(), notified["termination_effective"].as_str()),
        (Some("active"), Some("2027-07-01"))
    );
    let covering = |day: &'static str| {
        let (store, school) = (c.db.store.clone(), school.clone());
        async move { entcp::conventions::active_covering(&store, &load_models(), &school, day).await.unwrap() }
    };
    assert_eq!(
        covering("2026-10-01").await.map(|conv| conv.id),
        Some(id.clone()),
        "{}: in force under notice",
        c.db.name
    );
    assert_eq!(covering("2027-06-30").await.map(|conv| conv.id), Some(id.clone()), "{}", c.db.name);
    assert!(covering("2027-07-01").await.is_none(), "{}: not on its effective day", c.db.name);

    // The école stays covered until then: no second convention of the model before it.
    let (s, p) = call(c.dan.post(c.url("")).json(&tripartite("2027-01-01"))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
    let (s, p) = call(c.dan.post(c.url("")).json(&tripartite("2027-07-01"))).await;
    assert_eq!(s, StatusCode::CREATED, "{}: {p}", c.db.name);
    for (action, body) in [("terminate", json!({ "reason": "Encore" })), ("amend", json!({}))] {
        let (s, p) = c.post(&c.dan, &id, action, body).await;
        assert_eq!(s, StatusCode::CONFLICT, "{}: {action} under notice: {p}", c.db.name);
    }

    // 30 June 23:30 in Paris is 21:30 UTC; 1 July 00:30 in Paris is still 30 June in UTC.
    let models = load_models();
    let before = Utc.with_ymd_and_hms(2027, 6, 30, 21, 30, 0).unwrap();
    assert_eq!(entcp::conventions::jobs::daily(&c.db.store, &models, before).await.unwrap().terminated, 0);
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "active", "{}", c.db.name);
    let after = Utc.with_ymd_and_hms(2027, 6, 30, 22, 30, 0).unwrap();
    assert_eq!(entcp::conventions::jobs::daily(&c.db.store, &models, after).await.unwrap().terminated, 1);
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "terminated", "{}", c.db.name);
    let records = audited(&c, &id).await;
    assert_eq!(by_action(&records, "conventions.terminate"), ["user:ent@fresnes.fr"], "{records:?}");
    assert_eq!(by_action(&records, "conventions.terminated"), ["system:conventions-daily"], "{records:?}");
}

backend_test!(at_half_past_midnight_in_paris_on_new_years_day_the_reference_and_yesterday_are_french);
async fn at_half_past_midnight_in_paris_on_new_years_day_the_reference_and_yesterday_are_french(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    // 1 January 2027, 00:30 in Paris: still 31 December 2026 in UTC.
    c.clock.set(Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap());
    let (s, p) = c.create_changed(|body| body["start_date"] = json!("2026-12-31")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: yesterday in Paris is past: {p}", c.db.name);
    assert_eq!(p["errors"][0]["field"], "start_date", "{p}");
    let (s, conv) = c.create_changed(|body| body["start_date"] = json!("2027-01-01")).await;
    assert_eq!(s, StatusCode::CREATED, "{}: {conv}", c.db.name);
    assert!(conv["reference"].as_str().unwrap().starts_with("CONV-2027-"), "{}: {conv}", c.db.name);
    assert_eq!(conv["end_date"], "2029-12-31");
}

/// The summary of the last `action` audited on the convention `id`.
async fn audited_summary(c: &Cycle, id: &str, action: &str) -> Value {
    let filter = entcp::audit::AuditFilter { target_id: Some(id.to_string()), limit: Some(100), ..Default::default() };
    let page = entcp::audit::list(&c.db.store, &filter, None).await.unwrap();
    page.items.into_iter().find(|r| r.action == action).map(|r| r.summary).unwrap_or(Value::Null)
}

backend_test!(a_resiliation_takes_effect_at_the_end_of_its_notice_unless_every_party_agrees);
async fn a_resiliation_takes_effect_at_the_end_of_its_notice_unless_every_party_agrees(db: crate::common::TestDb) {
    let c = setup(db).await;
    // In force from today (1 September 2026), with the model's notice of three months.
    let id = signed_from(&c, "2026-09-01").await;
    let early = json!({ "reason": "Changement de solution", "effective_date": "2026-11-30" });
    let (s, p) = c.post(&c.mairie, &id, "terminate", early.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: before the end of the notice: {p}", c.db.name);
    assert_eq!(p["errors"][0]["field"], "effective_date", "{p}");
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("préavis de 3 mois : au plus tôt le 1er décembre 2026"), "{message}");
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!((conv["status"].as_str(), conv["termination_effective"].as_str()), (Some("active"), None));
    assert_eq!(c.mails("ent@fresnes.fr", "terminated").await, 0, "{}: nothing notified", c.db.name);

    // One party alone cannot waive the others' notice: a mutual agreement is recorded by an
    // administrator, on sight of the agreement every party signed.
    let mut agreed = early;
    agreed["mutual_agreement"] = json!(true);
    let (s, p) = c.post(&c.mairie, &id, "terminate", agreed.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{}: {p}", c.db.name);
    assert!(p["detail"].as_str().unwrap().contains("administrateur"), "{p}");
    // A résiliation acts for the future: a day already past is refused but by mutual agreement.
    let past = json!({ "reason": "Changement de solution", "effective_date": "2026-08-31" });
    let (s, p) = c.post(&c.admin, &id, "terminate", past).await;
    assert_eq!((s, &p["errors"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("effective_date")), "{p}");
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("pas effet dans le passé"), "{p}");
    assert_eq!(c.mails("ent@fresnes.fr", "terminated").await, 0, "{}: nothing notified", c.db.name);

    // Agreed by every party, the same date is accepted: audited and told as such.
    let notified = c.step_ok(&c.admin, &id, "terminate", agreed).await;
    assert_eq!(
        (notified["status"].as_str(), notified["termination_effective"].as_str()),
        (Some("active"), Some("2026-11-30")),
        "{}",
        c.db.name
    );
    let summary = audited_summary(&c, &id, "conventions.terminate").await;
    assert_eq!((&summary["mutual_agreement"], &summary["notice_months"]), (&json!(true), &json!(3)), "{summary}");
    let mails = crate::common::queued_mails(&c.db.store, "convention").await;
    let told = mails.iter().find(|m| m.context["event"] == "terminated").expect("the notice of the résiliation");
    assert_eq!(told.context["mutual_agreement"], true, "{:?}", told.context);

    // Without agreement nor date: at the end of the notice (today + 3 months).
    let next = signed_from(&c, "2026-11-30").await;
    let ended = c.step_ok(&c.dan, &next, "terminate", json!({ "reason": "Changement de solution" })).await;
    assert_eq!(ended["termination_effective"], "2026-12-01", "{}: {ended}", c.db.name);
    assert_eq!(ended["status"], "signed", "{}: in force until then", c.db.name);
    let summary = audited_summary(&c, &next, "conventions.terminate").await;
    assert_eq!(summary["mutual_agreement"], false, "{summary}");
}

backend_test!(a_convention_ending_before_the_notice_would_is_left_to_expire_unless_every_party_agrees);
async fn a_convention_ending_before_the_notice_would_is_left_to_expire_unless_every_party_agrees(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let body = tripartite_until("2026-09-01", "2026-10-31");
    let id = c.create(body).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let (s, p) = c.post(&c.dan, &id, "terminate", json!({ "reason": "Fermeture" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {p}", c.db.name);
    assert_eq!(p["errors"][0]["field"], "effective_date", "{p}");
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("1er décembre 2026") && message.contains("31 octobre 2026"), "{message}");
    assert!(message.contains("prend fin d'elle-même à son terme"), "{message}");
    let invisible = json!({ "reason": " \u{200b}\u{ad} ", "mutual_agreement": true });
    let (s, p) = c.post(&c.admin, &id, "terminate", invisible).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: a reason that shows nothing: {p}", c.db.name);
    let agreed = json!({ "reason": "Fermeture", "mutual_agreement": true });
    let ended = c.step_ok(&c.admin, &id, "terminate", agreed).await;
    assert_eq!(
        (ended["status"].as_str(), ended["termination_effective"].as_str()),
        (Some("terminated"), Some("2026-09-01"))
    );
}

backend_test!(a_convention_whose_model_sets_no_notice_is_terminated_from_today);
async fn a_convention_whose_model_sets_no_notice_is_terminated_from_today(db: crate::common::TestDb) {
    let c = setup(db).await;
    // The groupement de commandes' model has a notice of withdrawal, none of résiliation.
    let body = json!({
        "model": "groupement-de-commandes",
        "parties": { "coordinateur": "academie:24", "membre": ["commune:94034"] },
        "start_date": "2026-09-01",
    });
    let id = common::fixtures::constitutive(&c.db.store, body).await;
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert!(conv["parameters"].get("preavis_resiliation_mois").is_none(), "{conv}");
    // Signed by its parties (outside this test's subject): in force.
    sqlx::query("UPDATE conventions SET status = 'active' WHERE id = $1")
        .bind(&id)
        .execute(c.db.store.pool())
        .await
        .unwrap();
    let ended = c.step_ok(&c.dan, &id, "terminate", json!({ "reason": "Dissolution du groupement" })).await;
    assert_eq!(
        (ended["status"].as_str(), ended["termination_effective"].as_str()),
        (Some("terminated"), Some("2026-09-01")),
        "{}: {ended}",
        c.db.name
    );
}

/// The bipartite convention (renewable by tacit agreement, three months' notice) of the
/// académie and Fresnes from `start`, signed by both: its id.
/// The [`setup`] with a [`bipartite_signed`] renewable convention in force from 1 September 2026
/// to 31 August 2029: the cycle and the convention's id.
async fn renewable_signed(db: common::TestDb) -> (Cycle, String) {
    let c = setup(db).await;
    let id = bipartite_signed(&c, "2026-09-01").await;
    (c, id)
}

async fn bipartite_signed(c: &Cycle, start: &str) -> String {
    bipartite_signed_as(c, json!({ "start_date": start })).await
}

/// [`bipartite_signed`] with the model version, dates… of `fields`.
async fn bipartite_signed_as(c: &Cycle, fields: Value) -> String {
    let mut body = json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
    });
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    let id = c.create(common::fixtures::with_signatories(body)).await["id"].as_str().unwrap().to_string();
    bipartite_submitted_and_signed(c, &id).await;
    id
}

/// The bipartite `id` submitted by the DAN and signed by the commune and the académie.
async fn bipartite_submitted_and_signed(c: &Cycle, id: &str) {
    c.step_ok(&c.dan, id, "submit", json!({})).await;
    for who in [&c.mairie, &c.dan] {
        c.step_ok(who, id, "sign", json!({})).await;
    }
}

async fn renewals(c: &Cycle, id: &str) -> Vec<(String, String)> {
    let rows = sqlx::query_as("SELECT previous_end, new_end FROM convention_renewals WHERE convention_id = $1")
        .bind(id)
        .fetch_all(c.db.store.pool())
        .await
        .unwrap();
    rows
}

/// Runs the daily job at `on` and checks that it expires the convention `id` (renewing none),
/// which then reads expired, ended on `end_date`.
async fn expires_at_its_term(c: &Cycle, id: &str, on: chrono::DateTime<Utc>, end_date: &str) {
    let report = entcp::conventions::jobs::daily(&c.db.store, &load_models(), on).await.unwrap();
    assert_eq!((report.renewed, report.expired), (0, 1), "{}", c.db.name);
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let read = (conv["status"].as_str(), conv["end_date"].as_str());
    assert_eq!(read, (Some("expired"), Some(end_date)), "{}: {conv}", c.db.name);
}

// A non-reconduction recorded on a convention that an avenant later replaces stays recorded: the
// avenant in force expires at the term instead of being renewed tacitly.
backend_test!(a_non_renewal_recorded_before_an_avenant_still_ends_the_convention_at_its_term);
async fn a_non_renewal_recorded_before_an_avenant_still_ends_the_convention_at_its_term(db: crate::common::TestDb) {
    let (c, id) = renewable_signed(db).await;
    c.clock.set(day(2027, 1, 10));
    c.step_ok(&c.mairie, &id, "non-renewal", json!({ "reason": "Changement de prestataire" })).await;
    let avenant_id = c.submitted_avenant(&id).await;
    for who in [&c.mairie, &c.dan] {
        c.step_ok(who, &avenant_id, "sign", json!({})).await;
    }
    let (_, active) = call(c.dan.get(c.url(&format!("/{avenant_id}")))).await;
    assert_eq!(active["status"], "active", "{}: {active}", c.db.name);
    assert_eq!(active["non_renewal"]["reason"], "Changement de prestataire", "{}: {active}", c.db.name);

    expires_at_its_term(&c, &avenant_id, day(2029, 9, 1), "2029-08-31").await;
}

// The term reminders of a renewable convention sent before renewals existed (keys without the
// term) are not sent again once the job claims them per term.
backend_test!(a_term_reminder_sent_before_renewals_existed_is_not_sent_again);
async fn a_term_reminder_sent_before_renewals_existed_is_not_sent_again(db: crate::common::TestDb) {
    let (c, id) = renewable_signed(db).await;
    let sent = "2029-06-02T04:15:00.000000Z";
    let sql = "INSERT INTO convention_reminders (convention_id, reminder, sent_at) VALUES ($1, 'expiry-90', $2)";
    common::execute(&c.db.store, sql, &[&id, sent]).await;
    let day = Utc.with_ymd_and_hms(2029, 6, 3, 6, 15, 0).unwrap();
    entcp::conventions::jobs::daily(&c.db.store, &load_models(), day).await.unwrap();
    let mails = crate::common::queued_mails(&c.db.store, "convention").await;
    assert!(!mails.iter().any(|m| m.context["event"] == "expiring"), "{}: sent again", c.db.name);
}

backend_test!(a_renewable_convention_is_renewed_tacitly_at_its_term_until_a_party_opposes_in_time);
async fn a_renewable_convention_is_renewed_tacitly_at_its_term_until_a_party_opposes_in_time(
    db: crate::common::TestDb,
) {
    // In force from 1 September 2026 to 31 August 2029; three months' notice: the last day to
    // oppose the renewal is 31 May 2029.
    let (c, id) = renewable_signed(db).await;
    let models = load_models();

    // 90 days before the last day to oppose, the parties are told it (besides the term's reminders).
    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 3, 2)).await.unwrap();
    assert_eq!(report.reminders, 1, "{}", c.db.name);
    let notices = crate::common::queued_notices(&c.db.store, "convention").await;
    let warned = notices.iter().find(|n| n.context["event"] == "non_renewal_deadline").expect("the deadline reminder");
    assert_eq!((warned.context["deadline"].as_str(), warned.context["days"].as_i64()), (Some("31 mai 2029"), Some(90)));
    let told = |to: &str| warned.recipients.iter().any(|r| r == to);
    assert!(told("ent@fresnes.fr") && told("dan@ac-creteil.fr"), "{:?}", warned.recipients);
    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 6, 2)).await.unwrap();
    let mails = crate::common::queued_mails(&c.db.store, "convention").await;
    let expiring = mails.iter().find(|m| m.context["event"] == "expiring").expect("the term's reminder");
    assert_eq!((report.reminders, &expiring.context["renews"]), (1, &json!(true)), "{}", c.db.name);
    assert_eq!(expiring.context["renewed_until"], "31 août 2032", "{:?}", expiring.context);

    // Past the last day: the opposition is refused naming it (a résiliation is then taken in
    // the renewed term: `a_resiliation_notified_after_the_last_day_to_oppose_takes_effect_in_the_renewed_term`).
    c.clock.set(day(2029, 6, 1));
    let (s, p) = c.post(&c.mairie, &id, "non-renewal", json!({ "reason": "Changement de prestataire" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {p}", c.db.name);
    assert!(p["detail"].as_str().unwrap().contains("au plus tard le 31 mai 2029"), "{p}");

    // At its term, renewed for the model's 36 months, still in force; once, however many runs.
    for (run, renewed) in [(day(2029, 9, 1), 1), (day(2029, 9, 1), 0), (day(2029, 9, 2), 0)] {
        let report = entcp::conventions::jobs::daily(&c.db.store, &models, run).await.unwrap();
        assert_eq!((report.renewed, report.expired), (renewed, 0), "{}: on {run}", c.db.name);
    }
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!((conv["status"].as_str(), conv["end_date"].as_str()), (Some("active"), Some("2032-08-31")), "{conv}");
    assert_eq!(renewals(&c, &id).await, vec![("2029-08-31".to_string(), "2032-08-31".to_string())]);
    let summary = audited_summary(&c, &id, "conventions.renew").await;
    assert_eq!(summary, json!({ "previous_end": "2029-08-31", "end_date": "2032-08-31" }), "{}", c.db.name);
    assert_eq!(c.mails("ent@fresnes.fr", "renewed").await, 1, "{}: the parties are told", c.db.name);
    let ecole = org_id(&c, "0940176F").await;
    let covered = entcp::conventions::active_covering(&c.db.store, &models, &ecole, "2029-09-02").await.unwrap();
    assert_eq!(covered.map(|conv| conv.id), Some(id.clone()), "{}: its écoles stay covered", c.db.name);

    // A party opposes in time for the next term: recorded with who and when, told to the
    // parties, once; the convention then expires at its term.
    c.clock.set(day(2032, 5, 31));
    let opposed = c.step_ok(&c.mairie, &id, "non-renewal", json!({ "reason": "Changement de prestataire" })).await;
    let recorded = &opposed["non_renewal"];
    assert_eq!(recorded["org_id"], json!(org_id(&c, "commune:94034").await), "{opposed}");
    assert!(recorded["by"].as_str().unwrap().contains("ent@fresnes.fr"), "{opposed}");
    assert_eq!(
        (recorded["reason"].as_str(), opposed["status"].as_str()),
        (Some("Changement de prestataire"), Some("active"))
    );
    assert!(recorded["at"].as_str().unwrap().starts_with("2032-05-31"), "{opposed}");
    let (s, p) = c.post(&c.dan, &id, "non-renewal", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
    assert_eq!(audited_summary(&c, &id, "conventions.non_renewal").await["party"], "collectivite");
    assert_eq!(c.mails("dan@ac-creteil.fr", "non_renewal").await, 1, "{}", c.db.name);
    expires_at_its_term(&c, &id, day(2032, 9, 1), "2032-08-31").await;
}

// Past the last day to oppose (31 May 2029), what the renewal clause leaves: a résiliation with
// its three months' notice. Notified on 1 July 2029, it takes effect on 1 October 2029, in the
// renewed term (the job renews the convention on 1 September, then ends it); the term's
// reminders no longer name the passed day.
backend_test!(a_resiliation_notified_after_the_last_day_to_oppose_takes_effect_in_the_renewed_term);
async fn a_resiliation_notified_after_the_last_day_to_oppose_takes_effect_in_the_renewed_term(
    db: crate::common::TestDb,
) {
    let (c, id) = renewable_signed(db).await;
    let models = load_models();
    entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 6, 2)).await.unwrap();
    let mails = crate::common::queued_mails(&c.db.store, "convention").await;
    let expiring = mails.iter().find(|m| m.context["event"] == "expiring").expect("the term's reminder");
    assert_eq!(expiring.context["renews"], json!(true), "{}: {:?}", c.db.name, expiring.context);
    assert!(expiring.context.get("deadline").is_none(), "{}: a passed day: {:?}", c.db.name, expiring.context);
    assert_eq!(expiring.context["notice_months"], json!(3), "{:?}", expiring.context);

    c.clock.set(day(2029, 7, 1));
    for (effective, why) in [("2029-09-15", "before the notice ends"), ("2032-09-01", "after the renewed term")] {
        let body = json!({ "reason": "Changement de prestataire", "effective_date": effective });
        let (s, p) = c.post(&c.mairie, &id, "terminate", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {why}: {p}", c.db.name);
        assert_eq!(p["errors"][0]["field"], "effective_date", "{p}");
    }
    let ended = c.step_ok(&c.mairie, &id, "terminate", json!({ "reason": "Changement de prestataire" })).await;
    assert_eq!(ended["termination_effective"], "2029-10-01", "{}: {ended}", c.db.name);

    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 9, 1)).await.unwrap();
    assert_eq!((report.renewed, report.expired), (1, 0), "{}", c.db.name);
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!((conv["status"].as_str(), conv["end_date"].as_str()), (Some("active"), Some("2032-08-31")), "{conv}");
    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 10, 1)).await.unwrap();
    assert_eq!(report.terminated, 1, "{}", c.db.name);
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "terminated", "{}: {conv}", c.db.name);
}

// A renewable convention is not renewed over the convention that succeeds it on its écoles from
// the day after its term: it expires, the successor takes over. A new convention of the same
// model starting later than that day is refused, the renewed one still covering the écoles.
backend_test!(a_renewable_convention_is_not_renewed_over_a_successor_starting_the_day_after_its_term);
async fn a_renewable_convention_is_not_renewed_over_a_successor_starting_the_day_after_its_term(
    db: crate::common::TestDb,
) {
    let (c, id) = renewable_signed(db).await;
    let models = load_models();
    c.clock.set(day(2029, 6, 15));
    let later = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune", "start_date": "2029-10-01",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
    }));
    let (s, p) = call(c.dan.post(c.url("")).json(&later)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: renewed, it still covers on 1 October: {p}", c.db.name);
    assert!(p["detail"].as_str().unwrap().contains("le 1er septembre 2029, lendemain de ce terme"), "{p}");

    let successor = bipartite_signed(&c, "2029-09-01").await;
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    assert_eq!(next["status"], "signed", "{}: {next}", c.db.name);
    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 9, 1)).await.unwrap();
    assert_eq!((report.renewed, report.expired, report.activated), (0, 1, 1), "{}", c.db.name);
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!((old["status"].as_str(), old["end_date"].as_str()), (Some("expired"), Some("2029-08-31")), "{old}");
    assert!(renewals(&c, &id).await.is_empty(), "{}", c.db.name);
    let summary = audited_summary(&c, &id, "conventions.not_renewed").await;
    assert_eq!(summary["successor"], next["reference"], "{}: {summary}", c.db.name);
    let ecole = org_id(&c, "0940176F").await;
    let covered = entcp::conventions::active_covering(&c.db.store, &models, &ecole, "2029-09-02").await.unwrap();
    assert_eq!(covered.map(|conv| conv.id), Some(successor), "{}", c.db.name);
}

/// A renewable [`bipartite_signed`] convention in force from 1 September 2026 to 31 August 2029
/// and its successor of the same model from 1 September 2029, submitted on 15 June 2029 and
/// signed by the mairie, awaiting the DAN's signature: their ids.
async fn successor_awaiting_the_dan(c: &Cycle) -> (String, String) {
    let id = bipartite_signed(c, "2026-09-01").await;
    c.clock.set(day(2029, 6, 15));
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune", "start_date": "2029-09-01",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
    }));
    let successor = c.create(body).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &successor, "submit", json!({})).await;
    c.step_ok(&c.mairie, &successor, "sign", json!({})).await;
    (id, successor)
}

// A successor still in signature on the term does not stop the tacit renewal (only a signed one
// does): the old convention is renewed, and the successor, which would now overlap it, can no
// longer be signed (409 naming the renewed convention); its signature before the term counted.
backend_test!(a_successor_still_in_signature_at_the_term_lets_the_renewal_happen_and_can_no_longer_be_signed);
async fn a_successor_still_in_signature_at_the_term_lets_the_renewal_happen_and_can_no_longer_be_signed(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let (id, successor) = successor_awaiting_the_dan(&c).await;
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;

    let report = entcp::conventions::jobs::daily(&c.db.store, &load_models(), day(2029, 9, 1)).await.unwrap();
    assert_eq!((report.renewed, report.expired, report.activated), (1, 0, 0), "{}", c.db.name);
    assert_eq!(renewals(&c, &id).await, vec![("2029-08-31".to_string(), "2032-08-31".to_string())]);
    c.clock.set(day(2029, 9, 2));
    let (s, p) = c.post(&c.dan, &successor, "sign", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("ne peut plus être signée"), "{}: {detail}", c.db.name);
    assert!(detail.contains(old["reference"].as_str().unwrap()), "{}: the renewed one is named: {detail}", c.db.name);
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    assert_eq!(next["status"], "in_signature", "{}: {next}", c.db.name);
    assert_eq!(live_steps(&c, &successor).await.len(), 1, "{}: the mairie's signature is kept", c.db.name);
    let ecole = org_id(&c, "0940176F").await;
    let covered = entcp::conventions::active_covering(&c.db.store, &load_models(), &ecole, "2029-09-02").await.unwrap();
    assert_eq!(covered.map(|conv| conv.id), Some(id), "{}", c.db.name);
}

// The daily job completed a convention left in signature with every signature (what an earlier
// race left) without checking the others on its écoles: one renewed tacitly meanwhile was then in
// force beside it. It is now left in signature, the refusal audited and counted, and the job's run
// fails saying so.
backend_test!(a_convention_left_in_signature_is_not_completed_over_one_renewed_meanwhile_and_the_run_fails);
async fn a_convention_left_in_signature_is_not_completed_over_one_renewed_meanwhile_and_the_run_fails(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let (id, successor) = successor_awaiting_the_dan(&c).await;
    c.step_ok(&c.dan, &successor, "sign", json!({})).await;
    common::execute(
        &c.db.store,
        "UPDATE conventions SET status = 'in_signature', signed_at = NULL WHERE id = $1",
        &[&successor],
    )
    .await;
    let (models, actor) = (load_models(), entcp::identity::Actor::system("conventions-daily"));
    let ctx =
        entcp::conventions::workflow::Ctx { store: &c.db.store, models: &models, actor: &actor, now: day(2029, 9, 1) };
    assert!(entcp::conventions::renewal::renew_if_due(&ctx, &id).await.unwrap(), "{}", c.db.name);

    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 9, 1)).await.unwrap();
    assert_eq!((report.completed, report.left_in_signature), (0, 1), "{}", c.db.name);
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    assert_eq!(next["status"], "in_signature", "{}: {next}", c.db.name);
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let summary = audited_summary(&c, &successor, "conventions.completion_refused").await;
    let reason = summary["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(old["reference"].as_str().unwrap()), "{}: {summary}", c.db.name);

    c.clock.set(day(2029, 9, 2));
    let (s, run) = call(c.admin.post("/api/v1/jobs/conventions-daily/run")).await;
    assert_eq!((s, run["outcome"].as_str()), (StatusCode::OK, Some("failure")), "{}: {run}", c.db.name);
    let message = run["message"].as_str().unwrap_or_default();
    assert!(message.contains("1 convention(s) signée(s) par toutes les parties laissée(s) en signature"), "{message}");
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    assert_eq!(next["status"], "in_signature", "{}: {next}", c.db.name);
}

// The last signature of a successor and the tacit renewal of the convention it succeeds, at once:
// each checked the other before either wrote (the signature outside its transaction, the renewal
// seeing the successor still in signature), and both won, two conventions in force on the same
// écoles. Both now check under one lock inside their transaction: exactly one wins.
race_test!(the_last_signature_of_a_successor_and_the_tacit_renewal_at_once_leave_one_in_force);
async fn the_last_signature_of_a_successor_and_the_tacit_renewal_at_once_leave_one_in_force(db: crate::common::TestDb) {
    let c = setup(db).await;
    let (id, successor) = successor_awaiting_the_dan(&c).await;
    c.clock.set(day(2029, 9, 1));
    let (store, old) = (c.db.store.clone(), id.clone());
    // The daily job's renewal of the old convention (not the whole job: its reminder of the
    // successor's pending signature would wait for the successor's row too).
    let renewal = move || {
        tokio::spawn(async move {
            let (models, actor) = (load_models(), entcp::identity::Actor::system("conventions-daily"));
            let ctx = entcp::conventions::workflow::Ctx {
                store: &store,
                models: &models,
                actor: &actor,
                now: day(2029, 9, 1),
            };
            entcp::conventions::renewal::renew_if_due(&ctx, &old).await
        })
    };
    // The signature waits for the successor's row (PostgreSQL) or the write lock (SQLite).
    let hold =
        common::hold_writes(&c.db.store, "SELECT id FROM conventions WHERE id = $1 FOR UPDATE", &[&successor]).await;
    let signature = tokio::spawn(call(c.dan.post(c.url(&format!("/{successor}/sign"))).json(&json!({}))));
    common::let_them_queue().await;
    // The renewal runs meanwhile where it can (PostgreSQL), else it queues beside the signature.
    let report = if c.db.store.backend().is_postgres() {
        let report = renewal().await.unwrap();
        hold.commit().await.unwrap();
        report
    } else {
        hold.commit().await.unwrap();
        renewal().await.unwrap()
    };
    let renewed = report.unwrap();
    let (status, answer) = signature.await.unwrap();
    assert!(matches!(status, StatusCode::OK | StatusCode::CONFLICT), "{}: {status} {answer}", c.db.name);
    let signed = status == StatusCode::OK;
    assert!(signed != renewed, "{}: signed {signed}, renewed {renewed}: {answer}", c.db.name);
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    let old_renewed = old["end_date"] == "2032-08-31";
    let next_in_force = matches!(next["status"].as_str(), Some("signed" | "active"));
    assert!(old_renewed != next_in_force, "{}: {old} / {next}", c.db.name);
}

// A renewable convention was not renewed over any convention signed on one of its écoles from
// the day after its term, even one stored on some of its écoles only: the others lost their
// convention. It was then renewed over such a partial successor, and both were in force on the
// écoles the successor covers. A bipartite's écoles follow the annuaire and cannot be left out
// of it: its renewal is refused (audited with the reason), it expires at its term, and the
// daily run fails naming it for a human to settle the other écoles.
backend_test!(a_renewable_convention_following_the_annuaire_is_not_renewed_over_a_partial_successor);
async fn a_renewable_convention_following_the_annuaire_is_not_renewed_over_a_partial_successor(
    db: crate::common::TestDb,
) {
    let (c, id) = renewable_signed(db).await;
    let successor = tripartite_successor(&c).await;
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;

    c.clock.set(day(2029, 9, 1));
    let (s, run) = call(c.admin.post("/api/v1/jobs/conventions-daily/run")).await;
    assert_eq!((s, run["outcome"].as_str()), (StatusCode::OK, Some("failure")), "{}: {run}", c.db.name);
    let message = run["message"].as_str().unwrap_or_default();
    let reference = old["reference"].as_str().unwrap();
    assert!(message.contains(&format!("1 convention(s) non reconduite(s) ({reference})")), "{message}");
    assert!(renewals(&c, &id).await.is_empty(), "{}", c.db.name);
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!((old["status"].as_str(), old["end_date"].as_str()), (Some("expired"), Some("2029-08-31")), "{old}");
    let summary = audited_summary(&c, &id, "conventions.renewal_refused").await;
    assert_eq!(summary["partial_successor"], next["reference"], "{}: {summary}", c.db.name);
    assert!(summary["reason"].as_str().unwrap_or_default().contains("annuaire"), "{summary}");
    assert!(audited_summary(&c, &id, "conventions.renewed_over_partial_successor").await.is_null());
    assert_eq!(doubly_covered(&c, "2029-09-01").await, Vec::<String>::new(), "{}", c.db.name);
}

// The same succession under a model whose écoles are listed per convention: the renewal goes on
// for the écoles the successor does not take over and leaves out those it covers (audited), so
// that no école is under two conventions in force.
backend_test!(a_renewable_convention_listing_its_ecoles_is_renewed_without_those_a_partial_successor_covers);
async fn a_renewable_convention_listing_its_ecoles_is_renewed_without_those_a_partial_successor_covers(
    db: crate::common::TestDb,
) {
    let (c, id) = renewable_signed(db).await;
    let successor = partial_successor(&c).await;
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    // The bipartite as a model listing its écoles (its covered party may be an établissement).
    let mut models = load_models();
    for model in models.iter_mut().filter(|m| m.id == "bipartite-commune") {
        let party = model.parties.iter_mut().find(|p| p.key == "collectivite").unwrap();
        party.kinds.push(entcp::kernel::roles::OrgKind::Etablissement);
        assert!(!model.follows_registry());
    }

    let report = entcp::conventions::jobs::daily(&c.db.store, &models, day(2029, 9, 1)).await.unwrap();
    assert_eq!((report.renewed, report.expired), (1, 0), "{}", c.db.name);
    assert!(report.renewals_refused.is_empty(), "{}: {report:?}", c.db.name);
    assert_eq!(renewals(&c, &id).await, vec![("2029-08-31".to_string(), "2032-08-31".to_string())]);
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let codes = |conv: &Value| -> Vec<String> {
        conv["schools"].as_array().unwrap().iter().map(|s| s["code"].as_str().unwrap().to_string()).collect()
    };
    let (kept, taken) = (codes(&old), codes(&next));
    assert!(!kept.is_empty() && kept.iter().all(|code| !taken.contains(code)), "{}: {kept:?} / {taken:?}", c.db.name);
    let summary = audited_summary(&c, &id, "conventions.renewed_over_partial_successor").await;
    assert_eq!(summary["partial_successor"], next["reference"], "{}: {summary}", c.db.name);
    let mut left_out: Vec<String> =
        summary["left_out"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    left_out.sort();
    let mut taken = taken;
    taken.sort();
    assert_eq!(left_out, taken, "{}: {summary}", c.db.name);
    assert_eq!(doubly_covered(&c, "2029-09-01").await, Vec::<String>::new(), "{}", c.db.name);
}

/// A tripartite of the école Robert Doisneau, one of the [`renewable_signed`] bipartite's, drafted
/// on 15 June 2029 from 1 October (beside the bipartite, of the same RGPD roles) then put in force
/// from the day after its term, 1 September 2029 (outside the test's subject: drafting would
/// refuse it): a partial successor, the bipartite covering the commune's other écoles. Its id.
async fn tripartite_successor(c: &Cycle) -> String {
    c.clock.set(day(2029, 6, 15));
    let successor = c.create(tripartite("2029-10-01")).await["id"].as_str().unwrap().to_string();
    let sql = "UPDATE conventions SET start_date = '2029-09-01', status = 'active' WHERE id = $1";
    assert_eq!(common::execute(&c.db.store, sql, &[&successor]).await, 1, "{}", c.db.name);
    successor
}

// The succession read the écoles listed when the renewed convention was drafted: an école opened
// in the commune since, which its bipartite covers as the annuaire stands, did not count. A
// tripartite from the day after its term on the only école listed was taken at drafting for a
// whole successor, and the renewal job let the bipartite expire, the new école losing its
// convention. Both read today's coverage (`schools_covered_now`, the rule of `others_on`): the
// commune, party to it, is refused the draft (« perdraient »), and the renewal is refused.
backend_test!(an_ecole_opened_after_drafting_counts_in_the_succession_of_a_renewable_convention);
async fn an_ecole_opened_after_drafting_counts_in_the_succession_of_a_renewable_convention(db: crate::common::TestDb) {
    let (c, id) = renewable_signed(db).await;
    let name = c.db.name;
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let reference = old["reference"].as_str().unwrap().to_string();
    assert!(old["schools"].as_array().unwrap().len() > 1, "{name}: {old}");
    // Drafted when the école Robert Doisneau was the commune's only one: the others opened since.
    let doisneau = entcp::registry::resolve_org(&c.db.store, "0940176F").await.unwrap().id;
    let sql = "DELETE FROM convention_schools WHERE convention_id = $1 AND org_id <> $2";
    assert!(common::execute(&c.db.store, sql, &[&id, &doisneau]).await > 0, "{name}");

    c.clock.set(day(2029, 5, 15));
    let refused = call(c.mairie.post(c.url("")).json(&tripartite("2029-09-01"))).await;
    assert_opposes(name, refused, "qui perdraient alors leur convention", &reference, true);

    let successor = tripartite_successor(&c).await;
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    let report = entcp::conventions::jobs::daily(&c.db.store, &load_models(), day(2029, 9, 1)).await.unwrap();
    assert_eq!(report.renewals_refused.len(), 1, "{name}: {report:?}");
    let summary = audited_summary(&c, &id, "conventions.renewal_refused").await;
    assert_eq!(summary["partial_successor"], next["reference"], "{name}: {summary}");
    assert!(audited_summary(&c, &id, "conventions.not_renewed").await.is_null(), "{name}: not a whole successor");
}

/// A bipartite of the [`renewable_signed`] convention's parties signed on 15 June 2029 from the
/// day after its term, then stored (as before drafting refused it) without the first of its
/// écoles: a partial successor. Its id.
async fn partial_successor(c: &Cycle) -> String {
    c.clock.set(day(2029, 6, 15));
    let successor = bipartite_signed(c, "2029-09-01").await;
    let (_, next) = call(c.dan.get(c.url(&format!("/{successor}")))).await;
    let left_out = next["schools"][0]["id"].as_str().unwrap().to_string();
    let sql = "DELETE FROM convention_schools WHERE convention_id = $1 AND org_id = $2";
    assert_eq!(common::execute(&c.db.store, sql, &[&successor, &left_out]).await, 1, "{}", c.db.name);
    successor
}

/// The écoles (codes) two conventions in force on `on` list (signed or active, in their dates,
/// no résiliation in effect).
async fn doubly_covered(c: &Cycle, on: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT o.code FROM convention_schools s JOIN conventions c ON c.id = s.convention_id \
         JOIN orgs o ON o.id = s.org_id WHERE c.status IN ('signed', 'active') AND c.start_date <= $1 \
         AND c.end_date >= $2 AND (c.termination_effective IS NULL OR c.termination_effective > $3) \
         GROUP BY o.code HAVING COUNT(*) > 1 ORDER BY o.code",
    )
    .bind(on)
    .bind(on)
    .bind(on)
    .fetch_all(c.db.store.pool())
    .await
    .unwrap()
}

// A successor from the day after the term ends the tacit renewal of the whole convention: one
// covering only some of its écoles is refused (the others would lose their convention), and
// accepted once a party records the non-reconduction.
backend_test!(a_successor_covering_only_some_of_the_ecoles_of_a_renewable_convention_is_refused);
async fn a_successor_covering_only_some_of_the_ecoles_of_a_renewable_convention_is_refused(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = bipartite_signed(&c, "2026-09-01").await;
    let (_, old) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert!(old["schools"].as_array().unwrap().len() > 1, "{}: {old}", c.db.name);
    c.clock.set(Utc.with_ymd_and_hms(2029, 5, 15, 8, 0, 0).unwrap());
    let one_ecole = tripartite("2029-09-01");
    let (s, p) = call(c.dan.post(c.url("")).json(&one_ecole)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {p}", c.db.name);
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains(old["reference"].as_str().unwrap()) && detail.contains("perdraient"), "{detail}");
    assert_eq!(p["conflicting_convention"], old["reference"], "{}: {p}", c.db.name);
    c.step_ok(&c.mairie, &id, "non-renewal", json!({ "reason": "Une convention par école" })).await;
    c.create(one_ecole).await;
}

// A bipartite convention opened on version 1 says « reconduite tacitement pour une même durée »:
// one of 24 months is renewed for 24 months, each time (not for the model's 36 months, nor for
// its length once renewed).
backend_test!(a_version_1_bipartite_convention_is_renewed_for_its_own_duration);
async fn a_version_1_bipartite_convention_is_renewed_for_its_own_duration(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = bipartite_of_24_months(&c, Some(1)).await;
    assert!(draft_html(&c, &id).await.contains("reconduite tacitement pour une même durée"), "{}", c.db.name);
    let terms = renewed_twice(&c, &id).await;
    assert_eq!(
        terms,
        (json!("31 août 2030"), vec![pair("2028-08-31", "2030-08-31"), pair("2030-08-31", "2032-08-31")]),
        "{}",
        c.db.name
    );
    // The README's upgrade query lists each renewal beside the term signed, on both backends.
    let readme = include_str!("../../../../README.md");
    let start = readme.find("SELECT c.reference, c.status, r.previous_end").expect("the upgrade query");
    let query = &readme[start..start + readme[start..].find("```").unwrap()];
    let rows: Vec<(String, String, String, String, String, String, String)> =
        sqlx::query_as(query).fetch_all(c.db.store.pool()).await.unwrap();
    let listed: Vec<_> = rows.into_iter().map(|(_, _, from, to, _, du, au)| (from, to, du, au)).collect();
    let signed = |from: &str, to: &str| (from.into(), to.into(), "2026-09-01".into(), "2028-08-31".into());
    assert_eq!(listed, vec![signed("2028-08-31", "2030-08-31"), signed("2030-08-31", "2032-08-31")], "{}", c.db.name);
}

// Version 2 says « reconduite tacitement à son échéance, pour une durée de 36 mois à chaque
// fois »: one of 24 months is renewed for 36 months.
backend_test!(a_version_2_bipartite_convention_is_renewed_for_the_duration_its_text_states);
async fn a_version_2_bipartite_convention_is_renewed_for_the_duration_its_text_states(db: crate::common::TestDb) {
    renewed_for_the_36_months_its_text_states(setup(db).await, Some(2)).await;
}

// Version 3, the latest, only cites the SDET 6.4: it renews as version 2 does.
backend_test!(a_bipartite_convention_of_the_latest_version_is_renewed_for_the_duration_its_text_states);
async fn a_bipartite_convention_of_the_latest_version_is_renewed_for_the_duration_its_text_states(
    db: crate::common::TestDb,
) {
    renewed_for_the_36_months_its_text_states(setup(db).await, None).await;
}

/// A bipartite of 24 months opened on model `version` (the latest when `None`) states and gets
/// renewals of the model's 36 months.
async fn renewed_for_the_36_months_its_text_states(c: Cycle, version: Option<u32>) {
    let id = bipartite_of_24_months(&c, version).await;
    let text = draft_html(&c, &id).await.replace("&#x27;", "'");
    // Drafted now, in edition 7: durations in letters.
    let said = "pour une durée de vingt-quatre mois, soit jusqu'au 31 août 2028";
    assert!(text.contains(&french(said)), "{}", c.db.name);
    assert!(text.contains(&french("pour une durée de trente-six mois à chaque fois")), "{}", c.db.name);
    let terms = renewed_twice(&c, &id).await;
    assert_eq!(terms, (json!("31 août 2031"), vec![pair("2028-08-31", "2031-08-31")]), "{}", c.db.name);
}

// An avenant starts on its own date and keeps the original's end: « pour une même durée » is
// the duration the lineage was signed for (24 months), not the avenant's leftover months.
backend_test!(a_version_1_convention_amended_near_its_term_is_renewed_for_its_signed_duration);
async fn a_version_1_convention_amended_near_its_term_is_renewed_for_its_signed_duration(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = bipartite_of_24_months(&c, Some(1)).await;
    c.clock.set(day(2028, 6, 20));
    let avenant_id = c.submitted_avenant(&id).await;
    for who in [&c.mairie, &c.dan] {
        c.step_ok(who, &avenant_id, "sign", json!({})).await;
    }
    let (_, active) = call(c.dan.get(c.url(&format!("/{avenant_id}")))).await;
    assert_eq!(
        (active["status"].as_str(), active["start_date"].as_str()),
        (Some("active"), Some("2028-06-20")),
        "{}: {active}",
        c.db.name
    );
    entcp::conventions::jobs::daily(&c.db.store, &load_models(), day(2028, 9, 1)).await.unwrap();
    assert_eq!(renewals(&c, &avenant_id).await, vec![pair("2028-08-31", "2030-08-31")], "{}", c.db.name);
}

// « Prend effet le … pour une durée de … »: a draft whose start alone moves keeps its duration,
// its end moving by the same span, whatever the model's default 36 months: a tripartite of 24
// months and a version 1 bipartite of 24 months (renewed « pour une même durée »). An end given
// with the start is the one kept.
backend_test!(moving_only_the_start_of_a_draft_keeps_its_duration);
async fn moving_only_the_start_of_a_draft_keeps_its_duration(db: crate::common::TestDb) {
    let c = setup(db).await;
    let tri = tripartite_until("2026-09-01", "2028-08-31");
    let bi = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune", "version": 1, "start_date": "2026-09-01", "end_date": "2028-08-31",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
    }));
    for body in [tri, bi] {
        let id = c.create(body).await["id"].as_str().unwrap().to_string();
        let moved = c.edit(&id, json!({ "start_date": "2026-10-15" })).await;
        assert_eq!(
            (moved["start_date"].as_str(), moved["end_date"].as_str()),
            (Some("2026-10-15"), Some("2028-10-14")),
            "{}: {moved}",
            c.db.name
        );
        let both = c.edit(&id, json!({ "start_date": "2026-11-01", "end_date": "2029-06-30" })).await;
        assert_eq!(both["end_date"], "2029-06-30", "{}: {both}", c.db.name);
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

/// A bipartite convention of Fresnes from 1 September 2026 to 31 August 2028, opened on model
/// `version` (the latest when `None`), signed: its id.
async fn bipartite_of_24_months(c: &Cycle, version: Option<u32>) -> String {
    let id =
        bipartite_signed_as(c, json!({ "start_date": "2026-09-01", "end_date": "2028-08-31", "version": version }))
            .await;
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["model_version"], json!(version.unwrap_or(3)), "{}: {conv}", c.db.name);
    id
}

/// Runs the daily job on the reminder 90 days before 31 August 2028, then on 1 September 2028
/// and 2030: until when the reminder said it renews, and the renewals made, oldest first.
async fn renewed_twice(c: &Cycle, id: &str) -> (Value, Vec<(String, String)>) {
    let models = load_models();
    entcp::conventions::jobs::daily(&c.db.store, &models, day(2028, 6, 2)).await.unwrap();
    let mails = crate::common::queued_mails(&c.db.store, "convention").await;
    let expiring = mails.iter().find(|m| m.context["event"] == "expiring").expect("the term's reminder");
    for run in [day(2028, 9, 1), day(2030, 9, 1)] {
        entcp::conventions::jobs::daily(&c.db.store, &models, run).await.unwrap();
    }
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "active", "{}: {conv}", c.db.name);
    let mut terms = renewals(c, id).await;
    terms.sort();
    assert_eq!(conv["end_date"].as_str(), terms.last().map(|t| t.1.as_str()), "{}: {conv}", c.db.name);
    (expiring.context["renewed_until"].clone(), terms)
}

backend_test!(a_convention_of_a_model_not_renewed_refuses_a_non_renewal_and_expires_at_its_term);
async fn a_convention_of_a_model_not_renewed_refuses_a_non_renewal_and_expires_at_its_term(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let (s, p) = c.post(&c.mairie, &id, "non-renewal", json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {p}", c.db.name);
    assert!(p["detail"].as_str().unwrap().contains("n'est pas reconduite tacitement"), "{p}");
    expires_at_its_term(&c, &id, Utc.with_ymd_and_hms(2029, 9, 1, 6, 15, 0).unwrap(), "2029-08-31").await;
    assert!(renewals(&c, &id).await.is_empty());
}

backend_test!(the_text_states_the_duration_chosen_and_a_convention_opened_on_version_1_keeps_its_text);
async fn the_text_states_the_duration_chosen_and_a_convention_opened_on_version_1_keeps_its_text(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let body = tripartite_until("2026-09-01", "2027-08-31");
    let conv = c.create(body).await;
    assert_eq!(conv["model_version"], 3, "{}: new conventions open on the latest version", c.db.name);
    let id = conv["id"].as_str().unwrap();
    let text = draft_html(&c, id).await;
    // In letters since edition 7.
    let said = "pour une durée de douze mois, soit jusqu&#x27;au 31 août 2027";
    assert!(text.contains(&french(said)), "{}", c.db.name);
    assert!(!text.contains("trente-six mois"), "{}", c.db.name);
    // One opened on version 1 keeps the text of version 1.
    sqlx::query("UPDATE conventions SET model_version = 1 WHERE id = $1")
        .bind(id)
        .execute(c.db.store.pool())
        .await
        .unwrap();
    assert!(draft_html(&c, id).await.contains("pour une durée de trente-six mois"), "{}", c.db.name);
}

backend_test!(a_new_convention_of_each_model_citing_the_sdet_opens_on_version_3_and_cites_sdet_6_4);
async fn a_new_convention_of_each_model_citing_the_sdet_opens_on_version_3_and_cites_sdet_6_4(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    common::import_sample_with_college(&c.db.store).await;
    let second_degre = common::fixtures::with_signatories(json!({
        "model": "tripartite-second-degre",
        "parties": { "academie": "academie:24", "collectivite": "departement:94", "etablissement": "0940999A" },
        "start_date": "2026-09-01"
    }));
    let bipartite = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
        "start_date": "2026-09-01"
    }));
    for body in [tripartite("2026-09-01"), second_degre, bipartite] {
        let conv = c.create(body).await;
        assert_eq!(conv["model_version"], 3, "{}: {conv}", c.db.name);
        let html = draft_html(&c, conv["id"].as_str().unwrap()).await;
        for cited in ["(SDET), version 6.4", "(SDET) dans sa version 6.4"] {
            assert!(html.contains(cited), "{}: {} lacks « {cited} »", c.db.name, conv["model_id"]);
        }
        assert!(!html.contains("version 6.3"), "{}: {} cites the former SDET", c.db.name, conv["model_id"]);
    }
}

backend_test!(a_convention_opened_on_version_2_keeps_citing_sdet_6_3_and_nothing_else_changes);
async fn a_convention_opened_on_version_2_keeps_citing_sdet_6_3_and_nothing_else_changes(db: crate::common::TestDb) {
    let c = setup(db).await;
    let mut body = tripartite("2026-09-01");
    body["version"] = json!(2);
    let conv = c.create(body).await;
    assert_eq!(conv["model_version"], 2, "{}: {conv}", c.db.name);
    let id = conv["id"].as_str().unwrap();
    let on_v2 = draft_html(&c, id).await;
    assert_eq!(on_v2.matches("version 6.3").count(), 2, "{}: the « Vu » and article 1 cite 6.3", c.db.name);
    assert!(!on_v2.contains("version 6.4"), "{}", c.db.name);
    // Version 3 differs from it by the SDET's version only (and the model's version it names).
    assert_eq!(on_v2.matches("(version 2)").count(), 1, "{}: the model named once", c.db.name);
    sqlx::query("UPDATE conventions SET model_version = 3 WHERE id = $1")
        .bind(id)
        .execute(c.db.store.pool())
        .await
        .unwrap();
    // And, from edition 5, by its breach clause: capped at 48 hours where version 2 says « sans délai ».
    let capped = french(
        "de toute violation de données dans les meilleurs délais et au plus tard 48 heures après en avoir pris \
         connaissance",
    );
    // And, from edition 6, by its numbers in letters where version 2 writes figures.
    let on_v3 = on_v2
        .replace("version 6.3", "version 6.4")
        .replace("(version 2)", "(version 3)")
        .replace("sans délai de toute violation de données", &capped)
        .replace(&french("au moins 1 fois par an"), &french("au moins une fois par an"))
        .replace(&french("préavis de 3 mois"), &french("préavis de trois mois"))
        // And, from edition 12, by « l'article 32 du RGPD » and its article 5 the code writes (a cost TTC).
        .replace(&french("prévues à l&#x27;article 32, "), &french("prévues à l&#x27;article 32 du RGPD, "))
        .replace("Le coût du service ENT, comprenant", "Le coût toutes taxes comprises du service ENT, comprenant");
    assert_eq!(draft_html(&c, id).await, on_v3, "{}", c.db.name);
}

/// The HTML document of a draft, as the DAN downloads it.
async fn draft_html(c: &Cycle, id: &str) -> String {
    let resp = c.dan.get(c.url(&format!("/{id}/document"))).send().await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.text
}

backend_test!(the_art_28_annex_lists_the_data_of_what_the_college_s_tenant_runs_and_a_frozen_text_keeps_it);
async fn the_art_28_annex_lists_the_data_of_what_the_college_s_tenant_runs_and_a_frozen_text_keeps_it(
    db: crate::common::TestDb,
) {
    let name = db.name;
    // The collège's tenant is requested with the vie scolaire option (grades, absences with
    // their motifs, sanctions) and the visio.
    let (_app, dan, id) = college_tenant_draft(&db, "college-annexe", json!(["vie-scolaire", "visio"])).await;
    let url = |path: &str| format!("/api/v1/conventions/{id}{path}");
    let draft = services_annex(&dan, &id).await;
    for expected in [
        "Option vie scolaire",
        "Notes, appréciations et compétences des élèves",
        // Edition 6: one parenthesis, article 9 only.
        "Absences, retards et motifs (un motif peut révéler une donnée de santé, donnée sensible au sens de l'article 9 \
         du RGPD)",
        "Punitions et sanctions disciplinaires",
        "Image et voix des participants",
    ] {
        assert!(draft.contains(&french(expected)), "{name}: « {expected} » missing from the annex: {draft}");
    }
    // Submitted, the text is frozen: changing the tenant's options later does not rewrite it.
    let (s, body) = call(dan.post(url("/submit")).json(&json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {body}");
    let submitted = dan.get(url("/document")).send().await.text;
    sqlx::query("UPDATE tenants SET options = '[]' WHERE slug = 'college-annexe'")
        .execute(db.store.pool())
        .await
        .unwrap();
    let later = services_annex(&dan, &id).await;
    assert_eq!(later, annex_of(&submitted), "{name}: the frozen text keeps its annex");
    assert!(later.contains("Punitions et sanctions disciplinaires"), "{name}");
}

// The annex listed a tenant's services as the catalog resolves its bouquet and options today,
// not what the tenant runs: a collège's tenant last applied with the vie scolaire (an option the
// catalog no longer gives its subscription) and still holding the visio's data until its purge
// processes their data, and does not run the cahier de textes the catalog's bouquet has. The
// annex lists what it was applied with and what it holds.
backend_test!(the_art_28_annex_lists_the_services_a_tenant_was_applied_with_not_the_catalog_s_resolution);
async fn the_art_28_annex_lists_the_services_a_tenant_was_applied_with_not_the_catalog_s_resolution(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let (_app, dan, id) = college_tenant_draft(&db, "college-applique", json!([])).await;
    // Requested, not applied yet: the catalog's resolution of its subscription.
    let requested = services_annex(&dan, &id).await;
    assert!(requested.contains("Cahier de textes"), "{name}: {requested}");
    assert!(!requested.contains("Punitions et sanctions disciplinaires"), "{name}: {requested}");

    let applied = r#"["portail", "messagerie", "vie-scolaire"]"#;
    sqlx::query("UPDATE tenants SET status = 'active', applied_services = $1, retained_services = $2 WHERE slug = $3")
        .bind(applied)
        .bind(r#"["visio"]"#)
        .bind("college-applique")
        .execute(db.store.pool())
        .await
        .unwrap();
    let runs = services_annex(&dan, &id).await;
    for expected in [
        "Portail et annuaire",
        "Vie scolaire (notes et absences)",
        "Punitions et sanctions disciplinaires",
        "Visioconférence",
        "Image et voix des participants",
    ] {
        assert!(runs.contains(expected), "{name}: « {expected} » missing from the annex: {runs}");
    }
    assert!(!runs.contains("Cahier de textes"), "{name}: it does not run it: {runs}");
}

/// A collège's world, its DAN, the collège's tenant `slug` (bouquet socle-2d with `options`)
/// requested by an administrator, and the id of the second-degré draft of the three parties.
async fn college_tenant_draft(db: &crate::common::TestDb, slug: &str, options: Value) -> (TestApp, Client, String) {
    let (academie, departement, college) = college_world(&db.store).await;
    let app = TestApp::over(&db.store).build().await;
    let dan = app.client(&token_for(&db.store, "dan@ac.fr", Role::Dan, Some(&academie)).await);
    let mut tenant = crate::tenants::doc(slug, &college, &format!("{slug}.ent.example.fr"));
    tenant["spec"]["bouquet"] = json!("socle-2d");
    tenant["spec"]["options"] = options;
    // Through the capability, not the API: the API reconciles a new tenant in a task of its
    // own, which could apply the tenant after a test has moved it by hand (and record the
    // services it renders over the ones the test set).
    let state = common::app::app_state(db.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let tenant: entcp::tenants::EntTenant = serde_json::from_value(tenant).unwrap();
    entcp::tenants::apply(&state.tenants(), &common::admin(), &tenant, None).await.unwrap();
    let id = second_degre_draft(&dan, [&academie, &departement, &college]).await;
    (app, dan, id)
}

/// The services and data types of the Art. 28(3) annex of the convention `id`'s document.
async fn services_annex(dan: &Client, id: &str) -> String {
    annex_of(&dan.get(format!("/api/v1/conventions/{id}/document")).send().await.text)
}

/// The services and data types of the Art. 28(3) annex of a convention's HTML document.
fn annex_of(html: &str) -> String {
    let html = html.replace("&#x27;", "'");
    let start = html.find(&french("Nature et finalités : ")).expect("the annex");
    let end = html[start..].find("Catégories de personnes concernées").unwrap() + start;
    html[start..end].to_string()
}

// A bipartite convention cites L. 212-4 (the commune's public écoles): it covers the public
// écoles of Fresnes, not the private one beside them (sous contrat, its organisme de gestion's).
backend_test!(a_commune_convention_covers_its_public_ecoles_and_not_a_private_one_of_its_territory);
async fn a_commune_convention_covers_its_public_ecoles_and_not_a_private_one_of_its_territory(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let store = c.db.store.pool();
    let ecoles: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM orgs WHERE kind = 'etablissement' AND degree = '1D' AND is_open = 1 \
         AND commune_code = '94034' ORDER BY code",
    )
    .fetch_all(store)
    .await
    .unwrap();
    let private = ecoles.iter().find(|code| *code != "0940176F").unwrap().clone();
    sqlx::query("UPDATE orgs SET sector = 'prive' WHERE kind = 'etablissement' AND code = $1")
        .bind(&private)
        .execute(store)
        .await
        .unwrap();
    let conv = c
        .create(common::fixtures::with_signatories(json!({
            "model": "bipartite-commune",
            "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
            "start_date": "2026-10-01"
        })))
        .await;
    let mut covered: Vec<String> =
        conv["schools"].as_array().unwrap().iter().map(|s| s["code"].as_str().unwrap().to_string()).collect();
    covered.sort();
    let public: Vec<String> = ecoles.into_iter().filter(|code| *code != private).collect();
    assert_eq!(covered, public, "{name}: every public école, not {private}: {conv}");
}

backend_test!(an_ent_convention_is_acted_on_by_its_dan_and_collectivite_not_a_coordinateur_nor_an_ecole_head);
/// An ENT convention binds the État, the collectivité and, for a collège or a lycée, the EPLE (a
/// legal person): a `coordinateur` bound at a party (the académie, for its groupements) neither
/// amends, terminates nor opposes the renewal of it, and an école's head (no legal personality)
/// signs it but neither amends nor terminates it; each refusal says why in French and changes
/// nothing. The DAN and the mairie still act.
async fn an_ent_convention_is_acted_on_by_its_dan_and_collectivite_not_a_coordinateur_nor_an_ecole_head(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let coordinateur = user(&c, "coord@ac-creteil.fr", Role::Coordinateur, Some("academie:24")).await;
    // Signed by its three parties, the école's head included: its signature still works.
    let id = signed_from(&c, "2026-09-01").await;
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "active", "{name}: {conv}");
    let refused = |(s, p): (StatusCode, Value), who: &str| {
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {who}: {p}");
        let detail = p["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("directeur d'école la signe seulement") && detail.contains("coordonnateur"), "{p}");
    };
    let termination = json!({ "reason": "Changement de solution" });
    for (who, client) in [("coordinateur", &coordinateur), ("directeur d'école", &c.directeur)] {
        refused(c.post(client, &id, "amend", json!({})).await, who);
        refused(c.post(client, &id, "terminate", termination.clone()).await, who);
        refused(c.post(client, &id, "non-renewal", json!({})).await, who);
    }
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert!(conv["termination_effective"].is_null() && conv["non_renewal"].is_null(), "{name}: {conv}");
    let (_, drafts) = call(c.dan.get(c.url("?status=draft"))).await;
    assert_eq!(drafts["items"].as_array().map(Vec::len), Some(0), "{name}: no avenant opened: {drafts}");

    // The DAN and the mairie still act.
    c.amended(&id).await;
    let ended = c.step_ok(&c.mairie, &id, "terminate", termination).await;
    assert!(ended["termination_effective"].is_string(), "{name}: {ended}");
}

backend_test!(a_colleges_head_writes_its_ent_convention);
/// A collège is an EPLE, a legal person: its head, a party, submits the draft of its
/// tripartite convention (an école's head may not).
async fn a_colleges_head_writes_its_ent_convention(db: crate::common::TestDb) {
    let (academie, departement, college) = college_world(&db.store).await;
    let app = TestApp::over(&db.store).clock(Arc::new(FixedClock::new(t0()))).build().await;
    let dan = app.client(&token_for(&db.store, "dan@ac.fr", Role::Dan, Some(&academie)).await);
    let chef = app.client(&token_for(&db.store, "principal@college.fr", Role::ChefEtablissement, Some(&college)).await);
    let id = second_degre_draft(&dan, [&academie, &departement, &college]).await;
    let (s, submitted) = call(chef.post(format!("/api/v1/conventions/{id}/submit")).json(&json!({}))).await;
    assert_eq!((s, submitted["status"].as_str()), (StatusCode::OK, Some("in_signature")), "{}: {submitted}", db.name);
}

/// One école of Aubervilliers (93, 0930999F), imported as the annuaire gives it, with its commune.
pub(crate) async fn import_aubervilliers_ecole(store: &entcp::store::Store) {
    let sample = std::fs::read_to_string(common::fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let mut lines = sample.lines();
    let header = lines.next().unwrap();
    let mut fields: Vec<String> = lines.next().unwrap().split(';').map(str::to_string).collect();
    for (i, value) in [
        (0, "0930999F"),
        (1, "Ecole élémentaire Jean Jaurès"),
        (6, "93300 AUBERVILLIERS"),
        (7, "93300"),
        (8, "93001"),
        (9, "Aubervilliers"),
        (10, "093"),
        (21, "ce.0930999F@ac-creteil.fr"),
        (39, ""),
        (43, "Seine-Saint-Denis"),
    ] {
        fields[i] = value.to_string();
    }
    let csv = format!("{header}\n{}\n", fields.join(";"));
    let options = entcp::registry::import::ImportOptions::default();
    entcp::registry::import::import_annuaire(store, &common::admin(), std::io::Cursor::new(csv), options, t0())
        .await
        .unwrap();
}

backend_test!(a_convention_covering_ecoles_of_two_departements_is_refused_naming_both_dsdens);
/// The controller of an école is the IA-DASEN of its own département, and a convention names
/// one controller: an EPCI whose communes lie in the Val-de-Marne and in the Seine-Saint-Denis
/// (same académie) cannot sign one bipartite convention for all its écoles (422 on `parties`,
/// naming both DSDENs); nothing is created.
async fn a_convention_covering_ecoles_of_two_departements_is_refused_naming_both_dsdens(db: common::TestDb) {
    let c = setup(db).await;
    import_aubervilliers_ecole(&c.db.store).await;
    let fresnes = entcp::registry::resolve_org(&c.db.store, "commune:94034").await.unwrap();
    let aubervilliers = entcp::registry::resolve_org(&c.db.store, "commune:93001").await.unwrap();
    let epci = common::fixtures::epci(
        &c.db.store,
        "Communauté d'agglomération test",
        &common::fixtures::luhn("20000999"),
        &[&fresnes, &aubervilliers],
    )
    .await;
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": epci.id },
        "start_date": "2026-10-01"
    }));
    let (s, problem) = call(c.admin.post(c.url("")).json(&body)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {problem}", c.db.name);
    let detail = problem["detail"].as_str().unwrap_or_default().to_string() + &problem.to_string();
    assert!(
        detail.contains("2 départements") && detail.contains("Seine-Saint-Denis") && detail.contains("Val-de-Marne"),
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["field"], "parties", "{problem}");
    let created = common::count(&c.db.store, "SELECT COUNT(*) FROM conventions", &[]).await;
    assert_eq!(created, 0, "{}", c.db.name);
    // As the refusal says: one convention per département, each with its DSDEN as the académie
    // party, covering only that département's écoles.
    for (dsden, uai_prefix) in [("dsden:93", "093"), ("dsden:94", "094")] {
        let body = common::fixtures::with_signatories(json!({
            "model": "bipartite-commune",
            "parties": { "academie": dsden, "collectivite": epci.id },
            "start_date": "2026-10-01"
        }));
        let (s, created) = call(c.admin.post(c.url("")).json(&body)).await;
        assert_eq!(s, StatusCode::CREATED, "{} {dsden}: {created}", c.db.name);
        let codes: Vec<&str> =
            created["schools"].as_array().unwrap().iter().filter_map(|s| s["code"].as_str()).collect();
        assert!(!codes.is_empty() && codes.iter().all(|c| c.starts_with(uai_prefix)), "{dsden}: {codes:?}");
    }
}

// An académie's bipartite convention with an EPCI covers the écoles of one département (its
// IA-DASEN is their controller). A commune of another département then delegates its ENT to the
// EPCI: the convention page leaves its école out, but amending the convention answered 422
// (« 2 départements »). The avenant covers the écoles of the convention's département, as the
// convention does, and is edited as such; a new convention of the same parties, with no
// département fixed, is still refused.
backend_test!(an_avenant_after_a_delegation_from_another_departement_covers_the_ecoles_of_the_convention_s_departement);
async fn an_avenant_after_a_delegation_from_another_departement_covers_the_ecoles_of_the_convention_s_departement(
    db: common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let (id, body, in_94) = epci_draft_then_a_delegation_from_the_93(&c).await;
    // Signed by its parties (outside this test's subject): in force.
    common::execute(&c.db.store, "UPDATE conventions SET status = 'active' WHERE id = $1", &[&id]).await;

    let avenant = c.amended(&id).await;
    let (_, opened) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert_eq!(school_codes(&opened), in_94, "{name}: the écoles of the Val-de-Marne only: {opened}");
    let edited = c.edit(&avenant, json!({ "title": "Avenant n° 1" })).await;
    assert_eq!(school_codes(&edited), in_94, "{name}: {edited}");
    let controller = &edited["rgpd_controller"];
    assert!(controller["kind"] == "dsden" && controller["code"].as_str().unwrap().ends_with("94"), "{edited}");

    let (s, problem) = call(c.admin.post(c.url("")).json(&body)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert!(problem.to_string().contains("2 départements"), "{name}: {problem}");
}

/// The académie's bipartite draft over an EPCI of Fresnes (its écoles, all in the Val-de-Marne),
/// then Aubervilliers (Seine-Saint-Denis) delegating its ENT to the EPCI: the draft's id, the body
/// it was created from, and the codes of the écoles it covered.
async fn epci_draft_then_a_delegation_from_the_93(c: &Cycle) -> (String, Value, Vec<String>) {
    import_aubervilliers_ecole(&c.db.store).await;
    let fresnes = entcp::registry::resolve_org(&c.db.store, "commune:94034").await.unwrap();
    let aubervilliers = entcp::registry::resolve_org(&c.db.store, "commune:93001").await.unwrap();
    let luhn = common::fixtures::luhn("20000999");
    let epci = common::fixtures::epci(&c.db.store, "Communauté d'agglomération test", &luhn, &[&fresnes]).await;
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": epci.id },
        "start_date": "2026-09-01"
    }));
    let draft = c.create(body.clone()).await;
    let in_94 = school_codes(&draft);
    assert!(!in_94.is_empty() && in_94.iter().all(|code| code.starts_with("094")), "{}: {in_94:?}", c.db.name);
    entcp::registry::manage::set_member(&c.db.store, &common::admin(), &epci, &aubervilliers, true, t0())
        .await
        .unwrap();
    (draft["id"].as_str().unwrap().to_string(), body, in_94)
}

/// The codes of the écoles a convention covers, sorted.
fn school_codes(conv: &Value) -> Vec<String> {
    let mut codes: Vec<String> =
        conv["schools"].as_array().unwrap().iter().map(|s| s["code"].as_str().unwrap().to_string()).collect();
    codes.sort();
    codes
}

// The same delegation while the convention is still a draft: editing it answered 422 (« 2
// départements »). A draft edited with the same parties, named or not, keeps the écoles of its
// département.
backend_test!(a_draft_edited_after_a_delegation_from_another_departement_keeps_the_ecoles_of_its_departement);
async fn a_draft_edited_after_a_delegation_from_another_departement_keeps_the_ecoles_of_its_departement(
    db: common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let (id, body, in_94) = epci_draft_then_a_delegation_from_the_93(&c).await;
    let edited = c.edit(&id, json!({ "title": "Convention ENT de la communauté" })).await;
    assert_eq!(school_codes(&edited), in_94, "{name}: the écoles of the Val-de-Marne only: {edited}");
    let named_again = c.edit(&id, json!({ "parties": body["parties"] })).await;
    assert_eq!(school_codes(&named_again), in_94, "{name}: the same parties named again: {named_again}");
}

// The README's `convention.yaml`, created as printed by the DAN, can be submitted at once: its
// parties carry their signatories and its start date is not past (on the app's day, 1 September
// 2026, not the real today, which passes the printed start date one day).
backend_test!(the_readme_convention_sample_is_created_and_submitted_as_printed);
async fn the_readme_convention_sample_is_created_and_submitted_as_printed(db: common::TestDb) {
    let c = setup(db).await;
    let readme = include_str!("../../../../README.md");
    let start = readme.find("\nmodel: tripartite-premier-degre\nparties:").expect("the README sample");
    let sample = &readme[start..start + readme[start..].find("```").unwrap()];
    let body: Value = entcp::yaml::from_str(sample).unwrap();
    let dan = &c.dan;
    let (status, created) = call(dan.post(c.url("")).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {created}", c.db.name);
    let id = created["id"].as_str().unwrap();
    let (status, submitted) = call(dan.post(c.url(&format!("/{id}/submit"))).json(&json!({}))).await;
    assert_eq!(
        (status, submitted["status"].as_str()),
        (StatusCode::OK, Some("in_signature")),
        "{}: {submitted}",
        c.db.name
    );
}

backend_test!(a_pdf_asked_of_a_server_without_libreoffice_is_refused_naming_the_other_formats);
async fn a_pdf_asked_of_a_server_without_libreoffice_is_refused_naming_the_other_formats(db: common::TestDb) {
    let c = setup(db).await;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap();
    let resp = c.dan.get(c.url(&format!("/{id}/document?format=pdf"))).send().await;
    if entcp::documents::pdf_available() {
        assert_eq!(resp.header("content-type"), Some("application/pdf"), "{}", c.db.name);
        return;
    }
    // Not « service indisponible, réessayez »: this server has no converter, the other formats work.
    assert_eq!(resp.status, 406, "{}: {}", c.db.name, resp.body);
    assert_eq!(resp.header("content-type"), Some("application/problem+json"), "{}", c.db.name);
    assert_eq!(resp.header("retry-after"), None, "{}", c.db.name);
    assert_eq!(resp.body["type"], "urn:entcp:problem:format-unavailable", "{}", c.db.name);
    assert_eq!(resp.body["title"], "Format indisponible sur ce serveur", "{}", c.db.name);
    let detail = resp.body["detail"].as_str().unwrap();
    assert!(detail.contains("Le PDF n'est pas disponible sur ce serveur") && detail.contains("ODT, HTML"), "{detail}");
    let odt = c.dan.get(c.url(&format!("/{id}/document?format=odt"))).send().await;
    assert_eq!(odt.status, 200, "{}: the ODT it names is there", c.db.name);
}

// A draft moved to another école of the same commune: its generated title named the old school,
// and the document to sign with it. The title drafted for the old parties is drafted again; one
// someone typed is kept. A `parties` map replaces every party: one naming the établissement alone
// is refused on `parties`, naming the parties it leaves out (it answered 403 « à aucune des
// parties »).
backend_test!(a_draft_given_other_parties_gets_a_title_naming_them_unless_its_title_was_typed);
async fn a_draft_given_other_parties_gets_a_title_naming_them_unless_its_title_was_typed(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap();
    let title = conv["title"].as_str().unwrap().to_string();
    assert!(title.contains("Robert Doisneau"), "{name}: {title}");

    let mut moved = tripartite("2026-09-01")["parties"].clone();
    moved["etablissement"] = json!("0940289D");
    let edited = c.edit(id, json!({ "parties": moved })).await;
    let retitled = edited["title"].as_str().unwrap();
    assert!(retitled.contains("Jean Monet") && !retitled.contains("Robert Doisneau"), "{name}: {retitled}");
    assert_eq!(retitled, title.replace("École élémentaire Robert Doisneau", "École élémentaire Jean Monet"), "{name}");

    let typed = c.edit(id, json!({ "title": "Convention ENT de l'école de Fresnes" })).await;
    moved["etablissement"] = json!("0940176F");
    let edited = c.edit(id, json!({ "parties": moved })).await;
    assert_eq!(edited["title"], typed["title"], "{name}: a typed title is kept");

    let version = edited["version"].as_i64().unwrap();
    let alone = json!({ "parties": { "etablissement": "0940289D" } });
    let req = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
    let (status, problem) = call(req.json(&alone)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert_eq!(problem["errors"][0]["field"], "parties", "{name}: {problem}");
    let detail = problem["errors"][0]["message"].as_str().unwrap_or_default().to_string()
        + problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("remplace toutes les parties")
            && detail.contains("(academie)")
            && detail.contains("(collectivite)"),
        "{name}: {problem}"
    );
}

// A party given in a shape the API does not read (a list of objects) is refused in French,
// naming the forms a party takes, not in serde's words on untagged enums.
backend_test!(a_party_given_in_an_unknown_shape_is_refused_in_french);
async fn a_party_given_in_an_unknown_shape_is_refused_in_french(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let conv = c.create(tripartite("2026-09-01")).await;
    let (id, version) = (conv["id"].as_str().unwrap(), conv["version"].as_i64().unwrap());
    let odd = json!({ "parties": { "membre": [{ "org": "commune:94034" }] } });
    let req = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
    let (status, problem) = call(req.json(&odd)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    let text = problem.to_string();
    assert!(!text.contains("untagged") && !text.contains("did not match"), "{name}: {problem}");
    assert!(text.contains("parties.membre") && text.contains("une partie se donne par la clé"), "{name}: {problem}");
}

// A party that does not write the convention (the directeur of a primary school signs it only)
// asked to amend, terminate or oppose the renewal of a draft and was told its state (409): its
// role comes first (403), whatever the state, and so for a refusal by who neither signs nor
// gives a visa; the DAN who writes it still learns the state.
backend_test!(a_party_that_does_not_write_a_convention_is_refused_for_its_role_whatever_its_state);
async fn a_party_that_does_not_write_a_convention_is_refused_for_its_role_whatever_its_state(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap();
    let changes =
        [("amend", json!({})), ("terminate", json!({ "reason": "fin du besoin" })), ("non-renewal", json!({}))];
    for (action, body) in &changes {
        let (status, problem) = c.post(&c.directeur, id, action, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {action}: {problem}");
        let (status, problem) = c.post(&c.dan, id, action, body.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {action}: {problem}");
    }
    let coordinateur = token_for(&c.db.store, "coord@ac-creteil.fr", Role::Coordinateur, Some("academie:24")).await;
    let coordinateur = c.app.client(&coordinateur);
    let (status, problem) = c.post(&coordinateur, id, "refuse", json!({ "comment": "non" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {problem}");
    let (status, problem) = c.post(&c.mairie, id, "refuse", json!({ "comment": "non" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{name}: {problem}");
    let (_, after) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(after["status"], "draft", "{name}: {after}");
}

// Dates far off were taken (a start on 1 December 9999, its end in year 10002) and then sorted
// as text before the others: `expiring_before=2027-01-01` listed a convention ending in year
// 10001. A convention's dates lie between 2000 and 2099, on creation, edit and avenant alike.
backend_test!(a_convention_is_dated_between_2000_and_2099_and_lists_compare_days);
async fn a_convention_is_dated_between_2000_and_2099_and_lists_compare_days(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    for (start, end, field) in [
        ("9999-12-01", None, "start_date"),
        ("2098-06-01", None, "end_date"),
        ("2026-09-01", Some("2100-01-01"), "end_date"),
    ] {
        let (status, problem) = c
            .create_changed(|body| {
                body["start_date"] = json!(start);
                if let Some(end) = end {
                    body["end_date"] = json!(end);
                }
            })
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {start}: {problem}");
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
        assert!(fields.contains(&field), "{name}: {start}: {problem}");
        assert!(problem.to_string().contains("31 décembre 2099"), "{name}: {problem}");
    }
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap();
    let (_, current) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let version = current["version"].as_i64().unwrap();
    let req = c.dan.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\""));
    let (status, problem) = call(req.json(&json!({ "end_date": "10001-08-31" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    // A filter day past the last one lists what ends by then, as the last day does.
    let (status, page) = call(c.dan.get(c.url("?expiring_before=2150-01-01"))).await;
    assert_eq!((status, page["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{name}: {page}");
    let (_, page) = call(c.dan.get(c.url("?expiring_before=2027-01-01"))).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{name}: {page}");
}

// The list's filters said whether an organisation out of the caller's sight exists: a school of
// another commune answered 200 and an empty page, a key naming nothing 422. Both now answer the
// same 422, word for word; an organisation the caller finds in a convention it sees (the académie
// party, for a commune) still filters.
backend_test!(a_list_filter_on_an_organisation_out_of_sight_answers_as_on_a_missing_one);
async fn a_list_filter_on_an_organisation_out_of_sight_answers_as_on_a_missing_one(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    c.create(tripartite("2026-09-01")).await;
    let pairs = [
        ("party", "0940198E", "0940000A"),
        ("school", "0940198E", "0940000A"),
        ("party", "commune:94081", "commune:94999"),
    ];
    for (field, out, missing) in pairs {
        let (out_status, out_body) = call(c.mairie.get(c.url(&format!("?{field}={out}")))).await;
        let (missing_status, missing_body) = call(c.mairie.get(c.url(&format!("?{field}={missing}")))).await;
        assert_eq!(
            (out_status, missing_status),
            (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNPROCESSABLE_ENTITY),
            "{name}: {field}={out}: {out_body}"
        );
        assert_eq!(
            out_body.to_string().replace(out, "KEY"),
            missing_body.to_string().replace(missing, "KEY"),
            "{name}: {field}: out of sight and missing answer alike"
        );
    }
    for filter in ["party=academie:24", "party=0940176F", "school=0940176F"] {
        let (status, page) = call(c.mairie.get(c.url(&format!("?{filter}")))).await;
        assert_eq!(
            (status, page["items"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(1)),
            "{name}: {filter}: {page}"
        );
    }
    // The DAN reads the school of Vitry: an empty page, as before.
    let (status, page) = call(c.dan.get(c.url("?party=0940198E"))).await;
    assert_eq!((status, page["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{name}: {page}");
}

// Who designates a party's signatory on an ENT convention: that party's writers, the DAN who
// drafts the convention, an admin; the commune may not name the rector's signatory.
backend_test!(a_party_designates_its_own_signatory_and_the_dan_every_one);
async fn a_party_designates_its_own_signatory_and_the_dan_every_one(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap();
    let signatory = json!({ "name": "M. Paul Martin", "quality": "recteur de l'académie" });
    let patch = |who: &Client, version: i64, body: Value| {
        call(who.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\"")).json(&body))
    };
    let version = conv["version"].as_i64().unwrap();
    let (status, problem) = patch(&c.mairie, version, json!({ "signatories": { "academie": signatory } })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("les services académiques"), "{name}: {problem}");
    let own = json!({ "signatories": { "collectivite": { "name": "Mme Anne Petit", "quality": "maire" } } });
    let (status, edited) = patch(&c.mairie, version, own).await;
    assert_eq!(status, StatusCode::OK, "{name}: {edited}");
    let version = edited["version"].as_i64().unwrap();
    let (status, edited) = patch(&c.dan, version, json!({ "signatories": { "collectivite": signatory } })).await;
    assert_eq!(status, StatusCode::OK, "{name}: {edited}");
    // Creating, the commune names its own signatory, not the académie's.
    let (status, problem) = call(c.mairie.post(c.url("")).json(&tripartite("2030-09-01"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {problem}");
}

// A convention out of the caller's scope was read in full (parties, schools, signatures,
// documents…) before the scope test: its 404 took measurably longer than an unknown id's,
// telling an outsider which ids exist. The scope is now decided by one statement on the
// convention's id and its parties, before anything else is read: out of scope and unknown run
// the very same statements, on every per-id route.
backend_test!(a_convention_out_of_scope_costs_what_an_unknown_id_costs_on_every_per_id_route);
async fn a_convention_out_of_scope_costs_what_an_unknown_id_costs_on_every_per_id_route(db: crate::common::TestDb) {
    let c = setup(db).await;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.step_ok(&c.directeur, &id, "sign", json!({})).await;
    let unknown = format!("{}{}", &id[..id.len() - 1], if id.ends_with('0') { '1' } else { '0' });
    let other = user(&c, "ent@vitry.fr", Role::Collectivite, Some("commune:94081")).await;
    let statements = common::logs::Statements::capture();
    // What a request runs on conventions (the caller's session and the like left out).
    let run = async |who: &Client, method: &str, key: &str, path: &str| {
        let url = c.url(&format!("/{key}{path}"));
        let req = match method {
            "GET" => who.get(url),
            _ => who.post(url).bytes("application/pdf", b"%PDF-1.4 x".to_vec()),
        };
        let before = statements.count();
        let status = req.send().await.status;
        let run: Vec<String> = statements.since(before).into_iter().filter(|sql| sql.contains("convention")).collect();
        (status, run)
    };
    // A first request of the outsider, so that whatever its first call reads once is read.
    run(&other, "GET", &unknown, "").await;
    for (method, path) in [("GET", ""), ("GET", "/document"), ("GET", "/signed-document"), ("POST", "/signed-copies")] {
        let (status, unknown_run) = run(&other, method, &unknown, path).await;
        assert_eq!(status, 404, "{} {method} {path}: unknown", c.db.name);
        let (status, outside_run) = run(&other, method, &id, path).await;
        assert_eq!(status, 404, "{} {method} {path}: out of scope", c.db.name);
        assert!(!unknown_run.is_empty(), "{} {method} {path}: statements are counted", c.db.name);
        assert_eq!(outside_run, unknown_run, "{} {method} {path}: out of scope runs what unknown runs", c.db.name);
        // A party reads the convention after the same decision.
        if method == "GET" {
            let (status, party_run) = run(&c.mairie, method, &id, path).await;
            assert_eq!(status, 200, "{} {method} {path}: a party", c.db.name);
            assert_eq!(party_run.first(), unknown_run.first(), "{} {method} {path}", c.db.name);
            assert!(party_run.len() > unknown_run.len(), "{} {method} {path}: {party_run:#?}", c.db.name);
        }
    }
}

/// A groupement de commandes the académie of Créteil coordinates, created by the admin on the
/// cycle's day (1 September 2026), which Fresnes joins by its délibération n° 2026-DCM-7 of that
/// day, accepted: the groupement's id, its convention constitutive's id and Fresnes' org id.
async fn groupement_joined_by_fresnes(c: &Cycle) -> (String, String, String) {
    let academie = common::fixtures::org(&c.db.store, "academie:24").await;
    let fresnes = common::fixtures::org(&c.db.store, "commune:94034").await;
    let body = json!({
        "coordinator": academie.id, "title": "ENT 1er degré", "object": "ENT des écoles",
        "application_deadline": "2026-10-15",
    });
    let (status, g) = call(c.admin.post("/api/v1/groupements").json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {g}", c.db.name);
    let id = g["id"].as_str().unwrap().to_string();
    let application =
        json!({ "applicant": fresnes.id, "deliberation_number": "2026-DCM-7", "deliberation_date": "2026-09-01" });
    let (status, applied) =
        call(c.mairie.post(format!("/api/v1/groupements/{id}/applications")).json(&application)).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {applied}", c.db.name);
    let accept = format!("/api/v1/groupements/{id}/applications/{}/accept", applied["id"].as_str().unwrap());
    let (status, accepted) = call(c.admin.post(accept)).await;
    assert_eq!(status, StatusCode::OK, "{}: {accepted}", c.db.name);
    let (_, g) = call(c.admin.get(format!("/api/v1/groupements/{id}"))).await;
    let conv_id = g["convention_id"].as_str().unwrap_or_else(|| panic!("{}: {g}", c.db.name)).to_string();
    (id, conv_id, fresnes.id)
}

/// PATCHes the convention `id` (at its current version) as the admin with `body`.
async fn patched(c: &Cycle, id: &str, body: Value) -> (StatusCode, Value) {
    let (_, conv) = call(c.admin.get(c.url(&format!("/{id}")))).await;
    let version = conv["version"].as_i64().unwrap();
    call(c.admin.patch(c.url(&format!("/{id}"))).header("if-match", format!("\"{version}\"")).json(&body)).await
}

// Naming who signs for a member of a groupement (name and quality) keeps the délibération its
// candidature recorded: the convention constitutive is then submitted. Another act may replace
// it, never one dated before the groupement's creation (422 naming the field, as the candidature).
backend_test!(naming_a_member_signatory_keeps_the_deliberation_of_its_candidature);
async fn naming_a_member_signatory_keeps_the_deliberation_of_its_candidature(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let (_, conv_id, fresnes) = groupement_joined_by_fresnes(&c).await;
    let member = format!("membre:{fresnes}");
    let named = json!({ "signatories": {
        member.clone(): { "name": "M. Jean Dupont", "quality": "maire" },
        "coordinateur": { "name": "M. Daniel Auverlot", "quality": "recteur de l'académie de Créteil" },
    }});
    let (status, conv) = patched(&c, &conv_id, named).await;
    assert_eq!(status, StatusCode::OK, "{name}: {conv}");
    let party = conv["parties"].as_array().unwrap().iter().find(|p| p["org"]["id"] == fresnes.as_str()).unwrap();
    let signatory = &party["signatory"];
    assert_eq!(
        (signatory["name"].as_str(), signatory["act_number"].as_str(), signatory["act_date"].as_str()),
        (Some("M. Jean Dupont"), Some("2026-DCM-7"), Some("2026-09-01")),
        "{name}: {conv}"
    );

    let earlier =
        json!({ "signatories": { member.clone(): { "act_number": "2026-DCM-1", "act_date": "2026-08-20" } } });
    let (status, problem) = patched(&c, &conv_id, earlier).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    let error = &problem["errors"][0];
    assert_eq!(error["field"].as_str(), Some(format!("signatories.{member}.act_date").as_str()), "{name}: {problem}");
    assert!(error["message"].as_str().unwrap().contains("ne peut pas précéder la création du groupement"), "{name}");

    let (status, submitted) = c.post(&c.admin, &conv_id, "submit", json!({})).await;
    assert_eq!((status, submitted["status"].as_str()), (StatusCode::OK, Some("in_signature")), "{name}: {submitted}");
}

// A signed copy deposited is read back by whoever reads the convention, as deposited and as a
// download (attachment, nosniff, a safe name); out of scope or unknown, the same 404.
backend_test!(a_signed_copy_deposited_is_downloaded_by_the_parties_as_deposited);
async fn a_signed_copy_deposited_is_downloaded_by_the_parties_as_deposited(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(tripartite("2026-09-01")).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    let pdf = b"%PDF-1.7\n% signee par la mairie\n".to_vec();
    let deposit = c.mairie.post(c.url(&format!("/{id}/signed-copies?name=copie%20sign%C3%A9e.pdf")));
    let (status, conv) = call(deposit.bytes("application/pdf", pdf.clone())).await;
    assert_eq!(status, StatusCode::OK, "{name}: {conv}");
    let file_id = conv["signed_files"][0]["id"].as_str().unwrap().to_string();

    let copy = c.url(&format!("/{id}/signed-copies/{file_id}"));
    for who in [&c.mairie, &c.dan, &c.directeur] {
        let resp = who.get(&copy).send().await;
        assert_eq!(resp.status, 200, "{name}: {}", resp.text);
        assert_eq!(resp.bytes, pdf, "{name}: the bytes deposited");
        assert_eq!(resp.header("content-type"), Some("application/pdf"), "{name}");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"), "{name}");
        assert_eq!(resp.header("content-disposition"), Some("attachment; filename=\"copie-sign-e.pdf\""), "{name}");
    }
    let outsider = user(&c, "ent@vitry.fr", Role::Collectivite, Some("commune:94081")).await;
    let outside = outsider.get(&copy).send().await;
    let unknown = outsider.get(c.url(&format!("/{}/signed-copies/{file_id}", "0".repeat(id.len())))).send().await;
    assert_eq!((outside.status, unknown.status), (404, 404), "{name}");
    assert_eq!(
        outside.body["detail"].as_str().map(|d| d.replace(&id, "")),
        unknown.body["detail"].as_str().map(|d| d.replace(&"0".repeat(id.len()), "")),
        "{name}"
    );
    let no_copy = c.dan.get(c.url(&format!("/{id}/signed-copies/inconnu"))).send().await;
    assert_eq!(no_copy.status, 404, "{name}: {}", no_copy.text);
}

// A status refusal reads as French writes it: « impossible d'amender », with the elision.
backend_test!(amending_a_draft_is_refused_in_correct_french);
async fn amending_a_draft_is_refused_in_correct_french(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = c.create(tripartite("2026-09-01")).await["id"].as_str().unwrap().to_string();
    let (status, problem) = c.post(&c.dan, &id, "amend", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{}: {problem}", c.db.name);
    assert_eq!(problem["detail"], "impossible d'amender une convention brouillon", "{}", c.db.name);
}

// Asking for a visa or to sign was answered by the convention's state (409) before the caller's
// role: a coordonnateur of the académie, which is a party, who neither writes the convention nor
// signs it nor gives a visa on it, learnt that it was a draft, in signature or signed. Its role
// comes first (403) at every state; the école's head, who signs it, and the DAN, who writes it,
// are still told the state; a collectivité that is no party (Vitry) gets the 404 of a missing one.
backend_test!(a_visa_or_a_signature_asked_by_who_may_give_neither_is_refused_for_the_role_at_every_state);
async fn a_visa_or_a_signature_asked_by_who_may_give_neither_is_refused_for_the_role_at_every_state(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let coordinateur = user(&c, "coord@ac-creteil.fr", Role::Coordinateur, Some("academie:24")).await;
    let vitry = user(&c, "ent@vitry.fr", Role::Collectivite, Some("commune:94081")).await;
    let id = c.create(tripartite("2026-09-01")).await["id"].as_str().unwrap().to_string();
    let status = |answer: (StatusCode, Value)| answer.0;
    for state in ["draft", "in_signature", "signed"] {
        match state {
            "in_signature" => drop(c.step_ok(&c.dan, &id, "submit", json!({})).await),
            "signed" => c.signed_by_all(&id).await,
            _ => {}
        }
        for action in ["visa", "sign"] {
            let (refused, problem) = c.post(&coordinateur, &id, action, json!({})).await;
            assert_eq!(refused, StatusCode::FORBIDDEN, "{name}: {state}: {action}: {problem}");
            assert!(!problem["detail"].as_str().unwrap_or_default().contains("brouillon"), "{name}: {problem}");
            let (hidden, problem) = c.post(&vitry, &id, action, json!({})).await;
            assert_eq!(hidden, StatusCode::NOT_FOUND, "{name}: {state}: {action}: {problem}");
        }
        // The premier-degré model asks no visa: the école's head, who writes nothing of it, may
        // not ask for one; the DAN is told there is none (or that the convention is not in signature).
        assert_eq!(
            status(c.post(&c.directeur, &id, "visa", json!({})).await),
            StatusCode::FORBIDDEN,
            "{name}: {state}"
        );
        assert_eq!(status(c.post(&c.dan, &id, "visa", json!({})).await), StatusCode::CONFLICT, "{name}: {state}");
        if state != "in_signature" {
            assert_eq!(status(c.post(&c.directeur, &id, "sign", json!({})).await), StatusCode::CONFLICT, "{name}");
        }
    }
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["steps"].as_array().map(Vec::len), Some(3), "{name}: the parties' three signatures only");
}

/// The part of `text` from the first `from` to the next `to` (the end when none).
fn between<'t>(text: &'t str, from: &str, to: &str) -> &'t str {
    let start = text.find(from).unwrap_or_else(|| panic!("« {from} » not in {text}"));
    let rest = &text[start..];
    &rest[..rest.find(to).unwrap_or(rest.len())]
}

// An avenant's document restated the whole convention without citing the one it amends. It is
// now « Avenant n° 1 à la convention « … » (référence, date) », cites it in its « Vu » (its
// reference, its signature and its date of effect), lists in « Objet de l'avenant » exactly what
// differs (the école that leaves, the one that enters, the accounts expected), and no term left
// as it was, states that the other stipulations remain and its own date of effect, in HTML as in
// ODT; the consolidated text follows as an annex.
backend_test!(an_avenant_document_cites_the_convention_it_amends_and_states_only_what_it_changes);
async fn an_avenant_document_cites_the_convention_it_amends_and_states_only_what_it_changes(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let (_, original) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let (reference, title) = (original["reference"].as_str().unwrap(), original["title"].as_str().unwrap());
    c.clock.set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let avenant = c.amended(&id).await;
    let parties = json!({ "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940289D" });
    c.edit(&avenant, json!({ "parties": parties, "parameters": { "accounts": 300 } })).await;
    let html = c.dan.get(c.url(&format!("/{avenant}/document"))).send().await.text.replace("&#x27;", "'");
    let odt = c.dan.get(c.url(&format!("/{avenant}/document?format=odt"))).send().await.bytes;
    let odt = ent_documents::documents::read_back::odt_text(&odt);
    for (format, text) in [("html", &html), ("odt", &odt)] {
        let heading =
            french(&format!("Avenant n° 1 à la convention « {title} » ({reference}, signée le 1er septembre 2026)"));
        assert!(text.contains(&heading), "{name}: {format}: {text}");
        let cited = french(&format!(
            // Edition 8 (domain review 39, G1): its date of effect, no tense.
            "Vu la convention « {title} » ({reference}), signée le 1er septembre 2026, prenant effet le 1er septembre \
             2026"
        ));
        assert!(text.contains(&cited), "{name}: {format}: {text}");
        let objet = between(text, "Objet de l'avenant", "Stipulations modifiées");
        for change in [
            format!("modifier la convention {reference} sur les points suivants"),
            "l'entrée de l'École élémentaire Jean Monet dans la convention, en qualité de « l'école »".into(),
            "le retrait de l'École élémentaire Robert Doisneau, partie en qualité de « l'école », qui quitte".into(),
            "« Nombre prévisionnel de comptes ENT » : 300 au lieu de 250".into(),
        ] {
            assert!(objet.contains(&french(&change)), "{name}: {format}: « {change} » not in {objet}");
        }
        for unchanged in ["comité de pilotage", "Préavis", "échéance", "coût", "Académie", "Commune"] {
            assert!(!objet.contains(unchanged), "{name}: {format}: « {unchanged} » is unchanged: {objet}");
        }
        let amended = between(text, "Stipulations modifiées", "Autres stipulations");
        assert!(amended.contains("Jean Monet") && amended.contains("300"), "{name}: {format}: {amended}");
        for stated in [
            "Les autres stipulations de la convention demeurent inchangées",
            "Le présent avenant prend effet le 10 janvier 2027",
            "Texte consolidé – Article 1 – Objet",
        ] {
            assert!(text.contains(&french(stated)), "{name}: {format}: « {stated} » not in {text}");
        }
    }
}

// A signature binds the SHA-256 of the frozen HTML, and anyone re-derives it from the text: an
// avenant submitted and signed before its document cited the convention it amends (edition 1,
// as migration 0059 leaves one) keeps its text, so its frozen copy, its signatures and the hash
// re-derived all agree. The avenant n° 2 that amends it, written now, cites both, and its own
// signatures verify the same way.
backend_test!(an_avenant_signed_before_the_citing_edition_keeps_its_text_and_every_signature_verifies);
async fn an_avenant_signed_before_the_citing_edition_keeps_its_text_and_every_signature_verifies(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let models = load_models();
    let id = signed_from(&c, "2026-09-01").await;
    c.clock.set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let first = c.amended(&id).await;
    written_in_edition(&c, &first, 1).await;
    c.edit(&first, json!({ "parameters": { "accounts": 300 } })).await;
    c.step_ok(&c.dan, &first, "submit", json!({})).await;
    c.signed_by_all(&first).await;
    c.clock.set(Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap());
    let second = c.amended(&first).await;
    c.edit(&second, json!({ "parameters": { "comite_pilotage_frequence": 2 } })).await;
    c.step_ok(&c.dan, &second, "submit", json!({})).await;
    c.signed_by_all(&second).await;
    let (_, initial) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    use entcp::conventions::Status::{Active, Amended};
    for (avenant, cites, status) in [(&first, false, Amended), (&second, true, Active)] {
        let conv = entcp::conventions::get_convention(&c.db.store, &models, avenant).await.unwrap().unwrap();
        assert_eq!(conv.status, status, "{name}");
        let hash = conv.document_hash.clone().unwrap();
        let signed = c.dan.get(c.url(&format!("/{avenant}/signed-document"))).send().await;
        assert_eq!(entcp::documents::sha256_hex(&signed.bytes), hash, "{name}: the frozen copy");
        let signatures: Vec<&str> = conv.live_steps("signature").map(|s| s.document_hash.as_str()).collect();
        assert_eq!(signatures, vec![hash.as_str(); 3], "{name}: each signature binds the frozen copy");
        let model = entcp::conventions::find_model(&models, &conv.model_id, Some(conv.model_version)).unwrap();
        let mut conn = c.db.store.conn().await.unwrap();
        let amended = entcp::conventions::avenant::amended_of(&mut conn, model, &conv).await.unwrap();
        assert_eq!(amended.is_some(), cites, "{name}");
        let recomputed = entcp::conventions::document::body_hash(model, &conv, amended.as_ref()).unwrap();
        assert_eq!(recomputed, hash, "{name}: the signed hash is re-derived from the text");
        let text = signed.text.replace("&#x27;", "'");
        assert_eq!(text.contains("Objet de l'avenant"), cites, "{name}: {text}");
        if cites {
            let (first_reference, reference) =
                (conv_reference(&c, &first).await, initial["reference"].as_str().unwrap());
            assert!(
                text.contains(&french(&format!(
                    "Avenant n° 2 à la convention « {} » ({reference}",
                    initial["title"].as_str().unwrap()
                ))),
                "{name}: {text}"
            );
            assert!(
                text.contains(&french(&format!(
                    // Edition 8 (domain review 39, G1): its date of effect, no tense.
                    "modifiée par l'avenant n° 1 ({first_reference}) prenant effet le 10 janvier 2027"
                ))),
                "{name}: {text}"
            );
            let objet = between(&text, "Objet de l'avenant", "Stipulations modifiées");
            // Labelled, from edition 12, as the minimum its article stipulates.
            let changed = french("« Nombre minimal de réunions du comité de pilotage par an » : 2 au lieu de 1");
            assert!(objet.contains(&changed), "{name}: {objet}");
            assert!(!objet.contains("comptes"), "{name}: the accounts the first avenant set are unchanged: {objet}");
        }
    }
}

/// The reference of the convention `id`.
async fn conv_reference(c: &Cycle, id: &str) -> String {
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    conv["reference"].as_str().unwrap().to_string()
}

/// The document of the convention `id` as the DAN downloads it (`/document`, HTML), apostrophes unescaped.
async fn document_text(c: &Cycle, id: &str) -> String {
    c.dan.get(c.url(&format!("/{id}/document"))).send().await.text.replace("&#x27;", "'")
}

/// The consolidated annex of the avenant `id`'s document, to its end.
async fn consolidated_annex(c: &Cycle, id: &str) -> String {
    let html = document_text(c, id).await;
    let start = html.find("Annexe – Texte consolidé").unwrap_or_else(|| panic!("no consolidated annex: {html}"));
    html[start..].to_string()
}

/// Sets the edition of the text the convention `id` is written in, as a convention drafted
/// before the current one was (migrations 0059, 0062, 0063).
async fn written_in_edition(c: &Cycle, id: &str, edition: i64) {
    sqlx::query("UPDATE conventions SET document_edition = $1 WHERE id = $2")
        .bind(edition)
        .bind(id)
        .execute(c.db.store.pool())
        .await
        .unwrap();
}

/// The convention `id` as stored and the hash its text re-derives (an avenant's from the
/// convention it amends).
async fn rederived(c: &Cycle, id: &str) -> (entcp::conventions::Convention, String) {
    let models = load_models();
    let conv = entcp::conventions::get_convention(&c.db.store, &models, id).await.unwrap().unwrap();
    let model = entcp::conventions::find_model(&models, &conv.model_id, Some(conv.model_version)).unwrap();
    let mut conn = c.db.store.conn().await.unwrap();
    let amended = entcp::conventions::avenant::amended_of(&mut conn, model, &conv).await.unwrap();
    let hash = entcp::conventions::document::body_hash(model, &conv, amended.as_ref()).unwrap();
    (conv, hash)
}

/// Asserts the convention `id` is of `edition` and the hash its signatures bind re-derives from
/// its stored text.
async fn signed_hash_rederives_in_edition(c: &Cycle, id: &str, edition: i64) {
    let name = c.db.name;
    let (conv, hash) = rederived(c, id).await;
    assert_eq!(conv.document_edition, edition, "{name}");
    assert_eq!(Some(hash), conv.document_hash, "{name}: the hash edition {edition} signed re-derives");
}

/// Asserts every `said` is in `html` (set in French typography) and no `gone` is.
fn reads(name: &str, what: &str, html: &str, said: &[&str], gone: &[&str]) {
    for said in said {
        assert!(html.contains(&french(said)), "{name}: {what}: « {said} » not in {html}");
    }
    for gone in gone {
        assert!(!html.contains(&french(gone)), "{name}: {what}: still « {gone} » in {html}");
    }
}

// The consolidated annex of an avenant read « La présente convention prend effet le 10 janvier
// 2027 », the avenant's date: the consolidated text is the convention as amended, whose date of
// effect is its own; the avenant's is stated in its body. From edition 3 the annex is « Texte
// consolidé de la convention CONV-… telle que modifiée par l'avenant n° 1 », under the
// convention's reference, from its own start and for its whole duration. An avenant written in
// edition 2 keeps the annex it was (or will be) signed with, frozen so at its submission.
backend_test!(an_avenant_consolidates_the_convention_at_its_own_dates_and_one_of_edition_2_keeps_its_annex);
async fn an_avenant_consolidates_the_convention_at_its_own_dates_and_one_of_edition_2_keeps_its_annex(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let reference = conv_reference(&c, &id).await;
    c.clock.set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let avenant = c.amended(&id).await;
    c.edit(&avenant, json!({ "parameters": { "accounts": 300 } })).await;
    let html = document_text(&c, &avenant).await;
    assert!(html.contains("Le présent avenant prend effet le 10 janvier 2027"), "{name}: {html}");
    let annex = consolidated_annex(&c, &avenant).await;
    for stated in [
        format!("Annexe – Texte consolidé de la convention {reference} telle que modifiée par l'avenant n° 1"),
        "Le texte qui suit est celui de la convention « Convention tripartite".into(),
        // Drafted in edition 7: the duration in letters.
        "La présente convention prend effet le 1er septembre 2026 pour une durée de trente-six mois, soit jusqu'au 31 \
         août 2029"
            .into(),
        format!("<dt>Référence</dt><dd>{reference}</dd>"),
        "<dt>Prise d'effet</dt><dd>1er septembre 2026</dd>".into(),
        "Texte consolidé – Article 1 – Objet".into(),
    ] {
        let stated = french(&stated);
        assert!(annex.contains(&stated), "{name}: « {stated} » not in {annex}");
    }
    assert!(
        !annex.contains("10 janvier 2027"),
        "{name}: the avenant's date is its body's, not the convention's: {annex}"
    );

    // Written in edition 2, the avenant keeps that annex, dated from the avenant, and is frozen so.
    written_in_edition(&c, &avenant, 2).await;
    let annex = consolidated_annex(&c, &avenant).await;
    for kept in [
        "Annexe – Texte consolidé de la convention</h2>".to_string(),
        format!("Le texte de la convention {reference}, tel que le modifie le présent avenant, est le suivant."),
        "La présente convention prend effet le 10 janvier 2027".into(),
    ] {
        assert!(annex.contains(&kept), "{name}: edition 2: « {kept} » not in {annex}");
    }
    assert!(!annex.contains("telle que modifiée"), "{name}: {annex}");
    c.step_ok(&c.dan, &avenant, "submit", json!({})).await;
    let signed = c.dan.get(c.url(&format!("/{avenant}/signed-document"))).send().await.text.replace("&#x27;", "'");
    assert!(signed.contains("tel que le modifie le présent avenant"), "{name}: {signed}");
    assert!(signed.contains("La présente convention prend effet le 10 janvier 2027"), "{name}: {signed}");
}

// The consolidated annex of an avenant to a tacitly renewed convention read « prend effet le 1er
// septembre 2026 pour une durée de 72 mois, soit jusqu'au 31 août 2032 »: one duration from its
// start to the renewed term, which no party signed. From edition 4 its clauses read the term as
// signed (36 months, to 31 August 2029, renewed « pour une durée de 36 mois à chaque fois »), the
// annex states the term in force after the renewal, as do its « Caractéristiques »; an avenant of
// edition 3 keeps its annex.
backend_test!(an_avenant_to_a_renewed_convention_consolidates_the_term_signed_and_states_the_term_in_force);
async fn an_avenant_to_a_renewed_convention_consolidates_the_term_signed_and_states_the_term_in_force(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = bipartite_signed(&c, "2026-09-01").await;
    let models = load_models();
    for run in [day(2029, 6, 2), day(2029, 9, 1)] {
        entcp::conventions::jobs::daily(&c.db.store, &models, run).await.unwrap();
    }
    let (_, renewed) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(
        (renewed["status"].as_str(), renewed["end_date"].as_str()),
        (Some("active"), Some("2032-08-31")),
        "{name}"
    );
    c.clock.set(Utc.with_ymd_and_hms(2030, 1, 10, 9, 0, 0).unwrap());
    let avenant = c.amended(&id).await;
    c.ready_avenant(&avenant).await;
    let annex = consolidated_annex(&c, &avenant).await;
    for stated in [
        // Drafted in edition 7: durations in letters.
        "La présente convention prend effet le 1er septembre 2026 pour une durée de trente-six mois, soit jusqu'au 31 \
         août 2029",
        "pour une durée de trente-six mois à chaque fois",
        "Reconduite tacitement à son échéance du 31 août 2029, elle est en vigueur jusqu'au 31 août 2032.",
        "<dt>Échéance</dt><dd>31 août 2032</dd>",
    ] {
        let stated = french(stated);
        assert!(annex.contains(&stated), "{name}: « {stated} » not in {annex}");
    }
    assert!(!annex.contains(&french("soixante-douze mois")), "{name}: {annex}");

    written_in_edition(&c, &avenant, 3).await;
    let annex = consolidated_annex(&c, &avenant).await;
    let kept = "La présente convention prend effet le 1er septembre 2026 pour une durée de 72 mois, soit jusqu'au 31 août 2032";
    assert!(annex.contains(kept), "{name}: edition 3 keeps its annex: {annex}");
    assert!(!annex.contains("Reconduite tacitement à son"), "{name}: {annex}");
}

/// The tripartite premier-degré model as `tripartite-montant`, with an amount among its
/// parameters (`montant_annuel`, in cents, as the groupement de commandes' estimate is).
fn model_with_an_amount() -> tempfile::TempDir {
    model_with_a_parameter("tripartite-montant", "montant_annuel", "Montant annuel du service (centimes)", "cents")
}

/// The tripartite premier-degré model as `id`, with one more parameter among its parameters
/// (`key`, its `label` and its `kind`, optional), in a folder of its own.
fn model_with_a_parameter(id: &str, key: &str, label: &str, kind: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../../../conventions/tripartite-premier-degre-v3.yaml");
    let with_parameter = shipped.replacen("id: tripartite-premier-degre", &format!("id: {id}"), 1).replacen(
        "parameters:\n",
        &format!(
            "parameters:\n  - key: {key}\n    label: {label}\n    type: {kind}\n    required: false\n    \
             description: Un paramètre de test.\n"
        ),
        1,
    );
    assert_eq!(with_parameter.matches(key).count(), 1);
    std::fs::write(dir.path().join(format!("{id}.yaml")), with_parameter).unwrap();
    dir
}

/// `c` served by an app whose convention models are those of `models`.
async fn over_models(c: Cycle, models: &tempfile::TempDir) -> Cycle {
    let app = TestApp::over(&c.db.store)
        .clock(c.clock.clone())
        .config(|cfg| cfg.conventions_dir = Some(models.path().to_path_buf()))
        .build()
        .await;
    let (dan, mairie, directeur, admin) = (c.dan.to(&app), c.mairie.to(&app), c.directeur.to(&app), c.admin.to(&app));
    Cycle { dan, mairie, directeur, admin, app, ..c }
}

// The « Caractéristiques » of a convention showed an amount in raw cents (« 123456789 », under
// « … (centimes) »). From edition 3 it reads in euros, under its label without « (centimes) »;
// a convention written in an older edition keeps its text, as frozen at its submission.
backend_test!(an_amount_reads_in_euros_from_edition_3_and_an_older_edition_keeps_its_cents);
async fn an_amount_reads_in_euros_from_edition_3_and_an_older_edition_keeps_its_cents(db: crate::common::TestDb) {
    let models = model_with_an_amount();
    let c = over_models(setup(db).await, &models).await;
    let name = c.db.name;
    let mut body = tripartite("2026-09-01");
    body["model"] = json!("tripartite-montant");
    body["parameters"]["montant_annuel"] = json!(123_456_789);
    let id = c.create(body).await["id"].as_str().unwrap().to_string();
    let html = document_text(&c, &id).await;
    assert!(
        html.contains("<dt>Montant annuel du service</dt><dd>1\u{a0}234\u{a0}567,89\u{a0}€</dd>"),
        "{name}: {html}"
    );
    assert!(!html.contains("123456789") && !html.contains("(centimes)"), "{name}: {html}");

    written_in_edition(&c, &id, 2).await;
    let cents = "<dt>Montant annuel du service (centimes)</dt><dd>123456789</dd>";
    assert!(document_text(&c, &id).await.contains(cents), "{name}: edition 2 reads as it was signed");
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let signed = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text;
    assert!(signed.contains(cents) && !signed.contains('€'), "{name}: frozen in edition 2: {signed}");
    assert!(document_text(&c, &id).await.contains(cents), "{name}: the full document reads as frozen");
}

// The « Caractéristiques » printed a date parameter and a percentage as stored (« 2027-03-15 »,
// « 12.5 »), and the clauses a percentage so (« 12.5 % à la charge de la collectivité »). From
// edition 4 they read in French (« 15 mars 2027 », « 12,5 % », the label without its « (%) »);
// a convention of edition 3, which shipped without it, is frozen and signed as stored, and its
// hash re-derives.
backend_test!(a_date_and_a_percentage_read_in_french_from_edition_4_and_edition_3_keeps_them_as_stored);
async fn a_date_and_a_percentage_read_in_french_from_edition_4_and_edition_3_keeps_them_as_stored(
    db: crate::common::TestDb,
) {
    let models = model_with_a_parameter("tripartite-bilan", "date_bilan", "Date du bilan intermédiaire", "date");
    let c = over_models(setup(db).await, &models).await;
    let name = c.db.name;
    let mut body = tripartite("2026-09-01");
    body["model"] = json!("tripartite-bilan");
    body["parameters"] =
        json!({ "accounts": 250, "date_bilan": "2027-03-15", "part_collectivite": 12.5, "part_academie": 87.5 });
    let id = c.create(body).await["id"].as_str().unwrap().to_string();
    let html = document_text(&c, &id).await;
    for french in [
        "<dt>Date du bilan intermédiaire</dt><dd>15 mars 2027</dd>",
        "<dt>Part de la collectivité dans le coût du service</dt><dd>12,5\u{a0}%</dd>",
        // Named, from edition 12, as the document designates the party.
        "<dt>Part des services académiques dans le coût du service</dt><dd>87,5\u{a0}%</dd>",
        "12,5\u{a0}% à la charge de la collectivité et 87,5\u{a0}% à la charge des services académiques",
    ] {
        assert!(html.contains(french), "{name}: « {french} » not in {html}");
    }
    assert!(!html.contains("2027-03-15") && !html.contains("12.5") && !html.contains("(%)"), "{name}: {html}");

    written_in_edition(&c, &id, 3).await;
    let as_stored = [
        "<dt>Date du bilan intermédiaire</dt><dd>2027-03-15</dd>",
        "<dt>Part de la collectivité dans le coût du service (%)</dt><dd>12.5</dd>",
        "12.5 % à la charge de la collectivité et 87.5 % à la charge des services académiques",
    ];
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let signed = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text.replace("&#x27;", "'");
    let full = document_text(&c, &id).await;
    for stated in as_stored {
        assert!(signed.contains(stated), "{name}: edition 3 frozen as stored: « {stated} » not in {signed}");
        assert!(full.contains(stated), "{name}: the full document reads as frozen: « {stated} » not in {full}");
    }
    let store_models = entcp::conventions::model::load_models(Some(models.path())).unwrap();
    let conv = entcp::conventions::get_convention(&c.db.store, &store_models, &id).await.unwrap().unwrap();
    let model = entcp::conventions::find_model(&store_models, &conv.model_id, Some(conv.model_version)).unwrap();
    let hash = entcp::conventions::document::body_hash(model, &conv, None).unwrap();
    assert_eq!(Some(hash), conv.document_hash, "{name}: the hash edition 3 signed re-derives");
}

/// A client of the user `email` holding `role` at `org`.
async fn user(c: &Cycle, email: &str, role: Role, org: Option<&str>) -> Client {
    c.app.client(&token_for(&c.db.store, email, role, org).await)
}

/// Deposits a one-line PDF as the signed copy of the convention `id`, as `who`: the status and answer.
async fn deposit(c: &Cycle, who: &Client, id: &str) -> (StatusCode, Value) {
    call(
        who.post(c.url(&format!("/{id}/signed-copies?name=exemplaire.pdf")))
            .bytes("application/pdf", b"%PDF-1.7\n".to_vec()),
    )
    .await
}

// Every writer of any party, and an administrator, deposited a convention's signed copy. A
// public body accepts it from who signs for a party: its signing role at its organisation, as
// `sign` decides (the école's head too, who signs for the école). An administrator, a
// coordonnateur or a DPO of a party are refused for their role (403) before the state (the
// draft's 409), and a mairie that is no party gets the 404 of a missing convention.
backend_test!(a_signed_copy_is_deposited_by_who_signs_for_a_party_only);
async fn a_signed_copy_is_deposited_by_who_signs_for_a_party_only(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let client = async |email, role, org| user(&c, email, role, org).await;
    let coordinateur = client("coord@ac-creteil.fr", Role::Coordinateur, Some("academie:24")).await;
    let dpo = client("dpo@fresnes.fr", Role::Dpo, Some("commune:94034")).await;
    let vitry = client("ent@vitry.fr", Role::Collectivite, Some("commune:94081")).await;
    let id = c.create(tripartite("2026-09-01")).await["id"].as_str().unwrap().to_string();
    let files = async || {
        common::count(&c.db.store, "SELECT COUNT(*) FROM convention_files WHERE convention_id = $1", &[id.as_str()])
            .await
    };
    for state in ["draft", "in_signature"] {
        if state == "in_signature" {
            c.step_ok(&c.dan, &id, "submit", json!({})).await;
        } else {
            let (status, problem) = deposit(&c, &c.mairie, &id).await;
            assert_eq!(status, StatusCode::CONFLICT, "{name}: who signs is told the state: {problem}");
        }
        for (who, client) in [("admin", &c.admin), ("coordinateur", &coordinateur), ("dpo", &dpo)] {
            let (status, problem) = deposit(&c, client, &id).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {state}: {who}: {problem}");
            assert!(!problem["detail"].as_str().unwrap_or_default().contains("brouillon"), "{name}: {problem}");
        }
        let (status, problem) = deposit(&c, &vitry, &id).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {state}: not a party: {problem}");
        assert_eq!(files().await, 0, "{name}: {state}: nothing stored");
    }
    for (who, client) in [("école", &c.directeur), ("mairie", &c.mairie), ("DAN", &c.dan)] {
        let (status, answer) = deposit(&c, client, &id).await;
        assert_eq!(status, StatusCode::OK, "{name}: {who} signs for its party: {answer}");
    }
    assert_eq!(files().await, 3, "{name}: one copy each");
}

// Any writer of a party, and an administrator for a party it named, recorded the opposition to a
// convention's tacit renewal. It is a decision of a party's representative, who signs for it: an
// administrator, a coordonnateur or a DPO of a party are refused for their role (403), before and
// after an opposition is recorded (whose second one is a 409 to a representative), a mairie that
// is no party gets the 404 of a missing convention, and a representative names only its own party.
backend_test!(the_renewal_is_opposed_by_a_party_representative_only);
async fn the_renewal_is_opposed_by_a_party_representative_only(db: crate::common::TestDb) {
    let (c, id) = renewable_signed(db).await;
    let name = c.db.name;
    let client = async |email, role, org| user(&c, email, role, org).await;
    let coordinateur = client("coord@ac-creteil.fr", Role::Coordinateur, Some("academie:24")).await;
    let dpo = client("dpo@fresnes.fr", Role::Dpo, Some("commune:94034")).await;
    let vitry = client("ent@vitry.fr", Role::Collectivite, Some("commune:94081")).await;
    let opposition = json!({ "reason": "Changement de prestataire" });
    let for_the_commune = json!({ "reason": "Changement de prestataire", "party": "collectivite" });
    let others = [
        ("admin", &c.admin, for_the_commune),
        ("coordinateur", &coordinateur, opposition.clone()),
        ("dpo", &dpo, opposition.clone()),
    ];
    let refused = async |state: &str| {
        for (who, client, body) in &others {
            let (status, problem) = c.post(client, &id, "non-renewal", body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {state}: {who}: {problem}");
        }
    };
    refused("before").await;
    let (status, problem) = c.post(&vitry, &id, "non-renewal", opposition.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{name}: not a party: {problem}");
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert!(conv["non_renewal"].is_null(), "{name}: nothing recorded: {conv}");

    let (status, problem) =
        c.post(&c.mairie, &id, "non-renewal", json!({ "reason": "Changement", "party": "academie" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: not its party: {problem}");
    assert_eq!(problem["errors"][0]["field"], "party", "{name}: {problem}");
    let opposed = c.step_ok(&c.mairie, &id, "non-renewal", opposition.clone()).await;
    let commune = entcp::registry::resolve_org(&c.db.store, "commune:94034").await.unwrap();
    assert_eq!(opposed["non_renewal"]["org_id"], commune.id.as_str(), "{name}: {opposed}");
    refused("after").await;
    let (status, problem) = c.post(&c.dan, &id, "non-renewal", opposition).await;
    assert_eq!(status, StatusCode::CONFLICT, "{name}: a representative is told it is recorded: {problem}");
}

/// Renames the école Robert Doisneau (0940176F) to Simone Veil by an import of the annuaire.
pub(crate) async fn rename_doisneau(store: &entcp::store::Store) {
    let csv = std::fs::read_to_string(common::fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let renamed = csv.replace("Ecole élémentaire Robert Doisneau", "Ecole élémentaire Simone Veil");
    common::fixtures::annuaire(store, &renamed).await;
    let ecole = entcp::registry::resolve_org(store, "0940176F").await.unwrap();
    assert_eq!(ecole.name, "Ecole élémentaire Simone Veil", "the registry took the new name");
}

// A signed convention is read as it was signed, whatever the registry says since: once its
// école is renamed, the full document (HTML and ODT) and the frozen copy keep the name it signed
// under, and an avenant drafted then cites the convention as concluded between the parties its
// signed text names, the new name being its own parties' only.
backend_test!(a_party_renamed_after_signature_keeps_its_signed_name_in_every_read_and_in_an_avenant_citation);
async fn a_party_renamed_after_signature_keeps_its_signed_name_in_every_read_and_in_an_avenant_citation(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let frozen = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.bytes;
    rename_doisneau(&c.db.store).await;
    let html = document_text(&c, &id).await;
    let odt = c.dan.get(c.url(&format!("/{id}/document?format=odt"))).send().await.bytes;
    let odt = ent_documents::documents::read_back::odt_text(&odt);
    for (format, text) in [("html", &html), ("odt", &odt)] {
        assert!(text.contains("Robert Doisneau") && !text.contains("Simone Veil"), "{name}: {format}: {text}");
    }
    assert_eq!(c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.bytes, frozen, "{name}");

    c.clock.set(Utc.with_ymd_and_hms(2027, 1, 10, 9, 0, 0).unwrap());
    let avenant = c.amended(&id).await;
    let html = document_text(&c, &avenant).await;
    let history = between(&html, "<h2>Préambule</h2>", "</p>");
    assert!(history.contains("a été conclue entre"), "{name}: {history}");
    assert!(history.contains("Robert Doisneau") && !history.contains("Simone Veil"), "{name}: {history}");
    let parties = between(&html, "<h2>Entre</h2>", "<h2>Vu</h2>");
    assert!(parties.contains("Simone Veil"), "{name}: the avenant's own parties, as they are named now: {parties}");
}

// A convention past its draft with no frozen text (submitted before texts were frozen,
// migration 0022; here written straight into the store) can only be rendered from what it holds
// now: its document says so, rather than passing for the text signed.
backend_test!(a_convention_in_force_without_a_frozen_text_is_rendered_as_reconstituted);
async fn a_convention_in_force_without_a_frozen_text_is_rendered_as_reconstituted(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = in_force_without_frozen_text(&c.db.store).await;
    let html = document_text(&c, &id).await;
    assert!(html.contains("Texte reconstitué : le document soumis à signature n'est pas conservé"), "{name}: {html}");
    let signed = signed_from(&c, "2029-09-01").await;
    assert!(!document_text(&c, &signed).await.contains("Texte reconstitué"), "{name}: a frozen text is the one signed");
}

/// A tripartite convention of the école Robert Doisneau in force from 1 September 2026 to
/// 31 August 2029, written straight into the store with the model's parameters (no frozen
/// text): its id.
pub(crate) async fn in_force_without_frozen_text(store: &entcp::store::Store) -> String {
    let org = |key: &'static str| async move { entcp::registry::resolve_org(store, key).await.unwrap().id };
    let ecole = org("0940176F").await;
    let convention = ent_testkit::conventions::ActiveConvention {
        id: "legacy-doisneau",
        model_id: "tripartite-premier-degre",
        model_version: 3,
        start: "2026-09-01",
        end: "2029-08-31",
        parties: vec![
            ("academie", org("academie:24").await),
            ("collectivite", org("commune:94034").await),
            ("etablissement", ecole.clone()),
        ],
        schools: vec![ecole],
    };
    ent_testkit::conventions::insert_active(store.pool(), &convention).await.unwrap();
    let parameters = json!({ "accounts": 250, "part_collectivite": 100, "part_academie": 0,
        "comite_pilotage_frequence": 1, "preavis_resiliation_mois": 3 });
    sqlx::query("UPDATE conventions SET parameters = $1 WHERE id = $2")
        .bind(parameters.to_string())
        .bind(convention.id)
        .execute(store.pool())
        .await
        .unwrap();
    convention.id.to_string()
}

// --- Who signs, and what an avenant must carry (review: H2, M1, M2, M5, L3) ---

/// The tripartite convention whose parties name their representatives as a French convention
/// does: the rectrice, the maire (with the conseil municipal's délibération), the directrice.
fn named_representatives(start: &str) -> Value {
    json!({
        "model": "tripartite-premier-degre",
        "start_date": start,
        "parameters": { "accounts": 250 },
        "parties": {
            "academie": { "org": "academie:24", "signatory": {
                "name": "Mme Claire Martin", "quality": "rectrice de l'académie",
                "delegation": "arrêté n° 2025-07", "delegation_date": "2025-06-30" } },
            "collectivite": { "org": "commune:94034", "signatory": {
                "name": "M. Jean Dupont", "quality": "maire", "act_number": "DEL-2026-045", "act_date": "2026-06-18" } },
            "etablissement": { "org": "0940176F", "signatory": {
                "name": "Mme Sophie Durand", "quality": "directrice", "delegation": "décision n° 3",
                "delegation_date": "2025-06-30" } }
        }
    })
}

/// A user of `role` at `org` whose directory name is `name`: a client of theirs.
async fn person(c: &Cycle, email: &str, name: &str, role: Role, org: &str) -> Client {
    let client = user(c, email, role, Some(org)).await;
    sqlx::query("UPDATE users SET display_name = $1 WHERE email = $2")
        .bind(name)
        .bind(email)
        .execute(c.db.store.pool())
        .await
        .unwrap();
    client
}

/// The délégation of Karim Benali, adjoint au maire.
fn karims_delegation(date: &str) -> Value {
    json!({ "quality": "adjoint au maire chargé de l'éducation", "act": "arrete", "number": "2026-114", "date": date })
}

/// Karim Benali, adjoint au maire de Fresnes: a user of the commune, not the maire its
/// conventions name.
async fn karim(c: &Cycle) -> Client {
    person(c, "karim@fresnes.fr", "Karim Benali", Role::Collectivite, "commune:94034").await
}

/// `who` signs the convention `id` with `body` as sent (no délégation added, unlike
/// [`Cycle::post`]).
async fn sign_as(c: &Cycle, who: &Client, id: &str, body: Value) -> (StatusCode, Value) {
    call(who.post(c.url(&format!("/{id}/sign"))).json(&body)).await
}

/// The DAN drafts `body` and submits it: its id and reference.
async fn drafted_and_submitted(c: &Cycle, body: Value) -> (String, String) {
    let conv = c.create(body).await;
    let (id, reference) = (conv["id"].as_str().unwrap().to_string(), conv["reference"].as_str().unwrap().to_string());
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    (id, reference)
}

/// On 15 October, a convention of [`named_representatives`] from 1 November for the école Jean
/// Monet (0940289D) whose `party` signatory is as `named` edits it, drafted and submitted: its id.
async fn a_later_convention(c: &Cycle, party: &str, named: impl FnOnce(&mut Value)) -> String {
    c.clock.set(Utc.with_ymd_and_hms(2026, 10, 15, 9, 0, 0).unwrap());
    let mut body = named_representatives("2026-11-01");
    body["parties"]["etablissement"]["org"] = json!("0940289D");
    named(&mut body["parties"][party]["signatory"]);
    drafted_and_submitted(c, body).await.0
}

/// [`a_later_convention`] naming Mme Hélène Roy as maire of Fresnes.
async fn a_later_convention_naming_mme_roy(c: &Cycle) -> String {
    a_later_convention(c, "collectivite", |signatory| signatory["name"] = json!("Mme Hélène Roy")).await
}

/// The step `key` of the convention `conv` as answered.
fn step<'v>(conv: &'v Value, key: &str) -> &'v Value {
    conv["steps"].as_array().unwrap().iter().find(|s| s["step_key"] == key).unwrap()
}

/// Asserts the signature answered (200) recorded the délégation of `party`'s representative
/// `delegator`.
fn assert_signed_by_delegation_of(name: &str, (status, signed): (StatusCode, Value), party: &str, delegator: &str) {
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");
    let step = step(&signed, party);
    assert_eq!(step["delegation"]["delegator"], delegator, "{name}: {step}");
}

/// Asserts a signature refused (422, `delegation.date`) because its act is older than the
/// representative's office, the refusal saying each of `said` and no « représentant(e) ».
fn assert_refused_as_before_the_office(name: &str, (status, problem): (StatusCode, Value), said: &[&str]) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert_eq!(problem["title"], "Données invalides", "{name}: {problem}");
    assert_eq!(problem["errors"][0]["field"], "delegation.date", "{name}: {problem}");
    let detail = problem["errors"][0]["message"].as_str().or(problem["detail"].as_str()).unwrap();
    for said in said {
        assert!(detail.contains(said), "{name}: « {said} » in {detail}");
    }
    assert!(!detail.contains("représentant(e)"), "{name}: {detail}");
}

// H2. The maire is named; an adjoint of the mairie signs: only « pour le maire et par délégation »,
// citing the arrêté, which the signature keeps and the signatures page states. The rectrice
// named signs in her own name.
backend_test!(one_who_is_not_the_representative_named_signs_only_by_delegation);
async fn one_who_is_not_the_representative_named_signs_only_by_delegation(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let karim = karim(&c).await;
    let claire = person(&c, "claire@ac-creteil.fr", "Claire MARTIN", Role::Dan, "academie:24").await;
    let (id, _) = drafted_and_submitted(&c, named_representatives("2026-09-01")).await;

    let (status, problem) = sign_as(&c, &karim, &id, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert_eq!(problem["title"], "Données invalides", "{name}: {problem}");
    assert_eq!(problem["errors"][0]["field"], "delegation", "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("M. Jean Dupont, maire") && detail.contains("par délégation"), "{name}: {detail}");
    assert!(detail.contains("de Fresnes") && detail.contains("Karim Benali"), "{name}: {detail}");
    // The act checked: dated in the future, or without its number, it is refused.
    let (status, problem) = sign_as(&c, &karim, &id, json!({ "delegation": karims_delegation("2026-09-02") })).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("delegation.date"))
    );
    let mut blank = karims_delegation("2026-03-03");
    blank["number"] = json!("  ");
    let (status, problem) = sign_as(&c, &karim, &id, json!({ "delegation": blank })).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("delegation.number"))
    );
    assert!(live_steps(&c, &id).await.is_empty(), "{name}: nothing recorded");

    let (status, signed) = sign_as(&c, &karim, &id, json!({ "delegation": karims_delegation("2026-03-03") })).await;
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");
    let collectivite = step(&signed, "collectivite");
    assert_eq!(collectivite["delegation"]["number"], "2026-114", "{name}: {collectivite}");
    let audited = audited_summary(&c, &id, "conventions.sign").await;
    assert_eq!(audited["delegation"]["act"], "arrete", "{name}: {audited}");
    // The rectrice named signs as herself (her name in the directory in another case): no délégation asked.
    let (status, signed) = sign_as(&c, &claire, &id, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");
    let academie = step(&signed, "academie");
    assert!(academie.get("delegation").is_none(), "{name}: {academie}");

    let html = c.dan.get(c.url(&format!("/{id}/document"))).send().await.text;
    let said = french(
        "Pour le maire et par délégation, Karim Benali, adjoint au maire chargé de l'éducation, arrêté n° 2026-114 du \
         3 mars 2026",
    );
    let said = said.as_str();
    assert!(html.contains(&crate::console::escaped(said)) || html.contains(said), "{name}: {html}");
    assert!(!html.contains("Pour la rectrice"), "{name}: the rectrice signed herself");
}

// H2, in the console: the signing form says whom the convention names and asks for the
// délégation, its fields labelled; posted without it, the page says why beside the field.
backend_test!(the_console_asks_the_delegation_of_one_who_is_not_the_representative_named);
async fn the_console_asks_the_delegation_of_one_who_is_not_the_representative_named(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    karim(&c).await;
    let (id, _) = drafted_and_submitted(&c, named_representatives("2026-09-01")).await;
    crate::console::with_password(&c.db.store, "karim@fresnes.fr").await;
    let session = crate::console::sign_in(&c.app, "karim@fresnes.fr").await;
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await;
    assert!(
        page.text.contains(&crate::console::escaped("La convention désigne M. Jean Dupont, maire, pour signer")),
        "{name}"
    );
    for (control, label) in [
        ("delegation-qualite", "Votre qualité"),
        ("delegation-acte", "Acte de délégation"),
        ("delegation-numero", "Numéro de l'acte"),
        ("delegation-date", "Date de l'acte"),
    ] {
        assert!(
            page.text.contains(&format!("for=\"{control}\">{}", crate::console::escaped(label))),
            "{name}: {control}"
        );
    }
    let hash = page.text.split("id=\"empreinte\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let path = format!("/conventions/{id}/signer");
    let refused = crate::console::post_form(&c.app, &session, &path, &[("empreinte", &hash)]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("id=\"delegation-qualite-erreur\""), "{name}");
    let form = [
        ("empreinte", hash.as_str()),
        ("delegation_qualite", "adjoint au maire chargé de l'éducation"),
        ("delegation_acte", "arrete"),
        ("delegation_numero", "2026-114"),
        ("delegation_date", "2026-03-03"),
    ];
    let signed = crate::console::post_form(&c.app, &session, &path, &form).await;
    assert_eq!(signed.status, 303, "{name}: {}", signed.text);
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await;
    // The delegated signature reads as its formula, never « signée par Pour … » (domain review 42, F7).
    assert!(
        page.text.contains(&crate::console::escaped(" : Pour le maire et par délégation, Karim Benali")),
        "{name}: {}",
        page.text
    );
    assert!(!page.text.contains("signée par Pour"), "{name}");
}

// M1. An avenant that changes nothing is not submitted: 422 « aucune modification ».
backend_test!(an_avenant_that_changes_nothing_is_not_submitted);
async fn an_avenant_that_changes_nothing_is_not_submitted(db: crate::common::TestDb) {
    let c = setup(db).await;
    let id = signed_from(&c, "2026-09-01").await;
    let avenant = c.amended(&id).await;
    let (status, problem) = c.post(&c.dan, &avenant, "submit", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {problem}", c.db.name);
    assert!(problem["detail"].as_str().unwrap().contains("aucune modification"), "{}: {problem}", c.db.name);
    c.ready_avenant(&avenant).await;
    c.step_ok(&c.dan, &avenant, "submit", json!({})).await;
}

// M2. An avenant is authorised by its own délibération: drafted without the convention's, it is
// not submitted without one, nor with the convention's again; its « Vu » cites it as authorising
// the avenant, and the convention's as the one that authorised the convention.
backend_test!(an_avenant_cites_the_deliberation_that_authorises_it);
async fn an_avenant_cites_the_deliberation_that_authorises_it(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(named_representatives("2026-09-01")).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let reference = call(c.dan.get(c.url(&format!("/{id}")))).await.1["reference"].as_str().unwrap().to_string();
    let avenant = c.drafted_avenant(&id).await;
    let (_, drafted) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    let commune = drafted["parties"].as_array().unwrap().iter().find(|p| p["key"] == "collectivite").unwrap().clone();
    assert!(commune["signatory"].get("act_number").is_none(), "{name}: {commune}");
    assert_eq!(commune["signatory"]["name"], "M. Jean Dupont", "{name}: the representative kept");
    c.edit(&avenant, json!({ "parameters": { "accounts": 300 } })).await;
    let (status, problem) = c.post(&c.dan, &avenant, "submit", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert_eq!(problem["errors"][0]["field"], "signatories.collectivite.act_number", "{name}: {problem}");
    let again = json!({ "act_number": "DEL-2026-045", "act_date": "2026-06-18" });
    c.edit(&avenant, json!({ "signatories": { "collectivite": again } })).await;
    let (status, problem) = c.post(&c.dan, &avenant, "submit", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("autorise le présent avenant"), "{name}: {problem}");
    let act = avenant_act(&avenant);
    c.edit(&avenant, json!({ "signatories": { "collectivite": act.clone() } })).await;
    c.step_ok(&c.dan, &avenant, "submit", json!({})).await;
    let html = c.dan.get(c.url(&format!("/{avenant}/document"))).send().await.text;
    let number = act["act_number"].as_str().unwrap();
    let own = french(&format!("n° {number} du 20 août 2026 autorisant la signature du présent avenant"));
    let own = own.as_str();
    let before =
        french(&format!("n° DEL-2026-045 du 18 juin 2026 ayant autorisé la signature de la convention {reference}"));
    for said in [own, before.as_str()] {
        assert!(html.contains(&crate::console::escaped(said)) || html.contains(said), "{name}: « {said} »: {html}");
    }
    assert!(
        !html.contains("autorisant la signature de la présente convention"),
        "{name}: the convention's act cited as such"
    );
}

// M5. A convention signed, not yet in force, is amended: the avenant takes effect with it, and
// cites it as taking effect; once both start, the avenant is in force and the convention amended.
backend_test!(a_signed_convention_not_yet_in_force_is_amended);
async fn a_signed_convention_not_yet_in_force_is_amended(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2027-01-04").await;
    let (_, conv) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "signed", "{name}: {conv}");
    let avenant = c.amended(&id).await;
    let (_, drafted) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert_eq!(drafted["start_date"], "2027-01-04", "{name}: not before the convention it amends");
    c.ready_avenant(&avenant).await;
    c.step_ok(&c.dan, &avenant, "submit", json!({})).await;
    c.signed_by_all(&avenant).await;
    let html = c.dan.get(c.url(&format!("/{avenant}/document"))).send().await.text;
    assert!(html.contains("elle prend effet le 4 janvier 2027"), "{name}: {html}");
    let report = entcp::conventions::jobs::daily(&c.db.store, &load_models(), day(2027, 1, 4)).await.unwrap();
    assert!(report.activated >= 1, "{name}: {report:?}");
    let (_, original) = call(c.dan.get(c.url(&format!("/{id}")))).await;
    let (_, amended) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    assert_eq!((original["status"].as_str(), amended["status"].as_str()), (Some("amended"), Some("active")), "{name}");
}

// L3. « dûment habilité » agrees with the civility the name gives; « habilité(e) » stays for a
// name without one, and in a text of an earlier edition (its bytes as signed).
backend_test!(the_empowerment_agrees_with_the_representatives_civility);
async fn the_empowerment_agrees_with_the_representatives_civility(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let mut body = named_representatives("2026-09-01");
    let id = c.create(body.clone()).await["id"].as_str().unwrap().to_string();
    let html = c.dan.get(c.url(&format!("/{id}/document"))).send().await.text;
    assert!(html.contains("M. Jean Dupont, maire, dûment habilité par délibération"), "{name}: {html}");
    body["parties"]["collectivite"]["signatory"]["name"] = json!("Mme Anne Petit");
    body["start_date"] = json!("2030-09-01");
    let other = c.create(body.clone()).await["id"].as_str().unwrap().to_string();
    let html = c.dan.get(c.url(&format!("/{other}/document"))).send().await.text;
    assert!(html.contains("Mme Anne Petit, maire, dûment habilitée par délibération"), "{name}: {html}");
    written_in_edition(&c, &other, 2).await;
    let html = c.dan.get(c.url(&format!("/{other}/document"))).send().await.text;
    assert!(html.contains("Mme Anne Petit, maire, dûment habilité(e) par délibération"), "{name}: edition 2 kept");
}

// From `TYPOGRAPHY_FROM_EDITION` the text of a convention is set in French typography
// (`documents::typography`): the frozen HTML that signatures bind, the ODT, the full document.
// A convention of an earlier edition is frozen, served and hashed with its spaces as written:
// each re-derives the hash its signatures bind. Edition 3 shipped (and was signed) without the
// typography: it is among the earlier editions (a constant assertion in `document` keeps it so).
backend_test!(a_convention_is_set_in_french_from_the_typography_edition_and_an_earlier_one_keeps_its_spaces);
async fn a_convention_is_set_in_french_from_the_typography_edition_and_an_earlier_one_keeps_its_spaces(
    db: crate::common::TestDb,
) {
    use entcp::conventions::document::{CURRENT_EDITION, TYPOGRAPHY_FROM_EDITION};
    let c = setup(db).await;
    let name = c.db.name;
    for (start, edition) in [("2026-09-01", CURRENT_EDITION), ("2029-09-01", TYPOGRAPHY_FROM_EDITION - 1)] {
        let set = edition >= TYPOGRAPHY_FROM_EDITION;
        let id = c.create(tripartite(start)).await["id"].as_str().unwrap().to_string();
        written_in_edition(&c, &id, edition).await;
        c.step_ok(&c.dan, &id, "submit", json!({})).await;
        c.signed_by_all(&id).await;
        let (conv, recomputed) = rederived(&c, &id).await;
        assert_eq!(conv.document_edition, edition, "{name}");
        let hash = conv.document_hash.clone().unwrap();
        assert_eq!(recomputed, hash, "{name} {edition}: the signed hash re-derives");
        let signed = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await;
        assert_eq!(entcp::documents::sha256_hex(&signed.bytes), hash, "{name} {edition}: the frozen copy");
        let odt = c.dan.get(c.url(&format!("/{id}/signed-document?format=odt"))).send().await.bytes;
        let odt = ent_documents::documents::read_back::odt_text(&odt);
        let full = c.dan.get(c.url(&format!("/{id}/document?format=html"))).send().await.text;
        for (what, text) in
            [("html", common::html_body(&signed.text)), ("odt", &odt), ("full", common::html_body(&full))]
        {
            assert_eq!(text.contains("Référence\u{202f}: "), set, "{name} {edition} {what}: {text}");
            assert_eq!(common::loose_spaces(text).is_empty(), set, "{name} {edition} {what}: {text}");
            assert_eq!(text.contains('\u{202f}'), set, "{name} {edition} {what}: {text}");
        }
        let cited = if set { "article\u{a0}L. 212-4" } else { "article L. 212-4" };
        assert!(signed.text.contains(cited), "{name} {edition}: {}", signed.text);
    }
}

/// On the schema before the migration to `edition`, a draft and a convention in signature of the
/// edition before and an active one of the edition before that; migrated, the draft (rendered
/// again at its submission) is of `edition`, the others keep the edition their signatures bind.
async fn an_edition_migration_moves_drafts_only(url: &str, backend: entcp::store::Backend, edition: i64) {
    let file = format!("_convention_document_edition_{edition}.sql");
    let (mine, before) = crate::counters::migration_and_previous(&file);
    let (store, t) = crate::counters::store_before(url, backend, mine).await;
    let applied = "SELECT MAX(version) FROM _sqlx_migrations";
    assert_eq!(common::count(&store, applied, &[]).await, before);
    let (previous, older) = (edition - 1, edition - 2);
    for (id, status, edition) in [("c1", "draft", previous), ("c2", "in_signature", previous), ("c3", "active", older)]
    {
        sqlx::query(
            "INSERT INTO conventions (id, reference, model_id, model_version, title, status, parameters, start_date, \
             end_date, root_id, document_edition, created_by, created_at, updated_at) \
             VALUES ($1, $1, 'm', 3, 'T', $2, '{}', '2026-09-01', '2029-08-31', $1, $3, 'u', $4, $4)",
        )
        .bind(id)
        .bind(status)
        .bind(edition)
        .bind(t)
        .execute(store.pool())
        .await
        .unwrap();
    }
    crate::counters::migrate_through(&store, backend, mine).await;
    assert_eq!(common::count(&store, applied, &[]).await, mine);
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT id, document_edition FROM conventions ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let expected = [("c1", edition), ("c2", previous), ("c3", older)].map(|(id, edition)| (id.to_string(), edition));
    assert_eq!(rows, expected, "edition {edition}");
    store.close().await;
}

migration_test!(the_edition_4_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 4);

/// A bipartite académie – Fresnes convention from `start` whose costs the commune and the
/// académie share `collectivite` % / `academie` %.
fn bipartite_split(start: &str, collectivite: u32, academie: u32) -> Value {
    let mut body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
        "start_date": start,
        "parameters": { "part_collectivite": collectivite, "part_academie": academie }
    }));
    if academie > 0 {
        // A money share of the académie is drafted with its annual ceiling (edition 7, G3).
        body["parameters"]["plafond_participation_academie"] = json!(1_200_000);
    }
    body
}

/// [`bipartite_split`] 80 % / 20 %, the académie's share capped at 12 345,67 € a year.
fn bipartite_capped(start: &str) -> Value {
    let mut body = bipartite_split(start, 80, 20);
    body["parameters"]["plafond_participation_academie"] = json!(1_234_567);
    body
}

/// The warnings of a convention as answered.
fn warnings(conv: &Value) -> Vec<String> {
    conv["warnings"].as_array().map_or(vec![], |w| w.iter().map(|t| t.as_str().unwrap().to_string()).collect())
}

// Two conventions on one école over common dates saying differently who pays: the bipartite of
// the commune is told of the tripartite in force (by its reference, to whom sees it) while
// drafted, submitted, read and on its console page; no one signs it over the tripartite; one that
// replaces the tripartite (`supersedes`) is neither warned nor refused.
backend_test!(a_convention_splitting_a_school_s_costs_otherwise_is_told_and_not_signed_over_one_in_force);
async fn a_convention_splitting_a_school_s_costs_otherwise_is_told_and_not_signed_over_one_in_force(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let tri = signed_from(&c, "2026-09-01").await;
    let reference = call(c.dan.get(c.url(&format!("/{tri}")))).await.1["reference"].as_str().unwrap().to_string();
    // The same split (the commune pays everything, as under the tripartite): nothing to say.
    let same = c.create(bipartite_split("2026-10-01", 100, 0)).await;
    assert!(same.get("warnings").is_none(), "{name}: {same}");

    let other = c.create(bipartite_split("2026-10-01", 80, 20)).await;
    let id = other["id"].as_str().unwrap().to_string();
    let told = warnings(&other);
    assert_eq!(told.len(), 1, "{name}: {other}");
    assert!(told[0].starts_with(&format!("La convention {reference} (en vigueur) couvre aussi")), "{name}: {told:?}");
    assert!(told[0].contains("Robert Doisneau") && told[0].contains("répartition des coûts"), "{name}: {told:?}");
    assert_eq!(warnings(&call(c.dan.get(c.url(&format!("/{id}")))).await.1), told, "{name}: read");
    let submitted = c.step_ok(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(warnings(&submitted), told, "{name}: submitted");

    let (status, problem) = c.post(&c.dan, &id, "sign", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{name}: {problem}");
    assert_eq!(problem["conflicting_convention"], reference.as_str(), "{name}: {problem}");
    assert!(problem["detail"].as_str().unwrap().contains("ne peut pas être signée"), "{name}: {problem}");
    assert!(live_steps(&c, &id).await.is_empty(), "{name}: nothing signed");

    crate::console::with_password(&c.db.store, "dan@ac-creteil.fr").await;
    let session = crate::console::sign_in(&c.app, "dan@ac-creteil.fr").await;
    let page = crate::console::get(&c.app, &session, &format!("/conventions/{id}")).await;
    let alert = page.text.split("id=\"avertissements\"").nth(1).expect("the warning on the page");
    assert!(alert.contains(&reference) && alert.contains("répartition des coûts"), "{name}: {alert}");

    // Sent back to draft, it is replaced by one that supersedes the tripartite: no warning, signed.
    c.step_ok(&c.dan, &id, "refuse", json!({ "comment": "Remplacer la convention tripartite" })).await;
    let mut body = bipartite_split("2026-10-01", 80, 20);
    body["supersedes"] = json!(reference);
    let replacing = c.create(body).await;
    assert!(replacing.get("warnings").is_none(), "{name}: {replacing}");
    let replacing = replacing["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &replacing, "submit", json!({})).await;
    for who in [&c.dan, &c.mairie] {
        c.step_ok(who, &replacing, "sign", json!({})).await;
    }
}

/// A tripartite of the DSDEN from 1 September 2026, drafted by an administrator and submitted
/// (in signature): the convention as created.
async fn dsden_tripartite_in_signature(c: &Cycle) -> Value {
    let mut dsden = tripartite("2026-09-01");
    dsden["parties"]["academie"]["org"] = json!("dsden:94");
    let (status, tri) = call(c.admin.post(c.url("")).json(&dsden)).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {tri}", c.db.name);
    c.step_ok(&c.admin, tri["id"].as_str().unwrap(), "submit", json!({})).await;
    tri
}

// The warning names no convention its reader does not see: a tripartite of the DSDEN, in
// signature (drafted by an administrator), is told to the académie's DAN drafting a bipartite without its reference, and to
// the commune, party to both, with it. Not in force, it does not stop the signatures.
backend_test!(a_cost_split_warning_names_only_a_convention_its_reader_sees);
async fn a_cost_split_warning_names_only_a_convention_its_reader_sees(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let tri = dsden_tripartite_in_signature(&c).await;
    let reference = tri["reference"].as_str().unwrap().to_string();

    let other = c.create(bipartite_split("2026-10-01", 80, 20)).await;
    let id = other["id"].as_str().unwrap().to_string();
    let told = warnings(&other);
    assert_eq!(told.len(), 1, "{name}: {other}");
    assert!(told[0].starts_with("Une autre convention, que vous ne consultez pas, couvre aussi"), "{name}: {told:?}");
    assert!(!told[0].contains(&reference), "{name}: {told:?}");
    let (_, read) = call(c.mairie.get(c.url(&format!("/{id}")))).await;
    assert!(warnings(&read)[0].contains(&reference), "{name}: {read}");
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    for who in [&c.dan, &c.mairie] {
        c.step_ok(who, &id, "sign", json!({})).await;
    }
}

/// A 409 refusing `detail_has`, naming the convention `reference` (in its detail and
/// `conflicting_convention`) only when `named`.
fn assert_opposes(name: &str, (status, problem): (StatusCode, Value), detail_has: &str, reference: &str, named: bool) {
    assert_eq!(status, StatusCode::CONFLICT, "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(detail_has), "{name}: {problem}");
    assert_eq!(detail.contains(reference), named, "{name}: {problem}");
    assert_eq!(problem.to_string().contains(reference), named, "{name}: {problem}");
    match named {
        true => assert_eq!(problem["conflicting_convention"], reference, "{name}: {problem}"),
        false => assert!(detail.contains("que vous ne consultez pas"), "{name}: {problem}"),
    }
}

// A refusal names the convention it opposes only to whom reads it, as the cost-split warnings
// do: a tripartite of the DSDEN (drafted by an administrator, in signature) opposes the
// académie's DAN, who is no party to it, without its reference, and the commune, party to it,
// with it; for other RGPD roles as for the same model.
backend_test!(an_overlap_refusal_names_the_other_convention_only_to_whom_reads_it);
async fn an_overlap_refusal_names_the_other_convention_only_to_whom_reads_it(db: crate::common::TestDb) {
    let models = joint_controller_model();
    let c = over_models(setup(db).await, &models).await;
    let name = c.db.name;
    let tri = dsden_tripartite_in_signature(&c).await;
    let reference = tri["reference"].as_str().unwrap().to_string();

    let conjointe = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune-conjointe",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
        "start_date": "2026-10-01"
    }));
    let same_model = tripartite("2026-10-01");
    // The model is told with the reference only (security review 41, F2).
    let unread = "(que vous ne consultez pas) sur ces dates";
    let cases =
        [(&conjointe, "rôles au sens du RGPD", "rôles au sens du RGPD"), (&same_model, unread, "du même modèle")];
    for (body, says_unread, says_read) in cases {
        let refused = call(c.dan.post(c.url("")).json(body)).await;
        assert!(!refused.1.to_string().contains("du même modèle"), "{name}: {}", refused.1);
        assert_opposes(name, refused, says_unread, &reference, false);
        let refused = call(c.mairie.post(c.url("")).json(body)).await;
        assert_opposes(name, refused, says_read, &reference, true);
    }
}

// The refusal of a successor leaving écoles of a tacitly renewed convention out is told only to
// whom reads it: the DSDEN's bipartite with the commune, in force, to the commune, named. The
// académie's DAN, no party to it, drafting a tripartite of the same RGPD roles (another model)
// from the day after its term, was not refused (only each signature was, for a reader). It is
// refused as a convention of the same model is to whom does not read it, from that day as from
// any other: the same status and body shape, the same bytes whatever the term, neither the
// term, nor the reference, nor the id.
backend_test!(a_partial_succession_refusal_names_the_renewed_convention_only_to_whom_reads_it);
async fn a_partial_succession_refusal_names_the_renewed_convention_only_to_whom_reads_it(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "dsden:94", "collectivite": "commune:94034" },
        "start_date": "2026-09-01"
    }));
    let (status, old) = call(c.admin.post(c.url("")).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {old}");
    assert!(old["schools"].as_array().unwrap().len() > 1, "{name}: {old}");
    let reference = old["reference"].as_str().unwrap().to_string();
    // Signed by its parties (outside this test's subject): in force.
    let id = old["id"].as_str().unwrap();
    common::execute(&c.db.store, "UPDATE conventions SET status = 'active' WHERE id = $1", &[id]).await;

    c.clock.set(Utc.with_ymd_and_hms(2029, 5, 15, 8, 0, 0).unwrap());
    let one_ecole = tripartite("2029-09-01");
    assert_opposes(name, call(c.mairie.post(c.url("")).json(&one_ecole)).await, "perdraient", &reference, true);
    let mut answers = Vec::new();
    for term in ["2029-08-31", "2030-08-31"] {
        common::execute(&c.db.store, "UPDATE conventions SET end_date = $1 WHERE reference = $2", &[term, &reference])
            .await;
        let refused = call(c.dan.post(c.url("")).json(&one_ecole)).await;
        assert_opposes(name, refused.clone(), "reconduite tacitement à son terme)", &reference, false);
        let body = refused.1.to_string();
        for told in [id, "2029-08-31", "31 août 2029", "2030-08-31", "31 août 2030", "perdraient"] {
            assert!(!body.contains(told), "{name}: « {told} » told to a non-reader: {body}");
        }
        answers.push((term, refused.1));
    }
    assert_eq!(answers[0].1.to_string(), answers[1].1.to_string(), "{name}: the term is not told by the bytes");
    // As a convention of the same model is refused to the DAN (the bipartite's model).
    let same_model = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune", "start_date": "2029-09-01",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
    }));
    let (status, same) = call(c.dan.post(c.url("")).json(&same_model)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{name}: {same}");
    let keys = |p: &Value| p.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&answers[0].1), keys(&same), "{name}: the same shape: {same}");
    let unread = "est déjà couvert par une autre convention (que vous ne consultez pas) sur ces dates (elle est \
                  reconduite tacitement à son terme)";
    assert!(answers[0].1["detail"].as_str().unwrap().contains(unread), "{name}: {}", answers[0].1);
    // No draft left behind.
    let sql = "SELECT COUNT(*) FROM conventions WHERE model_id = 'tripartite-premier-degre'";
    assert_eq!(common::count(&c.db.store, sql, &[]).await, 0, "{name}");
}

/// A `bipartite-commune` of the académie with Fresnes from `start` (all the commune's écoles).
fn fresnes_bipartite(start: &str) -> Value {
    common::fixtures::with_signatories(json!({
        "model": "bipartite-commune", "start_date": start,
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
    }))
}

// Security review 41, F2: a full successor of a convention renewed tacitly (the DSDEN's
// bipartite, term 31 August 2029) was accepted from the day after its term whoever drafted it,
// and refused on every other day, so that trying start dates dated the term for the académie's
// DAN, no party to it. To it, the full successor is refused on that day as on any other, in the
// same bytes; and the refusal over a convention of another model (a tripartite of one école,
// the same RGPD roles) has the bytes of the same-model refusal. Nothing is drafted.
backend_test!(a_full_successor_is_refused_to_whom_does_not_read_the_renewed_convention_as_on_any_other_day);
async fn a_full_successor_is_refused_to_whom_does_not_read_the_renewed_convention_as_on_any_other_day(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let reference = dsden_bipartite_in_force(&c).await;
    c.clock.set(Utc.with_ymd_and_hms(2029, 5, 15, 8, 0, 0).unwrap());
    let mut answers = Vec::new();
    for start in ["2029-09-01", "2029-10-01", "2030-09-01", "2032-09-01"] {
        let (status, refused) = call(c.dan.post(c.url("")).json(&fresnes_bipartite(start))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {start}: {refused}");
        answers.push((start, refused.to_string()));
    }
    // Another model of the same RGPD roles, on the école the same-model refusal names.
    let berty_albrecht = |start: &str| {
        let mut body = tripartite(start);
        body["parties"]["etablissement"] = json!("0940232S");
        body
    };
    for start in ["2029-09-01", "2030-09-01"] {
        let (status, refused) = call(c.dan.post(c.url("")).json(&berty_albrecht(start))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {start}: {refused}");
        answers.push((start, refused.to_string()));
    }
    let first = &answers[0].1;
    assert!(first.contains("Berty Albrecht (0940232S) est déjà couvert par une autre convention"), "{name}: {first}");
    assert!(first.contains("ses parties, qui en connaissent la date"), "{name}: {first}");
    for (start, answer) in &answers {
        assert_eq!(answer, first, "{name}: {start}: the same bytes on every day, for either model");
    }
    for told in [reference.as_str(), "2029-08-31", "31 août 2029", "du même modèle"] {
        assert!(!first.contains(told), "{name}: « {told} » told to a non-reader: {first}");
    }
    let sql = "SELECT COUNT(*) FROM conventions WHERE created_by = 'user:dan@ac-creteil.fr'";
    assert_eq!(common::count(&c.db.store, sql, &[]).await, 0, "{name}: nothing drafted");
}

// Who reads the renewed convention (the DSDEN's DAN, party to it) still drafts its full successor
// from the day after its term; a day later it is refused, told the term.
backend_test!(a_reader_drafts_the_full_successor_of_a_renewed_convention_the_day_after_its_term);
async fn a_reader_drafts_the_full_successor_of_a_renewed_convention_the_day_after_its_term(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let reference = dsden_bipartite_in_force(&c).await;
    let dsden = c.app.client(&token_for(&c.db.store, "dan@dsden94.fr", Role::Dan, Some("dsden:94")).await);
    c.clock.set(Utc.with_ymd_and_hms(2029, 5, 15, 8, 0, 0).unwrap());
    let successor = |start: &str| {
        let mut body = fresnes_bipartite(start);
        body["parties"]["academie"]["org"] = json!("dsden:94");
        body
    };
    let later = call(dsden.post(c.url("")).json(&successor("2029-09-02"))).await;
    let told = "du même modèle sur ces dates (elle est reconduite tacitement à son terme, le 31 août 2029)";
    assert_opposes(name, later, told, &reference, true);
    let (status, drafted) = call(dsden.post(c.url("")).json(&successor("2029-09-01"))).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {drafted}");
    assert_eq!(drafted["start_date"], "2029-09-01", "{name}: {drafted}");
}

/// The DSDEN's renewable bipartite with the commune (drafted by an administrator), in force from
/// 1 September 2026 to 31 August 2029: its reference. The académie's DAN is no party to it.
async fn dsden_bipartite_in_force(c: &Cycle) -> String {
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "dsden:94", "collectivite": "commune:94034" },
        "start_date": "2026-09-01"
    }));
    let (status, old) = call(c.admin.post(c.url("")).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {old}", c.db.name);
    assert_eq!(old["end_date"], "2029-08-31", "{}: {old}", c.db.name);
    // Signed by its parties (outside this test's subject): in force.
    let id = old["id"].as_str().unwrap();
    common::execute(&c.db.store, "UPDATE conventions SET status = 'active' WHERE id = $1", &[id]).await;
    old["reference"].as_str().unwrap().to_string()
}

// A refusal over a convention renewed tacitly tells its term, and the day a successor may start,
// only to whom reads it, as it tells its reference: the commune, party to the DSDEN's bipartite,
// reads « le 31 août 2029 » and « le 1er septembre 2029 », also for a successor leaving écoles
// out; the académie's DAN, no party to it, reads neither anywhere in the answer to a convention
// of the same model starting later.
backend_test!(a_tacit_renewal_hint_tells_the_term_only_to_whom_reads_the_renewed_convention);
async fn a_tacit_renewal_hint_tells_the_term_only_to_whom_reads_the_renewed_convention(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let reference = dsden_bipartite_in_force(&c).await;
    c.clock.set(Utc.with_ymd_and_hms(2029, 5, 15, 8, 0, 0).unwrap());
    let later = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune", "start_date": "2029-10-01",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
    }));
    let term = ["31 août 2029", "2029-08-31", "1er septembre 2029", "2029-09-01"];
    let refused = call(c.mairie.post(c.url("")).json(&later)).await;
    assert_opposes(name, refused.clone(), "reconduite tacitement à son terme, le 31 août 2029", &reference, true);
    assert!(refused.1["detail"].as_str().unwrap().contains("le 1er septembre 2029, lendemain de ce terme"), "{name}");
    let refused = call(c.dan.post(c.url("")).json(&later)).await;
    assert_opposes(name, refused.clone(), "reconduite tacitement à son terme)", &reference, false);
    let body = refused.1.to_string();
    assert!(
        body.contains("lendemain de ce terme et couvre toutes ses écoles lui succède sans reconduction"),
        "{name}: {body}"
    );
    for date in term {
        assert!(!body.contains(date), "{name}: « {date} » told to a non-reader: {body}");
    }

    let one_ecole = tripartite("2029-09-01");
    let refused = call(c.mairie.post(c.url("")).json(&one_ecole)).await;
    assert_opposes(name, refused, "reconduite tacitement à son terme, le 31 août 2029, sauf si", &reference, true);
}

/// The DSDEN's bipartite with the commune of Fresnes as joint controller (other RGPD roles than
/// a tripartite's), from 1 September 2026, put in force: the convention as drafted.
async fn dsden_joint_bipartite_in_force(c: &Cycle) -> Value {
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune-conjointe",
        "parties": { "academie": "dsden:94", "collectivite": "commune:94034" },
        "start_date": "2026-09-01"
    }));
    let (status, old) = call(c.admin.post(c.url("")).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {old}", c.db.name);
    let reference = old["reference"].as_str().unwrap();
    common::execute(&c.db.store, "UPDATE conventions SET status = 'active' WHERE reference = $1", &[reference]).await;
    old
}

// A successor leaving écoles out is refused to whom does not read the renewed convention in the
// very bytes of any other refusal over it: the académie's DAN, no party to the DSDEN's bipartite
// with the commune as joint controller (other RGPD roles), drafting a tripartite of one école
// from 1 September 2029 reads the same answer whether the bipartite's term is the day before
// (a partial succession), a year later, or two months before (renewed past it): its term cannot
// be deduced from it. The commune, party to it, is told the partial succession with the term.
backend_test!(a_partial_succession_refusal_is_the_same_bytes_whatever_the_renewed_conventions_term);
async fn a_partial_succession_refusal_is_the_same_bytes_whatever_the_renewed_conventions_term(
    db: crate::common::TestDb,
) {
    let models = joint_controller_model();
    let c = over_models(setup(db).await, &models).await;
    let name = c.db.name;
    let old = dsden_joint_bipartite_in_force(&c).await;
    let reference = old["reference"].as_str().unwrap().to_string();
    c.clock.set(Utc.with_ymd_and_hms(2029, 5, 15, 8, 0, 0).unwrap());
    let one_ecole = tripartite("2029-09-01");
    let mut answers = Vec::new();
    for term in ["2029-08-31", "2030-08-31", "2029-06-30"] {
        common::execute(&c.db.store, "UPDATE conventions SET end_date = $1 WHERE reference = $2", &[term, &reference])
            .await;
        let refused = call(c.dan.post(c.url("")).json(&one_ecole)).await;
        assert_opposes(name, refused.clone(), "d'autres rôles au sens du RGPD", &reference, false);
        answers.push((term, refused.1.to_string()));
    }
    for (term, answer) in &answers[1..] {
        assert_eq!(answer, &answers[0].1, "{name}: a term on {term} and on the day before the start");
    }
    assert!(!answers[0].1.contains("perdraient"), "{name}: {}", answers[0].1);
    common::execute(&c.db.store, "UPDATE conventions SET end_date = '2029-08-31' WHERE reference = $1", &[&reference])
        .await;
    let refused = call(c.mairie.post(c.url("")).json(&one_ecole)).await;
    assert_opposes(name, refused, "reconduite tacitement à son terme, le 31 août 2029, sauf si", &reference, true);
}

// The refusal of other RGPD roles names the other convention's controller (« responsable de
// traitement : … ») only to whom reads that convention: the commune, party to the DSDEN's
// tripartite, reads it; the académie's DAN, no party to it, finds it nowhere in the answer.
backend_test!(an_rgpd_roles_refusal_names_the_controller_only_to_whom_reads_the_other_convention);
async fn an_rgpd_roles_refusal_names_the_controller_only_to_whom_reads_the_other_convention(db: crate::common::TestDb) {
    let models = joint_controller_model();
    let c = over_models(setup(db).await, &models).await;
    let name = c.db.name;
    let tri = dsden_tripartite_in_signature(&c).await;
    let reference = tri["reference"].as_str().unwrap().to_string();
    let controller = tri["rgpd_controller"]["name"].as_str().expect("a controller").to_string();

    let conjointe = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune-conjointe",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034" },
        "start_date": "2026-10-01"
    }));
    let told = format!("(responsable de traitement : {controller})");
    let refused = call(c.mairie.post(c.url("")).json(&conjointe)).await;
    assert_opposes(name, refused, &told, &reference, true);
    let refused = call(c.dan.post(c.url("")).json(&conjointe)).await;
    assert_opposes(name, refused.clone(), "rôles au sens du RGPD : une école n'a qu'un", &reference, false);
    let body = refused.1.to_string();
    assert!(!body.contains(&controller) && !body.contains("responsable de traitement :"), "{name}: {body}");
}

/// `who` withdraws, at `version` (`None`: no If-Match), the signature of `party` on the convention
/// `id` for `reason`: the status and body answered.
async fn withdraw(
    c: &Cycle,
    who: &Client,
    (id, party): (&str, &str),
    version: Option<i64>,
    reason: &str,
) -> (StatusCode, Value) {
    let mut req = who.post(c.url(&format!("/{id}/signatures/{party}/withdraw")));
    if let Some(version) = version {
        req = req.header("if-match", format!("\"{version}\""));
    }
    call(req.json(&json!({ "reason": reason }))).await
}

// A signature given by mistake on a convention in signature is withdrawn by an administrator,
// for a stated reason, at the version read: the commune's signature is voided with the reason
// (audited, the parties' signatories and the signer told), the directeur's kept; the commune
// signs again and the convention completes. No one else withdraws one (403, before anything is
// read), nor the administrator without If-Match (428), on a stale version (412), without a
// reason (422), a party it does not have (404), a signature already withdrawn (409), or once
// signed by every party (409 saying an avenant or a résiliation is the way).
backend_test!(an_administrator_withdraws_a_signature_given_by_mistake_and_the_party_signs_again);
async fn an_administrator_withdraws_a_signature_given_by_mistake_and_the_party_signs_again(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = submitted(&c).await;
    c.step_ok(&c.directeur, &id, "sign", json!({})).await;
    let signed = c.step_ok(&c.mairie, &id, "sign", json!({})).await;
    let version = signed["version"].as_i64().unwrap();
    let hash = signed["document_hash"].clone();
    let both =
        vec![("signature".to_string(), "collectivite".to_string()), ("signature".into(), "etablissement".into())];
    let target = (id.as_str(), "collectivite");

    for who in [&c.dan, &c.mairie, &c.directeur] {
        let (status, p) = withdraw(&c, who, target, Some(version), "Signée par erreur").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {p}");
    }
    let (status, p) = withdraw(&c, &c.admin, target, None, "Signée par erreur").await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{name}: {p}");
    let (status, p) = withdraw(&c, &c.admin, target, Some(version - 1), "Signée par erreur").await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{name}: {p}");
    let (status, p) = withdraw(&c, &c.admin, target, Some(version), " \u{200b} ").await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")), "{p}");
    let (status, p) = withdraw(&c, &c.admin, (&id, "inconnue"), Some(version), "Signée par erreur").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {p}");
    assert_eq!(live_steps(&c, &id).await, both, "{name}: nothing withdrawn by a refusal");

    let reason = "Signée par l'adjoint au lieu du maire";
    let (status, after) = withdraw(&c, &c.admin, target, Some(version), reason).await;
    assert_eq!(status, StatusCode::OK, "{name}: {after}");
    assert_eq!(live_steps(&c, &id).await, vec![both[1].clone()], "{name}: the directeur's signature is kept");
    assert_eq!((after["status"].as_str(), after["version"].as_i64()), (Some("in_signature"), Some(version + 1)));
    assert_eq!(after["document_hash"], hash, "{name}: the same document is signed again");
    let voided = after["steps"].as_array().unwrap().iter().find(|s| s["step_key"] == "collectivite").unwrap();
    assert!(voided["void_reason"].as_str().unwrap().ends_with(reason), "{name}: {voided}");
    let summary = audited_summary(&c, &id, "conventions.signature_withdrawn").await;
    assert_eq!(
        (summary["party"].as_str(), summary["reason"].as_str()),
        (Some("collectivite"), Some(reason)),
        "{summary}"
    );
    for signatory in ["ent@fresnes.fr", "dan@ac-creteil.fr", "ce.0940176f@ac-creteil.fr"] {
        assert_eq!(c.mails(signatory, "signature_withdrawn").await, 1, "{name}: {signatory} is told");
    }
    let (status, p) = withdraw(&c, &c.admin, target, Some(version + 1), reason).await;
    assert_eq!(status, StatusCode::CONFLICT, "{name}: withdrawn already: {p}");

    c.step_ok(&c.mairie, &id, "sign", json!({})).await;
    let done = c.step_ok(&c.dan, &id, "sign", json!({})).await;
    assert_eq!(done["status"], "active", "{name}: signed on its first day, in force: {done}");
    let version = done["version"].as_i64().unwrap();
    let (status, p) = withdraw(&c, &c.admin, target, Some(version), reason).await;
    assert_eq!(status, StatusCode::CONFLICT, "{name}: {p}");
    assert!(p["detail"].as_str().unwrap().contains("concluent un avenant, ou la résilient"), "{name}: {p}");
    assert_eq!(live_steps(&c, &id).await.len(), 3, "{name}: a signed convention keeps its signatures");
}

// The refusal of a délégation given before the representative changed says what an
// administrator can do for a convention naming M. Jean Dupont by mistake, while in signature:
// withdraw his signature. Done, his signature no longer dates the délégation: Karim's arrêté of
// March is accepted.
backend_test!(a_signature_an_administrator_withdrew_no_longer_dates_a_delegation);
async fn a_signature_an_administrator_withdrew_no_longer_dates_a_delegation(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let karim = person(&c, "karim@fresnes.fr", "Karim Benali", Role::Collectivite, "commune:94034").await;
    let jean = person(&c, "jean.dupont@fresnes.fr", "Jean DUPONT", Role::Collectivite, "commune:94034").await;
    let sign = |id: &str, body: Value| call(karim.post(c.url(&format!("/{id}/sign"))).json(&body));
    let first = c.create(named_representatives("2026-09-01")).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &first, "submit", json!({})).await;
    let (status, signed) = call(jean.post(c.url(&format!("/{first}/sign"))).json(&json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");

    c.clock.set(Utc.with_ymd_and_hms(2026, 10, 15, 9, 0, 0).unwrap());
    let mut body = named_representatives("2026-11-01");
    body["parties"]["etablissement"]["org"] = json!("0940289D");
    body["parties"]["collectivite"]["signatory"]["name"] = json!("Mme Hélène Roy");
    let second = c.create(body).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &second, "submit", json!({})).await;
    let (status, problem) = sign(&second, json!({ "delegation": karims_delegation("2026-03-03") })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    let detail = problem["errors"][0]["message"].as_str().or(problem["detail"].as_str()).unwrap();
    let told = "ou demandez à un administrateur de la plateforme d'en retirer la seule signature de M. Jean Dupont";
    assert!(detail.contains(told), "{name}: {detail}");
    assert!(!detail.contains("signalez-le à un administrateur"), "{name}: {detail}");

    let version = call(c.admin.get(c.url(&format!("/{first}")))).await.1["version"].as_i64().unwrap();
    let (status, p) =
        withdraw(&c, &c.admin, (&first, "collectivite"), Some(version), "M. Dupont n'était plus maire").await;
    assert_eq!(status, StatusCode::OK, "{name}: {p}");
    let (status, signed) = sign(&second, json!({ "delegation": karims_delegation("2026-03-03") })).await;
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");
}

// A convention is drafted by its parties' own roles: the académie's DAN, though the registry
// places the DSDEN in its scope, does not draft a convention whose académie party is the DSDEN
// (403), and the refusal says which role at which organisation is needed; the DSDEN's DAN does.
backend_test!(the_academie_s_dan_is_told_a_dsden_convention_needs_the_dan_role_at_the_dsden);
async fn the_academie_s_dan_is_told_a_dsden_convention_needs_the_dan_role_at_the_dsden(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let mut body = tripartite("2026-09-01");
    body["parties"]["academie"]["org"] = json!("dsden:94");
    let (status, problem) = call(c.dan.post(c.url("")).json(&body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(
            "Votre rôle DAN à l'académie de Créteil ne s'étend pas aux conventions dont la DSDEN du \
                         Val-de-Marne est partie : il faut le rôle DAN à la DSDEN du Val-de-Marne elle-même"
        ),
        "{name}: {problem}"
    );
    let dsden_dan = person(&c, "dan@dsden94.fr", "Agent DSDEN", Role::Dan, "dsden:94").await;
    let (status, created) = call(dsden_dan.post(c.url("")).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {created}");
}

// H2 (continued). A délégation ends with the office of whom gave it: M. Jean Dupont, maire,
// signed a convention in his own name on 1 September; once a convention names Mme Hélène Roy as
// maire, Karim's arrêté of March is refused (it is before the day M. Dupont last signed as maire),
// the refusal naming that convention and how to correct it if it named him by mistake; an
// arrêté of hers dated that very day is accepted (both may be true that day). Each recorded with
// who gave it.
backend_test!(a_delegation_given_before_the_representative_changed_is_refused);
async fn a_delegation_given_before_the_representative_changed_is_refused(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let karim = karim(&c).await;
    let jean = person(&c, "jean.dupont@fresnes.fr", "Jean DUPONT", Role::Collectivite, "commune:94034").await;
    let (first, reference) = drafted_and_submitted(&c, named_representatives("2026-09-01")).await;
    let (status, signed) = sign_as(&c, &jean, &first, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");

    let second = a_later_convention_naming_mme_roy(&c).await;
    let refused = sign_as(&c, &karim, &second, json!({ "delegation": karims_delegation("2026-03-03") })).await;
    let said = [
        "prend fin avec les fonctions",
        "est antérieur au 1er septembre 2026, jour où M. Jean Dupont a signé en son nom propre la convention",
        &reference,
        "comme la personne qui représentait",
        "Mme Hélène Roy",
        "nomme M. Jean Dupont par erreur, faites-la modifier tant qu'elle est en signature",
    ];
    assert_refused_as_before_the_office(name, refused, &said);
    assert!(live_steps(&c, &second).await.is_empty(), "{name}: nothing recorded");

    // An act of the day he last signed passes.
    let mut hers = karims_delegation("2026-09-01");
    hers["number"] = json!("2026-301");
    let signed = sign_as(&c, &karim, &second, json!({ "delegation": hers })).await;
    assert_signed_by_delegation_of(name, signed, "collectivite", "Mme Hélène Roy");
}

// F3 (domain review 37). Only a signature given in one's own name tells who represented the
// organisation: a convention naming M. Jean Dupont as maire, submitted, and signed for him only by
// délégation (Karim's), never by him, does not date him; an arrêté of Mme Hélène Roy dated
// before both is accepted on the convention naming her.
backend_test!(a_representative_only_named_or_signed_for_by_delegation_does_not_date_the_delegation);
async fn a_representative_only_named_or_signed_for_by_delegation_does_not_date_the_delegation(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let karim = karim(&c).await;
    let (first, _) = drafted_and_submitted(&c, named_representatives("2026-09-01")).await;
    let signed = sign_as(&c, &karim, &first, json!({ "delegation": karims_delegation("2026-03-03") })).await;
    assert_signed_by_delegation_of(name, signed, "collectivite", "M. Jean Dupont");

    let second = a_later_convention_naming_mme_roy(&c).await;
    let mut hers = karims_delegation("2026-08-25");
    hers["number"] = json!("2026-301");
    let signed = sign_as(&c, &karim, &second, json!({ "delegation": hers })).await;
    assert_signed_by_delegation_of(name, signed, "collectivite", "Mme Hélène Roy");
}

// F3 (domain review 37), the reviewer's story. The DAN, Julien Moreau, drafts a convention naming
// himself « recteur de l'académie » by mistake and signs it in his own name on 1 September. A
// convention naming the rectrice, Mme Claire Martin, is signed by him by her délégation: an
// arrêté of hers of 25 August is refused — the platform holds his signature as the académie's
// representative and cannot tell a mistake from a change of office — and the refusal names the
// convention he signed (he reads it) and how to correct it; an arrêté of hers of 1 September
// passes.
backend_test!(a_dan_who_signed_as_recteur_by_mistake_is_told_which_convention_to_correct);
async fn a_dan_who_signed_as_recteur_by_mistake_is_told_which_convention_to_correct(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let julien = person(&c, "julien.moreau@ac-creteil.fr", "Julien Moreau", Role::Dan, "academie:24").await;
    let mut body = named_representatives("2026-09-01");
    body["parties"]["academie"]["signatory"] = json!({ "name": "Julien Moreau", "quality": "recteur de l'académie" });
    let (first, reference) = drafted_and_submitted(&c, body).await;
    let (status, signed) = sign_as(&c, &julien, &first, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");

    let rectrice = json!({ "name": "Mme Claire Martin", "quality": "rectrice de l'académie de Créteil" });
    let second = a_later_convention(&c, "academie", |signatory| *signatory = rectrice).await;
    let dans = |date: &str| {
        json!({ "delegation": { "quality": "délégué académique au numérique", "act": "arrete",
            "number": "2026-DAN-3", "date": date } })
    };
    let refused = sign_as(&c, &julien, &second, dans("2026-08-25")).await;
    let signed_as_the_representative = format!(
        "Julien Moreau a signé en son nom propre la convention {reference}, comme la personne qui représentait"
    );
    let by_mistake = format!("Si {reference} nomme Julien Moreau par erreur");
    let said = [
        "(arrêté n° 2026-DAN-3 du 25 août 2026) est antérieur au 1er septembre 2026",
        &signed_as_the_representative,
        "désigne désormais Mme Claire Martin, rectrice",
        &by_mistake,
        "faites établir une nouvelle délégation par Mme Claire Martin",
    ];
    assert_refused_as_before_the_office(name, refused, &said);
    assert!(live_steps(&c, &second).await.is_empty(), "{name}: nothing recorded");

    // An act of the day he signed passes.
    let signed = sign_as(&c, &julien, &second, dans("2026-09-01")).await;
    assert_signed_by_delegation_of(name, signed, "academie", "Mme Claire Martin");
}

// Who gave a délégation is recorded by the platform (the representative the document names): a
// `delegator` sent naming someone else is refused (422 on `delegation.delegator`, nothing
// signed), not silently replaced; one naming the same person is accepted.
backend_test!(a_delegator_sent_other_than_the_representative_named_is_refused);
async fn a_delegator_sent_other_than_the_representative_named_is_refused(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let karim = karim(&c).await;
    let (id, _) = drafted_and_submitted(&c, named_representatives("2026-09-01")).await;
    let sign = |body: Value| sign_as(&c, &karim, &id, body);
    let mut given = karims_delegation("2026-03-03");
    given["delegator"] = json!("Mme Hélène Roy");
    let (status, problem) = sign(json!({ "delegation": given })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert_eq!(problem["title"], "Données invalides", "{name}: {problem}");
    assert_eq!(problem["errors"][0]["field"], "delegation.delegator", "{name}: {problem}");
    assert!(problem.to_string().contains("M. Jean Dupont"), "{name}: {problem}");
    assert!(live_steps(&c, &id).await.is_empty(), "{name}: nothing signed");

    given["delegator"] = json!("DUPONT Jean");
    let signed = sign(json!({ "delegation": given })).await;
    assert_signed_by_delegation_of(name, signed, "collectivite", "M. Jean Dupont");
}

// A convention refused back to draft does not tell who the representative was: the commune
// refuses the convention naming M. Jean Dupont (Mme Hélène Roy is maire), and a délégation of
// hers dated before that submission is accepted on the convention naming her.
backend_test!(a_convention_refused_back_to_draft_does_not_date_the_former_representative);
async fn a_convention_refused_back_to_draft_does_not_date_the_former_representative(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let karim = karim(&c).await;
    let (first, _) = drafted_and_submitted(&c, named_representatives("2026-09-01")).await;
    c.step_ok(&c.mairie, &first, "refuse", json!({ "comment": "Mme Hélène Roy est maire depuis le 20 août" })).await;

    let second = a_later_convention_naming_mme_roy(&c).await;
    let signed = sign_as(&c, &karim, &second, json!({ "delegation": karims_delegation("2026-08-25") })).await;
    assert_signed_by_delegation_of(name, signed, "collectivite", "Mme Hélène Roy");
}

// --- Edition 5 (review of the convention documents: M2, M7, L2, L8, L9, L12) ---

// M2, M7, L9, L12. From edition 5 the text shows the directory's names as French typography
// writes them (« l'École élémentaire Robert Doisneau », where the directory says « Ecole »), and
// so does the title a draft is given; a breach is notified « dans les meilleurs délais et au plus
// tard 48 heures après en avoir pris connaissance » in the clause and in the art. 28 annex alike;
// the école's annex lists the personnels once and no documentaliste; the school signs « Fait à
// Fresnes », its commune. A convention of edition 4, which shipped without any of these, is
// frozen, signed and hashed with the text edition 4 wrote: its hash re-derives.
backend_test!(edition_5_shows_the_schools_accent_caps_the_breach_and_places_the_school_and_edition_4_keeps_its_text);
async fn edition_5_shows_the_schools_accent_caps_the_breach_and_places_the_school_and_edition_4_keeps_its_text(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    let title = conv["title"].as_str().unwrap();
    assert!(title.ends_with("Fresnes, École élémentaire Robert Doisneau"), "{name}: the title drafted: {title}");
    let html = document_text(&c, &id).await;
    let edition_5 = [
        "l'École élémentaire Robert Doisneau, représentée par Mme Camille Martin",
        "Pour l'École élémentaire Robert Doisneau : Mme Camille Martin, représentante habilitée, par délégation \
         (arrêté n° 2025-07 du 30 juin 2025). Fait à Fresnes, le",
        "<td>0940176F</td><td>École élémentaire Robert Doisneau</td>",
        "la notification de toute violation de données dans les meilleurs délais et au plus tard 48 heures après en \
         avoir pris connaissance, afin que le responsable de traitement puisse la notifier à la CNIL",
        "Violations de données : le sous-traitant notifie au responsable de traitement toute violation de données \
         dans les meilleurs délais et au plus tard 48 heures après en avoir pris connaissance, avec",
        "Catégories de personnes concernées : élèves (mineurs) ; responsables légaux ; personnels.",
    ];
    reads(name, "edition 5", &html, &edition_5, &[]);
    for gone in ["Ecole élémentaire", "sans délai de toute violation", "documentalistes", "Fait à ……"] {
        assert!(!html.contains(gone), "{name}: edition 5 still says « {gone} »: {html}");
    }

    written_in_edition(&c, &id, 4).await;
    let edition_4 = [
        "l'Ecole élémentaire Robert Doisneau, représentée par Mme Camille Martin",
        "Pour l'Ecole élémentaire Robert Doisneau : Mme Camille Martin, représentante habilitée, par délégation \
         (arrêté n° 2025-07 du 30 juin 2025). Fait à ……………………, le",
        "<td>0940176F</td><td>Ecole élémentaire Robert Doisneau</td>",
        "la notification sans délai de toute violation de données, afin que",
        "toute violation de données dans les meilleurs délais après en avoir pris connaissance, avec",
        "personnels enseignants et documentalistes",
    ];
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let signed = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text.replace("&#x27;", "'");
    reads(name, "edition 4 as it shipped", &signed, &edition_4, &[]);
    assert!(!signed.contains("48 heures après") && !signed.contains("l'École"), "{name}: {signed}");
    signed_hash_rederives_in_edition(&c, &id, 4).await;
}

/// The signature blocks (« Pour … : …, le …… ») of the frozen version `version` of the convention `id`.
async fn frozen_signature_blocks(c: &Cycle, id: &str, version: i64) -> Vec<String> {
    let url = c.url(&format!("/{id}/signed-document?version={version}"));
    let html = c.dan.get(url).send().await.text.replace("&#x27;", "'");
    let blocks = html.split("<p>Pour ").skip(1).map(|rest| format!("Pour {}", &rest[..rest.find("</p>").unwrap()]));
    blocks.filter(|block| block.contains("Fait à")).collect()
}

// F4 (domain review 37). A convention modified in signature is frozen again: the blocks of the
// parties the edit leaves alone read byte for byte as first frozen, the école signing « Fait à
// Fresnes », its commune (the edit rebuilt the parties without it: « Fait à …… »).
backend_test!(an_edit_in_signature_renders_the_untouched_parties_signature_blocks_as_first_frozen);
async fn an_edit_in_signature_renders_the_untouched_parties_signature_blocks_as_first_frozen(
    db: crate::common::TestDb,
) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = c.create(tripartite("2026-09-01")).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.edit(&id, json!({ "signatories": { "academie": { "name": "Mme Claire Roux" } } })).await;
    let (first, edited) = (frozen_signature_blocks(&c, &id, 1).await, frozen_signature_blocks(&c, &id, 2).await);
    assert_eq!(first.len(), 3, "{name}: {first:?}");
    assert_eq!(edited.len(), 3, "{name}: {edited:?}");
    assert!(first[0].contains("Mme Camille Martin") && edited[0].contains("Mme Claire Roux"), "{name}: {edited:?}");
    assert_eq!(first[1..], edited[1..], "{name}: the untouched parties' blocks");
    assert!(edited[2].contains(&french("Robert Doisneau : ")), "{name}: {edited:?}");
    assert!(edited[2].ends_with("Fait à Fresnes, le ……………………"), "{name}: {edited:?}");
}

// F13 (domain review 37). Edition 6 words the operative text as a legal act: numbers in letters,
// « l'académie de Créteil », a representative named without civility « agissant en vertu de » the
// délibération (never « habilité(e) »), a sensitive datum in one parenthesis citing article 9.
// Edition 5, which shipped without these, is frozen, signed and hashed with its own text.
backend_test!(edition_6_words_the_text_as_a_legal_act_and_edition_5_keeps_its_text);
async fn edition_6_words_the_text_as_a_legal_act_and_edition_5_keeps_its_text(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let mut body = tripartite("2026-09-01");
    body["parties"]["collectivite"]["signatory"]["name"] = json!("Karim Benali");
    let id = c.create(body).await["id"].as_str().unwrap().to_string();
    let html = document_text(&c, &id).await;
    let edition_6 = [
        "Fait en trois exemplaires originaux.",
        "au moins une fois par an",
        "un préavis de trois mois",
        "l'académie de Créteil, représentée par Mme Camille Martin",
        "Pour l'académie de Créteil : Mme Camille Martin",
        "Karim Benali, représentante habilitée, par délégation (arrêté n° 2025-07 du 30 juin 2025), agissant en vertu \
         de la délibération du conseil municipal n° 2025-42 du 30 juin 2025",
    ];
    let gone = ["habilité(e)", "l'Académie", "articles 9 ou 10", "RGPD) (", "Fait en 3 ", "au moins 1 fois"];
    reads(name, "edition 6", &html, &edition_6, &gone);

    written_in_edition(&c, &id, 5).await;
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    c.signed_by_all(&id).await;
    let signed = c.dan.get(c.url(&format!("/{id}/signed-document"))).send().await.text.replace("&#x27;", "'");
    let edition_5 = [
        "Fait en 3 exemplaires originaux.",
        "au moins 1 fois par an",
        "un préavis de 3 mois",
        "l'Académie de Créteil, représentée par Mme Camille Martin",
        "Karim Benali, représentante habilitée, par délégation (arrêté n° 2025-07 du 30 juin 2025), dûment \
         habilité(e) par délibération du conseil municipal n° 2025-42 du 30 juin 2025",
    ];
    reads(name, "edition 5 as it shipped", &signed, &edition_5, &[]);
    assert!(!signed.contains("agissant en vertu") && !signed.contains("l'académie de Créteil, représentée"), "{name}");
    signed_hash_rederives_in_edition(&c, &id, 5).await;
}

migration_test!(the_edition_6_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 6);

// L2. An avenant had two titles: stored « Avenant – Convention tripartite… » (the API, the
// dashboard, the document's subtitle) and the document's « Avenant n° 1 à la convention « … »
// (CONV-…, signée le …) ». A new avenant is stored under the numbered one, which its document's
// title is, and its subtitle is its reference.
backend_test!(a_new_avenant_is_stored_under_its_numbered_title_and_subtitled_by_its_reference);
async fn a_new_avenant_is_stored_under_its_numbered_title_and_subtitled_by_its_reference(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let id = signed_from(&c, "2026-09-01").await;
    let reference = conv_reference(&c, &id).await;
    let avenant = c.drafted_avenant(&id).await;
    let (_, drafted) = call(c.dan.get(c.url(&format!("/{avenant}")))).await;
    let title = drafted["title"].as_str().unwrap();
    assert!(title.starts_with("Avenant n° 1 à la convention « Convention tripartite"), "{name}: {title}");
    assert!(title.contains("Fresnes, École élémentaire Robert Doisneau »"), "{name}: {title}");
    assert!(title.ends_with(&format!("({reference}, signée le 1er septembre 2026)")), "{name}: {title}");
    let html = document_text(&c, &avenant).await;
    let own = drafted["reference"].as_str().unwrap();
    let heading = format!("<h1>{}</h1>", french(title));
    assert!(html.contains(&heading.replace('"', "&quot;")) || html.contains(&heading), "{name}: {heading} in {html}");
    assert!(html.contains(&format!("<p class=\"subtitle\">Avenant {own}</p>")), "{name}: {html}");
    assert!(!html.contains("Avenant – "), "{name}: {html}");
}

// L8. The signatures page's « Nom » showed the account's display name, « Mme Sophie Durand,
// directrice de l'école Robert Doisneau », beside her quality « directrice »: it names the person.
backend_test!(the_signatures_page_names_the_person_not_the_accounts_label);
async fn the_signatures_page_names_the_person_not_the_accounts_label(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    let account = "Mme Sophie Durand, directrice de l'école Robert Doisneau";
    let sophie = person(&c, "sophie.durand@ac-creteil.fr", account, Role::ChefEtablissement, "0940176F").await;
    let id = c.create(named_representatives("2026-09-01")).await["id"].as_str().unwrap().to_string();
    c.step_ok(&c.dan, &id, "submit", json!({})).await;
    let (status, signed) = call(sophie.post(c.url(&format!("/{id}/sign"))).json(&json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{name}: {signed}");
    let html = document_text(&c, &id).await;
    let page = &html[html.rfind("<h2>Signatures</h2>").unwrap_or_else(|| panic!("{name}: {html}"))..];
    assert!(page.contains("<td>Mme Sophie Durand</td><td>directrice</td>"), "{name}: {page}");
    assert!(!page.contains("directrice de l'école"), "{name}: the account's label: {page}");
}

migration_test!(the_edition_5_migration_moves_drafts_only, an_edition_migration_moves_drafts_only, 5);

// The overlap check compares what a convention covers on the day of the check, not the schools
// listed when it was drafted: an école opened in Fresnes after the DSDEN's bipartite (commune as
// joint controller: other RGPD roles) was drafted and put in force is covered by it, so a
// tripartite of that école is refused (409, other roles) as for an école it listed.
backend_test!(an_overlap_check_compares_the_schools_a_bipartite_covers_today);
async fn an_overlap_check_compares_the_schools_a_bipartite_covers_today(db: crate::common::TestDb) {
    let models = joint_controller_model();
    let c = over_models(setup(db).await, &models).await;
    let name = c.db.name;
    let old = dsden_joint_bipartite_in_force(&c).await;
    let reference = old["reference"].as_str().unwrap().to_string();

    let opened = common::fixtures::uai("0949931");
    let csv = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Code postal;\
         Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;Ecole_maternelle;Ecole_elementaire;etat\n\
         {opened};Ecole élémentaire Nouvelle;Ecole;Public;94260;94034;Fresnes;094;24;11;0;1;OUVERT\n"
    );
    common::fixtures::annuaire(&c.db.store, &csv).await;
    let listed: Vec<&str> = old["schools"].as_array().unwrap().iter().filter_map(|s| s["code"].as_str()).collect();
    assert!(!listed.contains(&opened.as_str()), "{name}: opened after the drafting");

    let mut tri = tripartite("2026-10-01");
    tri["parties"]["etablissement"] = json!(opened);
    let refused = call(c.dan.post(c.url("")).json(&tri)).await;
    assert_opposes(name, refused, "d'autres rôles au sens du RGPD", &reference, false);
    let refused = call(c.mairie.post(c.url("")).json(&tri)).await;
    assert_opposes(name, refused, "d'autres rôles au sens du RGPD", &reference, true);
}

// A party no account can sign for (no user holds its signing role at its organisation: a
// collectivité new to the platform) is said at submission, at each signature and on every read,
// with what to do; once someone holds the role, nothing is said.
backend_test!(a_convention_awaiting_a_party_nobody_can_sign_for_says_so_from_its_submission);
async fn a_convention_awaiting_a_party_nobody_can_sign_for_says_so_from_its_submission(db: crate::common::TestDb) {
    let c = setup(db).await;
    let name = c.db.name;
    sqlx::query("DELETE FROM role_bindings WHERE role = 'collectivite'").execute(c.db.store.pool()).await.unwrap();
    let conv = c.create(tripartite("2026-09-01")).await;
    let id = conv["id"].as_str().unwrap().to_string();
    assert!(warnings(&conv).is_empty(), "{name}: a draft asks nobody yet: {conv}");
    let said =
        "Personne ne peut signer pour la Commune de Fresnes : aucun compte n'y détient le rôle « collectivite ». \
                Créez le compte de son signataire (Utilisateurs et rôles) et attribuez-lui ce rôle à la Commune de \
                Fresnes ; il pourra alors signer en ligne ou déposer l'exemplaire signé sur papier.";
    let submitted = c.step_ok(&c.dan, &id, "submit", json!({})).await;
    assert_eq!(warnings(&submitted), [said], "{name}: submitted");
    let signed = c.step_ok(&c.directeur, &id, "sign", json!({})).await;
    assert_eq!(warnings(&signed), [said], "{name}: at a signature");
    assert_eq!(warnings(&call(c.dan.get(c.url(&format!("/{id}")))).await.1), [said], "{name}: read");
    user(&c, "elu@fresnes.fr", Role::Collectivite, Some("commune:94034")).await;
    let read = call(c.dan.get(c.url(&format!("/{id}")))).await.1;
    assert!(warnings(&read).is_empty(), "{name}: someone may sign now: {read}");
}
