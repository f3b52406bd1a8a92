//! One-time submission tokens of the creation forms (a ticket, a convention): the form
//! carries a random token in a hidden field ([`FIELD`]); the first post of that token
//! claims it, creates, and records where the creation leads; the same token posted again
//! (a double click, the answer reloaded) creates nothing and goes where the first post
//! went. A refused post releases its token, so the corrected form (which keeps it) can be
//! sent again. The creation runs inside [`Submission::run`], so that its write transactions
//! mark the token as used (`store::IdempotencyKey::scope`): a post that wrote and then failed
//! keeps its token, and posting it again shows that it ran rather than creating twice.
//!
//! The claims are rows of `idempotency_keys`, the table of the API's `Idempotency-Key`
//! (`api::idempotency` in the server): same actor column, a key of its own
//! (`console:<form>:<token>`), the same lease for a post in flight, so that a claim left
//! by a process that died is taken again once its lease ran out.

use crate::forms::Fields;
use crate::page::ErrorPage;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use ent_kernel::error::Problem;
use ent_kernel::store::{IdempotencyKey, Store, RAN_UNANSWERED};
use ent_platform::identity::sessions::random_secret;
use ent_platform::identity::Actor;

/// The hidden field of the token.
pub const FIELD: &str = "_envoi";

/// How long a post in flight holds its token.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// What the `request_hash` column holds for a form's claim (the token is the request).
const FORM_CLAIM: &str = "console-form";
/// How many times, and how often, a second post waits for the first one still in flight.
const WAITS: u32 = 40;
const WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The token the form carries: the posted one when it is one (a form shown again after a
/// refusal or a search keeps it), a new one otherwise.
pub fn token(fields: &Fields) -> String {
    fields.opt(FIELD).filter(|t| well_formed(t)).unwrap_or_else(random_secret)
}

fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One form's token of one person (none for a form posted without a token, an older page).
pub struct Submission<'a> {
    store: &'a Store,
    held: Option<IdempotencyKey>,
}

/// What a post does with its token.
pub enum Claim<'a> {
    /// The first post of the token: it creates, then calls [`Submission::done`], or
    /// [`Submission::release`] when it created nothing.
    First(Submission<'a>),
    /// The token was used: the answer is where its first post led.
    Done(Response),
}

/// Claims the token posted in `fields` for `form` (`tickets`, `conventions`), for `actor`.
pub async fn claim<'a>(
    store: &'a Store,
    actor: &Actor,
    form: &str,
    fields: &Fields,
    now: DateTime<Utc>,
) -> Result<Claim<'a>, Problem> {
    let Some(token) = fields.opt(FIELD).filter(|t| well_formed(t)) else {
        return Ok(Claim::First(Submission { store, held: None }));
    };
    let key = IdempotencyKey { actor: actor.name.clone(), key: format!("console:{form}:{token}") };
    let submission = Submission { store, held: Some(key) };
    for _ in 0..WAITS {
        if submission.take(now).await? {
            return Ok(Claim::First(submission));
        }
        if let Some(answer) = submission.answer(now).await? {
            return Ok(Claim::Done(answer));
        }
        // The first post is still in flight (a double click): its answer comes shortly.
        tokio::time::sleep(WAIT).await;
    }
    Ok(Claim::Done(ErrorPage::response(
        StatusCode::CONFLICT,
        "ce formulaire est déjà en cours d'envoi : patientez puis ouvrez la liste pour retrouver ce qui a été créé",
    )))
}

impl Submission<'_> {
    /// Takes the token: new, or left in flight by a post whose lease ran out.
    async fn take(&self, now: DateTime<Utc>) -> Result<bool, Problem> {
        let Some(key) = &self.held else { return Ok(true) };
        key.claim(self.store, FORM_CLAIM, now, now + LEASE).await
    }

    /// The answer to the token posted again, once its first post is over: where that post led,
    /// or (it wrote, then failed) that it ran.
    async fn answer(&self, now: DateTime<Utc>) -> Result<Option<Response>, Problem> {
        let Some(key) = &self.held else { return Ok(None) };
        let Some(stored) = key.stored(self.store).await? else { return Ok(None) };
        if stored.ran_unanswered(now) {
            return Ok(Some(ErrorPage::response(StatusCode::CONFLICT, RAN_UNANSWERED)));
        }
        Ok(stored.response.filter(|_| stored.status != 0).map(|location| crate::page::redirect(&location)))
    }

    /// Runs the post's creation as the token's request: its writes mark the token as used.
    pub async fn run<F: std::future::Future>(&self, work: F) -> F::Output {
        match &self.held {
            Some(key) => key.scope(work).await,
            None => work.await,
        }
    }

    /// Records that the post created what `location` shows.
    pub async fn done(&self, location: &str) -> Result<(), Problem> {
        let Some(key) = &self.held else { return Ok(()) };
        key.finish(self.store, StatusCode::SEE_OTHER.as_u16(), location, None).await
    }

    /// Frees the token of a post that failed: the form can be sent again, unless the post's
    /// writes committed (then the token is kept, and a post of it again says it ran).
    pub async fn release(&self) -> Result<(), Problem> {
        let Some(key) = &self.held else { return Ok(()) };
        key.release(self.store).await?;
        Ok(())
    }
}
