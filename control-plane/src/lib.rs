//! ENT control plane: the library behind the `entctl` binary.
//!
//! One module per capability (see ARCHITECTURE.md); `api` mounts their routes.

pub mod api;
pub mod audit;
pub mod bench;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod contracts;
pub mod conventions;
pub mod demo;
pub mod documents;
pub mod error;
pub mod files;
pub mod groupements;
pub mod http;
pub mod identity;
pub mod jobs;
pub mod kernel;
pub mod notify;
pub mod provisioning;
pub mod registry;
pub mod rgpd;
pub mod store;
pub mod support;
pub mod synthetic;
pub mod tenants;
pub mod throttle;
pub mod validate;
pub mod yaml;
