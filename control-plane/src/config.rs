//! The one configuration struct: defaults for every key, an optional YAML file,
//! then environment overrides. Parsed once in `main` and passed in the state.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and generated files live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub import: ImportConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port the HTTP server listens on.
    pub listen: String,
    /// Largest request body accepted, in bytes (annuaire uploads included).
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://...` or `sqlite://...`; empty means `<data_dir>/entcp.db`.
    pub url: Option<String>,
    /// Connection pool size.
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info,entcp=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// Rows written per transaction.
    pub batch_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            import: ImportConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 512 * 1024 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig { batch_size: 1000 }
    }
}

/// Environment variables that override a key, in the order they are applied.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("ENTCP_DATA_DIR", "data_dir"),
    ("ENTCP_LISTEN", "server.listen"),
    ("ENTCP_MAX_BODY_BYTES", "server.max_body_bytes"),
    ("DATABASE_URL", "database.url"),
    ("ENTCP_DATABASE_URL", "database.url"),
    ("ENTCP_DATABASE_MAX_CONNECTIONS", "database.max_connections"),
    ("ENTCP_LOG_FORMAT", "log.format"),
    ("ENTCP_LOG_LEVEL", "log.level"),
    ("ENTCP_IMPORT_BATCH_SIZE", "import.batch_size"),
];

impl Config {
    /// Defaults, then the YAML file if given, then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("lecture de {} impossible : {e}", path.display())
                })?;
                Self::from_yaml(&text).map_err(|e| {
                    anyhow::anyhow!("configuration {} invalide : {e}", path.display())
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    pub fn from_yaml(text: &str) -> Result<Config, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text)
    }

    /// Applies overrides read through `lookup` (the process environment in production).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        for (var, key) in ENV_OVERRIDES {
            let Some(value) = lookup(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{var}={value} invalide : {e}");
            match *key {
                "data_dir" => self.data_dir = PathBuf::from(&value),
                "server.listen" => self.server.listen = value.clone(),
                "server.max_body_bytes" => {
                    self.server.max_body_bytes = value.parse().map_err(|e| bad(&e))?
                }
                "database.url" => self.database.url = Some(value.clone()),
                "database.max_connections" => {
                    self.database.max_connections = Some(value.parse().map_err(|e| bad(&e))?)
                }
                "log.format" => self.log.format = value.clone(),
                "log.level" => self.log.level = value.clone(),
                "import.batch_size" => {
                    self.import.batch_size = value.parse().map_err(|e| bad(&e))?
                }
                other => unreachable!("override for unknown key {other}"),
            }
        }
        Ok(())
    }

    /// The database URL in force: the configured one, else the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("entcp.db").display()
            ),
        }
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_gives_loopback_and_embedded_sqlite() {
        let config = Config::default();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.database_url(), "sqlite://./data/entcp.db?mode=rwc");
    }

    #[test]
    fn file_keys_override_defaults_and_unknown_keys_are_refused() {
        let config = Config::from_yaml("server:\n  listen: 0.0.0.0:9000\n").unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:9000");
        assert_eq!(config.log.format, "text");
        let err = Config::from_yaml("server:\n  lisen: x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn environment_overrides_file() {
        let mut config = Config::from_yaml("import:\n  batch_size: 10\n").unwrap();
        config
            .apply_env(|name| match name {
                "DATABASE_URL" => Some("postgres://u@localhost/entcp".into()),
                "ENTCP_IMPORT_BATCH_SIZE" => Some("250".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.database_url(), "postgres://u@localhost/entcp");
        assert_eq!(config.import.batch_size, 250);
        let err = config.apply_env(|n| (n == "ENTCP_IMPORT_BATCH_SIZE").then(|| "x".into()));
        assert!(err.is_err());
    }
}
