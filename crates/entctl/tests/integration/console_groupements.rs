//! The console's groupement screens, in process, on both databases: a syndicat mixte
//! opens a groupement from the form (a cost key off 100 % refused, the field named),
//! three communes of the Val-de-Marne sample apply with the quantities pre-filled from
//! the registry (each figure's rule beside it), one withdraws and applies again, the
//! coordinator accepts two and refuses the third with its reason, moves the groupement
//! to the consultation, awards it with the DECP facts asked in the form, generates and
//! shares a document; each member then sees its own share per year and not the other's
//! (a forged address answers 404), and the library finds the shared document.

use crate::common;
use crate::console::{self, key_of, person, sign_in};
use crate::groupements::{communes_having_schools, registry_counts, val_de_marne_syndicat, Degree};

use common::fixtures::{luhn, new_org};
use common::{t0, Resp, TestApp, TestDb};
use entcp::documents::typography::french;
use entcp::kernel::roles::{OrgKind, Role};
use entcp::registry::Org;
use entcp::store::Store;

pub(crate) const COORD: &str = "coord@sm94.fr";
pub(crate) const MAIRIES: [&str; 3] = ["mairie.a@test.fr", "mairie.b@test.fr", "mairie.c@test.fr"];

/// The sample annuaire with a head count on every école, the coordinator (a syndicat
/// mixte without SIRET of record) and three communes having écoles, each person with
/// [`console::PASSWORD`].
pub(crate) struct Scene {
    pub(crate) coordinator: Org,
    pub(crate) communes: Vec<Org>,
}

pub(crate) async fn scene(store: &Store) -> Scene {
    common::import_sample(store).await;
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("UPDATE orgs SET pupils = 120 WHERE kind = 'etablissement'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let coordinator = val_de_marne_syndicat(store).await;
    person(store, COORD, Role::Coordinateur, Some(&coordinator.id)).await;
    let communes = communes_having_schools(store, Degree::First, 3).await;
    for (org, email) in communes.iter().zip(MAIRIES) {
        person(store, email, Role::Collectivite, Some(&org.id)).await;
    }
    Scene { coordinator, communes }
}

/// The [`scene`] in a [`TestApp`], its coordinator signed in (the session cookie).
pub(crate) async fn scene_app(db: TestDb) -> (Scene, TestApp, String) {
    let scene = scene(&db.store).await;
    let app = TestApp::builder(db).build().await;
    let coord = sign_in(&app, COORD).await;
    (scene, app, coord)
}

/// The groupement of [`creation`] (70 % by pupils) opened in its form by the coordinator's
/// session `coord`: the answer (a redirection to its page) and its reference.
pub(crate) async fn open_groupement(app: &TestApp, coord: &str, coordinator: &Org) -> (Resp, String) {
    let opened = post_form(app, coord, "/groupements/nouveau", &creation(coordinator, 70)).await;
    assert_eq!(opened.status, 303, "{}", opened.text);
    let reference = key_of(opened.header("location").unwrap(), "/groupements/");
    (opened, reference)
}

/// [`scene_app`] with a groupement the coordinator [`open_groupement`]: the scene, the app and the
/// groupement's reference.
async fn scene_with_open_groupement(db: TestDb) -> (Scene, TestApp, String) {
    let (scene, app, coord) = scene_app(db).await;
    let (_, reference) = open_groupement(&app, &coord, &scene.coordinator).await;
    (scene, app, reference)
}

/// The convention constitutive signed by every party: its signing circuit is the
/// conventions' screens' (`console_conventions`); here only its outcome matters.
pub(crate) async fn constitute(store: &Store, reference: &str) {
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query(
        "UPDATE conventions SET status = 'active' WHERE id = (SELECT convention_id FROM groupements WHERE reference = $1)",
    )
    .bind(reference)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Dates the launch of the consultation of `reference` 46 days before the tests' clock, which
/// stands still on [`t0`]: by an award notified on `t0`, the open call's délais (35 days for the
/// offers, 11 of standstill after the rejections) have run.
pub(crate) async fn launched_46_days_before_t0(store: &Store, reference: &str) {
    let launched = t0() - chrono::Duration::days(46);
    // The offers received 35 days after the launch, then 11 days of standstill.
    let deadline = t0() - chrono::Duration::days(11);
    sqlx::query("UPDATE groupements SET consultation_launched_at = $1, offers_deadline_at = $2 WHERE reference = $3")
        .bind(entcp::store::timestamp(launched))
        .bind(entcp::store::timestamp(deadline))
        .bind(reference)
        .execute(store.pool())
        .await
        .unwrap();
}

/// The award form's fields: the titulaire (not yet in the registry), the amounts, the unit
/// prices of the groupement's one lot, the DECP facts.
pub(crate) fn award_fields() -> Vec<(&'static str, String)> {
    let vendor = luhn(&format!("{}0001", luhn("30000002")));
    let buyer = luhn(&format!("{}0001", luhn("25940001")));
    [
        ("siret", vendor.as_str()),
        ("titulaire", "ENT Éditions SAS"),
        ("prix-1-compte", "4,00"),
        ("prix-1-ecole", "500"),
        ("notification", "2026-09-01"),
        ("avance-titulaire", "renonce"),
        ("acheteur", buyer.as_str()),
        ("cpv", "48190000"),
        ("techniques", "Accord-cadre"),
        ("modalites", "Bons de commande"),
        ("innovant", "non"),
        ("ccag", "Techniques de l'information et de la communication"),
        ("offres", "4"),
        ("avance", "non"),
        ("groupement-operateurs", "Pas de groupement"),
        ("sous-traitance", "non"),
        ("procedure", "Appel d'offres ouvert"),
        ("forme-prix", "Unitaire"),
        ("types-prix", "Définitif révisable"),
        ("sociales", "Pas de considération sociale"),
        ("environnementales", "Clause environnementale"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// The answer with its addresses unescaped (tera writes `/` as `&#x2F;`), so that the
/// checks on links (and on their absence) read them.
fn readable(mut resp: Resp) -> Resp {
    resp.text = resp.text.replace("&#x2F;", "/");
    resp
}

async fn get(app: &TestApp, session: &str, path: &str) -> Resp {
    readable(console::get(app, session, path).await)
}

/// Posts a form with the CSRF token of `session`'s pages.
async fn post_form(app: &TestApp, session: &str, path: &str, fields: &[(&str, String)]) -> Resp {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    readable(console::post_form(app, session, path, &fields).await)
}

/// The text of `html` outside its tags, scripts and styles holds no ordinary space before « : »
/// nor inside « guillemets »: the page is set as the documents are (U+202F).
fn no_plain_space_before_colon_nor_inside_guillemets(html: &str) {
    let mut text = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        let tag_end = rest[lt..].find('>').map_or(rest.len(), |e| lt + e + 1);
        let tag = rest[lt..tag_end].to_ascii_lowercase();
        rest = &rest[tag_end..];
        for raw in ["script", "style"] {
            if tag.starts_with(&format!("<{raw}")) {
                rest = &rest[rest.to_ascii_lowercase().find(&format!("</{raw}")).unwrap_or(rest.len())..];
            }
        }
    }
    text.push_str(rest);
    for bad in [" :", "« ", " »"] {
        let line = text.lines().find(|l| l.contains(bad));
        assert!(line.is_none(), "« {bad} » with U+0020 in: {line:?}");
    }
}

fn owned(fields: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    fields.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// The page a 303 leads to, which must be `wanted` (its path and query).
async fn follow(app: &TestApp, session: &str, resp: &Resp, wanted: &str) -> Resp {
    assert_eq!(resp.status, 303, "{}", resp.text);
    let location = resp.header("location").unwrap();
    assert!(location.starts_with(wanted), "{location}, expected {wanted}");
    let page = get(app, session, location).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page
}

/// The id of the application of `commune` on the coordinator's page.
async fn application_of(store: &Store, reference: &str, commune: &Org) -> String {
    sqlx::query_scalar(
        "SELECT m.id FROM groupement_members m JOIN groupements g ON g.id = m.groupement_id \
         WHERE g.reference = $1 AND m.org_id = $2",
    )
    .bind(reference)
    .bind(&commune.id)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// The creation form's fields, the cost key `pupils` % per pupil and the rest in equal parts.
pub(crate) fn creation(coordinator: &Org, pupils: u32) -> Vec<(&'static str, String)> {
    let mut fields = owned(&[
        ("coordonnateur", coordinator.id.as_str()),
        ("titre", "ENT 1er degré 2027-2030"),
        ("objet", "Fourniture, hébergement, maintenance et assistance d'un ENT pour les écoles des membres"),
        ("lots", "Solution d'espace numérique de travail"),
        ("bouquet", "socle-1d"),
        ("poids-egal", "30"),
        ("duree", "36"),
        ("frais-communs", "12 000"),
        ("part-coordonnateur", "10"),
        ("date-limite", "2026-10-15"),
        ("date-consultation", "2026-11-02"),
    ]);
    fields.push(("poids-eleves", pupils.to_string()));
    fields
}

backend_test!(a_groupement_runs_from_the_form_to_each_members_own_share);
async fn a_groupement_runs_from_the_form_to_each_members_own_share(db: TestDb) {
    let (scene, app, coord) = scene_app(db).await;
    let store = app.store.clone();
    let form = get(&app, &coord, "/groupements/nouveau").await;
    assert!(form.text.contains(&scene.coordinator.name) && form.text.contains("socle-1d"), "{}", form.text);

    // A cost key off 100 %: the form again, its fields kept, the error linked to the key.
    let refused = post_form(&app, &coord, "/groupements/nouveau", &creation(&scene.coordinator, 60)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    // On the key's fieldset (legend « Clé de répartition »), not on « Élèves » (RGAA 11.10).
    assert!(refused.text.contains("href=\"#cle\"") && refused.text.contains("90 %"), "{}", refused.text);
    assert!(!refused.text.contains("href=\"#poids-eleves\""), "{}", refused.text);
    assert!(refused.text.contains("id=\"cle\" aria-labelledby=\"cle-legende cle-erreur\""), "{}", refused.text);
    assert!(!refused.text.contains("aria-describedby=\"poids-eleves-erreur\""), "{}", refused.text);
    // Several errors: the summary follows the form, « Procédure » before « Valeur estimée ».
    let mut adapted = creation(&scene.coordinator, 70);
    adapted.extend(owned(&[("procedure", "Procédure adaptée"), ("valeur-estimee", "250 000")]));
    let refused = post_form(&app, &coord, "/groupements/nouveau", &adapted).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let said: Vec<String> = crate::console::summary_links(&refused.text).into_iter().map(|(_, text)| text).collect();
    let at = |label: &str| said.iter().position(|s| s.starts_with(label));
    assert!(at("Procédure de passation").unwrap() < at("Valeur estimée du besoin").unwrap(), "{said:?}");
    assert!(refused.text.contains("ENT 1er degré 2027-2030"), "the fields are kept");
    // The creation form's lots are titles only, each carrying the ENT: two of them would carry it
    // twice (one lot carries the ENT, the others have their own price lines, set through the API),
    // refused on the field, the lines typed kept.
    let mut two_lots = creation(&scene.coordinator, 70);
    two_lots.retain(|(k, _)| *k != "lots");
    two_lots.push(("lots", "Solution d'espace numérique de travail\nAssistance aux usagers".into()));
    let refused = post_form(&app, &coord, "/groupements/nouveau", &two_lots).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("href=\"#lots\"") && refused.text.contains("un seul lot"), "{}", refused.text);
    assert!(refused.text.contains("Assistance aux usagers"), "the lines typed are kept");
    let (opened, reference) = open_groupement(&app, &coord, &scene.coordinator).await;
    let page = follow(&app, &coord, &opened, "/groupements/GC-").await;
    assert!(page.text.contains("Le groupement est ouvert aux adhésions."), "{}", page.text);
    // Set as the documents are: no-break spaces before « : » and « % » (domain review 42, F9).
    assert!(
        page.text.contains(&french("Lot 1 : Solution"))
            && page.text.contains("d&#x27;espace numérique de travail")
            && page.text.contains(&french("70 %")),
        "{}",
        page.text
    );
    no_plain_space_before_colon_nor_inside_guillemets(&page.text);
    let path = format!("/groupements/{reference}");

    // A commune finds it among the open ones; each applies with the registry's figures.
    let mut mairies = Vec::new();
    for (i, (commune, email)) in scene.communes.iter().zip(MAIRIES).enumerate() {
        let session = sign_in(&app, email).await;
        let open = get(&app, &session, "/groupements?statut=open").await;
        assert!(open.text.contains(&reference), "{}", open.text);
        let form = get(&app, &session, &format!("{path}/candidature")).await;
        assert_eq!(form.status, 200, "{}", form.text);
        let (schools, pupils) = registry_counts(&store, commune).await;
        assert!(schools > 0);
        assert!(form.text.contains(&format!("id=\"ecoles\" name=\"ecoles\" value=\"{schools}\"")), "{}", form.text);
        assert!(form.text.contains(&format!("id=\"eleves\" name=\"eleves\" value=\"{pupils}\"")), "{}", form.text);
        assert!(form.text.contains("selon le répertoire") && form.text.contains("Somme des effectifs"), "the rules");
        if i == 0 {
            let undated = owned(&[("deliberation", "2026-DCM-0"), ("classes", "-3")]);
            let refused = post_form(&app, &session, &format!("{path}/candidature"), &undated).await;
            assert_eq!(refused.status, 422, "{}", refused.text);
            let said: Vec<String> =
                crate::console::summary_links(&refused.text).into_iter().map(|(_, text)| text).collect();
            assert!(said.iter().any(|s| s.starts_with("Date de la délibération : ")), "named: {said:?}");
        }
        let number = format!("2026-DCM-{i}");
        let sent = post_form(
            &app,
            &session,
            &format!("{path}/candidature"),
            &owned(&[("deliberation", number.as_str()), ("date-deliberation", "2026-09-01")]),
        )
        .await;
        let page = follow(&app, &session, &sent, &format!("{path}?apres=candidature")).await;
        assert!(page.text.contains(&number) && page.text.contains("candidature déposée"), "{}", page.text);
        mairies.push(session);
    }

    // The third withdraws, then applies again (its application edited before the deadline).
    let third = application_of(&store, &reference, &scene.communes[2]).await;
    let withdrawn = post_form(&app, &mairies[2], &format!("{path}/candidatures/{third}/retrait"), &[]).await;
    let page = follow(&app, &mairies[2], &withdrawn, &format!("{path}?apres=retrait")).await;
    assert!(page.text.contains("retirée"), "{}", page.text);
    let again = owned(&[("deliberation", "2026-DCM-2bis"), ("date-deliberation", "2026-09-01"), ("classes", "12")]);
    let sent = post_form(&app, &mairies[2], &format!("{path}/candidature"), &again).await;
    assert!(follow(&app, &mairies[2], &sent, path.as_str()).await.text.contains("2026-DCM-2bis"));
    // Another commune's application cannot be withdrawn by a forged form.
    let first = application_of(&store, &reference, &scene.communes[0]).await;
    let forged = post_form(&app, &mairies[2], &format!("{path}/candidatures/{first}/retrait"), &[]).await;
    assert_eq!(forged.status, 404, "{}", forged.text);

    // The coordinator refuses the third: without a reason, the row's field says so. Ticked with
    // the second (its reason typed), it is all or nothing: the second is not refused either.
    let ids = application_ids(&store, &reference, &scene.communes).await;
    let refuse = vec![("candidatures", ids[2].clone()), ("decision", "refuser".to_string())];
    let second_reason = format!("motif-{}", ids[1]);
    let mut both = refuse.clone();
    both.push(("candidatures", ids[1].clone()));
    both.push((second_reason.as_str(), "Délibération illisible".to_string()));
    let refused = post_form(&app, &coord, &format!("{path}/decisions"), &both).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains(&format!("href=\"#motif-{}\"", ids[2])), "{}", refused.text);
    for ticked in [&ids[1], &ids[2]] {
        let kept = format!("id=\"choix-{ticked}\" name=\"candidatures\" value=\"{ticked}\" checked");
        assert!(refused.text.contains(&kept), "the ticked boxes stay ticked: {}", refused.text);
    }
    let statuses: Vec<String> = sqlx::query_scalar(
        "SELECT m.status FROM groupement_members m JOIN groupements g ON g.id = m.groupement_id \
         WHERE g.reference = $1 ORDER BY m.status",
    )
    .bind(&reference)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(statuses, ["applied", "applied", "applied"], "nothing refused");
    let refused = post_form(&app, &coord, &format!("{path}/decisions"), &refuse).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let reason_field = format!("motif-{}", ids[2]);
    let mut with_reason: Vec<(&str, String)> = refuse.clone();
    with_reason.push((reason_field.as_str(), "Hors du périmètre du syndicat".to_string()));
    let sent = post_form(&app, &coord, &format!("{path}/decisions"), &with_reason).await;
    follow(&app, &coord, &sent, &format!("{path}?apres=refusees")).await;
    let accept =
        vec![("candidatures", ids[0].clone()), ("candidatures", ids[1].clone()), ("decision", "accepter".to_string())];
    let sent = post_form(&app, &coord, &format!("{path}/decisions"), &accept).await;
    let page = follow(&app, &coord, &sent, &format!("{path}?apres=acceptees")).await;
    assert!(page.text.contains("<dd id=\"nombre-membres\">2</dd>"), "{}", page.text);
    // Domain review 39, G7: counts read as the documents print them (« 4 510 »), never « 4510 ».
    let cells: Vec<&str> = page.text.split("<td>").skip(1).filter_map(|c| c.split("</td>").next()).collect();
    let bare = cells.iter().find(|c| c.len() >= 4 && c.chars().all(|ch| ch.is_ascii_digit()));
    assert_eq!(bare, None, "{}", page.text);
    let refused_page = get(&app, &mairies[2], &path).await;
    assert!(
        refused_page.text.contains("refusée") && refused_page.text.contains("Hors du périmètre"),
        "{}",
        refused_page.text
    );

    // Constituted, consulted, awarded through the form (an award without its facts is refused).
    constitute(&store, &reference).await;
    let sent = post_form(&app, &coord, &format!("{path}/statut"), &owned(&[("vers", "closed")])).await;
    let closed = follow(&app, &coord, &sent, &format!("{path}?apres=statut")).await;
    assert!(
        closed.text.contains("<label class=\"fr-label\" for=\"date-limite-offres\">Date et heure limites de réception des offres (heure de Paris)")
            && closed.text.contains("type=\"datetime-local\" id=\"date-limite-offres\""),
        "{}",
        closed.text
    );
    // Launched without its offers deadline, or one inside the open call's 30 full days: refused,
    // the error at the field and the value typed kept.
    let launch = |deadline: &str| owned(&[("vers", "consultation"), ("date-limite-offres", deadline)]);
    let missing = post_form(&app, &coord, &format!("{path}/statut"), &launch("")).await;
    assert_eq!(missing.status, 422, "{}", missing.text);
    assert!(
        missing.text.contains("href=\"#date-limite-offres\"")
            && missing.text.contains("id=\"date-limite-offres-erreur\""),
        "{}",
        missing.text
    );
    let early = post_form(&app, &coord, &format!("{path}/statut"), &launch("2026-09-20T12:00")).await;
    assert_eq!(early.status, 422, "{}", early.text);
    assert!(
        early.text.contains("value=\"2026-09-20T12:00\"") && early.text.contains("le 2 octobre 2026 au plus tôt"),
        "{}",
        early.text
    );
    let sent = post_form(&app, &coord, &format!("{path}/statut"), &launch("2026-10-06T12:00")).await;
    let launched = follow(&app, &coord, &sent, &format!("{path}?apres=statut")).await;
    assert!(launched.text.contains(&french("jusqu'au 6 octobre 2026 à 12 h 00 (heure de Paris)")), "{}", launched.text);
    assert!(
        launched.text.contains("id=\"avance-titulaire-renonce\"")
            && launched.text.contains("id=\"avance-titulaire-ne-renonce-pas\""),
        "{}",
        launched.text
    );
    let incomplete = post_form(&app, &coord, &format!("{path}/attribution"), &owned(&[("cpv", "48190000")])).await;
    assert_eq!(incomplete.status, 422, "{}", incomplete.text);
    assert!(incomplete.text.contains("href=\"#siret\"") && incomplete.text.contains("value=\"48190000\""));
    assert!(
        incomplete.text.contains("href=\"#avance-titulaire\""),
        "the avance choice is required: {}",
        incomplete.text
    );
    let said: Vec<String> = crate::console::summary_links(&incomplete.text).into_iter().map(|(_, text)| text).collect();
    assert!(
        said.iter().any(|s| s.starts_with(&french("Date de notification du marché : "))),
        "each link names its field: {said:?}"
    );
    // Notified the day of the launch: the open call's délais have not run (the form says until when).
    let same_day = post_form(&app, &coord, &format!("{path}/attribution"), &award_fields()).await;
    assert_eq!(same_day.status, 422, "{}", same_day.text);
    let said: Vec<String> = crate::console::summary_links(&same_day.text).into_iter().map(|(_, text)| text).collect();
    assert!(
        said.iter().any(|s| s.contains("ne peut pas être notifié avant le 17 octobre 2026") && s.contains("R. 2182-1")),
        "{said:?}"
    );
    launched_46_days_before_t0(&store, &reference).await;
    let sent = post_form(&app, &coord, &format!("{path}/attribution"), &award_fields()).await;
    let page = follow(&app, &coord, &sent, &format!("{path}?apres=attribue")).await;
    let awarded = entcp::groupements::must_get(&store, &reference).await.unwrap().award.unwrap();
    let ttc = entcp::groupements::costs::euros(awarded.amount_ttc_cents);
    assert!(page.text.contains("ENT Éditions SAS") && page.text.contains(&ttc), "{ttc}: {}", page.text);
    assert!(page.text.contains("le titulaire a renoncé au bénéfice de l&#x27;avance"), "{}", page.text);
    assert_eq!(awarded.advance_renounced, Some(true));
    let (a, b, c) = (&scene.communes[0], &scene.communes[1], &scene.communes[2]);
    assert!(page.text.contains(&a.name) && page.text.contains(&b.name) && page.text.contains("Année 3"));
    assert!(page.text.contains("Dépenses communes du groupement (procédure, gestion)"), "{}", page.text);
    assert!(page.text.contains("Année 3 (dépenses communes)") && !page.text.contains("rais communs"), "{}", page.text);

    // Each member sees its own share per year, never the other's; a forged address is a 404.
    for (session, own, other) in [(&mairies[0], a, b), (&mairies[1], b, a)] {
        let page = get(&app, session, &path).await;
        assert!(page.text.contains("Votre quote-part") && page.text.contains(&own.name), "{}", page.text);
        assert!(!page.text.contains(&format!("quotes-parts/{}", other.id)), "{}", page.text);
        let mine = get(&app, session, &format!("{path}/quotes-parts/{}", own.id)).await;
        assert_eq!(mine.status, 200, "{}", mine.text);
        assert!(mine.text.contains("Année 3") && mine.text.contains(&own.name), "{}", mine.text);
        // Its part of the members' 10,800 € of common expenses, and its own orders apart.
        assert!(mine.text.contains("sur 10\u{a0}800,00\u{a0}€ répartis entre les membres"), "{}", mine.text);
        // Domain review 40, G7: the convention's term (its article 6), never « frais communs ».
        assert!(mine.text.contains("Quote-part des dépenses communes"), "{}", mine.text);
        assert!(!mine.text.to_lowercase().contains("frais communs"), "{}", mine.text);
        assert!(
            mine.text.contains("Ses propres commandes") && !mine.text.contains("id=\"commandes\">0,00"),
            "{}",
            mine.text
        );
        let theirs = get(&app, session, &format!("{path}/quotes-parts/{}", other.id)).await;
        assert_eq!(theirs.status, 404, "{}", theirs.text);
        assert!(!theirs.text.contains(&other.name), "{}", theirs.text);
    }
    // Domain review 38, G10: a member reaches the convention constitutive it signed and the DECP
    // published in its name; the refused commune, which reads the groupement, neither.
    let constitutive: String = sqlx::query_scalar(
        "SELECT c.reference FROM conventions c JOIN groupements g ON g.convention_id = c.id WHERE g.reference = $1",
    )
    .bind(&reference)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let member_page = get(&app, &mairies[0], &path).await;
    let link = format!(
        "<a href=\"/conventions/{constitutive}\">{constitutive}</a> (en vigueur, jusqu&#x27;au 1er novembre 2030)"
    );
    assert!(member_page.text.contains(&link), "{link}: {}", member_page.text);
    let decp_link = format!("href=\"{path}/decp\"");
    assert!(!member_page.text.contains(&decp_link), "not before the coordinator publishes them");
    assert_eq!(get(&app, &mairies[0], &format!("{path}/decp")).await.status, 409);
    // Attack review 39, F4: the coordinator's GET does not publish (a cross-site link could
    // forge it); its form does, and only its own.
    let coordinator_page = get(&app, &coord, &path).await;
    let publish_form = format!("action=\"{path}/decp/publication\"");
    assert!(!coordinator_page.text.contains(&decp_link) && coordinator_page.text.contains(&publish_form));
    let early = get(&app, &coord, &format!("{path}/decp")).await;
    assert_eq!(early.status, 409, "{}", early.text);
    assert_eq!(get(&app, &mairies[0], &format!("{path}/decp")).await.status, 409, "a GET published them");
    assert!(!get(&app, &mairies[0], &path).await.text.contains(&publish_form), "a member does not publish");
    let refused = post_form(&app, &mairies[0], &format!("{path}/decp/publication"), &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let published = post_form(&app, &coord, &format!("{path}/decp/publication"), &[]).await;
    assert_eq!(published.status, 303, "{}", published.text);
    let coordinator_page = get(&app, &coord, &path).await;
    assert!(coordinator_page.text.contains(&decp_link) && !coordinator_page.text.contains(&publish_form));
    assert_eq!(get(&app, &coord, &format!("{path}/decp")).await.status, 200, "published");
    let member_page = get(&app, &mairies[0], &path).await;
    assert!(member_page.text.contains(&decp_link), "{}", member_page.text);
    let decp = get(&app, &mairies[0], &format!("{path}/decp")).await;
    assert_eq!(decp.status, 200, "{}", decp.text);
    let record: serde_json::Value = serde_json::from_str(&decp.text).unwrap();
    assert_eq!(record["marches"]["marche"][0]["titulaires"][0]["titulaire"]["id"], awarded.vendor_siret.as_str());
    let outsider_page = get(&app, &mairies[2], &path).await;
    assert!(
        !outsider_page.text.contains(&constitutive) && !outsider_page.text.contains("/decp\""),
        "{}",
        outsider_page.text
    );
    let outsider = get(&app, &mairies[2], &format!("{path}/quotes-parts/{}", a.id)).await;
    assert_eq!(outsider.status, 403, "{}: the refused commune, who reads the groupement", c.name);
    assert!(!outsider.text.contains(&a.name), "{}", outsider.text);

    // A document generated, downloaded by a member, shared, found in the library.
    let sent = post_form(&app, &coord, &format!("{path}/documents"), &owned(&[("type", "cctp")])).await;
    let page = follow(&app, &coord, &sent, &format!("{path}?apres=document")).await;
    let doc: String = sqlx::query_scalar(
        "SELECT d.id FROM groupement_documents d JOIN groupements g ON g.id = d.groupement_id WHERE g.reference = $1",
    )
    .bind(&reference)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(page.text.contains(&format!("{path}/documents/{doc}?format=odt")), "{}", page.text);
    // Domain review 40, G6: a screen reader hears « ODT du cahier des clauses … », the title's
    // article contracted and its noun in lower case, not « de Cahier ».
    let label =
        "ODT<span class=\"fr-sr-only\"> du cahier des clauses techniques particulières (CCTP), version 1</span>";
    assert!(page.text.contains(label), "{}", page.text);
    assert!(!page.text.contains("de Cahier"), "{}", page.text);
    // PDF only where LibreOffice converts it; opened directly elsewhere, a page says so.
    let pdf_link = format!("{path}/documents/{doc}?format=pdf");
    let pdf = ent_documents::documents::pdf_available();
    assert_eq!(page.text.contains(&pdf_link), pdf, "{}: {}", c.name, page.text);
    if !pdf {
        let direct = get(&app, &mairies[0], &pdf_link).await;
        assert_eq!(direct.status, 406, "{}: {}", c.name, direct.text);
        assert!(direct.text.contains("Le PDF n&#x27;est pas disponible sur ce serveur"), "{}", direct.text);
    }
    let file = get(&app, &mairies[0], &format!("{path}/documents/{doc}?format=odt")).await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert_eq!(file.header("content-type"), Some(ent_documents::documents::ODT_MIME));
    // A non-member reads the groupement, not its documents: refused (403), as their list is.
    assert_eq!(get(&app, &mairies[2], &format!("{path}/documents/{doc}")).await.status, 403);
    let sent = post_form(&app, &coord, &format!("{path}/documents/{doc}/partage"), &owned(&[("partage", "oui")])).await;
    follow(&app, &coord, &sent, &format!("{path}?apres=partage")).await;
    let library = get(&app, &coord, "/bibliotheque?q=cahier&coordonnateur=syndicat&annee=2026").await;
    assert!(library.text.contains(&format!("{path}/documents/{doc}")), "{}", library.text);
    let elsewhere = get(&app, &coord, "/bibliotheque?annee=2019").await;
    assert!(!elsewhere.text.contains(&doc), "{}", elsewhere.text);

    // The BPU/DQE, once awarded, prints the titulaire's unit prices: refused to the library, the
    // reason shown; one shared before this rule is neither listed nor served to a DAN (a library
    // reader, neither coordinator nor member), while the coordinator still downloads it.
    let sent = post_form(&app, &coord, &format!("{path}/documents"), &owned(&[("type", "quantites")])).await;
    follow(&app, &coord, &sent, &format!("{path}?apres=document")).await;
    let bpu: String = sqlx::query_scalar(
        "SELECT d.id FROM groupement_documents d JOIN groupements g ON g.id = d.groupement_id \
         WHERE g.reference = $1 AND d.kind = 'quantites'",
    )
    .bind(&reference)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let refused =
        post_form(&app, &coord, &format!("{path}/documents/{bpu}/partage"), &owned(&[("partage", "oui")])).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("imprime les prix unitaires du titulaire"), "{}", refused.text);
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("UPDATE groupement_documents SET shared = 1 WHERE id = $1").bind(&bpu).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    person(&store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let dan = sign_in(&app, "dan@ac-creteil.fr").await;
    let library = get(&app, &dan, "/bibliotheque").await;
    assert!(library.text.contains(&doc) && !library.text.contains(&bpu), "{}", library.text);
    assert_eq!(get(&app, &dan, &format!("{path}/documents/{doc}?format=odt")).await.status, 200, "the shared CCTP");
    assert_eq!(get(&app, &dan, &format!("{path}/documents/{bpu}?format=ods")).await.status, 403, "the priced BPU");
    assert_eq!(get(&app, &coord, &format!("{path}/documents/{bpu}?format=ods")).await.status, 200, "its coordinator");
}

/// The ids of the communes' applications, in the communes' order.
async fn application_ids(store: &Store, reference: &str, communes: &[Org]) -> Vec<String> {
    let mut ids = Vec::new();
    for commune in communes {
        ids.push(application_of(store, reference, commune).await);
    }
    ids
}

backend_test!(a_commune_edits_its_application_from_a_prefilled_form_until_the_deadline);
async fn a_commune_edits_its_application_from_a_prefilled_form_until_the_deadline(db: TestDb) {
    let (scene, app, reference) = scene_with_open_groupement(db).await;
    let store = app.store.clone();
    let path = format!("/groupements/{reference}");
    let mairie = sign_in(&app, MAIRIES[0]).await;
    let other = sign_in(&app, MAIRIES[1]).await;
    let first = owned(&[("deliberation", "2026-DCM-7"), ("date-deliberation", "2026-09-01"), ("classes", "4")]);
    let sent = post_form(&app, &mairie, &format!("{path}/candidature"), &first).await;
    follow(&app, &mairie, &sent, &format!("{path}?apres=candidature")).await;
    let id = application_of(&store, &reference, &scene.communes[0]).await;
    let edit = format!("{path}/candidatures/{id}/modifier");

    // The groupement page links the form; the form shows what was recorded and its version.
    let page = get(&app, &mairie, &path).await;
    assert!(page.text.contains(&format!("href=\"{edit}\"")), "{}", page.text);
    let form = get(&app, &mairie, &edit).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains("value=\"2026-DCM-7\"") && form.text.contains("value=\"2026-09-01\""), "{}", form.text);
    assert!(form.text.contains("id=\"classes\" name=\"classes\" value=\"4\""), "{}", form.text);
    assert!(
        form.text.contains("name=\"version\" value=\"1\"") && form.text.contains("name=\"_csrf\""),
        "{}",
        form.text
    );

    // Saved at the version shown: the page says so and shows the new délibération.
    let changed = owned(&[
        ("deliberation", "2026-DCM-7 rectifiée"),
        ("date-deliberation", "2026-09-01"),
        ("classes", "6"),
        ("version", "1"),
    ]);
    let sent = post_form(&app, &mairie, &edit, &changed).await;
    let page = follow(&app, &mairie, &sent, &format!("{path}?apres=modification")).await;
    assert!(page.text.contains("Votre candidature est modifiée.") && page.text.contains("2026-DCM-7 rectifiée"));
    let classes: i64 = sqlx::query_scalar("SELECT classes FROM groupement_members WHERE id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(classes, 6);

    // The same form posted again (version 1, now stale): a French message, the typing kept, nothing lost.
    let mut stale = changed.clone();
    stale[2] = ("classes", "9".to_string());
    let refused = post_form(&app, &mairie, &edit, &stale).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("modifiée par quelqu"), "{}", refused.text);
    assert!(refused.text.contains("id=\"classes\" name=\"classes\" value=\"9\""), "{}", refused.text);
    assert!(refused.text.contains("name=\"version\" value=\"2\""), "{}", refused.text);
    let classes: i64 = sqlx::query_scalar("SELECT classes FROM groupement_members WHERE id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(classes, 6, "the stale form changed nothing");

    // Another commune neither sees nor edits it.
    assert_eq!(get(&app, &other, &edit).await.status, 404);
    let forged = post_form(&app, &other, &edit, &owned(&[("deliberation", "X"), ("version", "2")])).await;
    assert_eq!(forged.status, 404, "{}", forged.text);

    // Before the deadline, another commune is offered « Candidater » among the open groupements.
    let page = get(&app, &other, &path).await;
    assert!(page.text.contains(&format!("href=\"{path}/candidature\"")), "{}", page.text);
    assert!(get(&app, &other, "/groupements?statut=open").await.text.contains(&reference));

    // After the deadline the link is gone and the form is refused in French.
    app.clock.set(t0() + chrono::Duration::days(60));
    let mairie = sign_in(&app, MAIRIES[0]).await;
    let page = get(&app, &mairie, &path).await;
    assert!(!page.text.contains(&format!("href=\"{edit}\"")), "{}", page.text);
    // Nor is « Candidater » offered to the commune that has not applied, nor the groupement
    // listed among those open to applications; its form page says the deadline has passed.
    let other = sign_in(&app, MAIRIES[1]).await;
    let page = get(&app, &other, &path).await;
    assert!(!page.text.contains(&format!("href=\"{path}/candidature\"")), "{}", page.text);
    assert!(!get(&app, &other, "/groupements?statut=open").await.text.contains(&reference));
    let form = get(&app, &other, &format!("{path}/candidature")).await;
    assert!(form.text.contains("date limite des adhésions") && form.text.contains("adhesions-closes"), "{}", form.text);
    assert!(!form.text.contains("deposer-candidature"), "{}", form.text);
    let late = post_form(
        &app,
        &mairie,
        &edit,
        &owned(&[("deliberation", "X"), ("date-deliberation", "2026-09-01"), ("version", "2")]),
    )
    .await;
    assert_eq!(late.status, 409, "{}", late.text);
    assert!(late.text.contains("date limite"), "{}", late.text);
}

backend_test!(an_epci_agent_is_offered_no_form_in_a_member_communes_name_and_is_refused_one);
/// The agent of an EPCI whose member commune applied sees its application (in its scope) but
/// is offered neither « Modifier » nor « Retirer », and a forged form (application, edit,
/// withdrawal in the commune's name) is refused (403), nothing changed; the commune's own
/// agent is offered both.
async fn an_epci_agent_is_offered_no_form_in_a_member_communes_name_and_is_refused_one(db: TestDb) {
    let (scene, app, coord) = scene_app(db).await;
    let store = app.store.clone();
    let commune = &scene.communes[0];
    let epci = new_org(&store, OrgKind::Epci, "Communauté d'agglomération", &luhn("24940009"), Some("94")).await;
    entcp::registry::manage::set_member(&store, &common::admin(), &epci, commune, true, t0()).await.unwrap();
    person(&store, "agent@ca94.fr", Role::Collectivite, Some(&epci.id)).await;
    let (_, reference) = open_groupement(&app, &coord, &scene.coordinator).await;
    let path = format!("/groupements/{reference}");
    let agent = sign_in(&app, "agent@ca94.fr").await;
    let mairie = sign_in(&app, MAIRIES[0]).await;
    let application = owned(&[
        ("candidat", commune.id.as_str()),
        ("deliberation", "2026-DCM-7"),
        ("date-deliberation", "2026-09-01"),
    ]);

    // The EPCI's agent files nothing in the commune's name.
    let refused = post_form(&app, &agent, &format!("{path}/candidature"), &application).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("délibération"), "{}", refused.text);
    let none = common::count(&store, "SELECT COUNT(*) FROM groupement_members WHERE org_id = $1", &[&commune.id]).await;
    assert_eq!(none, 0);

    // The commune applies; its agent is offered the forms, the EPCI's is not.
    let sent = post_form(&app, &mairie, &format!("{path}/candidature"), &application).await;
    follow(&app, &mairie, &sent, &format!("{path}?apres=candidature")).await;
    let id = application_of(&store, &reference, commune).await;
    let (edit, withdraw) = (format!("{path}/candidatures/{id}/modifier"), format!("{path}/candidatures/{id}/retrait"));
    let own = get(&app, &mairie, &path).await;
    assert!(own.text.contains(&edit) && own.text.contains(&withdraw), "{}", own.text);
    let seen = get(&app, &agent, &path).await;
    assert!(seen.text.contains("2026-DCM-7"), "the EPCI's agent sees it: {}", seen.text);
    assert!(!seen.text.contains(&edit) && !seen.text.contains(&withdraw), "{}", seen.text);

    // Forged forms: refused, nothing changed.
    assert_eq!(get(&app, &agent, &edit).await.status, 403);
    let changed = owned(&[("deliberation", "X"), ("date-deliberation", "2026-09-01"), ("version", "1")]);
    assert_eq!(post_form(&app, &agent, &edit, &changed).await.status, 403);
    assert_eq!(post_form(&app, &agent, &withdraw, &[]).await.status, 403);
    let (status, number): (String, String) =
        sqlx::query_as("SELECT status, deliberation_number FROM groupement_members WHERE id = $1")
            .bind(&id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), number.as_str()), ("applied", "2026-DCM-7"));
}

backend_test!(a_secretary_of_two_communes_chooses_which_one_applies);
/// A secrétaire de mairie serving two communes (a `collectivite` role at each) is offered a
/// chooser of the two on the application form; picking the second prefills and files for it.
async fn a_secretary_of_two_communes_chooses_which_one_applies(db: TestDb) {
    let (scene, app, reference) = scene_with_open_groupement(db).await;
    let store = app.store.clone();
    let path = format!("/groupements/{reference}");
    let (first, second) = (&scene.communes[0], &scene.communes[1]);
    let email = "secretariat@test.fr";
    person(&store, email, Role::Collectivite, Some(&first.id)).await;
    let user: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(store.pool()).await.unwrap();
    let role = entcp::identity::UserRole::new(&user, Role::Collectivite, Some(second));
    entcp::identity::grant(&store, &common::admin(), role, t0()).await.unwrap();
    let session = sign_in(&app, email).await;

    let form = get(&app, &session, &format!("{path}/candidature")).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains("<select class=\"fr-select\" id=\"candidat\" name=\"candidat\""), "{}", form.text);
    let names =
        |text: &str| (text.contains(&console::escaped(&first.name)), text.contains(&console::escaped(&second.name)));
    assert_eq!(names(&form.text), (true, true), "{}", form.text);
    // The form is filed for one of them (its hidden field); the chooser switches to the other.
    let (shown, other) = if form.text.contains(&format!("name=\"candidat\" value=\"{}\"", first.id)) {
        (first, second)
    } else {
        (second, first)
    };
    assert!(form.text.contains(&format!("name=\"candidat\" value=\"{}\"", shown.id)), "{}", form.text);
    let chosen = get(&app, &session, &format!("{path}/candidature?candidat={}", other.id)).await;
    assert!(chosen.text.contains(&format!("name=\"candidat\" value=\"{}\"", other.id)), "{}", chosen.text);
    assert!(chosen.text.contains(&format!("<option value=\"{}\" selected>", other.id)), "{}", chosen.text);
    let (schools, _) = registry_counts(&store, other).await;
    assert!(chosen.text.contains(&format!("id=\"ecoles\" name=\"ecoles\" value=\"{schools}\"")), "{}", chosen.text);
    let application =
        owned(&[("candidat", other.id.as_str()), ("deliberation", "2026-DCM-21"), ("date-deliberation", "2026-09-01")]);
    let sent = post_form(&app, &session, &format!("{path}/candidature"), &application).await;
    follow(&app, &session, &sent, &format!("{path}?apres=candidature")).await;
    let applicants: Vec<String> = sqlx::query_scalar(
        "SELECT m.org_id FROM groupement_members m JOIN groupements g ON g.id = m.groupement_id WHERE g.reference = $1",
    )
    .bind(&reference)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!((applicants.len(), applicants.first()), (1, Some(&other.id)));
}

// Under a key of 70 % per pupil, a member declaring no pupil: before generating a document,
// the coordinator's page warns that this part is split equally; the member's page does not.
backend_test!(the_coordinator_is_warned_before_generating_when_no_member_declares_pupils);
async fn the_coordinator_is_warned_before_generating_when_no_member_declares_pupils(db: TestDb) {
    let (scene, app, coord) = scene_app(db).await;
    let store = app.store.clone();
    let (_, reference) = open_groupement(&app, &coord, &scene.coordinator).await;
    let path = format!("/groupements/{reference}");
    let mairie = sign_in(&app, MAIRIES[0]).await;
    let fields = owned(&[("deliberation", "2026-DCM-8"), ("date-deliberation", "2026-09-01"), ("eleves", "0")]);
    let sent = post_form(&app, &mairie, &format!("{path}/candidature"), &fields).await;
    follow(&app, &mairie, &sent, &format!("{path}?apres=candidature")).await;
    let page = get(&app, &coord, &path).await;
    assert!(!page.text.contains("cle-repartition-alerte"), "no member yet: {}", page.text);
    let id = application_of(&store, &reference, &scene.communes[0]).await;
    let accept = vec![("candidatures", id), ("decision", "accepter".to_string())];
    let sent = post_form(&app, &coord, &format!("{path}/decisions"), &accept).await;
    let page = follow(&app, &coord, &sent, &format!("{path}?apres=acceptees")).await;
    assert!(page.text.contains("id=\"cle-repartition-alerte\""), "{}", page.text);
    assert!(page.text.contains(&french("Aucun élève déclaré par les membres : les 70 %")), "{}", page.text);
    let own = get(&app, &mairie, &path).await;
    assert!(!own.text.contains("cle-repartition-alerte"), "{}", own.text);
}

// RGAA 11.10: the form refused names every error in one round, the coordinator's (a commune
// cannot coordinate) with the others', each after its field's label; « Coordonnateur » and
// « Lots » say they are required.
backend_test!(an_empty_groupement_form_names_every_error_in_one_round);
async fn an_empty_groupement_form_names_every_error_in_one_round(db: TestDb) {
    let (scene, app, _) = scene_app(db).await;
    let name = app.backend;
    person(&app.store, "root@plateforme.fr", Role::Admin, None).await;
    let root = sign_in(&app, "root@plateforme.fr").await;
    let form = get(&app, &root, "/groupements/nouveau").await;
    assert!(form.text.contains("Coordonnateur (obligatoire)") && form.text.contains("Lots (obligatoire)"), "{name}");
    let commune = format!("commune:{}", scene.communes[0].code);
    let fields: Vec<(&str, String)> =
        [("coordonnateur", commune), ("lots", String::new()), ("duree", "60".into()), ("poids-comptes", "100".into())]
            .into();
    let refused = post_form(&app, &root, "/groupements/nouveau", &fields).await;
    console::assert_refusal_announced(&refused);
    let links = console::summary_links(&refused.text);
    let ids: Vec<&str> = links.iter().map(|(id, _)| id.as_str()).collect();
    for field in ["coordonnateur", "titre", "objet", "lots", "duree", "date-limite"] {
        assert!(ids.contains(&field), "{name}: {field} in the one round: {links:?}");
    }
    let said: Vec<&str> = links.iter().map(|(_, text)| text.as_str()).collect();
    assert!(said.contains(&"Intitulé : champ obligatoire"), "{name}: {said:?}");
    assert!(said.contains(&"Date limite des adhésions : date obligatoire : attendu AAAA-MM-JJ"), "{name}: {said:?}");
    assert!(!refused.text.contains("duration_justification"), "{name}: no field name of the API: {}", refused.text);
}

// G2 (domain review 38): the creation form's « Marge du maximum » (labelled, with its help): a
// figure that is no percentage from 0 to 100 brings the form back with the error linked to it and
// the other fields kept; 20 opens the groupement with it, which its page states.
backend_test!(the_creation_form_sets_the_margin_of_the_accord_cadres_maximum);
async fn the_creation_form_sets_the_margin_of_the_accord_cadres_maximum(db: TestDb) {
    let (scene, app, coord) = scene_app(db).await;
    let name = app.backend;
    let form = get(&app, &coord, "/groupements/nouveau").await;
    assert!(
        form.text.contains(
            "<label class=\"fr-label\" for=\"marge-maximum\">Marge du maximum sur les quantités déclarées (%)"
        ) && form.text.contains("le DQE reste la base du jugement des offres"),
        "{name}: {}",
        form.text
    );
    for wrong in ["120", "vingt"] {
        let mut fields = creation(&scene.coordinator, 70);
        fields.push(("marge-maximum", wrong.to_string()));
        let refused = post_form(&app, &coord, "/groupements/nouveau", &fields).await;
        assert_eq!(refused.status, 422, "{name}: {wrong}: {}", refused.text);
        let links = console::summary_links(&refused.text);
        assert!(
            links.iter().any(|(id, text)| id == "marge-maximum" && text.starts_with("Marge du maximum : ")),
            "{name}: {wrong}: {links:?}"
        );
        assert!(refused.text.contains("ENT 1er degré 2027-2030"), "{name}: the fields are kept");
    }
    let mut fields = creation(&scene.coordinator, 70);
    fields.push(("marge-maximum", "20".to_string()));
    let opened = post_form(&app, &coord, "/groupements/nouveau", &fields).await;
    let page = follow(&app, &coord, &opened, "/groupements/GC-").await;
    assert!(page.text.contains(&french("quantités déclarées majorées de 20 %")), "{name}: {}", page.text);
    let reference = key_of(opened.header("location").unwrap(), "/groupements/");
    let g = entcp::groupements::must_get(&app.store, &reference).await.unwrap();
    assert_eq!(g.terms.maximum_margin_percent, 20, "{name}");
}

/// A groupement the coordinator opened from the form, the first commune applied and accepted,
/// its convention constituted and its consultation launched on the tests' day (1 September
/// 2026), the offers received until 6 October at noon: the app, the coordinator's and the
/// member's sessions and the groupement's page.
async fn consultation_launched(db: TestDb) -> (TestApp, String, String, String) {
    let (scene, app, coord) = scene_app(db).await;
    let (_, reference) = open_groupement(&app, &coord, &scene.coordinator).await;
    let path = format!("/groupements/{reference}");
    let mairie = sign_in(&app, MAIRIES[0]).await;
    let application = owned(&[("deliberation", "2026-DCM-1"), ("date-deliberation", "2026-09-01")]);
    let sent = post_form(&app, &mairie, &format!("{path}/candidature"), &application).await;
    follow(&app, &mairie, &sent, &format!("{path}?apres=candidature")).await;
    let id = application_of(&app.store, &reference, &scene.communes[0]).await;
    let accept = vec![("candidatures", id), ("decision", "accepter".to_string())];
    let sent = post_form(&app, &coord, &format!("{path}/decisions"), &accept).await;
    follow(&app, &coord, &sent, &format!("{path}?apres=acceptees")).await;
    constitute(&app.store, &reference).await;
    let sent = post_form(&app, &coord, &format!("{path}/statut"), &owned(&[("vers", "closed")])).await;
    follow(&app, &coord, &sent, &format!("{path}?apres=statut")).await;
    let launch = owned(&[("vers", "consultation"), ("date-limite-offres", "2026-10-06T12:00")]);
    let sent = post_form(&app, &coord, &format!("{path}/statut"), &launch).await;
    follow(&app, &coord, &sent, &format!("{path}?apres=statut")).await;
    (app, coord, mairie, path)
}

/// The version of the groupement the page `text` puts in its forms.
fn form_version(text: &str) -> String {
    let start = text.find("name=\"version\" value=\"").expect("a version field") + "name=\"version\" value=\"".len();
    text[start..].split('"').next().unwrap().to_string()
}

// The coordinator declares the consultation sans suite from its page (CSRF, the version shown):
// a missing justification is refused at its field, the motif kept; a version changed meanwhile
// is said in French, the typed fields kept; done, the groupement reads « adhésions closes » with
// the declaration, which its member reads too and whose form it is never offered.
backend_test!(a_coordinator_declares_the_consultation_sans_suite_from_its_page_and_the_member_reads_why);
async fn a_coordinator_declares_the_consultation_sans_suite_from_its_page_and_the_member_reads_why(db: TestDb) {
    let (app, coord, mairie, path) = consultation_launched(db).await;
    let page = get(&app, &coord, &path).await;
    assert!(
        page.text.contains("id=\"form-sans-suite\"") && page.text.contains("id=\"sans-suite-motif-infructuosite\""),
        "{}",
        page.text
    );
    let member_page = get(&app, &mairie, &path).await;
    assert!(!member_page.text.contains("form-sans-suite"), "{}", member_page.text);
    let version = form_version(&page.text);
    let url = format!("{path}/sans-suite");

    let unjustified = owned(&[("version", &version), ("sans-suite-motif", "infructuosite")]);
    let refused = post_form(&app, &coord, &url, &unjustified).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("href=\"#sans-suite-justification\""), "{}", refused.text);
    assert!(refused.text.contains("value=\"infructuosite\" checked"), "the motif is kept: {}", refused.text);

    let typed = "Aucune offre reçue à la date limite du 6 octobre.";
    let stale = owned(&[("version", "1"), ("sans-suite-motif", "infructuosite"), ("sans-suite-justification", typed)]);
    let refused = post_form(&app, &coord, &url, &stale).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("ce groupement a été modifié par quelqu&#x27;un d&#x27;autre"), "{}", refused.text);
    assert!(refused.text.contains(typed) && form_version(&refused.text) == version, "{}", refused.text);

    let declared =
        owned(&[("version", &version), ("sans-suite-motif", "infructuosite"), ("sans-suite-justification", typed)]);
    let sent = post_form(&app, &coord, &url, &declared).await;
    let page = follow(&app, &coord, &sent, &format!("{path}?apres=sans-suite")).await;
    assert!(
        page.text.contains("La consultation est déclarée sans suite") && page.text.contains("R. 2185-2"),
        "{}",
        page.text
    );
    assert!(page.text.contains("id=\"statut-groupement\">adhésions closes<"), "{}", page.text);
    assert!(!page.text.contains("id=\"form-sans-suite\""), "declared once: {}", page.text);
    let member_page = get(&app, &mairie, &path).await;
    for needle in [
        "consultation lancée le 1er septembre 2026, déclarée sans suite le 1er septembre 2026",
        "motif : procédure infructueuse",
        typed,
    ] {
        assert!(member_page.text.contains(&french(needle)), "« {needle} »: {}", member_page.text);
    }
}

// The coordinator moves the offers deadline of its consultation from its page (CSRF, the version
// shown), by the API's rules: the reason required and a deadline inside the open call's 30 full
// days refused at their fields, the typed values kept; a version changed meanwhile said in French;
// done, audited with its reason and shown. A member is never offered the form, nor the coordinator
// once the deadline has passed.
backend_test!(a_coordinator_moves_the_offers_deadline_from_its_page_until_it_passes);
async fn a_coordinator_moves_the_offers_deadline_from_its_page_until_it_passes(db: TestDb) {
    let (app, coord, mairie, path) = consultation_launched(db).await;
    let page = get(&app, &coord, &path).await;
    assert!(page.text.contains("id=\"form-date-limite-offres\""), "{}", page.text);
    assert!(page.text.contains(&french("Actuellement le 6 octobre 2026 à 12 h 00 (heure de Paris)")), "{}", page.text);
    assert!(!get(&app, &mairie, &path).await.text.contains("form-date-limite-offres"), "not the member's");
    let version = form_version(&page.text);
    let url = format!("{path}/date-limite-offres");
    let form = |version: &str, at: &str, reason: &str| {
        owned(&[("version", version), ("nouvelle-date-limite-offres", at), ("motif-date-limite-offres", reason)])
    };

    let unexplained = post_form(&app, &coord, &url, &form(&version, "2026-10-10T12:00", "")).await;
    assert_eq!(unexplained.status, 422, "{}", unexplained.text);
    assert!(unexplained.text.contains("href=\"#motif-date-limite-offres\""), "{}", unexplained.text);
    assert!(unexplained.text.contains("value=\"2026-10-10T12:00\""), "the date is kept: {}", unexplained.text);
    let reason = "Report après une modification du CCTP.";
    let early = post_form(&app, &coord, &url, &form(&version, "2026-09-20T12:00", reason)).await;
    assert_eq!(early.status, 422, "{}", early.text);
    assert!(early.text.contains("href=\"#nouvelle-date-limite-offres\""), "{}", early.text);
    assert!(early.text.contains("le 2 octobre 2026 au plus tôt") && early.text.contains(reason), "{}", early.text);
    let stale = post_form(&app, &coord, &url, &form("1", "2026-10-10T12:00", reason)).await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(stale.text.contains("ce groupement a été modifié par quelqu&#x27;un d&#x27;autre"), "{}", stale.text);
    assert_eq!(form_version(&stale.text), version, "the newer version to post again");

    let sent = post_form(&app, &coord, &url, &form(&version, "2026-10-10T12:00", reason)).await;
    let page = follow(&app, &coord, &sent, &format!("{path}?apres=date-limite-offres")).await;
    assert!(page.text.contains("La date limite de réception des offres est modifiée"), "{}", page.text);
    assert!(page.text.contains(&french("jusqu'au 10 octobre 2026 à 12 h 00 (heure de Paris)")), "{}", page.text);
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT summary FROM audit_log WHERE action = 'groupements.offers_deadline'")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(audited[0].contains(reason) && audited[0].contains("2026-10-10T10:00:00Z"), "{audited:?}");

    // Passed, it no longer moves: the form is gone.
    let later = TestApp::over(&app.store)
        .clock(std::sync::Arc::new(entcp::clock::FixedClock::new(
            chrono::DateTime::parse_from_rfc3339("2026-10-11T08:00:00Z").unwrap().with_timezone(&chrono::Utc),
        )))
        .build()
        .await;
    let coord_later = sign_in(&later, COORD).await;
    let page = get(&later, &coord_later, &path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(!page.text.contains("form-date-limite-offres"), "{}", page.text);
}
