//! HTTP routes of the jobs.

use super::AppState;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::http::ApiRoute;
use ent_ops::jobs::{JobRun, JobView};

pub fn routes() -> Vec<ApiRoute<AppState>> {
    vec![
        ApiRoute::new(
            Method::GET,
            "/api/v1/jobs",
            "tâches",
            "Lister les tâches planifiées, leur planification et leurs dernières exécutions",
            &ent_platform::identity::authz::JOBS_READ,
            get(list),
        )
        .responds::<Vec<JobView>>(StatusCode::OK),
        ApiRoute::new(
            Method::POST,
            "/api/v1/jobs/{name}/run",
            "tâches",
            "Exécuter une tâche immédiatement",
            &ent_platform::identity::authz::JOBS_RUN,
            post(run),
        )
        .responds::<JobRun>(StatusCode::OK),
    ]
}

/// Every job with its schedule and latest runs, as of `now`.
pub async fn list_jobs(state: &AppState, now: DateTime<Utc>) -> Result<Vec<JobView>, Problem> {
    ent_ops::jobs::views(&state.store, &state.config.jobs, super::jobs::all(), now).await
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<JobView>>, Problem> {
    let now = state.clock.now();
    Ok(Json(list_jobs(&state, now).await?))
}

async fn run(
    State(state): State<AppState>,
    caller: ent_platform::identity::Caller,
    Path(name): Path<String>,
) -> Result<Json<JobRun>, Problem> {
    let job =
        super::jobs::find(&name).ok_or_else(|| Problem::not_found(format!("aucune tâche ne s'appelle « {name} »")))?;
    let run =
        super::scheduler::run_now(&state, &caller.actor, &job, &ent_ops::jobs::runner_id(), state.clock.now()).await?;
    Ok(Json(run))
}
