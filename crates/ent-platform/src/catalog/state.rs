//! What the catalog capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use axum::extract::FromRef;

/// The parts of the application state this capability uses.
#[derive(Clone)]
pub struct CatalogState {
    pub catalog: std::sync::Arc<crate::catalog::Catalog>,
}

impl<S> FromRef<S> for CatalogState
where
    std::sync::Arc<crate::catalog::Catalog>: FromRef<S>,
{
    fn from_ref(state: &S) -> Self {
        CatalogState { catalog: <std::sync::Arc<crate::catalog::Catalog>>::from_ref(state) }
    }
}
