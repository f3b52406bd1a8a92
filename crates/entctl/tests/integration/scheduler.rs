//! The scheduler on SQLite and PostgreSQL: jobs run concurrently, each with a
//! timeout and a cancellation; a job never overlaps itself; runs of dead
//! runners become `abandoned`; skipped and missed ticks are counted. Time is
//! the injected clock's; jobs are declared here and released by semaphores.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use entcp::api::jobs::{Job, ScheduledJob};
use entcp::api::scheduler::Scheduler;
use entcp::api::{metrics, AppState};
use entcp::clock::FixedClock;
use entcp::config::Config;
use entcp::error::Problem;
use entcp::jobs::{self, JobFuture, JobRun};
use entcp::store::Store;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Permits that let a held `slow` run finish.
static RELEASE: Semaphore = Semaphore::const_new(0);

/// A permit per run of `stuck` that started.
static STARTED: Semaphore = Semaphore::const_new(0);

fn slow(_: &AppState, _: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async {
        RELEASE.acquire().await.unwrap().forget();
        Ok("lente terminée".into())
    })
}

fn fast(_: &AppState, _: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async { Ok("rapide terminée".into()) })
}

fn stuck(_: &AppState, _: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async {
        STARTED.add_permits(1);
        std::future::pending::<()>().await;
        Ok("jamais".into())
    })
}

/// Waits (at most a minute) until a run of `stuck` started.
async fn started_stuck() {
    let started = tokio::time::timeout(std::time::Duration::from_secs(60), STARTED.acquire());
    started.await.expect("a run of `stuck` never started").unwrap().forget();
}

/// What a job runs.
type Run = for<'a> fn(&'a AppState, DateTime<Utc>) -> JobFuture<'a>;

/// The job `name` running `run`, every minute by default.
fn test_job(name: &'static str, run: Run) -> Job {
    Job { name, description: "test", default_schedule: "* * * * *", run }
}

/// The administrator's manual run of the [`test_job`] `name` running `run` on `app`, by `runner`
/// at `now`, as the API's `POST /jobs/{name}/run` makes it.
async fn run_now(
    app: &AppState,
    name: &'static str,
    run: Run,
    runner: &str,
    now: DateTime<Utc>,
) -> Result<JobRun, Problem> {
    entcp::api::scheduler::run_now(app, &common::admin(), &test_job(name, run), runner, now).await
}

/// [`run_now`] on a new app of `store`, in a task of its own as a request starts it.
fn spawn_run_now(
    store: &Store,
    name: &'static str,
    run: Run,
    runner: &'static str,
    now: DateTime<Utc>,
) -> tokio::task::JoinHandle<Result<JobRun, Problem>> {
    let app = state(store, common::t0());
    tokio::spawn(async move { run_now(&app, name, run, runner, now).await })
}

fn every_minute(name: &'static str, run: Run) -> ScheduledJob {
    every_minute_within(name, run, std::time::Duration::from_secs(3600))
}

fn every_minute_within(name: &'static str, run: Run, timeout: std::time::Duration) -> ScheduledJob {
    let job = test_job(name, run);
    let schedule = jobs::parse_schedule("* * * * *").unwrap();
    ScheduledJob { job, expression: "* * * * *".into(), schedule, enabled: true, timeout }
}

fn state(store: &Store, now: DateTime<Utc>) -> AppState {
    let data_dir = tempfile::tempdir().unwrap().keep();
    crate::common::app::app_state(
        store.clone(),
        Config { data_dir, ..Config::default() },
        Arc::new(FixedClock::new(now)),
    )
}

fn scheduler(store: &Store, runner: &str, jobs: Vec<ScheduledJob>) -> (Scheduler, AppState) {
    let app = state(store, common::t0());
    (Scheduler::with_jobs(app.clone(), runner, jobs).unwrap(), app)
}

async fn runs_of(store: &Store, job: &str) -> Vec<JobRun> {
    jobs::recent_runs(store, job, 100).await.unwrap()
}

/// Runs the loop of a scheduler of `runner` with the `stuck` job until its run starts, then
/// shuts the loop down with a drain deadline of 100 ms, the run still going.
async fn shut_down_while_stuck(store: &Store, runner: &str) {
    let (s, _) = scheduler(store, runner, vec![every_minute("stuck", stuck)]);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let looping = tokio::spawn(s.run_until(shutdown.clone(), std::time::Duration::from_millis(100)));
    started_stuck().await;
    shutdown.cancel();
    looping.await.unwrap();
}

/// Waits for the runs `spawn_due` started (interrupted by a cancel, or done) to end.
/// A scheduler `runner` of the one job `stuck`, its tick of minute 0 spawned and started: the
/// scheduler and that run.
async fn stuck_tick_started(store: &Store, runner: &str) -> (Scheduler, Vec<tokio::task::JoinHandle<JobRun>>) {
    let (s, _) = scheduler(store, runner, vec![every_minute("stuck", stuck)]);
    let ticked = s.spawn_due(minute(0)).await.unwrap();
    started_stuck().await;
    (s, ticked)
}

/// Cancels the `schedulers` and waits for their `runs` to end.
async fn cancelled(schedulers: &[&Scheduler], runs: Vec<tokio::task::JoinHandle<JobRun>>) {
    for s in schedulers {
        s.cancel();
    }
    for run in runs {
        run.await.unwrap();
    }
}

fn minute(n: i64) -> DateTime<Utc> {
    common::t0() + Duration::minutes(n) + Duration::milliseconds(250)
}

/// The value of one metric line of the process, 0 when absent.
fn metric(app: &AppState, series: &str) -> f64 {
    metrics::text(app)
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

backend_test!(a_long_run_never_delays_another_jobs_tick_and_its_own_next_tick_is_skipped_and_counted);
async fn a_long_run_never_delays_another_jobs_tick_and_its_own_next_tick_is_skipped_and_counted(
    db: crate::common::TestDb,
) {
    let (s, app) = scheduler(&db.store, "solo", vec![every_minute("slow", slow), every_minute("fast", fast)]);
    let mut first = s.spawn_due(minute(0)).await.unwrap();
    assert_eq!(first.len(), 2, "{}", db.name);
    let fast_run = first.pop().unwrap().await.unwrap();
    assert_eq!((fast_run.job.as_str(), fast_run.outcome.as_str()), ("fast", "success"));
    assert!(s.is_running("slow"));

    // A minute later the slow run still holds: fast runs, slow's tick is skipped.
    let second = s.spawn_due(minute(1)).await.unwrap();
    assert_eq!(second.len(), 1, "{}", db.name);
    let run = second.into_iter().next().unwrap().await.unwrap();
    assert_eq!((run.job.as_str(), run.outcome.as_str()), ("fast", "success"), "{}", db.name);
    assert_eq!(metric(&app, "entcp_job_ticks_skipped_total{job=\"slow\",reason=\"overlap\"}"), 1.0);

    RELEASE.add_permits(1);
    let slow_run = first.pop().unwrap().await.unwrap();
    assert_eq!(slow_run.outcome, "success", "{}", db.name);
    assert!(!s.is_running("slow"));
    assert_eq!(runs_of(&db.store, "fast").await.len(), 2);
    assert_eq!(runs_of(&db.store, "slow").await.len(), 1, "{}: the slow job overlapped itself", db.name);
    assert_eq!(metric(&app, "entcp_job_runs_total{job=\"fast\",outcome=\"success\"}"), 2.0);
    assert!(metric(&app, "entcp_job_last_success_timestamp_seconds{job=\"slow\"}") > 0.0);
}

backend_test!(a_run_past_its_timeout_is_interrupted_recorded_as_failed_and_the_job_runs_again_at_its_next_tick);
async fn a_run_past_its_timeout_is_interrupted_recorded_as_failed_and_the_job_runs_again_at_its_next_tick(
    db: crate::common::TestDb,
) {
    let job = every_minute_within("stuck", stuck, std::time::Duration::from_millis(50));
    let (s, _app) = scheduler(&db.store, "solo", vec![job]);
    let runs = s.run_due(minute(0)).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, "failure", "{}", db.name);
    assert!(runs[0].message.as_deref().unwrap().contains("délai dépassé"), "{:?}", runs[0].message);
    assert!(!s.is_running("stuck"));
    let recorded = runs_of(&db.store, "stuck").await;
    assert_eq!(recorded[0].outcome, "failure", "{}: the end of the run is recorded", db.name);
    assert_eq!(s.run_due(minute(1)).await.unwrap().len(), 1, "{}", db.name);
}

backend_test!(a_cancelled_scheduler_interrupts_its_runs_and_starts_no_more);
async fn a_cancelled_scheduler_interrupts_its_runs_and_starts_no_more(db: crate::common::TestDb) {
    let (s, running) = stuck_tick_started(&db.store, "solo").await;
    s.cancel();
    let run = running.into_iter().next().unwrap().await.unwrap();
    assert_eq!(run.outcome, "running", "{}: released to a live process, not failed", db.name);
    assert!(run.message.as_deref().unwrap().contains("arrêt"), "{:?}", run.message);
    assert!(s.spawn_due(minute(1)).await.unwrap().is_empty(), "{}: a run started after the cancel", db.name);
    assert_eq!(runs_of(&db.store, "stuck").await.len(), 1);
}

backend_test!(shutdown_stops_the_loop_at_once_and_interrupts_runs_still_going_at_the_deadline);
async fn shutdown_stops_the_loop_at_once_and_interrupts_runs_still_going_at_the_deadline(db: crate::common::TestDb) {
    shut_down_while_stuck(&db.store, "solo").await;
    let runs = runs_of(&db.store, "stuck").await;
    assert_eq!(runs.len(), 1, "{}", db.name);
    assert_eq!(runs[0].outcome, "running", "{}: {runs:?}", db.name);
    assert_eq!(runs[0].message.as_deref(), Some(jobs::INTERRUPTED_MESSAGE), "{}", db.name);
    assert!(runs[0].finished_at.is_none());
}

// SIGTERM: the loop of `entctl serve` stops and a run still going at the drain deadline is
// interrupted. Recorded as a failure, its tick was never run again (a monthly job waited a
// month); released instead, it is marked `abandoned` by the very next pass of a live replica
// (or of the process restarted), without the 2 min a dead process's run waits, and run again.
backend_test!(a_run_interrupted_by_a_shutdown_is_run_again_at_once_by_a_live_replica);
async fn a_run_interrupted_by_a_shutdown_is_run_again_at_once_by_a_live_replica(db: crate::common::TestDb) {
    shut_down_while_stuck(&db.store, "stopping-replica").await;

    a_live_replica_runs_the_interrupted_run_again(&db, "schedule").await;
}

// A retry run (no tick) interrupted by a shutdown in turn was abandoned and never run again:
// its tick waited for the next one. It is retried like the interrupted run of a tick, once,
// by one of the live replicas.
backend_test!(a_retry_run_interrupted_by_a_shutdown_is_run_again_once_by_one_live_replica);
async fn a_retry_run_interrupted_by_a_shutdown_is_run_again_once_by_one_live_replica(db: crate::common::TestDb) {
    let (first, ticked) = stuck_tick_started(&db.store, "first-replica").await;
    cancelled(&[&first], ticked).await;
    let (second, _) = scheduler(&db.store, "second-replica", vec![every_minute("stuck", stuck)]);
    let retry = second.spawn_due(minute(0)).await.unwrap();
    assert_eq!(retry.len(), 1, "{}: the interrupted tick is retried", db.name);
    started_stuck().await;
    second.cancel();
    let interrupted = retry.into_iter().next().unwrap().await.unwrap();
    assert_eq!((interrupted.trigger.as_str(), interrupted.outcome.as_str()), ("retry", "running"), "{}", db.name);

    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let (a, app_a) = scheduler(&db.store, "live-a", vec![every_minute("stuck", stuck)]);
    let (b, app_b) = scheduler(&replica_b, "live-b", vec![every_minute("stuck", stuck)]);
    let (started_a, started_b) = tokio::join!(a.spawn_due(minute(0)), b.spawn_due(minute(0)));
    let started: Vec<_> = started_a.unwrap().into_iter().chain(started_b.unwrap()).collect();
    assert_eq!(started.len(), 1, "{}: run again by one replica only", db.name);
    started_stuck().await;
    let runs = runs_of(&db.store, "stuck").await;
    let seen: Vec<(&str, &str, Option<&str>)> =
        runs.iter().map(|r| (r.trigger.as_str(), r.outcome.as_str(), r.message.as_deref())).collect();
    let released = Some(jobs::INTERRUPTED_MESSAGE);
    assert_eq!(
        seen,
        [("retry", "running", None), ("retry", "abandoned", released), ("schedule", "abandoned", released)],
        "{}",
        db.name
    );
    let abandoned = "entcp_job_runs_abandoned_total{job=\"stuck\"}";
    assert_eq!(metric(&app_a, abandoned) + metric(&app_b, abandoned), 1.0, "{}", db.name);
    let (later_a, later_b) = tokio::join!(a.spawn_due(minute(0)), b.spawn_due(minute(0)));
    assert!(later_a.unwrap().is_empty() && later_b.unwrap().is_empty(), "{}: run again once", db.name);
    cancelled(&[&a, &b], started).await;
    replica_b.close().await;
}

/// Inserts the run of a runner that beat last at `heartbeat`.
async fn running_run(store: &Store, job: &str, runner: &str, heartbeat: DateTime<Utc>) -> String {
    let id = entcp::store::new_id();
    sqlx::query(
        "INSERT INTO job_runs (id, job, tick, trigger, runner, started_at, heartbeat_at, outcome) \
         VALUES ($1, $2, NULL, 'manual', $3, $4, $5, 'running')",
    )
    .bind(&id)
    .bind(job)
    .bind(runner)
    .bind(entcp::store::timestamp(common::t0()))
    .bind(entcp::store::timestamp(heartbeat))
    .execute(store.pool())
    .await
    .unwrap();
    id
}

async fn outcome_of(store: &Store, id: &str) -> String {
    sqlx::query_scalar("SELECT outcome FROM job_runs WHERE id = $1").bind(id).fetch_one(store.pool()).await.unwrap()
}

backend_test!(a_run_whose_runner_stopped_beating_is_abandoned_by_the_next_pass_and_a_live_one_is_not);
async fn a_run_whose_runner_stopped_beating_is_abandoned_by_the_next_pass_and_a_live_one_is_not(
    db: crate::common::TestDb,
) {
    let dead = running_run(&db.store, "outbox-send", "killed-replica", common::t0()).await;
    let alive = running_run(&db.store, "tenants-reconcile", "live-replica", minute(9)).await;
    let (s, app) = scheduler(&db.store, "solo", vec![every_minute("fast", fast)]);
    s.run_due(minute(10)).await.unwrap();
    assert_eq!(outcome_of(&db.store, &dead).await, "abandoned", "{}", db.name);
    assert_eq!(outcome_of(&db.store, &alive).await, "running", "{}", db.name);
    assert_eq!(metric(&app, "entcp_job_runs_abandoned_total{job=\"outbox-send\"}"), 1.0);
    let finished = runs_of(&db.store, "outbox-send").await;
    assert!(finished[0].finished_at.is_some() && finished[0].message.is_some(), "{finished:?}");
}

backend_test!(ticks_missed_while_no_process_ran_are_counted_and_only_the_latest_runs);
async fn ticks_missed_while_no_process_ran_are_counted_and_only_the_latest_runs(db: crate::common::TestDb) {
    let (before, _) = scheduler(&db.store, "before-restart", vec![every_minute("fast", fast)]);
    assert_eq!(before.run_due(minute(0)).await.unwrap().len(), 1);
    let (after, app) = scheduler(&db.store, "after-restart", vec![every_minute("fast", fast)]);
    let runs = after.run_due(minute(5)).await.unwrap();
    assert_eq!(runs.len(), 1, "{}", db.name);
    assert_eq!(
        runs[0].tick.as_deref(),
        Some(entcp::store::timestamp(minute(5) - Duration::milliseconds(250)).as_str())
    );
    assert_eq!(metric(&app, "entcp_job_ticks_skipped_total{job=\"fast\",reason=\"missed\"}"), 4.0, "{}", db.name);
}

backend_test!(job_counters_are_those_of_the_process_not_of_the_shared_database);
async fn job_counters_are_those_of_the_process_not_of_the_shared_database(db: crate::common::TestDb) {
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let (a, app_a) = scheduler(&db.store, "replica-a", vec![every_minute("fast", fast)]);
    let (b, app_b) = scheduler(&replica_b, "replica-b", vec![every_minute("fast", fast)]);
    let (runs_a, runs_b) = tokio::join!(a.run_due(minute(0)), b.run_due(minute(0)));
    assert_eq!(runs_a.unwrap().len() + runs_b.unwrap().len(), 1);
    let series = "entcp_job_runs_total{job=\"fast\",outcome=\"success\"}";
    let mut counted = [metric(&app_a, series), metric(&app_b, series)];
    counted.sort_by(f64::total_cmp);
    assert_eq!(counted, [0.0, 1.0], "{}: each replica counts its own runs", db.name);
    replica_b.close().await;
}

backend_test!(a_daily_run_whose_replica_died_is_run_again_once_by_one_of_the_live_replicas);
async fn a_daily_run_whose_replica_died_is_run_again_once_by_one_of_the_live_replicas(db: crate::common::TestDb) {
    // Today's 03:00 (Paris) run was claimed by a replica killed while it ran: no heartbeat since.
    let tick = jobs::latest_tick(&daily("fast").schedule, chrono_tz::Europe::Paris, minute(0)).unwrap();
    jobs::claim_tick(&db.store, "fast", tick, "killed-replica", tick).await.unwrap().unwrap();

    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let (a, _) = scheduler(&db.store, "replica-a", vec![daily("fast")]);
    let (b, _) = scheduler(&replica_b, "replica-b", vec![daily("fast")]);
    let (runs_a, runs_b) = tokio::join!(a.run_due(minute(0)), b.run_due(minute(0)));
    let again: Vec<JobRun> = runs_a.unwrap().into_iter().chain(runs_b.unwrap()).collect();
    assert_eq!(again.len(), 1, "{}: run again by one replica only: {again:?}", db.name);
    assert_eq!((again[0].trigger.as_str(), again[0].outcome.as_str()), ("retry", "success"), "{}", db.name);
    let later = tokio::join!(a.run_due(minute(1)), b.run_due(minute(1)));
    assert!(later.0.unwrap().is_empty() && later.1.unwrap().is_empty(), "{}: run again once", db.name);
    let outcomes: Vec<String> = runs_of(&db.store, "fast").await.into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["success", "abandoned"], "{}", db.name);
    replica_b.close().await;

    // A run of a tick that a newer one has replaced is not run again: the newer tick ran.
    let yesterday = tick - Duration::days(1);
    jobs::claim_tick(&db.store, "fast", yesterday, "killed-replica", yesterday).await.unwrap().unwrap();
    assert!(a.run_due(minute(2)).await.unwrap().is_empty(), "{}", db.name);
    assert_eq!(runs_of(&db.store, "fast").await.len(), 3, "{}", db.name);
}

// A manual run (`POST /jobs/{name}/run`, `entctl jobs run`) took no claim: it ran beside the
// scheduled run of the same job on another replica, and their mails went twice. It is refused
// (409) while a run of the job is going anywhere, and a tick due meanwhile is skipped.
backend_test!(a_manual_run_is_refused_with_a_conflict_while_the_job_runs_on_another_replica);
async fn a_manual_run_is_refused_with_a_conflict_while_the_job_runs_on_another_replica(db: crate::common::TestDb) {
    let (a, ticked) = stuck_tick_started(&db.store, "replica-a").await;
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let app_b = state(&replica_b, common::t0());
    let refused = run_now(&app_b, "stuck", fast, "replica-b", minute(0)).await;
    let problem = refused.expect_err("a second run of a running job");
    assert_eq!(problem.kind.status(), 409, "{}: {problem:?}", db.name);
    assert!(problem.detail.contains("une exécution de « stuck » est en cours depuis le"), "{}", problem.detail);
    assert_eq!(runs_of(&db.store, "stuck").await.len(), 1, "{}: the refused run left no row", db.name);
    cancelled(&[&a], ticked).await;
    replica_b.close().await;
}

backend_test!(a_tick_due_while_a_manual_run_goes_on_another_replica_is_skipped_and_counted);
async fn a_tick_due_while_a_manual_run_goes_on_another_replica_is_skipped_and_counted(db: crate::common::TestDb) {
    let manual = spawn_run_now(&db.store, "stuck", stuck, "replica-a", minute(1));
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let (b, app_b) = scheduler(&replica_b, "replica-b", vec![every_minute("stuck", fast)]);
    started_stuck().await;
    assert!(b.spawn_due(minute(1)).await.unwrap().is_empty(), "{}: the tick ran beside the manual run", db.name);
    assert_eq!(metric(&app_b, "entcp_job_ticks_skipped_total{job=\"stuck\",reason=\"overlap\"}"), 1.0, "{}", db.name);
    manual.abort();
    replica_b.close().await;
}

// A run whose heartbeat stopped (a stalled replica) was marked `abandoned` and run again by a
// live one; the stalled run, resuming, then wrote `success` over `abandoned`. Its end now
// leaves the row alone, is counted as `lost`, and its heartbeat finds it lost.
backend_test!(a_run_another_replica_took_over_neither_beats_nor_ends_over_abandoned);
async fn a_run_another_replica_took_over_neither_beats_nor_ends_over_abandoned(db: crate::common::TestDb) {
    let (a, app_a) = scheduler(&db.store, "stalled-replica", vec![every_minute("slow", slow)]);
    let mut held = a.spawn_due(minute(0)).await.unwrap();
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let (b, _) = scheduler(&replica_b, "live-replica", vec![every_minute("slow", fast)]);
    let taken_over = b.run_due(minute(10)).await.unwrap();
    assert_eq!(taken_over.len(), 1, "{}", db.name);
    let stalled = runs_of(&db.store, "slow").await.into_iter().find(|r| r.runner == "stalled-replica").unwrap();
    assert_eq!(stalled.outcome, "abandoned", "{}", db.name);
    assert!(!jobs::touch_heartbeat(&db.store, &stalled, minute(10)).await.unwrap(), "{}: beat on", db.name);

    RELEASE.add_permits(1);
    let ended = held.pop().unwrap().await.unwrap();
    assert_eq!(ended.outcome, "lost", "{}: {ended:?}", db.name);
    let runs = runs_of(&db.store, "slow").await;
    let seen: Vec<(&str, &str)> = runs.iter().map(|r| (r.runner.as_str(), r.outcome.as_str())).collect();
    assert_eq!(seen, [("live-replica", "success"), ("stalled-replica", "abandoned")], "{}", db.name);
    assert_eq!(metric(&app_a, "entcp_job_runs_total{job=\"slow\",outcome=\"lost\"}"), 1.0, "{}", db.name);
    assert_eq!(metric(&app_a, "entcp_job_runs_total{job=\"slow\",outcome=\"success\"}"), 0.0, "{}", db.name);
    replica_b.close().await;
}

backend_test!(a_heartbeat_touches_its_own_running_run_only);
async fn a_heartbeat_touches_its_own_running_run_only(db: crate::common::TestDb) {
    let run = jobs::claim_tick(&db.store, "fast", minute(0), "replica-a", minute(0)).await.unwrap().unwrap();
    assert!(jobs::touch_heartbeat(&db.store, &run, minute(1)).await.unwrap(), "{}", db.name);
    let other = entcp::jobs::JobRun { runner: "replica-b".into(), ..run.clone() };
    assert!(!jobs::touch_heartbeat(&db.store, &other, minute(1)).await.unwrap(), "{}: not its run", db.name);
    let dead = jobs::dead_runs(&db.store, "replica-b", &[], minute(10)).await.unwrap();
    assert_eq!(dead.len(), 1, "{}", db.name);
    assert_eq!(jobs::abandon_run(&db.store, &dead[0], minute(10), None).await.unwrap(), Some(false), "{}", db.name);
    assert_eq!(
        jobs::abandon_run(&db.store, &dead[0], minute(10), None).await.unwrap(),
        None,
        "{}: marked once",
        db.name
    );
    assert!(!jobs::touch_heartbeat(&db.store, &run, minute(11)).await.unwrap(), "{}: abandoned", db.name);
    let mut ended = run.clone();
    ended.outcome = "success".into();
    ended.finished_at = Some(entcp::store::timestamp(minute(11)));
    assert!(!jobs::record_end(&db.store, &ended).await.unwrap(), "{}", db.name);
    assert_eq!(outcome_of(&db.store, &run.id).await, "abandoned", "{}", db.name);
}

// A run whose end the database refused (even after the retries) stayed `running`, and the one
// running run per job made every later tick of the job a no-op, on a single node, until the
// process restarted. A later pass of the same scheduler abandons it once its heartbeat expired
// (it is not in flight here any more), and the job runs again.
backend_test!(a_run_whose_end_could_not_be_recorded_no_longer_blocks_its_job_in_its_own_process);
async fn a_run_whose_end_could_not_be_recorded_no_longer_blocks_its_job_in_its_own_process(db: crate::common::TestDb) {
    let (s, app) = scheduler(&db.store, "solo", vec![every_minute("fast", fast)]);
    common::inject_fault(&db.store, "job_runs", "UPDATE", "NEW.outcome = 'success'").await;
    assert_eq!(s.run_due(minute(0)).await.unwrap().len(), 1, "{}", db.name);
    common::lift_fault(&db.store, "job_runs").await;
    assert_eq!(runs_of(&db.store, "fast").await[0].outcome, "running", "{}: its end was refused", db.name);
    assert!(s.run_due(minute(1)).await.unwrap().is_empty(), "{}: its heartbeat is still fresh", db.name);

    let later = s.run_due(minute(5)).await.unwrap();
    assert_eq!(later.len(), 1, "{}: the job runs again", db.name);
    assert_eq!(later[0].outcome, "success", "{}: {later:?}", db.name);
    let runs = runs_of(&db.store, "fast").await;
    let seen: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(seen, ["success", "abandoned"], "{}", db.name);
    assert_eq!(metric(&app, "entcp_job_runs_abandoned_total{job=\"fast\"}"), 1.0, "{}", db.name);
}

fn daily(name: &'static str) -> ScheduledJob {
    let job = Job { name, description: "test", default_schedule: "0 3 * * *", run: fast };
    let schedule = jobs::parse_schedule("0 3 * * *").unwrap();
    ScheduledJob {
        job,
        expression: "0 3 * * *".into(),
        schedule,
        enabled: true,
        timeout: std::time::Duration::from_secs(3600),
    }
}

// The runs of a dead replica were all marked `abandoned` in one statement, then their retries
// inserted one by one: a retry insert that failed dropped the retries of the others too, and
// every one of those daily runs waited for the next day. Each run is now marked with its retry in
// one transaction: a failed retry leaves its run `running` for the next pass (counted), and the
// other runs are retried at once.
backend_test!(a_retry_that_cannot_be_recorded_loses_neither_its_run_nor_the_other_retries);
async fn a_retry_that_cannot_be_recorded_loses_neither_its_run_nor_the_other_retries(db: crate::common::TestDb) {
    let tick = jobs::latest_tick(&daily("daily-a").schedule, chrono_tz::Europe::Paris, minute(0)).unwrap();
    jobs::claim_tick(&db.store, "daily-a", tick, "killed-replica", tick).await.unwrap().unwrap();
    let b_started = tick + Duration::seconds(1);
    jobs::claim_tick(&db.store, "daily-b", tick, "killed-replica", b_started).await.unwrap().unwrap();
    let (s, app) = scheduler(&db.store, "live-replica", vec![daily("daily-a"), daily("daily-b")]);

    common::inject_fault(&db.store, "job_runs", "INSERT", "NEW.job = 'daily-a' AND NEW.tick IS NULL").await;
    let runs = s.run_due(minute(0)).await.unwrap();
    common::lift_fault(&db.store, "job_runs").await;
    let retried: Vec<(&str, &str, &str)> =
        runs.iter().map(|r| (r.job.as_str(), r.trigger.as_str(), r.outcome.as_str())).collect();
    assert_eq!(retried, [("daily-b", "retry", "success")], "{}", db.name);
    let a: Vec<String> = runs_of(&db.store, "daily-a").await.into_iter().map(|r| r.outcome).collect();
    assert_eq!(a, ["running"], "{}: not abandoned without its retry", db.name);
    assert_eq!(metric(&app, "entcp_job_abandon_failures_total{job=\"daily-a\"}"), 1.0, "{}", db.name);

    let again = s.run_due(minute(1)).await.unwrap();
    let retried: Vec<(&str, &str, &str)> =
        again.iter().map(|r| (r.job.as_str(), r.trigger.as_str(), r.outcome.as_str())).collect();
    assert_eq!(retried, [("daily-a", "retry", "success")], "{}: retried at the next pass", db.name);
    for job in ["daily-a", "daily-b"] {
        let outcomes: Vec<String> = runs_of(&db.store, job).await.into_iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, ["success", "abandoned"], "{}: {job}", db.name);
    }
    assert_eq!(metric(&app, "entcp_job_runs_abandoned_total{job=\"daily-a\"}"), 1.0, "{}", db.name);
}

// A manual run (`POST /jobs/{name}/run`, `entctl jobs run`) ignored the shutdown: cut by the
// process's exit, its row stayed `running` for 2 min (its job blocked meanwhile), then was
// marked `abandoned` and never run again. It now gets the drain like a scheduled run, is
// interrupted and released at the deadline, and the next pass of a live replica runs it again.
backend_test!(a_manual_run_interrupted_by_a_shutdown_is_released_and_run_again_by_a_live_replica);
async fn a_manual_run_interrupted_by_a_shutdown_is_released_and_run_again_by_a_live_replica(db: crate::common::TestDb) {
    let (stopping, app) = scheduler(&db.store, "stopping-replica", vec![every_minute("stuck", stuck)]);
    let manual = tokio::spawn(async move { run_now(&app, "stuck", stuck, "stopping-replica", minute(0)).await });
    started_stuck().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    shutdown.cancel();
    stopping.run_until(shutdown, std::time::Duration::from_millis(100)).await;
    let run = manual.await.unwrap().unwrap();
    assert_eq!((run.trigger.as_str(), run.outcome.as_str()), ("manual", "running"), "{}: {run:?}", db.name);
    assert_eq!(run.message.as_deref(), Some(jobs::INTERRUPTED_MESSAGE), "{}", db.name);
    let runs = runs_of(&db.store, "stuck").await;
    assert_eq!(runs.len(), 1, "{}", db.name);
    assert_eq!(runs[0].message.as_deref(), Some(jobs::INTERRUPTED_MESSAGE), "{}: released", db.name);
    assert!(runs[0].finished_at.is_none(), "{}", db.name);

    a_live_replica_runs_the_interrupted_run_again(&db, "manual").await;
}

/// A second replica's next pass abandons the interrupted run (of `trigger`) and retries it once.
async fn a_live_replica_runs_the_interrupted_run_again(db: &crate::common::TestDb, trigger: &str) {
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let (live, app) = scheduler(&replica_b, "live-replica", vec![every_minute("stuck", stuck)]);
    let started = live.spawn_due(minute(0)).await.unwrap();
    assert_eq!(started.len(), 1, "{}: the interrupted {trigger} run is run again", db.name);
    started_stuck().await;
    let runs = runs_of(&db.store, "stuck").await;
    let seen: Vec<(&str, &str, Option<&str>)> =
        runs.iter().map(|r| (r.trigger.as_str(), r.outcome.as_str(), r.message.as_deref())).collect();
    assert_eq!(
        seen,
        [("retry", "running", None), (trigger, "abandoned", Some(jobs::INTERRUPTED_MESSAGE))],
        "{}",
        db.name
    );
    assert_eq!(metric(&app, "entcp_job_runs_abandoned_total{job=\"stuck\"}"), 1.0, "{}", db.name);
    cancelled(&[&live], started).await;
    replica_b.close().await;
}

// The API's manual run ran inside the request: a client that hung up cut it half-way. It runs
// in its own task now, to its end.
backend_test!(a_manual_run_whose_caller_hangs_up_runs_to_its_end);
async fn a_manual_run_whose_caller_hangs_up_runs_to_its_end(db: crate::common::TestDb) {
    let caller = spawn_run_now(&db.store, "slow", slow, "solo", minute(0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while runs_of(&db.store, "slow").await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "{}: the run never started", db.name);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    RELEASE.add_permits(1);
    loop {
        let runs = runs_of(&db.store, "slow").await;
        if runs[0].outcome != "running" {
            assert_eq!((runs[0].outcome.as_str(), runs[0].message.as_deref()), ("success", Some("lente terminée")));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}: the run was cut with its caller", db.name);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

// A pass whose claim of one job failed returned the error with `?`: the runs it had already
// started lost their handles, were never interrupted at shutdown and stayed `running` with no
// word. The failing job is now logged and tried again at the next pass; the others are kept.
backend_test!(a_claim_that_fails_leaves_the_runs_the_pass_started_drained_at_shutdown);
async fn a_claim_that_fails_leaves_the_runs_the_pass_started_drained_at_shutdown(db: crate::common::TestDb) {
    common::inject_fault(&db.store, "job_runs", "INSERT", "NEW.job = 'claim-fails'").await;
    let (s, _) = scheduler(&db.store, "solo", vec![every_minute("stuck", stuck), every_minute("claim-fails", fast)]);
    let started = s.spawn_due(minute(0)).await.expect("the pass goes on past the failed claim");
    assert_eq!(started.len(), 1, "{}: the run of `stuck` keeps its handle", db.name);
    started_stuck().await;
    cancelled(&[&s], started).await;
    let runs = runs_of(&db.store, "stuck").await;
    assert_eq!(runs.len(), 1, "{}", db.name);
    assert_eq!(runs[0].message.as_deref(), Some(jobs::INTERRUPTED_MESSAGE), "{}: interrupted at shutdown", db.name);
    assert!(runs_of(&db.store, "claim-fails").await.is_empty(), "{}", db.name);

    common::lift_fault(&db.store, "job_runs").await;
    let (s, _) = scheduler(&db.store, "solo", vec![every_minute("claim-fails", fast)]);
    let retried = s.run_due(minute(0)).await.unwrap();
    assert_eq!(retried.len(), 1, "{}: the failed claim is tried again at the next pass", db.name);
}

// The reconcile queue's own full passes (and the SQLite change watcher) tick on
// `clock::ticks_every`: a pass that outlasted the period was followed by one back-to-back pass
// per period missed (tokio's default burst); now the next tick comes a full period later.
#[tokio::test]
async fn a_periodic_pass_that_outlasted_its_period_is_not_followed_by_a_burst_of_missed_ticks() {
    let period = std::time::Duration::from_millis(100);
    let mut ticks = entcp::clock::ticks_every(period);
    ticks.tick().await;
    tokio::time::sleep(period * 6).await; // a long pass: five ticks missed

    // The pass that was due runs once, the next one a full period after it: a burst of missed
    // ticks would take no time (a descheduled thread only makes the two ticks take longer).
    let since = std::time::Instant::now();
    ticks.tick().await;
    ticks.tick().await;
    let took = since.elapsed();
    assert!(took >= period, "a missed tick fired at once after the long pass: two ticks in {took:?}");
}
