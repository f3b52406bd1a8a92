//! The guardrails of `provisioning.guardrails` at `POST /tenants`: bounds on accounts per
//! kind of school, the DAN's approval above a threshold (audited), hostname suffixes per
//! académie, storage classes and image registries, each refused in French problem+json.

use crate::common;

use axum::http::StatusCode;
use common::app::Req;
use common::TestApp;
use entcp::config::{AccountBounds, Config};
use entcp::kernel::roles::Role;
use serde_json::{json, Value};

async fn call(req: Req<'_>) -> (StatusCode, Value) {
    let resp = req.send().await;
    (StatusCode::from_u16(resp.status).unwrap(), resp.body)
}

fn doisneau(hostname: &str, accounts: i64, options: &[&str]) -> Value {
    json!({
        "apiVersion": "entcp.education.fr/v1",
        "kind": "EntTenant",
        "metadata": { "name": "doisneau" },
        "spec": { "organisation": "0940176F", "hostname": hostname, "bouquet": "socle-1d",
                  "options": options, "accounts": accounts }
    })
}

/// Écoles: at most 3,000 accounts, the DAN's approval above 1,500; Créteil's tenants under
/// `ent.ac-creteil.fr`; images from the project's registry; volumes on `ceph-rbd`.
fn guarded(config: &mut Config) {
    let guardrails = &mut config.provisioning.guardrails;
    guardrails.accounts.insert("ecole".into(), AccountBounds { max: 3000, approval_above: 1500 });
    guardrails.hostname_suffixes.insert("academie:24".into(), vec!["ent.ac-creteil.fr".into()]);
    guardrails.registries = vec!["registry.example.org/ent".into()];
    guardrails.storage_classes = vec!["ceph-rbd".into()];
    config.provisioning.cluster.storage_class = Some("ceph-rbd".into());
}

/// The hostname of Doisneau's tenant under Créteil's suffix.
const HOST: &str = "doisneau.ent.ac-creteil.fr";

/// The app under [`guarded`], with Créteil's DAN and `collectivite`, a collectivité of Fresnes.
async fn guarded_app(db: &common::TestDb, collectivite: &str) -> TestApp {
    TestApp::over(&db.store)
        .config(guarded)
        .user("dan@ac-creteil.fr", Role::Dan, Some("academie:24"))
        .user(collectivite, Role::Collectivite, Some("commune:94034"))
        .build()
        .await
}

/// `who` applies `body`: `POST /tenants` to create its tenant, else `PUT` with the `If-Match`
/// of the version `who` reads.
async fn apply(app: &TestApp, who: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/tenants/{}", body["metadata"]["name"].as_str().unwrap());
    let read = app.get(&path).acting_as(who).send().await;
    match read.header("etag") {
        Some(etag) => call(app.put(&path).acting_as(who).header("if-match", etag).json(&body)).await,
        None => call(app.post("/api/v1/tenants").acting_as(who).json(&body)).await,
    }
}

/// The collectivité `who` creates Doisneau's tenant with 1,200 accounts (201), then is refused
/// 2,000, above the threshold (403: the DAN must approve).
async fn created_then_refused_above_the_threshold(app: &TestApp, who: &str, name: &str) {
    let (s, created) = apply(app, who, doisneau(HOST, 1200, &[])).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
    let (s, refused) = apply(app, who, doisneau(HOST, 2000, &[])).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {refused}");
    assert!(refused["detail"].as_str().unwrap().contains("la DAN doit approuver"), "{refused}");
}

fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect()
}

backend_test!(accounts_above_the_threshold_need_the_dan_and_the_bound_holds_for_everyone);
async fn accounts_above_the_threshold_need_the_dan_and_the_bound_holds_for_everyone(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let app = guarded_app(&db, "ent@fresnes.fr").await;
    // The collectivité cannot go above the threshold: the DAN must approve.
    created_then_refused_above_the_threshold(&app, "ent@fresnes.fr", db.name).await;
    // Nobody goes above the bound, the collectivité…
    let (s, refused) = apply(&app, "ent@fresnes.fr", doisneau(HOST, 10_000_000, &[])).await;
    assert_eq!((s, fields(&refused)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["spec.accounts"]), "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("au plus 3000 comptes pour une école"), "{refused}");
    let (_, tenant) = call(app.get("/api/v1/tenants/doisneau").acting_as("dan@ac-creteil.fr")).await;
    assert_eq!(tenant["accounts"], 1200, "{}: refused changes leave the tenant as it was", db.name);
    // …nor the DAN.
    let (s, refused) = apply(&app, "dan@ac-creteil.fr", doisneau(HOST, 3001, &[])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    // The DAN approves by applying the change: audited as an approval, logged on the tenant.
    let (s, approved) = apply(&app, "dan@ac-creteil.fr", doisneau(HOST, 2000, &[])).await;
    assert_eq!(s, StatusCode::OK, "{}: {approved}", db.name);
    let filter = entcp::audit::AuditFilter { target_kind: Some("tenant".into()), ..Default::default() };
    let audited = entcp::audit::list(&db.store, &filter, None).await.unwrap().items;
    let approvals: Vec<_> = audited.iter().filter(|r| r.action == "tenants.accounts_approved").collect();
    assert_eq!(approvals.len(), 1, "{}: {audited:?}", db.name);
    assert_eq!(approvals[0].actor, "user:dan@ac-creteil.fr");
    let (_, events) = call(app.get("/api/v1/tenants/doisneau/events").acting_as("ent@fresnes.fr")).await;
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "approved"), "{events}");

    // Once approved, the collectivité may change the rest without a new approval.
    let (s, configured) = apply(&app, "ent@fresnes.fr", doisneau(HOST, 2000, &["visio"])).await;
    assert_eq!(s, StatusCode::OK, "{}: {configured}", db.name);
}

backend_test!(hostnames_storage_classes_and_registries_outside_the_allow_lists_are_refused);
async fn hostnames_storage_classes_and_registries_outside_the_allow_lists_are_refused(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let app = TestApp::over(&db.store).config(guarded).build().await;
    let root = app.root_client().await;
    let (s, refused) = call(root.post("/api/v1/tenants").json(&doisneau("doisneau.ent.example.fr", 900, &[]))).await;
    assert_eq!((s, fields(&refused)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["spec.hostname"]), "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("ent.ac-creteil.fr"), "{refused}");
    // A look-alike domain is not under the suffix.
    let lookalike = doisneau("doisneau.ent.ac-creteil.fr.example.com", 900, &[]);
    assert_eq!(call(root.post("/api/v1/tenants").json(&lookalike)).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    // Another registry and another storage class allowed than the catalog and cluster use.
    let strict = TestApp::over(&db.store)
        .config(|c| {
            guarded(c);
            c.provisioning.guardrails.registries = vec!["registry.other.org".into()];
            c.provisioning.cluster.storage_class = Some("local-path".into());
        })
        .build()
        .await;
    let (s, refused) =
        call(root.to(&strict).post("/api/v1/tenants").json(&doisneau("doisneau.ent.ac-creteil.fr", 900, &[]))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {refused}", db.name);
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("classe de stockage « local-path » non autorisée"), "{detail}");
    assert!(detail.contains("hors des registres autorisés"), "{detail}");
    // No option asked: what is refused comes with the base bouquet, and is named so.
    assert!(fields(&refused).iter().all(|f| *f == "spec.bouquet"), "{}: {refused}", db.name);
    // An option's own services are named at the option's index.
    let (s, refused) =
        call(root.to(&strict).post("/api/v1/tenants").json(&doisneau("doisneau.ent.ac-creteil.fr", 900, &["visio"])))
            .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {refused}", db.name);
    let visio =
        refused["errors"].as_array().unwrap().iter().find(|e| e["message"].as_str().unwrap().contains("service visio"));
    assert_eq!(visio.map(|e| &e["field"]), Some(&json!("spec.options[0]")), "{}: {refused}", db.name);
    assert_eq!(refused["title"].as_str().map(|t| !t.is_empty()), Some(true));

    // Inside every list: accepted.
    let (s, created) = call(root.post("/api/v1/tenants").json(&doisneau("doisneau.ent.ac-creteil.fr", 900, &[]))).await;
    assert_eq!(s, StatusCode::CREATED, "{}: {created}", db.name);
}

/// Adds an école of Boulogne-Billancourt (académie de Versailles, 25) to the registry; its UAI.
async fn boulogne(store: &entcp::store::Store) -> String {
    let uai = common::fixtures::uai("0929901");
    let csv = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_departement;\
         Code_academie\n{uai};Ecole de Boulogne 1;Ecole;92012;092;25\n"
    );
    common::fixtures::annuaire(store, &csv).await;
    uai
}

// A `dan` binding approves only for the tenants of its scope: the collectivité of Fresnes who is
// also DAN of Versailles does not approve Fresnes's tenant above the threshold; Créteil's DAN does.
backend_test!(a_dan_of_another_academie_does_not_approve_a_tenant_above_the_threshold);
async fn a_dan_of_another_academie_does_not_approve_a_tenant_above_the_threshold(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    boulogne(&db.store).await;
    let app = guarded_app(&db, "double@fresnes.fr").await;
    common::fixtures::grant_also(&db.store, "double@fresnes.fr", Role::Dan, "academie:25").await;
    created_then_refused_above_the_threshold(&app, "double@fresnes.fr", db.name).await;
    let (_, tenant) = call(app.get("/api/v1/tenants/doisneau").acting_as("dan@ac-creteil.fr")).await;
    assert_eq!(tenant["accounts"], 1200, "{}: {tenant}", db.name);
    let filter = entcp::audit::AuditFilter { target_kind: Some("tenant".into()), ..Default::default() };
    let audited = entcp::audit::list(&db.store, &filter, None).await.unwrap().items;
    assert!(audited.iter().all(|r| r.action != "tenants.accounts_approved"), "{}: {audited:?}", db.name);

    // The DAN whose académie holds the école approves.
    let (s, approved) = apply(&app, "dan@ac-creteil.fr", doisneau(HOST, 2000, &[])).await;
    assert_eq!(s, StatusCode::OK, "{}: {approved}", db.name);
    assert_eq!(approved["tenant"]["accounts"], 2000, "{approved}");
}

// A slug held by a tenant the caller may not read answers one 409 that names nothing of it
// (neither its organisation nor the resource declaring it), before and unlike any other check
// of that tenant; the tenant is untouched and a free slug is created.
backend_test!(posting_the_slug_of_an_out_of_scope_tenant_only_says_it_is_taken);
async fn posting_the_slug_of_an_out_of_scope_tenant_only_says_it_is_taken(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let ecole = boulogne(&db.store).await;
    let app = TestApp::over(&db.store).user("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).build().await;
    let root = app.root_client().await;
    let their = |slug: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
                "spec": { "organisation": ecole, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" } })
    };
    for slug in ["boulogne-api", "boulogne-kube"] {
        let (s, body) = call(root.post("/api/v1/tenants").json(&their(slug))).await;
        assert_eq!(s, StatusCode::CREATED, "{}: {body}", db.name);
    }
    // One of them declared by a resource of another namespace.
    sqlx::query(
        "UPDATE tenants SET declared_by = 'EntTenant ns-versailles/boulogne-kube' WHERE slug = 'boulogne-kube'",
    )
    .execute(db.store.pool())
    .await
    .unwrap();
    let before = entcp::tenants::get_tenant(&db.store, "boulogne-kube").await.unwrap().unwrap();

    let ours = |slug: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
                "spec": { "organisation": "0940176F", "hostname": format!("{slug}.ent.ac-creteil.fr"),
                          "bouquet": "socle-1d", "accounts": 300 } })
    };
    let mut answers = Vec::new();
    for slug in ["boulogne-api", "boulogne-kube"] {
        let (s, body) = call(app.post("/api/v1/tenants").acting_as("dan@ac-creteil.fr").json(&ours(slug))).await;
        assert_eq!(s, StatusCode::CONFLICT, "{}: {body}", db.name);
        let text = body.to_string();
        assert!(!text.contains("ns-versailles") && body.get("declared_by").is_none(), "{body}");
        assert!(!text.contains(&ecole) && !text.contains("Boulogne"), "{body}");
        assert!(body["detail"].as_str().unwrap().contains("déjà pris"), "{body}");
        answers.push((
            body["type"].clone(),
            body["title"].clone(),
            body["detail"].as_str().unwrap().replace(slug, "…"),
        ));
    }
    assert_eq!(answers[0], answers[1], "{}: the same answer for both", db.name);
    let kept = entcp::tenants::get_tenant(&db.store, "boulogne-kube").await.unwrap().unwrap();
    assert_eq!((kept.version, kept.accounts), (before.version, before.accounts), "{}: untouched", db.name);

    let (s, body) = call(app.post("/api/v1/tenants").acting_as("dan@ac-creteil.fr").json(&ours("doisneau"))).await;
    assert_eq!(s, StatusCode::CREATED, "{}: {body}", db.name);
}
