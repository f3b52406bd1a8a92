//! Provisioning: the desired Kubernetes objects of a tenant. `render` is a
//! pure function of the tenant, its organisation and its services; backends
//! (GitOps manifests, server-side apply) and the reconciler come next.

pub mod manifests;
pub mod reconcile;
pub mod render;

pub use render::{render, to_yaml, RenderedObject};
