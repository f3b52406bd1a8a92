//! The « Support » screens of the web console in process: an usager of the école Robert
//! Doisneau (Fresnes) opens a ticket from the form (the école's ENT pre-selected, the
//! priority previewed), the commune's N1 finds it in its queue, replies, adds an
//! internal note and escalates (the reason is mandatory), the académie's N2 escalates to
//! the vendor, the vendor sees a pseudonymised requester and no internal note and
//! resolves it, the usager sees the reply and closes it; another commune's N1 sees none
//! of it (a forged address answers 404 like a missing one).

use crate::common;
use crate::console::{csrf_of, key_of, page_showing, person, sign_in};
pub(crate) use crate::console::{follow, get, post_form};

use common::{admin, t0, Resp, TestApp, TestDb};
use entcp::config::Config;
use entcp::kernel::roles::{OrgKind, Role};
use entcp::store::Store;
use serde_json::json;
use std::sync::Arc;

pub(crate) const USAGER: &str = "parent@ecole.fr";
pub(crate) const N1: &str = "support@fresnes.fr";
pub(crate) const N2: &str = "dane@ac-creteil.fr";
pub(crate) const N3: &str = "support@editeur.fr";
pub(crate) const OTHER_N1: &str = "support@vitry.fr";
/// The tenant of the école Robert Doisneau.
pub(crate) const TENANT: &str = "doisneau-fresnes";

/// The sample annuaire; an ENT for the école Robert Doisneau whose vendor is an
/// éditeur, its support contract naming the commune of Fresnes as N1 (the académie of
/// Créteil is N2, the vendor N3); an usager of the école, the N1 of Fresnes and of
/// Vitry, the N2 of the académie and the N3 of the vendor, all with [`crate::console::PASSWORD`].
pub(crate) async fn desk(store: &Store) {
    common::import_sample(store).await;
    let vendor = common::fixtures::new_org(
        store,
        OrgKind::Editeur,
        "Éditeur ENT Val-de-Marne",
        &common::fixtures::luhn("30000001"),
        None,
    )
    .await;
    let state = common::app::app_state(store.clone(), Config::default(), Arc::new(entcp::clock::FixedClock::new(t0())));
    let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
        "apiVersion": "entcp.education.fr/v1",
        "kind": "EntTenant",
        "metadata": { "name": TENANT },
        "spec": {
            "organisation": "0940176F",
            "hostname": "doisneau.ent.fresnes.fr",
            "bouquet": "socle-1d",
            "vendor": format!("editeur:{}", vendor.code),
        }
    }))
    .unwrap();
    entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    let ecole = entcp::registry::resolve_org(store, "0940176F").await.unwrap();
    let contract = entcp::support::ContractInput { n1: Some("commune:94034".into()), ..Default::default() };
    entcp::support::set_contract(&state.support(), &admin(), &ecole, &contract, t0()).await.unwrap();
    let people = [
        (USAGER, Role::Usager, "0940176F".to_string()),
        (N1, Role::SupportN1, "commune:94034".to_string()),
        (OTHER_N1, Role::SupportN1, "commune:94081".to_string()),
        (N2, Role::SupportN2, "academie:24".to_string()),
        (N3, Role::SupportN3, vendor.id.clone()),
    ];
    for (email, role, org) in people {
        person(store, email, role, Some(&org)).await;
    }
}

pub(crate) async fn app(db: TestDb) -> TestApp {
    desk(&db.store).await;
    TestApp::builder(db).build().await
}

/// The ticket's version as its page's forms carry it.
pub(crate) fn version_of(html: &str) -> String {
    let at = html.find("name=\"version\" value=\"").expect("a version field") + 22;
    html[at..].split('"').next().unwrap().to_string()
}

/// The console app, the session of [`USAGER`] signed in, and the reference of a ticket the
/// usager opened through the form ([`open_ticket`]).
async fn ticket_of_the_usager(db: TestDb) -> (TestApp, String, String) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let reference = open_ticket(&app, &usager).await;
    (app, usager, reference)
}

/// The usager's ticket as the form sends it.
const TICKET_FORM: [(&str, &str); 6] = [
    ("ent", TENANT),
    ("sujet", "Le cahier de liaison ne s'ouvre plus"),
    ("categorie", "acces"),
    ("impact", "haute"),
    ("urgence", "moyenne"),
    ("description", "Depuis ce matin, une page blanche s'affiche."),
];

/// Opens the usager's ticket through the form; its reference.
pub(crate) async fn open_ticket(app: &TestApp, usager: &str) -> String {
    let sent = post_form(app, usager, "/tickets/nouveau", &TICKET_FORM).await;
    let page = follow(app, usager, &sent).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let location = sent.header("location").unwrap();
    key_of(location, "/tickets/")
}

backend_test!(an_usager_opens_a_ticket_with_the_ent_preselected_and_the_priority_previewed);
async fn an_usager_opens_a_ticket_with_the_ent_preselected_and_the_priority_previewed(db: TestDb) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    page_showing(&app, &usager, "/tickets/nouveau", &format!("<option value=\"{TENANT}\" selected>")).await;
    let policies = entcp::support::policy::Policies::shipped();
    let want = |impact: &str, urgency: &str| policies.priority(impact, urgency).unwrap().as_str().to_string();
    let preview = get(&app, &usager, "/tickets/priorite?impact=haute&urgence=haute").await;
    assert_eq!(preview.text, format!("Priorité qui en résulte : {}", want("haute", "haute")));
    let low = get(&app, &usager, "/tickets/priorite?impact=basse&urgence=basse").await;
    assert_eq!(low.text, format!("Priorité qui en résulte : {}", want("basse", "basse")));
    assert_ne!(preview.text, low.text, "the preview follows the grades");

    // A refusal of the domain shows the form again, the fields kept and the errors linked.
    let refused = post_form(&app, &usager, "/tickets/nouveau", &[("ent", TENANT), ("categorie", "acces")]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("href=\"#sujet\""), "{}", refused.text);
    crate::console::assert_refusal_announced(&refused);
    let said: Vec<String> = crate::console::summary_links(&refused.text).into_iter().map(|(_, text)| text).collect();
    assert!(said.contains(&"Sujet : champ obligatoire".to_string()), "each link names its field: {said:?}");
    assert!(said.contains(&"Description : champ obligatoire".to_string()), "{said:?}");

    let reference = open_ticket(&app, &usager).await;
    let page = get(&app, &usager, &format!("/tickets/{reference}")).await;
    assert!(page.text.contains(&format!("Priorité {}", want("haute", "moyenne"))), "{}", page.text);
    assert!(page.text.contains("Ticket ouvert"), "the timeline starts: {}", page.text);
    assert!(!page.text.contains("id=\"noter\""), "no internal note for the requester");
    assert!(!page.text.contains("id=\"escalader\""), "no escalation for the requester");

    // The commune's N1 finds it in its queue with the time left; the filters narrow it.
    let n1 = sign_in(&app, N1).await;
    let queue = get(&app, &n1, "/tickets").await;
    assert_eq!(queue.status, 200, "{}", queue.text);
    assert!(queue.text.contains(&reference) && queue.text.contains("ouvrées"), "{}", queue.text);
    let filtered = get(&app, &n1, &format!("/tickets?statut=closed&ent={TENANT}")).await;
    assert!(!filtered.text.contains(&reference), "{}", filtered.text);
    let unassigned = get(&app, &n1, &format!("/tickets?affecte=personne&categorie=acces&niveau=n1&ent={TENANT}")).await;
    assert!(unassigned.text.contains(&reference), "{}", unassigned.text);
    assert!(!get(&app, &n1, "/tickets?affecte=moi").await.text.contains(&reference));
    assert!(!get(&app, &n1, "/tickets?niveau=n2").await.text.contains(&reference));

    // Another commune's N1: not in its queue, and the page answers like a missing ticket.
    let other = sign_in(&app, OTHER_N1).await;
    assert!(!get(&app, &other, "/tickets").await.text.contains(&reference));
    let forged = get(&app, &other, &format!("/tickets/{reference}")).await;
    let missing = get(&app, &other, "/tickets/ENT-2026-999999").await;
    assert_eq!((forged.status, missing.status), (404, 404), "{}", forged.text);
}

// The requester's queue (« Vos tickets ») says who handles the ticket no more than the API
// does (`Ticket::seen_by`): no « Affecté à » name nor filter, and `affecte` or `niveau` in the
// address do not tell whether someone took it; the N1's queue names them.
backend_test!(the_requester_s_queue_shows_no_assignee_and_its_filter_tells_nothing);
async fn the_requester_s_queue_shows_no_assignee_and_its_filter_tells_nothing(db: TestDb) {
    let (app, usager, reference) = ticket_of_the_usager(db).await;
    let name = app.backend;
    let listed = |text: &str| text.contains(&reference);
    assert!(listed(&get(&app, &usager, "/tickets").await.text), "{name}: the usager's own ticket");
    // The requester has no assignee nor level filter: the parameters are not theirs, the same
    // page answers whoever took the ticket.
    let own = get(&app, &usager, "/tickets").await;
    assert!(!own.text.contains("Affecté à") && !own.text.contains("name=\"niveau\""), "{name}: {}", own.text);
    let unassigned = get(&app, &usager, "/tickets?affecte=personne").await;
    assert!(listed(&unassigned.text), "{name}: {}", unassigned.text);

    let n1 = sign_in(&app, N1).await;
    let path = format!("/tickets/{reference}");
    let page = get(&app, &n1, &path).await;
    let taken = post_form(&app, &n1, &format!("{path}/affectation"), &[("version", &version_of(&page.text))]).await;
    assert_eq!(taken.status, 303, "{name}: {}", taken.text);
    let queue = get(&app, &n1, "/tickets").await;
    assert!(listed(&queue.text) && queue.text.contains(N1), "{name}: {}", queue.text);
    assert!(listed(&get(&app, &n1, "/tickets?affecte=moi").await.text), "{name}");

    let queue = get(&app, &usager, "/tickets").await;
    assert!(listed(&queue.text), "{name}: {}", queue.text);
    assert!(!queue.text.contains(N1), "{name}: the assignee shown to the requester: {}", queue.text);
    for filter in ["affecte=moi", "affecte=personne", "niveau=n1"] {
        let page = get(&app, &usager, &format!("/tickets?{filter}")).await;
        assert!(listed(&page.text), "{name} {filter}: the same page once taken: {}", page.text);
    }
}

/// The title of the history entry of `page` that shows `body`.
fn title_of_entry<'a>(page: &'a str, body: &str) -> &'a str {
    let entry = page.split("<li class=\"console-timeline__entry").skip(1).find(|e| e.contains(body));
    let entry = entry.unwrap_or_else(|| panic!("no entry « {body} »: {page}"));
    entry.split("<strong>").nth(1).and_then(|t| t.split("</strong>").next()).unwrap_or("")
}

// The usager's message is theirs in the history (« Message du demandeur »), the N1's reply the
// support's (« Réponse du support », as its e-mail says), on both sides.
backend_test!(the_usagers_message_is_titled_as_theirs_in_the_history_the_n1s_reply_as_the_supports);
async fn the_usagers_message_is_titled_as_theirs_in_the_history_the_n1s_reply_as_the_supports(db: TestDb) {
    let (app, usager, reference) = ticket_of_the_usager(db).await;
    let path = format!("/tickets/{reference}");
    let n1 = sign_in(&app, N1).await;
    let reply = [("message", "Depuis quand ?"), ("visibilite", "public")];
    let replied = post_form(&app, &n1, &format!("{path}/commentaire"), &reply).await;
    assert_eq!(replied.status, 303, "{}", replied.text);
    let sent = post_form(&app, &usager, &format!("{path}/commentaire"), &[("message", "Depuis lundi.")]).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    for who in [&usager, &n1] {
        let page = get(&app, who, &path).await;
        assert_eq!(title_of_entry(&page.text, "Depuis lundi."), "Message du demandeur", "{}", app.backend);
        assert_eq!(title_of_entry(&page.text, "Depuis quand ?"), "Réponse du support", "{}", app.backend);
    }
}

// A ticket opened on an ENT whose support has nobody (no user, no address at any level) is
// kept, and the usager is not told « le support vous répondra »: the page says nobody is
// designated and the history's public warning says who was told instead.
backend_test!(an_usager_opening_a_ticket_nobody_supports_is_told_so_and_not_promised_an_answer);
async fn an_usager_opening_a_ticket_nobody_supports_is_told_so_and_not_promised_an_answer(db: TestDb) {
    let app = app(db).await;
    sqlx::query("DELETE FROM role_bindings WHERE role IN ('support_n1', 'support_n2', 'support_n3')")
        .execute(app.store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE orgs SET email = NULL").execute(app.store.pool()).await.unwrap();
    running(&app).await;
    let usager = sign_in(&app, USAGER).await;
    let sent = post_form(&app, &usager, "/tickets/nouveau", &TICKET_FORM).await;
    assert!(sent.header("location").unwrap().ends_with("?apres=ouvert-avec-avertissement"), "{}", app.backend);
    let page = follow(&app, &usager, &sent).await;
    let said = "Aucun support n&#x27;est encore désigné pour cet ENT : votre ticket est enregistré";
    assert!(page.text.contains(&format!("Avertissement : {said}")), "the notice: {}", page.text);
    assert!(!page.text.contains("le support vous répondra"), "{}", page.text);
    assert_eq!(title_of_entry(&page.text, said), "Avertissement", "{}", app.backend);
}

/// The desk's ENT ([`TENANT`]) is running.
async fn running(app: &TestApp) {
    let sql = "UPDATE tenants SET status = 'active' WHERE slug = $1";
    sqlx::query(sql).bind(TENANT).execute(app.store.pool()).await.unwrap();
}

// An usager opening a ticket on an ENT not yet open (requested) reads it in the page's notice
// and its history: the ticket is kept, what needs the ENT waits for its opening. Once it runs,
// the usager is told the support will answer, and no warning.
backend_test!(an_usager_opening_a_ticket_on_an_ent_not_yet_open_is_told_what_waits_for_its_opening);
async fn an_usager_opening_a_ticket_on_an_ent_not_yet_open_is_told_what_waits_for_its_opening(db: TestDb) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let sent = post_form(&app, &usager, "/tickets/nouveau", &TICKET_FORM).await;
    assert!(sent.header("location").unwrap().ends_with("?apres=ouvert-avec-avertissement"), "{}", app.backend);
    let page = follow(&app, &usager, &sent).await;
    let said = "Cet ENT n&#x27;est pas encore ouvert : il est demandé, son déploiement n&#x27;a pas commencé. \
                Votre ticket est enregistré ; un problème d&#x27;accès ou de service ne pourra être traité \
                qu&#x27;une fois l&#x27;ENT ouvert.";
    assert!(page.text.contains(&format!("Avertissement : {said}")), "the notice: {}", page.text);
    assert_eq!(title_of_entry(&page.text, said), "Avertissement", "{}", app.backend);
    assert!(!page.text.contains("Votre ticket est ouvert"), "{}", page.text);

    running(&app).await;
    let sent = post_form(&app, &usager, "/tickets/nouveau", &TICKET_FORM).await;
    assert!(sent.header("location").unwrap().ends_with("?apres=ouvert"), "{}", app.backend);
    let page = follow(&app, &usager, &sent).await;
    assert!(page.text.contains("Votre ticket est ouvert : le support vous répondra"), "{}", page.text);
    assert!(!page.text.contains("Avertissement"), "{}", page.text);
}

backend_test!(the_ticket_goes_from_the_commune_to_the_vendor_and_back_to_the_usager_through_the_pages);
async fn the_ticket_goes_from_the_commune_to_the_vendor_and_back_to_the_usager_through_the_pages(db: TestDb) {
    let (app, usager, reference) = ticket_of_the_usager(db).await;
    let path = format!("/tickets/{reference}");

    // N1: takes it, replies, adds an internal note, escalates (a reason is required).
    let n1 = sign_in(&app, N1).await;
    let page = get(&app, &n1, &path).await;
    let taken = post_form(&app, &n1, &format!("{path}/affectation"), &[("version", &version_of(&page.text))]).await;
    let page = follow(&app, &n1, &taken).await;
    assert!(page.text.contains("Le ticket est affecté"), "{}", page.text);
    // The N1 faces the usager: it may pause the ticket to ask them a question.
    assert!(page.text.contains("id=\"vers-waiting_requester\""), "{}", page.text);
    let replied = post_form(
        &app,
        &n1,
        &format!("{path}/commentaire"),
        &[("message", "Nous regardons."), ("visibilite", "public")],
    )
    .await;
    follow(&app, &n1, &replied).await;
    let note = [("message", "Le prestataire a changé la configuration SSO."), ("visibilite", "interne")];
    let noted = post_form(&app, &n1, &format!("{path}/commentaire"), &note).await;
    let page = follow(&app, &n1, &noted).await;
    assert!(page.text.contains("Note interne") && page.text.contains("configuration SSO"), "{}", page.text);
    let stale = version_of(&page.text);
    let no_reason = post_form(&app, &n1, &format!("{path}/escalade"), &[("version", &stale), ("motif", " ")]).await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    assert!(no_reason.text.contains("href=\"#motif\""), "{}", no_reason.text);
    let up = [("version", stale.as_str()), ("motif", "Relève de l'académie.")];
    let escalated = post_form(&app, &n1, &format!("{path}/escalade"), &up).await;
    let page = follow(&app, &n1, &escalated).await;
    assert!(page.text.contains("Niveau N2"), "{}", page.text);
    // The same version again: the ticket moved meanwhile.
    let again = post_form(&app, &n1, &format!("{path}/escalade"), &up).await;
    assert!(matches!(again.status, 403 | 409 | 412), "{}: {}", again.status, again.text);

    // N2 escalates to the vendor without sharing the requester's identity.
    let n2 = sign_in(&app, N2).await;
    let page = get(&app, &n2, &path).await;
    assert!(page.text.contains("configuration SSO"), "N2 reads internal notes");
    // Neither the N2 nor, below, the vendor asks the usager: their question goes down with the ticket.
    assert!(page.text.contains("id=\"vers-in_progress\""), "{}", page.text);
    assert!(!page.text.contains("id=\"vers-waiting_requester\""), "{}", page.text);
    // Nor do they write to the usager: a note for the support, no reply, no message with a status.
    assert!(page.text.contains("id=\"noter\"") && !page.text.contains("id=\"repondre\""), "{}", page.text);
    assert!(!page.text.contains("name=\"message_statut\""), "{}", page.text);
    let up = [("version", version_of(&page.text)), ("motif", "Anomalie de l'éditeur.".to_string())];
    let up: Vec<(&str, &str)> = up.iter().map(|(k, v)| (*k, v.as_str())).collect();
    follow(&app, &n2, &post_form(&app, &n2, &format!("{path}/escalade"), &up).await).await;

    // The vendor: a pseudonym, no internal note; it hands its answer back down (only the N1
    // resolves and asks the usager: no « Résoudre », « Clore » nor pause for it).
    let n3 = sign_in(&app, N3).await;
    let queue = get(&app, &n3, "/tickets").await;
    assert!(queue.text.contains(&reference), "{}", queue.text);
    let page = get(&app, &n3, &path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Demandeur ") && page.text.contains("pseudonyme"), "{}", page.text);
    assert!(!page.text.contains(USAGER), "the requester's address stays hidden");
    assert!(!page.text.contains("configuration SSO") && !page.text.contains("Note interne"), "{}", page.text);
    // The vendor writes its note to the support, never a reply to the usager.
    assert!(page.text.contains("Écrire une note au support"), "{}", page.text);
    assert!(!page.text.contains("id=\"repondre\""), "no reply to the usager from the vendor: {}", page.text);
    assert!(!page.text.contains("name=\"message_statut\""), "{}", page.text);
    assert!(page.text.contains("id=\"vers-in_progress\""), "{}", page.text);
    assert!(!page.text.contains("id=\"vers-resolved\"") && !page.text.contains("id=\"vers-closed\""), "{}", page.text);
    assert!(!page.text.contains("id=\"vers-waiting_requester\""), "{}", page.text);
    // A reply or a status message posted anyway is refused: only the N1 writes to the usager.
    let reply = [("message", "Correctif en cours."), ("visibilite", "public")];
    let refused = post_form(&app, &n3, &format!("{path}/commentaire"), &reply).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("seul le N1 écrit au demandeur"), "{}", refused.text);
    let said = [("version", version_of(&page.text)), ("vers", "in_progress".into()), ("message_statut", "Vu.".into())];
    let said: Vec<(&str, &str)> = said.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = post_form(&app, &n3, &format!("{path}/statut"), &said).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let noted = [("message", "Correctif en cours."), ("visibilite", "interne")];
    follow(&app, &n3, &post_form(&app, &n3, &format!("{path}/commentaire"), &noted).await).await;
    // Resolving by hand anyway is refused: the N1 resolves.
    let resolve = [("version", version_of(&page.text)), ("vers", "resolved".into())];
    let resolve: Vec<(&str, &str)> = resolve.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = post_form(&app, &n3, &format!("{path}/statut"), &resolve).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("seul le N1 le résout"), "{}", refused.text);
    for (session, answer) in [(&n3, "Connecteur SSO corrigé."), (&n2, "L'éditeur a corrigé le connecteur SSO.")] {
        let page = get(&app, session, &path).await;
        let back = [("version", version_of(&page.text)), ("reponse", answer.to_string())];
        let back: Vec<(&str, &str)> = back.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = follow(&app, session, &post_form(&app, session, &format!("{path}/renvoi"), &back).await).await;
        assert!(page.text.contains("renvoyé au niveau inférieur"), "{}", page.text);
    }

    // The N1 resolves with a message to the usager; it does not close the ticket itself. A
    // message longer than a comment may be is refused, named in the summary.
    let page = get(&app, &n1, &path).await;
    assert!(page.text.contains("Correctif en cours.") && page.text.contains("Note du support"), "{}", page.text);
    // At a stale version the status change is refused: the text stays in the status form's
    // own field, the reply box stays empty.
    let stale = [("version", "0"), ("vers", "resolved"), ("message_statut", "Correctif déployé.")];
    let refused = post_form(&app, &n1, &format!("{path}/statut"), &stale).await;
    assert!(matches!(refused.status, 409 | 412), "{}", refused.text);
    assert!(refused.text.contains("name=\"message_statut\" value=\"Correctif déployé.\""), "{}", refused.text);
    assert!(!refused.text.contains(">Correctif déployé.</textarea>"), "not moved into the reply box: {}", refused.text);
    let long =
        [("version", version_of(&page.text)), ("vers", "resolved".into()), ("message_statut", "A".repeat(20_001))];
    let long: Vec<(&str, &str)> = long.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = post_form(&app, &n1, &format!("{path}/statut"), &long).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("href=\"#message-statut\"") && refused.text.contains("Message au demandeur"));
    let resolve = [
        ("version", version_of(&page.text)),
        ("vers", "resolved".into()),
        ("message_statut", "Correctif déployé.".into()),
    ];
    let resolve: Vec<(&str, &str)> = resolve.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = follow(&app, &n1, &post_form(&app, &n1, &format!("{path}/statut"), &resolve).await).await;
    assert!(page.text.contains("résolu"), "{}", page.text);
    assert!(!page.text.contains("id=\"vers-closed\""), "{}", page.text);

    // The usager: the replies, never the internal note; closes the resolved ticket.
    let page = get(&app, &usager, &path).await;
    assert!(page.text.contains("Nous regardons.") && page.text.contains("Correctif déployé."), "{}", page.text);
    assert!(!page.text.contains("configuration SSO") && !page.text.contains("Note interne"), "{}", page.text);
    assert!(!page.text.contains("Correctif en cours.") && !page.text.contains("Note du support"), "{}", page.text);
    // Nor which level worked on it: the N1 answered them.
    assert!(!page.text.contains("id=\"niveau-ticket\"") && !page.text.contains("Niveau N"), "{}", page.text);
    let queue = get(&app, &usager, "/tickets").await;
    assert!(queue.text.contains(&reference) && !queue.text.contains("<td>N1</td>"), "{}", queue.text);
    let close = [("version", version_of(&page.text)), ("vers", "closed".into())];
    let close: Vec<(&str, &str)> = close.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = follow(&app, &usager, &post_form(&app, &usager, &format!("{path}/statut"), &close).await).await;
    assert!(page.text.contains("id=\"statut-ticket\">clos<"), "{}", page.text);
    let ticket = entcp::support::tickets::load(&mut app.store.conn().await.unwrap(), &reference).await.unwrap();
    assert_eq!(ticket.unwrap().status, entcp::support::Status::Closed);
}

/// Posts a multipart form (fields, then files as (name, bytes)) with `session`'s CSRF token.
pub(crate) async fn post_files(
    app: &TestApp,
    session: &str,
    path: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8])],
) -> Resp {
    let page = get(app, session, "/compte").await;
    let boundary = "----entcpTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    let csrf = csrf_of(&page.text);
    for (name, value) in std::iter::once(("_csrf", csrf.as_str())).chain(fields.iter().copied()) {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    for (file_name, bytes) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"pieces\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    app.post(path).header("cookie", session).bytes(&content_type, body).send().await
}

/// The address of the attachment named `name` on a ticket page.
fn attachment_href(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!(">{name} <"))?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(html[start..].split('"').next()?.replace("&#x2F;", "/"))
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

backend_test!(attachments_come_with_the_ticket_and_the_notes_and_are_served_only_to_who_may_see_them);
async fn attachments_come_with_the_ticket_and_the_notes_and_are_served_only_to_who_may_see_them(db: TestDb) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let fields = [
        ("ent", TENANT),
        ("sujet", "Capture de l'erreur"),
        ("categorie", "acces"),
        ("impact", "moyenne"),
        ("urgence", "moyenne"),
        ("description", "Voir la capture jointe."),
    ];
    // A page renamed .pdf is refused by its bytes: the form again, the error linked, no ticket.
    let refused = post_files(&app, &usager, "/tickets/nouveau", &fields, &[("faux.pdf", b"<html><script>")]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("href=\"#pieces\"") && refused.text.contains("faux.pdf"), "{}", refused.text);
    assert!(refused.text.contains("value=\"Capture de l&#x27;erreur\""), "the fields are kept: {}", refused.text);
    let opened =
        post_files(&app, &usager, "/tickets/nouveau", &fields, &[("C:\\fakepath\\capture écran.pdf", PDF)]).await;
    let page = follow(&app, &usager, &opened).await;
    assert!(page.text.contains("capture écran.pdf"), "the cleaned name is listed: {}", page.text);
    let path = opened.header("location").unwrap().split('?').next().unwrap().to_string();
    let pdf = attachment_href(&page.text, "capture écran.pdf").expect("a link to the file");

    // The N1 downloads it, as a sandboxed attachment; adds an internal note with a file.
    let n1 = sign_in(&app, N1).await;
    let file = get(&app, &n1, &pdf).await;
    assert_eq!((file.status, file.text.as_bytes()), (200, PDF));
    assert!(file.header("content-disposition").unwrap().starts_with("attachment; filename=\"capture--cran.pdf\""));
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    assert!(file.header("content-security-policy").unwrap().starts_with("sandbox"));
    assert_eq!(file.header("content-type"), Some("application/pdf"));
    let note = [("message", "Journal du serveur SSO joint."), ("visibilite", "interne")];
    let noted = post_files(&app, &n1, &format!("{path}/commentaire"), &note, &[("journal.txt", b"ERROR sso\n")]).await;
    let page = follow(&app, &n1, &noted).await;
    let journal = attachment_href(&page.text, "journal.txt").expect("the note's file is listed to N1");
    assert_eq!(get(&app, &n1, &journal).await.text, "ERROR sso\n");

    // The usager: its file, not the internal note's (listed nor served).
    let page = get(&app, &usager, &path).await;
    assert!(page.text.contains("capture écran.pdf") && !page.text.contains("journal.txt"), "{}", page.text);
    assert_eq!(get(&app, &usager, &journal).await.status, 404);
    assert_eq!(get(&app, &usager, &pdf).await.status, 200);
    // Another commune's N1: neither.
    let other = sign_in(&app, OTHER_N1).await;
    assert_eq!((get(&app, &other, &pdf).await.status, get(&app, &other, &journal).await.status), (404, 404));

    // Up to the vendor: the usager's file, never the internal note's.
    for (who, reason) in [(N1, "Relève de l'académie."), (N2, "Anomalie de l'éditeur.")] {
        let session = sign_in(&app, who).await;
        let page = get(&app, &session, &path).await;
        let up = [("version", version_of(&page.text)), ("motif", reason.to_string())];
        let up: Vec<(&str, &str)> = up.iter().map(|(k, v)| (*k, v.as_str())).collect();
        follow(&app, &session, &post_form(&app, &session, &format!("{path}/escalade"), &up).await).await;
    }
    let n3 = sign_in(&app, N3).await;
    let page = get(&app, &n3, &path).await;
    assert!(page.text.contains("capture écran.pdf") && !page.text.contains("journal.txt"), "{}", page.text);
    assert!(!page.text.contains(USAGER), "the uploader is pseudonymised for the vendor: {}", page.text);
    assert_eq!((get(&app, &n3, &pdf).await.status, get(&app, &n3, &journal).await.status), (200, 404));

    // Each upload is audited with the file's fingerprint.
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT summary FROM audit_log WHERE action = 'support.tickets.attach' ORDER BY seq")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited[0].contains("capture écran.pdf") && audited[1].contains("\"internal\""), "{audited:?}");
}

backend_test!(the_reports_chart_the_backlog_and_the_delays_per_level_and_per_tenant_with_their_data_and_csv);
async fn the_reports_chart_the_backlog_and_the_delays_per_level_and_per_tenant_with_their_data_and_csv(db: TestDb) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    open_ticket(&app, &usager).await;
    open_ticket(&app, &usager).await;
    assert_eq!(get(&app, &usager, "/tickets/rapports").await.status, 403, "a requester has no report");

    let n1 = sign_in(&app, N1).await;
    // A support agent's home lists the screens of the role, not « screens to come ».
    let home = get(&app, &n1, "/").await;
    assert!(home.text.contains("id=\"vos-ecrans\""), "{}", home.text);
    assert!(home.text.contains("<li><a class=\"fr-link\" href=\"&#x2F;tickets\">Support</a></li>"), "{}", home.text);
    assert!(!home.text.contains("arrivent dans la console"), "{}", home.text);
    let page = get(&app, &n1, "/tickets/rapports").await;
    assert_eq!(page.status, 200, "{}", page.text);
    // Four charts, each an SVG image followed by the data table.
    assert_eq!(page.text.matches("<svg role=\"img\"").count(), 4, "{}", page.text);
    let table = &page.text[page.text.find("id=\"donnees-rapport\"").expect("the data table")..];
    let n1_row = &table[table.find("<th scope=\"row\">N1</th>").expect("the N1 row")..];
    // Two new tickets at N1: 2 new, 0 in progress, 0 waiting, 0 resolved, 0 closed, 2 open.
    assert!(n1_row.starts_with("<th scope=\"row\">N1</th><td>2</td><td>0</td><td>0</td><td>0</td>"), "{n1_row}");
    // Neither is settled: no compliance yet, both « sans réponse ».
    let n1_row = &n1_row[..n1_row.find("</tr>").unwrap() + 5];
    assert!(n1_row.ends_with("<td>—</td><td>0</td>\n        <td>0</td><td>0</td><td>2</td></tr>"), "{n1_row}");
    assert!(page.text.contains("Sans réponse") && page.text.contains("En cours dans les délais"), "{}", page.text);
    let per_tenant = get(&app, &n1, "/tickets/rapports?par=ent").await;
    assert!(per_tenant.text.contains(&format!("<th scope=\"row\">{TENANT}</th><td>2</td>")), "{}", per_tenant.text);

    let csv = get(&app, &n1, "/tickets/rapports/csv?par=ent").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.header("content-disposition").unwrap().starts_with("attachment"));
    assert!(csv.text.starts_with("\u{feff}tenant;nouveaux;"), "UTF-8 with BOM for a French spreadsheet: {}", csv.text);
    assert!(csv.text.contains(&format!("{TENANT};2;0;0;0;0;")), "{}", csv.text);
    // Another commune's N1 counts none of them.
    let other = sign_in(&app, OTHER_N1).await;
    assert!(!get(&app, &other, "/tickets/rapports/csv?par=ent").await.text.contains(TENANT));
}

backend_test!(a_reply_with_control_characters_is_refused_whether_posted_with_files_or_not);
async fn a_reply_with_control_characters_is_refused_whether_posted_with_files_or_not(db: TestDb) {
    let name = db.name;
    let (app, _, reference) = ticket_of_the_usager(db).await;
    let path = format!("/tickets/{reference}/commentaire");
    let comments = || common::count(&app.store, "SELECT COUNT(*) FROM support_events WHERE kind = 'comment'", &[]);
    let n1 = sign_in(&app, N1).await;
    let hostile = [("message", "Redémarrez\u{0} le poste."), ("visibilite", "public")];
    let refused = post_form(&app, &n1, &path, &hostile).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("caractère de contrôle interdit"), "{name}: {}", refused.text);
    let escape = [("message", "Voir \u{1b}]8;;http://x\u{7}ici"), ("visibilite", "public")];
    let refused = post_files(&app, &n1, &path, &escape, &[("journal.txt", b"ERROR sso\n")]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert_eq!(comments().await, 0, "{name}: no comment written");
    let files = common::count(&app.store, "SELECT COUNT(*) FROM support_attachments", &[]).await;
    assert_eq!(files, 0, "{name}: no file kept");
    // Line breaks are text.
    let fine = [("message", "Redémarrez le poste,\r\npuis réessayez."), ("visibilite", "public")];
    assert_eq!(post_form(&app, &n1, &path, &fine).await.status, 303, "{name}");
    assert_eq!(comments().await, 1, "{name}");
}

/// The one-time submission token of the first form of a page.
pub(crate) fn envoi_of(html: &str) -> String {
    let at = html.find("name=\"_envoi\" value=\"").expect("a submission token field") + 21;
    html[at..at + 64].to_string()
}

backend_test!(a_ticket_form_posted_twice_opens_one_ticket_and_another_form_another);
async fn a_ticket_form_posted_twice_opens_one_ticket_and_another_form_another(db: TestDb) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let subject = "Le formulaire est parti deux fois";
    let fields = |token: &str, with_subject: bool| {
        let subject = if with_subject { subject } else { "" };
        [
            ("_envoi", token.to_string()),
            ("ent", TENANT.to_string()),
            ("sujet", subject.to_string()),
            ("categorie", "acces".to_string()),
            ("impact", "haute".to_string()),
            ("urgence", "moyenne".to_string()),
            ("description", "Un double clic sur « Ouvrir le ticket ».".to_string()),
        ]
    };
    let opened = async |fields: &[(&str, String)]| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_form(&app, &usager, "/tickets/nouveau", &fields).await
    };
    let tickets = async || {
        common::count(&app.store, "SELECT COUNT(*) AS n FROM support_tickets WHERE subject = $1", &[subject]).await
    };

    // The same form posted twice (a double click): one ticket, both answers lead to it.
    let token = envoi_of(&get(&app, &usager, "/tickets/nouveau").await.text);
    let first = opened(&fields(&token, true)).await;
    let second = opened(&fields(&token, true)).await;
    assert_eq!((first.status, second.status), (303, 303), "{} {}", first.text, second.text);
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(tickets().await, 1);

    // Another form: another ticket, even after a refusal of it (the form shown again keeps
    // its token, which the refusal left free).
    let other = envoi_of(&get(&app, &usager, "/tickets/nouveau").await.text);
    assert_ne!(other, token, "each form its own token");
    let refused = opened(&fields(&other, false)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(envoi_of(&refused.text), other, "the form shown again keeps its token");
    let third = opened(&fields(&other, true)).await;
    assert_eq!(third.status, 303, "{}", third.text);
    assert_ne!(third.header("location"), first.header("location"));
    assert_eq!(tickets().await, 2);
}

backend_test!(a_reply_posted_twice_is_written_once_and_the_next_form_writes_another);
async fn a_reply_posted_twice_is_written_once_and_the_next_form_writes_another(db: TestDb) {
    let name = db.name;
    let (app, _, reference) = ticket_of_the_usager(db).await;
    let path = format!("/tickets/{reference}");
    let replies = async || {
        let sql = "SELECT COUNT(*) AS n FROM support_events WHERE kind = 'comment' AND body = $1";
        common::count(&app.store, sql, &["Nous regardons."]).await
    };
    let n1 = sign_in(&app, N1).await;
    // The same reply form sent twice (a double click, the answer reloaded): one reply,
    // both answers lead back to the ticket.
    let token = envoi_of(&get(&app, &n1, &path).await.text);
    let reply = [("_envoi", token.as_str()), ("message", "Nous regardons."), ("visibilite", "public")];
    let first = post_form(&app, &n1, &format!("{path}/commentaire"), &reply).await;
    let second = post_form(&app, &n1, &format!("{path}/commentaire"), &reply).await;
    assert_eq!((first.status, second.status), (303, 303), "{name}: {} {}", first.text, second.text);
    assert_eq!(second.header("location"), first.header("location"), "{name}");
    assert_eq!(replies().await, 1, "{name}: one reply for one form");
    // A refused reply leaves its token free: the corrected form is written.
    let page = follow(&app, &n1, &first).await;
    let other = envoi_of(&page.text);
    assert_ne!(other, token, "{name}: each form its own token");
    let empty = [("_envoi", other.as_str()), ("message", " "), ("visibilite", "public")];
    let refused = post_form(&app, &n1, &format!("{path}/commentaire"), &empty).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert_eq!(envoi_of(&refused.text), other, "{name}: the form shown again keeps its token");
    let again = [("_envoi", other.as_str()), ("message", "Nous regardons."), ("visibilite", "public")];
    assert_eq!(post_form(&app, &n1, &format!("{path}/commentaire"), &again).await.status, 303, "{name}");
    assert_eq!(replies().await, 2, "{name}: the same words from another form are another reply");
}

backend_test!(a_reply_with_one_file_too_many_writes_nothing_and_the_corrected_form_writes_it_once);
async fn a_reply_with_one_file_too_many_writes_nothing_and_the_corrected_form_writes_it_once(db: TestDb) {
    let name = db.name;
    let (app, usager, reference) = ticket_of_the_usager(db).await;
    let path = format!("/tickets/{reference}");
    let n1 = sign_in(&app, N1).await;
    // 19 files already joined, three by three then one.
    let three: [(&str, &[u8]); 3] = [("a.txt", b"a\n"), ("b.txt", b"b\n"), ("c.txt", b"c\n")];
    for n in 0..7 {
        let files = if n < 6 { &three[..] } else { &three[..1] };
        let sent = post_files(
            &app,
            &n1,
            &format!("{path}/commentaire"),
            &[("message", "Journal"), ("visibilite", "public")],
            files,
        )
        .await;
        assert_eq!(sent.status, 303, "{name}: {}", sent.text);
    }
    let files = || common::count(&app.store, "SELECT COUNT(*) FROM support_attachments", &[]);
    let replies = || {
        common::count(
            &app.store,
            "SELECT COUNT(*) FROM support_events WHERE kind = 'comment' AND body = $1",
            &["Voici la procédure."],
        )
    };
    assert_eq!(files().await, 19, "{name}");

    // Two more: one too many. No reply, no file; the form again with its text, the error on its field.
    let token = envoi_of(&get(&app, &n1, &path).await.text);
    let reply = [("_envoi", token.as_str()), ("message", "Voici la procédure."), ("visibilite", "public")];
    let two: [(&str, &[u8]); 2] = [("procedure.txt", b"1. Redemarrer\n"), ("capture.pdf", PDF)];
    let refused = post_files(&app, &n1, &format!("{path}/commentaire"), &reply, &two).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert_eq!((replies().await, files().await), (0, 19), "{name}: nothing written");
    assert!(refused.text.contains("20 au plus"), "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#pieces\""), "{name}: the summary links the field: {}", refused.text);
    assert!(refused.text.contains("aria-describedby=\"pieces-erreur\""), "{name}: {}", refused.text);
    assert!(refused.text.contains(">Voici la procédure.</textarea>"), "{name}: the text is kept: {}", refused.text);
    assert_eq!(envoi_of(&refused.text), token, "{name}: the form shown again keeps its token");

    // The same form with one file: written once, even sent twice.
    let first = post_files(&app, &n1, &format!("{path}/commentaire"), &reply, &two[..1]).await;
    let second = post_files(&app, &n1, &format!("{path}/commentaire"), &reply, &two[..1]).await;
    assert_eq!((first.status, second.status), (303, 303), "{name}: {} {}", first.text, second.text);
    assert_eq!(second.header("location"), first.header("location"), "{name}");
    assert_eq!((replies().await, files().await), (1, 20), "{name}: one reply, its file");
    let page = follow(&app, &usager, &first).await;
    assert!(page.text.contains("procedure.txt"), "{name}: the requester sees the reply's file: {}", page.text);
}

/// The references of the queue's rows, in order.
fn queue_refs(html: &str) -> Vec<String> {
    let rows = html.split("<th scope=\"row\"><a href=\"").skip(1);
    rows.filter_map(|rest| rest.split_once("\">").and_then(|(_, t)| t.split('<').next()).map(str::to_string)).collect()
}

/// Where the pager's link titled `title` leads; none when it is disabled.
fn pager_link(html: &str, title: &str) -> Option<String> {
    let at = html.find(&format!("\" title=\"{title}\">"))?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(html[start..at].replace("&#x2F;", "/").replace("&amp;", "&"))
}

backend_test!(the_queue_pages_by_cursor_so_tickets_opened_between_two_pages_shift_no_row);
async fn the_queue_pages_by_cursor_so_tickets_opened_between_two_pages_shift_no_row(db: TestDb) {
    let name = db.name;
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let mut opened = Vec::new();
    for _ in 0..5 {
        opened.push(open_ticket(&app, &usager).await);
    }
    let n1 = sign_in(&app, N1).await;
    // Newest first, two a page, among the new tickets.
    let first = get(&app, &n1, "/tickets?statut=new&tri=-reference&taille=2").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(queue_refs(&first.text), [opened[4].clone(), opened[3].clone()], "{name}");
    assert!(pager_link(&first.text, "Page précédente").is_none(), "no page before the first");
    assert!(first.text.contains(">Suivant</a>") && first.text.contains(">Précédent</a>"), "{}", first.text);
    assert!(!first.text.contains("Page 1 sur"), "no page numbers on a cursor-paged list");

    // Two tickets opened between two page loads land on top: paged by number, the first
    // page's rows would come again on the second.
    let newer = [open_ticket(&app, &usager).await, open_ticket(&app, &usager).await];
    let mut seen = queue_refs(&first.text);
    let mut html = first.text;
    while let Some(next) = pager_link(&html, "Page suivante") {
        assert!(next.contains("statut=new") && next.contains("tri=-reference") && next.contains("taille=2"), "{next}");
        let page = get(&app, &n1, &next).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(queue_refs(&page.text));
        html = page.text;
    }
    let mut want = opened.clone();
    want.reverse();
    assert_eq!(seen, want, "{name}: every ticket once, none skipped, none of the newer ones");

    // « Précédent » goes back a page at a time, up to the top, where the newer tickets are.
    let mut back = Vec::new();
    while let Some(previous) = pager_link(&html, "Page précédente") {
        let page = get(&app, &n1, &previous).await;
        assert_eq!(page.status, 200, "{}", page.text);
        back.push(queue_refs(&page.text));
        html = page.text;
    }
    let pair = |a: &String, b: &String| vec![a.clone(), b.clone()];
    let want = [pair(&opened[2], &opened[1]), pair(&opened[4], &opened[3]), pair(&newer[1], &newer[0])];
    assert_eq!(back, want, "{name}");
    // A cursor that is not one starts over at the top.
    let forged = get(&app, &n1, "/tickets?statut=new&tri=-reference&taille=2&curseur=%27%3B--").await;
    assert_eq!(forged.status, 200, "{}", forged.text);
    assert_eq!(queue_refs(&forged.text), [newer[1].clone(), newer[0].clone()]);
}

backend_test!(the_report_screen_counts_the_month_chosen_and_refuses_a_malformed_one);
async fn the_report_screen_counts_the_month_chosen_and_refuses_a_malformed_one(db: TestDb) {
    let store = db.store.clone();
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    open_ticket(&app, &usager).await;
    open_ticket(&app, &usager).await;
    // One of them created in March 2026.
    let march = "2026-03-10T10:00:00.000000Z";
    sqlx::query(
        "UPDATE support_tickets SET created_at = $1 WHERE reference = (SELECT MIN(reference) FROM support_tickets)",
    )
    .bind(march)
    .execute(store.pool())
    .await
    .unwrap();
    let n1 = sign_in(&app, N1).await;
    let page = get(&app, &n1, "/tickets/rapports").await;
    assert!(page.text.contains("id=\"mois\" name=\"mois\" value=\"\""), "empty by default: {}", page.text);
    assert!(page.text.contains("depuis le début"), "{}", page.text);
    let n1_row = |html: &str| {
        let table = &html[html.find("id=\"donnees-rapport\"").expect("the data table")..];
        table[table.find("<th scope=\"row\">N1</th>").expect("the N1 row")..].split("</tr>").next().unwrap().to_string()
    };
    assert!(n1_row(&page.text).starts_with("<th scope=\"row\">N1</th><td>2</td>"), "{}", n1_row(&page.text));
    let march_page = get(&app, &n1, "/tickets/rapports?par=niveau&mois=2026-03").await;
    assert_eq!(march_page.status, 200, "{}", march_page.text);
    assert!(march_page.text.contains("value=\"2026-03\""), "the month stays chosen");
    assert!(march_page.text.contains("mars 2026"), "{}", march_page.text);
    assert!(
        n1_row(&march_page.text).starts_with("<th scope=\"row\">N1</th><td>1</td>"),
        "{}",
        n1_row(&march_page.text)
    );
    // The grouping links and the CSV keep the month.
    assert!(
        march_page.text.contains("href=\"&#x2F;tickets&#x2F;rapports?par=ent&amp;mois=2026-03\""),
        "{}",
        march_page.text
    );
    let csv = get(&app, &n1, "/tickets/rapports/csv?par=niveau&mois=2026-03").await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.text.starts_with("\u{feff}période;mars 2026"), "{}", csv.text);
    assert!(csv.text.contains("\nN1;1;"), "{}", csv.text);
    let bad = get(&app, &n1, "/tickets/rapports?mois=2026-3x").await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("id=\"mois-erreur\"") && bad.text.contains("attendu AAAA-MM"), "{}", bad.text);
    assert!(!bad.text.contains("id=\"donnees-rapport\""), "no figures for a month not understood");
}

backend_test!(the_demo_school_head_opens_a_ticket_on_the_commune_ent_serving_her_school);
/// README (Support): « l'ENT de son école ou de sa commune présélectionné ». With
/// `serve --demo`, the école's head finds the commune's tenant `fresnes` (which serves her
/// school) offered and pre-selected, opens a ticket on it and reads it; the tenant of
/// another commune stays out of her list.
async fn the_demo_school_head_opens_a_ticket_on_the_commune_ent_serving_her_school(db: TestDb) {
    let app = crate::console::demo_app(db).await;
    let (email, ..) = entcp::demo::PERSONAS[2];
    let head = sign_in(&app, email).await;
    let offered = |form: &common::Resp| {
        assert_eq!(form.status, 200, "{}", form.text);
        assert!(form.text.contains("<option value=\"fresnes\" selected>"), "{}", form.text);
        assert!(!form.text.contains("value=\"vitry-henri-wallon-a\""), "{}", form.text);
    };
    offered(&get(&app, &head, "/tickets/nouveau").await);
    // README (Organisations): Fresnes delegates its ENT to an EPCI. The EPCI, which has no
    // ENT, now funds the school; the commune's ENT still serves it and is still offered.
    let epci =
        common::fixtures::new_org(&app.store, OrgKind::Epci, "Métropole du Grand Paris", "200054781", None).await;
    let commune = entcp::registry::resolve_org(&app.store, "commune:94034").await.unwrap();
    entcp::registry::manage::set_member(&app.store, &admin(), &epci, &commune, true, t0()).await.unwrap();
    offered(&get(&app, &head, "/tickets/nouveau").await);
    let fields = [
        ("ent", "fresnes"),
        ("sujet", "Le cahier de liaison ne s'ouvre plus"),
        ("categorie", "acces"),
        ("impact", "haute"),
        ("urgence", "haute"),
        ("description", "Depuis ce matin, une page blanche s'affiche."),
    ];
    let sent = post_form(&app, &head, "/tickets/nouveau", &fields).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    let page = follow(&app, &head, &sent).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Le cahier de liaison ne s&#x27;ouvre plus"), "{}", page.text);
}

/// The ticket page's form posted at `path` (`/statut`, `/escalade`…) by `who` with `fields`
/// and the version the page shows; where it leads.
async fn act_on(app: &TestApp, who: &str, reference: &str, form: &str, fields: &[(&str, &str)]) -> String {
    let path = format!("/tickets/{reference}");
    let version = version_of(&get(app, who, &path).await.text);
    let mut posted = vec![("version", version.as_str())];
    posted.extend_from_slice(fields);
    let sent = post_form(app, who, &format!("{path}/{form}"), &posted).await;
    assert_eq!(sent.status, 303, "{form}: {}", sent.text);
    follow(app, who, &sent).await.text
}

// The usager's list filters and sorts on the status they read: a ticket escalated while new is
// « en cours » to them, found under that status only and sorted among those in progress; the
// level, the assignee and the due date, the support's, are not theirs to sort by. The support
// filters on the status it reads, the stored one.
backend_test!(the_requesters_list_filters_and_sorts_on_the_status_they_read);
async fn the_requesters_list_filters_and_sorts_on_the_status_they_read(db: TestDb) {
    let name = db.name;
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let escalated = open_ticket(&app, &usager).await;
    let taken = open_ticket(&app, &usager).await;
    let n1 = sign_in(&app, N1).await;
    act_on(&app, &n1, &taken, "statut", &[("vers", "in_progress")]).await;
    act_on(&app, &n1, &escalated, "escalade", &[("motif", "Relève de l'académie.")]).await;

    let listed = async |who: &str, query: &str| queue_refs(&get(&app, who, &format!("/tickets{query}")).await.text);
    assert_eq!(listed(&usager, "?statut=new").await, Vec::<String>::new(), "{name}: the escalation shows through");
    assert_eq!(listed(&usager, "?statut=in_progress").await, [escalated.clone(), taken.clone()], "{name}");
    // Sorted by the status they read: both in progress, in the order they were opened (the
    // stored status would put the one new at N2 after the one taken at N1).
    assert_eq!(listed(&usager, "?tri=statut").await, [escalated.clone(), taken.clone()], "{name}");
    assert_eq!(listed(&usager, "?tri=-statut").await, [taken.clone(), escalated.clone()], "{name}");
    let page = get(&app, &usager, "/tickets?tri=echeance").await;
    assert!(!page.text.contains("Prochaine échéance") && !page.text.contains("tri=niveau"), "{name}: {}", page.text);
    assert_eq!(queue_refs(&page.text), [escalated.clone(), taken.clone()], "{name}: by reference, not by due date");

    // The N2 reads the escalated ticket new at its level.
    let n2 = sign_in(&app, N2).await;
    assert_eq!(listed(&n2, "?statut=new").await, [escalated], "{name}");
    assert!(listed(&n2, "?statut=in_progress").await.is_empty(), "{name}");
}

// Each comment's confirmation says what it did, to whom: the usager's message goes to the support,
// the N1's reply to the usager, a note of the N1 or the N2 stays with them, the vendor's note is
// read by the support, not by the usager.
backend_test!(each_comment_confirmation_says_what_was_done_for_whom_at_every_level);
async fn each_comment_confirmation_says_what_was_done_for_whom_at_every_level(db: TestDb) {
    let (app, usager, reference) = ticket_of_the_usager(db).await;
    let name = app.backend;
    let path = format!("/tickets/{reference}");
    let said = async |who: &str, visibility: &str, message: &str| {
        let fields = [("message", message), ("visibilite", visibility)];
        let sent = post_form(&app, who, &format!("{path}/commentaire"), &fields).await;
        assert_eq!(sent.status, 303, "{name}: {}", sent.text);
        follow(&app, who, &sent).await.text
    };
    let page = said(&usager, "public", "Toujours bloqué.").await;
    assert!(
        page.contains("Votre message est ajouté au ticket : le support qui le traite en est prévenu"),
        "{name}: {page}"
    );
    let n1 = sign_in(&app, N1).await;
    let page = said(&n1, "public", "Nous regardons.").await;
    assert!(page.contains("Votre réponse est envoyée au demandeur"), "{name}: {page}");
    let internal = "Votre note interne est ajoutée à l&#x27;historique : seuls les niveaux N1 et N2 la lisent";
    let page = said(&n1, "interne", "Certificat expiré ?").await;
    assert!(page.contains(internal), "{name}: {page}");
    act_on(&app, &n1, &reference, "escalade", &[("motif", "Relève de l'académie.")]).await;
    let n2 = sign_in(&app, N2).await;
    let page = said(&n2, "interne", "Import AAF en échec.").await;
    assert!(page.contains(internal), "{name}: {page}");
    act_on(&app, &n2, &reference, "escalade", &[("motif", "Anomalie de l'éditeur.")]).await;
    // The vendor's note is no internal note: the whole support reads it.
    let n3 = sign_in(&app, N3).await;
    let page = said(&n3, "interne", "Correctif en cours.").await;
    assert!(
        page.contains(
            "Votre note au support est ajoutée à l&#x27;historique : les niveaux N1 et N2 la lisent, pas le demandeur"
        ),
        "{name}: {page}"
    );
    assert!(!page.contains("note interne"), "{name}: {page}");
}

// A ticket about a service names it as the catalog does, not by its code (domain review 41, F10).
backend_test!(a_ticket_about_a_service_names_the_service_as_the_catalog_does);
async fn a_ticket_about_a_service_names_the_service_as_the_catalog_does(db: TestDb) {
    let app = app(db).await;
    let usager = sign_in(&app, USAGER).await;
    let mut form = TICKET_FORM.to_vec();
    form.retain(|(k, _)| *k != "categorie");
    form.extend([("categorie", "service"), ("service", "carnet-de-liaison")]);
    let sent = post_form(&app, &usager, "/tickets/nouveau", &form).await;
    let location = sent.header("location").unwrap_or_else(|| panic!("{}: {}", app.backend, sent.text));
    let reference = key_of(location, "/tickets/");
    let page = get(&app, &usager, &format!("/tickets/{reference}")).await;
    assert!(page.text.contains("Un service — Carnet de liaison</dd>"), "{}: {}", app.backend, page.text);
    assert!(!page.text.contains("— carnet-de-liaison"), "{}", app.backend);
}

/// Gives `email` a name in the directory, as a person's account has (the desk's are named by
/// their addresses).
async fn named(app: &TestApp, email: &str, name: &str) {
    sqlx::query("UPDATE users SET display_name = $1 WHERE email = $2")
        .bind(name)
        .bind(email)
        .execute(app.store.pool())
        .await
        .unwrap();
}

// The form offers the services the chosen ENT runs, and the domain refuses another one on the
// field; the error summary reads in the form's order.
backend_test!(the_ticket_form_offers_the_services_of_the_chosen_ent_and_its_summary_follows_the_form);
async fn the_ticket_form_offers_the_services_of_the_chosen_ent_and_its_summary_follows_the_form(db: TestDb) {
    let app = app(db).await;
    let name = app.backend;
    let usager = sign_in(&app, USAGER).await;
    let form = get(&app, &usager, "/tickets/nouveau").await;
    // Socle premier degré: the carnet de liaison, no visioconférence.
    assert!(form.text.contains("<option value=\"carnet-de-liaison\""), "{name}: {}", form.text);
    assert!(!form.text.contains("<option value=\"visio\""), "{name}: {}", form.text);
    let sent =
        [("ent", TENANT), ("categorie", "service"), ("service", "visio"), ("impact", "haute"), ("urgence", "basse")];
    let refused = post_form(&app, &usager, "/tickets/nouveau", &sent).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    let links = crate::console::summary_links(&refused.text);
    let targets: Vec<&str> = links.iter().map(|(href, _)| href.as_str()).collect();
    assert_eq!(targets, ["sujet", "service", "description"], "{name}: the form's order: {links:?}");
    let service = &links[1].1;
    assert!(service.contains("ne fait pas fonctionner le service « Visioconférence »"), "{name}: {service}");
}

// The usager is told their ticket is registered, with the due first response; the académie's N2
// is told when its first response is due; the usager's page says who handles the ticket in their
// words and when the next step is due, and names the agents, never by their addresses.
backend_test!(the_requester_reads_who_handles_the_ticket_and_by_when_and_the_mails_carry_the_deadline);
async fn the_requester_reads_who_handles_the_ticket_and_by_when_and_the_mails_carry_the_deadline(db: TestDb) {
    let app = app(db).await;
    let name = app.backend;
    running(&app).await;
    named(&app, N1, "Julie Martin").await;
    let usager = sign_in(&app, USAGER).await;
    let reference = open_ticket(&app, &usager).await;
    let mail = async |event: &str, to: &str| {
        let mut mails = common::queued_mails(&app.store, "support").await.into_iter();
        let found = mails.rfind(|m| m.context["event"] == event && m.recipients.contains(to));
        found.unwrap_or_else(|| panic!("{name}: no {event} mail to {to}")).context
    };
    let received = mail("received", USAGER).await;
    assert_eq!(received["reference"], reference.as_str(), "{name}: {received}");
    let due = received["due"].as_str().unwrap_or_default().to_string();
    assert!(due.contains(" à ") && due.contains(" h "), "{name}: the platform's hours: {received}");
    assert!(
        common::queued_mails(&app.store, "support")
            .await
            .iter()
            .all(|m| m.context["event"] != "received" || !m.recipients.contains(N1)),
        "{name}: the acknowledgement is the requester's"
    );

    let path = format!("/tickets/{reference}");
    let page = get(&app, &usager, &path).await;
    assert!(
        page.text.contains("Votre ticket est pris en charge par le support de proximité."),
        "{name}: {}",
        page.text
    );
    assert!(page.text.contains(&format!("Première réponse attendue au plus tard le {due}.")), "{name}: {}", page.text);

    let n1 = sign_in(&app, N1).await;
    let reply = [("message", "Nous regardons."), ("visibilite", "public")];
    follow(&app, &n1, &post_form(&app, &n1, &format!("{path}/commentaire"), &reply).await).await;
    let page = get(&app, &n1, &path).await;
    let up = [("version", version_of(&page.text)), ("motif", "Relève de l'académie.".to_string())];
    let up: Vec<(&str, &str)> = up.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let escalated = post_form(&app, &n1, &format!("{path}/escalade"), &up).await;
    assert_eq!(escalated.status, 303, "{name}: {}", escalated.text);
    let told = mail("escalated", N2).await;
    assert_eq!(told["due_of"], "Première réponse", "{name}: {told}");
    assert!(told["due"].as_str().is_some_and(|d| d.contains(" h ")), "{name}: the N2's deadline: {told}");

    let page = get(&app, &usager, &path).await;
    assert!(page.text.contains("Votre ticket est transmis au support de l&#x27;académie"), "{name}: {}", page.text);
    assert!(page.text.contains("au plus tard le"), "{name}: the next step's due date: {}", page.text);
    assert!(page.text.contains("Julie Martin (N1)"), "{name}: the agent by name: {}", page.text);
    assert!(!page.text.contains(N1), "{name}: no agent's address to the requester: {}", page.text);
}
