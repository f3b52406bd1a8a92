//! « Notifications » and « Mon compte » in process: what awaits each person, scoped
//! like the lists it links to.

use crate::common::t0;
use crate::common::TestDb;
use crate::console::sign_in;
use crate::console_tickets::{app, follow, get, open_ticket, post_form, version_of, N1, OTHER_N1, USAGER};
use entcp::identity;

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
    let page = get(&app, &n1, "/compte").await;
    assert!(page.text.contains("Vos rôles"), "{}", page.text);

    let created =
        post_form(&app, &n1, "/compte/jetons", &[("name", "Script de suivi"), ("expires", "2099-12-31")]).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let secret = secret_of(&created.text);
    assert!(secret.len() > 20, "{secret}");
    assert_eq!(app.get("/api/v1/me").bearer(&secret).send().await.status, 200);

    // Listed afterwards without its secret.
    let page = get(&app, &n1, "/compte").await;
    assert!(page.text.contains("Script de suivi"), "{}", page.text);
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
