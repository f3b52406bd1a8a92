//! What the provisioning capability's handlers and functions need from the application,
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
    pub struct ProvisioningState {
        pub store: Store, pub clock: Arc<dyn Clock>, pub config: Arc<Config>, pub catalog: Arc<Catalog>,
        pub models: Arc<Vec<ConventionModel>>,
        pub reconciler: Arc<super::runtime::Reconciler>,
    }
}
