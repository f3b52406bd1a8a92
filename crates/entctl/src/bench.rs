//! `entctl bench import`: a national-size synthetic annuaire imported three times
//! (first import, a no-change re-run, the re-run again with its locks renewed every second),
//! with rows/s, the locks' renewals and peak memory; then a DAN's re-run (its scoped pre-read).
//! `load`: HTTP read and write load over loopback (`entctl bench read|write`).
//! `console`: the web console's list pages on the demo data (`entctl bench console`).
//! `national`: national-scale data on PostgreSQL (`entctl bench national`).

pub mod console;
pub mod load;
pub mod national;

use ent_kernel::clock::{today_in_france, SystemClock};
use ent_kernel::config::{Config, ProvisioningBackend};
use ent_kernel::error::Problem;
use ent_kernel::naming;
use ent_kernel::store::{markers, redact, timestamp, Backend, Store};
use ent_platform::contracts::{self, NewContract};
use ent_platform::identity::{create_user, Actor, NewUser};
use ent_platform::registry::codes::parse_siret;
use ent_platform::registry::import::{import_annuaire, read_places_elsewhere, ImportOptions, ImportScope};
use ent_platform::registry::import_lock::renewals_so_far;
use ent_platform::registry::queries::{list_orgs, OrgFilter};
use ent_platform::registry::{get_org, resolve_org, Org};
use ent_rgpd::rgpd::derive::{self, Register};
use ent_rgpd::rgpd::export::Format;
use ent_rgpd::rgpd::{self, render_blocking, save_profile, snapshots, Profile};
use ent_server::api::AppState;
use ent_support::support::jobs;
use ent_support::support::report::{self, GroupBy};
use ent_tenants::provisioning;
use ent_tenants::tenants::{self, EntTenant};
use ent_testkit::award::decp_facts;
use ent_testkit::conventions::{insert_active, ActiveConvention};
use ent_testkit::synthetic::{write_annuaire, SplitMix64, SyntheticOptions};
use std::io::BufWriter;
use std::time::Instant;

pub async fn import(config: &Config, rows: usize, communes: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("entcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let csv_path = dir.join("annuaire.csv");
    let started = Instant::now();
    let summary = write_annuaire(
        BufWriter::new(std::fs::File::create(&csv_path)?),
        &SyntheticOptions { etablissements: rows, communes, seed: 42 },
    )?;
    outln!(
        "annuaire synthétique : {} lignes, {} communes, {} départements, {} académies ({:.2} s)",
        summary.rows,
        summary.communes,
        summary.departements,
        summary.academies,
        started.elapsed().as_secs_f64()
    );
    let (url, cleanup) = bench_database(config, &dir).await?;
    outln!("base : {}", redact(&url));
    let store = Store::connect(&url, config.database.max_connections).await?;
    crate::migrate(&store, config.catalog_dir.as_deref()).await?;
    let options = ImportOptions::configured(&config.import);
    let actor = Actor::cli();
    let python = python_insert_rate(&dir, summary.rows).await;
    match python {
        Some(rate) => outln!(
            "référence : Python sqlite3 executemany de {} lignes de 11 colonnes (une transaction, WAL) : {rate:.0} lignes/s",
            summary.rows
        ),
        None => outln!("référence Python indisponible (python3 et son module sqlite3 sont nécessaires)"),
    }
    let reference = raw_insert_rate(&store, summary.rows).await?;
    outln!(
        "référence du pilote : insertion brute de {} lignes de 11 colonnes (lots de {RAW_BATCH}, une transaction, même pilote) : {reference:.0} lignes/s",
        summary.rows
    );
    // The last pass again under the shortest lease (3 s, renewed every second): what the
    // renewals of the import's locks cost it.
    let renewed = ImportOptions { lease: chrono::Duration::seconds(3), ..options.clone() };
    let passes = [
        ("premier import", &options),
        ("ré-import sans changement", &options),
        ("ré-import sans changement, bail du verrou de 3 s", &renewed),
    ];
    for (pass, options) in passes {
        let file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&csv_path)?);
        let started = Instant::now();
        let (renewals, renewing) = renewals_so_far();
        let report = import_annuaire(&store, &actor, file, options.clone(), chrono::Utc::now())
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        let secs = started.elapsed().as_secs_f64();
        let (renewals, renewing) = (renewals_so_far().0 - renewals, renewals_so_far().1 - renewing);
        outln!(
            "{pass} : {} lignes en {secs:.2} s = {:.0} lignes/s (créés {}, mis à jour {}, inchangés {}, ignorés {}, rejetés {})",
            report.rows,
            report.rows as f64 / secs,
            report.etablissements.created,
            report.etablissements.updated,
            report.etablissements.unchanged,
            report.skipped,
            report.rejected
        );
        let rate = report.rows as f64 / secs;
        match python {
            Some(python) => outln!(
                "  part de la référence : {:.2} (Python), {:.2} (pilote)",
                rate / python.max(1e-9),
                rate / reference.max(1e-9)
            ),
            None => outln!("  part de la référence du pilote : {:.2}", rate / reference.max(1e-9)),
        }
        outln!(
            "  verrou (bail de {} s) : {renewals} renouvellements, {:.1} ms passées à renouveler ({:.2} % de l'import)",
            options.lease.num_seconds(),
            renewing.as_secs_f64() * 1000.0,
            renewing.as_secs_f64() / secs.max(1e-9) * 100.0
        );
    }
    scoped_pass(&store, &actor, &csv_path, config.import.batch_size).await?;
    outln!("mémoire résidente maximale : {} Mo", peak_rss_kb().unwrap_or(0) / 1024);
    store.close().await;
    cleanup.run().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The no-change re-run again, as the DAN of the first académie: the rows of the others are
/// found out of scope by the pre-read of what the registry places elsewhere, timed alone first.
async fn scoped_pass(
    store: &Store,
    actor: &Actor,
    csv_path: &std::path::Path,
    batch_size: usize,
) -> anyhow::Result<()> {
    let academie: String = sqlx::query_scalar("SELECT code FROM orgs WHERE kind = 'academie' ORDER BY code LIMIT 1")
        .fetch_one(store.pool())
        .await?;
    let scope = ImportScope { academies: [academie.clone()].into(), ..ImportScope::default() };
    let started = Instant::now();
    let pre = read_places_elsewhere(store, &scope).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let pre_read = started.elapsed().as_secs_f64();
    // What the pre-read read before it kept to the départements the scope reaches: every one.
    let every: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orgs WHERE kind IN ('etablissement', 'commune', 'departement', 'dsden')",
    )
    .fetch_one(store.pool())
    .await?;
    let options = ImportOptions { dry_run: false, batch_size, scope: Some(scope), ..ImportOptions::default() };
    let file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(csv_path)?);
    let started = Instant::now();
    let report = import_annuaire(store, actor, file, options, chrono::Utc::now())
        .await
        .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let secs = started.elapsed().as_secs_f64();
    outln!(
        "ré-import sans changement par le DAN de l'académie {academie} : {} lignes en {secs:.2} s = {:.0} lignes/s (inchangés {}, hors périmètre {}, mis à jour {})",
        report.rows,
        report.rows as f64 / secs,
        report.etablissements.unchanged,
        report.out_of_scope,
        report.etablissements.updated,
    );
    outln!(
        "  pré-lecture des organisations hors périmètre : {} lues (au lieu de {every}, tout l'annuaire), {} hors périmètre, en {:.0} ms",
        pre.read,
        pre.placed_elsewhere,
        pre_read * 1000.0
    );
    Ok(())
}

/// The raw insert reference of issue #14: Python's sqlite3 `executemany` of `rows` rows of
/// 11 text columns (the values of [`raw_insert_rate`], built before the clock starts) into a
/// new SQLite file, in one transaction, with the store's journal settings (WAL,
/// `synchronous = NORMAL`); rows/s, `None` when `python3` cannot run it.
const PYTHON_REFERENCE: &str = r#"
import sqlite3, sys, time
path, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(path, isolation_level=None)
con.execute("PRAGMA journal_mode = WAL")
con.execute("PRAGMA synchronous = NORMAL")
con.execute("CREATE TABLE raw (%s)" % ", ".join("c%d TEXT" % c for c in range(11)))
rows = [tuple("valeur %d de la colonne %d" % (r, c) for c in range(11)) for r in range(n)]
started = time.perf_counter()
con.execute("BEGIN")
con.executemany("INSERT INTO raw VALUES (%s)" % ", ".join("?" * 11), rows)
con.execute("COMMIT")
print(n / (time.perf_counter() - started))
"#;

async fn python_insert_rate(dir: &std::path::Path, rows: usize) -> Option<f64> {
    let path = dir.join("python-reference.db");
    let mut script = std::process::Command::new("python3");
    script.arg("-c").arg(PYTHON_REFERENCE).arg(&path).arg(rows.to_string());
    let output = tokio::task::spawn_blocking(move || script.output()).await.ok()?.ok();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let output = output?;
    let rate = String::from_utf8_lossy(&output.stdout).trim().parse().ok()?;
    output.status.success().then_some(rate)
}

/// Rows per statement of the raw insert reference.
const RAW_BATCH: usize = 500;

/// The machine's raw insert rate through this driver: `rows` synthetic rows of 11 text
/// columns into a scratch table, by multi-row statements in one transaction (rows/s).
async fn raw_insert_rate(store: &Store, rows: usize) -> anyhow::Result<f64> {
    let columns = 11;
    let names: Vec<String> = (0..columns).map(|c| format!("c{c}")).collect();
    let create = names.iter().map(|n| format!("{n} TEXT")).collect::<Vec<_>>().join(", ");
    sqlx::query(&format!("CREATE TABLE bench_raw_insert ({create})")).execute(store.pool()).await?;
    let started = Instant::now();
    let mut tx = store.begin_write().await?;
    let mut done = 0;
    while done < rows {
        let batch = RAW_BATCH.min(rows - done);
        let tuples: Vec<String> =
            (0..batch).map(|r| format!("({})", markers(store.backend(), 1 + r * columns, columns))).collect();
        let sql = format!("INSERT INTO bench_raw_insert ({}) VALUES {}", names.join(", "), tuples.join(", "));
        let mut query = sqlx::query(&sql);
        for r in done..done + batch {
            for c in 0..columns {
                query = query.bind(format!("valeur {r} de la colonne {c}"));
            }
        }
        query.execute(&mut *tx).await?;
        done += batch;
    }
    tx.commit().await?;
    let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
    sqlx::query("DROP TABLE bench_raw_insert").execute(store.pool()).await?;
    Ok(rate)
}

/// What to drop once the bench is over.
enum Cleanup {
    Nothing,
    PostgresDatabase { admin_url: String, name: String },
}

impl Cleanup {
    async fn run(self) {
        if let Cleanup::PostgresDatabase { admin_url, name } = self {
            if let Ok(admin) = Store::connect(&admin_url, Some(1)).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(admin.pool()).await;
                admin.close().await;
            }
        }
    }
}

/// A fresh database: a SQLite file in `dir`, or a new database on the configured PostgreSQL server.
async fn bench_database(config: &Config, dir: &std::path::Path) -> anyhow::Result<(String, Cleanup)> {
    let configured = config.database.url.clone();
    match configured {
        Some(url) if Backend::from_url(&url)?.is_postgres() => {
            let name = format!("entcp_bench_{}", std::process::id());
            let admin = Store::connect(&url, Some(1)).await?;
            // Named after this process: one left by a bench killed before its clean-up, under a
            // process id since reused, is no live run's.
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(admin.pool()).await?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(admin.pool()).await?;
            admin.close().await;
            let (base, _) = url.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("URL PostgreSQL sans base"))?;
            Ok((format!("{base}/{name}"), Cleanup::PostgresDatabase { admin_url: url, name }))
        }
        _ => Ok((format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()), Cleanup::Nothing)),
    }
}

/// A bench's world: a throwaway directory and database holding a synthetic annuaire,
/// and the application state over them (data written under the directory).
struct BenchWorld {
    dir: std::path::PathBuf,
    store: Store,
    state: AppState,
    cleanup: Cleanup,
}

impl BenchWorld {
    async fn new(
        config: &Config,
        name: &str,
        synthetic: SyntheticOptions,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<BenchWorld> {
        let dir = std::env::temp_dir().join(format!("entcp-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (url, cleanup) = bench_database(config, &dir).await?;
        outln!("base : {}", redact(&url));
        let store = Store::connect(&url, config.database.max_connections).await?;
        crate::migrate(&store, config.catalog_dir.as_deref()).await?;
        let mut csv = Vec::new();
        write_annuaire(&mut csv, &synthetic)?;
        let options = ImportOptions::configured(&config.import);
        import_annuaire(&store, &Actor::cli(), std::io::Cursor::new(csv), options, chrono::Utc::now())
            .await
            .map_err(|p| anyhow::anyhow!(p.detail))?;
        let mut bench_config = config.clone();
        bench_config.data_dir = dir.clone();
        configure(&mut bench_config);
        let clock = std::sync::Arc::new(SystemClock);
        let state = AppState::load(store.clone(), bench_config, clock)?;
        Ok(BenchWorld { dir, store, state, cleanup })
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.store.close().await;
        self.cleanup.run().await;
        std::fs::remove_dir_all(&self.dir)?;
        Ok(())
    }
}

/// Applies `tenants` EntTenant documents on the annuaire's écoles (`t0`, `t1`, …),
/// moved to provisioning when `provision`.
async fn bench_tenants(state: &AppState, tenants: usize, provision: bool) -> anyhow::Result<usize> {
    let store = &state.store;
    let actor = Actor::cli();
    let filter = OrgFilter {
        kind: Some("etablissement".into()),
        degree: Some("1D".into()),
        limit: Some(500),
        ..Default::default()
    };
    let mut created = 0;
    let mut cursor = None;
    while created < tenants {
        let page = list_orgs(store, &OrgFilter { cursor, ..filter.clone() }, None)
            .await
            .map_err(|p| anyhow::anyhow!(p.detail))?;
        for org in &page.items {
            if created == tenants {
                break;
            }
            let doc: EntTenant = serde_json::from_value(serde_json::json!({
                "apiVersion": tenants::API_VERSION, "kind": tenants::KIND,
                "metadata": { "name": format!("t{created}") },
                "spec": { "organisation": org.id, "hostname": format!("t{created}.ent.example.fr"), "bouquet": "socle-1d", "options": ["visio"] }
            }))?;
            let (_, tenant) =
                tenants::apply(&state.tenants(), &actor, &doc, None).await.map_err(|p| anyhow::anyhow!(p.detail))?;
            if provision {
                let to = tenants::Status::Provisioning;
                tenants::transition(
                    &state.tenants(),
                    &actor,
                    &tenant,
                    tenants::Move::to(to).overriding("banc d'essai"),
                )
                .await
                .map_err(|p| anyhow::anyhow!(p.detail))?;
            }
            created += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(created)
}

/// Peak resident set size of this process (Linux `VmHWM`), in kB.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `entctl bench reconcile`: N tenants on a synthetic annuaire, a first pass
/// that writes their manifests, then a no-op pass that must write nothing.
pub async fn reconcile(config: &Config, tenants: usize) -> anyhow::Result<()> {
    let synthetic = SyntheticOptions { etablissements: tenants * 3 / 2 + 100, communes: 5000, seed: 7 };
    let world = BenchWorld::new(config, "reconcile", synthetic, |c| {
        c.manifests_dir = None;
        c.provisioning.backend = ProvisioningBackend::Manifests;
    })
    .await?;
    let state = &world.state.clone();
    let started = Instant::now();
    let created = bench_tenants(state, tenants, true).await?;
    outln!("{created} tenants créés ({:.1} s)", started.elapsed().as_secs_f64());
    for pass in ["première passe", "passe sans changement"] {
        let started = Instant::now();
        let r = provisioning::reconcile::pass(&state.provisioning(), None, chrono::Utc::now())
            .await
            .map_err(|p| anyhow::anyhow!(p.detail))?;
        outln!(
            "{pass} : {:.2} s, {} écriture(s) du moteur, {} inchangé(s), {} échec(s)",
            started.elapsed().as_secs_f64(),
            r.applied,
            r.unchanged,
            r.failed
        );
    }
    catalog_change_requests(state, &world.dir).await?;
    outln!("mémoire résidente maximale : {} Mo", peak_rss_kb().unwrap_or(0) / 1024);
    world.finish().await
}

/// Tenants the `kube` part of the reconcile bench applies (requests are counted, not timed).
const KUBE_SAMPLE: usize = 20;

/// The requests per tenant of a catalog change on the `kube` backend: every service's image
/// changed, then the sample's tenants reconciled against a stateless loopback stand-in of an
/// API server (applies echoed, lists empty: nothing to prune), then a pass without change.
async fn catalog_change_requests(state: &AppState, dir: &std::path::Path) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(stand_in)).await });
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: http://{address}\n\
             contexts:\n- name: bench\n  context:\n    cluster: bench\n    user: bench\ncurrent-context: bench\n\
             users:\n- name: bench\n  user:\n    token: bench\n"
        ),
    )?;
    let mut config = (*state.config).clone();
    config.provisioning.backend = ProvisioningBackend::Kube;
    config.provisioning.kube.kubeconfig = Some(kubeconfig);
    config.provisioning.reconcile.requests_per_second = 1e6;
    let mut kube = AppState::new(state.store.clone(), config, state.clock.clone());
    let slugs: Vec<String> = sqlx::query_scalar("SELECT slug FROM tenants ORDER BY slug LIMIT $1")
        .bind(KUBE_SAMPLE as i64)
        .fetch_all(state.store.pool())
        .await?;
    let mut catalog = (*kube.catalog).clone();
    // The sample was applied by the manifests passes above: the same inputs, so nothing to apply until the change.
    for step in ["changement du catalogue (image de chaque service)", "passe sans changement"] {
        if step.starts_with("changement") {
            catalog.services.iter_mut().for_each(|s| s.deployment.image.push_str("-bench"));
            kube.catalog = std::sync::Arc::new(catalog.clone());
        }
        let before = kube.reconciler.requests_sent();
        for slug in &slugs {
            provisioning::reconcile::pass(&kube.provisioning(), Some(slug), chrono::Utc::now())
                .await
                .map_err(|p| anyhow::anyhow!(p.detail))?;
        }
        let sent = kube.reconciler.requests_sent() - before;
        outln!(
            "kube, {step} : {sent} requêtes pour {} tenants, {:.1} par tenant",
            slugs.len(),
            sent as f64 / slugs.len().max(1) as f64
        );
    }
    Ok(())
}

/// The bench's stand-in of an API server: an apply answers its own body, a list is empty.
async fn stand_in(method: axum::http::Method, body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let empty = serde_json::json!({ "kind": "List", "apiVersion": "v1", "metadata": {}, "items": [] });
    match method {
        axum::http::Method::PATCH => {
            axum::Json(serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default()).into_response()
        }
        _ => axum::Json(empty).into_response(),
    }
}

/// `entctl bench support`: `tickets` open tickets over `tenants` tenants (about
/// 1 % of them overdue), then the SLA sweep (find and flag the breaches, notices
/// queued), a second sweep with nothing new, and the per-level and per-tenant reports.
pub async fn support(config: &Config, tickets: usize, tenants: usize) -> anyhow::Result<()> {
    use ent_kernel::store::new_id;
    let synthetic = SyntheticOptions { etablissements: tenants * 3 / 2 + 100, communes: 5000, seed: 7 };
    let world = BenchWorld::new(config, "support", synthetic, |_| {}).await?;
    let (store, state) = (world.store.clone(), world.state.clone());
    let actor = Actor::cli();
    let started = Instant::now();
    let created = bench_tenants(&state, tenants, false).await?;
    let tenant_rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, org_id FROM tenants ORDER BY slug").fetch_all(store.pool()).await?;
    let new_user = NewUser { email: "usager@bench.fr".into(), display_name: "Usager".into(), org: None };
    let requester =
        create_user(&store, &actor, new_user, chrono::Utc::now()).await.map_err(|p| anyhow::anyhow!(p.detail))?;
    outln!("{created} tenants créés ({:.1} s)", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let now = chrono::Utc::now();
    // The synthetic tickets are written with their due dates under these policies: recorded as
    // applied, so the sweeps measured are the routine ones, not the one-off recomputation.
    jobs::refresh_for_policies(&state.support(), now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
    let mut rng = SplitMix64::new(11, 0);
    const BATCH: usize = 500;
    let mut n = 0;
    while n < tickets {
        let mut t_values = Vec::new();
        let mut e_values = Vec::new();
        let mut l_values = Vec::new();
        for _ in 0..BATCH.min(tickets - n) {
            let (tenant_id, org_id) = &tenant_rows[n % tenant_rows.len()];
            let id = new_id();
            let overdue = n % 100 == 0;
            let age_hours = if overdue { 240 } else { rng.below(48) as i64 };
            let created_at = timestamp(now - chrono::Duration::hours(age_hours));
            let due = if overdue {
                now - chrono::Duration::hours(200)
            } else {
                now + chrono::Duration::hours(1 + rng.below(200) as i64)
            };
            let level = ["n1", "n1", "n1", "n2", "n3"][rng.below(5) as usize];
            let status = ["new", "in_progress", "in_progress", "waiting_requester"][rng.below(4) as usize];
            let status = if overdue { "new" } else { status };
            let level = if overdue { "n1" } else { level };
            let priority = ["P1", "P2", "P3", "P3", "P4"][rng.below(5) as usize];
            let next_due =
                if status == "waiting_requester" { "NULL".to_string() } else { format!("'{}'", timestamp(due)) };
            t_values.push(format!(
                "('{id}', 'ENT-BENCH-{n:07}', '{tenant_id}', '{org_id}', '{}', 'usager', 'Ticket {n}', 'Description', \
                 'autre', 'moyenne', 'moyenne', '{priority}', 'standard', '{level}', {}, '{org_id}', '{status}', \
                 {next_due}, {next_due}, '{created_at}', '{created_at}', 1)",
                requester.id,
                i64::from(level == "n3"),
            ));
            e_values.push(format!(
                "('{}', '{id}', 1, '{created_at}', 'user:usager@bench.fr', 'created', 'n1', 'public')",
                new_id()
            ));
            let first = (rng.below(10) < 6).then(|| rng.below(8 * 3600));
            let resolution = first.filter(|_| rng.below(10) < 5).map(|f| f + rng.below(30 * 3600));
            let sql_opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "NULL".into());
            l_values.push(format!(
                "('{id}', '{level}', '{tenant_id}', {}, {}, {}, {})",
                rng.below(40 * 3600),
                sql_opt(first),
                sql_opt(resolution),
                i64::from(rng.below(20) == 0)
            ));
            n += 1;
        }
        let mut tx = store.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO support_tickets (id, reference, tenant_id, tenant_org_id, requester_id, requester_role, subject, \
             description, category, impact, urgency, priority, policy, level, reached_n3, n1_org_id, status, \
             resolution_due, next_due, created_at, updated_at, last_seq) VALUES {}",
            t_values.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO support_events (id, ticket_id, seq, at, actor, kind, to_value, visibility) VALUES {}",
            e_values.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO support_ticket_levels (ticket_id, level, tenant_id, held_seconds, first_response_seconds, \
             resolution_seconds, breached) VALUES {}",
            l_values.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    for table in ["support_tickets", "support_events", "support_ticket_levels"] {
        store.analyze(table).await?;
    }
    outln!("{n} tickets ouverts créés ({:.1} s)", started.elapsed().as_secs_f64());

    for pass in ["balayage SLA (dépassements à signaler)", "balayage SLA (rien de nouveau)"] {
        let started = Instant::now();
        let r = jobs::sweep(&state.support(), now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        outln!(
            "{pass} : {:.3} s, {} ticket(s) examiné(s), {} dépassement(s) signalé(s)",
            started.elapsed().as_secs_f64(),
            r.examined,
            r.breaches
        );
    }
    for (label, by) in [("rapport par niveau", GroupBy::Level), ("rapport par tenant", GroupBy::Tenant)] {
        let started = Instant::now();
        let rows = report::report(&store, &actor, by, None).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        outln!("{label} : {:.3} s, {} ligne(s)", started.elapsed().as_secs_f64(), rows.len());
    }
    world.finish().await
}

/// `entctl bench groupement`: a departmental purchase of N communes on a
/// synthetic annuaire, timed step by step through the capability's functions:
/// prefilled applications, acceptances (each one rewrites the convention's
/// parties), documents, award, shares.
pub async fn groupement(config: &Config, communes: usize) -> anyhow::Result<()> {
    use ent_groupements::groupements::{self as gm, award, documents, membership};
    let fail = |p: Problem| anyhow::anyhow!("{}", p.detail);
    let synthetic = SyntheticOptions { etablissements: communes * 4, communes: communes * 2, seed: 8 };
    let world = BenchWorld::new(config, "groupement", synthetic, |_| {}).await?;
    let (store, state) = (world.store.clone(), world.state.clone());
    let actor = Actor::cli();
    let ctx = gm::Ctx {
        store: &store,
        catalog: &state.catalog,
        support: &*state.support_commitments,
        models: &state.models,
        actor: &actor,
        now: chrono::Utc::now(),
    };
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT c.id FROM orgs c WHERE c.kind = 'commune' AND EXISTS (SELECT 1 FROM orgs e WHERE \
         e.kind = 'etablissement' AND e.degree = '1D' AND e.commune_code = c.code) ORDER BY c.code",
    )
    .fetch_all(store.pool())
    .await?;
    // A member joins for schools it equips (an application of none is refused at acceptance):
    // communes with an open school they fund.
    let mut applicants = Vec::new();
    for id in &ids {
        if applicants.len() == communes {
            break;
        }
        let Some(org) = get_org(&store, id).await.map_err(fail)? else { continue };
        if membership::prefill(&store, &org).await.map_err(fail)?.quantities.schools > 0 {
            applicants.push(org);
        }
    }
    let academie: String = sqlx::query_scalar("SELECT code FROM orgs WHERE kind = 'academie' ORDER BY code LIMIT 1")
        .fetch_one(store.pool())
        .await?;
    let new: gm::NewGroupement = serde_json::from_value(serde_json::json!({
        "coordinator": format!("academie:{academie}"), "title": "ENT 1er degré départemental",
        "object": "Fourniture d'un ENT pour les écoles des communes membres",
        "cost_key": [{ "basis": "pupils", "weight": 80 }, { "basis": "equal", "weight": 20 }],
        // The shares split the common expenses (the members' own orders are theirs).
        "common_expenses_cents": 1_200_000, "coordinator_share_percent": 10,
        "application_deadline": "2090-01-01",
        // Awarded the day it launches: a procédure adaptée, as its DECP facts declare, so its
        // need is estimated below the State's formalised-procedure threshold (an académie coordinates).
        "procedure": "procedure_adaptee", "estimated_amount_ht_cents": 13_000_000,
    }))?;
    let g = gm::create(&ctx, new).await.map_err(fail)?;
    let step = |what: &str, started: Instant, n: usize| -> std::io::Result<()> {
        let secs = started.elapsed().as_secs_f64();
        outln!("{what} : {n} en {secs:.2} s ({:.1} ms chacun)", secs * 1000.0 / n.max(1) as f64);
        Ok(())
    };
    let started = Instant::now();
    let mut apps = Vec::new();
    for org in &applicants {
        let body: membership::NewApplication = serde_json::from_value(serde_json::json!({
            "applicant": org.id, "deliberation_number": "D-1", "deliberation_date": ctx.today().to_string(),
        }))?;
        apps.push(membership::apply(&ctx, &g, org, body).await.map_err(fail)?);
    }
    step("candidatures préremplies", started, apps.len())?;
    let schools: i64 = apps.iter().map(|a| a.quantities.schools).sum();
    outln!("  {} communes, {schools} écoles", apps.len());
    let (one_by_one, batch) = apps.split_at(apps.len() / 2);
    let started = Instant::now();
    for app in one_by_one {
        let g = gm::must_get(&store, &g.id).await.map_err(fail)?;
        membership::accept(&ctx, &g, app).await.map_err(fail)?;
    }
    step("acceptations une à une (convention mise à jour à chaque fois)", started, one_by_one.len())?;
    let started = Instant::now();
    let g = gm::must_get(&store, &g.id).await.map_err(fail)?;
    membership::accept_many(&ctx, &g, batch).await.map_err(fail)?;
    step("acceptations groupées (une mise à jour de la convention)", started, batch.len())?;
    let g = gm::must_get(&store, &g.id).await.map_err(fail)?;
    let started = Instant::now();
    for kind in documents::Kind::ALL {
        documents::generate(&ctx, &g, kind).await.map_err(fail)?;
    }
    step(
        "documents générés (note de présentation, RC, AE, CCAP, CCTP, membres, BPU/DQE)",
        started,
        documents::Kind::ALL.len(),
    )?;
    // Consultation and award need the convention constitutive signed by every party: its
    // signatures are the conventions' workflow, not timed here, so it is written signed.
    let convention =
        g.convention_id.clone().ok_or_else(|| anyhow::anyhow!("groupement sans convention constitutive"))?;
    let at = timestamp(chrono::Utc::now());
    sqlx::query(
        "UPDATE conventions SET status = 'active', signed_at = $1, version = version + 1, updated_at = $1 WHERE id = $2",
    )
    .bind(&at)
    .bind(&convention)
    .execute(store.pool())
    .await?;
    let mut g = g;
    // Offers received until tomorrow noon; the award, notified today, needs them in: the launch
    // and the deadline are then written back 40 and 2 days (not timed here either).
    let tomorrow = today_in_france(ctx.now).succ_opt().unwrap_or_default().format("%Y-%m-%dT12:00").to_string();
    for to in [gm::Status::Closed, gm::Status::Consultation] {
        let deadline = (to == gm::Status::Consultation).then_some(tomorrow.as_str());
        g = gm::transition(&ctx, &g, to, None, deadline).await.map_err(fail)?;
    }
    let back = |days: i64| timestamp(ctx.now - chrono::Duration::days(days));
    sqlx::query("UPDATE groupements SET consultation_launched_at = $1, offers_deadline_at = $2 WHERE id = $3")
        .bind(back(40))
        .bind(back(2))
        .bind(&g.id)
        .execute(store.pool())
        .await?;
    let g = gm::must_get(&store, &g.id).await.map_err(fail)?;
    let siret = (0..10u8).map(|d| format!("7328293200007{d}")).find(|s| parse_siret(s).is_ok());
    // The académie coordinating has no SIREN in the registry: its rectorat's establishment buys.
    let buyer = (0..10u8).map(|d| format!("1300000000001{d}")).find(|s| parse_siret(s).is_ok());
    // Notified today: not before the groupement's creation, nor in the future.
    let notified_on = today_in_france(ctx.now).format("%Y-%m-%d").to_string();
    let input: award::AwardInput = serde_json::from_value(serde_json::json!({
        "vendor_siret": siret, "vendor_name": "Éditeur du banc", "notified_on": notified_on,
        "advance_renounced": true,
        "decp": buyer.as_deref().map(decp_facts),
        "unit_prices": g.terms.lots.iter().flat_map(|lot| [
            serde_json::json!({ "lot": lot.number, "line": "account_year", "unit_price_ht_cents": 450 }),
            serde_json::json!({ "lot": lot.number, "line": "school_setup", "unit_price_ht_cents": 35_000 }),
        ]).collect::<Vec<_>>(),
    }))?;
    let started = Instant::now();
    let g = award::award(&ctx, &g, input).await.map_err(fail)?;
    step("attribution (contrats de sous-traitance, tenants)", started, 1)?;
    let started = Instant::now();
    let members = membership::members(&store, &g.id).await.map_err(fail)?;
    let shares = membership::shares_of(&g, &members).map_err(fail)?;
    let total: i64 = shares.shares.iter().map(|s| s.common_expenses_cents).sum();
    step("quotes-parts calculées", started, shares.shares.len())?;
    outln!(
        "  somme des quotes-parts {total} c = dépenses communes des membres {} c",
        shares.members_common_expenses_cents
    );
    world.finish().await
}

/// `entctl bench rgpd`: the registers of an académie with N école tenants of 12 services
/// each (socle-1d + visio, moodle, collaboratif), all under one active bipartite
/// convention, with a vendor, a host and their contracts: load and derivation
/// times, then each export. The controller of an école's ENT is the DSDEN of its
/// département (its IA-DASEN), whose registers the académie's DPO keeps: the écoles are
/// those of the académie with the most, and every DSDEN's register is derived.
/// The fixture is written straight in SQL (it is not under test).
pub async fn rgpd(config: &Config, tenants: usize) -> anyhow::Result<()> {
    let synthetic = SyntheticOptions { etablissements: tenants * 16 + 100, communes: 5000, seed: 7 };
    let world = BenchWorld::new(config, "rgpd", synthetic, |_| {}).await?;
    let (store, state) = (world.store.clone(), world.state.clone());
    let actor = Actor::cli();
    let (academie, created) = rgpd_fixture(&state, tenants).await?;
    let dsdens: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT d.id FROM tenants t JOIN orgs s ON s.id = t.org_id \
         JOIN orgs d ON d.kind = 'dsden' AND d.code = s.departement_code ORDER BY d.id",
    )
    .fetch_all(store.pool())
    .await?;
    // Without a DSDEN in the registry, the académie stays the controller.
    let controllers = if dsdens.is_empty() { vec![academie.id.clone()] } else { dsdens };
    outln!(
        "{created} tenants de 12 services sous une convention {}, dont les écoles relèvent de {} responsable(s) \
         de traitement (DSDEN)",
        naming::de(&academie.name),
        controllers.len()
    );

    // Five rounds, the best one printed: the machine may be busy.
    let registers = derive_registers(&state, &controllers, 5).await?;
    outln!("dérivation (meilleur de 5) : {registers}");
    let (index, register) = registers
        .registers
        .iter()
        .enumerate()
        .max_by_key(|(_, r)| establishment_lines(r))
        .ok_or_else(|| anyhow::anyhow!("aucun registre"))?;
    let holder = get_org(&store, &controllers[index])
        .await
        .map_err(|p| anyhow::anyhow!(p.detail))?
        .ok_or_else(|| anyhow::anyhow!("responsable de traitement introuvable"))?;
    outln!(
        "exports du plus grand registre ({}, {} fiches, {} lignes établissement) :",
        holder.name,
        register.entries.len(),
        establishment_lines(register)
    );
    outln!(
        "GET du registre (article 30.1, JSON, meilleur de 5) : {:.0} ms",
        register_get_ms(&state, &holder, 5).await?
    );
    for format in Format::ALL {
        let started = Instant::now();
        match render_blocking(register, format).await {
            Ok(bytes) => outln!(
                "export {} : {:.0} ms ({} Ko)",
                format.as_str(),
                started.elapsed().as_secs_f64() * 1000.0,
                bytes.len() / 1024
            ),
            Err(p) => outln!("export {} : {}", format.as_str(), p.detail),
        }
    }
    let started = Instant::now();
    snapshots::record(&state.rgpd(), &actor.name, &holder, register, "json", "export", chrono::Utc::now())
        .await
        .map_err(|p| anyhow::anyhow!(p.detail))?;
    outln!("enregistrement de l'instantané : {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    outln!("mémoire résidente maximale : {} Mo", peak_rss_kb().unwrap_or(0) / 1024);
    world.finish().await
}

/// Milliseconds `GET /api/v1/rgpd/registers/{org}` takes past its authorisation, the best of
/// `rounds`: the register derived now, as the route does it ([`rgpd::render_register`]: the
/// base read, the derivation, its JSON).
async fn register_get_ms(state: &AppState, holder: &Org, rounds: usize) -> anyhow::Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        rgpd::render_register(&state.rgpd(), holder, Format::Json).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        best = best.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(best)
}

/// The registers of some controllers, each derived from one read of the base, and the
/// time it took (the best of `rounds`: the machine may be busy). Shown as the read and
/// derivation times, the fiches and establishment lines of all the registers.
pub(crate) struct Registers {
    /// Milliseconds to read the base once (ent_rgpd's load::world).
    pub loaded: f64,
    /// Milliseconds to derive every register from that read.
    pub derived: f64,
    /// One register a controller, in the order given.
    pub registers: Vec<Register>,
}

impl std::fmt::Display for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fiches: usize = self.registers.iter().map(|r| r.entries.len()).sum();
        let lines: usize = self.registers.iter().map(establishment_lines).sum();
        write!(
            f,
            "lecture de la base {:.0} ms + dérivation pure {:.0} ms = {:.0} ms ; {fiches} fiches, {lines} lignes établissement",
            self.loaded,
            self.derived,
            self.loaded + self.derived
        )
    }
}

/// The establishment lines of a register (an establishment once a fiche it appears in).
pub(crate) fn establishment_lines(register: &Register) -> usize {
    register.entries.iter().map(|e| e.establishments.len()).sum()
}

/// Derives the register of each of `controllers` (at least one) from one read of the base
/// a round, `rounds` times, and keeps the best times.
pub(crate) async fn derive_registers(
    state: &AppState,
    controllers: &[String],
    rounds: usize,
) -> anyhow::Result<Registers> {
    let first = controllers.first().ok_or_else(|| anyhow::anyhow!("aucun responsable de traitement"))?;
    let today = today_in_france(chrono::Utc::now()).format("%Y-%m-%d").to_string();
    let mut best = Registers { loaded: f64::MAX, derived: f64::MAX, registers: Vec::new() };
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let world =
            rgpd::load::world(&state.store, &state.catalog, &state.models, &state.config.provisioning, &today, first)
                .await
                .map_err(|p| anyhow::anyhow!(p.detail))?;
        best.loaded = best.loaded.min(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        best.registers =
            controllers.iter().map(|id| derive::derive(&world, &state.catalog, id, &today, "now")).collect();
        best.derived = best.derived.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(best)
}

/// N école tenants (active) of the académie with the most écoles (fewer if it has fewer),
/// one active convention académie–commune covering them, a vendor and a host with
/// Art. 28 contracts, the académie's RGPD contacts: the académie and the tenants made.
async fn rgpd_fixture(state: &AppState, tenants: usize) -> anyhow::Result<(Org, usize)> {
    use ent_kernel::kernel::roles::OrgKind;
    use ent_kernel::store::{new_id, timestamp};
    use ent_platform::registry::manage::{create_org, NewOrg};
    let err = |p: Problem| anyhow::anyhow!(p.detail);
    let (store, actor, now) = (&state.store, Actor::cli(), chrono::Utc::now());
    let largest: Option<String> = sqlx::query_scalar(
        "SELECT academie_code FROM orgs WHERE kind = 'etablissement' AND degree = '1D' AND academie_code IS NOT NULL \
         GROUP BY academie_code ORDER BY COUNT(*) DESC, academie_code LIMIT 1",
    )
    .fetch_optional(store.pool())
    .await?;
    let filter = OrgFilter {
        kind: Some("etablissement".into()),
        degree: Some("1D".into()),
        academie: largest,
        limit: Some(500),
        ..Default::default()
    };
    let mut schools = Vec::new();
    let mut cursor = None;
    while schools.len() < tenants {
        let page_filter = OrgFilter { cursor, ..filter.clone() };
        let page = list_orgs(store, &page_filter, None).await.map_err(err)?;
        schools.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    schools.truncate(tenants);
    let first = schools.first().ok_or_else(|| anyhow::anyhow!("aucune école dans l'annuaire synthétique"))?;
    let academie = resolve_org(store, &format!("academie:{}", first.academie_code.clone().unwrap_or_default()))
        .await
        .map_err(err)?;
    let commune = resolve_org(store, &format!("commune:{}", first.commune_code.clone().unwrap_or_default()))
        .await
        .map_err(err)?;
    let org = |kind, siren: &str, name: &str| NewOrg {
        kind,
        siren: siren.into(),
        name: name.into(),
        email: None,
        departement: None,
    };
    let vendor =
        create_org(store, &actor, org(OrgKind::Editeur, "900000019", "Éditeur du banc"), now).await.map_err(err)?;
    let host =
        create_org(store, &actor, org(OrgKind::Hebergeur, "900000027", "Hébergeur du banc"), now).await.map_err(err)?;
    let at = timestamp(now);
    let today = today_in_france(now);
    let mut tx = store.begin_write().await?;
    let conv = new_id();
    sqlx::query(
        "INSERT INTO conventions (id, reference, model_id, model_version, title, status, parameters, start_date, end_date, \
         root_id, created_by, created_at, updated_at) VALUES ($1, 'CONV-BANC-1', 'bipartite-commune', 1, 'Banc', 'active', \
         '{}', $2, $3, $1, 'banc', $4, $4)",
    )
    .bind(&conv)
    .bind((today - chrono::Duration::days(30)).format("%Y-%m-%d").to_string())
    .bind((today + chrono::Duration::days(1000)).format("%Y-%m-%d").to_string())
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    for (key, org_id, position) in [("academie", &academie.id, 0_i64), ("collectivite", &commune.id, 1)] {
        sqlx::query(
            "INSERT INTO convention_parties (convention_id, party_key, org_id, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(&conv)
        .bind(key)
        .bind(org_id)
        .bind(position)
        .execute(&mut *tx)
        .await?;
    }
    for (i, school) in schools.iter().enumerate() {
        sqlx::query("INSERT INTO convention_schools (convention_id, org_id) VALUES ($1, $2)")
            .bind(&conv)
            .bind(&school.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
             convention_id, spec_hash, version, created_at, updated_at, vendor_org_id, host_org_id) \
             VALUES ($1, $2, $3, $4, 'socle-1d', '[\"visio\",\"moodle\",\"collaboratif\"]', $5, 'educonnect', 'active', \
             $6, 'banc', 1, $7, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(format!("t{i}"))
        .bind(&school.id)
        .bind(format!("t{i}.ent.example.fr"))
        .bind(school.pupils.unwrap_or(150))
        .bind(&conv)
        .bind(&at)
        .bind(&vendor.id)
        .bind(&host.id)
        .execute(&mut *tx)
        .await?;
    }
    let contract = |processor: &str, client: &str, parent: Option<String>, reference: &str| NewContract {
        processor_org_id: processor.into(),
        client_org_id: client.into(),
        parent_processor_org_id: parent,
        reference: reference.into(),
        title: "Contrat du banc".into(),
        art28_clauses: true,
        starts_on: None,
        ends_on: None,
        source_kind: "manual".into(),
        source_id: None,
    };
    contracts::record(&mut tx, store, &actor, &contract(&vendor.id, &commune.id, None, "M-1"), now)
        .await
        .map_err(err)?;
    let hosting = contract(&host.id, &vendor.id, Some(vendor.id.clone()), "H-1");
    contracts::record(&mut tx, store, &actor, &hosting, now).await.map_err(err)?;
    tx.commit().await?;
    let profile = Profile {
        head_name: "Recteur".into(),
        address: "Rectorat".into(),
        email: "ce.recteur@ac.example.fr".into(),
        dpo_name: "DPD".into(),
        dpo_email: "dpd@ac.example.fr".into(),
        ..Default::default()
    };
    save_profile(&state.rgpd(), &actor, &academie, &profile, None, now).await.map_err(err)?;
    Ok((academie, schools.len()))
}

/// `entctl bench coverage`: `tenants` running tenants, three in four on communes (serving their
/// écoles), one in four on collèges, under conventions in force, ended, to come or none; the
/// gate's answer for every one of them asked of the store question by question (the pass before
/// its memo), then read from one pass memo, the two compared; then the `tenants-coverage` pass
/// itself, recording the lapses, then once more without change.
pub async fn coverage(config: &Config, tenants: usize) -> anyhow::Result<()> {
    use tenants::coverage::{check_coverage, gate_answers, Reading};
    let synthetic = SyntheticOptions { etablissements: tenants * 5 + 200, communes: tenants + 10, seed: 7 };
    let world = BenchWorld::new(config, "coverage", synthetic, |_| {}).await?;
    let state = &world.state.clone();
    let today = today_in_france(chrono::Utc::now());
    let started = Instant::now();
    let world_made = coverage_world(state, tenants, today).await?;
    outln!(
        "{} tenants créés ({} communes et leurs écoles, {} collèges), {} conventions ({:.1} s)",
        world_made.communes + world_made.colleges,
        world_made.communes,
        world_made.colleges,
        world_made.conventions,
        started.elapsed().as_secs_f64()
    );
    let tenants_state = state.tenants();
    let problem = |p: Problem| anyhow::anyhow!(p.detail);
    let started = Instant::now();
    let asked = gate_answers(&tenants_state, today, Reading::QuestionByQuestion).await.map_err(problem)?;
    let before = started.elapsed().as_secs_f64();
    outln!("{}", rate_line("contrôle question par question (avant)", asked.len(), before));
    let started = Instant::now();
    let memo = gate_answers(&tenants_state, today, Reading::PassMemo).await.map_err(problem)?;
    let after = started.elapsed().as_secs_f64();
    outln!("{}", rate_line("contrôle par la mémoire de passe (après)", memo.len(), after));
    anyhow::ensure!(memo == asked, "la mémoire de passe ne répond pas comme le contrôle question par question");
    let uncovered = asked.iter().filter(|a| !matches!(&a.answer, Ok((_, u)) if u.is_empty())).count();
    outln!(
        "réponses identiques, {uncovered} tenant(s) non couvert(s) ; accélération : x{:.1}",
        before / after.max(1e-9)
    );
    for pass in ["passe tenants-coverage (absences enregistrées)", "passe tenants-coverage sans changement"] {
        let started = Instant::now();
        let done = check_coverage(&tenants_state, chrono::Utc::now()).await.map_err(problem)?;
        let recorded = done.lapsed.len() + done.changed.len() + done.restored.len();
        outln!(
            "{}, {recorded} enregistrement(s), {} échec(s)",
            rate_line(pass, done.examined, started.elapsed().as_secs_f64()),
            done.failed.len()
        );
    }
    outln!("mémoire résidente maximale : {} Mo", peak_rss_kb().unwrap_or(0) / 1024);
    world.finish().await
}

/// « label : N tenants en S s = R tenants/s ».
fn rate_line(label: &str, tenants: usize, secs: f64) -> String {
    format!("{label} : {tenants} tenants en {secs:.2} s = {:.0} tenants/s", tenants as f64 / secs.max(1e-9))
}

/// What [`coverage_world`] made.
struct CoverageWorld {
    communes: usize,
    colleges: usize,
    conventions: usize,
}

/// The tenants of the coverage bench, let through the gate, and their conventions, written
/// straight in force: three in four on communes (fewer when the annuaire has fewer), the others
/// on collèges. Of every four communes, two under a bipartite in force, one whose
/// bipartite ended yesterday with its first école under a tripartite in force, one without;
/// of every three collèges, two under a tripartite in force, one under one to come.
async fn coverage_world(state: &AppState, tenants: usize, today: chrono::NaiveDate) -> anyhow::Result<CoverageWorld> {
    let day = |days: i64| (today + chrono::Duration::days(days)).to_string();
    let (in_force, ended, to_come) = ((day(-365), day(730)), (day(-1460), day(-1)), (day(30), day(1125)));
    let pool = state.store.pool();
    let communes: Vec<(String, String)> =
        sqlx::query_as("SELECT id, code FROM orgs WHERE kind = 'commune' ORDER BY code LIMIT $1")
            .bind((tenants - tenants / 4) as i64)
            .fetch_all(pool)
            .await?;
    let ecoles: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT id, commune_code FROM orgs WHERE kind = 'etablissement' AND degree = '1D' ORDER BY sort_name, id",
    )
    .fetch_all(pool)
    .await?;
    let mut first_ecole = std::collections::HashMap::new();
    for (id, commune_code) in ecoles {
        first_ecole.entry(commune_code.unwrap_or_default()).or_insert(id);
    }
    let colleges: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT e.id, d.id FROM orgs e LEFT JOIN orgs d ON d.kind = 'departement' AND d.code = e.departement_code \
         WHERE e.kind = 'etablissement' AND e.etab_type = 'college' AND COALESCE(e.sector, 'public') <> 'prive' \
         ORDER BY e.code LIMIT $1",
    )
    .bind((tenants - communes.len()) as i64)
    .fetch_all(pool)
    .await?;
    let mut written = Vec::new();
    for (n, (commune, code)) in communes.iter().enumerate() {
        coverage_tenant(state, &format!("commune-{n}"), commune, "socle-1d").await?;
        let bipartite = ("bipartite-commune", vec![("collectivite", commune.clone())]);
        match (n % 4, first_ecole.get(code)) {
            (0 | 1, _) => written.push((format!("bi-{n}"), bipartite, &in_force)),
            (2, Some(ecole)) => {
                written.push((format!("bi-{n}"), bipartite, &ended));
                let parties = vec![("collectivite", commune.clone()), ("etablissement", ecole.clone())];
                written.push((format!("tri-{n}"), ("tripartite-premier-degre", parties), &in_force));
            }
            _ => {}
        }
    }
    for (n, (college, departement)) in colleges.iter().enumerate() {
        coverage_tenant(state, &format!("college-{n}"), college, "socle-2d").await?;
        let mut parties: Vec<(&str, String)> = departement.iter().map(|d| ("collectivite", d.clone())).collect();
        parties.push(("etablissement", college.clone()));
        let dates = if n % 3 == 2 { &to_come } else { &in_force };
        written.push((format!("tri-college-{n}"), ("tripartite-second-degre", parties), dates));
    }
    for (id, (model_id, parties), (start, end)) in &written {
        let schools = parties.iter().filter(|(key, _)| *key == "etablissement").map(|(_, id)| id.clone()).collect();
        let convention =
            ActiveConvention { id, model_id, model_version: 3, start, end, parties: parties.clone(), schools };
        insert_active(pool, &convention).await?;
    }
    Ok(CoverageWorld { communes: communes.len(), colleges: colleges.len(), conventions: written.len() })
}

/// Tenant `slug` of the organisation `org_id` on `bouquet`, let through the gate.
async fn coverage_tenant(state: &AppState, slug: &str, org_id: &str, bouquet: &str) -> anyhow::Result<()> {
    let doc: EntTenant = serde_json::from_value(serde_json::json!({
        "apiVersion": tenants::API_VERSION, "kind": tenants::KIND,
        "metadata": { "name": slug },
        "spec": { "organisation": org_id, "hostname": format!("{slug}.ent.example.fr"), "bouquet": bouquet, "options": [] }
    }))?;
    let actor = Actor::cli();
    let (_, tenant) =
        tenants::apply(&state.tenants(), &actor, &doc, None).await.map_err(|p| anyhow::anyhow!(p.detail))?;
    let step = tenants::Move::to(tenants::Status::Provisioning).overriding("banc d'essai");
    tenants::transition(&state.tenants(), &actor, &tenant, step).await.map_err(|p| anyhow::anyhow!(p.detail))?;
    Ok(())
}
