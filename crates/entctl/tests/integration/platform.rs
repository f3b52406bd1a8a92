//! Foundation II behaviour over HTTP and in the store, on both backends:
//! scoped lists, optimistic concurrency, idempotency keys, the audit chain,
//! metrics and the OpenAPI security description.

use crate::common;

use axum::http::StatusCode;
use common::app::Client;
use common::TestApp;
use common::{admin, t0, token_for};
use entcp::audit::{self, Verification};
use entcp::clock::FixedClock;
use entcp::identity::password::{self, LinkPurpose};
use entcp::identity::{self, NewUser};
use entcp::kernel::roles::Role;
use serde_json::{json, Value};
use std::sync::Arc;

async fn import_sample(store: &entcp::store::Store) {
    common::import_sample(store).await;
}

/// The sample (académie 24) plus a synthetic country, so that other académies exist.
async fn import_country(store: &entcp::store::Store) {
    import_sample(store).await;
    common::fixtures::synthetic_annuaire(store, 1200, 200, 5).await;
}

async fn all_pages(client: &Client, url: &str) -> Vec<Value> {
    common::items_of(&common::pages(&format!("{url}&limit=500"), |page| client.get(page)).await)
}

backend_test!(a_dan_lists_only_its_academie_and_a_commune_officer_only_its_ecoles);
async fn a_dan_lists_only_its_academie_and_a_commune_officer_only_its_ecoles(db: crate::common::TestDb) {
    import_country(&db.store).await;
    let app = TestApp::over(&db.store).build().await;
    let dan = app.client(&token_for(&db.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await);
    let schools = all_pages(&dan, "/api/v1/orgs?kind=etablissement").await;
    assert!(schools.len() >= 613, "{}: {}", db.name, schools.len());
    assert!(schools.iter().all(|o| o["academie_code"] == "24"), "{}: a school of another académie leaked", db.name);

    let admin_client = app.root_client().await;
    let everything = all_pages(&admin_client, "/api/v1/orgs?kind=etablissement").await;
    assert!(everything.len() > schools.len(), "other académies exist, so the filter did something");

    let fresnes =
        app.client(&token_for(&db.store, "mairie@fresnes.fr", Role::Collectivite, Some("commune:94034")).await);
    let visible = all_pages(&fresnes, "/api/v1/orgs?q=").await;
    assert!(visible.iter().any(|o| o["code"] == "0940176F"));
    assert!(
        visible.iter().all(|o| o["code"] == "94034" || (o["commune_code"] == "94034" && o["degree"] == "1D")),
        "{}: the commune sees itself and its écoles only",
        db.name
    );
    let out = fresnes.get("/api/v1/orgs/0940198E").send().await;
    assert_eq!(out.status, StatusCode::NOT_FOUND, "an école of Vitry is not revealed to Fresnes");
}

backend_test!(updates_need_the_current_etag);
async fn updates_need_the_current_etag(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    let client = TestApp::root_client_over(&db.store).await;
    let url = "/api/v1/orgs/0940176F".to_string();
    let read = client.get(&url).send().await;
    let etag = read.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"1\"");

    let missing = client.patch(&url).json(&json!({"email": "a@b.fr"})).send().await;
    assert_eq!(missing.status, StatusCode::PRECONDITION_REQUIRED);
    let ok = client.patch(&url).header("if-match", &etag).json(&json!({"email": "ce@ecole.fr"})).send().await;
    assert_eq!(ok.status, StatusCode::OK, "{}", db.name);
    assert_eq!(ok.headers["etag"], "\"2\"");
    let stale = client.patch(&url).header("if-match", &etag).json(&json!({"email": "autre@ecole.fr"})).send().await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let body: Value = stale.json();
    assert_eq!(body["type"], "urn:entcp:problem:precondition-failed");
    assert_eq!(body["current_version"], 2);
    let now: Value = client.get(&url).send().await.json();
    assert_eq!(now["email"], "ce@ecole.fr", "the stale write changed nothing");
    // A patch that changes nothing writes nothing: no new version to fail others' If-Match,
    // no audit record; a stale one is still refused.
    let audited = || common::audited(&db.store, "orgs.update");
    let before = audited().await;
    for same in [json!({}), json!({"email": "ce@ecole.fr"})] {
        let kept = client.patch(&url).header("if-match", "\"2\"").json(&same).send().await;
        assert_eq!((kept.status, kept.header("etag")), (200, Some("\"2\"")), "{}: {}", db.name, kept.text);
    }
    assert_eq!(audited().await, before, "{}", db.name);
    let stale = client.patch(&url).header("if-match", "\"1\"").json(&json!({})).send().await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", db.name);

    let rename = client.patch(&url).header("if-match", "\"2\"").json(&json!({"name": "Autre nom"})).send().await;
    assert_eq!(rename.status, StatusCode::UNPROCESSABLE_ENTITY, "annuaire names are not edited by hand");
}

backend_test!(an_idempotency_key_replays_the_first_creation);
async fn an_idempotency_key_replays_the_first_creation(db: crate::common::TestDb) {
    let client = TestApp::root_client_over(&db.store).await;
    let post = |body: Value| client.post("/api/v1/orgs").header("idempotency-key", "creation-42").json(&body).send();
    let body = json!({"kind": "editeur", "siren": "552100554", "name": "Éditeur"});
    let first = post(body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", db.name);
    let first: Value = first.json();
    let again = post(body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let again: Value = again.json();
    assert_eq!(again["id"], first["id"], "the same organisation, not a second one");
    let other = post(json!({"kind": "editeur", "siren": "732829320", "name": "Autre"})).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    let other: Value = other.json();
    assert_eq!(other["type"], "urn:entcp:problem:idempotency-key-reused");
    assert_eq!(common::count_kind(&db.store, "editeur").await, 1);
}

/// Holds the writes the idempotency layer needs (SQLite: the write lock; PostgreSQL:
/// inserts into `idempotency_keys`) until the returned transaction ends.
async fn block_idempotency_writes(db: &common::TestDb) -> entcp::store::Tx {
    let mut tx = db.store.begin_write().await.unwrap();
    if db.store.backend() == entcp::store::Backend::Postgres {
        sqlx::query("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
    }
    tx
}

/// Waits until a request is stuck on the blocked writes inside the server.
async fn wait_for_a_blocked_request(db: &common::TestDb) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let mut seen = 0;
    while seen < 20 {
        assert!(std::time::Instant::now() < deadline, "{}: the request never reached the database", db.name);
        let blocked = match db.store.backend() {
            entcp::store::Backend::Postgres => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                     WHERE NOT l.granted AND d.datname = current_database()",
                )
                .fetch_one(db.store.pool())
                .await
                .unwrap()
                    > 0
            }
            // The blocker holds one connection; the waiting request another.
            entcp::store::Backend::Sqlite => db.store.pool().size() as usize - db.store.pool().num_idle() >= 2,
        };
        seen = if blocked { seen + 1 } else { 0 };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

backend_test!(an_idempotent_post_retried_after_a_client_timeout_returns_the_original_result);
async fn an_idempotent_post_retried_after_a_client_timeout_returns_the_original_result(db: crate::common::TestDb) {
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
    let client = common::client_with(&token_for(&db.store, "root@test.fr", Role::Admin, None).await);
    // A first call records the token's use: later calls do not write while authenticating.
    // Concurrent calls open the pool's connections now rather than while writes are held.
    let me = || client.get(format!("{base}/api/v1/me")).send();
    me().await.unwrap();
    let _ = tokio::join!(me(), me(), me(), me());
    let body = json!({"kind": "editeur", "siren": "552100554", "name": "Éditeur"});
    let post = || client.post(format!("{base}/api/v1/orgs")).header("idempotency-key", "lente-1").json(&body);

    // The first attempt waits on the database; the client gives up and hangs up.
    let blocker = block_idempotency_writes(&db).await;
    let first = tokio::spawn(post().send());
    wait_for_a_blocked_request(&db).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    // Gives the server time to see the hang-up before the database frees it (the
    // outcome asserted below does not depend on it).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    blocker.rollback().await.unwrap();
    // The hung-up request takes its key once the database lets it (before the retry comes).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let keys =
            common::count(&db.store, "SELECT COUNT(*) AS n FROM idempotency_keys WHERE idem_key = 'lente-1'", &[])
                .await;
        if keys == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}: the first request never took its key", db.name);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let retry = loop {
        let retry = post().send().await.unwrap();
        if retry.status() != StatusCode::CONFLICT {
            break retry;
        }
        assert!(std::time::Instant::now() < deadline, "{}: the key stays « en cours »", db.name);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(retry.status(), StatusCode::CREATED, "{}", db.name);
    assert_eq!(retry.headers()["idempotent-replayed"], "true", "{}: the original result, not a new run", db.name);
    assert_eq!(retry.headers()["etag"], "\"1\"", "{}: headers are replayed too", db.name);
    let created: Value = retry.json().await.unwrap();
    assert_eq!(created["siren"], "552100554");
    assert_eq!(common::count_kind(&db.store, "editeur").await, 1, "{}", db.name);
}

backend_test!(an_idempotency_key_left_in_flight_by_a_crash_is_claimed_again_once_its_lease_ran_out);
async fn an_idempotency_key_left_in_flight_by_a_crash_is_claimed_again_once_its_lease_ran_out(
    db: crate::common::TestDb,
) {
    use sha2::Digest;
    let clock = Arc::new(FixedClock::new(t0()));
    let app = TestApp::over(&db.store).clock(clock.clone()).build().await;
    let client = app.root_client().await;
    let body = json!({"kind": "editeur", "siren": "552100554", "name": "Éditeur"});
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"POST/api/v1/orgs");
    hasher.update(serde_json::to_vec(&body).unwrap());
    // What a process killed while running the request leaves behind.
    sqlx::query(
        "INSERT INTO idempotency_keys (actor, idem_key, request_hash, status, created_at, locked_until) \
         VALUES ('user:root@test.fr', 'crash-1', $1, 0, $2, $3)",
    )
    .bind(hex::encode(hasher.finalize()))
    .bind(entcp::store::timestamp(t0()))
    .bind(entcp::store::timestamp(t0() + chrono::Duration::seconds(60)))
    .execute(db.store.pool())
    .await
    .unwrap();
    let post = || client.post("/api/v1/orgs").header("idempotency-key", "crash-1").json(&body).send();

    let during = post().await;
    assert_eq!(during.status, StatusCode::CONFLICT, "{}: the lease still runs", db.name);
    clock.set(t0() + chrono::Duration::minutes(2));
    let after = post().await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", db.name);
    let again = post().await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(common::count_kind(&db.store, "editeur").await, 1, "{}", db.name);
}

backend_test!(an_idempotent_replay_repeats_the_etag_and_content_type_of_the_first_response);
async fn an_idempotent_replay_repeats_the_etag_and_content_type_of_the_first_response(db: crate::common::TestDb) {
    let client = TestApp::root_client_over(&db.store).await;
    let body = json!({"kind": "editeur", "siren": "552100554", "name": "Éditeur"});
    let post = || client.post("/api/v1/orgs").header("idempotency-key", "etag-1").json(&body).send();
    let first = post().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", db.name);
    let again = post().await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers.get("etag"), first.headers.get("etag"), "{}: the replay keeps the ETag", db.name);
    assert_eq!(again.headers["content-type"], first.headers["content-type"]);
    assert_eq!(again.text, first.text);
}

backend_test!(concurrent_failing_requests_sharing_an_idempotency_key_never_answer_500);
async fn concurrent_failing_requests_sharing_an_idempotency_key_never_answer_500(db: crate::common::TestDb) {
    let client = TestApp::root_client_over(&db.store).await;
    // Each refused request releases the key while the others read it.
    let body = json!({"kind": "editeur", "siren": "123", "name": "Éditeur"});
    let send = || client.post("/api/v1/orgs").header("idempotency-key", "shared").json(&body).send();
    let answers = futures_util::future::join_all((0..60).map(|_| send())).await;
    let statuses: Vec<u16> = answers.into_iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 422 || *s == 409), "{}: {statuses:?}", db.name);
}

/// What run n of the test creation ([`creation_router`]) does once it wrote its row.
#[derive(Clone, Copy)]
enum Outcome {
    /// Commits and answers 201.
    Created,
    /// Commits, then fails (a read-back after the commit): 500.
    CommitsThenFails,
    /// Fails before committing (its row rolled back): 500.
    FailsBeforeCommit,
}

/// `POST /essai` behind the API's idempotency layer: run n (from 1, counted) writes a row
/// of `essais` in a write transaction, then does what `outcome(n)` says.
async fn creation_router(
    db: &common::TestDb,
    clock: Arc<FixedClock>,
    outcome: fn(u32) -> Outcome,
) -> (axum::Router, Arc<std::sync::atomic::AtomicU32>) {
    use axum::response::IntoResponse;
    use entcp::error::{Problem, ProblemKind};
    use std::sync::atomic::{AtomicU32, Ordering};
    sqlx::query("CREATE TABLE essais (run BIGINT NOT NULL)").execute(db.store.pool()).await.unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let (store, counted) = (db.store.clone(), runs.clone());
    let create = move || {
        let (store, runs) = (store.clone(), counted.clone());
        async move {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let mut tx = store.begin_write().await.unwrap();
            sqlx::query("INSERT INTO essais (run) VALUES ($1)").bind(i64::from(run)).execute(&mut *tx).await.unwrap();
            let failed = || Problem::new(ProblemKind::Internal, "échec simulé").into_response();
            match outcome(run) {
                Outcome::FailsBeforeCommit => return failed(),
                _ => tx.commit().await.unwrap(),
            }
            match outcome(run) {
                Outcome::CommitsThenFails => failed(),
                _ => (StatusCode::CREATED, axum::Json(json!({ "run": run }))).into_response(),
            }
        }
    };
    let state = common::app::app_state(db.store.clone(), common::app::test_config(), clock);
    let router = axum::Router::new()
        .route("/essai", axum::routing::post(create))
        .route_layer(axum::middleware::from_fn_with_state(state, entcp::api::idempotency::layer));
    (router, runs)
}

/// `POST /essai` with `key` as `Idempotency-Key`: its status and JSON body.
async fn post_essai(router: &axum::Router, key: &str) -> (StatusCode, Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::post("/essai")
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn essais(db: &common::TestDb) -> i64 {
    common::count(&db.store, "SELECT COUNT(*) AS n FROM essais", &[]).await
}

backend_test!(a_creation_that_committed_then_failed_is_not_run_again_when_retried_with_its_key);
async fn a_creation_that_committed_then_failed_is_not_run_again_when_retried_with_its_key(db: crate::common::TestDb) {
    use std::sync::atomic::Ordering;
    let clock = Arc::new(FixedClock::new(t0()));
    let (router, runs) = creation_router(&db, clock.clone(), |_| Outcome::CommitsThenFails).await;
    let (first, _) = post_essai(&router, "essai-1").await;
    assert_eq!(first, StatusCode::INTERNAL_SERVER_ERROR, "{}", db.name);
    assert_eq!(essais(&db).await, 1, "{}: the first run committed", db.name);

    let (retry, body) = post_essai(&router, "essai-1").await;
    assert_eq!(retry, StatusCode::CONFLICT, "{}: {body}", db.name);
    assert_eq!(body["type"], "urn:entcp:problem:conflict");
    assert_eq!(body["detail"], entcp::store::RAN_UNANSWERED);
    // Long after the first run's lease, the key is still not taken again.
    clock.set(t0() + chrono::Duration::minutes(5));
    let (later, _) = post_essai(&router, "essai-1").await;
    assert_eq!(later, StatusCode::CONFLICT, "{}", db.name);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{}: the request never ran again", db.name);
    assert_eq!(essais(&db).await, 1, "{}: no second row", db.name);
}

backend_test!(a_creation_that_failed_before_committing_runs_again_when_retried_with_its_key);
async fn a_creation_that_failed_before_committing_runs_again_when_retried_with_its_key(db: crate::common::TestDb) {
    use std::sync::atomic::Ordering;
    let clock = Arc::new(FixedClock::new(t0()));
    let outcome = |run| if run == 1 { Outcome::FailsBeforeCommit } else { Outcome::Created };
    let (router, runs) = creation_router(&db, clock, outcome).await;
    let (first, _) = post_essai(&router, "essai-2").await;
    assert_eq!(first, StatusCode::INTERNAL_SERVER_ERROR, "{}", db.name);
    assert_eq!(essais(&db).await, 0, "{}: the first run rolled back", db.name);

    let (retry, body) = post_essai(&router, "essai-2").await;
    assert_eq!(retry, StatusCode::CREATED, "{}: the key was freed: {body}", db.name);
    assert_eq!(body["run"], 2);
    let (replayed, body) = post_essai(&router, "essai-2").await;
    assert_eq!(
        (replayed, body["run"].clone()),
        (StatusCode::CREATED, json!(2)),
        "{}: the second answer is kept",
        db.name
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "{}", db.name);
    assert_eq!(essais(&db).await, 1, "{}", db.name);
}

backend_test!(a_form_token_whose_post_committed_then_failed_is_kept_and_one_that_wrote_nothing_is_freed);
async fn a_form_token_whose_post_committed_then_failed_is_kept_and_one_that_wrote_nothing_is_freed(
    db: crate::common::TestDb,
) {
    use entcp::store::IdempotencyKey;
    // The console's form tokens: the same rows, through the same `IdempotencyKey`.
    sqlx::query("CREATE TABLE essais (run BIGINT NOT NULL)").execute(db.store.pool()).await.unwrap();
    let key =
        |token: &str| IdempotencyKey { actor: "user:root@test.fr".into(), key: format!("console:tickets:{token}") };
    let lease = t0() + chrono::Duration::seconds(60);
    let write = |commit: bool| {
        let store = db.store.clone();
        async move {
            let mut tx = store.begin_write().await.unwrap();
            sqlx::query("INSERT INTO essais (run) VALUES (1)").execute(&mut *tx).await.unwrap();
            if commit {
                tx.commit().await.unwrap();
            }
        }
    };

    let committed = key("ecrit");
    assert!(committed.claim(&db.store, "console-form", t0(), lease).await.unwrap());
    committed.scope(write(true)).await;
    assert!(!committed.release(&db.store).await.unwrap(), "{}: a post that wrote keeps its token", db.name);
    let later = t0() + chrono::Duration::minutes(5);
    assert!(!committed.claim(&db.store, "console-form", later, later).await.unwrap(), "{}", db.name);
    let stored = committed.stored(&db.store).await.unwrap().expect("kept");
    assert!(stored.ran_unanswered(later), "{}", db.name);
    // Kept as done, its answer the 409 itself: what a replica of the previous release (which
    // knows nothing of `committed`) replays, its claim (status 0 only) taking nothing.
    assert_eq!(stored.status, 409, "{}", db.name);
    let answer: Value = serde_json::from_str(stored.response.as_deref().expect("an answer")).unwrap();
    assert_eq!((answer["status"].clone(), answer["detail"].clone()), (json!(409), json!(entcp::store::RAN_UNANSWERED)));
    let headers = stored.headers.expect("replayed headers").0;
    assert_eq!(headers, vec![("content-type".to_string(), "application/problem+json".to_string())]);
    let old_claim = sqlx::query(
        "UPDATE idempotency_keys SET locked_until = $1 WHERE actor = $2 AND idem_key = $3 AND status = 0 \
         AND request_hash = 'console-form' AND (locked_until IS NULL OR locked_until <= $1)",
    )
    .bind(entcp::store::timestamp(later))
    .bind(&committed.actor)
    .bind(&committed.key)
    .execute(db.store.pool())
    .await
    .unwrap();
    assert_eq!(old_claim.rows_affected(), 0, "{}: an old replica does not run it again", db.name);

    let rolled_back = key("annule");
    assert!(rolled_back.claim(&db.store, "console-form", t0(), lease).await.unwrap());
    rolled_back.scope(write(false)).await;
    assert!(rolled_back.release(&db.store).await.unwrap(), "{}: nothing committed, the token is freed", db.name);
    assert!(rolled_back.stored(&db.store).await.unwrap().is_none());
    // A write outside any request's scope marks nothing.
    let outside = key("dehors");
    assert!(outside.claim(&db.store, "console-form", t0(), lease).await.unwrap());
    write(true).await;
    assert!(outside.release(&db.store).await.unwrap(), "{}", db.name);
}

backend_test!(every_change_is_audited_and_a_tampered_record_is_found);
async fn every_change_is_audited_and_a_tampered_record_is_found(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    let client = TestApp::root_client_over(&db.store).await;
    let created: Value = client
        .post("/api/v1/orgs")
        .json(&json!({"kind": "epci", "siren": "200054781", "name": "MGP", "departement": "94"}))
        .send()
        .await
        .json();
    let page: Value =
        client.get(format!("/api/v1/audit?target_id={}", created["id"].as_str().unwrap())).send().await.json();
    let record = &page["items"][0];
    assert_eq!(record["action"], "orgs.create", "{}", db.name);
    assert_eq!(record["actor"], "user:root@test.fr");
    assert_eq!(record["summary"]["siren"], "200054781");

    let actions: Vec<String> = audit::list(&db.store, &Default::default(), None)
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.action.clone())
        .collect();
    for expected in ["imports.annuaire", "users.create", "roles.grant", "tokens.create", "orgs.create"] {
        assert!(actions.iter().any(|a| a == expected), "{}: no {expected} in {actions:?}", db.name);
    }
    assert!(matches!(audit::verify(&db.store).await.unwrap(), Verification::Intact { .. }));

    sqlx::query("UPDATE audit_log SET summary = '{\"siren\":\"000000000\"}' WHERE action = 'orgs.create'")
        .execute(db.store.pool())
        .await
        .unwrap();
    let seq = record["seq"].as_i64().unwrap();
    match audit::verify(&db.store).await.unwrap() {
        Verification::Broken { seq: broken, .. } => assert_eq!(broken, seq, "{}", db.name),
        other => panic!("{}: tampering not detected: {other:?}", db.name),
    }
}

backend_test!(concurrent_audited_writes_keep_one_unbroken_chain);
async fn concurrent_audited_writes_keep_one_unbroken_chain(db: crate::common::TestDb) {
    let mut tasks = Vec::new();
    for i in 0..12u32 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let new = entcp::identity::NewUser {
                email: format!("agent{i}@test.fr"),
                display_name: format!("Agent {i}"),
                org: None,
            };
            entcp::identity::create_user(&store, &admin(), new, t0()).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(audit::verify(&db.store).await.unwrap(), Verification::Intact { records: 12 }, "{}", db.name);
}

backend_test!(an_audit_record_by_name_or_by_actor_keeps_its_parts_and_its_hash);
async fn an_audit_record_by_name_or_by_actor_keeps_its_parts_and_its_hash(db: crate::common::TestDb) {
    let actor = entcp::identity::Actor { user_id: None, name: "user:agent@test.fr".into(), bindings: vec![] };
    let mut tx = db.store.begin_write().await.unwrap();
    let named = audit::Target::new("probe", "P-1", Some("org-1"));
    let backend = db.store.backend();
    audit::record(&mut tx, backend, "system:test-job", "tests.named", &named, json!({ "n": 1 }), t0()).await.unwrap();
    let target = audit::Target::new("probe", "P-2", None);
    audit::record(&mut tx, backend, &actor, "tests.actor", &target, json!({}), t0()).await.unwrap();
    tx.commit().await.unwrap();

    let mut records = audit::list(&db.store, &Default::default(), None).await.unwrap().items;
    records.reverse();
    let parts: Vec<_> = records
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str(), r.target_kind.as_str(), r.target_id.as_str()))
        .collect();
    let expected =
        [("system:test-job", "tests.named", "probe", "P-1"), ("user:agent@test.fr", "tests.actor", "probe", "P-2")];
    assert_eq!(parts, expected, "{}", db.name);
    assert_eq!(records[0].scope_org_id.as_deref(), Some("org-1"), "{}", db.name);
    assert_eq!(records[1].scope_org_id, None, "{}", db.name);
    assert_eq!(records[0].summary, json!({ "n": 1 }), "{}", db.name);
    // SHA-256 of the canonical JSON array (seq, at, actor, action, kind, id, scope,
    // summary text, previous hash), computed outside this code base: the chain's
    // encoding is unchanged for the same inputs.
    let first = "15afdabd90d3a082c593e1860d733bbee3ec0dbbd9c6caea84af664c922c867b";
    assert_eq!(records[0].hash, first, "{}", db.name);
    assert_eq!(records[1].prev_hash, first, "{}", db.name);
    assert_eq!(records[1].hash, "5a71faa35dc238891aa1777d25a7c919d75dcba8d15349c12b61b819f0844b40", "{}", db.name);
    assert_eq!(audit::verify(&db.store).await.unwrap(), Verification::Intact { records: 2 }, "{}", db.name);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let db = common::sqlite().await;
    let app = TestApp::over(&db.store).build().await;
    let client = app.root_client().await;
    for key in ["0940176F", "0940198E"] {
        client.get(format!("/api/v1/orgs/{key}")).send().await;
    }
    // Made-up methods (hyper accepts any token) share one label: a flood of them cannot grow
    // the figures kept and printed without limit.
    for i in 0..3 {
        let method = axum::http::Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        app.request(method, "/api/v1/orgs").send().await;
    }
    let text = app.get("/metrics").send().await.text;
    assert!(
        text.contains(r#"entcp_http_requests_total{method="GET",route="/api/v1/orgs/{key}",status="404"} 2"#),
        "{text}"
    );
    assert!(!text.contains(r#"method="M0""#), "{text}");
    let others: u64 = text
        .lines()
        .filter(|l| l.starts_with(r#"entcp_http_requests_total{method="other""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(others, 3, "{text}");
    assert!(text.contains("entcp_http_request_duration_seconds_count"), "{text}");
    assert!(text.contains("# TYPE entcp_outbox_messages gauge"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_declares_bearer_security_and_each_action() {
    let db = common::sqlite().await;
    let app = TestApp::over(&db.store).build().await;
    let doc: Value = app.get("/api/v1/openapi.json").send().await.json();
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for route in entcp::api::routes() {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert_eq!(op["security"][0]["bearer"], json!([]), "{} {}", route.method, route.path);
        assert_eq!(op["x-entcp-action"], route.action.name);
    }
}

backend_test!(two_replicas_bootstrapping_at_once_make_one_admin_and_both_start);
async fn two_replicas_bootstrapping_at_once_make_one_admin_and_both_start(db: crate::common::TestDb) {
    let data = tempfile::tempdir().unwrap();
    let other = entcp::store::Store::connect(&db.url, None).await.unwrap();
    let email = "admin@exemple.fr";
    let (a, b) = tokio::join!(
        entcp::identity::bootstrap_first_admin(&db.store, email, data.path(), t0()),
        entcp::identity::bootstrap_first_admin(&other, email, data.path(), t0()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.iter().chain(b.iter()).count(), 1, "{}: exactly one replica created it", db.name);
    let users = common::count(&db.store, "SELECT COUNT(*) AS n FROM users", &[]).await;
    assert_eq!(users, 1, "{}", db.name);

    let path = a.or(b).unwrap();
    assert_eq!(path, entcp::identity::first_token_path(data.path()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{}", db.name);
    let token = std::fs::read_to_string(&path).unwrap();
    let actor = entcp::identity::authenticate_token(&db.store, token.trim(), t0()).await.unwrap().unwrap();
    assert!(actor.is_admin(), "{}", db.name);

    // A restart finds the admin: nothing is created, no file rewritten.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(entcp::identity::bootstrap_first_admin(&db.store, email, data.path(), t0()).await.unwrap(), None);
    assert!(!path.exists());
    other.close().await;
}

#[tokio::test]
async fn two_concurrent_migrations_of_one_fresh_sqlite_file_both_succeed() {
    for trial in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("entcp.db").display());
        let a = entcp::store::Store::connect(&url, None).await.unwrap();
        let b = entcp::store::Store::connect(&url, None).await.unwrap();
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        assert!(ra.is_ok() && rb.is_ok(), "trial {trial}: {ra:?} {rb:?}");
        let applied = common::count(&a, "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success", &[]).await;
        let files = entcp::store::migrations::FILES.len();
        assert_eq!(applied as usize, files, "trial {trial}");
        a.close().await;
        b.close().await;
    }
}

/// Two users without a role, created at [`t0`]: claire.martin@ac-creteil.fr, whose links the
/// tests spend, and paul.durand@ac-creteil.fr, whose links must stay untouched.
async fn two_users(store: &entcp::store::Store) -> (identity::User, identity::User) {
    let new_user = |email: &str| NewUser { email: email.into(), display_name: "Claire Martin".into(), org: None };
    let user = identity::create_user(store, &admin(), new_user("claire.martin@ac-creteil.fr"), t0()).await.unwrap();
    let other = identity::create_user(store, &admin(), new_user("paul.durand@ac-creteil.fr"), t0()).await.unwrap();
    (user, other)
}

/// A one-time password link for `user_id`, valid half an hour from [`t0`].
async fn password_link(store: &entcp::store::Store, user_id: &str, purpose: LinkPurpose) -> String {
    let mut tx = store.begin_write().await.unwrap();
    let secret = password::issue_link(&mut tx, user_id, purpose, chrono::Duration::minutes(30), t0()).await.unwrap();
    tx.commit().await.unwrap();
    secret
}

// « Mot de passe oublié » asked twice, then an invitation still pending: once a password is
// chosen through one link, or changed from the account or by an administrator, the links
// still in the mailbox open nothing (a mailbox read later by someone else resets nothing).
backend_test!(a_new_password_spends_every_other_live_link_of_its_user_and_no_one_else_s);
async fn a_new_password_spends_every_other_live_link_of_its_user_and_no_one_else_s(db: crate::common::TestDb) {
    let store = &db.store;
    let (user, other) = two_users(store).await;
    let invitation = password_link(store, &user.id, LinkPurpose::Setup).await;
    let first_reset = password_link(store, &user.id, LinkPurpose::Reset).await;
    let second_reset = password_link(store, &user.id, LinkPurpose::Reset).await;
    let others = password_link(store, &other.id, LinkPurpose::Reset).await;

    password::reset_with_link(store, &second_reset, "cheval correct pile agrafe", t0()).await.unwrap();
    for spent in [&first_reset, &invitation, &second_reset] {
        assert!(password::link_user(store, spent, t0()).await.unwrap().is_none(), "{}", db.name);
        let refused = password::reset_with_link(store, spent, "une autre phrase bien longue", t0()).await.unwrap_err();
        assert_eq!(refused.kind, entcp::error::ProblemKind::NotFound, "{}", db.name);
    }
    let signed_in = password::check_password(store, "claire.martin@ac-creteil.fr", "cheval correct pile agrafe");
    assert_eq!(signed_in.await.unwrap().as_deref(), Some(user.id.as_str()), "{}", db.name);

    let pending = password_link(store, &user.id, LinkPurpose::Reset).await;
    password::set_password(
        store,
        &admin(),
        &user.id,
        "une autre phrase bien longue",
        password::ChosenBy::Operator,
        t0(),
    )
    .await
    .unwrap();
    assert!(password::link_user(store, &pending, t0()).await.unwrap().is_none(), "{}", db.name);
    let still = password::link_user(store, &others, t0()).await.unwrap();
    assert_eq!(still.map(|u| u.id), Some(other.id), "{}: another user's link is untouched", db.name);
}

/// Deactivates `user` as an admin does; the summary of its audit record.
async fn deactivate(store: &entcp::store::Store, user: &identity::User) -> Value {
    let off = identity::UserPatch { active: Some(false), ..Default::default() };
    identity::update_user(store, &admin(), &user.id, user.version, off, t0()).await.unwrap();
    common::audit_summary(store, "users.update", &user.id).await
}

// An invitee who signed in (through the academy's provider, say) no longer needs the link to
// choose a first password: left live, whoever holds the invitation e-mail could still set one.
// A reset link asked meanwhile is the person's own and stays.
backend_test!(a_first_sign_in_spends_the_invitation_link_and_keeps_a_reset_link);
async fn a_first_sign_in_spends_the_invitation_link_and_keeps_a_reset_link(db: crate::common::TestDb) {
    let store = &db.store;
    let (user, _) = two_users(store).await;
    let invitation = password_link(store, &user.id, LinkPurpose::Setup).await;
    let reset = password_link(store, &user.id, LinkPurpose::Reset).await;
    identity::sessions::open(store, &user.id, "127.0.0.1", "oidc", None, t0()).await.unwrap();
    assert!(password::link_user(store, &invitation, t0()).await.unwrap().is_none(), "{}", db.name);
    assert!(password::link_user(store, &reset, t0()).await.unwrap().is_some(), "{}", db.name);
    let summary = common::audit_summary(store, "console.sign_in", &user.id).await;
    assert_eq!(summary["invitation_links_spent"], 1, "{}", db.name);
}

// Deactivating an account (compromised, or its holder gone) ends its sessions and revokes its
// API tokens, audited: reactivating it later hands neither back to whoever held them.
backend_test!(a_deactivated_account_s_sessions_and_tokens_stay_dead_once_it_is_reactivated);
async fn a_deactivated_account_s_sessions_and_tokens_stay_dead_once_it_is_reactivated(db: crate::common::TestDb) {
    let store = &db.store;
    let (user, other) = two_users(store).await;
    let token = identity::create_token(store, &admin(), &user.id, "script", None, t0()).await.unwrap().token;
    let kept = identity::create_token(store, &admin(), &other.id, "autre", None, t0()).await.unwrap().token;
    let session = identity::sessions::open(store, &user.id, "127.0.0.1", "password", None, t0()).await.unwrap();
    let timeouts =
        identity::sessions::Timeouts { idle: chrono::Duration::hours(1), absolute: chrono::Duration::hours(8) };
    assert!(identity::sessions::find(store, &session, timeouts, t0()).await.unwrap().is_some(), "{}", db.name);
    assert!(identity::authenticate_token(store, &token, t0()).await.unwrap().is_some(), "{}", db.name);

    let summary = deactivate(store, &user).await;
    assert_eq!((&summary["sessions_ended"], &summary["tokens_revoked"]), (&json!(1), &json!(1)), "{}", db.name);

    let current = identity::get_user(store, &user.id).await.unwrap().unwrap();
    let on = identity::UserPatch { active: Some(true), ..Default::default() };
    identity::update_user(store, &admin(), &user.id, current.version, on, t0()).await.unwrap();
    assert!(identity::authenticate_token(store, &token, t0()).await.unwrap().is_none(), "{}", db.name);
    assert!(identity::sessions::find(store, &session, timeouts, t0()).await.unwrap().is_none(), "{}", db.name);
    assert!(identity::authenticate_token(store, &kept, t0()).await.unwrap().is_some(), "{}: another's token", db.name);
}

// A link in the mailbox of an account deactivated since opens nothing, exactly like an expired
// one (the page said the password was changed, the sign-in then failed): deactivating spends
// the account's live links (audited), and a link issued to an inactive account is dead too, and
// stays dead once the account is reactivated (reactivating spends the links again).
backend_test!(a_password_link_of_a_deactivated_account_is_dead_like_an_expired_one);
async fn a_password_link_of_a_deactivated_account_is_dead_like_an_expired_one(db: crate::common::TestDb) {
    let store = &db.store;
    let (user, other) = two_users(store).await;
    let reset = password_link(store, &user.id, LinkPurpose::Reset).await;
    let invitation = password_link(store, &user.id, LinkPurpose::Setup).await;
    let others = password_link(store, &other.id, LinkPurpose::Reset).await;
    let expired = password_link(store, &other.id, LinkPurpose::Setup).await;
    let later = t0() + chrono::Duration::minutes(31);
    let expired_refusal = password::reset_with_link(store, &expired, "cheval correct pile agrafe", later).await;
    let expired_refusal = expired_refusal.unwrap_err();

    let summary = deactivate(store, &user).await;
    assert_eq!((summary["active"].clone(), summary["links_spent"].clone()), (json!(false), json!(2)), "{}", db.name);

    // Issued after the deactivation (by an invitation sent again): dead as well.
    let after = password_link(store, &user.id, LinkPurpose::Setup).await;
    for dead in [&reset, &invitation, &after] {
        assert!(password::link_user(store, dead, t0()).await.unwrap().is_none(), "{}", db.name);
        let refused = password::reset_with_link(store, dead, "cheval correct pile agrafe", t0()).await.unwrap_err();
        assert_eq!((refused.kind, &refused.detail), (expired_refusal.kind, &expired_refusal.detail), "{}", db.name);
    }
    let passwords = "SELECT COUNT(*) FROM user_passwords WHERE user_id = $1";
    assert_eq!(common::count(store, passwords, &[user.id.as_str()]).await, 0, "{}: no password set", db.name);
    let still = password::link_user(store, &others, t0()).await.unwrap();
    assert_eq!(still.map(|u| u.id), Some(other.id), "{}: another user's link is untouched", db.name);

    // Active again, the account's old links stay spent, the one issued while it was inactive
    // included (it would otherwise come alive with the account).
    let current = identity::get_user(store, &user.id).await.unwrap().unwrap();
    let on = identity::UserPatch { active: Some(true), ..Default::default() };
    identity::update_user(store, &admin(), &user.id, current.version, on, t0()).await.unwrap();
    for dead in [&reset, &invitation, &after] {
        assert!(password::link_user(store, dead, t0()).await.unwrap().is_none(), "{}", db.name);
    }
    let fresh = password_link(store, &user.id, LinkPurpose::Reset).await;
    assert!(password::link_user(store, &fresh, t0()).await.unwrap().is_some(), "{}", db.name);
}

// An établissement's SIREN comes from the annuaire import only, where the INSEE's numbering is
// checked (a public EPLE's from 1, a private school's outside 1 and 2): the API creates no
// établissement (its kinds come from the import) and an edit takes no SIREN, so no door sets one
// the import would have dropped.
backend_test!(no_api_door_sets_an_etablissements_siren);
async fn no_api_door_sets_an_etablissements_siren(db: crate::common::TestDb) {
    import_sample(&db.store).await;
    let client = TestApp::root_client_over(&db.store).await;
    let created = client
        .post("/api/v1/orgs")
        .json(&json!({"kind": "etablissement", "siren": "200054781", "name": "Collège des Essais"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {:?}", db.name, created.body);
    assert_eq!(created.body["errors"][0]["field"], "kind", "{}: {:?}", db.name, created.body);
    let url = "/api/v1/orgs/0940176F";
    let etag = client.get(url).send().await.headers["etag"].to_str().unwrap().to_string();
    let edited = client.patch(url).header("if-match", &etag).json(&json!({"siren": "200054781"})).send().await;
    assert!((400..500).contains(&edited.status), "{}: {:?}", db.name, edited.body);
    let read = client.get(url).send().await;
    assert_eq!(read.body["siren"], "219400348", "{}: its commune's, unchanged", db.name);
}
