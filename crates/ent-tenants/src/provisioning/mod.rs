//! Provisioning: the desired Kubernetes objects of a tenant (`render`, pure),
//! the backends they go to (`manifests` for GitOps, `kube` for server-side
//! apply), the reconciler and the retention purge.

pub mod backend;
pub mod backfill;
pub mod conditions;
pub mod external;
pub mod kube;
pub mod lease;
pub mod manifests;
pub mod operator;
pub mod platform;
pub mod purge;
pub mod quantity;
pub mod reconcile;
pub mod render;
pub mod runtime;
pub mod sealed;
pub mod state;
pub mod watch;

pub use render::{render, security_measures, to_yaml, RenderedObject};
pub use state::ProvisioningState;
