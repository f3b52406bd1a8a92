//! Query plans of the API's main lists and reads at national scale (issue 19): every
//! statement a route runs (captured from sqlx's statement log) is planned again by the
//! database — SQLite's `EXPLAIN QUERY PLAN`; PostgreSQL's `EXPLAIN EXECUTE` of the statement
//! prepared, its generic plan (`plan_cache_mode = force_generic_plan`, so the plan does not
//! depend on the values) with `enable_seqscan = off`, so that small test tables do not hide a
//! missing index — and no plan may read a whole table.

use crate::common::{self, fixtures, TestApp, TestDb};

use entcp::kernel::roles::Role;
use entcp::store::{Backend, Store};

backend_test!(the_main_lists_and_reads_find_their_rows_through_indexes);
async fn the_main_lists_and_reads_find_their_rows_through_indexes(db: TestDb) {
    common::import_sample(&db.store).await;
    let url = db.url.clone();
    let app = TestApp::builder(db)
        .user("admin@test.fr", Role::Admin, None)
        .user("dan@test.fr", Role::Dan, Some("academie:24"))
        .user("auditeur@test.fr", Role::Auditeur, Some("academie:24"))
        .user("dpo@test.fr", Role::Dpo, Some("academie:24"))
        .user("chef@ecole.fr", Role::ChefEtablissement, Some("0940176F"))
        .user("n2@ac-creteil.fr", Role::SupportN2, Some("academie:24"))
        .build()
        .await;
    let name = app.backend;
    let fixtures::FresnesSchool { school, ticket, convention, .. } =
        fixtures::fresnes_school(&app, "admin@test.fr", "chef@ecole.fr").await;
    let routes = [
        ("admin@test.fr", "/api/v1/tenants?limit=50".to_string()),
        ("dan@test.fr", "/api/v1/tenants?limit=50".to_string()),
        ("admin@test.fr", "/api/v1/tenants/fresnes-ecole".to_string()),
        ("admin@test.fr", "/api/v1/tenants?uncovered=true&limit=50".to_string()),
        ("dan@test.fr", "/api/v1/tenants?uncovered=true&limit=50".to_string()),
        ("admin@test.fr", "/api/v1/support/tickets?limit=50".to_string()),
        ("chef@ecole.fr", "/api/v1/support/tickets?limit=50".to_string()),
        ("n2@ac-creteil.fr", "/api/v1/support/tickets?limit=50".to_string()),
        ("admin@test.fr", format!("/api/v1/support/tickets/{}", ticket["reference"].as_str().unwrap())),
        ("admin@test.fr", "/api/v1/conventions?limit=50".to_string()),
        ("dan@test.fr", "/api/v1/conventions?limit=50".to_string()),
        ("admin@test.fr", format!("/api/v1/conventions/{}", convention["id"].as_str().unwrap())),
        // A party's read: the scope is decided first, on its parties (convention_parties_by_org).
        ("dan@test.fr", format!("/api/v1/conventions/{}", convention["id"].as_str().unwrap())),
        ("admin@test.fr", "/api/v1/audit?limit=50".to_string()),
        ("auditeur@test.fr", "/api/v1/audit?limit=50".to_string()),
        // The RGPD logs' records only where the DPO keeps the log (`rgpd::AuditReaders`).
        ("dpo@test.fr", "/api/v1/audit?limit=50".to_string()),
        ("admin@test.fr", "/api/v1/orgs?limit=50".to_string()),
        ("dan@test.fr", "/api/v1/orgs?limit=50".to_string()),
        ("admin@test.fr", format!("/api/v1/orgs/{}", school.id)),
    ];
    let statements = common::logs::Statements::capture();
    let mut run: Vec<(String, String)> = Vec::new();
    for (who, path) in &routes {
        let from = statements.count();
        let resp = app.get(path).acting_as(who).send().await;
        assert_eq!(resp.status, 200, "{name} {who} {path}: {}", resp.text);
        run.extend(statements.since(from).into_iter().map(|sql| (format!("{who} {path}"), sql)));
    }
    // The SLA sweep's search for the open tickets whose due date has come.
    let from = statements.count();
    let state = common::app::app_state(app.store.clone(), common::app::test_config(), app.clock.clone());
    entcp::support::jobs::sweep(&state.support(), common::t0()).await.unwrap();
    run.extend(statements.since(from).into_iter().map(|sql| ("balayage SLA".to_string(), sql)));
    // The daily coverage check of the running tenants (the gate's own reads).
    let from = statements.count();
    let tenant = entcp::tenants::get_tenant(&app.store, "fresnes-ecole").await.unwrap().unwrap();
    let tenants = state.tenants();
    let step = entcp::tenants::Move::to(entcp::tenants::Status::Provisioning).overriding("essai");
    entcp::tenants::transition(&tenants, &common::admin(), &tenant, step).await.unwrap();
    entcp::tenants::coverage::check_coverage(&tenants, common::t0()).await.unwrap();
    run.extend(statements.since(from).into_iter().map(|sql| ("couverture des conventions".to_string(), sql)));

    // The support report of a period: every ticket it reads is found by its creation date.
    let mut report = Vec::new();
    for path in ["/api/v1/support/report?month=2026-09", "/api/v1/support/report?from=2026-09-01&to=2026-09-15"] {
        let from = statements.count();
        let resp = app.get(path).acting_as("admin@test.fr").send().await;
        assert_eq!(resp.status, 200, "{name} {path}: {}", resp.text);
        let read = statements.since(from);
        report.extend(read.iter().filter(|sql| sql.contains("support_tickets t")).cloned());
        run.extend(read.into_iter().map(|sql| (format!("admin@test.fr {path}"), sql)));
    }

    // A store of its own for the plans (nothing of the app's runs on it).
    let store = Store::connect(&url, Some(1)).await.unwrap();
    assert!(report.len() >= 3, "{name}: the report's statements on the tickets: {report:#?}");
    for sql in &report {
        let steps = plan(&store, sql).await.unwrap();
        assert!(
            by_creation_date(store.backend(), &steps),
            "{name}: the report reads every ticket, not those of its period:\n    {sql}\n    {}",
            steps.join("\n    ")
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (route, sql) in run {
        let read = ["SELECT", "WITH"].iter().any(|word| sql.trim_start().to_ascii_uppercase().starts_with(word));
        if !read || !seen.insert(sql.clone()) {
            continue;
        }
        match plan(&store, &sql).await {
            Ok(steps) => {
                if let Some(scan) = full_scan(store.backend(), &steps) {
                    failures.push(format!("{route}: {scan}\n    {sql}\n    {}", steps.join("\n    ")));
                }
            }
            Err(e) => failures.push(format!("{route}: no plan ({e})\n    {sql}")),
        }
    }
    assert!(seen.len() >= routes.len(), "{name}: statements captured: {seen:#?}");
    assert!(
        failures.is_empty(),
        "{name}: {} statement(s) read a whole table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The open tickets of a tenant, through migration 0056's partial index: those the sweep
    // closes on the purged tenants, and those that hold a purge (`purge::Holds::of`).
    let purged = seen.iter().find(|sql| sql.contains("n.status = 'purged'"));
    let purged = purged.unwrap_or_else(|| panic!("{name}: the sweep's read of the purged tenants' tickets: {seen:#?}"));
    let holds = "SELECT COUNT(*) FROM support_tickets WHERE tenant_id = $1 AND status NOT IN ('resolved', 'closed') \
                 AND requester_role IN ($2, $3, $4, $5)";
    for sql in [purged.as_str(), holds] {
        let steps = plan(&store, sql).await.unwrap();
        assert!(
            steps.iter().any(|step| step.contains("support_tickets_open_by_tenant")),
            "{name}: not through the open tickets' index:\n    {sql}\n    {}",
            steps.join("\n    ")
        );
    }
}

backend_test!(the_lockout_check_reads_the_key_asked_for_through_the_primary_key);
async fn the_lockout_check_reads_the_key_asked_for_through_the_primary_key(db: TestDb) {
    use entcp::throttle::{Throttle, ThrottleConfig};
    let name = db.name;
    let throttle = Throttle::new(
        db.store.clone(),
        "api",
        ThrottleConfig { max_failures: 2, window_seconds: 60, ..Default::default() },
    );
    // Many keys over their limit, as an attacker rotating IPv6 /64 ranges leaves behind.
    for i in 0..40 {
        for _ in 0..2 {
            throttle.record_failure(&format!("ip:2001:db8:{i:x}::/64"), common::t0()).await.unwrap();
        }
    }
    let statements = common::logs::Statements::capture();
    let from = statements.count();
    assert_eq!(throttle.retry_after("ip:2001:db8:7::/64", common::t0()).await.unwrap(), Some(60), "{name}");
    assert_eq!(throttle.retry_after("ip:192.0.2.1", common::t0()).await.unwrap(), None, "{name}");
    let reads: Vec<String> = statements.since(from).into_iter().filter(|sql| sql.contains("auth_failures")).collect();
    assert_eq!(reads.len(), 2, "{name}: one read per check: {reads:#?}");
    for sql in &reads {
        assert!(sql.contains("subject = $2") && sql.contains("LIMIT"), "{name}: reads more than its key: {sql}");
        let store = Store::connect(&db.url, Some(1)).await.unwrap();
        let steps = plan(&store, sql).await.unwrap();
        assert_eq!(full_scan(store.backend(), &steps), None, "{name}: {steps:#?}");
        // The primary key's order serves ORDER BY: no sort of the key's rows either.
        assert!(!steps.iter().any(|s| s.contains("TEMP B-TREE") || s.contains("Sort")), "{name}: {steps:#?}");
    }
}

/// The plan of `sql`, one line per step (parameters unbound: NULL on SQLite; a generic plan on PostgreSQL).
pub(crate) async fn plan(store: &Store, sql: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = store.conn().await?;
    let rows = match store.backend() {
        Backend::Sqlite => sqlx::query(&store.explain_statement(sql)).fetch_all(&mut *conn).await?,
        Backend::Postgres => {
            let params = parameters(sql);
            let args = if params == 0 { String::new() } else { format!("({})", vec!["NULL"; params].join(", ")) };
            let setup = "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan; DEALLOCATE ALL";
            sqlx::raw_sql(setup).execute(&mut *conn).await?;
            sqlx::raw_sql(&format!("PREPARE plan_check AS {sql}")).execute(&mut *conn).await?;
            sqlx::raw_sql(&format!("EXPLAIN EXECUTE plan_check{args}")).fetch_all(&mut *conn).await?
        }
    };
    rows.iter().map(|row| store.plan_step(row)).collect()
}

/// The highest `$n` of a statement.
fn parameters(sql: &str) -> usize {
    let mut highest = 0;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        highest = highest.max(digits.parse().unwrap_or(0));
    }
    highest
}

/// The step of a plan that reads a whole table, if any: SQLite's `SCAN t` without an index (a
/// scan of a subquery's rows, a co-routine's or a materialised view's, of a constant row or a
/// virtual table is not a table's); PostgreSQL's `Seq Scan`, which `enable_seqscan = off`
/// leaves only where no index serves.
pub(crate) fn full_scan(backend: Backend, steps: &[String]) -> Option<&String> {
    let subqueries: Vec<&str> = steps
        .iter()
        .filter_map(|step| {
            let step = step.trim_start();
            step.strip_prefix("CO-ROUTINE ").or_else(|| step.strip_prefix("MATERIALIZE "))
        })
        .map(str::trim)
        .collect();
    steps.iter().find(|step| match backend {
        Backend::Sqlite => step.trim_start().strip_prefix("SCAN ").is_some_and(|scanned| {
            !scanned.contains(" USING ")
                && !scanned.starts_with('(')
                && !scanned.starts_with("CONSTANT ROW")
                && !scanned.contains("VIRTUAL TABLE")
                && !subqueries.contains(&scanned.trim())
        }),
        Backend::Postgres => step.contains("Seq Scan on "),
    })
}

/// Whether a plan finds the tickets through an index on their creation date: a whole scan of an
/// index (SQLite's `SCAN t USING INDEX`, a PostgreSQL index scan without condition) reads every
/// ticket too, which `full_scan` lets pass for the lists (their `LIMIT` stops it).
fn by_creation_date(backend: Backend, steps: &[String]) -> bool {
    steps.iter().any(|step| match backend {
        Backend::Sqlite => step.trim_start().starts_with("SEARCH t USING") && step.contains("created_at"),
        Backend::Postgres => step.contains("Index Cond") && step.contains("created_at"),
    })
}

#[test]
fn full_scans_are_told_from_index_reads() {
    let plan = |steps: &[&str]| steps.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let sqlite = |steps: &[&str]| full_scan(Backend::Sqlite, &plan(steps)).cloned();
    assert_eq!(sqlite(&["SCAN audit_log"]).as_deref(), Some("SCAN audit_log"));
    assert_eq!(sqlite(&["SEARCH audit_log USING INDEX audit_by_scope (scope_org_id=?)"]), None);
    assert_eq!(sqlite(&["SCAN t USING INDEX sqlite_autoindex_tenants_1"]), None);
    assert_eq!(sqlite(&["SCAN CONSTANT ROW"]), None);
    assert_eq!(sqlite(&["CO-ROUTINE picked", "SCAN orgs USING INDEX orgs_by_sort_name", "SCAN picked"]), None);
    assert!(sqlite(&["CO-ROUTINE picked", "SCAN orgs", "SCAN picked"]).is_some());
    let postgres = |steps: &[&str]| full_scan(Backend::Postgres, &plan(steps)).cloned();
    assert!(postgres(&["  ->  Seq Scan on audit_log  (cost=10000000000.00..10000000001.01 rows=1 width=32)"]).is_some());
    assert_eq!(postgres(&["Index Scan using audit_by_scope on audit_log"]), None);
    assert_eq!(parameters("SELECT 1 FROM t WHERE a = $1 AND b IN ($2, $10)"), 10);
    assert_eq!(parameters("SELECT 1"), 0);
    let created = |backend, steps: &[&str]| by_creation_date(backend, &plan(steps));
    assert!(created(
        Backend::Sqlite,
        &["SEARCH t USING INDEX support_tickets_by_created (created_at>? AND created_at<?)"]
    ));
    assert!(!created(Backend::Sqlite, &["SCAN t USING INDEX support_tickets_by_level"]));
    assert!(created(Backend::Postgres, &["        Index Cond: ((created_at >= $1) AND (created_at < $2))"]));
    assert!(!created(Backend::Postgres, &["  ->  Index Scan using support_tickets_by_level on support_tickets t"]));
}
