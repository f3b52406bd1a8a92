//! entctl: see ARCHITECTURE.md for what it holds and what it may use.

#[macro_use]
pub mod output;

pub mod backup;
pub mod bench;
pub mod demo;

/// This build's version: the workspace's and its git commit (`build.rs`), e.g. `0.1.0+f5cab53ef8`.
pub const VERSION: &str = env!("ENTCTL_BUILD_VERSION");

// Every module of every crate under one name, so that the tests keep their paths.
pub use ent_console as console;
pub use ent_conventions::conventions;
pub use ent_documents::documents;
pub use ent_groupements::groupements;
pub use ent_kernel::clock;
pub use ent_kernel::config;
pub use ent_kernel::error;
pub use ent_kernel::files;
pub use ent_kernel::http;
pub use ent_kernel::kernel;
pub use ent_kernel::naming;
pub use ent_kernel::release;
pub use ent_kernel::store;
pub use ent_kernel::text;
pub use ent_kernel::throttle;
pub use ent_kernel::validate;
pub use ent_kernel::yaml;
pub use ent_ops::jobs;
pub use ent_ops::notify;
pub use ent_platform::audit;
pub use ent_platform::catalog;
pub use ent_platform::contracts;
pub use ent_platform::identity;
pub use ent_platform::registry;
pub use ent_rgpd::rgpd;
pub use ent_server::api;
pub use ent_support::support;
pub use ent_tenants::provisioning;
pub use ent_tenants::tenants;
pub use ent_testkit::synthetic;

use ent_kernel::store::Store;
use ent_platform::catalog::Catalog;
use ent_tenants::provisioning::backfill::retained_services;

/// Migrates `store`, then runs the data back-fills a migration left pending because they need
/// the configuration (the catalog of `catalog_dir`), each once (`data_backfills`, migration
/// 0050): every path of entctl that migrates a store goes through here.
pub async fn migrate(store: &Store, catalog_dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    store.migrate().await?;
    let catalog = Catalog::load(catalog_dir)?;
    // A back-fill that fails (a tenant row held past its wait) is rolled back, left pending and
    // tried again by the next command that migrates: it never keeps a replica from starting.
    match retained_services(store, &catalog, chrono::Utc::now()).await {
        Ok(Some(outcome)) => {
            tracing::info!(%outcome, "retained services back-filled from the tenants' history (migration 0050)")
        }
        Ok(None) => {}
        Err(problem) => tracing::warn!(
            detail = %problem.detail,
            "the back-fill of retained services (migration 0050) failed and stays pending: the next start retries it"
        ),
    }
    Ok(())
}
