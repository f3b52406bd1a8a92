//! Authorisation cases: ENT tenants.

use super::*;

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/tenants", EVERYONE, Target::None),
    ("POST", "/api/v1/tenants", &[Admin, Dan, Collectivite], Target::Org),
    ("GET", "/api/v1/tenants/{slug}", EVERYONE, Target::Org),
    ("PUT", "/api/v1/tenants/{slug}", &[Admin, Dan, Collectivite], Target::Org),
    ("POST", "/api/v1/tenants/{slug}/transition", &[Admin, Dan], Target::Org),
    ("GET", "/api/v1/tenants/{slug}/events", EVERYONE, Target::Org),
    ("GET", "/api/v1/tenants/{slug}/destruction", EVERYONE, Target::Org),
    ("GET", "/api/v1/tenant-schema", EVERYONE, Target::None),
];

backend_test!(a_tenant_naming_an_unreadable_organisation_of_another_kind_answers_as_a_missing_one);
/// The matrix's out-of-scope school has the kind a tenant needs; an EPCI out of scope must not
/// be told apart either (neither its name nor its kind), in a creation or an update.
async fn a_tenant_naming_an_unreadable_organisation_of_another_kind_answers_as_a_missing_one(
    db: crate::common::TestDb,
) {
    let world = world(&db).await;
    let mut failures = Vec::new();
    for path in ["/api/v1/tenants", "/api/v1/tenants/{slug}"] {
        let method = if path == "/api/v1/tenants" { "POST" } else { "PUT" };
        for role in [Dan, Collectivite] {
            let Some(call) = world.call(method, path, role, Side::In).await else { continue };
            let document = call.body.clone().expect("a tenant document");
            let naming = |key: &str| {
                let mut body = document.clone();
                body["spec"]["organisation"] = json!(key);
                let (method, path) = (call.method.clone(), call.path.clone());
                Call { method, path, body: Some(body), csv: None, pdf: None, if_match: call.if_match }
            };
            let (out, missing) = (naming(&world.group_out.id), naming(MISSING));
            let (out_status, out_body) = world.send(role, out).await;
            let (missing_status, missing_body) = world.send(role, missing).await;
            if out_status != 422
                || out_status != missing_status
                || words(&out_body, std::slice::from_ref(&world.group_out.id)) != words(&missing_body, &[])
                || out_body.contains(&world.group_out.name)
            {
                failures.push(format!(
                    "{method} {path} as {}: out of scope {out_status} {out_body} / missing {missing_status} {missing_body}",
                    role.as_str()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}: {}", db.name, failures.join("\n"));
}

backend_test!(a_tenant_naming_an_unreadable_organisation_as_its_vendor_or_host_answers_as_a_missing_one);
/// An out-of-scope organisation named as the vendor or host of a tenant (not an éditeur nor an
/// hébergeur) is told apart from a missing code by neither its name nor its kind; one the
/// caller reads still gets « n'est pas un … ».
async fn a_tenant_naming_an_unreadable_organisation_as_its_vendor_or_host_answers_as_a_missing_one(
    db: crate::common::TestDb,
) {
    let world = world(&db).await;
    let mut failures = Vec::new();
    let Some(call) = world.call("POST", "/api/v1/tenants", Dan, Side::In).await else {
        panic!("a DAN may create a tenant")
    };
    let document = call.body.clone().expect("a tenant document");
    for field in ["vendor", "host"] {
        let naming = |key: &str| {
            let mut body = document.clone();
            body["spec"][field] = json!(key);
            let (method, path) = (call.method.clone(), call.path.clone());
            Call { method, path, body: Some(body), csv: None, pdf: None, if_match: call.if_match }
        };
        let (out_status, out_body) = world.send(Dan, naming(&world.group_out.id)).await;
        let (missing_status, missing_body) = world.send(Dan, naming(MISSING)).await;
        if out_status != 422
            || out_status != missing_status
            || words(&out_body, std::slice::from_ref(&world.group_out.id)) != words(&missing_body, &[])
            || out_body.contains(&world.group_out.name)
            || out_body.contains("n'est pas un")
        {
            failures.push(format!(
                "{field}: out of scope {out_status} {out_body} / missing {missing_status} {missing_body}"
            ));
        }
        let (in_status, in_body) = world.send(Dan, naming(&world.group_in.id)).await;
        if in_status != 422 || !in_body.contains(&format!("{} n'est pas un", world.group_in.name)) {
            failures.push(format!("{field}: in scope {in_status} {in_body}"));
        }
    }
    assert!(failures.is_empty(), "{}: {}", db.name, failures.join("\n"));
}
