//! `entctl backup` / `entctl restore`: one zip archive holding a consistent copy of the
//! database (SQLite: `VACUUM INTO`; PostgreSQL: `pg_dump -Fc`), the files of the data
//! folder (mail, GitOps manifests), and `manifest.json`: format, backend, schema version
//! (the last migration applied), SHA-256 and size of every other entry.
//! A restore checks every checksum and the schema version before it writes anything,
//! and writes only into an empty database; it then applies the newer migrations.

use anyhow::{bail, Context};
use ent_kernel::files::{create_private, private_dir};
use ent_kernel::store::{sqlite_file_path, Backend, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

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
    let (applied, known) = (applied_schema(store).await, known_schema_version(store.backend()));
    (applied > known).then_some((applied, known))
}

/// The last migration applied to the database (0 for a database never migrated), and the
/// last this binary knows, when the database is behind: a command that only reads does not
/// migrate it.
pub async fn older_schema(store: &Store) -> Option<(i64, i64)> {
    let (applied, known) = (applied_schema(store).await, known_schema_version(store.backend()));
    (applied < known).then_some((applied, known))
}

/// The last migration applied to the database; 0 when it has none (no migration table yet).
async fn applied_schema(store: &Store) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The last migration this binary knows (the same on both backends).
pub fn known_schema_version(_backend: Backend) -> i64 {
    ent_kernel::release::schema_version()
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

/// A PostgreSQL client tool on `database_url` (given as `--dbname=`, before `args`), its
/// password in `PGPASSWORD`.
fn tool_command(tool: &str, database_url: &str, args: &[&OsStr]) -> Command {
    let (url, password) = tool_connection(database_url);
    let mut command = Command::new(tool);
    command.arg(format!("--dbname={url}")).args(args);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command
}

fn missing_tool(tool: &str) -> String {
    format!("{tool} introuvable : installez le client PostgreSQL (paquet postgresql-client)")
}

/// Runs a PostgreSQL client tool ([`tool_command`]), with its error output in the message
/// when it fails.
fn run_tool(tool: &str, database_url: &str, args: &[&OsStr]) -> anyhow::Result<()> {
    let out = tool_command(tool, database_url, args).output().with_context(|| missing_tool(tool))?;
    if !out.status.success() {
        bail!("{tool} a échoué : {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Passes bytes on to `inner`, counting them and computing their SHA-256 on the way.
struct Hashing<W> {
    inner: W,
    digest: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.digest.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The size of the pieces a copy goes by: memory use does not depend on a file's size.
const COPY_BUFFER: usize = 256 * 1024;

/// Copies `from` into `to` piece by piece; returns the size and SHA-256 of what went through.
fn copy_hashed(from: impl Read, to: impl Write) -> std::io::Result<(u64, String)> {
    let mut sink = Hashing { inner: to, digest: Sha256::new(), bytes: 0 };
    std::io::copy(&mut BufReader::with_capacity(COPY_BUFFER, from), &mut sink)?;
    sink.flush()?;
    Ok((sink.bytes, hex::encode(sink.digest.finalize())))
}

/// `pg_dump -Fc` of `database_url` streamed from its output into `to` (no temporary file);
/// returns the size and SHA-256 of the dump.
fn pg_dump_into(database_url: &str, to: impl Write) -> anyhow::Result<(u64, String)> {
    let args: [&OsStr; 3] = ["-Fc".as_ref(), "--no-owner".as_ref(), "--no-privileges".as_ref()];
    let mut command = tool_command("pg_dump", database_url, &args);
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| missing_tool("pg_dump"))?;
    // Its error output is read aside: a full pipe would stall it.
    let mut stderr = child.stderr.take().context("pg_dump : sortie d'erreur indisponible")?;
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let stdout = child.stdout.take().context("pg_dump : sortie indisponible")?;
    let copied = copy_hashed(stdout, to);
    if copied.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().context("pg_dump")?;
    let errors = errors.join().unwrap_or_default();
    let copied = copied.context("écriture de la copie de la base dans l'archive impossible")?;
    if !status.success() {
        bail!("pg_dump a échoué : {}", String::from_utf8_lossy(&errors).trim());
    }
    Ok(copied)
}

/// The temporary files and folders of a backup or a restore (left behind by one that was
/// killed).
const PARTIAL_PREFIXES: [&str; 2] = [".entcp-backup-", ".entcp-restore-"];

fn is_partial(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    PARTIAL_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// A SQLite database file or one of its companions (the database is saved apart), or the
/// temporary file of a backup or restore.
fn is_skipped(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [".db", ".db-wal", ".db-shm", ".db-journal", ".db.lock", ".db.migrate-lock"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || is_partial(path)
}

/// SQLite: the database file `database_url` names and its companions, whatever their names
/// (saved apart, by `VACUUM INTO`: the live files must not go in the archive).
fn database_files(database_url: &str) -> Vec<PathBuf> {
    let Some(path) = sqlite_file_path(database_url) else { return Vec::new() };
    let companions = ["-wal", "-shm", "-journal", ".lock", ".migrate-lock"]
        .map(|suffix| PathBuf::from(format!("{}{suffix}", path.display())));
    std::iter::once(path).chain(companions).collect()
}

/// A SQLite write-ahead log or shared-memory file: never placed by a restore (one replayed
/// over the restored database would corrupt it).
fn is_sqlite_companion(relative: &Path) -> bool {
    let name = relative.file_name().unwrap_or_default().to_string_lossy();
    name.ends_with("-wal") || name.ends_with("-shm")
}

/// The files of the data folder, by path relative to it, but databases, the temporary
/// files and folders of backups and restores, and the archives `skipped` (the one being
/// written, the one it replaces).
fn data_files(data_dir: &Path, skipped: &[&Path]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let skipped: Vec<PathBuf> = skipped.iter().filter_map(|p| p.canonicalize().ok()).collect();
    let mut found = Vec::new();
    let mut pending = vec![data_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else { continue };
        for entry in read {
            let path = entry?.path();
            if path.is_dir() {
                if !is_partial(&path) {
                    pending.push(path);
                }
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

/// A hidden temporary folder in `dir` (never the system's temporary folder, often small),
/// removed with its content when dropped, on every exit path.
fn scratch_dir(prefix: &str, dir: &Path) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(dir)
        .with_context(|| format!("dossier temporaire impossible à créer dans {}", dir.display()))
}

/// SQLite: a consistent copy of the database (`VACUUM INTO`) in a hidden folder of `dir`,
/// and that folder. PostgreSQL: none (`pg_dump` streams straight into the archive).
async fn sqlite_copy(store: &Store, dir: &Path) -> anyhow::Result<Option<(tempfile::TempDir, PathBuf)>> {
    if store.backend() != Backend::Sqlite {
        return Ok(None);
    }
    let scratch = scratch_dir(PARTIAL_PREFIXES[0], dir)?;
    let path = scratch.path().join(SQLITE_ENTRY);
    let target = path.to_str().context("chemin temporaire non UTF-8")?.replace('\'', "''");
    sqlx::query(&format!("VACUUM INTO '{target}'")).execute(store.pool()).await.context("VACUUM INTO")?;
    Ok(Some((scratch, path)))
}

/// Opens a file of the data folder or a database copy to stream it into the archive.
fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("lecture de {} impossible", path.display()))
}

/// Writes the archive `out`: database copy, data files, manifest. Returns the manifest.
/// Every entry is streamed (from its file, or from `pg_dump`'s output) and hashed on the
/// way: memory use does not grow with the database or the files. The archive is written
/// beside `out` under a temporary name and renamed over it once complete: a backup that
/// fails or is killed midway never leaves a partial archive under that name, nor destroys
/// the previous one. The only other temporary file (SQLite's database copy) goes in a hidden
/// folder beside `out` too, removed on every exit path.
pub async fn backup(store: &Store, database_url: &str, data_dir: &Path, out: &Path) -> anyhow::Result<Manifest> {
    let backend = store.backend();
    let schema_version = schema_version(store).await?;
    let sqlite_copy = sqlite_copy(store, parent_dir(out)).await?;
    // The archive holds every secret of the service: readable by its owner only (0600).
    let partial = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIXES[0])
        .suffix(".partial")
        .tempfile_in(parent_dir(out))
        .with_context(|| format!("création de {} impossible", out.display()))?;
    let mut zip = zip::ZipWriter::new(partial.as_file());
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o600).large_file(true);
    let name = database_entry(backend).to_string();
    zip.start_file(&name, options)?;
    let (bytes, sha256) = match &sqlite_copy {
        Some((_, path)) => copy_hashed(open(path)?, &mut zip).context("copie de la base dans l'archive impossible")?,
        None => pg_dump_into(database_url, &mut zip)?,
    };
    // The copy is in the archive: its room is given back before the data files go in.
    drop(sqlite_copy);
    let mut entries = vec![Entry { name, bytes, sha256 }];
    let database = database_files(database_url);
    let mut skipped: Vec<&Path> = database.iter().map(PathBuf::as_path).collect();
    skipped.extend([out, partial.path()]);
    for (relative, path) in data_files(data_dir, &skipped)? {
        let file = open(&path)?;
        let name = format!("{FILES_PREFIX}{relative}");
        zip.start_file(&name, options)?;
        let (bytes, sha256) =
            copy_hashed(file, &mut zip).with_context(|| format!("lecture de {} impossible", path.display()))?;
        entries.push(Entry { name, bytes, sha256 });
    }
    let manifest = Manifest {
        format: FORMAT,
        backend: backend_name(backend).into(),
        schema_version,
        created_at: chrono::Utc::now().to_rfc3339(),
        entctl_version: crate::VERSION.into(),
        entries,
    };
    zip.start_file(MANIFEST, options)?;
    serde_json::to_writer_pretty(&mut zip, &manifest)?;
    zip.finish()?.sync_all()?;
    partial.persist(out).with_context(|| format!("écriture de {} impossible", out.display()))?;
    Ok(manifest)
}

/// The largest manifest read (its entries are the data folder's files).
const MANIFEST_LIMIT: u64 = 64 * 1024 * 1024;

/// An archive opened for reading, and its manifest (format checked).
pub fn open_archive(path: &Path) -> anyhow::Result<(zip::ZipArchive<std::fs::File>, Manifest)> {
    let file = std::fs::File::open(path).with_context(|| format!("ouverture de {} impossible", path.display()))?;
    let mut zip = zip::ZipArchive::new(file).context("archive illisible (pas une archive entctl)")?;
    let entry = zip.by_name(MANIFEST).with_context(|| format!("archive incomplète : {MANIFEST} manque"))?;
    let manifest: Manifest =
        serde_json::from_reader(BufReader::new(entry.take(MANIFEST_LIMIT))).context("manifeste illisible")?;
    if manifest.format != FORMAT {
        bail!("format d'archive {} inconnu (attendu : {FORMAT})", manifest.format);
    }
    Ok((zip, manifest))
}

/// Streams the entry `entry` of `zip` into `to`, checking its size and checksum against the
/// manifest's.
fn extract(zip: &mut zip::ZipArchive<std::fs::File>, entry: &Entry, to: impl Write) -> anyhow::Result<()> {
    let name = &entry.name;
    let reader = zip.by_name(name).with_context(|| format!("archive incomplète : {name} manque"))?;
    let (bytes, sha256) = copy_hashed(reader, to).with_context(|| format!("archive corrompue : {name} illisible"))?;
    if bytes != entry.bytes || sha256 != entry.sha256 {
        bail!("archive corrompue : la somme de contrôle de {name} ne correspond pas");
    }
    Ok(())
}

/// The path of a data file entry, relative to the data folder; refused when it would lead
/// out of it.
fn data_file_path(name: &str) -> anyhow::Result<&Path> {
    let relative = Path::new(&name[FILES_PREFIX.len()..]);
    if relative.as_os_str().is_empty() || relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("archive refusée : chemin {name} hors du dossier de données");
    }
    Ok(relative)
}

/// Every entry of an archive extracted and checked, before anything is restored: the
/// database (SQLite: a file beside the target database, renamed over it once restored;
/// PostgreSQL: the dump in `staging`) and the data files (under `staging/files/`).
struct Staged {
    /// SQLite's database file, kept until it is renamed into place.
    sqlite: Option<tempfile::NamedTempFile>,
    /// The data files: path relative to the data folder, path in the staging folder.
    files: Vec<(PathBuf, PathBuf)>,
}

/// Extracts and checks every entry of the manifest ([`Staged`]).
fn stage(
    zip: &mut zip::ZipArchive<std::fs::File>,
    manifest: &Manifest,
    backend: Backend,
    database_url: &str,
    staging: &Path,
) -> anyhow::Result<Staged> {
    let mut staged = Staged { sqlite: None, files: Vec::new() };
    if !manifest.entries.iter().any(|e| e.name == database_entry(backend)) {
        bail!("archive sans base de données");
    }
    for entry in &manifest.entries {
        if entry.name == SQLITE_ENTRY && backend == Backend::Sqlite {
            let path = sqlite_file_path(database_url).context("base SQLite en mémoire : rien où restaurer")?;
            let file = tempfile::Builder::new().prefix(PARTIAL_PREFIXES[1]).tempfile_in(parent_dir(&path))?;
            extract(zip, entry, file.as_file())?;
            file.as_file().sync_all()?;
            staged.sqlite = Some(file);
        } else if entry.name == POSTGRES_ENTRY && backend == Backend::Postgres {
            extract(zip, entry, private_file(&staging.join(POSTGRES_ENTRY))?)?;
        } else if entry.name.starts_with(FILES_PREFIX) {
            let relative = data_file_path(&entry.name)?;
            let path = staging.join("files").join(relative);
            private_dir(parent_dir(&path))?;
            extract(zip, entry, private_file(&path)?)?;
            staged.files.push((relative.to_path_buf(), path));
        } else {
            extract(zip, entry, std::io::sink())?;
        }
    }
    Ok(staged)
}

/// A new 0600 file to extract into.
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    create_private(path).with_context(|| format!("création de {} impossible", path.display()))
}

/// Moves the staged data files into the data folder, but SQLite's `-wal`/`-shm` files and
/// where a file of that name is already there (renames within one file system: none is ever seen half written).
fn place_files(staged: &[(PathBuf, PathBuf)], data_dir: &Path) -> anyhow::Result<()> {
    for (relative, from) in staged {
        if is_sqlite_companion(relative) {
            continue;
        }
        let path = data_dir.join(relative);
        private_dir(parent_dir(&path))?;
        if !path.exists() {
            std::fs::rename(from, &path).with_context(|| format!("écriture de {} impossible", path.display()))?;
        }
    }
    Ok(())
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

/// The archive opened ([`open_archive`]) once checked against the target `store`: refused
/// when of the other backend or of a newer schema, or when the database is not empty.
async fn open_for(store: &Store, archive: &Path) -> anyhow::Result<(zip::ZipArchive<std::fs::File>, Manifest)> {
    let (zip, manifest) = open_archive(archive)?;
    let backend = store.backend();
    if manifest.backend != backend_name(backend) {
        bail!("archive {} : elle se restaure dans une base {} seulement", manifest.backend, manifest.backend);
    }
    let known = known_schema_version(backend);
    if manifest.schema_version > known {
        bail!(
            "archive au schéma {} plus récent que celui de cet entctl ({} ; schéma {known}) : restaurez-la avec un \
             entctl qui connaît le schéma {} (celui qui l'a écrite, {}, ou un plus récent)",
            manifest.schema_version,
            crate::VERSION,
            manifest.schema_version,
            manifest.entctl_version
        );
    }
    if !is_empty(store).await? {
        bail!("la base cible n'est pas vide : la restauration se fait dans une base neuve");
    }
    Ok((zip, manifest))
}

/// Restores `archive` into the empty database of `database_url` (the store, connected and
/// not migrated, is closed here) and the data folder; returns the manifest. Then migrates it
/// and runs the pending back-fills with the catalog of `catalog_dir` ([`crate::migrate`]).
/// Every entry is first extracted into a hidden folder of the data folder (SQLite's database
/// beside the database file) and checked: a truncated or corrupt archive changes nothing.
pub async fn restore(
    store: Store,
    database_url: &str,
    data_dir: &Path,
    catalog_dir: Option<&Path>,
    archive: &Path,
) -> anyhow::Result<Manifest> {
    let backend = store.backend();
    // Closed whatever the answer: a refused restore leaves no connection (nor SQLite's
    // `-wal` and `-shm` files) behind.
    let opened = open_for(&store, archive).await;
    store.close().await;
    let (mut zip, manifest) = opened?;
    private_dir(data_dir)
        .with_context(|| format!("création du dossier de données {} impossible", data_dir.display()))?;
    let staging = scratch_dir(PARTIAL_PREFIXES[1], data_dir)?;
    let staged = stage(&mut zip, &manifest, backend, database_url, staging.path())?;
    match staged.sqlite {
        Some(file) => {
            let path = sqlite_file_path(database_url).context("base SQLite en mémoire : rien où restaurer")?;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            // Written whole beside the target, then renamed: a restore killed midway
            // leaves no partial database file behind.
            file.persist(&path).with_context(|| format!("écriture de {} impossible", path.display()))?;
        }
        None => {
            // One transaction: a restore that fails (or is killed) midway leaves the
            // database empty, so that it can be run again, instead of half restored.
            let dump = staging.path().join(POSTGRES_ENTRY);
            let args: [&OsStr; 5] = [
                "--no-owner".as_ref(),
                "--no-privileges".as_ref(),
                "--exit-on-error".as_ref(),
                "--single-transaction".as_ref(),
                dump.as_os_str(),
            ];
            run_tool("pg_restore", database_url, &args)?;
        }
    }
    place_files(&staged.files, data_dir)?;
    drop(staging);
    let restored = Store::connect(database_url, Some(2)).await?;
    let migrated = crate::migrate(&restored, catalog_dir).await;
    restored.close().await;
    migrated?;
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
