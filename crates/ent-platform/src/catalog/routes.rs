//! `/api/v1/catalog`: the services and bouquets, readable by every authenticated role.

use super::CatalogState;
use super::{Bouquet, Service};
use crate::identity::authz::CATALOG_READ;
use axum::extract::{Path, State};
use axum::Json;
use ent_kernel::error::Problem;
use ent_kernel::http::extract::ApiQuery;
use ent_kernel::route_table;
use schemars::JsonSchema;
use serde::Deserialize;

route_table!(CatalogState, "catalog", |api| vec![
    api.get("/api/v1/catalog/services", "Services du catalogue", &CATALOG_READ, services).ok::<Vec<Service>>(),
    api.get("/api/v1/catalog/services/{code}", "Consulter un service", &CATALOG_READ, service).ok::<Service>(),
    api.get("/api/v1/catalog/bouquets", "Bouquets (toutes versions)", &CATALOG_READ, bouquets).ok::<Vec<Bouquet>>(),
    api.get(
        "/api/v1/catalog/bouquets/{id}",
        "Consulter un bouquet (dernière version par défaut)",
        &CATALOG_READ,
        bouquet,
    )
    .query::<BouquetQuery>()
    .ok::<Bouquet>(),
]);

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BouquetQuery {
    /// A given version (the latest when absent).
    pub version: Option<u32>,
}

async fn services(State(state): State<CatalogState>) -> Json<Vec<Service>> {
    Json(state.catalog.services.clone())
}

async fn service(State(state): State<CatalogState>, Path(code): Path<String>) -> Result<Json<Service>, Problem> {
    let service =
        state.catalog.service(&code).ok_or_else(|| Problem::not_found(format!("aucun service « {code} »")))?;
    Ok(Json(service.clone()))
}

async fn bouquets(State(state): State<CatalogState>) -> Json<Vec<Bouquet>> {
    Json(state.catalog.bouquets.clone())
}

async fn bouquet(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<BouquetQuery>,
) -> Result<Json<Bouquet>, Problem> {
    let not_found = || match query.version {
        Some(v) => Problem::not_found(format!("aucun bouquet « {id} » en version {v}")),
        None => Problem::not_found(format!("aucun bouquet « {id} »")),
    };
    let bouquet = state.catalog.bouquet(&id, query.version).ok_or_else(not_found)?;
    Ok(Json(bouquet.clone()))
}
