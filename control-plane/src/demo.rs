//! Demo data, one flag away (`entctl serve --demo`): the real Val-de-Marne
//! sample of the Annuaire de l'éducation and the example tenants. Idempotent.

use crate::api::AppState;
use crate::identity::Actor;
use crate::registry::import::{import_annuaire, ImportOptions};

const SAMPLE_ANNUAIRE: &[u8] = include_bytes!("../tests/fixtures/annuaire-education-94-ecoles.csv");
const EXAMPLE_TENANTS: &[&str] = &[
    include_str!("../../tenants/examples/fresnes.yaml"),
    include_str!("../../tenants/examples/vitry-henri-wallon-a.yaml"),
];

/// Loads the demo data; returns a one-line summary.
pub async fn load(state: &AppState) -> anyhow::Result<String> {
    let actor = Actor { user_id: None, name: "system:demo".into(), ..Actor::cli() };
    let options = ImportOptions { batch_size: state.config.import.batch_size, ..ImportOptions::default() };
    let report =
        import_annuaire(&state.store, &actor, std::io::Cursor::new(SAMPLE_ANNUAIRE), options, state.clock.now())
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let mut tenants = 0;
    for text in EXAMPLE_TENANTS {
        let doc: crate::tenants::EntTenant = serde_yaml::from_str(text)?;
        crate::tenants::apply(state, &actor, &doc, None).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        tenants += 1;
    }
    Ok(format!(
        "données de démonstration : {} établissements du Val-de-Marne ({} créés), {tenants} tenants d'exemple",
        report.etablissements.created + report.etablissements.updated + report.etablissements.unchanged,
        report.etablissements.created
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_tenants_parse() {
        for text in super::EXAMPLE_TENANTS {
            let doc: crate::tenants::EntTenant = serde_yaml::from_str(text).unwrap();
            assert_eq!(doc.kind, crate::tenants::KIND);
        }
    }
}
