//! Who reads which records of the log. A scoped reader (auditeur, DPO) reads the records about
//! the organisations of its scope; for most target kinds the entity itself is read more
//! narrowly than that (a controller's breach log: its own DPO and controller only; a ticket: the
//! support staff who handle it; a convention: its parties), and their records then follow the
//! entity's own rule too, in SQL before paging ([`KindReaders`]). The rule belongs to the
//! capability that owns the kinds; the composition root (`ent-server`) hands it to the audit
//! ([`KindRules`]), which depends on no capability above it.

use crate::identity::readers::readable_accounts;
use crate::identity::Actor;
use ent_kernel::store::Condition;
use std::sync::Arc;

/// The rule of the capability owning some target kinds: the audit records of those kinds (and
/// of those actions, for a fact recorded about an entity of another kind) are read only by who
/// may read what they are about through its own routes (within its scope of the log as well).
pub trait KindReaders: Send + Sync {
    /// The target kinds this rule decides (`rgpd_breach`, …).
    fn kinds(&self) -> &'static [&'static str];
    /// The actions this rule decides whatever their target kind (`support.contracts.set`,
    /// recorded about an organisation); none by default.
    fn actions(&self) -> &'static [&'static str] {
        &[]
    }
    /// The records of these kinds `actor` reads, a condition over `audit_log` rows ([`about_orgs`]
    /// for a rule over their organisation, or a correlated sub-select on the entity, its
    /// `target_id`); `None`: every one (an administrator).
    fn readable(&self, actor: &Actor) -> Option<Condition>;
}

/// The records about the organisations `orgs` (a condition over `orgs`) selects.
pub fn about_orgs(orgs: Condition) -> Condition {
    let mut cond = Condition::default();
    cond.and_wrapped("audit_log.scope_org_id IN (SELECT id FROM orgs WHERE ", orgs, ")");
    cond
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
        let narrower = self.0.iter().map(|rule| Narrower {
            kinds: rule.kinds(),
            actions: rule.actions(),
            readable: rule.readable(actor),
        });
        let accounts = readable_accounts(actor).unwrap_or_default();
        Some(Reader { orgs, narrower: narrower.collect(), accounts })
    }
}

/// One rule's part of a [`Reader`].
struct Narrower {
    kinds: &'static [&'static str],
    actions: &'static [&'static str],
    readable: Option<Condition>,
}

impl Narrower {
    /// The records this rule does not decide: of another kind and another action.
    fn other_records(&self) -> Condition {
        let mut other = Condition::default();
        for (column, values) in [("target_kind", self.kinds), ("action", self.actions)] {
            if !values.is_empty() {
                other.push(&format!("{column} NOT IN ({})", vec!["?"; values.len()].join(", ")), values);
            }
        }
        other
    }
}

/// What a scoped reader sees of the log: the records about the organisations of its scope,
/// those a [`KindReaders`] rule decides only where the rule lets it read them; and in them,
/// the address of the accounts it reads alone ([`super::people`]).
pub struct Reader {
    orgs: Condition,
    narrower: Vec<Narrower>,
    /// The accounts (rows `u` of `users`) whose address it reads ([`readable_accounts`]).
    pub(super) accounts: Condition,
}

impl Reader {
    /// The condition over `audit_log` rows.
    pub(super) fn condition(&self) -> Condition {
        let mut cond = about_orgs(self.orgs.clone());
        for rule in &self.narrower {
            let Some(readable) = rule.readable.clone() else { continue };
            cond.and(Condition::any(vec![rule.other_records(), readable]));
        }
        cond
    }
}
