//! The `kube` backend at the HTTP boundary. No API server can run here, so a
//! loopback mock plays one: it records every request, keeps the applied objects
//! in memory (lists filter them by label selector, a namespace delete removes its
//! content), answers with the API server's Status objects, and can be told to
//! fail a given request (409, 500, 404). The kube client reaches it through a
//! kubeconfig file given in the configuration, as in production. For the watches
//! (`entctl operator`, the Deployment watch) it also streams `?watch=true` events with
//! their `resourceVersion` after a list, serves the `/status` subresource (a status
//! patch changes neither `spec` nor `generation`), JSON and merge patches, and holds a
//! deleted object with finalizers (`deletionTimestamp`) until its last finalizer goes.
//! As a real API server does, it refuses with 409 Conflict a patch whose
//! `metadata.resourceVersion` is not the object's current one, and answers `410 Gone` a watch
//! from a version its history was compacted past (`Mock::compacted`).

mod operator;

use crate::common;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{admin, t0};
use entcp::api::AppState;
use entcp::clock::FixedClock;
use entcp::config::{Config, ProvisioningBackend};
use entcp::provisioning::reconcile::pass;
use entcp::tenants::{self, EntTenant, Move, Status, Tenant};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    content_type: String,
    authorization: String,
    user_agent: String,
    body: Value,
}

#[derive(Clone)]
/// A failure to answer `times` times to `method path`.
struct Fault {
    method: &'static str,
    path: String,
    code: u16,
    reason: &'static str,
    message: &'static str,
    times: usize,
    /// Whether the fault answers the server-side dry-run (else only the real write).
    dry_run: bool,
}

/// A status patch the mock took: who sent it (its `Authorization`), the resource's generation then, the status.
#[derive(Debug, Clone)]
struct StatusWrite {
    writer: String,
    generation: i64,
    status: Value,
}

#[derive(Default)]
struct Mock {
    requests: Mutex<Vec<Request>>,
    /// The status patches taken that changed a resource, in order.
    status_writes: Mutex<Vec<StatusWrite>>,
    /// A path whose next PATCH finds its object just changed by another client (an
    /// annotation added, a new `resourceVersion`), as when two writers race.
    foreign_write_before: Mutex<Option<String>>,
    /// A path whose next PATCH finds its object's `spec` just replaced by another client
    /// (`kubectl apply`: the generation moves on), with that spec.
    foreign_spec_before: Mutex<Option<(String, Value)>>,
    /// A path whose next PATCH finds its object's `status` just written by another client
    /// (the operator that took the resource over), with that status (after any foreign spec).
    foreign_status_before: Mutex<Option<(String, Value)>>,
    /// Collection path → name → object.
    objects: Mutex<BTreeMap<String, BTreeMap<String, Value>>>,
    faults: Mutex<Vec<Fault>>,
    deployments_available: Mutex<bool>,
    /// The Deployment controller has not seen the latest spec yet (observedGeneration behind).
    generation_behind: Mutex<bool>,
    /// Requests being answered now, and the most seen at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// How long a PATCH takes to answer, so that concurrent tenants overlap.
    patch_delay_ms: AtomicU64,
    /// A path whose requests are never answered (recorded, then left hanging).
    hang: Mutex<Option<String>>,
    /// Requests in flight per namespace, and the most seen at once in one namespace.
    per_namespace: Mutex<BTreeMap<String, usize>>,
    max_per_namespace: AtomicUsize,
    /// The last `resourceVersion` given; every change takes the next one.
    revision: AtomicU64,
    /// Every change, for the watches: (resourceVersion, collection, ADDED/MODIFIED/DELETED, object).
    changes: Mutex<Vec<(u64, String, &'static str, Value)>>,
    changed: tokio::sync::Notify,
    /// The history up to this revision is compacted away (etcd compaction): a watch from an
    /// older version is answered `410 Gone` — an ERROR event of its stream, as the API server's
    /// watch cache says it, or with `gone_as_status` the watch request refused itself (etcd's
    /// « The resourceVersion for the provided watch is too old »), an open watch behind it then
    /// closed as at a timeout. 0: nothing compacted.
    compacted: AtomicU64,
    gone_as_status: AtomicBool,
    /// The `410 Gone` answers given (ERROR events and refused watches).
    gone: AtomicUsize,
    /// The next GET of a path by a client (its `Authorization`): answered as the objects are
    /// when it comes, the answer held until the gate gets a permit (a slow read).
    gate: Mutex<Option<(String, String, Arc<tokio::sync::Semaphore>)>>,
    /// Gated answers computed (the objects as they were then), held or sent since.
    gated_answers: AtomicUsize,
    /// Defaults a Deployment applied without `strategy` as the API server does
    /// (`RollingUpdate`, 25 % surge and unavailable), a default no manager owns.
    defaults_strategy: Mutex<bool>,
}

impl Mock {
    /// Records a change of `object` in `collection` (a new `resourceVersion`), waking the watches.
    fn record(&self, collection: &str, kind: &'static str, object: &mut Value) {
        let revision = self.revision.fetch_add(1, Ordering::SeqCst) + 1;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.changes.lock().unwrap().push((revision, collection.to_string(), kind, object.clone()));
        self.changed.notify_waiters();
    }

    /// Records a change of `object` in `collection` and compacts the history up to it, at once:
    /// no watch open behind it sees the change, each is answered `410 Gone` ([`Mock::compacted`]).
    fn record_compacted(&self, collection: &str, kind: &'static str, object: &mut Value) {
        let mut changes = self.changes.lock().unwrap();
        let revision = self.revision.fetch_add(1, Ordering::SeqCst) + 1;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        changes.push((revision, collection.to_string(), kind, object.clone()));
        self.compacted.store(revision, Ordering::SeqCst);
        drop(changes);
        self.changed.notify_waiters();
    }

    /// An object as a read shows it: a Deployment with the status its controller would report.
    fn observed(&self, mut o: Value) -> Value {
        if o["kind"] == "Deployment" {
            let available = *self.deployments_available.lock().unwrap();
            let replicas = o["spec"]["replicas"].clone();
            let behind = i64::from(*self.generation_behind.lock().unwrap());
            let generation = o["metadata"]["generation"].as_i64().unwrap_or(1) - behind;
            o["status"] = if available {
                json!({ "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                        "readyReplicas": replicas, "availableReplicas": replicas,
                        "conditions": [{ "type": "Available", "status": "True" }] })
            } else {
                json!({ "replicas": replicas, "unavailableReplicas": replicas,
                        "conditions": [{ "type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated" }] })
            };
        }
        o
    }

    /// Deletes an object: held with a `deletionTimestamp` while finalizers remain.
    fn delete(
        &self,
        objects: &mut BTreeMap<String, BTreeMap<String, Value>>,
        collection: &str,
        name: &str,
    ) -> Option<Value> {
        let object = objects.get_mut(collection)?.get_mut(name)?;
        if object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) {
            if object["metadata"]["deletionTimestamp"].is_null() {
                object["metadata"]["deletionTimestamp"] = json!("2026-09-01T08:00:00Z");
                self.record(collection, "MODIFIED", object);
            }
            return Some(object.clone());
        }
        let mut object = objects.get_mut(collection)?.remove(name)?;
        self.record(collection, "DELETED", &mut object);
        if collection == "/api/v1/namespaces" {
            let inside = format!("/namespaces/{name}/");
            objects.retain(|c, _| !c.contains(&inside));
        }
        Some(object)
    }
}

/// Whether a list (or watch) at `list` holds the objects of `collection`: the same path, or
/// a list across namespaces (`/apis/apps/v1/deployments`) and a namespace's collection.
fn in_list(list: &str, collection: &str) -> bool {
    if list == collection {
        return true;
    }
    let Some((prefix, resource)) = list.rsplit_once('/') else { return false };
    collection
        .strip_prefix(&format!("{prefix}/namespaces/"))
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, r)| r == resource)
}

/// A JSON patch (RFC 6902) of the operations the finalizer helper sends: test, add, remove.
fn json_patch(object: &mut Value, operations: &Value) -> Result<(), String> {
    for op in operations.as_array().ok_or("not a JSON patch")? {
        let path = op["path"].as_str().ok_or("no path")?;
        let (parent, last) = path.rsplit_once('/').ok_or("bad path")?;
        match op["op"].as_str() {
            Some("test") if object.pointer(path).unwrap_or(&Value::Null) != &op["value"] => {
                return Err(format!("test of {path} failed"))
            }
            Some("test") => {}
            Some("add") => {
                let target = object.pointer_mut(parent).ok_or("no parent")?;
                match target {
                    Value::Array(items) if last == "-" => items.push(op["value"].clone()),
                    Value::Object(fields) => drop(fields.insert(last.to_string(), op["value"].clone())),
                    _ => return Err(format!("cannot add at {path}")),
                }
            }
            Some("remove") => {
                let items = object.pointer_mut(parent).and_then(Value::as_array_mut).ok_or("no array")?;
                let index: usize = last.parse().map_err(|_| "bad index")?;
                if index >= items.len() {
                    return Err(format!("no {path}"));
                }
                items.remove(index);
            }
            other => return Err(format!("unsupported op {other:?}")),
        }
    }
    Ok(())
}

/// The ERROR event of a watch from `from`, its history compacted up to `compacted` (the words
/// of the API server's watch cache).
fn expired_event(from: u64, compacted: u64) -> Bytes {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {from} ({compacted})"), "reason": "Expired", "code": 410
    });
    Bytes::from(format!("{}\n", json!({ "type": "ERROR", "object": status })))
}

/// A watch: the changes after `from` in the collections of `list` (that `selector` selects),
/// one JSON watch event a line, as long as the client listens; behind a compaction, an ERROR
/// event `410 Gone` ends it (or it is closed, with [`Mock::gone_as_status`]).
fn watch(mock: Arc<Mock>, list: String, selector: Option<String>, from: u64) -> Response {
    let events = futures_util::stream::unfold((mock, from), move |(mock, mut last)| {
        let (list, selector) = (list.clone(), selector.clone());
        async move {
            // Ended by a compaction.
            if last == u64::MAX {
                return None;
            }
            loop {
                let next = {
                    let changes = mock.changes.lock().unwrap();
                    let compacted = mock.compacted.load(Ordering::SeqCst);
                    if last < compacted {
                        if mock.gone_as_status.load(Ordering::SeqCst) {
                            return None;
                        }
                        mock.gone.fetch_add(1, Ordering::SeqCst);
                        return Some((
                            Ok::<_, std::convert::Infallible>(expired_event(last, compacted)),
                            (mock.clone(), u64::MAX),
                        ));
                    }
                    let mut found = None;
                    let after = last;
                    for (revision, collection, kind, object) in changes.iter().filter(|c| c.0 > after) {
                        last = *revision;
                        if in_list(&list, collection) && matches_selector(object, selector.as_ref()) {
                            found = Some((*kind, object.clone()));
                            break;
                        }
                    }
                    found
                };
                if let Some((kind, object)) = next {
                    let line = format!("{}\n", json!({ "type": kind, "object": mock.observed(object) }));
                    return Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), (mock, last)));
                }
                let notified = mock.changed.notified();
                let mut notified = std::pin::pin!(notified);
                notified.as_mut().enable();
                // A change recorded between the scan and the wait is not missed.
                if mock.changes.lock().unwrap().last().is_some_and(|c| c.0 > last) {
                    continue;
                }
                notified.await;
            }
        }
    });
    Response::builder().header("content-type", "application/json").body(axum::body::Body::from_stream(events)).unwrap()
}

/// Counts a request as in flight in its namespace until dropped: a tenant's requests
/// go one after the other, so two at once in a namespace are two writers of one tenant.
struct InNamespace<'a>(&'a Mock, String);

impl<'a> InNamespace<'a> {
    fn enter(mock: &'a Mock, path: &str) -> InNamespace<'a> {
        let namespace = path.split("/namespaces/").nth(1).unwrap_or("").split('/').next().unwrap_or("").to_string();
        let mut counts = mock.per_namespace.lock().unwrap();
        let count = counts.entry(namespace.clone()).or_default();
        *count += 1;
        mock.max_per_namespace.fetch_max(*count, Ordering::SeqCst);
        InNamespace(mock, namespace)
    }
}

impl Drop for InNamespace<'_> {
    fn drop(&mut self) {
        *self.0.per_namespace.lock().unwrap().get_mut(&self.1).unwrap() -= 1;
    }
}

/// Counts a request as in flight until dropped.
struct InFlight<'a>(&'a Mock);

impl<'a> InFlight<'a> {
    fn enter(mock: &'a Mock) -> InFlight<'a> {
        let now = mock.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        mock.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(mock)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn status(code: u16, reason: &str, message: &str, name: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": { "name": name }, "code": code
    });
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// Whether `object` matches a label selector, or a field selector on `metadata.name`.
fn matches_selector(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector else { return true };
    selector.split(',').all(|pair| {
        let (k, v) = pair.split_once('=').unwrap();
        match k {
            "metadata.name" => object["metadata"]["name"] == v,
            _ => object["metadata"]["labels"][k] == v,
        }
    })
}

/// A claim's storage request in bytes.
fn claim_bytes(claim: &Value) -> i128 {
    claim["spec"]["resources"]["requests"]["storage"]
        .as_str()
        .and_then(entcp::provisioning::quantity::whole)
        .unwrap_or(0)
}

/// As the API server validates a claim's update: its spec is immutable but for a request
/// that grows (422).
fn immutable_claim(before: Option<&Value>, claim: &Value, name: &str) -> Option<Response> {
    let old = before.filter(|_| claim["kind"] == "PersistentVolumeClaim")?;
    if claim_bytes(claim) < claim_bytes(old) {
        let message = format!(
            "PersistentVolumeClaim \"{name}\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"
        );
        return Some(status(422, "Invalid", &message, name));
    }
    if claim["spec"]["storageClassName"] != old["spec"]["storageClassName"] {
        let message = format!(
            "PersistentVolumeClaim \"{name}\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
        );
        return Some(status(422, "Invalid", &message, name));
    }
    None
}

/// The quota admission of a claim created or grown: refused (403) beyond the namespace's
/// `requests.storage`, counting the other claims there.
fn quota_refusal(
    objects: &BTreeMap<String, BTreeMap<String, Value>>,
    collection: &str,
    name: &str,
    claim: &Value,
) -> Option<Response> {
    let namespace = collection.strip_suffix("/persistentvolumeclaims")?;
    let claims = objects.get(collection);
    let requested = claim_bytes(claim);
    if requested <= claims.and_then(|c| c.get(name)).map(claim_bytes).unwrap_or(0) {
        return None;
    }
    let hard = objects
        .get(&format!("{namespace}/resourcequotas"))?
        .values()
        .filter_map(|q| q["spec"]["hard"]["requests.storage"].as_str().and_then(entcp::provisioning::quantity::whole))
        .min()?;
    let used: i128 = claims.into_iter().flatten().filter(|(n, _)| *n != name).map(|(_, c)| claim_bytes(c)).sum();
    if used + requested <= hard {
        return None;
    }
    let gi = |bytes: i128| entcp::provisioning::quantity::bytes_text(bytes);
    let message = format!(
        "persistentvolumeclaims \"{name}\" is forbidden: exceeded quota: quota, requested: requests.storage={}, \
         used: requests.storage={}, limited: requests.storage={}",
        gi(requested),
        gi(used),
        gi(hard)
    );
    Some(status(403, "Forbidden", &message, name))
}

/// A Deployment's strategy as the API server merges it under server-side apply: the
/// `rollingUpdate` it defaulted belongs to no manager and stays, so `Recreate` with it is
/// invalid (422, kubernetes#24198); with `defaults`, a Deployment without strategy gets the default.
fn strategy_refusal(before: Option<&Value>, deployment: &mut Value, defaults: bool, name: &str) -> Option<Response> {
    if deployment["kind"] != "Deployment" {
        return None;
    }
    let live = before.map(|b| b["spec"]["strategy"].clone()).unwrap_or(Value::Null);
    let mut strategy = deployment["spec"].get("strategy").cloned().unwrap_or(Value::Null);
    if strategy.is_null() && defaults {
        strategy = if live.is_null() {
            json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } })
        } else {
            live.clone()
        };
    }
    if strategy.is_object() && strategy["rollingUpdate"].is_null() && !live["rollingUpdate"].is_null() {
        strategy["rollingUpdate"] = live["rollingUpdate"].clone();
    }
    if !strategy.is_null() {
        deployment["spec"]["strategy"] = strategy.clone();
    }
    if strategy["type"] == "Recreate" && !strategy["rollingUpdate"].is_null() {
        let message = format!(
            "Deployment.apps \"{name}\" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
        );
        return Some(status(422, "Invalid", &message, name));
    }
    None
}

fn split(path: &str) -> (String, String) {
    let (collection, name) = path.rsplit_once('/').unwrap();
    (collection.to_string(), name.to_string())
}

async fn handle(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    query: Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gate = {
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let mut gate = mock.gate.lock().unwrap();
        let gated = gate.as_ref().is_some_and(|(by, path, _)| {
            method == Method::GET
                && by == authorization
                && path == uri.path()
                && !uri.query().unwrap_or("").contains("watch")
        });
        if gated {
            gate.take().map(|(_, _, open)| open)
        } else {
            None
        }
    };
    let response = answer(State(mock.clone()), method, uri, query, headers, body).await;
    if let Some(open) = gate {
        mock.gated_answers.fetch_add(1, Ordering::SeqCst);
        open.acquire().await.unwrap().forget();
    }
    response
}

async fn answer(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&mock);
    let _in_namespace = InNamespace::enter(&mock, uri.path());
    let delay = mock.patch_delay_ms.load(Ordering::SeqCst);
    if method == Method::PATCH && delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let path = uri.path().to_string();
    mock.requests.lock().unwrap().push(Request {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        user_agent: header("user-agent"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if mock.hang.lock().unwrap().as_deref() == Some(path.as_str()) {
        std::future::pending::<()>().await;
    }
    {
        let mut faults = mock.faults.lock().unwrap();
        let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
        if let Some(i) =
            faults.iter().position(|f| f.method == method.as_str() && f.path == path && f.dry_run == dry_run)
        {
            faults[i].times -= 1;
            let f = if faults[i].times == 0 { faults.remove(i) } else { faults[i].clone() };
            return status(f.code, f.reason, f.message, &split(&path).1);
        }
    }
    if method == Method::GET && query.get("watch").is_some_and(|v| v == "true" || v == "1") {
        let from = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        if from < mock.compacted.load(Ordering::SeqCst) && mock.gone_as_status.load(Ordering::SeqCst) {
            mock.gone.fetch_add(1, Ordering::SeqCst);
            return status(410, "Expired", "The resourceVersion for the provided watch is too old.", "");
        }
        return watch(mock.clone(), path, query.get("labelSelector").cloned(), from);
    }
    let mut objects = mock.objects.lock().unwrap();
    let content_type = header("content-type");
    match method {
        Method::PATCH
            if content_type.starts_with("application/merge-patch")
                || content_type.starts_with("application/json-patch") =>
        {
            // The status subresource takes the status only; the resource itself, the rest.
            let (item, subresource) = match path.strip_suffix("/status") {
                Some(item) => (item.to_string(), true),
                None => (path.clone(), false),
            };
            let (collection, name) = split(&item);
            let Some(live) = objects.get_mut(&collection).and_then(|c| c.get_mut(&name)) else {
                return status(404, "NotFound", &format!("\"{name}\" not found"), &name);
            };
            let foreign = {
                let mut next = mock.foreign_write_before.lock().unwrap();
                next.as_deref() == Some(path.as_str()) && next.take().is_some()
            };
            if foreign {
                live["metadata"]["annotations"]["exemple.fr/autre-client"] = json!("passé avant");
                mock.record(&collection, "MODIFIED", live);
            }
            if let Some(spec) = take_at(&mock.foreign_spec_before, &path) {
                live["spec"] = spec;
                live["metadata"]["generation"] = json!(live["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
                mock.record(&collection, "MODIFIED", live);
            }
            if let Some(status) = take_at(&mock.foreign_status_before, &path) {
                live["status"] = status.clone();
                mock.record(&collection, "MODIFIED", live);
                let generation = live["metadata"]["generation"].as_i64().unwrap_or(0);
                let write = StatusWrite { writer: "un autre opérateur".into(), generation, status };
                mock.status_writes.lock().unwrap().push(write);
            }
            let patch: Value = serde_json::from_slice(&body).unwrap();
            // Optimistic concurrency: a patch naming a `resourceVersion` applies to that version only.
            let expected = &patch["metadata"]["resourceVersion"];
            if !expected.is_null() && *expected != live["metadata"]["resourceVersion"] {
                let message = format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                     please apply your changes to the latest version and try again",
                    collection.rsplit('/').next().unwrap_or_default()
                );
                return status(409, "Conflict", &message, &name);
            }
            let mut object = live.clone();
            if content_type.starts_with("application/json-patch") {
                if let Err(e) = json_patch(&mut object, &patch) {
                    return status(422, "Invalid", &e, &name);
                }
            } else if subresource {
                object["status"] = patch["status"].clone();
            } else {
                json_merge(&mut object, &patch);
            }
            if subresource {
                object["spec"] = live["spec"].clone();
                object["metadata"] = live["metadata"].clone();
            } else {
                object["status"] = live["status"].clone();
                if object["spec"] != live["spec"] {
                    let generation = live["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                    object["metadata"]["generation"] = json!(generation);
                }
            }
            if object != *live {
                mock.record(&collection, "MODIFIED", &mut object);
                *live = object.clone();
                if subresource {
                    let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
                    let write =
                        StatusWrite { writer: header("authorization"), generation, status: object["status"].clone() };
                    mock.status_writes.lock().unwrap().push(write);
                }
            }
            let gone = !object["metadata"]["deletionTimestamp"].is_null()
                && object["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
            if gone {
                mock.delete(&mut objects, &collection, &name);
            }
            (StatusCode::OK, axum::Json(object)).into_response()
        }
        Method::PATCH => {
            let (collection, name) = split(&path);
            let mut object: Value = serde_json::from_slice(&body).unwrap();
            object["metadata"]["uid"] = json!(format!("uid-{name}"));
            object["metadata"]["resourceVersion"] = json!("1");
            let before = objects.get(&collection).and_then(|c| c.get(&name));
            let defaults = *mock.defaults_strategy.lock().unwrap();
            // Admission, on a dry-run as on a write (kubernetes#66391 for the quota).
            if let Some(refusal) = immutable_claim(before, &object, &name)
                .or_else(|| quota_refusal(&objects, &collection, &name, &object))
                .or_else(|| strategy_refusal(before, &mut object, defaults, &name))
            {
                return refusal;
            }
            if query.get("dryRun").is_some_and(|v| v == "All") {
                return (StatusCode::OK, axum::Json(object)).into_response();
            }
            // The generation moves on when the spec changes, as the API server's does.
            let generation = match before {
                Some(old) if old["spec"] == object["spec"] => old["metadata"]["generation"].as_i64().unwrap_or(1),
                Some(old) => old["metadata"]["generation"].as_i64().unwrap_or(1) + 1,
                None => 1,
            };
            object["metadata"]["generation"] = json!(generation);
            if let (Some(old), Some(added)) = (before, object.get("stringData").cloned()) {
                // As the API server does: `stringData` is merged into the live `data` and its
                // keys are owned by nobody, so a key left out is never removed (kubernetes#108008).
                let mut data = old["data"].clone();
                for (key, value) in added.as_object().unwrap() {
                    data[key] = json!(base64_encode(value.as_str().unwrap().as_bytes()));
                }
                object["data"] = data;
                object.as_object_mut().unwrap().remove("stringData");
            }
            // A server-side apply that changes nothing writes nothing (no new resourceVersion, no event).
            let old = before.cloned();
            if let Some(old) = &old {
                object["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
            }
            if old.as_ref() != Some(&object) {
                mock.record(&collection, if old.is_some() { "MODIFIED" } else { "ADDED" }, &mut object);
            }
            let existed = objects.entry(collection).or_default().insert(name, object.clone()).is_some();
            let code = if existed { StatusCode::OK } else { StatusCode::CREATED };
            (code, axum::Json(object)).into_response()
        }
        Method::GET => {
            let (collection, name) = split(&path);
            if let Some(object) = objects.get(&collection).and_then(|c| c.get(&name)) {
                return axum::Json(mock.observed(object.clone())).into_response();
            }
            let items: Vec<Value> = objects
                .iter()
                .filter(|(collection, _)| in_list(&path, collection))
                .flat_map(|(_, c)| c.values())
                .filter(|o| matches_selector(o, query.get("labelSelector")))
                .filter(|o| matches_selector(o, query.get("fieldSelector")))
                .map(|o| mock.observed(o.clone()))
                .collect();
            let revision = mock.revision.load(Ordering::SeqCst).to_string();
            axum::Json(
                json!({ "kind": "List", "apiVersion": "v1", "metadata": { "resourceVersion": revision }, "items": items }),
            )
            .into_response()
        }
        Method::DELETE => {
            let (collection, name) = split(&path);
            let terminating = objects
                .get(&collection)
                .and_then(|c| c.get(&name))
                .is_some_and(|o| collection == "/api/v1/namespaces" && !o["metadata"]["deletionTimestamp"].is_null());
            if terminating {
                let message = "Operation cannot be fulfilled on namespaces: The system is ensuring all content is \
                               removed from this namespace.  Upon completion, this namespace will automatically be \
                               purged by the system.";
                return status(409, "Conflict", message, &name);
            }
            let Some(object) = mock.delete(&mut objects, &collection, &name) else {
                return status(404, "NotFound", &format!("\"{name}\" not found"), &name);
            };
            axum::Json(object).into_response()
        }
        _ => status(405, "MethodNotAllowed", "method not allowed", ""),
    }
}

/// The value a foreign-write slot holds for `path`, taken (once); `None` for another path.
fn take_at(slot: &Mutex<Option<(String, Value)>>, path: &str) -> Option<Value> {
    let mut next = slot.lock().unwrap();
    match next.as_ref() {
        Some((at, _)) if at == path => next.take().map(|(_, value)| value),
        _ => None,
    }
}

/// A JSON merge patch (RFC 7386).
fn json_merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (key, value) in fields {
                if value.is_null() {
                    target.as_object_mut().unwrap().remove(key);
                } else {
                    json_merge(&mut target[key], value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct World {
    mock: Arc<Mock>,
    state: AppState,
    /// The application's clock (fixed at `t0` until a test moves it).
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
    _db: common::TestDb,
}

/// The path of the volume claims of Doisneau's namespace.
const CLAIMS: &str = "/api/v1/namespaces/ent-doisneau/persistentvolumeclaims";

impl World {
    async fn new() -> World {
        World::on(common::sqlite().await, |_| {}).await
    }

    async fn with_concurrency(concurrency: usize) -> World {
        World::on(common::sqlite().await, |c| c.provisioning.concurrency = concurrency).await
    }

    /// A mock API server and an application on `db`, its configuration adjusted by `configure`.
    async fn on(db: common::TestDb, configure: impl FnOnce(&mut Config)) -> World {
        let mock = Arc::new(Mock::default());
        let app = axum::Router::new().fallback(handle).with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: essai\n  cluster:\n    server: http://{address}\n\
                 contexts:\n- name: essai\n  context:\n    cluster: essai\n    user: entcp\n\
                 current-context: essai\nusers:\n- name: entcp\n  user:\n    token: jeton-de-test\n"
            ),
        )
        .unwrap();
        let mut config = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        config.provisioning.backend = ProvisioningBackend::Kube;
        config.provisioning.kube.kubeconfig = Some(kubeconfig);
        // The client-side rate limit is a unit test's (runtime.rs): here it would only slow the passes.
        config.provisioning.reconcile.requests_per_second = 10_000.0;
        configure(&mut config);
        common::import_sample(&db.store).await;
        let clock = Arc::new(FixedClock::new(t0()));
        let state = crate::common::app::app_state(db.store.clone(), config, clock.clone());
        World { mock, state, clock, _dir: dir, _db: db }
    }

    /// A provisioning tenant (gate overridden: the convention gate is tested in `tenants.rs`).
    async fn tenant(&self, slug: &str, uai: &str, options: Value) -> Tenant {
        self.apply(slug, uai, options).await;
        let t = tenants::get_tenant(&self.state.store, slug).await.unwrap().unwrap();
        tenants::transition(&self.state.tenants(), &admin(), &t, Move::to(Status::Provisioning).overriding("essai"))
            .await
            .unwrap()
    }

    /// [`World::tenant`], then one reconcile pass, which applies it (the only tenant).
    async fn tenant_applied(&self, slug: &str, uai: &str, options: Value) {
        self.tenant(slug, uai, options).await;
        assert_eq!(pass(&self.state.provisioning(), None, t0()).await.unwrap().applied, 1);
    }

    async fn apply(&self, slug: &str, uai: &str, options: Value) -> Tenant {
        let doc: EntTenant = serde_json::from_value(json!({
            "apiVersion": "entcp.education.fr/v1", "kind": "EntTenant", "metadata": { "name": slug },
            "spec": { "organisation": uai, "hostname": format!("{slug}.ent.example.fr"), "bouquet": "socle-1d", "options": options }
        }))
        .unwrap();
        tenants::apply(&self.state.tenants(), &admin(), &doc, None).await.unwrap().1
    }

    async fn get(&self, slug: &str) -> Tenant {
        tenants::get_tenant(&self.state.store, slug).await.unwrap().unwrap()
    }

    /// Moves the tenant, for a reason (required to suspend or withdraw).
    async fn move_to(&self, slug: &str, to: Status) {
        let step = Move::to(to).because("essai du moteur kube");
        tenants::transition(&self.state.tenants(), &admin(), &self.get(slug).await, step).await.unwrap();
    }

    fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.mock.requests.lock().unwrap())
    }

    fn fail_once(&self, method: &'static str, path: &str, code: u16, reason: &'static str, message: &'static str) {
        self.fail(method, path, code, reason, message, 1);
    }

    fn fail(
        &self,
        method: &'static str,
        path: &str,
        code: u16,
        reason: &'static str,
        message: &'static str,
        times: usize,
    ) {
        let fault = Fault { method, path: path.into(), code, reason, message, times, dry_run: false };
        self.mock.faults.lock().unwrap().push(fault);
    }

    /// Starts the work queue as `entctl serve` does, makes the tenant's portail PATCH hang,
    /// queues the tenant and returns once that PATCH was sent (the queue's stop and task).
    async fn queue_until_portail_hangs(
        &self,
        slug: &str,
    ) -> (tokio_util::sync::CancellationToken, tokio::task::JoinHandle<()>) {
        let portail = format!("/apis/apps/v1/namespaces/ent-{slug}/deployments/portail");
        *self.mock.hang.lock().unwrap() = Some(portail.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let queue = entcp::provisioning::reconcile::run_queue(self.state.provisioning(), shutdown.clone());
        let queue = tokio::spawn(queue);
        // Queued once the queue is open, then sent: each wait fails after two minutes.
        self.until(|w| w.state.reconciler.enqueue(Some(slug.into()))).await;
        self.until(|w| w.mock.requests.lock().unwrap().iter().any(|r| r.path == portail)).await;
        (shutdown, queue)
    }

    /// The objects the mock holds in the tenant's namespace, by API path, as last applied.
    fn live(&self, namespace: &str) -> BTreeMap<String, Value> {
        let inside = format!("/namespaces/{namespace}/");
        let objects = self.mock.objects.lock().unwrap();
        let mut live = BTreeMap::new();
        for (collection, items) in objects.iter().filter(|(c, _)| c.contains(&inside)) {
            for (name, object) in items {
                let mut object = object.clone();
                let metadata = object["metadata"].as_object_mut().unwrap();
                metadata.remove("uid");
                metadata.remove("resourceVersion");
                metadata.remove("generation");
                live.insert(format!("{collection}/{name}"), object);
            }
        }
        live
    }

    /// Whether the mock holds exactly the tenant's rendered objects (namespace content),
    /// besides the volumes kept of removed services, which its quota counts.
    async fn assert_live_as_rendered(&self, slug: &str) {
        let namespace = format!("ent-{slug}");
        let desired = tenants::render(&self.state.tenants(), &self.get(slug).await).await.unwrap();
        let mut live = self.live(&namespace);
        live.retain(|_, o| o["metadata"]["labels"]["entcp.education.fr/retained"].is_null());
        let retained: i128 = self
            .live(&namespace)
            .values()
            .filter(|o| !o["metadata"]["labels"]["entcp.education.fr/retained"].is_null())
            .map(claim_bytes)
            .sum();
        let expected: BTreeMap<String, Value> = desired
            .iter()
            .filter(|o| o.kind != "Namespace")
            .map(|o| {
                let mut manifest = o.manifest.clone();
                if o.kind == "ResourceQuota" {
                    let hard = &mut manifest["spec"]["hard"]["requests.storage"];
                    let rendered = hard.as_str().and_then(entcp::provisioning::quantity::whole).unwrap();
                    *hard = json!(entcp::provisioning::quantity::bytes_text(rendered + retained));
                }
                (path_of(o, &namespace), manifest)
            })
            .collect();
        assert_eq!(live.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "the live objects of {slug}");
        for (path, object) in &expected {
            assert_eq!(&live[path], object, "{path} is live as rendered");
        }
    }

    /// A client of the mock, as `entctl serve` and `entctl operator` build it (for the watches).
    async fn kube_client(&self) -> kube::Client {
        client_of(&self.state).await
    }

    /// A second process on the same database and mock: its own connection pool, lease
    /// holder and kube token (`jeton-de-test-b`), its clock `ahead` of this one's.
    async fn other_process(&self, ahead: chrono::Duration) -> (AppState, entcp::store::Store) {
        self.other_process_on(Arc::new(FixedClock::new(t0() + ahead))).await
    }

    /// [`World::other_process`] on `clock` (that the test may move).
    async fn other_process_on(&self, clock: Arc<FixedClock>) -> (AppState, entcp::store::Store) {
        let store = entcp::store::Store::connect(&self._db.url, None).await.unwrap();
        let kubeconfig = self._dir.path().join("kubeconfig-b");
        let text = std::fs::read_to_string(self._dir.path().join("kubeconfig")).unwrap();
        std::fs::write(&kubeconfig, text.replace("jeton-de-test", "jeton-de-test-b")).unwrap();
        let mut config = (*self.state.config).clone();
        config.provisioning.kube.kubeconfig = Some(kubeconfig);
        (crate::common::app::app_state(store.clone(), config, clock), store)
    }

    /// Changes a stored object as a client other than the control plane would (`kubectl`),
    /// with the event its watchers see; `spec` changes bump the generation.
    fn edit(&self, collection: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut objects = self.mock.objects.lock().unwrap();
        let object = objects.get_mut(collection).and_then(|c| c.get_mut(name)).expect("object to edit");
        let before = object["spec"].clone();
        change(object);
        if object["spec"] != before {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            object["metadata"]["generation"] = json!(generation);
        }
        self.mock.record(collection, "MODIFIED", object);
    }

    /// The object at `collection`/`name`, as stored.
    fn stored(&self, collection: &str, name: &str) -> Option<Value> {
        self.mock.objects.lock().unwrap().get(collection).and_then(|c| c.get(name)).cloned()
    }

    /// Holds the answer to the next GET of `path` (not a watch) by the client `authorization`
    /// (a slow read): answered as the objects are when it comes, sent once the returned
    /// semaphore gets a permit.
    fn hold_next_read(&self, authorization: &str, path: &str) -> Arc<tokio::sync::Semaphore> {
        let open = Arc::new(tokio::sync::Semaphore::new(0));
        *self.mock.gate.lock().unwrap() = Some((authorization.into(), path.into(), open.clone()));
        open
    }

    /// Waits until the read [`World::hold_next_read`] holds came and was answered (not sent yet).
    async fn until_read_held(&self) {
        self.until(|w| w.mock.gated_answers.load(Ordering::SeqCst) == 1).await;
    }

    /// Waits (polling the mock, at most two minutes) until `done` holds; past that, fails with
    /// what the mock last received, rather than hanging until the runner's timeout.
    async fn until(&self, mut done: impl FnMut(&World) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !done(self) {
            if std::time::Instant::now() > deadline {
                self.stuck("the mock's state").await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// [`World::until`] for a `check` that reads the database (polled every 10 ms); `what`
    /// names what is waited for when it fails.
    async fn until_stored<F: std::future::Future<Output = bool>>(&self, what: &str, check: impl FnMut() -> F) {
        if !common::within(120, std::time::Duration::from_millis(10), check).await {
            self.stuck(what).await;
        }
    }

    /// Fails a wait of two minutes for `what`, with the leases and what the mock last received.
    async fn stuck(&self, what: &str) -> ! {
        let requests = self.mock.requests.lock().unwrap().clone();
        let last: Vec<String> = requests
            .iter()
            .rev()
            .take(30)
            .map(|r| format!("{} {} {} {:?}", r.authorization, r.method, r.path, r.query))
            .collect();
        let writes = self.mock.status_writes.lock().unwrap().clone();
        let leases: Vec<(String, String, String)> =
            sqlx::query_as("SELECT tenant_id, holder, expires_at FROM tenant_leases")
                .fetch_all(self.state.store.pool())
                .await
                .unwrap_or_default();
        panic!(
            "{what}: not within two minutes; leases: {leases:?}\nlast requests (newest first): {last:#?}\n\
             status writes: {writes:#?}"
        );
    }

    /// What the mock still holds of the tenant `id` (its namespace, anything in it, anything
    /// carrying its label), by path: nothing once it is purged.
    fn left_of(&self, id: &str, slug: &str) -> Vec<String> {
        let namespace = format!("ent-{slug}");
        let inside = format!("/namespaces/{namespace}/");
        let objects = self.mock.objects.lock().unwrap();
        let mut left = Vec::new();
        for (collection, items) in objects.iter() {
            for (name, object) in items {
                let labelled = object["metadata"]["labels"]["entcp.education.fr/tenant"] == id;
                if labelled || collection.contains(&inside) || *name == namespace {
                    left.push(format!("{collection}/{name}"));
                }
            }
        }
        left
    }

    async fn event_kinds(&self, slug: &str) -> Vec<String> {
        let t = self.get(slug).await;
        tenants::events(&self.state.store, &t.id).await.unwrap().into_iter().map(|e| e.kind).collect()
    }
}

/// A client of the mock from `state`'s configuration, as `entctl serve` and `entctl operator` build it.
async fn client_of(state: &AppState) -> kube::Client {
    use entcp::provisioning::backend::Backend;
    match Backend::from_config(&state.config, &state.reconciler).await.unwrap() {
        Backend::Kube(kube) => kube.client(),
        Backend::Manifests(_) => unreachable!("the world's backend is kube"),
    }
}

/// The API path of a rendered object in namespace `ns`.
fn path_of(object: &entcp::provisioning::RenderedObject, ns: &str) -> String {
    let api_version = object.manifest["apiVersion"].as_str().unwrap();
    let prefix = if api_version.contains('/') { format!("/apis/{api_version}") } else { format!("/api/{api_version}") };
    let plural = match object.kind.as_str() {
        "NetworkPolicy" => "networkpolicies".to_string(),
        "Ingress" => "ingresses".to_string(),
        kind => format!("{}s", kind.to_ascii_lowercase()),
    };
    if object.kind == "Namespace" {
        format!("{prefix}/namespaces/{}", object.name)
    } else {
        format!("{prefix}/namespaces/{ns}/{plural}/{}", object.name)
    }
}

fn instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

/// The retry time is the backoff `base` after the failure plus a jitter of at most a fifth of it.
fn assert_retry_between(
    state: &entcp::tenants::ProvisioningState,
    earliest: chrono::DateTime<chrono::Utc>,
    base: chrono::Duration,
) {
    let at = instant(state.retry_at.as_deref().unwrap());
    assert!(
        at >= earliest && at <= earliest + base / 5,
        "retry at {at}, expected from {earliest} plus a fifth of {base}"
    );
}

fn paths(requests: &[Request], method: &str) -> Vec<String> {
    requests.iter().filter(|r| r.method == method).map(|r| r.path.clone()).collect()
}

#[tokio::test]
async fn server_side_apply_sends_each_object_as_an_api_server_expects_then_reads_deployments_back() {
    let w = World::new().await;
    let tenant = w.tenant("doisneau", "0940176F", json!([])).await;
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");
    let requests = w.take_requests();

    // Every rendered object is applied, Namespace first, with the body render produced.
    let desired = tenants::render(&w.state.tenants(), &w.get("doisneau").await).await.unwrap();
    // First the namespace is looked up by name (absent: nothing to take over, no volume to fit).
    assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("GET", "/api/v1/namespaces"));
    assert_eq!(requests[0].query.get("fieldSelector").map(String::as_str), Some("metadata.name=ent-doisneau"));
    let requests = requests[1..].to_vec();
    // Then a server-side dry-run of every object, then the writes.
    let dry_run = |r: &Request| r.query.get("dryRun").is_some_and(|v| v == "All");
    let first_write = requests.iter().position(|r| r.method == "PATCH" && !dry_run(r)).unwrap();
    assert_eq!(first_write, desired.len(), "every object dry-run before the first write");
    assert!(requests[..first_write].iter().all(|r| r.method == "PATCH" && dry_run(r)));
    let requests = requests[first_write..].to_vec();
    let patches: Vec<&Request> = requests.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), desired.len());
    assert_eq!(patches[0].path, "/api/v1/namespaces/ent-doisneau");
    let portail = patches.iter().find(|r| r.path == "/apis/apps/v1/namespaces/ent-doisneau/deployments/portail");
    let portail = portail.expect("the portail Deployment is applied at its API path");
    assert_eq!(portail.body["kind"], "Deployment");
    assert_eq!(portail.body["spec"]["replicas"], 1);
    for object in &desired {
        let sent = patches.iter().find(|r| r.path == path_of(object, "ent-doisneau")).expect("applied");
        assert_eq!(sent.body, object.manifest, "{} is sent as rendered", object.name);
        assert_eq!(sent.content_type, "application/apply-patch+yaml");
        let query: Vec<(&str, &str)> = sent.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(query, [("fieldManager", "entcp"), ("force", "true")], "server-side apply, forced");
        assert_eq!(sent.authorization, "Bearer jeton-de-test", "the kubeconfig's credentials");
        assert_eq!(sent.user_agent, format!("entcp/{}", env!("CARGO_PKG_VERSION")));
        assert_eq!(sent.body["metadata"]["labels"]["entcp.education.fr/tenant"], tenant.id.as_str());
    }
    let position = |kind: &str| patches.iter().position(|r| r.body["kind"] == kind).unwrap();
    assert!(position("Namespace") < position("Secret") && position("Secret") < position("Deployment"));
    assert!(position("Service") < position("Ingress") && position("PersistentVolumeClaim") < position("Deployment"));

    // Then the tenant's objects are listed by label, per kind in its namespace, to prune; nothing to delete yet.
    let first_get = requests.iter().position(|r| r.method == "GET").unwrap();
    assert!(requests[..first_get].iter().all(|r| r.method == "PATCH"), "apply all, then prune");
    let lists = paths(&requests, "GET");
    assert_eq!(lists.len(), 9, "{lists:?}");
    assert!(lists.contains(&"/apis/apps/v1/namespaces/ent-doisneau/deployments".to_string()));
    assert!(lists.contains(&CLAIMS.to_string()));
    let selector = format!("app.kubernetes.io/managed-by=entcp,entcp.education.fr/tenant={}", tenant.id);
    assert!(requests.iter().filter(|r| r.method == "GET").all(|r| r.query.get("labelSelector") == Some(&selector)));
    assert!(paths(&requests, "DELETE").is_empty());

    // The Deployments' status is read back into the tenant: not available yet.
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!(state.observed.as_deref(), Some("progressing"), "{state:?}");
    assert!(state.observed_detail.unwrap().starts_with("0/8 déploiements disponibles"));
    assert!(w.event_kinds("doisneau").await.contains(&"progressing".to_string()));

    // A no-op pass writes nothing; while the rollout goes on it only reads the Deployments.
    *w.mock.deployments_available.lock().unwrap() = true;
    let noop = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((noop.applied, noop.unchanged), (0, 1));
    let requests = w.take_requests();
    assert_eq!(paths(&requests, "GET"), ["/apis/apps/v1/namespaces/ent-doisneau/deployments"]);
    assert_eq!(requests.len(), 1, "no write on a no-op pass");
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!(state.observed.as_deref(), Some("available"));
    assert_eq!(state.observed_detail.as_deref(), Some("8/8 déploiements disponibles"));
    assert!(w.event_kinds("doisneau").await.contains(&"provisioned".to_string()));
    // Once available, a no-op pass does not even read.
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert!(w.take_requests().is_empty());
}

#[tokio::test]
async fn pruning_deletes_exactly_what_is_no_longer_desired_and_a_404_on_delete_counts_as_deleted() {
    let w = World::new().await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    let base = tenants::render(&w.state.tenants(), &w.get("doisneau").await).await.unwrap();
    w.apply("doisneau", "0940176F", json!(["moodle"])).await;
    let with_option = tenants::render(&w.state.tenants(), &w.get("doisneau").await).await.unwrap();
    w.take_requests();
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    let added: BTreeSet<String> = with_option
        .iter()
        .filter(|o| !base.iter().any(|b| b.kind == o.kind && b.name == o.name))
        .map(|o| path_of(o, "ent-doisneau"))
        .collect();
    assert_eq!(
        added,
        BTreeSet::from([
            "/api/v1/namespaces/ent-doisneau/persistentvolumeclaims/exercices-data".to_string(),
            "/api/v1/namespaces/ent-doisneau/secrets/exercices-credentials".to_string(),
            "/api/v1/namespaces/ent-doisneau/services/exercices".to_string(),
            "/apis/apps/v1/namespaces/ent-doisneau/deployments/exercices".to_string(),
        ])
    );
    let patched: BTreeSet<String> = paths(&w.take_requests(), "PATCH").into_iter().collect();
    assert!(added.is_subset(&patched));

    // Removing the option deletes exactly its objects; the Deployment is already gone (404): still done.
    w.fail_once(
        "DELETE",
        "/apis/apps/v1/namespaces/ent-doisneau/deployments/exercices",
        404,
        "NotFound",
        "deployments.apps \"exercices\" not found",
    );
    w.apply("doisneau", "0940176F", json!([])).await;
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");
    let requests = w.take_requests();
    let deleted: BTreeSet<String> = paths(&requests, "DELETE").into_iter().collect();
    let claim = "/api/v1/namespaces/ent-doisneau/persistentvolumeclaims/exercices-data".to_string();
    let expected: BTreeSet<String> = added.iter().filter(|p| **p != claim).cloned().collect();
    assert_eq!(deleted, expected, "exactly the option's objects are pruned, its volume kept");
    let retained = requests.iter().find(|r| r.path == claim && r.method == "PATCH").expect("the volume marked");
    assert_eq!(retained.body["metadata"]["labels"]["entcp.education.fr/retained"], "true");
    assert!(w.get("doisneau").await.provisioning_state.error.is_none());

    // Suspension scales to zero; decommissioning deletes workloads and keeps data and credentials.
    w.move_to("doisneau", Status::Active).await;
    w.move_to("doisneau", Status::Suspended).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    let requests = w.take_requests();
    let portail =
        requests.iter().find(|r| r.path == "/apis/apps/v1/namespaces/ent-doisneau/deployments/portail").unwrap();
    assert_eq!(portail.body["spec"]["replicas"], 0);
    assert_eq!(w.get("doisneau").await.provisioning_state.observed.as_deref(), Some("stopped"));
    w.move_to("doisneau", Status::Decommissioning).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    let deleted = paths(&w.take_requests(), "DELETE");
    assert!(deleted.contains(&"/apis/apps/v1/namespaces/ent-doisneau/deployments/portail".to_string()));
    assert!(deleted.contains(&"/apis/networking.k8s.io/v1/namespaces/ent-doisneau/ingresses/ent".to_string()));
    assert!(deleted.iter().all(|p| !p.contains("/persistentvolumeclaims/") && !p.contains("/secrets/")), "{deleted:?}");
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!(state.observed.as_deref(), Some("data_only"));

    // Archived, the data is kept for the retention period, then the purge deletes the namespace.
    w.move_to("doisneau", Status::Archived).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    w.take_requests();
    let early = t0() + chrono::Duration::days(80);
    assert!(entcp::provisioning::purge::purge_due(&w.state.provisioning(), early).await.unwrap().is_empty());
    assert!(w.take_requests().is_empty(), "nothing deleted before three months");
    let later = t0() + chrono::Duration::days(93);
    assert_eq!(entcp::provisioning::purge::purge_due(&w.state.provisioning(), later).await.unwrap(), ["doisneau"]);
    let requests = w.take_requests();
    // Listed, deleted, listed again: the cluster lists it no more, the removal is confirmed.
    assert_eq!(paths(&requests, "GET"), ["/api/v1/namespaces", "/api/v1/namespaces"]);
    assert_eq!(paths(&requests, "DELETE"), ["/api/v1/namespaces/ent-doisneau"]);
    assert!(w.mock.objects.lock().unwrap().keys().all(|c| !c.contains("ent-doisneau")), "nothing left");
    let purged = w.get("doisneau").await;
    assert_eq!(purged.status, Status::Purged);
    assert_eq!(purged.provisioning_state.observed.as_deref(), Some("removed"));
    let attested = purged.destruction.expect("attested once the cluster confirmed the deletion");
    assert_eq!(attested.destroyed_at.as_deref(), Some(entcp::store::timestamp(later).as_str()));
}

#[tokio::test]
async fn a_conflict_is_recorded_and_retried_a_server_error_is_retried_with_backoff_and_others_go_on() {
    let w = World::new().await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    w.tenant("wallon", "0940198E", json!([])).await;
    w.fail_once(
        "PATCH",
        "/apis/apps/v1/namespaces/ent-doisneau/deployments/portail",
        409,
        "Conflict",
        "Operation cannot be fulfilled on deployments.apps \"portail\": the object has been modified",
    );
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 1), "the other tenant is applied: {report:?}");
    let state = w.get("doisneau").await.provisioning_state;
    let error = state.error.clone().unwrap();
    assert!(error.contains("409 Conflict") && error.contains("ent-doisneau/portail"), "{error}");
    assert_eq!(state.failures, 1);
    assert_retry_between(&state, t0() + chrono::Duration::minutes(1), chrono::Duration::minutes(1));
    assert!(w.event_kinds("doisneau").await.contains(&"reconcile_failed".to_string()));
    assert_eq!(w.get("wallon").await.provisioning_state.observed.as_deref(), Some("progressing"));

    // Before its retry time the tenant is left alone, without a request.
    w.take_requests();
    let early = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((early.deferred, early.held), (1, 0), "waiting for its retry, not held: {early:?}");
    assert!(w.take_requests().iter().all(|r| !r.path.contains("ent-doisneau")));

    // A server error at the retry: failure again, the delay doubles; then it succeeds.
    w.fail_once("PATCH", "/api/v1/namespaces/ent-doisneau", 500, "InternalError", "etcdserver: request timed out");
    let at = instant(state.retry_at.as_deref().unwrap());
    assert_eq!(pass(&w.state.provisioning(), None, at).await.unwrap().failed, 1);
    let state = w.get("doisneau").await.provisioning_state;
    assert!(state.error.as_deref().unwrap().contains("500 InternalError"), "{state:?}");
    assert_eq!(state.failures, 2);
    assert_retry_between(&state, at + chrono::Duration::minutes(2), chrono::Duration::minutes(2));
    let later = instant(state.retry_at.as_deref().unwrap());
    let report = pass(&w.state.provisioning(), None, later).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!((state.error, state.failures, state.retry_at), (None, 0, None));
    assert_eq!(state.observed.as_deref(), Some("progressing"));
}

#[tokio::test]
async fn an_unreachable_cluster_fails_the_pass_and_changes_nothing() {
    let w = World::new().await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    let mut state = w.state.clone();
    let mut config = (*state.config).clone();
    config.provisioning.kube.kubeconfig = Some("/nonexistent/kubeconfig".into());
    state.config = Arc::new(config);
    let err = pass(&state.provisioning(), None, t0()).await.unwrap_err();
    assert!(err.detail.contains("kubeconfig"), "{}", err.detail);
    assert!(w.get("doisneau").await.provisioning_state.reconciled_at.is_none());
}

#[tokio::test]
async fn a_pass_reconciles_at_most_the_configured_number_of_tenants_at_once() {
    let w = World::with_concurrency(2).await;
    let schools = ["0940176F", "0940198E", "0940204L", "0940209S", "0940213W", "0940235V"];
    let mut slugs = Vec::new();
    for (i, uai) in schools.iter().enumerate() {
        let slug = format!("ecole-{i}");
        w.tenant(&slug, uai, json!([])).await;
        slugs.push(slug);
    }
    w.mock.patch_delay_ms.store(15, Ordering::SeqCst);
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (6, 0), "{report:?}");
    // Each tenant's requests go one after the other: requests in flight are tenants in flight.
    let most = w.mock.max_in_flight.load(Ordering::SeqCst);
    assert_eq!(most, 2, "two tenants at a time, never more (and the bound is really used)");
    let namespaces: BTreeSet<String> = paths(&w.take_requests(), "PATCH")
        .iter()
        .filter_map(|p| p.strip_prefix("/api/v1/namespaces/").filter(|rest| !rest.contains('/')).map(String::from))
        .collect();
    assert_eq!(namespaces.len(), 6, "{namespaces:?}");
}

backend_test!(a_failed_apply_then_a_reverted_spec_converges_to_the_rendered_objects_with_the_error_cleared);
async fn a_failed_apply_then_a_reverted_spec_converges_to_the_rendered_objects_with_the_error_cleared(
    db: common::TestDb,
) {
    let w = World::on(db, |_| {}).await;
    w.tenant_applied("doisneau", "0940176F", json!([])).await;

    // An option whose Deployment the server refuses: its volume and Service are written, not its Deployment.
    w.apply("doisneau", "0940176F", json!(["moodle"])).await;
    let deployment = "/apis/apps/v1/namespaces/ent-doisneau/deployments/exercices";
    w.fail_once("PATCH", deployment, 500, "InternalError", "etcdserver: request timed out");
    let failed = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((failed.applied, failed.failed), (0, 1), "{failed:?}");
    let state = w.get("doisneau").await.provisioning_state;
    assert!(state.error.as_deref().unwrap().contains("500 InternalError"), "{state:?}");
    let live = w.live("ent-doisneau");
    assert!(live.contains_key("/api/v1/namespaces/ent-doisneau/persistentvolumeclaims/exercices-data"), "half applied");
    assert!(!live.contains_key(deployment));

    // The same inputs wait for their retry time, without a request.
    w.take_requests();
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().deferred, 1);
    assert!(w.take_requests().is_empty());

    // The spec put back is applied at once (before that retry time): the half-applied
    // objects are pruned and the error is cleared.
    w.apply("doisneau", "0940176F", json!([])).await;
    let reverted = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((reverted.applied, reverted.failed, reverted.deferred), (1, 0, 0), "{reverted:?}");
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!((state.error, state.failures, state.retry_at), (None, 0, None));
    w.assert_live_as_rendered("doisneau").await;
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().unchanged, 1, "converged");

    // A corrected spec after a failure starts a new backoff: one failure, not two.
    w.apply("doisneau", "0940176F", json!(["moodle"])).await;
    w.fail_once("PATCH", deployment, 500, "InternalError", "etcdserver: request timed out");
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    w.apply("doisneau", "0940176F", json!(["visio"])).await;
    w.fail_once("PATCH", "/apis/apps/v1/namespaces/ent-doisneau/deployments/visio", 500, "InternalError", "etcd");
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().failed, 1, "not deferred");
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!(state.failures, 1, "{state:?}");
}

backend_test!(retries_are_capped_in_the_client_a_hung_request_times_out_and_a_tenant_has_a_deadline);
async fn retries_are_capped_in_the_client_a_hung_request_times_out_and_a_tenant_has_a_deadline(db: common::TestDb) {
    let w = World::on(db, |c| {
        c.provisioning.reconcile.request_retries = 2;
        c.provisioning.reconcile.request_timeout_seconds = 0.5;
    })
    .await;
    w.tenant("doisneau", "0940176F", json!([])).await;

    // A server answering 503 for ever: the request is sent three times (two retries), then the tenant fails.
    let namespace = "/api/v1/namespaces/ent-doisneau";
    w.fail("PATCH", namespace, 503, "ServiceUnavailable", "the server is currently unable to handle the request", 1000);
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let sent = w.take_requests();
    let writes: Vec<&Request> =
        sent.iter().filter(|r| r.method == "PATCH" && !r.query.contains_key("dryRun")).collect();
    assert_eq!(writes.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), [namespace; 3], "two retries, no more");
    let error = w.get("doisneau").await.provisioning_state.error.unwrap();
    assert!(error.contains("503 ServiceUnavailable"), "{error}");
    w.mock.faults.lock().unwrap().clear();

    // A PATCH never answered fails after the per-request timeout, saying so.
    let portail = "/apis/apps/v1/namespaces/ent-doisneau/deployments/portail";
    *w.mock.hang.lock().unwrap() = Some(portail.to_string());
    w.apply("doisneau", "0940176F", json!(["visio"])).await;
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().failed, 1);
    let error = w.get("doisneau").await.provisioning_state.error.unwrap();
    assert!(error.contains("ent-doisneau/portail") && error.contains("pas de réponse en 0.5 s"), "{error}");
    assert_eq!(
        paths(&w.take_requests(), "PATCH").iter().filter(|p| *p == portail).count(),
        1,
        "a timeout is not retried"
    );
    *w.mock.hang.lock().unwrap() = None;

    // Slow answers that each come in time, but more than the tenant's deadline in all.
    let mut config = (*w.state.config).clone();
    config.provisioning.reconcile.tenant_deadline_seconds = 0.3;
    let mut state = w.state.clone();
    state.config = Arc::new(config);
    w.mock.patch_delay_ms.store(100, Ordering::SeqCst);
    w.apply("doisneau", "0940176F", json!([])).await;
    assert_eq!(pass(&state.provisioning(), None, t0()).await.unwrap().failed, 1);
    let error = w.get("doisneau").await.provisioning_state.error.unwrap();
    assert!(error.contains("délai de 0.3 s par tenant dépassé"), "{error}");
}

// A pass cut short in the middle of a change (a shutdown, a lost lease) recorded nothing: the
// tenant kept the applied hash of its previous spec, so a spec reverted to it before the next
// pass read as settled on the half-applied change until the periodic resync.
backend_test!(a_change_cut_short_mid_apply_is_applied_again_even_once_its_spec_is_reverted);
async fn a_change_cut_short_mid_apply_is_applied_again_even_once_its_spec_is_reverted(db: common::TestDb) {
    let w = World::on(db, |c| c.provisioning.reconcile.request_timeout_seconds = 30.0).await;
    w.tenant_applied("doisneau", "0940176F", json!([])).await;
    w.apply("doisneau", "0940176F", json!(["visio"])).await;
    let portail = "/apis/apps/v1/namespaces/ent-doisneau/deployments/portail";
    *w.mock.hang.lock().unwrap() = Some(portail.to_string());
    // Cut once the portail PATCH hangs (the lease is taken by then: a cut while its INSERT is
    // in flight would land it after the release, never to expire on the fixed clock).
    w.take_requests();
    let provisioning = w.state.provisioning();
    let writing = tokio::spawn(async move { pass(&provisioning, None, t0()).await });
    w.until(|w| w.mock.requests.lock().unwrap().iter().any(|r| r.method == "PATCH" && r.path == portail)).await;
    assert!(!writing.is_finished(), "the pass hangs on the portail until it is cut");
    writing.abort();
    assert!(writing.await.unwrap_err().is_cancelled(), "the pass hangs on the portail until it is cut");
    entcp::provisioning::lease::release_all(&w.state.provisioning()).await.unwrap();
    *w.mock.hang.lock().unwrap() = None;

    w.apply("doisneau", "0940176F", json!([])).await;
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!(report.applied, 1, "{}: {report:?}", w._db.name);
}

backend_test!(a_transport_error_is_reported_with_its_cause);
async fn a_transport_error_is_reported_with_its_cause(db: common::TestDb) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let w = World::on(db, |c| c.provisioning.reconcile.request_retries = 0).await;
    let kubeconfig = w.state.config.provisioning.kube.kubeconfig.clone().unwrap();
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let server = text.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_string();
    std::fs::write(&kubeconfig, text.replace(&server, &format!("http://{closed}"))).unwrap();
    w.tenant("doisneau", "0940176F", json!([])).await;
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().failed, 1);
    let error = w.get("doisneau").await.provisioning_state.error.unwrap();
    assert!(error.contains("Connection refused") || error.contains("connection refused"), "{error}");
}

backend_test!(a_hung_patch_fails_after_the_timeout_in_the_work_queue_while_the_outbox_job_runs_on_schedule);
async fn a_hung_patch_fails_after_the_timeout_in_the_work_queue_while_the_outbox_job_runs_on_schedule(
    db: common::TestDb,
) {
    let w = World::on(db, |c| c.provisioning.reconcile.request_timeout_seconds = 5.0).await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    let mail = common::queue_test_mail(&w.state.store, "directrice@ecole.example.fr", t0()).await;

    // The work queue runs beside the scheduler, as in `entctl serve`; the tenant's PATCH hangs.
    let (shutdown, queue) = w.queue_until_portail_hangs("doisneau").await;

    // The jobs due now run to their end while that request still hangs: the outbox sends its mail
    // and the reconcile job only hands a full pass to the queue.
    let mut config = (*w.state.config).clone();
    entcp::api::jobs::configure(&mut config).unwrap();
    let jobs = entcp::api::jobs::scheduled_jobs(&config)
        .unwrap()
        .into_iter()
        .filter(|j| ["outbox-send", "tenants-reconcile"].contains(&j.job.name))
        .collect();
    let scheduler = entcp::api::scheduler::Scheduler::with_jobs(w.state.clone(), "solo", jobs).unwrap();
    let runs = scheduler.run_due(t0()).await.unwrap();
    assert_eq!(w.mock.in_flight.load(Ordering::SeqCst), 1, "the PATCH still hangs");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.outcome == "success"), "{runs:?}");
    let reconcile = runs.iter().find(|r| r.job == "tenants-reconcile").unwrap();
    assert_eq!(reconcile.message.as_deref(), Some("passe complète confiée à la file de réconciliation"));
    assert_eq!(entcp::notify::get_message(&w.state.store, &mail).await.unwrap().status, "sent");

    // The hung request fails after its timeout; the tenant records why.
    let failed = || async { w.get("doisneau").await.provisioning_state.error.is_some() };
    w.until_stored("the tenant records the hung request's failure", failed).await;
    let error = w.get("doisneau").await.provisioning_state.error.unwrap();
    assert!(error.contains("ent-doisneau/portail") && error.contains("pas de réponse en 5 s"), "{error}");
    // The full pass the job queued is taken once the hung request has failed: the queue empties
    // just after the failure is recorded (the tenant then waits for its retry, nothing is sent).
    w.until(|w| w.state.reconciler.depth.load(Ordering::SeqCst) == 0).await;
    // The failure and its cause are on /metrics, with the failing tenant and the requests sent.
    let metrics = entcp::api::metrics::text(&w.state);
    assert!(metrics.contains("entcp_reconcile_errors_total{cause=\"timeout\"} 1"), "{metrics}");
    assert!(metrics.contains("entcp_reconcile_oldest_failure_seconds{tenant=\"doisneau\"} 0"), "{metrics}");
    assert!(metrics.contains("entcp_reconcile_tenant_duration_seconds{tenant=\"doisneau\"}"), "{metrics}");
    assert!(metrics.contains("entcp_reconcile_queue_depth 0"), "{metrics}");
    let sent = w.mock.requests.lock().unwrap().len();
    assert!(metrics.contains(&format!("entcp_kube_requests_total {sent}")), "{sent} requests: {metrics}");
    shutdown.cancel();
    queue.await.unwrap();
    assert!(!w.state.reconciler.enqueue(None), "the queue is closed at shutdown");
}

backend_test!(two_reconcilers_on_one_database_never_write_one_tenant_at_once_and_leases_expire_renew_and_are_released);
async fn two_reconcilers_on_one_database_never_write_one_tenant_at_once_and_leases_expire_renew_and_are_released(
    db: common::TestDb,
) {
    // Leases of 3 s renewed every second, and applies that take longer than a lease.
    let w = World::on(db, |c| c.provisioning.reconcile.lease_seconds = 3).await;
    let other = entcp::store::Store::connect(&w._db.url, None).await.unwrap();
    let b = crate::common::app::app_state(other.clone(), (*w.state.config).clone(), Arc::new(FixedClock::new(t0())));
    let schools = [("doisneau", "0940176F"), ("wallon", "0940198E"), ("ecole-l", "0940204L"), ("ecole-s", "0940209S")];
    for (slug, uai) in schools {
        w.tenant(slug, uai, json!([])).await;
    }
    w.mock.patch_delay_ms.store(100, Ordering::SeqCst);
    let run = |state: AppState| async move { pass(&state.provisioning(), None, t0()).await.unwrap() };
    let (ra, rb) = tokio::join!(tokio::spawn(run(w.state.clone())), tokio::spawn(run(b.clone())));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.failed + rb.failed, 0, "{ra:?} {rb:?}");
    assert_eq!(ra.applied + rb.applied, 4, "each tenant written once: {ra:?} {rb:?}");
    assert_eq!(w.mock.max_per_namespace.load(Ordering::SeqCst), 1, "never two writers of one tenant at once");
    for (slug, _) in schools {
        w.assert_live_as_rendered(slug).await;
    }
    assert_eq!(common::count(&w.state.store, "SELECT COUNT(*) AS n FROM tenant_leases", &[]).await, 0, "released");
    w.mock.patch_delay_ms.store(0, Ordering::SeqCst);

    // A lease left by a dead process is taken over once it ran out; a live one defers the tenant.
    w.apply("doisneau", "0940176F", json!(["visio"])).await;
    let tenant = w.get("doisneau").await;
    let lease = |holder: &str, until: chrono::DateTime<chrono::Utc>| {
        sqlx::query("INSERT INTO tenant_leases (tenant_id, holder, expires_at) VALUES ($1, $2, $3)")
            .bind(tenant.id.clone())
            .bind(holder.to_string())
            .bind(entcp::store::timestamp(until))
    };
    lease("vivant", t0() + chrono::Duration::minutes(5)).execute(w.state.store.pool()).await.unwrap();
    let deferred = pass(&b.provisioning(), Some("doisneau"), t0()).await.unwrap();
    assert_eq!((deferred.deferred, deferred.held), (1, 1), "held by the live lease: {deferred:?}");
    sqlx::query("DELETE FROM tenant_leases").execute(w.state.store.pool()).await.unwrap();
    lease("mort", t0() - chrono::Duration::seconds(1)).execute(w.state.store.pool()).await.unwrap();
    assert_eq!(pass(&b.provisioning(), Some("doisneau"), t0()).await.unwrap().applied, 1);

    // At shutdown, the work queue releases the lease of a write it cut short.
    w.apply("doisneau", "0940176F", json!([])).await;
    w.take_requests();
    let (shutdown, queue) = w.queue_until_portail_hangs("doisneau").await;
    let held = "SELECT COUNT(*) AS n FROM tenant_leases WHERE holder = $1";
    assert_eq!(common::count(&w.state.store, held, &[&w.state.reconciler.holder]).await, 1, "held while writing");
    shutdown.cancel();
    queue.await.unwrap();
    assert_eq!(common::count(&w.state.store, held, &[&w.state.reconciler.holder]).await, 0, "released at shutdown");
    other.close().await;
}

backend_test!(
    the_purge_hands_its_tenants_to_the_work_queue_and_the_shutdown_leaves_the_lease_another_task_writes_under
);
async fn the_purge_hands_its_tenants_to_the_work_queue_and_the_shutdown_leaves_the_lease_another_task_writes_under(
    db: common::TestDb,
) {
    let w = World::on(db, |_| {}).await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    w.tenant("wallon", "0940198E", json!([])).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    for to in [Status::Active, Status::Decommissioning, Status::Archived] {
        w.move_to("doisneau", to).await;
    }
    pass(&w.state.provisioning(), Some("doisneau"), t0()).await.unwrap();

    // The work queue runs as in `entctl serve`; the namespace's DELETE never gets an answer.
    let namespace = "/api/v1/namespaces/ent-doisneau";
    *w.mock.hang.lock().unwrap() = Some(namespace.into());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let queue = tokio::spawn(entcp::provisioning::reconcile::run_queue(w.state.provisioning(), shutdown.clone()));
    w.until(|w| w.state.reconciler.queue_open()).await;
    // The purge job does not wait on the cluster: it hands the tenant to the queue, which deletes it.
    let later = t0() + chrono::Duration::days(93);
    let provisioning = w.state.provisioning();
    let purge = entcp::provisioning::purge::purge_due(&provisioning, later);
    let purged =
        tokio::time::timeout(std::time::Duration::from_secs(10), purge).await.expect("not held by the cluster");
    assert_eq!(purged.unwrap(), ["doisneau"]);
    w.until(|w| w.mock.requests.lock().unwrap().iter().any(|r| r.method == "DELETE" && r.path == namespace)).await;

    // A task of this process outside the queue writes wallon, slowly, when the shutdown comes.
    let wallon = w.get("wallon").await.id;
    w.apply("wallon", "0940198E", json!(["visio"])).await;
    w.mock.patch_delay_ms.store(300, Ordering::SeqCst);
    let state = w.state.provisioning();
    let writing = tokio::spawn(async move { pass(&state, Some("wallon"), t0()).await.unwrap() });
    let lease = "SELECT COUNT(*) AS n FROM tenant_leases WHERE tenant_id = $1 AND holder = $2";
    let holder = w.state.reconciler.holder.clone();
    let doisneau = w.get("doisneau").await.id;
    let taken = || async { common::count(&w.state.store, lease, &[&wallon, &holder]).await != 0 };
    w.until_stored("wallon's write takes its lease", taken).await;
    assert_eq!(common::count(&w.state.store, lease, &[&doisneau, &holder]).await, 1, "the queue's purge holds it");
    shutdown.cancel();
    queue.await.unwrap();
    // The queue releases the lease of the write it cut short, not the one the other task writes under.
    assert_eq!(common::count(&w.state.store, lease, &[&doisneau, &holder]).await, 0, "released at shutdown");
    assert_eq!(common::count(&w.state.store, lease, &[&wallon, &holder]).await, 1, "still written under");
    w.mock.patch_delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(writing.await.unwrap().applied, 1);
    assert_eq!(common::count(&w.state.store, lease, &[&wallon, &holder]).await, 0, "released by its writer");
    assert!(w.stored("/apis/apps/v1/namespaces/ent-wallon/deployments", "visio").is_some());
}

backend_test!(a_deleted_network_policy_is_restored_on_the_next_resync_and_a_dry_run_refusal_writes_nothing);
async fn a_deleted_network_policy_is_restored_on_the_next_resync_and_a_dry_run_refusal_writes_nothing(
    db: common::TestDb,
) {
    let w = World::on(db, |c| c.provisioning.reconcile.resync_seconds = 600).await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().applied, 1);
    assert_eq!(w.get("doisneau").await.provisioning_state.observed.as_deref(), Some("available"));

    // Deleted by hand: nothing is watched, so the tenant stays as it is until its resync period is over.
    let policies = "/apis/networking.k8s.io/v1/namespaces/ent-doisneau/networkpolicies";
    let removed = w.mock.objects.lock().unwrap().get_mut(policies).unwrap().pop_first().unwrap().0;
    w.take_requests();
    assert_eq!(pass(&w.state.provisioning(), None, t0() + chrono::Duration::seconds(599)).await.unwrap().unchanged, 1);
    assert!(w.take_requests().is_empty(), "an available tenant is left alone within its resync period");

    // On the resync the objects are applied again: the policy is back, no event for the same inputs.
    let events = w.event_kinds("doisneau").await.len();
    let resync = t0() + chrono::Duration::seconds(600);
    assert_eq!(pass(&w.state.provisioning(), None, resync).await.unwrap().applied, 1);
    assert!(paths(&w.take_requests(), "PATCH").contains(&format!("{policies}/{removed}")));
    w.assert_live_as_rendered("doisneau").await;
    assert_eq!(w.event_kinds("doisneau").await.len(), events);

    // A rollout not yet seen by the Deployment controller is not « available » (observedGeneration behind).
    w.apply("doisneau", "0940176F", json!(["visio"])).await;
    assert_eq!(pass(&w.state.provisioning(), None, resync).await.unwrap().applied, 1);
    assert_eq!(w.get("doisneau").await.provisioning_state.observed.as_deref(), Some("available"));
    *w.mock.generation_behind.lock().unwrap() = true;
    let later = resync + chrono::Duration::seconds(600);
    pass(&w.state.provisioning(), None, later).await.unwrap();
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!(state.observed.as_deref(), Some("progressing"), "{state:?}");

    // What the server-side dry-run refuses fails the pass before anything is written.
    w.apply("doisneau", "0940176F", json!([])).await;
    let fault = Fault {
        method: "PATCH",
        path: "/apis/networking.k8s.io/v1/namespaces/ent-doisneau/ingresses/ent".into(),
        code: 422,
        reason: "Invalid",
        message: "admission webhook denied the request",
        times: 1,
        dry_run: true,
    };
    w.mock.faults.lock().unwrap().push(fault);
    w.take_requests();
    assert_eq!(pass(&w.state.provisioning(), None, later).await.unwrap().failed, 1);
    let requests = w.take_requests();
    assert!(requests.iter().all(|r| r.method == "GET" || r.query.contains_key("dryRun")), "nothing written");
    let error = w.get("doisneau").await.provisioning_state.error.unwrap();
    assert!(error.contains("422 Invalid") && error.contains("dry-run"), "{error}");
}

backend_test!(a_removed_options_secret_disappears_from_the_live_namespace);
async fn a_removed_options_secret_disappears_from_the_live_namespace(db: common::TestDb) {
    let w = World::on(db, |_| {}).await;
    w.tenant("doisneau", "0940176F", json!(["visio"])).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    // One Secret per service, its credential under `data` (server-side apply owns those keys).
    let secrets = |w: &World| -> Vec<String> {
        let live = w.live("ent-doisneau");
        let prefix = "/api/v1/namespaces/ent-doisneau/secrets/";
        let mut names: Vec<String> =
            live.keys().filter_map(|path| path.strip_prefix(prefix)).map(str::to_string).collect();
        for name in &names {
            let keys: Vec<&String> = live[&format!("{prefix}{name}")]["data"].as_object().unwrap().keys().collect();
            assert_eq!(keys, ["password"], "{name}");
        }
        names.sort();
        names
    };
    assert!(secrets(&w).contains(&"visio-credentials".to_string()), "{:?}", secrets(&w));
    assert!(secrets(&w).contains(&"portail-credentials".to_string()), "{:?}", secrets(&w));
    w.apply("doisneau", "0940176F", json!([])).await;
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().applied, 1);
    assert!(!secrets(&w).contains(&"visio-credentials".to_string()), "{:?}", secrets(&w));
    assert!(secrets(&w).contains(&"portail-credentials".to_string()), "{:?}", secrets(&w));
    w.assert_live_as_rendered("doisneau").await;
}

backend_test!(a_removed_services_volume_is_kept_until_the_purge_and_the_quota_is_raised_before_a_new_volume_is_checked);
async fn a_removed_services_volume_is_kept_until_the_purge_and_the_quota_is_raised_before_a_new_volume_is_checked(
    db: common::TestDb,
) {
    let w = World::on(db, |_| {}).await;
    w.tenant_applied("doisneau", "0940176F", json!([])).await;
    let quota = "/api/v1/namespaces/ent-doisneau/resourcequotas/quota";
    let dry_run = |r: &Request| r.query.contains_key("dryRun");

    // An option with a volume on a provisioned tenant: the quota admission checks the volume's
    // dry-run against the live quota (used = hard), so the quota is raised for real first.
    w.apply("doisneau", "0940176F", json!(["moodle"])).await;
    w.take_requests();
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    let error = w.get("doisneau").await.provisioning_state.error;
    assert_eq!((report.applied, report.failed), (1, 0), "{error:?}");
    let requests = w.take_requests();
    let check = requests.iter().position(|r| r.path == format!("{CLAIMS}/exercices-data") && dry_run(r)).unwrap();
    let written: Vec<&str> =
        requests[..check].iter().filter(|r| r.method == "PATCH" && !dry_run(r)).map(|r| r.path.as_str()).collect();
    assert_eq!(written, [quota], "only the quota is written before the volume's dry-run");
    w.assert_live_as_rendered("doisneau").await;
    let size = w.stored(CLAIMS, "exercices-data").unwrap()["spec"]["resources"]["requests"]["storage"].clone();

    // Replaced by an option with other volumes in one change: the removed service's volume is
    // kept, marked retained, and the quota holds it besides the new ones.
    w.apply("doisneau", "0940176F", json!(["collaboratif"])).await;
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    let error = w.get("doisneau").await.provisioning_state.error;
    assert_eq!((report.applied, report.failed), (1, 0), "{error:?}");
    let requests = w.take_requests();
    assert!(paths(&requests, "DELETE").iter().all(|p| !p.starts_with(CLAIMS)), "no volume deleted: {requests:?}");
    assert!(w.stored("/apis/apps/v1/namespaces/ent-doisneau/deployments", "exercices").is_none(), "its workload goes");
    let kept = w.stored(CLAIMS, "exercices-data").expect("the volume is kept");
    assert_eq!(kept["metadata"]["labels"]["entcp.education.fr/retained"], "true");
    assert_eq!(kept["spec"]["resources"]["requests"]["storage"], size);
    w.assert_live_as_rendered("doisneau").await;

    // The option back: the same volume, no longer marked retained.
    w.apply("doisneau", "0940176F", json!(["collaboratif", "moodle"])).await;
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");
    let back = w.stored(CLAIMS, "exercices-data").unwrap();
    assert!(back["metadata"]["labels"]["entcp.education.fr/retained"].is_null(), "{back}");
    w.assert_live_as_rendered("doisneau").await;

    // Removed again, it is kept until the purge deletes the namespace, and it with it.
    w.apply("doisneau", "0940176F", json!([])).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    for to in [Status::Active, Status::Decommissioning, Status::Archived] {
        w.move_to("doisneau", to).await;
        pass(&w.state.provisioning(), None, t0()).await.unwrap();
        assert!(w.stored(CLAIMS, "exercices-data").is_some(), "kept while {to:?}");
    }
    let later = t0() + chrono::Duration::days(93);
    assert_eq!(entcp::provisioning::purge::purge_due(&w.state.provisioning(), later).await.unwrap(), ["doisneau"]);
    assert!(w.stored(CLAIMS, "exercices-data").is_none() && w.stored(CLAIMS, "casiers-data").is_none());
}

backend_test!(a_tenant_the_catalog_no_longer_resolves_is_still_suspended_and_purged_and_one_never_applied_is_reported);
async fn a_tenant_the_catalog_no_longer_resolves_is_still_suspended_and_purged_and_one_never_applied_is_reported(
    db: common::TestDb,
) {
    let w = World::on(db, |_| {}).await;
    w.tenant("doisneau", "0940176F", json!(["visio"])).await;
    assert_eq!(pass(&w.state.provisioning(), Some("doisneau"), t0()).await.unwrap().applied, 1);
    // Never applied before the catalog changed: the services it was applied with are not known.
    w.tenant("wallon", "0940198E", json!(["visio"])).await;

    let catalog = crate::common::catalog_with_visio_second_degree_only();
    let mut overlaid = w.state.clone();
    overlaid.catalog = Arc::new(catalog);
    let state = overlaid.provisioning();

    // Suspended: its Deployments, visio's too, scaled to zero with the services it was applied with.
    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    w.move_to("doisneau", Status::Active).await;
    w.move_to("doisneau", Status::Suspended).await;
    w.take_requests();
    let report = pass(&state, None, t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 1), "{report:?}");
    for name in ["portail", "visio"] {
        assert_eq!(w.stored(deployments, name).unwrap()["spec"]["replicas"], 0, "{name} scaled to zero");
    }
    assert!(w.get("doisneau").await.provisioning_state.error.is_none());
    // The other is reported on the tenant, in French, once; nothing is sent for it.
    let error = w.get("wallon").await.provisioning_state.error.unwrap();
    assert!(error.contains("le catalogue ne résout plus le bouquet « socle-1d » du tenant wallon"), "{error}");
    assert!(error.contains("l'option « visio » n'est pas proposée dans le premier degré"), "{error}");
    assert_eq!(pass(&state, None, t0()).await.unwrap().failed, 1);
    let failed = w.event_kinds("wallon").await.into_iter().filter(|k| k == "reconcile_failed").count();
    assert_eq!(failed, 1, "reported once");
    assert!(w.take_requests().iter().all(|r| !r.path.contains("ent-wallon")));
    let mut metrics = String::new();
    overlaid.reconciler.write_metrics(&mut metrics, t0().timestamp());
    assert!(metrics.contains("cause=\"catalog\""), "{metrics}");

    // Decommissioned: the workloads go, the data stays; purged: the namespace goes.
    for to in [Status::Decommissioning, Status::Archived] {
        w.move_to("doisneau", to).await;
        assert_eq!(pass(&state, Some("doisneau"), t0()).await.unwrap().applied, 1, "{to:?}");
        assert!(w.stored(deployments, "visio").is_none(), "{to:?}");
        assert!(w.stored("/api/v1/namespaces/ent-doisneau/secrets", "visio-credentials").is_some(), "{to:?}");
    }
    let later = t0() + chrono::Duration::days(93);
    assert_eq!(entcp::provisioning::purge::purge_due(&state, later).await.unwrap(), ["doisneau"]);
    assert!(w.stored("/api/v1/namespaces", "ent-doisneau").is_none(), "the purge reached the cluster");
    let purged = w.get("doisneau").await.provisioning_state;
    assert_eq!((purged.observed.as_deref(), purged.error), (Some("removed"), None));
}

/// The services recorded as applied to tenant `slug` (`tenants.applied_services`; `None`: NULL).
async fn applied_services(w: &World, slug: &str) -> Option<Vec<String>> {
    let codes: Option<String> = sqlx::query_scalar("SELECT applied_services FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(w.state.store.pool())
        .await
        .unwrap();
    codes.map(|codes| serde_json::from_str(&codes).unwrap())
}

backend_test!(
    a_tenant_settled_before_the_upgrade_records_its_services_and_is_still_suspended_when_its_option_leaves_the_catalog
);
async fn a_tenant_settled_before_the_upgrade_records_its_services_and_is_still_suspended_when_its_option_leaves_the_catalog(
    db: common::TestDb,
) {
    let w = World::on(db, |_| {}).await;
    *w.mock.deployments_available.lock().unwrap() = true;
    w.tenant_applied("doisneau", "0940176F", json!(["visio"])).await;
    let with_visio = applied_services(&w, "doisneau").await.unwrap();
    assert!(with_visio.contains(&"visio".to_string()) && with_visio.contains(&"portail".to_string()));
    assert_eq!(w.get("doisneau").await.provisioning_state.observed.as_deref(), Some("available"));

    // Applied and settled by a release before migration 0047: no services recorded. The next
    // pass has nothing to apply, and records them (nothing sent to the cluster).
    sqlx::query("UPDATE tenants SET applied_services = NULL").execute(w.state.store.pool()).await.unwrap();
    w.take_requests();
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((report.applied, report.unchanged, report.failed), (0, 1, 0), "{report:?}");
    assert!(w.take_requests().is_empty(), "a settled tenant: nothing sent");
    assert_eq!(applied_services(&w, "doisneau").await, Some(with_visio.clone()), "recorded by a settled pass");

    // Its service passwords derive from the tenant's seed and the service's code: a Secret that
    // goes with its service (below) need not be kept to give the same password back.
    let tenant = w.get("doisneau").await;
    let seed = tenants::secret_seed(&w.state.store, &tenant.id).await.unwrap();
    let secrets = "/api/v1/namespaces/ent-doisneau/secrets";
    use sha2::Digest;
    let derived = hex::encode(&sha2::Sha256::digest(format!("{seed}:visio").as_bytes())[..16]);
    let password = w.stored(secrets, "visio-credentials").unwrap()["data"]["password"].clone();
    assert_eq!(password, json!(base64_encode(derived.as_bytes())));

    // A release drops the visio service and its option: the catalog no longer resolves the
    // tenant, and one of its recorded services is unknown. Suspended, it is still scaled to
    // zero with the services the catalog has, visio left out and named in its event.
    let mut catalog = (*w.state.catalog).clone();
    catalog.services.retain(|s| s.code != "visio");
    catalog.bouquets.retain(|b| !b.services.contains(&"visio".to_string()));
    assert!(catalog.resolve("socle-1d", &["visio"]).is_err());
    let mut released = w.state.clone();
    released.catalog = Arc::new(catalog);
    let state = released.provisioning();
    w.move_to("doisneau", Status::Active).await;
    w.move_to("doisneau", Status::Suspended).await;
    let report = pass(&state, None, t0()).await.unwrap();
    let error = w.get("doisneau").await.provisioning_state.error;
    assert_eq!((report.applied, report.failed), (1, 0), "{error:?}");
    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    assert_eq!(w.stored(deployments, "portail").unwrap()["spec"]["replicas"], 0, "scaled to zero");
    assert!(w.stored(deployments, "visio").is_none(), "the service the catalog no longer has is left out");
    let events = tenants::events(&w.state.store, &tenant.id).await.unwrap();
    let reconciled = events.iter().rev().find(|e| e.kind == "reconciled").unwrap();
    assert!(reconciled.message.contains("laissés de côté : visio"), "{}", reconciled.message);
    let without: Vec<String> = with_visio.iter().filter(|c| *c != "visio").cloned().collect();
    assert_eq!(applied_services(&w, "doisneau").await, Some(without));
    // Settled: the next pass neither fails nor applies again.
    let report = pass(&state, None, t0()).await.unwrap();
    assert_eq!((report.applied, report.unchanged, report.failed), (0, 1, 0), "{report:?}");

    // Decommissioned, archived, purged: nothing of the tenant is left on the cluster.
    for to in [Status::Decommissioning, Status::Archived] {
        w.move_to("doisneau", to).await;
        assert_eq!(pass(&state, None, t0()).await.unwrap().applied, 1, "{to:?}");
    }
    let later = t0() + chrono::Duration::days(93);
    assert_eq!(entcp::provisioning::purge::purge_due(&state, later).await.unwrap(), ["doisneau"]);
    assert_eq!(w.left_of(&tenant.id, "doisneau"), Vec::<String>::new());
    assert_eq!(tenants::secret_seed(&w.state.store, &tenant.id).await.unwrap(), "", "its seed forgotten");
}

fn is_merge_patch(request: &Request) -> bool {
    request.content_type.starts_with("application/merge-patch")
}

/// Passes once over doisneau (applied, nothing failed) and returns the one merge patch of a
/// Deployment's strategy it sent, checked to come before the first dry-run.
async fn one_strategy_switch(w: &World) -> Request {
    w.take_requests();
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    let error = w.get("doisneau").await.provisioning_state.error;
    assert_eq!((report.applied, report.failed), (1, 0), "{error:?}");
    let requests = w.take_requests();
    let merges: Vec<&Request> = requests.iter().filter(|r| is_merge_patch(r)).collect();
    assert_eq!(merges.len(), 1, "only the Deployment whose strategy changes: {merges:?}");
    let first_dry_run = requests.iter().position(|r| r.query.contains_key("dryRun")).unwrap();
    assert!(requests.iter().position(is_merge_patch).unwrap() < first_dry_run, "switched before the dry-run");
    merges[0].clone()
}

backend_test!(a_deployment_given_a_volume_loses_its_defaulted_rolling_update_before_it_is_applied_as_recreate);
async fn a_deployment_given_a_volume_loses_its_defaulted_rolling_update_before_it_is_applied_as_recreate(
    db: common::TestDb,
) {
    let w = World::on(db, |_| {}).await;
    *w.mock.defaults_strategy.lock().unwrap() = true;
    w.tenant("doisneau", "0940176F", json!(["visio"])).await;
    assert_eq!(pass(&w.state.provisioning(), None, t0()).await.unwrap().applied, 1);
    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    let defaulted = json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } });
    assert_eq!(w.stored(deployments, "visio").unwrap()["spec"]["strategy"], defaulted, "no volume: the default");
    assert_eq!(w.stored(deployments, "portail").unwrap()["spec"]["strategy"], json!({ "type": "Recreate" }));

    // A Deployment made before its service had a volume (or by a release before Recreate):
    // the API server's default, owned by no manager, which server-side apply would keep.
    w.edit(deployments, "portail", |d| d["spec"]["strategy"] = defaulted.clone());
    w.apply("doisneau", "0940176F", json!([])).await;
    let merge = one_strategy_switch(&w).await;
    assert_eq!(merge.path, format!("{deployments}/portail"));
    assert_eq!(merge.body, json!({ "spec": { "strategy": { "type": "Recreate", "rollingUpdate": null } } }));
    assert_eq!(w.stored(deployments, "portail").unwrap()["spec"]["strategy"], json!({ "type": "Recreate" }));
}

backend_test!(a_deployment_that_loses_its_last_volume_is_switched_back_to_rolling_update);
async fn a_deployment_that_loses_its_last_volume_is_switched_back_to_rolling_update(db: common::TestDb) {
    let w = World::on(db, |_| {}).await;
    *w.mock.defaults_strategy.lock().unwrap() = true;
    // A catalog (an overlay, a release) where visio has a volume: its Deployment is Recreate.
    let mut catalog = (*w.state.catalog).clone();
    catalog.services.iter_mut().find(|s| s.code == "visio").unwrap().deployment.storage_gib_per_1000 = 1;
    let mut with_volume = w.state.clone();
    with_volume.catalog = Arc::new(catalog);
    w.tenant("doisneau", "0940176F", json!(["visio"])).await;
    assert_eq!(pass(&with_volume.provisioning(), None, t0()).await.unwrap().applied, 1);
    let deployments = "/apis/apps/v1/namespaces/ent-doisneau/deployments";
    assert_eq!(w.stored(deployments, "visio").unwrap()["spec"]["strategy"], json!({ "type": "Recreate" }));

    // The catalog without it: visio lost its last volume and is RollingUpdate again (merge-patched
    // before the dry-run: server-side apply alone keeps the strategy it no longer sets).
    let merge = one_strategy_switch(&w).await;
    assert_eq!(merge.path, format!("{deployments}/visio"));
    assert_eq!(merge.body, json!({ "spec": { "strategy": { "type": "RollingUpdate" } } }));
    assert_eq!(w.stored(deployments, "visio").unwrap()["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(w.stored(deployments, "portail").unwrap()["spec"]["strategy"], json!({ "type": "Recreate" }));
    // Its volume is kept (retained) until the purge; the next resync switches nothing again.
    let kept = w.stored("/api/v1/namespaces/ent-doisneau/persistentvolumeclaims", "visio-data").expect("kept");
    assert_eq!(kept["metadata"]["labels"]["entcp.education.fr/retained"], "true");
    let resync = t0() + chrono::Duration::seconds(3600);
    pass(&w.state.provisioning(), None, resync).await.unwrap();
    assert!(!w.take_requests().iter().any(is_merge_patch), "nothing left to switch");
}

backend_test!(a_namespace_still_terminating_is_not_deleted_again_and_a_409_on_its_delete_counts_as_done);
async fn a_namespace_still_terminating_is_not_deleted_again_and_a_409_on_its_delete_counts_as_done(db: common::TestDb) {
    let w = World::on(db, |c| c.provisioning.reconcile.resync_seconds = 600).await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    w.tenant("wallon", "0940198E", json!([])).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    for to in [Status::Active, Status::Decommissioning, Status::Archived] {
        w.move_to("doisneau", to).await;
        w.move_to("wallon", to).await;
        pass(&w.state.provisioning(), None, t0()).await.unwrap();
    }
    // A finalizer (volumes still protected, cert-manager…) holds doisneau's namespace Terminating;
    // wallon's is being deleted by someone else when its DELETE comes (409).
    w.edit("/api/v1/namespaces", "ent-doisneau", |n| n["metadata"]["finalizers"] = json!(["exemple.fr/protection"]));
    let terminating = "The system is ensuring all content is removed from this namespace.";
    w.fail_once("DELETE", "/api/v1/namespaces/ent-wallon", 409, "Conflict", terminating);
    w.take_requests();
    let later = t0() + chrono::Duration::days(93);
    w.clock.set(later);
    let mut purged = entcp::provisioning::purge::purge_due(&w.state.provisioning(), later).await.unwrap();
    purged.sort();
    assert_eq!(purged, ["doisneau", "wallon"]);
    let deleted: BTreeSet<String> = paths(&w.take_requests(), "DELETE").into_iter().collect();
    assert_eq!(
        deleted,
        BTreeSet::from(["/api/v1/namespaces/ent-doisneau".into(), "/api/v1/namespaces/ent-wallon".into()])
    );
    let namespace = w.stored("/api/v1/namespaces", "ent-doisneau").expect("held by its finalizer");
    assert!(!namespace["metadata"]["deletionTimestamp"].is_null());
    for slug in ["doisneau", "wallon"] {
        let tenant = w.get(slug).await;
        let state = tenant.provisioning_state;
        assert_eq!((state.observed.as_deref(), state.error.as_deref()), (Some("removing"), None), "{slug}");
        assert!(state.observed_detail.as_deref().unwrap().contains("en cours de suppression"), "{slug}: {state:?}");
        // Not confirmed by the cluster: no attestation of destruction yet.
        assert!(tenant.destruction.is_none(), "{slug}");
        assert!(tenants::destruction::document(&w.state.store, &tenant.id).await.unwrap().is_none(), "{slug}");
    }

    // The resync of a purged tenant while its namespace is still Terminating: no second DELETE
    // (the API server answers it 409), no failure. Wallon's, which the 409 left in place, is deleted.
    let resync = later + chrono::Duration::seconds(600);
    w.clock.set(resync);
    let report = pass(&w.state.provisioning(), None, resync).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let requests = w.take_requests();
    assert!(requests.iter().any(|r| r.method == "GET" && r.path == "/api/v1/namespaces"), "listed again");
    let terminating = "/api/v1/namespaces/ent-doisneau".to_string();
    assert!(!paths(&requests, "DELETE").contains(&terminating), "{requests:?}");
    let doisneau = w.get("doisneau").await;
    assert!(doisneau.provisioning_state.error.is_none());
    assert_eq!(doisneau.provisioning_state.observed.as_deref(), Some("removing"));
    assert!(doisneau.destruction.is_none(), "still Terminating: no attestation");
    let wallon = w.get("wallon").await;
    assert_eq!(wallon.provisioning_state.observed.as_deref(), Some("removed"));
    let attested = wallon.destruction.expect("wallon's namespace is gone: attested");
    assert_eq!(attested.destroyed_at.as_deref(), Some(entcp::store::timestamp(resync).as_str()));

    // Its finalizer done, the namespace goes (the cluster lists it no more): the next pass reads the
    // tenant again (a removal under way is unsettled) and issues the attestation, dated then,
    // never again after.
    w.edit("/api/v1/namespaces", "ent-doisneau", |n| n["metadata"]["finalizers"] = json!([]));
    w.mock.delete(&mut w.mock.objects.lock().unwrap(), "/api/v1/namespaces", "ent-doisneau");
    assert!(w.stored("/api/v1/namespaces", "ent-doisneau").is_none(), "gone from the cluster");
    let confirmed = resync + chrono::Duration::seconds(45);
    w.clock.set(confirmed);
    pass(&w.state.provisioning(), None, confirmed).await.unwrap();
    assert!(paths(&w.take_requests(), "DELETE").is_empty(), "read, not deleted");
    let doisneau = w.get("doisneau").await;
    assert_eq!(doisneau.provisioning_state.observed.as_deref(), Some("removed"));
    let d = doisneau.destruction.expect("attested at the cluster's confirmation");
    let later_at = entcp::store::timestamp(later);
    assert_eq!(d.requested_at, later_at);
    assert_eq!(d.destroyed_at.as_deref(), Some(entcp::store::timestamp(confirmed).as_str()));
    assert_eq!(d.attested_at, entcp::store::timestamp(confirmed));
    assert_eq!(d.reference, format!("ADD-{}-doisneau", later.format("%Y%m%d")));
    let document = tenants::destruction::document(&w.state.store, &doisneau.id).await.unwrap().unwrap();
    let bytes = axum::body::to_bytes(document.into_body(), usize::MAX).await.unwrap();
    let html = String::from_utf8(bytes.to_vec()).unwrap();
    assert_eq!(entcp::documents::sha256_hex(html.as_bytes()), d.sha256);
    assert!(html.contains("Suppression ordonnée le"), "{html}");
    assert!(html.contains("Destruction constatée le"), "{html}");
    assert!(!html.contains("confirmation non reçue"), "{html}");
    let events = tenants::events(&w.state.store, &doisneau.id).await.unwrap();
    let attested: Vec<_> = events.iter().filter(|e| e.kind == "destruction_attested").collect();
    assert_eq!(attested.len(), 1, "{events:?}");
    assert!(attested[0].message.contains("données détruites le"), "{}", attested[0].message);
    // A later pass (a resync): the same attestation, not another.
    let after = confirmed + chrono::Duration::seconds(1200);
    w.clock.set(after);
    pass(&w.state.provisioning(), None, after).await.unwrap();
    let again = w.get("doisneau").await.destruction.unwrap();
    assert_eq!((again.reference, again.sha256, again.attested_at), (d.reference, d.sha256, d.attested_at));
    let requests = "SELECT COUNT(*) FROM tenant_destruction_requests";
    assert_eq!(common::count(&w.state.store, requests, &[]).await, 0, "every request attested");
}

backend_test!(an_existing_namespace_not_made_for_the_tenant_is_never_taken_over);
async fn an_existing_namespace_not_made_for_the_tenant_is_never_taken_over(db: common::TestDb) {
    let w = World::on(db, |_| {}).await;
    let foreign = json!({ "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": "ent-doisneau", "labels": { "equipe": "partage" } } });
    w.mock
        .objects
        .lock()
        .unwrap()
        .entry("/api/v1/namespaces".into())
        .or_default()
        .insert("ent-doisneau".into(), foreign.clone());
    w.tenant("doisneau", "0940176F", json!([])).await;
    let report = pass(&w.state.provisioning(), None, t0()).await.unwrap();
    assert_eq!((report.applied, report.failed), (0, 1), "{report:?}");
    let requests = w.take_requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "nothing written: {requests:?}");
    assert_eq!(w.stored("/api/v1/namespaces", "ent-doisneau").unwrap(), foreign, "left as it was");
    let error = w.get("doisneau").await.provisioning_state.error.unwrap();
    assert!(error.contains("ent-doisneau") && error.contains("n'a pas été créé pour ce tenant"), "{error}");
}

backend_test!(a_live_volume_keeps_its_storage_class_and_size_when_the_configuration_or_catalog_would_change_them);
async fn a_live_volume_keeps_its_storage_class_and_size_when_the_configuration_or_catalog_would_change_them(
    db: common::TestDb,
) {
    let w = World::on(db, |_| {}).await;
    w.tenant_applied("doisneau", "0940176F", json!([])).await;
    // The API server gave the claims the default class; portail's is larger than the catalog
    // now renders (its sizing lowered since, or an overlay).
    let names: Vec<String> = w.mock.objects.lock().unwrap()[CLAIMS].keys().cloned().collect();
    for name in &names {
        w.edit(CLAIMS, name, |c| c["spec"]["storageClassName"] = json!("standard"));
    }
    w.edit(CLAIMS, "portail-data", |c| c["spec"]["resources"]["requests"]["storage"] = json!("9Gi"));

    // Another class configured, and a new volume: the new one gets the class, the live ones keep theirs.
    let mut state = w.state.clone();
    let mut config = (*state.config).clone();
    config.provisioning.cluster.storage_class = Some("ssd-retain".into());
    state.config = Arc::new(config);
    w.apply("doisneau", "0940176F", json!(["moodle"])).await;
    w.take_requests();
    let report = pass(&state.provisioning(), None, t0()).await.unwrap();
    let error = w.get("doisneau").await.provisioning_state.error;
    assert_eq!((report.applied, report.failed), (1, 0), "{error:?}");
    let requests = w.take_requests();
    let written: BTreeMap<String, Value> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && !r.query.contains_key("dryRun"))
        .filter_map(|r| r.path.strip_prefix(&format!("{CLAIMS}/")).map(|name| (name.to_string(), r.body.clone())))
        .collect();
    assert_eq!(written.len(), names.len() + 1, "{written:?}");
    for (name, body) in &written {
        let class = if name == "exercices-data" { "ssd-retain" } else { "standard" };
        assert_eq!(body["spec"]["storageClassName"], class, "{name}");
    }
    assert_eq!(written["portail-data"]["spec"]["resources"]["requests"]["storage"], "9Gi", "never shrunk");
    let quota = w.stored("/api/v1/namespaces/ent-doisneau/resourcequotas", "quota").unwrap();
    let hard = quota["spec"]["hard"]["requests.storage"].as_str().and_then(entcp::provisioning::quantity::whole);
    let total: i128 = w.mock.objects.lock().unwrap()[CLAIMS].values().map(claim_bytes).sum();
    assert_eq!(hard, Some(total), "the quota holds every claim as it is");
}

/// What a request to the API server needs in RBAC terms: (cluster-scoped, API group, resource, verb).
fn permission_of(request: &Request) -> (bool, String, String, String) {
    let (group, rest) = match request.path.strip_prefix("/api/v1/") {
        Some(rest) => (String::new(), rest.to_string()),
        None => {
            let rest = request.path.strip_prefix("/apis/").unwrap();
            let parts: Vec<&str> = rest.splitn(3, '/').collect();
            (parts[0].to_string(), parts[2].to_string())
        }
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let (cluster, resource, item) = match segments.as_slice() {
        ["namespaces"] => (true, "namespaces", false),
        ["namespaces", _] => (true, "namespaces", true),
        ["namespaces", ns, resource, rest @ ..] => {
            assert!(ns.starts_with("ent-"), "a namespaced call outside the ent-* namespaces: {}", request.path);
            (false, *resource, !rest.is_empty())
        }
        _ => panic!("unexpected path {}", request.path),
    };
    let verb = match (request.method.as_str(), item) {
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (method, _) => panic!("unexpected method {method}"),
    };
    (cluster, group, resource.to_string(), verb.to_string())
}

#[tokio::test]
async fn every_call_of_a_tenant_lifecycle_is_granted_by_the_exported_rbac_rules_and_each_rule_is_used() {
    let w = World::new().await;
    w.tenant("doisneau", "0940176F", json!(["moodle"])).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    w.apply("doisneau", "0940176F", json!([])).await;
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    for to in [Status::Active, Status::Suspended, Status::Decommissioning, Status::Archived] {
        w.move_to("doisneau", to).await;
        pass(&w.state.provisioning(), None, t0()).await.unwrap();
    }
    let later = t0() + chrono::Duration::days(93);
    assert_eq!(entcp::provisioning::purge::purge_due(&w.state.provisioning(), later).await.unwrap(), ["doisneau"]);

    let rbac = entcp::provisioning::kube::rbac();
    let granted = |cluster: bool, group: &str, resource: &str, verb: &str| {
        let rules = if cluster { &rbac.cluster } else { &rbac.namespaced };
        rules.iter().any(|r| {
            r.api_groups.iter().any(|g| g == group)
                && r.resources.iter().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    let mut used = BTreeSet::new();
    for request in w.take_requests() {
        let (cluster, group, resource, verb) = permission_of(&request);
        assert!(granted(cluster, &group, &resource, &verb), "{verb} {resource} not granted: {request:?}");
        if verb == "patch" {
            // A server-side apply creates what is missing: it needs `create` too.
            assert!(granted(cluster, &group, &resource, "create"), "create {resource} not granted");
            used.insert((cluster, resource.clone(), "create".to_string()));
        }
        used.insert((cluster, resource, verb));
    }
    // No rule grants a resource the backend never touches, nor a verb it never uses.
    for (cluster, rules) in [(true, &rbac.cluster), (false, &rbac.namespaced)] {
        for rule in rules {
            for resource in &rule.resources {
                assert!(used.iter().any(|(c, r, _)| *c == cluster && r == resource), "{resource} granted, never used");
            }
            for verb in &rule.verbs {
                assert!(used.iter().any(|(c, _, v)| *c == cluster && v == verb), "{verb} granted, never used");
            }
        }
    }
}

backend_test!(a_process_without_the_tenants_lease_never_records_over_what_its_holder_just_wrote);
async fn a_process_without_the_tenants_lease_never_records_over_what_its_holder_just_wrote(db: common::TestDb) {
    // Leases of 3 s: a writer meeting a held tenant waits 3 s, then defers it.
    let w = World::on(db, |c| c.provisioning.reconcile.lease_seconds = 3).await;
    w.tenant_applied("doisneau", "0940176F", json!([])).await;
    assert_eq!(w.get("doisneau").await.provisioning_state.observed.as_deref(), Some("progressing"));

    // Process A reads the rollout back: the Deployments are available when its read comes,
    // and its answer is slow.
    *w.mock.deployments_available.lock().unwrap() = true;
    let open = w.hold_next_read("Bearer jeton-de-test", "/apis/apps/v1/namespaces/ent-doisneau/deployments");
    w.take_requests();
    let a = tokio::spawn({
        let state = w.state.clone();
        async move { pass(&state.provisioning(), None, t0()).await.unwrap() }
    });
    w.until_read_held().await;

    // Meanwhile the spec changes and process B reconciles it: a new rollout, under way.
    // (The EntTenant status written after the same race: `tenants_kube/operator.rs`.)
    w.apply("doisneau", "0940176F", json!(["visio"])).await;
    *w.mock.deployments_available.lock().unwrap() = false;
    let (b, b_store) = w.other_process(chrono::Duration::zero()).await;
    let rb = pass(&b.provisioning(), None, t0()).await.unwrap();
    assert_eq!(rb.failed, 0, "{rb:?}");

    // A's answer comes last; then whoever reconciles next leaves the tenant as its backend is.
    open.add_permits(1);
    let ra = a.await.unwrap();
    assert_eq!(ra.failed, 0, "{ra:?}");
    pass(&w.state.provisioning(), None, t0()).await.unwrap();
    w.assert_live_as_rendered("doisneau").await;
    let state = w.get("doisneau").await.provisioning_state;
    assert_eq!(
        state.observed.as_deref(),
        Some("progressing"),
        "the new rollout is under way, never shown available from a read older than its apply: {state:?}"
    );
    let kinds = w.event_kinds("doisneau").await;
    assert_eq!(kinds.last().map(String::as_str), Some("progressing"), "{kinds:?}");
    assert_eq!(common::count(&w.state.store, "SELECT COUNT(*) AS n FROM tenant_leases", &[]).await, 0, "released");
    b_store.close().await;
}

/// A replica of another release (or configuration) on the same database and mock API server:
/// its render version, its `provisioning.cluster` ingress class, and its process start time.
async fn replica(
    w: &World,
    render_version: i64,
    ingress_class: &str,
    started_at: chrono::DateTime<chrono::Utc>,
) -> (AppState, entcp::store::Store) {
    let (mut state, store) = w.other_process(chrono::Duration::zero()).await;
    let mut config = (*state.config).clone();
    config.provisioning.cluster.ingress_class = Some(ingress_class.into());
    state.config = Arc::new(config);
    let reconciler = entcp::provisioning::runtime::Reconciler::new(&state.config.provisioning.reconcile);
    state.reconciler = Arc::new(reconciler.with_render(render_version, started_at));
    (state, store)
}

/// One pass of `state` at `t0`: its report and the objects it wrote (PATCHes, dry-runs aside).
async fn pass_counting_applies(w: &World, state: &AppState) -> (entcp::provisioning::reconcile::PassReport, usize) {
    w.take_requests();
    let report = pass(&state.provisioning(), None, t0()).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let writes = w.take_requests().iter().filter(|r| r.method == "PATCH" && !r.query.contains_key("dryRun")).count();
    (report, writes)
}

backend_test!(replicas_of_two_releases_on_one_database_leave_the_newer_render_applied_and_converge_after_a_change);
async fn replicas_of_two_releases_on_one_database_leave_the_newer_render_applied_and_converge_after_a_change(
    db: common::TestDb,
) {
    // The release running (w, its default cluster configuration: ingress class nginx) and the
    // next one, rendering with a newer version and another ingress class, on one database.
    let w = World::on(db, |_| {}).await;
    w.tenant("doisneau", "0940176F", json!([])).await;
    let version = entcp::provisioning::platform::RENDER_VERSION;
    let (new, new_store) = replica(&w, version + 1, "traefik", t0()).await;
    let class = |w: &World| {
        let ingress = w.stored("/apis/networking.k8s.io/v1/namespaces/ent-doisneau/ingresses", "ent").unwrap();
        ingress["spec"]["ingressClassName"].as_str().unwrap().to_string()
    };

    // Each runs twice, in turn: the newer render stays; the older replica writes nothing the second time.
    let (old_first, old_writes) = pass_counting_applies(&w, &w.state).await;
    assert_eq!((old_first.applied, class(&w).as_str()), (1, "nginx"), "{old_first:?}");
    assert!(old_writes > 0);
    let (new_first, new_writes) = pass_counting_applies(&w, &new).await;
    assert_eq!(new_first.applied, 1, "the newer release re-applies what the older one wrote: {new_first:?}");
    assert!(new_writes > 0);
    assert_eq!(class(&w), "traefik");
    // Even when a watch event (the newer replica's apply changed the Deployments) asks for a resync.
    w.state.reconciler.request_resync("doisneau");
    let (old_second, old_writes) = pass_counting_applies(&w, &w.state).await;
    assert_eq!((old_second.applied, old_second.unchanged, old_writes), (0, 1, 0), "left to the newer: {old_second:?}");
    let (new_second, new_writes) = pass_counting_applies(&w, &new).await;
    assert_eq!((new_second.applied, new_writes), (0, 0), "{new_second:?}");
    assert_eq!(class(&w), "traefik", "the newer release's objects stay applied");
    let recorded = format!(
        "SELECT COUNT(*) AS n FROM tenants WHERE slug = 'doisneau' AND applied_render_version = {}",
        version + 1
    );
    assert_eq!(common::count(&w.state.store, &recorded, &[]).await, 1, "recorded with what rendered it");

    // A spec change seen first by the older replica is applied by it, then once by the newer one.
    w.apply("doisneau", "0940176F", json!(["visio"])).await;
    let (old_change, old_writes) = pass_counting_applies(&w, &w.state).await;
    assert_eq!(old_change.applied, 1, "changed tenant inputs are applied: {old_change:?}");
    assert!(old_writes > 0);
    assert_eq!(class(&w), "nginx");
    assert!(w.live("ent-doisneau").keys().any(|path| path.ends_with("/deployments/visio")), "the new option is live");
    let (new_change, new_writes) = pass_counting_applies(&w, &new).await;
    assert_eq!(new_change.applied, 1, "{new_change:?}");
    assert!(new_writes > 0);
    for state in [&w.state, &new, &w.state, &new] {
        let (settled, writes) = pass_counting_applies(&w, state).await;
        assert_eq!((settled.applied, writes), (0, 0), "converged after one more apply: {settled:?}");
    }
    assert_eq!(class(&w), "traefik");
    assert!(w.live("ent-doisneau").keys().any(|path| path.ends_with("/deployments/visio")));

    // Same render version, another cluster configuration: the replica started later stands.
    let (later, later_store) = replica(&w, version + 1, "haproxy", t0() + chrono::Duration::hours(1)).await;
    assert_eq!(pass_counting_applies(&w, &later).await.0.applied, 1);
    assert_eq!(class(&w), "haproxy");
    for state in [&new, &later, &new] {
        let (settled, writes) = pass_counting_applies(&w, state).await;
        assert_eq!((settled.applied, writes), (0, 0), "the earlier started replica leaves it: {settled:?}");
    }
    assert_eq!(class(&w), "haproxy");

    // Same render version and configuration, a release that bumps one service's image (the
    // catalog compiled into it): the replica started later stands, the other writes nothing.
    let (mut bumped, bumped_store) = replica(&w, version + 1, "haproxy", t0() + chrono::Duration::hours(2)).await;
    let mut catalog = (*bumped.catalog).clone();
    let visio = catalog.services.iter_mut().find(|s| s.code == "visio").unwrap();
    visio.deployment.image = "registry.example.org/ent/visio:2.8.0".into();
    bumped.catalog = Arc::new(catalog);
    let image = |w: &World| {
        let visio = w.stored("/apis/apps/v1/namespaces/ent-doisneau/deployments", "visio").unwrap();
        visio["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string()
    };
    assert_eq!(image(&w), "registry.example.org/ent/visio:2.7.8");
    let (bumped_first, bumped_writes) = pass_counting_applies(&w, &bumped).await;
    assert_eq!(bumped_first.applied, 1, "{bumped_first:?}");
    assert!(bumped_writes > 0);
    assert_eq!(image(&w), "registry.example.org/ent/visio:2.8.0");
    for state in [&later, &bumped, &later] {
        let (settled, writes) = pass_counting_applies(&w, state).await;
        assert_eq!((settled.applied, writes), (0, 0), "the release with the older image leaves it: {settled:?}");
    }
    assert_eq!(image(&w), "registry.example.org/ent/visio:2.8.0", "the later release's image stays");
    new_store.close().await;
    later_store.close().await;
    bumped_store.close().await;
}
