//! Who may change a groupement or an application, checked alike on every way in: the API's
//! routes and the console's forms (through [`super::routes`]), `entctl groupements … --as`,
//! and, as a backstop, every domain function that changes a groupement or an application
//! ([`require_coordinates`], [`require_own`], [`require_applicant`]): no caller skips them.
//! Each answers as the API does, in its order: the role of the action (403, as the API's
//! authentication layer), then what the call names (404; an application out of the caller's
//! scope in the same words as one that does not exist), then the right on it (403).

use super::membership::{self, Application};
use super::{is_coordinator, must_get, Ctx, Groupement};
use ent_kernel::error::Problem;
use ent_kernel::store::Store;
use ent_platform::identity::authz::{self, forbidden, GROUPEMENTS_APPLY};
use ent_platform::identity::{Actor, Caller};
use ent_platform::registry::{get_org, missing_org, Org};

/// The groupement `id` (id or reference) for a caller whose role allows its action: 403 for
/// any other role (before the groupement is looked up), 404 when it does not exist.
pub async fn named(store: &Store, caller: &Caller, id: &str) -> Result<Groupement, Problem> {
    authz::require_role(&caller.actor, caller.action)?;
    must_get(store, id).await
}

/// The groupement `id` its coordinator acts on ([`named`], then [`require_coordinator`]).
pub async fn coordinated(store: &Store, caller: &Caller, id: &str) -> Result<Groupement, Problem> {
    let g = named(store, caller, id).await?;
    require_coordinator(caller, &g)?;
    Ok(g)
}

/// The coordinator's rights on `g`, or 403 (writes: every reader sees the groupement) / 404 (reads).
pub fn require_coordinator(caller: &Caller, g: &Groupement) -> Result<(), Problem> {
    match require_coordinates(&caller.actor, g) {
        Err(_) if !caller.action.write => Err(super::not_found(&g.id)),
        checked => checked,
    }
}

/// Whether `actor` coordinates `g` ([`is_coordinator`]), else 403: the backstop of the domain
/// functions the coordinator's acts run (decisions, status, award, documents, edits).
pub fn require_coordinates(actor: &Actor, g: &Groupement) -> Result<(), Problem> {
    if is_coordinator(actor, g) {
        return Ok(());
    }
    Err(forbidden(format!("seul le coordonnateur ({}) gère le groupement {}", g.coordinator.name, g.reference)))
}

/// The application `application` of `g`, its applicant in the caller's scope (404 otherwise, as
/// an application that does not exist) and one the caller speaks for
/// ([`membership::require_speaks_for`], 403 otherwise).
pub async fn own_application(
    store: &Store,
    caller: &Caller,
    g: &Groupement,
    application: &str,
) -> Result<Application, Problem> {
    let app = membership::get(store, &g.id, application).await?;
    speaks_for_application(store, caller, &app).await?;
    Ok(app)
}

/// [`own_application`]'s checks on `app`.
async fn speaks_for_application(store: &Store, caller: &Caller, app: &Application) -> Result<(), Problem> {
    let missing = || Problem::not_found(format!("aucune candidature « {} »", app.id));
    let applicant = get_org(store, &app.applicant.id).await?.ok_or_else(missing)?;
    speaks_for(store, caller, &applicant, missing).await
}

/// `caller` acts in the name of `applicant`: in its scope (else `missing`), and speaking for it
/// ([`membership::require_speaks_for`], 403).
async fn speaks_for(
    store: &Store,
    caller: &Caller,
    applicant: &Org,
    missing: impl FnOnce() -> Problem,
) -> Result<(), Problem> {
    caller.require_or(store, applicant, missing).await?;
    membership::require_speaks_for(store, caller, applicant).await
}

/// The actor of `ctx` applying, as the API's applications routes check it.
fn applying(ctx: &Ctx<'_>) -> Caller {
    Caller { actor: ctx.actor.clone(), action: &GROUPEMENTS_APPLY }
}

/// The backstop of the domain functions an applicant's acts run on its application (edit,
/// withdrawal): [`own_application`]'s checks, for the actor of `ctx`.
pub async fn require_own(ctx: &Ctx<'_>, app: &Application) -> Result<(), Problem> {
    speaks_for_application(ctx.store, &applying(ctx), app).await
}

/// The backstop of filing an application for `applicant`: the actor of `ctx` speaks for it
/// (out of its scope, the 422 of an applicant that names nothing; in it, 403).
pub async fn require_applicant(ctx: &Ctx<'_>, applicant: &Org) -> Result<(), Problem> {
    let missing = || Problem::invalid_field("applicant", missing_org(&applicant.id).detail);
    speaks_for(ctx.store, &applying(ctx), applicant, missing).await
}
