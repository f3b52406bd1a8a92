//! Scope holes found by the security review (issue 12): relationship writes
//! that reach a second organisation, imports that move organisations between
//! académies, lists scoped after paging, existence oracles.

use crate::common;

use axum::http::StatusCode;
use common::app::{Client, Req};
use common::fixtures::uai;
use common::TestApp;
use common::{admin, t0, token_for};
use entcp::clock::FixedClock;
use entcp::kernel::roles::OrgKind;
use entcp::kernel::roles::Role;
use entcp::registry::queries;
use entcp::registry::Org;
use entcp::store::Store;
use serde_json::{json, Value};
use std::sync::Arc;

/// Two académies: the Val-de-Marne sample (Créteil, 24) and three écoles of
/// Boulogne-Billancourt (Versailles, 25), with an EPCI of the Val-de-Marne.
struct World {
    db: common::TestDb,
    app: TestApp,
    epci: Org,
}

const HEADER: &str =
    "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_departement;Code_academie\n";

fn versailles_csv() -> String {
    let mut csv = HEADER.to_string();
    for i in 1..=3 {
        csv.push_str(&format!("{};Ecole de Boulogne {i};Ecole;92012;092;25\n", uai(&format!("092990{i}"))));
    }
    csv
}

async fn world(db: common::TestDb) -> World {
    common::import_sample(&db.store).await;
    common::fixtures::annuaire(&db.store, &versailles_csv()).await;
    let epci =
        common::fixtures::new_org(&db.store, OrgKind::Epci, "Grand-Orly Seine Bièvre", "200054781", Some("94")).await;
    let app = TestApp::over(&db.store).build().await;
    World { db, app, epci }
}

impl World {
    async fn client(&self, email: &str, role: Role, org: Option<&str>) -> Client {
        self.app.client(&token_for(&self.db.store, email, role, org).await)
    }

    /// The EPCI's coordinator.
    async fn coordinator(&self) -> Client {
        self.client("coord@epci.fr", Role::Coordinateur, Some(&self.epci.id)).await
    }

    /// The mayor of Fresnes (commune 94034).
    async fn fresnes_mayor(&self) -> Client {
        self.client("maire@fresnes.fr", Role::Collectivite, Some("commune:94034")).await
    }

    fn url(&self, path: &str) -> String {
        format!("/api/v1{path}")
    }

    /// `client` invites into the EPCI the commune `body` names: the status and the invitation.
    async fn invite(&self, client: &Client, body: Value) -> (StatusCode, Value) {
        send(client.post(self.url(&format!("/orgs/{}/invitations", self.epci.id))).json(&body)).await
    }

    /// `client` answers the invitation `id` (`accept` or `decline`): the status and the body.
    async fn answer(&self, client: &Client, id: &str, answer: &str) -> (StatusCode, Value) {
        send(client.post(self.url(&format!("/membership-invitations/{id}/{answer}")))).await
    }

    async fn members(&self) -> Vec<String> {
        queries::members_of_group(&self.db.store, &self.epci.id)
            .await
            .unwrap()
            .into_iter()
            .map(|(c, _)| c.code)
            .collect()
    }
}

async fn send(req: Req<'_>) -> (StatusCode, Value) {
    let resp = req.send().await;
    (StatusCode::from_u16(resp.status).unwrap(), resp.body)
}

backend_test!(epci_roles_cannot_add_a_commune_without_its_consent);
async fn epci_roles_cannot_add_a_commune_without_its_consent(db: crate::common::TestDb) {
    let w = world(db).await;
    let epci = w.epci.id.clone();
    for (email, role) in [("coord@epci.fr", Role::Coordinateur), ("elu@epci.fr", Role::Collectivite)] {
        let client = w.client(email, role, Some(&epci)).await;
        for commune in ["94034", "92012"] {
            let put = client.put(w.url(&format!("/orgs/{epci}/members/{commune}"))).json(&json!({}));
            let (status, body) = send(put).await;
            // The commune is not readable by the EPCI's roles: not revealed either.
            assert_eq!(status, StatusCode::NOT_FOUND, "{} {role:?} {commune}: {body}", w.db.name);
        }
    }
    assert!(w.members().await.is_empty(), "{}", w.db.name);
}

backend_test!(a_dan_adds_directly_only_the_communes_of_its_academie);
async fn a_dan_adds_directly_only_the_communes_of_its_academie(db: crate::common::TestDb) {
    let w = world(db).await;
    let dan = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let epci = w.epci.id.clone();
    let (status, body) = send(dan.put(w.url(&format!("/orgs/{epci}/members/92012"))).json(&json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}: {body}", w.db.name);
    let (status, body) = send(dan.put(w.url(&format!("/orgs/{epci}/members/94034"))).json(&json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", w.db.name);
    assert_eq!(w.members().await, vec!["94034".to_string()]);
    // The DAN of the other académie may not take the commune out either.
    let versailles = w.client("dan@ac-versailles.fr", Role::Dan, Some("academie:25")).await;
    let (status, _) = send(versailles.delete(w.url(&format!("/orgs/{epci}/members/94034")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", w.db.name);
    assert_eq!(w.members().await, vec!["94034".to_string()]);
}

// An académie's coordinateur reaches every commune of the académie, but its scope is not the
// commune's consent: it may neither add a commune directly nor accept an invitation for it.
// The DAN of the commune's académie still accepts for it.
backend_test!(an_academie_coordinateur_neither_adds_a_commune_nor_accepts_for_it);
async fn an_academie_coordinateur_neither_adds_a_commune_nor_accepts_for_it(db: crate::common::TestDb) {
    let w = world(db).await;
    let epci = w.epci.id.clone();
    let academie = w.client("coord@ac-creteil.fr", Role::Coordinateur, Some("academie:24")).await;
    let (status, body) = send(academie.put(w.url(&format!("/orgs/{epci}/members/94034"))).json(&json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", w.db.name);
    assert!(body["detail"].as_str().unwrap_or_default().contains("avec son accord"), "{body}");
    assert!(w.members().await.is_empty(), "{}: added without the commune's consent", w.db.name);

    let coord = w.coordinator().await;
    let (status, inv) = w.invite(&coord, json!({ "commune": "94034" })).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {inv}", w.db.name);
    let id = inv["id"].as_str().unwrap().to_string();
    let (status, body) = w.answer(&academie, &id, "accept").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", w.db.name);
    assert!(w.members().await.is_empty(), "{}: accepted for the commune", w.db.name);
    let (_, listed) = send(w.fresnes_mayor().await.get(w.url("/orgs/commune:94034/invitations"))).await;
    assert_eq!(listed[0]["status"], "pending", "{}: {listed}", w.db.name);

    let dan = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let (status, accepted) = w.answer(&dan, &id, "accept").await;
    assert_eq!(status, StatusCode::OK, "{}: {accepted}", w.db.name);
    assert_eq!(w.members().await, vec!["94034".to_string()]);
}

backend_test!(a_commune_joins_an_epci_by_accepting_its_invitation);
async fn a_commune_joins_an_epci_by_accepting_its_invitation(db: crate::common::TestDb) {
    let w = world(db).await;
    let coord = w.coordinator().await;
    let fresnes = w.fresnes_mayor().await;
    let other = w.client("maire@creteil.fr", Role::Collectivite, Some("commune:94028")).await;

    let (status, inv) = w.invite(&coord, json!({ "commune": "94034", "ent_delegated": true })).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {inv}", w.db.name);
    assert_eq!(inv["status"], "pending");
    let id = inv["id"].as_str().unwrap().to_string();
    assert!(w.members().await.is_empty(), "an invitation alone adds nobody");

    // The commune sees it; another commune does not even learn it exists.
    let (status, listed) = send(fresnes.get(w.url("/orgs/commune:94034/invitations"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["id"], id.as_str());
    let (status, _) = w.answer(&other, &id, "accept").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", w.db.name);
    let (status, missing) = send(other.post(w.url("/membership-invitations/nope/accept"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["type"], "urn:entcp:problem:not-found");
    // The inviting side cannot accept for the commune.
    let (status, body) = w.answer(&coord, &id, "accept").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", w.db.name);

    let (status, accepted) = w.answer(&fresnes, &id, "accept").await;
    assert_eq!(status, StatusCode::OK, "{}: {accepted}", w.db.name);
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(w.members().await, vec!["94034".to_string()]);
    let (status, _) = w.answer(&fresnes, &id, "accept").await;
    assert_eq!(status, StatusCode::CONFLICT);

    let filter = entcp::audit::AuditFilter { target_id: Some(id.clone()), ..Default::default() };
    let audit = entcp::audit::list(&w.db.store, &filter, None).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|r| r.action.as_str()).collect();
    assert!(actions.contains(&"orgs.invitations.create") && actions.contains(&"orgs.invitations.accepted"));
}

backend_test!(an_accept_racing_a_decline_leaves_no_membership_behind);
/// An accept that read the invitation before a decline landed must not leave the
/// commune a member of a group whose invitation says « declined ».
async fn an_accept_racing_a_decline_leaves_no_membership_behind(db: crate::common::TestDb) {
    use entcp::registry::invitations;
    let w = world(db).await;
    let coord = w.coordinator().await;
    let (status, inv) = w.invite(&coord, json!({ "commune": "94034", "ent_delegated": false })).await;
    assert_eq!(status, StatusCode::CREATED, "{}: {inv}", w.db.name);
    let store = &w.db.store;
    // Both answers read the invitation while it was pending.
    let read = invitations::get(store, inv["id"].as_str().unwrap()).await.unwrap().unwrap();
    invitations::decline(store, &common::admin(), &read, common::t0()).await.unwrap();
    let late = invitations::accept(store, &common::admin(), &read, common::t0()).await;
    assert_eq!(late.unwrap_err().kind.status(), StatusCode::CONFLICT, "{}", w.db.name);
    assert!(w.members().await.is_empty(), "{}: a declined invitation made a member", w.db.name);
}

backend_test!(a_commune_declines_an_invitation_and_stays_out);
async fn a_commune_declines_an_invitation_and_stays_out(db: crate::common::TestDb) {
    let w = world(db).await;
    let coord = w.coordinator().await;
    let fresnes = w.fresnes_mayor().await;
    let (_, inv) = w.invite(&coord, json!({ "commune": "94034" })).await;
    let id = inv["id"].as_str().unwrap().to_string();
    let (status, declined) = w.answer(&fresnes, &id, "decline").await;
    assert_eq!(status, StatusCode::OK, "{}: {declined}", w.db.name);
    assert_eq!(declined["status"], "declined");
    let (status, _) = w.answer(&fresnes, &id, "accept").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(w.members().await.is_empty());
}

backend_test!(an_invitation_tells_nothing_of_an_organisation_out_of_scope);
/// Any commune may be invited (a public entry), but a key naming another kind of organisation
/// the inviter may not read answers as a key that names nothing: neither its name nor its kind.
async fn an_invitation_tells_nothing_of_an_organisation_out_of_scope(db: crate::common::TestDb) {
    let w = world(db).await;
    let coord = w.coordinator().await;
    let unknown = w.invite(&coord, json!({ "commune": uai("0929999") })).await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND, "{}: {}", w.db.name, unknown.1);
    let boulogne = org(&w.db.store, &uai("0929901")).await;
    for key in [boulogne.id.clone(), format!("etablissement:{}", boulogne.code), boulogne.code.clone()] {
        let (status, body) = w.invite(&coord, json!({ "commune": key })).await;
        assert_eq!((status, shape(&body)), (unknown.0, shape(&unknown.1)), "{} {key}: {body}", w.db.name);
        assert!(!body.to_string().contains("Boulogne"), "{body}");
    }
    // What the inviter reads is still told by its kind.
    let (status, body) = w.invite(&coord, json!({ "commune": w.epci.id })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {body}", w.db.name);
    assert!(body.to_string().contains("Grand-Orly"), "{body}");
    assert!(invitations(&w).await.is_empty(), "{}", w.db.name);
}

backend_test!(a_commune_of_another_academie_is_invited_by_an_administrator_only);
/// A group's officers and the DAN invite the communes of the group's académie; a registered commune
/// of another académie answers them as an INSEE code that names nothing, in the same words, and
/// receives nothing. An administrator completes a group that spans two académies.
async fn a_commune_of_another_academie_is_invited_by_an_administrator_only(db: crate::common::TestDb) {
    let w = world(db).await;
    let name = w.db.name;
    let dan = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let officer = w.client("elu@epci.fr", Role::Collectivite, Some(&w.epci.id)).await;
    // The answer, without the key sent (which each names).
    let answer = |(status, body): (StatusCode, Value), key: &str| (status, body.to_string().replace(key, "KEY"));
    let coordinator = w.coordinator().await;
    for client in [&coordinator, &officer, &dan] {
        for (out, missing) in [("92012", "92999"), ("commune:92012", "commune:92999")] {
            let refused = answer(w.invite(client, json!({ "commune": out })).await, out);
            let unknown = answer(w.invite(client, json!({ "commune": missing })).await, missing);
            assert_eq!(refused.0, StatusCode::NOT_FOUND, "{name} {out}: {}", refused.1);
            assert_eq!(refused, unknown, "{name} {out}");
            assert!(!refused.1.contains("Boulogne"), "{name}: {}", refused.1);
        }
    }
    assert!(invitations(&w).await.is_empty(), "{name}: an out-of-scope commune was invited");
    // A commune of the group's académie is still invited by its officers.
    let (status, body) = w.invite(&coordinator, json!({ "commune": "94034" })).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    let admin = w.client("admin@test.fr", Role::Admin, None).await;
    let (status, body) = w.invite(&admin, json!({ "commune": "92012" })).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    assert_eq!(body["commune"]["code"], "92012", "{name}: {body}");
    assert_eq!(invitations(&w).await.len(), 2, "{name}");
}

/// The invitations the EPCI sent.
async fn invitations(w: &World) -> Vec<entcp::registry::invitations::Invitation> {
    entcp::registry::invitations::list_for(&w.db.store, &w.epci).await.unwrap()
}

/// Every page of `path` (with `limit=1`) walked by `client`: the items' and the cursors' values.
async fn walk(client: &Client, url: &str, key: &str) -> (Vec<String>, Vec<String>) {
    let pages = common::pages(&format!("{url}?limit=1"), |page| client.get(page)).await;
    let items = common::items_of(&pages).iter().map(|item| item[key].as_str().unwrap().to_string()).collect();
    let cursors = pages.iter().filter_map(|page| page["next_cursor"].as_str().map(str::to_string)).collect();
    (items, cursors)
}

backend_test!(users_pages_and_cursors_hold_only_users_in_scope);
async fn users_pages_and_cursors_hold_only_users_in_scope(db: crate::common::TestDb) {
    let w = world(db).await;
    // Users of the school in scope and of three other schools, interleaved by e-mail.
    for (i, uai) in ["0940176F", "0940204L", "0940238Y", "0940176F"].iter().enumerate() {
        let org = queries::resolve_org(&w.db.store, uai).await.unwrap();
        let new = entcp::identity::NewUser {
            email: format!("agent{i}@test.fr"),
            display_name: format!("Agent {i}"),
            org: Some(org.id.clone()),
        };
        entcp::identity::create_user(&w.db.store, &admin(), new, t0()).await.unwrap();
    }
    let auditeur = w.client("b-auditeur@test.fr", Role::Auditeur, Some("0940176F")).await;
    let (emails, cursors) = walk(&auditeur, &w.url("/users"), "email").await;
    assert_eq!(emails, vec!["agent0@test.fr", "agent3@test.fr", "b-auditeur@test.fr"], "{}", w.db.name);
    for cursor in &cursors {
        assert!(emails.contains(cursor), "{}: the cursor {cursor} names a user out of scope", w.db.name);
    }
}

backend_test!(outbox_and_job_runs_are_for_administrators_only);
async fn outbox_and_job_runs_are_for_administrators_only(db: crate::common::TestDb) {
    let w = world(db).await;
    common::queue_test_mail(&w.db.store, "dpo@ac-versailles.fr", t0()).await;
    let auditeur = w.client("auditeur@test.fr", Role::Auditeur, Some("0940176F")).await;
    for path in ["/outbox", "/jobs"] {
        let (status, body) = send(auditeur.get(w.url(path))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{} {path}: {body}", w.db.name);
        assert!(!body.to_string().contains("ac-versailles"));
    }
    let admin = w.client("admin@test.fr", Role::Admin, None).await;
    let (status, body) = send(admin.get(w.url("/outbox"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.to_string().contains("dpo@ac-versailles.fr"));
}

async fn upload(client: &Client, url: &str, csv: String) -> (StatusCode, Value) {
    send(client.post(url).header("content-type", "text/csv").body(csv)).await
}

async fn org(store: &Store, key: &str) -> Org {
    queries::resolve_org(store, key).await.unwrap()
}

backend_test!(an_import_never_moves_a_school_or_commune_out_of_another_academie);
async fn an_import_never_moves_a_school_or_commune_out_of_another_academie(db: crate::common::TestDb) {
    let w = world(db).await;
    let versailles = w.client("dan@ac-versailles.fr", Role::Dan, Some("academie:25")).await;
    let mut csv = HEADER.to_string();
    // A school of Créteil rewritten as Versailles', a new school in a commune of Créteil, the
    // school moved to a commune of Versailles, one of its own.
    csv.push_str("0940176F;Ecole détournée;Ecole;94034;094;25\n");
    csv.push_str(&format!("{};Ecole intruse;Ecole;94034;094;25\n", uai("0949901")));
    csv.push_str("0940176F;Ecole déplacée;Ecole;92012;092;25\n");
    csv.push_str(&format!("{};Ecole de Boulogne 9;Ecole;92012;092;25\n", uai("0929909")));
    let (status, report) = upload(&versailles, &w.url("/imports/annuaire"), csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let lines: Vec<_> = report["rejections"].as_array().unwrap().iter().map(|r| r["line"].clone()).collect();
    assert_eq!(lines, [json!(2), json!(3), json!(4)], "{}: {report}", w.db.name);
    assert_eq!(report["etablissements"]["created"], 1, "{}: {report}", w.db.name);
    assert_eq!(report["etablissements"]["updated"], 0, "{}: {report}", w.db.name);
    let school = org(&w.db.store, "0940176F").await;
    assert_eq!(school.academie_code.as_deref(), Some("24"));
    assert_eq!(school.name, "Ecole élémentaire Robert Doisneau");
    for key in ["commune:94034", "departement:94", "dsden:94"] {
        assert_eq!(org(&w.db.store, key).await.academie_code.as_deref(), Some("24"), "{}: {key}", w.db.name);
    }
    let creteil = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let (status, _) = send(creteil.get(w.url("/orgs/0940176F"))).await;
    assert_eq!(status, StatusCode::OK);
}

backend_test!(a_row_whose_commune_departement_academie_or_uai_disagree_is_refused_by_its_line);
async fn a_row_whose_commune_departement_academie_or_uai_disagree_is_refused_by_its_line(db: crate::common::TestDb) {
    let w = world(db).await;
    let creteil = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let mut csv = HEADER.to_string();
    // Lyon's école placed in Créteil, a commune of the Hauts-de-Seine in the Val-de-Marne, a
    // UAI of the Hauts-de-Seine in Fresnes, then a school of Créteil's own.
    csv.push_str(&format!("{};Ecole de Lyon;Ecole;69123;069;24\n", uai("0690001")));
    csv.push_str(&format!("{};Ecole mal placée;Ecole;92012;094;24\n", uai("0949902")));
    csv.push_str(&format!("{};Ecole mal numérotée;Ecole;94034;094;24\n", uai("0929902")));
    csv.push_str(&format!("{};Ecole de Fresnes 9;Ecole;94034;094;24\n", uai("0949903")));
    let (status, report) = upload(&creteil, &w.url("/imports/annuaire"), csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let rejections = report["rejections"].as_array().unwrap();
    let lines: Vec<_> = rejections.iter().map(|r| r["line"].clone()).collect();
    assert_eq!(lines, [json!(2), json!(3), json!(4)], "{}: {report}", w.db.name);
    let reasons = rejections.iter().map(|r| r["reason"].as_str().unwrap_or_default()).collect::<Vec<_>>().join("|");
    for part in ["relève de l'académie « 10 »", "n'est pas du département « 94 »", "n'est pas numéroté"] {
        assert!(reasons.contains(part), "{}: {part} in {reasons}", w.db.name);
    }
    assert_eq!(report["etablissements"]["created"], 1, "{}: {report}", w.db.name);
    for key in ["commune:69123", "departement:69", "dsden:69"] {
        assert!(queries::resolve_org(&w.db.store, key).await.is_err(), "{}: {key} created", w.db.name);
    }
    // The Rhône imports in its own académie.
    let admin = w.client("admin@test.fr", Role::Admin, None).await;
    let csv = format!("{HEADER}{};Ecole de Lyon;Ecole;69123;069;10\n", uai("0690001"));
    let (status, report) = upload(&admin, &w.url("/imports/annuaire"), csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rejections"], json!([]), "{}: {report}", w.db.name);
    assert_eq!(report["out_of_scope"], 0, "{}: {report}", w.db.name);
    assert_eq!(org(&w.db.store, "dsden:69").await.academie_code.as_deref(), Some("10"), "{}", w.db.name);
}

#[tokio::test]
async fn crlf_rows_are_reported_at_their_line_in_the_file() {
    let w = world(common::sqlite().await).await;
    let admin = w.client("admin@test.fr", Role::Admin, None).await;
    let mut csv = HEADER.replace('\n', "\r\n");
    for i in 2..139 {
        csv.push_str(&format!("{};Ecole {i};Ecole;94034;094;24\r\n", uai(&format!("0948{i:03}"))));
    }
    csv.push_str("1234567X;Ecole fautive;Ecole;94034;094;24\r\n");
    let (status, report) = upload(&admin, &w.url("/imports/annuaire?dry_run=true"), csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rejections"][0]["uai"], "1234567X");
    assert_eq!(report["rejections"][0]["line"], 139, "{report}");
    assert_eq!(report["etablissements"]["created"], 137, "{report}");
}

/// Serves the API with a small upload limit.
async fn serve_with_limit(store: Store, max_body_bytes: usize) -> String {
    let data_dir = tempfile::tempdir().unwrap().keep();
    let mut config = entcp::config::Config { data_dir, ..entcp::config::Config::default() };
    config.server.max_body_bytes = max_body_bytes;
    let state = crate::common::app::app_state(store, config, Arc::new(FixedClock::new(t0())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, entcp::api::app(state)).await.unwrap() });
    base
}

/// [`send`] over the socket, for the tests where the socket is the point (body limits).
async fn send_socket(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

backend_test!(an_oversized_upload_answers_413_with_nothing_imported);
async fn an_oversized_upload_answers_413_with_nothing_imported(db: crate::common::TestDb) {
    let csv = std::fs::read(common::fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let base = serve_with_limit(db.store.clone(), csv.len() / 3).await;
    let admin = common::client_with(&token_for(&db.store, "admin@test.fr", Role::Admin, None).await);
    let url = format!("{base}/api/v1/imports/annuaire");
    let sized = admin.post(&url).header("content-type", "text/csv").body(csv.clone());
    let (status, body) = send_socket(sized).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}: {body}", db.name);
    assert_eq!(body["type"], "urn:entcp:problem:payload-too-large");
    // Chunked: no length announced, the limit is found while reading.
    let token = token_for(&db.store, "admin2@test.fr", Role::Admin, None).await;
    let status_line = post_chunked(&base, "/api/v1/imports/annuaire", &token, &csv).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{}: {status_line}", db.name);
    assert_eq!(common::count_kind(&db.store, "etablissement").await, 0, "{}", db.name);
    // Under the limit, a chunked upload is imported whole.
    let small = format!("{HEADER}0940176F;Ecole élémentaire Robert Doisneau;Ecole;94034;094;24\n");
    let status_line = post_chunked(&base, "/api/v1/imports/annuaire", &token, small.as_bytes()).await;
    assert!(status_line.starts_with("HTTP/1.1 200"), "{}: {status_line}", db.name);
    assert_eq!(common::count_kind(&db.store, "etablissement").await, 1, "{}", db.name);
}

/// POSTs `body` as text/csv with chunked transfer encoding (no length announced);
/// returns the response's status line.
async fn post_chunked(base: &str, path: &str, token: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: text/csv\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(4096) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break; // the server may answer and close before the end
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_string()
}

backend_test!(a_commune_dpo_reads_but_does_not_keep_a_covered_schools_registers);
async fn a_commune_dpo_reads_but_does_not_keep_a_covered_schools_registers(db: crate::common::TestDb) {
    let w = world(db).await;
    let dpo = w.client("dpo@fresnes.fr", Role::Dpo, Some("commune:94034")).await;
    let school = org(&w.db.store, "0940176F").await.id;
    let (status, _) = send(dpo.get(w.url(&format!("/rgpd/profiles/{school}")))).await;
    assert_eq!(status, StatusCode::OK, "{}", w.db.name);
    let profile = json!({ "head_name": "Usurpé", "head_title": "", "address": "", "phone": "", "email": "",
        "dpo_name": "DPD", "dpo_email": "dpd@fresnes.fr", "dpo_phone": "", "dpo_address": "",
        "representative": "", "security_measures": "" });
    let (status, body) = send(dpo.put(w.url(&format!("/rgpd/profiles/{school}"))).json(&profile)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", w.db.name);
    let breach = json!({
        "title": "Fausse violation", "facts": "Inventée", "aware_at": "2026-08-31T08:00:00Z",
        "data_categories": ["identité"], "people_approx": 1, "records_approx": 1,
        "consequences": "aucune", "measures": "aucune"
    });
    let (status, body) = send(dpo.post(w.url(&format!("/rgpd/breaches/{school}"))).json(&breach)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", w.db.name);
    let (_, breaches) = send(dpo.get(w.url(&format!("/rgpd/breaches/{school}")))).await;
    assert!(!breaches.to_string().contains("Fausse violation"));
    // Its own organisation's registers it keeps.
    let commune = org(&w.db.store, "commune:94034").await.id;
    let (status, body) = send(dpo.put(w.url(&format!("/rgpd/profiles/{commune}"))).json(&profile)).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", w.db.name);
}

async fn actor(store: &Store, email: &str) -> entcp::identity::Actor {
    let user = entcp::identity::get_user(store, email).await.unwrap().unwrap();
    let bindings = entcp::identity::bindings_of(store, &user.id).await.unwrap();
    entcp::identity::Actor { user_id: Some(user.id), name: format!("user:{email}"), bindings }
}

backend_test!(only_the_roles_working_on_conventions_read_them_and_only_signers_see_who_signed);
async fn only_the_roles_working_on_conventions_read_them_and_only_signers_see_who_signed(db: crate::common::TestDb) {
    use entcp::conventions::workflow::{self, Ctx};
    let w = world(db).await;
    let store = &w.db.store;
    let models = entcp::conventions::model::load_models(None).unwrap();
    let new = serde_json::from_value(crate::common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": "2030-01-01",
    })))
    .unwrap();
    let admin = admin();
    let ctx = Ctx { store, models: &models, actor: &admin, now: t0() };
    let conv = workflow::create(&ctx, new).await.unwrap();
    let conv = workflow::submit(&ctx, &conv).await.unwrap();
    w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let dan = actor(store, "dan@ac-creteil.fr").await;
    workflow::sign(&Ctx { actor: &dan, ..ctx }, &conv, crate::common::fixtures::delegated_signing()).await.unwrap();
    let chef = w.client("direction@ecole.fr", Role::ChefEtablissement, Some("0940176F")).await;
    let url = w.url(&format!("/conventions/{}", conv.id));

    let (status, seen) = send(chef.get(&url)).await;
    assert_eq!(status, StatusCode::OK, "{}: {seen}", w.db.name);
    assert_eq!(seen["steps"][0]["user_email"], "dan@ac-creteil.fr");
    for role in [Role::Usager, Role::SupportN1] {
        let client = w.client(&format!("{}@ecole.fr", role.as_str()), role, Some("0940176F")).await;
        let (status, body) = send(client.get(&url)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{} {role:?}: {body}", w.db.name);
        let (status, _) = send(client.get(w.url("/convention-models"))).await;
        assert_eq!(status, StatusCode::OK);
    }
    let auditeur = w.client("auditeur@ecole.fr", Role::Auditeur, Some("0940176F")).await;
    let (status, seen) = send(auditeur.get(&url)).await;
    assert_eq!(status, StatusCode::OK, "{}: {seen}", w.db.name);
    assert!(!seen.to_string().contains("dan@ac-creteil.fr"), "{}: {seen}", w.db.name);
    let (_, listed) = send(auditeur.get(w.url("/conventions"))).await;
    assert!(!listed.to_string().contains("dan@ac-creteil.fr"));
    let document = auditeur.get(format!("{url}/document")).send().await.text;
    assert!(!document.contains("dan@ac-creteil.fr"));
}

/// The members of a problem+json body, sorted: what an oracle check compares.
fn shape(body: &Value) -> Vec<String> {
    let mut keys: Vec<String> = body.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

backend_test!(creating_a_token_for_someone_else_answers_alike_whether_they_exist_or_not);
async fn creating_a_token_for_someone_else_answers_alike_whether_they_exist_or_not(db: crate::common::TestDb) {
    let w = world(db).await;
    let other = w.client("autre@test.fr", Role::Usager, Some("0940176F")).await;
    drop(other);
    let usager = w.client("usager@test.fr", Role::Usager, Some("0940176F")).await;
    let existing = send(usager.post(w.url("/tokens")).json(&json!({ "name": "x", "user": "autre@test.fr" }))).await;
    let missing = send(usager.post(w.url("/tokens")).json(&json!({ "name": "x", "user": "personne@test.fr" }))).await;
    assert_eq!(existing.0, missing.0, "{}: {} / {}", w.db.name, existing.1, missing.1);
    assert_eq!(existing.1, missing.1, "{}", w.db.name);
    assert_eq!(existing.0, StatusCode::FORBIDDEN);
}

/// A tenant of a school, applied by the admin.
async fn tenant(store: &Store, slug: &str, school: &str) -> entcp::tenants::Tenant {
    let doc = json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
        "spec": { "organisation": school, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" }
    });
    let doc: entcp::tenants::EntTenant = serde_json::from_value(doc).unwrap();
    let state = crate::common::app::app_state(store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap().1
}

backend_test!(a_ticket_on_a_foreign_tenant_answers_like_one_on_an_unknown_tenant);
async fn a_ticket_on_a_foreign_tenant_answers_like_one_on_an_unknown_tenant(db: crate::common::TestDb) {
    let w = world(db).await;
    let boulogne = uai("0929901");
    tenant(&w.db.store, "boulogne-1", &boulogne).await;
    let usager = w.client("usager@test.fr", Role::Usager, Some("0940176F")).await;
    let ticket = |slug: &str| {
        json!({ "tenant": slug, "subject": "Panne", "description": "Rien ne marche.", "category": "autre",
                "impact": "basse", "urgency": "basse" })
    };
    let foreign = send(usager.post(w.url("/support/tickets")).json(&ticket("boulogne-1"))).await;
    let unknown = send(usager.post(w.url("/support/tickets")).json(&ticket("nulle-part"))).await;
    assert_eq!(foreign.0, unknown.0, "{}: {} / {}", w.db.name, foreign.1, unknown.1);
    assert_eq!(shape(&foreign.1), shape(&unknown.1));
    assert!(!foreign.1.to_string().contains("Boulogne"), "{}", foreign.1);
}

/// What an answer says besides the key it was asked for: its status, its type and its body
/// with `key` taken out, byte for byte.
fn said_of(resp: &common::app::Resp, key: &str) -> (u16, Option<String>, String) {
    (resp.status, resp.header("content-type").map(str::to_string), resp.text.replace(key, "…"))
}

// A tenant out of the caller's scope answers as a slug naming none, byte for byte (its body
// with the slug asked taken out), on every route that names one: it is looked up among those
// the caller reads (`tenants::find_for`), so no timing tells them apart either (the bench
// `national` prints both medians).
backend_test!(a_tenant_out_of_scope_answers_byte_for_byte_as_a_slug_naming_none);
async fn a_tenant_out_of_scope_answers_byte_for_byte_as_a_slug_naming_none(db: crate::common::TestDb) {
    let w = world(db).await;
    tenant(&w.db.store, "boulogne-1", &uai("0929901")).await;
    tenant(&w.db.store, "fresnes-1", "0940176F").await;
    let fresnes = w.fresnes_mayor().await;
    let doc = |slug: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
                "spec": { "organisation": "0940176F", "hostname": "x.ent.example.fr", "bouquet": "socle-1d" } })
    };
    for (foreign, unknown) in [("boulogne-1", "nulle-part"), ("boulogne-1", "fresnes-9")] {
        for path in ["/tenants/{}", "/tenants/{}/events"] {
            let url = |slug: &str| w.url(&path.replace("{}", slug));
            let out = fresnes.get(url(foreign)).send().await;
            let none = fresnes.get(url(unknown)).send().await;
            assert_eq!(out.status, 404, "{}: {}", w.db.name, out.text);
            assert_eq!(said_of(&out, foreign), said_of(&none, unknown), "{} {path}", w.db.name);
        }
        let put = |slug: &str| fresnes.put(w.url(&format!("/tenants/{slug}"))).if_match(1).json(&doc(slug));
        let (out, none) = (put(foreign).send().await, put(unknown).send().await);
        assert_eq!(out.status, 404, "{}: {}", w.db.name, out.text);
        assert_eq!(said_of(&out, foreign), said_of(&none, unknown), "{} PUT", w.db.name);
    }
    // Its own tenant is read.
    assert_eq!(fresnes.get(w.url("/tenants/fresnes-1")).send().await.status, 200, "{}", w.db.name);
    // A tenant's support contract (a DAN of Créteil) and a ticket opened on it (a usager of
    // Fresnes, API and console alike: `support::tickets::create`) find it the same way.
    let dan = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let usager = w.client("usager@test.fr", Role::Usager, Some("0940176F")).await;
    let (foreign, unknown) = ("boulogne-1", "nulle-part");
    let contract = |slug: &str| dan.get(w.url(&format!("/support/tenants/{slug}/contract")));
    let (out, none) = (contract(foreign).send().await, contract(unknown).send().await);
    assert_eq!(out.status, 404, "{}: {}", w.db.name, out.text);
    assert_eq!(said_of(&out, foreign), said_of(&none, unknown), "{} contract", w.db.name);
    assert_eq!(contract("fresnes-1").send().await.status, 200, "{}: its own académie's", w.db.name);
    let open = |slug: &str| usager.post(w.url("/support/tickets")).json(&new_ticket(slug));
    let (out, none) = (open(foreign).send().await, open(unknown).send().await);
    assert_eq!(out.status, 422, "{}: {}", w.db.name, out.text);
    assert_eq!(said_of(&out, foreign), said_of(&none, unknown), "{} ticket", w.db.name);

    // The same statements, one for one, whether the tenant is out of scope or missing (a store
    // of its own: no request of the app runs a statement meanwhile).
    let binding =
        entcp::identity::Binding { role: Role::Collectivite, org: Some(org(&w.db.store, "commune:94034").await) };
    let actor = entcp::identity::Actor { user_id: None, name: "user:maire@fresnes.fr".into(), bindings: vec![binding] };
    let caller = entcp::identity::Caller { actor, action: &entcp::identity::authz::TENANTS_READ };
    let store = Store::connect(&w.db.url, Some(1)).await.unwrap();
    let support =
        crate::common::app::app_state(store.clone(), Default::default(), Arc::new(FixedClock::new(t0()))).support();
    let bound = |role: Role, org: Org| entcp::identity::Actor {
        user_id: None,
        name: format!("user:{}@test.fr", role.as_str()),
        bindings: vec![entcp::identity::Binding { role, org: Some(org) }],
    };
    let reads_contracts = entcp::identity::Caller {
        actor: bound(Role::Dan, org(&w.db.store, "academie:24").await),
        action: &entcp::identity::authz::SUPPORT_CONTRACTS_READ,
    };
    let usager = bound(Role::Usager, org(&w.db.store, "0940176F").await);
    let statements = common::logs::Statements::capture();
    let (mut ran, mut contracts, mut opened) = (Vec::new(), Vec::new(), Vec::new());
    for slug in ["boulogne-1", "nulle-part"] {
        let before = statements.count();
        let missing = || entcp::error::Problem::not_found("aucun tenant");
        assert!(entcp::tenants::find_for(&store, &caller, slug, missing).await.is_err(), "{}", w.db.name);
        ran.push(statements.since(before));
        let before = statements.count();
        let read = entcp::support::tenant_contract(&support, &reads_contracts, slug, t0()).await;
        assert_eq!(read.unwrap_err().kind.status(), 404, "{}", w.db.name);
        contracts.push(statements.since(before));
        let before = statements.count();
        let new: entcp::support::tickets::NewTicket = serde_json::from_value(new_ticket(slug)).unwrap();
        let ctx = entcp::support::tickets::Ctx { state: &support, actor: &usager, now: t0() };
        let refused = entcp::support::tickets::create(&ctx, new).await.unwrap_err();
        assert_eq!(refused.errors[0].field, "tenant", "{}: {refused:?}", w.db.name);
        opened.push(statements.since(before));
    }
    for (what, ran) in [("tenant", ran), ("contract", contracts), ("ticket", opened)] {
        assert!(!ran[0].is_empty(), "{} {what}: statements are counted", w.db.name);
        assert_eq!(ran[0], ran[1], "{} {what}: out of scope and missing run the same statements", w.db.name);
    }
}

/// A ticket's body for the tenant `slug`.
fn new_ticket(slug: &str) -> Value {
    json!({ "tenant": slug, "subject": "Panne", "description": "Rien ne marche.", "category": "autre",
            "impact": "basse", "urgency": "basse" })
}

// A hostname that names a school by its UAI (`0929901x.ent.example.fr`, the name a school
// naturally gets) is that school's: a commune of Créteil cannot reserve, first come, the name of
// an école of Versailles for its own (hostnames are unique), nor an administrator give it to
// another school; the refusal reads alike for another's school and for a UAI naming none. The
// commune's ENT may be named after one of its écoles, a school's after itself.
backend_test!(a_hostname_naming_a_school_by_its_uai_is_only_for_a_tenant_serving_it);
async fn a_hostname_naming_a_school_by_its_uai_is_only_for_a_tenant_serving_it(db: crate::common::TestDb) {
    let w = world(db).await;
    let fresnes = w.fresnes_mayor().await;
    let doc = |slug: &str, org: &str, hostname: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
                "spec": { "organisation": org, "hostname": hostname, "bouquet": "socle-1d" } })
    };
    let (boulogne, unknown) = (uai("0929901"), uai("0929999"));
    let host = |code: &str| format!("{}.ent.example.fr", code.to_lowercase());
    let squat = send(fresnes.post(w.url("/tenants")).json(&doc("t-1", "0940176F", &host(&boulogne)))).await;
    let none = send(fresnes.post(w.url("/tenants")).json(&doc("t-1", "0940176F", &host(&unknown)))).await;
    assert_eq!(squat.0, StatusCode::UNPROCESSABLE_ENTITY, "{}: {}", w.db.name, squat.1);
    let said = |body: &Value, code: &str| body.to_string().replace(code, "…").replace(&code.to_lowercase(), "…");
    assert_eq!(said(&squat.1, &boulogne), said(&none.1, &unknown), "{}", w.db.name);
    let error = &squat.1["errors"][0];
    assert_eq!(error["field"], "spec.hostname", "{}: {}", w.db.name, squat.1);
    assert!(error["message"].as_str().unwrap().contains("que dessert cet ENT"), "{}: {}", w.db.name, squat.1);
    assert!(!squat.1.to_string().contains("Boulogne"), "{}: {}", w.db.name, squat.1);
    // Not a matter of scope: the administrator cannot give it to another school either.
    let doc_t2: entcp::tenants::EntTenant =
        serde_json::from_value(doc("t-2", "0940176F", &format!("ent-{}.example.fr", boulogne.to_lowercase()))).unwrap();
    let state = crate::common::app::app_state(w.db.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let refused = entcp::tenants::apply(&state.tenants(), &admin(), &doc_t2, None).await.unwrap_err();
    assert_eq!(refused.errors[0].field, "spec.hostname", "{}: {refused:?}", w.db.name);

    let own = send(fresnes.post(w.url("/tenants")).json(&doc("t-3", "0940176F", &host("0940176F")))).await;
    assert_eq!(own.0, StatusCode::CREATED, "{}: {}", w.db.name, own.1);
    let commune = doc("t-4", "commune:94034", "ecoles-0940176f.ent.fresnes.fr");
    let communes = send(fresnes.post(w.url("/tenants")).json(&commune)).await;
    assert_eq!(communes.0, StatusCode::CREATED, "{}: {}", w.db.name, communes.1);
    assert!(entcp::tenants::get_tenant(&w.db.store, "t-1").await.unwrap().is_none(), "{}", w.db.name);
}

// Corsica's schools are numbered 620… (Corse-du-Sud) and 720… (Haute-Corse): their UAIs are
// UAIs like any other (`codes::parse_uai`, the one check the hostname rule uses), so a commune
// of Créteil cannot take the name an école of Ajaccio or Bastia would get; the école itself, and
// its commune's ENT, may.
backend_test!(a_hostname_naming_a_corsican_school_by_its_uai_is_only_for_a_tenant_serving_it);
async fn a_hostname_naming_a_corsican_school_by_its_uai_is_only_for_a_tenant_serving_it(db: crate::common::TestDb) {
    let w = world(db).await;
    let (ajaccio, bastia) = (uai("6200001"), uai("7200001"));
    let csv =
        format!("{HEADER}{ajaccio};Ecole d'Ajaccio;Ecole;2A004;02A;27\n{bastia};Ecole de Bastia;Ecole;2B033;02B;27\n");
    common::fixtures::annuaire(&w.db.store, &csv).await;
    assert_eq!(org(&w.db.store, &ajaccio).await.departement_code.as_deref(), Some("2A"), "{}", w.db.name);
    let doc = |slug: &str, org: &str, hostname: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
                "spec": { "organisation": org, "hostname": hostname, "bouquet": "socle-1d" } })
    };
    let fresnes = w.fresnes_mayor().await;
    for (code, hostname) in [
        (&ajaccio, format!("{}.ent.example.fr", ajaccio.to_lowercase())),
        (&bastia, format!("ent-{}.example.fr", bastia.to_lowercase())),
    ] {
        let (status, body) = send(fresnes.post(w.url("/tenants")).json(&doc("t-1", "0940176F", &hostname))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {hostname}: {body}", w.db.name);
        assert_eq!(body["errors"][0]["field"], "spec.hostname", "{}: {body}", w.db.name);
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("porte l'UAI {code}")), "{}: {body}", w.db.name);
    }
    let state = crate::common::app::app_state(w.db.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    for (slug, organisation, hostname) in [
        ("ajaccio-1", ajaccio.clone(), format!("{}.ent.example.fr", ajaccio.to_lowercase())),
        ("ajaccio-ecoles", "commune:2A004".to_string(), format!("ecoles-{}.ent.ajaccio.fr", ajaccio.to_lowercase())),
    ] {
        let doc: entcp::tenants::EntTenant = serde_json::from_value(doc(slug, &organisation, &hostname)).unwrap();
        let applied = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await;
        assert!(applied.is_ok(), "{}: {slug}: {applied:?}", w.db.name);
    }
}

backend_test!(a_tenant_document_cannot_take_over_another_organisations_tenant);
async fn a_tenant_document_cannot_take_over_another_organisations_tenant(db: crate::common::TestDb) {
    let w = world(db).await;
    let boulogne = uai("0929901");
    tenant(&w.db.store, "boulogne-1", &boulogne).await;
    let fresnes = w.fresnes_mayor().await;
    let school = org(&w.db.store, "0940176F").await.id;
    let doc = |slug: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
                "spec": { "organisation": school, "hostname": format!("{slug}-x.ent.example.fr"), "bouquet": "socle-1d" } })
    };
    let (status, body) = send(fresnes.post(w.url("/tenants")).json(&doc("boulogne-1"))).await;
    // The tenant's organisation is out of scope: the slug is only said to be taken, not touched.
    assert_eq!(status, StatusCode::CONFLICT, "{}: {body}", w.db.name);
    assert!(body["detail"].as_str().unwrap_or_default().contains("déjà pris"), "{body}");
    assert!(!body.to_string().contains(&boulogne), "{body}");
    let kept = entcp::tenants::get_tenant(&w.db.store, "boulogne-1").await.unwrap().unwrap();
    assert_eq!(kept.organisation.code, boulogne);
}

backend_test!(a_support_contract_names_only_organisations_in_scope);
async fn a_support_contract_names_only_organisations_in_scope(db: crate::common::TestDb) {
    let w = world(db).await;
    let dan = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let boulogne = uai("0929901");
    let url = w.url("/support/contracts/academie:24");
    let (foreign, body) = send(dan.put(&url).json(&json!({ "n1": boulogne }))).await;
    let (unknown, missing) = send(dan.put(&url).json(&json!({ "n1": uai("0929999") }))).await;
    assert_eq!(foreign, StatusCode::UNPROCESSABLE_ENTITY, "{}: {body}", w.db.name);
    assert_eq!((foreign, shape(&body)), (unknown, shape(&missing)));
    let (status, body) = send(dan.put(&url).json(&json!({ "n1": "0940176F" }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{}: {body}", w.db.name);
}

backend_test!(a_tenant_for_a_school_out_of_scope_is_refused_like_one_for_an_unknown_school);
async fn a_tenant_for_a_school_out_of_scope_is_refused_like_one_for_an_unknown_school(db: crate::common::TestDb) {
    let w = world(db).await;
    let fresnes = w.fresnes_mayor().await;
    let doc = |slug: &str, school: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
                "spec": { "organisation": school, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" } })
    };
    let foreign = send(fresnes.post(w.url("/tenants")).json(&doc("t-1", &uai("0929901")))).await;
    let unknown = send(fresnes.post(w.url("/tenants")).json(&doc("t-2", &uai("0929999")))).await;
    assert_eq!(foreign.0, StatusCode::UNPROCESSABLE_ENTITY, "{}: {}", w.db.name, foreign.1);
    assert_eq!((foreign.0, shape(&foreign.1)), (unknown.0, shape(&unknown.1)), "{}", w.db.name);
    assert!(entcp::tenants::get_tenant(&w.db.store, "t-1").await.unwrap().is_none());
}

/// `HEADER` with the labels and the région (and an SIRET).
const LABELLED_HEADER: &str = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;\
Nom_commune;Code_departement;Code_academie;Code_region;Libelle_departement;Libelle_academie;Libelle_region;SIREN_SIRET\n";

backend_test!(a_dan_import_with_empty_labels_keeps_the_names_and_says_nothing_of_rows_out_of_scope);
async fn a_dan_import_with_empty_labels_keeps_the_names_and_says_nothing_of_rows_out_of_scope(
    db: crate::common::TestDb,
) {
    let w = world(db).await;
    // Boulogne's écoles came without labels: the administrator's labelled export names the places.
    let admin = w.client("admin@test.fr", Role::Admin, None).await;
    let csv = format!(
        "{LABELLED_HEADER}{};Ecole de Boulogne 1;Ecole;92012;Boulogne-Billancourt;092;25;11;Hauts-de-Seine;Versailles;Île-de-France;\n",
        uai("0929901")
    );
    let (status, report) = upload(&admin, &w.url("/imports/annuaire"), csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["related"]["communes"]["updated"], 1, "{}: the placeholder is replaced: {report}", w.db.name);
    let named = [
        ("commune:92012", "Boulogne-Billancourt"),
        ("academie:25", "Académie de Versailles"),
        ("departement:92", "Hauts-de-Seine"),
        ("dsden:92", "DSDEN – Hauts-de-Seine"),
        ("region:11", "Île-de-France"),
    ];
    for (key, name) in named {
        assert_eq!(org(&w.db.store, key).await.name, name, "{}: {key}", w.db.name);
    }
    // Versailles' DAN imports a new école with its labels empty, and a school of Créteil that
    // names the région otherwise, with an invalid SIRET.
    let versailles = w.client("dan@ac-versailles.fr", Role::Dan, Some("academie:25")).await;
    let csv = format!(
        "{LABELLED_HEADER}{};Ecole de Boulogne 8;Ecole;92012;;092;25;11;;;;\n\
         {};Ecole de Fresnes 8;Ecole;94034;Fresnes;094;24;11;Val-de-Marne;Créteil;Région fantaisiste;123\n",
        uai("0929908"),
        uai("0949908")
    );
    let (status, report) = upload(&versailles, &w.url("/imports/annuaire"), csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["etablissements"]["created"], 1, "{}: {report}", w.db.name);
    assert_eq!(report["out_of_scope"], 1, "{}: {report}", w.db.name);
    assert_eq!(report["warnings"], json!([]), "{}: nothing of the row out of scope: {report}", w.db.name);
    for (kind, counts) in report["related"].as_object().unwrap() {
        assert_eq!((&counts["created"], &counts["updated"]), (&json!(0), &json!(0)), "{}: {kind}: {report}", w.db.name);
    }
    for (key, name) in named {
        assert_eq!(org(&w.db.store, key).await.name, name, "{}: {key}", w.db.name);
    }
}

/// Versailles' DAN imports a file whose first row is a Boulogne école the registry places in
/// Créteil (out of its scope however the row places it), giving every place a label of its
/// own; the rows after it, in scope, name the same places, the commune's label given by the
/// last only. The row out of scope lends nothing: the commune takes the in-scope label, the
/// département and académie, named by no in-scope label, keep their names, and no remark
/// recalls the row out of scope.
fn lending_csv() -> String {
    format!(
        "{LABELLED_HEADER}{};Ecole de Boulogne 2;Ecole;92012;Boulogne-Emprunté;092;25;11;Seine-Empruntée;Empruntée;;\n\
         {};Ecole de Boulogne 8;Ecole;92012;;092;25;11;;;;\n\
         {};Ecole de Boulogne 9;Ecole;92012;Boulogne-Billancourt;092;25;11;;;;\n",
        uai("0929902"),
        uai("0929908"),
        uai("0929909"),
    )
}

/// The world with Boulogne's second école registered in Créteil: out of Versailles' scope.
async fn school_registered_elsewhere(db: crate::common::TestDb) -> World {
    let w = world(db).await;
    sqlx::query(
        "UPDATE orgs SET academie_code = '24', departement_code = '94' WHERE kind = 'etablissement' AND code = $1",
    )
    .bind(uai("0929902"))
    .execute(w.db.store.pool())
    .await
    .unwrap();
    w
}

async fn place_names(store: &Store) -> Vec<String> {
    let mut names = Vec::new();
    for key in ["commune:92012", "departement:92", "dsden:92", "academie:25"] {
        names.push(org(store, key).await.name);
    }
    names
}

/// What the file leaves behind, however its lines were batched.
fn assert_nothing_lent(before: &[String], after: &[String], report: &Value, db: &str) {
    assert_eq!(report["out_of_scope"], 1, "{db}: {report}");
    assert_eq!(report["etablissements"]["created"], 2, "{db}: {report}");
    assert_eq!(report["warnings"], json!([]), "{db}: nothing recalls the row out of scope: {report}");
    assert!(!report.to_string().contains("Emprunt"), "{db}: {report}");
    assert_eq!(after[0], "Boulogne-Billancourt", "{db}: the in-scope label names the commune");
    assert_eq!(after[1..], before[1..], "{db}: no in-scope row labels the département nor the académie");
}

backend_test!(a_row_out_of_the_registrys_scope_lends_no_label_to_the_places_rows_in_scope_name);
async fn a_row_out_of_the_registrys_scope_lends_no_label_to_the_places_rows_in_scope_name(db: crate::common::TestDb) {
    let w = school_registered_elsewhere(db).await;
    let before = place_names(&w.db.store).await;
    let versailles = w.client("dan@ac-versailles.fr", Role::Dan, Some("academie:25")).await;
    let (status, report) = upload(&versailles, &w.url("/imports/annuaire"), lending_csv()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_nothing_lent(&before, &place_names(&w.db.store).await, &report, w.db.name);
}

backend_test!(a_row_out_of_the_registrys_scope_lends_no_label_to_a_later_batch);
async fn a_row_out_of_the_registrys_scope_lends_no_label_to_a_later_batch(db: crate::common::TestDb) {
    use entcp::registry::import::{import_annuaire, ImportOptions, ImportScope};
    let w = school_registered_elsewhere(db).await;
    let before = place_names(&w.db.store).await;
    let _ = w.client("dan@ac-versailles.fr", Role::Dan, Some("academie:25")).await;
    let dan = actor(&w.db.store, "dan@ac-versailles.fr").await;
    let scope = ImportScope { academies: ["25".to_string()].into(), ..ImportScope::default() };
    let options = ImportOptions { dry_run: false, batch_size: 1, scope: Some(scope), ..ImportOptions::default() };
    let input = std::io::Cursor::new(lending_csv().into_bytes());
    let report = import_annuaire(&w.db.store, &dan, input, options, t0()).await.expect("import runs");
    let report = serde_json::to_value(&report).unwrap();
    assert_nothing_lent(&before, &place_names(&w.db.store).await, &report, w.db.name);
}

/// How many établissements, communes, départements and DSDEN hold a code of `departements`:
/// their UAI numbered there, their INSEE code or their own code.
async fn coded_in(store: &Store, departements: &[&str]) -> i64 {
    let mut n = 0;
    for d in departements {
        let sql = "SELECT COUNT(*) FROM orgs WHERE (kind = 'etablissement' AND code LIKE $1) \
                   OR (kind = 'commune' AND code LIKE $2) OR (kind IN ('departement', 'dsden') AND code = $3)";
        n += common::count(store, sql, &[&format!("0{d}%"), &format!("{d}%"), d]).await;
    }
    n
}

// A scoped import pre-reads only what a row in its scope may name: for Créteil (77, 93, 94) it
// reads the Val-de-Marne's rows, not those of the Hauts-de-Seine (Versailles) nor of the
// Bouches-du-Rhône (Aix-Marseille); and it still finds out of scope, before the file, a school of
// the Val-de-Marne the registry places in Versailles, as well as the other académies' rows.
backend_test!(a_scoped_pre_read_reads_only_the_departements_its_scope_reaches_and_refuses_as_before);
async fn a_scoped_pre_read_reads_only_the_departements_its_scope_reaches_and_refuses_as_before(
    db: crate::common::TestDb,
) {
    use entcp::registry::import::{import_annuaire, read_places_elsewhere, ImportOptions, ImportScope, PreRead};
    let w = world(db).await;
    let db = w.db.name;
    let marseille: String = (1..=2)
        .map(|i| format!("{};Ecole de Marseille {i};Ecole;13055;013;02\n", uai(&format!("013990{i}"))))
        .collect();
    common::fixtures::annuaire(&w.db.store, &format!("{HEADER}{marseille}")).await;
    sqlx::query(
        "UPDATE orgs SET academie_code = '25', departement_code = '92' WHERE kind = 'etablissement' AND code = $1",
    )
    .bind("0940176F")
    .execute(w.db.store.pool())
    .await
    .unwrap();
    let _ = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let dan = actor(&w.db.store, "dan@ac-creteil.fr").await;
    let scope = ImportScope { academies: ["24".to_string()].into(), ..ImportScope::default() };

    let (in_reach, unrelated) = (coded_in(&w.db.store, &["94"]).await, coded_in(&w.db.store, &["92", "13"]).await);
    let sql = "SELECT COUNT(*) FROM orgs WHERE kind IN ('etablissement', 'commune', 'departement', 'dsden')";
    assert_eq!(common::count(&w.db.store, sql, &[]).await, in_reach + unrelated, "{db}: three départements");
    assert!(unrelated >= 10, "{db}: Versailles' and Marseille's rows, {unrelated}");
    let pre = read_places_elsewhere(&w.db.store, &scope).await.unwrap();
    let read = usize::try_from(in_reach).unwrap();
    assert_eq!(pre, PreRead { read, placed_elsewhere: 1 }, "{db}: the Val-de-Marne's rows only");

    let csv = format!(
        "{HEADER}0940176F;Ecole reprise;Ecole;94034;094;24\n{};Ecole nouvelle;Ecole;94034;094;24\n\
         {};Ecole de Boulogne 7;Ecole;92012;092;25\n{};Ecole de Marseille 7;Ecole;13055;013;02\n",
        uai("0949907"),
        uai("0929907"),
        uai("0139907")
    );
    let options = ImportOptions { batch_size: 1, scope: Some(scope), ..ImportOptions::default() };
    let input = std::io::Cursor::new(csv.into_bytes());
    let report = import_annuaire(&w.db.store, &dan, input, options, t0()).await.expect("import runs");
    let report = serde_json::to_value(&report).unwrap();
    assert_eq!(report["out_of_scope"], 3, "{db}: {report}");
    assert_eq!(report["moved_out_of_scope"], json!([]), "{db}: found before the file, not by the writer: {report}");
    assert_eq!(report["etablissements"], json!({"created": 1, "updated": 0, "unchanged": 0}), "{db}: {report}");
    let school = org(&w.db.store, "0940176F").await;
    assert_eq!(
        (school.academie_code.as_deref(), school.name.as_str()),
        (Some("25"), "Ecole élémentaire Robert Doisneau")
    );
}

backend_test!(removing_a_commune_that_is_no_member_says_de_with_its_elision);
/// The refusal names the group with « d' » before a vowel: « n'est pas membre d'Est Ensemble »,
/// never « de Est Ensemble ».
async fn removing_a_commune_that_is_no_member_says_de_with_its_elision(db: crate::common::TestDb) {
    let w = world(db).await;
    let est = common::fixtures::new_org(
        &w.db.store,
        OrgKind::Epci,
        "Est Ensemble",
        &common::fixtures::group_siren(57875),
        Some("94"),
    )
    .await;
    let admin = w.client("admin@test.fr", Role::Admin, None).await;
    let (status, problem) = send(admin.delete(w.url(&format!("/orgs/{}/members/commune:94034", est.id)))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}: {problem}", w.db.name);
    assert_eq!(problem["detail"], "Fresnes n'est pas membre d'Est Ensemble", "{}: {problem}", w.db.name);
}

/// The file read in two parts: after the first, the reader stops until the test has changed the
/// registry (`reached` says it got there: the import has read the registry and parsed the first
/// part), so that the change comes between the parse of the later lines and their batch's write.
struct PausedReader {
    parts: std::collections::VecDeque<std::io::Cursor<Vec<u8>>>,
    reached: Option<std::sync::mpsc::Sender<()>>,
    resume: std::sync::mpsc::Receiver<()>,
}

impl std::io::Read for PausedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(part) = self.parts.front_mut() else {
                return Ok(0);
            };
            let n = part.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.parts.pop_front();
            if let Some(reached) = self.reached.take() {
                let _ = reached.send(());
                let _ = self.resume.recv();
            }
        }
    }
}

backend_test!(a_school_moved_out_of_scope_during_an_import_is_not_written_and_its_line_is_said);
/// Versailles' DAN renames its three Boulogne écoles and adds one in a commune new to the
/// registry. After the first line, while the import goes on, the second école is moved to
/// Créteil and the new commune registered there: neither line is written (the batch's
/// transaction finds them out of scope), and the report names both lines and why.
async fn a_school_moved_out_of_scope_during_an_import_is_not_written_and_its_line_is_said(db: crate::common::TestDb) {
    use entcp::registry::import::{import_annuaire, ImportOptions, ImportScope};
    let w = world(db).await;
    let _ = w.client("dan@ac-versailles.fr", Role::Dan, Some("academie:25")).await;
    let dan = actor(&w.db.store, "dan@ac-versailles.fr").await;
    let (first, rest) = (
        format!("{HEADER}{};Ecole de Boulogne 1 renommée;Ecole;92012;092;25\n", uai("0929901")),
        format!(
            "{};Ecole de Boulogne 2 renommée;Ecole;92012;092;25\n\
             {};Ecole de Boulogne 3 renommée;Ecole;92012;092;25\n\
             {};Ecole d'Issy 5;Ecole;92040;092;25\n",
            uai("0929902"),
            uai("0929903"),
            uai("0929905")
        ),
    );
    let (reached, at_pause) = std::sync::mpsc::channel();
    let (resume, resumed) = std::sync::mpsc::channel();
    let parts = [first, rest].map(|p| std::io::Cursor::new(p.into_bytes())).into();
    let input = PausedReader { parts, reached: Some(reached), resume: resumed };
    let scope = ImportScope { academies: ["25".to_string()].into(), ..ImportScope::default() };
    let options = ImportOptions { dry_run: false, batch_size: 1, scope: Some(scope), ..ImportOptions::default() };
    let store = w.db.store.clone();
    let import = tokio::spawn(async move { import_annuaire(&store, &dan, input, options, t0()).await });
    tokio::task::spawn_blocking(move || at_pause.recv()).await.unwrap().expect("the import reads the file");
    let moved =
        "UPDATE orgs SET academie_code = '24', departement_code = '94' WHERE kind = 'etablissement' AND code = $1";
    sqlx::query(moved).bind(uai("0929902")).execute(w.db.store.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO orgs (id, kind, code, name, sort_name, departement_code, academie_code, content_hash, created_at, \
         updated_at) VALUES ('commune-issy', 'commune', '92040', 'Issy (Créteil)', 'issy (creteil)', '94', '24', 'x', \
         '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
    )
    .execute(w.db.store.pool())
    .await
    .unwrap();
    resume.send(()).unwrap();
    let report = import.await.unwrap().expect("the import runs to its end");
    let db = w.db.name;
    assert_eq!(org(&w.db.store, &uai("0929901")).await.name, "Ecole de Boulogne 1 renommée", "{db}");
    assert_eq!(org(&w.db.store, &uai("0929903")).await.name, "Ecole de Boulogne 3 renommée", "{db}");
    let kept = org(&w.db.store, &uai("0929902")).await;
    assert_eq!((kept.name.as_str(), kept.academie_code.as_deref()), ("Ecole de Boulogne 2", Some("24")), "{db}");
    let issy = org(&w.db.store, "commune:92040").await;
    assert_eq!((issy.name.as_str(), issy.academie_code.as_deref()), ("Issy (Créteil)", Some("24")), "{db}");
    assert!(queries::resolve_org(&w.db.store, &uai("0929905")).await.is_err(), "{db}: no école in Créteil's commune");
    assert_eq!((report.out_of_scope, report.etablissements.updated, report.etablissements.created), (2, 2, 0), "{db}");
    let said: Vec<(u64, Option<&str>, &str)> =
        report.moved_out_of_scope.iter().map(|m| (m.line, m.uai.as_deref(), m.reason.as_str())).collect();
    let (two, five) = (uai("0929902"), uai("0929905"));
    assert_eq!(
        said,
        [
            (
                3,
                Some(two.as_str()),
                format!("l'établissement {two} a été enregistré hors de votre périmètre pendant l'import : ligne non importée")
                    .as_str()
            ),
            (
                5,
                Some(five.as_str()),
                "sa commune 92040 a été enregistrée hors de votre périmètre pendant l'import : ligne non importée"
            ),
        ],
        "{db}"
    );
    assert!(report.to_text().contains("    ligne 3 : l'établissement"), "{db}: {}", report.to_text());
}

/// The Créteil DAN's import under way: its lock taken at `at`, as `import_annuaire` takes it.
async fn creteil_import_under_way(
    w: &World,
    at: chrono::DateTime<chrono::Utc>,
) -> entcp::registry::import_lock::ImportLock {
    use entcp::registry::import::ImportScope;
    if entcp::identity::get_user(&w.db.store, "dan@ac-creteil.fr").await.unwrap().is_none() {
        let _ = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    }
    let dan = actor(&w.db.store, "dan@ac-creteil.fr").await;
    let scope = ImportScope { academies: ["24".to_string()].into(), ..ImportScope::default() };
    entcp::registry::import_lock::ImportLock::take(
        &w.db.store,
        &dan,
        Some(&scope),
        entcp::registry::import_lock::IMPORT_LEASE,
        at,
    )
    .await
    .unwrap()
    .expect("a lock")
}

async fn import_locks(store: &Store) -> Vec<(String, String)> {
    sqlx::query_as("SELECT academie_code, holder FROM import_locks ORDER BY academie_code")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

backend_test!(a_second_import_of_an_academie_is_refused_while_the_first_runs_and_says_who_runs_it);
async fn a_second_import_of_an_academie_is_refused_while_the_first_runs_and_says_who_runs_it(
    db: crate::common::TestDb,
) {
    let w = world(db).await;
    let db = w.db.name;
    let lock = creteil_import_under_way(&w, t0()).await;
    let renamed = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_departement;Code_academie\n\
                   0940176F;Ecole renommée pendant l'import;Ecole;94034;094;24\n";
    // Another DAN of Créteil (a DSDEN's), and the administrator, whose import may touch every académie.
    let dsden = w.client("dan@dsden94.fr", Role::Dan, Some("dsden:94")).await;
    let admin = w.client("admin@test.fr", Role::Admin, None).await;
    for client in [&dsden, &admin] {
        let (status, problem) = upload(client, &w.url("/imports/annuaire"), renamed.to_string()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{db}: {problem}");
        assert_eq!(problem["title"], "Conflit avec l'état actuel", "{db}: {problem}");
        assert_eq!(
            problem["detail"],
            "un import de l'annuaire touchant l'académie de Créteil est déjà en cours, lancé par dan@ac-creteil.fr \
             le 1er septembre 2026 à 10 h 00 : réessayez une fois celui-ci terminé (s'il a été interrompu, son \
             verrou expire le 1er septembre 2026 à 10 h 02)",
            "{db}"
        );
    }
    assert_eq!(org(&w.db.store, "0940176F").await.name, "Ecole élémentaire Robert Doisneau", "{db}: nothing written");
    // Versailles' DAN imports meanwhile: another académie.
    let versailles = w.client("dan@ac-versailles.fr", Role::Dan, Some("academie:25")).await;
    let (status, report) = upload(&versailles, &w.url("/imports/annuaire"), versailles_csv()).await;
    assert_eq!(status, StatusCode::OK, "{db}: {report}");
    // A dry run writes nothing: it is not refused.
    let (status, report) = upload(&dsden, &w.url("/imports/annuaire?dry_run=true"), renamed.to_string()).await;
    assert_eq!((status, &report["etablissements"]["updated"]), (StatusCode::OK, &json!(1)), "{db}: {report}");
    assert_eq!(import_locks(&w.db.store).await, [("24".to_string(), "dan@ac-creteil.fr".to_string())], "{db}");
    // Once the first is done, the second runs and leaves no lock behind.
    lock.release().await.unwrap();
    let (status, report) = upload(&dsden, &w.url("/imports/annuaire"), renamed.to_string()).await;
    assert_eq!((status, &report["etablissements"]["updated"]), (StatusCode::OK, &json!(1)), "{db}: {report}");
    assert_eq!(import_locks(&w.db.store).await, [], "{db}");
    // An administrator's import holds every académie.
    let national = entcp::registry::import_lock::ImportLock::take(
        &w.db.store,
        &common::admin(),
        None,
        entcp::registry::import_lock::IMPORT_LEASE,
        t0(),
    )
    .await;
    let national = national.unwrap().expect("a lock");
    let (status, problem) = upload(&versailles, &w.url("/imports/annuaire"), versailles_csv()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{db}: {problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("un import de l'annuaire de toutes les académies est déjà en cours"), "{db}: {detail}");
    national.release().await.unwrap();
}

backend_test!(an_import_lock_whose_lease_ran_out_or_whose_process_is_gone_is_taken_over);
async fn an_import_lock_whose_lease_ran_out_or_whose_process_is_gone_is_taken_over(db: crate::common::TestDb) {
    let w = world(db).await;
    let db = w.db.name;
    let renamed = |name: &str| format!("{HEADER}0940176F;{name};Ecole;94034;094;24\n");
    let dsden = w.client("dan@dsden94.fr", Role::Dan, Some("dsden:94")).await;
    // A lock taken three minutes before and never renewed since (its process stalled or on
    // another host, crashed): its lease of two minutes ran out.
    let stalled = creteil_import_under_way(&w, t0() - chrono::Duration::minutes(3)).await;
    let (status, report) = upload(&dsden, &w.url("/imports/annuaire"), renamed("Ecole après un bail échu")).await;
    assert_eq!((status, &report["etablissements"]["updated"]), (StatusCode::OK, &json!(1)), "{db}: {report}");
    assert_eq!(import_locks(&w.db.store).await, [], "{db}: taken over, then released");
    drop(stalled);
    // A lock whose lease still runs, taken by a process of this host that has ended (an
    // `entctl import` killed): taken over at once.
    let live = creteil_import_under_way(&w, t0()).await;
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let ended = child.id();
    child.wait().unwrap();
    let here = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    sqlx::query("UPDATE import_locks SET process = $1")
        .bind(format!("{}:{ended}", here.trim()))
        .execute(w.db.store.pool())
        .await
        .unwrap();
    let (status, report) = upload(&dsden, &w.url("/imports/annuaire"), renamed("Ecole après un arrêt brutal")).await;
    assert_eq!((status, &report["etablissements"]["updated"]), (StatusCode::OK, &json!(1)), "{db}: {report}");
    assert_eq!(org(&w.db.store, "0940176F").await.name, "Ecole après un arrêt brutal", "{db}");
    drop(live);
}

/// An annuaire export read in two parts: the first at once, the rest once `open` says so (or is
/// dropped): an import under way, stalled between two batches.
struct Stalled {
    first: std::io::Cursor<Vec<u8>>,
    rest: std::io::Cursor<Vec<u8>>,
    open: Option<std::sync::mpsc::Receiver<()>>,
}

impl std::io::Read for Stalled {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.first.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if let Some(open) = self.open.take() {
            let _ = open.recv();
        }
        self.rest.read(buf)
    }
}

/// The établissements among `codes` registered, each with how many rows hold its code.
async fn registered(store: &Store, codes: &[String]) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for code in codes {
        let sql = "SELECT COUNT(*) AS n FROM orgs WHERE kind = 'etablissement' AND code = $1";
        let n = common::count(store, sql, &[code.as_str()]).await;
        if n > 0 {
            found.push((code.clone(), n));
        }
    }
    found
}

/// A Créteil DAN's import of six new écoles (`import.lease_seconds: 3`, batches of 2) stalled
/// after its first four lines, its locks taken and what it writes of them written: both batches
/// on SQLite; on PostgreSQL, which writes two batches at once, one (the other, begun, waits for
/// a third batch to come before it goes on).
struct StalledImport {
    running: tokio::task::JoinHandle<Result<entcp::registry::import::ImportReport, entcp::error::Problem>>,
    /// Lets the import read the rest of its file.
    open: std::sync::mpsc::Sender<()>,
    codes: Vec<String>,
    /// The whole file.
    file: String,
    /// The écoles (one a line) it wrote before it stalled.
    written: Vec<(String, i64)>,
    dan: entcp::identity::Actor,
    options: entcp::registry::import::ImportOptions,
}

async fn import_stalled_after_four_lines(w: &World) -> StalledImport {
    use entcp::registry::import::{import_annuaire, ImportOptions, ImportScope};
    let db = w.db.name;
    let _ = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let dan = actor(&w.db.store, "dan@ac-creteil.fr").await;
    let codes: Vec<String> = (1..=6).map(|i| uai(&format!("094990{i}"))).collect();
    let row = |code: &String| format!("{code};Ecole nouvelle {code};Ecole;94034;094;24\n");
    let first: String = std::iter::once(HEADER.to_string()).chain(codes[..4].iter().map(row)).collect();
    let rest: String = codes[4..].iter().map(row).collect();
    let (open, gate) = std::sync::mpsc::channel();
    let input = Stalled {
        first: std::io::Cursor::new(first.clone().into_bytes()),
        rest: std::io::Cursor::new(rest.clone().into_bytes()),
        open: Some(gate),
    };
    let config = entcp::config::Config::from_yaml("import:\n  lease_seconds: 3\n").unwrap();
    let scope = ImportScope { academies: ["24".to_string()].into(), ..ImportScope::default() };
    let options = ImportOptions { batch_size: 2, scope: Some(scope), ..ImportOptions::configured(&config.import) };
    let (store, importer, given) = (w.db.store.clone(), dan.clone(), options.clone());
    let running = tokio::spawn(async move { import_annuaire(&store, &importer, input, given, t0()).await });
    let wrote = if w.db.store.bulk_writers() > 1 { 2 } else { 4 };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while import_locks(&w.db.store).await.is_empty() || registered(&w.db.store, &codes).await.len() < wrote {
        assert!(std::time::Instant::now() < deadline, "{db}: the import never takes its locks nor writes");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let written = registered(&w.db.store, &codes).await;
    assert_eq!(written.len(), if w.db.store.bulk_writers() > 1 { 2 } else { 4 }, "{db}: stalled, it writes no more");
    StalledImport { running, open, codes, file: format!("{first}{rest}"), written, dan, options }
}

impl StalledImport {
    fn written_codes(&self) -> Vec<String> {
        self.written.iter().map(|(code, _)| code.clone()).collect()
    }

    /// Lets the import read on: it stops, said as such, what it wrote before its stall kept once,
    /// nothing of the lines read after (on PostgreSQL, the batch whose commit was under way when
    /// it stalled may end); then, once `before_again` ran, the file imported again goes on from there.
    async fn resumes_and_stops(self, w: &World, before_again: impl std::future::Future<Output = ()>) {
        let db = w.db.name;
        self.open.send(()).unwrap();
        let written_codes = self.written_codes();
        let problem = self.running.await.unwrap().expect_err("the import stops");
        let kept = registered(&w.db.store, &self.codes).await;
        assert!(self.written.iter().all(|w| kept.contains(w)), "{db}: what it wrote stays: {kept:?}");
        let begun = if w.db.store.bulk_writers() > 1 { self.codes[..4].to_vec() } else { written_codes };
        assert!(kept.iter().all(|(code, n)| *n == 1 && begun.contains(code)), "{db}: nothing after: {kept:?}");
        assert_eq!(problem.kind.status().as_u16(), 409, "{db}: {}", problem.detail);
        assert_eq!(
            problem.detail,
            format!(
                "import interrompu après {} lignes : il est resté bloqué plus de 3 secondes et un autre import de \
                 vos académies a pu commencer ; les lignes lues sont importées, relancez l'import du fichier une \
                 fois l'autre terminé",
                kept.len()
            ),
            "{db}"
        );
        before_again.await;
        let again = std::io::Cursor::new(self.file.into_bytes());
        let report = entcp::registry::import::import_annuaire(&w.db.store, &self.dan, again, self.options, t0())
            .await
            .expect("the import runs");
        let report = serde_json::to_value(&report).unwrap();
        assert_eq!(
            (&report["etablissements"]["created"], &report["etablissements"]["unchanged"]),
            (&json!(6 - kept.len()), &json!(kept.len())),
            "{db}: {report}"
        );
        let all: Vec<(String, i64)> = self.codes.iter().map(|c| (c.clone(), 1)).collect();
        assert_eq!(registered(&w.db.store, &self.codes).await, all, "{db}");
    }
}

// The lease of an import's locks comes from `import.lease_seconds`; an import stalled past it,
// whose locks another import took over (the lock row rewritten as another process does), stops
// at its next batch with a conflict that says so: what it wrote before stays once, nothing after
// is written (not a batch it received and had not begun before the stall), its release leaves the other's
// locks, and the file imported again goes on from there.
backend_test!(an_import_whose_lease_was_taken_over_stops_at_its_next_batch_and_writes_nothing_more);
async fn an_import_whose_lease_was_taken_over_stops_at_its_next_batch_and_writes_nothing_more(
    db: crate::common::TestDb,
) {
    let w = world(db).await;
    let stalled = import_stalled_after_four_lines(&w).await;
    sqlx::query("UPDATE import_locks SET run_id = $1, holder = $2, process = $3")
        .bind("repris-par-un-autre-import")
        .bind("dan@dsden94.fr")
        .bind("ailleurs:1")
        .execute(w.db.store.pool())
        .await
        .unwrap();
    // A renewal (every second, a third of the lease) finds them gone; then the rest is read.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let store = w.db.store.clone();
    let other_done = async move {
        assert_eq!(import_locks(&store).await, [("24".to_string(), "dan@dsden94.fr".to_string())]);
        sqlx::query("DELETE FROM import_locks").execute(store.pool()).await.unwrap();
    };
    stalled.resumes_and_stops(&w, other_done).await;
}

// An import whose whole process stalled past its lease (no renewal could run; no other import
// took its locks over) stops before it writes again, though no renewal has come since to find
// the lease run out: what it wrote before stays once, nothing after is written (not a batch it
// received and had not begun before the stall), it releases its locks, and the file imported again goes on.
backend_test!(an_import_stalled_past_its_lease_stops_before_writing_again_though_no_other_took_its_locks);
async fn an_import_stalled_past_its_lease_stops_before_writing_again_though_no_other_took_its_locks(
    db: crate::common::TestDb,
) {
    let w = world(db).await;
    let stalled = import_stalled_after_four_lines(&w).await;
    // The test's runtime has one thread: held, it holds the import and its renewals (as a
    // process stopped) past the lease of 3 s.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let store = w.db.store.clone();
    let released = async move { assert_eq!(import_locks(&store).await, [], "the import's locks released") };
    stalled.resumes_and_stops(&w, released).await;
}

/// A commune of Versailles' académie with no école (one collège only): out of Créteil's scope.
async fn commune_without_ecole(store: &Store) -> Org {
    let mut csv = HEADER.to_string();
    csv.push_str(&format!("{};College de Versailles;College;78646;078;25\n", uai("0789901")));
    common::fixtures::annuaire(store, &csv).await;
    common::fixtures::org(store, "commune:78646").await
}

// `PATCH /conventions/{id}` naming as its collectivité an organisation the caller may not read
// answered « parties : aucun établissement couvert par cette convention » when that commune
// covers no école, but « parties.collectivite : aucune organisation … » for a key naming
// nothing: an existence oracle. Both (and `POST`) now answer alike, status, title and detail.
backend_test!(a_party_out_of_scope_is_refused_like_a_missing_one_on_create_and_edit);
async fn a_party_out_of_scope_is_refused_like_a_missing_one_on_create_and_edit(db: crate::common::TestDb) {
    let w = world(db).await;
    let name = w.db.name;
    commune_without_ecole(&w.db.store).await;
    let dan = w.client("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let body = |collectivite: &str| {
        json!({ "model": "bipartite-commune", "start_date": "2026-09-01",
                "parties": { "academie": "academie:24", "collectivite": collectivite } })
    };
    let (status, draft) = send(dan.post(w.url("/conventions")).json(&body("commune:94034"))).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {draft}");
    let id = draft["id"].as_str().unwrap();
    let version = draft["version"].as_i64().unwrap();
    // The answer, without the key sent (which each names).
    let answer = |(status, body): (StatusCode, Value), key: &str| (status, body.to_string().replace(key, "KEY"));
    for (out, missing) in [("commune:78646", "commune:78999"), ("commune:92012", "commune:92999")] {
        let create = |key: &str| send(dan.post(w.url("/conventions")).json(&body(key)));
        let (created_out, created_missing) = (answer(create(out).await, out), answer(create(missing).await, missing));
        assert_eq!(created_out.0, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {out}: {}", created_out.1);
        assert_eq!(created_out, created_missing, "{name}: POST {out}");
        let edit = |key: &str| {
            let patch = json!({ "parties": { "academie": "academie:24", "collectivite": key } });
            send(
                dan.patch(w.url(&format!("/conventions/{id}")))
                    .header("if-match", format!("\"{version}\""))
                    .json(&patch),
            )
        };
        let (edited_out, edited_missing) = (answer(edit(out).await, out), answer(edit(missing).await, missing));
        assert_eq!(edited_out.0, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {out}: {}", edited_out.1);
        assert_eq!(edited_out, edited_missing, "{name}: PATCH {out}");
        assert!(!edited_out.1.contains("aucun établissement"), "{name}: {}", edited_out.1);
    }
}
