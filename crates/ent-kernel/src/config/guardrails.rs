//! Guardrails on what a tenant may ask for, checked at `tenants apply` (the Capsule
//! `Tenant` limits, mapped to what this product governs).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bounds on a tenant's `accounts` for one kind of school.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccountBounds {
    /// Never more accounts than this, whoever asks.
    pub max: i64,
    /// A change to more accounts than this needs the DAN's approval (the DAN applies it).
    pub approval_above: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GuardrailsConfig {
    /// Bounds by kind of school: `ecole`, `college`, `lycee`, `commune` (absent: unbounded).
    pub accounts: BTreeMap<String, AccountBounds>,
    /// Hostname suffixes allowed, by organisation key (`academie:24`, `departement:94`,
    /// `region:11`, `commune:94034`) or `*` for every tenant; a tenant whose organisation
    /// no key names may use any hostname.
    pub hostname_suffixes: BTreeMap<String, Vec<String>>,
    /// The storage classes the tenants' volumes may use (empty: any).
    pub storage_classes: Vec<String>,
    /// The registries the services' images may come from, e.g. `registry.example.org/ent`
    /// (empty: any).
    pub registries: Vec<String>,
}

impl Default for GuardrailsConfig {
    fn default() -> Self {
        let bounds = |max, approval_above| AccountBounds { max, approval_above };
        GuardrailsConfig {
            accounts: BTreeMap::from([
                ("ecole".to_string(), bounds(5_000, 2_500)),
                ("college".to_string(), bounds(5_000, 2_500)),
                ("lycee".to_string(), bounds(10_000, 5_000)),
                ("commune".to_string(), bounds(50_000, 20_000)),
            ]),
            hostname_suffixes: BTreeMap::new(),
            storage_classes: Vec::new(),
            registries: Vec::new(),
        }
    }
}

impl GuardrailsConfig {
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        for (kind, b) in &self.accounts {
            if !["ecole", "college", "lycee", "commune"].contains(&kind.as_str()) {
                anyhow::bail!(
                    "provisioning.guardrails.accounts : type « {kind} » inconnu (ecole, college, lycee, commune)"
                );
            }
            if b.max < 1 || b.approval_above < 0 || b.approval_above > b.max {
                anyhow::bail!("provisioning.guardrails.accounts.{kind} : 0 ≤ approval_above ≤ max, max au moins 1");
            }
        }
        Ok(())
    }
}
