//! The first page: the dashboard of the organisation a person works for. For a DAN
//! (académie or DSDEN) the schools by département and the share covered by a
//! convention in force, tenants by status, conventions awaiting signature (those awaiting
//! the viewer first, as « Notifications » lists them: on the viewer's own dashboard, even
//! those of another of their organisations) and those expiring within 90 days; for a commune (or a group,
//! a département, a région) the same figures over what it covers, with its schools.
//! Each figure is an SVG bar chart rendered here, with its data table.

use crate::auth::Signed;
use crate::forms::Fields;
use crate::notifications::conventions_awaiting;
use crate::page::{self, Notice, PageError, Shell};
use crate::{ConsoleState, DASHBOARD};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use ent_conventions::conventions::{seen_condition, ConventionsState};
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::store::sql::Condition;
use ent_kernel::store::Store;
use ent_platform::identity::authz::{self, CONVENTIONS_READ};
use ent_platform::identity::Actor;
use ent_platform::registry::queries::{funds_condition, get_by_code, get_org, open_schools};
use ent_platform::registry::Org;
use serde::Serialize;

/// Conventions listed per table at most.
const LISTED: usize = 20;

/// One bar of a chart: its label, count, and share of the chart's largest value (or
/// of its total, for shares) in percent, for the bar's width.
#[derive(Serialize, Debug)]
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub total: i64,
    pub percent: i64,
    /// The share as the page writes it ([`share_text`]: never « 0 % » for a share that is not nil).
    pub shown: String,
}

/// Schools of a département and how many a convention in force covers.
#[derive(Serialize, sqlx::FromRow, Debug)]
pub struct DepartementRow {
    pub departement: String,
    /// « Département du Val-de-Marne (94) », as the documents designate it; its code alone when
    /// the registry has no such département.
    #[sqlx(skip)]
    pub designation: String,
    pub schools: i64,
    pub covered: i64,
}

/// A convention in a dashboard table.
#[derive(Serialize, sqlx::FromRow, Debug)]
pub struct ConventionRow {
    pub id: String,
    pub reference: String,
    pub title: String,
    /// Its last day, as a French reader writes it (« 31 août 2027 »).
    pub end_date: String,
    /// 1 when it awaits the viewer's visa or signature (`notifications::conventions_awaiting`).
    pub theirs: i64,
}

/// A school in a commune's dashboard.
#[derive(Serialize, sqlx::FromRow, Debug)]
pub struct SchoolRow {
    pub name: String,
    pub code: String,
    pub covered: i64,
}

/// What the dashboard of an organisation shows.
#[derive(Serialize, Debug)]
pub struct Figures {
    pub departements: Vec<DepartementRow>,
    pub coverage: Vec<Bar>,
    pub tenants: Vec<Bar>,
    pub awaiting: Vec<ConventionRow>,
    pub expiring: Vec<ConventionRow>,
    /// The schools themselves, for a commune or a group (none for an académie).
    pub schools: Vec<SchoolRow>,
}

/// The organisation kinds that have a dashboard.
fn has_dashboard(kind: OrgKind) -> bool {
    !matches!(kind, OrgKind::Etablissement | OrgKind::Editeur | OrgKind::Hebergeur)
}

/// Rows of `sql` (whose `{}` is replaced by `cond`'s SQL) decoded as `T`.
async fn rows<T>(store: &Store, sql: &str, cond: &Condition) -> Result<Vec<T>, Problem>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let sql = sql.replace("{}", &cond.sql());
    let found = cond.bind(sqlx::query(&sql)).fetch_all(store.pool()).await?;
    Ok(found.iter().map(T::from_row).collect::<Result<_, _>>()?)
}

#[derive(sqlx::FromRow)]
struct Count {
    label: String,
    n: i64,
}

/// The open schools `org` funds (as the groupement prefill counts them: an EPCI only the écoles of
/// the communes that delegated their ENT to it), and `extra`.
fn schools_of(org: &Org, visible: Option<&Condition>, extra: Option<Condition>) -> Condition {
    let mut cond = funds_condition(org);
    cond.and(open_schools());
    if let Some(visible) = visible {
        cond.and(visible.clone());
    }
    if let Some(extra) = extra {
        cond.and(extra);
    }
    cond
}

/// Schools covered on `today` by a convention in force (named or a party's).
fn covered_on(today: &str) -> Condition {
    let mut covered = Condition::default();
    covered.push(
        "(id IN (SELECT cs.org_id FROM convention_schools cs JOIN conventions c ON c.id = cs.convention_id \
         WHERE c.status = 'active' AND c.start_date <= ? AND c.end_date >= ?) \
         OR id IN (SELECT cp.org_id FROM convention_parties cp JOIN conventions c ON c.id = cp.convention_id \
         WHERE c.status = 'active' AND c.start_date <= ? AND c.end_date >= ?))",
        &[today, today, today, today],
    );
    covered
}

const BY_DEPARTEMENT: &str = "SELECT COALESCE(departement_code, '-') AS label, COUNT(*) AS n FROM orgs WHERE {} \
     GROUP BY departement_code ORDER BY departement_code";

/// The schools `org` covers by département, and how many are covered on `today`.
async fn departements(
    store: &Store,
    org: &Org,
    visible: Option<&Condition>,
    today: &str,
) -> Result<Vec<DepartementRow>, Problem> {
    let all: Vec<Count> = rows(store, BY_DEPARTEMENT, &schools_of(org, visible, None)).await?;
    let covered: Vec<Count> = rows(store, BY_DEPARTEMENT, &schools_of(org, visible, Some(covered_on(today)))).await?;
    let mut found = Vec::new();
    for c in all {
        found.push(DepartementRow {
            covered: covered.iter().find(|d| d.label == c.label).map_or(0, |d| d.n),
            designation: departement_designation(store, &c.label).await?,
            departement: c.label,
            schools: c.n,
        });
    }
    Ok(found)
}

/// « Département du Val-de-Marne (94) » for the code `code`; « Département 94 » when the registry
/// has no such département.
async fn departement_designation(store: &Store, code: &str) -> Result<String, Problem> {
    Ok(match get_by_code(store, OrgKind::Departement, code).await? {
        Some(d) => format!("{} ({code})", naming::of_org(d.kind, &naming::display_name(&d.name)).official),
        None => format!("Département {code}"),
    })
}

/// The organisations `org`'s roles reach that the viewer may read (`orgs` rows), as a
/// sub-select condition on `column`.
fn in_scope_of(org: &Org, visible: Option<&Condition>, column: &str) -> Condition {
    let mut cond = Condition::default();
    let within = format!("{column} IN (SELECT id FROM orgs WHERE ");
    cond.and_wrapped(&within, authz::org_scope_condition(org), ")");
    if let Some(visible) = visible {
        cond.and_wrapped(&within, visible.clone(), ")");
    }
    cond
}

async fn tenants_by_status(store: &Store, org: &Org, visible: Option<&Condition>) -> Result<Vec<Bar>, Problem> {
    let sql = "SELECT status AS label, COUNT(*) AS n FROM tenants WHERE {} GROUP BY status ORDER BY status";
    let counts: Vec<Count> = rows(store, sql, &in_scope_of(org, visible, "org_id")).await?;
    let largest = counts.iter().map(|c| c.n).max().unwrap_or(0);
    Ok(ent_tenants_order(counts)
        .into_iter()
        .map(|c| Bar {
            label: tenant_status_label(&c.label).into(),
            value: c.n,
            total: largest,
            percent: percent(c.n, largest),
            shown: share_text(c.n, largest),
        })
        .collect())
}

/// Tenant statuses in lifecycle order, with their French names.
pub(crate) const TENANT_STATUSES: &[(&str, &str)] = &[
    ("requested", "demandé"),
    ("provisioning", "en déploiement"),
    ("active", "actif"),
    ("suspended", "suspendu"),
    ("decommissioning", "en retrait"),
    ("archived", "archivé"),
    ("purged", "purgé"),
];

fn tenant_status_label(status: &str) -> &str {
    TENANT_STATUSES.iter().find(|(s, _)| *s == status).map_or(status, |(_, label)| label)
}

fn ent_tenants_order(mut counts: Vec<Count>) -> Vec<Count> {
    counts.sort_by_key(|c| TENANT_STATUSES.iter().position(|(s, _)| *s == c.label).unwrap_or(usize::MAX));
    counts
}

/// `value` of `of` in percent as a page writes it, with its no-break space: rounded, but « < 1 % »
/// for a share above nil that rounds to 0 (1 school of 615) and « > 99 % » for one below the
/// whole that rounds to 100.
fn share_text(value: i64, of: i64) -> String {
    match percent(value, of) {
        0 if value > 0 => "< 1\u{a0}%".into(),
        100 if value < of => "> 99\u{a0}%".into(),
        p => format!("{p}\u{a0}%"),
    }
}

fn percent(value: i64, of: i64) -> i64 {
    if of == 0 {
        0
    } else {
        (value * 100 + of / 2) / of
    }
}

/// `c.id` of a convention with a party (`table` `convention_parties`) or a covered
/// school (`convention_schools`) in `org`'s scope.
fn convention_reaches(org: &Org, table: &str) -> Condition {
    let mut cond = Condition::default();
    let prefix = format!("c.id IN (SELECT convention_id FROM {table} WHERE org_id IN (SELECT id FROM orgs WHERE ");
    cond.and_wrapped(&prefix, authz::org_scope_condition(org), "))");
    cond
}

/// Conventions in `status` with a party or a covered school in `org`'s scope, that the
/// viewer sees (`seen`: [`ent_conventions::conventions::seen_condition`], each party its own).
fn reaching(org: &Org, seen: Option<&Condition>, status: &str) -> Condition {
    let mut cond = Condition::default();
    cond.push("c.status = ?", &[status]);
    cond.and(Condition::any(vec![
        convention_reaches(org, "convention_parties"),
        convention_reaches(org, "convention_schools"),
    ]));
    if let Some(seen) = seen {
        cond.and(seen.clone());
    }
    cond
}

/// The conventions of `ids`.
fn one_of(ids: &[String]) -> Condition {
    Condition::any(
        ids.iter()
            .map(|id| {
                let mut cond = Condition::default();
                cond.push("c.id = ?", &[id]);
                cond
            })
            .collect(),
    )
}

/// The conventions `cond` matches: those `awaiting` the viewer (their visa or signature, as
/// « Notifications » says) first, then by end date.
async fn conventions(store: &Store, cond: &Condition, awaiting: &[String]) -> Result<Vec<ConventionRow>, Problem> {
    let sql = "SELECT c.id, c.reference, c.title, c.end_date, 0 AS theirs FROM conventions c WHERE {} \
               ORDER BY c.end_date, c.reference";
    let mut found: Vec<ConventionRow> = rows(store, sql, cond).await?;
    for row in &mut found {
        row.theirs = i64::from(awaiting.contains(&row.id));
        row.end_date = french_date(&row.end_date);
    }
    // Stable: within each group, the end-date order of the query stays.
    found.sort_by_key(|row| std::cmp::Reverse(row.theirs));
    found.truncate(LISTED);
    Ok(found)
}

async fn schools(
    store: &Store,
    org: &Org,
    visible: Option<&Condition>,
    today: &str,
) -> Result<Vec<SchoolRow>, Problem> {
    let sql = "SELECT name, code, 0 AS covered FROM orgs WHERE {} ORDER BY sort_name, id";
    let mut all: Vec<SchoolRow> = rows(store, sql, &schools_of(org, visible, None)).await?;
    let covered: Vec<SchoolRow> = rows(store, sql, &schools_of(org, visible, Some(covered_on(today)))).await?;
    for school in &mut all {
        school.covered = i64::from(covered.iter().any(|c| c.code == school.code));
        // As the conventions' documents name it (« École élémentaire … », not the directory's « Ecole »).
        school.name = naming::display_name(&school.name);
    }
    Ok(all)
}

/// What a dashboard knows of the conventions awaiting its viewer
/// ([`crate::notifications::conventions_awaiting`]): their ids, and whether the dashboard is
/// the viewer's own (their home), which lists them wherever they are.
pub struct Awaiting {
    pub ids: Vec<String>,
    pub own: bool,
}

/// Every figure of `org`'s dashboard on `today`, as `viewer` sees it (the conventions listed
/// are those its organisations are party to, and on their own dashboard those `awaiting` them).
pub async fn figures(
    store: &Store,
    org: &Org,
    viewer: &Actor,
    today: NaiveDate,
    awaiting: &Awaiting,
) -> Result<Figures, Problem> {
    let seen = seen_condition(viewer, &CONVENTIONS_READ);
    // What the viewer may read of the organisations `org` reaches (an EPCI's member communes
    // may lie in another académie).
    let visible = authz::scope(viewer, &authz::ORGS_READ).condition();
    let visible = visible.as_ref();
    let day = today.format("%Y-%m-%d").to_string();
    let horizon = (today + Duration::days(90)).format("%Y-%m-%d").to_string();
    let departements = departements(store, org, visible, &day).await?;
    let coverage = departements
        .iter()
        .map(|d| Bar {
            label: d.designation.clone(),
            value: d.covered,
            total: d.schools,
            percent: percent(d.covered, d.schools),
            shown: share_text(d.covered, d.schools),
        })
        .collect();
    let mut in_signature = reaching(org, seen.as_ref(), "in_signature");
    if awaiting.own && !awaiting.ids.is_empty() {
        in_signature = Condition::any(vec![in_signature, one_of(&awaiting.ids)]);
    }
    let mut expiring = reaching(org, seen.as_ref(), "active");
    expiring.push("c.end_date >= ? AND c.end_date <= ?", &[&day, &horizon]);
    let academie = matches!(org.kind, OrgKind::Academie | OrgKind::Dsden);
    Ok(Figures {
        coverage,
        departements,
        tenants: tenants_by_status(store, org, visible).await?,
        awaiting: conventions(store, &in_signature, &awaiting.ids).await?,
        expiring: conventions(store, &expiring, &[]).await?,
        schools: if academie { Vec::new() } else { schools(store, org, visible, &day).await? },
    })
}

/// The organisation whose dashboard a person sees first: that of their first binding
/// of a role with a dashboard (DAN, collectivité) at an organisation that has one.
fn first_dashboard(signed: &Signed) -> Option<&Org> {
    own_dashboard(&signed.0.actor)
}

/// [`first_dashboard`] of the person `actor`.
fn own_dashboard(actor: &Actor) -> Option<&Org> {
    actor
        .bindings
        .iter()
        .filter(|b| matches!(b.role, Role::Dan | Role::Collectivite))
        .filter_map(|b| b.org.as_ref())
        .find(|org| has_dashboard(org.kind))
}

/// What the navigation calls `/` for `actor`: « Tableau de bord » where it opens their
/// organisation's, « Accueil » where it opens the welcome page (titled so, RGAA 8.6 and 12: one
/// link, one name).
pub(crate) fn home_label(actor: &Actor) -> &'static str {
    match own_dashboard(actor) {
        Some(_) => "Tableau de bord",
        None => "Accueil",
    }
}

/// `/`: the dashboard of the person's organisation, or a welcome page listing their roles.
pub async fn home(
    State(state): State<ConsoleState>,
    State(conventions): State<ConventionsState>,
    signed: Signed,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let notice = Notice::after(query.get("apres"), &[("sessions", "Les sessions de l'utilisateur sont fermées.")]);
    match first_dashboard(&signed).cloned() {
        Some(org) => render(&state, &conventions, &signed, org, "/", notice).await,
        None => {
            let shell = Shell::new(&state, Some(&signed.0), "/").notice(notice);
            let inviter = match &signed.0.actor.user_id {
                Some(id) if signed.0.actor.bindings.is_empty() => crate::users::inviter_of(&state, id).await?,
                _ => None,
            };
            Ok(page::render("home.html", shell, serde_json::json!({ "inviter": inviter })))
        }
    }
}

/// `/tableau-de-bord/{org}`: the dashboard of an organisation in the person's scope
/// (404 otherwise, as for an organisation that does not exist).
pub async fn page(
    State(state): State<ConsoleState>,
    State(conventions): State<ConventionsState>,
    signed: Signed,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    let missing = || Problem::not_found("aucun tableau de bord à cette adresse");
    let org = get_org(&state.store, &key).await?.filter(|o| has_dashboard(o.kind)).ok_or_else(missing)?;
    authz::authorize(&state.store, &signed.0.actor, &DASHBOARD, &org)
        .await
        .map_err(|p| page::as_missing(p, missing))?;
    let path = format!("/tableau-de-bord/{}", org.id);
    render(&state, &conventions, &signed, org, &path, None).await
}

/// Whose coverage the dashboard shows, as its first sentence names it.
fn covered_by(org: &Org) -> String {
    match org.kind {
        OrgKind::Academie => "l'académie".into(),
        OrgKind::Dsden => "la DSDEN".into(),
        kind => format!("cette organisation ({})", kind.label()),
    }
}

/// The dashboard of `org` at `path` (`/`: the person's own).
async fn render(
    state: &ConsoleState,
    conventions: &ConventionsState,
    signed: &Signed,
    org: Org,
    path: &str,
    notice: Option<Notice>,
) -> Result<Response, PageError> {
    let today = today_in_france(state.clock.now());
    let session = &signed.0;
    let awaiting = conventions_awaiting(conventions, &session.actor, &session.email).await?;
    let awaiting = Awaiting { ids: awaiting.into_iter().map(|c| c.id).collect(), own: path == "/" };
    let figures = figures(&state.store, &org, &session.actor, today, &awaiting).await?;
    let title = format!("Tableau de bord — {}", org.name);
    let shell = Shell::new(state, Some(&signed.0), path).crumbs(&[(&title, path)]).notice(notice);
    let values = serde_json::json!({
        "title": title,
        "org": { "id": org.id, "name": org.name, "kind": org.kind.label() },
        "academie": matches!(org.kind, OrgKind::Academie | OrgKind::Dsden),
        "covered_by": covered_by(&org),
        "figures": figures,
        "today": french_date(&today.format("%Y-%m-%d").to_string()),
    });
    Ok(page::render_status(StatusCode::OK, "dashboard.html", shell, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_above_nil_or_below_the_whole_never_reads_as_either() {
        assert_eq!(share_text(1, 615), "< 1\u{a0}%");
        assert_eq!(share_text(0, 615), "0\u{a0}%");
        assert_eq!(share_text(614, 615), "> 99\u{a0}%");
        assert_eq!((share_text(615, 615), share_text(0, 0)), ("100\u{a0}%".into(), "0\u{a0}%".into()));
        assert_eq!(share_text(1, 3), "33\u{a0}%");
    }
}
