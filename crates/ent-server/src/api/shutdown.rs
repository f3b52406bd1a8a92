//! Graceful shutdown with a deadline: once `shutdown` is cancelled the server
//! accepts no new connection and in-flight requests get `drain` to finish
//! (under Kubernetes' 30 s grace period); after that they are dropped.

use super::listener::{self, Limits};
use axum::Router;
use ent_platform::registry::import_lock;
use ent_tenants::provisioning::{lease, ProvisioningState};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `router` within `limits` (`api::listener`) until `shutdown` is cancelled, then
/// drains for at most `drain`. Returns whether every in-flight request finished in time.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<bool> {
    let mut server = std::pin::pin!(listener::serve(listener, router, limits, shutdown.clone()));
    tokio::select! {
        () = &mut server => return Ok(true),
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(drain, server).await {
        Ok(()) => Ok(true),
        Err(_) => {
            tracing::warn!(deadline = ?drain, "requests still in flight at the shutdown deadline: dropped");
            Ok(false)
        }
    }
}

/// How long `serve`, once stopped, waits for what it still holds to be given back before it
/// closes the store (the rest is left to its leases).
pub const RELEASE_AT_EXIT: Duration = Duration::from_secs(5);

/// Gives back, awaited and within [`RELEASE_AT_EXIT`], what this process still holds once its
/// listener and scheduler stopped: the e-mails its sending passes had claimed (due again at
/// once), its annuaire import locks and its tenant leases. A pass or an import cut at the drain
/// deadline releases its own only in a spawned task, which a process about to exit never runs:
/// without this, another replica would wait minutes for their leases. Returns whether all was
/// given back.
pub async fn release_at_exit(provisioning: &ProvisioningState) -> bool {
    let (store, now) = (&provisioning.store, provisioning.clock.now());
    let given_back = async {
        let mails = ent_ops::notify::release_at_exit(store, now).await.map_err(|e| format!("e-mails: {e}"));
        let imports = import_lock::release_at_exit(store).await.map_err(|p| format!("import locks: {}", p.detail));
        let tenants = lease::release_at_exit(provisioning).await.map_err(|p| format!("tenant leases: {}", p.detail));
        match (mails, imports, tenants) {
            (Ok(mails), Ok(imports), Ok(tenants)) => {
                tracing::info!(mails, imports, tenants, "claims of this process released at shutdown");
                true
            }
            (mails, imports, tenants) => {
                let failed = [mails.err(), imports.err(), tenants.err()].into_iter().flatten().collect::<Vec<_>>();
                tracing::warn!(failed = %failed.join("; "), "claims not released at shutdown: left to their leases");
                false
            }
        }
    };
    tokio::time::timeout(RELEASE_AT_EXIT, given_back).await.unwrap_or_else(|_| {
        tracing::warn!(bound = ?RELEASE_AT_EXIT, "claims not all released at shutdown in time: left to their leases");
        false
    })
}
