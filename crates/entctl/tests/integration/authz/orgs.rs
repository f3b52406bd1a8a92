//! Authorisation cases: Organisations, memberships, invitations and the annuaire import.

use super::*;

pub(super) const MEMBERS_WRITERS: &[Role] = &[Admin, Dan, Collectivite, Coordinateur];

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/orgs", EVERYONE, Target::None),
    ("POST", "/api/v1/orgs", &[Admin, Dan], Target::Departement),
    ("GET", "/api/v1/orgs/{key}", EVERYONE, Target::Org),
    ("PATCH", "/api/v1/orgs/{key}", &[Admin, Dan, Collectivite, ChefEtablissement], Target::Org),
    ("GET", "/api/v1/orgs/{key}/covers", EVERYONE, Target::Org),
    ("GET", "/api/v1/orgs/{key}/members", EVERYONE, Target::Group),
    ("PUT", "/api/v1/orgs/{key}/members/{commune}", MEMBERS_WRITERS, Target::Group),
    ("DELETE", "/api/v1/orgs/{key}/members/{commune}", MEMBERS_WRITERS, Target::Group),
    ("GET", "/api/v1/orgs/{key}/invitations", EVERYONE, Target::Group),
    ("POST", "/api/v1/orgs/{key}/invitations", MEMBERS_WRITERS, Target::Group),
    ("POST", "/api/v1/membership-invitations/{id}/accept", MEMBERS_WRITERS, Target::Invitation),
    ("POST", "/api/v1/membership-invitations/{id}/decline", MEMBERS_WRITERS, Target::Invitation),
    ("POST", "/api/v1/imports/annuaire", &[Admin, Dan], Target::None),
];

/// An invitation is answered for the commune (accept, decline) or for the group (decline).
pub(super) fn invitation_expected(path: &str, role: Role, side: Side) -> u16 {
    match (side, role) {
        (_, Admin) => 200,
        (Side::Out, _) => 404,
        (Side::In, Coordinateur) if path.ends_with("/accept") => 403,
        (Side::In, _) => 200,
    }
}

impl World {
    pub(super) async fn is_member(&self, group: &Org, commune: &Org) -> bool {
        queries::members_of_group(&self.store, &group.id).await.unwrap().iter().any(|(c, _)| c.id == commune.id)
    }

    pub(super) fn request(&self, method: &str, path: String, body: Option<Value>) -> Call {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        Call { method, path, body, csv: None, pdf: None, if_match: None }
    }
}

backend_test!(relationship_writes_check_every_organisation_they_touch);
/// Relationship writes name a second organisation (a commune joining a group, the académie a
/// row moves a school to, the N1 of a support contract, a tenant's organisation): each is
/// sent with that second organisation inside and outside the caller's scope.
pub(super) async fn relationship_writes_check_every_organisation_they_touch(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let group_in = w.group_in.clone();
    let members = |c: &Org| format!("/api/v1/orgs/{}/members/{}", group_in.id, c.code);

    // Membership: the commune must be the caller's to vouch for (a DAN of its académie).
    let (status, body) = w.send(Dan, w.request("PUT", members(&w.commune_out), Some(json!({})))).await;
    assert_eq!(status, 404, "{name}: {body}");
    assert!(!w.is_member(&group_in, &w.commune_out).await);
    let (status, body) = w.send(Dan, w.request("PUT", members(&w.commune_in), Some(json!({})))).await;
    assert_eq!(status, 200, "{name}: {body}");
    // Delegation through the group's own roles needs the commune's consent.
    let delegate = Some(json!({ "ent_delegated": true }));
    let (status, body) = w.send(Coordinateur, w.request("PUT", members(&w.commune_in), delegate.clone())).await;
    assert_eq!(status, 403, "{name}: {body}");
    let (status, _) = w.send(Coordinateur, w.request("PUT", members(&w.commune_out), delegate)).await;
    assert_eq!(status, 404, "{name}");
    set_member(&w.store, &admin(), &group_in, &w.commune_out, false, t0()).await.unwrap();
    let (status, _) = w.send(Dan, w.request("DELETE", members(&w.commune_out), None)).await;
    assert_eq!(status, 404, "{name}");
    assert!(w.is_member(&group_in, &w.commune_out).await, "{name}: removed out of scope");
    entcp::registry::manage::remove_member(&w.store, &admin(), &group_in, &w.commune_out, t0()).await.unwrap();

    // Import: a row may not move a school of another académie into the caller's (its UAI is
    // numbered in another département: the row is refused).
    let academie_in = w.etab_in.academie_code.clone().unwrap();
    let header = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie\n";
    for (etab, rejected, updated) in [(&w.etab_out, 1, 0), (&w.etab_in, 0, 1)] {
        let commune = w.commune_in.code.clone();
        let csv = format!("{header}{};Ecole renommée;Ecole;{commune};{academie_in}\n", etab.code);
        let call = Call { csv: Some(csv), ..w.request("POST", "/api/v1/imports/annuaire".into(), None) };
        let (status, body) = w.send(Dan, call).await;
        assert_eq!(status, 200, "{name}: {body}");
        let report: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["rejections"].as_array().map(Vec::len), Some(rejected), "{name} {}: {report}", etab.code);
        assert_eq!(report["out_of_scope"], 0, "{name} {}: {report}", etab.code);
        assert_eq!(report["etablissements"]["updated"], updated, "{name} {}: {report}", etab.code);
    }
    let etab_out = queries::get_org(&w.store, &w.etab_out.id).await.unwrap().unwrap();
    assert_eq!(etab_out.academie_code, w.etab_out.academie_code, "{name}: the school moved");

    // Support contract: the N1 organisation named gets the tickets.
    let academie = format!("/api/v1/support/contracts/academie:{academie_in}");
    for (n1, want) in [(&w.etab_out, 422), (&w.etab_in, 204)] {
        let (status, body) = w.send(Dan, w.request("PUT", academie.clone(), Some(json!({ "n1": n1.id })))).await;
        assert_eq!(status, want, "{name} n1 {}: {body}", n1.code);
    }

    // Tenants: a document naming one's own school may not rewrite another organisation's tenant.
    let foreign: entcp::tenants::EntTenant = serde_json::from_value(w.tenant_doc(&w.etab_out)).unwrap();
    let state = w.state.clone();
    entcp::tenants::apply(&state.tenants(), &admin(), &foreign, None).await.unwrap();
    // The slug of a tenant out of scope is only « taken » (slugs are unique): nothing of its owner.
    for (slug, want) in [(foreign.metadata.name.clone(), 409), ("propre-1".to_string(), 201)] {
        let mut doc = w.tenant_doc(&w.etab_in);
        doc["metadata"]["name"] = json!(slug);
        let (status, body) = w.send(Dan, w.request("POST", "/api/v1/tenants".into(), Some(doc))).await;
        assert_eq!(status, want, "{name} {slug}: {body}");
        assert!(!body.to_string().contains(&w.etab_out.code), "{name} {slug}: {body}");
    }

    // Role grants: administrators only, whatever the organisation.
    for etab in [&w.etab_in, &w.etab_out] {
        let body = Some(json!({ "role": "chef_etablissement", "org": etab.id }));
        let (status, _) = w.send(Dan, w.request("POST", format!("/api/v1/users/{}/roles", w.user_in), body)).await;
        assert_eq!(status, 403, "{name}");
    }
}

backend_test!(an_out_of_scope_organisation_is_refused_in_the_words_of_the_key_sent);
/// Whatever key names an organisation out of the caller's scope (its id, `kind:code`, its bare
/// code, a commune's INSEE code in a membership path), the 404 says what that key would say
/// naming nothing: neither the organisation's code nor its name.
async fn an_out_of_scope_organisation_is_refused_in_the_words_of_the_key_sent(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let etab = &w.etab_out;
    let words = |key: &str| json!({ "type": "urn:entcp:problem:not-found", "title": "Ressource introuvable", "status": 404, "detail": format!("aucune organisation « {key} »") });
    for key in [etab.id.clone(), etab.qualified_code(), etab.code.clone()] {
        for role in [Dan, Collectivite, ChefEtablissement, Usager] {
            let (status, body) = w.send(role, w.request("GET", format!("/api/v1/orgs/{key}"), None)).await;
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!((status, &body), (404, &words(&key)), "{name} {} {key}", role.as_str());
        }
    }
    // The commune of a membership path, by its INSEE code: in the caller's words, not `commune:…`.
    let path = format!("/api/v1/orgs/{}/members/{}", w.group_in.id, w.commune_out.code);
    let (status, body) = w.send(Dan, w.request("PUT", path, Some(json!({})))).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &body), (404, &words(&w.commune_out.code)), "{name}");
    let missing = format!("/api/v1/orgs/{}/members/99999", w.group_in.id);
    let (status, body) = w.send(Dan, w.request("PUT", missing, Some(json!({})))).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &body), (404, &words("99999")), "{name}: a missing INSEE code");
}

backend_test!(a_commune_leaves_a_group_only_by_its_own_or_the_groups_decision);
/// Detaching a commune from a group is the commune's decision (its collectivité, its DAN) or the
/// group's (its own collectivité), as joining is: an académie's coordinateur, whose scope
/// reaches both, is refused through the API and the console alike, and the commune stays.
async fn a_commune_leaves_a_group_only_by_its_own_or_the_groups_decision(db: crate::common::TestDb) {
    use crate::console::{post_form, sign_in, with_password};
    let w = world(&db).await;
    let name = db.name;
    let (group, commune) = (&w.group_in, &w.commune_in);
    assert!(w.is_member(group, commune).await, "{name}: the world's membership");
    let academie = format!("academie:{}", w.etab_in.academie_code.clone().unwrap());
    let api = format!("/api/v1/orgs/{}/members/{}", group.id, commune.code);
    let (app, path) = (&w.app, api.as_str());
    let delete = |token: String| async move { app.request(Method::DELETE, path).bearer(&token).send().await };
    let coordinator = "coordination@academie.test.fr";
    let refused = delete(token_for(&w.store, coordinator, Coordinateur, Some(&academie)).await).await;
    assert_eq!(refused.status, 403, "{name}: {}", refused.text);
    assert!(refused.text.contains("par sa décision ou celle du groupement"), "{name}: {}", refused.text);
    // The group's coordinateur invites communes; it does not detach them either.
    let (status, body) = w.send(Coordinateur, w.request("DELETE", api.clone(), None)).await;
    assert_eq!(status, 403, "{name}: {body}");
    // The console's removal form says the same, the commune kept.
    with_password(&w.store, coordinator).await;
    let session = sign_in(&w.app, coordinator).await;
    let form = format!("/organisations/{}/membres/retirer", group.id);
    let page = post_form(&w.app, &session, &form, &[("commune", commune.code.as_str())]).await;
    assert_eq!(page.status, 422, "{name}: {}", page.text);
    assert!(page.text.contains("par sa décision ou celle du groupement"), "{name}: {}", page.text);
    assert!(w.is_member(group, commune).await, "{name}: still a member");

    // The group's own collectivité detaches it.
    let own = delete(token_for(&w.store, "president@ca.test.fr", Collectivite, Some(&group.id)).await).await;
    assert_eq!(own.status, 204, "{name}: {}", own.text);
    assert!(!w.is_member(group, commune).await, "{name}: detached");
}

/// An annuaire import call with `csv` as its body.
fn import_call(w: &World, csv: String) -> Call {
    Call { csv: Some(csv), ..w.request("POST", "/api/v1/imports/annuaire".into(), None) }
}

/// Two elementary schools of one académie in two of its départements.
async fn schools_of_one_academie_in_two_departements(store: &Store) -> (Org, Org) {
    let sql = "SELECT a.id, b.id FROM orgs a JOIN orgs b \
               ON b.academie_code = a.academie_code AND b.departement_code <> a.departement_code \
               WHERE a.kind = 'etablissement' AND b.kind = 'etablissement' AND a.etab_type = $1 AND b.etab_type = $2 \
               ORDER BY a.code, b.code LIMIT 1";
    let ecole = EtabType::EcoleElementaire.as_str();
    let (a, b): (String, String) = sqlx::query_as(sql)
        .bind(ecole)
        .bind(ecole)
        .fetch_one(store.pool())
        .await
        .expect("an académie of two départements");
    (queries::get_org(store, &a).await.unwrap().unwrap(), queries::get_org(store, &b).await.unwrap().unwrap())
}

backend_test!(a_dan_at_a_dsden_imports_the_rows_of_its_departement_only);
/// A DAN bound at a DSDEN answers for its département, not for the whole académie: a row of
/// another département of that académie is out of its scope (counted, left untouched), its own
/// département's row is imported.
async fn a_dan_at_a_dsden_imports_the_rows_of_its_departement_only(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let (mine, theirs) = schools_of_one_academie_in_two_departements(&w.store).await;
    let departement = mine.departement_code.clone().unwrap();
    let token = token_for(&w.store, "dan.dsden@test.fr", Dan, Some(&format!("dsden:{departement}"))).await;
    let header = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_departement;Code_academie\n";
    let row = |e: &Org| {
        let (commune, dept) = (e.commune_code.clone().unwrap(), e.departement_code.clone().unwrap());
        format!("{};Ecole renommée;Ecole;{commune};{dept};{}\n", e.code, e.academie_code.clone().unwrap())
    };
    let csv = format!("{header}{}{}", row(&mine), row(&theirs));
    let resp =
        w.app.request(Method::POST, "/api/v1/imports/annuaire").bearer(&token).bytes("text/csv", csv).send().await;
    assert_eq!(resp.status, 200, "{name}: {}", resp.text);
    let report: Value = serde_json::from_str(&resp.text).unwrap();
    assert_eq!(report["out_of_scope"], 1, "{name}: {report}");
    assert_eq!(report["etablissements"]["updated"], 1, "{name}: {report}");
    let now = |e: &Org| {
        let id = e.id.clone();
        let store = w.store.clone();
        async move { queries::get_org(&store, &id).await.unwrap().unwrap().name }
    };
    assert_eq!(now(&mine).await, "Ecole renommée", "{name}: its own département's row");
    assert_eq!(now(&theirs).await, theirs.name, "{name}: another département's school renamed");
}

backend_test!(only_an_administrator_writes_a_region_through_the_import);
/// Régions are shared reference data: a DAN's row naming its région otherwise, or a région
/// unknown, is imported without it (the line reported, the région left as registered or absent);
/// an administrator's row renames it.
async fn only_an_administrator_writes_a_region_through_the_import(db: crate::common::TestDb) {
    let w = world(&db).await;
    let name = db.name;
    let e = &w.etab_in;
    let code = e.region_code.clone().expect("the school has a région");
    let registered = region_name(&w.store, &code).await;
    let header = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie;\
                  Code_region;Libelle_region\n";
    let (commune, academie) = (e.commune_code.clone().unwrap(), e.academie_code.clone().unwrap());
    let csv = |region: &str, label: &str| {
        format!("{header}{};Ecole renommée;Ecole;{commune};{academie};{region};{label}\n", e.code)
    };
    for (region, label, said) in [
        (code.as_str(), "Région piratée", format!("région {code} « Région piratée »")),
        ("99", "Région inventée", "région 99 inconnue".into()),
    ] {
        let (status, body) = w.send(Dan, import_call(&w, csv(region, label))).await;
        assert_eq!(status, 200, "{name}: {body}");
        let report: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["rejected"], 0, "{name}: {report}");
        let warnings = report["warnings"].as_array().unwrap();
        let warned = warnings.iter().any(|i| i["line"] == 2 && i["reason"].as_str().unwrap().contains(&said));
        assert!(warned, "{name} {region}: {report}");
        assert_eq!(region_name(&w.store, &code).await, registered, "{name}: a DAN renamed the région");
    }
    assert!(queries::get_by_code(&w.store, OrgKind::Region, "99").await.unwrap().is_none(), "{name}: région created");
    assert_eq!(queries::get_org(&w.store, &e.id).await.unwrap().unwrap().name, "Ecole renommée", "{name}");
    // An administrator's row renames it.
    let (status, body) = w.send(Admin, import_call(&w, csv(&code, "Région renommée"))).await;
    assert_eq!(status, 200, "{name}: {body}");
    assert_eq!(region_name(&w.store, &code).await, "Région renommée", "{name}: {body}");
}

async fn region_name(store: &Store, code: &str) -> String {
    queries::get_by_code(store, OrgKind::Region, code).await.unwrap().unwrap().name
}
