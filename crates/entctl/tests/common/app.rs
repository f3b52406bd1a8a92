//! `TestApp`: the API of one test database, called in process (`tower::ServiceExt::oneshot`
//! on the router, no socket), with a fixed clock and users holding roles at organisations.
//!
//! [`app_state`] is the one place the tests build an `AppState`: when its construction
//! changes, only this function changes.

use super::{t0, token_for, TestDb};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request};
use axum::Router;
use entcp::clock::FixedClock;
use entcp::config::Config;
use entcp::kernel::roles::Role;
use entcp::store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

/// The application state the server would build for `store`, `config` and `clock`.
pub fn app_state(store: Store, config: Config, clock: Arc<dyn entcp::clock::Clock>) -> entcp::api::AppState {
    entcp::api::AppState::new(store, config, clock)
}

/// A configuration whose generated files (manifests, mail) go to a temp dir that lives
/// as long as the test process.
pub fn test_config() -> Config {
    let data_dir = tempfile::tempdir().expect("temp dir").keep();
    Config { data_dir, ..Config::default() }
}

/// The router the server would serve.
pub fn router(store: Store, config: Config, clock: Arc<FixedClock>) -> Router {
    entcp::api::app(app_state(store, config, clock))
}

/// An answer of the API.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub bytes: Vec<u8>,
    /// The body as JSON, or `Null` when it is not JSON.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body decoded as `T` (as `reqwest`'s `json`); panics when it does not decode.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not the JSON expected ({e}): {}", self.text))
    }
}

/// A request under construction: `app.get(..)`, `app.post(..)`… then `.send().await`.
pub struct Req<'a> {
    router: Router,
    /// The app whose users `acting_as` names (none from a [`Client`]).
    app: Option<&'a TestApp>,
    builder: axum::http::request::Builder,
    body: Body,
}

impl Req<'_> {
    /// Sends as the user `email` (its bearer token).
    pub fn acting_as(self, email: &str) -> Self {
        let token = self.app.expect("acting_as needs the TestApp").token(email).to_string();
        self.bearer(&token)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.builder = self.builder.header(name, value.as_ref());
        self
    }

    /// `If-Match` with the ETag of `version`.
    pub fn if_match(self, version: i64) -> Self {
        self.header("if-match", format!("\"{version}\""))
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.builder = self.builder.header("content-type", "application/json");
        self.body = Body::from(serde_json::to_vec(body).expect("JSON body"));
        self
    }

    /// A raw body, without a content type (as `reqwest`'s `body`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::from(body.into());
        self
    }

    pub fn bytes(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.builder = self.builder.header("content-type", content_type);
        self.body = Body::from(body.into());
        self
    }

    pub async fn send(self) -> Resp {
        let mut request = self.builder.body(self.body).expect("request");
        // What `into_make_service_with_connect_info` gives the server.
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
        let response = self.router.oneshot(request).await.expect("the router answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("response body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, text, bytes: bytes.to_vec(), body }
    }
}

/// The API of one test database.
pub struct TestApp {
    /// The backend's name, for assertion messages.
    pub backend: &'static str,
    pub store: Store,
    pub clock: Arc<FixedClock>,
    router: Router,
    tokens: HashMap<String, String>,
    /// The test database, when the app owns it (dropped with the app).
    _db: Option<TestDb>,
}

/// Builds a [`TestApp`]: `TestApp::builder(db).user(..).build().await`.
pub struct TestAppBuilder {
    backend: &'static str,
    store: Store,
    db: Option<TestDb>,
    now: chrono::DateTime<chrono::Utc>,
    config: Config,
    clock: Option<Arc<FixedClock>>,
    users: Vec<(String, Role, Option<String>)>,
}

impl TestAppBuilder {
    /// The clock's reading (default [`t0`]).
    pub fn at(mut self, now: chrono::DateTime<chrono::Utc>) -> Self {
        self.now = now;
        self
    }

    /// A clock the test keeps to move it (instead of one at [`Self::at`]).
    pub fn clock(mut self, clock: Arc<FixedClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn config(mut self, adjust: impl FnOnce(&mut Config)) -> Self {
        adjust(&mut self.config);
        self
    }

    /// A user holding `role` at `org` (an org key; none for an administrator), created at build.
    pub fn user(mut self, email: &str, role: Role, org: Option<&str>) -> Self {
        self.users.push((email.into(), role, org.map(str::to_string)));
        self
    }

    pub async fn build(self) -> TestApp {
        let store = self.store;
        let clock = self.clock.unwrap_or_else(|| Arc::new(FixedClock::new(self.now)));
        let router = router(store.clone(), self.config, clock.clone());
        let mut app = TestApp { backend: self.backend, store, clock, router, tokens: HashMap::new(), _db: self.db };
        for (email, role, org) in self.users {
            app.add_user(&email, role, org.as_deref()).await;
        }
        app
    }
}

impl TestApp {
    /// An app that owns its test database.
    pub fn builder(db: TestDb) -> TestAppBuilder {
        let (backend, store) = (db.name, db.store.clone());
        TestAppBuilder {
            backend,
            store,
            db: Some(db),
            now: t0(),
            config: test_config(),
            clock: None,
            users: Vec::new(),
        }
    }

    /// An app over a store the caller keeps.
    pub fn over(store: &Store) -> TestAppBuilder {
        let backend = match store.backend() {
            entcp::store::Backend::Sqlite => "sqlite",
            entcp::store::Backend::Postgres => "postgres",
        };
        TestAppBuilder {
            backend,
            store: store.clone(),
            db: None,
            now: t0(),
            config: test_config(),
            clock: None,
            users: Vec::new(),
        }
    }

    /// The client of the administrator `root@test.fr` of an app over a store the caller keeps.
    pub async fn root_client_over(store: &Store) -> Client {
        TestApp::over(store).build().await.root_client().await
    }

    /// Creates a user holding `role` at `org` and keeps its token; returns the token.
    pub async fn add_user(&mut self, email: &str, role: Role, org: Option<&str>) -> String {
        let token = token_for(&self.store, email, role, org).await;
        self.tokens.insert(email.to_string(), token.clone());
        token
    }

    pub fn token(&self, email: &str) -> &str {
        self.tokens.get(email).unwrap_or_else(|| panic!("no test user {email}"))
    }

    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        let builder = Request::builder().method(method).uri(path);
        Req { router: self.router.clone(), app: Some(self), builder, body: Body::empty() }
    }

    /// A client sending `token` as bearer, shaped like `reqwest::Client` (paths, not URLs).
    pub fn client(&self, token: &str) -> Client {
        Client { router: self.router.clone(), token: token.to_string() }
    }

    /// A client of the administrator `root@test.fr` (created on first call).
    pub async fn root_client(&self) -> Client {
        self.client(&token_for(&self.store, "root@test.fr", Role::Admin, None).await)
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Req<'_> {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> Req<'_> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Req<'_> {
        self.request(Method::DELETE, path)
    }
}

/// In-process stand-in for a `reqwest::Client` with a default bearer token.
#[derive(Clone)]
pub struct Client {
    router: Router,
    token: String,
}

impl Client {
    pub fn request(&self, method: Method, path: impl AsRef<str>) -> Req<'static> {
        let builder = Request::builder().method(method).uri(path.as_ref());
        Req { router: self.router.clone(), app: None, builder, body: Body::empty() }.bearer(&self.token)
    }

    /// The same user, sending to another app (another clock or configuration over the store).
    pub fn to(&self, app: &TestApp) -> Client {
        app.client(&self.token)
    }

    pub fn get(&self, path: impl AsRef<str>) -> Req<'static> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: impl AsRef<str>) -> Req<'static> {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: impl AsRef<str>) -> Req<'static> {
        self.request(Method::PUT, path)
    }

    /// `doc` (an EntTenant) applied to its existing tenant as an edit is: `PUT` with the
    /// `If-Match` of the version read just before (`POST` only creates).
    pub async fn put_tenant(&self, doc: &Value) -> Resp {
        let path = format!("/api/v1/tenants/{}", doc["metadata"]["name"].as_str().expect("metadata.name"));
        let read = self.get(&path).send().await;
        let etag = read.header("etag").unwrap_or_else(|| panic!("no ETag on {path}: {}", read.text)).to_string();
        self.put(&path).header("if-match", etag).json(doc).send().await
    }

    pub fn patch(&self, path: impl AsRef<str>) -> Req<'static> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: impl AsRef<str>) -> Req<'static> {
        self.request(Method::DELETE, path)
    }
}
