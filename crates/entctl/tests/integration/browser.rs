//! The console's journeys in a real browser (headless Chromium over WebDriver, see
//! `common::browser`), against the real server on loopback, on both backends; axe-core
//! on every console page visited (0 serious or critical violations).

use crate::common::browser::{journey, Browser};
use crate::common::{self, t0, TestDb};
use crate::console::{person, PASSWORD};
use crate::console_conventions::{DAN, DIRECTEUR, MAIRIE, VITRY};
use entcp::clock::FixedClock;
use entcp::kernel::roles::Role;
use entcp::registry::Org;
use entcp::store::Store;
use std::sync::Arc;

/// The first organisation of `kind` by code.
async fn first_of(store: &Store, kind: &str, skip: i64) -> Org {
    let id: String = sqlx::query_scalar("SELECT id FROM orgs WHERE kind = $1 ORDER BY code LIMIT 1 OFFSET $2")
        .bind(kind)
        .bind(skip)
        .fetch_one(store.pool())
        .await
        .unwrap();
    entcp::registry::queries::get_org(store, &id).await.unwrap().unwrap()
}

/// The people of the journeys and the server they use.
struct Scene {
    base: String,
    clock: Arc<FixedClock>,
    academie: Org,
    commune: Org,
    /// The OpenID Connect provider (kept alive as long as the scene).
    provider: crate::oidc::Provider,
    _db: TestDb,
}

/// A synthetic annuaire; a DAN at each of two académies (`dan.a@`, `dan.b@`), a
/// commune's ENT officer (`mairie@`, who signs in through the provider); the server on
/// loopback with the provider configured.
async fn scene(db: TestDb) -> Scene {
    common::fixtures::synthetic_annuaire(&db.store, 400, 80, 7).await;
    let (academie, other) = (first_of(&db.store, "academie", 0).await, first_of(&db.store, "academie", 1).await);
    let commune = first_of(&db.store, "commune", 0).await;
    person(&db.store, "dan.a@test.fr", Role::Dan, Some(&academie.id)).await;
    person(&db.store, "dan.b@test.fr", Role::Dan, Some(&other.id)).await;
    common::token_for(&db.store, "mairie@test.fr", Role::Collectivite, Some(&commune.id)).await;
    let provider = crate::oidc::provider().await;
    let mut oidc = crate::oidc::config(&provider);
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_knowing_base(db.store.clone(), clock.clone(), |config, base| {
        oidc.redirect_url = format!("{base}/connexion/oidc/retour");
        config.identity.oidc = Some(oidc);
        config.console.public_url = base.to_string();
    })
    .await;
    Scene { base, clock, academie, commune, provider, _db: db }
}

/// Signs in `email` with its password from the sign-in page, then checks the page.
async fn password_sign_in(browser: &Browser, email: &str) {
    browser.open("/").await;
    assert!(browser.path().await.starts_with("/connexion"), "{}", browser.path().await);
    browser.axe().await;
    browser.sign_in_with_password(email, PASSWORD).await;
}

backend_test!(a_dan_signs_in_sees_the_dashboard_and_another_academie_gets_404);
async fn a_dan_signs_in_sees_the_dashboard_and_another_academie_gets_404(db: TestDb) {
    let backend = db.name;
    let scene = scene(db).await;
    let academie = scene.academie.clone();
    journey("dan_dashboard", backend, &scene.base, |browser| async move {
        // A refusal is read first: its alert takes the focus as the page loads (console.js).
        let focused = "return document.activeElement.className;";
        browser.open("/connexion").await;
        browser.sign_in_with_password("dan.a@test.fr", "mauvais mot de passe").await;
        let class = browser.client.execute(focused, vec![]).await.unwrap();
        assert!(class.as_str().unwrap_or("").contains("console-notice--error"), "focus on the refusal: {class}");
        assert!(browser.client.title().await.unwrap().starts_with("Erreur : Connexion"));
        browser.axe().await;
        password_sign_in(&browser, "dan.a@test.fr").await;
        assert_eq!(browser.heading().await, format!("Tableau de bord — {}", academie.name));
        assert!(browser.text().await.contains("DAN — "), "the roles in the header");
        browser.axe().await;
        browser.open("/compte").await;
        browser.axe().await;
        browser.fill("#current", PASSWORD).await;
        browser.fill("#password", "une toute autre phrase").await;
        browser.fill("#confirmation", "une autre phrase encore").await;
        browser.click_to_page("form[action='/compte/mot-de-passe'] button[type=submit]").await;
        let class = browser.client.execute(focused, vec![]).await.unwrap();
        assert!(class.as_str().unwrap_or("").contains("console-error-summary"), "focus on the summary: {class}");
        browser.axe().await;
        browser.open("/accessibilite").await;
        browser.axe().await;
        // Signed out, then a DAN of another académie opens the first one's dashboard.
        browser.click_to_page("form[action='/deconnexion'] button").await;
        assert_eq!(browser.path().await, "/connexion?apres=deconnexion");
        browser.sign_in_with_password("dan.b@test.fr", PASSWORD).await;
        browser.open(&format!("/tableau-de-bord/{}", academie.id)).await;
        assert_eq!(browser.heading().await, "Page introuvable");
        let text = browser.text().await;
        assert!(!text.contains(&academie.name) && text.contains("Identifiant de la requête"), "{text}");
        browser.axe().await;
    })
    .await;
}

backend_test!(a_form_without_its_csrf_token_is_refused_in_the_browser);
async fn a_form_without_its_csrf_token_is_refused_in_the_browser(db: TestDb) {
    let backend = db.name;
    let scene = scene(db).await;
    journey("csrf", backend, &scene.base, |browser| async move {
        password_sign_in(&browser, "dan.a@test.fr").await;
        browser.open("/compte").await;
        let removed = "document.querySelectorAll(\"form[action='/deconnexion'] input[name='_csrf']\")\
                       .forEach(e => e.remove()); return true;";
        browser.client.execute(removed, vec![]).await.unwrap();
        browser.click_to_page("form[action='/deconnexion'] button").await;
        assert_eq!(browser.heading().await, "Accès refusé");
        assert!(browser.text().await.contains("jeton de sécurité"));
        browser.axe().await;
        // The refused form did nothing: still signed in.
        browser.open("/compte").await;
        assert_eq!(browser.path().await, "/compte");
    })
    .await;
}

backend_test!(an_expired_session_goes_to_sign_in_then_to_the_page_asked);
async fn an_expired_session_goes_to_sign_in_then_to_the_page_asked(db: TestDb) {
    let backend = db.name;
    let scene = scene(db).await;
    let (clock, academie) = (scene.clock.clone(), scene.academie.clone());
    journey("expired_session", backend, &scene.base, |browser| async move {
        password_sign_in(&browser, "dan.a@test.fr").await;
        let asked = format!("/tableau-de-bord/{}", academie.id);
        clock.set(t0() + chrono::Duration::minutes(60));
        browser.open(&asked).await;
        assert_eq!(
            browser.path().await,
            format!("/connexion?suivant=%2Ftableau-de-bord%2F{}&apres=expiration", academie.id)
        );
        assert!(browser.text().await.contains("Votre session a expiré"));
        browser.axe().await;
        browser.sign_in_with_password("dan.a@test.fr", PASSWORD).await;
        assert_eq!(browser.path().await, asked);
        assert_eq!(browser.heading().await, format!("Tableau de bord — {}", academie.name));
    })
    .await;
}

/// Signs in at the provider's page as the subject of `email` (its form: `sub`): the same
/// subject each time, as a real provider's (the console refuses an account to another one).
pub(crate) async fn provider_sign_in(browser: &Browser, issuer: &str, email: &str) {
    let sub = format!("sub-{}", email.replace('@', "-at-"));
    crate::oidc::put_subject(issuer, &sub, serde_json::json!({ "email": email, "email_verified": true })).await;
    browser.click_to_page("a[href^='/connexion/oidc']").await;
    assert!(browser.client.current_url().await.unwrap().as_str().starts_with(issuer));
    let form = browser.client.form(fantoccini::Locator::Css("form")).await.expect("the provider's form");
    form.set_by_name("sub", &sub).await.expect("the subject field");
    browser.mark_page().await;
    form.submit_direct().await.expect("the provider's form submits");
    browser.wait_for_next_page("the provider's form").await;
}

backend_test!(the_commune_officer_signs_in_through_the_provider_and_lands_on_the_commune_dashboard);
async fn the_commune_officer_signs_in_through_the_provider_and_lands_on_the_commune_dashboard(db: TestDb) {
    let backend = db.name;
    let scene = scene(db).await;
    let commune = scene.commune.clone();
    let issuer = scene.provider.issuer.clone();
    journey("commune_oidc", backend, &scene.base, |browser| async move {
        browser.open("/").await;
        browser.axe().await;
        provider_sign_in(&browser, &issuer, "mairie@test.fr").await;
        assert_eq!(browser.path().await, "/");
        assert_eq!(browser.heading().await, format!("Tableau de bord — {}", commune.name));
        browser.axe().await;
    })
    .await;
}

/// The people of the whole journey over the sample annuaire (Val-de-Marne): the DAN of
/// Créteil, the directeur of the école Robert Doisneau (Fresnes) and the mairie of Vitry
/// with [`PASSWORD`]; the mairie of Fresnes signs in through the provider only.
struct Sample {
    base: String,
    provider: crate::oidc::Provider,
    academie: Org,
    _db: TestDb,
}

async fn sample(db: TestDb) -> Sample {
    common::import_sample(&db.store).await;
    let org = |key: &'static str| entcp::registry::resolve_org(&db.store, key);
    let (academie, fresnes, ecole, vitry) = (
        org("academie:24").await.unwrap(),
        org("commune:94034").await.unwrap(),
        org("0940176F").await.unwrap(),
        org("commune:94081").await.unwrap(),
    );
    person(&db.store, DAN, Role::Dan, Some(&academie.id)).await;
    person(&db.store, DIRECTEUR, Role::ChefEtablissement, Some(&ecole.id)).await;
    person(&db.store, VITRY, Role::Collectivite, Some(&vitry.id)).await;
    common::token_for(&db.store, MAIRIE, Role::Collectivite, Some(&fresnes.id)).await;
    let provider = crate::oidc::provider().await;
    let mut oidc = crate::oidc::config(&provider);
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_knowing_base(db.store.clone(), clock, |config, base| {
        oidc.redirect_url = format!("{base}/connexion/oidc/retour");
        oidc.post_logout_redirect_url = Some(format!("{base}/connexion?apres=deconnexion"));
        config.identity.oidc = Some(oidc);
        config.console.public_url = base.to_string();
    })
    .await;
    Sample { base, provider, academie, _db: db }
}

/// Signs out from the account page; a person signed in through the provider ends the
/// session there too (its confirmation form); the sign-in page follows.
pub(crate) async fn sign_out(browser: &Browser) {
    browser.open("/compte").await;
    browser.click_to_page("form[action='/deconnexion'] button").await;
    if browser.path().await.starts_with("/oauth2/end_session") {
        browser.click_to_page("form button[type=submit]").await;
    }
    let path = browser.path().await;
    assert!(path.starts_with("/connexion?apres=deconnexion"), "{path}");
}

/// Opens `path`, checks its accessibility, and answers its text.
pub(crate) async fn visit(browser: &Browser, path: &str) -> String {
    browser.open(path).await;
    browser.axe().await;
    browser.text().await
}

/// The text of the status badge `css` (shown in capitals by the style).
async fn badge(browser: &Browser, css: &str) -> String {
    browser.find(css).await.text().await.unwrap().to_lowercase()
}

/// Picks the option `value` of the select `css`.
pub(crate) async fn choose(browser: &Browser, css: &str, value: &str) {
    browser.find(css).await.select_by_value(value).await.unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}

/// The signature form of the convention page shown: the fingerprint shown is the one
/// posted; signs and checks the notice.
async fn sign_convention(browser: &Browser, party: &str) {
    let shown = browser.find("#empreinte").await.text().await.unwrap();
    let posted = browser.find("#signature input[name='empreinte']").await.attr("value").await.unwrap();
    assert_eq!(Some(shown.clone()), posted, "the fingerprint signed is the one shown");
    assert_eq!(shown.len(), 64, "{shown}");
    let signs_for = browser.find("#signataire").await.text().await.unwrap();
    assert!(signs_for.contains(party), "{party}: {signs_for}");
    // The journey's users are not the representatives the convention names: by délégation.
    // The date through its value, as for the start date: typing into a date field follows the
    // browser's locale.
    for (name, value) in crate::common::fixtures::DELEGATION_FORM {
        match name {
            "delegation_acte" => {}
            "delegation_date" => {
                let script = format!("document.querySelector(\"#signature input[name='{name}']\").value = '{value}'");
                browser.client.execute(&script, vec![]).await.unwrap();
            }
            _ => browser.fill(&format!("#signature input[name='{name}']"), value).await,
        }
    }
    browser.click_to_page("#signer").await;
    assert!(browser.text().await.contains("Votre signature est enregistrée."));
    browser.axe().await;
}

backend_test!(the_whole_journey_from_the_dan_convention_to_the_provisioning_tenant_in_a_browser);
async fn the_whole_journey_from_the_dan_convention_to_the_provisioning_tenant_in_a_browser(db: TestDb) {
    let backend = db.name;
    let scene = sample(db).await;
    let (academie, issuer) = (scene.academie.clone(), scene.provider.issuer.clone());
    let ids = |key: &'static str| {
        let store = scene._db.store.clone();
        async move { entcp::registry::resolve_org(&store, key).await.unwrap().id }
    };
    let (a_id, commune_id, ecole_id) = (ids("academie:24").await, ids("commune:94034").await, ids("0940176F").await);
    journey("whole_journey", backend, &scene.base, |browser| async move {
        // The DAN: dashboard, then the guided creation of the tripartite convention.
        password_sign_in(&browser, DAN).await;
        assert_eq!(browser.heading().await, format!("Tableau de bord — {}", academie.name));
        browser.axe().await;
        assert!(visit(&browser, "/conventions").await.contains("Aucun résultat."));
        browser.click_to_page("#nouvelle-convention").await;
        browser.axe().await;
        browser.click("label[for='modele-tripartite-premier-degre']").await;
        browser.click_to_page("#choisir-modele").await;
        assert!(browser.heading().await.starts_with("Nouvelle convention — "));
        browser.axe().await;
        browser.fill("#recherche-academie", "Créteil").await;
        browser.fill("#recherche-collectivite", "Fresnes").await;
        browser.fill("#recherche-etablissement", "Doisneau").await;
        browser.click_to_page("#rechercher-etablissement").await;
        choose(&browser, "#partie-academie", &a_id).await;
        choose(&browser, "#partie-collectivite", &commune_id).await;
        choose(&browser, "#partie-etablissement", &ecole_id).await;
        // Who signs for each party, and the act that empowers them (required to submit).
        for (party, field, value) in [
            ("academie", "nom", "Mme Claire Martin"),
            ("academie", "qualite", "déléguée académique au numérique"),
            ("academie", "delegation", "arrêté rectoral n° 2026-41"),
            ("academie", "delegation_date", "2026-06-01"),
            ("collectivite", "nom", "M. Jean Durand"),
            ("collectivite", "qualite", "maire"),
            ("collectivite", "acte_numero", "2026-118"),
            ("collectivite", "acte_date", "2026-06-18"),
            ("etablissement", "nom", "Mme Sophie Bernard"),
            ("etablissement", "qualite", "directrice d'école"),
        ] {
            // The fields sit in a closed disclosure: set them as a person who opened it would.
            let script = format!("document.getElementById('signataire-{party}-{field}').value = {value:?}");
            browser.client.execute(&script, vec![]).await.unwrap();
        }
        // Without its start date: the summary links to the field, the form is kept.
        browser.click_to_page("#creer-convention").await;
        let refused = browser.text().await;
        assert!(refused.contains("Robert Doisneau (0940176F)"), "the covered school: {refused}");
        browser.axe().await;
        let summary = browser.find(".console-error-summary a[href='#start-date']").await.text().await.unwrap();
        let beside = browser.find("#start-date-erreur").await.text().await.unwrap();
        // The summary's link names the field, then says the message written beside it.
        let named = format!("Date de prise d'effet : {beside}");
        assert!(!beside.is_empty() && summary == named, "the summary's link and the field's message: {summary}");
        browser.client.execute("document.getElementById('start-date').value = '2026-09-01'", vec![]).await.unwrap();
        browser.click_to_page("#creer-convention").await;
        assert!(browser.text().await.contains("La convention est créée (brouillon)."));
        browser.axe().await;
        let convention = browser.path().await.split('?').next().unwrap().to_string();
        // The draft's form, pre-filled as stored, saved as it is: nothing is recorded, and it says so.
        browser.click_to_page("#modifier-projet").await;
        assert!(browser.heading().await.starts_with("Modifier le projet — "));
        browser.axe().await;
        browser.click_to_page("#enregistrer-projet").await;
        assert!(browser.text().await.contains("Le projet n'est pas modifié : rien n'est enregistré."));
        browser.click_to_page("#soumettre").await;
        assert_eq!(badge(&browser, "#statut-convention").await, "en signature");
        let reference = browser.heading().await.split(" — ").next().unwrap().to_string();
        sign_convention(&browser, "Créteil").await;
        sign_out(&browser).await;

        // The mairie of Fresnes through the provider, then the directeur of the école.
        browser.open("/").await;
        provider_sign_in(&browser, &issuer, MAIRIE).await;
        assert!(visit(&browser, "/conventions").await.contains(&reference));
        browser.open(&convention).await;
        sign_convention(&browser, "Fresnes").await;
        sign_out(&browser).await;
        browser.sign_in_with_password(DIRECTEUR, PASSWORD).await;
        browser.open(&convention).await;
        sign_convention(&browser, "Doisneau").await;
        sign_out(&browser).await;

        // The DAN sees it in force, requests the tenant and moves it to provisioning.
        browser.sign_in_with_password(DAN, PASSWORD).await;
        assert!(visit(&browser, "/conventions?statut=active").await.contains(&reference));
        browser.open(&convention).await;
        assert_eq!(badge(&browser, "#statut-convention").await, "en vigueur");
        assert_eq!(browser.text().await.matches("Signature pour ").count(), 3, "three signatures in the circuit");
        visit(&browser, "/ent/nouveau").await;
        // Enter in the search box searches; Enter in any other field requests the ENT.
        browser.fill("#recherche", "Doisneau").await;
        browser.press_enter_in("#recherche").await;
        assert_eq!(browser.heading().await, "Demander un ENT");
        choose(&browser, "#organisation", &ecole_id).await;
        browser.fill("#nom", "doisneau-fresnes").await;
        browser.fill("#adresse", "doisneau.ent.fresnes.example.fr").await;
        browser.click("label[for='bouquet-socle-1d']").await;
        browser.axe().await;
        browser.press_enter_in("#adresse").await;
        assert_eq!(browser.path().await, "/ent/doisneau-fresnes?apres=demande");
        assert_eq!(badge(&browser, "#etat-ent").await, "demandé");
        browser.axe().await;
        browser.click_to_page("#vers-provisioning").await;
        assert!(browser.text().await.contains("L'ENT est désormais en déploiement."));
        browser.axe().await;
        sign_out(&browser).await;

        // The commune sees the tenant; another commune sees none of it.
        provider_sign_in(&browser, &issuer, MAIRIE).await;
        assert!(visit(&browser, "/ent").await.contains("doisneau-fresnes"));
        sign_out(&browser).await;
        browser.sign_in_with_password(VITRY, PASSWORD).await;
        assert!(visit(&browser, "/conventions").await.contains("Aucun résultat."));
        assert!(visit(&browser, "/ent").await.contains("Aucun résultat."));
        for forged in [convention.as_str(), "/ent/doisneau-fresnes"] {
            let text = visit(&browser, forged).await;
            assert_eq!(browser.heading().await, "Page introuvable", "{forged}");
            assert!(!text.contains(&reference) && !text.contains("Doisneau"), "{text}");
        }
    })
    .await;
}

/// `entctl serve --demo` over `db`, as the README's first minute says, on a free loopback
/// port with its data in `dir`: the child (its log drained), its address and the printed
/// demo password.
fn serve_demo(db: &TestDb, dir: &std::path::Path) -> (std::process::Child, String, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_entctl"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env_remove("ENTCP_CONFIG")
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", &db.url)
        .env("ENTCP_DATA_DIR", dir)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("entctl serve --demo starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut password, mut address) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("(mot de passe : ").nth(1) {
            password = rest.split(')').next().map(str::to_string);
        }
        if let Some(rest) = line.split("listening on http://").nth(1) {
            address = rest.split(|c: char| c.is_whitespace() || c == '"').next().map(str::to_string);
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let address = address.expect("serve logs where it listens");
    (child, format!("http://{address}"), password.expect("serve --demo prints the demo password"))
}

backend_test!(the_demo_started_as_the_readme_says_leads_the_dan_to_the_dashboard_in_a_browser);
async fn the_demo_started_as_the_readme_says_leads_the_dan_to_the_dashboard_in_a_browser(db: TestDb) {
    let backend = db.name;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, password) = serve_demo(&db, dir.path());
    journey("demo_dashboard", backend, &base, |browser| async move {
        browser.open("/").await;
        assert!(browser.path().await.starts_with("/connexion"), "{}", browser.path().await);
        browser.sign_in_with_password(entcp::demo::PERSONAS[0].0, &password).await;
        assert_eq!(browser.heading().await, "Tableau de bord — Académie de Créteil");
        let text = browser.text().await;
        assert!(text.contains("Julien Moreau, DAN de Créteil"), "the person in the header: {text}");
        browser.axe().await;
        // `CONSOLE_SCREENSHOT=docs/console-tableau-de-bord.png` keeps the README's picture.
        if let Some(file) = std::env::var_os("CONSOLE_SCREENSHOT") {
            let png = browser.client.screenshot().await.expect("a screenshot");
            std::fs::write(&file, png).expect("the screenshot is written");
        }
    })
    .await;
    child.kill().expect("the demo server stops");
    let _ = child.wait();
}

/// Escalates the ticket shown with `reason`, sees it at `level` (`niveau n2`), and signs out.
async fn escalate(browser: &Browser, reason: &str, level: &str) {
    browser.fill("#motif", reason).await;
    browser.click("#escalader").await;
    let shown = until_text(browser, "body", "Le ticket est escaladé").await;
    assert!(shown.to_lowercase().contains(level), "{shown}");
    sign_out(browser).await;
}

/// Hands the ticket back down with `answer`, then signs out.
async fn hand_down(browser: &Browser, answer: &str) {
    browser.fill("#reponse", answer).await;
    browser.click("#renvoyer").await;
    until_text(browser, "body", "Le ticket est renvoyé au niveau inférieur").await;
    sign_out(browser).await;
}

/// Waits until the text of `css` contains `wanted`, case aside (htmx swaps it after its
/// request; a click's page may still be loading); the last text read.
async fn until_text(browser: &Browser, css: &str, wanted: &str) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(element) = browser.client.find(fantoccini::Locator::Css(css)).await {
            text = element.text().await.unwrap_or_default();
            if text.to_lowercase().contains(&wanted.to_lowercase()) {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    text
}

backend_test!(a_ticket_goes_from_the_usager_to_the_vendor_and_back_in_the_browser);
async fn a_ticket_goes_from_the_usager_to_the_vendor_and_back_in_the_browser(db: TestDb) {
    let backend = db.name;
    use crate::console_tickets::{desk, N1, N2, N3, USAGER};
    desk(&db.store).await;
    let clock = Arc::new(FixedClock::new(t0()));
    let base = common::serve_console(db.store.clone(), clock).await;
    let p1 = entcp::support::policy::Policies::shipped().priority("haute", "haute").unwrap().as_str();
    journey("support_desk", backend, &base, move |browser| async move {
        // The usager opens a ticket: the école's ENT pre-selected, the priority previewed.
        password_sign_in(&browser, USAGER).await;
        browser.open("/tickets/nouveau").await;
        browser.axe().await;
        browser.fill("#sujet", "Le cahier de liaison ne s'ouvre plus").await;
        browser.click("label[for='impact-haute']").await;
        browser.click("label[for='urgence-haute']").await;
        let preview = until_text(&browser, "#priorite", p1).await;
        assert!(preview.contains(p1), "{preview}");
        browser.fill("#description", "Depuis ce matin, une page blanche s'affiche.").await;
        // A capture joined to the ticket, chosen in the file control.
        let folder = tempfile::tempdir().unwrap();
        let capture = folder.path().join("capture-écran.txt");
        std::fs::write(&capture, "Erreur 500 sur /cahier-de-liaison\n").unwrap();
        browser.find("#pieces").await.send_keys(&capture.display().to_string()).await.unwrap();
        browser.click("#envoyer-ticket").await;
        // DSFR badges are upper case on screen.
        let shown = until_text(&browser, "body", &format!("priorité {p1}")).await;
        assert!(shown.to_lowercase().contains(&format!("priorité {}", p1.to_lowercase())), "{shown}");
        let path = browser.path().await.split('?').next().unwrap().to_string();
        assert!(path.starts_with("/tickets/ENT-"), "{path}");
        browser.axe().await;
        sign_out(&browser).await;

        // The commune's N1: its queue, a reply, an internal note, the escalation.
        browser.sign_in_with_password(N1, PASSWORD).await;
        browser.open("/tickets").await;
        assert!(browser.text().await.contains(path.trim_start_matches("/tickets/")));
        browser.axe().await;
        browser.open(&path).await;
        // The usager's capture, listed and downloaded as a file in the N1 agent's session.
        let link = browser.find("#pieces-jointes a").await;
        assert!(link.text().await.unwrap().contains("capture-écran.txt"));
        let href = link.attr("href").await.unwrap().unwrap();
        let fetch = "const done = arguments[arguments.length - 1];\
            fetch(arguments[0]).then(r => r.text().then(body => done({ status: r.status, body,\
              disposition: r.headers.get('content-disposition') })));";
        let got = browser.client.execute_async(fetch, vec![href.into()]).await.unwrap();
        assert_eq!(got["status"], 200, "{got}");
        assert_eq!(got["body"], "Erreur 500 sur /cahier-de-liaison\n", "{got}");
        assert!(got["disposition"].as_str().unwrap().starts_with("attachment;"), "{got}");
        browser.fill("#message", "Nous regardons.").await;
        browser.click("#repondre").await;
        until_text(&browser, "body", "Votre réponse est envoyée au demandeur").await;
        browser.fill("#message", "Le prestataire a changé la configuration SSO.").await;
        browser.click("#noter").await;
        let shown = until_text(&browser, "body", "Votre note interne est ajoutée").await;
        assert!(shown.contains("Votre note interne est ajoutée") && shown.contains("configuration SSO"), "{shown}");
        browser.axe().await;
        escalate(&browser, "Relève de l'académie.", "niveau n2").await;

        // The académie's N2 escalates to the vendor.
        browser.sign_in_with_password(N2, PASSWORD).await;
        browser.open(&path).await;
        browser.axe().await;
        escalate(&browser, "Anomalie de l'éditeur.", "niveau n3").await;

        // The vendor: a pseudonymised requester, no internal note; it hands its answer back
        // down (only the N1 resolves), and so does the N2.
        browser.sign_in_with_password(N3, PASSWORD).await;
        browser.open(&path).await;
        let text = browser.text().await;
        assert!(text.contains("pseudonyme") && !text.contains(USAGER), "{text}");
        assert!(!text.contains("configuration SSO") && !text.to_lowercase().contains("note interne"), "{text}");
        browser.axe().await;
        hand_down(&browser, "Connecteur SSO corrigé.").await;
        browser.sign_in_with_password(N2, PASSWORD).await;
        browser.open(&path).await;
        hand_down(&browser, "L'éditeur a corrigé le connecteur SSO.").await;

        // The N1 resolves the ticket with a message to the usager.
        browser.sign_in_with_password(N1, PASSWORD).await;
        browser.open(&path).await;
        browser.fill("#message-statut", "Correctif déployé.").await;
        browser.click("#vers-resolved").await;
        until_text(&browser, "body", "Le statut du ticket est changé").await;
        assert_eq!(until_text(&browser, "#statut-ticket", "résolu").await.to_lowercase(), "résolu");
        sign_out(&browser).await;

        // The usager sees the replies, not the note, and closes the ticket.
        browser.sign_in_with_password(USAGER, PASSWORD).await;
        browser.open(&path).await;
        let text = browser.text().await;
        assert!(text.contains("Nous regardons.") && text.contains("Correctif déployé."), "{text}");
        assert!(!text.contains("configuration SSO") && !text.to_lowercase().contains("note interne"), "{text}");
        browser.axe().await;
        browser.click("#vers-closed").await;
        until_text(&browser, "body", "Le statut du ticket est changé").await;
        assert_eq!(until_text(&browser, "#statut-ticket", "clos").await.to_lowercase(), "clos");
        browser.axe().await;
    })
    .await;
}
