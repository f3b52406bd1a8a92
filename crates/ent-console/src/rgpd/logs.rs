//! The logs a controller keeps besides its register: personal-data breaches (the CNIL
//! notified within 72 hours of awareness; a processor's notified to the controllers it names,
//! within 48 hours, Art. 33(2)) and data-subject requests (answered within a month), each a
//! table (the domain's own columns) with its due date highlighted when close or passed, and a
//! form recording a new entry through the domain.

use super::{base, controls, label_in, shell, target};
use crate::forms::{stale_version, Fields, On, Refusal, Reply};
use crate::page::{self, Notice, PageError};
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::Form;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use ent_kernel::clock::{french_date, french_moment, paris_instant as paris};
use ent_kernel::error::{FieldError, Problem, ProblemKind};
use ent_kernel::store::parse_timestamp;
use ent_platform::identity::authz::{RGPD_LOGS_READ, RGPD_WRITE};
use ent_platform::identity::Actor;
use ent_platform::registry::Org;
use ent_rgpd::rgpd::breaches::{self, Breach, BreachInput, CnilDecision, PeopleException, RiskLevel};
use ent_rgpd::rgpd::derive::{self, Actor as Controller};
use ent_rgpd::rgpd::requests::{self, DataRequest, RequestInput, RequestKind, RequestStatus};
use ent_rgpd::rgpd::{self as domain, RgpdState};
use serde_json::{json, Value};

/// How close a due date is: `passe` (passed), `proche` (within `close` hours), `tenu`
/// (met: nothing is due any more) or `a-venir`.
fn urgency(due: DateTime<Utc>, now: DateTime<Utc>, close_hours: i64, met: bool) -> &'static str {
    if met {
        "tenu"
    } else if due <= now {
        "passe"
    } else if due - now <= chrono::Duration::hours(close_hours) {
        "proche"
    } else {
        "a-venir"
    }
}

/// The rights a request exercises: the domain's value, and what the form says.
const KINDS: &[(&str, &str)] = &[
    ("access", "accès"),
    ("rectification", "rectification"),
    ("erasure", "effacement"),
    ("restriction", "limitation"),
    ("portability", "portabilité"),
    ("objection", "opposition"),
];

/// What the page of a log says.
#[derive(serde::Serialize)]
struct LogTexts {
    title: &'static str,
    slug: &'static str,
    intro: &'static str,
    caption: &'static str,
    due: &'static str,
    met: &'static str,
    none: &'static str,
    form: &'static str,
    submit: &'static str,
}

const BREACH_TEXTS: LogTexts = LogTexts {
    title: "Violations de données",
    slug: "violations",
    intro: "La CNIL doit être notifiée dans les 72 heures après la prise de connaissance d'une violation \
            (article 33) ; l'échéance est signalée quand il reste moins de 24 heures, et quand elle est dépassée.",
    caption: "Violations consignées, avec l'échéance de notification à la CNIL",
    due: "Échéance CNIL (72 h)",
    met: "décision prise",
    none: "Aucune violation consignée.",
    form: "Consigner une violation",
    submit: "Consigner la violation",
};

/// The breach log of an organisation processor of the ENT of controllers (Art. 28): a breach of
/// that ENT is notified to the controller, which notifies the CNIL (Art. 33(2)); one of its own
/// processing, to the CNIL.
const PROCESSOR_LOG_TEXTS: LogTexts = LogTexts {
    title: "Violations de données",
    slug: "violations",
    intro: "L'organisation est sous-traitant de l'ENT de responsables de traitement (article 28 du RGPD) : elle \
            notifie une violation de données de cet ENT au responsable de traitement concerné dans les meilleurs \
            délais, au plus tard 48 heures après en avoir pris connaissance (article 33.2 et conventions), afin \
            qu'il puisse la notifier à la CNIL dans les 72 heures ; la consigner ici en cochant ce responsable la \
            lui notifie et l'inscrit à son registre. Une violation d'un traitement dont l'organisation est \
            elle-même responsable est notifiée à la CNIL dans les 72 heures (article 33.1).",
    caption: "Violations consignées, avec l'échéance de notification au responsable de traitement ou à la CNIL",
    due: "Échéance de notification (responsable de traitement 48 h ; CNIL 72 h)",
    met: "décision prise",
    none: "Aucune violation consignée.",
    form: "Consigner une violation",
    submit: "Consigner la violation",
};

/// A breach a processor notified to its controllers (Art. 33(2)), on its own page.
const PROCESSOR_ENTRY_TEXTS: LogTexts = LogTexts {
    title: "Violations de données",
    slug: "violations",
    intro: "En qualité de sous-traitant (article 28 du RGPD), l'organisation notifie la violation au responsable \
            de traitement au plus tard 48 heures après en avoir pris connaissance (article 33.2 et conventions) : \
            il revient à celui-ci de la notifier à la CNIL dans les 72 heures et, si le risque est élevé, d'en \
            informer les personnes concernées. Ce qu'elle complète ici lui est notifié à son tour.",
    caption: "Violations consignées, avec l'échéance de notification au responsable de traitement",
    due: "Échéance de notification au responsable de traitement (48 h)",
    met: "responsable notifié",
    none: "Aucune violation consignée.",
    form: "Consigner une violation",
    submit: "Consigner la violation",
};

/// What the breach log of an organisation says: a processor of some controllers' ENT (`served`)
/// is told of its 48 hours as of the CNIL's 72.
fn breach_texts(served: &[Controller]) -> &'static LogTexts {
    match served.is_empty() {
        true => &BREACH_TEXTS,
        false => &PROCESSOR_LOG_TEXTS,
    }
}

const REQUEST_TEXTS: LogTexts = LogTexts {
    title: "Demandes d'exercice des droits",
    slug: "demandes",
    intro: "Une demande reçoit une réponse dans le mois (prolongeable de deux mois, la personne informée) ; \
            l'échéance est signalée quand il reste moins de 7 jours, et quand elle est dépassée.",
    caption: "Demandes consignées, avec leur échéance de réponse",
    due: "Échéance (un mois)",
    met: "close",
    none: "Aucune demande consignée.",
    form: "Consigner une demande",
    submit: "Consigner la demande",
};

fn texts_of(log: domain::Log) -> &'static LogTexts {
    match log {
        domain::Log::Breaches => &BREACH_TEXTS,
        domain::Log::Requests => &REQUEST_TEXTS,
    }
}

/// The fields of the breach form: name in the domain, label, kind of control.
const BREACH_FIELDS: &[(&str, &str, &str)] = &[
    ("title", "Intitulé (obligatoire)", "text"),
    ("facts", "Faits (obligatoire)", "long"),
    ("occurred_at", "Survenue le (heure de Paris, si connue)", "datetime-local"),
    ("aware_at", "Connue le (obligatoire, heure de Paris) : début du délai de notification", "datetime-local"),
    ("data_categories", "Catégories de données (obligatoire, séparées par des virgules)", "text"),
    (
        "people_categories",
        "Catégories de personnes concernées : élèves, parents, personnels… (séparées par des virgules)",
        "text",
    ),
    ("people_approx", "Nombre approximatif de personnes (obligatoire)", "number"),
    ("records_approx", "Nombre approximatif d'enregistrements (obligatoire)", "number"),
    ("consequences", "Conséquences probables (obligatoire)", "long"),
    ("measures", "Mesures prises ou envisagées (obligatoire)", "long"),
    ("risk", "Risque pour les droits et libertés des personnes", "select"),
];

/// The fields of the request form besides the right exercised and the extension.
const REQUEST_FIELDS: &[(&str, &str, &str)] = &[
    ("requester", "Demandeur (obligatoire : initiales, numéro de dossier)", "text"),
    ("received_on", "Reçue le (obligatoire)", "date"),
    ("notes", "Notes", "long"),
];

/// The day the requester was told of an extension, under its box (both request forms).
const EXTENSION_TOLD: &[(&str, &str, &str)] =
    &[("extension_notified_on", "Personne informée de la prolongation le (aujourd'hui si vide)", "date")];

/// The box of an extension, and the control of the day the requester was told of it.
fn extension_controls(fields: &Fields, refusal: &Refusal) -> Value {
    json!({
        "checked": fields.get("extended") == "oui",
        "error": refusal.message("extended"),
        "told": controls(EXTENSION_TOLD, log_control, fields, Some(refusal)).pop(),
    })
}

/// Hours left before the CNIL deadline that count as close (log page and notification centre).
pub(crate) const BREACH_CLOSE_HOURS: i64 = 24;
/// Days left before a request's due date that count as close (log page and notification centre).
pub(crate) const REQUEST_CLOSE_DAYS: i64 = 7;

/// A breach as its log's table (`row`) or its page shows it: its deadline and how close;
/// `labelled`: the log of a processor, whose deadlines say whom they are to notify.
fn breach_view(b: &Breach, row: Vec<String>, now: DateTime<Utc>, labelled: bool) -> Value {
    let row = grouped_counts(b, row);
    // A processor's breach: notified to its controllers when recorded, by its 48 hours.
    if let Some(deadline) = &b.controller_deadline {
        let to = if labelled { "au responsable de traitement : " } else { "" };
        let shown = format!("{to}{} (heure de Paris)", french_moment(deadline));
        return json!({ "cells": row, "deadline": shown, "id": b.id, "urgency": "tenu",
                       "met": PROCESSOR_ENTRY_TEXTS.met });
    }
    let deadline = parse_timestamp(&b.cnil_deadline).unwrap_or(now);
    let met = b.input.cnil_decision != CnilDecision::Pending;
    let to = if labelled { "à la CNIL : " } else { "" };
    let shown = format!("{to}{} (heure de Paris)", french_moment(&b.cnil_deadline));
    json!({ "cells": row, "deadline": shown, "id": b.id,
            "urgency": urgency(deadline, now, BREACH_CLOSE_HOURS, met), "met": BREACH_TEXTS.met })
}

/// `row` with its counts in groups of three (« 12 000 »), as the screen reads them.
fn grouped_counts(b: &Breach, mut row: Vec<String>) -> Vec<String> {
    // On screen, counts read in groups of three (« 12 000 »); the exports keep the bare number.
    let counts =
        [("Personnes (approx.)", b.input.people_approx), ("Enregistrements (approx.)", b.input.records_approx)];
    for (column, count) in counts {
        if let Some(cell) = breaches::HEADER.iter().position(|h| *h == column).and_then(|i| row.get_mut(i)) {
            *cell = ent_documents::documents::grouped(count.unsigned_abs());
        }
    }
    row
}

fn request_view(r: &DataRequest, row: Vec<String>, now: DateTime<Utc>) -> Value {
    // Due until the end of its day in Paris (where `overdue` counts the days).
    let due = NaiveDate::parse_from_str(&r.due_on, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .and_then(|d| paris(d.and_time(NaiveTime::MIN)))
        .unwrap_or(now);
    let met = matches!(r.input.status, RequestStatus::Answered | RequestStatus::Rejected);
    json!({ "cells": row, "deadline": french_date(&r.due_on), "id": r.id,
            "urgency": urgency(due, now, REQUEST_CLOSE_DAYS * 24, met), "met": REQUEST_TEXTS.met })
}

/// The page of a log: its table and its form.
async fn log_page(on: &On<RgpdState>, org: &Org, log: domain::Log, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let now = on.state.clock.now();
    let (header, rows, texts, spec, served) = match log {
        domain::Log::Breaches => {
            let list = breaches::list(&on.state, org).await?;
            let served = breaches::processor_for(&on.state, org).await?;
            let labelled = !served.is_empty();
            let views = breaches::rows(&list).into_iter().zip(&list);
            let rows = views.map(|(row, b)| breach_view(b, row, now, labelled)).collect();
            (breaches::HEADER.to_vec(), rows, breach_texts(&served), BREACH_FIELDS, served)
        }
        domain::Log::Requests => {
            let list = requests::list(&on.state, org).await?;
            let rows = requests::rows(&list).into_iter().zip(&list).map(|(row, r)| request_view(r, row, now)).collect();
            (requests::HEADER.to_vec(), rows, texts_of(log), REQUEST_FIELDS, Vec::new())
        }
    };
    let refusal = refusal.in_order_of(form_order(spec)).labelled(|field| log_label(spec, field));
    let mut rows: Vec<Value> = rows;
    let (title, slug) = (texts.title, texts.slug);
    let path = format!("{}/{slug}", base(org));
    for row in &mut rows {
        row["href"] = json!(format!("{path}/{}", row["id"].as_str().unwrap_or_default()));
    }
    let values = json!({
        "title": format!("{title} — {}", org.designation().official),
        "path": path,
        "header": header,
        "rows": rows,
        "texts": texts,
        "kinds": KINDS.iter().filter(|_| log == domain::Log::Requests).map(|(v, l)| json!({ "value": v, "label": l })).collect::<Vec<_>>(),
        "inputs": with_options(controls(spec, log_control, fields, Some(&refusal)), spec),
        "kind": { "value": fields.get("kind"), "error": refusal.message("kind") },
        "extension": extension_controls(fields, &refusal),
        "controllers": controller_choices(&served, fields, &refusal),
        "can_write": domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, org).await.is_ok(),
        "errors": refusal.errors,
    });
    let shell = shell(on, org, &[(title, path.as_str())]).notice(refusal.notice);
    Ok(page::render_status(status, "rgpd_log.html", shell, values))
}

/// The controllers a processor's new breach may be notified to (Art. 33(2)), `served`, as boxes,
/// those `fields` ticked checked; none for an organisation processor of nobody.
fn controller_choices(served: &[Controller], fields: &Fields, refusal: &Refusal) -> Value {
    if served.is_empty() {
        return Value::Null;
    }
    let ticked = fields.all("controllers");
    let offered: Vec<Value> = served
        .iter()
        .map(|c| {
            let label = format!("{} ({})", derive::named(c).official, c.code);
            json!({ "value": c.id, "label": label, "checked": ticked.contains(&c.id) })
        })
        .collect();
    json!({ "offered": offered, "error": refusal.message("controllers") })
}

fn after_notice(query: &Fields, text: &str) -> Option<Notice> {
    match query.get("apres") {
        "ajout" => Some(Notice::success(text)),
        "modification" => Some(Notice::success("L'entrée est mise à jour.")),
        _ => None,
    }
}

/// `/rgpd/{org}/violations`.
pub(super) async fn breach_list(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    log_list(on, key, query, domain::Log::Breaches, "La violation est consignée au registre.").await
}

/// `/rgpd/{org}/demandes`.
pub(super) async fn request_list(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    log_list(on, key, query, domain::Log::Requests, "La demande est consignée au registre.").await
}

/// The page of a log, with `added` said after a new entry.
async fn log_list(
    on: On<RgpdState>,
    key: String,
    query: Fields,
    log: domain::Log,
    added: &str,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_LOGS_READ).await?;
    let notice = after_notice(&query, added);
    log_page(&on, &org, log, Reply::shown(&Fields::default(), notice)).await
}

/// `2026-10-23T23:30` (a `datetime-local` field, read as the time in Paris, where the DPO
/// learns of a breach) as RFC 3339 in UTC (`2026-10-23T21:30:00Z`); anything else as is.
fn moment(value: &str) -> String {
    match NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M").ok().and_then(paris) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => value.to_string(),
    }
}

/// What a form gave the domain: its input, and the fields the form itself could not read
/// (their errors), which the domain never sees.
struct Read<T> {
    input: T,
    unread: Vec<FieldError>,
}

impl<T> Read<T> {
    /// Writes the input with `write` when every field was read; otherwise writes nothing and
    /// refuses the unread fields with what the domain's `check` finds in the others, so that
    /// a form's every error is said in one round.
    async fn write(
        self,
        check: impl FnOnce(&T) -> Result<(), Problem>,
        write: impl AsyncFnOnce(T) -> Result<(), Problem>,
    ) -> Result<(), Problem> {
        if self.unread.is_empty() {
            return write(self.input).await;
        }
        let mut errors = self.unread;
        if let Err(p) = check(&self.input) {
            let others: Vec<FieldError> =
                p.errors.into_iter().filter(|e| !errors.iter().any(|u| u.field == e.field)).collect();
            errors.extend(others);
        }
        Err(Problem::invalid(errors))
    }
}

/// A whole number typed in `field` (required); 0 with an error when there is none.
fn number(fields: &Fields, field: &str, unread: &mut Vec<FieldError>) -> i64 {
    let typed = fields.get(field);
    typed.parse().unwrap_or_else(|_| {
        let message = if typed.is_empty() { "champ obligatoire" } else { "nombre entier attendu, par exemple 120" };
        unread.push(FieldError { field: field.into(), message: message.into() });
        0
    })
}

/// A moment typed in `field` ([`moment`]); a text that is none is an error of the form.
fn typed_moment(fields: &Fields, field: &str, unread: &mut Vec<FieldError>) -> String {
    let typed = fields.get(field);
    let read = moment(typed);
    if !typed.is_empty() && DateTime::parse_from_rfc3339(&read).is_err() {
        let message = "date et heure invalides : attendu une date et une heure, par exemple 2026-09-01 08:30";
        unread.push(FieldError { field: field.into(), message: message.into() });
    }
    read
}

/// The breach a form typed; `with_controllers`: the form offered the controllers to notify (a
/// new breach), whose boxes are then read (none ticked: none), else they are left as stored.
fn breach_input(fields: &Fields, with_controllers: bool) -> Result<Read<BreachInput>, Problem> {
    let mut unread = Vec::new();
    let people_approx = number(fields, "people_approx", &mut unread);
    let records_approx = number(fields, "records_approx", &mut unread);
    let occurred_at = fields.opt("occurred_at").map(|_| typed_moment(fields, "occurred_at", &mut unread));
    let aware_at = typed_moment(fields, "aware_at", &mut unread);
    let cnil_notified_at =
        fields.opt("cnil_notified_at").map(|_| typed_moment(fields, "cnil_notified_at", &mut unread));
    let people_notified_at =
        fields.opt("people_notified_at").map(|_| typed_moment(fields, "people_notified_at", &mut unread));
    let input = BreachInput {
        title: fields.get("title").to_string(),
        facts: fields.get("facts").to_string(),
        occurred_at,
        aware_at,
        data_categories: comma_list(fields, "data_categories"),
        people_categories: Some(comma_list(fields, "people_categories")),
        people_approx,
        records_approx,
        consequences: fields.get("consequences").to_string(),
        measures: fields.get("measures").to_string(),
        risk: Some(choice(fields, "risk", RiskLevel::Unassessed)?),
        cnil_decision: choice(fields, "cnil_decision", CnilDecision::Pending)?,
        cnil_notified_at,
        cnil_reference: Some(fields.get("cnil_reference").trim().to_string()),
        cnil_reason: fields.get("cnil_reason").to_string(),
        people_notified_at,
        people_exception: Some(choice(fields, "people_exception", PeopleException::None)?),
        people_reason: Some(fields.get("people_reason").trim().to_string()),
        controllers: with_controllers.then(|| fields.all("controllers")),
    };
    Ok(Read { input, unread })
}

/// The values typed in `field`, separated by commas.
fn comma_list(fields: &Fields, field: &str) -> Vec<String> {
    fields.get(field).split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// The value chosen in `field` (one of the domain's), `default` when the form has none.
fn choice<T: serde::de::DeserializeOwned>(fields: &Fields, field: &str, default: T) -> Result<T, Problem> {
    match fields.opt(field) {
        None => Ok(default),
        Some(v) => serde_json::from_value(json!(v)).map_err(|_| Problem::invalid_field(field, "choix inconnu")),
    }
}

fn request_input(fields: &Fields) -> Result<Read<RequestInput>, Problem> {
    let mut unread = Vec::new();
    let kind: RequestKind = serde_json::from_value(json!(fields.get("kind"))).unwrap_or_else(|_| {
        unread.push(FieldError { field: "kind".into(), message: "choisissez le droit exercé".into() });
        RequestKind::Access
    });
    let input = RequestInput {
        kind,
        requester: fields.get("requester").to_string(),
        received_on: fields.get("received_on").to_string(),
        status: choice(fields, "status", RequestStatus::Received)?,
        answered_on: fields.opt("answered_on"),
        extended: fields.get("extended") == "oui",
        // The day sits beside the box on the form: unticking the box takes the day away with it.
        extension_notified_on: fields.opt("extension_notified_on").filter(|_| fields.get("extended") == "oui"),
        notes: fields.get("notes").to_string(),
    };
    Ok(Read { input, unread })
}

/// The fields of a log's form from top to bottom: the request's right or the controllers a
/// processor's breach is notified to, `spec`'s controls, then the request's extension and the
/// day the requester was told of it.
fn form_order<'a>(spec: &'a [(&'a str, &str, &str)]) -> impl Iterator<Item = &'a str> {
    ["kind", "controllers"]
        .into_iter()
        .chain(spec.iter().map(|(name, _, _)| *name))
        .chain(["extended", "extension_notified_on"])
}

/// The label of `field` on a log's form: one of `spec`'s, or the request's right and extension.
fn log_label<'a>(spec: &[(&str, &'a str, &str)], field: &str) -> Option<&'a str> {
    match field {
        "kind" => Some("Droit exercé"),
        "controllers" => Some("Responsables de traitement à notifier"),
        "extended" => Some("Délai prolongé"),
        _ => label_in(spec, field).or_else(|| label_in(EXTENSION_TOLD, field)),
    }
}

fn log_control(field: &str) -> String {
    format!("entree-{field}")
}

/// Posted: a new breach.
pub(super) async fn breach_create(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    entry_create(on, key, domain::Log::Breaches, fields).await
}

/// Posted: a new data-subject request.
pub(super) async fn request_create(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    entry_create(on, key, domain::Log::Requests, fields).await
}

async fn entry_create(on: On<RgpdState>, key: String, log: domain::Log, fields: Fields) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let created = write_entry(&on.state, &on.signed.0.actor, &org, log, &fields, Change::New).await;
    recorded(&on, &org, log, &fields, created).await
}

/// What a form writes to a log: a new entry, or an entry changed at the version it was shown at.
enum Change<'a> {
    New,
    Edit { id: &'a str, version: i64 },
}

/// Writes what the form of `log` typed, read as the domain's input (see [`Read::write`]).
async fn write_entry(
    state: &RgpdState,
    actor: &Actor,
    org: &Org,
    log: domain::Log,
    fields: &Fields,
    change: Change<'_>,
) -> Result<(), Problem> {
    match log {
        domain::Log::Breaches => {
            let check = |input: &BreachInput| breaches::check_new(state, input);
            let write = async |input| match change {
                Change::New => breaches::create(state, actor, org, input).await.map(|_| ()),
                Change::Edit { id, version } => {
                    breaches::update(state, actor, org, id, input, version).await.map(|_| ())
                }
            };
            breach_input(fields, matches!(change, Change::New))?.write(check, write).await
        }
        domain::Log::Requests => {
            let check = |input: &RequestInput| requests::check_new(state, input);
            let write = async |input| match change {
                Change::New => requests::create(state, actor, org, input).await.map(|_| ()),
                Change::Edit { id, version } => {
                    requests::update(state, actor, org, id, input, version).await.map(|_| ())
                }
            };
            request_input(fields)?.write(check, write).await
        }
    }
}

/// Back to the log after a new entry, or its page again with the domain's refusal.
async fn recorded(
    on: &On<RgpdState>,
    org: &Org,
    log: domain::Log,
    fields: &Fields,
    done: Result<(), Problem>,
) -> Result<Response, PageError> {
    let slug = texts_of(log).slug;
    match done {
        Ok(()) => Ok(page::redirect(&format!("{}/{slug}?apres=ajout", base(org)))),
        Err(p) if p.kind.status().is_server_error() => Err(p.into()),
        Err(p) => log_page(on, org, log, Reply::refused(fields, &p, log_control)).await,
    }
}

// --- one entry of a log, edited under the version check ----------------------------------

/// The CNIL decision of a breach: the domain's value, and what the form says.
const CNIL_DECISIONS: &[(&str, &str)] = &[
    ("pending", "décision en attente"),
    ("notified", "notifiée à la CNIL (date requise)"),
    ("not_required", "notification non requise : risque improbable (motif requis)"),
];

/// The exceptions of Art. 34(3): the domain's value, and what the form says.
const PEOPLE_EXCEPTIONS: &[(&str, &str)] = &[
    ("none", "aucune : les personnes sont informées"),
    ("encrypted", "34.3.a : données incompréhensibles pour qui y a eu accès (chiffrement)"),
    ("risk_removed", "34.3.b : mesures prises depuis : le risque élevé n'est plus susceptible de se matérialiser"),
    ("public_communication", "34.3.c : efforts disproportionnés : communication publique (date requise ci-dessus)"),
];

/// The risk assessed: the domain's value, and what the form says.
const RISKS: &[(&str, &str)] = &[
    ("unassessed", "non évalué"),
    ("none", "risque improbable : pas de notification (article 33.1)"),
    ("risk", "risque : notification à la CNIL"),
    ("high", "risque élevé : notification à la CNIL et information des personnes (article 34)"),
];

/// The states of a request: the domain's value, and what the form says.
const REQUEST_STATUSES: &[(&str, &str)] = &[
    ("received", "reçue"),
    ("in_progress", "en cours"),
    ("answered", "répondue (date requise)"),
    ("rejected", "refusée (date et motif requis : raisons, droit de réclamation auprès de la CNIL)"),
];

/// What follows a breach once recorded: the CNIL decision and the people informed.
const BREACH_FOLLOW_UP: &[(&str, &str, &str)] = &[
    ("cnil_decision", "Notification à la CNIL", "select"),
    ("cnil_notified_at", "Notifiée à la CNIL le (heure de Paris)", "datetime-local"),
    ("cnil_reference", "Numéro de la notification CNIL", "text"),
    ("cnil_reason", "Motif : notification non requise, ou notifiée après 72 heures", "long"),
    ("people_notified_at", "Personnes concernées informées le (heure de Paris, article 34)", "datetime-local"),
    (
        "people_exception",
        "Personnes non informées une à une malgré un risque élevé : exception de l'article 34.3",
        "select",
    ),
    (
        "people_reason",
        "Justification de l'exception (pour une communication publique : le moyen et le support)",
        "long",
    ),
];

/// The fields of a request being followed (the extension is a box of its own).
const REQUEST_FOLLOW_UP: &[(&str, &str, &str)] = &[
    ("kind", "Droit exercé", "select"),
    ("requester", "Demandeur (initiales, numéro de dossier)", "text"),
    ("received_on", "Reçue le", "date"),
    ("status", "Statut", "select"),
    ("answered_on", "Répondue ou refusée le", "date"),
    ("notes", "Notes : motif d'une prolongation ou d'un refus, suites données", "long"),
];

/// `2026-10-23T21:30:00Z` → `2026-10-23T23:30` (what a `datetime-local` control shows: the time in Paris).
fn local(stored: &str) -> String {
    match DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t.with_timezone(&chrono_tz::Europe::Paris).format("%Y-%m-%dT%H:%M").to_string(),
        Err(_) => stored.to_string(),
    }
}

fn breach_fields(b: &Breach) -> Fields {
    let i = &b.input;
    let pairs = [
        ("title", i.title.clone()),
        ("facts", i.facts.clone()),
        ("occurred_at", i.occurred_at.as_deref().map(local).unwrap_or_default()),
        ("aware_at", local(&i.aware_at)),
        ("data_categories", i.data_categories.join(", ")),
        ("people_categories", i.people_categories().join(", ")),
        ("people_approx", i.people_approx.to_string()),
        ("records_approx", i.records_approx.to_string()),
        ("consequences", i.consequences.clone()),
        ("measures", i.measures.clone()),
        ("risk", i.risk().as_str().to_string()),
        ("cnil_decision", i.cnil_decision.as_str().to_string()),
        ("cnil_notified_at", i.cnil_notified_at.as_deref().map(local).unwrap_or_default()),
        ("cnil_reference", i.cnil_reference().to_string()),
        ("cnil_reason", i.cnil_reason.clone()),
        ("people_notified_at", i.people_notified_at.as_deref().map(local).unwrap_or_default()),
        ("people_exception", i.people_exception().as_str().to_string()),
        ("people_reason", i.people_reason().to_string()),
        ("version", b.version.to_string()),
    ];
    Fields(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn request_fields(r: &DataRequest) -> Fields {
    let i = &r.input;
    let text = |v: Value| v.as_str().unwrap_or_default().to_string();
    let mut pairs = vec![
        ("kind", text(serde_json::to_value(i.kind).unwrap_or_default())),
        ("requester", i.requester.clone()),
        ("received_on", i.received_on.clone()),
        ("status", text(serde_json::to_value(i.status).unwrap_or_default())),
        ("answered_on", i.answered_on.clone().unwrap_or_default()),
        ("notes", i.notes.clone()),
        ("version", r.version.to_string()),
    ];
    if i.extended {
        pairs.push(("extended", "oui".into()));
        pairs.push(("extension_notified_on", i.extension_notified_on.clone().unwrap_or_default()));
    }
    Fields(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The entry `id` of a log of `org`, its reference, due date and how close it is.
struct Entry {
    reference: String,
    deadline: String,
    urgency: &'static str,
    fields: Fields,
    /// A processor's breach, notified to its controllers: the processor's texts, no CNIL decision.
    processor: bool,
    /// A processor's breach: who it was notified to; a controller's a processor notified: by
    /// whom (Art. 33(2), [`breaches::processing_for`]); empty otherwise.
    processing_for: String,
}

async fn entry(on: &On<RgpdState>, org: &Org, log: domain::Log, id: &str) -> Result<Entry, Problem> {
    let now = on.state.clock.now();
    let (reference, view, fields, processor, processing_for) = match log {
        domain::Log::Breaches => {
            let b = breaches::get(&on.state, org, id).await?;
            let view = breach_view(&b, Vec::new(), now, false);
            let processor = b.is_processor_s();
            (b.reference.clone(), view, breach_fields(&b), processor, processing_sentence(&b))
        }
        domain::Log::Requests => {
            let r = requests::get(&on.state, org, id).await?;
            (r.reference.clone(), request_view(&r, Vec::new(), now), request_fields(&r), false, String::new())
        }
    };
    Ok(Entry {
        reference,
        deadline: view["deadline"].as_str().unwrap_or_default().to_string(),
        urgency: urgency_of(&view),
        fields,
        processor,
        processing_for,
    })
}

/// Who a breach was notified to or by (Art. 33(2)) as its page says it, in a sentence; empty for
/// a breach of the organisation's own processing.
fn processing_sentence(b: &Breach) -> String {
    let said = ent_kernel::text::capitalised(&breaches::processing_for(b));
    match (said.is_empty(), b.reported_by.is_some()) {
        (true, _) => said,
        (false, true) => {
            format!("{said} : les 72 heures de la notification à la CNIL courent depuis cette notification.")
        }
        (false, false) => format!("{said}."),
    }
}

fn urgency_of(view: &Value) -> &'static str {
    match view["urgency"].as_str() {
        Some("passe") => "passe",
        Some("proche") => "proche",
        Some("tenu") => "tenu",
        _ => "a-venir",
    }
}

/// The page of one entry: its due date, and the form of every field at the version shown.
async fn entry_page(
    on: &On<RgpdState>,
    org: &Org,
    log: domain::Log,
    id: &str,
    reply: Reply<'_>,
) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let found = entry(on, org, log, id).await?;
    let texts = if found.processor { &PROCESSOR_ENTRY_TEXTS } else { texts_of(log) };
    // A processor's breach has no CNIL decision nor people to tell: its controllers' (Art. 33(2)).
    let spec: Vec<(&str, &str, &str)> = match log {
        domain::Log::Breaches if found.processor => BREACH_FIELDS.to_vec(),
        domain::Log::Breaches => BREACH_FIELDS.iter().chain(BREACH_FOLLOW_UP).copied().collect(),
        domain::Log::Requests => REQUEST_FOLLOW_UP.to_vec(),
    };
    let refusal = refusal.in_order_of(form_order(&spec)).labelled(|field| log_label(&spec, field));
    let inputs = with_options(controls(&spec, log_control, fields, Some(&refusal)), &spec);
    let list = format!("{}/{}", base(org), texts.slug);
    let path = format!("{list}/{id}");
    let values = json!({
        "title": format!("{} — {}", found.reference, org.designation().official),
        "path": path,
        "list": list,
        "texts": texts,
        "processing_for": found.processing_for,
        "deadline": found.deadline,
        "urgency": found.urgency,
        "version": fields.get("version"),
        "inputs": inputs,
        "requests": log == domain::Log::Requests,
        "extension": extension_controls(fields, &refusal),
        "can_write": domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, org).await.is_ok(),
        "errors": refusal.errors,
    });
    let shell = shell(on, org, &[(texts.title, list.as_str()), (found.reference.as_str(), path.as_str())])
        .notice(refusal.notice);
    Ok(page::render_status(status, "rgpd_entry.html", shell, values))
}

/// The controls of `spec`, each list with the choices it offers.
fn with_options(mut inputs: Vec<Value>, spec: &[(&str, &str, &str)]) -> Vec<Value> {
    for (input, (name, _, kind)) in inputs.iter_mut().zip(spec) {
        if *kind == "select" {
            let options = match *name {
                "cnil_decision" => CNIL_DECISIONS,
                "risk" => RISKS,
                "people_exception" => PEOPLE_EXCEPTIONS,
                "status" => REQUEST_STATUSES,
                _ => KINDS,
            };
            input["options"] = options.iter().map(|(v, l)| json!({ "value": v, "label": l })).collect();
        }
    }
    inputs
}

/// `/rgpd/{org}/violations/{violation}`: a breach as recorded, as a form.
pub(super) async fn breach_form(
    on: On<RgpdState>,
    Path((key, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    entry_form(on, key, id, domain::Log::Breaches).await
}

/// `/rgpd/{org}/demandes/{demande}`: a request as recorded, as a form.
pub(super) async fn request_form(
    on: On<RgpdState>,
    Path((key, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    entry_form(on, key, id, domain::Log::Requests).await
}

async fn entry_form(on: On<RgpdState>, key: String, id: String, log: domain::Log) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_LOGS_READ).await?;
    let shown = entry(&on, &org, log, &id).await?.fields;
    entry_page(&on, &org, log, &id, Reply::shown(&shown, None)).await
}

/// Posted: the breach changed, at the version the form was shown at.
pub(super) async fn breach_save(
    on: On<RgpdState>,
    Path((key, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    entry_save(on, key, id, domain::Log::Breaches, fields).await
}

/// Posted: the request changed, at the version the form was shown at.
pub(super) async fn request_save(
    on: On<RgpdState>,
    Path((key, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    entry_save(on, key, id, domain::Log::Requests, fields).await
}

/// Saves an entry if the form's version is still the stored one; a stale version keeps
/// what was typed, says so in French, and offers to save over the newer version.
async fn entry_save(
    on: On<RgpdState>,
    key: String,
    id: String,
    log: domain::Log,
    mut fields: Fields,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let current = entry(&on, &org, log, &id).await?;
    let Ok(shown) = fields.get("version").parse::<i64>() else {
        let problem =
            Problem::invalid_field("version", "version de l'entrée absente du formulaire : rechargez la page");
        return entry_page(&on, &org, log, &id, Reply::refused(&fields, &problem, log_control)).await;
    };
    let change = Change::Edit { id: &id, version: shown };
    let saved = write_entry(&on.state, &on.signed.0.actor, &org, log, &fields, change).await;
    match saved {
        Ok(()) => Ok(page::redirect(&format!("{}/{}?apres=modification", base(&org), texts_of(log).slug))),
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            let newer = current.fields.get("version").parse().unwrap_or_default();
            let conflict = stale_version(&mut fields, newer, "cette entrée a été modifiée");
            entry_page(&on, &org, log, &id, Reply::refused(&fields, &conflict, log_control)).await
        }
        Err(p) if p.kind.status().is_server_error() => Err(p.into()),
        Err(p) if p.kind == ProblemKind::NotFound => Err(p.into()),
        Err(p) => entry_page(&on, &org, log, &id, Reply::refused(&fields, &p, log_control)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_are_close_within_their_margin_and_passed_after() {
        let now = DateTime::parse_from_rfc3339("2026-09-01T08:00:00Z").unwrap().with_timezone(&Utc);
        let at = |h: i64| now + chrono::Duration::hours(h);
        assert_eq!(urgency(at(-1), now, 24, false), "passe");
        assert_eq!(urgency(at(10), now, 24, false), "proche");
        assert_eq!(urgency(at(30), now, 24, false), "a-venir");
        assert_eq!(urgency(at(-1), now, 24, true), "tenu");
    }

    #[test]
    fn moments_are_typed_and_shown_at_the_hour_of_paris() {
        // Summer, winter, the spring gap (02:30 does not exist: the clocks show 03:30).
        assert_eq!(moment("2026-09-04T23:30"), "2026-09-04T21:30:00Z");
        assert_eq!(moment("2026-11-20T23:30"), "2026-11-20T22:30:00Z");
        assert_eq!(moment("2026-03-29T02:30"), "2026-03-29T01:30:00Z");
        assert_eq!(moment("2026-09-04T21:30:00Z"), "2026-09-04T21:30:00Z", "RFC 3339 as is");
        assert_eq!(local("2026-09-04T21:30:00Z"), "2026-09-04T23:30");
        assert_eq!(local(&moment("2026-11-20T23:30")), "2026-11-20T23:30");
    }
}
