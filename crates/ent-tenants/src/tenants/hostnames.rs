//! Who may take a hostname that names a school: a label (or a part of one between hyphens)
//! that is a UAI names that établissement, and only a tenant serving it may be reached there.
//! Without it, any organisation could reserve, first come, the name another académie's school
//! would naturally get (`0440001m.ent.fr`): hostnames are unique across tenants.

use ent_kernel::error::{Checks, Problem};
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::store::Store;
use ent_platform::registry::codes::parse_uai;
use ent_platform::registry::queries::{covers_org, get_by_code};
use ent_platform::registry::Org;

/// The UAIs `hostname` names: its labels and their hyphen-separated parts that are valid
/// UAIs (check letter included), upper-case, each once, sorted.
pub fn uais_in(hostname: &str) -> Vec<String> {
    let mut uais: Vec<String> = hostname.split(['.', '-']).filter_map(|part| parse_uai(part).ok()).collect();
    uais.sort();
    uais.dedup();
    uais
}

/// Whether a tenant of `org` serves the établissement `uai`: it is that school, or a commune
/// whose écoles include it.
async fn serves(store: &Store, org: &Org, uai: &str) -> Result<bool, Problem> {
    if org.kind == OrgKind::Etablissement {
        return Ok(org.code.eq_ignore_ascii_case(uai));
    }
    match get_by_code(store, OrgKind::Etablissement, uai).await? {
        Some(school) => covers_org(store, org, &school).await,
        None => Ok(false),
    }
}

/// Fails `spec.hostname` for each UAI it names that the tenant of `org` does not serve, in the
/// same words whether that school exists, is another's or is out of the caller's scope.
pub async fn check_uais(store: &Store, org: &Org, hostname: &str, checks: &mut Checks) -> Result<(), Problem> {
    for uai in uais_in(hostname) {
        if !serves(store, org, &uai).await? {
            checks.fail(
                "spec.hostname",
                format!(
                    "« {hostname} » porte l'UAI {uai}, qui n'est pas celle d'un établissement que dessert cet ENT : \
                     un nom d'hôte ne peut nommer par son UAI que l'un de ses établissements"
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_names_the_uais_of_its_labels_and_their_parts_and_nothing_else() {
        assert_eq!(uais_in("0940176f.ent.fr"), ["0940176F"]);
        assert_eq!(uais_in("ent-0940176f.ac-creteil.fr"), ["0940176F"]);
        assert_eq!(uais_in("0940176f-0940176f.ent.fr"), ["0940176F"]);
        // A wrong check letter, a shape that is no UAI, a slug: nothing named.
        assert!(uais_in("0940176a.ent.fr").is_empty());
        assert!(uais_in("doisneau.ent.fresnes.fr").is_empty() && uais_in("94034.ent.fr").is_empty());
    }

    #[test]
    fn a_corsican_uai_is_named_as_any_other() {
        // Corse-du-Sud numbers its schools 620…, Haute-Corse 720… (`codes::uai_in_departement`):
        // digits, as everywhere, which the one UAI check (`codes::parse_uai`) reads.
        assert_eq!(uais_in("6200001g.ent.fr"), ["6200001G"]);
        assert_eq!(uais_in("ent-7200001n.ac-corse.fr"), ["7200001N"]);
        assert!(uais_in("6200001h.ent.fr").is_empty(), "a wrong check letter names none");
    }
}
