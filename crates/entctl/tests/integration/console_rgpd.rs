//! The console's RGPD screens, in process, on both databases: on the demo data (Fresnes
//! and Vitry with their conventions, tenants active, Art. 28 contracts), the DPO of
//! Fresnes exports the register, takes a snapshot, the DAN adds a service to the
//! commune's ENT from the tenant page, and the diff shows the new activity; the
//! académie's DPO finds the incomplete fiches first with where to fill each field, a
//! fiche with its Art. 30 fields and DPIA criteria, and keeps the contacts under the
//! version check (a stale form keeps what was typed).

use crate::common;
use crate::console::{sign_in, PASSWORD};
use crate::console_tickets::{follow, get, post_form};

use common::{t0, TestApp};
use entcp::identity::password;
use entcp::kernel::roles::Role;
use entcp::store::Store;

/// The DPO of the commune of Fresnes.
pub(crate) const DPO: &str = "dpd@fresnes.fr";
/// The académie's DPO and DAN (their accounts come with the demo of `rgpd.rs`).
pub(crate) const DPO_ACADEMIE: &str = "dpd@ac-creteil.fr";
pub(crate) const DAN: &str = "dan@ac-creteil.fr";

/// The DPO of Fresnes, and [`PASSWORD`] for the three people of the screens.
pub(crate) async fn people(store: &Store) {
    common::token_for(store, DPO, Role::Dpo, Some("commune:94034")).await;
    for email in [DPO, DPO_ACADEMIE, DAN] {
        let user = entcp::identity::get_user(store, email).await.unwrap().unwrap();
        password::set_password(store, &entcp::identity::Actor::cli(), &user.id, PASSWORD, t0()).await.unwrap();
    }
}

/// The address of `key`'s register.
pub(crate) async fn register_of(store: &Store, key: &str) -> String {
    format!("/rgpd/{}", entcp::registry::resolve_org(store, key).await.unwrap().id)
}

/// `text` as tera writes it in an attribute.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('/', "&#x2F;")
}

/// The first `href` of `html` starting with `prefix`, unescaped.
fn link(html: &str, prefix: &str) -> String {
    let at = html.find(&format!("href=\"{}", escaped(prefix))).unwrap_or_else(|| panic!("a link to {prefix}: {html}"));
    html[at + 6..].split('"').next().unwrap().replace("&#x2F;", "/").replace("&amp;", "&")
}

/// Takes a snapshot from the register page's form; the notice the page shows after.
async fn take_snapshot(app: &TestApp, session: &str, register: &str) -> String {
    let taken = post_form(app, session, &format!("{register}/instantanes"), &[]).await;
    assert_eq!(taken.status, 303, "{}", taken.text);
    taken.header("location").unwrap().to_string()
}

backend_test!(a_commune_dpo_exports_the_register_and_sees_the_service_the_dan_adds_in_the_diff);
async fn a_commune_dpo_exports_the_register_and_sees_the_service_the_dan_adds_in_the_diff(db: common::TestDb) {
    let name = db.name;
    let d = crate::rgpd::demo(db).await;
    let (app, store) = (&d.app, &d.db.store);
    people(store).await;
    let register = register_of(store, "commune:94034").await;
    let dpo = sign_in(app, DPO).await;
    let home = get(app, &dpo, "/rgpd").await;
    assert_eq!(home.status, 200, "{name}: {}", home.text);
    assert!(home.text.contains(&format!("href=\"{}\"", escaped(&register))), "{name}: {}", home.text);
    let page = get(app, &dpo, &register).await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    assert!(page.text.contains("id=\"export-ods\"") && page.text.contains("Aucun instantané"), "{}", page.text);

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
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rgpd_snapshots WHERE org_id = $1")
        .bind(vitry_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
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
    let name = db.name;
    let d = crate::rgpd::demo(db).await;
    let (app, store) = (&d.app, &d.db.store);
    people(store).await;
    let register = register_of(store, "dsden:94").await;
    let dpo = sign_in(app, DPO_ACADEMIE).await;
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
