//! The catalog API: every authenticated role reads services and bouquets.

use crate::common;

use common::{admin, t0, token_for};
use entcp::clock::FixedClock;
use entcp::identity::Role;
use entcp::registry::manage::{create_org, NewOrg};
use entcp::registry::OrgKind;
use serde_json::Value;
use std::sync::Arc;

async fn setup() -> (common::TestDb, String, reqwest::Client) {
    let db = common::sqlite().await;
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
    let vendor = NewOrg {
        kind: OrgKind::Editeur,
        siren: "552100554".into(),
        name: "Éditeur ENT".into(),
        email: None,
        departement: None,
    };
    let vendor = create_org(&db.store, &admin(), vendor, t0()).await.unwrap();
    // The support of the vendor: the narrowest scope, and still reads the catalog.
    let token = token_for(&db.store, "n3@editeur.fr", Role::SupportN3, Some(&vendor.id)).await;
    (db, base, common::client_with(&token))
}

#[tokio::test]
async fn an_authenticated_user_lists_services_and_gets_a_bouquet() {
    let (_db, base, client) = setup().await;
    let services: Vec<Value> =
        client.get(format!("{base}/api/v1/catalog/services")).send().await.unwrap().json().await.unwrap();
    let cdt = services.iter().find(|s| s["code"] == "cahier-de-textes").expect("cahier de textes listed");
    assert_eq!(cdt["mandatory_in"], serde_json::json!(["2D"]));
    assert!(!cdt["rgpd"]["purposes"].as_array().unwrap().is_empty());

    let one = client.get(format!("{base}/api/v1/catalog/services/mediacentre")).send().await.unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap()["deployment"]["storage_gib_per_1000"], 0);

    let latest: Value =
        client.get(format!("{base}/api/v1/catalog/bouquets/socle-2d")).send().await.unwrap().json().await.unwrap();
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["kind"], "base");
    assert!(latest["services"].as_array().unwrap().contains(&"cahier-de-textes".into()));
    let first: Value = client
        .get(format!("{base}/api/v1/catalog/bouquets/socle-2d?version=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["version"], 1);

    let all: Vec<Value> =
        client.get(format!("{base}/api/v1/catalog/bouquets")).send().await.unwrap().json().await.unwrap();
    assert!(all.iter().any(|b| b["id"] == "visio" && b["kind"] == "option"));
}

#[tokio::test]
async fn unknown_codes_and_versions_are_404_problems() {
    let (_db, base, client) = setup().await;
    for path in ["services/karaoke", "bouquets/socle-3d", "bouquets/socle-2d?version=9"] {
        let resp = client.get(format!("{base}/api/v1/catalog/{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["type"], "urn:entcp:problem:not-found");
        assert!(body["detail"].as_str().unwrap().starts_with("aucun"), "{body}");
    }
}

#[tokio::test]
async fn the_catalog_needs_authentication() {
    let (_db, base, _) = setup().await;
    let resp = reqwest::get(format!("{base}/api/v1/catalog/services")).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}
