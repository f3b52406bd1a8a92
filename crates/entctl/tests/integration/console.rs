//! The web console in process (no browser): password sign-in and the dashboard, scope
//! (a forged address answers 404), the CSRF token of every form, session expiry and
//! the way back to the page asked, lockout after repeated failures, and the password
//! change that ends every session.

use crate::common;

use common::{admin, t0, TestApp, TestDb};
use entcp::identity::password;
use entcp::kernel::roles::Role;
use entcp::registry::Org;
use entcp::store::Store;

pub(crate) const PASSWORD: &str = "cheval correct pile agrafe";

/// Two académies of a synthetic annuaire.
async fn academies(app: &TestApp) -> (Org, Org) {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM orgs WHERE kind = 'academie' ORDER BY code LIMIT 2")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let a = entcp::registry::queries::get_org(&app.store, &ids[0]).await.unwrap().unwrap();
    let b = entcp::registry::queries::get_org(&app.store, &ids[1]).await.unwrap().unwrap();
    (a, b)
}

/// Gives the existing user `email` the console's [`PASSWORD`].
pub(crate) async fn with_password(store: &Store, email: &str) {
    let user = entcp::identity::get_user(store, email).await.unwrap().unwrap_or_else(|| panic!("no user {email}"));
    password::set_password(store, &admin(), &user.id, PASSWORD, password::ChosenBy::Operator, t0()).await.unwrap();
}

/// [`TestApp::add_user`] (the app keeps its token) who also signs in with [`PASSWORD`].
pub(crate) async fn add_person(app: &mut TestApp, email: &str, role: Role, org: Option<&str>) {
    app.add_user(email, role, org).await;
    with_password(&app.store, email).await;
}

/// A user holding `role` at `org` (an organisation key) who signs in with [`PASSWORD`].
pub(crate) async fn person(store: &Store, email: &str, role: Role, org: Option<&str>) {
    common::token_for(store, email, role, org).await;
    with_password(store, email).await;
}

/// `text` as tera writes it in a page (every character `escape_html` replaces).
pub(crate) fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2F;")
}

/// The app of [`console`] and the session of its DAN of the first académie (`dan.a@test.fr`).
pub(crate) async fn console_as_dan_a(db: TestDb) -> (TestApp, Org, Org, String) {
    let (app, a, b) = console(db).await;
    let session = sign_in(&app, "dan.a@test.fr").await;
    (app, a, b, session)
}

/// An app over a synthetic annuaire with a DAN in each of two académies, both with [`PASSWORD`].
pub(crate) async fn console(db: TestDb) -> (TestApp, Org, Org) {
    common::fixtures::synthetic_annuaire(&db.store, 400, 80, 7).await;
    let mut app = TestApp::builder(db).build().await;
    let (a, b) = academies(&app).await;
    for (email, org) in [("dan.a@test.fr", &a), ("dan.b@test.fr", &b)] {
        add_person(&mut app, email, Role::Dan, Some(&org.id)).await;
    }
    (app, a, b)
}

/// The value of cookie `name` set by `resp`.
pub(crate) fn set_cookie(resp: &common::Resp, name: &str) -> Option<String> {
    resp.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap().to_string()))
}

/// The `_csrf` value of the first form of a page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[at..at + 64].to_string()
}

/// Posts `fields` to `path` as an anonymous form (sign-in, forgotten password…), with the form
/// cookie and CSRF token of the sign-in page (those of any anonymous page).
pub(crate) async fn post_anonymous(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> common::Resp {
    post_anonymous_from(app, "127.0.0.1", path, fields).await
}

/// [`post_anonymous`] as the client `from` (its `X-Forwarded-For`: an app that trusts it, as
/// [`behind_proxy`]'s, counts each address apart).
pub(crate) async fn post_anonymous_from(
    app: &TestApp,
    from: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> common::Resp {
    let form = app.get("/connexion").header("x-forwarded-for", from).send().await;
    assert_eq!(form.status, 200, "{}", form.text);
    // Over https the console names it with the `__Host-` prefix.
    let name = ["entcp_formulaire", "__Host-entcp_formulaire"].into_iter().find(|n| set_cookie(&form, n).is_some());
    let name = name.expect("form cookie");
    let cookie = set_cookie(&form, name).unwrap();
    let csrf = csrf_of(&form.text);
    let mut pairs = vec![("_csrf", csrf.as_str())];
    pairs.extend_from_slice(fields);
    let body = serde_urlencoded::to_string(&pairs).unwrap();
    app.post(path)
        .header("x-forwarded-for", from)
        .header("cookie", format!("{name}={cookie}"))
        .bytes("application/x-www-form-urlencoded", body)
        .send()
        .await
}

/// An app trusting `X-Forwarded-For` (each client address its own) with one administrator,
/// [`DAN_PROXIED`], who signs in with [`PASSWORD`].
async fn behind_proxy(db: TestDb) -> TestApp {
    let app = TestApp::builder(db).config(|c| c.server.trust_forwarded_for = true).build().await;
    person(&app.store, DAN_PROXIED, Role::Admin, None).await;
    app
}

const DAN_PROXIED: &str = "dan@test.fr";

/// Signs in through the form; the answer to the POST and the form's cookie.
pub(crate) async fn post_sign_in(app: &TestApp, email: &str, password: &str, next: &str) -> common::Resp {
    post_anonymous(app, "/connexion", &[("email", email), ("password", password), ("suivant", next)]).await
}

/// The session cookie of a successful sign-in.
pub(crate) async fn sign_in(app: &TestApp, email: &str) -> String {
    let resp = post_sign_in(app, email, PASSWORD, "/").await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    format!("entcp_session={}", set_cookie(&resp, "entcp_session").expect("session cookie"))
}

/// A page as the signed-in `session` sees it.
pub(crate) async fn get(app: &TestApp, session: &str, path: &str) -> common::Resp {
    app.get(path).header("cookie", session).send().await
}

/// The page `path` as `session` sees it, which must show (200) and contain `text`.
pub(crate) async fn page_showing(app: &TestApp, session: &str, path: &str, text: &str) -> common::Resp {
    let page = get(app, session, path).await;
    assert_eq!(page.status, 200, "{path}: {}", page.text);
    assert!(page.text.contains(text), "{path}: {text} in {}", page.text);
    page
}

/// Posts a form with the CSRF token of `session`'s pages.
pub(crate) async fn post_form(app: &TestApp, session: &str, path: &str, fields: &[(&str, &str)]) -> common::Resp {
    let page = get(app, session, "/compte").await;
    let mut pairs = vec![("_csrf", csrf_of(&page.text))];
    pairs.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
    post_body(app, session, path, serde_urlencoded::to_string(&pairs).unwrap()).await
}

/// Posts the form `body` to `path` as it is (no CSRF token added) with the cookie `session`.
pub(crate) async fn post_body(app: &TestApp, session: &str, path: &str, body: impl Into<Vec<u8>>) -> common::Resp {
    app.post(path).header("cookie", session).bytes("application/x-www-form-urlencoded", body).send().await
}

/// A refused form's page as RGAA 8.6, 11.10 and 7.5 want it: a client error whose title starts
/// with « Erreur : », one alert (the error summary, or the notice of a refusal without field
/// errors) that the console's script focuses on load, and every link to an anchor of the page
/// (`href="#x"`) leading to an element of it (`id="x"`).
pub(crate) fn assert_refusal_announced(page: &common::Resp) {
    assert!((400..500).contains(&page.status), "a refusal: {} {}", page.status, page.text);
    assert!(page.text.contains("<title>Erreur : "), "the title says the error: {}", page.text);
    assert_eq!(page.text.matches("role=\"alert\"").count(), 1, "one alert: {}", page.text);
    let alert = &page.text[page.text.find("role=\"alert\"").unwrap()..];
    assert!(alert[..alert.find('>').unwrap()].contains("tabindex=\"-1\""), "focusable: {}", page.text);
    assert!(page.text.contains("/console.js\" defer></script>"), "the script that focuses it");
    assert_anchors_resolve(&page.text);
}

/// Every `href="#x"` of `html` has an element `id="x"`.
pub(crate) fn assert_anchors_resolve(html: &str) {
    for target in html.split("href=\"#").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
        assert!(html.contains(&format!(" id=\"{target}\"")), "#{target} leads nowhere: {html}");
    }
}

/// The error summary's links of a page: (target id, text), the text as tera wrote it.
pub(crate) fn summary_links(html: &str) -> Vec<(String, String)> {
    let Some(at) = html.find("console-error-summary") else { return Vec::new() };
    let summary = &html[at..at + html[at..].find("</div>").unwrap()];
    summary
        .split("<a href=\"#")
        .skip(1)
        .map(|link| {
            let (id, rest) = link.split_once("\">").unwrap();
            (id.to_string(), rest[..rest.find("</a>").unwrap()].to_string())
        })
        .collect()
}

/// The page a 303 leads to.
pub(crate) async fn follow(app: &TestApp, session: &str, resp: &common::Resp) -> common::Resp {
    assert_eq!(resp.status, 303, "{}", resp.text);
    get(app, session, resp.header("location").unwrap()).await
}

/// The key of a page address `{prefix}{key}?…` (a redirection's location).
pub(crate) fn key_of(location: &str, prefix: &str) -> String {
    location.trim_start_matches(prefix).split('?').next().unwrap().to_string()
}

backend_test!(a_dan_signs_in_and_sees_the_dashboard_of_their_academie_only);
async fn a_dan_signs_in_and_sees_the_dashboard_of_their_academie_only(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let home = app.get("/").header("cookie", &session).send().await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains(&format!("Tableau de bord — {}", a.name)), "{}", home.text);
    assert!(home.text.contains("<svg role=\"img\""), "a chart");
    assert!(home.text.contains("DAN — "), "the roles in the header");
    for header in ["content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"] {
        assert!(home.header(header).is_some(), "{header}");
    }
    assert!(!home.header("content-security-policy").unwrap().contains("unsafe-inline"));
    let own = app.get(&format!("/tableau-de-bord/{}", a.id)).header("cookie", &session).send().await;
    assert_eq!(own.status, 200);
    // Another académie's dashboard is not revealed: the same 404 as a missing one.
    let other = app.get(&format!("/tableau-de-bord/{}", b.id)).header("cookie", &session).send().await;
    let missing = app.get("/tableau-de-bord/inexistant-0000").header("cookie", &session).send().await;
    assert_eq!((other.status, missing.status), (404, 404), "{}", other.text);
    assert!(other.text.contains("Identifiant de la requête"), "French error page: {}", other.text);
    assert!(!other.text.contains(&b.name));
    assert_eq!(common::audited(&app.store, "console.sign_in").await, 1);
}

/// A commune of académie `academie` with an open école.
async fn commune_with_ecole(store: &Store, academie: &Org) -> (Org, String) {
    let (commune, ecole): (String, String) = sqlx::query_as(
        "SELECT c.id, e.code FROM orgs c JOIN orgs e ON e.commune_code = c.code AND e.kind = 'etablissement' \
         AND e.degree = '1D' AND e.is_open <> 0 WHERE c.kind = 'commune' AND c.academie_code = $1 ORDER BY c.id, e.code",
    )
    .bind(&academie.code)
    .fetch_optional(store.pool())
    .await
    .unwrap()
    .expect("a commune with an école");
    (entcp::registry::queries::get_org(store, &commune).await.unwrap().unwrap(), ecole)
}

// An EPCI of académie A may count a commune of académie B among its members: its dashboard, as
// A's DAN sees it, lists and counts only what that DAN may read.
backend_test!(a_dashboard_shows_only_what_its_viewer_may_read_of_the_organisation_s_members);
async fn a_dashboard_shows_only_what_its_viewer_may_read_of_the_organisation_s_members(db: TestDb) {
    let (app, a, b, session) = console_as_dan_a(db).await;
    let ((ours, our_ecole), (theirs, their_ecole)) =
        (commune_with_ecole(&app.store, &a).await, commune_with_ecole(&app.store, &b).await);
    let siren = common::fixtures::luhn("20000999");
    let epci = common::fixtures::epci(&app.store, "Communauté test", &siren, &[&ours, &theirs]).await;
    assert_eq!(epci.academie_code, a.academie_code.clone().or(Some(a.code.clone())), "the EPCI is of académie A");
    let page = app.get(&format!("/tableau-de-bord/{}", epci.id)).header("cookie", &session).send().await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains(&our_ecole), "its own académie's école: {}", page.text);
    assert!(!page.text.contains(&their_ecole), "not another académie's: {}", page.text);
    let departement = theirs.departement_code.clone().unwrap();
    if ours.departement_code.as_deref() != Some(departement.as_str()) {
        let row = |label: String| page.text.contains(&format!("{label}</th>"));
        assert!(!row(format!("Département {departement}")) && !row(format!("({departement})")), "{}", page.text);
    }
}

backend_test!(a_console_served_over_https_asks_browsers_to_keep_to_it_and_its_cookies_are_secure);
async fn a_console_served_over_https_asks_browsers_to_keep_to_it_and_its_cookies_are_secure(db: TestDb) {
    let plain = TestApp::over(&db.store).build().await;
    let page = plain.get("/connexion").send().await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header("strict-transport-security").is_none(), "not over plain http");
    let tls = TestApp::builder(db)
        .config(|config| config.console.public_url = "https://ent.ac-creteil.fr".into())
        .build()
        .await;
    person(&tls.store, "root@ac-creteil.fr", Role::Admin, None).await;
    let page = tls.get("/connexion").send().await;
    assert_eq!(page.header("strict-transport-security"), Some("max-age=31536000"), "the sign-in page");
    // The sign-in form's cookie only this host can set: a sibling subdomain cannot plant one.
    let form_cookie = page.header("set-cookie").unwrap_or_default();
    assert!(form_cookie.starts_with("__Host-entcp_formulaire=") && form_cookie.ends_with("; Secure"), "{form_cookie}");
    let token = set_cookie(&page, "__Host-entcp_formulaire").unwrap();
    let planted = serde_urlencoded::to_string([("_csrf", token.as_str()), ("email", "x@y.fr"), ("password", "z")]);
    let refused = tls
        .post("/connexion")
        .header("cookie", format!("entcp_formulaire={token}"))
        .bytes("application/x-www-form-urlencoded", planted.unwrap())
        .send()
        .await;
    assert_eq!(refused.status, 403, "the unprefixed cookie is not the form's: {}", refused.text);
    let signed = post_sign_in(&tls, "root@ac-creteil.fr", PASSWORD, "/").await;
    assert_eq!(signed.status, 303, "{}", signed.text);
    assert_eq!(signed.header("strict-transport-security"), Some("max-age=31536000"), "a redirection");
    let cookies = signed.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    // The session cookie too: only this host sets it (`__Host-`: `Path=/`, `Secure`, no `Domain`).
    let session = cookies.iter().find(|c| c.starts_with("__Host-entcp_session=")).expect("the session cookie");
    assert!(session.contains("; Path=/") && session.ends_with("; Secure"), "{session}");
    assert!(!session.to_ascii_lowercase().contains("domain="), "{session}");
    let secret = set_cookie(&signed, "__Host-entcp_session").unwrap();
    let own = tls.get("/compte").header("cookie", format!("__Host-entcp_session={secret}")).send().await;
    assert_eq!(own.status, 200, "{}", own.text);
    // The unprefixed name a sibling subdomain could plant (its own account's session) is no session.
    let planted = tls.get("/compte").header("cookie", format!("entcp_session={secret}")).send().await;
    assert_eq!(planted.status, 303, "the unprefixed cookie is not the session's: {}", planted.text);
}

backend_test!(a_form_without_its_csrf_token_is_refused);
async fn a_form_without_its_csrf_token_is_refused(db: TestDb) {
    let (app, _, _, session) = console_as_dan_a(db).await;
    let form = "application/x-www-form-urlencoded";
    let without = post_body(&app, &session, "/deconnexion", "").await;
    let wrong = post_body(&app, &session, "/deconnexion", format!("_csrf={}", "0".repeat(64))).await;
    assert_eq!((without.status, wrong.status), (403, 403), "{}", without.text);
    // Still signed in: the refused forms did nothing.
    assert_eq!(app.get("/compte").header("cookie", &session).send().await.status, 200);
    let page = app.get("/compte").header("cookie", &session).send().await;
    let out = post_body(&app, &session, "/deconnexion", format!("_csrf={}", csrf_of(&page.text))).await;
    assert_eq!(out.status, 303);
    assert_eq!(app.get("/compte").header("cookie", &session).send().await.status, 303, "signed out");
    // The sign-in form too: without its double-submit cookie it is refused.
    let anonymous = app
        .post("/connexion")
        .bytes(form, format!("_csrf={}&email=dan.a@test.fr&password=x", "a".repeat(64)))
        .send()
        .await;
    assert_eq!(anonymous.status, 403);
}

backend_test!(an_expired_session_leads_to_sign_in_then_back_to_the_page_asked);
async fn an_expired_session_leads_to_sign_in_then_back_to_the_page_asked(db: TestDb) {
    let (app, a, _, session) = console_as_dan_a(db).await;
    let asked = format!("/tableau-de-bord/{}", a.id);
    // 29 minutes idle: still open; 31 more: closed (idle timeout 30 min).
    app.clock.set(t0() + chrono::Duration::minutes(29));
    assert_eq!(app.get(&asked).header("cookie", &session).send().await.status, 200);
    app.clock.set(t0() + chrono::Duration::minutes(60));
    let expired = app.get(&asked).header("cookie", &session).send().await;
    assert_eq!(expired.status, 303);
    let location = expired.header("location").unwrap().to_string();
    assert_eq!(location, format!("/connexion?suivant=%2Ftableau-de-bord%2F{}&apres=expiration", a.id));
    let told = app.get(&location).send().await;
    assert!(told.text.contains("Votre session a expiré"), "{}", told.text);
    let back = post_sign_in(&app, "dan.a@test.fr", PASSWORD, &asked).await;
    assert_eq!((back.status, back.header("location")), (303, Some(asked.as_str())));
    // An absolute timeout too: active every 20 minutes, closed after 12 hours.
    let cookie = format!("entcp_session={}", set_cookie(&back, "entcp_session").unwrap());
    let mut at = t0() + chrono::Duration::minutes(60);
    while at < t0() + chrono::Duration::hours(13) {
        at += chrono::Duration::minutes(20);
        app.clock.set(at);
        let status = app.get("/compte").header("cookie", &cookie).send().await.status;
        let open = at < t0() + chrono::Duration::minutes(60) + chrono::Duration::hours(12);
        assert_eq!(status, if open { 200 } else { 303 }, "at {at}");
    }
    // Elsewhere than a local path, the way back is the home page.
    let outside = post_sign_in(&app, "dan.a@test.fr", PASSWORD, "//ailleurs.example/").await;
    assert_eq!(outside.header("location"), Some("/"));
    // A browser strips tabs and newlines: `/<TAB>/ailleurs.example/` would lead to another site.
    for hidden in ["/\t/ailleurs.example/", "/\n/ailleurs.example/", "/\r\n/ailleurs.example/"] {
        let outside = post_sign_in(&app, "dan.a@test.fr", PASSWORD, hidden).await;
        assert_eq!(outside.header("location"), Some("/"), "{hidden:?}");
    }
    let form = app.get("/connexion?suivant=/%09/ailleurs.example/").send().await;
    assert!(!form.text.contains("ailleurs.example"), "{}", form.text);
}

backend_test!(a_form_sent_after_the_session_expired_leads_back_to_its_page_and_says_why);
async fn a_form_sent_after_the_session_expired_leads_back_to_its_page_and_says_why(db: TestDb) {
    let (app, _, _, session) = console_as_dan_a(db).await;
    let form_page = get(&app, &session, "/ent/nouveau?recherche=Fresnes").await;
    assert_eq!(form_page.status, 200, "{}", form_page.text);
    let token = csrf_of(&form_page.text);
    app.clock.set(t0() + chrono::Duration::minutes(45));
    let send = |referer: &'static str| {
        let body = format!("_csrf={token}&nom=doisneau&etape=demander");
        app.post("/ent/nouveau")
            .header("cookie", &session)
            .header("host", "console.test")
            .header("referer", referer)
            .bytes("application/x-www-form-urlencoded", body)
    };
    // The page the form was on (its Referer) is the way back, and the sign-in page says why.
    let expired = send("http://console.test/ent/nouveau?recherche=Fresnes").send().await;
    assert_eq!(expired.status, 303, "{}", expired.text);
    let location = expired.header("location").unwrap().to_string();
    assert_eq!(location, "/connexion?suivant=%2Fent%2Fnouveau%3Frecherche%3DFresnes&apres=expiration-formulaire");
    let told = app.get(&location).send().await;
    assert!(
        told.text.contains("Votre session a expiré : le formulaire envoyé n&#x27;a pas été enregistré"),
        "{}",
        told.text
    );
    assert!(told.text.contains("nouveau?recherche=Fresnes\">"), "the way back in the form: {}", told.text);
    let back = post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/ent/nouveau?recherche=Fresnes").await;
    assert_eq!(back.header("location"), Some("/ent/nouveau?recherche=Fresnes"));
    // Another site's Referer is not followed; a form sent without any session says nothing of expiry.
    let foreign = send("http://ailleurs.example/ent/nouveau").send().await;
    assert_eq!(foreign.header("location"), Some("/connexion?apres=expiration-formulaire"));
    let anonymous = app
        .post("/ent/nouveau")
        .header("host", "console.test")
        .header("referer", "http://console.test/ent/nouveau")
        .bytes("application/x-www-form-urlencoded", "nom=x")
        .send()
        .await;
    assert_eq!(anonymous.header("location"), Some("/connexion?suivant=%2Fent%2Fnouveau"));
}

backend_test!(repeated_failures_lock_the_account_and_are_audited);
async fn repeated_failures_lock_the_account_and_are_audited(db: TestDb) {
    let (app, _, _) = console(db).await;
    for _ in 0..5 {
        let failed = post_sign_in(&app, "dan.a@test.fr", "mauvais mot de passe", "/").await;
        assert_eq!(failed.status, 401, "{}", failed.text);
        assert!(failed.text.contains("Adresse ou mot de passe incorrect"));
    }
    // Locked: even the right password is refused for a while.
    let locked = post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/").await;
    assert_eq!(locked.status, 429, "{}", locked.text);
    assert!(locked.header("retry-after").is_some());
    assert_eq!(common::audited(&app.store, "console.sign_in_failed").await, 5);
    app.clock.set(t0() + chrono::Duration::minutes(16));
    assert_eq!(post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/").await.status, 303, "the window slid");
}

backend_test!(sign_ins_fired_at_once_check_no_more_passwords_than_the_limit);
async fn sign_ins_fired_at_once_check_no_more_passwords_than_the_limit(db: TestDb) {
    let (app, _, _) = console(db).await;
    let name = app.backend;
    // Twenty wrong passwords at once against a limit of five: each attempt is counted before
    // its password is checked, so five are checked (401) and fifteen refused unchecked (429).
    let attempts = (0..20).map(|_| post_sign_in(&app, "dan.a@test.fr", "mauvais mot de passe", "/"));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts).await.iter().map(|r| r.status).collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 15), "{name}: {statuses:?}");
    let audited = |throttled: &'static str| {
        let sql = "SELECT COUNT(*) AS n FROM audit_log WHERE action = $1 AND summary LIKE $2";
        let store = app.store.clone();
        async move { common::count(&store, sql, &["console.sign_in_failed", throttled]).await }
    };
    assert_eq!(audited("%").await, 5, "{name}: one audit record per password checked");
    assert_eq!(audited("%\"throttled\":true%").await, 1, "{name}: the lockout is audited once");
    // Locked: the right password is refused too, unchecked.
    let locked = post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/").await;
    assert_eq!(locked.status, 429, "{name}: {}", locked.text);
    assert_eq!(locked.header("retry-after"), Some("900"), "{name}");
    assert!(locked.text.contains("Trop de tentatives"), "{name}");
}

backend_test!(sign_ins_and_a_few_typos_from_one_address_do_not_lock_it);
async fn sign_ins_and_a_few_typos_from_one_address_do_not_lock_it(db: TestDb) {
    let (app, _, _) = console(db).await;
    let name = app.backend;
    // A school behind one address: more successful sign-ins than the limit (5)…
    for i in 0..6 {
        let who = if i % 2 == 0 { "dan.a@test.fr" } else { "dan.b@test.fr" };
        assert_eq!(post_sign_in(&app, who, PASSWORD, "/").await.status, 303, "{name} {i}");
    }
    // …took their attempts back. Five typos of others there (an account's limit) lock only
    // those accounts, not the address its other people sign in from…
    let app = &app;
    let fail =
        |i: usize| async move { post_sign_in(app, &format!("personne{i}@test.fr"), "mauvais mot de passe", "/").await };
    for i in 0..5 {
        let failed = fail(i).await;
        assert_eq!(failed.status, 401, "{name} {i}: {}", failed.text);
    }
    assert_eq!(post_sign_in(app, "dan.a@test.fr", PASSWORD, "/").await.status, 303, "{name}: not locked");
    // …which fifty failures in the window lock (`max_failures_per_address`).
    for i in 5..50 {
        assert_eq!(fail(i).await.status, 401, "{name} {i}");
    }
    let locked = post_sign_in(app, "dan.a@test.fr", PASSWORD, "/").await;
    assert_eq!(locked.status, 429, "{name}: the address is locked after fifty failures");
}

backend_test!(a_sign_in_whose_attempt_cannot_be_counted_is_refused_unchecked);
async fn a_sign_in_whose_attempt_cannot_be_counted_is_refused_unchecked(db: TestDb) {
    let (app, _, _) = console(db).await;
    let name = app.backend;
    // The count cannot be written (as when the pool times out or SQLite stays busy).
    let fault = match app.store.backend() {
        entcp::store::Backend::Sqlite => vec![
            "CREATE TRIGGER auth_failures_down BEFORE INSERT ON auth_failures BEGIN SELECT RAISE(ABORT, 'panne'); END",
        ],
        entcp::store::Backend::Postgres => vec![
            "CREATE FUNCTION auth_failures_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'panne'; END $$",
            "CREATE TRIGGER auth_failures_down BEFORE INSERT ON auth_failures FOR EACH ROW EXECUTE FUNCTION auth_failures_down()",
        ],
    };
    for sql in fault {
        sqlx::query(sql).execute(app.store.pool()).await.unwrap();
    }
    // Even the right password opens no session: the attempt was never checked.
    let refused = post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/").await;
    assert!(refused.status >= 500, "{name}: {} {}", refused.status, refused.text);
    assert_eq!(set_cookie(&refused, "entcp_session"), None, "{name}");
    let failed = post_sign_in(&app, "dan.a@test.fr", "mauvais mot de passe", "/").await;
    assert!(failed.status >= 500, "{name}: {} {}", failed.status, failed.text);
    assert_eq!(common::audited(&app.store, "console.sign_in_failed").await, 0, "{name}: no password was checked");
}

backend_test!(a_password_change_ends_every_session_and_weak_passwords_are_refused);
async fn a_password_change_ends_every_session_and_weak_passwords_are_refused(db: TestDb) {
    let (app, _, _) = console(db).await;
    let first = sign_in(&app, "dan.a@test.fr").await;
    let second = sign_in(&app, "dan.a@test.fr").await;
    let page = app.get("/compte").header("cookie", &first).send().await;
    let change = |new: &str| {
        serde_urlencoded::to_string([
            ("_csrf", csrf_of(&page.text).as_str()),
            ("current", PASSWORD),
            ("password", new),
            ("confirmation", new),
        ])
        .unwrap()
    };
    let weak = post_body(&app, &first, "/compte/mot-de-passe", change("motdepasse123")).await;
    assert_eq!(weak.status, 422);
    assert!(weak.text.contains("trop courant"), "{}", weak.text);
    let done = post_body(&app, &first, "/compte/mot-de-passe", change("une toute autre phrase")).await;
    assert_eq!(done.status, 303, "{}", done.text);
    for session in [&first, &second] {
        assert_eq!(app.get("/compte").header("cookie", session).send().await.status, 303, "session ended");
    }
    assert_eq!(post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/").await.status, 401);
    assert_eq!(post_sign_in(&app, "dan.a@test.fr", "une toute autre phrase", "/").await.status, 303);
}

// Whoever held the old password (or a session) may have minted an API token: a new password,
// chosen on « Mon compte » or through a « mot de passe oublié » link, revokes them all.
backend_test!(a_new_password_from_the_account_page_or_a_reset_link_revokes_the_api_tokens);
async fn a_new_password_from_the_account_page_or_a_reset_link_revokes_the_api_tokens(db: TestDb) {
    let (app, _, _) = console(db).await;
    let name = app.backend;
    let user = entcp::identity::get_user(&app.store, "dan.a@test.fr").await.unwrap().unwrap();
    let mint = |label: &'static str| {
        let (store, id) = (app.store.clone(), user.id.clone());
        async move { entcp::identity::create_token(&store, &admin(), &id, label, None, t0()).await.unwrap().token }
    };
    let me = |token: String| {
        let app = &app;
        async move { app.get("/api/v1/me").bearer(&token).send().await.status }
    };
    let intruder = mint("intrus").await;
    assert_eq!(me(intruder.clone()).await, 200, "{name}");

    let session = sign_in(&app, "dan.a@test.fr").await;
    let page = app.get("/compte").header("cookie", &session).send().await;
    assert!(page.text.contains("vos jetons d&#x27;API révoqués") || page.text.contains("vos jetons d'API révoqués"));
    let new = "une toute autre phrase";
    let change = [("current", PASSWORD), ("password", new), ("confirmation", new)];
    let done = post_form(&app, &session, "/compte/mot-de-passe", &change).await;
    assert_eq!(done.status, 303, "{name}: {}", done.text);
    assert_eq!(me(intruder).await, 401, "{name}: the token minted before the change is revoked");

    let intruder = mint("intrus encore").await;
    assert_eq!(me(intruder.clone()).await, 200, "{name}");
    let link = forgotten_password_link(&app, "dan.a@test.fr").await;
    let again = "encore une autre phrase";
    let chosen = post_anonymous(&app, &link, &[("password", again), ("confirmation", again)]).await;
    assert_eq!(chosen.status, 303, "{name}: {}", chosen.text);
    assert_eq!(me(intruder).await, 401, "{name}: the token minted before the reset is revoked");
    let revoked = common::audit_summaries(&app.store, "users.password", &user.id).await;
    // The password an operator set first revoked nothing; the person's change revoked the
    // intruder's token and the account's own, the reset the intruder's second one.
    let counts: Vec<serde_json::Value> = revoked.iter().map(|s| s["tokens_revoked"].clone()).collect();
    assert_eq!(counts, [0, 2, 1], "{name}: {revoked:?}");
}

/// The value of attribute `name` of the first `<script … src="…dsfr.module.min.js"…>` of `html`
/// (tera writes `/` as `&#x2F;` in attributes).
fn dsfr_script_attribute(html: &str, name: &str) -> Option<String> {
    let tag = html.split("<script").find(|t| t.contains("dsfr.module.min.js"))?.split('>').next()?;
    let value = tag.split(&format!(" {name}=\"")).nth(1)?.split('"').next()?;
    Some(value.replace("&#x2F;", "/"))
}

backend_test!(the_state_theme_runs_the_dsfr_script_and_the_neutral_one_has_no_state_identity);
async fn the_state_theme_runs_the_dsfr_script_and_the_neutral_one_has_no_state_identity(db: TestDb) {
    use base64::Engine;
    use sha2::Digest;
    let store = db.store.clone();
    let etat = TestApp::builder(db).config(|c| c.console.theme = entcp::config::ConsoleTheme::Etat).build().await;
    let page = etat.get("/connexion").send().await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("fr-logo") && page.text.contains("dsfr.min.css"), "the State's block-mark");
    let src = dsfr_script_attribute(&page.text, "src").expect("the State theme links the DSFR script");
    assert!(page.text.contains("<script type=\"module\""), "an ES module");
    let integrity = dsfr_script_attribute(&page.text, "integrity").expect("with its integrity");
    let script = etat.get(&src).send().await;
    assert_eq!(script.status, 200);
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert!(script.bytes.len() > 10_000, "the vendored module, not a stub");
    let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&script.bytes));
    assert_eq!(integrity, format!("sha384-{digest}"), "the integrity is that of the bytes served");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self';"), "no inline script needed: {csp}");

    let neutre = TestApp::over(&store).build().await;
    let page = neutre.get("/connexion").send().await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(dsfr_script_attribute(&page.text, "src").is_none(), "no DSFR script in the neutral theme");
    assert!(!page.text.contains("fr-logo") && !page.text.contains("dsfr.min.css"), "no block-mark, no Marianne");
    assert!(page.text.contains("neutre.css"));
}

/// Asks for a password link through « mot de passe oublié » and returns its path
/// (`/mot-de-passe/…`), read from the mail queued to `email`.
async fn forgotten_password_link(app: &TestApp, email: &str) -> String {
    let sent = post_anonymous(app, "/mot-de-passe-oublie", &[("email", email)]).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let mails = common::queued_mails(&app.store, "console").await;
    let mail = mails.iter().rev().find(|m| m.recipients.contains(email)).expect("a reset mail");
    let link = mail.context["link"].as_str().expect("a link");
    link[link.find("/mot-de-passe/").expect("a password link")..].to_string()
}

// « Mot de passe oublié », then the account is deactivated before the link is opened: the
// link is dead exactly like an expired one (same 404 page, to open it and to post it), and
// the password is not changed (the page said it was, the sign-in then failed).
backend_test!(a_forgotten_password_link_of_an_account_deactivated_since_is_dead_like_an_expired_one);
async fn a_forgotten_password_link_of_an_account_deactivated_since_is_dead_like_an_expired_one(db: TestDb) {
    let (app, _, _) = console(db).await;
    let deactivated = forgotten_password_link(&app, "dan.a@test.fr").await;
    let expiring = forgotten_password_link(&app, "dan.b@test.fr").await;
    let user = entcp::identity::get_user(&app.store, "dan.a@test.fr").await.unwrap().unwrap();
    let off = entcp::identity::UserPatch { active: Some(false), ..Default::default() };
    entcp::identity::update_user(&app.store, &admin(), &user.id, user.version, off, t0()).await.unwrap();

    let new = "une toute autre phrase";
    let fields = [("password", new), ("confirmation", new)];
    let dead = |resp: &common::Resp| (resp.status, resp.text.contains("est plus valable : demandez-en un nouveau"));
    let opened = app.get(&deactivated).send().await;
    let posted = post_anonymous(&app, &deactivated, &fields).await;
    app.clock.set(t0() + chrono::Duration::minutes(61));
    let expired_opened = app.get(&expiring).send().await;
    let expired_posted = post_anonymous(&app, &expiring, &fields).await;
    assert_eq!(dead(&expired_opened), (404, true), "{}", expired_opened.text);
    assert_eq!(dead(&expired_posted), (404, true), "{}", expired_posted.text);
    assert_eq!(dead(&opened), dead(&expired_opened), "{}", opened.text);
    assert_eq!(dead(&posted), dead(&expired_posted), "{}", posted.text);

    // Active again, the account still has its old password, the link stays dead.
    let current = entcp::identity::get_user(&app.store, "dan.a@test.fr").await.unwrap().unwrap();
    let on = entcp::identity::UserPatch { active: Some(true), ..Default::default() };
    entcp::identity::update_user(&app.store, &admin(), &user.id, current.version, on, t0()).await.unwrap();
    assert_eq!(dead(&app.get(&deactivated).send().await), (404, true));
    assert_eq!(post_sign_in(&app, "dan.a@test.fr", new, "/").await.status, 401);
    assert_eq!(post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/").await.status, 303);
}

/// The path of every reset link mailed to `email` so far, oldest first.
async fn reset_links_mailed(app: &TestApp, email: &str) -> Vec<String> {
    let mails = common::queued_mails(&app.store, "console").await;
    let links = mails.iter().filter(|m| m.recipients.contains(email) && m.context["event"] == "reset");
    links
        .map(|m| {
            let link = m.context["link"].as_str().expect("a link");
            link[link.find("/mot-de-passe/").expect("a password link")..].to_string()
        })
        .collect()
}

/// A page without its per-visitor secrets (the form cookie's token: 64 hex digits).
fn without_tokens(text: &str) -> String {
    let token = |part: &str| part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit());
    text.split('"').map(|part| if token(part) { "" } else { part }).collect::<Vec<_>>().join("\"")
}

// « Mot de passe oublié » asked six times for one account from six addresses (no address
// limit reached): five links are mailed (the account's limit), the sixth request is answered
// exactly as for an address no account has; each new link spends the one before, so only the
// last one mailed opens the form.
backend_test!(forgotten_password_requests_are_limited_per_account_silently_and_only_the_last_link_works);
async fn forgotten_password_requests_are_limited_per_account_silently_and_only_the_last_link_works(db: TestDb) {
    let app = behind_proxy(db).await;
    let name = app.backend;
    let ask = |from: String, email: &'static str| {
        let app = &app;
        async move { post_anonymous_from(app, &from, "/mot-de-passe-oublie", &[("email", email)]).await }
    };
    let mut answers = vec![];
    for i in 0..6 {
        let known = ask(format!("203.0.113.{i}"), DAN_PROXIED).await;
        let unknown = ask(format!("198.51.100.{i}"), "personne@test.fr").await;
        assert_eq!((known.status, unknown.status), (200, 200), "{name} {i}: {}", known.text);
        assert!(known.text.contains("Si un compte actif a cette adresse"), "{name} {i}: {}", known.text);
        assert_eq!(without_tokens(&known.text), without_tokens(&unknown.text), "{name} {i}: nothing told apart");
        answers.push(known);
    }
    let links = reset_links_mailed(&app, DAN_PROXIED).await;
    assert_eq!(links.len(), 5, "{name}: the sixth request sent nothing");
    for (i, link) in links.iter().enumerate() {
        let opened = app.get(link).send().await;
        let expected = if i == links.len() - 1 { 200 } else { 404 };
        assert_eq!(opened.status, expected, "{name}: link {i}: {}", opened.text);
    }
    // The window slid: the owner gets a link again.
    app.clock.set(t0() + chrono::Duration::minutes(16));
    assert_eq!(ask("203.0.113.9".into(), DAN_PROXIED).await.status, 200, "{name}");
    assert_eq!(reset_links_mailed(&app, DAN_PROXIED).await.len(), 6, "{name}");
}

// Someone keeps an account locked out with wrong passwords from many addresses: the owner
// asks for a link, chooses a password through it and signs in at once (the failures of
// others no longer count against the account).
backend_test!(a_password_chosen_through_a_reset_link_lifts_the_lockout_others_failures_put_on_the_account);
async fn a_password_chosen_through_a_reset_link_lifts_the_lockout_others_failures_put_on_the_account(db: TestDb) {
    let app = behind_proxy(db).await;
    let name = app.backend;
    let sign_in_from = |from: &'static str, password: &'static str| {
        let app = &app;
        async move { post_anonymous_from(app, from, "/connexion", &[("email", DAN_PROXIED), ("password", password)]).await }
    };
    for from in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"] {
        assert_eq!(sign_in_from(from, "mauvais mot de passe").await.status, 401, "{name}");
    }
    let owner = "192.0.2.10";
    assert_eq!(sign_in_from(owner, PASSWORD).await.status, 429, "{name}: the account is locked");

    let sent = post_anonymous_from(&app, owner, "/mot-de-passe-oublie", &[("email", DAN_PROXIED)]).await;
    assert_eq!(sent.status, 200, "{name}: {}", sent.text);
    let link = reset_links_mailed(&app, DAN_PROXIED).await.pop().expect("a reset link");
    let new = "une toute autre phrase";
    let chosen = post_anonymous_from(&app, owner, &link, &[("password", new), ("confirmation", new)]).await;
    assert_eq!(chosen.status, 303, "{name}: {}", chosen.text);
    let back = sign_in_from(owner, "une toute autre phrase").await;
    assert_eq!(back.status, 303, "{name}: {}", back.text);
    // The account throttle still stops guessing afterwards.
    for from in ["203.0.113.6", "203.0.113.7", "203.0.113.8", "203.0.113.9", "203.0.113.10"] {
        assert_eq!(sign_in_from(from, "mauvais mot de passe").await.status, 401, "{name}");
    }
    assert_eq!(sign_in_from(owner, "une toute autre phrase").await.status, 429, "{name}");
}

// A session left open is no way around the sign-in throttle: the current password asked by
// the password change counts like a sign-in's, and past the limit even the right one is
// refused unchecked (the account is locked for sign-in too).
backend_test!(wrong_current_passwords_on_the_account_page_count_against_the_sign_in_throttle);
async fn wrong_current_passwords_on_the_account_page_count_against_the_sign_in_throttle(db: TestDb) {
    let (app, _, _) = console(db).await;
    let name = app.backend;
    let session = sign_in(&app, "dan.a@test.fr").await;
    let change = |current: &'static str| {
        let (app, session) = (&app, &session);
        let new = "une toute autre phrase";
        async move {
            let fields = [("current", current), ("password", new), ("confirmation", new)];
            post_form(app, session, "/compte/mot-de-passe", &fields).await
        }
    };
    for i in 0..5 {
        let wrong = change("mauvais mot de passe").await;
        assert_eq!(wrong.status, 422, "{name} {i}: {}", wrong.text);
        assert!(wrong.text.contains("Le mot de passe actuel est incorrect."), "{name} {i}");
    }
    let throttled = change(PASSWORD).await;
    assert_eq!(throttled.status, 429, "{name}: {}", throttled.text);
    assert!(throttled.text.contains("Trop de tentatives"), "{name}: {}", throttled.text);
    assert!(throttled.header("retry-after").is_some(), "{name}");
    assert_eq!(post_sign_in(&app, "dan.a@test.fr", PASSWORD, "/").await.status, 429, "{name}: locked");
    assert!(password::check_password(&app.store, "dan.a@test.fr", PASSWORD).await.unwrap().is_some(), "{name}");

    // The window slid: the right current password changes it, and clears the account's count.
    app.clock.set(t0() + chrono::Duration::minutes(16));
    let session = sign_in(&app, "dan.a@test.fr").await;
    let fields =
        [("current", PASSWORD), ("password", "une toute autre phrase"), ("confirmation", "une toute autre phrase")];
    let done = post_form(&app, &session, "/compte/mot-de-passe", &fields).await;
    assert_eq!(done.status, 303, "{name}: {}", done.text);
    assert_eq!(post_sign_in(&app, "dan.a@test.fr", "une toute autre phrase", "/").await.status, 303, "{name}");
}

/// `serve --demo` in process: the demo data and persons, all with [`PASSWORD`].
pub(crate) async fn demo_app(db: TestDb) -> TestApp {
    let clock = std::sync::Arc::new(entcp::clock::FixedClock::new(t0()));
    let config =
        entcp::config::Config { data_dir: tempfile::tempdir().unwrap().keep(), ..entcp::config::Config::default() };
    let state = common::app::app_state(db.store.clone(), config, clock.clone());
    entcp::demo::load(&state).await.unwrap();
    entcp::demo::personas(&state, PASSWORD).await.unwrap();
    TestApp::builder(db).clock(clock).build().await
}

backend_test!(an_organisation_page_links_only_the_covering_organisations_the_viewer_may_open);
/// The demo école's head reads her school's page: the académie, the DSDEN and the commune
/// that cover it are named, not linked (their pages answer 404 to her); the DAN, who may
/// open them, gets the links.
async fn an_organisation_page_links_only_the_covering_organisations_the_viewer_may_open(db: TestDb) {
    let app = demo_app(db).await;
    let school = entcp::registry::resolve_org(&app.store, "0940176F").await.unwrap();
    let academie = entcp::registry::resolve_org(&app.store, "academie:24").await.unwrap();
    let commune = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    let page = format!("/organisations/{}", school.id);
    let head = sign_in(&app, entcp::demo::PERSONAS[2].0).await;
    let seen = get(&app, &head, &page).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    let kind = format!("<td>{}", escaped("école élémentaire (ECOLE DE NIVEAU ELEMENTAIRE)"));
    assert!(seen.text.contains(&kind), "the school type in French: {}", seen.text);
    // The directory says « Ecole élémentaire … »: the page shows its name in French typography.
    assert_eq!(school.name, "Ecole élémentaire Robert Doisneau", "the registry keeps the name as imported");
    let shown = format!("<h1>{}</h1>", escaped("École élémentaire Robert Doisneau"));
    assert!(seen.text.contains(&shown), "the name shown: {}", seen.text);
    for parent in [&academie, &commune] {
        assert!(seen.text.contains(&escaped(&parent.name)), "{} named: {}", parent.name, seen.text);
        let link = format!("href=\"/organisations/{}\"", parent.id);
        assert!(!seen.text.contains(&link), "{} not linked: {}", parent.name, seen.text);
        assert_eq!(get(&app, &head, &format!("/organisations/{}", parent.id)).await.status, 404);
    }
    let dan = sign_in(&app, entcp::demo::PERSONAS[0].0).await;
    let seen = get(&app, &dan, &page).await;
    for parent in [&academie, &commune] {
        assert!(seen.text.contains(&format!("href=\"/organisations/{}\"", parent.id)), "{}", seen.text);
    }
}

backend_test!(an_epci_page_links_only_the_member_communes_the_viewer_may_open);
/// An EPCI of the Val-de-Marne with a member commune of the académie of Versailles
/// (Boulogne-Billancourt): the DAN of Créteil reads the EPCI and Fresnes, not Boulogne, which
/// is named in « Communes membres » without a link (its page answers 404 to the DAN).
async fn an_epci_page_links_only_the_member_communes_the_viewer_may_open(db: TestDb) {
    use entcp::kernel::roles::OrgKind;
    let name = db.name;
    let app = demo_app(db).await;
    let boulogne = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;\
                    Code_departement;Code_academie\n0929901M;Ecole de Boulogne;Ecole;92012;092;25\n";
    common::fixtures::annuaire(&app.store, boulogne).await;
    let fresnes = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    let boulogne = entcp::registry::resolve_org(&app.store, "commune:92012").await.unwrap();
    let siren = common::fixtures::group_siren(94001);
    let epci = common::fixtures::new_org(&app.store, OrgKind::Epci, "EPT des deux académies", &siren, Some("94")).await;
    for commune in [&fresnes, &boulogne] {
        entcp::registry::manage::set_member(&app.store, &admin(), &epci, commune, false, t0()).await.unwrap();
    }
    let dan = sign_in(&app, entcp::demo::PERSONAS[0].0).await;
    let seen = get(&app, &dan, &format!("/organisations/{}", epci.id)).await;
    assert_eq!(seen.status, 200, "{name}: {}", seen.text);
    let link = |org: &Org| format!("href=\"/organisations/{}\"", org.id);
    assert!(seen.text.contains(&link(&fresnes)), "{name}: Fresnes linked: {}", seen.text);
    assert!(seen.text.contains(&escaped(&boulogne.name)), "{name}: Boulogne named: {}", seen.text);
    assert!(!seen.text.contains(&link(&boulogne)), "{name}: Boulogne not linked: {}", seen.text);
    assert_eq!(get(&app, &dan, &format!("/organisations/{}", boulogne.id)).await.status, 404, "{name}");
}

backend_test!(a_school_s_head_reads_the_ent_serving_the_school_in_the_list_and_through_the_api_without_changing_it);
/// The demo école's head reads, under `/ent` and through the API alike, the ENT of her
/// commune that serves her school (the one she opens tickets on), without a form to change it;
/// the head of a school of another commune reads neither.
async fn a_school_s_head_reads_the_ent_serving_the_school_in_the_list_and_through_the_api_without_changing_it(
    db: TestDb,
) {
    let name = db.name;
    let app = demo_app(db).await;
    let head = sign_in(&app, entcp::demo::PERSONAS[2].0).await;
    let list = get(&app, &head, "/ent").await;
    assert_eq!(list.status, 200, "{name}: {}", list.text);
    let listed = list.text.replace("&#x2F;", "/");
    assert!(listed.contains("href=\"/ent/fresnes\""), "{name}: the commune's ENT listed: {listed}");
    let page = get(&app, &head, "/ent/fresnes").await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    assert!(!page.text.contains("id=\"vers-") && !page.text.contains("id=\"ajouter-service\""), "{name}: read only");
    let slugs = |body: &serde_json::Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_string()).collect()
    };
    let role = Role::ChefEtablissement;
    let api = app.client(&common::token_for(&app.store, "ce.api@test.fr", role, Some("0940176F")).await);
    let listed = api.get("/api/v1/tenants").send().await;
    assert!(slugs(&listed.body).contains(&"fresnes".to_string()), "{name}: {}", listed.text);
    assert_eq!(api.get("/api/v1/tenants/fresnes").send().await.status, 200, "{name}");
    let moved = api.post("/api/v1/tenants/fresnes/transition").json(&serde_json::json!({ "to": "provisioning" }));
    assert_eq!(moved.send().await.status, 403, "{name}: a read, not a change");
    // The head of an école of Vitry-sur-Seine: not her commune's ENT.
    let vitry: String = sqlx::query_scalar(
        "SELECT code FROM orgs WHERE kind = 'etablissement' AND commune_code = '94081' ORDER BY code LIMIT 1",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let other = app.client(&common::token_for(&app.store, "ce.vitry@test.fr", role, Some(&vitry)).await);
    let listed = other.get("/api/v1/tenants").send().await;
    assert!(!slugs(&listed.body).contains(&"fresnes".to_string()), "{name}: {}", listed.text);
    assert_eq!(other.get("/api/v1/tenants/fresnes").send().await.status, 404, "{name}");
}

// RGAA 8.6, 11.10, 7.5: a refused sign-in, password change or new password is announced
// (title, one focused alert) and each error sits beside its field, linked from the summary.
backend_test!(refused_sign_in_and_password_forms_are_announced_and_each_error_is_beside_its_field);
async fn refused_sign_in_and_password_forms_are_announced_and_each_error_is_beside_its_field(db: TestDb) {
    let (app, _, _) = console(db).await;
    let name = app.backend;
    let wrong = post_sign_in(&app, "dan.a@test.fr", "mauvais mot de passe", "/").await;
    assert_eq!(wrong.status, 401, "{name}");
    assert_refusal_announced(&wrong);
    assert!(wrong.text.contains("<title>Erreur : Connexion — "), "{name}: {}", wrong.text);
    assert!(wrong.text.contains("Mot de passe (obligatoire)"), "{name}: required said in the label");

    let session = sign_in(&app, "dan.a@test.fr").await;
    let account = get(&app, &session, "/compte").await;
    assert_eq!(account.status, 200, "{name}: {}", account.text);
    let new = "une toute autre phrase";
    let wrong = post_form(
        &app,
        &session,
        "/compte/mot-de-passe",
        &[("current", "non"), ("password", new), ("confirmation", new)],
    )
    .await;
    assert_eq!(wrong.status, 422, "{name}");
    assert_refusal_announced(&wrong);
    let links = summary_links(&wrong.text);
    assert_eq!(
        links,
        [("current".to_string(), "Changer de mot de passe : Le mot de passe actuel est incorrect.".to_string())],
        "{name}: the form named"
    );
    assert!(wrong.text.contains("id=\"current\" name=\"current\" value=\"\" autocomplete=\"current-password\" required aria-invalid=\"true\" aria-describedby=\"current-erreur\""), "{name}: {}", wrong.text);
    assert!(
        !wrong.text.contains(
            "id=\"token-current\" name=\"current\" value=\"\" autocomplete=\"current-password\" required aria-invalid"
        ),
        "{name}: not the token form's"
    );
    let differ = post_form(
        &app,
        &session,
        "/compte/mot-de-passe",
        &[("current", PASSWORD), ("password", new), ("confirmation", "autre")],
    )
    .await;
    assert_refusal_announced(&differ);
    assert_eq!(summary_links(&differ.text)[0].0, "confirmation", "{name}");
    assert!(
        differ
            .text
            .contains("<p class=\"fr-error-text\" id=\"confirmation-erreur\">Les deux mots de passe diffèrent.</p>"),
        "{name}: {}",
        differ.text
    );
    let token = post_form(
        &app,
        &session,
        "/compte/jetons",
        &[("name", "Export"), ("current", PASSWORD), ("expires", "demain")],
    )
    .await;
    assert_refusal_announced(&token);
    assert_eq!(summary_links(&token.text)[0].0, "token-expires", "{name}: {}", token.text);

    let link = forgotten_password_link(&app, "dan.b@test.fr").await;
    let differ = post_anonymous(&app, &link, &[("password", new), ("confirmation", "une autre phrase")]).await;
    assert_eq!(differ.status, 422, "{name}");
    assert_refusal_announced(&differ);
    assert!(differ.text.contains("href=\"#confirmation\""), "{name}: {}", differ.text);
    assert!(differ.text.contains("id=\"confirmation\" name=\"confirmation\" type=\"password\" autocomplete=\"new-password\" required minlength=\"12\" aria-invalid=\"true\" aria-describedby=\"confirmation-erreur\""), "{name}: {}", differ.text);
    assert!(!differ.text.contains("aria-describedby=\"password-erreur\""), "{name}: not on the first field");
}

// RGAA 12.x, 8.x: a browser asking an address no page answers, or opening a form's address
// (a reload after a refusal), gets the console's error page, in the shell of the person signed
// in, as every error page of the console; the API keeps its problem+json answers.
backend_test!(a_browser_gets_the_console_s_error_pages_in_its_shell_and_the_api_its_problems);
async fn a_browser_gets_the_console_s_error_pages_in_its_shell_and_the_api_its_problems(db: TestDb) {
    let (app, _, b, session) = console_as_dan_a(db).await;
    let name = app.backend;
    let browser =
        |path: &str| app.get(path).header("accept", "text/html,application/xhtml+xml;q=0.9").header("cookie", &session);
    let html = |resp: &common::Resp| resp.header("content-type").unwrap_or("").starts_with("text/html");
    let json = |resp: &common::Resp| resp.header("content-type") == Some("application/problem+json");
    let shell = |resp: &common::Resp| resp.text.contains("Se déconnecter") && resp.text.contains("id=\"navigation\"");

    let unknown = browser("/nexistepas").send().await;
    assert_eq!(unknown.status, 404, "{name}");
    assert!(html(&unknown) && shell(&unknown), "{name}: {}", unknown.text);
    assert!(unknown.text.contains("<title>Erreur : Page introuvable — "), "{name}: {}", unknown.text);
    assert!(unknown.header("content-security-policy").is_some_and(|csp| csp.contains("script-src 'self'")), "{name}");
    let reload = browser("/compte/mot-de-passe").send().await;
    assert_eq!(reload.status, 405, "{name}");
    assert!(html(&reload) && shell(&reload) && reload.text.contains("formulaire"), "{name}: {}", reload.text);
    assert_eq!(reload.header("allow"), Some("POST"), "{name}: a 405 names the methods the address takes");
    let anonymous = app.get("/nexistepas").header("accept", "text/html").send().await;
    assert!(html(&anonymous) && !shell(&anonymous) && anonymous.text.contains("Page introuvable"), "{name}");

    for api in [app.get("/nexistepas"), app.get("/api/v1/nexistepas").header("accept", "text/html")] {
        let answered = api.send().await;
        assert_eq!(answered.status, 404, "{name}");
        assert!(json(&answered), "{name}: the API's problem: {}", answered.text);
    }
    let api = app.get("/compte/mot-de-passe").header("accept", "application/json").send().await;
    assert!(api.status == 405 && json(&api), "{name}: {}", api.text);
    assert_eq!(api.header("allow"), Some("POST"), "{name}");

    // A page's own error (out of scope) keeps the shell too.
    let other = get(&app, &session, &format!("/tableau-de-bord/{}", b.id)).await;
    assert_eq!(other.status, 404, "{name}");
    assert!(shell(&other), "{name}: the menu, the account and « Se déconnecter »: {}", other.text);
}

// Loi 2005-102 art. 47: the accessibility declaration, public, linked from every page's footer,
// states the console's state honestly and follows the RGAA model's parts.
backend_test!(the_accessibility_declaration_is_public_and_linked_from_every_page_s_footer);
async fn the_accessibility_declaration_is_public_and_linked_from_every_page_s_footer(db: TestDb) {
    let (app, _, _, session) = console_as_dan_a(db).await;
    let name = app.backend;
    let link = "<a class=\"fr-footer__bottom-link\" href=\"/accessibilite\" id=\"lien-accessibilite\">Accessibilité : non conforme</a>";
    for page in [app.get("/connexion").send().await, get(&app, &session, "/").await] {
        assert!(page.text.contains(link), "{name}: {}", page.text);
    }
    let declaration = app.get("/accessibilite").send().await;
    assert_eq!(declaration.status, 200, "{name}: no sign-in needed: {}", declaration.text);
    for part in [
        "<h1>Déclaration d'accessibilité</h1>",
        "État de conformité",
        "<strong>non conforme</strong>",
        "Contenus non accessibles",
        "Établissement de cette déclaration",
        "le 4 décembre 2026",
        "Technologies utilisées",
        "Environnement de test",
        "Retour d'information et contact",
        "Voies de recours",
        "Défenseur des droits",
    ] {
        assert!(declaration.text.contains(part), "{name}: {part}: {}", declaration.text);
    }
    let signed = get(&app, &session, "/accessibilite").await;
    assert!(signed.text.contains("Se déconnecter"), "{name}: in the person's shell");
}

// RGAA 8.6, 12.x: a list's title says its search and page; the menu marks the list a record's
// page belongs to; a table that scrolls is a named region the keyboard reaches.
backend_test!(list_titles_say_their_page_and_search_and_the_menu_marks_a_record_s_list);
async fn list_titles_say_their_page_and_search_and_the_menu_marks_a_record_s_list(db: TestDb) {
    let (app, a, _, session) = console_as_dan_a(db).await;
    let name = app.backend;
    let second = page_showing(&app, &session, "/organisations?page=2&taille=10", "<title>").await;
    assert!(second.text.contains("<title>Organisations (page 2 sur "), "{name}: {}", &second.text[..600]);
    let searched = page_showing(&app, &session, "/organisations?q=lyc", "<title>").await;
    assert!(searched.text.contains("<title>Organisations (recherche « lyc »"), "{name}: {}", &searched.text[..600]);
    let first = page_showing(&app, &session, "/organisations", "<title>").await;
    assert!(first.text.contains("<title>Organisations — "), "{name}: the first page, unfiltered, as is");
    assert!(first.text.contains("tabindex=\"0\" role=\"region\" aria-label=\""), "{name}: the table's box");
    let record = page_showing(&app, &session, &format!("/organisations/{}", a.id), &a.name).await;
    let current = "href=\"&#x2F;organisations\" aria-current=\"page\"";
    assert!(record.text.contains(current), "{name}: {}", record.text);
    let home = page_showing(&app, &session, "/", "<title>").await;
    assert!(home.text.contains("role=\"region\" aria-label=\"Établissements par département\""), "{name}");
}
