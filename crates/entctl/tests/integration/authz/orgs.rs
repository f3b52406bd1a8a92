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

    // Import: a row may not move a school of another académie into the caller's.
    let academie_in = w.etab_in.academie_code.clone().unwrap();
    let header = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie\n";
    for (etab, out_of_scope, updated) in [(&w.etab_out, 1, 0), (&w.etab_in, 0, 1)] {
        let commune = w.commune_in.code.clone();
        let csv = format!("{header}{};Ecole renommée;Ecole;{commune};{academie_in}\n", etab.code);
        let call = Call { csv: Some(csv), ..w.request("POST", "/api/v1/imports/annuaire".into(), None) };
        let (status, body) = w.send(Dan, call).await;
        assert_eq!(status, 200, "{name}: {body}");
        let report: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["out_of_scope"], out_of_scope, "{name} {}: {report}", etab.code);
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
    let state = crate::common::app::app_state(w.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    entcp::tenants::apply(&state.tenants(), &admin(), &foreign, None).await.unwrap();
    for (slug, want) in [(foreign.metadata.name.clone(), 404), ("propre-1".to_string(), 201)] {
        let mut doc = w.tenant_doc(&w.etab_in);
        doc["metadata"]["name"] = json!(slug);
        let (status, body) = w.send(Dan, w.request("POST", "/api/v1/tenants".into(), Some(doc))).await;
        assert_eq!(status, want, "{name} {slug}: {body}");
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
