//! The `identity` section: how people sign in besides API tokens. Only the
//! OpenID Connect provider for now (`identity.oidc`); the client itself is
//! `ent_platform::identity::oidc`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Sign-in through an OpenID Connect provider (ProConnect, an académie's own); none: off.
    pub oidc: Option<OidcConfig>,
}

/// An OpenID Connect provider. The client secret never appears in the file: it is
/// read from the environment variable or the file named here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's name on the sign-in button (« ProConnect », « le fournisseur de l'académie »).
    #[serde(default = "default_label")]
    pub label: String,
    /// Issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Name of the environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// File holding the client secret (a mounted secret), surrounding blanks ignored.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for; `openid` is required.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The console's callback URL, as registered at the provider.
    pub redirect_url: String,
    /// Where the provider sends the browser back after sign-out (ProConnect requires it).
    pub post_logout_redirect_url: Option<String>,
    /// `acr_values` sent to the provider (`eidas1` for ProConnect); the ID token's
    /// `acr` must then be one of them.
    pub acr_values: Option<String>,
    /// Send a PKCE challenge (S256). On by default.
    #[serde(default = "yes")]
    pub pkce: bool,
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Create a user, without any role, for a verified e-mail no user has (default false).
    #[serde(default)]
    pub create_unknown_users: bool,
    /// Take an address without an `email_verified` claim as verified (default false): only for a
    /// provider that issues nothing but addresses it vouches for and omits the claim (an
    /// institutional directory). An explicit `email_verified: false` is refused all the same.
    #[serde(default)]
    pub trust_email_without_claim: bool,
    /// Longest wait for each request to the provider.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// Which claims carry what.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// The claim holding the e-mail address (`email`).
    pub email: String,
    /// A claim holding the UAI, SIREN or SIRET of the person's organisation
    /// (`siret` at ProConnect); recorded, never used to grant anything.
    pub organisation: Option<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping { email: "email".into(), organisation: None }
    }
}

fn default_label() -> String {
    "le fournisseur d'identité".into()
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into()]
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    10
}

/// An `https://` URL, or `http://` on the loopback interface (tests, a local provider).
fn check_url(key: &str, url: &str) -> anyhow::Result<()> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])));
    let https = url.strip_prefix("https://").is_some_and(|rest| !rest.is_empty());
    if !(https || loopback) || url.chars().any(char::is_whitespace) {
        anyhow::bail!("identity.oidc.{key} « {url} » invalide : une URL https:// est attendue (http:// seulement en boucle locale)");
    }
    Ok(())
}

impl OidcConfig {
    /// Checks what serde cannot, the secret included (a missing secret stops the start).
    pub fn validate(&self) -> anyhow::Result<()> {
        check_url("issuer", &self.issuer)?;
        check_url("redirect_url", &self.redirect_url)?;
        if let Some(url) = &self.post_logout_redirect_url {
            check_url("post_logout_redirect_url", url)?;
        }
        if self.client_id.trim().is_empty() {
            anyhow::bail!("identity.oidc.client_id : obligatoire");
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            anyhow::bail!("identity.oidc.scopes : « openid » est obligatoire");
        }
        if self.scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            anyhow::bail!("identity.oidc.scopes : un scope est un mot sans espace");
        }
        if self.claims.email.trim().is_empty()
            || self.claims.organisation.as_deref().is_some_and(|c| c.trim().is_empty())
        {
            anyhow::bail!("identity.oidc.claims : un nom de claim ne peut être vide");
        }
        if !(1..=120).contains(&self.timeout_seconds) {
            anyhow::bail!("identity.oidc.timeout_seconds : de 1 à 120 secondes");
        }
        if self.label.trim().is_empty() {
            anyhow::bail!("identity.oidc.label : obligatoire (le nom affiché sur le bouton)");
        }
        self.client_secret().map(|_| ())
    }

    /// The client secret, from the environment variable or the file (exactly one of them).
    pub fn client_secret(&self) -> anyhow::Result<String> {
        let secret = match (&self.client_secret_env, &self.client_secret_file) {
            (Some(var), None) => std::env::var(var).map_err(|_| {
                anyhow::anyhow!("identity.oidc.client_secret_env : la variable d'environnement {var} n'est pas définie")
            })?,
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("identity.oidc.client_secret_file : {} illisible ({e})", path.display())
            })?,
            _ => anyhow::bail!(
                "identity.oidc : indiquez le secret du client par client_secret_env (variable d'environnement) \
                 ou client_secret_file (fichier), l'un des deux ; jamais en clair dans la configuration"
            ),
        };
        let secret = secret.trim().to_string();
        if secret.is_empty() {
            anyhow::bail!("identity.oidc : le secret du client est vide");
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(yaml_tail: &str) -> OidcConfig {
        let yaml = format!(
            "issuer: https://auth.exemple.fr/api/v2\nclient_id: entcp\nredirect_url: https://console.exemple.fr/connexion/oidc/retour\n{yaml_tail}"
        );
        crate::yaml::from_str(&yaml).unwrap()
    }

    #[test]
    fn defaults_ask_for_openid_and_email_with_pkce_and_create_nobody() {
        let config = oidc("client_secret_env: PATH\n");
        assert_eq!(config.scopes, ["openid", "email"]);
        assert!(config.pkce && !config.create_unknown_users);
        assert_eq!(config.claims, ClaimMapping { email: "email".into(), organisation: None });
        config.validate().unwrap();
    }

    #[test]
    fn the_secret_is_never_in_clear_and_must_be_found() {
        let clear: Result<OidcConfig, _> = crate::yaml::from_str(
            "issuer: https://a.fr\nclient_id: x\nredirect_url: https://b.fr/cb\nclient_secret: s3cret\n",
        );
        assert!(clear.unwrap_err().to_string().contains("client_secret"));
        let none = oidc("").validate().unwrap_err().to_string();
        assert!(none.contains("jamais en clair"), "{none}");
        let unset = oidc("client_secret_env: ENTCP_TEST_SURELY_UNSET_VARIABLE\n").validate().unwrap_err().to_string();
        assert!(unset.contains("ENTCP_TEST_SURELY_UNSET_VARIABLE"), "{unset}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "  s3cret\n").unwrap();
        let from_file = oidc(&format!("client_secret_file: {}\n", file.display()));
        assert_eq!(from_file.client_secret().unwrap(), "s3cret");
    }

    #[test]
    fn the_section_is_checked_when_the_configuration_is() {
        let yaml =
            "identity:\n  oidc:\n    issuer: https://a.fr\n    client_id: x\n    redirect_url: https://b.fr/cb\n";
        let config = crate::config::Config::from_yaml(yaml).unwrap();
        assert!(config.identity.oidc.is_some());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("client_secret_env"), "{err}");
        assert!(crate::config::Config::default().identity.oidc.is_none());
    }

    #[test]
    fn urls_must_be_https_except_on_loopback_and_openid_is_required() {
        let mut config = oidc("client_secret_env: PATH\n");
        config.issuer = "http://auth.exemple.fr".into();
        assert!(config.validate().unwrap_err().to_string().contains("identity.oidc.issuer"));
        config.issuer = "http://127.0.0.1:9400".into();
        config.validate().unwrap();
        config.issuer = "http://localhost.evil.fr".into();
        assert!(config.validate().is_err());
        config.issuer = "http://localhost:9400".into();
        config.scopes = vec!["email".into()];
        assert!(config.validate().unwrap_err().to_string().contains("openid"));
    }
}
