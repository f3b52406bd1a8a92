//! The hand-over of kept tenants: a member's tenant an award left with the titulaire of another
//! groupement's accord-cadre ([`KeptTenant`] naming that `groupement`) passes, once that
//! accord-cadre has ended — its last day passed ([`Award::last_day`]) or its groupement
//! `ended` — to the titulaire of the latest accord-cadre still running that covers it (one of
//! its accepted members funds it). With none running, or a tenant no longer served, it stays
//! with its vendor and the award says why. The daily job `groupements-handover` does it, and
//! [`super::transition`] right after a groupement is ended.
//!
//! Each tenant is handed over in one write transaction: its vendor, the award(s) that kept it
//! (the entry's [`Release`]), the audit record of each entry and one notice to the members
//! concerned, however many awards kept it (it names them all). The
//! rows of those awards (and the tenant's) are locked and read again inside it, and an entry
//! already released is left alone: a second pass, another replica or the job after an ending
//! changes nothing, and a pass cut midway is taken up where it stopped.

use super::award::{funded_tenants_of, services_outside, KeptTenant, ServicesOutside};
use super::membership;
use super::{Award, Groupement};
use chrono::{DateTime, NaiveDate, Utc};
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::Problem;
use ent_kernel::naming;
use ent_kernel::skip_serializing_none;
use ent_kernel::store::{timestamp, JsonText, Store, Tx};
use ent_ops::jobs::JobFuture;
use ent_ops::notify::Notice;
use ent_platform::audit::{self, Target};
use ent_platform::catalog::Catalog;
use ent_platform::contracts::binding_market;
use ent_platform::identity::Actor;
use ent_platform::registry::{get_org, Org};
use ent_tenants::tenants::{get_tenant, set_processors, Tenant};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// The job's name, and its actor (`system:groupements-handover`).
pub const JOB: &str = "groupements-handover";

/// What became of a kept tenant once the accord-cadre that bound it ended.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Release {
    /// `YYYY-MM-DD`: the day it was handed over (or found with no accord-cadre to pass to).
    pub on: String,
    /// The titulaire it passed to; absent when it stayed with its vendor (no accord-cadre
    /// running covers it, or it is no longer served).
    #[serde(default)]
    pub vendor: Option<String>,
    /// The reference of the groupement whose accord-cadre's titulaire took it.
    #[serde(default)]
    pub groupement: Option<String>,
    /// What happened and why, in a French sentence.
    pub message: String,
    /// When it falls under the accord-cadre of `groupement`: the services it runs that this
    /// accord-cadre does not cover, said as the award says them ([`services_outside`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ServicesOutside>,
}

/// One pass: the sentences of the tenants handed over, of those left with their vendor, and
/// of the failures (the tenant named).
#[derive(Debug, Default)]
pub struct HandoverPass {
    pub moved: Vec<String>,
    pub left: Vec<String>,
    /// The sentences of the tenants passing under an accord-cadre that does not cover some of
    /// their services ([`Release::warnings`]).
    pub warnings: Vec<String>,
    pub failed: Vec<String>,
}

impl HandoverPass {
    /// The job's summary.
    pub fn outcome(&self) -> String {
        let mut out = format!(
            "{} ENT passé(s) au titulaire de l'accord-cadre en cours, {} laissé(s) à leur éditeur",
            self.moved.len(),
            self.left.len()
        );
        for line in self.moved.iter().chain(&self.left).chain(&self.warnings) {
            out.push_str(" ; ");
            out.push_str(line);
        }
        if !self.failed.is_empty() {
            out.push_str(&format!(" ; {} échec(s) : {}", self.failed.len(), self.failed.join(" ; ")));
        }
        out
    }
}

/// How an accord-cadre that bound a kept tenant ended.
#[derive(Debug, Clone)]
struct Ending {
    /// Its last day, when its term passed; None when its groupement was ended before.
    last_day: Option<NaiveDate>,
}

impl Ending {
    /// « s'est achevé le 29 novembre 2029 », « a pris fin ».
    fn said(&self) -> String {
        match self.last_day {
            Some(day) => format!("s'est achevé le {}", french_date(&day.to_string())),
            None => "a pris fin".into(),
        }
    }
}

/// Whether the accord-cadre of the groupement `reference` has ended on `today`: its groupement
/// is `ended`, or its last day is past. None while it runs (or if no such groupement).
async fn ending(store: &Store, reference: &str, today: NaiveDate) -> Result<Option<Ending>, Problem> {
    let Some(g) = super::get(store, reference).await? else { return Ok(None) };
    let last_day = g.award.as_ref().and_then(Award::last_day);
    Ok(match last_day {
        Some(day) if day < today => Some(Ending { last_day: Some(day) }),
        _ if g.status == super::Status::Ended => Some(Ending { last_day: None }),
        _ => None,
    })
}

/// The entries of `award` still kept by an accord-cadre (`groupement` named, not released).
fn bound(award: &Award) -> impl Iterator<Item = &KeptTenant> {
    award.kept_tenants.iter().filter(|k| k.groupement.is_some() && k.released.is_none())
}

/// The awards (their groupements' ids) keeping each tenant (its slug) for an accord-cadre that
/// has ended — only `ended` when given (the groupement just ended) — with those endings.
async fn pending(
    store: &Store,
    today: NaiveDate,
    ended: Option<&str>,
) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Ending>), Problem> {
    let rows: Vec<(String, JsonText<Award>)> =
        sqlx::query_as("SELECT id, award FROM groupements WHERE award IS NOT NULL ORDER BY id")
            .fetch_all(store.pool())
            .await?;
    let (mut tenants, mut endings) = (BTreeMap::<String, Vec<String>>::new(), BTreeMap::new());
    let mut running = Vec::new();
    for (id, award) in &rows {
        for kept in bound(&award.0) {
            let binding = kept.groupement.clone().unwrap_or_default();
            if ended.is_some_and(|e| e != binding) || running.contains(&binding) {
                continue;
            }
            if !endings.contains_key(&binding) {
                match ending(store, &binding, today).await? {
                    Some(e) => endings.insert(binding.clone(), e),
                    None => {
                        running.push(binding);
                        continue;
                    }
                };
            }
            let holders = tenants.entry(kept.tenant.clone()).or_default();
            if !holders.contains(id) {
                holders.push(id.clone());
            }
        }
    }
    Ok((tenants, endings))
}

/// Whether one of the accepted members of the groupement `id` funds `tenant`
/// ([`funded_tenants_of`]); the members that do.
async fn members_funding(store: &Store, id: &str, tenant: &Tenant) -> Result<Vec<Org>, Problem> {
    let mut funding = Vec::new();
    for m in membership::members(store, id).await? {
        let Some(org) = get_org(store, &m.applicant.id).await? else { continue };
        if funded_tenants_of(store, &org).await?.iter().any(|t| t.id == tenant.id) {
            funding.push(org);
        }
    }
    Ok(funding)
}

/// The latest accord-cadre (by notification) running on `today` — awarded or in execution,
/// notified, its last day not past — one of whose members funds `tenant`: its groupement and
/// titulaire ([`binding_market`], the rule a tenant created later follows too).
async fn latest_covering(
    store: &Store,
    tenant: &Tenant,
    today: NaiveDate,
) -> Result<Option<(Groupement, Org)>, Problem> {
    let Some(org) = get_org(store, &tenant.organisation.id).await? else { return Ok(None) };
    let Some(market) = binding_market(&mut *store.conn().await?, &org, today, today).await? else {
        return Ok(None);
    };
    Ok(super::get(store, &market.groupement_id).await?.map(|g| (g, market.vendor)))
}

/// What a kept tenant becomes: its release, and the titulaire to switch it to (None: it stays).
fn decide(
    tenant: &Tenant,
    kept: &KeptTenant,
    ending: &Ending,
    target: Option<&(Groupement, Org)>,
    today: NaiveDate,
) -> (Release, Option<Org>) {
    let (slug, of_org) = (&tenant.slug, naming::de(&tenant.organisation.name));
    let binding = kept.groupement.as_deref().unwrap_or_default();
    // The titulaire the award kept it with binds it; the vendor it has now is the one it keeps.
    let bound_to = kept.vendor.clone().unwrap_or_default();
    let old = tenant.vendor.as_ref().map(|v| v.name.clone()).unwrap_or_else(|| bound_to.clone());
    let on = today.to_string();
    let ended = format!("l'accord-cadre du groupement {binding} qui le liait à {bound_to} {}", ending.said());
    let release = |vendor: Option<&Org>, groupement: Option<&str>, message: String| Release {
        on: on.clone(),
        vendor: vendor.map(|v| v.name.clone()),
        groupement: groupement.map(str::to_string),
        message,
        warnings: Vec::new(),
    };
    if !tenant.status.still_served() {
        let state = tenant.status.label();
        let message = format!(
            "L'ENT « {slug} » {of_org}, {state}, garde son éditeur {old}, qui détient ses données jusqu'à leur purge : \
             {ended}."
        );
        return (release(None, None, message), None);
    }
    match target {
        None => {
            let message = format!(
                "L'ENT « {slug} » {of_org} garde son éditeur {old} : {ended}, et aucun accord-cadre en cours ne le \
                 couvre (constaté le {}) ; il passera au titulaire du prochain marché attribué.",
                french_date(&on)
            );
            (release(None, None, message), None)
        }
        Some((g, vendor)) if tenant.vendor.as_ref().is_some_and(|v| v.id == vendor.id) => {
            let message = format!(
                "L'ENT « {slug} » {of_org} garde son éditeur {}, titulaire de l'accord-cadre en cours du groupement {} \
                 (constaté le {}) : {ended}.",
                vendor.name,
                g.reference,
                french_date(&on)
            );
            (release(Some(vendor), Some(&g.reference), message), None)
        }
        Some((g, vendor)) => {
            let message = format!(
                "L'ENT « {slug} » {of_org} est passé le {} à {}, titulaire de l'accord-cadre du groupement {} : {ended}.",
                french_date(&on),
                vendor.name,
                g.reference
            );
            (release(Some(vendor), Some(&g.reference), message), Some(vendor.clone()))
        }
    }
}

/// The services of `tenant` that the accord-cadre it falls under by `release` (the groupement
/// of `target`, when the release names it) does not cover: the award's [`services_outside`],
/// so that a tenant handed over is flagged as one awarded is.
fn outside_under(
    catalog: &Catalog,
    tenant: &Tenant,
    release: &Release,
    target: Option<&(Groupement, Org)>,
) -> Vec<ServicesOutside> {
    match target {
        Some((g, _)) if release.groupement.as_deref() == Some(g.reference.as_str()) => {
            services_outside(catalog, g, std::slice::from_ref(tenant), &[])
        }
        _ => Vec::new(),
    }
}

/// Hands over the kept tenants whose accord-cadre has ended on `now`'s day in France (only
/// those `ended` kept, the groupement just ended, when given), each in its own transaction
/// ([`hand_over_tenant`]); a tenant that fails is named and the others go on.
pub async fn hand_over(
    store: &Store,
    catalog: &Catalog,
    actor: &Actor,
    now: DateTime<Utc>,
    ended: Option<&str>,
) -> Result<HandoverPass, Problem> {
    let today = today_in_france(now);
    let (tenants, endings) = pending(store, today, ended).await?;
    let mut pass = HandoverPass::default();
    for (slug, holders) in tenants {
        match hand_over_tenant((store, catalog), actor, now, &slug, &holders, &endings).await {
            Ok(Some((release, moved))) => {
                pass.warnings.extend(release.warnings.iter().map(|w| w.message.clone()));
                match moved {
                    true => pass.moved.push(release.message),
                    false => pass.left.push(release.message),
                }
            }
            Ok(None) => {}
            Err(p) => pass.failed.push(format!("ENT « {slug} » : {}", p.detail)),
        }
    }
    Ok(pass)
}

/// [`hand_over`] of the tenants the groupement `reference`, just ended by `actor`, kept from
/// later awards. A failure leaves them to the daily job: the ending stands.
pub async fn after_ending(store: &Store, catalog: &Catalog, actor: &Actor, now: DateTime<Utc>, reference: &str) {
    match hand_over(store, catalog, actor, now, Some(reference)).await {
        Ok(pass) if pass.failed.is_empty() => {}
        Ok(pass) => tracing::warn!(groupement = reference, outcome = pass.outcome(), "hand-over after ending"),
        Err(p) => tracing::warn!(groupement = reference, error = p.detail, "hand-over after ending"),
    }
}

/// The daily `groupements-handover` job: ends the groupements whose accord-cadre reached its
/// term ([`super::ending::end_at_term`]), then hands over the tenants of every accord-cadre ended.
pub fn handover_job(state: &super::GroupementsState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let actor = Actor::system(JOB);
        let store = &state.store;
        let ended = super::ending::end_at_term(store, &actor, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        let pass = hand_over(store, &state.catalog, &actor, now, None).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        let outcome = format!("{}{}", pass.outcome(), ended.outcome());
        if pass.failed.is_empty() && ended.failed.is_empty() {
            Ok(outcome)
        } else {
            Err(anyhow::anyhow!(outcome))
        }
    })
}

/// Hands over the tenant `slug` the awards of `holders` keep for an ended accord-cadre: reads
/// what it needs, then, in one transaction, locks the tenant's and the awards' rows, reads the
/// awards again, and for the entries still kept by an ended accord-cadre switches the tenant
/// (once) and releases each entry, with their audit and notices. None when nothing was left
/// to do (another pass did it); else the release (of the first entry) and whether it moved.
async fn hand_over_tenant(
    (store, catalog): (&Store, &Catalog),
    actor: &Actor,
    now: DateTime<Utc>,
    slug: &str,
    holders: &[String],
    endings: &BTreeMap<String, Ending>,
) -> Result<Option<(Release, bool)>, Problem> {
    let today = today_in_france(now);
    let Some(tenant) = get_tenant(store, slug).await? else { return Ok(None) };
    let target = latest_covering(store, &tenant, today).await?;
    let mut notified = BTreeMap::new();
    for id in holders {
        let Some(g) = super::get(store, id).await? else { continue };
        let mut to = Vec::new();
        for org in members_funding(store, id, &tenant).await? {
            to.push(org.id);
        }
        notified.insert(id.clone(), (g, to));
    }
    let mut tx = store.begin_write().await?;
    let lock = store.backend().for_update();
    sqlx::query(&format!("SELECT id FROM tenants WHERE id = $1{lock}")).bind(&tenant.id).fetch_all(&mut *tx).await?;
    let mut first: Option<(Release, bool)> = None;
    let mut switched = false;
    let mut told = Told::default();
    for (id, (g, members)) in &notified {
        let sql = format!("SELECT award FROM groupements WHERE id = $1{lock}");
        let Some(award): Option<JsonText<Award>> = sqlx::query_scalar(&sql).bind(id).fetch_optional(&mut *tx).await?
        else {
            continue;
        };
        let mut award = award.0;
        let mut released = Vec::new();
        for kept in award.kept_tenants.iter_mut().filter(|k| k.tenant == slug && k.released.is_none()) {
            let Some(ending) = kept.groupement.as_ref().and_then(|b| endings.get(b)) else { continue };
            let (mut release, vendor) = decide(&tenant, kept, ending, target.as_ref(), today);
            release.warnings = outside_under(catalog, &tenant, &release, target.as_ref());
            if let Some(vendor) = vendor.filter(|_| !switched) {
                set_processors(&mut tx, store, actor, &tenant, Some(&vendor), None, now).await?;
                switched = true;
            }
            first.get_or_insert((release.clone(), release.vendor.is_some()));
            kept.released = Some(release.clone());
            released.push((kept.clone(), release));
        }
        if released.is_empty() {
            continue;
        }
        sqlx::query("UPDATE groupements SET award = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(serde_json::to_string(&award).expect("award serialises"))
            .bind(timestamp(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record(&mut tx, store, actor, g, &released, now).await?;
        told.add(g, members, &released);
    }
    if first.is_none() {
        tx.rollback().await?;
        return Ok(None);
    }
    told.notify(&mut tx, &tenant, now).await?;
    tx.commit().await?;
    Ok(first)
}

/// The audit record of each entry of `g`'s award released.
async fn record(
    tx: &mut Tx,
    store: &Store,
    actor: &Actor,
    g: &Groupement,
    released: &[(KeptTenant, Release)],
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    for (kept, release) in released {
        let summary = json!({
            "tenant": kept.tenant, "organisation": kept.organisation, "from": kept.vendor,
            "binding": kept.groupement, "to": release.vendor, "via": release.groupement, "on": release.on,
            "message": release.message, "warnings": release.warnings,
        });
        let target = Target::new("groupement", &g.id, Some(&g.coordinator.id));
        audit::record(tx, store.backend(), actor, "groupements.handover", &target, summary, now).await?;
    }
    Ok(())
}

/// The one notice of a tenant's hand-over, however many awards kept it: the awards that released
/// it (the first names the page), the members to tell (those each award's members funding the
/// tenant: those its award notified) and what became of it.
#[derive(Default)]
struct Told<'a> {
    awards: Vec<&'a Groupement>,
    members: Vec<String>,
    messages: Vec<String>,
    /// The sentences of [`Release::warnings`], each once.
    outside: Vec<String>,
    vendor: Option<String>,
}

impl<'a> Told<'a> {
    fn add(&mut self, g: &'a Groupement, members: &[String], released: &[(KeptTenant, Release)]) {
        self.awards.push(g);
        for member in members {
            if !self.members.contains(member) {
                self.members.push(member.clone());
            }
        }
        for (_, release) in released {
            if !self.messages.contains(&release.message) {
                self.messages.push(release.message.clone());
            }
            for warning in &release.warnings {
                if !self.outside.contains(&warning.message) {
                    self.outside.push(warning.message.clone());
                }
            }
            self.vendor = self.vendor.take().or_else(|| release.vendor.clone());
        }
    }

    /// Queues the notice of `tenant`'s hand-over to the members' representatives and DPOs
    /// ([`super::ending::member_people`]) and the DANs and DPOs over it
    /// ([`super::ending::people_over`]: its processor changed), each once.
    async fn notify(&self, tx: &mut Tx, tenant: &Tenant, now: DateTime<Utc>) -> Result<(), Problem> {
        let Some((g, others)) = self.awards.split_first() else { return Ok(()) };
        let mut to = super::ending::member_people(tx, &self.members).await?;
        to.extend(super::ending::people_over(tx, vec![tenant.organisation.id.clone()]).await?);
        let others: Vec<_> = others.iter().map(|o| json!({ "reference": o.reference, "title": o.title })).collect();
        let subject = json!({
            "event": "handover", "reference": g.reference, "title": g.title, "message": self.messages.join(" "),
            "vendor": self.vendor, "others": others, "outside": self.outside,
        });
        let notice = Notice::new("groupement", to).unique_recipients().with(subject);
        notice.page(super::page_of(g)).enqueue(tx, now).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_counts_and_names_each_tenant() {
        let pass = HandoverPass {
            moved: vec!["A.".into()],
            left: vec!["B.".into()],
            warnings: vec!["C.".into()],
            failed: vec![],
        };
        assert_eq!(
            pass.outcome(),
            "1 ENT passé(s) au titulaire de l'accord-cadre en cours, 1 laissé(s) à leur éditeur ; A. ; B. ; C."
        );
        assert!(HandoverPass { failed: vec!["ENT « x » : panne".into()], ..Default::default() }
            .outcome()
            .ends_with("1 échec(s) : ENT « x » : panne"));
    }

    #[test]
    fn an_ending_by_term_names_its_last_day() {
        let day = NaiveDate::from_ymd_opt(2029, 11, 29);
        assert_eq!(Ending { last_day: day }.said(), "s'est achevé le 29 novembre 2029");
        assert_eq!(Ending { last_day: None }.said(), "a pris fin");
    }
}
