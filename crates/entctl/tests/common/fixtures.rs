//! Fixture builders: organisations, tenants, conventions, tickets and groupements.
//! Organisations go through the registry functions (the operator's import and
//! creation); the rest through the API of a [`TestApp`], as a user of the caller's
//! choice, so that a fixture is built the way a client would build it.

use super::{admin, t0, Resp, TestApp};
use entcp::kernel::roles::OrgKind;
use entcp::registry::manage::{create_org, set_member, NewOrg};
use entcp::registry::{queries, Org};
use entcp::store::Store;
use serde_json::{json, Value};

/// Grants `email` (an existing user) `role` at `org` (a key) besides the roles it holds.
pub async fn grant_also(store: &Store, email: &str, role: entcp::kernel::roles::Role, org: &str) {
    let user = entcp::identity::get_user(store, email).await.unwrap().unwrap();
    let org = entcp::registry::resolve_org(store, org).await.unwrap();
    let binding = entcp::identity::UserRole::new(&user.id, role, Some(&org));
    entcp::identity::grant(store, &admin(), binding, t0()).await.unwrap();
}

/// A valid UAI for seven digits (the check letter computed by trial).
pub fn uai(digits: &str) -> String {
    ('A'..='Z').map(|c| format!("{digits}{c}")).find(|u| entcp::registry::codes::parse_uai(u).is_ok()).unwrap()
}

/// A valid SIREN (Luhn) derived from `seed`; distinct seeds give distinct SIRENs.
pub fn siren(seed: u32) -> String {
    luhn(&format!("{:08}", 40_000_000 + seed))
}

/// A SIREN for an EPCI or a syndicat mixte, which the INSEE numbers from 2 like every public
/// body of a collectivité, from `seed` (below a million).
pub fn group_siren(seed: u32) -> String {
    luhn(&format!("{:08}", 20_100_000 + seed))
}

/// A 9- or 14-digit number (SIREN, SIRET) with a valid Luhn key, from its prefix.
pub fn luhn(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|c| entcp::registry::codes::parse_siret(c).is_ok() || entcp::registry::codes::parse_siren(c).is_ok())
        .unwrap()
}

/// Imports an annuaire CSV (`;`-separated, the export's header) as the operator, at [`t0`].
pub async fn annuaire(store: &Store, csv: &str) {
    let options = entcp::registry::import::ImportOptions::default();
    let reader = std::io::Cursor::new(csv.as_bytes().to_vec());
    entcp::registry::import::import_annuaire(store, &admin(), reader, options, t0()).await.expect("annuaire imported");
}

/// Imports a synthetic annuaire of `etablissements` schools in `communes` communes.
pub async fn synthetic_annuaire(store: &Store, etablissements: usize, communes: usize, seed: u64) {
    let mut csv = Vec::new();
    let options = entcp::synthetic::SyntheticOptions { etablissements, communes, seed };
    entcp::synthetic::write_annuaire(&mut csv, &options).expect("synthetic annuaire");
    annuaire(store, &String::from_utf8(csv).expect("UTF-8 annuaire")).await;
}

/// An organisation by key (`id`, `kind:code`).
pub async fn org(store: &Store, key: &str) -> Org {
    queries::resolve_org(store, key).await.unwrap_or_else(|p| panic!("organisation {key}: {p:?}"))
}

/// A new organisation of `kind` created by the operator.
pub async fn new_org(store: &Store, kind: OrgKind, name: &str, siren: &str, departement: Option<&str>) -> Org {
    let new = NewOrg {
        kind,
        siren: siren.into(),
        name: name.into(),
        email: None,
        departement: departement.map(str::to_string),
    };
    create_org(store, &admin(), new, t0()).await.expect("organisation created")
}

/// An EPCI of the département of its first member, with `members` (communes) in it.
pub async fn epci(store: &Store, name: &str, siren: &str, members: &[&Org]) -> Org {
    let departement = members.first().and_then(|c| c.departement_code.clone());
    let group = new_org(store, OrgKind::Epci, name, siren, departement.as_deref()).await;
    for commune in members {
        set_member(store, &admin(), &group, commune, true, t0()).await.expect("member added");
    }
    group
}

/// The body of `POST /groupements/{id}/award` to the vendor `siren` at its
/// establishment `nic` (4 digits), by the coordinator of SIREN `buyer` (its
/// establishment 0001), with every DECP fact.
pub fn award_body(siren: &str, nic: &str, buyer: &str) -> Value {
    let siret = luhn(&format!("{siren}{nic}"));
    json!({
        "vendor_siret": siret, "notified_on": "2026-09-01", "advance_renounced": true,
        "decp": ent_testkit::award::decp_facts(&luhn(&format!("{buyer}0001"))),
        "unit_prices": [
            { "lot": 1, "line": "account_year", "unit_price_ht_cents": 450 },
            { "lot": 1, "line": "school_setup", "unit_price_ht_cents": 35_000 }
        ],
    })
}

/// Asserts a status and returns the body.
pub fn expect(resp: Resp, status: u16, what: &str) -> Value {
    assert_eq!(resp.status, status, "{what}: {}", resp.text);
    resp.body
}

/// A tenant `slug` for organisation `org` (id or key) with `bouquet`, applied by `who`.
pub async fn tenant(app: &TestApp, who: &str, slug: &str, org: &str, bouquet: &str) -> Value {
    let doc = json!({
        "apiVersion": "entcp.education.fr/v1",
        "kind": "EntTenant",
        "metadata": { "name": slug },
        "spec": { "organisation": org, "hostname": format!("{slug}.ent.example.fr"), "bouquet": bouquet }
    });
    expect(app.post("/api/v1/tenants").acting_as(who).json(&doc).send().await, 201, "tenant")
}

/// The body of a tripartite premier-degré convention, its signatories recorded.
pub fn tripartite(academie: &str, collectivite: &str, etablissement: &str, start_date: &str) -> Value {
    with_signatories(json!({
        "model": "tripartite-premier-degre",
        "parties": { "academie": academie, "collectivite": collectivite, "etablissement": etablissement },
        "start_date": start_date,
    }))
}

/// A signatory acting by delegation, empowered by an act, as every party may give it.
pub fn signatory() -> Value {
    json!({
        "name": "Mme Camille Martin",
        "quality": "représentante habilitée",
        "delegation": "arrêté n° 2025-07",
        "delegation_date": "2025-06-30",
        "act_number": "2025-42",
        "act_date": "2025-06-30"
    })
}

/// The délégation de signature the kit's users sign with (`delegation` of a signature): none of
/// them is the representative the kit's conventions name ([`signatory`]), so each signs « pour …
/// et par délégation ».
pub fn delegation() -> Value {
    json!({ "quality": "adjointe chargée du numérique", "act": "arrete", "number": "2025-19", "date": "2025-06-30" })
}

/// A signature's `body` given by délégation ([`delegation`]), unless it says `delegation` itself
/// (`null`: as the representative named).
pub fn by_delegation(mut body: Value) -> Value {
    if body.get("delegation").is_none() {
        body["delegation"] = delegation();
    }
    body
}

/// A signature through `workflow::sign` given by [`delegation`].
pub fn delegated_signing() -> entcp::conventions::workflow::Signing<'static> {
    let delegation = serde_json::from_value(delegation()).expect("a délégation");
    entcp::conventions::workflow::Signing { delegation: Some(delegation), ..Default::default() }
}

/// The fields of the console's signing form for [`delegation`].
pub const DELEGATION_FORM: [(&str, &str); 4] = [
    ("delegation_qualite", "adjointe chargée du numérique"),
    ("delegation_acte", "arrete"),
    ("delegation_numero", "2025-19"),
    ("delegation_date", "2025-06-30"),
];

/// A groupement's convention constitutive of `body` (an API convention body), drafted as the
/// groupement's flow drafts it (no one names its parties by hand): its id.
pub async fn constitutive(store: &Store, body: Value) -> String {
    use entcp::conventions::workflow::{self, Ctx};
    let models = entcp::conventions::model::load_models(None).expect("the models");
    let actor = admin();
    let ctx = Ctx { store, models: &models, actor: &actor, now: t0() };
    let new = serde_json::from_value(body).expect("a convention body");
    workflow::create_constitutive(&ctx, new).await.expect("the convention constitutive").id
}

/// A convention body whose single-organisation parties are given with [`signatory`]: the
/// models of the tripartite and bipartite conventions require one before submission (#15).
pub fn with_signatories(mut body: Value) -> Value {
    if let Some(parties) = body["parties"].as_object_mut() {
        for party in parties.values_mut() {
            if let Value::String(org) = party {
                *party = json!({ "org": org.clone(), "signatory": signatory() });
            }
        }
    }
    body
}

/// The `signatories` of a PATCH naming who signs for every party of a groupement's convention
/// constitutive (`conv` as the API answers it): the coordinator with its délibération, each member
/// (`membre:<org id>`) by name and quality added to what is recorded — its act is the délibération
/// of its application.
pub fn groupement_signatories(conv: &Value) -> Value {
    let mut signatories = serde_json::Map::new();
    for party in conv["parties"].as_array().expect("parties") {
        let key = party["key"].as_str().expect("key");
        let org = party["org"]["id"].as_str().expect("org id");
        let value = if key == "membre" {
            // What the groupement recorded (the délibération of its application), completed.
            let mut recorded = party["signatory"].as_object().cloned().unwrap_or_default();
            recorded.insert(
                "name".into(),
                json!(format!("M. le maire de {}", party["org"]["name"].as_str().unwrap_or(""))),
            );
            recorded.insert("quality".into(), json!("maire"));
            Value::Object(recorded)
        } else {
            json!({ "name": "Mme Claire Roux", "quality": "présidente", "act_number": "2026-CS-12", "act_date": "2026-05-20" })
        };
        let key = if key == "membre" { format!("membre:{org}") } else { key.to_string() };
        signatories.insert(key, value);
    }
    json!({ "signatories": signatories })
}

/// A draft convention created by `who`.
pub async fn convention(app: &TestApp, who: &str, body: &Value) -> Value {
    expect(app.post("/api/v1/conventions").acting_as(who).json(body).send().await, 201, "convention")
}

/// The body of `POST /api/v1/support/tickets` on tenant `slug`: « ENT inaccessible », « Page
/// blanche. », category `acces`, impact and urgency `moyenne` (P3 with the shipped matrix),
/// unless told otherwise.
#[derive(Debug, Clone)]
pub struct TicketBody(Value);

/// A [`TicketBody`] on tenant `slug`.
pub fn ticket_body(slug: &str) -> TicketBody {
    TicketBody(json!({ "tenant": slug, "subject": "ENT inaccessible", "description": "Page blanche.",
        "category": "acces", "impact": "moyenne", "urgency": "moyenne" }))
}

impl TicketBody {
    /// Its subject and description.
    pub fn about(mut self, subject: &str, description: &str) -> TicketBody {
        self.0["subject"] = json!(subject);
        self.0["description"] = json!(description);
        self
    }

    /// Its impact and urgency (`haute`, `moyenne`, `basse`).
    pub fn graded(mut self, impact: &str, urgency: &str) -> TicketBody {
        self.0["impact"] = json!(impact);
        self.0["urgency"] = json!(urgency);
        self
    }

    /// Its category (`acces`, `donnees`, `autre`; `service` wants a service).
    pub fn category(mut self, category: &str) -> TicketBody {
        self.0["category"] = json!(category);
        self
    }

    /// The JSON body.
    pub fn json(&self) -> Value {
        self.0.clone()
    }
}

/// A support ticket on tenant `slug` opened by `who`.
pub async fn ticket(app: &TestApp, who: &str, slug: &str, subject: &str) -> Value {
    let body = ticket_body(slug).about(subject, "Décrit par le test.").graded("haute", "haute").json();
    expect(app.post("/api/v1/support/tickets").acting_as(who).json(&body).send().await, 201, "ticket")
}

/// An open groupement coordinated by `coordinator` (id or key), created by `who`.
pub async fn groupement(app: &TestApp, who: &str, coordinator: &str) -> Value {
    let body = json!({
        "coordinator": coordinator,
        "title": "ENT 1er degré 2027-2030",
        "object": "Fourniture, hébergement, maintenance et assistance d'un ENT pour les écoles des membres",
        "cost_key": [{ "basis": "pupils", "weight": 70 }, { "basis": "equal", "weight": 30 }],
        "application_deadline": "2026-10-15",
        "consultation_date": "2026-11-02",
        "award_planned_date": "2027-01-15",
    });
    expect(app.post("/api/v1/groupements").acting_as(who).json(&body).send().await, 201, "groupement")
}

/// The école `0940176F` of the sample annuaire as its usual tests see it, built through the
/// API: its tenant `fresnes-ecole` (applied by `admin`), a ticket opened on it by `chef` (its
/// chef d'établissement) and a draft tripartite convention with its commune (by `admin`).
pub struct FresnesSchool {
    pub school: Org,
    pub commune: Org,
    pub tenant: Value,
    pub ticket: Value,
    pub convention: Value,
}

/// Builds [`FresnesSchool`] in `app`, whose store holds the sample annuaire.
pub async fn fresnes_school(app: &TestApp, admin: &str, chef: &str) -> FresnesSchool {
    let school = org(&app.store, "0940176F").await;
    let commune = org(&app.store, "commune:94034").await;
    let tenant = tenant(app, admin, "fresnes-ecole", &school.id, "socle-1d").await;
    let ticket = ticket(app, chef, "fresnes-ecole", "ENT inaccessible").await;
    let body = tripartite("academie:24", &commune.id, &school.id, "2027-01-01");
    let convention = convention(app, admin, &body).await;
    FresnesSchool { school, commune, tenant, ticket, convention }
}
