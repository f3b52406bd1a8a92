//! Authorisation cases of the console's RGPD screens (register, exports, snapshots, profile,
//! breach and request logs, processor contracts).
//!
//! Who reaches a register is the RGPD domain's decision, the same for the API and the
//! console: a page of an organisation answers what the API's read (or write) of that
//! organisation's register answers the same person, so the table below only names the
//! roles and the expected statuses follow the API.

use super::console::Page;
use super::rgpd::RGPD;
use super::*;

const TENANT_WRITERS: &[Role] = &[Admin, Dan, Collectivite];

pub(super) const PAGES: &[Page] = &[
    ("GET", "/rgpd", Some(RGPD)),
    ("GET", "/rgpd/{org}", Some(RGPD)),
    ("GET", "/rgpd/{org}/traitements/{fiche}", Some(RGPD)),
    ("GET", "/rgpd/{org}/export/{format}", Some(RGPD)),
    ("POST", "/rgpd/{org}/instantanes", Some(RGPD)),
    ("GET", "/rgpd/{org}/ecarts", Some(RGPD)),
    ("GET", "/rgpd/{org}/profil", Some(RGPD)),
    ("POST", "/rgpd/{org}/profil", Some(RGPD)),
    ("GET", "/rgpd/{org}/violations", Some(RGPD)),
    ("POST", "/rgpd/{org}/violations", Some(RGPD)),
    ("GET", "/rgpd/{org}/demandes", Some(RGPD)),
    ("POST", "/rgpd/{org}/demandes", Some(RGPD)),
    ("GET", "/rgpd/{org}/violations/{violation}", Some(RGPD)),
    ("POST", "/rgpd/{org}/violations/{violation}", Some(RGPD)),
    ("GET", "/rgpd/{org}/demandes/{demande}", Some(RGPD)),
    ("POST", "/rgpd/{org}/demandes/{demande}", Some(RGPD)),
    ("GET", "/rgpd/{org}/export-contrats", Some(RGPD)),
    ("GET", "/rgpd/{org}/contrats", Some(RGPD)),
    ("POST", "/rgpd/{org}/contrats", Some(RGPD)),
    ("GET", "/rgpd/{org}/contrats/{contrat}", Some(RGPD)),
    ("POST", "/rgpd/{org}/contrats/{contrat}", Some(RGPD)),
    ("POST", "/rgpd/{org}/contrats/{contrat}/sous-traitants", Some(RGPD)),
    ("POST", "/rgpd/{org}/contrats/{contrat}/sous-traitants/{sous_traitant}/retrait", Some(RGPD)),
    ("POST", "/ent/{ent}/services", Some(TENANT_WRITERS)),
];

/// The placeholders of the pages above and their values in and out of scope: the first
/// activity of the in-scope commune's register (« aucune » when it has none), the ODS export.
pub(super) async fn targets(world: &World) -> Vec<(&'static str, [String; 2])> {
    let fiche = fiche(world).await;
    let (breach_in, request_in) = log_entries(world, &world.commune_in).await;
    let (breach_out, request_out) = log_entries(world, &world.commune_out).await;
    vec![
        ("{fiche}", [fiche.clone(), fiche]),
        ("{format}", ["ods".into(), "ods".into()]),
        ("{violation}", [breach_in, breach_out]),
        ("{demande}", [request_in, request_out]),
        ("{contrat}", [contract(world, &world.commune_in).await, contract(world, &world.commune_out).await]),
        // Posted without the contract's version, a removal is refused before the sub-processor is looked up.
        ("{sous_traitant}", ["aucun".into(), "aucun".into()]),
    ]
}

/// A contract binding the test vendor to `org`: its id.
async fn contract(world: &World, org: &Org) -> String {
    let new: entcp::contracts::NewContract = serde_json::from_value(json!({
        "processor_org_id": world.vendor.id, "client_org_id": org.id, "reference": format!("CT-{}", org.code),
        "title": "Marché ENT", "art28_clauses": true, "source_kind": "manual",
    }))
    .unwrap();
    let mut tx = world.store.begin_write().await.unwrap();
    let id = entcp::contracts::record(&mut tx, &world.store, &admin(), &new, t0()).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// A breach and a data-subject request recorded in `org`'s logs: their ids.
async fn log_entries(world: &World, org: &Org) -> (String, String) {
    let state = world.state.clone();
    let breach = serde_json::from_value(json!({
        "title": "Courriel mal adressé", "facts": "Liste d'élèves envoyée à un tiers.", "aware_at": "2026-08-31T08:00:00Z",
        "data_categories": ["identité"], "people_approx": 30, "records_approx": 30,
        "consequences": "Faibles.", "measures": "Demande de suppression au destinataire.",
    }))
    .unwrap();
    let breach = entcp::rgpd::breaches::create(&state.rgpd(), &admin(), org, breach).await.unwrap();
    let request =
        serde_json::from_value(json!({ "kind": "access", "requester": "J. D.", "received_on": "2026-08-20" })).unwrap();
    let request = entcp::rgpd::requests::create(&state.rgpd(), &admin(), org, request).await.unwrap();
    (breach.id, request.id)
}

/// The references of the activities of `org`'s register now.
async fn activities(world: &World, org: &Org) -> Vec<String> {
    let state = world.state.clone();
    let register = entcp::rgpd::current(&state.rgpd(), org).await.unwrap();
    register.entries.into_iter().map(|e| e.reference).collect()
}

/// The first activity of the in-scope commune's register, « aucune » when it has none.
async fn fiche(world: &World) -> String {
    activities(world, &world.commune_in).await.into_iter().next().unwrap_or_else(|| "aucune".into())
}

/// The commune of a page's `{org}` (as `console.rs` fills it).
fn commune(world: &World, side: Side) -> &Org {
    match side {
        Side::In => &world.commune_in,
        Side::Out => &world.commune_out,
    }
}

/// The log of the API a page of the breach log or the requests shows, if it is one.
fn log_of(path: &str) -> Option<&'static str> {
    if path.starts_with("/rgpd/{org}/violations") {
        Some("breaches")
    } else if path.starts_with("/rgpd/{org}/demandes") {
        Some("requests")
    } else {
        None
    }
}

/// What the API answers `role` reading (`GET` its incomplete entries, or the log a page
/// shows: the logs are read by who keeps them) or writing (`POST` a snapshot) the register
/// of the commune of `side`.
async fn api(world: &World, method: Method, path: &str, role: Role, side: Side) -> u16 {
    let commune = &commune(world, side).id;
    let url = match (method == Method::GET, log_of(path)) {
        (true, Some(log)) => format!("/api/v1/rgpd/{log}/{commune}"),
        (true, None) => format!("/api/v1/rgpd/registers/{commune}/incomplete"),
        (false, _) => format!("/api/v1/rgpd/registers/{commune}/snapshots"),
    };
    world.app.request(method, &url).bearer(&world.tokens[&role]).send().await.status
}

/// What a page above answers a role it allows; `None` for the general rule of `console.rs`.
pub(super) async fn expected(world: &World, method: &str, path: &str, role: Role, side: Side) -> Option<u16> {
    if path == "/ent/{ent}/services" {
        // The tenant page's rule (a tenant out of scope is not revealed); posted without the service: 422.
        return Some(if side == Side::Out && role != Admin { 404 } else { 422 });
    }
    if !path.starts_with("/rgpd") {
        return None;
    }
    if path == "/rgpd" {
        return Some(200);
    }
    let (access, allowed) = match method {
        "GET" => (Method::GET, 200),
        _ => (Method::POST, 201),
    };
    let status = api(world, access, path, role, side).await;
    if status != allowed && status != 200 {
        return Some(status);
    }
    Some(match (method, path) {
        // A fiche the commune's register does not hold answers like a missing page.
        ("GET", "/rgpd/{org}/traitements/{fiche}") => {
            if activities(world, commune(world, side)).await.contains(&fiche(world).await) {
                200
            } else {
                404
            }
        }
        ("GET", _) => 200,
        ("POST", "/rgpd/{org}/instantanes") => 303,
        // The vendor's chain is every client's: only who keeps the vendor's registers adds to it.
        ("POST", "/rgpd/{org}/contrats/{contrat}/sous-traitants") if role != Admin => 403,
        // The contacts without their version, a log entry or a contract without its fields, a
        // sub-processor added or removed without the contract's version: refused.
        _ => 422,
    })
}
