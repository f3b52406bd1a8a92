//! What the reconciler keeps for the life of the process, shared by every pass:
//! the client-side rate limit of the API server, the count of requests sent, and
//! the work queue's entrance while `entctl serve` runs the queue (`reconcile::run_queue`).

use ent_kernel::config::ReconcileConfig;
use ent_kernel::store::{new_id, timestamp};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// An item of the work queue: one tenant (its slug), or every tenant (`None`).
pub type Work = Option<String>;

/// The reconciler's process-wide parts (one per application state).
pub struct Reconciler {
    /// Every request to the API server waits for its turn here.
    pub limiter: RateLimiter,
    /// Requests sent to the API server by this process (retries included).
    sent: AtomicU64,
    /// The work queue's entrance, while its task runs.
    queue: Mutex<Option<mpsc::UnboundedSender<Work>>>,
    /// The queue was closed at shutdown: nothing new is started in this process.
    closed: AtomicBool,
    /// Items queued and not yet taken by the queue's task.
    pub depth: AtomicUsize,
    /// This process's name in the tenant leases.
    pub holder: String,
    figures: Mutex<Figures>,
    /// Tenants (slugs) a watch event of one of their Deployments made due for a resync.
    resync: Mutex<std::collections::BTreeSet<String>>,
    /// The leases (their keys) a task of this process writes under now, with how many tasks:
    /// the shutdown's release leaves them to their writer ([`Reconciler::writing`]).
    writing: Mutex<std::collections::BTreeMap<String, usize>>,
    /// The render version this process renders with (`platform::RENDER_VERSION`).
    pub render_version: i64,
    /// When this process started (UTC timestamp): of two replicas rendering one version
    /// against different cluster configurations, the later started one's render stands.
    pub started_at: String,
}

/// A task of this process writing under a lease ([`Reconciler::writing`]).
pub struct Writing<'a> {
    reconciler: &'a Reconciler,
    key: String,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut writing = self.reconciler.writing.lock().expect("writing lock");
        if let Some(tasks) = writing.get_mut(&self.key) {
            *tasks -= 1;
            if *tasks == 0 {
                writing.remove(&self.key);
            }
        }
    }
}

/// What this process's reconciles did, for `/metrics`.
#[derive(Default)]
struct Figures {
    /// Last reconcile of each tenant: seconds taken.
    tenant_seconds: std::collections::BTreeMap<String, f64>,
    /// Failures by cause (`api_409`, `timeout`, `transport`, `deadline`, …).
    errors: std::collections::BTreeMap<String, u64>,
    /// Tenants failing now, since their first failure in a row (Unix seconds).
    failing_since: std::collections::BTreeMap<String, i64>,
    /// Last pass: seconds taken and requests sent.
    pass_seconds: f64,
    pass_requests: u64,
}

impl Reconciler {
    pub fn new(config: &ReconcileConfig) -> Reconciler {
        Reconciler {
            limiter: RateLimiter::new(config.requests_per_second),
            sent: AtomicU64::new(0),
            queue: Mutex::new(None),
            closed: AtomicBool::new(false),
            depth: AtomicUsize::new(0),
            holder: new_id(),
            figures: Mutex::new(Figures::default()),
            resync: Mutex::new(std::collections::BTreeSet::new()),
            writing: Mutex::new(std::collections::BTreeMap::new()),
            render_version: super::platform::RENDER_VERSION,
            started_at: timestamp(chrono::Utc::now()),
        }
    }

    /// This reconciler as a replica of another release would be (tests: a rolling upgrade
    /// played by two states on one database): its render version and start time.
    pub fn with_render(mut self, render_version: i64, started_at: chrono::DateTime<chrono::Utc>) -> Reconciler {
        self.render_version = render_version;
        self.started_at = timestamp(started_at);
        self
    }

    /// A watch event showed a change of the tenant's workloads (a failed rollout, a
    /// `kubectl scale`): its next reconcile applies it again and reads it back, without
    /// waiting for the resync period.
    pub fn request_resync(&self, slug: &str) {
        self.resync.lock().expect("resync lock").insert(slug.to_string());
    }

    /// Whether the tenant was made due for a resync by a watch event (the request is consumed).
    pub fn take_resync(&self, slug: &str) -> bool {
        self.resync.lock().expect("resync lock").remove(slug)
    }

    /// Marks the lease `key` as written under by a task of this process until the guard is
    /// dropped (its write done, or cut short with its task).
    pub fn writing(&self, key: &str) -> Writing<'_> {
        *self.writing.lock().expect("writing lock").entry(key.to_string()).or_default() += 1;
        Writing { reconciler: self, key: key.to_string() }
    }

    /// Whether a task of this process writes under the lease `key` now.
    pub fn is_writing(&self, key: &str) -> bool {
        self.writing.lock().expect("writing lock").contains_key(key)
    }

    /// Opens the work queue; its task takes the items from the returned receiver.
    pub fn open_queue(&self) -> mpsc::UnboundedReceiver<Work> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.queue.lock().expect("queue lock") = Some(sender);
        receiver
    }

    /// Closes the work queue at shutdown: a change made afterwards (by a request that
    /// was in flight) is left to the next pass, on a replica that keeps running or at
    /// restart, rather than to a task that could take a tenant's lease as the process ends.
    pub fn close_queue(&self) {
        self.closed.store(true, Ordering::SeqCst);
        *self.queue.lock().expect("queue lock") = None;
    }

    /// Whether the queue was closed at shutdown.
    pub fn shutting_down(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Whether a work queue runs in this process (`entctl serve`).
    pub fn queue_open(&self) -> bool {
        self.queue.lock().expect("queue lock").is_some()
    }

    /// Queues `work` for the queue's task; false when no queue runs in this process.
    pub fn enqueue(&self, work: Work) -> bool {
        let queue = self.queue.lock().expect("queue lock");
        let Some(sender) = queue.as_ref() else { return false };
        // Counted before it is sent: the queue's task may take it (and count it out) at once.
        self.depth.fetch_add(1, Ordering::Relaxed);
        let sent = sender.send(work).is_ok();
        if !sent {
            self.depth.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }

    /// Counts one request sent.
    pub fn count_request(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A failure of the whole pass, before any tenant (the backend could not be built:
    /// cause `config`), counted like a tenant's.
    pub fn pass_failed(&self, cause: &str) {
        *self.figures.lock().expect("figures lock").errors.entry(cause.to_string()).or_default() += 1;
    }

    /// A tenant's reconcile took `seconds`; `failure` names its cause when it failed.
    pub fn tenant_done(&self, slug: &str, seconds: f64, failure: Option<&str>, at: i64) {
        let mut figures = self.figures.lock().expect("figures lock");
        figures.tenant_seconds.insert(slug.to_string(), seconds);
        match failure {
            Some(cause) => {
                *figures.errors.entry(cause.to_string()).or_default() += 1;
                figures.failing_since.entry(slug.to_string()).or_insert(at);
            }
            None => drop(figures.failing_since.remove(slug)),
        }
    }

    /// What a pass read of the tenants, `(slug, in error)` each: one without an error
    /// (another replica applied it, or its error was cleared) no longer fails here either;
    /// after a full pass (`every`), neither does one it did not read (deleted).
    pub fn tenants_read<'a>(&self, read: impl IntoIterator<Item = (&'a str, bool)>, every: bool) {
        let read: std::collections::BTreeMap<&str, bool> = read.into_iter().collect();
        let mut figures = self.figures.lock().expect("figures lock");
        figures.failing_since.retain(|slug, _| read.get(slug.as_str()).copied().unwrap_or(!every));
    }

    /// A pass took `seconds` and sent `requests`.
    pub fn pass_done(&self, seconds: f64, requests: u64) {
        let mut figures = self.figures.lock().expect("figures lock");
        figures.pass_seconds = seconds;
        figures.pass_requests = requests;
    }

    /// The reconciler's figures in the Prometheus text format.
    pub fn write_metrics(&self, out: &mut String, now: i64) {
        use std::fmt::Write;
        let figures = self.figures.lock().expect("figures lock");
        let _ = writeln!(out, "# TYPE entcp_reconcile_tenant_duration_seconds gauge");
        for (tenant, seconds) in &figures.tenant_seconds {
            let _ = writeln!(out, "entcp_reconcile_tenant_duration_seconds{{tenant=\"{tenant}\"}} {seconds}");
        }
        let _ = writeln!(out, "# TYPE entcp_reconcile_errors_total counter");
        for (cause, n) in &figures.errors {
            let _ = writeln!(out, "entcp_reconcile_errors_total{{cause=\"{cause}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE entcp_reconcile_oldest_failure_seconds gauge");
        if let Some((tenant, since)) = figures.failing_since.iter().min_by_key(|(_, since)| **since) {
            let _ = writeln!(out, "entcp_reconcile_oldest_failure_seconds{{tenant=\"{tenant}\"}} {}", now - since);
        }
        let _ = writeln!(out, "# TYPE entcp_reconcile_pass_duration_seconds gauge");
        let _ = writeln!(out, "entcp_reconcile_pass_duration_seconds {}", figures.pass_seconds);
        let _ = writeln!(out, "# TYPE entcp_reconcile_pass_requests gauge");
        let _ = writeln!(out, "entcp_reconcile_pass_requests {}", figures.pass_requests);
        let _ = writeln!(out, "# TYPE entcp_reconcile_queue_depth gauge");
        let _ = writeln!(out, "entcp_reconcile_queue_depth {}", self.depth.load(Ordering::Relaxed));
        let _ = writeln!(out, "# TYPE entcp_kube_requests_total counter");
        let _ = writeln!(out, "entcp_kube_requests_total {}", self.requests_sent());
    }

    /// Requests sent to the API server so far by this process.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// A client-side rate limit: `per_second` requests a second on average, with a
/// burst of as many (a generic cell rate: each request books the next slot).
pub struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> RateLimiter {
        let interval = Duration::from_secs_f64(1.0 / per_second.max(0.001));
        let burst = per_second.ceil().max(1.0) as u32;
        RateLimiter { interval, tolerance: interval * (burst - 1), next: Mutex::new(None) }
    }

    /// How long the caller must wait before sending, its slot booked.
    fn book(&self, now: Instant) -> Duration {
        let mut next = self.next.lock().expect("rate limiter lock");
        let slot = next.map_or(now, |at| at.max(now));
        *next = Some(slot + self.interval);
        slot.saturating_duration_since(now + self.tolerance)
    }

    /// Waits for this request's turn.
    pub async fn acquire(&self) {
        let wait = self.book(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_requests_are_spaced() {
        let limiter = RateLimiter::new(4.0);
        let now = Instant::now();
        let waits: Vec<Duration> = (0..8).map(|_| limiter.book(now)).collect();
        assert!(waits[..4].iter().all(|w| w.is_zero()), "{waits:?}");
        assert_eq!(waits[4], Duration::from_millis(250));
        assert_eq!(waits[7], Duration::from_millis(1000));
        // After a quiet second, the burst is available again.
        let later = now + Duration::from_secs(3);
        assert!(limiter.book(later).is_zero());
    }
}
