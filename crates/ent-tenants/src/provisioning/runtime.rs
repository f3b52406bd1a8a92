//! What the reconciler keeps for the life of the process, shared by every pass:
//! the client-side rate limit of the API server, the count of requests sent, and
//! the work queue's entrance while `entctl serve` runs the queue (`reconcile::run_queue`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Items queued and not yet taken by the queue's task.
    pub depth: AtomicUsize,
    /// This process's name in the tenant leases.
    pub holder: String,
}

impl Reconciler {
    pub fn new(config: &ent_kernel::config::ReconcileConfig) -> Reconciler {
        Reconciler {
            limiter: RateLimiter::new(config.requests_per_second),
            sent: AtomicU64::new(0),
            queue: Mutex::new(None),
            depth: AtomicUsize::new(0),
            holder: ent_kernel::store::new_id(),
        }
    }

    /// Opens the work queue; its task takes the items from the returned receiver.
    pub fn open_queue(&self) -> mpsc::UnboundedReceiver<Work> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.queue.lock().expect("queue lock") = Some(sender);
        receiver
    }

    /// Closes the work queue: reconciles are run in place again.
    pub fn close_queue(&self) {
        *self.queue.lock().expect("queue lock") = None;
    }

    /// Queues `work` for the queue's task; false when no queue runs in this process.
    pub fn enqueue(&self, work: Work) -> bool {
        let queue = self.queue.lock().expect("queue lock");
        let Some(sender) = queue.as_ref() else { return false };
        let sent = sender.send(work).is_ok();
        if sent {
            self.depth.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Counts one request sent.
    pub fn count_request(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
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
