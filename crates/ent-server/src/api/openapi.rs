//! The OpenAPI 3.1 document, generated from the route table and the types'
//! JSON schemas, so that it cannot drift from what is mounted.

use axum::http::Method;
use ent_kernel::http::ApiRoute;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

pub fn document<S>(routes: &[ApiRoute<S>]) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut paths = Map::new();
    for route in routes {
        let operation = operation(route, &mut generator);
        let item = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ENT control plane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "API du plan de contrôle des espaces numériques de travail (ENT)."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "Jeton d'API (entctl tokens create)" }
            }
        }
    })
}

fn operation<S>(route: &ApiRoute<S>, generator: &mut schemars::SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if let Some(query) = route.query {
        let schema = query(generator).to_value();
        if let Some(Value::Object(props)) = schema.get("properties") {
            for (name, prop) in props {
                let mut param =
                    json!({ "name": name, "in": "query", "required": false, "schema": without_null(prop.clone()) });
                if let Some(description) = prop.get("description") {
                    param["description"] = description.clone();
                }
                parameters.push(param);
            }
        }
    }
    if let Some(required) = route.if_match {
        parameters.push(json!({
            "name": "If-Match", "in": "header", "required": required,
            "description": if required {
                "ETag lu avec la ressource (ou *) : sans lui 428, périmé 412"
            } else {
                "ETag lu avec la ressource (ou *) : requis pour modifier ce qui existe déjà"
            },
            "schema": { "type": "string", "minLength": 1 }
        }));
    }
    if route.idempotent {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Rejoue la première réponse pour la même clé et le même corps",
            "schema": { "type": "string", "minLength": 1, "maxLength": 200 }
        }));
    }
    let mut op = json!({
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": operation_id(route),
        "security": [{ "bearer": [] }],
        "x-entcp-action": route.action.name,
        "parameters": parameters,
        "responses": error_responses(route),
    });
    if let Some((content_type, schema)) = route.request {
        op["requestBody"] = json!({
            "required": true,
            "content": { content_type: { "schema": schema(generator).to_value() } }
        });
    }
    if route.responses.is_empty() {
        op["responses"]["204"] = json!({ "description": "No Content" });
    }
    for (status, content_type, schema) in &route.responses {
        let response = op["responses"]
            .as_object_mut()
            .expect("responses is an object")
            .entry(status.as_str())
            .or_insert_with(|| json!({ "description": status.canonical_reason().unwrap_or("OK"), "content": {} }));
        let schema = match schema {
            Some(schema) => schema(generator).to_value(),
            None => file_schema(content_type),
        };
        response["content"][*content_type] = json!({ "schema": schema });
        if route.etag {
            response["headers"]["ETag"] = json!({
                "description": "Version de la ressource, à renvoyer dans If-Match", "required": true,
                "schema": { "type": "string" }
            });
        }
    }
    op
}

/// A file body: text for text types, bytes otherwise.
fn file_schema(content_type: &str) -> Value {
    if content_type.starts_with("text/") {
        json!({ "type": "string" })
    } else {
        json!({ "type": "string", "contentMediaType": content_type.split(';').next().unwrap_or(content_type) })
    }
}

/// The problem+json answers a route can give: every route authenticates and
/// authorises, reads ids and parameters; writes check versions; bodies have a
/// size limit and a media type.
fn error_responses<S>(route: &ApiRoute<S>) -> Value {
    let mut statuses = vec![
        (400, "Requête mal formée (paramètres, JSON)"),
        (401, "Authentification requise ou jeton invalide"),
        (403, "Rôle ou périmètre insuffisant"),
        (404, "Ressource introuvable ou hors de son périmètre"),
        (409, "Conflit avec l'état actuel, code ambigu, ou tenant géré par une ressource Kubernetes"),
        (422, "Données invalides (champs nommés dans errors)"),
        (429, "Trop d'échecs d'authentification depuis cette adresse ou pour ce jeton"),
        (503, "Service indisponible (base de données, conversion PDF)"),
    ];
    if route.method != Method::GET {
        statuses.push((412, "La ressource a changé entre-temps (If-Match ou version lue)"));
    }
    if route.if_match.is_some() {
        statuses.push((428, "En-tête If-Match requis"));
    }
    if route.responses.iter().any(|(_, content_type, _)| *content_type == "application/pdf") {
        statuses.push((406, "Format indisponible sur ce serveur (PDF sans LibreOffice) ; le détail nomme les autres"));
    }
    if route.request.is_some() {
        statuses.push((413, "Corps trop volumineux"));
        statuses.push((415, "Type de contenu non pris en charge"));
    }
    statuses.sort();
    let problem = json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } });
    statuses
        .into_iter()
        .map(|(status, description)| {
            let mut response = json!({ "description": description, "content": problem.clone() });
            if let Some(required) = retry_after(status) {
                response["headers"] = json!({ "Retry-After": {
                    "description": "Secondes à attendre avant de réessayer", "required": required,
                    "schema": { "type": "integer", "minimum": 0 }
                } });
            }
            (status.to_string(), response)
        })
        .collect::<Map<String, Value>>()
        .into()
}

/// Whether a problem of `status` carries `Retry-After`: always on 429, sometimes on 503.
fn retry_after(status: u16) -> Option<bool> {
    match status {
        429 => Some(true),
        503 => Some(false),
        _ => None,
    }
}

/// A query parameter is absent or a value, never `null`: drops `null` from its type and enum.
fn without_null(mut schema: Value) -> Value {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if let Some(Value::Array(options)) = schema.get_mut("anyOf") {
        options.retain(|o| o.get("type").and_then(Value::as_str) != Some("null"));
        if options.len() == 1 {
            let only = options.remove(0);
            schema.as_object_mut().expect("an object schema").remove("anyOf");
            if let (Value::Object(target), Value::Object(only)) = (&mut schema, only) {
                target.extend(only);
            }
        }
    }
    schema
}

fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).collect()
}

fn operation_id<S>(route: &ApiRoute<S>) -> String {
    let path: String = route.path.trim_start_matches("/api/v1/").replace(['{', '}'], "").replace('/', "_");
    format!("{}_{}", route.method.as_str().to_ascii_lowercase(), path)
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "Erreur au format RFC 9457 (application/problem+json)",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string", "description": "URI stable du type d'erreur (urn:entcp:problem:…)" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "field": { "type": "string" }, "message": { "type": "string" } }
                }
            }
        }
    })
}
