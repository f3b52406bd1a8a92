//! Authorisation cases: Groupements de commandes.

use super::*;
use entcp::groupements::documents::Kind;

pub(super) const GROUPEMENT_READERS: &[Role] = &[Admin, Dan, Collectivite, Coordinateur];
pub(super) const GROUPEMENT_MANAGERS: &[Role] = &[Admin, Coordinateur];
pub(super) const GROUPEMENT_APPLICANTS: &[Role] = &[Admin, Collectivite];

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/groupements", GROUPEMENT_READERS, Target::None),
    ("POST", "/api/v1/groupements", GROUPEMENT_MANAGERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}", GROUPEMENT_READERS, Target::None),
    ("PATCH", "/api/v1/groupements/{id}", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/transition", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/award", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/sans-suite", GROUPEMENT_MANAGERS, Target::Groupement),
    ("POST", "/api/v1/groupements/{id}/lots/{lot}/sans-suite", GROUPEMENT_MANAGERS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/decp", GROUPEMENT_READERS, Target::None),
    ("GET", "/api/v1/groupements/{id}/prefill", GROUPEMENT_APPLICANTS, Target::Groupement),
    ("GET", "/api/v1/groupements/{id}/applications", GROUPEMENT_READERS, Target::None),
    ("POST", "/api/v1/groupements/{id}/applications", GROUPEMENT_APPLICANTS, Target::Groupement),
    ("PATCH", "/api/v1/groupements/{id}/applications/{application}", GROUPEMENT_APPLICANTS, Target::Groupement),
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
];

/// What a role allowed by the table gets on a groupement coordinated by the
/// in-scope EPCI (its commune a member) or by the other one.
pub(super) fn groupement_expected(method: &str, path: &str, role: Role, side: Side) -> u16 {
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
    let names_applicant = matches!(
        (method, path),
        ("GET", "/api/v1/groupements/{id}/prefill") | ("POST", "/api/v1/groupements/{id}/applications")
    );
    if reach {
        ok
    } else if role == Collectivite && names_applicant
        || role == Coordinateur && (method, path) == ("POST", "/api/v1/groupements")
    {
        // An applicant (a coordinator) it cannot read is named like one that does not exist:
        // 422 on `applicant` (`coordinator`).
        422
    } else if method == "GET"
        && matches!(
            path,
            "/api/v1/groupements/{id}/members"
                | "/api/v1/groupements/{id}/shares"
                | "/api/v1/groupements/{id}/documents"
                | "/api/v1/groupements/{id}/documents/{document}"
        )
    {
        // The groupement is read by every reader: its members, shares and documents (the list
        // and each one) are refused to who is neither its coordinator nor a member, not hidden.
        403
    } else if method == "GET" && path != "/api/v1/groupements/{id}/prefill" || role == Collectivite {
        // A collectivité applies for itself: another applicant it cannot read is not revealed.
        404
    } else {
        403
    }
}

/// The catalog and convention models, parsed once for every groupement call.
pub(crate) fn groupement_fixtures(
) -> &'static (entcp::catalog::Catalog, Vec<entcp::conventions::model::ConventionModel>) {
    static FIXTURES: std::sync::OnceLock<(entcp::catalog::Catalog, Vec<entcp::conventions::model::ConventionModel>)> =
        std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| {
        (entcp::catalog::Catalog::load(None).unwrap(), entcp::conventions::model::load_models(None).unwrap())
    })
}

impl World {
    pub(super) fn groupement_ctx<'a>(
        &'a self,
        catalog: &'a entcp::catalog::Catalog,
        models: &'a [entcp::conventions::model::ConventionModel],
        actor: &'a identity::Actor,
    ) -> entcp::groupements::Ctx<'a> {
        static SUPPORT: std::sync::OnceLock<entcp::api::commitments::SupportDesk> = std::sync::OnceLock::new();
        let support = SUPPORT.get_or_init(|| {
            entcp::api::commitments::SupportDesk(std::sync::Arc::new(entcp::support::policy::Policies::shipped()))
        });
        entcp::groupements::Ctx { store: &self.store, catalog, support, models, actor, now: t0() }
    }

    /// A groupement coordinated by the EPCI of `side`, its commune a member and
    /// the other commune an applicant; moved on to `state` (`open`, `consultation`, `awarded`).
    /// Returns (groupement, member application, pending application).
    pub(super) async fn groupement(&self, side: Side, state: &str) -> (entcp::groupements::Groupement, String, String) {
        use entcp::groupements::{self as gm, membership};
        let (catalog, models) = groupement_fixtures();
        let admin = admin();
        let ctx = self.groupement_ctx(catalog, models, &admin);
        let (coordinator, member, other) = match side {
            Side::In => (&self.group_in, &self.commune_in, &self.commune_out),
            Side::Out => (&self.group_out, &self.commune_out, &self.commune_in),
        };
        let mut new = json!({
            "coordinator": coordinator.id, "title": "ENT 1er degré", "object": "Fourniture d'un ENT",
            "application_deadline": "2026-12-31", "procedure": "procedure_adaptee",
            "estimated_amount_ht_cents": 15_000_000,
        });
        if state == "consultation-lots" {
            new["lots"] = json!([
                { "number": 1, "title": "Solution d'espace numérique de travail" },
                { "number": 2, "title": "Accompagnement et formation",
                  "lines": [{ "label": "Journée de formation", "unit": "journée", "quantity": 10 }] },
            ]);
        }
        let new: gm::NewGroupement = serde_json::from_value(new).unwrap();
        let g = gm::create(&ctx, new).await.unwrap();
        let apply = |org: &Org| {
            serde_json::from_value::<membership::NewApplication>(json!({
                "applicant": org.id, "deliberation_number": "D-1", "deliberation_date": "2026-09-01",
            }))
            .unwrap()
        };
        let mine = membership::apply(&ctx, &g, member, apply(member)).await.unwrap();
        let theirs = membership::apply(&ctx, &g, other, apply(other)).await.unwrap();
        let g = gm::must_get(&self.store, &g.id).await.unwrap();
        membership::accept(&ctx, &g, &mine).await.unwrap();
        let mut g = gm::must_get(&self.store, &g.id).await.unwrap();
        if state != "open" {
            // Constituted: the signing circuit is the conventions' matrix; here only its outcome matters.
            sqlx::query("UPDATE conventions SET status = 'active' WHERE id = $1")
                .bind(g.convention_id.as_deref().unwrap())
                .execute(self.store.pool())
                .await
                .unwrap();
            for to in [gm::Status::Closed, gm::Status::Consultation] {
                let deadline = (to == gm::Status::Consultation).then_some("2026-09-02T12:00");
                g = gm::transition(&ctx, &g, to, None, deadline).await.unwrap();
            }
            // The matrix awards on its launch day: its offers are taken as received the day before.
            sqlx::query("UPDATE groupements SET offers_deadline_at = '2026-08-31T10:00:00Z' WHERE id = $1")
                .bind(&g.id)
                .execute(self.store.pool())
                .await
                .unwrap();
            g = gm::must_get(&self.store, &g.id).await.unwrap();
        }
        if state == "awarded" {
            let input: gm::award::AwardInput = serde_json::from_value(self.award_body(coordinator, "0001")).unwrap();
            g = gm::award::award(&ctx, &g, input).await.unwrap();
            // Published by its coordinator: then every reader gets the open-data record.
            g = gm::award::publish_decp(&ctx, &g).await.unwrap();
        }
        (g, mine.id, theirs.id)
    }

    /// The id of `g`'s CCTP (the piece the matrix's document routes act on).
    pub(super) async fn groupement_document(&self, g: &entcp::groupements::Groupement) -> String {
        self.groupement_document_of(g, Kind::Cctp).await
    }

    /// The id of `g`'s latest version of `kind`, generated by an administrator.
    pub(super) async fn groupement_document_of(&self, g: &entcp::groupements::Groupement, kind: Kind) -> String {
        let (catalog, models) = groupement_fixtures();
        let admin = admin();
        let ctx = self.groupement_ctx(catalog, models, &admin);
        entcp::groupements::documents::generate(&ctx, g, kind).await.unwrap().0.id
    }

    /// `call`, a call of the matrix on a groupement's CCTP, made on its piece of `kind` instead:
    /// the kind generated, or the version of that kind read or shared. A call refused before its
    /// path is read (its ids exist nowhere) stays as it is.
    async fn on_document_of(&self, call: Call, kind: Kind) -> Call {
        if let Some(body) = call.body.as_ref().filter(|b| b.get("kind").is_some()) {
            let mut body = body.clone();
            body["kind"] = json!(kind.as_str());
            return Call { body: Some(body), ..call };
        }
        // /api/v1/groupements/{id}/documents/{document}[/share]
        let segments: Vec<&str> = call.path.split('/').collect();
        let Some(&cctp) = segments.get(6) else { return call };
        let Some(doc) = entcp::groupements::documents::get_version(&self.store, cctp).await.unwrap() else {
            return call;
        };
        let g = entcp::groupements::must_get(&self.store, &doc.groupement_id).await.unwrap();
        let other = self.groupement_document_of(&g, kind).await;
        Call { path: call.path.replace(cctp, &other), ..call }
    }

    pub(super) async fn groupement_call(&self, method: Method, path: &str, role: Role, side: Side) -> Call {
        let call =
            |path: String| Call { method: method.clone(), path, body: None, csv: None, pdf: None, if_match: None };
        let allowed = table().find(|(m, p, _, _)| *m == method.as_str() && *p == path).map(|(_, _, r, _)| *r);
        if !allowed.is_some_and(|roles| roles.contains(&role)) {
            // Refused by the role check before the path is read: no groupement to build.
            let placeholder = entcp::store::new_id();
            let path = path.replace("{id}", &placeholder).replace("{application}", &placeholder).replace("{lot}", "2");
            return call(path.replace("{document}", &placeholder));
        }
        let (member, coordinator) = match side {
            Side::In => (&self.commune_in, &self.group_in),
            Side::Out => (&self.commune_out, &self.group_out),
        };
        let state = match path {
            "/api/v1/groupements/{id}/award" | "/api/v1/groupements/{id}/sans-suite" => "consultation",
            // Two lots: the lot 2, « Accompagnement et formation », is declared sans suite.
            "/api/v1/groupements/{id}/lots/{lot}/sans-suite" => "consultation-lots",
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
        let (g, mine, theirs) =
            self.kept(format!("groupement {side:?} {state}"), || self.groupement(side, state)).await;
        let url = path.replace("{id}", &g.id);
        match path {
            "/api/v1/groupements/{id}" if method == Method::PATCH => {
                Call { body: Some(json!({ "title": "Achat revu" })), if_match: Some(g.version), ..call(url) }
            }
            "/api/v1/groupements/{id}/transition" => Call { body: Some(json!({ "to": "closed" })), ..call(url) },
            "/api/v1/groupements/{id}/award" => Call { body: Some(self.award_body(coordinator, "0002")), ..call(url) },
            "/api/v1/groupements/{id}/sans-suite" => Call {
                body: Some(json!({ "motif": "infructuosite", "justification": "Aucune offre reçue." })),
                if_match: Some(g.version),
                ..call(url)
            },
            "/api/v1/groupements/{id}/lots/{lot}/sans-suite" => Call {
                body: Some(json!({ "motif": "infructuosite", "justification": "Aucune offre reçue pour ce lot." })),
                if_match: Some(g.version),
                ..call(url.replace("{lot}", "2"))
            },
            "/api/v1/groupements/{id}/prefill" => call(format!("{url}?applicant={}", member.id)),
            "/api/v1/groupements/{id}/applications" if method == Method::POST => {
                // A fresh groupement: the member commune applies there for the first time.
                let (fresh, _, _) = self.groupement(if side == Side::In { Side::Out } else { Side::In }, "open").await;
                let body =
                    json!({ "applicant": member.id, "deliberation_number": "D-9", "deliberation_date": "2026-09-01" });
                let url = format!("/api/v1/groupements/{}/applications", fresh.id);
                // Withdraw the setup's own application so the commune may apply again.
                self.withdraw_setup(&fresh, member).await;
                Call { body: Some(body), ..call(url) }
            }
            "/api/v1/groupements/{id}/applications/{application}" => {
                // The side's commune is still an applicant (not yet decided) on the other side's groupement.
                let (fresh, _, pending) =
                    self.groupement(if side == Side::In { Side::Out } else { Side::In }, "open").await;
                let app = entcp::groupements::membership::get(&self.store, &fresh.id, &pending).await.unwrap();
                let url = format!("/api/v1/groupements/{}/applications/{pending}", fresh.id);
                Call { body: Some(json!({ "classes": 2 })), if_match: Some(app.version), ..call(url) }
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
    /// The award of `coordinator`'s groupement to the vendor's establishment `nic`.
    pub(super) fn award_body(&self, coordinator: &Org, nic: &str) -> Value {
        let buyer = coordinator.siren.as_deref().expect("the coordinator has a SIREN");
        common::fixtures::award_body(&self.vendor.code, nic, buyer)
    }

    /// Withdraws `org`'s application to `g` (it applied during the setup).
    pub(super) async fn withdraw_setup(&self, g: &entcp::groupements::Groupement, org: &Org) {
        use entcp::groupements::membership;
        let (catalog, models) = groupement_fixtures();
        let admin = admin();
        let ctx = self.groupement_ctx(catalog, models, &admin);
        let apps = membership::list(&self.store, &g.id, None).await.unwrap();
        let app = apps.into_iter().find(|a| a.applicant.id == org.id).unwrap();
        membership::withdraw(&ctx, g, &app).await.unwrap();
    }
}

backend_test!(the_winners_unit_prices_are_served_only_to_the_coordinator_and_the_members);
/// The award's unit prices (the winner's BPU) are its commercial terms: the groupement and the
/// list serve them to the coordinator's and the accepted members' users and administrators; any
/// other reader (a DAN, an applicant not accepted) gets the award without them (the field absent).
async fn the_winners_unit_prices_are_served_only_to_the_coordinator_and_the_members(db: crate::common::TestDb) {
    let world = world(&db).await;
    let name = db.name;
    let (g, _, _) = world.groupement(Side::In, "consultation").await;
    let mut body = world.award_body(&world.group_in, "0001");
    body["unit_prices"] = json!([
        { "lot": 1, "line": "account_year", "unit_price_ht_cents": 450 },
        { "lot": 1, "line": "school_setup", "unit_price_ht_cents": 35_000 },
    ]);
    let (catalog, models) = groupement_fixtures();
    let admin = admin();
    let ctx = world.groupement_ctx(catalog, models, &admin);
    let input = serde_json::from_value(body).unwrap();
    let g = entcp::groupements::award::award(&ctx, &g, input).await.unwrap();
    assert_eq!(g.award.as_ref().unwrap().unit_prices.len(), 2, "{name}: the award has unit prices");
    // The other commune applied and was not accepted.
    let applicant =
        token_for(&world.store, "mairie.candidate@test.fr", Collectivite, Some(&world.commune_out.id)).await;
    let one = format!("/api/v1/groupements/{}", g.id);
    let awarded = |body: &Value| -> Value {
        let items = body["items"].as_array().expect("a page");
        items.iter().find(|i| i["id"] == g.id.as_str()).expect("listed")["award"].clone()
    };
    let readers = [
        (world.tokens[&Admin].clone(), "admin", true),
        (world.tokens[&Coordinateur].clone(), "coordinator", true),
        (world.tokens[&Collectivite].clone(), "member", true),
        (world.tokens[&Dan].clone(), "dan", false),
        (applicant, "applicant", false),
    ];
    for (token, who, sees) in readers {
        let shown = world.app.request(Method::GET, &one).bearer(&token).send().await;
        assert_eq!(shown.status, 200, "{name} {who}: {}", shown.text);
        let listed = world.app.request(Method::GET, "/api/v1/groupements?status=awarded").bearer(&token).send().await;
        assert_eq!(listed.status, 200, "{name} {who}: {}", listed.text);
        for award in [shown.body["award"].clone(), awarded(&listed.body)] {
            assert!(award["amount_ht_cents"].is_i64(), "{name} {who}: the totals are public: {award}");
            let prices = award["unit_prices"].as_array().map(Vec::len);
            assert_eq!(prices.is_some_and(|n| n > 0), sees, "{name} {who}: {award}");
            if !sees {
                assert!(award.get("unit_prices").is_none(), "{name} {who}: absent: {award}");
            }
        }
    }
}

/// Every piece of a groupement, the CCTP (the one the matrices' tables act on) first: what the
/// API's and the console's piece matrices go through.
pub(super) fn pieces() -> impl Iterator<Item = Kind> {
    [Kind::Cctp].into_iter().chain(Kind::ALL.into_iter().filter(|k| *k != Kind::Cctp))
}

backend_test!(every_piece_answers_each_role_in_and_out_of_scope_as_the_table_says);
/// The matrix's document routes act on a CCTP: every other piece (the RC and the AE among them)
/// is generated, read and shared by the same roles, refused to the others with the same status
/// and the same problem as the CCTP, in scope and out of it.
async fn every_piece_answers_each_role_in_and_out_of_scope_as_the_table_says(db: crate::common::TestDb) {
    let world = world(&db).await;
    let on_a_piece = |(method, path, _, _): &&Case| {
        *path == "/api/v1/groupements/{id}/documents" && *method == "POST"
            || path.starts_with("/api/v1/groupements/{id}/documents/{document}")
    };
    let mut failures = Vec::new();
    for (method, path, allowed, target) in CASES.iter().filter(on_a_piece) {
        for role in Role::ALL {
            for side in [Side::In, Side::Out] {
                let want = expected(method, path, allowed, *target, role, side);
                let mut cctp_refusal: Option<Value> = None;
                for kind in pieces() {
                    world.leaves_targets_unchanged(*method == "GET" || want >= 400);
                    let Some(call) = world.call(method, path, role, side).await else { continue };
                    let call = world.on_document_of(call, kind).await;
                    let (got, body) = world.send(role, call).await;
                    let problem = (got >= 400).then(|| serde_json::from_str::<Value>(&body).unwrap_or_default());
                    let title = problem.as_ref().map(|p| p["title"].clone());
                    if kind == Kind::Cctp {
                        cctp_refusal = title.clone();
                    }
                    if got != want || title != cctp_refusal {
                        failures.push(format!(
                            "{method} {path} on {} as {} ({side:?}): {got}, expected {want} as the CCTP: {body}",
                            kind.as_str(),
                            role.as_str()
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}: {} mismatches:\n{}", db.name, failures.len(), failures.join("\n"));
}
