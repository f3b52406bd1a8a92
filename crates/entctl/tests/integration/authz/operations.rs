//! Authorisation cases: The catalog, jobs and the mail outbox.

use super::*;

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/catalog/services", EVERYONE, Target::None),
    ("GET", "/api/v1/catalog/services/{code}", EVERYONE, Target::None),
    ("GET", "/api/v1/catalog/bouquets", EVERYONE, Target::None),
    ("GET", "/api/v1/catalog/bouquets/{id}", EVERYONE, Target::None),
    ("GET", "/api/v1/jobs", &[Admin], Target::None),
    ("POST", "/api/v1/jobs/{name}/run", &[Admin], Target::None),
    ("GET", "/api/v1/outbox", &[Admin], Target::None),
    ("POST", "/api/v1/outbox/{id}/retry", &[Admin], Target::None),
];
