//! Convention coverage of running tenants (job `tenants-coverage`) on both backends: a tenant
//! whose convention ended is flagged once (event, audit, API fields and filter) and stays in
//! service, then is cleared once a new convention is in force; an admin's override of the gate
//! does not silence it; two replicas running the job at once record the lapse once.

use crate::common;
use crate::tenants::{doc, fresnes, signed_doisneau_convention, signed_doisneau_convention_from};

use chrono::{DateTime, TimeZone, Utc};
use common::app::Client;
use common::{admin, t0};
use entcp::store::Store;
use entcp::tenants::{EntTenant, Status};
use serde_json::{json, Value};
use std::sync::Arc;

/// 08:00 in Paris on that day.
fn morning(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Paris.with_ymd_and_hms(y, m, d, 8, 0, 0).unwrap().with_timezone(&Utc)
}

/// The slugs of `GET /api/v1/tenants{query}` as `client` reads them.
async fn slugs(client: &Client, query: &str) -> Vec<String> {
    let page = client.get(format!("/api/v1/tenants{query}")).send().await;
    assert_eq!(page.status, 200, "{query}: {}", page.text);
    page.body["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_string()).collect()
}

/// The messages of the events of `kind` of tenant `slug`.
async fn said(client: &Client, slug: &str, kind: &str) -> Vec<String> {
    let events = client.get(format!("/api/v1/tenants/{slug}/events")).send().await.body;
    let of_kind = events.as_array().unwrap().iter().filter(|e| e["kind"] == kind);
    of_kind.map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

/// Runs `tenants-coverage` through the API (at the app's clock); what it says it did.
async fn run_coverage(root: &Client) -> String {
    let run = root.post("/api/v1/jobs/tenants-coverage/run").send().await;
    assert_eq!((run.status, run.body["outcome"].as_str()), (200, Some("success")), "{}", run.text);
    run.body["message"].as_str().unwrap().to_string()
}

/// The `tenant` notices queued about `slug`: each one's event and recipients (a mail each). The
/// visio option of [`doc`], which the Doisneau convention's annex signed before the tenant does not
/// list, is told apart at provisioning (`annex_gap`, `tenants_annex`): left out here.
async fn told(store: &Store, slug: &str) -> Vec<(String, Vec<String>)> {
    let notices = common::queued_notices(store, "tenant").await;
    let about = notices.into_iter().filter(|n| n.context["slug"] == slug && n.context["event"] != "annex_gap");
    about.map(|n| (n.context["event"].as_str().unwrap().to_string(), n.recipients)).collect()
}

/// Moves tenant `slug` to each of `to` as `who`.
async fn transitions(who: &Client, slug: &str, to: &[Value]) {
    for body in to {
        let moved = who.post(format!("/api/v1/tenants/{slug}/transition")).json(body).send().await;
        assert_eq!(moved.status, 200, "{body}: {}", moved.text);
    }
}

backend_test!(a_running_tenant_whose_convention_ended_is_flagged_once_and_cleared_once_a_new_one_is_in_force);
async fn a_running_tenant_whose_convention_ended_is_flagged_once_and_cleared_once_a_new_one_is_in_force(
    db: common::TestDb,
) {
    let (app, [dan, mairie, directeur, root]) = fresnes(&db).await;
    signed_doisneau_convention(&dan, &mairie, &directeur).await;
    let created = mairie.post("/api/v1/tenants").json(&doc("doisneau-fresnes", "0940176F", "d.ent.example.fr")).send();
    assert_eq!(created.await.status, 201);
    transitions(&dan, "doisneau-fresnes", &[json!({ "to": "provisioning" }), json!({ "to": "active" })]).await;
    // Let through the gate by an administrator: no convention ever covered this school.
    let created = root.post("/api/v1/tenants").json(&doc("wallon-vitry", "0940198E", "w.ent.example.fr")).send();
    assert_eq!(created.await.status, 201);
    transitions(&root, "wallon-vitry", &[json!({ "to": "provisioning", "override_reason": "rentrée" })]).await;

    let first = run_coverage(&root).await;
    assert!(
        first.contains("sans convention en vigueur : wallon-vitry"),
        "{}: the override does not silence it: {first}",
        db.name
    );
    assert_eq!(slugs(&root, "?uncovered=true").await, ["wallon-vitry"]);
    assert_eq!(slugs(&root, "?uncovered=false").await, ["doisneau-fresnes"]);

    // The day after the convention's last day (36 months from 1 September 2026): flagged once.
    app.clock.set(morning(2029, 9, 1));
    let lapsed = run_coverage(&root).await;
    assert!(lapsed.contains("sans convention en vigueur : doisneau-fresnes"), "{}: {lapsed}", db.name);
    assert!(!run_coverage(&root).await.contains("doisneau"), "{}: recorded once", db.name);
    let tenant = mairie.get("/api/v1/tenants/doisneau-fresnes").send().await.body;
    assert_eq!(tenant["status"], "active", "{}: never suspended by the job: {tenant}", db.name);
    assert!(tenant["coverage_lapsed_at"].as_str().is_some_and(|at| at.starts_with("2029-09-01")), "{tenant}");
    assert_eq!(tenant["coverage_uncovered"], json!(["0940176F"]), "{tenant}");
    let lapses = said(&mairie, "doisneau-fresnes", "convention_lapsed").await;
    assert_eq!(lapses.len(), 1, "{}: {lapses:?}", db.name);
    assert!(lapses[0].contains("Robert Doisneau (0940176F) (constaté le 1er septembre 2029)"), "{lapses:?}");
    assert!(lapses[0].contains("le plan de contrôle ne suspend pas l'ENT"), "{lapses:?}");
    assert!(!lapses[0].contains("reste en service"), "not said of a suspended tenant: {lapses:?}");
    let id = tenant["id"].as_str().unwrap();
    assert_eq!(common::audited_on(&db.store, "tenants.coverage_lapsed", id).await, 1, "{}", db.name);
    assert_eq!(slugs(&dan, "?uncovered=true").await, ["doisneau-fresnes", "wallon-vitry"]);
    // The people the tenant concerns are told, once: the DAN, the school's head, its commune.
    let lapse_told = told(&db.store, "doisneau-fresnes").await;
    let people = ["dan@ac-creteil.fr", "dir@ecole.fr", "ent@fresnes.fr"];
    assert_eq!(lapse_told, [("convention_lapsed".to_string(), people.map(String::from).to_vec())], "{}", db.name);

    // A new convention, signed now for 10 September: still uncovered until it is in force.
    signed_doisneau_convention_from(&dan, &mairie, &directeur, "2029-09-10").await;
    app.clock.set(morning(2029, 9, 5));
    assert!(!run_coverage(&root).await.contains("doisneau"), "{}: signed is not in force", db.name);
    app.clock.set(morning(2029, 9, 10));
    let models = entcp::conventions::model::load_models(None).unwrap();
    assert_eq!(entcp::conventions::jobs::daily(&db.store, &models, morning(2029, 9, 10)).await.unwrap().activated, 1);
    let restored = run_coverage(&root).await;
    assert!(restored.contains("de nouveau couverts : doisneau-fresnes"), "{}: {restored}", db.name);
    assert!(!run_coverage(&root).await.contains("doisneau"), "{}: restored once", db.name);
    let tenant = mairie.get("/api/v1/tenants/doisneau-fresnes").send().await.body;
    assert!(tenant.get("coverage_lapsed_at").is_none() && tenant.get("coverage_uncovered").is_none(), "{tenant}");
    let restorations = said(&mairie, "doisneau-fresnes", "convention_restored").await;
    assert_eq!(restorations.len(), 1, "{}: {restorations:?}", db.name);
    assert!(restorations[0].contains("absence de convention constatée le 1er septembre 2029"), "{restorations:?}");
    assert_eq!(common::audited_on(&db.store, "tenants.coverage_restored", id).await, 1, "{}", db.name);
    let told = told(&db.store, "doisneau-fresnes").await;
    assert_eq!(
        told.iter().map(|(event, _)| event.as_str()).collect::<Vec<_>>(),
        ["convention_lapsed", "convention_restored"]
    );
    let mails = common::queued_mails(&db.store, "tenant").await;
    let lapse =
        mails.iter().find(|m| m.context["event"] == "convention_lapsed" && m.context["slug"] == "doisneau-fresnes");
    let rendered = entcp::notify::mailer::render("tenant", &lapse.unwrap().context).unwrap();
    assert!(
        rendered.text.contains("(constaté le 1er septembre 2029) : Ecole élémentaire Robert Doisneau"),
        "{}",
        rendered.text
    );
    assert!(rendered.text.contains("Le plan de contrôle ne suspend pas l'ENT : la DAN décide"), "{}", rendered.text);
    assert!(!rendered.text.contains("reste en service"), "{}", rendered.text);
    let html = &rendered.html;
    assert!(html.contains("constaté le 1er septembre 2029") && !html.contains("reste en service"), "{html}");
    assert!(rendered.text.contains("Robert Doisneau (0940176F)"), "{}", rendered.text);
    assert_eq!(slugs(&root, "?uncovered=true").await, ["wallon-vitry"]);
}

// Two replicas run the daily job at once: both read the tenant covered, find it uncovered and
// write; only the one whose UPDATE still finds what it read records the lapse.
race_test!(two_coverage_runs_at_once_record_a_lapse_once);
async fn two_coverage_runs_at_once_record_a_lapse_once(db: common::TestDb) {
    common::import_sample(&db.store).await;
    let clock = Arc::new(entcp::clock::FixedClock::new(t0()));
    let a = common::app::app_state(db.store.clone(), common::app::test_config(), clock.clone());
    let other = Store::connect(&db.url, None).await.unwrap();
    let b = common::app::app_state(other.clone(), common::app::test_config(), clock);
    let document: EntTenant = serde_json::from_value(doc("doisneau-fresnes", "0940176F", "d.ent.example.fr")).unwrap();
    let (_, tenant) = entcp::tenants::apply(&a.tenants(), &admin(), &document, None).await.unwrap();
    let step = entcp::tenants::Move::to(Status::Provisioning).overriding("rentrée");
    entcp::tenants::transition(&a.tenants(), &admin(), &tenant, step).await.unwrap();

    let hold =
        common::hold_writes(&db.store, "SELECT id FROM tenants WHERE slug = $1 FOR UPDATE", &["doisneau-fresnes"])
            .await;
    let runs = [a, b].map(|state| {
        tokio::spawn(async move { entcp::tenants::coverage::check_coverage(&state.tenants(), t0()).await.unwrap() })
    });
    common::let_them_queue().await;
    hold.commit().await.unwrap();
    let mut recorded = Vec::new();
    for run in runs {
        recorded.extend(run.await.unwrap().lapsed);
    }
    assert_eq!(recorded, ["doisneau-fresnes"], "{}: one run records, the other finds it done", db.name);
    let events = "SELECT COUNT(*) FROM tenant_events WHERE tenant_id = $1 AND kind = 'convention_lapsed'";
    assert_eq!(common::count(&db.store, events, &[&tenant.id]).await, 1, "{}", db.name);
    assert_eq!(common::audited_on(&db.store, "tenants.coverage_lapsed", &tenant.id).await, 1, "{}", db.name);
    other.close().await;
}

/// The response of a `tenants-coverage` run through the API, whatever its outcome.
async fn coverage_run(root: &Client) -> Value {
    let run = root.post("/api/v1/jobs/tenants-coverage/run").send().await;
    assert_eq!(run.status, 200, "{}", run.text);
    run.body
}

/// A doisneau-fresnes covered and active, and a wallon-vitry let through the gate by an admin.
async fn two_tenants(db: &common::TestDb) -> (common::TestApp, [Client; 4]) {
    let (app, clients) = fresnes(db).await;
    let [dan, mairie, directeur, root] = &clients;
    signed_doisneau_convention(dan, mairie, directeur).await;
    let created = mairie.post("/api/v1/tenants").json(&doc("doisneau-fresnes", "0940176F", "d.ent.example.fr")).send();
    assert_eq!(created.await.status, 201);
    transitions(dan, "doisneau-fresnes", &[json!({ "to": "provisioning" }), json!({ "to": "active" })]).await;
    let created = root.post("/api/v1/tenants").json(&doc("wallon-vitry", "0940198E", "w.ent.example.fr")).send();
    assert_eq!(created.await.status, 201);
    transitions(root, "wallon-vitry", &[json!({ "to": "provisioning", "override_reason": "rentrée" })]).await;
    (app, clients)
}

// One tenant whose check fails (here its write) does not stop the pass: the tenants after it
// are checked, the run fails at the end naming it, and the next run records it.
backend_test!(a_tenant_whose_check_fails_is_named_and_the_others_are_still_checked);
async fn a_tenant_whose_check_fails_is_named_and_the_others_are_still_checked(db: common::TestDb) {
    let (app, [_, _, _, root]) = two_tenants(&db).await;
    app.clock.set(morning(2029, 9, 1));
    // doisneau-fresnes comes first in the pass (by slug).
    common::inject_fault(&db.store, "tenants", "UPDATE", "NEW.slug = 'doisneau-fresnes'").await;
    let run = coverage_run(&root).await;
    common::lift_fault(&db.store, "tenants").await;
    assert_eq!(run["outcome"], "failure", "{}: {run}", db.name);
    let message = run["message"].as_str().unwrap();
    assert!(message.contains("sans convention en vigueur : wallon-vitry"), "{}: checked after: {message}", db.name);
    assert!(message.contains("vérification en échec : doisneau-fresnes"), "{}: {message}", db.name);
    assert_eq!(slugs(&root, "?uncovered=true").await, ["wallon-vitry"]);
    let again = run_coverage(&root).await;
    assert!(again.contains("sans convention en vigueur : doisneau-fresnes"), "{}: {again}", db.name);
}

// `conventions-daily` has not run yet on the day a renewed convention starts (a restart caught
// both jobs up at once): the coverage pass lets it take effect first, and flags nothing.
backend_test!(a_convention_starting_today_covers_even_before_conventions_daily_runs);
async fn a_convention_starting_today_covers_even_before_conventions_daily_runs(db: common::TestDb) {
    let (app, [dan, mairie, directeur, root]) = fresnes(&db).await;
    signed_doisneau_convention(&dan, &mairie, &directeur).await;
    let created = mairie.post("/api/v1/tenants").json(&doc("doisneau-fresnes", "0940176F", "d.ent.example.fr")).send();
    assert_eq!(created.await.status, 201);
    transitions(&dan, "doisneau-fresnes", &[json!({ "to": "provisioning" }), json!({ "to": "active" })]).await;
    // The renewal, signed before the first one's last day (31 August 2029), starts the day after.
    app.clock.set(morning(2029, 8, 20));
    let renewal = signed_doisneau_convention_from(&dan, &mairie, &directeur, "2029-09-01").await;
    let read = dan.get(format!("/api/v1/conventions/{renewal}")).send().await.body;
    assert_eq!(read["status"], "signed", "{}: {read}", db.name);

    app.clock.set(morning(2029, 9, 1));
    let outcome = run_coverage(&root).await;
    assert!(!outcome.contains("doisneau"), "{}: {outcome}", db.name);
    assert!(said(&mairie, "doisneau-fresnes", "convention_lapsed").await.is_empty(), "{}", db.name);
    assert!(told(&db.store, "doisneau-fresnes").await.is_empty(), "{}: no mail", db.name);
    let read = dan.get(format!("/api/v1/conventions/{renewal}")).send().await.body;
    assert_eq!(read["status"], "active", "{}: {read}", db.name);
}

// A tenant withdrawn between the pass's read and its write gets no lapse; one withdrawn after
// its lapse loses the flag: only running tenants are listed as uncovered.
backend_test!(only_running_tenants_carry_a_coverage_lapse);
async fn only_running_tenants_carry_a_coverage_lapse(db: common::TestDb) {
    let (app, [dan, _, _, root]) = two_tenants(&db).await;
    assert!(run_coverage(&root).await.contains("sans convention en vigueur : wallon-vitry"), "{}", db.name);
    transitions(&root, "wallon-vitry", &[json!({ "to": "decommissioning", "reason": "école fermée" })]).await;
    let tenant = root.get("/api/v1/tenants/wallon-vitry").send().await.body;
    assert!(tenant.get("coverage_lapsed_at").is_none() && tenant.get("coverage_uncovered").is_none(), "{tenant}");
    assert!(slugs(&dan, "?uncovered=true").await.is_empty(), "{}", db.name);

    // doisneau-fresnes lapses on 1 September 2029; it is withdrawn while the pass runs.
    let state = common::app::app_state(db.store.clone(), common::app::test_config(), app.clock.clone());
    let now = morning(2029, 9, 1);
    let mut hold =
        common::hold_writes(&db.store, "SELECT id FROM tenants WHERE slug = $1 FOR UPDATE", &["doisneau-fresnes"])
            .await;
    let run = tokio::spawn(async move { entcp::tenants::coverage::check_coverage(&state.tenants(), now).await });
    common::let_them_queue().await;
    let withdraw = "UPDATE tenants SET status = 'decommissioning' WHERE slug = 'doisneau-fresnes'";
    sqlx::query(withdraw).execute(&mut *hold).await.unwrap();
    hold.commit().await.unwrap();
    let pass = run.await.unwrap().unwrap();
    assert!(pass.lapsed.is_empty() && pass.failed.is_empty(), "{}: {pass:?}", db.name);
    assert!(said(&root, "doisneau-fresnes", "convention_lapsed").await.is_empty(), "{}", db.name);
    assert!(told(&db.store, "doisneau-fresnes").await.is_empty(), "{}: no mail", db.name);
}

/// The id of the organisation `kind` `code`.
async fn org_id(store: &Store, kind: &str, code: &str) -> String {
    let sql = "SELECT id FROM orgs WHERE kind = $1 AND code = $2";
    sqlx::query_scalar(sql).bind(kind).bind(code).fetch_one(store.pool()).await.unwrap()
}

/// Writes the convention `id` of `model` (v3), active from `start` to `end`, between the
/// académie de Créteil and `parties` (party key, kind, code).
async fn active_convention(store: &Store, id: &str, model: &str, dates: (&str, &str), parties: &[(&str, &str, &str)]) {
    let mut all = vec![("academie", org_id(store, "academie", "24").await)];
    for (key, kind, code) in parties {
        all.push((*key, org_id(store, kind, code).await));
    }
    let schools = all.iter().filter(|(key, _)| *key == "etablissement").map(|(_, id)| id.clone()).collect();
    let convention = ent_testkit::conventions::ActiveConvention {
        id,
        model_id: model,
        model_version: 3,
        start: dates.0,
        end: dates.1,
        parties: all,
        schools,
    };
    ent_testkit::conventions::insert_active(store.pool(), &convention).await.unwrap();
}

/// Tenant `slug` of the organisation `organisation` (as a document names it), let through the gate.
async fn running_tenant(state: &entcp::api::AppState, slug: &str, organisation: &str, bouquet: &str) {
    let mut document = doc(slug, organisation, &format!("{slug}.ent.example.fr"));
    document["spec"]["bouquet"] = json!(bouquet);
    document["spec"]["options"] = json!([]);
    let document: EntTenant = serde_json::from_value(document).unwrap();
    let (_, tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &document, None).await.unwrap();
    let step = entcp::tenants::Move::to(Status::Provisioning).overriding("rentrée");
    entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
}

// The pass reads what the gate needs once (its memo); it must answer as the provisioning gate,
// which asks the store question by question: the same covering convention (the newest in force
// when two cover; a commune's, or its EPCI's, for an école), the same établissements without one
// (convention ended, résiliée, to come, none), in the same order, closed ones left out.
backend_test!(the_pass_memo_answers_as_the_gate_asking_question_by_question);
async fn the_pass_memo_answers_as_the_gate_asking_question_by_question(db: common::TestDb) {
    use entcp::tenants::coverage::{gate_answers, GateAnswer, Reading};
    let statements = common::logs::Statements::capture();
    common::import_sample_with_college(&db.store).await;
    let store = &db.store;
    let clock = Arc::new(entcp::clock::FixedClock::new(t0()));
    let state = common::app::app_state(store.clone(), common::app::test_config(), clock);
    let in_force = ("2026-09-01", "2029-08-31");
    let tripartite = "tripartite-premier-degre";
    let doisneau = [("collectivite", "commune", "94034"), ("etablissement", "etablissement", "0940176F")];
    active_convention(store, "tri-doisneau", tripartite, in_force, &doisneau).await;
    // Also covered by its commune's bipartite, in force since January: the newer one is named.
    let fresnes = [("collectivite", "commune", "94034")];
    active_convention(store, "bi-fresnes", "bipartite-commune", ("2026-01-01", "2028-12-31"), &fresnes).await;
    let noiseau = [("collectivite", "commune", "94053")];
    active_convention(store, "bi-noiseau", "bipartite-commune", in_force, &noiseau).await;
    let ormesson = [("collectivite", "commune", "94055")];
    active_convention(store, "bi-ormesson-ended", "bipartite-commune", ("2023-09-01", "2026-08-31"), &ormesson).await;
    let fontaine = [("collectivite", "commune", "94055"), ("etablissement", "etablissement", "0940723A")];
    active_convention(store, "tri-fontaine", tripartite, in_force, &fontaine).await;
    let wallon = [("collectivite", "commune", "94081"), ("etablissement", "etablissement", "0940198E")];
    active_convention(store, "tri-wallon-future", tripartite, ("2027-01-01", "2029-12-31"), &wallon).await;
    // Ended early: its résiliation takes effect today.
    let bonneuil = [("collectivite", "commune", "94011"), ("etablissement", "etablissement", "0941131U")];
    active_convention(store, "tri-bonneuil-resiliee", tripartite, in_force, &bonneuil).await;
    // Valenton delegated its ENT to an EPCI, which signed: its écoles are covered through it.
    let valenton = org_id(store, "commune", "94074").await;
    let valenton = entcp::registry::get_org(store, &valenton).await.unwrap().unwrap();
    let epci = common::fixtures::epci(store, "CA du test", &common::fixtures::group_siren(1), &[&valenton]).await;
    let by_epci = [("collectivite", "epci", epci.code.as_str())];
    active_convention(store, "bi-epci", "bipartite-commune", in_force, &by_epci).await;
    for sql in [
        "UPDATE orgs SET is_open = 0 WHERE kind = 'etablissement' AND code = '0940682F'",
        "UPDATE conventions SET termination_effective = '2026-09-01' WHERE id = 'tri-bonneuil-resiliee'",
    ] {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    let tenants = [
        ("doisneau-fresnes", "0940176F", "socle-1d"),
        ("mairie-noiseau", "commune:94053", "socle-1d"),
        ("camus-noiseau", "0941507C", "socle-1d"),
        ("mairie-ormesson", "commune:94055", "socle-1d"),
        ("wallon-vitry", "0940198E", "socle-1d"),
        ("mairie-bonneuil", "commune:94011", "socle-1d"),
        ("college-fresnes", "0940999A", "socle-2d"),
        ("langevin-valenton", "0940627W", "socle-1d"),
    ];
    for (slug, organisation, bouquet) in tenants {
        running_tenant(&state, slug, organisation, bouquet).await;
    }

    let today = entcp::clock::today_in_france(t0());
    let before = statements.count();
    let asked = gate_answers(&state.tenants(), today, Reading::QuestionByQuestion).await.unwrap();
    let asking = statements.count() - before;
    let before = statements.count();
    let memo = gate_answers(&state.tenants(), today, Reading::PassMemo).await.unwrap();
    let reading = statements.count() - before;
    assert_eq!(memo, asked, "{}: the memo answers as the gate", db.name);

    let answer = |slug: &str| asked.iter().find(|a| a.slug == slug).unwrap().answer.clone().unwrap();
    let codes = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(answer("doisneau-fresnes"), (Some("tri-doisneau".into()), vec![]), "{}", db.name);
    assert_eq!(answer("mairie-noiseau"), (Some("bi-noiseau".into()), vec![]), "{}", db.name);
    assert_eq!(answer("camus-noiseau"), (Some("bi-noiseau".into()), vec![]), "{}: through its commune", db.name);
    let ormesson_open = ["0941110W", "0940683G", "0940724B", "0940722Z"];
    assert_eq!(answer("mairie-ormesson"), (Some("tri-fontaine".into()), codes(&ormesson_open)), "{}", db.name);
    assert_eq!(answer("wallon-vitry"), (None, codes(&["0940198E"])), "{}: not yet in force", db.name);
    let (covering, bonneuil) = answer("mairie-bonneuil");
    assert_eq!((covering, bonneuil.len()), (None, 10), "{}: résiliée or none: {bonneuil:?}", db.name);
    assert!(bonneuil.contains(&"0941131U".to_string()), "{}: {bonneuil:?}", db.name);
    assert_eq!(answer("college-fresnes"), (None, codes(&["0940999A"])), "{}", db.name);
    assert_eq!(answer("langevin-valenton"), (Some("bi-epci".into()), vec![]), "{}: through its EPCI", db.name);
    assert_eq!(asked.len(), tenants.len(), "{}", db.name);
    assert!(memo.iter().all(|a: &GateAnswer| a.answer.is_ok()), "{}", db.name);
    // Question by question, each tenant costs several statements per école; the memo a few in all.
    eprintln!(
        "{}: {} tenants, {asking} statements question by question, {reading} with the memo",
        db.name,
        tenants.len()
    );
    assert!(reading < 20 && reading * 3 < asking, "{}: {reading} vs {asking} statements", db.name);

    // The pass records a lapse for exactly the tenants the gate finds uncovered.
    let pass = entcp::tenants::coverage::check_coverage(&state.tenants(), t0()).await.unwrap();
    let uncovered: Vec<&str> =
        asked.iter().filter(|a| !a.answer.as_ref().unwrap().1.is_empty()).map(|a| a.slug.as_str()).collect();
    assert_eq!(pass.lapsed, uncovered, "{}: {pass:?}", db.name);
    assert_eq!((pass.examined, pass.failed.len()), (tenants.len(), 0), "{}", db.name);
}
