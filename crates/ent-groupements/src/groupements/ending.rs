//! The end of a groupement (`ended`): by its coordinator ([`super::transition`], from `awarded`
//! or `running` — a résiliation before the term of the accord-cadre, art. L. 2195-3 du code de
//! la commande publique) or at the term of its accord-cadre ([`end_at_term`], the daily job
//! `groupements-handover`: once [`Award::last_day`] is past). Either way those it concerns are
//! told ([`notify`], the `ended` notice: [`recipients`]), and the tenants its
//! accord-cadre kept from later awards are handed over ([`super::handover`]).
//!
//! An ending at term is one write transaction per groupement: the row is locked and its status
//! read again inside it, so a second pass, another replica or an ending by the coordinator
//! meanwhile changes nothing (no second audit record, no second notice).

use super::award::funded_tenants_of;
use super::{membership, readers, Award, Groupement, Status};
use chrono::{DateTime, NaiveDate, Utc};
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::kernel::roles::Role;
use ent_kernel::store::{timestamp, Store, Tx};
use ent_kernel::validate::multiline;
use ent_ops::notify::Notice;
use ent_platform::audit::{self, Target};
use ent_platform::identity::authz::dpos_keeping;
use ent_platform::identity::authz::users_with_role;
use ent_platform::identity::Actor;
use ent_platform::registry::get_org;
use ent_platform::registry::queries::orgs_by_id_in;
use ent_tenants::tenants::notices::overseers;
use serde_json::json;

/// The groupements a pass ended at the term of their accord-cadre, and the failures (each named).
#[derive(Debug, Default)]
pub struct EndingPass {
    pub ended: Vec<String>,
    pub failed: Vec<String>,
}

impl EndingPass {
    /// What the job adds to its summary: nothing when nothing ended nor failed.
    pub fn outcome(&self) -> String {
        let mut out = String::new();
        if !self.ended.is_empty() {
            out.push_str(&format!(
                " ; {} groupement(s) terminé(s) au terme de leur accord-cadre : {}",
                self.ended.len(),
                self.ended.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            out.push_str(&format!(" ; {} fin(s) en échec : {}", self.failed.len(), self.failed.join(" ; ")));
        }
        out
    }
}

/// The longest reason of a résiliation.
const REASON_MAX: usize = 2000;

/// The reason of a résiliation: ending an accord-cadre before its term is a decision that states
/// its ground (for the general interest, a fault of the titulaire…: CCAG-TIC, chapitre 7), which
/// its members are told. Required then (422 on `reason`), checked as any text; `None` when the
/// groupement has no accord-cadre still running on `today` (none is asked, a given one is kept).
pub fn resiliation_reason(g: &Groupement, today: NaiveDate, given: Option<&str>) -> Result<Option<String>, Problem> {
    let given = given.map(str::trim).filter(|r| !r.is_empty());
    let running = g.award.as_ref().and_then(Award::last_day).is_some_and(|last| last >= today);
    let mut checks = Checks::default();
    match given {
        Some(reason) => {
            checks.text("reason", reason, REASON_MAX);
            checks.check("reason", multiline(reason));
        }
        None if running => checks.fail(
            "reason",
            "mettre fin à l'accord-cadre avant son terme est une résiliation : indiquez-en le motif (intérêt général, \
             faute du titulaire…), que ses membres recevront",
        ),
        None => {}
    }
    checks.finish()?;
    Ok(given.map(str::to_string))
}

/// Why `g` is ended on `today`, after « est terminé : »: its accord-cadre reached its term
/// (its last day before `today`), or its coordinator résilié it before (for `reason`, when given).
pub fn sentence(g: &Groupement, today: NaiveDate, reason: Option<&str>) -> String {
    let award = g.award.as_ref();
    let with = award.map(|a| format!(" avec {}", a.vendor.name)).unwrap_or_default();
    let day = |d: NaiveDate| french_date(&d.to_string());
    match award.and_then(Award::last_day) {
        Some(last) if last < today => format!("son accord-cadre{with} s'est achevé le {}, à son terme", day(last)),
        Some(last) => format!(
            "son coordonnateur, {}, a résilié le {} son accord-cadre{with}, qui devait courir jusqu'au {}{}",
            g.coordinator.name,
            day(today),
            day(last),
            reason.map(|r| format!(", pour le motif suivant : {r}")).unwrap_or_default()
        ),
        None => format!("son coordonnateur, {}, y a mis fin le {}", g.coordinator.name, day(today)),
    }
}

/// Queues the `ended` notice of `g` to [`recipients`] (its members read before `tx`), in `tx`.
pub async fn notify(
    tx: &mut Tx,
    store: &Store,
    g: &Groupement,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let to = recipients(tx, store, g).await?;
    let message = sentence(g, today_in_france(now), reason);
    let subject = json!({ "event": "ended", "reference": g.reference, "title": g.title, "message": message });
    Notice::new("groupement", to).unique_recipients().with(subject).page(super::page_of(g)).enqueue(tx, now).await?;
    Ok(())
}

/// Who the end of `g` concerns: the parties to its accord-cadre and those who answer for the ENT
/// it served. The coordinator's `coordinateur` users (who run it: at term, none of them acted);
/// each accepted member's [`member_people`]; the [`people_over`] an ENT the members fund
/// ([`funded_tenants_of`]). A person holding two of these roles is told once
/// ([`Notice::unique_recipients`]).
pub async fn recipients(tx: &mut Tx, store: &Store, g: &Groupement) -> Result<Vec<String>, Problem> {
    let mut to = users_with_role(tx, &g.coordinator.id, Role::Coordinateur.as_str()).await?;
    let mut members = Vec::new();
    let mut served = Vec::new();
    for m in membership::members(store, &g.id).await? {
        if let Some(org) = get_org(store, &m.applicant.id).await? {
            served.extend(funded_tenants_of(store, &org).await?.into_iter().map(|t| t.organisation.id));
        }
        members.push(m.applicant.id);
    }
    to.extend(member_people(tx, &members).await?);
    to.extend(people_over(tx, served).await?);
    Ok(to)
}

/// The people of the members `members` a change of their ENT's titulaire concerns: each one's
/// `collectivite` users (its representatives) and the DPOs who keep its register
/// ([`dpos_keeping`]: the titulaire processes its ENT's data under the accord-cadre, its Art. 28
/// contract recorded: its register names it). Told of the award, of a hand-over and of the end
/// ([`recipients`]).
pub async fn member_people(tx: &mut Tx, members: &[String]) -> Result<Vec<String>, Problem> {
    let orgs = orgs_by_id_in(tx, members.to_vec()).await?;
    let mut to = Vec::new();
    for member in members {
        to.extend(users_with_role(tx, member, Role::Collectivite.as_str()).await?);
        if let Some(org) = orgs.get(member) {
            to.extend(dpos_keeping(tx, org).await?);
        }
    }
    Ok(to)
}

/// The DANs and DPOs who oversee one of the organisations `served` (those an ENT concerned runs
/// for), as a tenant's notices tell them ([`overseers`]: the DANs by scope, the DPOs where they
/// keep the registers): the ENT's processor changes, or its accord-cadre ends. Told of the award,
/// of a hand-over and of the end ([`recipients`]).
pub async fn people_over(tx: &mut Tx, mut served: Vec<String>) -> Result<Vec<String>, Problem> {
    served.sort_unstable();
    served.dedup();
    let mut to = Vec::new();
    for org in orgs_by_id_in(tx, served).await?.values() {
        to.extend(overseers(tx, org).await?);
    }
    Ok(to)
}

/// Ends the groupements whose accord-cadre (awarded or running) is past its last day on
/// `now`'s day in France, each in its own transaction ([`end_one`]); one that fails is named and
/// the others go on.
pub async fn end_at_term(store: &Store, actor: &Actor, now: DateTime<Utc>) -> Result<EndingPass, Problem> {
    let today = today_in_france(now);
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM groupements WHERE status IN ('awarded', 'running') AND award IS NOT NULL ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut pass = EndingPass::default();
    for id in ids {
        let Some(g) = super::get(store, &id).await? else { continue };
        let Some(last) = g.award.as_ref().and_then(Award::last_day).filter(|last| *last < today) else { continue };
        match end_one(store, actor, &g, last, now).await {
            Ok(true) => pass.ended.push(format!("{} (échu le {})", g.reference, french_date(&last.to_string()))),
            Ok(false) => {}
            Err(p) => pass.failed.push(format!("groupement {} : {}", g.reference, p.detail)),
        }
    }
    Ok(pass)
}

/// Ends `g`, whose accord-cadre's last day was `last`: locks its row, reads its status again and,
/// still awarded or running, moves it to `ended` with its audit record and the members' notice,
/// in one transaction. False when it was no longer to end (another pass, a replica or its
/// coordinator ended it).
async fn end_one(
    store: &Store,
    actor: &Actor,
    g: &Groupement,
    last: NaiveDate,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let mut tx = store.begin_write().await?;
    let sql = format!("SELECT status FROM groupements WHERE id = $1{}", store.backend().for_update());
    let status: Option<String> = sqlx::query_scalar(&sql).bind(&g.id).fetch_optional(&mut *tx).await?;
    let from = status.as_deref().and_then(Status::parse).filter(|s| s.can_move_to(Status::Ended));
    let Some(from) = from else {
        tx.rollback().await?;
        return Ok(false);
    };
    sqlx::query("UPDATE groupements SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3")
        .bind(Status::Ended.as_str())
        .bind(timestamp(now))
        .bind(&g.id)
        .execute(&mut *tx)
        .await?;
    let target = Target::new(readers::AUDIT_KIND, &g.id, Some(&g.coordinator.id));
    let summary = json!({ "from": from.as_str(), "to": Status::Ended.as_str(), "term": last.to_string() });
    audit::record(&mut tx, store.backend(), actor, "groupements.transition", &target, summary, now).await?;
    notify(&mut tx, store, g, None, now).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_names_each_groupement_ended_and_says_nothing_otherwise() {
        assert_eq!(EndingPass::default().outcome(), "");
        let pass = EndingPass { ended: vec!["GC-2026-000001 (échu le 14 janvier 2030)".into()], failed: vec![] };
        assert_eq!(
            pass.outcome(),
            " ; 1 groupement(s) terminé(s) au terme de leur accord-cadre : GC-2026-000001 (échu le 14 janvier 2030)"
        );
    }
}
