//! The RGPD logs and the audit trail: a breach's or a request's audit records are read as its
//! register is (the académie's DPO does not read a commune's, an auditeur none), in the query
//! before paging; and each controller numbers its breaches and requests in its own series.

use crate::common;

use common::app::Client;
use common::{t0, token_for, TestApp};
use entcp::audit::{self, Target};
use entcp::clock::FixedClock;
use entcp::identity::authz::{RGPD_LOGS_READ, RGPD_READ};
use entcp::kernel::roles::Role;
use entcp::store::Store;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

const SCHOOL: &str = "0940198E";
const COMMUNE: &str = "commune:94034";

struct World {
    app: TestApp,
    store: Store,
}

impl World {
    async fn new(store: &Store) -> World {
        common::import_sample(store).await;
        let app = TestApp::over(store).clock(Arc::new(FixedClock::new(t0()))).build().await;
        World { app, store: store.clone() }
    }

    async fn client(&self, email: &str, role: Role, org: Option<&str>) -> Client {
        self.app.client(&token_for(&self.store, email, role, org).await)
    }

    async fn org_id(&self, key: &str) -> String {
        entcp::registry::resolve_org(&self.store, key).await.unwrap().id
    }
}

fn breach(title: &str) -> Value {
    json!({
        "title": title, "facts": "Liste de classe envoyée à un tiers", "aware_at": "2026-08-31T08:00:00Z",
        "data_categories": ["identité"], "people_approx": 25, "records_approx": 25,
        "consequences": "faibles", "measures": "demande de suppression"
    })
}

fn request(requester: &str) -> Value {
    json!({ "kind": "erasure", "requester": requester, "received_on": "2026-08-31" })
}

/// Records a breach (then edits it) and a request in the log of `org` as `who`.
async fn record_entries(who: &Client, org: &str, title: &str) {
    let url = format!("/api/v1/rgpd/breaches/{org}");
    let created = who.post(url.as_str()).json(&breach(title)).send().await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let mut edited = breach(&format!("{title} (corrigé)"));
    edited["measures"] = json!("mots de passe changés");
    let updated = who.put(format!("{url}/{id}")).header("if-match", "\"1\"").json(&edited).send().await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let asked = who.post(format!("/api/v1/rgpd/requests/{org}")).json(&request(title)).send().await;
    assert_eq!(asked.status, 201, "{}", asked.body);
}

/// Every record `who` reads of the log with the filters `query` (`&target_kind=…`), walking the pages of `limit` records
/// with their cursors: each page but the last is full, the last gives no cursor.
async fn walk(who: &Client, query: &str, limit: usize) -> Vec<Value> {
    common::audit_walk(query, limit, |url| who.get(url)).await
}

/// The (action, organisation) of each record.
fn seen(records: &[Value]) -> BTreeSet<(String, String)> {
    records
        .iter()
        .map(|r| (r["action"].as_str().unwrap().to_string(), r["scope_org_id"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn pairs(actions: &[&str], org: &str) -> BTreeSet<(String, String)> {
    actions.iter().map(|a| (a.to_string(), org.to_string())).collect()
}

const LOG_ACTIONS: [&str; 3] = ["rgpd.breach.create", "rgpd.breach.update", "rgpd.request.create"];

backend_test!(a_commune_s_breach_and_request_audit_records_are_read_as_its_registers_are);
async fn a_commune_s_breach_and_request_audit_records_are_read_as_its_registers_are(db: common::TestDb) {
    let name = db.name;
    let w = World::new(&db.store).await;
    let (commune, school) = (w.org_id(COMMUNE).await, w.org_id(SCHOOL).await);
    let academie_dpo = w.client("dpd@ac-creteil.fr", Role::Dpo, Some("academie:24")).await;
    let auditeur = w.client("audit@ac-creteil.fr", Role::Auditeur, Some("academie:24")).await;
    let mairie = w.client("ent@fresnes.fr", Role::Collectivite, Some(COMMUNE)).await;
    let commune_dpo = w.client("dpd@fresnes.fr", Role::Dpo, Some(COMMUNE)).await;
    let admin = w.client("admin@test.fr", Role::Admin, None).await;

    // The académie's DPO keeps its school's logs; the commune keeps its own, and its contacts.
    record_entries(&academie_dpo, SCHOOL, "Courriel de l'école mal adressé").await;
    for round in 0..3 {
        record_entries(&mairie, COMMUNE, &format!("Fichier périscolaire publié {round}")).await;
    }
    let profile = json!({ "head_name": "Le maire", "head_title": "", "address": "", "phone": "", "email": "",
        "dpo_name": "DPD de Fresnes", "dpo_email": "dpd@fresnes.fr", "dpo_phone": "", "dpo_address": "",
        "representative": "", "security_measures": "" });
    let saved = mairie.put(format!("/api/v1/rgpd/profiles/{COMMUNE}")).json(&profile).send().await;
    assert_eq!(saved.status, 200, "{name}: {}", saved.body);
    // A record about the commune of a kind without a narrower register: read by its whole scope.
    let mut tx = db.store.begin_write().await.unwrap();
    let probe = Target::new("probe", "P-1", Some(&commune));
    audit::record(&mut tx, db.store.backend(), "system:test", "tests.probe", &probe, json!({}), t0()).await.unwrap();
    tx.commit().await.unwrap();

    // The register answers 404 to the académie's DPO; its audit records say nothing more.
    let register = academie_dpo.get(format!("/api/v1/rgpd/breaches/{COMMUNE}")).send().await;
    assert_eq!(register.status, 404, "{name}");
    for kind in ["rgpd_breach", "rgpd_request"] {
        let records = walk(&academie_dpo, &format!("&target_kind={kind}"), 1).await;
        assert!(records.iter().all(|r| r["scope_org_id"] == json!(school)), "{name}: {kind}: {records:?}");
        assert!(!records.is_empty(), "{name}: the académie's DPO reads its school's {kind} records");
    }
    // Its whole log, page by page: the school's entries, the commune's contacts (it reads the
    // commune's register) and the probe, not one of the commune's breach or request records.
    let all = seen(&walk(&academie_dpo, "", 2).await);
    let mut expected = pairs(&LOG_ACTIONS, &school);
    expected.extend(pairs(&["rgpd.profile.update", "tests.probe"], &commune));
    let academie_sees: BTreeSet<_> = all
        .iter()
        .filter(|(action, _)| {
            !action.starts_with("users.") && !action.starts_with("roles.") && !action.starts_with("tokens.")
        })
        .filter(|(_, org)| *org == commune || *org == school)
        .cloned()
        .collect();
    assert_eq!(academie_sees, expected, "{name}");
    // A page of records it cannot read is neither an empty page nor a cursor past them.
    let first = academie_dpo.get("/api/v1/audit?target_kind=rgpd_breach&limit=2").send().await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2, "{name}: {}", first.body);
    assert_eq!(first.body["next_cursor"], Value::Null, "{name}: {}", first.body);

    // An auditeur reads no RGPD register, nor their audit records; the rest of its scope, yes.
    let audited = seen(&walk(&auditeur, "", 50).await);
    assert!(audited.contains(&("tests.probe".to_string(), commune.clone())), "{name}: {audited:?}");
    assert!(audited.iter().all(|(action, _)| !action.starts_with("rgpd.")), "{name}: {audited:?}");

    // The commune's DPO and an administrator read the commune's records, the changes included.
    let commune_sees = seen(&walk(&commune_dpo, "", 3).await);
    for pair in pairs(&LOG_ACTIONS, &commune).into_iter().chain(pairs(&["rgpd.profile.update"], &commune)) {
        assert!(commune_sees.contains(&pair), "{name}: {pair:?} in {commune_sees:?}");
    }
    assert!(commune_sees.iter().all(|(_, org)| *org != school), "{name}: {commune_sees:?}");
    let updates = walk(&commune_dpo, "&target_kind=rgpd_breach", 10).await;
    let changes = updates.iter().find(|r| r["action"] == "rgpd.breach.update").unwrap();
    assert!(changes["summary"]["changes"]["measures"]["before"].is_string(), "{name}: {changes}");
    let everything = seen(&walk(&admin, "&target_kind=rgpd_breach", 4).await);
    assert_eq!(
        everything,
        pairs(&LOG_ACTIONS[..2], &school).union(&pairs(&LOG_ACTIONS[..2], &commune)).cloned().collect()
    );
    // The commune's controller keeps its logs but reads no audit trail (its role does not).
    assert_eq!(mairie.get("/api/v1/audit").send().await.status, 403, "{name}");
}

/// Whether `org_id` is among the organisations `cond` (over `orgs`) selects.
async fn selects(store: &Store, cond: &Option<entcp::store::Condition>, org_id: &str) -> bool {
    let Some(cond) = cond else { return true };
    let mut cond = cond.clone();
    cond.push("id = ?", &[org_id]);
    let sql = format!("SELECT COUNT(*) FROM orgs WHERE {}", cond.sql());
    let row = cond.bind(sqlx::query(&sql)).fetch_one(store.pool()).await.unwrap();
    sqlx::Row::get::<i64, _>(&row, 0) > 0
}

backend_test!(the_audit_s_rgpd_condition_selects_the_organisations_whose_registers_each_role_reaches);
async fn the_audit_s_rgpd_condition_selects_the_organisations_whose_registers_each_role_reaches(db: common::TestDb) {
    let name = db.name;
    World::new(&db.store).await;
    let actor = |email: &'static str, role: Role, org: Option<&'static str>| {
        let store = db.store.clone();
        async move {
            token_for(&store, email, role, org).await;
            let user = entcp::identity::get_user(&store, email).await.unwrap().unwrap();
            let bindings = entcp::identity::bindings_of(&store, &user.id).await.unwrap();
            entcp::identity::Actor { user_id: Some(user.id), name: format!("user:{email}"), bindings }
        }
    };
    let actors = [
        actor("dpd@ac-creteil.fr", Role::Dpo, Some("academie:24")).await,
        actor("dpd@fresnes.fr", Role::Dpo, Some(COMMUNE)).await,
        actor("dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await,
        actor("ent@fresnes.fr", Role::Collectivite, Some(COMMUNE)).await,
        actor("ce@ecole.fr", Role::ChefEtablissement, Some(SCHOOL)).await,
        actor("audit@ac-creteil.fr", Role::Auditeur, Some("academie:24")).await,
    ];
    let orgs: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM orgs WHERE kind <> 'etablissement' OR code IN ('0940198E', '0940176F') OR id IN \
         (SELECT id FROM orgs WHERE kind = 'etablissement' ORDER BY id LIMIT 20)",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    let clock = Arc::new(FixedClock::new(t0()));
    let state = common::app::app_state(db.store.clone(), entcp::config::Config::default(), clock).rgpd();
    let mut reached = 0;
    for actor in &actors {
        for action in [&RGPD_READ, &RGPD_LOGS_READ] {
            let cond = entcp::rgpd::readable_condition(actor, action);
            for id in &orgs {
                let org = entcp::registry::resolve_org(&db.store, id).await.unwrap();
                let allowed = entcp::rgpd::authorize(&state, actor, action, &org).await.is_ok();
                reached += usize::from(allowed);
                assert_eq!(
                    selects(&db.store, &cond, id).await,
                    allowed,
                    "{name}: {} {} {}",
                    actor.name,
                    action.name,
                    org.code
                );
            }
        }
    }
    assert!(reached > actors.len(), "{name}: the roles reach some registers ({reached})");
}

race_test!(each_controller_numbers_its_breaches_and_requests_from_one_in_its_own_series);
async fn each_controller_numbers_its_breaches_and_requests_from_one_in_its_own_series(db: common::TestDb) {
    let name = db.name;
    let w = World::new(&db.store).await;
    let academie_dpo = w.client("dpd@ac-creteil.fr", Role::Dpo, Some("academie:24")).await;
    let mairie = w.client("ent@fresnes.fr", Role::Collectivite, Some(COMMUNE)).await;
    // Both controllers record at once, several entries each.
    let sends = (0..4).flat_map(|n| {
        [(&academie_dpo, SCHOOL), (&mairie, COMMUNE)].map(|(who, org)| async move {
            let b = who.post(format!("/api/v1/rgpd/breaches/{org}")).json(&breach(&format!("Fuite {n}"))).send().await;
            let r = who.post(format!("/api/v1/rgpd/requests/{org}")).json(&request(&format!("R. {n}"))).send().await;
            (b.status, r.status)
        })
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == (201, 201)), "{name}: {statuses:?}");
    for (log, prefix) in [("breaches", "VIOL"), ("requests", "DEM")] {
        let series: Vec<String> = (1..=4).map(|n| format!("{prefix}-2026-{n:06}")).collect();
        for (who, org) in [(&academie_dpo, SCHOOL), (&mairie, COMMUNE)] {
            let listed = who.get(format!("/api/v1/rgpd/{log}/{org}")).send().await;
            let items = listed.body.as_array().or(listed.body["items"].as_array()).unwrap().clone();
            let mut references: Vec<String> =
                items.iter().map(|e| e["reference"].as_str().unwrap().to_string()).collect();
            references.sort();
            assert_eq!(references, series, "{name}: {org} {log}");
            // The reference names the entry within its controller's log.
            let entry = items.iter().find(|e| e["reference"] == json!(series[0])).unwrap().clone();
            let body = match log {
                "breaches" => breach(entry["title"].as_str().unwrap()),
                _ => request(entry["requester"].as_str().unwrap()),
            };
            let path = format!("/api/v1/rgpd/{log}/{org}/{}", series[0]);
            let first = who.put(path).header("if-match", "\"1\"").json(&body).send().await;
            assert_eq!(first.status, 200, "{name}: {}", first.body);
            assert_eq!(first.body["id"], entry["id"], "{name}: {}", first.body);
            assert_eq!(first.body["org_id"], json!(w.org_id(org).await), "{name}: {}", first.body);
        }
    }
}
