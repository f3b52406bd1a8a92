//! Production (issue #19): the container image file, backup and restore, upgrades.

use crate::common;
use common::empty_target;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A stage of the Containerfile: name, base image, instructions as (keyword, rest).
type Stage = (String, String, Vec<(String, String)>);

fn stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(workspace().join("Containerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut stages: Vec<Stage> = Vec::new();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (keyword, rest) = line.split_once(' ').unwrap();
        if keyword == "FROM" {
            let (image, name) = rest.split_once(" AS ").unwrap();
            stages.push((name.to_string(), image.to_string(), Vec::new()));
        } else {
            stages.last_mut().unwrap().2.push((keyword.to_string(), rest.to_string()));
        }
    }
    stages
}

/// Where `cargo build --release` puts the entctl binary, relative to the workspace root.
fn release_binary() -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace())
        .output()
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let target = PathBuf::from(metadata["target_directory"].as_str().unwrap());
    let root = PathBuf::from(metadata["workspace_root"].as_str().unwrap());
    let bin = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .find(|t| t["kind"] == serde_json::json!(["bin"]))
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let relative = target.strip_prefix(&root).expect("the target folder is inside the workspace");
    format!("{}/release/{bin}", relative.display())
}

#[test]
fn the_image_copies_the_binary_the_release_build_makes_and_runs_it_as_a_non_root_user_without_a_shell() {
    let stages = stages();
    let names: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        ["build", "runtime-libreoffice", "runtime-tools", "runtime"],
        "the default image is the last stage"
    );
    let (_, _, build) = &stages[0];
    let run = &build.iter().find(|(k, _)| k == "RUN").unwrap().1;
    assert!(run.starts_with("cargo build --release --locked -p entctl --bin entctl "), "{run}");
    assert!(!run.contains("--target ") && !run.contains("CARGO_TARGET_DIR"), "the output folder moved: {run}");
    // The binary installed to /out is the one cargo wrote, at the path this workspace's release build uses.
    let workdir = &build.iter().find(|(k, _)| k == "WORKDIR").unwrap().1;
    assert_eq!(workdir, "/src");
    assert!(run.contains(&format!("install -D -m 0755 {} /out/entctl", release_binary())), "{run}");
    for (name, base, steps) in &stages[1..] {
        let copy = steps.iter().find(|(k, rest)| k == "COPY" && rest.ends_with("/usr/local/bin/entctl")).unwrap();
        assert_eq!(copy.1, "--from=build /out/entctl /usr/local/bin/entctl", "{name}");
        let entrypoint = &steps.iter().find(|(k, _)| k == "ENTRYPOINT").unwrap().1;
        assert_eq!(entrypoint, r#"["/usr/local/bin/entctl"]"#, "{name}");
        let user = &steps.iter().rev().find(|(k, _)| k == "USER").unwrap().1;
        assert_eq!(user, "65532:65532", "{name}: numeric non-root user (runAsNonRoot can check it)");
        let env = steps.iter().filter(|(k, _)| k == "ENV").map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" ");
        assert!(env.contains("HOME=/tmp") && env.contains("ENTCP_DATA_DIR=/var/lib/entcp"), "{name}: {env}");
        if name == "runtime" {
            assert!(base.starts_with("gcr.io/distroless/cc-debian12:nonroot"), "{base}");
            assert!(steps.iter().all(|(k, _)| k != "RUN"), "the default image runs nothing: it has no shell");
        } else {
            // The libreoffice image converts documents; the tools image carries the PostgreSQL client.
            let package = if name == "runtime-tools" { "postgresql-client" } else { "libreoffice-writer-nogui" };
            assert!(steps.iter().any(|(k, rest)| k == "RUN" && rest.contains(package)), "{name}: {package}");
        }
    }
    let ignored = std::fs::read_to_string(workspace().join(".dockerignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "target/") && ignored.lines().any(|l| l == ".git/"), "{ignored}");
}

/// Restores `archive` into `url` (connected, not migrated), with `data_dir` as the data folder.
async fn restore(url: &str, data_dir: &Path, archive: &Path) -> anyhow::Result<entcp::backup::Manifest> {
    let target = entcp::store::Store::connect(url, Some(2)).await.unwrap();
    entcp::backup::restore(target, url, data_dir, None, archive).await
}

/// A copy of `archive` whose entries went through `change` (name, bytes).
fn rewritten(archive: &Path, change: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> tempfile::NamedTempFile {
    use std::io::{Read, Write};
    let mut source = zip::ZipArchive::new(std::fs::File::open(archive).unwrap()).unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut zip = zip::ZipWriter::new(out.reopen().unwrap());
    for i in 0..source.len() {
        let mut entry = source.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        zip.start_file(&name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&change(&name, bytes)).unwrap();
    }
    zip.finish().unwrap();
    out
}

async fn tables(url: &str) -> i64 {
    let store = entcp::store::Store::connect(url, Some(1)).await.unwrap();
    let sql = if url.starts_with("sqlite") {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
    } else {
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    };
    let n = sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap();
    store.close().await;
    n
}

/// A PostgreSQL URL with parameters sqlx reads and libpq refuses (« invalid URI query
/// parameter »), or in sqlx's own spelling; a SQLite URL as it is (no client tool reads it).
fn with_sqlx_only_parameter(url: &str) -> String {
    if !url.starts_with("postgres") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}statement-cache-capacity=50&ssl-mode=prefer&options[lock_timeout]=0")
}

backend_test!(a_backup_restores_into_an_empty_database_with_its_files_and_an_intact_audit_chain);
async fn a_backup_restores_into_an_empty_database_with_its_files_and_an_intact_audit_chain(db: common::TestDb) {
    common::import_sample(&db.store).await;
    common::token_for(&db.store, "dane@ac-creteil.fr", entcp::kernel::roles::Role::Admin, None).await;
    let entcp::audit::Verification::Intact { records } = entcp::audit::verify(&db.store).await.unwrap() else {
        panic!("the source chain is broken")
    };
    assert!(records > 0);
    let organisations = common::count(&db.store, "SELECT COUNT(*) FROM orgs", &[]).await;
    let source_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(source_dir.path().join("mail")).unwrap();
    std::fs::write(source_dir.path().join("mail/m1.eml"), "Subject: essai\r\n\r\nbonjour").unwrap();
    let archive = source_dir.path().join("sauvegarde.zip");

    // A URL with a parameter of sqlx's that libpq refuses: pg_dump failed on it.
    let url = with_sqlx_only_parameter(&db.url);
    let manifest = entcp::backup::backup(&db.store, &url, source_dir.path(), &archive).await.unwrap();
    assert_eq!(manifest.schema_version, entcp::backup::known_schema_version(db.store.backend()));
    let names: Vec<&str> = manifest.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.len(), 2, "the database and the one data file, not the archive itself: {names:?}");
    assert!(names.contains(&"files/mail/m1.eml"), "{names:?}");

    let (url, _target) = empty_target(&db).await;
    let url = with_sqlx_only_parameter(&url);
    let restored_dir = tempfile::tempdir().unwrap();
    restore(&url, restored_dir.path(), &archive).await.unwrap();
    let restored = entcp::store::Store::connect(&url, Some(2)).await.unwrap();
    assert_eq!(entcp::audit::verify(&restored).await.unwrap(), entcp::audit::Verification::Intact { records });
    assert_eq!(common::count(&restored, "SELECT COUNT(*) FROM orgs", &[]).await, organisations);
    assert_eq!(
        std::fs::read_to_string(restored_dir.path().join("mail/m1.eml")).unwrap(),
        "Subject: essai\r\n\r\nbonjour"
    );
    // The restored database is a working one: a new audited write chains on.
    common::token_for(&restored, "second@ac-creteil.fr", entcp::kernel::roles::Role::Admin, None).await;
    assert!(matches!(entcp::audit::verify(&restored).await.unwrap(),
        entcp::audit::Verification::Intact { records: after } if after > records));
    restored.close().await;

    // Into a database that is not empty: refused.
    let refused = restore(&url, restored_dir.path(), &archive).await.unwrap_err().to_string();
    assert!(refused.contains("n'est pas vide"), "{refused}");
}

/// Every file under `dir`, by path relative to it (hidden ones included), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(read) = std::fs::read_dir(&folder) else { continue };
        for entry in read {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

backend_test!(a_corrupt_or_newer_schema_archive_is_refused_before_anything_is_written);
async fn a_corrupt_or_newer_schema_archive_is_refused_before_anything_is_written(db: common::TestDb) {
    common::import_sample(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("sauvegarde.zip");
    let source_dir = dir.path().join("source");
    std::fs::create_dir_all(source_dir.join("mail")).unwrap();
    std::fs::write(source_dir.join("mail/m1.eml"), "Subject: essai\r\n\r\nbonjour").unwrap();
    entcp::backup::backup(&db.store, &db.url, &source_dir, &archive).await.unwrap();
    let (url, _target) = empty_target(&db).await;
    // The data folder restored into already holds a file; the SQLite target is a file.
    let data_dir = dir.path().join("donnees");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("avant.txt"), "déjà là").unwrap();
    let target_dir = entcp::store::sqlite_file_path(&url).map(|p| p.parent().unwrap().to_path_buf());
    assert_eq!(tables(&url).await, 0, "connected once: the SQLite file exists");
    let before = (listing(&data_dir), target_dir.as_deref().map(listing));
    let unchanged = |what: &str| {
        let after = (listing(&data_dir), target_dir.as_deref().map(listing));
        assert_eq!(after, before, "{what}: the data folder and the target database's folder are unchanged");
    };

    let corrupt = rewritten(&archive, |name, mut bytes| {
        if name.starts_with("database.") {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
        }
        bytes
    });
    let refused = restore(&url, &data_dir, corrupt.path()).await.unwrap_err().to_string();
    assert!(refused.contains("corrompue"), "{refused}");
    unchanged("corrupt database");

    // The database entry is sound, a data file after it is not: its checksum is found wrong
    // once the database is extracted, and nothing is restored all the same.
    let cut = rewritten(&archive, |name, bytes| {
        if name == "files/mail/m1.eml" {
            return bytes[..bytes.len() / 2].to_vec();
        }
        bytes
    });
    let refused = restore(&url, &data_dir, cut.path()).await.unwrap_err().to_string();
    assert!(refused.contains("corrompue") && refused.contains("files/mail/m1.eml"), "{refused}");
    unchanged("truncated data file");

    let newer = rewritten(&archive, |name, bytes| {
        if name != "manifest.json" {
            return bytes;
        }
        let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        manifest["schema_version"] = serde_json::json!(manifest["schema_version"].as_i64().unwrap() + 1);
        serde_json::to_vec(&manifest).unwrap()
    });
    let refused = restore(&url, &data_dir, newer.path()).await.unwrap_err().to_string();
    assert!(refused.contains("plus récent"), "{refused}");
    // Told by the schema it needs and the build that wrote it (not a version number both share).
    let needed = entcp::backup::known_schema_version(db.store.backend()) + 1;
    assert!(refused.contains(&format!("un entctl qui connaît le schéma {needed}")), "{refused}");
    assert!(refused.contains(&format!("celui qui l'a écrite, {}", entcp::VERSION)), "{refused}");
    unchanged("newer schema");

    let truncated = tempfile::NamedTempFile::new().unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(truncated.path(), &bytes[..bytes.len() / 2]).unwrap();
    assert!(restore(&url, &data_dir, truncated.path()).await.is_err());
    unchanged("truncated archive");
    assert_eq!(tables(&url).await, 0, "nothing written by a refused restore");

    // The same target restores the sound archive.
    restore(&url, &data_dir, &archive).await.unwrap();
    assert_eq!(std::fs::read_to_string(data_dir.join("mail/m1.eml")).unwrap(), "Subject: essai\r\n\r\nbonjour");
    assert!(listing(&data_dir).iter().all(|p| !p.starts_with('.')), "no staging folder left: {:?}", listing(&data_dir));
}

backend_test!(an_archive_written_whole_by_the_previous_release_still_restores);
async fn an_archive_written_whole_by_the_previous_release_still_restores(db: common::TestDb) {
    use sha2::Digest;
    use std::io::{Read, Write};
    common::import_sample(&db.store).await;
    let organisations = common::count(&db.store, "SELECT COUNT(*) FROM orgs", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source_dir = dir.path().join("source");
    std::fs::create_dir_all(source_dir.join("pieces")).unwrap();
    // Larger than a copy's piece (256 Kio): hashed over several pieces.
    let attachment: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(source_dir.join("pieces/annexe.pdf"), &attachment).unwrap();
    let streamed = dir.path().join("streamed.zip");
    let manifest = entcp::backup::backup(&db.store, &db.url, &source_dir, &streamed).await.unwrap();

    // The previous release read each entry whole and wrote it in one piece: the same
    // archive written that way.
    let mut source = zip::ZipArchive::new(std::fs::File::open(&streamed).unwrap()).unwrap();
    let old = dir.path().join("old.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&old).unwrap());
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o600).large_file(true);
    for entry in &manifest.entries {
        let mut bytes = Vec::new();
        source.by_name(&entry.name).unwrap().read_to_end(&mut bytes).unwrap();
        // The streamed checksums are those of the whole entries, as the format has them.
        assert_eq!(
            (entry.bytes, entry.sha256.as_str()),
            (bytes.len() as u64, hex::encode(sha2::Sha256::digest(&bytes)).as_str()),
            "{}",
            entry.name
        );
        zip.start_file(&entry.name, options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.start_file("manifest.json", options).unwrap();
    zip.write_all(&serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    zip.finish().unwrap();

    let (url, _target) = empty_target(&db).await;
    let data_dir = dir.path().join("donnees");
    restore(&url, &data_dir, &old).await.unwrap();
    assert_eq!(std::fs::read(data_dir.join("pieces/annexe.pdf")).unwrap(), attachment);
    let restored = entcp::store::Store::connect(&url, Some(1)).await.unwrap();
    assert_eq!(common::count(&restored, "SELECT COUNT(*) FROM orgs", &[]).await, organisations);
    restored.close().await;
}

backend_test!(a_backup_that_fails_midway_keeps_the_previous_archive_and_leaves_no_partial_file);
async fn a_backup_that_fails_midway_keeps_the_previous_archive_and_leaves_no_partial_file(db: common::TestDb) {
    common::import_sample(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("donnees");
    std::fs::create_dir_all(data_dir.join("mail")).unwrap();
    std::fs::write(data_dir.join("mail/m1.eml"), "Subject: essai\r\n\r\nbonjour").unwrap();
    let archive = dir.path().join("sauvegarde.zip");
    entcp::backup::backup(&db.store, &db.url, &data_dir, &archive).await.unwrap();
    let previous = std::fs::read(&archive).unwrap();

    // Tonight's backup fails while it writes the archive: a file of the data folder cannot be
    // read (a socket: even root cannot open one as a file).
    let _socket = std::os::unix::net::UnixListener::bind(data_dir.join("mail/agent.sock")).unwrap();
    let failed = entcp::backup::backup(&db.store, &db.url, &data_dir, &archive).await.unwrap_err();
    assert!(format!("{failed:#}").contains("agent.sock"), "{failed:#}");
    assert!(std::fs::read(&archive).unwrap() == previous, "the previous archive is still there, whole");
    let mut left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["donnees", "sauvegarde.zip"], "no partial archive left beside it");
    let (url, _target) = empty_target(&db).await;
    restore(&url, tempfile::tempdir().unwrap().path(), &archive).await.unwrap();
}

backend_test!(a_restore_that_fails_midway_leaves_the_database_empty_so_that_it_can_run_again);
async fn a_restore_that_fails_midway_leaves_the_database_empty_so_that_it_can_run_again(db: common::TestDb) {
    if db.name == "sqlite" {
        eprintln!("a SQLite restore writes one file, whole, then renames it: it has no midway");
        return;
    }
    common::import_sample(&db.store).await;
    let organisations = common::count(&db.store, "SELECT COUNT(*) FROM orgs", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("sauvegarde.zip");
    entcp::backup::backup(&db.store, &db.url, &dir.path().join("vide"), &archive).await.unwrap();
    // The target has no table, but a type named like the table pg_restore creates last
    // (tables come in name order): every other table is created before the restore fails.
    let last: String =
        sqlx::query_scalar("SELECT MAX(table_name::text) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    let (url, _target) = empty_target(&db).await;
    let target = entcp::store::Store::connect(&url, Some(1)).await.unwrap();
    sqlx::query(&format!("CREATE TYPE \"{last}\" AS (x integer)")).execute(target.pool()).await.unwrap();
    target.close().await;

    let failed = restore(&url, dir.path(), &archive).await.unwrap_err().to_string();
    assert!(failed.contains("pg_restore a échoué"), "{failed}");
    assert_eq!(tables(&url).await, 0, "nothing of a failed restore is left in the database");

    let target = entcp::store::Store::connect(&url, Some(1)).await.unwrap();
    sqlx::query(&format!("DROP TYPE \"{last}\"")).execute(target.pool()).await.unwrap();
    target.close().await;
    restore(&url, dir.path(), &archive).await.unwrap();
    let restored = entcp::store::Store::connect(&url, Some(1)).await.unwrap();
    assert_eq!(common::count(&restored, "SELECT COUNT(*) FROM orgs", &[]).await, organisations);
    restored.close().await;
}

/// The last migration of the previous release (what `main` shipped before migrations
/// 0025 and 0026): raise it at each release.
const PREVIOUS_RELEASE: i64 = 27;

/// The migrations after the previous release's, with the statements of each.
fn new_migrations() -> Vec<(&'static str, String)> {
    let files = entcp::store::migrations::FILES.iter();
    let number = |file: &str| file[..4].parse::<i64>().unwrap();
    files.filter(|(file, _)| number(file) > PREVIOUS_RELEASE).map(|(file, sql)| (*file, sql.to_uppercase())).collect()
}

#[test]
fn the_migrations_since_the_previous_release_only_expand_the_schema() {
    // During a rolling upgrade the previous release's replicas run on the new schema:
    // a table, a column or a name they use must not go before the release after.
    let new = new_migrations();
    assert!(!new.is_empty(), "no migration since release {PREVIOUS_RELEASE}: raise PREVIOUS_RELEASE");
    for (file, sql) in new {
        let sql = without_rebuilds(&sql);
        for contract in ["DROP TABLE", "DROP COLUMN", "RENAME", "ALTER COLUMN", "SET NOT NULL"] {
            assert!(!sql.contains(contract), "{file}: « {contract} » contracts the schema the previous release reads");
        }
    }
}

/// `sql` (in capitals) without the statements that rebuild a table under its own name, the one
/// way SQLite drops a column's `UNIQUE`: the copy is created as `<table>_REBUILT` with every
/// column and filled, then the table dropped and the copy renamed back, with its PostgreSQL
/// names. The previous release reads and writes the same table and columns; only a constraint
/// goes (`counters::rgpd_references_carry_on_per_controller` writes rows before the rebuild and
/// reads them back after it).
fn without_rebuilds(sql: &str) -> String {
    let mut left = sql.to_string();
    for created in sql.split("CREATE TABLE ").skip(1) {
        let name: String = created.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let Some(table) = name.strip_suffix("_REBUILT") else { continue };
        let renamed_back = format!("ALTER TABLE {name} RENAME TO {table};");
        assert!(sql.contains(&renamed_back), "{name} is not renamed back to {table}");
        for statement in [
            format!("DROP TABLE {table};"),
            renamed_back,
            format!("ALTER INDEX {name}_PKEY RENAME TO {table}_PKEY;"),
            format!("ALTER TABLE {table} RENAME CONSTRAINT {name}_ORG_ID_FKEY TO {table}_ORG_ID_FKEY;"),
        ] {
            left = left.replace(&statement, "");
        }
    }
    left
}

/// The tenant request as the previous release's code wrote it: its columns only (today's code
/// writes columns that release's schema does not have, so it cannot stand in for it here).
async fn previous_release_requests_a_tenant(store: &entcp::store::Store) {
    let now = common::t0().to_rfc3339();
    sqlx::query(
        "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
         spec_hash, version, created_at, updated_at, secret_seed) \
         SELECT 'tenant-previous', 'doisneau', id, 'doisneau.ent.example.fr', 'socle-1d', '[\"visio\"]', 250, \
         'educonnect', 'requested', 'previous', 1, $1, $1, 'seed' FROM orgs WHERE code = '0940176F'",
    )
    .bind(&now)
    .execute(store.pool())
    .await
    .unwrap();
}

backend_test!(data_written_on_the_previous_release_schema_reads_back_after_the_new_migrations);
async fn data_written_on_the_previous_release_schema_reads_back_after_the_new_migrations(db: common::TestDb) {
    use entcp::kernel::roles::Role;
    let (url, _target) = empty_target(&db).await;
    let store = entcp::store::Store::connect(&url, Some(2)).await.unwrap();
    common::migrate_up_to(&store, PREVIOUS_RELEASE).await;
    let applied = "SELECT MAX(version) FROM _sqlx_migrations";
    assert_eq!(common::count(&store, applied, &[]).await, PREVIOUS_RELEASE);
    // Written on the previous schema: the annuaire, a user with a role, a tenant, their audit records.
    // Today's import takes its lock in a table of migration 0060: lent to the previous schema
    // for this write, and dropped before the migrations run.
    let lock_table = "CREATE TABLE import_locks (academie_code TEXT PRIMARY KEY, run_id TEXT NOT NULL, \
                      holder TEXT NOT NULL, process TEXT NOT NULL, started_at TEXT NOT NULL, expires_at TEXT NOT NULL)";
    common::execute(&store, lock_table, &[]).await;
    common::import_sample(&store).await;
    common::execute(&store, "DROP TABLE import_locks", &[]).await;
    let dan = common::token_for(&store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    previous_release_requests_a_tenant(&store).await;

    store.migrate().await.unwrap();
    assert!(common::count(&store, applied, &[]).await > PREVIOUS_RELEASE);
    // Read back through the current code and API.
    let app = common::TestApp::over(&store).build().await;
    let dan = app.client(&dan);
    assert_eq!(common::count_kind(&store, "etablissement").await, 613, "{}", db.name);
    let school = dan.get("/api/v1/orgs/0940176F").send().await;
    assert_eq!(school.status, 200, "{:?}", school.body);
    assert_eq!(school.body["code"], "0940176F");
    let tenant = dan.get("/api/v1/tenants/doisneau").send().await;
    assert_eq!(tenant.status, 200, "{:?}", tenant.body);
    assert_eq!(tenant.body["hostname"], "doisneau.ent.example.fr");
    assert!(matches!(entcp::audit::verify(&store).await.unwrap(), entcp::audit::Verification::Intact { .. }));
    store.close().await;
}

// SQLite's database file was recognised only by a `.db` name: one named otherwise inside the
// data folder went into the archive with its live `-wal`, which a restore then placed beside
// the restored copy (and SQLite replayed it over it). The configured file and its companions
// are now left out by path, and a restore never places a `-wal` or `-shm` file.
backend_test!(a_backup_leaves_out_the_configured_database_file_and_a_restore_places_no_wal);
async fn a_backup_leaves_out_the_configured_database_file_and_a_restore_places_no_wal(db: common::TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(data_dir.join("mail")).unwrap();
    std::fs::write(data_dir.join("mail/m1.eml"), "Subject: essai\r\n\r\nbonjour").unwrap();
    // Left by another SQLite file (a former configuration): archived, never placed back.
    std::fs::write(data_dir.join("ancien.sqlite-wal"), "wal").unwrap();
    std::fs::write(data_dir.join("ancien.sqlite-shm"), "shm").unwrap();
    let archive = dir.path().join("sauvegarde.zip");
    let (store, url) = match db.name {
        "sqlite" => {
            let url = format!("sqlite://{}?mode=rwc", data_dir.join("ent.sqlite").display());
            let store = entcp::store::Store::connect(&url, Some(2)).await.unwrap();
            store.migrate().await.unwrap();
            common::token_for(&store, "dane@ac-creteil.fr", entcp::kernel::roles::Role::Admin, None).await;
            (store, url)
        }
        _ => (db.store.clone(), db.url.clone()),
    };
    let manifest = entcp::backup::backup(&store, &url, &data_dir, &archive).await.unwrap();
    let names: Vec<&str> = manifest.entries.iter().map(|e| e.name.as_str()).collect();
    assert!(!names.iter().any(|n| n.starts_with("files/ent.sqlite")), "{}: {names:?}", db.name);
    assert!(names.contains(&"files/mail/m1.eml"), "{names:?}");

    let (target, _target) = empty_target(&db).await;
    let restored_dir = tempfile::tempdir().unwrap();
    restore(&target, restored_dir.path(), &archive).await.unwrap();
    assert_eq!(listing(restored_dir.path()), ["mail", "mail/m1.eml"], "{}", db.name);
}

// A migration table that no longer matches this binary — a checksum changed, an applied version
// it lacks below its last, a migration left half-applied — stopped the start with sqlx's English
// sentence (the last one telling to edit `_sqlx_migrations` by hand). It is now a French message
// naming the migration and what to do, and nothing is applied (SRE 43 F9).
backend_test!(a_migration_table_that_no_longer_matches_stops_the_start_with_what_to_do);
async fn a_migration_table_that_no_longer_matches_stops_the_start_with_what_to_do(db: common::TestDb) {
    let known = entcp::store::migrations::last_known();
    let checksum = if db.name == "sqlite" { "X'00'" } else { "'\\x00'::bytea" };
    let rows = "SELECT COUNT(*) FROM _sqlx_migrations";
    let before = common::count(&db.store, rows, &[]).await;
    let last = entcp::store::migrations::FILES.last().unwrap().0;
    let cases = [
        (
            format!("UPDATE _sqlx_migrations SET success = FALSE WHERE version = {known}"),
            format!("UPDATE _sqlx_migrations SET success = TRUE WHERE version = {known}"),
            format!("la migration {known} ({last}) est marquée inachevée dans la base"),
        ),
        (
            format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (21, 'absente', TRUE, {checksum}, 0)"
            ),
            "DELETE FROM _sqlx_migrations WHERE version = 21".to_string(),
            "la base a appliqué une migration 21 que cet entctl ne connaît pas".to_string(),
        ),
        (
            format!("UPDATE _sqlx_migrations SET checksum = {checksum} WHERE version = 5"),
            String::new(),
            "la migration 5 (0005_tenants.sql) a été appliquée à cette base avec un autre contenu".to_string(),
        ),
    ];
    for (tamper, undo, told) in cases {
        common::execute(&db.store, &tamper, &[]).await;
        let refused = db.store.migrate().await.expect_err(&tamper).to_string();
        assert!(refused.contains(&told), "{}: {tamper}: {refused}", db.name);
        assert!(refused.contains("ne modifiez pas") || refused.contains("ne supprimez pas"), "{refused}");
        assert!(!refused.contains("previously applied") && !refused.contains("partially"), "{refused}");
        assert_eq!(common::count(&db.store, rows, &[]).await, before + i64::from(undo.starts_with("DELETE")));
        if !undo.is_empty() {
            common::execute(&db.store, &undo, &[]).await;
        }
    }
}
