//! `entctl bench console`: the page time of every list page of the web console on the
//! demo data (`entctl serve --demo`), at 50 rows a page and with a search, and of the
//! académie's and the DSDEN's registers (derived at each visit), signed in as
//! an admin and as the demo DAN; p50 and p95 through the whole application (router,
//! session, scope, queries, rendering), in process, on SQLite and, when a PostgreSQL
//! URL is given, on PostgreSQL.

use super::load::{backend_name, backends, quantile};
use super::{bench_database, peak_rss_kb};
use axum::body::Body;
use axum::http::{header, Request};
use ent_console::auth::SESSION_COOKIE;
use ent_kernel::clock::SystemClock;
use ent_kernel::config::Config;
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::Store;
use ent_platform::identity::{self, sessions, Actor};
use ent_server::api::{self, AppState};
use http_body_util::BodyExt;
use std::time::Instant;
use tower::ServiceExt;

/// The list pages measured: label and address (50 rows, then the search variants).
const PAGES: &[(&str, &str)] = &[
    ("tableau de bord", "/"),
    ("organisations", "/organisations?taille=50"),
    ("organisations ?q=", "/organisations?taille=50&q=ecole"),
    ("organisations ?q= (UAI)", "/organisations?taille=50&q=0940"),
    ("utilisateurs", "/utilisateurs?taille=50"),
    ("utilisateurs ?q=", "/utilisateurs?taille=50&q=demo"),
    ("conventions", "/conventions?taille=50"),
    ("conventions ?q=", "/conventions?taille=50&q=ent"),
    ("ENT", "/ent?taille=50"),
    ("ENT ?q=", "/ent?taille=50&q=fresnes"),
    // The art. 30.1 registers, derived at each visit: the académie's own, and the DSDEN's that
    // carries the écoles (its DPO keeps both).
    ("registre (académie)", "/rgpd/academie:24"),
    ("registre (DSDEN 94)", "/rgpd/dsden:94"),
];

/// The page time target (p95), in milliseconds.
const TARGET_MS: f64 = 100.0;

/// `entctl bench console`: `requests` sequential requests per page and person.
pub async fn console(config: &Config, requests: usize) -> anyhow::Result<()> {
    let fail = |p: Problem| anyhow::anyhow!("{}", p.detail);
    for config in backends(config) {
        let dir = std::env::temp_dir().join(format!("entcp-bench-console-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (url, cleanup) = bench_database(&config, &dir).await?;
        let store = Store::connect(&url, config.database.max_connections).await?;
        crate::migrate(&store, config.catalog_dir.as_deref()).await?;
        let mut bench_config = config.clone();
        bench_config.data_dir = dir.clone();
        let state = AppState::load(store.clone(), bench_config, std::sync::Arc::new(SystemClock))?;
        let summary = crate::demo::load(&state).await?;
        crate::demo::personas(&state, &crate::demo::demo_password()).await?;
        let now = chrono::Utc::now();
        let new = identity::NewUser { email: "admin@bench.example.fr".into(), display_name: "Admin".into(), org: None };
        let admin = identity::create_user(&store, &Actor::cli(), new, now).await.map_err(fail)?;
        identity::grant(&store, &Actor::cli(), identity::UserRole::new(&admin.id, Role::Admin, None), now)
            .await
            .map_err(fail)?;
        let dan = identity::get_user(&store, crate::demo::PERSONAS[0].0).await.map_err(fail)?;
        let dan = dan.ok_or_else(|| anyhow::anyhow!("la personne DAN de démonstration manque"))?;
        let mut people = Vec::new();
        for (label, user_id) in [("admin", &admin.id), ("DAN", &dan.id)] {
            let secret = sessions::open(&store, user_id, "bench", "password", None, now).await.map_err(fail)?;
            people.push((label, format!("{}={secret}", SESSION_COOKIE)));
        }
        let app = api::app(state.clone());
        outln!("{} — {summary}", backend_name(&store));
        outln!("  {requests} requêtes par page et par personne, l'une après l'autre, en process (sans réseau)");
        outln!("  {:<26} {:<6} {:>6} {:>9} {:>9}", "page", "qui", "statut", "p50 (ms)", "p95 (ms)");
        let mut over = Vec::new();
        for (label, path) in PAGES {
            for (who, cookie) in &people {
                let (status, mut times) = measure(&app, path, cookie, requests).await?;
                times.sort_by(f64::total_cmp);
                let (p50, p95) = (quantile(&times, 0.50), quantile(&times, 0.95));
                if p95 > TARGET_MS {
                    over.push(format!("{label} ({who})"));
                }
                outln!("  {label:<26} {who:<6} {status:>6} {p50:>9.1} {p95:>9.1}");
            }
        }
        match over.is_empty() {
            true => outln!("  toutes les pages sous {TARGET_MS} ms au p95"),
            false => outln!("  au-dessus de {TARGET_MS} ms au p95 : {}", over.join(", ")),
        }
        outln!("  mémoire résidente maximale : {} Mo", peak_rss_kb().unwrap_or(0) / 1024);
        store.close().await;
        cleanup.run().await;
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

/// The status of `path` and `requests` page times (ms, after five unmeasured ones).
async fn measure(app: &axum::Router, path: &str, cookie: &str, requests: usize) -> anyhow::Result<(u16, Vec<f64>)> {
    let mut times = Vec::with_capacity(requests);
    let mut status = 0;
    for i in 0..requests + 5 {
        let request = Request::get(path).header(header::COOKIE, cookie).body(Body::empty())?;
        let started = Instant::now();
        let response = app.clone().oneshot(request).await?;
        status = response.status().as_u16();
        response.into_body().collect().await?;
        if i >= 5 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok((status, times))
}
