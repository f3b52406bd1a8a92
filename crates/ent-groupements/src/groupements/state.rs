//! What the groupements capability's handlers and functions need from the application,
//! extracted from any router state that holds these parts.

use super::Ctx;
use ent_conventions::conventions::model::ConventionModel;
use ent_kernel::capability_state;
use ent_kernel::clock::Clock;
use ent_kernel::store::Store;
use ent_platform::catalog::Catalog;
use ent_platform::identity::Actor;
use std::sync::Arc;

capability_state! {
    /// The parts of the application state this capability uses.
    pub struct GroupementsState {
        pub store: Store, pub clock: Arc<dyn Clock>, pub models: Arc<Vec<ConventionModel>>, pub catalog: Arc<Catalog>,
        pub support: Arc<dyn super::SupportCommitments>,
    }
}

impl GroupementsState {
    /// What the groupements' functions need to act for `actor`, now.
    pub fn ctx<'a>(&'a self, actor: &'a Actor) -> Ctx<'a> {
        Ctx {
            store: &self.store,
            catalog: &self.catalog,
            support: &*self.support,
            models: &self.models,
            actor,
            now: self.clock.now(),
        }
    }
}
