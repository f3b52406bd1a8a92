//! Notifications: an outbox of e-mails, queued by any module in the transaction
//! of the change that caused them, and a sender that renders and delivers them.
//!
//! Each recipient gets a message of their own (one outbox row, one address in `To:`): a
//! notice to several people never shows one the others' addresses, and a failure or a
//! retry for one recipient never sends again to the others. A row queued for several
//! recipients (before this rule, or by a replica not yet upgraded) is split into one row
//! per recipient by the sender that claims it, before anything is sent.
//!
//! Delivery is at least once, with a stable Message-ID: a sender claims a batch
//! of due messages atomically (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's
//! single writer) with a lease of minutes (`mail.lease_minutes`), renewed before
//! each message it sends. A sender killed after claiming leaves its messages
//! `sending` until the lease runs out; they are then due again (and released at
//! the next start, or by `entctl outbox release`). One the SMTP server had
//! accepted before the crash is sent again with the same Message-ID (derived
//! from the outbox id), so a receiver can recognise the copy. Failures are
//! retried with backoff, then kept as `failed`.

pub mod mailer;
pub mod preferences;
pub mod routes;
pub mod state;

use crate::jobs::JobFuture;
use chrono::{DateTime, Duration, Utc};
use ent_kernel::clock::{Clock, PassClock};
use ent_kernel::config::Config;
use ent_kernel::error::{Checks, Problem};
use ent_kernel::skip_serializing_none;
use ent_kernel::store::{new_id, timestamp, JsonText, Page, Store, Tx};
use ent_kernel::text::without_addresses;
use ent_kernel::validate::printable;
use ent_platform::audit::{self, Target};
use ent_platform::identity::Actor;
use mailer::Mailer;
use serde::Serialize;
use sqlx::FromRow;
pub use state::NotifyState;

pub use routes::routes;

/// How long a claimed message stays reserved for its sender without renewal:
/// `mail.lease_minutes`, but never less than the slowest single message
/// ([`mailer::message_timeout`]), since the lease is renewed between messages.
fn lease(config: &Config) -> Duration {
    let one_message = Duration::from_std(mailer::message_timeout(config)).unwrap_or(Duration::days(1));
    Duration::minutes(i64::from(config.mail.lease_minutes.max(1))).max(one_message)
}

/// A notice for the outbox: a template, its recipients, and its context (the
/// fields of the subject plus an event's own extra fields), built then queued.
pub struct Notice {
    template: &'static str,
    recipients: Vec<String>,
    context: serde_json::Map<String, serde_json::Value>,
    send_at: Option<DateTime<Utc>>,
}

impl Notice {
    pub fn new(template: &'static str, recipients: Vec<String>) -> Self {
        Notice { template, recipients, context: serde_json::Map::new(), send_at: None }
    }

    /// The notice of a capability's `event` (a field of the context) to `recipients`, each once.
    pub fn event(template: &'static str, recipients: Vec<String>, event: &str) -> Self {
        Notice::new(template, recipients).unique_recipients().with(serde_json::json!({ "event": event }))
    }

    /// Each recipient once, in order.
    pub fn unique_recipients(mut self) -> Self {
        self.recipients.sort();
        self.recipients.dedup();
        self
    }

    /// Adds the fields of `fields` (a JSON object; anything else adds nothing),
    /// replacing those of the same name.
    pub fn with(mut self, fields: serde_json::Value) -> Self {
        if let serde_json::Value::Object(fields) = fields {
            self.context.extend(fields);
        }
        self
    }

    /// Points the reader to the console page at `path` (`/conventions/…`), where they act
    /// on it: the mail gives its address ([`mailer::with_link`]).
    pub fn page(self, path: String) -> Self {
        self.with(serde_json::json!({ "page": path }))
    }

    /// Not sent before `send_at`.
    pub fn not_before(mut self, send_at: DateTime<Utc>) -> Self {
        self.send_at = Some(send_at);
        self
    }

    /// Queues the notice in the caller's transaction ([`enqueue_at`]): one message per
    /// recipient who wants it, their outbox ids (none when it has no recipient).
    pub async fn enqueue(self, tx: &mut Tx, now: DateTime<Utc>) -> Result<Vec<String>, Problem> {
        if self.recipients.is_empty() {
            return Ok(Vec::new());
        }
        let context = serde_json::Value::Object(self.context);
        let send_at = self.send_at.unwrap_or(now);
        enqueue_at(tx, &self.recipients, self.template, context, now, send_at).await
    }
}

/// Queues an e-mail in the caller's transaction: it is sent only if the
/// transaction commits. Returns the outbox ids, one per recipient ([`enqueue_at`]).
pub async fn enqueue(
    tx: &mut Tx,
    recipients: &[String],
    template: &str,
    context: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Vec<String>, Problem> {
    enqueue_at(tx, recipients, template, context, now, now).await
}

/// Like [`enqueue`], but not sent before `send_at` (e.g. the recipient's next working hour).
///
/// Each recipient gets a message of their own, addressed to them alone (one outbox row
/// each, in recipients' order, each address once without regard to case): the ids of
/// those queued to be sent, then of those parked.
///
/// A recipient that does not parse never fails the caller's change: the valid
/// recipients get the message, each of the others is parked in a `failed` message that
/// names it, for an administrator to see in the outbox.
///
/// A recipient who switched the mail's category off is left out; a mail left with
/// no recipient is not queued (no id), which is no error for the caller. Mails
/// without a category (sign-in links…) go to everyone ([`preferences::category_of`]).
pub async fn enqueue_at(
    tx: &mut Tx,
    recipients: &[String],
    template: &str,
    context: serde_json::Value,
    now: DateTime<Utc>,
    send_at: DateTime<Utc>,
) -> Result<Vec<String>, Problem> {
    check_message(recipients, template, &context)?;
    let wanted = match preferences::category_of(template, &context) {
        Some(category) => preferences::keep_wanted(tx, category, recipients).await?,
        None => recipients.to_vec(),
    };
    let wanted = each_once(wanted);
    if wanted.is_empty() {
        tracing::debug!(template, "no recipient wants this mail: not queued");
        return Ok(Vec::new());
    }
    let (valid, invalid): (Vec<String>, Vec<String>) = wanted.into_iter().partition(|r| parses(r));
    let context = context.to_string();
    let queued = Queued { template, context: &context, created_at: timestamp(now), attempts: 0 };
    let mut ids = Vec::with_capacity(valid.len() + invalid.len());
    for recipient in &valid {
        ids.push(queued.insert(tx, recipient, "pending", timestamp(send_at.max(now)), None).await?);
    }
    for recipient in &invalid {
        let error = format!("destinataire invalide, message non envoyé : « {} »", printable(recipient));
        let id = queued.insert(tx, recipient, "failed", timestamp(now), Some(&error)).await?;
        // The address is the outbox's (its last error), not the log's.
        tracing::warn!(template, %id, "e-mail parked: its recipient does not parse");
        ids.push(id);
    }
    Ok(ids)
}

fn parses(recipient: &str) -> bool {
    recipient.parse::<lettre::message::Mailbox>().is_ok()
}

/// Each address once, the first spelling kept, compared as the preferences compare them
/// (trimmed, without regard to case): one person, one message.
fn each_once(recipients: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    recipients.into_iter().filter(|r| seen.insert(r.trim().to_lowercase())).collect()
}

/// What the rows queued for one notice share: each is the message to one recipient.
struct Queued<'a> {
    template: &'a str,
    context: &'a str,
    created_at: String,
    /// Failed attempts so far (0, but those of the message a split row comes from).
    attempts: u32,
}

impl Queued<'_> {
    async fn insert(
        &self,
        tx: &mut Tx,
        recipient: &str,
        status: &str,
        next_attempt_at: String,
        error: Option<&str>,
    ) -> sqlx::Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO outbox (id, created_at, recipients, template, context, status, attempts, next_attempt_at, last_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&self.created_at)
        .bind(serde_json::to_string(&[recipient]).expect("recipients serialise"))
        .bind(self.template)
        .bind(self.context)
        .bind(status)
        .bind(i64::from(self.attempts))
        .bind(next_attempt_at)
        .bind(error.map(str::to_string))
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }
}

/// A message the caller got wrong (no recipient, unknown template, context not an
/// object) is a bug and refused; bad recipients are data and parked by [`enqueue_at`].
fn check_message(recipients: &[String], template: &str, context: &serde_json::Value) -> Result<(), Problem> {
    let mut checks = Checks::default();
    if recipients.is_empty() {
        checks.fail("recipients", "au moins un destinataire est requis");
    }
    if !mailer::template_exists(template) {
        checks.fail(
            "template",
            format!("modèle de courriel inconnu : « {template} » (modèles : {})", mailer::template_names().join(", ")),
        );
    }
    if !context.is_object() {
        checks.fail("context", "le contexte doit être un objet JSON");
    }
    checks.finish()
}

/// Waiting time before attempt `attempts + 1`, after `attempts` failures.
pub fn backoff(attempts: u32) -> Duration {
    const MINUTES: [i64; 6] = [1, 5, 15, 60, 240, 720];
    let index = (attempts.max(1) as usize - 1).min(MINUTES.len() - 1);
    Duration::minutes(MINUTES[index])
}

/// An outbox message as listed (without its context, which may hold personal data).
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: String,
    pub created_at: String,
    /// The one address the message goes to (each recipient of a notice has a message of their
    /// own); several only on a message queued before that, split when it is next sent.
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub recipients: Vec<String>,
    pub template: String,
    /// `pending`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Failed attempts so far.
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

const MESSAGE_COLUMNS: &str =
    "id, created_at, recipients, template, status, attempts, next_attempt_at, last_error, sent_at";

pub async fn get_message(store: &Store, id: &str) -> Result<OutboxMessage, Problem> {
    sqlx::query_as(&format!("SELECT {MESSAGE_COLUMNS} FROM outbox WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| Problem::not_found(format!("aucun message {id} dans la file d'envoi")))
}

/// A message claimed for sending, with what is needed to render it.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: String,
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    recipients: Vec<String>,
    template: String,
    #[sqlx(try_from = "JsonText")]
    context: serde_json::Value,
    #[sqlx(try_from = "i64")]
    attempts: u32,
    last_error: Option<String>,
}

/// The columns of a [`Claimed`] message.
const CLAIMED_COLUMNS: &str = "id, recipients, template, context, attempts, last_error";

/// Due: pending and its time has come, or claimed by a sender whose lease ran out.
const DUE: &str = "(status = 'pending' AND next_attempt_at <= $1) \
                   OR (status = 'sending' AND claimed_until <= $1)";

/// Claims up to `limit` due messages for `runner` in one transaction; no other
/// sender can claim them until the lease ends.
async fn claim_batch(store: &Store, config: &Config, runner: &str, now: DateTime<Utc>) -> sqlx::Result<Vec<Claimed>> {
    // PostgreSQL: concurrent senders skip each other's locked rows. SQLite:
    // `begin_write` holds the only write lock, so the select-update is atomic.
    let lock = store.backend().for_update_skip_locked();
    let sql = format!(
        "UPDATE outbox SET status = 'sending', claimed_by = $2, claimed_until = $3 \
         WHERE id IN (SELECT id FROM outbox WHERE {DUE} ORDER BY next_attempt_at, id LIMIT $4{lock}) \
         RETURNING {CLAIMED_COLUMNS}"
    );
    let mut tx = store.begin_write().await?;
    let rows = sqlx::query(&sql)
        .bind(timestamp(now))
        .bind(runner)
        .bind(timestamp(now + lease(config)))
        .bind(i64::from(config.mail.batch_size.max(1)))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut claimed: Vec<Claimed> = rows.iter().map(Claimed::from_row).collect::<sqlx::Result<_>>()?;
    claimed.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(claimed)
}

/// Claims the message `id` alone for `runner`, if it is due.
async fn claim_message(
    store: &Store,
    config: &Config,
    runner: &str,
    id: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Claimed>> {
    let sql = format!(
        "UPDATE outbox SET status = 'sending', claimed_by = $2, claimed_until = $3 \
         WHERE id = $4 AND ({DUE}) RETURNING {CLAIMED_COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(timestamp(now))
        .bind(runner)
        .bind(timestamp(now + lease(config)))
        .bind(id)
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(Claimed::from_row).collect()
}

/// Extends the lease of every message `runner` still holds (called before each send).
async fn renew_leases(store: &Store, config: &Config, runner: &str, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET claimed_until = $1 WHERE claimed_by = $2 AND status = 'sending'")
        .bind(timestamp(now + lease(config)))
        .bind(runner)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Puts `sending` messages back in the queue, due now: those whose lease ran out
/// (their sender died), or every one with `force` (the operator knows that no
/// sender runs). Returns how many.
pub async fn release(store: &Store, force: bool, now: DateTime<Utc>) -> sqlx::Result<u64> {
    let released = sqlx::query(
        "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_until = NULL, next_attempt_at = $1 \
         WHERE status = 'sending' AND ($2 = 1 OR claimed_until IS NULL OR claimed_until <= $1)",
    )
    .bind(timestamp(now))
    .bind(i64::from(force))
    .execute(store.pool())
    .await?;
    Ok(released.rows_affected())
}

/// Marks a claimed message sent, if this sender still holds it.
async fn mark_sent(store: &Store, id: &str, runner: &str, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $1, claimed_by = NULL, claimed_until = NULL \
         WHERE id = $2 AND claimed_by = $3 AND status = 'sending'",
    )
    .bind(timestamp(now))
    .bind(id)
    .bind(runner)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Records a failed attempt: retried after a backoff, or `failed` after the last one.
async fn mark_failed(
    store: &Store,
    message: &Claimed,
    error: &str,
    runner: &str,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let attempts = message.attempts + 1;
    let gives_up = attempts >= max_attempts;
    let status = if gives_up { "failed" } else { "pending" };
    sqlx::query(
        "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, \
         claimed_by = NULL, claimed_until = NULL \
         WHERE id = $5 AND claimed_by = $6 AND status = 'sending'",
    )
    .bind(status)
    .bind(i64::from(attempts))
    .bind(timestamp(now + backoff(attempts)))
    .bind(error)
    .bind(&message.id)
    .bind(runner)
    .execute(store.pool())
    .await?;
    Ok(gives_up)
}

/// What one sending pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SendReport {
    pub sent: u32,
    /// Failed, will be retried.
    pub retried: u32,
    /// Failed for the last time.
    pub failed: u32,
    /// Messages queued for several recipients, replaced by one per recipient (sent in the same pass).
    pub split: u32,
}

impl SendReport {
    pub fn summary(&self) -> String {
        let mut summary =
            format!("{} envoyé(s), {} à réessayer, {} en échec définitif", self.sent, self.retried, self.failed);
        if self.split > 0 {
            summary.push_str(&format!(
                ", {} courriel(s) à plusieurs destinataires séparé(s) en un par destinataire",
                self.split
            ));
        }
        summary
    }
}

/// Sends every message due, batch after batch, until none is left. Every step reads
/// `clock` (the job's: [`ent_kernel::clock::PassClock`]): a claim, a lease, a message's
/// `sent_at` and the next attempt of one that failed are of the time it happens, however
/// long the pass has lasted. A message that fails is due again a backoff after its
/// attempt, so it is not retried in the same pass unless that much time went by.
///
/// A pass is bounded: it ends, giving the rest of its batch back to the queue (due at once, no
/// attempt counted), once the SMTP server left [`UNANSWERED_IN_A_ROW`] messages in a row
/// unanswered (each cut at [`mailer::message_timeout`] and retried after its backoff), or once
/// it has lasted its lease ([`pass_budget`]): the next pass goes on, and a hung relay never holds
/// the whole queue (password links, breach notices) behind one message.
pub async fn send_due(store: &Store, config: &Config, runner: &str, clock: &dyn Clock) -> anyhow::Result<SendReport> {
    let sender = Sender::new(store, config, runner, clock)?;
    let mut report = SendReport::default();
    loop {
        let batch = claim_batch(store, config, runner, clock.now()).await?;
        if batch.is_empty() || !sender.send_batch(&batch, &mut report).await? {
            return Ok(report);
        }
    }
}

/// Messages in a row the SMTP server may leave unanswered before the pass gives up on it: one may
/// be the server's hiccup (the next message is tried), two in a row end the pass.
pub const UNANSWERED_IN_A_ROW: u32 = 2;

/// The longest a pass goes on claiming and sending (its lease, [`lease`]), measured on the
/// process's monotonic clock: past it, the pass gives back what it holds and ends.
pub fn pass_budget(config: &Config) -> std::time::Duration {
    lease(config).to_std().unwrap_or(std::time::Duration::from_secs(300))
}

/// Sends the message `id` alone, if it is due (`entctl mail test`: never the rest of the queue).
pub async fn send_message(
    store: &Store,
    config: &Config,
    id: &str,
    runner: &str,
    clock: &dyn Clock,
) -> anyhow::Result<SendReport> {
    let sender = Sender::new(store, config, runner, clock)?;
    let mut report = SendReport::default();
    let claimed = claim_message(store, config, runner, id, clock.now()).await?;
    sender.send_batch(&claimed, &mut report).await?;
    Ok(report)
}

/// One sending pass: where it sends from, and the clock it reads at every step.
struct Sender<'a> {
    store: &'a Store,
    config: &'a Config,
    mailer: Mailer,
    runner: &'a str,
    clock: &'a dyn Clock,
    /// When the pass started ([`pass_budget`]).
    started: std::time::Instant,
    /// Messages the SMTP server left unanswered in a row so far ([`UNANSWERED_IN_A_ROW`]).
    unanswered: std::sync::atomic::AtomicU32,
}

impl<'a> Sender<'a> {
    fn new(store: &'a Store, config: &'a Config, runner: &'a str, clock: &'a dyn Clock) -> anyhow::Result<Self> {
        let mailer = Mailer::from_config(config)?;
        let (started, unanswered) = (std::time::Instant::now(), std::sync::atomic::AtomicU32::new(0));
        Ok(Sender { store, config, mailer, runner, clock, started, unanswered })
    }

    /// Why the pass stops before its next message, if it does.
    fn spent(&self) -> Option<&'static str> {
        if self.unanswered.load(std::sync::atomic::Ordering::Relaxed) >= UNANSWERED_IN_A_ROW {
            return Some("the SMTP server left messages unanswered in a row");
        }
        (self.started.elapsed() >= pass_budget(self.config)).then_some("the pass has lasted its lease")
    }

    /// Sends the messages this sender claimed, each under a renewed lease. False when the pass
    /// is spent ([`Sender::spent`]): the messages not tried are given back, due at once.
    async fn send_batch(&self, batch: &[Claimed], report: &mut SendReport) -> anyhow::Result<bool> {
        let (store, config, runner) = (self.store, self.config, self.runner);
        let held = HeldBatch { store, runner, ids: batch.iter().map(|m| m.id.clone()).collect() };
        for (done, message) in batch.iter().enumerate() {
            if let Some(reason) = self.spent() {
                let rest: Vec<String> = batch[done..].iter().map(|m| m.id.clone()).collect();
                let released = release_held(store, runner, &rest).await?;
                tracing::warn!(released, reason, "sending pass ended early: the rest of its batch is due again");
                held.done();
                return Ok(false);
            }
            renew_leases(store, config, runner, self.clock.now()).await?;
            if message.recipients.len() > 1 {
                report.split += u32::from(split(store, message, runner, self.clock.now()).await?);
                continue;
            }
            let unanswered = send_one(store, config, &self.mailer, message, runner, self.clock.now(), report).await?;
            match unanswered {
                true => self.unanswered.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                false => self.unanswered.swap(0, std::sync::atomic::Ordering::Relaxed),
            };
        }
        held.done();
        Ok(true)
    }
}

/// Replaces a message `runner` holds for several recipients (queued before each recipient had
/// a message of their own) by one pending message per recipient, due at `now`, with its
/// template, context, creation date, attempts and last error: one transaction, and only while
/// this sender still holds it, so two senders never both split it and nobody is sent a copy
/// twice. Nothing is sent here; the pass claims the new messages next. False when the message
/// was no longer held (its lease ran out and another sender took it).
async fn split(store: &Store, message: &Claimed, runner: &str, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let mut tx = store.begin_write().await?;
    let held: Option<(String, String)> = sqlx::query_as(
        "DELETE FROM outbox WHERE id = $1 AND claimed_by = $2 AND status = 'sending' RETURNING created_at, context",
    )
    .bind(&message.id)
    .bind(runner)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((created_at, context)) = held else { return Ok(false) };
    let queued = Queued { template: &message.template, context: &context, created_at, attempts: message.attempts };
    let mut ids = Vec::with_capacity(message.recipients.len());
    for recipient in each_once(message.recipients.clone()) {
        ids.push(queued.insert(&mut tx, &recipient, "pending", timestamp(now), message.last_error.as_deref()).await?);
    }
    tx.commit().await?;
    tracing::info!(id = %message.id, into = ?ids, "e-mail to several recipients split into one per recipient");
    Ok(true)
}

/// The messages of a batch this sender claimed. Dropped before the batch is done (the pass
/// cancelled at a shutdown deadline, or stopped by an error), it puts those still `sending`
/// under this sender back in the queue at once, instead of leaving them locked until their
/// lease ends (minutes): in a task, which a process that exits right after never runs, so
/// `serve` also releases what its runners hold before it closes the store ([`release_at_exit`]).
/// A killed process runs no destructor: its lease covers that case.
struct HeldBatch<'a> {
    store: &'a Store,
    runner: &'a str,
    ids: Vec<String>,
}

impl HeldBatch<'_> {
    /// Every message of the batch was sent or recorded as failed: nothing to release.
    fn done(mut self) {
        self.ids.clear();
    }
}

impl Drop for HeldBatch<'_> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, runner, ids) = (self.store.clone(), self.runner.to_string(), std::mem::take(&mut self.ids));
        runtime.spawn(async move {
            match release_held(&store, &runner, &ids).await {
                Ok(released) => tracing::info!(released, "sending pass interrupted: its unsent e-mails are due again"),
                Err(e) => tracing::warn!(error = %e, "unsent e-mails not put back: due again when their lease ends"),
            }
        });
    }
}

/// Puts back in the queue, due now, every message a runner of this process still holds
/// ([`crate::jobs::runner_id`]): called at the end of `serve`, once its passes were cut, since a
/// [`HeldBatch`] dropped then only spawns its release, which a process about to exit never runs.
/// Another replica sends them at once instead of after their lease. Returns how many.
pub async fn release_at_exit(store: &Store, now: DateTime<Utc>) -> sqlx::Result<u64> {
    let released = sqlx::query(
        "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_until = NULL, next_attempt_at = $1 \
         WHERE status = 'sending' AND substr(claimed_by, 1, length($2)) = $2 \
         AND length(claimed_by) = length($2) + $3",
    )
    .bind(timestamp(now))
    .bind(format!("{}-", crate::jobs::process_name()))
    .bind(crate::jobs::RUNNER_SUFFIX as i32)
    .execute(store.pool())
    .await?;
    Ok(released.rows_affected())
}

/// Puts back in the queue the messages of `ids` that `runner` still holds unsent.
async fn release_held(store: &Store, runner: &str, ids: &[String]) -> sqlx::Result<u64> {
    let mut released = 0;
    for id in ids {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND claimed_by = $2 AND status = 'sending'",
        )
        .bind(id)
        .bind(runner)
        .execute(store.pool())
        .await?;
        released += done.rows_affected();
    }
    Ok(released)
}

async fn send_one(
    store: &Store,
    config: &Config,
    mailer: &Mailer,
    message: &Claimed,
    runner: &str,
    now: DateTime<Utc>,
    report: &mut SendReport,
) -> anyhow::Result<bool> {
    let Err(Failure { error, permanent, login_refused, unanswered }) = deliver(config, mailer, message).await else {
        mark_sent(store, &message.id, runner, now).await?;
        report.sent += 1;
        return Ok(false);
    };
    DELIVERY_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if login_refused {
        // Every message would fail alike: the run fails (its batch is put back, due again).
        anyhow::bail!("identifiants SMTP refusés par le serveur (mail.smtp.username, mail.smtp.password) : {error}");
    }
    // An SMTP reply often quotes the recipient: the log gets the error without addresses.
    tracing::warn!(id = %message.id, error = %without_addresses(&error), permanent, "e-mail not sent");
    // A message that cannot be built (bad recipient, template) fails the same way
    // every time: it is parked at once instead of being retried.
    let max = if permanent { 0 } else { config.mail.max_attempts };
    if mark_failed(store, message, &error, runner, max, now).await? {
        report.failed += 1;
    } else {
        report.retried += 1;
    }
    Ok(unanswered)
}

/// Delivery attempts that failed in this process (`entcp_outbox_delivery_failures_total`).
pub static DELIVERY_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Why a message was not delivered, and whether trying again could help.
struct Failure {
    error: String,
    permanent: bool,
    /// The SMTP server refused the login: a configuration error, which fails the run.
    login_refused: bool,
    /// The SMTP server did not answer in time ([`mailer::SendError::unanswered`]).
    unanswered: bool,
}

async fn deliver(config: &Config, mailer: &Mailer, message: &Claimed) -> Result<(), Failure> {
    let permanent = |error| Failure { error, permanent: true, login_refused: false, unanswered: false };
    // Several recipients were split before ([`split`]): none is left only on a row queued empty.
    let [recipient] = message.recipients.as_slice() else {
        return Err(permanent("aucun destinataire : message non envoyé".to_string()));
    };
    let context = mailer::with_link(&config.console, &message.context);
    let rendered = mailer::render(&message.template, &context).map_err(permanent)?;
    let email = mailer::build_message(&message.id, &config.mail.from, recipient, rendered).map_err(permanent)?;
    mailer.send(&message.id, email).await.map_err(|e| Failure {
        error: e.error,
        permanent: false,
        login_refused: e.login_refused,
        unanswered: e.unanswered,
    })
}

/// Makes a failed or waiting message due now, with a fresh count of attempts; also
/// a `sending` one whose sender's lease ran out (the sender died).
pub async fn retry(store: &Store, actor: &Actor, id: &str, now: DateTime<Utc>) -> Result<OutboxMessage, Problem> {
    let mut tx = store.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, \
         claimed_by = NULL, claimed_until = NULL \
         WHERE id = $2 AND (status IN ('pending', 'failed') OR (status = 'sending' AND claimed_until <= $1))",
    )
    .bind(timestamp(now))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 1 {
        let target = Target::new("outbox", id, None);
        audit::record(&mut tx, store.backend(), actor, "outbox.retry", &target, serde_json::json!({}), now).await?;
    }
    tx.commit().await?;
    let message = get_message(store, id).await?;
    if updated.rows_affected() == 0 {
        return Err(Problem::conflict(format!(
            "le message {id} est « {} » : seul un message en attente, en échec, ou en cours d'envoi \
             dont le bail a expiré peut être réessayé",
            message.status
        )));
    }
    Ok(message)
}

/// What the outbox purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub messages: usize,
    /// Their `.eml` copies in `mail_dir` (the file transport), as personal as the rows.
    pub files: usize,
}

/// Deletes the messages sent, or queued and given up (`failed`), more than the retention
/// period ago (their recipients and context are personal data), and the `.eml` file each
/// left in `mail_dir` when the file transport wrote it.
pub async fn purge_sent(
    store: &Store,
    retention_days: u32,
    mail_dir: &std::path::Path,
    now: DateTime<Utc>,
) -> Result<Purged, Problem> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let ids: Vec<String> = sqlx::query_scalar(
        "DELETE FROM outbox WHERE (status = 'sent' AND sent_at < $1) OR (status = 'failed' AND created_at < $1) \
         RETURNING id",
    )
    .bind(timestamp(cutoff))
    .fetch_all(store.pool())
    .await?;
    let files = mailer::remove_eml(mail_dir, &ids).await;
    Ok(Purged { messages: ids.len(), files })
}

/// Filters of `GET /outbox`.
#[derive(Debug, Default, Clone, serde::Deserialize, schemars::JsonSchema)]
pub struct OutboxFilter {
    /// `pending`, `sending`, `sent` or `failed`.
    pub status: Option<String>,
    /// Opaque cursor returned as `next_cursor` by the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

const STATUSES: [&str; 4] = ["pending", "sending", "sent", "failed"];

/// Messages, newest first, one page at a time.
pub async fn list(store: &Store, filter: &OutboxFilter) -> Result<Page<OutboxMessage>, Problem> {
    use ent_kernel::store::{DEFAULT_PAGE, MAX_PAGE};
    let size = match filter.limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => n,
        _ => return Err(Problem::invalid_field("limit", format!("la taille de page va de 1 à {MAX_PAGE}"))),
    };
    let status = filter.status.as_deref().filter(|s| !s.is_empty());
    if let Some(status) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(Problem::invalid_field(
            "status",
            format!("statut inconnu « {status} » (attendu : {})", STATUSES.join(", ")),
        ));
    }
    let before = filter.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()?;
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM outbox \
         WHERE ($1 = '' OR status = $1) AND ($2 = '' OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(status.unwrap_or(""))
    .bind(before.unwrap_or_default())
    .bind(i64::from(size) + 1)
    .fetch_all(store.pool())
    .await?;
    Ok(Page::from_overfetch(rows.iter().map(OutboxMessage::from_row).collect::<sqlx::Result<_>>()?, size, |m| {
        encode_cursor(&m.id)
    }))
}

fn encode_cursor(id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(cursor: &str) -> Result<String, Problem> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| Problem::invalid_field("cursor", "curseur invalide : reprenez depuis la première page"))
}

pub fn send_job(state: &NotifyState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let clock = PassClock::new(now, state.clock.as_ref());
        let report = send_due(&state.store, &state.config, &crate::jobs::runner_id(), &clock).await?;
        Ok(report.summary())
    })
}

pub fn purge_job(state: &NotifyState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let days = state.config.mail.retention_days;
        let purged = purge_sent(&state.store, days, &mailer::mail_dir(&state.config), now).await?;
        Ok(format!(
            "{} courriel(s) envoyé(s) ou abandonné(s) depuis plus de {days} jours supprimé(s), {} fichier(s) .eml",
            purged.messages, purged.files
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_minutes_not_a_whole_batch_of_timeouts() {
        let mut config = Config::default();
        assert_eq!(lease(&config), Duration::minutes(5), "not derived from the batch size");
        config.mail.smtp.timeout_seconds = 200;
        assert_eq!(lease(&config), Duration::seconds(2 * 200), "but never shorter than one message's timeouts");
    }

    #[test]
    fn backoff_grows_then_is_capped() {
        assert_eq!(backoff(1), Duration::minutes(1));
        assert_eq!(backoff(2), Duration::minutes(5));
        assert_eq!(backoff(3), Duration::minutes(15));
        assert_eq!(backoff(4), Duration::hours(1));
        assert_eq!(backoff(50), Duration::hours(12));
    }

    #[test]
    fn each_address_is_kept_once_whatever_its_case_in_its_first_spelling_and_place() {
        let to = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let once = each_once(to(&["dan@ac.fr", "DPO@ac.fr", " Dan@AC.fr", "ent@mairie.fr", "dpo@ac.fr"]));
        assert_eq!(once, to(&["dan@ac.fr", "DPO@ac.fr", "ent@mairie.fr"]));
    }

    #[test]
    fn a_message_needs_recipients_a_known_template_and_an_object_context() {
        let err = check_message(&[], "nope", &serde_json::json!([])).unwrap_err();
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["recipients", "template", "context"]);
        check_message(&["a@exemple.fr".into()], "test", &serde_json::json!({})).unwrap();
    }
}
