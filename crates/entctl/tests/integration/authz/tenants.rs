//! Authorisation cases: ENT tenants.

use super::*;

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/tenants", EVERYONE, Target::None),
    ("POST", "/api/v1/tenants", &[Admin, Dan, Collectivite], Target::Org),
    ("GET", "/api/v1/tenants/{slug}", EVERYONE, Target::Org),
    ("PUT", "/api/v1/tenants/{slug}", &[Admin, Dan, Collectivite], Target::Org),
    ("POST", "/api/v1/tenants/{slug}/transition", &[Admin, Dan], Target::Org),
    ("GET", "/api/v1/tenants/{slug}/events", EVERYONE, Target::Org),
    ("GET", "/api/v1/tenant-schema", EVERYONE, Target::None),
];
