//! Authorisation cases: Conventions and their models.

use super::*;

/// The roles that work on conventions (signatories, writers, DPO, auditeur); not users nor support staff.
pub(super) const CONVENTION_READERS: &[Role] =
    &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2, Dpo, Auditeur];
pub(super) const CONVENTION_WRITERS: &[Role] = &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur];
pub(super) const CONVENTION_SIGNERS: &[Role] = &[Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2];

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/convention-models", EVERYONE, Target::None),
    ("GET", "/api/v1/conventions", CONVENTION_READERS, Target::None),
    ("POST", "/api/v1/conventions", CONVENTION_WRITERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}", CONVENTION_READERS, Target::Convention),
    ("PATCH", "/api/v1/conventions/{id}", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/submit", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/visa", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/sign", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/refuse", CONVENTION_SIGNERS, Target::Convention),
    // A signature given by mistake is withdrawn by a platform administrator only.
    ("POST", "/api/v1/conventions/{id}/signatures/{party}/withdraw", &[Admin], Target::Convention),
    ("POST", "/api/v1/conventions/{id}/terminate", CONVENTION_WRITERS, Target::Convention),
    // Opposing the renewal, depositing a signed copy: what binds a party, by who signs for it.
    ("POST", "/api/v1/conventions/{id}/non-renewal", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/amend", CONVENTION_WRITERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}/document", CONVENTION_READERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}/signed-document", CONVENTION_READERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/signed-copies", CONVENTION_SIGNERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}/signed-copies/{file_id}", CONVENTION_READERS, Target::Convention),
];

/// The routes that write a convention (under `conventions.write`).
const CONVENTION_WRITES: &[(&str, &str)] = &[
    ("POST", "/api/v1/conventions"),
    ("PATCH", "/api/v1/conventions/{id}"),
    ("POST", "/api/v1/conventions/{id}/submit"),
    ("POST", "/api/v1/conventions/{id}/terminate"),
    ("POST", "/api/v1/conventions/{id}/amend"),
];

/// Roles bound to an organisation that is party to the test conventions.
pub(super) fn is_party(role: Role) -> bool {
    !matches!(role, SupportN3 | Coordinateur)
}

pub(super) fn json_of_new(new: &entcp::conventions::workflow::NewConvention) -> Value {
    let parties: serde_json::Map<String, Value> = new
        .parties
        .iter()
        .map(|(k, v)| match v {
            entcp::conventions::workflow::PartyInput::One(o) => (k.clone(), json!(o)),
            entcp::conventions::workflow::PartyInput::Many(os) => (k.clone(), json!(os)),
            entcp::conventions::workflow::PartyInput::Detailed(d) => (k.clone(), json!(d)),
        })
        .collect();
    json!({ "model": new.model, "parties": parties, "start_date": new.start_date, "end_date": new.end_date,
        "backdate_reason": new.backdate_reason })
}

/// What a party member gets from the convention routes, the workflow's own rules included.
pub(super) fn convention_success(method: &str, path: &str, role: Role) -> u16 {
    let signer = matches!(role, Dan | Collectivite | ChefEtablissement);
    // The test school is an école: its head signs its convention but writes none of it (no
    // legal personality), whatever the route would answer next.
    if role == ChefEtablissement && CONVENTION_WRITES.contains(&(method, path)) {
        return 403;
    }
    match (method, path) {
        ("POST", "/api/v1/conventions") | ("POST", "/api/v1/conventions/{id}/amend") => 201,
        // The premier-degré model asks no visa: its writers are told so (409); a party that
        // neither writes it nor could give a visa on it (the école's head, a support N2) is
        // refused for its role first, whatever the state.
        ("POST", "/api/v1/conventions/{id}/visa") if matches!(role, Dan | Collectivite) => 409,
        ("POST", "/api/v1/conventions/{id}/visa") => 403,
        // A signed copy is deposited by who signs for a party: the école's head too, not a
        // support N2, whatever the state.
        ("POST", "/api/v1/conventions/{id}/signed-copies") if !signer => 403,
        // The renewal is opposed by a party's representative, who signs for it: not a support N2,
        // nor the école's head (an école is no legal person), whatever the state and the model.
        ("POST", "/api/v1/conventions/{id}/non-renewal") if !signer || role == ChefEtablissement => 403,
        // The premier-degré model is not renewed tacitly: nothing to oppose.
        ("POST", "/api/v1/conventions/{id}/non-renewal") => 422,
        ("POST", "/api/v1/conventions/{id}/sign") | ("POST", "/api/v1/conventions/{id}/refuse") if !signer => 403,
        _ => 200,
    }
}

backend_test!(a_party_the_caller_may_not_read_answers_as_a_missing_one_and_is_never_described);
async fn a_party_the_caller_may_not_read_answers_as_a_missing_one_and_is_never_described(db: crate::common::TestDb) {
    let world = world(&db).await;
    let academie_of = |o: &Org| format!("academie:{}", o.academie_code.clone().unwrap());
    let (etab_in, etab_out) = (&world.etab_in, &world.etab_out);
    // The parties (académie, collectivité, établissement) the DAN of the académie in scope names,
    // one of them (the key sent) an organisation of another académie; what both answers are.
    let cases = [
        // A school elsewhere as the collectivité (the wrong kind), by code and by id.
        ([academie_of(etab_in), etab_out.code.clone(), etab_in.id.clone()], etab_out.code.clone(), 422),
        ([academie_of(etab_in), etab_out.id.clone(), etab_in.id.clone()], etab_out.id.clone(), 422),
        // A school elsewhere as the établissement (the right kind, out of the académie's scope).
        ([academie_of(etab_in), world.commune_in.id.clone(), etab_out.code.clone()], etab_out.code.clone(), 422),
        // Only organisations elsewhere: the DAN is bound to none of the parties it names.
        ([academie_of(etab_out), world.commune_out.id.clone(), etab_out.code.clone()], etab_out.code.clone(), 403),
    ];
    let post = |parties: &[String]| Call {
        method: Method::POST,
        path: "/api/v1/conventions".into(),
        body: Some(json!({
            "model": "tripartite-premier-degre",
            "parties": { "academie": parties[0], "collectivite": parties[1], "etablissement": parties[2] },
            "start_date": world.next_start(false),
        })),
        csv: None,
        pdf: None,
        if_match: None,
    };
    for (parties, sent, want) in cases {
        let missing: Vec<String> =
            parties.iter().map(|p| if *p == sent { MISSING.to_string() } else { p.clone() }).collect();
        let (out_status, out_body) = world.send(Dan, post(&parties)).await;
        let (missing_status, missing_body) = world.send(Dan, post(&missing)).await;
        assert_eq!((out_status, missing_status), (want, want), "{}: {out_body} / {missing_body}", db.name);
        assert_eq!(
            words(&out_body, std::slice::from_ref(&sent)),
            words(&missing_body, &[]),
            "{}: {parties:?}: out of scope and missing answer alike",
            db.name
        );
        for secret in [&etab_out.name, &world.commune_out.name] {
            assert!(!out_body.contains(secret.as_str()), "{}: {secret} revealed: {out_body}", db.name);
        }
    }
    // The usual parties across scopes still make a convention: a commune names its académie.
    let usual = [academie_of(etab_in), world.commune_in.id.clone(), etab_in.id.clone()];
    let (status, body) = world.send(Collectivite, post(&usual)).await;
    assert_eq!(status, 201, "{}: {body}", db.name);
}

backend_test!(an_unreadable_party_fails_beside_the_other_errors_as_a_missing_one_does);
/// With an error elsewhere in the body (an end before the start), a party the caller may not
/// read (a school of another académie, the right kind) fails in the same round as a key naming
/// nothing: as many errors, in the same words; their number tells nothing either.
async fn an_unreadable_party_fails_beside_the_other_errors_as_a_missing_one_does(db: crate::common::TestDb) {
    let world = world(&db).await;
    let academie = format!("academie:{}", world.etab_in.academie_code.clone().unwrap());
    let start = world.next_start(false);
    let year: i32 = start[..4].parse().unwrap();
    let post = |school: &str| Call {
        method: Method::POST,
        path: "/api/v1/conventions".into(),
        body: Some(json!({
            "model": "tripartite-premier-degre",
            "parties": { "academie": academie, "collectivite": world.commune_in.id, "etablissement": school },
            "start_date": start,
            "end_date": format!("{}-12-31", year - 1),
        })),
        csv: None,
        pdf: None,
        if_match: None,
    };
    let sent = world.etab_out.code.clone();
    let (out_status, out_body) = world.send(Dan, post(&sent)).await;
    let (missing_status, missing_body) = world.send(Dan, post(MISSING)).await;
    assert_eq!((out_status, missing_status), (422, 422), "{}: {out_body} / {missing_body}", db.name);
    let (out, missing) = (words(&out_body, std::slice::from_ref(&sent)), words(&missing_body, &[]));
    let fields = |body: &Value| -> Vec<String> {
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(fields(&missing), ["parties.etablissement", "end_date"], "{}: {missing_body}", db.name);
    assert_eq!(out, missing, "{}: the unreadable party and the missing one answer alike", db.name);
    assert!(!out_body.contains(world.etab_out.name.as_str()), "{}: {out_body}", db.name);
}

backend_test!(a_groupement_convention_is_never_drafted_nor_edited_by_naming_its_parties);
/// A groupement's convention constitutive covers no school, so no school anchors its parties in
/// the caller's scope: it is drafted by the groupement's flow only. Naming another académie and
/// its commune as parties answers, word for word, as naming organisations that do not exist.
async fn a_groupement_convention_is_never_drafted_nor_edited_by_naming_its_parties(db: crate::common::TestDb) {
    let world = world(&db).await;
    let academie_of = |o: &Org| format!("academie:{}", o.academie_code.clone().unwrap());
    let (academie_in, academie_out) = (academie_of(&world.etab_in), academie_of(&world.etab_out));
    let parties = |coordinator: &str, other: &str| json!({ "coordinateur": coordinator, "membre": [world.commune_in.id.clone(), other] });
    let start = world.next_start(false);
    let post = |coordinator: &str, other: &str| Call {
        method: Method::POST,
        path: "/api/v1/conventions".into(),
        body: Some(json!({
            "model": "groupement-de-commandes", "parties": parties(coordinator, other), "start_date": start,
        })),
        csv: None,
        pdf: None,
        if_match: None,
    };
    let groupement_conventions = || {
        crate::common::count(
            &world.store,
            "SELECT COUNT(*) FROM conventions WHERE model_id = 'groupement-de-commandes'",
            &[],
        )
    };
    // The collectivité of the commune in scope names the other académie and its commune.
    let sent = [academie_out.clone(), world.commune_out.id.clone()];
    let (out_status, out_body) = world.send(Collectivite, post(&sent[0], &sent[1])).await;
    let (missing_status, missing_body) = world.send(Collectivite, post(MISSING, MISSING)).await;
    assert_eq!((out_status, missing_status), (422, 422), "{}: {out_body} / {missing_body}", db.name);
    assert_eq!(words(&out_body, &sent), words(&missing_body, &[]), "{}: out of scope and missing alike", db.name);
    assert!(out_body.contains("\"model\""), "{}: refused on the model: {out_body}", db.name);
    assert!(!out_body.contains(world.commune_out.name.as_str()), "{}: {out_body}", db.name);
    // In scope, and for an administrator too: the convention constitutive comes from the groupement.
    for role in [Dan, Admin] {
        let (status, body) = world.send(role, post(&academie_in, &world.commune_in.id)).await;
        assert_eq!(status, 422, "{} {}: {body}", db.name, role.as_str());
    }
    assert_eq!(groupement_conventions().await, 0, "{}: nothing drafted", db.name);

    // The groupement's flow drafts one (the académie in scope, the commune its member): its
    // member may not name other parties on it either.
    let body = json!({ "model": "groupement-de-commandes", "start_date": start,
        "parties": { "coordinateur": academie_in, "membre": [world.commune_in.id] } });
    let id = crate::common::fixtures::constitutive(&world.store, body).await;
    let version: i64 = sqlx::query_scalar("SELECT version FROM conventions WHERE id = $1")
        .bind(&id)
        .fetch_one(world.store.pool())
        .await
        .unwrap();
    let patch = Call {
        method: Method::PATCH,
        path: format!("/api/v1/conventions/{id}"),
        body: Some(json!({ "parties": parties(&academie_out, &world.commune_out.id) })),
        csv: None,
        pdf: None,
        if_match: Some(version),
    };
    let (status, body) = world.send(Collectivite, patch).await;
    assert_eq!(status, 422, "{}: {body}", db.name);
    assert!(body.contains("\"parties\"") && !body.contains(world.commune_out.name.as_str()), "{}: {body}", db.name);
    let named = crate::common::count(
        &world.store,
        "SELECT COUNT(*) FROM convention_parties WHERE convention_id = $1",
        &[id.as_str()],
    )
    .await;
    assert_eq!(named, 2, "{}: the parties are unchanged", db.name);
}

backend_test!(relationship_writes_on_a_convention_stay_with_the_party_they_commit);
/// Relationship writes on a convention: what commits a party (its signatory) is written by that
/// party, or by whoever leads the convention; a groupement's convention constitutive is led by
/// its coordinator. Its member (the commune in scope, beside a commune of another académie)
/// designates its own signatory only: the coordinator's, the other member's, the title, the
/// dates, the parameters, the submission are the coordinator's (403), the terms the
/// groupement sets no one's through the convention (422). On an ENT convention the commune does
/// not name the académie's signatory; the DAN names every party's.
async fn relationship_writes_on_a_convention_stay_with_the_party_they_commit(db: crate::common::TestDb) {
    let world = world(&db).await;
    let name = db.name;
    let body = json!({ "model": "groupement-de-commandes", "start_date": world.next_start(false),
        "parties": { "coordinateur": world.group_in.id, "membre": [world.commune_in.id, world.commune_out.id] } });
    let id = crate::common::fixtures::constitutive(&world.store, body).await;
    let version = || async {
        sqlx::query_scalar::<_, i64>("SELECT version FROM conventions WHERE id = $1")
            .bind(&id)
            .fetch_one(world.store.pool())
            .await
            .unwrap()
    };
    let call = |method: Method, path: &str, body: Value, if_match: Option<i64>| Call {
        method,
        path: format!("/api/v1/conventions/{id}{path}"),
        body: Some(body),
        csv: None,
        pdf: None,
        if_match,
    };
    let signatory = json!({ "name": "M. Paul Martin", "quality": "maire" });
    let own = format!("membre:{}", world.commune_in.id);
    let other = format!("membre:{}", world.commune_out.id);
    let cases: Vec<(Role, Value, u16)> = vec![
        (Collectivite, json!({ "title": "Autre titre" }), 403),
        (Collectivite, json!({ "parameters": { "part_coordinateur": 60, "part_membres": 40 } }), 403),
        (Collectivite, json!({ "end_date": "2040-12-31" }), 403),
        (Collectivite, json!({ "signatories": { "coordinateur": signatory } }), 403),
        (Collectivite, json!({ "signatories": { other.clone(): signatory } }), 403),
        (Coordinateur, json!({ "parameters": { "part_coordinateur": 60, "part_membres": 40 } }), 422),
        (Admin, json!({ "parameters": { "objet": "Autre objet" } }), 422),
        (Collectivite, json!({ "signatories": { own.clone(): signatory } }), 200),
        (Coordinateur, json!({ "signatories": { other.clone(): signatory }, "title": "Titre du coordonnateur" }), 200),
    ];
    for (role, patch, want) in cases {
        let (status, body) = world.send(role, call(Method::PATCH, "", patch.clone(), Some(version().await))).await;
        assert_eq!(status, want, "{name}: {} {patch}: {body}", role.as_str());
    }
    let (status, body) = world.send(Collectivite, call(Method::POST, "/submit", json!({}), None)).await;
    assert_eq!(status, 403, "{name}: {body}");
    let (status, body) = world.send(Coordinateur, call(Method::POST, "/submit", json!({}), None)).await;
    assert_ne!(status, 403, "{name}: the coordinator submits: {body}");

    // An ENT convention: the commune names its own signatory, not the académie's; the DAN any.
    let conv = world.convention(Side::In, "draft").await;
    let patch = |body: Value, version: i64| Call {
        method: Method::PATCH,
        path: format!("/api/v1/conventions/{}", conv.id),
        body: Some(body),
        csv: None,
        pdf: None,
        if_match: Some(version),
    };
    let (status, body) =
        world.send(Collectivite, patch(json!({ "signatories": { "academie": signatory } }), conv.version)).await;
    assert_eq!(status, 403, "{name}: {body}");
    let (status, body) =
        world.send(Collectivite, patch(json!({ "signatories": { "collectivite": signatory } }), conv.version)).await;
    assert_eq!(status, 200, "{name}: {body}");
    let version = serde_json::from_str::<Value>(&body).unwrap()["version"].as_i64().unwrap();
    let (status, body) = world.send(Dan, patch(json!({ "signatories": { "collectivite": signatory } }), version)).await;
    assert_eq!(status, 200, "{name}: {body}");
}
