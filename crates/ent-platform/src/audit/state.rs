//! What the audit capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use axum::extract::FromRef;

/// The parts of the application state this capability uses.
#[derive(Clone)]
pub struct AuditState {
    pub store: ent_kernel::store::Store,
}

impl<S> FromRef<S> for AuditState
where
    ent_kernel::store::Store: FromRef<S>,
{
    fn from_ref(state: &S) -> Self {
        AuditState { store: <ent_kernel::store::Store>::from_ref(state) }
    }
}
