//! The one error type of the HTTP API, rendered as `application/problem+json`
//! (RFC 9457) with a stable `type` per kind and a French `title`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Stable kinds of problems; the `type` URI and the title derive from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The resource does not exist (or is out of the caller's scope).
    NotFound,
    /// One or more fields are invalid; `errors` names them.
    Validation,
    /// The request conflicts with the current state (duplicate, wrong state).
    Conflict,
    /// A code matches several organisations; the caller must qualify it.
    AmbiguousCode,
    /// The tenant is declared by a Kubernetes resource (`EntTenant`): it changes through that
    /// resource (`kubectl apply`, GitOps), never through the API or the console.
    DeclaredByResource,
    /// The request cannot be parsed (malformed JSON, bad query string).
    BadRequest,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The body has a content type the route does not accept.
    UnsupportedMediaType,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// No valid credentials.
    Unauthorized,
    /// Authenticated, but the role or the scope does not allow it.
    Forbidden,
    /// `If-Match` names an older version than the current one.
    PreconditionFailed,
    /// An update came without `If-Match`.
    PreconditionRequired,
    /// An `Idempotency-Key` was reused with a different request.
    IdempotencyKeyReused,
    /// Too many failed authentications from this origin; `Retry-After` says when to retry.
    TooManyRequests,
    /// The format asked for cannot be produced on this server (PDF without LibreOffice);
    /// the detail names the formats that can.
    FormatUnavailable,
    /// The database is unreachable, or no connection was free in time.
    Unavailable,
    /// The request, or one of its database statements, ran past its time limit and was
    /// interrupted (`server.request_timeout_seconds`, `database.statement_timeout_seconds`).
    Timeout,
    /// The database's disk is full (SQLite `SQLITE_FULL`, PostgreSQL `53100`).
    StorageFull,
    /// The database accepts no writes (read-only file, standby server).
    ReadOnly,
    /// A bug or an unexpected failure; details go to the log, never to the caller.
    Internal,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            ProblemKind::NotFound => "not-found",
            ProblemKind::Validation => "validation-failed",
            ProblemKind::Conflict => "conflict",
            ProblemKind::AmbiguousCode => "ambiguous-code",
            ProblemKind::DeclaredByResource => "declared-by-resource",
            ProblemKind::BadRequest => "bad-request",
            ProblemKind::PayloadTooLarge => "payload-too-large",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::MethodNotAllowed => "method-not-allowed",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::Forbidden => "forbidden",
            ProblemKind::PreconditionFailed => "precondition-failed",
            ProblemKind::PreconditionRequired => "precondition-required",
            ProblemKind::IdempotencyKeyReused => "idempotency-key-reused",
            ProblemKind::TooManyRequests => "too-many-requests",
            ProblemKind::FormatUnavailable => "format-unavailable",
            ProblemKind::Unavailable => "unavailable",
            ProblemKind::Timeout => "timeout",
            ProblemKind::StorageFull => "storage-full",
            ProblemKind::ReadOnly => "read-only",
            ProblemKind::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::NotFound => "Ressource introuvable",
            ProblemKind::Validation => "Données invalides",
            ProblemKind::Conflict => "Conflit avec l'état actuel",
            ProblemKind::AmbiguousCode => "Code ambigu",
            ProblemKind::DeclaredByResource => "Tenant géré par une ressource Kubernetes",
            ProblemKind::BadRequest => "Requête mal formée",
            ProblemKind::PayloadTooLarge => "Contenu trop volumineux",
            ProblemKind::UnsupportedMediaType => "Type de contenu non pris en charge",
            ProblemKind::MethodNotAllowed => "Méthode non autorisée",
            ProblemKind::Unauthorized => "Authentification requise",
            ProblemKind::Forbidden => "Accès refusé",
            ProblemKind::PreconditionFailed => "Version périmée",
            ProblemKind::PreconditionRequired => "Version attendue",
            ProblemKind::IdempotencyKeyReused => "Clé d'idempotence déjà utilisée",
            ProblemKind::TooManyRequests => "Trop de tentatives",
            ProblemKind::FormatUnavailable => "Format indisponible sur ce serveur",
            ProblemKind::Unavailable => "Service indisponible",
            ProblemKind::Timeout => "Délai de traitement dépassé",
            ProblemKind::StorageFull => "Espace de stockage épuisé",
            ProblemKind::ReadOnly => "Base de données en lecture seule",
            ProblemKind::Internal => "Erreur interne",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ProblemKind::NotFound => StatusCode::NOT_FOUND,
            ProblemKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::Conflict | ProblemKind::AmbiguousCode | ProblemKind::DeclaredByResource => {
                StatusCode::CONFLICT
            }
            ProblemKind::BadRequest => StatusCode::BAD_REQUEST,
            ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemKind::Forbidden => StatusCode::FORBIDDEN,
            ProblemKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ProblemKind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ProblemKind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ProblemKind::FormatUnavailable => StatusCode::NOT_ACCEPTABLE,
            ProblemKind::Unavailable | ProblemKind::Timeout | ProblemKind::ReadOnly => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds after which a client may retry (`Retry-After`), for passing faults.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            ProblemKind::Unavailable => Some(2),
            ProblemKind::Timeout => Some(5),
            ProblemKind::StorageFull | ProblemKind::ReadOnly => Some(30),
            _ => None,
        }
    }

    pub fn type_uri(self) -> String {
        format!("urn:entcp:problem:{}", self.slug())
    }
}

/// One offending field of a validation problem.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct FieldError {
    /// JSON pointer-like name of the field (`uai`, `members[2].siren`).
    pub field: String,
    pub message: String,
}

/// An API error. Handlers return `Result<_, Problem>` and use `?`.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extra members merged into the body (e.g. the candidates of an ambiguous code).
    pub extra: Option<serde_json::Value>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Problem {
        Problem { kind, detail: detail.into(), errors: Vec::new(), extra: None }
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::NotFound, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::Conflict, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(ProblemKind::BadRequest, detail)
    }

    /// A validation problem listing every offending field.
    pub fn invalid(errors: Vec<FieldError>) -> Problem {
        let detail = errors.iter().map(|e| format!("{} : {}", e.field, e.message)).collect::<Vec<_>>().join(" ; ");
        Problem { kind: ProblemKind::Validation, detail, errors, extra: None }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Problem {
        Problem::invalid(vec![FieldError { field: field.into(), message: message.into() }])
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Problem {
        self.extra = Some(extra);
        self
    }

    /// The JSON body of the problem.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "type": self.kind.type_uri(),
            "title": self.kind.title(),
            "status": self.kind.status().as_u16(),
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::to_value(&self.errors).expect("field errors serialise");
        }
        if let Some(serde_json::Value::Object(extra)) = &self.extra {
            for (key, value) in extra {
                body[key] = value.clone();
            }
        }
        body
    }
}

/// Accumulates field errors so a request reports all of them at once.
#[derive(Default)]
pub struct Checks {
    errors: Vec<FieldError>,
}

impl Checks {
    pub fn fail(&mut self, field: &str, message: impl ToString) {
        self.errors.push(FieldError { field: field.into(), message: message.to_string() });
    }

    /// Keeps the value if `result` is Ok, records the error otherwise.
    pub fn check<T, E: ToString>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.fail(field, e)).ok()
    }

    /// Keeps the value if `result` is Ok; a validation problem's field errors are recorded
    /// (reported with the others, in one round), any other problem is returned as is.
    pub fn collect<T>(&mut self, result: Result<T, Problem>) -> Result<Option<T>, Problem> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(p) if p.kind == ProblemKind::Validation && !p.errors.is_empty() => {
                self.errors.extend(p.errors);
                Ok(None)
            }
            Err(p) => Err(p),
        }
    }

    pub fn finish(self) -> Result<(), Problem> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::invalid(self.errors))
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if self.kind == ProblemKind::Internal {
            tracing::error!(detail = %self.detail, "internal error");
        }
        let mut shown = self;
        if shown.kind == ProblemKind::Internal {
            shown.detail = "Une erreur inattendue est survenue ; elle a été journalisée.".into();
        }
        let mut response =
            (shown.kind.status(), [(header::CONTENT_TYPE, "application/problem+json")], shown.body().to_string())
                .into_response();
        if let Some(seconds) = shown.kind.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Problem {
        let Some(kind) = database_fault(&e) else {
            return Problem::new(ProblemKind::Internal, e.to_string());
        };
        tracing::error!(error = %e, problem = kind.slug(), "database fault");
        let detail = match kind {
            ProblemKind::StorageFull => {
                "Le disque de la base de données est plein : réessayez une fois de l'espace libéré."
            }
            ProblemKind::ReadOnly => "La base de données n'accepte aucune écriture (lecture seule).",
            ProblemKind::Conflict => "Une modification concurrente a eu lieu : relisez puis recommencez.",
            ProblemKind::BadRequest => {
                "Un texte envoyé contient un caractère que la base de données ne peut enregistrer (caractère nul, encodage)."
            }
            ProblemKind::Timeout => {
                "Une requête à la base de données a dépassé son délai (database.statement_timeout_seconds) \
                 et a été annulée : réessayez dans quelques instants ; si cela se répète, signalez-le."
            }
            _ => "La base de données ne répond pas ou est saturée : réessayez dans quelques secondes.",
        };
        Problem::new(kind, detail)
    }
}

/// The problem a database error is for the caller, when it is not a bug: the
/// database unreachable or saturated, its disk full, read-only, or a concurrent
/// change (unique key taken, serialisation failure, deadlock).
pub fn database_fault(e: &sqlx::Error) -> Option<ProblemKind> {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Some(ProblemKind::Unavailable),
        sqlx::Error::Database(db) if refused_at_session_start(db.as_ref()) => Some(ProblemKind::Unavailable),
        sqlx::Error::Database(db) => db.code().and_then(|code| database_code_fault(&code)),
        _ => None,
    }
}

/// PostgreSQL: a refusal raised while the server opens the session (its `postinit.c`): the
/// database closed to connections (`ALLOW_CONNECTIONS false`, SQLSTATE `55000`, which is also
/// a bug's code elsewhere), renamed or dropped, too many sessions. Told by the server's source
/// file, which no translation of its messages changes.
fn refused_at_session_start(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some_and(|pg| pg.file() == Some("postinit.c"))
}

/// PostgreSQL reports a five-character SQLSTATE; SQLite an extended result code
/// (a number below 10 000) whose low byte is the primary code.
fn database_code_fault(code: &str) -> Option<ProblemKind> {
    if code.len() == 5 {
        return match code {
            "53100" => Some(ProblemKind::StorageFull),
            "25006" => Some(ProblemKind::ReadOnly),
            "23505" | "40001" | "40P01" => Some(ProblemKind::Conflict),
            // `statement_timeout` (a `query_canceled`); `idle_in_transaction_session_timeout`.
            "57014" => Some(ProblemKind::Timeout),
            // A NUL in text (`character_not_in_repertoire`) or a character the encoding lacks.
            "22021" | "22P05" => Some(ProblemKind::BadRequest),
            // An idle-in-transaction session ended; a database that does not exist (renamed,
            // dropped); a refused login (a password rotated before the configuration).
            "25P03" | "3D000" => Some(ProblemKind::Unavailable),
            // Connection exceptions, resources (too many connections), operator intervention
            // (server shutting down, starting up), invalid authorization.
            _ if ["08", "53", "57P", "28"].iter().any(|class| code.starts_with(class)) => {
                Some(ProblemKind::Unavailable)
            }
            _ => None,
        };
    }
    let extended: i64 = code.parse().ok()?;
    match extended & 0xff {
        13 => Some(ProblemKind::StorageFull),                                 // SQLITE_FULL
        8 => Some(ProblemKind::ReadOnly),                                     // SQLITE_READONLY
        5 | 6 => Some(ProblemKind::Unavailable),                              // SQLITE_BUSY, SQLITE_LOCKED
        10 | 14 => Some(ProblemKind::Unavailable),                            // SQLITE_IOERR, SQLITE_CANTOPEN
        19 if matches!(extended, 1555 | 2067) => Some(ProblemKind::Conflict), // unique / primary key
        _ => None,
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Problem {
        Problem::new(ProblemKind::Internal, format!("{e:#}"))
    }
}

/// The guard of an operation that the current state forbids: a 409 with the
/// detail (only computed then) unless `allowed`.
pub fn conflict_unless<D: Into<String>>(allowed: bool, detail: impl FnOnce() -> D) -> Result<(), Problem> {
    if allowed {
        return Ok(());
    }
    Err(Problem::conflict(detail()))
}

/// 412: the resource changed since the caller read it.
pub fn precondition_failed(current_version: i64) -> Problem {
    Problem::new(
        ProblemKind::PreconditionFailed,
        format!("la ressource a été modifiée entre-temps (version actuelle {current_version}) : relisez-la puis recommencez"),
    )
    .with_extra(serde_json::json!({ "current_version": current_version }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forbidden_state_is_a_409_whose_detail_is_computed_only_then() {
        assert!(conflict_unless(true, || -> String { panic!("not computed when allowed") }).is_ok());
        let problem = conflict_unless(false, || "déjà clos").unwrap_err();
        assert_eq!((problem.kind, problem.detail.as_str()), (ProblemKind::Conflict, "déjà clos"));
    }

    #[test]
    fn database_codes_map_to_their_own_problem_types() {
        // PostgreSQL SQLSTATEs, then SQLite result codes, per kind.
        for (kind, codes) in [
            (ProblemKind::StorageFull, &["53100", "13"][..]),
            (ProblemKind::ReadOnly, &["25006", "8", "1032"]),
            (ProblemKind::Unavailable, &["57P01", "57P03", "08006", "08001", "53300", "3D000", "28P01", "28000", "5"]),
            (ProblemKind::Conflict, &["23505", "40001", "2067"]),
        ] {
            for code in codes {
                assert_eq!(database_code_fault(code), Some(kind), "{code}");
            }
        }
        // `55000` is a bug but when the server raises it while opening the session.
        for bug in ["42P01", "42703", "55000", "1", "787", "275"] {
            assert_eq!(database_code_fault(bug), None, "{bug} is a bug, not a fault");
        }
    }

    #[test]
    fn a_connection_that_cannot_be_had_is_unavailable_not_a_bug() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(io()),
            sqlx::Error::Tls(Box::new(io())),
            sqlx::Error::Protocol("unexpected message".into()),
            sqlx::Error::WorkerCrashed,
        ] {
            let problem = Problem::from(error);
            assert_eq!((problem.kind, problem.kind.title()), (ProblemKind::Unavailable, "Service indisponible"));
            assert_eq!(problem.kind.retry_after(), Some(2));
        }
        assert_eq!(database_fault(&sqlx::Error::RowNotFound), None);
    }

    #[test]
    fn passing_faults_carry_retry_after_and_storage_full_is_507() {
        let response = Problem::from(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(ProblemKind::StorageFull.status().as_u16(), 507);
        assert!(Problem::not_found("x").into_response().headers().get(header::RETRY_AFTER).is_none());
    }
}
