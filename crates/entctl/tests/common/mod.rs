//! Test harness: the same tests run on a real SQLite file and, when
//! `TEST_DATABASE_URL` is set (always in CI), on a fresh PostgreSQL database.
#![allow(dead_code)]

pub use app::{Resp, TestApp};

pub mod app;
pub mod browser;
pub mod fixtures;
pub mod logs;
pub mod pg;
pub mod smtp;

use entcp::store::Store;
use std::path::{Path, PathBuf};

pub struct TestDb {
    pub name: &'static str,
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    _drop: Option<pg::DropOnExit>,
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The PostgreSQL server to test against; CI must provide one.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI is set but TEST_DATABASE_URL is not: the PostgreSQL half of the store tests would be skipped"
            );
            None
        }
    }
}

/// A fresh SQLite file in a temp dir.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("entcp.db").display());
    let store = Store::connect(&url, None).await.expect("sqlite connects");
    store.migrate().await.expect("sqlite migrates");
    TestDb { name: "sqlite", url, store, _dir: Some(dir), _drop: None }
}

/// A fresh database on the test PostgreSQL server, if there is one: a clone of the
/// run's migrated template, dropped when the returned value is (even on panic).
pub async fn postgres() -> Option<TestDb> {
    let admin_url = postgres_admin_url()?;
    let (url, guard) = pg::clone_template(&admin_url).await;
    let store = Store::connect(&url, Some(5)).await.expect("postgres connects");
    Some(TestDb { name: "postgres", url, store, _dir: None, _drop: Some(guard) })
}

/// Every backend available: SQLite always, PostgreSQL when configured.
/// Prefer [`backend_test!`]: it makes each backend its own test case.
pub async fn backends() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    dbs.extend(postgres().await);
    dbs
}

/// `backend_test!(name);` above `async fn name(db: TestDb)` makes two test cases,
/// `name::sqlite` and `name::postgres`, so that a failure names its backend and one
/// backend's failure does not hide the other's. Extra arguments go to `#[tokio::test(..)]`.
/// Without `TEST_DATABASE_URL` the postgres case is skipped locally (it says so) and fails
/// in CI (see [`postgres_admin_url`]).
#[allow(unused_macros)]
macro_rules! backend_test {
    ($name:ident $(, $($arg:tt)+)?) => {
        mod $name {
            #[tokio::test $( ($($arg)+) )?]
            async fn sqlite() {
                super::$name(crate::common::sqlite().await).await
            }
            #[tokio::test $( ($($arg)+) )?]
            async fn postgres() {
                match crate::common::postgres().await {
                    Some(db) => super::$name(db).await,
                    None => eprintln!("TEST_DATABASE_URL is unset: PostgreSQL case skipped"),
                }
            }
        }
    };
}

/// `migration_test!(name, check, args…);` makes two test cases, `name::sqlite` and
/// `name::postgres`, each calling `check(&url, backend, args…)` (a function of the module it
/// stands in) on a new, empty database of its backend (`counters::on_sqlite`,
/// `counters::on_postgres`): for a migration checked from the schema before it.
/// `migration_test!(name);` calls `name` itself. Integration binary only.
#[allow(unused_macros)]
macro_rules! migration_test {
    ($name:ident) => {
        migration_test!($name, $name);
    };
    ($name:ident, $check:ident $(, $arg:expr)*) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                crate::counters::on_sqlite(|url| async move {
                    super::$check(&url, entcp::store::Backend::Sqlite $(, $arg)*).await
                })
                .await;
            }
            #[tokio::test]
            async fn postgres() {
                crate::counters::on_postgres(|url| async move {
                    super::$check(&url, entcp::store::Backend::Postgres $(, $arg)*).await
                })
                .await;
            }
        }
    };
}

/// `race_test!(name);`: a [`backend_test!`] for a race, on a runtime of 4 worker threads so
/// that what the test starts at once does run at once.
#[allow(unused_macros)]
macro_rules! race_test {
    ($name:ident) => {
        backend_test!($name, flavor = "multi_thread", worker_threads = 4);
    };
}

pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-09-01T08:00:00Z").unwrap().with_timezone(&chrono::Utc)
}

/// An empty database of the same backend as `db` (a restore's target): its URL and what drops it.
pub async fn empty_target(db: &TestDb) -> (String, Box<dyn std::any::Any>) {
    if db.name == "postgres" {
        let (url, guard) = pg::empty_database(&postgres_admin_url().unwrap()).await;
        return (url, Box::new(guard));
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("restored.db").display());
    (url, Box::new(dir))
}

/// Runs the migrations up to `last` (included) on `store`, as the release that stopped there did.
pub async fn migrate_up_to(store: &Store, last: i64) {
    let current = entcp::store::migrations::for_backend(store.backend());
    let earlier = current.iter().filter(|m| m.version <= last).cloned().collect();
    let migrator =
        sqlx::migrate::Migrator { migrations: std::borrow::Cow::Owned(earlier), ..sqlx::migrate::Migrator::DEFAULT };
    migrator.run(store.pool()).await.unwrap();
}

/// Holds writers off, to line two concurrent runs up behind it: on SQLite the write lock
/// (`BEGIN IMMEDIATE`), on PostgreSQL the rows `locked` selects (`SELECT … FOR UPDATE`, `binds`
/// bound in order). Readers go on; commit it to let the writers through, one at a time.
pub async fn hold_writes(store: &Store, locked: &str, binds: &[&str]) -> entcp::store::Tx {
    let mut tx = store.begin_write().await.unwrap();
    if store.backend().is_postgres() {
        let query = binds.iter().fold(sqlx::query(locked), |query, value| query.bind(*value));
        query.fetch_all(&mut *tx).await.unwrap_or_else(|e| panic!("{locked}: {e}"));
    }
    tx
}

/// Lets the runs started meanwhile reach what [`hold_writes`] holds.
pub async fn let_them_queue() {
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
}

/// Polls `check` every `every` until it holds: true then, false once `seconds` passed
/// without it (for a caller that says more of what it found then).
pub async fn within<F: std::future::Future<Output = bool>>(
    seconds: u64,
    every: std::time::Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check().await {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `seconds`.
pub async fn eventually<F: std::future::Future<Output = bool>>(what: &str, seconds: u64, check: impl FnMut() -> F) {
    if !within(seconds, std::time::Duration::from_millis(100), check).await {
        panic!("not within {seconds} s: {what}");
    }
}

/// The one number a counting query (`SELECT COUNT(*) …`) answers, `binds` bound in order.
pub async fn count(store: &Store, sql: &str, binds: &[&str]) -> i64 {
    let query = binds.iter().fold(sqlx::query_scalar::<_, i64>(sql), |query, value| query.bind(*value));
    query.fetch_one(store.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The pages of the list `url` (its query included), then of each `next_cursor` it gives
/// back, as `get` reads them: their bodies, each answered 200.
pub async fn pages<'a>(url: &str, get: impl Fn(String) -> app::Req<'a>) -> Vec<serde_json::Value> {
    let mut pages = Vec::new();
    let mut next = url.to_string();
    loop {
        let page = get(next).send().await;
        assert_eq!(page.status, 200, "{url}: {}", page.text);
        let cursor = page.body["next_cursor"].as_str().map(str::to_string);
        pages.push(page.body);
        assert!(pages.len() <= 1000, "{url}: its cursors never end");
        let Some(cursor) = cursor else { return pages };
        next = format!("{url}{}cursor={cursor}", if url.contains('?') { '&' } else { '?' });
    }
}

/// The items of `pages`, in order.
pub fn items_of(pages: &[serde_json::Value]) -> Vec<serde_json::Value> {
    pages.iter().flat_map(|page| page["items"].as_array().unwrap().iter().cloned()).collect()
}

/// Every record of the audit log with the filters `query` (`&target_kind=…`) that `get`
/// reads, walking pages of `limit` records ([`pages`]): each page but the last is full, the
/// last gives no cursor.
pub async fn audit_walk<'a>(query: &str, limit: usize, get: impl Fn(String) -> app::Req<'a>) -> Vec<serde_json::Value> {
    let pages = pages(&format!("/api/v1/audit?limit={limit}{query}"), get).await;
    for page in &pages[..pages.len() - 1] {
        assert_eq!(page["items"].as_array().unwrap().len(), limit, "a page with a cursor is full: {page}");
    }
    items_of(&pages)
}

/// The summaries of the audit records of `action` on `target_id`, as JSON, oldest first.
pub async fn audit_summaries(store: &Store, action: &str, target_id: &str) -> Vec<serde_json::Value> {
    let sql = "SELECT summary FROM audit_log WHERE action = $1 AND target_id = $2 ORDER BY seq";
    let summaries = texts(store, sql, &[action, target_id]).await;
    summaries.iter().map(|s| serde_json::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))).collect()
}

/// The summary of the one audit record of `action` on `target_id`, as JSON.
pub async fn audit_summary(store: &Store, action: &str, target_id: &str) -> serde_json::Value {
    let mut summaries = audit_summaries(store, action, target_id).await;
    assert_eq!(summaries.len(), 1, "one {action} record of {target_id}: {summaries:?}");
    summaries.remove(0)
}

/// The number of audit records of `action`.
pub async fn audited(store: &Store, action: &str) -> i64 {
    count(store, "SELECT COUNT(*) FROM audit_log WHERE action = $1", &[action]).await
}

/// The number of audit records of `action` on the target `target_id`.
pub async fn audited_on(store: &Store, action: &str, target_id: &str) -> i64 {
    count(store, "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND target_id = $2", &[action, target_id]).await
}

/// The text column a query (`SELECT col FROM …`) answers, one value a row, `binds` bound in order.
pub async fn texts(store: &Store, sql: &str, binds: &[&str]) -> Vec<String> {
    let query = binds.iter().fold(sqlx::query_scalar::<_, String>(sql), |query, value| query.bind(*value));
    query.fetch_all(store.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Waits (10 s at most) until the tenant `slug` was applied with the service `code`: a change
/// made over HTTP or in the console is reconciled in the background (`reconcile_soon`), and the
/// RGPD register describes a tenant from what it was applied with.
pub async fn applied_with(store: &Store, slug: &str, code: &str) {
    let sql = "SELECT COALESCE(applied_services, '[]') FROM tenants WHERE slug = $1";
    let quoted = format!("\"{code}\"");
    for _ in 0..200 {
        if texts(store, sql, &[slug]).await.iter().any(|applied| applied.contains(&quoted)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("tenant {slug}: never applied with {code}: {:?}", texts(store, sql, &[slug]).await);
}

/// Runs a statement (`UPDATE …`, `INSERT …`), `binds` bound in order as text; the rows it touched.
pub async fn execute(store: &Store, sql: &str, binds: &[&str]) -> u64 {
    let query = binds.iter().fold(sqlx::query(sql), |query, value| query.bind(*value));
    query.execute(store.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}")).rows_affected()
}

/// Makes the database refuse the writes `event` (`INSERT` or `UPDATE`) makes on `table` when
/// the new row matches `when` (SQL on `NEW`), until [`lift_fault`]: a write that fails as a
/// database that stopped answering (or a process that crashed) would fail it.
pub async fn inject_fault(store: &Store, table: &str, event: &str, when: &str) {
    let statements = if store.backend().is_postgres() {
        vec![
            "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"
                .to_string(),
            format!(
                "CREATE TRIGGER injected_fault BEFORE {event} ON {table} FOR EACH ROW WHEN ({when}) \
                 EXECUTE FUNCTION injected_fault()"
            ),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER injected_fault BEFORE {event} ON {table} FOR EACH ROW WHEN {when} \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        )]
    };
    for statement in statements {
        sqlx::query(&statement).execute(store.pool()).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// Lifts the fault [`inject_fault`] put on `table`.
pub async fn lift_fault(store: &Store, table: &str) {
    let statements = if store.backend().is_postgres() {
        vec![format!("DROP TRIGGER injected_fault ON {table}"), "DROP FUNCTION injected_fault()".to_string()]
    } else {
        vec!["DROP TRIGGER injected_fault".to_string()]
    };
    for statement in statements {
        sqlx::query(&statement).execute(store.pool()).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// Queues the `test` e-mail to `to` at `now` in its own committed transaction; its outbox id.
pub async fn queue_test_mail(store: &Store, to: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut tx = store.begin_write().await.unwrap();
    let ids = entcp::notify::enqueue(&mut tx, &[to.to_string()], "test", serde_json::json!({}), now).await.unwrap();
    tx.commit().await.unwrap();
    let [id] = <[String; 1]>::try_from(ids).expect("one message for one recipient");
    id
}

/// What a test needing `what` does without it: fails under CI (`CI is set but {what}`), else
/// says `skipped` on stderr (the caller then skips).
pub fn skip_unless_ci(what: &str, skipped: &str) {
    assert!(std::env::var("CI").is_err(), "CI is set but {what}");
    eprintln!("{skipped}");
}

/// A mail as the outbox holds it.
pub struct QueuedMail {
    pub id: String,
    pub created_at: String,
    /// The JSON array of addresses, as stored: one, each recipient has a message of their own.
    pub recipients: String,
    pub context: serde_json::Value,
}

impl QueuedMail {
    /// The one address the mail goes to (fails the test on a mail to several).
    pub fn recipient(&self) -> String {
        let addresses: Vec<String> = serde_json::from_str(&self.recipients).expect("a JSON array of addresses");
        let [address] = <[String; 1]>::try_from(addresses).expect("one recipient per mail");
        address
    }
}

/// The addresses each mail of `mails` goes to, one per mail, in their order.
pub fn recipients_of<'a>(mails: impl IntoIterator<Item = &'a QueuedMail>) -> Vec<String> {
    mails.into_iter().map(QueuedMail::recipient).collect()
}

/// The mails queued with `template`, oldest first (a notice's in its recipients' order).
pub async fn queued_mails(store: &Store, template: &str) -> Vec<QueuedMail> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, created_at, recipients, context FROM outbox WHERE template = $1 ORDER BY created_at, id",
    )
    .bind(template)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mail = |(id, created_at, recipients, context): (String, String, String, String)| QueuedMail {
        id,
        created_at,
        recipients,
        context: serde_json::from_str(&context).expect("a mail context is JSON"),
    };
    rows.into_iter().map(mail).collect()
}

/// A notice as its recipients got it: one mail each, gathered.
pub struct QueuedNotice {
    pub context: serde_json::Value,
    /// Each mail's one address, in the order they were queued.
    pub recipients: Vec<String>,
}

/// The notices queued with `template`, oldest first: the mails queued together with one
/// context, one per address (an address met again starts another notice, so a notice queued
/// twice counts twice). Fails the test on a mail to several addresses.
pub async fn queued_notices(store: &Store, template: &str) -> Vec<QueuedNotice> {
    let mut notices: Vec<(String, QueuedNotice)> = Vec::new();
    for mail in queued_mails(store, template).await {
        let address = mail.recipient();
        match notices.last_mut() {
            Some((created_at, notice))
                if *created_at == mail.created_at
                    && notice.context == mail.context
                    && !notice.recipients.contains(&address) =>
            {
                notice.recipients.push(address)
            }
            _ => notices.push((mail.created_at, QueuedNotice { context: mail.context, recipients: vec![address] })),
        }
    }
    notices.into_iter().map(|(_, notice)| notice).collect()
}

/// Counts rows of `orgs` of a kind.
pub async fn count_kind(store: &Store, kind: &str) -> i64 {
    count(store, "SELECT COUNT(*) AS n FROM orgs WHERE kind = $1", &[kind]).await
}

/// The whole registry as sorted (kind, code, content_hash) triples.
pub async fn registry_fingerprint(store: &Store) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT kind, code, content_hash FROM orgs ORDER BY kind, code")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// The operator at the command line: full rights.
/// Imports the real Val-de-Marne sample of the annuaire (613 écoles) as the admin, at `t0()`.
pub async fn import_sample(store: &Store) {
    let csv = std::fs::read(fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let options = entcp::registry::import::ImportOptions::default();
    entcp::registry::import::import_annuaire(store, &admin(), std::io::Cursor::new(csv), options, t0()).await.unwrap();
}

/// The sample annuaire and one collège of Fresnes added to it (`0940999A`).
pub async fn import_sample_with_college(store: &Store) {
    import_sample(store).await;
    import_college(store).await;
}

/// The fixture's collège of the 94 (0940999A, funded by the Département du Val-de-Marne).
pub async fn import_college(store: &Store) {
    let csv = std::fs::read(fixture("annuaire-education-94-college.csv")).unwrap();
    let options = entcp::registry::import::ImportOptions::default();
    entcp::registry::import::import_annuaire(store, &admin(), std::io::Cursor::new(csv), options, t0()).await.unwrap();
}

pub fn admin() -> entcp::identity::Actor {
    entcp::identity::Actor::cli()
}

/// Creates a user holding `role` at `org` (an org key; none for admin) and returns a fresh API token.
pub async fn token_for(store: &Store, email: &str, role: entcp::kernel::roles::Role, org: Option<&str>) -> String {
    use entcp::identity;
    let org = match org {
        Some(key) => Some(entcp::registry::resolve_org(store, key).await.expect("org of the binding exists")),
        None => None,
    };
    let new =
        identity::NewUser { email: email.into(), display_name: email.into(), org: org.as_ref().map(|o| o.id.clone()) };
    let user = identity::create_user(store, &admin(), new, t0()).await.expect("user created");
    let role = identity::UserRole::new(&user.id, role, org.as_ref());
    identity::grant(store, &admin(), role, t0()).await.expect("role granted");
    identity::create_token(store, &admin(), &user.id, "test", None, t0()).await.expect("token created").token
}

/// An HTTP client that sends `token` as bearer.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// Serves the API of `store` on a free loopback port; returns its base URL.
pub async fn serve(store: Store, clock: std::sync::Arc<entcp::clock::FixedClock>) -> String {
    serve_with(store, clock, |_| {}).await
}

/// [`serve`] with a configuration adjusted by `adjust`; the peer address reaches the app.
pub async fn serve_with(
    store: Store,
    clock: std::sync::Arc<entcp::clock::FixedClock>,
    adjust: impl FnOnce(&mut entcp::config::Config),
) -> String {
    serve_knowing_base(store, clock, |config, _| adjust(config)).await
}

/// [`serve_with`] whose `adjust` knows the base URL (`http://127.0.0.1:<port>`) before
/// the state is built (callback addresses of the console).
pub async fn serve_knowing_base(
    store: Store,
    clock: std::sync::Arc<entcp::clock::FixedClock>,
    adjust: impl FnOnce(&mut entcp::config::Config, &str),
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = app::test_config();
    adjust(&mut config, &base);
    let state = app::app_state(store, config, clock);
    let app = entcp::api::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// [`serve_knowing_base`] with the console's public address set to the base URL (the browser
/// journeys' server).
pub async fn serve_console(store: Store, clock: std::sync::Arc<entcp::clock::FixedClock>) -> String {
    serve_knowing_base(store, clock, |config, base| {
        config.console.public_url = base.to_string();
    })
    .await
}

/// `entctl args` on the database at `db_url`, run by the operator `exploitant` (`cli:exploitant`
/// in the audit); its success and what it printed.
pub fn entctl(db_url: &str, args: &[&str]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entctl"));
    for var in ["DATABASE_URL", "ENTCP_CONFIG", "ENTCP_LISTEN", "RUST_LOG", "LOGNAME"] {
        cmd.env_remove(var);
    }
    let out = cmd
        .current_dir(data.path())
        .env("USER", "exploitant")
        .env("ENTCP_DATA_DIR", data.path())
        .env("ENTCP_DATABASE_URL", db_url)
        .env("ENTCP_LOG_LEVEL", "warn")
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The shipped catalog with an overlay that makes the latest visio option second-degree only:
/// neither `socle-1d` with `visio` nor any first-degree tenant's visio resolves any more.
pub fn catalog_with_visio_second_degree_only() -> entcp::catalog::Catalog {
    let overlay = "bouquets:\n  - id: visio\n    version: 2\n    kind: option\n    degrees: [2D]\n    \
                   name: Option visioconférence\n    description: Classes virtuelles.\n    services: [visio]\n";
    let mut files = entcp::catalog::SHIPPED.to_vec();
    files.push(("zz-visio.yaml", overlay));
    let catalog = entcp::catalog::Catalog::from_files(&files).unwrap();
    assert!(catalog.resolve("socle-1d", &["visio"]).is_err());
    catalog
}

/// The ordinary spaces of a document's text where French typography sets a no-break one
/// (`documents::typography`): before « ; : ! ? » and « » », after « « », between a number and
/// « € » or « % »; each with the characters around it. Empty for a text set in French.
pub fn loose_spaces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let loose = |i: usize| {
        let (before, after) = (chars[i - 1], chars[i + 1]);
        (!before.is_whitespace() && matches!(after, ';' | ':' | '!' | '?' | '»'))
            || before == '«'
            || (before.is_ascii_digit() && matches!(after, '€' | '%'))
    };
    (1..chars.len().saturating_sub(1))
        .filter(|&i| chars[i] == ' ' && loose(i))
        .map(|i| chars[i.saturating_sub(20)..(i + 20).min(chars.len())].iter().collect())
        .collect()
}

/// The body of an HTML page (what `documents::to_html` renders after its style sheet).
pub fn html_body(html: &str) -> &str {
    html.split_once("<body>").map_or(html, |(_, body)| body)
}
