//! The processor contracts of an organisation (Art. 28): those binding its processors,
//! each with its Art. 28 flag and its sub-processing chain shown as a chain (the
//! controller, its processor, the processor's sub-processors…), and the form adding one
//! through `ent_platform::contracts`, after the RGPD domain's write check.

use super::{base, shell, target};
use crate::forms::{Fields, On, Reply};
use crate::page::{self, Notice, PageError};
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use ent_kernel::error::Problem;
use ent_platform::contracts::{self, NewContract, ProcessorContract};
use ent_platform::identity::authz::{RGPD_READ, RGPD_WRITE};
use ent_platform::registry::Org;
use ent_rgpd::rgpd::{self as domain, RgpdState};
use serde_json::{json, Value};

/// Links of a sub-processing chain followed at most.
const CHAIN_DEPTH: usize = 5;

/// The chain below `contract`: its processor, then the sub-processors each one binds.
async fn chain(state: &RgpdState, contract: &ProcessorContract) -> Result<Vec<Value>, Problem> {
    let mut links = vec![json!({ "name": contract.processor.name, "art28": contract.art28_clauses })];
    let mut above = contract.processor.id.clone();
    for _ in 0..CHAIN_DEPTH {
        let below = contracts::list_for_client(&state.store, &above).await?;
        let Some(next) = below.into_iter().find(|c| c.parent_processor.as_ref().is_some_and(|p| p.id == above)) else {
            break;
        };
        links.push(json!({ "name": next.processor.name, "art28": next.art28_clauses }));
        above = next.processor.id;
    }
    Ok(links)
}

/// The éditeurs and hébergeurs a contract may bind, by name.
async fn processors(state: &RgpdState) -> Result<Vec<Value>, Problem> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, name, kind FROM orgs WHERE kind IN ('editeur', 'hebergeur') ORDER BY name, id LIMIT 500",
    )
    .fetch_all(state.store.pool())
    .await?;
    let kind = |k: &str| if k == "editeur" { "éditeur" } else { "hébergeur" };
    Ok(rows.iter().map(|(id, name, k)| json!({ "id": id, "label": format!("{name} ({})", kind(k)) })).collect())
}

async fn contracts_page(on: &On<RgpdState>, org: &Org, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let mut rows = Vec::new();
    for c in contracts::list_for_client(&on.state.store, &org.id).await? {
        rows.push(json!({
            "reference": c.reference, "title": c.title, "art28": c.art28_clauses,
            "processor": c.processor.name, "starts_on": c.starts_on, "ends_on": c.ends_on,
            "chain": chain(&on.state, &c).await?,
        }));
    }
    let path = format!("{}/contrats", base(org));
    let values = json!({
        "title": format!("Contrats de sous-traitance — {}", org.name),
        "path": path,
        "organisation": org.name,
        "contracts": rows,
        "processors": processors(&on.state).await?,
        "fields": {
            "processor": fields.get("processor"), "reference": fields.get("reference"), "title": fields.get("title"),
            "art28": fields.get("art28") == "oui", "starts_on": fields.get("starts_on"), "ends_on": fields.get("ends_on"),
        },
        "can_write": domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, org).await.is_ok(),
        "errors": refusal.errors,
    });
    let shell = shell(on, org, &[("Contrats", path.as_str())]).notice(refusal.notice);
    Ok(page::render_status(status, "rgpd_contracts.html", shell, values))
}

/// `/rgpd/{org}/contrats`.
pub(super) async fn list(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let notice = (query.get("apres") == "ajout").then(|| Notice::success("Le contrat est enregistré."));
    contracts_page(&on, &org, Reply::shown(&Fields::default(), notice)).await
}

fn control(field: &str) -> String {
    let name = match field {
        "processor_org_id" => "processor",
        "client_org_id" | "parent_processor_org_id" => "processor",
        other => other,
    };
    format!("contrat-{name}")
}

/// Posted: a contract binding the organisation to the processor chosen.
pub(super) async fn add(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let new = NewContract {
        processor_org_id: fields.get("processor").to_string(),
        client_org_id: org.id.clone(),
        parent_processor_org_id: None,
        reference: fields.get("reference").to_string(),
        title: fields.get("title").to_string(),
        art28_clauses: fields.get("art28") == "oui",
        starts_on: fields.opt("starts_on"),
        ends_on: fields.opt("ends_on"),
        source_kind: "manual".into(),
        source_id: None,
    };
    let recorded = async {
        let mut tx = on.state.store.begin_write().await?;
        contracts::record(&mut tx, &on.state.store, &on.signed.0.actor, &new, on.state.clock.now()).await?;
        tx.commit().await?;
        Ok::<(), Problem>(())
    }
    .await;
    match recorded {
        Ok(()) => Ok(page::redirect(&format!("{}/contrats?apres=ajout", base(&org)))),
        Err(p) if p.kind.status().is_server_error() => Err(p.into()),
        Err(p) => contracts_page(&on, &org, Reply::refused(&fields, &p, control)).await,
    }
}
