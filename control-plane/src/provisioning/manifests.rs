//! The `manifests` backend: each tenant's objects as YAML files in its own
//! folder, replaced whole (write aside, then rename), so a GitOps tool (Argo CD,
//! Flux) syncing the folder never sees half a tenant. Objects no longer desired
//! disappear with the old folder.

use super::RenderedObject;
use std::path::{Path, PathBuf};

pub struct ManifestsBackend {
    root: PathBuf,
}

fn file_name(object: &RenderedObject) -> String {
    format!("{}-{}.yaml", object.kind.to_ascii_lowercase(), object.name)
}

impl ManifestsBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ManifestsBackend { root: root.into() }
    }

    pub fn tenant_dir(&self, slug: &str) -> PathBuf {
        self.root.join(slug)
    }

    /// Replaces the tenant's folder with exactly these objects (none: the folder goes).
    pub fn apply(&self, slug: &str, objects: &[RenderedObject]) -> std::io::Result<()> {
        crate::files::private_dir(&self.root)?;
        let target = self.tenant_dir(slug);
        if objects.is_empty() {
            return remove_if_present(&target);
        }
        let staging = self.root.join(format!(".{slug}.new"));
        remove_if_present(&staging)?;
        crate::files::private_dir(&staging)?;
        for object in objects {
            let yaml = serde_yaml::to_string(&object.manifest).map_err(std::io::Error::other)?;
            crate::files::write_private(&staging.join(file_name(object)), yaml.as_bytes())?;
        }
        let old = self.root.join(format!(".{slug}.old"));
        remove_if_present(&old)?;
        if target.exists() {
            std::fs::rename(&target, &old)?;
        }
        std::fs::rename(&staging, &target)?;
        remove_if_present(&old)
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
