//! Jobs declared in code, scheduled by cron expressions from the configuration
//! (read in the configured time zone, Europe/Paris by default).
//!
//! Every run is a row of `job_runs`. A scheduled run first claims its tick by
//! inserting that row under `UNIQUE (job, tick)`: with several replicas on one
//! PostgreSQL database, exactly one insert wins, so a tick runs once. A job also runs
//! once at a time: at most one `running` row per job (a unique index), which a
//! manual run and a retry take like a tick. Time comes from the caller
//! (`run_due(now)`), so tests never wait for a minute boundary.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use chrono_tz::Tz;
use ent_kernel::clock::french_moment;
use ent_kernel::config::{JobSetting, JobsConfig};
use ent_kernel::error::Problem;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::{new_id, parse_timestamp, timestamp, Store};
use ent_platform::audit::{self, Target};
use ent_platform::identity::Actor;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

/// What a job's run returns: a short French summary, or the error that stopped it.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send + 'a>>;

/// A job declared in code. Its schedule and whether it runs come from the config.
/// The job runs on `S`, the state of the composition root that declares it.
pub struct Job<S> {
    pub name: &'static str,
    pub description: &'static str,
    /// Cron expression used when the configuration does not give one.
    pub default_schedule: &'static str,
    pub run: for<'a> fn(&'a S, DateTime<Utc>) -> JobFuture<'a>,
}

impl<S> Clone for Job<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Job<S> {}

impl<S> Job<S> {
    pub const fn new(
        name: &'static str,
        description: &'static str,
        default_schedule: &'static str,
        run: for<'a> fn(&'a S, DateTime<Utc>) -> JobFuture<'a>,
    ) -> Job<S> {
        Job { name, description, default_schedule, run }
    }

    /// The effective setting of this job in the configuration (its defaults if absent).
    pub fn setting(&self, config: &JobsConfig) -> JobSetting {
        config.setting(self.name, self.default_schedule)
    }
}

/// Gives every job of `jobs` an entry with a schedule in the configuration.
pub fn fill_defaults<S>(config: &mut JobsConfig, jobs: &[Job<S>]) {
    for job in jobs {
        let setting = config.each.entry(job.name.to_string()).or_default();
        if setting.schedule.is_none() {
            setting.schedule = Some(job.default_schedule.to_string());
        }
    }
}

/// Refuses unknown job names (`jobs` are the known ones), invalid cron
/// expressions and time zones, and zero timeouts.
pub fn check_config<S>(config: &JobsConfig, jobs: &[Job<S>]) -> anyhow::Result<()> {
    parse_timezone(&config.timezone)?;
    let known: Vec<&str> = jobs.iter().map(|j| j.name).collect();
    for (name, setting) in &config.each {
        if !known.contains(&name.as_str()) {
            anyhow::bail!("jobs : tâche inconnue « {name} » (tâches connues : {})", known.join(", "));
        }
        if let Some(expr) = &setting.schedule {
            parse_schedule(expr).map_err(|e| {
                anyhow::anyhow!("jobs.{name}.schedule : expression cron invalide pour la tâche « {name} » : {e}")
            })?;
        }
        if setting.timeout_seconds == Some(0) {
            anyhow::bail!("jobs.{name}.timeout_seconds : au moins 1 seconde");
        }
    }
    Ok(())
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
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// The scheduled tick this run claimed; absent for a manual run.
    pub tick: Option<String>,
    /// `schedule`, `manual` or `retry` (a run taken over from one its runner left).
    pub trigger: String,
    /// The process that ran it.
    pub runner: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `success`, `failure` or `abandoned` (its runner died).
    pub outcome: String,
    pub message: Option<String>,
}

const RUN_COLUMNS: &str = "id, job, tick, trigger, runner, started_at, finished_at, outcome, message";

/// A name for this process in `job_runs.runner` and `outbox.claimed_by`: [`process_name`], then
/// [`RUNNER_SUFFIX`] characters of its own (one per scheduler, per sending pass).
pub fn runner_id() -> String {
    let id = new_id();
    format!("{}-{}", process_name(), &id[id.len() - RUNNER_SUFFIX..])
}

/// How many characters of a new id end a [`runner_id`].
pub const RUNNER_SUFFIX: usize = 6;

/// This process as its runners' names begin: `<host>-<pid>` (`HOSTNAME`: the pod's name on
/// Kubernetes, where every pod has its own).
pub fn process_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "entctl".into());
    format!("{host}-{}", std::process::id())
}

/// Inserts the run row of a tick; none when another runner already claimed it, or when
/// a run of the job is still going (here or on another replica: one `running` row per job).
pub async fn claim_tick(
    store: &Store,
    job: &str,
    tick: DateTime<Utc>,
    runner: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<JobRun>> {
    let run = new_run(job, Some(timestamp(tick)), "schedule", runner, now);
    let inserted = sqlx::query(
        "INSERT INTO job_runs (id, job, tick, trigger, runner, started_at, heartbeat_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT DO NOTHING",
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

pub fn new_run(job: &str, tick: Option<String>, trigger: &str, runner: &str, now: DateTime<Utc>) -> JobRun {
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

/// Inserts the row of a run that claims no tick (manual or retry); false when a run of
/// the job is still `running` (the unique index of migration 0040).
async fn insert_run_without_tick(conn: &mut sqlx::AnyConnection, run: &JobRun) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO job_runs (id, job, trigger, runner, started_at, heartbeat_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&run.id)
    .bind(&run.job)
    .bind(&run.trigger)
    .bind(&run.runner)
    .bind(&run.started_at)
    .bind(&run.outcome)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Records a run asked for by someone, audited in the same transaction; refused (409)
/// while a run of the same job is going, here or on another replica.
pub async fn insert_manual_run(store: &Store, actor: &Actor, run: &JobRun, now: DateTime<Utc>) -> Result<(), Problem> {
    let mut tx = store.begin_write().await?;
    if !insert_run_without_tick(&mut tx, run).await? {
        tx.rollback().await?;
        return Err(already_running(store, &run.job).await?);
    }
    let target = Target::new("job", &run.job, None);
    let summary = serde_json::json!({ "run": run.id });
    audit::record(&mut tx, store.backend(), actor, "jobs.run", &target, summary, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The 409 of a run asked for while another run of `job` is going.
async fn already_running(store: &Store, job: &str) -> sqlx::Result<Problem> {
    let going: Option<(String, String)> =
        sqlx::query_as("SELECT started_at, runner FROM job_runs WHERE job = $1 AND outcome = 'running'")
            .bind(job)
            .fetch_optional(store.pool())
            .await?;
    let since = going.as_ref().map_or_else(
        || "un instant".to_string(),
        |(started, runner)| format!("le {} (instance {runner})", french_moment(started)),
    );
    Ok(Problem::conflict(format!(
        "une exécution de « {job} » est en cours depuis {since} : attendez sa fin avant d'en demander une autre"
    )))
}

/// How often a running job's row is touched, in real time.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// A `running` run whose heartbeat is older than this belongs to a dead runner.
pub fn heartbeat_expiry() -> Duration {
    Duration::minutes(2)
}

/// What a run is given when the configuration does not say (`jobs.<name>.timeout_seconds`).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30 * 60;

/// The run's row as this run's runner still holds it: `running` and its own. A run another
/// process marked `abandoned` (and maybe started again) is no longer this run's to write.
const STILL_HELD: &str = "id = $1 AND runner = $2 AND outcome = 'running'";

/// Records the end of a run: when, its outcome and message. False when the run was no
/// longer held ([`STILL_HELD`]): its row is left as another process marked it.
pub async fn record_end(store: &Store, run: &JobRun) -> sqlx::Result<bool> {
    let updated =
        sqlx::query(&format!("UPDATE job_runs SET finished_at = $3, outcome = $4, message = $5 WHERE {STILL_HELD}"))
            .bind(&run.id)
            .bind(&run.runner)
            .bind(&run.finished_at)
            .bind(&run.outcome)
            .bind(&run.message)
            .execute(store.pool())
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// Touches the heartbeat of a running run; false when the run is no longer held
/// ([`STILL_HELD`]: another process marked it `abandoned`), and should stop.
pub async fn touch_heartbeat(store: &Store, run: &JobRun, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let updated = sqlx::query(&format!("UPDATE job_runs SET heartbeat_at = $3 WHERE {STILL_HELD}"))
        .bind(&run.id)
        .bind(&run.runner)
        .bind(timestamp(now))
        .execute(store.pool())
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// What the run of a process stopping (SIGTERM) says while it waits for a live one.
pub const INTERRUPTED_MESSAGE: &str = "interrompue par l'arrêt de son processus : reprise par une instance en service";

/// Leaves a run interrupted by the shutdown of its process (SIGTERM) to the live ones:
/// still `running`, its heartbeat expired, so that the next pass of any other process
/// (another replica, or this one restarted) marks it `abandoned` and runs it again like
/// the run of a dead process (see [`abandon_dead_runs`]). A `failure` would never be.
pub async fn release_interrupted_run(store: &Store, run_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE job_runs SET heartbeat_at = $1, message = $2 WHERE id = $3 AND outcome = 'running'")
        .bind(timestamp(DateTime::<Utc>::UNIX_EPOCH))
        .bind(INTERRUPTED_MESSAGE)
        .bind(run_id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// A `running` run no process runs any more ([`dead_runs`]), to be marked `abandoned`: its
/// id, job, the tick it had claimed (none for a manual or retry run), trigger, start and message.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Abandoned {
    pub id: String,
    pub job: String,
    pub tick: Option<String>,
    pub trigger: String,
    pub started_at: String,
    pub message: Option<String>,
}

impl Abandoned {
    /// Whether its process released it on shutdown ([`release_interrupted_run`]) rather
    /// than died while it ran.
    pub fn interrupted(&self) -> bool {
        self.message.as_deref() == Some(INTERRUPTED_MESSAGE)
    }

    /// The tick this run was for, under `schedule`: the one it claimed (`schedule`), or, for a
    /// `retry` or a `manual` run its process released on shutdown, the latest tick at its start
    /// (a retry starts only for its job's latest tick; a manual run is run again only while no
    /// tick came since). None otherwise: a retry or a manual run whose process died is not run
    /// again (it may be what killed it).
    pub fn retried_tick(&self, schedule: &cron::Schedule, tz: Tz) -> Option<String> {
        match self.trigger.as_str() {
            "schedule" => self.tick.clone(),
            "retry" | "manual" if self.interrupted() => {
                let started = parse_timestamp(&self.started_at)?;
                latest_tick(schedule, tz, started).map(timestamp)
            }
            _ => None,
        }
    }
}

/// The running runs whose heartbeat expired: those of other runners (their process died, or
/// stopped and released them: [`release_interrupted_run`]), and this runner's own of a job not
/// in `in_flight` (the jobs it runs now): a run whose end could not be written stays `running`,
/// and would block its job here for good (one `running` run per job). Oldest first; each is
/// then marked by [`abandon_run`].
pub async fn dead_runs(
    store: &Store,
    runner: &str,
    in_flight: &[&str],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Abandoned>> {
    let query = format!(
        "SELECT id, job, tick, trigger, started_at, message FROM job_runs \
         WHERE outcome = 'running' AND COALESCE(heartbeat_at, started_at) < $1 AND {} \
         ORDER BY started_at, id",
        not_running_here(in_flight)
    );
    let query = sqlx::query_as(&query).bind(timestamp(now - heartbeat_expiry())).bind(runner);
    in_flight.iter().fold(query, |query, job| query.bind(*job)).fetch_all(store.pool()).await
}

/// The condition on a run that `$2` (a runner) is not running now: another runner's, or
/// its own of a job not in `in_flight` (bound from `$3` on).
fn not_running_here(in_flight: &[&str]) -> String {
    if in_flight.is_empty() {
        return "(runner <> $2 OR TRUE)".into();
    }
    let jobs: Vec<String> = (0..in_flight.len()).map(|i| format!("${}", i + 3)).collect();
    format!("(runner <> $2 OR job NOT IN ({}))", jobs.join(", "))
}

/// Marks `abandoned` a run [`dead_runs`] found and records `retry`, the run that takes it over
/// (trigger `retry`, no tick: the tick stays the abandoned run's), in one transaction: a retry
/// that cannot be recorded leaves the run `running` for the next pass, never abandoned without
/// its retry. None when another process marked it first (each dead run goes to one process
/// only, however many replicas ask at once); else whether `retry` was recorded (false: a run
/// of the job is going meanwhile).
pub async fn abandon_run(
    store: &Store,
    dead: &Abandoned,
    now: DateTime<Utc>,
    retry: Option<&JobRun>,
) -> sqlx::Result<Option<bool>> {
    let mut tx = store.begin_write().await?;
    let marked = sqlx::query(
        "UPDATE job_runs SET outcome = 'abandoned', finished_at = $1, \
         message = COALESCE(message, 'abandonnée : le processus qui l''exécutait ne donne plus signe de vie') \
         WHERE id = $2 AND outcome = 'running' AND COALESCE(heartbeat_at, started_at) < $3",
    )
    .bind(timestamp(now))
    .bind(&dead.id)
    .bind(timestamp(now - heartbeat_expiry()))
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let retried = match retry {
        Some(run) => insert_run_without_tick(&mut tx, run).await?,
        None => false,
    };
    tx.commit().await?;
    Ok(Some(retried))
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

/// How long finished runs are kept in `job_runs`.
pub const RUNS_KEPT: Duration = Duration::days(90);

/// Deletes the finished runs started before `before`, except each job's latest run and latest
/// scheduled run (what the runs page shows last, and the tick the missed-tick count starts
/// from); returns how many.
pub async fn purge_runs(store: &Store, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM job_runs WHERE started_at < $1 AND outcome <> 'running' \
         AND started_at < (SELECT MAX(k.started_at) FROM job_runs k WHERE k.job = job_runs.job) \
         AND (tick IS NULL OR tick < (SELECT MAX(k.tick) FROM job_runs k WHERE k.job = job_runs.job))",
    )
    .bind(timestamp(before))
    .execute(store.pool())
    .await?;
    Ok(deleted.rows_affected())
}

/// A job as configured: its parsed schedule, whether it runs, how long it may run.
pub struct ScheduledJob<S> {
    pub job: Job<S>,
    pub expression: String,
    pub schedule: cron::Schedule,
    pub enabled: bool,
    pub timeout: std::time::Duration,
}

impl<S> Clone for ScheduledJob<S> {
    fn clone(&self) -> Self {
        ScheduledJob {
            job: self.job,
            expression: self.expression.clone(),
            schedule: self.schedule.clone(),
            enabled: self.enabled,
            timeout: self.timeout,
        }
    }
}

/// The configured timeout of a job's runs.
pub fn timeout_of<S>(config: &JobsConfig, job: &Job<S>) -> std::time::Duration {
    let seconds = job.setting(config).timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    std::time::Duration::from_secs(seconds)
}

/// Every job of `jobs` with its effective configuration.
pub fn scheduled_jobs<S>(config: &JobsConfig, jobs: Vec<Job<S>>) -> anyhow::Result<Vec<ScheduledJob<S>>> {
    jobs.into_iter()
        .map(|job| {
            let setting = job.setting(config);
            let expression = setting.schedule.unwrap_or_default();
            let schedule = parse_schedule(&expression)
                .map_err(|e| anyhow::anyhow!("expression cron invalide pour la tâche « {} » : {e}", job.name))?;
            let timeout = timeout_of(config, &job);
            Ok(ScheduledJob { job, expression, schedule, enabled: setting.enabled, timeout })
        })
        .collect()
}

/// A job, its configuration and its latest runs.
#[derive(Debug, Serialize, schemars::JsonSchema)]
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

/// Runs shown with each job.
const RECENT_RUNS: u32 = 5;

/// Every job of `jobs` with its schedule and latest runs, as of `now`.
pub async fn views<S>(
    store: &Store,
    config: &JobsConfig,
    jobs: Vec<Job<S>>,
    now: DateTime<Utc>,
) -> Result<Vec<JobView>, Problem> {
    let timezone = parse_timezone(&config.timezone)?;
    let mut views = Vec::new();
    for scheduled in scheduled_jobs(config, jobs)? {
        let next_run =
            scheduled.enabled.then(|| next_tick(&scheduled.schedule, timezone, now)).flatten().map(timestamp);
        let last_runs = recent_runs(store, scheduled.job.name, RECENT_RUNS).await?;
        views.push(view(&scheduled, &config.timezone, next_run, last_runs));
    }
    Ok(views)
}

fn view<S>(scheduled: &ScheduledJob<S>, timezone: &str, next_run: Option<String>, last_runs: Vec<JobRun>) -> JobView {
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

/// Whether a run claimed `tick` of `job`.
pub async fn tick_claimed(store: &Store, job: &str, tick: DateTime<Utc>) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE job = $1 AND tick = $2")
        .bind(job)
        .bind(timestamp(tick))
        .fetch_one(store.pool())
        .await?;
    Ok(n > 0)
}

/// The latest tick of `job` any runner claimed.
pub async fn latest_claimed_tick(store: &Store, job: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
    let tick: Option<String> =
        sqlx::query_scalar("SELECT MAX(tick) AS tick FROM job_runs WHERE job = $1 AND tick IS NOT NULL")
            .bind(job)
            .fetch_one(store.pool())
            .await?;
    Ok(tick.as_deref().and_then(parse_timestamp))
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
