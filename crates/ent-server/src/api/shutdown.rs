//! Graceful shutdown with a deadline: once `shutdown` is cancelled the server
//! accepts no new connection and in-flight requests get `drain` to finish
//! (under Kubernetes' 30 s grace period); after that they are dropped.

use axum::Router;
use std::future::IntoFuture;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `router` until `shutdown` is cancelled, then drains for at most
/// `drain`. Returns whether every in-flight request finished in time.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<bool> {
    // The peer address reaches the authentication throttle (see `server.trust_forwarded_for`).
    let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result.map(|()| true),
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result.map(|()| true),
        Err(_) => {
            tracing::warn!(deadline = ?drain, "requests still in flight at the shutdown deadline: dropped");
            Ok(false)
        }
    }
}
