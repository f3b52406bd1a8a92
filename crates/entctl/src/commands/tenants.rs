//! `entctl apply -f` and `entctl tenants ...`.

use super::fail;
use clap::Subcommand;
use entcp::api::AppState;
use entcp::clock::today_in_france;
use entcp::identity::Actor;
use entcp::provisioning;
use entcp::tenants::{self, EntTenant, Move, Status};
use entcp::{errln, out, outln, yaml};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// List tenants.
    List,
    /// Show a tenant and its events.
    Show { slug: String },
    /// Move a tenant along its lifecycle (provisioning, active, suspended, decommissioning, archived).
    Transition {
        slug: String,
        to: String,
        /// Why (one line, 500 characters at most): required to suspend or decommission; told by
        /// e-mail to the people the tenant concerns.
        #[arg(long)]
        reason: Option<String>,
        /// Provision without an active convention (admin), for this reason.
        #[arg(long)]
        override_reason: Option<String>,
    },
    /// Print the Kubernetes objects of a tenant (YAML).
    Render { slug: String },
    /// Reconcile every tenant (or one): apply the objects that changed, nothing else.
    Reconcile { slug: Option<String> },
    /// Print the JSON Schema of EntTenant documents.
    Schema,
    /// Print the CustomResourceDefinition of EntTenant (YAML).
    Crd,
    /// Print the RBAC rules the `kube` backend needs (JSON: cluster and namespaced rules).
    Rbac,
}

/// The EntTenant documents of a file (several separated by `---`) or of the YAML files of a folder.
fn read_documents(path: &Path) -> anyhow::Result<Vec<(String, EntTenant)>> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = yaml::read_file(&file)?;
        for tenant in super::documents::<EntTenant>(&text, &file)? {
            docs.push((file.display().to_string(), tenant));
        }
    }
    Ok(docs)
}

/// Reconciles the tenants just changed, as the API does, and says what happened;
/// a backend failure is left to the scheduled resync (with backoff), the change itself is saved.
async fn reconcile_now(state: &AppState, slugs: &[String]) -> std::io::Result<()> {
    for slug in slugs {
        match provisioning::reconcile::pass(&state.provisioning(), Some(slug), chrono::Utc::now()).await {
            Ok(r) if r.deferred > 0 => {
                outln!("enttenant/{slug} : en attente (nouvel essai planifié, ou réconcilié par un autre processus)")
            }
            Ok(r) if r.failed == 0 => outln!("enttenant/{slug} réconcilié ({} appliqué)", r.applied),
            Ok(_) => {
                errln!("enttenant/{slug} : échec de la réconciliation, nouvel essai planifié (voir tenants show)")
            }
            Err(p) => errln!("enttenant/{slug} : réconciliation impossible : {}", p.detail),
        }
    }
    Ok(())
}

/// `kubectl apply`-like: each document is created, configured or unchanged.
pub async fn apply(state: &AppState, path: &Path) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut changed = Vec::new();
    for (file, doc) in read_documents(path)? {
        match tenants::apply(&state.tenants(), &Actor::cli(), &doc, None).await {
            Ok((result, tenant)) => {
                outln!("enttenant/{} {}", doc.metadata.name, serde_json::to_value(result)?.as_str().unwrap_or(""));
                let today = today_in_france(state.clock.now());
                match tenants::market_warnings(&state.store, &tenant, today).await {
                    Ok(warnings) => warnings.iter().for_each(|w| errln!("enttenant/{} : {w}", doc.metadata.name)),
                    Err(p) => errln!("enttenant/{} : {}", doc.metadata.name, p.detail),
                }
                if result != tenants::Applied::Unchanged {
                    changed.push(doc.metadata.name.clone());
                }
            }
            Err(p) => {
                failed = true;
                errln!("enttenant/{} ({file}) : {}", doc.metadata.name, p.detail);
            }
        }
    }
    reconcile_now(state, &changed).await?;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

impl TenantsCommand {
    /// The commands that print a definition of the code and need no database.
    pub fn is_definition(&self) -> bool {
        matches!(self, TenantsCommand::Schema | TenantsCommand::Crd | TenantsCommand::Rbac)
    }
}

/// Prints the schema, the CRD or the RBAC rules (the terraform module's inputs).
pub fn print_definition(command: &TenantsCommand) -> anyhow::Result<()> {
    match command {
        TenantsCommand::Schema => outln!("{}", serde_json::to_string_pretty(&tenants::json_schema())?),
        TenantsCommand::Crd => out!("{}", yaml::to_string(&tenants::crd())?),
        TenantsCommand::Rbac => outln!("{}", serde_json::to_string_pretty(&provisioning::kube::rbac())?),
        _ => anyhow::bail!("pas une définition"),
    }
    Ok(())
}

pub async fn run(state: &AppState, command: TenantsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TenantsCommand::List => {
            for t in tenants::list_tenants(&state.store, None).await.map_err(fail)? {
                outln!(
                    "{:<28} {:<15} {:<40} {} + [{}]",
                    t.slug,
                    t.status.as_str(),
                    t.hostname,
                    t.bouquet,
                    t.options.join(", ")
                );
            }
        }
        TenantsCommand::Show { slug } => {
            let tenant = tenants::get_tenant(&state.store, &slug)
                .await
                .map_err(fail)?
                .ok_or_else(|| anyhow::anyhow!("aucun tenant « {slug} »"))?;
            outln!("{}", serde_json::to_string_pretty(&tenant)?);
            for e in tenants::events(&state.store, &tenant.id).await.map_err(fail)? {
                outln!("{} {:<16} {:<24} {}", e.at, e.kind, e.actor, e.message);
            }
        }
        TenantsCommand::Transition { slug, to, reason, override_reason } => {
            let to = Status::parse(&to).ok_or_else(|| anyhow::anyhow!("état inconnu : {to}"))?;
            let tenant = tenants::get_tenant(&state.store, &slug)
                .await
                .map_err(fail)?
                .ok_or_else(|| anyhow::anyhow!("aucun tenant « {slug} »"))?;
            let step = Move { to, reason: reason.as_deref(), override_reason: override_reason.as_deref() };
            let moved = tenants::transition(&state.tenants(), &Actor::cli(), &tenant, step).await.map_err(fail)?;
            outln!("enttenant/{} {}", moved.slug, moved.status.as_str());
            reconcile_now(state, &[moved.slug]).await?;
        }
        TenantsCommand::Render { slug } => {
            let tenant = tenants::get_tenant(&state.store, &slug)
                .await
                .map_err(fail)?
                .ok_or_else(|| anyhow::anyhow!("aucun tenant « {slug} »"))?;
            out!("{}", provisioning::to_yaml(&tenants::render(&state.tenants(), &tenant).await.map_err(fail)?));
        }
        TenantsCommand::Reconcile { slug } => {
            let r = provisioning::reconcile::pass(&state.provisioning(), slug.as_deref(), chrono::Utc::now())
                .await
                .map_err(fail)?;
            outln!(
                "{} tenant(s) : {} appliqué(s), {} inchangé(s), {} en échec, {} en attente",
                r.tenants,
                r.applied,
                r.unchanged,
                r.failed,
                r.deferred
            );
            if r.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        TenantsCommand::Schema | TenantsCommand::Crd | TenantsCommand::Rbac => print_definition(&command)?,
    }
    Ok(ExitCode::SUCCESS)
}
