//! Browser journeys of the RGPD screens (the DPO), on both databases: on the demo data,
//! the DPO of Fresnes exports the register as ODS and takes a snapshot; the DAN adds a
//! service to the commune's ENT from its page; the DPO takes a new snapshot and the
//! comparison with the previous one shows the new activity; the contacts, logs and contracts
//! pages follow. The operator (who keeps the vendor's registers) adds a sub-processor to a
//! processor contract of the commune through its page's form and removes it. axe-core on every page.

use crate::browser::{choose, sign_out, visit};
use crate::common::browser::{journey, Browser};
use crate::common::{self, t0, TestDb};
use crate::console::PASSWORD;
use crate::console_rgpd::{contract_at, contracts_named, people, register_of, DAN, DPO, ROOT};
use entcp::clock::FixedClock;
use entcp::kernel::roles::OrgKind;
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
    let backend = db.name;
    let d = crate::rgpd::demo(db).await;
    let store = d.db.store.clone();
    people(&store).await;
    let register = register_of(&store, "commune:94034").await;
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_console(store.clone(), clock).await;
    journey("rgpd_dpo", backend, &base, |browser| async move {
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

backend_test!(the_operator_adds_and_removes_a_sub_processor_through_the_contract_page_in_a_browser);
async fn the_operator_adds_and_removes_a_sub_processor_through_the_contract_page_in_a_browser(db: TestDb) {
    let backend = db.name;
    let d = crate::rgpd::demo(db).await;
    let store = d.db.store.clone();
    people(&store).await;
    crate::console::person(&store, ROOT, entcp::kernel::roles::Role::Admin, None).await;
    let backup = common::fixtures::new_org(
        &store,
        OrgKind::Hebergeur,
        "Hébergeur de secours",
        &common::fixtures::siren(71),
        None,
    )
    .await;
    let register = register_of(&store, "commune:94034").await;
    let (contract, _) = contract_at(&store, &register, "MARCHE-ENT-94034").await;
    let vendor = entcp::registry::resolve_org(&store, "editeur:900000019").await.unwrap().id;
    let page = format!("{register}/contrats/{contract}");
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_console(store.clone(), clock).await;
    journey("rgpd_sub_processor", backend, &base, |browser| async move {
        sign_in(&browser, ROOT).await;
        browser.open(&format!("{register}/contrats")).await;
        browser.click_to_page(&format!("#contrats a[href='{page}']")).await;
        assert_eq!(browser.path().await, page);
        assert!(browser.heading().await.starts_with("Contrat MARCHE-ENT-94034"), "{}", browser.heading().await);
        browser.axe().await;

        // Sent without the processor nor the reference: the errors, each at its field, pass axe too.
        browser.fill("#sous-traitant-title", "Hébergement de secours").await;
        browser.click_to_page("#ajouter-sous-traitant").await;
        let text = browser.text().await;
        assert!(text.contains("Le formulaire contient"), "{text}");
        for field in ["processor", "reference"] {
            let control = browser.find(&format!("#sous-traitant-{field}")).await;
            let described = control.attr("aria-describedby").await.unwrap();
            assert_eq!(described.as_deref(), Some(format!("sous-traitant-{field}-erreur").as_str()), "{field}");
        }
        let kept = browser.find("#sous-traitant-title").await.prop("value").await.unwrap();
        assert_eq!(kept.as_deref(), Some("Hébergement de secours"), "the input is kept");
        browser.axe().await;
        assert_eq!(contracts_named(&store, "HEB-SECOURS-1").await, 0, "nothing added");

        // Chosen, filled and sent as a person would: the page lists it.
        choose(&browser, "#sous-traitant-processor", &backup.id).await;
        browser.fill("#sous-traitant-reference", "HEB-SECOURS-1").await;
        browser.click("label[for='sous-traitant-art28']").await;
        browser.click_to_page("#ajouter-sous-traitant").await;
        assert_eq!(browser.path().await, format!("{page}?apres=sous-traitant-ajoute"));
        let text = browser.text().await;
        assert!(text.contains("Le sous-traitant ultérieur est ajouté au contrat."), "{text}");
        // Bound to the vendor (the contract's processor) as its sub-processor.
        let (added, _) = contract_at(&store, &format!("/rgpd/{vendor}"), "HEB-SECOURS-1").await;
        // The badges are shown in capitals by the style.
        let row = browser.find(&format!("#sous-traitant-{added}")).await.text().await.unwrap().to_lowercase();
        assert!(row.contains("hébergeur de secours") && row.contains("heb-secours-1"), "{row}");
        assert!(row.contains("hébergement de secours") && row.contains("clauses de l'article 28"), "{row}");
        assert!(!row.contains("sans clauses"), "the Art. 28 box was ticked: {row}");
        browser.axe().await;

        // Removed from its row: gone from the page and from the database.
        browser.click_to_page(&format!("#retirer-{added}")).await;
        assert_eq!(browser.path().await, format!("{page}?apres=sous-traitant-retire"));
        let text = browser.text().await;
        assert!(text.contains("Le sous-traitant ultérieur est retiré du contrat."), "{text}");
        let rows = browser.find("#sous-traitants tbody").await.text().await.unwrap().to_lowercase();
        assert!(!rows.contains("heb-secours-1") && !rows.contains("hébergeur de secours"), "{rows}");
        assert_eq!(contracts_named(&store, "HEB-SECOURS-1").await, 0, "removed");
        browser.axe().await;
    })
    .await;
}
