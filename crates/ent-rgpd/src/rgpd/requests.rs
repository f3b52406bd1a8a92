//! The log of data-subject requests of a controller (Art. 15 to 22): kind,
//! received date, due date one month later (three when extended, Art. 12(3)),
//! status and answer date. An extension is told to the requester within the first
//! month (Art. 12(3)): the day they were told is recorded, and an extension recorded
//! after that month without a day inside it is refused.

use crate::rgpd::{log_entries, log_entry, new_log_entry, Log, RgpdState, REQUEST_KIND};
use chrono::{Months, NaiveDate};
use ent_kernel::clock::{french_date, next_working_day, today_in_france};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::store::sql::AnyQuery;
use ent_kernel::store::update_versioned;
use ent_kernel::store::{timestamp, Tx};
use ent_kernel::text_enum;
use ent_kernel::validate::is_blank;
use ent_platform::audit::{self, Target};
use ent_platform::identity::Actor;
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Access,
    Rectification,
    Erasure,
    Restriction,
    Portability,
    Objection,
}

text_enum!(RequestKind {
    Access = "access", Rectification = "rectification", Erasure = "erasure", Restriction = "restriction",
    Portability = "portability", Objection = "objection",
});

impl RequestKind {
    fn label(self) -> &'static str {
        match self {
            RequestKind::Access => "accès",
            RequestKind::Rectification => "rectification",
            RequestKind::Erasure => "effacement",
            RequestKind::Restriction => "limitation",
            RequestKind::Portability => "portabilité",
            RequestKind::Objection => "opposition",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Received,
    InProgress,
    Answered,
    Rejected,
}

text_enum!(RequestStatus from Self::ALL);

impl RequestStatus {
    const ALL: [RequestStatus; 4] =
        [RequestStatus::Received, RequestStatus::InProgress, RequestStatus::Answered, RequestStatus::Rejected];

    fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Received => "received",
            RequestStatus::InProgress => "in_progress",
            RequestStatus::Answered => "answered",
            RequestStatus::Rejected => "rejected",
        }
    }

    fn label(self) -> &'static str {
        match self {
            RequestStatus::Received => "reçue",
            RequestStatus::InProgress => "en cours",
            RequestStatus::Answered => "répondue",
            RequestStatus::Rejected => "refusée (motivée)",
        }
    }

    fn closed(self) -> bool {
        matches!(self, RequestStatus::Answered | RequestStatus::Rejected)
    }
}

/// A data-subject request as recorded (creation and full replacement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    pub kind: RequestKind,
    /// Who asked: as little as needed to find the request again (initials, file number).
    pub requester: String,
    /// `YYYY-MM-DD`.
    pub received_on: String,
    #[serde(default = "received")]
    pub status: RequestStatus,
    /// `YYYY-MM-DD`, once answered or rejected.
    #[serde(default)]
    pub answered_on: Option<String>,
    /// The deadline was extended by two months (complex or numerous requests), with the requester informed.
    #[serde(default)]
    pub extended: bool,
    /// `YYYY-MM-DD`: the day the requester was told of the extension and its reasons, within
    /// one month of reception (Art. 12(3)). Today when an extension is recorded without it;
    /// kept as it was when an extension already recorded is not given it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date"))]
    pub extension_notified_on: Option<String>,
    #[serde(default)]
    pub notes: String,
}

fn received() -> RequestStatus {
    RequestStatus::Received
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DataRequest {
    pub id: String,
    pub reference: String,
    pub org_id: String,
    #[serde(flatten)]
    pub input: RequestInput,
    /// One month after reception (three when extended); for an open request computed when
    /// read by today's rule, for a closed one the date it was answered against.
    pub due_on: String,
    /// Still open after its due date, or answered (or refused) after it.
    pub overdue: bool,
    pub version: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// One month after `received`; when extended, two further months after that first deadline
/// (Art. 12(3)), each step ending at the month's end when the day does not exist. A deadline
/// falling on a Saturday, a Sunday or a public holiday moves to the next working day
/// (Regulation No 1182/71, article 3(4)).
pub fn due_on(received: NaiveDate, extended: bool) -> NaiveDate {
    let first = received + Months::new(1);
    next_working_day(if extended { first + Months::new(2) } else { first })
}

/// Checks `input` against `today` and the request as recorded (`None` for a new one): the
/// reception date, and the day the requester was told of an extension, as it is to be stored.
fn validate(
    input: &RequestInput,
    today: NaiveDate,
    recorded: Option<&RequestInput>,
) -> Result<(NaiveDate, Option<String>), Problem> {
    let mut checks = Checks::default();
    checks.line("requester", &input.requester);
    super::at_most(&mut checks, "requester", &input.requester, super::breaches::LINE_MAX);
    super::at_most(&mut checks, "notes", &input.notes, super::breaches::TEXT_MAX);
    if is_blank(&input.requester) {
        checks.fail("requester", "champ obligatoire (initiales ou numéro de dossier)");
    }
    let received = checks.date("received_on", &input.received_on);
    if received.is_some_and(|r| r > today) {
        checks.fail("received_on", "la date de réception est dans le futur");
    }
    match (&input.answered_on, input.status.closed()) {
        (None, true) => checks.fail("answered_on", "la date de réponse est requise pour une demande close"),
        (Some(a), _) => {
            if let (Some(a), Some(r)) = (checks.date("answered_on", a), received) {
                if a < r {
                    checks.fail("answered_on", "la réponse précède la réception");
                } else if a > today {
                    checks.fail("answered_on", "la date de réponse est dans le futur");
                }
            }
        }
        _ => {}
    }
    if input.status == RequestStatus::Rejected && is_blank(&input.notes) {
        checks.fail(
            "notes",
            "un refus doit être motivé : indiquez ses raisons et que la personne a été informée de son droit \
             d'introduire une réclamation auprès de la CNIL (article 12.4 du RGPD)",
        );
    }
    let told = received.and_then(|r| extension_told(input, r, today, recorded, &mut checks));
    checks.finish()?;
    Ok((received.expect("checked"), told))
}

/// The day the requester was told of the extension (Art. 12(3)): given, kept from the
/// record, or today for an extension recorded now; it falls between the reception and the
/// end of the first month, and not after today. A legacy extension recorded without that
/// day stays as it was.
fn extension_told(
    input: &RequestInput,
    received: NaiveDate,
    today: NaiveDate,
    recorded: Option<&RequestInput>,
    checks: &mut Checks,
) -> Option<String> {
    let field = "extension_notified_on";
    if !input.extended {
        if input.extension_notified_on.as_deref().is_some_and(|d| !d.trim().is_empty()) {
            checks.fail(field, "sans prolongation du délai, pas de date d'information de la personne");
        }
        return None;
    }
    let kept = recorded.filter(|r| r.extended).map(|r| r.extension_notified_on.as_deref());
    let (told, field) = match (input.extension_notified_on.as_deref().filter(|d| !d.trim().is_empty()), kept) {
        (Some(given), _) | (None, Some(Some(given))) => (checks.date(field, given)?, field),
        (None, Some(None)) => return None,
        // Recorded now: the requester is told today, the box is where the error goes.
        (None, None) => (today, "extended"),
    };
    let last = due_on(received, false);
    if told < received {
        checks.fail(field, "la personne ne peut être informée de la prolongation avant la réception de sa demande");
    } else if told > today {
        checks.fail(field, "la date d'information de la personne est dans le futur");
    } else if told > last {
        checks.fail(
            field,
            format!(
                "la prolongation doit être notifiée à la personne dans le mois qui suit la réception de sa demande, \
                 au plus tard le {} (article 12.3 du RGPD) : indiquez le jour où elle en a été informée, \
                 ou enregistrez la demande sans prolongation",
                french_date(&last.to_string())
            ),
        );
    }
    Some(told.to_string())
}

const TABLE: &str = Log::Requests.table();
const COLUMNS: &str = "id, reference, org_id, kind, requester, received_on, due_on, status, answered_on, notes, \
    extension_notified_on, version, created_by, created_at, updated_at";

/// A row of `rgpd_requests` as stored ([`COLUMNS`]).
#[derive(sqlx::FromRow)]
struct RequestRow {
    id: String,
    reference: String,
    org_id: String,
    #[sqlx(try_from = "String")]
    kind: RequestKind,
    requester: String,
    received_on: String,
    due_on: String,
    #[sqlx(try_from = "String")]
    status: RequestStatus,
    answered_on: Option<String>,
    notes: String,
    extension_notified_on: Option<String>,
    version: i64,
    created_by: String,
    created_at: String,
    updated_at: String,
}

fn from_row(r: RequestRow, today: NaiveDate) -> DataRequest {
    let received = NaiveDate::parse_from_str(&r.received_on, "%Y-%m-%d").ok();
    // Extended when due after the first month (rows written before the Art. 12(3) arithmetic
    // was corrected keep `received + 3 months`, which differs at some month ends).
    let extended = received.is_some_and(|d| r.due_on > day(self::due_on(d, false)));
    let due_on = due_now(&r, received, extended);
    let overdue = late(r.status, r.answered_on.as_deref(), &due_on, today);
    DataRequest {
        id: r.id,
        reference: r.reference,
        org_id: r.org_id,
        overdue,
        input: RequestInput {
            kind: r.kind,
            requester: r.requester,
            received_on: r.received_on,
            status: r.status,
            answered_on: r.answered_on,
            extended,
            extension_notified_on: r.extension_notified_on.filter(|_| extended),
            notes: r.notes,
        },
        due_on,
        version: r.version,
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// The due date of a request as read: for an open one, computed from its stored facts (its
/// reception and whether it was extended) by today's rule, [`due_on`], so that a date stored
/// under an earlier rule (three months from the reception, no move to the next working day)
/// does not stay shown; a closed one keeps the date it was answered against.
fn due_now(r: &RequestRow, received: Option<NaiveDate>, extended: bool) -> String {
    match received {
        Some(received) if !r.status.closed() => day(due_on(received, extended)),
        _ => r.due_on.clone(),
    }
}

/// `YYYY-MM-DD`, as the dates of the log are stored.
fn day(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Late: still open after `due_on`, or closed on a day after it (ISO dates compare as text).
fn late(status: RequestStatus, answered_on: Option<&str>, due_on: &str, today: NaiveDate) -> bool {
    if status.closed() {
        answered_on.is_some_and(|answered| answered > due_on)
    } else {
        day(today).as_str() > due_on
    }
}

fn today(state: &RgpdState) -> NaiveDate {
    today_in_france(state.clock.now())
}

pub async fn list(state: &RgpdState, org: &Org) -> Result<Vec<DataRequest>, Problem> {
    let today = today(state);
    let rows: Vec<RequestRow> = log_entries(&state.store, TABLE, COLUMNS, org, "received_on DESC, id DESC").await?;
    Ok(rows.into_iter().map(|r| from_row(r, today)).collect())
}

pub async fn get(state: &RgpdState, org: &Org, id: &str) -> Result<DataRequest, Problem> {
    let row: Option<RequestRow> = log_entry(&state.store, TABLE, COLUMNS, org, id).await?;
    row.map(|r| from_row(r, today(state))).ok_or_else(|| Problem::not_found(format!("aucune demande « {id} »")))
}

async fn audit_change(
    tx: &mut Tx,
    state: &RgpdState,
    actor: &Actor,
    action: &str,
    id: &str,
    org: &Org,
    input: &RequestInput,
) -> Result<(), Problem> {
    let target = Target::new(REQUEST_KIND, id, Some(&org.id));
    let summary = serde_json::json!({ "kind": input.kind.as_str(), "status": input.status.as_str() });
    audit::record(tx, state.store.backend(), actor, action, &target, summary, state.clock.now()).await
}

/// The checks [`create`] runs on `input`, writing nothing: a form that could not read some
/// fields says their errors with these, in one round.
pub fn check_new(state: &RgpdState, input: &RequestInput) -> Result<(), Problem> {
    validate(input, today(state), None).map(|_| ())
}

pub async fn create(state: &RgpdState, actor: &Actor, org: &Org, input: RequestInput) -> Result<DataRequest, Problem> {
    let now = state.clock.now();
    let (received, told) = validate(&input, today(state), None)?;
    let at = timestamp(now);
    let mut tx = state.store.begin_write().await?;
    // Numbered first, under the organisation's row lock: a second send waits for the first one
    // and then finds it (a duplicate rolls the number back with the rest).
    let (id, reference) = new_log_entry(&mut tx, Log::Requests, &org.id, now).await?;
    // The same right exercised by the same requester, received the same day with the same
    // notes, is the same request (a form sent twice): the one recorded answers, nothing is
    // written or audited again.
    let same: Option<String> = sqlx::query_scalar(
        "SELECT id FROM rgpd_requests WHERE org_id = $1 AND kind = $2 AND requester = $3 AND received_on = $4 \
         AND notes = $5",
    )
    .bind(&org.id)
    .bind(input.kind.as_str())
    .bind(&input.requester)
    .bind(&input.received_on)
    .bind(&input.notes)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(recorded) = same {
        drop(tx);
        return get(state, org, &recorded).await;
    }
    let insert = sqlx::query(
        "INSERT INTO rgpd_requests (id, reference, org_id, kind, requester, received_on, due_on, status, answered_on, \
         notes, extension_notified_on, version, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, $13)",
    )
    .bind(&id)
    .bind(&reference)
    .bind(&org.id);
    bind_input(insert, &input, received, told).bind(&actor.name).bind(&at).execute(&mut *tx).await?;
    audit_change(&mut tx, state, actor, "rgpd.request.create", &id, org, &input).await?;
    tx.commit().await?;
    get(state, org, &id).await
}

/// Binds the eight columns an input sets, from `kind` to `extension_notified_on` (`due_on`
/// from `received`, the last as [`validate`] settled it).
fn bind_input<'q>(
    query: AnyQuery<'q>,
    input: &'q RequestInput,
    received: NaiveDate,
    told: Option<String>,
) -> AnyQuery<'q> {
    query
        .bind(input.kind.as_str())
        .bind(&input.requester)
        .bind(&input.received_on)
        .bind(day(due_on(received, input.extended)))
        .bind(input.status.as_str())
        .bind(&input.answered_on)
        .bind(&input.notes)
        .bind(told)
}

pub async fn update(
    state: &RgpdState,
    actor: &Actor,
    org: &Org,
    id: &str,
    input: RequestInput,
    expected: i64,
) -> Result<DataRequest, Problem> {
    let current = get(state, org, id).await?;
    let (received, told) = validate(&input, today(state), Some(&current.input))?;
    let mut tx = state.store.begin_write().await?;
    let update = sqlx::query(
        "UPDATE rgpd_requests SET kind = $1, requester = $2, received_on = $3, due_on = $4, status = $5, answered_on = $6, \
         notes = $7, extension_notified_on = $8, version = version + 1, updated_at = $9 WHERE id = $10 AND version = $11",
    );
    let query = bind_input(update, &input, received, told);
    update_versioned(&mut tx, query, state.clock.now(), &current.id, expected, current.version).await?;
    audit_change(&mut tx, state, actor, "rgpd.request.update", &current.id, org, &input).await?;
    tx.commit().await?;
    get(state, org, &current.id).await
}

pub const HEADER: [&str; 9] =
    ["Référence", "Droit exercé", "Demandeur", "Reçue le", "Échéance", "Statut", "Répondue le", "En retard", "Notes"];

pub fn rows(requests: &[DataRequest]) -> Vec<Vec<String>> {
    requests
        .iter()
        .map(|r| {
            let i = &r.input;
            vec![
                r.reference.clone(),
                i.kind.label().into(),
                i.requester.clone(),
                french_date(&i.received_on),
                due_cell(r),
                i.status.label().into(),
                i.answered_on.as_deref().map(french_date).unwrap_or_default(),
                super::export::yes_no(r.overdue).into(),
                i.notes.clone(),
            ]
        })
        .collect()
}

/// The due date, and when extended, the day the requester was told of it.
fn due_cell(r: &DataRequest) -> String {
    let due = french_date(&r.due_on);
    match (r.input.extended, &r.input.extension_notified_on) {
        (false, _) => due,
        (true, None) => format!("{due} (prolongée)"),
        (true, Some(told)) => format!("{due} (prolongée, personne informée le {})", french_date(told)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_due_date_is_one_month_later_or_three_when_extended() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 28 February 2026 is a Saturday: the next working day.
        assert_eq!(due_on(d("2026-01-31"), false), d("2026-03-02"));
        assert_eq!(due_on(d("2026-09-15"), false), d("2026-10-15"));
        assert_eq!(due_on(d("2026-09-15"), true), d("2026-12-15"));
        // Two further months after the first deadline, not three after the reception;
        // 30 January 2027 is a Saturday.
        assert_eq!(due_on(d("2026-10-31"), true), d("2027-02-01"));
        assert_eq!(due_on(d("2027-01-30"), true), d("2027-04-28"));
        // Saturday 30 May 2026, then Sunday: Monday 1 June.
        assert_eq!(due_on(d("2026-04-30"), false), d("2026-06-01"));
        // Wednesday 11 November 2026 is a public holiday (Armistice): Thursday 12.
        assert_eq!(due_on(d("2026-10-11"), false), d("2026-11-12"));
    }
}
