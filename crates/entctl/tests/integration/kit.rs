//! The test kit itself: PostgreSQL clones of the migrated template are dropped when the
//! test ends (panics included), and the fixtures build through the in-process API.

use crate::common;

use common::fixtures;
use common::{TestApp, TestDb};
use entcp::kernel::roles::Role;
use entcp::store::Store;

/// Whether the PostgreSQL server holds a database of that name.
async fn database_exists(admin_url: &str, name: &str) -> bool {
    let admin = Store::connect(admin_url, Some(1)).await.unwrap();
    let n = common::count(&admin, "SELECT COUNT(*) AS n FROM pg_database WHERE datname = $1", &[name]).await;
    admin.close().await;
    n > 0
}

fn database_name(db: &TestDb) -> String {
    db.url.rsplit_once('/').unwrap().1.to_string()
}

#[tokio::test]
async fn a_postgres_test_database_is_a_migrated_clone_dropped_with_the_test() {
    let Some(admin_url) = common::postgres_admin_url() else {
        eprintln!("TEST_DATABASE_URL is unset: PostgreSQL case skipped");
        return;
    };
    let db = common::postgres().await.unwrap();
    let name = database_name(&db);
    assert!(name.starts_with(common::pg::CLONE_PREFIX), "{name}");
    assert!(database_exists(&admin_url, &common::pg::template_name()).await, "the template is kept");
    // Migrated: a table of the last migrations is there and empty.
    assert_eq!(common::count_kind(&db.store, "ecole").await, 0);
    assert!(database_exists(&admin_url, &name).await);
    drop(db);
    assert!(!database_exists(&admin_url, &name).await, "{name} left behind");

    // A test that panics drops its database too.
    let db = common::postgres().await.unwrap();
    let name = database_name(&db);
    let panicked = tokio::spawn(async move {
        let _db = db;
        panic!("a failing test");
    })
    .await;
    assert!(panicked.is_err());
    assert!(!database_exists(&admin_url, &name).await, "{name} left behind by a panic");
}

backend_test!(fixtures_build_tenants_tickets_conventions_and_groupements_through_the_api);
async fn fixtures_build_tenants_tickets_conventions_and_groupements_through_the_api(db: TestDb) {
    common::import_sample(&db.store).await;
    let app = TestApp::builder(db)
        .user("admin@test.fr", Role::Admin, None)
        .user("chef@ecole.fr", Role::ChefEtablissement, Some("0940176F"))
        .build()
        .await;
    let name = app.backend;
    let fixtures::FresnesSchool { school, commune, tenant, ticket, convention } =
        fixtures::fresnes_school(&app, "admin@test.fr", "chef@ecole.fr").await;
    assert_eq!(school.code, "0940176F", "{name}");
    assert_eq!(commune.code, "94034", "{name}");

    assert_eq!(tenant["tenant"]["slug"], "fresnes-ecole", "{name}: {tenant}");
    assert_eq!(ticket["subject"], "ENT inaccessible", "{name}: {ticket}");
    let mine = app.get("/api/v1/support/tickets").acting_as("chef@ecole.fr").send().await;
    assert_eq!(mine.status, 200, "{name}: {}", mine.text);
    assert!(mine.text.contains(ticket["id"].as_str().unwrap()), "{name}: {}", mine.text);

    assert_eq!(convention["status"], "draft", "{name}: {convention}");

    let epci = fixtures::epci(&app.store, "CA du test", &fixtures::group_siren(1), &[&commune]).await;
    let groupement = fixtures::groupement(&app, "admin@test.fr", &epci.id).await;
    assert_eq!(groupement["status"], "open", "{name}: {groupement}");
    let unknown = app.get("/api/v1/groupements/inexistant").acting_as("admin@test.fr").send().await;
    assert_eq!(unknown.status, 404, "{name}: {}", unknown.text);
}
