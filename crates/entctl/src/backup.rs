//! `entctl backup` / `entctl restore`: one zip archive holding a consistent copy of the
//! database (SQLite: `VACUUM INTO`; PostgreSQL: `pg_dump -Fc`), the files of the data
//! folder (mail, GitOps manifests), and `manifest.json`: format, backend, schema version
//! (the last migration applied), SHA-256 and size of every other entry.
//! A restore checks every checksum and the schema version before it writes anything,
//! and writes only into an empty database; it then applies the newer migrations.

use anyhow::{bail, Context};
use ent_kernel::store::{migrations, sqlite_file_path, Backend, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The archive layout's version.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const SQLITE_ENTRY: &str = "database.sqlite";
const POSTGRES_ENTRY: &str = "database.pgdump";
const FILES_PREFIX: &str = "files/";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub backend: String,
    pub schema_version: i64,
    pub created_at: String,
    pub entctl_version: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

fn database_entry(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => SQLITE_ENTRY,
        Backend::Postgres => POSTGRES_ENTRY,
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The last migration applied to the database (0 for an empty one).
pub async fn schema_version(store: &Store) -> anyhow::Result<i64> {
    let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .context("version du schéma illisible")?;
    Ok(applied.unwrap_or(0))
}

/// The last migration this binary knows.
pub fn known_schema_version(backend: Backend) -> i64 {
    migrations::for_backend(backend).migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Runs a PostgreSQL client tool, with its error output in the message when it fails.
fn run_tool(tool: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("{tool} introuvable : installez le client PostgreSQL (paquet postgresql-client)"))?;
    if !out.status.success() {
        bail!("{tool} a échoué : {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The consistent copy of the database, as a file in `dir`.
async fn dump(store: &Store, database_url: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(database_entry(store.backend()));
    match store.backend() {
        Backend::Sqlite => {
            let target = path.to_str().context("chemin temporaire non UTF-8")?.replace('\'', "''");
            sqlx::query(&format!("VACUUM INTO '{target}'")).execute(store.pool()).await.context("VACUUM INTO")?;
        }
        Backend::Postgres => run_tool(
            "pg_dump",
            &[
                "-Fc".as_ref(),
                "--no-owner".as_ref(),
                "--no-privileges".as_ref(),
                "-f".as_ref(),
                path.as_os_str(),
                database_url.as_ref(),
            ],
        )?,
    }
    Ok(path)
}

/// A SQLite database file or one of its companions: the database is saved apart.
fn is_sqlite(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [".db", ".db-wal", ".db-shm", ".db-journal", ".db.lock"].iter().any(|suffix| name.ends_with(suffix))
}

/// The files of the data folder, by path relative to it, but databases and the archive `out`.
fn data_files(data_dir: &Path, out: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let out = out.canonicalize()?;
    let mut found = Vec::new();
    let mut pending = vec![data_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else { continue };
        for entry in read {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if !is_sqlite(&path) && path.canonicalize()? != out {
                let relative = path.strip_prefix(data_dir)?.to_string_lossy().replace('\\', "/");
                found.push((relative, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Writes the archive `out`: database copy, data files, manifest. Returns the manifest.
pub async fn backup(store: &Store, database_url: &str, data_dir: &Path, out: &Path) -> anyhow::Result<Manifest> {
    let backend = store.backend();
    let schema_version = schema_version(store).await?;
    let scratch = tempfile::Builder::new().prefix("entcp-backup-").tempdir()?;
    let database = dump(store, database_url, scratch.path()).await?;
    // The archive holds every secret of the service: readable by its owner only.
    ent_kernel::files::write_private(out, b"").with_context(|| format!("création de {} impossible", out.display()))?;
    let mut sources = vec![(database_entry(backend).to_string(), database)];
    for (relative, path) in data_files(data_dir, out)? {
        sources.push((format!("{FILES_PREFIX}{relative}"), path));
    }
    let file = std::fs::OpenOptions::new().write(true).truncate(true).open(out)?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o600).large_file(true);
    let mut entries = Vec::new();
    for (name, path) in sources {
        let bytes = std::fs::read(&path).with_context(|| format!("lecture de {} impossible", path.display()))?;
        zip.start_file(&name, options)?;
        zip.write_all(&bytes)?;
        entries.push(Entry { name, bytes: bytes.len() as u64, sha256: sha256(&bytes) });
    }
    let manifest = Manifest {
        format: FORMAT,
        backend: backend_name(backend).into(),
        schema_version,
        created_at: chrono::Utc::now().to_rfc3339(),
        entctl_version: env!("CARGO_PKG_VERSION").into(),
        entries,
    };
    zip.start_file(MANIFEST, options)?;
    zip.write_all(&serde_json::to_vec_pretty(&manifest)?)?;
    zip.finish()?.sync_all()?;
    Ok(manifest)
}

/// An entry of an archive and its bytes.
pub type Content = (Entry, Vec<u8>);

/// The manifest and every entry of an archive, each checked against its checksum.
pub fn read_archive(path: &Path) -> anyhow::Result<(Manifest, Vec<Content>)> {
    let file = std::fs::File::open(path).with_context(|| format!("ouverture de {} impossible", path.display()))?;
    let mut zip = zip::ZipArchive::new(file).context("archive illisible (pas une archive entctl)")?;
    let mut read = |name: &str| -> anyhow::Result<Vec<u8>> {
        let mut entry = zip.by_name(name).with_context(|| format!("archive incomplète : {name} manque"))?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(|| format!("archive corrompue : {name} illisible"))?;
        Ok(bytes)
    };
    let manifest: Manifest = serde_json::from_slice(&read(MANIFEST)?).context("manifeste illisible")?;
    if manifest.format != FORMAT {
        bail!("format d'archive {} inconnu (attendu : {FORMAT})", manifest.format);
    }
    let mut contents = Vec::new();
    for entry in &manifest.entries {
        let bytes = read(&entry.name)?;
        if bytes.len() as u64 != entry.bytes || sha256(&bytes) != entry.sha256 {
            bail!("archive corrompue : la somme de contrôle de {} ne correspond pas", entry.name);
        }
        contents.push((entry.clone(), bytes));
    }
    Ok((manifest, contents))
}

/// Whether the database holds no table at all.
async fn is_empty(store: &Store) -> anyhow::Result<bool> {
    let sql = match store.backend() {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        }
    };
    let tables: i64 = sqlx::query_scalar(sql).fetch_one(store.pool()).await?;
    Ok(tables == 0)
}

/// Restores `archive` into the empty database of `database_url` (the store, connected and
/// not migrated, is closed here) and the data folder; returns the manifest. Then migrates.
pub async fn restore(store: Store, database_url: &str, data_dir: &Path, archive: &Path) -> anyhow::Result<Manifest> {
    let backend = store.backend();
    let (manifest, contents) = read_archive(archive)?;
    if manifest.backend != backend_name(backend) {
        bail!("archive {} : elle se restaure dans une base {} seulement", manifest.backend, manifest.backend);
    }
    let known = known_schema_version(backend);
    if manifest.schema_version > known {
        bail!(
            "archive au schéma {} plus récent que celui de cet entctl ({known}) : restaurez avec la version {} ou plus récente",
            manifest.schema_version,
            manifest.entctl_version
        );
    }
    if !is_empty(&store).await? {
        bail!("la base cible n'est pas vide : la restauration se fait dans une base neuve");
    }
    store.close().await;
    let (_, database) =
        contents.iter().find(|(e, _)| e.name == database_entry(backend)).context("archive sans base de données")?;
    let scratch = tempfile::Builder::new().prefix("entcp-restore-").tempdir()?;
    match backend {
        Backend::Sqlite => {
            let path = sqlite_file_path(database_url).context("base SQLite en mémoire : rien où restaurer")?;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            ent_kernel::files::write_private(&path, database)?;
        }
        Backend::Postgres => {
            let dump = scratch.path().join(POSTGRES_ENTRY);
            std::fs::write(&dump, database)?;
            let dbname = format!("--dbname={database_url}");
            let args: [&std::ffi::OsStr; 5] = [
                "--no-owner".as_ref(),
                "--no-privileges".as_ref(),
                "--exit-on-error".as_ref(),
                dbname.as_ref(),
                dump.as_os_str(),
            ];
            run_tool("pg_restore", &args)?;
        }
    }
    for (entry, bytes) in contents.iter().filter(|(e, _)| e.name.starts_with(FILES_PREFIX)) {
        let relative = Path::new(&entry.name[FILES_PREFIX.len()..]);
        if relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            bail!("archive refusée : chemin {} hors du dossier de données", entry.name);
        }
        let path = data_dir.join(relative);
        if let Some(parent) = path.parent() {
            ent_kernel::files::private_dir(parent)?;
        }
        if !path.exists() {
            ent_kernel::files::write_private(&path, bytes)?;
        }
    }
    let restored = Store::connect(database_url, Some(2)).await?;
    restored.migrate().await?;
    restored.close().await;
    Ok(manifest)
}
