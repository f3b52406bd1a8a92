//! `entctl groupements … --as USER`, run as a binary on both backends: the user's rights only,
//! checked as the API checks them (the role, the groupement's coordinator, the applicant the
//! user speaks for; an application or an applicant out of the user's scope answered as one that
//! does not exist). Each refusal leaves everything as it was: the groupement's and the
//! application's status, no audit record, no document version, no application. The domain
//! functions refuse the same actors when called directly (the guard's backstop).

use crate::common;
use crate::groupements::{communes_having_schools, val_de_marne_syndicat, Degree};

use common::fixtures::{luhn, new_org};
use common::{admin, t0, token_for};
use entcp::clock::FixedClock;
use entcp::error::ProblemKind;
use entcp::groupements::{self as gm, documents, membership, Groupement};
use entcp::identity::Actor;
use entcp::kernel::roles::{OrgKind, Role};
use entcp::registry::Org;
use entcp::store::Store;
use serde_json::json;
use std::sync::Arc;

const COORDINATOR: &str = "coord@sm94.fr";
/// The coordinator of another groupement's coordinator (in another académie).
const OTHER_COORDINATOR: &str = "coord@sm78.fr";
const TEACHER: &str = "prof@ecole94.fr";
const DAN: &str = "dan@ac-creteil.fr";
/// An id no application has.
const UNKNOWN_APPLICATION: &str = "0190aaaa-0000-7000-8000-000000000000";

struct World {
    url: String,
    store: Store,
    state: entcp::api::AppState,
    g: Groupement,
    /// The application of `communes[0]`, awaiting its decision.
    app: String,
    /// Three communes of the sample, each with its agent `mairie{code}@test.fr` (`collectivite`).
    communes: Vec<Org>,
    /// The tokens of the users above, by e-mail.
    tokens: std::collections::HashMap<String, String>,
}

/// The sample annuaire, a groupement of the syndicat mixte of the Val-de-Marne open until 2090
/// (the command line reads the real clock), `communes[0]` an applicant, and the users.
async fn world(db: &common::TestDb) -> World {
    let store = db.store.clone();
    common::import_sample(&store).await;
    let coordinator = val_de_marne_syndicat(&store).await;
    let other =
        new_org(&store, OrgKind::SyndicatMixte, "Syndicat mixte des Yvelines", &luhn("25780001"), Some("78")).await;
    let communes = communes_having_schools(&store, Degree::Any, 3).await;
    let mut tokens = std::collections::HashMap::new();
    for org in &communes {
        tokens.insert(mairie(org), token_for(&store, &mairie(org), Role::Collectivite, Some(&org.id)).await);
    }
    let school = common::texts(&store, "SELECT id FROM orgs WHERE kind = 'etablissement' ORDER BY id LIMIT 1", &[])
        .await
        .remove(0);
    for (email, role, org) in [
        (COORDINATOR, Role::Coordinateur, coordinator.id.as_str()),
        (OTHER_COORDINATOR, Role::Coordinateur, other.id.as_str()),
        (TEACHER, Role::Usager, school.as_str()),
        (DAN, Role::Dan, "academie:24"),
    ] {
        tokens.insert(email.to_string(), token_for(&store, email, role, Some(org)).await);
    }
    let state = common::app::app_state(store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let operator = admin();
    let groupements = state.groupements();
    let ctx = groupements.ctx(&operator);
    let new = serde_json::from_value(json!({
        "coordinator": coordinator.id, "title": "ENT 1er degré", "object": "ENT des écoles",
        "application_deadline": "2090-06-30",
    }))
    .unwrap();
    let g = gm::create(&ctx, new).await.unwrap();
    let app = membership::apply(&ctx, &g, &communes[0], application(&communes[0])).await.unwrap();
    let g = gm::must_get(&store, &g.id).await.unwrap();
    World { url: db.url.clone(), store, state, g, app: app.id, communes, tokens }
}

/// The agent of the commune `org`.
fn mairie(org: &Org) -> String {
    format!("mairie{}@test.fr", org.code)
}

fn application(org: &Org) -> membership::NewApplication {
    serde_json::from_value(json!({
        "applicant": org.id, "deliberation_number": "2026-DCM-001", "deliberation_date": "2026-09-01",
    }))
    .unwrap()
}

/// Everything a refused command must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    groupement: (String, i64),
    applications: Vec<(String, String)>,
    audit: i64,
    documents: i64,
}

impl World {
    async fn snapshot(&self) -> Snapshot {
        let groupement = sqlx::query_as("SELECT status, CAST(version AS BIGINT) FROM groupements WHERE id = $1")
            .bind(&self.g.id)
            .fetch_one(self.store.pool())
            .await
            .unwrap();
        let applications =
            sqlx::query_as("SELECT org_id, status FROM groupement_members WHERE groupement_id = $1 ORDER BY org_id")
                .bind(&self.g.id)
                .fetch_all(self.store.pool())
                .await
                .unwrap();
        let audit = common::count(&self.store, "SELECT COUNT(*) FROM audit_log", &[]).await;
        let documents = common::count(
            &self.store,
            "SELECT COUNT(*) FROM groupement_documents WHERE groupement_id = $1",
            &[&self.g.id],
        )
        .await;
        Snapshot { groupement, applications, audit, documents }
    }

    /// `entctl groupements args…`, refused: what it printed.
    fn refused(&self, args: &[&str]) -> String {
        let mut all = vec!["groupements"];
        all.extend_from_slice(args);
        let (ok, out) = common::entctl(&self.url, &all);
        assert!(!ok, "entctl {all:?} was not refused: {out}");
        out
    }

    /// `entctl groupements args…`, done: what it printed.
    fn done(&self, args: &[&str]) -> String {
        let mut all = vec!["groupements"];
        all.extend_from_slice(args);
        let (ok, out) = common::entctl(&self.url, &all);
        assert!(ok, "entctl {all:?}: {out}");
        out
    }

    /// The actor of the user `email`, as the API authenticates them.
    async fn actor(&self, email: &str) -> Actor {
        entcp::identity::check_token(&self.store, &self.tokens[email], t0()).await.unwrap().unwrap().0
    }
}

/// What the API answers a role that does not allow the action, whatever the groupement.
const NOT_A_MANAGER: &str = "votre rôle ne permet pas l'action groupements.manage";

// A commune withdrawing another commune's application through the CLI is answered as for an
// application that does not exist (the API's 404, in the same words), and nothing changes; the
// applicant itself withdraws it.
backend_test!(cli_withdrawal_of_another_communes_application_is_refused_as_unknown);
async fn cli_withdrawal_of_another_communes_application_is_refused_as_unknown(db: common::TestDb) {
    let w = world(&db).await;
    let (name, reference, outsider) = (db.name, w.g.reference.as_str(), mairie(&w.communes[1]));
    let before = w.snapshot().await;
    let out = w.refused(&["withdraw", reference, &w.app, "--as", &outsider]);
    let unknown = w.refused(&["withdraw", reference, UNKNOWN_APPLICATION, "--as", &outsider]);
    assert!(out.contains(&format!("aucune candidature « {} »", w.app)), "{name}: {out}");
    assert_eq!(out.replace(&w.app, "…"), unknown.replace(UNKNOWN_APPLICATION, "…"), "{name}");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");

    let out = w.done(&["withdraw", reference, &w.app, "--as", &mairie(&w.communes[0])]);
    assert!(out.contains("retirée"), "{name}: the applicant withdraws: {out}");
}

// Another groupement's coordinator (403: the groupement is public) and a teacher (403 on the
// role, before the groupement is looked up: the same words for an unknown reference) cannot
// move the groupement through the CLI; its coordinator can.
backend_test!(cli_transition_by_another_coordinator_or_a_teacher_is_refused);
async fn cli_transition_by_another_coordinator_or_a_teacher_is_refused(db: common::TestDb) {
    let w = world(&db).await;
    let (name, reference) = (db.name, w.g.reference.as_str());
    let before = w.snapshot().await;
    let out = w.refused(&["transition", reference, "closed", "--as", OTHER_COORDINATOR]);
    let only =
        format!("seul le coordonnateur (Syndicat mixte numérique du Val-de-Marne) gère le groupement {reference}");
    assert!(out.contains(&only), "{name}: {out}");
    let out = w.refused(&["transition", reference, "closed", "--as", TEACHER]);
    assert!(out.contains(NOT_A_MANAGER), "{name}: {out}");
    let unknown = w.refused(&["transition", "GC-2099-999999", "closed", "--as", TEACHER]);
    assert_eq!(out, unknown, "{name}: the role is refused before the groupement is looked up");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");

    let out = w.done(&["transition", reference, "closed", "--as", COORDINATOR]);
    assert!(out.contains("adhésions closes"), "{name}: its coordinator closes it: {out}");
}

// Accepting or rejecting an application is the coordinator's: another coordinator, a teacher
// and the applicant's own commune are refused through the CLI, the application still awaiting
// its decision and nothing audited.
backend_test!(cli_decisions_on_an_application_by_anyone_but_its_coordinator_are_refused);
async fn cli_decisions_on_an_application_by_anyone_but_its_coordinator_are_refused(db: common::TestDb) {
    let w = world(&db).await;
    let (name, reference, app) = (db.name, w.g.reference.as_str(), w.app.as_str());
    let before = w.snapshot().await;
    let reject = |who: &str| w.refused(&["reject", reference, app, "--reason", "x", "--as", who]);
    let out = reject(TEACHER);
    assert!(out.contains(NOT_A_MANAGER), "{name}: {out}");
    let out = reject(OTHER_COORDINATOR);
    assert!(out.contains("seul le coordonnateur"), "{name}: {out}");
    let out = w.refused(&["accept", reference, app, "--as", &mairie(&w.communes[0])]);
    assert!(out.contains(NOT_A_MANAGER), "{name}: {out}");
    let out = w.refused(&["accept", reference, app, "--as", OTHER_COORDINATOR]);
    assert!(out.contains("seul le coordonnateur"), "{name}: {out}");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");
}

// Generating a document is the coordinator's: a commune's agent and another coordinator are
// refused through the CLI, no version stored and no file written.
backend_test!(cli_document_by_a_commune_or_another_coordinator_stores_no_version);
async fn cli_document_by_a_commune_or_another_coordinator_stores_no_version(db: common::TestDb) {
    let w = world(&db).await;
    let (name, reference) = (db.name, w.g.reference.as_str());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cctp.html");
    let path = file.display().to_string();
    let before = w.snapshot().await;
    let out = w.refused(&["document", reference, "cctp", "-o", &path, "--as", &mairie(&w.communes[1])]);
    assert!(out.contains(NOT_A_MANAGER), "{name}: {out}");
    let out = w.refused(&["document", reference, "cctp", "-o", &path, "--as", OTHER_COORDINATOR]);
    assert!(out.contains("seul le coordonnateur"), "{name}: {out}");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");
    assert!(!file.exists(), "{name}: no file written");
}

// Applying is for a collectivité in one's own name: a DAN (whose role does not apply) and a
// commune naming another commune (out of its scope: answered as a key naming nothing, in the
// same words) are refused through the CLI, no application filed; the commune applies for itself.
backend_test!(cli_application_for_another_organisation_is_refused);
async fn cli_application_for_another_organisation_is_refused(db: common::TestDb) {
    let w = world(&db).await;
    let (name, reference) = (db.name, w.g.reference.as_str());
    let dir = tempfile::tempdir().unwrap();
    let file = |key: &str| {
        let path = dir.path().join(format!("{}.yaml", key.replace(':', "-")));
        let text = format!("applicant: {key}\ndeliberation_number: \"2026-45\"\ndeliberation_date: \"2026-09-01\"\n");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (other, outsider) = (format!("commune:{}", w.communes[2].code), mairie(&w.communes[1]));
    let before = w.snapshot().await;
    let out = w.refused(&["apply", reference, &file(&other), "--as", DAN]);
    assert!(out.contains("votre rôle ne permet pas l'action groupements.apply"), "{name}: {out}");
    let out = w.refused(&["apply", reference, &file(&other), "--as", &outsider]);
    let unknown = w.refused(&["apply", reference, &file("commune:99999"), "--as", &outsider]);
    assert!(out.contains(&format!("aucune organisation « {other} »")), "{name}: {out}");
    assert_eq!(out.replace(&other, "…"), unknown.replace("commune:99999", "…"), "{name}");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");

    let own = format!("commune:{}", w.communes[1].code);
    let out = w.done(&["apply", reference, &file(&own), "--as", &outsider]);
    assert!(out.contains("candidature"), "{name}: a commune applies for itself: {out}");
}

// Awarding is the coordinator's: another coordinator and a teacher are refused through the CLI
// before anything of the award is read, nothing changed.
backend_test!(cli_award_by_anyone_but_the_coordinator_is_refused);
async fn cli_award_by_anyone_but_the_coordinator_is_refused(db: common::TestDb) {
    let w = world(&db).await;
    let (name, reference) = (db.name, w.g.reference.as_str());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("award.yaml");
    std::fs::write(&path, "titulaire: {}\n").unwrap();
    let path = path.display().to_string();
    let before = w.snapshot().await;
    let out = w.refused(&["award", reference, &path, "--as", OTHER_COORDINATOR]);
    assert!(out.contains("seul le coordonnateur"), "{name}: {out}");
    let out = w.refused(&["award", reference, &path, "--as", TEACHER]);
    assert!(out.contains(NOT_A_MANAGER), "{name}: {out}");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");
}

// The domain functions themselves refuse who the guard refuses, for any caller that would not
// go through it: the coordinator's acts to another coordinator (403), an application's to a
// commune out of its applicant's scope (as unknown); nothing changes.
backend_test!(the_domain_functions_refuse_whom_the_routes_refuse);
async fn the_domain_functions_refuse_whom_the_routes_refuse(db: common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let (other, outsider) = (w.actor(OTHER_COORDINATOR).await, w.actor(&mairie(&w.communes[1])).await);
    let app = membership::get(&w.store, &w.g.id, &w.app).await.unwrap();
    let before = w.snapshot().await;
    let groupements = w.state.groupements();
    let ctx = groupements.ctx(&other);
    let refused = vec![
        gm::transition(&ctx, &w.g, gm::Status::Closed, None, None).await.unwrap_err().kind,
        membership::accept(&ctx, &w.g, &app).await.unwrap_err().kind,
        membership::reject(&ctx, &w.g, &app, "x").await.unwrap_err().kind,
        documents::generate(&ctx, &w.g, documents::Kind::Cctp).await.unwrap_err().kind,
        gm::update(&ctx, &w.g, w.g.version, Default::default()).await.unwrap_err().kind,
        gm::sans_suite::declare(&ctx, &w.g, w.g.version, &sans_suite_input("infructuosite")).await.unwrap_err().kind,
    ];
    assert_eq!(refused, vec![ProblemKind::Forbidden; 6], "{name}");
    let ctx = groupements.ctx(&outsider);
    let problem = membership::withdraw(&ctx, &w.g, &app).await.unwrap_err();
    assert_eq!(problem.detail, format!("aucune candidature « {} »", w.app), "{name}");
    let problem = membership::apply(&ctx, &w.g, &w.communes[2], application(&w.communes[2])).await.unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Validation, "{name}: {problem:?}");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");
}

fn sans_suite_input(motif: &str) -> gm::sans_suite::SansSuiteInput {
    gm::sans_suite::SansSuiteInput { motif: motif.into(), justification: "Aucune offre reçue.".into() }
}

// `entctl groupements sans-suite`: another coordinator and a teacher are refused as by the API,
// the coordinator too while no consultation runs (409), nothing changing; once launched, its
// coordinator declares it sans suite (an unknown motif refused) and it reads « adhésions closes ».
backend_test!(cli_sans_suite_is_the_coordinators_and_only_of_a_consultation_running);
async fn cli_sans_suite_is_the_coordinators_and_only_of_a_consultation_running(db: common::TestDb) {
    let w = world(&db).await;
    let (name, reference) = (db.name, w.g.reference.as_str());
    let args = |who: &'static str, motif: &'static str| {
        vec!["sans-suite", reference, "--motif", motif, "--justification", "Aucune offre reçue.", "--as", who]
    };
    let before = w.snapshot().await;
    let out = w.refused(&args(OTHER_COORDINATOR, "infructuosite"));
    assert!(out.contains("seul le coordonnateur"), "{name}: {out}");
    let out = w.refused(&args(TEACHER, "infructuosite"));
    assert!(out.contains(NOT_A_MANAGER), "{name}: {out}");
    let out = w.refused(&args(COORDINATOR, "infructuosite"));
    assert!(out.contains("n'a pas de consultation en cours"), "{name}: {out}");
    assert_eq!(w.snapshot().await, before, "{name}: nothing changed");

    sqlx::query(
        "UPDATE groupements SET status = 'consultation', consultation_launched_at = '2026-09-01T08:00:00Z', \
         offers_deadline_at = '2090-01-02T11:00:00Z' WHERE id = $1",
    )
    .bind(&w.g.id)
    .execute(w.store.pool())
    .await
    .unwrap();
    let out = w.refused(&args(COORDINATOR, "caprice"));
    assert!(out.contains("motif inconnu"), "{name}: {out}");
    let out = w.done(&args(COORDINATOR, "infructuosite"));
    assert!(out.contains("adhésions closes"), "{name}: {out}");
    let g = gm::must_get(&w.store, &w.g.id).await.unwrap();
    let record = g.sans_suite.expect("declared");
    assert_eq!((g.status, record.motif), (gm::Status::Closed, gm::sans_suite::Motif::Infructuosite), "{name}");
    assert_eq!(record.offers_deadline_at.as_deref(), Some("2090-01-02T11:00:00Z"), "{name}");
}
