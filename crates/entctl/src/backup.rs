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

/// The last migration applied to the database and the last this binary knows, when the
/// database is ahead (the next release migrated it); `None` otherwise, or for a database
/// never migrated.
pub async fn newer_schema(store: &Store) -> Option<(i64, i64)> {
    let applied = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .ok()
        .flatten()?;
    let known = known_schema_version(store.backend());
    (applied > known).then_some((applied, known))
}

/// The last migration this binary knows.
pub fn known_schema_version(backend: Backend) -> i64 {
    migrations::for_backend(backend).migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The connection parameters libpq reads in a URL (but `password`, which goes apart).
const LIBPQ_PARAMETERS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "require_auth",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// The libpq name of a URL parameter: its own, or the one of a setting sqlx spells otherwise
/// (`ssl-mode`, `ssl-root-cert`, `ssl-ca`, `ssl-cert`, `ssl-key`). None for what libpq does
/// not know (sqlx's `statement-cache-capacity`, `options[…]`): libpq refuses the whole URL
/// (« invalid URI query parameter »).
fn libpq_parameter(key: &str) -> Option<&'static str> {
    match key {
        "ssl-mode" => Some("sslmode"),
        "ssl-root-cert" | "ssl-ca" => Some("sslrootcert"),
        "ssl-cert" => Some("sslcert"),
        "ssl-key" => Some("sslkey"),
        _ => LIBPQ_PARAMETERS.iter().find(|known| **known == key).copied(),
    }
}

/// A PostgreSQL URL for a client tool, and its password apart (from the user information or
/// a `password` parameter): the password goes to the tool in `PGPASSWORD`, never in its
/// arguments, which every user of the host can read (`ps`, `/proc/PID/cmdline`). Of the
/// other parameters only those libpq knows are kept ([`libpq_parameter`]).
pub fn tool_connection(database_url: &str) -> (String, Option<String>) {
    let mut password = None;
    let mut url = database_url.to_string();
    if let Some(scheme_end) = url.find("://") {
        let authority_end = url[scheme_end + 3..].find(['/', '?']).map_or(url.len(), |i| scheme_end + 3 + i);
        if let Some(at) = url[scheme_end + 3..authority_end].rfind('@').map(|i| scheme_end + 3 + i) {
            if let Some(colon) = url[scheme_end + 3..at].find(':').map(|i| scheme_end + 3 + i) {
                password = Some(percent_decode(&url[colon + 1..at]));
                url.replace_range(colon..at, "");
            }
        }
    }
    if let Some((base, query)) = url.split_once('?') {
        let mut kept = Vec::new();
        for parameter in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            if key.eq_ignore_ascii_case("password") {
                password = Some(percent_decode(value));
            } else if let Some(name) = libpq_parameter(key) {
                kept.push(format!("{name}={value}"));
            } else {
                tracing::debug!(parameter = key, "database URL parameter not passed to the PostgreSQL client tools");
            }
        }
        url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    }
    (url, password)
}

/// `%XX` escapes decoded (a URL's password as libpq would read it).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a PostgreSQL client tool on `database_url` (given as `--dbname=`, before `args`),
/// with its error output in the message when it fails.
fn run_tool(tool: &str, database_url: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let (url, password) = tool_connection(database_url);
    let mut command = std::process::Command::new(tool);
    command.arg(format!("--dbname={url}")).args(args);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let out = command
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
            database_url,
            &["-Fc".as_ref(), "--no-owner".as_ref(), "--no-privileges".as_ref(), "-f".as_ref(), path.as_os_str()],
        )?,
    }
    Ok(path)
}

/// The temporary files of a backup or a restore (left behind by one that was killed).
const PARTIAL_PREFIXES: [&str; 2] = [".entcp-backup-", ".entcp-restore-"];

/// A SQLite database file or one of its companions (the database is saved apart), or the
/// temporary file of a backup or restore.
fn is_skipped(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [".db", ".db-wal", ".db-shm", ".db-journal", ".db.lock", ".db.migrate-lock"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || PARTIAL_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// The files of the data folder, by path relative to it, but databases and the archives
/// `skipped` (the one being written, the one it replaces).
fn data_files(data_dir: &Path, skipped: &[&Path]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let skipped: Vec<PathBuf> = skipped.iter().filter_map(|p| p.canonicalize().ok()).collect();
    let mut found = Vec::new();
    let mut pending = vec![data_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else { continue };
        for entry in read {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if !is_skipped(&path) && !skipped.contains(&path.canonicalize()?) {
                let relative = path.strip_prefix(data_dir)?.to_string_lossy().replace('\\', "/");
                found.push((relative, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The folder a file named by `path` goes in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes the archive `out`: database copy, data files, manifest. Returns the manifest.
/// The archive is written beside `out` under a temporary name and renamed over it once
/// complete: a backup that fails or is killed midway never leaves a partial archive under
/// that name, nor destroys the previous one.
pub async fn backup(store: &Store, database_url: &str, data_dir: &Path, out: &Path) -> anyhow::Result<Manifest> {
    let backend = store.backend();
    let schema_version = schema_version(store).await?;
    let scratch = tempfile::Builder::new().prefix("entcp-backup-").tempdir()?;
    let database = dump(store, database_url, scratch.path()).await?;
    // The archive holds every secret of the service: readable by its owner only (0600).
    let partial = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIXES[0])
        .suffix(".partial")
        .tempfile_in(parent_dir(out))
        .with_context(|| format!("création de {} impossible", out.display()))?;
    let mut sources = vec![(database_entry(backend).to_string(), database)];
    for (relative, path) in data_files(data_dir, &[out, partial.path()])? {
        sources.push((format!("{FILES_PREFIX}{relative}"), path));
    }
    let mut zip = zip::ZipWriter::new(partial.as_file());
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
    partial.persist(out).with_context(|| format!("écriture de {} impossible", out.display()))?;
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
            // Written whole beside the target, then renamed: a restore killed midway
            // leaves no partial database file behind.
            let mut file = tempfile::Builder::new().prefix(PARTIAL_PREFIXES[1]).tempfile_in(parent_dir(&path))?;
            file.write_all(database)?;
            file.as_file().sync_all()?;
            file.persist(&path).with_context(|| format!("écriture de {} impossible", path.display()))?;
        }
        Backend::Postgres => {
            let dump = scratch.path().join(POSTGRES_ENTRY);
            std::fs::write(&dump, database)?;
            // One transaction: a restore that fails (or is killed) midway leaves the
            // database empty, so that it can be run again, instead of half restored.
            let args: [&std::ffi::OsStr; 5] = [
                "--no-owner".as_ref(),
                "--no-privileges".as_ref(),
                "--exit-on-error".as_ref(),
                "--single-transaction".as_ref(),
                dump.as_os_str(),
            ];
            run_tool("pg_restore", database_url, &args)?;
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

#[cfg(test)]
mod tests {
    use super::tool_connection;

    #[test]
    fn the_password_of_the_database_url_goes_apart_from_the_client_tools_arguments() {
        assert_eq!(
            tool_connection("postgres://ent:s%40cr%C3%A9t@db.example:5432/entcp?sslmode=require"),
            ("postgres://ent@db.example:5432/entcp?sslmode=require".into(), Some("s@crét".into()))
        );
        assert_eq!(
            tool_connection("postgres://ent@db/entcp?sslmode=disable&password=p%26w"),
            ("postgres://ent@db/entcp?sslmode=disable".into(), Some("p&w".into()))
        );
        assert_eq!(
            tool_connection("postgres://ent@db/entcp?password=x"),
            ("postgres://ent@db/entcp".into(), Some("x".into()))
        );
        assert_eq!(tool_connection("postgres://db/entcp"), ("postgres://db/entcp".into(), None));
    }

    #[test]
    fn the_client_tools_get_only_the_parameters_libpq_knows() {
        let url = "postgres://ent:pw@db/entcp?statement-cache-capacity=100&sslmode=verify-full&options[search_path]=x\
                   &sslrootcert=/etc/ca.pem&application_name=entcp&ssl-key=/k.pem&host=db2&port=5433&user=u&dbname=d";
        assert_eq!(
            tool_connection(url),
            (
                "postgres://ent@db/entcp?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=entcp\
                 &sslkey=/k.pem&host=db2&port=5433&user=u&dbname=d"
                    .into(),
                Some("pw".into())
            )
        );
        assert_eq!(
            tool_connection("postgres://ent@db/entcp?statement-cache-capacity=0"),
            ("postgres://ent@db/entcp".into(), None)
        );
    }
}
