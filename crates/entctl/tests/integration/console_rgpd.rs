//! The console's RGPD screens, in process, on both databases: on the demo data (Fresnes
//! and Vitry with their conventions, tenants active, Art. 28 contracts), the DPO of
//! Fresnes exports the register, takes a snapshot, the DAN adds a service to the
//! commune's ENT from the tenant page, and the diff shows the new activity; the
//! académie's DPO finds the incomplete fiches first with where to fill each field, a
//! fiche with its Art. 30 fields and DPIA criteria, and keeps the contacts under the
//! version check (a stale form keeps what was typed).

use crate::common;
use crate::console::{assert_refusal_announced, escaped, person, sign_in, summary_links, with_password};
use crate::console_tickets::{follow, get, post_form};

use crate::console_account::notified;
use common::{audited, t0, TestApp};
use entcp::clock::FixedClock;
use entcp::kernel::roles::{OrgKind, Role};
use entcp::store::Store;
use serde_json::{json, Value};
use std::sync::Arc;

/// The operator (an administrator), who keeps every register.
pub(crate) const ROOT: &str = "root@plateforme.fr";
/// The DPO of the commune of Fresnes.
pub(crate) const DPO: &str = "dpd@fresnes.fr";
/// The académie's DPO and DAN (their accounts come with the demo of `rgpd.rs`).
pub(crate) const DPO_ACADEMIE: &str = "dpd@ac-creteil.fr";
pub(crate) const DAN: &str = "dan@ac-creteil.fr";

/// The DPO of Fresnes, and [`crate::console::PASSWORD`] for the three people of the screens.
pub(crate) async fn people(store: &Store) {
    person(store, DPO, Role::Dpo, Some("commune:94034")).await;
    for email in [DPO_ACADEMIE, DAN] {
        with_password(store, email).await;
    }
}

/// The address of `key`'s register.
pub(crate) async fn register_of(store: &Store, key: &str) -> String {
    format!("/rgpd/{}", entcp::registry::resolve_org(store, key).await.unwrap().id)
}

/// The first `href` of `html` starting with `prefix`, unescaped.
fn link(html: &str, prefix: &str) -> String {
    let at = html.find(&format!("href=\"{}", escaped(prefix))).unwrap_or_else(|| panic!("a link to {prefix}: {html}"));
    html[at + 6..].split('"').next().unwrap().replace("&#x2F;", "/").replace("&amp;", "&")
}

/// The demo of `rgpd.rs` with the people of the screens: the backend's name, the demo, the
/// address of the register of `key`, and the session of `email`.
async fn scene(db: common::TestDb, key: &str, email: &str) -> (&'static str, crate::rgpd::Demo, String, String) {
    let name = db.name;
    let d = crate::rgpd::demo(db).await;
    people(&d.db.store).await;
    let register = register_of(&d.db.store, key).await;
    let session = sign_in(&d.app, email).await;
    (name, d, register, session)
}

/// The fields of the breach form: as many records as people, consequences « faibles ».
fn breach_form<'a>(
    title: &'a str,
    facts: &'a str,
    aware_at: &'a str,
    categories: &'a str,
    people: &'a str,
    measures: &'a str,
) -> [(&'static str, &'a str); 8] {
    [
        ("title", title),
        ("facts", facts),
        ("aware_at", aware_at),
        ("data_categories", categories),
        ("people_approx", people),
        ("records_approx", people),
        ("consequences", "faibles"),
        ("measures", measures),
    ]
}

/// The [`breach_form`] of a USB key of bulletins lost, known at `aware_at`.
fn lost_usb_key(aware_at: &str) -> [(&'static str, &str); 8] {
    breach_form(
        "Clé USB perdue",
        "Une clé avec des bulletins a été perdue",
        aware_at,
        "identité, scolarité",
        "40",
        "mots de passe changés",
    )
}

/// Takes a snapshot from the register page's form; the notice the page shows after.
async fn take_snapshot(app: &TestApp, session: &str, register: &str) -> String {
    let taken = post_form(app, session, &format!("{register}/instantanes"), &[]).await;
    assert_eq!(taken.status, 303, "{}", taken.text);
    taken.header("location").unwrap().to_string()
}

backend_test!(a_commune_dpo_exports_the_register_and_sees_the_service_the_dan_adds_in_the_diff);
async fn a_commune_dpo_exports_the_register_and_sees_the_service_the_dan_adds_in_the_diff(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let home = get(app, &dpo, "/rgpd").await;
    assert_eq!(home.status, 200, "{name}: {}", home.text);
    assert!(home.text.contains(&format!("href=\"{}\"", escaped(&register))), "{name}: {}", home.text);
    let page = get(app, &dpo, &register).await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    assert!(page.text.contains("id=\"export-ods\"") && page.text.contains("Aucun instantané"), "{}", page.text);
    // The commune processes for the DSDEN only: its counts in agreed words, no « (s) ».
    assert!(
        page.text.contains("aucun traitement ; 1 activité de sous-traitance (article 30.2) ; "),
        "{name}: {}",
        page.text
    );
    assert!(!page.text.contains("traitement(s)") && !page.text.contains("fiche(s)"), "{name}: {}", page.text);
    // PDF is offered only where LibreOffice is installed; elsewhere the page says why it is not.
    let pdf = entcp::documents::pdf_available();
    assert_eq!(page.text.contains("id=\"export-pdf\""), pdf, "{name}: {}", page.text);
    assert_eq!(page.text.contains("LibreOffice n'est pas installé"), !pdf, "{name}: {}", page.text);

    // The exports are downloads of the right type; an unknown format is no page.
    let ods = get(app, &dpo, &format!("{register}/export/ods")).await;
    assert_eq!(ods.status, 200, "{name}: {}", ods.text);
    assert_eq!(ods.header("content-type"), Some("application/vnd.oasis.opendocument.spreadsheet"));
    assert!(ods.header("content-disposition").unwrap().starts_with("attachment; filename=\"registre-rgpd-"));
    assert!(ods.bytes.starts_with(b"PK\x03\x04"), "{name}: an ODS is a zip");
    assert_eq!(&ods.bytes[30..38], b"mimetype", "{name}: the ODS's first entry is its mimetype");
    for (format, media) in [("csv", "text/csv"), ("json", "application/json"), ("html", "text/html")] {
        let file = get(app, &dpo, &format!("{register}/export/{format}")).await;
        assert_eq!(file.status, 200, "{name} {format}: {}", file.text);
        assert!(file.header("content-type").unwrap().starts_with(media), "{name} {format}");
        assert!(file.header("content-disposition").unwrap().starts_with("attachment;"), "{name} {format}");
    }
    assert_eq!(get(app, &dpo, &format!("{register}/export/docx")).await.status, 404);
    // The PDF link opened directly (a bookmark, an old page) on a server without LibreOffice:
    // a page that says so and names the other formats, not « une erreur inattendue ».
    if !pdf {
        let direct = get(app, &dpo, &format!("{register}/export/pdf")).await;
        assert_eq!(direct.status, 406, "{name}: {}", direct.text);
        assert!(direct.text.contains("Format indisponible"), "{name}: {}", direct.text);
        assert!(direct.text.contains("Le PDF n&#x27;est pas disponible sur ce serveur"), "{name}: {}", direct.text);
        assert!(direct.text.contains("ODT, HTML") && !direct.text.contains("inattendue"), "{name}: {}", direct.text);
    }

    // A snapshot, then the same register again: the latest is kept.
    assert!(take_snapshot(app, &dpo, &register).await.contains("apres=instantane"), "{name}");
    assert!(take_snapshot(app, &dpo, &register).await.contains("apres=inchange"), "{name}");

    // The DAN adds the exercices option to the commune's ENT from its page.
    let dan = sign_in(app, DAN).await;
    let tenant = get(app, &dan, "/ent/fresnes").await;
    assert!(
        tenant.text.contains("id=\"ajouter-service\"") && tenant.text.contains("value=\"moodle\""),
        "{}",
        tenant.text
    );
    let refused = post_form(app, &dan, "/ent/fresnes/services", &[]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#service\""), "{name}: the error links to the select");
    let added = post_form(app, &dan, "/ent/fresnes/services", &[("service", "moodle")]).await;
    let shown = follow(app, &dan, &added).await;
    assert!(shown.text.contains("Le service est ajouté à l"), "{name}: {}", shown.text);
    let tenant = entcp::tenants::get_tenant(store, "fresnes").await.unwrap().unwrap();
    assert!(tenant.options.contains(&"moodle".to_string()), "{name}: {:?}", tenant.options);
    common::applied_with(store, "fresnes", "exercices").await;

    // The diff from the snapshot to now shows the new activity, field by field.
    let diff = get(app, &dpo, &format!("{register}/ecarts")).await;
    assert_eq!(diff.status, 200, "{name}: {}", diff.text);
    assert!(diff.text.contains("Exercices et parcours (Moodle)"), "{name}: {}", diff.text);
    assert!(diff.text.contains("Avant") && diff.text.contains("Après"), "{name}");

    // A new snapshot; the comparison with the previous one shows it too.
    assert!(take_snapshot(app, &dpo, &register).await.contains("apres=instantane"), "{name}");
    let page = get(app, &dpo, &register).await;
    assert_eq!(page.text.matches("avec le précédent").count(), 1, "{name}: only the newest of two has a previous one");
    let newest = page.text.find("avec maintenant").unwrap();
    let pair = link(&page.text[newest..], &format!("{register}/ecarts?de="));
    assert!(pair.contains("&a=") && !pair.ends_with("a=now"), "{name}: {pair}");
    let pair = get(app, &dpo, &pair).await;
    assert!(pair.text.contains("Exercices et parcours (Moodle)"), "{name}: {}", pair.text);

    // Another commune's register is not revealed, and no snapshot is taken of it.
    let vitry = register_of(store, "commune:94081").await;
    assert_eq!(get(app, &dpo, &vitry).await.status, 404, "{name}");
    assert_eq!(get(app, &dpo, &format!("{vitry}/export/ods")).await.status, 404, "{name}");
    let forged = post_form(app, &dpo, &format!("{vitry}/instantanes"), &[]).await;
    assert!(matches!(forged.status, 403 | 404), "{name}: {}", forged.status);
    let vitry_id = vitry.trim_start_matches("/rgpd/");
    let kept = common::count(store, "SELECT COUNT(*) FROM rgpd_snapshots WHERE org_id = $1", &[vitry_id]).await;
    assert_eq!(kept, 0, "{name}");
}

/// The académie's contacts, as the RGPD tests of the API give them.
const CONTACTS: &[(&str, &str)] = &[
    ("head_name", "M. le recteur"),
    ("head_title", "recteur de la région académique"),
    ("address", "4 rue Georges Enesco, 94000 Créteil"),
    ("phone", "01 57 02 60 00"),
    ("email", "ce.recteur@ac-creteil.fr"),
    ("dpo_name", "Délégué à la protection des données de l'académie"),
    ("dpo_email", "dpd@ac-creteil.fr"),
    ("dpo_phone", "01 57 02 60 01"),
    ("dpo_address", "4 rue Georges Enesco, 94000 Créteil"),
    ("representative", ""),
    ("security_measures", "Charte d'usage de l'ENT signée par les utilisateurs"),
];

fn contacts_at<'a>(version: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields: Vec<(&str, &str)> =
        CONTACTS.iter().map(|(k, v)| (*k, changes.iter().find(|(c, _)| c == k).map_or(*v, |(_, n)| *n))).collect();
    fields.push(("version", version));
    fields
}

backend_test!(incomplete_fiches_come_first_with_where_to_fill_them_and_a_stale_contact_form_keeps_its_input);
async fn incomplete_fiches_come_first_with_where_to_fill_them_and_a_stale_contact_form_keeps_its_input(
    db: common::TestDb,
) {
    let (name, d, register, dpo) = scene(db, "dsden:94", DPO_ACADEMIE).await;
    let (app, store) = (&d.app, &d.db.store);
    let page = get(app, &dpo, &register).await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    let missing = "nom du délégué à la protection des données — à renseigner dans";
    assert!(page.text.contains(missing), "{name}: the missing field is named: {}", page.text);
    let profil = escaped(&format!("{register}/profil"));
    assert!(page.text.contains(&format!("href=\"{profil}\">les coordonnées RGPD")), "{name}: {}", page.text);
    assert!(page.text.contains("AIPD requise") || page.text.contains("non requise"), "{name}");

    // A fiche: its Art. 30 fields and its DPIA criteria.
    let fiche = get(app, &dpo, &link(&page.text, &format!("{register}/traitements/"))).await;
    assert_eq!(fiche.status, 200, "{name}: {}", fiche.text);
    for label in ["Finalité principale", "Base légale", "Durées de conservation", "WP248", "Fiche incomplète"] {
        assert!(fiche.text.contains(label), "{name}: {label} in {}", fiche.text);
    }
    assert_eq!(get(app, &dpo, &format!("{register}/traitements/inconnu")).await.status, 404);

    // The contacts: a form without its version, a bad address, then saved at version 0.
    let form = get(app, &dpo, &format!("{register}/profil")).await;
    assert!(form.text.contains("name=\"version\" value=\"0\""), "{name}: {}", form.text);
    let profil = format!("{register}/profil");
    let without = post_form(app, &dpo, &profil, &CONTACTS[..2]).await;
    assert_eq!(without.status, 422, "{name}: {}", without.text);
    let bad = post_form(app, &dpo, &profil, &contacts_at("0", &[("dpo_email", "pas-un-courriel")])).await;
    assert_eq!(bad.status, 422, "{name}: {}", bad.text);
    assert!(bad.text.contains("href=\"#profil-dpo_email\""), "{name}: the error links to its field");
    // The safeguard of transfers to the organisation: a choice of the articles' bases; an
    // unknown one is refused under its control, nothing written.
    assert!(form.text.contains("name=\"transfer_safeguard\"") && form.text.contains("<option value=\"scc\""), "{name}");
    let mut unknown = contacts_at("0", &[]);
    unknown.extend([("transfer_safeguard", "bouclier"), ("transfer_safeguard_reference", "Privacy Shield")]);
    let refused = post_form(app, &dpo, &profil, &unknown).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#profil-transfer_safeguard\""), "{name}: {}", refused.text);
    let saved = post_form(app, &dpo, &profil, &contacts_at("0", &[])).await;
    assert!(saved.header("location").unwrap().contains("apres=profil"), "{name}: {}", saved.text);

    // A second form shown at version 0: a conflict in French, the input kept, the newer version offered.
    let stale = post_form(app, &dpo, &profil, &contacts_at("0", &[("dpo_name", "Mme Autre Déléguée")])).await;
    assert_eq!(stale.status, 409, "{name}: {}", stale.text);
    assert!(stale.text.contains("ont été modifiées par quelqu"), "{name}: {}", stale.text);
    assert!(stale.text.contains("value=\"Mme Autre Déléguée\""), "{name}: the input is kept");
    assert!(stale.text.contains("name=\"version\" value=\"1\""), "{name}: the newer version is offered");
    let again = post_form(app, &dpo, &profil, &contacts_at("1", &[("dpo_name", "Mme Autre Déléguée")])).await;
    assert_eq!(again.status, 303, "{name}: {}", again.text);
    let (profile, version) =
        entcp::rgpd::load::profile(store, register.trim_start_matches("/rgpd/")).await.unwrap().unwrap();
    assert_eq!((profile.dpo_name.as_str(), version), ("Mme Autre Déléguée", 2), "{name}");

    // Complete now: the missing DPO is no longer listed.
    let page = get(app, &dpo, &register).await;
    assert!(!page.text.contains(missing), "{name}: {}", page.text);
}

/// `t0` moved by `hours`, as a `datetime-local` field gives it (read as the time in Paris: in
/// summer two hours earlier than `t0` moved by `hours`, still in the past for `hours <= 0`).
fn typed_moment(hours: i64) -> String {
    (t0() + chrono::Duration::hours(hours)).format("%Y-%m-%dT%H:%M").to_string()
}

/// The row of `reference`-like text `key` in the log `html`.
fn row_of<'a>(html: &'a str, key: &str) -> &'a str {
    let at = html.find(key).unwrap_or_else(|| panic!("{key} in {html}"));
    let end = html[at..].find("</tr>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

backend_test!(breaches_and_requests_show_their_due_dates_and_contracts_show_their_sub_processing_chain);
async fn breaches_and_requests_show_their_due_dates_and_contracts_show_their_sub_processing_chain(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);

    // Breaches: the 72-hour deadline passed, close, or still ahead.
    let breaches = format!("{register}/violations");
    let empty = get(app, &dpo, &breaches).await;
    assert!(empty.text.contains("Aucune violation consignée."), "{name}: {}", empty.text);
    let refused = post_form(app, &dpo, &breaches, &[("title", "Sans le reste")]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#entree-people_approx\""), "{name}: {}", refused.text);
    assert!(refused.text.contains("value=\"Sans le reste\""), "{name}: the input is kept");
    for (title, hours, records) in
        [("Courriel mal adressé", -80, "25"), ("Clé USB perdue", -60, "25"), ("Accès indu", -2, "12000")]
    {
        let aware = typed_moment(hours);
        let fields = [
            ("title", title),
            ("facts", "Liste de classe envoyée à un mauvais destinataire"),
            ("aware_at", aware.as_str()),
            ("data_categories", "identité, scolarité"),
            ("people_approx", "25"),
            ("records_approx", records),
            ("consequences", "faibles"),
            ("measures", "demande de suppression"),
        ];
        let sent = post_form(app, &dpo, &breaches, &fields).await;
        assert_eq!(sent.status, 303, "{name}: {}", sent.text);
    }
    let log = get(app, &dpo, &breaches).await;
    assert!(row_of(&log.text, "Courriel mal adressé").contains("délai dépassé"), "{name}: {}", log.text);
    assert!(row_of(&log.text, "Clé USB perdue").contains("échéance proche"), "{name}: {}", log.text);
    let ahead = row_of(&log.text, "Accès indu");
    assert!(!ahead.contains("délai dépassé") && !ahead.contains("échéance proche"), "{name}: {ahead}");
    // Counts in groups of three, the organisation by its designation (domain review 41, F10).
    assert!(ahead.contains("<td>12\u{a0}000</td>"), "{name}: {ahead}");
    assert!(log.text.contains("Violations de données — Commune de Fresnes"), "{name}: {}", log.text);

    // Requests: due a month after receipt.
    let requests = format!("{register}/demandes");
    assert_eq!(post_form(app, &dpo, &requests, &[("requester", "A. B.")]).await.status, 422, "{name}");
    let day = |days: i64| (t0() - chrono::Duration::days(days)).format("%Y-%m-%d").to_string();
    for (who, days) in [("R. Ancienne", 40), ("R. Proche", 27), ("R. Récente", 2)] {
        let received = day(days);
        let fields = [("kind", "access"), ("requester", who), ("received_on", received.as_str())];
        let sent = post_form(app, &dpo, &requests, &fields).await;
        assert_eq!(sent.status, 303, "{name}: {}", sent.text);
    }
    let log = get(app, &dpo, &requests).await;
    assert!(row_of(&log.text, "R. Ancienne").contains("délai dépassé"), "{name}: {}", log.text);
    assert!(row_of(&log.text, "R. Proche").contains("échéance proche"), "{name}: {}", log.text);
    assert!(!row_of(&log.text, "R. Récente").contains("échéance proche"), "{name}: {}", log.text);

    // Contracts: the vendor's, with the host as its sub-processor, shown as a chain.
    let resolve = |key: &'static str| entcp::registry::resolve_org(store, key);
    let (vendor, host) = (resolve("editeur:900000019").await.unwrap(), resolve("hebergeur:900000027").await.unwrap());
    let contracts = format!("{register}/contrats");
    let page = get(app, &dpo, &contracts).await;
    let text = page.text.replace("&#x27;", "'");
    let chain = row_of(&text, "MARCHE-ENT-94034");
    let (v, h) = (format!("<li>→ {}", vendor.name), format!("<li>→ {}", host.name));
    assert!(chain.contains(&v) && chain.contains(&h), "{name}: {chain}");
    assert!(chain.find(&v) < chain.find(&h), "{name}: the vendor before its host: {chain}");
    assert!(chain.contains("clauses de l'article 28"), "{name}: {chain}");
    assert_eq!(post_form(app, &dpo, &contracts, &[("reference", "X")]).await.status, 422, "{name}");
    let fields = [("processor", host.id.as_str()), ("reference", "HEB-FRESNES"), ("title", "Hébergement direct")];
    let added = post_form(app, &dpo, &contracts, &fields).await;
    let page = follow(app, &dpo, &added).await;
    let text = page.text.replace("&#x27;", "'");
    assert!(row_of(&text, "HEB-FRESNES").contains("sans clauses de l'article 28"), "{name}: {text}");

    // The contracts download: the list's contracts and the convention's annex, as CSV.
    let export = link(&text, &format!("{register}/export-contrats"));
    let csv = get(app, &dpo, &export).await;
    assert_eq!(csv.status, 200, "{name}: {}", csv.text);
    assert!(csv.text.contains("MARCHE-ENT-94034") && csv.text.contains("HEB-FRESNES"), "{name}: {}", csv.text);
    assert!(csv.text.contains("annexe de l'article 28 d'une convention"), "{name}: {}", csv.text);
    assert!(!csv.text.contains("MARCHE-ENT-94081"), "{name}: {}", csv.text);

    // Another commune's logs and contracts are not revealed.
    let vitry = register_of(store, "commune:94081").await;
    for page in ["violations", "demandes", "contrats", "export-contrats"] {
        assert_eq!(get(app, &dpo, &format!("{vitry}/{page}")).await.status, 404, "{name}: {page}");
    }
}

backend_test!(a_breach_form_records_the_people_concerned_and_the_risk_that_decides_what_follows);
async fn a_breach_form_records_the_people_concerned_and_the_risk_that_decides_what_follows(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let breaches = format!("{register}/violations");
    let empty = get(app, &dpo, &breaches).await;
    assert!(empty.text.contains("id=\"entree-risk\"") && empty.text.contains("id=\"entree-people_categories\""));
    assert!(empty.text.contains("risque élevé : notification à la CNIL et information des personnes"), "{name}");

    let aware = typed_moment(-5);
    let mut recorded: Vec<(&str, &str)> = lost_usb_key(&aware).to_vec();
    recorded.extend([("people_categories", "élèves, parents d'élèves"), ("risk", "high")]);
    assert_eq!(post_form(app, &dpo, &breaches, &recorded).await.status, 303, "{name}");
    let log = get(app, &dpo, &breaches).await;
    let text = log.text.replace("&#x27;", "'");
    let row = row_of(&text, "Clé USB perdue");
    assert!(row.contains("élèves, parents d'élèves") && row.contains("risque élevé"), "{name}: {row}");
    assert!(row.contains("34.3"), "{name}: the people are still to be told: {row}");

    // The entry shows what was typed; « non requise » for a high risk is refused on its field.
    let entry = link(&log.text, &format!("{breaches}/"));
    let form = get(app, &dpo, &entry).await;
    assert!(form.text.contains("value=\"high\" selected"), "{name}: {}", form.text);
    let mut follow_up = recorded.clone();
    follow_up.extend([("cnil_decision", "not_required"), ("cnil_reason", "peu d'élèves"), ("version", "1")]);
    let refused = post_form(app, &dpo, &entry, &follow_up).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#entree-cnil_decision\""), "{name}: {}", refused.text);

    // Notified with its number, the people not told under the Art. 34(3) exception: saved.
    let notified_at = typed_moment(-1);
    let mut follow_up = recorded.clone();
    follow_up.extend([
        ("cnil_decision", "notified"),
        ("cnil_notified_at", notified_at.as_str()),
        ("cnil_reference", " CNIL-2026-0107 "),
        ("people_exception", "encrypted"),
        ("people_reason", "clé chiffrée en AES-256, la clé de déchiffrement non compromise"),
        ("version", "1"),
    ]);
    let saved = post_form(app, &dpo, &entry, &follow_up).await;
    assert_eq!(saved.status, 303, "{name}: {}", saved.text);
    let stored: (String, String, String, String) = sqlx::query_as(
        "SELECT risk, people_categories, cnil_reference, people_reason FROM rgpd_breaches WHERE title = $1",
    )
    .bind("Clé USB perdue")
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(stored.0, "high", "{name}");
    assert_eq!(stored.1, r#"["élèves","parents d'élèves"]"#, "{name}");
    assert_eq!(stored.2, "CNIL-2026-0107", "{name}: trimmed");
    assert!(stored.3.contains("AES-256"), "{name}: {stored:?}");
    let after = get(app, &dpo, &breaches).await;
    let row = row_of(&after.text, "Clé USB perdue");
    assert!(!row.contains("informez sans tarder"), "{name}: the warning is gone: {row}");
}

backend_test!(a_breach_and_a_request_are_followed_up_in_their_forms_under_the_version_check);
async fn a_breach_and_a_request_are_followed_up_in_their_forms_under_the_version_check(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let breaches = format!("{register}/violations");
    let aware = typed_moment(-60);
    let recorded = lost_usb_key(&aware);
    assert_eq!(post_form(app, &dpo, &breaches, &recorded).await.status, 303, "{name}");
    let log = get(app, &dpo, &breaches).await;
    let entry = link(&log.text, &format!("{breaches}/"));

    // The entry as recorded, its deadline close, at version 1.
    let form = get(app, &dpo, &entry).await;
    assert_eq!(form.status, 200, "{name}: {}", form.text);
    assert!(form.text.contains("value=\"Clé USB perdue\"") && form.text.contains(&format!("value=\"{aware}\"")));
    assert!(form.text.contains("échéance proche") && form.text.contains("name=\"version\" value=\"1\""), "{name}");
    assert!(form.text.contains("name=\"_csrf\""), "{name}");

    // Notified without its date: refused, the field named; with it: saved, the deadline met.
    let notified_at = typed_moment(-1);
    let mut follow_up: Vec<(&str, &str)> = recorded.to_vec();
    follow_up.extend([("cnil_decision", "notified"), ("version", "1")]);
    let refused = post_form(app, &dpo, &entry, &follow_up).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#entree-cnil_notified_at\""), "{name}: {}", refused.text);
    follow_up.extend([("cnil_notified_at", notified_at.as_str()), ("people_notified_at", notified_at.as_str())]);
    let saved = post_form(app, &dpo, &entry, &follow_up).await;
    let page = follow(app, &dpo, &saved).await;
    assert!(page.text.contains("L'entrée est mise à jour.") || page.text.contains("L&#x27;entrée est mise à jour."));
    assert!(row_of(&page.text, "Clé USB perdue").contains("décision prise"), "{name}: {}", page.text);
    let stored: (String, Option<String>, i64) =
        sqlx::query_as("SELECT cnil_decision, people_notified_at, version FROM rgpd_breaches WHERE title = $1")
            .bind("Clé USB perdue")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((stored.0.as_str(), stored.1.is_some(), stored.2), ("notified", true, 2), "{name}");

    // The same form again (version 1, now stale): a French message, the input kept, nothing lost.
    let mut stale = follow_up.clone();
    stale[0] = ("title", "Clé USB perdue (bis)");
    let conflict = post_form(app, &dpo, &entry, &stale).await;
    assert_eq!(conflict.status, 409, "{name}: {}", conflict.text);
    assert!(conflict.text.contains("modifiée par quelqu"), "{name}: {}", conflict.text);
    assert!(conflict.text.contains("value=\"Clé USB perdue (bis)\""), "{name}: the input is kept");
    assert!(conflict.text.contains("name=\"version\" value=\"2\""), "{name}: the newer version is offered");
    let titles: i64 =
        common::count(store, "SELECT COUNT(*) FROM rgpd_breaches WHERE title = $1", &["Clé USB perdue"]).await;
    assert_eq!(titles, 1, "{name}: the stale form changed nothing");

    // A request past its month: refused with a reason (its date required), then closed.
    let requests = format!("{register}/demandes");
    let received = (t0() - chrono::Duration::days(40)).format("%Y-%m-%d").to_string();
    let new = [("kind", "erasure"), ("requester", "R. Ancienne"), ("received_on", received.as_str())];
    assert_eq!(post_form(app, &dpo, &requests, &new).await.status, 303, "{name}");
    let entry = link(&get(app, &dpo, &requests).await.text, &format!("{requests}/"));
    let form = get(app, &dpo, &entry).await;
    assert!(form.text.contains("délai dépassé") && form.text.contains("value=\"erasure\" selected"), "{name}");
    // Extended only now, past its first month: too late to tell the requester (Art. 12(3)),
    // refused under its box, the day's control beside it; nothing changes.
    let mut extend: Vec<(&str, &str)> = new.to_vec();
    extend.extend([("extended", "oui"), ("version", "1")]);
    let late = post_form(app, &dpo, &entry, &extend).await;
    assert_eq!(late.status, 422, "{name}: {}", late.text);
    assert!(late.text.contains("id=\"entree-extended-erreur\"") && late.text.contains("12.3"), "{name}: {}", late.text);
    assert!(late.text.contains("id=\"entree-extension_notified_on\""), "{name}: {}", late.text);
    let mut answer: Vec<(&str, &str)> = new.to_vec();
    answer.extend([("status", "rejected"), ("notes", "Données nécessaires au service public"), ("version", "1")]);
    let refused = post_form(app, &dpo, &entry, &answer).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#entree-answered_on\""), "{name}: {}", refused.text);
    let today = t0().format("%Y-%m-%d").to_string();
    answer.push(("answered_on", today.as_str()));
    let saved = post_form(app, &dpo, &entry, &answer).await;
    let page = follow(app, &dpo, &saved).await;
    let row = row_of(&page.text, "R. Ancienne");
    assert!(row.contains("close") && !row.contains("délai dépassé"), "{name}: {row}");

    // Extended, then the extension taken back: unticking the box takes away the day the form
    // still shows beside it (it was refused as « pas de date » while the day stayed filled).
    let recent = (t0() - chrono::Duration::days(10)).format("%Y-%m-%d").to_string();
    let new = [("kind", "access"), ("requester", "R. Récente"), ("received_on", recent.as_str())];
    assert_eq!(post_form(app, &dpo, &requests, &new).await.status, 303, "{name}");
    let id: String = sqlx::query_scalar("SELECT id FROM rgpd_requests WHERE requester = 'R. Récente'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let recent_entry = format!("{requests}/{id}");
    let mut extend: Vec<(&str, &str)> = new.to_vec();
    extend.extend([("extended", "oui"), ("extension_notified_on", today.as_str()), ("version", "1")]);
    assert_eq!(post_form(app, &dpo, &recent_entry, &extend).await.status, 303, "{name}");
    let mut unticked: Vec<(&str, &str)> = new.to_vec();
    unticked.extend([("extension_notified_on", today.as_str()), ("version", "2")]);
    let taken_back = post_form(app, &dpo, &recent_entry, &unticked).await;
    assert_eq!(taken_back.status, 303, "{name}: {}", taken_back.text);
    let told: Option<String> = sqlx::query_scalar("SELECT extension_notified_on FROM rgpd_requests WHERE id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(told, None, "{name}");

    // Another commune's entry is not revealed, read or written.
    let vitry = register_of(store, "commune:94081").await;
    let elsewhere = entry.replace(&register, &vitry);
    assert_eq!(get(app, &dpo, &elsewhere).await.status, 404, "{name}");
    assert_eq!(post_form(app, &dpo, &elsewhere, &answer).await.status, 404, "{name}");
}

/// The id and version of the contract `reference` of the organisation whose register is at `register`.
pub(crate) async fn contract_at(store: &Store, register: &str, reference: &str) -> (String, i64) {
    sqlx::query_as("SELECT id, version FROM processor_contracts WHERE reference = $1 AND client_org_id = $2")
        .bind(reference)
        .bind(register.trim_start_matches("/rgpd/"))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

backend_test!(a_processor_contract_is_edited_under_the_version_check_and_its_chain_follows);
async fn a_processor_contract_is_edited_under_the_version_check_and_its_chain_follows(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let (id, version) = contract_at(store, &register, "MARCHE-ENT-94034").await;
    let contracts = format!("{register}/contrats");
    let list = get(app, &dpo, &contracts).await;
    assert!(
        list.text.contains(&format!("href=\"{}\"", escaped(&format!("{contracts}/{id}")))),
        "{name}: {}",
        list.text
    );
    let edit = format!("{contracts}/{id}");
    let form = get(app, &dpo, &edit).await;
    assert_eq!(form.status, 200, "{name}: {}", form.text);
    let shown = version.to_string();
    assert!(form.text.contains(&format!("name=\"version\" value=\"{shown}\"")), "{name}: {}", form.text);
    assert!(form.text.contains("id=\"contrat-art28\" name=\"art28\" value=\"oui\" checked"), "{name}: {}", form.text);

    // An end before the start: refused, the field named, nothing changed.
    let revised = |ends_on| {
        [("title", "Marché ENT revu"), ("starts_on", "2026-09-01"), ("ends_on", ends_on), ("version", shown.as_str())]
    };
    let backwards = revised("2026-01-01");
    let refused = post_form(app, &dpo, &edit, &backwards).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#contrat-ends_on\""), "{name}: {}", refused.text);

    // Without the Art. 28 clauses, new dates: saved, the list says so.
    let changed = revised("2029-08-31");
    let saved = post_form(app, &dpo, &edit, &changed).await;
    let page = follow(app, &dpo, &saved).await;
    let text = page.text.replace("&#x27;", "'");
    let row = row_of(&text, "MARCHE-ENT-94034");
    assert!(row.contains("sans clauses de l'article 28") && row.contains("31 août 2029"), "{name}: {row}");
    let stored: (i64, String, i64) =
        sqlx::query_as("SELECT art28_clauses, title, version FROM processor_contracts WHERE id = $1")
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(stored, (0, "Marché ENT revu".to_string(), version + 1), "{name}");

    // The same form again (now stale): a French message, the input kept, nothing lost.
    let stale = [("title", "Autre intitulé"), ("art28", "oui"), ("version", shown.as_str())];
    let conflict = post_form(app, &dpo, &edit, &stale).await;
    assert_eq!(conflict.status, 409, "{name}: {}", conflict.text);
    assert!(conflict.text.contains("modifié par quelqu") && conflict.text.contains("value=\"Autre intitulé\""));
    let title = common::texts(store, "SELECT title FROM processor_contracts WHERE id = $1", &[&id]).await;
    assert_eq!(title, ["Marché ENT revu"], "{name}: the stale form changed nothing");

    // Another commune's contract is not revealed, read or written.
    let vitry = register_of(store, "commune:94081").await;
    assert_eq!(get(app, &dpo, &edit.replace(&register, &vitry)).await.status, 404, "{name}");
    assert_eq!(get(app, &dpo, &format!("{contracts}/inconnu")).await.status, 404, "{name}");
    assert_eq!(post_form(app, &dpo, &edit.replace(&register, &vitry), &changed).await.status, 404, "{name}");
}

/// The number of processor contracts of reference `reference`.
pub(crate) async fn contracts_named(store: &Store, reference: &str) -> i64 {
    common::count(store, "SELECT COUNT(*) FROM processor_contracts WHERE reference = $1", &[reference]).await
}

backend_test!(a_dpo_adds_and_removes_a_sub_processor_of_a_contract_under_its_version);
async fn a_dpo_adds_and_removes_a_sub_processor_of_a_contract_under_its_version(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let new_host = |label: &'static str, seed: u32| async move {
        common::fixtures::new_org(store, OrgKind::Hebergeur, label, &common::fixtures::siren(seed), None).await
    };
    let (backup, other) = (new_host("Hébergeur de secours", 71).await, new_host("Infogérant du Val", 72).await);
    let vendor = entcp::registry::resolve_org(store, "editeur:900000019").await.unwrap();
    let host = entcp::registry::resolve_org(store, "hebergeur:900000027").await.unwrap();
    let (host_contract, _) = contract_at(store, &format!("/rgpd/{}", vendor.id), "HEB-2026-01").await;
    let (id, version) = contract_at(store, &register, "MARCHE-ENT-94034").await;
    let page_path = format!("{register}/contrats/{id}");
    let add = format!("{page_path}/sous-traitants");

    // The host the operator recorded in the vendor's chain is listed, without a removal
    // form for the commune's DPO (the vendor's other clients rely on it), nor a form adding
    // to that chain: only who keeps the vendor's registers (here the operator) adds to it.
    let page = get(app, &dpo, &page_path).await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    assert!(page.text.contains(&format!("id=\"sous-traitant-{host_contract}\"")), "{name}: {}", page.text);
    assert!(!page.text.contains(&format!("id=\"retirer-{host_contract}\"")), "{name}: {}", page.text);
    assert!(!page.text.contains("id=\"ajouter-sous-traitant\""), "{name}: {}", page.text);
    assert!(page.text.contains("id=\"chaine-tenue-ailleurs\""), "{name}: {}", page.text);
    person(store, ROOT, Role::Admin, None).await;
    let root = sign_in(app, ROOT).await;
    let page = get(app, &root, &page_path).await;
    assert!(page.text.contains(&format!("<option value=\"{}\"", backup.id)), "{name}: the hosts are offered");
    assert!(page.text.contains("for=\"sous-traitant-reference\""), "{name}: each field has its label");

    // Without the processor nor the reference: refused, each error linked to its field, the input kept.
    let shown = version.to_string();
    let refused = post_form(app, &root, &add, &[("title", "Hébergement de secours"), ("version", &shown)]).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    for field in ["processor", "reference"] {
        assert!(refused.text.contains(&format!("href=\"#sous-traitant-{field}\"")), "{name}: {}", refused.text);
        let described = format!("aria-describedby=\"sous-traitant-{field}-erreur\"");
        assert!(refused.text.contains(&described), "{name}: {field} {}", refused.text);
    }
    assert!(refused.text.contains("value=\"Hébergement de secours\""), "{name}: the input is kept");
    // The host again: a contract already binds it to the vendor.
    let again = [("processor", host.id.as_str()), ("reference", "HEB-BIS"), ("title", "Bis"), ("version", &shown)];
    let refused = post_form(app, &root, &add, &again).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("un contrat lie déjà cette organisation"), "{name}: {}", refused.text);
    assert_eq!(contracts_named(store, "HEB-BIS").await, 0, "{name}");

    // Added with its Art. 28 facts: bound to the vendor as its sub-processor, from this contract.
    let fields = [
        ("processor", backup.id.as_str()),
        ("reference", "HEB-SECOURS-1"),
        ("title", "Hébergement de secours"),
        ("art28", "oui"),
        ("starts_on", "2026-09-01"),
        ("ends_on", "2029-08-31"),
        ("version", &shown),
    ];
    let added = post_form(app, &root, &add, &fields).await;
    assert_eq!(added.status, 303, "{name}: {}", added.text);
    let page = follow(app, &root, &added).await;
    assert!(page.text.contains("Le sous-traitant ultérieur est ajouté au contrat."), "{name}: {}", page.text);
    let stored: (String, Option<String>, i64, String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT client_org_id, parent_processor_org_id, art28_clauses, source_kind, source_id, ends_on \
         FROM processor_contracts WHERE reference = $1",
    )
    .bind("HEB-SECOURS-1")
    .fetch_one(store.pool())
    .await
    .unwrap();
    let expected = (vendor.id.clone(), Some(vendor.id.clone()), 1, "contrat".to_string(), Some(id.clone()));
    assert_eq!((stored.0, stored.1, stored.2, stored.3, stored.4), expected, "{name}");
    assert_eq!(stored.5.as_deref(), Some("2029-08-31"), "{name}");
    assert_eq!(contract_at(store, &register, "MARCHE-ENT-94034").await.1, version + 1, "{name}: a new version");
    assert_eq!(audited(store, "contracts.sub_processors.add").await, 1, "{name}");
    let row = row_of(&page.text, "HEB-SECOURS-1");
    assert!(row.contains("31 août 2029") && row.contains("clauses de l"), "{name}: {row}");
    // The commune's register names it among the processors of its activities.
    let state = common::app::app_state(store.clone(), Default::default(), d.app.clock.clone()).rgpd();
    let fresnes = entcp::registry::resolve_org(store, "commune:94034").await.unwrap();
    let derived = serde_json::to_string(&entcp::rgpd::current(&state, &fresnes).await.unwrap()).unwrap();
    assert!(derived.contains("Hébergeur de secours"), "{name}: the register follows");

    // A form shown before that addition (now stale): a French message, the input kept, the
    // newer version offered, nothing added.
    let stale =
        [("processor", other.id.as_str()), ("reference", "INFOG-1"), ("title", "Infogérance"), ("version", &shown)];
    let conflict = post_form(app, &root, &add, &stale).await;
    assert_eq!(conflict.status, 409, "{name}: {}", conflict.text);
    assert!(conflict.text.contains("modifié par quelqu") && conflict.text.contains("value=\"INFOG-1\""), "{name}");
    let newer = (version + 1).to_string();
    assert!(conflict.text.contains(&format!("name=\"version\" value=\"{newer}\"")), "{name}: {}", conflict.text);
    assert_eq!(contracts_named(store, "INFOG-1").await, 0, "{name}: the stale form added nothing");

    // The host declared in the vendor's own chain: its removal is refused, it stays.
    let forged = post_form(app, &dpo, &format!("{add}/{host_contract}/retrait"), &[("version", &newer)]).await;
    assert_eq!(forged.status, 403, "{name}: {}", forged.text);
    assert_eq!(contracts_named(store, "HEB-2026-01").await, 1, "{name}");

    // The one added from the commune's contract is in the vendor's chain too, which every
    // client of the vendor shares: the commune's DPO may not remove it (no form, 403), as it
    // may not add one. Who keeps the vendor's registers does: a stale removal is refused and
    // keeps it; at the version shown, removed.
    let (backup_contract, _) = contract_at(store, &format!("/rgpd/{}", vendor.id), "HEB-SECOURS-1").await;
    let removal = format!("{add}/{backup_contract}/retrait");
    let page = get(app, &dpo, &page_path).await;
    assert!(!page.text.contains(&format!("id=\"retirer-{backup_contract}\"")), "{name}: no removal form");
    let refused = post_form(app, &dpo, &removal, &[("version", &newer)]).await;
    assert_eq!(refused.status, 403, "{name}: {}", refused.text);
    assert!(refused.text.contains("peut en retirer un sous-traitant"), "{name}: {}", refused.text);
    assert_eq!(contracts_named(store, "HEB-SECOURS-1").await, 1, "{name}");
    let page = get(app, &root, &page_path).await;
    assert!(page.text.contains(&format!("id=\"retirer-{backup_contract}\"")), "{name}: a removal form");
    assert_eq!(post_form(app, &root, &removal, &[("version", &shown)]).await.status, 409, "{name}");
    assert_eq!(contracts_named(store, "HEB-SECOURS-1").await, 1, "{name}");
    let removed = post_form(app, &root, &removal, &[("version", &newer)]).await;
    assert_eq!(removed.status, 303, "{name}: {}", removed.text);
    let page = follow(app, &root, &removed).await;
    assert!(page.text.contains("Le sous-traitant ultérieur est retiré du contrat."), "{name}: {}", page.text);
    assert_eq!(contracts_named(store, "HEB-SECOURS-1").await, 0, "{name}");
    assert_eq!(audited(store, "contracts.sub_processors.remove").await, 1, "{name}");
    assert_eq!(audited(store, "contracts.delete").await, 1, "{name}");
    // The same removal form again, the sub-processor gone since: the form is stale and says so.
    let again = post_form(app, &root, &removal, &[("version", &newer)]).await;
    assert_eq!(again.status, 409, "{name}: {}", again.text);
    assert!(again.text.contains("modifié par quelqu"), "{name}: {}", again.text);

    // Another commune's contract: not revealed, read or written, under either address.
    let vitry = register_of(store, "commune:94081").await;
    let (theirs, their_version) = contract_at(store, &vitry, "MARCHE-ENT-94081").await;
    let at = their_version.to_string();
    let fields =
        [("processor", other.id.as_str()), ("reference", "INFOG-2"), ("title", "Infogérance"), ("version", &at)];
    for base in [&register, &vitry] {
        let path = format!("{base}/contrats/{theirs}");
        assert_eq!(get(app, &dpo, &path).await.status, 404, "{name}: {path}");
        assert_eq!(post_form(app, &dpo, &format!("{path}/sous-traitants"), &fields).await.status, 404, "{name}");
        let removal = format!("{path}/sous-traitants/{host_contract}/retrait");
        assert_eq!(post_form(app, &dpo, &removal, &[("version", &at)]).await.status, 404, "{name}");
    }
    assert_eq!(contracts_named(store, "INFOG-2").await, 0, "{name}");
    assert_eq!(contracts_named(store, "HEB-2026-01").await, 1, "{name}");
}

backend_test!(a_school_head_cannot_add_a_sub_processor_to_the_chain_its_vendors_other_clients_see);
async fn a_school_head_cannot_add_a_sub_processor_to_the_chain_its_vendors_other_clients_see(db: common::TestDb) {
    let (name, d, fresnes, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let chef_email = "ce.0940198e@ac-creteil.fr";
    with_password(store, chef_email).await;
    let chef = sign_in(app, chef_email).await;
    let school = register_of(store, "0940198E").await;
    let vendor = entcp::registry::resolve_org(store, "editeur:900000019").await.unwrap();
    let cloud =
        common::fixtures::new_org(store, OrgKind::Hebergeur, "Cloud US", &common::fixtures::siren(73), None).await;
    let patch = entcp::registry::manage::OrgPatch { country: Some("US".into()), ..Default::default() };
    entcp::registry::manage::update_org(store, &common::admin(), &cloud, cloud.version, patch, t0()).await.unwrap();
    let state = common::app::app_state(store.clone(), Default::default(), d.app.clock.clone()).rgpd();
    let vitry = entcp::registry::resolve_org(store, "commune:94081").await.unwrap();
    let register = || async { serde_json::to_string(&entcp::rgpd::current(&state, &vitry).await.unwrap()).unwrap() };
    let before = register().await;

    // The school binds itself to the vendor (its own register), then names a US host under it.
    let contract = [("processor", vendor.id.as_str()), ("reference", "ECOLE-ENT-1"), ("title", "ENT de l'école")];
    let bound = post_form(app, &chef, &format!("{school}/contrats"), &contract).await;
    assert_eq!(bound.status, 303, "{name}: {}", bound.text);
    let (id, version) = contract_at(store, &school, "ECOLE-ENT-1").await;
    let page_path = format!("{school}/contrats/{id}");
    let page = get(app, &chef, &page_path).await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    assert!(!page.text.contains("id=\"ajouter-sous-traitant\""), "{name}: no form adding to the chain");
    let shown = version.to_string();
    let fields =
        [("processor", cloud.id.as_str()), ("reference", "CLOUD-US-1"), ("title", "Cloud"), ("version", &shown)];
    let refused = post_form(app, &chef, &format!("{page_path}/sous-traitants"), &fields).await;
    assert_eq!(refused.status, 403, "{name}: {}", refused.text);
    // The vendor's name opens with a vowel: « d'Éditeur ENT… », never « de Éditeur ».
    assert!(
        refused.text.contains("seul qui tient les registres d&#x27;Éditeur ENT de démonstration peut"),
        "{name}: {}",
        refused.text
    );
    // Nor does a commune's DPO from its own contract with the vendor.
    let (theirs, version) = contract_at(store, &fresnes, "MARCHE-ENT-94034").await;
    let shown = version.to_string();
    let fields =
        [("processor", cloud.id.as_str()), ("reference", "CLOUD-US-2"), ("title", "Cloud"), ("version", &shown)];
    let refused = post_form(app, &dpo, &format!("{fresnes}/contrats/{theirs}/sous-traitants"), &fields).await;
    assert_eq!(refused.status, 403, "{name}: {}", refused.text);

    // Nothing was added to the vendor's chain: another client's register is unchanged, no transfer.
    for reference in ["CLOUD-US-1", "CLOUD-US-2"] {
        assert_eq!(contracts_named(store, reference).await, 0, "{name}: {reference}");
    }
    let after = register().await;
    assert!(!after.contains("Cloud US"), "{name}: {after}");
    assert_eq!(after, before, "{name}: Vitry's register is unchanged");
}

/// The words of a console error page (its lead paragraph), the key asked (« key ») replaced by `KEY`.
pub(crate) fn error_words(html: &str, key: &str) -> String {
    let at = html.find("class=\"fr-text--lead\">").unwrap_or_else(|| panic!("an error page: {html}")) + 22;
    html[at..].split("</p>").next().unwrap().replace(&format!("« {key} »"), "« KEY »")
}

backend_test!(another_communes_register_pages_answer_as_a_register_that_does_not_exist);
async fn another_communes_register_pages_answer_as_a_register_that_does_not_exist(db: common::TestDb) {
    let (name, d, _, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let vitry = entcp::registry::resolve_org(store, "commune:94081").await.unwrap().id;
    let missing = "0190a000-0000-7000-8000-000000000000";
    for page in ["", "/violations", "/demandes", "/contrats", "/profil", "/ecarts", "/export/csv"] {
        let (theirs, none) = (format!("/rgpd/{vitry}{page}"), format!("/rgpd/{missing}{page}"));
        let (theirs, none) = (get(app, &dpo, &theirs).await, get(app, &dpo, &none).await);
        assert_eq!((theirs.status, none.status), (404, 404), "{name} {page}: {}", theirs.text);
        let (said, unknown) = (error_words(&theirs.text, &vitry), error_words(&none.text, missing));
        assert_eq!(said, unknown, "{name} {page}: an organisation out of scope reads as one that does not exist");
    }
    // The same for a write: the register's snapshot form.
    let (theirs, none) = (format!("/rgpd/{vitry}/instantanes"), format!("/rgpd/{missing}/instantanes"));
    let (theirs, none) = (post_form(app, &dpo, &theirs, &[]).await, post_form(app, &dpo, &none, &[]).await);
    assert_eq!((theirs.status, none.status), (404, 404), "{name}: {}", theirs.text);
    assert_eq!(error_words(&theirs.text, &vitry), error_words(&none.text, missing), "{name}");
}

backend_test!(control_characters_in_a_console_form_are_refused_in_french_and_nothing_is_written);
async fn control_characters_in_a_console_form_are_refused_in_french_and_nothing_is_written(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let aware = typed_moment(-2);
    let breach = |facts: &'static str| {
        vec![
            ("title", "Accès indu"),
            ("facts", facts),
            ("aware_at", aware.as_str()),
            ("data_categories", "identité"),
            ("people_approx", "3"),
            ("records_approx", "3"),
            ("consequences", "faibles"),
            ("measures", "compte bloqué"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect::<Vec<_>>()
    };
    let breaches = format!("{register}/violations");
    // A NUL byte (PostgreSQL refuses it in text), an escape sequence, a bell: refused.
    for facts in ["Compte\u{0} partagé", "Compte \u{1b}[31mpartagé", "Compte\u{7} partagé"] {
        let fields = breach(facts);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = post_form(app, &dpo, &breaches, &fields).await;
        assert_eq!(refused.status, 422, "{name} {facts:?}: {}", refused.text);
        assert!(refused.text.contains("caractère de contrôle interdit"), "{name}: {}", refused.text);
        assert!(refused.text.contains("« facts »"), "{name}: the field is named: {}", refused.text);
    }
    let count = |sql: &'static str| common::count(store, sql, &[]);
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_breaches").await, 0, "{name}: nothing written");
    // Line breaks and tabs are text: the same breach with them is recorded.
    let fields = breach("Compte partagé\r\n\tdepuis lundi");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post_form(app, &dpo, &breaches, &fields).await.status, 303, "{name}");
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_breaches").await, 1, "{name}");

    // A request's notes and the contacts' address likewise.
    let today = t0().format("%Y-%m-%d").to_string();
    let request = [("kind", "access"), ("requester", "A. B."), ("received_on", &today), ("notes", "vu\u{0}")];
    let refused = post_form(app, &dpo, &format!("{register}/demandes"), &request).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_requests").await, 0, "{name}");
    let contacts = [("address", "1 place de la mairie\u{8}"), ("version", "0")];
    let refused = post_form(app, &dpo, &format!("{register}/profil"), &contacts).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    let two_lines = [("phone", "01 02 03\n04 05"), ("version", "0")];
    let refused = post_form(app, &dpo, &format!("{register}/profil"), &two_lines).await;
    let said: Vec<String> = crate::console::summary_links(&refused.text).into_iter().map(|(_, text)| text).collect();
    assert!(said.iter().any(|s| s.starts_with("Téléphone : ")), "{name}: the link names its field: {said:?}");
    let fresnes = register.trim_start_matches("/rgpd/");
    let profiles = common::count(store, "SELECT COUNT(*) FROM rgpd_profiles WHERE org_id = $1", &[fresnes]).await;
    assert_eq!(profiles, 0, "{name}: nothing written");
}

backend_test!(a_contract_added_under_an_existing_reference_overwrites_nothing);
async fn a_contract_added_under_an_existing_reference_overwrites_nothing(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let (id, version) = contract_at(store, &register, "MARCHE-ENT-94034").await;
    let read = || async {
        sqlx::query_as::<_, (String, String, i64, String, i64)>(
            "SELECT processor_org_id, title, art28_clauses, source_kind, version FROM processor_contracts WHERE id = $1",
        )
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let before = read().await;
    let updates = audited(store, "contracts.update").await;
    let contracts = format!("{register}/contrats");

    // The form of a new contract naming the processor and reference of an existing one:
    // refused on the reference, the existing contract untouched (its title, its Art. 28
    // clauses, its source and version), nothing audited.
    let same = [("processor", before.0.as_str()), ("reference", " MARCHE-ENT-94034 "), ("title", "Écrasé")];
    let refused = post_form(app, &dpo, &contracts, &same).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("href=\"#contrat-reference\""), "{name}: {}", refused.text);
    let said: Vec<String> = crate::console::summary_links(&refused.text).into_iter().map(|(_, text)| text).collect();
    assert!(
        said.iter().any(|s| s.starts_with("Référence du contrat : ")),
        "{name}: the link names its field: {said:?}"
    );
    // The message beside its field, which names it (RGAA 11.10).
    let tied = "name=\"reference\" value=\"MARCHE-ENT-94034\" aria-invalid=\"true\" aria-describedby=\"contrat-reference-erreur\"";
    assert!(refused.text.contains(tied), "{name}: {}", refused.text);
    assert!(refused.text.contains("id=\"contrat-reference-erreur\""), "{name}: {}", refused.text);
    assert!(refused.text.contains("value=\"Écrasé\""), "{name}: the input is kept");
    assert_eq!(read().await, before, "{name}: the existing contract is unchanged");
    assert_eq!(before.4, version, "{name}");
    assert_eq!(audited(store, "contracts.update").await, updates, "{name}");

    // A new contract sent twice (a double click): recorded once, the second send changes nothing.
    let host = entcp::registry::resolve_org(store, "hebergeur:900000027").await.unwrap();
    let new = [("processor", host.id.as_str()), ("reference", "HEB-DIRECT"), ("title", "Hébergement direct")];
    assert_eq!(post_form(app, &dpo, &contracts, &new).await.status, 303, "{name}");
    let again = post_form(app, &dpo, &contracts, &new).await;
    assert_eq!(again.status, 303, "{name}: {}", again.text);
    assert_eq!(contracts_named(store, "HEB-DIRECT").await, 1, "{name}");
    assert_eq!(contract_at(store, &register, "HEB-DIRECT").await.1, 1, "{name}: still its first version");
    assert_eq!(audited(store, "contracts.update").await, updates, "{name}: nothing more audited");
}

backend_test!(a_breach_or_a_request_sent_twice_is_recorded_once);
async fn a_breach_or_a_request_sent_twice_is_recorded_once(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let count = |sql: &'static str| common::count(store, sql, &[]);
    let aware = typed_moment(-3);
    let breach = breach_form(
        "Courriel mal adressé",
        "Liste de classe envoyée à un tiers",
        &aware,
        "identité",
        "25",
        "demande de suppression",
    );
    let breaches = format!("{register}/violations");
    for _ in 0..2 {
        assert_eq!(post_form(app, &dpo, &breaches, &breach).await.status, 303, "{name}");
    }
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_breaches").await, 1, "{name}: one breach");
    assert_eq!(audited(store, "rgpd.breach.create").await, 1, "{name}: audited once");
    // The same breach sent again through the API, its moment typed with the offset of Paris
    // (the console stored it in UTC): the same instant, the same breach.
    let stored: String =
        sqlx::query_scalar("SELECT aware_at FROM rgpd_breaches").fetch_one(store.pool()).await.unwrap();
    let moment = chrono::DateTime::parse_from_rfc3339(&stored).unwrap();
    let with_offset = moment.with_timezone(&chrono_tz::Europe::Paris).to_rfc3339();
    assert_ne!(with_offset, stored, "{name}");
    let input: entcp::rgpd::breaches::BreachInput = serde_json::from_value(serde_json::json!({
        "title": "Courriel mal adressé", "facts": "Liste de classe envoyée à un tiers", "aware_at": with_offset,
        "data_categories": ["identité"], "people_approx": 25, "records_approx": 25, "consequences": "faibles",
        "measures": "demande de suppression",
    }))
    .unwrap();
    let state = common::app::app_state(store.clone(), Default::default(), app.clock.clone()).rgpd();
    let org = entcp::registry::resolve_org(store, "commune:94034").await.unwrap();
    let actor = entcp::identity::Actor::cli();
    let again = entcp::rgpd::breaches::create(&state, &actor, &org, input).await.unwrap();
    assert_eq!(again.input.aware_at, stored, "{name}: the breach recorded answers");
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_breaches").await, 1, "{name}: still one breach");
    // Another moment of awareness is another breach.
    let later = typed_moment(-1);
    let mut other = breach.to_vec();
    other[2] = ("aware_at", later.as_str());
    assert_eq!(post_form(app, &dpo, &breaches, &other).await.status, 303, "{name}");
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_breaches").await, 2, "{name}");

    let today = t0().format("%Y-%m-%d").to_string();
    let request = [("kind", "access"), ("requester", "A. B."), ("received_on", today.as_str())];
    let requests = format!("{register}/demandes");
    for _ in 0..2 {
        assert_eq!(post_form(app, &dpo, &requests, &request).await.status, 303, "{name}");
    }
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_requests").await, 1, "{name}: one request");
    assert_eq!(audited(store, "rgpd.request.create").await, 1, "{name}: audited once");
    let erasure = [("kind", "erasure"), ("requester", "A. B."), ("received_on", today.as_str())];
    assert_eq!(post_form(app, &dpo, &requests, &erasure).await.status, 303, "{name}");
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_requests").await, 2, "{name}: another right, another request");
}

backend_test!(very_long_texts_in_the_rgpd_forms_are_refused_on_their_field_and_nothing_is_written);
async fn very_long_texts_in_the_rgpd_forms_are_refused_on_their_field_and_nothing_is_written(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let count = |sql: &'static str| common::count(store, sql, &[]);
    let (long_line, long_text) = ("x".repeat(201), "x".repeat(5001));
    let aware = typed_moment(-3);
    let breach = |field: &'static str, value: &str| {
        let mut fields = vec![
            ("title", "Courriel mal adressé".to_string()),
            ("facts", "Liste de classe envoyée à un tiers".to_string()),
            ("aware_at", aware.clone()),
            ("data_categories", "identité".to_string()),
            ("people_approx", "25".to_string()),
            ("records_approx", "25".to_string()),
            ("consequences", "faibles".to_string()),
            ("measures", "demande de suppression".to_string()),
        ];
        fields.retain(|(k, _)| *k != field);
        fields.push((field, value.to_string()));
        fields
    };
    let breaches = format!("{register}/violations");
    for (field, value) in [
        ("title", &long_line),
        ("data_categories", &long_line),
        ("facts", &long_text),
        ("consequences", &long_text),
        ("measures", &long_text),
    ] {
        let fields = breach(field, value);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = post_form(app, &dpo, &breaches, &fields).await;
        assert_eq!(refused.status, 422, "{name} {field}: {}", refused.text);
        assert!(refused.text.contains(&format!("href=\"#entree-{field}\"")), "{name} {field}: {}", refused.text);
        assert!(refused.text.contains("caractères au plus"), "{name} {field}: {}", refused.text);
    }
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_breaches").await, 0, "{name}: nothing written");

    let today = t0().format("%Y-%m-%d").to_string();
    let requests = format!("{register}/demandes");
    for (field, value) in [("requester", &long_line), ("notes", &long_text)] {
        let mut fields = vec![("kind", "access"), ("requester", "A. B."), ("received_on", today.as_str())];
        fields.retain(|(k, _)| *k != field);
        fields.push((field, value.as_str()));
        let refused = post_form(app, &dpo, &requests, &fields).await;
        assert_eq!(refused.status, 422, "{name} {field}: {}", refused.text);
        assert!(refused.text.contains(&format!("href=\"#entree-{field}\"")), "{name} {field}: {}", refused.text);
    }
    assert_eq!(count("SELECT COUNT(*) FROM rgpd_requests").await, 0, "{name}: nothing written");

    // A processor contract's reference and title are one line each, bounded too.
    let host = entcp::registry::resolve_org(store, "hebergeur:900000027").await.unwrap();
    let (long_reference, long_title) = ("R".repeat(101), "T".repeat(301));
    let contracts = format!("{register}/contrats");
    for (reference, title, field) in
        [(long_reference.as_str(), "Hébergement", "reference"), ("HEB-LONG", long_title.as_str(), "title")]
    {
        let fields = [("processor", host.id.as_str()), ("reference", reference), ("title", title)];
        let refused = post_form(app, &dpo, &contracts, &fields).await;
        assert_eq!(refused.status, 422, "{name} {field}: {}", refused.text);
        assert!(refused.text.contains(&format!("href=\"#contrat-{field}\"")), "{name} {field}: {}", refused.text);
    }
    assert_eq!(contracts_named(store, &long_reference).await + contracts_named(store, "HEB-LONG").await, 0, "{name}");
}

backend_test!(a_breach_known_on_friday_at_23_30_in_paris_is_due_at_the_cnil_on_monday_at_23_30_in_paris);
async fn a_breach_known_on_friday_at_23_30_in_paris_is_due_at_the_cnil_on_monday_at_23_30_in_paris(db: common::TestDb) {
    let (name, d, register, _) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    // The DPO signs in again after each move of the clock (sessions close after 30 idle minutes).
    let dpo_at = |moment: &'static str| {
        app.clock.set(at(moment));
        sign_in(app, DPO)
    };
    let breaches = format!("{register}/violations");
    // Saturday morning, the DPO records what it learnt on Friday 4 September at 23:30, in Paris.
    let dpo = dpo_at("2026-09-05T08:00:00Z").await;
    let fields = lost_usb_key("2026-09-04T23:30");
    assert_eq!(post_form(app, &dpo, &breaches, &fields).await.status, 303, "{name}");
    let stored: String = sqlx::query_scalar("SELECT aware_at FROM rgpd_breaches WHERE title = $1")
        .bind("Clé USB perdue")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, "2026-09-04T21:30:00Z", "{name}: 23:30 in Paris in summer is 21:30 UTC");
    let log = get(app, &dpo, &breaches).await;
    let row = row_of(&log.text, "Clé USB perdue");
    assert!(row.contains("7 septembre 2026 à 23 h 30 (heure de Paris)"), "{name}: {row}");
    assert!(row.contains("4 septembre 2026 à 23 h 30"), "{name}: the moment typed, in Paris: {row}");
    let form = get(app, &dpo, &link(&log.text, &format!("{breaches}/"))).await;
    assert!(form.text.contains("value=\"2026-09-04T23:30\""), "{name}: the form shows what was typed");

    // Monday 23:29 in Paris: close; 23:31: passed.
    for (moment, says) in [("2026-09-07T21:29:00Z", "échéance proche"), ("2026-09-07T21:31:00Z", "délai dépassé")]
    {
        let page = get(app, &dpo_at(moment).await, &breaches).await.text;
        assert!(row_of(&page, "Clé USB perdue").contains(says), "{name}: {moment}: {page}");
    }

    // A request received on 7 August is due on 7 September, to the end of that day in Paris.
    let requests = format!("{register}/demandes");
    let request = [("kind", "access"), ("requester", "R. Limite"), ("received_on", "2026-08-07")];
    assert_eq!(post_form(app, &sign_in(app, DPO).await, &requests, &request).await.status, 303, "{name}");
    // 23:59 in Paris: close; 00:01: passed.
    for (moment, says) in [("2026-09-07T21:59:00Z", "échéance proche"), ("2026-09-07T22:01:00Z", "délai dépassé")]
    {
        let page = get(app, &dpo_at(moment).await, &requests).await.text;
        assert!(row_of(&page, "R. Limite").contains(says), "{name}: {moment}: {page}");
    }
}

/// The breach form's controls from top to bottom, as `rgpd_log.html` lays them out.
const BREACH_FORM_ORDER: [&str; 11] = [
    "title",
    "facts",
    "occurred_at",
    "aware_at",
    "data_categories",
    "people_categories",
    "people_approx",
    "records_approx",
    "consequences",
    "measures",
    "risk",
];

// RGAA 11.10: an empty breach form is refused in one round, every required field named in
// the summary by its label and marked required; the request form likewise (its right chosen
// from a list); an organisation code that opens no register is said beside its field.
backend_test!(an_empty_breach_or_request_form_names_every_missing_field_in_one_round);
async fn an_empty_breach_or_request_form_names_every_missing_field_in_one_round(db: common::TestDb) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let app = &d.app;
    let breaches = format!("{register}/violations");
    let form = get(app, &dpo, &breaches).await;
    assert!(form.text.contains("Intitulé (obligatoire)") && form.text.contains("Connue le (obligatoire"), "{name}");
    let refused = post_form(app, &dpo, &breaches, &[("people_approx", "beaucoup")]).await;
    assert_refusal_announced(&refused);
    let links = summary_links(&refused.text);
    let fields: Vec<&str> = links.iter().map(|(id, _)| id.trim_start_matches("entree-")).collect();
    for required in
        ["title", "facts", "aware_at", "data_categories", "people_approx", "records_approx", "consequences", "measures"]
    {
        assert!(fields.contains(&required), "{name}: {required} in the first round: {links:?}");
    }
    // The summary reads as the form does, top to bottom (domain review 41, F11): the form's own
    // reading of a number is not said before the fields above it.
    let in_form: Vec<&str> = BREACH_FORM_ORDER.iter().copied().filter(|f| fields.contains(f)).collect();
    assert_eq!(fields, in_form, "{name}: the summary in the order of the form");
    let said: Vec<&str> = links.iter().map(|(_, text)| text.as_str()).collect();
    assert!(said.contains(&"Intitulé : champ obligatoire"), "{name}: the label names the field: {said:?}");
    assert!(said.contains(&"Connue le : date et heure obligatoires"), "{name}: {said:?}");
    assert!(
        said.contains(&"Nombre approximatif de personnes : nombre entier attendu, par exemple 120"),
        "{name}: {said:?}"
    );
    assert!(said.contains(&"Nombre approximatif d&#x27;enregistrements : champ obligatoire"), "{name}: {said:?}");
    assert!(!refused.text.contains("RFC 3339"), "{name}: nothing technical");
    assert_eq!(common::count(&d.db.store, "SELECT COUNT(*) FROM rgpd_breaches", &[]).await, 0, "{name}");

    let requests = format!("{register}/demandes");
    let refused = post_form(app, &dpo, &requests, &[]).await;
    assert_refusal_announced(&refused);
    let ids: Vec<String> = summary_links(&refused.text).into_iter().map(|(id, _)| id).collect();
    for required in ["entree-kind", "entree-requester", "entree-received_on"] {
        assert!(ids.iter().any(|id| id == required), "{name}: {required} in {ids:?}");
    }
    assert!(
        refused
            .text
            .contains("id=\"entree-kind\" name=\"kind\" aria-invalid=\"true\" aria-describedby=\"entree-kind-erreur\""),
        "{name}: {}",
        refused.text
    );

    let unknown = get(app, &dpo, "/rgpd?organisation=zzzz").await;
    assert_eq!(unknown.status, 404, "{name}");
    assert_refusal_announced(&unknown);
    assert!(
        unknown.text.contains("href=\"#organisation\"") && unknown.text.contains("id=\"organisation-erreur\""),
        "{name}: {}",
        unknown.text
    );
    assert!(unknown.text.contains("value=\"zzzz\""), "{name}: the code kept");
}

/// Records, as the operator, the market of the groupement `reference` (`source_id`, its id when
/// known) as a contract binding the éditeur 900000019 to Fresnes from 1 September 2026, with
/// the Art. 28 clauses of its CCAP; Fresnes.
async fn groupement_market_for_fresnes(
    store: &Store,
    reference: &str,
    source_id: Option<String>,
) -> entcp::registry::Org {
    let resolve = entcp::registry::resolve_org;
    let (vendor, fresnes) =
        (resolve(store, "editeur:900000019").await.unwrap(), resolve(store, "commune:94034").await.unwrap());
    let market = entcp::contracts::NewContract {
        processor_org_id: vendor.id.clone(),
        client_org_id: fresnes.id.clone(),
        parent_processor_org_id: None,
        reference: reference.into(),
        title: format!("Marché ENT du groupement de commandes {reference}"),
        art28_clauses: true,
        starts_on: Some("2026-09-01".into()),
        ends_on: None,
        source_kind: entcp::contracts::FROM_GROUPEMENT.into(),
        source_id,
    };
    let mut tx = store.begin_write().await.unwrap();
    entcp::contracts::record(&mut tx, store, &common::admin(), &market, t0()).await.unwrap();
    tx.commit().await.unwrap();
    fresnes
}

backend_test!(a_contract_of_a_groupement_s_market_shows_the_conventions_chain_and_keeps_its_ccap_clauses);
/// A contract a groupement's award recorded binds the éditeur to Fresnes: its chain starts from
/// the conventions' RGPD roles (the DSDEN controller, the commune its processor under its
/// convention, the éditeur sub-processor under the market), and the commune's DPO cannot untick
/// the Art. 28 clauses that the market's CCAP holds.
async fn a_contract_of_a_groupement_s_market_shows_the_conventions_chain_and_keeps_its_ccap_clauses(
    db: common::TestDb,
) {
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let fresnes = groupement_market_for_fresnes(store, "GC-2026-000001", None).await;
    let (id, version) = contract_at(store, &register, "GC-2026-000001").await;
    let edit = format!("{register}/contrats/{id}");
    let page = get(app, &dpo, &edit).await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    let text = page.text.replace("&#x27;", "'");
    let chain = &text[text.find("id=\"chaine\"").expect("the chain")..];
    let chain = &chain[..chain.find("</ol>").unwrap()];
    let convention: String = sqlx::query_scalar(
        "SELECT c.reference FROM conventions c JOIN convention_parties p ON p.convention_id = c.id \
         WHERE p.org_id = $1 AND c.status = 'active'",
    )
    .bind(&fresnes.id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    for link in [
        "<li>DSDEN du Val-de-Marne (responsable de traitement)</li>".to_string(),
        format!("<li>→ Commune de Fresnes (sous-traitant, convention {convention})</li>"),
        "(sous-traitant ultérieur, marché GC-2026-000001)</li>".to_string(),
    ] {
        assert!(chain.contains(&link), "{name}: « {link} » in {chain}");
    }
    assert!(!chain.contains("(responsable)"), "{name}: {chain}");
    // The box is shown ticked and locked; a form without it is refused and the clauses stay.
    assert!(text.contains("id=\"contrat-art28-ccap\""), "{name}: {text}");
    let shown = version.to_string();
    let unticked = [("title", "Marché ENT"), ("starts_on", "2026-09-01"), ("version", shown.as_str())];
    let refused = post_form(app, &dpo, &edit, &unticked).await;
    assert_eq!(refused.status, 422, "{name}: {}", refused.text);
    assert!(refused.text.contains("seul un avenant au marché peut les modifier"), "{name}: {}", refused.text);
    let stored: (i64, i64) = sqlx::query_as("SELECT art28_clauses, version FROM processor_contracts WHERE id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, (1, version), "{name}: nothing changed");
    // With the box as shown (the hidden field the page sends), the rest of the contract is edited.
    let kept = [("title", "Marché ENT"), ("starts_on", "2026-09-01"), ("art28", "oui"), ("version", shown.as_str())];
    let saved = post_form(app, &dpo, &edit, &kept).await;
    assert_eq!(saved.status, 303, "{name}: {}", saved.text);
}

backend_test!(a_contract_s_ccap_is_linked_only_for_who_may_read_it);
/// A contract a groupement's award recorded names the CCAP holding its Art. 28 clauses: the
/// commune's DPO, neither the coordinator's nor a member's, reads its reference, version and
/// SHA-256 as text (the document route would refuse them: no dead link); the operator, who reads
/// every groupement's documents, follows the link.
async fn a_contract_s_ccap_is_linked_only_for_who_may_read_it(db: common::TestDb) {
    use entcp::groupements::documents::{generate, Kind};
    let (name, d, register, dpo) = scene(db, "commune:94034", DPO).await;
    let (app, store) = (&d.app, &d.db.store);
    let clock = std::sync::Arc::new(entcp::clock::FixedClock::new(t0()));
    let state = common::app::app_state(store.clone(), Default::default(), clock);
    let (operator, groupements) = (common::admin(), state.groupements());
    let ctx = groupements.ctx(&operator);
    let new = serde_json::from_value(serde_json::json!({
        "coordinator": "academie:24", "title": "ENT 1er degré", "object": "ENT des écoles",
        "application_deadline": "2090-06-30",
    }))
    .unwrap();
    let g = entcp::groupements::create(&ctx, new).await.unwrap();
    let (ccap, _) = generate(&ctx, &g, Kind::Ccap).await.unwrap();
    groupement_market_for_fresnes(store, &g.reference, Some(g.id.clone())).await;
    let (id, _) = contract_at(store, &register, &g.reference).await;
    let edit = format!("{register}/contrats/{id}");
    let document = format!("/groupements/{}/documents/{}", g.reference, ccap.id);
    let clauses = |html: &str| {
        let at = html.find("id=\"clauses-article-28\"").unwrap_or_else(|| panic!("{name}: the clauses: {html}"));
        html[at..at + html[at..].find("</p>").unwrap()].to_string()
    };
    let page = get(app, &dpo, &edit).await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    let said = clauses(&page.text);
    assert!(said.contains(&format!("CCAP du marché {}", g.reference)), "{name}: {said}");
    assert!(said.contains(&ccap.sha256) && said.contains(&format!("version {}", ccap.version)), "{name}: {said}");
    assert!(!said.contains("<a ") && !said.contains(&ccap.id), "{name}: no link: {said}");
    let route = get(app, &dpo, &format!("{document}?format=html")).await;
    assert_ne!(route.status, 200, "{name}: the route refuses it");

    person(store, ROOT, Role::Admin, None).await;
    let root = sign_in(app, ROOT).await;
    let said = clauses(&get(app, &root, &edit).await.text);
    assert_eq!(link(&said, &document), format!("{document}?format=html"), "{name}: {said}");
    assert_eq!(get(app, &root, &format!("{document}?format=html")).await.status, 200, "{name}: the link is read");
}

backend_test!(a_departement_s_breach_log_offers_the_college_it_processes_for_and_shows_its_48_hours);
/// Domain review 41, F3: the breach log of the département, processor of the collège's ENT, says
/// its 48 hours to notify the controller (art. 33.2) beside the CNIL's 72 and offers the collège
/// to notify; the breach consigned with it is due to the collège within 48 hours, met at once; its
/// page leaves out the CNIL's decision, and the collège's log shows the breach as notified by the
/// département, its 72 hours from then.
async fn a_departement_s_breach_log_offers_the_college_it_processes_for_and_shows_its_48_hours(db: common::TestDb) {
    let name = db.name;
    let c = crate::rgpd::college_ent(db).await;
    let (app, store) = (&c.app, &c.db.store);
    for email in [crate::rgpd::DEPARTEMENT_DPO, DPO_ACADEMIE] {
        with_password(store, email).await;
    }
    let dpo = sign_in(app, crate::rgpd::DEPARTEMENT_DPO).await;
    let breaches = format!("/rgpd/{}/violations", c.departement.id);
    let log = get(app, &dpo, &breaches).await;
    assert_eq!(log.status, 200, "{name}: {}", log.text);
    for said in [
        "Échéance de notification (responsable de traitement 48 h ; CNIL 72 h)",
        "au plus tard 48 heures après en avoir pris connaissance (article 33.2 et conventions)",
        "Responsables de traitement à notifier (article 33.2 du RGPD)",
        "Collège des Essais (0940999A)",
    ] {
        assert!(log.text.contains(&escaped(said)), "{name}: « {said} » in {}", log.text);
    }
    assert!(log.text.contains(&format!("name=\"controllers\" value=\"{}\"", c.college.id)), "{name}");

    let mut form = breach_form(
        "Notes exposées",
        "Carnet de notes lisible par tout compte",
        "2026-09-01T08:30",
        "évaluations",
        "600",
        "droits corrigés",
    )
    .to_vec();
    form.push(("controllers", c.college.id.as_str()));
    let page = follow(app, &dpo, &post_form(app, &dpo, &breaches, &form).await).await;
    let row = row_of(&page.text, "Notes exposées");
    for said in [
        "au responsable de traitement : 3 septembre 2026 à 08 h 30 (heure de Paris)",
        "responsable notifié",
        "notifiée au responsable de traitement : Collège des Essais le 1er septembre 2026 à 10 h 00",
    ] {
        assert!(row.contains(&escaped(said)), "{name}: « {said} » in {row}");
    }
    let entry = link(&page.text, &format!("{breaches}/"));
    let shown = get(app, &dpo, &entry).await;
    assert!(
        shown.text.contains(&escaped("Échéance de notification au responsable de traitement (48 h)")),
        "{name}: {}",
        shown.text
    );
    assert!(
        shown
            .text
            .contains(&escaped("Notifiée au responsable de traitement : Collège des Essais le 1er septembre 2026")),
        "{name}: {}",
        shown.text
    );
    assert!(!shown.text.contains("name=\"cnil_decision\""), "{name}: the CNIL is the collège's to notify");
    // Its measures completed from its page: the collège's side is told again.
    let mut completed = breach_form(
        "Notes exposées",
        "Carnet de notes lisible par tout compte",
        "2026-09-01T08:30",
        "évaluations",
        "600",
        "droits corrigés, familles informées",
    )
    .to_vec();
    completed.push(("version", "1"));
    assert_eq!(post_form(app, &dpo, &entry, &completed).await.status, 303, "{name}");
    let events: Vec<Value> =
        common::queued_notices(store, "breach").await.into_iter().map(|n| n.context["event"].clone()).collect();
    assert_eq!(events, [json!("reported"), json!("completed")], "{name}");

    // The collège's log, as the académie's DPO who keeps it, shows it notified by the département.
    let academie = sign_in(app, DPO_ACADEMIE).await;
    let college = format!("/rgpd/{}/violations", c.college.id);
    let theirs = get(app, &academie, &college).await;
    let row = row_of(&theirs.text, "Notes exposées");
    assert!(row.contains(&escaped("notifiée par le sous-traitant Département du Val-de-Marne")), "{name}: {row}");
    assert!(row.contains(&escaped("4 septembre 2026 à 10 h 00 (heure de Paris)")), "{name}: {row}");
    assert!(!theirs.text.contains("name=\"controllers\""), "{name}: the collège processes for nobody");
    let entry = link(&theirs.text, &format!("{college}/"));
    let shown = get(app, &academie, &entry).await;
    assert!(
        shown.text.contains(&escaped("les 72 heures de la notification à la CNIL courent depuis cette notification")),
        "{name}: {}",
        shown.text
    );
    assert!(shown.text.contains("name=\"cnil_decision\""), "{name}: its decision is its own");

    // Fifty hours later the collège's 72 hours, run from the notification, end within the day:
    // its DPO is told; the département, whose own 72 hours would end sooner, has nothing to notify.
    let later = TestApp::over(store).clock(Arc::new(FixedClock::new(t0() + chrono::Duration::hours(50)))).build().await;
    let academie = sign_in(&later, DPO_ACADEMIE).await;
    let listed = notified(&later, &academie, "violations").await;
    assert!(
        listed.contains("Notes exposées") && listed.contains("avant le 4 septembre 2026 à 10 h 00"),
        "{name}: {listed}"
    );
    let departement = sign_in(&later, crate::rgpd::DEPARTEMENT_DPO).await;
    assert_eq!(notified(&later, &departement, "violations").await, "", "{name}");
}
