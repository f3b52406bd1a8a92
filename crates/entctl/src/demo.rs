//! Demo data, one flag away (`entctl serve --demo`): the real Val-de-Marne
//! sample of the Annuaire de l'éducation and the example tenants. Idempotent.

use ent_kernel::kernel::roles::OrgKind;
use ent_platform::identity::Actor;
use ent_platform::registry::import::{import_annuaire, ImportOptions};
use ent_platform::registry::manage::{create_org, NewOrg};
use ent_platform::registry::queries::get_by_code;
use ent_platform::registry::Org;
use ent_server::api::AppState;

const SAMPLE_ANNUAIRE: &[u8] = include_bytes!("../tests/fixtures/annuaire-education-94-ecoles.csv");
const EXAMPLE_TENANTS: &[&str] = &[
    include_str!("../../../tenants/examples/fresnes.yaml"),
    include_str!("../../../tenants/examples/vitry-henri-wallon-a.yaml"),
];

/// Loads the demo data; returns a one-line summary.
pub async fn load(state: &AppState) -> anyhow::Result<String> {
    let actor = Actor { user_id: None, name: "system:demo".into(), ..Actor::cli() };
    let options = ImportOptions { batch_size: state.config.import.batch_size, ..ImportOptions::default() };
    let report =
        import_annuaire(&state.store, &actor, std::io::Cursor::new(SAMPLE_ANNUAIRE), options, state.clock.now())
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let vendor = demo_org(state, &actor, OrgKind::Editeur, "900000019", "Éditeur ENT de démonstration").await?;
    let host = demo_org(state, &actor, OrgKind::Hebergeur, "900000027", "Hébergeur de démonstration").await?;
    let mut tenants = 0;
    for text in EXAMPLE_TENANTS {
        let doc: ent_tenants::tenants::EntTenant = ent_kernel::yaml::from_str(text)?;
        let (_, tenant) = ent_tenants::tenants::apply(&state.tenants(), &actor, &doc, None)
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        if tenant.vendor.is_none() || tenant.host.is_none() {
            let mut tx = state.store.begin_write().await?;
            let now = state.clock.now();
            ent_tenants::tenants::set_processors(
                &mut tx,
                &state.store,
                &actor,
                &tenant,
                Some(&vendor),
                Some(&host),
                now,
            )
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
    #[test]
    fn the_example_tenants_parse() {
        for text in super::EXAMPLE_TENANTS {
            let doc: ent_tenants::tenants::EntTenant = ent_kernel::yaml::from_str(text).unwrap();
            assert_eq!(doc.kind, ent_tenants::tenants::KIND);
        }
    }
}
