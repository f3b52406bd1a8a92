//! Who reads which records of the log. A scoped reader (auditeur, DPO) reads the records about
//! the organisations of its scope; for some target kinds the entity's own register is read more
//! narrowly than that (a controller's breach log: its own DPO and controller only), and their
//! records then follow the register's rule too, in SQL before paging ([`KindReaders`]). The
//! rule belongs to the capability that owns the kinds; the composition root (`ent-server`)
//! hands it to the audit ([`KindRules`]), which depends on no capability above it.

use crate::identity::Actor;
use ent_kernel::store::Condition;
use std::sync::Arc;

/// The rule of the capability owning some target kinds: the audit records of those kinds are
/// read only about the organisations whose register of them the reader may read (within its
/// scope of the log as well).
pub trait KindReaders: Send + Sync {
    /// The target kinds this rule decides (`rgpd_breach`, …).
    fn kinds(&self) -> &'static [&'static str];
    /// The organisations (a condition over `orgs`) whose records of these kinds `actor` reads;
    /// `None`: every one (an administrator).
    fn readable(&self, actor: &Actor) -> Option<Condition>;
}

/// Every [`KindReaders`] rule of the application: the audit capability's part of the state.
#[derive(Clone, Default)]
pub struct KindRules(Arc<Vec<Arc<dyn KindReaders>>>);

impl KindRules {
    pub fn new(rules: Vec<Arc<dyn KindReaders>>) -> KindRules {
        KindRules(Arc::new(rules))
    }

    /// What `actor`, whose scope of the log is `orgs` (a condition over `orgs`; `None`: the
    /// whole platform), reads of the log.
    pub fn reader(&self, actor: &Actor, orgs: Option<Condition>) -> Option<Reader> {
        let orgs = orgs?;
        let narrower = self.0.iter().map(|rule| (rule.kinds(), rule.readable(actor))).collect();
        Some(Reader { orgs, narrower })
    }
}

/// What a scoped reader sees of the log: the records about the organisations of its scope,
/// those of a kind a [`KindReaders`] rule decides only about the organisations the rule gives.
pub struct Reader {
    orgs: Condition,
    narrower: Vec<(&'static [&'static str], Option<Condition>)>,
}

impl Reader {
    /// The condition over `audit_log` rows.
    pub(super) fn condition(self) -> Condition {
        let mut cond = Condition::default();
        cond.and_wrapped("scope_org_id IN (SELECT id FROM orgs WHERE ", self.orgs, ")");
        for (kinds, readable) in self.narrower {
            let Some(readable) = readable else { continue };
            let mut other_kind = Condition::default();
            other_kind.push(&format!("target_kind NOT IN ({})", vec!["?"; kinds.len()].join(", ")), kinds);
            let mut readable_org = Condition::default();
            readable_org.and_wrapped("scope_org_id IN (SELECT id FROM orgs WHERE ", readable, ")");
            cond.and(Condition::any(vec![other_kind, readable_org]));
        }
        cond
    }
}
