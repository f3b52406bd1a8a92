//! HTTP routes of the jobs.

use super::AppState;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::route_table;
use ent_ops::jobs::{runner_id, views, JobRun, JobView};
use ent_platform::identity::authz::{JOBS_READ, JOBS_RUN};
use ent_platform::identity::Caller;

route_table!(AppState, "tâches", |api| vec![
    api.get(
        "/api/v1/jobs",
        "Lister les tâches planifiées, leur planification et leurs dernières exécutions",
        &JOBS_READ,
        list,
    )
    .ok::<Vec<JobView>>(),
    api.post("/api/v1/jobs/{name}/run", "Exécuter une tâche immédiatement", &JOBS_RUN, run).ok::<JobRun>(),
]);

/// Every job with its schedule and latest runs, as of `now`.
pub async fn list_jobs(state: &AppState, now: DateTime<Utc>) -> Result<Vec<JobView>, Problem> {
    views(&state.store, &state.config.jobs, super::jobs::all(), now).await
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<JobView>>, Problem> {
    let now = state.clock.now();
    Ok(Json(list_jobs(&state, now).await?))
}

async fn run(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> Result<Json<JobRun>, Problem> {
    let job =
        super::jobs::find(&name).ok_or_else(|| Problem::not_found(format!("aucune tâche ne s'appelle « {name} »")))?;
    let run = super::scheduler::run_now(&state, &caller.actor, &job, &runner_id(), state.clock.now()).await?;
    Ok(Json(run))
}
