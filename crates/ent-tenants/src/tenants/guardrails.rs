//! The configured guardrails (`provisioning.guardrails`), checked at `apply`: bounds on
//! `accounts` per kind of school with the DAN's approval above a threshold, hostname
//! suffixes per académie or collectivité, storage classes and image registries.

use ent_kernel::config::{AccountBounds, ClusterConfig, GuardrailsConfig};
use ent_kernel::error::{Checks, Problem, ProblemKind};
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::store::Store;
use ent_platform::catalog::Service;
use ent_platform::identity::authz::in_org_scope;
use ent_platform::identity::Actor;
use ent_platform::registry::{EtabType, Org};

/// The kind of school the bounds on `accounts` are set for, with its French name.
fn school_kind(org: &Org) -> Option<(&'static str, &'static str)> {
    if org.kind == OrgKind::Commune {
        return Some(("commune", "une commune"));
    }
    Some(match org.etab_type? {
        EtabType::EcoleMaternelle | EtabType::EcoleElementaire | EtabType::EcolePrimaire => ("ecole", "une école"),
        EtabType::College => ("college", "un collège"),
        EtabType::Lycee | EtabType::LyceeProfessionnel | EtabType::Erea => ("lycee", "un lycée"),
    })
}

/// The organisation keys (`academie:24`, `commune:94034`, …) a hostname rule may name.
fn org_keys(org: &Org) -> Vec<String> {
    let commune = if org.kind == OrgKind::Commune { Some(&org.code) } else { org.commune_code.as_ref() };
    let codes = [
        ("academie", org.academie_code.as_ref()),
        ("region", org.region_code.as_ref()),
        ("departement", org.departement_code.as_ref()),
        ("commune", commune),
    ];
    let mut keys: Vec<String> = codes.iter().filter_map(|(k, c)| Some(format!("{k}:{}", (*c)?))).collect();
    keys.push("*".into());
    keys
}

/// Whether `hostname` is `suffix` or a name under it (on a label boundary).
fn under(hostname: &str, suffix: &str) -> bool {
    let suffix = suffix.trim_start_matches('.').to_ascii_lowercase();
    let hostname = hostname.to_ascii_lowercase();
    hostname == suffix || hostname.ends_with(&format!(".{suffix}"))
}

/// Who applies a change, as far as the DAN's approval above the threshold goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approver {
    /// A platform administrator, or a DAN whose scope contains the tenant's organisation.
    Yes,
    /// Anyone else: a collectivité, a DAN of another académie (whatever else it holds).
    No,
    /// A custom resource (the operator), whoever applied it to the cluster: never an approval.
    Resource,
}

/// Whether the actor approves a change to a tenant of `org`: a platform administrator, or a
/// DAN whose scope contains `org`. A `dan` binding elsewhere approves nothing here, even
/// when another role of the actor lets it write the tenant.
pub async fn approves(store: &Store, actor: &Actor, org: &Org) -> Result<bool, Problem> {
    for binding in &actor.bindings {
        let approves = match (binding.role, &binding.org) {
            (Role::Admin, _) => true,
            (Role::Dan, Some(scope)) => in_org_scope(store, scope, org).await?,
            _ => false,
        };
        if approves {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a tenant asks for, against the guardrails.
pub struct Request<'a> {
    pub org: &'a Org,
    pub hostname: &'a str,
    pub accounts: i64,
    /// The accounts the tenant has now (none: a new tenant).
    pub current_accounts: Option<i64>,
    pub services: &'a [&'a Service],
    /// The field of the document that brings a service (by code): `spec.bouquet` or
    /// `spec.options[i]`, named by a refusal about that service.
    pub field_of: &'a dyn Fn(&str) -> String,
}

/// An approval the change needed and the actor gave: audited with the change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Approval {
    pub accounts: i64,
    pub approval_above: i64,
}

fn accounts_checks(
    bounds: Option<(&AccountBounds, &str)>,
    request: &Request,
    approver: Approver,
    checks: &mut Checks,
) -> Result<Option<Approval>, Problem> {
    let Some((bounds, kind)) = bounds else { return Ok(None) };
    if request.accounts > bounds.max {
        let max = bounds.max;
        checks.fail("spec.accounts", format!("au plus {max} comptes pour {kind} (garde-fou de la plateforme)"));
        return Ok(None);
    }
    let changed = request.current_accounts != Some(request.accounts);
    if !changed || request.accounts <= bounds.approval_above {
        return Ok(None);
    }
    let threshold = bounds.approval_above;
    let refusal = match approver {
        Approver::Yes => None,
        Approver::No => Some(format!(
            "plus de {threshold} comptes pour {kind} : la DAN doit approuver ce changement en l'appliquant elle-même"
        )),
        Approver::Resource => Some(format!(
            "plus de {threshold} comptes pour {kind} : l'accord de la DAN ne se donne que par l'API ou la console, \
             une ressource EntTenant ne le vaut pas ; déclarez au plus {threshold} comptes"
        )),
    };
    if let Some(detail) = refusal {
        return Err(Problem::new(ProblemKind::Forbidden, detail));
    }
    Ok(Some(Approval { accounts: request.accounts, approval_above: bounds.approval_above }))
}

/// Checks the request; the approval it needed, if any. Every broken rule is named.
pub fn check(
    config: &GuardrailsConfig,
    cluster: &ClusterConfig,
    request: &Request,
    approver: Approver,
) -> Result<Option<Approval>, Problem> {
    let mut checks = Checks::default();
    let bounds = school_kind(request.org).and_then(|(key, kind)| Some((config.accounts.get(key)?, kind)));
    let approval = accounts_checks(bounds, request, approver, &mut checks)?;
    let suffixes: Vec<&String> =
        org_keys(request.org).iter().filter_map(|k| config.hostname_suffixes.get(k)).flatten().collect();
    if !suffixes.is_empty() && !suffixes.iter().any(|s| under(request.hostname, s)) {
        let allowed: Vec<&str> = suffixes.iter().map(|s| s.as_str()).collect();
        checks.fail(
            "spec.hostname",
            format!("« {} » n'est sous aucun suffixe autorisé : {}", request.hostname, allowed.join(", ")),
        );
    }
    let needs_storage = request.services.iter().find(|s| s.deployment.needs_storage());
    if let (Some(service), false) = (needs_storage, config.storage_classes.is_empty()) {
        let class = cluster.storage_class.as_deref().unwrap_or("(classe par défaut du cluster)");
        if !config.storage_classes.iter().any(|c| c == class) {
            checks.fail(
                &(request.field_of)(&service.code),
                format!(
                    "classe de stockage « {class} » non autorisée (autorisées : {})",
                    config.storage_classes.join(", ")
                ),
            );
        }
    }
    if !config.registries.is_empty() {
        for service in request.services {
            let image = &service.deployment.image;
            let allowed = config.registries.iter().any(|r| image.starts_with(&format!("{}/", r.trim_end_matches('/'))));
            if !allowed {
                checks.fail(
                    &(request.field_of)(&service.code),
                    format!("service {} : image « {image} » hors des registres autorisés", service.code),
                );
            }
        }
    }
    checks.finish()?;
    Ok(approval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_is_under_a_suffix_on_a_label_boundary() {
        assert!(under("doisneau.ent.ac-creteil.fr", ".ent.ac-creteil.fr"));
        assert!(under("Doisneau.ENT.ac-creteil.fr", "ent.ac-creteil.fr"));
        assert!(!under("doisneau.evil-ent.ac-creteil.fr.example.com", "ent.ac-creteil.fr"));
        assert!(!under("xent.ac-creteil.fr", "ent.ac-creteil.fr"));
    }
}
