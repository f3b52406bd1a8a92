//! Demo data, one flag away (`entctl serve --demo`): the real Val-de-Marne
//! sample of the Annuaire de l'éducation and the example tenants. Idempotent.

use ent_kernel::error::Problem;
use ent_kernel::kernel::roles::OrgKind;
use ent_kernel::kernel::roles::Role;
use ent_kernel::yaml;
use ent_platform::identity::{self, Actor};
use ent_platform::registry::import::{import_annuaire, ImportOptions};
use ent_platform::registry::manage::{create_org, NewOrg};
use ent_platform::registry::queries::get_by_code;
use ent_platform::registry::{resolve_org, Org};
use ent_server::api::AppState;
use ent_tenants::tenants::{apply, set_processors, EntTenant};

const SAMPLE_ANNUAIRE: &[u8] = include_bytes!("../tests/fixtures/annuaire-education-94-ecoles.csv");
const EXAMPLE_TENANTS: &[&str] = &[
    include_str!("../../../tenants/examples/fresnes.yaml"),
    include_str!("../../../tenants/examples/vitry-henri-wallon-a.yaml"),
];

/// Loads the demo data; returns a one-line summary.
pub async fn load(state: &AppState) -> anyhow::Result<String> {
    let actor = Actor { user_id: None, name: "system:demo".into(), ..Actor::cli() };
    let options = ImportOptions::configured(&state.config.import);
    let report =
        import_annuaire(&state.store, &actor, std::io::Cursor::new(SAMPLE_ANNUAIRE), options, state.clock.now())
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let vendor = demo_org(state, &actor, OrgKind::Editeur, "900000019", "Éditeur ENT de démonstration").await?;
    let host = demo_org(state, &actor, OrgKind::Hebergeur, "900000027", "Hébergeur de démonstration").await?;
    let mut tenants = 0;
    for text in EXAMPLE_TENANTS {
        let doc: EntTenant = yaml::from_str(text)?;
        let (_, tenant) =
            apply(&state.tenants(), &actor, &doc, None).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        if tenant.vendor.is_none() || tenant.host.is_none() {
            let mut tx = state.store.begin_write().await?;
            let now = state.clock.now();
            set_processors(&mut tx, &state.store, &actor, &tenant, Some(&vendor), Some(&host), now)
                .await
                .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
            tx.commit().await?;
        }
        tenants += 1;
    }
    Ok(format!(
        "données de démonstration : {} établissements du Val-de-Marne ({} créés), {tenants} tenants d'exemple",
        report.etablissements.created + report.etablissements.updated + report.etablissements.unchanged,
        report.etablissements.created
    ))
}

/// The demo persons, one per persona: e-mail, name, role and organisation (key).
pub const PERSONAS: &[(&str, &str, Role, &str)] = &[
    ("dan@demo.ent.example.fr", "Julien Moreau, DAN de Créteil", Role::Dan, "academie:24"),
    ("mairie.fresnes@demo.ent.example.fr", "Karim Benali, mairie de Fresnes", Role::Collectivite, "commune:94034"),
    (
        "ecole.doisneau@demo.ent.example.fr",
        "Sophie Durand, directrice de l'école Robert Doisneau",
        Role::ChefEtablissement,
        "etablissement:0940176F",
    ),
];

/// Creates the demo persons (once) and gives them all `password` (every start), so that
/// the console can be tried at once; returns their e-mails.
pub async fn personas(state: &AppState, password: &str) -> anyhow::Result<Vec<&'static str>> {
    let actor = Actor { user_id: None, name: "system:demo".into(), ..Actor::cli() };
    let fail = |p: Problem| anyhow::anyhow!("{}", p.detail);
    let now = state.clock.now();
    for (email, name, role, org) in PERSONAS {
        // The platform seeds its own personas: no caller whose reading would narrow the code.
        let org = resolve_org(&state.store, org).await.map_err(fail)?;
        let user = match identity::get_user(&state.store, email).await.map_err(fail)? {
            Some(user) => user,
            None => {
                let new = identity::NewUser {
                    email: (*email).into(),
                    display_name: (*name).into(),
                    org: Some(org.id.clone()),
                };
                identity::create_user(&state.store, &actor, new, now).await.map_err(fail)?
            }
        };
        identity::grant(&state.store, &actor, identity::UserRole::new(&user.id, *role, Some(&org)), now)
            .await
            .map_err(fail)?;
        identity::password::set_password(
            &state.store,
            &actor,
            &user.id,
            password,
            identity::password::ChosenBy::Operator,
            now,
        )
        .await
        .map_err(fail)?;
    }
    Ok(PERSONAS.iter().map(|(email, ..)| *email).collect())
}

/// A fresh password for the demo persons.
pub fn demo_password() -> String {
    format!("demo-{}", &identity::sessions::random_secret()[..16])
}

/// The demo vendor or host, created once (fictitious SIREN).
async fn demo_org(state: &AppState, actor: &Actor, kind: OrgKind, siren: &str, name: &str) -> anyhow::Result<Org> {
    if let Some(org) = get_by_code(&state.store, kind, siren).await.map_err(|p| anyhow::anyhow!("{}", p.detail))? {
        return Ok(org);
    }
    let new = NewOrg { kind, siren: siren.into(), name: name.into(), email: None, departement: None };
    create_org(&state.store, actor, new, state.clock.now()).await.map_err(|p| anyhow::anyhow!("{}", p.detail))
}

#[cfg(test)]
mod tests {
    use ent_kernel::yaml;
    use ent_tenants::tenants::{self, EntTenant};

    #[test]
    fn the_example_tenants_parse() {
        for text in super::EXAMPLE_TENANTS {
            let doc: EntTenant = yaml::from_str(text).unwrap();
            assert_eq!(doc.kind, tenants::KIND);
        }
    }
}
