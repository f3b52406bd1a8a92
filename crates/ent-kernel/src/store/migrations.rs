//! The migrations of both backends, from one folder.
//!
//! `migrations/*.sql` is written once, in SQLite's spelling; PostgreSQL runs the same text
//! with [`POSTGRES_TYPES`] applied word by word. Nothing else may differ between the two,
//! but for what follows a line [`POSTGRES_ONLY`] (SQLite stops before it): a PostgreSQL
//! feature SQLite has no use for (a trigger notifying other processes).
//! A migration already shipped never changes: its checksum is pinned by a test (a
//! database migrated by an earlier release must keep validating at start).

use super::Backend;
use regex::Regex;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use std::borrow::Cow;
use std::sync::LazyLock;

/// The line after which the rest of a migration is PostgreSQL's only.
pub const POSTGRES_ONLY: &str = "-- postgres only";

/// The column types PostgreSQL spells differently: (SQLite, PostgreSQL).
pub const POSTGRES_TYPES: &[(&str, &str)] = &[("BLOB", "BYTEA")];

macro_rules! migration_files {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $file)))),*]
    };
}

/// Every migration file, in order (a test checks this list against the folder).
pub const FILES: &[(&str, &str)] = migration_files![
    "0001_registry.sql",
    "0002_identity_audit.sql",
    "0003_jobs_outbox.sql",
    "0004_conventions.sql",
    "0005_tenants.sql",
    "0006_tenant_secret.sql",
    "0007_reconcile.sql",
    "0008_processors.sql",
    "0009_support.sql",
    "0010_rgpd.sql",
    "0011_groupements.sql",
    "0012_provisioning_observed.sql",
    "0013_membership_invitations.sql",
    "0014_row_discipline.sql",
    "0015_leases.sql",
    "0016_job_heartbeats_read_path.sql",
    "0017_counters.sql",
    "0018_registry_changes.sql",
    "0019_reconcile_semantics.sql",
    "0020_console_sessions.sql",
    "0022_convention_documents.sql",
    "0024_deferred_indexes.sql",
    "0025_orgs_slimmer_indexes.sql",
    "0026_console_oidc.sql",
    "0027_ticket_attachments.sql",
    "0028_notification_preferences.sql",
    "0029_processor_contract_versions.sql",
    "0030_tenant_declared_by.sql",
    "0031_list_indexes.sql",
    "0032_orgs_without_code_index.sql",
    "0033_rgpd_reference_counters.sql",
    "0034_auth_failures.sql",
    "0035_rgpd_request_extension_notice.sql",
    "0036_support_tickets_by_created.sql",
    "0037_lockout_notifies_apart.sql",
    "0038_convention_steps_recorded_by.sql",
    "0039_convention_renewals.sql",
    "0040_job_runs_one_running.sql",
    "0041_reconcile_applied_by.sql",
    "0042_idempotency_committed.sql",
    "0043_pending_invitees.sql",
    "0044_rgpd_transfer_safeguard.sql",
    "0045_oidc_identities.sql",
    "0046_convention_party_shares.sql",
    "0047_tenant_applied_services.sql",
    "0048_tenant_retained_services.sql",
    "0049_groupement_consultation_launched.sql",
    "0050_retained_services_backfill.sql",
    "0051_token_parent.sql",
    "0052_breach_register.sql",
    "0053_signed_copy_account.sql",
    "0054_ticket_answered.sql",
    "0055_tenant_purge_announced.sql",
    "0056_tenant_coverage_lapse.sql",
    "0057_ticket_seen_version.sql",
    "0058_rgpd_references_per_controller.sql",
    "0059_convention_document_edition.sql",
    "0060_import_locks.sql",
    "0061_convention_step_delegation.sql",
    "0062_convention_document_edition_3.sql",
    "0063_convention_document_edition_4.sql",
    "0064_convention_document_edition_5.sql",
    "0065_convention_document_edition_6.sql",
    "0066_groupement_offers_deadline.sql",
    "0067_convention_document_edition_7.sql",
    "0068_groupement_sans_suite.sql",
    "0069_convention_document_edition_8.sql",
    "0070_convention_document_edition_9.sql",
    "0071_convention_document_edition_10.sql",
    "0072_breach_reported_by_processor.sql",
    "0073_tenant_destruction_attestation.sql",
    "0074_convention_document_edition_11.sql",
    "0075_groupement_documents_abandoned.sql",
    "0076_processor_contracts_by_source.sql",
    "0077_groupement_lots_sans_suite.sql",
    "0078_convention_document_edition_12.sql",
    "0079_breach_reported_as.sql",
    "0080_tenant_destruction_confirmed.sql",
];

static SQLITE: LazyLock<Migrator> = LazyLock::new(|| migrator(Backend::Sqlite));
static POSTGRES: LazyLock<Migrator> = LazyLock::new(|| migrator(Backend::Postgres));

/// The migrator of a backend.
pub fn for_backend(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    }
}

/// The last migration this binary knows.
pub fn last_known() -> i64 {
    FILES.iter().filter_map(|(file, _)| version_of(file)).max().unwrap_or(0)
}

/// `0004_conventions.sql` → 4.
fn version_of(file: &str) -> Option<i64> {
    file.split('_').next()?.parse().ok()
}

/// « la migration 5 (0005_tenants.sql) », or « la migration 77 » when this binary has no such file.
fn named(version: i64) -> String {
    match FILES.iter().find(|(file, _)| version_of(file) == Some(version)) {
        Some((file, _)) => format!("la migration {version} ({file})"),
        None => format!("la migration {version}"),
    }
}

/// What to do when the database no longer matches the migrations this binary knows.
const RESTORE_OR_MATCHING_RELEASE: &str = "démarrez la version d'entctl qui a migré cette base, ou restaurez la \
     sauvegarde prise avant (« entctl restore » dans une base neuve) ; ne modifiez pas la table _sqlx_migrations à la main";

/// A failed migration run as the operator reads it, in French: what is wrong and what to do.
/// sqlx says it in English, and for a half-applied migration tells to edit its table by hand.
pub fn refusal(error: MigrateError) -> anyhow::Error {
    let known = last_known();
    let message = match error {
        MigrateError::VersionMismatch(version) => format!(
            "{} a été appliquée à cette base avec un autre contenu que celui de cet entctl (somme de contrôle \
             différente) : cet entctl a été construit d'un fichier de migration modifié, ou la table \
             _sqlx_migrations a été modifiée ; {RESTORE_OR_MATCHING_RELEASE}",
            named(version)
        ),
        MigrateError::VersionMissing(version) if version > known => format!(
            "la base a appliqué la migration {version}, plus récente que celles de cet entctl (jusqu'à {known}) : \
             démarrez la version d'entctl qui l'a appliquée, ou une plus récente"
        ),
        MigrateError::VersionMissing(version) => format!(
            "la base a appliqué une migration {version} que cet entctl ne connaît pas (ses migrations vont jusqu'à \
             {known}) : elle a été migrée par une autre construction d'entctl (branche, version de développement) ; \
             {RESTORE_OR_MATCHING_RELEASE}"
        ),
        MigrateError::Dirty(version) => format!(
            "{}{} est marquée inachevée dans la base : elle a échoué en cours d'application lors d'un démarrage \
             précédent, dont le journal donne la cause ; restaurez la sauvegarde prise avant la mise à jour \
             (« entctl restore » dans une base neuve), puis démarrez de nouveau la version voulue ; ne supprimez pas \
             la ligne de la table _sqlx_migrations à la main",
            named(version),
            if version > known { ", d'une version plus récente d'entctl," } else { "" }
        ),
        MigrateError::ExecuteMigration(cause, version) => {
            format!("{} a échoué : {cause} ; corrigez la cause, puis démarrez de nouveau", named(version))
        }
        other => format!("migrations de la base impossibles : {other}"),
    };
    anyhow::anyhow!(message)
}

/// The SQL a backend runs for one migration file.
pub fn sql_for(backend: Backend, sqlite_sql: &str) -> String {
    match backend {
        Backend::Sqlite => {
            let marker = format!("\n{POSTGRES_ONLY}\n");
            sqlite_sql.split_once(&marker).map_or(sqlite_sql, |(common, _)| common).to_string()
        }
        Backend::Postgres => POSTGRES_TYPES.iter().fold(sqlite_sql.to_string(), |sql, (from, to)| {
            let word = Regex::new(&format!(r"(?-u:\b){from}(?-u:\b)")).expect("type names are plain words");
            word.replace_all(&sql, *to).into_owned()
        }),
    }
}

fn migrator(backend: Backend) -> Migrator {
    let migrations = FILES.iter().map(|(file, sql)| migration(file, sql_for(backend, sql))).collect::<Vec<_>>();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

/// `0004_conventions.sql` → version 4, description « conventions », as `sqlx::migrate!` names it.
fn migration(file: &str, sql: String) -> Migration {
    let stem = file.strip_suffix(".sql").expect("migration files end in .sql");
    let (version, description) = stem.split_once('_').expect("migration files are named NNNN_description.sql");
    let version = version.parse().expect("migration files start with their version number");
    let no_tx = sql.starts_with("-- no-transaction");
    Migration::new(version, Cow::Owned(description.replace('_', " ")), MigrationType::Simple, Cow::Owned(sql), no_tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-384 of every shipped migration as each backend ran it. Add a row for a new
    /// migration; never change one: databases in service would refuse to start.
    const SHIPPED: &[(i64, &str, &str)] = &[
        (
            1,
            "f08c3c6a26043a82a90f4c531311a98e128b1c6dd4ef5f51ab02f07b496580a019c20b6f7d4cc6fdfe3dad9b4bc8196e",
            "f08c3c6a26043a82a90f4c531311a98e128b1c6dd4ef5f51ab02f07b496580a019c20b6f7d4cc6fdfe3dad9b4bc8196e",
        ),
        (
            2,
            "67fc53962b9a401ff610f1b7afbeffe17f24e5b92434bef6969a5ca28618bc600ee3c1c0afbf5eb4cd6d7c605470ac94",
            "67fc53962b9a401ff610f1b7afbeffe17f24e5b92434bef6969a5ca28618bc600ee3c1c0afbf5eb4cd6d7c605470ac94",
        ),
        (
            3,
            "efe985324cc09c0161c21fca4df5875b66eab55c5300c566888f5cccfca5717ea0fd841eba8c9fdc9bb6042cf25caf61",
            "efe985324cc09c0161c21fca4df5875b66eab55c5300c566888f5cccfca5717ea0fd841eba8c9fdc9bb6042cf25caf61",
        ),
        (
            4,
            "db3f813b073f103b31de89af06848209e6e58eb05d6ec30fe048087e1f79dbedf8582353052886612d2569b621cc01bb",
            "3c82d7b8b5a6f4aac4c6a2a2a8aa1fdff2690f08c0d91e46bdfb33d5cebbb259d2d3be6d9fff6909df70126194cf2071",
        ),
        (
            5,
            "b88bc5f35b32a9ff03f81ada0a8e7c293c0b0e550c4e875fdba953124e5fbb21ba50f2d5e99a7b6c01df914c9d081bec",
            "b88bc5f35b32a9ff03f81ada0a8e7c293c0b0e550c4e875fdba953124e5fbb21ba50f2d5e99a7b6c01df914c9d081bec",
        ),
        (
            6,
            "154f5cde38fc94ab7c46c0c10f897d1a30f5079987f0d159363d101f28e0c283412679668db7725d2d17a9b376e6faca",
            "154f5cde38fc94ab7c46c0c10f897d1a30f5079987f0d159363d101f28e0c283412679668db7725d2d17a9b376e6faca",
        ),
        (
            7,
            "e46b058007f200946eeeac70d74126553e107254813bf6488800849cc7c98c03dab7e3bcfd0c33d2d515bf917cd03a15",
            "e46b058007f200946eeeac70d74126553e107254813bf6488800849cc7c98c03dab7e3bcfd0c33d2d515bf917cd03a15",
        ),
        (
            8,
            "0a4cc3234b66517a6afe7be00be001304c973375c0291dd7be4b6d9c4c950fc03ae33b08b403db3ad0d3b52b9b998f25",
            "0a4cc3234b66517a6afe7be00be001304c973375c0291dd7be4b6d9c4c950fc03ae33b08b403db3ad0d3b52b9b998f25",
        ),
        (
            9,
            "9c48b5141b60c5fcdf6e185b9a017384a1acd159044300682dc14691585b6160f73a1d8b5bf551ef9f8b2738699ca834",
            "9c48b5141b60c5fcdf6e185b9a017384a1acd159044300682dc14691585b6160f73a1d8b5bf551ef9f8b2738699ca834",
        ),
        (
            10,
            "f469f5102f641f9b8244dfee3205f752ab1f6309d7a8f1fbc35b593d435172483f53858a7a96347f4ad611dc1d5a6e4a",
            "f469f5102f641f9b8244dfee3205f752ab1f6309d7a8f1fbc35b593d435172483f53858a7a96347f4ad611dc1d5a6e4a",
        ),
        (
            11,
            "7eff7ed6ae82c014d4995bf8f9d99fc57cbc231432025879502bbd5790c2eb2cb18dc51db05b0d7a88d6c7f1761bb61b",
            "fef4cda4b1123ecabf4038d8ec31505b8885fa4866e54e823d6c8f725f25acfeb18e21264de1edcade179bcf6d9d85ca",
        ),
        (
            12,
            "53b40dca16c40ef2b2128055439da40109c20af4084c7771b132a020ee783fcbf9a128880557f2b50cd912db461504d2",
            "53b40dca16c40ef2b2128055439da40109c20af4084c7771b132a020ee783fcbf9a128880557f2b50cd912db461504d2",
        ),
        (
            13,
            "027fdfeb059b91429836ebb309810aa8335ef95156a1b1994af72203df09cbd0fd7bbdad1d137171a0e4fafa04c73c5c",
            "027fdfeb059b91429836ebb309810aa8335ef95156a1b1994af72203df09cbd0fd7bbdad1d137171a0e4fafa04c73c5c",
        ),
        (
            14,
            "528b25281fbc37bf73dc665cfba7a61f69428f169e38285de5aba0b3e6a069a4e4459958ceec5189f4cf0f49a5b9839f",
            "528b25281fbc37bf73dc665cfba7a61f69428f169e38285de5aba0b3e6a069a4e4459958ceec5189f4cf0f49a5b9839f",
        ),
        (
            15,
            "2d3c2c6a2db28a375d661da836dc16130adeedc8f2a01faa236334502f3d3a2baad989bc668b55d58f532a7171be7d85",
            "2d3c2c6a2db28a375d661da836dc16130adeedc8f2a01faa236334502f3d3a2baad989bc668b55d58f532a7171be7d85",
        ),
        (
            16,
            "f9e9575387c2419bcc68b63204562737e38bb4a943704b4facd92559b8976d4d04b00f9c9148da3bc7a4492c7bfa7b9d",
            "f9e9575387c2419bcc68b63204562737e38bb4a943704b4facd92559b8976d4d04b00f9c9148da3bc7a4492c7bfa7b9d",
        ),
        (
            17,
            "16b8facbde029c10a1d4df854b329ca8654ef2229298c7d8f5826be96c335d75784f595583f34488999707a76abf037a",
            "16b8facbde029c10a1d4df854b329ca8654ef2229298c7d8f5826be96c335d75784f595583f34488999707a76abf037a",
        ),
        (
            18,
            "1b4a5e0fbca5310c49dc0a0a4bb478534fb924bdf3e4493720ce2c212838e962e2542c2c02f3f49c1d2ad662097b96d5",
            "192afbb99bd618fee82f71b154ac813f482c2399e2c4ce137a6138493ad9c938eca273e32083c684c16639f923ce62f0",
        ),
        (
            19,
            "b585cf4bd6a1f1b435a3eef39c10185d52f1da66c847e558bc9c497e37be8eeb5cff8af0370bcd4c4688577f6b9edb16",
            "b585cf4bd6a1f1b435a3eef39c10185d52f1da66c847e558bc9c497e37be8eeb5cff8af0370bcd4c4688577f6b9edb16",
        ),
        (
            20,
            "81469b7f2e384d00213c3470fdb9ddc175f76556a6b61ec828a3dd9d3f5f6866f78546d7a3e0b64e0ee6b0d71ce9df01",
            "81469b7f2e384d00213c3470fdb9ddc175f76556a6b61ec828a3dd9d3f5f6866f78546d7a3e0b64e0ee6b0d71ce9df01",
        ),
        (
            22,
            "ce848e43a24d5f3457cef4271cbceedfae265d0e076b21d1d6767e11e3ec5a791b40fedc01e068815bc7617951f46f1d",
            "f759dc5c5898b84582b11a63799a04e45d3e79ea7f4c90ed5edb4935663d4981d89d04ee70977d28714c9f7ee248bca8",
        ),
        (
            24,
            "43045c91d548b6564d637b6b98e41074326fbbe9511434ae547b17d13efbbad0292a17411773802597253952c9694927",
            "43045c91d548b6564d637b6b98e41074326fbbe9511434ae547b17d13efbbad0292a17411773802597253952c9694927",
        ),
        (
            25,
            "c9a649b18fcd12000fd03884c38d9cd3e767e6d390bcd3729a8f9bba252548e709cf15d2703be2b3067e9cc73478d077",
            "c9a649b18fcd12000fd03884c38d9cd3e767e6d390bcd3729a8f9bba252548e709cf15d2703be2b3067e9cc73478d077",
        ),
        (
            26,
            "84389ad9219e16cd6cc9467b81f4d7d5dca8adb914413facf9ac384c88fa0fb6cda12086430d527fe9647cf19997c5d9",
            "84389ad9219e16cd6cc9467b81f4d7d5dca8adb914413facf9ac384c88fa0fb6cda12086430d527fe9647cf19997c5d9",
        ),
        (
            27,
            "8fdf3709c924db038d5b6714e41a9bf22a2f483e758f752ba7212be86c59f9c2e50206a90750e82cd6d76a446e27fcb2",
            "e95d452d43390dc1af40c8749d7befaeafa1eb566f0fef3495a599e298505f5a433ec02bd469f8b4c89176489a61f629",
        ),
        (
            28,
            "482a1aa0e3e47a9b9943bfd18cf378b724bbec43159655aa6172a46327458081e3373e98161a37873505d63dd1c59d39",
            "482a1aa0e3e47a9b9943bfd18cf378b724bbec43159655aa6172a46327458081e3373e98161a37873505d63dd1c59d39",
        ),
        (
            29,
            "a118d11bac54ba92814a7028cf36eae2724d59ddcc3d5c3d474a34685287feed57cdf74c0a3bdc5a6eda788bfe2bb24e",
            "a118d11bac54ba92814a7028cf36eae2724d59ddcc3d5c3d474a34685287feed57cdf74c0a3bdc5a6eda788bfe2bb24e",
        ),
        (
            30,
            "9de0293ffa98917384d7c32159f77db814649283e86ede9c897d6f8fa4d462e52c9e348b63b2fffd56aedefd59d81a5b",
            "9de0293ffa98917384d7c32159f77db814649283e86ede9c897d6f8fa4d462e52c9e348b63b2fffd56aedefd59d81a5b",
        ),
        (
            31,
            "fe6905ede33781433b7b948fb2e779b73f566bc5d2eaf19891e796242d553be6c62909092b7b8cffc4c53a10dc546ada",
            "fe6905ede33781433b7b948fb2e779b73f566bc5d2eaf19891e796242d553be6c62909092b7b8cffc4c53a10dc546ada",
        ),
        (
            32,
            "078a3279eb0fcfede730d068ede0ceb6aa5800dffe1dd9e61ba20007c461d804addb466b514604ba9a15029f9a4bdd36",
            "078a3279eb0fcfede730d068ede0ceb6aa5800dffe1dd9e61ba20007c461d804addb466b514604ba9a15029f9a4bdd36",
        ),
        (
            33,
            "ad87f9e96227785fb7be33f36ce35bdfccd100e55ff87602ab5d5d7d490784935611fd8a88a456920d050a029d236ff6",
            "ad87f9e96227785fb7be33f36ce35bdfccd100e55ff87602ab5d5d7d490784935611fd8a88a456920d050a029d236ff6",
        ),
        (
            34,
            "c2d2963f2d436d9168225f1cb4fb864c03c102d0c3a5a3ff4dc80fb17780e7ad77622dc59d4ba3520536e9da39cf8c52",
            "ba6dc8f5b960613bd96c2ef42900e7cbbfa4ef0113985163a266c8b2b807a9fa1acb65007f35f68691cca9f067a8b509",
        ),
        (
            35,
            "957e1b91da3bbf22d694cc0059d2fb0f50c941dae5b2a90ae07da99eaa5abe931dc4874cf24d32a7dcc4aeed330488d1",
            "957e1b91da3bbf22d694cc0059d2fb0f50c941dae5b2a90ae07da99eaa5abe931dc4874cf24d32a7dcc4aeed330488d1",
        ),
        (
            36,
            "dd7677dbdeb6c8b5cdde801bcb4dc56c4ca3a1f4611ed253c4626ce4b6e0a831e6141b40d196554614f6b860b73ec301",
            "dd7677dbdeb6c8b5cdde801bcb4dc56c4ca3a1f4611ed253c4626ce4b6e0a831e6141b40d196554614f6b860b73ec301",
        ),
        (
            37,
            "34d57f5f95c817a5a676be581d7d33809584d59669bd0693f8dfc09b91cd660f39908f73abb7dbbb62db15e2dc712100",
            "99d0840989207b35d04ed217fb821027f58a0f4d6070506ae373ae0b86a6a8d883c4c9ef5640f931feffc3fc31dbae00",
        ),
        (
            38,
            "6b251a48d2fc68f4855c146ca5a4c65cf99a51392678906a1a30d32afb5559b8c9b1607ce9d11a9ef123c83f8dcb6f65",
            "6b251a48d2fc68f4855c146ca5a4c65cf99a51392678906a1a30d32afb5559b8c9b1607ce9d11a9ef123c83f8dcb6f65",
        ),
        (
            39,
            "51ee9c052266ed5ac8e78703c1a6ed6b8f639a8c086698f17819fa8f22f49390b14df513b8dfc73935b66476fbe67e3b",
            "51ee9c052266ed5ac8e78703c1a6ed6b8f639a8c086698f17819fa8f22f49390b14df513b8dfc73935b66476fbe67e3b",
        ),
        (
            40,
            "40ae4e3b734f8d597a658c9a8ab0592096f14bd5bee5fcd71c94d0248e3686ed44dcb8af440f1221514d512876504978",
            "40ae4e3b734f8d597a658c9a8ab0592096f14bd5bee5fcd71c94d0248e3686ed44dcb8af440f1221514d512876504978",
        ),
        (
            41,
            "193cdd2d2b74a96c6ac660b0d6b1bfbd7308f1f0103bf8a08d3856869fe03954fa0a70071ab46bf7826ae600b37fd167",
            "193cdd2d2b74a96c6ac660b0d6b1bfbd7308f1f0103bf8a08d3856869fe03954fa0a70071ab46bf7826ae600b37fd167",
        ),
        (
            42,
            "88423f353b52b0f7d656c01952b2ddb60456f05f7eb01c9bfedb41afee7d6124b56f9bd5f5e907b78fe19560977c9217",
            "88423f353b52b0f7d656c01952b2ddb60456f05f7eb01c9bfedb41afee7d6124b56f9bd5f5e907b78fe19560977c9217",
        ),
        (
            43,
            "94112798faf65fe9d69d13f2d89387f39ea33bf2c1d9a22524d3145cf2ee73a42d39aaf0cfdbbb9556b728ea1e4f7c75",
            "94112798faf65fe9d69d13f2d89387f39ea33bf2c1d9a22524d3145cf2ee73a42d39aaf0cfdbbb9556b728ea1e4f7c75",
        ),
        (
            44,
            "05dee077a24d2d98c8bdcb8acc68fc628c7ff88e955c1322d36cf3721cc1d2c700bf5be12d32d037c090b90935a1e1c8",
            "05dee077a24d2d98c8bdcb8acc68fc628c7ff88e955c1322d36cf3721cc1d2c700bf5be12d32d037c090b90935a1e1c8",
        ),
        (
            45,
            "4eb9be7d86eda8cc609df08ba88ea1023b8dcd747d61cc69ddad87f4e8ed6fdb31e1676ca1ffb8bb8357ad33f44ff5be",
            "4eb9be7d86eda8cc609df08ba88ea1023b8dcd747d61cc69ddad87f4e8ed6fdb31e1676ca1ffb8bb8357ad33f44ff5be",
        ),
        (
            46,
            "418e8435c01e9e6fbdd3f7fd88fe83c60a8149b92632663a414d79af5bb275d7afbfcdf12cbd61e6a6f90b5ac22edc64",
            "418e8435c01e9e6fbdd3f7fd88fe83c60a8149b92632663a414d79af5bb275d7afbfcdf12cbd61e6a6f90b5ac22edc64",
        ),
        (
            47,
            "ccd49bacb7ccec2a726dee83293199cfd0c3a79946937246e55c5d00a18b464bb6d4984376bcae283bc7b501a380126f",
            "ccd49bacb7ccec2a726dee83293199cfd0c3a79946937246e55c5d00a18b464bb6d4984376bcae283bc7b501a380126f",
        ),
        (
            48,
            "b6f833d4e7bb1377a5c9e7d480cbc2b056b947ad17665f27252a9946be5a4211d53c43744fdcf04b32516d8be8dfadc3",
            "b6f833d4e7bb1377a5c9e7d480cbc2b056b947ad17665f27252a9946be5a4211d53c43744fdcf04b32516d8be8dfadc3",
        ),
        (
            49,
            "bf61d8bfe42023db1fb13c33e243ee81bd24db277842ac5df983176cfc8af4345e480a1fc93936f56ecaa66ba538953b",
            "bf61d8bfe42023db1fb13c33e243ee81bd24db277842ac5df983176cfc8af4345e480a1fc93936f56ecaa66ba538953b",
        ),
        (
            50,
            "797deb9a7735f2a2b16805d855dadfd8a0cd071ccacf15a07254d26581da9aabf9c7ed4eeb7319cfd7d579b340f3e7c6",
            "797deb9a7735f2a2b16805d855dadfd8a0cd071ccacf15a07254d26581da9aabf9c7ed4eeb7319cfd7d579b340f3e7c6",
        ),
        (
            51,
            "47ab0864e58602941f3700b6468d4c447a1d25acf5bc3f7ab85ad14caeff59931165b4b2a5910d82318620a433860647",
            "47ab0864e58602941f3700b6468d4c447a1d25acf5bc3f7ab85ad14caeff59931165b4b2a5910d82318620a433860647",
        ),
        (
            52,
            "a6fda45d326a9069630f5b45bf1f78457d02681d2bf8da6fdb3417c4e672f6b3789c986d3055b869ced06e7e2bf2433f",
            "a6fda45d326a9069630f5b45bf1f78457d02681d2bf8da6fdb3417c4e672f6b3789c986d3055b869ced06e7e2bf2433f",
        ),
        (
            53,
            "380df19b8c0803eae2a1c1a46e89155bceebab975f26fdc9be96368d4d9bc22a8bde19bdc59a77e2a1d4960399ca756e",
            "380df19b8c0803eae2a1c1a46e89155bceebab975f26fdc9be96368d4d9bc22a8bde19bdc59a77e2a1d4960399ca756e",
        ),
        (
            54,
            "270886e1ae0d45f295b83c034794080a6db99ca5f6a4bd98d4085f56585d76b468950fa07a74731026ecea40f1389ee0",
            "270886e1ae0d45f295b83c034794080a6db99ca5f6a4bd98d4085f56585d76b468950fa07a74731026ecea40f1389ee0",
        ),
        (
            55,
            "bb5c8ce27ae13d9de6d64d2a211dafefa4c151d6cc3617d8b98ecb60e57a755f24f8d10e908a7c519f7a31058eec38e1",
            "bb5c8ce27ae13d9de6d64d2a211dafefa4c151d6cc3617d8b98ecb60e57a755f24f8d10e908a7c519f7a31058eec38e1",
        ),
        (
            56,
            "813d83035ade94cbb7c73bd0e7092b4ba8ad89d9a7a4e72482b9ce2df2baac95a11d7c0eb6ec8fc60f5db0639d0299a7",
            "813d83035ade94cbb7c73bd0e7092b4ba8ad89d9a7a4e72482b9ce2df2baac95a11d7c0eb6ec8fc60f5db0639d0299a7",
        ),
        (
            57,
            "50514d4e491bbd2db1c79877e94e1a6512242379013b39a3aa51ba077eaeea8451c61867d829856fbd0a9a221688b071",
            "50514d4e491bbd2db1c79877e94e1a6512242379013b39a3aa51ba077eaeea8451c61867d829856fbd0a9a221688b071",
        ),
        (
            58,
            "a63245df425cd420b8c217dbf5a92e921a48eeedbf6adadf4e619e5b1b5eda04d61142779754a6864157bfa2717d7062",
            "9a1e6b293ad6e3e3e386d9583e2ee28a60c9ebd99562ea54277e1fc8c558170f64893c24431ec233ffbe6aecc93baf7b",
        ),
        (
            59,
            "063d6177b16f0957b0506260f83b6f14d539e4611feb607a8b7b625f502074299449112022d2398381be850bdcbcc552",
            "063d6177b16f0957b0506260f83b6f14d539e4611feb607a8b7b625f502074299449112022d2398381be850bdcbcc552",
        ),
        (
            60,
            "73935543cd439c3d251b03d8c5106cd621ddacfda06b801aa80f842a6204584eaf993fcbce44dcf4c4c0b849a0deae0b",
            "73935543cd439c3d251b03d8c5106cd621ddacfda06b801aa80f842a6204584eaf993fcbce44dcf4c4c0b849a0deae0b",
        ),
        (
            61,
            "e5cc63c1e6791b3a9898707271e93def9164a0e3ce362d4b042d88b307a7eb8244162670e4a49b25204f9bad7b8d0e2c",
            "e5cc63c1e6791b3a9898707271e93def9164a0e3ce362d4b042d88b307a7eb8244162670e4a49b25204f9bad7b8d0e2c",
        ),
        (
            62,
            "922f7cccebf68b3a2a84c56cce4b88d7d453f5258229bef6e2488fd09679ab87e027320a83b1ed4561dc0adf8c52e80e",
            "922f7cccebf68b3a2a84c56cce4b88d7d453f5258229bef6e2488fd09679ab87e027320a83b1ed4561dc0adf8c52e80e",
        ),
        (
            63,
            "e551cba23954f42f51a383c20adfbfd83a547956e15daedaac06a95b8407c487f66e9b5d9210d0406e01febb5cb419b7",
            "e551cba23954f42f51a383c20adfbfd83a547956e15daedaac06a95b8407c487f66e9b5d9210d0406e01febb5cb419b7",
        ),
        (
            64,
            "f3c506b36c423cb8cf1589de6c53543961a30fcdb6f046ec8670bbecb5fbc48374b3f638319111dae07b4213d1cec6d6",
            "f3c506b36c423cb8cf1589de6c53543961a30fcdb6f046ec8670bbecb5fbc48374b3f638319111dae07b4213d1cec6d6",
        ),
        (
            65,
            "e36e0b3ff65c4b99ddf1f077c9e2524fbbc138aa876f3198ba10d965ef6035c8d2aa4ee56d37ed187656cd4091812410",
            "e36e0b3ff65c4b99ddf1f077c9e2524fbbc138aa876f3198ba10d965ef6035c8d2aa4ee56d37ed187656cd4091812410",
        ),
        (
            66,
            "fce18f0fa33ed9cb475249f4c1a3287fff5a212aa091dd58cf2c85d5a95d6d828e056b25f342d9859c196dd2868d258d",
            "fce18f0fa33ed9cb475249f4c1a3287fff5a212aa091dd58cf2c85d5a95d6d828e056b25f342d9859c196dd2868d258d",
        ),
        (
            67,
            "eb76fe3f9760e1008362f69daf2f216ba364aea1320376c18b526cfb934e75995a71ec634486194540b7a1b1db90af14",
            "eb76fe3f9760e1008362f69daf2f216ba364aea1320376c18b526cfb934e75995a71ec634486194540b7a1b1db90af14",
        ),
        (
            68,
            "0747e9541130de49abb17f9588cd74422419e3f613f7a96a4c865b650f94d7e58f8d788c5c8decf35e5f6debba061f1f",
            "0747e9541130de49abb17f9588cd74422419e3f613f7a96a4c865b650f94d7e58f8d788c5c8decf35e5f6debba061f1f",
        ),
        (
            69,
            "23211c491da0950a0088ccc2bd1e8a63957eeb81535034dec163a1450050d7bbb6d8155dbc4fc5e548606e5c3c63aed4",
            "23211c491da0950a0088ccc2bd1e8a63957eeb81535034dec163a1450050d7bbb6d8155dbc4fc5e548606e5c3c63aed4",
        ),
        (
            70,
            "f29e5fc5b57186d07d26d4d1d0efb5b0f9b5a86ca4fb4907b27d27663beefad157757a6bb32d3ea33d12b8bf044c2d7d",
            "f29e5fc5b57186d07d26d4d1d0efb5b0f9b5a86ca4fb4907b27d27663beefad157757a6bb32d3ea33d12b8bf044c2d7d",
        ),
        (
            71,
            "84921317c53c2c6878dfa57a8749590498edd5a76a251f7c65302771f1fda2c646e7a5196b624bf54b1b7d59b7747173",
            "84921317c53c2c6878dfa57a8749590498edd5a76a251f7c65302771f1fda2c646e7a5196b624bf54b1b7d59b7747173",
        ),
        (
            72,
            "a36a0fd10e8085f923526ade44ad85e4deb07533283875325ed425d5df517771f27a0df49f7f13f8e4926978dd6dc7fa",
            "a36a0fd10e8085f923526ade44ad85e4deb07533283875325ed425d5df517771f27a0df49f7f13f8e4926978dd6dc7fa",
        ),
        (
            73,
            "9090cbd4a1caa3352b21643d8c2e1d27be3c362a3c50067a1104a9a3746bf40f770816f7b3fa5bfde64ca13765852954",
            "9090cbd4a1caa3352b21643d8c2e1d27be3c362a3c50067a1104a9a3746bf40f770816f7b3fa5bfde64ca13765852954",
        ),
        (
            74,
            "8de672bdf09adcde1d2b1fdd896b9e9e69c23ffadd253e215d506306edaa93864a74e491d8a452d77ef77af7c2e10138",
            "8de672bdf09adcde1d2b1fdd896b9e9e69c23ffadd253e215d506306edaa93864a74e491d8a452d77ef77af7c2e10138",
        ),
        (
            75,
            "565dd166316129f7500d42eaccb53c41d48d18435fded8c0b6d2a17fe804c8e77a50f44d2b7e15877153de8e7f7d9ae2",
            "565dd166316129f7500d42eaccb53c41d48d18435fded8c0b6d2a17fe804c8e77a50f44d2b7e15877153de8e7f7d9ae2",
        ),
        (
            76,
            "9c5daad3bda545dbd9720e03e91c06188b17ff05bb16cd2a8a5bf13860e84ad958cd1c2aa5ab498bfb4746915729c0ba",
            "9c5daad3bda545dbd9720e03e91c06188b17ff05bb16cd2a8a5bf13860e84ad958cd1c2aa5ab498bfb4746915729c0ba",
        ),
        (
            77,
            "b0983e70a3cf4e997d72b4040931be6afae7aa278f8b773e87889242bb179051836b899aa629f2a91c3ac36b7d23a175",
            "b0983e70a3cf4e997d72b4040931be6afae7aa278f8b773e87889242bb179051836b899aa629f2a91c3ac36b7d23a175",
        ),
        (
            78,
            "e03261e45177c1b9db53358f324e86f76325d66984aa58604d39d1b217cf2fd884262f7ee5f40df3fd0ec0781d37f62d",
            "e03261e45177c1b9db53358f324e86f76325d66984aa58604d39d1b217cf2fd884262f7ee5f40df3fd0ec0781d37f62d",
        ),
        (
            79,
            "e8be4c729bbcff8845911a2090cf29aed15dc9a466bca830f7f819a3660737fa4316e636b8da9a31a7a20e1defd96034",
            "e8be4c729bbcff8845911a2090cf29aed15dc9a466bca830f7f819a3660737fa4316e636b8da9a31a7a20e1defd96034",
        ),
        (
            80,
            "c1e097b889166cd8005556267ceff5b7594b4eef257e9bbd72362445af76e787f559dfaa00c2a5f8e3d38e5934593dd6",
            "c1e097b889166cd8005556267ceff5b7594b4eef257e9bbd72362445af76e787f559dfaa00c2a5f8e3d38e5934593dd6",
        ),
    ];

    fn checksums(backend: Backend) -> Vec<(i64, String)> {
        for_backend(backend).migrations.iter().map(|m| (m.version, hex::encode(&m.checksum))).collect()
    }

    #[test]
    fn shipped_migrations_keep_the_checksum_each_backend_recorded() {
        let (sqlite, postgres) = (checksums(Backend::Sqlite), checksums(Backend::Postgres));
        for (i, (version, sqlite_sum, postgres_sum)) in SHIPPED.iter().enumerate() {
            assert_eq!(sqlite[i], (*version, sqlite_sum.to_string()), "SQLite migration {version} changed");
            assert_eq!(postgres[i], (*version, postgres_sum.to_string()), "PostgreSQL migration {version} changed");
        }
        if let (Some((version, sum)), Some((_, postgres_sum))) =
            (sqlite.get(SHIPPED.len()), postgres.get(SHIPPED.len()))
        {
            panic!(
                "migration {version} has no pinned checksum: add ({version}, \"{sum}\", \"{postgres_sum}\") to SHIPPED"
            );
        }
    }

    #[test]
    fn the_migration_list_names_every_file_of_the_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = FILES.iter().map(|(file, _)| *file).collect();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn postgres_spelling_changes_whole_type_words_only() {
        let sql = "content BLOB NOT NULL, blob_ref TEXT, BLOBS INT, odt BLOB,";
        assert_eq!(sql_for(Backend::Postgres, sql), "content BYTEA NOT NULL, blob_ref TEXT, BLOBS INT, odt BYTEA,");
        assert_eq!(sql_for(Backend::Sqlite, sql), sql);
    }

    #[test]
    fn versions_and_descriptions_are_named_as_sqlx_names_them() {
        let m = migration("0002_identity_audit.sql", String::new());
        assert_eq!((m.version, m.description.as_ref()), (2, "identity audit"));
    }
}
