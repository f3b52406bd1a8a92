//! Hostile input and safe outputs (issue 12), on SQLite and PostgreSQL: contact data
//! validated wherever it comes in, control characters refused, and who may
//! redirect an organisation's notices.

use crate::common;

use common::logs::Captured;
use common::{client_with, entctl, t0, token_for, TestApp};
use entcp::clock::FixedClock;
use entcp::kernel::roles::{OrgKind, Role};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

const SCHOOL: &str = "0940176F";
const COMMUNE: &str = "commune:94034";

struct Api {
    app: TestApp,
}

impl Api {
    async fn start(db: &common::TestDb) -> Api {
        common::import_sample(&db.store).await;
        Api { app: TestApp::over(&db.store).build().await }
    }

    /// [`Api::start`], and the token of an administrator.
    async fn start_as_admin(db: &common::TestDb) -> (Api, String) {
        let api = Api::start(db).await;
        (api, token_for(&db.store, "admin@ent.fr", Role::Admin, None).await)
    }

    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = self.app.client(token);
        let mut req = client.request(method.clone(), format!("/api/v1{path}"));
        if method == Method::PATCH {
            let current = client.get(format!("/api/v1{path}")).send().await;
            if let Some(tag) = current.header("etag") {
                req = req.header("if-match", tag);
            }
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await;
        (resp.status, serde_json::from_str(&resp.text).unwrap_or(Value::String(resp.text)))
    }

    async fn patch(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(token, Method::PATCH, path, Some(body)).await
    }
}

// `If-Match` sent twice is one list (RFC 9110); a tag is the ETag as written, not a number.
backend_test!(if_match_sent_twice_is_one_list_and_a_tag_matches_only_as_written);
async fn if_match_sent_twice_is_one_list_and_a_tag_matches_only_as_written(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    let client = api.app.client(&admin);
    let path = format!("/api/v1/orgs/{SCHOOL}");
    let current = client.get(&path).send().await.header("etag").unwrap().to_string();
    let version = current.trim_matches('"');
    let patch = |tags: &[String]| {
        let mut req = client.request(Method::PATCH, &path).json(&json!({ "email": "direction@ecole.fr" }));
        for tag in tags {
            req = req.header("if-match", tag);
        }
        req.send()
    };
    for padded in [format!("\"0{version}\""), format!("\"+{version}\"")] {
        assert_eq!(patch(std::slice::from_ref(&padded)).await.status, 400, "{}: {padded}", db.name);
    }
    let answered = patch(&["\"99\"".to_string(), current.clone()]).await;
    assert_eq!(answered.status, 200, "{}: the second header's tag matches: {}", db.name, answered.text);
}

backend_test!(contact_addresses_are_mailboxes_without_line_breaks);
async fn contact_addresses_are_mailboxes_without_line_breaks(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    for bad in ["ce.0940176f@ac-creteil.fr\r\nBcc: pirate@exemple.fr", "a@", "deux@@arobases.fr", "Nom <a@b.fr>"] {
        let (status, body) = api.patch(&admin, &format!("/orgs/{SCHOOL}"), json!({ "email": bad })).await;
        assert_eq!(status, 422, "{}: {bad:?} {body}", db.name);
        assert_eq!(body["errors"][0]["field"], "email", "{body}");
    }
    let (status, body) = api.patch(&admin, &format!("/orgs/{SCHOOL}"), json!({ "email": "direction@ecole.fr" })).await;
    assert_eq!((status, body["email"].as_str()), (200, Some("direction@ecole.fr")), "{}: {body}", db.name);

    let new = json!({ "kind": "epci", "siren": "200054781", "name": "EPCI", "email": "a@b.fr\nX: y" });
    let (status, body) = api.call(&admin, Method::POST, "/orgs", Some(new)).await;
    assert_eq!(status, 422, "{}: {body}", db.name);
    let user = json!({ "email": "nouveau@ac-creteil.fr\r\n", "display_name": "Nouveau" });
    let (status, body) = api.call(&admin, Method::POST, "/users", Some(user)).await;
    assert_eq!(status, 422, "{}: {body}", db.name);
}

backend_test!(one_line_fields_refuse_control_characters_and_bodies_refuse_other_controls);
async fn one_line_fields_refuse_control_characters_and_bodies_refuse_other_controls(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    let user = json!({ "email": "nouveau@ac-creteil.fr", "display_name": "Nouveau\n## Section" });
    let (status, body) = api.call(&admin, Method::POST, "/users", Some(user)).await;
    assert_eq!(status, 422, "{}: {body}", db.name);
    assert_eq!(body["errors"][0]["field"], "display_name", "{body}");
    let user = json!({ "email": "nouveau@ac-creteil.fr", "display_name": "Nou\u{1b}[2Jveau" });
    let (status, body) = api.call(&admin, Method::POST, "/users", Some(user)).await;
    assert_eq!(status, 422, "{}: {body}", db.name);
    assert_eq!(body["errors"][0]["field"], "corps/display_name", "{body}");
    let user = json!({ "email": "nouveau@ac-creteil.fr", "display_name": "Nouveau" });
    let (status, body) = api.call(&admin, Method::POST, "/users", Some(user)).await;
    assert_eq!(status, 201, "{}: {body}", db.name);

    fresnes_tenant(&db.store).await;
    let ticket = fresnes_ticket("ENT\nBcc: x", "Ligne 1\nLigne 2");
    let (status, body) = api.call(&admin, Method::POST, "/support/tickets", Some(ticket)).await;
    assert_eq!((status, &body["errors"][0]["field"]), (422, &json!("subject")), "{}: {body}", db.name);
    // A bidirectional override in multi-line text reorders what the queue shows: refused too.
    let ticket = fresnes_ticket("Connexion impossible", "Voir la pièce jointe facture\u{202e}fdp.exe");
    let (status, body) = api.call(&admin, Method::POST, "/support/tickets", Some(ticket)).await;
    assert_eq!((status, &body["errors"][0]["field"]), (422, &json!("corps/description")), "{}: {body}", db.name);
    let breach = json!({ "title": "Fuite\r\n## Autre", "facts": "Liste envoyée\nà un tiers", "aware_at": "2026-08-31T08:00:00Z",
        "data_categories": ["identité"], "people_approx": 25, "records_approx": 25, "consequences": "faibles",
        "measures": "demande de suppression" });
    let (status, body) = api.call(&admin, Method::POST, "/rgpd/breaches/academie:24", Some(breach)).await;
    assert_eq!((status, &body["errors"][0]["field"]), (422, &json!("title")), "{}: {body}", db.name);
}

backend_test!(an_address_with_a_control_character_or_bad_encoding_is_a_400_in_french);
/// A NUL, a line break or a byte that is not UTF-8 in a path or a query string never reaches
/// the database (PostgreSQL refuses a NUL: it was a 500 there), and a bad number is told in French.
async fn an_address_with_a_control_character_or_bad_encoding_is_a_400_in_french(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    for path in [
        "/support/tickets?cursor=%00",
        "/tenants?cursor=%00",
        "/support/tickets/%00",
        "/orgs/%0A0940176F",
        "/orgs/%E2%80%AE0940176F",
        "/support/tickets/%FF",
    ] {
        let (status, body) = api.call(&admin, Method::GET, path, None).await;
        assert_eq!(status, 400, "{} {path}: {body}", db.name);
        assert!(body["detail"].as_str().unwrap_or_default().starts_with("adresse invalide"), "{path}: {body}");
    }
    let (status, body) = api.call(&admin, Method::GET, "/orgs?limit=-1", None).await;
    assert_eq!(status, 400, "{}: {body}", db.name);
    assert_eq!(body["detail"], "paramètres de requête invalides : limit: nombre invalide", "{body}");
    // A search pasted with a tab, an accent or a slash is the search's own business.
    let (status, body) = api.call(&admin, Method::GET, "/orgs?q=Cr%C3%A9teil%09%2F", None).await;
    assert_eq!(status, 200, "{}: {body}", db.name);
}

backend_test!(only_the_school_its_dan_or_an_admin_may_change_its_contact_address);
async fn only_the_school_its_dan_or_an_admin_may_change_its_contact_address(db: crate::common::TestDb) {
    let api = Api::start(&db).await;
    let commune = token_for(&db.store, "maire@fresnes.fr", Role::Collectivite, Some(COMMUNE)).await;
    let chef = token_for(&db.store, "direction@ecole.fr", Role::ChefEtablissement, Some(SCHOOL)).await;
    let dan = token_for(&db.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let path = format!("/orgs/{SCHOOL}");

    let (status, body) = api.patch(&commune, &path, json!({ "email": "support@mairie-fresnes.fr" })).await;
    assert_eq!(status, 403, "{}: {body}", db.name);
    let (status, body) = api.patch(&chef, &path, json!({ "email": "ce.0940176f@ac-creteil.fr" })).await;
    assert_eq!(status, 200, "{}: {body}", db.name);
    let (status, body) = api.patch(&dan, &path, json!({ "email": "ecole.doisneau@ac-creteil.fr" })).await;
    assert_eq!(status, 200, "{}: {body}", db.name);
    // The commune still manages its own address.
    let (status, body) = api.patch(&commune, &format!("/orgs/{COMMUNE}"), json!({ "email": "ent@fresnes.fr" })).await;
    assert_eq!(status, 200, "{}: {body}", db.name);
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
backend_test!(the_database_mail_and_manifests_are_readable_by_the_service_only);
async fn the_database_mail_and_manifests_are_readable_by_the_service_only(db: crate::common::TestDb) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let url = format!("sqlite://{}?mode=rwc", data.join("entcp.db").display());
    let store = entcp::store::Store::connect(&url, None).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!((mode(&data), mode(&data.join("entcp.db"))), (0o700, 0o600));
    assert_eq!(mode(&data.join("entcp.db-wal")), 0o600, "the WAL inherits the database's mode");
    assert_eq!(mode(&data.join("entcp.db.migrate-lock")), 0o600, "the migration lock too");

    let data = root.path().join(format!("data-{}", db.name));
    let config = common::smtp::file_config(&data);
    let id = common::queue_test_mail(&db.store, "dpo@exemple.fr", t0()).await;
    entcp::notify::send_due(&db.store, &config, "sender", &entcp::clock::FixedClock::new(t0())).await.unwrap();
    let mail = data.join("mail");
    assert_eq!((mode(&data), mode(&mail)), (0o700, 0o700), "{}", db.name);
    assert_eq!(mode(&mail.join(format!("{id}.eml"))), 0o600, "{}", db.name);

    let manifests = data.join("manifests");
    let object = entcp::provisioning::render::RenderedObject {
        kind: "Secret".into(),
        name: "ent-db".into(),
        manifest: json!({ "apiVersion": "v1", "kind": "Secret", "stringData": { "password": "secret" } }),
    };
    entcp::provisioning::manifests::ManifestsBackend::new(&manifests).apply("ecole", &[object], "inputs").unwrap();
    assert_eq!((mode(&manifests), mode(&manifests.join("ecole"))), (0o700, 0o700));
    // The Secret is left out of the folder, listed in a note (no `sealed` certificate configured).
    assert_eq!(mode(&manifests.join("ecole").join(entcp::provisioning::sealed::NOTE_FILE)), 0o600);
    assert_eq!(mode(&manifests.join("ecole").join(entcp::provisioning::manifests::HASH_FILE)), 0o600);
}

async fn count(store: &entcp::store::Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) AS n FROM {table}")).fetch_one(store.pool()).await.unwrap()
}

backend_test!(reading_a_register_writes_nothing_and_an_identical_snapshot_is_stored_once);
async fn reading_a_register_writes_nothing_and_an_identical_snapshot_is_stored_once(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    let (snapshots, audit) = (count(&db.store, "rgpd_snapshots").await, count(&db.store, "audit_log").await);
    for format in ["json", "csv", "html", "json"] {
        let (status, _) =
            api.call(&admin, Method::GET, &format!("/rgpd/registers/academie:24?format={format}"), None).await;
        assert_eq!(status, 200, "{}", db.name);
    }
    assert_eq!(count(&db.store, "rgpd_snapshots").await, snapshots, "{}: a read records no snapshot", db.name);
    assert_eq!(count(&db.store, "audit_log").await, audit, "{}: a read is not audited as a change", db.name);

    let path = "/rgpd/registers/academie:24/snapshots";
    let (status, first) = api.call(&admin, Method::POST, path, None).await;
    assert_eq!(status, 201, "{}: {first}", db.name);
    let (status, again) = api.call(&admin, Method::POST, path, None).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "{}: {again}", db.name);
    assert_eq!(count(&db.store, "rgpd_snapshots").await, snapshots + 1, "{}", db.name);
}

async fn fresnes_tenant(store: &entcp::store::Store) {
    let state = crate::common::app::app_state(store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let doc: entcp::tenants::EntTenant =
        entcp::yaml::from_str(include_str!("../../../../tenants/examples/fresnes.yaml")).unwrap();
    entcp::tenants::apply(&state.tenants(), &common::admin(), &doc, None).await.unwrap();
}

/// A new high-priority access ticket on the Fresnes tenant.
fn fresnes_ticket(subject: &str, description: &str) -> Value {
    json!({ "tenant": "fresnes", "subject": subject, "description": description,
        "category": "acces", "impact": "haute", "urgency": "haute" })
}

/// The recipients of the `support` mails of `event`, in the order they were queued.
async fn support_notices(store: &entcp::store::Store, event: &str) -> Vec<String> {
    let mails = common::queued_mails(store, "support").await.into_iter();
    mails.filter(|m| m.context["event"] == event).map(|m| m.recipients).collect()
}

// A ticket nobody supports is kept, and said so: the requester reads it in the answer and the
// history, and the ENT's governors (its collectivité's users, the académie's DAN) get a mail
// asking them to designate an N1; with none of them either, the requester is told to say so.
backend_test!(a_ticket_on_a_commune_without_n1_reaches_the_next_level_or_says_nobody_was_told);
async fn a_ticket_on_a_commune_without_n1_reaches_the_next_level_or_says_nobody_was_told(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    fresnes_tenant(&db.store).await;
    // Running: the only warning is the missing support's.
    sqlx::query("UPDATE tenants SET status = 'active' WHERE slug = 'fresnes'").execute(db.store.pool()).await.unwrap();
    // Its éditeur has a support: the N3 hears of a ticket by escalation only, not at creation.
    let vendor = common::fixtures::new_org(&db.store, OrgKind::Editeur, "Éditeur", "900000019", None).await;
    sqlx::query("UPDATE tenants SET vendor_org_id = $1").bind(&vendor.id).execute(db.store.pool()).await.unwrap();
    token_for(&db.store, "n3@editeur.fr", Role::SupportN3, Some(&vendor.id)).await;
    let new = fresnes_ticket("Compte de Léa Martin", "Page blanche.");

    let (status, ticket) = api.call(&admin, Method::POST, "/support/tickets", Some(new.clone())).await;
    assert_eq!(status, 201, "{}: {ticket}", db.name);
    let told: Vec<_> = common::queued_mails(&db.store, "support")
        .await
        .into_iter()
        .filter(|m| m.context["event"] != "received")
        .collect();
    assert!(told.is_empty(), "{}: nobody to tell but the requester's acknowledgement", db.name);
    let warning = ticket["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("personne n'en a été averti : signalez-le"), "{}: {ticket}", db.name);
    let id = ticket["id"].as_str().unwrap();
    let (_, history) = api.call(&admin, Method::GET, &format!("/support/tickets/{id}/history"), None).await;
    assert!(history.to_string().contains("aucun destinataire"), "{}: {history}", db.name);
    let public = history.as_array().unwrap().iter().find(|e| e["kind"] == "warning" && e["visibility"] == "public");
    let public = public.unwrap_or_else(|| panic!("{}: {history}", db.name));
    assert_eq!((public["title"].as_str(), public["body"].as_str()), (Some("Avertissement"), Some(warning)));

    token_for(&db.store, "ent@fresnes.fr", Role::Collectivite, Some(COMMUNE)).await;
    token_for(&db.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let (captured, guard) = Captured::info_logs();
    let (status, ticket) = api.call(&admin, Method::POST, "/support/tickets", Some(new.clone())).await;
    drop(guard);
    assert_eq!(status, 201, "{}: {ticket}", db.name);
    let warning = ticket["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("les responsables de l'ENT en sont avertis"), "{}: {ticket}", db.name);
    // SRE 42: the governors' addresses were logged at WARN; the log says the ticket and a count.
    let log = captured.text();
    let reference = ticket["reference"].as_str().unwrap();
    assert!(log.contains("no recipient for the creation notice") && log.contains(reference), "{}: {log}", db.name);
    assert!(log.contains("told=2"), "{}: {log}", db.name);
    assert!(!log.contains("dan@ac-creteil.fr") && !log.contains("ent@fresnes.fr"), "{}: {log}", db.name);
    let told = support_notices(&db.store, "unstaffed").await;
    assert_eq!(told, [r#"["dan@ac-creteil.fr"]"#, r#"["ent@fresnes.fr"]"#], "{}: one mail each", db.name);
    let mail = common::queued_mails(&db.store, "support").await.into_iter().find(|m| m.context["event"] == "unstaffed");
    let mail = entcp::notify::mailer::render("support", &mail.unwrap().context).unwrap();
    assert!(mail.subject.starts_with("Ticket sans support désigné"), "{}: {}", db.name, mail.subject);
    assert!(mail.text.contains("Désignez un support de niveau 1"), "{}: {}", db.name, mail.text);
    // Their roles do not read tickets: the mail keeps the requester's words (a pupil's name) out.
    for said in [&mail.subject, &mail.text, &mail.html] {
        assert!(!said.contains("Léa"), "{}: {said}", db.name);
    }
    assert!(mail.text.contains("/organisations/"), "{}: {}", db.name, mail.text);
    assert!(support_notices(&db.store, "created").await.is_empty(), "{}", db.name);

    token_for(&db.store, "dane@ac-creteil.fr", Role::SupportN2, Some("academie:24")).await;
    let (status, ticket) = api.call(&admin, Method::POST, "/support/tickets", Some(new)).await;
    assert_eq!(status, 201, "{}: {ticket}", db.name);
    assert!(ticket.get("warning").is_none(), "{}: {ticket}", db.name);
    assert_eq!(support_notices(&db.store, "created").await, [r#"["dane@ac-creteil.fr"]"#], "{}", db.name);
    assert_eq!(support_notices(&db.store, "unstaffed").await.len(), 2, "{}: told once", db.name);
}

/// `email` switched its « Tickets de support » mails off, as « Mon compte » does.
async fn tickets_switched_off(store: &entcp::store::Store, email: &str) {
    let id: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(store.pool()).await.unwrap();
    let off = [(entcp::notify::preferences::Category::Tickets, false)];
    entcp::notify::preferences::set(store, &common::admin(), &id, &off, t0()).await.unwrap();
}

// The `unstaffed` mail is an operational alert asking the ENT's governors to designate an N1,
// and the requester reads that they were told: it goes whatever their « Tickets de support »
// preference, which still drops the support's notices of a ticket.
backend_test!(the_unstaffed_alert_reaches_a_governor_who_switched_ticket_mails_off);
async fn the_unstaffed_alert_reaches_a_governor_who_switched_ticket_mails_off(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    fresnes_tenant(&db.store).await;
    sqlx::query("UPDATE tenants SET status = 'active' WHERE slug = 'fresnes'").execute(db.store.pool()).await.unwrap();
    token_for(&db.store, "ent@fresnes.fr", Role::Collectivite, Some(COMMUNE)).await;
    tickets_switched_off(&db.store, "ent@fresnes.fr").await;
    let new = fresnes_ticket("ENT inaccessible", "Page blanche.");
    let (status, ticket) = api.call(&admin, Method::POST, "/support/tickets", Some(new.clone())).await;
    assert_eq!(status, 201, "{}: {ticket}", db.name);
    let warning = ticket["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("les responsables de l'ENT en sont avertis"), "{}: {ticket}", db.name);
    assert_eq!(support_notices(&db.store, "unstaffed").await, [r#"["ent@fresnes.fr"]"#], "{}", db.name);

    token_for(&db.store, "dane@ac-creteil.fr", Role::SupportN2, Some("academie:24")).await;
    tickets_switched_off(&db.store, "dane@ac-creteil.fr").await;
    let (status, ticket) = api.call(&admin, Method::POST, "/support/tickets", Some(new)).await;
    assert_eq!(status, 201, "{}: {ticket}", db.name);
    assert!(ticket.get("warning").is_none(), "{}: the N2 is the queue: {ticket}", db.name);
    assert!(support_notices(&db.store, "created").await.is_empty(), "{}: the N2 switched them off", db.name);
}

async fn patch_with_if_match(api: &Api, token: &str, if_match: &str) -> (u16, Value) {
    let resp = api
        .app
        .client(token)
        .patch(format!("/api/v1/orgs/{SCHOOL}"))
        .header("if-match", if_match)
        .json(&json!({ "email": format!("v{}@ecole.fr", if_match.len()) }))
        .send()
        .await;
    (resp.status, resp.body)
}

backend_test!(if_match_star_matches_any_version_and_weak_or_unquoted_tags_are_refused);
async fn if_match_star_matches_any_version_and_weak_or_unquoted_tags_are_refused(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    let (status, body) = patch_with_if_match(&api, &admin, "*").await;
    assert_eq!(status, 200, "{}: {body}", db.name);
    let version = body["version"].as_i64().unwrap();
    let (status, body) = patch_with_if_match(&api, &admin, &format!("W/\"{version}\"")).await;
    assert_eq!(status, 412, "{}: a weak tag never matches: {body}", db.name);
    let (status, body) = patch_with_if_match(&api, &admin, &version.to_string()).await;
    assert_eq!(status, 400, "{}: an unquoted tag is malformed: {body}", db.name);
    let (status, body) = patch_with_if_match(&api, &admin, &format!("\"1\", \"{version}\"")).await;
    assert_eq!(status, 200, "{}: one of the listed tags is current: {body}", db.name);
}

#[tokio::test]
async fn two_authorization_headers_are_not_authenticated() {
    let db = common::sqlite().await;
    let (api, admin) = Api::start_as_admin(&db).await;
    let resp = api
        .app
        .get("/api/v1/me")
        .header("authorization", format!("Bearer {admin}"))
        .header("authorization", "Bearer entcp_00000000_autre")
        .send()
        .await;
    assert_eq!(resp.status, 401);
}

#[tokio::test]
async fn request_logs_name_the_path_never_the_query_string() {
    let db = common::sqlite().await;
    let (api, admin) = Api::start_as_admin(&db).await;
    let (captured, _guard) = Captured::info_logs();
    let resp = api.app.client(&admin).get("/api/v1/orgs?q=fresnes&access_token=entcp_deadbeef_secret").send().await;
    assert_eq!(resp.status, 200);
    let log = captured.text();
    assert!(log.contains("/api/v1/orgs"), "{log}");
    assert!(!log.contains("entcp_deadbeef_secret") && !log.contains("q=fresnes"), "{log}");
}

backend_test!(a_user_holds_a_bounded_number_of_live_tokens);
async fn a_user_holds_a_bounded_number_of_live_tokens(db: crate::common::TestDb) {
    let api = Api::start(&db).await;
    let token = token_for(&db.store, "prof@ac-creteil.fr", Role::Usager, Some(SCHOOL)).await;
    let user = entcp::identity::get_user(&db.store, "prof@ac-creteil.fr").await.unwrap().unwrap();
    for i in 1..entcp::identity::MAX_LIVE_TOKENS {
        entcp::identity::create_token(&db.store, &common::admin(), &user.id, &format!("t{i}"), None, t0())
            .await
            .unwrap();
    }
    let (status, body) = api.call(&token, Method::POST, "/tokens", Some(json!({ "name": "un de trop" }))).await;
    assert_eq!(status, 409, "{}: {body}", db.name);
    assert!(body["detail"].as_str().unwrap().contains("révoquez"), "{body}");
}

#[tokio::test]
async fn document_responses_are_uncached_unsniffed_sandboxed_attachments() {
    let db = common::sqlite().await;
    let (api, admin) = Api::start_as_admin(&db).await;
    for path in [
        "/rgpd/registers/academie:24?format=html",
        "/rgpd/breaches/academie:24?format=csv",
        "/support/report?format=csv",
    ] {
        let resp = api.app.client(&admin).get(format!("/api/v1{path}")).send().await;
        assert_eq!(resp.status, 200, "{path}");
        let h = &resp.headers;
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\""), "{path}");
        if h["content-type"].to_str().unwrap().starts_with("text/html") {
            assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"), "{path}");
        }
    }
}

backend_test!(an_imported_address_that_does_not_parse_is_dropped_with_a_warning);
async fn an_imported_address_that_does_not_parse_is_dropped_with_a_warning(db: crate::common::TestDb) {
    let csv = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie;Mail\n\
               0940176F;Ecole A;Ecole;94034;24;\"ce.0940176f@ac-creteil.fr\r\nBcc: pirate@exemple.fr\"\n\
               0940198E;Ecole B;Ecole;94081;24;ce.0940198e@ac-creteil.fr\n";
    let options = entcp::registry::import::ImportOptions::default();
    let report =
        entcp::registry::import::import_annuaire(&db.store, &common::admin(), std::io::Cursor::new(csv), options, t0())
            .await
            .unwrap();
    assert_eq!(report.etablissements.created, 2, "{}: {report:?}", db.name);
    assert!(report.warnings.iter().any(|w| w.reason.contains("adresse ignorée")), "{}: {report:?}", db.name);
    let school = entcp::registry::resolve_org(&db.store, "0940176F").await.unwrap();
    assert_eq!(school.email, None, "{}", db.name);
    let other = entcp::registry::resolve_org(&db.store, "0940198E").await.unwrap();
    assert_eq!(other.email.as_deref(), Some("ce.0940198e@ac-creteil.fr"), "{}", db.name);
}

backend_test!(if_match_star_updates_a_ticket_named_by_its_reference);
async fn if_match_star_updates_a_ticket_named_by_its_reference(db: crate::common::TestDb) {
    let (api, admin) = Api::start_as_admin(&db).await;
    fresnes_tenant(&db.store).await;
    // Its éditeur has a support: the N3 hears of a ticket by escalation only, not at creation.
    let vendor = common::fixtures::new_org(&db.store, OrgKind::Editeur, "Éditeur", "900000019", None).await;
    sqlx::query("UPDATE tenants SET vendor_org_id = $1").bind(&vendor.id).execute(db.store.pool()).await.unwrap();
    token_for(&db.store, "n3@editeur.fr", Role::SupportN3, Some(&vendor.id)).await;
    let new = fresnes_ticket("Compte de Léa Martin", "Page blanche.");
    let (_, ticket) = api.call(&admin, Method::POST, "/support/tickets", Some(new)).await;
    let reference = ticket["reference"].as_str().unwrap();
    let resp = api
        .app
        .client(&admin)
        .patch(format!("/api/v1/support/tickets/{reference}"))
        .header("if-match", "*")
        .json(&json!({ "assigned_team": "Équipe ENT" }))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}: {}", db.name, resp.text);
}

/// A server counting at most `max_failures` failed authentications per minute;
/// `trust_forwarded_for` as given. Returns its base URL and its clock.
async fn throttled_api(db: &common::TestDb, max_failures: u32, trust_forwarded_for: bool) -> (String, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_with(db.store.clone(), clock.clone(), |config| {
        config.server.auth_throttle =
            entcp::throttle::ThrottleConfig { max_failures, window_seconds: 60, ..Default::default() };
        config.server.trust_forwarded_for = trust_forwarded_for;
    })
    .await;
    (base, clock)
}

/// `GET /api/v1/catalog/services` with `authorization` (if any) from the loopback
/// address `from`, with `X-Forwarded-For: forwarded` (if any).
async fn get_from(base: &str, from: &str, authorization: Option<&str>, forwarded: Option<&str>) -> reqwest::Response {
    get_path_from(&format!("{base}/api/v1/catalog/services"), from, authorization, forwarded).await
}

async fn get_path_from(
    url: &str,
    from: &str,
    authorization: Option<&str>,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let client = reqwest::Client::builder().local_address(from.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let mut req = client.get(url);
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    if let Some(value) = forwarded {
        req = req.header("x-forwarded-for", value);
    }
    req.send().await.unwrap()
}

/// A bad token without a token id (so that only the address counts).
const BAD: &str = "Bearer jeton-inconnu";

backend_test!(repeated_failed_authentications_block_the_address_even_for_a_valid_token_until_the_window_slides);
async fn repeated_failed_authentications_block_the_address_even_for_a_valid_token_until_the_window_slides(
    db: crate::common::TestDb,
) {
    let (base, clock) = throttled_api(&db, 3, false).await;
    let valid = format!("Bearer {}", token_for(&db.store, "admin@ent.fr", Role::Admin, None).await);
    for _ in 0..3 {
        assert_eq!(get_from(&base, "127.0.0.1", Some(BAD), None).await.status(), 401, "{}", db.name);
    }
    let resp = get_from(&base, "127.0.0.1", Some(&valid), None).await;
    assert_eq!(resp.status(), 429, "{}", db.name);
    assert_eq!(resp.headers()["retry-after"], "60", "{}", db.name);
    assert_eq!(resp.headers()["content-type"], "application/problem+json", "{}", db.name);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["title"], "Trop de tentatives", "{body}");
    assert_eq!(body["type"], "urn:entcp:problem:too-many-requests", "{body}");
    // Another address is unaffected, for valid and invalid tokens alike.
    assert_eq!(get_from(&base, "127.0.0.2", Some(&valid), None).await.status(), 200, "{}", db.name);
    assert_eq!(get_from(&base, "127.0.0.2", Some(BAD), None).await.status(), 401, "{}", db.name);
    clock.set(t0() + chrono::Duration::seconds(59));
    let resp = get_from(&base, "127.0.0.1", Some(&valid), None).await;
    assert_eq!((resp.status().as_u16(), &resp.headers()["retry-after"]), (429, &"1".parse().unwrap()), "{}", db.name);
    clock.set(t0() + chrono::Duration::seconds(60));
    assert_eq!(get_from(&base, "127.0.0.1", Some(&valid), None).await.status(), 200, "{}", db.name);
}

backend_test!(successful_requests_and_requests_without_credentials_count_no_failure);
async fn successful_requests_and_requests_without_credentials_count_no_failure(db: crate::common::TestDb) {
    let (base, _clock) = throttled_api(&db, 2, false).await;
    let valid = format!("Bearer {}", token_for(&db.store, "admin@ent.fr", Role::Admin, None).await);
    for _ in 0..5 {
        assert_eq!(get_from(&base, "127.0.0.1", Some(&valid), None).await.status(), 200, "{}", db.name);
        assert_eq!(get_from(&base, "127.0.0.1", None, None).await.status(), 401, "{}", db.name);
    }
    assert_eq!(get_from(&base, "127.0.0.1", Some(&valid), None).await.status(), 200, "{}", db.name);
}

backend_test!(x_forwarded_for_names_the_client_only_when_the_configuration_trusts_it);
async fn x_forwarded_for_names_the_client_only_when_the_configuration_trusts_it(db: crate::common::TestDb) {
    let valid = format!("Bearer {}", token_for(&db.store, "admin@ent.fr", Role::Admin, None).await);
    // Untrusted: a new forwarded address on each try does not escape the socket's count.
    let (base, _) = throttled_api(&db, 2, false).await;
    for (i, forwarded) in ["203.0.113.1", "203.0.113.2"].iter().enumerate() {
        assert_eq!(get_from(&base, "127.0.0.1", Some(BAD), Some(forwarded)).await.status(), 401, "{} {i}", db.name);
    }
    let resp = get_from(&base, "127.0.0.1", Some(&valid), Some("203.0.113.3")).await;
    assert_eq!(resp.status(), 429, "{}", db.name);
    // Trusted: the proxy's last entry is the client; other clients behind it are unaffected.
    let (base, _) = throttled_api(&db, 2, true).await;
    for _ in 0..2 {
        let resp = get_from(&base, "127.0.0.1", Some(BAD), Some("198.51.100.9, 203.0.113.5")).await;
        assert_eq!(resp.status(), 401, "{}", db.name);
    }
    assert_eq!(get_from(&base, "127.0.0.1", Some(&valid), Some("203.0.113.5")).await.status(), 429, "{}", db.name);
    assert_eq!(get_from(&base, "127.0.0.1", Some(&valid), Some("203.0.113.6")).await.status(), 200, "{}", db.name);
}

backend_test!(guesses_at_one_token_id_are_throttled_across_addresses_but_its_holder_is_not_locked_out);
async fn guesses_at_one_token_id_are_throttled_across_addresses_but_its_holder_is_not_locked_out(
    db: crate::common::TestDb,
) {
    let (base, _) = throttled_api(&db, 2, true).await;
    let valid = token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    let (id, _) = valid.rsplit_once('_').unwrap();
    let guess = format!("Bearer {id}_{}", "0".repeat(64));
    for from in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(get_from(&base, "127.0.0.1", Some(&guess), Some(from)).await.status(), 401, "{}", db.name);
    }
    let resp = get_from(&base, "127.0.0.1", Some(&guess), Some("203.0.113.3")).await;
    assert_eq!(resp.status(), 429, "{}", db.name);
    assert!(resp.headers().contains_key("retry-after"), "{}", db.name);
    let holder = format!("Bearer {valid}");
    assert_eq!(get_from(&base, "127.0.0.1", Some(&holder), Some("203.0.113.4")).await.status(), 200, "{}", db.name);
}

backend_test!(failed_authentications_are_audited_with_their_reason_and_never_the_secret);
async fn failed_authentications_are_audited_with_their_reason_and_never_the_secret(db: crate::common::TestDb) {
    let (base, clock) = throttled_api(&db, 20, false).await;
    let admin = token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    let user = entcp::identity::get_user(&db.store, "admin@ent.fr").await.unwrap().unwrap();
    let actor = common::admin();
    let expiring = entcp::identity::create_token(
        &db.store,
        &actor,
        &user.id,
        "court",
        Some(t0() + chrono::Duration::seconds(10)),
        t0(),
    )
    .await
    .unwrap();
    let revoked = entcp::identity::create_token(&db.store, &actor, &user.id, "révoqué", None, t0()).await.unwrap();
    entcp::identity::revoke_token(&db.store, &actor, &revoked.info.id, t0()).await.unwrap();
    clock.set(t0() + chrono::Duration::seconds(11));
    let secret = "f".repeat(64);
    let tries = [
        format!("Bearer entcp_0badc0de_{secret}"),
        "Bearer mot-de-passe-en-clair".to_string(),
        format!("Bearer {}", expiring.token),
        format!("Bearer {}", revoked.token),
        format!("Basic {secret}"),
    ];
    for authorization in &tries {
        assert_eq!(get_from(&base, "127.0.0.1", Some(authorization), None).await.status(), 401, "{}", db.name);
    }
    assert_eq!(get_from(&base, "127.0.0.1", None, None).await.status(), 401, "{}", db.name);
    let resp = client_with(&admin).get(format!("{base}/api/v1/audit?target_kind=token&limit=50")).send().await.unwrap();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let failed: Vec<(String, String, String)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "auth.failed")
        .map(|r| {
            let actor = r["actor"].as_str().unwrap().to_string();
            (actor, r["target_id"].as_str().unwrap().to_string(), r["summary"]["reason"].as_str().unwrap().to_string())
        })
        .collect();
    let labels: Vec<&str> = failed.iter().map(|(_, label, _)| label.as_str()).collect();
    let reasons: Vec<&str> = failed.iter().map(|(_, _, reason)| reason.as_str()).collect();
    assert_eq!(reasons, ["malformed_header", "revoked_token", "expired_token", "unknown_token", "unknown_token"]);
    assert!(failed.iter().all(|(actor, _, _)| actor == "client:127.0.0.1"), "{failed:?}");
    assert_eq!(labels[0], "-");
    assert_eq!(labels[1], revoked.info.prefix);
    assert_eq!(labels[2], expiring.info.prefix);
    assert!(labels[3].starts_with("sha256:") && labels[3].len() == 15, "{labels:?}");
    assert_eq!(labels[4], "entcp_0badc0de");
    for secret_part in [secret.as_str(), "mot-de-passe", expiring.token.rsplit('_').next().unwrap()] {
        assert!(!text.contains(secret_part), "{}: the audit shows {secret_part}", db.name);
    }
}

backend_test!(the_failure_that_blocks_an_address_is_audited_once_as_throttled);
async fn the_failure_that_blocks_an_address_is_audited_once_as_throttled(db: crate::common::TestDb) {
    let (base, _) = throttled_api(&db, 2, false).await;
    let admin = token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    for _ in 0..5 {
        get_from(&base, "127.0.0.1", Some(BAD), None).await;
    }
    let admin = format!("Bearer {admin}");
    let url = format!("{base}/api/v1/audit?target_kind=token");
    let resp = get_path_from(&url, "127.0.0.2", Some(&admin), None).await;
    let body: Value = resp.json().await.unwrap();
    let items = body["items"].as_array().unwrap().iter();
    let actions: Vec<&str> = items.filter_map(|r| r["action"].as_str()).filter(|a| a.starts_with("auth.")).collect();
    // Two failures, the block recorded once; the three 429s that follow write nothing.
    assert_eq!(actions, ["auth.throttled", "auth.failed", "auth.failed"], "{}", db.name);
}

backend_test!(yaml_files_and_text_arguments_of_the_cli_refuse_control_characters_as_the_api_does);
async fn yaml_files_and_text_arguments_of_the_cli_refuse_control_characters_as_the_api_does(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    fresnes_tenant(&db.store).await;
    token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    let dir = tempfile::tempdir().unwrap();
    let ticket = |description: &str| {
        let file = dir.path().join(format!("ticket-{}.yaml", description.len()));
        std::fs::write(
            &file,
            format!(
                "tenant: fresnes\nsubject: ENT inaccessible\ndescription: \"{description}\"\n\
                 category: acces\nimpact: haute\nurgency: haute\n"
            ),
        )
        .unwrap();
        file.display().to_string()
    };
    let bad = ticket("Page\\x1b[2Jblanche");
    let (ok, out) = entctl(&db.url, &["support", "create", &bad, "--as", "admin@ent.fr"]);
    assert!(!ok && out.contains("caractère de contrôle interdit") && out.contains("/description"), "{out}");
    let tickets = common::count(&db.store, "SELECT COUNT(*) FROM support_tickets", &[]).await;
    assert_eq!(tickets, 0, "{}", db.name);
    let good = ticket("Page blanche.\\nDepuis ce matin.");
    let (ok, out) = entctl(&db.url, &["support", "create", &good, "--as", "admin@ent.fr"]);
    assert!(ok, "{}: {out}", db.name);
    let reference = out.split_whitespace().next().expect("the ticket's reference").to_string();
    let (ok, out) = entctl(&db.url, &["support", "comment", &reference, "--body", "vu\u{7}", "--as", "admin@ent.fr"]);
    assert!(!ok && out.contains("--body"), "{}: {out}", db.name);
}

backend_test!(failed_authentications_on_two_replicas_add_up_and_a_restarted_one_still_blocks);
async fn failed_authentications_on_two_replicas_add_up_and_a_restarted_one_still_blocks(db: crate::common::TestDb) {
    let (first, _) = throttled_api(&db, 3, false).await;
    let (second, _) = throttled_api(&db, 3, false).await;
    let valid = format!("Bearer {}", token_for(&db.store, "admin@ent.fr", Role::Admin, None).await);
    for base in [&first, &second, &first] {
        assert_eq!(get_from(base, "127.0.0.1", Some(BAD), None).await.status(), 401, "{}", db.name);
    }
    let (restarted, _) = throttled_api(&db, 3, false).await;
    for base in [&first, &second, &restarted] {
        let resp = get_from(base, "127.0.0.1", Some(&valid), None).await;
        assert_eq!(resp.status(), 429, "{}", db.name);
        assert_eq!(resp.headers()["retry-after"], "60", "{}", db.name);
    }
    assert_eq!(get_from(&restarted, "127.0.0.2", Some(&valid), None).await.status(), 200, "{}", db.name);
}
