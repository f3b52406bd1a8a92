//! `entctl conventions ...`: the same operations as the API. Changes are made
//! as the operator (`cli:<login>`), or with `--as EMAIL` for an active user: with that user's
//! rights only (signing needs the signer's own role at the party), audited as recorded by the
//! operator on the user's behalf, `cli:<login> pour user:<email>` ([`actor`], also used by the
//! groupements and support commands).

use super::fail;
use clap::Subcommand;
use entcp::conventions::delegation::{ActKind, Delegation};
use entcp::conventions::renewal::{self, Opposition};
use entcp::conventions::workflow::{self, ConventionPatch, Ctx, NewConvention, Termination};
use entcp::conventions::{self, get_convention, list_ids, ConventionFilter};
use entcp::documents::{to_html_as, to_odt_as, to_pdf_as};
use entcp::identity::authz::CONVENTIONS_SIGN;
use entcp::identity::{self, Actor};
use entcp::outln;
use entcp::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ConventionsCommand {
    /// List the convention models (shipped and from conventions_dir).
    Models,
    /// List conventions.
    List {
        #[arg(long)]
        status: Option<String>,
        /// A party organisation (id, code or kind:code).
        #[arg(long)]
        party: Option<String>,
        /// A covered école (UAI).
        #[arg(long)]
        school: Option<String>,
        /// Ending on or before this date (YYYY-MM-DD).
        #[arg(long)]
        expiring_before: Option<String>,
    },
    /// Show one convention (id or reference) as JSON.
    Show { id: String },
    /// Create a draft from a JSON or YAML file (the body of POST /api/v1/conventions).
    Create {
        file: PathBuf,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Edit a draft or a convention in signature from a JSON or YAML file (the body of PATCH
    /// /api/v1/conventions/{id}: signatories, parameters, dates…; absent keys unchanged).
    Update {
        id: String,
        file: PathBuf,
        /// The version read (as If-Match, e.g. from `show`); the current one when absent.
        #[arg(long)]
        if_match: Option<i64>,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Submit a draft for visas and signatures.
    Submit {
        id: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Sign for the user's party.
    Sign {
        id: String,
        #[arg(long = "as")]
        as_user: String,
        #[arg(long)]
        party: Option<String>,
        /// Signing in place of the representative the convention names: the signer's quality
        /// (with --delegation-act, --delegation-number, --delegation-date).
        #[arg(long, requires_all = ["delegation_act", "delegation_number", "delegation_date"])]
        delegation_quality: Option<String>,
        /// The act delegating the signature: arrete or decision.
        #[arg(long, value_parser = ["arrete", "decision"], requires = "delegation_quality")]
        delegation_act: Option<String>,
        /// The act's number.
        #[arg(long, requires = "delegation_quality")]
        delegation_number: Option<String>,
        /// The act's date, YYYY-MM-DD.
        #[arg(long, requires = "delegation_quality")]
        delegation_date: Option<String>,
    },
    /// Refuse (back to draft) with a comment.
    Refuse {
        id: String,
        #[arg(long = "as")]
        as_user: String,
        #[arg(long)]
        comment: String,
    },
    /// Deposit a copy signed outside the platform (a PDF), for the user's party: as POST
    /// /api/v1/conventions/{id}/signed-copies, by who signs for a party, once submitted.
    Deposit {
        id: String,
        /// The PDF; its file name is the copy's.
        #[arg(long)]
        file: PathBuf,
        #[arg(long = "as")]
        as_user: String,
    },
    /// Oppose the tacit renewal of a convention (non-reconduction), for the user's party: as POST
    /// /api/v1/conventions/{id}/non-renewal, by its representative, up to the term less the notice.
    OpposeRenewal {
        id: String,
        #[arg(long = "as")]
        as_user: String,
        /// Why the party does not want the convention renewed.
        #[arg(long)]
        reason: Option<String>,
        /// The party opposing, when the user represents several.
        #[arg(long)]
        party: Option<String>,
    },
    /// Terminate an active convention.
    Terminate {
        id: String,
        #[arg(long)]
        reason: String,
        /// YYYY-MM-DD (when absent: at the end of the convention's notice, or today without one).
        #[arg(long)]
        effective_date: Option<String>,
        /// Every party agrees: the résiliation may take effect before the end of the notice.
        #[arg(long)]
        mutual_agreement: bool,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Start an avenant of an active convention.
    Amend {
        id: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Write the document (html, odt or pdf) to a file.
    Export {
        id: String,
        #[arg(long, default_value = "html")]
        format: String,
        #[arg(long, short)]
        output: PathBuf,
        /// The document as frozen at submission (its SHA-256 is the signed fingerprint), not the full document.
        #[arg(long)]
        signed: bool,
        /// With --signed: a stored version (the latest when absent).
        #[arg(long)]
        version: Option<i64>,
    },
}

/// Who a command acts as: the operator (`Actor::cli()`, full rights) or, with `--as`, the
/// operator recording what the user `email` decided (a signature received on paper, a ticket
/// phoned in): the user's rights only, checked as for the API, and audited as recorded by the
/// CLI on their behalf ([`Actor::cli_on_behalf_of`]).
pub async fn actor(store: &Store, as_user: Option<&str>) -> anyhow::Result<Actor> {
    let Some(email) = as_user else { return Ok(Actor::cli()) };
    let (user, bindings) = active_user(store, email).await?;
    Ok(Actor::cli_on_behalf_of(&user, bindings))
}

/// The user `email` and their role bindings, refused as the API refuses them when deactivated.
async fn active_user(store: &Store, email: &str) -> anyhow::Result<(identity::User, Vec<identity::Binding>)> {
    let user = identity::get_user(store, email)
        .await
        .map_err(fail)?
        .ok_or_else(|| anyhow::anyhow!("utilisateur introuvable : {email}"))?;
    anyhow::ensure!(user.active, "utilisateur désactivé : {email}");
    let bindings = identity::bindings_of(store, &user.id).await.map_err(fail)?;
    Ok((user, bindings))
}

async fn load(
    store: &Store,
    models: &[conventions::model::ConventionModel],
    id: &str,
) -> anyhow::Result<conventions::Convention> {
    get_convention(store, models, id)
        .await
        .map_err(fail)?
        .ok_or_else(|| anyhow::anyhow!("convention introuvable : {id}"))
}

/// The convention `id` if `actor` sees it as a signatory (`CONVENTIONS_SIGN`), as the API finds
/// it for its signing routes: one it does not see is unknown, as one that does not exist.
async fn seen_by_signatory(
    store: &Store,
    models: &[conventions::model::ConventionModel],
    id: &str,
    actor: &Actor,
) -> anyhow::Result<conventions::Convention> {
    conventions::get_seen_convention(store, models, id, actor, &CONVENTIONS_SIGN)
        .await
        .map_err(fail)?
        .ok_or_else(|| anyhow::anyhow!("convention introuvable : {id}"))
}

/// The bytes and file name of the signed copy at `path`, refused unless a PDF.
fn signed_copy(path: &std::path::Path) -> anyhow::Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{} : {e}", path.display()))?;
    workflow::require_pdf(&bytes).map_err(fail)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok((bytes, name))
}

fn print(conv: &conventions::Convention) -> std::io::Result<()> {
    outln!("{} {} [{}] {} → {}", conv.reference, conv.title, conv.status.label(), conv.start_date, conv.end_date);
    Ok(())
}

pub async fn run(
    store: &Store,
    models: &[conventions::model::ConventionModel],
    command: ConventionsCommand,
) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    match command {
        ConventionsCommand::Models => {
            for m in models {
                let parties: Vec<&str> = m.parties.iter().map(|p| p.key.as_str()).collect();
                outln!(
                    "{:<26} v{}  {} ({} mois ; parties : {})",
                    m.id,
                    m.version,
                    m.title,
                    m.duration_months,
                    parties.join(", ")
                );
            }
        }
        ConventionsCommand::List { status, party, school, expiring_before } => {
            let filter =
                ConventionFilter { status, party, school, expiring_before, limit: Some(500), ..Default::default() };
            for id in list_ids(store, &filter, None).await.map_err(fail)?.0 {
                print(&load(store, models, &id).await?)?;
            }
        }
        ConventionsCommand::Show { id } => {
            outln!("{}", serde_json::to_string_pretty(&load(store, models, &id).await?)?)
        }
        ConventionsCommand::Create { file, as_user } => {
            let body: NewConvention = super::read_yaml(&file)?;
            let actor = actor(store, as_user.as_deref()).await?;
            let conv = workflow::create(&Ctx { store, models, actor: &actor, now }, body).await.map_err(fail)?;
            print(&conv)?;
        }
        ConventionsCommand::Update { id, file, if_match, as_user } => {
            let patch: ConventionPatch = super::read_yaml(&file)?;
            let (conv, actor) = (load(store, models, &id).await?, actor(store, as_user.as_deref()).await?);
            let version = if_match.unwrap_or(conv.version);
            let ctx = Ctx { store, models, actor: &actor, now };
            print(&workflow::update(&ctx, &conv, version, patch).await.map_err(fail)?)?;
        }
        ConventionsCommand::Submit { id, as_user } => {
            let (conv, actor) = (load(store, models, &id).await?, actor(store, as_user.as_deref()).await?);
            print(&workflow::submit(&Ctx { store, models, actor: &actor, now }, &conv).await.map_err(fail)?)?;
        }
        ConventionsCommand::Sign {
            id,
            as_user,
            party,
            delegation_quality,
            delegation_act,
            delegation_number,
            delegation_date,
        } => {
            let (conv, actor) = (load(store, models, &id).await?, actor(store, Some(&as_user)).await?);
            let delegation = delegation_quality.map(|quality| Delegation {
                quality,
                act: delegation_act.as_deref().and_then(ActKind::parse).unwrap_or(ActKind::Arrete),
                number: delegation_number.unwrap_or_default(),
                date: delegation_date.unwrap_or_default(),
                delegator: None,
            });
            let signing = workflow::Signing { party: party.as_deref(), document_hash: None, delegation };
            print(&workflow::sign(&Ctx { store, models, actor: &actor, now }, &conv, signing).await.map_err(fail)?)?;
        }
        ConventionsCommand::Refuse { id, as_user, comment } => {
            let (conv, actor) = (load(store, models, &id).await?, actor(store, Some(&as_user)).await?);
            print(&workflow::refuse(&Ctx { store, models, actor: &actor, now }, &conv, &comment).await.map_err(fail)?)?;
        }
        ConventionsCommand::Deposit { id, file, as_user } => {
            let actor = actor(store, Some(&as_user)).await?;
            let conv = seen_by_signatory(store, models, &id, &actor).await?;
            let (bytes, name) = signed_copy(&file)?;
            let ctx = Ctx { store, models, actor: &actor, now };
            let conv = workflow::upload_signed(&ctx, &conv, &name, "application/pdf", &bytes).await.map_err(fail)?;
            print(&conv)?;
            let deposited = conv.signed_files.iter().rfind(|f| f.file_name == name.trim());
            if let Some(f) = deposited {
                outln!("exemplaire signé déposé : {} (SHA-256 {})", f.file_name, f.sha256);
            }
        }
        ConventionsCommand::OpposeRenewal { id, as_user, reason, party } => {
            let actor = actor(store, Some(&as_user)).await?;
            let conv = seen_by_signatory(store, models, &id, &actor).await?;
            let opposition = Opposition { reason, party };
            let conv =
                renewal::oppose(&Ctx { store, models, actor: &actor, now }, &conv, opposition).await.map_err(fail)?;
            print(&conv)?;
            let end = entcp::clock::french_date(&conv.end_date);
            outln!("non-reconduction enregistrée : la convention prend fin à son terme, le {end}");
        }
        ConventionsCommand::Terminate { id, reason, effective_date, mutual_agreement, as_user } => {
            let (conv, actor) = (load(store, models, &id).await?, actor(store, as_user.as_deref()).await?);
            let t = Termination { reason, effective_date, mutual_agreement };
            print(&workflow::terminate(&Ctx { store, models, actor: &actor, now }, &conv, t).await.map_err(fail)?)?;
        }
        ConventionsCommand::Amend { id, as_user } => {
            let (conv, actor) = (load(store, models, &id).await?, actor(store, as_user.as_deref()).await?);
            print(&workflow::amend(&Ctx { store, models, actor: &actor, now }, &conv).await.map_err(fail)?)?;
        }
        ConventionsCommand::Export { id, format, output, signed: true, version } => {
            let conv = load(store, models, &id).await?;
            let stored = conventions::frozen::read(&mut *store.conn().await?, &conv.id, version, &format).await?;
            let (file, bytes) =
                stored.ok_or_else(|| anyhow::anyhow!("aucun document conservé en {format} pour cette version"))?;
            std::fs::write(&output, bytes)?;
            outln!("{} écrit (version {}, SHA-256 {})", output.display(), file.version_no, file.sha256);
        }
        ConventionsCommand::Export { id, format, output, .. } => {
            let conv = load(store, models, &id).await?;
            let model = conventions::find_model(models, &conv.model_id, Some(conv.model_version)).map_err(fail)?;
            let doc = conventions::document::full(store, model, &conv).await.map_err(fail)?;
            let typography = conventions::document::typography(&conv);
            let bytes = match format.as_str() {
                "html" => to_html_as(&doc, typography).into_bytes(),
                "odt" => to_odt_as(&doc, typography),
                "pdf" => to_pdf_as(&doc, typography).map_err(|e| anyhow::anyhow!("{e}"))?,
                other => anyhow::bail!("format inconnu : {other} (html, odt ou pdf)"),
            };
            std::fs::write(&output, bytes)?;
            outln!("{} écrit", output.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
