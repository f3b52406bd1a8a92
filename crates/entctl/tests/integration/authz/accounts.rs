//! Authorisation cases: Users, roles, tokens and the audit trail; authentication itself.

use super::*;

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/me", EVERYONE, Target::None),
    ("GET", "/api/v1/me/notification-preferences", EVERYONE, Target::None),
    ("PUT", "/api/v1/me/notification-preferences", EVERYONE, Target::None),
    ("GET", "/api/v1/users", &[Admin, Dan, Auditeur], Target::None),
    ("POST", "/api/v1/users", &[Admin], Target::None),
    ("GET", "/api/v1/users/{id}", &[Admin, Dan, Auditeur], Target::User),
    ("PATCH", "/api/v1/users/{id}", &[Admin], Target::User),
    ("POST", "/api/v1/users/{id}/roles", &[Admin], Target::User),
    ("DELETE", "/api/v1/users/{id}/roles/{role}", &[Admin], Target::User),
    ("GET", "/api/v1/tokens", EVERYONE, Target::None),
    ("POST", "/api/v1/tokens", EVERYONE, Target::None),
    ("DELETE", "/api/v1/tokens/{id}", EVERYONE, Target::Token),
    ("GET", "/api/v1/audit", &[Admin, Auditeur, Dpo], Target::None),
];

#[tokio::test]
async fn unauthenticated_and_bad_tokens_get_401_problems() {
    let db = common::sqlite().await;
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
    let client = reqwest::Client::new();
    for route in entcp::api::routes() {
        let path = route.path.replace('{', "x").replace('}', "");
        let resp = client
            .request(Method::from_bytes(route.method.as_str().as_bytes()).unwrap(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{} {}", route.method, route.path);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
    let resp = client.get(format!("{base}/api/v1/me")).bearer_auth("entcp_00000000_nope").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let token = token_for(&db.store, "revoked@test.fr", Admin, None).await;
    let me = client.get(format!("{base}/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let id = identity::list_tokens(&db.store, None).await.unwrap()[0].id.clone();
    identity::revoke_token(&db.store, &admin(), &id, t0()).await.unwrap();
    let revoked = client.get(format!("{base}/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(revoked.status(), 401);

    let user = identity::get_user(&db.store, "revoked@test.fr").await.unwrap().unwrap();
    let expiring = identity::create_token(
        &db.store,
        &admin(),
        &user.id,
        "court",
        Some(t0() + chrono::Duration::minutes(5)),
        t0() - chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    let valid = client.get(format!("{base}/api/v1/me")).bearer_auth(&expiring.token).send().await.unwrap();
    assert_eq!(valid.status(), 200, "valid until five minutes past t0");
    let clock_after = Arc::new(FixedClock::new(t0() + chrono::Duration::minutes(10)));
    let later = common::serve(db.store.clone(), clock_after).await;
    let expired = client.get(format!("{later}/api/v1/me")).bearer_auth(&expiring.token).send().await.unwrap();
    assert_eq!(expired.status(), 401, "expired tokens are refused");
}

backend_test!(a_user_shows_others_only_the_roles_they_read_and_no_tokens);
/// A user of the DAN's scope who also holds a role at the other académie's school, and an API
/// token: the DAN (and an auditeur) see through the API and the console only the role held in
/// their scope, and no token; an administrator sees both roles and the token.
async fn a_user_shows_others_only_the_roles_they_read_and_no_tokens(db: crate::common::TestDb) {
    use crate::console::{get, sign_in, with_password};
    let w = world(&db).await;
    let name = db.name;
    let id = w.user_in.clone();
    for school in [&w.etab_in, &w.etab_out] {
        identity::grant(&w.store, &admin(), identity::UserRole::new(&id, ChefEtablissement, Some(school)), t0())
            .await
            .unwrap();
    }
    identity::create_token(&w.store, &admin(), &id, "jeton-personnel", None, t0()).await.unwrap();
    let role_orgs = |user: &Value| -> Vec<String> {
        user["roles"].as_array().unwrap().iter().map(|r| r["org"]["id"].as_str().unwrap_or("").to_string()).collect()
    };
    let both = vec![w.etab_in.id.clone(), w.etab_out.id.clone()];
    for (role, want) in [(Dan, vec![w.etab_in.id.clone()]), (Auditeur, vec![w.etab_in.id.clone()]), (Admin, both)] {
        let (status, body) = w.send(role, w.request("GET", format!("/api/v1/users/{id}"), None)).await;
        assert_eq!(status, 200, "{name}: {body}");
        let mut seen = role_orgs(&serde_json::from_str(&body).unwrap());
        seen.sort();
        let mut want = want;
        want.sort();
        assert_eq!(seen, want, "{name} {}: {body}", role.as_str());
        let (status, body) = w.send(role, w.request("GET", "/api/v1/users?limit=500".into(), None)).await;
        assert_eq!(status, 200, "{name}: {body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let listed = page["items"].as_array().unwrap().iter().find(|u| u["id"] == id.as_str()).unwrap();
        let mut seen = role_orgs(listed);
        seen.sort();
        assert_eq!(seen, want, "{name} {} list: {listed}", role.as_str());
    }
    // The console's page of the user.
    let (inside, outside) = (format!("({})", w.etab_in.code), format!("({})", w.etab_out.code));
    for (role, sees_all) in [(Dan, false), (Admin, true)] {
        let email = format!("{}@test.fr", role.as_str());
        with_password(&w.store, &email).await;
        let session = sign_in(&w.app, &email).await;
        let page = get(&w.app, &session, &format!("/utilisateurs/{id}")).await;
        assert_eq!(page.status, 200, "{name}: {}", page.text);
        assert!(page.text.contains(&inside), "{name} {}: {}", role.as_str(), page.text);
        assert_eq!(page.text.contains(&outside), sees_all, "{name} {}: {}", role.as_str(), page.text);
        assert_eq!(page.text.contains("jeton-personnel"), sees_all, "{name} {}: {}", role.as_str(), page.text);
    }
}
