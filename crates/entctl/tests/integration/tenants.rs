//! Tenants over HTTP on both backends: kubectl-like apply, the governance gate
//! and its audited override, lifecycle events, scopes and bad specs.

use crate::common;

use axum::http::StatusCode;
use common::app::{Client, Req};
use common::TestApp;
use common::{admin, t0, token_for};
use entcp::clock::FixedClock;
use entcp::kernel::roles::Role;
use serde_json::{json, Value};
use std::sync::Arc;

async fn call(req: Req<'_>) -> (StatusCode, Value) {
    let resp = req.send().await;
    (StatusCode::from_u16(resp.status).unwrap(), resp.body)
}

/// [`call`] over a socket, for the test whose server shares its `AppState` with the test.
async fn call_socket(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The sample annuaire and an app with the DAN of Créteil, the mairie of Fresnes, the
/// directeur of the école Robert Doisneau and an admin.
pub(crate) async fn fresnes(db: &common::TestDb) -> (TestApp, [Client; 4]) {
    common::import_sample(&db.store).await;
    let app = TestApp::over(&db.store).build().await;
    let users = [
        ("dan@ac-creteil.fr", Role::Dan, Some("academie:24")),
        ("ent@fresnes.fr", Role::Collectivite, Some("commune:94034")),
        ("dir@ecole.fr", Role::ChefEtablissement, Some("0940176F")),
        ("root@test.fr", Role::Admin, None),
    ];
    let mut clients = Vec::new();
    for (email, role, org) in users {
        clients.push(app.client(&token_for(&db.store, email, role, org).await));
    }
    let clients: [Client; 4] = clients.try_into().unwrap_or_else(|_| unreachable!());
    (app, clients)
}

/// The tripartite convention of the école Robert Doisneau (Fresnes), signed by its three
/// parties (the DAN, the mairie, the directeur) and in force from t0 for 36 months; its id.
pub(crate) async fn signed_doisneau_convention(dan: &Client, mairie: &Client, directeur: &Client) -> String {
    signed_doisneau_convention_from(dan, mairie, directeur, "2026-09-01").await
}

/// [`signed_doisneau_convention`] starting on `start` (AAAA-MM-JJ).
pub(crate) async fn signed_doisneau_convention_from(
    dan: &Client,
    mairie: &Client,
    directeur: &Client,
    start: &str,
) -> String {
    let url = |p: &str| format!("/api/v1{p}");
    let convention = common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": start
    }));
    let (_, conv) = call(dan.post(url("/conventions")).json(&convention)).await;
    let id = conv["id"].as_str().unwrap().to_string();
    call(dan.post(url(&format!("/conventions/{id}/submit"))).json(&json!({}))).await;
    for who in [dan, mairie, directeur] {
        assert_eq!(
            call(
                who.post(url(&format!("/conventions/{id}/sign")))
                    .json(&crate::common::fixtures::by_delegation(json!({})))
            )
            .await
            .0,
            StatusCode::OK
        );
    }
    id
}

pub(crate) fn doc(slug: &str, organisation: &str, hostname: &str) -> Value {
    json!({
        "apiVersion": "entcp.education.fr/v1",
        "kind": "EntTenant",
        "metadata": { "name": slug },
        "spec": { "organisation": organisation, "hostname": hostname, "bouquet": "socle-1d", "options": ["visio"] }
    })
}

/// The tenant `body` requested by the mairie of Fresnes, the Doisneau convention signed to come
/// into force on 4 January 2027, then the tenant's provisioning asked by the DAN and refused
/// (409): the convention and the refusal.
async fn gate_refused_ahead_of_doisneau(db: &common::TestDb, body: Value) -> (Value, Value) {
    let (_app, [dan, mairie, directeur, _]) = fresnes(db).await;
    let url = |p: &str| format!("/api/v1{p}");
    assert_eq!(call(mairie.post(url("/tenants")).json(&body)).await.0, StatusCode::CREATED);
    let id = signed_doisneau_convention_from(&dan, &mairie, &directeur, "2027-01-04").await;
    let (_, conv) = call(dan.get(url(&format!("/conventions/{id}")))).await;
    let transition = url(&format!("/tenants/{}/transition", body["metadata"]["name"].as_str().unwrap()));
    let (s, refused) = call(dan.post(transition).json(&json!({ "to": "provisioning" }))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {refused}", db.name);
    (conv, refused)
}

// A convention signed for a later first day does not open the gate, and the refusal says when
// it will (the refusal used to tell the DAN to sign a convention already signed).
backend_test!(a_gate_refused_before_a_signed_convention_comes_into_force_names_it_and_its_first_day);
async fn a_gate_refused_before_a_signed_convention_comes_into_force_names_it_and_its_first_day(
    db: crate::common::TestDb,
) {
    let (conv, refused) =
        gate_refused_ahead_of_doisneau(&db, doc("doisneau-fresnes", "0940176F", "doisneau.ent.fresnes.example.fr"))
            .await;
    let detail = refused["detail"].as_str().unwrap();
    let said = format!(
        "La convention {} est signée : elle entre en vigueur le 4 janvier 2027",
        conv["reference"].as_str().unwrap()
    );
    assert!(detail.contains(&said), "{}: {detail}", db.name);
    assert!(detail.contains("un administrateur peut passer outre en indiquant un motif"), "{}: {detail}", db.name);
    assert_eq!(refused["signed_ahead"][0]["start_date"], "2027-01-04", "{}: {refused}", db.name);
}

// A convention signed ahead for one of a commune's schools does not promise the commune's ENT
// a day: the refusal says how few schools it covers (it used to promise deployment on its
// first day, when the other schools would still keep the gate closed).
backend_test!(a_gate_refused_for_a_commune_does_not_promise_a_day_a_convention_covering_one_school_cannot_keep);
async fn a_gate_refused_for_a_commune_does_not_promise_a_day_a_convention_covering_one_school_cannot_keep(
    db: crate::common::TestDb,
) {
    let (conv, refused) =
        gate_refused_ahead_of_doisneau(&db, doc("ecoles-fresnes", "commune:94034", "ecoles.ent.fresnes.example.fr"))
            .await;
    let detail = refused["detail"].as_str().unwrap();
    let uncovered = refused["uncovered"].as_array().unwrap().len();
    assert!(uncovered > 1, "{}: {refused}", db.name);
    let said = format!(
        "La convention {} (en vigueur le 4 janvier 2027) est signée, mais elle ne couvre que 1 des {uncovered} \
         établissements sans convention en vigueur",
        conv["reference"].as_str().unwrap()
    );
    assert!(detail.contains(&said), "{}: {detail}", db.name);
    assert!(!detail.contains("sera possible") && !detail.contains("passer outre"), "{}: {detail}", db.name);
    assert_eq!(refused["signed_ahead"][0]["start_date"], "2027-01-04", "{}: {refused}", db.name);
    // The schools are named as a page shows them (« École … »), not as the annuaire writes them.
    assert!(detail.contains("École ") && !detail.contains("Ecole "), "{}: {detail}", db.name);
}

// The gate's refusal offers only the models that may cover the school (for an école, no second
// degré), then names the convention under way for it and the signatures it awaits.
backend_test!(a_gate_refusal_offers_the_school_s_models_then_names_the_convention_under_way);
async fn a_gate_refusal_offers_the_school_s_models_then_names_the_convention_under_way(db: crate::common::TestDb) {
    let (_app, [dan, mairie, directeur, _]) = fresnes(&db).await;
    let url = |p: &str| format!("/api/v1{p}");
    let body = doc("doisneau-fresnes", "0940176F", "doisneau.ent.fresnes.example.fr");
    assert_eq!(call(mairie.post(url("/tenants")).json(&body)).await.0, StatusCode::CREATED);
    let refused = async || {
        let (s, refused) =
            call(dan.post(url("/tenants/doisneau-fresnes/transition")).json(&json!({ "to": "provisioning" }))).await;
        assert_eq!(s, StatusCode::CONFLICT, "{}: {refused}", db.name);
        refused["detail"].as_str().unwrap().to_string()
    };
    let detail = refused().await;
    let models = "signez une convention relative à l'espace numérique de travail des écoles d'une collectivité ou \
                  une convention tripartite relative à l'espace numérique de travail d'une école avant de provisionner";
    assert!(detail.contains(models), "{}: {detail}", db.name);
    assert!(!detail.contains("second degré") && !detail.contains("bipartite"), "{}: {detail}", db.name);

    let convention = common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": "2026-09-01"
    }));
    let (_, conv) = call(dan.post(url("/conventions")).json(&convention)).await;
    let (id, reference) = (conv["id"].as_str().unwrap(), conv["reference"].as_str().unwrap());
    let detail = refused().await;
    assert!(
        detail.contains(&format!(
            "la convention {reference}, en préparation pour cette école, reste à soumettre à signature"
        )),
        "{}: {detail}",
        db.name
    );
    call(dan.post(url(&format!("/conventions/{id}/submit"))).json(&json!({}))).await;
    let signature = common::fixtures::by_delegation(json!({}));
    assert_eq!(call(directeur.post(url(&format!("/conventions/{id}/sign"))).json(&signature)).await.0, StatusCode::OK);
    let detail = refused().await;
    let awaited = format!(
        "la convention {reference}, en signature pour cette école, attend les signatures de l'académie de Créteil et \
         de la Commune de Fresnes ; le déploiement sera possible une fois qu'elle sera signée et en vigueur"
    );
    assert!(detail.contains(&awaited), "{}: {detail}", db.name);
    assert!(!detail.contains("signez"), "{}: {detail}", db.name);
}

backend_test!(a_tenant_is_refused_without_convention_and_provisioned_once_one_is_active);
async fn a_tenant_is_refused_without_convention_and_provisioned_once_one_is_active(db: crate::common::TestDb) {
    let (_app, [dan, mairie, directeur, root]) = fresnes(&db).await;
    let url = |p: &str| format!("/api/v1{p}");

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
    let id = signed_doisneau_convention(&dan, &mairie, &directeur).await;
    let id = id.as_str();
    let (s, moved) =
        call(dan.post(url("/tenants/doisneau-fresnes/transition")).json(&json!({ "to": "provisioning" }))).await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(moved["convention_id"], id);
    let (s, bad) = call(dan.post(url("/tenants/doisneau-fresnes/transition")).json(&json!({ "to": "archived" }))).await;
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
    let slugs: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["doisneau-fresnes"], "{}", db.name);
    assert_eq!(call(mairie.get(url("/tenants/wallon-vitry"))).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(directeur.get(url("/tenants/doisneau-fresnes"))).await.0, StatusCode::OK);
    assert_eq!(
        call(directeur.post(url("/tenants")).json(&doc("x-y", "0940176F", "x.y.example.fr"))).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn bad_tenant_documents_name_every_wrong_field() {
    let db = common::sqlite().await;
    common::import_sample(&db.store).await;
    let root = TestApp::root_client_over(&db.store).await;
    let mut body = doc("Mauvais_Nom", "0940176F", "localhost");
    body["spec"]["bouquet"] = json!("socle-2d");
    body["spec"]["options"] = json!(["inconnue"]);
    let (s, p) = call(root.post("/api/v1/tenants").json(&body)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in ["metadata.name", "spec.hostname", "spec.options[0]", "spec.bouquet"] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    let mut wrong_kind = doc("t", "0940176F", "t.example.fr");
    wrong_kind["kind"] = json!("Deployment");
    assert_eq!(call(root.post("/api/v1/tenants").json(&wrong_kind)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let schema: Value = root.get("/api/v1/tenant-schema").send().await.body;
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

// A writer killed between its two renames (the folder set aside as `.old`, the new one not yet
// in place) left no folder: the next writer read no claim in it and dropped the volumes kept for
// removed services, which a GitOps sync with pruning then deletes. It puts the folder back first.
#[test]
fn a_writer_killed_between_its_two_renames_loses_no_kept_volume() {
    use entcp::provisioning::manifests::ManifestsBackend;
    use entcp::provisioning::RenderedObject;
    let root = tempfile::tempdir().unwrap();
    let object = |kind: &str, name: &str, spec: Value| RenderedObject {
        kind: kind.into(),
        name: name.into(),
        manifest: json!({ "apiVersion": "v1", "kind": kind, "metadata": { "name": name }, "spec": spec }),
    };
    let portal = object("Service", "portail", json!({ "ports": [{ "port": 80 }] }));
    let volume = object(
        "PersistentVolumeClaim",
        "visio-data",
        json!({ "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "5Gi" } } }),
    );
    ManifestsBackend::new(root.path()).apply("ecole", &[portal.clone(), volume], "v1").unwrap();
    std::fs::rename(root.path().join("ecole"), root.path().join(".ecole.old-0192f0c2")).unwrap();
    std::fs::create_dir(root.path().join(".ecole.new-0192f0c2")).unwrap();

    // The next process writes the tenant without the service: its volume stays, marked kept.
    ManifestsBackend::new(root.path()).apply("ecole", &[portal], "v2").unwrap();
    assert_eq!(files_of(root.path()), vec!["ecole"]);
    let dir = root.path().join("ecole");
    let claim = files_of(&dir).into_iter().find(|f| f.starts_with("persistentvolumeclaim-")).expect("the kept claim");
    let text = std::fs::read_to_string(dir.join(claim)).unwrap();
    assert!(text.contains(entcp::provisioning::render::RETAINED_LABEL) && text.contains("5Gi"), "{text}");
}

/// A configuration whose generated files (manifests) go to `data`.
fn config_writing_to(data: &tempfile::TempDir) -> entcp::config::Config {
    entcp::config::Config { data_dir: data.path().to_path_buf(), ..Default::default() }
}

/// The app state on `store` at [`t0`], whose generated files (manifests) go to `data`.
fn state_writing_to(store: &entcp::store::Store, data: &tempfile::TempDir) -> entcp::api::AppState {
    crate::common::app::app_state(store.clone(), config_writing_to(data), Arc::new(FixedClock::new(t0())))
}

/// Two replicas on the database of `db`, each with connections of its own, writing their
/// manifests to `data` and sharing one clock at [`t0`]: their states, the clock, and the
/// store of the second (to close at the end).
async fn two_replicas(
    db: &crate::common::TestDb,
    data: &tempfile::TempDir,
) -> (entcp::api::AppState, entcp::api::AppState, Arc<FixedClock>, entcp::store::Store) {
    let clock = Arc::new(FixedClock::new(t0()));
    let a = crate::common::app::app_state(db.store.clone(), config_writing_to(data), clock.clone());
    let other = entcp::store::Store::connect(&db.url, None).await.unwrap();
    let b = crate::common::app::app_state(other.clone(), config_writing_to(data), clock.clone());
    (a, b, clock, other)
}

backend_test!(the_reconciler_writes_manifests_only_when_the_desired_state_changes);
async fn the_reconciler_writes_manifests_only_when_the_desired_state_changes(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    let state = state_writing_to(&db.store, &data);
    let dir = data.path().join("manifests/doisneau");
    let apply = |options: Value| {
        let mut body = doc("doisneau", "0940176F", "doisneau.ent.example.fr");
        body["spec"]["options"] = options;
        let state = state.clone();
        async move {
            let doc: entcp::tenants::EntTenant = serde_json::from_value(body).unwrap();
            entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap().1
        }
    };
    let provisioning = state.provisioning();
    let pass = || entcp::provisioning::reconcile::pass(&provisioning, None, t0());
    let tenant = apply(json!([])).await;
    let first = pass().await.unwrap();
    assert!(files_of(&dir).is_empty(), "{}: nothing is deployed before the gate", db.name);
    assert_eq!(first.tenants, 1);

    let move_to = |step: entcp::tenants::Move<'static>| {
        let state = state.clone();
        async move {
            let t = entcp::tenants::get_tenant(&state.store, "doisneau").await.unwrap().unwrap();
            entcp::tenants::transition(&state.tenants(), &admin(), &t, step).await.unwrap()
        }
    };
    use entcp::tenants::{Move, Status};
    move_to(Move::to(Status::Provisioning).overriding("démonstration")).await;
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

    move_to(Move::to(Status::Active)).await;
    move_to(Move::to(Status::Suspended).because("maintenance du serveur")).await;
    pass().await.unwrap();
    let deployment =
        std::fs::read_to_string(dir.join(base.iter().find(|f| f.starts_with("deployment-")).unwrap())).unwrap();
    assert!(deployment.contains("replicas: 0"), "{deployment}");
    move_to(Move::to(Status::Decommissioning).because("fin du marché")).await;
    pass().await.unwrap();
    let left = files_of(&dir);
    assert!(left.iter().all(|f| !f.starts_with("deployment-") && !f.starts_with("ingress-")), "{left:?}");
    assert!(left.contains(&entcp::provisioning::sealed::NOTE_FILE.to_string()), "data and credentials are kept");
    let events = entcp::tenants::events(&db.store, &tenant.id).await.unwrap();
    assert!(events.iter().filter(|e| e.kind == "reconciled").count() >= 4);
}

/// Every file under `root`, with its content.
fn tree(root: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(tree(&path));
        } else {
            found.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    found
}

backend_test!(no_generated_password_is_written_in_the_gitops_folder_left_out_sealed_or_external);
async fn no_generated_password_is_written_in_the_gitops_folder_left_out_sealed_or_external(db: crate::common::TestDb) {
    use base64::Engine;
    use entcp::config::{ExternalSecretsConfig, ManifestsCredentialsConfig, ManifestsCredentialsMode, SecretStoreKind};
    common::import_sample(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    let cert = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ent-tenants/testdata/sealed-secrets.crt");
    let store = ExternalSecretsConfig {
        store_name: Some("vault-ent".into()),
        store_kind: SecretStoreKind::ClusterSecretStore,
        remote_key: "ent/{tenant}/{service}".into(),
    };
    let modes = [ManifestsCredentialsMode::Omit, ManifestsCredentialsMode::Sealed, ManifestsCredentialsMode::External];
    for mode in modes {
        let mut config = config_writing_to(&data);
        let (sealed, external) = (mode == ManifestsCredentialsMode::Sealed, mode == ManifestsCredentialsMode::External);
        config.provisioning.manifests_credentials = ManifestsCredentialsConfig {
            mode,
            sealing_cert: sealed.then(|| cert.clone()),
            external: if external { store.clone() } else { ExternalSecretsConfig::default() },
        };
        config.validate().unwrap();
        let state = crate::common::app::app_state(db.store.clone(), config, Arc::new(FixedClock::new(t0())));
        if mode == ManifestsCredentialsMode::Omit {
            let doc: entcp::tenants::EntTenant =
                serde_json::from_value(doc("doisneau", "0940176F", "doisneau.ent.example.fr")).unwrap();
            entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
            let t = entcp::tenants::get_tenant(&state.store, "doisneau").await.unwrap().unwrap();
            let to = entcp::tenants::Status::Provisioning;
            let step = entcp::tenants::Move::to(to).overriding("démonstration");
            entcp::tenants::transition(&state.tenants(), &admin(), &t, step).await.unwrap();
        }
        let report = entcp::provisioning::reconcile::pass(&state.provisioning(), None, t0()).await.unwrap();
        assert_eq!(report.applied, 1, "{mode:?}: a change of policy rewrites the folder");
        let tenant = entcp::tenants::get_tenant(&state.store, "doisneau").await.unwrap().unwrap();
        let secrets: Vec<_> = entcp::tenants::render(&state.tenants(), &tenant)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o.kind == "Secret")
            .collect();
        let mut passwords = Vec::new();
        for secret in &secrets {
            for value in secret.manifest["data"].as_object().unwrap().values() {
                let encoded = value.as_str().unwrap().to_string();
                let clear = base64::engine::general_purpose::STANDARD.decode(&encoded).unwrap();
                passwords.extend([String::from_utf8(clear).unwrap(), encoded]);
            }
        }
        assert!(secrets.len() >= 2 && passwords.len() == 2 * secrets.len(), "{mode:?}");
        let written = tree(&data.path().join("manifests"));
        for (path, content) in &written {
            for password in &passwords {
                assert!(!content.contains(password.as_str()), "{mode:?}: {} holds a password", path.display());
            }
        }
        let names: Vec<String> =
            written.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for secret in &secrets {
            let sealed_file = format!("sealedsecret-{}.yaml", secret.name);
            assert_eq!(names.contains(&sealed_file), sealed, "{mode:?}: {names:?}");
            let external_file = format!("externalsecret-{}.yaml", secret.name);
            assert_eq!(names.contains(&external_file), external, "{mode:?}: {names:?}");
        }
        let noted = names.contains(&entcp::provisioning::sealed::NOTE_FILE.to_string());
        assert_eq!(noted, mode == ManifestsCredentialsMode::Omit, "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("secret-")), "{names:?}");
    }
    // The last pass was `external`: one ExternalSecret per service's Secret, exactly.
    let folder = data.path().join("manifests").join("doisneau");
    let tenant_id = entcp::tenants::get_tenant(&db.store, "doisneau").await.unwrap().unwrap().id;
    let mut services = Vec::new();
    for (path, content) in tree(&folder) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(secret) = name.strip_prefix("externalsecret-").and_then(|n| n.strip_suffix(".yaml")) else { continue };
        let object: Value = entcp::yaml::from_str(&content).unwrap();
        let service = secret.strip_suffix("-credentials").unwrap().to_string();
        let labels = &object["metadata"]["labels"];
        assert_eq!(labels["entcp.education.fr/tenant"], tenant_id.as_str(), "{labels}");
        assert_eq!(labels["app.kubernetes.io/component"], service.as_str(), "{labels}");
        assert_eq!(
            json!({ "apiVersion": object["apiVersion"], "kind": object["kind"], "name": object["metadata"]["name"],
                    "namespace": object["metadata"]["namespace"], "spec": object["spec"] }),
            json!({
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "name": secret,
                "namespace": "ent-doisneau",
                "spec": {
                    "secretStoreRef": { "name": "vault-ent", "kind": "ClusterSecretStore" },
                    "target": {
                        "name": secret, "creationPolicy": "Owner", "deletionPolicy": "Retain",
                        "template": { "type": "Opaque", "metadata": { "labels": labels } },
                    },
                    "data": [{ "secretKey": "password", "remoteRef": { "key": format!("ent/doisneau/{service}"), "property": "password" } }],
                },
            })
        );
        services.push(service);
    }
    assert!(services.len() >= 2 && services.contains(&"portail".to_string()), "{services:?}");
}

/// The manifests folder holds exactly what `tenants render` gives for each tenant, and nothing else.
async fn assert_manifests_as_rendered(state: &entcp::api::AppState, root: &std::path::Path, slugs: &[&str]) {
    if let Some(difference) = manifests_difference(state, root, slugs).await {
        panic!("{difference}");
    }
}

/// How the manifests folder differs from what `tenants render` gives for each tenant
/// (a leftover, an error kept on a tenant, a folder's files), if it does.
pub(crate) async fn manifests_difference(
    state: &entcp::api::AppState,
    root: &std::path::Path,
    slugs: &[&str],
) -> Option<String> {
    let mut entries = files_of(root);
    entries.retain(|name| !slugs.contains(&name.as_str()));
    if !entries.is_empty() {
        return Some(format!("leftover staging folders or strangers: {entries:?}"));
    }
    for slug in slugs {
        let tenant = entcp::tenants::get_tenant(&state.store, slug).await.unwrap().unwrap();
        if let Some(error) = tenant.provisioning_state.error {
            return Some(format!("{slug}: an error stays on the tenant: {error}"));
        }
        let objects = entcp::tenants::render(&state.tenants(), &tenant).await.unwrap();
        let expected = entcp::provisioning::manifests::files(&objects).unwrap();
        let dir = root.join(slug);
        let actual: Vec<(String, String)> = files_of(&dir)
            .into_iter()
            .filter(|name| !name.starts_with('.'))
            // A file a live reconciler just replaced reads as empty: a difference, polled again.
            .map(|name| (name.clone(), std::fs::read_to_string(dir.join(&name)).unwrap_or_default()))
            .collect();
        if actual != expected {
            return Some(format!("{slug}: the folder differs from `tenants render`"));
        }
    }
    None
}

backend_test!(two_reconcilers_on_one_manifests_folder_leave_every_folder_as_rendered_and_a_damaged_one_is_repaired);
async fn two_reconcilers_on_one_manifests_folder_leave_every_folder_as_rendered_and_a_damaged_one_is_repaired(
    db: crate::common::TestDb,
) {
    common::import_sample(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    let (a, b, _, other) = two_replicas(&db, &data).await;
    let schools = [("doisneau", "0940176F"), ("wallon", "0940198E"), ("ecole-l", "0940204L"), ("ecole-s", "0940209S")];
    let slugs: Vec<&str> = schools.iter().map(|(slug, _)| *slug).collect();
    let apply_all = |options: Value| {
        let a = a.clone();
        async move {
            for (slug, uai) in schools {
                let mut body = doc(slug, uai, &format!("{slug}.ent.example.fr"));
                body["spec"]["options"] = options.clone();
                let doc: entcp::tenants::EntTenant = serde_json::from_value(body).unwrap();
                entcp::tenants::apply(&a.tenants(), &admin(), &doc, None).await.unwrap();
            }
        }
    };
    apply_all(json!([])).await;
    for slug in &slugs {
        let t = entcp::tenants::get_tenant(&db.store, slug).await.unwrap().unwrap();
        let step = entcp::tenants::Move::to(entcp::tenants::Status::Provisioning).overriding("essai");
        entcp::tenants::transition(&a.tenants(), &admin(), &t, step).await.unwrap();
    }
    let root = data.path().join("manifests");
    for round in 0..4 {
        // Each round changes every tenant, so that both reconcilers want to write them all.
        apply_all(if round % 2 == 0 { json!(["visio"]) } else { json!([]) }).await;
        let pass = |state: entcp::api::AppState| async move {
            entcp::provisioning::reconcile::pass(&state.provisioning(), None, t0()).await.unwrap()
        };
        let (ra, rb) = tokio::join!(tokio::spawn(pass(a.clone())), tokio::spawn(pass(b.clone())));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.failed + rb.failed, 0, "{} round {round}: {ra:?} {rb:?}", db.name);
        assert_eq!(ra.applied + rb.applied, 4, "{} round {round}: each tenant written once", db.name);
        assert_manifests_as_rendered(&a, &root, &slugs).await;
    }

    // A folder damaged by hand is rewritten by the next pass, though the database says « applied ».
    let dir = root.join("wallon");
    let files = files_of(&dir);
    std::fs::remove_file(dir.join(files.iter().find(|f| f.starts_with("deployment-")).unwrap())).unwrap();
    std::fs::write(dir.join(files.iter().find(|f| f.starts_with("namespace-")).unwrap()), "abîmé").unwrap();
    let repair = entcp::provisioning::reconcile::pass(&b.provisioning(), None, t0()).await.unwrap();
    assert_eq!((repair.applied, repair.failed), (1, 0), "{}: {repair:?}", db.name);
    assert_manifests_as_rendered(&a, &root, &slugs).await;
    let noop = entcp::provisioning::reconcile::pass(&a.provisioning(), None, t0()).await.unwrap();
    assert_eq!(noop.applied, 0, "{}: a repaired folder is left alone", db.name);
    other.close().await;
}

// A replica kept a tenant in its `entcp_reconcile_oldest_failure_seconds` until restart when
// another replica applied it since: it removed it only on applying it itself. Every pass now
// forgets the tenants it reads without an error.
backend_test!(a_tenant_another_replica_applied_leaves_the_oldest_failure_gauge_of_this_one);
async fn a_tenant_another_replica_applied_leaves_the_oldest_failure_gauge_of_this_one(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    let (a, b, clock, other) = two_replicas(&db, &data).await;
    let tenant: entcp::tenants::EntTenant =
        serde_json::from_value(doc("doisneau", "0940176F", "doisneau.ent.example.fr")).unwrap();
    entcp::tenants::apply(&a.tenants(), &admin(), &tenant, None).await.unwrap();
    let t = entcp::tenants::get_tenant(&db.store, "doisneau").await.unwrap().unwrap();
    let step = entcp::tenants::Move::to(entcp::tenants::Status::Provisioning).overriding("essai");
    entcp::tenants::transition(&a.tenants(), &admin(), &t, step).await.unwrap();
    // The manifests folder cannot be made: the pass of replica A fails.
    let root = data.path().join("manifests");
    std::fs::write(&root, "pas un dossier").unwrap();
    let failed = entcp::provisioning::reconcile::pass(&a.provisioning(), None, t0()).await.unwrap();
    assert_eq!(failed.failed, 1, "{}: {failed:?}", db.name);
    let gauge = "entcp_reconcile_oldest_failure_seconds{tenant=\"doisneau\"}";
    assert!(entcp::api::metrics::text(&a).contains(gauge), "{}", db.name);

    // Replica B applies it once the folder can be made (after the retry time).
    std::fs::remove_file(&root).unwrap();
    let later = t0() + chrono::Duration::hours(2);
    clock.set(later);
    let applied = entcp::provisioning::reconcile::pass(&b.provisioning(), None, later).await.unwrap();
    assert_eq!(applied.applied, 1, "{}: {applied:?}", db.name);
    let read = entcp::provisioning::reconcile::pass(&a.provisioning(), None, later).await.unwrap();
    assert_eq!((read.applied, read.failed), (0, 0), "{}: {read:?}", db.name);
    let text = entcp::api::metrics::text(&a);
    assert!(!text.contains(gauge), "{}: still failing here:\n{text}", db.name);
    other.close().await;
}

// A kubeconfig that cannot be read stopped every pass before its first tenant: nothing was
// counted (`cause="config"` never rose) and the `tenants-reconcile` job, handing its pass to
// the work queue, reported success. The failure is counted and the job's run fails.
backend_test!(a_backend_that_cannot_be_built_is_counted_as_config_and_fails_the_reconcile_job);
async fn a_backend_that_cannot_be_built_is_counted_as_config_and_fails_the_reconcile_job(db: crate::common::TestDb) {
    let data = tempfile::tempdir().unwrap();
    let mut config = config_writing_to(&data);
    config.provisioning.backend = entcp::config::ProvisioningBackend::Kube;
    config.provisioning.kube.kubeconfig = Some(data.path().join("kubeconfig-absent.yaml"));
    let state = crate::common::app::app_state(db.store.clone(), config, Arc::new(FixedClock::new(t0())));
    let refused = entcp::provisioning::reconcile::pass(&state.provisioning(), None, t0()).await.unwrap_err();
    assert!(refused.detail.contains("kubeconfig"), "{}: {}", db.name, refused.detail);
    let counted = "entcp_reconcile_errors_total{cause=\"config\"} 1";
    assert!(entcp::api::metrics::text(&state).contains(counted), "{}", db.name);

    // In `serve` the job hands its pass to the work queue: it fails all the same.
    let _queue = state.reconciler.open_queue();
    let job = entcp::api::jobs::find("tenants-reconcile").unwrap();
    let run = entcp::api::scheduler::run_now(&state, &admin(), &job, "test", t0()).await.unwrap();
    assert_eq!(run.outcome, "failure", "{}: {run:?}", db.name);
    assert!(run.message.as_deref().unwrap_or_default().contains("kubeconfig"), "{}: {run:?}", db.name);
    let counted = "entcp_reconcile_errors_total{cause=\"config\"} 2";
    assert!(entcp::api::metrics::text(&state).contains(counted), "{}", db.name);
}

/// `entctl` on the test's database and data directory.
fn entctl(data_dir: &std::path::Path, db_url: &str, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entctl"));
    for var in ["DATABASE_URL", "ENTCP_CONFIG", "ENTCP_LISTEN", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    let out = cmd
        .current_dir(data_dir)
        .env("ENTCP_DATA_DIR", data_dir)
        .env("ENTCP_DATABASE_URL", db_url)
        .env("ENTCP_LOG_LEVEL", "warn")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "entctl {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn college_doc(options: &[&str]) -> String {
    format!(
        "apiVersion: entcp.education.fr/v1\nkind: EntTenant\nmetadata:\n  name: college-essais\nspec:\n  \
         organisation: \"0940999A\"\n  hostname: essais.ent.fresnes.example.fr\n  bouquet: socle-2d\n  \
         accounts: 600\n  options: [{}]\n",
        options.join(", ")
    )
}

backend_test!(a_college_tenant_from_refusal_to_purge_with_manifests_on_disk);
/// The "Done when", for a collège of the Val-de-Marne sample (one collège row added to it).
async fn a_college_tenant_from_refusal_to_purge_with_manifests_on_disk(db: crate::common::TestDb) {
    common::import_sample_with_college(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    let state = state_writing_to(&db.store, &data);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let app = entcp::api::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dan = common::client_with(&token_for(&db.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await);
    // #15: the legal visa is given by another person than the académie's signatory.
    let juriste =
        common::client_with(&token_for(&db.store, "juriste@ac-creteil.fr", Role::Dan, Some("academie:24")).await);
    let cd = common::client_with(
        &token_for(&db.store, "ent@valdemarne.fr", Role::Collectivite, Some("departement:94")).await,
    );
    let chef = common::client_with(
        &token_for(&db.store, "principal@college.fr", Role::ChefEtablissement, Some("0940999A")).await,
    );
    let url = |p: &str| format!("{base}{p}");
    let file = data.path().join("college.yaml");
    let cli = |args: &[&str]| entctl(data.path(), &db.url, args);
    let dir = data.path().join("manifests/college-essais");
    let provisioning = state.provisioning();
    let pass = || entcp::provisioning::reconcile::pass(&provisioning, None, t0());

    // Declared from a file: created, then unchanged the second time.
    std::fs::write(&file, college_doc(&[])).unwrap();
    let first = cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(first.contains("enttenant/college-essais created"), "{}: {first}", db.name);
    let second = cli(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(second, "enttenant/college-essais unchanged\n", "{}", db.name);

    // Refused without a convention, provisioned once the tripartite second-degré convention is active.
    let to = |status: &str| json!({ "to": status });
    let (s, refused) = call_socket(dan.post(url("/tenants/college-essais/transition")).json(&to("provisioning"))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("Collège des Essais"), "{refused}");
    let convention = common::fixtures::with_signatories(json!({
        "model": "tripartite-second-degre",
        "parties": { "academie": "academie:24", "collectivite": "departement:94", "etablissement": "0940999A" },
        "start_date": "2026-09-01"
    }));
    let (s, conv) = call_socket(dan.post(url("/conventions")).json(&convention)).await;
    assert_eq!(s, StatusCode::CREATED, "{conv}");
    let id = conv["id"].as_str().unwrap();
    let step = |who: &reqwest::Client, action: &str| {
        let body = if action == "sign" { crate::common::fixtures::by_delegation(json!({})) } else { json!({}) };
        who.post(url(&format!("/conventions/{id}/{action}"))).json(&body)
    };
    for (who, action) in [(&dan, "submit"), (&juriste, "visa"), (&dan, "sign"), (&cd, "sign"), (&chef, "sign")] {
        let (s, p) = call_socket(step(who, action)).await;
        assert_eq!(s, StatusCode::OK, "{action}: {p}");
    }
    let (s, moved) = call_socket(dan.post(url("/tenants/college-essais/transition")).json(&to("provisioning"))).await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(moved["convention_id"], id);

    // Its manifests appear on disk, the 2nd-degré compulsory cahier de textes included.
    pass().await.unwrap();
    let base_files = files_of(&dir);
    for f in ["namespace-ent-college-essais.yaml", "deployment-cahier-de-textes.yaml", "ingress-ent.yaml"] {
        assert!(base_files.contains(&f.to_string()), "{f} not in {base_files:?}");
    }
    let (_, shown) = call_socket(chef.get(url("/tenants/college-essais"))).await;
    assert_eq!(shown["provisioning_state"]["observed"], "written", "{shown}");

    // An option through `entctl apply -f`, reconciled at once by the CLI: exactly its service's objects.
    std::fs::write(&file, college_doc(&["moodle"])).unwrap();
    assert!(cli(&["apply", "-f", file.to_str().unwrap()]).contains("enttenant/college-essais configured"));
    let with_option = files_of(&dir);
    let added: Vec<&String> = with_option.iter().filter(|f| !base_files.contains(f)).collect();
    assert_eq!(
        added,
        ["deployment-exercices.yaml", "persistentvolumeclaim-exercices-data.yaml", "service-exercices.yaml"],
        "{}",
        db.name
    );
    let storage = |dir: &std::path::Path| {
        let quota: Value =
            entcp::yaml::from_str(&std::fs::read_to_string(dir.join("resourcequota-quota.yaml")).unwrap()).unwrap();
        quota["spec"]["hard"]["requests.storage"].clone()
    };
    let with_volume = storage(&dir);
    std::fs::write(&file, college_doc(&[])).unwrap();
    cli(&["apply", "-f", file.to_str().unwrap()]);
    // Removing the option prunes its objects but its volume: kept, marked retained (as the kube
    // backend keeps it), and still held by the quota, until the purge.
    let claim = "persistentvolumeclaim-exercices-data.yaml";
    let mut kept = base_files.clone();
    kept.push(claim.to_string());
    kept.sort();
    assert_eq!(files_of(&dir), kept, "{}: removing the option prunes its objects, not its data", db.name);
    let retained: Value = entcp::yaml::from_str(&std::fs::read_to_string(dir.join(claim)).unwrap()).unwrap();
    assert_eq!(retained["metadata"]["labels"]["entcp.education.fr/retained"], "true", "{retained}");
    assert!(retained["metadata"]["labels"]["entcp.education.fr/tenant"].is_string(), "{retained}");
    assert!(retained["spec"]["resources"]["requests"]["storage"].is_string(), "{retained}");
    assert_eq!(storage(&dir), with_volume, "the quota holds the kept volume");

    // Suspension scales to zero; decommissioning removes the workloads and keeps the data.
    let because = |status: &str, reason: &str| json!({ "to": status, "reason": reason });
    for body in [to("active"), because("suspended", "maintenance du serveur")] {
        let (s, p) = call_socket(dan.post(url("/tenants/college-essais/transition")).json(&body)).await;
        assert_eq!(s, StatusCode::OK, "{p}");
    }
    pass().await.unwrap();
    let deployment = std::fs::read_to_string(dir.join("deployment-cahier-de-textes.yaml")).unwrap();
    assert!(deployment.contains("replicas: 0"), "{deployment}");
    let withdrawn = because("decommissioning", "fermeture du collège");
    let (s, p) = call_socket(dan.post(url("/tenants/college-essais/transition")).json(&withdrawn)).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    pass().await.unwrap();
    let left = files_of(&dir);
    assert!(left.iter().all(|f| !f.starts_with("deployment-") && !f.starts_with("service-")), "{left:?}");
    // The credentials are kept, left out of the folder and listed in its note.
    let note = std::fs::read_to_string(dir.join(entcp::provisioning::sealed::NOTE_FILE)).unwrap();
    assert!(note.contains("ent-college-essais/cahier-de-textes-credentials : password"), "{note}");
    assert!(left.contains(&"persistentvolumeclaim-cahier-de-textes-data.yaml".to_string()), "{left:?}");
    assert!(left.contains(&claim.to_string()), "the removed option's volume is still kept: {left:?}");

    // Archived: the data stays for three months, then the purge job deletes it, audited.
    call_socket(dan.post(url("/tenants/college-essais/transition")).json(&to("archived"))).await;
    let (s, p) = call_socket(dan.post(url("/tenants/college-essais/transition")).json(&to("purged"))).await;
    assert_eq!(s, StatusCode::CONFLICT, "only the retention job purges: {p}");
    pass().await.unwrap();
    let purge = |days: i64| entcp::provisioning::purge::purge_due(&provisioning, t0() + chrono::Duration::days(days));
    assert!(purge(85).await.unwrap().is_empty());
    assert!(!files_of(&dir).is_empty(), "kept during the retention period");
    // An RGPD request of its organisation still unanswered holds the purge (said once on the
    // tenant), until it is answered.
    sqlx::query(
        "INSERT INTO rgpd_requests (id, reference, org_id, kind, requester, received_on, due_on, status, created_by, \
         created_at, updated_at) SELECT 'req-1', 'DEM-2026-000001', org_id, 'access', 'Parent d''élève', '2026-11-20', \
         '2026-12-20', 'received', 'test', '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z' FROM tenants \
         WHERE slug = 'college-essais'",
    )
    .execute(db.store.pool())
    .await
    .unwrap();
    for day in [95, 96] {
        assert!(purge(day).await.unwrap().is_empty(), "{}: held by the request", db.name);
    }
    assert!(!files_of(&dir).is_empty(), "kept while held");
    let (_, events) = call_socket(dan.get(url("/tenants/college-essais/events"))).await;
    let held: Vec<&Value> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "purge_held").collect();
    assert_eq!(held.len(), 1, "{}: {events}", db.name);
    // Said to every reader of the tenant without the RGPD log's figures.
    let said = held[0]["message"].as_str().unwrap();
    assert!(said.contains("demandes RGPD de l'organisation en cours") && !said.contains('1'), "{events}");
    // Held 60 days past its due date at most: the retention period is a legal bound.
    assert!(purge(140).await.unwrap().is_empty(), "{}: still held", db.name);
    assert_eq!(purge(160).await.unwrap(), ["college-essais"]);
    assert!(files_of(&dir).is_empty(), "{}: purged", db.name);
    let (_, purged) = call_socket(dan.get(url("/tenants/college-essais"))).await;
    assert_eq!(purged["status"], "purged");
    assert!(purged["provisioning_state"]["purged_at"].is_string(), "{purged}");
    let (_, events) = call_socket(dan.get(url("/tenants/college-essais/events"))).await;
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "purged"), "{events}");
    let said = |e: &Value| e["message"].as_str().unwrap_or_default().to_string();
    assert!(events.as_array().unwrap().iter().any(|e| said(e) == "en retrait → archivé"), "in French: {events}");
    let filter = entcp::audit::AuditFilter { actor: Some("system:tenants-purge".into()), ..Default::default() };
    let audited = entcp::audit::list(&db.store, &filter, None).await.unwrap().items;
    // The purge, then (newest first) the attestation its reconcile issued once the manifests were gone.
    let actions: Vec<&str> = audited.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["tenants.destruction_attested", "tenants.purge"]);
    assert!(purge(200).await.unwrap().is_empty(), "purged once");
    // A purged ENT takes no more tickets: nothing is left to look at.
    let ticket = json!({ "tenant": "college-essais", "subject": "Accès", "description": "Après la purge.",
        "category": "acces", "impact": "haute", "urgency": "haute" });
    let (s, refused) = call_socket(chef.post(url("/support/tickets")).json(&ticket)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {refused}", db.name);
    assert!(refused["detail"].as_str().unwrap().contains("purgé"), "{refused}");
}

backend_test!(a_move_decided_on_a_stale_reading_is_refused);
/// Two moves decided on the same reading: the second is refused, so a suspended tenant sent
/// back to `active` cannot also be decommissioned (or the reverse) by a concurrent request.
async fn a_move_decided_on_a_stale_reading_is_refused(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let config = entcp::config::Config { data_dir: dir.path().into(), ..entcp::config::Config::default() };
    let state = crate::common::app::app_state(db.store.clone(), config, Arc::new(FixedClock::new(t0())));
    let body = doc("doisneau-fresnes", "0940176F", "doisneau.ent.fresnes.example.fr");
    let doc: entcp::tenants::EntTenant = serde_json::from_value(body).unwrap();
    let (_, t) = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    use entcp::tenants::{transition, Move, Status};
    let t =
        transition(&state.tenants(), &admin(), &t, Move::to(Status::Provisioning).overriding("essai")).await.unwrap();
    let t = transition(&state.tenants(), &admin(), &t, Move::to(Status::Active)).await.unwrap();
    let suspend = Move::to(Status::Suspended).because("maintenance");
    let stale = transition(&state.tenants(), &admin(), &t, suspend).await.unwrap();
    transition(&state.tenants(), &admin(), &stale, Move::to(Status::Active)).await.unwrap();
    // With its reason: refused for the stale reading, not for a missing reason.
    let withdraw = Move::to(Status::Decommissioning).because("fin du marché");
    let err = transition(&state.tenants(), &admin(), &stale, withdraw).await.unwrap_err();
    assert!(err.detail.contains("a changé d'état"), "{}: {err:?}", db.name);
    let now = entcp::tenants::get_tenant(&db.store, "doisneau-fresnes").await.unwrap().unwrap();
    assert_eq!(now.status, entcp::tenants::Status::Active, "{}", db.name);
}

backend_test!(a_provisioned_tenants_volumes_never_shrink);
async fn a_provisioned_tenants_volumes_never_shrink(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let root = TestApp::root_client_over(&db.store).await;
    let url = |p: &str| format!("/api/v1{p}");
    let sized = |slug: &str, school: &str, accounts: i64| {
        let mut body = doc(slug, school, &format!("{slug}.ent.example.fr"));
        body["spec"]["accounts"] = json!(accounts);
        body
    };

    // Not provisioned yet: no volume exists, the size may go down.
    assert_eq!(call(root.post(url("/tenants")).json(&sized("wallon", "0940198E", 3000))).await.0, StatusCode::CREATED);
    let smaller = root.put_tenant(&sized("wallon", "0940198E", 900)).await;
    assert_eq!(
        (smaller.status, smaller.body["result"].as_str()),
        (200, Some("configured")),
        "{}: {smaller:?}",
        db.name
    );

    assert_eq!(
        call(root.post(url("/tenants")).json(&sized("doisneau", "0940176F", 3000))).await.0,
        StatusCode::CREATED
    );
    let (s, moved) = call(
        root.post(url("/tenants/doisneau/transition"))
            .json(&json!({ "to": "provisioning", "override_reason": "volumes" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}: {moved}", db.name);
    let refused = root.put_tenant(&sized("doisneau", "0940176F", 900)).await;
    assert_eq!(refused.status, 422, "{}: {refused:?}", db.name);
    let refused = refused.body;
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("ne peut pas rétrécir") && detail.contains("Gio → "), "{}: {refused}", db.name);
    assert!(detail.contains("au moins 2001 comptes"), "{}: {refused}", db.name);
    let (_, tenant) = call(root.get(url("/tenants/doisneau"))).await;
    assert_eq!(tenant["accounts"], 3000, "{}: the refused change left the tenant as it was", db.name);
    // Within the same thousand, or larger: accepted.
    for accounts in [2001, 3500] {
        let grown = root.put_tenant(&sized("doisneau", "0940176F", accounts)).await;
        assert_eq!(grown.status, 200, "{}: {accounts}: {grown:?}", db.name);
    }
}

// `POST /tenants` creates: sent again unchanged (a retry) it answers `unchanged`; a different
// document for an existing slug is refused (409), so that an edit made meanwhile with `PUT`
// and `If-Match` is not overwritten unseen. Creations of one slug raced from several clients
// make one tenant, the others told the slug is taken (not that their hostname is).
backend_test!(a_post_creates_and_never_overwrites_an_edit_and_a_raced_slug_is_named_as_taken);
async fn a_post_creates_and_never_overwrites_an_edit_and_a_raced_slug_is_named_as_taken(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let root = TestApp::root_client_over(&db.store).await;
    let first = doc("doisneau", "0940176F", "doisneau.ent.example.fr");
    assert_eq!(call(root.post("/api/v1/tenants").json(&first)).await.0, StatusCode::CREATED, "{}", db.name);
    let (s, again) = call(root.post("/api/v1/tenants").json(&first)).await;
    assert_eq!((s, again["result"].as_str()), (StatusCode::OK, Some("unchanged")), "{}: {again}", db.name);
    let mut edited = first.clone();
    edited["spec"]["options"] = json!([]);
    assert_eq!(root.put_tenant(&edited).await.status, 200, "{}", db.name);
    let (s, refused) = call(root.post("/api/v1/tenants").json(&first)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {refused}", db.name);
    assert!(refused["detail"].as_str().unwrap().contains("PUT"), "{}: {refused}", db.name);
    let (_, tenant) = call(root.get("/api/v1/tenants/doisneau")).await;
    assert_eq!(tenant["options"], json!([]), "{}: the edit is kept", db.name);

    let raced = (1..=6).map(|n| {
        let root = root.clone();
        tokio::spawn(async move {
            let body = doc("meme-nom", "0940198E", &format!("ent-{n}.example.fr"));
            call(root.post("/api/v1/tenants").json(&body)).await
        })
    });
    let mut created = 0;
    for answer in raced.collect::<Vec<_>>() {
        let (s, body) = answer.await.unwrap();
        match s {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                let detail = body["detail"].as_str().unwrap();
                assert!(detail.contains("meme-nom") && !detail.contains("nom d'hôte"), "{}: {body}", db.name);
            }
            other => panic!("{}: {other} {body}", db.name),
        }
    }
    assert_eq!(created, 1, "{}", db.name);
}

// A `PUT` that would give a tenant the hostname another one serves is told so, as a `POST`
// is, not sent to re-read and retry as after a concurrent change; the tenant is left as it was.
backend_test!(a_put_to_a_hostname_another_tenant_serves_is_refused_as_taken);
async fn a_put_to_a_hostname_another_tenant_serves_is_refused_as_taken(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let root = TestApp::root_client_over(&db.store).await;
    for (slug, uai, host) in
        [("doisneau", "0940176F", "doisneau.ent.example.fr"), ("autre", "0940198E", "autre.example.fr")]
    {
        let (s, body) = call(root.post("/api/v1/tenants").json(&doc(slug, uai, host))).await;
        assert_eq!(s, StatusCode::CREATED, "{}: {body}", db.name);
    }
    let refused = root.put_tenant(&doc("doisneau", "0940176F", "autre.example.fr")).await;
    assert_eq!(refused.status, 409, "{}: {refused:?}", db.name);
    let detail = refused.body["detail"].as_str().unwrap();
    assert_eq!(detail, "le nom d'hôte autre.example.fr sert déjà un autre tenant", "{}", db.name);
    let (_, tenant) = call(root.get("/api/v1/tenants/doisneau")).await;
    assert_eq!(tenant["hostname"], "doisneau.ent.example.fr", "{}: left as it was", db.name);
}

// A deployed tenant is served, and certified, under its hostname: the mairie that declares it
// may rename it while it is only requested, never once deployed (any name would do: the
// rectorat's, another commune's); the DAN decides that move, as it decided the deployment.
backend_test!(a_deployed_tenant_s_hostname_is_changed_by_the_dan_not_by_the_collectivite);
async fn a_deployed_tenant_s_hostname_is_changed_by_the_dan_not_by_the_collectivite(db: crate::common::TestDb) {
    let (_app, [dan, mairie, _, root]) = fresnes(&db).await;
    let url = |p: &str| format!("/api/v1{p}");
    let named = |host: &str| doc("doisneau", "0940176F", host);
    let (s, created) = call(mairie.post(url("/tenants")).json(&named("doisneau.ent.fresnes.fr"))).await;
    assert_eq!(s, StatusCode::CREATED, "{}: {created}", db.name);
    let renamed = mairie.put_tenant(&named("ent-doisneau.fresnes.fr")).await;
    assert_eq!(
        (renamed.status, renamed.body["result"].as_str()),
        (200, Some("configured")),
        "{}: {renamed:?}",
        db.name
    );

    let moved = json!({ "to": "provisioning", "override_reason": "essai du nom d'hôte" });
    let (s, body) = call(root.post(url("/tenants/doisneau/transition")).json(&moved)).await;
    assert_eq!(s, StatusCode::OK, "{}: {body}", db.name);
    let refused = mairie.put_tenant(&named("ent-pilotage.ac-creteil.fr")).await;
    assert_eq!(refused.status, 403, "{}: {refused:?}", db.name);
    let refused = refused.body;
    assert!(refused["detail"].as_str().unwrap().contains("ent-doisneau.fresnes.fr"), "{}: {refused}", db.name);
    let (_, tenant) = call(mairie.get(url("/tenants/doisneau"))).await;
    assert_eq!(tenant["hostname"], "ent-doisneau.fresnes.fr", "{}: left as it was", db.name);
    // Another change of the same document (an option) is still the mairie's.
    let mut more = named("ent-doisneau.fresnes.fr");
    more["spec"]["options"] = json!([]);
    let body = mairie.put_tenant(&more).await;
    assert_eq!(body.status, 200, "{}: {body:?}", db.name);
    let body = dan.put_tenant(&named("doisneau.ent.fresnes.fr")).await;
    assert_eq!(body.status, 200, "{}: the DAN moves it: {body:?}", db.name);
}

backend_test!(a_commune_tenant_with_one_uncovered_ecole_stays_requested_until_an_audited_override_names_it);
async fn a_commune_tenant_with_one_uncovered_ecole_stays_requested_until_an_audited_override_names_it(
    db: crate::common::TestDb,
) {
    let (_app, [dan, mairie, directeur, root]) = fresnes(&db).await;
    let url = |p: &str| format!("/api/v1{p}");
    let commune = entcp::registry::resolve_org(&db.store, "commune:94034").await.unwrap();
    let ecoles: Vec<String> = entcp::conventions::covered_etablissements(&db.store, &commune)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.code)
        .collect();
    assert!(ecoles.len() > 1 && ecoles.contains(&"0940176F".to_string()), "{ecoles:?}");

    // A tripartite convention in force for one école of Fresnes (naming the commune as party).
    signed_doisneau_convention(&dan, &mairie, &directeur).await;

    let body = doc("ecoles-fresnes", "commune:94034", "ecoles.ent.fresnes.example.fr");
    assert_eq!(call(mairie.post(url("/tenants")).json(&body)).await.0, StatusCode::CREATED);
    let move_to = |who: &Client, body: Value| who.post(url("/tenants/ecoles-fresnes/transition")).json(&body);
    let (s, refused) = call(move_to(&dan, json!({ "to": "provisioning" }))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{}: {refused}", db.name);
    let uncovered: Vec<&str> = refused["uncovered"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(uncovered.len(), ecoles.len() - 1, "{refused}");
    assert!(!uncovered.contains(&"0940176F"), "the covered école is not listed");
    assert!(refused["detail"].as_str().unwrap().contains("aucune convention en vigueur"), "{refused}");
    let (_, tenant) = call(dan.get(url("/tenants/ecoles-fresnes"))).await;
    assert_eq!(tenant["status"], "requested");

    // An admin's override names the uncovered écoles, on the tenant and in the audit.
    let reason = "rentrée, conventions en cours";
    let (s, forced) = call(move_to(&root, json!({ "to": "provisioning", "override_reason": reason }))).await;
    assert_eq!(s, StatusCode::OK, "{forced}");
    assert_eq!(forced["gate_override"]["uncovered"].as_array().unwrap().len(), uncovered.len(), "{forced}");
    let audit = entcp::audit::list(
        &db.store,
        &entcp::audit::AuditFilter {
            target_id: forced["id"].as_str().map(Into::into),
            limit: Some(10),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    let summary = audit.items.iter().map(|r| r.summary.to_string()).collect::<Vec<_>>().join(" ");
    assert!(uncovered.iter().all(|u| summary.contains(u)), "{summary}");
}

/// Copies the tenant `model` onto every other établissement (as the national bench does).
async fn one_tenant_per_etablissement(store: &entcp::store::Store, model: &str) {
    sqlx::query(
        "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
         spec_hash, version, created_at, updated_at, secret_seed) \
         SELECT 'p-' || o.id, 'p-' || lower(o.code), o.id, 'p-' || lower(o.code) || '.ent.example.fr', t.base_bouquet, \
         t.options, t.accounts, t.identity_source, t.status, t.spec_hash, 1, t.created_at, t.updated_at, t.secret_seed \
         FROM orgs o, tenants t WHERE o.kind = 'etablissement' AND t.slug = $1 AND o.id <> t.org_id",
    )
    .bind(model)
    .execute(store.pool())
    .await
    .unwrap();
}

/// Every slug of `GET /api/v1/tenants{query}` page after page, and how many pages.
async fn walk_tenant_pages(client: &Client, query: &str) -> (Vec<String>, usize) {
    let (mut slugs, mut pages, mut cursor) = (Vec::new(), 0, String::new());
    loop {
        let sep = if query.is_empty() { "?" } else { "&" };
        let (s, page) = call(client.get(format!("/api/v1/tenants{query}{sep}cursor={cursor}"))).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        pages += 1;
        slugs.extend(page["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return (slugs, pages),
        }
    }
}

backend_test!(the_tenant_list_pages_through_hundreds_of_tenants_each_once_within_the_scope);
async fn the_tenant_list_pages_through_hundreds_of_tenants_each_once_within_the_scope(db: crate::common::TestDb) {
    common::fixtures::synthetic_annuaire(&db.store, 300, 60, 5).await;
    let app = TestApp::over(&db.store).build().await;
    let root = app.client(&token_for(&db.store, "root@test.fr", Role::Admin, None).await);
    let (first,): (String,) =
        sqlx::query_as("SELECT code FROM orgs WHERE kind = 'etablissement' ORDER BY code LIMIT 1")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(
        call(root.post("/api/v1/tenants").json(&doc("modele", &first, "modele.ent.example.fr"))).await.0,
        StatusCode::CREATED
    );
    one_tenant_per_etablissement(&db.store, "modele").await;
    let all: Vec<(String, String)> =
        sqlx::query_as("SELECT t.slug, o.academie_code FROM tenants t JOIN orgs o ON o.id = t.org_id ORDER BY t.slug")
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    assert!(all.len() > 250, "{}", all.len());

    // The admin walks every tenant, each exactly once, in slug order, 37 a page.
    let (slugs, pages) = walk_tenant_pages(&root, "?limit=37").await;
    let expected: Vec<String> = all.iter().map(|(slug, _)| slug.clone()).collect();
    assert_eq!(slugs, expected, "{}", db.name);
    assert_eq!(pages, all.len().div_ceil(37));

    // A DAN's pages hold only its académie's tenants, all of them: the scope is applied before paging.
    let (academie, count): (String, i64) = sqlx::query_as(
        "SELECT o.academie_code, COUNT(*) FROM tenants t JOIN orgs o ON o.id = t.org_id \
         GROUP BY o.academie_code ORDER BY COUNT(*) DESC, o.academie_code LIMIT 1",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert!(count > 10 && (count as usize) < all.len(), "{count}");
    let dan = app.client(&token_for(&db.store, "dan@test.fr", Role::Dan, Some(&format!("academie:{academie}"))).await);
    let (slugs, pages) = walk_tenant_pages(&dan, "?limit=10").await;
    let expected: Vec<String> = all.iter().filter(|(_, a)| *a == academie).map(|(slug, _)| slug.clone()).collect();
    assert_eq!(slugs, expected, "{}", db.name);
    assert_eq!(pages, expected.len().div_ceil(10));

    // The status filter applies before paging too; the page size is bounded.
    sqlx::query("UPDATE tenants SET status = 'suspended' WHERE slug IN ($1, $2)")
        .bind(&expected[0])
        .bind(&expected[expected.len() - 1])
        .execute(db.store.pool())
        .await
        .unwrap();
    let (slugs, _) = walk_tenant_pages(&dan, "?status=suspended&limit=1").await;
    assert_eq!(slugs, vec![expected[0].clone(), expected[expected.len() - 1].clone()]);
    for limit in ["0", "501"] {
        let (s, problem) = call(root.get(format!("/api/v1/tenants?limit={limit}"))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    }
}

backend_test!(a_purged_tenants_name_is_refused_409_naming_the_purge_through_the_api_and_entctl_apply);
async fn a_purged_tenants_name_is_refused_409_naming_the_purge_through_the_api_and_entctl_apply(
    db: crate::common::TestDb,
) {
    common::import_sample(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    let state = state_writing_to(&db.store, &data);
    let doc = |hostname: &str| {
        json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "doisneau" },
                "spec": { "organisation": "0940176F", "hostname": hostname, "bouquet": "socle-1d" } })
    };
    // A tenant through its whole life, purged at the end of its retention period.
    let first: entcp::tenants::EntTenant = serde_json::from_value(doc("doisneau.ent.fresnes.fr")).unwrap();
    let (_, mut tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &first, None).await.unwrap();
    use entcp::tenants::Move;
    use entcp::tenants::Status;
    for step in [
        Move::to(Status::Provisioning).overriding("essai"),
        Move::to(Status::Active),
        Move::to(Status::Decommissioning).because("fermeture de l'école"),
        Move::to(Status::Archived),
    ] {
        tenant = entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
    }
    let later = t0() + chrono::Duration::days(95);
    assert_eq!(entcp::provisioning::purge::purge_due(&state.provisioning(), later).await.unwrap(), ["doisneau"]);
    let purged = entcp::tenants::get_tenant(&db.store, "doisneau").await.unwrap().unwrap();
    assert_eq!(purged.status, Status::Purged);

    // Declared again through the API, with a new spec or the same: 409 naming the purge.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let app = entcp::api::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let root = common::client_with(&token_for(&db.store, "root@test.fr", Role::Admin, None).await);
    for hostname in ["nouveau.ent.fresnes.fr", "doisneau.ent.fresnes.fr"] {
        let resp = root.post(format!("{base}/tenants")).json(&doc(hostname)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT, "{}", db.name);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/problem+json"));
        let body: Value = resp.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("le tenant doisneau a été purgé le"), "{body}");
        assert!(detail.contains("choisissez-en un autre"), "{body}");
        assert_eq!(body["purged_at"], json!(purged.provisioning_state.purged_at), "{body}");
    }

    // And through `entctl apply -f`: refused, the same words, nothing changed.
    let file = data.path().join("doisneau.yaml");
    std::fs::write(&file, entcp::yaml::to_string(&doc("nouveau.ent.fresnes.fr")).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entctl"))
        .env_remove("DATABASE_URL")
        .env_remove("ENTCP_CONFIG")
        .env_remove("ENTCP_LISTEN")
        .env_remove("RUST_LOG")
        .current_dir(data.path())
        .env("ENTCP_DATA_DIR", data.path())
        .env("ENTCP_DATABASE_URL", &db.url)
        .env("ENTCP_LOG_LEVEL", "warn")
        .args(["apply", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}: {stderr}", db.name);
    assert!(stderr.contains("enttenant/doisneau") && stderr.contains("a été purgé"), "{stderr}");
    let after = entcp::tenants::get_tenant(&db.store, "doisneau").await.unwrap().unwrap();
    assert_eq!((after.status, after.version, after.hostname), (Status::Purged, purged.version, purged.hostname));
}

// A bouquet refusal was reported under `spec.base`, a field the document does not have (the
// catalog's name for the base bouquet), and an option's under `spec.options` as a whole. Each
// now names the document's field at fault: `spec.bouquet`, or `spec.options[i]` for the option at
// index `i` — over the API and in `entctl apply -f`'s message alike.
backend_test!(a_bouquet_or_option_refusal_names_the_field_at_fault_over_the_api_and_the_command_line);
async fn a_bouquet_or_option_refusal_names_the_field_at_fault_over_the_api_and_the_command_line(
    db: crate::common::TestDb,
) {
    common::import_sample(&db.store).await;
    let root = TestApp::root_client_over(&db.store).await;
    let refused = async |bouquet: &str, options: Value| {
        let mut body = doc("doisneau", "0940176F", "doisneau.ent.fresnes.example.fr");
        body["spec"]["bouquet"] = json!(bouquet);
        body["spec"]["options"] = options;
        let (s, p) = call(root.post("/api/v1/tenants").json(&body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {p}", db.name);
        let errors = p["errors"].as_array().unwrap().iter();
        errors.map(|e| (e["field"].as_str().unwrap().to_string(), e["message"].as_str().unwrap().to_string())).collect()
    };
    // A sound base, options at fault: each named at its index, the base never.
    let errors: Vec<(String, String)> = refused("socle-1d", json!(["moodle", "karaoke", "vie-scolaire"])).await;
    let named: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(named, ["spec.options[1]", "spec.options[2]"], "{}: {errors:?}", db.name);
    assert!(errors[0].1.contains("option inconnue « karaoke »"), "{}: {errors:?}", db.name);
    assert!(errors[1].1.contains("« vie-scolaire » n'est pas proposée dans le premier degré"), "{errors:?}");
    // An option asked twice is named at its second place (stored once, rendered once).
    let errors: Vec<(String, String)> = refused("socle-1d", json!(["visio", "moodle", "visio"])).await;
    assert_eq!(errors.len(), 1, "{}: {errors:?}", db.name);
    assert_eq!(errors[0].0, "spec.options[2]", "{}: {errors:?}", db.name);
    assert!(errors[0].1.contains("option « visio » déjà demandée (spec.options[0])"), "{}: {errors:?}", db.name);
    // The base at fault: `spec.bouquet`, the document's field, never `spec.base`.
    for (bouquet, said) in [("socle-3d", "bouquet inconnu « socle-3d »"), ("visio", "« visio » est une option")] {
        let errors = refused(bouquet, json!([])).await;
        assert!(errors.iter().all(|(f, _)| f == "spec.bouquet"), "{}: {bouquet}: {errors:?}", db.name);
        assert!(errors.iter().any(|(_, m)| m.contains(said)), "{}: {bouquet}: {errors:?}", db.name);
    }

    // `entctl apply -f` says the same fields.
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("doisneau.yaml");
    let yaml = |bouquet: &str, options: &str| {
        format!(
            "apiVersion: entcp.education.fr/v1\nkind: EntTenant\nmetadata:\n  name: doisneau\nspec:\n  \
             organisation: \"0940176F\"\n  hostname: doisneau.ent.fresnes.example.fr\n  bouquet: {bouquet}\n  \
             options: [{options}]\n"
        )
    };
    std::fs::write(&file, yaml("socle-1d", "moodle, karaoke")).unwrap();
    let (ok, said) = common::entctl(&db.url, &["apply", "-f", file.to_str().unwrap()]);
    assert!(!ok, "{}: {said}", db.name);
    assert!(said.contains("spec.options[1] : option inconnue « karaoke »"), "{}: {said}", db.name);
    assert!(!said.contains("spec.base") && !said.contains("spec.bouquet"), "{}: {said}", db.name);
    std::fs::write(&file, yaml("socle-3d", "")).unwrap();
    let (ok, said) = common::entctl(&db.url, &["apply", "-f", file.to_str().unwrap()]);
    assert!(!ok, "{}: {said}", db.name);
    assert!(said.contains("spec.bouquet : bouquet inconnu « socle-3d »"), "{}: {said}", db.name);
    assert!(!said.contains("spec.base"), "{}: {said}", db.name);
}

backend_test!(a_bouquet_of_the_wrong_degree_names_the_school_with_its_elision);
/// A second-degree bouquet for an école: the refusal reads « au degré d'Ecole élémentaire
/// Robert Doisneau », never « de Ecole ».
async fn a_bouquet_of_the_wrong_degree_names_the_school_with_its_elision(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let root = TestApp::root_client_over(&db.store).await;
    let mut body = doc("doisneau", "0940176F", "doisneau.example.fr");
    body["spec"]["bouquet"] = json!("socle-2d");
    let (s, p) = call(root.post("/api/v1/tenants").json(&body)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {p}", db.name);
    let bouquet = p["errors"].as_array().unwrap().iter().find(|e| e["field"] == "spec.bouquet").expect("spec.bouquet");
    assert_eq!(
        bouquet["message"], "le bouquet socle-2d ne convient pas au degré d'Ecole élémentaire Robert Doisneau",
        "{}: {p}",
        db.name
    );
}
