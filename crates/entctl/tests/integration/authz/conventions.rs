//! Authorisation cases: Conventions and their models.

use super::*;

/// The roles that work on conventions (signatories, writers, DPO, auditeur); not users nor support staff.
pub(super) const CONVENTION_READERS: &[Role] =
    &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2, Dpo, Auditeur];
pub(super) const CONVENTION_WRITERS: &[Role] = &[Admin, Dan, Collectivite, ChefEtablissement, Coordinateur];
pub(super) const CONVENTION_SIGNERS: &[Role] = &[Dan, Collectivite, ChefEtablissement, Coordinateur, SupportN2];

/// Who may call each route (the rest get 403), and what kind of target it acts on.
pub(super) const CASES: &[Case] = &[
    ("GET", "/api/v1/convention-models", EVERYONE, Target::None),
    ("GET", "/api/v1/conventions", CONVENTION_READERS, Target::None),
    ("POST", "/api/v1/conventions", CONVENTION_WRITERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}", CONVENTION_READERS, Target::Convention),
    ("PATCH", "/api/v1/conventions/{id}", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/submit", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/visa", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/sign", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/refuse", CONVENTION_SIGNERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/terminate", CONVENTION_WRITERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/amend", CONVENTION_WRITERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}/document", CONVENTION_READERS, Target::Convention),
    ("GET", "/api/v1/conventions/{id}/signed-document", CONVENTION_READERS, Target::Convention),
    ("POST", "/api/v1/conventions/{id}/signed-copies", CONVENTION_WRITERS, Target::Convention),
];

/// Roles bound to an organisation that is party to the test conventions.
pub(super) fn is_party(role: Role) -> bool {
    !matches!(role, SupportN3 | Coordinateur)
}

pub(super) fn json_of_new(new: &entcp::conventions::workflow::NewConvention) -> Value {
    let parties: serde_json::Map<String, Value> = new
        .parties
        .iter()
        .map(|(k, v)| match v {
            entcp::conventions::workflow::PartyInput::One(o) => (k.clone(), json!(o)),
            entcp::conventions::workflow::PartyInput::Many(os) => (k.clone(), json!(os)),
            entcp::conventions::workflow::PartyInput::Detailed(d) => (k.clone(), json!(d)),
        })
        .collect();
    json!({ "model": new.model, "parties": parties, "start_date": new.start_date, "backdate_reason": new.backdate_reason })
}

/// What a party member gets from the convention routes, the workflow's own rules included.
pub(super) fn convention_success(method: &str, path: &str, role: Role) -> u16 {
    let signer = matches!(role, Dan | Collectivite | ChefEtablissement);
    match (method, path) {
        ("POST", "/api/v1/conventions") | ("POST", "/api/v1/conventions/{id}/amend") => 201,
        // The premier-degré model asks no visa.
        ("POST", "/api/v1/conventions/{id}/visa") => 409,
        ("POST", "/api/v1/conventions/{id}/sign") | ("POST", "/api/v1/conventions/{id}/refuse") if !signer => 403,
        _ => 200,
    }
}
