//! Implementations of the `entctl` subcommands that are longer than a few lines
//! (binary-only: the library knows nothing of the command line).

pub mod catalog;
pub mod conventions;
pub mod groupements;
pub mod identity;
pub mod rgpd;
pub mod support;
pub mod tenants;

use entcp::error::Problem;
use entcp::{validate, yaml};

/// A YAML (or JSON) document of `file`, refused, as the API refuses a body, when a string
/// holds a control character other than line breaks and tabs (`validate::json_controls`).
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str, file: &std::path::Path) -> anyhow::Result<T> {
    let in_file = |e: yaml::Error| anyhow::anyhow!("{} : {e}", file.display());
    check_controls(&yaml::from_str(text).map_err(in_file)?, file)?;
    yaml::from_str(text).map_err(in_file)
}

/// [`from_yaml`] of the file `file`, read first unless it is too large (its path named when it
/// cannot be read).
pub fn read_yaml<T: serde::de::DeserializeOwned>(file: &std::path::Path) -> anyhow::Result<T> {
    from_yaml(&yaml::read_file(file)?, file)
}

/// Every document of `file` as a `T` (see [`from_yaml`]).
pub fn documents<T: serde::de::DeserializeOwned>(text: &str, file: &std::path::Path) -> anyhow::Result<Vec<T>> {
    let in_file = |e: yaml::Error| anyhow::anyhow!("{} : {e}", file.display());
    for value in yaml::documents::<serde_json::Value>(text).map_err(in_file)? {
        check_controls(&value, file)?;
    }
    yaml::documents(text).map_err(in_file)
}

/// Refuses a document whose strings do not pass `validate::json_controls`.
fn check_controls(value: &serde_json::Value, file: &std::path::Path) -> anyhow::Result<()> {
    if let Some(path) = validate::json_controls(value) {
        anyhow::bail!("{} : caractère de contrôle interdit dans « {path} »", file.display());
    }
    Ok(())
}

/// Multi-line text given on the command line, checked as the API checks it.
pub fn multiline_arg(name: &str, value: &str) -> anyhow::Result<()> {
    validate::multiline(value).map_err(|e| anyhow::anyhow!("--{name} : {e}"))
}

/// A problem as a command's error: its detail.
pub fn fail(p: Problem) -> anyhow::Error {
    anyhow::anyhow!("{}", p.detail)
}
