//! Kernel types that belong to no single capability.

pub mod roles;
