//! Tenants over HTTP on both backends: kubectl-like apply, the governance gate
//! and its audited override, lifecycle events, scopes and bad specs.

mod common;

use common::{admin, t0, token_for};
use entcp::clock::FixedClock;
use entcp::identity::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn doc(slug: &str, organisation: &str, hostname: &str) -> Value {
    json!({
        "apiVersion": "entcp.education.fr/v1",
        "kind": "EntTenant",
        "metadata": { "name": slug },
        "spec": { "organisation": organisation, "hostname": hostname, "bouquet": "socle-1d", "options": ["visio"] }
    })
}

async fn import_sample(store: &entcp::store::Store) {
    let csv = std::fs::read(common::fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let options = entcp::registry::import::ImportOptions::default();
    entcp::registry::import::import_annuaire(store, &admin(), std::io::Cursor::new(csv), options, t0()).await.unwrap();
}

#[tokio::test]
async fn a_tenant_is_refused_without_convention_and_provisioned_once_one_is_active() {
    for db in common::backends().await {
        import_sample(&db.store).await;
        let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
        let dan = common::client_with(&token_for(&db.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await);
        let mairie = common::client_with(
            &token_for(&db.store, "ent@fresnes.fr", Role::Collectivite, Some("commune:94034")).await,
        );
        let directeur =
            common::client_with(&token_for(&db.store, "dir@ecole.fr", Role::ChefEtablissement, Some("0940176F")).await);
        let root = common::client_with(&token_for(&db.store, "root@test.fr", Role::Admin, None).await);
        let url = |p: &str| format!("{base}/api/v1{p}");

        let body = doc("doisneau-fresnes", "0940176F", "doisneau.ent.fresnes.example.fr");
        let (s, created) = call(mairie.post(url("/tenants")).json(&body)).await;
        assert_eq!(s, StatusCode::CREATED, "{}: {created}", db.name);
        assert_eq!(created["result"], "created");
        assert_eq!(created["tenant"]["status"], "requested");
        let (s, again) = call(mairie.post(url("/tenants")).json(&body)).await;
        assert_eq!((s, again["result"].as_str()), (StatusCode::OK, Some("unchanged")));

        let (s, refused) =
            call(dan.post(url("/tenants/doisneau-fresnes/transition")).json(&json!({ "to": "provisioning" }))).await;
        assert_eq!(s, StatusCode::CONFLICT, "{refused}");
        assert!(refused["detail"].as_str().unwrap().contains("aucune convention en vigueur"), "{refused}");
        assert_eq!(refused["missing"], "convention");
        let (s, _) = call(
            dan.post(url("/tenants/doisneau-fresnes/transition"))
                .json(&json!({ "to": "provisioning", "override_reason": "urgence" })),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "only an admin overrides the gate");

        // A tripartite convention signed by the three parties opens the gate.
        let convention = json!({
            "model": "tripartite-premier-degre",
            "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
            "start_date": "2026-09-01"
        });
        let (_, conv) = call(dan.post(url("/conventions")).json(&convention)).await;
        let id = conv["id"].as_str().unwrap();
        call(dan.post(url(&format!("/conventions/{id}/submit"))).json(&json!({}))).await;
        for who in [&dan, &mairie, &directeur] {
            assert_eq!(
                call(who.post(url(&format!("/conventions/{id}/sign"))).json(&json!({}))).await.0,
                StatusCode::OK
            );
        }
        let (s, moved) =
            call(dan.post(url("/tenants/doisneau-fresnes/transition")).json(&json!({ "to": "provisioning" }))).await;
        assert_eq!(s, StatusCode::OK, "{moved}");
        assert_eq!(moved["convention_id"], id);
        let (s, bad) =
            call(dan.post(url("/tenants/doisneau-fresnes/transition")).json(&json!({ "to": "archived" }))).await;
        assert_eq!(s, StatusCode::CONFLICT, "{bad}");

        // An admin may override the gate for another school; it shows on the tenant and in its events.
        let body = doc("wallon-vitry", "0940198E", "wallon.ent.vitry.example.fr");
        assert_eq!(call(root.post(url("/tenants")).json(&body)).await.0, StatusCode::CREATED);
        let (s, forced) = call(
            root.post(url("/tenants/wallon-vitry/transition"))
                .json(&json!({ "to": "provisioning", "override_reason": "rentrée" })),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{forced}");
        assert_eq!(forced["gate_override"]["reason"], "rentrée");
        let (_, events) = call(root.get(url("/tenants/wallon-vitry/events"))).await;
        assert!(
            events.as_array().unwrap().iter().any(|e| e["message"].as_str().unwrap().contains("dérogation")),
            "{events}"
        );
        // The change is reconciled right away, in the background: wait (bounded) for its event.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, events) = call(root.get(url("/tenants/wallon-vitry/events"))).await;
            let reconciled = events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "reconciled" && e["message"].as_str().unwrap() != "0 objets appliqués");
            if reconciled {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no reconcile after the change: {events}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // Scopes: Fresnes sees its école's tenant, not Vitry's; the directeur reads his own.
        let (_, mine) = call(mairie.get(url("/tenants"))).await;
        let slugs: Vec<&str> = mine.as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
        assert_eq!(slugs, ["doisneau-fresnes"], "{}", db.name);
        assert_eq!(call(mairie.get(url("/tenants/wallon-vitry"))).await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(directeur.get(url("/tenants/doisneau-fresnes"))).await.0, StatusCode::OK);
        assert_eq!(
            call(directeur.post(url("/tenants")).json(&doc("x-y", "0940176F", "x.y.example.fr"))).await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn bad_tenant_documents_name_every_wrong_field() {
    let db = common::sqlite().await;
    import_sample(&db.store).await;
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
    let root = common::client_with(&token_for(&db.store, "root@test.fr", Role::Admin, None).await);
    let mut body = doc("Mauvais_Nom", "0940176F", "localhost");
    body["spec"]["bouquet"] = json!("socle-2d");
    body["spec"]["options"] = json!(["inconnue"]);
    let (s, p) = call(root.post(format!("{base}/api/v1/tenants")).json(&body)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in ["metadata.name", "spec.hostname", "spec.options", "spec.bouquet"] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    let mut wrong_kind = doc("t", "0940176F", "t.example.fr");
    wrong_kind["kind"] = json!("Deployment");
    assert_eq!(
        call(root.post(format!("{base}/api/v1/tenants")).json(&wrong_kind)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let schema: Value = root.get(format!("{base}/api/v1/tenant-schema")).send().await.unwrap().json().await.unwrap();
    assert!(schema["properties"]["spec"].is_object(), "{schema}");
}

fn files_of(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect(),
        Err(_) => vec![],
    };
    names.sort();
    names
}

#[tokio::test]
async fn the_reconciler_writes_manifests_only_when_the_desired_state_changes() {
    for db in common::backends().await {
        import_sample(&db.store).await;
        let data = tempfile::tempdir().unwrap();
        let config = entcp::config::Config { data_dir: data.path().to_path_buf(), ..Default::default() };
        let state = entcp::api::AppState::new(db.store.clone(), config, Arc::new(FixedClock::new(t0())));
        let dir = data.path().join("manifests/doisneau");
        let apply = |options: Value| {
            let mut body = doc("doisneau", "0940176F", "doisneau.ent.example.fr");
            body["spec"]["options"] = options;
            let state = state.clone();
            async move {
                let doc: entcp::tenants::EntTenant = serde_json::from_value(body).unwrap();
                entcp::tenants::apply(&state, &admin(), &doc, None).await.unwrap().1
            }
        };
        let pass = || entcp::provisioning::reconcile::pass(&state, None, t0());
        let tenant = apply(json!([])).await;
        let first = pass().await.unwrap();
        assert!(files_of(&dir).is_empty(), "{}: nothing is deployed before the gate", db.name);
        assert_eq!(first.tenants, 1);

        let move_to = |to: entcp::tenants::Status, reason: Option<&'static str>| {
            let state = state.clone();
            async move {
                let t = entcp::tenants::get_tenant(&state.store, "doisneau").await.unwrap().unwrap();
                entcp::tenants::transition(&state, &admin(), &t, to, reason).await.unwrap()
            }
        };
        move_to(entcp::tenants::Status::Provisioning, Some("démonstration")).await;
        assert_eq!(pass().await.unwrap().applied, 1);
        let base = files_of(&dir);
        assert!(
            base.contains(&"namespace-ent-doisneau.yaml".to_string()) && base.contains(&"ingress-ent.yaml".to_string()),
            "{base:?}"
        );
        let noop = pass().await.unwrap();
        assert_eq!((noop.applied, noop.unchanged), (0, 1), "a no-op pass writes nothing");

        apply(json!(["visio"])).await;
        assert_eq!(pass().await.unwrap().applied, 1);
        let with_visio = files_of(&dir);
        let added: Vec<&String> = with_visio.iter().filter(|f| !base.contains(f)).collect();
        assert!(!added.is_empty() && added.iter().all(|f| f.contains("visio")), "{added:?}");
        apply(json!([])).await;
        pass().await.unwrap();
        assert_eq!(files_of(&dir), base, "removing the option prunes its objects");

        move_to(entcp::tenants::Status::Active, None).await;
        move_to(entcp::tenants::Status::Suspended, None).await;
        pass().await.unwrap();
        let deployment =
            std::fs::read_to_string(dir.join(base.iter().find(|f| f.starts_with("deployment-")).unwrap())).unwrap();
        assert!(deployment.contains("replicas: 0"), "{deployment}");
        move_to(entcp::tenants::Status::Decommissioning, None).await;
        pass().await.unwrap();
        let left = files_of(&dir);
        assert!(left.iter().all(|f| !f.starts_with("deployment-") && !f.starts_with("ingress-")), "{left:?}");
        assert!(left.iter().any(|f| f.starts_with("secret-")), "data and credentials are kept");
        let events = entcp::tenants::events(&db.store, &tenant.id).await.unwrap();
        assert!(events.iter().filter(|e| e.kind == "reconciled").count() >= 4);
    }
}
