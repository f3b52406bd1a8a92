//! « Notifications » and « Mon compte » in process: what awaits each person, scoped
//! like the lists it links to.

use crate::common::TestDb;
use crate::console::sign_in;
use crate::console_tickets::{app, follow, get, open_ticket, post_form, version_of, N1, OTHER_N1, USAGER};

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
