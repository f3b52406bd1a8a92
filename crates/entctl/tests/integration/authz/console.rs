//! Authorisation cases of the web console: every page × every role (signed in with a
//! password) × a target in or out of the role's scope, and every signed-in page without
//! a session (→ the sign-in form). A console page missing from the table fails the test.

use super::*;
use crate::console::{csrf_of, sign_in, PASSWORD};

/// Who may open a page: `None` for a public one; otherwise the roles allowed (the rest get 403).
type Page = (&'static str, &'static str, Option<&'static [Role]>);

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
    ("POST", "/mot-de-passe/{jeton}", None),
    ("GET", "/", Some(EVERYONE)),
    ("GET", "/tableau-de-bord/{org}", Some(&[Admin, Dan, Collectivite])),
    ("GET", "/compte", Some(EVERYONE)),
    ("POST", "/compte/mot-de-passe", Some(EVERYONE)),
    ("POST", "/compte/sessions/revoquer", Some(EVERYONE)),
    ("POST", "/utilisateurs/{id}/sessions/revoquer", Some(&[Admin])),
];

/// The concrete address of a page for `side`.
fn address(world: &World, path: &str, side: Side) -> String {
    let (org, user) = match side {
        Side::In => (&world.commune_in, &world.user_in),
        Side::Out => (&world.commune_out, &world.user_out),
    };
    path.replace("{*path}", "0.1.0/neutre.css")
        .replace("{org}", &org.id)
        .replace("{id}", user)
        .replace("{jeton}", &"0".repeat(64))
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
    match (method, path) {
        ("GET", "/tableau-de-bord/{org}") if side == Side::Out && role != Admin => 404,
        ("POST", "/compte/mot-de-passe") => 422, // the current password given is wrong
        ("POST", "/compte/sessions/revoquer") | ("GET", _) => 200,
        _ => 303,
    }
}

backend_test!(every_console_page_answers_each_role_in_and_out_of_scope_as_the_table_says);
async fn every_console_page_answers_each_role_in_and_out_of_scope_as_the_table_says(db: crate::common::TestDb) {
    for route in entcp::console::routes::<entcp::api::AppState>() {
        let known = PAGES.iter().any(|(m, p, _)| *m == route.method.as_str() && *p == route.path);
        assert!(known, "console page {} {} has no entry in the authorisation matrix", route.method, route.path);
    }
    let world = world(&db).await;
    for role in Role::ALL {
        let user = identity::get_user(&world.store, &format!("{}@test.fr", role.as_str())).await.unwrap().unwrap();
        identity::password::set_password(&world.store, &admin(), &user.id, PASSWORD, t0()).await.unwrap();
    }
    let form = "application/x-www-form-urlencoded";
    let mut failures = Vec::new();
    for (method, path, access) in PAGES {
        let method_of = Method::from_bytes(method.as_bytes()).unwrap();
        for side in [Side::In, Side::Out] {
            let target = address(&world, path, side);
            let anonymous = world.app.request(method_of.clone(), &target).bytes(form, "").send().await;
            let want = match access {
                None => public_expected(method, path),
                Some(_) => 303,
            };
            if anonymous.status != want
                || (want == 303 && !anonymous.header("location").unwrap_or("").starts_with("/connexion"))
            {
                failures
                    .push(format!("{method} {path} without session ({side:?}): {}, expected {want}", anonymous.status));
            }
            let Some(allowed) = access else { continue };
            for role in Role::ALL {
                let session = sign_in(&world.app, &format!("{}@test.fr", role.as_str())).await;
                let page = world.app.get("/compte").header("cookie", &session).send().await;
                let body = format!("_csrf={}&current=faux&password=x&confirmation=x", csrf_of(&page.text));
                let resp = world
                    .app
                    .request(method_of.clone(), &target)
                    .header("cookie", &session)
                    .bytes(form, body)
                    .send()
                    .await;
                let want = if allowed.contains(&role) { allowed_expected(method, path, role, side) } else { 403 };
                if resp.status != want {
                    failures.push(format!(
                        "{method} {path} as {} ({side:?}): {}, expected {want}",
                        role.as_str(),
                        resp.status
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}: {} mismatches:\n{}", db.name, failures.len(), failures.join("\n"));
}
