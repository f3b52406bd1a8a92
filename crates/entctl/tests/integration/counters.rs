//! Reference series: one `counters` table, carried on from the references given before it;
//! the RGPD logs' series, per controller.

use crate::common;
use entcp::rgpd::{self, Log};
use entcp::store::{counters, migrations, Backend, Store};
use sqlx::migrate::Migrator;
use std::borrow::Cow;

/// A store migrated up to (not including) migration `version`, holding one commune (`o1`),
/// and the instant its rows were written at.
pub(crate) async fn store_before(url: &str, backend: Backend, version: i64) -> (Store, &'static str) {
    let store = Store::connect(url, Some(2)).await.unwrap();
    migrate_before(&store, backend, version).await;
    let t = "2026-01-05T10:00:00.000000Z";
    insert_commune(&store, ("o1", "94001", "Ablon"), t).await;
    (store, t)
}

/// Writes the commune `(id, code, name)` as of `t`, with the columns of the earliest schemas.
async fn insert_commune(store: &Store, (id, code, name): (&str, &str, &str), t: &str) {
    let sql = "INSERT INTO orgs (id, kind, code, name, sort_name, content_hash, created_at, updated_at) \
               VALUES ($1, 'commune', $2, $3, $4, 'h', $5, $5)";
    common::execute(store, sql, &[id, code, name, &name.to_lowercase(), t]).await;
}

/// Migrates up to (not including) the counters migration, writes references the old way,
/// then migrates to the end and takes the next number of each series.
async fn counters_carry_on_from_the_references_already_given(url: &str, backend: Backend) {
    let (store, t) = store_before(url, backend, 17).await;
    insert_referenced(
        &store,
        t,
        "INSERT INTO conventions (id, reference, model_id, model_version, title, status, parameters, start_date, \
         end_date, root_id, created_by, created_at, updated_at) \
         VALUES ($1, $2, 'm', 1, 'T', 'draft', '{}', '2026-01-01', '2028-12-31', $1, 'u', $3, $3)",
        &[("c1", "CONV-2026-000007"), ("c2", "CONV-2026-000011"), ("c3", "CONV-2025-000003")],
    )
    .await;
    sqlx::query(
        "INSERT INTO groupements (id, reference, coordinator_org_id, title, object, terms, application_deadline, \
         status, created_by, created_at, updated_at) \
         VALUES ('g1', 'GC-2026-000004', 'o1', 'T', 'O', '{}', '2026-03-01', 'draft', 'u', $1, $1)",
    )
    .bind(t)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("INSERT INTO support_counters (year, last) VALUES (2026, 41)").execute(store.pool()).await.unwrap();

    migrate_then_take_next_references(
        store,
        &[
            ("CONV", 2026, "CONV-2026-000012"),
            ("CONV", 2025, "CONV-2025-000004"),
            ("GC", 2026, "GC-2026-000005"),
            ("ENT", 2026, "ENT-2026-000042"),
            ("ENT", 2027, "ENT-2027-000001"),
            ("ENT", 2026, "ENT-2026-000043"),
        ],
    )
    .await;
}

const BREACH_ROW: &str = "INSERT INTO rgpd_breaches (id, reference, org_id, title, facts, aware_at, data_categories, \
    people_approx, records_approx, consequences, measures, cnil_decision, created_by, created_at, updated_at) \
    VALUES ($1, $2, 'o1', 'T', 'F', $3, '[]', 1, 1, 'c', 'm', 'pending', 'u', $3, $3)";

/// Migrates up to (not including) the migration that numbered the RGPD logs from the
/// platform-wide counters, writes references the old way (the end of a random id, in
/// capitals), then up to the one that numbers them per controller, writes a second
/// controller's entry numbered from the platform-wide counter, and migrates to the end: every
/// row keeps its reference, and each controller's series carries on above its own highest
/// number written in digits, whatever the other controller holds.
async fn rgpd_references_carry_on_per_controller(url: &str, backend: Backend) {
    let (store, t) = store_before(url, backend, 33).await;
    let breaches = [("b1", "VIOL-2026-004512"), ("b2", "VIOL-2026-0A3F9B"), ("b3", "VIOL-2025-000020")];
    insert_referenced(&store, t, BREACH_ROW, &breaches).await;
    insert_referenced(
        &store,
        t,
        "INSERT INTO rgpd_requests (id, reference, org_id, kind, requester, received_on, due_on, status, \
         created_by, created_at, updated_at) \
         VALUES ($1, $2, 'o1', 'access', 'R', '2026-01-05', '2026-02-05', 'received', 'u', $3, $3)",
        &[("r1", "DEM-2026-123456"), ("r2", "DEM-2026-FFFFFF")],
    )
    .await;
    let (per_controller, previous) = migration_and_previous("_rgpd_references_per_controller.sql");
    migrate_through(&store, backend, previous).await;
    insert_commune(&store, ("o2", "94002", "Arcueil"), t).await;
    let mut tx = store.pool().begin().await.unwrap();
    let global = counters::next_reference(&mut tx, "VIOL", 2026).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(global, "VIOL-2026-004513");
    insert_referenced(&store, t, &BREACH_ROW.replace("'o1'", "'o2'"), &[("b4", global.as_str())]).await;
    migrate_through(&store, backend, per_controller).await;
    store.migrate().await.unwrap();

    let kept: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, reference, risk FROM rgpd_breaches ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let expected =
        [("b1", "VIOL-2026-004512"), ("b2", "VIOL-2026-0A3F9B"), ("b3", "VIOL-2025-000020"), ("b4", global.as_str())];
    let expected: Vec<_> =
        expected.iter().map(|(id, r)| (id.to_string(), r.to_string(), "unassessed".to_string())).collect();
    assert_eq!(kept, expected);
    let mut tx = store.pool().begin().await.unwrap();
    for (log, org, year, next) in [
        (Log::Breaches, "o1", 2026, "VIOL-2026-004513"),
        (Log::Breaches, "o1", 2025, "VIOL-2025-000021"),
        (Log::Breaches, "o1", 2027, "VIOL-2027-000001"),
        (Log::Breaches, "o2", 2026, "VIOL-2026-004514"),
        (Log::Breaches, "o2", 2025, "VIOL-2025-000001"),
        (Log::Requests, "o1", 2026, "DEM-2026-123457"),
        (Log::Requests, "o2", 2026, "DEM-2026-000001"),
    ] {
        assert_eq!(rgpd::next_reference(&mut tx, log, org, year).await.unwrap(), next, "{org} {log:?} {year}");
    }
    tx.commit().await.unwrap();
    // A reference is unique within its controller's log, not across controllers.
    insert_referenced(&store, t, &BREACH_ROW.replace("'o1'", "'o2'"), &[("b5", "VIOL-2026-004512")]).await;
    let again = sqlx::query(BREACH_ROW).bind("b6").bind("VIOL-2026-004512").bind(t).execute(store.pool()).await;
    assert!(again.is_err(), "a second VIOL-2026-004512 in the same log");
    store.close().await;
}

/// Inserts one row per `(id, reference)` with `insert`, whose parameters are the id, the
/// reference and the instant `t`.
async fn insert_referenced(store: &Store, t: &str, insert: &str, rows: &[(&str, &str)]) {
    for &(id, reference) in rows {
        sqlx::query(insert).bind(id).bind(reference).bind(t).execute(store.pool()).await.unwrap();
    }
}

/// Migrates `store` to the end, then takes the next reference of each `(prefix, year)` in
/// turn, in one transaction, checking it is the one expected.
async fn migrate_then_take_next_references(store: Store, expected: &[(&str, i32, &str)]) {
    store.migrate().await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    for &(prefix, year, next) in expected {
        assert_eq!(counters::next_reference(&mut tx, prefix, year).await.unwrap(), next, "{prefix} {year}");
    }
    tx.commit().await.unwrap();
    store.close().await;
}

/// The version of the migration whose file name ends with `suffix`, and the one before it,
/// read from the list of migrations (their numbers may move at a merge).
pub(crate) fn migration_and_previous(suffix: &str) -> (i64, i64) {
    let number = |file: &str| file[..4].parse::<i64>().unwrap();
    let files = migrations::FILES;
    let mine = files.iter().position(|(f, _)| f.ends_with(suffix)).unwrap();
    (number(files[mine].0), number(files[mine - 1].0))
}

/// Runs the migrations of `backend` older than `version`.
async fn migrate_before(store: &Store, backend: Backend, version: i64) {
    migrate_through(store, backend, version - 1).await;
}

/// Runs the migrations of `backend` up to `version` (included).
pub(crate) async fn migrate_through(store: &Store, backend: Backend, version: i64) {
    let all = migrations::for_backend(backend);
    let until = all.migrations.iter().take_while(|m| m.version <= version).cloned().collect::<Vec<_>>();
    Migrator { migrations: Cow::Owned(until), ..Migrator::DEFAULT }.run(store.pool()).await.unwrap();
}

/// Runs `check` on the URL of a new SQLite file.
pub(crate) async fn on_sqlite<F: std::future::Future<Output = ()>>(check: impl FnOnce(String) -> F) {
    let dir = tempfile::tempdir().unwrap();
    check(format!("sqlite://{}?mode=rwc", dir.path().join("entcp.db").display())).await;
}

/// Runs `check` on the URL of a new PostgreSQL database, dropped after (skipped without
/// the test server).
pub(crate) async fn on_postgres<F: std::future::Future<Output = ()>>(check: impl FnOnce(String) -> F) {
    let Some(admin_url) = common::postgres_admin_url() else { return };
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let admin = Store::connect(&admin_url, Some(1)).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(admin.pool()).await.unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    check(format!("{base}/{name}")).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(admin.pool()).await.unwrap();
    admin.close().await;
}

migration_test!(counters_carry_on_from_earlier_references, counters_carry_on_from_the_references_already_given);
migration_test!(rgpd_references_carry_on_per_controller);
