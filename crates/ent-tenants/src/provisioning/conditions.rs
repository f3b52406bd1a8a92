//! The status conditions of a tenant as an `EntTenant` custom resource shows them
//! (`Ready`, `Progressing`, `Degraded`, Kubernetes API conventions), derived from its
//! provisioning state; `entctl operator` adds `GovernanceBlocked` and writes them with
//! the status subresource; pure.

use crate::tenants::ProvisioningState;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A Kubernetes `Time` (whole seconds, as the API server keeps it).
pub fn time(at: chrono::DateTime<chrono::Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(at.timestamp()).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
}

/// (Ready, Progressing, Degraded) as booleans, the reason (CamelCase) and the message (French).
fn judged(state: &ProvisioningState) -> ([bool; 3], &'static str, String) {
    let detail = state.observed_detail.clone().unwrap_or_default();
    if let Some(error) = &state.error {
        return ([false, false, true], "ApplyFailed", error.clone());
    }
    match state.observed.as_deref() {
        None => ([false, true, false], "Pending", "pas encore réconcilié".into()),
        Some("progressing") => ([false, true, false], "RollingOut", detail),
        Some("degraded") => ([false, false, true], "RolloutFailed", detail),
        Some("available") => ([true, false, false], "Available", detail),
        Some("written") => ([true, false, false], "ManifestsWritten", detail),
        Some("stopped") => ([true, false, false], "Suspended", detail),
        Some("data_only") => ([true, false, false], "WorkloadsRemoved", detail),
        Some("removing") => ([false, true, false], "Removing", detail),
        Some(_) => ([true, false, false], "Removed", detail),
    }
}

/// The conditions for the resource at `generation`; a condition whose status did not change
/// keeps its `lastTransitionTime` from `previous`.
pub fn conditions(
    state: &ProvisioningState,
    generation: i64,
    previous: &[Condition],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Condition> {
    let (values, reason, message) = judged(state);
    ["Ready", "Progressing", "Degraded"]
        .into_iter()
        .zip(values)
        .map(|(kind, value)| condition(kind, value, reason, message.clone(), generation, previous, now))
        .collect()
}

/// One condition of `kind`, true or not; it keeps its `lastTransitionTime` from `previous`
/// while its status holds.
pub fn condition(
    kind: &str,
    value: bool,
    reason: &str,
    message: String,
    generation: i64,
    previous: &[Condition],
    now: chrono::DateTime<chrono::Utc>,
) -> Condition {
    let status = if value { "True" } else { "False" }.to_string();
    let before = previous.iter().find(|c| c.type_ == kind && c.status == status);
    Condition {
        type_: kind.into(),
        last_transition_time: before.map_or(time(now), |c| c.last_transition_time.clone()),
        status,
        reason: reason.into(),
        message,
        observed_generation: Some(generation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(observed: Option<&str>, error: Option<&str>) -> ProvisioningState {
        ProvisioningState {
            observed: observed.map(str::to_string),
            observed_detail: Some("3/8 déploiements disponibles".into()),
            error: error.map(str::to_string),
            ..ProvisioningState::default()
        }
    }

    fn statuses(conditions: &[Condition]) -> Vec<(&str, &str, &str)> {
        conditions.iter().map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str())).collect()
    }

    fn at(seconds: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn each_state_gives_one_true_condition_with_its_reason_and_the_generation() {
        let cases = [
            (state(None, None), "Progressing", "Pending"),
            (state(Some("progressing"), None), "Progressing", "RollingOut"),
            (state(Some("available"), None), "Ready", "Available"),
            (state(Some("degraded"), None), "Degraded", "RolloutFailed"),
            (state(Some("available"), Some("PATCH Ingress : 422 Invalid")), "Degraded", "ApplyFailed"),
        ];
        for (state, true_one, reason) in cases {
            let conditions = conditions(&state, 7, &[], at(0));
            let true_ones: Vec<&str> =
                conditions.iter().filter(|c| c.status == "True").map(|c| c.type_.as_str()).collect();
            assert_eq!(true_ones, [true_one], "{state:?}");
            assert!(conditions.iter().all(|c| c.reason == reason && c.observed_generation == Some(7)));
        }
        let failed = conditions(&state(Some("available"), Some("PATCH Ingress : 422 Invalid")), 7, &[], at(0));
        assert_eq!(failed[2].message, "PATCH Ingress : 422 Invalid");
        assert_eq!(statuses(&failed)[0], ("Ready", "False", "ApplyFailed"));
    }

    #[test]
    fn the_transition_time_moves_only_when_a_conditions_status_changes() {
        let rolling = conditions(&state(Some("progressing"), None), 1, &[], at(0));
        let still = conditions(&state(Some("progressing"), None), 2, &rolling, at(60));
        assert!(still.iter().all(|c| c.last_transition_time == time(at(0))), "{still:?}");
        let ready = conditions(&state(Some("available"), None), 2, &still, at(120));
        let moved = |kind: &str| ready.iter().find(|c| c.type_ == kind).unwrap().last_transition_time.clone();
        assert_eq!((moved("Ready"), moved("Progressing")), (time(at(120)), time(at(120))));
        assert_eq!(moved("Degraded"), time(at(0)), "Degraded stayed False");
    }
}
