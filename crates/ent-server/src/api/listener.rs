//! The HTTP listener and its limits (`server.header_read_timeout_seconds`,
//! `server.idle_timeout_seconds`, `server.max_connections`). A client must send its request
//! headers in time; a connection on which nothing passes while none of its requests is being
//! handled is closed; at most `max_connections` are open at once, and a connection past that is
//! closed as soon as it is accepted. Without these, clients that open sockets and send nothing
//! held one file descriptor each for ever: about a thousand took the process's descriptors, and
//! with them `/healthz`, the API, the console and the reconciler's files. A failed `accept` (out
//! of descriptors) backs off instead of spinning. Both are logged at most every [`WARN_EVERY`],
//! without any address, and counted for `/metrics`.

use axum::extract::ConnectInfo;
use axum::Router;
use ent_kernel::config::ServerConfig;
use ent_kernel::text::without_addresses;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How often, at most, a connection refused at the limit or a failed `accept` is logged.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// How long the listener waits after a failed `accept` (out of file descriptors) before the
/// next one, instead of failing again at once in a loop.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

/// File descriptors the process needs besides its connections: the database pool, the files
/// it writes (manifests, documents, e-mails), the listener. Under `max_connections` plus these,
/// the start warns that the limit on open files is too low.
pub const FILES_BESIDES_CONNECTIONS: u64 = 128;

/// HTTP connections open on this process's listeners (`entcp_http_connections_open`).
pub static OPEN: AtomicI64 = AtomicI64::new(0);

/// Connections closed as soon as accepted, the listener being at `server.max_connections`.
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

/// `accept` calls that failed (out of file descriptors, most often).
pub static ACCEPT_FAILURES: AtomicU64 = AtomicU64::new(0);

/// The listener's limits, from `server.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
}

impl Limits {
    pub fn of(server: &ServerConfig) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(server.idle_timeout_seconds),
            max_connections: server.max_connections,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::of(&ServerConfig::default())
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled; then stops accepting, lets each
/// open connection finish the request it is handling (an idle one closes at once) and returns
/// once every connection is closed (the caller bounds that wait: `shutdown::serve_until`).
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, shutdown: CancellationToken) {
    check_file_limit(raise_file_limit(), limits.max_connections);
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let (mut refused, mut failed) = (Warnings::default(), Warnings::default());
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(&e, &mut failed, &shutdown).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            REFUSED.fetch_add(1, Ordering::Relaxed);
            if let Some(unlogged) = refused.due() {
                let max_connections = limits.max_connections;
                tracing::warn!(max_connections, unlogged, "connection closed at once: server.max_connections reached");
            }
            continue;
        };
        let connection = Connection {
            http: http.clone(),
            router: router.clone(),
            idle: limits.idle_timeout,
            shutdown: shutdown.clone(),
        };
        tokio::spawn(connection.serve(stream, peer, slot));
    }
    drop(listener);
    // Each connection holds its slot until it closes: all the slots back, all are closed.
    let _all_closed = slots.acquire_many(limits.max_connections).await;
}

/// After a failed `accept`: nothing for an error of that one connection (the client gave up);
/// otherwise (out of file descriptors, of memory) a warning at most every [`WARN_EVERY`] and
/// a pause of [`ACCEPT_BACKOFF`], cut short by the shutdown.
async fn accept_failed(error: &io::Error, warnings: &mut Warnings, shutdown: &CancellationToken) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    ACCEPT_FAILURES.fetch_add(1, Ordering::Relaxed);
    if let Some(unlogged) = warnings.due() {
        let error = without_addresses(&error.to_string());
        tracing::warn!(%error, unlogged, backoff = ?ACCEPT_BACKOFF, "accept failed: listener backing off");
    }
    tokio::select! {
        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
        () = shutdown.cancelled() => {}
    }
}

/// A warning given at most every [`WARN_EVERY`], saying how many went unlogged meanwhile.
#[derive(Default)]
struct Warnings {
    last: Option<Instant>,
    unlogged: u64,
}

impl Warnings {
    /// `Some(events unlogged since the last line)` when a line is due now.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < WARN_EVERY) {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Raises this process's soft limit on open files to its hard limit (a shell or systemd leaves
/// 1 024): connections, the database pool and the files written all draw from it. Returns the
/// soft limit in force (`None`: unlimited).
pub fn raise_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), Some(maximum)) = (limit.current, limit.maximum) else {
        return limit.current;
    };
    if current >= maximum {
        return Some(current);
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(maximum), maximum: Some(maximum) }) {
        Ok(()) => {
            tracing::info!(from = current, to = maximum, "limit on open files raised to its hard limit");
            Some(maximum)
        }
        Err(e) => {
            tracing::warn!(error = %e, limit = current, "limit on open files not raised");
            Some(current)
        }
    }
}

/// Warns when `limit` (open files) leaves too few descriptors for `max_connections`
/// connections and the rest of the process.
fn check_file_limit(limit: Option<u64>, max_connections: u32) {
    let needed = u64::from(max_connections) + FILES_BESIDES_CONNECTIONS;
    if let Some(limit) = limit.filter(|limit| *limit < needed) {
        tracing::warn!(
            limit,
            max_connections,
            "limit on open files under server.max_connections + {FILES_BESIDES_CONNECTIONS}: lower server.max_connections or raise the limit (ulimit -n, LimitNOFILE)"
        );
    }
}

/// What a connection's task needs.
struct Connection {
    http: http1::Builder,
    router: Router,
    idle: Duration,
    shutdown: CancellationToken,
}

impl Connection {
    /// Serves the connection until the client closes it, hyper closes it (headers not read in
    /// time, an error), it stays idle for `idle`, or the shutdown lets it finish; then gives
    /// its slot back.
    async fn serve<T>(self, io: T, peer: SocketAddr, slot: OwnedSemaphorePermit)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _open = Open::new();
        let activity = Arc::new(Activity::new());
        let (router, handlers) = (self.router, Arc::clone(&activity));
        let service = hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            // The peer address reaches the authentication throttle (see `server.trust_forwarded_for`).
            request.extensions_mut().insert(ConnectInfo(peer));
            let handling = Handling::new(&handlers);
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(handling);
                response
            }
        });
        let watched = TokioIo::new(Watched { io, activity: Arc::clone(&activity) });
        let mut connection = pin!(self.http.serve_connection(watched, service));
        let mut idle = pin!(activity.idle_for(self.idle));
        let mut stopping = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    break;
                }
                () = self.shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = &mut idle => {
                    tracing::debug!("connection closed: idle past server.idle_timeout_seconds");
                    break;
                }
            }
        }
        drop(slot);
    }
}

/// Counts a connection in [`OPEN`] while it lives.
struct Open;

impl Open {
    fn new() -> Open {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What passes on one connection: when a byte last went either way, and how many of its
/// requests handlers are working on (a long import sends nothing for minutes, and is not idle).
struct Activity {
    started: Instant,
    last_millis: AtomicU64,
    handling: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { started: Instant::now(), last_millis: AtomicU64::new(0), handling: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::SeqCst);
    }

    /// Since when nothing passed.
    fn quiet_for(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(self.last_millis.load(Ordering::SeqCst)))
    }

    /// Ends once nothing passed for `idle` while no request was being handled.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let quiet = self.quiet_for();
            let wait = if self.handling.load(Ordering::SeqCst) > 0 {
                // A request at work: look again a full period later (its end counts as activity).
                idle
            } else if quiet >= idle {
                return;
            } else {
                idle - quiet
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request being handled on a connection; its end counts as activity.
struct Handling(Arc<Activity>);

impl Handling {
    fn new(activity: &Arc<Activity>) -> Handling {
        activity.handling.fetch_add(1, Ordering::SeqCst);
        Handling(Arc::clone(activity))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connection's socket, every byte read or written noted in its [`Activity`].
struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> Watched<T> {
    /// `polled`, noting the bytes it wrote.
    fn wrote(&self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_due_once_per_period_and_counts_the_events_it_did_not_log() {
        let mut warnings = Warnings::default();
        assert_eq!(warnings.due(), Some(0));
        assert_eq!(warnings.due(), None);
        assert_eq!(warnings.due(), None);
        warnings.last = warnings.last.and_then(|last| last.checked_sub(WARN_EVERY));
        assert_eq!(warnings.due(), Some(2), "the two events unlogged meanwhile");
        assert_eq!(warnings.due(), None);
    }

    #[test]
    fn the_limits_are_the_server_settings() {
        let server = ServerConfig {
            header_read_timeout_seconds: 1,
            idle_timeout_seconds: 2,
            max_connections: 3,
            ..ServerConfig::default()
        };
        let limits = Limits::of(&server);
        assert_eq!(
            limits,
            Limits {
                header_read_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(2),
                max_connections: 3
            }
        );
        assert_eq!(Limits::default().max_connections, 512);
    }
}
