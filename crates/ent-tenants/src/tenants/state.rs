//! What the tenants capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use ent_conventions::conventions::model::ConventionModel;
use ent_kernel::capability_state;
use ent_kernel::clock::Clock;
use ent_kernel::config::Config;
use ent_kernel::store::Store;
use ent_platform::catalog::Catalog;
use std::sync::Arc;

capability_state! {
    /// The parts of the application state this capability uses.
    pub struct TenantsState {
        pub store: Store, pub clock: Arc<dyn Clock>, pub models: Arc<Vec<ConventionModel>>, pub catalog: Arc<Catalog>,
        pub config: Arc<Config>, pub reconciler: Arc<crate::provisioning::runtime::Reconciler>,
    }
}

impl TenantsState {
    /// What reconciling a tenant needs, from this context.
    pub fn provisioning(&self) -> crate::provisioning::ProvisioningState {
        crate::provisioning::ProvisioningState {
            store: self.store.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            catalog: self.catalog.clone(),
            models: self.models.clone(),
            reconciler: self.reconciler.clone(),
        }
    }
}
