//! The platform side of a render: what, beside the tenant's own inputs, decides the
//! objects a replica renders (its render version, the cluster configuration, the deployment
//! facts of the catalog compiled into it), and when that replica started. Recorded with each apply (`tenants.applied_render_version`,
//! `applied_cluster_hash`, `applied_started_at`, migration 0041), so that during a rolling
//! upgrade (or a rollout of the cluster configuration) an older replica leaves alone what
//! a newer one applied instead of rolling it back (`reconcile::left_to_newer`).

use crate::tenants::AppliedBy;
use ent_kernel::config::ClusterConfig;
use ent_platform::catalog::Catalog;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;

/// Bumped when `render` changes (or what is hashed), so that every tenant is re-applied once.
pub const RENDER_VERSION: i64 = 4;

/// Who rendered (or renders) a tenant's objects, apart from the tenant's own inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The renderer's version ([`RENDER_VERSION`] of the binary, unless a test sets another).
    pub render_version: i64,
    /// The fingerprint of `provisioning.cluster` and of the catalog's deployment facts
    /// ([`platform_hash`]; column `applied_cluster_hash`).
    pub cluster: String,
    /// When the writer's process started (UTC timestamp, sortable text).
    pub started_at: String,
}

impl Platform {
    /// Whether a render by `self` supersedes one by `other` (from the same tenant inputs):
    /// a newer render version, or the same version against another cluster configuration or
    /// catalog (an image bumped) by a process started later (the one rolled out last wins).
    pub fn supersedes(&self, other: &Platform) -> bool {
        match self.render_version.cmp(&other.render_version) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => self.cluster != other.cluster && self.started_at > other.started_at,
        }
    }
}

impl Platform {
    /// What rendered the applied objects, when all of it is known.
    pub fn applied(applied: &AppliedBy) -> Option<Platform> {
        Some(Platform {
            render_version: applied.applied_render_version?,
            cluster: applied.applied_cluster_hash.clone()?,
            started_at: applied.applied_started_at.clone()?,
        })
    }
}

/// The fingerprint of what, beside the render version, a replica renders every tenant against:
/// the cluster configuration and the catalog's deployment facts (images, digests, ports...,
/// compiled into the binary or overlaid), by service code.
pub fn platform_hash(cluster: &ClusterConfig, catalog: &Catalog) -> String {
    let deployments: Vec<_> = catalog.services.iter().map(|s| (&s.code, &s.deployment)).collect();
    let key = (cluster, deployments);
    hex::encode(Sha256::digest(serde_json::to_vec(&key).expect("cluster configuration and catalog serialise")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(version: i64, cluster: &str, started_at: &str) -> Platform {
        Platform { render_version: version, cluster: cluster.into(), started_at: started_at.into() }
    }

    #[test]
    fn a_newer_render_version_supersedes_whatever_the_start_times() {
        let old = platform(4, "a", "2026-12-02T08:00:00.000000Z");
        let new = platform(5, "b", "2026-12-02T07:00:00.000000Z");
        assert!(new.supersedes(&old));
        assert!(!old.supersedes(&new), "an older replica restarted later still yields to the newer version");
    }

    #[test]
    fn with_one_version_the_later_start_supersedes_only_with_another_cluster_configuration() {
        let first = platform(4, "a", "2026-12-02T07:00:00.000000Z");
        let later_other = platform(4, "b", "2026-12-02T08:00:00.000000Z");
        let later_same = platform(4, "a", "2026-12-02T08:00:00.000000Z");
        assert!(later_other.supersedes(&first));
        assert!(!first.supersedes(&later_other));
        assert!(!later_same.supersedes(&first) && !first.supersedes(&later_same), "same render: nobody defers");
        assert!(!first.supersedes(&first));
    }

    #[test]
    fn the_platform_fingerprint_follows_the_configuration_and_the_catalog_images() {
        let catalog = Catalog::load(None).unwrap();
        let cluster = ClusterConfig::default();
        let other = ClusterConfig { ingress_class: Some("traefik".into()), ..ClusterConfig::default() };
        assert_eq!(platform_hash(&cluster, &catalog), platform_hash(&ClusterConfig::default(), &catalog));
        assert_ne!(platform_hash(&cluster, &catalog), platform_hash(&other, &catalog));
        let mut bumped = catalog.clone();
        bumped.services[0].deployment.image.push_str("-next");
        assert_ne!(platform_hash(&cluster, &catalog), platform_hash(&cluster, &bumped), "an image bumped");
        let mut renamed = catalog.clone();
        renamed.services[0].name.push_str(" (nouveau nom)");
        assert_eq!(platform_hash(&cluster, &catalog), platform_hash(&cluster, &renamed), "a tenant-side fact");
    }
}
