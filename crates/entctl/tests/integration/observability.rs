//! What an operator sees: `/metrics` served from memory, logs that name
//! actors by id and keep allowed decisions at DEBUG, and a shutdown that drains
//! within its deadline.

use crate::common;

use axum::routing::get;
use axum::Router;
use common::logs::Captured;
use entcp::api::{metrics, AppState};
use entcp::clock::FixedClock;
use entcp::config::Config;
use entcp::kernel::roles::Role;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

fn state(store: &entcp::store::Store) -> AppState {
    let data_dir = tempfile::tempdir().unwrap().keep();
    crate::common::app::app_state(
        store.clone(),
        Config { data_dir, ..Config::default() },
        Arc::new(FixedClock::new(common::t0())),
    )
}

backend_test!(metrics_are_served_from_memory_when_the_database_is_gone);
async fn metrics_are_served_from_memory_when_the_database_is_gone(db: crate::common::TestDb) {
    let app = state(&db.store);
    common::queue_test_mail(&db.store, "dpo@ville.example.fr", common::t0() - chrono::Duration::minutes(3)).await;
    metrics::refresh_gauges(&app).await.unwrap();

    db.store.close().await;
    let text = metrics::text(&app);
    for line in [
        "entcp_outbox_messages{status=\"pending\"} 1",
        "entcp_outbox_oldest_pending_age_seconds 180",
        "entcp_tenants_in_error 0",
        "entcp_db_pool_connections{state=\"in_use\"}",
        "entcp_build_info{version=",
        &format!(",schema=\"{}\",", entcp::release::schema_version()),
        &format!("entcp_db_schema_applied {}", entcp::release::schema_version()),
    ] {
        assert!(text.contains(line), "{}: no « {line} » in\n{text}", db.name);
    }
    assert!(metrics::refresh_gauges(&app).await.is_err(), "{}: a closed pool cannot be read", db.name);
    assert!(metrics::text(&app).contains("entcp_outbox_messages{status=\"pending\"} 1"), "last figures kept");
}

// The gauge took the oldest of every pending message: a reminder queued last night for the
// next working hour (or a retry waiting its backoff) read as hours of delay. Only due
// messages count, from when they came due.
backend_test!(the_oldest_pending_mail_gauge_counts_due_messages_only_from_when_they_came_due);
async fn the_oldest_pending_mail_gauge_counts_due_messages_only_from_when_they_came_due(db: crate::common::TestDb) {
    let app = state(&db.store);
    let t0 = common::t0();
    let to = ["dpo@ville.example.fr".to_string()];
    let mut tx = db.store.begin_write().await.unwrap();
    let last_night = t0 - chrono::Duration::hours(10);
    let deferred = entcp::notify::enqueue(&mut tx, &to, "test", serde_json::json!({}), last_night).await.unwrap();
    let due = t0 - chrono::Duration::minutes(3);
    entcp::notify::enqueue(&mut tx, &to, "test", serde_json::json!({}), due).await.unwrap();
    tx.commit().await.unwrap();
    sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2")
        .bind(entcp::store::timestamp(t0 + chrono::Duration::hours(1)))
        .bind(&deferred[0])
        .execute(db.store.pool())
        .await
        .unwrap();
    metrics::refresh_gauges(&app).await.unwrap();
    let text = metrics::text(&app);
    assert!(text.contains("entcp_outbox_messages{status=\"pending\"} 2"), "{}: {text}", db.name);
    assert!(text.contains("entcp_outbox_oldest_pending_age_seconds 180\n"), "{}: {text}", db.name);
}

#[tokio::test]
async fn info_logs_name_actors_by_id_and_keep_allowed_decisions_at_debug() {
    let (captured, _guard) = Captured::info_logs();
    let db = common::sqlite().await;
    common::import_sample(&db.store).await;
    let token =
        common::token_for(&db.store, "maire@fresnes.example.fr", Role::Collectivite, Some("commune:94034")).await;
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(common::t0()))).await;
    let client = common::client_with(&token);
    let allowed = client.get(format!("{base}/api/v1/orgs/0940176F")).send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    let denied = client.get(format!("{base}/api/v1/orgs/0940198E")).send().await.unwrap();
    assert_eq!(denied.status(), 404);

    let logs = captured.text();
    assert!(!logs.contains("maire@fresnes.example.fr"), "an e-mail address in the INFO logs:\n{logs}");
    let decisions: Vec<&str> = logs.lines().filter(|l| l.contains("authorisation")).collect();
    assert_eq!(decisions.len(), 1, "only the denial is logged at INFO:\n{logs}");
    assert!(decisions[0].contains("allowed=false") && decisions[0].contains("actor=user:"), "{}", decisions[0]);
}

/// Permits released by a request that reached its handler.
static ENTERED: Semaphore = Semaphore::const_new(0);

/// Permits that let a held request answer.
pub(crate) static ANSWER: Semaphore = Semaphore::const_new(0);

/// A handler that answers « fini » once the test gives it a permit of [`ANSWER`].
pub(crate) async fn held() -> &'static str {
    ENTERED.add_permits(1);
    ANSWER.acquire().await.unwrap().forget();
    "fini"
}

/// Waits (at most a minute) until a request reached [`held`].
pub(crate) async fn entered() {
    let entered = tokio::time::timeout(std::time::Duration::from_secs(60), ENTERED.acquire());
    entered.await.expect("the held request never started").unwrap().forget();
}

async fn start(
    drain: std::time::Duration,
) -> (String, CancellationToken, tokio::task::JoinHandle<std::io::Result<bool>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let router = Router::new().route("/held", get(held));
    let server =
        tokio::spawn(entcp::api::shutdown::serve_until(listener, router, Default::default(), shutdown.clone(), drain));
    (base, shutdown, server)
}

#[tokio::test]
async fn a_request_still_running_at_the_shutdown_deadline_does_not_hold_the_process() {
    let (base, shutdown, server) = start(std::time::Duration::from_millis(200)).await;
    let request = tokio::spawn(async move { reqwest::get(format!("{base}/held")).await });
    entered().await;
    shutdown.cancel();
    let drained = server.await.unwrap().unwrap();
    assert!(!drained, "the server waited for the held request instead of its deadline");
    // The process exits here; in this test the connection's task lives on with the runtime.
    request.abort();
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_finishes_within_the_deadline() {
    let (base, shutdown, server) = start(std::time::Duration::from_secs(600)).await;
    let request = tokio::spawn(async move { reqwest::get(format!("{base}/held")).await.unwrap().text().await });
    entered().await;
    shutdown.cancel();
    ANSWER.add_permits(1);
    assert!(server.await.unwrap().unwrap(), "drained in time");
    assert_eq!(request.await.unwrap().unwrap(), "fini");
}

backend_test!(an_authenticated_token_is_served_from_memory_and_its_revocation_is_honoured_at_once);
async fn an_authenticated_token_is_served_from_memory_and_its_revocation_is_honoured_at_once(
    db: crate::common::TestDb,
) {
    let now = common::t0();
    let kept = common::token_for(&db.store, "admin1@ville.example.fr", Role::Admin, None).await;
    let revoked = common::token_for(&db.store, "admin2@ville.example.fr", Role::Admin, None).await;
    for token in [&kept, &revoked] {
        assert!(entcp::identity::authenticate_token(&db.store, token, now).await.unwrap().is_some());
    }
    let tokens = entcp::identity::list_tokens(&db.store, None).await.unwrap();
    let prefix = revoked.rsplit_once('_').unwrap().0;
    let id = &tokens.iter().find(|t| t.prefix == prefix).expect("revoked token listed").id;
    entcp::identity::revoke_token(&db.store, &common::admin(), id, now).await.unwrap();
    let after = entcp::identity::authenticate_token(&db.store, &revoked, now).await.unwrap();
    assert!(after.is_none(), "{}: a revoked token still authenticates", db.name);

    // The kept token is answered without the database.
    assert!(entcp::identity::authenticate_token(&db.store, &kept, now).await.unwrap().is_some());
    db.store.close().await;
    let actor = entcp::identity::authenticate_token(&db.store, &kept, now).await;
    assert!(actor.is_ok_and(|a| a.is_some()), "{}: the token was looked up again", db.name);
}

#[tokio::test]
async fn a_password_link_opened_leaves_its_secret_out_of_the_request_logs() {
    let (captured, _guard) = Captured::info_logs();
    let db = common::sqlite().await;
    common::token_for(&db.store, "dpo@ville.example.fr", Role::Admin, None).await;
    let user = entcp::identity::get_user(&db.store, "dpo@ville.example.fr").await.unwrap().unwrap();
    let link = entcp::console::signin::setup_link(&db.store, &Config::default().console, &user.id, common::t0())
        .await
        .unwrap();
    let secret = link.rsplit('/').next().unwrap().to_string();
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(common::t0()))).await;

    let form = reqwest::get(format!("{base}/mot-de-passe/{secret}")).await.unwrap();
    assert_eq!(form.status(), 200, "the link opens its form");
    let logs = captured.text();
    let of_request: Vec<&str> = logs.lines().filter(|l| l.contains("finished processing request")).collect();
    assert_eq!(of_request.len(), 1, "{logs}");
    assert!(of_request[0].contains("path=/mot-de-passe/***"), "{}", of_request[0]);
    assert!(!logs.contains(&secret), "the link's secret in the logs:\n{logs}");
}

/// A handler with a bug: it panics.
async fn boom() -> &'static str {
    panic!("un bogue dans un gestionnaire")
}

// Nothing proved the panic layer mounted: a handler that panicked could have closed its
// connection without a word. A route of the test's own (none panics in the application) is
// served through the very layers `app()` serves its routes through (`api::layered`), over a
// socket: the panic answers the house's 500 problem (French title, no inner detail shown), and
// the server serves on, the same route and another.
backend_test!(a_handler_that_panics_answers_a_500_problem_and_the_server_serves_on);
async fn a_handler_that_panics_answers_a_500_problem_and_the_server_serves_on(db: crate::common::TestDb) {
    let routes = Router::new().route("/boom", get(boom)).route("/calme", get(|| async { "calme" }));
    let router = entcp::api::layered(routes, state(&db.store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let drain = std::time::Duration::from_secs(5);
    let server =
        tokio::spawn(entcp::api::shutdown::serve_until(listener, router, Default::default(), shutdown.clone(), drain));
    let client = reqwest::Client::new();
    for round in 0..2 {
        let resp = client.get(format!("{base}/boom")).send().await.expect("an answer, not a closed connection");
        assert_eq!(resp.status(), 500, "{}: round {round}", db.name);
        assert_eq!(resp.headers()["content-type"], "application/problem+json", "{}", db.name);
        assert!(resp.headers().contains_key("x-request-id"), "{}: inside the request id layers", db.name);
        let problem: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(problem["status"], 500, "{}: {problem}", db.name);
        assert_eq!(problem["title"], "Erreur interne", "{}: {problem}", db.name);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("journalisée") && !detail.contains("bogue"), "{}: {problem}", db.name);
        let calm = client.get(format!("{base}/calme")).send().await.unwrap();
        assert_eq!(calm.status(), 200, "{}: the server serves on", db.name);
        assert_eq!(calm.text().await.unwrap(), "calme");
    }
    shutdown.cancel();
    assert!(server.await.unwrap().unwrap(), "{}: the server drained", db.name);
}
