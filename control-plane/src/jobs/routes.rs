//! HTTP routes of the jobs.

use super::{JobRun, ScheduledJob};
use crate::api::{ApiRoute, AppState};
use crate::error::Problem;
use crate::store::timestamp;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

/// Runs shown with each job.
const RECENT_RUNS: u32 = 5;

pub fn routes() -> Vec<ApiRoute<AppState>> {
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/v1/jobs",
            "tâches",
            "Lister les tâches planifiées, leur planification et leurs dernières exécutions",
            &crate::identity::authz::JOBS_READ,
            get(list),
        )
        .responds::<Vec<JobView>>(StatusCode::OK),
        ApiRoute::new(
            Method::POST,
            "/api/v1/jobs/{name}/run",
            "tâches",
            "Exécuter une tâche immédiatement",
            &crate::identity::authz::JOBS_RUN,
            post(run),
        )
        .responds::<JobRun>(StatusCode::OK),
    ]
}

/// A job, its configuration and its latest runs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobView {
    pub name: String,
    pub description: String,
    /// Cron expression in force, read in `timezone`.
    pub schedule: String,
    pub timezone: String,
    pub enabled: bool,
    /// Next scheduled run (UTC); absent when the job is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// Newest first.
    pub last_runs: Vec<JobRun>,
}

/// Every job with its schedule and latest runs, as of `now`.
pub async fn list_jobs(state: &AppState, now: DateTime<Utc>) -> Result<Vec<JobView>, Problem> {
    let timezone = super::parse_timezone(&state.config.jobs.timezone)?;
    let mut views = Vec::new();
    for scheduled in super::scheduled_jobs(&state.config)? {
        let next_run =
            scheduled.enabled.then(|| super::next_tick(&scheduled.schedule, timezone, now)).flatten().map(timestamp);
        let last_runs = super::recent_runs(&state.store, scheduled.job.name, RECENT_RUNS).await?;
        views.push(view(&scheduled, &state.config.jobs.timezone, next_run, last_runs));
    }
    Ok(views)
}

fn view(scheduled: &ScheduledJob, timezone: &str, next_run: Option<String>, last_runs: Vec<JobRun>) -> JobView {
    JobView {
        name: scheduled.job.name.into(),
        description: scheduled.job.description.into(),
        schedule: scheduled.expression.clone(),
        timezone: timezone.into(),
        enabled: scheduled.enabled,
        next_run,
        last_runs,
    }
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<JobView>>, Problem> {
    let now = state.clock.now();
    Ok(Json(list_jobs(&state, now).await?))
}

async fn run(
    State(state): State<AppState>,
    caller: crate::identity::Caller,
    Path(name): Path<String>,
) -> Result<Json<JobRun>, Problem> {
    let job = super::find(&name).ok_or_else(|| Problem::not_found(format!("aucune tâche ne s'appelle « {name} »")))?;
    let run = super::run_now(&state, &caller.actor, &job, &super::runner_id(), state.clock.now()).await?;
    Ok(Json(run))
}
