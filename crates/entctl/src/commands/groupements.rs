//! `entctl groupements ...`: the group purchase operations of the API, as the
//! operator (`cli:<login>`) or as a user with `--as EMAIL`: with that user's rights only, every
//! check of the API's route made ([`guard`]: the role, the groupement's coordinator, the
//! applicant the user speaks for; what lies outside the user's scope answered as unknown).

use super::conventions::actor;
use clap::Subcommand;
use entcp::api::AppState;
use entcp::error::Problem;
use entcp::groupements::award::{self, AwardInput};
use entcp::groupements::documents::{self as docs, Kind};
use entcp::groupements::membership::{self, Application, NewApplication};
use entcp::groupements::sans_suite::{self, SansSuiteInput};
use entcp::groupements::shares::Basis;
use entcp::groupements::{self as gm, guard, routes, Groupement, GroupementFilter, NewGroupement, Status};
use entcp::identity::authz::{self, GROUPEMENTS_APPLY, GROUPEMENTS_MANAGE};
use entcp::identity::{Actor, Caller};
use entcp::kernel::roles::Action;
use entcp::naming;
use entcp::store::Store;
use entcp::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum GroupementsCommand {
    /// List groupements.
    List {
        /// open, closed, consultation, awarded, running, ended.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one groupement (id or reference) as JSON.
    Show { id: String },
    /// Open a groupement from a JSON or YAML file (the body of POST /api/v1/groupements).
    Create {
        file: PathBuf,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// What the registry says about an applicant (écoles, pupils).
    Prefill { id: String, applicant: String },
    /// Apply from a file (the body of POST /api/v1/groupements/{id}/applications).
    Apply {
        id: String,
        file: PathBuf,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// List the applications.
    Applications { id: String },
    /// Accept an application.
    Accept {
        id: String,
        application: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Reject an application, with the reason.
    Reject {
        id: String,
        application: String,
        #[arg(long)]
        reason: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Withdraw an application (until the groupement closes).
    Withdraw {
        id: String,
        application: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Close, reopen, start the consultation, run or end.
    Transition {
        id: String,
        /// closed, open, consultation, running, ended.
        to: String,
        /// Ended before the term of the accord-cadre (a résiliation): its reason, told to the members.
        #[arg(long)]
        reason: Option<String>,
        /// consultation (required then): the date and time limits for the receipt of offers,
        /// `AAAA-MM-JJTHH:MM` (heure de Paris) or RFC 3339.
        #[arg(long = "offers-deadline")]
        offers_deadline: Option<String>,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Declare the consultation sans suite (articles R. 2185-1 and R. 2185-2 du code de la
    /// commande publique): back to closed, to be relaunched; the members are told.
    SansSuite {
        id: String,
        /// infructuosite, interet_general, besoin_redefini or irregularite_procedure.
        #[arg(long)]
        motif: String,
        /// The reasons the members and the candidates are told.
        #[arg(long)]
        justification: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Award the contract from a file (the body of POST /api/v1/groupements/{id}/award).
    Award {
        id: String,
        file: PathBuf,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Each member's share of the awarded amount.
    Shares { id: String },
    /// Generate a document (presentation, rc, ae, ccap, cctp, membres, quantites) and write its latest version.
    Document {
        id: String,
        kind: String,
        /// html, odt, pdf (text documents) or ods (quantites); from the output's extension by default.
        #[arg(long)]
        format: Option<String>,
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Write the DECP v2 record (JSON) of an awarded groupement.
    Decp {
        id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn fail(p: Problem) -> anyhow::Error {
    let fields: Vec<String> = p.errors.iter().map(|e| format!("\n  {} : {}", e.field, e.message)).collect();
    if fields.is_empty() {
        anyhow::anyhow!("{}", p.detail)
    } else {
        anyhow::anyhow!("{}{}", p.kind.title(), fields.concat())
    }
}

/// Who a command acts as ([`actor`]), calling as the API route of `action` does: every check
/// of that route is made ([`guard`]), by the operator's full rights or the user's own.
async fn caller(store: &Store, as_user: Option<&str>, action: &'static Action) -> anyhow::Result<Caller> {
    Ok(Caller { actor: actor(store, as_user).await?, action })
}

/// The groupement `id` its coordinator acts on, as `as_user` ([`guard::coordinated`]).
async fn coordinated(store: &Store, id: &str, as_user: Option<&str>) -> anyhow::Result<(Groupement, Caller)> {
    let caller = caller(store, as_user, &GROUPEMENTS_MANAGE).await?;
    Ok((guard::coordinated(store, &caller, id).await.map_err(fail)?, caller))
}

/// The groupement, the application and the caller of the coordinator's decision on an application.
async fn application_of(
    store: &Store,
    id: &str,
    application: &str,
    as_user: Option<&str>,
) -> anyhow::Result<(Groupement, Application, Caller)> {
    let (g, caller) = coordinated(store, id, as_user).await?;
    let app = membership::get(store, &g.id, application).await.map_err(fail)?;
    Ok((g, app, caller))
}

fn print_decision(app: &Application) -> std::io::Result<()> {
    outln!("{} : {}", app.applicant.name, app.status_label);
    Ok(())
}

fn print(g: &Groupement) -> std::io::Result<()> {
    outln!(
        "{} {} [{}] coordonnateur {} ; {} membre(s) ; adhésions jusqu'au {}",
        g.reference,
        g.title,
        g.status_label,
        g.coordinator.name,
        g.members,
        g.application_deadline
    );
    Ok(())
}

pub async fn run(state: &AppState, command: GroupementsCommand) -> anyhow::Result<ExitCode> {
    let store = &state.store;
    let groupements = state.groupements();
    let load = |id: String| async move { gm::must_get(store, &id).await.map_err(fail) };
    match command {
        GroupementsCommand::List { status } => {
            let filter = GroupementFilter { status, limit: Some(500), ..Default::default() };
            for g in gm::list(store, &Actor::cli(), &filter).await.map_err(fail)?.items {
                print(&g)?;
            }
        }
        GroupementsCommand::Show { id } => outln!("{}", serde_json::to_string_pretty(&load(id).await?)?),
        GroupementsCommand::Create { file, as_user } => {
            let body: NewGroupement = super::read_yaml(&file)?;
            let caller = caller(store, as_user.as_deref(), &GROUPEMENTS_MANAGE).await?;
            authz::require_role(&caller.actor, caller.action).map_err(fail)?;
            print(&gm::create(&groupements.ctx(&caller.actor), body).await.map_err(fail)?)?;
        }
        GroupementsCommand::Prefill { id, applicant } => {
            load(id).await?;
            let org = membership::applicant_org(store, &Actor::cli(), &applicant).await.map_err(fail)?;
            outln!("{}", serde_json::to_string_pretty(&membership::prefill(store, &org).await.map_err(fail)?)?);
        }
        GroupementsCommand::Apply { id, file, as_user } => {
            let caller = caller(store, as_user.as_deref(), &GROUPEMENTS_APPLY).await?;
            let g = guard::named(store, &caller, &id).await.map_err(fail)?;
            let body: NewApplication = super::read_yaml(&file)?;
            let app = routes::apply_for(&groupements, &caller, &g, body).await.map_err(fail)?;
            outln!("candidature {} {} : {}", app.id, naming::de(&app.applicant.name), app.status_label);
            if let Some(warning) = no_pupils_warning(&g, &app) {
                errln!("{warning}");
            }
        }
        GroupementsCommand::Applications { id } => {
            for app in membership::list(store, &load(id).await?.id, None).await.map_err(fail)? {
                outln!(
                    "{} {:<40} {:<22} délibération {} du {} ; {} écoles, {} élèves, {} comptes",
                    app.id,
                    app.applicant.name,
                    app.status_label,
                    app.deliberation_number,
                    app.deliberation_date,
                    app.quantities.schools,
                    app.quantities.pupils,
                    app.accounts
                );
            }
        }
        GroupementsCommand::Accept { id, application, as_user } => {
            let (g, app, caller) = application_of(store, &id, &application, as_user.as_deref()).await?;
            print_decision(&membership::accept(&groupements.ctx(&caller.actor), &g, &app).await.map_err(fail)?)?;
        }
        GroupementsCommand::Reject { id, application, reason, as_user } => {
            let (g, app, caller) = application_of(store, &id, &application, as_user.as_deref()).await?;
            let ctx = groupements.ctx(&caller.actor);
            print_decision(&membership::reject(&ctx, &g, &app, &reason).await.map_err(fail)?)?;
        }
        GroupementsCommand::Withdraw { id, application, as_user } => {
            let caller = caller(store, as_user.as_deref(), &GROUPEMENTS_APPLY).await?;
            let g = guard::named(store, &caller, &id).await.map_err(fail)?;
            print_decision(&routes::withdraw_for(&groupements, &caller, &g, &application).await.map_err(fail)?)?;
        }
        GroupementsCommand::Transition { id, to, reason, offers_deadline, as_user } => {
            let status = Status::parse(&to)
                .ok_or_else(|| anyhow::anyhow!("état inconnu : {to} (closed, open, consultation, running, ended)"))?;
            let (g, caller) = coordinated(store, &id, as_user.as_deref()).await?;
            let ctx = groupements.ctx(&caller.actor);
            print(
                &gm::transition(&ctx, &g, status, reason.as_deref(), offers_deadline.as_deref()).await.map_err(fail)?,
            )?;
        }
        GroupementsCommand::SansSuite { id, motif, justification, as_user } => {
            let (g, caller) = coordinated(store, &id, as_user.as_deref()).await?;
            let input = SansSuiteInput { motif, justification };
            // The command reads then acts: the version it read is the one it changes.
            print(&sans_suite::declare(&groupements.ctx(&caller.actor), &g, g.version, &input).await.map_err(fail)?)?;
        }
        GroupementsCommand::Award { id, file, as_user } => {
            let (g, caller) = coordinated(store, &id, as_user.as_deref()).await?;
            let body: AwardInput = super::read_yaml(&file)?;
            print(&award::award(&groupements.ctx(&caller.actor), &g, body).await.map_err(fail)?)?;
        }
        GroupementsCommand::Shares { id } => {
            let g = load(id).await?;
            let members = membership::members(store, &g.id).await.map_err(fail)?;
            let shares = membership::shares_of(&g, &members).map_err(fail)?;
            outln!(
                "dépenses communes : {} c, dont coordonnateur {} c, membres {} c ({})",
                shares.common_expenses_cents,
                shares.coordinator_common_expenses_cents,
                shares.members_common_expenses_cents,
                shares.cost_key
            );
            for s in &shares.shares {
                outln!(
                    "{:<40} dépenses communes {:>12} c  par an : {:?} ; commandes propres {:>14} c HT  par an : {:?}",
                    s.member.name,
                    s.common_expenses_cents,
                    s.common_expenses_per_year_cents,
                    s.own_orders_ht_cents,
                    s.own_orders_per_year_ht_cents
                );
            }
        }
        GroupementsCommand::Document { id, kind, format, output, as_user } => {
            let kind = Kind::parse(&kind).ok_or_else(|| {
                anyhow::anyhow!("document inconnu : {kind} (presentation, rc, ae, ccap, cctp, membres, quantites)")
            })?;
            let (g, caller) = coordinated(store, &id, as_user.as_deref()).await?;
            let (doc, new_version) = docs::generate(&groupements.ctx(&caller.actor), &g, kind).await.map_err(fail)?;
            let from_name = output.extension().and_then(|e| e.to_str()).filter(|e| kind.formats().contains(e));
            let format = format.or(from_name.map(str::to_string)).unwrap_or_else(|| kind.formats()[0].to_string());
            let (bytes, _) = docs::content(store, &doc, &format).await.map_err(fail)?;
            std::fs::write(&output, bytes)?;
            let what = if new_version { "nouvelle version" } else { "inchangé, version" };
            outln!("{} ({what} {}) écrit dans {}", doc.title, doc.version, output.display());
        }
        GroupementsCommand::Decp { id, output } => {
            let mut g = load(id).await?;
            let actor = Actor::cli();
            let ctx = groupements.ctx(&actor);
            if g.decp_published_on.is_none() && g.award.is_some() {
                g = award::publish_decp(&ctx, &g).await.map_err(fail)?;
            }
            let record = award::decp_publication(&ctx, &g).await.map_err(fail)?;
            let text = serde_json::to_string_pretty(&record)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text)?;
                    outln!("DECP écrites dans {}", path.display());
                }
                None => outln!("{text}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the console's candidature form says too: an application with no pupil declared (the
/// annuaire carries no head counts) counts for nothing in a cost key by pupils.
fn no_pupils_warning(g: &Groupement, app: &Application) -> Option<String> {
    let by_pupils = g.terms.cost_key.iter().any(|part| part.basis == Basis::Pupils);
    (by_pupils && app.quantities.pupils == 0).then(|| {
        format!(
            "attention : aucun élève déclaré pour {} ({} école(s)) alors que la clé de répartition du groupement \
             compte les élèves : le répertoire n'a pas leurs effectifs ; indiquez-les (`pupils`) dans la candidature",
            app.applicant.name, app.quantities.schools
        )
    })
}
