//! What the catalog capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use ent_kernel::capability_state;
use std::sync::Arc;

capability_state! {
    /// The parts of the application state this capability uses.
    pub struct CatalogState { pub catalog: Arc<crate::catalog::Catalog> }
}
