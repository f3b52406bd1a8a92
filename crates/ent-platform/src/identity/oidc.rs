//! Sign-in through an OpenID Connect provider (ProConnect, an académie's own):
//! authorisation code flow with PKCE (S256), `state` and `nonce`, ID token checked
//! against the provider's JWKS (signature, issuer, audience, expiry, nonce), then
//! the mapping to a user of the control plane. Built on the `openidconnect` crate
//! (reqwest over rustls, the system's CA roots; redirects not followed; every
//! request time-limited by `identity.oidc.timeout_seconds`).
//!
//! # What the console calls
//!
//! ```text
//! let oidc = Oidc::new(&config.identity.oidc?)?;          // once, at start (validates the config)
//! // GET /connexion/oidc
//! let (url, pending) = oidc.begin(return_to, now).await?;  // keep `pending` server-side (pre-session
//!                                                          // row or cookie), redirect to `url`
//! // GET <redirect_url>?code=…&state=…
//! let signed_in = oidc.finish(&store, pending, code, state, now).await?;
//! // open the session for signed_in.user / signed_in.actor; keep signed_in.id_token
//! // for oidc.logout_url(..) at sign-out (ProConnect's end_session_endpoint needs it)
//! ```
//!
//! `pending` ([`PendingLogin`]) is serialisable and single-use: drop it whatever
//! `finish` answers. It expires after [`PENDING_LIFETIME`].
//!
//! # Confirming who is signed in (re-authentication)
//!
//! An ordinary sign-in may be silent: a person with a live session at the provider is not
//! asked anything. Before a sensitive act (an API token, for a person without a password),
//! the console asks the provider to authenticate the person again:
//!
//! ```text
//! // GET /compte/identite (signed in)
//! let (url, pending) = oidc.begin_confirmation(return_to, confirming, now).await?; // prompt=login, max_age=0
//! // GET <redirect_url>?code=…&state=… (the same callback, told apart by `pending.confirming`)
//! let confirmed = oidc.confirm(&store, pending, code, state, &session_actor, now).await?;
//! ```
//!
//! `confirm` requires the ID token's `auth_time` (OIDC Core §2, §3.1.2.1: asked for by
//! `max_age`), no earlier than the request ([`fresh_authentication`], [`CLOCK_SKEW`] allowed)
//! and not in the future, and the provider's subject linked to the session's user (table
//! `oidc_identities`): another person's authentication confirms nothing and signs nobody in.
//! Audited: `oidc.reauthenticated`, `oidc.reauthentication_refused` (with its reason).
//! How recent a person's authentication is comes from the `auth_time` of the ID token the
//! session keeps ([`auth_time_of`], [`recently_authenticated`]), never from when the callback
//! arrived: an ID token without `auth_time` proves no recent authentication.
//!
//! # The mapping
//!
//! A person signs in only if an active user has the e-mail of the configured claim
//! (case-insensitive), or, with `create_unknown_users`, as a new user **without any
//! role**. Roles are never taken from claims: an administrator grants them. The
//! claimed organisation (the claim `claims.organisation`: UAI, SIREN or SIRET) is
//! recorded in the audit record and returned, never used to grant anything. Every
//! outcome is audited: `oidc.sign_in`, `oidc.refused` (with its reason).
//!
//! The claims are the verified ID token's, completed by the user info endpoint's when
//! the provider has one (ProConnect puts the e-mail and `siret` there, in a signed JWT).

use super::{bindings_of, create_user, Actor, NewUser, User};
use crate::audit::{self, Target};
use chrono::{DateTime, Utc};
use ent_kernel::config::OidcConfig;
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::store::{timestamp, Store};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a sign-in may take between `begin` and `finish`.
pub const PENDING_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// How long discovery and keys are reused before being read again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// A discovery's outcome: the provider's document and keys, or why they could not be read.
type Discovery = Result<Arc<ProviderMetadataWithLogout>, String>;

/// How long a failed discovery is answered from memory before the provider is asked again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(30);
/// Random bytes of `state` and `nonce` (43 characters: ProConnect wants at least 32).
const RANDOM_BYTES: u32 = 32;
/// The `max_age` of a confirmation request: the provider must authenticate the person anew.
pub const CONFIRMATION_MAX_AGE: Duration = Duration::from_secs(0);
/// How far the provider's clock may be from ours when `auth_time` is compared to it.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// Every claim of the ID token or the user info, by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AllClaims {
    #[serde(flatten)]
    pub claims: BTreeMap<String, serde_json::Value>,
}

impl AdditionalClaims for AllClaims {}

type IdFields = IdTokenFields<
    AllClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;
type Client = openidconnect::Client<
    AllClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the console keeps between the redirect to the provider and its callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    /// The PKCE verifier (none when `pkce` is off).
    pub pkce_verifier: Option<String>,
    /// The console page to show once signed in (a local path).
    pub return_to: String,
    pub started_at: String,
    /// For a confirmation of who is signed in ([`Oidc::begin_confirmation`]), none for a sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirming: Option<Confirming>,
}

/// Whose identity a confirmation request is to confirm: the signed-in user, and the console
/// session that asked (which alone the confirmation marks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirming {
    pub user_id: String,
    /// The console session's id hash.
    pub session: String,
}

/// A confirmed identity: the provider authenticated the session's person again just now.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub subject: String,
    /// The raw ID token: the session keeps it (its `auth_time` is the proof, [`auth_time_of`]).
    pub id_token: String,
    pub auth_time: DateTime<Utc>,
    pub return_to: String,
}

/// The organisation a claim names (UAI, SIREN or SIRET), as claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimedOrg {
    pub claim: String,
    pub value: String,
    /// The registry's organisation of that code, if exactly one has it (a SIRET is
    /// looked up by its SIREN).
    pub org_id: Option<String>,
}

/// A person signed in: the user and the actor the console's session stands for.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    pub user: User,
    pub actor: Actor,
    /// The provider's subject identifier.
    pub subject: String,
    /// The raw ID token, the `id_token_hint` of [`Oidc::logout_url`].
    pub id_token: String,
    pub claimed_org: Option<ClaimedOrg>,
    /// Whether the user was created by this sign-in (`create_unknown_users`).
    pub created: bool,
    pub return_to: String,
    /// When the provider last authenticated the person (the ID token's `auth_time`), if it says.
    pub auth_time: Option<DateTime<Utc>>,
}

/// The configured provider: its settings, an HTTP client, the discovery cache.
pub struct Oidc {
    config: OidcConfig,
    secret: ClientSecret,
    redirect: RedirectUrl,
    http: openidconnect::reqwest::Client,
    /// The last discovery: its document, or its failure (kept [`DISCOVERY_RETRY`], so that
    /// sign-ins queued behind a provider that is down do not each wait out its timeout).
    discovered: tokio::sync::Mutex<Option<(Instant, Discovery)>>,
}

/// Why a sign-in was refused: the audit reason and the problem answered.
struct Refusal {
    reason: &'static str,
    problem: Problem,
    /// The subject and e-mail, once the token was verified.
    who: Option<(String, String)>,
}

impl Refusal {
    fn new(reason: &'static str, kind: ProblemKind, detail: impl Into<String>) -> Refusal {
        Refusal { reason, problem: Problem::new(kind, detail), who: None }
    }
    fn invalid(reason: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal::new(reason, ProblemKind::Unauthorized, detail)
    }
}

impl From<Problem> for Refusal {
    fn from(problem: Problem) -> Refusal {
        Refusal { reason: "error", problem, who: None }
    }
}

/// A callback's ID token, verified.
struct Verified {
    client: Client,
    metadata: Arc<ProviderMetadataWithLogout>,
    access_token: openidconnect::AccessToken,
    /// The raw ID token.
    id_token: String,
    subject: openidconnect::SubjectIdentifier,
    auth_time: Option<DateTime<Utc>>,
    claims: BTreeMap<String, serde_json::Value>,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> Refusal {
    tracing::warn!(error = %error, "OpenID Connect provider: {what}");
    Refusal::new(
        "provider_unavailable",
        ProblemKind::Unavailable,
        format!("le fournisseur d'identité ne répond pas correctement ({what}) : réessayez plus tard"),
    )
}

fn config_problem(detail: impl std::fmt::Display) -> Problem {
    Problem::new(ProblemKind::Internal, format!("configuration OpenID Connect invalide : {detail}"))
}

/// Equality of two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A local path of the console (`/…`, not `//…`), else `/`: no open redirect.
fn local_path(return_to: &str) -> String {
    let local = return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.contains(['\\', '\r', '\n'])
        && return_to.len() <= 2000;
    if local {
        return_to.to_string()
    } else {
        "/".to_string()
    }
}

impl Oidc {
    /// Checks the configuration and reads the client secret; no request yet.
    pub fn new(config: &OidcConfig) -> Result<Oidc, Problem> {
        config.validate().map_err(config_problem)?;
        let secret = ClientSecret::new(config.client_secret().map_err(config_problem)?);
        let unreadable = |key: &str, url: &str, e: openidconnect::url::ParseError| {
            config_problem(format!("{key} « {url} » illisible ({e})"))
        };
        let redirect = RedirectUrl::new(config.redirect_url.clone())
            .map_err(|e| unreadable("identity.oidc.redirect_url", &config.redirect_url, e))?;
        IssuerUrl::new(config.issuer.clone()).map_err(|e| unreadable("identity.oidc.issuer", &config.issuer, e))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_seconds))
            .connect_timeout(Duration::from_secs(config.timeout_seconds))
            .build()
            .map_err(|e| Problem::new(ProblemKind::Internal, format!("client HTTP : {e}")))?;
        Ok(Oidc { config: config.clone(), secret, redirect, http, discovered: tokio::sync::Mutex::new(None) })
    }

    /// The provider's name for the sign-in button.
    pub fn label(&self) -> &str {
        &self.config.label
    }

    /// The discovery document and keys, read again after [`DISCOVERY_TTL`].
    async fn metadata(&self) -> Result<Arc<ProviderMetadataWithLogout>, Refusal> {
        let mut cached = self.discovered.lock().await;
        match cached.as_ref() {
            Some((at, Ok(metadata))) if at.elapsed() < DISCOVERY_TTL => return Ok(metadata.clone()),
            Some((at, Err(failure))) if at.elapsed() < DISCOVERY_RETRY => {
                return Err(unavailable("découverte", failure.clone()));
            }
            _ => {}
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| Refusal::from(config_problem(e)))?;
        let discovered = ProviderMetadataWithLogout::discover_async(issuer, &self.http).await;
        let discovered = discovered.map(Arc::new).map_err(|e| error_chain(&e));
        *cached = Some((Instant::now(), discovered.clone()));
        discovered.map_err(|failure| unavailable("découverte", failure))
    }

    async fn client(&self) -> Result<(Client, Arc<ProviderMetadataWithLogout>), Refusal> {
        let metadata = self.metadata().await?;
        let client = Client::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(self.secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone())
        .set_auth_type(auth_type(metadata.token_endpoint_auth_methods_supported()));
        Ok((client, metadata))
    }

    /// The provider's authorisation URL to redirect the browser to, and what to keep
    /// until its callback. `return_to` must be a local path (anything else becomes `/`).
    pub async fn begin(&self, return_to: &str, now: DateTime<Utc>) -> Result<(String, PendingLogin), Problem> {
        self.authorization(return_to, None, now).await
    }

    /// [`Oidc::begin`] for a confirmation of who is signed in: the request asks the provider
    /// to authenticate the person again (`prompt=login`, `max_age=0`), whatever session they
    /// have there. Its callback goes to [`Oidc::confirm`], never [`Oidc::finish`].
    pub async fn begin_confirmation(
        &self,
        return_to: &str,
        confirming: Confirming,
        now: DateTime<Utc>,
    ) -> Result<(String, PendingLogin), Problem> {
        self.authorization(return_to, Some(confirming), now).await
    }

    async fn authorization(
        &self,
        return_to: &str,
        confirming: Option<Confirming>,
        now: DateTime<Utc>,
    ) -> Result<(String, PendingLogin), Problem> {
        let (client, _) = self.client().await.map_err(|r| r.problem)?;
        let nonce = Nonce::new_random_len(RANDOM_BYTES);
        let state = CsrfToken::new_random_len(RANDOM_BYTES);
        let (state_, nonce_) = (state.clone(), nonce.clone());
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, move || state_, move || nonce_)
            .add_scopes(self.config.scopes.iter().filter(|s| *s != "openid").map(|s| Scope::new(s.clone())));
        for acr in self.config.acr_values.iter().flat_map(|v| v.split_whitespace()) {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.to_string()));
        }
        if confirming.is_some() {
            request = request.add_prompt(CoreAuthPrompt::Login).set_max_age(CONFIRMATION_MAX_AGE);
        }
        let mut pkce_verifier = None;
        if self.config.pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            pkce_verifier = Some(verifier.secret().clone());
        }
        let (url, _, _) = request.url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier,
            return_to: local_path(return_to),
            started_at: timestamp(now),
            confirming,
        };
        Ok((url.to_string(), pending))
    }

    /// Completes the sign-in from the callback's `code` and `state`: checks the state,
    /// exchanges the code, verifies the ID token, maps the person to a user. Audited
    /// whatever the outcome.
    pub async fn finish(
        &self,
        store: &Store,
        pending: PendingLogin,
        code: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedInUser, Problem> {
        match self.try_finish(store, &pending, code, state, now).await {
            Ok(signed_in) => {
                let summary = serde_json::json!({
                    "issuer": self.config.issuer,
                    "subject": signed_in.subject,
                    "created": signed_in.created,
                    "claimed_org": signed_in.claimed_org,
                    "auth_time": signed_in.auth_time.map(timestamp),
                });
                let user = &signed_in.user;
                let target = Target::new("user", &user.id, user.org.as_ref().map(|o| o.id.as_str()));
                let mut tx = store.begin_write().await?;
                audit::record(&mut tx, store.backend(), &signed_in.actor, "oidc.sign_in", &target, summary, now)
                    .await?;
                tx.commit().await?;
                Ok(signed_in)
            }
            Err(refusal) => {
                tracing::info!(reason = refusal.reason, "OpenID Connect sign-in refused");
                self.audit_refusal(store, &refusal, now).await;
                Err(refusal.problem)
            }
        }
    }

    /// Completes a confirmation ([`Oidc::begin_confirmation`]) for the session of `actor`:
    /// checks the state, exchanges the code, verifies the ID token, then requires its
    /// `auth_time` ([`fresh_authentication`]) and its subject linked to `actor`'s user. Signs
    /// nobody in: the caller marks the session with [`Confirmed::id_token`]. Audited whatever
    /// the outcome (`oidc.reauthenticated`, `oidc.reauthentication_refused`).
    pub async fn confirm(
        &self,
        store: &Store,
        pending: PendingLogin,
        code: &str,
        state: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Confirmed, Problem> {
        let user_id = actor.user_id.clone().unwrap_or_default();
        let outcome = self.try_confirm(store, &pending, code, state, &user_id, now).await;
        let (action, summary) = match &outcome {
            Ok(confirmed) => (
                "oidc.reauthenticated",
                serde_json::json!({
                    "issuer": self.config.issuer,
                    "subject": confirmed.subject,
                    "auth_time": timestamp(confirmed.auth_time),
                }),
            ),
            Err(refusal) => {
                tracing::info!(reason = refusal.reason, "OpenID Connect re-authentication refused");
                let subject = refusal.who.as_ref().map(|(s, _)| s.clone());
                let summary =
                    serde_json::json!({ "issuer": self.config.issuer, "reason": refusal.reason, "subject": subject });
                ("oidc.reauthentication_refused", summary)
            }
        };
        let target = Target::new("user", &user_id, None);
        let mut tx = store.begin_write().await?;
        audit::record(&mut tx, store.backend(), &actor.name, action, &target, summary, now).await?;
        tx.commit().await?;
        outcome.map_err(|refusal| refusal.problem)
    }

    async fn try_confirm(
        &self,
        store: &Store,
        pending: &PendingLogin,
        code: &str,
        state: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Confirmed, Refusal> {
        if pending.confirming.as_ref().is_none_or(|c| c.user_id != user_id || user_id.is_empty()) {
            return Err(Refusal::invalid(
                "not_this_session",
                "confirmation refusée : elle n'a pas été demandée depuis cette session ; recommencez",
            ));
        }
        let verified = self.verify(pending, code, state, now).await?;
        let subject = verified.subject.to_string();
        let who = Some((subject.clone(), String::new()));
        // The same person: the provider's subject is the one linked to the session's user.
        let linked: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM oidc_identities WHERE issuer = $1 AND subject = $2")
                .bind(&self.config.issuer)
                .bind(&subject)
                .fetch_optional(store.pool())
                .await
                .map_err(Problem::from)?;
        if linked.as_deref() != Some(user_id) {
            return Err(Refusal {
                who,
                ..Refusal::new(
                    "other_subject",
                    ProblemKind::Forbidden,
                    "confirmation refusée : le fournisseur d'identité a authentifié une autre personne que celle \
                     de cette session ; votre session reste la vôtre, rien d'autre n'a changé",
                )
            });
        }
        let asked_at = DateTime::parse_from_rfc3339(&pending.started_at).map(|t| t.to_utc()).unwrap_or(now);
        let auth_time = fresh_authentication(verified.auth_time, asked_at, now)
            .map_err(|(reason, detail)| Refusal { who, ..Refusal::new(reason, ProblemKind::Forbidden, detail) })?;
        Ok(Confirmed { subject, id_token: verified.id_token, auth_time, return_to: pending.return_to.clone() })
    }

    async fn audit_refusal(&self, store: &Store, refusal: &Refusal, now: DateTime<Utc>) {
        let (subject, email) = refusal.who.clone().unwrap_or_default();
        let actor = if subject.is_empty() { "oidc:inconnu".to_string() } else { format!("oidc:{subject}") };
        let target = Target::new("email", if email.is_empty() { "-" } else { &email }, None);
        let summary = serde_json::json!({ "issuer": self.config.issuer, "reason": refusal.reason });
        let written = async {
            let mut tx = store.begin_write().await?;
            audit::record(&mut tx, store.backend(), &actor, "oidc.refused", &target, summary, now).await?;
            tx.commit().await?;
            Ok::<_, Problem>(())
        };
        if let Err(problem) = written.await {
            tracing::error!(error = %problem, "refused OpenID Connect sign-in not audited");
        }
    }

    async fn try_finish(
        &self,
        store: &Store,
        pending: &PendingLogin,
        code: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedInUser, Refusal> {
        if pending.confirming.is_some() {
            return Err(Refusal::invalid(
                "confirmation_as_sign_in",
                "connexion refusée : ce retour du fournisseur confirme une identité, il n'ouvre pas de session",
            ));
        }
        let verified = self.verify(pending, code, state, now).await?;
        let Verified { client, metadata, access_token, id_token, subject, auth_time, mut claims } = verified;
        if metadata.userinfo_endpoint().is_some() {
            let request = client
                .user_info(access_token, Some(subject.clone()))
                .map_err(|e| unavailable("informations utilisateur", e))?;
            let info: openidconnect::UserInfoClaims<AllClaims, CoreGenderClaim> = request
                .request_async(&self.http)
                .await
                .map_err(|e| unavailable("informations utilisateur", error_chain(&e)))?;
            for (name, value) in as_map(&info) {
                claims.entry(name).or_insert(value);
            }
        }
        let signed_in = self.map_user(store, subject.as_str(), &claims, now).await?;
        Ok(SignedInUser { id_token, auth_time, return_to: pending.return_to.clone(), ..signed_in })
    }

    /// The callback's state checked, its code exchanged, the ID token verified (signature,
    /// issuer, audience, expiry, nonce, `acr`): what `finish` and `confirm` go on from.
    async fn verify(
        &self,
        pending: &PendingLogin,
        code: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Verified, Refusal> {
        if !same_secret(state, &pending.state) {
            return Err(Refusal::invalid(
                "state_mismatch",
                "connexion refusée : le retour du fournisseur ne correspond pas à la demande (state)",
            ));
        }
        let expired = DateTime::parse_from_rfc3339(&pending.started_at)
            .map(|t| now - t.with_timezone(&Utc) > PENDING_LIFETIME)
            .unwrap_or(true);
        if expired {
            return Err(Refusal::invalid("expired", "connexion expirée : recommencez depuis la page de connexion"));
        }
        let (client, metadata) = self.client().await?;
        let mut exchange = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| unavailable("point de jeton absent", e))?;
        if let Some(verifier) = &pending.pkce_verifier {
            exchange = exchange.set_pkce_verifier(PkceCodeVerifier::new(verifier.clone()));
        }
        let tokens = exchange.request_async(&self.http).await.map_err(|e| {
            tracing::warn!(error = %error_chain(&e), "OpenID Connect code exchange failed");
            Refusal::invalid(
                "code_refused",
                "connexion refusée : le fournisseur n'a pas accepté le code (expiré ou déjà utilisé)",
            )
        })?;
        let token_invalid = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "OpenID Connect ID token refused");
            Refusal::invalid("token_invalid", "connexion refusée : le jeton d'identité du fournisseur n'est pas valide")
        };
        let id_token = tokens.id_token().ok_or_else(|| token_invalid(&"no id_token"))?;
        let verifier = client.id_token_verifier();
        let id_claims = match id_token.claims(&verifier, &Nonce::new(pending.nonce.clone())) {
            Ok(claims) => claims,
            Err(e) => {
                // The provider may have rotated its keys: read them again at the next sign-in.
                *self.discovered.lock().await = None;
                return Err(token_invalid(&e));
            }
        };
        self.check_acr(id_claims.auth_context_ref().map(|a| a.as_str())).map_err(|e| token_invalid(&e))?;
        let (subject, auth_time, claims) = (id_claims.subject().clone(), id_claims.auth_time(), as_map(id_claims));
        drop(verifier);
        Ok(Verified {
            subject,
            auth_time,
            claims,
            id_token: id_token.to_string(),
            access_token: tokens.access_token().clone(),
            client,
            metadata,
        })
    }

    /// With `acr_values` configured, the token's `acr` must be one of them.
    fn check_acr(&self, acr: Option<&str>) -> Result<(), String> {
        let Some(wanted) = &self.config.acr_values else { return Ok(()) };
        match acr {
            Some(acr) if wanted.split_whitespace().any(|w| w == acr) => Ok(()),
            other => Err(format!("acr {other:?} not among {wanted}")),
        }
    }

    /// The user of the verified claims: found by e-mail, or created without any role.
    async fn map_user(
        &self,
        store: &Store,
        subject: &str,
        claims: &BTreeMap<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<SignedInUser, Refusal> {
        let claim = &self.config.claims.email;
        let Some(email) = claims.get(claim).and_then(|v| v.as_str()).map(|e| e.trim().to_ascii_lowercase()) else {
            return Err(Refusal {
                who: Some((subject.to_string(), String::new())),
                ..Refusal::invalid("no_email", format!("connexion refusée : le fournisseur n'a pas transmis d'adresse électronique (claim « {claim} »)"))
            });
        };
        let who = Some((subject.to_string(), email.clone()));
        // Only an address the provider says it verified names an account: absent counts as not,
        // unless the configuration vouches for this provider's addresses.
        let verified = match claims.get("email_verified") {
            Some(serde_json::Value::Bool(verified)) => *verified,
            None => self.config.trust_email_without_claim,
            Some(_) => false,
        };
        if !verified {
            return Err(Refusal {
                who,
                ..Refusal::new(
                    "email_unverified",
                    ProblemKind::Forbidden,
                    "connexion refusée : le fournisseur d'identité n'atteste pas que cette adresse électronique \
                     est vérifiée (claim « email_verified »)",
                )
            });
        }
        let claimed_org = self.claimed_org(store, claims).await;
        let (user, created) = match user_by_email(store, &email).await? {
            Some(user) if user.active => (user, false),
            Some(_) => {
                return Err(Refusal {
                    who,
                    ..Refusal::new("inactive_user", ProblemKind::Forbidden, "connexion refusée : ce compte est désactivé")
                })
            }
            None if self.config.create_unknown_users => {
                let creator = Actor { user_id: None, name: format!("oidc:{subject}"), bindings: vec![] };
                let new = NewUser { email: email.clone(), display_name: display_name(claims, &email), org: None };
                (create_user(store, &creator, new, now).await?, true)
            }
            None => {
                return Err(Refusal {
                    who,
                    ..Refusal::new(
                        "unknown_user",
                        ProblemKind::Forbidden,
                        format!("connexion refusée : aucun compte n'a l'adresse {email} ; demandez-en un à votre administrateur"),
                    )
                })
            }
        };
        self.link_subject(store, &user, subject, now).await.map_err(|refusal| Refusal { who, ..refusal })?;
        let actor = actor_of(store, &user).await?;
        Ok(SignedInUser {
            user,
            actor,
            subject: subject.to_string(),
            id_token: String::new(),
            claimed_org,
            created,
            return_to: String::new(),
            auth_time: None,
        })
    }

    /// Links `user` to `subject` of the issuer at its first sign-in through it (table
    /// `oidc_identities`); refuses the account to any other subject of the issuer, and the
    /// subject to any other account, whatever e-mail they present.
    async fn link_subject(&self, store: &Store, user: &User, subject: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        let issuer = &self.config.issuer;
        sqlx::query(
            "INSERT INTO oidc_identities (issuer, subject, user_id, linked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(issuer)
        .bind(subject)
        .bind(&user.id)
        .bind(timestamp(now))
        .execute(store.pool())
        .await
        .map_err(Problem::from)?;
        let links: Vec<(String, String)> = sqlx::query_as(
            "SELECT subject, user_id FROM oidc_identities WHERE issuer = $1 AND (subject = $2 OR user_id = $3)",
        )
        .bind(issuer)
        .bind(subject)
        .bind(&user.id)
        .fetch_all(store.pool())
        .await
        .map_err(Problem::from)?;
        if links.iter().all(|(s, u)| s == subject && u == &user.id) {
            return Ok(());
        }
        let (reason, what) = if links.iter().any(|(s, _)| s != subject) {
            ("subject_mismatch", "ce compte est lié à une autre identité de ce fournisseur")
        } else {
            ("subject_linked_elsewhere", "cette identité du fournisseur est liée à un autre compte")
        };
        let detail = format!("connexion refusée : {what} ; contactez votre administrateur");
        Err(Refusal::new(reason, ProblemKind::Forbidden, detail))
    }

    /// The organisation the configured claim names, as claimed (looked up, never trusted).
    async fn claimed_org(&self, store: &Store, claims: &BTreeMap<String, serde_json::Value>) -> Option<ClaimedOrg> {
        let claim = self.config.claims.organisation.as_ref()?;
        let value = match claims.get(claim)? {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let code = if compact.len() == 14 && compact.bytes().all(|b| b.is_ascii_digit()) {
            compact[..9].to_string()
        } else {
            compact
        };
        // The server maps the provider's claim at sign-in, for no caller: every organisation counts.
        let org_id = crate::registry::resolve_org(store, &code).await.ok().map(|org| org.id);
        Some(ClaimedOrg { claim: claim.clone(), value, org_id })
    }

    /// The URL that ends the session at the provider (RP-initiated logout), when it
    /// has an `end_session_endpoint`: the browser is sent there at sign-out, with the
    /// ID token of [`SignedInUser::id_token`] and a fresh `state` the callback checks.
    pub async fn logout_url(&self, id_token: &str, state: &str) -> Result<Option<String>, Problem> {
        let metadata = self.metadata().await.map_err(|r| r.problem)?;
        let Some(endpoint) = metadata.additional_metadata().end_session_endpoint.clone() else {
            return Ok(None);
        };
        let mut request = openidconnect::LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.config.client_id.clone()))
            .set_state(CsrfToken::new(state.to_string()));
        let hint: Result<
            openidconnect::IdToken<
                AllClaims,
                CoreGenderClaim,
                CoreJweContentEncryptionAlgorithm,
                CoreJwsSigningAlgorithm,
            >,
            _,
        > = id_token.parse();
        if let Ok(hint) = hint {
            request = request.set_id_token_hint(&hint);
        }
        if let Some(url) = &self.config.post_logout_redirect_url {
            request =
                request.set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(url.clone()).map_err(config_problem)?);
        }
        Ok(Some(request.http_get_url().to_string()))
    }
}

/// The `auth_time` of a confirmation's ID token, if it proves an authentication made for the
/// request begun at `asked_at`: present (required since the request sent `max_age`), no
/// earlier than the request and no later than `now` ([`CLOCK_SKEW`] allowed either side).
/// Otherwise the audit reason and the French refusal.
pub fn fresh_authentication(
    auth_time: Option<DateTime<Utc>>,
    asked_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, (&'static str, String)> {
    let Some(at) = auth_time else {
        return Err((
            "no_auth_time",
            "confirmation refusée : le fournisseur d'identité n'a pas indiqué quand il vous a authentifié \
             (auth_time) ; votre identité n'est pas confirmée"
                .into(),
        ));
    };
    if at > now + CLOCK_SKEW {
        return Err((
            "future_auth_time",
            "confirmation refusée : le moment d'authentification donné par le fournisseur d'identité est \
             dans le futur (horloges désaccordées ?) ; votre identité n'est pas confirmée"
                .into(),
        ));
    }
    if at < asked_at - CLOCK_SKEW {
        return Err((
            "stale_auth_time",
            "confirmation refusée : le fournisseur d'identité ne vous a pas authentifié à nouveau (sa dernière \
             authentification précède la demande) ; recommencez et saisissez vos identifiants"
                .into(),
        ));
    }
    Ok(at)
}

/// Whether an authentication at `auth_time` is recent at `now`: at most `window` before it
/// (and not in the future beyond [`CLOCK_SKEW`]). Without `auth_time`, nothing is recent.
pub fn recently_authenticated(auth_time: Option<DateTime<Utc>>, window: chrono::Duration, now: DateTime<Utc>) -> bool {
    auth_time.is_some_and(|at| at <= now + CLOCK_SKEW && now - at <= window)
}

/// The `auth_time` claim of an ID token **verified before it was kept** (the one a console
/// session keeps): read from its payload, its signature not checked again. `None` without one.
pub fn auth_time_of(id_token: &str) -> Option<DateTime<Utc>> {
    use base64::Engine as _;
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let seconds = match &claims["auth_time"] {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        _ => return None,
    };
    DateTime::from_timestamp(seconds, 0)
}

/// Basic authentication at the token endpoint unless the provider only takes the
/// secret in the body (`client_secret_post`).
fn auth_type(supported: Option<&Vec<CoreClientAuthMethod>>) -> AuthType {
    match supported {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

/// A claims structure as a map of claim names.
fn as_map(claims: &impl Serialize) -> BTreeMap<String, serde_json::Value> {
    match serde_json::to_value(claims) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// An error and its sources, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// A new user's name: `name`, else given name and family (`usual_name` at
/// ProConnect) name, else the e-mail; one line of 200 characters at most.
fn display_name(claims: &BTreeMap<String, serde_json::Value>, email: &str) -> String {
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
    let family = text("family_name").or_else(|| text("usual_name"));
    let name = match (text("name"), text("given_name"), family) {
        (Some(name), _, _) => name.to_string(),
        (None, Some(given), Some(family)) => format!("{given} {family}"),
        (None, given, family) => given.or(family).unwrap_or(email).to_string(),
    };
    let line: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    if line.trim().is_empty() {
        email.to_string()
    } else {
        line.trim().to_string()
    }
}

/// The user whose e-mail this is (e-mails are stored lower-case).
async fn user_by_email(store: &Store, email: &str) -> Result<Option<User>, Problem> {
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email.to_ascii_lowercase())
        .fetch_optional(store.pool())
        .await?;
    match id {
        Some(id) => super::get_user(store, &id).await,
        None => Ok(None),
    }
}

/// The actor a user acts as: named as token users are, with its role bindings.
async fn actor_of(store: &Store, user: &User) -> Result<Actor, Problem> {
    let bindings = bindings_of(store, &user.id).await?;
    Ok(Actor { name: format!("user:{}", user.email), user_id: Some(user.id.clone()), bindings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ent_kernel::yaml;

    #[test]
    fn only_local_paths_are_kept_to_return_to() {
        assert_eq!(local_path("/conventions?page=2"), "/conventions?page=2");
        for outside in ["https://evil.fr/", "//evil.fr/", "/\\evil.fr", "conventions", ""] {
            assert_eq!(local_path(outside), "/", "{outside}");
        }
    }

    #[test]
    fn the_token_endpoint_gets_the_secret_in_the_body_only_when_basic_is_not_offered() {
        use CoreClientAuthMethod::{ClientSecretBasic, ClientSecretPost};
        assert!(matches!(auth_type(None), AuthType::BasicAuth));
        assert!(matches!(auth_type(Some(&vec![ClientSecretPost, ClientSecretBasic])), AuthType::BasicAuth));
        assert!(matches!(auth_type(Some(&vec![ClientSecretPost])), AuthType::RequestBody));
    }

    #[test]
    fn a_new_users_name_comes_from_the_claims_on_one_line() {
        let claims = |pairs: &[(&str, &str)]| -> BTreeMap<String, serde_json::Value> {
            pairs.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect()
        };
        assert_eq!(display_name(&claims(&[("given_name", "Anne"), ("usual_name", "Martin")]), "a@b.fr"), "Anne Martin");
        assert_eq!(display_name(&claims(&[("name", "Paul\nDurand")]), "a@b.fr"), "Paul Durand");
        assert_eq!(display_name(&claims(&[]), "a@b.fr"), "a@b.fr");
    }

    #[test]
    fn with_acr_values_the_token_must_carry_one_of_them() {
        let yaml = "issuer: https://auth.exemple.fr/api/v2\nclient_id: entcp\nclient_secret_env: PATH\n\
                    redirect_url: https://console.exemple.fr/retour\nacr_values: eidas1 eidas2\n";
        let mut config: OidcConfig = yaml::from_str(yaml).unwrap();
        let oidc = Oidc::new(&config).unwrap();
        assert!(oidc.check_acr(Some("eidas2")).is_ok());
        assert!(oidc.check_acr(Some("eidas0")).is_err() && oidc.check_acr(None).is_err());
        config.acr_values = None;
        assert!(Oidc::new(&config).unwrap().check_acr(None).is_ok());
    }

    /// A time `seconds` after 2026-09-01 08:00 UTC.
    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-09-01T08:00:00Z").unwrap().to_utc() + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn a_confirmation_needs_an_auth_time_after_its_request_and_not_in_the_future() {
        let (asked, now) = (at(0), at(90));
        let reason = |auth_time: Option<DateTime<Utc>>| fresh_authentication(auth_time, asked, now).map_err(|e| e.0);
        assert_eq!(reason(Some(at(45))), Ok(at(45)));
        // A minute of skew either side: the provider's clock may differ from ours.
        assert_eq!(reason(Some(at(-60))), Ok(at(-60)));
        assert_eq!(reason(Some(at(150))), Ok(at(150)));
        assert_eq!(reason(None), Err("no_auth_time"));
        // An authentication before the request: the provider did not ask again (a live session).
        assert_eq!(reason(Some(at(-61))), Err("stale_auth_time"));
        assert_eq!(reason(Some(at(-3 * 3600))), Err("stale_auth_time"));
        assert_eq!(reason(Some(at(151))), Err("future_auth_time"));
        let (_, text) = fresh_authentication(None, asked, now).unwrap_err();
        assert!(text.contains("auth_time") && text.starts_with("confirmation refusée"), "{text}");
    }

    #[test]
    fn only_an_auth_time_within_the_window_is_a_recent_authentication() {
        let window = chrono::Duration::minutes(15);
        assert!(recently_authenticated(Some(at(0)), window, at(15 * 60)));
        assert!(!recently_authenticated(Some(at(0)), window, at(15 * 60 + 1)));
        assert!(!recently_authenticated(None, window, at(0)), "no auth_time, no proof");
        assert!(recently_authenticated(Some(at(60)), window, at(0)));
        assert!(!recently_authenticated(Some(at(61)), window, at(0)), "in the future beyond the skew");
    }

    #[test]
    fn the_auth_time_of_a_kept_id_token_is_read_from_its_payload() {
        use base64::Engine as _;
        let token = |claims: serde_json::Value| {
            let encode = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            format!("{}.{}.c2lnbmF0dXJl", encode(br#"{"alg":"RS256"}"#), encode(claims.to_string().as_bytes()))
        };
        let seconds = at(0).timestamp();
        assert_eq!(auth_time_of(&token(serde_json::json!({ "sub": "a", "auth_time": seconds }))), Some(at(0)));
        assert_eq!(auth_time_of(&token(serde_json::json!({ "sub": "a" }))), None);
        assert_eq!(auth_time_of(&token(serde_json::json!({ "sub": "a", "auth_time": null }))), None);
        assert_eq!(auth_time_of(&token(serde_json::json!({ "auth_time": "hier" }))), None);
        assert_eq!(auth_time_of("pas un jeton"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab"));
    }
}
