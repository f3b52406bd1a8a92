//! Support reports per level or per tenant: backlog by status, median and p90
//! of the time to first response and to resolution (business hours, from the
//! per-level clocks stored at each event), SLA compliance and breaches.
//! Rendered as JSON or CSV (`;`-separated, for French spreadsheets).
//!
//! A report may cover a period ([`Period`]: French-calendar days in Paris, both
//! ends inclusive): it then counts the tickets created in the period only, their
//! backlog by their current status and their levels' delays. A vendor (an N3
//! without an N1 or N2 role) sees its own level's row and tickets only.

use super::{at_levels, Level, Status};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ent_documents::documents;
use ent_kernel::clock::french_date;
use ent_kernel::error::{Checks, Problem};
use ent_kernel::kernel::roles::Role;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::Condition;
use ent_kernel::store::{timestamp, Store};
use ent_kernel::validate::printable;
use ent_platform::identity::Actor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Level,
    Tenant,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `level` (default) or `tenant`.
    pub by: Option<GroupBy>,
    /// `json` (default) or `csv`.
    #[schemars(extend("enum" = ["json", "csv"]))]
    pub format: Option<String>,
    /// Premier jour de la période (AAAA-MM-JJ, jour du calendrier français, heure de Paris) :
    /// le rapport ne compte que les tickets créés entre `from` et `to` inclus. Sans période,
    /// tous les tickets depuis le début.
    #[schemars(extend("format" = "date"))]
    pub from: Option<String>,
    /// Dernier jour de la période (AAAA-MM-JJ, inclus), pas avant `from`.
    #[schemars(extend("format" = "date"))]
    pub to: Option<String>,
    /// Un mois entier (AAAA-MM) au lieu de `from` et `to` : les tickets créés ce mois-là.
    #[schemars(extend("pattern" = "^[0-9]{4}-[0-9]{2}$"))]
    pub month: Option<String>,
}

impl ReportQuery {
    /// The period the query asks for, checked.
    pub fn period(&self) -> Result<Option<Period>, Problem> {
        Period::parse(self.from.as_deref(), self.to.as_deref(), self.month.as_deref())
    }
}

/// The days a report covers, French-calendar days in Paris, both ends inclusive
/// (an open end: since the first ticket, or up to now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// A query value, trimmed; none when blank.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl Period {
    /// The period of `from`/`to` (`AAAA-MM-JJ`) or of `month` (`AAAA-MM`), none when
    /// none is given; a malformed date, a month given with days, or an end before the
    /// start is refused on its field.
    pub fn parse(from: Option<&str>, to: Option<&str>, month: Option<&str>) -> Result<Option<Period>, Problem> {
        let (from, to, month) = (given(from), given(to), given(month));
        if let Some(month) = month {
            if from.is_some() || to.is_some() {
                return Err(Problem::invalid_field("month", "un mois ou des jours (from, to), pas les deux"));
            }
            return Period::month(month).map(Some);
        }
        let mut checks = Checks::default();
        let from = from.and_then(|v| checks.date("from", v));
        let to = to.and_then(|v| checks.date("to", v));
        checks.finish()?;
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(Problem::invalid_field(
                    "to",
                    format!(
                        "la fin de la période ({}) précède son début ({})",
                        french_date(&t.to_string()),
                        french_date(&f.to_string())
                    ),
                ));
            }
        }
        Ok((from.is_some() || to.is_some()).then_some(Period { from, to }))
    }

    /// The whole month `AAAA-MM`.
    pub fn month(value: &str) -> Result<Period, Problem> {
        let bad =
            || Problem::invalid_field("month", format!("mois « {} » invalide : attendu AAAA-MM", printable(value)));
        let first = NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").map_err(|_| bad())?;
        if value.len() != 7 {
            return Err(bad());
        }
        let last = first.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).ok_or_else(bad)?;
        Ok(Period { from: Some(first), to: Some(last) })
    }

    /// Whether the period is one whole month.
    fn whole_month(&self) -> Option<NaiveDate> {
        let (from, to) = (self.from?, self.to?);
        let next = from.checked_add_months(chrono::Months::new(1))?;
        (from.day() == 1 && next.pred_opt() == Some(to)).then_some(from)
    }

    /// The period in words: « mai 2027 », « du 1er mai 2027 au 15 mai 2027 », « depuis le … », « jusqu'au … ».
    pub fn label(&self) -> String {
        if let Some(first) = self.whole_month() {
            let day = french_date(&first.to_string());
            return day.strip_prefix("1er ").unwrap_or(&day).to_string();
        }
        let day = |d: NaiveDate| french_date(&d.to_string());
        match (self.from, self.to) {
            (Some(f), Some(t)) if f == t => format!("le {}", day(f)),
            (Some(f), Some(t)) => format!("du {} au {}", day(f), day(t)),
            (Some(f), None) => format!("depuis le {}", day(f)),
            (None, Some(t)) => format!("jusqu'au {}", day(t)),
            (None, None) => "depuis le début".to_string(),
        }
    }

    /// The period in a file name: `2027-05`, `2027-05-01_2027-05-15`, `depuis-…`, `jusqu-au-…`.
    pub fn slug(&self) -> String {
        if let Some(first) = self.whole_month() {
            return first.format("%Y-%m").to_string();
        }
        match (self.from, self.to) {
            (Some(f), Some(t)) => format!("{f}_{t}"),
            (Some(f), None) => format!("depuis-{f}"),
            (None, Some(t)) => format!("jusqu-au-{t}"),
            (None, None) => "tout".to_string(),
        }
    }

    /// The tickets (alias `t`) created in the period: from midnight in Paris on the
    /// first day to midnight in Paris after the last.
    fn condition(&self) -> Condition {
        let mut c = Condition::default();
        if let Some(start) = self.from.and_then(paris_midnight) {
            c.push("t.created_at >= ?", &[&timestamp(start)]);
        }
        if let Some(end) = self.to.and_then(|d| d.succ_opt()).and_then(paris_midnight) {
            c.push("t.created_at < ?", &[&timestamp(end)]);
        }
        c
    }
}

/// The instant a day starts in Paris (midnight, or the first instant after a gap).
fn paris_midnight(day: NaiveDate) -> Option<DateTime<Utc>> {
    let at = |t: chrono::NaiveDateTime| t.and_local_timezone(chrono_tz::Europe::Paris).earliest();
    let midnight = day.and_hms_opt(0, 0, 0)?;
    at(midnight).or_else(|| at(midnight + chrono::Duration::hours(1))).map(|t| t.with_timezone(&Utc))
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct Backlog {
    pub new: i64,
    pub in_progress: i64,
    pub waiting_requester: i64,
    pub resolved: i64,
    pub closed: i64,
}

impl Backlog {
    fn add(&mut self, status: Status, n: i64) {
        match status {
            Status::New => self.new += n,
            Status::InProgress => self.in_progress += n,
            Status::WaitingRequester => self.waiting_requester += n,
            Status::Resolved => self.resolved += n,
            Status::Closed => self.closed += n,
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct ReportRow {
    /// The level (per-level report) or the tenant slug (per-tenant report).
    pub key: String,
    /// Tickets currently at this level (per tenant: all of the tenant's), by status.
    pub backlog: Backlog,
    /// Tickets this level held (per tenant: the tenant's tickets, each counted once
    /// however many levels it went through).
    pub handled: i64,
    pub first_response_median_hours: Option<f64>,
    pub first_response_p90_hours: Option<f64>,
    pub resolution_median_hours: Option<f64>,
    pub resolution_p90_hours: Option<f64>,
    /// Share of the settled tickets without a breach (per tenant: at no level).
    pub compliance_percent: Option<f64>,
    /// Held tickets with at least one breach (per tenant: at any level).
    pub breaches: i64,
    /// Tickets whose outcome is known: breached, or resolved or closed (per level: also
    /// those the level passed on); the compliance is over these only.
    pub settled: i64,
    /// Undecided tickets already answered and still within their targets (« en cours dans les délais »).
    pub open_on_time: i64,
    /// Undecided tickets without a first response yet (« sans réponse »).
    pub unanswered: i64,
}

/// Nearest-rank percentile of sorted seconds, in hours rounded to 0.01.
fn percentile_hours(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some((sorted[rank - 1] as f64 / 36.0).round() / 100.0)
}

#[derive(Default)]
struct Acc {
    row: ReportRow,
    first: Vec<i64>,
    resolution: Vec<i64>,
    /// Percentiles already read through the indexes.
    indexed: bool,
}

/// Whether `actor` reports as a vendor: not an admin, and no N1 nor N2 role.
fn vendor_only(actor: &Actor) -> bool {
    !actor.is_admin() && actor.bindings.iter().all(|b| !matches!(b.role, Role::SupportN1 | Role::SupportN2))
}

/// The levels `actor` reports on: a vendor its own (N3), everyone else all three.
fn reported_levels(actor: &Actor) -> &'static [Level] {
    if vendor_only(actor) {
        &[Level::N3]
    } else {
        &Level::ALL
    }
}

/// The report over the tickets `actor` may see, created in `period` if given.
pub async fn report(
    store: &Store,
    actor: &Actor,
    by: GroupBy,
    period: Option<&Period>,
) -> Result<Vec<ReportRow>, Problem> {
    let scope = super::visible_condition(actor);
    let mut tickets = scope.clone().unwrap_or_default();
    if let Some(p) = period {
        tickets.and(p.condition());
    }
    let levels = reported_levels(actor);
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    if by == GroupBy::Level {
        for l in levels {
            acc.entry(l.as_str().to_string()).or_default();
        }
    }
    // The vendor sees its own level's tickets and figures only, not the académie's.
    let mut backlog = tickets.clone();
    let mut held = tickets;
    if levels.len() < Level::ALL.len() {
        backlog.and(at_levels("t.level", levels));
        held.and(at_levels("l.level", levels));
    }
    let key_col = match by {
        GroupBy::Level => "t.level",
        GroupBy::Tenant => "t.tenant_id",
    };
    let sql = format!(
        "SELECT {key_col} AS k, t.status AS status, COUNT(*) AS n FROM support_tickets t WHERE {} GROUP BY {key_col}, t.status",
        backlog.sql()
    );
    for r in backlog.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
        let (key, status, n) = <(String, String, i64)>::from_row(&r)?;
        acc.entry(key).or_default().row.backlog.add(Status::try_from(status)?, n);
    }
    let key_col = match by {
        GroupBy::Level => "l.level",
        GroupBy::Tenant => "l.tenant_id",
    };
    let joined = scope.is_some() || period.is_some();
    let from = "support_ticket_levels l JOIN support_tickets t ON t.id = l.ticket_id";
    if by == GroupBy::Tenant {
        per_ticket(store, &held, from, &mut acc).await?;
        return finish(store, acc, by).await;
    }
    // Settled at a level: breached there, or its part is over (the ticket resolved or
    // closed, or no longer at this level); the rest is undecided, answered or not.
    let settled = "(l.breached = 1 OR t.status IN ('resolved', 'closed') OR t.level <> l.level)";
    let sql = format!(
        "SELECT {key_col} AS k, COUNT(*) AS n, CAST(COALESCE(SUM(l.breached), 0) AS BIGINT) AS b, \
         CAST(COALESCE(SUM(CASE WHEN {settled} THEN 1 ELSE 0 END), 0) AS BIGINT) AS s, \
         CAST(COALESCE(SUM(CASE WHEN NOT {settled} AND l.first_response_seconds IS NULL THEN 1 ELSE 0 END), 0) \
         AS BIGINT) AS u FROM {from} WHERE {} GROUP BY {key_col}",
        held.sql()
    );
    for r in held.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
        let (key, handled, breaches, settled, unanswered) = <(String, i64, i64, i64, i64)>::from_row(&r)?;
        let a = acc.entry(key).or_default();
        a.row.handled = handled;
        a.row.breaches = breaches;
        a.row.settled = settled;
        a.row.unanswered = unanswered;
        a.row.open_on_time = handled - settled - unanswered;
    }
    if !joined {
        percentiles_by_index(store, &mut acc).await?;
    } else {
        fetch_values(store, &held, key_col, from, &mut acc).await?;
    }
    finish(store, acc, by).await
}

/// Platform-wide per-level percentiles: the count, then the value at the
/// nearest rank, each read through the `(level, seconds)` indexes.
async fn percentiles_by_index(store: &Store, acc: &mut BTreeMap<String, Acc>) -> Result<(), Problem> {
    for l in Level::ALL {
        let a = acc.entry(l.as_str().to_string()).or_default();
        for (column, first) in [("first_response_seconds", true), ("resolution_seconds", false)] {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) AS n FROM support_ticket_levels WHERE level = $1 AND {column} IS NOT NULL"
            ))
            .bind(l.as_str())
            .fetch_one(store.pool())
            .await?;
            let at = |p: f64| ((p * n as f64).ceil() as i64).clamp(1, n.max(1)) - 1;
            let mut values = Vec::new();
            for offset in [at(0.5), at(0.9)].into_iter().filter(|_| n > 0) {
                let v: i64 = sqlx::query_scalar(&format!(
                    "SELECT {column} AS s FROM support_ticket_levels WHERE level = $1 AND {column} IS NOT NULL \
                     ORDER BY {column} LIMIT 1 OFFSET $2"
                ))
                .bind(l.as_str())
                .bind(offset)
                .fetch_one(store.pool())
                .await?;
                values.push(v);
            }
            let hours = |i: usize| values.get(i).map(|v| (*v as f64 / 36.0).round() / 100.0);
            let (median, p90) = (hours(0), hours(1));
            if first {
                (a.row.first_response_median_hours, a.row.first_response_p90_hours) = (median, p90);
            } else {
                (a.row.resolution_median_hours, a.row.resolution_p90_hours) = (median, p90);
            }
            a.indexed = true;
        }
    }
    Ok(())
}

/// One level row of a ticket, as the per-tenant report reads it.
#[derive(FromRow)]
struct TicketLevelRow {
    tenant_id: String,
    ticket_id: String,
    status: String,
    level: String,
    held_seconds: i64,
    first_response_seconds: Option<i64>,
    breached: i64,
    answered_seconds: Option<i64>,
}

/// Per tenant, each ticket once: breached if breached at any level; its first response
/// when the requester was first answered (`answered_seconds`; for a ticket closed before
/// that was recorded, the first one given going up the levels: N1, then N2 after N1's time,
/// then N3); its
/// resolution, once resolved or closed, the business time all its levels held it
/// (creation to resolution, pauses excluded).
/// The first response of a ticket recorded before `answered_seconds`: the first one given going
/// up the levels, after the time the levels below held it.
fn climbed_first_response(levels: &[TicketLevelRow]) -> Option<i64> {
    let mut before = 0;
    for l in levels {
        if let Some(s) = l.first_response_seconds {
            return Some(before + s);
        }
        before += l.held_seconds;
    }
    None
}

async fn per_ticket(
    store: &Store,
    cond: &Condition,
    from: &str,
    acc: &mut BTreeMap<String, Acc>,
) -> Result<(), Problem> {
    let sql = format!(
        "SELECT t.tenant_id AS tenant_id, t.id AS ticket_id, t.status AS status, l.level AS level, l.held_seconds AS \
         held_seconds, l.first_response_seconds AS first_response_seconds, l.breached AS breached, \
         t.answered_seconds AS answered_seconds FROM {from} \
         WHERE {} ORDER BY t.tenant_id, t.id, l.level",
        cond.sql()
    );
    let rows: Vec<TicketLevelRow> =
        cond.bind(sqlx::query(&sql)).try_map(|r| TicketLevelRow::from_row(&r)).fetch_all(store.pool()).await?;
    let mut i = 0;
    while i < rows.len() {
        let j = i + rows[i..].iter().take_while(|r| r.ticket_id == rows[i].ticket_id).count();
        let levels = &rows[i..j];
        let first = &levels[0];
        let a = acc.entry(first.tenant_id.clone()).or_default();
        let status = Status::try_from(first.status.clone())?;
        let breached = levels.iter().any(|l| l.breached != 0);
        let done = matches!(status, Status::Resolved | Status::Closed);
        // Rows come ordered n1, n2, n3 (the levels' names sort as their order).
        // Open tickets are derived again under the rules that record `answered_seconds`: there
        // NULL is « not answered »; a ticket settled before them has only its levels' figures.
        let first_response = first.answered_seconds.or_else(|| done.then(|| climbed_first_response(levels)).flatten());
        a.row.handled += 1;
        a.row.breaches += i64::from(breached);
        if breached || done {
            a.row.settled += 1;
        } else if first_response.is_none() {
            a.row.unanswered += 1;
        } else {
            a.row.open_on_time += 1;
        }
        a.first.extend(first_response);
        if done {
            a.resolution.push(levels.iter().map(|l| l.held_seconds).sum());
        }
        debug_assert!(levels.iter().all(|l| Level::parse(&l.level).is_some()));
        i = j;
    }
    for a in acc.values_mut() {
        a.first.sort_unstable();
        a.resolution.sort_unstable();
    }
    Ok(())
}

/// Per-group values fetched sorted, percentiles computed here.
async fn fetch_values(
    store: &Store,
    cond: &Condition,
    key_col: &str,
    from: &str,
    acc: &mut BTreeMap<String, Acc>,
) -> Result<(), Problem> {
    for (column, first) in [("first_response_seconds", true), ("resolution_seconds", false)] {
        let sql = format!(
            "SELECT {key_col} AS k, l.{column} AS s FROM {from} WHERE {} AND l.{column} IS NOT NULL ORDER BY {key_col}, l.{column}",
            cond.sql()
        );
        for r in cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
            let (key, seconds) = <(String, i64)>::from_row(&r)?;
            let a = acc.entry(key).or_default();
            let target = if first { &mut a.first } else { &mut a.resolution };
            target.push(seconds);
        }
    }
    Ok(())
}

async fn finish(store: &Store, acc: BTreeMap<String, Acc>, by: GroupBy) -> Result<Vec<ReportRow>, Problem> {
    let slugs: BTreeMap<String, String> = if by == GroupBy::Tenant {
        sqlx::query_as("SELECT id, slug FROM tenants").fetch_all(store.pool()).await?.into_iter().collect()
    } else {
        BTreeMap::new()
    };
    let mut rows: Vec<ReportRow> = acc
        .into_iter()
        .map(|(key, a)| {
            let mut row = a.row;
            row.key = match by {
                GroupBy::Level => Level::parse(&key).map(|l| l.label().to_string()).unwrap_or(key),
                GroupBy::Tenant => slugs.get(&key).cloned().unwrap_or(key),
            };
            if !a.indexed {
                row.first_response_median_hours = percentile_hours(&a.first, 0.5);
                row.first_response_p90_hours = percentile_hours(&a.first, 0.9);
                row.resolution_median_hours = percentile_hours(&a.resolution, 0.5);
                row.resolution_p90_hours = percentile_hours(&a.resolution, 0.9);
            }
            // Over the settled tickets only: an undecided one is neither on time nor late yet.
            row.compliance_percent = (row.settled > 0)
                .then(|| ((row.settled - row.breaches) as f64 * 1000.0 / row.settled as f64).round() / 10.0);
            row
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}").replace('.', ",")).unwrap_or_default()
}

/// The file name of a report's CSV: `rapport-support-niveaux[-2027-05].csv`.
pub fn csv_name(by: GroupBy, period: Option<&Period>) -> String {
    let by = if by == GroupBy::Level { "niveaux" } else { "tenants" };
    match period {
        Some(p) => format!("rapport-support-{by}-{}.csv", p.slug()),
        None => format!("rapport-support-{by}.csv"),
    }
}

/// The report as CSV for a French spreadsheet (UTF-8 with BOM, `;`, decimal commas, French
/// headers), as the RGPD exports; over a period, a first line names it
/// (`période;du 1er mai 2027 au 15 mai 2027`).
pub fn to_csv(rows: &[ReportRow], by: GroupBy, period: Option<&Period>) -> String {
    match period {
        Some(p) => {
            let label = p.label();
            let named = documents::csv::write(&["période", label.as_str()], std::iter::empty::<Vec<String>>(), true);
            format!("{}{}", String::from_utf8_lossy(&named), table_csv(rows, by, false))
        }
        None => table_csv(rows, by, true),
    }
}

/// The rows as CSV, after a BOM if `bom`.
fn table_csv(rows: &[ReportRow], by: GroupBy, bom: bool) -> String {
    let key = match by {
        GroupBy::Level => "niveau",
        GroupBy::Tenant => "tenant",
    };
    let header = [
        key,
        "nouveaux",
        "en_cours",
        "en_attente_demandeur",
        "resolus",
        "clos",
        "traites",
        "premiere_reponse_mediane_h",
        "premiere_reponse_p90_h",
        "resolution_mediane_h",
        "resolution_p90_h",
        "conformite_pct",
        "depassements",
        "regles",
        "en_cours_dans_les_delais",
        "sans_reponse",
    ];
    let lines = rows.iter().map(|r| {
        let b = &r.backlog;
        vec![
            r.key.clone(),
            b.new.to_string(),
            b.in_progress.to_string(),
            b.waiting_requester.to_string(),
            b.resolved.to_string(),
            b.closed.to_string(),
            r.handled.to_string(),
            cell(r.first_response_median_hours),
            cell(r.first_response_p90_hours),
            cell(r.resolution_median_hours),
            cell(r.resolution_p90_hours),
            cell(r.compliance_percent),
            r.breaches.to_string(),
            r.settled.to_string(),
            r.open_on_time.to_string(),
            r.unanswered.to_string(),
        ]
    });
    String::from_utf8(documents::csv::write(&header, lines, bom)).expect("UTF-8 cells")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<i64> = (1..=10).map(|h| h * 3600).collect();
        assert_eq!(percentile_hours(&v, 0.5), Some(5.0));
        assert_eq!(percentile_hours(&v, 0.9), Some(9.0));
        assert_eq!(percentile_hours(&[], 0.5), None);
        assert_eq!(percentile_hours(&[5400], 0.9), Some(1.5));
    }

    #[test]
    fn csv_has_french_headers_and_decimal_commas() {
        let row = ReportRow { key: "N1".into(), handled: 2, compliance_percent: Some(50.0), ..Default::default() };
        let csv = to_csv(&[row], GroupBy::Level, None);
        assert!(csv.starts_with("\u{feff}niveau;nouveaux;"), "a BOM, then the header: {csv}");
        assert!(csv.lines().nth(1).unwrap().contains(";2;;;;;50,00;0"), "{csv}");
    }

    #[test]
    fn a_tenant_named_like_a_formula_is_neutralised() {
        let row = ReportRow { key: "=HYPERLINK(\"http://x\")".into(), ..Default::default() };
        let csv = to_csv(&[row], GroupBy::Tenant, None);
        assert!(csv.lines().nth(1).unwrap().starts_with("\"'=HYPERLINK("), "{csv}");
        assert_eq!(csv.matches('\u{feff}').count(), 1, "one BOM: {csv}");
    }

    #[test]
    fn a_period_is_read_checked_and_named() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let may = Period::parse(None, None, Some("2027-05")).unwrap().unwrap();
        assert_eq!((may.from, may.to), (day("2027-05-01"), day("2027-05-31")));
        assert_eq!((may.label(), may.slug()), ("mai 2027".to_string(), "2027-05".to_string()));
        let days = Period::parse(Some("2027-05-01"), Some("2027-05-15"), None).unwrap().unwrap();
        assert_eq!(days.label(), "du 1er mai 2027 au 15 mai 2027");
        assert_eq!(Period::parse(Some(" "), None, Some("")).unwrap(), None, "blank is all time");
        let field = |r: Result<Option<Period>, Problem>| r.unwrap_err().errors[0].field.clone();
        assert_eq!(field(Period::parse(Some("2027-02-30"), None, None)), "from");
        assert_eq!(field(Period::parse(Some("2027-05-15"), Some("2027-05-01"), None)), "to");
        assert_eq!(field(Period::parse(None, None, Some("2027-13"))), "month");
        assert_eq!(field(Period::parse(Some("2027-05-01"), None, Some("2027-05"))), "month");
        // Midnight in Paris: 22:00 UTC the day before in summer, 23:00 in winter.
        let c = may.condition();
        let bound: Vec<String> = c.values().iter().map(|v| format!("{v:?}")).collect();
        assert!(bound[0].contains("2027-04-30T22:00:00"), "{bound:?}");
        assert!(bound[1].contains("2027-05-31T22:00:00"), "{bound:?}");
        let csv = to_csv(&[], GroupBy::Level, Some(&days));
        assert!(
            csv.starts_with("\u{feff}période;du 1er mai 2027 au 15 mai 2027\n")
                || csv.starts_with("\u{feff}période;du 1er mai 2027 au 15 mai 2027\r\n"),
            "{csv}"
        );
        assert_eq!(csv_name(GroupBy::Tenant, Some(&may)), "rapport-support-tenants-2027-05.csv");
    }
}
