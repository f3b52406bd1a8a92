//! Working a ticket: comments (with files), status changes, escalation and return, field updates.

use super::change::{acting_level, begin, begin_at_level, bump, finish};
use super::create::governors;
use super::create::{check_category, check_grade, due_moment, parse_priority};
use super::events::{append_event, notify, refresh, requester_email, NewEvent};
use super::{find, Ctx, Ticket};
use crate::support::sla::SlaState;
use crate::support::{levels_of, place_of_org, queue_emails, Level, Priority, Status, Viewer};
use ent_kernel::error::{conflict_unless, Checks, Problem};
use ent_kernel::naming;
use ent_kernel::store::{expect_same_version, timestamp, Store, Tx};
use ent_kernel::text::capitalised;
use ent_ops::notify::Notice;
use ent_platform::identity::authz::forbidden;
use ent_platform::identity::{bindings_of, get_user, Actor};
use ent_platform::registry::queries::get_org_in;
use ent_platform::registry::Org;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

// --- comments ---------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    #[schemars(length(min = 1, max = 20000))]
    pub body: String,
    /// `public` (default: the requester sees it; from the support, the N1 only) or `internal`, a
    /// note to the support: the N1 and the N2 read it; the vendor's (N3) is read by the three
    /// levels (`support` in the history), never by the requester.
    #[serde(default)]
    #[schemars(extend("enum" = ["public", "internal", null]))]
    pub visibility: Option<String>,
}

pub async fn comment(ctx: &Ctx<'_>, id: &str, c: NewComment) -> Result<Ticket, Problem> {
    comment_with_files(ctx, id, c, "files", Vec::new()).await
}

/// The comment and its `files` (checked by [`crate::support::attachments::check`]), seen by
/// whom sees the comment, as one operation: both committed together, or neither.
/// Beyond [`crate::support::attachments::MAX_PER_TICKET`] the refusal names field `field`
/// (the form control the files came from), before anything is written.
pub async fn comment_with_files(
    ctx: &Ctx<'_>,
    id: &str,
    c: NewComment,
    field: &str,
    files: Vec<crate::support::attachments::Checked>,
) -> Result<Ticket, Problem> {
    let mut checks = Checks::default();
    checks.text("body", &c.body, 20_000);
    let public = match c.visibility.as_deref().unwrap_or("public") {
        "public" => true,
        "internal" => false,
        other => {
            checks.fail("visibility", format!("« {other} » inconnu : public ou internal"));
            true
        }
    };
    checks.finish()?;
    let (t, v) = find(ctx.store(), ctx.actor, id).await?;
    let levels = levels_of(ctx.store(), ctx.actor, &t).await?;
    let (mut tx, t) = begin(ctx, &t.id, None).await?;
    let level = writing_level(&levels, &t).filter(|_| v != Viewer::Requester);
    if let Some(level) = level.filter(|_| public) {
        refuse_public_above_n1(&t, level)?;
    }
    conflict_unless(t.status != Status::Closed, || {
        format!("le ticket {} est clos : ouvrez-en un nouveau", t.reference)
    })?;
    let file_visibility =
        if files.is_empty() { "public" } else { crate::support::attachments::visibility_of(v, level, public)? };
    if let Some(refusal) = crate::support::attachments::room_for(&mut tx, &t, file_visibility, files.len()).await? {
        return Err(Problem::invalid_field(field, refusal));
    }
    let body = c.body.trim();
    let written = Written::of(v, level, public);
    if v == Viewer::Requester {
        if !public {
            return Err(forbidden("un demandeur n'écrit que des commentaires publics"));
        }
        let e = NewEvent::new("comment", "public").body(body);
        append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
        // The requester's reply resumes a paused ticket and reopens a resolved one.
        if matches!(t.status, Status::WaitingRequester | Status::Resolved) {
            let e = NewEvent::new("status", "public").moved(t.status.as_str(), Status::InProgress.as_str());
            append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
            bump(&mut tx, &t, "status = $1, resolved_at = $2", &[Some("in_progress".into()), None], ctx.now).await?;
        } else {
            bump(&mut tx, &t, "", &[], ctx.now).await?;
        }
        if let Some(org) = holding_org(&t) {
            let school = school_of(&mut tx, &t).await?;
            let queue = queue_emails(&mut tx, t.level, &org, &school).await?;
            notify(&mut tx, queue, &t, "reply", json!({ "body": body }), ctx.now, ctx.now).await?;
        }
    } else {
        let level = level.expect("a support viewer holds a level");
        let e = NewEvent::new("comment", written.visibility()).body(body).by(level);
        append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
        // A note the requester does not see (internal, or the vendor's to the support) leaves
        // the ticket's row as they read it: no new `version` (their `ETag`) nor `updated_at`
        // tells of it. It changes no field a staff `If-Match` guards (assignment, qualification,
        // status, level), and the SLA is derived again below from the log, under the row lock.
        if public {
            bump(&mut tx, &t, "", &[], ctx.now).await?;
            let to = requester_email(&t);
            notify(&mut tx, to, &t, "comment", json!({ "body": body }), ctx.now, ctx.now).await?;
        }
    }
    crate::support::attachments::insert(&mut tx, ctx, &t, file_visibility, files).await?;
    refresh(&mut tx, &ctx.state.support, &t, ctx.now).await?;
    let summary = json!({ "visibility": if public { "public" } else { "internal" } });
    finish(ctx, tx, &t, "support.tickets.comment", summary).await
}

/// What a comment did, to whom: what its confirmation says (the console's notice, `entctl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The requester's message: in their history, the queue of the level holding the ticket
    /// told by e-mail.
    ToSupport,
    /// The N1's reply: in the requester's history, and e-mailed to them.
    ToRequester,
    /// A note of the N1 or the N2 (`internal`): read by the N1 and the N2 only.
    InternalNote,
    /// A note written at N3 (`support`): read by the three levels, never by the requester.
    SupportNote,
}

impl Written {
    pub const ALL: [Written; 4] =
        [Written::ToSupport, Written::ToRequester, Written::InternalNote, Written::SupportNote];

    /// What a comment by `viewer`, writing at `level` ([`writing_level`]), `public` or not, is.
    pub fn of(viewer: Viewer, level: Option<Level>, public: bool) -> Written {
        match (viewer, level, public) {
            (Viewer::Requester, _, _) | (_, None, _) => Written::ToSupport,
            (_, Some(_), true) => Written::ToRequester,
            (_, Some(Level::N3), false) => Written::SupportNote,
            (_, Some(_), false) => Written::InternalNote,
        }
    }

    /// Who reads the entry in the history: `public` (the requester too), `support` (N1 to N3),
    /// `internal` (N1 and N2).
    pub fn visibility(self) -> &'static str {
        match self {
            Written::ToSupport | Written::ToRequester => "public",
            Written::InternalNote => "internal",
            Written::SupportNote => "support",
        }
    }

    /// Its key in the console's `?apres=`.
    pub fn key(self) -> &'static str {
        match self {
            Written::ToSupport => "message",
            Written::ToRequester => "reponse",
            Written::InternalNote => "note",
            Written::SupportNote => "note-support",
        }
    }

    /// The confirmation: what happened, to whom.
    pub fn confirmation(self) -> &'static str {
        match self {
            Written::ToSupport => {
                "Votre message est ajouté au ticket : le support qui le traite en est prévenu par courriel."
            }
            Written::ToRequester => {
                "Votre réponse est envoyée au demandeur : elle est dans l'historique de son ticket et lui est \
                 adressée par courriel."
            }
            Written::InternalNote => {
                "Votre note interne est ajoutée à l'historique : seuls les niveaux N1 et N2 la lisent, \
                 ni le demandeur ni l'éditeur."
            }
            Written::SupportNote => {
                "Votre note au support est ajoutée à l'historique : les niveaux N1 et N2 la lisent, pas le \
                 demandeur ; le N1 lui transmet ce qui le concerne."
            }
        }
    }
}

/// What a comment by `actor`, `public` or not, on `t` (seen as `viewer`) would be ([`Written`]),
/// for a confirmation: the level they write at, as [`comment_with_files`] decides it.
pub async fn written_by(
    store: &Store,
    actor: &Actor,
    t: &Ticket,
    viewer: Viewer,
    public: bool,
) -> Result<Written, Problem> {
    let level = match viewer {
        Viewer::Requester => None,
        _ => writing_level(&levels_of(store, actor, t).await?, t),
    };
    Ok(Written::of(viewer, level, public))
}

/// The level a support member writes as on `t`: the one holding it if they hold it, else the
/// highest they hold (`levels`, ascending); `None` for anyone else.
pub fn writing_level(levels: &[Level], t: &Ticket) -> Option<Level> {
    if levels.contains(&t.level) {
        Some(t.level)
    } else {
        levels.last().copied()
    }
}

/// Only the N1, the requester's single point of contact, writes to them: a message or a file
/// the requester would read (a public comment, a status change's message) from the N2 or the
/// N3 is refused (409), an administrator acting there included. They write to the support (an
/// internal note; the vendor's is seen by the support levels), and the N1 passes it on.
pub(crate) fn refuse_public_above_n1(t: &Ticket, level: Level) -> Result<(), Problem> {
    conflict_unless(level == Level::N1, || {
        format!(
            "seul le N1 écrit au demandeur du ticket {} : au niveau {}, écrivez une note pour le support \
             (visibilité « internal ») ; le N1 la lui transmettra",
            t.reference,
            level.label()
        )
    })
}

fn holding_org(t: &Ticket) -> Option<String> {
    match t.level {
        Level::N1 => Some(t.n1_org_id.clone()),
        Level::N2 => t.n2_org_id.clone(),
        Level::N3 => t.n3_org_id.clone(),
    }
}

// --- status -------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionInput {
    /// `in_progress`, `waiting_requester`, `resolved` or `closed`.
    #[schemars(extend("enum" = ["in_progress", "waiting_requester", "resolved", "closed"]))]
    pub to: String,
    /// A public message to the requester (the question asked, the solution given), 20,000
    /// characters at most, as a comment.
    #[schemars(length(max = 20000))]
    pub message: Option<String>,
}

pub async fn transition(ctx: &Ctx<'_>, id: &str, expected: i64, input: TransitionInput) -> Result<Ticket, Problem> {
    let to = Status::parse(&input.to).ok_or_else(|| {
        Problem::invalid_field(
            "to",
            format!("statut « {} » inconnu : in_progress, waiting_requester, resolved, closed", input.to),
        )
    })?;
    let mut checks = Checks::default();
    if let Some(message) = &input.message {
        checks.at_most("message", message, 20_000);
    }
    checks.finish()?;
    let (t, v) = find(ctx.store(), ctx.actor, id).await?;
    // Closing by hand is the requester's (their resolved ticket), whatever other role they
    // hold; otherwise the ticket closes by itself, after the time left to reopen it.
    let own = ctx.actor.user_id.as_deref() == Some(t.requester_id.as_str());
    let level = if v == Viewer::Requester || to == Status::Closed && own {
        if !(t.status == Status::Resolved && to == Status::Closed) {
            return Err(forbidden("un demandeur peut seulement clore un ticket résolu ; répondez par un commentaire"));
        }
        None
    } else if to == Status::Closed {
        return Err(forbidden(format!(
            "seul le demandeur clôt un ticket : une fois résolu, le ticket {} est clos automatiquement \
             {} jours après sa résolution s'il ne le rouvre pas",
            t.reference,
            ctx.state.support.auto_close_days()
        )));
    } else {
        Some(acting_level(ctx, &t).await?)
    };
    let (mut tx, t) = begin(ctx, &t.id, None).await?;
    // The requester's `If-Match` is the version they read (`Ticket::seen_by`).
    expect_same_version(expected, t.version_seen_by(v))?;
    refuse_above_n1(&t, to)?;
    let message = input.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
    if let (Some(level), Some(_)) = (level, message) {
        refuse_public_above_n1(&t, level)?;
    }
    conflict_unless(t.status.can_move_to(to), || {
        format!("le ticket {} est {} : il ne peut pas passer à « {} »", t.reference, t.status.label(), to.label())
    })?;
    // In the requester's history when their ticket's status changes as they read it: the N2 or
    // the N3 taking in charge a ticket escalated to it is the support's to know.
    let seen = |s: Status| s.seen_by_requester(t.level);
    let e = NewEvent {
        kind: "status",
        from: Some(t.status.as_str()),
        to: Some(to.as_str()),
        visibility: if seen(t.status) != seen(to) { "public" } else { "support" },
        body: message,
        actor_level: level,
    };
    append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
    let at = Some(timestamp(ctx.now));
    match to {
        Status::Resolved => {
            bump(&mut tx, &t, "status = $1, resolved_at = $2", &[Some(to.as_str().into()), at], ctx.now).await?
        }
        Status::Closed => {
            bump(&mut tx, &t, "status = $1, closed_at = $2", &[Some(to.as_str().into()), at], ctx.now).await?
        }
        _ => bump(&mut tx, &t, "status = $1, resolved_at = $2", &[Some(to.as_str().into()), None], ctx.now).await?,
    }
    if matches!(to, Status::Resolved | Status::WaitingRequester) {
        let event = if to == Status::Resolved { "resolved" } else { "waiting" };
        let recipients = requester_email(&t);
        notify(&mut tx, recipients, &t, event, json!({ "body": message }), ctx.now, ctx.now).await?;
    } else if let Some(message) = message.filter(|_| level.is_some()) {
        // A message with any other change is an answer to the requester (it may be the
        // first response): they are told, as of a public comment.
        let recipients = requester_email(&t);
        notify(&mut tx, recipients, &t, "comment", json!({ "body": message }), ctx.now, ctx.now).await?;
    }
    refresh(&mut tx, &ctx.state.support, &t, ctx.now).await?;
    let summary = json!({ "from": t.status.as_str(), "to": to.as_str() });
    finish(ctx, tx, &t, "support.tickets.transition", summary).await
}

/// The N2 and the N3 answer the level below them (`return`): only the N1, facing the
/// requester, resolves the ticket or asks the requester a question (409 above it, as for
/// anyone, an administrator included).
fn refuse_above_n1(t: &Ticket, to: Status) -> Result<(), Problem> {
    conflict_unless(!to.faces_requester() || t.level == Level::N1, || {
        let (level, reference) = (t.level.label(), &t.reference);
        if to == Status::Resolved {
            format!(
                "le ticket {reference} est au niveau {level} : seul le N1 le résout ; \
                 renvoyez votre réponse au niveau inférieur"
            )
        } else {
            format!(
                "le ticket {reference} est au niveau {level} : seul le N1 pose une question au demandeur ; \
                 renvoyez la vôtre au niveau inférieur, le N1 la lui transmettra"
            )
        }
    })
}

// --- escalation and return ------------------------------------------------------------

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateInput {
    /// Why the level cannot solve it (mandatory).
    #[schemars(length(min = 1, max = 5000))]
    pub reason: String,
    /// N2 → N3 only: show the requester's name to the vendor (default: a pseudonym).
    #[serde(default)]
    pub share_requester: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    /// The answer handed to the level below (mandatory).
    #[schemars(length(min = 1, max = 20000))]
    pub answer: String,
}

pub async fn escalate(ctx: &Ctx<'_>, id: &str, expected: i64, input: EscalateInput) -> Result<Ticket, Problem> {
    let mut checks = Checks::default();
    checks.text("reason", &input.reason, 5_000);
    checks.finish()?;
    let (mut tx, t, level) = begin_at_level(ctx, id, expected).await?;
    let warning = move_level(ctx, &mut tx, &t, Some(level), input.reason.trim(), true, input.share_requester).await?;
    let summary = json!({ "from": t.level.as_str(), "reason": input.reason.trim() });
    let mut t = finish(ctx, tx, &t, "support.tickets.escalate", summary).await?;
    t.warning = warning;
    Ok(t)
}

pub async fn return_down(ctx: &Ctx<'_>, id: &str, expected: i64, input: ReturnInput) -> Result<Ticket, Problem> {
    let mut checks = Checks::default();
    checks.text("answer", &input.answer, 20_000);
    checks.finish()?;
    let (mut tx, t, level) = begin_at_level(ctx, id, expected).await?;
    let warning = move_level(ctx, &mut tx, &t, Some(level), input.answer.trim(), false, false).await?;
    let summary = json!({ "from": t.level.as_str() });
    let mut t = finish(ctx, tx, &t, "support.tickets.return", summary).await?;
    t.warning = warning;
    Ok(t)
}

/// Moves the ticket one level up (escalation) or down (return), logs it,
/// re-derives the SLA and notifies the receiving queue ([`queue_emails`]); when nobody would
/// hear of it, the ENT's governors are told instead, as for a new ticket nobody supports, and the
/// warning said to the mover is returned ([`unstaffed`]).
pub(crate) async fn move_level(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    t: &Ticket,
    actor_level: Option<Level>,
    text: &str,
    up: bool,
    share_requester: bool,
) -> Result<Option<String>, Problem> {
    let target = if up { t.level.up() } else { t.level.down() };
    let Some(target) = target else {
        return Err(Problem::conflict(if up {
            format!("le ticket {} est déjà au niveau N3, le dernier niveau", t.reference)
        } else {
            format!("le ticket {} est déjà au niveau N1", t.reference)
        }));
    };
    conflict_unless(matches!(t.status, Status::New | Status::InProgress), || {
        format!(
            "le ticket {} est {} : seul un ticket nouveau ou en cours change de niveau",
            t.reference,
            t.status.label()
        )
    })?;
    let receiving = match target {
        Level::N1 => Some(t.n1_org_id.clone()),
        Level::N2 => t.n2_org_id.clone(),
        Level::N3 => Some(current_vendor(tx, t).await?),
    }
    .ok_or_else(|| {
        Problem::conflict(format!(
            "aucune organisation {} n'est désignée pour ce tenant : complétez son contrat de support",
            target.label()
        ))
    })?;
    let (kind, status) = if up { ("escalated", Status::New) } else { ("returned", Status::InProgress) };
    let visibility = if t.level == Level::N3 || target == Level::N3 { "support" } else { "internal" };
    let e = NewEvent {
        kind,
        from: Some(t.level.as_str()),
        to: Some(target.as_str()),
        visibility,
        body: Some(text),
        actor_level,
    };
    append_event(tx, &t.id, ctx.actor, e, ctx.now).await?;
    bump(tx, t, "level = $1, status = $2", &[Some(target.as_str().into()), Some(status.as_str().into())], ctx.now)
        .await?;
    let reached = target == Level::N3 || t.reached_n3;
    let shared = share_requester && target == Level::N3 || t.requester_shared;
    let n3_org_id = if target == Level::N3 { Some(receiving.clone()) } else { t.n3_org_id.clone() };
    sqlx::query("UPDATE support_tickets SET reached_n3 = $1, requester_shared = $2, n3_org_id = $3 WHERE id = $4")
        .bind(i64::from(reached))
        .bind(i64::from(shared))
        .bind(&n3_org_id)
        .bind(&t.id)
        .execute(&mut **tx)
        .await?;
    let moved = Ticket { level: target, n3_org_id, ..t.clone() };
    let sla = refresh(tx, &ctx.state.support, &moved, ctx.now).await?;
    let school = school_of(tx, t).await?;
    let queue = queue_emails(tx, target, &receiving, &school).await?;
    let warning = match queue.is_empty() {
        true => Some(unstaffed(ctx, tx, &moved, &school, &receiving, up).await?),
        false => None,
    };
    let event = if up { "escalated" } else { "returned" };
    let (due_of, due) = step_due(ctx, &moved, &sla, &school);
    let said = json!({ "from": t.level.label(), "body": text, "due": due, "due_of": due_of });
    notify(tx, queue, &moved, event, said, ctx.now, ctx.now).await?;
    Ok(warning)
}

/// What the level holding `moved` does next and by when, in the time of its calendar at the
/// ticket's school (« Première réponse », « 7 décembre 2026 à 09 h 30 »): what its notice says.
fn step_due(ctx: &Ctx<'_>, moved: &Ticket, sla: &SlaState, school: &Org) -> (Option<String>, Option<String>) {
    let Some((kind, due)) = sla.clock(moved.level).and_then(|c| c.next_step()) else { return (None, None) };
    let tz = ctx.state.support.calendar_at(&moved.policy, moved.level, &place_of_org(school)).tz;
    (Some(capitalised(kind.label())), Some(due_moment(due, tz)))
}

/// A ticket moved (`up`: escalated, else returned) to a level where nobody would hear of it (no
/// user acting there, no address at `receiving`): its governors told instead, by the mail of a new
/// ticket nobody supports (« Ticket sans support désigné », naming the level), an internal
/// « Avertissement » in its history, and the warning said to the mover, returned.
async fn unstaffed(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    moved: &Ticket,
    school: &Org,
    receiving: &str,
    up: bool,
) -> Result<String, Problem> {
    let told = governors(tx, school, moved.n2_org_id.as_deref()).await?;
    let at = get_org_in(tx, receiving).await?.map(|o| naming::of_org(o.kind, &naming::display_name(&o.name)).article);
    let at = at.unwrap_or_default();
    let level = moved.level.label();
    let who = match told.is_empty() {
        false => "les responsables de l'ENT en sont avertis",
        true => {
            "mais personne n'en a été averti : signalez-le à la collectivité ou à la délégation académique au numérique"
        }
    };
    let warning = format!(
        "Personne n'est désigné au niveau {level} pour cet ENT (ni utilisateur ni adresse chez {at}) : le ticket y est \
         {}, {who}.",
        if up { "escaladé" } else { "renvoyé" }
    );
    append_event(tx, &moved.id, ctx.actor, NewEvent::new("warning", "internal").body(&warning), ctx.now).await?;
    tracing::warn!(ticket = %moved.reference, "{warning}");
    let tenant: String = sqlx::query_scalar("SELECT slug FROM tenants WHERE id = $1")
        .bind(&moved.tenant_id)
        .fetch_one(&mut **tx)
        .await?;
    let context = json!({ "reference": moved.reference, "priority": moved.priority.as_str(), "tenant": tenant,
        "moved_to": level, "at": at, "escalated": up });
    Notice::event("support", told, "unstaffed")
        .with(context)
        .page(format!("/organisations/{receiving}"))
        .enqueue(tx, ctx.now)
        .await?;
    Ok(warning)
}

/// The organisation of ticket `t` (its school, or the commune of its ENT), whose scope decides
/// who acts on it at N1 and N2 ([`queue_emails`]).
async fn school_of(tx: &mut Tx, t: &Ticket) -> Result<Org, Problem> {
    get_org_in(tx, &t.organisation.id).await?.ok_or_else(|| Problem::not_found("organisation introuvable"))
}

/// The N3 a ticket escalates to: the tenant's vendor of record now (after an award, the
/// new one), its processor, whatever N3 was copied when the ticket was opened; a 409 when
/// the tenant has none, rather than hand personal data to an éditeur that is not its processor.
async fn current_vendor(tx: &mut Tx, t: &Ticket) -> Result<String, Problem> {
    let vendor: Option<(Option<String>,)> = sqlx::query_as("SELECT vendor_org_id FROM tenants WHERE id = $1")
        .bind(&t.tenant_id)
        .fetch_optional(&mut **tx)
        .await?;
    vendor.and_then(|(v,)| v).ok_or_else(|| {
        Problem::conflict(format!(
            "le ticket {} ne peut pas passer au niveau N3 : le tenant n'a pas d'éditeur déclaré, \
             seul sous-traitant à qui le confier ; déclarez son éditeur (spec.vendor)",
            t.reference
        ))
    })
}

// --- field updates ----------------------------------------------------------------------

/// Fields of `PATCH /support/tickets/{id}`; absent fields are left unchanged.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    pub assigned_team: Option<String>,
    /// The assignee's e-mail address.
    pub assignee: Option<String>,
    #[schemars(extend("enum" = ["haute", "moyenne", "basse", null]))]
    pub impact: Option<String>,
    #[schemars(extend("enum" = ["haute", "moyenne", "basse", null]))]
    pub urgency: Option<String>,
    /// P1 to P4; otherwise from impact × urgency.
    #[schemars(extend("enum" = ["P1", "P2", "P3", "P4", null]))]
    pub priority: Option<String>,
    #[schemars(extend("enum" = ["acces", "service", "donnees", "autre", null]))]
    pub category: Option<String>,
    pub service: Option<String>,
    /// Why the priority changes: mandatory when the update changes the priority (forced, or
    /// from a new impact × urgency), kept in the history with the previous and new priority.
    #[schemars(length(max = 5000))]
    pub reason: Option<String>,
}

/// The id of the user `email` names if they may handle `t` at its level: an active account
/// holding that level's role over the ticket's school, or an admin. `None` for anyone
/// else, an unknown address included: one refusal for both, so that no address is probed.
async fn assignable(store: &Store, t: &Ticket, email: &str) -> Result<Option<String>, Problem> {
    let Some(user) = get_user(store, email).await?.filter(|u| u.active) else {
        return Ok(None);
    };
    let bindings = bindings_of(store, &user.id).await?;
    let actor = Actor { user_id: Some(user.id.clone()), name: user.email.clone(), bindings };
    Ok(levels_of(store, &actor, t).await?.contains(&t.level).then_some(user.id))
}

/// Whether `patch` (its priority `forced`, if any) changes the qualification of `t`: its
/// impact, urgency, priority, category or service.
fn requalifies(patch: &TicketPatch, forced: Option<Priority>, t: &Ticket) -> bool {
    let changes = |new: &Option<String>, old: &String| new.as_ref().is_some_and(|v| v != old);
    let service = if patch.category.is_some() || patch.service.is_some() { &patch.service } else { &t.service };
    changes(&patch.impact, &t.impact)
        || changes(&patch.urgency, &t.urgency)
        || forced.is_some_and(|p| p != t.priority)
        || changes(&patch.category, &t.category)
        || *service != t.service
}

/// A resolved ticket keeps its qualification (409 when `requalified`), for anyone: it is
/// settled as the SLA record, the reports and the market's penalties read it. Reopened, it may
/// be requalified again.
fn refuse_resolved_requalified(t: &Ticket, requalified: bool) -> Result<(), Problem> {
    conflict_unless(t.status != Status::Resolved || !requalified, || {
        format!(
            "le ticket {} est résolu : sa qualification (impact, urgence, priorité, catégorie, service) \
             ne change plus ; rouvrez-le d'abord pour la changer",
            t.reference
        )
    })
}

/// The vendor's own delays, and the market's penalties, follow the qualification (impact,
/// urgency, priority; the category, and its service, decide whether silence may resolve it): the
/// académie's side qualifies the ticket, not the vendor holding it at `level` N3 (403, before
/// anything of the patch is checked: whether a value would be valid is not the vendor's question).
fn refuse_vendor_requalifying(ctx: &Ctx<'_>, t: &Ticket, level: Level, requalified: bool) -> Result<(), Problem> {
    if requalified && level == Level::N3 && !ctx.actor.is_admin() {
        return Err(forbidden(format!(
            "le niveau 3 (l'éditeur) ne requalifie pas le ticket {} (impact, urgence, priorité, catégorie, \
             service) : ses délais et les pénalités du marché en dépendent ; renvoyez-le au niveau 2 pour cela",
            t.reference
        )));
    }
    Ok(())
}

/// A closed ticket is kept as it closed (409), as for comments.
fn refuse_closed(t: &Ticket) -> Result<(), Problem> {
    conflict_unless(t.status != Status::Closed, || format!("le ticket {} est clos : ouvrez-en un nouveau", t.reference))
}

pub async fn update(ctx: &Ctx<'_>, id: &str, expected: i64, patch: TicketPatch) -> Result<Ticket, Problem> {
    let (t, _) = find(ctx.store(), ctx.actor, id).await?;
    let level = acting_level(ctx, &t).await?;
    refuse_closed(&t)?;
    let mut checks = Checks::default();
    let impact = patch.impact.clone().unwrap_or(t.impact.clone());
    let urgency = patch.urgency.clone().unwrap_or(t.urgency.clone());
    check_grade(&mut checks, "impact", &impact);
    check_grade(&mut checks, "urgency", &urgency);
    let category = patch.category.clone().unwrap_or(t.category.clone());
    let service =
        if patch.category.is_some() || patch.service.is_some() { patch.service.clone() } else { t.service.clone() };
    check_category(&mut checks, ctx.state, &category, service.as_deref());
    let forced = parse_priority(&mut checks, patch.priority.as_deref());
    refuse_vendor_requalifying(ctx, &t, level, requalifies(&patch, forced, &t))?;
    if let Some(team) = &patch.assigned_team {
        checks.line("assigned_team", team);
        checks.at_most("assigned_team", team, 200);
    }
    let assignee = match patch.assignee.as_deref() {
        Some(email) => match assignable(ctx.store(), &t, email).await? {
            Some(id) => Some(id),
            None => {
                let level = t.level.label();
                checks.fail(
                    "assignee",
                    format!(
                        "« {email} » ne traite pas les tickets du niveau {level} de cet ENT : \
                         affectez le ticket à une personne de ce niveau"
                    ),
                );
                None
            }
        },
        None => t.assignee_id.clone(),
    };
    checks.finish()?;
    let priority = match forced {
        Some(p) => p,
        None if patch.impact.is_some() || patch.urgency.is_some() => {
            ctx.state.support.priority(&impact, &urgency).expect("complete matrix")
        }
        None => t.priority,
    };
    let team = patch.assigned_team.clone().or(t.assigned_team.clone());
    let (mut tx, t) = begin(ctx, &t.id, Some(expected)).await?;
    refuse_closed(&t)?;
    refuse_resolved_requalified(&t, requalifies(&patch, forced, &t) || priority != t.priority)?;
    let reason = patch.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if priority != t.priority {
        let Some(reason) = reason else {
            return Err(Problem::invalid_field(
                "reason",
                format!(
                    "motif obligatoire pour changer la priorité ({} → {}) : dites pourquoi",
                    t.priority.as_str(),
                    priority.as_str()
                ),
            ));
        };
        let mut checks = Checks::default();
        checks.text("reason", reason, 5_000);
        checks.finish()?;
        // Its own entry (« priorité P4 → P1 » and why): the SLA reads it to count each
        // stretch of time against the priority then in force.
        let e =
            NewEvent::new("priority", "support").moved(t.priority.as_str(), priority.as_str()).body(reason).by(level);
        append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
    }
    let summary = json!({
        "assigned_team": team, "assignee": patch.assignee, "impact": impact, "urgency": urgency,
        "priority": priority.as_str(), "category": category, "service": service,
    });
    let body = summary.to_string();
    let e = NewEvent::new("updated", "support").body(&body).by(level);
    append_event(&mut tx, &t.id, ctx.actor, e, ctx.now).await?;
    bump(
        &mut tx,
        &t,
        "assigned_team = $1, assignee_id = $2, impact = $3, urgency = $4, priority = $5, category = $6, service = $7",
        &[team, assignee, Some(impact), Some(urgency), Some(priority.as_str().into()), Some(category), service],
        ctx.now,
    )
    .await?;
    refresh(&mut tx, &ctx.state.support, &t, ctx.now).await?;
    let mut audited = summary;
    if priority != t.priority {
        audited["previous_priority"] = json!(t.priority.as_str());
        audited["reason"] = json!(reason);
    }
    finish(ctx, tx, &t, "support.tickets.update", audited).await
}
