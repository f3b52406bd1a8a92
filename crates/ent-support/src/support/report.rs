//! Support reports per level or per tenant: backlog by status, median and p90
//! of the time to first response and to resolution (business hours, from the
//! per-level clocks stored at each event), SLA compliance and breaches.
//! Rendered as JSON or CSV (`;`-separated, for French spreadsheets).

use super::{Level, Status};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::Condition;
use ent_kernel::store::Store;
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

#[ent_kernel::skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct ReportRow {
    /// The level (per-level report) or the tenant slug (per-tenant report).
    pub key: String,
    /// Tickets currently at this level (per tenant: all of the tenant's), by status.
    pub backlog: Backlog,
    /// Tickets this level (or this tenant's levels) held.
    pub handled: i64,
    pub first_response_median_hours: Option<f64>,
    pub first_response_p90_hours: Option<f64>,
    pub resolution_median_hours: Option<f64>,
    pub resolution_p90_hours: Option<f64>,
    /// Share of held tickets without a breach at this level.
    pub compliance_percent: Option<f64>,
    /// Held tickets with at least one breach.
    pub breaches: i64,
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

/// The report over the tickets `actor` may see.
pub async fn report(store: &Store, actor: &Actor, by: GroupBy) -> Result<Vec<ReportRow>, Problem> {
    let scope = super::visible_condition(actor);
    let cond = scope.clone().unwrap_or_default();
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    if by == GroupBy::Level {
        for l in Level::ALL {
            acc.entry(l.as_str().to_string()).or_default();
        }
    }
    let key_col = match by {
        GroupBy::Level => "t.level",
        GroupBy::Tenant => "t.tenant_id",
    };
    let sql = format!(
        "SELECT {key_col} AS k, t.status AS status, COUNT(*) AS n FROM support_tickets t WHERE {} GROUP BY {key_col}, t.status",
        cond.sql()
    );
    for r in cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
        let (key, status, n) = <(String, String, i64)>::from_row(&r)?;
        acc.entry(key).or_default().row.backlog.add(Status::try_from(status)?, n);
    }
    let key_col = match by {
        GroupBy::Level => "l.level",
        GroupBy::Tenant => "l.tenant_id",
    };
    let from = match &scope {
        None => "support_ticket_levels l".to_string(),
        Some(_) => "support_ticket_levels l JOIN support_tickets t ON t.id = l.ticket_id".to_string(),
    };
    let mut where_sql = scope.as_ref().map(Condition::sql).unwrap_or_else(|| "1 = 1".into());
    // The vendor sees its own level's figures only, not the académie's.
    let vendor_only =
        !actor.is_admin() && actor.bindings.iter().all(|b| !matches!(b.role, Role::SupportN1 | Role::SupportN2));
    if vendor_only {
        where_sql.push_str(" AND l.level = 'n3'");
    }
    let sql = format!(
        "SELECT {key_col} AS k, COUNT(*) AS n, CAST(COALESCE(SUM(l.breached), 0) AS BIGINT) AS b FROM {from} WHERE {where_sql} GROUP BY {key_col}"
    );
    for r in cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await? {
        let (key, handled, breaches) = <(String, i64, i64)>::from_row(&r)?;
        let a = acc.entry(key).or_default();
        a.row.handled = handled;
        a.row.breaches = breaches;
    }
    if scope.is_none() && by == GroupBy::Level {
        percentiles_by_index(store, &mut acc).await?;
    } else {
        fetch_values(store, &cond, key_col, &from, &where_sql, &mut acc).await?;
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

/// Per-group values fetched sorted, percentiles computed here.
async fn fetch_values(
    store: &Store,
    cond: &Condition,
    key_col: &str,
    from: &str,
    where_sql: &str,
    acc: &mut BTreeMap<String, Acc>,
) -> Result<(), Problem> {
    for (column, first) in [("first_response_seconds", true), ("resolution_seconds", false)] {
        let sql = format!(
            "SELECT {key_col} AS k, l.{column} AS s FROM {from} WHERE {where_sql} AND l.{column} IS NOT NULL ORDER BY {key_col}, l.{column}"
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
            row.compliance_percent = (row.handled > 0)
                .then(|| ((row.handled - row.breaches) as f64 * 1000.0 / row.handled as f64).round() / 10.0);
            row
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}").replace('.', ",")).unwrap_or_default()
}

/// The report as CSV (`;`, decimal commas, French headers).
pub fn to_csv(rows: &[ReportRow], by: GroupBy) -> String {
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
        ]
    });
    String::from_utf8(ent_documents::documents::csv::write(&header, lines, false)).expect("UTF-8 cells")
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
        let csv = to_csv(&[row], GroupBy::Level);
        assert!(csv.starts_with("niveau;nouveaux;"));
        assert!(csv.lines().nth(1).unwrap().contains(";2;;;;;50,00;0"), "{csv}");
    }

    #[test]
    fn a_tenant_named_like_a_formula_is_neutralised() {
        let row = ReportRow { key: "=HYPERLINK(\"http://x\")".into(), ..Default::default() };
        let csv = to_csv(&[row], GroupBy::Tenant);
        assert!(csv.lines().nth(1).unwrap().starts_with("\"'=HYPERLINK("), "{csv}");
    }
}
