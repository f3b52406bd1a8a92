//! Sign-in through OpenID Connect against a real provider on loopback
//! (oidc-provider-mock, from PyPI): `TEST_OIDC_ISSUER` names it (`.ci/oidc.sh` in CI);
//! unset locally, each test starts its own. The test plays the browser: follows the
//! authorisation URL, submits the provider's sign-in form for a subject whose claims it
//! set, takes the code from the redirect, then calls `finish` as the console would.

use crate::common::{self, fixtures, TestApp, TestDb};
use entcp::config::{ClaimMapping, OidcConfig};
use entcp::error::ProblemKind;
use entcp::identity::oidc::{Oidc, PendingLogin};
use entcp::kernel::roles::Role;
use entcp::store::Store;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};

const MOCK_VERSION: &str = "0.3.4";

/// The provider of the tests: the one CI started, or one of this test's own.
pub(crate) struct Provider {
    pub(crate) issuer: String,
    child: Option<Child>,
    _secret: tempfile::TempDir,
    secret_file: std::path::PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `oidc-provider-mock` in a virtualenv under the user's cache, installed on first use.
fn mock_binary() -> std::path::PathBuf {
    let home = std::env::var("HOME").expect("HOME is set");
    let venv = std::path::Path::new(&home).join(format!(".cache/entcp-oidc-provider-mock-{MOCK_VERSION}"));
    let binary = venv.join("bin/oidc-provider-mock");
    if !binary.exists() {
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    &format!("oidc-provider-mock=={MOCK_VERSION}"),
                ])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "could not install oidc-provider-mock {MOCK_VERSION} from PyPI");
    }
    binary
}

pub(crate) async fn provider() -> Provider {
    let secret = tempfile::tempdir().unwrap();
    let secret_file = secret.path().join("client-secret");
    std::fs::write(&secret_file, "secret-de-test\n").unwrap();
    if let Some(issuer) = std::env::var("TEST_OIDC_ISSUER").ok().filter(|v| !v.is_empty()) {
        return Provider { issuer, child: None, _secret: secret, secret_file };
    }
    assert!(std::env::var("CI").is_err(), "CI is set but TEST_OIDC_ISSUER is not: .ci/oidc.sh must start the provider");
    let port = common::smtp::free_port();
    let child = Command::new(mock_binary())
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--require-nonce", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("oidc-provider-mock starts");
    let provider =
        Provider { issuer: format!("http://127.0.0.1:{port}"), child: Some(child), _secret: secret, secret_file };
    let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
    for _ in 0..100 {
        if reqwest::get(&discovery).await.is_ok_and(|r| r.status().is_success()) {
            return provider;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("oidc-provider-mock did not answer on {discovery}");
}

pub(crate) fn config(provider: &Provider) -> OidcConfig {
    let yaml = format!(
        "issuer: {}\nclient_id: entcp-test\nclient_secret_file: {}\nredirect_url: http://127.0.0.1:9/connexion/oidc/retour\n",
        provider.issuer,
        provider.secret_file.display()
    );
    let mut config: OidcConfig = entcp::yaml::from_str(&yaml).unwrap();
    config.claims = ClaimMapping { email: "email".into(), organisation: Some("uai".into()) };
    config
}

/// A [`subject_with`] only an e-mail address, verified.
async fn verified_subject(provider: &Provider, email: &str) -> String {
    subject_with(provider, json!({ "email": email, "email_verified": true })).await
}

/// A subject of its own per test (the provider may be shared), with these claims.
pub(crate) async fn subject_with(provider: &Provider, claims: Value) -> String {
    subject_at(&provider.issuer, claims).await
}

/// [`subject_with`] at the provider of `issuer`.
pub(crate) async fn subject_at(issuer: &str, claims: Value) -> String {
    let sub = format!("sub-{}", uuid::Uuid::now_v7());
    put_subject(issuer, &sub, claims).await;
    sub
}

/// Sets the claims of the subject `sub` at the provider of `issuer`.
pub(crate) async fn put_subject(issuer: &str, sub: &str, claims: Value) {
    let resp = reqwest::Client::new().put(format!("{issuer}/users/{sub}")).json(&claims).send().await.unwrap();
    assert!(resp.status().is_success(), "PUT /users: {}", resp.status());
}

/// The browser: opens the authorisation URL, submits the sign-in form as `sub`, and
/// returns the `code` and `state` of the redirect to the console.
async fn sign_in_at_provider(authorize_url: &str, sub: &str) -> (String, String) {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "{authorize_url}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\"") && html.contains("name=\"sub\""), "{html}");
    // The form has no action: it posts back to the page's URL.
    let answer = browser.post(authorize_url).form(&[("sub", sub)]).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{}", answer.text().await.unwrap());
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("http://127.0.0.1:9/connexion/oidc/retour?"), "{location}");
    let url = reqwest::Url::parse(&location).unwrap();
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_string());
    (param("code").expect("a code"), param("state").expect("a state"))
}

/// `begin`, then the browser at the provider: the pending login, code and state.
async fn through_provider(oidc: &Oidc, sub: &str) -> (PendingLogin, String, String) {
    let (url, pending) = oidc.begin("/conventions", common::t0()).await.unwrap();
    assert!(url.contains("code_challenge_method=S256") && url.contains("nonce="), "{url}");
    let (code, state) = sign_in_at_provider(&url, sub).await;
    assert_eq!(state, pending.state);
    (pending, code, state)
}

/// The OIDC audit records, oldest first: (action, target id, summary).
async fn oidc_audit(store: &Store) -> Vec<(String, String, Value)> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT action, target_id, summary FROM audit_log WHERE action LIKE 'oidc.%' ORDER BY seq")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter().map(|(a, t, s)| (a, t, serde_json::from_str(&s).unwrap())).collect()
}

backend_test!(a_known_user_signs_in_with_the_roles_it_has_and_the_claimed_uai_is_recorded);
async fn a_known_user_signs_in_with_the_roles_it_has_and_the_claimed_uai_is_recorded(db: TestDb) {
    common::import_sample(&db.store).await;
    let app = TestApp::builder(db).user("chef@ecole.fr", Role::ChefEtablissement, Some("0940176F")).build().await;
    let school = fixtures::org(&app.store, "0940176F").await;
    let provider = provider().await;
    let oidc = Oidc::new(&config(&provider)).unwrap();
    // The e-mail matches whatever its case; the claimed roles are ignored.
    let sub = subject_with(
        &provider,
        json!({ "email": "Chef@Ecole.FR", "email_verified": true, "uai": "0940176F", "roles": ["admin"] }),
    )
    .await;

    let (pending, code, state) = through_provider(&oidc, &sub).await;
    let signed_in = oidc.finish(&app.store, pending, &code, &state, common::t0()).await.unwrap();

    let name = app.backend;
    assert_eq!(signed_in.user.email, "chef@ecole.fr", "{name}");
    assert_eq!(signed_in.subject, sub, "{name}");
    assert!(!signed_in.created, "{name}");
    assert_eq!(signed_in.return_to, "/conventions", "{name}");
    assert_eq!(signed_in.actor.name, "user:chef@ecole.fr", "{name}");
    let roles: Vec<_> =
        signed_in.actor.bindings.iter().map(|b| (b.role, b.org.as_ref().map(|o| o.id.clone()))).collect();
    assert_eq!(roles, [(Role::ChefEtablissement, Some(school.id.clone()))], "{name}");
    assert!(!signed_in.actor.is_admin(), "{name}");
    let claimed = signed_in.claimed_org.clone().expect("the claimed UAI");
    assert_eq!((claimed.value.as_str(), claimed.org_id.as_deref()), ("0940176F", Some(school.id.as_str())), "{name}");
    assert_eq!(signed_in.id_token.split('.').count(), 3, "{name}: the raw ID token, for sign-out");
    let logout =
        oidc.logout_url(&signed_in.id_token, "etat-de-deconnexion").await.unwrap().expect("end_session_endpoint");
    let logout = reqwest::Url::parse(&logout).unwrap();
    assert_eq!(logout.path(), "/oauth2/end_session", "{name}");
    let hint = logout.query_pairs().find(|(k, _)| k == "id_token_hint").map(|(_, v)| v.to_string());
    assert_eq!(hint.as_deref(), Some(signed_in.id_token.as_str()), "{name}");
    assert!(logout.query_pairs().any(|(k, v)| k == "state" && v == "etat-de-deconnexion"), "{name}");

    let audit = oidc_audit(&app.store).await;
    assert_eq!(audit.len(), 1, "{name}: {audit:?}");
    let (action, target, summary) = &audit[0];
    assert_eq!((action.as_str(), target.as_str()), ("oidc.sign_in", signed_in.user.id.as_str()), "{name}");
    assert_eq!(summary["claimed_org"]["value"], "0940176F", "{name}: {summary}");
    assert_eq!(summary["claimed_org"]["org_id"], school.id.as_str(), "{name}: {summary}");
    assert_eq!(summary["subject"], sub.as_str(), "{name}: {summary}");
}

backend_test!(an_unknown_user_is_refused_and_created_without_any_role_only_when_enabled);
async fn an_unknown_user_is_refused_and_created_without_any_role_only_when_enabled(db: TestDb) {
    common::import_sample(&db.store).await;
    let store = db.store.clone();
    let name = db.name;
    let provider = provider().await;
    let sub = subject_with(
        &provider,
        json!({ "email": "nouvelle@ac-creteil.fr", "email_verified": true, "given_name": "Anne", "family_name": "Martin", "uai": "0940176F", "roles": ["admin"] }),
    )
    .await;

    let oidc = Oidc::new(&config(&provider)).unwrap();
    let (pending, code, state) = through_provider(&oidc, &sub).await;
    let refused = oidc.finish(&store, pending, &code, &state, common::t0()).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::Forbidden, "{name}: {refused:?}");
    assert!(refused.detail.contains("aucun compte"), "{name}: {}", refused.detail);
    assert_eq!(common::count(&store, "SELECT COUNT(*) FROM users", &[]).await, 0, "{name}");
    let audit = oidc_audit(&store).await;
    assert_eq!(audit.len(), 1, "{name}: {audit:?}");
    assert_eq!((audit[0].0.as_str(), audit[0].1.as_str()), ("oidc.refused", "nouvelle@ac-creteil.fr"), "{name}");
    assert_eq!(audit[0].2["reason"], "unknown_user", "{name}");

    let mut creating = config(&provider);
    creating.create_unknown_users = true;
    // Names are `profile` claims: the provider sends them only when that scope is asked for.
    creating.scopes.push("profile".into());
    let oidc = Oidc::new(&creating).unwrap();
    let (pending, code, state) = through_provider(&oidc, &sub).await;
    let signed_in = oidc.finish(&store, pending, &code, &state, common::t0()).await.unwrap();
    assert!(signed_in.created, "{name}");
    assert_eq!(signed_in.user.email, "nouvelle@ac-creteil.fr", "{name}");
    assert_eq!(signed_in.user.display_name, "Anne Martin", "{name}");
    assert!(
        signed_in.user.roles.is_empty() && signed_in.actor.bindings.is_empty(),
        "{name}: {:?}",
        signed_in.user.roles
    );
    assert!(signed_in.user.org.is_none(), "{name}: the claimed UAI is recorded, never granted");
    assert!(signed_in.claimed_org.is_some_and(|c| c.value == "0940176F"), "{name}");
    let bindings = "SELECT COUNT(*) FROM role_bindings WHERE user_id = $1";
    assert_eq!(common::count(&store, bindings, &[&signed_in.user.id]).await, 0, "{name}");
    let actions: Vec<String> = oidc_audit(&store).await.into_iter().map(|(a, _, _)| a).collect();
    assert_eq!(actions, ["oidc.refused", "oidc.sign_in"], "{name}");
}

backend_test!(a_wrong_state_a_replayed_code_and_another_nonce_are_refused);
async fn a_wrong_state_a_replayed_code_and_another_nonce_are_refused(db: TestDb) {
    let app = TestApp::builder(db).user("dan@ac-creteil.fr", Role::Admin, None).build().await;
    let (store, name) = (&app.store, app.backend);
    let provider = provider().await;
    let oidc = Oidc::new(&config(&provider)).unwrap();
    let sub = verified_subject(&provider, "dan@ac-creteil.fr").await;

    // A state the console did not send: refused before the code is used.
    let (pending, code, _) = through_provider(&oidc, &sub).await;
    let forged = "x".repeat(pending.state.len());
    let refused = oidc.finish(store, pending.clone(), &code, &forged, common::t0()).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::Unauthorized, "{name}: {refused:?}");
    assert!(refused.detail.contains("state"), "{name}: {}", refused.detail);

    // The same code, unused so far, signs in once; replayed, the provider refuses it.
    let state = pending.state.clone();
    oidc.finish(store, pending.clone(), &code, &state, common::t0()).await.unwrap();
    let replayed = oidc.finish(store, pending, &code, &state, common::t0()).await.unwrap_err();
    assert_eq!(replayed.kind, ProblemKind::Unauthorized, "{name}: {replayed:?}");
    assert!(replayed.detail.contains("code"), "{name}: {}", replayed.detail);

    // An ID token minted for another nonce (a token from someone else's sign-in).
    let (mut pending, code, state) = through_provider(&oidc, &sub).await;
    pending.nonce = format!("{}-autre", pending.nonce);
    let refused = oidc.finish(store, pending, &code, &state, common::t0()).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::Unauthorized, "{name}: {refused:?}");
    assert!(refused.detail.contains("jeton d'identité"), "{name}: {}", refused.detail);

    let reasons: Vec<(String, Value)> =
        oidc_audit(store).await.into_iter().map(|(a, _, s)| (a, s["reason"].clone())).collect();
    let expected = [
        ("oidc.refused", json!("state_mismatch")),
        ("oidc.sign_in", Value::Null),
        ("oidc.refused", json!("code_refused")),
        ("oidc.refused", json!("token_invalid")),
    ];
    let expected: Vec<(String, Value)> = expected.into_iter().map(|(a, r)| (a.to_string(), r)).collect();
    assert_eq!(reasons, expected, "{name}");
}

/// An app whose console signs in through `provider`, a DAN at the first académie known
/// to it by e-mail only.
async fn console_with(db: TestDb, provider: &Provider) -> TestApp {
    let oidc = config(provider);
    TestApp::builder(db)
        .config(|c| c.identity.oidc = Some(oidc))
        .user("dan@ac-creteil.fr", Role::Admin, None)
        .build()
        .await
}

/// A [`provider`] and the app of [`console_with`] signing in through it.
async fn provider_and_console(db: TestDb) -> (Provider, TestApp) {
    let provider = provider().await;
    let app = console_with(db, &provider).await;
    (provider, app)
}

/// The console's `GET /connexion/oidc`, the provider's form, and the callback with the
/// pre-session cookie: the callback's answer.
async fn console_sign_in(app: &TestApp, sub: &str, asked: &str) -> common::Resp {
    use crate::console::set_cookie;
    let begin = app.get(&format!("/connexion/oidc?suivant={}", asked.replace('/', "%2F"))).send().await;
    assert_eq!(begin.status, 303, "{}", begin.text);
    let pre = set_cookie(&begin, "entcp_oidc").expect("a pre-session cookie");
    let raw = begin.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(raw.contains("entcp_oidc=") && raw.contains("HttpOnly") && raw.contains("SameSite=Lax"), "{raw}");
    let (code, state) = sign_in_at_provider(begin.header("location").unwrap(), sub).await;
    app.get(&format!("/connexion/oidc/retour?code={code}&state={state}"))
        .header("cookie", format!("entcp_oidc={pre}"))
        .send()
        .await
}

backend_test!(the_console_signs_in_through_the_provider_back_to_the_page_asked_and_out_at_the_provider);
async fn the_console_signs_in_through_the_provider_back_to_the_page_asked_and_out_at_the_provider(db: TestDb) {
    use crate::console::{csrf_of, set_cookie};
    let (provider, app) = provider_and_console(db).await;
    let name = app.backend;
    let form = app.get("/connexion?suivant=%2Fcompte").send().await;
    assert!(form.text.contains("Se connecter avec le fournisseur d&#x27;identité"), "{name}: {}", form.text);
    assert!(form.text.contains("href=\"/connexion/oidc?suivant=%2Fcompte\""), "{name}: {}", form.text);
    let sub = verified_subject(&provider, "dan@ac-creteil.fr").await;

    let back = console_sign_in(&app, &sub, "/compte").await;
    assert_eq!((back.status, back.header("location")), (303, Some("/compte")), "{name}: {}", back.text);
    let session = format!("entcp_session={}", set_cookie(&back, "entcp_session").expect("a session"));
    assert_eq!(set_cookie(&back, "entcp_oidc").as_deref(), Some(""), "{name}: the pre-session is cleared");
    let page = app.get("/compte").header("cookie", &session).send().await;
    assert_eq!(page.status, 200, "{name}");
    let audited = "SELECT COUNT(*) FROM audit_log WHERE action = $1";
    let sign_ins = (
        common::count(&app.store, audited, &["oidc.sign_in"]).await,
        common::count(&app.store, audited, &["console.sign_in"]).await,
    );
    assert_eq!(sign_ins, (1, 1), "{name}: audited once");
    let method = "SELECT COUNT(*) FROM audit_log WHERE action = 'console.sign_in' AND summary LIKE $1";
    assert_eq!(common::count(&app.store, method, &["%\"oidc\"%"]).await, 1, "{name}");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains(&format!("form-action 'self' {}", provider.issuer)), "{name}: {csp}");

    // Signing out goes on to the provider's end-session endpoint with the ID token.
    let out = app
        .post("/deconnexion")
        .header("cookie", &session)
        .bytes("application/x-www-form-urlencoded", format!("_csrf={}", csrf_of(&page.text)))
        .send()
        .await;
    assert_eq!(out.status, 303, "{name}: {}", out.text);
    let location = out.header("location").unwrap();
    assert!(location.starts_with(&format!("{}/oauth2/end_session?", provider.issuer)), "{name}: {location}");
    assert!(location.contains("id_token_hint="), "{name}: {location}");
    assert_eq!(app.get("/compte").header("cookie", &session).send().await.status, 303, "{name}: signed out");
    assert_eq!(common::count(&app.store, "SELECT COUNT(*) FROM console_oidc_sessions", &[]).await, 0, "{name}");

    // A way back with a tab (that a browser strips) leads home, not to another site.
    let back = console_sign_in(&app, &sub, "/%09/ailleurs.example/").await;
    assert_eq!((back.status, back.header("location")), (303, Some("/")), "{name}: {}", back.text);
}

backend_test!(the_console_refuses_an_unknown_person_a_replayed_callback_and_one_without_pre_session);
async fn the_console_refuses_an_unknown_person_a_replayed_callback_and_one_without_pre_session(db: TestDb) {
    use crate::console::set_cookie;
    let (provider, app) = provider_and_console(db).await;
    let name = app.backend;
    let stranger = verified_subject(&provider, "inconnu@ac-creteil.fr").await;
    let refused = console_sign_in(&app, &stranger, "/").await;
    assert_eq!(refused.status, 403, "{name}: {}", refused.text);
    assert!(refused.text.contains("aucun compte"), "{name}: {}", refused.text);
    assert!(set_cookie(&refused, "entcp_session").is_none(), "{name}");

    // The pre-session is single-use: the same callback again is refused by the console.
    let sub = verified_subject(&provider, "dan@ac-creteil.fr").await;
    let begin = app.get("/connexion/oidc").send().await;
    let pre = format!("entcp_oidc={}", set_cookie(&begin, "entcp_oidc").unwrap());
    let (code, state) = sign_in_at_provider(begin.header("location").unwrap(), &sub).await;
    let callback = format!("/connexion/oidc/retour?code={code}&state={state}");
    assert_eq!(app.get(&callback).header("cookie", &pre).send().await.status, 303, "{name}");
    let replayed = app.get(&callback).header("cookie", &pre).send().await;
    assert_eq!(replayed.status, 400, "{name}: {}", replayed.text);
    assert!(replayed.text.contains("recommencez"), "{name}: {}", replayed.text);
    let without = app.get(&callback).send().await;
    assert_eq!(without.status, 400, "{name}");
    let failed = "SELECT COUNT(*) FROM audit_log WHERE action = 'console.sign_in_failed' AND summary LIKE $1";
    assert_eq!(common::count(&app.store, failed, &["%no_pending_login%"]).await, 2, "{name}");
    let refusals = "SELECT COUNT(*) FROM audit_log WHERE action = 'oidc.refused'";
    assert_eq!(
        common::count(&app.store, refusals, &[]).await,
        1,
        "{name}: the unknown person, audited by identity::oidc"
    );
}

/// From the signed-in `session`: `GET /compte/identite`, the provider's form as `sub`, then the
/// callback with the session and pre-session cookies: the provider's authorisation URL and the
/// callback's answer.
async fn confirm_at_provider(app: &TestApp, session: &str, sub: &str) -> (reqwest::Url, common::Resp) {
    use crate::console::set_cookie;
    let begin = app.get("/compte/identite").header("cookie", session).send().await;
    assert_eq!(begin.status, 303, "{}", begin.text);
    let pre = set_cookie(&begin, "entcp_oidc").expect("a pre-session cookie");
    let location = begin.header("location").unwrap().to_string();
    let (code, state) = sign_in_at_provider(&location, sub).await;
    let back = app
        .get(&format!("/connexion/oidc/retour?code={code}&state={state}"))
        .header("cookie", format!("{session}; entcp_oidc={pre}"))
        .send()
        .await;
    (reqwest::Url::parse(&location).unwrap(), back)
}

/// `auth_time` (seconds) `minutes` after [`common::t0`], the console's clock: the claim the
/// provider puts in its ID tokens for a subject that has it (it overrides the provider's own).
fn auth_time(minutes: i64) -> Value {
    json!((common::t0() + chrono::Duration::minutes(minutes)).timestamp())
}

/// The session cookie of a sign-in through the console as `sub`.
async fn oidc_session(app: &TestApp, sub: &str) -> String {
    let back = console_sign_in(app, sub, "/compte").await;
    assert_eq!(back.status, 303, "{}", back.text);
    format!("entcp_session={}", crate::console::set_cookie(&back, "entcp_session").expect("a session"))
}

/// The number of API tokens of `email`.
async fn tokens_of(app: &TestApp, email: &str) -> usize {
    let user = entcp::identity::get_user(&app.store, email).await.unwrap().unwrap();
    entcp::identity::list_tokens(&app.store, Some(&user.id)).await.unwrap().len()
}

// A person without a password signed in silently (the provider's session is hours old) may not
// create a token; the page offers to confirm their identity at the provider, whose request asks
// it to authenticate them again (`prompt=login`, `max_age=0`); the ID token's fresh `auth_time`
// then permits a token for 15 minutes, without opening another session. A sign-in whose own
// `auth_time` is recent permits one straight away.
backend_test!(a_person_without_a_password_confirms_their_identity_at_the_provider_then_creates_a_token);
async fn a_person_without_a_password_confirms_their_identity_at_the_provider_then_creates_a_token(db: TestDb) {
    use crate::console::{page_showing, post_form, set_cookie};
    let (provider, app) = provider_and_console(db).await;
    let name = app.backend;
    let dan = "dan@ac-creteil.fr";
    let claims = |at: Value| json!({ "email": dan, "email_verified": true, "auth_time": at });
    let sub = subject_with(&provider, claims(auth_time(-180))).await;
    // An ordinary sign-in asks the provider for nothing more: it may be silent.
    let begin = app.get("/connexion/oidc").send().await;
    let plain = reqwest::Url::parse(begin.header("location").unwrap()).unwrap();
    assert!(!plain.query_pairs().any(|(k, _)| k == "prompt" || k == "max_age"), "{name}: {plain}");

    let session = oidc_session(&app, &sub).await;
    let signed_in: String = sqlx::query_scalar("SELECT summary FROM audit_log WHERE action = 'oidc.sign_in'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let three_hours_before = entcp::store::timestamp(common::t0() - chrono::Duration::hours(3));
    let signed_in: Value = serde_json::from_str(&signed_in).unwrap();
    assert_eq!(signed_in["auth_time"], three_hours_before.as_str(), "{name}: the provider's date audited");
    let before = tokens_of(&app, dan).await;
    let page = page_showing(&app, &session, "/compte", "id=\"token-recent\"").await;
    assert!(page.text.contains("href=\"/compte/identite\""), "{name}: {}", page.text);
    assert!(page.text.contains("Confirmer mon identité auprès du fournisseur d'identité"), "{name}: {}", page.text);
    let refused = post_form(&app, &session, "/compte/jetons", &[("name", "Export")]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("Confirmez votre identité"), "{name}: {}", refused.text);
    assert_eq!(tokens_of(&app, dan).await, before, "{name}");

    // The provider authenticates the person again, half a minute after the request.
    put_subject(&provider.issuer, &sub, claims(json!(common::t0().timestamp() + 30))).await;
    let (asked, back) = confirm_at_provider(&app, &session, &sub).await;
    let param = |k: &str| asked.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.to_string());
    assert_eq!(param("prompt").as_deref(), Some("login"), "{name}: {asked}");
    assert_eq!(param("max_age").as_deref(), Some("0"), "{name}: {asked}");
    assert_eq!((back.status, back.header("location")), (303, Some("/compte?apres=identite")), "{name}: {}", back.text);
    assert!(set_cookie(&back, "entcp_session").is_none(), "{name}: no other session");
    page_showing(&app, &session, "/compte?apres=identite", "Votre identité est confirmée").await;
    let created = post_form(&app, &session, "/compte/jetons", &[("name", "Export")]).await;
    assert_eq!(created.status, 200, "{name}: {}", created.text);
    assert!(created.text.contains("id=\"secret-jeton\""), "{name}: {}", created.text);
    assert_eq!(tokens_of(&app, dan).await, before + 1, "{name}");
    let audited: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, summary FROM audit_log WHERE action = 'oidc.reauthenticated'")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(audited.len(), 1, "{name}: {audited:?}");
    assert_eq!(audited[0].0, format!("user:{dan}"), "{name}");
    let summary: Value = serde_json::from_str(&audited[0].1).unwrap();
    assert_eq!(summary["subject"], sub.as_str(), "{name}: {summary}");

    // Fifteen minutes on, the proof has lapsed.
    app.clock.set(common::t0() + chrono::Duration::minutes(16));
    let refused = post_form(&app, &session, "/compte/jetons", &[("name", "Export 2")]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert_eq!(tokens_of(&app, dan).await, before + 1, "{name}");

    // A sign-in the provider dates from a minute ago counts as recent by itself.
    put_subject(&provider.issuer, &sub, claims(auth_time(15))).await;
    let again = oidc_session(&app, &sub).await;
    let created = post_form(&app, &again, "/compte/jetons", &[("name", "Export 3")]).await;
    assert_eq!(created.status, 200, "{name}: {}", created.text);
}

/// An app signing in through `config`'s provider, with two administrators of their own.
async fn two_admins_behind(db: TestDb, config: &OidcConfig) -> TestApp {
    TestApp::builder(db)
        .config(|c| c.identity.oidc = Some(config.clone()))
        .user("dan@ac-creteil.fr", Role::Admin, None)
        .user("dsi@ac-creteil.fr", Role::Admin, None)
        .build()
        .await
}

// A confirmation whose ID token has no `auth_time`, a stale one (the provider did not ask again)
// or one in the future is refused, as is one where the provider authenticated another person
// (one with an account of their own): the session stays its person's, nobody is signed in, no
// token can be created; each refusal is audited with its reason. A callback reaching the
// console without the session that asked confirms nothing.
backend_test!(a_confirmation_without_a_fresh_auth_time_or_by_another_person_is_refused_and_signs_nobody_in);
async fn a_confirmation_without_a_fresh_auth_time_or_by_another_person_is_refused_and_signs_nobody_in(db: TestDb) {
    use crate::console::{page_showing, post_form, set_cookie};
    let provider = provider().await;
    let config = config(&provider);
    let app = two_admins_behind(db, &config).await;
    let name = app.backend;
    let claims = |email: &str, at: Value| json!({ "email": email, "email_verified": true, "auth_time": at });
    let sub = subject_with(&provider, claims("dan@ac-creteil.fr", auth_time(-180))).await;
    let session = oidc_session(&app, &sub).await;
    let before = (tokens_of(&app, "dan@ac-creteil.fr").await, tokens_of(&app, "dsi@ac-creteil.fr").await);
    // The other person signed in once: their subject is linked to their own account.
    let other = subject_with(&provider, claims("dsi@ac-creteil.fr", auth_time(0))).await;
    oidc_session(&app, &other).await;

    let cases = [
        (auth_time(-20), "stale_auth_time", "ne vous a pas authentifié à nouveau"),
        (Value::Null, "no_auth_time", "quand il vous a authentifié (auth_time)"),
        (auth_time(10), "future_auth_time", "dans le futur"),
    ];
    for (at, reason, text) in &cases {
        put_subject(&provider.issuer, &sub, claims("dan@ac-creteil.fr", at.clone())).await;
        let (_, back) = confirm_at_provider(&app, &session, &sub).await;
        assert_eq!(back.status, 403, "{name} {reason}: {}", back.text);
        assert!(back.text.contains(text), "{name} {reason}: {}", back.text);
        assert!(set_cookie(&back, "entcp_session").is_none(), "{name} {reason}");
        let refused = post_form(&app, &session, "/compte/jetons", &[("name", "Export")]).await;
        assert_eq!(refused.status, 422, "{name} {reason}: {}", refused.text);
    }

    // Another person at the provider, authenticated just now: refused, the session stays Dan's.
    let (_, back) = confirm_at_provider(&app, &session, &other).await;
    assert_eq!(back.status, 403, "{name}: {}", back.text);
    assert!(back.text.contains("une autre personne que celle de cette session"), "{name}: {}", back.text);
    assert!(set_cookie(&back, "entcp_session").is_none(), "{name}");
    let page = page_showing(&app, &session, "/compte", "dan@ac-creteil.fr").await;
    assert!(!page.text.contains("dsi@ac-creteil.fr"), "{name}: {}", page.text);
    let refused = post_form(&app, &session, "/compte/jetons", &[("name", "Export")]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    let after = (tokens_of(&app, "dan@ac-creteil.fr").await, tokens_of(&app, "dsi@ac-creteil.fr").await);
    assert_eq!(after, before, "{name}: no token for anyone");

    // Fresh, but back in a browser without the session that asked: refused, nothing marked.
    put_subject(&provider.issuer, &sub, claims("dan@ac-creteil.fr", auth_time(0))).await;
    let begin = app.get("/compte/identite").header("cookie", &session).send().await;
    let pre = set_cookie(&begin, "entcp_oidc").unwrap();
    let (code, state) = sign_in_at_provider(begin.header("location").unwrap(), &sub).await;
    let elsewhere = app
        .get(&format!("/connexion/oidc/retour?code={code}&state={state}"))
        .header("cookie", format!("entcp_oidc={pre}"))
        .send()
        .await;
    assert_eq!(elsewhere.status, 400, "{name}: {}", elsewhere.text);
    assert!(elsewhere.text.contains("la session qui l&#x27;a demandée est terminée"), "{name}: {}", elsewhere.text);
    assert!(set_cookie(&elsewhere, "entcp_session").is_none(), "{name}");
    let refused = post_form(&app, &session, "/compte/jetons", &[("name", "Export")]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);

    let reasons: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, summary FROM audit_log WHERE action = 'oidc.reauthentication_refused' ORDER BY seq",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let reasons: Vec<(String, Value)> = reasons
        .into_iter()
        .map(|(actor, summary)| (actor, serde_json::from_str::<Value>(&summary).unwrap()["reason"].clone()))
        .collect();
    let dan = |reason: &str| ("user:dan@ac-creteil.fr".to_string(), json!(reason));
    let expected = vec![dan("stale_auth_time"), dan("no_auth_time"), dan("future_auth_time"), dan("other_subject")];
    assert_eq!(reasons, expected, "{name}");
    let confirmed = "SELECT COUNT(*) FROM audit_log WHERE action = 'oidc.reauthenticated'";
    assert_eq!(common::count(&app.store, confirmed, &[]).await, 0, "{name}");
    let without = "SELECT COUNT(*) FROM audit_log WHERE action = 'console.sign_in_failed' AND summary LIKE $1";
    assert_eq!(common::count(&app.store, without, &["%confirmation_without_its_session%"]).await, 1, "{name}");
}

// A confirmation's request asks the provider to authenticate the person again; its callback,
// handed to `finish` (a sign-in) instead of `confirm`, signs nobody in, and `confirm` wants the
// session's own user.
backend_test!(a_confirmations_callback_never_signs_anyone_in);
async fn a_confirmations_callback_never_signs_anyone_in(db: TestDb) {
    use entcp::identity::oidc::Confirming;
    let app = TestApp::builder(db).user("dan@ac-creteil.fr", Role::Admin, None).build().await;
    let (store, name) = (&app.store, app.backend);
    let provider = provider().await;
    let oidc = Oidc::new(&config(&provider)).unwrap();
    let sub = verified_subject(&provider, "dan@ac-creteil.fr").await;
    let dan = entcp::identity::get_user(store, "dan@ac-creteil.fr").await.unwrap().unwrap();
    let confirming = Confirming { user_id: dan.id.clone(), session: "empreinte-de-session".into() };
    let (url, pending) = oidc.begin_confirmation("/compte", confirming, common::t0()).await.unwrap();
    let url = reqwest::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(pairs.contains(&("prompt".into(), "login".into())), "{name}: {url}");
    assert!(pairs.contains(&("max_age".into(), "0".into())), "{name}: {url}");
    let (code, state) = sign_in_at_provider(url.as_str(), &sub).await;
    let refused = oidc.finish(store, pending, &code, &state, common::t0()).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::Unauthorized, "{name}: {refused:?}");
    assert!(refused.detail.contains("il n'ouvre pas de session"), "{name}: {}", refused.detail);
    let audit = oidc_audit(store).await;
    assert_eq!(audit.len(), 1, "{name}: {audit:?}");
    assert_eq!(audit[0].2["reason"], "confirmation_as_sign_in", "{name}");
}

// An address the provider does not say it verified names no account (absent counts as not);
// the first verified sign-in links the account to its subject, and from then on another
// subject presenting the same address is refused (audited), as is the linked subject when it
// presents another account's address.
backend_test!(an_oidc_sign_in_needs_a_verified_address_and_an_account_opens_to_its_first_subject_only);
async fn an_oidc_sign_in_needs_a_verified_address_and_an_account_opens_to_its_first_subject_only(db: TestDb) {
    let provider = provider().await;
    let config = config(&provider);
    let app = two_admins_behind(db, &config).await;
    let (store, name) = (&app.store, app.backend);
    let oidc = Oidc::new(&config).unwrap();
    let finish = |sub: String| {
        let oidc = &oidc;
        async move {
            let (pending, code, state) = through_provider(oidc, &sub).await;
            oidc.finish(store, pending, &code, &state, common::t0()).await
        }
    };

    for claims in
        [json!({ "email": "dan@ac-creteil.fr" }), json!({ "email": "dan@ac-creteil.fr", "email_verified": false })]
    {
        let refused = finish(subject_with(&provider, claims.clone()).await).await.unwrap_err();
        assert_eq!(refused.kind, ProblemKind::Forbidden, "{name} {claims}: {refused:?}");
        assert!(refused.detail.contains("« email_verified »"), "{name}: {}", refused.detail);
    }
    let links = "SELECT COUNT(*) FROM oidc_identities";
    assert_eq!(common::count(store, links, &[]).await, 0, "{name}: nothing linked");

    let first = verified_subject(&provider, "dan@ac-creteil.fr").await;
    let dan = finish(first.clone()).await.unwrap().user;
    let linked: Vec<(String, String, String)> =
        sqlx::query_as("SELECT issuer, subject, user_id FROM oidc_identities").fetch_all(store.pool()).await.unwrap();
    assert_eq!(linked, [(provider.issuer.clone(), first.clone(), dan.id.clone())], "{name}");

    let other = verified_subject(&provider, "Dan@ac-creteil.fr").await;
    let refused = finish(other.clone()).await.unwrap_err();
    assert_eq!(refused.kind, ProblemKind::Forbidden, "{name}: {refused:?}");
    assert!(refused.detail.contains("lié à une autre identité de ce fournisseur"), "{name}: {}", refused.detail);
    assert_eq!(finish(first.clone()).await.unwrap().user.id, dan.id, "{name}: the first subject still signs in");

    // The linked subject now presents the other account's address: refused too.
    put_subject(&provider.issuer, &first, json!({ "email": "dsi@ac-creteil.fr", "email_verified": true })).await;
    let refused = finish(first.clone()).await.unwrap_err();
    assert!(refused.detail.contains("liée à un autre compte"), "{name}: {}", refused.detail);

    let reasons: Vec<(String, String, Value)> = oidc_audit(store)
        .await
        .into_iter()
        .map(|(action, target, summary)| (action, target, summary["reason"].clone()))
        .collect();
    let refusal = |target: &str, reason: &str| ("oidc.refused".to_string(), target.to_string(), json!(reason));
    let expected = vec![
        refusal("dan@ac-creteil.fr", "email_unverified"),
        refusal("dan@ac-creteil.fr", "email_unverified"),
        ("oidc.sign_in".to_string(), dan.id.clone(), Value::Null),
        refusal("dan@ac-creteil.fr", "subject_mismatch"),
        ("oidc.sign_in".to_string(), dan.id.clone(), Value::Null),
        refusal("dsi@ac-creteil.fr", "subject_linked_elsewhere"),
    ];
    assert_eq!(reasons, expected, "{name}");
    let mismatch = "SELECT COUNT(*) FROM audit_log WHERE action = 'oidc.refused' AND actor = $1";
    assert_eq!(
        common::count(store, mismatch, &[format!("oidc:{other}").as_str()]).await,
        1,
        "{name}: the subject named"
    );

    // Through the console: the same refusal, in French on the sign-in page, no session.
    let page = console_sign_in(&app, &other, "/").await;
    assert_eq!(page.status, 403, "{name}: {}", page.text);
    assert!(page.text.contains("lié à une autre identité de ce fournisseur"), "{name}: {}", page.text);
    assert!(crate::console::set_cookie(&page, "entcp_session").is_none(), "{name}");

    // A provider vouched for by the configuration may omit the claim; a `false` is still refused.
    let trusting = Oidc::new(&OidcConfig { trust_email_without_claim: true, ..config.clone() }).unwrap();
    let finish_trusting = |sub: String| {
        let oidc = &trusting;
        async move {
            let (pending, code, state) = through_provider(oidc, &sub).await;
            oidc.finish(store, pending, &code, &state, common::t0()).await
        }
    };
    let unverified = subject_with(&provider, json!({ "email": "dsi@ac-creteil.fr", "email_verified": false })).await;
    let refused = finish_trusting(unverified).await.unwrap_err();
    assert!(refused.detail.contains("« email_verified »"), "{name}: {}", refused.detail);
    let unstated = subject_with(&provider, json!({ "email": "dsi@ac-creteil.fr" })).await;
    let dsi = finish_trusting(unstated).await.unwrap().user;
    assert_eq!(dsi.email, "dsi@ac-creteil.fr", "{name}");
}

// `GET /connexion/oidc` writes a pending login: it counts against the client address's
// sign-in throttle (a completed sign-in takes its count back), and the retention purge
// deletes the pending logins past their lifetime.
backend_test!(opening_the_oidc_sign_in_counts_apart_from_the_password_sign_in_and_stale_pending_logins_are_purged);
async fn opening_the_oidc_sign_in_counts_apart_from_the_password_sign_in_and_stale_pending_logins_are_purged(
    db: TestDb,
) {
    let (provider, app) = provider_and_console(db).await;
    let name = app.backend;
    let sub = verified_subject(&provider, "dan@ac-creteil.fr").await;
    for i in 0..6 {
        let back = console_sign_in(&app, &sub, "/").await;
        assert_eq!(back.status, 303, "{name} {i}: a completed sign-in takes its count back: {}", back.text);
    }
    for i in 0..5 {
        assert_eq!(app.get("/connexion/oidc").send().await.status, 303, "{name} {i}");
    }
    let refused = app.get("/connexion/oidc").send().await;
    assert_eq!(refused.status, 429, "{name}: {}", refused.text);
    assert!(refused.text.contains("Trop de tentatives"), "{name}: {}", refused.text);
    assert!(refused.header("retry-after").is_some(), "{name}");
    let pending = "SELECT COUNT(*) FROM console_oidc_pending";
    assert_eq!(common::count(&app.store, pending, &[]).await, 5, "{name}: no row for the refused one");
    // Starts nobody finished (a page of another site can fire them) are a count of their own:
    // the password sign-in from that address still goes through.
    crate::console::with_password(&app.store, "dan@ac-creteil.fr").await;
    crate::console::sign_in(&app, "dan@ac-creteil.fr").await;

    let timeouts = entcp::identity::sessions::Timeouts::of(&entcp::config::Config::default().console);
    let later = common::t0() + chrono::Duration::minutes(9);
    entcp::identity::sessions::purge_ended(&app.store, timeouts, later).await.unwrap();
    assert_eq!(common::count(&app.store, pending, &[]).await, 5, "{name}: still within their lifetime");
    let later = common::t0() + chrono::Duration::minutes(11);
    entcp::identity::sessions::purge_ended(&app.store, timeouts, later).await.unwrap();
    assert_eq!(common::count(&app.store, pending, &[]).await, 0, "{name}: purged");
}

/// A provider that is down is asked once: the sign-ins queued behind its discovery get the
/// failure it gave, instead of each waiting out the timeout again.
#[tokio::test]
async fn a_provider_that_is_down_is_asked_once_for_the_sign_ins_queued_behind_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(answer).await;
        }
    });
    let secret = tempfile::tempdir().unwrap();
    let secret_file = secret.path().join("secret");
    std::fs::write(&secret_file, "s3cret").unwrap();
    let yaml = format!(
        "issuer: {issuer}\nclient_id: entcp-test\nclient_secret_file: {}\nredirect_url: http://127.0.0.1:9/connexion/oidc/retour\n",
        secret_file.display()
    );
    let config: OidcConfig = entcp::yaml::from_str(&yaml).unwrap();
    let oidc = Oidc::new(&config).unwrap();
    let attempts = futures_util::future::join_all((0..4).map(|_| oidc.begin("/", common::t0()))).await;
    for attempt in &attempts {
        let refused = attempt.as_ref().expect_err("the provider is down");
        assert_eq!(refused.kind, ProblemKind::Unavailable, "{}", refused.detail);
    }
    assert_eq!(asked.load(Ordering::SeqCst), 1, "one discovery for the four sign-ins");
}
