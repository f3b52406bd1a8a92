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
        let state =
            crate::common::app::app_state(self.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
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
