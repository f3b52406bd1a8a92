//! What the notify capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use axum::extract::FromRef;

/// The parts of the application state this capability uses.
#[derive(Clone)]
pub struct NotifyState {
    pub store: ent_kernel::store::Store,
    pub clock: std::sync::Arc<dyn ent_kernel::clock::Clock>,
    pub config: std::sync::Arc<ent_kernel::config::Config>,
}

impl<S> FromRef<S> for NotifyState
where
    ent_kernel::store::Store: FromRef<S>,
    std::sync::Arc<dyn ent_kernel::clock::Clock>: FromRef<S>,
    std::sync::Arc<ent_kernel::config::Config>: FromRef<S>,
{
    fn from_ref(state: &S) -> Self {
        NotifyState {
            store: <ent_kernel::store::Store>::from_ref(state),
            clock: <std::sync::Arc<dyn ent_kernel::clock::Clock>>::from_ref(state),
            config: <std::sync::Arc<ent_kernel::config::Config>>::from_ref(state),
        }
    }
}
