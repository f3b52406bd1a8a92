//! The backend a tenant's objects go to, chosen in the configuration
//! (`provisioning.backend`), and what it reports back about them.

use super::kube::KubeBackend;
use super::manifests::ManifestsBackend;
use super::runtime::Reconciler;
use super::sealed::{Sealer, SecretsPolicy};
use super::RenderedObject;
use crate::tenants::Tenant;
use ent_kernel::config::{Config, ManifestsCredentialsMode, ProvisioningBackend, ProvisioningConfig};
use ent_kernel::store::timestamp;
use std::sync::Arc;

/// What the backend says about a tenant's objects after applying or reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Manifests written for a GitOps tool: nothing more is known here.
    Written,
    /// Deployments applied, not all available yet.
    Progressing,
    /// Every Deployment has its replicas available.
    Available,
    /// A Deployment failed (progress deadline exceeded, replica failure).
    Degraded,
    /// Suspended: every Deployment scaled to zero.
    Stopped,
    /// No workload left, data (volumes, credentials) kept.
    DataOnly,
    /// Nothing desired, the deletion of the namespace asked and not finished (`Terminating`):
    /// read again until the cluster reports it gone.
    Removing,
    /// Nothing left on the backend: for `kube`, the cluster lists none of the tenant's
    /// namespaces ([`Backend::confirms_removal`]); for `manifests`, its folder is gone.
    Removed,
}

impl Observed {
    pub fn as_str(self) -> &'static str {
        match self {
            Observed::Written => "written",
            Observed::Progressing => "progressing",
            Observed::Available => "available",
            Observed::Degraded => "degraded",
            Observed::Stopped => "stopped",
            Observed::DataOnly => "data_only",
            Observed::Removing => "removing",
            Observed::Removed => "removed",
        }
    }

    /// The kind of the tenant event recording a change to this state (none for manifests).
    pub fn event_kind(self) -> Option<&'static str> {
        match self {
            Observed::Written => None,
            Observed::Available => Some("provisioned"),
            Observed::Degraded => Some("degraded"),
            Observed::Progressing => Some("progressing"),
            Observed::Stopped => Some("stopped"),
            Observed::DataOnly => Some("workloads_removed"),
            Observed::Removing => Some("removing"),
            Observed::Removed => Some("removed"),
        }
    }

    /// States that may still change on their own (a rollout going on or failing, a namespace
    /// being deleted): read again on a resync.
    pub fn unsettled(state: Option<&str>) -> bool {
        matches!(state, Some("progressing" | "degraded" | "removing"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub state: Observed,
    /// In French, for the tenant's page and events.
    pub detail: String,
}

/// Why a backend call failed. The message (French) is what the tenant shows as its error.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("configuration du cluster Kubernetes introuvable : {0}")]
    ClusterConfig(String),
    #[error("kubeconfig {path} illisible : {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("client Kubernetes : {0}")]
    Client(String),
    /// The API server answered with a Status.
    #[error("{verb} {kind} {at} : {code} {reason} — {message}")]
    Api { verb: &'static str, kind: String, at: String, code: u16, reason: String, message: String },
    /// No answer from the API server (connection, TLS, timeout, decoding).
    #[error("{verb} {kind} {at} : {detail}")]
    Request { verb: &'static str, kind: String, at: String, detail: String },
    /// The tenant's reconcile took longer than `provisioning.reconcile.tenant_deadline_seconds`.
    #[error("réconciliation interrompue : délai de {0} s par tenant dépassé")]
    Deadline(f64),
    /// The tenant's namespace exists without the tenant's label: made by someone else.
    #[error("l'espace de noms {0} existe déjà et n'a pas été créé pour ce tenant : il n'est ni repris ni modifié ; changez l'identifiant (slug) du tenant ou retirez cet espace de noms du cluster")]
    NamespaceTaken(String),
    #[error("type d'objet {0} non géré par le moteur kube")]
    UnsupportedKind(String),
    #[error("certificat sealed-secrets : {0}")]
    SealingCert(String),
    #[error("écriture des manifestes : {0}")]
    ManifestsWrite(std::io::Error),
    #[error("lecture des manifestes : {0}")]
    ManifestsRead(std::io::Error),
}

impl BackendError {
    /// The cause, as `/metrics` counts failures.
    pub fn cause(&self) -> String {
        match self {
            BackendError::Api { code, .. } => format!("api_{code}"),
            BackendError::Request { detail, .. } if detail.contains("délai par requête") => "timeout".into(),
            BackendError::Request { .. } => "transport".into(),
            BackendError::Deadline(_) => "deadline".into(),
            BackendError::ClusterConfig(_)
            | BackendError::Kubeconfig { .. }
            | BackendError::Client(_)
            | BackendError::SealingCert(_) => "config".into(),
            BackendError::UnsupportedKind(_) => "unsupported_kind".into(),
            BackendError::NamespaceTaken(_) => "namespace_taken".into(),
            BackendError::ManifestsWrite(_) | BackendError::ManifestsRead(_) => "manifests".into(),
        }
    }
}

/// What the `manifests` backend writes for Secrets (`sealed`: the controller's certificate, read now;
/// `external`: the store, checked with the configuration).
fn secrets_policy(provisioning: &ProvisioningConfig) -> Result<SecretsPolicy, BackendError> {
    let config = &provisioning.manifests_credentials;
    let path = match (config.mode, &config.sealing_cert) {
        (ManifestsCredentialsMode::Omit, _) => return Ok(SecretsPolicy::Omit),
        (ManifestsCredentialsMode::External, _) => return Ok(SecretsPolicy::External(config.external.clone())),
        (ManifestsCredentialsMode::Sealed, Some(path)) => path,
        (ManifestsCredentialsMode::Sealed, None) => {
            return Err(BackendError::SealingCert("provisioning.manifests_credentials.sealing_cert absent".into()))
        }
    };
    let unreadable = |reason: String| BackendError::SealingCert(format!("{} : {reason}", path.display()));
    let pem = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    Ok(SecretsPolicy::Sealed(Sealer::from_pem(&pem).map_err(unreadable)?))
}

pub enum Backend {
    Manifests(ManifestsBackend),
    Kube(KubeBackend),
}

impl Backend {
    /// The configured backend (for `kube`: a client from the kubeconfig or the in-cluster
    /// account, under the process's rate limit).
    pub async fn from_config(config: &Config, reconciler: &Arc<Reconciler>) -> Result<Backend, BackendError> {
        let provisioning = &config.provisioning;
        Ok(match provisioning.backend {
            ProvisioningBackend::Manifests => Backend::Manifests(
                ManifestsBackend::new(config.manifests_dir()).with_secrets(secrets_policy(provisioning)?),
            ),
            ProvisioningBackend::Kube => Backend::Kube(
                KubeBackend::from_config(&provisioning.kube, &provisioning.reconcile, reconciler.clone()).await?,
            ),
        })
    }

    /// Makes the backend hold exactly `objects` for the tenant (none: everything goes).
    /// `inputs_hash` identifies what the objects were rendered from.
    pub async fn apply(
        &self,
        tenant: &Tenant,
        objects: &[RenderedObject],
        inputs_hash: &str,
    ) -> Result<Observation, BackendError> {
        match self {
            Backend::Manifests(m) => {
                m.apply(&tenant.slug, objects, inputs_hash).map_err(BackendError::ManifestsWrite)?;
                Ok(if objects.is_empty() {
                    Observation { state: Observed::Removed, detail: "aucun manifeste".into() }
                } else {
                    Observation {
                        state: Observed::Written,
                        detail: format!("{} manifestes dans {}", objects.len(), m.tenant_dir(&tenant.slug).display()),
                    }
                })
            }
            Backend::Kube(k) => k.apply(tenant, objects).await,
        }
    }

    /// Whether the backend still holds what was applied from `inputs_hash`, without
    /// rendering (manifests: the folder's files match its hash file; kube: the apply
    /// is trusted). `has_none` says whether the tenant has no objects at all.
    pub fn intact(
        &self,
        tenant: &Tenant,
        inputs_hash: &str,
        has_none: impl FnOnce() -> bool,
    ) -> Result<bool, BackendError> {
        match self {
            Backend::Manifests(m) => {
                m.matches(&tenant.slug, inputs_hash, has_none).map_err(BackendError::ManifestsRead)
            }
            Backend::Kube(_) => Ok(true),
        }
    }

    /// Whether a settled tenant is due for its resync (kube only: its objects are
    /// applied again, which repairs drift; a no-op server-side apply writes nothing).
    pub fn resync_due(&self, reconciled_at: Option<&str>, now: chrono::DateTime<chrono::Utc>, period: u64) -> bool {
        let due = timestamp(now - chrono::Duration::seconds(period as i64));
        matches!(self, Backend::Kube(_)) && reconciled_at.is_none_or(|at| at <= due.as_str())
    }

    /// Whether the backend's [`Observed::Removed`] is the cluster's confirmation that the
    /// tenant's namespace and volumes are gone: `kube` lists them; `manifests` only withdraws the
    /// files a GitOps tool applies, and never hears of the deletion.
    pub fn confirms_removal(&self) -> bool {
        matches!(self, Backend::Kube(_))
    }

    /// Reads the workloads' state again (kube only; `None`: nothing to read).
    pub async fn observe(
        &self,
        tenant: &Tenant,
        objects: &[RenderedObject],
    ) -> Result<Option<Observation>, BackendError> {
        match self {
            Backend::Manifests(_) => Ok(None),
            Backend::Kube(k) => k.observe(tenant, objects).await.map(Some),
        }
    }
}
