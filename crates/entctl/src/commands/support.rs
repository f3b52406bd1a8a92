//! `entctl support ...`: tickets, reports, policies and contracts, with the
//! same rules as the API. Changes are made as the operator (`cli:<login>`) or
//! as a user with `--as EMAIL` (a ticket is always opened by a user).

use super::conventions::actor;
use clap::Subcommand;
use entcp::api::AppState;
use entcp::error::Problem;
use entcp::identity::Actor;
use entcp::registry::resolve_org;
use entcp::support::report::{self, GroupBy};
use entcp::support::tickets::{
    self, Ctx, EscalateInput, NewComment, NewTicket, ReturnInput, TicketFilter, TransitionInput,
};
use entcp::support::{jobs, resolve_contract, set_contract, ContractInput};
use entcp::tenants::get_tenant;
use entcp::{out, outln, yaml};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SupportCommand {
    /// List the tickets visible to the user.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        level: Option<String>,
        /// Tenant slug.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Show a ticket (id or reference) as JSON, then its history, an entry a line (its French title first).
    Show {
        id: String,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Open a ticket from a JSON or YAML file (the body of POST /api/v1/support/tickets).
    Create {
        file: PathBuf,
        #[arg(long = "as")]
        as_user: String,
    },
    /// Comment on a ticket: the requester's message, the N1's reply to the requester, or with
    /// --internal a note to the support (read by N1 and N2; the vendor's by the three levels).
    Comment {
        id: String,
        #[arg(long)]
        body: String,
        #[arg(long)]
        internal: bool,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Change the status: in_progress, waiting_requester, resolved, closed.
    Transition {
        id: String,
        to: String,
        #[arg(long)]
        message: Option<String>,
        /// The version read (as If-Match); the current one when absent.
        #[arg(long)]
        if_match: Option<i64>,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Escalate to the next level, with a reason.
    Escalate {
        id: String,
        #[arg(long)]
        reason: String,
        /// N2 → N3: show the requester's identity to the vendor.
        #[arg(long)]
        share_requester: bool,
        #[arg(long)]
        if_match: Option<i64>,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Return to the level below with an answer.
    Return {
        id: String,
        #[arg(long)]
        answer: String,
        #[arg(long)]
        if_match: Option<i64>,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Backlog, response and resolution times, SLA compliance (JSON or CSV).
    Report {
        /// level or tenant.
        #[arg(long, default_value = "level")]
        by: String,
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
        /// Only the tickets created from this day (AAAA-MM-JJ, in Paris).
        #[arg(long)]
        from: Option<String>,
        /// Only the tickets created up to this day, inclusive (AAAA-MM-JJ, in Paris).
        #[arg(long)]
        to: Option<String>,
        /// Only the tickets created this month (AAAA-MM), instead of --from/--to.
        #[arg(long)]
        month: Option<String>,
        #[arg(long = "as")]
        as_user: Option<String>,
    },
    /// Run the breach sweep now (first closing the tickets left open on a purged tenant).
    Sweep,
    /// Close the tickets resolved for longer than the policy's delay, now.
    AutoClose,
    /// Resolve the tickets left unanswered for 15 days, then remind the requesters who have not
    /// answered for 3 days, now.
    Remind,
    /// Print the support policies and calendars in effect (YAML).
    Policies,
    /// Show the effective support contract of a tenant.
    Contract { slug: String },
    /// Set the contract fields held at an organisation (the others inherit).
    SetContract {
        org: String,
        #[arg(long)]
        n1: Option<String>,
        #[arg(long)]
        n2: Option<String>,
        #[arg(long)]
        n3: Option<String>,
        #[arg(long)]
        policy: Option<String>,
    },
}

fn fail(p: Problem) -> anyhow::Error {
    let fields: Vec<String> = p.errors.iter().map(|e| format!("\n  {} : {}", e.field, e.message)).collect();
    anyhow::anyhow!("{}{}", p.detail, fields.join(""))
}

async fn version_of(ctx: &Ctx<'_>, id: &str, given: Option<i64>) -> anyhow::Result<i64> {
    match given {
        Some(v) => Ok(v),
        None => Ok(tickets::get(ctx, id).await.map_err(fail)?.version),
    }
}

fn print_ticket(t: &tickets::Ticket) -> std::io::Result<()> {
    outln!(
        "{} {:<3} {:<3} {:<18} {:<28} {}",
        t.reference,
        t.priority.as_str(),
        // The level as the caller may see it: none for the requester (`Ticket::seen_by`).
        t.shown_level.map_or("—", |l| l.label()),
        t.status.as_str(),
        t.tenant,
        t.subject
    );
    Ok(())
}

pub async fn run(state: &AppState, command: SupportCommand) -> anyhow::Result<ExitCode> {
    let store = &state.store;
    let support = state.support();
    let now = chrono::Utc::now();
    match command {
        SupportCommand::List { status, level, tenant, as_user } => {
            let actor = actor(store, as_user.as_deref()).await?;
            let ctx = Ctx { state: &support, actor: &actor, now };
            let mut filter = TicketFilter { status, level, tenant, limit: Some(500), ..Default::default() };
            loop {
                let page = tickets::list(&ctx, &filter).await.map_err(fail)?;
                page.items.iter().try_for_each(print_ticket)?;
                match page.next_cursor {
                    Some(next) => filter.cursor = Some(next),
                    None => break,
                }
            }
        }
        SupportCommand::Show { id, as_user } => {
            let actor = actor(store, as_user.as_deref()).await?;
            let ctx = Ctx { state: &support, actor: &actor, now };
            outln!("{}", serde_json::to_string_pretty(&tickets::get(&ctx, &id).await.map_err(fail)?)?);
            for e in tickets::history(&ctx, &id).await.map_err(fail)? {
                let body = e.body.unwrap_or_default();
                outln!("{} {:<28} {:<9} {:<28} {body}", e.at, e.title, e.visibility, e.actor);
            }
        }
        SupportCommand::Create { file, as_user } => {
            let actor = actor(store, Some(&as_user)).await?;
            let new: NewTicket = super::read_yaml(&file)?;
            let t = tickets::create(&Ctx { state: &support, actor: &actor, now }, new).await.map_err(fail)?;
            print_ticket(&t)?;
        }
        SupportCommand::Comment { id, body, internal, as_user } => {
            super::multiline_arg("body", &body)?;
            let actor = actor(store, as_user.as_deref()).await?;
            let visibility = Some(if internal { "internal" } else { "public" }.to_string());
            let (read, viewer) = tickets::find(store, &actor, &id).await.map_err(fail)?;
            let written = tickets::written_by(store, &actor, &read, viewer, !internal).await.map_err(fail)?;
            let t =
                tickets::comment(&Ctx { state: &support, actor: &actor, now }, &id, NewComment { body, visibility })
                    .await
                    .map_err(fail)?;
            print_ticket(&t)?;
            outln!("{}", written.confirmation());
        }
        SupportCommand::Transition { id, to, message, if_match, as_user } => {
            super::multiline_arg("message", message.as_deref().unwrap_or_default())?;
            let actor = actor(store, as_user.as_deref()).await?;
            let ctx = Ctx { state: &support, actor: &actor, now };
            let version = version_of(&ctx, &id, if_match).await?;
            let t = tickets::transition(&ctx, &id, version, TransitionInput { to, message }).await.map_err(fail)?;
            print_ticket(&t)?;
        }
        SupportCommand::Escalate { id, reason, share_requester, if_match, as_user } => {
            super::multiline_arg("reason", &reason)?;
            let actor = actor(store, as_user.as_deref()).await?;
            let ctx = Ctx { state: &support, actor: &actor, now };
            let version = version_of(&ctx, &id, if_match).await?;
            let t =
                tickets::escalate(&ctx, &id, version, EscalateInput { reason, share_requester }).await.map_err(fail)?;
            print_ticket(&t)?;
        }
        SupportCommand::Return { id, answer, if_match, as_user } => {
            let actor = actor(store, as_user.as_deref()).await?;
            let ctx = Ctx { state: &support, actor: &actor, now };
            let version = version_of(&ctx, &id, if_match).await?;
            let t = tickets::return_down(&ctx, &id, version, ReturnInput { answer }).await.map_err(fail)?;
            print_ticket(&t)?;
        }
        SupportCommand::Report { by, format, from, to, month, as_user } => {
            let actor = actor(store, as_user.as_deref()).await?;
            let by = match by.as_str() {
                "level" => GroupBy::Level,
                "tenant" => GroupBy::Tenant,
                other => anyhow::bail!("regroupement inconnu : {other} (level ou tenant)"),
            };
            let period = report::Period::parse(from.as_deref(), to.as_deref(), month.as_deref()).map_err(fail)?;
            let rows = report::report(store, &actor, by, period.as_ref()).await.map_err(fail)?;
            match format.as_str() {
                "json" => outln!("{}", serde_json::to_string_pretty(&rows)?),
                "csv" => out!("{}", report::to_csv(&rows, by, period.as_ref())),
                other => anyhow::bail!("format inconnu : {other} (json ou csv)"),
            }
        }
        SupportCommand::Sweep => {
            outln!("{}", jobs::sweep(&state.support(), now).await.map_err(fail)?.outcome());
        }
        SupportCommand::AutoClose => {
            let n = jobs::auto_close(&state.support(), now).await.map_err(fail)?;
            outln!("{n} ticket(s) clos");
        }
        SupportCommand::Remind => {
            outln!("{}", jobs::follow_up_waiting(&state.support(), now).await.map_err(fail)?.outcome());
        }
        SupportCommand::Policies => out!("{}", yaml::to_string(&state.support.spec)?),
        SupportCommand::Contract { slug } => {
            let tenant = get_tenant(store, &slug)
                .await
                .map_err(fail)?
                .ok_or_else(|| anyhow::anyhow!("aucun tenant « {slug} »"))?;
            let contract = resolve_contract(&state.support(), &tenant, None, now).await.map_err(fail)?;
            outln!("{}", serde_json::to_string_pretty(&contract)?);
        }
        SupportCommand::SetContract { org, n1, n2, n3, policy } => {
            let org = resolve_org(store, &org).await.map_err(fail)?;
            let input = ContractInput { n1, n2, n3, policy };
            set_contract(&state.support(), &Actor::cli(), &org, &input, now).await.map_err(fail)?;
            outln!("contrat de support enregistré pour {}", org.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
