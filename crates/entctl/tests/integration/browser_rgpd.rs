//! Browser journeys of the RGPD screens (the DPO), on both databases: on the demo data,
//! the DPO of Fresnes exports the register as ODS and takes a snapshot; the DAN adds a
//! service to the commune's ENT from its page; the DPO takes a new snapshot and the
//! comparison with the previous one shows the new activity; the contacts, logs and contracts
//! pages follow. axe-core on every page.

use crate::browser::{choose, sign_out, visit};
use crate::common::browser::{journey, Browser};
use crate::common::{self, t0, TestDb};
use crate::console::PASSWORD;
use crate::console_rgpd::{people, register_of, DAN, DPO};
use entcp::clock::FixedClock;
use serde_json::{json, Value};
use std::sync::Arc;

/// Signs `email` in from the sign-in page.
async fn sign_in(browser: &Browser, email: &str) {
    browser.open("/").await;
    assert!(browser.path().await.starts_with("/connexion"), "{}", browser.path().await);
    browser.sign_in_with_password(email, PASSWORD).await;
}

/// What the browser downloads from the link `css`, fetched in the page with the
/// person's session: its content type, its disposition and its first four bytes.
async fn download(browser: &Browser, css: &str) -> (String, String, Vec<u8>) {
    let href = browser.find(css).await.attr("href").await.unwrap().expect("a link");
    let script = "const [href, done] = arguments;\
        fetch(href).then(r => r.arrayBuffer().then(b => done([r.status, r.headers.get('content-type'),\
          r.headers.get('content-disposition'), Array.from(new Uint8Array(b).slice(0, 4))])))\
          .catch(e => done([0, String(e), '', []]));";
    let got = browser.client.execute_async(script, vec![json!(href)]).await.expect("the download runs");
    assert_eq!(got[0], 200, "{href}: {got}");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let bytes = got[3].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
    (text(&got[1]), text(&got[2]), bytes)
}

/// Takes a snapshot from the register page shown.
async fn take_snapshot(browser: &Browser) {
    browser.click_to_page("#prendre-instantane").await;
    assert!(browser.path().await.contains("apres=instantane"), "{}", browser.path().await);
    browser.axe().await;
}

backend_test!(a_commune_dpo_exports_the_ods_and_sees_the_service_the_dan_adds_in_the_diff_in_a_browser);
async fn a_commune_dpo_exports_the_ods_and_sees_the_service_the_dan_adds_in_the_diff_in_a_browser(db: TestDb) {
    let d = crate::rgpd::demo(db).await;
    let store = d.db.store.clone();
    people(&store).await;
    let register = register_of(&store, "commune:94034").await;
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_knowing_base(store.clone(), clock, |config, base| {
        config.console.public_url = base.to_string();
    })
    .await;
    journey("rgpd_dpo", &base, |browser| async move {
        sign_in(&browser, DPO).await;
        visit(&browser, "/rgpd").await;
        browser.click_to_page("#registres a").await;
        assert_eq!(browser.path().await, register);
        browser.axe().await;
        let (media, disposition, magic) = download(&browser, "#export-ods").await;
        assert_eq!(media, "application/vnd.oasis.opendocument.spreadsheet");
        assert!(disposition.starts_with("attachment; filename=\"registre-rgpd-"), "{disposition}");
        assert_eq!(magic, b"PK\x03\x04", "an ODS is a zip");
        take_snapshot(&browser).await;
        sign_out(&browser).await;

        sign_in(&browser, DAN).await;
        visit(&browser, "/ent/fresnes").await;
        choose(&browser, "#service", "moodle").await;
        browser.click_to_page("#ajouter-service").await;
        assert!(browser.text().await.contains("Le service est ajouté à l'ENT."), "{}", browser.text().await);
        browser.axe().await;
        sign_out(&browser).await;

        sign_in(&browser, DPO).await;
        visit(&browser, &register).await;
        take_snapshot(&browser).await;
        browser.click_to_page("#liste-instantanes tbody tr:first-child td:last-child a:nth-of-type(2)").await;
        assert!(browser.path().await.contains("/ecarts?de="), "{}", browser.path().await);
        let text = browser.text().await;
        assert!(text.contains("Exercices et parcours (Moodle)"), "the new activity in the diff: {text}");
        browser.axe().await;
        // The other pages of the register: contacts, logs, contracts (axe-core on each).
        for (page, heading) in [
            ("profil", "Coordonnées RGPD"),
            ("violations", "Violations de données"),
            ("demandes", "Demandes d'exercice des droits"),
            ("contrats", "Contrats de sous-traitance"),
        ] {
            let text = visit(&browser, &format!("{register}/{page}")).await;
            assert!(browser.heading().await.starts_with(heading), "{page}: {text}");
        }
    })
    .await;
}
