//! `entctl rgpd ...`: export a register (recorded as a snapshot, as over HTTP),
//! list incomplete entries and snapshots, diff, export the breach and request logs,
//! and run the monthly snapshot pass.

use clap::Subcommand;
use entcp::api::AppState;
use entcp::error::Problem;
use entcp::identity::Actor;
use entcp::registry::{resolve_org, Org};
use entcp::rgpd::{self, export::Format, snapshots, Log};
use entcp::{errln, outln};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum RgpdCommand {
    /// Export the register of an organisation (id, code or kind:code); every export is a snapshot.
    Export {
        org: String,
        /// json, csv, ods, html or pdf.
        #[arg(long, default_value = "json")]
        format: String,
        /// Write to this file (standard output otherwise).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// The incomplete entries of a register and the fields they lack.
    Incomplete { org: String },
    /// The snapshots of a register.
    Snapshots { org: String },
    /// What changed between two snapshots, or between one (the latest by default) and now.
    Diff {
        org: String,
        #[arg(long)]
        from: Option<String>,
        /// A snapshot id, or `now`.
        #[arg(long)]
        to: Option<String>,
    },
    /// Export the personal-data breach log of a controller.
    Breaches {
        org: String,
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Export the data-subject request log of a controller.
    Requests {
        org: String,
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run the monthly snapshot pass now (snapshots of changed registers, mails to DPOs).
    Snapshot,
}

fn fail(p: Problem) -> anyhow::Error {
    let fields: Vec<String> = p.errors.iter().map(|e| format!("{} : {}", e.field, e.message)).collect();
    if fields.is_empty() {
        anyhow::anyhow!("{}", p.detail)
    } else {
        anyhow::anyhow!("{} ({})", p.detail, fields.join(" ; "))
    }
}

fn write(bytes: &[u8], output: Option<PathBuf>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(&path, bytes).map_err(|e| anyhow::anyhow!("{} : {e}", path.display()))?;
            errln!("écrit : {} ({} octets)", path.display(), bytes.len());
        }
        None => std::io::stdout().write_all(bytes)?,
    }
    Ok(())
}

pub async fn run(state: &AppState, command: RgpdCommand) -> anyhow::Result<ExitCode> {
    // Run as the operator (`Actor::cli()`, no `--as`), who reads every organisation.
    let org = |key: String| async move { resolve_org(&state.store, &key).await.map_err(fail) };
    match command {
        RgpdCommand::Export { org: key, format, output } => {
            let format = Format::parse(Some(&format)).map_err(fail)?;
            let org = org(key).await?;
            let exported =
                rgpd::export_register(&state.rgpd(), &Actor::cli().name, &org, format).await.map_err(fail)?;
            write(&exported.bytes, output)?;
            errln!("instantané {} (SHA-256 {})", exported.snapshot.id, exported.snapshot.sha256);
        }
        RgpdCommand::Incomplete { org: key } => {
            let register = rgpd::current(&state.rgpd(), &org(key).await?).await.map_err(fail)?;
            if register.incomplete.is_empty() {
                outln!("aucune fiche incomplète");
            }
            for i in &register.incomplete {
                outln!("{} — {} : {}", i.reference, i.name, i.missing.join(", "));
            }
        }
        RgpdCommand::Snapshots { org: key } => {
            let org = org(key).await?;
            outln!("{:<38} {:<28} {:<10} {:<6} {:>7} sha256", "instantané", "date", "motif", "format", "fiches");
            for s in snapshots::list(&state.rgpd(), &org.id, 500).await.map_err(fail)? {
                outln!(
                    "{:<38} {:<28} {:<10} {:<6} {:>7} {}",
                    s.id,
                    s.taken_at,
                    s.reason,
                    s.format,
                    s.entries,
                    s.sha256
                );
            }
        }
        RgpdCommand::Diff { org: key, from, to } => {
            let org = org(key).await?;
            let diff = snapshots::diff_for(&state.rgpd(), &org, from.as_deref(), to.as_deref()).await.map_err(fail)?;
            outln!("{}", serde_json::to_string_pretty(&diff)?);
        }
        RgpdCommand::Breaches { org: key, format, output } => {
            export_log(state, &org(key).await?, &format, output, Log::Breaches).await?
        }
        RgpdCommand::Requests { org: key, format, output } => {
            export_log(state, &org(key).await?, &format, output, Log::Requests).await?
        }
        RgpdCommand::Snapshot => {
            let r = rgpd::jobs::monthly(&state.rgpd(), state.clock.now()).await.map_err(fail)?;
            outln!(
                "{} registre(s) examiné(s), {} instantané(s), {} DPO prévenu(s)",
                r.registers,
                r.snapshots,
                r.notified
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export_log(
    state: &AppState,
    org: &Org,
    format: &str,
    output: Option<PathBuf>,
    log: Log,
) -> anyhow::Result<()> {
    let format = Format::parse(Some(format)).map_err(fail)?;
    let (bytes, _) = rgpd::export_log(&state.rgpd(), &Actor::cli(), org, log, format).await.map_err(fail)?;
    write(&bytes, output)
}
