//! `entctl`: the ENT control plane server and its admin command line.

use clap::{Args, Parser, Subcommand};
use entcp::config::Config;
use entcp::registry::import::{import_annuaire, ImportOptions};
use entcp::registry::manage::{self, NewOrg};
use entcp::registry::queries::{self, OrgFilter};
use entcp::registry::{routes::org_detail, OrgKind};
use entcp::store::{redact, Store};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "entctl",
    version,
    about = "Plan de contrôle des ENT : organisations, conventions, tenants, support, registres RGPD",
    long_about = "entctl is both the ENT control plane server (`entctl serve`) and its admin command line.\n\
                  With no configuration at all it stores everything in ./data/entcp.db (SQLite);\n\
                  set --database-url or DATABASE_URL to postgres://... to use PostgreSQL."
)]
struct Cli {
    /// YAML configuration file (every key has a default; see `entctl config print`).
    #[arg(long, global = true, env = "ENTCP_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (sqlite://FILE or postgres://...), overrides the configuration.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API server (default 127.0.0.1:8080).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import data files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Browse and manage organisations.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the version.
    Version,
    /// Benchmarks (print figures; not tests).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import the "Annuaire de l'éducation" CSV export (';'-separated, UTF-8).
    Annuaire {
        /// The CSV file.
        file: PathBuf,
        /// Report what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// List organisations (filters combine).
    List(ListArgs),
    /// Show one organisation by id, code (UAI, INSEE...) or kind:code.
    Show { key: String },
    /// Create an EPCI, syndicat mixte, éditeur or hébergeur.
    Add {
        /// epci, syndicat_mixte, editeur or hebergeur.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        siren: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        departement: Option<String>,
    },
    /// Add a commune to an EPCI or syndicat mixte.
    AddMember {
        group: String,
        commune: String,
        /// The commune delegates its ENT (and its funding) to the group.
        #[arg(long)]
        delegated: bool,
    },
    /// Remove a commune from an EPCI or syndicat mixte.
    RemoveMember { group: String, commune: String },
}

#[derive(Args)]
struct ListArgs {
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    academie: Option<String>,
    #[arg(long)]
    departement: Option<String>,
    #[arg(long)]
    commune: Option<String>,
    /// 1D or 2D.
    #[arg(long)]
    degree: Option<String>,
    /// Search in names (accents and case ignored) or an exact code.
    #[arg(short, long)]
    q: Option<String>,
    /// Rows to show.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment).
    Print,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Import a synthetic national annuaire twice and print rows/s and peak memory.
    Import {
        /// Établissements to generate.
        #[arg(long, default_value_t = 66_000)]
        rows: usize,
        /// Communes to spread them over.
        #[arg(long, default_value_t = 35_000)]
        communes: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("erreur : {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(url) = &cli.database_url {
        config.database.url = Some(url.clone());
    }
    if let Some(format) = &cli.log_format {
        config.log.format = format.clone();
    }
    init_logging(&config);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("erreur : {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url(), config.database.max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { listen } => {
            let mut config = config;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            serve(config).await?;
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!(
                "Migrations appliquées sur {}",
                redact(&config.database_url())
            );
        }
        Command::Import(ImportCommand::Annuaire {
            file,
            dry_run,
            json,
        }) => {
            return import_file(&config, file, dry_run, json).await;
        }
        Command::Orgs(cmd) => return orgs(&config, cmd).await,
        Command::Config(ConfigCommand::Print) => print!("{}", config.to_yaml()),
        Command::Version => println!("entctl {}", env!("CARGO_PKG_VERSION")),
        Command::Bench(BenchCommand::Import { rows, communes }) => {
            entcp::bench::import(&config, rows, communes).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = config.server.listen.parse().map_err(|e| {
        anyhow::anyhow!(
            "adresse d'écoute « {} » invalide : {e}",
            config.server.listen
        )
    })?;
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "l'API n'a pas encore d'authentification : elle n'écoute que sur la boucle locale (127.0.0.1 ou ::1), pas sur {addr}"
        );
    }
    let store = open_store(&config).await?;
    let state = entcp::api::AppState {
        store: store.clone(),
        config: std::sync::Arc::new(config.clone()),
        clock: std::sync::Arc::new(entcp::clock::SystemClock),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("écoute sur {addr} impossible : {e}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        database = %redact(&config.database_url()),
        "entctl listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, entcp::api::app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

async fn import_file(
    config: &Config,
    file: PathBuf,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let handle = std::fs::File::open(&file)
        .map_err(|e| anyhow::anyhow!("ouverture de {} impossible : {e}", file.display()))?;
    let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let store = open_store(config).await?;
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    let reader = bar.wrap_read(std::io::BufReader::with_capacity(1 << 16, handle));
    let options = ImportOptions {
        dry_run,
        batch_size: config.import.batch_size,
    };
    let result = import_annuaire(&store, reader, options, chrono::Utc::now()).await;
    bar.finish_and_clear();
    let report = result.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

async fn orgs(config: &Config, command: OrgsCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let fail = |p: entcp::error::Problem| anyhow::anyhow!("{}", p.detail);
    match command {
        OrgsCommand::List(args) => {
            let filter = OrgFilter {
                kind: args.kind,
                academie: args.academie,
                departement: args.departement,
                commune: args.commune,
                degree: args.degree,
                etab_type: None,
                q: args.q,
                cursor: None,
                limit: Some(args.limit),
            };
            let page = queries::list_orgs(&store, &filter).await.map_err(fail)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                for org in &page.items {
                    println!("{:<14} {:<10} {}", org.kind.as_str(), org.code, org.name);
                }
                if page.next_cursor.is_some() {
                    println!("… (affinez la recherche ou augmentez --limit)");
                }
            }
        }
        OrgsCommand::Show { key } => {
            let org = queries::resolve_org(&store, &key).await.map_err(fail)?;
            let detail = org_detail(&store, org).await.map_err(fail)?;
            println!("{}", serde_json::to_string_pretty(&detail)?);
        }
        OrgsCommand::Add {
            kind,
            siren,
            name,
            email,
            departement,
        } => {
            let kind = OrgKind::parse(&kind)
                .ok_or_else(|| anyhow::anyhow!("type d'organisation inconnu : {kind}"))?;
            let new = NewOrg {
                kind,
                siren,
                name,
                email,
                departement,
            };
            let org = manage::create_org(&store, new, chrono::Utc::now())
                .await
                .map_err(fail)?;
            println!("{} créé : {} ({})", org.kind.label(), org.name, org.id);
        }
        OrgsCommand::AddMember {
            group,
            commune,
            delegated,
        } => {
            let group = queries::resolve_org(&store, &group).await.map_err(fail)?;
            let commune = queries::resolve_org(&store, &format!("commune:{commune}"))
                .await
                .map_err(fail)?;
            manage::set_member(&store, &group, &commune, delegated, chrono::Utc::now())
                .await
                .map_err(fail)?;
            println!("{} est membre de {}", commune.name, group.name);
        }
        OrgsCommand::RemoveMember { group, commune } => {
            let group = queries::resolve_org(&store, &group).await.map_err(fail)?;
            let commune = queries::resolve_org(&store, &format!("commune:{commune}"))
                .await
                .map_err(fail)?;
            manage::remove_member(&store, &group, &commune)
                .await
                .map_err(fail)?;
            println!("{} n'est plus membre de {}", commune.name, group.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
