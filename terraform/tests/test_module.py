"""Checks of what the terraform module declares, on its parsed files (python-hcl2).

Run: python tests/test_module.py ENTCTL  (ENTCTL: the entctl binary, for `tenants rbac` and `tenants crd`).
Prints one line per check and closes with « N passed, N failed ».
"""

import glob
import json
import os
import re
import subprocess
import sys

import hcl2
import yaml
from hcl2.utils import SerializationOptions

MODULE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def parse(path):
    with open(path, encoding="utf-8") as f:
        return hcl2.load(f, serialization_options=OPTIONS)


def module_files():
    return sorted(glob.glob(os.path.join(MODULE, "*.tf")))


def all_files():
    return sorted(glob.glob(os.path.join(MODULE, "**", "*.tf"), recursive=True))


def blocks(kind, files=None):
    """(file, name, body) of every `kind` block (variable, output) of the files."""
    for path in files or module_files():
        for block in parse(path).get(kind, []):
            for name, body in block.items():
                yield path, name, body


def resources(resource_type):
    for path in module_files():
        for block in parse(path).get("resource", []):
            for name, body in block.get(resource_type, {}).items():
                yield name, body


def one(resource_type, name):
    found = [body for n, body in resources(resource_type) if n == name]
    assert len(found) == 1, f"{resource_type}.{name}: {len(found)} found"
    return found[0]


def entctl(*args):
    return subprocess.run([ENTCTL, *args], check=True, capture_output=True, text=True).stdout


def check_every_file_parses():
    files = all_files()
    assert len(files) >= 8, files
    for path in files:
        parse(path)


def check_every_variable_has_a_description_and_a_type():
    for path, name, body in blocks("variable", all_files()):
        assert str(body.get("description", "")).strip(), f"{path}: variable {name} without description"
        assert "type" in body, f"{path}: variable {name} without type"


def check_every_output_has_a_description():
    for path, name, body in blocks("output", all_files()):
        assert str(body.get("description", "")).strip(), f"{path}: output {name} without description"


def check_the_rbac_rules_equal_the_ones_entctl_exports():
    exported = json.loads(entctl("tenants", "rbac"))
    rbac_locals = {}
    for path in module_files():
        for block in parse(path).get("locals", []):
            rbac_locals.update(block)

    def as_k8s(rules):
        return [{"apiGroups": r["api_groups"], "resources": r["resources"], "verbs": r["verbs"]} for r in rules]

    assert as_k8s(rbac_locals["cluster_rules"]) == exported["cluster"], (rbac_locals["cluster_rules"], exported)
    assert as_k8s(rbac_locals["namespaced_rules"]) == exported["namespaced"], (rbac_locals["namespaced_rules"], exported)
    assert as_k8s(rbac_locals["watch_rules"]) == exported["watch"], (rbac_locals["watch_rules"], exported)
    assert as_k8s(rbac_locals["operator_rules"]) == exported["operator"], (rbac_locals["operator_rules"], exported)
    # The cluster roles grant exactly those locals, nothing written by hand beside them.
    role = one("kubernetes_cluster_role_v1", "entcp")
    assert "rule" not in role, "a rule outside the exported list"
    assert role["for_each"] == {
        "namespaces": "${local.cluster_rules}",
        "tenant_objects": "${local.namespaced_rules}",
        "deployment_watch": "${local.watch_rules}",
        "operator": "${local.operator_rules}",
    }
    assert role["dynamic"][0]["rule"]["for_each"] == "${each.value}", role["dynamic"]


def check_the_crd_file_is_the_one_entctl_prints_and_the_module_applies():
    with open(os.path.join(MODULE, "crd", "enttenant.yaml"), encoding="utf-8") as f:
        committed = f.read()
    assert committed == entctl("tenants", "crd"), "terraform/crd/enttenant.yaml differs from `entctl tenants crd`"
    crd = one("kubernetes_manifest", "enttenant_crd")
    assert "crd/enttenant.yaml" in crd["manifest"], crd
    assert yaml.safe_load(committed)["kind"] == "CustomResourceDefinition"


def container():
    deployment = one("kubernetes_deployment_v1", "entcp")
    pod = deployment["spec"][0]["template"][0]["spec"][0]
    return deployment, pod, pod["container"][0]


def check_the_deployment_has_replicas_probes_and_anti_affinity():
    deployment, pod, c = container()
    assert deployment["spec"][0]["replicas"] == "${var.replicas}"
    assert c["readiness_probe"][0]["http_get"][0]["path"] == "/readyz"
    assert c["startup_probe"][0]["http_get"][0]["path"] == "/readyz"
    assert c["liveness_probe"][0]["http_get"][0]["path"] == "/healthz"
    assert pod["affinity"][0]["pod_anti_affinity"], pod["affinity"]
    for key in ["requests", "limits"]:
        assert set(c["resources"][0][key]) == {"cpu", "memory"}, c["resources"]


def ready_timeout_ms():
    """READY_TIMEOUT of crates/ent-server/src/api/mod.rs: how long `/readyz` waits for the database."""
    source = os.path.join(MODULE, "..", "crates", "ent-server", "src", "api", "mod.rs")
    with open(source, encoding="utf-8") as f:
        text = f.read()
    found = re.search(r"const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis\((\d+)\);", text)
    assert found, "READY_TIMEOUT not found in api/mod.rs"
    return int(found.group(1))


def check_every_probe_waits_longer_than_readyz_takes_to_answer():
    _, _, c = container()
    budget = ready_timeout_ms()
    for probe in ["startup_probe", "readiness_probe", "liveness_probe"]:
        body = c[probe][0]
        timeout = int(body.get("timeout_seconds", 1))
        assert timeout * 1000 > budget, f"{probe}: timeout_seconds {timeout} s within /readyz's {budget} ms"
        assert int(body["period_seconds"]) > timeout, f"{probe}: a probe ends before the next starts"
        assert int(body["failure_threshold"]) >= 3, f"{probe}: one slow answer never restarts nor unreadies"


def check_the_pod_meets_the_restricted_pod_security_standard():
    _, pod, c = container()
    sc = c["security_context"][0]
    assert sc["read_only_root_filesystem"] is True
    assert sc["allow_privilege_escalation"] is False
    assert sc["run_as_non_root"] is True
    assert sc["capabilities"][0]["drop"] == ["ALL"]
    psc = pod["security_context"][0]
    assert psc["run_as_non_root"] is True and psc["run_as_user"] != 0
    assert psc["seccomp_profile"][0]["type"] == "RuntimeDefault"
    mounts = {m["mount_path"] for m in c["volume_mount"]}
    assert {"/tmp", "/var/lib/entcp"} <= mounts, mounts


def check_secrets_are_referenced_never_given():
    _, _, c = container()
    env = c["env"]
    database = [e for e in env if e.get("name") == "DATABASE_URL"][0]
    assert "secret_key_ref" in database["value_from"][0], database
    for path, name, body in blocks("variable"):
        assert not any(word in name for word in ["password", "token", "url"]), f"a secret as variable: {name}"
    dynamic = [d["env"] for d in c.get("dynamic", [])]
    refs = [d for d in dynamic if "value_from" in d["content"][0]]
    assert len(refs) == 2, dynamic  # SMTP credentials, OIDC client secret


def check_pdb_service_ingress_with_tls_and_optional_cloudnativepg():
    assert one("kubernetes_pod_disruption_budget_v1", "entcp")["spec"][0]["min_available"] == "${var.min_available}"
    one("kubernetes_service_v1", "entcp")
    ingress = one("kubernetes_ingress_v1", "entcp")
    assert ingress["spec"][0]["tls"][0]["secret_name"] == "${var.tls_secret_name}"
    database = one("kubernetes_manifest", "database")
    assert database["manifest"]["kind"] == "Cluster"
    assert database["manifest"]["apiVersion"] == "postgresql.cnpg.io/v1"
    assert "cloudnativepg" in database["count"]


def check_database_backups_are_optional_and_configure_cloudnativepg_when_set():
    variable = [body for _, name, body in blocks("variable") if name == "database_backup"]
    assert len(variable) == 1 and variable[0]["default"] is None, "off by default"
    database = one("kubernetes_manifest", "database")
    spec = str(database["manifest"]["spec"])
    assert "var.database_backup == null ? {} : {backup = local.database_backup}" in spec.replace('"', ""), spec
    scheduled = one("kubernetes_manifest", "database_backup")
    assert scheduled["manifest"]["kind"] == "ScheduledBackup"
    assert "var.database_backup != null" in scheduled["count"] and "cloudnativepg" in scheduled["count"]
    assert scheduled["manifest"]["spec"]["cluster"]["name"] == "${var.name}-db"
    backup = parse(os.path.join(MODULE, "database.tf"))["locals"][0]["database_backup"]
    assert "var.database_backup == null ? null" in backup, backup
    for key in ("barmanObjectStore", "destinationPath", "retentionPolicy", "s3Credentials"):
        assert key in backup, (key, backup)


def check_the_config_trusts_the_ingress_forwarded_address():
    config = parse(os.path.join(MODULE, "main.tf"))["locals"][0]["config"]
    assert "trust_forwarded_for = true" in config, config


def check_the_nginx_ingress_admits_the_app_s_bodies_and_long_routes():
    main = parse(os.path.join(MODULE, "main.tf"))["locals"][0]
    annotations = main["ingress_annotations"]
    for key in ["proxy-body-size", "proxy-read-timeout", "proxy-send-timeout"]:
        assert "nginx.ingress.kubernetes.io/" + key in annotations, annotations
    assert "server.max_body_bytes" in main["max_body_mib"], main["max_body_mib"]
    ingress = one("kubernetes_ingress_v1", "entcp")
    assert ingress["metadata"][0]["annotations"] == "${local.ingress_annotations}", ingress


def check_the_example_uses_the_module():
    example = parse(os.path.join(MODULE, "examples", "academie", "main.tf"))
    module = example["module"][0]["entcp"]
    assert module["source"] == "../..", module


CHECKS = [value for key, value in sorted(globals().items()) if key.startswith("check_")]

if __name__ == "__main__":
    ENTCTL = sys.argv[1] if len(sys.argv) > 1 else "entctl"
    passed = failed = 0
    for check in CHECKS:
        try:
            check()
            passed += 1
            print(f"PASS {check.__name__}")
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAIL {check.__name__}: {type(e).__name__}: {e}")
    print(f"terraform: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
