//! Authorisation cases of the web console: every page × every role (signed in with a
//! password) × a target in or out of the role's scope, and every signed-in page without
//! a session (→ the sign-in form). A console page missing from the table fails the test.

use super::conventions::{CONVENTION_READERS, CONVENTION_SIGNERS, CONVENTION_WRITERS};
use super::support_desk::{SUPPORT_CREATORS, SUPPORT_READERS};
use super::*;
use crate::console::{csrf_of, sign_in, with_password};

/// Who may open a page: `None` for a public one; otherwise the roles allowed (the rest get 403).
pub(super) type Page = (&'static str, &'static str, Option<&'static [Role]>);

const PAGES: &[Page] = &[
    ("GET", "/assets/{*path}", None),
    ("GET", "/connexion", None),
    ("POST", "/connexion", None),
    ("GET", "/connexion/oidc", None),
    ("GET", "/connexion/oidc/retour", None),
    ("POST", "/deconnexion", Some(EVERYONE)),
    ("GET", "/mot-de-passe-oublie", None),
    ("POST", "/mot-de-passe-oublie", None),
    ("GET", "/mot-de-passe/{jeton}", None),
    ("GET", "/accessibilite", None),
    ("POST", "/mot-de-passe/{jeton}", None),
    ("GET", "/", Some(EVERYONE)),
    ("GET", "/tableau-de-bord/{org}", Some(&[Admin, Dan, Collectivite])),
    ("GET", "/compte", Some(EVERYONE)),
    ("POST", "/compte/mot-de-passe", Some(EVERYONE)),
    ("POST", "/compte/sessions/revoquer", Some(EVERYONE)),
    ("POST", "/utilisateurs/{id}/sessions/revoquer", Some(&[Admin])),
    ("GET", "/conventions", Some(CONVENTION_READERS)),
    ("GET", "/conventions/nouvelle", Some(CONVENTION_WRITERS)),
    ("POST", "/conventions/nouvelle", Some(CONVENTION_WRITERS)),
    ("GET", "/conventions/{convention}", Some(CONVENTION_READERS)),
    ("GET", "/conventions/{convention}/document", Some(CONVENTION_READERS)),
    ("GET", "/conventions/{convention}/exemplaires-signes/{file}", Some(CONVENTION_READERS)),
    ("GET", "/conventions/{convention}/modifier", Some(CONVENTION_WRITERS)),
    ("POST", "/conventions/{convention}/modifier", Some(CONVENTION_WRITERS)),
    ("POST", "/conventions/{convention}/soumettre", Some(CONVENTION_WRITERS)),
    ("POST", "/conventions/{convention}/viser", Some(CONVENTION_SIGNERS)),
    ("POST", "/conventions/{convention}/signer", Some(CONVENTION_SIGNERS)),
    ("POST", "/conventions/{convention}/refuser", Some(CONVENTION_SIGNERS)),
    ("POST", "/conventions/{convention}/avenant", Some(CONVENTION_WRITERS)),
    ("POST", "/conventions/{convention}/resilier", Some(CONVENTION_WRITERS)),
    ("POST", "/conventions/{convention}/non-reconduction", Some(CONVENTION_SIGNERS)),
    ("POST", "/conventions/{convention}/signatures/retirer", Some(&[Admin])),
    ("GET", "/ent", Some(EVERYONE)),
    ("GET", "/ent/nouveau", Some(&[Admin, Dan, Collectivite])),
    ("POST", "/ent/nouveau", Some(&[Admin, Dan, Collectivite])),
    ("GET", "/ent/{ent}", Some(EVERYONE)),
    ("POST", "/ent/{ent}/etat", Some(&[Admin, Dan])),
    ("GET", "/ent/{ent}/attestation-destruction", Some(EVERYONE)),
    ("GET", "/tickets", Some(SUPPORT_READERS)),
    ("GET", "/tickets/nouveau", Some(SUPPORT_CREATORS)),
    ("POST", "/tickets/nouveau", Some(SUPPORT_CREATORS)),
    ("GET", "/tickets/priorite", Some(SUPPORT_CREATORS)),
    ("GET", "/tickets/{ticket}", Some(SUPPORT_READERS)),
    ("POST", "/tickets/{ticket}/commentaire", Some(SUPPORT_READERS)),
    ("POST", "/tickets/{ticket}/statut", Some(SUPPORT_READERS)),
    ("POST", "/tickets/{ticket}/escalade", Some(SUPPORT_READERS)),
    ("POST", "/tickets/{ticket}/renvoi", Some(SUPPORT_READERS)),
    ("POST", "/tickets/{ticket}/affectation", Some(SUPPORT_READERS)),
    ("GET", "/organisations", Some(EVERYONE)),
    ("GET", "/organisations/{org}", Some(EVERYONE)),
    ("POST", "/organisations/{org}/contact", Some(&[Admin, Dan, Collectivite, ChefEtablissement])),
    ("POST", "/organisations/{org}/membres/ajouter", Some(&[Admin, Dan, Collectivite, Coordinateur])),
    ("POST", "/organisations/{org}/membres/retirer", Some(&[Admin, Dan, Collectivite, Coordinateur])),
    ("GET", "/utilisateurs", Some(&[Admin, Dan])),
    ("POST", "/utilisateurs", Some(&[Admin, Dan])),
    ("GET", "/utilisateurs/{id}", Some(&[Admin, Dan])),
    ("POST", "/utilisateurs/{id}/roles", Some(&[Admin, Dan])),
    ("POST", "/utilisateurs/{id}/roles/retirer", Some(&[Admin, Dan])),
    ("POST", "/utilisateurs/{id}/acces/revoquer", Some(&[Admin, Dan])),
];

/// The targets of the convention, tenant and ticket pages: a signed convention (in force
/// later), a requested tenant, and a ticket opened by the usager and escalated to the
/// vendor (in scope) or opened on the other school (out of scope).
struct Targets {
    convention: [String; 2],
    tenant: [String; 2],
    ticket: [String; 2],
    /// The placeholders of the capability tables (`console_*.rs`) and their in/out values.
    more: Vec<(&'static str, [String; 2])>,
    /// A version of every groupement piece in and out of scope: the piece pages are sent for each.
    pieces: Vec<(entcp::groupements::documents::Kind, [String; 2])>,
}

async fn targets(world: &World) -> Targets {
    let mut convention = Vec::new();
    let mut tenant = Vec::new();
    for (side, school) in [(Side::In, &world.etab_in), (Side::Out, &world.etab_out)] {
        convention.push(world.convention(side, "signed").await.id);
        let doc = world.tenant_doc(school);
        let admin = world.app.client(&world.tokens[&Admin]);
        assert_eq!(admin.post("/api/v1/tenants").json(&doc).send().await.status, 201);
        tenant.push(doc["metadata"]["name"].as_str().unwrap().to_string());
    }
    let ticket = [world.support_ticket(SupportN3, Side::In).await.id, world.support_ticket(Usager, Side::Out).await.id];
    let copies = [world.signed_copy(&convention[0]).await, world.signed_copy(&convention[1]).await];
    let mut more = vec![("{file}", copies)];
    more.extend(console_rgpd::targets(world).await);
    let (groupement_targets, pieces) = console_groupements::targets(world).await;
    more.extend(groupement_targets);
    more.extend(console_account::targets(world).await);
    for (i, (placeholder, _)) in more.iter().enumerate() {
        assert!(!more[..i].iter().any(|(p, _)| p == placeholder), "placeholder {placeholder} given twice");
    }
    Targets { convention: convention.try_into().unwrap(), tenant: tenant.try_into().unwrap(), ticket, more, pieces }
}

/// Every page of the console: the table above, then each capability's own.
fn pages() -> impl Iterator<Item = &'static Page> {
    PAGES.iter().chain(console_rgpd::PAGES).chain(console_groupements::PAGES).chain(console_account::PAGES)
}

/// What a page of a capability's own table answers a role it allows (`None`: the general rule).
async fn capability_expected(world: &World, method: &str, path: &str, role: Role, side: Side) -> Option<u16> {
    if let Some(status) = screens_expected(world, method, path, role, side).await {
        return Some(status);
    }
    if let Some(status) = console_rgpd::expected(world, method, path, role, side).await {
        return Some(status);
    }
    if let Some(status) = console_groupements::expected(world, method, path, role, side).await {
        return Some(status);
    }
    console_account::expected(world, method, path, role, side).await
}

/// The organisation of a page's `{org}`: the EPCI for the membership forms, else the commune.
fn org_of<'a>(world: &'a World, path: &str, side: Side) -> &'a Org {
    match (path.contains("/membres/"), side) {
        (true, Side::In) => &world.group_in,
        (true, Side::Out) => &world.group_out,
        (false, Side::In) => &world.commune_in,
        (false, Side::Out) => &world.commune_out,
    }
}

/// What the organisation and user screens answer a role they allow; the organisation
/// pages as the API's read of the same organisation does (404 when it does not show
/// it), their forms (sent without their fields) refused with 422 where the write is
/// in scope; `None` for the other pages.
async fn screens_expected(world: &World, method: &str, path: &str, role: Role, side: Side) -> Option<u16> {
    let api = format!("/api/v1/orgs/{}", org_of(world, path, side).id);
    let readable = || async { world.app.get(&api).bearer(&world.tokens[&role]).send().await.status == 200 };
    let hidden_user = side == Side::Out && role != Admin;
    Some(match (method, path) {
        ("GET", "/organisations") | ("GET", "/utilisateurs") => 200,
        ("GET", "/organisations/{org}") => {
            if readable().await {
                200
            } else {
                404
            }
        }
        ("POST", p) if p.starts_with("/organisations/{org}/") => {
            if readable().await {
                422
            } else {
                404
            }
        }
        ("POST", "/utilisateurs") => 422,
        ("GET", "/utilisateurs/{id}")
        | ("POST", "/utilisateurs/{id}/roles")
        | ("POST", "/utilisateurs/{id}/roles/retirer")
        | ("POST", "/utilisateurs/{id}/acces/revoquer")
            if hidden_user =>
        {
            404
        }
        ("GET", "/utilisateurs/{id}") => 200,
        ("POST", "/utilisateurs/{id}/acces/revoquer") => 303,
        ("POST", "/utilisateurs/{id}/roles") | ("POST", "/utilisateurs/{id}/roles/retirer") => 422,
        _ => return None,
    })
}

/// The concrete address of a page for `side`.
fn address(world: &World, targets: &Targets, path: &str, side: Side) -> String {
    let (org, user, n) = match side {
        Side::In => (&world.commune_in, &world.user_in, 0),
        Side::Out => (&world.commune_out, &world.user_out, 1),
    };
    let org = if path.contains("/membres/") { org_of(world, path, side) } else { org };
    let mut address = path
        .replace("{*path}", "0.1.0/neutre.css")
        .replace("{org}", &org.id)
        .replace("{id}", user)
        .replace("{jeton}", &"0".repeat(64))
        .replace("{convention}", &targets.convention[n])
        .replace("{ent}", &targets.tenant[n])
        .replace("{ticket}", &targets.ticket[n]);
    for (placeholder, values) in &targets.more {
        address = address.replace(placeholder, &values[n]);
    }
    address
}

/// What a public page answers anyone (its forms refused without their double-submit cookie).
fn public_expected(method: &str, path: &str) -> u16 {
    match (method, path) {
        ("POST", _) => 403,
        (_, "/mot-de-passe/{jeton}") => 404,
        // No OpenID Connect provider is configured here (tests/integration/oidc.rs has one).
        (_, "/connexion/oidc" | "/connexion/oidc/retour") => 404,
        _ => 200,
    }
}

/// What a signed-in page answers a role it allows.
fn allowed_expected(method: &str, path: &str, role: Role, side: Side) -> u16 {
    // A convention the role's organisation is not party to (the coordinateur's EPCI is not),
    // a tenant out of the role's scope (the vendor's): not revealed, the 404 of a missing one.
    // A ticket neither opened by the role nor on its support path (the chef
    // d'établissement's school's ticket opened by the usager): likewise.
    let hidden = match path {
        p if p.starts_with("/conventions/{convention}") => side == Side::Out || role == Coordinateur,
        p if p.starts_with("/ent/{ent}") => side == Side::Out || role == SupportN3,
        p if p.starts_with("/tickets/{ticket}") => side == Side::Out || role == ChefEtablissement,
        _ => false,
    };
    if hidden && role != Admin {
        return 404;
    }
    match (method, path) {
        // Role before state: an école's head signs its convention but writes none of it (nor
        // gives a visa: the model has none), a support N2 neither signs nor gives a visa;
        // refused whatever the convention's state.
        (
            "POST",
            "/conventions/{convention}/soumettre"
            | "/conventions/{convention}/avenant"
            | "/conventions/{convention}/resilier"
            | "/conventions/{convention}/non-reconduction"
            | "/conventions/{convention}/viser",
        ) if role == ChefEtablissement => 403,
        (
            "POST",
            "/conventions/{convention}/refuser"
            | "/conventions/{convention}/viser"
            | "/conventions/{convention}/signer"
            | "/conventions/{convention}/non-reconduction",
        ) if role == SupportN2 => 403,
        // The convention is signed, in force later: it may be amended (an avenant may be concluded
        // before it takes effect); the first role sent (the admin) drafts the avenant, the others
        // are told one is in preparation.
        ("POST", "/conventions/{convention}/avenant") if role == Admin => 303,
        // Submitting, visas, signatures, refusals and a second avenant are refused.
        (
            "POST",
            "/conventions/{convention}/soumettre"
            | "/conventions/{convention}/viser"
            | "/conventions/{convention}/signer"
            | "/conventions/{convention}/refuser"
            | "/conventions/{convention}/avenant",
        ) => 409,
        // The edit form of a draft: whoever may not write the convention (an école's head signs
        // it only) gets the 404 of a missing one; the convention is signed, no longer edited there.
        (_, "/conventions/{convention}/modifier") if role == ChefEtablissement => 404,
        (_, "/conventions/{convention}/modifier") => 409,
        // Forms posted without their fields: refused by the capability's checks.
        (
            "POST",
            "/conventions/nouvelle"
            | "/conventions/{convention}/resilier"
            | "/conventions/{convention}/signatures/retirer"
            | "/ent/nouveau"
            | "/ent/{ent}/etat",
        ) => 422,
        // The convention's model (premier degré) is not renewed tacitly: nothing to refuse.
        ("POST", "/conventions/{convention}/non-reconduction") => 422,
        // The ticket's forms and the new ticket's, posted without their fields (nor the version).
        ("POST", p) if p.starts_with("/tickets/") => 422,
        ("GET", "/tableau-de-bord/{org}") if side == Side::Out && role != Admin => 404,
        // The tenant is not purged: no attestation of destruction yet, the 404 of a missing one.
        ("GET", "/ent/{ent}/attestation-destruction") => 404,
        ("POST", "/compte/mot-de-passe") => 422, // the current password given is wrong
        ("POST", "/compte/sessions/revoquer") | ("GET", _) => 200,
        _ => 303,
    }
}

backend_test!(every_console_page_answers_each_role_in_and_out_of_scope_as_the_table_says);
async fn every_console_page_answers_each_role_in_and_out_of_scope_as_the_table_says(db: crate::common::TestDb) {
    for route in entcp::console::routes::<entcp::api::AppState>() {
        let known = pages().any(|(m, p, _)| *m == route.method.as_str() && *p == route.path);
        assert!(known, "console page {} {} has no entry in the authorisation matrix", route.method, route.path);
    }
    let world = world(&db).await;
    let targets = targets(&world).await;
    for role in Role::ALL {
        with_password(&world.store, &format!("{}@test.fr", role.as_str())).await;
    }
    let form = "application/x-www-form-urlencoded";
    let mut failures = Vec::new();
    // One session per role (argon2 makes a sign-in cost tens of milliseconds), opened again
    // after a page that may end it.
    let mut sessions: HashMap<Role, (String, String)> = HashMap::new();
    for ((method, path, access), (piece, field)) in
        pages().flat_map(|page| console_groupements::piece_variants(page.0, page.1).into_iter().map(move |v| (page, v)))
    {
        let method_of = Method::from_bytes(method.as_bytes()).unwrap();
        let of_piece = |side: Side| {
            let versions = piece.and_then(|kind| targets.pieces.iter().find(|(k, _)| *k == kind));
            let n = if side == Side::In { 0 } else { 1 };
            versions.map_or(path.to_string(), |(_, ids)| path.replace("{piece}", &ids[n]))
        };
        let piece_name = piece.map(|k| format!(" [{}]", k.as_str())).unwrap_or_default();
        for side in [Side::In, Side::Out] {
            let target = address(&world, &targets, &of_piece(side), side);
            let anonymous = world.app.request(method_of.clone(), &target).bytes(form, "").send().await;
            let want = match access {
                None => public_expected(method, path),
                Some(_) => 303,
            };
            if anonymous.status != want
                || (want == 303 && !anonymous.header("location").unwrap_or("").starts_with("/connexion"))
            {
                failures.push(format!(
                    "{method} {path}{piece_name} without session ({side:?}): {}, expected {want}",
                    anonymous.status
                ));
            }
            let Some(allowed) = access else { continue };
            for role in Role::ALL {
                if let std::collections::hash_map::Entry::Vacant(none) = sessions.entry(role) {
                    none.insert(signed_in_form(&world, role).await);
                }
                let (session, body) = sessions[&role].clone();
                if ends_sessions(path) {
                    sessions.remove(&role);
                }
                let target = console_account::for_role(&world, role, target.clone()).await;
                let resp = world
                    .app
                    .request(method_of.clone(), &target)
                    .header("cookie", &session)
                    .bytes(form, format!("{body}{field}"))
                    .send()
                    .await;
                let mut want =
                    match (allowed.contains(&role), capability_expected(&world, method, path, role, side).await) {
                        (false, _) => 403,
                        (true, Some(screen)) => screen,
                        (true, None) => allowed_expected(method, path, role, side),
                    };
                if !field.is_empty() {
                    want = console_groupements::with_type_expected(want);
                }
                if resp.status != want {
                    failures.push(format!(
                        "{method} {path}{piece_name} as {} ({side:?}): {}, expected {want}",
                        role.as_str(),
                        resp.status
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}: {} mismatches:\n{}", db.name, failures.len(), failures.join("\n"));
}

/// A session of the role's test user and the form body every page of the matrix is sent: the
/// session's CSRF token and a password change with a wrong current password.
async fn signed_in_form(world: &World, role: Role) -> (String, String) {
    let session = sign_in(&world.app, &format!("{}@test.fr", role.as_str())).await;
    let page = world.app.get("/compte").header("cookie", &session).send().await;
    let body = format!("_csrf={}&current=faux&password=x&confirmation=x", csrf_of(&page.text));
    (session, body)
}

/// Whether posting the page may end the caller's own session (signing out, revoking sessions).
fn ends_sessions(path: &str) -> bool {
    path.contains("deconnexion") || path.contains("/sessions/") || path.contains("mot-de-passe")
}

/// The address `out` of the page `template` with every id of its path replaced by one that
/// exists nowhere (the format of an export kept), and the ids it replaced.
fn missing_address(template: &str, out: &str) -> (String, Vec<String>) {
    let mut replaced = Vec::new();
    let segments: Vec<String> = template
        .split('/')
        .zip(out.split('/'))
        .map(|(t, actual)| {
            if t.starts_with('{') && t != "{format}" {
                replaced.push(actual.to_string());
                MISSING.to_string()
            } else {
                actual.to_string()
            }
        })
        .collect();
    (segments.join("/"), replaced)
}

/// An id that names nothing.
const MISSING: &str = "inexistant-0000";

backend_test!(an_out_of_scope_console_page_and_a_missing_one_answer_alike);
async fn an_out_of_scope_console_page_and_a_missing_one_answer_alike(db: crate::common::TestDb) {
    let world = world(&db).await;
    let targets = targets(&world).await;
    let mut sessions = HashMap::new();
    for role in Role::ALL.into_iter().filter(|r| *r != Admin) {
        with_password(&world.store, &format!("{}@test.fr", role.as_str())).await;
        let session = sign_in(&world.app, &format!("{}@test.fr", role.as_str())).await;
        let page = world.app.get("/compte").header("cookie", &session).send().await;
        let body = format!("_csrf={}", csrf_of(&page.text));
        sessions.insert(role, (session, body));
    }
    let form = "application/x-www-form-urlencoded";
    let mut failures = Vec::new();
    for (method, path, access) in pages() {
        // Groupements are public facts to their readers (as in the API's test); the other
        // pages without an id in their path have no out-of-scope target.
        let Some(allowed) = access else { continue };
        if !path.contains('{') || path.starts_with("/groupements") {
            continue;
        }
        let method_of = Method::from_bytes(method.as_bytes()).unwrap();
        let out = address(&world, &targets, path, Side::Out);
        let (missing, keys) = missing_address(path, &out);
        for role in allowed.iter().copied().filter(|r| *r != Admin) {
            let (session, body) = &sessions[&role];
            let send = |target: String| {
                let request = world.app.request(method_of.clone(), &target).header("cookie", session);
                request.bytes(form, body.clone()).send()
            };
            let theirs = send(out.clone()).await;
            if theirs.status != 404 {
                // Shown or refused (403: readable but not writable): no secret to keep.
                continue;
            }
            let none = send(missing.clone()).await;
            if none.status != 404 {
                failures.push(format!(
                    "{method} {path} as {}: out of scope 404 / missing {}",
                    role.as_str(),
                    none.status
                ));
                continue;
            }
            // The words of each page, the ids asked replaced by KEY.
            let said = keys.iter().fold(crate::console_rgpd::error_words(&theirs.text, MISSING), |w, k| {
                w.replace(&format!("« {k} »"), "« KEY »")
            });
            let unknown = crate::console_rgpd::error_words(&none.text, MISSING);
            if said != unknown {
                failures.push(format!(
                    "{method} {path} as {}: out of scope « {said} » / missing « {unknown} »",
                    role.as_str()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}: {} oracles:\n{}", db.name, failures.len(), failures.join("\n"));
}

/// A user `dan` at the académie in scope who also holds `role` (read-only there) at the school
/// of the other académie, signed in; their session and API token.
async fn dan_reading_elsewhere(world: &World, role: Role) -> (String, String) {
    let email = format!("dan.et.{}@test.fr", role.as_str());
    let academie = format!("academie:{}", world.etab_in.academie_code.clone().unwrap());
    let token = token_for(&world.store, &email, Dan, Some(&academie)).await;
    let user = identity::get_user(&world.store, &email).await.unwrap().unwrap();
    let elsewhere = identity::UserRole::new(&user.id, role, Some(&world.etab_out));
    identity::grant(&world.store, &admin(), elsewhere, t0()).await.unwrap();
    with_password(&world.store, &email).await;
    (sign_in(&world.app, &email).await, token)
}

/// An active tenant of `school` (moved by an administrator, past the governance gate); its slug.
async fn active_tenant(world: &World, school: &Org) -> String {
    let doc: entcp::tenants::EntTenant = serde_json::from_value(world.tenant_doc(school)).unwrap();
    let state = world.state.clone();
    let (_, mut tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    for to in [entcp::tenants::Status::Provisioning, entcp::tenants::Status::Active] {
        let step = entcp::tenants::Move::to(to).overriding("essai");
        tenant = entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
    }
    tenant.slug
}

async fn tenant(world: &World, slug: &str) -> entcp::tenants::Tenant {
    entcp::tenants::get_tenant(&world.store, slug).await.unwrap().unwrap()
}

backend_test!(a_role_that_writes_elsewhere_changes_no_tenant_where_the_user_only_reads);
async fn a_role_that_writes_elsewhere_changes_no_tenant_where_the_user_only_reads(db: crate::common::TestDb) {
    use crate::console::{get, post_form};
    use entcp::tenants::Status;
    let world = world(&db).await;
    let (theirs, other) = (active_tenant(&world, &world.etab_in).await, active_tenant(&world, &world.etab_out).await);
    for role in [Usager, Auditeur, SupportN1] {
        let (session, token) = dan_reading_elsewhere(&world, role).await;
        let before = tenant(&world, &other).await;
        // The other académie's tenant is readable, but its page offers no change…
        let page = get(&world.app, &session, &format!("/ent/{other}")).await;
        assert_eq!(page.status, 200, "{} as {role:?}: {}", db.name, page.text);
        assert!(!page.text.contains("id=\"vers-suspended\""), "{} as {role:?}: no lifecycle form", db.name);
        assert!(!page.text.contains("id=\"ajouter-service\""), "{} as {role:?}: no option form", db.name);
        // … and refuses it (403: readable), through the console as through the API.
        let forms: [(&str, &[(&str, &str)]); 3] = [
            ("etat", &[("vers", "suspended"), ("motif", "maintenance")]),
            ("etat", &[("vers", "decommissioning"), ("motif", "fin du marché")]),
            ("services", &[("service", "visio")]),
        ];
        for (path, fields) in forms {
            let refused = post_form(&world.app, &session, &format!("/ent/{other}/{path}"), fields).await;
            assert_eq!(refused.status, 403, "{} {path} {fields:?} as {role:?}: {}", db.name, refused.text);
            assert!(refused.text.contains("hors de votre périmètre"), "{} as {role:?}: {}", db.name, refused.text);
        }
        let api = world.app.client(&token);
        let moved = api
            .post(format!("/api/v1/tenants/{other}/transition"))
            .json(&json!({ "to": "suspended", "reason": "maintenance" }))
            .send()
            .await;
        assert_eq!(moved.status, 403, "{} API as {role:?}: {}", db.name, moved.text);
        let after = tenant(&world, &other).await;
        assert_eq!((after.status, &after.options, after.version), (Status::Active, &before.options, before.version));
        // In its own académie, the same user still moves the tenant.
        let current = tenant(&world, &theirs).await.status;
        let to = if current == Status::Active { Status::Suspended } else { Status::Active };
        let page = get(&world.app, &session, &format!("/ent/{theirs}")).await;
        assert!(page.text.contains(&format!("id=\"vers-{}\"", to.as_str())), "{} as {role:?}: {}", db.name, page.text);
        let fields = [("vers", to.as_str()), ("motif", "maintenance"), ("confirmation", "oui")];
        let moved = post_form(&world.app, &session, &format!("/ent/{theirs}/etat"), &fields).await;
        assert_eq!(moved.status, 303, "{} as {role:?}: {}", db.name, moved.text);
        assert_eq!(tenant(&world, &theirs).await.status, to, "{} as {role:?}", db.name);
        if role == Usager {
            let path = format!("/ent/{theirs}/services");
            let added = post_form(&world.app, &session, &path, &[("service", "visio")]).await;
            assert_eq!(added.status, 303, "{}: {}", db.name, added.text);
            assert!(tenant(&world, &theirs).await.options.contains(&"visio".to_string()), "{}", db.name);
        }
    }
}
