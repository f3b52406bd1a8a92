//! The authorisation matrix: every mounted route × every role × (target in the
//! role's scope, target out of it) → the expected status. The table of who may
//! do what is written here, independently of the code; a route that has no
//! entry fails the test.

use crate::common;

use common::{admin, t0, token_for};
use entcp::clock::FixedClock;
use entcp::identity::{self, Role};
use entcp::registry::manage::{create_org, set_member, NewOrg};
use entcp::registry::queries::{self, OrgFilter};
use entcp::registry::{EtabType, Org, OrgKind};
use entcp::store::Store;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use Role::*;

const EVERYONE: &[Role] = &Role::ALL;
/// The roles that work on conventions (signatories, writers, DPO, auditeur); not users nor support staff.
const CONVENTION_READERS: &[Role] =
    &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2, Dpo, Auditeur];
const MEMBERS_WRITERS: &[Role] = &[Admin, Dan, Collectivite, Coordinateur];
const CONVENTION_WRITERS: &[Role] = &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur];
const CONVENTION_SIGNERS: &[Role] = &[Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2];
const SUPPORT_READERS: &[Role] = &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2, SupportN3];
const SUPPORT_CREATORS: &[Role] = &[Admin, Usager, ChefEtablissement, SupportN1, SupportN2];
const GROUPEMENT_READERS: &[Role] = &[Admin, Dan, Collectivite, Coordinateur];
const GROUPEMENT_MANAGERS: &[Role] = &[Admin, Coordinateur];
const GROUPEMENT_APPLICANTS: &[Role] = &[Admin, Collectivite];

/// Who may call each route (the rest get 403), and what kind of target it acts on.
const TABLE: &[(&str, &str, &[Role], Target)] = &[
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
    ("GET", "/api/v1/me", EVERYONE, Target::None),
    ("GET", "/api/v1/users", &[Admin, Dan, Auditeur], Target::None),
    ("POST", "/api/v1/users", &[Admin], Target::None),
    ("GET", "/api/v1/users/{id}", &[Admin, Dan, Auditeur], Target::User),
    ("PATCH", "/api/v1/users/{id}", &[Admin], Target::User),
    ("POST", "/api/v1/users/{id}/roles", &[Admin], Target::User),
    ("DELETE", "/api/v1/users/{id}/roles/{role}", &[Admin], Target::User),
    ("GET", "/api/v1/tokens", EVERYONE, Target::None),
    ("POST", "/api/v1/tokens", EVERYONE, Target::None),
    ("DELETE", "/api/v1/tokens/{id}", EVERYONE, Target::Token),
    ("GET", "/api/v1/audit", &[Admin, Auditeur, Dpo], Target::None),
    ("GET", "/api/v1/tenants", EVERYONE, Target::None),
    ("POST", "/api/v1/tenants", &[Admin, Dan, Collectivite], Target::Org),
    ("GET", "/api/v1/tenants/{slug}", EVERYONE, Target::Org),
    ("PUT", "/api/v1/tenants/{slug}", &[Admin, Dan, Collectivite], Target::Org),
    ("POST", "/api/v1/tenants/{slug}/transition", &[Admin, Dan], Target::Org),
    ("GET", "/api/v1/tenants/{slug}/events", EVERYONE, Target::Org),
    ("GET", "/api/v1/tenant-schema", EVERYONE, Target::None),
    ("GET", "/api/v1/convention-models", EVERYONE, Target::None),
    ("GET", "/api/v1/conventions", CONVENTION_READERS, Target::None),
    ("POST", "/api/v1/conventions", CONVENTION_WRITERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}", CONVENTION_READERS, Target::Convention),
    ("PATCH", "/api/v1/conventions/{id}", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/submit", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/visa", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/sign", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/refuse", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/terminate", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/amend", CONVENTION_WRITERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}/document", CONVENTION_READERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/signed-copies", CONVENTION_WRITERS, Target::Convention),
    ("GET", "/api/v1/catalog/services", EVERYONE, Target::None),
    ("GET", "/api/v1/catalog/services/{code}", EVERYONE, Target::None),
    ("GET", "/api/v1/catalog/bouquets", EVERYONE, Target::None),
    ("GET", "/api/v1/catalog/bouquets/{id}", EVERYONE, Target::None),
    ("GET", "/api/v1/jobs", &[Admin], Target::None),
    ("POST", "/api/v1/jobs/{name}/run", &[Admin], Target::None),
    ("GET", "/api/v1/outbox", &[Admin], Target::None),
    ("POST", "/api/v1/outbox/{id}/retry", &[Admin], Target::None),
    // support
    ("GET", "/api/v1/support/tickets", SUPPORT_READERS, Target::None),
    ("POST", "/api/v1/support/tickets", SUPPORT_CREATORS, Target::Ticket),
    ("GET", "/api/v1/support/tickets/{id}", SUPPORT_READERS, Target::Ticket),
    ("PATCH", "/api/v1/support/tickets/{id}", SUPPORT_READERS, Target::Ticket),
    ("GET", "/api/v1/support/tickets/{id}/history", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/comments", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/transition", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/escalate", SUPPORT_READERS, Target::Ticket),
    ("POST", "/api/v1/support/tickets/{id}/return", SUPPORT_READERS, Target::Ticket),
    ("GET", "/api/v1/support/report", &[Admin, SupportN1, SupportN2, SupportN3], Target::None),
    ("GET", "/api/v1/support/policies", SUPPORT_READERS, Target::None),
    ("GET", "/api/v1/support/tenants/{slug}/contract", &[Admin, Dan, SupportN1, SupportN2], Target::Org),
    ("PUT", "/api/v1/support/contracts/{org}", &[Admin, Dan], Target::Org),
    // groupements
    ("GET", "/api/v1/groupements", GROUPEMENT_READERS, Target::None),
    ("POST", "/api/v1/groupements", GROUPEMENT_MANAGERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}", GROUPEMENT_READERS, Target::None),
    ("PATCH", "/api/v1/groupements/{id}", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/transition", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/award", GROUPEMENT_MANAGERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/decp", GROUPEMENT_READERS, Target::None),
    ("GET", "/api/v1/groupements/{id}/prefill", GROUPEMENT_APPLICANTS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/applications", GROUPEMENT_READERS, Target::None),
    ("POST", "/api/v1/groupements/{id}/applications", GROUPEMENT_APPLICANTS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/applications/{application}/withdraw", GROUPEMENT_APPLICANTS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/applications/{application}/accept", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/acceptances", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/applications/{application}/reject", GROUPEMENT_MANAGERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/members", GROUPEMENT_READERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/shares", GROUPEMENT_READERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/documents", GROUPEMENT_READERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/documents", GROUPEMENT_MANAGERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/documents/{document}", GROUPEMENT_READERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/documents/{document}/share", GROUPEMENT_MANAGERS, Target::Groupement),
    ("GET", "/api/v1/groupement-library", &[Admin, Dan, Coordinateur], Target::None),
    // rgpd
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

/// RGPD registers: DPOs over what they cover, controllers (chef d'établissement,
/// collectivité, DAN for its académie) over their own organisation only.
const RGPD: &[Role] = &[Admin, Dpo, Dan, Collectivite, ChefEtablissement];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// No organisation in the request: the same answer in and out of scope.
    None,
    /// An organisation in the path.
    Org,
    /// An EPCI in the path.
    Group,
    /// The département of the organisation created.
    Departement,
    /// A user, in scope when their organisation is.
    User,
    /// A token: one's own is in scope, another user's is not.
    Token,
    /// A convention: in scope when the role's organisation is a party.
    Convention,
    /// A support ticket: in scope when it is the requester's own or at the role's level and scope.
    Ticket,
    /// A groupement coordinated by the in-scope EPCI (commune in scope a member), or by the other one.
    Groupement,
    /// An invitation of the in-scope EPCI to its commune, or of the other EPCI to the other commune.
    Invitation,
    /// An organisation's RGPD registers: in scope for a DPO covering it or a controller
    /// bound at the organisation itself (a DAN at its académie).
    Register,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    In,
    Out,
}

/// The registry and users every case runs against.
struct World {
    base: String,
    store: Store,
    tokens: HashMap<Role, String>,
    etab_in: Org,
    etab_out: Org,
    commune_in: Org,
    commune_out: Org,
    group_in: Org,
    group_out: Org,
    vendor: Org,
    user_in: String,
    user_out: String,
    sirens: AtomicU32,
    /// Convention start years, so that test conventions never overlap.
    years: AtomicU32,
}

fn luhn_siren(seed: u32) -> String {
    let body = format!("{:08}", 20_000_000 + seed);
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|candidate| entcp::registry::codes::parse_siren(candidate).is_ok())
        .unwrap()
}

async fn first(store: &Store, t: EtabType, not_academie: Option<&str>) -> Org {
    let filter = OrgFilter { etab_type: Some(t.as_str().into()), limit: Some(500), ..Default::default() };
    let page = queries::list_orgs(store, &filter, None).await.unwrap();
    page.items.into_iter().find(|o| not_academie.is_none_or(|a| o.academie_code.as_deref() != Some(a))).unwrap()
}

async fn group(store: &Store, name: &str, siren: &str, of: &Org) -> Org {
    let commune =
        queries::get_by_code(store, OrgKind::Commune, of.commune_code.as_ref().unwrap()).await.unwrap().unwrap();
    let new = NewOrg {
        kind: OrgKind::Epci,
        siren: siren.into(),
        name: name.into(),
        email: None,
        departement: of.departement_code.clone(),
    };
    let group = create_org(store, &admin(), new, t0()).await.unwrap();
    set_member(store, &admin(), &group, &commune, true, t0()).await.unwrap();
    group
}

async fn world(db: &common::TestDb) -> World {
    let store = db.store.clone();
    let mut csv = Vec::new();
    let options = entcp::synthetic::SyntheticOptions { etablissements: 1500, communes: 300, seed: 11 };
    entcp::synthetic::write_annuaire(&mut csv, &options).unwrap();
    let import = entcp::registry::import::ImportOptions::default();
    entcp::registry::import::import_annuaire(&store, &admin(), std::io::Cursor::new(csv), import, t0()).await.unwrap();

    let etab_in = first(&store, EtabType::EcoleElementaire, None).await;
    let academie_in = etab_in.academie_code.clone().unwrap();
    let etab_out = first(&store, EtabType::EcoleElementaire, Some(&academie_in)).await;
    let commune_of = |e: &Org| format!("commune:{}", e.commune_code.clone().unwrap());
    let commune_in = queries::resolve_org(&store, &commune_of(&etab_in)).await.unwrap();
    let commune_out = queries::resolve_org(&store, &commune_of(&etab_out)).await.unwrap();
    let group_in = group(&store, "CA du périmètre", &luhn_siren(1), &etab_in).await;
    let group_out = group(&store, "CA d'ailleurs", &luhn_siren(2), &etab_out).await;
    let vendor = NewOrg {
        kind: OrgKind::Editeur,
        siren: luhn_siren(3),
        name: "Éditeur ENT".into(),
        email: None,
        departement: None,
    };
    let vendor = create_org(&store, &admin(), vendor, t0()).await.unwrap();

    let academie = format!("academie:{academie_in}");
    let bindings: [(Role, Option<String>); 11] = [
        (Admin, None),
        (Dan, Some(academie.clone())),
        (Collectivite, Some(commune_in.id.clone())),
        (ChefEtablissement, Some(etab_in.id.clone())),
        (SupportN1, Some(etab_in.id.clone())),
        (SupportN2, Some(academie.clone())),
        (SupportN3, Some(vendor.id.clone())),
        (Dpo, Some(academie.clone())),
        (Coordinateur, Some(group_in.id.clone())),
        (Auditeur, Some(academie.clone())),
        (Usager, Some(etab_in.id.clone())),
    ];
    let mut tokens = HashMap::new();
    for (role, org) in bindings {
        let email = format!("{}@test.fr", role.as_str());
        tokens.insert(role, token_for(&store, &email, role, org.as_deref()).await);
    }
    let user = |email: &str, org: &Org| identity::NewUser {
        email: email.into(),
        display_name: email.into(),
        org: Some(org.id.clone()),
    };
    let user_in = identity::create_user(&store, &admin(), user("agent.in@test.fr", &etab_in), t0()).await.unwrap().id;
    let user_out =
        identity::create_user(&store, &admin(), user("agent.out@test.fr", &etab_out), t0()).await.unwrap().id;
    let base = common::serve(store.clone(), Arc::new(FixedClock::new(t0()))).await;
    // The vendor is N3 for the tenants of the académie in scope.
    let state = entcp::api::AppState::new(store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let academie_org = queries::resolve_org(&store, &academie).await.unwrap();
    let contract = entcp::support::ContractInput { n3: Some(vendor.id.clone()), ..Default::default() };
    entcp::support::set_contract(&state.support(), &admin(), &academie_org, &contract, t0()).await.unwrap();
    World {
        base,
        store,
        tokens,
        etab_in,
        etab_out,
        commune_in,
        commune_out,
        group_in,
        group_out,
        vendor,
        user_in,
        user_out,
        sirens: AtomicU32::new(100),
        years: AtomicU32::new(0),
    }
}

/// The request to send, or `None` when the role has no such target in its scope.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    csv: Option<String>,
    pdf: Option<Vec<u8>>,
    if_match: Option<i64>,
}

impl World {
    /// An organisation in the role's scope (its own, or a school it covers).
    fn org_in(&self, role: Role) -> &Org {
        match role {
            SupportN3 => &self.vendor,
            _ => &self.etab_in,
        }
    }

    /// The in-scope EPCI, for the roles whose scope holds it.
    fn group_in(&self, role: Role) -> Option<&Org> {
        matches!(role, Admin | Dan | SupportN2 | Dpo | Auditeur | Coordinateur).then_some(&self.group_in)
    }

    fn next_siren(&self) -> String {
        luhn_siren(self.sirens.fetch_add(1, Ordering::SeqCst))
    }

    /// The parties of a tripartite convention for the school in or out of scope.
    fn tripartite(&self, side: Side, start: &str) -> entcp::conventions::workflow::NewConvention {
        let (etab, commune) = match side {
            Side::In => (&self.etab_in, &self.commune_in),
            Side::Out => (&self.etab_out, &self.commune_out),
        };
        let body = json!({
            "model": "tripartite-premier-degre",
            "parties": {
                "academie": format!("academie:{}", etab.academie_code.clone().unwrap()),
                "collectivite": commune.id,
                "etablissement": etab.id,
            },
            "start_date": start,
        });
        serde_json::from_value(body).unwrap()
    }

    /// An EntTenant document for a school, with a fresh slug.
    fn tenant_doc(&self, school: &Org) -> Value {
        let n = self.sirens.fetch_add(1, Ordering::SeqCst);
        json!({
            "apiVersion": "entcp.education.fr/v1",
            "kind": "EntTenant",
            "metadata": { "name": format!("t{n}") },
            "spec": { "organisation": school.id, "hostname": format!("t{n}.ent.example.fr"), "bouquet": "socle-1d" }
        })
    }

    /// A start date whose 36 months overlap no other test convention.
    fn next_start(&self, past: bool) -> String {
        let n = self.years.fetch_add(1, Ordering::SeqCst) as i32;
        let year = if past { 2026 - 4 * (n + 1) } else { 2030 + 4 * n };
        format!("{year}-01-01")
    }

    async fn actor_of(&self, role: Role) -> identity::Actor {
        let user = identity::get_user(&self.store, &format!("{}@test.fr", role.as_str())).await.unwrap().unwrap();
        let bindings = identity::bindings_of(&self.store, &user.id).await.unwrap();
        identity::Actor { user_id: Some(user.id), name: format!("user:{}", user.email), bindings }
    }

    /// A convention in the given state, for the school in or out of scope.
    async fn convention(&self, side: Side, state: &str) -> entcp::conventions::Convention {
        use entcp::conventions::workflow::{self, Ctx};
        let models = entcp::conventions::model::load_models(None).unwrap();
        let admin = admin();
        let store = &self.store;
        let models = &models;
        let start = self.next_start(state == "active");
        let mut conv =
            workflow::create(&Ctx { store, models, actor: &admin, now: t0() }, self.tripartite(side, &start))
                .await
                .unwrap();
        if state == "draft" {
            return conv;
        }
        conv = workflow::submit(&Ctx { store, models, actor: &admin, now: t0() }, &conv).await.unwrap();
        if state == "in_signature" {
            return conv;
        }
        for role in [Dan, Collectivite, ChefEtablissement] {
            let actor = match side {
                Side::In => self.actor_of(role).await,
                Side::Out => self.signer_out(role).await,
            };
            conv = workflow::sign(&Ctx { store, models, actor: &actor, now: t0() }, &conv, None, None).await.unwrap();
        }
        conv
    }

    /// Signers of the out-of-scope parties, created on first use.
    async fn signer_out(&self, role: Role) -> identity::Actor {
        let email = format!("{}.out@test.fr", role.as_str());
        if identity::get_user(&self.store, &email).await.unwrap().is_none() {
            let org = match role {
                Dan => format!("academie:{}", self.etab_out.academie_code.clone().unwrap()),
                Collectivite => self.commune_out.id.clone(),
                _ => self.etab_out.id.clone(),
            };
            token_for(&self.store, &email, role, Some(&org)).await;
        }
        let user = identity::get_user(&self.store, &email).await.unwrap().unwrap();
        let bindings = identity::bindings_of(&self.store, &user.id).await.unwrap();
        identity::Actor { user_id: Some(user.id), name: format!("user:{email}"), bindings }
    }

    async fn version(&self, org: &Org) -> i64 {
        queries::get_org(&self.store, &org.id).await.unwrap().unwrap().version
    }

    async fn call(&self, method: &str, path: &str, role: Role, side: Side) -> Option<Call> {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let call = |path: String| Call { method: m.clone(), path, body: None, csv: None, pdf: None, if_match: None };
        let org = match side {
            Side::In => self.org_in(role),
            Side::Out => &self.etab_out,
        };
        let group = match side {
            Side::In => self.group_in(role),
            Side::Out => Some(&self.group_out),
        };
        let commune = if side == Side::In { &self.commune_in } else { &self.commune_out };
        let user = if side == Side::In { &self.user_in } else { &self.user_out };
        Some(match (method, path) {
            ("GET", "/api/v1/orgs") => call("/api/v1/orgs?limit=5".into()),
            ("POST", "/api/v1/orgs") => {
                let etab = if side == Side::In { &self.etab_in } else { &self.etab_out };
                let body = json!({ "kind": "epci", "siren": self.next_siren(), "name": "Nouvel EPCI", "departement": etab.departement_code });
                Call { body: Some(body), ..call(path.into()) }
            }
            ("GET", "/api/v1/orgs/{key}") => call(format!("/api/v1/orgs/{}", org.id)),
            ("PATCH", "/api/v1/orgs/{key}") => {
                let target = match (side, role) {
                    (Side::In, Collectivite) => &self.commune_in,
                    _ => org,
                };
                let body = json!({ "email": "contact@test.fr" });
                Call {
                    body: Some(body),
                    if_match: Some(self.version(target).await),
                    ..call(format!("/api/v1/orgs/{}", target.id))
                }
            }
            ("GET", "/api/v1/orgs/{key}/covers") => call(format!("/api/v1/orgs/{}/covers", org.id)),
            ("GET", "/api/v1/orgs/{key}/members") => call(format!("/api/v1/orgs/{}/members", group?.id)),
            ("PUT", "/api/v1/orgs/{key}/members/{commune}") => Call {
                body: Some(json!({ "ent_delegated": false })),
                ..call(format!("/api/v1/orgs/{}/members/{}", group?.id, commune.code))
            },
            ("DELETE", "/api/v1/orgs/{key}/members/{commune}") => {
                let group = group?;
                set_member(&self.store, &admin(), group, commune, false, t0()).await.unwrap();
                call(format!("/api/v1/orgs/{}/members/{}", group.id, commune.code))
            }
            ("GET", "/api/v1/orgs/{key}/invitations") => call(format!("/api/v1/orgs/{}/invitations", group?.id)),
            ("POST", "/api/v1/orgs/{key}/invitations") => Call {
                body: Some(json!({ "commune": self.commune_out.code })),
                ..call(format!("/api/v1/orgs/{}/invitations", group?.id))
            },
            (_, p) if p.starts_with("/api/v1/membership-invitations/") => {
                let group = if side == Side::In { &self.group_in } else { &self.group_out };
                let invitation =
                    entcp::registry::invitations::invite(&self.store, &admin(), group, commune, true, t0())
                        .await
                        .unwrap();
                call(p.replace("{id}", &invitation.id))
            }
            ("POST", "/api/v1/imports/annuaire") => Call {
                csv: Some(
                    "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie\n"
                        .into(),
                ),
                ..call(path.into())
            },
            ("GET", "/api/v1/me") | ("GET", "/api/v1/users") | ("GET", "/api/v1/tokens") => call(path.into()),
            ("POST", "/api/v1/users") => {
                let email = format!("nouveau.{}@test.fr", self.next_siren());
                Call { body: Some(json!({ "email": email, "display_name": "Nouvel agent" })), ..call(path.into()) }
            }
            ("GET", "/api/v1/users/{id}") => call(format!("/api/v1/users/{user}")),
            ("PATCH", "/api/v1/users/{id}") => {
                let version = identity::get_user(&self.store, user).await.unwrap().unwrap().version;
                Call {
                    body: Some(json!({ "display_name": "Agent renommé" })),
                    if_match: Some(version),
                    ..call(format!("/api/v1/users/{user}"))
                }
            }
            ("POST", "/api/v1/users/{id}/roles") => Call {
                body: Some(json!({ "role": "chef_etablissement", "org": org.id })),
                ..call(format!("/api/v1/users/{user}/roles"))
            },
            ("DELETE", "/api/v1/users/{id}/roles/{role}") => {
                let target = if side == Side::In { &self.etab_in } else { &self.etab_out };
                identity::grant(&self.store, &admin(), user, SupportN1, Some(target), t0()).await.unwrap();
                call(format!("/api/v1/users/{user}/roles/support_n1?org={}", target.id))
            }
            ("POST", "/api/v1/tokens") => Call { body: Some(json!({ "name": "matrice" })), ..call(path.into()) },
            ("DELETE", "/api/v1/tokens/{id}") => {
                let owner = match side {
                    Side::In => {
                        identity::get_user(&self.store, &format!("{}@test.fr", role.as_str()))
                            .await
                            .unwrap()
                            .unwrap()
                            .id
                    }
                    Side::Out => self.user_out.clone(),
                };
                let token =
                    identity::create_token(&self.store, &admin(), &owner, "à révoquer", None, t0()).await.unwrap();
                call(format!("/api/v1/tokens/{}", token.info.id))
            }
            ("GET", "/api/v1/audit") => call("/api/v1/audit?limit=5".into()),
            ("GET", "/api/v1/jobs") | ("GET", "/api/v1/outbox") => call(path.into()),
            ("POST", "/api/v1/jobs/{name}/run") => call("/api/v1/jobs/outbox-purge/run".into()),
            ("POST", "/api/v1/outbox/{id}/retry") => {
                let mut tx = self.store.begin_write().await.unwrap();
                let id =
                    entcp::notify::enqueue(&mut tx, &["dan@ac-test.fr".into()], "test", json!({}), t0()).await.unwrap();
                tx.commit().await.unwrap();
                call(format!("/api/v1/outbox/{id}/retry"))
            }
            ("GET", "/api/v1/tenants") | ("GET", "/api/v1/tenant-schema") => call(path.into()),
            ("POST", "/api/v1/tenants") => {
                let school = if side == Side::In { &self.etab_in } else { &self.etab_out };
                if side == Side::In && role == SupportN3 {
                    return None;
                }
                Call { body: Some(self.tenant_doc(school)), ..call(path.into()) }
            }
            (_, p) if p.starts_with("/api/v1/tenants/{slug}") => {
                if side == Side::In && role == SupportN3 {
                    return None;
                }
                let school = if side == Side::In { &self.etab_in } else { &self.etab_out };
                let doc = self.tenant_doc(school);
                let apply: entcp::tenants::EntTenant = serde_json::from_value(doc.clone()).unwrap();
                let state =
                    entcp::api::AppState::new(self.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
                let (_, tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &apply, None).await.unwrap();
                let url = p.replace("{slug}", &tenant.slug);
                match method {
                    "PUT" => {
                        let mut changed = doc;
                        changed["spec"]["options"] = json!(["visio"]);
                        Call { body: Some(changed), if_match: Some(tenant.version), ..call(url) }
                    }
                    "POST" => Call { body: Some(json!({ "to": "provisioning" })), ..call(url) },
                    _ => call(url),
                }
            }
            ("GET", "/api/v1/convention-models")
            | ("GET", "/api/v1/catalog/services")
            | ("GET", "/api/v1/catalog/bouquets") => call(path.into()),
            ("GET", "/api/v1/catalog/services/{code}") => call("/api/v1/catalog/services/cahier-de-textes".into()),
            ("GET", "/api/v1/catalog/bouquets/{id}") => call("/api/v1/catalog/bouquets/socle-2d?version=1".into()),
            ("GET", "/api/v1/conventions") => call("/api/v1/conventions?limit=5".into()),
            ("POST", "/api/v1/conventions") => {
                if side == Side::In && !is_party(role) {
                    return None;
                }
                let body = serde_json::to_value(json_of_new(&self.tripartite(side, &self.next_start(false)))).unwrap();
                Call { body: Some(body), ..call(path.into()) }
            }
            (_, p) if p.starts_with("/api/v1/conventions/{id}") => {
                if side == Side::In && !is_party(role) {
                    return None;
                }
                let state = match p {
                    "/api/v1/conventions/{id}/visa"
                    | "/api/v1/conventions/{id}/sign"
                    | "/api/v1/conventions/{id}/refuse" => "in_signature",
                    "/api/v1/conventions/{id}/terminate" | "/api/v1/conventions/{id}/signed-copies" => "signed",
                    "/api/v1/conventions/{id}/amend" => "active",
                    _ => "draft",
                };
                let conv = self.convention(side, state).await;
                let url = p.replace("{id}", &conv.id);
                match p {
                    "/api/v1/conventions/{id}" if method == "PATCH" => {
                        Call { body: Some(json!({ "title": "Titre revu" })), if_match: Some(conv.version), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/refuse" => {
                        Call { body: Some(json!({ "comment": "À revoir" })), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/terminate" => {
                        Call { body: Some(json!({ "reason": "Changement de solution" })), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/visa" | "/api/v1/conventions/{id}/sign" => {
                        Call { body: Some(json!({})), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/signed-copies" => {
                        Call { pdf: Some(b"%PDF-1.4 signed".to_vec()), ..call(url) }
                    }
                    _ => call(url),
                }
            }
            (_, p) if p.starts_with("/api/v1/support/") => self.support_call(method, p, role, side).await?,
            (_, p) if p.starts_with("/api/v1/groupement") => self.groupement_call(m.clone(), p, role, side).await,
            (_, p) if p.starts_with("/api/v1/rgpd/") => return Some(self.rgpd_call(m, p, role, side).await),
            other => panic!("route {other:?} has no request in the matrix"),
        })
    }

    /// The organisation whose registers `role` may read: its own as controller, a covered school as DPO.
    async fn rgpd_org(&self, role: Role, side: Side) -> Org {
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

    async fn rgpd_call(&self, method: Method, path: &str, role: Role, side: Side) -> Call {
        let org = self.rgpd_org(role, side).await;
        let state = entcp::api::AppState::new(self.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
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

    async fn send(&self, role: Role, call: Call) -> (u16, String) {
        let client = common::client_with(&self.tokens[&role]);
        let mut req = client.request(call.method, format!("{}{}", self.base, call.path));
        if let Some(body) = call.body {
            req = req.json(&body);
        }
        if let Some(csv) = call.csv {
            req = req.header("content-type", "text/csv").body(csv);
        }
        if let Some(pdf) = call.pdf {
            req = req.header("content-type", "application/pdf").body(pdf);
        }
        if let Some(version) = call.if_match {
            req = req.header("if-match", format!("\"{version}\""));
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

fn success(method: &str, path: &str) -> u16 {
    match (method, path) {
        // No convention covers the test schools: the governance gate answers.
        ("POST", "/api/v1/tenants/{slug}/transition") => 409,
        ("POST", "/api/v1/orgs")
        | ("POST", "/api/v1/orgs/{key}/invitations")
        | ("POST", "/api/v1/users")
        | ("POST", "/api/v1/tokens")
        | ("POST", "/api/v1/tenants")
        | ("POST", "/api/v1/rgpd/breaches/{org}")
        | ("POST", "/api/v1/rgpd/requests/{org}") => 201,
        ("DELETE", p) if p != "/api/v1/tokens/{id}" => 204,
        ("PUT", "/api/v1/support/contracts/{org}") => 204,
        _ => 200,
    }
}

/// Roles bound to an organisation that is party to the test conventions.
fn is_party(role: Role) -> bool {
    !matches!(role, SupportN3 | Coordinateur)
}

fn json_of_new(new: &entcp::conventions::workflow::NewConvention) -> Value {
    let parties: serde_json::Map<String, Value> = new
        .parties
        .iter()
        .map(|(k, v)| match v {
            entcp::conventions::workflow::PartyInput::One(o) => (k.clone(), json!(o)),
            entcp::conventions::workflow::PartyInput::Many(os) => (k.clone(), json!(os)),
        })
        .collect();
    json!({ "model": new.model, "parties": parties, "start_date": new.start_date })
}

/// What a party member gets from the convention routes, the workflow's own rules included.
fn convention_success(method: &str, path: &str, role: Role) -> u16 {
    let signer = matches!(role, Dan | Collectivite | ChefEtablissement);
    match (method, path) {
        ("POST", "/api/v1/conventions") | ("POST", "/api/v1/conventions/{id}/amend") => 201,
        // The premier-degré model asks no visa.
        ("POST", "/api/v1/conventions/{id}/visa") => 409,
        ("POST", "/api/v1/conventions/{id}/sign") | ("POST", "/api/v1/conventions/{id}/refuse") if !signer => 403,
        _ => 200,
    }
}

/// What the table says `role` should get.
fn expected(method: &str, path: &str, allowed: &[Role], target: Target, role: Role, side: Side) -> u16 {
    if !allowed.contains(&role) {
        return 403;
    }
    if target == Target::Ticket {
        return ticket_expected(method, path, role, side);
    }
    if target == Target::Groupement {
        return groupement_expected(method, path, role, side);
    }
    if target == Target::Invitation {
        return invitation_expected(path, role, side);
    }
    if method == "PUT" && path == "/api/v1/orgs/{key}/members/{commune}" && side == Side::In && role == Coordinateur {
        // The commune is readable (a member) but only someone acting for it adds it: an invitation.
        return 403;
    }
    if target == Target::Convention {
        return match (side, role) {
            (Side::In, _) | (Side::Out, Admin) => convention_success(method, path, role),
            // Creating with other organisations as parties is refused; others' conventions are not revealed.
            (Side::Out, _) if path == "/api/v1/conventions" => 403,
            (Side::Out, _) => 404,
        };
    }
    if side == Side::In || role == Admin || target == Target::None {
        return success(method, path);
    }
    match (method, path) {
        // The organisation of the document is named like an unknown one.
        ("POST", "/api/v1/tenants") => 422,
        // Out of scope and unreadable: not revealed, read or write.
        _ => 404,
    }
}

/// An invitation is answered for the commune (accept, decline) or for the group (decline).
fn invitation_expected(path: &str, role: Role, side: Side) -> u16 {
    match (side, role) {
        (_, Admin) => 200,
        (Side::Out, _) => 404,
        (Side::In, Coordinateur) if path.ends_with("/accept") => 403,
        (Side::In, _) => 200,
    }
}

#[tokio::test]
async fn every_route_answers_each_role_in_and_out_of_scope_as_the_table_says() {
    for route in entcp::api::routes() {
        let known = TABLE.iter().any(|(m, p, _, _)| *m == route.method.as_str() && *p == route.path);
        assert!(known, "{} {} has no entry in the authorisation matrix", route.method, route.path);
    }
    for db in common::backends().await {
        let world = world(&db).await;
        let mut failures = Vec::new();
        for (method, path, allowed, target) in TABLE {
            for role in Role::ALL {
                for side in [Side::In, Side::Out] {
                    let Some(call) = world.call(method, path, role, side).await else { continue };
                    let want = expected(method, path, allowed, *target, role, side);
                    let (got, body) = world.send(role, call).await;
                    if got != want {
                        failures.push(format!(
                            "{method} {path} as {} ({side:?}): {got}, expected {want}: {body}",
                            role.as_str()
                        ));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}: {} mismatches:\n{}", db.name, failures.len(), failures.join("\n"));
    }
}

/// The request of `call` with every id of its path replaced by one that exists nowhere.
fn with_missing_ids(template: &str, call: &Call) -> Call {
    let (path, query) = match call.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (call.path.as_str(), None),
    };
    let segments: Vec<String> = template
        .split('/')
        .zip(path.split('/'))
        .map(|(t, actual)| match t {
            "{role}" | "{name}" | "{code}" => actual.to_string(),
            t if t.starts_with('{') => "inexistant-0000".to_string(),
            _ => actual.to_string(),
        })
        .collect();
    let path = match query {
        Some(q) => format!("{}?{q}", segments.join("/")),
        None => segments.join("/"),
    };
    Call {
        method: call.method.clone(),
        path,
        body: call.body.clone(),
        csv: call.csv.clone(),
        pdf: call.pdf.clone(),
        if_match: call.if_match,
    }
}

/// The sorted members of a JSON object: what "the same body shape" compares.
fn shape(body: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut keys: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

#[tokio::test]
async fn an_out_of_scope_id_and_a_missing_id_answer_alike() {
    for db in common::backends().await {
        let world = world(&db).await;
        let mut failures = Vec::new();
        for (method, path, allowed, target) in TABLE {
            // Groupements are public facts to their readers: refusals there may say 403.
            if !path.contains('{') || matches!(target, Target::None | Target::Groupement) {
                continue;
            }
            for role in allowed.iter().copied().filter(|r| *r != Admin) {
                let Some(out) = world.call(method, path, role, Side::Out).await else { continue };
                let missing = with_missing_ids(path, &out);
                let (out_status, out_body) = world.send(role, out).await;
                let (missing_status, missing_body) = world.send(role, missing).await;
                if out_status != missing_status || shape(&out_body) != shape(&missing_body) {
                    failures.push(format!(
                        "{method} {path} as {}: out of scope {out_status} {out_body} / missing {missing_status} {missing_body}",
                        role.as_str()
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}: {} oracles:\n{}", db.name, failures.len(), failures.join("\n"));
    }
}

impl World {
    async fn is_member(&self, group: &Org, commune: &Org) -> bool {
        queries::members_of_group(&self.store, &group.id).await.unwrap().iter().any(|(c, _)| c.id == commune.id)
    }

    fn request(&self, method: &str, path: String, body: Option<Value>) -> Call {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        Call { method, path, body, csv: None, pdf: None, if_match: None }
    }
}

/// Relationship writes name a second organisation (a commune joining a group, the académie a
/// row moves a school to, the N1 of a support contract, a tenant's organisation): each is
/// sent with that second organisation inside and outside the caller's scope.
#[tokio::test]
async fn relationship_writes_check_every_organisation_they_touch() {
    for db in common::backends().await {
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
        let state = entcp::api::AppState::new(w.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
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
}

#[tokio::test]
async fn unauthenticated_and_bad_tokens_get_401_problems() {
    let db = common::sqlite().await;
    let base = common::serve(db.store.clone(), Arc::new(FixedClock::new(t0()))).await;
    let client = reqwest::Client::new();
    for route in entcp::api::routes() {
        let path = route.path.replace('{', "x").replace('}', "");
        let resp = client
            .request(Method::from_bytes(route.method.as_str().as_bytes()).unwrap(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{} {}", route.method, route.path);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
    let resp = client.get(format!("{base}/api/v1/me")).bearer_auth("entcp_00000000_nope").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let token = token_for(&db.store, "revoked@test.fr", Admin, None).await;
    let me = client.get(format!("{base}/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let id = identity::list_tokens(&db.store, None).await.unwrap()[0].id.clone();
    identity::revoke_token(&db.store, &admin(), &id, t0()).await.unwrap();
    let revoked = client.get(format!("{base}/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(revoked.status(), 401);

    let user = identity::get_user(&db.store, "revoked@test.fr").await.unwrap().unwrap();
    let expiring = identity::create_token(
        &db.store,
        &admin(),
        &user.id,
        "court",
        Some(t0() + chrono::Duration::minutes(5)),
        t0() - chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    let valid = client.get(format!("{base}/api/v1/me")).bearer_auth(&expiring.token).send().await.unwrap();
    assert_eq!(valid.status(), 200, "valid until five minutes past t0");
    let clock_after = Arc::new(FixedClock::new(t0() + chrono::Duration::minutes(10)));
    let later = common::serve(db.store.clone(), clock_after).await;
    let expired = client.get(format!("{later}/api/v1/me")).bearer_auth(&expiring.token).send().await.unwrap();
    assert_eq!(expired.status(), 401, "expired tokens are refused");
}

// support

impl World {
    /// A tenant with a fresh slug for the school in or out of scope.
    async fn support_tenant(&self, side: Side) -> entcp::tenants::Tenant {
        let school = if side == Side::In { &self.etab_in } else { &self.etab_out };
        let apply: entcp::tenants::EntTenant = serde_json::from_value(self.tenant_doc(school)).unwrap();
        let state = entcp::api::AppState::new(self.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
        entcp::tenants::apply(&state.tenants(), &admin(), &apply, None).await.unwrap().1
    }

    /// A ticket at the level of `role` (N1 otherwise), opened by the role itself when it is a requester.
    async fn support_ticket(&self, role: Role, side: Side) -> entcp::support::Ticket {
        use entcp::support::tickets::{self, Ctx, EscalateInput, NewTicket};
        let tenant = self.support_tenant(side).await;
        let state = entcp::api::AppState::new(self.store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
        let requester = match (side, role) {
            (Side::In, ChefEtablissement) => self.actor_of(ChefEtablissement).await,
            (Side::In, _) => self.actor_of(Usager).await,
            (Side::Out, _) => self.signer_out(Usager).await,
        };
        let new = NewTicket {
            tenant: tenant.slug.clone(),
            subject: "Connexion impossible".into(),
            description: "Message d'erreur à la connexion.".into(),
            category: "acces".into(),
            service: None,
            impact: "moyenne".into(),
            urgency: "moyenne".into(),
            priority: None,
        };
        let mut ticket =
            tickets::create(&Ctx { state: &state.support(), actor: &requester, now: t0() }, new).await.unwrap();
        let levels = match (side, role) {
            (Side::In, SupportN2) => 1,
            (Side::In, SupportN3) => 2,
            _ => 0,
        };
        let admin = admin();
        for _ in 0..levels {
            let ctx = Ctx { state: &state.support(), actor: &admin, now: t0() };
            let up = EscalateInput { reason: "Hors de portée de ce niveau".into(), share_requester: false };
            ticket = tickets::escalate(&ctx, &ticket.id, ticket.version, up).await.unwrap();
        }
        ticket
    }

    async fn support_call(&self, method: &str, path: &str, role: Role, side: Side) -> Option<Call> {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let call = |path: String| Call { method: m.clone(), path, body: None, csv: None, pdf: None, if_match: None };
        match (method, path) {
            ("GET", "/api/v1/support/tickets") => Some(call("/api/v1/support/tickets?limit=5".into())),
            ("GET", "/api/v1/support/report") | ("GET", "/api/v1/support/policies") => Some(call(path.into())),
            ("POST", "/api/v1/support/tickets") => {
                let tenant = self.support_tenant(side).await;
                let body = json!({ "tenant": tenant.slug, "subject": "Panne", "description": "Rien ne marche.", "category": "autre", "impact": "basse", "urgency": "basse" });
                Some(Call { body: Some(body), ..call(path.into()) })
            }
            ("GET", "/api/v1/support/tenants/{slug}/contract") => {
                let tenant = self.support_tenant(side).await;
                Some(call(format!("/api/v1/support/tenants/{}/contract", tenant.slug)))
            }
            ("PUT", "/api/v1/support/contracts/{org}") => {
                let org = if side == Side::In { &self.etab_in } else { &self.etab_out };
                Some(Call {
                    body: Some(json!({ "policy": "standard" })),
                    ..call(format!("/api/v1/support/contracts/{}", org.id))
                })
            }
            (_, p) => {
                let ticket = self.support_ticket(role, side).await;
                let url = p.replace("{id}", &ticket.id);
                let body = match p {
                    "/api/v1/support/tickets/{id}" if method == "PATCH" => {
                        Some(json!({ "assigned_team": "Équipe réseau" }))
                    }
                    "/api/v1/support/tickets/{id}/comments" => Some(json!({ "body": "Un commentaire." })),
                    "/api/v1/support/tickets/{id}/transition" => Some(json!({ "to": "in_progress" })),
                    "/api/v1/support/tickets/{id}/escalate" => Some(json!({ "reason": "Besoin du niveau supérieur." })),
                    "/api/v1/support/tickets/{id}/return" => Some(json!({ "answer": "Voici la réponse." })),
                    _ => None,
                };
                let if_match =
                    (method == "PATCH" || body.is_some() && !p.ends_with("/comments")).then_some(ticket.version);
                Some(Call { body, if_match, ..call(url) })
            }
        }
    }
}

/// What `role` gets on a ticket route (the role is allowed by the table).
fn ticket_expected(method: &str, path: &str, role: Role, side: Side) -> u16 {
    let requester = matches!(role, Usager | ChefEtablissement);
    match (side, method, path) {
        // A tenant the role cannot see is an unknown tenant.
        (Side::Out, "POST", "/api/v1/support/tickets") if role != Admin => 422,
        // Others' tickets are not revealed, even to a write.
        (Side::Out, _, _) if role != Admin => 404,
        (_, "POST", "/api/v1/support/tickets") => 201,
        (_, "GET", _) => 200,
        (_, "POST", "/api/v1/support/tickets/{id}/comments") => 201,
        // A requester only comments (and closes a resolved ticket).
        _ if requester => 403,
        (_, "POST", "/api/v1/support/tickets/{id}/escalate") if role == SupportN3 => 409,
        (_, "POST", "/api/v1/support/tickets/{id}/return") if matches!(role, Admin | SupportN1) => 409,
        _ => 200,
    }
}

// groupements

/// What a role allowed by the table gets on a groupement coordinated by the
/// in-scope EPCI (its commune a member) or by the other one.
fn groupement_expected(method: &str, path: &str, role: Role, side: Side) -> u16 {
    let created = matches!(
        (method, path),
        ("POST", "/api/v1/groupements")
            | ("POST", "/api/v1/groupements/{id}/applications")
            | ("POST", "/api/v1/groupements/{id}/documents")
    );
    let ok = if created { 201 } else { 200 };
    let reach = match role {
        Admin => true,
        // The coordinator of its own groupement; a member commune.
        Coordinateur | Collectivite => side == Side::In,
        _ => false,
    };
    if reach {
        ok
    } else if method == "GET" && path != "/api/v1/groupements/{id}/prefill" || role == Collectivite {
        // A collectivité applies for itself: another applicant it cannot read is not revealed.
        404
    } else {
        403
    }
}

/// The catalog and convention models, parsed once for every groupement call.
fn groupement_fixtures() -> &'static (entcp::catalog::Catalog, Vec<entcp::conventions::model::ConventionModel>) {
    static FIXTURES: std::sync::OnceLock<(entcp::catalog::Catalog, Vec<entcp::conventions::model::ConventionModel>)> =
        std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| {
        (entcp::catalog::Catalog::load(None).unwrap(), entcp::conventions::model::load_models(None).unwrap())
    })
}

impl World {
    fn groupement_ctx<'a>(
        &'a self,
        catalog: &'a entcp::catalog::Catalog,
        models: &'a [entcp::conventions::model::ConventionModel],
        actor: &'a identity::Actor,
    ) -> entcp::groupements::Ctx<'a> {
        static SUPPORT: std::sync::OnceLock<entcp::support::policy::Policies> = std::sync::OnceLock::new();
        let support = SUPPORT.get_or_init(entcp::support::policy::Policies::shipped);
        entcp::groupements::Ctx { store: &self.store, catalog, support, models, actor, now: t0() }
    }

    /// A groupement coordinated by the EPCI of `side`, its commune a member and
    /// the other commune an applicant; moved on to `state` (`open`, `consultation`, `awarded`).
    /// Returns (groupement, member application, pending application).
    async fn groupement(&self, side: Side, state: &str) -> (entcp::groupements::Groupement, String, String) {
        use entcp::groupements::{self as gm, membership};
        let (catalog, models) = groupement_fixtures();
        let admin = admin();
        let ctx = self.groupement_ctx(catalog, models, &admin);
        let (coordinator, member, other) = match side {
            Side::In => (&self.group_in, &self.commune_in, &self.commune_out),
            Side::Out => (&self.group_out, &self.commune_out, &self.commune_in),
        };
        let new: gm::NewGroupement = serde_json::from_value(json!({
            "coordinator": coordinator.id, "title": "ENT 1er degré", "object": "Fourniture d'un ENT",
            "application_deadline": "2026-12-31",
        }))
        .unwrap();
        let g = gm::create(&ctx, new).await.unwrap();
        let apply = |org: &Org| {
            serde_json::from_value::<membership::NewApplication>(json!({
                "applicant": org.id, "deliberation_number": "D-1", "deliberation_date": "2026-06-01",
            }))
            .unwrap()
        };
        let mine = membership::apply(&ctx, &g, member, apply(member)).await.unwrap();
        let theirs = membership::apply(&ctx, &g, other, apply(other)).await.unwrap();
        let g = gm::must_get(&self.store, &g.id).await.unwrap();
        membership::accept(&ctx, &g, &mine).await.unwrap();
        let mut g = gm::must_get(&self.store, &g.id).await.unwrap();
        if state != "open" {
            for to in [gm::Status::Closed, gm::Status::Consultation] {
                g = gm::transition(&ctx, &g, to).await.unwrap();
            }
        }
        if state == "awarded" {
            let input: gm::award::AwardInput = serde_json::from_value(self.award_body("0001")).unwrap();
            g = gm::award::award(&ctx, &g, input).await.unwrap();
            // Published by its coordinator: then every reader gets the open-data record.
            gm::award::decp_publication(&ctx, &g).await.unwrap();
            g = gm::must_get(&self.store, &g.id).await.unwrap();
        }
        (g, mine.id, theirs.id)
    }

    async fn groupement_document(&self, g: &entcp::groupements::Groupement) -> String {
        let (catalog, models) = groupement_fixtures();
        let admin = admin();
        let ctx = self.groupement_ctx(catalog, models, &admin);
        let kind = entcp::groupements::documents::Kind::Cctp;
        entcp::groupements::documents::generate(&ctx, g, kind).await.unwrap().0.id
    }

    async fn groupement_call(&self, method: Method, path: &str, role: Role, side: Side) -> Call {
        let call =
            |path: String| Call { method: method.clone(), path, body: None, csv: None, pdf: None, if_match: None };
        let allowed = TABLE.iter().find(|(m, p, _, _)| *m == method.as_str() && *p == path).map(|(_, _, r, _)| *r);
        if !allowed.is_some_and(|roles| roles.contains(&role)) {
            // Refused by the role check before the path is read: no groupement to build.
            let placeholder = entcp::store::new_id();
            let path = path.replace("{id}", &placeholder).replace("{application}", &placeholder);
            return call(path.replace("{document}", &placeholder));
        }
        let (member, coordinator) = match side {
            Side::In => (&self.commune_in, &self.group_in),
            Side::Out => (&self.commune_out, &self.group_out),
        };
        let state = match path {
            "/api/v1/groupements/{id}/award" => "consultation",
            "/api/v1/groupements/{id}/shares" | "/api/v1/groupements/{id}/decp" => "awarded",
            _ => "open",
        };
        if path == "/api/v1/groupements" || path == "/api/v1/groupement-library" {
            return match method.as_str() {
                "POST" => {
                    let body = json!({
                        "coordinator": coordinator.id, "title": "Achat ENT", "object": "ENT des écoles",
                        "application_deadline": "2026-12-31",
                    });
                    Call { body: Some(body), ..call(path.into()) }
                }
                _ => call(path.into()),
            };
        }
        let (g, mine, theirs) = self.groupement(side, state).await;
        let url = path.replace("{id}", &g.id);
        match path {
            "/api/v1/groupements/{id}" if method == Method::PATCH => {
                Call { body: Some(json!({ "title": "Achat revu" })), if_match: Some(g.version), ..call(url) }
            }
            "/api/v1/groupements/{id}/transition" => Call { body: Some(json!({ "to": "closed" })), ..call(url) },
            "/api/v1/groupements/{id}/award" => Call { body: Some(self.award_body("0002")), ..call(url) },
            "/api/v1/groupements/{id}/prefill" => call(format!("{url}?applicant={}", member.id)),
            "/api/v1/groupements/{id}/applications" if method == Method::POST => {
                // A fresh groupement: the member commune applies there for the first time.
                let (fresh, _, _) = self.groupement(if side == Side::In { Side::Out } else { Side::In }, "open").await;
                let body =
                    json!({ "applicant": member.id, "deliberation_number": "D-9", "deliberation_date": "2026-06-01" });
                let url = format!("/api/v1/groupements/{}/applications", fresh.id);
                // Withdraw the setup's own application so the commune may apply again.
                self.withdraw_setup(&fresh, member).await;
                Call { body: Some(body), ..call(url) }
            }
            "/api/v1/groupements/{id}/applications/{application}/withdraw" => call(url.replace("{application}", &mine)),
            "/api/v1/groupements/{id}/applications/{application}/accept" => call(url.replace("{application}", &theirs)),
            "/api/v1/groupements/{id}/acceptances" => {
                Call { body: Some(json!({ "applications": [theirs] })), ..call(url) }
            }
            "/api/v1/groupements/{id}/applications/{application}/reject" => Call {
                body: Some(json!({ "reason": "Hors périmètre" })),
                ..call(url.replace("{application}", &theirs))
            },
            "/api/v1/groupements/{id}/documents" if method == Method::POST => {
                Call { body: Some(json!({ "kind": "cctp" })), ..call(url) }
            }
            "/api/v1/groupements/{id}/documents/{document}" => {
                let doc = self.groupement_document(&g).await;
                call(url.replace("{document}", &doc))
            }
            "/api/v1/groupements/{id}/documents/{document}/share" => {
                let doc = self.groupement_document(&g).await;
                Call { body: Some(json!({ "shared": true })), ..call(url.replace("{document}", &doc)) }
            }
            _ => call(url),
        }
    }

    /// An award to the test vendor, at its establishment `nic` (4 digits), with every DECP fact.
    fn award_body(&self, nic: &str) -> Value {
        let siren = &self.vendor.code;
        let siret = (0..10)
            .map(|d| format!("{siren}{nic}{d}"))
            .find(|s| entcp::registry::codes::parse_siret(s).is_ok())
            .unwrap();
        json!({
            "vendor_siret": siret, "amount_ht_cents": 100_000, "amount_ttc_cents": 120_000, "notified_on": "2026-09-01",
            "decp": {
                "acheteur_siret": siret, "code_cpv": "48190000", "techniques": ["Sans objet"],
                "modalites_execution": ["Bons de commande"], "marche_innovant": false, "ccag": "Pas de CCAG",
                "offres_recues": 2, "attribution_avance": false, "type_groupement_operateurs": "Pas de groupement",
                "sous_traitance_declaree": false, "procedure": "Procédure adaptée", "forme_prix": "Forfaitaire",
                "types_prix": ["Définitif ferme"], "considerations_sociales": ["Pas de considération sociale"],
                "considerations_environnementales": ["Pas de considération environnementale"],
                "lieu_execution_code": "FR", "lieu_execution_type": "Code pays"
            }
        })
    }

    /// Withdraws `org`'s application to `g` (it applied during the setup).
    async fn withdraw_setup(&self, g: &entcp::groupements::Groupement, org: &Org) {
        use entcp::groupements::membership;
        let (catalog, models) = groupement_fixtures();
        let admin = admin();
        let ctx = self.groupement_ctx(catalog, models, &admin);
        let apps = membership::list(&self.store, &g.id, None).await.unwrap();
        let app = apps.into_iter().find(|a| a.applicant.id == org.id).unwrap();
        membership::withdraw(&ctx, g, &app).await.unwrap();
    }
}
