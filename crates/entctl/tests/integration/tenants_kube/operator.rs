//! `entctl operator` and the Deployment watches against the mock API server: EntTenant
//! resources created, changed and deleted as `kubectl` would, their status read back
//! from the status subresource, Deployments scaled by hand; two operator processes over
//! one resource.

use super::{client_of, World};
use crate::common::{self, t0, TestDb};
use entcp::api::AppState;
use entcp::provisioning::operator;
use entcp::tenants::{self, Move, Status};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const TENANTS: &str = "/apis/entcp.education.fr/v1/namespaces/ecoles/enttenants";

fn spec(uai: &str, slug: &str, options: Value) -> Value {
    json!({ "organisation": uai, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d", "options": options })
}

impl World {
    /// Creates an EntTenant resource in namespace `ecoles`, as `kubectl apply` does.
    fn create_resource(&self, name: &str, spec: Value) {
        let mut object = json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant",
            "metadata": { "name": name, "namespace": "ecoles", "uid": format!("uid-{name}"), "generation": 1 },
            "spec": spec,
        });
        let mut objects = self.mock.objects.lock().unwrap();
        self.mock.record(TENANTS, "ADDED", &mut object);
        objects.entry(TENANTS.into()).or_default().insert(name.into(), object);
    }

    /// Deletes the resource as `kubectl delete` does (held while finalizers remain).
    fn delete_resource(&self, name: &str) {
        let mut objects = self.mock.objects.lock().unwrap();
        self.mock.delete(&mut objects, TENANTS, name);
    }

    fn resource(&self, name: &str) -> Option<Value> {
        self.stored(TENANTS, name)
    }

    /// Declares resource `name` (generation 1, no option) to the running `operator`, waits for
    /// it to be held at the gate (no convention) and for the operator's reconcile that follows
    /// its own status write (found unchanged: the operator is idle), then lets the tenant
    /// through (domain call): the next generation is applied.
    async fn past_the_gate(&self, name: &str, operator: &operator::Context) -> tenants::Tenant {
        self.create_resource(name, spec("0940176F", name, json!([])));
        self.until(|w| is(&w.resource(name), "GovernanceBlocked", "True")).await;
        self.until(|_| operator.figures().unchanged >= 1).await;
        self.let_through(name).await
    }

    /// An admin lets tenant `name` through the gate (domain call: the API refuses a tenant a
    /// resource declares).
    async fn let_through(&self, name: &str) -> tenants::Tenant {
        let tenant = self.get(name).await;
        let step = Move::to(Status::Provisioning).overriding("essai");
        tenants::transition(&self.state.tenants(), &common::admin(), &tenant, step).await.unwrap()
    }

    /// Starts `entctl operator`'s controller on the mock; stopped with the returned token.
    async fn start_operator(&self) -> (tokio_util::sync::CancellationToken, Arc<operator::Context>) {
        start_operator_of(&self.state).await
    }

    /// Waits until each operator wrote, or found right, the status of resource `name` as the
    /// mock holds it now (its `resourceVersion` or a later one): each has seen the last change.
    async fn until_confirmed(&self, name: &str, operators: &[&Arc<operator::Context>]) {
        let version = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
        let now = version(self.resource(name).unwrap()["metadata"]["resourceVersion"].as_str()).unwrap();
        self.until(|_| operators.iter().all(|o| version(o.figures().confirmed.as_deref()).is_some_and(|v| v >= now)))
            .await;
    }
}

/// Starts the controller of `entctl operator` of the process `state` on the mock.
async fn start_operator_of(state: &AppState) -> (tokio_util::sync::CancellationToken, Arc<operator::Context>) {
    let (shutdown, context, _) = start_operator_task(state).await;
    (shutdown, context)
}

/// [`start_operator_of`], with the controller's task (to wait for its end once stopped).
async fn start_operator_task(
    state: &AppState,
) -> (tokio_util::sync::CancellationToken, Arc<operator::Context>, tokio::task::JoinHandle<()>) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let context = operator::Context::new(client_of(state).await, state.tenants());
    let task = tokio::spawn(operator::run(context.clone(), shutdown.clone()));
    (shutdown, context, task)
}

/// Whether the resource is Ready at `generation`.
fn ready_at(resource: &Option<Value>, generation: i64) -> bool {
    is(resource, "Ready", "True") && resource.as_ref().is_some_and(|r| r["status"]["observedGeneration"] == generation)
}

/// Whether the resource is rolling out (`Progressing`, not `Ready`) at `generation`.
fn progressing_at(resource: &Option<Value>, generation: i64) -> bool {
    is(resource, "Progressing", "True")
        && is(resource, "Ready", "False")
        && resource.as_ref().is_some_and(|r| r["status"]["observedGeneration"] == generation)
}

/// The condition `kind` of a resource's status.
fn condition(resource: &Value, kind: &str) -> Value {
    let conditions = resource["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.into_iter().find(|c| c["type"] == kind).unwrap_or(Value::Null)
}

fn is(resource: &Option<Value>, kind: &str, status: &str) -> bool {
    resource.as_ref().is_some_and(|r| condition(r, kind)["status"] == status)
}

backend_test!(an_enttenant_resource_is_governed_provisioned_changed_and_decommissioned_by_the_operator);
async fn an_enttenant_resource_is_governed_provisioned_changed_and_decommissioned_by_the_operator(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    let (stop, operator) = w.start_operator().await;

    // No convention covers the école: held at the gate, shown as GovernanceBlocked.
    w.create_resource("doisneau", spec("0940176F", "doisneau", json!([])));
    w.until(|w| is(&w.resource("doisneau"), "GovernanceBlocked", "True")).await;
    let blocked = w.resource("doisneau").unwrap();
    assert_eq!(blocked["status"]["phase"], "Blocked", "{blocked}");
    assert_eq!(blocked["status"]["observedGeneration"], 1);
    assert_eq!(condition(&blocked, "GovernanceBlocked")["reason"], "NoConvention");
    assert!(condition(&blocked, "GovernanceBlocked")["message"].as_str().unwrap().contains("convention"));
    assert_eq!(condition(&blocked, "Ready")["status"], "False");
    assert_eq!(blocked["metadata"]["finalizers"], json!([operator::FINALIZER]));
    let tenant = w.get("doisneau").await;
    assert_eq!(tenant.status, Status::Requested);
    assert_eq!(tenant.declared_by.as_deref(), Some("EntTenant ecoles/doisneau"));
    assert!(w.stored("/api/v1/namespaces", "ent-doisneau").is_none(), "nothing applied behind the gate");

    // The tenant is read-only in the API: a change or a lifecycle move is a 409 of its own type
    // naming the resource and how to change it.
    let base = common::serve(w.state.store.clone(), std::sync::Arc::new(entcp::clock::FixedClock::new(t0()))).await;
    let token =
        common::token_for(&w.state.store, "admin-operateur@example.fr", entcp::kernel::roles::Role::Admin, None).await;
    let api = common::client_with(&token);
    let doc = json!({ "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": "doisneau" },
                      "spec": spec("0940176F", "doisneau", json!(["moodle"])) });
    let refused = api.post(format!("{base}/api/v1/tenants")).json(&doc).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    assert!(refused.headers()["content-type"].to_str().unwrap().starts_with("application/problem+json"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "urn:entcp:problem:declared-by-resource", "{body}");
    assert_eq!(body["title"], "Tenant géré par une ressource Kubernetes", "{body}");
    assert_eq!(body["declared_by"], "EntTenant ecoles/doisneau", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("EntTenant ecoles/doisneau") && detail.contains("kubectl apply"), "{body}");
    let moved = api
        .post(format!("{base}/api/v1/tenants/doisneau/transition"))
        .json(&json!({ "to": "provisioning", "override_reason": "essai" }))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 409);
    let body: Value = moved.json().await.unwrap();
    assert_eq!(body["type"], "urn:entcp:problem:declared-by-resource", "{body}");
    assert_eq!(w.get("doisneau").await.options, Vec::<String>::new(), "the API changed nothing");

    // An admin lets it through the gate (domain call: the API refuses, as shown above), then
    // the resource's spec changes: applied, Ready at the new generation.
    w.let_through("doisneau").await;
    // Another client changes the resource just before the operator's status patch: the patch,
    // made over the version the operator read, is refused (409), the resource read again and
    // the status written over the new version, the other client's change kept.
    *w.mock.deployments_available.lock().unwrap() = true;
    *w.mock.foreign_write_before.lock().unwrap() = Some(format!("{TENANTS}/doisneau/status"));
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| ready_at(&w.resource("doisneau"), 2)).await;
    let ready = w.resource("doisneau").unwrap();
    assert!(w.mock.foreign_write_before.lock().unwrap().is_none(), "the status patch met the other change");
    assert_eq!(ready["metadata"]["annotations"]["exemple.fr/autre-client"], "passé avant", "{ready}");
    // (A later reconcile may start from a read older than the write, and meet a conflict too.)
    assert!(operator.figures().conflicts >= 1, "{:?}", operator.figures());
    let reread =
        w.mock.requests.lock().unwrap().iter().any(|r| r.method == "GET" && r.path == format!("{TENANTS}/doisneau"));
    assert!(reread, "the resource read again after the conflict");
    assert_eq!(ready["status"]["phase"], "active", "{ready}");
    assert_eq!(ready["metadata"]["generation"], 2, "a status write does not bump the generation");
    assert_eq!(condition(&ready, "GovernanceBlocked")["status"], "False");
    assert_eq!(condition(&ready, "Ready")["reason"], "Available");
    assert_eq!(w.get("doisneau").await.options, ["moodle"]);
    w.assert_live_as_rendered("doisneau").await;

    // A Deployment scaled by hand is seen through the watch (the resync period is 10 min,
    // the clock is fixed) and put back.
    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    let rendered = w.stored(deployments, "portail").unwrap()["spec"]["replicas"].clone();
    w.edit(deployments, "portail", |d| d["spec"]["replicas"] = json!(0));
    w.until(|w| w.stored(deployments, "portail").unwrap()["spec"]["replicas"] == rendered).await;

    // Deleting the resource decommissions the tenant, then the finalizer goes and the resource with it.
    w.delete_resource("doisneau");
    w.until(|w| w.resource("doisneau").is_none()).await;
    let gone = w.get("doisneau").await;
    assert_eq!(gone.status, Status::Decommissioning);
    // The withdrawal names its reason: the resource deleted.
    let events = tenants::events(&w.state.store, &gone.id).await.unwrap();
    let withdrawn = events.iter().rfind(|e| e.kind == "decommissioning").expect("the withdrawal's event");
    let said = "actif → en retrait : ressource Kubernetes EntTenant ecoles/doisneau supprimée du cluster";
    assert_eq!(withdrawn.message, said);
    assert_eq!(gone.declared_by, None, "the tenant returns to the API");
    assert!(w.stored(deployments, "portail").is_none(), "the workloads are removed");
    assert!(w.event_kinds("doisneau").await.contains(&"released".to_string()));
    stop.cancel();

    // Every call of the operator and its watches (outside the tenants' namespaces, which the
    // backend's own RBAC test covers) is granted by the exported `watch` and `operator`
    // rules, and each of their grants is used.
    let rbac = entcp::provisioning::kube::rbac();
    let rules: Vec<_> = rbac.watch.iter().chain(&rbac.operator).collect();
    let mut used = std::collections::BTreeSet::new();
    for request in w.take_requests() {
        if request.method == "PATCH" && request.path.ends_with("/status") {
            // Each status write names the version it was computed from.
            assert!(request.body["metadata"]["resourceVersion"].is_string(), "{request:?}");
        }
        let Some((group, resource, verb)) = operator_permission(&request) else { continue };
        let granted = rules
            .iter()
            .any(|r| r.api_groups.contains(&group) && r.resources.contains(&resource) && r.verbs.contains(&verb));
        assert!(granted, "{verb} {resource} not granted: {request:?}");
        used.insert((resource, verb));
    }
    for rule in &rules {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                assert!(used.contains(&(resource.clone(), verb.clone())), "{verb} {resource} granted, never used");
            }
        }
    }
}

/// What a call of the operator or a watch needs in RBAC terms (API group, resource, verb);
/// `None` for the calls inside the tenants' `ent-*` namespaces.
fn operator_permission(request: &super::Request) -> Option<(String, String, String)> {
    let parts: Vec<&str> = request.path.strip_prefix("/apis/")?.split('/').collect();
    let (group, resource, item) = match parts.as_slice() {
        [group, _, resource] => (group, resource.to_string(), false),
        [group, _, "namespaces", ns, resource, _] if !ns.starts_with("ent-") => (group, resource.to_string(), true),
        [group, _, "namespaces", ns, resource, _, sub] if !ns.starts_with("ent-") => {
            (group, format!("{resource}/{sub}"), true)
        }
        _ => return None,
    };
    let watching = request.query.get("watch").is_some_and(|v| v == "true" || v == "1");
    let verb = match (request.method.as_str(), watching, item) {
        ("GET", true, _) => "watch",
        ("GET", false, false) => "list",
        ("GET", false, true) => "get",
        ("PATCH", _, _) => "patch",
        (method, _, _) => panic!("unexpected {method} {}", request.path),
    };
    Some((group.to_string(), resource, verb.to_string()))
}

backend_test!(a_resource_named_like_a_tenant_of_the_api_is_not_adopted);
async fn a_resource_named_like_a_tenant_of_the_api_is_not_adopted(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    w.apply("doisneau", "0940176F", json!([])).await;
    let (stop, _) = w.start_operator().await;
    w.create_resource("doisneau", spec("0940176F", "doisneau", json!(["moodle"])));
    w.until(|w| is(&w.resource("doisneau"), "GovernanceBlocked", "True")).await;
    let blocked = w.resource("doisneau").unwrap();
    assert_eq!(condition(&blocked, "GovernanceBlocked")["reason"], "NameTaken", "{blocked}");
    assert!(condition(&blocked, "GovernanceBlocked")["message"].as_str().unwrap().contains("ne l'adopte pas"));
    let tenant = w.get("doisneau").await;
    assert_eq!((tenant.declared_by, tenant.options), (None, Vec::<String>::new()), "the API's tenant is untouched");

    // Deleting the resource leaves the API's tenant alone.
    w.delete_resource("doisneau");
    w.until(|w| w.resource("doisneau").is_none()).await;
    assert_eq!(w.get("doisneau").await.status, Status::Requested);
    stop.cancel();
}

backend_test!(serves_watch_queues_a_tenant_whose_deployment_was_scaled_by_hand);
async fn serves_watch_queues_a_tenant_whose_deployment_was_scaled_by_hand(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    w.tenant_applied("doisneau", "0940176F", json!(["moodle"])).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let queue = tokio::spawn(entcp::provisioning::reconcile::run_queue(w.state.provisioning(), shutdown.clone()));
    let client = w.kube_client().await;
    tokio::spawn(entcp::provisioning::watch::run(w.state.provisioning(), client, shutdown.clone()));
    // The watch is up once it asked the mock for Deployment events.
    w.until(|w| {
        w.mock.requests.lock().unwrap().iter().any(|r| r.query.get("watch").is_some_and(|v| v == "true" || v == "1"))
    })
    .await;

    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    let rendered = w.stored(deployments, "portail").unwrap()["spec"]["replicas"].clone();
    w.edit(deployments, "portail", |d| d["spec"]["replicas"] = json!(0));
    // The clock is fixed at the last apply: no resync is due; only the watch can bring it back.
    w.until(|w| w.stored(deployments, "portail").unwrap()["spec"]["replicas"] == rendered).await;
    w.assert_live_as_rendered("doisneau").await;
    shutdown.cancel();
    queue.await.unwrap();
}

backend_test!(deployment_events_on_two_serve_replicas_apply_a_settled_tenant_only_when_a_deployment_drifted);
async fn deployment_events_on_two_serve_replicas_apply_a_settled_tenant_only_when_a_deployment_drifted(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    w.tenant_applied("doisneau", "0940176F", json!(["moodle"])).await;
    assert_eq!(w.get("doisneau").await.provisioning_state.observed.as_deref(), Some("progressing"));
    w.take_requests();

    // Two `serve` replicas, each with its work queue and its Deployment watch.
    let (b, b_store) = w.other_process(chrono::Duration::zero()).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut queues = Vec::new();
    for state in [w.state.clone(), b.clone()] {
        queues.push(tokio::spawn(entcp::provisioning::reconcile::run_queue(state.provisioning(), shutdown.clone())));
        let client = client_of(&state).await;
        tokio::spawn(entcp::provisioning::watch::run(state.provisioning(), client, shutdown.clone()));
    }
    let watching = |w: &World, token: &str| {
        let requests = w.mock.requests.lock().unwrap();
        requests
            .iter()
            .any(|r| r.authorization == token && r.query.get("watch").is_some_and(|v| v == "true" || v == "1"))
    };
    w.until(|w| watching(w, "Bearer jeton-de-test") && watching(w, "Bearer jeton-de-test-b")).await;
    let writes = |w: &World, path: &str| {
        let requests = w.mock.requests.lock().unwrap();
        requests
            .iter()
            .filter(|r| r.method == "PATCH" && !r.query.contains_key("dryRun") && r.path.starts_with(path))
            .count()
    };
    let quiet = || async {
        w.until(|w| w.state.reconciler.depth.load(Ordering::SeqCst) + b.reconciler.depth.load(Ordering::SeqCst) == 0)
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };

    // The rollout completes: the Deployment controller writes the status (no spec change). The
    // events (the watches' first lists, this one) reach both replicas: the tenant is read back
    // (available), never applied again.
    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    *w.mock.deployments_available.lock().unwrap() = true;
    w.edit(deployments, "portail", |d| d["status"] = json!({ "replicas": 1, "availableReplicas": 1 }));
    let available = || async { w.get("doisneau").await.provisioning_state.observed.as_deref() == Some("available") };
    w.until_stored("the tenant read back available", available).await;
    quiet().await;
    assert_eq!(writes(&w, "/"), 0, "no apply for a settled tenant's events, on either replica");

    // Scaled by hand: drifted from the render, put back at once (the clock is fixed, no resync is
    // due); the event of that repair holds the render again: at most one apply per replica.
    let rendered = w.stored(deployments, "portail").unwrap()["spec"]["replicas"].clone();
    w.edit(deployments, "portail", |d| d["spec"]["replicas"] = json!(0));
    w.until(|w| w.stored(deployments, "portail").unwrap()["spec"]["replicas"] == rendered).await;
    quiet().await;
    let portail = format!("{deployments}/portail");
    assert!((1..=2).contains(&writes(&w, &portail)), "{} applies of portail", writes(&w, &portail));
    shutdown.cancel();
    for queue in queues {
        queue.await.unwrap();
    }
    b_store.close().await;
}

backend_test!(two_operators_over_one_resource_write_its_status_once_per_generation_under_the_leases);
async fn two_operators_over_one_resource_write_its_status_once_per_generation_under_the_leases(db: TestDb) {
    // Leases of 3 s (a held tenant is waited for 3 s); the second process's clock is 1 s
    // ahead: a condition it rewrote from a stale read would carry its own lastTransitionTime.
    let w = World::on(db, |c| c.provisioning.reconcile.lease_seconds = 3).await;
    let (other, other_store) = w.other_process(chrono::Duration::seconds(1)).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    let (stop_a, a) = start_operator_of(&w.state).await;
    let (stop_b, b) = start_operator_of(&other).await;
    // One status write per generation so far, whichever process wrote it.
    let written =
        |w: &World| -> Vec<i64> { w.mock.status_writes.lock().unwrap().iter().map(|s| s.generation).collect() };

    // Generation 1: held at the gate (no convention).
    w.create_resource("doisneau", spec("0940176F", "doisneau", json!([])));
    w.until(|w| is(&w.resource("doisneau"), "GovernanceBlocked", "True")).await;
    w.until_confirmed("doisneau", &[&a, &b]).await;
    assert_eq!(written(&w), [1], "{:#?}", w.mock.status_writes.lock().unwrap());

    // Generation 2: through the gate, applied, Ready.
    let tenant = w.get("doisneau").await;
    w.let_through("doisneau").await;
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| ready_at(&w.resource("doisneau"), 2)).await;
    w.until_confirmed("doisneau", &[&a, &b]).await;
    assert_eq!(written(&w), [1, 2], "{:#?}", w.mock.status_writes.lock().unwrap());

    // Generation 3 while a `serve` replica holds the tenant's lease: neither operator writes
    // the tenant nor its status; once the lease is released, the status follows the change.
    let held = |o: &operator::Context| o.figures().tenant_held;
    let before = held(&a) + held(&b);
    hold_tenant_lease(&w, &tenant, "une-replique-de-serve", t0() + chrono::Duration::minutes(5)).await;
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!([]));
    w.until(|_| held(&a) + held(&b) > before).await;
    let waiting = w.resource("doisneau").unwrap();
    assert_eq!(waiting["status"]["observedGeneration"], 2, "no status while the tenant is held: {waiting}");
    assert!(w.mock.status_writes.lock().unwrap().iter().all(|s| s.generation < 3));
    sqlx::query("DELETE FROM tenant_leases WHERE holder = 'une-replique-de-serve'")
        .execute(w.state.store.pool())
        .await
        .unwrap();
    w.until(|w| ready_at(&w.resource("doisneau"), 3)).await;
    w.until_confirmed("doisneau", &[&a, &b]).await;
    stop_a.cancel();
    stop_b.cancel();
    assert_eq!(w.get("doisneau").await.options, Vec::<String>::new());
    w.assert_live_as_rendered("doisneau").await;

    // One status write per generation; a condition's lastTransitionTime moves only with its status.
    let writes = w.mock.status_writes.lock().unwrap().clone();
    assert_eq!(written(&w), [1, 2, 3], "{writes:#?}");
    for pair in writes.windows(2) {
        for kind in ["Ready", "Progressing", "Degraded", "GovernanceBlocked"] {
            let (before, after) = (
                condition(&json!({ "status": pair[0].status }), kind),
                condition(&json!({ "status": pair[1].status }), kind),
            );
            if before["status"] == after["status"] {
                assert_eq!(before["lastTransitionTime"], after["lastTransitionTime"], "{kind}: {writes:#?}");
            }
        }
    }
    let (fa, fb) = (a.figures(), b.figures());
    assert_eq!(fa.written + fb.written, 3, "{fa:?} {fb:?}");
    let writers: std::collections::BTreeSet<&str> = writes.iter().map(|s| s.writer.as_str()).collect();
    assert!(writers.iter().all(|w| w.starts_with("Bearer jeton-de-test")), "{writers:?}");
    other_store.close().await;
}

/// A lease on the tenant taken by another process (`holder`) until `until`, as soon as it is
/// free (an operator's reconcile may hold it a moment, after its own status write).
async fn hold_tenant_lease(w: &World, tenant: &tenants::Tenant, holder: &str, until: chrono::DateTime<chrono::Utc>) {
    let taken = || async {
        let taken = sqlx::query(
            "INSERT INTO tenant_leases (tenant_id, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(&tenant.id)
        .bind(holder)
        .bind(entcp::store::timestamp(until))
        .execute(w.state.store.pool())
        .await
        .unwrap();
        taken.rows_affected() == 1
    };
    w.until_stored(&format!("{holder} takes the lease of {} once free", tenant.slug), taken).await;
}

/// Asserts that, among `requests`, the status of resource `name` first claimed `generation`
/// after the first delete in the tenant's namespace (the prune that ends an apply).
fn assert_claimed_once_applied(requests: &[super::Request], name: &str, generation: i64) {
    let status = format!("{TENANTS}/{name}/status");
    let claimed = requests
        .iter()
        .position(|r| r.method == "PATCH" && r.path == status && r.body["status"]["observedGeneration"] == generation)
        .unwrap_or_else(|| panic!("no status claims generation {generation}: {requests:#?}"));
    let inside = format!("/namespaces/ent-{name}/");
    let pruned = requests.iter().position(|r| r.method == "DELETE" && r.path.contains(&inside));
    assert!(
        pruned.is_some_and(|pruned| pruned < claimed),
        "generation {generation} claimed (request {claimed}) before it was applied ({pruned:?}): {requests:#?}"
    );
}

backend_test!(a_status_never_claims_a_generation_whose_pass_a_held_tenant_lease_deferred);
async fn a_status_never_claims_a_generation_whose_pass_a_held_tenant_lease_deferred(db: TestDb) {
    // Leases of 3 s: the operator's pass waits 3 s for a tenant another process holds, then
    // gives up (deferred).
    let w = World::on(db, |c| c.provisioning.reconcile.lease_seconds = 3).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    let (stop, operator) = w.start_operator().await;
    let tenant = w.past_the_gate("doisneau", &operator).await;
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| ready_at(&w.resource("doisneau"), 2)).await;
    w.until_confirmed("doisneau", &[&operator]).await;

    // A `serve` replica holds the tenant's lease until a minute past t0 (a slow apply), and
    // generation 3 comes: the operator declares it, then its pass waits for the lease ...
    hold_tenant_lease(&w, &tenant, "une-replique-de-serve", t0() + chrono::Duration::minutes(1)).await;
    w.take_requests();
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!([]));
    let declared = || async { w.get("doisneau").await.options.is_empty() };
    w.until_stored("the operator declares generation 3 (no options)", declared).await;
    // ... and meanwhile time passes the lease's end (the replica died): when the pass gives
    // up, the tenant's lease is free and its status writable, generation 3 not applied. (The
    // pause only puts the clock's move inside the pass's 3 s wait; the assertions below hold
    // whenever it comes.)
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    w.clock.set(t0() + chrono::Duration::minutes(2));
    w.until(|w| ready_at(&w.resource("doisneau"), 3)).await;
    w.until_confirmed("doisneau", &[&operator]).await;
    stop.cancel();

    // `observedGeneration` 3 means generation 3 was reconciled: claimed only after its apply
    // (which removed moodle), never from the verdict of the pass that was deferred.
    let requests = w.take_requests();
    assert_claimed_once_applied(&requests, "doisneau", 3);
    let ready = w.resource("doisneau").unwrap();
    assert_eq!(condition(&ready, "Ready")["observedGeneration"], 3, "{ready}");
    w.assert_live_as_rendered("doisneau").await;
}

backend_test!(a_status_written_again_after_a_conflict_keeps_the_generation_its_pass_applied);
async fn a_status_written_again_after_a_conflict_keeps_the_generation_its_pass_applied(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    let (stop, operator) = w.start_operator().await;
    w.past_the_gate("doisneau", &operator).await;
    // Generation 2 is applied; `kubectl apply` brings generation 3 just before the operator's
    // status patch: refused (409), the resource read again, at generation 3 whose pass has not run.
    let generation_3 = spec("0940176F", "doisneau", json!([]));
    *w.mock.foreign_spec_before.lock().unwrap() = Some((format!("{TENANTS}/doisneau/status"), generation_3));
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| ready_at(&w.resource("doisneau"), 3)).await;
    w.until_confirmed("doisneau", &[&operator]).await;
    stop.cancel();
    assert!(w.mock.foreign_spec_before.lock().unwrap().is_none(), "the status patch met kubectl's change");
    assert!(operator.figures().conflicts >= 1, "{:?}", operator.figures());

    // The status written over generation 3 after the conflict says what was reconciled:
    // generation 2 (Ready, moodle live); generation 3 is claimed once applied.
    let writes = w.mock.status_writes.lock().unwrap().clone();
    let after_conflict = writes.iter().find(|s| s.generation == 3).expect("a status written at generation 3");
    assert_eq!(after_conflict.status["observedGeneration"], 2, "{writes:#?}");
    let conditions = after_conflict.status["conditions"].as_array().unwrap();
    assert!(conditions.iter().all(|c| c["observedGeneration"] == 2), "{writes:#?}");
    let requests = w.take_requests();
    assert_claimed_once_applied(&requests, "doisneau", 3);
    assert_eq!(w.get("doisneau").await.options, Vec::<String>::new());
    w.assert_live_as_rendered("doisneau").await;
}

backend_test!(a_second_operator_takes_over_a_resource_once_the_leases_of_one_that_died_ran_out);
async fn a_second_operator_takes_over_a_resource_once_the_leases_of_one_that_died_ran_out(db: TestDb) {
    // Leases of 3 s; the second process's clock is moved past them once the first died.
    let w = World::on(db, |c| c.provisioning.reconcile.lease_seconds = 3).await;
    let clock_b = Arc::new(entcp::clock::FixedClock::new(t0()));
    let (other, other_store) = w.other_process_on(clock_b.clone()).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    let (stop_a, a) = w.start_operator().await;
    w.past_the_gate("doisneau", &a).await;

    // Operator A applies generation 2 and its portail PATCH is never answered: A holds the
    // resource's lease and the tenant's. Then A dies without releasing them.
    let portail = "/apis/apps/v1/namespaces/ent-doisneau/deployments/portail";
    *w.mock.hang.lock().unwrap() = Some(portail.into());
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| w.mock.requests.lock().unwrap().iter().any(|r| r.path == portail)).await;
    stop_a.cancel();
    let of_a = "SELECT COUNT(*) FROM tenant_leases WHERE holder = $1";
    let holder_a = w.state.reconciler.holder.clone();
    assert_eq!(common::count(&w.state.store, of_a, &[&holder_a]).await, 2, "the resource's lease and the tenant's");
    *w.mock.hang.lock().unwrap() = None;

    // Operator B meets the resource's lease still running: it leaves the resource and looks again.
    let (stop_b, b) = start_operator_of(&other).await;
    w.until(|_| b.figures().resource_held >= 1).await;
    assert_eq!(w.resource("doisneau").unwrap()["status"]["observedGeneration"], 1);

    // Once A's leases ran out, B takes the resource over: generation 2 applied, its status B's.
    clock_b.set(t0() + chrono::Duration::minutes(2));
    w.until(|w| ready_at(&w.resource("doisneau"), 2)).await;
    w.until_confirmed("doisneau", &[&b]).await;
    stop_b.cancel();
    let last = w.mock.status_writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.generation, last.writer.as_str()), (2, "Bearer jeton-de-test-b"), "{last:?}");
    assert_eq!(common::count(&w.state.store, of_a, &[&holder_a]).await, 0, "A's leases taken over");
    assert_eq!(w.get("doisneau").await.status, Status::Active);
    w.assert_live_as_rendered("doisneau").await;
    other_store.close().await;
}

/// Waits (at most a minute) until `done` holds while `operator` runs; its log if it stopped.
async fn while_running(
    w: &World,
    operator: &mut std::process::Child,
    log: &std::path::Path,
    what: &str,
    done: impl Fn(&World) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done(w) {
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        assert!(operator.try_wait().unwrap().is_none(), "entctl operator exited before {what}: {}", log());
        assert!(std::time::Instant::now() < deadline, "not within 60 s: {what}: {}", log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

backend_test!(entctl_operator_exits_zero_on_sigterm_releasing_the_leases_of_the_write_it_cut_short);
async fn entctl_operator_exits_zero_on_sigterm_releasing_the_leases_of_the_write_it_cut_short(db: TestDb) {
    // The binary of this build, on the world's database and mock API server (its kubeconfig);
    // requests that never time out here, so that only the signal ends the write.
    let w = World::on(db, |_| {}).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    let dir = w._dir.path();
    let config = dir.join("operator.yaml");
    std::fs::write(
        &config,
        format!(
            "provisioning:\n  backend: kube\n  kube:\n    kubeconfig: {}\n  reconcile:\n    \
             request_timeout_seconds: 600\n    tenant_deadline_seconds: 600\n",
            dir.join("kubeconfig").display()
        ),
    )
    .unwrap();
    let log = dir.join("operator.log");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_entctl"));
    for var in ["DATABASE_URL", "ENTCP_CONFIG", "ENTCP_LOG_FORMAT", "RUST_LOG"] {
        command.env_remove(var);
    }
    let mut operator = command
        .current_dir(dir)
        .env("ENTCP_CONFIG", &config)
        .env("ENTCP_DATABASE_URL", &w._db.url)
        .env("ENTCP_DATA_DIR", dir)
        .env("ENTCP_LOG_LEVEL", "info")
        .arg("operator")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Through the gate, then generation 2 applied: its portail PATCH is never answered, the
    // operator holds the resource's lease and the tenant's.
    w.create_resource("doisneau", spec("0940176F", "doisneau", json!([])));
    while_running(&w, &mut operator, &log, "GovernanceBlocked", |w| {
        is(&w.resource("doisneau"), "GovernanceBlocked", "True")
    })
    .await;
    w.let_through("doisneau").await;
    let portail = "/apis/apps/v1/namespaces/ent-doisneau/deployments/portail";
    *w.mock.hang.lock().unwrap() = Some(portail.into());
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    while_running(&w, &mut operator, &log, "the portail PATCH", |w| {
        w.mock.requests.lock().unwrap().iter().any(|r| r.path == portail)
    })
    .await;
    let leases = "SELECT COUNT(*) FROM tenant_leases";
    assert_eq!(common::count(&w.state.store, leases, &[]).await, 2, "the resource's lease and the tenant's");

    // A rolling update's SIGTERM: the write is cut short, both leases released, exit 0.
    let signalled = std::process::Command::new("kill").args(["-TERM", &operator.id().to_string()]).status().unwrap();
    assert!(signalled.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = operator.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "still running a minute after SIGTERM");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exit.success(), "{exit:?}: {log}");
    assert_eq!(common::count(&w.state.store, leases, &[]).await, 0, "released at exit: {log}");
    assert_eq!(w.resource("doisneau").unwrap()["status"]["observedGeneration"], 1, "nothing claimed of generation 2");
}

backend_test!(after_a_slow_read_back_racing_a_new_generation_the_status_shows_what_the_lease_holder_applied);
async fn after_a_slow_read_back_racing_a_new_generation_the_status_shows_what_the_lease_holder_applied(db: TestDb) {
    // Leases of 3 s: a writer meeting a held tenant waits 3 s, then defers it. The operator
    // runs in processes of its own (own connections, token `jeton-de-test-b`); process A, the
    // world's, is a `serve` replica reconciling the same tenant.
    let w = World::on(db, |c| c.provisioning.reconcile.lease_seconds = 3).await;
    let (b, b_store) = w.other_process(chrono::Duration::zero()).await;
    let (stop, operator, task) = start_operator_task(&b).await;
    w.past_the_gate("doisneau", &operator).await;

    // Generation 2 applied by the operator: its rollout under way. Then the operator's pod
    // goes (a rollout of its own): stopped, its leases released as `entctl operator` does at exit.
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| progressing_at(&w.resource("doisneau"), 2)).await;
    w.until_confirmed("doisneau", &[&operator]).await;
    stop.cancel();
    task.await.unwrap();
    entcp::provisioning::lease::release_all(&b.provisioning()).await.unwrap();
    b_store.close().await;
    // What follows happens a minute later: a lease take the stop cut short mid-statement still
    // lands after that release (as in production, where it runs out after its 3 s), and the
    // new pod's writers, on clocks that stand still, would otherwise wait for it for ever.
    let later = chrono::Duration::minutes(1);

    // Process A reads the rollout back: the Deployments are available when its read comes,
    // and its answer is slow.
    *w.mock.deployments_available.lock().unwrap() = true;
    let open = w.hold_next_read("Bearer jeton-de-test", "/apis/apps/v1/namespaces/ent-doisneau/deployments");
    let a = tokio::spawn({
        let state = w.state.clone();
        async move { entcp::provisioning::reconcile::pass(&state.provisioning(), None, t0() + later).await.unwrap() }
    });
    w.until_read_held().await;

    // Meanwhile generation 3 comes (another option, a new rollout) and the operator's new pod
    // starts: it declares generation 3; its pass waits for the tenant's lease and leaves it to a
    // later reconcile, or (were the read-back not under the lease) applies it, writes its
    // status and finds it right after.
    *w.mock.deployments_available.lock().unwrap() = false;
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle", "visio"]));
    let (c, c_store) = w.other_process(later).await;
    let (stop, operator) = start_operator_of(&c).await;
    w.until(|_| {
        let now = operator.figures();
        now.tenant_held > 0 || (now.written > 0 && now.unchanged > 0)
    })
    .await;

    // A's answer comes last. Then the operator reconciles again (a change of the resource
    // that is not its spec): its status is the one of what the tenant's lease holder recorded.
    open.add_permits(1);
    let ra = a.await.unwrap();
    assert_eq!(ra.failed, 0, "{ra:?}");
    w.edit(TENANTS, "doisneau", |r| r["metadata"]["annotations"]["exemple.fr/relance"] = json!("1"));
    w.until(|w| w.resource("doisneau").unwrap()["status"]["observedGeneration"] == 3).await;
    w.until_confirmed("doisneau", &[&operator]).await;
    stop.cancel();

    // Generation 3 is under way (none of its Deployments available yet): the last status says
    // so, never the « available » A read before that apply.
    let deployments = w.live("ent-doisneau").keys().filter(|p| p.contains("/deployments/")).count();
    let under_way = format!("0/{deployments} déploiements disponibles");
    let writes = w.mock.status_writes.lock().unwrap().clone();
    let last = writes.last().expect("a status written");
    assert_eq!(w.resource("doisneau").unwrap()["status"], last.status, "the resource shows the last status written");
    let status = json!({ "status": last.status });
    assert_eq!((last.generation, &last.status["observedGeneration"]), (3, &json!(3)), "{writes:#?}");
    assert_eq!(last.status["phase"], "active", "{writes:#?}");
    assert_eq!(condition(&status, "Ready")["status"], "False", "{writes:#?}");
    for kind in ["Ready", "Progressing", "Degraded"] {
        let shown = condition(&status, kind);
        assert_eq!(
            (&shown["reason"], &shown["message"]),
            (&json!("RollingOut"), &json!(under_way)),
            "{kind}: {writes:#?}"
        );
    }
    assert_eq!(condition(&status, "Progressing")["status"], "True", "{writes:#?}");
    // No status ever called generation 3 available.
    for write in writes.iter().filter(|s| s.status["observedGeneration"] == 3) {
        let ready = condition(&json!({ "status": write.status }), "Ready");
        assert_ne!(ready["status"], "True", "generation 3 shown available: {writes:#?}");
    }
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!(state.observed.as_deref(), Some("progressing"), "{state:?}");
    assert_eq!(state.observed_detail.as_deref(), Some(under_way.as_str()), "{state:?}");
    w.assert_live_as_rendered("doisneau").await;
    c_store.close().await;
}

backend_test!(a_stale_operators_status_patch_never_moves_observed_generation_back);
async fn a_stale_operators_status_patch_never_moves_observed_generation_back(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    let (stop, operator) = w.start_operator().await;
    w.past_the_gate("doisneau", &operator).await;
    w.take_requests();

    // The operator applies generation 2 and stalls before its status patch, longer than its
    // leases: meanwhile another operator took the resource over, reconciled generation 3
    // (`kubectl apply`) and wrote its status. The stale patch (generation 2, over the version
    // read before) comes after that status.
    let path = format!("{TENANTS}/doisneau/status");
    let newer = json!({ "phase": "active", "observedGeneration": 3, "conditions": [] });
    *w.mock.foreign_spec_before.lock().unwrap() = Some((path.clone(), spec("0940176F", "doisneau", json!([]))));
    *w.mock.foreign_status_before.lock().unwrap() = Some((path.clone(), newer));
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| ready_at(&w.resource("doisneau"), 3)).await;
    w.until_confirmed("doisneau", &[&operator]).await;
    stop.cancel();
    assert!(w.mock.foreign_status_before.lock().unwrap().is_none(), "the status patch met the other operator's");

    // The stale patch was sent, refused (409: its version is gone), and after the resource was
    // read again nothing was written over generation 3's status.
    let stale = w.take_requests().into_iter().filter(|r| r.method == "PATCH" && r.path == path).collect::<Vec<_>>();
    assert_eq!(stale.first().map(|r| &r.body["status"]["observedGeneration"]), Some(&json!(2)), "{stale:#?}");
    let writes = w.mock.status_writes.lock().unwrap().clone();
    let claimed: Vec<i64> = writes.iter().map(|s| s.status["observedGeneration"].as_i64().unwrap()).collect();
    assert!(claimed.windows(2).all(|pair| pair[0] <= pair[1]), "observedGeneration went back: {claimed:?} {writes:#?}");
    assert_eq!(claimed.last(), Some(&3), "{writes:#?}");
    let figures = operator.figures();
    assert!(figures.conflicts >= 1 && figures.superseded >= 1, "{figures:?}");
    assert_eq!(w.get("doisneau").await.options, Vec::<String>::new());
    w.assert_live_as_rendered("doisneau").await;
}

// A resource is never the DAN's approval (`kubectl apply` is the cluster's right, not the DAN's
// decision): above the threshold it is refused in its status, in French, nothing applied or
// approved; under it, declared; raised above it again, refused and the tenant kept as it was.
backend_test!(an_enttenant_above_the_approval_threshold_is_refused_in_its_status);
async fn an_enttenant_above_the_approval_threshold_is_refused_in_its_status(db: TestDb) {
    let w = World::on(db, |c| {
        let bounds = entcp::config::AccountBounds { max: 5000, approval_above: 2500 };
        c.provisioning.guardrails.accounts.insert("ecole".into(), bounds);
    })
    .await;
    let (stop, _) = w.start_operator().await;
    let with_accounts = |accounts: i64| {
        let mut spec = spec("0940176F", "doisneau", json!([]));
        spec["accounts"] = json!(accounts);
        spec
    };
    let refused_at = |w: &World, generation: i64| {
        w.resource("doisneau")
            .is_some_and(|r| r["status"]["phase"] == "Invalid" && r["status"]["observedGeneration"] == generation)
    };
    w.create_resource("doisneau", with_accounts(4900));
    w.until(|w| refused_at(w, 1)).await;
    let refused = w.resource("doisneau").unwrap();
    assert_eq!(condition(&refused, "Degraded")["reason"], "InvalidSpec", "{refused}");
    let message = condition(&refused, "Degraded")["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("plus de 2500 comptes") && message.contains("ressource EntTenant ne le vaut pas"),
        "{message}"
    );
    assert!(tenants::get_tenant(&w.state.store, "doisneau").await.unwrap().is_none(), "nothing declared");

    // Under the threshold: declared (held at the gate, no convention).
    w.edit(TENANTS, "doisneau", |r| r["spec"] = with_accounts(2000));
    w.until(|w| is(&w.resource("doisneau"), "GovernanceBlocked", "True")).await;
    assert_eq!(w.get("doisneau").await.accounts, 2000);

    // Raised above it again: refused, the tenant as it was.
    w.edit(TENANTS, "doisneau", |r| r["spec"] = with_accounts(4900));
    w.until(|w| refused_at(w, 3)).await;
    let refused = w.resource("doisneau").unwrap();
    assert!(condition(&refused, "Degraded")["message"].as_str().unwrap().contains("accord de la DAN"), "{refused}");
    assert_eq!(w.get("doisneau").await.accounts, 2000);
    let filter = entcp::audit::AuditFilter { target_kind: Some("tenant".into()), ..Default::default() };
    let audited = entcp::audit::list(&w.state.store, &filter, None).await.unwrap().items;
    assert!(audited.iter().all(|r| r.action != "tenants.accounts_approved"), "{audited:?}");
    stop.cancel();
}

backend_test!(deployment_events_make_the_operator_apply_a_settled_tenant_again_only_when_a_deployment_drifted);
async fn deployment_events_make_the_operator_apply_a_settled_tenant_again_only_when_a_deployment_drifted(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    let (stop, operator) = w.start_operator().await;
    w.past_the_gate("doisneau", &operator).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    w.edit(TENANTS, "doisneau", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| ready_at(&w.resource("doisneau"), 2)).await;
    w.until_confirmed("doisneau", &[&operator]).await;
    let applies = |w: &World| {
        let requests = w.mock.requests.lock().unwrap();
        let ours = |r: &&super::Request| r.method == "PATCH" && !r.query.contains_key("dryRun");
        requests.iter().filter(ours).filter(|r| r.path.contains("/namespaces/ent-doisneau/")).count()
    };
    let reconciles = |operator: &operator::Context| operator.figures().unchanged + operator.figures().written;

    // The Deployment controller writes a status (no spec change): the resource is reconciled
    // for that event, the tenant read back, nothing applied (the clock is fixed: no resync due).
    w.take_requests();
    let before = reconciles(&operator);
    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    w.edit(deployments, "portail", |d| d["status"]["observedGeneration"] = json!(5));
    w.until(|_| reconciles(&operator) > before).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(applies(&w), 0, "a rollout's event applies nothing: {:?}", super::paths(&w.take_requests(), "PATCH"));

    // Scaled by hand: drifted from the render, applied again and put back.
    let rendered = w.stored(deployments, "portail").unwrap()["spec"]["replicas"].clone();
    w.edit(deployments, "portail", |d| d["spec"]["replicas"] = json!(0));
    w.until(|w| w.stored(deployments, "portail").unwrap()["spec"]["replicas"] == rendered).await;
    assert!(applies(&w) >= 1, "the drift was repaired by an apply");
    stop.cancel();
}

backend_test!(a_resource_naming_a_purged_tenant_is_blocked_saying_it_was_purged);
async fn a_resource_naming_a_purged_tenant_is_blocked_saying_it_was_purged(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    w.tenant_applied("doisneau", "0940176F", json!([])).await;
    for to in [Status::Active, Status::Decommissioning, Status::Archived] {
        w.move_to("doisneau", to).await;
    }
    let later = t0() + chrono::Duration::days(93);
    assert_eq!(entcp::provisioning::purge::purge_due(&w.state.provisioning(), later).await.unwrap(), ["doisneau"]);
    let purged = w.get("doisneau").await;
    assert_eq!(w.left_of(&purged.id, "doisneau"), Vec::<String>::new(), "nothing of it left on the cluster");

    // A resource of the same name: blocked, saying why, never provisioned again.
    let (stop, _) = w.start_operator().await;
    w.create_resource("doisneau", spec("0940176F", "doisneau", json!(["moodle"])));
    w.until(|w| is(&w.resource("doisneau"), "GovernanceBlocked", "True")).await;
    let blocked = w.resource("doisneau").unwrap();
    assert_eq!(blocked["status"]["phase"], "Blocked", "{blocked}");
    let governance = condition(&blocked, "GovernanceBlocked");
    assert_eq!(governance["reason"], "NameTaken", "{blocked}");
    let message = governance["message"].as_str().unwrap();
    assert!(message.contains("le tenant doisneau a été purgé le"), "{message}");
    assert!(message.contains("choisissez-en un autre"), "{message}");
    assert_eq!(condition(&blocked, "Ready")["status"], "False");
    let after = w.get("doisneau").await;
    assert_eq!((after.status, after.declared_by, after.version), (Status::Purged, None, purged.version));
    assert_eq!(w.left_of(&purged.id, "doisneau"), Vec::<String>::new(), "nothing provisioned again");
    stop.cancel();
}

/// Whether the operator wrote a status on resource `name`.
fn has_status(resource: &Option<Value>) -> bool {
    resource.as_ref().is_some_and(|r| r["status"]["phase"].is_string())
}

/// The lists (not watches) of EntTenant resources the operator asked for.
fn resource_lists(w: &World) -> usize {
    let requests = w.mock.requests.lock().unwrap();
    let list = |r: &&super::Request| r.method == "GET" && r.path == "/apis/entcp.education.fr/v1/enttenants";
    requests.iter().filter(list).filter(|r| !r.query.contains_key("watch")).count()
}

backend_test!(a_watch_expired_with_410_gone_is_restarted_from_a_fresh_list_and_the_operator_keeps_reconciling);
async fn a_watch_expired_with_410_gone_is_restarted_from_a_fresh_list_and_the_operator_keeps_reconciling(db: TestDb) {
    let w = World::on(db, |_| {}).await;
    let (stop, _) = w.start_operator().await;
    w.create_resource("doisneau", spec("0940176F", "doisneau", json!([])));
    w.until(|w| has_status(&w.resource("doisneau"))).await;

    // The history is compacted past the operator's watches (etcd compaction) just as a resource
    // is declared: no watch sees its event. Told `410 Gone` — first as an ERROR event of the open
    // watch (the API server's watch cache), then as a refusal of the watch request itself, after
    // the open watch was closed (a timeout) — the operator lists again and reconciles it.
    for (name, uai, refused) in [("wallon", "0940198E", false), ("doisneau-bis", "0940176F", true)] {
        w.mock.gone_as_status.store(refused, Ordering::SeqCst);
        let (gone, lists) = (w.mock.gone.load(Ordering::SeqCst), resource_lists(&w));
        let mut object = json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant",
            "metadata": { "name": name, "namespace": "ecoles", "uid": format!("uid-{name}"), "generation": 1 },
            "spec": spec(uai, name, json!([])),
        });
        {
            let mut objects = w.mock.objects.lock().unwrap();
            w.mock.record_compacted(TENANTS, "ADDED", &mut object);
            objects.entry(TENANTS.into()).or_default().insert(name.into(), object);
        }
        let seen = w.until(|w| has_status(&w.resource(name)));
        tokio::time::timeout(std::time::Duration::from_secs(60), seen)
            .await
            .unwrap_or_else(|_| panic!("{name} never reconciled after the 410 Gone (refused: {refused})"));
        assert!(w.mock.gone.load(Ordering::SeqCst) > gone, "answered 410 Gone");
        assert!(resource_lists(&w) > lists, "listed again");
    }

    // The watches run again from the fresh list: a change is seen as it comes.
    w.edit(TENANTS, "wallon", |r| r["spec"]["options"] = json!(["moodle"]));
    w.until(|w| w.resource("wallon").is_some_and(|r| r["status"]["observedGeneration"] == 2)).await;
    stop.cancel();
}

// The operator's own requests (its status writes, the reads around them) went straight to the
// client, whose read timeout is five minutes: a server that never answered held the tenant's
// lease that long. They have the reconciler's per-request timeout, as the backend's requests do.
backend_test!(a_status_write_the_server_never_answers_fails_after_the_request_timeout);
async fn a_status_write_the_server_never_answers_fails_after_the_request_timeout(db: TestDb) {
    let (captured, _guard) = common::logs::Captured::info_logs();
    let w = World::on(db, |c| c.provisioning.reconcile.request_timeout_seconds = 0.5).await;
    *w.mock.hang.lock().unwrap() = Some(format!("{TENANTS}/doisneau/status"));
    let (stop, _operator) = w.start_operator().await;
    w.create_resource("doisneau", spec("0940176F", "doisneau", json!([])));
    let failed = w.until(|_| captured.text().contains("pas de réponse en 0.5 s"));
    let waited = tokio::time::timeout(std::time::Duration::from_secs(20), failed).await;
    stop.cancel();
    assert!(waited.is_ok(), "no failure within 20 s: {}", captured.text());
}
