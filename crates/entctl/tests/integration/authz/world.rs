//! The registry and users every authorisation case runs against, and how a case is sent.

use super::*;
use common::TestApp;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Target {
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
pub(super) enum Side {
    In,
    Out,
}

/// The registry and users every case runs against.
pub(super) struct World {
    /// The API, called in process.
    pub(super) app: TestApp,
    pub(super) store: Store,
    /// The state the capability functions that build the targets are called with (its
    /// catalog, models and policies parsed once).
    pub(super) state: entcp::api::AppState,
    pub(super) tokens: HashMap<Role, String>,
    pub(super) etab_in: Org,
    pub(super) etab_out: Org,
    pub(super) commune_in: Org,
    pub(super) commune_out: Org,
    pub(super) group_in: Org,
    pub(super) group_out: Org,
    pub(super) vendor: Org,
    pub(super) user_in: String,
    pub(super) user_out: String,
    pub(super) sirens: AtomicU32,
    /// Convention start years, so that test conventions never overlap.
    pub(super) years: AtomicU32,
    /// Start years of the conventions dated in the past, counted apart.
    pub(super) past_years: AtomicU32,
    /// Targets the case under way leaves as they are, by what they are (see [`World::kept`]).
    spare: std::sync::Mutex<HashMap<String, Box<dyn std::any::Any + Send>>>,
    /// Whether the case under way leaves its target as it is: a read, or a refusal.
    leaves_target: std::sync::atomic::AtomicBool,
}

pub(super) fn luhn_siren(seed: u32) -> String {
    common::fixtures::luhn(&format!("{:08}", 20_000_000 + seed))
}

pub(super) async fn first(store: &Store, t: EtabType, not_academie: Option<&str>) -> Org {
    let filter = OrgFilter { etab_type: Some(t.as_str().into()), limit: Some(500), ..Default::default() };
    let page = queries::list_orgs(store, &filter, None).await.unwrap();
    page.items.into_iter().find(|o| not_academie.is_none_or(|a| o.academie_code.as_deref() != Some(a))).unwrap()
}

pub(super) async fn group(store: &Store, name: &str, siren: &str, of: &Org) -> Org {
    let commune =
        queries::get_by_code(store, OrgKind::Commune, of.commune_code.as_ref().unwrap()).await.unwrap().unwrap();
    let group = common::fixtures::new_org(store, OrgKind::Epci, name, siren, of.departement_code.as_deref()).await;
    set_member(store, &admin(), &group, &commune, true, t0()).await.unwrap();
    group
}

pub(super) async fn world(db: &common::TestDb) -> World {
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
    let vendor = common::fixtures::new_org(&store, OrgKind::Editeur, "Éditeur ENT", &luhn_siren(3), None).await;

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
    // The matrix probes the password change of every role with a wrong current password, all
    // from one address: no lockout between its probes (the sign-in throttle has its own tests).
    let app = TestApp::over(&store).config(|c| c.console.sign_in_throttle.max_failures = 0).build().await;
    // The vendor is N3 for the tenants of the académie in scope.
    let state = crate::common::app::app_state(store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let academie_org = queries::resolve_org(&store, &academie).await.unwrap();
    let contract = entcp::support::ContractInput { n3: Some(vendor.id.clone()), ..Default::default() };
    entcp::support::set_contract(&state.support(), &admin(), &academie_org, &contract, t0()).await.unwrap();
    World {
        app,
        store,
        state,
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
        past_years: AtomicU32::new(0),
        spare: Default::default(),
        leaves_target: Default::default(),
    }
}

/// The request to send, or `None` when the role has no such target in its scope.
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) body: Option<Value>,
    pub(super) csv: Option<String>,
    pub(super) pdf: Option<Vec<u8>>,
    pub(super) if_match: Option<i64>,
}

impl World {
    /// Says whether the next cases leave their targets as they are (a read, or a refusal,
    /// which writes nothing): [`World::kept`] then hands them the same target.
    pub(super) fn leaves_targets_unchanged(&self, unchanged: bool) {
        self.leaves_target.store(unchanged, Ordering::SeqCst);
    }

    /// The target `key` names, made by `make` unless an earlier case that left it as it was
    /// kept one: a signed convention or an escalated ticket takes a dozen writes to build,
    /// and most cases of a route are refusals. A case that may change its target takes it
    /// out of the spares. A refusal that wrote anyway would show in the next case's answer.
    pub(super) async fn kept<T, F>(&self, key: String, make: impl FnOnce() -> F) -> T
    where
        T: Clone + Send + 'static,
        F: std::future::Future<Output = T>,
    {
        let keep = self.leaves_target.load(Ordering::SeqCst);
        let spare = {
            let mut spares = self.spare.lock().unwrap();
            match keep {
                true => spares.get(&key).and_then(|t| t.downcast_ref::<T>()).cloned(),
                false => spares.remove(&key).and_then(|t| t.downcast::<T>().ok()).map(|t| *t),
            }
        };
        if let Some(target) = spare {
            return target;
        }
        let target = make().await;
        if keep {
            self.spare.lock().unwrap().insert(key, Box::new(target.clone()));
        }
        target
    }

    /// An organisation in the role's scope (its own, or a school it covers).
    pub(super) fn org_in(&self, role: Role) -> &Org {
        match role {
            SupportN3 => &self.vendor,
            _ => &self.etab_in,
        }
    }

    /// The organisations out of every test role's scope (an out-of-scope request names them).
    pub(super) fn orgs_out(&self) -> [&Org; 3] {
        [&self.etab_out, &self.commune_out, &self.group_out]
    }

    /// The in-scope EPCI, for the roles whose scope holds it.
    pub(super) fn group_in(&self, role: Role) -> Option<&Org> {
        matches!(role, Admin | Dan | SupportN2 | Dpo | Auditeur | Coordinateur).then_some(&self.group_in)
    }

    pub(super) fn next_siren(&self) -> String {
        luhn_siren(self.sirens.fetch_add(1, Ordering::SeqCst))
    }

    /// The parties of a tripartite convention for the school in or out of scope.
    pub(super) fn tripartite(&self, side: Side, start: &str) -> entcp::conventions::workflow::NewConvention {
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
            // One year each: the next one starts the year after.
            "end_date": format!("{}-12-31", &start[..4]),
            // The test world dates conventions in the past so that they never overlap (#15: with a reason).
            "backdate_reason": "monde de test",
        });
        serde_json::from_value(crate::common::fixtures::with_signatories(body)).unwrap()
    }

    /// An EntTenant document for a school, with a fresh slug.
    pub(super) fn tenant_doc(&self, school: &Org) -> Value {
        let n = self.sirens.fetch_add(1, Ordering::SeqCst);
        json!({
            "apiVersion": "entcp.education.fr/v1",
            "kind": "EntTenant",
            "metadata": { "name": format!("t{n}") },
            "spec": { "organisation": school.id, "hostname": format!("t{n}.ent.example.fr"), "bouquet": "socle-1d" }
        })
    }

    /// The first day of a year no other test convention runs in ([`World::tripartite`] ends it
    /// on that year's last day): years from 2025 down, or from 2030 up, within the days a
    /// convention may name (2000 to 2099).
    pub(super) fn next_start(&self, past: bool) -> String {
        let counter = if past { &self.past_years } else { &self.years };
        let n = counter.fetch_add(1, Ordering::SeqCst) as i32;
        let year = if past { 2025 - n } else { 2030 + n };
        format!("{year}-01-01")
    }

    pub(super) async fn actor_of(&self, role: Role) -> identity::Actor {
        let user = identity::get_user(&self.store, &format!("{}@test.fr", role.as_str())).await.unwrap().unwrap();
        let bindings = identity::bindings_of(&self.store, &user.id).await.unwrap();
        identity::Actor { user_id: Some(user.id), name: format!("user:{}", user.email), bindings }
    }

    /// A convention in the given state, for the school in or out of scope.
    /// A signed copy deposited for the convention `conv_id` (its row written as a deposit writes
    /// it, once): its file id.
    pub(super) async fn signed_copy(&self, conv_id: &str) -> String {
        let id = format!("copie-{conv_id}");
        sqlx::query(
            "INSERT INTO convention_files (id, convention_id, file_name, content_type, sha256, size, content, \
             uploaded_by, uploaded_at) VALUES ($1, $2, 'copie-signee.pdf', 'application/pdf', '0', 8, $3, 'admin', $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(conv_id)
        .bind(b"%PDF-1.4".to_vec())
        .bind(entcp::store::timestamp(t0()))
        .execute(self.store.pool())
        .await
        .unwrap();
        id
    }

    pub(super) async fn convention(&self, side: Side, state: &str) -> entcp::conventions::Convention {
        use entcp::conventions::workflow::{self, Ctx};
        let admin = admin();
        let store = &self.store;
        let models = &super::groupements::groupement_fixtures().1;
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
        // `signed_once`: in signature, signed by the académie's DAN only.
        let signers: &[Role] = if state == "signed_once" { &[Dan] } else { &[Dan, Collectivite, ChefEtablissement] };
        for &role in signers {
            let actor = match side {
                Side::In => self.actor_of(role).await,
                Side::Out => self.signer_out(role).await,
            };
            conv = workflow::sign(
                &Ctx { store, models, actor: &actor, now: t0() },
                &conv,
                crate::common::fixtures::delegated_signing(),
            )
            .await
            .unwrap();
        }
        conv
    }

    /// Signers of the out-of-scope parties, created on first use.
    pub(super) async fn signer_out(&self, role: Role) -> identity::Actor {
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

    pub(super) async fn version(&self, org: &Org) -> i64 {
        queries::get_org(&self.store, &org.id).await.unwrap().unwrap().version
    }

    pub(super) async fn call(&self, method: &str, path: &str, role: Role, side: Side) -> Option<Call> {
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
                body: Some(json!({ "commune": commune.code })),
                ..call(format!("/api/v1/orgs/{}/invitations", group?.id))
            },
            (_, p) if p.starts_with("/api/v1/membership-invitations/") => {
                let group = if side == Side::In { &self.group_in } else { &self.group_out };
                let proposed = entcp::registry::manage::Membership { group, commune, ent_delegated: true };
                let invitation =
                    entcp::registry::invitations::invite(&self.store, &admin(), &proposed, t0()).await.unwrap();
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
            ("GET", "/api/v1/me/notification-preferences") => call(path.into()),
            ("PUT", "/api/v1/me/notification-preferences") => {
                Call { body: Some(json!({ "rgpd": false, "tickets": true })), ..call(path.into()) }
            }
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
                identity::grant(&self.store, &admin(), identity::UserRole::new(user, SupportN1, Some(target)), t0())
                    .await
                    .unwrap();
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
                let ids =
                    entcp::notify::enqueue(&mut tx, &["dan@ac-test.fr".into()], "test", json!({}), t0()).await.unwrap();
                tx.commit().await.unwrap();
                call(format!("/api/v1/outbox/{}/retry", ids[0]))
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
                let state = self.state.clone();
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
                let mut body = json_of_new(&self.tripartite(side, &self.next_start(false)));
                own_signatory_only(&mut body, role);
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
                    "/api/v1/conventions/{id}/terminate"
                    | "/api/v1/conventions/{id}/non-renewal"
                    | "/api/v1/conventions/{id}/signed-copies"
                    | "/api/v1/conventions/{id}/signed-copies/{file_id}"
                    | "/api/v1/conventions/{id}/signed-document" => "signed",
                    "/api/v1/conventions/{id}/amend" => "active",
                    "/api/v1/conventions/{id}/signatures/{party}/withdraw" => "signed_once",
                    _ => "draft",
                };
                let conv = self.kept(format!("convention {side:?} {state}"), || self.convention(side, state)).await;
                let mut url = p.replace("{id}", &conv.id).replace("{party}", "academie");
                if p.ends_with("{file_id}") {
                    url = url.replace("{file_id}", &self.signed_copy(&conv.id).await);
                }
                match p {
                    "/api/v1/conventions/{id}" if method == "PATCH" => {
                        Call { body: Some(json!({ "title": "Titre revu" })), if_match: Some(conv.version), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/refuse" => {
                        Call { body: Some(json!({ "comment": "À revoir" })), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/signatures/{party}/withdraw" => Call {
                        body: Some(json!({ "reason": "Signée par erreur" })),
                        if_match: Some(conv.version),
                        ..call(url)
                    },
                    "/api/v1/conventions/{id}/terminate" => {
                        Call { body: Some(json!({ "reason": "Changement de solution" })), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/sign" => {
                        Call { body: Some(crate::common::fixtures::by_delegation(json!({}))), ..call(url) }
                    }
                    "/api/v1/conventions/{id}/visa" | "/api/v1/conventions/{id}/non-renewal" => {
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

    pub(super) async fn send(&self, role: Role, call: Call) -> (u16, String) {
        let mut req = self.app.request(call.method, &call.path).bearer(&self.tokens[&role]);
        if let Some(body) = call.body {
            req = req.json(&body);
        }
        if let Some(csv) = call.csv {
            req = req.bytes("text/csv", csv);
        }
        if let Some(pdf) = call.pdf {
            req = req.bytes("application/pdf", pdf);
        }
        if let Some(version) = call.if_match {
            req = req.if_match(version);
        }
        let resp = req.send().await;
        (resp.status, resp.text)
    }
}

/// A party's signatory is designated by that party, or by the DAN who drafts the convention: a
/// convention body as another role sends it names its own party's signatory only (the parties
/// given by their key alone).
fn own_signatory_only(body: &mut Value, role: Role) {
    let own = match role {
        Admin | Dan => return,
        Collectivite => "collectivite",
        ChefEtablissement => "etablissement",
        _ => "",
    };
    for (key, party) in body["parties"].as_object_mut().into_iter().flatten() {
        if key != own {
            *party = party["org"].clone();
        }
    }
}
