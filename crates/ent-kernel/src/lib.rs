//! ent-kernel: see ARCHITECTURE.md for what it holds and what it may use.

pub mod clock;
pub mod config;
pub mod error;
pub mod files;
pub mod http;
pub mod kernel;
pub mod naming;
pub mod release;
pub mod store;
pub mod text;
pub mod throttle;
pub mod validate;
pub mod yaml;

/// `#[skip_serializing_none]` on an API struct (above its `derive`): every `Option` field
/// is absent from the JSON when `None`, said once for the struct.
pub use serde_with::skip_serializing_none;
