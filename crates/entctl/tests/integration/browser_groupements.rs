//! Browser journeys of the groupement screens (coordinator and communes), on both databases:
//! a coordinator opens a groupement; three communes apply with the quantities pre-filled;
//! the coordinator accepts two and refuses one with its reason, then awards the contract;
//! each member sees its own share and not the other's (a forged address answers 404).
//! axe-core finds no serious or critical violation on any page visited.

use crate::common::browser::{journey, Browser};
use crate::common::{self, t0, TestDb};
use crate::console::PASSWORD;
use crate::console_groupements::{award_fields, constitute, launched_46_days_before_t0, scene, COORD, MAIRIES};
use crate::groupements::registry_counts;
use entcp::clock::FixedClock;
use entcp::store::Store;
use std::sync::Arc;

/// Signs in `email` from the sign-in page.
async fn sign_in(browser: &Browser, email: &str) {
    browser.open("/connexion").await;
    browser.sign_in_with_password(email, PASSWORD).await;
}

async fn sign_out(browser: &Browser) {
    browser.open("/compte").await;
    browser.click_to_page("form[action='/deconnexion'] button").await;
    assert!(browser.path().await.starts_with("/connexion"), "{}", browser.path().await);
}

/// Sets the field `id` (a date input's typing depends on the browser's locale).
async fn set(browser: &Browser, id: &str, value: &str) {
    let script = "document.getElementById(arguments[0]).value = arguments[1]; return true;";
    browser.client.execute(script, vec![id.into(), value.into()]).await.unwrap_or_else(|e| panic!("{id}: {e}"));
}

/// The value of the field `css`.
async fn value_of(browser: &Browser, css: &str) -> String {
    browser.find(css).await.prop("value").await.unwrap().unwrap_or_default()
}

async fn application_id(store: &Store, reference: &str, commune: &str) -> String {
    sqlx::query_scalar(
        "SELECT m.id FROM groupement_members m JOIN groupements g ON g.id = m.groupement_id \
         WHERE g.reference = $1 AND m.org_id = $2",
    )
    .bind(reference)
    .bind(commune)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

backend_test!(a_coordinator_runs_a_groupement_and_each_member_sees_only_its_share_in_the_browser);
async fn a_coordinator_runs_a_groupement_and_each_member_sees_only_its_share_in_the_browser(db: TestDb) {
    let backend = db.name;
    let scene = scene(&db.store).await;
    let mut counts = Vec::new();
    for commune in &scene.communes {
        counts.push(registry_counts(&db.store, commune).await);
    }
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_console(db.store.clone(), clock).await;
    let store = db.store.clone();
    journey("groupements", backend, &base, move |browser| async move {
        // The coordinator opens the groupement from the form.
        sign_in(&browser, COORD).await;
        browser.open("/groupements").await;
        browser.axe().await;
        browser.click_to_page("#ouvrir-groupement").await;
        browser.axe().await;
        browser.fill("#titre", "ENT 1er degré 2027-2030").await;
        browser.fill("#objet", "Fourniture, hébergement et assistance d'un ENT pour les écoles des membres").await;
        browser.fill("#poids-comptes", "").await;
        browser.fill("#poids-eleves", "70").await;
        browser.fill("#poids-egal", "30").await;
        set(&browser, "date-limite", "2026-10-15").await;
        browser.click_to_page("#creer-groupement").await;
        let path = browser.path().await.split('?').next().unwrap().to_string();
        assert!(path.starts_with("/groupements/GC-"), "{path}");
        let reference = path.trim_start_matches("/groupements/").to_string();
        assert!(browser.text().await.contains("Le groupement est ouvert aux adhésions."));
        browser.axe().await;
        sign_out(&browser).await;

        // Three communes apply: the open groupements, the form pre-filled from the registry.
        for ((commune, email), (schools, pupils)) in scene.communes.iter().zip(MAIRIES).zip(&counts) {
            sign_in(&browser, email).await;
            browser.open("/groupements?statut=open").await;
            assert!(browser.text().await.contains(&reference));
            browser.axe().await;
            browser.open(&path).await;
            browser.click_to_page("#candidater").await;
            browser.axe().await;
            assert_eq!(value_of(&browser, "#ecoles").await, schools.to_string(), "{}", commune.name);
            assert_eq!(value_of(&browser, "#eleves").await, pupils.to_string(), "{}", commune.name);
            assert!(browser.text().await.contains("selon le répertoire"));
            browser.fill("#deliberation", &format!("DCM-{}", commune.code)).await;
            set(&browser, "date-deliberation", "2026-09-01").await;
            browser.click_to_page("#deposer-candidature").await;
            assert!(browser.text().await.contains("Votre candidature est déposée"), "{}", browser.text().await);
            browser.axe().await;
            sign_out(&browser).await;
        }

        // The coordinator refuses the third with its reason, then accepts the first two.
        let mut ids = Vec::new();
        for commune in &scene.communes {
            ids.push(application_id(&store, &reference, &commune.id).await);
        }
        sign_in(&browser, COORD).await;
        browser.open(&path).await;
        browser.axe().await;
        browser.click(&format!("#choix-{}", ids[2])).await;
        browser.fill(&format!("#motif-{}", ids[2]), "Hors du périmètre du syndicat").await;
        browser.click_to_page("#refuser").await;
        assert!(browser.text().await.contains("sont refusées"), "{}", browser.text().await);
        browser.click(&format!("#choix-{}", ids[0])).await;
        browser.click(&format!("#choix-{}", ids[1])).await;
        browser.click_to_page("#accepter").await;
        let text = browser.text().await;
        assert!(text.contains("sont acceptées") && text.contains("Hors du périmètre du syndicat"), "{text}");
        assert_eq!(browser.find("#nombre-membres").await.text().await.unwrap(), "2");
        browser.axe().await;

        // Constituted (the convention's signatures are the conventions' journey), consulted, awarded.
        constitute(&store, &reference).await;
        browser.click_to_page("#vers-closed").await;
        set(&browser, "date-limite-offres", "2026-10-06T12:00").await;
        browser.click_to_page("#vers-consultation").await;
        assert!(browser.text().await.contains("6 octobre 2026 à 12 h 00"), "{}", browser.text().await);
        browser.axe().await;
        launched_46_days_before_t0(&store, &reference).await;
        for (id, value) in award_fields() {
            match id {
                "notification" => set(&browser, id, &value).await,
                "avance-titulaire" => browser.click(&format!("#{id}-{value}")).await,
                "innovant" | "avance" | "sous-traitance" | "groupement-operateurs" | "forme-prix" => {
                    browser.find(&format!("#{id}")).await.select_by_value(&value).await.unwrap()
                }
                _ => browser.fill(&format!("#{id}"), &value).await,
            }
        }
        browser.click_to_page("#attribuer").await;
        let text = browser.text().await;
        assert!(text.contains("Le marché est attribué") && text.contains("ENT Éditions SAS"), "{text}");
        browser.axe().await;
        sign_out(&browser).await;

        // Each member sees its own share per year, not the other's; a forged address is a 404.
        let (a, b) = (&scene.communes[0], &scene.communes[1]);
        for (email, own, other) in [(MAIRIES[0], a, b), (MAIRIES[1], b, a)] {
            sign_in(&browser, email).await;
            browser.open(&path).await;
            let text = browser.text().await;
            assert!(text.contains("Votre quote-part") && text.contains(&own.name), "{text}");
            assert!(!text.contains(&other.name), "{} sees {}: {text}", own.name, other.name);
            browser.axe().await;
            browser.click_to_page(&format!("#quotes-parts a[href$='{}']", own.id)).await;
            assert!(browser.heading().await.contains(&own.name));
            assert!(browser.text().await.contains("Année 3"));
            browser.axe().await;
            browser.open(&format!("{path}/quotes-parts/{}", other.id)).await;
            assert_eq!(browser.heading().await, "Page introuvable");
            assert!(!browser.text().await.contains(&other.name));
            browser.axe().await;
            sign_out(&browser).await;
        }
    })
    .await;
}
