//! « Modifier le projet » (`/conventions/{convention}/modifier`): a draft's editable fields
//! (objet, dates, the model's parameters, each party's signatory and the act that empowers
//! them) pre-filled, and saved by `workflow::update`, the function behind
//! `PATCH /api/v1/conventions/{id}`, at the version the form was shown at (its If-Match): every
//! rule the domain sets on an edit applies here as through the API. The refusal of a
//! submission links its errors to this form's controls, where they are corrected.

use super::{
    control_id, creation_label, ctx, draft_errors, euro_refusal, form_parameters, form_signatory, parameter_controls,
    parameter_text, readable, signatory_controls, typed_draft, SIGNATORY_FIELDS,
};
use crate::auth::Signed;
use crate::forms::{stale_version, Fields, On, Refusal, Reply};
use crate::page::{self, PageError, Shell};
use axum::extract::Path;
use axum::response::Response;
use axum::Form;
use ent_conventions::conventions::model::ConventionModel;
use ent_conventions::conventions::signatories::{self, Signatory, SignatoryPatch};
use ent_conventions::conventions::workflow::{self, ConventionPatch};
use ent_conventions::conventions::{find_model, Convention, ConventionsState, Party, Status};
use ent_kernel::error::{Problem, ProblemKind};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The id of the form, where an error on no control of it is linked.
const FORM_ID: &str = "projet";

/// The address of the edit form of the convention `id`.
pub(super) fn path(id: &str) -> String {
    format!("/conventions/{id}/modifier")
}

/// The draft of the path, for a person who writes it (`workflow::writes_convention`): anyone
/// else, a reader of a party included, gets the 404 of a missing convention; a convention
/// past its draft is no longer edited here (409).
async fn writable_draft(state: &ConventionsState, signed: &Signed, key: &str) -> Result<Convention, Problem> {
    let conv = readable(state, signed, key).await?;
    let model = find_model(&state.models, &conv.model_id, Some(conv.model_version))?;
    if !workflow::writes_convention(&signed.0.actor, model, &conv) {
        return Err(Problem::not_found(format!("aucune convention « {key} »")));
    }
    if conv.status != Status::Draft {
        return Err(Problem::conflict(format!(
            "cette convention est {} : seul un projet en brouillon se modifie depuis cette page",
            conv.status.label()
        )));
    }
    Ok(conv)
}

/// The key of each party's signatory in forms and errors, with the party
/// (`signatories::signatory_key`: `key:org_id` for an organisation of a multiple party).
fn signatory_keys(conv: &Convention) -> Vec<(String, &Party)> {
    conv.parties.iter().map(|p| (signatories::signatory_key(conv, p), p)).collect()
}

/// The ids of the controls the edit form of `conv` shows (its fieldsets included).
fn edit_controls(model: &ConventionModel, conv: &Convention) -> Vec<String> {
    let mut ids: Vec<String> =
        ["modele", "title", "start-date", "end-date", "backdate-reason", "parametres", "parties"]
            .iter()
            .map(|id| id.to_string())
            .collect();
    ids.extend(model.parameters.iter().filter(|p| p.key != "start_date").map(|p| format!("param-{}", p.key)));
    for (key, party) in signatory_keys(conv) {
        ids.push(format!("partie-{}", party.key));
        ids.extend(SIGNATORY_FIELDS.iter().map(|(name, ..)| format!("signataire-{key}-{name}")));
    }
    ids
}

/// The control of the edit form an error on `field` is linked to: its own, or the form when
/// the form has none for it.
pub(super) fn edit_control(model: &ConventionModel, conv: &Convention, field: &str) -> String {
    let id = control_id(field);
    match edit_controls(model, conv).contains(&id) {
        true => id,
        false => FORM_ID.into(),
    }
}

/// The refusal of the submission of the draft `conv`: each error linked to the control of
/// the edit form where it is corrected, named as that form names it.
pub(super) fn submission_refused<'a>(
    model: &ConventionModel,
    conv: &Convention,
    fields: &'a Fields,
    problem: &Problem,
) -> Reply<'a> {
    let refusal = Refusal::of(problem, |f| edit_control(model, conv, f))
        .labelled(|f| creation_label(model, f))
        .on_page(&path(&conv.id));
    Reply { fields, refusal, status: problem.kind.status() }
}

/// A signatory's field by its API name, as the form shows it.
fn signatory_value(s: &Signatory, api: &str) -> String {
    let value = match api {
        "name" => Some(&s.name),
        "quality" => Some(&s.quality),
        "delegation" => s.delegation.as_ref(),
        "delegation_date" => s.delegation_date.as_ref(),
        "act_number" => s.act_number.as_ref(),
        "act_date" => s.act_date.as_ref(),
        "place" => s.place.as_ref(),
        _ => None,
    };
    value.cloned().unwrap_or_default()
}

/// The form of `conv` as stored: objet, dates, backdate reason, parameters, signatories, and
/// the version it is shown at.
fn stored_fields(model: &ConventionModel, conv: &Convention) -> Fields {
    let mut fields = vec![
        ("titre".to_string(), conv.title.clone()),
        ("debut".to_string(), conv.start_date.clone()),
        ("fin".to_string(), conv.end_date.clone()),
        ("motif_retroactif".to_string(), conv.backdate_reason.clone().unwrap_or_default()),
        ("version".to_string(), conv.version.to_string()),
    ];
    for spec in model.parameters.iter().filter(|p| p.key != "start_date") {
        fields.push((format!("param.{}", spec.key), parameter_text(spec, conv.parameters.get(&spec.key))));
    }
    for (key, party) in signatory_keys(conv) {
        let stored = party.signatory.clone().unwrap_or_default();
        for (name, api, ..) in SIGNATORY_FIELDS {
            fields.push((format!("signataire.{key}.{name}"), signatory_value(&stored, api)));
        }
    }
    Fields(fields)
}

/// The parameters the form changes: each whose value differs from the stored one (an emptied
/// one `null`, which removes it).
fn changed_parameters(model: &ConventionModel, conv: &Convention, fields: &Fields) -> Map<String, Value> {
    let stored = |key: &str| conv.parameters.get(key).cloned().unwrap_or(Value::Null);
    form_parameters(model, fields, Some(Value::Null)).into_iter().filter(|(key, value)| *value != stored(key)).collect()
}

/// The signatories the form changes, by signatory key, each as the form shows it whole (an
/// emptied field cleared).
fn changed_signatories(conv: &Convention, fields: &Fields) -> BTreeMap<String, SignatoryPatch> {
    signatory_keys(conv)
        .into_iter()
        .filter_map(|(key, party)| {
            let given = form_signatory(fields, &key).unwrap_or_default();
            (given != party.signatory.clone().unwrap_or_default()).then(|| (key, SignatoryPatch::from(given)))
        })
        .collect()
}

/// The edit the form asks of `conv`, its changed fields only: the objet (the model's title
/// when emptied), the parameters and signatories changed, a date only when changed (an end
/// left as shown follows a moved start, keeping the duration, as the API does without
/// `end_date`); the reason of a past start goes with the start, sent again when only the
/// reason changes (a start that passed while the draft waited, kept with its reason).
fn edit_of(model: &ConventionModel, conv: &Convention, fields: &Fields) -> ConventionPatch {
    let changed = |name: &str, stored: &str| Some(fields.get(name)).filter(|v| *v != stored).map(str::to_string);
    let reason_changed = changed("motif_retroactif", conv.backdate_reason.as_deref().unwrap_or("")).is_some();
    let start_date = changed("debut", &conv.start_date).or_else(|| reason_changed.then(|| fields.get("debut").into()));
    let parameters = changed_parameters(model, conv, fields);
    let signatories = changed_signatories(conv, fields);
    ConventionPatch {
        title: changed("titre", &conv.title),
        parameters: (!parameters.is_empty()).then_some(parameters),
        end_date: changed("fin", &conv.end_date).filter(|end| !end.is_empty()),
        signatories: (!signatories.is_empty()).then_some(signatories),
        backdate_reason: start_date.as_ref().and_then(|_| fields.opt("motif_retroactif")),
        start_date,
        ..ConventionPatch::default()
    }
}

/// The edit form of `conv` filled from `reply`'s fields, with its refusal's messages beside
/// the fields and in the summary, each naming its field.
async fn edit_page(on: &On<ConventionsState>, conv: &Convention, reply: Reply<'_>) -> Result<Response, PageError> {
    let model = find_model(&on.state.models, &conv.model_id, Some(conv.model_version))?;
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.labelled(|field| creation_label(model, field));
    let mut anchored = Vec::new();
    let parties: Vec<Value> = signatory_keys(conv)
        .into_iter()
        .map(|(key, p)| {
            // A party several organisations play is anchored once, on its first one.
            let anchor = (!anchored.contains(&p.key)).then(|| format!("partie-{}", p.key));
            anchored.push(p.key.clone());
            let error = refusal
                .message(&format!("parties.{}", p.key))
                .or_else(|| refusal.message(&format!("signatories.{key}")));
            json!({
                "key": key, "anchor": anchor, "label": p.label,
                "org": format!("{} ({})", p.org.name, p.org.code),
                "required": p.signature_required,
                "signatory": signatory_controls(model, fields, &refusal, &key),
                "error": anchor.as_ref().and(error),
            })
        })
        .collect();
    let mut typed = typed_draft(fields);
    typed["version"] = fields.get("version").into();
    let conv_path = format!("/conventions/{}", conv.id);
    let shell = Shell::new(&on.console, Some(&on.signed.0), "/conventions")
        .crumbs(&[
            ("Conventions", "/conventions"),
            (&conv.reference, &conv_path),
            ("Modifier le projet", &path(&conv.id)),
        ])
        .notice(refusal.notice.clone());
    let values = json!({
        "title": format!("Modifier le projet — {}", conv.reference),
        "conv": { "id": conv.id, "reference": conv.reference, "model": model.title,
                  "duration": model.duration_months, "avenant": conv.amends_id.is_some() },
        "parties": parties,
        "parameters": parameter_controls(model, fields, &refusal),
        "fields": typed,
        "error": draft_errors(&refusal),
        "errors": refusal.errors,
    });
    Ok(page::render_status(status, "convention_edit.html", shell, values))
}

/// `/conventions/{convention}/modifier`: the draft's form, pre-filled as stored.
pub(super) async fn form(on: On<ConventionsState>, Path(key): Path<String>) -> Result<Response, PageError> {
    let conv = writable_draft(&on.state, &on.signed, &key).await?;
    let model = find_model(&on.state.models, &conv.model_id, Some(conv.model_version))?;
    let fields = stored_fields(model, &conv);
    edit_page(&on, &conv, Reply::shown(&fields, None)).await
}

/// Posted: the edit saved by `workflow::update` at the version the form was shown at, then
/// the convention's page; a stale version keeps what was typed and offers to save over the
/// newer one; the domain's refusal shows the form again, each error beside its field.
pub(super) async fn save(
    on: On<ConventionsState>,
    Path(key): Path<String>,
    Form(mut fields): Form<Fields>,
) -> Result<Response, PageError> {
    let conv = writable_draft(&on.state, &on.signed, &key).await?;
    let model = find_model(&on.state.models, &conv.model_id, Some(conv.model_version))?;
    let control = |field: &str| edit_control(model, &conv, field);
    let Ok(shown) = fields.get("version").parse::<i64>() else {
        let problem = Problem::invalid_field("version", "version du projet absente du formulaire : rechargez la page");
        return edit_page(&on, &conv, Reply::refused(&fields, &problem, control)).await;
    };
    if let Some(problem) = euro_refusal(model, &fields) {
        return edit_page(&on, &conv, Reply::refused(&fields, &problem, control)).await;
    }
    let edit = edit_of(model, &conv, &fields);
    let saved = workflow::update(&ctx(&on.state, &on.signed.0.actor), &conv, shown, edit).await;
    match saved {
        // Saved as it was shown: nothing is recorded (`CheckedEdit::changes_nothing`), and said so.
        Ok(saved) if saved.version == conv.version => {
            Ok(page::redirect(&format!("/conventions/{}?apres=inchangee", saved.id)))
        }
        Ok(saved) => Ok(page::redirect(&format!("/conventions/{}?apres=modifiee", saved.id))),
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            let conflict = stale_version(&mut fields, conv.version, "ce projet de convention a été modifié");
            edit_page(&on, &conv, Reply::refused(&fields, &conflict, control)).await
        }
        Err(p) if p.kind.status().is_server_error() || p.kind == ProblemKind::NotFound => Err(p.into()),
        Err(p) => edit_page(&on, &conv, Reply::refused(&fields, &p, control)).await,
    }
}
