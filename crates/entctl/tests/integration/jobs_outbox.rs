//! Scheduled jobs and the e-mail outbox, on SQLite and PostgreSQL: one run per
//! tick across replicas, and e-mails delivered exactly once to a real SMTP
//! server (`tests/support/smtp_sink.py`), including after it was down.

use crate::common;
use common::queue_test_mail;

use chrono::{DateTime, Duration, Utc};
use entcp::api::scheduler::Scheduler;
use entcp::api::{app, AppState};
use entcp::clock::FixedClock;
use entcp::config::Config;
use entcp::jobs;
use entcp::notify::{self, SendReport};
use entcp::store::Store;
use serde_json::{json, Value};
use std::sync::Arc;

// --- fixtures ---------------------------------------------------------------

fn state(store: &Store, config: &Config, now: DateTime<Utc>) -> AppState {
    crate::common::app::app_state(store.clone(), config.clone(), Arc::new(FixedClock::new(now)))
}

use common::smtp::{
    file_config, file_config_in_temp, free_port, silent_smtp_server, smtp_config, smtp_on_free_port,
    smtp_sink_and_config, smtp_sink_available, SmtpSink,
};

async fn send(store: &Store, config: &Config, sender: &str, now: DateTime<Utc>) -> SendReport {
    notify::send_due(store, config, sender, &FixedClock::new(now)).await.unwrap()
}

async fn outbox_count(store: &Store) -> i64 {
    common::count(store, "SELECT COUNT(*) AS n FROM outbox", &[]).await
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

// --- jobs ---------------------------------------------------------------------

/// Disables every job but `names`, so that jobs added later do not change what these tests count.
fn only_jobs(config: &mut entcp::config::Config, names: &[&str]) {
    for job in entcp::api::jobs::all() {
        config.jobs.each.entry(job.name.to_string()).or_default().enabled = names.contains(&job.name);
    }
}

backend_test!(two_schedulers_on_one_database_run_each_tick_once);
async fn two_schedulers_on_one_database_run_each_tick_once(db: crate::common::TestDb) {
    let (_data, mut config) = file_config_in_temp();
    // Three jobs due at t0, then only the every-minute one in the loop below.
    only_jobs(&mut config, &["conventions-daily", "outbox-purge", "outbox-send"]);
    let t0 = common::t0();
    let replica_b = Store::connect(&db.url, None).await.unwrap();
    let a = Scheduler::new(state(&db.store, &config, t0), "replica-a").unwrap();
    let b = Scheduler::new(state(&replica_b, &config, t0), "replica-b").unwrap();

    let (runs_a, runs_b) = tokio::join!(a.run_due(t0), b.run_due(t0));
    let first: Vec<_> = runs_a.unwrap().into_iter().chain(runs_b.unwrap()).collect();
    let mut names: Vec<_> = first.iter().map(|r| r.job.as_str()).collect();
    names.sort();
    assert_eq!(names, ["conventions-daily", "outbox-purge", "outbox-send"], "{}", db.name);
    assert!(first.iter().all(|r| r.outcome == "success"), "{first:?}");

    for minute in 1..=10 {
        let now = t0 + Duration::minutes(minute) + Duration::milliseconds(250);
        let (runs_a, runs_b) = tokio::join!(a.run_due(now), b.run_due(now));
        let runs: Vec<_> = runs_a.unwrap().into_iter().chain(runs_b.unwrap()).collect();
        assert_eq!(runs.len(), 1, "{} minute {minute}: {runs:?}", db.name);
        assert_eq!(runs[0].job, "outbox-send");
        let again = a.run_due(now).await.unwrap();
        assert!(again.is_empty(), "{}: a tick ran twice", db.name);
    }

    let duplicated_ticks: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) AS n FROM (SELECT job, tick FROM job_runs \
         GROUP BY job, tick HAVING COUNT(*) > 1) AS d",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(duplicated_ticks, 0, "{}", db.name);
    let send_runs = jobs::recent_runs(&db.store, "outbox-send", 100).await.unwrap();
    assert_eq!(send_runs.len(), 11, "{}", db.name);
    assert!(send_runs.iter().all(|r| r.finished_at.is_some()));
    replica_b.close().await;
}

backend_test!(a_disabled_job_never_runs_and_a_manual_run_is_recorded);
async fn a_disabled_job_never_runs_and_a_manual_run_is_recorded(db: crate::common::TestDb) {
    let (_data, mut config) = file_config_in_temp();
    only_jobs(&mut config, &["outbox-send"]);
    let now = common::t0();
    let app = state(&db.store, &config, now);
    let scheduler = Scheduler::new(app.clone(), "solo").unwrap();
    let runs = scheduler.run_due(now).await.unwrap();
    assert_eq!(runs.len(), 1, "{}", db.name);
    assert_eq!(runs[0].job, "outbox-send");

    let purge = entcp::api::jobs::find("outbox-purge").unwrap();
    let manual = entcp::api::scheduler::run_now(&app, &common::admin(), &purge, "cli", now).await.unwrap();
    assert_eq!(manual.trigger, "manual");
    assert_eq!(manual.outcome, "success", "{manual:?}");
    assert!(manual.tick.is_none());
    let recorded = jobs::recent_runs(&db.store, "outbox-purge", 5).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].message, manual.message);
}

// --- outbox -------------------------------------------------------------------

/// The clock of a sending pass whose first step (the claim) reads `start` and every later
/// one `start + later`: a pass that lasted that long before this message's turn.
struct LongPass {
    start: DateTime<Utc>,
    later: Duration,
    calls: std::sync::atomic::AtomicU32,
}

impl entcp::clock::Clock for LongPass {
    fn now(&self) -> DateTime<Utc> {
        let first = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        if first {
            self.start
        } else {
            self.start + self.later
        }
    }
}

// A long pass reckoned a failed message's next attempt from the pass's start: already due,
// it was retried back to back in the same pass; and a message sent late had the pass's start
// as its `sent_at`. Both now read the clock when they happen.
backend_test!(a_message_failing_late_in_a_long_pass_waits_its_backoff_and_one_sent_late_is_dated_when_sent);
async fn a_message_failing_late_in_a_long_pass_waits_its_backoff_and_one_sent_late_is_dated_when_sent(
    db: crate::common::TestDb,
) {
    let (data, _port, refused) = smtp_on_free_port();
    let t0 = common::t0();
    let id = queue_test_mail(&db.store, "directrice@ecole.example.fr", t0).await;
    let half_an_hour = LongPass { start: t0, later: Duration::minutes(30), calls: Default::default() };
    let report = notify::send_due(&db.store, &refused, "sender", &half_an_hour).await.unwrap();
    assert_eq!(report, SendReport { retried: 1, ..SendReport::default() }, "{}: retried at once", db.name);
    let waiting = notify::get_message(&db.store, &id).await.unwrap();
    assert_eq!(waiting.attempts, 1, "{}", db.name);
    let expected = t0 + Duration::minutes(30) + notify::backoff(1);
    assert_eq!(at(&waiting.next_attempt_at), expected, "{}", db.name);

    let to_files = file_config(data.path());
    let late = LongPass { start: expected, later: Duration::minutes(30), calls: Default::default() };
    let report = notify::send_due(&db.store, &to_files, "sender", &late).await.unwrap();
    assert_eq!(report.sent, 1, "{}: {report:?}", db.name);
    let sent = notify::get_message(&db.store, &id).await.unwrap();
    assert_eq!(sent.sent_at.as_deref().map(at), Some(expected + Duration::minutes(30)), "{}", db.name);
}

backend_test!(a_mail_queued_while_the_smtp_server_is_down_reaches_it_once_when_it_is_back);
async fn a_mail_queued_while_the_smtp_server_is_down_reaches_it_once_when_it_is_back(db: crate::common::TestDb) {
    if !smtp_sink_available() {
        return;
    }
    let (_data, port, config) = smtp_on_free_port();
    let t0 = common::t0();
    let id = queue_test_mail(&db.store, "directrice@ecole.example.fr", t0).await;

    let report = send(&db.store, &config, "sender", t0).await;
    assert_eq!(report.retried, 1, "{}: {report:?}", db.name);
    let waiting = notify::get_message(&db.store, &id).await.unwrap();
    assert_eq!(waiting.status, "pending");
    assert_eq!(waiting.attempts, 1);
    assert!(waiting.last_error.as_deref().unwrap().contains("SMTP"));
    assert!(at(&waiting.next_attempt_at) > t0);
    let too_soon = send(&db.store, &config, "sender", t0 + Duration::seconds(30)).await;
    assert_eq!(too_soon, SendReport::default(), "{}", db.name);

    let sink = SmtpSink::start(port);
    let later = t0 + Duration::minutes(2);
    let report = send(&db.store, &config, "sender", later).await;
    assert_eq!(report.sent, 1, "{}: {report:?}", db.name);
    assert_eq!(sink.received().len(), 1, "{}", db.name);
    assert_eq!(sink.copies_of(&id), 1, "{}", db.name);
    assert!(sink.received()[0].contains("directrice@ecole.example.fr"));
    let sent = notify::get_message(&db.store, &id).await.unwrap();
    assert_eq!(sent.status, "sent");
    assert_eq!(sent.sent_at.as_deref().map(at), Some(later));

    let after = send(&db.store, &config, "sender", later + Duration::hours(1)).await;
    assert_eq!(after, SendReport::default(), "{}", db.name);
    assert_eq!(sink.received().len(), 1, "{}: sent twice", db.name);
}

backend_test!(two_concurrent_senders_deliver_each_message_exactly_once);
async fn two_concurrent_senders_deliver_each_message_exactly_once(db: crate::common::TestDb) {
    if !smtp_sink_available() {
        return;
    }
    let (_data, sink, config) = sink_in_small_batches();
    let t0 = common::t0();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(queue_test_mail(&db.store, &format!("agent{i}@ac-creteil.fr"), t0).await);
    }

    let (a, b) = two_senders_at_once(&db, &config, t0).await;
    assert_eq!(a.sent + b.sent, 12, "{}: {a:?} {b:?}", db.name);
    assert_eq!(a.retried + b.retried + a.failed + b.failed, 0);
    assert_eq!(sink.received().len(), 12, "{}", db.name);
    for id in &ids {
        assert_eq!(sink.copies_of(id), 1, "{}: message {id}", db.name);
        assert_eq!(notify::get_message(&db.store, id).await.unwrap().status, "sent");
    }
}

/// A real SMTP sink and a configuration sending to it two messages a batch, so that two
/// senders share the work (call where [`smtp_sink_available`]).
fn sink_in_small_batches() -> (tempfile::TempDir, SmtpSink, Config) {
    let (data, sink, mut config) = smtp_sink_and_config();
    config.mail.batch_size = 2;
    (data, sink, config)
}

/// Two senders sending what is due at `now` at once, each on its own connection to `db`.
async fn two_senders_at_once(
    db: &crate::common::TestDb,
    config: &Config,
    now: DateTime<Utc>,
) -> (SendReport, SendReport) {
    let other = Store::connect(&db.url, None).await.unwrap();
    let reports = tokio::join!(send(&db.store, config, "sender-a", now), send(&other, config, "sender-b", now));
    other.close().await;
    reports
}

/// Three people a tenant's suspension concerns, as `tenants::notices` tells them.
const CONCERNED: [&str; 3] = ["dan@ac-creteil.fr", "dpd@ac-creteil.fr", "ent@mairie-fresnes.fr"];

/// A real SMTP sink, a configuration sending to it, and the notice of a suspension queued to
/// [`CONCERNED`] at t0 ([`queue_suspension`]).
struct Suspension {
    sink: SmtpSink,
    config: Config,
    ids: Vec<String>,
    t0: DateTime<Utc>,
    _data: tempfile::TempDir,
}

/// [`Suspension`]; `None` where the SMTP sink cannot run.
async fn suspension_to_a_sink(db: &crate::common::TestDb) -> Option<Suspension> {
    if !smtp_sink_available() {
        return None;
    }
    let (_data, sink, config) = smtp_sink_and_config();
    let t0 = common::t0();
    let ids = queue_suspension(&db.store, t0).await;
    Some(Suspension { sink, config, ids, t0, _data })
}

/// Queues the `tenant` notice of a suspension to [`CONCERNED`] at `now`; its outbox ids.
async fn queue_suspension(store: &Store, now: DateTime<Utc>) -> Vec<String> {
    let notice = notify::Notice::event("tenant", CONCERNED.map(String::from).to_vec(), "suspended").with(json!({
        "slug": "doisneau", "hostname": "doisneau.ent.fr", "organisation": "École Robert Doisneau",
        "reason": "impayés" }));
    let mut tx = store.begin_write().await.unwrap();
    let ids = notice.enqueue(&mut tx, now).await.unwrap();
    tx.commit().await.unwrap();
    ids
}

/// Asserts that `sink` received one message per address of `to`, each addressed to that person
/// alone (headers and envelope), naming none of the others.
fn each_alone(sink: &SmtpSink, to: &[&str], db: &str) {
    let deliveries = sink.deliveries();
    let mut reached: Vec<&str> = Vec::new();
    for delivery in &deliveries {
        let [addressee]: [String; 1] =
            delivery.addressees().try_into().unwrap_or_else(|a| panic!("{db}: one To: only: {a:?}"));
        let who = addressee.strip_prefix("To: ").unwrap_or_else(|| panic!("{db}: {addressee}"));
        assert_eq!(delivery.rcpt_to, [who], "{db}: the envelope goes to the addressee only");
        let others = to.iter().filter(|other| **other != who && delivery.raw.contains(*other));
        assert_eq!(others.count(), 0, "{db}: the mail to {who} names another recipient: {}", delivery.raw);
        reached.push(to.iter().find(|t| **t == who).unwrap_or_else(|| panic!("{db}: sent to {who}")));
    }
    reached.sort();
    let mut expected = to.to_vec();
    expected.sort();
    assert_eq!(reached, expected, "{db}: each recipient once");
}

// A DPO's finding: one message to every recipient of a notice showed each the others'
// addresses. Each now gets a message of their own.
backend_test!(a_notice_to_three_people_reaches_each_alone_in_a_message_of_their_own);
async fn a_notice_to_three_people_reaches_each_alone_in_a_message_of_their_own(db: crate::common::TestDb) {
    let Some(Suspension { sink, config, ids, t0, .. }) = suspension_to_a_sink(&db).await else { return };
    assert_eq!(ids.len(), 3, "{}: a message per recipient", db.name);

    let report = send(&db.store, &config, "sender", t0).await;
    assert_eq!(report, SendReport { sent: 3, ..SendReport::default() }, "{}", db.name);
    each_alone(&sink, &CONCERNED, db.name);
    for (id, to) in ids.iter().zip(CONCERNED) {
        let message = notify::get_message(&db.store, id).await.unwrap();
        assert_eq!((message.recipients, message.status.as_str()), (vec![to.to_string()], "sent"), "{}", db.name);
        assert_eq!(sink.copies_of(id), 1, "{}: under its own Message-ID", db.name);
        assert!(sink.text_of(id).contains("Motif : impayés"), "{}: the notice itself", db.name);
    }
}

backend_test!(a_recipient_the_server_refuses_is_retried_alone_without_resending_to_the_others);
async fn a_recipient_the_server_refuses_is_retried_alone_without_resending_to_the_others(db: crate::common::TestDb) {
    let Some(Suspension { sink, config, ids, t0, .. }) = suspension_to_a_sink(&db).await else { return };
    sink.refuse(CONCERNED[1]);

    let report = send(&db.store, &config, "sender", t0).await;
    assert_eq!(report, SendReport { sent: 2, retried: 1, ..SendReport::default() }, "{}", db.name);
    each_alone(&sink, &[CONCERNED[0], CONCERNED[2]], db.name);
    let refused = notify::get_message(&db.store, &ids[1]).await.unwrap();
    assert_eq!((refused.status.as_str(), refused.attempts), ("pending", 1), "{}", db.name);
    assert!(refused.last_error.as_deref().unwrap().contains("SMTP"), "{}: {refused:?}", db.name);

    sink.accept_all();
    let too_soon = send(&db.store, &config, "sender", t0 + Duration::seconds(30)).await;
    assert_eq!(too_soon, SendReport::default(), "{}: its backoff first", db.name);
    let report = send(&db.store, &config, "sender", t0 + notify::backoff(1)).await;
    assert_eq!(report, SendReport { sent: 1, ..SendReport::default() }, "{}: the refused one alone", db.name);
    each_alone(&sink, &CONCERNED, db.name);
    assert_eq!(send(&db.store, &config, "sender", t0 + Duration::hours(1)).await, SendReport::default());
    assert_eq!(sink.received().len(), 3, "{}: nobody got it twice", db.name);
}

/// Queues, as the outbox did before each recipient had a message of their own, one message to
/// all of `to`, already tried once; its id.
async fn queue_to_all_at_once(store: &Store, to: &[&str], now: DateTime<Utc>) -> String {
    let id = entcp::store::new_id();
    sqlx::query(
        "INSERT INTO outbox (id, created_at, recipients, template, context, status, attempts, next_attempt_at, \
         last_error) VALUES ($1, $2, $3, 'test', $4, 'pending', 1, $2, 'envoi SMTP impossible : connexion refusée')",
    )
    .bind(&id)
    .bind(entcp::store::timestamp(now))
    .bind(serde_json::to_string(to).unwrap())
    .bind(json!({ "requested_by": "avant" }).to_string())
    .execute(store.pool())
    .await
    .unwrap();
    id
}

backend_test!(a_message_queued_to_several_people_before_is_split_and_reaches_each_alone);
async fn a_message_queued_to_several_people_before_is_split_and_reaches_each_alone(db: crate::common::TestDb) {
    if !smtp_sink_available() {
        return;
    }
    let (_data, sink, config) = smtp_sink_and_config();
    let t0 = common::t0();
    let old = queue_to_all_at_once(&db.store, &CONCERNED, t0 - Duration::hours(1)).await;

    let report = send(&db.store, &config, "sender", t0).await;
    assert_eq!(report, SendReport { sent: 3, split: 1, ..SendReport::default() }, "{}", db.name);
    assert!(report.summary().contains("1 courriel(s) à plusieurs destinataires séparé(s)"), "{}", report.summary());
    each_alone(&sink, &CONCERNED, db.name);
    assert!(notify::get_message(&db.store, &old).await.is_err(), "{}: replaced by its parts", db.name);
    let parts = notify::list(&db.store, &notify::OutboxFilter::default()).await.unwrap().items;
    let mut to: Vec<String> = parts.iter().map(|m| m.recipients.join(",")).collect();
    to.sort();
    assert_eq!(to, CONCERNED, "{}: a message each", db.name);
    for part in &parts {
        assert_eq!(part.created_at, entcp::store::timestamp(t0 - Duration::hours(1)), "{}: queued then", db.name);
        assert_eq!((part.status.as_str(), part.attempts), ("sent", 1), "{}: its attempt counted", db.name);
        assert_eq!(sink.copies_of(&part.id), 1, "{}", db.name);
    }
    assert_eq!(send(&db.store, &config, "sender", t0 + Duration::hours(1)).await, SendReport::default());
}

backend_test!(two_senders_splitting_old_messages_at_once_reach_each_recipient_exactly_once);
async fn two_senders_splitting_old_messages_at_once_reach_each_recipient_exactly_once(db: crate::common::TestDb) {
    if !smtp_sink_available() {
        return;
    }
    let (_data, sink, config) = sink_in_small_batches();
    let t0 = common::t0();
    let people: Vec<String> = (0..12).map(|i| format!("agent{i}@ac-creteil.fr")).collect();
    for group in people.chunks(3) {
        let group: Vec<&str> = group.iter().map(String::as_str).collect();
        queue_to_all_at_once(&db.store, &group, t0).await;
    }

    let (a, b) = two_senders_at_once(&db, &config, t0).await;
    assert_eq!((a.split + b.split, a.sent + b.sent), (4, 12), "{}: {a:?} {b:?}", db.name);
    assert_eq!(a.retried + b.retried + a.failed + b.failed, 0, "{}", db.name);
    let people: Vec<&str> = people.iter().map(String::as_str).collect();
    each_alone(&sink, &people, db.name);
}

backend_test!(a_mail_claimed_by_a_sender_that_crashed_is_sent_after_its_lease);
async fn a_mail_claimed_by_a_sender_that_crashed_is_sent_after_its_lease(db: crate::common::TestDb) {
    let (_data, config) = file_config_in_temp();
    let t0 = common::t0();
    let id = queue_test_mail(&db.store, "dsi@ac-creteil.fr", t0).await;
    let lease_end = t0 + Duration::minutes(5);
    sqlx::query(
        "UPDATE outbox SET status = 'sending', claimed_by = 'crashed', claimed_until = $1 \
         WHERE id = $2",
    )
    .bind(entcp::store::timestamp(lease_end))
    .bind(&id)
    .execute(db.store.pool())
    .await
    .unwrap();

    let during = send(&db.store, &config, "sender", t0 + Duration::minutes(1)).await;
    assert_eq!(during, SendReport::default(), "{}", db.name);
    let after = send(&db.store, &config, "sender", lease_end).await;
    assert_eq!(after.sent, 1, "{}: {after:?}", db.name);
    let sent = notify::get_message(&db.store, &id).await.unwrap();
    assert_eq!(sent.status, "sent");
}

/// An SMTP server that accepts connections and answers nothing until `release` is notified,
/// then closes them and stops listening: a sender talking to it hangs until then, then fails.
async fn stalling_smtp_server() -> (u16, Arc<tokio::sync::Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let release = Arc::new(tokio::sync::Notify::new());
    let released = release.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            tokio::select! {
                Ok((socket, _)) = listener.accept() => open.push(socket),
                _ = released.notified() => return,
            }
        }
    });
    (port, release)
}

// lettre bounds the SMTP connection, not a server that accepts it and then never answers: a
// pass hung on such a server until the job's timeout. The whole exchange of one message is now
// cut at `message_timeout` (connection, then exchange: 2 × smtp.timeout_seconds): the message
// fails and is retried.
backend_test!(a_server_that_accepts_and_never_answers_fails_the_message_which_is_retried);
async fn a_server_that_accepts_and_never_answers_fails_the_message_which_is_retried(db: crate::common::TestDb) {
    let data = tempfile::tempdir().unwrap();
    let t0 = common::t0();
    let id = queue_test_mail(&db.store, "dsi@ac-creteil.fr", t0).await;
    let mut config = smtp_config(data.path(), silent_smtp_server().await);
    config.mail.smtp.timeout_seconds = 1;
    assert_eq!(notify::mailer::message_timeout(&config), std::time::Duration::from_secs(2));
    let report = send(&db.store, &config, "silent", t0).await;
    assert_eq!(report, SendReport { retried: 1, ..SendReport::default() }, "{}", db.name);
    let message = notify::get_message(&db.store, &id).await.unwrap();
    assert_eq!(message.status, "pending", "{}: queued again", db.name);
    let error = message.last_error.unwrap_or_default();
    assert!(error.contains("n'a pas achevé l'échange en 2 s"), "{}: {error}", db.name);
}

/// A relay that accepts its first connection and never answers it, then passes every later one
/// to the SMTP server on `port`: one message hangs, the next ones go through.
async fn hangs_once_then_relays_to(port: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (hung, _) = listener.accept().await.unwrap();
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
        drop(hung);
    });
    relay
}

/// The ids of the outbox messages queued for `to`, in the order a pass sends them (by id).
async fn queue_in_sending_order(store: &Store, to: &[&str], now: DateTime<Utc>) -> Vec<String> {
    let mut ids = Vec::new();
    for recipient in to {
        ids.push(queue_test_mail(store, recipient, now).await);
    }
    ids.sort();
    ids
}

// SRE 42 (F5): each message a hung relay left unanswered held the whole queue behind it. One
// unanswered message is now retried after its backoff and the pass goes on with the next.
backend_test!(a_message_the_relay_leaves_unanswered_is_retried_later_and_the_next_one_is_sent);
async fn a_message_the_relay_leaves_unanswered_is_retried_later_and_the_next_one_is_sent(db: crate::common::TestDb) {
    if !smtp_sink_available() {
        return;
    }
    let (data, sink, _) = smtp_sink_and_config();
    let mut config = smtp_config(data.path(), hangs_once_then_relays_to(sink.port()).await);
    config.mail.smtp.timeout_seconds = 1;
    let t0 = common::t0();
    let ids = queue_in_sending_order(&db.store, &["dsi@ac-creteil.fr", "dan@ac-creteil.fr"], t0).await;

    let report = send(&db.store, &config, "pass", t0).await;
    assert_eq!(report, SendReport { sent: 1, retried: 1, ..SendReport::default() }, "{}", db.name);
    let hung = notify::get_message(&db.store, &ids[0]).await.unwrap();
    assert_eq!((hung.status.as_str(), hung.attempts), ("pending", 1), "{}: retried", db.name);
    assert_eq!(at(&hung.next_attempt_at), t0 + notify::backoff(1), "{}: after its backoff", db.name);
    assert!(hung.last_error.unwrap_or_default().contains("n'a pas achevé l'échange"), "{}", db.name);
    assert_eq!(notify::get_message(&db.store, &ids[1]).await.unwrap().status, "sent", "{}", db.name);
    assert_eq!(
        (sink.copies_of(&ids[0]), sink.copies_of(&ids[1])),
        (0, 1),
        "{}: the next one reached the sink",
        db.name
    );
}

// A relay that answers none: the pass stops after `UNANSWERED_IN_A_ROW` messages (each retried
// after its backoff) and gives the rest of its batch back, due at once, no attempt counted; the
// next pass tries them. The pass ends however long the queue (its wait: 2 × message_timeout).
backend_test!(a_relay_that_answers_nothing_ends_the_pass_after_two_messages_and_gives_the_rest_back);
async fn a_relay_that_answers_nothing_ends_the_pass_after_two_messages_and_gives_the_rest_back(
    db: crate::common::TestDb,
) {
    let data = tempfile::tempdir().unwrap();
    let mut config = smtp_config(data.path(), silent_smtp_server().await);
    config.mail.smtp.timeout_seconds = 1;
    let t0 = common::t0();
    let to = ["a@ac-creteil.fr", "b@ac-creteil.fr", "c@ac-creteil.fr", "d@ac-creteil.fr"];
    let ids = queue_in_sending_order(&db.store, &to, t0).await;

    let report = send(&db.store, &config, "pass", t0).await;
    assert_eq!(notify::UNANSWERED_IN_A_ROW, 2);
    assert_eq!(report, SendReport { retried: 2, ..SendReport::default() }, "{}", db.name);
    for (i, id) in ids.iter().enumerate() {
        let message = notify::get_message(&db.store, id).await.unwrap();
        assert_eq!(message.status, "pending", "{}: {i}", db.name);
        let tried = i < 2;
        assert_eq!(message.attempts, i64::from(tried), "{}: {i}", db.name);
        let due = if tried { t0 + notify::backoff(1) } else { t0 };
        assert_eq!(at(&message.next_attempt_at), due, "{}: {i}", db.name);
    }
    assert_eq!(count_with_status(&db.store, "sending").await, 0, "{}: nothing left claimed", db.name);
    let next = send(&db.store, &file_config(data.path()), "next", t0).await;
    assert_eq!(next.sent, 2, "{}: the two given back are due at once: {next:?}", db.name);
}

async fn count_with_status(store: &Store, status: &str) -> i64 {
    common::count(store, "SELECT COUNT(*) AS n FROM outbox WHERE status = $1", &[status]).await
}

/// Drives the `sending` pass until `n` messages are claimed (it then hangs on a silent server).
async fn claimed_while_hung<F: std::future::Future + Unpin>(db: &crate::common::TestDb, sending: &mut F, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count_with_status(&db.store, "sending").await < n {
        assert!(std::time::Instant::now() < deadline, "{}: the sender never claimed", db.name);
        tokio::select! {
            _ = &mut *sending => panic!("{}: the pass ended on a silent server", db.name),
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
        }
    }
}

// At SIGTERM the `outbox-send` pass still going at the drain deadline was dropped, and the
// messages it had claimed stayed locked for their lease (minutes). Now its unsent ones are
// put back in the queue at once: the next pass sends them without waiting.
backend_test!(a_sending_pass_cut_midway_leaves_its_unsent_messages_claimable_at_once);
async fn a_sending_pass_cut_midway_leaves_its_unsent_messages_claimable_at_once(db: crate::common::TestDb) {
    let data = tempfile::tempdir().unwrap();
    let t0 = common::t0();
    for i in 0..3 {
        queue_test_mail(&db.store, &format!("agent{i}@ac-creteil.fr"), t0).await;
    }
    let hung_config = smtp_config(data.path(), silent_smtp_server().await);
    let clock = FixedClock::new(t0);
    let mut cut = Box::pin(notify::send_due(&db.store, &hung_config, "cut", &clock));
    claimed_while_hung(&db, &mut cut, 3).await;
    drop(cut);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while count_with_status(&db.store, "pending").await < 3 {
        assert!(std::time::Instant::now() < deadline, "{}: the cut pass kept its claims", db.name);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(count_with_status(&db.store, "sending").await, 0, "{}", db.name);
    let report = send(&db.store, &file_config(data.path()), "next", t0).await;
    assert_eq!(report.sent, 3, "{}: claimable at once, within the cut pass's lease: {report:?}", db.name);
}

// A sender whose lease ran out while it hung on another message must not split an old message
// the sender that took over has already split and sent: each person gets it once.
backend_test!(a_sender_that_lost_its_claim_does_not_split_again_what_another_sender_split_and_sent);
async fn a_sender_that_lost_its_claim_does_not_split_again_what_another_sender_split_and_sent(
    db: crate::common::TestDb,
) {
    let data = tempfile::tempdir().unwrap();
    let t0 = common::t0();
    let first = queue_test_mail(&db.store, "dsi@ac-creteil.fr", t0).await;
    let old = queue_to_all_at_once(&db.store, &CONCERNED, t0).await;
    let (port, release) = stalling_smtp_server().await;
    let hung_config = smtp_config(data.path(), port);
    let (store, clock) = (db.store.clone(), FixedClock::new(t0));
    let mut hung = Box::pin(async move { notify::send_due(&store, &hung_config, "hung", &clock).await.unwrap() });
    claimed_while_hung(&db, &mut hung, 2).await;

    // Its lease over, another sender takes both messages, sends the first and splits the old one.
    let to_files = file_config(data.path());
    let taken = send(&db.store, &to_files, "next", t0 + Duration::minutes(10)).await;
    assert_eq!(taken, SendReport { sent: 4, split: 1, ..SendReport::default() }, "{}", db.name);
    release.notify_one();
    let late = hung.await;
    assert_eq!((late.sent, late.split), (0, 0), "{}: the late sender neither sent nor split: {late:?}", db.name);

    let mail_dir = notify::mailer::mail_dir(&to_files);
    let mut to: Vec<String> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|eml| eml.lines().filter(|l| l.starts_with("To: ")).collect::<Vec<_>>().join(" | "))
        .collect();
    to.sort();
    let mut expected: Vec<String> =
        CONCERNED.iter().chain(["dsi@ac-creteil.fr"].iter()).map(|a| format!("To: {a}")).collect();
    expected.sort();
    assert_eq!(to, expected, "{}: each once, alone", db.name);
    assert!(notify::get_message(&db.store, &old).await.is_err(), "{}", db.name);
    assert_eq!(notify::get_message(&db.store, &first).await.unwrap().status, "sent", "{}: not undone", db.name);
    assert_eq!(count_with_status(&db.store, "sent").await, 4, "{}: no other row", db.name);
    assert_eq!(outbox_count(&db.store).await, 4, "{}", db.name);
}

backend_test!(a_killed_senders_messages_are_resent_with_the_same_message_id_once_its_lease_of_minutes_expires);
async fn a_killed_senders_messages_are_resent_with_the_same_message_id_once_its_lease_of_minutes_expires(
    db: crate::common::TestDb,
) {
    if !smtp_sink_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let t0 = common::t0();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(queue_test_mail(&db.store, &format!("agent{i}@ac-creteil.fr"), t0).await);
    }
    // The sender claims the batch, then hangs on the server and is killed: a killed
    // process runs no destructor (forgotten here), its claims stay until their lease ends.
    let hung_config = smtp_config(data.path(), silent_smtp_server().await);
    let clock = FixedClock::new(t0);
    let mut killed = Box::pin(notify::send_due(&db.store, &hung_config, "killed", &clock));
    claimed_while_hung(&db, &mut killed, 3).await;
    std::mem::forget(killed);

    let sink = SmtpSink::start_on_any_port();
    let config = smtp_config(data.path(), sink.port());
    let during = send(&db.store, &config, "next", t0 + Duration::minutes(1)).await;
    assert_eq!(during, SendReport::default(), "{}: the lease still runs", db.name);
    assert_eq!(notify::release(&db.store, false, t0 + Duration::minutes(1)).await.unwrap(), 0);

    // Minutes later (not the 27 a batch of SMTP timeouts would give), a restarted
    // process releases them and the next pass sends each once, under its Message-ID.
    let later = t0 + Duration::minutes(6);
    assert_eq!(notify::release(&db.store, false, later).await.unwrap(), 3, "{}", db.name);
    let report = send(&db.store, &config, "next", later).await;
    assert_eq!(report.sent, 3, "{}: {report:?}", db.name);
    for id in &ids {
        assert_eq!(sink.copies_of(id), 1, "{}: message {id}", db.name);
        assert_eq!(notify::get_message(&db.store, id).await.unwrap().status, "sent");
    }
}

backend_test!(a_message_left_sending_by_a_dead_sender_can_be_retried_over_http_once_its_lease_ran_out);
async fn a_message_left_sending_by_a_dead_sender_can_be_retried_over_http_once_its_lease_ran_out(
    db: crate::common::TestDb,
) {
    let (_data, config) = file_config_in_temp();
    let t0 = common::t0();
    let id = queue_test_mail(&db.store, "dsi@ac-creteil.fr", t0).await;
    sqlx::query("UPDATE outbox SET status = 'sending', claimed_by = 'dead', claimed_until = $1 WHERE id = $2")
        .bind(entcp::store::timestamp(t0 + Duration::minutes(5)))
        .bind(&id)
        .execute(db.store.pool())
        .await
        .unwrap();
    let clock = Arc::new(FixedClock::new(t0 + Duration::minutes(1)));
    let base = serve(crate::common::app::app_state(db.store.clone(), config.clone(), clock.clone())).await;
    let client = admin_client(&db.store).await;
    let retry = || client.post(format!("{base}/api/v1/outbox/{id}/retry")).send();
    let (status, problem) = json_of(retry().await.unwrap()).await;
    assert_eq!(status, 409, "{}: a live lease is not taken away: {problem}", db.name);

    clock.set(t0 + Duration::minutes(6));
    let (status, retried) = json_of(retry().await.unwrap()).await;
    assert_eq!(status, 200, "{}: {retried}", db.name);
    assert_eq!(retried["status"], "pending");
    let report = send(&db.store, &config, "sender", t0 + Duration::minutes(6)).await;
    assert_eq!(report.sent, 1, "{}", db.name);
}

backend_test!(the_file_transport_writes_an_eml_under_the_data_dir);
async fn the_file_transport_writes_an_eml_under_the_data_dir(db: crate::common::TestDb) {
    let (data, config) = file_config_in_temp();
    let id = queue_test_mail(&db.store, "dpo@region.example.fr", common::t0()).await;

    let report = send(&db.store, &config, "sender", common::t0()).await;
    assert_eq!(report.sent, 1, "{}: {report:?}", db.name);
    let eml =
        std::fs::read_to_string(data.path().join("mail").join(format!("{id}.eml"))).expect("the .eml file exists");
    assert!(eml.contains(&format!("Message-ID: <{id}@localhost>")), "{eml}");
    assert!(eml.contains("To: dpo@region.example.fr"), "{eml}");
    assert!(eml.contains("multipart/alternative"), "{eml}");
}

backend_test!(a_mail_queued_in_a_rolled_back_transaction_is_never_sent);
async fn a_mail_queued_in_a_rolled_back_transaction_is_never_sent(db: crate::common::TestDb) {
    let mut tx = db.store.begin_write().await.unwrap();
    notify::enqueue(&mut tx, &["x@exemple.fr".into()], "test", json!({}), common::t0()).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(outbox_count(&db.store).await, 0, "{}", db.name);

    let mut tx = db.store.begin_write().await.unwrap();
    let refused = notify::enqueue(&mut tx, &[], "inconnu", json!({}), common::t0()).await;
    assert!(refused.is_err());
    tx.rollback().await.unwrap();
    assert_eq!(outbox_count(&db.store).await, 0, "{}", db.name);
}

backend_test!(a_bad_recipient_is_parked_with_its_error_and_the_others_are_still_sent);
async fn a_bad_recipient_is_parked_with_its_error_and_the_others_are_still_sent(db: crate::common::TestDb) {
    let (_data, config) = file_config_in_temp();
    let bad = "ce.0941234x@ac-creteil.fr\r\nBcc: pirate@exemple.fr".to_string();
    let mut tx = db.store.begin_write().await.unwrap();
    let recipients = ["dpo@exemple.fr".to_string(), bad.clone(), "pas une adresse".to_string()];
    let ids = notify::enqueue(&mut tx, &recipients, "test", json!({}), common::t0())
        .await
        .expect("a bad recipient is no error");
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 3, "{}: a message per recipient, the parked ones last", db.name);

    let report = send(&db.store, &config, "sender", common::t0()).await;
    assert_eq!(report.sent, 1, "{}: {report:?}", db.name);
    let rows: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT id, recipients, status, last_error FROM outbox ORDER BY status, id")
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 3, "{}: {rows:?}", db.name);
    let statuses: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(statuses, ["failed", "failed", "sent"], "{}", db.name);
    assert_eq!(rows[2].0, ids[0], "{}: the valid recipient's message first", db.name);
    // Each parked message names its own address only, so that no one sees the others'.
    assert!(rows[0].1.contains("ce.0941234x") && !rows[0].1.contains("dpo@"), "{rows:?}");
    assert!(rows[1].1.contains("pas une adresse") && !rows[1].1.contains("ce.0941234x"), "{rows:?}");
    let errors: Vec<&str> = rows[..2].iter().map(|r| r.3.as_deref().unwrap()).collect();
    assert!(errors[0].contains("destinataire invalide") && errors[0].contains("ce.0941234x"), "{errors:?}");
    assert!(errors[1].contains("« pas une adresse »") && !errors[1].contains("ce.0941234x"), "{errors:?}");
}

backend_test!(a_queued_message_whose_recipient_does_not_parse_fails_at_once_without_retries);
async fn a_queued_message_whose_recipient_does_not_parse_fails_at_once_without_retries(db: crate::common::TestDb) {
    let (_data, config) = file_config_in_temp();
    let id = queue_test_mail(&db.store, "ok@exemple.fr", common::t0()).await;
    // A message queued before addresses were checked.
    sqlx::query("UPDATE outbox SET recipients = $1 WHERE id = $2")
        .bind(r#"["a@b.fr\r\nBcc: x@y.fr"]"#)
        .bind(&id)
        .execute(db.store.pool())
        .await
        .unwrap();
    let report = send(&db.store, &config, "sender", common::t0()).await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 1), "{}: {report:?}", db.name);
}

backend_test!(sent_mail_older_than_the_retention_is_purged_and_the_rest_kept);
async fn sent_mail_older_than_the_retention_is_purged_and_the_rest_kept(db: crate::common::TestDb) {
    let (_data, config) = file_config_in_temp();
    let t0 = common::t0();
    queue_test_mail(&db.store, "a@exemple.fr", t0).await;
    send(&db.store, &config, "sender", t0).await;
    let pending = queue_test_mail(&db.store, "b@exemple.fr", t0).await;

    let mail_dir = notify::mailer::mail_dir(&config);
    let written = std::fs::read_dir(&mail_dir).unwrap().count();
    assert_eq!(written, 1, "{}: the file transport wrote the sent message", db.name);

    let too_early = t0 + Duration::days(29);
    let kept = notify::purge_sent(&db.store, 30, &mail_dir, too_early).await.unwrap();
    assert_eq!(kept, notify::Purged { messages: 0, files: 0 });
    assert_eq!(std::fs::read_dir(&mail_dir).unwrap().count(), 1, "{}", db.name);
    let purged = notify::purge_sent(&db.store, 30, &mail_dir, t0 + Duration::days(31)).await.unwrap();
    assert_eq!(purged, notify::Purged { messages: 1, files: 1 }, "{}", db.name);
    assert_eq!(std::fs::read_dir(&mail_dir).unwrap().count(), 0, "{}: its .eml copy is gone too", db.name);
    assert_eq!(outbox_count(&db.store).await, 1);
    notify::get_message(&db.store, &pending).await.unwrap();
}

backend_test!(failed_mail_older_than_the_retention_is_purged_and_a_recent_failure_kept);
async fn failed_mail_older_than_the_retention_is_purged_and_a_recent_failure_kept(db: crate::common::TestDb) {
    let t0 = common::t0();
    let old = queue_test_mail(&db.store, "a@exemple.fr", t0).await;
    let recent = queue_test_mail(&db.store, "b@exemple.fr", t0 + Duration::days(20)).await;
    sqlx::query("UPDATE outbox SET status = 'failed'").execute(db.store.pool()).await.unwrap();

    let no_files = tempfile::tempdir().unwrap();
    let purged = notify::purge_sent(&db.store, 30, no_files.path(), t0 + Duration::days(31)).await.unwrap();
    assert_eq!(purged.messages, 1, "{}", db.name);
    assert!(notify::get_message(&db.store, &old).await.is_err(), "{}: the old failure is gone", db.name);
    notify::get_message(&db.store, &recent).await.unwrap();
}

/// Inserts a finished run of `job` started at `at` (`tick`: a scheduled one).
async fn finished_run(store: &Store, job: &str, at: DateTime<Utc>, tick: bool, outcome: &str) -> String {
    let id = entcp::store::new_id();
    let started = entcp::store::timestamp(at);
    sqlx::query(
        "INSERT INTO job_runs (id, job, tick, trigger, runner, started_at, finished_at, outcome, message) \
         VALUES ($1, $2, $3, $4, 'test', $5, $5, $6, '')",
    )
    .bind(&id)
    .bind(job)
    .bind(tick.then(|| started.clone()))
    .bind(if tick { "schedule" } else { "manual" })
    .bind(&started)
    .bind(outcome)
    .execute(store.pool())
    .await
    .unwrap();
    id
}

async fn remaining(store: &Store, table: &str, column: &str) -> Vec<String> {
    let mut values = common::texts(store, &format!("SELECT {column} FROM {table}"), &[]).await;
    values.sort();
    values
}

backend_test!(the_retention_purge_deletes_ended_sessions_old_idempotency_answers_and_old_runs_only);
async fn the_retention_purge_deletes_ended_sessions_old_idempotency_answers_and_old_runs_only(
    db: crate::common::TestDb,
) {
    use entcp::identity::{self, sessions};
    use entcp::store::IdempotencyKey;
    let (_data, config) = file_config_in_temp();
    let t0 = common::t0();
    let now = t0 + Duration::days(100);

    // Sessions: one live, one signed out (with its ID token), one idle too long, one too old.
    let new = identity::NewUser { email: "dpo@exemple.fr".into(), display_name: "DPO".into(), org: None };
    let user = identity::create_user(&db.store, &common::admin(), new, t0).await.unwrap();
    let timeouts = sessions::Timeouts::of(&config.console);
    let live = sessions::open(&db.store, &user.id, "live", "password", None, now - Duration::minutes(5)).await.unwrap();
    let out = sessions::open(&db.store, &user.id, "out", "oidc", None, now - Duration::minutes(5)).await.unwrap();
    sessions::open(&db.store, &user.id, "idle", "password", None, now - timeouts.idle - Duration::minutes(1))
        .await
        .unwrap();
    sessions::open(&db.store, &user.id, "old", "password", None, now - timeouts.absolute - Duration::minutes(1))
        .await
        .unwrap();
    sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE client = 'old'")
        .bind(entcp::store::timestamp(now - Duration::minutes(1)))
        .execute(db.store.pool())
        .await
        .unwrap();
    let out_hash = identity::hash_token(&out);
    sqlx::query("UPDATE console_sessions SET revoked_at = $1 WHERE id_hash = $2")
        .bind(entcp::store::timestamp(now - Duration::minutes(1)))
        .bind(&out_hash)
        .execute(db.store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO console_oidc_sessions (session_hash, id_token) VALUES ($1, 'jeton')")
        .bind(&out_hash)
        .execute(db.store.pool())
        .await
        .unwrap();

    // Idempotency keys: answered two days ago and an hour ago; in flight since two days with
    // its lease over (its process died) and with a live lease (a long request).
    let key = |k: &str| IdempotencyKey { actor: "user:dpo@exemple.fr".into(), key: k.into() };
    for (name, taken, lease, answered) in [
        ("answered-old", now - Duration::days(2), now - Duration::days(2), true),
        ("answered-recent", now - Duration::hours(1), now - Duration::hours(1), true),
        ("dead", now - Duration::days(2), now - Duration::days(2), false),
        ("in-flight", now - Duration::days(2), now + Duration::minutes(1), false),
        ("console:tickets:recent", now - Duration::days(29), now - Duration::days(29), true),
        ("console:tickets:old", now - Duration::days(31), now - Duration::days(31), true),
    ] {
        assert!(key(name).claim(&db.store, "h", taken, lease).await.unwrap(), "{name}");
        if answered {
            key(name).finish(&db.store, 201, "{\"description\": \"données\"}", None).await.unwrap();
        }
    }

    // Runs: two old scheduled ones and an old manual one of a job, a recent one of another
    // job; the only (old) run of a third job is its latest and stays.
    let older = finished_run(&db.store, "support-sweep", t0, true, "success").await;
    let old_manual = finished_run(&db.store, "support-sweep", t0 + Duration::days(1), false, "failure").await;
    let latest_tick = finished_run(&db.store, "support-sweep", t0 + Duration::days(2), true, "success").await;
    let latest = finished_run(&db.store, "support-sweep", t0 + Duration::days(3), false, "success").await;
    let recent = finished_run(&db.store, "outbox-send", now - Duration::days(1), true, "success").await;
    let only = finished_run(&db.store, "rgpd-snapshots", t0, true, "success").await;

    let app = state(&db.store, &config, now);
    let purge = entcp::api::jobs::find("retention-purge").unwrap();
    let ran = entcp::api::scheduler::run_now(&app, &common::admin(), &purge, "cli", now).await.unwrap();
    assert_eq!(ran.outcome, "success", "{}: {ran:?}", db.name);
    assert!(ran.message.as_deref().unwrap_or("").starts_with("3 session(s)"), "{}: {ran:?}", db.name);

    let sessions_left = remaining(&db.store, "console_sessions", "client").await;
    assert_eq!(sessions_left, ["live"], "{}", db.name);
    assert!(sessions::find(&db.store, &live, timeouts, now).await.unwrap().is_some(), "{}", db.name);
    assert_eq!(remaining(&db.store, "console_oidc_sessions", "session_hash").await, Vec::<String>::new());
    let keys = remaining(&db.store, "idempotency_keys", "idem_key").await;
    assert_eq!(keys, ["answered-recent", "console:tickets:recent", "in-flight"], "{}", db.name);
    let mut kept = vec![latest_tick, latest, recent, only, ran.id.clone()];
    kept.sort();
    assert_eq!(remaining(&db.store, "job_runs", "id").await, kept, "{}", db.name);
    let _ = (older, old_manual);
}

// --- HTTP ---------------------------------------------------------------------

async fn serve(app_state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app(app_state)).await.unwrap() });
    base
}

/// A client authenticated as a platform admin.
async fn admin_client(store: &Store) -> reqwest::Client {
    let token = common::token_for(store, "admin@test.fr", entcp::kernel::roles::Role::Admin, None).await;
    common::client_with(&token)
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

backend_test!(failed_mail_stays_listed_and_can_be_retried_over_http);
async fn failed_mail_stays_listed_and_can_be_retried_over_http(db: crate::common::TestDb) {
    let data = tempfile::tempdir().unwrap();
    let mut config = smtp_config(data.path(), free_port());
    config.mail.max_attempts = 2;
    let t0 = common::t0();
    let id = queue_test_mail(&db.store, "n1@college.example.fr", t0).await;
    send(&db.store, &config, "sender", t0).await;
    let report = send(&db.store, &config, "sender", t0 + Duration::hours(1)).await;
    assert_eq!(report.failed, 1, "{}: {report:?}", db.name);

    let base = serve(state(&db.store, &config, t0 + Duration::hours(2))).await;
    let client = admin_client(&db.store).await;
    let (status, page) = json_of(client.get(format!("{base}/api/v1/outbox?status=failed")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["items"][0]["attempts"], 2);
    assert!(page["items"][0]["last_error"].is_string());

    let (status, retried) =
        json_of(client.post(format!("{base}/api/v1/outbox/{id}/retry")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["attempts"], 0);

    let (status, problem) =
        json_of(client.get(format!("{base}/api/v1/outbox?status=perdu")).send().await.unwrap()).await;
    assert_eq!(status, 422, "{problem}");
    let (status, _) = json_of(client.post(format!("{base}/api/v1/outbox/inconnu/retry")).send().await.unwrap()).await;
    assert_eq!(status, 404);
}

backend_test!(an_old_message_to_several_people_given_up_then_retried_over_http_reaches_each_alone);
async fn an_old_message_to_several_people_given_up_then_retried_over_http_reaches_each_alone(
    db: crate::common::TestDb,
) {
    if !smtp_sink_available() {
        return;
    }
    let (_data, sink, config) = smtp_sink_and_config();
    let t0 = common::t0();
    let old = queue_to_all_at_once(&db.store, &CONCERNED, t0 - Duration::days(1)).await;
    common::execute(&db.store, "UPDATE outbox SET status = 'failed' WHERE id = $1", &[old.as_str()]).await;

    let base = serve(state(&db.store, &config, t0)).await;
    let client = admin_client(&db.store).await;
    let (status, listed) =
        json_of(client.get(format!("{base}/api/v1/outbox?status=failed")).send().await.unwrap()).await;
    assert_eq!((status, &listed["items"][0]["recipients"]), (200, &json!(CONCERNED)), "{}: {listed}", db.name);
    let (status, retried) =
        json_of(client.post(format!("{base}/api/v1/outbox/{old}/retry")).send().await.unwrap()).await;
    assert_eq!((status, retried["status"].as_str()), (200, Some("pending")), "{}: {retried}", db.name);

    let report = send(&db.store, &config, "sender", t0).await;
    assert_eq!(report, SendReport { sent: 3, split: 1, ..SendReport::default() }, "{}", db.name);
    each_alone(&sink, &CONCERNED, db.name);
    let (_, sent) = json_of(client.get(format!("{base}/api/v1/outbox?status=sent")).send().await.unwrap()).await;
    let mut listed: Vec<&str> =
        sent["items"].as_array().unwrap().iter().map(|m| m["recipients"][0].as_str().unwrap()).collect();
    listed.sort();
    assert_eq!(listed, CONCERNED, "{}: the outbox lists a message per recipient: {sent}", db.name);
    assert!(sent["items"].as_array().unwrap().iter().all(|m| m["recipients"].as_array().unwrap().len() == 1));
}

backend_test!(jobs_are_listed_and_run_over_http);
async fn jobs_are_listed_and_run_over_http(db: crate::common::TestDb) {
    let (_data, config) = file_config_in_temp();
    let base = serve(state(&db.store, &config, common::t0())).await;
    let client = admin_client(&db.store).await;

    let (status, ran) = json_of(client.post(format!("{base}/api/v1/jobs/outbox-send/run")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["outcome"], "success");
    assert_eq!(ran["trigger"], "manual");

    let (status, list) = json_of(client.get(format!("{base}/api/v1/jobs")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{list}");
    let send_job = list.as_array().unwrap().iter().find(|j| j["name"] == "outbox-send").unwrap();
    assert_eq!(send_job["schedule"], "* * * * *");
    assert_eq!(send_job["timezone"], "Europe/Paris");
    assert_eq!(send_job["enabled"], true);
    assert_eq!(send_job["next_run"], "2026-09-01T08:01:00.000000Z");
    assert_eq!(send_job["last_runs"][0]["id"], ran["id"]);

    let (status, _) = json_of(client.post(format!("{base}/api/v1/jobs/inconnue/run")).send().await.unwrap()).await;
    assert_eq!(status, 404);
}

// `entctl mail test` sent the whole production outbox with the CLI's own transport (by default
// `file`: every pending mail written on the operator's machine, marked sent, reaching nobody).
// It now sends its own message alone; on PostgreSQL with the `file` transport it refuses, as
// `entctl jobs run outbox-send` does, with a French message and nothing queued or sent.
backend_test!(entctl_mail_test_sends_only_its_own_message_and_never_to_files_on_postgres);
async fn entctl_mail_test_sends_only_its_own_message_and_never_to_files_on_postgres(db: crate::common::TestDb) {
    let production = queue_test_mail(&db.store, "parent@ac-creteil.fr", Utc::now() - Duration::minutes(5)).await;
    let url = db.url.clone();
    let (ok, out) =
        tokio::task::spawn_blocking(move || common::entctl(&url, &["mail", "test", "--to", "dane@ac-creteil.fr"]))
            .await
            .unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(db.store.pool()).await.unwrap();
    if db.name == "sqlite" {
        assert!(ok && out.contains("Courriel de test écrit dans"), "{out}");
        assert_eq!(queued, 2);
    } else {
        assert!(!ok, "{out}");
        assert!(out.contains("envoi refusé : mail.transport vaut « file » sur une base PostgreSQL"), "{out}");
        assert_eq!(queued, 1, "the test message is not queued either");
        let url = db.url.clone();
        let (ok, out) =
            tokio::task::spawn_blocking(move || common::entctl(&url, &["jobs", "run", "outbox-send"])).await.unwrap();
        assert!(!ok && out.contains("envoi refusé"), "{out}");
    }
    let left = notify::get_message(&db.store, &production).await.unwrap();
    assert_eq!(left.status, "pending", "{}: the production mail was sent by the CLI", db.name);
}

// An SMTP outage or a rotated password looked healthy: each failure pushed the message's next
// attempt forward (so the oldest-due gauge stayed near 0), the run was a success, and nothing
// counted failures. Now failures are counted, the oldest undelivered message is aged from its
// creation, and a refused login (535) fails the run, the batch put back without an attempt.
backend_test!(failed_deliveries_are_counted_aged_from_creation_and_a_refused_smtp_login_fails_the_run);
async fn failed_deliveries_are_counted_aged_from_creation_and_a_refused_smtp_login_fails_the_run(
    db: crate::common::TestDb,
) {
    let now = common::t0();
    let id = queue_test_mail(&db.store, "dane@ac-creteil.fr", now - Duration::minutes(10)).await;
    let data = tempfile::tempdir().unwrap();
    let config = smtp_config(data.path(), free_port()); // nothing listens: refused, retried later
    let clock = FixedClock::new(now);
    let report = notify::send_due(&db.store, &config, "r1", &clock).await.unwrap();
    assert_eq!(report.retried, 1, "{}", db.name);
    let app = state(&db.store, &config, now);
    entcp::api::metrics::refresh_gauges(&app).await.unwrap();
    let text = entcp::api::metrics::text(&app);
    assert!(text.contains("entcp_outbox_delivery_failures_total 1\n"), "{}: {text}", db.name);
    assert!(text.contains("entcp_outbox_oldest_pending_age_seconds 0\n"), "{}: {text}", db.name);
    assert!(text.contains("entcp_outbox_oldest_undelivered_age_seconds 600\n"), "{}: {text}", db.name);

    // A server that refuses the login.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = smtp_config(data.path(), listener.local_addr().unwrap().port());
    config.mail.smtp.username = Some("ent".into());
    config.mail.smtp.password = Some("ancien".into());
    tokio::spawn(refusing_login(listener));
    let later = FixedClock::new(now + Duration::minutes(2));
    let error = notify::send_due(&db.store, &config, "r1", &later).await.unwrap_err().to_string();
    assert!(error.contains("identifiants SMTP refusés par le serveur"), "{}: {error}", db.name);
    let mut message = notify::get_message(&db.store, &id).await.unwrap();
    for _ in 0..100 {
        if message.status == "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        message = notify::get_message(&db.store, &id).await.unwrap();
    }
    assert_eq!((message.status.as_str(), message.attempts), ("pending", 1), "{}: put back, no attempt", db.name);
    assert!(entcp::api::metrics::text(&app).contains("entcp_outbox_delivery_failures_total 2\n"));
}

/// A minimal SMTP server that offers AUTH and refuses every login (535).
async fn refusing_login(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    while let Ok((socket, _)) = listener.accept().await {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(b"220 refus ESMTP\r\n").await;
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let answer: &[u8] = if upper.starts_with("EHLO") {
                b"250-refus\r\n250 AUTH PLAIN LOGIN\r\n"
            } else if upper.starts_with("AUTH") {
                b"535 5.7.8 Authentication credentials invalid\r\n"
            } else if upper.starts_with("QUIT") {
                b"221 bye\r\n"
            } else {
                b"503 5.5.1 bad sequence\r\n"
            };
            if write.write_all(answer).await.is_err() || upper.starts_with("QUIT") {
                break;
            }
        }
    }
}
