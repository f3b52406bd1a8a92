//! Authorisation cases of the console's groupement screens (coordinator, members, library).

use super::console::Page;
use super::*;

pub(super) const PAGES: &[Page] = &[];

/// The placeholders of the pages above and their values in and out of scope.
pub(super) async fn targets(_world: &World) -> Vec<(&'static str, [String; 2])> {
    Vec::new()
}

/// What a page above answers a role it allows; `None` for the general rule of `console.rs`.
pub(super) async fn expected(_world: &World, _method: &str, _path: &str, _role: Role, _side: Side) -> Option<u16> {
    None
}
