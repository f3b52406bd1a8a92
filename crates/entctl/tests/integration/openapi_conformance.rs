//! The OpenAPI document tells the truth: a valid request to every operation of
//! the document (as admin, on the Val-de-Marne sample, over a socket) answers a
//! documented status with a documented content type, and a JSON body that the
//! documented schema accepts. An operation without a case fails the test.
//!
//! Bodies are checked by `schema_errors` below, a small checker of the JSON
//! Schema subset the document uses (schemars output): `$ref`, `type`, `enum`,
//! `const`, `properties`, `required`, `additionalProperties`, `items`,
//! `prefixItems`, `anyOf`, `oneOf`, `allOf`, `minLength`/`maxLength`,
//! `minimum`/`maximum`, `minItems`/`maxItems`; formats are not checked.

use crate::common;

use common::fixtures::{award_body, luhn};
use common::{t0, token_for};
use entcp::clock::FixedClock;
use entcp::kernel::roles::Role;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const SCHOOL: &str = "0940176F";
const COMMUNE: &str = "commune:94034";

/// Every operation of the document, in the order the cases run (creations before the reads of what they made).
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/api/v1/orgs"),
    ("POST", "/api/v1/orgs"),
    ("GET", "/api/v1/orgs/{key}"),
    ("PATCH", "/api/v1/orgs/{key}"),
    ("GET", "/api/v1/orgs/{key}/covers"),
    ("PUT", "/api/v1/orgs/{key}/members/{commune}"),
    ("GET", "/api/v1/orgs/{key}/members"),
    ("DELETE", "/api/v1/orgs/{key}/members/{commune}"),
    ("POST", "/api/v1/orgs/{key}/invitations"),
    ("GET", "/api/v1/orgs/{key}/invitations"),
    ("POST", "/api/v1/membership-invitations/{id}/accept"),
    ("POST", "/api/v1/membership-invitations/{id}/decline"),
    ("POST", "/api/v1/imports/annuaire"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/me/notification-preferences"),
    ("PUT", "/api/v1/me/notification-preferences"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("POST", "/api/v1/users/{id}/roles"),
    ("DELETE", "/api/v1/users/{id}/roles/{role}"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/convention-models"),
    ("GET", "/api/v1/conventions"),
    ("POST", "/api/v1/conventions"),
    ("GET", "/api/v1/conventions/{id}"),
    ("PATCH", "/api/v1/conventions/{id}"),
    ("POST", "/api/v1/conventions/{id}/submit"),
    ("POST", "/api/v1/conventions/{id}/visa"),
    ("POST", "/api/v1/conventions/{id}/sign"),
    ("POST", "/api/v1/conventions/{id}/refuse"),
    ("POST", "/api/v1/conventions/{id}/signatures/{party}/withdraw"),
    ("POST", "/api/v1/conventions/{id}/terminate"),
    ("POST", "/api/v1/conventions/{id}/non-renewal"),
    ("POST", "/api/v1/conventions/{id}/amend"),
    ("GET", "/api/v1/conventions/{id}/document"),
    ("GET", "/api/v1/conventions/{id}/signed-document"),
    ("POST", "/api/v1/conventions/{id}/signed-copies"),
    ("GET", "/api/v1/conventions/{id}/signed-copies/{file_id}"),
    ("GET", "/api/v1/tenants"),
    ("POST", "/api/v1/tenants"),
    ("GET", "/api/v1/tenants/{slug}"),
    ("PUT", "/api/v1/tenants/{slug}"),
    ("POST", "/api/v1/tenants/{slug}/transition"),
    ("GET", "/api/v1/tenants/{slug}/events"),
    ("GET", "/api/v1/tenants/{slug}/destruction"),
    ("GET", "/api/v1/tenant-schema"),
    ("GET", "/api/v1/catalog/services"),
    ("GET", "/api/v1/catalog/services/{code}"),
    ("GET", "/api/v1/catalog/bouquets"),
    ("GET", "/api/v1/catalog/bouquets/{id}"),
    ("GET", "/api/v1/jobs"),
    ("POST", "/api/v1/jobs/{name}/run"),
    ("GET", "/api/v1/outbox"),
    ("POST", "/api/v1/outbox/{id}/retry"),
    ("GET", "/api/v1/support/tickets"),
    ("POST", "/api/v1/support/tickets"),
    ("GET", "/api/v1/support/tickets/{id}"),
    ("PATCH", "/api/v1/support/tickets/{id}"),
    ("GET", "/api/v1/support/tickets/{id}/history"),
    ("POST", "/api/v1/support/tickets/{id}/comments"),
    ("GET", "/api/v1/support/tickets/{id}/attachments"),
    ("POST", "/api/v1/support/tickets/{id}/attachments"),
    ("GET", "/api/v1/support/tickets/{id}/attachments/{file}"),
    ("POST", "/api/v1/support/tickets/{id}/transition"),
    ("POST", "/api/v1/support/tickets/{id}/escalate"),
    ("POST", "/api/v1/support/tickets/{id}/return"),
    ("GET", "/api/v1/support/report"),
    ("GET", "/api/v1/support/policies"),
    ("GET", "/api/v1/support/tenants/{slug}/contract"),
    ("PUT", "/api/v1/support/contracts/{org}"),
    ("GET", "/api/v1/groupements"),
    ("POST", "/api/v1/groupements"),
    ("GET", "/api/v1/groupements/{id}"),
    ("PATCH", "/api/v1/groupements/{id}"),
    ("POST", "/api/v1/groupements/{id}/transition"),
    ("POST", "/api/v1/groupements/{id}/award"),
    ("POST", "/api/v1/groupements/{id}/sans-suite"),
    ("POST", "/api/v1/groupements/{id}/lots/{lot}/sans-suite"),
    ("GET", "/api/v1/groupements/{id}/decp"),
    ("GET", "/api/v1/groupements/{id}/prefill"),
    ("GET", "/api/v1/groupements/{id}/applications"),
    ("POST", "/api/v1/groupements/{id}/applications"),
    ("PATCH", "/api/v1/groupements/{id}/applications/{application}"),
    ("POST", "/api/v1/groupements/{id}/applications/{application}/withdraw"),
    ("POST", "/api/v1/groupements/{id}/applications/{application}/accept"),
    ("POST", "/api/v1/groupements/{id}/acceptances"),
    ("POST", "/api/v1/groupements/{id}/applications/{application}/reject"),
    ("GET", "/api/v1/groupements/{id}/members"),
    ("GET", "/api/v1/groupements/{id}/shares"),
    ("GET", "/api/v1/groupements/{id}/documents"),
    ("POST", "/api/v1/groupements/{id}/documents"),
    ("GET", "/api/v1/groupements/{id}/documents/{document}"),
    ("POST", "/api/v1/groupements/{id}/documents/{document}/share"),
    ("GET", "/api/v1/groupement-library"),
    ("GET", "/api/v1/rgpd/registers/{org}"),
    ("GET", "/api/v1/rgpd/registers/{org}/incomplete"),
    ("POST", "/api/v1/rgpd/registers/{org}/snapshots"),
    ("GET", "/api/v1/rgpd/registers/{org}/snapshots"),
    ("GET", "/api/v1/rgpd/registers/{org}/snapshots/{id}"),
    ("GET", "/api/v1/rgpd/registers/{org}/diff"),
    ("GET", "/api/v1/rgpd/contracts/{org}"),
    ("GET", "/api/v1/rgpd/profiles/{org}"),
    ("PUT", "/api/v1/rgpd/profiles/{org}"),
    ("GET", "/api/v1/rgpd/breaches/{org}"),
    ("POST", "/api/v1/rgpd/breaches/{org}"),
    ("PUT", "/api/v1/rgpd/breaches/{org}/{id}"),
    ("GET", "/api/v1/rgpd/requests/{org}"),
    ("POST", "/api/v1/rgpd/requests/{org}"),
    ("PUT", "/api/v1/rgpd/requests/{org}/{id}"),
];

/// One request of a case and the status it must get.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    raw: Option<(&'static str, Vec<u8>)>,
    if_match: Option<String>,
    idempotency_key: Option<String>,
    /// Who sends it: the admin unless a role's own act is needed (signing).
    client: Option<reqwest::Client>,
    status: u16,
    /// Another acceptable status (a PDF without LibreOffice on the machine: 503).
    or_status: Option<u16>,
}

fn case(method: &str, path: impl Into<String>, status: u16) -> Case {
    Case {
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        path: path.into(),
        body: None,
        raw: None,
        if_match: None,
        idempotency_key: None,
        client: None,
        status,
        or_status: None,
    }
}

impl Case {
    fn json(mut self, body: Value) -> Case {
        self.body = Some(body);
        self
    }

    fn if_match(mut self, etag: String) -> Case {
        self.if_match = Some(etag);
        self
    }
}

struct World {
    base: String,
    admin: reqwest::Client,
    dan: reqwest::Client,
    mairie: reqwest::Client,
    directeur: reqwest::Client,
    seq: AtomicU32,
    /// The SIREN of an éditeur of the registry, the groupements' awardee.
    vendor_siren: String,
    /// Start years of test conventions, so that none overlaps another.
    years: AtomicU32,
    /// The school's active convention (from t0): tenants may move on.
    active_convention: String,
    /// For the tokens of organisations created during the run (a groupement's coordinator).
    store: entcp::store::Store,
}

fn luhn_siren(seed: u32) -> String {
    luhn(&format!("{:08}", 30_000_000 + seed))
}

impl World {
    async fn new(db: &common::TestDb) -> World {
        common::import_sample(&db.store).await;
        let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
        let client = |token: String| common::client_with(&token);
        let world = World {
            base,
            admin: client(token_for(&db.store, "admin@test.fr", Role::Admin, None).await),
            dan: client(token_for(&db.store, "dan@ac-creteil.fr", Role::Dan, Some("academie:24")).await),
            mairie: client(token_for(&db.store, "ent@fresnes.fr", Role::Collectivite, Some(COMMUNE)).await),
            directeur: client(
                token_for(&db.store, "ce.0940176f@ac-creteil.fr", Role::ChefEtablissement, Some(SCHOOL)).await,
            ),
            seq: AtomicU32::new(1),
            vendor_siren: luhn_siren(0),
            years: AtomicU32::new(0),
            active_convention: String::new(),
            store: db.store.clone(),
        };
        let vendor = json!({ "kind": "editeur", "siren": world.vendor_siren, "name": "Éditeur ENT" });
        world.post("/api/v1/orgs", vendor).await;
        let active = world.convention("2026-09-01", "signed").await;
        assert_eq!(active["status"], "active", "{active}");
        World { active_convention: active["id"].as_str().unwrap().to_string(), ..world }
    }

    fn next(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A setup call: must succeed; returns the body and the ETag.
    async fn setup(&self, client: &reqwest::Client, method: &str, path: &str, body: Option<Value>) -> (Value, String) {
        let mut req = client.request(Method::from_bytes(method.as_bytes()).unwrap(), self.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let etag = resp.headers().get("etag").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "setup {method} {path}: {status} {text}");
        (serde_json::from_str(&text).unwrap_or(Value::Null), etag)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.setup(&self.admin, "POST", path, Some(body)).await.0
    }

    /// Records who signs for every party of a groupement's convention constitutive (required before submission).
    async fn name_groupement_signatories(&self, convention: &str) {
        let path = format!("/api/v1/conventions/{convention}");
        let (conv, etag) = self.setup(&self.admin, "GET", &path, None).await;
        let resp = self
            .admin
            .patch(self.url(&path))
            .header("if-match", etag)
            .json(&common::fixtures::groupement_signatories(&conv))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "signatories: {}", resp.text().await.unwrap());
    }

    async fn etag(&self, path: &str) -> String {
        self.setup(&self.admin, "GET", path, None).await.1
    }

    /// A new EPCI of the Val-de-Marne, without members.
    async fn empty_epci(&self) -> String {
        let body = json!({ "kind": "epci", "siren": common::fixtures::group_siren(self.next()), "name": "CA du Val", "departement": "94" });
        self.post("/api/v1/orgs", body).await["id"].as_str().unwrap().to_string()
    }

    /// A new EPCI of the Val-de-Marne, Fresnes a member.
    async fn epci(&self) -> Value {
        let epci = json!({ "id": self.empty_epci().await });
        let path = format!("/api/v1/orgs/{}/members/{COMMUNE}", epci["id"].as_str().unwrap());
        self.setup(&self.admin, "PUT", &path, Some(json!({ "ent_delegated": false }))).await;
        epci
    }

    /// A pending invitation of Fresnes to a new EPCI: (the EPCI's id, the invitation's id).
    async fn invitation(&self) -> (String, String) {
        let epci = self.empty_epci().await;
        let invitation = self.post(&format!("/api/v1/orgs/{epci}/invitations"), json!({ "commune": COMMUNE })).await;
        (epci, invitation["id"].as_str().unwrap().to_string())
    }

    async fn user(&self) -> Value {
        let email = format!("agent{}@test.fr", self.next());
        self.post("/api/v1/users", json!({ "email": email, "display_name": "Agent" })).await
    }

    fn tenant_doc(&self, slug: &str) -> Value {
        json!({
            "apiVersion": "entcp.education.fr/v1",
            "kind": "EntTenant",
            "metadata": { "name": slug },
            "spec": { "organisation": SCHOOL, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d" }
        })
    }

    async fn tenant(&self) -> String {
        let slug = format!("t{}", self.next());
        self.post("/api/v1/tenants", self.tenant_doc(&slug)).await;
        slug
    }

    /// A tripartite convention for the school, starting on `start`, moved on to `state`.
    async fn convention(&self, start: &str, state: &str) -> Value {
        let body = crate::common::fixtures::with_signatories(json!({
            "model": "tripartite-premier-degre",
            "parties": { "academie": "academie:24", "collectivite": COMMUNE, "etablissement": SCHOOL },
            "start_date": start,
            "parameters": { "accounts": 250 }
        }));
        let (mut conv, _) = self.setup(&self.dan, "POST", "/api/v1/conventions", Some(body)).await;
        let id = conv["id"].as_str().unwrap().to_string();
        if state == "draft" {
            return conv;
        }
        conv = self.post(&format!("/api/v1/conventions/{id}/submit"), json!({})).await;
        if state == "in_signature" {
            return conv;
        }
        for signer in [&self.directeur, &self.mairie, &self.dan] {
            let path = format!("/api/v1/conventions/{id}/sign");
            conv = self.setup(signer, "POST", &path, Some(crate::common::fixtures::by_delegation(json!({})))).await.0;
        }
        conv
    }

    /// A future start date no other test convention overlaps.
    fn future_start(&self) -> String {
        format!("{}-01-01", 2030 + 4 * self.years.fetch_add(1, Ordering::SeqCst))
    }

    async fn ticket(&self) -> Value {
        let tenant = self.tenant().await;
        let body = json!({ "tenant": tenant, "subject": "Connexion impossible", "description": "Erreur à la connexion.",
            "category": "acces", "impact": "moyenne", "urgency": "moyenne" });
        self.post("/api/v1/support/tickets", body).await
    }

    /// A groupement coordinated by a new EPCI, Fresnes an accepted member and
    /// Vitry a pending applicant; moved on to `state` (`open`, `consultation`, `awarded`).
    async fn groupement(&self, state: &str) -> (Value, String, String) {
        let epci = self.epci().await;
        let body = json!({ "coordinator": epci["id"], "title": "ENT 1er degré", "object": "Fourniture d'un ENT",
            "application_deadline": "2026-12-31", "procedure": "procedure_adaptee",
            "estimated_amount_ht_cents": 15_000_000 });
        let g = self.post("/api/v1/groupements", body).await;
        let id = g["id"].as_str().unwrap().to_string();
        let apply =
            |who: &str| json!({ "applicant": who, "deliberation_number": "D-1", "deliberation_date": "2026-09-01" });
        let mine = self.post(&format!("/api/v1/groupements/{id}/applications"), apply(COMMUNE)).await;
        let theirs = self.post(&format!("/api/v1/groupements/{id}/applications"), apply("commune:94081")).await;
        let mine = mine["id"].as_str().unwrap().to_string();
        self.post(&format!("/api/v1/groupements/{id}/applications/{mine}/accept"), json!({})).await;
        if state != "open" {
            // Constituted first: the coordinator, then the member, sign the convention constitutive.
            let g = self.setup(&self.admin, "GET", &format!("/api/v1/groupements/{id}"), None).await.0;
            let convention = g["convention_id"].as_str().unwrap().to_string();
            self.name_groupement_signatories(&convention).await;
            self.post(&format!("/api/v1/conventions/{convention}/submit"), json!({})).await;
            let epci_id = epci["id"].as_str().unwrap();
            let coord = common::client_with(
                &token_for(&self.store, &format!("coord@{epci_id}.fr"), Role::Coordinateur, Some(epci_id)).await,
            );
            for signer in [&coord, &self.mairie] {
                let path = format!("/api/v1/conventions/{convention}/sign");
                self.setup(signer, "POST", &path, Some(crate::common::fixtures::by_delegation(json!({})))).await;
            }
            for to in ["closed", "consultation"] {
                let body = json!({ "to": to, "offers_deadline": (to == "consultation").then_some("2026-09-02T12:00") });
                self.post(&format!("/api/v1/groupements/{id}/transition"), body).await;
            }
            // Awarded on its launch day: its offers are taken as received the day before.
            sqlx::query("UPDATE groupements SET offers_deadline_at = '2026-08-31T10:00:00Z' WHERE id = $1")
                .bind(&id)
                .execute(self.store.pool())
                .await
                .unwrap();
        }
        if state == "awarded" {
            let buyer = g["coordinator"]["code"].as_str().unwrap();
            self.post(&format!("/api/v1/groupements/{id}/award"), award_body(&self.vendor_siren, "0001", buyer)).await;
        }
        (
            self.setup(&self.admin, "GET", &format!("/api/v1/groupements/{id}"), None).await.0,
            mine,
            theirs["id"].as_str().unwrap().into(),
        )
    }

    async fn document(&self, g: &str) -> String {
        let doc = self.post(&format!("/api/v1/groupements/{g}/documents"), json!({ "kind": "cctp" })).await;
        doc["id"].as_str().unwrap().to_string()
    }

    async fn school_id(&self) -> String {
        let (school, _) = self.setup(&self.admin, "GET", &format!("/api/v1/orgs/{SCHOOL}"), None).await;
        school["id"].as_str().unwrap().to_string()
    }

    /// The cases of one operation: at least one each.
    async fn cases(&self, method: &str, path: &str) -> Vec<Case> {
        let c = |status: u16| case(method, path, status);
        match (method, path) {
            ("GET", "/api/v1/orgs") => vec![case(method, "/api/v1/orgs?limit=5&q=fresnes", 200)],
            ("POST", "/api/v1/orgs") => {
                let body = json!({ "kind": "epci", "siren": common::fixtures::group_siren(self.next()), "name": "Nouvel EPCI", "departement": "94" });
                vec![c(201).json(body)]
            }
            ("GET", "/api/v1/orgs/{key}") => vec![case(method, format!("/api/v1/orgs/{SCHOOL}"), 200)],
            ("PATCH", "/api/v1/orgs/{key}") => {
                let url = format!("/api/v1/orgs/{SCHOOL}");
                let etag = self.etag(&url).await;
                vec![case(method, url, 200).json(json!({ "email": "ce@ecole.fr" })).if_match(etag)]
            }
            ("GET", "/api/v1/orgs/{key}/covers") => {
                vec![case(method, format!("/api/v1/orgs/{COMMUNE}/covers?limit=3"), 200)]
            }
            ("PUT", "/api/v1/orgs/{key}/members/{commune}") => {
                let body = json!({ "kind": "epci", "siren": common::fixtures::group_siren(self.next()), "name": "CC", "departement": "94" });
                let epci = self.post("/api/v1/orgs", body).await;
                let url = format!("/api/v1/orgs/{}/members/{COMMUNE}", epci["id"].as_str().unwrap());
                vec![case(method, url, 200).json(json!({ "ent_delegated": false }))]
            }
            ("GET", "/api/v1/orgs/{key}/members") => {
                let epci = self.epci().await;
                vec![case(method, format!("/api/v1/orgs/{}/members", epci["id"].as_str().unwrap()), 200)]
            }
            ("DELETE", "/api/v1/orgs/{key}/members/{commune}") => {
                let epci = self.epci().await;
                vec![case(method, format!("/api/v1/orgs/{}/members/{COMMUNE}", epci["id"].as_str().unwrap()), 204)]
            }
            ("POST", "/api/v1/orgs/{key}/invitations") => {
                let epci = self.empty_epci().await;
                let url = format!("/api/v1/orgs/{epci}/invitations");
                vec![case(method, url, 201).json(json!({ "commune": COMMUNE, "ent_delegated": true }))]
            }
            ("GET", "/api/v1/orgs/{key}/invitations") => {
                let (epci, _) = self.invitation().await;
                vec![case(method, format!("/api/v1/orgs/{epci}/invitations"), 200)]
            }
            ("POST", "/api/v1/membership-invitations/{id}/accept") => {
                let (_, id) = self.invitation().await;
                // The commune's own collectivité answers.
                let url = format!("/api/v1/membership-invitations/{id}/accept");
                vec![Case { client: Some(self.mairie.clone()), ..case(method, url, 200) }]
            }
            ("POST", "/api/v1/membership-invitations/{id}/decline") => {
                let (_, id) = self.invitation().await;
                vec![case(method, format!("/api/v1/membership-invitations/{id}/decline"), 200)]
            }
            ("POST", "/api/v1/imports/annuaire") => {
                let csv =
                    "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie\n";
                vec![Case { raw: Some(("text/csv", csv.as_bytes().to_vec())), ..c(200) }]
            }
            ("GET", "/api/v1/me") | ("GET", "/api/v1/tokens") => vec![c(200)],
            ("GET", "/api/v1/me/notification-preferences") => vec![c(200)],
            ("PUT", "/api/v1/me/notification-preferences") => {
                vec![c(200).json(json!({ "rgpd": false })), c(422).json(json!({ "inconnue": true }))]
            }
            ("GET", "/api/v1/users") => vec![case(method, "/api/v1/users?limit=2", 200)],
            ("POST", "/api/v1/users") => {
                let email = format!("nouveau{}@test.fr", self.next());
                vec![Case {
                    idempotency_key: Some(email.clone()),
                    ..c(201).json(json!({ "email": email, "display_name": "Nouvel agent" }))
                }]
            }
            ("GET", "/api/v1/users/{id}") => {
                let user = self.user().await;
                vec![case(method, format!("/api/v1/users/{}", user["id"].as_str().unwrap()), 200)]
            }
            ("PATCH", "/api/v1/users/{id}") => {
                let user = self.user().await;
                let url = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
                let etag = self.etag(&url).await;
                vec![case(method, url, 200).json(json!({ "display_name": "Agent renommé" })).if_match(etag)]
            }
            ("POST", "/api/v1/users/{id}/roles") => {
                let user = self.user().await;
                let url = format!("/api/v1/users/{}/roles", user["id"].as_str().unwrap());
                vec![case(method, url, 200).json(json!({ "role": "chef_etablissement", "org": SCHOOL }))]
            }
            ("DELETE", "/api/v1/users/{id}/roles/{role}") => {
                let user = self.user().await;
                let id = user["id"].as_str().unwrap();
                let school = self.school_id().await;
                self.post(&format!("/api/v1/users/{id}/roles"), json!({ "role": "support_n1", "org": school })).await;
                vec![case(method, format!("/api/v1/users/{id}/roles/support_n1?org={school}"), 204)]
            }
            ("POST", "/api/v1/tokens") => vec![c(201).json(json!({ "name": "conformité" }))],
            ("DELETE", "/api/v1/tokens/{id}") => {
                let token = self.post("/api/v1/tokens", json!({ "name": "à révoquer" })).await;
                vec![case(method, format!("/api/v1/tokens/{}", token["id"].as_str().unwrap()), 200)]
            }
            ("GET", "/api/v1/audit") => vec![case(method, "/api/v1/audit?limit=5", 200)],
            ("GET", "/api/v1/convention-models") => vec![c(200)],
            ("GET", "/api/v1/conventions") => {
                self.convention(&self.future_start(), "draft").await;
                vec![case(method, "/api/v1/conventions?limit=5", 200)]
            }
            ("POST", "/api/v1/conventions") => {
                let body = json!({
                    "model": "tripartite-premier-degre",
                    "parties": { "academie": "academie:24", "collectivite": COMMUNE, "etablissement": SCHOOL },
                    "start_date": self.future_start(),
                });
                vec![c(201).json(body)]
            }
            (_, p) if p.starts_with("/api/v1/conventions/{id}") => self.convention_cases(method, p).await,
            ("GET", "/api/v1/tenants") | ("GET", "/api/v1/tenant-schema") => vec![c(200)],
            ("POST", "/api/v1/tenants") => {
                let slug = format!("t{}", self.next());
                // Created, then applied again unchanged.
                vec![c(201).json(self.tenant_doc(&slug)), c(200).json(self.tenant_doc(&slug))]
            }
            // A tenant not purged has no attestation (the documented 404); a purged one's is the
            // HTML stored at its purge.
            ("GET", "/api/v1/tenants/{slug}/destruction") => {
                let (kept, purged) = (self.tenant().await, self.tenant().await);
                let stored =
                    "INSERT INTO tenant_destructions (tenant_id, reference, attested_at, attested_by, namespace, \
                              volumes, backups, document, sha256) SELECT id, 'ADD-20261202-' || slug, \
                              '2026-12-02T08:00:00.000000Z', 'system:tenants-purge', 'ent-' || slug, '[]', \
                              'aucune', '<!DOCTYPE html><p>Attestation</p>', 'ab' FROM tenants WHERE slug = $1";
                common::execute(&self.store, stored, &[&purged]).await;
                vec![
                    case(method, path.replace("{slug}", &kept), 404),
                    case(method, path.replace("{slug}", &purged), 200),
                ]
            }
            (_, p) if p.starts_with("/api/v1/tenants/{slug}") => {
                let slug = self.tenant().await;
                let url = p.replace("{slug}", &slug);
                match method {
                    "PUT" => {
                        let etag = self.etag(&url).await;
                        let mut doc = self.tenant_doc(&slug);
                        doc["spec"]["options"] = json!(["visio"]);
                        vec![case(method, url, 200).json(doc).if_match(etag)]
                    }
                    // The school's active convention lets it move on.
                    "POST" => vec![case(method, url, 200).json(json!({ "to": "provisioning" }))],
                    _ => vec![case(method, url, 200)],
                }
            }
            ("GET", "/api/v1/catalog/services") | ("GET", "/api/v1/catalog/bouquets") => vec![c(200)],
            ("GET", "/api/v1/catalog/services/{code}") => {
                vec![case(method, "/api/v1/catalog/services/cahier-de-textes", 200)]
            }
            ("GET", "/api/v1/catalog/bouquets/{id}") => {
                vec![case(method, "/api/v1/catalog/bouquets/socle-2d?version=1", 200)]
            }
            ("GET", "/api/v1/jobs") => vec![c(200)],
            ("POST", "/api/v1/jobs/{name}/run") => vec![case(method, "/api/v1/jobs/outbox-purge/run", 200)],
            ("GET", "/api/v1/outbox") => vec![case(method, "/api/v1/outbox?limit=5", 200)],
            ("POST", "/api/v1/outbox/{id}/retry") => {
                // Opening a ticket queues notices.
                self.ticket().await;
                let (page, _) = self.setup(&self.admin, "GET", "/api/v1/outbox?limit=1", None).await;
                let id = page["items"][0]["id"].as_str().expect("a queued message").to_string();
                vec![case(method, format!("/api/v1/outbox/{id}/retry"), 200)]
            }
            (_, p) if p.starts_with("/api/v1/support/") => self.support_cases(method, p).await,
            (_, p) if p.starts_with("/api/v1/groupement") => self.groupement_cases(method, p).await,
            (_, p) if p.starts_with("/api/v1/rgpd/") => self.rgpd_cases(method, p).await,
            _ => Vec::new(),
        }
    }

    async fn convention_cases(&self, method: &str, p: &str) -> Vec<Case> {
        let state = match p {
            "/api/v1/conventions/{id}/visa"
            | "/api/v1/conventions/{id}/sign"
            | "/api/v1/conventions/{id}/refuse"
            | "/api/v1/conventions/{id}/signatures/{party}/withdraw"
            | "/api/v1/conventions/{id}/signed-copies"
            | "/api/v1/conventions/{id}/signed-copies/{file_id}"
            | "/api/v1/conventions/{id}/signed-document" => "in_signature",
            "/api/v1/conventions/{id}/terminate" | "/api/v1/conventions/{id}/non-renewal" => "signed",
            "/api/v1/conventions/{id}/amend" => "active",
            _ => "draft",
        };
        let conv = if state == "active" {
            json!({ "id": self.active_convention })
        } else {
            self.convention(&self.future_start(), state).await
        };
        let id = conv["id"].as_str().unwrap();
        let url = p.replace("{id}", id).replace("{party}", "academie");
        let c = |status: u16| case(method, url.clone(), status);
        match p {
            "/api/v1/conventions/{id}" if method == "PATCH" => {
                let etag = self.etag(&url).await;
                vec![c(200).json(json!({ "title": "Titre revu" })).if_match(etag)]
            }
            // The premier-degré model asks no visa: the documented conflict.
            "/api/v1/conventions/{id}/visa" => vec![Case { client: Some(self.dan.clone()), ..c(409).json(json!({})) }],
            "/api/v1/conventions/{id}/sign" => vec![Case {
                client: Some(self.dan.clone()),
                ..c(200).json(crate::common::fixtures::by_delegation(json!({})))
            }],
            "/api/v1/conventions/{id}/refuse" => {
                vec![Case { client: Some(self.mairie.clone()), ..c(200).json(json!({ "comment": "À revoir" })) }]
            }
            // The académie's signature, given first, withdrawn by the administrator at the version read.
            "/api/v1/conventions/{id}/signatures/{party}/withdraw" => {
                let sign = self.dan.post(self.url(&format!("/api/v1/conventions/{id}/sign")));
                let signed = sign.json(&crate::common::fixtures::by_delegation(json!({}))).send().await.unwrap();
                assert_eq!(signed.status(), 200, "the académie signs");
                let etag = self.etag(&format!("/api/v1/conventions/{id}")).await;
                vec![c(200).json(json!({ "reason": "Signée par erreur" })).if_match(etag)]
            }
            "/api/v1/conventions/{id}/terminate" => vec![c(200).json(json!({ "reason": "Changement de solution" }))],
            // The premier-degré model is not renewed tacitly: the documented refusal, to a party's
            // representative (an administrator signs for no party: 403).
            "/api/v1/conventions/{id}/non-renewal" => vec![Case {
                client: Some(self.dan.clone()),
                ..c(422).json(json!({ "reason": "Changement de solution" }))
            }],
            "/api/v1/conventions/{id}/amend" => vec![c(201)],
            "/api/v1/conventions/{id}/document" => vec![
                c(200),
                case(method, format!("{url}?format=odt"), 200),
                // The PDF, or the documented 406 on a machine without LibreOffice.
                Case { or_status: Some(406), ..case(method, format!("{url}?format=pdf"), 200) },
            ],
            "/api/v1/conventions/{id}/signed-document" => {
                vec![c(200), case(method, format!("{url}?format=odt&version=1"), 200)]
            }
            // Deposited by who signs for a party.
            "/api/v1/conventions/{id}/signed-copies" => vec![Case {
                client: Some(self.dan.clone()),
                raw: Some(("application/pdf", b"%PDF-1.4 signed".to_vec())),
                ..c(200)
            }],
            "/api/v1/conventions/{id}/signed-copies/{file_id}" => {
                let deposit = self.dan.post(self.url(&format!("/api/v1/conventions/{id}/signed-copies")));
                let resp = deposit.header("content-type", "application/pdf").body(b"%PDF-1.4 signed".to_vec());
                let deposited: Value = resp.send().await.unwrap().json().await.unwrap();
                let file_id = deposited["signed_files"][0]["id"].as_str().expect("a signed copy").to_string();
                vec![
                    case(method, url.replace("{file_id}", &file_id), 200),
                    case(method, url.replace("{file_id}", "inconnu"), 404),
                ]
            }
            _ => vec![c(200)],
        }
    }

    async fn support_cases(&self, method: &str, p: &str) -> Vec<Case> {
        let c = |status: u16| case(method, p, status);
        match (method, p) {
            ("GET", "/api/v1/support/tickets") => vec![case(method, "/api/v1/support/tickets?limit=5", 200)],
            ("GET", "/api/v1/support/report") => {
                vec![
                    c(200),
                    case(method, "/api/v1/support/report?format=csv&by=tenant", 200),
                    case(method, "/api/v1/support/report?from=2026-09-01&to=2026-09-30", 200),
                    case(method, "/api/v1/support/report?month=2026-09&from=2026-09-01", 422),
                ]
            }
            ("GET", "/api/v1/support/policies") => vec![c(200)],
            ("POST", "/api/v1/support/tickets") => {
                let tenant = self.tenant().await;
                let body = json!({ "tenant": tenant, "subject": "Panne", "description": "Rien ne marche.",
                    "category": "autre", "impact": "basse", "urgency": "basse" });
                vec![c(201).json(body)]
            }
            ("GET", "/api/v1/support/tenants/{slug}/contract") => {
                let tenant = self.tenant().await;
                vec![case(method, format!("/api/v1/support/tenants/{tenant}/contract"), 200)]
            }
            ("PUT", "/api/v1/support/contracts/{org}") => {
                vec![case(method, format!("/api/v1/support/contracts/{SCHOOL}"), 204)
                    .json(json!({ "policy": "standard" }))]
            }
            _ => {
                let mut ticket = self.ticket().await;
                let id = ticket["id"].as_str().unwrap().to_string();
                if p.ends_with("/return") {
                    let up = json!({ "reason": "Besoin du niveau supérieur." });
                    let (_, etag) =
                        self.setup(&self.admin, "GET", &format!("/api/v1/support/tickets/{id}"), None).await;
                    let req = self.admin.post(self.url(&format!("/api/v1/support/tickets/{id}/escalate")));
                    let resp = req.header("if-match", etag).json(&up).send().await.unwrap();
                    assert_eq!(resp.status(), 200, "setup escalate");
                    ticket = resp.json().await.unwrap();
                }
                let url = p.replace("{id}", &id);
                let etag = format!("\"{}\"", ticket["version"]);
                let c = |status: u16| case(method, url.clone(), status);
                match p {
                    "/api/v1/support/tickets/{id}" if method == "PATCH" => {
                        vec![c(200).json(json!({ "assigned_team": "Équipe réseau" })).if_match(etag)]
                    }
                    "/api/v1/support/tickets/{id}/comments" => vec![c(201).json(json!({ "body": "Un commentaire." }))],
                    "/api/v1/support/tickets/{id}/attachments" if method == "POST" => {
                        let pdf = b"%PDF-1.7 releve".to_vec();
                        vec![Case {
                            raw: Some(("application/octet-stream", pdf)),
                            ..case(method, format!("{url}?name=releve.pdf"), 201)
                        }]
                    }
                    "/api/v1/support/tickets/{id}/attachments/{file}" => {
                        let files = format!("/api/v1/support/tickets/{id}/attachments?name=releve.pdf");
                        let req = self.admin.post(self.url(&files)).header("content-type", "application/octet-stream");
                        let resp = req.body(b"%PDF-1.7 releve".to_vec()).send().await.unwrap();
                        assert_eq!(resp.status(), 201, "setup attachment");
                        let added: Value = resp.json().await.unwrap();
                        vec![case(method, url.replace("{file}", added[0]["id"].as_str().unwrap()), 200)]
                    }
                    "/api/v1/support/tickets/{id}/transition" => {
                        vec![c(200).json(json!({ "to": "in_progress" })).if_match(etag)]
                    }
                    "/api/v1/support/tickets/{id}/escalate" => {
                        vec![c(200).json(json!({ "reason": "Besoin du niveau supérieur." })).if_match(etag)]
                    }
                    "/api/v1/support/tickets/{id}/return" => {
                        vec![c(200).json(json!({ "answer": "Voici la réponse." })).if_match(etag)]
                    }
                    _ => vec![c(200)],
                }
            }
        }
    }

    async fn groupement_cases(&self, method: &str, p: &str) -> Vec<Case> {
        if p == "/api/v1/groupements" || p == "/api/v1/groupement-library" {
            return match method {
                "POST" => {
                    let epci = self.epci().await;
                    let body = json!({ "coordinator": epci["id"], "title": "Achat ENT", "object": "ENT des écoles",
                        "application_deadline": "2026-12-31" });
                    vec![case(method, p, 201).json(body)]
                }
                _ => vec![case(method, p, 200)],
            };
        }
        let state = match p {
            "/api/v1/groupements/{id}/award"
            | "/api/v1/groupements/{id}/sans-suite"
            | "/api/v1/groupements/{id}/lots/{lot}/sans-suite" => "consultation",
            "/api/v1/groupements/{id}/shares" | "/api/v1/groupements/{id}/decp" => "awarded",
            _ => "open",
        };
        let (g, mine, theirs) = self.groupement(state).await;
        let id = g["id"].as_str().unwrap().to_string();
        let url = p.replace("{id}", &id);
        let c = |status: u16| case(method, url.clone(), status);
        match p {
            "/api/v1/groupements/{id}" if method == "PATCH" => {
                vec![c(200).json(json!({ "title": "Achat revu" })).if_match(format!("\"{}\"", g["version"]))]
            }
            "/api/v1/groupements/{id}/transition" => vec![c(200).json(json!({ "to": "closed" }))],
            "/api/v1/groupements/{id}/sans-suite" => {
                let body = json!({ "motif": "interet_general", "justification": "Besoin redéfini." });
                vec![c(200).json(body).if_match(format!("\"{}\"", g["version"]))]
            }
            // The only lot of a consultation is not declared sans suite alone: the whole consultation is.
            "/api/v1/groupements/{id}/lots/{lot}/sans-suite" => {
                let body = json!({ "motif": "infructuosite", "justification": "Aucune offre." });
                let url = url.replace("{lot}", "1");
                vec![case(method, url, 409).json(body).if_match(format!("\"{}\"", g["version"]))]
            }
            "/api/v1/groupements/{id}/award" => {
                let buyer = g["coordinator"]["code"].as_str().unwrap();
                vec![c(200).json(award_body(&self.vendor_siren, "0002", buyer))]
            }
            "/api/v1/groupements/{id}/prefill" => vec![case(method, format!("{url}?applicant={COMMUNE}"), 200)],
            "/api/v1/groupements/{id}/applications" if method == "POST" => {
                let body = json!({ "applicant": "commune:94041", "deliberation_number": "D-9", "deliberation_date": "2026-09-01" });
                vec![c(201).json(body)]
            }
            "/api/v1/groupements/{id}/applications/{application}/withdraw" => {
                vec![case(method, url.replace("{application}", &mine), 200)]
            }
            "/api/v1/groupements/{id}/applications/{application}" => {
                let (apps, _) =
                    self.setup(&self.admin, "GET", &format!("/api/v1/groupements/{id}/applications"), None).await;
                let pending = apps.as_array().unwrap().iter().find(|a| a["id"] == theirs.as_str()).unwrap();
                let etag = format!("\"{}\"", pending["version"]);
                vec![case(method, url.replace("{application}", &theirs), 200)
                    .json(json!({ "classes": 2 }))
                    .if_match(etag)]
            }
            "/api/v1/groupements/{id}/applications/{application}/accept" => {
                vec![case(method, url.replace("{application}", &theirs), 200)]
            }
            "/api/v1/groupements/{id}/acceptances" => vec![c(200).json(json!({ "applications": [theirs] }))],
            "/api/v1/groupements/{id}/applications/{application}/reject" => {
                vec![case(method, url.replace("{application}", &theirs), 200)
                    .json(json!({ "reason": "Hors périmètre" }))]
            }
            "/api/v1/groupements/{id}/documents" if method == "POST" => vec![c(201).json(json!({ "kind": "cctp" }))],
            "/api/v1/groupements/{id}/documents/{document}" => {
                let doc = self.document(&id).await;
                let url = url.replace("{document}", &doc);
                vec![
                    case(method, url.clone(), 200),
                    case(method, format!("{url}?format=odt"), 200),
                    Case { or_status: Some(406), ..case(method, format!("{url}?format=pdf"), 200) },
                ]
            }
            "/api/v1/groupements/{id}/documents/{document}/share" => {
                let doc = self.document(&id).await;
                vec![case(method, url.replace("{document}", &doc), 200).json(json!({ "shared": true }))]
            }
            _ => vec![c(200)],
        }
    }

    async fn rgpd_cases(&self, method: &str, p: &str) -> Vec<Case> {
        let url = p.replace("{org}", SCHOOL);
        let c = |status: u16| case(method, url.clone(), status);
        let breach = json!({
            "title": "Courriel mal adressé", "facts": "Liste de classe envoyée à un mauvais destinataire",
            "aware_at": "2026-08-31T08:00:00Z", "data_categories": ["identité"], "people_approx": 25,
            "records_approx": 25, "consequences": "faibles", "measures": "demande de suppression"
        });
        let request = json!({ "kind": "access", "requester": "A. B.", "received_on": "2026-08-20" });
        let exports = |url: &str| -> Vec<Case> {
            ["json", "csv", "ods", "html"]
                .iter()
                .map(|f| case(method, format!("{url}?format={f}"), 200))
                .chain([case(method, url.to_string(), 200)])
                .collect()
        };
        match (method, p) {
            ("GET", "/api/v1/rgpd/registers/{org}")
            | ("GET", "/api/v1/rgpd/breaches/{org}")
            | ("GET", "/api/v1/rgpd/requests/{org}") => {
                if p.contains("breaches") {
                    self.post(&url, breach).await;
                } else if p.contains("requests") {
                    self.post(&url, request).await;
                }
                exports(&url)
            }
            ("GET", "/api/v1/rgpd/contracts/{org}") => ["json", "csv"]
                .iter()
                .map(|f| case(method, format!("{url}?format={f}"), 200))
                .chain([case(method, url.clone(), 200), case(method, format!("{url}?format=ods"), 422)])
                .collect(),
            // A new snapshot (201), unless one identical is the latest (200); then that one again.
            ("POST", "/api/v1/rgpd/registers/{org}/snapshots") => {
                vec![Case { or_status: Some(200), ..c(201) }, c(200)]
            }
            ("GET", "/api/v1/rgpd/registers/{org}/snapshots/{id}") => {
                let list = url.replace("/{id}", "");
                let (snapshot, _) = self.setup(&self.admin, "POST", &list, None).await;
                vec![case(method, url.replace("{id}", snapshot["id"].as_str().unwrap()), 200)]
            }
            ("PUT", "/api/v1/rgpd/profiles/{org}") => {
                let body = json!({ "head_name": "Direction", "head_title": "", "address": "", "phone": "", "email": "",
                    "dpo_name": "DPD", "dpo_email": "dpd@test.fr", "dpo_phone": "", "dpo_address": "",
                    "representative": "", "security_measures": "" });
                let etag = self.etag(&url).await;
                let case = c(200).json(body);
                vec![if etag.is_empty() || etag == "\"0\"" { case } else { case.if_match(etag) }]
            }
            ("POST", "/api/v1/rgpd/breaches/{org}") => vec![c(201).json(breach)],
            ("POST", "/api/v1/rgpd/requests/{org}") => vec![c(201).json(request)],
            ("PUT", "/api/v1/rgpd/breaches/{org}/{id}") | ("PUT", "/api/v1/rgpd/requests/{org}/{id}") => {
                let list = url.replace("/{id}", "");
                let body = if p.contains("breaches") { breach } else { request };
                let created = self.post(&list, body.clone()).await;
                let etag = format!("\"{}\"", created["version"]);
                vec![case(method, url.replace("{id}", created["id"].as_str().unwrap()), 200).json(body).if_match(etag)]
            }
            _ => vec![c(200)],
        }
    }

    /// The request of a case, with or without its If-Match.
    fn request(&self, case: &Case, with_if_match: bool) -> RequestBuilder {
        let client = case.client.as_ref().unwrap_or(&self.admin);
        let mut req = client.request(case.method.clone(), self.url(&case.path));
        if let Some(body) = &case.body {
            req = req.json(body);
        }
        if let Some((content_type, bytes)) = &case.raw {
            req = req.header("content-type", *content_type).body(bytes.clone());
        }
        if let Some(etag) = case.if_match.as_ref().filter(|_| with_if_match) {
            req = req.header("if-match", etag);
        }
        if let Some(key) = &case.idempotency_key {
            req = req.header("idempotency-key", key);
        }
        req
    }

    /// Sends a case; returns what does not match the document.
    async fn check(&self, doc: &Value, template: &str, case: Case) -> Vec<String> {
        let label = format!("{} {}", case.method, case.path);
        let method = case.method.as_str().to_ascii_lowercase();
        let operation = &doc["paths"][template][&method];
        let mut errors = if_match_errors(operation, &case, &label);
        if case.if_match.is_some() && errors.is_empty() {
            // Without its If-Match, the documented 428 and nothing written.
            let resp = self.request(&case, false).send().await.unwrap();
            if resp.status() != 428 {
                errors.push(format!("{label}: {} without If-Match, documented 428", resp.status()));
            }
        }
        let resp = self.request(&case, true).send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let headers = resp.headers().clone();
        let etag_sent = headers.contains_key("etag");
        let bytes = resp.bytes().await.unwrap();
        if status != case.status && Some(status) != case.or_status {
            errors.push(format!(
                "{label}: status {status}, expected {}: {}",
                case.status,
                String::from_utf8_lossy(&bytes)
            ));
            return errors;
        }
        let Some(response) = operation["responses"].get(status.to_string()) else {
            errors.push(format!("{label}: status {status} is not documented"));
            return errors;
        };
        if etag_sent && response["headers"].get("ETag").is_none() {
            errors.push(format!("{label}: sends an ETag the document does not declare"));
        }
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            if header["required"] == true && !headers.contains_key(name.as_str()) {
                errors.push(format!("{label}: the document declares a {name} header, none sent"));
            }
        }
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            if !bytes.is_empty() {
                errors.push(format!("{label}: {status} documented without a body, got {} bytes", bytes.len()));
            }
            return errors;
        };
        let Some(content_type) = content_type else {
            errors.push(format!("{label}: no content type, documented {:?}", content.keys().collect::<Vec<_>>()));
            return errors;
        };
        let Some(media) = content.get(&content_type) else {
            errors.push(format!(
                "{label}: content type {content_type} not documented ({:?})",
                content.keys().collect::<Vec<_>>()
            ));
            return errors;
        };
        if content_type.contains("json") {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(body) => {
                    for e in schema_errors(doc, &media["schema"], &body, "") {
                        errors.push(format!("{label}: body {e}"));
                    }
                }
                Err(e) => errors.push(format!("{label}: body is not JSON: {e}")),
            }
        }
        errors
    }
}

/// What the case's use of `If-Match` says against the operation's documented header.
fn if_match_errors(operation: &Value, case: &Case, label: &str) -> Vec<String> {
    let documented = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["in"] == "header" && p["name"] == "If-Match")
        .map(|p| p["required"] == true);
    match (documented, case.if_match.is_some()) {
        (None, true) => vec![format!("{label}: sends If-Match, the document declares none")],
        (Some(true), false) => vec![format!("{label}: If-Match is documented as required, the case sends none")],
        _ => Vec::new(),
    }
}

backend_test!(every_operation_of_the_openapi_document_answers_as_documented);
async fn every_operation_of_the_openapi_document_answers_as_documented(db: crate::common::TestDb) {
    let document = entcp::api::openapi::document(&entcp::api::routes());
    let mut uncovered = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            if !OPERATIONS.iter().any(|(m, p)| *m == method && p == path) {
                uncovered.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        uncovered.is_empty(),
        "operations without a conformance case (add them to OPERATIONS and World::cases): {}",
        uncovered.join(", ")
    );
    let world = World::new(&db).await;
    let doc: Value = world.admin.get(world.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut failures = Vec::new();
    for (method, path) in OPERATIONS {
        assert!(
            doc["paths"][path].get(method.to_ascii_lowercase()).is_some(),
            "{method} {path} is not in the document"
        );
        let cases = world.cases(method, path).await;
        assert!(!cases.is_empty(), "{method} {path} has no conformance case");
        for case in cases {
            failures.extend(world.check(&doc, path, case).await);
        }
    }
    // Last, as it blocks the address: failed authentications end in the documented 429.
    let intruder = common::client_with("entcp_00000000_mauvais");
    for _ in 0..20 {
        intruder.get(world.url("/api/v1/me")).send().await.unwrap();
    }
    let throttled = Case { client: Some(intruder), ..case("GET", "/api/v1/me", 429) };
    failures.extend(world.check(&doc, "/api/v1/me", throttled).await);
    assert!(
        failures.is_empty(),
        "{}: {} disagreements with the document:\n{}",
        db.name,
        failures.len(),
        failures.join("\n")
    );
}

/// What in `value` the schema refuses, each with its JSON path (the subset described at the top).
fn schema_errors(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let schema = resolve(doc, schema);
    let Some(obj) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{at}: no value allowed"));
        }
        return errors;
    };
    let fail = |errors: &mut Vec<String>, what: String| {
        errors.push(format!("{}: {what}", if at.is_empty() { "$" } else { at }))
    };
    if let Some(types) = obj.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.iter().any(|t| type_matches(t, value)) {
            fail(&mut errors, format!("{value} is not of type {types:?}"));
            return errors;
        }
    }
    if let Some(Value::Array(allowed)) = obj.get("enum") {
        if !allowed.contains(value) {
            fail(&mut errors, format!("{value} not in enum {allowed:?}"));
        }
    }
    if let Some(constant) = obj.get("const") {
        if constant != value {
            fail(&mut errors, format!("{value} is not {constant}"));
        }
    }
    if let Some(s) = value.as_str() {
        let n = s.chars().count() as u64;
        if obj.get("minLength").and_then(Value::as_u64).is_some_and(|min| n < min) {
            fail(&mut errors, format!("string shorter than minLength: {s:?}"));
        }
        if obj.get("maxLength").and_then(Value::as_u64).is_some_and(|max| n > max) {
            fail(&mut errors, format!("string longer than maxLength: {s:?}"));
        }
    }
    if let Some(x) = value.as_f64() {
        if obj.get("minimum").and_then(Value::as_f64).is_some_and(|min| x < min) {
            fail(&mut errors, format!("{x} below minimum"));
        }
        if obj.get("maximum").and_then(Value::as_f64).is_some_and(|max| x > max) {
            fail(&mut errors, format!("{x} above maximum"));
        }
    }
    if let Value::Object(map) = value {
        let props = obj.get("properties").and_then(Value::as_object);
        for name in obj.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                fail(&mut errors, format!("required property {name} missing"));
            }
        }
        for (key, v) in map {
            let child = format!("{at}.{key}");
            match props.and_then(|p| p.get(key)) {
                Some(prop) => errors.extend(schema_errors(doc, prop, v, &child)),
                None => match obj.get("additionalProperties") {
                    Some(Value::Bool(false)) => fail(&mut errors, format!("unexpected property {key}")),
                    Some(extra @ Value::Object(_)) => errors.extend(schema_errors(doc, extra, v, &child)),
                    _ => {}
                },
            }
        }
    }
    if let Value::Array(items) = value {
        let prefix = obj.get("prefixItems").and_then(Value::as_array);
        for (i, item) in items.iter().enumerate() {
            let child = format!("{at}[{i}]");
            match prefix.and_then(|p| p.get(i)) {
                Some(s) => errors.extend(schema_errors(doc, s, item, &child)),
                None => {
                    if let Some(s) = obj.get("items") {
                        errors.extend(schema_errors(doc, s, item, &child));
                    }
                }
            }
        }
        if obj.get("minItems").and_then(Value::as_u64).is_some_and(|min| (items.len() as u64) < min) {
            fail(&mut errors, "fewer items than minItems".into());
        }
        if obj.get("maxItems").and_then(Value::as_u64).is_some_and(|max| (items.len() as u64) > max) {
            fail(&mut errors, "more items than maxItems".into());
        }
    }
    for s in obj.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        errors.extend(schema_errors(doc, s, value, at));
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = obj.get(keyword) {
            let matching = options.iter().filter(|s| schema_errors(doc, s, value, at).is_empty()).count();
            let ok = if keyword == "oneOf" { matching == 1 } else { matching >= 1 };
            if !ok {
                fail(&mut errors, format!("{value} matches {matching} of the {keyword} options"));
            }
        }
    }
    errors
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}")))
        }
        None => schema,
    }
}

fn type_matches(t: &str, value: &Value) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}
