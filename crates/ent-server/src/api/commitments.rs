//! What a groupement asks of the support desk: the N3 commitments of a support policy,
//! written into the CCTP when the coordinator gives none. Groupements declare the need
//! (`groupements::SupportCommitments`); the composition root provides it from the desk's
//! policies, so that neither capability crate depends on the other.

use ent_groupements::groupements::{SupportCommitments, SupportLevel};
use ent_kernel::error::Problem;
use ent_support::support::policy::{Policies, DEFAULT_POLICY};
use ent_support::support::{Level, Priority};
use std::sync::Arc;

/// The support desk's policies seen by the groupements.
pub struct SupportDesk(pub Arc<Policies>);

impl SupportCommitments for SupportDesk {
    /// The N3 commitments of a support-desk policy (`standard` when `name` is absent): the
    /// vendor is held to what the desk measures. Business durations are rounded up to whole hours.
    fn n3_commitments(&self, name: Option<&str>) -> Result<Vec<SupportLevel>, Problem> {
        let policies = &self.0;
        let name = name.unwrap_or(DEFAULT_POLICY);
        if !policies.exists(name) {
            let known: Vec<&str> = policies.spec.policies.keys().map(String::as_str).collect();
            return Err(Problem::invalid_field(
                "support_policy",
                format!("politique de support « {name} » inconnue (connues : {})", known.join(", ")),
            ));
        }
        let hours = |seconds: i64| u32::try_from((seconds + 3599) / 3600).unwrap_or(u32::MAX);
        Ok(Priority::ALL
            .into_iter()
            .map(|p| {
                let targets = policies.targets(name, Level::N3, p);
                SupportLevel {
                    priority: p.as_str().into(),
                    label: label(p).into(),
                    first_response_hours: hours(targets.first_response),
                    resolution_hours: hours(targets.resolution),
                }
            })
            .collect())
    }
}

/// How the CCTP names a priority.
fn label(priority: Priority) -> &'static str {
    match priority {
        Priority::P1 => "bloquant : service indisponible pour tous",
        Priority::P2 => "majeur : fonction essentielle dégradée",
        Priority::P3 => "mineur : gêne avec contournement",
        Priority::P4 => "demande d'information ou d'évolution",
    }
}
