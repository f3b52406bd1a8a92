//! What the provisioning capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use axum::extract::FromRef;

/// The parts of the application state this capability uses.
#[derive(Clone)]
pub struct ProvisioningState {
    pub store: crate::store::Store,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    pub config: std::sync::Arc<crate::config::Config>,
    pub catalog: std::sync::Arc<crate::catalog::Catalog>,
}

impl<S> FromRef<S> for ProvisioningState
where
    crate::store::Store: FromRef<S>,
    std::sync::Arc<dyn crate::clock::Clock>: FromRef<S>,
    std::sync::Arc<crate::config::Config>: FromRef<S>,
    std::sync::Arc<crate::catalog::Catalog>: FromRef<S>,
{
    fn from_ref(state: &S) -> Self {
        ProvisioningState {
            store: <crate::store::Store>::from_ref(state),
            clock: <std::sync::Arc<dyn crate::clock::Clock>>::from_ref(state),
            config: <std::sync::Arc<crate::config::Config>>::from_ref(state),
            catalog: <std::sync::Arc<crate::catalog::Catalog>>::from_ref(state),
        }
    }
}
