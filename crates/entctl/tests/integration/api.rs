//! The HTTP API, called in process: problem+json errors, the registry routes,
//! the streamed CSV import and the OpenAPI document.

use crate::common;

use axum::http::{Method, StatusCode};
use common::app::Req;
use common::{Resp, TestApp};
use entcp::api::routes;
use entcp::kernel::roles::Role;
use serde_json::{json, Value};

const ADMIN: &str = "admin@test.fr";

struct Server {
    app: TestApp,
}

async fn start(db: common::TestDb) -> Server {
    Server { app: TestApp::builder(db).user(ADMIN, Role::Admin, None).build().await }
}

impl Server {
    /// A request sent as the administrator.
    fn req(&self, method: Method, path: &str) -> Req<'_> {
        self.app.request(method, path).acting_as(ADMIN)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value, String) {
        split(self.req(Method::GET, path).send().await)
    }

    async fn import_sample(&self) -> Value {
        let csv = std::fs::read(common::fixture("annuaire-education-94-ecoles.csv")).unwrap();
        let resp =
            self.req(Method::POST, "/api/v1/imports/annuaire").bytes("text/csv; charset=utf-8", csv).send().await;
        let (status, body, _) = split(resp);
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn split(resp: Resp) -> (StatusCode, Value, String) {
    let status = StatusCode::from_u16(resp.status).unwrap();
    let content_type = resp.header("content-type").unwrap_or_default().to_string();
    (status, resp.body, content_type)
}

fn assert_problem(status: StatusCode, body: &Value, content_type: &str, expected: StatusCode, slug: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["type"], format!("urn:entcp:problem:{slug}"));
    assert_eq!(body["status"], expected.as_u16());
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
}

backend_test!(csv_upload_imports_then_reports_everything_unchanged);
async fn csv_upload_imports_then_reports_everything_unchanged(db: crate::common::TestDb) {
    let server = start(db).await;
    let first = server.import_sample().await;
    assert_eq!(first["etablissements"]["created"], 613);
    assert_eq!(first["related"]["communes"]["created"], 47);
    let second = server.import_sample().await;
    assert_eq!(second["etablissements"]["unchanged"], 613);

    let (status, body, _) = server.get("/api/v1/orgs/0940176F").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Ecole élémentaire Robert Doisneau");
    assert_eq!(body["funding_collectivite"]["code"], "94034");
    assert_eq!(body["covering_parents"][0]["kind"], "academie");

    let (status, body, _) = server.get("/api/v1/orgs?kind=etablissement&commune=94034&limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let cursor = body["next_cursor"].as_str().expect("more pages").to_string();
    let (_, next, _) =
        server.get(&format!("/api/v1/orgs?kind=etablissement&commune=94034&limit=2&cursor={cursor}")).await;
    assert_ne!(next["items"][0]["id"], body["items"][0]["id"]);

    let (status, covers, _) = server.get("/api/v1/orgs/academie:24/covers?limit=500").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(covers["items"].as_array().unwrap().len(), 500);
    assert!(covers["next_cursor"].is_string());
}

#[tokio::test]
async fn upload_with_bad_rows_answers_the_report_with_line_numbers() {
    let server = start(common::sqlite().await).await;
    let csv = "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie\n\
               0940176F;Ecole A;Ecole;94034;24\n\
               1234567X;Ecole B;Ecole;94034;24\n";
    let resp = server.req(Method::POST, "/api/v1/imports/annuaire?dry_run=true").bytes("text/csv", csv).send().await;
    let (status, body, _) = split(resp);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["etablissements"]["created"], 1);
    assert_eq!(body["rejections"][0]["line"], 3);
    assert_eq!(body["rejections"][0]["uai"], "1234567X");
}

backend_test!(a_school_of_saint_martin_is_imported_with_its_collectivite);
async fn a_school_of_saint_martin_is_imported_with_its_collectivite(db: crate::common::TestDb) {
    let name = db.name;
    let server = start(db).await;
    let uai = |digits: u32| format!("{digits:07}{}", entcp::registry::codes::uai_check_letter(digits));
    // Saint-Martin (978) belongs to the académie de Guadeloupe (32): its row is imported, not
    // rejected as an invalid INSEE code.
    let csv = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_academie\n\
         {};Ecole Marigot;Ecole;97801;32\n",
        uai(9781001)
    );
    let resp = server.req(Method::POST, "/api/v1/imports/annuaire").bytes("text/csv", csv).send().await;
    let (status, body, _) = split(resp);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rejections"], json!([]), "{name}: {body}");
    assert_eq!(body["etablissements"]["created"], 1, "{name}: {body}");
    let (status, school, _) = server.get(&format!("/api/v1/orgs/{}", uai(9781001))).await;
    assert_eq!(status, StatusCode::OK, "{name}: {school}");
    assert_eq!(school["departement_code"], "978", "{name}: {school}");
}

backend_test!(corse_s_colleges_and_mayotte_s_lycees_are_funded_by_the_collectivite_holding_both_powers);
async fn corse_s_colleges_and_mayotte_s_lycees_are_funded_by_the_collectivite_holding_both_powers(
    db: crate::common::TestDb,
) {
    let name = db.name;
    let server = start(db).await;
    let uai = |digits: u32| format!("{digits:07}{}", entcp::registry::codes::uai_check_letter(digits));
    let (college, lycee, college_94) = (uai(6200999), uai(9760999), uai(940999));
    let csv = format!(
        "Identifiant_de_l_etablissement;Nom_etablissement;Type_etablissement;Code_commune;Code_departement;Code_academie;Code_region\n\
         {college};Collège Laetitia;Collège;2A004;02A;27;94\n\
         {lycee};Lycée de Mamoudzou;Lycée;97611;976;43;06\n\
         {college_94};Collège Francine Fromond;Collège;94034;094;24;11\n"
    );
    let resp = server.req(Method::POST, "/api/v1/imports/annuaire").bytes("text/csv", csv).send().await;
    let (status, body, _) = split(resp);
    assert_eq!((status, &body["rejections"]), (StatusCode::OK, &json!([])), "{name}: {body}");
    let server = &server;
    let funder = |uai: String| async move {
        let (status, org, _) = server.get(&format!("/api/v1/orgs/{uai}")).await;
        assert_eq!(status, StatusCode::OK, "{org}");
        let f = &org["funding_collectivite"];
        format!("{}:{}", f["kind"].as_str().unwrap_or("?"), f["code"].as_str().unwrap_or("?"))
    };
    // The Collectivité de Corse (région 94) funds collèges; Mayotte's département funds lycées.
    assert_eq!(funder(college.clone()).await, "region:94", "{name}");
    assert_eq!(funder(lycee.clone()).await, "departement:976", "{name}");
    // Elsewhere the general rule: a collège of the Val-de-Marne, its département.
    assert_eq!(funder(college_94.clone()).await, "departement:94", "{name}");
    // What each covers follows the same rule.
    let covered = |key: &'static str| async move {
        let (status, page, _) = server.get(&format!("/api/v1/orgs/{key}/covers?limit=50")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().iter().map(|o| o["code"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(covered("region:94").await, [college.as_str()], "{name}");
    assert!(covered("departement:2A").await.is_empty(), "{name}: the former département funds nothing");
    assert_eq!(covered("departement:976").await, [lycee.as_str()], "{name}");
    assert!(covered("region:06").await.is_empty(), "{name}");
    assert_eq!(covered("departement:94").await, [college_94], "{name}");
}

#[tokio::test]
async fn errors_are_problem_json_with_stable_types() {
    let server = start(common::sqlite().await).await;
    server.import_sample().await;

    let (s, b, ct) = server.get("/api/v1/nowhere").await;
    assert_problem(s, &b, &ct, StatusCode::NOT_FOUND, "not-found");
    let (s, b, ct) = server.get("/api/v1/orgs/0000000A").await;
    assert_problem(s, &b, &ct, StatusCode::NOT_FOUND, "not-found");
    let (s, b, ct) = server.get("/api/v1/orgs/94").await;
    assert_problem(s, &b, &ct, StatusCode::CONFLICT, "ambiguous-code");
    assert_eq!(b["candidates"], json!(["departement:94", "dsden:94"]));
    let (s, b, ct) = server.get("/api/v1/orgs?departement=20").await;
    assert_problem(s, &b, &ct, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert_eq!(b["errors"][0]["field"], "departement");
    let (s, b, ct) = server.get("/api/v1/orgs?limit=abc").await;
    assert_problem(s, &b, &ct, StatusCode::BAD_REQUEST, "bad-request");

    let resp = server.req(Method::DELETE, "/api/v1/orgs").send().await;
    let (s, b, ct) = split(resp);
    assert_problem(s, &b, &ct, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");

    let post = |body: &'static str, content_type: &'static str| {
        server.req(Method::POST, "/api/v1/orgs").bytes(content_type, body).send()
    };
    let (s, b, ct) = split(post("{not json", "application/json").await);
    assert_problem(s, &b, &ct, StatusCode::BAD_REQUEST, "bad-request");
    let (s, b, ct) = split(post("{}", "text/plain").await);
    assert_problem(s, &b, &ct, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let bad_siren = r#"{"kind":"epci","siren":"200059229","name":"CA"}"#;
    let (s, b, ct) = split(post(bad_siren, "application/json").await);
    assert_problem(s, &b, &ct, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert_eq!(b["errors"][0]["field"], "siren");
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("Luhn"));

    let resp = server.req(Method::POST, "/api/v1/imports/annuaire").bytes("application/json", "{}").send().await;
    let (s, b, ct) = split(resp);
    assert_problem(s, &b, &ct, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
}

#[tokio::test]
async fn epci_membership_through_the_api_changes_funding() {
    let server = start(common::sqlite().await).await;
    server.import_sample().await;
    let resp = server
        .req(Method::POST, "/api/v1/orgs")
        .json(&json!({"kind": "epci", "siren": "200054781", "name": "Métropole du Grand Paris"}))
        .send()
        .await;
    let (s, epci, _) = split(resp);
    assert_eq!(s, StatusCode::CREATED, "{epci}");
    let put = server
        .req(Method::PUT, "/api/v1/orgs/epci:200054781/members/94034")
        .json(&json!({"ent_delegated": true}))
        .send()
        .await;
    let (s, members, _) = split(put);
    assert_eq!(s, StatusCode::OK, "{members}");
    assert_eq!(members[0]["code"], "94034");
    let (_, ecole, _) = server.get("/api/v1/orgs/0940176F").await;
    assert_eq!(ecole["funding_collectivite"]["id"], epci["id"]);
    let (_, covered, _) = server.get("/api/v1/orgs/epci:200054781/covers?limit=500").await;
    assert!(covered["items"].as_array().unwrap().iter().any(|o| o["code"] == "0940176F"));
    let del = server.req(Method::DELETE, "/api/v1/orgs/epci:200054781/members/94034").send().await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let (_, ecole, _) = server.get("/api/v1/orgs/0940176F").await;
    assert_eq!(ecole["funding_collectivite"]["code"], "94034");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let server = start(common::sqlite().await).await;
    let (s, b, _) = server.get("/healthz").await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, b, _) = server.get("/readyz").await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
    let resp = server.req(Method::GET, "/healthz").header("x-request-id", "abc-123").send().await;
    assert_eq!(resp.headers["x-request-id"], "abc-123");
}

#[tokio::test]
async fn openapi_document_describes_every_mounted_route() {
    let server = start(common::sqlite().await).await;
    let (s, doc, _) = server.get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for route in routes() {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} missing from the OpenAPI document", route.method, route.path);
        assert!(op["summary"].is_string());
    }
    let list = &doc["paths"]["/api/v1/orgs"]["get"];
    let params: Vec<&str> =
        list["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in ["kind", "academie", "commune", "degree", "q", "cursor", "limit"] {
        assert!(params.contains(&name), "{name} not in {params:?}");
    }
    assert!(doc["components"]["schemas"]["Org"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}
