//! Jobs declared in code, scheduled by cron expressions from the configuration
//! (read in the configured time zone, Europe/Paris by default).
//!
//! Every run is a row of `job_runs`. A scheduled run first claims its tick by
//! inserting that row under `UNIQUE (job, tick)`: with several replicas on one
//! PostgreSQL database, exactly one insert wins, so a tick runs once. Time comes
//! from the caller (`run_due(now)`), so tests never wait for a minute boundary.

pub mod routes;

use crate::api::AppState;
use crate::store::{new_id, timestamp, Store};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

pub use routes::routes;

/// What a job's run returns: a short French summary, or the error that stopped it.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

/// A job declared in code. Its schedule and whether it runs come from the config.
#[derive(Clone, Copy)]
pub struct Job {
    pub name: &'static str,
    pub description: &'static str,
    /// Cron expression used when the configuration does not give one.
    pub default_schedule: &'static str,
    pub run: for<'a> fn(&'a AppState, DateTime<Utc>) -> JobFuture<'a>,
}

impl Job {
    pub const fn new(
        name: &'static str,
        description: &'static str,
        default_schedule: &'static str,
        run: for<'a> fn(&'a AppState, DateTime<Utc>) -> JobFuture<'a>,
    ) -> Job {
        Job { name, description, default_schedule, run }
    }
}

/// Every job declared in code (the table lives in the composition root).
pub fn all() -> Vec<Job> {
    crate::api::jobs::all()
}

pub fn find(name: &str) -> Option<Job> {
    all().into_iter().find(|job| job.name == name)
}

/// Parses a cron expression: 5 fields (`min hour day month weekday`, like crontab)
/// or the `cron` crate's 6–7 fields with seconds first.
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => {
            let mut parts: Vec<&str> = expr.split_whitespace().collect();
            let weekdays = crontab_weekdays(parts[4]).map_err(|e| format!("« {expr} » : {e}"))?;
            parts[4] = &weekdays;
            format!("0 {}", parts.join(" "))
        }
        6 | 7 => expr.to_string(),
        _ => {
            return Err(format!(
                "« {expr} » a {fields} champ(s) ; attendu 5 (minute heure jour mois jour-de-semaine) \
                 ou 6 à 7 (secondes en tête)"
            ))
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| {
        // The crate's message draws a caret under its own 6-field form; keep the reason.
        let text = e.to_string();
        let reason = text.lines().last().unwrap_or_default().trim();
        format!("« {expr} » ({reason})")
    })
}

/// Translates a crontab day-of-week field (0 or 7 = Sunday, 1 = Monday) to the
/// `cron` crate's numbering (1 = Sunday, 2 = Monday); names pass unchanged.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let day = |text: &str| -> Result<Option<u32>, String> {
        match text.parse::<u32>() {
            Ok(n @ 0..=7) => Ok(Some(n % 7 + 1)),
            Ok(n) => Err(format!("jour de la semaine {n} hors de 0 à 7")),
            Err(_) => Ok(None),
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        let translated = match base.split_once('-') {
            Some((from, to)) => match (day(from)?, day(to)?, to == "7") {
                // `x-7` ends on Sunday, which the crate numbers 1: split the range.
                (Some(a), Some(_), true) if step.is_none() => format!("{a}-7,1"),
                (Some(_), Some(_), true) => return Err("un pas sur une plage finissant à 7 : écrivez 0-6".into()),
                (Some(a), Some(b), false) => format!("{a}-{b}"),
                _ => base.to_string(),
            },
            None => day(base)?.map_or(base.to_string(), |n| n.to_string()),
        };
        items.push(match step {
            Some(step) => format!("{translated}/{step}"),
            None => translated,
        });
    }
    Ok(items.join(","))
}

pub fn parse_timezone(name: &str) -> anyhow::Result<Tz> {
    Tz::from_str(name)
        .map_err(|_| anyhow::anyhow!("jobs.timezone : fuseau horaire inconnu « {name} » (ex. Europe/Paris)"))
}

/// The latest tick of `schedule` at or before `now`.
pub fn latest_tick(schedule: &cron::Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // `after(t).next_back()` is the last tick strictly before `t`.
    let probe = now.trunc_subsecs(0) + Duration::seconds(1);
    schedule.after(&probe.with_timezone(&tz)).next_back().map(|tick| tick.with_timezone(&Utc))
}

/// The first tick of `schedule` strictly after `now`.
pub fn next_tick(schedule: &cron::Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.after(&now.with_timezone(&tz)).next().map(|tick| tick.with_timezone(&Utc))
}

/// One recorded run of a job.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// The scheduled tick this run claimed; absent for a manual run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick: Option<String>,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// The process that ran it.
    pub runner: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// `running`, `success`, `failure` or `abandoned` (its runner died).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

const RUN_COLUMNS: &str = "id, job, tick, trigger, runner, started_at, finished_at, outcome, message";

/// A name for this process in `job_runs.runner` and `outbox.claimed_by`.
pub fn runner_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "entctl".into());
    let id = new_id();
    format!("{host}-{}-{}", std::process::id(), &id[id.len() - 6..])
}

/// Inserts the run row of a tick; false when another runner already claimed it.
async fn claim_tick(
    store: &Store,
    job: &str,
    tick: DateTime<Utc>,
    runner: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<JobRun>> {
    let run = new_run(job, Some(timestamp(tick)), "schedule", runner, now);
    let inserted = sqlx::query(
        "INSERT INTO job_runs (id, job, tick, trigger, runner, started_at, heartbeat_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (job, tick) DO NOTHING",
    )
    .bind(&run.id)
    .bind(&run.job)
    .bind(&run.tick)
    .bind(&run.trigger)
    .bind(&run.runner)
    .bind(&run.started_at)
    .bind(&run.outcome)
    .execute(store.pool())
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(run))
}

fn new_run(job: &str, tick: Option<String>, trigger: &str, runner: &str, now: DateTime<Utc>) -> JobRun {
    JobRun {
        id: new_id(),
        job: job.into(),
        tick,
        trigger: trigger.into(),
        runner: runner.into(),
        started_at: timestamp(now),
        finished_at: None,
        outcome: "running".into(),
        message: None,
    }
}

/// Records a run asked for by someone, audited in the same transaction.
async fn insert_manual_run(
    store: &Store,
    actor: &crate::identity::Actor,
    run: &JobRun,
    now: DateTime<Utc>,
) -> Result<(), crate::error::Problem> {
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger, runner, started_at, heartbeat_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(&run.id)
    .bind(&run.job)
    .bind(&run.trigger)
    .bind(&run.runner)
    .bind(&run.started_at)
    .bind(&run.outcome)
    .execute(&mut *tx)
    .await?;
    let change = crate::audit::Change {
        actor: &actor.name,
        action: "jobs.run",
        target_kind: "job",
        target_id: &run.job,
        scope_org_id: None,
        summary: serde_json::json!({ "run": run.id }),
    };
    crate::audit::append(&mut tx, store.backend(), change, now).await?;
    tx.commit().await?;
    Ok(())
}

/// How often a running job's row is touched, in real time.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// A `running` run whose heartbeat is older than this belongs to a dead runner.
pub fn heartbeat_expiry() -> Duration {
    Duration::minutes(2)
}

/// What a run is given when the configuration does not say (`jobs.<name>.timeout_seconds`).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30 * 60;

/// Runs the job of a claimed run, at most `timeout` and until `cancel`, touching
/// its heartbeat meanwhile; records its end, outcome and message.
async fn execute(
    state: &AppState,
    job: &Job,
    mut run: JobRun,
    now: DateTime<Utc>,
    timeout: std::time::Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> JobRun {
    let started = std::time::Instant::now();
    let result = tokio::select! {
        result = tokio::time::timeout(timeout, (job.run)(state, now)) => result.unwrap_or_else(|_| {
            Err(anyhow::anyhow!("délai dépassé ({} s) : exécution interrompue", timeout.as_secs_f64()))
        }),
        _ = cancel.cancelled() => Err(anyhow::anyhow!("exécution interrompue : arrêt du processus")),
        _ = beat(state, &run.id) => unreachable!("the heartbeat loop never ends"),
    };
    let finished = state.clock.now().max(now);
    run.finished_at = Some(timestamp(finished));
    match result {
        Ok(message) => {
            run.outcome = "success".into();
            run.message = Some(message);
        }
        Err(e) => {
            tracing::warn!(job = job.name, error = %format!("{e:#}"), "job failed");
            run.outcome = "failure".into();
            run.message = Some(format!("{e:#}"));
        }
    }
    state.metrics.job_finished(job.name, &run.outcome, finished, started.elapsed().as_secs_f64());
    if let Err(e) = record_end(&state.store, &run).await {
        tracing::error!(job = job.name, error = %e, "job run end not recorded");
    }
    run
}

/// Touches the run's heartbeat every `HEARTBEAT_EVERY`, forever.
async fn beat(state: &AppState, run_id: &str) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT_EVERY, HEARTBEAT_EVERY);
    loop {
        every.tick().await;
        let touched = sqlx::query("UPDATE job_runs SET heartbeat_at = $1 WHERE id = $2")
            .bind(timestamp(state.clock.now()))
            .bind(run_id)
            .execute(state.store.pool())
            .await;
        if let Err(e) = touched {
            tracing::warn!(run = run_id, error = %e, "job heartbeat not recorded");
        }
    }
}

async fn record_end(store: &Store, run: &JobRun) -> sqlx::Result<()> {
    sqlx::query("UPDATE job_runs SET finished_at = $1, outcome = $2, message = $3 WHERE id = $4")
        .bind(&run.finished_at)
        .bind(&run.outcome)
        .bind(&run.message)
        .bind(&run.id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Marks `abandoned` the running runs of other runners whose heartbeat expired
/// (their process died); returns the jobs of those runs.
pub async fn abandon_dead_runs(store: &Store, runner: &str, now: DateTime<Utc>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "UPDATE job_runs SET outcome = 'abandoned', finished_at = $1, \
         message = 'abandonnée : le processus qui l''exécutait ne donne plus signe de vie' \
         WHERE outcome = 'running' AND runner <> $2 AND COALESCE(heartbeat_at, started_at) < $3 \
         RETURNING job",
    )
    .bind(timestamp(now))
    .bind(runner)
    .bind(timestamp(now - heartbeat_expiry()))
    .fetch_all(store.pool())
    .await
}

/// Runs a job now, outside its schedule, and returns the finished run.
pub async fn run_now(
    state: &AppState,
    actor: &crate::identity::Actor,
    job: &Job,
    runner: &str,
    now: DateTime<Utc>,
) -> Result<JobRun, crate::error::Problem> {
    let run = new_run(job.name, None, "manual", runner, now);
    insert_manual_run(&state.store, actor, &run, now).await?;
    let timeout = timeout_of(&state.config, job);
    Ok(execute(state, job, run, now, timeout, &tokio_util::sync::CancellationToken::new()).await)
}

/// The latest runs of a job, newest first.
pub async fn recent_runs(store: &Store, job: &str, limit: u32) -> sqlx::Result<Vec<JobRun>> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE job = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
    ))
    .bind(job)
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await
}

/// A job as configured: its parsed schedule, whether it runs, how long it may run.
#[derive(Clone)]
pub struct ScheduledJob {
    pub job: Job,
    pub expression: String,
    pub schedule: cron::Schedule,
    pub enabled: bool,
    pub timeout: std::time::Duration,
}

/// The configured timeout of a job's runs.
pub fn timeout_of(config: &crate::config::Config, job: &Job) -> std::time::Duration {
    let seconds = config.jobs.setting(job).timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    std::time::Duration::from_secs(seconds)
}

/// Every job with its effective configuration.
pub fn scheduled_jobs(config: &crate::config::Config) -> anyhow::Result<Vec<ScheduledJob>> {
    all()
        .into_iter()
        .map(|job| {
            let setting = config.jobs.setting(&job);
            let expression = setting.schedule.unwrap_or_default();
            let schedule = parse_schedule(&expression)
                .map_err(|e| anyhow::anyhow!("expression cron invalide pour la tâche « {} » : {e}", job.name))?;
            let timeout = timeout_of(config, &job);
            Ok(ScheduledJob { job, expression, schedule, enabled: setting.enabled, timeout })
        })
        .collect()
}

/// Runs the configured jobs at their ticks, each in its own task: a long run
/// never delays another job's tick, and a job never overlaps itself in this
/// process (its tick is skipped, logged and counted). Several schedulers
/// (replicas) may share one database: each tick runs on one of them only.
pub struct Scheduler {
    state: AppState,
    runner: String,
    timezone: Tz,
    jobs: Vec<ScheduledJob>,
    /// Jobs with a run in flight in this process.
    running: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<&'static str>>>,
    /// The latest tick this process has dealt with, per job.
    seen: std::sync::Mutex<std::collections::HashMap<&'static str, DateTime<Utc>>>,
    /// Cancelled at shutdown: no run starts any more, running ones stop.
    cancel: tokio_util::sync::CancellationToken,
}

/// Removes a job from the in-flight set when its run ends, however it ends.
struct InFlight {
    running: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<&'static str>>>,
    job: &'static str,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.running.lock().expect("scheduler lock").remove(self.job);
    }
}

impl Scheduler {
    pub fn new(state: AppState, runner: impl Into<String>) -> anyhow::Result<Scheduler> {
        let jobs = scheduled_jobs(&state.config)?;
        Scheduler::with_jobs(state, runner, jobs)
    }

    /// A scheduler of the given jobs (tests declare their own).
    pub fn with_jobs(state: AppState, runner: impl Into<String>, jobs: Vec<ScheduledJob>) -> anyhow::Result<Scheduler> {
        let timezone = parse_timezone(&state.config.jobs.timezone)?;
        Ok(Scheduler {
            state,
            runner: runner.into(),
            timezone,
            jobs,
            running: Default::default(),
            seen: Default::default(),
            cancel: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// Runs every enabled job whose latest tick at or before `now` nobody has
    /// claimed yet, concurrently, and waits for them. Missed older ticks are not
    /// caught up: only the latest runs, the others are logged and counted.
    pub async fn run_due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<JobRun>> {
        let mut runs = Vec::new();
        for started in self.spawn_due(now).await? {
            runs.push(started.await?);
        }
        Ok(runs)
    }

    /// Starts the due runs in their own tasks and returns at once with their handles.
    pub async fn spawn_due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<tokio::task::JoinHandle<JobRun>>> {
        if self.cancel.is_cancelled() {
            return Ok(Vec::new());
        }
        self.abandon_dead_runs(now).await?;
        let mut started = Vec::new();
        for scheduled in self.jobs.iter().filter(|s| s.enabled) {
            let Some(tick) = latest_tick(&scheduled.schedule, self.timezone, now) else {
                continue;
            };
            let name = scheduled.job.name;
            let seen = self.seen.lock().expect("scheduler lock").get(name).copied();
            if seen.is_some_and(|seen| seen >= tick) {
                continue;
            }
            self.count_missed_ticks(scheduled, seen, tick).await?;
            if self.running.lock().expect("scheduler lock").contains(name) {
                tracing::warn!(job = name, tick = %timestamp(tick), "tick skipped: the previous run of this job is still going");
                self.state.metrics.ticks_skipped(name, "overlap", 1);
            } else if let Some(run) = claim_tick(&self.state.store, name, tick, &self.runner, now).await? {
                tracing::info!(job = name, tick = %timestamp(tick), "job started");
                started.push(self.spawn_run(scheduled, run, now));
            }
            self.seen.lock().expect("scheduler lock").insert(name, tick);
        }
        Ok(started)
    }

    fn spawn_run(&self, scheduled: &ScheduledJob, run: JobRun, now: DateTime<Utc>) -> tokio::task::JoinHandle<JobRun> {
        let guard = InFlight { running: self.running.clone(), job: scheduled.job.name };
        self.running.lock().expect("scheduler lock").insert(guard.job);
        let (state, job, timeout, cancel) =
            (self.state.clone(), scheduled.job, scheduled.timeout, self.cancel.child_token());
        tokio::spawn(async move {
            let _guard = guard;
            execute(&state, &job, run, now, timeout, &cancel).await
        })
    }

    /// Ticks between the latest one dealt with (here or, for a process that
    /// just started, by any replica) and `tick` were missed: logged and counted.
    async fn count_missed_ticks(
        &self,
        scheduled: &ScheduledJob,
        seen: Option<DateTime<Utc>>,
        tick: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        let claimed = latest_claimed_tick(&self.state.store, scheduled.job.name).await?;
        let Some(since) = seen.max(claimed) else { return Ok(()) };
        let missed = scheduled
            .schedule
            .after(&since.with_timezone(&self.timezone))
            .take_while(|t| t.with_timezone(&Utc) < tick)
            .take(100_000)
            .count() as u64;
        if missed > 0 {
            let name = scheduled.job.name;
            tracing::warn!(job = name, missed, since = %timestamp(since), "ticks missed: nobody ran them");
            self.state.metrics.ticks_skipped(name, "missed", missed);
        }
        Ok(())
    }

    async fn abandon_dead_runs(&self, now: DateTime<Utc>) -> sqlx::Result<()> {
        for job in abandon_dead_runs(&self.state.store, &self.runner, now).await? {
            tracing::warn!(job = %job, "run abandoned: its runner stopped beating");
            self.state.metrics.run_abandoned(&job);
        }
        Ok(())
    }

    /// The next instant any enabled job is due, after `now`.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.jobs.iter().filter(|s| s.enabled).filter_map(|s| next_tick(&s.schedule, self.timezone, now)).min()
    }

    /// Stops the scheduler: no run starts any more and running runs are interrupted.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether a run of `job` is in flight in this process.
    pub fn is_running(&self, job: &str) -> bool {
        self.running.lock().expect("scheduler lock").contains(job)
    }

    /// Loops until `shutdown` is cancelled: starts what is due, sleeps to the
    /// next tick. At shutdown no run starts any more; the running ones get
    /// `drain` to finish, then are interrupted (their run records the reason).
    pub async fn run_until(self, shutdown: tokio_util::sync::CancellationToken, drain: std::time::Duration) {
        let mut tasks = Vec::new();
        while !shutdown.is_cancelled() {
            match self.spawn_due(self.state.clock.now()).await {
                Ok(started) => tasks.extend(started),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "scheduler pass failed"),
            }
            tasks.retain(|task: &tokio::task::JoinHandle<JobRun>| !task.is_finished());
            tokio::select! {
                _ = tokio::time::sleep(self.time_to_next_tick()) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        let all_done = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(drain, all_done).await.is_err() {
            tracing::warn!("jobs still running at the shutdown deadline: interrupted");
            self.cancel();
            futures_util::future::join_all(tasks).await;
        }
    }

    /// Until the next tick, at most a minute so that a failed pass is retried
    /// soon, plus a margin so that the tick is really past when we wake.
    fn time_to_next_tick(&self) -> std::time::Duration {
        let max = std::time::Duration::from_secs(60);
        let now = self.state.clock.now();
        let wait = self.next_due(now).and_then(|next| (next - now).to_std().ok()).map_or(max, |wait| wait.min(max));
        wait + std::time::Duration::from_millis(50)
    }
}

/// The latest tick of `job` any runner claimed.
async fn latest_claimed_tick(store: &Store, job: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
    let tick: Option<String> =
        sqlx::query_scalar("SELECT MAX(tick) AS tick FROM job_runs WHERE job = $1 AND tick IS NOT NULL")
            .bind(job)
            .fetch_one(store.pool())
            .await?;
    Ok(tick.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_field_expressions_are_read_like_crontab() {
        let every_minute = parse_schedule("* * * * *").unwrap();
        let tz = parse_timezone("Europe/Paris").unwrap();
        let now = at("2026-09-01T08:00:42.5Z");
        assert_eq!(latest_tick(&every_minute, tz, now), Some(at("2026-09-01T08:00:00Z")));
        assert_eq!(next_tick(&every_minute, tz, now), Some(at("2026-09-01T08:01:00Z")));
    }

    #[test]
    fn a_tick_exactly_now_is_due() {
        let every_minute = parse_schedule("* * * * *").unwrap();
        let tz = parse_timezone("Europe/Paris").unwrap();
        let now = at("2026-09-01T08:01:00Z");
        assert_eq!(latest_tick(&every_minute, tz, now), Some(now));
    }

    #[test]
    fn daily_schedules_follow_paris_time_across_daylight_saving() {
        let at_three = parse_schedule("0 3 * * *").unwrap();
        let tz = parse_timezone("Europe/Paris").unwrap();
        // Summer: Paris is UTC+2.
        assert_eq!(latest_tick(&at_three, tz, at("2026-07-01T12:00:00Z")), Some(at("2026-07-01T01:00:00Z")));
        // Winter: Paris is UTC+1.
        assert_eq!(latest_tick(&at_three, tz, at("2026-12-01T12:00:00Z")), Some(at("2026-12-01T02:00:00Z")));
    }

    #[test]
    fn crontab_weekdays_count_from_sunday_zero() {
        assert_eq!(crontab_weekdays("1").unwrap(), "2");
        assert_eq!(crontab_weekdays("0,7").unwrap(), "1,1");
        assert_eq!(crontab_weekdays("1-5").unwrap(), "2-6");
        assert_eq!(crontab_weekdays("5-7").unwrap(), "6-7,1");
        assert_eq!(crontab_weekdays("*/2").unwrap(), "*/2");
        assert_eq!(crontab_weekdays("Mon-Fri").unwrap(), "Mon-Fri");
        assert!(crontab_weekdays("8").is_err());
        parse_schedule("0 8 * * 0,7").unwrap();
        parse_schedule("0 8 * * 5-7").unwrap();
    }

    #[test]
    fn monday_in_crontab_form_is_monday() {
        let monday_eight = parse_schedule("0 8 * * 1").unwrap();
        let tz = parse_timezone("Europe/Paris").unwrap();
        // 2026-09-01 is a Tuesday; the previous Monday 08:00 Paris is 06:00 UTC.
        assert_eq!(latest_tick(&monday_eight, tz, at("2026-09-01T12:00:00Z")), Some(at("2026-08-31T06:00:00Z")));
        let weekdays = parse_schedule("0 8 * * 1-5").unwrap();
        assert_eq!(
            next_tick(&weekdays, tz, at("2026-09-05T12:00:00Z")),
            Some(at("2026-09-07T06:00:00Z")),
            "Saturday → next Monday"
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(parse_schedule("tous les jours").is_err());
        assert!(parse_schedule("61 * * * *").is_err());
        assert!(parse_timezone("Europe/Lutece").is_err());
    }
}
