//! The authorisation matrix: every mounted route × every role × (target in the
//! role's scope, target out of it) → the expected status. The table of who may
//! do what is written here, independently of the code; a route that has no
//! entry fails the test.
//!
//! The cases live in one file per capability (`CASES`); this module is the runner.

mod accounts;
mod console;
mod console_account;
mod console_groupements;
mod console_rgpd;
mod conventions;
pub(crate) mod groupements;
mod operations;
mod orgs;
mod private_school;
mod rgpd;
mod support_desk;
mod tenants;
mod world;

use crate::common;

use common::{admin, t0, token_for};
use conventions::{convention_success, is_party, json_of_new};
use entcp::clock::FixedClock;
use entcp::identity;
use entcp::kernel::roles::OrgKind;
use entcp::kernel::roles::Role;
use entcp::registry::manage::set_member;
use entcp::registry::queries::{self, OrgFilter};
use entcp::registry::{EtabType, Org};
use entcp::store::Store;
use groupements::groupement_expected;
use orgs::invitation_expected;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use support_desk::ticket_expected;
use world::*;
use Role::*;

pub(super) const EVERYONE: &[Role] = &Role::ALL;

/// One case: a route, the roles that may call it, and what kind of target it acts on.
type Case = (&'static str, &'static str, &'static [Role], Target);

/// Every case, capability by capability.
fn table() -> impl Iterator<Item = &'static Case> {
    [
        orgs::CASES,
        accounts::CASES,
        tenants::CASES,
        conventions::CASES,
        operations::CASES,
        support_desk::CASES,
        groupements::CASES,
        rgpd::CASES,
    ]
    .into_iter()
    .flatten()
}

fn success(method: &str, path: &str) -> u16 {
    match (method, path) {
        // No convention covers the test schools: the governance gate answers.
        ("POST", "/api/v1/tenants/{slug}/transition") => 409,
        // The tenant is not purged: no attestation of destruction yet (tenants tests read one).
        ("GET", "/api/v1/tenants/{slug}/destruction") => 404,
        ("POST", "/api/v1/orgs")
        | ("POST", "/api/v1/orgs/{key}/invitations")
        | ("POST", "/api/v1/users")
        | ("POST", "/api/v1/tokens")
        | ("POST", "/api/v1/tenants")
        | ("POST", "/api/v1/rgpd/breaches/{org}")
        | ("POST", "/api/v1/rgpd/requests/{org}") => 201,
        ("DELETE", p) if p != "/api/v1/tokens/{id}" => 204,
        ("PUT", "/api/v1/support/contracts/{org}") => 204,
        _ => 200,
    }
}

/// What the table says `role` should get.
fn expected(method: &str, path: &str, allowed: &[Role], target: Target, role: Role, side: Side) -> u16 {
    if !allowed.contains(&role) {
        return 403;
    }
    if target == Target::Ticket {
        return ticket_expected(method, path, role, side);
    }
    if target == Target::Groupement {
        return groupement_expected(method, path, role, side);
    }
    if target == Target::Invitation {
        return invitation_expected(path, role, side);
    }
    if path == "/api/v1/orgs/{key}/members/{commune}" && side == Side::In && role == Coordinateur {
        // The commune is readable (a member) but only someone acting for it adds it (an
        // invitation) or detaches it (or the group's own collectivité).
        return 403;
    }
    if target == Target::Convention {
        return match (side, role) {
            (Side::In, _) | (Side::Out, Admin) => convention_success(method, path, role),
            // Creating with other organisations as parties is refused; others' conventions are not revealed.
            (Side::Out, _) if path == "/api/v1/conventions" => 403,
            (Side::Out, _) => 404,
        };
    }
    if side == Side::In || role == Admin || target == Target::None {
        return success(method, path);
    }
    match (method, path) {
        // The organisation of the document (the département of the group) is named like an unknown one.
        ("POST", "/api/v1/tenants") | ("POST", "/api/v1/orgs") => 422,
        // Out of scope and unreadable: not revealed, read or write.
        _ => 404,
    }
}

backend_test!(every_route_answers_each_role_in_and_out_of_scope_as_the_table_says);
async fn every_route_answers_each_role_in_and_out_of_scope_as_the_table_says(db: crate::common::TestDb) {
    for route in entcp::api::routes() {
        let known = table().any(|(m, p, _, _)| *m == route.method.as_str() && *p == route.path);
        assert!(known, "{} {} has no entry in the authorisation matrix", route.method, route.path);
    }
    let world = world(&db).await;
    let mut failures = Vec::new();
    for (method, path, allowed, target) in table() {
        for role in Role::ALL {
            for side in [Side::In, Side::Out] {
                let want = expected(method, path, allowed, *target, role, side);
                world.leaves_targets_unchanged(*method == "GET" || want >= 400);
                let Some(call) = world.call(method, path, role, side).await else { continue };
                let (got, body) = world.send(role, call).await;
                if got != want {
                    failures.push(format!(
                        "{method} {path} as {} ({side:?}): {got}, expected {want}: {body}",
                        role.as_str()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}: {} mismatches:\n{}", db.name, failures.len(), failures.join("\n"));
}

/// What stands for an id that exists nowhere.
const MISSING: &str = "inexistant-0000";

/// The request of `call` with every id of its path, and every out-of-scope organisation its
/// body names, replaced by one that exists nowhere; with the keys it replaced.
fn with_missing_ids(template: &str, call: &Call, body_orgs: &[&Org]) -> (Call, Vec<String>) {
    let (path, query) = match call.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (call.path.as_str(), None),
    };
    let mut sent = Vec::new();
    let segments: Vec<String> = template
        .split('/')
        .zip(path.split('/'))
        .map(|(t, actual)| match t {
            "{role}" | "{name}" | "{code}" => actual.to_string(),
            t if t.starts_with('{') => {
                sent.push(actual.to_string());
                MISSING.to_string()
            }
            _ => actual.to_string(),
        })
        .collect();
    let path = match query {
        Some(q) => format!("{}?{q}", segments.join("/")),
        None => segments.join("/"),
    };
    let mut body = call.body.clone();
    if let Some(body) = body.as_mut() {
        replace_keys(body, body_orgs, &mut sent);
    }
    let call = Call {
        method: call.method.clone(),
        path,
        body,
        csv: call.csv.clone(),
        pdf: call.pdf.clone(),
        if_match: call.if_match,
    };
    (call, sent)
}

/// Replaces, in `value`, every string naming one of `orgs` (by id, code or `kind:code`) by
/// [`MISSING`], and records the keys replaced.
fn replace_keys(value: &mut Value, orgs: &[&Org], sent: &mut Vec<String>) {
    match value {
        Value::String(s) if orgs.iter().any(|o| *s == o.id || *s == o.code || *s == o.qualified_code()) => {
            sent.push(std::mem::replace(s, MISSING.to_string()));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_keys(v, orgs, sent)),
        Value::Object(members) => members.values_mut().for_each(|v| replace_keys(v, orgs, sent)),
        _ => {}
    }
}

/// The words of a problem body with the keys the caller sent written as [`MISSING`]: what
/// an out-of-scope answer must say, word for word, to look like a missing one.
fn words(body: &str, sent: &[String]) -> Value {
    let mut body = body.to_string();
    for key in sent.iter().filter(|k| !k.is_empty()) {
        body = body.replace(key.as_str(), MISSING);
    }
    serde_json::from_str(&body).unwrap_or(Value::String(body))
}

/// The sorted members of a JSON object: what "the same body shape" compares.
fn shape(body: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut keys: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

backend_test!(an_out_of_scope_id_and_a_missing_id_answer_alike);
async fn an_out_of_scope_id_and_a_missing_id_answer_alike(db: crate::common::TestDb) {
    let world = world(&db).await;
    // Every request here is refused (or the case fails): their targets are kept.
    world.leaves_targets_unchanged(true);
    let mut failures = Vec::new();
    for (method, path, allowed, target) in table() {
        // Groupements are public facts to their readers: refusals there may say 403.
        if matches!(target, Target::None | Target::Groupement) {
            continue;
        }
        for role in allowed.iter().copied().filter(|r| *r != Admin) {
            let Some(out) = world.call(method, path, role, Side::Out).await else { continue };
            let (missing, sent) = with_missing_ids(path, &out, &world.orgs_out());
            // Neither an id in the path nor an organisation in the body: nothing to hide. The
            // parties of a new convention are named across scopes (a school names its académie):
            // a refusal there names nothing ("vous n'êtes rattaché(e) à aucune des parties").
            if sent.is_empty() || (method, path) == (&"POST", &"/api/v1/conventions") {
                continue;
            }
            let (out_status, out_body) = world.send(role, out).await;
            let (missing_status, missing_body) = world.send(role, missing).await;
            if out_status != missing_status
                || shape(&out_body) != shape(&missing_body)
                || words(&out_body, &sent) != words(&missing_body, &[])
            {
                failures.push(format!(
                    "{method} {path} as {}: out of scope {out_status} {out_body} / missing {missing_status} {missing_body}",
                    role.as_str()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}: {} oracles:\n{}", db.name, failures.len(), failures.join("\n"));
}
