//! The catalog API: every authenticated role reads services and bouquets.

use crate::common;

use common::app::Client;
use common::{token_for, TestApp};
use entcp::kernel::roles::OrgKind;
use entcp::kernel::roles::Role;
use serde_json::Value;

async fn setup() -> (common::TestDb, TestApp, Client) {
    let db = common::sqlite().await;
    let app = TestApp::over(&db.store).build().await;
    let vendor = common::fixtures::new_org(&db.store, OrgKind::Editeur, "Éditeur ENT", "552100554", None).await;
    // The support of the vendor: the narrowest scope, and still reads the catalog.
    let token = token_for(&db.store, "n3@editeur.fr", Role::SupportN3, Some(&vendor.id)).await;
    let client = app.client(&token);
    (db, app, client)
}

#[tokio::test]
async fn an_authenticated_user_lists_services_and_gets_a_bouquet() {
    let (_db, _app, client) = setup().await;
    let services: Vec<Value> = client.get("/api/v1/catalog/services").send().await.json();
    let cdt = services.iter().find(|s| s["code"] == "cahier-de-textes").expect("cahier de textes listed");
    assert_eq!(cdt["mandatory_in"], serde_json::json!(["2D"]));
    assert!(!cdt["rgpd"]["purposes"].as_array().unwrap().is_empty());

    let one = client.get("/api/v1/catalog/services/mediacentre").send().await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json::<Value>()["deployment"]["storage_gib_per_1000"], 0);

    let latest: Value = client.get("/api/v1/catalog/bouquets/socle-2d").send().await.json();
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["kind"], "base");
    assert!(latest["services"].as_array().unwrap().contains(&"cahier-de-textes".into()));
    let first: Value = client.get("/api/v1/catalog/bouquets/socle-2d?version=1").send().await.json();
    assert_eq!(first["version"], 1);

    let all: Vec<Value> = client.get("/api/v1/catalog/bouquets").send().await.json();
    assert!(all.iter().any(|b| b["id"] == "visio" && b["kind"] == "option"));
}

#[tokio::test]
async fn unknown_codes_and_versions_are_404_problems() {
    let (_db, _app, client) = setup().await;
    for path in ["services/karaoke", "bouquets/socle-3d", "bouquets/socle-2d?version=9"] {
        let resp = client.get(format!("/api/v1/catalog/{path}")).send().await;
        assert_eq!(resp.status, 404, "{path}");
        assert_eq!(resp.headers["content-type"], "application/problem+json");
        let body: Value = resp.json();
        assert_eq!(body["type"], "urn:entcp:problem:not-found");
        assert!(body["detail"].as_str().unwrap().starts_with("aucun"), "{body}");
    }
}

#[tokio::test]
async fn the_catalog_needs_authentication() {
    let (_db, app, _) = setup().await;
    let resp = app.get("/api/v1/catalog/services").send().await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.headers["content-type"], "application/problem+json");
}
