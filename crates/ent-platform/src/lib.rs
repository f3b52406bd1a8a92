//! ent-platform: see ARCHITECTURE.md for what it holds and what it may use.

pub mod audit;
pub mod catalog;
pub mod contracts;
pub mod identity;
pub mod registry;
