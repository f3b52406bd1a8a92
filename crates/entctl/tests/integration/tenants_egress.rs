//! What a tenant's pods may reach outside the cluster and what they run, as the
//! `manifests` backend writes it: per-service egress to the external endpoints the
//! catalog declares (addresses from the configuration), images by digest.

use crate::common;

use common::{admin, t0};
use entcp::clock::FixedClock;
use entcp::config::EgressEndpoint;
use serde_json::json;
use std::sync::Arc;

const PORTAIL_DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The shipped services, the portail pinned by digest: an overlay catalog folder.
fn catalog_with_portail_digest(dir: &std::path::Path) {
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tenants/catalog/services.yaml"),
    )
    .unwrap();
    let image = "      image: registry.example.org/ent/portail:3.2.0\n";
    assert!(shipped.contains(image));
    let pinned = shipped.replace(image, &format!("{image}      digest: \"{PORTAIL_DIGEST}\"\n"));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("services.yaml"), pinned).unwrap();
}

fn endpoint(cidrs: &[&str], ports: &[u16]) -> EgressEndpoint {
    EgressEndpoint { cidrs: cidrs.iter().map(|c| c.to_string()).collect(), ports: ports.to_vec() }
}

fn yaml_file(dir: &std::path::Path, name: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    Some(entcp::yaml::from_str(&text).unwrap())
}

backend_test!(external_endpoints_open_to_the_services_declaring_them_and_images_go_by_digest);
async fn external_endpoints_open_to_the_services_declaring_them_and_images_go_by_digest(db: crate::common::TestDb) {
    common::import_sample(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    catalog_with_portail_digest(&data.path().join("catalog"));
    let mut config = entcp::config::Config {
        data_dir: data.path().to_path_buf(),
        catalog_dir: Some(data.path().join("catalog")),
        ..Default::default()
    };
    let egress = &mut config.provisioning.cluster.egress;
    egress.insert("educonnect".into(), endpoint(&["192.0.2.0/24"], &[443]));
    egress.insert("smtp-relay".into(), endpoint(&["203.0.113.25/32"], &[587]));
    egress.insert("gar".into(), endpoint(&["198.51.100.10/32", "198.51.100.11/32"], &[443]));
    // `academie-idp` is declared by the portail but not configured: it opens nothing.
    let state = common::app::app_state(db.store.clone(), config, Arc::new(FixedClock::new(t0())));
    let doc: entcp::tenants::EntTenant = serde_json::from_value(json!({
        "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "doisneau" },
        "spec": { "organisation": "0940176F", "hostname": "doisneau.ent.example.fr", "bouquet": "socle-1d",
                  "options": ["visio"] }
    }))
    .unwrap();
    let (_, tenant) = entcp::tenants::apply(&state.tenants(), &admin(), &doc, None).await.unwrap();
    let to = entcp::tenants::Status::Provisioning;
    entcp::tenants::transition(&state.tenants(), &admin(), &tenant, entcp::tenants::Move::to(to).overriding("essai"))
        .await
        .unwrap();
    entcp::provisioning::reconcile::pass(&state.provisioning(), None, t0()).await.unwrap();
    let dir = data.path().join("manifests/doisneau");

    let portail = yaml_file(&dir, "networkpolicy-portail-egress.yaml").expect("the portail's egress policy");
    assert_eq!(portail["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], "portail");
    assert_eq!(portail["spec"]["policyTypes"], json!(["Egress"]));
    let rules = portail["spec"]["egress"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{}: only the configured endpoint: {rules:?}", db.name);
    assert_eq!(rules[0]["to"], json!([{ "ipBlock": { "cidr": "192.0.2.0/24" } }]));
    assert_eq!(rules[0]["ports"], json!([{ "port": 443, "protocol": "TCP" }]));
    let messagerie = yaml_file(&dir, "networkpolicy-messagerie-egress.yaml").expect("the messagerie's policy");
    assert_eq!(messagerie["spec"]["egress"][0]["ports"][0]["port"], 587);
    assert_eq!(messagerie["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"], "203.0.113.25/32");
    let mediacentre = yaml_file(&dir, "networkpolicy-mediacentre-egress.yaml").expect("the médiacentre's policy");
    assert_eq!(mediacentre["spec"]["egress"][0]["to"].as_array().unwrap().len(), 2);
    // A service declaring no endpoint gets no way out; the shared policy still opens none.
    assert!(yaml_file(&dir, "networkpolicy-visio-egress.yaml").is_none());
    let shared = yaml_file(&dir, "networkpolicy-default-deny-with-allowances.yaml").unwrap().to_string();
    assert!(!shared.contains("ipBlock"), "{shared}");

    let image = |code: &str| {
        let d = yaml_file(&dir, &format!("deployment-{code}.yaml")).unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string()
    };
    assert_eq!(image("portail"), format!("registry.example.org/ent/portail:3.2.0@{PORTAIL_DIGEST}"));
    assert_eq!(image("visio"), "registry.example.org/ent/visio:2.7.8", "no digest in the catalog: by tag");
}
