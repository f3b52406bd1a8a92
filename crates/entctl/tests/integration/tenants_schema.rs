//! The rendered objects of every lifecycle state, for an école, a collège and a commune
//! with options: valid, strictly, against the Kubernetes 1.29 to 1.31 OpenAPI schemas
//! (`kubernetes-validate`, installed by `.ci/kubeschema.sh`), and every pod template
//! meeting Pod Security « restricted » (the checks written here from the standard's text).

use crate::common;

use common::{admin, t0};
use entcp::clock::FixedClock;
use serde_json::{json, Value};
use std::sync::Arc;

/// The Kubernetes versions the objects must be valid for.
const KUBERNETES_VERSIONS: [&str; 3] = ["1.29.0", "1.30.0", "1.31.0"];

/// The `kubernetes-validate` command, or `None` locally without it (a failure under CI).
fn kubernetes_validate() -> Option<String> {
    match std::env::var("KUBERNETES_VALIDATE").ok().filter(|v| !v.is_empty()) {
        Some(path) => Some(path),
        None => {
            common::skip_unless_ci(
                "KUBERNETES_VALIDATE is not: .ci/kubeschema.sh must install kubernetes-validate",
                "KUBERNETES_VALIDATE unset: schema validation skipped (source .ci/kubeschema.sh)",
            );
            None
        }
    }
}

/// Capabilities a « restricted » container may add back after dropping ALL.
const RESTRICTED_ADDS: [&str; 1] = ["NET_BIND_SERVICE"];
/// Volume types « restricted » allows.
const RESTRICTED_VOLUMES: [&str; 8] =
    ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
/// Sysctls « baseline » (hence « restricted ») allows.
const SAFE_SYSCTLS: [&str; 8] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
];

/// Pod-level rules of the Pod Security Standards, « baseline » then « restricted » (v1.29–1.31).
fn pod_level_violations(pod: &Value) -> Vec<String> {
    let mut broken = Vec::new();
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[key] == true {
            broken.push(format!("host namespaces: {key}"));
        }
    }
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        let kind = volume.as_object().into_iter().flatten().map(|(k, _)| k.as_str()).find(|k| *k != "name");
        if !kind.is_some_and(|k| RESTRICTED_VOLUMES.contains(&k)) {
            broken.push(format!("volume type {kind:?} ({})", volume["name"]));
        }
    }
    for sysctl in pod["securityContext"]["sysctls"].as_array().into_iter().flatten() {
        if !SAFE_SYSCTLS.contains(&sysctl["name"].as_str().unwrap_or_default()) {
            broken.push(format!("unsafe sysctl {}", sysctl["name"]));
        }
    }
    broken
}

/// Container-level rules, with what the pod's `securityContext` lets a container inherit.
fn container_violations(pod: &Value, c: &Value) -> Vec<String> {
    let (psc, sc) = (&pod["securityContext"], &c["securityContext"]);
    let name = c["name"].as_str().unwrap_or("?");
    let mut broken = Vec::new();
    let mut fail = |rule: &str| broken.push(format!("{name}: {rule}"));
    if sc["privileged"] == true {
        fail("privileged");
    }
    if sc["windowsOptions"]["hostProcess"] == true || psc["windowsOptions"]["hostProcess"] == true {
        fail("hostProcess");
    }
    if c["ports"].as_array().into_iter().flatten().any(|p| p["hostPort"].as_i64().unwrap_or(0) != 0) {
        fail("hostPort");
    }
    if !(sc["procMount"].is_null() || sc["procMount"] == "Default") {
        fail("procMount");
    }
    for selinux in [&psc["seLinuxOptions"], &sc["seLinuxOptions"]] {
        let allowed = ["container_t", "container_init_t", "container_kvm_t", "container_engine_t"];
        let typed = selinux["type"].as_str().is_none_or(|t| allowed.contains(&t));
        if !typed || !selinux["user"].is_null() || !selinux["role"].is_null() {
            fail("seLinuxOptions");
        }
    }
    if sc["allowPrivilegeEscalation"] != false {
        fail("allowPrivilegeEscalation must be false");
    }
    let non_root = sc["runAsNonRoot"] == true || (psc["runAsNonRoot"] == true && sc["runAsNonRoot"] != false);
    if !non_root {
        fail("runAsNonRoot must be true");
    }
    if sc["runAsUser"] == 0 || psc["runAsUser"] == 0 {
        fail("runAsUser 0");
    }
    let seccomp = if sc["seccompProfile"]["type"].is_null() { &psc["seccompProfile"] } else { &sc["seccompProfile"] };
    if !(seccomp["type"] == "RuntimeDefault" || seccomp["type"] == "Localhost") {
        fail("seccompProfile must be RuntimeDefault or Localhost");
    }
    let caps = &sc["capabilities"];
    if !caps["drop"].as_array().into_iter().flatten().any(|d| d == "ALL") {
        fail("capabilities must drop ALL");
    }
    if caps["add"].as_array().into_iter().flatten().any(|a| !RESTRICTED_ADDS.iter().any(|r| a == r)) {
        fail("capabilities.add beyond NET_BIND_SERVICE");
    }
    broken
}

/// Every rule of Pod Security « restricted » a pod spec breaks.
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut broken = pod_level_violations(pod);
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in pod[list].as_array().into_iter().flatten() {
            broken.extend(container_violations(pod, c));
        }
    }
    broken
}

/// The pod templates of an object (Deployment, StatefulSet, Job, …) or its own spec (Pod).
fn pod_specs(manifest: &Value) -> Vec<&Value> {
    let candidates =
        [&manifest["spec"]["template"]["spec"], &manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]];
    let mut specs: Vec<&Value> = candidates.into_iter().filter(|s| !s.is_null()).collect();
    if manifest["kind"] == "Pod" {
        specs.push(&manifest["spec"]);
    }
    specs
}

/// `kubernetes-validate --strict` over the files, for one Kubernetes version: its complaints.
fn schema_failures(command: &str, version: &str, files: &[std::path::PathBuf]) -> Option<String> {
    let output = std::process::Command::new(command)
        .args(["--strict", "--quiet", "--kubernetes-version", version])
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (!output.status.success() || text.contains("ERROR") || text.contains("WARN")).then_some(text)
}

fn tenant_doc(slug: &str, organisation: &str, bouquet: &str, options: &[&str]) -> entcp::tenants::EntTenant {
    serde_json::from_value(json!({
        "apiVersion": "entcp.education.fr/v1",
        "kind": "EntTenant",
        "metadata": { "name": slug },
        "spec": {
            "organisation": organisation, "hostname": format!("{slug}.ent.example.fr"),
            "bouquet": bouquet, "options": options, "accounts": 1200
        }
    }))
    .unwrap()
}

backend_test!(the_objects_of_every_state_are_schema_valid_and_pod_security_restricted);
async fn the_objects_of_every_state_are_schema_valid_and_pod_security_restricted(db: crate::common::TestDb) {
    common::import_sample_with_college(&db.store).await;
    let data = tempfile::tempdir().unwrap();
    let mut config = entcp::config::Config { data_dir: data.path().to_path_buf(), ..Default::default() };
    for (name, cidr) in [("educonnect", "192.0.2.0/24"), ("gar", "198.51.100.10/32"), ("smtp-relay", "203.0.113.25/32")]
    {
        let endpoint = entcp::config::EgressEndpoint { cidrs: vec![cidr.into()], ports: vec![443, 587] };
        config.provisioning.cluster.egress.insert(name.into(), endpoint);
    }
    let state = common::app::app_state(db.store.clone(), config, Arc::new(FixedClock::new(t0())));
    let docs = [
        tenant_doc("doisneau", "0940176F", "socle-1d", &["visio", "moodle"]),
        tenant_doc("essais", "0940999A", "socle-2d", &["vie-scolaire", "collaboratif"]),
        tenant_doc("fresnes", "commune:94034", "socle-1d", &["visio", "collaboratif"]),
    ];
    let out = data.path().join("rendered");
    std::fs::create_dir_all(&out).unwrap();
    let (mut files, mut pods, mut kinds, mut seen) =
        (Vec::new(), 0, std::collections::BTreeSet::new(), std::collections::HashSet::new());
    for doc in &docs {
        let (_, tenant) = entcp::tenants::apply(&state.tenants(), &admin(), doc, None).await.unwrap();
        for status in entcp::tenants::Status::ALL {
            let tenant = entcp::tenants::Tenant { status, ..tenant.clone() };
            let objects = entcp::tenants::render(&state.tenants(), &tenant).await.unwrap();
            for o in &objects {
                for pod in pod_specs(&o.manifest) {
                    pods += 1;
                    let broken = restricted_violations(pod);
                    assert!(broken.is_empty(), "{}: {status:?} {} {}: {broken:?}", db.name, tenant.slug, o.name);
                }
                kinds.insert(o.kind.clone());
                // The same object in several states is validated once.
                if !seen.insert(o.manifest.to_string()) {
                    continue;
                }
                let file = out.join(format!("{}-{}-{}-{}.yaml", tenant.slug, status.as_str(), o.kind, o.name));
                std::fs::write(&file, entcp::provisioning::to_yaml(std::slice::from_ref(o))).unwrap();
                files.push(file);
            }
        }
    }
    assert!(pods >= 3 * 3 * 6, "{pods} pod templates: every workload state of the three tenants is rendered");
    assert!(files.iter().any(|f| f.to_string_lossy().ends_with("NetworkPolicy-portail-egress.yaml")), "{files:?}");
    for kind in ["Namespace", "Deployment", "Service", "Ingress", "NetworkPolicy", "PersistentVolumeClaim", "Secret"] {
        assert!(kinds.contains(kind), "{kind} is rendered and validated: {kinds:?}");
    }
    let Some(command) = kubernetes_validate() else { return };
    for version in KUBERNETES_VERSIONS {
        if let Some(failures) = schema_failures(&command, version, &files) {
            panic!("{}: Kubernetes {version} refuses rendered objects:\n{failures}", db.name);
        }
    }
}

#[test]
fn the_restricted_checks_catch_what_the_standard_forbids() {
    assert!(restricted_violations(&json!({
        "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
        "volumes": [{ "name": "tmp", "emptyDir": {} }],
        "containers": [{ "name": "ok", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"], "add": ["NET_BIND_SERVICE"] } } }]
    }))
    .is_empty());
    let cases = [
        (json!({ "hostNetwork": true, "containers": [] }), "hostNetwork"),
        (json!({ "hostPID": true, "containers": [] }), "hostPID"),
        (json!({ "volumes": [{ "name": "h", "hostPath": { "path": "/" } }], "containers": [] }), "hostPath"),
        (json!({ "volumes": [{ "name": "n", "nfs": { "server": "x", "path": "/" } }], "containers": [] }), "nfs"),
        (json!({ "containers": [{ "name": "bare" }] }), "allowPrivilegeEscalation"),
        (json!({ "containers": [{ "name": "bare" }] }), "runAsNonRoot"),
        (json!({ "containers": [{ "name": "bare" }] }), "seccompProfile"),
        (json!({ "containers": [{ "name": "bare" }] }), "drop ALL"),
        (json!({ "containers": [{ "name": "p", "securityContext": { "privileged": true } }] }), "privileged"),
        (
            json!({ "containers": [{ "name": "a", "securityContext": { "capabilities": { "add": ["SYS_ADMIN"] } } }] }),
            "capabilities.add",
        ),
        (
            json!({ "securityContext": { "seccompProfile": { "type": "Unconfined" } }, "containers": [{ "name": "u" }] }),
            "seccompProfile",
        ),
        (json!({ "initContainers": [{ "name": "init" }], "containers": [] }), "init: allowPrivilegeEscalation"),
        (json!({ "containers": [{ "name": "h", "ports": [{ "containerPort": 80, "hostPort": 80 }] }] }), "hostPort"),
    ];
    for (pod, rule) in cases {
        let broken = restricted_violations(&pod);
        assert!(broken.iter().any(|b| b.contains(rule)), "{rule} not caught in {pod}: {broken:?}");
    }
}
