//! The OpenAPI 3.1 document, generated from the route table and the types'
//! JSON schemas, so that it cannot drift from what is mounted.

use super::ApiRoute;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

pub fn document(routes: &[ApiRoute]) -> Value {
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

fn operation(route: &ApiRoute, generator: &mut schemars::SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if let Some(query) = route.query {
        let schema = query(generator).to_value();
        if let Some(Value::Object(props)) = schema.get("properties") {
            for (name, prop) in props {
                let mut param = json!({ "name": name, "in": "query", "required": false, "schema": prop });
                if let Some(description) = prop.get("description") {
                    param["description"] = description.clone();
                }
                parameters.push(param);
            }
        }
    }
    let mut op = json!({
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": operation_id(route),
        "security": [{ "bearer": [] }],
        "x-entcp-action": route.action.name,
        "parameters": parameters,
        "responses": {
            "default": {
                "description": "Erreur (RFC 9457)",
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
            }
        }
    });
    if let Some((content_type, schema)) = route.request {
        op["requestBody"] = json!({
            "required": true,
            "content": { content_type: { "schema": schema(generator).to_value() } }
        });
    }
    match route.response {
        Some((status, schema)) => {
            op["responses"][status.as_str()] = json!({
                "description": status.canonical_reason().unwrap_or("OK"),
                "content": { "application/json": { "schema": schema(generator).to_value() } }
            });
        }
        None => op["responses"]["204"] = json!({ "description": "No Content" }),
    }
    op
}

fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).collect()
}

fn operation_id(route: &ApiRoute) -> String {
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
