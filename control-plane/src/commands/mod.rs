//! Implementations of the `entctl` subcommands that are longer than a few lines
//! (binary-only: the library knows nothing of the command line).

pub mod catalog;
pub mod conventions;
pub mod groupements;
pub mod identity;
pub mod rgpd;
pub mod support;
pub mod tenants;
