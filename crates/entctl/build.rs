//! The version this build reports (`entctl version`, `entcp_build_info`, backup manifests): the
//! workspace's version, plus the git commit it was built
//! from (`0.1.0+f5cab53ef8`) when the sources are a git checkout with `git` at hand, else
//! `ENTCTL_BUILD_COMMIT` when set (an image built without its `.git`), else the version alone.
//! No network. Reruns only when the checked-out commit changes (`HEAD`, the branch's ref,
//! `packed-refs`), so that an incremental build does not run git each time.

use std::path::PathBuf;
use std::process::Command;

/// `git` with `args` in this crate's folder: its first line of output, when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

/// The files whose change means another commit is checked out (those that exist only: cargo
/// reruns a build script on every build when a path it watches is missing).
fn watched() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        paths.push(PathBuf::from(&git_dir).join("HEAD"));
        let common = git(&["rev-parse", "--git-common-dir"]).map_or_else(|| PathBuf::from(&git_dir), PathBuf::from);
        let common = if common.is_absolute() { common } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(common) };
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            paths.push(common.join(branch));
        }
        paths.push(common.join("packed-refs"));
    }
    paths.into_iter().filter(|path| path.exists()).collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ENTCTL_BUILD_COMMIT");
    for path in watched() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let commit = git(&["rev-parse", "--short=10", "HEAD"])
        .or_else(|| std::env::var("ENTCTL_BUILD_COMMIT").ok().filter(|commit| !commit.trim().is_empty()));
    let package = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let version = match commit {
        Some(commit) => format!("{package}+{}", commit.trim()),
        None => package,
    };
    println!("cargo:rustc-env=ENTCTL_BUILD_VERSION={version}");
}
