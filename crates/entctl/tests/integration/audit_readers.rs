//! The audit log reads each kind's records as the entity itself is read through its own routes
//! (`audit::KindReaders`, one rule per owning capability, registered by `ent-server`): a ticket's
//! by its staff, a convention's by its parties, a groupement's by its coordinator, its
//! applicants' readers and its members, an account's by who reads the account, a token's by its
//! owner, a processor contract's by who reads its client's registers, a support contract's by
//! who reads support contracts. Each rule is checked against the Rust authorisation it mirrors,
//! record by record and actor by actor.

use crate::common;

use common::fixtures::{self, grant_also};
use common::{t0, TestApp};
use entcp::audit::{AuditRecord, KindReaders};
use entcp::identity::authz::{self, CONVENTIONS_READ, RGPD_READ, SUPPORT_CONTRACTS_READ, USERS_READ};
use entcp::identity::Actor;
use entcp::kernel::roles::{OrgKind, Role};
use entcp::store::Store;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

const ADMIN: &str = "admin@test.fr";
/// Reads the académie's log, and nothing else.
const AUDITEUR: &str = "audit@ac-creteil.fr";
const DPO: &str = "dpd@ac-creteil.fr";
/// Its scope holds the commune and the school of the tripartite, a party to none.
const DSDEN_AUDITEUR: &str = "audit@dsden94.fr";
/// N2 of the académie and its auditeur: the ticket's staff reading the log.
const N2: &str = "n2@ac-creteil.fr";
const CHEF: &str = "chef@ecole.fr";
const DAN: &str = "dan@ac-creteil.fr";
/// The académie's coordinateur (a groupement's coordinator), its auditeur too.
const COORD: &str = "coord@ac-creteil.fr";
/// Fresnes' collectivité (the applicant), its auditeur too.
const MAIRIE: &str = "ent@fresnes.fr";
const FRESNES_DPO: &str = "dpd@fresnes.fr";
/// Fresnes' auditeur: reads the accounts of the commune, not the académie's.
const FRESNES_AUDITEUR: &str = "audit@fresnes.fr";
const VITRY_DPO: &str = "dpd@vitry.fr";
const VENDOR: &str = "n3@editeur.fr";

struct World {
    app: TestApp,
    ticket: String,
    convention: String,
    groupement: String,
    contract: String,
}

async fn world(db: common::TestDb) -> World {
    common::import_sample(&db.store).await;
    let store = db.store.clone();
    let vendor = fixtures::new_org(&store, OrgKind::Editeur, "Éditeur ENT", &fixtures::siren(7), None).await;
    let vendor_key = format!("editeur:{}", vendor.code);
    let app = TestApp::builder(db)
        .user(ADMIN, Role::Admin, None)
        .user(AUDITEUR, Role::Auditeur, Some("academie:24"))
        .user(DPO, Role::Dpo, Some("academie:24"))
        .user(DSDEN_AUDITEUR, Role::Auditeur, Some("dsden:94"))
        .user(N2, Role::SupportN2, Some("academie:24"))
        .user(CHEF, Role::ChefEtablissement, Some("0940176F"))
        .user(DAN, Role::Dan, Some("academie:24"))
        .user(COORD, Role::Coordinateur, Some("academie:24"))
        .user(MAIRIE, Role::Collectivite, Some("commune:94034"))
        .user(FRESNES_DPO, Role::Dpo, Some("commune:94034"))
        .user(FRESNES_AUDITEUR, Role::Auditeur, Some("commune:94034"))
        .user(VITRY_DPO, Role::Dpo, Some("commune:94081"))
        .user(VENDOR, Role::SupportN3, Some(&vendor_key))
        .build()
        .await;
    // Reading the log takes an auditeur's role besides (granted before any token is used).
    for (who, at) in [(N2, "academie:24"), (COORD, "academie:24"), (MAIRIE, "commune:94034")] {
        grant_also(&store, who, Role::Auditeur, at).await;
    }
    let fixtures::FresnesSchool { commune, ticket, convention, .. } = fixtures::fresnes_school(&app, ADMIN, CHEF).await;
    // The ticket goes up to N2 with an internal reason.
    let reference = ticket["reference"].as_str().unwrap();
    let escalate = json!({ "reason": "Annuaire académique à vérifier (note interne)" });
    let read = app.get(&format!("/api/v1/support/tickets/{reference}")).acting_as(ADMIN).send().await;
    let etag = read.header("etag").unwrap().to_string();
    let up = app.post(&format!("/api/v1/support/tickets/{reference}/escalate")).acting_as(ADMIN);
    let up = up.header("if-match", &etag).json(&escalate).send().await;
    assert_eq!(up.status, 200, "{}", up.text);
    // A support contract set at the commune, a processor contract with it.
    let set = app.put(&format!("/api/v1/support/contracts/{}", commune.id)).acting_as(DAN).json(&json!({}));
    let set = set.send().await;
    assert!(set.status < 300, "{}", set.text);
    let new = entcp::contracts::NewContract {
        processor_org_id: vendor.id.clone(),
        client_org_id: commune.id.clone(),
        parent_processor_org_id: None,
        reference: "M-2026-1".into(),
        title: "Marché ENT".into(),
        art28_clauses: true,
        starts_on: None,
        ends_on: None,
        source_kind: "manual".into(),
        source_id: None,
    };
    let mut tx = store.begin_write().await.unwrap();
    let contract = entcp::contracts::record(&mut tx, &store, &common::admin(), &new, t0()).await.unwrap();
    tx.commit().await.unwrap();
    // A groupement of the académie, Fresnes applying.
    let g = fixtures::groupement(&app, COORD, "academie:24").await;
    let id = g["id"].as_str().unwrap().to_string();
    let application =
        json!({ "applicant": commune.id, "deliberation_number": "2026-DCM-7", "deliberation_date": "2026-09-01" });
    let applied = app.post(&format!("/api/v1/groupements/{id}/applications")).acting_as(MAIRIE).json(&application);
    let applied = applied.send().await;
    assert_eq!(applied.status, 201, "{}", applied.text);
    World {
        app,
        ticket: ticket["id"].as_str().unwrap().to_string(),
        convention: convention["id"].as_str().unwrap().to_string(),
        groupement: id,
        contract,
    }
}

/// Every record `who` reads of the log with the filters `query`, walking pages of `limit`
/// with their cursors: each page but the last is full.
async fn walk(app: &TestApp, who: &str, query: &str, limit: usize) -> Vec<Value> {
    common::audit_walk(query, limit, |url| app.get(&url).acting_as(who)).await
}

/// The actions of the records `who` reads about `target_id`.
async fn actions_on(app: &TestApp, who: &str, target_id: &str) -> BTreeSet<String> {
    let records = walk(app, who, &format!("&target_id={target_id}"), 2).await;
    records.iter().map(|r| r["action"].as_str().unwrap().to_string()).collect()
}

backend_test!(each_kind_s_audit_records_are_read_by_who_reads_the_entity);
async fn each_kind_s_audit_records_are_read_by_who_reads_the_entity(db: common::TestDb) {
    let name = db.name;
    let w = world(db).await;
    let app = &w.app;
    let none = BTreeSet::new();
    // A ticket: its staff (the académie's N2), not the académie's auditeur nor its DPO.
    assert!(actions_on(app, N2, &w.ticket).await.contains("support.tickets.escalate"), "{name}");
    for who in [AUDITEUR, DPO, DSDEN_AUDITEUR] {
        assert_eq!(actions_on(app, who, &w.ticket).await, none, "{name}: {who} reads no ticket");
    }
    assert!(walk(app, AUDITEUR, "&target_kind=support_ticket", 1).await.is_empty(), "{name}: no page, no cursor");
    // A convention: a party's auditeur, not the DSDEN's, whose scope holds the other parties.
    let conv = format!("/api/v1/conventions/{}", w.convention);
    assert_eq!(app.get(&conv).acting_as(DSDEN_AUDITEUR).send().await.status, 404, "{name}");
    assert_eq!(actions_on(app, DSDEN_AUDITEUR, &w.convention).await, none, "{name}");
    assert!(actions_on(app, AUDITEUR, &w.convention).await.contains("conventions.create"), "{name}");
    // A groupement: its coordinator; an application by the applicant's readers too.
    let coordinated = actions_on(app, COORD, &w.groupement).await;
    assert!(coordinated.contains("groupements.create") && coordinated.contains("groupements.apply"), "{name}");
    let applicant: BTreeSet<String> = ["groupements.apply".to_string()].into();
    assert_eq!(actions_on(app, MAIRIE, &w.groupement).await, applicant, "{name}: not the coordinator's records");
    for who in [AUDITEUR, DPO] {
        assert_eq!(actions_on(app, who, &w.groupement).await, none, "{name}: {who} reads no groupement");
    }
    // A processor contract: who reads its client's registers (the commune's DPO, the académie's).
    for who in [FRESNES_DPO, DPO] {
        assert!(actions_on(app, who, &w.contract).await.contains("contracts.create"), "{name}: {who}");
    }
    for who in [AUDITEUR, VITRY_DPO] {
        assert_eq!(actions_on(app, who, &w.contract).await, none, "{name}: {who}");
    }
    // A support contract: who reads support contracts (the N2), not the auditeur.
    let set = |records: Vec<Value>| records.iter().any(|r| r["action"] == "support.contracts.set");
    assert!(set(walk(app, N2, "&target_kind=org", 50).await), "{name}");
    assert!(!set(walk(app, AUDITEUR, "&target_kind=org", 50).await), "{name}");
    // Accounts: the auditeur reads the chef's; the DPO, who reads no account, only its own.
    let chef = entcp::identity::get_user(&app.store, CHEF).await.unwrap().unwrap();
    let dpo = entcp::identity::get_user(&app.store, DPO).await.unwrap().unwrap();
    assert!(actions_on(app, AUDITEUR, &chef.id).await.contains("users.create"), "{name}");
    let users = walk(app, DPO, "&target_kind=user", 50).await;
    assert!(users.iter().all(|r| r["target_id"] == json!(dpo.id)) && !users.is_empty(), "{name}: {users:?}");
    // Tokens: their owner's alone.
    let tokens = walk(app, AUDITEUR, "&target_kind=token", 50).await;
    let auditeur = entcp::identity::get_user(&app.store, AUDITEUR).await.unwrap().unwrap();
    let own: Vec<String> =
        common::texts(&app.store, "SELECT id FROM api_tokens WHERE user_id = $1", &[&auditeur.id]).await;
    assert!(!tokens.is_empty(), "{name}");
    assert!(tokens.iter().all(|r| own.contains(&r["target_id"].as_str().unwrap().to_string())), "{name}: {tokens:?}");
    // An administrator reads them all.
    for target in [&w.ticket, &w.convention, &w.groupement, &w.contract, &chef.id] {
        assert!(!actions_on(app, ADMIN, target).await.is_empty(), "{name}: {target}");
    }
}

async fn actor(store: &Store, email: &str) -> Actor {
    let user = entcp::identity::get_user(store, email).await.unwrap().unwrap();
    let bindings = entcp::identity::bindings_of(store, &user.id).await.unwrap();
    Actor { user_id: Some(user.id), name: format!("user:{email}"), bindings }
}

/// Whether the rule's condition selects the record `seq`.
async fn selects(store: &Store, rule: &dyn KindReaders, actor: &Actor, seq: i64) -> bool {
    let Some(mut cond) = rule.readable(actor) else { return true };
    cond.push_int("seq = ?", seq);
    let sql = format!("SELECT COUNT(*) FROM audit_log WHERE {}", cond.sql());
    let row = cond.bind(sqlx::query(&sql)).fetch_one(store.pool()).await.unwrap();
    sqlx::Row::get::<i64, _>(&row, 0) > 0
}

/// What the entity's own authorisation says of `actor` reading the record `r`, for a record a
/// rule decides; `None` for one no rule decides.
async fn authorised(w: &World, actor: &Actor, r: &AuditRecord) -> Option<bool> {
    let store = &w.app.store;
    let scope = match &r.scope_org_id {
        Some(id) => entcp::registry::get_org(store, id).await.unwrap(),
        None => None,
    };
    let allowed = |action| {
        let scope = scope.clone();
        async move {
            match scope {
                Some(org) => authz::authorize(store, actor, action, &org).await.is_ok(),
                None => actor.is_admin(),
            }
        }
    };
    Some(match (r.target_kind.as_str(), r.action.as_str()) {
        (_, "support.contracts.set") => allowed(&SUPPORT_CONTRACTS_READ).await,
        ("support_ticket", _) => {
            let Some(t) = entcp::support::load(&mut store.conn().await.unwrap(), &r.target_id).await.unwrap() else {
                return Some(actor.is_admin());
            };
            entcp::support::viewer(store, actor, &t).await.unwrap() == Some(entcp::support::Viewer::Staff)
        }
        ("convention", _) => {
            let models = entcp::conventions::model::load_models(None).unwrap();
            let seen = entcp::conventions::get_seen_convention(store, &models, &r.target_id, actor, &CONVENTIONS_READ);
            seen.await.unwrap().is_some()
        }
        ("groupement", _) => {
            let g = entcp::groupements::must_get(store, &r.target_id).await.unwrap();
            let Some(scope) = &r.scope_org_id else { return Some(actor.is_admin()) };
            entcp::groupements::readers::reads_record(store, actor, &g, scope).await.unwrap()
        }
        ("processor_contract", _) => match &scope {
            Some(org) => {
                let state = common::app::app_state(store.clone(), common::app::test_config(), w.app.clock.clone());
                entcp::rgpd::authorize(&state.rgpd(), actor, &RGPD_READ, org).await.is_ok()
            }
            None => actor.is_admin(),
        },
        ("user", _) => {
            let Some(user) = entcp::identity::get_user(store, &r.target_id).await.unwrap() else {
                return Some(actor.is_admin());
            };
            let org = match &user.org {
                Some(o) => entcp::registry::get_org(store, &o.id).await.unwrap(),
                None => None,
            };
            let reads = match org {
                Some(org) => authz::authorize(store, actor, &USERS_READ, &org).await.is_ok(),
                None => actor.is_admin(),
            };
            reads || actor.user_id.as_deref() == Some(user.id.as_str())
        }
        ("token", _) => {
            let owner = common::texts(store, "SELECT user_id FROM api_tokens WHERE id = $1", &[&r.target_id]).await;
            actor.is_admin() || owner.first().map(String::as_str) == actor.user_id.as_deref()
        }
        _ => return None,
    })
}

/// The rules of the application that decide `r`.
fn deciding(rules: &[Arc<dyn KindReaders>], r: &AuditRecord) -> Vec<Arc<dyn KindReaders>> {
    let decides = |rule: &&Arc<dyn KindReaders>| {
        rule.kinds().contains(&r.target_kind.as_str()) || rule.actions().contains(&r.action.as_str())
    };
    rules.iter().filter(decides).cloned().collect()
}

backend_test!(each_audit_rule_in_sql_answers_as_the_entity_s_own_authorisation_record_by_record);
async fn each_audit_rule_in_sql_answers_as_the_entity_s_own_authorisation_record_by_record(db: common::TestDb) {
    let name = db.name;
    let w = world(db).await;
    let store = &w.app.store;
    let rules: Vec<Arc<dyn KindReaders>> = [
        entcp::identity::readers::AuditReaders::all(),
        entcp::conventions::AuditReaders::all(),
        entcp::support::AuditReaders::all(),
        entcp::groupements::readers::AuditReaders::all(),
        entcp::rgpd::AuditReaders::all(),
    ]
    .concat();
    let filter = entcp::audit::AuditFilter { limit: Some(500), ..Default::default() };
    let records = entcp::audit::list(store, &filter, None).await.unwrap().items;
    let emails = [AUDITEUR, DPO, DSDEN_AUDITEUR, N2, CHEF, DAN, COORD, MAIRIE, FRESNES_DPO, VITRY_DPO, VENDOR];
    let (mut decided, mut read) = (BTreeSet::new(), 0);
    for email in emails {
        let actor = actor(store, email).await;
        for r in &records {
            let Some(allowed) = authorised(&w, &actor, r).await else {
                assert!(deciding(&rules, r).is_empty() || r.target_kind.starts_with("rgpd_"), "{name}: {r:?}");
                continue;
            };
            decided.insert(r.target_kind.clone());
            read += usize::from(allowed);
            let rules = deciding(&rules, r);
            assert!(!rules.is_empty(), "{name}: no rule decides {} {}", r.target_kind, r.action);
            for rule in rules {
                let selected = selects(store, rule.as_ref(), &actor, r.seq).await;
                assert_eq!(selected, allowed, "{name}: {email} {} {} {}", r.target_kind, r.action, r.target_id);
            }
        }
    }
    let kinds = ["convention", "groupement", "org", "processor_contract", "support_ticket", "token", "user"];
    assert_eq!(decided, kinds.iter().map(|k| k.to_string()).collect(), "{name}: every rule is exercised");
    assert!(read > emails.len(), "{name}: the roles read some records ({read})");
}

/// Gives `email`'s account the directory name `name`.
async fn rename(store: &Store, email: &str, name: &str) {
    let user = entcp::identity::get_user(store, email).await.unwrap().unwrap();
    let patch = entcp::identity::UserPatch { display_name: Some(name.into()), active: None };
    entcp::identity::update_user(store, &common::admin(), &user.id, user.version, patch, t0()).await.unwrap();
}

/// `who`, writing at a party, retitles the convention (`conventions.update`, by them).
async fn retitle(app: &TestApp, who: &str, id: &str, title: &str) {
    let path = format!("/api/v1/conventions/{id}");
    let read = app.get(&path).acting_as(who).send().await;
    let etag = read.header("etag").unwrap().to_string();
    let patched = app.patch(&path).acting_as(who).header("if-match", &etag).json(&json!({ "title": title }));
    let patched = patched.send().await;
    assert_eq!(patched.status, 200, "{who}: {}", patched.text);
}

/// The actor (`actor`, `actor_name`) of the convention's `conventions.update` records that
/// `who` reads, oldest first.
async fn updaters(app: &TestApp, who: &str, convention: &str) -> Vec<(Value, Value)> {
    let records = walk(app, who, &format!("&target_id={convention}"), 50).await;
    let updates = records.iter().rev().filter(|r| r["action"] == "conventions.update");
    let mut actors: Vec<(Value, Value)> = updates.map(|r| (r["actor"].clone(), r["actor_name"].clone())).collect();
    // One record per party of the convention: the same step read in each party's log.
    actors.dedup();
    actors
}

backend_test!(the_log_shows_a_person_s_address_only_to_who_reads_their_account_and_names_them_to_all);
async fn the_log_shows_a_person_s_address_only_to_who_reads_their_account_and_names_them_to_all(db: common::TestDb) {
    let name = db.name;
    let w = world(db).await;
    let (app, store) = (&w.app, &w.app.store);
    rename(store, DAN, "Dominique Martin").await;
    rename(store, MAIRIE, "Karim Benali").await;
    // The académie's DAN, then Fresnes' collectivité, amend the draft.
    retitle(app, DAN, &w.convention, "Convention ENT de l'école de Fresnes").await;
    retitle(app, MAIRIE, &w.convention, "Convention ENT de l'école Berty Albrecht").await;
    let (dan, mairie) = (json!(format!("user:{DAN}")), json!(format!("user:{MAIRIE}")));
    let (dan_name, mairie_name) = (json!("Dominique Martin"), json!("Karim Benali"));
    let masked = json!("(masqué)");
    // The académie's auditeur reads both accounts (its académie holds the commune).
    let both = vec![(dan.clone(), dan_name.clone()), (mairie.clone(), mairie_name.clone())];
    assert_eq!(updaters(app, AUDITEUR, &w.convention).await, both, "{name}");
    // Fresnes' auditeur reads the commune's accounts only: the académie's agent is masked.
    let fresnes = vec![(masked.clone(), dan_name.clone()), (mairie.clone(), mairie_name.clone())];
    assert_eq!(updaters(app, FRESNES_AUDITEUR, &w.convention).await, fresnes, "{name}");
    // A DPO reads no account but its own: every other party's agent is masked, named.
    let none = vec![(masked.clone(), dan_name.clone()), (masked.clone(), mairie_name.clone())];
    for dpo in [DPO, FRESNES_DPO] {
        assert_eq!(updaters(app, dpo, &w.convention).await, none, "{name}: {dpo}");
    }
    // Nowhere in what a DPO reads (actors, summaries) is there an address but its own; its own
    // account's records give it, in their actor and summary.
    for (dpo, own) in [(DPO, "dpd@ac-creteil.fr"), (FRESNES_DPO, "dpd@fresnes.fr")] {
        let off = app.put("/api/v1/me/notification-preferences").acting_as(dpo).json(&json!({ "tickets": false }));
        assert_eq!(off.send().await.status, 200, "{name}: {dpo}");
        let read = walk(app, dpo, "", 50).await;
        assert!(read.iter().any(|r| r["action"] == "conventions.create"), "{name}: {dpo}: {read:?}");
        let text = serde_json::to_string(&read).unwrap();
        let others =
            [ADMIN, AUDITEUR, DPO, DSDEN_AUDITEUR, N2, CHEF, DAN, COORD, MAIRIE, FRESNES_DPO, FRESNES_AUDITEUR];
        for other in others.into_iter().filter(|o| *o != own) {
            assert!(!text.contains(other), "{name}: {dpo} reads {other}: {text}");
        }
        let created = read.iter().find(|r| r["action"] == "users.create").unwrap();
        assert_eq!(created["summary"]["email"], own, "{name}: {created}");
        let chose = read.iter().find(|r| r["action"] == "notifications.preferences").unwrap();
        assert_eq!(
            (&chose["actor"], &chose["summary"]["user"]),
            (&json!(format!("user:{own}")), &json!(own)),
            "{name}"
        );
    }
    // A summary's addresses follow the same rule: an operator's principal, a person's address.
    let commune = entcp::registry::resolve_org(store, "commune:94034").await.unwrap();
    let on_behalf = format!("cli:exploitant pour user:{DAN}");
    let summary = json!({ "recorded_by": on_behalf, "invitee": MAIRIE, "details": { "copy": [DAN] } });
    let mut tx = store.begin_write().await.unwrap();
    let target = entcp::audit::Target::new("probe", "P-1", Some(&commune.id));
    entcp::audit::record(&mut tx, store.backend(), on_behalf.as_str(), "tests.probe", &target, summary.clone(), t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let probe = |who: &'static str| async move {
        let records = walk(app, who, "&target_id=P-1", 10).await;
        assert_eq!(records.len(), 1, "{name}: {who}: {records:?}");
        records[0].clone()
    };
    let seen = probe(FRESNES_AUDITEUR).await;
    assert_eq!((&seen["actor"], &seen["actor_name"]), (&json!("cli:exploitant"), &dan_name), "{name}: {seen}");
    let expected = json!({ "recorded_by": "cli:exploitant", "invitee": MAIRIE, "details": { "copy": [masked] } });
    assert_eq!(seen["summary"], expected, "{name}: {seen}");
    let seen = probe(FRESNES_DPO).await;
    let expected = json!({ "recorded_by": "cli:exploitant", "invitee": masked, "details": { "copy": [masked] } });
    assert_eq!(seen["summary"], expected, "{name}: {seen}");
    let seen = probe(ADMIN).await;
    assert_eq!((&seen["actor"], &seen["summary"]), (&json!(on_behalf), &summary), "{name}: {seen}");
    // The auditeur reads its scope's accounts and its own, not the administrator's (no
    // organisation), who drafted the convention.
    let records = walk(app, AUDITEUR, &format!("&target_id={}", w.convention), 50).await;
    let created = records.iter().find(|r| r["action"] == "conventions.create").unwrap();
    assert_eq!(created["actor"], masked, "{name}: {created}");
    let chef = entcp::identity::get_user(store, CHEF).await.unwrap().unwrap();
    let chef_records = walk(app, AUDITEUR, &format!("&target_id={}", chef.id), 50).await;
    let chef_created = chef_records.iter().find(|r| r["action"] == "users.create").unwrap();
    assert_eq!(chef_created["summary"]["email"], CHEF, "{name}: {chef_created}");
    // An administrator reads every address, and the names beside them.
    let records = walk(app, ADMIN, &format!("&target_id={}", w.convention), 50).await;
    let created = records.iter().find(|r| r["action"] == "conventions.create").unwrap();
    assert_eq!(created["actor"], json!(format!("user:{ADMIN}")), "{name}: {created}");
    assert_eq!(updaters(app, ADMIN, &w.convention).await, both, "{name}");
}

backend_test!(the_actor_filter_answers_for_an_address_out_of_sight_as_for_one_that_never_acted);
async fn the_actor_filter_answers_for_an_address_out_of_sight_as_for_one_that_never_acted(db: common::TestDb) {
    let name = db.name;
    let w = world(db).await;
    let app = &w.app;
    retitle(app, DAN, &w.convention, "Convention ENT de l'école de Fresnes").await;
    let by = |who: &'static str, actor: String| {
        let path = format!("/api/v1/audit?target_id={}&actor={}", w.convention, actor.replace('@', "%40"));
        async move { app.get(&path).acting_as(who).send().await }
    };
    let nobody = "user:personne@ac-creteil.fr".to_string();
    // Who reads the DAN's account finds its record; so does an administrator.
    for who in [AUDITEUR, ADMIN] {
        let found = by(who, format!("user:{DAN}")).await;
        assert_eq!(found.status, 200, "{name}: {}", found.text);
        assert_eq!(found.body["items"][0]["action"], "conventions.update", "{name}: {who}: {}", found.text);
    }
    // Who reads the convention's records but not the account: the answer of an address that
    // never acted, byte for byte.
    for who in [DPO, FRESNES_DPO, FRESNES_AUDITEUR] {
        let never = by(who, nobody.clone()).await;
        assert_eq!((never.status, never.body["items"].as_array().map(Vec::len)), (200, Some(0)), "{name}: {who}");
        for actor in [format!("user:{DAN}"), format!("user:{ADMIN}")] {
            let hidden = by(who, actor.clone()).await;
            assert_eq!((hidden.status, &hidden.text), (never.status, &never.text), "{name}: {who} {actor}");
        }
        // Its records are there all the same, the actor masked.
        let all = walk(app, who, &format!("&target_id={}", w.convention), 50).await;
        assert!(all.iter().any(|r| r["action"] == "conventions.update" && r["actor"] == "(masqué)"), "{name}: {who}");
    }
}
