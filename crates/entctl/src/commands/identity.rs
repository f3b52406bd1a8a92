//! `entctl users|roles|tokens|admin|audit`: the operator's side of identity and
//! audit. Changes are audited as `cli:<login>`.

use super::fail;
use clap::Subcommand;
use entcp::audit::{self, AuditFilter, Verification};
use entcp::identity::{self, Actor, NewUser, UserRole};
use entcp::kernel::roles::Role;
use entcp::registry::{resolve_org, Org};
use entcp::store::Store;
use entcp::{errln, outln};
use std::process::ExitCode;

pub const FIRST_ADMIN: &str = "admin@localhost";

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Add {
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The user's organisation (id, code or kind:code).
        #[arg(long)]
        org: Option<String>,
    },
    /// List users with their roles.
    List,
    /// Set a user's console password, read from the standard input (first line); every
    /// console session of the user ends.
    SetPassword {
        /// User id or e-mail.
        user: String,
    },
}

#[derive(Subcommand)]
pub enum RolesCommand {
    /// Grant a role at an organisation (no --org for admin).
    Grant {
        /// User id or e-mail.
        user: String,
        /// admin, dan, collectivite, chef_etablissement, support_n1, support_n2, support_n3, dpo, coordinateur, auditeur, usager.
        role: String,
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke a role.
    Revoke {
        user: String,
        role: String,
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create an API token for a user; the token is printed once.
    Create {
        /// User id or e-mail.
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Expiry, RFC 3339 (e.g. 2027-06-30T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List tokens (of one user, or all).
    List { user: Option<String> },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create the first administrator if needed and print a new token for it.
    Bootstrap {
        #[arg(long, default_value = FIRST_ADMIN)]
        email: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the audit chain and report OK or the first broken record.
    Verify,
    /// Show the latest audit records.
    List {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        target_id: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

fn parse_role(role: &str) -> anyhow::Result<Role> {
    Role::parse(role).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        anyhow::anyhow!("rôle inconnu : {role} (rôles : {})", all.join(", "))
    })
}

/// An organisation the operator names (no `--as` here: it reads every organisation).
async fn org_option(store: &Store, key: Option<&str>) -> anyhow::Result<Option<Org>> {
    match key {
        Some(key) => Ok(Some(resolve_org(store, key).await.map_err(fail)?)),
        None => Ok(None),
    }
}

async fn user_id(store: &Store, key: &str) -> anyhow::Result<String> {
    Ok(identity::get_user(store, key)
        .await
        .map_err(fail)?
        .ok_or_else(|| anyhow::anyhow!("utilisateur introuvable : {key}"))?
        .id)
}

pub async fn users(store: &Store, command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Add { email, name, org } => {
            let new = NewUser { email, display_name: name, org };
            let user = identity::create_user(store, &Actor::cli(), new, chrono::Utc::now()).await.map_err(fail)?;
            outln!("utilisateur créé : {} ({})", user.email, user.id);
        }
        UsersCommand::SetPassword { user } => {
            let id = user_id(store, &user).await?;
            errln!("Mot de passe (12 caractères au moins), puis Entrée :");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            let user = identity::password::set_password(
                store,
                &Actor::cli(),
                &id,
                password,
                identity::password::ChosenBy::Operator,
                chrono::Utc::now(),
            )
            .await
            .map_err(fail)?;
            outln!("mot de passe enregistré pour {} ; ses sessions de console sont fermées", user.email);
        }
        UsersCommand::List => {
            let mut cursor: Option<String> = None;
            loop {
                let page = identity::list_users(store, cursor.as_deref(), Some(500), None).await.map_err(fail)?;
                for user in &page.items {
                    let roles: Vec<String> = user
                        .roles
                        .iter()
                        .map(|r| match &r.org {
                            Some(org) => {
                                format!("{}@{}:{}", r.role.as_str(), org.kind.as_str(), org.code)
                            }
                            None => r.role.as_str().to_string(),
                        })
                        .collect();
                    let state = if user.active { "" } else { " (désactivé)" };
                    outln!("{:<36} {:<32} {}{state}", user.email, user.display_name, roles.join(", "));
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn roles(store: &Store, command: RolesCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    match command {
        RolesCommand::Grant { user, role, org } => {
            let (id, role, org) =
                (user_id(store, &user).await?, parse_role(&role)?, org_option(store, org.as_deref()).await?);
            identity::grant(store, &Actor::cli(), UserRole::new(&id, role, org.as_ref()), now).await.map_err(fail)?;
            outln!("rôle {} accordé à {user}", role.as_str());
        }
        RolesCommand::Revoke { user, role, org } => {
            let (id, role, org) =
                (user_id(store, &user).await?, parse_role(&role)?, org_option(store, org.as_deref()).await?);
            identity::revoke(store, &Actor::cli(), UserRole::new(&id, role, org.as_ref()), now).await.map_err(fail)?;
            outln!("rôle {} retiré à {user}", role.as_str());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tokens(store: &Store, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    match command {
        TokensCommand::Create { user, name, expires_at } => {
            let id = user_id(store, &user).await?;
            let expires_at = expires_at
                .map(|v| chrono::DateTime::parse_from_rfc3339(&v).map(|t| t.with_timezone(&chrono::Utc)))
                .transpose()
                .map_err(|_| anyhow::anyhow!("--expires-at attend une date RFC 3339 (2027-06-30T00:00:00Z)"))?;
            let created =
                identity::create_token(store, &Actor::cli(), &id, &name, expires_at, now).await.map_err(fail)?;
            errln!("jeton {} créé pour {user} ; il ne sera plus affiché :", created.info.prefix);
            outln!("{}", created.token);
        }
        TokensCommand::List { user } => {
            let id = match user {
                Some(user) => Some(user_id(store, &user).await?),
                None => None,
            };
            for t in identity::list_tokens(store, id.as_deref()).await.map_err(fail)? {
                let state = match (&t.revoked_at, &t.expires_at) {
                    (Some(at), _) => format!("révoqué le {at}"),
                    (None, Some(at)) => format!("expire le {at}"),
                    (None, None) => "sans expiration".into(),
                };
                let used = t.last_used_at.as_deref().unwrap_or("jamais utilisé");
                outln!("{}  {:<16} {:<20} {state} ; {used}", t.id, t.prefix, t.name);
            }
        }
        TokensCommand::Revoke { id } => {
            identity::revoke_token(store, &Actor::cli(), &id, now).await.map_err(fail)?;
            outln!("jeton {id} révoqué");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn admin(store: &Store, command: AdminCommand) -> anyhow::Result<ExitCode> {
    let AdminCommand::Bootstrap { email } = command;
    let (email, token) = identity::bootstrap_admin(store, &email, true, chrono::Utc::now())
        .await
        .map_err(fail)?
        .expect("forced bootstrap");
    errln!("administrateur {email} ; nouveau jeton, affiché une seule fois :");
    outln!("{token}");
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(store: &Store, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify => {
            let verified = audit::verify(store).await.map_err(fail)?;
            outln!("{verified}");
            Ok(if matches!(verified, Verification::Intact { .. }) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        AuditCommand::List { actor, target_id, limit } => {
            let filter = AuditFilter { actor, target_id, limit: Some(limit), ..AuditFilter::default() };
            for r in audit::list(store, &filter, None).await.map_err(fail)?.items {
                outln!(
                    "{:>6} {} {:<28} {:<22} {}:{} {}",
                    r.seq,
                    r.at,
                    r.actor,
                    r.action,
                    r.target_kind,
                    r.target_id,
                    r.summary
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
