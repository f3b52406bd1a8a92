//! Extractors whose rejections are problem+json like every other error.

use crate::error::{Problem, ProblemKind};
use crate::validate::serde_in_french;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// Query string parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(v)| ApiQuery(v)).map_err(|e: QueryRejection| {
            Problem::bad_request(format!("paramètres de requête invalides : {}", serde_in_french(&e.body_text())))
        })
    }
}

/// A JSON body.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let Json(KeysOnce(value)) = Json::<KeysOnce>::from_request(req, state).await.map_err(json_problem)?;
        if let Some(path) = crate::validate::json_controls(&value) {
            let field = format!("corps{path}");
            return Err(Problem::invalid_field(&field, "caractère de contrôle interdit"));
        }
        serde_path_to_error::deserialize(value).map(ApiJson).map_err(|e| {
            Problem::invalid_field("corps", format!("données invalides : {}", serde_in_french(&e.to_string())))
        })
    }
}

fn json_problem(e: JsonRejection) -> Problem {
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            Problem::new(ProblemKind::UnsupportedMediaType, "le corps doit être envoyé en application/json")
        }
        JsonRejection::JsonDataError(e) => {
            Problem::invalid_field("corps", format!("données invalides : {}", serde_in_french(&e.body_text())))
        }
        JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(ProblemKind::PayloadTooLarge, "le corps de la requête dépasse la taille autorisée")
        }
        other => Problem::bad_request(format!("JSON mal formé : {}", serde_in_french(&other.body_text()))),
    }
}

/// A JSON document whose objects name each key once: a key sent twice is refused, where
/// `serde_json::Value` keeps the last one silently (`{"name": "A", "name": "B"}` would be
/// read as `B` after the checks of `A`).
struct KeysOnce(Value);

impl<'de> Deserialize<'de> for KeysOnce {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeysOnceVisitor).map(KeysOnce)
    }
}

struct KeysOnceVisitor;

impl<'de> Visitor<'de> for KeysOnceVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(KeysOnce(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let KeysOnce(value) = map.next_value()?;
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format!("champ « {key} » en double")));
            }
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_sent_twice_is_refused_and_values_read_as_serde_json_reads_them() {
        let err = serde_json::from_str::<KeysOnce>(r#"{"a": {"name": "A", "name": "B"}}"#).err().unwrap();
        assert!(err.to_string().contains("champ « name » en double"), "{err}");
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "name": "A"}"#;
        let KeysOnce(value) = serde_json::from_str(text).unwrap();
        assert_eq!(value, serde_json::from_str::<Value>(text).unwrap());
    }
}
