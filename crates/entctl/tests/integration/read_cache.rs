//! The cache of identical reads (the organisation list and one organisation): served
//! again only while the database has not changed, never across callers' scopes.

use crate::common;

use common::{TestApp, TestDb};
use entcp::kernel::roles::Role;
use entcp::store::Store;
use std::time::{Duration, Instant};

/// Waits (at most 10 s) until the app's store serves cached reads.
async fn until_caching(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.caching() {
        assert!(Instant::now() < deadline, "the read cache never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn app_with_dan(db: TestDb) -> TestApp {
    common::import_sample(&db.store).await;
    let app = TestApp::builder(db)
        .user("admin@test.fr", Role::Admin, None)
        .user("dan@ac-creteil.fr", Role::Dan, Some("academie:24"))
        .user("chef@ecole.fr", Role::ChefEtablissement, Some("0940176F"))
        .build()
        .await;
    until_caching(&app.store).await;
    app
}

const LIST: &str = "/api/v1/orgs?limit=50&commune=94034";

backend_test!(a_repeated_read_is_served_from_the_cache);
async fn a_repeated_read_is_served_from_the_cache(db: TestDb) {
    let app = app_with_dan(db).await;
    let name = app.backend;
    for path in [LIST, "/api/v1/orgs/0940176F"] {
        let first = app.get(path).acting_as("dan@ac-creteil.fr").send().await;
        assert_eq!(first.status, 200, "{name}: {}", first.text);
        // The watcher may yet see a commit made before (a token's first use records it) and
        // empty the cache: two reads in a row until the second is served from it (10 s at most).
        let hits = std::cell::Cell::new((0, 0));
        let served_again = || async {
            let first = app.get(path).acting_as("dan@ac-creteil.fr").send().await;
            let before = app.store.cache_counts();
            let again = app.get(path).acting_as("dan@ac-creteil.fr").send().await;
            let after = app.store.cache_counts();
            assert_eq!(again.text, first.text, "{name}: {path}");
            assert_eq!(again.header("etag"), first.header("etag"), "{name}: {path}");
            hits.set((before.hits, after.hits));
            after.hits == before.hits + 2
        };
        common::within(10, entcp::store::WATCH_INTERVAL, served_again).await;
        let (before, after) = hits.get();
        // Two hits: the page's read, and the check of the caller's address against the
        // failed-authentication counts (a cached read too, kernel `throttle`).
        assert_eq!(after, before + 2, "{name}: {path} read again from the database");
    }
    let metrics = app.get("/metrics").send().await;
    let hits = app.store.cache_counts().hits;
    assert!(
        metrics.text.contains(&format!("entcp_read_cache_total{{result=\"hit\"}} {hits}")),
        "{name}: {}",
        metrics.text
    );
}

backend_test!(a_write_in_this_process_is_read_back_at_once);
async fn a_write_in_this_process_is_read_back_at_once(db: TestDb) {
    let app = app_with_dan(db).await;
    let name = app.backend;
    let show = "/api/v1/orgs/0940176F";
    let org = app.get(show).acting_as("admin@test.fr").send().await;
    let version = org.body["version"].as_i64().unwrap();
    app.get(LIST).acting_as("dan@ac-creteil.fr").send().await;

    // Through the API: the answer of the write leaves after the cache is dropped.
    let patched = app
        .patch(show)
        .acting_as("admin@test.fr")
        .if_match(version)
        .json(&serde_json::json!({ "email": "direction.fresnes@ac-creteil.fr" }))
        .send()
        .await;
    assert_eq!(patched.status, 200, "{name}: {}", patched.text);
    let org = app.get(show).acting_as("dan@ac-creteil.fr").send().await;
    assert_eq!(org.body["email"], "direction.fresnes@ac-creteil.fr", "{name}: {}", org.text);
    assert_eq!(org.body["version"].as_i64(), Some(version + 1), "{name}");
    let list = app.get(LIST).acting_as("dan@ac-creteil.fr").send().await;
    assert!(list.text.contains("direction.fresnes@ac-creteil.fr"), "{name}: {}", list.text);

    // Straight into the database through this process's store (a job, a fixture).
    sqlx::query("UPDATE orgs SET name = 'École renommée en base' WHERE code = '0940176F'")
        .execute(app.store.pool())
        .await
        .unwrap();
    let org = app.get(show).acting_as("dan@ac-creteil.fr").send().await;
    assert_eq!(org.body["name"], "École renommée en base", "{name}: {}", org.text);
    let list = app.get(LIST).acting_as("dan@ac-creteil.fr").send().await;
    assert!(list.text.contains("École renommée en base"), "{name}: {}", list.text);
}

backend_test!(a_write_by_another_process_is_seen_within_the_watch_interval);
async fn a_write_by_another_process_is_seen_within_the_watch_interval(db: TestDb) {
    let url = db.url.clone();
    let app = app_with_dan(db).await;
    let name = app.backend;
    let show = "/api/v1/orgs/0940176F";
    let before = app.get(show).acting_as("dan@ac-creteil.fr").send().await;
    app.get(LIST).acting_as("dan@ac-creteil.fr").send().await;
    // The watcher may yet see a commit made before (a token's first use records it) and empty
    // the cache: two reads in a row until the second is served from it (10 s at most).
    let cached = || async {
        app.get(show).acting_as("dan@ac-creteil.fr").send().await;
        let hits = app.store.cache_counts().hits;
        app.get(show).acting_as("dan@ac-creteil.fr").send().await;
        app.store.cache_counts().hits > hits
    };
    assert!(common::within(10, entcp::store::WATCH_INTERVAL, cached).await, "{name}: the read was not cached");

    // Another process (a replica, `entctl`): its own pool, nothing shared in memory.
    let other = Store::connect(&url, Some(1)).await.unwrap();
    let mut tx = other.begin_write().await.unwrap();
    sqlx::query("UPDATE orgs SET name = 'École renommée ailleurs', version = version + 1 WHERE code = '0940176F'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    other.close().await;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let org = app.get(show).acting_as("dan@ac-creteil.fr").send().await;
        let list = app.get(LIST).acting_as("dan@ac-creteil.fr").send().await;
        if org.body["name"] == "École renommée ailleurs" && list.text.contains("École renommée ailleurs") {
            assert_ne!(org.header("etag"), before.header("etag"), "{name}");
            break;
        }
        assert!(Instant::now() < deadline, "{name}: the other process's write is never read: {}", org.text);
        tokio::time::sleep(entcp::store::WATCH_INTERVAL / 5).await;
    }
}

backend_test!(cached_pages_never_cross_scopes);
async fn cached_pages_never_cross_scopes(db: TestDb) {
    let app = app_with_dan(db).await;
    let name = app.backend;
    let mut pages = Vec::new();
    for _ in 0..2 {
        for who in ["dan@ac-creteil.fr", "chef@ecole.fr"] {
            let page = app.get(LIST).acting_as(who).send().await;
            assert_eq!(page.status, 200, "{name}: {}", page.text);
            pages.push(page.body["items"].as_array().unwrap().len());
        }
    }
    assert!(pages[0] > 1, "{name}: the DAN sees the académie's organisations: {pages:?}");
    assert!(pages[1] <= 1, "{name}: the chef sees only the school: {pages:?}");
    assert_eq!(pages[2..], pages[..2], "{name}: a cached page changed hands");
    // The school is out of the chef's reach only by scope: another school is 404 for both rounds.
    for _ in 0..2 {
        let other = app.get("/api/v1/orgs/0940198E").acting_as("chef@ecole.fr").send().await;
        assert_eq!(other.status, 404, "{name}: {}", other.text);
    }
}
