//! The visa and signature circuit: submission, visas, signatures (electronic or uploaded copies),
//! refusal, and the date-driven moves (activation, the superseded convention ended).

use super::draft::{check_no_overlap, require_original_in_force, start_at_submission, Coverage};
use super::ending::{end_pending_avenants, Ended};
use super::{
    audit_to_parties, begin_locked, commit_and_reload, lock_if_exists, new_version, party_orgs, record,
    record_for_parties, reload, require_conductor_of, require_status, serialise_coverage, set_status, void_steps,
    writes_convention, Ctx,
};
use crate::conventions::avenant;
use crate::conventions::delegation::{self, Delegation};
use crate::conventions::frozen::{Frozen, Rendering};
use crate::conventions::model::{ConventionModel, SignatureMode};
use crate::conventions::{find_model, get_convention, roles_key, Convention, Status};
use chrono::{DateTime, Utc};
use ent_documents::documents::sha256_hex;
use ent_kernel::clock::{french_date, today_in_france};
use ent_kernel::error::{conflict_unless, Problem, ProblemKind};
use ent_kernel::kernel::roles::Role;
use ent_kernel::naming;
use ent_kernel::store::expect_same_version;
use ent_kernel::store::{new_id, timestamp, Backend, Tx};
use ent_kernel::validate::{self, is_blank, parse_any_date};
use ent_platform::identity::authz::{forbidden, users_with_role};
use ent_platform::identity::Actor;
use ent_platform::registry::queries::get_org_in;
use ent_platform::registry::Org;
use serde_json::json;
use sqlx::AnyConnection;

/// Draft → in signature: the document is frozen by its hash; visa givers, or
/// the signers when there is no visa, are notified.
pub async fn submit(ctx: &Ctx<'_>, conv: &Convention) -> Result<Convention, Problem> {
    require_conductor_of(ctx, conv)?;
    require_status(conv, &[Status::Draft], "soumettre à signature")?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    crate::conventions::signatories::check_complete(model, conv)?;
    super::draft::require_commitments(model, conv.document_edition, &conv.parameters)?;
    let conv = &start_at_submission(ctx, model, conv)?;
    check_no_overlap_of(&mut *ctx.store.conn().await?, ctx.models, model, conv, ctx.actor).await?;
    let amended = avenant::amended_of(&mut *ctx.store.conn().await?, model, conv).await?;
    avenant::require_changes(model, conv, amended.as_ref())?;
    if let Some(amended) = amended.as_ref().filter(|_| model.governs_ent()) {
        crate::conventions::signatories::check_own_acts(conv, &amended.previous)?;
    }
    let body = crate::conventions::document::body(model, conv, amended.as_ref())?;
    let typography = crate::conventions::document::typography(conv);
    let rendering = Rendering::of(&Frozen::of(body, conv), typography)?.with_pdf().await?;
    let hash = rendering.fingerprint();
    let (mut tx, current) = begin_locked(ctx, &conv.id).await?;
    require_status(&current, &[Status::Draft], "soumettre à signature")?;
    expect_same_version(conv.version, current.version)?;
    require_original_in_force(&mut tx, &current).await?;
    set_status(&mut tx, &conv.id, Status::InSignature, ctx.now).await?;
    crate::conventions::frozen::store(&mut tx, &conv.id, &rendering, ctx.actor, ctx.now).await?;
    sqlx::query(
        "UPDATE conventions SET document_hash = $1, submitted_at = $2, refusal_comment = NULL, start_date = $3 \
         WHERE id = $4",
    )
    .bind(&hash)
    .bind(timestamp(ctx.now))
    .bind(&conv.start_date)
    .bind(&conv.id)
    .execute(&mut *tx)
    .await?;
    record_for_parties(ctx, &mut tx, "conventions.submit", conv, json!({ "document_hash": hash })).await?;
    let recipients = next_actors(&mut tx, model, conv, &[]).await?;
    crate::conventions::jobs::notify(&mut tx, &recipients, conv, "submitted", json!({}), ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// [`check_no_overlap`] for a convention as it stands (its schools, dates and parties), read
/// through `conn`, told to `actor`.
async fn check_no_overlap_of(
    conn: &mut AnyConnection,
    models: &[ConventionModel],
    model: &ConventionModel,
    conv: &Convention,
    actor: &Actor,
) -> Result<(), Problem> {
    let (start, end) = (parse_any_date("start_date", &conv.start_date)?, parse_any_date("end_date", &conv.end_date)?);
    let schools = school_orgs(conn, conv).await?;
    let coverage = Coverage {
        model,
        schools: &schools,
        start,
        end,
        lineage: Some(&conv.root_id),
        roles: roles_key(model, &conv.parties, conv.rgpd_controller.as_ref()),
        supersedes: conv.supersedes_id.as_deref(),
        drafted: false,
    };
    check_no_overlap(conn, models, &coverage, actor).await
}

async fn school_orgs(conn: &mut AnyConnection, conv: &Convention) -> Result<Vec<Org>, Problem> {
    let mut schools = Vec::new();
    for s in &conv.schools {
        if let Some(org) = get_org_in(&mut *conn, &s.id).await? {
            schools.push(org);
        }
    }
    Ok(schools)
}

/// Who must act next: the pending visa, else the parties whose turn it is to sign.
async fn next_actors(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
    done_steps: &[&str],
) -> Result<Vec<String>, Problem> {
    let visas_done: Vec<&str> =
        conv.live_steps("visa").map(|s| s.step_key.as_str()).chain(done_steps.iter().copied()).collect();
    if let Some(visa) = model.visas.iter().find(|v| !visas_done.contains(&v.key.as_str())) {
        let mut emails = Vec::new();
        for party in conv.parties.iter().filter(|p| p.key == visa.party) {
            emails.extend(users_with_role(conn, &party.org.id, visa.role.as_str()).await?);
        }
        return Ok(emails);
    }
    let mut emails = Vec::new();
    for party in pending_signers(model, conv) {
        let spec = model.parties.iter().find(|s| s.key == party.key).expect("party of the model");
        emails.extend(users_with_role(conn, &party.org.id, spec.signing_role.as_str()).await?);
    }
    Ok(emails)
}

/// Who must act once a step is recorded (`after`, plus the `done` steps not in it yet) and
/// did not have to before it (`before`): the only ones the `submitted` notice goes to then.
/// In a parallel circuit every pending signatory was told at once; a signature tells no one.
async fn newly_awaited(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    before: &Convention,
    after: &Convention,
    done: &[&str],
) -> Result<Vec<String>, Problem> {
    let already = next_actors(conn, model, before, &[]).await?;
    let next = next_actors(conn, model, after, done).await?;
    Ok(next.into_iter().filter(|e| !already.contains(e)).collect())
}

/// The e-mails of who must act next on `conv` (the holders of the pending visa, else the
/// signatories of the parties whose turn it is): those the `submitted` notice goes to.
pub async fn awaited_actors(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Vec<String>, Problem> {
    if conv.status != Status::InSignature {
        return Ok(Vec::new());
    }
    next_actors(conn, model, conv, &[]).await
}

/// What the circuit of `conv` cannot get, in French: each visa not given and each required
/// signature missing (whatever its turn) whose organisation has nobody holding its role, so
/// that nobody can give it and no notice reaches it (a new département with no account, say);
/// and how to unblock it. Said at submission, at each signature and on the convention's page
/// (`with_warnings`); nothing past the signature circuit.
pub async fn unreachable_steps(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Vec<String>, Problem> {
    if conv.status != Status::InSignature {
        return Ok(Vec::new());
    }
    let given: Vec<&str> = conv.live_steps("visa").map(|s| s.step_key.as_str()).collect();
    let signed: Vec<(&str, &str)> =
        conv.live_steps("signature").map(|s| (s.step_key.as_str(), s.org_id.as_str())).collect();
    let mut steps: Vec<(CircuitStep, &crate::conventions::Party, Role)> = Vec::new();
    for visa in model.visas.iter().filter(|v| !given.contains(&v.key.as_str())) {
        let label = naming::in_sentence(&visa.label);
        steps.extend(
            conv.parties
                .iter()
                .filter(|p| p.key == visa.party)
                .map(|p| (CircuitStep::Visa(label.clone()), p, visa.role)),
        );
    }
    for party in conv.parties.iter().filter(|p| p.signature_required) {
        let spec = model.parties.iter().find(|s| s.key == party.key);
        if let Some(spec) = spec.filter(|_| !signed.contains(&(party.key.as_str(), party.org.id.as_str()))) {
            steps.push((CircuitStep::Signature, party, spec.signing_role));
        }
    }
    let mut said = Vec::new();
    for (step, party, role) in steps {
        if users_with_role(&mut *conn, &party.org.id, role.as_str()).await?.is_empty() {
            said.push(step.unreachable(party, role));
        }
    }
    Ok(said)
}

/// A step of the circuit [`unreachable_steps`] speaks of: a visa (its label in a sentence) or a
/// party's signature.
enum CircuitStep {
    Visa(String),
    Signature,
}

impl CircuitStep {
    /// « Personne ne peut signer pour le Département du Val-de-Marne : … », and how to unblock it.
    fn unreachable(&self, party: &crate::conventions::Party, role: Role) -> String {
        let org = naming::of_org(party.org.kind, &naming::display_name(&party.org.name));
        let (what, who, then) = match self {
            CircuitStep::Visa(label) => {
                (format!("donner le {label}"), "de la personne qui le donne", "le donner".to_string())
            }
            CircuitStep::Signature => (
                "signer".to_string(),
                "de son signataire",
                "signer en ligne ou déposer l'exemplaire signé sur papier".to_string(),
            ),
        };
        format!(
            "Personne ne peut {what} pour {} : aucun compte n'y détient le rôle « {} ». Créez le compte {who} \
             (Utilisateurs et rôles) et attribuez-lui ce rôle {} ; il pourra alors {then}.",
            org.article,
            role.as_str(),
            org.to()
        )
    }
}

/// What `conv`, still in preparation or in signature, waits for, as a sentence's end in French
/// (« attend la signature du Département du Val-de-Marne », « attend le visa du service juridique
/// du rectorat », « reste à soumettre à signature »): what the provisioning gate says of the
/// convention under way for a school it keeps closed.
pub fn awaited_text(model: &ConventionModel, conv: &Convention) -> String {
    if conv.status == Status::Draft {
        return "reste à soumettre à signature".into();
    }
    if let Some(visa) = visa_due(model, conv) {
        return format!("attend le {}", naming::in_sentence(&visa.label));
    }
    let of: Vec<String> = pending_signers(model, conv)
        .iter()
        .map(|p| naming::of_org(p.org.kind, &naming::display_name(&p.org.name)).of)
        .collect();
    match of.as_slice() {
        [] => "attend sa dernière étape".into(),
        [one] => format!("attend la signature {one}"),
        _ => format!("attend les signatures {}", naming::and_list(&of)),
    }
}

/// Parties whose signature is required, missing, and (ordered circuits) due now.
pub fn pending_signers<'c>(model: &ConventionModel, conv: &'c Convention) -> Vec<&'c crate::conventions::Party> {
    let signed: Vec<(&str, &str)> =
        conv.live_steps("signature").map(|s| (s.step_key.as_str(), s.org_id.as_str())).collect();
    let missing: Vec<&crate::conventions::Party> = conv
        .parties
        .iter()
        .filter(|p| p.signature_required && !signed.contains(&(p.key.as_str(), p.org.id.as_str())))
        .collect();
    match model.signatures {
        SignatureMode::Parallel => missing,
        SignatureMode::Ordered => {
            let Some(first) = missing.iter().map(|p| p.order).min() else { return vec![] };
            missing.into_iter().filter(|p| p.order == first).collect()
        }
    }
}

/// The party (and organisation) the actor may sign or visa for, by role.
fn acting_party<'c>(
    actor: &Actor,
    conv: &'c Convention,
    role: Role,
    key: Option<&str>,
) -> Vec<&'c crate::conventions::Party> {
    conv.parties
        .iter()
        .filter(|p| key.is_none_or(|k| p.key == k))
        .filter(|p| actor.bindings.iter().any(|b| b.role == role && b.org.as_ref().is_some_and(|o| o.id == p.org.id)))
        .collect()
}

/// The visa the circuit of `conv` (of `model`) waits for, if any.
fn visa_due<'m>(model: &'m ConventionModel, conv: &Convention) -> Option<&'m crate::conventions::model::VisaSpec> {
    let done: Vec<&str> = conv.live_steps("visa").map(|s| s.step_key.as_str()).collect();
    model.visas.iter().find(|v| !done.contains(&v.key.as_str()))
}

/// The visa `actor` may give now ([`give_visa`] accepts it): the one due, in signature, which
/// it gives for its party by role, not having signed this convention.
pub fn visa_for<'m>(
    actor: &Actor,
    model: &'m ConventionModel,
    conv: &Convention,
) -> Option<&'m crate::conventions::model::VisaSpec> {
    let visa = visa_due(model, conv).filter(|_| conv.status == Status::InSignature)?;
    let party = acting_party(actor, conv, visa.role, Some(&visa.party));
    (!party.is_empty() && not_both_visa_and_signature(actor, conv, "signature").is_ok()).then_some(visa)
}

/// Whether `actor` may be told where `conv`'s visas stand: a writer of one of its parties, or a
/// holder of one of its visas' roles at that visa's party, whatever its state now. Anyone else
/// asking for a visa is refused for their role ([`give_visa`]) before the state is read.
fn may_ask_for_visa(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    writes_convention(actor, model, conv)
        || model.visas.iter().any(|v| !acting_party(actor, conv, v.role, Some(&v.party)).is_empty())
}

/// Why [`may_ask_for_visa`] refuses: who gives the visas of `model`, if any.
fn visa_refused(model: &ConventionModel) -> Problem {
    let givers: Vec<String> = model
        .visas
        .iter()
        .map(|v| format!("le visa « {} » revient au rôle {} de la partie {}", v.label, v.role.as_str(), v.party))
        .collect();
    if givers.is_empty() {
        return forbidden(
            "cette convention ne prévoit aucun visa, et vous n'êtes le rédacteur d'aucune de ses parties",
        );
    }
    forbidden(format!("vous ne donnez aucun visa sur cette convention : {}", givers.join(" ; ")))
}

/// Gives the visa due, as the actor. Role first: who may not ask for a visa on the convention
/// ([`may_ask_for_visa`]) is refused (403) whatever its state; then its state (409); then the
/// visa due now, whose role the actor must hold at its party (403).
pub async fn give_visa(ctx: &Ctx<'_>, conv: &Convention, visa_key: Option<&str>) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if !may_ask_for_visa(ctx.actor, model, conv) {
        return Err(visa_refused(model));
    }
    require_status(conv, &[Status::InSignature], "viser")?;
    let Some(visa) = visa_due(model, conv) else {
        return Err(Problem::conflict("aucun visa n'est attendu sur cette convention"));
    };
    conflict_unless(visa_key.is_none_or(|k| k == visa.key), || {
        format!("le visa attendu maintenant est « {} »", visa.label)
    })?;
    let Some(party) = acting_party(ctx.actor, conv, visa.role, Some(&visa.party)).into_iter().next() else {
        return Err(forbidden(format!(
            "le visa « {} » revient au rôle {} de la partie {}",
            visa.label,
            visa.role.as_str(),
            visa.party
        )));
    };
    not_both_visa_and_signature(ctx.actor, conv, "signature")?;
    let step = NewStep { kind: "visa", key: &visa.key, org_id: &party.org.id, role: visa.role.as_str() };
    insert_step(&mut tx, ctx, conv, step, None).await?;
    record(ctx, &mut tx, "conventions.visa", &conv.id, Some(&party.org.id), json!({ "visa": visa.key })).await?;
    let next = newly_awaited(&mut tx, model, conv, conv, &[visa.key.as_str()]).await?;
    crate::conventions::jobs::notify(&mut tx, &next, conv, "submitted", json!({}), ctx.now).await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// A step recorded: its kind (`visa`, `signature`), key (the visa's, the party's), the
/// organisation it is given for and the role it is given in.
struct NewStep<'a> {
    kind: &'a str,
    key: &'a str,
    org_id: &'a str,
    role: &'a str,
}

async fn insert_step(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    conv: &Convention,
    step: NewStep<'_>,
    delegation: Option<&Delegation>,
) -> Result<(), Problem> {
    let hash = conv.document_hash.clone().unwrap_or_default();
    sqlx::query(
        "INSERT INTO convention_steps (id, convention_id, kind, step_key, org_id, user_id, user_email, role, document_hash, at, \
         recorded_by, delegation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(new_id())
    .bind(&conv.id)
    .bind(step.kind)
    .bind(step.key)
    .bind(step.org_id)
    .bind(ctx.actor.user_id.clone().unwrap_or_default())
    .bind(ctx.actor.email())
    .bind(step.role)
    .bind(hash)
    .bind(timestamp(ctx.now))
    .bind(ctx.actor.recorded_on_behalf())
    .bind(delegation.and_then(Delegation::to_column))
    .execute(&mut **tx)
    .await?;
    // A visa or a signature changes the convention: an edit based on the version read before it
    // must not void it unseen (412 on its If-Match).
    new_version(tx, &conv.id, ctx.now).await
}

/// The legal visa and a signature are two persons' acts: refuses the actor's step when
/// they already gave a live step of the `other` kind on this convention.
fn not_both_visa_and_signature(actor: &Actor, conv: &Convention, other: &str) -> Result<(), Problem> {
    let Some(user_id) = actor.user_id.as_deref() else { return Ok(()) };
    if conv.live_steps(other).any(|s| s.user_id == user_id) {
        let done = if other == "visa" { "donné le visa juridique" } else { "signé" };
        return Err(forbidden(format!(
            "vous avez déjà {done} sur cette convention : le visa juridique et la signature reviennent à deux \
             personnes distinctes"
        )));
    }
    Ok(())
}

/// One person commits one party: refuses `actor`'s signature for `party` when they already signed
/// this convention for a party of another organisation (a visa is refused by
/// [`not_both_visa_and_signature`]), whatever roles they hold there. One organisation that is two
/// parties (a coordinator also member of its groupement) is one legal person: one signer signs both.
fn not_two_parties(actor: &Actor, conv: &Convention, party: &crate::conventions::Party) -> Result<(), Problem> {
    let Some(user_id) = actor.user_id.as_deref() else { return Ok(()) };
    let other = |s: &&crate::conventions::Step| s.user_id == user_id && s.org_id != party.org.id;
    let Some(signed) = conv.live_steps("signature").find(other) else { return Ok(()) };
    let org = conv.parties.iter().find(|p| p.org.id == signed.org_id);
    let name = org.map_or(signed.step_key.as_str(), |p| p.org.name.as_str());
    Err(Problem::conflict(format!(
        "vous avez déjà signé cette convention pour {name} : une même personne n'engage pas deux parties, la \
         signature de {} revient à un autre de ses signataires",
        party.org.name
    )))
}

/// Whether `actor` may be told where `conv`'s signatures stand: a writer of one of its parties,
/// or a holder of a party's signing role at its organisation, whatever its state now. Anyone
/// else asking to sign is refused for their role ([`sign`]) before the state is read.
fn may_ask_to_sign(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    writes_convention(actor, model, conv) || !signer_of(actor, model, conv, None).is_empty()
}

/// Why one who holds no signing role at the party asked for is refused.
const NOT_A_SIGNER: &str = "vous ne détenez le rôle de signataire d'aucune partie de cette convention";

/// Signs for the actor's party. Role first: who may not ask to sign it ([`may_ask_to_sign`]) is
/// refused (403) whatever its state; then its state (409); then the party signed for, whose
/// signing role the actor must hold (403). `document_hash`, when given, must be the hash
/// of the text the signer read. Decided on the convention as locked in the write
/// transaction: simultaneous signers queue, the last one completes it, and the
/// same party signing twice records one signature (409 for the other). Who is not the
/// representative the document names signs by délégation de signature only (`signing.delegation`,
/// [`delegation::required`]: 422 without it), recorded with the signature and audited.
pub async fn sign(ctx: &Ctx<'_>, conv: &Convention, signing: Signing<'_>) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if !may_ask_to_sign(ctx.actor, model, conv) {
        return Err(forbidden(NOT_A_SIGNER));
    }
    require_still_alone(&mut tx, ctx.models, ctx.actor, conv).await?;
    let party = signing_party(ctx.actor, model, conv, signing.party, signing.document_hash)?;
    not_both_visa_and_signature(ctx.actor, conv, "visa")?;
    require_original_in_force(&mut tx, conv).await?;
    let signer = signer_name(&mut tx, ctx.actor).await?;
    let delegation = delegation::required(&signer, party, signing.delegation, ctx.today())?;
    if let Some(given) = &delegation {
        delegation::require_given_by_current(&mut tx, ctx.models, ctx.actor, party, given).await?;
    }
    let spec = model.parties.iter().find(|s| s.key == party.key).expect("party of the model");
    let step = NewStep { kind: "signature", key: &party.key, org_id: &party.org.id, role: spec.signing_role.as_str() };
    insert_step(&mut tx, ctx, conv, step, delegation.as_ref()).await?;
    record(
        ctx,
        &mut tx,
        "conventions.sign",
        &conv.id,
        Some(&party.org.id),
        json!({ "party": party.key, "document_hash": conv.document_hash, "delegation": delegation }),
    )
    .await?;
    let mut after = conv.clone();
    after.steps.push(crate::conventions::Step {
        id: String::new(),
        kind: "signature".into(),
        step_key: party.key.clone(),
        org_id: party.org.id.clone(),
        user_id: String::new(),
        user_name: String::new(),
        user_email: String::new(),
        role: String::new(),
        document_hash: String::new(),
        at: String::new(),
        voided_at: None,
        void_reason: None,
        recorded_by: None,
        delegation: None,
        delegation_column: None,
    });
    let remaining = pending_signers(model, &after);
    if remaining.is_empty() {
        mark_signed(&mut tx, ctx.store.backend(), ctx.actor, (model, conv), ctx.now).await?;
    } else {
        let next = newly_awaited(&mut tx, model, conv, &after, &[]).await?;
        crate::conventions::jobs::notify(&mut tx, &next, conv, "submitted", json!({}), ctx.now).await?;
    }
    tx.commit().await?;
    if remaining.is_empty() {
        activate_if_started(ctx, &conv.id).await?;
    }
    reload(ctx, &conv.id).await
}

/// What a signature request gives besides the convention: the party signed for (when the
/// signer holds the role at several), the SHA-256 of the text read, the délégation de signature
/// of one who signs in place of the representative the document names.
#[derive(Debug, Clone, Default)]
pub struct Signing<'a> {
    pub party: Option<&'a str>,
    pub document_hash: Option<&'a str>,
    pub delegation: Option<Delegation>,
}

/// The name the directory gives the signing person (their e-mail when it gives none): what
/// [`delegation::required`] compares with the representative the document names.
async fn signer_name(conn: &mut AnyConnection, actor: &Actor) -> Result<String, Problem> {
    let Some(user_id) = actor.user_id.as_deref() else { return Ok(actor.name.clone()) };
    let name: Option<String> = sqlx::query_scalar("SELECT COALESCE(display_name, email) FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(name.unwrap_or_else(|| actor.email().to_string()))
}

/// A convention in signature is checked again against the others on its schools before each
/// signature and at its completion: one renewed tacitly since its submission (no successor was
/// signed by its term) covers them on the same dates, and the signature is refused (409) naming
/// it. Nor is it signed while another convention on its schools over common dates, signed or in
/// force, splits the costs otherwise ([`CostConflict::binds`]; 409 naming it to whom sees it,
/// `actor`). Checked inside the write transaction `tx`, under [`serialise_coverage`]: a tacit
/// renewal or a signature of the other one is either committed and seen, or waits for this
/// transaction.
async fn require_still_alone(
    tx: &mut Tx,
    models: &[ConventionModel],
    actor: &Actor,
    conv: &Convention,
) -> Result<(), Problem> {
    if conv.status != Status::InSignature {
        return Ok(());
    }
    serialise_coverage(tx).await?;
    let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
    check_no_overlap_of(tx, models, model, conv, actor).await.map_err(|p| match p.kind {
        ProblemKind::Conflict => Problem {
            detail: format!("la convention {} ne peut plus être signée : {}", conv.reference, p.detail),
            ..p
        },
        _ => p,
    })?;
    let conflicts = super::cost_conflicts(tx, models, conv).await?;
    let Some(conflict) = conflicts.iter().find(|c| c.binds()) else { return Ok(()) };
    let problem = Problem::conflict(format!(
        "la convention {} ne peut pas être signée : {}",
        conv.reference,
        conflict.text(actor)
    ));
    Err(super::draft::naming_it(problem, conflict.other.reference_for(actor)))
}

/// The parties (the one named by `party_key`, or all) at whose organisation `actor` holds the
/// party's signing role: whom it signs for ([`sign`]), deposits a signed copy for
/// ([`may_deposit_signed`]) and, for a party that is a legal person, represents in opposing the
/// renewal (`renewal::oppose`).
pub(crate) fn signer_of<'c>(
    actor: &Actor,
    model: &ConventionModel,
    conv: &'c Convention,
    party_key: Option<&str>,
) -> Vec<&'c crate::conventions::Party> {
    conv.parties
        .iter()
        .filter(|p| party_key.is_none_or(|k| p.key == k))
        .filter(|p| {
            let role = model.parties.iter().find(|s| s.key == p.key).map(|s| s.signing_role);
            actor.bindings.iter().any(|b| Some(b.role) == role && b.org.as_ref().is_some_and(|o| o.id == p.org.id))
        })
        .collect()
}

/// The parties `actor` may sign for now ([`sign`] accepts it): in signature, the visas given,
/// its party's turn and not signed yet, it holds the signing role there, gave no visa and
/// signed for no other organisation.
pub fn parties_to_sign<'c>(
    actor: &Actor,
    model: &ConventionModel,
    conv: &'c Convention,
) -> Vec<&'c crate::conventions::Party> {
    let visas_given = conv.live_steps("visa").count() >= model.visas.len();
    if conv.status != Status::InSignature || !visas_given || not_both_visa_and_signature(actor, conv, "visa").is_err() {
        return Vec::new();
    }
    let due = pending_signers(model, conv);
    signer_of(actor, model, conv, None)
        .into_iter()
        .filter(|p| due.iter().any(|d| d.key == p.key && d.org.id == p.org.id))
        .filter(|p| not_two_parties(actor, conv, p).is_ok())
        .collect()
}

/// The party the actor signs for now, or why not.
fn signing_party<'c>(
    actor: &Actor,
    model: &ConventionModel,
    conv: &'c Convention,
    party_key: Option<&str>,
    document_hash: Option<&str>,
) -> Result<&'c crate::conventions::Party, Problem> {
    conflict_unless(conv.status != Status::Draft, || {
        "une convention en brouillon ne se signe pas : soumettez-la d'abord"
    })?;
    require_status(conv, &[Status::InSignature], "signer")?;
    let visas_done = conv.live_steps("visa").count();
    conflict_unless(visas_done >= model.visas.len(), || {
        format!("visa attendu avant les signatures : {}", model.visas[visas_done].label)
    })?;
    if let (Some(given), Some(current)) = (document_hash, &conv.document_hash) {
        // Hexadecimal either case: `sha256sum` prints it in lower case, PowerShell's Get-FileHash in upper.
        conflict_unless(given.trim().eq_ignore_ascii_case(current), || {
            "le document a changé depuis votre lecture : relisez-le avant de signer"
        })?;
    }
    let candidates = signer_of(actor, model, conv, party_key);
    if candidates.is_empty() {
        return Err(forbidden(NOT_A_SIGNER));
    }
    let signed: Vec<(&str, &str)> =
        conv.live_steps("signature").map(|s| (s.step_key.as_str(), s.org_id.as_str())).collect();
    let Some(party) = candidates.into_iter().find(|p| !signed.contains(&(p.key.as_str(), p.org.id.as_str()))) else {
        return Err(Problem::conflict("votre partie a déjà signé cette convention"));
    };
    not_two_parties(actor, conv, party)?;
    let due = pending_signers(model, conv);
    conflict_unless(due.iter().any(|p| p.key == party.key && p.org.id == party.org.id), || {
        "ce n'est pas encore le tour de votre partie de signer (circuit ordonné)"
    })?;
    Ok(party)
}

/// In signature → signed, once every required signature is present; audited as `actor`
/// (the last signer, or the daily job that completes it) for its parties, like every lifecycle
/// record ([`audit_to_parties`]).
pub(super) async fn mark_signed(
    tx: &mut Tx,
    backend: Backend,
    actor: &Actor,
    (model, conv): (&ConventionModel, &Convention),
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    sqlx::query("UPDATE conventions SET signed_at = $1 WHERE id = $2")
        .bind(timestamp(now))
        .bind(&conv.id)
        .execute(&mut **tx)
        .await?;
    set_status(tx, &conv.id, Status::Signed, now).await?;
    audit_to_parties(tx, backend, actor, "conventions.signed", &conv.id, &party_orgs(conv), json!({}), now).await?;
    // Signed before its start: its signers are told now, not only when it comes into force
    // (`activate_if_started` tells them then; a convention already started is told once, then).
    if conv.start_date > today_in_france(now).to_string() {
        let recipients = party_signers(tx, model, conv).await?;
        crate::conventions::jobs::notify(tx, &recipients, conv, "signed", json!({}), now).await?;
    }
    Ok(())
}

/// Whether `actor` may refuse `conv` ([`refuse`]): in signature, it holds the signing role or a
/// visa's role at a party's organisation.
pub fn may_refuse(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    conv.status == Status::InSignature && signs_or_visas(actor, model, conv)
}

/// Whether `actor` holds, at a party's organisation of `conv`, its signing role or a visa's
/// role: who may refuse it once in signature ([`may_refuse`]), whatever its state now.
fn signs_or_visas(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    conv.parties.iter().any(|p| {
        let signing = model.parties.iter().filter(|s| s.key == p.key).map(|s| s.signing_role);
        let roles: Vec<Role> = signing.chain(model.visas.iter().filter(|v| v.party == p.key).map(|v| v.role)).collect();
        actor.bindings.iter().any(|b| roles.contains(&b.role) && b.org.as_ref().is_some_and(|o| o.id == p.org.id))
    })
}

/// A signer or visa giver refuses: back to draft, steps voided, comment kept.
pub async fn refuse(ctx: &Ctx<'_>, conv: &Convention, comment: &str) -> Result<Convention, Problem> {
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if !signs_or_visas(ctx.actor, model, conv) {
        return Err(forbidden("seuls les signataires et viseurs des parties peuvent refuser"));
    }
    require_status(conv, &[Status::InSignature], "refuser")?;
    if is_blank(comment) {
        return Err(Problem::invalid_field("comment", "indiquez le motif du refus"));
    }
    if !may_refuse(ctx.actor, model, conv) {
        return Err(forbidden("seuls les signataires et viseurs des parties peuvent refuser"));
    }
    let authors = void_steps(&mut tx, conv, "convention refusée et renvoyée en brouillon", ctx.now).await?;
    set_status(&mut tx, &conv.id, Status::Draft, ctx.now).await?;
    sqlx::query("UPDATE conventions SET refusal_comment = $1 WHERE id = $2")
        .bind(comment.trim())
        .bind(&conv.id)
        .execute(&mut *tx)
        .await?;
    record_for_parties(ctx, &mut tx, "conventions.refuse", conv, json!({ "comment": comment.trim() })).await?;
    let mut recipients = authors;
    recipients.extend(party_signers(&mut tx, model, conv).await?);
    crate::conventions::jobs::notify(
        &mut tx,
        &recipients,
        conv,
        "refused",
        json!({ "comment": comment.trim() }),
        ctx.now,
    )
    .await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// Users holding the signing role at every party.
pub async fn party_signers(
    conn: &mut AnyConnection,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<Vec<String>, Problem> {
    let mut emails = Vec::new();
    for party in &conv.parties {
        if let Some(spec) = model.parties.iter().find(|s| s.key == party.key) {
            emails.extend(users_with_role(conn, &party.org.id, spec.signing_role.as_str()).await?);
        }
    }
    emails.sort();
    emails.dedup();
    Ok(emails)
}

/// Signed copies kept per convention: the parties' copies, a few re-scans at most.
pub const MAX_SIGNED_COPIES: i64 = 10;

/// An externally signed copy (e.g. a PDF from a parapheur), stored with its hash;
/// refused on a draft and beyond [`MAX_SIGNED_COPIES`].
pub async fn upload_signed(
    ctx: &Ctx<'_>,
    conv: &Convention,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Result<Convention, Problem> {
    may_deposit(ctx, conv)?;
    if bytes.is_empty() {
        return Err(Problem::invalid_field("fichier", "fichier vide"));
    }
    let name = file_name.trim();
    // Printed in the convention's document: one line, nothing that reorders what follows it.
    if name.is_empty() || name.len() > 200 || name.contains(['/', '\\']) || validate::line(name).is_err() {
        return Err(Problem::invalid_field(
            "fichier",
            "nom de fichier invalide (en-tête Content-Disposition ou paramètre name)",
        ));
    }
    let sha = sha256_hex(bytes);
    // Under the convention's row lock, decided on its current state, so that two sends of one
    // file cannot both find it absent.
    let (mut tx, ref conv) = begin_locked(ctx, &conv.id).await?;
    may_deposit(ctx, conv)?;
    // The same file the same person already deposited (a retry whose answer was lost): nothing
    // is stored or audited twice. The person by their account; a copy deposited before the
    // account was recorded (migration 0053), or from the command line, by the actor's name.
    let deposited: Option<String> = sqlx::query_scalar(
        "SELECT id FROM convention_files WHERE convention_id = $1 AND sha256 = $2 AND file_name = $3 \
         AND (uploaded_by_user_id = $4 OR (uploaded_by_user_id IS NULL AND uploaded_by = $5))",
    )
    .bind(&conv.id)
    .bind(&sha)
    .bind(name)
    .bind(&ctx.actor.user_id)
    .bind(&ctx.actor.name)
    .fetch_optional(&mut *tx)
    .await?;
    if deposited.is_some() {
        drop(tx);
        return reload(ctx, &conv.id).await;
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM convention_files WHERE convention_id = $1")
        .bind(&conv.id)
        .fetch_one(&mut *tx)
        .await?;
    conflict_unless(stored < MAX_SIGNED_COPIES, || {
        format!(
            "la convention {} a déjà {MAX_SIGNED_COPIES} exemplaires signés : aucun autre n'est accepté",
            conv.reference
        )
    })?;
    sqlx::query(
        "INSERT INTO convention_files (id, convention_id, file_name, content_type, sha256, size, content, uploaded_by, \
         uploaded_by_user_id, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_id())
    .bind(&conv.id)
    .bind(name)
    .bind(content_type)
    .bind(&sha)
    .bind(bytes.len() as i64)
    .bind(bytes.to_vec())
    .bind(&ctx.actor.name)
    .bind(&ctx.actor.user_id)
    .bind(timestamp(ctx.now))
    .execute(&mut *tx)
    .await?;
    record_for_parties(
        ctx,
        &mut tx,
        "conventions.upload_signed",
        conv,
        json!({ "file": name, "sha256": sha, "size": bytes.len() }),
    )
    .await?;
    commit_and_reload(ctx, tx, &conv.id).await
}

/// Whether `actor` may deposit a signed copy of `conv` (of `model`): it signs for one of its
/// parties, [`sign`]'s own rule ([`signer_of`]: the party's signing role at its organisation),
/// whatever its state now; not any writer of a party, nor an administrator, who signs for none.
pub fn may_deposit_signed(actor: &Actor, model: &ConventionModel, conv: &Convention) -> bool {
    !signer_of(actor, model, conv, None).is_empty()
}

/// Why one who signs for no party of a convention is refused the deposit of its signed copy.
const NOT_A_DEPOSITOR: &str = "un exemplaire signé est déposé par le signataire d'une partie, qui détient le rôle \
     de signataire de sa partie à son organisation : vous ne le détenez à aucune partie de cette convention";

/// Refuses what is not a PDF (422 on `fichier`): a signed copy is deposited as one, through the
/// API as from the command line.
pub fn require_pdf(bytes: &[u8]) -> Result<(), Problem> {
    match bytes.starts_with(b"%PDF") {
        true => Ok(()),
        false => Err(Problem::invalid_field("fichier", "ce fichier n'est pas un PDF")),
    }
}

/// A signed copy is deposited by who signs for a party ([`may_deposit_signed`]: 403 whatever its
/// state), once the convention left the draft (409).
fn may_deposit(ctx: &Ctx<'_>, conv: &Convention) -> Result<(), Problem> {
    let model = find_model(ctx.models, &conv.model_id, Some(conv.model_version))?;
    if !may_deposit_signed(ctx.actor, model, conv) {
        return Err(forbidden(NOT_A_DEPOSITOR));
    }
    conflict_unless(conv.status != Status::Draft, || {
        format!(
            "la convention {} est un brouillon : un exemplaire signé se dépose une fois la convention soumise à signature",
            conv.reference
        )
    })
}

/// What [`complete_if_all_signed`] did with a convention in signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every visa and signature present: now signed (active if started).
    Completed,
    /// Nothing to complete: a signature or visa is missing, or it is no longer in signature.
    Left,
    /// Every signature present, but another convention came into force on its schools
    /// meanwhile ([`require_still_alone`]): left in signature, audited
    /// `conventions.completion_refused`.
    Refused,
}

/// In signature → signed for a convention whose required visas and signatures are
/// all present but whose status was left behind (the daily job repairs it), unless another
/// convention now in force on its schools would overlap it ([`Completion::Refused`]).
pub async fn complete_if_all_signed(ctx: &Ctx<'_>, id: &str) -> Result<Completion, Problem> {
    let (store, models) = (ctx.store, ctx.models);
    let all_signed = |conv: &Convention| -> Result<bool, Problem> {
        let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
        Ok(conv.status == Status::InSignature
            && conv.live_steps("visa").count() >= model.visas.len()
            && pending_signers(model, conv).is_empty())
    };
    // A plain read first: only a complete convention takes the write lock.
    match get_convention(store, models, id).await? {
        Some(conv) if all_signed(&conv)? => {}
        _ => return Ok(Completion::Left),
    }
    let Some((mut tx, conv)) = lock_if_exists(ctx, id).await? else { return Ok(Completion::Left) };
    if !all_signed(&conv)? {
        return Ok(Completion::Left);
    }
    match require_still_alone(&mut tx, models, ctx.actor, &conv).await {
        Ok(()) => {}
        Err(p) if p.kind == ProblemKind::Conflict => {
            let summary = json!({ "reason": p.detail });
            let parties = party_orgs(&conv);
            let action = "conventions.completion_refused";
            audit_to_parties(&mut tx, store.backend(), ctx.actor, action, &conv.id, &parties, summary, ctx.now).await?;
            tx.commit().await?;
            return Ok(Completion::Refused);
        }
        Err(p) => return Err(p),
    }
    let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
    mark_signed(&mut tx, store.backend(), ctx.actor, (model, &conv), ctx.now).await?;
    tx.commit().await?;
    activate_if_started(ctx, &conv.id).await?;
    Ok(Completion::Completed)
}

/// Signed → active once the start date is reached; an avenant replaces its original.
pub async fn activate_if_started(ctx: &Ctx<'_>, id: &str) -> Result<bool, Problem> {
    let (store, models, actor, now) = (ctx.store, ctx.models, ctx.actor, ctx.now);
    let Some((mut tx, conv)) = lock_if_exists(ctx, id).await? else { return Ok(false) };
    let today = today_in_france(now).to_string();
    if conv.status != Status::Signed || conv.start_date > today {
        return Ok(false);
    }
    let model = find_model(models, &conv.model_id, Some(conv.model_version))?;
    set_status(&mut tx, &conv.id, Status::Active, now).await?;
    if let Some(original) = &conv.amends_id {
        set_status(&mut tx, original, Status::Amended, now).await?;
        crate::conventions::renewal::carry_non_renewal(&mut tx, original, &conv.id).await?;
    }
    let superseded = match &conv.supersedes_id {
        Some(replaced) => end_superseded(&mut tx, models, actor, replaced, &conv, now).await?,
        None => false,
    };
    let summary = json!({ "replaces": conv.amends_id, "supersedes": conv.supersedes_id, "superseded": superseded });
    audit_to_parties(
        &mut tx,
        store.backend(),
        actor,
        "conventions.activate",
        &conv.id,
        &party_orgs(&conv),
        summary,
        now,
    )
    .await?;
    let recipients = party_signers(&mut tx, model, &conv).await?;
    crate::conventions::jobs::notify(&mut tx, &recipients, &conv, "active", json!({}), now).await?;
    tx.commit().await?;
    Ok(true)
}

/// The résiliation of a convention replaced by `by` (a convention of another model), recorded
/// on the day `by` takes effect, audited as `actor`, its parties' signatories notified. Checked
/// again now, as it may have changed since `by` was created: only while it is signed or in force
/// and still covers one of `by`'s schools; false when it is left as it is.
async fn end_superseded(
    tx: &mut Tx,
    models: &[ConventionModel],
    actor: &Actor,
    replaced: &str,
    by: &Convention,
    now: DateTime<Utc>,
) -> Result<bool, Problem> {
    let Some(old) = crate::conventions::read_convention(tx, models, replaced, true).await? else { return Ok(false) };
    let schools: Vec<&str> = by.schools.iter().map(|s| s.id.as_str()).collect();
    if !matches!(old.status, Status::Active | Status::Signed) || !old.covers_any(&schools) {
        return Ok(false);
    }
    let reason = format!("remplacée par la convention {}", by.reference);
    sqlx::query(
        "UPDATE conventions SET status = 'terminated', termination_reason = $1, termination_effective = $2, \
         version = version + 1, updated_at = $3 WHERE id = $4",
    )
    .bind(&reason)
    .bind(&by.start_date)
    .bind(timestamp(now))
    .bind(&old.id)
    .execute(&mut **tx)
    .await?;
    let backend = Backend::of_connection(tx);
    let summary = json!({ "reason": reason, "effective": by.start_date, "superseded_by": by.reference });
    audit_to_parties(tx, backend, actor, "conventions.terminate", &old.id, &party_orgs(&old), summary, now).await?;
    end_pending_avenants(tx, backend, actor, &old, &Ended { on: &by.start_date, how: "a pris fin" }, now).await?;
    let model = find_model(models, &old.model_id, Some(old.model_version))?;
    let recipients = party_signers(tx, model, &old).await?;
    let extra = json!({ "reason": reason, "effective": french_date(&by.start_date), "mutual_agreement": false });
    crate::conventions::jobs::notify(tx, &recipients, &old, "terminated", extra, now).await?;
    Ok(true)
}
