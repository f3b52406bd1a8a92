//! JSON built by the database, for read paths that hand a page to the client
//! as the database wrote it. Each dialect difference is one function here; the
//! callers compose them into portable SQL.

use super::Backend;

/// A JSON object of `fields` (key, SQL expression), in that order, where a NULL
/// value leaves its key out (as `skip_serializing_if = "Option::is_none"` does).
/// Keys are SQL string literals: they must not contain quotes.
pub fn object_without_nulls(backend: Backend, fields: &[(&str, String)]) -> String {
    let pairs: Vec<String> = fields
        .iter()
        .map(|(key, value)| {
            debug_assert!(!key.contains('\''), "JSON key {key} is a SQL literal");
            format!("'{key}', {value}")
        })
        .collect();
    match backend {
        // A merge patch onto `{}` drops the members whose value is null (RFC 7396).
        Backend::Sqlite => format!("json_patch('{{}}', json_object({}))", pairs.join(", ")),
        Backend::Postgres => format!("json_strip_nulls(json_build_object({}))", pairs.join(", ")),
    }
}

/// `column` when it is NULL or one of `values`; any other value makes the query fail, as
/// decoding the row would: an unknown value in the database is an error, never a default.
/// Values are SQL string literals: they must not contain quotes.
pub fn known_value(backend: Backend, column: &str, values: &[&str]) -> String {
    let list: Vec<String> = values
        .iter()
        .map(|v| {
            debug_assert!(!v.contains('\''), "value {v} is a SQL literal");
            format!("'{v}'")
        })
        .collect();
    // Malformed JSON built from the value: the engine refuses it at run time.
    let fail = match backend {
        Backend::Sqlite => format!("json('{{' || {column})"),
        Backend::Postgres => format!("CAST('{{' || {column} AS json)::text"),
    };
    format!("CASE WHEN {column} IS NULL OR {column} IN ({}) THEN {column} ELSE {fail} END", list.join(", "))
}

/// A JSON boolean from a SQL condition.
pub fn boolean(backend: Backend, condition: &str) -> String {
    match backend {
        Backend::Sqlite => format!("CASE WHEN {condition} THEN json('true') ELSE json('false') END"),
        Backend::Postgres => format!("({condition})"),
    }
}

/// The JSON array text of `element` (a JSON value of the rows aggregated) in
/// `order`, over the rows where `filter` holds; `[]` when there are none.
pub fn array_agg(backend: Backend, element: &str, order: &str, filter: &str) -> String {
    match backend {
        // `json()` marks the text read from a sub-select as JSON again, so that it is not quoted.
        Backend::Sqlite => format!("json_group_array(json({element}) ORDER BY {order}) FILTER (WHERE {filter})"),
        Backend::Postgres => {
            format!("COALESCE((json_agg({element} ORDER BY {order}) FILTER (WHERE {filter}))::text, '[]')")
        }
    }
}
