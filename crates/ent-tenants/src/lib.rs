//! ent-tenants: see ARCHITECTURE.md for what it holds and what it may use.

pub mod provisioning;
pub mod tenants;
