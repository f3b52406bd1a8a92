//! Convention coverage of running tenants: the daily job `tenants-coverage` asks the governance
//! gate's own question ([`super::gate_on`]) of every tenant that serves its établissements
//! (provisioning, active, suspended): which of them no convention in force covers today,
//! France time. A tenant newly uncovered records the lapse (`coverage_lapsed_at`,
//! `coverage_uncovered`, migration 0056), one covered again clears it; each with a tenant event
//! and an audit record in one transaction, through an UPDATE guarded on what the pass read, so
//! that two replicas running the job record it once. An admin's override of the gate does not
//! silence it (it let the tenant leave `requested`, nothing more), and the tenant is never
//! suspended here: pupils would lose their ENT overnight, the DAN decides. The pass first lets
//! the conventions whose day has come take effect (`conventions::jobs::take_effect`, guarded and
//! idempotent): scheduled after `conventions-daily`, it may still start before it ends (a
//! restart catches both up at once), and would flag every renewed tenant on 1 September. A
//! tenant that leaves the running states (`decommissioning`) has its flags cleared by that move;
//! the lapse UPDATE only applies while the tenant still runs. One tenant's failure is logged
//! and named in the outcome, the job then fails, after the others were checked.

use super::notices::{self, Audience};
use super::{event, gate_on, json_list, tenants_and_orgs_from_rows, Asked, GateAnswers};
use super::{Tenant, TenantRow, TenantsState, COLUMNS};
use chrono::{DateTime, NaiveDate, Utc};
use ent_conventions::conventions::jobs::take_effect;
use ent_conventions::conventions::workflow::Ctx;
use ent_conventions::conventions::InForce;
use ent_kernel::clock::{french_date, french_day, today_in_france};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::store::{timestamp, Store, Tx};
use ent_ops::jobs::JobFuture;
use ent_platform::audit;
use ent_platform::identity::Actor;
use ent_platform::registry::queries::{funded_ecoles_by_commune, get_org};
use ent_platform::registry::Org;
use sqlx::FromRow;
use std::collections::HashMap;

pub const ACTOR: &str = "system:tenants-coverage";

/// What a coverage pass did: the tenants examined, and the slugs of those it recorded.
#[derive(Debug, Default, PartialEq)]
pub struct CoveragePass {
    pub examined: usize,
    /// Newly without a convention in force for some établissement.
    pub lapsed: Vec<String>,
    /// Still uncovered, but not the same établissements as recorded.
    pub changed: Vec<String>,
    /// Covered again.
    pub restored: Vec<String>,
    /// Those whose check failed (logged): the others were checked all the same.
    pub failed: Vec<String>,
}

impl CoveragePass {
    /// The job's outcome, for administrators.
    fn outcome(&self) -> String {
        let mut said = format!("{} tenant(s) examiné(s)", self.examined);
        for (label, slugs) in [
            ("sans convention en vigueur", &self.lapsed),
            ("établissements non couverts modifiés", &self.changed),
            ("de nouveau couverts", &self.restored),
            ("vérification en échec", &self.failed),
        ] {
            if !slugs.is_empty() {
                said.push_str(&format!(" ; {label} : {}", slugs.join(", ")));
            }
        }
        said
    }
}

/// Checks the coverage of every running tenant on the French calendar day of `now`, once the
/// conventions whose day has come took effect (the step of `conventions-daily` it does not wait
/// for). A tenant whose check fails is logged and named in the pass; the others are checked.
pub async fn check_coverage(state: &TenantsState, now: DateTime<Utc>) -> Result<CoveragePass, Problem> {
    let actor = Actor::system("tenants-coverage");
    let ctx = Ctx { store: &state.store, models: &state.models, actor: &actor, now };
    take_effect(&ctx).await?;
    let (tenants, orgs) = running_tenants(&state.store).await?;
    let memo = PassMemo::load(state, orgs, today_in_france(now)).await?;
    let mut pass = CoveragePass::default();
    for tenant in tenants {
        pass.examined += 1;
        match check_tenant(state, &memo, &tenant, now).await {
            Ok(Some(outcome)) => outcome.list_in(&mut pass).push(tenant.slug.clone()),
            Ok(None) => {}
            Err(problem) => {
                tracing::warn!(slug = %tenant.slug, error = %problem.detail, "tenants-coverage: check failed");
                pass.failed.push(tenant.slug.clone());
            }
        }
    }
    Ok(pass)
}

/// What the gate needs for every tenant of a pass, read once at its start: the tenants'
/// organisations, the écoles of those that are communes, the conventions in force on the day
/// ([`InForce`]); the établissements of another collectivité (département, région, EPCI: a
/// few tenants) are asked of the store. A pass thus costs a number of queries that grows with
/// the conventions and communes by the 500, not one series per tenant.
struct PassMemo<'a> {
    state: &'a TenantsState,
    orgs: HashMap<String, Org>,
    /// By commune code.
    ecoles: HashMap<String, Vec<Org>>,
    in_force: InForce,
    asked: Asked<'a>,
}

impl<'a> PassMemo<'a> {
    /// The memo of a pass on `today` over the tenants of `orgs` (their organisations by id).
    async fn load(state: &'a TenantsState, orgs: HashMap<String, Org>, today: NaiveDate) -> Result<Self, Problem> {
        let communes: Vec<&Org> = orgs.values().filter(|o| o.kind == OrgKind::Commune).collect();
        let ecoles = funded_ecoles_by_commune(&state.store, &communes).await?;
        let in_force = InForce::load(&state.store, &state.models, &today.to_string()).await?;
        Ok(PassMemo { state, orgs, ecoles, in_force, asked: Asked::on(state, today) })
    }
}

impl GateAnswers for PassMemo<'_> {
    async fn organisation(&self, id: &str) -> Result<Option<Org>, Problem> {
        match self.orgs.get(id) {
            Some(org) => Ok(Some(org.clone())),
            None => self.asked.organisation(id).await,
        }
    }

    async fn covered_etablissements(&self, org: &Org) -> Result<Vec<Org>, Problem> {
        match org.kind {
            OrgKind::Commune => Ok(self.ecoles.get(&org.code).cloned().unwrap_or_default()),
            _ => self.asked.covered_etablissements(org).await,
        }
    }

    async fn covering(&self, org: &Org) -> Result<Option<String>, Problem> {
        Ok(self.in_force.covering(&self.state.models, org).map(|c| c.id.clone()))
    }
}

/// The gate's answer for one running tenant: the first convention covering it, and the codes
/// of the établissements none covers, in the gate's order; or why it could not say.
#[derive(Debug, Clone, PartialEq)]
pub struct GateAnswer {
    pub slug: String,
    pub answer: Result<(Option<String>, Vec<String>), String>,
}

/// Where [`gate_answers`] reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// As a coverage pass does: its memo, read once.
    PassMemo,
    /// As the provisioning gate does: the store, question by question.
    QuestionByQuestion,
}

/// The gate's answer for every running tenant on `today`, read as `reading` says, without
/// recording anything: both readings must give the same (tests, `entctl bench coverage`).
pub async fn gate_answers(
    state: &TenantsState,
    today: NaiveDate,
    reading: Reading,
) -> Result<Vec<GateAnswer>, Problem> {
    let (tenants, orgs) = running_tenants(&state.store).await?;
    match reading {
        Reading::PassMemo => answers_of(&PassMemo::load(state, orgs, today).await?, &tenants).await,
        Reading::QuestionByQuestion => answers_of(&Asked::on(state, today), &tenants).await,
    }
}

async fn answers_of(answers: &impl GateAnswers, tenants: &[Tenant]) -> Result<Vec<GateAnswer>, Problem> {
    let mut all = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let answer = gate_on(answers, &tenant.organisation.id).await;
        let answer = answer.map(|(covering, uncovered)| {
            (covering.into_iter().next(), uncovered.into_iter().map(|o| o.code).collect())
        });
        all.push(GateAnswer { slug: tenant.slug.clone(), answer: answer.map_err(|p| p.detail) });
    }
    Ok(all)
}

/// What a check recorded on one tenant.
enum Outcome {
    Lapsed,
    Changed,
    Restored,
}

impl Outcome {
    fn list_in(self, pass: &mut CoveragePass) -> &mut Vec<String> {
        match self {
            Outcome::Lapsed => &mut pass.lapsed,
            Outcome::Changed => &mut pass.changed,
            Outcome::Restored => &mut pass.restored,
        }
    }
}

/// Checks one tenant's coverage on the memo's day; what it recorded, if anything.
async fn check_tenant(
    state: &TenantsState,
    memo: &PassMemo<'_>,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, Problem> {
    let (covering, uncovered) = gate_on(memo, &tenant.organisation.id).await?;
    let covering = covering.into_iter().next();
    let codes = sorted_codes(&uncovered);
    let recorded = match (tenant.coverage_lapsed_at.is_some(), codes.is_empty()) {
        (false, false) => record_lapse(state, tenant, &uncovered, now).await?.then_some(Outcome::Lapsed),
        (true, false) if codes != tenant.coverage_uncovered => {
            record_lapse(state, tenant, &uncovered, now).await?.then_some(Outcome::Changed)
        }
        (true, true) => record_restored(state, tenant, covering, now).await?.then_some(Outcome::Restored),
        _ => None,
    };
    Ok(recorded)
}

/// The tenants that serve their établissements, or are being deployed to: past the gate,
/// before decommissioning; and their organisations by id.
async fn running_tenants(store: &Store) -> Result<(Vec<Tenant>, HashMap<String, Org>), Problem> {
    let sql =
        format!("SELECT {COLUMNS} FROM tenants WHERE status IN ('provisioning', 'active', 'suspended') ORDER BY slug");
    let rows: Vec<TenantRow> =
        sqlx::query(&sql).try_map(|row| TenantRow::from_row(&row)).fetch_all(store.pool()).await?;
    tenants_and_orgs_from_rows(store, rows).await
}

fn sorted_codes(orgs: &[Org]) -> Vec<String> {
    let mut codes: Vec<String> = orgs.iter().map(|o| o.code.clone()).collect();
    codes.sort();
    codes.dedup();
    codes
}

/// « École … (0940176F), École … (0940177G) ».
fn named(orgs: &[Org]) -> String {
    orgs.iter().map(|o| format!("{} ({})", o.name, o.code)).collect::<Vec<_>>().join(", ")
}

/// Records that no convention in force covers `uncovered` (newly, or other établissements
/// than recorded), unless another run recorded the same meanwhile: the UPDATE only applies
/// to the state this pass read. Whether it recorded.
async fn record_lapse(
    state: &TenantsState,
    tenant: &Tenant,
    uncovered: &[Org],
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let codes = sorted_codes(uncovered);
    let read = tenant.coverage_lapsed_at.as_ref().map(|_| serde_json::json!(tenant.coverage_uncovered).to_string());
    let Some(audience) = audience_of(state, tenant).await? else { return Ok(false) };
    let mut tx = state.store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE tenants SET coverage_lapsed_at = COALESCE(coverage_lapsed_at, $1), coverage_uncovered = $2 \
         WHERE id = $3 AND COALESCE(coverage_uncovered, '') = $4 AND status IN ('provisioning', 'active', 'suspended')",
    )
    .bind(timestamp(now))
    .bind(serde_json::json!(codes).to_string())
    .bind(&tenant.id)
    .bind(read.clone().unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let today = french_date(&today_in_france(now).to_string());
    let since = tenant.coverage_lapsed_at.as_deref().map(french_day).unwrap_or_else(|| today.clone());
    let message = match &tenant.coverage_lapsed_at {
        None => format!(
            "aucune convention en vigueur ne couvre plus {} (constaté le {today}) : le plan de contrôle ne suspend \
             pas l'ENT, la DAN décide de la suite (nouvelle convention, avenant ou suspension)",
            named(uncovered)
        ),
        Some(since) => format!(
            "sans convention en vigueur (constaté le {}) ; établissements non couverts au {today} : {}",
            french_day(since),
            named(uncovered)
        ),
    };
    let summary = serde_json::json!({
        "uncovered": codes,
        "previously": read.map(|r| json_list(Some(&r))),
        "gate_override": tenant.gate_override.is_some(),
    });
    let notice = serde_json::json!({ "since": since, "uncovered": named(uncovered) });
    let change = Recorded { kind: "convention_lapsed", action: "tenants.coverage_lapsed", message, summary, notice };
    commit_recorded(state, tx, tenant, &audience, change, now).await?;
    Ok(true)
}

/// Clears the lapse of a tenant a convention in force covers again (`covering`, the first one
/// the gate found), unless another run did. Whether it recorded.
async fn record_restored(
    state: &TenantsState,
    tenant: &Tenant,
    covering: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let Some(audience) = audience_of(state, tenant).await? else { return Ok(false) };
    let mut tx = state.store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE tenants SET coverage_lapsed_at = NULL, coverage_uncovered = NULL \
         WHERE id = $1 AND coverage_lapsed_at IS NOT NULL",
    )
    .bind(&tenant.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let since = tenant.coverage_lapsed_at.as_deref().map(french_day).unwrap_or_default();
    let message = format!(
        "de nouveau couvert : une convention en vigueur couvre chaque établissement servi (absence de convention constatée le {since})"
    );
    let summary = serde_json::json!({
        "convention": covering,
        "lapsed_at": tenant.coverage_lapsed_at,
        "uncovered": tenant.coverage_uncovered,
    });
    let notice = serde_json::json!({ "since": since });
    let change =
        Recorded { kind: "convention_restored", action: "tenants.coverage_restored", message, summary, notice };
    commit_recorded(state, tx, tenant, &audience, change, now).await?;
    Ok(true)
}

/// Who is told of a coverage change of `tenant` (read before its transaction); `None` when its
/// organisation is gone.
async fn audience_of(state: &TenantsState, tenant: &Tenant) -> Result<Option<Audience>, Problem> {
    match get_org(&state.store, &tenant.organisation.id).await? {
        Some(org) => Ok(Some(Audience::of(&state.store, org).await?)),
        None => Ok(None),
    }
}

/// A coverage change as the tenant's events, the audit log and the `tenant` mail (its event
/// is `kind`, `notice` its extra fields) record it.
struct Recorded {
    kind: &'static str,
    action: &'static str,
    message: String,
    summary: serde_json::Value,
    notice: serde_json::Value,
}

/// The tail of every coverage change: its event, audit record and notice to the people the
/// tenant concerns (`notices::notify`), written in `tx` with the change, then committed.
async fn commit_recorded(
    state: &TenantsState,
    mut tx: Tx,
    tenant: &Tenant,
    audience: &Audience,
    change: Recorded,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    event(&mut tx, &tenant.id, ACTOR, change.kind, &change.message, now).await?;
    audit::record(&mut tx, state.store.backend(), ACTOR, change.action, tenant, change.summary, now).await?;
    notices::notify(&mut tx, tenant, audience, change.kind, change.notice, now).await?;
    tx.commit().await?;
    Ok(())
}

pub fn coverage_job(state: &TenantsState, now: DateTime<Utc>) -> JobFuture<'_> {
    Box::pin(async move {
        let pass = check_coverage(state, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        if pass.failed.is_empty() {
            Ok(pass.outcome())
        } else {
            Err(anyhow::anyhow!(pass.outcome()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_names_what_changed_and_only_that() {
        let quiet = CoveragePass { examined: 3, ..Default::default() };
        assert_eq!(quiet.outcome(), "3 tenant(s) examiné(s)");
        let pass = CoveragePass {
            examined: 3,
            lapsed: vec!["a".into(), "b".into()],
            changed: vec![],
            restored: vec!["c".into()],
            failed: vec!["d".into()],
        };
        assert_eq!(
            pass.outcome(),
            "3 tenant(s) examiné(s) ; sans convention en vigueur : a, b ; de nouveau couverts : c ; vérification en échec : d"
        );
    }
}
