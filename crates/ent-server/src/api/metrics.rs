//! `/metrics` in the Prometheus text format, served from memory only (a scrape
//! never waits on the database): request counts and latencies per route, this
//! process's job runs, skipped ticks and abandoned runs, the pool, and gauges
//! read from the database by a background task (`refresh_gauges`).

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ent_kernel::store::timestamp;
use ent_ops::notify::DELIVERY_FAILURES;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Per-process metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    jobs: Mutex<JobStats>,
    gauges: Mutex<Option<DbGauges>>,
}

/// What this process's scheduler did (not the cluster's: each replica its own).
#[derive(Default)]
struct JobStats {
    runs: BTreeMap<(String, String), u64>,
    last_success: BTreeMap<String, i64>,
    last_duration: BTreeMap<String, f64>,
    skipped: BTreeMap<(String, String), u64>,
    abandoned: BTreeMap<String, u64>,
    abandon_failures: BTreeMap<String, u64>,
}

/// Figures read from the database by the background refresher.
#[derive(Default, Clone)]
struct DbGauges {
    outbox: Vec<(String, i64)>,
    oldest_pending_mail_seconds: f64,
    oldest_undelivered_mail_seconds: f64,
    tenants_in_error: i64,
    /// The last migration applied to the database (another release's during an upgrade).
    schema_applied: i64,
    refreshed_at: i64,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let key = (method.to_string(), route.to_string());
        *self.requests.lock().expect("metrics lock").entry((key.0.clone(), key.1.clone(), status)).or_default() += 1;
        self.latency.lock().expect("metrics lock").entry(key).or_default().observe(seconds);
    }

    /// A run of `job` ended with `outcome` after `seconds`.
    pub fn job_finished(&self, job: &str, outcome: &str, at: chrono::DateTime<chrono::Utc>, seconds: f64) {
        let mut jobs = self.jobs.lock().expect("metrics lock");
        *jobs.runs.entry((job.into(), outcome.into())).or_default() += 1;
        jobs.last_duration.insert(job.into(), seconds);
        if outcome == "success" {
            jobs.last_success.insert(job.into(), at.timestamp());
        }
    }

    /// `n` ticks of `job` did not run here (`overlap`: the previous run was still going; `missed`).
    pub fn ticks_skipped(&self, job: &str, reason: &str, n: u64) {
        *self.jobs.lock().expect("metrics lock").skipped.entry((job.into(), reason.into())).or_default() += n;
    }

    /// This process found a run of `job` whose runner had died.
    pub fn run_abandoned(&self, job: &str) {
        *self.jobs.lock().expect("metrics lock").abandoned.entry(job.into()).or_default() += 1;
    }

    /// This process could not mark a dead run of `job` abandoned (with its retry): left
    /// `running` for its next pass.
    pub fn abandon_failed(&self, job: &str) {
        *self.jobs.lock().expect("metrics lock").abandon_failures.entry(job.into()).or_default() += 1;
    }

    fn write_jobs(&self, out: &mut String) {
        let jobs = self.jobs.lock().expect("metrics lock");
        let runs_help = "Job runs ended in this process, by job and outcome.";
        per_job_and(out, "entcp_job_runs_total", "counter", runs_help, "outcome", &jobs.runs);
        let success_help = "End of the job's latest successful run here.";
        per_job(out, "entcp_job_last_success_timestamp_seconds", "gauge", success_help, &jobs.last_success);
        let duration_help = "Duration of the job's latest run here.";
        per_job(out, "entcp_job_last_duration_seconds", "gauge", duration_help, &jobs.last_duration);
        let skipped_help = "Ticks not run here: overlap (previous run still going) or missed.";
        per_job_and(out, "entcp_job_ticks_skipped_total", "counter", skipped_help, "reason", &jobs.skipped);
        let abandoned_help = "Runs of dead runners this process marked abandoned.";
        per_job(out, "entcp_job_runs_abandoned_total", "counter", abandoned_help, &jobs.abandoned);
        let abandon_failures_help =
            "Dead runs this process failed to mark abandoned with their retry (tried again next pass).";
        per_job(out, "entcp_job_abandon_failures_total", "counter", abandon_failures_help, &jobs.abandon_failures);
        header(out, "entcp_outbox_delivery_failures_total", "counter", "E-mail delivery attempts that failed here.");
        let failures = DELIVERY_FAILURES.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(out, "entcp_outbox_delivery_failures_total {failures}");
    }

    fn write_gauges(&self, out: &mut String) {
        header(out, "entcp_outbox_messages", "gauge", "Messages in the mail outbox by status.");
        // Before the first refresh the families are declared, without samples.
        let Some(gauges) = self.gauges.lock().expect("metrics lock").clone() else { return };
        for (status, n) in &gauges.outbox {
            let _ = writeln!(out, "entcp_outbox_messages{{status=\"{status}\"}} {n}");
        }
        header(
            out,
            "entcp_outbox_oldest_pending_age_seconds",
            "gauge",
            "Seconds since the oldest due message not sent yet came due.",
        );
        let _ = writeln!(out, "entcp_outbox_oldest_pending_age_seconds {}", gauges.oldest_pending_mail_seconds);
        header(
            out,
            "entcp_outbox_oldest_undelivered_age_seconds",
            "gauge",
            "Seconds since the oldest message not sent yet that is due or failed an attempt was created.",
        );
        let _ = writeln!(out, "entcp_outbox_oldest_undelivered_age_seconds {}", gauges.oldest_undelivered_mail_seconds);
        header(out, "entcp_tenants_in_error", "gauge", "Tenants whose last reconcile failed.");
        let _ = writeln!(out, "entcp_tenants_in_error {}", gauges.tenants_in_error);
        header(out, "entcp_db_schema_applied", "gauge", "The last migration applied to the database.");
        let _ = writeln!(out, "entcp_db_schema_applied {}", gauges.schema_applied);
        header(out, "entcp_db_gauges_refreshed_timestamp_seconds", "gauge", "When the database gauges were read.");
        let _ = writeln!(out, "entcp_db_gauges_refreshed_timestamp_seconds {}", gauges.refreshed_at);
    }

    fn write(&self, out: &mut String) {
        out.push_str("# HELP entcp_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE entcp_http_requests_total counter\n");
        for ((method, route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "entcp_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP entcp_http_request_duration_seconds HTTP request latency by method and route.\n");
        out.push_str("# TYPE entcp_http_request_duration_seconds histogram\n");
        for ((method, route), h) in self.latency.lock().expect("metrics lock").iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "entcp_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "entcp_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "entcp_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "entcp_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
    }
}

/// Middleware: times every request under its route template (not its raw path).
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.observe(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// The method as a label: a standard one by name, any other under `other` (hyper accepts
/// any token as a method, and each new label would be kept and printed forever).
fn method_label(method: &axum::http::Method) -> String {
    use axum::http::Method;
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if KNOWN.contains(method) { method.as_str() } else { "other" }.to_string()
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The series `name`, one sample per job: `name{job="…"} value`.
fn per_job(out: &mut String, name: &str, kind: &str, help: &str, values: &BTreeMap<String, impl std::fmt::Display>) {
    header(out, name, kind, help);
    for (job, value) in values {
        let _ = writeln!(out, "{name}{{job=\"{job}\"}} {value}");
    }
}

/// The series `name`, one sample per job and value of its other `label`.
fn per_job_and(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<(String, String), u64>,
) {
    header(out, name, kind, help);
    for ((job, other), n) in values {
        let _ = writeln!(out, "{name}{{job=\"{job}\",{label}=\"{other}\"}} {n}");
    }
}

/// The pool as the process sees it, and what the binary is.
fn write_process(state: &AppState, out: &mut String) {
    let (in_use, idle, max) = state.store.pool_status();
    header(out, "entcp_db_pool_connections", "gauge", "Database pool connections by state.");
    let _ = writeln!(out, "entcp_db_pool_connections{{state=\"in_use\"}} {in_use}");
    let _ = writeln!(out, "entcp_db_pool_connections{{state=\"idle\"}} {idle}");
    let _ = writeln!(out, "entcp_db_pool_connections{{state=\"max\"}} {max}");
    let cache = state.store.cache_counts();
    header(out, "entcp_read_cache_total", "counter", "Cached reads served (hit) or read from the database (miss).");
    let _ = writeln!(out, "entcp_read_cache_total{{result=\"hit\"}} {}", cache.hits);
    let _ = writeln!(out, "entcp_read_cache_total{{result=\"miss\"}} {}", cache.misses);
    write_listener(out);
    header(out, "entcp_build_info", "gauge", "The running build: its version (and git commit), the schema it knows.");
    let _ = writeln!(
        out,
        "entcp_build_info{{version=\"{}\",schema=\"{}\",backend=\"{}\"}} 1",
        ent_kernel::release::version(),
        ent_kernel::release::schema_version(),
        state.store.backend().name()
    );
}

/// The listener's connections (`api::listener`).
fn write_listener(out: &mut String) {
    use super::listener::{ACCEPT_FAILURES, OPEN, REFUSED};
    use std::sync::atomic::Ordering::Relaxed;
    header(out, "entcp_http_connections_open", "gauge", "HTTP connections open on this process's listener.");
    let _ = writeln!(out, "entcp_http_connections_open {}", OPEN.load(Relaxed));
    let refused_help = "Connections closed as soon as accepted: the listener was at server.max_connections.";
    header(out, "entcp_http_connections_refused_total", "counter", refused_help);
    let _ = writeln!(out, "entcp_http_connections_refused_total {}", REFUSED.load(Relaxed));
    let failed_help = "Accepts that failed (out of file descriptors, most often); the listener backed off.";
    header(out, "entcp_http_accept_failures_total", "counter", failed_help);
    let _ = writeln!(out, "entcp_http_accept_failures_total {}", ACCEPT_FAILURES.load(Relaxed));
}

/// The whole `/metrics` text, from memory only.
pub fn text(state: &AppState) -> String {
    let mut out = String::new();
    state.metrics.write(&mut out);
    state.metrics.write_jobs(&mut out);
    state.metrics.write_gauges(&mut out);
    state.reconciler.write_metrics(&mut out, state.clock.now().timestamp());
    write_process(state, &mut out);
    out
}

pub async fn render(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text(&state)).into_response()
}

/// How long a refresh of the database gauges may take.
pub const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the database gauges (at most `REFRESH_TIMEOUT`) and keeps them for `/metrics`.
pub async fn refresh_gauges(state: &AppState) -> anyhow::Result<()> {
    let read = tokio::time::timeout(REFRESH_TIMEOUT, read_gauges(state)).await;
    let gauges = read.map_err(|_| anyhow::anyhow!("database gauges not read within {REFRESH_TIMEOUT:?}"))??;
    *state.metrics.gauges.lock().expect("metrics lock") = Some(gauges);
    Ok(())
}

async fn read_gauges(state: &AppState) -> sqlx::Result<DbGauges> {
    let pool = state.store.pool();
    let now = state.clock.now();
    let outbox = sqlx::query_as("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status")
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
    // Due messages only: a reminder deferred to the next working hour, a retry waiting its
    // backoff are not late. Their age counts from when they came due (a retry: its attempt).
    let oldest: Option<String> = sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) AS at FROM outbox WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1",
    )
    .bind(timestamp(now))
    .fetch_one(pool)
    .await?;
    let oldest_pending_mail_seconds = seconds_since(oldest, now);
    // From its creation: a retry's backoff does not make a failing message young again
    // (a deferred reminder that never failed is not late).
    let undelivered: Option<String> = sqlx::query_scalar(
        "SELECT MIN(created_at) AS at FROM outbox WHERE status IN ('pending', 'sending') \
         AND (next_attempt_at <= $1 OR attempts > 0)",
    )
    .bind(timestamp(now))
    .fetch_one(pool)
    .await?;
    let oldest_undelivered_mail_seconds = seconds_since(undelivered, now);
    let tenants_in_error = sqlx::query_scalar("SELECT COUNT(*) AS n FROM tenants WHERE reconcile_error IS NOT NULL")
        .fetch_one(pool)
        .await?;
    let schema_applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(pool).await?;
    Ok(DbGauges {
        outbox,
        oldest_pending_mail_seconds,
        oldest_undelivered_mail_seconds,
        tenants_in_error,
        schema_applied: schema_applied.unwrap_or(0),
        refreshed_at: now.timestamp(),
    })
}

/// Seconds from the store timestamp `at` to `now` (0 without one, or for one ahead).
fn seconds_since(at: Option<String>, now: chrono::DateTime<chrono::Utc>) -> f64 {
    at.and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .map_or(0.0, |at| (now - at.with_timezone(&chrono::Utc)).num_milliseconds().max(0) as f64 / 1000.0)
}

/// Refreshes the database gauges every `every` until `stop` is cancelled.
pub async fn refresh_until(state: AppState, every: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
    loop {
        if let Err(e) = refresh_gauges(&state).await {
            tracing::warn!(error = %format!("{e:#}"), "metrics gauges not refreshed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}
