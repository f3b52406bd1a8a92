//! What this build is, as the running process reports it (`entctl version`, `entcp_build_info`,
//! backup manifests; meant for the `User-Agent` of its clients too): the version the binary sets at start
//! ([`set_version`]) — the workspace's version and the git commit, computed by `entctl`'s
//! build script, so that only that crate is rebuilt when the commit changes — else the
//! workspace's version alone (a library's own tests).

use std::sync::OnceLock;

static VERSION: OnceLock<&'static str> = OnceLock::new();

/// Sets the version of this process, once, at start; a second call changes nothing.
pub fn set_version(version: &'static str) {
    let _ = VERSION.set(version);
}

/// The version of this process: `0.1.0+f5cab53ef8`, or `0.1.0` when the binary set none.
pub fn version() -> &'static str {
    VERSION.get().copied().unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// The last migration this binary knows (its schema version).
pub fn schema_version() -> i64 {
    crate::store::migrations::last_known()
}
