//! The HTTP kit every capability's routes are written with: the route
//! declaration ([`ApiRoute`], generic over the router state), problem+json
//! extractors, and the `ETag` / `If-Match` helpers of optimistic locking.

pub mod extract;

use crate::error::{Problem, ProblemKind};
use crate::kernel::roles::Action;
use crate::store::{Page, Store};
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRequestParts;
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use std::convert::Infallible;

pub use axum::extract::FromRef;

/// A capability's context: a struct of the application state's parts it uses, and its
/// [`FromRef`] from any router state that holds each of them (`S: FromRef` of every field type).
///
/// ```ignore
/// ent_kernel::capability_state! {
///     /// The parts of the application state this capability uses.
///     pub struct AuditState { pub store: Store }
/// }
/// ```
#[macro_export]
macro_rules! capability_state {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field_vis:vis $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone)]
        $vis struct $name {
            $($field_vis $field: $ty),*
        }

        impl<S> $crate::http::FromRef<S> for $name
        where
            $($ty: $crate::http::FromRef<S>),*
        {
            fn from_ref(state: &S) -> Self {
                $name { $($field: <$ty as $crate::http::FromRef<S>>::from_ref(state)),* }
            }
        }
    };
}

/// The client's address: the socket's peer, or the last `X-Forwarded-For` entry when
/// the configuration trusts the proxy in front; `unknown` when served without peer info.
pub fn client_address(req: &axum::extract::Request, trust_forwarded_for: bool) -> String {
    client_address_of(req.headers(), req.extensions(), trust_forwarded_for)
}

/// [`client_address`] from a request's parts (for extractors).
pub fn client_address_of(
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    trust_forwarded_for: bool,
) -> String {
    use std::net::{IpAddr, SocketAddr};
    let forwarded = trust_forwarded_for
        .then(|| headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?.rsplit(',').next())
        .flatten()
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    let peer = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    forwarded.or(peer).map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

fn root_schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.root_schema_for::<T>()
}

/// One API route: how it is mounted and how the OpenAPI document describes it.
pub struct ApiRoute<S = ()> {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub handler: MethodRouter<S>,
    /// What the route does, for authorisation.
    pub action: &'static Action,
    /// Accepts an `Idempotency-Key` (POST creations).
    pub idempotent: bool,
    /// Its success responses carry the resource's version as `ETag`.
    pub etag: bool,
    /// Reads `If-Match`: `Some(true)` when required (428 without), `Some(false)` when
    /// only a change of something already stored needs it.
    pub if_match: Option<bool>,
    pub query: Option<SchemaFn>,
    pub request: Option<(&'static str, SchemaFn)>,
    /// Success responses: status, content type, and the JSON schema of JSON bodies
    /// (files have none). No entry: 204 No Content.
    pub responses: Vec<(StatusCode, &'static str, Option<SchemaFn>)>,
}

impl<S> ApiRoute<S> {
    pub fn new(
        method: Method,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
        action: &'static Action,
        handler: MethodRouter<S>,
    ) -> Self {
        ApiRoute {
            method,
            path,
            summary,
            tag,
            handler,
            action,
            idempotent: false,
            etag: false,
            if_match: None,
            query: None,
            request: None,
            responses: Vec::new(),
        }
    }

    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Answers the resource with its version as `ETag` (see [`Versioned`]).
    pub fn etag(mut self) -> Self {
        self.etag = true;
        self
    }

    /// Requires `If-Match` (see [`IfMatchHeader`]), and answers the new `ETag`.
    pub fn if_match(mut self) -> Self {
        self.if_match = Some(true);
        self.etag()
    }

    /// An update under a required `If-Match`: a JSON `B` in, `200 OK` with the JSON `T` and its
    /// new `ETag` out.
    pub fn if_match_update<B: JsonSchema, T: JsonSchema>(self) -> Self {
        self.if_match().json_body::<B>().ok::<T>()
    }

    /// Reads `If-Match` when it changes something already stored, and answers the new `ETag`.
    pub fn if_match_optional(mut self) -> Self {
        self.if_match = Some(false);
        self.etag()
    }

    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(root_schema_of::<T>);
        self
    }

    pub fn json_body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(("application/json", schema_of::<T>));
        self
    }

    pub fn csv_body(mut self) -> Self {
        self.request = Some(("text/csv", schema_of::<String>));
        self
    }

    /// A PDF file as the body.
    pub fn pdf_body(mut self) -> Self {
        self.request = Some(("application/pdf", |_| schemars::json_schema!({ "contentMediaType": "application/pdf" })));
        self
    }

    /// Any file as the body (its kind is recognised from its bytes, not from `Content-Type`).
    pub fn file_body(mut self) -> Self {
        self.request = Some((
            "application/octet-stream",
            |_| schemars::json_schema!({ "type": "string", "contentMediaType": "application/octet-stream" }),
        ));
        self
    }

    /// A JSON success response; call it once per status the route can answer.
    pub fn responds<T: JsonSchema>(mut self, status: StatusCode) -> Self {
        self.responses.push((status, "application/json", Some(schema_of::<T>)));
        self
    }

    /// `200 OK` with a JSON `T`.
    pub fn ok<T: JsonSchema>(self) -> Self {
        self.responds::<T>(StatusCode::OK)
    }

    /// `201 Created` with a JSON `T`.
    pub fn created<T: JsonSchema>(self) -> Self {
        self.responds::<T>(StatusCode::CREATED)
    }

    /// `200 OK` with a JSON `T` and its version as `ETag` (see [`Versioned`]).
    pub fn ok_versioned<T: JsonSchema>(self) -> Self {
        self.ok::<T>().etag()
    }

    /// `201 Created` with a JSON `T` and its version as `ETag` (see [`Versioned`]).
    pub fn created_versioned<T: JsonSchema>(self) -> Self {
        self.created::<T>().etag()
    }

    /// A creation: accepts an `Idempotency-Key`, a JSON `B` in, `201 Created` with the
    /// JSON `T` and its `ETag` out.
    pub fn creates<B: JsonSchema, T: JsonSchema>(self) -> Self {
        self.idempotent().json_body::<B>().created_versioned::<T>()
    }

    /// A paged list: the filter `F` as query string, `200 OK` with a [`Page`] of `T`.
    pub fn pages<F: JsonSchema, T: JsonSchema>(self) -> Self {
        self.query::<F>().ok::<Page<T>>()
    }

    /// A file success response in each of `content_types` (chosen by the `format` parameter).
    pub fn produces(mut self, status: StatusCode, content_types: &[&'static str]) -> Self {
        self.responses.extend(content_types.iter().map(|content_type| (status, *content_type, None)));
        self
    }
}

impl<S: Clone + Send + Sync + 'static> ApiRoute<S> {
    /// Accepts bodies up to `bytes` (instead of the JSON default of the application).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }
}

/// A router state capability routes can be mounted on (`S: FromRef` of their context).
pub trait RouterState: Clone + Send + Sync + 'static {}

impl<S: Clone + Send + Sync + 'static> RouterState for S {}

/// Declares a capability's `pub fn routes<S>() -> Vec<ApiRoute<S>>`: the rows built on the
/// [`RouteTable`] `$api` of OpenAPI tag `$tag`, mounted on any router state `S` from which the
/// capability's context `$ctx` is extracted.
///
/// ```ignore
/// ent_kernel::route_table!(AuditState, "audit", |api| vec![api.get("/api/v1/audit", "Journal", &AUDIT_READ, list)]);
/// ```
#[macro_export]
macro_rules! route_table {
    ($ctx:ty, $tag:expr, |$api:ident| $rows:expr $(,)?) => {
        /// This capability's routes, with what the OpenAPI document says of them.
        pub fn routes<S: $crate::http::RouterState>() -> ::std::vec::Vec<$crate::http::ApiRoute<S>>
        where
            $ctx: $crate::http::FromRef<S>,
        {
            let $api = $crate::http::RouteTable::new($tag);
            $rows
        }
    };
}

/// One capability's route table: every row is declared by its method, path, summary,
/// action and handler; the table gives them its OpenAPI tag.
#[derive(Clone, Copy)]
pub struct RouteTable {
    tag: &'static str,
}

/// One row-declaring method of [`RouteTable`] per HTTP method.
macro_rules! table_methods {
    ($($name:ident: $method:ident),* $(,)?) => {
        impl RouteTable {
            $(#[doc = concat!("A `", stringify!($method), "` row.")]
            pub fn $name<H, T, S>(self, path: &'static str, summary: &'static str, action: &'static Action, handler: H) -> ApiRoute<S>
            where
                H: Handler<T, S>,
                T: 'static,
                S: RouterState,
            {
                ApiRoute::new(Method::$method, path, self.tag, summary, action, on(MethodFilter::$method, handler))
            })*
        }
    };
}

table_methods! { get: GET, post: POST, put: PUT, patch: PATCH, delete: DELETE }

impl RouteTable {
    pub const fn new(tag: &'static str) -> Self {
        RouteTable { tag }
    }
}

/// `ETag` of a resource at `version`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("ascii etag")
}

/// A resource under optimistic locking: its version is its `ETag`.
pub trait HasVersion {
    fn version(&self) -> i64;
}

/// [`HasVersion`] for types whose `version` field is their version.
#[macro_export]
macro_rules! version_field {
    ($($ty:ty),* $(,)?) => {
        $(impl $crate::http::HasVersion for $ty {
            fn version(&self) -> i64 {
                self.version
            }
        })*
    };
}

/// A versioned resource as a response: its JSON body with its `ETag`.
pub struct Versioned<T> {
    pub status: StatusCode,
    pub version: i64,
    pub body: T,
}

impl<T> Versioned<T> {
    pub fn new(status: StatusCode, version: i64, body: T) -> Self {
        Versioned { status, version, body }
    }
}

impl<T: HasVersion> Versioned<T> {
    /// `200 OK` with the resource.
    pub fn ok(body: T) -> Self {
        Self::with_status(StatusCode::OK, body)
    }

    /// `201 Created` with the resource.
    pub fn created(body: T) -> Self {
        Self::with_status(StatusCode::CREATED, body)
    }

    pub fn with_status(status: StatusCode, body: T) -> Self {
        Versioned { status, version: body.version(), body }
    }
}

impl<T: Serialize> IntoResponse for Versioned<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        response.headers_mut().insert(header::ETAG, etag(self.version));
        response
    }
}

/// What an `If-Match` header accepts (RFC 9110 §13.1.1, strong comparison).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: whatever the current version is.
    Any,
    /// One or more strong tags (`"3"` or `"3", "4"`).
    Versions(Vec<i64>),
}

impl IfMatch {
    /// The version the update must find: the current one if the header accepts it.
    pub fn expected(&self, current: i64) -> i64 {
        match self {
            IfMatch::Any => current,
            IfMatch::Versions(v) if v.contains(&current) => current,
            IfMatch::Versions(v) => v[0],
        }
    }

    /// [`Self::expected`] against the version stored in the row of `table` whose id or
    /// reference is `key` (0 when absent, so that the update then answers its own 404).
    pub async fn expected_in(&self, store: &Store, table: &'static str, key: &str) -> Result<i64, Problem> {
        if let IfMatch::Versions(v) = self {
            if v.len() == 1 {
                return Ok(v[0]);
            }
        }
        let sql = format!("SELECT version FROM {table} WHERE id = $1 OR reference = $1");
        let current: Option<i64> = sqlx::query_scalar(&sql).bind(key).fetch_optional(store.pool()).await?;
        Ok(self.expected(current.unwrap_or(0)))
    }
}

/// The request's `If-Match` header, extracted without a rejection: the handler
/// reads it after its own lookups and authorisation, so a 404 or a 403 comes first. Sent
/// several times, its values are one list (RFC 9110, 5.3); one that is not text reads as
/// a malformed tag.
pub struct IfMatchHeader(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatchHeader {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let values: Vec<&str> =
            parts.headers.get_all(header::IF_MATCH).iter().map(|v| v.to_str().unwrap_or("\u{fffd}")).collect();
        Ok(IfMatchHeader((!values.is_empty()).then(|| values.join(", "))))
    }
}

impl IfMatchHeader {
    /// The version an update is based on, given the resource's `current` version.
    pub fn version(&self, current: i64) -> Result<i64, Problem> {
        Ok(self.parse()?.expected(current))
    }

    /// The version an update is based on, read against the row of `table` whose id or
    /// reference is `key` (see [`IfMatch::expected_in`]).
    pub async fn version_in(&self, store: &Store, table: &'static str, key: &str) -> Result<i64, Problem> {
        self.parse()?.expected_in(store, table, key).await
    }

    /// Parses `If-Match` (required: 428 without): `*` or strong tags; a weak tag never
    /// matches (412), an unquoted one is malformed (400).
    pub fn parse(&self) -> Result<IfMatch, Problem> {
        let value = self.0.as_deref().ok_or_else(|| {
            Problem::new(
                ProblemKind::PreconditionRequired,
                "en-tête If-Match requis : renvoyez l'ETag lu avec la ressource",
            )
        })?;
        if value.trim() == "*" {
            return Ok(IfMatch::Any);
        }
        // A list may hold empty elements (`"3",`): they name nothing.
        let tags: Vec<&str> = value.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        if tags.is_empty() {
            return Err(malformed(value));
        }
        tags.into_iter().map(strong_version).collect::<Result<_, _>>().map(IfMatch::Versions)
    }
}

/// One entity tag of `If-Match`: a weak one never matches (412), an unquoted one is malformed (400).
fn strong_version(tag: &str) -> Result<i64, Problem> {
    if tag.starts_with("W/") {
        return Err(Problem::new(
            ProblemKind::PreconditionFailed,
            format!("If-Match « {tag} » : une étiquette faible ne valide pas une modification (comparaison forte)"),
        ));
    }
    // Compared as the ETag is written (`"2"`), not as a number: `"02"` or `"+2"` is no ETag of ours.
    let canonical = |t: &str| t.parse::<i64>().ok().filter(|n| n.to_string() == t);
    tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).and_then(canonical).ok_or_else(|| malformed(tag))
}

fn malformed(tag: &str) -> Problem {
    Problem::bad_request(format!("If-Match « {tag} » mal formé : attendu l'ETag entre guillemets (\"3\") ou *"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: Option<&str>) -> IfMatchHeader {
        IfMatchHeader(value.map(str::to_string))
    }

    fn status_of(result: Result<i64, Problem>) -> u16 {
        result.unwrap_err().into_response().status().as_u16()
    }

    #[test]
    fn if_match_header_gives_the_expected_version_or_the_problem_of_its_fault() {
        assert_eq!(header(Some("*")).version(7).unwrap(), 7);
        assert_eq!(header(Some("\"3\"")).version(7).unwrap(), 3);
        assert_eq!(header(Some("\"1\", \"7\"")).version(7).unwrap(), 7);
        assert_eq!(status_of(header(None).version(7)), 428);
        assert_eq!(status_of(header(Some("W/\"7\"")).version(7)), 412);
        assert_eq!(status_of(header(Some("7")).version(7)), 400);
        // As written, not as a number; an empty list element names nothing.
        assert_eq!(status_of(header(Some("\"07\"")).version(7)), 400);
        assert_eq!(status_of(header(Some("\"+7\"")).version(7)), 400);
        assert_eq!(header(Some("\"7\",")).version(9).unwrap(), 7);
        assert_eq!(status_of(header(Some(" , ")).version(7)), 400);
    }

    struct Thing(i64);

    impl HasVersion for Thing {
        fn version(&self) -> i64 {
            self.0
        }
    }

    impl Serialize for Thing {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_i64(self.0)
        }
    }

    #[test]
    fn versioned_answers_its_status_with_the_version_as_etag() {
        let response = Versioned::created(Thing(4)).into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::ETAG], "\"4\"");
        let response = Versioned::new(StatusCode::OK, 9, "body").into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::ETAG], "\"9\"");
    }
}
