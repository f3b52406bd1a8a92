//! The processor contracts of an organisation as a DPO reads them, exported (CSV, JSON): those of
//! its contract list (`contracts::list_for_client`: the contracts binding its processors) and the
//! Art. 28 annexes of the conventions in force that bind it (as controller, joint controller or
//! processor), each with its kind, controllers, processor, the services it covers, its dates and
//! the SHA-256 of its signed document. Read under the register's authorisation (`resolve`).

use super::derive::{self, named, World};
use super::{load, RgpdState};
use ent_documents::documents;
use ent_kernel::clock::today_in_france;
use ent_kernel::error::Problem;
use ent_kernel::store::Condition;
use ent_platform::catalog::Catalog;
use ent_platform::contracts::{self, ProcessorContract};
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::Serialize;
use sqlx::FromRow;
use std::collections::HashMap;

/// One Art. 28 instrument binding a processor.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ContractLine {
    pub reference: String,
    /// « annexe de l'article 28 d'une convention », « marché d'un groupement de commandes (CCAP,
    /// article 9.1) » or « contrat ».
    pub kind: String,
    pub title: String,
    /// The controllers it processes data for, as the registers name them.
    pub controllers: Vec<String>,
    pub processor: String,
    /// The names of the services its Art. 28 description covers; `None` when the platform does not
    /// know them (a contract entered by hand, a convention whose text was never frozen).
    pub services: Option<Vec<String>>,
    pub art28_clauses: bool,
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
    /// SHA-256 of the signed document: the convention's text as signed, the CCAP version that holds
    /// a market's clauses; empty when the platform holds none.
    pub sha256: String,
}

pub const ANNEX: &str = "annexe de l'article 28 d'une convention";
pub const MARKET: &str = "marché d'un groupement de commandes (CCAP, article 9.1)";
pub const CONTRACT: &str = "contrat";

/// The CSV columns, in their order.
pub const COLUMNS: [&str; 10] = [
    "Référence",
    "Nature",
    "Intitulé",
    "Responsables de traitement",
    "Sous-traitant",
    "Services couverts",
    "Clauses de l'article 28",
    "Début",
    "Fin",
    "SHA-256 du document signé",
];

/// The lines of `org` (already authorised): the conventions' annexes first, then its contract list,
/// in a number of statements that does not grow with them: the conventions' rows in one, the
/// markets' CCAP versions in the one that reads the registers' ([`load::world_citing`], then
/// [`contracts::clauses_of`]) and their groupements' terms in one.
pub async fn lines(state: &RgpdState, org: &Org) -> Result<Vec<ContractLine>, Problem> {
    let today = today_in_france(state.clock.now()).format("%Y-%m-%d").to_string();
    let list = contracts::list_for_client(&state.store, &org.id).await?;
    let markets: Vec<String> = list.iter().filter_map(contracts::market_of).map(str::to_string).collect();
    let (store, config) = (&state.store, &state.config);
    let world =
        load::world_citing(store, &state.catalog, &state.models, &config.provisioning, &today, &org.id, markets)
            .await?;
    let assignments = derive::conventions_binding(&world, &org.id);
    let signed = signed_conventions(state, assignments.iter().map(|a| a.convention.clone()).collect()).await?;
    let mut out: Vec<ContractLine> =
        assignments.iter().map(|a| annex_line(state, &world, a, signed.get(&a.convention))).collect();
    let controllers = contract_controllers(&world, org);
    let ccaps = contracts::clauses_of(&world.ccaps, &list);
    let terms = market_terms(state, list.iter().filter_map(contracts::market_of).map(str::to_string).collect()).await?;
    for c in &list {
        let market = contracts::market_of(c).map(|g| {
            let codes = terms.get(g).and_then(|t| load::market_services(&state.catalog, t));
            (codes.map(|codes| service_names(&state.catalog, &codes)), ccaps.get(&c.id).map(|v| v.sha256.clone()))
        });
        out.push(contract_line(&controllers, c, market));
    }
    Ok(out)
}

/// The controllers `org`'s contracts process data for, as the registers name them: those of the
/// conventions in force that make it their processor ([`derive::client_roles`]); `org` itself when
/// a convention makes it the controller; with no convention fixing its role, the controller the
/// registers apply by default to the schools of its ENT ([`derive::default_controllers`]: for a
/// commune's écoles, the IA-DASEN, the DSDEN, as the DSDEN's register names it; domain review 40,
/// G3; for a collège holding its own ENT, the collège itself, as its register names it), else
/// « non déterminé » where the registers determine none either — never a collectivité by default.
fn contract_controllers(world: &World, org: &Org) -> Vec<String> {
    let roles = derive::client_roles(world, &org.id);
    let mut controllers: Vec<String> = roles.controllers.iter().map(|(c, _)| named(c).official).collect();
    controllers.dedup();
    if !controllers.is_empty() {
        return controllers;
    }
    let own = derive::designation(&load::facts(org));
    if roles.controls {
        return vec![own.official];
    }
    let defaults = derive::default_controllers(world, &org.id);
    if defaults.is_empty() {
        return vec![format!("{UNDETERMINED} ne fixe le rôle {}", own.of)];
    }
    defaults.iter().map(|c| format!("{} ({DEFAULT})", named(c).official)).collect()
}

/// What a controller named by default is, when no convention in force fixes the client's role.
pub const DEFAULT: &str = "responsable de traitement par défaut, aucune convention en vigueur";
/// The start of the controllers' cell when neither a convention nor a default names one.
pub const UNDETERMINED: &str = "non déterminé : aucune convention en vigueur";

/// A convention's title, start and end dates and signed text's SHA-256.
type Signed = (String, String, String, Option<String>);

/// The title, start and end dates and signed text's SHA-256 of the conventions `references`, by
/// reference, one statement per 500 of them.
async fn signed_conventions(state: &RgpdState, references: Vec<String>) -> Result<HashMap<String, Signed>, Problem> {
    let mut out = HashMap::new();
    for cond in Condition::in_chunks("reference", references) {
        let sql = format!(
            "SELECT reference, title, start_date, end_date, document_hash FROM conventions WHERE {}",
            cond.sql()
        );
        let rows: Vec<(String, String, String, String, Option<String>)> =
            cond.bind(sqlx::query(&sql)).try_map(|r| FromRow::from_row(&r)).fetch_all(state.store.pool()).await?;
        out.extend(rows.into_iter().map(|(reference, title, start, end, hash)| (reference, (title, start, end, hash))));
    }
    Ok(out)
}

/// The terms of the groupements `ids`, by id, one statement per 500 of them.
async fn market_terms(state: &RgpdState, ids: Vec<String>) -> Result<HashMap<String, String>, Problem> {
    let mut out = HashMap::new();
    for cond in Condition::in_chunks("id", ids) {
        let sql = format!("SELECT id, terms FROM groupements WHERE {}", cond.sql());
        let rows: Vec<(String, String)> =
            cond.bind(sqlx::query(&sql)).try_map(|r| FromRow::from_row(&r)).fetch_all(state.store.pool()).await?;
        out.extend(rows);
    }
    Ok(out)
}

/// The annex of the convention `a` names (`signed`: its row): the services its signed text lists
/// ([`World::annexes`]).
fn annex_line(state: &RgpdState, world: &World, a: &derive::Assignment, signed: Option<&Signed>) -> ContractLine {
    let (title, start, end, hash) = signed.cloned().unwrap_or_default();
    let name = |id: &String| derive::official_name(world, id);
    let services = world.annexes.get(&a.convention).map(|codes| service_names(&state.catalog, codes));
    ContractLine {
        reference: a.convention.clone(),
        kind: ANNEX.into(),
        title,
        controllers: std::iter::once(&a.controller).chain(&a.joint_controllers).map(name).collect(),
        processor: a.processors.iter().map(name).collect::<Vec<_>>().join(", "),
        services,
        art28_clauses: true,
        starts_on: Some(start).filter(|d| !d.is_empty()),
        ends_on: Some(end).filter(|d| !d.is_empty()),
        sha256: hash.unwrap_or_default(),
    }
}

/// A contract of the list: a market (`market`: the services of its bouquet and options, the
/// SHA-256 of the CCAP version holding its clauses, [`contracts::clauses_of`], as its page shows
/// it); another contract's description is not recorded.
fn contract_line(
    controllers: &[String],
    c: &ProcessorContract,
    market: Option<(Option<Vec<String>>, Option<String>)>,
) -> ContractLine {
    let kind = if market.is_some() { MARKET } else { CONTRACT };
    let (services, sha256) = market.unwrap_or_default();
    ContractLine {
        reference: c.reference.clone(),
        kind: kind.into(),
        title: c.title.clone(),
        controllers: controllers.to_vec(),
        processor: c.processor.name.clone(),
        services,
        art28_clauses: c.art28_clauses,
        starts_on: c.starts_on.clone(),
        ends_on: c.ends_on.clone(),
        sha256: sha256.unwrap_or_default(),
    }
}

fn service_names(catalog: &Catalog, codes: &[String]) -> Vec<String> {
    codes.iter().map(|code| catalog.service(code).map_or_else(|| code.clone(), |s| s.name.clone())).collect()
}

/// The lines as CSV (`;`, UTF-8 with BOM, cells a spreadsheet would read as a formula
/// neutralised), [`COLUMNS`] in order.
pub fn csv(lines: &[ContractLine]) -> Vec<u8> {
    let rows = lines.iter().map(|l| {
        vec![
            l.reference.clone(),
            l.kind.clone(),
            l.title.clone(),
            l.controllers.join("\n"),
            l.processor.clone(),
            l.services.as_ref().map_or_else(|| "non décrits par la plateforme".to_string(), |s| s.join("\n")),
            if l.art28_clauses { "oui" } else { "non" }.to_string(),
            l.starts_on.clone().unwrap_or_default(),
            l.ends_on.clone().unwrap_or_default(),
            l.sha256.clone(),
        ]
    });
    documents::csv::write(&COLUMNS, rows, true)
}

/// The file name of the export of `org`'s contracts in `format`, on `today`.
pub fn file_name(org: &Org, today: &str, format: super::export::Format) -> String {
    super::export::file_name("contrats-sous-traitance", &org.code, today, format)
}
