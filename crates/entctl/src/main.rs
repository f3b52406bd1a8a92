//! `entctl`: the ENT control plane server and its admin command line.

use clap::{Args, Parser, Subcommand};
use entcp::api::job_routes::list_jobs;
use entcp::api::metrics::refresh_until;
use entcp::api::scheduler::{run_now, Scheduler};
use entcp::api::shutdown::{release_at_exit, serve_until};
use entcp::api::{self, AppState};
use entcp::catalog::Catalog;
use entcp::clock::{french_moment, SystemClock};
use entcp::config::{Config, MailTransport, ProvisioningBackend};
use entcp::console::oidc::ConsoleOidc;
use entcp::console::signin::setup_link;
use entcp::conventions::model::load_models;
use entcp::conventions::processing;
use entcp::error::Problem;
use entcp::jobs::{runner_id, JobRun};
use entcp::kernel::roles::OrgKind;
use entcp::naming;
use entcp::notify::mailer::mail_dir;
use entcp::notify::{self, OutboxFilter};
use entcp::provisioning::runtime::Reconciler;
use entcp::provisioning::watch::watch_deployments;
use entcp::provisioning::{self, backend, lease, reconcile};
use entcp::registry::import::{import_annuaire, ImportOptions};
use entcp::registry::manage::{self, NewOrg};
use entcp::registry::queries::{self, OrgFilter};
use entcp::registry::routes::org_detail;
use entcp::support::policy::Policies;
use entcp::{audit, backup, bench, demo, errln, migrate, out, outln, output};
mod commands;

use commands::identity::{AdminCommand, AuditCommand, RolesCommand, TokensCommand, UsersCommand, FIRST_ADMIN};
use entcp::identity::{self, Actor};
use entcp::store::{self, redact, Store};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: a first import's parser thread spent about half
/// its time in glibc's `malloc` and `free` (strings and records built per row, freed by another
/// thread). `entctl bench import` shows the difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Load demo data first: the Val-de-Marne annuaire sample and example tenants.
        #[arg(long)]
        demo: bool,
    },
    /// Run the EntTenant operator: watch the EntTenant custom resources of the cluster
    /// (provisioning.kube) and reconcile their tenants, writing their status.
    Operator,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import data files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Browse and manage organisations.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Scheduled jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// E-mail.
    #[command(subcommand)]
    Mail(MailCommand),
    /// The e-mail outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Conventions: models, drafts, signatures, documents.
    #[command(subcommand)]
    Conventions(commands::conventions::ConventionsCommand),
    /// Groupements de commandes: applications, documents, award, shares, DECP.
    #[command(subcommand)]
    Groupements(commands::groupements::GroupementsCommand),
    /// The service catalog and bouquets.
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// ENT tenants: list, show, lifecycle, schema.
    #[command(subcommand)]
    Tenants(commands::tenants::TenantsCommand),
    /// Support desk: tickets, escalations, SLA sweep, reports, policies, contracts.
    #[command(subcommand)]
    Support(commands::support::SupportCommand),
    /// RGPD registers (Art. 30), snapshots and diffs, breach and request logs.
    #[command(subcommand)]
    Rgpd(commands::rgpd::RgpdCommand),
    /// Create or update tenants from EntTenant YAML documents (a file or a folder).
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Users of the API and the console.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Role bindings (a role at an organisation).
    #[command(subcommand)]
    Roles(RolesCommand),
    /// API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Platform administration.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a consistent, checksummed archive of the database and the data folder.
    Backup { file: PathBuf },
    /// Restore an archive of `entctl backup` into an empty database.
    Restore { file: PathBuf },
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
enum JobsCommand {
    /// List the jobs, their schedule (Europe/Paris time) and their last run.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a job now, whatever its schedule.
    Run { name: String },
}

#[derive(Subcommand)]
enum MailCommand {
    /// Queue the test e-mail and send it right away with the configured transport.
    Test {
        /// Recipient address.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// List queued, sent and failed e-mails, newest first.
    List {
        /// pending, sending, sent or failed.
        #[arg(long)]
        status: Option<String>,
        /// Rows to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put back in the queue the messages left `sending` by a sender that died (lease run out).
    Release {
        /// Also those whose lease still runs: only when no sender is running.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment).
    Print,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Import a synthetic national annuaire three times (the last with its lock renewed every
    /// second) and print rows/s, the lock's renewals, a DAN's pre-read and peak memory.
    Import {
        /// Établissements to generate.
        #[arg(long, default_value_t = 66_000, value_parser = at_least_one())]
        rows: usize,
        /// Communes to spread them over.
        #[arg(long, default_value_t = 35_000, value_parser = at_least_one())]
        communes: usize,
    },
    /// A groupement de commandes of N communes: applications, acceptances, documents, award, shares.
    Groupement {
        #[arg(long, default_value_t = 460, value_parser = at_least_one())]
        communes: usize,
    },
    /// Reconcile N tenants twice (manifests backend): a first pass, then a no-op pass.
    Reconcile {
        #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
        tenants: usize,
    },
    /// Time the SLA sweep and the support reports over N open tickets.
    Support {
        #[arg(long, default_value_t = 100_000, value_parser = at_least_one())]
        tickets: usize,
        #[arg(long, default_value_t = 5_000, value_parser = at_least_one())]
        tenants: usize,
    },
    /// Check the convention coverage of N running tenants (communes and their écoles, collèges):
    /// the gate asked question by question, then from one pass memo, then the `tenants-coverage` pass.
    Coverage {
        #[arg(long, default_value_t = 5_000, value_parser = at_least_one())]
        tenants: usize,
    },
    /// Derive the register of an académie with N tenants of 12 services and export it in every format.
    Rgpd {
        #[arg(long, default_value_t = 4_000, value_parser = at_least_one())]
        tenants: usize,
    },
    /// National sizes on PostgreSQL (66k établissements, 30k tenants, 1M tickets, 10M audit records):
    /// generation, reconcile, SLA sweep, register, route latencies, database size.
    National {
        /// Multiplies every size (0.1 for a quick try).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// At most this many seconds of load per route.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// At most this many requests per route.
        #[arg(long, default_value_t = 4000, value_parser = at_least_one())]
        requests: usize,
    },
    /// HTTP reads over loopback (SQLite, and PostgreSQL when a URL is given): /healthz, the org list, one org.
    Read {
        /// Établissements of the synthetic annuaire served.
        #[arg(long, default_value_t = 20_000, value_parser = at_least_one())]
        etablissements: usize,
        #[arg(long, default_value_t = 16, value_parser = at_least_one())]
        connections: usize,
        /// Requests per route at most.
        #[arg(long, default_value_t = 20_000, value_parser = at_least_one())]
        requests: usize,
        /// Seconds per route at most.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// p50/p95 of the web console's list pages (50 rows, and searches) on the demo data, as admin and as DAN.
    Console {
        /// Requests per page and person.
        #[arg(long, default_value_t = 200, value_parser = at_least_one())]
        requests: usize,
    },
    /// Ticket creations and comments by 1×, 3× and 10× the pool size of concurrent writers.
    Write {
        /// Writes per writer.
        #[arg(long, default_value_t = 10, value_parser = at_least_one())]
        per_writer: usize,
        /// Seconds per level at most.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

/// A count that must be at least 1 (a bench of nothing measures nothing and fails late).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// The exit code of every configuration error, whatever its source: the file, the environment,
/// a flag (clap's own refusals exit with 2 too), or a file of a folder it names.
const CONFIGURATION_ERROR: u8 = 2;

/// The exit code of an annuaire import that refused some lines and imported the others.
const PARTIAL_IMPORT: u8 = 3;

fn main() -> ExitCode {
    entcp::release::set_version(entcp::VERSION);
    let cli = Cli::parse();
    let config = match configuration(&cli) {
        Ok(config) => config,
        Err(e) => return configuration_error(&e),
    };
    init_logging(&config);
    let vars =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().unwrap_or_default())));
    for variable in config.unknown_env(vars) {
        tracing::warn!(%variable, "unknown ENTCP_ environment variable ignored (a typo?): its default stays in force");
    }
    let catalog = match configured_files(&config) {
        Ok(catalog) => catalog,
        Err(e) => return configuration_error(&e),
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if matches!(cli.command, Command::Serve { .. } | Command::Operator) {
        if let Err(e) = runtime.block_on(provisioning_backend(&config)) {
            return configuration_error(&e);
        }
    }
    match runtime.block_on(run(cli.command, config, catalog)) {
        Ok(code) => code,
        // `entctl orgs list | head`: the reader has what it wanted.
        Err(e) if output::is_closed_pipe(&e) => ExitCode::from(output::CLOSED_PIPE),
        // A SQLite file the process cannot write is the deployment's to fix, as a configuration.
        Err(e) if e.downcast_ref::<store::UnusableDatabaseFile>().is_some() => configuration_error(&e),
        Err(e) => {
            errln!("erreur : {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration: defaults, file, environment, then the flags that override it
/// (`--database-url`, `--log-format`, `serve --listen`), checked as a whole.
fn configuration(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    api::jobs::configure(&mut config)?;
    if let Some(url) = &cli.database_url {
        config.database.url = Some(url.clone());
    }
    if let Some(format) = &cli.log_format {
        config.log.format = format.clone();
    }
    if let Command::Serve { listen: Some(listen), .. } = &cli.command {
        config.server.listen = listen.clone();
    }
    config.validate()?;
    Ok(config)
}

/// What the configuration names, refused at start rather than later (`serve` built its state
/// after migrating and creating the first admin): the files of the convention models, the
/// service catalog (returned), the support policies, and the OpenID Connect client (its
/// URLs as the client reads them, its secret).
fn configured_files(config: &Config) -> anyhow::Result<Catalog> {
    load_models(config.conventions_dir.as_deref())?;
    let catalog = Catalog::load(config.catalog_dir.as_deref())?;
    Policies::load(config.support_dir.as_deref())?;
    ConsoleOidc::new(config).map_err(|p| anyhow::anyhow!(p.detail))?;
    Ok(catalog)
}

/// The provisioning backend `serve` and `operator` write with, built at start: a kubeconfig,
/// a context or an in-cluster account, a sealing certificate that cannot be read is a
/// configuration error, not a warning in the logs of every pass. Whether the cluster answers
/// is known only when a pass asks it (counted in `entcp_reconcile_errors_total`).
async fn provisioning_backend(config: &Config) -> anyhow::Result<()> {
    let reconciler = std::sync::Arc::new(Reconciler::new(&config.provisioning.reconcile));
    backend::Backend::from_config(config, &reconciler)
        .await
        .map(drop)
        .map_err(|e| anyhow::anyhow!("provisioning.backend : {e}"))
}

/// A configuration error on standard error, and its exit code.
fn configuration_error(e: &anyhow::Error) -> ExitCode {
    errln!("erreur : {e:#}");
    ExitCode::from(CONFIGURATION_ERROR)
}

fn init_logging(config: &Config) {
    let from_env = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV).ok();
    let filter = from_env
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(log_targets(&directives)).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(log_targets(&config.log.level)));
    // A log line standard error no longer takes (closed, a broken pipe) is lost, never reported
    // with `eprintln!`, which would panic and hide the command's exit status.
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The crates of the control plane, as `tracing` names them in targets.
const LOG_CRATES: [&str; 13] = [
    "entcp",
    "entctl",
    "ent_kernel",
    "ent_documents",
    "ent_platform",
    "ent_ops",
    "ent_conventions",
    "ent_tenants",
    "ent_support",
    "ent_rgpd",
    "ent_groupements",
    "ent_server",
    "ent_testkit",
];

/// `entcp` in a log filter names the whole control plane, as when it was one crate:
/// `entcp=debug` becomes that directive for every crate of the workspace, and
/// `entcp::support=debug` the same module path under each of them.
fn log_targets(directives: &str) -> String {
    directives
        .split(',')
        .flat_map(|directive| match directive.strip_prefix("entcp") {
            Some(rest) if rest.is_empty() || rest.starts_with(['=', ':', '[']) => {
                LOG_CRATES.iter().map(|krate| format!("{krate}{rest}")).collect()
            }
            _ => vec![directive.to_string()],
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect_with(&config.database_url(), config.database.pool_options()).await?;
    if !newer_schema(&store).await {
        migrate(&store, config.catalog_dir.as_deref()).await?;
    }
    Ok(store)
}

/// Whether the database's schema is newer than this entctl's, said in the log: a previous
/// release's replica restarting during a rolling upgrade (or after a rollback). The next
/// release's migrations only added to the schema (the `production` tests hold them to it),
/// and sqlx refuses to run beside applied versions it does not know: none is applied.
async fn newer_schema(store: &Store) -> bool {
    let newer = backup::newer_schema(store).await;
    if let Some((applied, known)) = newer {
        tracing::warn!(applied, known, "database schema is newer than this entctl: no migration applied");
    }
    newer.is_some()
}

/// The store of a command: migrated first, unless the command only reads ([`reads_only`]):
/// then never migrated (a listing must not change a production schema), and refused while
/// the schema is behind this entctl.
async fn command_store(config: &Config, reads_only: bool) -> anyhow::Result<Store> {
    if !reads_only {
        return open_store(config).await;
    }
    let store = store_as_is(config).await?;
    if let Some((applied, known)) = backup::older_schema(&store).await {
        store.close().await;
        anyhow::bail!(
            "la base {} est au schéma {applied}, plus ancien que celui de cet entctl ({known}) : \
             une commande de lecture ne la migre pas ; lancez d'abord « entctl migrate », puis recommencez",
            redact(&config.database_url())
        );
    }
    Ok(store)
}

/// The store as it is, never migrated, whatever its schema (`backup`: the copy taken before an
/// upgrade is the schema the upgrade starts from, even when a migration then fails). A
/// database never migrated (a first run, or a SQLite file not created yet) holds nothing a
/// migration could change: it is set up as every command does.
async fn store_as_is(config: &Config) -> anyhow::Result<Store> {
    let Ok(store) = Store::connect_with(&config.database_url(), config.database.pool_options()).await else {
        return open_store(config).await;
    };
    if backup::older_schema(&store).await.is_some_and(|(applied, _)| applied == 0) {
        store.close().await;
        return open_store(config).await;
    }
    newer_schema(&store).await;
    Ok(store)
}

/// Whether a command only reads the database (listings, shows, exports to a file or the
/// terminal, `audit`): it then never migrates it ([`command_store`]). `backup` does not
/// migrate either, and copies a schema behind this entctl as it is ([`store_as_is`]).
fn reads_only(command: &Command) -> bool {
    use commands::conventions::ConventionsCommand as Conventions;
    use commands::groupements::GroupementsCommand as Groupements;
    use commands::rgpd::RgpdCommand as Rgpd;
    use commands::support::SupportCommand as Support;
    use commands::tenants::TenantsCommand as Tenants;
    match command {
        Command::Orgs(c) => matches!(c, OrgsCommand::List(_) | OrgsCommand::Show { .. }),
        Command::Jobs(c) => matches!(c, JobsCommand::List { .. }),
        Command::Outbox(c) => matches!(c, OutboxCommand::List { .. }),
        Command::Conventions(c) => {
            matches!(
                c,
                Conventions::Models | Conventions::List { .. } | Conventions::Show { .. } | Conventions::Export { .. }
            )
        }
        Command::Groupements(c) => matches!(
            c,
            Groupements::List { .. }
                | Groupements::Show { .. }
                | Groupements::Prefill { .. }
                | Groupements::Applications { .. }
                | Groupements::Shares { .. }
        ),
        Command::Tenants(c) => matches!(c, Tenants::List | Tenants::Show { .. } | Tenants::Render { .. }),
        Command::Support(c) => matches!(
            c,
            Support::List { .. }
                | Support::Show { .. }
                | Support::Report { .. }
                | Support::Policies
                | Support::Contract { .. }
        ),
        Command::Rgpd(c) => matches!(
            c,
            Rgpd::Incomplete { .. }
                | Rgpd::Snapshots { .. }
                | Rgpd::Diff { .. }
                | Rgpd::Breaches { .. }
                | Rgpd::Requests { .. }
        ),
        Command::Users(c) => matches!(c, UsersCommand::List),
        Command::Tokens(c) => matches!(c, TokensCommand::List { .. }),
        Command::Audit(_) => true,
        _ => false,
    }
}

async fn run(command: Command, mut config: Config, catalog: Catalog) -> anyhow::Result<ExitCode> {
    let reads = reads_only(&command);
    if !matches!(command, Command::Serve { .. }) {
        // `serve` derives it from the address it binds (port 0: the one the system chose).
        config.derive_public_url(None);
    }
    match command {
        // `--listen` is in the configuration already.
        Command::Serve { demo, .. } => serve(config, demo).await?,
        Command::Operator => operator(config).await?,
        Command::Migrate => {
            let store = open_store(&config).await?;
            let url = redact(&config.database_url());
            match backup::newer_schema(&store).await {
                Some((applied, known)) => outln!(
                    "Base {url} au schéma {applied}, plus récent que celui de cet entctl ({known}) : aucune migration appliquée"
                ),
                None => outln!("Migrations appliquées sur {url}"),
            }
            store.close().await;
        }
        Command::Import(ImportCommand::Annuaire { file, dry_run, json }) => {
            return import_file(&config, file, dry_run, json).await;
        }
        Command::Orgs(cmd) => return orgs(&command_store(&config, reads).await?, cmd).await,
        Command::Jobs(cmd) => return jobs(command_store(&config, reads).await?, config, cmd).await,
        Command::Mail(MailCommand::Test { to }) => return mail_test(config, &to).await,
        Command::Outbox(OutboxCommand::List { status, limit, json }) => {
            return outbox_list(&command_store(&config, reads).await?, status, limit, json).await
        }
        Command::Outbox(OutboxCommand::Release { force }) => {
            let released = notify::release(&command_store(&config, reads).await?, force, chrono::Utc::now()).await?;
            outln!("{released} courriel(s) remis en file d'envoi");
        }
        Command::Config(ConfigCommand::Print) => out!("{}", config.to_yaml()),
        Command::Conventions(cmd) => {
            let models = load_models(config.conventions_dir.as_deref())?;
            // The Art. 28(3) annex a submission freezes reads the configured catalog, as in `serve`.
            let catalog = Catalog::load(config.catalog_dir.as_deref())?;
            processing::use_catalog(std::sync::Arc::new(catalog));
            return commands::conventions::run(&command_store(&config, reads).await?, &models, cmd).await;
        }
        Command::Catalog(cmd) => commands::catalog::run(&catalog, cmd)?,
        Command::Groupements(cmd) => {
            let state = app_state(&command_store(&config, reads).await?, &config)?;
            return commands::groupements::run(&state, cmd).await;
        }
        Command::Tenants(cmd) if cmd.is_definition() => commands::tenants::print_definition(&cmd)?,
        Command::Tenants(cmd) => {
            let state = app_state(&command_store(&config, reads).await?, &config)?;
            return commands::tenants::run(&state, cmd).await;
        }
        Command::Support(cmd) => {
            let state = app_state(&command_store(&config, reads).await?, &config)?;
            return commands::support::run(&state, cmd).await;
        }
        Command::Rgpd(cmd) => {
            let state = app_state(&command_store(&config, reads).await?, &config)?;
            return commands::rgpd::run(&state, cmd).await;
        }
        Command::Apply { file } => {
            let state = app_state(&command_store(&config, reads).await?, &config)?;
            return commands::tenants::apply(&state, &file).await;
        }
        Command::Users(cmd) => return commands::identity::users(&command_store(&config, reads).await?, cmd).await,
        Command::Roles(cmd) => return commands::identity::roles(&command_store(&config, reads).await?, cmd).await,
        Command::Tokens(cmd) => return commands::identity::tokens(&command_store(&config, reads).await?, cmd).await,
        Command::Admin(cmd) => return commands::identity::admin(&command_store(&config, reads).await?, cmd).await,
        Command::Audit(cmd) => return commands::identity::audit(&command_store(&config, reads).await?, cmd).await,
        Command::Backup { file } => {
            let url = config.database_url();
            let m = backup::backup(&store_as_is(&config).await?, &url, &config.data_dir, &file).await?;
            let bytes: u64 = m.entries.iter().map(|e| e.bytes).sum();
            outln!(
                "Sauvegarde {} : base {} au schéma {}, {} entrée(s), {bytes} octets",
                file.display(),
                m.backend,
                m.schema_version,
                m.entries.len()
            );
        }
        Command::Restore { file } => {
            let url = config.database_url();
            let target = Store::connect_with(&url, config.database.pool_options()).await?;
            let m = backup::restore(target, &url, &config.data_dir, config.catalog_dir.as_deref(), &file).await?;
            let verified = audit::verify(&open_store(&config).await?).await.map_err(|p| anyhow::anyhow!(p.detail))?;
            outln!(
                "Restauration de {} (sauvegarde du {}, schéma {}) dans {} : terminée ; journal d'audit : {verified}",
                file.display(),
                french_moment(&m.created_at),
                m.schema_version,
                redact(&url)
            );
        }
        Command::Version => outln!("entctl {} (schéma de base {})", entcp::VERSION, entcp::release::schema_version()),
        Command::Bench(BenchCommand::Import { rows, communes }) => {
            bench::import(&config, rows, communes).await?;
        }
        Command::Bench(BenchCommand::Groupement { communes }) => {
            bench::groupement(&config, communes).await?;
        }
        Command::Bench(BenchCommand::Reconcile { tenants }) => {
            bench::reconcile(&config, tenants).await?;
        }
        Command::Bench(BenchCommand::Support { tickets, tenants }) => {
            bench::support(&config, tickets, tenants).await?;
        }
        Command::Bench(BenchCommand::Coverage { tenants }) => {
            bench::coverage(&config, tenants).await?;
        }
        Command::Bench(BenchCommand::Rgpd { tenants }) => {
            bench::rgpd(&config, tenants).await?;
        }
        Command::Bench(BenchCommand::National { scale, seconds, requests }) => {
            bench::national::national(&config, scale, seconds, requests).await?;
        }
        Command::Bench(BenchCommand::Read { etablissements, connections, requests, seconds }) => {
            bench::load::read(&config, etablissements, connections, requests, seconds).await?;
        }
        Command::Bench(BenchCommand::Console { requests }) => {
            bench::console::console(&config, requests).await?;
        }
        Command::Bench(BenchCommand::Write { per_writer, seconds }) => {
            bench::load::write(&config, per_writer, seconds).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(mut config: Config, demo: bool) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = config
        .server
        .listen
        .parse()
        .map_err(|e| anyhow::anyhow!("adresse d'écoute « {} » invalide : {e}", config.server.listen))?;
    // Bound now, listening only once everything is loaded (a client that connects finds the
    // server ready), so that the links printed and mailed name the port really bound.
    let socket = bind(addr).map_err(|e| anyhow::anyhow!("écoute sur {addr} impossible : {e}"))?;
    let bound = socket.local_addr()?;
    if config.derive_public_url(Some(bound)) && !bound.ip().is_loopback() {
        tracing::warn!(
            public_url = %config.console.public_url,
            "console.public_url is not set: links in e-mails name this machine's loopback; set it (ENTCP_PUBLIC_URL) to the address users reach"
        );
    }
    let store = open_store(&config).await?;
    if mail_reaches_nobody(&store, &config) {
        tracing::warn!(
            mail_dir = %mail_dir(&config).display(),
            "mail.transport is file on PostgreSQL: e-mails are written into the folder of whichever replica sends them and reach nobody; set ENTCP_MAIL_TRANSPORT=smtp"
        );
    }
    announce_first_admin(&store, &config).await?;
    let released = notify::release(&store, false, chrono::Utc::now()).await?;
    if released > 0 {
        tracing::warn!(released, "e-mails left sending by a dead sender put back in the queue");
    }
    let state = app_state(&store, &config)?;
    if demo {
        // Loaded before logging: a disabled `info!` would not evaluate its arguments.
        let summary = demo::load(&state).await?;
        tracing::info!("{summary}");
        let password = demo::demo_password();
        let persons = demo::personas(&state, &password).await?;
        errln!(
            "\nConsole web de démonstration : {}/connexion\nPersonnes de démonstration (mot de passe : {password}) :\n  {}\n",
            config.console.public_url.trim_end_matches('/'),
            persons.join("\n  ")
        );
    }
    let scheduler = Scheduler::new(state.clone(), runner_id())?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let drain = std::time::Duration::from_secs(config.server.shutdown_seconds);
    tokio::spawn(refresh_until(state.clone(), METRICS_REFRESH, shutdown.clone()));
    let scheduler = tokio::spawn(scheduler.run_until(shutdown.clone(), drain));
    // Tenants are reconciled by their own work queue, never by the scheduler's tasks.
    let provisioning = state.provisioning();
    let reconciler = tokio::spawn(reconcile::run_queue(provisioning.clone(), shutdown.clone()));
    // Deployment events (kube backend) queue their tenant at once; the resync stays the safety net.
    tokio::spawn(watch_deployments(state.provisioning(), shutdown.clone()));
    let listener = socket.listen(1024).map_err(|e| anyhow::anyhow!("écoute sur {addr} impossible : {e}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        database = %redact(&config.database_url()),
        "entctl listening on http://{}",
        listener.local_addr()?
    );
    // The signal turns `/readyz` to 503 at once; requests are still served for `unready`
    // (the orchestrator takes the replica out of its endpoints), then the scheduler and the
    // listener stop, and both get `drain`.
    let (signalled, stopping) = (shutdown.clone(), state.stopping.clone());
    let unready = std::time::Duration::from_secs(config.server.unready_seconds);
    tokio::spawn(async move {
        shutdown_signal().await;
        stopping.cancel();
        tracing::info!(?unready, "shutdown signal: not ready any more, still serving until the listener closes");
        tokio::time::sleep(unready).await;
        signalled.cancel();
    });
    let limits = api::listener::Limits::of(&config.server);
    serve_until(listener, api::app(state), limits, shutdown, drain).await?;
    let _ = scheduler.await;
    let _ = reconciler.await;
    // What a job's pass, the queue or a request cut at the deadline still held: released,
    // awaited, once the scheduler drained and before the store closes.
    release_at_exit(&provisioning).await;
    store.close().await;
    Ok(())
}

/// `entctl operator`: the EntTenant controller, until a signal. Tenants are written under
/// their database lease, so that an operator and `serve` replicas never write one at once.
async fn operator(config: Config) -> anyhow::Result<()> {
    use entcp::provisioning::backend::Backend;
    if config.provisioning.backend != ProvisioningBackend::Kube {
        anyhow::bail!("entctl operator demande provisioning.backend: kube");
    }
    let store = open_store(&config).await?;
    let state = app_state(&store, &config)?;
    let client = match Backend::from_config(&config, &state.provisioning().reconciler).await {
        Ok(Backend::Kube(kube)) => kube.client(),
        Ok(Backend::Manifests(_)) => anyhow::bail!("entctl operator demande provisioning.backend: kube"),
        Err(e) => anyhow::bail!("cluster injoignable : {e}"),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signalled = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signalled.cancel();
    });
    tracing::info!(database = %redact(&config.database_url()), "entctl operator watching EntTenant resources");
    let context = provisioning::operator::Context::new(client, state.tenants());
    provisioning::operator::run(context, shutdown).await;
    lease::release_at_exit(&state.provisioning()).await.map_err(|p| anyhow::anyhow!(p.detail))?;
    store.close().await;
    Ok(())
}

/// A socket bound to `addr` (address reuse as `TcpListener::bind` sets it), not yet listening.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// How often `/metrics`' database gauges are read (in the background).
const METRICS_REFRESH: std::time::Duration = std::time::Duration::from_secs(15);

fn app_state(store: &Store, config: &Config) -> anyhow::Result<AppState> {
    AppState::load(store.clone(), config.clone(), std::sync::Arc::new(SystemClock))
}

/// On the very first start (no user at all), creates the first admin; its token and its
/// console set-up link go to files of the data folder readable by their owner only, never
/// to the logs.
async fn announce_first_admin(store: &Store, config: &Config) -> anyhow::Result<()> {
    let created = identity::bootstrap_first_admin(store, FIRST_ADMIN, &config.data_dir, chrono::Utc::now()).await?;
    if let Some(path) = created {
        let now = chrono::Utc::now();
        let admin = identity::get_user(store, FIRST_ADMIN).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        let admin = admin.ok_or_else(|| anyhow::anyhow!("premier administrateur introuvable"))?;
        let link = setup_link(store, &config.console, &admin.id, now).await.map_err(|p| anyhow::anyhow!(p.detail))?;
        let link_path = identity::first_link_path(&config.data_dir);
        identity::write_private(&link_path, &format!("{link}\n")).map_err(|e| {
            anyhow::anyhow!("écriture du lien de premier accès dans {} impossible : {e}", link_path.display())
        })?;
        errln!(
            "\nPremier démarrage : administrateur {FIRST_ADMIN} créé.\n\
             Le lien pour choisir son mot de passe de la console (une seule fois, dans les 24 heures) est dans {} \
             (lisible par son seul propriétaire).\n\
             Son jeton d'API est dans {} (lisible par son seul propriétaire) : \
             lisez-le, conservez-le ailleurs, puis supprimez ces fichiers.\n",
            link_path.display(),
            path.display()
        );
        tracing::info!(path = %path.display(), "first administrator created, token written to a private file");
    }
    Ok(())
}

async fn jobs(store: Store, config: Config, command: JobsCommand) -> anyhow::Result<ExitCode> {
    let state = app_state(&store, &config)?;
    let now = chrono::Utc::now();
    match command {
        JobsCommand::List { json } => {
            let views = list_jobs(&state, now).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&views)?);
                return Ok(ExitCode::SUCCESS);
            }
            outln!(
                "{:<14} {:<8} {:<16} {:<20} dernière exécution",
                "tâche",
                "active",
                "planification",
                "prochaine (Paris)"
            );
            for view in &views {
                outln!(
                    "{:<14} {:<8} {:<16} {:<20} {}",
                    view.name,
                    if view.enabled { "oui" } else { "non" },
                    view.schedule,
                    view.next_run.as_deref().map_or("-".into(), paris_time),
                    view.last_runs.first().map_or("jamais".into(), describe_run),
                );
            }
        }
        JobsCommand::Run { name } => {
            let job = api::jobs::find(&name).ok_or_else(|| {
                let known: Vec<_> = api::jobs::all().iter().map(|j| j.name).collect();
                anyhow::anyhow!("tâche inconnue : {name} (tâches : {})", known.join(", "))
            })?;
            if job.name == "outbox-send" {
                refuse_mail_to_files(&store, &config)?;
            }
            // A signal interrupts the run and releases it to a live process, as `serve` does.
            let interrupt = state.interrupt_jobs.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                interrupt.cancel();
            });
            let run = run_now(&state, &Actor::cli(), &job, &runner_id(), now)
                .await
                .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
            outln!("{} : {}", run.job, describe_run(&run));
            if run.outcome != "success" {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A UTC store timestamp shown in Paris time, to the minute.
fn paris_time(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.with_timezone(&chrono_tz::Europe::Paris).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| at.to_string())
}

fn describe_run(run: &JobRun) -> String {
    let outcome = match run.outcome.as_str() {
        "success" => "réussie",
        "failure" => "échouée",
        "abandoned" => "abandonnée",
        _ => "en cours",
    };
    let message = run.message.as_deref().unwrap_or("");
    format!("{} {outcome} : {message}", paris_time(&run.started_at))
}

/// True with the `file` transport on PostgreSQL: the e-mails would be written into the
/// folder of whichever process sends them (a replica, an operator's machine) and reach nobody.
fn mail_reaches_nobody(store: &Store, config: &Config) -> bool {
    store.backend() == store::Backend::Postgres && config.mail.transport == MailTransport::File
}

/// Refuses to send e-mails from this command when they would reach nobody ([`mail_reaches_nobody`]).
fn refuse_mail_to_files(store: &Store, config: &Config) -> anyhow::Result<()> {
    if mail_reaches_nobody(store, config) {
        anyhow::bail!(
            "envoi refusé : mail.transport vaut « file » sur une base PostgreSQL ; les courriels seraient écrits \
             dans {} sur cette machine et n'atteindraient personne. Configurez l'envoi SMTP \
             (ENTCP_MAIL_TRANSPORT=smtp et ENTCP_SMTP_HOST…) pour envoyer depuis entctl.",
            mail_dir(config).display()
        );
    }
    Ok(())
}

async fn mail_test(config: Config, to: &str) -> anyhow::Result<ExitCode> {
    let store = open_store(&config).await?;
    refuse_mail_to_files(&store, &config)?;
    let now = chrono::Utc::now();
    let context = serde_json::json!({ "requested_by": "entctl mail test" });
    let mut tx = store.begin_write().await?;
    let id = notify::enqueue(&mut tx, &[to.to_string()], "test", context, now)
        .await
        .map_err(|p| anyhow::anyhow!("{}", p.detail))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("courriel de test non mis en file"))?;
    tx.commit().await?;
    let report = notify::send_message(&store, &config, &id, &runner_id(), &SystemClock).await?;
    let message = notify::get_message(&store, &id).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    if message.status == "sent" {
        match config.mail.transport {
            MailTransport::File => {
                outln!("Courriel de test écrit dans {}", mail_dir(&config).join(format!("{id}.eml")).display())
            }
            MailTransport::Smtp => {
                outln!("Courriel de test envoyé à {to} par {}:{}", config.mail.smtp.host, config.mail.smtp.port)
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    errln!(
        "Courriel de test non envoyé ({}) ; il reste dans la file d'envoi ({id}) et sera réessayé : {}",
        report.summary(),
        message.last_error.as_deref().unwrap_or("?")
    );
    Ok(ExitCode::FAILURE)
}

async fn outbox_list(store: &Store, status: Option<String>, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let filter = OutboxFilter { status, cursor: None, limit: Some(limit) };
    let page = notify::list(store, &filter).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    for message in &page.items {
        outln!(
            "{} {:<8} {:<10} essais={} {} {}",
            paris_time(&message.created_at),
            message.status,
            message.template,
            message.attempts,
            message.recipients.join(","),
            message.last_error.as_deref().unwrap_or("")
        );
    }
    if page.items.is_empty() {
        outln!("File d'envoi vide.");
    }
    if page.next_cursor.is_some() {
        outln!("… (augmentez --limit)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

async fn import_file(config: &Config, file: PathBuf, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let handle =
        std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("ouverture de {} impossible : {e}", file.display()))?;
    let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let store = open_store(config).await?;
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .expect("progress template")
            .progress_chars("=> "),
    );
    let reader = bar.wrap_read(std::io::BufReader::with_capacity(1 << 16, handle));
    let options = ImportOptions { dry_run, ..ImportOptions::configured(&config.import) };
    let result = import_annuaire(&store, &Actor::cli(), reader, options, chrono::Utc::now()).await;
    bar.finish_and_clear();
    let report = result.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.to_text());
    }
    // A script sees a partial import: the valid lines are in, some were refused.
    Ok(if report.rejected > 0 { ExitCode::from(PARTIAL_IMPORT) } else { ExitCode::SUCCESS })
}

async fn orgs(store: &Store, command: OrgsCommand) -> anyhow::Result<ExitCode> {
    let fail = |p: Problem| anyhow::anyhow!("{}", p.detail);
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
            let page = queries::list_orgs(store, &filter, None).await.map_err(fail)?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                for org in &page.items {
                    outln!("{:<14} {:<10} {}", org.kind.as_str(), org.code, org.name);
                }
                if page.next_cursor.is_some() {
                    outln!("… (affinez la recherche ou augmentez --limit)");
                }
            }
        }
        OrgsCommand::Show { key } => {
            // The operator (no `--as`) administers the platform and reads every organisation.
            let org = queries::resolve_org(store, &key).await.map_err(fail)?;
            let detail = org_detail(store, org).await.map_err(fail)?;
            outln!("{}", serde_json::to_string_pretty(&detail)?);
        }
        OrgsCommand::Add { kind, siren, name, email, departement } => {
            let kind = OrgKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("type d'organisation inconnu : {kind}"))?;
            let new = NewOrg { kind, siren, name, email, departement };
            let org = manage::create_org(store, &Actor::cli(), new, chrono::Utc::now()).await.map_err(fail)?;
            outln!("{} créé : {} ({})", org.kind.label(), org.name, org.id);
        }
        OrgsCommand::AddMember { group, commune, delegated } => {
            let group = queries::resolve_org(store, &group).await.map_err(fail)?;
            let commune = queries::resolve_org(store, &format!("commune:{commune}")).await.map_err(fail)?;
            manage::set_member(store, &Actor::cli(), &group, &commune, delegated, chrono::Utc::now())
                .await
                .map_err(fail)?;
            outln!("{} est membre {}", commune.name, naming::de(&group.name));
        }
        OrgsCommand::RemoveMember { group, commune } => {
            let group = queries::resolve_org(store, &group).await.map_err(fail)?;
            let commune = queries::resolve_org(store, &format!("commune:{commune}")).await.map_err(fail)?;
            manage::remove_member(store, &Actor::cli(), &group, &commune, chrono::Utc::now()).await.map_err(fail)?;
            outln!("{} n'est plus membre {}", commune.name, naming::de(&group.name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::log_targets;

    #[test]
    fn entcp_in_a_log_filter_names_every_crate_of_the_control_plane() {
        let expanded = log_targets("info,entcp=debug,sqlx=warn");
        assert!(expanded.starts_with("info,entcp=debug,entctl=debug,ent_kernel=debug,"), "{expanded}");
        assert!(expanded.contains(",ent_platform=debug,") && expanded.ends_with(",ent_testkit=debug,sqlx=warn"));
        assert!(log_targets("entcp::support=trace").contains("ent_support::support=trace"));
        assert_eq!(log_targets("warn,entcpx=debug"), "warn,entcpx=debug");
    }
}
