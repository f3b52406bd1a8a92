//! « Notifications » and « Mon compte » in process: what awaits each person, scoped
//! like the lists it links to; the e-mails a person chooses to receive.

use crate::common::t0;
use crate::common::{self, admin, TestApp, TestDb};
use crate::console::{add_person, page_showing, sign_in, PASSWORD};
use crate::console_conventions::{fresnes, DAN, DIRECTEUR, MAIRIE, VITRY};
use crate::console_groupements::{open_groupement, scene_app, MAIRIES};
use crate::console_tickets::{app, follow, get, open_ticket, post_form, version_of, N1, OTHER_N1, USAGER};
use entcp::identity;
use entcp::kernel::roles::Role;
use entcp::notify::preferences::{self, Category};
use entcp::notify::Notice;
use serde_json::json;

backend_test!(the_notification_centre_lists_what_awaits_each_person_and_the_header_counts_it);
async fn the_notification_centre_lists_what_awaits_each_person_and_the_header_counts_it(db: TestDb) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let n1 = sign_in(&app, N1).await;
    let quiet = get(&app, &n1, "/notifications").await;
    assert!(quiet.text.contains("Rien ne vous attend"), "{}", quiet.text);
    assert_eq!(get(&app, &n1, "/notifications/compte").await.text, "");

    // A new ticket: to take for the commune's N1, each item a link to the ticket.
    let reference = open_ticket(&app, &usager).await;
    let page = get(&app, &n1, "/notifications").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let to_take = &page.text[page.text.find("id=\"a-prendre\"").expect("the tickets to take")..];
    assert!(to_take.contains(&format!("href=\"&#x2F;tickets&#x2F;{reference}\"")), "{to_take}");
    assert_eq!(get(&app, &n1, "/notifications/compte").await.text, " (1)");
    assert!(page.text.contains("hx-get=\"/notifications/compte\""), "the header loads the count");
    // Not for another commune's N1, nor for the requester yet.
    let other = sign_in(&app, OTHER_N1).await;
    assert!(!get(&app, &other, "/notifications").await.text.contains(&reference));
    assert!(!get(&app, &usager, "/notifications").await.text.contains(&reference));

    // Taken by the N1: assigned to them, no longer to take.
    let path = format!("/tickets/{reference}");
    let ticket = get(&app, &n1, &path).await;
    follow(
        &app,
        &n1,
        &post_form(&app, &n1, &format!("{path}/affectation"), &[("version", &version_of(&ticket.text))]).await,
    )
    .await;
    let page = get(&app, &n1, "/notifications").await;
    assert!(page.text.contains("id=\"affectes\"") && !page.text.contains("id=\"a-prendre\""), "{}", page.text);

    // Paused for the requester: waiting for the usager's answer.
    let ticket = get(&app, &n1, &path).await;
    let pause = [("version", version_of(&ticket.text)), ("vers", "waiting_requester".into())];
    let pause: Vec<(&str, &str)> = pause.iter().map(|(k, v)| (*k, v.as_str())).collect();
    follow(&app, &n1, &post_form(&app, &n1, &format!("{path}/statut"), &pause).await).await;
    let page = get(&app, &usager, "/notifications").await;
    let waiting = &page.text[page.text.find("id=\"vos-tickets\"").expect("the usager's tickets")..];
    assert!(waiting.contains(&reference), "{waiting}");
}

/// The secret between the markers of the one-time warning.
fn secret_of(html: &str) -> String {
    let at = html.find("id=\"secret-jeton\"").expect("the one-time secret");
    let code = &html[at..];
    let start = code.find("<code>").expect("the secret") + 6;
    code[start..].split('<').next().unwrap().to_string()
}

backend_test!(a_person_creates_sees_once_uses_and_revokes_their_own_api_token_from_their_account);
async fn a_person_creates_sees_once_uses_and_revokes_their_own_api_token_from_their_account(db: TestDb) {
    let app = app(db).await;
    let n1 = sign_in(&app, N1).await;
    page_showing(&app, &n1, "/compte", "Vos rôles").await;

    // A token outlives the session: it takes the current password, checked as at sign-in.
    let form = [("name", "Script de suivi"), ("expires", "2099-12-31")];
    let page = page_showing(&app, &n1, "/compte", "id=\"token-current\"").await;
    assert!(page.text.contains("autocomplete=\"current-password\""), "{}", page.text);
    for current in ["", "pas le bon"] {
        let refused = post_form(&app, &n1, "/compte/jetons", &[form[0], form[1], ("current", current)]).await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert!(refused.text.contains("Le mot de passe actuel est incorrect."), "{}", refused.text);
        assert!(!refused.text.contains("secret-jeton"), "no token: {}", refused.text);
    }
    let created = post_form(&app, &n1, "/compte/jetons", &[form[0], form[1], ("current", PASSWORD)]).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let secret = secret_of(&created.text);
    assert!(secret.len() > 20, "{secret}");
    assert_eq!(app.get("/api/v1/me").bearer(&secret).send().await.status, 200);

    // Listed afterwards without its secret.
    let page = get(&app, &n1, "/compte").await;
    assert!(page.text.contains("Script de suivi"), "{}", page.text);
    // Its moments in French at the hour in Paris (t0 is 8 h UTC, 10 h in Paris in September),
    // its « Révoquer » button named after it for screen readers.
    assert!(page.text.contains("<td>1er septembre 2026 à 10 h 00</td>"), "{}", page.text);
    assert!(page.text.contains("<td>31 décembre 2099"), "{}", page.text);
    assert!(!page.text.contains(" UTC<"), "{}", page.text);
    assert!(page.text.contains("Révoquer<span class=\"fr-sr-only\"> le jeton Script de suivi</span>"), "{}", page.text);
    assert!(!page.text.contains(&secret) && !page.text.contains("secret-jeton"), "the secret is shown once only");

    // Another user's token: not theirs to revoke.
    let other = identity::get_user(&app.store, OTHER_N1).await.unwrap().unwrap();
    let theirs =
        identity::create_token(&app.store, &identity::Actor::cli(), &other.id, "autre", None, t0()).await.unwrap();
    let refused = post_form(&app, &n1, &format!("/compte/jetons/{}/revoquer", theirs.info.id), &[]).await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert_eq!(app.get("/api/v1/me").bearer(&theirs.token).send().await.status, 200);

    // Revoked: the API refuses it.
    let own = identity::list_tokens(&app.store, Some(&identity::get_user(&app.store, N1).await.unwrap().unwrap().id))
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "Script de suivi")
        .unwrap();
    let revoked = post_form(&app, &n1, &format!("/compte/jetons/{}/revoquer", own.id), &[]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.text.contains("révoqué"), "{}", revoked.text);
    assert_eq!(app.get("/api/v1/me").bearer(&secret).send().await.status, 401);
}

/// An ID token as the console keeps it for a session (verified when kept; its signature is
/// not read again): only its payload, `claims`, matters here.
pub(crate) fn kept_id_token(claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let encode = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!("{}.{}.c2lnbmF0dXJl", encode(br#"{"alg":"RS256"}"#), encode(claims.to_string().as_bytes()))
}

// Without a password, a token wants an authentication at the identity provider less than 15
// minutes old by the provider's own word: the `auth_time` of the ID token the session keeps,
// not the moment the session opened (a sign-in through the provider may be silent).
backend_test!(a_person_without_a_password_creates_a_token_only_soon_after_the_provider_authenticated_them);
async fn a_person_without_a_password_creates_a_token_only_soon_after_the_provider_authenticated_them(db: TestDb) {
    let mut app = app(db).await;
    // Signed in through the identity provider: no password of their own to type again.
    app.add_user("sso@fresnes.fr", Role::SupportN1, Some("commune:94034")).await;
    let user = identity::get_user(&app.store, "sso@fresnes.fr").await.unwrap().unwrap();
    let secret = identity::sessions::open(&app.store, &user.id, "127.0.0.1", "oidc", None, t0()).await.unwrap();
    let sso = format!("entcp_session={secret}");
    let tokens = || async { identity::list_tokens(&app.store, Some(&user.id)).await.unwrap().len() };
    let before = tokens().await;
    let keep = |auth_time: serde_json::Value| {
        let (store, hash) = (app.store.clone(), identity::hash_token(&secret));
        async move {
            sqlx::query("DELETE FROM console_oidc_sessions WHERE session_hash = $1")
                .bind(&hash)
                .execute(store.pool())
                .await
                .unwrap();
            let token = kept_id_token(json!({ "sub": "sso", "auth_time": auth_time }));
            sqlx::query("INSERT INTO console_oidc_sessions (session_hash, id_token) VALUES ($1, $2)")
                .bind(&hash)
                .bind(token)
                .execute(store.pool())
                .await
                .unwrap();
        }
    };

    // A session just opened, but no authentication the provider dated: refused.
    let page = page_showing(&app, &sso, "/compte", "id=\"token-recent\"").await;
    assert!(!page.text.contains("id=\"token-current\""), "{}", page.text);
    let refused = post_form(&app, &sso, "/compte/jetons", &[("name", "Export")]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("Confirmez votre identité auprès du fournisseur d&#x27;identité"),
        "{}",
        refused.text
    );
    // A silent sign-in: the provider's session dates from three hours before the console's.
    keep(json!((t0() - chrono::Duration::hours(3)).timestamp())).await;
    let refused = post_form(&app, &sso, "/compte/jetons", &[("name", "Export")]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(tokens().await, before, "no token");

    // Authenticated by the provider a minute ago: the page says so and the token is created.
    keep(json!((t0() - chrono::Duration::minutes(1)).timestamp())).await;
    page_showing(&app, &sso, "/compte", "vous a authentifié il y a moins de 15 minutes").await;
    let created = post_form(&app, &sso, "/compte/jetons", &[("name", "Export")]).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(tokens().await, before + 1);
    // Twenty minutes later, the session still open: a new authentication is asked first.
    app.clock.set(t0() + chrono::Duration::minutes(20));
    let refused = post_form(&app, &sso, "/compte/jetons", &[("name", "Export 2")]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("date de plus de 15 minutes"), "{}", refused.text);
    assert_eq!(tokens().await, before + 1, "no second token");
}

/// A second N1 of the commune of Fresnes beside [`N1`]: the other recipient of the queue's mails.
const CO_N1: &str = "support2@fresnes.fr";

/// The box of the ticket mails, ticked.
const TICKETS_TICKED: &str = "name=\"tickets\" value=\"1\" checked";

/// The recipients of each `support` notice of `event` (a mail each), oldest first.
async fn support_mails(app: &TestApp, event: &str) -> Vec<Vec<String>> {
    let notices = common::queued_notices(&app.store, "support").await;
    notices.into_iter().filter(|n| n.context["event"] == event).map(|n| n.recipients).collect()
}

/// Queues `notice` in its own transaction; the outbox ids, one per recipient queued.
async fn queue(app: &TestApp, notice: Notice) -> Vec<String> {
    let mut tx = app.store.begin_write().await.unwrap();
    let id = notice.enqueue(&mut tx, t0()).await.expect("a notice nobody wants is no error");
    tx.commit().await.unwrap();
    id
}

backend_test!(a_person_who_switches_ticket_mails_off_no_longer_gets_them_while_a_colleague_still_does);
async fn a_person_who_switches_ticket_mails_off_no_longer_gets_them_while_a_colleague_still_does(db: TestDb) {
    let app = app(db).await;
    common::token_for(&app.store, CO_N1, Role::SupportN1, Some("commune:94034")).await;
    let usager = sign_in(&app, USAGER).await;
    let n1 = sign_in(&app, N1).await;
    let page = get(&app, &n1, "/compte").await;
    assert!(page.text.contains(TICKETS_TICKED), "every category is sent by default: {}", page.text);
    assert!(page.text.contains("Courriels toujours envoyés"), "{}", page.text);

    // Switched off from « Mon compte »: the next new ticket's mail goes to the colleague only.
    let saved = post_form(&app, &n1, "/compte/courriels", &[("avant-tickets", "1")]).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert!(saved.text.contains("Vos préférences de courriel sont enregistrées"), "{}", saved.text);
    assert!(!saved.text.contains(TICKETS_TICKED), "{}", saved.text);
    open_ticket(&app, &usager).await;
    let created = support_mails(&app, "created").await;
    assert_eq!(created, [[CO_N1]], "{created:?}");

    // Alone, whatever the case of the address: not queued, and no error for the caller.
    let before = common::count(&app.store, "SELECT COUNT(*) FROM outbox", &[]).await;
    let alone = Notice::event("support", vec![N1.to_uppercase()], "created").with(json!({ "reference": "X" }));
    assert_eq!(queue(&app, alone).await, Vec::<String>::new());
    assert_eq!(common::count(&app.store, "SELECT COUNT(*) FROM outbox", &[]).await, before);
    // Another category still goes, and so does a mail that must always go.
    let to_sign = Notice::event("convention", vec![N1.into()], "submitted");
    assert_eq!(queue(&app, to_sign).await.len(), 1, "only the ticket mails were switched off");
    let reset = Notice::new("console", vec![N1.into()]).with(json!({ "event": "reset" }));
    assert_eq!(queue(&app, reset).await.len(), 1, "a password link always goes");

    // Switched back on: the next one reaches both again.
    let saved = post_form(&app, &n1, "/compte/courriels", &[("avant-tickets", "0"), ("tickets", "1")]).await;
    assert!(saved.text.contains(TICKETS_TICKED), "{}", saved.text);
    open_ticket(&app, &usager).await;
    let created = support_mails(&app, "created").await;
    assert_eq!(created.len(), 2, "{created:?}");
    let mut both = created[1].clone();
    both.sort();
    let mut expected = [CO_N1, N1];
    expected.sort();
    assert_eq!(both, expected, "a mail to each: {created:?}");
    let audited =
        "SELECT COUNT(*) FROM audit_log WHERE action = 'notifications.preferences' AND summary LIKE '%support@fresnes.fr%'";
    assert_eq!(common::count(&app.store, audited, &[]).await, 2, "each change is audited");
}

backend_test!(a_person_who_switches_every_category_off_still_gets_the_mails_that_must_go);
async fn a_person_who_switches_every_category_off_still_gets_the_mails_that_must_go(db: TestDb) {
    let app = app(db).await;
    let n1 = sign_in(&app, N1).await;
    let shown: Vec<(String, &str)> = Category::ALL.iter().map(|c| (format!("avant-{}", c.as_str()), "1")).collect();
    let shown: Vec<(&str, &str)> = shown.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(post_form(&app, &n1, "/compte/courriels", &shown).await.status, 200);
    let user = identity::get_user(&app.store, N1).await.unwrap().unwrap();
    let mut conn = app.store.conn().await.unwrap();
    assert!(preferences::of_user(&mut conn, &user.id).await.unwrap().iter().all(|p| !p.enabled));
    drop(conn);
    for (template, event) in
        [("console", "reset"), ("console", "invitation"), ("test", ""), ("convention", "terminated")]
    {
        let notice = Notice::new(template, vec![N1.into()]).with(json!({ "event": event }));
        assert_eq!(queue(&app, notice).await.len(), 1, "{template} {event} always goes");
    }
    for (template, event) in
        [("support", "comment"), ("convention", "expiring"), ("groupement", "applied"), ("rgpd", "")]
    {
        let notice = Notice::new(template, vec![N1.into()]).with(json!({ "event": event }));
        assert!(queue(&app, notice).await.is_empty(), "{template} {event} is switched off");
    }
}

backend_test!(a_person_changes_their_own_mail_preferences_and_no_one_else_s);
async fn a_person_changes_their_own_mail_preferences_and_no_one_else_s(db: TestDb) {
    let app = app(db).await;
    let n1 = sign_in(&app, N1).await;
    let other = identity::get_user(&app.store, OTHER_N1).await.unwrap().unwrap();
    let mine = identity::get_user(&app.store, N1).await.unwrap().unwrap();
    // A forged user field is not read: the form changes the signed-in person's choices only.
    let fields = [("user_id", other.id.as_str()), ("utilisateur", other.id.as_str()), ("avant-rgpd", "1")];
    assert_eq!(post_form(&app, &n1, "/compte/courriels", &fields).await.status, 200);
    let mut conn = app.store.conn().await.unwrap();
    let rgpd = |prefs: Vec<preferences::Preference>| prefs.into_iter().find(|p| p.category == Category::Rgpd).unwrap();
    assert!(rgpd(preferences::of_user(&mut conn, &other.id).await.unwrap()).enabled, "the other N1's are untouched");
    assert!(!rgpd(preferences::of_user(&mut conn, &mine.id).await.unwrap()).enabled);
    drop(conn);
    // Without a session, nothing is saved (the sign-in form answers).
    let anonymous =
        app.post("/compte/courriels").bytes("application/x-www-form-urlencoded", "avant-tickets=1").send().await;
    assert_eq!(anonymous.status, 303);
    assert!(anonymous.header("location").unwrap().starts_with("/connexion"));
}

/// The section `id` of the notification centre of `session`, its links unescaped; empty when absent.
pub(crate) async fn notified(app: &TestApp, session: &str, id: &str) -> String {
    let page = get(app, session, "/notifications").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let text = page.text.replace("&#x2F;", "/");
    match text.find(&format!("id=\"{id}\"")) {
        Some(at) => text[at..].split("</section>").next().unwrap().to_string(),
        None => String::new(),
    }
}

backend_test!(a_convention_awaiting_signatures_is_listed_for_its_signatories_until_they_sign);
async fn a_convention_awaiting_signatures_is_listed_for_its_signatories_until_they_sign(db: TestDb) {
    let app = fresnes(db).await;
    let client = |email: &str| app.client(app.token(email));
    let body = common::fixtures::with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": "academie:24", "collectivite": "commune:94034", "etablissement": "0940176F" },
        "start_date": "2026-09-01"
    }));
    let conv = client(DAN).post("/api/v1/conventions").json(&body).send().await;
    let (id, reference) = (conv.body["id"].as_str().unwrap(), conv.body["reference"].as_str().unwrap());
    let link = format!("href=\"/conventions/{id}\"");
    let mairie = sign_in(&app, MAIRIE).await;
    assert_eq!(notified(&app, &mairie, "conventions").await, "", "a draft awaits no one");

    client(DAN).post(format!("/api/v1/conventions/{id}/submit")).json(&json!({})).send().await;
    let listed = notified(&app, &mairie, "conventions").await;
    assert!(listed.contains(&link) && listed.contains(reference), "{listed}");
    assert_eq!(get(&app, &mairie, "/notifications/compte").await.text, " (1)", "the header counts it");
    let directeur = sign_in(&app, DIRECTEUR).await;
    assert!(notified(&app, &directeur, "conventions").await.contains(&link));
    // Another commune is no party: nothing.
    let vitry = sign_in(&app, VITRY).await;
    assert!(!get(&app, &vitry, "/notifications").await.text.contains(reference));

    // Signed by the mairie: no longer theirs to do, still the directeur's.
    let signed = client(MAIRIE)
        .post(format!("/api/v1/conventions/{id}/sign"))
        .json(&crate::common::fixtures::by_delegation(json!({})))
        .send()
        .await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    assert_eq!(notified(&app, &mairie, "conventions").await, "");
    assert!(notified(&app, &directeur, "conventions").await.contains(&link));
}

backend_test!(applications_awaiting_a_decision_are_listed_for_the_groupement_s_coordinator_only);
async fn applications_awaiting_a_decision_are_listed_for_the_groupement_s_coordinator_only(db: TestDb) {
    let (scene, app, coord) = scene_app(db).await;
    let (_, reference) = open_groupement(&app, &coord, &scene.coordinator).await;
    assert_eq!(notified(&app, &coord, "candidatures").await, "", "no application yet");

    let mairie = sign_in(&app, MAIRIES[0]).await;
    let application = [("deliberation", "2026-DCM-7"), ("date-deliberation", "2026-09-01")];
    let sent = post_form(&app, &mairie, &format!("/groupements/{reference}/candidature"), &application).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    let listed = notified(&app, &coord, "candidatures").await;
    assert!(listed.contains(&format!("href=\"/groupements/{reference}\"")), "{listed}");
    assert!(listed.contains(&scene.communes[0].name), "the applicant named: {listed}");
    assert_eq!(get(&app, &coord, "/notifications/compte").await.text, " (1)");
    // Neither the applicant nor another commune has it to review.
    for email in [MAIRIES[0], MAIRIES[1]] {
        let session = sign_in(&app, email).await;
        assert!(!get(&app, &session, "/notifications").await.text.contains(&reference), "{email}");
    }
}

/// The DPO of the commune of Fresnes, and of Vitry (another organisation's logs).
const DPO: &str = "dpo@fresnes.fr";
const OTHER_DPO: &str = "dpo@vitry.fr";

/// People of `roles` (role, organisation key) who sign in with [`crate::console::PASSWORD`].
async fn people(app: &mut TestApp, roles: &[(&str, Role, &str)]) {
    for (email, role, org) in roles {
        add_person(app, email, *role, Some(org)).await;
    }
}

/// A breach `title` its controller became aware of at `aware_at`.
fn breach(title: &str, aware_at: chrono::DateTime<chrono::Utc>) -> entcp::rgpd::breaches::BreachInput {
    serde_json::from_value(json!({
        "title": title, "facts": "Export de la liste des comptes envoyé au mauvais destinataire",
        "aware_at": entcp::store::timestamp(aware_at), "data_categories": ["identité"],
        "people_approx": 30, "records_approx": 30, "consequences": "Aucune connue", "measures": "Rappel du message",
    }))
    .unwrap()
}

/// An access request received on `received_on`.
fn request(received_on: &str) -> entcp::rgpd::requests::RequestInput {
    serde_json::from_value(json!({ "kind": "access", "requester": "A. B.", "received_on": received_on })).unwrap()
}

backend_test!(breaches_and_requests_due_soon_are_listed_for_the_dpo_of_their_organisation_only);
async fn breaches_and_requests_due_soon_are_listed_for_the_dpo_of_their_organisation_only(db: TestDb) {
    common::import_sample(&db.store).await;
    let mut app = TestApp::builder(db).build().await;
    people(&mut app, &[(DPO, Role::Dpo, "commune:94034"), (OTHER_DPO, Role::Dpo, "commune:94081")]).await;
    let state = common::app::app_state(app.store.clone(), Default::default(), app.clock.clone()).rgpd();
    let fresnes = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    // The CNIL deadline in 12 hours, and one in 62 hours (not near yet).
    let known = |title: &str, hours: i64| breach(title, t0() - chrono::Duration::hours(hours));
    let near = entcp::rgpd::breaches::create(&state, &admin(), &fresnes, known("Envoi erroné", 60)).await.unwrap();
    let later = entcp::rgpd::breaches::create(&state, &admin(), &fresnes, known("Perte d'une clé", 10)).await.unwrap();
    // Due on 5 September (in four days), and on 25 September.
    let due = entcp::rgpd::requests::create(&state, &admin(), &fresnes, request("2026-08-05")).await.unwrap();
    let not_yet = entcp::rgpd::requests::create(&state, &admin(), &fresnes, request("2026-08-25")).await.unwrap();

    let dpo = sign_in(&app, DPO).await;
    let breaches = notified(&app, &dpo, "violations").await;
    assert!(breaches.contains(&near.reference) && !breaches.contains(&later.reference), "{breaches}");
    // Its deadline, known at 20:00 UTC plus 72 hours, read at its hour in Paris.
    assert!(breaches.contains("avant le 1er septembre 2026 à 22 h 00"), "{breaches}");
    assert!(breaches.contains(&format!("href=\"/rgpd/{}/violations\"", fresnes.id)), "{breaches}");
    let requests = notified(&app, &dpo, "demandes-rgpd").await;
    assert!(requests.contains(&due.reference) && !requests.contains(&not_yet.reference), "{requests}");
    assert!(requests.contains(&format!("href=\"/rgpd/{}/demandes\"", fresnes.id)), "{requests}");
    assert_eq!(get(&app, &dpo, "/notifications/compte").await.text, " (2)");
    // Another commune's DPO: none of it.
    let other = sign_in(&app, OTHER_DPO).await;
    let page = get(&app, &other, "/notifications").await;
    assert!(!page.text.contains(&near.reference) && !page.text.contains(&due.reference), "{}", page.text);

    // Notified to the CNIL: no longer awaiting.
    let mut input = near.input.clone();
    input.cnil_decision = entcp::rgpd::breaches::CnilDecision::Notified;
    input.cnil_notified_at = Some(entcp::store::timestamp(t0()));
    entcp::rgpd::breaches::update(&state, &admin(), &fresnes, &near.id, input, near.version).await.unwrap();
    assert_eq!(notified(&app, &dpo, "violations").await, "");

    // A high risk: the people are to be told, however old the breach, until told or dispensed.
    assert_eq!(notified(&app, &dpo, "violations-personnes").await, "");
    let near = entcp::rgpd::breaches::get(&state, &fresnes, &near.id).await.unwrap();
    let mut input = near.input.clone();
    input.risk = Some(entcp::rgpd::breaches::RiskLevel::High);
    entcp::rgpd::breaches::update(&state, &admin(), &fresnes, &near.id, input.clone(), near.version).await.unwrap();
    let untold = notified(&app, &dpo, "violations-personnes").await;
    assert!(untold.contains(&near.reference) && untold.contains("informer les personnes"), "{untold}");
    assert!(untold.contains(&format!("href=\"/rgpd/{}/violations/{}\"", fresnes.id, near.id)), "{untold}");
    assert!(!get(&app, &other, "/notifications").await.text.contains(&near.reference), "not another DPO's");
    input.people_exception = Some(entcp::rgpd::breaches::PeopleException::RiskRemoved);
    input.people_reason = Some("comptes bloqués avant toute connexion".into());
    entcp::rgpd::breaches::update(&state, &admin(), &fresnes, &near.id, input, near.version + 1).await.unwrap();
    assert_eq!(notified(&app, &dpo, "violations-personnes").await, "");
}

/// The académies' DPOs, the DAN of Créteil, and the head of the école 0940176F of Fresnes
/// (a school has no DPO of its own: its head keeps its logs, as the RGPD pages allow).
const DPO_CRETEIL: &str = "dpd@ac-creteil.fr";
const DPO_VERSAILLES: &str = "dpd@ac-versailles.fr";
const DAN_CRETEIL: &str = "dan@ac-creteil.fr";
const CHEF_ECOLE: &str = "ce.0940176f@ac-creteil.fr";

backend_test!(
    a_school_s_breach_and_request_due_soon_are_listed_for_its_academie_s_dpo_and_its_own_not_another_academie_s
);
async fn a_school_s_breach_and_request_due_soon_are_listed_for_its_academie_s_dpo_and_its_own_not_another_academie_s(
    db: TestDb,
) {
    let name = db.name;
    common::import_sample(&db.store).await;
    // An école of Boulogne-Billancourt makes the académie of Versailles (25).
    let versailles = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;\
                      Code_departement;Code_academie\n0929901M;Ecole de Boulogne;Ecole;92012;092;25\n";
    common::fixtures::annuaire(&db.store, versailles).await;
    let mut app = TestApp::builder(db).build().await;
    let roles = [
        (DPO_CRETEIL, Role::Dpo, "academie:24"),
        (DPO_VERSAILLES, Role::Dpo, "academie:25"),
        (DAN_CRETEIL, Role::Dan, "academie:24"),
        (CHEF_ECOLE, Role::ChefEtablissement, "0940176F"),
    ];
    people(&mut app, &roles).await;
    let state = common::app::app_state(app.store.clone(), Default::default(), app.clock.clone()).rgpd();
    let school = entcp::registry::resolve_org(&app.store, "0940176F").await.unwrap();
    // The CNIL deadline in 12 hours; the answer due on 5 September (in four days).
    let near = breach("Envoi erroné", t0() - chrono::Duration::hours(60));
    let near = entcp::rgpd::breaches::create(&state, &admin(), &school, near).await.unwrap();
    let due = entcp::rgpd::requests::create(&state, &admin(), &school, request("2026-08-05")).await.unwrap();
    let (breaches, requests) = (format!("/rgpd/{}/violations", school.id), format!("/rgpd/{}/demandes", school.id));
    // The commune of Fresnes, in the académie but another controller: its logs are its own.
    let fresnes = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    let theirs = breach("Fichier des inscriptions égaré", t0() - chrono::Duration::hours(60));
    let theirs = entcp::rgpd::breaches::create(&state, &admin(), &fresnes, theirs).await.unwrap();
    entcp::rgpd::requests::create(&state, &admin(), &fresnes, request("2026-08-05")).await.unwrap();

    // The school's own head and the DPO of its académie: both listed, each a link to the log,
    // which opens for them.
    for email in [CHEF_ECOLE, DPO_CRETEIL] {
        let session = sign_in(&app, email).await;
        let listed = notified(&app, &session, "violations").await;
        assert!(listed.contains(&near.reference), "{name} {email}: {listed}");
        assert!(listed.contains(&format!("href=\"{breaches}\"")), "{name} {email}: {listed}");
        let listed = notified(&app, &session, "demandes-rgpd").await;
        assert!(listed.contains(&due.reference), "{name} {email}: {listed}");
        assert!(listed.contains(&format!("href=\"{requests}\"")), "{name} {email}: {listed}");
        assert_eq!(get(&app, &session, "/notifications/compte").await.text, " (2)", "{name} {email}");
        for log in [&breaches, &requests] {
            assert_eq!(get(&app, &session, log).await.status, 200, "{name} {email}: {log}");
        }
        let page = get(&app, &session, "/notifications").await.text;
        // References are numbered per controller: Fresnes' own are told apart by their title
        // and their link to Fresnes' logs.
        let fresnes_logs = format!("/rgpd/{}/", fresnes.id);
        assert!(!page.contains(&theirs.input.title) && !page.contains(&fresnes_logs), "{name} {email}: {page}");
        for log in ["violations", "demandes"] {
            let status = get(&app, &session, &format!("/rgpd/{}/{log}", fresnes.id)).await.status;
            assert_eq!(status, 404, "{name} {email}: the commune's {log}");
        }
    }
    // The DPO of another académie, and the DAN (whose RGPD pages are the académie's and its
    // DSDEN's, not the schools'): nothing listed, and the log does not open either.
    for email in [DPO_VERSAILLES, DAN_CRETEIL] {
        let session = sign_in(&app, email).await;
        let page = get(&app, &session, "/notifications").await;
        assert_eq!(page.status, 200, "{name} {email}: {}", page.text);
        assert!(!page.text.contains(&near.reference) && !page.text.contains(&due.reference), "{name} {email}");
        assert_eq!(get(&app, &session, "/notifications/compte").await.text, "", "{name} {email}");
        assert_eq!(get(&app, &session, &breaches).await.status, 404, "{name} {email}");
    }
}

/// The UAI of the école numbered `n` (four digits) in département `dept` (`094`).
fn uai(dept: &str, n: u32) -> String {
    let digits: u32 = format!("{dept}{n:04}").parse().unwrap();
    format!("{digits:07}{}", entcp::registry::codes::uai_check_letter(digits))
}

/// An annuaire of `count` new écoles of the académie of Créteil in département `dept`
/// (commune `commune`), numbered from `first`.
fn ecoles(first: u32, count: u32, dept: &str, commune: &str) -> String {
    let mut csv = String::from(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_departement;Code_academie\n",
    );
    for n in first..first + count {
        csv.push_str(&format!("{};Ecole {n};Ecole;{commune};{dept};24\n", uai(dept, n)));
    }
    csv
}

backend_test!(an_academie_s_dan_and_dpo_see_their_due_entries_among_more_than_two_hundred_schools_with_open_ones);
async fn an_academie_s_dan_and_dpo_see_their_due_entries_among_more_than_two_hundred_schools_with_open_ones(
    db: TestDb,
) {
    let name = db.name;
    common::import_sample(&db.store).await;
    // 210 more écoles of the Val-de-Marne, then one of the Seine-Saint-Denis: its DSDEN, of the
    // académie too, is registered after them all (the last organisation in id order).
    common::fixtures::annuaire(&db.store, &ecoles(7000, 210, "094", "94034")).await;
    common::fixtures::annuaire(&db.store, &ecoles(7000, 1, "093", "93008")).await;
    let mut app = TestApp::builder(db).build().await;
    people(&mut app, &[(DAN_CRETEIL, Role::Dan, "academie:24"), (DPO_CRETEIL, Role::Dpo, "academie:24")]).await;
    let state = common::app::app_state(app.store.clone(), Default::default(), app.clock.clone()).rgpd();
    // A breach due in 12 hours and a request due in four days at each new école.
    for n in 7000..7210 {
        let school = entcp::registry::resolve_org(&app.store, &uai("094", n)).await.unwrap();
        let near = breach(&format!("Envoi erroné {n}"), t0() - chrono::Duration::hours(60));
        entcp::rgpd::breaches::create(&state, &admin(), &school, near).await.unwrap();
        entcp::rgpd::requests::create(&state, &admin(), &school, request("2026-08-05")).await.unwrap();
    }
    // The académie's own and the new DSDEN's: the CNIL deadline passed two hours ago, the
    // answer due the day before the schools'.
    let mut own = Vec::new();
    for key in ["academie:24", "dsden:93"] {
        let org = entcp::registry::resolve_org(&app.store, key).await.unwrap();
        let late = breach(&format!("Perte d'un registre ({key})"), t0() - chrono::Duration::hours(74));
        let b = entcp::rgpd::breaches::create(&state, &admin(), &org, late).await.unwrap();
        let r = entcp::rgpd::requests::create(&state, &admin(), &org, request("2026-08-04")).await.unwrap();
        own.push((org, b.reference, r.reference));
    }

    // The DAN (the académie's and its DSDEN's logs, not the schools'), and the DPO (all of
    // them, the most urgent first): both see the académie's and the DSDEN's entries.
    for email in [DAN_CRETEIL, DPO_CRETEIL] {
        let session = sign_in(&app, email).await;
        let breaches = notified(&app, &session, "violations").await;
        let requests = notified(&app, &session, "demandes-rgpd").await;
        for (org, breach, request) in &own {
            assert!(breaches.contains(breach.as_str()), "{name} {email} {}: {breaches}", org.code);
            assert!(requests.contains(request.as_str()), "{name} {email} {}: {requests}", org.code);
            let log = format!("/rgpd/{}/violations", org.id);
            assert!(breaches.contains(&format!("href=\"{log}\"")), "{name} {email}: {breaches}");
            assert_eq!(get(&app, &session, &log).await.status, 200, "{name} {email}: {log}");
        }
        let schools = breaches.contains("Envoi erroné 70");
        assert_eq!(schools, email == DPO_CRETEIL, "{name} {email}: the schools' breaches: {breaches}");
    }
}

/// Whether `category` is sent, as `GET /api/v1/me/notification-preferences` answers it.
fn sent(body: &serde_json::Value, category: &str) -> bool {
    let categories = body["categories"].as_array().expect("the categories");
    let found = categories.iter().find(|c| c["category"] == category).expect("the category");
    found["enabled"].as_bool().unwrap()
}

backend_test!(the_api_reads_and_changes_the_caller_s_own_mail_preferences_only);
async fn the_api_reads_and_changes_the_caller_s_own_mail_preferences_only(db: TestDb) {
    let app = app(db).await;
    let path = "/api/v1/me/notification-preferences";
    let mine = app.client(&common::token_for(&app.store, CO_N1, Role::SupportN1, Some("commune:94034")).await);
    let theirs = app.client(&common::token_for(&app.store, "dpo@fresnes.fr", Role::Dpo, Some("commune:94034")).await);
    let shown = mine.get(path).send().await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(sent(&shown.body, "tickets") && sent(&shown.body, "rgpd"), "{}", shown.text);
    assert!(!shown.body["always_sent"].as_array().unwrap().is_empty(), "the mails that always go are named");

    // Switched off: the answer says so, the outbox obeys; the other person's stay as they were.
    let changed = mine.put(path).json(&json!({ "tickets": false })).send().await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert!(!sent(&changed.body, "tickets") && sent(&changed.body, "rgpd"), "{}", changed.text);
    let to_both = Notice::event("support", vec![CO_N1.into(), N1.into()], "created").with(json!({ "reference": "Y" }));
    let ids = queue(&app, to_both).await;
    let queued = common::queued_mails(&app.store, "support").await;
    let to: Vec<String> = ids.iter().map(|id| queued.iter().find(|m| m.id == *id).unwrap().recipient()).collect();
    assert_eq!(to, [N1], "the other recipient only");
    assert!(sent(&theirs.get(path).send().await.body, "tickets"), "another person's preferences are untouched");

    // The same body again changes nothing; an unknown category is refused, nothing changed.
    assert_eq!(mine.put(path).json(&json!({ "tickets": false })).send().await.status, 200);
    let audited = "SELECT COUNT(*) FROM audit_log WHERE action = 'notifications.preferences'";
    assert_eq!(common::count(&app.store, audited, &[]).await, 1, "an unchanged value is not audited again");
    let refused = mine.put(path).json(&json!({ "tickets": true, "inconnue": true })).send().await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(!sent(&mine.get(path).send().await.body, "tickets"));

    // Back on.
    let restored = mine.put(path).json(&json!({ "tickets": true })).send().await;
    assert!(sent(&restored.body, "tickets"), "{}", restored.text);
}
