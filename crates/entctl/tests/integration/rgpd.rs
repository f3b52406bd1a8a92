//! RGPD registers on the demo data (the Val-de-Marne sample and the example
//! tenants), over HTTP, on both backends: derivation from what runs, exports in
//! every format, snapshots and diffs, scopes and bad input, breaches and requests.

use crate::common;

use axum::http::StatusCode;
use common::app::{Client, Req};
use common::{admin, t0, token_for, TestApp};
use ent_documents::documents::read_back as odf;
use entcp::clock::FixedClock;
use entcp::contracts::{self, NewContract};
use entcp::documents::typography::french;
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) struct Demo {
    pub(crate) app: TestApp,
    pub(crate) db: common::TestDb,
    dan: Client,
    dpo: Client,
    admin: Client,
    chef: Client,
}

async fn call(req: Req<'_>) -> (StatusCode, Value) {
    let resp = req.send().await;
    (StatusCode::from_u16(resp.status).unwrap(), resp.body)
}

/// An active bipartite convention between the académie and a commune, signed over HTTP.
async fn convention(d: &Demo, commune: &str, mairie: &Client) {
    let url = |p: &str| format!("/api/v1/conventions{p}");
    let body = common::fixtures::with_signatories(json!({
        "model": "bipartite-commune",
        "parties": { "academie": "academie:24", "collectivite": format!("commune:{commune}") },
        "start_date": "2026-09-01",
    }));
    let (s, conv) = call(d.dan.post(url("")).json(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{conv}");
    let id = conv["id"].as_str().unwrap();
    let (s, body) = call(d.dan.post(url(&format!("/{id}/submit"))).json(&json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for who in [&d.dan, mairie] {
        let (s, body) =
            call(who.post(url(&format!("/{id}/sign"))).json(&crate::common::fixtures::by_delegation(json!({})))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (_, conv) = call(d.dan.get(url(&format!("/{id}")))).await;
    assert_eq!(conv["status"], "active", "{conv}");
}

async fn provision(d: &Demo, slug: &str) {
    for to in ["provisioning", "active"] {
        let url = format!("/api/v1/tenants/{slug}/transition");
        let (s, body) = call(d.dan.post(url).json(&json!({ "to": to }))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
}

/// Demo data, conventions for Fresnes and Vitry, both tenants active, Art. 28 contracts
/// binding the demo vendor and host.
pub(crate) async fn demo(db: common::TestDb) -> Demo {
    let clock = Arc::new(FixedClock::new(t0()));
    let data_dir = tempfile::tempdir().unwrap().keep();
    let config = entcp::config::Config { data_dir, ..entcp::config::Config::default() };
    let state = crate::common::app::app_state(db.store.clone(), config, clock.clone());
    entcp::demo::load(&state).await.unwrap();
    let app = TestApp::over(&db.store).clock(clock).build().await;
    let store = &db.store.clone();
    let d = Demo {
        dan: app
            .client(&token_for(store, "dan@ac-creteil.fr", entcp::kernel::roles::Role::Dan, Some("academie:24")).await),
        dpo: app
            .client(&token_for(store, "dpd@ac-creteil.fr", entcp::kernel::roles::Role::Dpo, Some("academie:24")).await),
        admin: app.client(&token_for(store, "admin@test.fr", entcp::kernel::roles::Role::Admin, None).await),
        chef: app.client(
            &token_for(
                store,
                "ce.0940198e@ac-creteil.fr",
                entcp::kernel::roles::Role::ChefEtablissement,
                Some("0940198E"),
            )
            .await,
        ),
        app,
        db,
    };
    for (commune, email) in [("94034", "ent@fresnes.fr"), ("94081", "ent@vitry.fr")] {
        let role = entcp::kernel::roles::Role::Collectivite;
        let mairie = d.app.client(&token_for(&d.db.store, email, role, Some(&format!("commune:{commune}"))).await);
        convention(&d, commune, &mairie).await;
    }
    provision(&d, "fresnes").await;
    provision(&d, "vitry-henri-wallon-a").await;

    let resolve = entcp::registry::resolve_org;
    let (vendor, host) =
        (resolve(store, "editeur:900000019").await.unwrap(), resolve(store, "hebergeur:900000027").await.unwrap());
    let mut tx = store.begin_write().await.unwrap();
    for commune in ["commune:94034", "commune:94081"] {
        let new = NewContract {
            processor_org_id: vendor.id.clone(),
            client_org_id: resolve(store, commune).await.unwrap().id,
            parent_processor_org_id: None,
            reference: format!("MARCHE-ENT-{}", &commune[8..]),
            title: "Marché ENT des écoles".into(),
            art28_clauses: true,
            starts_on: Some("2026-09-01".into()),
            ends_on: None,
            source_kind: "manual".into(),
            source_id: None,
        };
        contracts::record(&mut tx, store, &admin(), &new, t0()).await.unwrap();
    }
    let hosting = NewContract {
        processor_org_id: host.id.clone(),
        client_org_id: vendor.id.clone(),
        parent_processor_org_id: Some(vendor.id.clone()),
        reference: "HEB-2026-01".into(),
        title: "Hébergement de l'ENT".into(),
        art28_clauses: true,
        starts_on: None,
        ends_on: None,
        source_kind: "manual".into(),
        source_id: None,
    };
    contracts::record(&mut tx, store, &admin(), &hosting, t0()).await.unwrap();
    tx.commit().await.unwrap();
    d
}

impl Demo {
    fn url(&self, path: &str) -> String {
        format!("/api/v1/rgpd{path}")
    }

    async fn export(&self, who: &Client, org: &str, format: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let resp = who.get(self.url(&format!("/registers/{org}?format={format}"))).send().await;
        (StatusCode::from_u16(resp.status).unwrap(), resp.headers, resp.bytes)
    }

    /// The register of `org` as `who` reads it in HTML (200), its text as the tests compare it.
    async fn html_register(&self, who: &Client, org: &str) -> String {
        let (s, _, html) = self.export(who, org, "html").await;
        assert_eq!(s, StatusCode::OK, "{}: {org}", self.db.name);
        html_text(&String::from_utf8(html).unwrap())
    }

    async fn export_contracts(
        &self,
        who: &Client,
        org: &str,
        format: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let resp = who.get(self.url(&format!("/contracts/{org}?format={format}"))).send().await;
        (StatusCode::from_u16(resp.status).unwrap(), resp.headers, resp.bytes)
    }

    /// Takes a snapshot of the académie's register; returns the register and the snapshot's id.
    async fn register(&self) -> (Value, String) {
        let (s, snapshot) = call(self.dpo.post(self.url("/registers/dsden:94/snapshots"))).await;
        assert_eq!(s, StatusCode::CREATED, "{snapshot}");
        let (s, headers, body) = self.export(&self.dpo, "dsden:94", "json").await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["x-register-sha256"], snapshot["sha256"].as_str().unwrap());
        (serde_json::from_slice(&body).unwrap(), snapshot["id"].as_str().unwrap().to_string())
    }

    async fn set_profile(&self) {
        let profile = json!({
            "head_name": "M. le recteur", "head_title": "recteur de la région académique",
            "address": "4 rue Georges Enesco, 94000 Créteil", "phone": "01 57 02 60 00", "email": "ce.recteur@ac-creteil.fr",
            "dpo_name": "Délégué à la protection des données de l'académie", "dpo_email": "dpd@ac-creteil.fr",
            "dpo_phone": "01 57 02 60 01", "dpo_address": "4 rue Georges Enesco, 94000 Créteil",
            "representative": "", "security_measures": "Charte d'usage de l'ENT signée par les utilisateurs"
        });
        let (s, body) = call(self.dpo.put(self.url("/profiles/dsden:94")).json(&profile)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
}

fn visio(register: &Value) -> &Value {
    register["entries"].as_array().unwrap().iter().find(|e| e["service"] == "visio").expect("a visio entry")
}

fn uais(entry: &Value) -> Vec<String> {
    entry["establishments"].as_array().unwrap().iter().map(|e| e["uai"].as_str().unwrap().to_string()).collect()
}

/// The Art. 30(1) values of an entry that every export must show.
fn art30_values(e: &Value) -> Vec<String> {
    let s = |v: &Value| v.as_str().unwrap().to_string();
    // The controller as the register names it (« DSDEN du Val-de-Marne »), not its stored name.
    let controller: entcp::rgpd::derive::Actor = serde_json::from_value(e["controller"].clone()).unwrap();
    vec![
        entcp::rgpd::derive::named(&controller).official,
        s(&e["controller"]["email"]),
        s(&e["controller"]["address"]),
        s(&e["dpo"]["name"]),
        s(&e["dpo"]["email"]),
        s(&e["representative"]),
        s(&e["purposes"][0]),
        s(&e["data_subjects"][0]),
        s(&e["personal_data"][0]["category"]),
        s(&e["recipients"][0]),
        s(&e["retention"]),
        s(&e["security_measures"][0]),
        s(&e["legal_basis"]),
        s(&e["processors"][1]["org"]["name"]),
        "aucun".to_string(),
    ]
}

fn html_text(html: &str) -> String {
    html.replace("&#x27;", "'").replace("&quot;", "\"").replace("&amp;", "&").replace("&#39;", "'")
}

backend_test!(adding_visio_to_a_tenant_shows_in_the_register_and_in_the_diff_and_every_export_has_every_field);
async fn adding_visio_to_a_tenant_shows_in_the_register_and_in_the_diff_and_every_export_has_every_field(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let d = demo(db).await;

    // Without the DPO's contacts, every entry is incomplete and says what is missing.
    let (s, incomplete) = call(d.dpo.get(d.url("/registers/dsden:94/incomplete"))).await;
    assert_eq!(s, StatusCode::OK, "{incomplete}");
    let missing = incomplete[0]["missing"].as_array().unwrap();
    assert!(missing.iter().any(|m| m == "nom du délégué à la protection des données"), "{name}: {incomplete}");
    d.set_profile().await;
    let (_, incomplete) = call(d.dpo.get(d.url("/registers/dsden:94/incomplete"))).await;
    assert_eq!(incomplete, json!([]), "{name}: complete once the contacts are known");

    let (before, first) = d.register().await;
    let entries: Vec<&str> =
        before["entries"].as_array().unwrap().iter().map(|e| e["service"].as_str().unwrap()).collect();
    assert!(entries.contains(&"portail") && entries.contains(&"carnet-de-liaison"), "{name}: {entries:?}");
    assert!(!uais(visio(&before)).contains(&"0940198E".to_string()), "{name}: only Fresnes has visio yet");
    assert!(visio(&before)["warnings"].as_array().unwrap().is_empty(), "{name}: {}", visio(&before)["warnings"]);

    visio_added_to_vitry_after_signature(&d).await;

    let (s, diff) = call(d.dpo.get(d.url(&format!("/registers/dsden:94/diff?from={first}")))).await;
    assert_eq!(s, StatusCode::OK, "{diff}");
    assert_eq!(diff["to"], "now");
    let changed = diff["changed"].as_array().unwrap();
    let visio_change = changed.iter().find(|c| c["key"].as_str().unwrap().ends_with(":visio")).expect("visio changed");
    let field = |f: &str| visio_change["fields"].as_array().unwrap().iter().find(|x| x["field"] == f).cloned();
    let establishments = field("establishments").expect("the establishments changed");
    assert!(establishments["after"].to_string().contains("0940198E"), "{name}: {establishments}");
    assert!(!establishments["before"].to_string().contains("0940198E"));
    assert!(field("accounts").is_some(), "{name}: {visio_change}");

    let (after, second) = d.register().await;
    assert!(uais(visio(&after)).contains(&"0940198E".to_string()), "{name}: the école is in the visio entry");
    assert_eq!(visio(&after)["first_recorded"], visio(&before)["first_recorded"]);
    let (_, between) = call(d.dpo.get(d.url(&format!("/registers/dsden:94/diff?from={first}&to={second}")))).await;
    assert_eq!(between["changed"], diff["changed"], "{name}: the snapshot diff says the same");
    let (_, snapshots) = call(d.dpo.get(d.url("/registers/dsden:94/snapshots"))).await;
    assert_eq!(snapshots.as_array().unwrap().len(), 2, "{name}: {snapshots}");
    assert_eq!(snapshots[0]["id"], json!(second));

    // Every export of the complete visio entry shows every Art. 30(1) field.
    let entry = visio(&after).clone();
    assert!(entry["missing"].as_array().unwrap().is_empty(), "{name}: {}", entry["missing"]);
    let values = art30_values(&entry);
    let (s, _, csv) = d.export(&d.dpo, "dsden:94", "csv").await;
    assert_eq!(s, StatusCode::OK);
    assert!(csv.starts_with("\u{feff}".as_bytes()), "{name}: UTF-8 BOM");
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(&csv[3..]);
    let row =
        reader.records().map(|r| r.unwrap()).find(|r| r.get(1) == entry["reference"].as_str()).expect("the visio row");
    let joined = row.iter().collect::<Vec<_>>().join("\n");
    for v in &values {
        assert!(joined.contains(v.as_str()), "{name}: CSV lacks « {v} »");
    }
    let html = d.html_register(&d.dpo, "dsden:94").await;
    for v in &values {
        assert!(html.contains(&french(v)), "{name}: HTML lacks « {v} »");
    }
    let (s, headers, ods) = d.export(&d.dpo, "dsden:94", "ods").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/vnd.oasis.opendocument.spreadsheet");
    assert_eq!(odf::mimetype(&ods), "application/vnd.oasis.opendocument.spreadsheet");
    let sheets = odf::ods_sheets(&ods);
    assert_eq!(sheets[0].0, "Registre");
    let listed = sheets[0].1.iter().any(|r| r.first().map(String::as_str) == entry["reference"].as_str());
    assert!(listed, "{name}: the activity is listed on the first sheet");
    let fiche = sheets.iter().find(|(n, _)| Some(n.as_str()) == entry["reference"].as_str()).expect("a fiche");
    let cells = fiche.1.iter().flatten().cloned().collect::<Vec<_>>().join("\n");
    for v in &values {
        assert!(cells.contains(&french(v)), "{name}: ODS fiche lacks « {v} »");
    }
    assert!(cells.contains("Base légale") && cells.contains("Transferts des données hors EEE"));
    if name == "sqlite" {
        libreoffice_opens(&ods);
    }
    let (s, _, pdf) = d.export(&d.dpo, "dsden:94", "pdf").await;
    match s {
        StatusCode::OK => assert!(pdf.starts_with(b"%PDF"), "{name}"),
        other => assert_eq!(other, StatusCode::NOT_ACCEPTABLE, "{name}: no converter, the other formats named"),
    }
    let (_, snapshots) = call(d.dpo.get(d.url("/registers/dsden:94/snapshots"))).await;
    assert_eq!(snapshots.as_array().unwrap().len(), 2, "{name}: reading a register in any format records nothing");

    // Bad input.
    let (s, body) = call(d.dpo.get(d.url("/registers/dsden:94?format=docx"))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "format");
    let (s, _) = call(d.chef.get(d.url("/registers/dsden:94"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{name}: a chef d'établissement does not read the académie's register");
    let (s, _) = call(d.admin.post(d.url("/registers/commune:94034/snapshots"))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, other) = call(d.admin.get(d.url("/registers/commune:94034/snapshots"))).await;
    let other = other[0]["id"].as_str().unwrap();
    // Another register's snapshot reads as one that does not exist: the same 404, the same words.
    let (s, body) = call(d.dpo.get(d.url(&format!("/registers/dsden:94/diff?from={first}&to={other}")))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let missing = "0190a000-0000-7000-8000-000000000000";
    let (s, none) = call(d.dpo.get(d.url(&format!("/registers/dsden:94/diff?from={first}&to={missing}")))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{none}");
    assert_eq!(
        body["detail"].as_str().unwrap().replace(other, "ID"),
        none["detail"].as_str().unwrap().replace(missing, "ID")
    );
    assert_eq!(body["title"], none["title"], "{body}");

    // The commune is a processor: its Art. 30(2) register names the académie.
    let (_, commune) = call(d.admin.get(d.url("/registers/commune:94034"))).await;
    assert_eq!(commune["processor_entries"][0]["roles"], json!(["sous-traitant (collectivité)"]), "{commune}");
    let (_, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    assert_eq!(vendor["processor_entries"][0]["contract"]["art28"], true, "{vendor}");
}

/// Converts the ODS with LibreOffice Calc when it is installed (it must open it).
fn libreoffice_opens(ods: &[u8]) {
    let found = ["soffice", "libreoffice"].into_iter().find_map(|b| {
        let out = std::process::Command::new("which").arg(b).output().ok().filter(|o| o.status.success())?;
        let path = std::fs::canonicalize(String::from_utf8_lossy(&out.stdout).trim()).ok()?;
        Some((b, path.parent()?.join("libsclo.so").exists()))
    });
    let Some((soffice, true)) = found else {
        println!("LibreOffice Calc absent: the ODS conversion is not checked");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registre.ods"), ods).unwrap();
    let profile = format!("-env:UserInstallation=file://{}/profile", dir.path().display());
    let output = std::process::Command::new(soffice)
        .args([profile.as_str(), "--headless", "--convert-to", "pdf", "--outdir"])
        .arg(dir.path())
        .arg(dir.path().join("registre.ods"))
        .output()
        .unwrap();
    let pdf = std::fs::read(dir.path().join("registre.pdf"))
        .unwrap_or_else(|_| panic!("LibreOffice did not convert the ODS: {}", String::from_utf8_lossy(&output.stderr)));
    assert!(pdf.starts_with(b"%PDF"));
}

#[tokio::test]
async fn breaches_warn_after_72_hours_and_requests_are_due_a_month_later() {
    let db = common::sqlite().await;
    let store = db.store.clone();
    common::import_sample(&store).await;
    let app = TestApp::over(&store).build().await;
    let dpo =
        app.client(&token_for(&store, "dpd@ac-creteil.fr", entcp::kernel::roles::Role::Dpo, Some("academie:24")).await);
    let url = |p: &str| format!("/api/v1/rgpd{p}");
    let breach = |aware: &str| {
        json!({
            "title": "Liste de classe envoyée au mauvais destinataire", "facts": "Courriel mal adressé",
            "aware_at": aware, "data_categories": ["identité", "classe"], "people_approx": 28, "records_approx": 28,
            "consequences": "risque faible", "measures": "demande de suppression au destinataire"
        })
    };
    // Before the RGPD applied (25 May 2018), no breach log: a typing error, said as such.
    let (s, body) = call(dpo.post(url("/breaches/0940198E")).json(&breach("0001-01-01T00:00:00Z"))).await;
    assert_eq!(
        (s, body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("aware_at")),
        "{body}"
    );
    let (s, old) = call(dpo.post(url("/breaches/0940198E")).json(&breach("2026-08-28T08:00:00Z"))).await;
    assert_eq!(s, StatusCode::CREATED, "{old}");
    // Numbered from the series' counter (the end of a random id collided within a few
    // thousand entries: a 409 on a new breach).
    assert_eq!(old["reference"], "VIOL-2026-000001", "{old}");
    assert!(old["warning"].as_str().unwrap().contains("72 h"), "{old}");
    assert_eq!(old["cnil_deadline"], "2026-08-31T08:00:00.000000Z");
    let (_, recent) = call(dpo.post(url("/breaches/0940198E")).json(&breach("2026-08-31T09:00:00Z"))).await;
    assert!(recent["warning"].is_null(), "{recent}");
    assert_eq!(recent["reference"], "VIOL-2026-000002", "{recent}");

    // A decision clears the warning; "not required" needs its reason; a stale version is refused.
    let id = old["id"].as_str().unwrap();
    let mut decided = breach("2026-08-28T08:00:00Z");
    decided["cnil_decision"] = json!("not_required");
    let (s, body) =
        call(dpo.put(url(&format!("/breaches/0940198E/{id}"))).header("if-match", "\"1\"").json(&decided)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "cnil_reason");
    decided["cnil_reason"] = json!("aucune donnée sensible, destinataire de confiance");
    // Art. 33(1): not notified only once the risk is assessed as unlikely.
    let (s, body) =
        call(dpo.put(url(&format!("/breaches/0940198E/{id}"))).header("if-match", "\"1\"").json(&decided)).await;
    assert_eq!((s, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("risk")), "{body}");
    decided["risk"] = json!("none");
    let (s, body) =
        call(dpo.put(url(&format!("/breaches/0940198E/{id}"))).header("if-match", "\"1\"").json(&decided)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["warning"].is_null());
    let (s, _) =
        call(dpo.put(url(&format!("/breaches/0940198E/{id}"))).header("if-match", "\"1\"").json(&decided)).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let resp = dpo.get(url("/breaches/0940198E?format=csv")).send().await;
    let text = resp.text;
    assert!(text.starts_with('\u{feff}') && text.contains("non requise (aucune donnée sensible"), "{text}");

    let request = json!({ "kind": "erasure", "requester": "R. L. (dossier 12)", "received_on": "2026-01-31" });
    let (s, created) = call(dpo.post(url("/requests/0940198E")).json(&request)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["reference"], "DEM-2026-000001", "{created}");
    // 28 February 2026 is a Saturday: due the next working day.
    assert_eq!(created["due_on"], "2026-03-02");
    assert_eq!(created["overdue"], true);
    let future = json!({ "kind": "access", "requester": "X", "received_on": "2027-01-01" });
    let (s, body) = call(dpo.post(url("/requests/0940198E")).json(&future)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let resp = dpo.get(url("/requests/0940198E?format=ods")).send().await;
    let sheets = odf::ods_sheets(&resp.bytes);
    assert_eq!(sheets[0].1[1][1], "effacement");
}

backend_test!(a_school_the_annuaire_closes_leaves_the_register_and_no_processor_works_for_it);
async fn a_school_the_annuaire_closes_leaves_the_register_and_no_processor_works_for_it(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    // An école of Fresnes, served by the commune's tenant.
    let closed = "0940289D".to_string();
    let read = |org: &'static str| call(d.admin.get(d.url(&format!("/registers/{org}"))));
    let listing =
        |register: &Value| register["entries"].as_array().unwrap().iter().filter(|e| uais(e).contains(&closed)).count();
    let served_for_the_dsden = |register: &Value| {
        let entry = register["processor_entries"].as_array().unwrap().iter().find(|e| e["controller"]["code"] == "94");
        entry.expect("the vendor works for the DSDEN")["establishments"].as_i64().unwrap()
    };
    let (_, dsden) = read("dsden:94").await;
    assert!(listing(&dsden) > 0, "{name}: the open école is in the DSDEN's entries");
    let (_, vendor) = read("editeur:900000019").await;
    let served = served_for_the_dsden(&vendor);

    // The annuaire now says the école is closed.
    common::execute(&d.db.store, "UPDATE orgs SET is_open = 0 WHERE kind = 'etablissement' AND code = $1", &[&closed])
        .await;
    let (_, dsden) = read("dsden:94").await;
    assert_eq!(listing(&dsden), 0, "{name}: a closed école is in no entry of its controller");
    let (_, vendor) = read("editeur:900000019").await;
    assert_eq!(served_for_the_dsden(&vendor), served - 1, "{name}: the vendor no longer works for it");
}

backend_test!(an_archived_tenant_stays_in_the_register_until_its_data_are_purged);
async fn an_archived_tenant_stays_in_the_register_until_its_data_are_purged(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    // An école of Fresnes, served by the commune's tenant `fresnes`.
    let ecole = "0940289D".to_string();
    let listing =
        |register: &Value| register["entries"].as_array().unwrap().iter().filter(|e| uais(e).contains(&ecole)).count();
    let read = || call(d.admin.get(d.url("/registers/dsden:94")));
    let (_, before) = read().await;
    assert!(listing(&before) > 0, "{name}: the école is in the DSDEN's entries");
    // Decommissioned, then archived: its volumes are kept for the retention period.
    for to in ["decommissioning", "archived"] {
        let body = json!({ "to": to, "reason": "fin du marché" });
        let (s, body) = call(d.dan.post("/api/v1/tenants/fresnes/transition").json(&body)).await;
        assert_eq!(s, StatusCode::OK, "{name}: {to}: {body}");
        let (_, register) = read().await;
        assert_eq!(listing(&register), listing(&before), "{name}: {to}: its data are still processed");
        let kept_until_purge =
            |e: &&Value| e["retention"].as_str().unwrap().contains("fresnes (archivé, purge à partir du");
        let dated = register["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| uais(e).contains(&ecole))
            .filter(kept_until_purge);
        let archived = to == "archived";
        assert_eq!(dated.count(), if archived { listing(&before) } else { 0 }, "{name}: {to}: {register}");
    }
    let due: String = sqlx::query_scalar("SELECT purge_due_at FROM tenants WHERE slug = 'fresnes'")
        .fetch_one(d.db.store.pool())
        .await
        .unwrap();
    let (_, register) = read().await;
    let said = format!("purge à partir du {}", entcp::clock::french_day(&due));
    assert!(register.to_string().contains(&said), "{name}: the day stored at archiving: {said}");
    // The retention purge deleted them: the processing has ended.
    sqlx::query("UPDATE tenants SET status = 'purged' WHERE slug = 'fresnes'")
        .execute(d.db.store.pool())
        .await
        .unwrap();
    let (_, after) = read().await;
    assert_eq!(listing(&after), 0, "{name}: a purged tenant processes nothing");
}

backend_test!(a_register_derived_on_another_day_with_nothing_changed_is_the_same_register);
async fn a_register_derived_on_another_day_with_nothing_changed_is_the_same_register(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let (first, snapshot) = d.register().await;
    // The next day, on another server: nothing deployed has changed.
    let next_day = TestApp::over(&d.db.store).at(t0() + chrono::Duration::days(1)).build().await;
    let dpo = d.dpo.to(&next_day);
    let (s, again) = call(dpo.post(d.url("/registers/dsden:94/snapshots"))).await;
    assert_eq!(s, StatusCode::OK, "{name}: the latest snapshot answers, nothing stored: {again}");
    assert_eq!(again["id"], snapshot.as_str(), "{name}");
    let resp = dpo.get(d.url("/registers/dsden:94")).send().await;
    assert_eq!(resp.headers["x-register-sha256"], again["sha256"].as_str().unwrap(), "{name}: the same fingerprint");
    let register: Value = serde_json::from_slice(&resp.bytes).unwrap();
    assert_ne!(register["as_of"], first["as_of"], "{name}: only the date of derivation moved");
    assert_eq!(register["entries"], first["entries"], "{name}");
    let (_, list) = call(dpo.get(d.url("/registers/dsden:94/snapshots"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{name}: one snapshot: {list}");
}

/// The Val-de-Marne sample, an app on a fixed `clock`, and the académie's DPO.
async fn academie_dpo(store: &entcp::store::Store, clock: Arc<FixedClock>) -> (TestApp, Client) {
    common::import_sample(store).await;
    let app = TestApp::over(store).clock(clock).build().await;
    let dpo =
        app.client(&token_for(store, "dpd@ac-creteil.fr", entcp::kernel::roles::Role::Dpo, Some("academie:24")).await);
    (app, dpo)
}

/// An RFC 3339 instant.
fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
}

backend_test!(breaches_are_listed_by_the_instant_of_awareness_and_warn_72_hours_later_to_the_minute);
async fn breaches_are_listed_by_the_instant_of_awareness_and_warn_72_hours_later_to_the_minute(
    db: crate::common::TestDb,
) {
    let name = db.name;
    // Saturday 24 October 2026, 10:00 in Paris: the night before the change to winter time.
    let clock = Arc::new(FixedClock::new(at("2026-10-24T08:00:00Z")));
    let (_app, dpo) = academie_dpo(&db.store, clock.clone()).await;
    let url = "/api/v1/rgpd/breaches/0940198E";
    // Known on Friday 23 October, 23:30 and 22:45 in Paris (summer time), and 22:00 UTC (00:00 in
    // Paris): typed with their offsets, the latest instant is neither the first nor the last string.
    for (title, aware) in [
        ("Connue à 23 h 30 à Paris", "2026-10-23T23:30:00+02:00"),
        ("Connue à 22 h UTC", "2026-10-23T22:00:00Z"),
        ("Connue à 22 h 45 à Paris", "2026-10-23T22:45:00+02:00"),
    ] {
        let body = json!({
            "title": title, "facts": "Liste de classe envoyée au mauvais destinataire", "aware_at": aware,
            "data_categories": ["identité"], "people_approx": 28, "records_approx": 28,
            "consequences": "risque faible", "measures": "demande de suppression au destinataire"
        });
        let (s, created) = call(dpo.post(url).json(&body)).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
    }
    let order = ["Connue à 22 h UTC", "Connue à 23 h 30 à Paris", "Connue à 22 h 45 à Paris"];
    let (s, list) = call(dpo.get(url)).await;
    assert_eq!(s, StatusCode::OK, "{name}: {list}");
    let titles: Vec<&str> = list.as_array().unwrap().iter().map(|b| b["title"].as_str().unwrap()).collect();
    assert_eq!(titles, order, "{name}: most recent awareness first, by the instant");
    let csv = dpo.get(format!("{url}?format=csv")).send().await.text;
    let positions: Vec<usize> = order.iter().map(|t| csv.find(t).unwrap_or_else(|| panic!("{name}: {t}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{name}: the export in the same order: {csv}");
    // The log reads in French, at the hour of Paris, whatever the offset typed.
    assert!(csv.contains("Prise de connaissance (heure de Paris)"), "{name}: {csv}");
    for moment in ["24 octobre 2026 à 00 h 00", "23 octobre 2026 à 23 h 30", "23 octobre 2026 à 22 h 45"] {
        assert!(csv.contains(moment), "{name}: {moment} in {csv}");
    }
    assert!(!csv.contains("2026-10-23T"), "{name}: no raw timestamp: {csv}");
    let request = json!({ "kind": "access", "requester": "R. L.", "received_on": "2026-10-23" });
    let (s, body) = call(dpo.post("/api/v1/rgpd/requests/0940198E").json(&request)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {body}");
    let csv = dpo.get("/api/v1/rgpd/requests/0940198E?format=csv").send().await.text;
    assert!(csv.contains("23 octobre 2026;23 novembre 2026;"), "{name}: received, due: {csv}");

    // 72 hours from Friday 23:30 in Paris, across the change of time: Monday 22:30 in Paris, 21:30 UTC.
    let friday = list.as_array().unwrap().iter().find(|b| b["title"] == order[1]).unwrap();
    assert_eq!(friday["cnil_deadline"], "2026-10-26T21:30:00.000000Z", "{name}");
    let warning_at = |list: &Value| list.as_array().unwrap().iter().find(|b| b["id"] == friday["id"]).unwrap().clone();
    clock.set(at("2026-10-26T21:29:00Z"));
    let before = warning_at(&call(dpo.get(url)).await.1);
    assert!(before["warning"].is_null(), "{name}: one minute before the deadline: {before}");
    clock.set(at("2026-10-26T21:31:00Z"));
    let after = warning_at(&call(dpo.get(url)).await.1);
    assert!(after["warning"].as_str().is_some_and(|w| w.contains("72 h")), "{name}: one minute after: {after}");
}

/// The JSON object `base` with the members of `extra` set over it.
fn with(mut base: Value, extra: Value) -> Value {
    base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    base
}

/// The fields a problem+json refusal names, in order.
fn refused(problem: &Value) -> Vec<String> {
    let errors = problem["errors"].as_array().unwrap_or_else(|| panic!("not a refusal: {problem}"));
    errors.iter().map(|e| e["field"].as_str().unwrap().to_string()).collect()
}

backend_test!(a_breach_s_dates_follow_each_other_and_a_late_notification_gives_its_reasons);
async fn a_breach_s_dates_follow_each_other_and_a_late_notification_gives_its_reasons(db: crate::common::TestDb) {
    let name = db.name;
    let (_app, dpo) = academie_dpo(&db.store, Arc::new(FixedClock::new(t0()))).await;
    let url = "/api/v1/rgpd/breaches/0940198E";
    let breach = |extra: Value| {
        let base = json!({
            "title": "Liste de classe envoyée au mauvais destinataire", "facts": "Courriel mal adressé",
            "aware_at": "2026-08-25T08:00:00Z", "data_categories": ["identité"], "people_approx": 28,
            "records_approx": 28, "consequences": "risque faible", "measures": "demande de suppression"
        });
        with(base, extra)
    };
    // Occurred after it was known, notified or told before: refused, each field named.
    let (s, problem) = call(dpo.post(url).json(&breach(json!({
        "occurred_at": "2026-08-26T08:00:00Z", "cnil_decision": "notified",
        "cnil_notified_at": "2026-08-24T08:00:00Z", "people_notified_at": "2026-08-24T09:00:00Z"
    }))))
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert_eq!(refused(&problem), ["occurred_at", "cnil_notified_at", "people_notified_at"], "{name}: {problem}");
    // Notified 80 hours after: the reasons for the delay are asked (Art. 33(1)), then recorded.
    let late = json!({ "cnil_decision": "notified", "cnil_notified_at": "2026-08-28T16:00:00Z" });
    let (s, problem) = call(dpo.post(url).json(&breach(late.clone()))).await;
    assert_eq!((s, refused(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["cnil_reason".to_string()]), "{name}");
    assert!(problem["detail"].as_str().unwrap().contains("motifs du retard"), "{name}: {problem}");
    let mut with_reason = breach(late);
    with_reason["cnil_reason"] = json!(" \u{200b}\u{ad} ");
    let (s, problem) = call(dpo.post(url).json(&with_reason)).await;
    assert_eq!((s, refused(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["cnil_reason".to_string()]), "{name}");
    with_reason["cnil_reason"] = json!("ampleur connue le 28 août seulement");
    let (s, created) = call(dpo.post(url).json(&with_reason)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
    // Within 72 hours, no reason is needed.
    let in_time =
        json!({ "title": "Autre envoi", "cnil_decision": "notified", "cnil_notified_at": "2026-08-27T08:00:00Z" });
    let (s, created) = call(dpo.post(url).json(&breach(in_time))).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
    // A notification dated after today (1 September 2026) is not recorded as done.
    let ahead = json!({
        "title": "Troisième envoi", "cnil_decision": "notified", "cnil_notified_at": "2026-09-03T08:00:00Z",
        "people_notified_at": "2026-09-04T08:00:00Z", "cnil_reason": "ampleur connue tardivement"
    });
    let (s, problem) = call(dpo.post(url).json(&breach(ahead))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {problem}");
    assert_eq!(refused(&problem), ["cnil_notified_at", "people_notified_at"], "{name}: {problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("futur"), "{name}: {problem}");
}

backend_test!(a_breach_records_the_people_concerned_the_risk_and_why_the_people_were_not_told);
async fn a_breach_records_the_people_concerned_the_risk_and_why_the_people_were_not_told(db: crate::common::TestDb) {
    let name = db.name;
    let (_app, dpo) = academie_dpo(&db.store, Arc::new(FixedClock::new(t0()))).await;
    let url = "/api/v1/rgpd/breaches/0940198E";
    let breach = |extra: Value| {
        let base = json!({
            "title": "Notes d'une classe publiées sur le blog", "facts": "Tableau de notes joint par erreur",
            "aware_at": "2026-08-31T08:00:00Z", "data_categories": ["notes", "identité"], "people_approx": 30,
            "records_approx": 30, "consequences": "atteinte à la réputation", "measures": "article retiré"
        });
        with(base, extra)
    };
    // A risk goes to the CNIL (Art. 33(1)); a notification number needs a notification.
    let (s, problem) = call(dpo.post(url).json(&breach(json!({
        "risk": "high", "cnil_decision": "not_required", "cnil_reason": "peu de personnes"
    }))))
    .await;
    assert_eq!((s, refused(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["cnil_decision".to_string()]), "{name}");
    assert!(problem["detail"].as_str().unwrap().contains("article 33.1"), "{name}: {problem}");
    let (s, problem) = call(dpo.post(url).json(&breach(json!({ "cnil_reference": "CNIL-2026-0042" })))).await;
    assert_eq!(
        (s, refused(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["cnil_reference".to_string()]),
        "{name}"
    );
    let (s, problem) = call(dpo.post(url).json(&breach(json!({ "people_categories": ["élèves\nparents"] })))).await;
    assert_eq!(
        (s, refused(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["people_categories".to_string()]),
        "{name}"
    );
    let (s, problem) = call(dpo.post(url).json(&breach(json!({ "risk": "moyen" })))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: an unknown risk: {problem}");
    assert_eq!(
        common::count(&db.store, "SELECT COUNT(*) FROM rgpd_breaches", &[]).await,
        0,
        "{name}: nothing recorded"
    );

    // A high risk, notified with its number: the people are still to be told, and the entry says so.
    let (s, created) = call(dpo.post(url).json(&breach(json!({
        "people_categories": ["élèves", "parents"], "risk": "high", "cnil_decision": "notified",
        "cnil_notified_at": "2026-08-31T15:00:00Z", "cnil_reference": "CNIL-2026-0042"
    }))))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
    assert_eq!((created["risk"].as_str(), created["cnil_reference"].as_str()), (Some("high"), Some("CNIL-2026-0042")));
    assert_eq!(created["people_categories"], json!(["élèves", "parents"]), "{name}");
    assert!(created["warning"].as_str().is_some_and(|w| w.contains("34.3")), "{name}: {created}");
    let csv = dpo.get(format!("{url}?format=csv")).send().await.text;
    assert!(csv.contains("Catégories de personnes") && csv.contains("Risque pour les personnes"), "{name}: {csv}");
    assert!(csv.contains(";élèves, parents;30;30;") && csv.contains(";risque élevé;notifiée;"), "{name}: {csv}");
    assert!(csv.contains(";CNIL-2026-0042;non;"), "{name}: {csv}");

    // Any text is no exception: the people are still to be told. The exceptions of Art. 34(3)
    // hold for a high risk only, each justified, a public communication with its date.
    let id = created["id"].as_str().unwrap();
    let put = |body: Value, version: i64| {
        dpo.put(format!("{url}/{id}").as_str()).header("if-match", format!("\"{version}\"")).json(&body)
    };
    let high = json!({
        "people_categories": ["élèves", "parents"], "risk": "high", "cnil_decision": "notified",
        "cnil_notified_at": "2026-08-31T15:00:00Z", "cnil_reference": "CNIL-2026-0042"
    });
    let (s, noted) = call(put(with(breach(high.clone()), json!({ "people_reason": "." })), 1)).await;
    assert_eq!(s, StatusCode::OK, "{name}: {noted}");
    assert!(noted["warning"].as_str().is_some_and(|w| w.contains("34.3")), "{name}: still untold: {noted}");
    for (extra, fields) in [
        (json!({ "people_exception": "encrypted", "people_reason": "" }), vec!["people_reason"]),
        (
            json!({ "people_exception": "public_communication", "people_reason": "site de la mairie" }),
            vec!["people_notified_at"],
        ),
        (
            json!({ "risk": "risk", "people_exception": "encrypted", "people_reason": "clé AES" }),
            vec!["people_exception"],
        ),
    ] {
        let (s, problem) = call(put(with(breach(high.clone()), extra.clone()), 2)).await;
        assert_eq!(
            (s, refused(&problem)),
            (StatusCode::UNPROCESSABLE_ENTITY, fields.iter().map(|f| f.to_string()).collect()),
            "{name}: {extra}"
        );
    }
    let excepted =
        json!({ "people_exception": "risk_removed", "people_reason": "article retiré avant toute consultation" });
    let (s, updated) = call(put(with(breach(high.clone()), excepted), 2)).await;
    assert_eq!(s, StatusCode::OK, "{name}: {updated}");
    assert!(updated["warning"].is_null(), "{name}: {updated}");
    let csv = dpo.get(format!("{url}?format=csv")).send().await.text;
    assert!(
        csv.contains(";non (article 34.3.b : mesures rendant le risque élevé improbable : article retiré"),
        "{name}: {csv}"
    );
    // Each change is audited with its values before and after.
    let audited = common::count(
        &db.store,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'rgpd.breach.update' AND summary LIKE $1",
        &["%people_exception%risk_removed%"],
    )
    .await;
    assert_eq!(audited, 1, "{name}");

    // A client written before these fields sends the entry back without them: they stay.
    let older = breach(json!({ "cnil_decision": "notified", "cnil_notified_at": "2026-08-31T15:00:00Z" }));
    let (s, kept) = call(put(older, 3)).await;
    assert_eq!(s, StatusCode::OK, "{name}: {kept}");
    assert_eq!((kept["risk"].as_str(), kept["people_exception"].as_str()), (Some("high"), Some("risk_removed")));
    assert_eq!(
        (kept["cnil_reference"].as_str(), kept["people_categories"][1].as_str()),
        (Some("CNIL-2026-0042"), Some("parents"))
    );

    // An entry typed without them reads as not assessed and its people's categories as not given.
    let (s, plain) = call(dpo.post(url).json(&breach(json!({ "title": "Autre publication" })))).await;
    assert_eq!((s, plain["risk"].as_str()), (StatusCode::CREATED, Some("unassessed")), "{name}: {plain}");
    // Not assessed, it cannot be declared « not required » (Art. 33(1)).
    let unassessed = json!({ "title": "Autre publication", "cnil_decision": "not_required", "cnil_reason": "bénin" });
    let plain_id = plain["id"].as_str().unwrap();
    let path = format!("{url}/{plain_id}");
    let (s, problem) = call(dpo.put(path.as_str()).header("if-match", "\"1\"").json(&breach(unassessed))).await;
    assert_eq!((s, refused(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["risk".to_string()]), "{name}");
    // One recorded « non requise » before the risk was asked (as migration 0052 left it) is
    // still corrected by a client that does not send the risk.
    sqlx::query("UPDATE rgpd_breaches SET cnil_decision = 'not_required', cnil_reason = 'bénin' WHERE id = $1")
        .bind(plain_id)
        .execute(db.store.pool())
        .await
        .unwrap();
    let corrected = json!({ "title": "Autre publication", "facts": "Corrigé", "cnil_decision": "not_required", "cnil_reason": "bénin" });
    let (s, body) = call(dpo.put(path.as_str()).header("if-match", "\"1\"").json(&breach(corrected))).await;
    assert_eq!((s, body["risk"].as_str()), (StatusCode::OK, Some("unassessed")), "{name}: {body}");
    let csv = dpo.get(format!("{url}?format=csv")).send().await.text;
    assert!(csv.contains(";non renseignées;") && csv.contains(";non évalué;"), "{name}: {csv}");
}

backend_test!(a_breach_and_a_request_sent_at_once_several_times_are_recorded_once);
async fn a_breach_and_a_request_sent_at_once_several_times_are_recorded_once(db: crate::common::TestDb) {
    let name = db.name;
    let (_app, dpo) = academie_dpo(&db.store, Arc::new(FixedClock::new(t0()))).await;
    let breach = json!({
        "title": "Courriel mal adressé", "facts": "Liste envoyée à un tiers", "aware_at": "2026-08-31T08:00:00Z",
        "data_categories": ["identité"], "people_approx": 3, "records_approx": 3, "consequences": "faibles",
        "measures": "demande de suppression"
    });
    let request = json!({ "kind": "access", "requester": "A. B.", "received_on": "2026-08-31" });
    let send = |path: &'static str, body: &Value| {
        let body = body.clone();
        let dpo = &dpo;
        async move { dpo.post(path).json(&body).send().await.status }
    };
    let breaches =
        futures_util::future::join_all((0..4).map(|_| send("/api/v1/rgpd/breaches/0940198E", &breach))).await;
    let requests =
        futures_util::future::join_all((0..4).map(|_| send("/api/v1/rgpd/requests/0940198E", &request))).await;
    assert!(breaches.iter().chain(&requests).all(|s| *s == 201), "{name}: {breaches:?} {requests:?}");
    for table in ["rgpd_breaches", "rgpd_requests"] {
        let rows = common::count(&db.store, &format!("SELECT COUNT(*) FROM {table}"), &[]).await;
        assert_eq!(rows, 1, "{name}: {table}");
    }
}

backend_test!(a_breach_and_a_request_sent_either_side_of_new_years_midnight_are_recorded_once);
async fn a_breach_and_a_request_sent_either_side_of_new_years_midnight_are_recorded_once(db: crate::common::TestDb) {
    let name = db.name;
    // 23:59:59 and 00:00:01 in Paris: the two sends number from the counters of two years.
    let (_old_year, before) = academie_dpo(&db.store, Arc::new(FixedClock::new(at("2026-12-31T22:59:59Z")))).await;
    let new_year = TestApp::over(&db.store).clock(Arc::new(FixedClock::new(at("2026-12-31T23:00:01Z")))).build().await;
    let after = new_year.client(
        &token_for(&db.store, "dpd.suppleant@ac-creteil.fr", entcp::kernel::roles::Role::Dpo, Some("academie:24"))
            .await,
    );
    for round in 0..5 {
        let breach = json!({
            "title": format!("Courriel mal adressé {round}"), "facts": "Liste envoyée à un tiers",
            "aware_at": "2026-12-31T08:00:00Z", "data_categories": ["identité"], "people_approx": 3,
            "records_approx": 3, "consequences": "faibles", "measures": "demande de suppression"
        });
        let request = json!({ "kind": "access", "requester": format!("A. B. {round}"), "received_on": "2026-12-31" });
        let sends =
            [(&before, "/api/v1/rgpd/breaches/0940198E", &breach), (&after, "/api/v1/rgpd/breaches/0940198E", &breach)]
                .into_iter()
                .chain([
                    (&before, "/api/v1/rgpd/requests/0940198E", &request),
                    (&after, "/api/v1/rgpd/requests/0940198E", &request),
                ])
                .map(|(client, path, body)| async move { client.post(path).json(body).send().await.status });
        let statuses = futures_util::future::join_all(sends).await;
        assert!(statuses.iter().all(|s| *s == 201), "{name}: {statuses:?}");
    }
    for table in ["rgpd_breaches", "rgpd_requests"] {
        let rows = common::count(&db.store, &format!("SELECT COUNT(*) FROM {table}"), &[]).await;
        assert_eq!(rows, 5, "{name}: {table}");
    }
}

#[tokio::test]
async fn the_monthly_job_snapshots_changed_registers_and_tells_the_dpo_what_changed() {
    let d = demo(common::sqlite().await).await;
    d.set_profile().await;
    let store = d.db.store.clone();
    // The DSDEN's register names a contact address of its own; the académie's DPO keeps it.
    let contact = "UPDATE rgpd_profiles SET dpo_email = 'contact.dpd@ac-creteil.fr' \
                   WHERE org_id = (SELECT id FROM orgs WHERE kind = 'dsden' AND code = '94')";
    common::execute(&store, contact, &[]).await;
    let state = |days: i64| {
        let clock = Arc::new(FixedClock::new(t0() + chrono::Duration::days(days)));
        crate::common::app::app_state(store.clone(), entcp::config::Config::default(), clock)
    };
    let mails = || crate::common::queued_mails(&store, "rgpd");
    let first = entcp::rgpd::jobs::monthly(&state(0).rgpd(), t0()).await.unwrap();
    // The académie (controller), both communes, the vendor and the host (processors).
    assert_eq!((first.registers, first.snapshots, first.notified), (5, 5, 0), "{first:?}");
    let again = entcp::rgpd::jobs::monthly(&state(1).rgpd(), t0() + chrono::Duration::days(1)).await.unwrap();
    assert_eq!((again.snapshots, again.notified), (0, 0), "nothing changed: {again:?}");
    assert!(mails().await.is_empty());

    vitry_adds_visio(&store).await;
    let later = t0() + chrono::Duration::days(30);
    let changed = entcp::rgpd::jobs::monthly(&state(30).rgpd(), later).await.unwrap();
    assert!(changed.snapshots >= 1 && changed.notified >= 1, "{changed:?}");
    let sent = mails().await;
    let mail = sent.iter().find(|m| m.recipient() == "dpd@ac-creteil.fr").expect("the académie's DPO is told");
    let contact = sent.iter().find(|m| m.recipient() == "contact.dpd@ac-creteil.fr").expect("the register's contact");
    assert_eq!(contact.context["snapshot"], mail.context["snapshot"], "one notice to both");
    let context = &mail.context;
    // #15: the écoles' controller is the DSDEN (IA-DASEN) of the Val-de-Marne, whose entries are 94-…
    assert!(context["changed"].to_string().contains("94-visio"), "{context}");
    assert_eq!(context["previous"], "2026-09-01");
    // The mail links the page comparing this snapshot with the previous one.
    let page = context["page"].as_str().unwrap();
    assert!(page.starts_with("/rgpd/") && page.contains("/ecarts?de="), "{context}");
    assert!(page.ends_with(&format!("&a={}", context["snapshot"].as_str().unwrap())), "{context}");
}

/// Vitry's Henri-Wallon ENT adds the visioconference on day 20 after [`t0`], and is deployed
/// with it: a real change of the registers that list it.
async fn vitry_adds_visio(store: &entcp::store::Store) {
    let mut doc: entcp::tenants::EntTenant =
        entcp::yaml::from_str(include_str!("../../../../tenants/examples/vitry-henri-wallon-a.yaml")).unwrap();
    doc.spec.options = vec!["visio".into()];
    let tenant = entcp::tenants::get_tenant(store, "vitry-henri-wallon-a").await.unwrap().unwrap();
    let clock = Arc::new(FixedClock::new(t0() + chrono::Duration::days(20)));
    let state = crate::common::app::app_state(store.clone(), entcp::config::Config::default(), clock);
    entcp::tenants::apply(&state.tenants(), &admin(), &doc, Some(tenant.version)).await.unwrap();
    deployed(store, "vitry-henri-wallon-a", 20).await;
}

/// One reconcile pass over the tenant `slug` on day `days` after [`t0`], which must apply it:
/// a register describes what a tenant was applied with, its new spec once deployed.
async fn deployed(store: &entcp::store::Store, slug: &str, days: i64) {
    let at = t0() + chrono::Duration::days(days);
    let clock = Arc::new(FixedClock::new(at));
    let state = crate::common::app::app_state(store.clone(), crate::common::app::test_config(), clock);
    let report = entcp::provisioning::reconcile::pass(&state.provisioning(), Some(slug), at).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");
}

// Two monthly runs at once (two replicas) each compared the register with the same latest
// snapshot, then each recorded one and mailed the DPO: two snapshots, two mails. The latest
// snapshot is read again under the organisation's lock, in the transaction of the insert.
race_test!(two_monthly_runs_at_once_make_one_snapshot_and_one_mail_per_dpo);
async fn two_monthly_runs_at_once_make_one_snapshot_and_one_mail_per_dpo(db: crate::common::TestDb) {
    let d = demo(db).await;
    d.set_profile().await;
    let store = d.db.store.clone();
    let replica_b = entcp::store::Store::connect(&d.db.url, None).await.unwrap();
    let state = |store: &entcp::store::Store, days: i64| {
        let clock = Arc::new(FixedClock::new(t0() + chrono::Duration::days(days)));
        crate::common::app::app_state(store.clone(), entcp::config::Config::default(), clock)
    };
    // Both runs derive the registers, then wait for the writers' lock (SQLite), the
    // organisations' rows (PostgreSQL).
    let both = |days: i64| {
        let states = [state(&store, days), state(&replica_b, days)];
        let store = store.clone();
        async move {
            let at = t0() + chrono::Duration::days(days);
            let hold = common::hold_writes(&store, "SELECT id FROM orgs FOR UPDATE", &[]).await;
            let runs = states
                .map(|state| tokio::spawn(async move { entcp::rgpd::jobs::monthly(&state.rgpd(), at).await.unwrap() }));
            common::let_them_queue().await;
            hold.commit().await.unwrap();
            let (mut snapshots, mut notified) = (0, 0);
            for run in runs {
                let report = run.await.unwrap();
                (snapshots, notified) = (snapshots + report.snapshots, notified + report.notified);
            }
            (snapshots, notified)
        }
    };
    let snapshots = || common::count(&store, "SELECT COUNT(*) FROM rgpd_snapshots", &[]);
    assert_eq!(both(0).await, (5, 0), "{}: one first snapshot per register", d.db.name);
    assert_eq!(snapshots().await, 5, "{}", d.db.name);

    vitry_adds_visio(&store).await;
    let (changed, notified) = both(30).await;
    assert!(changed >= 1, "{}", d.db.name);
    assert_eq!(snapshots().await, 5 + changed as i64, "{}", d.db.name);
    let notices = common::queued_notices(&store, "rgpd").await;
    assert_eq!(notices.len(), notified, "{}", d.db.name);
    let to_the_academie = common::queued_mails(&store, "rgpd").await;
    let to_the_academie = to_the_academie.iter().filter(|m| m.recipient() == "dpd@ac-creteil.fr").count();
    assert_eq!(to_the_academie, 1, "{}: the académie's DPO is told once", d.db.name);
    replica_b.close().await;
}

backend_test!(the_messagerie_of_a_first_degree_register_requires_a_dpia_with_its_two_criteria_named);
async fn the_messagerie_of_a_first_degree_register_requires_a_dpia_with_its_two_criteria_named(
    db: crate::common::TestDb,
) {
    let d = demo(db).await;
    let name = d.db.name;
    // The controller of Fresnes' écoles, as the commune's Art. 30(2) register names it.
    let controller = controller_of(&d, "commune:94034").await;
    let (s, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    assert_eq!(s, StatusCode::OK, "{register}");
    let entry = |service: &str| register_entry(&register, service);
    let messagerie = entry("messagerie");
    assert_eq!(messagerie["dpia"]["required"], true, "{name}: {}", messagerie["dpia"]);
    let reasons: Vec<&str> =
        messagerie["dpia"]["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "{name}: {reasons:?}");
    assert!(reasons[0].contains("élèves mineurs"), "{name}: {reasons:?}");
    assert!(reasons[1].contains("hautement personnel") && reasons[1].contains("communications électroniques"));
    // Electronic communications are highly personal, not art. 9/10 data.
    assert_eq!(
        (messagerie["highly_personal_data"].as_bool(), messagerie["sensitive_data"].as_bool()),
        (Some(true), Some(false))
    );
    // Vitry's tenant declares its capacity, Fresnes declares nothing: counted apart, never as 0.
    // The large-scale line: below the threshold on what is known, the sample's annuaire giving
    // no head count.
    let scale = messagerie["dpia"]["scale"].as_str().unwrap();
    assert!(scale.starts_with("critère non rempli — personnes concernées : "), "{name}: {scale}");
    assert!(
        scale.contains(
            " au moins (comptes des élèves, personnels et familles des ENT déployés : nombre de comptes de chaque \
             tenant ; 1 tenant sans nombre de comptes connu) ; élèves selon l'annuaire : effectifs non renseignés dans \
             l'annuaire ;"
        ),
        "{name}: {scale}"
    );
    // The portail has minors only, but the ENT is one processing: its AIPD, judged on the union
    // of the services' criteria, covers the portail too (one verdict, never « non requise » beside « requise »).
    let portail = entry("portail");
    assert_eq!(portail["dpia"], messagerie["dpia"], "{name}");
    assert_eq!(portail["dpia_covered_by"], messagerie["dpia_covered_by"], "{name}");
    let ent = register["processings"].as_array().unwrap();
    assert_eq!(ent.len(), 1, "{name}: one ENT for the controller: {ent:?}");
    assert_eq!(ent[0]["reference"], portail["dpia_covered_by"], "{name}");
    assert!(ent[0]["entries"].as_array().unwrap().contains(&portail["reference"]), "{name}");
    // Processors and the arrêté's recipients are among the recipients; identities come from ONDE via the AAF.
    let recipients = messagerie["recipients"].to_string();
    assert!(
        recipients.contains("Sous-traitant (collectivité) : Commune de ")
            && recipients.contains("article 4 de l'arrêté"),
        "{recipients}"
    );
    assert!(!recipients.contains("(sous-traitant ("), "{name}: no parentheses nested: {recipients}");
    let source = messagerie["data_source"].as_str().unwrap();
    assert!(source.contains("ONDE") && source.contains("AAF") && !source.contains("SIECLE"), "{name}: {source}");

    // Every document says it in words.
    let html = d.html_register(&d.admin, &controller).await;
    // The ENT's services include the carnet de liaison (absence reasons: art. 9): the ENT's AIPD names it.
    // It cites what triggers it: minors (recital 75), the art. 9 category the ENT really processes
    // (no art. 10: no data on offences), the voice and image of the visio, and article 35.
    let covered = "couvert par l'AIPD de l'ENT (94-ENT) : AIPD requise (2 critères) : personnes vulnérables : élèves \
                   mineurs (considérant 75 du RGPD) ; données sensibles au sens de l'article 9 du RGPD : Motifs \
                   d'absence signalés par les familles";
    assert!(html.contains(&french(covered)), "{name}: {html}");
    let ent = &messagerie["dpia"];
    let basis = ent["basis"].as_str().unwrap();
    assert!(
        basis.starts_with("article 35, paragraphe 1, du RGPD : deux critères au moins des lignes directrices du G29")
            && basis.contains("délibération n° 2018-327 du 11 octobre 2018"),
        "{name}: {ent}"
    );
    assert!(!basis.contains("paragraphe 3"), "{name}: no art. 35.3.b without a large scale: {ent}");
    let reasons = ent["reasons"].to_string();
    assert!(reasons.contains("Image et voix des participants"), "{name}: {reasons}");
    assert!(!reasons.contains("article 10") && !reasons.contains("articles 9 et 10"), "{name}: {reasons}");
    assert!(html.contains(&french(&format!("fondement : {basis}"))), "{name}: the document states it");
    assert!(!html.contains("AIPD non requise") && !html.contains("non requise (un seul critère"), "{name}");
    assert!(html.contains(&french("1 tenant sans nombre de comptes connu")), "{name}");
}

backend_test!(a_request_is_extended_only_when_the_requester_is_told_within_the_first_month);
async fn a_request_is_extended_only_when_the_requester_is_told_within_the_first_month(db: crate::common::TestDb) {
    let name = db.name;
    // Tuesday 15 December 2026, 10:00 in Paris.
    let (_app, dpo) = academie_dpo(&db.store, Arc::new(FixedClock::new(at("2026-12-15T09:00:00Z")))).await;
    let url = "/api/v1/rgpd/requests/0940198E";
    let request = |requester: &str, received: &str| json!({ "kind": "erasure", "requester": requester, "received_on": received, "extended": true });

    // Received three weeks ago, extended today: the requester is told today, three months to answer.
    let (s, recent) = call(dpo.post(url).json(&request("A. B.", "2026-11-24"))).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {recent}");
    assert_eq!(
        (recent["due_on"].as_str(), recent["extension_notified_on"].as_str()),
        (Some("2027-02-24"), Some("2026-12-15"))
    );

    // Received two months ago: an extension recorded today comes too late to be told in time.
    let (s, late) = call(dpo.post(url).json(&request("C. D.", "2026-10-10"))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {late}");
    assert_eq!(late["errors"][0]["field"], "extended", "{name}: {late}");
    let detail = late["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(detail.contains("au plus tard le 10 novembre 2026") && detail.contains("12.3"), "{name}: {late}");
    // Told on 2 November, inside the month: recorded as it happened.
    let mut told = request("C. D.", "2026-10-10");
    told["extension_notified_on"] = json!("2026-11-02");
    let (s, kept) = call(dpo.post(url).json(&told)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {kept}");
    // 10 January 2027 is a Sunday: due Monday 11.
    assert_eq!(kept["due_on"], "2027-01-11", "{name}: {kept}");
    // Told after the month, before the reception, or in the future: each refused on the day.
    for (day, says) in [("2026-11-11", "au plus tard"), ("2026-10-09", "avant la réception"), ("2026-12-16", "futur")]
    {
        told["extension_notified_on"] = json!(day);
        told["requester"] = json!(format!("E. F. {day}"));
        let (s, body) = call(dpo.post(url).json(&told)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name} {day}: {body}");
        assert_eq!(body["errors"][0]["field"], "extension_notified_on", "{name} {day}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains(says), "{name} {day}: {body}");
    }
    // Nothing of the refused ones was written.
    let (_, list) = call(dpo.get(url)).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{name}: {list}");

    // A request recorded without extension, extended later: only within its first month.
    let plain = json!({ "kind": "access", "requester": "G. H.", "received_on": "2026-11-02" });
    let (s, open) = call(dpo.post(url).json(&plain)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {open}");
    let path = format!("{url}/{}", open["id"].as_str().unwrap());
    let mut extended = plain.clone();
    extended["extended"] = json!(true);
    let (s, body) = call(dpo.put(&path).header("if-match", "\"1\"").json(&extended)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("2 décembre 2026"), "{name}: {body}");
    // An extension already recorded keeps its day when the request is followed up.
    let path = format!("{url}/{}", kept["id"].as_str().unwrap());
    let mut answered = request("C. D.", "2026-10-10");
    answered["status"] = json!("answered");
    answered["answered_on"] = json!("2026-12-14");
    let (s, body) = call(dpo.put(&path).header("if-match", "\"1\"").json(&answered)).await;
    assert_eq!(s, StatusCode::OK, "{name}: {body}");
    assert_eq!(body["extension_notified_on"], "2026-11-02", "{name}: {body}");
    // The register says when the requester was told.
    let csv = dpo.get(format!("{url}?format=csv")).send().await.text;
    assert!(csv.contains("11 janvier 2027 (prolongée, personne informée le 2 novembre 2026)"), "{name}: {csv}");

    // An answer cannot be dated after today (15 December 2026): the request stays open.
    answered["answered_on"] = json!("2027-01-05");
    let (s, body) = call(dpo.put(&path).header("if-match", "\"2\"").json(&answered)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
    assert_eq!(body["errors"][0]["field"], "answered_on", "{name}: {body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("futur"), "{name}: {body}");

    // Extended: two months after the first deadline (30 November), not three after the reception;
    // Saturday 30 January 2027 moves to Monday 1 February.
    let mut month_end = request("I. J.", "2026-10-31");
    month_end["extension_notified_on"] = json!("2026-11-20");
    let (s, body) = call(dpo.post(url).json(&month_end)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {body}");
    assert_eq!(body["due_on"], "2027-02-01", "{name}: {body}");
    assert_eq!(body["extended"], true, "{name}: {body}");
}

backend_test!(a_request_answered_after_its_deadline_stays_late_and_a_refusal_needs_its_reasons);
async fn a_request_answered_after_its_deadline_stays_late_and_a_refusal_needs_its_reasons(db: crate::common::TestDb) {
    let name = db.name;
    // Tuesday 15 December 2026, 10:00 in Paris.
    let (_app, dpo) = academie_dpo(&db.store, Arc::new(FixedClock::new(at("2026-12-15T09:00:00Z")))).await;
    let url = "/api/v1/rgpd/requests/0940198E";
    let closed = |requester: &str, status: &str, answered: &str, notes: &str| {
        json!({ "kind": "access", "requester": requester, "received_on": "2026-09-15", "status": status,
                "answered_on": answered, "notes": notes })
    };

    // Due 15 October, answered two months later: late, in the API and in the export.
    let (s, late) = call(dpo.post(url).json(&closed("K. L.", "answered", "2026-12-10", ""))).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {late}");
    assert_eq!(
        (late["due_on"].as_str(), late["overdue"].as_bool()),
        (Some("2026-10-15"), Some(true)),
        "{name}: {late}"
    );
    // Answered on its due day: not late.
    let (s, on_time) = call(dpo.post(url).json(&closed("M. N.", "answered", "2026-10-15", ""))).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {on_time}");
    assert_eq!(on_time["overdue"], false, "{name}: {on_time}");
    let csv = dpo.get(format!("{url}?format=csv")).send().await.text;
    let line = |who: &str| csv.lines().find(|l| l.contains(who)).unwrap_or_default().to_string();
    assert!(line("K. L.").contains("oui"), "{name}: {csv}");
    assert!(!line("M. N.").contains("oui"), "{name}: {csv}");

    // A refusal without its reasons is refused, naming the notes; nothing is written.
    let (s, body) = call(dpo.post(url).json(&closed("O. P.", "rejected", "2026-10-01", "  "))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
    assert_eq!(body["errors"][0]["field"], "notes", "{name}: {body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("CNIL"), "{name}: {body}");
    let (_, list) = call(dpo.get(url)).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{name}: {list}");
    // With its reasons, recorded on time.
    let reasons = "demande manifestement infondée ; droit de réclamation auprès de la CNIL rappelé";
    let (s, body) = call(dpo.post(url).json(&closed("O. P.", "rejected", "2026-10-01", reasons))).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {body}");
    assert_eq!(body["overdue"], false, "{name}: {body}");
}

/// Moves the demo host to `country` (ISO 3166 alpha-2), as an administrator would.
async fn host_in(d: &Demo, country: &str) {
    use entcp::registry::manage::{update_org, OrgPatch};
    let host = entcp::registry::resolve_org(&d.db.store, "hebergeur:900000027").await.unwrap();
    let patch = OrgPatch { country: Some(country.into()), ..OrgPatch::default() };
    update_org(&d.db.store, &admin(), &host, host.version, patch, t0()).await.unwrap();
}

/// The transfers of the visio entry and whether a missing field names a safeguard.
async fn visio_transfers(d: &Demo) -> (Value, bool) {
    let (s, _, body) = d.export(&d.dpo, "dsden:94", "json").await;
    assert_eq!(s, StatusCode::OK);
    let register: Value = serde_json::from_slice(&body).unwrap();
    let entry = visio(&register).clone();
    let missing = entry["missing"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().starts_with("garanties"));
    (entry["transfers"].clone(), missing)
}

backend_test!(a_transfer_outside_the_eea_is_complete_once_the_processor_records_its_safeguard);
async fn a_transfer_outside_the_eea_is_complete_once_the_processor_records_its_safeguard(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    // The visio of Fresnes: a host in Norway (EEA): no transfer to a third country.
    host_in(&d, "NO").await;
    let (transfers, _) = visio_transfers(&d).await;
    assert_eq!(transfers, json!([]), "{name}");
    // In the United States: a transfer, its safeguard missing until recorded.
    host_in(&d, "US").await;
    let (transfers, missing) = visio_transfers(&d).await;
    assert_eq!((transfers[0]["country"].as_str(), transfers[0]["safeguard"].as_str()), (Some("US"), Some("")));
    assert!(missing, "{name}: {transfers}");

    let url = "/api/v1/rgpd/profiles/hebergeur:900000027";
    let profile = |basis: &str, reference: &str| {
        json!({ "head_name": "", "head_title": "", "address": "", "phone": "", "email": "", "dpo_name": "DPO",
                "dpo_email": "dpo@hebergeur.example", "dpo_phone": "", "dpo_address": "", "representative": "",
                "security_measures": "", "transfer_safeguard": basis, "transfer_safeguard_reference": reference })
    };
    // Hostile or incomplete input is refused, naming the field; nothing recorded.
    for (basis, reference, field) in [
        ("scc", "CCT 2021/914\u{0}", "transfer_safeguard_reference"),
        ("scc", "  ", "transfer_safeguard_reference"),
        ("bouclier", "Privacy Shield", "transfer_safeguard"),
        ("", "CCT 2021/914", "transfer_safeguard"),
    ] {
        let (s, body) = call(d.admin.put(url).json(&profile(basis, reference))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name} {basis}: {body}");
        // A control character is refused as the body is read (`corps/<field>`).
        assert!(body["errors"][0]["field"].as_str().unwrap_or_default().ends_with(field), "{name} {basis}: {body}");
    }
    let (_, still) = visio_transfers(&d).await;
    assert!(still, "{name}");

    let reference = "CCT (décision 2021/914), module 3, annexées au contrat HEB-2026-01";
    let (s, body) = call(d.admin.put(url).json(&profile("scc", reference))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {body}");
    let audited: i64 = common::count(
        &d.db.store,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'rgpd.profile.update' AND summary LIKE $1",
        &["%scc%"],
    )
    .await;
    assert_eq!(audited, 1, "{name}");
    // The record says what moved, old and new values (a DPO's address repointed is traced).
    let summary: String = sqlx::query_scalar(
        "SELECT summary FROM audit_log WHERE action = 'rgpd.profile.update' AND summary LIKE '%scc%'",
    )
    .fetch_one(d.db.store.pool())
    .await
    .unwrap();
    let changes = serde_json::from_str::<Value>(&summary).unwrap()["changes"].clone();
    assert_eq!(changes["transfer_safeguard_reference"]["after"], reference, "{name}: {summary}");
    assert_eq!(changes["transfer_safeguard"]["after"], "scc", "{name}: {summary}");
    let (transfers, missing) = visio_transfers(&d).await;
    let safeguard = transfers[0]["safeguard"].as_str().unwrap_or_default();
    assert!(safeguard.contains("clauses contractuelles types") && safeguard.contains(reference), "{name}: {safeguard}");
    assert!(!missing, "{name}: {transfers}");
    let csv = String::from_utf8(d.export(&d.dpo, "dsden:94", "csv").await.2).unwrap();
    assert!(csv.contains(reference) && csv.contains("article 46.2.c"), "{name}");
}

/// Imports one new open école of Fresnes (`0940990R`), a copy of école Jean Monet, as the
/// annuaire would after the bipartite was signed.
async fn import_new_ecole_of_fresnes(d: &Demo) {
    let csv = std::fs::read_to_string(common::fixture("annuaire-education-94-ecoles.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    let monet = csv.lines().find(|l| l.starts_with("0940289D;")).unwrap();
    let new = monet.replace("0940289D", "0940990R").replace("Jean Monet", "Simone Veil");
    let file = format!("{header}\n{new}\n").into_bytes();
    let options = entcp::registry::import::ImportOptions::default();
    entcp::registry::import::import_annuaire(&d.db.store, &admin(), std::io::Cursor::new(file), options, t0())
        .await
        .unwrap();
}

/// Puts the commune-wide tenant of Fresnes back to `requested` and asks the gate again.
async fn gate_of_fresnes(d: &Demo) -> (StatusCode, Value) {
    sqlx::query("UPDATE tenants SET status = 'requested' WHERE slug = 'fresnes'")
        .execute(d.db.store.pool())
        .await
        .unwrap();
    call(d.dan.post("/api/v1/tenants/fresnes/transition").json(&json!({ "to": "provisioning" }))).await
}

backend_test!(an_ecole_opened_after_the_bipartite_is_covered_by_it_without_avenant);
async fn an_ecole_opened_after_the_bipartite_is_covered_by_it_without_avenant(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    import_new_ecole_of_fresnes(&d).await;
    // The register: the new école is under the bipartite's roles, not the default ones.
    let (_, dsden) = call(d.admin.get(d.url("/registers/dsden:94"))).await;
    let entries = dsden["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| uais(e).contains(&"0940990R".to_string())), "{name}: {dsden}");
    let defaulted: Vec<&Value> = entries
        .iter()
        .flat_map(|e| e["warnings"].as_array().unwrap())
        .filter(|w| w.as_str().unwrap().contains("aucune convention en vigueur"))
        .collect();
    assert!(defaulted.is_empty(), "{name}: the new école has the bipartite's roles: {defaulted:?}");
    // The gate: the commune-wide tenant serving it is let through.
    let (s, body) = gate_of_fresnes(&d).await;
    assert_eq!(s, StatusCode::OK, "{name}: {body}");

    // An école the annuaire closes is no longer covered, and no longer served.
    sqlx::query("UPDATE orgs SET is_open = 0 WHERE kind = 'etablissement' AND code = '0940990R'")
        .execute(d.db.store.pool())
        .await
        .unwrap();
    let today = "2026-09-01";
    let closed = entcp::registry::resolve_org(&d.db.store, "0940990R").await.unwrap();
    let models = entcp::conventions::model::load_models(None).unwrap();
    let covering = entcp::conventions::active_covering(&d.db.store, &models, &closed.id, today).await.unwrap();
    assert!(covering.is_none(), "{name}: a closed école is not covered");
}

backend_test!(a_groupement_convention_is_not_the_convention_in_force_of_a_member_commune);
async fn a_groupement_convention_is_not_the_convention_in_force_of_a_member_commune(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    // Fresnes joins a groupement de commandes (in force), then its bipartite ends.
    let body = json!({
        "model": "groupement-de-commandes",
        "parties": { "coordinateur": "academie:24", "membre": ["commune:94034"] },
        "start_date": "2026-09-01",
    });
    let id = common::fixtures::constitutive(&d.db.store, body).await;
    let store = d.db.store.pool();
    sqlx::query("UPDATE conventions SET status = 'active' WHERE id = $1").bind(&id).execute(store).await.unwrap();
    sqlx::query(
        "UPDATE conventions SET status = 'expired' WHERE model_id = 'bipartite-commune' AND id IN \
         (SELECT convention_id FROM convention_parties p JOIN orgs o ON o.id = p.org_id \
          WHERE o.kind = 'commune' AND o.code = '94034')",
    )
    .execute(store)
    .await
    .unwrap();
    // A ticket on the commune's tenant is flagged: its convention has expired.
    let ticket = json!({ "tenant": "fresnes", "subject": "ENT inaccessible", "description": "Page blanche.",
        "category": "acces", "impact": "haute", "urgency": "haute" });
    let (s, created) = call(d.admin.post("/api/v1/support/tickets").json(&ticket)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
    assert_eq!(created["convention_flag"], "convention_expiree", "{name}: {created}");
    // With no open école, the commune itself must be covered: the groupement's convention does not.
    sqlx::query("UPDATE orgs SET is_open = 0 WHERE kind = 'etablissement' AND commune_code = '94034'")
        .execute(store)
        .await
        .unwrap();
    let (s, body) = gate_of_fresnes(&d).await;
    assert_eq!(s, StatusCode::CONFLICT, "{name}: {body}");
    assert_eq!(body["missing"], "convention", "{name}: {body}");
}

backend_test!(a_register_states_the_security_measures_rendered_for_its_tenants_and_no_other);
async fn a_register_states_the_security_measures_rendered_for_its_tenants_and_no_other(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let clock = Arc::new(FixedClock::new(t0()));
    let state = common::app::app_state(d.db.store.clone(), entcp::config::Config::default(), clock);
    let tenant = entcp::tenants::get_tenant(&d.db.store, "fresnes").await.unwrap().unwrap();
    let objects = entcp::tenants::render(&state.tenants(), &tenant).await.unwrap();
    let rendered = entcp::provisioning::security_measures(&objects);
    assert!(rendered.len() >= 5, "{name}: {rendered:?}");
    let (_, dsden) = call(d.admin.get(d.url("/registers/dsden:94"))).await;
    let serves_fresnes = |e: &&Value| e["establishments"].as_array().unwrap().iter().any(|s| s["tenant"] == "fresnes");
    let entries: Vec<&Value> = dsden["entries"].as_array().unwrap().iter().filter(serves_fresnes).collect();
    assert!(!entries.is_empty(), "{name}: {dsden}");
    let (_, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    let processed = vendor["processor_entries"].as_array().unwrap();
    for e in entries.iter().copied().chain(processed) {
        let measures: Vec<&str> =
            e["security_measures"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(measures[..rendered.len()], rendered[..], "{name}: what render made for the tenant, first");
        // Nothing the platform does not deploy: no log retention, no backup, no account deletion
        // (no groupement's CCTP binds this vendor either).
        let untrue = ["Journalisation", "conservée un an", "sauvegarde", "Sauvegarde", "Suppression des comptes"];
        for m in &measures {
            assert!(!untrue.iter().any(|u| m.contains(u)), "{name}: « {m} » is not deployed");
        }
    }
}

// The IA-DASEN is the controller of the commune's public écoles only: a private école of Fresnes
// (sous contrat) leaves the commune's tenant in the register, and the vendor no longer works for
// the DSDEN there; the public école beside it stays.
backend_test!(a_private_ecole_of_the_commune_is_not_in_the_dsden_register);
async fn a_private_ecole_of_the_commune_is_not_in_the_dsden_register(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    // Two écoles of Fresnes, served by the commune's tenant.
    let (private, public) = ("0940289D".to_string(), "0940176F".to_string());
    let read = |org: &'static str| call(d.admin.get(d.url(&format!("/registers/{org}"))));
    let listing = |register: &Value, uai: &String| {
        register["entries"].as_array().unwrap().iter().filter(|e| uais(e).contains(uai)).count()
    };
    let served_for_the_dsden = |register: &Value| {
        let entry = register["processor_entries"].as_array().unwrap().iter().find(|e| e["controller"]["code"] == "94");
        entry.expect("the vendor works for the DSDEN")["establishments"].as_i64().unwrap()
    };
    let (_, dsden) = read("dsden:94").await;
    assert!(listing(&dsden, &private) > 0 && listing(&dsden, &public) > 0, "{name}: both écoles listed");
    let (_, vendor) = read("editeur:900000019").await;
    let served = served_for_the_dsden(&vendor);

    common::execute(
        &d.db.store,
        "UPDATE orgs SET sector = 'prive' WHERE kind = 'etablissement' AND code = $1",
        &[&private],
    )
    .await;
    let (_, dsden) = read("dsden:94").await;
    assert_eq!(listing(&dsden, &private), 0, "{name}: the IA-DASEN is not the controller of a private école");
    assert!(listing(&dsden, &public) > 0, "{name}: the public école stays");
    let (_, vendor) = read("editeur:900000019").await;
    assert_eq!(served_for_the_dsden(&vendor), served - 1, "{name}: the vendor no longer works for it");
}

backend_test!(the_academie_dpo_keeps_no_log_of_a_private_school_its_own_controller);
/// A private school (sous contrat) is its own controller: the académie's DPO neither reads nor
/// writes its breach and request logs, as for a commune; the school's head
/// keeps them, and the académie's DPO still keeps those of the public école beside it
/// (attack review 40, S1).
async fn the_academie_dpo_keeps_no_log_of_a_private_school_its_own_controller(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let (private, public) = ("0940289D", "0940176F");
    common::execute(
        &d.db.store,
        "UPDATE orgs SET sector = 'prive' WHERE kind = 'etablissement' AND code = $1",
        &[private],
    )
    .await;
    let breach = json!({
        "title": "Liste de classe", "facts": "Liste de classe envoyée au mauvais destinataire",
        "aware_at": "2026-09-01T08:00:00Z", "data_categories": ["identité"], "people_approx": 28,
        "records_approx": 28, "consequences": "risque faible", "measures": "demande de suppression"
    });
    let logs = |org: &str| d.url(&format!("/breaches/{org}"));
    // As for a commune, another controller: the read is unknown, the write refused.
    let (commune_read, _) = call(d.dpo.get(logs("commune:94034"))).await;
    let (read, body) = call(d.dpo.get(logs(private))).await;
    assert_eq!((read, commune_read), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND), "{name}: {body}");
    let (write, body) = call(d.dpo.post(logs(private)).json(&breach)).await;
    assert_eq!(write, StatusCode::FORBIDDEN, "{name}: {body}");
    let (requests, body) = call(d.dpo.get(d.url(&format!("/requests/{private}")))).await;
    assert_eq!(requests, StatusCode::NOT_FOUND, "{name}: {body}");
    // The school's head keeps them; the académie's DPO keeps the public école's.
    let head = entcp::kernel::roles::Role::ChefEtablissement;
    let own = d.app.client(&token_for(&d.db.store, "ce.0940289d@ac-creteil.fr", head, Some(private)).await);
    let (status, body) = call(own.post(logs(private)).json(&breach)).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    let (status, body) = call(d.dpo.post(logs(public)).json(&breach)).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    let (status, list) = call(d.dpo.get(logs(private))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{name}: the school's own breach stays its own: {list}");
}

/// The controller of the écoles of the commune `key`, as the commune's Art. 30(2) register names
/// it: its id.
async fn controller_of(d: &Demo, key: &str) -> String {
    let (_, commune) = call(d.admin.get(d.url(&format!("/registers/{key}")))).await;
    commune["processor_entries"][0]["controller"]["id"].as_str().expect("a controller").to_string()
}

/// The entry of `service` in the register `register`.
fn register_entry(register: &Value, service: &str) -> Value {
    register["entries"].as_array().unwrap().iter().find(|e| e["service"] == service).cloned().expect(service)
}

/// Declares `accounts` on the convention of the commune of Vitry-sur-Seine (94081): its id.
async fn vitry_convention_declares(store: &entcp::store::Store, accounts: i64) -> String {
    let (id, params): (String, String) = sqlx::query_as(
        "SELECT c.id, c.parameters FROM conventions c JOIN convention_parties p ON p.convention_id = c.id \
         JOIN orgs o ON o.id = p.org_id WHERE o.kind = 'commune' AND o.code = '94081'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let mut params: Value = serde_json::from_str(&params).unwrap();
    params["accounts"] = json!(accounts);
    common::execute(store, "UPDATE conventions SET parameters = $1 WHERE id = $2", &[&params.to_string(), &id]).await;
    id
}

/// Sets the accounts (`spec.accounts`) of the tenant `slug`, as a new spec would.
async fn tenant_accounts(store: &entcp::store::Store, slug: &str, accounts: i64) {
    let set = sqlx::query("UPDATE tenants SET accounts = $1 WHERE slug = $2");
    set.bind(accounts).bind(slug).execute(store.pool()).await.unwrap();
}

/// The reference of the convention `id`.
async fn reference_of(store: &entcp::store::Store, id: &str) -> String {
    let query = sqlx::query_scalar("SELECT reference FROM conventions WHERE id = $1").bind(id);
    query.fetch_one(store.pool()).await.unwrap()
}

backend_test!(a_register_groups_its_accounts_and_says_what_its_art_30_2_section_lacks);
/// Domain review 40: a fiche's « Comptes » reads in groups of three (« 4 000 », as its AIPD line
/// does), never « 4000 » (G8); the commune's art. 30(2) section says « NON RENSEIGNÉ » for the
/// controller's contacts and DPO it does not know, as the 30(1) fiches do, never a blank (G9).
async fn a_register_groups_its_accounts_and_says_what_its_art_30_2_section_lacks(db: crate::common::TestDb) {
    let d = demo(db).await;
    let (name, store) = (d.db.name, d.db.store.clone());
    tenant_accounts(&store, "vitry-henri-wallon-a", 4000).await;
    let controller = controller_of(&d, "commune:94081").await;
    let (_, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    let portail = register_entry(&register, "portail");
    assert_eq!(portail["accounts"], 4000, "{name}: {portail}");
    let (s, _, ods) = d.export(&d.admin, &controller, "ods").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let sheets = odf::ods_sheets(&ods);
    let fiche = sheets.iter().find(|(n, _)| Some(n.as_str()) == portail["reference"].as_str()).expect("the fiche");
    let field =
        |label: &str| fiche.1.iter().find(|r| r.first().map(String::as_str) == Some(label)).map(|r| r[1].clone());
    let accounts = field("Comptes").expect("the accounts");
    let digits: String = accounts.chars().filter(char::is_ascii_digit).collect();
    assert_eq!((digits.as_str(), accounts.chars().count()), ("4000", 5), "{name}: « {accounts} » in groups of three");
    assert!(!accounts.contains(' '), "{name}: a no-break space: « {accounts} »");

    let (s, _, ods) = d.export(&d.admin, "commune:94034", "ods").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let sheets = odf::ods_sheets(&ods);
    let (_, rows) = sheets.iter().find(|(n, _)| n == "Sous-traitance (art. 30-2)").expect("the art. 30(2) sheet");
    for label in ["Coordonnées du responsable", "Délégué du responsable"] {
        let column = rows[0].iter().position(|h| h == label).unwrap_or_else(|| panic!("{name}: {label}"));
        assert_eq!(rows[1].get(column).map(String::as_str), Some("NON RENSEIGNÉ"), "{name}: {label}: {rows:?}");
    }
    let (_, _, html) = d.export(&d.admin, "commune:94034", "html").await;
    let html = String::from_utf8(html).unwrap();
    assert!(!html.contains("<dd></dd>"), "{name}: no empty value: {html}");
}

backend_test!(a_convention_s_declared_accounts_are_a_labelled_forecast_never_the_scale);
/// Domain review 41 (F7): the `accounts` of a commune's bipartite convention (6 200) is a total
/// for all its écoles, most without an ENT: the registers judge the large scale on the deployed
/// tenants' accounts (320 for Vitry's école), show the convention's figure once, labelled as a
/// forecast not retained, however many of its écoles have a tenant, and cite no art. 35.3.b —
/// in the JSON, the HTML and the CSV alike.
async fn a_convention_s_declared_accounts_are_a_labelled_forecast_never_the_scale(db: crate::common::TestDb) {
    let d = demo(db).await;
    let (name, store) = (d.db.name, d.db.store.clone());
    let id = vitry_convention_declares(&store, 6200).await;
    let reference = reference_of(&store, &id).await;
    // A second école of the convention gets its own ENT, with its own accounts.
    let ecole: String = sqlx::query_scalar(
        "SELECT o.code FROM convention_schools s JOIN orgs o ON o.id = s.org_id \
         WHERE s.convention_id = $1 AND o.code <> '0940198E' ORDER BY o.code LIMIT 1",
    )
    .bind(&id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let state = crate::common::app::app_state(store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "vitry-seconde-ecole" },
        "spec": { "organisation": ecole, "hostname": "seconde.ent.vitry.example.fr", "bouquet": "socle-1d",
                  "accounts": 80 }
    }))
    .unwrap();
    entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    provision(&d, "vitry-seconde-ecole").await;
    let covered: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM convention_schools WHERE convention_id = $1")
        .bind(&id)
        .fetch_one(store.pool())
        .await
        .unwrap();

    let controller = controller_of(&d, "commune:94081").await;
    let (s, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    assert_eq!(s, StatusCode::OK, "{register}");
    let portail = register_entry(&register, "portail");
    // Vitry's two tenants (320 + 80); Fresnes' declares none, counted apart.
    assert_eq!(portail["accounts"], 400, "{name}: the deployed accounts, not the convention's: {portail}");
    let scale = portail["dpia"]["scale"].as_str().unwrap();
    assert!(scale.starts_with("critère non rempli — personnes concernées : 400 au moins ("), "{name}: {scale}");
    let forecast = format!(
        "prévision déclarée, pour tous les établissements couverts, qu'un ENT y soit déployé ou non, non retenue pour \
         apprécier le critère : {} comptes (convention {reference}, pour {} établissements couverts)",
        grouped(6200),
        covered
    );
    assert_eq!(scale.matches(&forecast).count(), 1, "{name}: once, labelled: {scale}");
    let processing = &register["processings"][0]["dpia"];
    assert!(!processing["reasons"].to_string().contains("grande échelle"), "{name}: {processing}");
    assert!(!processing["basis"].to_string().contains("paragraphe 3, b)"), "{name}: no 35.3.b: {processing}");
    // The exports carry the same line; the fiche's « Comptes » is the deployed accounts.
    let flat = |t: &str| t.replace(['\u{a0}', '\u{202f}'], " ");
    let tail = flat(forecast.split("non retenue pour ").nth(1).unwrap());
    let html = flat(&d.html_register(&d.admin, &controller).await);
    assert!(html.contains(&tail), "{name}: the HTML: {html}");
    let (_, _, csv) = d.export(&d.admin, &controller, "csv").await;
    let csv = flat(&String::from_utf8(csv).unwrap());
    assert!(csv.contains(&flat(&forecast)), "{name}: the CSV: {csv}");
    assert!(!csv.contains("établissement(s)"), "{name}: in agreement: {csv}");
}

backend_test!(a_fiche_run_before_its_convention_takes_effect_cites_the_signed_convention);
/// Domain review 41 (F8): an ENT run by override before its convention takes effect keeps the
/// default roles (« aucune convention en vigueur pour 1 établissement »), and the fiche cites the
/// signed convention that will govern it, with its first day and the collectivité it names
/// processor; once in force, its roles apply and nothing is cited ahead.
async fn a_fiche_run_before_its_convention_takes_effect_cites_the_signed_convention(db: crate::common::TestDb) {
    let d = demo(db).await;
    let (name, store) = (d.db.name, d.db.store.clone());
    let id = vitry_convention_declares(&store, 6200).await;
    // The DSDEN, controller of the écoles, as the commune's register names it while in force.
    let controller = controller_of(&d, "commune:94081").await;
    let later = "UPDATE conventions SET status = 'signed', start_date = '2027-01-04' WHERE id = $1";
    common::execute(&store, later, &[&id]).await;
    let reference = reference_of(&store, &id).await;
    let warnings = |register: &Value| -> Vec<String> {
        let portail = register_entry(register, "portail");
        portail["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect()
    };
    let (s, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    assert_eq!(s, StatusCode::OK, "{register}");
    let said = warnings(&register);
    assert!(
        said.iter().any(|w| w.starts_with("aucune convention en vigueur pour 1 établissement (")),
        "{name}: {said:?}"
    );
    let ahead = format!(
        "la convention {reference} signée, qui prendra effet le 4 janvier 2027, fixe les rôles RGPD de ce traitement pour l"
    );
    let cited = said.iter().find(|w| w.starts_with(&ahead)).unwrap_or_else(|| panic!("{name}: {said:?}"));
    assert!(cited.contains("cole élémentaire Henri Wallon A (responsable de traitement : "), "{name}: {cited}");
    assert!(cited.contains("responsable de traitement : DSDEN du Val-de-Marne ;"), "{name}: {cited}");
    assert!(
        cited.contains("sous-traitant (collectivité) : Commune de Vitry-sur-Seine (article 28 du RGPD)"),
        "{name}: {cited}"
    );
    assert!(cited.ends_with("d'ici là, les rôles par défaut s'appliquent et elle ne lie encore aucun sous-traitant"));
    // Not in force: its declared accounts are no forecast of the registers yet.
    let scale = register_entry(&register, "portail")["dpia"]["scale"].as_str().unwrap().to_string();
    assert!(!scale.contains("prévision déclarée"), "{name}: {scale}");

    // In force: the convention's roles, nothing cited ahead.
    let now = "UPDATE conventions SET status = 'active', start_date = '2026-09-01' WHERE id = $1";
    common::execute(&store, now, &[&id]).await;
    let (_, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    let said = warnings(&register);
    assert!(!said.iter().any(|w| w.contains("prendra effet") || w.contains("aucune convention")), "{name}: {said:?}");
}

backend_test!(the_aipd_states_the_large_scale_figures_its_threshold_and_its_verdict);
/// The AIPD's « traitement à grande échelle » line of a register as its DPO exports it: the
/// persons concerned (the convention's declared accounts), the pupils the annuaire counts in its
/// écoles, its établissements, the threshold and its source, and the verdict — not met at 4 000
/// accounts, met once the annuaire counts 5 000 pupils or more; a snapshot taken before keeps
/// what it stored.
async fn the_aipd_states_the_large_scale_figures_its_threshold_and_its_verdict(db: crate::common::TestDb) {
    let d = demo(db).await;
    let (name, store) = (d.db.name, d.db.store.clone());
    tenant_accounts(&store, "vitry-henri-wallon-a", 4000).await;
    let controller = controller_of(&d, "commune:94081").await;
    let portail = |register: &Value| register_entry(register, "portail");
    let (_, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    let ecoles: Vec<String> = portail(&register)["establishments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uai"].as_str().unwrap().to_string())
        .collect();
    assert!(!ecoles.is_empty(), "{name}: {register}");
    let (s, snapshot) = call(d.admin.post(d.url(&format!("/registers/{controller}/snapshots")))).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {snapshot}");
    let stored_scale = portail(&register)["dpia"]["scale"].clone();
    let pupils = |n: i64| {
        let store = store.clone();
        let ecoles = ecoles.clone();
        async move {
            for uai in &ecoles {
                let set = sqlx::query("UPDATE orgs SET pupils = $1 WHERE kind = 'etablissement' AND code = $2");
                set.bind(n).bind(uai).execute(store.pool()).await.unwrap();
            }
        }
    };
    // The line: its verdict, the persons concerned (the deployed tenants' accounts, their
    // source named), the annuaire's pupils, the établissements, the threshold and its source.
    let check = |dpia: &Value, verdict: &str, total: i64| {
        let scale = dpia["scale"].as_str().unwrap().to_string();
        let persons = format!("{verdict} — personnes concernées : {} ", grouped(4000));
        assert!(scale.starts_with(&persons), "{name}: {scale}");
        assert!(
            scale
                .contains("(comptes des élèves, personnels et familles des ENT déployés : nombre de comptes de chaque"),
            "{name}: {scale}"
        );
        let rest = format!(") ; élèves selon l'annuaire : {} ; établissements : {} ", grouped(total), ecoles.len());
        assert!(scale.contains(&rest), "{name}: {scale}");
        assert!(scale.ends_with(entcp::rgpd::derive::LARGE_SCALE_THRESHOLD), "{name}: {scale}");
    };

    pupils(120).await;
    let (_, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    let dpia = &portail(&register)["dpia"];
    check(dpia, "critère non rempli", 120 * ecoles.len() as i64);
    assert!(!dpia["reasons"].to_string().contains("grande échelle"), "{name}: {dpia}");
    // The rendered register (HTML export) carries the line in its AIPD field.
    let (s, _, html) = d.export(&d.admin, &controller, "html").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let flat = |t: &str| t.replace(['\u{a0}', '\u{202f}'], " ");
    let html = flat(&String::from_utf8(html).unwrap());
    let needle = "grande échelle : critère non rempli — personnes concernées : 4 000 au moins (comptes des élèves";
    assert!(html.contains(needle), "{name}: {html}");
    assert!(html.contains("seuil retenu : 5 000 personnes concernées ou 50 établissements"), "{name}");
    assert!(html.contains("WP248"), "{name}");

    // The annuaire counts 5 000 pupils or more: the criterion is met, a second one with minors.
    let each = 5000 / ecoles.len() as i64 + 1;
    pupils(each).await;
    let (_, register) = call(d.admin.get(d.url(&format!("/registers/{controller}")))).await;
    let dpia = &portail(&register)["dpia"];
    check(dpia, "critère rempli", each * ecoles.len() as i64);
    assert_eq!(dpia["required"], true, "{name}: {dpia}");
    let establishments = match ecoles.len() {
        1 => "1 établissement".to_string(),
        n => format!("{n} établissements"),
    };
    let reason = format!(
        "traitement à grande échelle ({} personnes concernées, {establishments})",
        grouped(each * ecoles.len() as i64)
    );
    assert!(dpia["reasons"].as_array().unwrap().contains(&json!(reason)), "{name}: {dpia}");

    // The snapshot taken before keeps the line it stored.
    let snapshot_id = snapshot["id"].as_str().unwrap();
    let (_, kept) = call(d.admin.get(d.url(&format!("/registers/{controller}/snapshots/{snapshot_id}")))).await;
    assert_eq!(portail(&kept)["dpia"]["scale"], stored_scale, "{name}");
}

/// A count as the register writes it (« 5 040 », no-break space).
fn grouped(n: i64) -> String {
    entcp::documents::grouped(n.unsigned_abs())
}

/// The app state on the sample at [`t0`], writing its manifests to a temp dir.
async fn sample_state(db: &common::TestDb) -> entcp::api::AppState {
    common::import_sample(&db.store).await;
    common::app::app_state(db.store.clone(), common::app::test_config(), Arc::new(FixedClock::new(t0())))
}

/// Creates or changes the tenant `slug` of the école `uai` (socle 1D, no convention: the
/// DSDEN is its controller) with `options`, as `entctl apply -f` would (nothing reconciled).
async fn tenant_with(state: &entcp::api::AppState, slug: &str, uai: &str, options: Value) {
    let mut body = crate::tenants::doc(slug, uai, &format!("{slug}.ent.example.fr"));
    body["spec"]["options"] = options;
    let doc: entcp::tenants::EntTenant = serde_json::from_value(body).unwrap();
    entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
}

/// Moves the tenant `slug` to `to` (past the convention gate, as an administrator may).
async fn move_tenant(state: &entcp::api::AppState, slug: &str, to: entcp::tenants::Status) {
    let tenant = entcp::tenants::get_tenant(&state.store, slug).await.unwrap().unwrap();
    let step = entcp::tenants::Move::to(to).overriding("démonstration").because("démonstration");
    entcp::tenants::transition(&state.tenants(), &admin(), &tenant, step).await.unwrap();
}

/// One reconcile pass over the tenant `slug`, which must apply it.
async fn applied(state: &entcp::api::AppState, slug: &str) {
    let report = entcp::provisioning::reconcile::pass(&state.provisioning(), Some(slug), t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");
}

/// The tenant `slug` of `org` with `options`, past the convention gate and applied once.
async fn running_tenant(state: &entcp::api::AppState, slug: &str, org: &str, options: Value) {
    tenant_with(state, slug, org, options).await;
    move_tenant(state, slug, entcp::tenants::Status::Provisioning).await;
    applied(state, slug).await;
}

/// The entry of the DSDEN 94 register for the processing of `service`, as `reader` reads it.
async fn dsden_94_entry(reader: &Client, service: &str) -> Option<Value> {
    let (s, register) = call(reader.get("/api/v1/rgpd/registers/dsden:94")).await;
    assert_eq!(s, StatusCode::OK, "{register}");
    register["entries"].as_array().unwrap().iter().find(|e| e["service"] == service).cloned()
}

backend_test!(a_service_removed_from_a_tenant_stays_in_the_register_until_its_data_are_purged);
async fn a_service_removed_from_a_tenant_stays_in_the_register_until_its_data_are_purged(db: crate::common::TestDb) {
    use entcp::tenants::Status;
    let name = db.name;
    let state = sample_state(&db).await;
    running_tenant(&state, "doisneau", "0940176F", json!(["moodle"])).await;
    let app = TestApp::over(&db.store).build().await;
    let root = app.client(&token_for(&db.store, "admin@test.fr", entcp::kernel::roles::Role::Admin, None).await);
    let root = &root;
    let exercices = || dsden_94_entry(root, "exercices");
    let retained = || common::texts(&db.store, "SELECT COALESCE(retained_services, 'NULL') FROM tenants", &[]);
    let running = exercices().await.expect("Moodle runs");
    let own = running["retention"].as_str().unwrap().to_string();
    assert!(!own.contains("purge"), "{name}: {own}");

    // The option removed: its workload goes, its volume (its data) stays until the purge.
    tenant_with(&state, "doisneau", "0940176F", json!([])).await;
    applied(&state, "doisneau").await;
    assert_eq!(retained().await, [r#"["exercices"]"#], "{name}");
    let kept = exercices().await.unwrap_or_else(|| panic!("{name}: its data are held, the processing is listed"));
    assert_eq!(uais(&kept), ["0940176F"], "{name}");
    let retention = kept["retention"].as_str().unwrap();
    assert_eq!(retention, format!("{own} ; {DOISNEAU_RETAINED_UNTIL_PURGE}"), "{name}");
    assert_eq!(kept["personal_data"][0]["retention"], retention, "{name}");
    assert!(warns_of_retained_data(&kept), "{name}: {}", kept["warnings"]);

    // Back, then removed again: running, then retained again.
    tenant_with(&state, "doisneau", "0940176F", json!(["moodle"])).await;
    applied(&state, "doisneau").await;
    assert_eq!(retained().await, ["NULL"], "{name}");
    assert_eq!(exercices().await.unwrap()["retention"], own.as_str(), "{name}");
    tenant_with(&state, "doisneau", "0940176F", json!([])).await;
    applied(&state, "doisneau").await;

    // Still held while decommissioned and archived; the purge deletes them, and the entry goes.
    for to in [Status::Active, Status::Decommissioning, Status::Archived] {
        move_tenant(&state, "doisneau", to).await;
        entcp::provisioning::reconcile::pass(&state.provisioning(), Some("doisneau"), t0()).await.unwrap();
        assert_eq!(retained().await, [r#"["exercices"]"#], "{name}: {to:?}");
        assert!(exercices().await.is_some(), "{name}: {to:?}");
    }
    let later = t0() + chrono::Duration::days(93);
    assert_eq!(entcp::provisioning::purge::purge_due(&state.provisioning(), later).await.unwrap(), ["doisneau"]);
    assert_eq!(retained().await, ["NULL"], "{name}");
    assert!(exercices().await.is_none(), "{name}: purged, nothing is held");
}

/// The retention a register gives a service removed from the tenant doisneau, its data held.
const DOISNEAU_RETAINED_UNTIL_PURGE: &str =
    "service retiré du tenant doisneau : ses données ne sont plus traitées par \
     le service mais restent conservées (volume de stockage maintenu) jusqu'à la purge des données du tenant, 3 mois \
     après son archivage (limitation de la conservation, article 5.1.e du RGPD)";

/// Whether a register entry warns that the tenant doisneau holds the data of a service removed.
fn warns_of_retained_data(entry: &Value) -> bool {
    entry["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .unwrap()
            .starts_with("données conservées jusqu'à la purge : le service a été retiré du tenant doisneau")
    })
}

// Migration 0048 records a service removed from a tenant from then on; one removed under an
// earlier release (Moodle here, removed with no reconcile pass recording it) was in no
// register though its data stayed. The back-fill of migration 0050 lists it as the register
// lists one removed since: same retention, same warning.
backend_test!(a_service_removed_before_retained_services_were_recorded_is_backfilled_into_the_register);
async fn a_service_removed_before_retained_services_were_recorded_is_backfilled_into_the_register(
    db: crate::common::TestDb,
) {
    use entcp::tenants::Status;
    let name = db.name;
    let state = sample_state(&db).await;
    tenant_with(&state, "doisneau", "0940176F", json!(["moodle"])).await;
    move_tenant(&state, "doisneau", Status::Provisioning).await;
    tenant_with(&state, "doisneau", "0940176F", json!([])).await;
    move_tenant(&state, "doisneau", Status::Active).await;
    let app = TestApp::over(&db.store).build().await;
    let root = app.client(&token_for(&db.store, "admin@test.fr", entcp::kernel::roles::Role::Admin, None).await);
    let root = &root;
    let exercices = || dsden_94_entry(root, "exercices");
    assert!(exercices().await.is_none(), "{name}: nothing recorded yet");

    let filled = entcp::provisioning::backfill::retained_services(&db.store, &state.catalog, t0()).await.unwrap();
    assert!(filled.as_deref().is_some_and(|f| f.contains("doisneau (exercices)")), "{name}: {filled:?}");
    let kept = exercices().await.unwrap_or_else(|| panic!("{name}: its data are held, the processing is listed"));
    assert_eq!(uais(&kept), ["0940176F"], "{name}");
    let own = &state.catalog.service("exercices").unwrap().rgpd.retention;
    assert_eq!(kept["retention"], format!("{own} ; {DOISNEAU_RETAINED_UNTIL_PURGE}"), "{name}");
    assert_eq!(kept["personal_data"][0]["retention"], kept["retention"], "{name}");
    assert!(warns_of_retained_data(&kept), "{name}: {}", kept["warnings"]);
}

/// A tenant row of the schema before the back-fill of retained services (commune `o1`).
async fn tenant_row(store: &entcp::store::Store, (id, status, retained): (&str, &str, Option<&str>), at: &str) {
    sqlx::query(
        "INSERT INTO tenants (id, slug, org_id, hostname, base_bouquet, options, accounts, identity_source, status, \
         spec_hash, version, created_at, updated_at, retained_services) \
         VALUES ($1, $1, 'o1', $2, 'socle-1d', '[]', 250, 'educonnect', $3, 'h', 1, $4, $4, $5)",
    )
    .bind(id)
    .bind(format!("{id}.ent.example.fr"))
    .bind(status)
    .bind(at)
    .bind(retained)
    .execute(store.pool())
    .await
    .unwrap();
}

/// The audit records of a tenant's history, `(action, summary)` in order, from `seq` on.
async fn tenant_history(store: &entcp::store::Store, tenant: &str, seq: i64, records: &[(&str, Value)]) {
    for (i, (action, summary)) in records.iter().enumerate() {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target_kind, target_id, scope_org_id, summary, prev_hash, \
             hash) VALUES ($1, $2, 'dan@ac-creteil.fr', $3, 'tenant', $4, 'o1', $5, 'p', 'h')",
        )
        .bind(seq + i as i64)
        .bind(format!("2026-02-0{}T10:00:00.000000Z", i + 1))
        .bind(*action)
        .bind(tenant)
        .bind(summary.to_string())
        .execute(store.pool())
        .await
        .unwrap();
    }
}

/// On the schema before the back-fill, tenants whose Moodle (exercices, with a volume) and
/// visio (none) were removed under an earlier release: one running, one archived that holds
/// the pad already (recorded by 0048), one purged, one whose Moodle was removed before it was
/// ever provisioned. Migrated and back-filled, the first two hold exercices, the others
/// nothing; the step runs once, and run again it adds nothing.
async fn retained_services_are_backfilled(url: &str, backend: entcp::store::Backend) {
    let (mine, before) = crate::counters::migration_and_previous("_retained_services_backfill.sql");
    let (store, t) = crate::counters::store_before(url, backend, mine).await;
    let applied = "SELECT MAX(version) FROM _sqlx_migrations";
    assert_eq!(common::count(&store, applied, &[]).await, before);
    let spec = |options: &[&str]| json!({ "organisation": "commune:94001", "hostname": "h", "bouquet": "socle-1d", "options": options });
    let to = |to: &str| json!({ "from": "requested", "to": to, "convention": null, "override": null, "uncovered": [] });
    let dropped = [
        ("tenants.create", spec(&["moodle", "visio"])),
        ("tenants.transition", to("provisioning")),
        ("tenants.configure", spec(&[])),
    ];
    let tenants = [
        (("t-running", "active", None), dropped.to_vec()),
        (("t-archived", "archived", Some(r#"["pad"]"#)), dropped.to_vec()),
        (("t-purged", "purged", None), dropped.to_vec()),
        (("t-never", "active", None), vec![dropped[0].clone(), dropped[2].clone(), dropped[1].clone()]),
    ];
    for (i, (row, history)) in tenants.iter().enumerate() {
        tenant_row(&store, *row, t).await;
        tenant_history(&store, row.0, 10 * i as i64 + 1, history).await;
    }

    crate::counters::migrate_through(&store, backend, mine).await;
    assert_eq!(common::count(&store, applied, &[]).await, mine);
    let catalog = entcp::catalog::Catalog::load(None).unwrap();
    let backfill = || entcp::provisioning::backfill::retained_services(&store, &catalog, t0());
    let retained = || common::texts(&store, "SELECT COALESCE(retained_services, 'NULL') FROM tenants ORDER BY id", &[]);
    let outcome = backfill().await.unwrap();
    assert_eq!(
        outcome.as_deref(),
        Some(
            "services conservés repris de l'historique de 2 tenant(s) : t-archived (exercices) ; t-running (exercices)"
        )
    );
    let expected = [r#"["pad","exercices"]"#, "NULL", "NULL", r#"["exercices"]"#];
    assert_eq!(retained().await, expected, "t-archived, t-never, t-purged, t-running");
    let events = "SELECT COUNT(*) FROM tenant_events WHERE kind = 'retained'";
    assert_eq!(common::count(&store, events, &[]).await, 2);

    // Once: done, it does not run again; made to run again, it adds nothing.
    assert_eq!(backfill().await.unwrap(), None);
    sqlx::query("UPDATE data_backfills SET done_at = NULL").execute(store.pool()).await.unwrap();
    let again = backfill().await.unwrap();
    assert_eq!(again.as_deref(), Some("aucun service conservé à reprendre de l'historique des tenants"));
    assert_eq!(retained().await, expected);
    assert_eq!(common::count(&store, events, &[]).await, 2);
    store.close().await;
}

migration_test!(retained_services_are_backfilled);

// The back-fill of migration 0050 runs when a replica starts. A tenant row another transaction
// held (a reconcile pass of a replica still running) made it wait out the statement timeout and
// the start fail. It now waits a few seconds, is rolled back and left pending, and the next
// start fills it. PostgreSQL only: replicas share a PostgreSQL database, SQLite is one process's.
#[tokio::test]
async fn a_backfill_waiting_on_a_held_tenant_is_left_pending_and_the_store_still_opens_on_postgres() {
    use entcp::tenants::Status;
    let Some(db) = common::postgres().await else {
        return eprintln!("TEST_DATABASE_URL is unset: PostgreSQL case skipped");
    };
    let state = sample_state(&db).await;
    tenant_with(&state, "doisneau", "0940176F", json!(["moodle"])).await;
    move_tenant(&state, "doisneau", Status::Provisioning).await;
    let pending = || common::texts(&db.store, "SELECT COALESCE(done_at, 'en attente') FROM data_backfills", &[]);
    assert_eq!(pending().await, ["en attente"]);

    let mut hold = db.store.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM tenants WHERE slug = 'doisneau' FOR UPDATE").fetch_all(&mut *hold).await.unwrap();
    let started = std::time::Instant::now();
    entcp::migrate(&db.store, None).await.expect("the store opens while a tenant row is held");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    assert_eq!(pending().await, ["en attente"], "rolled back, left for the next start");

    hold.rollback().await.unwrap();
    entcp::migrate(&db.store, None).await.unwrap();
    assert_ne!(pending().await, ["en attente"], "the next start runs it");
}

backend_test!(a_tenant_whose_offer_left_the_catalog_is_still_in_the_register_as_it_runs);
async fn a_tenant_whose_offer_left_the_catalog_is_still_in_the_register_as_it_runs(db: crate::common::TestDb) {
    use entcp::tenants::Status;
    let name = db.name;
    let state = sample_state(&db).await;
    running_tenant(&state, "doisneau", "0940176F", json!(["visio"])).await;
    // Provisioning, never applied: what it runs was never recorded.
    tenant_with(&state, "wallon", "0940198E", json!(["visio"])).await;
    move_tenant(&state, "wallon", Status::Provisioning).await;

    let catalog = crate::common::catalog_with_visio_second_degree_only();
    let mut overlaid = state.clone();
    overlaid.catalog = Arc::new(catalog);
    let dsden = entcp::registry::resolve_org(&db.store, "dsden:94").await.unwrap();
    let register = entcp::rgpd::current(&overlaid.rgpd(), &dsden).await.unwrap();

    let gone = "l'entrée du catalogue de son offre n'existe plus (l'option « visio » n'est pas proposée dans le \
                premier degré)";
    let doisneau = format!("tenant doisneau : {gone} : services décrits d'après ceux déployés sur le tenant");
    let wallon = format!(
        "tenant wallon : {gone} : services décrits d'après le bouquet et les options souscrits, tels que le \
         catalogue les liste encore (aucun déploiement enregistré)"
    );
    for service in ["portail", "visio"] {
        let entry = register.entries.iter().find(|e| e.service == service);
        let entry = entry.unwrap_or_else(|| panic!("{name}: {service} is still in the register"));
        let mut uais: Vec<&str> = entry.establishments.iter().map(|e| e.uai.as_str()).collect();
        uais.sort();
        assert_eq!(uais, ["0940176F", "0940198E"], "{name}: {service}");
        for note in [&doisneau, &wallon] {
            assert!(entry.warnings.contains(note), "{name}: {service}: {:?}", entry.warnings);
        }
        // Its measures are those rendered for what it runs.
        assert!(!entry.security_measures.is_empty(), "{name}: {service}");
        assert!(!entry.missing.iter().any(|m| m == "mesures de sécurité"), "{name}: {:?}", entry.missing);
    }
}

/// The shipped catalog with a second version of the first degree's socle: the blog left it,
/// the pad joined it.
fn catalog_with_a_new_socle_1d() -> entcp::catalog::Catalog {
    let overlay = "bouquets:\n  - id: socle-1d\n    version: 2\n    kind: base\n    degrees: [1D]\n    \
                   name: Socle premier degré\n    description: Services de base des écoles.\n    \
                   services: [portail, messagerie, actualites, espace-documentaire, agenda, mediacentre, \
                   carnet-de-liaison, pad]\n    parameters:\n      quota_stockage_mio_par_compte: 200\n      \
                   comptes_responsables_legaux: true\n";
    let mut files = entcp::catalog::SHIPPED.to_vec();
    files.push(("zz-socle.yaml", overlay));
    let catalog = entcp::catalog::Catalog::from_files(&files).unwrap();
    let resolved: Vec<String> = catalog.resolve("socle-1d", &[]).unwrap().iter().map(|s| s.code.clone()).collect();
    assert!(resolved.contains(&"pad".to_string()) && !resolved.contains(&"blog".to_string()), "{resolved:?}");
    catalog
}

// The register described a tenant from the catalog's resolution of its bouquet: once the
// catalog's bouquet changed, it listed a service never deployed on the tenant and missed one it
// still runs, and disagreed with the convention's Art. 28 annex. It now describes a tenant from
// what it was last applied with; one never applied, from the catalog.
backend_test!(a_tenant_is_in_the_register_with_what_it_was_applied_with_not_the_catalog_s_new_bouquet);
async fn a_tenant_is_in_the_register_with_what_it_was_applied_with_not_the_catalog_s_new_bouquet(
    db: crate::common::TestDb,
) {
    use entcp::tenants::Status;
    let name = db.name;
    let state = sample_state(&db).await;
    running_tenant(&state, "doisneau", "0940176F", json!([])).await;
    // Provisioning, never applied: nothing recorded, described from the catalog.
    tenant_with(&state, "wallon", "0940198E", json!([])).await;
    move_tenant(&state, "wallon", Status::Provisioning).await;

    let mut overlaid = state.clone();
    overlaid.catalog = Arc::new(catalog_with_a_new_socle_1d());
    let dsden = entcp::registry::resolve_org(&db.store, "dsden:94").await.unwrap();
    let register = entcp::rgpd::current(&overlaid.rgpd(), &dsden).await.unwrap();
    let uais = |service: &str| -> Vec<String> {
        let entry = register.entries.iter().find(|e| e.service == service);
        let mut uais: Vec<String> = entry.iter().flat_map(|e| &e.establishments).map(|e| e.uai.clone()).collect();
        uais.sort();
        uais
    };
    assert_eq!(uais("blog"), ["0940176F"], "{name}: doisneau still runs the blog the bouquet dropped");
    assert_eq!(uais("pad"), ["0940198E"], "{name}: the pad the bouquet gained was never deployed on doisneau");
    assert_eq!(uais("portail"), ["0940176F", "0940198E"], "{name}");
    let notes = register.entries.iter().flat_map(|e| &e.warnings).filter(|w| w.contains("catalogue de son offre"));
    assert_eq!(notes.count(), 0, "{name}: both offers are still in the catalog");
}

backend_test!(an_open_request_shows_the_due_date_of_today_s_rule_and_a_closed_one_keeps_its_own);
async fn an_open_request_shows_the_due_date_of_today_s_rule_and_a_closed_one_keeps_its_own(db: crate::common::TestDb) {
    let name = db.name;
    // Sunday 1 March 2026, 10:00 in Paris.
    let (_app, dpo) = academie_dpo(&db.store, Arc::new(FixedClock::new(at("2026-03-01T09:00:00Z")))).await;
    let school = common::texts(&db.store, "SELECT id FROM orgs WHERE code = '0940198E'", &[]).await.remove(0);
    // Rows an earlier release wrote: no move to the next working day, and an extension of
    // three months from the reception.
    for (id, received, due, status, answered) in [
        ("legacy-open", "2026-01-31", "2026-02-28", "received", None),
        ("legacy-extended", "2026-01-30", "2026-04-30", "in_progress", None),
        ("legacy-answered", "2026-01-31", "2026-02-28", "answered", Some("2026-02-27")),
    ] {
        common::execute(
            &db.store,
            "INSERT INTO rgpd_requests (id, reference, org_id, kind, requester, received_on, due_on, status, \
             answered_on, created_by, created_at, updated_at) VALUES ($1, $2, $3, 'access', $4, $5, $6, $7, NULLIF($8, ''), \
             'admin', '2026-02-01T08:00:00.000000Z', '2026-02-01T08:00:00.000000Z')",
            &[id, &format!("DEM-{id}"), &school, id, received, due, status, answered.unwrap_or_default()],
        )
        .await;
    }
    let url = "/api/v1/rgpd/requests/0940198E";
    let (s, list) = call(dpo.get(url)).await;
    assert_eq!(s, StatusCode::OK, "{name}: {list}");
    let of = |id: &str| list.as_array().unwrap().iter().find(|r| r["id"] == id).cloned().unwrap();
    // Due Saturday 28 February by the old rule, Monday 2 March by today's: not late yet.
    let open = of("legacy-open");
    assert_eq!(
        (open["due_on"].as_str(), open["overdue"].as_bool()),
        (Some("2026-03-02"), Some(false)),
        "{name}: {open}"
    );
    // Extended: two months after the first deadline (28 February), not three after the reception.
    let extended = of("legacy-extended");
    assert_eq!(
        (extended["due_on"].as_str(), extended["extended"].as_bool()),
        (Some("2026-04-28"), Some(true)),
        "{name}"
    );
    // Closed: the date it was answered against.
    let answered = of("legacy-answered");
    assert_eq!(
        (answered["due_on"].as_str(), answered["overdue"].as_bool()),
        (Some("2026-02-28"), Some(false)),
        "{name}"
    );
    let csv = dpo.get(format!("{url}?format=csv")).send().await.text;
    let line = csv.lines().find(|l| l.contains("DEM-legacy-open")).unwrap_or_default();
    assert!(line.contains("2 mars 2026") && !line.contains("28 février 2026"), "{name}: {csv}");
}

backend_test!(a_diff_without_snapshot_names_the_register_with_its_elision);
/// The académie's register has no snapshot yet: the refusal reads « du registre d'Académie de
/// Créteil », never « de Académie ».
async fn a_diff_without_snapshot_names_the_register_with_its_elision(db: common::TestDb) {
    let d = demo(db).await;
    let (s, problem) = call(d.admin.get(d.url("/registers/academie:24/diff"))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {problem}", d.db.name);
    let detail = problem["errors"][0]["message"].as_str().or(problem["detail"].as_str()).unwrap_or_default();
    assert!(
        detail.contains("aucun instantané du registre d'Académie de Créteil : exportez-le d'abord"),
        "{}: {problem}",
        d.db.name
    );
}

// The register's documents are set in French typography (`documents::typography`), HTML and the
// text cells of the ODS alike, under a heading that names the organisation and the date of the
// register (not « Référence : 94 au … »). What identifies a register is the SHA-256 of its
// canonical JSON, never of a rendering: a stored snapshot re-derives its fingerprint, and every
// format of the same register carries the same one.
backend_test!(a_register_s_documents_are_set_in_french_and_its_fingerprint_is_that_of_its_data);
async fn a_register_s_documents_are_set_in_french_and_its_fingerprint_is_that_of_its_data(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    d.set_profile().await;
    let (_, snapshot) = d.register().await;
    let (s, headers, html) = d.export(&d.dpo, "dsden:94", "html").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let html = String::from_utf8(html).unwrap();
    let title = "Registre des activités de traitement de la DSDEN du Val-de-Marne";
    assert!(html.contains(&format!("<h1>{title}</h1>")), "{name}: {html}");
    assert!(
        html.contains("<p class=\"subtitle\">État au 1er septembre 2026 — article\u{a0}30 du RGPD</p>"),
        "{name}: {html}"
    );
    let reference = html.contains("class=\"reference\"") || html.contains("Référence\u{202f}: ");
    assert!(!reference, "{name}: no reference made of a code and a date: {html}");
    let body = common::html_body(&html);
    assert_eq!(common::loose_spaces(body), Vec::<String>::new(), "{name}");
    assert!(body.contains("Charte d&#x27;usage") && body.matches('\u{202f}').count() >= 10, "{name}: {body}");
    assert!(body.contains("01 57 02 60 00"), "{name}: a phone number is no amount");
    let (_, ods_headers, ods) = d.export(&d.dpo, "dsden:94", "ods").await;
    let sheets = odf::ods_sheets(&ods);
    assert_eq!(sheets[0].1[0], [title], "{name}");
    let cells: Vec<&String> = sheets.iter().flat_map(|(_, rows)| rows.iter().flatten()).collect();
    assert!(cells.iter().all(|c| common::loose_spaces(c).is_empty()), "{name}: {cells:?}");
    assert!(cells.iter().any(|c| c.contains('\u{202f}')), "{name}");
    // The fingerprint: the same for every format, re-derived from the stored snapshot's JSON.
    let (_, json_headers, _) = d.export(&d.dpo, "dsden:94", "json").await;
    for h in [&headers, &ods_headers, &json_headers] {
        assert_eq!(h["x-register-sha256"], json_headers["x-register-sha256"], "{name}");
    }
    let (content, sha256): (String, String) =
        sqlx::query_as("SELECT content, sha256 FROM rgpd_snapshots WHERE id = $1")
            .bind(&snapshot)
            .fetch_one(d.db.store.pool())
            .await
            .unwrap();
    let stored: entcp::rgpd::Register = serde_json::from_str(&content).unwrap();
    assert_eq!(entcp::rgpd::snapshots::fingerprint(&stored), sha256, "{name}: the snapshot re-derives its hash");
    assert_eq!(json_headers["x-register-sha256"], sha256.as_str(), "{name}: the register has not changed");
}

backend_test!(the_vendor_s_missing_contract_alert_names_the_commune_it_works_for);
/// The éditeur works for Vitry, itself the DSDEN's processor under its convention: when no
/// Art. 28 contract binds it to Vitry, its Art. 30(2) register says the contract it lacks is
/// with the commune, not with the DSDEN.
async fn the_vendor_s_missing_contract_alert_names_the_commune_it_works_for(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let warnings = |register: &Value| -> Vec<String> {
        let entry = register["processor_entries"].as_array().unwrap().iter().find(|e| e["controller"]["code"] == "94");
        let warnings = entry.expect("the vendor works for the DSDEN")["warnings"].as_array().unwrap().clone();
        warnings.iter().map(|w| w.as_str().unwrap().to_string()).collect()
    };
    let (_, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    assert!(warnings(&vendor).is_empty(), "{name}: both communes bind it: {:?}", warnings(&vendor));
    common::execute(&d.db.store, "DELETE FROM processor_contracts WHERE reference = $1", &["MARCHE-ENT-94081"]).await;
    let (_, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    assert_eq!(
        warnings(&vendor),
        ["aucun contrat comportant les clauses de l'article 28 avec la Commune de Vitry-sur-Seine, sous-traitant \
          de la DSDEN du Val-de-Marne"],
        "{name}"
    );
}

backend_test!(registers_name_organisations_as_their_title_does_with_elision);
/// The éditeur's register (no contact details recorded in the demo) and the commune's: the
/// organisations are named as the title names them (« de la DSDEN du Val-de-Marne »,
/// « d'Éditeur … », « Commune de Fresnes »), never « de Éditeur » nor « de DSDEN – ».
async fn registers_name_organisations_as_their_title_does_with_elision(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let html = d.html_register(&d.admin, "editeur:900000019").await;
    assert!(html.contains(&french("coordonnées d'Éditeur")), "{name}: {html}");
    assert!(html.contains(&french("Sous-traitance pour la DSDEN du Val-de-Marne")), "{name}: {html}");
    for wrong in ["de Éditeur", "de DSDEN –", "pour DSDEN –"] {
        assert!(!html.contains(&french(wrong)), "{name}: « {wrong} »: {html}");
    }
    // The DSDEN's register: each processor line names whom it acts for as the title does.
    let html = d.html_register(&d.admin, "dsden:94").await;
    for said in
        ["Commune de Fresnes — sous-traitant", "pour la DSDEN du Val-de-Marne, FR", "pour la Commune de Fresnes, FR"]
    {
        assert!(html.contains(&french(said)), "{name}: « {said} »: {html}");
    }
    for wrong in ["pour DSDEN –", "pour Fresnes,"] {
        assert!(!html.contains(&french(wrong)), "{name}: « {wrong} »: {html}");
    }
    let html = d.html_register(&d.admin, "commune:94034").await;
    let row = &html[html.find("<dt>Organisme</dt>").expect("the Organisme row")..];
    let value = &row[..row.find("</dd>").expect("its value")];
    assert!(value.contains("Commune de Fresnes"), "{name}: {value}");
}

backend_test!(a_processor_s_register_alerts_on_its_sub_processor_without_contract);
/// The hébergeur works for the éditeur: without an Art. 28 contract between them, the éditeur's
/// own register raises it (art. 28(4): its sub-processor is its obligation), as the DSDEN's does,
/// and so does each commune's register, further down its chain; with the contract, none does.
async fn a_processor_s_register_alerts_on_its_sub_processor_without_contract(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let alerts = |register: &Value| -> Vec<String> {
        let entries = register["processor_entries"].as_array().unwrap().iter();
        let warnings = entries.flat_map(|e| e["warnings"].as_array().unwrap().iter());
        warnings.map(|w| w.as_str().unwrap().to_string()).collect()
    };
    let (_, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    assert!(alerts(&vendor).is_empty(), "{name}: its host is bound: {:?}", alerts(&vendor));
    common::execute(&d.db.store, "DELETE FROM processor_contracts WHERE reference = $1", &["HEB-2026-01"]).await;
    let (_, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    let own = "aucun contrat comportant les clauses de l'article 28 avec Hébergeur de démonstration, sous-traitant \
               ultérieur (article 28, paragraphe 4, du RGPD)";
    assert!(!alerts(&vendor).is_empty(), "{name}");
    assert!(alerts(&vendor).iter().all(|a| a == own), "{name}: {:?}", alerts(&vendor));
    let html = d.html_register(&d.admin, "editeur:900000019").await;
    assert!(html.contains(&french(own)), "{name}: in the document");
    let (_, commune) = call(d.admin.get(d.url("/registers/commune:94034"))).await;
    assert_eq!(
        alerts(&commune),
        ["aucun contrat comportant les clauses de l'article 28 entre Éditeur ENT de démonstration et Hébergeur de \
          démonstration, sous-traitant ultérieur (article 28, paragraphe 4, du RGPD)"],
        "{name}"
    );
}

backend_test!(a_sensitive_category_names_its_article_in_one_parenthesis);
/// A category that may reveal a health datum names article 9 alone, in the catalog's own
/// parenthesis (as the Art. 28 annex does), with no « art. 9 ou 10 » tag after it; the AIPD,
/// whose list the same note heads, names it without the catalog's « art. 9 RGPD »: the DSDEN's
/// register says the note in one phrasing.
async fn a_sensitive_category_names_its_article_in_one_parenthesis(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let html = d.html_register(&d.dpo, "dsden:94").await;
    let label = "Motifs d'absence signalés par les familles (un motif peut révéler une donnée de santé, donnée \
                 sensible au sens de l'article 9 du RGPD)";
    assert!(html.contains(&french(label)), "{name}: {html}");
    assert!(!html.contains("[sensible"), "{name}: {html}");
    let aipd = "données sensibles au sens de l'article 9 du RGPD : Motifs d'absence signalés par les familles (un \
                motif peut révéler une donnée de santé) ;";
    assert!(html.contains(&french(aipd)), "{name}: {html}");
    // The catalog's own tag is never printed: every mention of article 9 is the note's or the
    // legal basis's exception (art. 9.2.g).
    assert!(!html.contains(&french("art. 9 RGPD")), "{name}: {html}");
    let notes = html.matches(&french("au sens de l'article 9 du RGPD")).count();
    let said = html.matches(&french("sensible au sens de l'article 9 du RGPD")).count()
        + html.matches(&french("sensibles au sens de l'article 9 du RGPD")).count();
    assert!(notes > 1 && notes == said, "{name}: one phrasing: {html}");
    let (_, _, ods) = d.export(&d.dpo, "dsden:94", "ods").await;
    let cells: Vec<String> =
        odf::ods_sheets(&ods).into_iter().flat_map(|(_, rows)| rows.into_iter().flatten()).collect();
    assert!(cells.iter().any(|c| *c == french(label)), "{name}: the ODS names it so");
    assert!(!cells.iter().any(|c| c.contains("9 ou 10")), "{name}");
}

/// The DAN adds the visio option to the Vitry tenant, after Vitry's convention was signed: the
/// art. 28 annex that convention's parties signed lists the services its ENT ran then, not the
/// visioconférence. From then on the registers no longer claim the convention covers it.
async fn visio_added_to_vitry_after_signature(d: &Demo) {
    let mut doc: Value =
        entcp::yaml::from_str(include_str!("../../../../tenants/examples/vitry-henri-wallon-a.yaml")).unwrap();
    doc["spec"]["options"] = json!(["visio"]);
    let tenant_url = "/api/v1/tenants/vitry-henri-wallon-a".to_string();
    let (_, tenant) = call(d.dan.get(&tenant_url)).await;
    let version = tenant["version"].as_i64().unwrap();
    let (s, body) = call(d.dan.put(&tenant_url).header("if-match", format!("\"{version}\"")).json(&doc)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    common::applied_with(&d.db.store, "vitry-henri-wallon-a", "visio").await;
}

/// The link of `entry` for the processor whose name has `processor` in it.
fn link_of<'e>(entry: &'e Value, processor: &str) -> &'e Value {
    let links = entry["processors"].as_array().unwrap();
    let named = |l: &&Value| l["org"]["name"].as_str().unwrap().contains(processor);
    links.iter().find(named).unwrap_or_else(|| panic!("{processor} in {entry}"))
}

backend_test!(a_service_added_after_the_convention_was_signed_is_under_no_contract_in_every_register);
/// A convention's art. 28 annex covers the services its signed text lists: Vitry's lists the
/// socle, not the visioconférence the DAN adds afterwards. The DSDEN's visio fiche shows Vitry
/// under no contract for it, with why and its alert, in JSON, CSV and HTML, while Fresnes (whose
/// ENT ran the visio when it signed) stays covered by its own convention and Vitry's portail by
/// Vitry's; the commune's art. 30(2) register lists the service under no contract, and alerts.
async fn a_service_added_after_the_convention_was_signed_is_under_no_contract_in_every_register(
    db: crate::common::TestDb,
) {
    let d = demo(db).await;
    let name = d.db.name;
    let (_, before) = call(d.dpo.get(d.url("/registers/dsden:94"))).await;
    let vitry_convention =
        link_of(&register_entry(&before, "portail"), "Vitry-sur-Seine")["contract"]["reference"].clone();
    let fresnes_convention = link_of(visio(&before), "Fresnes")["contract"]["reference"].clone();
    assert!(vitry_convention.as_str().unwrap().starts_with("CONV-"), "{name}: {vitry_convention}");
    assert_ne!(vitry_convention, fresnes_convention, "{name}");

    visio_added_to_vitry_after_signature(&d).await;
    let (s, register) = call(d.dpo.get(d.url("/registers/dsden:94"))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {register}");
    let reference = vitry_convention.as_str().unwrap();
    let why =
        format!("l'annexe de l'article 28 de la convention {reference} ne couvre pas le service « Visioconférence »");
    let entry = visio(&register);
    let vitry = link_of(entry, "Vitry-sur-Seine");
    assert_eq!((&vitry["contract"], &vitry["uncovered"]), (&Value::Null, &json!(why)), "{name}: {vitry}");
    assert_eq!(vitry["art28_contract"], false, "{name}");
    assert_eq!(link_of(entry, "Fresnes")["contract"]["reference"], fresnes_convention, "{name}: signed with visio");
    assert_eq!(
        link_of(&register_entry(&register, "portail"), "Vitry-sur-Seine")["contract"]["reference"],
        vitry_convention,
        "{name}: the portail is in Vitry's signed annex"
    );
    let alert = format!(
        "(sous-traitant (collectivité)) : aucun contrat comportant les clauses de l'article 28 pour ce service ({why})"
    );
    let warned = |w: &Value| w.as_str().unwrap().contains("Vitry") && w.as_str().unwrap().ends_with(&alert);
    assert!(entry["warnings"].as_array().unwrap().iter().any(warned), "{name}: {}", entry["warnings"]);

    // Every export says it as the JSON does.
    let (_, _, csv) = d.export(&d.dpo, "dsden:94", "csv").await;
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains(&format!("AUCUN CONTRAT art. 28 pour ce service ({why})")), "{name}: {csv}");
    let html = d.html_register(&d.dpo, "dsden:94").await;
    assert!(html.contains(&french(&format!("AUCUN CONTRAT art. 28 pour ce service ({why})"))), "{name}: {html}");

    // The commune's art. 30(2) register: the visio is under no contract with the DSDEN.
    let (_, commune) = call(d.admin.get(d.url("/registers/commune:94081"))).await;
    let entry = &commune["processor_entries"][0];
    let why = format!("l'annexe de l'article 28 de la convention {reference} ne couvre pas ce service");
    assert_eq!(entry["contract"]["reference"], vitry_convention, "{name}: its convention binds it: {entry}");
    assert_eq!(entry["uncovered"], json!([format!("Visioconférence : {why}")]), "{name}: {entry}");
    assert!(
        entry["warnings"].as_array().unwrap().contains(&json!(format!(
            "aucun contrat comportant les clauses de l'article 28 avec la DSDEN du Val-de-Marne, pour le service \
             « Visioconférence » : {why}"
        ))),
        "{name}: {}",
        entry["warnings"]
    );
    let (_, fresnes) = call(d.admin.get(d.url("/registers/commune:94034"))).await;
    let uncovered = fresnes["processor_entries"][0]["uncovered"].as_array().cloned().unwrap_or_default();
    assert!(uncovered.is_empty(), "{name}: Fresnes signed with the visio: {fresnes}");
}

/// The rows of a CSV export (BOM skipped), header first.
fn csv_rows(csv: &[u8]) -> Vec<Vec<String>> {
    assert!(csv.starts_with("\u{feff}".as_bytes()), "UTF-8 BOM");
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').has_headers(false).from_reader(&csv[3..]);
    reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect()
}

backend_test!(the_csv_export_of_a_processor_s_register_carries_its_contract);
/// The CSV of an art. 30(2) register has the « Contrat » the HTML and JSON show, in the last
/// column (empty on an art. 30(1) row), neutralised when a spreadsheet would read it as a formula.
async fn the_csv_export_of_a_processor_s_register_carries_its_contract(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let (_, commune) = call(d.admin.get(d.url("/registers/commune:94034"))).await;
    let contract = &commune["processor_entries"][0]["contract"];
    let expected = format!("{} — {}", contract["reference"].as_str().unwrap(), contract["title"].as_str().unwrap());
    let (s, _, csv) = d.export(&d.admin, "commune:94034", "csv").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let rows = csv_rows(&csv);
    assert_eq!(rows[0].last().map(String::as_str), Some("Contrat"), "{name}: {:?}", rows[0]);
    let processor_row = rows.iter().find(|r| r[0] == "article 30.2").expect("an art. 30(2) row");
    assert_eq!(processor_row.last(), Some(&expected), "{name}: {processor_row:?}");
    assert_eq!(processor_row.len(), rows[0].len(), "{name}");

    for commune in ["94034", "94081"] {
        let sql = "UPDATE processor_contracts SET reference = '=' || reference WHERE reference = $1";
        common::execute(&d.db.store, sql, &[&format!("MARCHE-ENT-{commune}")]).await;
    }
    let (_, _, csv) = d.export(&d.admin, "editeur:900000019", "csv").await;
    let rows = csv_rows(&csv);
    let cell = rows.iter().find(|r| r[0] == "article 30.2").and_then(|r| r.last()).expect("the contract cell");
    assert!(cell.starts_with("'=MARCHE-ENT-"), "{name}: neutralised: {cell}");
}

backend_test!(the_editeur_s_entry_for_the_dsden_lists_its_contract_with_each_commune);
/// The éditeur works for the DSDEN of the Val-de-Marne through Fresnes and Vitry-sur-Seine, under
/// a contract with each commune: its art. 30.2 entry for the DSDEN lists both, each with its
/// commune, in JSON, CSV and HTML alike. The host, under one contract with the éditeur, reads its
/// contract alone.
async fn the_editeur_s_entry_for_the_dsden_lists_its_contract_with_each_commune(db: crate::common::TestDb) {
    let d = demo(db).await;
    let name = d.db.name;
    let (s, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {vendor}");
    let entries = vendor["processor_entries"].as_array().unwrap();
    let entry = entries.iter().find(|e| e["controller"]["code"] == "94").expect("its entry for the DSDEN");
    let listed: Vec<(&str, &Value)> = entry["contracts"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: {entry}"))
        .iter()
        .map(|c| (c["contract"]["reference"].as_str().unwrap(), &c["clients"]))
        .collect();
    let (fresnes, vitry) = (json!(["la Commune de Fresnes"]), json!(["la Commune de Vitry-sur-Seine"]));
    assert_eq!(listed, [("MARCHE-ENT-94034", &fresnes), ("MARCHE-ENT-94081", &vitry)], "{name}: {entry}");
    assert_eq!(entry["contract"]["reference"], "MARCHE-ENT-94034", "{name}: the first, as before: {entry}");

    let lines = [
        "MARCHE-ENT-94034 — Marché ENT des écoles, avec la Commune de Fresnes",
        "MARCHE-ENT-94081 — Marché ENT des écoles, avec la Commune de Vitry-sur-Seine",
    ];
    let (s, _, csv) = d.export(&d.admin, "editeur:900000019", "csv").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let rows = csv_rows(&csv);
    let row = rows.iter().find(|r| r[0] == "article 30.2").expect("the art. 30(2) row");
    assert_eq!(row.last(), Some(&lines.join("\n")), "{name}: {row:?}");
    let html = d.html_register(&d.admin, "editeur:900000019").await;
    for line in lines {
        assert!(html.contains(&french(line)), "{name}: « {line} » not in {html}");
    }

    let (_, host) = call(d.admin.get(d.url("/registers/hebergeur:900000027"))).await;
    let entry = &host["processor_entries"][0];
    assert_eq!(entry["contract"]["reference"], "HEB-2026-01", "{name}: {entry}");
    assert!(entry.get("contracts").is_none(), "{name}: one contract, one client: {entry}");
    let (_, _, csv) = d.export(&d.admin, "hebergeur:900000027", "csv").await;
    let rows = csv_rows(&csv);
    let row = rows.iter().find(|r| r[0] == "article 30.2").expect("the host's art. 30(2) row");
    assert_eq!(row.last().map(String::as_str), Some("HEB-2026-01 — Hébergement de l'ENT"), "{name}: {row:?}");
}

backend_test!(a_dpo_exports_the_processor_contracts_in_scope_with_what_each_covers_and_its_signed_hash);
/// The contracts export of the commune of Fresnes: its convention's art. 28 annex (the DSDEN's
/// processing, the services its signed text lists, the signed text's SHA-256) and the éditeur's
/// contract of its list; in JSON and CSV, the same lines. Out of scope, the export answers as an
/// organisation that does not exist; a format other than json or csv is refused on its field.
async fn a_dpo_exports_the_processor_contracts_in_scope_with_what_each_covers_and_its_signed_hash(
    db: crate::common::TestDb,
) {
    let d = demo(db).await;
    let name = d.db.name;
    let (s, lines) = call(d.admin.get(d.url("/contracts/commune:94034"))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {lines}");
    let lines = lines.as_array().unwrap();
    let annex = lines.iter().find(|l| l["kind"] == "annexe de l'article 28 d'une convention").expect("the annex");
    let reference = annex["reference"].as_str().unwrap();
    let signed =
        common::texts(&d.db.store, "SELECT document_hash FROM conventions WHERE reference = $1", &[reference]).await;
    assert_eq!(annex["sha256"], json!(signed[0]), "{name}: {annex}");
    assert_eq!(annex["sha256"].as_str().unwrap().len(), 64, "{name}");
    assert_eq!(annex["controllers"], json!(["DSDEN du Val-de-Marne"]), "{name}: {annex}");
    assert!(annex["processor"].as_str().unwrap().contains("Fresnes"), "{name}: {annex}");
    let services = annex["services"].as_array().unwrap();
    assert!(services.contains(&json!("Visioconférence")) && services.contains(&json!("Portail et annuaire")), "{name}");
    assert_eq!((&annex["starts_on"], &annex["art28_clauses"]), (&json!("2026-09-01"), &json!(true)), "{name}");
    let contract = lines.iter().find(|l| l["reference"] == "MARCHE-ENT-94034").expect("the éditeur's contract");
    assert_eq!((&contract["kind"], &contract["services"]), (&json!("contrat"), &Value::Null), "{name}: {contract}");
    assert_eq!(contract["processor"], "Éditeur ENT de démonstration", "{name}");
    assert!(!lines.iter().any(|l| l["reference"] == "MARCHE-ENT-94081"), "{name}: Vitry's is not Fresnes'");

    let (s, _, csv) = d.export_contracts(&d.admin, "commune:94034", "csv").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let rows = csv_rows(&csv);
    assert_eq!(rows[0], entcp::rgpd::contracts_export::COLUMNS, "{name}");
    let row = rows.iter().find(|r| r[0] == reference).expect("the annex row");
    assert_eq!(row[9], signed[0], "{name}: {row:?}");
    assert!(row[5].contains("Visioconférence"), "{name}: {row:?}");
    assert_eq!(rows.len(), lines.len() + 1, "{name}");

    // The DSDEN's DPO reads both communes' annexes (it is their controller); a chef
    // d'établissement reads none of the commune's, as an unknown organisation.
    let (_, dsden) = call(d.dpo.get(d.url("/contracts/dsden:94"))).await;
    let annexes = dsden.as_array().unwrap().iter().filter(|l| l["kind"] == "annexe de l'article 28 d'une convention");
    assert_eq!(annexes.count(), 2, "{name}: {dsden}");
    let (s, theirs) = call(d.chef.get(d.url("/contracts/commune:94034"))).await;
    let (none, unknown) = call(d.chef.get(d.url("/contracts/commune:99999"))).await;
    assert_eq!((s, none), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND), "{name}: {theirs}");
    assert_eq!(theirs["title"], unknown["title"], "{name}");
    assert!(!theirs.to_string().contains("Fresnes"), "{name}: {theirs}");
    let (s, body) = call(d.admin.get(d.url("/contracts/commune:94034?format=ods"))).await;
    assert_eq!((s, &body["errors"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("format")), "{name}");
}

/// Fresnes' bipartite convention expired: no convention in force fixes the commune's role.
async fn fresnes_bipartite_expired(d: &Demo) {
    let expired = "UPDATE conventions SET status = 'expired' WHERE model_id = 'bipartite-commune' AND id IN \
                   (SELECT convention_id FROM convention_parties p JOIN orgs o ON o.id = p.org_id \
                   WHERE o.kind = 'commune' AND o.code = '94034')";
    assert_eq!(common::execute(&d.db.store, expired, &[]).await, 1, "{}: Fresnes' bipartite", d.db.name);
}

backend_test!(with_no_convention_in_force_the_contracts_export_names_the_default_controller_never_the_commune);
/// Domain review 40, G3: Fresnes' bipartite has expired, its ENT still runs. The export of its
/// contracts names as controller of the éditeur's contract the one the DSDEN's register applies
/// by default to its écoles (the IA-DASEN, the DSDEN), said to be a default — never the commune,
/// whose role no convention fixes; in JSON and CSV alike.
async fn with_no_convention_in_force_the_contracts_export_names_the_default_controller_never_the_commune(
    db: crate::common::TestDb,
) {
    let d = demo(db).await;
    let name = d.db.name;
    fresnes_bipartite_expired(&d).await;
    let (s, lines) = call(d.admin.get(d.url("/contracts/commune:94034"))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {lines}");
    let lines = lines.as_array().unwrap();
    assert!(!lines.iter().any(|l| l["kind"] == entcp::rgpd::contracts_export::ANNEX), "{name}: {lines:?}");
    let default = format!("DSDEN du Val-de-Marne ({})", entcp::rgpd::contracts_export::DEFAULT);
    let contract = lines.iter().find(|l| l["reference"] == "MARCHE-ENT-94034").expect("the éditeur's contract");
    assert_eq!(contract["controllers"], json!([default]), "{name}: {contract}");
    let (s, _, csv) = d.export_contracts(&d.admin, "commune:94034", "csv").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let rows = csv_rows(&csv);
    assert_eq!(rows[0][3], "Responsables de traitement", "{name}");
    let row = rows.iter().find(|r| r[0] == "MARCHE-ENT-94034").expect("the contract's row");
    assert_eq!(row[3], default, "{name}: {row:?}");
    assert!(!row[3].contains("Fresnes"), "{name}: {row:?}");
}

backend_test!(with_no_convention_in_force_nor_ent_the_contracts_export_says_the_controller_is_not_determined);
/// Fresnes' bipartite has expired and its ENT was purged: the éditeur's contract stays on its list,
/// and no convention fixes the commune's role nor does a register apply a default to a school of
/// its ENT. The export says that the controller is not determined and why, never the commune.
async fn with_no_convention_in_force_nor_ent_the_contracts_export_says_the_controller_is_not_determined(
    db: crate::common::TestDb,
) {
    let d = demo(db).await;
    let name = d.db.name;
    fresnes_bipartite_expired(&d).await;
    let purged = "UPDATE tenants SET status = 'purged' \
                  WHERE org_id = (SELECT id FROM orgs WHERE kind = 'commune' AND code = '94034')";
    assert_eq!(common::execute(&d.db.store, purged, &[]).await, 1, "{name}: Fresnes' ENT");
    let undetermined =
        format!("{} ne fixe le rôle de la Commune de Fresnes", entcp::rgpd::contracts_export::UNDETERMINED);
    assert_eq!(undetermined, "non déterminé : aucune convention en vigueur ne fixe le rôle de la Commune de Fresnes");
    let (s, lines) = call(d.admin.get(d.url("/contracts/commune:94034"))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {lines}");
    let contract = lines.as_array().unwrap().iter().find(|l| l["reference"] == "MARCHE-ENT-94034");
    let contract = contract.expect("the éditeur's contract");
    assert_eq!(contract["controllers"], json!([undetermined]), "{name}: {contract}");
    let (s, _, csv) = d.export_contracts(&d.dpo, "commune:94034", "csv").await;
    assert_eq!(s, StatusCode::OK, "{name}");
    let rows = csv_rows(&csv);
    let row = rows.iter().find(|r| r[0] == "MARCHE-ENT-94034").expect("the contract's row");
    assert_eq!(row[3], undetermined, "{name}: {row:?}");
    // Vitry's convention and ENT still name the DSDEN as the controller of its contract.
    let (_, vitry) = call(d.admin.get(d.url("/contracts/commune:94081"))).await;
    let contract = vitry.as_array().unwrap().iter().find(|l| l["reference"] == "MARCHE-ENT-94081").unwrap();
    assert_eq!(contract["controllers"], json!(["DSDEN du Val-de-Marne"]), "{name}: {contract}");
}

backend_test!(the_contracts_export_cites_the_ccap_a_market_was_recorded_under_in_statements_that_do_not_grow);
/// Markets of groupements bind the éditeur to Fresnes; one groupement's CCAP was generated again
/// after its contract was recorded: the export gives the SHA-256 of the version in force at the
/// recording (`contracts::in_force_at`, the console's and the registers' rule too) and each
/// market's services. A second market adds no statement (the CCAP versions and the groupements'
/// terms are read for all markets at once; the CCAP versions once, those of the registers'
/// contracts in force with those of the list), the conventions' rows (two annexes for the DSDEN)
/// are read in one, and each through an index.
async fn the_contracts_export_cites_the_ccap_a_market_was_recorded_under_in_statements_that_do_not_grow(
    db: crate::common::TestDb,
) {
    let d = demo(db).await;
    let (name, store) = (d.db.name, &d.db.store);
    // Every read counted: whether one is served from the registry's read cache depends on when its
    // watcher sees the groupements' writes, not on the export.
    store.set_read_cache(false);
    let statements = common::logs::Statements::capture();
    let mut ccaps = Vec::new();
    let mut runs = Vec::new();
    for title in ["ENT 1er degré", "ENT des écoles maternelles"] {
        ccaps.extend(markets_for_fresnes(&d, &[title]).await);
        if ccaps.len() == 1 {
            // The first groupement's CCAP made again the next day: not the one its contract holds.
            ccap_made_again(store, &ccaps[0].1.id).await;
        }
        // The provisioning's background passes (the tenants the demo and the award changed) read
        // organisations at their own pace: of three runs, the one with the fewest statements is
        // the export's alone, a background read only ever adding to a run.
        let mut quietest: Option<Vec<String>> = None;
        let mut lines = Value::Null;
        for _ in 0..3 {
            let from = statements.count();
            let (s, read) = call(d.admin.get(d.url("/contracts/commune:94034"))).await;
            assert_eq!(s, StatusCode::OK, "{name}: {read}");
            let run = statements.since(from);
            if quietest.as_ref().is_none_or(|q| run.len() < q.len()) {
                quietest = Some(run);
            }
            lines = read;
        }
        runs.push(quietest.unwrap());
        for (g, ccap) in &ccaps {
            let line = lines.as_array().unwrap().iter().find(|l| l["reference"] == json!(g.reference));
            let line = line.expect("the market");
            assert_eq!(line["kind"], entcp::rgpd::contracts_export::MARKET, "{name}: {line}");
            assert_eq!(line["sha256"], json!(ccap.sha256), "{name}: the version recorded: {line}");
            assert!(line["services"].as_array().is_some_and(|s| !s.is_empty()), "{name}: {line}");
        }
    }
    // What the export reads of the contracts and their markets.
    let markets = |run: &[String]| {
        let tables = ["processor_contracts", "groupement_documents", "FROM groupements", "FROM orgs WHERE id"];
        run.iter().filter(|sql| tables.iter().any(|t| sql.contains(t))).count()
    };
    assert_eq!(markets(&runs[0]), markets(&runs[1]), "{name}: a second market, no more statements: {:#?}", runs[1]);
    for run in &runs {
        let ccaps = run.iter().filter(|sql| sql.contains("FROM groupement_documents")).count();
        assert_eq!(ccaps, 1, "{name}: the CCAP versions read once, the registers' and the list's: {run:#?}");
    }
    let (_, _, csv) = d.export_contracts(&d.admin, "commune:94034", "csv").await;
    let rows = csv_rows(&csv);
    let row = rows.iter().find(|r| r[0] == ccaps[0].0.reference).expect("the market's row");
    assert_eq!(row[9], ccaps[0].1.sha256, "{name}: {row:?}");
    let versions: Vec<String> =
        runs[1].iter().filter(|sql| sql.contains("FROM groupement_documents")).cloned().collect();
    assert!(!versions.is_empty(), "{name}: {:#?}", runs[1]);

    let from = statements.count();
    let (s, dsden) = call(d.dpo.get(d.url("/contracts/dsden:94"))).await;
    assert_eq!(s, StatusCode::OK, "{name}: {dsden}");
    let annexes = dsden.as_array().unwrap().iter().filter(|l| l["kind"] == entcp::rgpd::contracts_export::ANNEX);
    assert_eq!(annexes.count(), 2, "{name}: {dsden}");
    let run = statements.since(from);
    let signed: Vec<&String> = run.iter().filter(|sql| sql.contains("document_hash FROM conventions")).collect();
    assert_eq!(signed.len(), 1, "{name}: both conventions in one statement: {run:#?}");

    let checked = entcp::store::Store::connect(&d.db.url, Some(1)).await.unwrap();
    for sql in signed.into_iter().chain(&versions) {
        let steps = crate::query_plans::plan(&checked, sql).await.unwrap();
        assert_eq!(crate::query_plans::full_scan(checked.backend(), &steps), None, "{name}: {sql}: {steps:#?}");
    }
}

/// Groupements coordinated by the académie, one per title, each with its CCAP generated and its
/// market recorded as the contract binding the éditeur to Fresnes (at t0, as an award records
/// it); each groupement with its CCAP.
async fn markets_for_fresnes(
    d: &Demo,
    titles: &[&str],
) -> Vec<(entcp::groupements::Groupement, entcp::groupements::documents::StoredDocument)> {
    use entcp::groupements::documents::{generate, Kind};
    let store = &d.db.store;
    let state = common::app::app_state(store.clone(), Default::default(), Arc::new(FixedClock::new(t0())));
    let (operator, groupements) = (admin(), state.groupements());
    let ctx = groupements.ctx(&operator);
    let resolve = entcp::registry::resolve_org;
    let (vendor, fresnes) =
        (resolve(store, "editeur:900000019").await.unwrap(), resolve(store, "commune:94034").await.unwrap());
    let mut markets = Vec::new();
    for title in titles {
        let new = serde_json::from_value(json!({
            "coordinator": "academie:24", "title": title, "object": "ENT des écoles", "application_deadline": "2090-06-30",
        }))
        .unwrap();
        let g = entcp::groupements::create(&ctx, new).await.unwrap();
        let (ccap, _) = generate(&ctx, &g, Kind::Ccap).await.unwrap();
        let market = NewContract {
            processor_org_id: vendor.id.clone(),
            client_org_id: fresnes.id.clone(),
            parent_processor_org_id: None,
            reference: g.reference.clone(),
            title: format!("Marché ENT du groupement de commandes {}", g.reference),
            art28_clauses: true,
            starts_on: Some("2026-09-01".into()),
            ends_on: None,
            source_kind: contracts::FROM_GROUPEMENT.into(),
            source_id: Some(g.id.clone()),
        };
        let mut tx = store.begin_write().await.unwrap();
        contracts::record(&mut tx, store, &admin(), &market, t0()).await.unwrap();
        tx.commit().await.unwrap();
        markets.push((g, ccap));
    }
    markets
}

/// A new version of the CCAP `id`, made the day after the markets were recorded (another SHA-256).
async fn ccap_made_again(store: &entcp::store::Store, id: &str) {
    let later = (t0() + chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let copy = "INSERT INTO groupement_documents (id, groupement_id, kind, version_no, title, html, sha256, shared, \
                created_by, created_at) SELECT 'ccap-later', groupement_id, kind, version_no + 1, title, html, $1, 0, \
                created_by, $2 FROM groupement_documents WHERE id = $3";
    common::execute(store, copy, &["f".repeat(64).as_str(), later.as_str(), id]).await;
}

backend_test!(the_registers_of_a_market_s_chain_cite_its_ccap_as_the_contracts_export_does);
/// Fresnes's éditeur works under a groupement's market (the demo's other contracts with it
/// removed): the commune's Art. 30(2) entry cites it among its sub-processors, with the CCAP
/// version holding its clauses and its SHA-256, the very ones the contracts export lists (the
/// version in force at the recording, not one made since); the éditeur's own entry and the
/// DSDEN's fiches cite it alike.
async fn the_registers_of_a_market_s_chain_cite_its_ccap_as_the_contracts_export_does(db: crate::common::TestDb) {
    let d = demo(db).await;
    let (name, store) = (d.db.name, &d.db.store);
    common::execute(store, "DELETE FROM processor_contracts WHERE reference LIKE 'MARCHE-ENT-%'", &[]).await;
    let markets = markets_for_fresnes(&d, &["ENT 1er degré"]).await;
    let (g, ccap) = &markets[0];
    ccap_made_again(store, &ccap.id).await;
    let (_, lines) = call(d.admin.get(d.url("/contracts/commune:94034"))).await;
    let line = lines.as_array().unwrap().iter().find(|l| l["reference"] == json!(g.reference)).expect("the market");
    assert_eq!(line["sha256"], json!(ccap.sha256), "{name}: {line}");
    let clauses = format!("clauses art. 28 : article 9 du CCAP, version {}, SHA-256 {}", ccap.version, ccap.sha256);
    let cited = format!("contrat {} ({clauses})", g.reference);

    let (_, commune) = call(d.admin.get(d.url("/registers/commune:94034"))).await;
    let subs = &commune["processor_entries"][0]["sub_processors"];
    assert_eq!(subs[0], json!(format!("Éditeur ENT de démonstration (éditeur, FR) ; {cited}")), "{name}: {subs}");
    assert_eq!(subs[1], json!("Hébergeur de démonstration (hébergeur, FR) ; contrat HEB-2026-01 (clauses art. 28)"));
    let html = d.html_register(&d.admin, "commune:94034").await;
    assert!(html.contains(&french(&cited)), "{name}: the commune's document");

    let (_, vendor) = call(d.admin.get(d.url("/registers/editeur:900000019"))).await;
    let contract = &vendor["processor_entries"][0]["contract"];
    assert_eq!(contract["ccap"], json!({ "version": ccap.version, "sha256": ccap.sha256 }), "{name}: {contract}");
    let html = d.html_register(&d.admin, "editeur:900000019").await;
    assert!(html.contains(&french(&format!("{} — {} ({clauses})", g.reference, line["title"].as_str().unwrap()))));

    let html = d.html_register(&d.admin, "dsden:94").await;
    assert!(html.contains(&french(&format!("pour la Commune de Fresnes, FR ; {cited}"))), "{name}: {html}");
    assert!(!html.contains(&"f".repeat(64)), "{name}: not the version made since");
}

/// The collège of Fresnes (0940999A) and its ENT, run for it by the Département du Val-de-Marne
/// under a tripartite second-degré convention in force: the département processes the ENT's
/// data for the collège (art. 28), the collège is its own controller (its chef d'établissement),
/// its registers kept by the académie's DPO (domain review 41, F3).
pub(crate) struct CollegeEnt {
    pub(crate) app: TestApp,
    pub(crate) db: common::TestDb,
    pub(crate) departement_dpo: Client,
    pub(crate) academie_dpo: Client,
    pub(crate) chef: Client,
    pub(crate) college: entcp::registry::Org,
    pub(crate) departement: entcp::registry::Org,
}

pub(crate) const DEPARTEMENT_DPO: &str = "dpd@valdemarne.fr";
pub(crate) const COLLEGE_HEAD: &str = "ce.0940999a@ac-creteil.fr";
pub(crate) const COLLEGE_DAN: &str = "dan@ac-creteil.fr";

pub(crate) async fn college_ent(db: common::TestDb) -> CollegeEnt {
    use entcp::kernel::roles::Role;
    common::import_sample_with_college(&db.store).await;
    let store = &db.store.clone();
    let app = TestApp::over(store).clock(Arc::new(FixedClock::new(t0()))).build().await;
    let org = |key: &'static str| async move { entcp::registry::resolve_org(store, key).await.unwrap() };
    let (academie, departement, college) =
        (org("academie:24").await, org("departement:94").await, org("0940999A").await);
    let convention = ent_testkit::conventions::ActiveConvention {
        id: "tripartite-college-essais",
        model_id: "tripartite-second-degre",
        model_version: 3,
        start: "2026-09-01",
        end: "2029-08-31",
        parties: vec![
            ("academie", academie.id.clone()),
            ("collectivite", departement.id.clone()),
            ("etablissement", college.id.clone()),
        ],
        schools: vec![college.id.clone()],
    };
    ent_testkit::conventions::insert_active(store.pool(), &convention).await.unwrap();
    let doc = json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "college-essais" },
        "spec": { "organisation": college.id, "hostname": "essais.ent.example.fr", "bouquet": "socle-2d" }
    });
    let created = app.root_client().await.post("/api/v1/tenants").json(&doc).send().await;
    assert_eq!(created.status, 201, "{}", created.text);
    common::execute(store, "UPDATE tenants SET status = 'active'", &[]).await;
    let client = |email: &'static str, role: Role, key: &'static str| {
        let app = &app;
        async move { app.client(&token_for(store, email, role, Some(key)).await) }
    };
    // The DAN of the académie party of the collège's convention, told of a breach the
    // département notifies (with the collège's DPO and head).
    token_for(store, COLLEGE_DAN, Role::Dan, Some("academie:24")).await;
    CollegeEnt {
        departement_dpo: client(DEPARTEMENT_DPO, Role::Dpo, "departement:94").await,
        academie_dpo: client("dpd@ac-creteil.fr", Role::Dpo, "academie:24").await,
        chef: client(COLLEGE_HEAD, Role::ChefEtablissement, "0940999A").await,
        app,
        db,
        college,
        departement,
    }
}

/// The breach of the finding: the notes of the collège's pupils exposed through its ENT.
pub(crate) fn notes_exposed(extra: Value) -> Value {
    let mut breach = json!({
        "title": "Exposition des notes d'élèves de l'ENT du Collège des Essais",
        "facts": "Le carnet de notes était lisible par tout compte de l'ENT pendant une heure",
        "occurred_at": "2026-09-01T05:00:00Z", "aware_at": "2026-09-01T06:30:00Z",
        "data_categories": ["évaluations"], "people_categories": ["élèves"], "people_approx": 600,
        "records_approx": 4200, "consequences": "atteinte à la vie privée des élèves",
        "measures": "droits corrigés, journaux d'accès conservés", "risk": "risk"
    });
    if let (Some(breach), Value::Object(extra)) = (breach.as_object_mut(), extra) {
        breach.extend(extra);
    }
    breach
}

backend_test!(a_breach_the_departement_records_as_processor_is_notified_to_the_college_whose_72_hours_run_from_then);
/// Domain review 41, F3 (art. 33.2 RGPD; the conventions' 48 hours): the département, processor of
/// the collège's ENT, names the collège when it records a breach; its own entry is due to the
/// controller within 48 hours and leaves the CNIL to it; the collège's DPO (the académie's), its
/// head and the DAN of the académie party of its convention are told by e-mail; the breach is in the collège's log as its own entry, marked as
/// notified by the département, its 72 hours running from that notification, its CNIL decision
/// its own; neither log reads the other's entries.
async fn a_breach_the_departement_records_as_processor_is_notified_to_the_college_whose_72_hours_run_from_then(
    db: common::TestDb,
) {
    let name = db.name;
    let c = college_ent(db).await;
    let store = &c.db.store;
    let logs = |org: &entcp::registry::Org| format!("/api/v1/rgpd/breaches/{}", org.id);
    let (departement_log, college_log) = (logs(&c.departement), logs(&c.college));
    let (_, register) = call(c.departement_dpo.get(format!("/api/v1/rgpd/registers/{}", c.departement.id))).await;
    assert_eq!(register["processor_entries"][0]["controller"]["id"], json!(c.college.id), "{name}: {register}");

    // The CNIL is the controller's to notify: a processor's breach records no decision of its own.
    let decided = notes_exposed(json!({ "controllers": ["0940999A"], "cnil_decision": "not_required",
                                        "cnil_reason": "bénin", "risk": "none" }));
    let (s, problem) = call(c.departement_dpo.post(departement_log.as_str()).json(&decided)).await;
    assert_eq!((s, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("cnil_decision")));

    let (s, recorded) = call(
        c.departement_dpo.post(departement_log.as_str()).json(&notes_exposed(json!({ "controllers": ["0940999A"] }))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {recorded}");
    assert_eq!(recorded["reference"], "VIOL-2026-000001", "{name}");
    assert_eq!(recorded["controllers"], json!([c.college.id]), "{name}: read back as ids");
    assert_eq!(recorded["controller_deadline"], "2026-09-03T06:30:00.000000Z", "{name}: 48 h after awareness");
    assert_eq!(recorded["cnil_deadline"], "", "{name}: the CNIL is the collège's to notify");
    assert_eq!(
        recorded["notified"],
        json!([{ "id": c.college.id, "name": "Collège des Essais", "notified_at": "2026-09-01T08:00:00.000000Z" }]),
        "{name}"
    );
    assert!(recorded["warning"].is_null(), "{name}: notified within its 48 hours: {recorded}");

    // The collège's side is told, by one e-mail each: its DPO (the académie's), its head and the
    // DAN who governs its ENT (its convention's académie party).
    let notices = common::queued_notices(store, "breach").await;
    assert_eq!(notices.len(), 1, "{name}");
    assert_eq!(notices[0].recipients, [COLLEGE_HEAD, COLLEGE_DAN, "dpd@ac-creteil.fr"], "{name}: not the processor");
    let mail = entcp::notify::mailer::render("breach", &notices[0].context).unwrap();
    assert_eq!(
        mail.subject,
        "Violation de données personnelles notifiée par le Département du Val-de-Marne : Exposition des notes \
         d'élèves de l'ENT du Collège des Essais",
        "{name}"
    );
    for said in [
        "Le Département du Val-de-Marne, sous-traitant de l'ENT du Collège des Essais (article 28 du RGPD), notifie \
         le 1er septembre 2026 à 10 h 00 au responsable de traitement une violation de données à caractère personnel",
        "inscrite au registre des violations du Collège des Essais sous la référence VIOL-2026-000001 (référence du \
         sous-traitant : VIOL-2026-000001)",
        "de la notifier à la CNIL au plus tard le 4 septembre 2026 à 10 h 00, dans les 72 heures",
        "- Nombre approximatif de personnes concernées : 600",
        "- Prise de connaissance par le sous-traitant : le 1er septembre 2026 à 08 h 30",
        "- Risque estimé par le sous-traitant : risque",
    ] {
        assert!(mail.text.contains(said), "{name}: « {said} » in {}", mail.text);
    }
    assert!(mail.html.contains("au plus tard le 4 septembre 2026 à 10 h 00</strong>"), "{name}: {}", mail.html);

    // In the collège's log: its own entry, numbered in its series, notified by the département,
    // its 72 hours from that notification, its decisions still to take.
    for reader in [&c.academie_dpo, &c.chef] {
        let (s, list) = call(reader.get(college_log.as_str())).await;
        assert_eq!(s, StatusCode::OK, "{name}: {list}");
        let [entry] = list.as_array().unwrap().as_slice() else { panic!("{name}: one entry: {list}") };
        assert_eq!(entry["reference"], "VIOL-2026-000001", "{name}");
        assert_eq!(entry["title"], recorded["title"], "{name}");
        assert_eq!(entry["aware_at"], "2026-09-01T08:00:00.000000Z", "{name}: aware when notified");
        assert_eq!(entry["cnil_deadline"], "2026-09-04T08:00:00.000000Z", "{name}: 72 h from the notification");
        assert_eq!((&entry["cnil_decision"], &entry["risk"]), (&json!("pending"), &json!("risk")), "{name}");
        assert_eq!(entry["reported_by"]["processor"], "Département du Val-de-Marne", "{name}: {entry}");
        assert_eq!(entry["reported_by"]["reference"], "VIOL-2026-000001", "{name}");
        assert_eq!(entry["reported_by"]["notified_at"], "2026-09-01T08:00:00.000000Z", "{name}");
        assert_eq!(entry["controllers"], json!([]), "{name}");
        assert!(entry.get("controller_deadline").is_none() && entry.get("notified").is_none(), "{name}: {entry}");
    }
    let resp = c.academie_dpo.get(format!("{college_log}?format=csv")).send().await;
    assert!(
        resp.text.contains(
            "notifiée par le sous-traitant Département du Val-de-Marne (sa référence VIOL-2026-000001) le 1er \
             septembre 2026 à 10 h 00"
        ),
        "{name}: {}",
        resp.text
    );
    let (_, list) = call(c.academie_dpo.get(college_log.as_str())).await;
    let college_entry = list[0]["id"].as_str().unwrap().to_string();

    // The département's log holds its own entry only, nothing of the collège's; the collège's
    // log is not the département's to read.
    let (_, own) = call(c.departement_dpo.get(departement_log.as_str())).await;
    assert_eq!(own.as_array().unwrap().len(), 1, "{name}: {own}");
    assert!(!own.to_string().contains(&college_entry), "{name}: {own}");
    let (s, _) = call(c.departement_dpo.get(college_log.as_str())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{name}");
    let resp = c.departement_dpo.get(format!("{departement_log}?format=csv")).send().await;
    assert!(
        resp.text
            .contains("notifiée au responsable de traitement : Collège des Essais le 1er septembre 2026 à 10 h 00"),
        "{name}: {}",
        resp.text
    );

    // The collège completes its CNIL decision on its own entry; the département's text is untouched.
    let input = notes_exposed(json!({
        "aware_at": "2026-09-01T08:00:00Z", "cnil_decision": "notified", "cnil_notified_at": "2026-09-01T08:00:00Z",
        "cnil_reference": "CNIL-2026-0042",
    }));
    let (s, decided) =
        call(c.academie_dpo.put(format!("{college_log}/{college_entry}")).header("if-match", "\"1\"").json(&input))
            .await;
    assert_eq!(s, StatusCode::OK, "{name}: {decided}");
    assert!(decided["warning"].is_null(), "{name}: {decided}");
    let (_, own) = call(c.departement_dpo.get(departement_log.as_str())).await;
    assert_eq!((&own[0]["version"], &own[0]["cnil_decision"]), (&json!(1), &json!("pending")), "{name}: {own}");

    // Audited for both: the département's creation, the collège's entry notified to it.
    let departement_entry = recorded["id"].as_str().unwrap();
    let created = common::audit_summary(store, "rgpd.breach.create", departement_entry).await;
    assert_eq!(created["controllers"], json!([c.college.id]), "{name}: {created}");
    let reported = common::audit_summary(store, "rgpd.breach.reported", &college_entry).await;
    assert_eq!(reported["processor"], json!(c.departement.id), "{name}: {reported}");
    let scopes = common::texts(
        store,
        "SELECT scope_org_id FROM audit_log WHERE action IN ('rgpd.breach.create', 'rgpd.breach.reported') \
         ORDER BY action",
        &[],
    )
    .await;
    assert_eq!(scopes, [c.departement.id.clone(), c.college.id.clone()], "{name}");
}

backend_test!(a_processor_names_only_controllers_it_processes_for_and_completes_what_it_notified);
/// A controller the département is not processor for, and an organisation that does not exist,
/// get one answer (no oracle), nothing written or sent; a breach of the collège, its own
/// controller, is recorded as before, to the CNIL in 72 hours and to nobody else; the
/// département completes its breach: the collège's side is told, its entry kept as it is; a
/// controller notified is never taken back.
async fn a_processor_names_only_controllers_it_processes_for_and_completes_what_it_notified(db: common::TestDb) {
    let name = db.name;
    let c = college_ent(db).await;
    let store = &c.db.store;
    let departement_log = format!("/api/v1/rgpd/breaches/{}", c.departement.id);
    let college_log = format!("/api/v1/rgpd/breaches/{}", c.college.id);
    let ecole = entcp::registry::resolve_org(store, "0940176F").await.unwrap();
    let mut answers = Vec::new();
    for other in [ecole.id.as_str(), "9999999Z"] {
        let body = notes_exposed(json!({ "controllers": [other] }));
        let (s, problem) = call(c.departement_dpo.post(departement_log.as_str()).json(&body)).await;
        assert_eq!(
            (s, problem["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("controllers"))
        );
        answers.push(problem["errors"][0]["message"].as_str().unwrap().replace(other, "…"));
    }
    assert_eq!(answers[0], answers[1], "{name}: the same answer for both");
    assert_eq!(
        answers[0],
        "« … » n'est pas un responsable de traitement pour lequel le Département du Val-de-Marne agit en \
         sous-traitant : choisissez parmi Collège des Essais (0940999A)",
        "{name}"
    );
    assert_eq!(common::count(store, "SELECT COUNT(*) FROM rgpd_breaches", &[]).await, 0, "{name}");

    // A controller's own breach, as before: its 72 hours from its awareness, nobody notified;
    // it notifies no other controller.
    let own = notes_exposed(json!({ "title": "Courriel mal adressé", "risk": "unassessed" }));
    let (s, problem) = call(
        c.academie_dpo.post(college_log.as_str()).json(&notes_exposed(json!({ "controllers": ["departement:94"] }))),
    )
    .await;
    assert_eq!((s, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("controllers")));
    let (s, recorded) = call(c.academie_dpo.post(college_log.as_str()).json(&own)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {recorded}");
    assert_eq!(recorded["cnil_deadline"], "2026-09-04T06:30:00.000000Z", "{name}");
    assert!(recorded.get("controller_deadline").is_none() && recorded.get("reported_by").is_none(), "{name}");
    assert!(common::queued_mails(store, "breach").await.is_empty(), "{name}");

    // The département notifies, then completes its measures: the collège's side is told again, with
    // what changed; the collège's entry keeps what it was notified.
    let body = notes_exposed(json!({ "controllers": ["etablissement:0940999A"] }));
    let (s, first) = call(c.departement_dpo.post(departement_log.as_str()).json(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {first}");
    let entry = format!("{departement_log}/{}", first["id"].as_str().unwrap());
    // Sent without `controllers`: those notified stay.
    let mut completed = notes_exposed(json!({ "measures": "mots de passe réinitialisés, familles informées" }));
    let (s, body) = call(c.departement_dpo.put(entry.as_str()).header("if-match", "\"1\"").json(&completed)).await;
    assert_eq!(s, StatusCode::OK, "{name}: {body}");
    assert_eq!(body["controllers"], json!([c.college.id]), "{name}: kept when not sent");
    let notices = common::queued_notices(store, "breach").await;
    assert_eq!(notices.len(), 2, "{name}");
    assert_eq!(notices[1].context["event"], "completed", "{name}");
    assert_eq!(notices[1].recipients, [COLLEGE_HEAD, COLLEGE_DAN, "dpd@ac-creteil.fr"], "{name}");
    let mail = entcp::notify::mailer::render("breach", &notices[1].context).unwrap();
    assert_eq!(
        mail.subject,
        "Complément de notification du Département du Val-de-Marne : violation de données VIOL-2026-000002",
        "{name}"
    );
    assert!(mail.text.contains("Éléments complétés : mesures.") && mail.text.contains("familles informées"));
    let (_, list) = call(c.chef.get(college_log.as_str())).await;
    let notified = list.as_array().unwrap().iter().find(|e| e["reported_by"].is_object()).unwrap();
    assert_eq!(notified["measures"], "droits corrigés, journaux d'accès conservés", "{name}: {notified}");
    assert_eq!(common::audited(store, "rgpd.breach.completed").await, 1, "{name}");

    // A notification made is not taken back.
    completed["controllers"] = json!([]);
    let (s, problem) = call(c.departement_dpo.put(entry.as_str()).header("if-match", "\"2\"").json(&completed)).await;
    assert_eq!((s, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("controllers")));
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("ne se retire pas"), "{name}: {problem}");
}

backend_test!(a_processor_s_register_states_the_convention_signed_for_it_before_it_takes_effect);
/// Task 3 (domain review 41, F8, the processor's side): the collège's tripartite is signed but
/// takes effect on 4 January 2027; the collège's ENT runs meanwhile. The département's own
/// register states, in an Art. 30(2) entry labelled as not yet in force, the signed convention,
/// its first day, the processing it will carry out and for whom; it is no processor yet, so a
/// breach cannot be notified to the collège. Once in force, the entry is in force.
async fn a_processor_s_register_states_the_convention_signed_for_it_before_it_takes_effect(db: common::TestDb) {
    let name = db.name;
    let c = college_ent(db).await;
    let store = &c.db.store;
    let later = "UPDATE conventions SET status = 'signed', start_date = '2027-01-04' WHERE id = $1";
    assert_eq!(common::execute(store, later, &["tripartite-college-essais"]).await, 1);
    let reference = reference_of(store, "tripartite-college-essais").await;
    let register_url = format!("/api/v1/rgpd/registers/{}", c.departement.id);
    let (s, register) = call(c.departement_dpo.get(register_url.as_str())).await;
    assert_eq!(s, StatusCode::OK, "{name}: {register}");
    let [entry] = register["processor_entries"].as_array().unwrap().as_slice() else {
        panic!("{name}: one entry to come: {register}")
    };
    assert_eq!(entry["ahead"], json!({ "convention": reference, "takes_effect": "4 janvier 2027" }), "{name}");
    assert_eq!(entry["controller"]["id"], json!(c.college.id), "{name}");
    assert_eq!(entry["roles"], json!(["sous-traitant (collectivité)"]), "{name}");
    assert!(entry["processing"].as_array().is_some_and(|p| !p.is_empty()), "{name}: {entry}");
    assert!(entry["contract"]["title"].as_str().unwrap().ends_with("signée, prendra effet le 4 janvier 2027"));
    assert_eq!(
        entry["warnings"][0].as_str().unwrap(),
        format!(
            "pas encore en vigueur : la convention {reference} signée, qui prendra effet le 4 janvier 2027, fera du \
             Département du Val-de-Marne le sous-traitant (collectivité) du Collège des Essais pour le Collège des \
             Essais (article 28 du RGPD) ; d'ici là, elle ne le lie pas et les rôles par défaut s'appliquent"
        ),
        "{name}"
    );
    let resp = c.departement_dpo.get(format!("{register_url}?format=html")).send().await;
    let html = html_text(&resp.text);
    assert!(
        html.contains("Sous-traitance à venir pour le Collège des Essais (convention pas encore en vigueur)"),
        "{name}: {html}"
    );
    // Not its processor yet: no breach is notified to the collège under it.
    let departement_log = format!("/api/v1/rgpd/breaches/{}", c.departement.id);
    let body = notes_exposed(json!({ "controllers": ["0940999A"] }));
    let (s, problem) = call(c.departement_dpo.post(departement_log.as_str()).json(&body)).await;
    assert_eq!((s, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("controllers")));

    let now = "UPDATE conventions SET status = 'active', start_date = '2026-09-01' WHERE id = $1";
    common::execute(store, now, &["tripartite-college-essais"]).await;
    let (_, register) = call(c.departement_dpo.get(register_url.as_str())).await;
    let entry = &register["processor_entries"][0];
    assert!(entry.get("ahead").is_none(), "{name}: in force: {entry}");
    assert!(!entry.to_string().contains("pas encore en vigueur"), "{name}: {entry}");
}

backend_test!(a_college_holding_its_own_ent_with_no_convention_in_force_is_its_own_controller_in_the_contracts_export);
/// Task 4: the collège's convention has expired, its own ENT still runs: its register makes it
/// its own controller by default, and so does the export of its processor contracts (said to be
/// a default); once its ENT is purged, neither determines one, and the export says « non
/// déterminé ».
async fn a_college_holding_its_own_ent_with_no_convention_in_force_is_its_own_controller_in_the_contracts_export(
    db: common::TestDb,
) {
    use entcp::kernel::roles::OrgKind;
    let name = db.name;
    let c = college_ent(db).await;
    let store = &c.db.store;
    let expired = "UPDATE conventions SET status = 'expired' WHERE id = $1";
    assert_eq!(common::execute(store, expired, &["tripartite-college-essais"]).await, 1);
    let vendor = common::fixtures::new_org(store, OrgKind::Editeur, "Éditeur des Essais", "900000035", None).await;
    let new: NewContract = serde_json::from_value(json!({
        "processor_org_id": vendor.id, "client_org_id": c.college.id, "reference": "MARCHE-ENT-0940999A",
        "title": "Marché ENT du collège", "art28_clauses": true, "source_kind": "manual",
    }))
    .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    contracts::record(&mut tx, store, &admin(), &new, t0()).await.unwrap();
    tx.commit().await.unwrap();

    let (_, register) = call(c.academie_dpo.get(format!("/api/v1/rgpd/registers/{}", c.college.id))).await;
    assert_eq!(register["entries"][0]["controller"]["id"], json!(c.college.id), "{name}: {register}");
    let contracts_url = format!("/api/v1/rgpd/contracts/{}", c.college.id);
    let line = |lines: &Value| -> Value {
        let found = lines.as_array().unwrap().iter().find(|l| l["reference"] == "MARCHE-ENT-0940999A");
        found.cloned().unwrap_or_else(|| panic!("{name}: the contract's line: {lines}"))
    };
    let (s, lines) = call(c.academie_dpo.get(contracts_url.as_str())).await;
    assert_eq!(s, StatusCode::OK, "{name}: {lines}");
    let default = format!("Collège des Essais ({})", entcp::rgpd::contracts_export::DEFAULT);
    assert_eq!(line(&lines)["controllers"], json!([default]), "{name}");

    let purged = "UPDATE tenants SET status = 'purged' WHERE org_id = $1";
    assert_eq!(common::execute(store, purged, &[&c.college.id]).await, 1, "{name}");
    let (_, register) = call(c.academie_dpo.get(format!("/api/v1/rgpd/registers/{}", c.college.id))).await;
    assert_eq!(register["entries"], json!([]), "{name}: {register}");
    let (_, lines) = call(c.academie_dpo.get(contracts_url.as_str())).await;
    let undetermined = format!("{} ne fixe le rôle du Collège des Essais", entcp::rgpd::contracts_export::UNDETERMINED);
    assert_eq!(line(&lines)["controllers"], json!([undetermined]), "{name}");
}

backend_test!(a_log_entry_s_author_is_shown_by_the_audit_log_s_rule_masked_to_a_dpo_who_does_not_read_the_account);
/// Attack 42, F3: the entry a processor's breach creates in the collège's log is authored by the
/// département's agent; the académie's DPO, who reads no account of another organisation, reads
/// `(masqué)` there, as the audit log shows that person to it — in the list, the JSON export and
/// the answer to its own update — while an administrator and the author read the address. In the
/// académie's own logs (breaches and requests), its DAN, who reads the accounts of the académie,
/// reads its DPO's address, and another DPO of the académie does not.
async fn a_log_entry_s_author_is_shown_by_the_audit_log_s_rule_masked_to_a_dpo_who_does_not_read_the_account(
    db: common::TestDb,
) {
    use entcp::kernel::roles::Role;
    let name = db.name;
    let c = college_ent(db).await;
    let store = &c.db.store;
    let author = format!("user:{DEPARTEMENT_DPO}");
    let departement_log = format!("/api/v1/rgpd/breaches/{}", c.departement.id);
    let college_log = format!("/api/v1/rgpd/breaches/{}", c.college.id);
    let notified = notes_exposed(json!({ "controllers": ["0940999A"] }));
    let (s, recorded) = call(c.departement_dpo.post(departement_log.as_str()).json(&notified)).await;
    assert_eq!((s, &recorded["created_by"]), (StatusCode::CREATED, &json!(author)), "{name}: its own: {recorded}");

    let authors =
        |list: &Value| -> Vec<Value> { list.as_array().unwrap().iter().map(|e| e["created_by"].clone()).collect() };
    for url in [college_log.clone(), format!("{college_log}?format=json")] {
        let (s, list) = call(c.academie_dpo.get(url.as_str())).await;
        assert_eq!(s, StatusCode::OK, "{name}: {list}");
        assert_eq!(authors(&list), [json!("(masqué)")], "{name}: {url}");
        assert_eq!(list[0]["reported_by"]["processor"], "Département du Val-de-Marne", "{name}: the processor named");
        assert!(!list.to_string().contains(DEPARTEMENT_DPO), "{name}: {list}");
    }
    let resp = c.academie_dpo.get(format!("{college_log}?format=csv")).send().await;
    assert!(!resp.text.contains(DEPARTEMENT_DPO), "{name}: {}", resp.text);
    // The audit log masks the same person to the same reader.
    let (_, audit) = call(c.academie_dpo.get("/api/v1/audit?target_kind=rgpd_breach")).await;
    let reported = audit["items"].as_array().unwrap().iter().find(|r| r["action"] == "rgpd.breach.reported");
    assert_eq!(reported.map(|r| r["actor"].clone()), Some(json!("(masqué)")), "{name}: {audit}");

    let admin = c.app.client(&token_for(store, "admin2@test.fr", Role::Admin, None).await);
    let (_, list) = call(admin.get(college_log.as_str())).await;
    assert_eq!(authors(&list), [json!(author)], "{name}: an administrator reads every account");
    let (_, own) = call(c.departement_dpo.get(departement_log.as_str())).await;
    assert_eq!(authors(&own), [json!(author)], "{name}: the author reads its own address");

    // The académie's DPO decides on the collège's entry: the answer masks the author too.
    let entry = list[0]["id"].as_str().unwrap();
    let input = notes_exposed(json!({
        "aware_at": "2026-09-01T08:00:00Z", "cnil_decision": "notified", "cnil_notified_at": "2026-09-01T08:00:00Z",
    }));
    let put = c.academie_dpo.put(format!("{college_log}/{entry}")).header("if-match", "\"1\"").json(&input);
    let (s, decided) = call(put).await;
    assert_eq!((s, &decided["created_by"]), (StatusCode::OK, &json!("(masqué)")), "{name}: {decided}");
    let stored = "SELECT created_by FROM rgpd_breaches WHERE id = $1";
    assert_eq!(common::texts(store, stored, &[entry]).await, [author], "{name}: stored as it was");

    // The académie's own logs: its DAN reads the accounts of the académie, another DPO does not.
    let dan = c.app.client(&token_for(store, "dan2@ac-creteil.fr", Role::Dan, Some("academie:24")).await);
    let other_dpo = c.app.client(&token_for(store, "dpo2@ac-creteil.fr", Role::Dpo, Some("academie:24")).await);
    let own_breach = notes_exposed(json!({ "title": "Courriel mal adressé" }));
    let (s, _) = call(c.academie_dpo.post("/api/v1/rgpd/breaches/academie:24").json(&own_breach)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}");
    let request = json!({ "kind": "access", "requester": "J. D.", "received_on": "2026-09-01" });
    let (s, body) = call(c.academie_dpo.post("/api/v1/rgpd/requests/academie:24").json(&request)).await;
    assert_eq!((s, &body["created_by"]), (StatusCode::CREATED, &json!("user:dpd@ac-creteil.fr")), "{name}: {body}");
    for log in ["breaches", "requests"] {
        let url = format!("/api/v1/rgpd/{log}/academie:24");
        let (_, list) = call(dan.get(url.as_str())).await;
        assert_eq!(authors(&list), [json!("user:dpd@ac-creteil.fr")], "{name}: {log}: the DAN reads the account");
        let (_, list) = call(other_dpo.get(url.as_str())).await;
        assert_eq!(authors(&list), [json!("(masqué)")], "{name}: {log}: a DPO reads no other account");
    }
}

backend_test!(a_breach_lists_fifty_categories_at_most_so_that_no_controller_s_copy_exceeds_them);
/// Attack 42, F4: a breach's categories of data and of people are 50 at most each, and the
/// controllers a processor names 1 000 at most: beyond, 422 on the field, nothing written nor
/// notified; fifty are accepted and copied whole into the collège's entry; an update beyond the
/// bound is refused and leaves the entry as it was.
async fn a_breach_lists_fifty_categories_at_most_so_that_no_controller_s_copy_exceeds_them(db: common::TestDb) {
    use entcp::kernel::roles::Role;
    let name = db.name;
    let c = college_ent(db).await;
    let store = &c.db.store;
    let departement_log = format!("/api/v1/rgpd/breaches/{}", c.departement.id);
    let college_log = format!("/api/v1/rgpd/breaches/{}", c.college.id);
    let categories = |n: usize| -> Vec<String> { (1..=n).map(|i| format!("catégorie {i}")).collect() };
    let refusals = [
        (
            "data_categories",
            json!({ "data_categories": categories(51) }),
            "50 catégories au plus : la liste en compte 51",
        ),
        (
            "people_categories",
            json!({ "people_categories": categories(51) }),
            "50 catégories au plus : la liste en compte 51",
        ),
        (
            "controllers",
            json!({ "controllers": vec!["0940999A"; 1001] }),
            "1 000 responsables de traitement au plus : la liste en compte 1 001",
        ),
    ];
    for (field, extra, message) in refusals {
        let mut body = notes_exposed(extra);
        body.as_object_mut().unwrap().entry("controllers").or_insert(json!(["0940999A"]));
        let (s, problem) = call(c.departement_dpo.post(departement_log.as_str()).json(&body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {field}: {problem}");
        let errors = problem["errors"].as_array().unwrap();
        assert!(errors.iter().any(|e| e["field"] == field && e["message"] == message), "{name}: {problem}");
    }
    let admin = c.app.client(&token_for(store, "admin2@test.fr", Role::Admin, None).await);
    for log in [&departement_log, &college_log] {
        let (_, list) = call(admin.get(log.as_str())).await;
        assert_eq!(list, json!([]), "{name}: nothing written");
    }
    assert!(common::queued_notices(store, "breach").await.is_empty(), "{name}: nobody told");

    let fifty = notes_exposed(json!({ "controllers": ["0940999A"], "data_categories": categories(50),
                                      "people_categories": categories(50) }));
    let (s, recorded) = call(c.departement_dpo.post(departement_log.as_str()).json(&fifty)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {recorded}");
    let (_, list) = call(c.academie_dpo.get(college_log.as_str())).await;
    assert_eq!(list[0]["data_categories"], json!(categories(50)), "{name}: copied whole");
    assert_eq!(list[0]["people_categories"], json!(categories(50)), "{name}");

    let more = notes_exposed(json!({ "data_categories": categories(51) }));
    let url = format!("{departement_log}/{}", recorded["id"].as_str().unwrap());
    let (s, problem) = call(c.departement_dpo.put(url.as_str()).header("if-match", "\"1\"").json(&more)).await;
    assert_eq!(
        (s, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("data_categories"))
    );
    let (_, own) = call(c.departement_dpo.get(departement_log.as_str())).await;
    assert_eq!((&own[0]["version"], &own[0]["data_categories"]), (&json!(1), &json!(categories(50))), "{name}");
    assert_eq!(common::queued_notices(store, "breach").await.len(), 1, "{name}: no completion sent");
}

/// The statement of migration 0079 that back-fills `rgpd_breaches.reported_as` from the links
/// between entries.
fn reported_as_backfill() -> &'static str {
    let (_, sql) =
        entcp::store::migrations::FILES.iter().find(|(f, _)| f.ends_with("_breach_reported_as.sql")).unwrap();
    let statement = sql.split(';').find(|s| s.trim_start().starts_with("UPDATE rgpd_breaches")).unwrap();
    statement.trim()
}

backend_test!(whose_breach_an_entry_records_is_stored_when_written_and_read_as_stored);
/// Session 43, task 1: whose breach an entry records is stored (`reported_as`, migration 0079)
/// by the rule that decides at creation: the département's breach naming the collège is a
/// processor's, its own breach and the collège's entry are a controller's. The back-fill finds
/// the processor's entry by the entry pointing at it, and leaves the others the organisation's
/// own. Read as stored: the processor's entry keeps its controllers' 48 hours when no entry of
/// theirs can be read, where reading the links made it the département's own, on the CNIL's 72.
async fn whose_breach_an_entry_records_is_stored_when_written_and_read_as_stored(db: common::TestDb) {
    let name = db.name;
    let c = college_ent(db).await;
    let store = &c.db.store;
    let departement_log = format!("/api/v1/rgpd/breaches/{}", c.departement.id);
    let college_log = format!("/api/v1/rgpd/breaches/{}", c.college.id);
    let named = notes_exposed(json!({ "controllers": ["0940999A"] }));
    let (s, processor) = call(c.departement_dpo.post(departement_log.as_str()).json(&named)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {processor}");
    assert_eq!(processor["reported_as"], "processor", "{name}: {processor}");
    let lost = notes_exposed(json!({
        "title": "Perte d'un ordinateur portable du service", "facts": "Un ordinateur non chiffré a été perdu",
        "risk": "unassessed",
    }));
    let (s, own) = call(c.departement_dpo.post(departement_log.as_str()).json(&lost)).await;
    assert_eq!(s, StatusCode::CREATED, "{name}: {own}");
    assert_eq!(
        (&own["reported_as"], &own["cnil_deadline"]),
        (&json!("controller"), &json!("2026-09-04T06:30:00.000000Z"))
    );
    let (_, list) = call(c.academie_dpo.get(college_log.as_str())).await;
    assert_eq!(list[0]["reported_as"], "controller", "{name}: the collège's own entry: {list}");
    let college_entry = list[0]["id"].as_str().unwrap().to_string();
    let (processor_id, own_id) = (processor["id"].as_str().unwrap(), own["id"].as_str().unwrap());

    // Migration 0079's back-fill over the rows as 0072 left them (each read as the column's default).
    common::execute(store, "UPDATE rgpd_breaches SET reported_as = 'controller'", &[]).await;
    common::execute(store, reported_as_backfill(), &[]).await;
    let stored = |id: &str| {
        let id = id.to_string();
        async move { common::texts(store, "SELECT reported_as FROM rgpd_breaches WHERE id = $1", &[&id]).await }
    };
    assert_eq!(stored(processor_id).await, ["processor"], "{name}");
    assert_eq!(stored(own_id).await, ["controller"], "{name}");
    assert_eq!(stored(&college_entry).await, ["controller"], "{name}");

    // Read as stored, not from the links: with the collège's entry gone, the département's
    // still is a processor's breach, due to its controller in 48 hours, the CNIL not its own.
    common::execute(store, "DELETE FROM rgpd_breaches WHERE reported_by IS NOT NULL", &[]).await;
    let (s, list) = call(c.departement_dpo.get(departement_log.as_str())).await;
    assert_eq!(s, StatusCode::OK, "{name}: {list}");
    let entry = list.as_array().unwrap().iter().find(|e| e["id"] == processor_id).unwrap();
    assert_eq!(entry["reported_as"], "processor", "{name}: {entry}");
    assert_eq!(entry["controller_deadline"], "2026-09-03T06:30:00.000000Z", "{name}: {entry}");
    assert_eq!((&entry["cnil_deadline"], &entry["warning"]), (&json!(""), &Value::Null), "{name}: {entry}");
    let csv = c.departement_dpo.get(format!("{departement_log}?format=csv")).send().await.text;
    let line =
        csv.lines().find(|l| l.contains(processor["reference"].as_str().unwrap()) && l.contains("notes")).unwrap();
    assert!(line.contains("par le responsable de traitement"), "{name}: {line}");
}

/// A snapshot's `content` as the derivation before the scale change (session 41) worded it: the
/// tenants' own account figure named « capacité du tenant », « établissement(s) » whatever the
/// number.
fn worded_before_the_scale_change(content: &str) -> String {
    content
        .replace(
            "comptes des élèves, personnels et familles des ENT déployés : nombre de comptes de chaque tenant",
            "comptes déclarés des élèves, personnels et familles : capacité du tenant",
        )
        .replace(" établissements)", " établissement(s))")
        .replace(" établissement)", " établissement(s))")
}

/// The registers' snapshots and their entries' history as a derivation before the scale
/// change recorded them: the organisations some entry of whose register it rewords.
async fn snapshots_worded_before_the_scale_change(store: &entcp::store::Store) -> Vec<String> {
    let mut reworded = Vec::new();
    for id in common::texts(store, "SELECT id FROM rgpd_snapshots ORDER BY id", &[]).await {
        let sql = "SELECT content FROM rgpd_snapshots WHERE id = $1";
        let content = common::texts(store, sql, &[&id]).await.remove(0);
        let then = worded_before_the_scale_change(&content);
        let read = |content: &str| serde_json::from_str::<entcp::rgpd::derive::Register>(content).unwrap();
        let register = read(&then);
        if register.entries == read(&content).entries {
            continue;
        }
        let org = common::texts(store, "SELECT org_id FROM rgpd_snapshots WHERE id = $1", &[&id]).await.remove(0);
        common::execute(store, "UPDATE rgpd_snapshots SET content = $1 WHERE id = $2", &[&then, &id]).await;
        for e in &register.entries {
            let hash = entcp::rgpd::derive::entry_hash(e);
            let sql = "UPDATE rgpd_entry_history SET content_hash = $1 WHERE org_id = $2 AND entry_key = $3";
            common::execute(store, sql, &[&hash, &org, &e.key]).await;
        }
        reworded.push(org);
    }
    reworded
}

backend_test!(a_register_only_reworded_since_its_snapshot_tells_no_dpo_and_a_real_change_still_does);
/// Session 43, task 2: the snapshots taken before the scale change worded the large-scale line
/// otherwise. Against today's derivation they read as unchanged: no change in the diff, the
/// entries keep the date they last changed, and the monthly pass records the new wording without
/// telling any DPO. A change of what a register says (a service added to a tenant) still is told.
async fn a_register_only_reworded_since_its_snapshot_tells_no_dpo_and_a_real_change_still_does(db: common::TestDb) {
    let name = db.name;
    let d = demo(db).await;
    d.set_profile().await;
    let store = d.db.store.clone();
    let state = |days: i64| {
        let clock = Arc::new(FixedClock::new(t0() + chrono::Duration::days(days)));
        crate::common::app::app_state(store.clone(), entcp::config::Config::default(), clock).rgpd()
    };
    let at = |days: i64| t0() + chrono::Duration::days(days);
    let first = entcp::rgpd::jobs::monthly(&state(0), at(0)).await.unwrap();
    assert_eq!((first.snapshots, first.notified), (5, 0), "{name}: {first:?}");
    let reworded = snapshots_worded_before_the_scale_change(&store).await;
    assert!(!reworded.is_empty(), "{name}: the demo's registers state their deployed accounts");

    for org_id in &reworded {
        let org = entcp::registry::get_org(&store, org_id).await.unwrap().unwrap();
        let (snapshot, then) = entcp::rgpd::snapshots::latest(&state(1), org_id).await.unwrap().unwrap();
        let diff = entcp::rgpd::snapshots::diff_for(&state(1), &org, Some(&snapshot.id), None).await.unwrap();
        assert!(diff.is_empty(), "{name}: {org_id} reworded only: {diff:?}");
        let now = entcp::rgpd::current(&state(1), &org).await.unwrap();
        let dated = |r: &entcp::rgpd::derive::Register| {
            r.entries.iter().map(|e| (e.key.clone(), e.last_changed.clone())).collect::<Vec<_>>()
        };
        assert_eq!(dated(&now), dated(&then), "{name}: {org_id} keeps its entries' dates");
    }
    let quiet = entcp::rgpd::jobs::monthly(&state(1), at(1)).await.unwrap();
    assert_eq!((quiet.snapshots, quiet.notified), (reworded.len(), 0), "{name}: {quiet:?}");
    assert!(common::queued_mails(&store, "rgpd").await.is_empty(), "{name}: no DPO told");
    let again = entcp::rgpd::jobs::monthly(&state(2), at(2)).await.unwrap();
    assert_eq!((again.snapshots, again.notified), (0, 0), "{name}: the new wording recorded: {again:?}");

    // A real change is told.
    vitry_adds_visio(&store).await;
    let changed = entcp::rgpd::jobs::monthly(&state(30), at(30)).await.unwrap();
    assert!(changed.notified >= 1, "{name}: {changed:?}");
    let sent = common::queued_mails(&store, "rgpd").await;
    let mail = sent.iter().find(|m| m.recipient() == "dpd@ac-creteil.fr").expect("the académie's DPO is told");
    assert!(mail.context["changed"].to_string().contains("94-visio"), "{name}: {}", mail.context);
}
