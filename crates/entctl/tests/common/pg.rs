//! PostgreSQL test databases: one template migrated once per set of migrations,
//! cloned per test (`CREATE DATABASE … TEMPLATE …`) and dropped when the test ends.
//!
//! nextest runs every test in its own process, so the template is guarded twice: a
//! process-wide `OnceCell` (tests of one process) and a PostgreSQL advisory lock
//! (processes of one run). The template is named after a hash of the migration files,
//! so a changed migration builds a new template instead of cloning a stale one.

use entcp::store::Store;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Advisory lock id held while a template is built ("ENT-TMPL").
const TEMPLATE_LOCK: i64 = 0x454e_545f_544d_504c;

/// The prefix of every per-test clone, so leftovers are easy to count.
pub const CLONE_PREFIX: &str = "tk_";

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The name of the template database for the current PostgreSQL migrations.
pub fn template_name() -> String {
    let mut hash = Sha256::new();
    for migration in entcp::store::migrations::for_backend(entcp::store::Backend::Postgres).migrations.iter() {
        hash.update(migration.version.to_le_bytes());
        hash.update(&migration.checksum);
    }
    let digest = hash.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("tmpl_{hex}")
}

/// `admin_url` with its database replaced by `name`.
pub fn url_of(admin_url: &str, name: &str) -> String {
    let (base, _) = admin_url.rsplit_once('/').expect("postgres URL has a database");
    format!("{base}/{name}")
}

/// The migrated template of this run, built by the first test that needs it.
pub async fn template(admin_url: &str) -> &'static str {
    TEMPLATE.get_or_init(|| build_template(admin_url)).await
}

async fn build_template(admin_url: &str) -> String {
    let name = template_name();
    let admin = Store::connect(admin_url, Some(1)).await.expect("postgres admin connects");
    // One connection for the whole critical section: the advisory lock belongs to it.
    let mut conn = admin.conn().await.expect("admin connection");
    sqlx::query("SELECT pg_advisory_lock($1)").bind(TEMPLATE_LOCK).execute(&mut *conn).await.expect("template lock");
    let exists = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) AS n FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut *conn)
        .await
        .expect("template lookup")
        > 0;
    if !exists {
        // Built under another name and renamed at the end: a crash half-way leaves no
        // template that looks complete.
        let building = format!("{name}_building");
        let drop = format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)");
        sqlx::query(&drop).execute(&mut *conn).await.expect("drop stale template");
        sqlx::query(&format!("CREATE DATABASE {building}")).execute(&mut *conn).await.expect("create template");
        let store = Store::connect(&url_of(admin_url, &building), Some(1)).await.expect("template connects");
        store.migrate().await.expect("template migrates");
        store.close().await;
        rename_when_left(&mut conn, &building, &name).await;
        let mark = format!("ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false");
        sqlx::query(&mark).execute(&mut *conn).await.expect("mark template");
    }
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(TEMPLATE_LOCK).execute(&mut *conn).await.expect("unlock");
    drop(conn);
    admin.close().await;
    name
}

/// Renames `from` once its last session has gone: a closed pool's server processes
/// may still be exiting, and PostgreSQL refuses to rename a database in use (55006).
async fn rename_when_left(conn: &mut sqlx::AnyConnection, from: &str, to: &str) {
    let rename = format!("ALTER DATABASE {from} RENAME TO {to}");
    for _ in 0..100 {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(from)
            .execute(&mut *conn)
            .await
            .expect("end the template's sessions");
        match sqlx::query(&rename).execute(&mut *conn).await {
            Ok(_) => return,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("rename template: {e}"),
        }
    }
    panic!("rename template: {from} still in use after 5 s");
}

/// A new database cloned from the template; the guard drops it.
pub async fn clone_template(admin_url: &str) -> (String, DropOnExit) {
    let template = template(admin_url).await;
    create_database(admin_url, &format!(" TEMPLATE {template}")).await
}

/// A database without any table (a restore's target), dropped as a clone is.
pub async fn empty_database(admin_url: &str) -> (String, DropOnExit) {
    create_database(admin_url, "").await
}

async fn create_database(admin_url: &str, template_clause: &str) -> (String, DropOnExit) {
    let name = format!("{CLONE_PREFIX}{}", uuid::Uuid::now_v7().simple());
    let admin = Store::connect(admin_url, Some(1)).await.expect("postgres admin connects");
    let create = format!("CREATE DATABASE {name}{template_clause}");
    sqlx::query(&create).execute(admin.pool()).await.expect("create the database");
    admin.close().await;
    let guard = DropOnExit { admin_url: admin_url.to_string(), name: name.clone() };
    (url_of(admin_url, &name), guard)
}

/// Drops its database when dropped, whether the test passed or panicked.
pub struct DropOnExit {
    admin_url: String,
    name: String,
}

impl Drop for DropOnExit {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop is synchronous and may run inside (or after) the test's runtime: a
        // thread of its own with its own runtime does the asynchronous work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let admin = Store::connect(&admin_url, Some(1)).await?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(&sql).execute(admin.pool()).await?;
                admin.close().await;
                anyhow::Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} not dropped: {e}", self.name),
            Err(_) => eprintln!("test database {} not dropped: the drop thread panicked", self.name),
        }
    }
}
