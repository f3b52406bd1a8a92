//! The lifecycle notices of a tenant on both backends: the reason a suspension or a withdrawal
//! requires (API, command line), recorded in the event and the audit; the `tenant` e-mail to
//! the people the tenant concerns (its organisation's collectivité and chef d'établissement, the
//! collectivité and DPO of a school's funder, and the DANs and DPOs whose scope holds it); the
//! purge due on the date stored at archiving, announced once, 30 days before it, and the purge
//! itself told, never waiting for its announcement.

use crate::common;

use common::{admin, t0, TestApp, TestDb};
use entcp::kernel::roles::Role;
use entcp::tenants::{Move, Status};
use serde_json::{json, Value};

const DAN: &str = "dan@ac-creteil.fr";
const DAN_DSDEN: &str = "dan@dsden94.fr";
const DAN_ELSEWHERE: &str = "dan@ac-versailles.fr";
const DIRECTEUR: &str = "dir@ecole.fr";
const FORMER_DIRECTEUR: &str = "ancien@ecole.fr";
const TEACHER: &str = "prof@ecole.fr";
const MAIRIE: &str = "ent@fresnes.fr";
const DPO: &str = "dpo@fresnes.fr";
const DPO_ACADEMIE: &str = "dpo@ac-creteil.fr";
const DPO_ELSEWHERE: &str = "dpo@ac-versailles.fr";

/// The sample annuaire (académie de Créteil), one école of the académie de Versailles, and the
/// people around the école Robert Doisneau (Fresnes), its commune and its académie; the former
/// directeur's account is deactivated.
async fn fresnes(db: &TestDb) -> TestApp {
    common::import_sample(&db.store).await;
    let versailles = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Code postal;\
         Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;Libelle_departement;Libelle_academie;\
         Libelle_region;Ecole_maternelle;Ecole_elementaire;SIREN_SIRET;etat\n\
         {};École Jules Ferry;Ecole;Public;92130;92040;Issy-les-Moulineaux;092;25;11;Hauts-de-Seine;Versailles;\
         Ile-de-France;0;1;;OUVERT\n",
        common::fixtures::uai("0921234")
    );
    common::fixtures::annuaire(&db.store, &versailles).await;
    let app = TestApp::over(&db.store)
        .user(DAN, Role::Dan, Some("academie:24"))
        .user(DAN_DSDEN, Role::Dan, Some("dsden:94"))
        .user(DAN_ELSEWHERE, Role::Dan, Some("academie:25"))
        .user(DIRECTEUR, Role::ChefEtablissement, Some("0940176F"))
        .user(FORMER_DIRECTEUR, Role::ChefEtablissement, Some("0940176F"))
        .user(TEACHER, Role::Usager, Some("0940176F"))
        .user(MAIRIE, Role::Collectivite, Some("commune:94034"))
        .user(DPO, Role::Dpo, Some("commune:94034"))
        .user(DPO_ACADEMIE, Role::Dpo, Some("academie:24"))
        .user(DPO_ELSEWHERE, Role::Dpo, Some("academie:25"))
        .build()
        .await;
    common::execute(&db.store, "UPDATE users SET active = 0 WHERE email = $1", &[FORMER_DIRECTEUR]).await;
    app
}

/// The state the jobs run on, over the app's store and clock.
fn state_of(app: &TestApp) -> entcp::api::AppState {
    retaining(app, 3)
}

/// [`state_of`] with `provisioning.retention_months` = `months`.
fn retaining(app: &TestApp, months: u32) -> entcp::api::AppState {
    let mut config = common::app::test_config();
    config.provisioning.retention_months = months;
    common::app::app_state(app.store.clone(), config, app.clock.clone())
}

/// Withdraws then archives `tenant` (archived at the app's clock: t0).
async fn archive(state: &entcp::api::AppState, tenant: entcp::tenants::Tenant) -> entcp::tenants::Tenant {
    let mut tenant = tenant;
    for step in [Move::to(Status::Decommissioning).because("fin du marché"), Move::to(Status::Archived)] {
        tenant = entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
    }
    tenant
}

/// The `event` of the queued `tenant` mails about `slug`, oldest first.
async fn told_events(app: &TestApp, slug: &str) -> Vec<String> {
    told(app, slug).await.iter().map(|m| m.context["event"].as_str().unwrap().to_string()).collect()
}

/// A tenant `slug` of the organisation `org`, let through the gate by an admin and active.
async fn active_tenant(state: &entcp::api::AppState, slug: &str, org: &str) -> entcp::tenants::Tenant {
    let doc = serde_json::from_value(json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
        "spec": { "organisation": org, "hostname": format!("{slug}.ent.fresnes.example.fr"), "bouquet": "socle-1d" }
    }))
    .unwrap();
    let (_, mut tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    for step in [Move::to(Status::Provisioning).overriding("rentrée"), Move::to(Status::Active)] {
        tenant = entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
    }
    tenant
}

/// The tenant's events as (kind, message), oldest first.
async fn events(app: &TestApp, slug: &str) -> Vec<(String, String)> {
    let tenant = entcp::tenants::get_tenant(&app.store, slug).await.unwrap().unwrap();
    let events = entcp::tenants::events(&app.store, &tenant.id).await.unwrap();
    events.into_iter().map(|e| (e.kind, e.message)).collect()
}

/// The recipients of a queued notice, each of whom has a mail of their own.
fn recipients(notice: &common::QueuedNotice) -> Vec<String> {
    notice.recipients.clone()
}

/// Each queued `tenant` notice about `slug`, oldest first.
async fn told(app: &TestApp, slug: &str) -> Vec<common::QueuedNotice> {
    let notices = common::queued_notices(&app.store, "tenant").await;
    notices.into_iter().filter(|n| n.context["slug"] == slug).collect()
}

backend_test!(suspending_or_withdrawing_without_a_valid_reason_is_refused_on_the_reason_and_changes_nothing);
async fn suspending_or_withdrawing_without_a_valid_reason_is_refused_on_the_reason_and_changes_nothing(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let before = active_tenant(&state, "doisneau", "0940176F").await;
    let audited = common::audited(&app.store, "tenants.transition").await;
    let long = "x".repeat(501);
    let refusals = [
        (json!({ "to": "suspended" }), "un motif est obligatoire pour passer un ENT à l'état « suspendu »"),
        (json!({ "to": "suspended", "reason": "   " }), "un motif est obligatoire"),
        (json!({ "to": "decommissioning" }), "un motif est obligatoire pour passer un ENT à l'état « en retrait »"),
        (json!({ "to": "suspended", "reason": long }), "500 caractères au plus"),
        (json!({ "to": "decommissioning", "reason": "ligne 1\nligne 2" }), "caractère de contrôle interdit"),
    ];
    for (body, words) in refusals {
        let refused = app.post("/api/v1/tenants/doisneau/transition").acting_as(DAN).json(&body).send().await;
        assert_eq!(refused.status, 422, "{}: {body}: {}", db.name, refused.text);
        assert_eq!(refused.body["errors"][0]["field"], "reason", "{}", refused.text);
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{}: {body}: {detail}", db.name);
    }
    // A bidirectional control, which the API's body check refuses first, is the domain's refusal
    // for the console and the command line.
    let reordering = Move::to(Status::Suspended).because("impayés\u{202e}2026");
    let refused = entcp::tenants::transition(&state.tenants(), &admin(), &before, reordering).await.unwrap_err();
    assert_eq!(refused.errors[0].field, "reason", "{}: {refused:?}", db.name);
    let after = entcp::tenants::get_tenant(&app.store, "doisneau").await.unwrap().unwrap();
    assert_eq!((after.status, after.version), (Status::Active, before.version), "{}", db.name);
    assert_eq!(common::audited(&app.store, "tenants.transition").await, audited, "{}", db.name);
    assert!(told(&app, "doisneau").await.is_empty(), "{}: nobody told of a refused move", db.name);

    // The command line asks for it too, and takes it with --reason.
    let (ok, said) = common::entctl(&db.url, &["tenants", "transition", "doisneau", "suspended"]);
    assert!(!ok && said.contains("un motif est obligatoire"), "{}: {said}", db.name);
    let args = ["tenants", "transition", "doisneau", "suspended", "--reason", "maintenance du serveur"];
    let (ok, said) = common::entctl(&db.url, &args);
    assert!(ok && said.contains("enttenant/doisneau suspended"), "{}: {said}", db.name);
    let last = events(&app, "doisneau").await.into_iter().rfind(|(kind, _)| kind == "suspended").unwrap();
    assert_eq!(last.1, "actif → suspendu : maintenance du serveur", "{}", db.name);
}

backend_test!(each_move_that_changes_the_service_is_told_with_its_reason_to_the_people_the_tenant_concerns);
async fn each_move_that_changes_the_service_is_told_with_its_reason_to_the_people_the_tenant_concerns(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let tenant = active_tenant(&state, "doisneau", "0940176F").await;
    assert!(told(&app, "doisneau").await.is_empty(), "{}: deploying tells nobody", db.name);

    let moves = [
        json!({ "to": "suspended", "reason": "  Maintenance du serveur  " }),
        json!({ "to": "active" }),
        json!({ "to": "decommissioning", "reason": "Fermeture de l'école" }),
        json!({ "to": "archived" }),
    ];
    for body in &moves {
        let moved = app.post("/api/v1/tenants/doisneau/transition").acting_as(DAN).json(body).send().await;
        assert_eq!(moved.status, 200, "{}: {body}: {}", db.name, moved.text);
    }

    // The reason, trimmed, in the events…
    let said: Vec<String> = events(&app, "doisneau").await.into_iter().map(|(_, message)| message).collect();
    for message in [
        "actif → suspendu : Maintenance du serveur",
        "suspendu → actif",
        "actif → en retrait : Fermeture de l'école",
        "en retrait → archivé",
    ] {
        assert!(said.iter().any(|m| m == message), "{}: {message}: {said:?}", db.name);
    }
    // … in the audit records…
    let filter = entcp::audit::AuditFilter { target_id: Some(tenant.id.clone()), ..Default::default() };
    let records = entcp::audit::list(&app.store, &filter, None).await.unwrap().items;
    let reasons: Vec<(String, Value)> = records
        .iter()
        .filter(|r| r.action == "tenants.transition")
        .map(|r| (r.summary["to"].as_str().unwrap().to_string(), r.summary["reason"].clone()))
        .collect();
    for expected in [("suspended", json!("Maintenance du serveur")), ("decommissioning", json!("Fermeture de l'école"))]
    {
        assert!(reasons.contains(&(expected.0.to_string(), expected.1.clone())), "{}: {reasons:?}", db.name);
    }
    assert!(reasons.contains(&("active".to_string(), Value::Null)), "{}: {reasons:?}", db.name);

    // … and in the mails: one notice per move, a mail of their own to each of the DANs and DPOs
    // whose scope holds the école (the académie's DPO), its active chef d'établissement and the
    // commune that pays its ENT (its collectivité and its DPO), never to a DAN or a DPO of
    // another académie, a deactivated account or a user.
    let mails = told(&app, "doisneau").await;
    let kinds: Vec<&str> = mails.iter().map(|m| m.context["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["suspended", "reactivated", "decommissioning", "archived"], "{}", db.name);
    for mail in &mails {
        let people = [DAN, DAN_DSDEN, DIRECTEUR, DPO_ACADEMIE, DPO, MAIRIE];
        assert_eq!(recipients(mail), people, "{}: {}", db.name, mail.context);
        assert_eq!(mail.context["hostname"], "doisneau.ent.fresnes.example.fr");
        assert_eq!(mail.context["organisation"], tenant.organisation.name.as_str());
        assert_eq!(mail.context["page"], "/ent/doisneau");
    }
    assert_eq!(mails[0].context["reason"], "Maintenance du serveur", "{}", db.name);
    assert!(mails[1].context.get("reason").is_none(), "{}: {}", db.name, mails[1].context);
    assert_eq!(mails[2].context["reason"], "Fermeture de l'école", "{}", db.name);
    // Archived at t0 (1 September 2026), kept three months, held 60 days at most.
    assert_eq!(mails[3].context["purge_on"], "1er décembre 2026", "{}", db.name);
    assert_eq!(mails[3].context["purge_by"], "30 janvier 2027", "{}", db.name);
    let rendered = entcp::notify::mailer::render("tenant", &mails[3].context).unwrap();
    let said = "supprimées de la plateforme entre le 1er décembre 2026 et le 30 janvier 2027";
    assert!(rendered.text.contains(said), "{}", rendered.text);
}

backend_test!(a_purge_is_announced_once_thirty_days_before_and_told_when_done_without_waiting_for_its_announcement);
async fn a_purge_is_announced_once_thirty_days_before_and_told_when_done_without_waiting_for_its_announcement(
    db: TestDb,
) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let provisioning = state.provisioning();
    let day = |n: i64| t0() + chrono::Duration::days(n);
    // A commune's tenant, archived at t0: its purge is due on 1 December 2026.
    let mut tenant = active_tenant(&state, "fresnes", "commune:94034").await;
    for step in [Move::to(Status::Decommissioning).because("fin du marché"), Move::to(Status::Archived)] {
        tenant = entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
    }
    let run = |at| entcp::provisioning::purge::purge_job(&provisioning, at);
    let planned =
        || async { told(&app, "fresnes").await.into_iter().filter(|m| m.context["event"] == "purge_planned") };

    // Sixty days after archiving, the purge is more than 30 days away: nothing said yet.
    assert_eq!(run(day(60)).await.unwrap(), "aucun tenant à purger ; aucune purge à annoncer", "{}", db.name);
    assert_eq!(planned().await.count(), 0, "{}", db.name);

    // Within 30 days of it: announced once, even by two passes at once (two replicas).
    let (first, second) = tokio::join!(
        entcp::provisioning::purge::announce_pass(&provisioning, day(62)),
        entcp::provisioning::purge::announce_pass(&provisioning, day(62))
    );
    let announced = [first.unwrap(), second.unwrap()].concat();
    assert_eq!(announced, ["fresnes"], "{}", db.name);
    assert_eq!(run(day(62)).await.unwrap(), "aucun tenant à purger ; aucune purge à annoncer", "{}", db.name);
    run(day(75)).await.unwrap();
    let mails: Vec<common::QueuedNotice> = planned().await.collect();
    assert_eq!(mails.len(), 1, "{}: announced once", db.name);
    // To the commune's collectivité and DPO, to the DAN and DPO of its académie, not elsewhere,
    // and to the active head of the école it serves, who may open the ticket that holds the
    // purge back (the others may not: the mail tells none of them to open one); so was the
    // archiving.
    let people = [DAN, DAN_DSDEN, DIRECTEUR, DPO_ACADEMIE, DPO, MAIRIE];
    assert_eq!(recipients(&mails[0]), people, "{}", db.name);
    let archived: Vec<common::QueuedNotice> =
        told(&app, "fresnes").await.into_iter().filter(|m| m.context["event"] == "archived").collect();
    assert_eq!(recipients(&archived[0]), people, "{}", db.name);
    for mail in [&mails[0], &archived[0]] {
        let rendered = entcp::notify::mailer::render("tenant", &mail.context).unwrap();
        assert!(!rendered.text.contains("ouvrez un ticket"), "{}: {}", db.name, rendered.text);
        let who =
            "un ticket de support ouvert sur cet ENT, par le chef d'un établissement qu'il sert ou par le support";
        assert!(rendered.text.contains(who), "{}: {}", db.name, rendered.text);
    }
    assert_eq!(mails[0].context["purge_on"], "1er décembre 2026", "{}", db.name);
    assert_eq!(mails[0].context["purge_by"], "30 janvier 2027", "{}", db.name);
    // Announced before its date: a copy is asked for before it.
    let rendered = entcp::notify::mailer::render("tenant", &mails[0].context).unwrap();
    let said = "seront supprimées de la plateforme entre le 1er décembre 2026 et le 30 janvier 2027, à la fin de \
                leur durée de conservation. Pour en obtenir une copie avant le 1er décembre 2026, adressez-vous à la \
                Commune de Fresnes ;";
    assert!(rendered.text.contains(said), "{}: {}", db.name, rendered.text);
    // No convention binds the commune's ENT (deployed by an override): the commune it serves
    // restitutes, named with its article; the DAN restitutes nothing.
    assert!(rendered.text.contains("au service de la Commune de Fresnes, archivé"), "{}: {}", db.name, rendered.text);
    assert!(!rendered.text.contains("DAN"), "{}: {}", db.name, rendered.text);
    assert!(!rendered.text.contains("jour de cet avis"), "{}: {}", db.name, rendered.text);
    let (kind, message) = events(&app, "fresnes").await.pop().unwrap();
    assert_eq!(kind, "purge_planned", "{}", db.name);
    let said = "purge des données prévue à partir du 1er décembre 2026, au plus tard le 30 janvier 2027";
    assert_eq!(message, said, "{}", db.name);
    assert_eq!(common::audited(&app.store, "tenants.purge_planned").await, 1, "{}", db.name);
    let shown = entcp::tenants::get_tenant(&app.store, "fresnes").await.unwrap().unwrap();
    assert!(shown.provisioning_state.purge_announced_at.is_some(), "{}", db.name);

    // The école's tenant, archived at t0 too but after those passes: first seen already due, it
    // is purged at once, its people told of the purge only.
    let mut ecole = active_tenant(&state, "doisneau", "0940176F").await;
    for step in [Move::to(Status::Decommissioning).because("fermeture"), Move::to(Status::Archived)] {
        ecole = entcp::tenants::transition(&state.tenants(), &admin(), &ecole, step).await.unwrap();
    }

    let said = run(day(92)).await.unwrap();
    assert_eq!(said, "2 tenant(s) purgé(s) : doisneau, fresnes ; aucune purge à annoncer", "{}", db.name);
    // The purge gives the attestation of destruction: the head of the école each serves is told too.
    for (slug, people) in [
        ("fresnes", vec![DAN, DAN_DSDEN, DIRECTEUR, DPO_ACADEMIE, DPO, MAIRIE]),
        ("doisneau", vec![DAN, DAN_DSDEN, DIRECTEUR, DPO_ACADEMIE, DPO, MAIRIE]),
    ] {
        let purged: Vec<common::QueuedNotice> =
            told(&app, slug).await.into_iter().filter(|m| m.context["event"] == "purged").collect();
        assert_eq!(purged.len(), 1, "{}: {slug}", db.name);
        assert_eq!(recipients(&purged[0]), people, "{}: {slug}", db.name);
        assert_eq!(purged[0].context["archived_on"], "1er septembre 2026", "{}: {slug}", db.name);
        assert!(purged[0].context.get("held_over").is_none(), "{}: {slug}: nothing held it", db.name);
    }
    let doisneau: Vec<String> =
        told(&app, "doisneau").await.iter().map(|m| m.context["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(doisneau, ["decommissioning", "archived", "purged"], "{}: no announcement first", db.name);
    let rendered = entcp::notify::mailer::render("tenant", &told(&app, "doisneau").await[2].context).unwrap();
    let said = "sont supprimées de la plateforme : archivé le 1er septembre 2026, sa durée de conservation a pris fin \
                le 1er décembre 2026. Les sauvegardes de l'hébergeur sont effacées selon leur propre durée de conservation.";
    assert!(rendered.text.contains(said), "{}", rendered.text);
    assert!(!rendered.text.contains("restaient"), "{}", rendered.text);
    assert_eq!(run(day(93)).await.unwrap(), "aucun tenant à purger ; aucune purge à annoncer", "{}", db.name);
}

backend_test!(a_held_purge_is_announced_from_today_and_a_held_tenant_hears_of_no_purge);
async fn a_held_purge_is_announced_from_today_and_a_held_tenant_hears_of_no_purge(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let provisioning = state.provisioning();
    let mut tenant = active_tenant(&state, "fresnes", "commune:94034").await;
    for step in [Move::to(Status::Decommissioning).because("fin du marché"), Move::to(Status::Archived)] {
        tenant = entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
    }
    // An RGPD request of the commune still unanswered holds the purge past its date.
    sqlx::query(
        "INSERT INTO rgpd_requests (id, reference, org_id, kind, requester, received_on, due_on, status, created_by, \
         created_at, updated_at) VALUES ('req-1', 'DEM-2026-000001', $1, 'access', 'Parent d''élève', '2026-11-20', \
         '2026-12-20', 'received', 'test', '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z')",
    )
    .bind(&tenant.organisation.id)
    .execute(app.store.pool())
    .await
    .unwrap();
    // First seen on 5 December, due but held: announced from that day, not purged, not told so.
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-05T02:30:00Z").unwrap().to_utc();
    let said = entcp::provisioning::purge::purge_job(&provisioning, at).await.unwrap();
    assert!(said.starts_with("aucun tenant à purger ; fresnes : purge différée"), "{}: {said}", db.name);
    assert!(said.ends_with("1 purge(s) annoncée(s) : fresnes"), "{}: {said}", db.name);
    let kinds: Vec<String> =
        told(&app, "fresnes").await.iter().map(|m| m.context["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["decommissioning", "archived", "purge_planned"], "{}", db.name);
    assert_eq!(told(&app, "fresnes").await[2].context["purge_on"], "5 décembre 2026", "{}", db.name);
    assert_eq!(told(&app, "fresnes").await[2].context["purge_by"], "30 janvier 2027", "{}", db.name);
    // The mail asks for no copy « avant » the day it is sent, and says the retention has ended.
    let rendered = entcp::notify::mailer::render("tenant", &told(&app, "fresnes").await[2].context).unwrap();
    let said = "Ses données peuvent être supprimées de la plateforme dès le 5 décembre 2026, jour de cet avis, et le \
                seront au plus tard le 30 janvier 2027 : leur durée de conservation a pris fin le 1er décembre 2026. \
                Pour en obtenir une copie, adressez-vous sans attendre à la Commune de Fresnes";
    assert!(rendered.text.contains(said), "{}: {}", db.name, rendered.text);
    assert!(!rendered.text.contains("avant le"), "{}: {}", db.name, rendered.text);
    assert!(!rendered.text.contains("à la fin de leur durée de conservation"), "{}: {}", db.name, rendered.text);
    assert!(rendered.html.contains("dès le 5 décembre 2026, jour de cet avis"), "{}: {}", db.name, rendered.html);
    assert!(!rendered.html.contains("avant le"), "{}: {}", db.name, rendered.html);
    assert_eq!(rendered.subject, "Purge des données à partir du 5 décembre 2026 : ENT fresnes", "{}", db.name);

    // Held 60 days past its date (1 December) at most: the day before, still held; then purged
    // over the request, and the mail says what was left open.
    let run = |days: i64| entcp::provisioning::purge::purge_job(&provisioning, t0() + chrono::Duration::days(days));
    let said = run(150).await.unwrap();
    assert!(said.starts_with("aucun tenant à purger ; fresnes : purge différée"), "{}: {said}", db.name);
    assert_eq!(run(151).await.unwrap(), "1 tenant(s) purgé(s) : fresnes ; aucune purge à annoncer", "{}", db.name);
    let purged = told(&app, "fresnes").await.pop().unwrap();
    assert_eq!(purged.context["event"], "purged", "{}", db.name);
    assert_eq!(purged.context["held_over"], "demandes RGPD de l'organisation en cours", "{}", db.name);
    let rendered = entcp::notify::mailer::render("tenant", &purged.context).unwrap();
    let said = "La purge a été faite alors que restaient : demandes RGPD de l'organisation en cours ; le report \
                de 60 jours après la fin de la conservation était écoulé.";
    assert!(rendered.text.contains(said), "{}: {}", db.name, rendered.text);
}

backend_test!(only_a_ticket_of_a_school_head_or_the_support_holds_a_purge_as_the_notices_say);
async fn only_a_ticket_of_a_school_head_or_the_support_holds_a_purge_as_the_notices_say(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let provisioning = state.provisioning();
    archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    // A teacher and the directeur of the école the archived ENT serves each open a ticket on it.
    let mut opened = Vec::new();
    for who in [TEACHER, DIRECTEUR] {
        let ticket = json!({ "tenant": "fresnes", "subject": "Copie des données", "description": "Avant la purge.",
            "category": "acces", "impact": "basse", "urgency": "basse" });
        let created = app.client(app.token(who)).post("/api/v1/support/tickets").json(&ticket).send().await;
        assert_eq!(created.status, 201, "{}: {who}: {}", db.name, created.text);
        opened.push(created.body["reference"].as_str().unwrap().to_string());
    }
    // Due on 1 December (three months): the directeur's ticket holds it.
    let run = |days: i64| entcp::provisioning::purge::purge_job(&provisioning, t0() + chrono::Duration::days(days));
    let said = run(95).await.unwrap();
    assert!(said.starts_with("aucun tenant à purger ; fresnes : purge différée"), "{}: {said}", db.name);
    let held: Vec<String> =
        events(&app, "fresnes").await.into_iter().filter(|(k, _)| k == "purge_held").map(|(_, m)| m).collect();
    assert_eq!(held.len(), 1, "{}: {held:?}", db.name);
    assert!(held[0].contains("tickets de support ouverts"), "{}: {held:?}", db.name);
    // Once it is closed, the teacher's ticket still open does not delay a legal deletion.
    common::execute(&db.store, "UPDATE support_tickets SET status = 'closed' WHERE reference = $1", &[&opened[1]])
        .await;
    assert_eq!(run(96).await.unwrap(), "1 tenant(s) purgé(s) : fresnes ; aucune purge à annoncer", "{}", db.name);
    let purged = told(&app, "fresnes").await.pop().unwrap();
    assert_eq!(purged.context["event"], "purged", "{}", db.name);
    assert!(purged.context.get("held_over").is_none(), "{}: nothing held it: {:?}", db.name, purged.context);
}

backend_test!(a_purge_keeps_the_date_its_archiving_set_whatever_the_retention_becomes);
async fn a_purge_keeps_the_date_its_archiving_set_whatever_the_retention_becomes(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let day = |n: i64| t0() + chrono::Duration::days(n);
    // Archived at t0 under a retention of three months: due on 1 December 2026, stored.
    let tenant = archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    let due = tenant.provisioning_state.purge_due_at.clone().unwrap_or_default();
    assert!(due.starts_with("2026-12-01T08:00:00"), "{}: {due}", db.name);
    let filter = entcp::audit::AuditFilter { target_id: Some(tenant.id.clone()), ..Default::default() };
    let records = entcp::audit::list(&app.store, &filter, None).await.unwrap().items;
    let archiving = records.iter().find(|r| r.action == "tenants.transition" && r.summary["to"] == "archived").unwrap();
    assert_eq!(archiving.summary["purge_due_at"], due.as_str(), "{}: the audit records the date", db.name);

    // The retention lowered to one month: neither purged nor announced before that date.
    let shorter = retaining(&app, 1).provisioning();
    let longer = retaining(&app, 6).provisioning();
    let run = |provisioning, at| entcp::provisioning::purge::purge_job(provisioning, at);
    assert_eq!(run(&shorter, day(40)).await.unwrap(), "aucun tenant à purger ; aucune purge à annoncer", "{}", db.name);
    assert_eq!(told_events(&app, "fresnes").await, ["decommissioning", "archived"], "{}", db.name);
    // Raised to six: still announced 30 days before the date stored, and purged on it.
    let said = run(&longer, day(62)).await.unwrap();
    assert_eq!(said, "aucun tenant à purger ; 1 purge(s) annoncée(s) : fresnes", "{}", db.name);
    let planned = told(&app, "fresnes").await.pop().unwrap();
    assert_eq!(
        (&planned.context["purge_on"], &planned.context["purge_by"]),
        (&json!("1er décembre 2026"), &json!("30 janvier 2027"))
    );
    assert_eq!(run(&shorter, day(90)).await.unwrap(), "aucun tenant à purger ; aucune purge à annoncer", "{}", db.name);
    let said = run(&longer, day(91)).await.unwrap();
    assert_eq!(said, "1 tenant(s) purgé(s) : fresnes ; aucune purge à annoncer", "{}", db.name);
    let (_, message) = events(&app, "fresnes").await.into_iter().rfind(|(kind, _)| kind == "purged").unwrap();
    let said = "données supprimées : archivé le 1er septembre 2026, purge prévue à partir du 1er décembre 2026 ; \
                destruction demandée, attestation délivrée une fois la suppression constatée";
    assert_eq!(message, said, "{}", db.name);
}

backend_test!(a_tenant_archived_before_its_date_was_stored_keeps_the_date_announced_to_it);
async fn a_tenant_archived_before_its_date_was_stored_keeps_the_date_announced_to_it(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let day = |n: i64| t0() + chrono::Duration::days(n);
    archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    common::execute(&app.store, "UPDATE tenants SET purge_due_at = NULL WHERE slug = 'fresnes'", &[]).await;
    let stored = || async {
        let tenant = entcp::tenants::get_tenant(&app.store, "fresnes").await.unwrap().unwrap();
        tenant.provisioning_state.purge_due_at
    };

    // Its date falls back on archiving + the retention of today (three months), and is stored
    // when announced…
    let run = |provisioning, at| entcp::provisioning::purge::purge_job(provisioning, at);
    let (today, longer) = (state.provisioning(), retaining(&app, 6).provisioning());
    let said = run(&today, day(62)).await.unwrap();
    assert_eq!(said, "aucun tenant à purger ; 1 purge(s) annoncée(s) : fresnes", "{}", db.name);
    assert_eq!(told(&app, "fresnes").await.pop().unwrap().context["purge_on"], "1er décembre 2026", "{}", db.name);
    assert!(stored().await.unwrap_or_default().starts_with("2026-12-01T08:00:00"), "{}", db.name);
    // … so that a longer retention, set after the announcement, does not push it back.
    let said = run(&longer, day(91)).await.unwrap();
    assert_eq!(said, "1 tenant(s) purgé(s) : fresnes ; aucune purge à annoncer", "{}", db.name);
}

backend_test!(a_tenant_archived_before_its_date_was_stored_and_already_due_is_announced_before_it_is_purged);
async fn a_tenant_archived_before_its_date_was_stored_and_already_due_is_announced_before_it_is_purged(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let day = |n: i64| t0() + chrono::Duration::days(n);
    archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    common::execute(&app.store, "UPDATE tenants SET purge_due_at = NULL WHERE slug = 'fresnes'", &[]).await;
    let provisioning = state.provisioning();
    let run = |at| entcp::provisioning::purge::purge_job(&provisioning, at);

    // Due on 1 December by archiving + retention, first seen by the job on 10 December: it is
    // announced, not purged, by that run…
    let said = run(day(100)).await.unwrap();
    assert_eq!(said, "aucun tenant à purger ; 1 purge(s) annoncée(s) : fresnes", "{}", db.name);
    let tenant = entcp::tenants::get_tenant(&app.store, "fresnes").await.unwrap().unwrap();
    assert_eq!(tenant.status, entcp::tenants::Status::Archived, "{}", db.name);
    let planned = told(&app, "fresnes").await.pop().unwrap();
    assert_eq!(planned.context["purge_at_once"], json!(true), "{}: {:?}", db.name, planned.context);
    // … and purged by the next one.
    let said = run(day(101)).await.unwrap();
    assert_eq!(said, "1 tenant(s) purgé(s) : fresnes ; aucune purge à annoncer", "{}", db.name);
}

backend_test!(an_announcement_leaves_the_version_an_edit_read_before_it_was_made_on);
async fn an_announcement_leaves_the_version_an_edit_read_before_it_was_made_on(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let read = archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    let day = t0() + chrono::Duration::days(62);
    let announced = entcp::provisioning::purge::announce_pass(&state.provisioning(), day).await.unwrap();
    assert_eq!(announced, ["fresnes"], "{}", db.name);
    let after = entcp::tenants::get_tenant(&app.store, "fresnes").await.unwrap().unwrap();
    assert!(after.provisioning_state.purge_announced_at.is_some(), "{}", db.name);
    assert_eq!((after.version, &after.updated_at), (read.version, &read.updated_at), "{}", db.name);

    // The DAN's edit, read before the announcement, goes through.
    let doc = json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "fresnes" },
        "spec": { "organisation": "commune:94034", "hostname": "ent.fresnes.example.fr", "bouquet": "socle-1d" }
    });
    let put = app.put("/api/v1/tenants/fresnes").acting_as(DAN).if_match(read.version).json(&doc).send().await;
    assert_eq!(put.status, 200, "{}: {}", db.name, put.text);
}

backend_test!(the_purges_to_come_are_announced_when_the_purge_pass_fails_and_the_job_says_it_failed);
async fn the_purges_to_come_are_announced_when_the_purge_pass_fails_and_the_job_says_it_failed(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    let provisioning = state.provisioning();
    let day = |n: i64| t0() + chrono::Duration::days(n);
    // The école's tenant is due on 1 December; the commune's, archived later, on 20 December.
    archive(&state, active_tenant(&state, "doisneau", "0940176F").await).await;
    archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    let later = entcp::store::timestamp(day(110));
    common::execute(&app.store, "UPDATE tenants SET purge_due_at = $1 WHERE slug = 'fresnes'", &[&later]).await;

    // The database refuses every purge: the announcements still go out, and the job fails.
    common::inject_fault(&app.store, "tenants", "UPDATE", "NEW.status = 'purged'").await;
    let failed = entcp::provisioning::purge::purge_job(&provisioning, day(91)).await.unwrap_err().to_string();
    assert!(failed.starts_with("purge en échec : "), "{}: {failed}", db.name);
    assert!(failed.ends_with(" ; 2 purge(s) annoncée(s) : doisneau, fresnes"), "{}: {failed}", db.name);
    assert_eq!(told_events(&app, "fresnes").await, ["decommissioning", "archived", "purge_planned"], "{}", db.name);
    assert_eq!(told_events(&app, "doisneau").await, ["decommissioning", "archived", "purge_planned"], "{}", db.name);

    // Once the database accepts it again, the next run purges the one due.
    common::lift_fault(&app.store, "tenants").await;
    let said = entcp::provisioning::purge::purge_job(&provisioning, day(92)).await.unwrap();
    assert_eq!(said, "1 tenant(s) purgé(s) : doisneau ; aucune purge à annoncer", "{}", db.name);
}

backend_test!(the_console_shows_the_purge_window_of_the_date_stored_at_archiving);
async fn the_console_shows_the_purge_window_of_the_date_stored_at_archiving(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    // As if archived under a longer retention than today's.
    let due = "2027-02-15T08:00:00.000000Z";
    common::execute(&app.store, "UPDATE tenants SET purge_due_at = $1 WHERE slug = 'fresnes'", &[due]).await;
    crate::console::person(&app.store, "page@ac-creteil.fr", Role::Dan, Some("academie:24")).await;
    let session = crate::console::sign_in(&app, "page@ac-creteil.fr").await;
    let said = "<dt>Purge des données</dt><dd>à partir du 15 février 2027, au plus tard le 16 avril 2027</dd>";
    crate::console::page_showing(&app, &session, "/ent/fresnes", said).await;
}

// With no retention (`retention_months` at 0) the purge is due the day of the archiving: its
// mail asked for a copy « avant » that very day. It now says the data may be purged from that
// day, and asks for a copy without waiting.
backend_test!(an_archiving_whose_purge_is_due_at_once_asks_for_no_copy_before_a_day_already_come);
async fn an_archiving_whose_purge_is_due_at_once_asks_for_no_copy_before_a_day_already_come(db: TestDb) {
    let app = fresnes(&db).await;
    let state = retaining(&app, 0);
    let tenant = active_tenant(&state, "fresnes", "commune:94034").await;
    archive(&state, tenant).await;
    let archived = told(&app, "fresnes").await.into_iter().find(|m| m.context["event"] == "archived").unwrap();
    assert_eq!(archived.context["purge_on"], "1er septembre 2026", "{}", db.name);
    let rendered = entcp::notify::mailer::render("tenant", &archived.context).unwrap();
    let said = "est archivé : ses services sont arrêtés. Ses données peuvent être supprimées de la plateforme dès le \
                1er septembre 2026, jour de cet avis, et le seront au plus tard le 31 octobre 2026 : leur durée de \
                conservation a pris fin le 1er septembre 2026. Pour en obtenir une copie, adressez-vous sans attendre";
    assert!(rendered.text.contains(said), "{}: {}", db.name, rendered.text);
    assert!(!rendered.text.contains("avant le"), "{}: {}", db.name, rendered.text);
    assert!(!rendered.html.contains("avant le"), "{}: {}", db.name, rendered.html);
    // Archived with the default retention, the mail keeps its days ahead.
    let app_state = state_of(&app);
    let other = active_tenant(&app_state, "doisneau", "0940176F").await;
    archive(&app_state, other).await;
    let archived = told(&app, "doisneau").await.into_iter().find(|m| m.context["event"] == "archived").unwrap();
    let rendered = entcp::notify::mailer::render("tenant", &archived.context).unwrap();
    assert!(rendered.text.contains("Pour en obtenir une copie avant le 1er décembre 2026"), "{}", rendered.text);
    assert!(archived.context.get("purge_at_once").is_none(), "{}: {}", db.name, archived.context);
}

// The archiving of a collège's ENT under its tripartite convention (domain review 41, F6): the
// collectivité party of the convention (the département) has the data restituted to the
// collège, as its article 9 (« Réversibilité ») says, not the DAN; the collège is named with
// its article (« au service du Collège des Essais »).
backend_test!(the_archive_notice_of_a_college_names_the_departement_that_restitutes_its_data);
async fn the_archive_notice_of_a_college_names_the_departement_that_restitutes_its_data(db: TestDb) {
    let c = crate::tenants_annex::college(&db).await;
    let reference = c.signed_convention().await;
    let created = c.cd.post("/api/v1/tenants").json(&crate::tenants_annex::doc(&[])).send().await;
    assert_eq!(created.status, 201, "{}: {}", db.name, created.text);
    for body in [
        json!({ "to": "provisioning" }),
        json!({ "to": "active" }),
        json!({ "to": "decommissioning", "reason": "changement de solution" }),
        json!({ "to": "archived" }),
    ] {
        let moved = c.dan.post("/api/v1/tenants/clg-essais/transition").json(&body).send().await;
        assert_eq!(moved.status, 200, "{}: {body}: {}", db.name, moved.text);
    }
    let archived: Vec<common::QueuedNotice> =
        told(&c.app, "clg-essais").await.into_iter().filter(|m| m.context["event"] == "archived").collect();
    let rendered = entcp::notify::mailer::render("tenant", &archived[0].context).unwrap();
    for said in [
        "L'ENT clg-essais (essais.ent.fresnes.example.fr), au service du Collège des Essais, est archivé".to_string(),
        "adressez-vous au Département du Val-de-Marne ; un ticket de support".to_string(),
        format!(
            "Le Département du Val-de-Marne, comme le prévoit l'article 9 de la convention {reference}, fait restituer \
             les données au Collège des Essais dans un format ouvert et documenté ; au terme de la restitution, \
             l'éditeur et l'hébergeur les détruisent et lui en délivrent une attestation, qu'il transmet au \
             responsable de traitement."
        ),
    ] {
        assert!(rendered.text.contains(&said), "{}: {said} in {}", db.name, rendered.text);
    }
    assert!(!rendered.text.contains("DAN"), "{}: {}", db.name, rendered.text);
    assert!(rendered.html.contains("adressez-vous au Département du Val-de-Marne&nbsp;;"), "{}", rendered.html);
    // The withdrawal, which opens the réversibilité, quotes the same article in the same words, the
    // collectivité named as the sentence's subject (domain review 43, F8).
    let withdrawn: Vec<common::QueuedNotice> =
        told(&c.app, "clg-essais").await.into_iter().filter(|m| m.context["event"] == "decommissioning").collect();
    let rendered = entcp::notify::mailer::render("tenant", &withdrawn[0].context).unwrap();
    let said = format!(
        "jusqu'à la fin de leur durée de conservation. Le Département du Val-de-Marne, comme le prévoit l'article 9 \
         de la convention {reference}, fait restituer les données au Collège des Essais dans un format ouvert et \
         documenté ;"
    );
    assert!(rendered.text.contains(&said), "{}: {said} in {}", db.name, rendered.text);
    assert!(!rendered.text.contains("elle fait restituer"), "{}: {}", db.name, rendered.text);
    assert!(!rendered.text.contains("il fait restituer"), "{}: {}", db.name, rendered.text);
    assert!(rendered.html.contains("comme le prévoit l&#x27;article 9 de la convention"), "{}", rendered.html);
}

const AUDITEUR: &str = "audit@dsden94.fr";
const ADMIN: &str = "admin@education.gouv.fr";

// The purge of an archived tenant records the attestation of destruction of its data (the
// conventions' article « Réversibilité »): in its representation and its events, as a document its
// readers download as stored (its SHA-256 that of the bytes), and in the purge's notice, which also
// goes to the heads of the schools it serves. On the manifests backend (a GitOps tool deletes the
// namespace), it is issued when the manifests are withdrawn, and says that the destruction was
// asked but its confirmation never received.
backend_test!(a_purge_records_the_attestation_of_destruction_that_its_readers_download_and_its_notice_gives);
async fn a_purge_records_the_attestation_of_destruction_that_its_readers_download_and_its_notice_gives(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    archive(&state, active_tenant(&state, "doisneau", "0940176F").await).await;
    archive(&state, active_tenant(&state, "fresnes", "commune:94034").await).await;
    // Not purged yet: no attestation, in the representation nor as a document.
    let shown = app.get("/api/v1/tenants/doisneau").acting_as(DAN).send().await;
    assert!(shown.body.get("destruction").is_none(), "{}: {}", db.name, shown.text);
    let none = app.get("/api/v1/tenants/doisneau/destruction").acting_as(DAN).send().await;
    assert_eq!(none.status, 404, "{}: {}", db.name, none.text);

    let at = t0() + chrono::Duration::days(92);
    let said = entcp::provisioning::purge::purge_job(&state.provisioning(), at).await.unwrap();
    assert_eq!(said, "2 tenant(s) purgé(s) : doisneau, fresnes ; aucune purge à annoncer", "{}", db.name);

    // Who attests, when, what was destroyed, under which reference.
    let shown = app.get("/api/v1/tenants/doisneau").acting_as(DAN).send().await;
    assert_eq!(shown.status, 200, "{}: {}", db.name, shown.text);
    let d = &shown.body["destruction"];
    assert_eq!(d["reference"], "ADD-20261202-doisneau", "{}: {d}", db.name);
    assert_eq!(d["attested_by"], "system:tenants-purge", "{}: {d}", db.name);
    assert_eq!(d["attested_at"], entcp::store::timestamp(at), "{}: {d}", db.name);
    assert_eq!(d["requested_at"], entcp::store::timestamp(at), "{}: {d}", db.name);
    assert!(d.get("destroyed_at").is_none(), "{}: the manifests backend confirms nothing: {d}", db.name);
    assert_eq!(d["namespace"], "ent-doisneau", "{}: {d}", db.name);
    let volumes: Vec<&str> = d["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert!(volumes.contains(&"espace-documentaire-data"), "{}: {d}", db.name);
    assert!(d["backups"].as_str().unwrap().contains("aucune sauvegarde"), "{}: {d}", db.name);
    assert_eq!(d["document"], "/api/v1/tenants/doisneau/destruction", "{}: {d}", db.name);
    let listed = app.get("/api/v1/tenants?status=purged").acting_as(DAN).send().await;
    let items = listed.body["items"].as_array().unwrap();
    assert!(items.iter().all(|t| t["destruction"]["reference"].is_string()), "{}: {}", db.name, listed.text);

    // The document, downloaded by a reader of the tenant (the école's head), is the one hashed.
    let document = app.get("/api/v1/tenants/doisneau/destruction").acting_as(DIRECTEUR).send().await;
    assert_eq!(document.status, 200, "{}: {}", db.name, document.text);
    assert!(document.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{}", db.name);
    let sha = entcp::documents::sha256_hex(document.text.as_bytes());
    assert_eq!(d["sha256"], sha.as_str(), "{}", db.name);
    assert_eq!(document.headers["x-document-sha256"].to_str().unwrap(), sha, "{}", db.name);
    // As the document writes it (French typography: non-breaking spaces in dates and hours;
    // apostrophes as tera escapes them). Two dates: the suppression ordered, the destruction
    // observed (here never); the restitution, the backups and who attests said plainly (domain
    // review 43, F1).
    let written = |text: &str| entcp::documents::typography::french(text).replace('\'', "&#x27;");
    for words in [
        "Attestation de destruction des données",
        "ADD-20261202-doisneau",
        "ent-doisneau",
        "tenants-purge",
        "Suppression ordonnée le",
        "2 décembre 2026 à 09 h 00",
        "Destruction constatée",
        "non, confirmation non reçue",
        "Aucune restitution n'a été consignée sur la plateforme avant la purge",
        "Durée de conservation des sauvegardes de l'hébergeur : non déclarée",
        "en relevé des opérations de la plateforme",
        "Il n'est pas l'attestation de l'hébergeur ni celle de l'éditeur",
    ] {
        let words = written(words);
        assert!(document.text.contains(&words), "{}: {words} in {}", db.name, document.text);
    }
    assert!(!document.text.contains("pour l&#x27;hébergeur et l&#x27;éditeur"), "{}: {}", db.name, document.text);
    assert!(!document.text.contains("Destruction constatée le"), "{}: {}", db.name, document.text);
    assert!(!document.text.contains("Données détruites le"), "{}: {}", db.name, document.text);
    // Issued once: a later pass over the purged tenant leaves it as it is.
    entcp::provisioning::reconcile::pass(&state.provisioning(), None, at + chrono::Duration::days(1)).await.unwrap();
    let again = app.get("/api/v1/tenants/doisneau/destruction").acting_as(DIRECTEUR).send().await;
    assert_eq!(again.text, document.text, "{}", db.name);
    // Out of scope, as for a slug that names nothing.
    let elsewhere = app.get("/api/v1/tenants/doisneau/destruction").acting_as(DAN_ELSEWHERE).send().await;
    let nothing = app.get("/api/v1/tenants/personne/destruction").acting_as(DAN_ELSEWHERE).send().await;
    assert_eq!((elsewhere.status, nothing.status), (404, 404), "{}: {}", db.name, elsewhere.text);

    // In the events, and in the purge's notice, with the link to the tenant's page.
    let (kind, message) = events(&app, "doisneau").await.pop().unwrap();
    assert_eq!(kind, "destruction_attested", "{}", db.name);
    let said = "attestation de destruction ADD-20261202-doisneau : destruction demandée le 2 décembre 2026 à 09 h 00, \
                confirmation non reçue";
    assert_eq!(message, said, "{}", db.name);
    let purged = told(&app, "doisneau").await.pop().unwrap();
    assert_eq!(purged.context["attestation"]["reference"], "ADD-20261202-doisneau", "{}", db.name);
    assert_eq!(purged.context["attestation"]["sha256"], sha.as_str(), "{}", db.name);
    assert_eq!(recipients(&purged), [DAN, DAN_DSDEN, DIRECTEUR, DPO_ACADEMIE, DPO, MAIRIE], "{}", db.name);
    let rendered = entcp::notify::mailer::render("tenant", &purged.context).unwrap();
    let said = "L'attestation de destruction des données ADD-20261202-doisneau, destinée à la Commune de Fresnes, \
                qui la transmet au responsable de traitement, est disponible sur la page de l'ENT";
    assert!(rendered.text.contains(said), "{}: {}", db.name, rendered.text);
    assert!(rendered.text.contains("/ent/doisneau"), "{}: {}", db.name, rendered.text);
    let said = "La suppression de l'espace de noms et des volumes de données de l'ENT a été demandée le 2 décembre \
                2026 à 09 h 00 à l'outil de déploiement qui les gère, dont la plateforme ne reçoit pas la confirmation";
    assert!(rendered.text.contains(said), "{}: {}", db.name, rendered.text);
}

// The console's attestation page of a purged tenant (browser-free): none before the purge (404,
// as for a tenant out of reach), then the stored document, its reference ADD-… and its SHA-256 in
// its header; the tenant's page links it, with its reference, its fingerprint and how the
// destruction stands.
backend_test!(the_console_gives_the_destruction_attestation_of_a_purged_tenant_and_none_before);
async fn the_console_gives_the_destruction_attestation_of_a_purged_tenant_and_none_before(db: TestDb) {
    let app = fresnes(&db).await;
    let state = state_of(&app);
    archive(&state, active_tenant(&state, "doisneau", "0940176F").await).await;
    crate::console::with_password(&app.store, DIRECTEUR).await;
    let session = crate::console::sign_in(&app, DIRECTEUR).await;
    let none = crate::console::get(&app, &session, "/ent/doisneau/attestation-destruction").await;
    assert_eq!(none.status, 404, "{}: {}", db.name, none.text);

    let at = t0() + chrono::Duration::days(92);
    entcp::provisioning::purge::purge_job(&state.provisioning(), at).await.unwrap();
    let page = crate::console::get(&app, &session, "/ent/doisneau/attestation-destruction").await;
    assert_eq!(page.status, 200, "{}: {}", db.name, page.text);
    assert!(page.header("content-type").unwrap().starts_with("text/html"), "{}", db.name);
    assert!(page.text.contains("ADD-20261202-doisneau"), "{}: {}", db.name, page.text);
    let sha = entcp::documents::sha256_hex(page.text.as_bytes());
    assert_eq!(page.header("x-document-sha256"), Some(sha.as_str()), "{}", db.name);
    let tenant = entcp::tenants::get_tenant(&app.store, "doisneau").await.unwrap().unwrap();
    assert_eq!(tenant.destruction.unwrap().sha256, sha, "{}: the document as stored", db.name);
    let shown = crate::console::get(&app, &session, "/ent/doisneau").await.text.replace("&#x2F;", "/");
    for said in [
        "href=\"/ent/doisneau/attestation-destruction\"",
        "ADD-20261202-doisneau",
        sha.as_str(),
        "destruction demandée le 2 décembre 2026 à 09 h 00, confirmation non reçue",
    ] {
        assert!(shown.contains(said), "{}: {said} in {shown}", db.name);
    }
    // Out of scope, as for a tenant that does not exist.
    crate::console::with_password(&app.store, DAN_ELSEWHERE).await;
    let elsewhere = crate::console::sign_in(&app, DAN_ELSEWHERE).await;
    let hidden = crate::console::get(&app, &elsewhere, "/ent/doisneau/attestation-destruction").await;
    let missing = crate::console::get(&app, &elsewhere, "/ent/personne/attestation-destruction").await;
    assert_eq!((hidden.status, missing.status), (404, 404), "{}: {}", db.name, hidden.text);
}

// A tenant's events and the author of its gate override name people by the audit log's rule: a
// reader sees an address only for its own account, one of its `users.read` scope, or as admin.
backend_test!(a_tenant_reader_sees_an_address_only_where_it_reads_the_account);
async fn a_tenant_reader_sees_an_address_only_where_it_reads_the_account(db: TestDb) {
    let mut app = fresnes(&db).await;
    app.add_user(AUDITEUR, Role::Auditeur, Some("dsden:94")).await;
    app.add_user(ADMIN, Role::Admin, None).await;
    let state = state_of(&app);
    let doc = json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "doisneau" },
        "spec": { "organisation": "0940176F", "hostname": "doisneau.ent.fresnes.example.fr", "bouquet": "socle-1d" } });
    let (_, tenant) =
        entcp::tenants::apply(&state.tenants(), &admin(), &serde_json::from_value(doc).unwrap(), None).await.unwrap();
    assert_eq!(tenant.slug, "doisneau");
    for (who, body) in [
        (ADMIN, json!({ "to": "provisioning", "override_reason": "rentrée" })),
        (DAN, json!({ "to": "active" })),
        (DAN_DSDEN, json!({ "to": "suspended", "reason": "maintenance" })),
    ] {
        let moved = app.post("/api/v1/tenants/doisneau/transition").acting_as(who).json(&body).send().await;
        assert_eq!(moved.status, 200, "{}: {body}: {}", db.name, moved.text);
    }
    let actor_of = |events: &Value, kind: &str| {
        let event = events.as_array().unwrap().iter().find(|e| e["kind"] == kind).unwrap();
        event["actor"].as_str().unwrap().to_string()
    };
    let masked = entcp::identity::MASKED;
    let (admin_name, dan, dsden) = (format!("user:{ADMIN}"), format!("user:{DAN}"), format!("user:{DAN_DSDEN}"));

    // The auditeur of the DSDEN reads the DSDEN's DAN (its scope), not the académie's DAN nor the admin.
    let events = app.get("/api/v1/tenants/doisneau/events").acting_as(AUDITEUR).send().await;
    assert_eq!(events.status, 200, "{}: {}", db.name, events.text);
    assert_eq!(actor_of(&events.body, "provisioning"), masked, "{}: {}", db.name, events.text);
    assert_eq!(actor_of(&events.body, "active"), masked, "{}: {}", db.name, events.text);
    assert_eq!(actor_of(&events.body, "suspended"), dsden, "{}: {}", db.name, events.text);
    assert!(!events.text.contains(DAN) && !events.text.contains(ADMIN), "{}: {}", db.name, events.text);
    let shown = app.get("/api/v1/tenants/doisneau").acting_as(AUDITEUR).send().await;
    assert_eq!(shown.body["gate_override"]["by"], masked, "{}: {}", db.name, shown.text);
    let listed = app.get("/api/v1/tenants").acting_as(AUDITEUR).send().await;
    assert!(!listed.text.contains(ADMIN), "{}: {}", db.name, listed.text);
    assert!(listed.text.contains(masked), "{}: {}", db.name, listed.text);

    // The académie's DAN reads its own address and the DSDEN's DAN (its scope), not the admin's.
    let events = app.get("/api/v1/tenants/doisneau/events").acting_as(DAN).send().await;
    assert_eq!(actor_of(&events.body, "active"), dan, "{}: {}", db.name, events.text);
    assert_eq!(actor_of(&events.body, "suspended"), dsden, "{}: {}", db.name, events.text);
    assert_eq!(actor_of(&events.body, "provisioning"), masked, "{}: {}", db.name, events.text);

    // An administrator reads every address.
    let shown = app.get("/api/v1/tenants/doisneau").acting_as(ADMIN).send().await;
    assert_eq!(shown.body["gate_override"]["by"], admin_name.as_str(), "{}: {}", db.name, shown.text);
    let events = app.get("/api/v1/tenants/doisneau/events").acting_as(ADMIN).send().await;
    assert_eq!(actor_of(&events.body, "active"), dan, "{}: {}", db.name, events.text);
}

// The DPOs told of a tenant's life are those who keep the registers of what it serves
// (`dpo_keeps`): the académie's DPO for a public école, not for a private one, its own controller.
backend_test!(the_academie_dpo_is_told_of_a_public_school_s_tenant_not_of_a_private_one);
async fn the_academie_dpo_is_told_of_a_public_school_s_tenant_not_of_a_private_one(db: TestDb) {
    let app = fresnes(&db).await;
    let private = common::fixtures::uai("0941999");
    let row = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Statut_public_prive;Code postal;\
         Code_commune;Nom_commune;Code_departement;Code_academie;Code_region;Libelle_departement;Libelle_academie;\
         Libelle_region;Ecole_maternelle;Ecole_elementaire;SIREN_SIRET;etat\n\
         {private};École Sainte-Marie;Ecole;Privé;94260;94034;Fresnes;094;24;11;Val-de-Marne;Créteil;\
         Ile-de-France;0;1;;OUVERT\n"
    );
    common::fixtures::annuaire(&db.store, &row).await;
    let state = state_of(&app);
    active_tenant(&state, "doisneau", "0940176F").await;
    active_tenant(&state, "sainte-marie", &private).await;
    for slug in ["doisneau", "sainte-marie"] {
        let body = json!({ "to": "suspended", "reason": "maintenance" });
        let moved = app.post(&format!("/api/v1/tenants/{slug}/transition")).acting_as(DAN).json(&body).send().await;
        assert_eq!(moved.status, 200, "{}: {slug}: {}", db.name, moved.text);
    }
    let public = recipients(&told(&app, "doisneau").await[0]);
    assert!(public.contains(&DPO_ACADEMIE.to_string()), "{}: {public:?}", db.name);
    let private = recipients(&told(&app, "sainte-marie").await[0]);
    assert!(!private.contains(&DPO_ACADEMIE.to_string()), "{}: {private:?}", db.name);
    assert!(!private.contains(&DPO_ELSEWHERE.to_string()), "{}: {private:?}", db.name);
    assert!(private.contains(&DAN.to_string()), "{}: the académie's DAN still is: {private:?}", db.name);
}
