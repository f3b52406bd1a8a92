//! What the audit capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use super::KindRules;
use ent_kernel::capability_state;
use ent_kernel::store::Store;

capability_state! {
    /// The parts of the application state this capability uses.
    pub struct AuditState { pub store: Store, pub rules: KindRules }
}
