//! The runner of the jobs on the application state: a run now (CLI, API) and
//! the `Scheduler` that runs the configured jobs at their ticks. What needs no
//! application state (run records, heartbeats, schedules) is in `ent_ops::jobs`.

use super::jobs::{Job, ScheduledJob};
use super::AppState;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::timestamp;
use ent_ops::jobs::{
    abandon_run, claim_tick, dead_runs, insert_manual_run, latest_claimed_tick, latest_tick, new_run, next_tick,
    parse_timezone, record_end, release_interrupted_run, tick_claimed, timeout_of, touch_heartbeat, Abandoned, JobRun,
    HEARTBEAT_EVERY, INTERRUPTED_MESSAGE,
};
use ent_platform::identity::Actor;

/// Runs the job of a claimed run, at most `timeout` and until `cancel`, touching
/// its heartbeat meanwhile; records its end, outcome and message. A run `cancel` stops
/// (the process is stopping) has no end: it is released to the live processes, which
/// run it again ([`release_interrupted_run`]). A run another process took over (marked
/// `abandoned`: its heartbeat found it lost, or its end did) is stopped, and its end does
/// not overwrite the row: it is logged and counted as `lost`.
async fn execute(
    state: &AppState,
    job: &Job,
    mut run: JobRun,
    now: DateTime<Utc>,
    timeout: std::time::Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> JobRun {
    let started = std::time::Instant::now();
    let ended = tokio::select! {
        result = tokio::time::timeout(timeout, (job.run)(state, now)) => Some(result.unwrap_or_else(|_| {
            Err(anyhow::anyhow!("délai dépassé ({} s) : exécution interrompue", timeout.as_secs_f64()))
        })),
        _ = cancel.cancelled() => None,
        _ = beat(state, &run) => Some(Err(anyhow::anyhow!(LOST_MESSAGE))),
    };
    let Some(result) = ended else { return release(state, job, run).await };
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
    state.store.note_change();
    match record_end_retrying(state, job, &run).await {
        Ok(true) => {}
        Ok(false) => lost(job, &mut run),
        // Still `running`: a later pass of this scheduler abandons it once its heartbeat
        // expired, and the job runs again ([`dead_runs`]).
        Err(e) => tracing::error!(job = job.name, run = %run.id, error = %e, "job run end not recorded"),
    }
    state.metrics.job_finished(job.name, &run.outcome, finished, started.elapsed().as_secs_f64());
    run
}

/// How many times the end of a run is written before it is given up, and the wait
/// before the second attempt (doubled before each next one).
const END_ATTEMPTS: u32 = 3;
const END_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// [`record_end`], tried again after a short wait when the database fails to answer.
async fn record_end_retrying(state: &AppState, job: &Job, run: &JobRun) -> sqlx::Result<bool> {
    let mut wait = END_RETRY_AFTER;
    for _ in 1..END_ATTEMPTS {
        match record_end(&state.store, run).await {
            Err(e) => {
                tracing::warn!(job = job.name, run = %run.id, error = %e, "job run end not recorded: trying again")
            }
            recorded => return recorded,
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    record_end(&state.store, run).await
}

/// What a run another process took over says.
const LOST_MESSAGE: &str = "reprise par une autre instance : cette exécution a été marquée abandonnée";

/// A run whose row another process marked `abandoned`: its end is not recorded over it.
fn lost(job: &Job, run: &mut JobRun) {
    tracing::error!(job = job.name, run = %run.id, outcome = %run.outcome, "job run taken over by another process: its end is not recorded");
    run.outcome = "lost".into();
    run.message = Some(LOST_MESSAGE.into());
}

/// A run interrupted by the shutdown, released to the live processes: still `running`.
async fn release(state: &AppState, job: &Job, mut run: JobRun) -> JobRun {
    tracing::warn!(job = job.name, run = %run.id, "job interrupted by the shutdown: left to a live process");
    run.message = Some(INTERRUPTED_MESSAGE.into());
    if let Err(e) = release_interrupted_run(&state.store, &run.id).await {
        tracing::error!(job = job.name, error = %e, "interrupted job run not released");
    }
    run
}

/// Touches the run's heartbeat every `HEARTBEAT_EVERY`; returns when the run is no
/// longer this process's (another marked it `abandoned`).
async fn beat(state: &AppState, run: &JobRun) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT_EVERY, HEARTBEAT_EVERY);
    loop {
        every.tick().await;
        match touch_heartbeat(&state.store, run, state.clock.now()).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(run = %run.id, error = %e, "job heartbeat not recorded"),
        }
    }
}

/// Runs a job now, outside its schedule, and returns the finished run. The run is a task of
/// its own, tracked in [`AppState::manual_runs`]: a caller that hangs up never cuts it half-way,
/// and the shutdown treats it as a scheduled run (it gets the drain, then is interrupted by
/// [`AppState::interrupt_jobs`] and released to a live process, which runs it again).
pub async fn run_now(
    state: &AppState,
    actor: &Actor,
    job: &Job,
    runner: &str,
    now: DateTime<Utc>,
) -> Result<JobRun, Problem> {
    let run = new_run(job.name, None, "manual", runner, now);
    insert_manual_run(&state.store, actor, &run, now).await?;
    let timeout = timeout_of(&state.config.jobs, job);
    let (task_state, job, cancel) = (state.clone(), *job, state.interrupt_jobs.child_token());
    let (done, ended) = tokio::sync::oneshot::channel();
    state.manual_runs.start(|| {
        tokio::spawn(async move {
            let run = execute(&task_state, &job, run, now, timeout, &cancel).await;
            let _ = done.send(run.clone());
            run
        })
    });
    ended.await.map_err(|_| Problem::new(ProblemKind::Internal, "l'exécution manuelle s'est arrêtée sans résultat"))
}

/// The manual runs ([`run_now`]) going on in a process, for its shutdown to wait for them.
#[derive(Clone, Default)]
pub struct ManualRuns(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<JobRun>>>>);

impl ManualRuns {
    /// Starts a run by `spawn`, tracked from before it starts (the shutdown never misses it).
    fn start(&self, spawn: impl FnOnce() -> tokio::task::JoinHandle<JobRun>) {
        let mut runs = self.0.lock().expect("manual runs lock");
        runs.retain(|run| !run.is_finished());
        runs.push(spawn());
    }

    /// The runs going on, handed over to the caller (the shutdown) to wait for.
    fn take(&self) -> Vec<tokio::task::JoinHandle<JobRun>> {
        std::mem::take(&mut *self.0.lock().expect("manual runs lock"))
    }
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
        let jobs = super::jobs::scheduled_jobs(&state.config)?;
        Scheduler::with_jobs(state, runner, jobs)
    }

    /// A scheduler of the given jobs (tests declare their own).
    pub fn with_jobs(state: AppState, runner: impl Into<String>, jobs: Vec<ScheduledJob>) -> anyhow::Result<Scheduler> {
        let timezone = parse_timezone(&state.config.jobs.timezone)?;
        Ok(Scheduler {
            runner: runner.into(),
            timezone,
            jobs,
            running: Default::default(),
            seen: Default::default(),
            cancel: state.interrupt_jobs.child_token(),
            state,
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
    /// A step that fails (a dead-run lookup, a job's claim) is logged and tried again at the
    /// next pass; the pass goes on, and the runs it already started keep their handles (their
    /// caller awaits them, or interrupts them at shutdown: none is left `running`).
    pub async fn spawn_due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<tokio::task::JoinHandle<JobRun>>> {
        if self.cancel.is_cancelled() {
            return Ok(Vec::new());
        }
        let mut started = self.abandon_dead_runs(now).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "dead runs not looked for: tried again at the next pass");
            Vec::new()
        });
        for scheduled in self.jobs.iter().filter(|s| s.enabled) {
            match self.start_if_due(scheduled, now).await {
                Ok(run) => started.extend(run),
                Err(e) => {
                    tracing::error!(job = scheduled.job.name, error = %e, "tick not dealt with: tried again at the next pass")
                }
            }
        }
        Ok(started)
    }

    /// Claims and starts the latest tick of `scheduled` at or before `now` unless it is dealt
    /// with already (here, or by another replica: then skipped and counted).
    async fn start_if_due(
        &self,
        scheduled: &ScheduledJob,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<tokio::task::JoinHandle<JobRun>>> {
        let Some(tick) = latest_tick(&scheduled.schedule, self.timezone, now) else {
            return Ok(None);
        };
        let name = scheduled.job.name;
        let seen = self.seen.lock().expect("scheduler lock").get(name).copied();
        if seen.is_some_and(|seen| seen >= tick) {
            return Ok(None);
        }
        self.count_missed_ticks(scheduled, seen, tick).await?;
        let mut started = None;
        if self.running.lock().expect("scheduler lock").contains(name) {
            tracing::warn!(job = name, tick = %timestamp(tick), "tick skipped: the previous run of this job is still going");
            self.state.metrics.ticks_skipped(name, "overlap", 1);
        } else if let Some(run) = claim_tick(&self.state.store, name, tick, &self.runner, now).await? {
            tracing::info!(job = name, tick = %timestamp(tick), "job started");
            started = Some(self.spawn_run(scheduled, run, now));
        } else if !tick_claimed(&self.state.store, name, tick).await? {
            tracing::warn!(job = name, tick = %timestamp(tick), "tick skipped: a run of this job is going elsewhere");
            self.state.metrics.ticks_skipped(name, "overlap", 1);
        }
        self.seen.lock().expect("scheduler lock").insert(name, tick);
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

    /// Marks `abandoned` the runs no process runs any more ([`dead_runs`]) and starts again,
    /// here, those that have a retry ([`Scheduler::retry_of`]). A run that cannot be marked
    /// with its retry is logged, counted and left `running` for the next pass; the others
    /// are dealt with meanwhile.
    async fn abandon_dead_runs(&self, now: DateTime<Utc>) -> sqlx::Result<Vec<tokio::task::JoinHandle<JobRun>>> {
        let in_flight: Vec<&str> = self.running.lock().expect("scheduler lock").iter().copied().collect();
        let mut started = Vec::new();
        for dead in dead_runs(&self.state.store, &self.runner, &in_flight, now).await? {
            match self.abandon(&dead, now).await {
                Ok(retry) => started.extend(retry),
                Err(e) => {
                    tracing::error!(job = %dead.job, run = %dead.id, error = %e, "dead run not abandoned: tried again at the next pass");
                    self.state.metrics.abandon_failed(&dead.job);
                }
            }
        }
        Ok(started)
    }

    /// Marks one dead run `abandoned`, with its retry if it has one, and starts the retry;
    /// nothing when another process marked it first (the process that marks a run is the
    /// only one to retry it).
    async fn abandon(
        &self,
        dead: &Abandoned,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<tokio::task::JoinHandle<JobRun>>> {
        let retry = self.retry_of(dead, now);
        let Some(retried) = abandon_run(&self.state.store, dead, now, retry.as_ref().map(|(_, run, _)| run)).await?
        else {
            return Ok(None);
        };
        tracing::warn!(job = %dead.job, tick = ?dead.tick, "run abandoned: its runner stopped beating or its end was not recorded");
        self.state.metrics.run_abandoned(&dead.job);
        let Some((scheduled, run, latest)) = retry else { return Ok(None) };
        // The tick is dealt with: the pass that follows neither claims nor counts it.
        self.seen.lock().expect("scheduler lock").insert(scheduled.job.name, latest);
        if !retried {
            tracing::warn!(job = scheduled.job.name, "abandoned run not started again: a run of this job is going");
            return Ok(None);
        }
        tracing::warn!(job = scheduled.job.name, trigger = %dead.trigger, "abandoned run started again");
        Ok(Some(self.spawn_run(scheduled, run, now)))
    }

    /// The run that starts again, here, a dead scheduled run whose tick is still its job's
    /// latest (a daily or monthly run whose replica died would otherwise wait for its next
    /// tick), or the retry of such a tick that a shutdown interrupted
    /// ([`Abandoned::retried_tick`]), with its job and that tick; none otherwise.
    fn retry_of(&self, dead: &Abandoned, now: DateTime<Utc>) -> Option<(&ScheduledJob, JobRun, DateTime<Utc>)> {
        let scheduled = self.jobs.iter().find(|s| s.enabled && s.job.name == dead.job)?;
        let latest = latest_tick(&scheduled.schedule, self.timezone, now)?;
        let tick = dead.retried_tick(&scheduled.schedule, self.timezone)?;
        if tick != timestamp(latest) || self.is_running(scheduled.job.name) {
            return None;
        }
        Some((scheduled, new_run(scheduled.job.name, None, "retry", &self.runner, now), latest))
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
    /// next tick. At shutdown no run starts any more; the running ones, and the manual runs
    /// of the process ([`run_now`]), get `drain` to finish, then are interrupted
    /// ([`AppState::interrupt_jobs`]) and released to a live process.
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
        tasks.extend(self.state.manual_runs.take());
        let all_done = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(drain, all_done).await.is_err() {
            tracing::warn!("jobs still running at the shutdown deadline: interrupted");
            self.state.interrupt_jobs.cancel();
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
