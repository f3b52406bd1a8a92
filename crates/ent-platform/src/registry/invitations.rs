//! Invitations to join an EPCI or syndicat mixte: the group invites a commune,
//! the commune's collectivité accepts (the membership is then written) or
//! either side declines. A group never adds a commune on its own say-so.

use super::manage::{check_member, write_member, Membership};
use super::queries::get_org;
use super::{Org, OrgRef};
use crate::audit::{self, Target};
use crate::identity::Actor;
use chrono::{DateTime, Utc};
use ent_kernel::error::{conflict_unless, Problem};
use ent_kernel::store::{new_id, timestamp, Backend, Flag, Store, Tx};
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Invitation {
    pub id: String,
    pub group: OrgRef,
    pub commune: OrgRef,
    pub ent_delegated: bool,
    /// `pending`, `accepted` or `declined`.
    pub status: String,
    pub invited_by: String,
    pub created_at: String,
    pub answered_by: Option<String>,
    pub answered_at: Option<String>,
}

const COLUMNS: &str =
    "id, group_id, commune_id, ent_delegated, status, invited_by, created_at, answered_by, answered_at";

/// A `membership_invitations` row (read with [`COLUMNS`]).
#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: String,
    group_id: String,
    commune_id: String,
    #[sqlx(try_from = "Flag")]
    ent_delegated: bool,
    status: String,
    invited_by: String,
    created_at: String,
    answered_by: Option<String>,
    answered_at: Option<String>,
}

async fn from_row(store: &Store, row: InvitationRow) -> Result<Invitation, Problem> {
    let org = |id: String| async move {
        get_org(store, &id).await?.map(|o| o.as_ref()).ok_or_else(|| Problem::not_found("organisation disparue"))
    };
    Ok(Invitation {
        id: row.id,
        group: org(row.group_id).await?,
        commune: org(row.commune_id).await?,
        ent_delegated: row.ent_delegated,
        status: row.status,
        invited_by: row.invited_by,
        created_at: row.created_at,
        answered_by: row.answered_by,
        answered_at: row.answered_at,
    })
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Invitation>, Problem> {
    let sql = format!("SELECT {COLUMNS} FROM membership_invitations WHERE id = $1");
    match sqlx::query_as(&sql).bind(id).fetch_optional(store.pool()).await? {
        Some(row) => Ok(Some(from_row(store, row).await?)),
        None => Ok(None),
    }
}

/// The invitations a group sent or a commune received, newest first.
pub async fn list_for(store: &Store, org: &Org) -> Result<Vec<Invitation>, Problem> {
    let sql = format!(
        "SELECT {COLUMNS} FROM membership_invitations WHERE group_id = $1 OR commune_id = $2 \
         ORDER BY created_at DESC, id DESC"
    );
    let rows: Vec<InvitationRow> = sqlx::query_as(&sql).bind(&org.id).bind(&org.id).fetch_all(store.pool()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(from_row(store, row).await?);
    }
    Ok(out)
}

/// The group invites the commune to the `proposed` membership; a pending invitation
/// for the same pair is replaced.
pub async fn invite(
    store: &Store,
    actor: &Actor,
    proposed: &Membership<'_>,
    now: DateTime<Utc>,
) -> Result<Invitation, Problem> {
    let Membership { group, commune, ent_delegated } = *proposed;
    super::manage::check_membership_kinds(group, commune)?;
    let id = new_id();
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM membership_invitations WHERE group_id = $1 AND commune_id = $2 AND status = 'pending'")
        .bind(&group.id)
        .bind(&commune.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO membership_invitations (id, group_id, commune_id, ent_delegated, status, invited_by, created_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
    )
    .bind(&id)
    .bind(&group.id)
    .bind(&commune.id)
    .bind(i64::from(ent_delegated))
    .bind(&actor.name)
    .bind(timestamp(now))
    .execute(&mut *tx)
    .await?;
    let summary = serde_json::json!({ "group": group.code, "commune": commune.code, "ent_delegated": ent_delegated });
    for scope in [&group.id, &commune.id] {
        let target = Target::new("membership_invitation", &id, Some(scope));
        audit::record(&mut tx, store.backend(), actor, "orgs.invitations.create", &target, summary.clone(), now)
            .await?;
    }
    tx.commit().await?;
    Ok(get(store, &id).await?.expect("just created"))
}

/// Records the answer of a pending invitation in the caller's transaction; a
/// second answer is a 409.
async fn answer(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    invitation: &Invitation,
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let done = sqlx::query(
        "UPDATE membership_invitations SET status = $1, answered_by = $2, answered_at = $3 WHERE id = $4 AND status = 'pending'",
    )
    .bind(status)
    .bind(&actor.name)
    .bind(timestamp(now))
    .bind(&invitation.id)
    .execute(&mut **tx)
    .await?;
    conflict_unless(done.rows_affected() != 0, || "cette invitation a déjà reçu une réponse")?;
    let summary =
        serde_json::json!({ "group": invitation.group.code, "commune": invitation.commune.code, "status": status });
    let action = format!("orgs.invitations.{status}");
    for scope in [&invitation.group.id, &invitation.commune.id] {
        let target = Target::new("membership_invitation", &invitation.id, Some(scope));
        audit::record(tx, backend, actor, &action, &target, summary.clone(), now).await?;
    }
    Ok(())
}

fn check_pending(invitation: &Invitation) -> Result<(), Problem> {
    conflict_unless(invitation.status == "pending", || "cette invitation a déjà reçu une réponse")?;
    Ok(())
}

/// The commune accepts: the membership is written, then the invitation closed.
pub async fn accept(
    store: &Store,
    actor: &Actor,
    invitation: &Invitation,
    now: DateTime<Utc>,
) -> Result<Invitation, Problem> {
    check_pending(invitation)?;
    let group = get_org(store, &invitation.group.id).await?.ok_or_else(|| Problem::not_found("groupement disparu"))?;
    let commune =
        get_org(store, &invitation.commune.id).await?.ok_or_else(|| Problem::not_found("commune disparue"))?;
    let membership = Membership { group: &group, commune: &commune, ent_delegated: invitation.ent_delegated };
    check_member(store, &membership).await?;
    close(store, actor, invitation, "accepted", Some(&membership), now).await
}

/// Either side declines (the group withdraws, the commune refuses).
pub async fn decline(
    store: &Store,
    actor: &Actor,
    invitation: &Invitation,
    now: DateTime<Utc>,
) -> Result<Invitation, Problem> {
    close(store, actor, invitation, "declined", None, now).await
}

/// Answers a pending invitation with `status` and, in the same transaction, writes the
/// accepted `membership`: a concurrent decline (or a second accept) leaves no membership
/// behind. Answers the invitation as stored.
async fn close(
    store: &Store,
    actor: &Actor,
    invitation: &Invitation,
    status: &str,
    membership: Option<&Membership<'_>>,
    now: DateTime<Utc>,
) -> Result<Invitation, Problem> {
    check_pending(invitation)?;
    let mut tx = store.begin_write().await?;
    answer(&mut tx, store.backend(), actor, invitation, status, now).await?;
    if let Some(membership) = membership {
        write_member(&mut tx, store.backend(), actor, membership, now).await?;
    }
    tx.commit().await?;
    Ok(get(store, &invitation.id).await?.expect("exists"))
}
