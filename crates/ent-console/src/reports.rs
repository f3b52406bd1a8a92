//! « Rapports du support »: per level or per tenant, the backlog, the median and p90
//! time to resolve in business hours and the SLA compliance, each as an SVG chart
//! followed by its data table, and the CSV the API gives. The figures are the
//! support domain's report (`ent_support::support::report`), over the tickets the
//! person may see; a month chosen (`mois=AAAA-MM`, empty: since the beginning) keeps
//! the tickets created that month.

use crate::forms::{Fields, On};
use crate::page::{self, PageError, Shell};
use crate::{route, Access, ConsoleRoute, ConsoleState};
use axum::extract::Query;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use ent_documents::documents;
use ent_kernel::error::Problem;
use ent_kernel::http::FromRef;
use ent_platform::identity::authz::SUPPORT_REPORT;
use ent_support::support::report::{self, GroupBy, Period, ReportRow};
use ent_support::support::{Level, SupportState};
use serde_json::{json, Value};

/// The pages of this screen.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<ConsoleRoute<S>>
where
    ConsoleState: FromRef<S>,
    SupportState: FromRef<S>,
{
    vec![
        route(Method::GET, "/tickets/rapports", Access::Signed(&SUPPORT_REPORT), get(page)),
        route(Method::GET, "/tickets/rapports/csv", Access::Signed(&SUPPORT_REPORT), get(csv)),
    ]
}

/// `par=ent`: per tenant; otherwise per level.
fn grouping(query: &Fields) -> (GroupBy, &'static str) {
    match query.get("par") {
        "ent" => (GroupBy::Tenant, "ent"),
        _ => (GroupBy::Level, "niveau"),
    }
}

/// The row's name: « N1 » for a level, the tenant's short name otherwise.
fn row_label(row: &ReportRow) -> String {
    Level::parse(&row.key).map_or_else(|| row.key.clone(), |l| l.label().to_string())
}

/// `12,5 h`, or « — » without a figure.
fn hours(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |h| format!("{} h", format!("{h:.1}").replace('.', ",")))
}

/// The bars of one figure of the rows (`figure` in hours, a count or a share), the
/// longest the largest value.
fn bars(
    rows: &[ReportRow],
    figure: impl Fn(&ReportRow) -> Option<f64>,
    text: impl Fn(Option<f64>) -> String,
) -> Vec<Value> {
    let max = rows.iter().filter_map(&figure).fold(0.0_f64, f64::max);
    rows.iter()
        .map(|r| {
            let v = figure(r);
            let percent = match (v, max > 0.0) {
                (Some(v), true) => (v / max * 100.0).round() as i64,
                _ => 0,
            };
            json!({ "label": row_label(r), "value": text(v), "percent": percent })
        })
        .collect()
}

/// Tickets not yet resolved.
fn open(row: &ReportRow) -> i64 {
    row.backlog.new + row.backlog.in_progress + row.backlog.waiting_requester
}

/// The charts of the report: backlog, median and p90 time to resolve, compliance.
fn charts(rows: &[ReportRow]) -> Value {
    let count = |v: Option<f64>| v.map_or_else(|| "0".to_string(), |n| format!("{n:.0}"));
    json!({
        "backlog": bars(rows, |r| Some(open(r) as f64), count),
        "median": bars(rows, |r| r.resolution_median_hours, hours),
        "p90": bars(rows, |r| r.resolution_p90_hours, hours),
        "compliance": rows.iter().map(|r| {
            let share = r.compliance_percent.unwrap_or(0.0).round() as i64;
            json!({ "label": row_label(r), "value": share, "percent": share })
        }).collect::<Vec<_>>(),
    })
}

/// The data table's row of a report row.
fn table_row(row: &ReportRow) -> Value {
    let b = &row.backlog;
    json!({
        "label": row_label(row), "new": b.new, "in_progress": b.in_progress, "waiting": b.waiting_requester,
        "resolved": b.resolved, "closed": b.closed, "open": open(row), "handled": row.handled,
        "median": hours(row.resolution_median_hours), "p90": hours(row.resolution_p90_hours),
        "first_median": hours(row.first_response_median_hours),
        "compliance": row.compliance_percent.map_or_else(|| "—".to_string(), |c| format!("{} %", format!("{c:.1}").replace('.', ","))),
        "breaches": row.breaches, "settled": row.settled, "open_on_time": row.open_on_time,
        "unanswered": row.unanswered,
    })
}

/// The month chosen (`mois`, `AAAA-MM`), none when empty; a malformed one is refused.
fn month(query: &Fields) -> Result<Option<Period>, Problem> {
    query.opt("mois").filter(|m| !m.trim().is_empty()).map(|m| Period::month(m.trim())).transpose()
}

/// The query string of the report's links: the grouping and the month.
fn link_query(par: &str, period: Option<&Period>) -> String {
    let mut pairs = vec![("par", par.to_string())];
    if let Some(p) = period {
        pairs.push(("mois", p.slug()));
    }
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// `/tickets/rapports?par=niveau|ent&mois=AAAA-MM`.
async fn page(
    On { console, state, signed }: On<SupportState>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let (by, par) = grouping(&query);
    let shell = Shell::new(&console, Some(&signed.0), "/tickets")
        .crumbs(&[("Support", "/tickets"), ("Rapports", "/tickets/rapports")]);
    let (period, error) = match month(&query) {
        Ok(period) => (period, None),
        Err(problem) => (None, problem.errors.first().map(|e| e.message.clone())),
    };
    let rows = match error {
        Some(_) => Vec::new(),
        None => report::report(&state.store, &signed.0.actor, by, period.as_ref()).await?,
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let other = |par: &str| format!("/tickets/rapports?{}", link_query(par, period.as_ref()));
    let values = json!({
        "par": par,
        "by_tenant": by == GroupBy::Tenant,
        "month": query.get("mois").trim(),
        "month_error": error,
        "period": period.as_ref().map(Period::label),
        "charts": charts(&rows),
        "rows": rows.iter().map(table_row).collect::<Vec<_>>(),
        "by_level_href": other("niveau"),
        "by_tenant_href": other("ent"),
        "csv": format!("/tickets/rapports/csv?{}", link_query(par, period.as_ref())),
    });
    Ok(page::render_status(status, "reports.html", shell, values))
}

/// `/tickets/rapports/csv?par=niveau|ent&mois=AAAA-MM`: the API's CSV (formula-safe cells).
async fn csv(On { state, signed, .. }: On<SupportState>, Query(query): Query<Fields>) -> Result<Response, PageError> {
    let (by, _) = grouping(&query);
    let period = month(&query)?;
    let rows = report::report(&state.store, &signed.0.actor, by, period.as_ref()).await?;
    let name = report::csv_name(by, period.as_ref());
    let body = report::to_csv(&rows, by, period.as_ref());
    Ok(documents::response::document(body, "text/csv; charset=utf-8", &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_on_the_largest_value_and_hours_read_in_french() {
        let row = |key: &str, median: Option<f64>| ReportRow {
            key: key.into(),
            resolution_median_hours: median,
            ..Default::default()
        };
        let rows = [row("n1", Some(2.0)), row("n2", Some(8.0)), row("n3", None)];
        let drawn = bars(&rows, |r| r.resolution_median_hours, hours);
        assert_eq!((drawn[0]["percent"].as_i64(), drawn[1]["percent"].as_i64()), (Some(25), Some(100)));
        assert_eq!((drawn[0]["label"].as_str(), drawn[2]["value"].as_str()), (Some("N1"), Some("—")));
        assert_eq!(hours(Some(12.46)), "12,5 h");
    }
}
