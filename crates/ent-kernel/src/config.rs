//! The one configuration struct: defaults for every key, an optional YAML file,
//! then environment overrides. Parsed once in `main` and passed in the state.

pub mod guardrails;
pub mod identity;

pub use guardrails::{AccountBounds, GuardrailsConfig};
pub use identity::{ClaimMapping, IdentityConfig, OidcConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and generated files live.
    pub data_dir: PathBuf,
    /// Extra convention models (YAML), added to the shipped ones.
    pub conventions_dir: Option<PathBuf>,
    /// Extra catalog files (YAML services and bouquets), adding to or overriding the shipped ones.
    pub catalog_dir: Option<PathBuf>,
    /// Extra support policy files (YAML calendars and policies), overriding the shipped ones by name.
    pub support_dir: Option<PathBuf>,
    /// Where the `manifests` provisioning backend writes each tenant's objects
    /// (a GitOps repository's working tree); `<data_dir>/manifests` when absent.
    pub manifests_dir: Option<PathBuf>,
    pub provisioning: ProvisioningConfig,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub import: ImportConfig,
    pub jobs: JobsConfig,
    pub mail: MailConfig,
    pub console: ConsoleConfig,
    /// Ways to sign in besides API tokens (`identity.oidc`).
    #[serde(skip_serializing_if = "is_default")]
    pub identity: IdentityConfig,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProvisioningBackend {
    /// YAML files per tenant under `manifests_dir`, for a GitOps tool (Argo CD, Flux).
    Manifests,
    /// Server-side apply to a Kubernetes cluster.
    Kube,
}

/// How tenants are deployed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisioningConfig {
    /// `manifests` (default) or `kube`.
    pub backend: ProvisioningBackend,
    /// Tenants reconciled at once in a pass.
    pub concurrency: usize,
    /// Months an archived tenant's data (volumes, credentials) is kept before the
    /// `tenants-purge` job deletes it (ENT account data: three months).
    pub retention_months: u32,
    pub kube: KubeConfig,
    /// What the rendered objects expect of the cluster.
    pub cluster: ClusterConfig,
    /// How the reconciler talks to the cluster: timeouts, retries, rate, resync, leases.
    pub reconcile: ReconcileConfig,
    /// Bounds and allow-lists checked at `tenants apply`.
    pub guardrails: GuardrailsConfig,
    /// What the `manifests` backend writes in place of each Secret (never its values).
    pub manifests_credentials: ManifestsCredentialsConfig,
}

/// How the `manifests` backend keeps credentials out of a folder meant for git.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ManifestsCredentialsMode {
    /// No Secret written; a note in the folder lists the Secrets to provide by other means.
    #[default]
    Omit,
    /// A bitnami `SealedSecret` per Secret, its values encrypted with the controller's certificate.
    Sealed,
    /// An External Secrets Operator `ExternalSecret` per Secret, reading its values from the
    /// store named in `external` (Vault, a cloud secret manager...): no value in the folder.
    External,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestsCredentialsConfig {
    /// `omit` (default), `sealed` or `external`.
    pub mode: ManifestsCredentialsMode,
    /// The sealed-secrets controller's certificate (PEM, as `kubeseal --fetch-cert` prints
    /// it) or RSA public key; required by `sealed`.
    pub sealing_cert: Option<PathBuf>,
    /// The External Secrets store the `external` mode reads from.
    #[serde(skip_serializing_if = "is_default")]
    pub external: ExternalSecretsConfig,
}

/// The kind of External Secrets store an `ExternalSecret` refers to.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum SecretStoreKind {
    /// One store for the cluster, readable from every tenant namespace.
    #[default]
    ClusterSecretStore,
    /// A store of the same name in each tenant namespace (provided by the platform team).
    SecretStore,
}

impl SecretStoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretStoreKind::ClusterSecretStore => "ClusterSecretStore",
            SecretStoreKind::SecretStore => "SecretStore",
        }
    }
}

/// Where the `external` mode's `ExternalSecret`s read each service's credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalSecretsConfig {
    /// The `SecretStore` or `ClusterSecretStore` name; required by `external`.
    pub store_name: Option<String>,
    /// `ClusterSecretStore` (default) or `SecretStore`.
    pub store_kind: SecretStoreKind,
    /// The key of a service's secret in the store; `{tenant}` (slug), `{namespace}` and
    /// `{service}` (catalog code) are replaced. Each key of the Secret is a property of it.
    pub remote_key: String,
}

/// The placeholders an external secret's remote key may hold.
pub const REMOTE_KEY_PLACEHOLDERS: [&str; 3] = ["tenant", "namespace", "service"];

impl Default for ExternalSecretsConfig {
    fn default() -> Self {
        ExternalSecretsConfig {
            store_name: None,
            store_kind: SecretStoreKind::default(),
            remote_key: "ent/{tenant}/{service}".into(),
        }
    }
}

impl ExternalSecretsConfig {
    /// Checks what the `external` mode needs: a store name Kubernetes accepts, and a remote
    /// key naming one secret per tenant and service.
    fn validate(&self) -> anyhow::Result<()> {
        let at = "provisioning.manifests_credentials.external";
        let Some(name) = &self.store_name else {
            anyhow::bail!("{at}.store_name : le mode external demande le nom du SecretStore ou ClusterSecretStore");
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            anyhow::bail!(
                "{at}.store_name « {name} » invalide : un nom Kubernetes (minuscules, chiffres, « - » et « . »)"
            );
        }
        let key = &self.remote_key;
        if key.trim().is_empty() || key.contains(char::is_whitespace) {
            anyhow::bail!(
                "{at}.remote_key « {key} » invalide : une clé sans espace, par exemple ent/{{tenant}}/{{service}}"
            );
        }
        let mut rest = key.as_str();
        let mut named = Vec::new();
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                anyhow::bail!("{at}.remote_key « {key} » : accolade non fermée");
            };
            let placeholder = &rest[start + 1..start + end];
            if !REMOTE_KEY_PLACEHOLDERS.contains(&placeholder) {
                anyhow::bail!(
                    "{at}.remote_key « {key} » : {{{placeholder}}} inconnu ({{tenant}}, {{namespace}} ou {{service}})"
                );
            }
            named.push(placeholder);
            rest = &rest[start + end + 1..];
        }
        if rest.contains('}') {
            anyhow::bail!("{at}.remote_key « {key} » : accolade non ouverte");
        }
        if !named.contains(&"service") || !(named.contains(&"tenant") || named.contains(&"namespace")) {
            anyhow::bail!(
                "{at}.remote_key « {key} » : doit contenir {{service}} et {{tenant}} (ou {{namespace}}), \
                 sinon deux services ou deux tenants partageraient le même secret"
            );
        }
        Ok(())
    }
}

/// The reconciler's limits (`kube` backend), like a controller's client and work queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Seconds one request to the API server may take (each attempt), then it fails.
    pub request_timeout_seconds: f64,
    /// Seconds one tenant's reconcile may take in all (its requests and their retries).
    pub tenant_deadline_seconds: f64,
    /// Retries, in the client, of a request answered 429, 503 or 504 or not answered at all.
    pub request_retries: u32,
    /// Requests per second sent to the API server at most, by this process (burst of as many).
    pub requests_per_second: f64,
    /// Seconds after which a settled tenant is applied again, repairing drift.
    pub resync_seconds: u64,
    /// Seconds a reconciler's lease on a tenant lasts, renewed while it writes.
    pub lease_seconds: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            request_timeout_seconds: 30.0,
            tenant_deadline_seconds: 300.0,
            request_retries: 3,
            requests_per_second: 20.0,
            resync_seconds: 600,
            lease_seconds: 60,
        }
    }
}

impl ReconcileConfig {
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.request_timeout_seconds)
    }

    pub fn tenant_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.tenant_deadline_seconds)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let positive = |v: f64| v.is_finite() && v > 0.0 && v < 1e9;
        if !positive(self.request_timeout_seconds) || !positive(self.tenant_deadline_seconds) {
            anyhow::bail!("provisioning.reconcile : délais en secondes, strictement positifs");
        }
        if !positive(self.requests_per_second) {
            anyhow::bail!("provisioning.reconcile.requests_per_second : strictement positif");
        }
        if self.resync_seconds == 0 || self.lease_seconds < 3 || self.request_retries > 10 {
            anyhow::bail!(
                "provisioning.reconcile : resync_seconds au moins 1, lease_seconds au moins 3, request_retries au plus 10"
            );
        }
        Ok(())
    }
}

/// The cluster's ingress, certificates and storage, as the rendered objects name them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Hash)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The Ingress's `ingressClassName`; none: the cluster's default class.
    pub ingress_class: Option<String>,
    /// The namespace of the ingress controller's pods, allowed in by each tenant's NetworkPolicy.
    pub ingress_namespace: String,
    /// A cert-manager ClusterIssuer that issues each tenant's TLS certificate (annotation on
    /// the Ingress); none: the TLS secret is provided by other means.
    pub cert_manager_issuer: Option<String>,
    /// The StorageClass of the tenants' volumes; none: the cluster's default class.
    pub storage_class: Option<String>,
    /// The external endpoints the services may reach (the catalog's `deployment.egress`
    /// names them): `educonnect`, `gar`, `smtp-relay`, `academie-idp`, … A name the catalog
    /// uses but absent here opens nothing.
    pub egress: BTreeMap<String, EgressEndpoint>,
}

/// An external endpoint: its addresses (CIDR blocks) and TCP ports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Hash)]
#[serde(deny_unknown_fields)]
pub struct EgressEndpoint {
    pub cidrs: Vec<String>,
    #[serde(default = "https_port")]
    pub ports: Vec<u16>,
}

fn https_port() -> Vec<u16> {
    vec![443]
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            ingress_class: Some("nginx".into()),
            ingress_namespace: "ingress-nginx".into(),
            cert_manager_issuer: None,
            storage_class: None,
            egress: BTreeMap::new(),
        }
    }
}

/// The `kube` backend's cluster access.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KubeConfig {
    /// A kubeconfig file; absent: the in-cluster service account, else `KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (its current context when absent).
    pub context: Option<String>,
    /// The field manager of server-side apply (owner of the fields it sets).
    pub field_manager: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port the HTTP server listens on.
    pub listen: String,
    /// Largest request body accepted, in bytes (annuaire uploads included).
    pub max_body_bytes: usize,
    /// At SIGTERM, how long in-flight requests and running jobs get to finish
    /// (keep it under the orchestrator's grace period: 30 s on Kubernetes).
    pub shutdown_seconds: u64,
    /// At SIGTERM, how long `/readyz` answers 503 while new requests are still served, before
    /// the listener closes: the orchestrator removes the replica from its endpoints meanwhile,
    /// so no client is refused (`unready_seconds` + `shutdown_seconds` under the grace period).
    pub unready_seconds: u64,
    /// Longest a request may take before it is interrupted and answered 503 « délai de
    /// traitement dépassé » (0: no limit). Uploads, imports, downloads and exports are not
    /// limited (`api::timeout::RUNS_LONG`).
    pub request_timeout_seconds: u64,
    /// Longest a connection may take to send a request's headers, counted from its opening or,
    /// on a kept-alive connection, from the previous answer: past it the connection is closed.
    pub header_read_timeout_seconds: u64,
    /// A connection on which no byte passed either way for this long, while none of its
    /// requests is being handled (a client that stopped reading its answer), is closed.
    pub idle_timeout_seconds: u64,
    /// Connections open at once; past it a new one is closed as soon as accepted, so that
    /// idle clients cannot take every file descriptor of the process (`api::listener`).
    pub max_connections: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind
    /// a reverse proxy that sets it); otherwise the socket's peer address.
    pub trust_forwarded_for: bool,
    /// Failed authentications per client address (and per token id) before 429.
    pub auth_throttle: crate::throttle::ThrottleConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://...` or `sqlite://...`; empty means `<data_dir>/entcp.db`.
    pub url: Option<String>,
    /// Connection pool size.
    pub max_connections: Option<u32>,
    /// Seconds a request waits for a free connection before answering 503 (default 2).
    pub acquire_timeout_seconds: Option<u64>,
    /// PostgreSQL: seconds a statement may run before the server cancels it (default 60;
    /// 0: no limit). Migrations have no limit, bulk imports 30 min.
    pub statement_timeout_seconds: Option<u64>,
    /// PostgreSQL: seconds a transaction may wait for its client before the server ends
    /// the session and gives its locks back (default 120; 0: no limit).
    pub idle_in_transaction_timeout_seconds: Option<u64>,
    /// Serve identical registry reads from memory while the database has not changed
    /// (default true; see `store::cache`).
    pub read_cache: Option<bool>,
}

/// `seconds` as a duration, `default` when absent.
fn seconds_or(seconds: Option<u64>, default: std::time::Duration) -> std::time::Duration {
    seconds.map_or(default, std::time::Duration::from_secs)
}

impl DatabaseConfig {
    /// Refuses the pool settings the pool cannot work with: no connection at all (sqlx would
    /// panic on a pool of 0), or no time at all to wait for one (every request a 503).
    fn validate(&self) -> anyhow::Result<()> {
        if self.max_connections == Some(0) {
            anyhow::bail!(
                "database.max_connections : 0 invalide : le nombre de connexions du réplica à la base \
                 vaut au moins 1 (sans valeur : 10 sur PostgreSQL, 8 sur SQLite)"
            );
        }
        if self.acquire_timeout_seconds == Some(0) {
            anyhow::bail!(
                "database.acquire_timeout_seconds : 0 invalide : l'attente d'une connexion libre dure \
                 au moins 1 seconde (sans valeur : 2 secondes)"
            );
        }
        Ok(())
    }

    /// The pool settings of the store.
    pub fn pool_options(&self) -> crate::store::PoolOptions {
        let default = crate::store::PoolOptions::default();
        crate::store::PoolOptions {
            max_connections: self.max_connections,
            acquire_timeout: seconds_or(self.acquire_timeout_seconds, default.acquire_timeout),
            statement_timeout: seconds_or(self.statement_timeout_seconds, default.statement_timeout),
            idle_in_transaction_timeout: seconds_or(
                self.idle_in_transaction_timeout_seconds,
                default.idle_in_transaction_timeout,
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info,entcp=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// Rows written per transaction.
    pub batch_size: usize,
    /// Seconds an import's lock on its académies lasts without being renewed (renewed every
    /// third of it): an import stalled longer loses it to the next one.
    pub lease_seconds: u64,
}

impl ImportConfig {
    /// Shortest and longest lease accepted: renewed every third, at least every second; an
    /// import cut short waits at most an hour before its académies can be imported again.
    pub const LEASE_SECONDS: std::ops::RangeInclusive<u64> = 3..=3600;

    fn validate(&self) -> anyhow::Result<()> {
        if !Self::LEASE_SECONDS.contains(&self.lease_seconds) {
            anyhow::bail!(
                "import.lease_seconds : {} hors des bornes : le bail du verrou d'un import (renouvelé \
                 au tiers de sa durée) dure de {} à {} secondes",
                self.lease_seconds,
                Self::LEASE_SECONDS.start(),
                Self::LEASE_SECONDS.end()
            );
        }
        Ok(())
    }
}

/// When the jobs declared in code run. The composition root gives every job it
/// declares an entry (its default schedule when the file omits it) and refuses
/// unknown names (`jobs::fill_defaults`, `jobs::check_config`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobsConfig {
    /// IANA time zone the cron expressions are read in.
    pub timezone: String,
    /// Job name → its schedule (other keys of the `jobs` section).
    #[serde(flatten)]
    pub each: BTreeMap<String, JobSetting>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobSetting {
    /// Cron expression: 5 fields as in crontab (`min hour day month weekday`,
    /// 0 or 7 = Sunday), or the `cron` crate's 6–7 fields with seconds first
    /// (there 1 = Sunday); absent means the job's default.
    pub schedule: Option<String>,
    pub enabled: bool,
    /// Longest a run may take before it is interrupted (recorded as failed);
    /// absent means 30 minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// `.eml` files under `<data_dir>/mail` (default: nothing leaves the machine).
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or a test server.
    None,
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// Sender of every e-mail, e.g. `ENT <ne-pas-repondre@exemple.fr>`.
    pub from: String,
    pub smtp: SmtpConfig,
    /// Failed sends before a message is given up (status `failed`, still listed).
    pub max_attempts: u32,
    /// Messages claimed per batch by a sender.
    pub batch_size: u32,
    /// Lease of a claimed message, renewed before each message a live sender sends; a
    /// killed sender's messages are sent again once it runs out.
    pub lease_minutes: u32,
    /// Sent (and given-up) messages older than this are purged by the `outbox-purge` job.
    pub retention_days: u32,
}

/// The look of the web console.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleTheme {
    /// The default: DSFR markup with a neutral style, no State identity.
    Neutre,
    /// The Système de design de l'État (DSFR), for an operator that is a State service.
    Etat,
}

/// The web console (`/`): its look, its public address and its sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `neutre` (default) or `etat` (DSFR, reserved to State services).
    pub theme: ConsoleTheme,
    /// The operator's name, shown in the header.
    pub operator_name: String,
    /// The console's public address (links in e-mails and on the terminal); `https://…` makes
    /// the cookies `Secure`. Empty (the default): `http://` and the address the server listens
    /// on (see [`Config::derive_public_url`]).
    pub public_url: String,
    /// Whether `public_url` was derived from the listening address rather than configured:
    /// notices then omit their links (a guessed host would send readers astray).
    #[serde(skip)]
    pub public_url_derived: bool,
    /// Minutes without activity after which a session ends.
    pub idle_minutes: u32,
    /// Hours after sign-in after which a session ends whatever its activity.
    pub absolute_hours: u32,
    /// Minutes a password-reset or set-up link stays valid.
    pub link_minutes: u32,
    /// Failed sign-ins per account (and per address) before the form refuses for a while.
    pub sign_in_throttle: crate::throttle::ThrottleConfig,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            theme: ConsoleTheme::Neutre,
            operator_name: "Plan de contrôle ENT".into(),
            public_url: String::new(),
            public_url_derived: false,
            idle_minutes: 30,
            absolute_hours: 12,
            link_minutes: 60,
            sign_in_throttle: crate::throttle::ThrottleConfig {
                max_failures: 5,
                window_seconds: 900,
                max_failures_per_address: 50,
            },
        }
    }
}

impl ConsoleConfig {
    /// Whether the console is served over TLS (cookies then carry `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The console address of `path` (`/conventions/…`), from `public_url` as it stands
    /// (configured or derived): for one-time links, which must be given anyway.
    pub fn address(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.trim_end_matches('/'))
    }

    /// The console address of `path` for a notice's link: `None` when `public_url` is not
    /// configured (empty, or derived from the listening address).
    pub fn notice_link(&self, path: &str) -> Option<String> {
        (!self.public_url.is_empty() && !self.public_url_derived).then(|| self.address(path))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connection and command timeout.
    pub timeout_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            conventions_dir: None,
            manifests_dir: None,
            catalog_dir: None,
            support_dir: None,
            provisioning: ProvisioningConfig::default(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            import: ImportConfig::default(),
            jobs: JobsConfig::default(),
            mail: MailConfig::default(),
            console: ConsoleConfig::default(),
            identity: IdentityConfig::default(),
        }
    }
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            backend: ProvisioningBackend::Manifests,
            concurrency: 8,
            retention_months: 3,
            kube: KubeConfig::default(),
            cluster: ClusterConfig::default(),
            reconcile: ReconcileConfig::default(),
            guardrails: GuardrailsConfig::default(),
            manifests_credentials: ManifestsCredentialsConfig::default(),
        }
    }
}

impl Default for KubeConfig {
    fn default() -> Self {
        KubeConfig { kubeconfig: None, context: None, field_manager: "entcp".into() }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig { timezone: "Europe/Paris".into(), each: BTreeMap::new() }
    }
}

impl Default for JobSetting {
    fn default() -> Self {
        JobSetting { schedule: None, enabled: true, timeout_seconds: None }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransport::File,
            from: "ENT plan de contrôle <ne-pas-repondre@localhost>".into(),
            smtp: SmtpConfig::default(),
            max_attempts: 10,
            batch_size: 20,
            lease_minutes: 5,
            retention_days: 30,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout_seconds: 30,
        }
    }
}

impl JobsConfig {
    /// The effective setting of a job (its defaults if the job is unknown to the config).
    pub fn setting(&self, name: &str, default_schedule: &str) -> JobSetting {
        let mut setting = self.each.get(name).cloned().unwrap_or_default();
        setting.schedule.get_or_insert_with(|| default_schedule.to_string());
        setting
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 512 * 1024 * 1024,
            shutdown_seconds: 20,
            unready_seconds: 5,
            request_timeout_seconds: 30,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 512,
            trust_forwarded_for: false,
            auth_throttle: crate::throttle::ThrottleConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Longest `header_read_timeout_seconds` and `idle_timeout_seconds` accepted: a day.
    pub const LISTENER_SECONDS: std::ops::RangeInclusive<u64> = 1..=86_400;

    /// Refuses the listener settings that would close every connection at once (0 s) or never
    /// serve one (0 connections), and durations past a day.
    fn validate(&self) -> anyhow::Result<()> {
        let (first, last) = (Self::LISTENER_SECONDS.start(), Self::LISTENER_SECONDS.end());
        for (key, seconds, what) in [
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
                "le délai de réception des en-têtes d'une requête",
            ),
            (
                "idle_timeout_seconds",
                self.idle_timeout_seconds,
                "le délai au-delà duquel une connexion inactive est fermée",
            ),
        ] {
            if !Self::LISTENER_SECONDS.contains(&seconds) {
                anyhow::bail!("server.{key} : {seconds} invalide : {what} vaut de {first} à {last} secondes");
            }
        }
        if self.max_connections == 0 {
            anyhow::bail!(
                "server.max_connections : 0 invalide : le serveur accepte au moins 1 connexion à la fois \
                 (sans valeur : 512)"
            );
        }
        Ok(())
    }
}

impl LogConfig {
    /// Refuses a level that would silence the logs: every directive must be a
    /// level (`info`) or `target=level` (`entcp=debug`); a bare word would be
    /// read by `tracing` as a target and turn everything else off.
    fn validate(&self) -> anyhow::Result<()> {
        const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
        let bad = |why: String| {
            anyhow::anyhow!(
                "log.level « {} » invalide : {why} ; attendu un niveau (trace, debug, info, warn, error, off) \
                 éventuellement suivi de cible=niveau, ex. « info,entcp=debug »",
                self.level
            )
        };
        for directive in self.level.split(',').map(str::trim) {
            let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
            if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                return Err(bad(format!("« {directive} » n'est pas un niveau")));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.level).map_err(|e| bad(e.to_string()))?;
        if !["text", "json"].contains(&self.format.as_str()) {
            anyhow::bail!("log.format « {} » invalide : text ou json", self.format);
        }
        Ok(())
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "text".into(), level: "info".into() }
    }
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig { batch_size: 5000, lease_seconds: 120 }
    }
}

/// Environment variables that override a key, in the order they are applied.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("ENTCP_DATA_DIR", "data_dir"),
    ("ENTCP_LISTEN", "server.listen"),
    ("ENTCP_MAX_BODY_BYTES", "server.max_body_bytes"),
    ("ENTCP_TRUST_FORWARDED_FOR", "server.trust_forwarded_for"),
    ("DATABASE_URL", "database.url"),
    ("ENTCP_DATABASE_URL", "database.url"),
    ("ENTCP_DATABASE_MAX_CONNECTIONS", "database.max_connections"),
    ("ENTCP_DATABASE_ACQUIRE_TIMEOUT_SECONDS", "database.acquire_timeout_seconds"),
    ("ENTCP_LOG_FORMAT", "log.format"),
    ("ENTCP_LOG_LEVEL", "log.level"),
    ("ENTCP_IMPORT_BATCH_SIZE", "import.batch_size"),
    ("ENTCP_IMPORT_LEASE_SECONDS", "import.lease_seconds"),
    ("ENTCP_JOBS_TIMEZONE", "jobs.timezone"),
    ("ENTCP_PROVISIONING_BACKEND", "provisioning.backend"),
    ("ENTCP_KUBECONFIG", "provisioning.kube.kubeconfig"),
    ("ENTCP_KUBE_CONTEXT", "provisioning.kube.context"),
    ("ENTCP_MAIL_TRANSPORT", "mail.transport"),
    ("ENTCP_MAIL_FROM", "mail.from"),
    ("ENTCP_MAIL_MAX_ATTEMPTS", "mail.max_attempts"),
    ("ENTCP_SMTP_HOST", "mail.smtp.host"),
    ("ENTCP_SMTP_PORT", "mail.smtp.port"),
    ("ENTCP_SMTP_TLS", "mail.smtp.tls"),
    ("ENTCP_SMTP_USERNAME", "mail.smtp.username"),
    ("ENTCP_SMTP_PASSWORD", "mail.smtp.password"),
    ("ENTCP_CONSOLE_THEME", "console.theme"),
    ("ENTCP_PUBLIC_URL", "console.public_url"),
];

impl Config {
    /// Defaults, then the YAML file if given, then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match file {
            Some(path) => {
                let text = crate::yaml::read_file(path)?;
                Self::from_yaml(&text)
                    .map_err(|e| anyhow::anyhow!("configuration {} invalide : {e}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Fills `console.public_url` when it is not set: `http://` and the address the server
    /// listens on (`bound`, else `server.listen`), an unspecified one (0.0.0.0, ::) named by
    /// the loopback of its family. Returns whether it did: the links then reach users only
    /// where that address is the one they use.
    pub fn derive_public_url(&mut self, bound: Option<std::net::SocketAddr>) -> bool {
        if !self.console.public_url.is_empty() {
            return false;
        }
        let host = match bound.or_else(|| self.server.listen.parse().ok()) {
            Some(address) if address.ip().is_unspecified() => {
                let loopback: std::net::IpAddr = match address {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                };
                std::net::SocketAddr::new(loopback, address.port()).to_string()
            }
            Some(address) => address.to_string(),
            None => self.server.listen.clone(),
        };
        self.console.public_url = format!("http://{host}");
        self.console.public_url_derived = true;
        true
    }

    pub fn from_yaml(text: &str) -> Result<Config, crate::yaml::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        crate::yaml::from_str(text)
    }

    /// Checks what serde cannot: log format, provisioning, sender address, the database
    /// URL as its driver reads it (the `jobs` section is checked by the composition root,
    /// which knows the jobs).
    pub fn validate(&self) -> anyhow::Result<()> {
        self.log.validate()?;
        self.server.validate()?;
        if let Err(e) = self.server.listen.parse::<std::net::SocketAddr>() {
            anyhow::bail!("adresse d'écoute « {} » invalide : {e}", self.server.listen);
        }
        if self.provisioning.concurrency == 0 {
            anyhow::bail!("provisioning.concurrency : au moins 1 tenant à la fois");
        }
        if self.provisioning.kube.field_manager.is_empty() || self.provisioning.kube.field_manager.len() > 128 {
            anyhow::bail!("provisioning.kube.field_manager : de 1 à 128 caractères");
        }
        self.import.validate()?;
        self.database.validate()?;
        if self.mail.smtp.timeout_seconds == 0 {
            anyhow::bail!(
                "mail.smtp.timeout_seconds : 0 invalide : le délai de connexion et de réponse du serveur SMTP \
                 vaut au moins 1 seconde"
            );
        }
        self.provisioning.reconcile.validate()?;
        self.provisioning.guardrails.validate()?;
        let secrets = &self.provisioning.manifests_credentials;
        if secrets.mode == ManifestsCredentialsMode::Sealed && secrets.sealing_cert.is_none() {
            anyhow::bail!(
                "provisioning.manifests_credentials : le mode sealed demande sealing_cert (kubeseal --fetch-cert)"
            );
        }
        if secrets.mode == ManifestsCredentialsMode::External {
            secrets.external.validate()?;
        }
        self.mail
            .from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| anyhow::anyhow!("mail.from « {} » invalide : {e}", self.mail.from))?;
        let url = self.console.public_url.trim_end_matches('/');
        let scheme_ok = url.is_empty() || url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.contains(char::is_whitespace) {
            anyhow::bail!("console.public_url « {} » invalide : une adresse http:// ou https://", url);
        }
        if self.console.idle_minutes == 0 || self.console.absolute_hours == 0 || self.console.link_minutes == 0 {
            anyhow::bail!("console : idle_minutes, absolute_hours et link_minutes valent au moins 1");
        }
        if let Some(oidc) = &self.identity.oidc {
            oidc.validate()?;
        }
        if let Some(url) = &self.database.url {
            crate::store::Backend::check_url(url)
                .map_err(|e| anyhow::anyhow!("database.url « {} » invalide : {e}", crate::store::redact(url)))?;
        }
        Ok(())
    }

    /// Applies overrides read through `lookup` (the process environment in production).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        for (var, key) in ENV_OVERRIDES {
            let Some(value) = lookup(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{var}={value} invalide : {e}");
            match *key {
                "data_dir" => self.data_dir = PathBuf::from(&value),
                "server.listen" => self.server.listen = value.clone(),
                "server.max_body_bytes" => self.server.max_body_bytes = value.parse().map_err(|e| bad(&e))?,
                "server.trust_forwarded_for" => self.server.trust_forwarded_for = value.parse().map_err(|e| bad(&e))?,
                "database.url" => self.database.url = Some(value.clone()),
                "database.max_connections" => self.database.max_connections = Some(value.parse().map_err(|e| bad(&e))?),
                "database.acquire_timeout_seconds" => {
                    self.database.acquire_timeout_seconds = Some(value.parse().map_err(|e| bad(&e))?)
                }
                "log.format" => self.log.format = value.clone(),
                "log.level" => self.log.level = value.clone(),
                "import.batch_size" => self.import.batch_size = value.parse().map_err(|e| bad(&e))?,
                "import.lease_seconds" => self.import.lease_seconds = value.parse().map_err(|e| bad(&e))?,
                "jobs.timezone" => self.jobs.timezone = value.clone(),
                "provisioning.backend" => self.provisioning.backend = parse_enum(&value).map_err(|e| bad(&e))?,
                "provisioning.kube.kubeconfig" => self.provisioning.kube.kubeconfig = Some(PathBuf::from(&value)),
                "provisioning.kube.context" => self.provisioning.kube.context = Some(value.clone()),
                "mail.transport" => self.mail.transport = parse_enum(&value).map_err(|e| bad(&e))?,
                "mail.from" => self.mail.from = value.clone(),
                "mail.max_attempts" => self.mail.max_attempts = value.parse().map_err(|e| bad(&e))?,
                "mail.smtp.host" => self.mail.smtp.host = value.clone(),
                "mail.smtp.port" => self.mail.smtp.port = value.parse().map_err(|e| bad(&e))?,
                "mail.smtp.tls" => self.mail.smtp.tls = parse_enum(&value).map_err(|e| bad(&e))?,
                "mail.smtp.username" => self.mail.smtp.username = Some(value.clone()),
                "mail.smtp.password" => self.mail.smtp.password = Some(value.clone()),
                "console.theme" => self.console.theme = parse_enum(&value).map_err(|e| bad(&e))?,
                "console.public_url" => self.console.public_url = value.clone(),
                other => unreachable!("override for unknown key {other}"),
            }
        }
        Ok(())
    }

    /// The variables of `vars` named `ENTCP_…` that configure nothing, sorted: neither an
    /// override ([`ENV_OVERRIDES`]) nor `ENTCP_CONFIG`, nor one the configuration names
    /// (`identity.oidc.client_secret_env`), nor one Kubernetes sets for a Service named
    /// `entcp…` (`ENTCP_SERVICE_HOST`, `ENTCP_PORT=tcp://…`). Most likely typos, which would
    /// otherwise leave a default in force (`ENTCP_DATABSE_URL`: the embedded SQLite file).
    pub fn unknown_env(&self, vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        let named = self.identity.oidc.as_ref().and_then(|oidc| oidc.client_secret_env.as_deref());
        let mut unknown: Vec<String> = vars
            .into_iter()
            .filter(|(name, value)| {
                name.starts_with("ENTCP_")
                    && name != "ENTCP_CONFIG"
                    && !ENV_OVERRIDES.iter().any(|(var, _)| var == name)
                    && named != Some(name.as_str())
                    && !is_service_link(name, value)
            })
            .map(|(name, _)| name)
            .collect();
        unknown.sort();
        unknown
    }

    /// The folder of the `manifests` provisioning backend.
    pub fn manifests_dir(&self) -> PathBuf {
        self.manifests_dir.clone().unwrap_or_else(|| self.data_dir.join("manifests"))
    }

    /// The database URL in force: the configured one, else the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("entcp.db").display()),
        }
    }

    /// The configuration as YAML, secrets masked.
    pub fn to_yaml(&self) -> String {
        let mut shown = self.clone();
        if shown.mail.smtp.password.is_some() {
            shown.mail.smtp.password = Some("***".into());
        }
        shown.database.url = shown.database.url.as_deref().map(crate::store::redact);
        crate::yaml::to_string(&shown).expect("config serialises")
    }
}

/// A variable Kubernetes sets in a pod for each Service of its namespace (service links):
/// `X_SERVICE_HOST`, `X_SERVICE_PORT[_NAME]`, `X_PORT=tcp://…`, `X_PORT_80_TCP[_PROTO|_PORT|_ADDR]`.
fn is_service_link(name: &str, value: &str) -> bool {
    let port_detail = name.split_once("_PORT_").is_some_and(|(_, rest)| {
        rest.starts_with(|c: char| c.is_ascii_digit()) && ["_TCP", "_UDP", "_SCTP"].iter().any(|p| rest.contains(p))
    });
    name.contains("_SERVICE_HOST")
        || name.contains("_SERVICE_PORT")
        || port_detail
        || (name.ends_with("_PORT") && ["tcp://", "udp://", "sctp://"].iter().any(|s| value.starts_with(s)))
}

/// Parses a lowercase enum value the way the YAML file would.
fn parse_enum<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, crate::yaml::Error> {
    crate::yaml::from_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_account_bounds_are_those_the_readme_documents() {
        let readme = include_str!("../../../README.md");
        let accounts = GuardrailsConfig::default().accounts;
        assert_eq!(accounts.len(), 4);
        let french = |n: i64| format!("{} {:03}", n / 1000, n % 1000);
        for (kind, bounds) in &accounts {
            let row = format!("(`{kind}`");
            let line = readme.lines().find(|l| l.starts_with("| ") && l.contains(&row)).expect("a README row");
            let expected = format!("| {} | {} |", french(bounds.max), french(bounds.approval_above));
            assert!(line.ends_with(&expected), "{line} ≠ {expected}");
        }
    }

    #[test]
    fn an_unset_public_url_is_the_address_the_server_listens_on() {
        let derived = |listen: &str, bound: Option<&str>| {
            let mut config = Config::default();
            config.server.listen = listen.into();
            assert!(config.derive_public_url(bound.map(|b| b.parse().unwrap())));
            config.console.public_url
        };
        assert_eq!(derived("127.0.0.1:8080", None), "http://127.0.0.1:8080");
        assert_eq!(derived("127.0.0.1:18480", None), "http://127.0.0.1:18480");
        // Port 0: the port the system chose.
        assert_eq!(derived("127.0.0.1:0", Some("127.0.0.1:41234")), "http://127.0.0.1:41234");
        assert_eq!(derived("0.0.0.0:9000", None), "http://127.0.0.1:9000");
        assert_eq!(derived("[::]:9000", None), "http://[::1]:9000");
        assert_eq!(derived("entcp.example.fr:80", None), "http://entcp.example.fr:80");
        let mut set = Config::default();
        set.console.public_url = "https://ent.ac-creteil.fr".into();
        assert!(!set.derive_public_url(Some("127.0.0.1:1".parse().unwrap())));
        assert_eq!(set.console.public_url, "https://ent.ac-creteil.fr");
        assert_eq!(set.console.notice_link("/tickets/T1").as_deref(), Some("https://ent.ac-creteil.fr/tickets/T1"));
        let mut guessed = Config::default();
        assert_eq!(guessed.console.notice_link("/tickets/T1"), None, "unset: no link");
        guessed.derive_public_url(None);
        assert_eq!(guessed.console.notice_link("/tickets/T1"), None, "derived: no link to a guessed host");
        assert_eq!(guessed.console.address("/mot-de-passe/s"), "http://127.0.0.1:8080/mot-de-passe/s");
        assert!(Config::default().validate().is_ok(), "an unset public_url is valid");
    }

    #[test]
    fn no_file_gives_loopback_and_embedded_sqlite() {
        let config = Config::default();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.database_url(), "sqlite://./data/entcp.db?mode=rwc");
    }

    #[test]
    fn file_keys_override_defaults_and_unknown_keys_are_refused() {
        let config = Config::from_yaml("server:\n  listen: 0.0.0.0:9000\n").unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:9000");
        assert_eq!(config.log.format, "text");
        let err = Config::from_yaml("server:\n  lisen: x\n").unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn a_log_level_that_would_silence_the_logs_is_refused() {
        for level in ["verbose", "INFO,entcp=loud", ""] {
            let config = Config::from_yaml(&format!("log:\n  level: '{level}'\n")).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("log.level"), "{level}: {err}");
        }
        for level in ["info", "warn,entcp=debug", "debug,sqlx=warn,tower_http=info"] {
            let config = Config::from_yaml(&format!("log:\n  level: '{level}'\n")).unwrap();
            config.validate().unwrap();
        }
        let config = Config::from_yaml("log:\n  format: xml\n").unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("log.format"));
    }

    #[test]
    fn unknown_entcp_variables_are_named_but_not_those_kubernetes_or_the_configuration_sets() {
        let config = Config::from_yaml(
            "identity:\n  oidc:\n    label: Académie\n    issuer: https://idp.example.fr\n    client_id: entcp\n    \
             client_secret_env: ENTCP_OIDC_CLIENT_SECRET\n    redirect_url: https://ent.example.fr/connexion/oidc/retour\n",
        )
        .unwrap();
        let vars = [
            ("ENTCP_DATABSE_URL", "postgres://entcp@db/entcp"),
            ("ENTCP_DATABASE_URL", "postgres://entcp@db/entcp"),
            ("ENTCP_CONFIG", "/etc/entcp/entcp.yaml"),
            ("ENTCP_OIDC_CLIENT_SECRET", "s3cret"),
            ("ENTCP_SMTP_PROT", "587"),
            ("ENTCP_SERVICE_HOST", "10.0.0.7"),
            ("ENTCP_SERVICE_PORT_HTTP", "80"),
            ("ENTCP_PORT", "tcp://10.0.0.7:80"),
            ("ENTCP_PORT_80_TCP_ADDR", "10.0.0.7"),
            ("ENTCP_DB_RW_SERVICE_HOST", "10.0.0.8"),
            ("HOME", "/tmp"),
        ];
        let unknown = config.unknown_env(vars.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(unknown, ["ENTCP_DATABSE_URL", "ENTCP_SMTP_PROT"]);
    }

    #[test]
    fn the_import_lease_is_read_from_the_file_or_the_environment_and_bounded() {
        let mut config = Config::from_yaml("import:\n  lease_seconds: 30\n").unwrap();
        config.validate().unwrap();
        assert_eq!(config.import.lease_seconds, 30);
        config.apply_env(|n| (n == "ENTCP_IMPORT_LEASE_SECONDS").then(|| "600".into())).unwrap();
        assert_eq!(config.import.lease_seconds, 600);
        config.validate().unwrap();
        assert_eq!(Config::default().import.lease_seconds, 120, "two minutes unless told");
        for refused in [0, 2, 3601] {
            config.import.lease_seconds = refused;
            let err = config.validate().unwrap_err().to_string();
            assert!(err.starts_with("import.lease_seconds : ") && err.contains("de 3 à 3600 secondes"), "{err}");
        }
        assert!(config.apply_env(|n| (n == "ENTCP_IMPORT_LEASE_SECONDS").then(|| "2 min".into())).is_err());
    }

    #[test]
    fn the_listener_limits_are_read_from_the_file_and_zero_is_refused_by_name() {
        let config = Config::default();
        assert_eq!(
            (
                config.server.header_read_timeout_seconds,
                config.server.idle_timeout_seconds,
                config.server.max_connections
            ),
            (10, 60, 512)
        );
        let yaml = "server:\n  header_read_timeout_seconds: 1\n  idle_timeout_seconds: 5\n  max_connections: 3\n";
        let config = Config::from_yaml(yaml).unwrap();
        config.validate().unwrap();
        assert_eq!(config.server.max_connections, 3);
        let refused = |yaml: &str| Config::from_yaml(yaml).unwrap().validate().unwrap_err().to_string();
        for key in ["header_read_timeout_seconds", "idle_timeout_seconds"] {
            let err = refused(&format!("server:\n  {key}: 0\n"));
            assert!(err.starts_with(&format!("server.{key} : 0 invalide : ")), "{err}");
            assert!(err.contains("de 1 à 86400 secondes"), "{err}");
            let err = refused(&format!("server:\n  {key}: 86401\n"));
            assert!(err.starts_with(&format!("server.{key} : 86401 invalide")), "{err}");
        }
        let err = refused("server:\n  max_connections: 0\n");
        assert!(err.starts_with("server.max_connections : 0 invalide") && err.contains("au moins 1"), "{err}");
    }

    #[test]
    fn a_pool_without_connections_or_without_time_to_get_one_is_refused_by_name() {
        let refused = |yaml: &str| Config::from_yaml(yaml).unwrap().validate().unwrap_err().to_string();
        let err = refused("database:\n  max_connections: 0\n");
        assert!(err.starts_with("database.max_connections : 0 invalide") && err.contains("au moins 1"), "{err}");
        let err = refused("database:\n  acquire_timeout_seconds: 0\n");
        assert!(err.starts_with("database.acquire_timeout_seconds : 0 invalide"), "{err}");
        let err = refused("mail:\n  smtp:\n    timeout_seconds: 0\n");
        assert!(err.starts_with("mail.smtp.timeout_seconds : 0 invalide"), "{err}");
        let mut config = Config::default();
        config.apply_env(|n| (n == "ENTCP_DATABASE_MAX_CONNECTIONS").then(|| "0".into())).unwrap();
        assert!(config.validate().unwrap_err().to_string().starts_with("database.max_connections"));
        config.apply_env(|n| (n == "ENTCP_DATABASE_MAX_CONNECTIONS").then(|| "1".into())).unwrap();
        config.validate().unwrap();
    }

    #[test]
    fn environment_overrides_file() {
        let mut config = Config::from_yaml("import:\n  batch_size: 10\n").unwrap();
        config
            .apply_env(|name| match name {
                "DATABASE_URL" => Some("postgres://u@localhost/entcp".into()),
                "ENTCP_IMPORT_BATCH_SIZE" => Some("250".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.database_url(), "postgres://u@localhost/entcp");
        assert_eq!(config.import.batch_size, 250);
        let err = config.apply_env(|n| (n == "ENTCP_IMPORT_BATCH_SIZE").then(|| "x".into()));
        assert!(err.is_err());
    }

    #[test]
    fn the_auth_throttle_comes_from_the_file_and_forwarded_addresses_are_trusted_only_when_told() {
        let yaml = "server:\n  auth_throttle: { max_failures: 5, window_seconds: 60 }\n";
        let mut config = Config::from_yaml(yaml).unwrap();
        assert_eq!(
            config.server.auth_throttle,
            crate::throttle::ThrottleConfig { max_failures: 5, window_seconds: 60, max_failures_per_address: 0 }
        );
        assert!(!config.server.trust_forwarded_for);
        config.apply_env(|n| (n == "ENTCP_TRUST_FORWARDED_FOR").then(|| "true".into())).unwrap();
        assert!(config.server.trust_forwarded_for);
        assert_eq!(Config::default().server.auth_throttle.max_failures, 20);
    }

    #[test]
    fn the_kube_backend_is_chosen_in_the_file_or_the_environment() {
        let config = Config::from_yaml(
            "provisioning:\n  backend: kube\n  concurrency: 4\n  kube:\n    kubeconfig: /etc/entcp/kubeconfig\n    context: prod\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.provisioning.backend, ProvisioningBackend::Kube);
        assert_eq!(config.provisioning.kube.field_manager, "entcp");
        assert_eq!(config.provisioning.retention_months, 3);
        assert!(config.to_yaml().contains("backend: kube"));
        let mut config = Config::default();
        config.apply_env(|n| (n == "ENTCP_PROVISIONING_BACKEND").then(|| "kube".into())).unwrap();
        assert_eq!(config.provisioning.backend, ProvisioningBackend::Kube);
        assert!(Config::from_yaml("provisioning:\n  backend: helm\n").is_err());
        let zero = Config::from_yaml("provisioning:\n  concurrency: 0\n").unwrap();
        assert!(zero.validate().is_err());
        let limits = Config::from_yaml("provisioning:\n  reconcile:\n    request_timeout_seconds: 2.5\n").unwrap();
        assert_eq!(limits.provisioning.reconcile.request_timeout(), std::time::Duration::from_millis(2500));
        assert_eq!(limits.provisioning.reconcile.resync_seconds, 600);
        let zero = Config::from_yaml("provisioning:\n  reconcile:\n    tenant_deadline_seconds: 0\n").unwrap();
        assert!(zero.validate().unwrap_err().to_string().contains("provisioning.reconcile"));
    }

    #[test]
    fn smtp_settings_come_from_the_environment_and_the_password_is_never_printed() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "ENTCP_MAIL_TRANSPORT" => Some("smtp".into()),
                "ENTCP_SMTP_HOST" => Some("smtp.exemple.fr".into()),
                "ENTCP_SMTP_PORT" => Some("465".into()),
                "ENTCP_SMTP_TLS" => Some("tls".into()),
                "ENTCP_SMTP_PASSWORD" => Some("secret".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.mail.transport, MailTransport::Smtp);
        assert_eq!(config.mail.smtp.host, "smtp.exemple.fr");
        assert_eq!(config.mail.smtp.port, 465);
        assert_eq!(config.mail.smtp.tls, SmtpTls::Tls);
        assert!(!config.to_yaml().contains("secret"));
        let err = config.apply_env(|n| (n == "ENTCP_SMTP_TLS").then(|| "ssl".into()));
        assert!(err.is_err());
    }

    #[test]
    fn the_printed_configuration_masks_the_database_password() {
        let mut config = Config::default();
        config.database.url = Some("postgres://entcp:s3cret@db:5432/entcp?sslmode=require".into());
        let yaml = config.to_yaml();
        assert!(!yaml.contains("s3cret") && yaml.contains("postgres://entcp:***@db:5432/entcp"), "{yaml}");
        config.database.url = Some("postgres://db/entcp?user=entcp&password=s3cret".into());
        assert!(!config.to_yaml().contains("s3cret"), "{}", config.to_yaml());
        assert_eq!(config.database_url(), "postgres://db/entcp?user=entcp&password=s3cret");
    }

    #[test]
    fn the_external_mode_needs_a_store_name_and_a_remote_key_per_tenant_and_service() {
        let external = |extra: &str| {
            let yaml = format!("provisioning:\n  manifests_credentials:\n    mode: external\n{extra}");
            Config::from_yaml(&yaml).unwrap().validate().map_err(|e| e.to_string())
        };
        let err = external("").unwrap_err();
        assert!(err.contains("external.store_name : le mode external demande"), "{err}");
        let err = external("    external: { store_name: Vault_ENT }\n").unwrap_err();
        assert!(err.contains("store_name « Vault_ENT » invalide"), "{err}");
        for (key, expected) in [
            ("ent/{tenant}", "doit contenir {service} et {tenant}"),
            ("ent/{service}", "doit contenir {service} et {tenant}"),
            ("ent/{tenant}/{code}", "{code} inconnu"),
            ("ent/{tenant}/{service", "accolade non fermée"),
            ("ent/{tenant}/service}", "accolade non ouverte"),
            ("ent/{tenant} {service}", "sans espace"),
        ] {
            let err = external(&format!("    external: {{ store_name: vault, remote_key: '{key}' }}\n")).unwrap_err();
            assert!(err.contains("external.remote_key") && err.contains(expected), "{key}: {err}");
        }
        external("    external: { store_name: vault.ent }\n").unwrap();
        external(
            "    external: { store_name: vault, store_kind: SecretStore, remote_key: 'kv/{namespace}/{service}' }\n",
        )
        .unwrap();
        let config = Config::from_yaml(
            "provisioning:\n  manifests_credentials:\n    mode: external\n    external: { store_name: vault }\n",
        )
        .unwrap();
        let external = &config.provisioning.manifests_credentials.external;
        assert_eq!(
            (external.store_kind, external.remote_key.as_str()),
            (SecretStoreKind::ClusterSecretStore, "ent/{tenant}/{service}")
        );
        assert!(Config::from_yaml("provisioning:\n  manifests_credentials:\n    external: { store_kind: Vault }\n")
            .is_err());
    }
}
