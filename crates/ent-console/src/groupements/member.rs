//! A commune's (or an EPCI's) side: apply with the quantities pre-filled from the
//! registry and the rule behind each figure, withdraw, and see its own share per year.

use super::{answered, caller, euros, own_orgs, On};
use crate::forms::{stale_version, Fields, Reply};
use crate::page::{self, PageError, Shell};
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use ent_groupements::groupements::membership::{
    self, Application, ApplicationPatch, NewApplication, Prefill, MAX_CLASSES_PER_SCHOOL, MAX_PARENTS_PER_PUPIL,
    MAX_TEACHERS_PER_CLASS, PUPILS_PER_CLASS_RECKONED,
};
use ent_groupements::groupements::{self as gm, routes as domain, GroupementsState, MEMBER_KINDS};
use ent_kernel::clock::french_date;
use ent_kernel::error::{FieldError, Problem, ProblemKind};
use ent_kernel::kernel::roles::Role;
use ent_kernel::naming;
use ent_platform::identity::authz::{GROUPEMENTS_APPLY, GROUPEMENTS_READ};
use serde_json::{json, Value};

/// The quantities of the form: its field, the application's field, and its label.
const QUANTITIES: &[(&str, &str, &str)] = &[
    ("ecoles", "schools", "Écoles"),
    ("eleves", "pupils", "Élèves"),
    ("classes", "classes", "Classes"),
    ("enseignants", "teacher_accounts", "Comptes enseignants"),
    ("parents", "parent_accounts", "Comptes parents"),
];

/// The collectivité applying: the one the form names, else the person's own (the first one; the
/// form offers the others, [`applicant_choices`]).
fn applicant_key(on: &On<GroupementsState>, fields: &Fields) -> Option<String> {
    fields
        .opt("candidat")
        .or_else(|| own_orgs(&on.signed, Role::Collectivite, &MEMBER_KINDS).next().map(|o| o.id.clone()))
}

/// A chooser of the collectivités the person applies for (its `collectivite` roles among the
/// kinds that may join), `applicant` selected, when there are several; else none.
fn applicant_chooser(on: &On<GroupementsState>, applicant: Option<&str>) -> Option<Value> {
    let mut options: Vec<Value> = Vec::new();
    for o in own_orgs(&on.signed, Role::Collectivite, &MEMBER_KINDS) {
        if !options.iter().any(|v| v["value"] == o.id.as_str()) {
            options.push(json!({ "value": o.id, "label": o.name }));
        }
    }
    (options.len() > 1).then(|| {
        json!({
            "kind": "select", "id": "candidat", "name": "candidat", "options": options, "error": "",
            "label": "Collectivité candidate (vous agissez pour plusieurs collectivités)", "value": applicant,
        })
    })
}

/// The rule that explains each pre-filled figure.
fn rules(pre: &Prefill) -> Vec<(&'static str, i64, String)> {
    let names: Vec<&str> = pre.schools.iter().take(8).map(|s| s.name.as_str()).collect();
    let more = if pre.schools.len() > names.len() {
        format!(" et {} autres", pre.schools.len() - names.len())
    } else {
        String::new()
    };
    let missing = match pre.schools_without_pupils {
        0 => String::new(),
        n => format!(" ; {n} école(s) sans effectif au répertoire n'y sont pas comptées : ajoutez leurs élèves"),
    };
    vec![
        ("ecoles", pre.quantities.schools, format!(
            "Écoles ouvertes que {} couvre selon le répertoire : {}{more}.", pre.applicant.name, names.join(", ")
        )),
        ("eleves", pre.quantities.pupils, format!("Somme des effectifs de ces écoles au répertoire{missing}.")),
        ("classes", 0, format!("Le répertoire ne connaît pas les classes : à saisir ({MAX_CLASSES_PER_SCHOOL} au plus par école).")),
        ("enseignants", 0, format!(
            "Le répertoire ne connaît pas les enseignants : à saisir ({MAX_TEACHERS_PER_CLASS} comptes au plus par classe ; \
             sans nombre de classes, une classe est comptée pour {PUPILS_PER_CLASS_RECKONED} élèves)."
        )),
        ("parents", 0, format!(
            "Le répertoire ne connaît pas les responsables : à saisir ({MAX_PARENTS_PER_PUPIL} comptes au plus par élève)."
        )),
    ]
}

fn control_id(field: &str) -> String {
    let id = match field {
        "applicant" => "candidat",
        "deliberation_number" => "deliberation",
        "deliberation_date" => "date-deliberation",
        f => QUANTITIES.iter().find(|(_, api, _)| *api == f).map_or("candidature", |(id, _, _)| *id),
    };
    id.to_string()
}

/// The label an error on an application's `field` is said after, as its control names it.
fn field_label(field: &str) -> Option<&'static str> {
    match field {
        "applicant" => Some("Collectivité candidate"),
        "deliberation_number" => Some("Numéro de la délibération"),
        "deliberation_date" => Some("Date de la délibération"),
        f => QUANTITIES.iter().find(|(_, api, _)| *api == f).map(|(_, _, label)| *label),
    }
}

async fn apply_page(on: &On<GroupementsState>, key: &str, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.labelled(field_label);
    let g = gm::must_get(&on.state.store, key).await?;
    let today = on.state.ctx(&on.signed.0.actor).today();
    // Past the deadline (or no longer open), the page says so and offers no form to fill in vain.
    let closed = membership::taking_applications(
        &g,
        today,
        "il n'accepte plus de candidatures",
        "plus aucune candidature n'est possible",
    )
    .err()
    .map(|p| p.detail);
    let applicant = applicant_key(on, fields).filter(|_| closed.is_none());
    let prefill = match &applicant {
        Some(a) => Some(domain::prefill_for(&on.state, &caller(&on.signed, &GROUPEMENTS_APPLY), a).await?),
        None => None,
    };
    let chooser = applicant_chooser(on, prefill.as_ref().map(|p| p.applicant.id.as_str()));
    let quantities: Vec<Value> = match &prefill {
        Some(pre) => rules(pre)
            .into_iter()
            .map(|(id, figure, rule)| {
                let label = QUANTITIES.iter().find(|(q, _, _)| *q == id).map_or("", |(_, _, l)| *l);
                let value = fields.opt(id).unwrap_or_else(|| figure.to_string());
                json!({ "id": id, "label": label, "value": value, "rule": rule })
            })
            .collect(),
        None => Vec::new(),
    };
    let path = format!("/groupements/{}", g.reference);
    let action = format!("{path}/candidature");
    let shell = Shell::new(&on.console, Some(&on.signed.0), "/groupements")
        .crumbs(&[("Groupements", "/groupements"), (&g.reference, &path), ("Candidater", &action)])
        .notice(refusal.notice.clone());
    let values = json!({
        "title": format!("Candidater au groupement {} — {}", g.reference, g.title),
        "path": path,
        "action": action,
        "editing": false,
        "closed": closed,
        "chooser": chooser,
        "deadline": french_date(&g.application_deadline),
        "applicant": prefill.as_ref().map(|p| json!({ "id": p.applicant.id, "name": p.applicant.name })),
        "quantities": quantities,
        "fields": {
            "candidat": fields.get("candidat"), "deliberation": fields.get("deliberation"),
            "date-deliberation": fields.get("date-deliberation"),
        },
        "errors": super::by_control(refusal.errors),
    });
    Ok(page::render_status(status, "groupement_candidature.html", shell, values))
}

/// `/groupements/{groupement}/candidature[?candidat=]`: the form, pre-filled.
pub(super) async fn apply_form(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    apply_page(&on, &key, Reply::shown(&query, None)).await
}

/// The application of the form; a quantity left empty is the registry's figure.
fn application_of(fields: &Fields, applicant: String) -> Result<NewApplication, Problem> {
    let mut errors = Vec::new();
    let mut figure = |id: &str, field: &str| match fields.opt(id).map(|v| v.replace(['\u{a0}', ' '], "").parse::<i64>())
    {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            errors.push(FieldError { field: field.to_string(), message: "un nombre entier est attendu".into() });
            None
        }
    };
    let application = NewApplication {
        applicant,
        deliberation_number: fields.get("deliberation").to_string(),
        deliberation_date: fields.get("date-deliberation").to_string(),
        schools: figure("ecoles", "schools"),
        classes: figure("classes", "classes"),
        pupils: figure("eleves", "pupils"),
        teacher_accounts: figure("enseignants", "teacher_accounts"),
        parent_accounts: figure("parents", "parent_accounts"),
    };
    if errors.is_empty() {
        Ok(application)
    } else {
        Err(Problem::invalid(errors))
    }
}

pub(super) async fn apply(
    on: On<GroupementsState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let g = gm::must_get(&on.state.store, &key).await?;
    let applicant = applicant_key(&on, &fields).unwrap_or_default();
    let done = match application_of(&fields, applicant) {
        Ok(new) => domain::apply_for(&on.state, &caller(&on.signed, &GROUPEMENTS_APPLY), &g, new).await,
        Err(problem) => Err(problem),
    };
    match done {
        Ok(_) => Ok(page::redirect(&format!("/groupements/{}?apres=candidature", g.reference))),
        Err(problem) if problem.kind.status().is_server_error() => Err(problem.into()),
        Err(problem) if matches!(problem.kind.status().as_u16(), 403 | 404) => Err(problem.into()),
        Err(problem) => apply_page(&on, &key, Reply::refused(&fields, &problem, control_id)).await,
    }
}

/// The recorded figure of the form's quantity `api` (the application's field name).
fn recorded(app: &Application, api: &str) -> i64 {
    let q = &app.quantities;
    match api {
        "schools" => q.schools,
        "pupils" => q.pupils,
        "classes" => q.classes,
        "teacher_accounts" => q.teacher_accounts,
        _ => q.parent_accounts,
    }
}

/// The form of an application as recorded (its délibération, its figures, its version).
fn recorded_fields(app: &Application) -> Fields {
    let mut pairs = vec![
        ("deliberation".to_string(), app.deliberation_number.clone()),
        ("date-deliberation".to_string(), app.deliberation_date.clone()),
        ("version".to_string(), app.version.to_string()),
    ];
    pairs.extend(QUANTITIES.iter().map(|(id, api, _)| (id.to_string(), recorded(app, api).to_string())));
    Fields(pairs)
}

async fn edit_page(
    on: &On<GroupementsState>,
    key: &str,
    candidature: &str,
    reply: Reply<'_>,
) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.labelled(field_label);
    let g = gm::must_get(&on.state.store, key).await?;
    let applying = caller(&on.signed, &GROUPEMENTS_APPLY);
    let app = domain::own_application(&on.state, &applying, &g, candidature).await?;
    let pre = domain::prefill_for(&on.state, &applying, &app.applicant.id).await?;
    let quantities: Vec<Value> = rules(&pre)
        .into_iter()
        .map(|(id, _, rule)| {
            let (_, _, label) = QUANTITIES.iter().find(|(q, _, _)| *q == id).copied().unwrap_or(("", "", ""));
            json!({ "id": id, "label": label, "value": fields.get(id), "rule": rule })
        })
        .collect();
    let path = format!("/groupements/{}", g.reference);
    let action = format!("{path}/candidatures/{}/modifier", app.id);
    let shell = Shell::new(&on.console, Some(&on.signed.0), "/groupements")
        .crumbs(&[("Groupements", "/groupements"), (&g.reference, &path), ("Modifier la candidature", &action)])
        .notice(refusal.notice.clone());
    let values = json!({
        "title": format!("Modifier la candidature {} — {}", naming::de(&app.applicant.name), g.reference),
        "path": path,
        "action": action,
        "editing": true,
        "closed": null,
        "chooser": null,
        "version": fields.get("version"),
        "deadline": french_date(&g.application_deadline),
        "applicant": { "id": app.applicant.id, "name": app.applicant.name },
        "quantities": quantities,
        "fields": {
            "deliberation": fields.get("deliberation"),
            "date-deliberation": fields.get("date-deliberation"),
        },
        "errors": super::by_control(refusal.errors),
    });
    Ok(page::render_status(status, "groupement_candidature.html", shell, values))
}

/// `/groupements/{groupement}/candidatures/{candidature}/modifier`: the application of a
/// collectivité in the person's scope, pre-filled with what it recorded.
pub(super) async fn edit_form(
    on: On<GroupementsState>,
    Path((key, candidature)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let g = gm::must_get(&on.state.store, &key).await?;
    let app = domain::own_application(&on.state, &caller(&on.signed, &GROUPEMENTS_APPLY), &g, &candidature).await?;
    edit_page(&on, &key, &candidature, Reply::shown(&recorded_fields(&app), None)).await
}

/// Saves the changed application if the form's version is still the recorded one; a stale
/// version keeps what was typed, says so in French, and offers to save over the newer one.
pub(super) async fn edit(
    on: On<GroupementsState>,
    Path((key, candidature)): Path<(String, String)>,
    Form(mut fields): Form<Fields>,
) -> Result<Response, PageError> {
    let g = gm::must_get(&on.state.store, &key).await?;
    let applying = caller(&on.signed, &GROUPEMENTS_APPLY);
    let app = domain::own_application(&on.state, &applying, &g, &candidature).await?;
    let Ok(shown) = fields.get("version").parse::<i64>() else {
        let problem =
            Problem::invalid_field("version", "version de la candidature absente du formulaire : rechargez la page");
        return edit_page(&on, &key, &candidature, Reply::refused(&fields, &problem, control_id)).await;
    };
    let done = match application_of(&fields, String::new()) {
        Ok(new) => {
            let patch = ApplicationPatch {
                deliberation_number: Some(new.deliberation_number),
                deliberation_date: Some(new.deliberation_date),
                schools: new.schools,
                classes: new.classes,
                pupils: new.pupils,
                teacher_accounts: new.teacher_accounts,
                parent_accounts: new.parent_accounts,
            };
            domain::update_for(&on.state, &applying, &g, &app.id, shown, patch).await
        }
        Err(problem) => Err(problem),
    };
    match done {
        Ok(_) => Ok(page::redirect(&format!("/groupements/{}?apres=modification", g.reference))),
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            let conflict = stale_version(&mut fields, app.version, "cette candidature a été modifiée");
            edit_page(&on, &key, &candidature, Reply::refused(&fields, &conflict, control_id)).await
        }
        Err(p) if p.kind.status().is_server_error() => Err(p.into()),
        Err(p) if matches!(p.kind.status().as_u16(), 403 | 404) => Err(p.into()),
        Err(p) => edit_page(&on, &key, &candidature, Reply::refused(&fields, &p, control_id)).await,
    }
}

/// Withdraws an application of a collectivité in the person's scope (until the groupement closes).
pub(super) async fn withdraw(
    on: On<GroupementsState>,
    Path((key, candidature)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let g = gm::must_get(&on.state.store, &key).await?;
    let done = domain::withdraw_for(&on.state, &caller(&on.signed, &GROUPEMENTS_APPLY), &g, &candidature).await;
    answered(&on, &g.reference, &fields, done, "retrait", |_| "candidatures".to_string()).await
}

/// `/groupements/{groupement}/quotes-parts/{membre}`: a member's share per year, for its
/// coordinator or the member itself; anyone else gets the 404 of a missing one.
pub(super) async fn share(
    on: On<GroupementsState>,
    Path((key, member)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let g = gm::must_get(&on.state.store, &key).await?;
    let shares = domain::visible_shares(&on.state, &caller(&on.signed, &GROUPEMENTS_READ), &g).await?;
    let share = shares
        .shares
        .iter()
        .find(|s| s.member.id == member)
        .ok_or_else(|| Problem::not_found(format!("aucune quote-part « {member} » visible dans ce groupement")))?;
    let path = format!("/groupements/{}", g.reference);
    let here = format!("{path}/quotes-parts/{member}");
    let shell = Shell::new(&on.console, Some(&on.signed.0), "/groupements").crumbs(&[
        ("Groupements", "/groupements"),
        (&g.reference, &path),
        (&share.member.name, &here),
    ]);
    let values = json!({
        "title": format!("Quote-part {} — {}", naming::de(&share.member.name), g.reference),
        "path": path,
        "cost_key": shares.cost_key,
        "duration": shares.duration_months,
        "members_common": euros(shares.members_common_expenses_cents),
        "member": share.member.name,
        "quantities": {
            "schools": super::count(share.quantities.schools),
            "pupils": super::count(share.quantities.pupils),
            "accounts": super::count(share.quantities.accounts()),
        },
        "common": euros(share.common_expenses_cents),
        "own_ht": euros(share.own_orders_ht_cents),
        "own_ttc": euros(share.own_orders_ttc_cents),
        "years": share
            .common_expenses_per_year_cents
            .iter()
            .zip(share.own_orders_per_year_ht_cents.iter().map(Some).chain(std::iter::repeat(None)))
            .enumerate()
            .map(|(i, (common, own))| json!({ "year": i + 1, "common": euros(*common), "own_ht": own.map(|c| euros(*c)) }))
            .collect::<Vec<_>>(),
    });
    Ok(page::render("groupement_quote_part.html", shell, values))
}
