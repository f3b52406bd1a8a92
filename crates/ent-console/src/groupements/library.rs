//! `/bibliotheque`: the documents coordinators shared with every académie, searched by
//! title, coordinator and year (query parameters of the list component).

use super::On;
use crate::forms::Fields;
use crate::list::{self, Cell, Column, Filter, ListParams, ListSpec, ListView};
use crate::page::{self, PageError, Shell};
use axum::extract::Query;
use axum::response::Response;
use ent_groupements::groupements::documents::{self, Kind};
use ent_groupements::groupements::GroupementsState;
use ent_kernel::clock::french_moment;
use ent_kernel::store::Condition;
use serde_json::json;

pub const LIBRARY: ListSpec = ListSpec {
    columns: &[
        Column { key: "titre", label: "Document", order_by: Some("d.title") },
        Column { key: "groupement", label: "Groupement", order_by: Some("g.reference") },
        Column { key: "coordonnateur", label: "Coordonnateur", order_by: Some("o.name") },
        Column { key: "type", label: "Type", order_by: Some("d.kind") },
        Column { key: "version", label: "Version", order_by: None },
        Column { key: "date", label: "Date", order_by: Some("d.created_at") },
    ],
    filters: &[
        Filter { key: "coordonnateur", label: "Coordonnateur", choices: &[] },
        Filter { key: "annee", label: "Année", choices: &[] },
    ],
    default_sort: "date",
    tie_break: "d.id",
    search: Some("Titre du document"),
    keyset: false,
};

#[derive(sqlx::FromRow)]
struct Shared {
    id: String,
    title: String,
    kind: String,
    version_no: i64,
    created_at: String,
    reference: String,
    coordinator: String,
}

/// The versions the library serves ([`documents::in_library`]) the search asks.
fn condition(params: &ListParams) -> Condition {
    let mut cond = Condition::default();
    documents::in_library(&mut cond);
    if let Some(q) = &params.q {
        cond.push("LOWER(d.title) LIKE ?", &[&list::contains_pattern(q)]);
    }
    if let Some(name) = params.filter("coordonnateur") {
        cond.push("LOWER(o.name) LIKE ?", &[&list::contains_pattern(name)]);
    }
    if let Some(year) = params.filter("annee") {
        cond.push("d.created_at LIKE ?", &[&format!("{}-%", year.replace(['%', '_'], ""))]);
    }
    cond
}

pub(super) async fn page(
    On { console, state, signed }: On<GroupementsState>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let params = ListParams::parse(&LIBRARY, &query.0);
    let cond = condition(&params);
    let columns = "d.id, d.title, d.kind, d.version_no, d.created_at, g.reference, o.name AS coordinator";
    let from = "groupement_documents d JOIN groupements g ON g.id = d.groupement_id \
                JOIN orgs o ON o.id = g.coordinator_org_id";
    let listed = list::fetch::<Shared>(&state.store, &LIBRARY, &params, columns, from, &cond).await?;
    let rows = listed
        .page
        .items
        .iter()
        .map(|d| {
            vec![
                Cell::link(d.title.clone(), format!("/groupements/{}/documents/{}", d.reference, d.id)),
                Cell::text(d.reference.clone()),
                Cell::text(d.coordinator.clone()),
                Cell::text(Kind::parse(&d.kind).map_or(d.kind.as_str(), |k| k.label())),
                Cell::text(d.version_no.to_string()),
                Cell::text(french_moment(&d.created_at)),
            ]
        })
        .collect();
    let view = ListView::new("bibliotheque", "/bibliotheque", "Documents partagés", &LIBRARY, &params, &listed, rows);
    let shell = Shell::new(&console, Some(&signed.0), "/bibliotheque")
        .crumbs(&[("Groupements", "/groupements"), ("Bibliothèque partagée", "/bibliotheque")]);
    Ok(page::render("groupement_bibliotheque.html", shell, json!({ "list": view })))
}
