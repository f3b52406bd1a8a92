//! Authorisation cases: RGPD registers, profiles, breaches and requests.

use super::*;

/// RGPD registers: DPOs over what they cover, controllers (chef d'établissement,
/// collectivité, DAN for its académie) over their own organisation only.
pub(super) const RGPD: &[Role] = &[Admin, Dpo, Dan, Collectivite, ChefEtablissement];

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/rgpd/registers/{org}", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/registers/{org}/incomplete", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/registers/{org}/snapshots", RGPD, Target::Register),
    ("POST", "/api/v1/rgpd/registers/{org}/snapshots", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/registers/{org}/snapshots/{id}", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/registers/{org}/diff", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/contracts/{org}", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/profiles/{org}", RGPD, Target::Register),
    ("PUT", "/api/v1/rgpd/profiles/{org}", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/breaches/{org}", RGPD, Target::Register),
    ("POST", "/api/v1/rgpd/breaches/{org}", RGPD, Target::Register),
    ("PUT", "/api/v1/rgpd/breaches/{org}/{id}", RGPD, Target::Register),
    ("GET", "/api/v1/rgpd/requests/{org}", RGPD, Target::Register),
    ("POST", "/api/v1/rgpd/requests/{org}", RGPD, Target::Register),
    ("PUT", "/api/v1/rgpd/requests/{org}/{id}", RGPD, Target::Register),
];

impl World {
    /// The organisation whose registers `role` may read: its own as controller, a covered school as DPO.
    pub(super) async fn rgpd_org(&self, role: Role, side: Side) -> Org {
        match (side, role) {
            (Side::Out, _) => self.etab_out.clone(),
            (Side::In, Dan) => {
                let key = format!("academie:{}", self.etab_in.academie_code.clone().unwrap());
                queries::resolve_org(&self.store, &key).await.unwrap()
            }
            (Side::In, Collectivite) => self.commune_in.clone(),
            (Side::In, _) => self.etab_in.clone(),
        }
    }

    pub(super) async fn rgpd_call(&self, method: Method, path: &str, role: Role, side: Side) -> Call {
        let org = self.rgpd_org(role, side).await;
        let state = self.state.clone();
        let call =
            |path: String| Call { method: method.clone(), path, body: None, csv: None, pdf: None, if_match: None };
        let url = path.replace("{org}", &org.id);
        let breach = json!({
            "title": "Courriel mal adressé", "facts": "Liste de classe envoyée à un mauvais destinataire",
            "aware_at": "2026-08-31T08:00:00Z", "data_categories": ["identité"], "people_approx": 25,
            "records_approx": 25, "consequences": "faibles", "measures": "demande de suppression"
        });
        let request = json!({ "kind": "access", "requester": "A. B.", "received_on": "2026-08-20" });
        match (method.as_str(), path) {
            ("GET", "/api/v1/rgpd/registers/{org}/snapshots/{id}") => {
                let exported =
                    entcp::rgpd::export_register(&state.rgpd(), "matrice", &org, entcp::rgpd::export::Format::Json)
                        .await
                        .unwrap();
                call(url.replace("{id}", &exported.snapshot.id))
            }
            // An identical snapshot exists: the POST answers it with 200.
            ("POST", "/api/v1/rgpd/registers/{org}/snapshots") => {
                entcp::rgpd::export_register(&state.rgpd(), "matrice", &org, entcp::rgpd::export::Format::Json)
                    .await
                    .unwrap();
                call(url)
            }
            ("GET", "/api/v1/rgpd/registers/{org}/diff") => {
                entcp::rgpd::export_register(&state.rgpd(), "matrice", &org, entcp::rgpd::export::Format::Json)
                    .await
                    .unwrap();
                call(url)
            }
            ("PUT", "/api/v1/rgpd/profiles/{org}") => {
                let body = json!({ "head_name": "Direction", "head_title": "", "address": "", "phone": "", "email": "",
                    "dpo_name": "DPD", "dpo_email": "dpd@test.fr", "dpo_phone": "", "dpo_address": "",
                    "representative": "", "security_measures": "" });
                let current = entcp::rgpd::load::profile(&self.store, &org.id).await.unwrap().map(|(_, v)| v);
                Call { body: Some(body), if_match: current, ..call(url) }
            }
            ("POST", "/api/v1/rgpd/breaches/{org}") => Call { body: Some(breach), ..call(url) },
            ("PUT", "/api/v1/rgpd/breaches/{org}/{id}") => {
                let input = serde_json::from_value(breach.clone()).unwrap();
                let created = entcp::rgpd::breaches::create(&state.rgpd(), &admin(), &org, input).await.unwrap();
                Call { body: Some(breach), if_match: Some(created.version), ..call(url.replace("{id}", &created.id)) }
            }
            ("POST", "/api/v1/rgpd/requests/{org}") => Call { body: Some(request), ..call(url) },
            ("PUT", "/api/v1/rgpd/requests/{org}/{id}") => {
                let input = serde_json::from_value(request.clone()).unwrap();
                let created = entcp::rgpd::requests::create(&state.rgpd(), &admin(), &org, input).await.unwrap();
                Call { body: Some(request), if_match: Some(created.version), ..call(url.replace("{id}", &created.id)) }
            }
            _ => call(url),
        }
    }
}

/// The first organisation of `kind` registered in the académie `academie`.
async fn first_of(store: &Store, kind: &str, academie: &str) -> Org {
    let filter =
        OrgFilter { kind: Some(kind.into()), academie: Some(academie.into()), limit: Some(1), ..Default::default() };
    queries::list_orgs(store, &filter, None).await.unwrap().items.into_iter().next().unwrap()
}

backend_test!(an_academie_s_dpo_reads_the_logs_of_the_organisations_it_keeps_not_of_the_collectivites_of_the_academie);
async fn an_academie_s_dpo_reads_the_logs_of_the_organisations_it_keeps_not_of_the_collectivites_of_the_academie(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let world = world(&db).await;
    let academie = world.etab_in.academie_code.clone().unwrap();
    let departement = first_of(&world.store, "departement", &academie).await;
    let dsden = first_of(&world.store, "dsden", &academie).await;
    let send = |path: String| world.app.get(&path).bearer(&world.tokens[&Dpo]).send();
    let missing = |log: &str| format!("/api/v1/rgpd/{log}/{MISSING}");
    // Other controllers of the académie: their registers are read (what the académie covers),
    // their logs are not, and answer as an organisation that does not exist.
    for org in [&world.commune_in, &departement] {
        let register = send(format!("/api/v1/rgpd/registers/{}/incomplete", org.id)).await;
        assert_eq!(register.status, 200, "{name} register of {}: {}", org.code, register.text);
        for log in ["breaches", "requests"] {
            let theirs = send(format!("/api/v1/rgpd/{log}/{}", org.id)).await;
            let none = send(missing(log)).await;
            assert_eq!((theirs.status, none.status), (404, 404), "{name} {log} of {}: {}", org.code, theirs.text);
            assert_eq!(
                words(&theirs.text, std::slice::from_ref(&org.id)),
                words(&none.text, &[]),
                "{name} {log} of {}",
                org.code
            );
        }
    }
    // The organisations it is the DPO of: the académie's école and DSDEN.
    for org in [&world.etab_in, &dsden] {
        for log in ["breaches", "requests"] {
            let kept = send(format!("/api/v1/rgpd/{log}/{}", org.id)).await;
            assert_eq!(kept.status, 200, "{name} {log} of {}: {}", org.code, kept.text);
        }
    }
    // The console as the API: the commune's register opens without its logs' links, and its
    // logs answer 404; the école's register links them.
    let email = format!("{}@test.fr", Dpo.as_str());
    crate::console::with_password(&world.store, &email).await;
    let session = crate::console::sign_in(&world.app, &email).await;
    let commune = crate::console::get(&world.app, &session, &format!("/rgpd/{}", world.commune_in.id)).await;
    assert_eq!(commune.status, 200, "{name}: {}", commune.text);
    assert!(!commune.text.contains("/violations") && !commune.text.contains("/demandes"), "{name}: {}", commune.text);
    for log in ["violations", "demandes"] {
        let path = format!("/rgpd/{}/{log}", world.commune_in.id);
        assert_eq!(crate::console::get(&world.app, &session, &path).await.status, 404, "{name} {log}");
    }
    let school = crate::console::get(&world.app, &session, &format!("/rgpd/{}", world.etab_in.id)).await;
    // (the page escapes the slashes of the register's address: `&#x2F;rgpd&#x2F;{id}/violations`)
    assert!(school.text.contains(&format!("{}/violations", world.etab_in.id)), "{name}: {}", school.text);
}
