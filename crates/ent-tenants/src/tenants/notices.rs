//! The notices of a tenant's life to the people it concerns: the `tenant` e-mail, queued in
//! the transaction of the change (a move, an announced purge, the purge). These notices have
//! operational and legal effect: `preferences::category_of` gives them no category, so no
//! one can switch them off.

use super::{Status, Tenant};
use chrono::{DateTime, Utc};
use ent_conventions::conventions::model::ConventionModel;
use ent_conventions::conventions::workflow::reversibility_article;
use ent_conventions::conventions::{active_covering, find_model, get_convention, processing, Convention};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::kernel::roles::Role;
use ent_kernel::naming;
use ent_kernel::store::Condition;
use ent_kernel::store::Store;
use ent_kernel::store::Tx;
use ent_kernel::text;
use ent_ops::notify::Notice;
use ent_platform::identity::authz::{dpo_keeps, dpos_keeping, in_org_scope_in, users_with_role};
use ent_platform::registry::queries::{
    funded_etablissements_in, funding_collectivite, funds_condition, get_org_in, orgs_by_id_in,
};
use ent_platform::registry::{Org, OrgRef};
use serde_json::{json, Value};

/// The roles bound at the tenant's own organisation that are told of its life.
const LOCAL_ROLES: [Role; 2] = [Role::Collectivite, Role::ChefEtablissement];

/// The roles bound at the collectivité that funds a school's ENT that are told of its life.
const FUNDER_ROLES: [Role; 2] = [Role::Collectivite, Role::Dpo];

/// The events that announce the purge of the tenant's data, which a support ticket opened on
/// it holds back: also told to the chefs d'établissement of the schools it serves
/// ([`served_heads`]), who may open that ticket when the collectivité, the funder, the DAN and
/// the DPO may not.
const PURGE_NOTICES: [&str; 2] = ["archived", "purge_planned"];

/// The event of the notice that gives the attestation of destruction of the tenant's data (the
/// purge's), also told to those who receive the attestation ([`given_the_attestation`]).
pub const DESTROYED: &str = "purged";

/// Whether the notice of a move to `to` says who restitutes the data and what the convention's
/// article « Réversibilité » makes it do ([`Audience::restituting`]): the withdrawal, which opens
/// the réversibilité, and the archiving, which announces the purge.
pub fn restitutes_on(to: Status) -> bool {
    matches!(to, Status::Decommissioning | Status::Archived)
}

/// The `event` of the notice a lifecycle move from `from` to `to` sends, if any.
pub fn of_move(from: Status, to: Status) -> Option<&'static str> {
    match (from, to) {
        (_, Status::Suspended) => Some("suspended"),
        (Status::Suspended, Status::Active) => Some("reactivated"),
        (_, Status::Decommissioning) => Some("decommissioning"),
        (_, Status::Archived) => Some("archived"),
        _ => None,
    }
}

/// The organisations a tenant's notices concern: the one that holds it and, for a school's,
/// the collectivité that pays its ENT (the commune of an école, the département of a
/// collège, the région of a lycée). Read before the change's transaction opens.
pub struct Audience {
    pub org: Org,
    pub funder: Option<Org>,
    /// Who has the data restituted, for the notices announcing the purge ([`Audience::restituting`]).
    pub restitution: Option<Restitution>,
}

/// Who has an archived tenant's data restituted before their purge, as its notices say it
/// (domain review 41, F6): the collectivité party of the convention (article « Réversibilité »:
/// « la collectivité fait restituer à l'établissement … l'ensemble des données », then the éditeur
/// and the hébergeur destroy them and give it an attestation, which it passes to the controller).
pub struct Restitution {
    /// « au Département du Val-de-Marne »: after « adressez-vous ».
    pub to: String,
    /// What the convention says of it, when one names the collectivité, a sentence without its
    /// full stop, the collectivité named as its subject (domain review 43, F1 and F8): « Le
    /// Département du Val-de-Marne, comme le prévoit l'article 9 de la convention CONV-…, fait
    /// restituer les données au Collège des Essais … ».
    pub said: Option<String>,
    /// The organisation that restitutes (`to`), which receives the attestation of destruction.
    pub by: Option<OrgRef>,
    /// The controller the convention names (`rgpd_controller`), whose DPOs are given the
    /// attestation of destruction.
    pub controller: Option<OrgRef>,
    /// The reference of the convention that says it, as the attestation cites it.
    pub convention: Option<String>,
}

impl Audience {
    pub async fn of(store: &Store, org: Org) -> Result<Audience, Problem> {
        let funder = funding_collectivite(store, &org).await?;
        Ok(Audience { org, funder, restitution: None })
    }

    /// The audience with who restitutes the data of `tenant` ([`Restitution`]): the collectivité
    /// party of the convention in force covering its organisation on `today`, else of the one that
    /// opened its deployment; without either, its funder (or the commune the tenant serves).
    pub async fn restituting(
        mut self,
        store: &Store,
        models: &[ConventionModel],
        tenant: &Tenant,
        today: &str,
    ) -> Result<Audience, Problem> {
        let mut convention = active_covering(store, models, &self.org.id, today).await?;
        if let (None, Some(id)) = (&convention, &tenant.convention_id) {
            convention = get_convention(store, models, id).await?;
        }
        let said = convention.as_ref().and_then(|c| restitution_said(models, c, &self.org));
        let by = match (&said, &self.funder) {
            (Some((org, _)), _) => Some(org.clone()),
            (None, Some(funder)) => Some(funder.as_ref()),
            (None, None) if self.org.kind != OrgKind::Etablissement => Some(self.org.as_ref()),
            (None, None) => None,
        };
        let restitutes = by.as_ref().map(|org| naming::of_org(org.kind, &naming::display_name(&org.name)));
        self.restitution = Some(Restitution {
            to: restitutes.map_or_else(|| "à la collectivité qui finance l'ENT".to_string(), |d| d.to()),
            said: said.map(|(_, said)| said),
            by,
            controller: convention.as_ref().and_then(|c| c.rgpd_controller.clone()),
            convention: convention.as_ref().map(|c| c.reference.clone()),
        });
        Ok(self)
    }
}

/// The collectivité party of `conv` that has the data of `org`'s ENT restituted (the processor
/// party of its model, [`processing::processor_party`]) and what its article « Réversibilité »
/// makes it do, as a notice says it; `None` when its model is unknown or has no such party.
fn restitution_said(models: &[ConventionModel], conv: &Convention, org: &Org) -> Option<(OrgRef, String)> {
    let model = find_model(models, &conv.model_id, Some(conv.model_version)).ok()?;
    let party = processing::processor_party(model, &conv.parties)?;
    let collectivite = naming::of_org(party.org.kind, &naming::display_name(&party.org.name));
    let served = naming::of_org(org.kind, &naming::display_name(&org.name));
    let to_whom = match org.kind {
        OrgKind::Etablissement => served.to(),
        _ => format!("aux écoles {}", served.of),
    };
    let article = reversibility_article(model).unwrap_or_else(|| "la convention".into());
    let said = format!(
        "{}, comme le prévoit {article} {}, fait restituer les données {to_whom} dans un format ouvert et \
         documenté ; au terme de la restitution, l'éditeur et l'hébergeur les détruisent et lui en délivrent une \
         attestation, qu'{} transmet au responsable de traitement",
        text::capitalised(&collectivite.article),
        conv.reference,
        collectivite.pronoun()
    );
    Some((party.org.clone(), said))
}

/// Queues the `tenant` mail of `event` about `tenant` to the people it concerns
/// ([`recipients`]), in the caller's transaction: the tenant's slug, hostname, organisation
/// and console page, and `extra` (a JSON object: `reason`, `purge_on`…).
pub async fn notify(
    tx: &mut Tx,
    tenant: &Tenant,
    audience: &Audience,
    event: &str,
    extra: Value,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let org = &audience.org;
    let mut recipients = recipients(tx, audience).await?;
    if PURGE_NOTICES.contains(&event) {
        recipients.extend(served_heads(tx, org).await?);
    }
    if event == DESTROYED {
        recipients.extend(given_the_attestation(tx, audience).await?);
    }
    let served = naming::of_org(org.kind, &naming::display_name(&org.name)).of;
    let restitution = audience.restitution.as_ref().map(|r| json!({ "to": r.to, "said": r.said }));
    Notice::event("tenant", recipients, event)
        .with(json!({ "slug": tenant.slug, "hostname": tenant.hostname, "organisation": org.name, "served": served,
                      "restitution": restitution }))
        .with(extra)
        .page(format!("/ent/{}", tenant.slug))
        .enqueue(tx, now)
        .await?;
    Ok(())
}

/// The active users bound at the tenant's organisation as its collectivité or chef
/// d'établissement, those bound at its funder as collectivité or DPO, and the DANs and DPOs
/// who oversee the organisation ([`overseers`]); read in the caller's transaction.
/// [`Notice::event`] keeps each address once.
async fn recipients(tx: &mut Tx, audience: &Audience) -> Result<Vec<String>, Problem> {
    let mut emails = Vec::new();
    for role in LOCAL_ROLES {
        emails.extend(users_with_role(tx, &audience.org.id, role.as_str()).await?);
    }
    if let Some(funder) = &audience.funder {
        for role in FUNDER_ROLES {
            emails.extend(users_with_role(tx, &funder.id, role.as_str()).await?);
        }
    }
    emails.extend(overseers(tx, &audience.org).await?);
    Ok(emails)
}

/// Who is told of the life of an ENT of `org` by the office they hold over it: the active DANs
/// whose scope holds `org` ([`dans_over`]) and the active DPOs who keep the registers of `org`
/// or of a school its ENT serves ([`dpos_over`]). Also who a groupement's award, hand-overs and
/// end tell about the ENT its members fund (`groupements::ending`).
pub async fn overseers(tx: &mut Tx, org: &Org) -> Result<Vec<String>, Problem> {
    let mut emails = dans_over(tx, org).await?;
    emails.extend(dpos_over(tx, org).await?);
    Ok(emails)
}

/// The active users bound as DPO where they keep the registers of `org` or of a school an ENT
/// of `org` serves (`queries::funded_etablissements_in`, as [`served_heads`]), by the one rule of who keeps them ([`dpo_keeps`]): the
/// académie's DPO for its public schools (a commune's écoles included), never for a private
/// school, its own controller, nor for a collectivité.
async fn dpos_over(tx: &mut Tx, org: &Org) -> Result<Vec<String>, Problem> {
    let served = funded_etablissements_in(tx, org).await?;
    let keeps = |at: &Org| dpo_keeps(at, org) || served.iter().any(|school| dpo_keeps(at, school));
    Ok(bound_as(tx, Role::Dpo).await?.into_iter().filter(|(_, at)| keeps(at)).map(|(email, _)| email).collect())
}

/// The active users bound with `role` at an organisation, with that organisation, by address.
async fn bound_as(tx: &mut Tx, role: Role) -> Result<Vec<(String, Org)>, Problem> {
    let bindings: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.email, b.org_id FROM users u JOIN role_bindings b ON b.user_id = u.id \
         WHERE b.role = $1 AND b.org_id IS NOT NULL AND u.active = 1 ORDER BY u.email",
    )
    .bind(role.as_str())
    .fetch_all(&mut **tx)
    .await?;
    let mut ids: Vec<String> = bindings.iter().map(|(_, id)| id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let orgs = orgs_by_id_in(tx, ids).await?;
    Ok(bindings.into_iter().filter_map(|(email, id)| orgs.get(&id).map(|org| (email, org.clone()))).collect())
}

/// Who receives the attestation of destruction the purge's notice gives ([`DESTROYED`]), beside
/// its usual recipients: the active users bound as collectivité at the organisation that
/// restitutes the data ([`Restitution::by`]: the collectivité party of the convention), the DPOs
/// who keep the registers of the convention's controller ([`dpos_keeping`]), and the heads of the
/// schools the tenant serves ([`served_heads`]).
async fn given_the_attestation(tx: &mut Tx, audience: &Audience) -> Result<Vec<String>, Problem> {
    let mut emails = served_heads(tx, &audience.org).await?;
    let Some(restitution) = &audience.restitution else { return Ok(emails) };
    if let Some(by) = &restitution.by {
        emails.extend(users_with_role(tx, &by.id, Role::Collectivite.as_str()).await?);
    }
    if let Some(controller) = &restitution.controller {
        if let Some(controller) = get_org_in(tx, &controller.id).await? {
            emails.extend(dpos_keeping(tx, &controller).await?);
        }
    }
    Ok(emails)
}

/// The active chefs d'établissement bound at the schools a tenant of `org` serves: those `org`
/// funds (`queries::funds_condition`: a commune's écoles, an EPCI's delegating communes'), or
/// `org` itself for a school's tenant; read in the caller's transaction.
async fn served_heads(tx: &mut Tx, org: &Org) -> Result<Vec<String>, Problem> {
    let mut schools = funds_condition(org);
    schools.push("kind = ?", &[OrgKind::Etablissement.as_str()]);
    let mut cond = Condition::default();
    cond.push("b.role = ? AND u.active = 1", &[Role::ChefEtablissement.as_str()]);
    cond.and_wrapped("b.org_id IN (SELECT id FROM orgs WHERE ", schools, ")");
    let sql = format!(
        "SELECT u.email FROM users u JOIN role_bindings b ON b.user_id = u.id WHERE {} ORDER BY u.email",
        cond.sql()
    );
    let rows = cond.bind(sqlx::query(&sql)).fetch_all(&mut **tx).await?;
    Ok(ent_kernel::store::first_column(&rows)?)
}

/// The active DANs whose binding's scope contains `org`, as authorisation decides it
/// ([`in_org_scope_in`]: a DAN of another académie is not told). Not the DPOs, who are told
/// where they keep the registers ([`dpos_over`]).
async fn dans_over(tx: &mut Tx, org: &Org) -> Result<Vec<String>, Problem> {
    let mut emails = Vec::new();
    for (email, scope) in bound_as(tx, Role::Dan).await? {
        if in_org_scope_in(tx, &scope, org).await? {
            emails.push(email);
        }
    }
    Ok(emails)
}
