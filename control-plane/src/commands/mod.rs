//! Implementations of the `entctl` subcommands that are longer than a few lines
//! (binary-only: the library knows nothing of the command line).

pub mod catalog;
pub mod conventions;
pub mod groupements;
pub mod identity;
pub mod rgpd;
pub mod support;
pub mod tenants;

/// A YAML (or JSON) document of `file`, refused, as the API refuses a body, when a string
/// holds a control character other than line breaks and tabs (`validate::json_controls`).
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str, file: &std::path::Path) -> anyhow::Result<T> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("{} : {e}", file.display()))?;
    checked(value, file)
}

/// `value` as a `T` once its strings passed `validate::json_controls` (see [`from_yaml`]).
pub fn checked<T: serde::de::DeserializeOwned>(value: serde_yaml::Value, file: &std::path::Path) -> anyhow::Result<T> {
    let json = serde_json::to_value(&value).map_err(|e| anyhow::anyhow!("{} : {e}", file.display()))?;
    if let Some(path) = entcp::validate::json_controls(&json) {
        anyhow::bail!("{} : caractère de contrôle interdit dans « {path} »", file.display());
    }
    serde_yaml::from_value(value).map_err(|e| anyhow::anyhow!("{} : {e}", file.display()))
}

/// Multi-line text given on the command line, checked as the API checks it.
pub fn multiline_arg(name: &str, value: &str) -> anyhow::Result<()> {
    entcp::validate::multiline(value).map_err(|e| anyhow::anyhow!("--{name} : {e}"))
}
