//! The services a tenant runs against the Art. 28 annex signed with each convention in force
//! that covers it (domain review 41, F1). The collectivité that configures an ENT is the
//! controller's processor: it acts only on the controller's documented instructions (art. 28.3.a
//! RGPD), which for an ENT are the services that annex lists. A service the annex leaves out is
//! said (`warnings` of the API's answers, the console's tenant page), and its addition is told to
//! the controller's DPOs and the académie's DAN ([`notify`]); one whose data are sensitive
//! (art. 9 or 10) is not deployed before an avenant covers it ([`refusal`]).

use super::{gate, TenantsState};
use chrono::{DateTime, Utc};
use ent_conventions::conventions::processing::sensitive_article;
use ent_conventions::conventions::workflow::controller_dpos;
use ent_conventions::conventions::{frozen, get_convention, Convention};
use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::store::Tx;
use ent_kernel::text::capitalised;
use ent_ops::notify::Notice;
use ent_platform::catalog::Catalog;
use ent_platform::identity::authz::users_with_role;
use ent_platform::identity::{shown_actor, Actor};
use ent_platform::registry::Org;
use serde_json::json;

/// A convention in force covering a tenant whose signed annex leaves out some of its services.
pub struct Gap {
    pub convention: Convention,
    /// The catalog codes of the services left out, in the tenant's order.
    pub codes: Vec<String>,
}

/// The catalog codes of the services a bouquet and its options resolve to (none when the
/// catalog no longer resolves them: nothing to compare).
pub fn services_of(catalog: &Catalog, bouquet: &str, options: &[String]) -> Vec<String> {
    let refs: Vec<&str> = options.iter().map(String::as_str).collect();
    catalog.resolve(bouquet, &refs).map(|s| s.into_iter().map(|s| s.code.clone()).collect()).unwrap_or_default()
}

/// The services of `codes` (those a tenant of `org_id` runs or is to run) that the signed annex of
/// each convention in force covering it ([`gate`]) does not list ([`among`]).
pub async fn gaps(state: &TenantsState, org_id: &str, codes: &[String]) -> Result<Vec<Gap>, Problem> {
    let (covering, _) = gate(state, org_id).await?;
    among(state, &covering, codes).await
}

/// The services of `codes` that the signed annex of each of the conventions `covering` does not
/// list ([`frozen::signed_annex_codes`], as the RGPD registers read it). A convention without
/// frozen text, or whose text has no annex, binds no list: nothing is said of it, as the
/// registers take its contract as covering the whole.
pub async fn among(state: &TenantsState, covering: &[String], codes: &[String]) -> Result<Vec<Gap>, Problem> {
    if covering.is_empty() || codes.is_empty() {
        return Ok(Vec::new());
    }
    let annexes = frozen::signed_annex_codes(&mut *state.store.conn().await?, &state.catalog, covering).await?;
    let mut out = Vec::new();
    for id in covering {
        let Some(listed) = annexes.get(id) else { continue };
        let outside: Vec<String> = codes.iter().filter(|c| !listed.contains(c)).cloned().collect();
        if outside.is_empty() {
            continue;
        }
        if let Some(convention) = get_convention(&state.store, &state.models, id).await? {
            out.push(Gap { convention, codes: outside });
        }
    }
    Ok(out)
}

/// The service `code` as a sentence names it: « le service « Visioconférence » ».
fn service_named(catalog: &Catalog, code: &str) -> String {
    let name = catalog.service(code).map_or(code, |s| s.name.as_str());
    format!("le service « {name} »")
}

/// The services of `codes` as a sentence names them: « le service « Visioconférence » », « les
/// services « Visioconférence » et « Pad collaboratif » ».
fn services_named(catalog: &Catalog, codes: &[String]) -> String {
    let names: Vec<String> =
        codes.iter().map(|c| format!("« {} »", catalog.service(c).map_or(c.as_str(), |s| s.name.as_str()))).collect();
    match names.as_slice() {
        [one] => format!("le service {one}"),
        [head @ .., last] => format!("les services {} et {last}", head.join(", ")),
        [] => String::new(),
    }
}

/// The annex of `conv` as said to `actor`: by its reference to whom reads the convention
/// ([`Convention::reference_for`]), else without it (no oracle on a convention not read).
fn annex_of(conv: &Convention, actor: &Actor) -> String {
    match conv.reference_for(actor) {
        Some(reference) => format!("l'annexe de l'article 28 de la convention {reference}"),
        None => "l'annexe de l'article 28 de la convention en vigueur (que vous ne consultez pas)".into(),
    }
}

/// One warning per service a gap leaves out, in French, for `actor`, a sentence as the
/// conventions' warnings are: « Le service « Visioconférence » n'est pas couvert par l'annexe de
/// l'article 28 de la convention CONV-2026-000002 : un avenant doit l'y ajouter. »
pub fn warnings(catalog: &Catalog, gaps: &[Gap], actor: &Actor) -> Vec<String> {
    let mut out = Vec::new();
    for gap in gaps {
        let annex = annex_of(&gap.convention, actor);
        for code in &gap.codes {
            let warning = format!(
                "{} n'est pas couvert par {annex} : un avenant doit l'y ajouter.",
                capitalised(&service_named(catalog, code))
            );
            if !out.contains(&warning) {
                out.push(warning);
            }
        }
    }
    out
}

/// The article of the RGPD (9 or 10) under which the service `code` processes sensitive data
/// (the first category the catalog flags `sensitive`), if it does.
fn sensitive(catalog: &Catalog, code: &str) -> Option<u8> {
    let data = &catalog.service(code)?.rgpd.personal_data;
    data.iter().find(|d| d.sensitive).map(|d| sensitive_article(&d.category))
}

/// The catalog codes, among the gaps, of the services that process sensitive data.
pub fn sensitive_codes(catalog: &Catalog, gaps: &[Gap]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for code in gaps.iter().flat_map(|g| &g.codes) {
        if sensitive(catalog, code).is_some() && !out.contains(code) {
            out.push(code.clone());
        }
    }
    out
}

/// The 409 that keeps the services of the gaps that process sensitive data (art. 9 or 10) out
/// of the ENT until an avenant adds them to the annex, in the words of the coverage gate;
/// `how_else` closes it (the override a transition allows). `None` when no such service is left out.
pub fn refusal(catalog: &Catalog, gaps: &[Gap], actor: &Actor, how_else: &str) -> Option<Problem> {
    let mut said = Vec::new();
    let mut codes = Vec::new();
    for gap in gaps {
        for code in &gap.codes {
            let Some(article) = sensitive(catalog, code) else { continue };
            codes.push(code.clone());
            said.push(format!(
                "{} traite des données sensibles (article {article} du RGPD) que {} ne couvre pas",
                service_named(catalog, code),
                annex_of(&gap.convention, actor)
            ));
        }
    }
    if said.is_empty() {
        return None;
    }
    let references: Vec<&str> = gaps.iter().filter_map(|g| g.convention.reference_for(actor)).collect();
    let detail = format!("{} : un avenant doit l'y ajouter avant que l'ENT ne le déploie{how_else}", said.join(" ; "));
    Some(Problem::conflict(detail).with_extra(json!({
        "missing": "annex", "services": codes, "conventions": references,
    })))
}

/// The people told that a tenant runs services a convention's signed annex does not list: the
/// DPOs who keep the register of its controller ([`controller_dpos`]) and the DANs of its
/// académie party.
async fn recipients(tx: &mut Tx, conv: &Convention) -> Result<Vec<String>, Problem> {
    let mut emails = controller_dpos(tx, conv).await?;
    for party in conv.parties.iter().filter(|p| p.org.kind == OrgKind::Academie) {
        emails.extend(users_with_role(tx, &party.org.id, Role::Dan.as_str()).await?);
    }
    Ok(emails)
}

/// What a notice says of the tenant: its id (its event), slug, hostname and organisation.
pub struct Subject<'a> {
    pub id: &'a str,
    pub slug: &'a str,
    pub hostname: &'a str,
    pub org: &'a Org,
}

/// Queues, in the caller's transaction, the `annex_gap` notice of each gap (the services of the
/// tenant its convention's signed annex does not list, added by `actor`) to its [`recipients`],
/// one e-mail each, and writes it in the tenant's events (without the convention's reference,
/// which not every reader of the tenant reads).
pub async fn notify(
    tx: &mut Tx,
    catalog: &Catalog,
    subject: &Subject<'_>,
    gaps: &[Gap],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let served = naming::of_org(subject.org.kind, &naming::display_name(&subject.org.name)).of;
    for gap in gaps {
        let recipients = recipients(tx, &gap.convention).await?;
        Notice::event("tenant", recipients, "annex_gap")
            .with(json!({
                "slug": subject.slug, "hostname": subject.hostname, "organisation": subject.org.name,
                "served": served, "convention": gap.convention.reference,
                "services": services_named(catalog, &gap.codes), "several": gap.codes.len() > 1,
                "sensitive": !sensitive_codes(catalog, std::slice::from_ref(gap)).is_empty(), "by": shown_actor(&actor.name),
            }))
            .page(format!("/ent/{}", subject.slug))
            .enqueue(tx, now)
            .await?;
        let message = format!(
            "{} : hors de l'annexe de l'article 28 signée avec la convention qui couvre l'ENT ; DPO du responsable de \
             traitement et DAN prévenus",
            capitalised(&services_named(catalog, &gap.codes))
        );
        super::event(tx, subject.id, &actor.name, "annex_gap", &message, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_named_as_the_catalog_names_them() {
        let catalog = Catalog::load(None).unwrap();
        let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(services_named(&catalog, &codes(&["visio"])), "le service « Visioconférence »");
        assert_eq!(
            services_named(&catalog, &codes(&["visio", "pad", "exercices"])),
            "les services « Visioconférence », « Pad collaboratif » et « Exercices et parcours (Moodle) »"
        );
        assert_eq!(sensitive(&catalog, "vie-scolaire"), Some(9));
        assert_eq!(sensitive(&catalog, "visio"), None);
    }
}
