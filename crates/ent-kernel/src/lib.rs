//! ent-kernel: see ARCHITECTURE.md for what it holds and what it may use.

pub mod clock;
pub mod config;
pub mod error;
pub mod files;
pub mod http;
pub mod kernel;
pub mod store;
pub mod throttle;
pub mod validate;
pub mod yaml;
