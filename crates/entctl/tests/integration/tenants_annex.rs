//! The services of a tenant against the Art. 28 annex signed with the convention in force that
//! covers it (domain review 41, F1), over HTTP on both backends: the collectivité (processor) that
//! adds a service the annex does not list is answered with `warnings` naming it and the
//! convention (to whom reads it), the controller's DPOs and the académie's DAN are told by
//! e-mail, and a service processing sensitive data (art. 9) is not deployed before an avenant
//! covers it, unless an administrator overrides the gate with a reason.

use crate::common;

use axum::http::StatusCode;
use common::app::{Client, Req};
use common::{token_for, TestApp, TestDb};
use entcp::kernel::roles::Role;
use serde_json::{json, Value};

const DAN: &str = "dan@ac-creteil.fr";
const JURISTE: &str = "juriste@ac-creteil.fr";
const DAN_DSDEN: &str = "dan@dsden94.fr";
const CD: &str = "ent@valdemarne.fr";
const DPO_CD: &str = "dpo@valdemarne.fr";
const PRINCIPAL: &str = "principal@college.fr";
const DPO_ACADEMIE: &str = "dpo@ac-creteil.fr";

async fn call(req: Req<'_>) -> (StatusCode, Value) {
    let resp = req.send().await;
    (StatusCode::from_u16(resp.status).unwrap(), resp.body)
}

/// The people around the Collège des Essais (Fresnes, `0940999A`): the académie's DAN and its
/// legal visa, a DAN of the DSDEN (who reads the tenant, not the convention), the département
/// (collectivité, processor) and its DPO, the principal, the académie's DPO (who keeps the
/// collège's register); an admin.
pub(crate) struct College {
    pub(crate) app: TestApp,
    pub(crate) dan: Client,
    juriste: Client,
    dan_dsden: Client,
    pub(crate) cd: Client,
    principal: Client,
    root: Client,
}

pub(crate) async fn college(db: &TestDb) -> College {
    common::import_sample_with_college(&db.store).await;
    let app = TestApp::over(&db.store)
        .user(DPO_ACADEMIE, Role::Dpo, Some("academie:24"))
        .user(DPO_CD, Role::Dpo, Some("departement:94"))
        .build()
        .await;
    let client = |token: String| app.client(&token);
    College {
        dan: client(token_for(&db.store, DAN, Role::Dan, Some("academie:24")).await),
        juriste: client(token_for(&db.store, JURISTE, Role::Dan, Some("academie:24")).await),
        dan_dsden: client(token_for(&db.store, DAN_DSDEN, Role::Dan, Some("dsden:94")).await),
        cd: client(token_for(&db.store, CD, Role::Collectivite, Some("departement:94")).await),
        principal: client(token_for(&db.store, PRINCIPAL, Role::ChefEtablissement, Some("0940999A")).await),
        root: client(token_for(&db.store, "root@test.fr", Role::Admin, None).await),
        app,
    }
}

impl College {
    /// The tripartite convention of the collège, signed by its parties while no tenant serves
    /// it (its annex lists the socle only), in force from t0: its reference.
    pub(crate) async fn signed_convention(&self) -> String {
        let body = common::fixtures::with_signatories(json!({
            "model": "tripartite-second-degre",
            "parties": { "academie": "academie:24", "collectivite": "departement:94", "etablissement": "0940999A" },
            "start_date": "2026-09-01"
        }));
        let (s, conv) = call(self.dan.post("/api/v1/conventions").json(&body)).await;
        assert_eq!(s, StatusCode::CREATED, "{conv}");
        let id = conv["id"].as_str().unwrap();
        let steps = [
            (&self.dan, "submit"),
            (&self.juriste, "visa"),
            (&self.dan, "sign"),
            (&self.cd, "sign"),
            (&self.principal, "sign"),
        ];
        for (who, action) in steps {
            let body = if action == "sign" { common::fixtures::by_delegation(json!({})) } else { json!({}) };
            let (s, p) = call(who.post(format!("/api/v1/conventions/{id}/{action}")).json(&body)).await;
            assert_eq!(s, StatusCode::OK, "{action}: {p}");
        }
        let (_, conv) = call(self.dan.get(format!("/api/v1/conventions/{id}"))).await;
        assert_eq!(conv["status"], "active", "{conv}");
        conv["reference"].as_str().unwrap().to_string()
    }
}

/// The collège's tenant document with `options`.
pub(crate) fn doc(options: &[&str]) -> Value {
    json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "clg-essais" },
        "spec": { "organisation": "0940999A", "hostname": "essais.ent.fresnes.example.fr", "bouquet": "socle-2d",
                  "options": options, "accounts": 600 }
    })
}

/// The warning of `service` outside the annex of `reference`.
fn warning(service: &str, reference: &str) -> String {
    format!(
        "Le service « {service} » n'est pas couvert par l'annexe de l'article 28 de la convention {reference} : un \
         avenant doit l'y ajouter."
    )
}

/// The recipients of each `annex_gap` notice queued, in order.
async fn annex_notices(db: &TestDb) -> Vec<(Value, Vec<String>)> {
    let notices = common::queued_notices(&db.store, "tenant").await;
    notices.into_iter().filter(|n| n.context["event"] == "annex_gap").map(|n| (n.context, n.recipients)).collect()
}

async fn moved(who: &Client, to: Value) -> (StatusCode, Value) {
    call(who.post("/api/v1/tenants/clg-essais/transition").json(&to)).await
}

backend_test!(a_service_outside_the_signed_annex_is_warned_and_told_and_a_sensitive_one_waits_for_an_avenant);
async fn a_service_outside_the_signed_annex_is_warned_and_told_and_a_sensitive_one_waits_for_an_avenant(db: TestDb) {
    let c = college(&db).await;
    let name = db.name;
    let reference = c.signed_convention().await;

    // The département creates the ENT with the visio and the vie scolaire after the signature:
    // created (nothing runs yet), each service outside the annex said, no one mailed yet.
    let (s, created) = call(c.cd.post("/api/v1/tenants").json(&doc(&["visio", "vie-scolaire"]))).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
    let visio = warning("Visioconférence", &reference);
    let vie_scolaire = warning("Vie scolaire (notes et absences)", &reference);
    assert_eq!(created["warnings"], json!([visio, vie_scolaire]), "{name}: {created}");
    assert!(annex_notices(&db).await.is_empty(), "{name}");

    // The DAN's provisioning is refused for the vie scolaire (art. 9 data), as the coverage gate
    // refuses, with the override an administrator has.
    let (s, refused) = moved(&c.dan, json!({ "to": "provisioning" })).await;
    assert_eq!(s, StatusCode::CONFLICT, "{name}: {refused}");
    let detail = refused["detail"].as_str().unwrap();
    let said = format!(
        "le service « Vie scolaire (notes et absences) » traite des données sensibles (article 9 du RGPD) que \
         l'annexe de l'article 28 de la convention {reference} ne couvre pas : un avenant doit l'y ajouter avant que \
         l'ENT ne le déploie ; à défaut, un administrateur peut passer outre en indiquant un motif (override_reason)"
    );
    assert!(detail.starts_with(&said), "{name}: {detail}");
    assert!(!detail.contains("Visioconférence"), "{name}: only the sensitive service keeps it closed: {detail}");
    assert_eq!(
        (&refused["missing"], &refused["services"], &refused["conventions"]),
        (&json!("annex"), &json!(["vie-scolaire"]), &json!([reference])),
        "{name}: {refused}"
    );
    let (s, _) = moved(&c.dan, json!({ "to": "provisioning", "override_reason": "rentrée" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{name}: only an administrator overrides");
    assert!(annex_notices(&db).await.is_empty(), "{name}: nothing deployed, nothing told");

    // The administrator's override: the move, its warnings, its reason in the events; the
    // controller's DPO (the académie's, for a public collège) and the académie's DANs are told,
    // one e-mail each; not the département (the processor) nor its DPO.
    let overriding = json!({ "to": "provisioning", "override_reason": "avenant en cours de signature" });
    let (s, provisioned) = moved(&c.root, overriding).await;
    assert_eq!(s, StatusCode::OK, "{name}: {provisioned}");
    assert_eq!(provisioned["status"], "provisioning", "{name}: {provisioned}");
    assert_eq!(provisioned["warnings"], json!([visio, vie_scolaire]), "{name}: {provisioned}");
    let (_, events) = call(c.dan.get("/api/v1/tenants/clg-essais/events")).await;
    let messages: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(
        messages.contains(
            &"demandé → en déploiement hors de l'annexe de l'article 28 pour vie-scolaire (dérogation : avenant en \
              cours de signature)"
        ),
        "{name}: {messages:?}"
    );
    let notices = annex_notices(&db).await;
    let [(context, recipients)] = notices.as_slice() else { panic!("{name}: one notice") };
    assert_eq!(recipients, &[DAN, DPO_ACADEMIE, JURISTE], "{name}");
    assert_eq!(context["convention"], json!(reference), "{name}: {context}");
    assert_eq!(
        context["services"], "les services « Visioconférence » et « Vie scolaire (notes et absences) »",
        "{name}: {context}"
    );
    assert_eq!((&context["served"], &context["sensitive"]), (&json!("du Collège des Essais"), &json!(true)));
    let mails = common::queued_mails(&db.store, "tenant").await;
    let rendered = entcp::notify::mailer::render("tenant", &mails.last().unwrap().context).unwrap();
    assert!(
        rendered.text.contains(&format!(
            "au service du Collège des Essais, comprend les services « Visioconférence » et « Vie scolaire (notes et \
             absences) », que l'annexe de l'article 28 de la convention {reference} ne couvre pas."
        )),
        "{name}: {}",
        rendered.text
    );
    assert_eq!(rendered.subject, "Services hors de l'annexe de l'article 28 : ENT clg-essais", "{name}");

    // Active; a reconfiguration that keeps the services it runs tells no one again.
    assert_eq!(moved(&c.dan, json!({ "to": "active" })).await.0, StatusCode::OK, "{name}");
    let (_, tenant) = call(c.cd.get("/api/v1/tenants/clg-essais")).await;
    let version = tenant["version"].as_i64().unwrap();
    let mut more = doc(&["visio", "vie-scolaire"]);
    more["spec"]["accounts"] = json!(650);
    let put = |body: &Value, version: i64| {
        c.cd.put("/api/v1/tenants/clg-essais").header("if-match", format!("\"{version}\"")).json(body)
    };
    let (s, kept) = call(put(&more, version)).await;
    assert_eq!((s, &kept["result"]), (StatusCode::OK, &json!("configured")), "{name}: {kept}");
    assert_eq!(kept["warnings"], json!([visio, vie_scolaire]), "{name}");
    assert_eq!(annex_notices(&db).await.len(), 1, "{name}: nothing added, no one told again");

    // A DAN of the DSDEN reads and moves the tenant but not the convention: its warnings do not
    // name it.
    let (s, suspended) = moved(&c.dan_dsden, json!({ "to": "suspended", "reason": "maintenance" })).await;
    assert_eq!(s, StatusCode::OK, "{name}: {suspended}");
    let unnamed = "Le service « Visioconférence » n'est pas couvert par l'annexe de l'article 28 de la convention en \
                   vigueur (que vous ne consultez pas) : un avenant doit l'y ajouter.";
    assert_eq!(suspended["warnings"][0], unnamed, "{name}: {suspended}");
    assert!(!suspended.to_string().contains(&reference), "{name}: {suspended}");
}

backend_test!(a_collectivite_adding_a_service_to_a_running_ent_is_warned_and_the_controller_told);
async fn a_collectivite_adding_a_service_to_a_running_ent_is_warned_and_the_controller_told(db: TestDb) {
    let c = college(&db).await;
    let name = db.name;
    let reference = c.signed_convention().await;

    // The socle alone: within the annex, nothing said.
    let (s, created) = call(c.cd.post("/api/v1/tenants").json(&doc(&[]))).await;
    assert_eq!((s, &created["warnings"]), (StatusCode::CREATED, &json!([])), "{name}: {created}");
    for to in ["provisioning", "active"] {
        let (s, moved) = moved(&c.dan, json!({ "to": to })).await;
        assert_eq!((s, &moved["warnings"]), (StatusCode::OK, &json!([])), "{name}: {moved}");
    }

    // The département adds the visio: configured, said, the controller's DPO and the DAN told.
    let (_, tenant) = call(c.cd.get("/api/v1/tenants/clg-essais")).await;
    let put = |body: Value, version: i64| {
        c.cd.put("/api/v1/tenants/clg-essais").header("if-match", format!("\"{version}\"")).json(&body)
    };
    let (s, configured) = call(put(doc(&["visio"]), tenant["version"].as_i64().unwrap())).await;
    assert_eq!(s, StatusCode::OK, "{name}: {configured}");
    assert_eq!(configured["warnings"], json!([warning("Visioconférence", &reference)]), "{name}");
    let notices = annex_notices(&db).await;
    let [(context, recipients)] = notices.as_slice() else { panic!("{name}: one notice: {}", notices.len()) };
    assert_eq!(recipients, &[DAN, DPO_ACADEMIE, JURISTE], "{name}");
    assert_eq!((&context["services"], &context["by"]), (&json!("le service « Visioconférence »"), &json!(CD)));
    let (_, events) = call(c.cd.get("/api/v1/tenants/clg-essais/events")).await;
    assert!(
        events.as_array().unwrap().iter().any(|e| e["kind"] == "annex_gap"
            && e["message"].as_str().unwrap().starts_with("Le service « Visioconférence » : hors de l'annexe")),
        "{name}: {events}"
    );

    // Adding the vie scolaire (art. 9 data) to the running ENT is refused until an avenant covers it.
    let version = configured["tenant"]["version"].as_i64().unwrap();
    let (s, refused) = call(put(doc(&["visio", "vie-scolaire"]), version)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{name}: {refused}");
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.ends_with("un avenant doit l'y ajouter avant que l'ENT ne le déploie"), "{name}: {detail}");
    assert!(detail.contains("Vie scolaire (notes et absences)"), "{name}: {detail}");
    let (_, tenant) = call(c.cd.get("/api/v1/tenants/clg-essais")).await;
    assert_eq!(tenant["options"], json!(["visio"]), "{name}: nothing changed");
    assert_eq!(annex_notices(&db).await.len(), 1, "{name}");

    // The console's tenant page says it too.
    crate::console::with_password(&db.store, CD).await;
    let session = crate::console::sign_in(&c.app, CD).await;
    let page = crate::console::get(&c.app, &session, "/ent/clg-essais").await;
    assert_eq!(page.status, 200, "{name}: {}", page.text);
    assert!(page.text.contains("Services hors de l'annexe de l'article 28"), "{name}: {}", page.text);
    let said = crate::console::escaped(&warning("Visioconférence", &reference));
    assert!(page.text.contains(&said), "{name}: {said} in {}", page.text);
}
