//! A bare code several organisations share (a SIREN both an EPCI and a syndicat mixte carry),
//! as each caller names it in a body, a query or a form: narrowed to what that caller reads.
//! Reading one, the code names it; reading none, the answer is word for word that of a code
//! naming nothing (`authz::resolve_readable`).

use crate::common;

use common::app::Client;
use common::fixtures::{luhn, new_org};
use common::{token_for, TestApp};
use entcp::kernel::roles::{OrgKind, Role};
use entcp::registry::Org;
use serde_json::{json, Value};

/// The sample annuaire (Val-de-Marne) and three shared SIRENs: `one` an EPCI of the
/// Val-de-Marne and a syndicat mixte of no département, `none` an EPCI and a syndicat mixte of
/// no département, `vendor` an éditeur of the Val-de-Marne and a hébergeur of none; `unknown`
/// a SIREN no organisation has. The DSDEN of the Val-de-Marne reads the first of `one` and
/// `vendor` only, and nothing of `none`.
struct Shared {
    app: TestApp,
    one: String,
    none: String,
    vendor: String,
    unknown: String,
    /// The EPCI of `one`, the éditeur of `vendor`.
    epci: Org,
    editeur: Org,
}

async fn shared(db: &common::TestDb) -> Shared {
    let store = &db.store;
    common::import_sample(store).await;
    let [one, none, vendor, unknown] = ["21000001", "21000002", "21000003", "21000004"].map(luhn);
    let epci = new_org(store, OrgKind::Epci, "CA du Val partagé", &one, Some("94")).await;
    registered_before_its_siren_was_unique(store, "Syndicat d'ailleurs", &one, "21000005").await;
    new_org(store, OrgKind::Epci, "CA lointaine", &none, None).await;
    registered_before_its_siren_was_unique(store, "Syndicat lointain", &none, "21000006").await;
    let editeur = new_org(store, OrgKind::Editeur, "Éditeur du Val", &vendor, Some("94")).await;
    new_org(store, OrgKind::Hebergeur, "Hébergeur d'ailleurs", &vendor, None).await;
    let app = TestApp::over(store).build().await;
    Shared { app, one, none, vendor, unknown, epci, editeur }
}

/// A syndicat mixte sharing `siren` with an EPCI, as the registry could hold one registered
/// before a public group's SIREN had to be its own: registered under a SIREN of its own
/// (`own`, eight digits), then given `siren`.
async fn registered_before_its_siren_was_unique(store: &entcp::store::Store, name: &str, siren: &str, own: &str) {
    let group = new_org(store, OrgKind::SyndicatMixte, name, &luhn(own), None).await;
    sqlx::query("UPDATE orgs SET code = $1, siren = $1 WHERE id = $2")
        .bind(siren)
        .bind(&group.id)
        .execute(store.pool())
        .await
        .unwrap();
}

impl Shared {
    async fn client(&self, email: &str, role: Role, org: &str) -> Client {
        self.app.client(&token_for(&self.app.store, email, role, Some(org)).await)
    }

    /// The body with `key` replaced by a neutral word: what the caller is told, apart from
    /// the key it sent.
    fn words(body: &str, key: &str) -> String {
        body.replace(key, "<clé>")
    }

    /// `send` with the code no organisation the caller reads has, then with the unknown code:
    /// the same status (`status`) and, apart from the key, the same body.
    async fn none_like_unknown<F, Fut>(&self, what: &str, status: u16, send: F)
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = common::Resp>,
    {
        let (shared, unknown) = (send(self.none.clone()).await, send(self.unknown.clone()).await);
        assert_eq!((shared.status, unknown.status), (status, status), "{} {what}: {}", self.app.backend, shared.text);
        assert_eq!(
            Self::words(&shared.text, &self.none),
            Self::words(&unknown.text, &self.unknown),
            "{} {what}: a code of organisations the caller cannot read answers as one naming nothing",
            self.app.backend
        );
    }
}

fn candidates_absent(resp: &common::Resp) -> bool {
    !resp.text.contains("syndicat_mixte:") && !resp.text.contains("hebergeur:")
}

backend_test!(a_groupement_coordinator_and_applicant_named_by_a_shared_code_are_the_one_the_caller_reads);
async fn a_groupement_coordinator_and_applicant_named_by_a_shared_code_are_the_one_the_caller_reads(
    db: common::TestDb,
) {
    let s = shared(&db).await;
    let coordinator = s.client("coord@val.fr", Role::Coordinateur, &s.epci.id).await;
    let open = |key: String| {
        let body = json!({
            "coordinator": key, "title": "Achat ENT", "object": "ENT des écoles",
            "application_deadline": "2026-12-31",
        });
        coordinator.post("/api/v1/groupements").json(&body).send()
    };
    let created = open(s.one.clone()).await;
    assert_eq!(created.status, 201, "{}: {}", s.app.backend, created.text);
    assert_eq!(created.body["coordinator"]["id"], json!(s.epci.id), "{}", s.app.backend);
    s.none_like_unknown("coordinator", 422, open).await;

    let collectivite = s.client("epci@val.fr", Role::Collectivite, &s.epci.id).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let prefill = |key: String| collectivite.get(format!("/api/v1/groupements/{id}/prefill?applicant={key}")).send();
    let own = prefill(s.one.clone()).await;
    assert_eq!(own.status, 200, "{}: {}", s.app.backend, own.text);
    assert_eq!(own.body["applicant"]["id"], json!(s.epci.id), "{}", s.app.backend);
    s.none_like_unknown("applicant", 422, prefill).await;
}

backend_test!(a_tenant_organisation_named_by_a_shared_code_is_the_one_the_caller_reads);
async fn a_tenant_organisation_named_by_a_shared_code_is_the_one_the_caller_reads(db: common::TestDb) {
    let s = shared(&db).await;
    let dan = s.client("dan@val.fr", Role::Dan, "dsden:94").await;
    let apply = |key: String| {
        let doc = json!({
            "apiVersion": "entcp.education.fr/v1",
            "kind": "EntTenant",
            "metadata": { "name": "partage" },
            "spec": { "organisation": key, "hostname": "partage.ent.example.fr", "bouquet": "socle-1d" }
        });
        dan.post("/api/v1/tenants").json(&doc).send()
    };
    // The EPCI it reads is named: refused for its kind, not for an ambiguity.
    let one = apply(s.one.clone()).await;
    assert_eq!(one.status, 422, "{}: {}", s.app.backend, one.text);
    let errors: Vec<Value> = one.body["errors"].as_array().cloned().unwrap_or_default();
    let message = errors.iter().find(|e| e["field"] == "spec.organisation").map(|e| e["message"].to_string());
    assert!(message.is_some_and(|m| m.contains(&s.epci.name)), "{}: {}", s.app.backend, one.text);
    assert!(candidates_absent(&one), "{}: {}", s.app.backend, one.text);
    s.none_like_unknown("spec.organisation", 422, apply).await;
}

backend_test!(a_support_contract_level_named_by_a_shared_code_is_the_one_the_caller_reads);
async fn a_support_contract_level_named_by_a_shared_code_is_the_one_the_caller_reads(db: common::TestDb) {
    let s = shared(&db).await;
    let dan = s.client("dan@val.fr", Role::Dan, "dsden:94").await;
    let dsden = entcp::registry::resolve_org(&s.app.store, "dsden:94").await.unwrap();
    let put = |key: String| dan.put("/api/v1/support/contracts/dsden:94").json(&json!({ "n3": key })).send();
    let set = put(s.vendor.clone()).await;
    assert_eq!(set.status, 204, "{}: {}", s.app.backend, set.text);
    let n3: Option<String> = sqlx::query_scalar("SELECT n3_org_id FROM support_contracts WHERE org_id = $1")
        .bind(&dsden.id)
        .fetch_one(s.app.store.pool())
        .await
        .unwrap();
    assert_eq!(n3.as_deref(), Some(s.editeur.id.as_str()), "{}: the éditeur it reads", s.app.backend);
    s.none_like_unknown("n3", 422, put).await;
}

backend_test!(a_role_granted_in_the_console_at_a_shared_code_is_at_the_one_the_dan_reads);
async fn a_role_granted_in_the_console_at_a_shared_code_is_at_the_one_the_dan_reads(db: common::TestDb) {
    let s = shared(&db).await;
    crate::console::person(&s.app.store, "dan@val.fr", Role::Dan, Some("dsden:94")).await;
    let session = crate::console::sign_in(&s.app, "dan@val.fr").await;
    let commune = entcp::registry::resolve_org(&s.app.store, "commune:94034").await.unwrap();
    let new = entcp::identity::NewUser {
        email: "agent@fresnes.fr".into(),
        display_name: "Agent".into(),
        org: Some(commune.id.clone()),
    };
    let agent = entcp::identity::create_user(&s.app.store, &common::admin(), new, common::t0()).await.unwrap();
    let path = format!("/utilisateurs/{}/roles", agent.id);
    let grant = |key: String| {
        let (app, session, path) = (&s.app, session.clone(), path.clone());
        async move { crate::console::post_form(app, &session, &path, &[("role", "collectivite"), ("org", &key)]).await }
    };
    // The code names the EPCI the DAN reads (the syndicat mixte elsewhere would be named as
    // such), where only an administrator grants a role.
    let granted = grant(s.one.clone()).await;
    assert_eq!(granted.status, 403, "{}: {}", s.app.backend, granted.text);
    assert!(granted.text.contains("dans un EPCI"), "{}: {}", s.app.backend, granted.text);
    let bindings =
        common::count(&s.app.store, "SELECT COUNT(*) FROM role_bindings WHERE user_id = $1", &[&agent.id]).await;
    assert_eq!(bindings, 0, "{}: nothing granted", s.app.backend);
    s.none_like_unknown("role", 422, grant).await;
    let refused = grant(s.none.clone()).await;
    assert!(
        refused.text.contains(&format!("aucune organisation « {} » dans votre périmètre", s.none)),
        "{}",
        refused.text
    );
}
