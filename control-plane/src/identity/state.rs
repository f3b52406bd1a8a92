//! What the identity capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use axum::extract::FromRef;

/// The parts of the application state this capability uses.
#[derive(Clone)]
pub struct IdentityState {
    pub store: crate::store::Store,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

impl<S> FromRef<S> for IdentityState
where
    crate::store::Store: FromRef<S>,
    std::sync::Arc<dyn crate::clock::Clock>: FromRef<S>,
{
    fn from_ref(state: &S) -> Self {
        IdentityState {
            store: <crate::store::Store>::from_ref(state),
            clock: <std::sync::Arc<dyn crate::clock::Clock>>::from_ref(state),
        }
    }
}
