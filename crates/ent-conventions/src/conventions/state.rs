//! What the conventions capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use axum::extract::FromRef;

/// The parts of the application state this capability uses.
#[derive(Clone)]
pub struct ConventionsState {
    pub store: ent_kernel::store::Store,
    pub clock: std::sync::Arc<dyn ent_kernel::clock::Clock>,
    pub models: std::sync::Arc<Vec<crate::conventions::model::ConventionModel>>,
}

impl<S> FromRef<S> for ConventionsState
where
    ent_kernel::store::Store: FromRef<S>,
    std::sync::Arc<dyn ent_kernel::clock::Clock>: FromRef<S>,
    std::sync::Arc<Vec<crate::conventions::model::ConventionModel>>: FromRef<S>,
{
    fn from_ref(state: &S) -> Self {
        ConventionsState {
            store: <ent_kernel::store::Store>::from_ref(state),
            clock: <std::sync::Arc<dyn ent_kernel::clock::Clock>>::from_ref(state),
            models: <std::sync::Arc<Vec<crate::conventions::model::ConventionModel>>>::from_ref(state),
        }
    }
}
