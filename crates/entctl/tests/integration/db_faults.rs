//! Database faults as the API shows them: no free connection, a PostgreSQL
//! outage (through a TCP proxy the test cuts and restores), a full SQLite disk.
//! Each answers quickly with its own problem type and `Retry-After`, and the
//! service recovers by itself.

use crate::common;

use common::{admin, client_with, t0, token_for};
use entcp::clock::FixedClock;
use entcp::error::ProblemKind;
use entcp::identity::NewUser;
use entcp::kernel::roles::Role;
use entcp::store::{PoolOptions, Store, FORGOTTEN_AFTER, READY_REUSE};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

async fn get(token: &str, url: String) -> (u16, Option<String>, Value) {
    let resp = client_with(token).get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, resp.json().await.unwrap_or(Value::Null))
}

backend_test!(a_request_that_finds_no_free_connection_gets_503_and_retry_after_within_seconds);
async fn a_request_that_finds_no_free_connection_gets_503_and_retry_after_within_seconds(db: crate::common::TestDb) {
    assert!(PoolOptions::default().acquire_timeout <= Duration::from_secs(3), "never the 30 s of sqlx");
    let token = token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    let options =
        PoolOptions { max_connections: Some(1), acquire_timeout: Duration::from_millis(500), ..Default::default() };
    let store = Store::connect_with(&db.url, options).await.unwrap();
    let base = common::serve(store.clone(), Arc::new(FixedClock::new(t0()))).await;
    let held = store.conn().await.unwrap();
    let started = Instant::now();
    let (status, retry_after, body) = get(&token, format!("{base}/api/v1/orgs")).await;
    assert_eq!(status, 503, "{}: {body}", db.name);
    assert_eq!(body["type"], "urn:entcp:problem:unavailable");
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    drop(held);
    let (status, _, body) = get(&token, format!("{base}/api/v1/orgs")).await;
    assert_eq!(status, 200, "{}: {body}", db.name);
}

/// A loopback TCP proxy to PostgreSQL that the test cuts (listener and every
/// open connection) and restores on the same port.
struct Proxy {
    port: u16,
    target: String,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = Some(tokio::spawn(forward(listener, target.to_string())));
        Proxy { port, target: target.to_string(), task }
    }

    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.task = Some(tokio::spawn(forward(listener, self.target.clone())));
    }
}

/// Accepts and pipes connections; aborting it drops the set, which aborts them all.
async fn forward(listener: TcpListener, target: String) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        let target = target.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// `postgres://user@host:port/db` → (`host:port`, the URL with `via` instead).
fn through(url: &str, via: &str) -> (String, String) {
    let (scheme_user, rest) = url.split_once('@').expect("the test URL names a user");
    let (address, database) = rest.split_once('/').expect("the test URL names a database");
    (address.to_string(), format!("{scheme_user}@{via}/{database}"))
}

#[tokio::test]
async fn a_postgres_outage_answers_503_quickly_and_the_service_recovers_by_itself() {
    let Some(db) = common::postgres().await else { return };
    let token = token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    let (address, _) = through(&db.url, "");
    let mut proxy = Proxy::start(&address).await;
    let (_, url) = through(&db.url, &format!("127.0.0.1:{}", proxy.port));
    let store = Store::connect(&url, Some(2)).await.unwrap();
    let base = common::serve(store, Arc::new(FixedClock::new(t0()))).await;
    assert_eq!(get(&token, format!("{base}/readyz")).await.0, 200);
    assert_eq!(get(&token, format!("{base}/api/v1/orgs")).await.0, 200);

    proxy.cut();
    tokio::time::sleep(READY_REUSE).await;
    let started = Instant::now();
    let (status, _, body) = get(&token, format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    // Within the probe's 1.5 s (and a margin for a loaded machine), not sqlx's 30 s.
    assert!(started.elapsed() < Duration::from_millis(4500), "readiness took {:?}", started.elapsed());
    let started = Instant::now();
    let (status, retry_after, body) = get(&token, format!("{base}/api/v1/orgs")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "urn:entcp:problem:unavailable");
    assert!(retry_after.is_some());
    // Within the pool's 2 s acquire timeout (and a margin), not sqlx's 30 s.
    assert!(started.elapsed() < Duration::from_secs(5), "the read took {:?}", started.elapsed());

    proxy.restore().await;
    tokio::time::sleep(READY_REUSE).await;
    assert_eq!(get(&token, format!("{base}/readyz")).await.0, 200);
    let (status, _, body) = get(&token, format!("{base}/api/v1/orgs")).await;
    assert_eq!(status, 200, "{body}");
}

/// Runs `sql` on the test server's administration database.
async fn as_admin(sql: &str) {
    let admin = Store::connect(&common::postgres_admin_url().unwrap(), Some(1)).await.unwrap();
    sqlx::query(sql).execute(admin.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    admin.close().await;
}

/// Ends every session of `database`, then runs `sql` once none is left (PostgreSQL refuses to
/// rename a database in use, and a terminated session may take a moment to exit).
async fn when_no_session_left(database: &str, sql: &str) {
    let admin = Store::connect(&common::postgres_admin_url().unwrap(), Some(1)).await.unwrap();
    let end = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1";
    for _ in 0..100 {
        sqlx::query(end).bind(database).execute(admin.pool()).await.unwrap();
        match sqlx::query(sql).execute(admin.pool()).await {
            Ok(_) => return admin.close().await,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    panic!("{sql}: {database} still in use after 5 s");
}

// A PostgreSQL database closed to new sessions (`ALLOW_CONNECTIONS false`, SQLSTATE 55000) or
// renamed away (3D000) refuses the pool's new connections: the API answers 503 « Service
// indisponible » with `Retry-After`, never the 500 of a bug, and serves again once it is back.
#[tokio::test]
async fn a_postgres_database_that_refuses_new_sessions_answers_503_with_retry_after() {
    let Some(db) = common::postgres().await else { return };
    let token = token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    let name = db.url.rsplit_once('/').unwrap().1.to_string();
    let store = Store::connect(&db.url, Some(2)).await.unwrap();
    let base = common::serve(store, Arc::new(FixedClock::new(t0()))).await;
    assert_eq!(get(&token, format!("{base}/api/v1/orgs")).await.0, 200);
    let hidden = format!("{name}_ailleurs");
    let refusals = [
        (
            format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
            format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
        ),
        (format!("ALTER DATABASE {name} RENAME TO {hidden}"), format!("ALTER DATABASE {hidden} RENAME TO {name}")),
    ];
    for (refuse, undo) in refusals {
        when_no_session_left(&name, &refuse).await;
        // The pool's connections the server ended, then the new sessions refused: each 503.
        for _ in 0..4 {
            let (status, retry_after, body) = get(&token, format!("{base}/api/v1/orgs")).await;
            assert_eq!(status, 503, "{refuse}: {body}");
            assert_eq!(
                (body["type"].as_str(), body["title"].as_str()),
                (Some("urn:entcp:problem:unavailable"), Some("Service indisponible")),
                "{refuse}"
            );
            assert_eq!(retry_after.as_deref(), Some("2"), "{refuse}");
        }
        as_admin(&undo).await;
        let (status, _, body) = get(&token, format!("{base}/api/v1/orgs")).await;
        assert_eq!(status, 200, "{undo}: {body}");
    }
}

async fn add_user(store: &Store, n: usize) -> Result<(), entcp::error::Problem> {
    let new = NewUser { email: format!("agent{n}@ac-creteil.fr"), display_name: format!("Agent {n}"), org: None };
    entcp::identity::create_user(store, &admin(), new, t0()).await.map(|_| ())
}

#[tokio::test]
async fn a_full_sqlite_disk_gives_storage_full_and_writes_resume_once_space_is_freed() {
    let db = common::sqlite().await;
    // One connection, so that the page limit (a per-connection pragma) holds for every write.
    let store = Store::connect(&db.url, Some(1)).await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(store.pool()).await.unwrap();
    sqlx::query(&format!("PRAGMA max_page_count = {pages}")).execute(store.pool()).await.unwrap();
    let mut refused = None;
    for n in 0..10_000 {
        if let Err(problem) = add_user(&store, n).await {
            refused = Some(problem);
            break;
        }
    }
    let problem = refused.expect("the database fills up");
    assert_eq!(problem.kind, ProblemKind::StorageFull, "{problem:?}");
    assert_eq!(problem.kind.status().as_u16(), 507);
    assert!(problem.kind.retry_after().is_some());
    // Readiness says so: its heartbeat rewrote its own row in place, which a full database
    // still took, and `/readyz` stayed 200 while every insert failed (SRE 43 F5).
    // The limit is a pragma of the connection: set again on the pool's (the failed write's may
    // have been closed, its rollback having failed), as a full disk holds for every connection.
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(store.pool()).await.unwrap();
    sqlx::query(&format!("PRAGMA max_page_count = {pages}")).execute(store.pool()).await.unwrap();
    tokio::time::sleep(READY_REUSE).await;
    let ready = store.check_ready(Duration::from_millis(1500)).await.expect_err("a full database is not ready");
    assert_eq!(ready.kind, ProblemKind::StorageFull, "{ready:?}");

    sqlx::query("PRAGMA max_page_count = 1073741823").execute(store.pool()).await.unwrap();
    add_user(&store, 10_002).await.expect("writes resume without a restart");
    add_user(&store, 10_003).await.expect("and keep working");
    tokio::time::sleep(READY_REUSE).await;
    store.check_ready(Duration::from_millis(1500)).await.expect("ready again");
    let rows = "SELECT COUNT(*) FROM store_heartbeat WHERE id < 0";
    assert_eq!(sqlx::query_scalar::<_, i64>(rows).fetch_one(store.pool()).await.unwrap(), 0, "nothing kept");
}

backend_test!(a_connection_whose_transaction_the_database_ended_is_discarded_not_reused);
async fn a_connection_whose_transaction_the_database_ended_is_discarded_not_reused(db: crate::common::TestDb) {
    let store = Store::connect(&db.url, Some(1)).await.unwrap();
    {
        let mut tx = store.begin_write().await.unwrap();
        // What SQLite does on a full disk: the transaction ends under sqlx, whose rollback then fails.
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
    }
    for _ in 0..2 {
        let tx = store.begin_write().await.unwrap_or_else(|e| panic!("{}: the pool is poisoned: {e}", db.name));
        tx.commit().await.unwrap();
    }
    add_user(&store, 1).await.unwrap();
}

// A request or job cut while its `BEGIN` was in flight (request timeout, client gone) gave its
// PostgreSQL connection back to the pool inside a transaction sqlx did not count (sqlx#4385):
// the next borrower's writes went into it, uncommitted. The release check now closes such a
// connection, on the `Any` pool and on the native (COPY) one.
backend_test!(a_begin_cut_in_flight_leaves_no_open_transaction_to_the_next_borrower);
async fn a_begin_cut_in_flight_leaves_no_open_transaction_to_the_next_borrower(db: crate::common::TestDb) {
    let store = Store::connect(&db.url, Some(1)).await.unwrap();
    sqlx::query("SELECT 1").execute(store.pool()).await.unwrap();
    assert!(cut_in_flight(&db.store, || store.begin_write()).await, "{}: never cut in flight", db.name);
    // The next borrower of the pool's only connection writes outside any transaction.
    sqlx::query("INSERT INTO store_heartbeat (id, at) VALUES (7, 'x')").execute(store.pool()).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM store_heartbeat WHERE id = 7")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(seen, 1, "{}: the write stayed in the cut transaction", db.name);
    assert_eq!(open_transactions_soon_gone(&db.store).await, 0, "{}", db.name);
    if db.name == "postgres" {
        assert!(cut_in_flight(&db.store, || store.begin_copy()).await, "never cut in flight (COPY pool)");
        assert_eq!(open_transactions_soon_gone(&db.store).await, 0, "the native pool kept it");
    }
}

/// Polls `begin()` until `BEGIN` has reached the server (PostgreSQL: a session of the database
/// shows `idle in transaction`; SQLite: sent to its worker), then drops it; false when every
/// attempt's `BEGIN` answered first, for 20 s (a loaded machine narrows the window: 50
/// attempts, two seconds, once missed it).
async fn cut_in_flight<T, F: std::future::Future<Output = sqlx::Result<T>>>(
    observer: &Store,
    begin: impl Fn() -> F,
) -> bool {
    use std::task::Poll;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut pending = std::pin::pin!(begin());
        loop {
            match std::future::poll_fn(|cx| Poll::Ready(pending.as_mut().poll(cx))).await {
                Poll::Ready(tx) => {
                    drop(tx.unwrap());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    break;
                }
                Poll::Pending if observer.backend() == entcp::store::Backend::Sqlite => return true,
                Poll::Pending if open_transactions(observer).await > 0 => return true,
                Poll::Pending => tokio::task::yield_now().await,
            }
        }
    }
    false
}

/// PostgreSQL: the sessions of the test's database idle inside a transaction (0 on SQLite).
async fn open_transactions(observer: &Store) -> i64 {
    if observer.backend() == entcp::store::Backend::Sqlite {
        return 0;
    }
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND state LIKE 'idle in transaction%'";
    sqlx::query_scalar(sql).fetch_one(observer.pool()).await.unwrap()
}

/// [`open_transactions`] once the released connections were checked (a few seconds at most).
async fn open_transactions_soon_gone(observer: &Store) -> i64 {
    let mut open = open_transactions(observer).await;
    for _ in 0..50 {
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = open_transactions(observer).await;
    }
    open
}

backend_test!(a_read_only_database_answers_its_own_problem_type_and_readiness_says_so);
async fn a_read_only_database_answers_its_own_problem_type_and_readiness_says_so(db: crate::common::TestDb) {
    let store = Store::connect(&db.url, Some(1)).await.unwrap();
    let read_only = match db.name {
        "sqlite" => "PRAGMA query_only = 1",
        _ => "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    };
    sqlx::query(read_only).execute(store.pool()).await.unwrap();
    let problem = add_user(&store, 1).await.expect_err("no write on a read-only database");
    assert_eq!(problem.kind, ProblemKind::ReadOnly, "{}: {problem:?}", db.name);
    let ready = store.check_ready(Duration::from_millis(1500)).await.expect_err("not ready");
    assert_eq!(ready.kind, ProblemKind::ReadOnly, "{}: {ready}", db.name);

    let writable = match db.name {
        "sqlite" => "PRAGMA query_only = 0",
        _ => "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    };
    sqlx::query(writable).execute(store.pool()).await.unwrap();
    tokio::time::sleep(READY_REUSE).await;
    store.check_ready(Duration::from_millis(1500)).await.expect("ready again");
    add_user(&store, 2).await.expect("writes resume");
}

// A request stuck on a lock (or a hung peer) held its connection and its pool slot for as long
// as the lock lasted. Past `server.request_timeout_seconds` it is interrupted and answered 503
// « délai de traitement dépassé »; its write is not kept, and the next requests are served.
backend_test!(a_request_stuck_past_the_request_timeout_gets_503_timeout_and_the_next_ones_are_served);
async fn a_request_stuck_past_the_request_timeout_gets_503_timeout_and_the_next_ones_are_served(
    db: crate::common::TestDb,
) {
    let token = token_for(&db.store, "admin@ent.fr", Role::Admin, None).await;
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_with(db.store.clone(), clock, |c| c.server.request_timeout_seconds = 3).await;
    let client = client_with(&token);
    // A first call records the token's use: later calls do not write while authenticating.
    assert_eq!(get(&token, format!("{base}/api/v1/me")).await.0, 200, "{}", db.name);
    let body = serde_json::json!({"kind": "editeur", "siren": "552100554", "name": "Éditeur"});
    let post = || client.post(format!("{base}/api/v1/orgs")).json(&body).send();

    // SQLite: the write lock; PostgreSQL: `orgs` locked against inserts (reads go on).
    let holder = common::hold_writes(&db.store, "LOCK TABLE orgs IN EXCLUSIVE MODE", &[]).await;
    let started = Instant::now();
    let stuck = post().await.unwrap();
    let elapsed = started.elapsed();
    let status = stuck.status().as_u16();
    let retry_after = stuck.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let problem: Value = stuck.json().await.unwrap();
    assert_eq!(status, 503, "{}: {problem}", db.name);
    assert_eq!(problem["type"], "urn:entcp:problem:timeout", "{}: {problem}", db.name);
    assert_eq!(problem["title"], "Délai de traitement dépassé");
    assert!(problem["detail"].as_str().unwrap().contains("n'a pas abouti en 3 s"), "{problem}");
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert!(elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(6), "{}: {elapsed:?}", db.name);
    // Reads are not held by the lock: served within the limit meanwhile.
    assert_eq!(get(&token, format!("{base}/api/v1/orgs")).await.0, 200, "{}", db.name);
    holder.rollback().await.unwrap();

    // The interrupted write was not kept (the same SIREN goes in now), and the pool serves on.
    let created = post().await.unwrap();
    assert_eq!(created.status().as_u16(), 201, "{}: {}", db.name, created.text().await.unwrap());
    let (status, _, list) = get(&token, format!("{base}/api/v1/orgs")).await;
    assert_eq!(status, 200, "{}: {list}", db.name);
}

#[test]
fn uploads_imports_downloads_and_exports_are_not_limited_by_the_request_timeout() {
    let long = entcp::api::timeout::RUNS_LONG;
    for template in ["/api/v1/imports/annuaire", "/api/v1/groupements/{id}/documents", "/rgpd/{org}/export/{format}"] {
        assert!(long.contains(&template), "{template}");
    }
    let routes = entcp::api::routes();
    for template in long.iter().filter(|t| t.starts_with("/api/")) {
        assert!(routes.iter().any(|r| r.path == *template), "{template} names no API route");
    }
    // Every route that receives a file rather than JSON is among them.
    for route in routes.iter().filter(|r| r.request.is_some_and(|(media, _)| media != "application/json")) {
        assert!(long.contains(&route.path), "{} {} receives a file", route.method, route.path);
    }
}

/// One setting of the session of `store`'s (only) connection.
async fn show(store: &Store, setting: &str) -> String {
    sqlx::query_scalar(&format!("SHOW {setting}")).fetch_one(store.pool()).await.unwrap()
}

// A PostgreSQL statement had no limit: one stuck on a slow plan or a lock held its connection
// and pool slot for ever. Every connection now has `statement_timeout` (60 s) and
// `idle_in_transaction_session_timeout` (120 s); a statement past it is cancelled with its own
// problem type, and the connection serves on. SQLite has no statement limit: a writer waits for
// the write lock at most its busy timeout (10 s), then gets `database is locked` (503).
backend_test!(a_statement_past_its_time_limit_fails_with_a_clear_error_and_its_connection_serves_on);
async fn a_statement_past_its_time_limit_fails_with_a_clear_error_and_its_connection_serves_on(
    db: crate::common::TestDb,
) {
    let options = PoolOptions {
        max_connections: Some(1),
        statement_timeout: Duration::from_millis(500),
        ..PoolOptions::default()
    };
    let store = Store::connect_with(&db.url, options).await.unwrap();
    let (started, failed) = if db.store.backend().is_postgres() {
        let defaults = Store::connect(&db.url, Some(1)).await.unwrap();
        assert_eq!(show(&defaults, "statement_timeout").await, "1min");
        assert_eq!(show(&defaults, "idle_in_transaction_session_timeout").await, "2min");
        defaults.close().await;
        assert_eq!(show(&store, "statement_timeout").await, "500ms");
        // Migrations run without the limit, on a connection that then leaves the pool.
        store.migrate().await.unwrap();
        assert_eq!(show(&store, "statement_timeout").await, "500ms", "the pool kept its limit");
        let started = Instant::now();
        (started, sqlx::query("SELECT pg_sleep(3)").execute(store.pool()).await.expect_err("cancelled"))
    } else {
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(store.pool()).await.unwrap();
        assert_eq!(busy, 10_000, "the store's busy timeout");
        // The same wait, shortened for the test, behind a writer that holds the lock.
        sqlx::query("PRAGMA busy_timeout = 500").execute(store.pool()).await.unwrap();
        let holder = db.store.begin_write().await.unwrap();
        let started = Instant::now();
        let failed = store.begin_write().await.expect_err("the write lock is held");
        holder.rollback().await.unwrap();
        (started, failed)
    };
    let elapsed = started.elapsed();
    // Past the 500 ms limit (and within a margin for a loaded machine), not sqlx's 30 s.
    let within = elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(3500);
    assert!(within, "{}: {elapsed:?}", db.name);
    let problem = entcp::error::Problem::from(failed);
    assert_eq!(problem.kind.status().as_u16(), 503, "{}: {problem:?}", db.name);
    if db.store.backend().is_postgres() {
        assert_eq!(problem.kind, ProblemKind::Timeout, "{problem:?}");
        assert_eq!(problem.kind.title(), "Délai de traitement dépassé");
        assert!(problem.detail.contains("database.statement_timeout_seconds"), "{}", problem.detail);
    } else {
        assert_eq!(problem.kind, ProblemKind::Unavailable, "{problem:?}");
    }
    // The one connection of the pool serves on.
    let tx = store.begin_write().await.unwrap_or_else(|e| panic!("{}: the connection is lost: {e}", db.name));
    tx.commit().await.unwrap();
    add_user(&store, 1).await.unwrap_or_else(|e| panic!("{}: {e:?}", db.name));
}

backend_test!(concurrent_readiness_probes_share_one_heartbeat_reused_for_a_second);
async fn concurrent_readiness_probes_share_one_heartbeat_reused_for_a_second(db: crate::common::TestDb) {
    let store = Store::connect(&db.url, Some(2)).await.unwrap();
    // A warm pool (a first beat opened its connection): the beats counted below only write,
    // quickly, rather than connecting for longer than the reuse window on a loaded machine.
    store.check_ready(Duration::from_millis(1500)).await.unwrap_or_else(|e| panic!("{}: {e}", db.name));
    tokio::time::sleep(READY_REUSE).await;
    let before = store.heartbeats_started();
    let probes = (0..50).map(|_| store.check_ready(Duration::from_millis(1500)));
    for answer in futures_util::future::join_all(probes).await {
        answer.unwrap_or_else(|e| panic!("{}: {e}", db.name));
    }
    store.check_ready(Duration::from_millis(1500)).await.unwrap();
    let beats = store.heartbeats_started() - before;
    assert_eq!(beats, 1, "{}: 51 probes within a second, one heartbeat", db.name);
    tokio::time::sleep(READY_REUSE).await;
    store.check_ready(Duration::from_millis(1500)).await.unwrap();
    let beats = store.heartbeats_started() - before;
    assert_eq!(beats, 2, "{}: a probe after the reuse window beats again", db.name);
    let rows = common::count(&store, "SELECT COUNT(*) FROM store_heartbeat", &[]).await;
    assert_eq!(rows, 1, "{}: one row for this process, written twice", db.name);
}

backend_test!(a_lock_on_another_replicas_heartbeat_row_leaves_this_replica_ready);
async fn a_lock_on_another_replicas_heartbeat_row_leaves_this_replica_ready(db: crate::common::TestDb) {
    let other = Store::connect(&db.url, Some(2)).await.unwrap();
    other.check_ready(Duration::from_millis(1500)).await.unwrap();
    // A release before this one writes row 1, every replica the same.
    sqlx::query("INSERT INTO store_heartbeat (id, at) VALUES (1, '2026-01-01T00:00:00Z')")
        .execute(other.pool())
        .await
        .unwrap();
    let this = Store::connect(&db.url, Some(2)).await.unwrap();
    let mut holder = other.begin_write().await.unwrap();
    if db.name == "sqlite" {
        // SQLite: one writer per database file; a write held past the probe's limit makes
        // every process unready (503, within the limit), with one heartbeat for all the probes.
        let started = Instant::now();
        let probes = (0..10).map(|_| this.check_ready(Duration::from_millis(1500)));
        for answer in futures_util::future::join_all(probes).await {
            assert_eq!(answer.expect_err("the write lock is held").kind, ProblemKind::Unavailable);
        }
        // Within the probe's 1.5 s (and a margin for a loaded machine), not sqlx's 30 s.
        assert!(started.elapsed() < Duration::from_millis(4500), "{:?}", started.elapsed());
        assert_eq!(this.heartbeats_started(), 1);
        holder.rollback().await.unwrap();
        this.check_ready(Duration::from_millis(1500)).await.expect("ready once the lock is released");
        return;
    }
    // PostgreSQL: the other replicas' rows (its own and the old release's row 1) locked.
    sqlx::query("SELECT id FROM store_heartbeat FOR UPDATE").fetch_all(&mut *holder).await.unwrap();
    let started = Instant::now();
    this.check_ready(Duration::from_millis(1500)).await.expect("this replica's row is its own");
    assert!(started.elapsed() < Duration::from_millis(4500), "{:?}", started.elapsed());
    // The replica whose row is locked answers 503 within the probe, its beat bounded by lock_timeout.
    tokio::time::sleep(READY_REUSE).await;
    let stuck = other.check_ready(Duration::from_millis(1500)).await.expect_err("its own row is locked");
    assert_eq!(stuck.kind, ProblemKind::Unavailable, "{stuck}");
    holder.rollback().await.unwrap();
    tokio::time::sleep(READY_REUSE).await;
    other.check_ready(Duration::from_millis(1500)).await.expect("ready again once released");
}

// Each process writes its own heartbeat row (a random key): the rows of the processes stopped
// (each restart, each replica replaced) stayed for ever. A beat now deletes those no one wrote
// for FORGOTTEN_AFTER; on PostgreSQL it skips a row another transaction holds, never waits for it.
backend_test!(a_heartbeat_deletes_the_rows_of_processes_gone_and_keeps_the_live_ones);
async fn a_heartbeat_deletes_the_rows_of_processes_gone_and_keeps_the_live_ones(db: crate::common::TestDb) {
    let now = chrono::Utc::now();
    let minute = chrono::TimeDelta::minutes(1);
    // Gone: the earlier release's row 1 left a day ago, a replica just past the limit, and on
    // PostgreSQL one held by another transaction. Live: one just within the limit, a minute ago.
    let mut rows = vec![(1_i64, chrono::TimeDelta::days(1)), (11, FORGOTTEN_AFTER + minute)];
    rows.extend([(12, FORGOTTEN_AFTER - minute), (13, minute)]);
    if db.name == "postgres" {
        rows.push((14, FORGOTTEN_AFTER * 2));
    }
    for (id, ago) in rows {
        sqlx::query("INSERT INTO store_heartbeat (id, at) VALUES ($1, $2)")
            .bind(id)
            .bind(entcp::store::timestamp(now - ago))
            .execute(db.store.pool())
            .await
            .unwrap();
    }
    let ids = || async {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM store_heartbeat ORDER BY id").fetch_all(db.store.pool()).await.unwrap();
        ids
    };
    // SQLite: one writer per file (a held write holds every beat back): nothing is held.
    let mut holder = None;
    if db.name == "postgres" {
        let mut tx = db.store.begin_write().await.unwrap();
        sqlx::query("SELECT id FROM store_heartbeat WHERE id = 14 FOR UPDATE").fetch_all(&mut *tx).await.unwrap();
        holder = Some(tx);
    }
    let this = Store::connect(&db.url, Some(2)).await.unwrap();
    let started = Instant::now();
    this.check_ready(Duration::from_millis(1500)).await.unwrap_or_else(|e| panic!("{}: {e}", db.name));
    assert!(started.elapsed() < Duration::from_millis(4500), "{}: never waits: {:?}", db.name, started.elapsed());
    let left = ids().await;
    let own: Vec<i64> = left.iter().copied().filter(|id| !(1..=14).contains(id)).collect();
    assert_eq!(own.len(), 1, "{}: this process's row: {left:?}", db.name);
    let held: &[i64] = if db.name == "postgres" { &[14] } else { &[] };
    let expected: Vec<i64> = [12, 13].iter().chain(held).chain(&own).copied().collect();
    assert_eq!(left, expected, "{}: the rows gone deleted, the live ones and the held one kept", db.name);

    if let Some(tx) = holder {
        tx.rollback().await.unwrap();
    }
    tokio::time::sleep(READY_REUSE).await;
    this.check_ready(Duration::from_millis(1500)).await.unwrap_or_else(|e| panic!("{}: {e}", db.name));
    let expected: Vec<i64> = [12, 13].iter().chain(&own).copied().collect();
    assert_eq!(ids().await, expected, "{}: the row no longer held is deleted by the next beat", db.name);
}

// A change holding a key lock (a groupement's membership) runs on other connections while the
// one holding the advisory lock waits inside its transaction: the server's
// `idle_in_transaction_session_timeout` ended that session and released the lock under a change
// still running (and the holder's release then failed). The lock's connections have no such limit.
backend_test!(a_key_lock_outlives_the_idle_in_transaction_timeout_of_the_pool);
async fn a_key_lock_outlives_the_idle_in_transaction_timeout_of_the_pool(db: crate::common::TestDb) {
    let options = PoolOptions { idle_in_transaction_timeout: Duration::from_millis(200), ..PoolOptions::default() };
    let store = Store::connect_with(&db.url, options).await.unwrap();
    let lock = store.lock_key("essai", "groupement-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    if db.store.backend().is_postgres() {
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(db.store.pool())
        .await
        .unwrap();
        assert_eq!(held, 1, "the advisory lock is still held");
    }
    lock.release().await.expect("released by its holder");
}
