//! ent-testkit: see ARCHITECTURE.md for what it holds and what it may use.

pub mod award;
pub mod conventions;
pub mod synthetic;
