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

backend_test!(a_token_minted_with_a_token_never_outlives_it_and_dies_with_it);
/// A time-limited token handed to a script cannot make itself permanent: a token minted with it
/// through the API expires at the latest when it does, and revoking it revokes what was minted
/// with it, down the line; a token made elsewhere (console, command line) is left alone.
async fn a_token_minted_with_a_token_never_outlives_it_and_dies_with_it(db: crate::common::TestDb) {
    let name = db.name;
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
    let client = reqwest::Client::new();
    common::import_sample(&db.store).await;
    let standing = token_for(&db.store, "script@test.fr", ChefEtablissement, Some("0940176F")).await;
    let user = identity::get_user(&db.store, "script@test.fr").await.unwrap().unwrap();
    let parent_end = t0() + chrono::Duration::minutes(5);
    let parent = identity::create_token(&db.store, &admin(), &user.id, "court", Some(parent_end), t0()).await.unwrap();
    let mint = |with: String, body: Value| {
        let request = client.post(format!("{base}/api/v1/tokens")).bearer_auth(with).json(&body);
        async move {
            let resp = request.send().await.unwrap();
            assert_eq!(resp.status(), 201, "{name}");
            resp.json::<Value>().await.unwrap()
        }
    };
    let end = |t: &Value| chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
    let forever = mint(parent.token.clone(), json!({ "name": "éternel" })).await;
    assert_eq!(end(&forever), parent_end, "{name}: {forever}");
    let later = (t0() + chrono::Duration::days(30)).to_rfc3339();
    let longer = mint(parent.token.clone(), json!({ "name": "plus long", "expires_at": later })).await;
    assert_eq!(end(&longer), parent_end, "{name}: {longer}");
    let sooner = (t0() + chrono::Duration::minutes(2)).to_rfc3339();
    let shorter = mint(parent.token.clone(), json!({ "name": "plus court", "expires_at": sooner })).await;
    assert_eq!(end(&shorter), t0() + chrono::Duration::minutes(2), "{name}: {shorter}");
    let grandchild = mint(forever["token"].as_str().unwrap().to_string(), json!({ "name": "petit" })).await;
    let unbounded = mint(standing.clone(), json!({ "name": "sans fin" })).await;
    assert!(unbounded["expires_at"].is_null(), "{name}: a token without end mints one without end: {unbounded}");

    identity::revoke_token(&db.store, &admin(), &parent.info.id, t0()).await.unwrap();
    for dead in [&forever, &longer, &shorter, &grandchild] {
        let me = client.get(format!("{base}/api/v1/me")).bearer_auth(dead["token"].as_str().unwrap()).send().await;
        assert_eq!(me.unwrap().status(), 401, "{name}: {dead}");
    }
    for alive in [standing.as_str(), unbounded["token"].as_str().unwrap()] {
        let me = client.get(format!("{base}/api/v1/me")).bearer_auth(alive).send().await.unwrap();
        assert_eq!(me.status(), 200, "{name}: not minted with the revoked token");
    }
    let revoked = common::audit_summary(&db.store, "tokens.revoke", &parent.info.id).await;
    assert_eq!(revoked["minted_with_it"].as_array().unwrap().len(), 4);

    // Revoked by another replica while this one's cache still trusts it: the parent, read again
    // in the minting transaction, mints nothing.
    let other = identity::create_token(&db.store, &admin(), &user.id, "autre", None, t0()).await.unwrap();
    let me = client.get(format!("{base}/api/v1/me")).bearer_auth(&other.token).send().await.unwrap();
    assert_eq!(me.status(), 200, "{name}");
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(entcp::store::timestamp(t0()))
        .bind(&other.info.id)
        .execute(db.store.pool())
        .await
        .unwrap();
    let before = identity::list_tokens(&db.store, Some(&user.id)).await.unwrap().len();
    let minted =
        client.post(format!("{base}/api/v1/tokens")).bearer_auth(&other.token).json(&json!({ "name": "trop tard" }));
    assert_eq!(minted.send().await.unwrap().status(), 401, "{name}");
    assert_eq!(identity::list_tokens(&db.store, Some(&user.id)).await.unwrap().len(), before, "{name}");
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
