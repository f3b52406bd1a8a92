//! `entctl catalog ...`: the services and bouquets as a text table or JSON.

use clap::Subcommand;
use entcp::catalog::{Bouquet, BouquetKind, Catalog, Service};
use entcp::registry::Degree;
use entcp::{out, outln};

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// List the services (shipped and from catalog_dir).
    Services {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the bouquets, every version.
    Bouquets {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(catalog: &Catalog, command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Services { json: true } => outln!("{}", serde_json::to_string_pretty(&catalog.services)?),
        CatalogCommand::Bouquets { json: true } => outln!("{}", serde_json::to_string_pretty(&catalog.bouquets)?),
        CatalogCommand::Services { json: false } => out!("{}", services_table(&catalog.services)),
        CatalogCommand::Bouquets { json: false } => out!("{}", bouquets_table(&catalog.bouquets)),
    }
    Ok(())
}

fn degrees(degrees: &[Degree]) -> String {
    if degrees.is_empty() {
        return "-".into();
    }
    degrees.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",")
}

fn services_table(services: &[Service]) -> String {
    let mut out =
        format!("{:<20} {:<34} {:<7} {:<12} {:<8} {}\n", "code", "nom", "degrés", "obligatoire", "stockage", "chemin");
    for s in services {
        let storage = if s.deployment.needs_storage() { "oui" } else { "non" };
        out += &format!(
            "{:<20} {:<34} {:<7} {:<12} {:<8} {}\n",
            s.code,
            s.name,
            degrees(&s.degrees),
            degrees(&s.mandatory_in),
            storage,
            s.deployment.ingress_path
        );
    }
    out
}

fn bouquets_table(bouquets: &[Bouquet]) -> String {
    let mut out = format!("{:<16} {:<8} {:<7} {:<7} services\n", "bouquet", "version", "type", "degrés");
    for b in bouquets {
        let kind = match b.kind {
            BouquetKind::Base => "base",
            BouquetKind::Option => "option",
        };
        out += &format!(
            "{:<16} {:<8} {:<7} {:<7} {}\n",
            b.id,
            b.version,
            kind,
            degrees(&b.degrees),
            b.services.join(", ")
        );
    }
    out
}
