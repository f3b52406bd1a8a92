//! Extractors whose rejections are problem+json like every other error.

use crate::error::{Problem, ProblemKind};
use crate::validate::serde_in_french;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

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
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await.map_err(json_problem)?;
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
