//! The `manifests` backend: each tenant's objects as YAML files in its own
//! folder, replaced whole (written in a staging folder of its own writer, then
//! renamed), so a GitOps tool (Argo CD, Flux) syncing the folder never sees half
//! a tenant. Objects no longer desired disappear with the old folder, but for the volume
//! of a removed service: kept, marked `entcp.education.fr/retained`, until the purge.
//!
//! Each folder holds `.entcp-sha256`: the hash of its files as written, and the
//! hash of the reconciler inputs they were rendered from. A pass that finds files
//! not matching it (a writer killed midway, a hand edit), or written from other
//! inputs than the applied ones, rewrites the folder; checking needs no render. One writer per tenant across processes is the
//! reconciler's lease (`tenant_leases`), not this module's.
//!
//! No Secret is written as such: its values would sit in clear text in git. It is
//! left out (listed in a note), sealed, or replaced by an `ExternalSecret`, as
//! `provisioning.manifests_credentials` says.

use super::external::external_secret;
use super::kube::fit_to_volumes;
use super::render::RETAINED_LABEL;
use super::sealed::{omitted_note, SecretsPolicy, NOTE_FILE};
use super::RenderedObject;
use ent_kernel::files::{private_dir, write_private};
use ent_kernel::store::new_id;
use ent_kernel::yaml;
use kube::api::DynamicObject;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The hash file written in every tenant folder (a dotfile: GitOps tools skip it).
pub const HASH_FILE: &str = ".entcp-sha256";

pub struct ManifestsBackend {
    root: PathBuf,
    secrets: SecretsPolicy,
    /// The staging and old folders killed writers left in the root, by tenant slug: listed
    /// once per backend (one reconcile pass), not once per tenant written, since the root
    /// holds a folder per tenant (a listing per write made a first pass quadratic).
    leftovers: std::sync::Mutex<Option<std::collections::HashMap<String, Vec<String>>>>,
}

/// How the file of a PersistentVolumeClaim is named ([`file_name`]).
const CLAIM_FILE_PREFIX: &str = "persistentvolumeclaim-";

fn file_name(object: &RenderedObject) -> String {
    format!("{}-{}.yaml", object.kind.to_ascii_lowercase(), object.name)
}

/// The files of a tenant folder holding `objects`, Secrets left out: (name, YAML), sorted by name.
pub fn files(objects: &[RenderedObject]) -> std::io::Result<Vec<(String, String)>> {
    files_under(objects, &SecretsPolicy::Omit)
}

/// The files of a tenant folder holding `objects`, each Secret as `secrets` says.
fn files_under(objects: &[RenderedObject], secrets: &SecretsPolicy) -> std::io::Result<Vec<(String, String)>> {
    let yaml = |object: &RenderedObject| -> std::io::Result<(String, String)> {
        Ok((file_name(object), yaml::to_string(&object.manifest).map_err(std::io::Error::other)?))
    };
    let (credentials, others): (Vec<&RenderedObject>, Vec<&RenderedObject>) =
        objects.iter().partition(|o| o.kind == "Secret");
    let mut files = others.into_iter().map(yaml).collect::<std::io::Result<Vec<_>>>()?;
    match secrets {
        SecretsPolicy::Omit if !credentials.is_empty() => files.push((NOTE_FILE.into(), omitted_note(&credentials))),
        SecretsPolicy::Omit => {}
        SecretsPolicy::Sealed(sealer) => {
            for secret in credentials {
                files.push(yaml(&sealer.seal(secret).map_err(std::io::Error::other)?)?);
            }
        }
        SecretsPolicy::External(store) => {
            for secret in credentials {
                files.push(yaml(&external_secret(store, secret))?);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The hash of a folder's files (sorted by name).
fn content_hash<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut hasher = Sha256::new();
    for (name, content) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(content.len().to_le_bytes());
        hasher.update(content);
    }
    hex::encode(hasher.finalize())
}

fn hash_of(files: &[(String, String)]) -> String {
    content_hash(files.iter().map(|(name, yaml)| (name.as_str(), yaml.as_bytes())))
}

impl ManifestsBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ManifestsBackend { root: root.into(), secrets: SecretsPolicy::Omit, leftovers: Default::default() }
    }

    /// Secrets written as `secrets` says (by default: left out, listed in a note).
    pub fn with_secrets(self, secrets: SecretsPolicy) -> Self {
        ManifestsBackend { secrets, ..self }
    }

    /// What a folder was written from: the reconciler's inputs and the secrets policy.
    fn written_from(&self, inputs_hash: &str) -> String {
        format!("{inputs_hash} {}", self.secrets.fingerprint())
    }

    pub fn tenant_dir(&self, slug: &str) -> PathBuf {
        self.root.join(slug)
    }

    /// Replaces the tenant's folder with exactly these objects (none: the folder goes).
    /// The caller holds the tenant's lease: no other writer touches this tenant.
    /// `inputs_hash` identifies what the objects were rendered from (see [`Self::matches`]).
    pub fn apply(&self, slug: &str, objects: &[RenderedObject], inputs_hash: &str) -> std::io::Result<()> {
        private_dir(&self.root)?;
        self.remove_leftovers(slug)?;
        let target = self.tenant_dir(slug);
        if objects.is_empty() {
            return remove_if_present(&target);
        }
        let objects = with_kept_volumes(&target, objects)?;
        let files = files_under(&objects, &self.secrets)?;
        // Unique per writer: a writer killed midway never shares a folder with the next one.
        let unique = new_id();
        let staging = self.root.join(format!(".{slug}.new-{unique}"));
        private_dir(&staging)?;
        for (name, yaml) in &files {
            write_private(&staging.join(name), yaml.as_bytes())?;
        }
        write_private(
            &staging.join(HASH_FILE),
            format!("{}\n{}\n", hash_of(&files), self.written_from(inputs_hash)).as_bytes(),
        )?;
        let old = self.root.join(format!(".{slug}.old-{unique}"));
        if target.exists() {
            std::fs::rename(&target, &old)?;
        }
        std::fs::rename(&staging, &target)?;
        remove_if_present(&old)
    }

    /// Whether the tenant's folder is intact and was written from `inputs_hash`: its
    /// files hash to what its hash file says. An absent folder is intact only when
    /// the tenant has no objects (`has_none`, called only then).
    pub fn matches(&self, slug: &str, inputs_hash: &str, has_none: impl FnOnce() -> bool) -> std::io::Result<bool> {
        let target = self.tenant_dir(slug);
        let recorded = match std::fs::read_to_string(target.join(HASH_FILE)) {
            Ok(recorded) => recorded,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(!target.exists() && has_none()),
            Err(e) => return Err(e),
        };
        let mut lines = recorded.lines();
        let (Some(content), Some(inputs)) = (lines.next(), lines.next()) else { return Ok(false) };
        if inputs != self.written_from(inputs_hash) {
            return Ok(false);
        }
        let mut present = Vec::new();
        for entry in std::fs::read_dir(&target)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                return Ok(false);
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != HASH_FILE {
                present.push((name, std::fs::read(entry.path())?));
            }
        }
        present.sort();
        Ok(content_hash(present.iter().map(|(name, content)| (name.as_str(), content.as_slice()))) == content)
    }

    /// Staging and old folders of this tenant left by a writer that was killed (the root is
    /// listed at the first write of this backend; a writer holds its tenant's lease, so a
    /// folder listed then and gone since was renamed or removed by its own writer).
    fn remove_leftovers(&self, slug: &str) -> std::io::Result<()> {
        let names = {
            let mut leftovers = self.leftovers.lock().expect("leftovers lock");
            if leftovers.is_none() {
                let mut found: std::collections::HashMap<String, Vec<String>> = Default::default();
                for entry in std::fs::read_dir(&self.root)? {
                    let name = entry?.file_name().to_string_lossy().into_owned();
                    if let Some(slug) = leftover_of(&name) {
                        found.entry(slug.to_string()).or_default().push(name);
                    }
                }
                *leftovers = Some(found);
            }
            leftovers.as_mut().and_then(|found| found.remove(slug)).unwrap_or_default()
        };
        let target = self.tenant_dir(slug);
        if !target.exists() {
            self.put_back_set_aside(slug, &target)?;
        }
        for name in names {
            remove_if_present(&self.root.join(name))?;
        }
        Ok(())
    }

    /// A writer killed between its two renames (this process's or another replica's, at any
    /// time: the root is read again) left the tenant's last complete folder as `.old` and none
    /// in its place: it is the tenant's, its kept volumes with it, and goes back.
    fn put_back_set_aside(&self, slug: &str, target: &Path) -> std::io::Result<()> {
        let old_prefix = format!(".{slug}.old");
        for entry in std::fs::read_dir(&self.root)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with(&old_prefix) && leftover_of(&name) == Some(slug) {
                match std::fs::rename(self.root.join(&name), target) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    done => return done,
                }
            }
        }
        Ok(())
    }
}

/// `objects` with the volumes of the tenant's current folder: a claim no longer rendered (its
/// service removed) is kept, marked [`RETAINED_LABEL`], until the purge removes the folder, as
/// the kube backend keeps it; a rendered one keeps its storage class and size, and the quota
/// holds them all ([`fit_to_volumes`]).
fn with_kept_volumes(target: &Path, objects: &[RenderedObject]) -> std::io::Result<Vec<RenderedObject>> {
    let claims = current_claims(target)?;
    let mut kept = fit_to_volumes(objects, &claims).objects;
    let rendered: HashSet<&str> =
        objects.iter().filter(|o| o.kind == "PersistentVolumeClaim").map(|o| o.name.as_str()).collect();
    for claim in claims {
        let name = claim.metadata.name.clone().unwrap_or_default();
        if rendered.contains(name.as_str()) {
            continue;
        }
        let mut manifest = serde_json::to_value(&claim).map_err(std::io::Error::other)?;
        manifest["metadata"]["labels"][RETAINED_LABEL] = "true".into();
        kept.push(RenderedObject { kind: "PersistentVolumeClaim".into(), name, manifest });
    }
    Ok(kept)
}

/// The claims the tenant's folder holds now (none when it has no folder yet).
fn current_claims(target: &Path) -> std::io::Result<Vec<DynamicObject>> {
    let entries = match std::fs::read_dir(target) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut claims = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(CLAIM_FILE_PREFIX) {
            let text = std::fs::read_to_string(entry.path())?;
            claims.push(yaml::from_str(&text).map_err(std::io::Error::other)?);
        }
    }
    Ok(claims)
}

/// The tenant a staging (`.{slug}.new-{unique}`) or old (`.{slug}.old-{unique}`) folder belongs to.
fn leftover_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    for marker in [".new", ".old"] {
        if let Some(at) = rest.rfind(marker) {
            let tail = &rest[at + marker.len()..];
            if tail.is_empty() || tail.starts_with('-') {
                return Some(&rest[..at]);
            }
        }
    }
    None
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::leftover_of;

    #[test]
    fn a_leftover_folder_names_its_tenant() {
        assert_eq!(leftover_of(".ecole-1.new-0192f0c2-aaaa"), Some("ecole-1"));
        assert_eq!(leftover_of(".ecole-1.old-0192f0c2-aaaa"), Some("ecole-1"));
        assert_eq!(leftover_of(".ecole-1.new"), Some("ecole-1"));
        assert_eq!(leftover_of(".newco.old-1"), Some("newco"));
        assert_eq!(leftover_of("ecole-1"), None, "a tenant folder");
        assert_eq!(leftover_of(".ecole-1.newer"), None);
        assert_eq!(leftover_of(".entcp-sha256"), None);
    }
}
