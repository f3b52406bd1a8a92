//! An administrator's correction of the signature circuit: a signature recorded by mistake on a
//! convention still in signature is withdrawn (its step voided, for a stated reason), so that its
//! party signs again; the other parties' signatures stand. A convention signed by every party,
//! or in force, keeps its signatures: it is changed by avenant or ended by résiliation.

use super::signing::party_signers;
use super::{begin_locked, commit_and_reload, new_version, record_for_parties, Ctx};
use crate::conventions::{find_model, Convention, Party, Status, Step};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::naming;
use ent_kernel::store::{expect_same_version, timestamp, Tx};
use ent_kernel::validate::multiline;
use ent_platform::identity::authz::forbidden;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// The reason of a withdrawal, as the API takes it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalBody {
    /// Why the signature is withdrawn (required): audited and sent to the parties.
    #[schemars(length(min = 1))]
    pub reason: String,
}

/// A withdrawal as asked: the party whose signature goes (its key, or `key:org_id` for one
/// organisation of a party several play, as `signatories` names it), why, and the version of the
/// convention it was decided on (its `ETag`).
#[derive(Debug, Clone, Copy)]
pub struct Withdrawal<'a> {
    pub party: &'a str,
    pub reason: &'a str,
    pub version: i64,
}

/// The longest reason of a withdrawal.
const REASON_MAX: usize = 2000;

/// Why anyone but an administrator is refused.
const ADMIN_ONLY: &str = "seul un administrateur de la plateforme retire une signature donnée par erreur";

/// Withdraws the signature given for `asked.party` on `conv`, as an administrator (403 for
/// anyone else), on the version read (412 otherwise): only while the convention is in signature
/// (409: signed by every party or in force, it is changed by avenant or ended by résiliation);
/// the reason is required text (422 on `reason`); a party without a live signature, 409. The
/// step is voided with the reason (the party is awaited again, the document's signatures page
/// no longer names it), the others kept; audited `conventions.signature_withdrawn` for every
/// party, the parties' signatories (the académie's DAN among them) and the signer told.
pub async fn withdraw_signature(
    ctx: &Ctx<'_>,
    conv: &Convention,
    asked: Withdrawal<'_>,
) -> Result<Convention, Problem> {
    if !ctx.actor.is_admin() {
        return Err(forbidden(ADMIN_ONLY));
    }
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    expect_same_version(asked.version, conv.version)?;
    require_in_signature(conv)?;
    let reason = checked_reason(asked.reason)?;
    let (party, step) = signed_for(conv, asked.party)?;
    void_step(&mut tx, step, &reason, ctx).await?;
    new_version(&mut tx, &conv.id, ctx.now).await?;
    let summary = json!({
        "party": party.key, "org_id": party.org.id, "signed_at": step.at, "signed_by": step.user_email,
        "reason": reason,
    });
    record_for_parties(ctx, &mut tx, "conventions.signature_withdrawn", conv, summary).await?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    let mut recipients = party_signers(&mut tx, model, conv).await?;
    recipients.push(step.user_email.clone());
    recipients.retain(|e| !e.is_empty());
    recipients.sort();
    recipients.dedup();
    let extra = json!({ "party": naming::display_name(&party.org.name), "reason": reason });
    crate::conventions::jobs::notify(&mut tx, &recipients, conv, "signature_withdrawn", extra, ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// A signature is withdrawn from a convention in signature only; once every party signed, the
/// signatures bind them all: the way out is an avenant or a résiliation.
fn require_in_signature(conv: &Convention) -> Result<(), Problem> {
    match conv.status {
        Status::InSignature => Ok(()),
        Status::Signed | Status::Active => Err(Problem::conflict(format!(
            "la convention {} est {} : signée par toutes ses parties, elle les engage et ses signatures ne se \
             retirent plus ; pour la corriger, ses parties concluent un avenant, ou la résilient",
            conv.reference,
            conv.status.label()
        ))),
        other => Err(Problem::conflict(format!(
            "la convention {} est {} : seule une signature donnée sur une convention en signature se retire",
            conv.reference,
            other.label()
        ))),
    }
}

/// The reason, trimmed: required text of [`REASON_MAX`] characters at most, without control
/// characters (422 on `reason`).
fn checked_reason(reason: &str) -> Result<String, Problem> {
    let mut checks = Checks::default();
    let reason = checks.text("reason", reason, REASON_MAX);
    checks.check("reason", multiline(&reason));
    checks.finish()?;
    Ok(reason)
}

/// The party `key` names on `conv` (`key`, or `key:org_id` for one organisation of a party
/// several play) and its live signature: 404 for a party the convention does not have, 422 for
/// a key several organisations play, 409 for a party that has not signed.
fn signed_for<'c>(conv: &'c Convention, key: &str) -> Result<(&'c Party, &'c Step), Problem> {
    let (party_key, org_id) = match key.split_once(':') {
        Some((party, org)) => (party, Some(org)),
        None => (key, None),
    };
    let named: Vec<&Party> =
        conv.parties.iter().filter(|p| p.key == party_key && org_id.is_none_or(|o| p.org.id == o)).collect();
    let party = match named.as_slice() {
        [] => return Err(Problem::not_found(format!("la convention {} n'a pas de partie « {key} »", conv.reference))),
        [one] => *one,
        _ => {
            return Err(Problem::invalid_field(
                "party",
                format!(
                    "plusieurs organisations tiennent la partie « {party_key} » : désignez-en une par \
                     « {party_key}:<identifiant de l'organisation> »"
                ),
            ))
        }
    };
    let step = conv.live_steps("signature").find(|s| s.step_key == party.key && s.org_id == party.org.id);
    let step = step.ok_or_else(|| {
        Problem::conflict(format!(
            "{} n'a pas signé la convention {} (ou sa signature est déjà retirée) : aucune signature à retirer",
            naming::display_name(&party.org.name),
            conv.reference
        ))
    })?;
    Ok((party, step))
}

/// Voids the signature `step`, for `reason`: its party is awaited again.
async fn void_step(tx: &mut Tx, step: &Step, reason: &str, ctx: &Ctx<'_>) -> Result<(), Problem> {
    sqlx::query("UPDATE convention_steps SET voided_at = $1, void_reason = $2 WHERE id = $3 AND voided_at IS NULL")
        .bind(timestamp(ctx.now))
        .bind(format!("signature retirée par un administrateur : {reason}"))
        .bind(&step.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
