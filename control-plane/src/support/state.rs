//! What the support capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use axum::extract::FromRef;

/// The parts of the application state this capability uses.
#[derive(Clone)]
pub struct SupportState {
    pub store: crate::store::Store,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    pub models: std::sync::Arc<Vec<crate::conventions::model::ConventionModel>>,
    pub catalog: std::sync::Arc<crate::catalog::Catalog>,
    pub support: std::sync::Arc<crate::support::policy::Policies>,
}

impl<S> FromRef<S> for SupportState
where
    crate::store::Store: FromRef<S>,
    std::sync::Arc<dyn crate::clock::Clock>: FromRef<S>,
    std::sync::Arc<Vec<crate::conventions::model::ConventionModel>>: FromRef<S>,
    std::sync::Arc<crate::catalog::Catalog>: FromRef<S>,
    std::sync::Arc<crate::support::policy::Policies>: FromRef<S>,
{
    fn from_ref(state: &S) -> Self {
        SupportState {
            store: <crate::store::Store>::from_ref(state),
            clock: <std::sync::Arc<dyn crate::clock::Clock>>::from_ref(state),
            models: <std::sync::Arc<Vec<crate::conventions::model::ConventionModel>>>::from_ref(state),
            catalog: <std::sync::Arc<crate::catalog::Catalog>>::from_ref(state),
            support: <std::sync::Arc<crate::support::policy::Policies>>::from_ref(state),
        }
    }
}
