//! Jobs declared in code, scheduled by cron expressions from the configuration
//! (read in the configured time zone, Europe/Paris by default).
//!
//! Every run is a row of `job_runs`. A scheduled run first claims its tick by
//! inserting that row under `UNIQUE (job, tick)`: with several replicas on one
//! PostgreSQL database, exactly one insert wins, so a tick runs once. Time comes
//! from the caller (`run_due(now)`), so tests never wait for a minute boundary.

pub mod routes;

use crate::api::AppState;
use crate::store::{new_id, opt_text, timestamp, Store};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
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

/// Every job declared in code, each capability contributing its own.
pub fn all() -> Vec<Job> {
    let mut jobs = Vec::new();
    jobs.extend(crate::notify::jobs());
    jobs.extend(crate::conventions::jobs::jobs());
    jobs.extend(crate::provisioning::reconcile::jobs());
    jobs.extend(crate::support::jobs::jobs());
    jobs.extend(crate::provisioning::purge::jobs());
    jobs.extend(crate::rgpd::jobs::jobs());
    jobs
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
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
    /// `running`, `success` or `failure`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

const RUN_COLUMNS: &str = "id, job, tick, trigger, runner, started_at, finished_at, outcome, message";

fn run_from_row(row: &AnyRow) -> JobRun {
    JobRun {
        id: row.get("id"),
        job: row.get("job"),
        tick: opt_text(row, "tick"),
        trigger: row.get("trigger"),
        runner: row.get("runner"),
        started_at: row.get("started_at"),
        finished_at: opt_text(row, "finished_at"),
        outcome: row.get("outcome"),
        message: opt_text(row, "message"),
    }
}

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
        "INSERT INTO job_runs (id, job, tick, trigger, runner, started_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job, tick) DO NOTHING",
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
        "INSERT INTO job_runs (id, job, trigger, runner, started_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6)",
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

/// Runs the job of a claimed run and records its end, outcome and message.
async fn execute(state: &AppState, job: &Job, mut run: JobRun, now: DateTime<Utc>) -> JobRun {
    let result = (job.run)(state, now).await;
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
    if let Err(e) = record_end(&state.store, &run).await {
        tracing::error!(job = job.name, error = %e, "job run end not recorded");
    }
    run
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
    Ok(execute(state, job, run, now).await)
}

/// The latest runs of a job, newest first.
pub async fn recent_runs(store: &Store, job: &str, limit: u32) -> sqlx::Result<Vec<JobRun>> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE job = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
    ))
    .bind(job)
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(run_from_row).collect())
}

/// A job as configured: its parsed schedule and whether it runs.
#[derive(Clone)]
pub struct ScheduledJob {
    pub job: Job,
    pub expression: String,
    pub schedule: cron::Schedule,
    pub enabled: bool,
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
            Ok(ScheduledJob { job, expression, schedule, enabled: setting.enabled })
        })
        .collect()
}

/// Runs the configured jobs at their ticks. Several schedulers (replicas) may
/// share one database: each tick runs on one of them only.
pub struct Scheduler {
    state: AppState,
    runner: String,
    timezone: Tz,
    jobs: Vec<ScheduledJob>,
}

impl Scheduler {
    pub fn new(state: AppState, runner: impl Into<String>) -> anyhow::Result<Scheduler> {
        let timezone = parse_timezone(&state.config.jobs.timezone)?;
        let jobs = scheduled_jobs(&state.config)?;
        Ok(Scheduler { state, runner: runner.into(), timezone, jobs })
    }

    /// Runs every enabled job whose latest tick at or before `now` nobody has
    /// claimed yet. Missed older ticks are not caught up: only the latest runs.
    pub async fn run_due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<JobRun>> {
        let mut runs = Vec::new();
        for scheduled in self.jobs.iter().filter(|s| s.enabled) {
            let Some(tick) = latest_tick(&scheduled.schedule, self.timezone, now) else {
                continue;
            };
            let name = scheduled.job.name;
            if let Some(run) = claim_tick(&self.state.store, name, tick, &self.runner, now).await? {
                tracing::info!(job = name, tick = %timestamp(tick), "job started");
                runs.push(execute(&self.state, &scheduled.job, run, now).await);
            }
        }
        Ok(runs)
    }

    /// The next instant any enabled job is due, after `now`.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.jobs.iter().filter(|s| s.enabled).filter_map(|s| next_tick(&s.schedule, self.timezone, now)).min()
    }

    /// Loops until `stop` turns true: runs what is due, sleeps to the next tick.
    pub async fn run_until(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(e) = self.run_due(self.state.clock.now()).await {
                tracing::error!(error = %format!("{e:#}"), "scheduler pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.time_to_next_tick()) => {}
                _ = stop.changed() => {}
            }
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
