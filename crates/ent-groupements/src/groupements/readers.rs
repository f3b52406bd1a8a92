//! Who reads a groupement's audit records (`audit::KindReaders`): who reads what they are
//! about through the groupement's routes. A record about an applicant (its application, its
//! edits, the coordinator's decision on it) by the coordinator and the readers whose scope holds
//! the applicant (`routes::visible_applications`); a record about the coordinator (the terms,
//! transitions, documents, award and its amounts) by the coordinator and the members
//! (`routes::coordinator_or_member`). An `auditeur` or a DPO, who read no groupement, read none.

use super::membership;
use super::{is_coordinator, Groupement};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::{Condition, Store};
use ent_platform::audit::KindReaders;
use ent_platform::identity::authz::{in_org_scope, org_scope_condition, GROUPEMENTS_READ};
use ent_platform::identity::Actor;
use ent_platform::registry::{get_org, Org};
use std::sync::Arc;

/// The audit target kind of a groupement (its records name the groupement by its id).
pub const AUDIT_KIND: &str = "groupement";

/// The rule, as the audit capability takes it.
pub struct AuditReaders;

impl AuditReaders {
    pub fn all() -> Vec<Arc<dyn KindReaders>> {
        vec![Arc::new(AuditReaders)]
    }
}

/// The organisations `actor` holds a [`GROUPEMENTS_READ`] role at (`routes::caller_orgs` on a read).
pub fn read_orgs(actor: &Actor) -> Vec<&Org> {
    actor.bindings.iter().filter(|b| GROUPEMENTS_READ.roles.contains(&b.role)).filter_map(|b| b.org.as_ref()).collect()
}

impl KindReaders for AuditReaders {
    fn kinds(&self) -> &'static [&'static str] {
        &[AUDIT_KIND]
    }

    fn readable(&self, actor: &Actor) -> Option<Condition> {
        if actor.is_admin() {
            return None;
        }
        let orgs = read_orgs(actor);
        let ids = |orgs: Vec<&Org>| orgs.into_iter().map(|o| o.id.clone()).collect::<Vec<_>>();
        let coordinators =
            actor.bindings.iter().filter(|b| b.role == Role::Coordinateur).filter_map(|b| b.org.as_ref());
        let coordinator = Condition::any(Condition::in_chunks("g.coordinator_org_id", ids(coordinators.collect())));
        let mut applicant = Condition::default();
        applicant.push("audit_log.scope_org_id <> g.coordinator_org_id", &[]);
        let scopes = Condition::any(orgs.iter().map(|o| org_scope_condition(o)).collect());
        applicant.and_wrapped("audit_log.scope_org_id IN (SELECT id FROM orgs WHERE ", scopes, ")");
        let mut member = Condition::default();
        member.push("audit_log.scope_org_id = g.coordinator_org_id", &[]);
        let members = Condition::any(Condition::in_chunks("m.org_id", ids(orgs)));
        member.and_wrapped(
            "EXISTS (SELECT 1 FROM groupement_members m WHERE m.groupement_id = g.id AND m.status = 'accepted' AND ",
            members,
            ")",
        );
        // Correlated on the groupement's primary key: found by index, never a scan.
        let mut cond = Condition::default();
        cond.and_wrapped(
            "EXISTS (SELECT 1 FROM groupements g WHERE g.id = audit_log.target_id AND ",
            Condition::any(vec![coordinator, applicant, member]),
            ")",
        );
        Some(cond)
    }
}

/// Whether `actor` reads a record of `g` about `scope_org_id`, decided as the routes decide
/// (the coordinator; an application in the scope of a reader's organisation; a member): what
/// [`AuditReaders`] says in SQL.
pub async fn reads_record(store: &Store, actor: &Actor, g: &Groupement, scope_org_id: &str) -> Result<bool, Problem> {
    if is_coordinator(actor, g) {
        return Ok(true);
    }
    if scope_org_id == g.coordinator.id {
        let members = membership::members(store, &g.id).await?;
        return Ok(read_orgs(actor).iter().any(|o| members.iter().any(|m| m.applicant.id == o.id)));
    }
    let Some(applicant) = get_org(store, scope_org_id).await? else { return Ok(false) };
    for org in read_orgs(actor) {
        if in_org_scope(store, org, &applicant).await? {
            return Ok(true);
        }
    }
    Ok(false)
}
