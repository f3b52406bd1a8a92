//! `/metrics` in the Prometheus text format: request counts and latencies per
//! route, plus job runs and outbox depth read from the database at scrape time.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::Row;
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

/// Per-process request metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let key = (method.to_string(), route.to_string());
        *self.requests.lock().expect("metrics lock").entry((key.0.clone(), key.1.clone(), status)).or_default() += 1;
        self.latency.lock().expect("metrics lock").entry(key).or_default().observe(seconds);
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
    let method = req.method().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.observe(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

pub async fn render(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.metrics.write(&mut out);
    out.push_str(
        "# HELP entcp_job_runs_total Recorded job runs by job and outcome.\n# TYPE entcp_job_runs_total counter\n",
    );
    if let Ok(rows) =
        sqlx::query("SELECT job, outcome, COUNT(*) AS n FROM job_runs GROUP BY job, outcome ORDER BY job, outcome")
            .fetch_all(state.store.pool())
            .await
    {
        for row in rows {
            let (job, outcome, n): (String, String, i64) = (row.get("job"), row.get("outcome"), row.get("n"));
            let _ = writeln!(out, "entcp_job_runs_total{{job=\"{job}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    out.push_str(
        "# HELP entcp_outbox_messages Messages in the mail outbox by status.\n# TYPE entcp_outbox_messages gauge\n",
    );
    if let Ok(rows) = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status")
        .fetch_all(state.store.pool())
        .await
    {
        for row in rows {
            let (status, n): (String, i64) = (row.get("status"), row.get("n"));
            let _ = writeln!(out, "entcp_outbox_messages{{status=\"{status}\"}} {n}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
