//! « RGPD »: the registers of the organisations a DPO covers or a controller keeps. The
//! register as pages (activities, the incomplete fiches first with their missing fields
//! named and where each is filled, each fiche with its Art. 30 fields and its DPIA
//! criteria), its exports as downloads, its snapshots (take one, compare two or one with
//! now, field by field), and the organisation's RGPD contacts under the version check.
//! The breach and request logs (each entry edited under the version check) are in `logs`,
//! the processor contracts (added, edited and their sub-processors added or removed under
//! the version check) in `contracts`.
//! Every rule and every scope check is the RGPD domain's (`ent_rgpd::rgpd`): the pages
//! only call it.

mod contracts;
mod logs;

pub(crate) use logs::{BREACH_CLOSE_HOURS, REQUEST_CLOSE_DAYS};

use crate::form::FieldError;
use crate::forms::{Fields, On, Refusal, Reply};
use crate::page::{self, Notice, PageError, Shell};
use crate::{form_page, route, Access, ConsoleRoute, ConsoleState};
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use ent_documents::documents;
use ent_kernel::clock::{french_date, french_moment};
use ent_kernel::error::{Problem, ProblemKind};
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::Action;
use ent_platform::identity::authz::{RGPD_LOGS_READ, RGPD_READ, RGPD_WRITE};
use ent_platform::identity::Actor;
use ent_platform::registry::Org;
use ent_rgpd::rgpd::derive::Entry;
use ent_rgpd::rgpd::export::{self, Format};
use ent_rgpd::rgpd::snapshots::{self, FieldChange};
use ent_rgpd::rgpd::{self as domain, Profile, RgpdState};
use serde_json::{json, Value};

/// The pages of this screen.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Vec<ConsoleRoute<S>>
where
    ConsoleState: FromRef<S>,
    RgpdState: FromRef<S>,
{
    let read = Access::Signed(&RGPD_READ);
    let write = Access::Signed(&RGPD_WRITE);
    let form = |path, page, save| form_page(path, read, write, page, save);
    let log = |path, page, save| form_page(path, Access::Signed(&RGPD_LOGS_READ), write, page, save);
    [
        vec![
            route(Method::GET, "/rgpd", read, get(home)),
            route(Method::GET, "/rgpd/{org}", read, get(register)),
            route(Method::GET, "/rgpd/{org}/traitements/{fiche}", read, get(fiche)),
            route(Method::GET, "/rgpd/{org}/export/{format}", read, get(download)),
            route(Method::POST, "/rgpd/{org}/instantanes", write, post(snapshot)),
            route(Method::GET, "/rgpd/{org}/ecarts", read, get(diff)),
        ],
        form("/rgpd/{org}/profil", get(profile_form), post(profile_save)),
        log("/rgpd/{org}/violations", get(logs::breach_list), post(logs::breach_create)),
        log("/rgpd/{org}/demandes", get(logs::request_list), post(logs::request_create)),
        log("/rgpd/{org}/violations/{violation}", get(logs::breach_form), post(logs::breach_save)),
        log("/rgpd/{org}/demandes/{demande}", get(logs::request_form), post(logs::request_save)),
        vec![route(Method::GET, "/rgpd/{org}/export-contrats", read, get(contracts::download))],
        form("/rgpd/{org}/contrats", get(contracts::list), post(contracts::add)),
        form("/rgpd/{org}/contrats/{contrat}", get(contracts::show), post(contracts::save)),
        vec![
            route(Method::POST, "/rgpd/{org}/contrats/{contrat}/sous-traitants", write, post(contracts::add_sub)),
            route(
                Method::POST,
                "/rgpd/{org}/contrats/{contrat}/sous-traitants/{sous_traitant}/retrait",
                write,
                post(contracts::remove_sub),
            ),
        ],
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The export buttons: format and label.
const EXPORTS: &[(Format, &str)] = &[
    (Format::Ods, "Tableur (ODS)"),
    (Format::Csv, "CSV"),
    (Format::Html, "Page HTML"),
    (Format::Pdf, "PDF"),
    (Format::Json, "JSON"),
];

/// The organisation of the path if the person may reach its registers for `action`
/// (the domain's check: out of scope answers the 404 of a missing one, in its words).
async fn target(state: &RgpdState, actor: &Actor, key: &str, action: &Action) -> Result<Org, Problem> {
    domain::resolve(state, actor, action, key).await
}

/// The register's address of `org`.
fn base(org: &Org) -> String {
    format!("/rgpd/{}", org.id)
}

/// The controls of a form, each field (name, label, kind: an input type, or `long` for a
/// textarea) as the template's `form::control` shows it: its control's id (`id_of`), the
/// value shown and, when the refusal is this form's, its message.
fn controls(
    spec: &[(&str, &str, &str)],
    id_of: fn(&str) -> String,
    shown: &Fields,
    refusal: Option<&Refusal>,
) -> Vec<Value> {
    spec.iter()
        .map(|(name, label, kind)| {
            json!({ "name": name, "label": label, "kind": kind, "id": id_of(name), "value": shown.get(name),
                    "error": refusal.and_then(|r| r.message(name)) })
        })
        .collect()
}

/// The label of `field` in a form's `spec` (see [`controls`]).
fn label_in<'a>(spec: &[(&str, &'a str, &str)], field: &str) -> Option<&'a str> {
    spec.iter().find(|(name, _, _)| *name == field).map(|(_, label, _)| *label)
}

fn shell(on: &On<RgpdState>, org: &Org, trail: &[(&str, &str)]) -> Shell {
    let here = base(org);
    let name = org.designation().official;
    let mut crumbs = vec![("RGPD", "/rgpd"), (name.as_str(), here.as_str())];
    crumbs.extend_from_slice(trail);
    Shell::new(&on.console, Some(&on.signed.0), "/rgpd").crumbs(&crumbs)
}

/// `/rgpd`: the organisations whose registers the person keeps or covers.
/// A code typed that opens no register is said beside the field, the page shown again.
async fn home(on: On<RgpdState>, Query(query): Query<Fields>) -> Result<Response, PageError> {
    let mut refusal = Refusal::default();
    let mut status = StatusCode::OK;
    if let Some(key) = query.opt("organisation") {
        match target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await {
            Ok(org) => return Ok(page::redirect(&base(&org))),
            Err(p) if p.kind.status().is_client_error() => {
                status = p.kind.status();
                refusal.errors.push(FieldError::new("rgpd", "organisation", p.detail).at("organisation"));
            }
            Err(p) => return Err(p.into()),
        }
    }
    let actor = &on.signed.0.actor;
    let mut orgs: Vec<Value> = Vec::new();
    for b in actor.bindings.iter().filter(|b| RGPD_READ.roles.contains(&b.role)) {
        if let Some(org) = &b.org {
            let link = json!({ "href": format!("/rgpd/{}", org.id), "of": org.designation().of,
                                "role": page::role_label(b.role) });
            if !orgs.contains(&link) {
                orgs.push(link);
            }
        }
    }
    let shell = Shell::new(&on.console, Some(&on.signed.0), "/rgpd").crumbs(&[("RGPD", "/rgpd")]);
    let values = json!({ "orgs": orgs, "fields": { "organisation": query.get("organisation") },
                         "error": refusal.by_control(), "errors": refusal.errors });
    Ok(page::render_status(status, "rgpd_home.html", shell, values))
}

/// Where a missing field of a fiche is filled: the organisation's RGPD contacts, its
/// processor contracts, its tenants (vendor and host), or the catalog of services.
fn where_filled(missing: &str, register: &str) -> Value {
    let (href, label) = if missing.starts_with("sous-traitant") {
        (Some("/ent".to_string()), "l'ENT : éditeur et hébergeur du tenant")
    } else if missing.starts_with("garanties du transfert") {
        (None, "les coordonnées RGPD du sous-traitant destinataire (garantie du transfert, articles 45 à 47)")
    } else if missing.starts_with("nombre de comptes") {
        (Some("/ent".to_string()), "l'ENT : nombre de comptes du tenant (ou de la convention)")
    } else if ["finalités", "catégories de", "durées de conservation", "base légale"]
        .iter()
        .any(|p| missing.starts_with(p))
    {
        (None, "le catalogue des services (administrateur de la plateforme)")
    } else {
        (Some(format!("{register}/profil")), "les coordonnées RGPD de l'organisation")
    };
    json!({ "text": missing, "href": href, "where": label })
}

/// An activity as the register's list shows it.
fn entry_row(e: &Entry, org: &Org) -> Value {
    json!({
        "reference": e.reference,
        "name": e.name,
        "href": format!("{}/traitements/{}", base(org), e.reference),
        "missing": e.missing.iter().map(|m| where_filled(m, &base(org))).collect::<Vec<_>>(),
        "warnings": e.warnings,
        "dpia": e.dpia.required,
        "dpia_reasons": e.dpia.reasons,
        "accounts": e.accounts,
    })
}

/// The snapshots of `org`, newest first, each with the comparisons it offers.
async fn snapshot_rows(state: &RgpdState, org: &Org) -> Result<Vec<Value>, Problem> {
    let listed = snapshots::list(state, &org.id, 100).await?;
    let ecarts = format!("{}/ecarts", base(org));
    Ok(listed
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let previous = listed.get(i + 1).map(|p| format!("{ecarts}?de={}&a={}", p.id, s.id));
            json!({
                "id": s.id, "at": french_moment(&s.taken_at), "by": s.taken_by, "entries": s.entries,
                "reason": reason_label(&s.reason), "sha": s.sha256.chars().take(12).collect::<String>(),
                "vs_now": format!("{ecarts}?de={}&a=now", s.id), "vs_previous": previous,
            })
        })
        .collect())
}

fn reason_label(reason: &str) -> &str {
    match reason {
        "manual" => "pris à la main",
        "export" => "export",
        "monthly" | "job" => "instantané mensuel",
        other => other,
    }
}

/// The notices of the register page after an action (`?apres=`).
const REGISTER_NOTICES: &[(&str, &str)] = &[
    ("instantane", "Instantané enregistré."),
    ("inchange", "Le registre n'a pas changé depuis le dernier instantané : il est gardé."),
    ("profil", "Les coordonnées RGPD sont enregistrées."),
];

/// `/rgpd/{org}`: the register now.
async fn register(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let register = domain::current(&on.state, &org).await?;
    let mut entries: Vec<&Entry> = register.entries.iter().collect();
    // The incomplete fiches first, each group in register order.
    entries.sort_by_key(|e| e.missing.is_empty());
    let rows: Vec<Value> = entries.iter().map(|e| entry_row(e, &org)).collect();
    let processors: Vec<Value> = register
        .processor_entries
        .iter()
        .map(|p| {
            json!({ "controller": p.controller.name, "roles": p.roles.join(", "), "processing": p.processing,
                    "sub_processors": p.sub_processors, "missing": p.missing, "warnings": p.warnings })
        })
        .collect();
    let pdf = documents::pdf_available();
    let exports: Vec<Value> = EXPORTS
        .iter()
        .filter(|(f, _)| pdf || *f != Format::Pdf)
        .map(|(f, label)| {
            json!({ "href": format!("{}/export/{}", base(&org), f.as_str()), "label": label,
                                   "format": f.as_str() })
        })
        .collect();
    let notice = Notice::after(query.get("apres"), REGISTER_NOTICES);
    let values = json!({
        "title": format!("Registre des traitements — {}", org.designation().official),
        "base": base(&org),
        "pdf": pdf,
        "as_of": french_date(&register.as_of),
        "summary": summary(rows.len(), processors.len(), register.incomplete.len()),
        "entries": rows,
        "incomplete": register.incomplete.len(),
        "processors": processors,
        "exports": exports,
        "snapshots": snapshot_rows(&on.state, &org).await?,
        "can_write": domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, &org).await.is_ok(),
        "logs": domain::authorize(&on.state, &on.signed.0.actor, &RGPD_LOGS_READ, &org).await.is_ok(),
    });
    Ok(page::render("rgpd_register.html", shell(&on, &org, &[]).notice(notice), values))
}

/// `n` things in words that agree with it: `none` for 0 (« aucun traitement »), `one`, `many`.
fn counted(n: usize, none: &str, one: &str, many: &str) -> String {
    match n {
        0 => none.to_string(),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// What a register holds, as its page says it: « aucun traitement ; 1 fiche incomplète »,
/// « 8 traitements ; 2 activités de sous-traitance ; aucune fiche incomplète ».
fn summary(entries: usize, processor_entries: usize, incomplete: usize) -> String {
    let mut parts = vec![counted(entries, "aucun traitement", "traitement", "traitements")];
    if processor_entries > 0 {
        let of = "activité de sous-traitance (article 30.2)";
        parts.push(counted(processor_entries, "", of, "activités de sous-traitance (article 30.2)"));
    }
    parts.push(counted(incomplete, "aucune fiche incomplète", "fiche incomplète", "fiches incomplètes"));
    parts.join(" ; ")
}

/// `/rgpd/{org}/traitements/{fiche}`: one activity, its Art. 30 fields and DPIA criteria.
async fn fiche(on: On<RgpdState>, Path((key, reference)): Path<(String, String)>) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let register = domain::current(&on.state, &org).await?;
    let entry = register.entries.iter().find(|e| e.reference == reference).ok_or_else(|| {
        Problem::not_found(format!("aucun traitement « {reference} » au registre {}", org.designation().of))
    })?;
    let fields: Vec<Value> = export::entry_fields(entry)
        .into_iter()
        .map(|(label, value)| json!({ "label": label, "value": value }))
        .collect();
    let path = format!("{}/traitements/{}", base(&org), entry.reference);
    let values = json!({
        "title": format!("{} — {}", entry.reference, entry.name),
        "fields": fields,
        "missing": entry.missing.iter().map(|m| where_filled(m, &base(&org))).collect::<Vec<_>>(),
        "dpia": { "required": entry.dpia.required, "reasons": entry.dpia.reasons, "scale": entry.dpia.scale,
                  "text": export::entry_dpia_text(entry) },
    });
    Ok(page::render("rgpd_fiche.html", shell(&on, &org, &[(entry.reference.as_str(), path.as_str())]), values))
}

/// `/rgpd/{org}/export/{format}`: the register now as a download (nothing recorded).
async fn download(on: On<RgpdState>, Path((key, format)): Path<(String, String)>) -> Result<Response, PageError> {
    let format = Format::parse(Some(&format)).map_err(|_| Problem::not_found(format!("aucun format « {format} »")))?;
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let rendered = domain::render_register(&on.state, &org, format).await?;
    Ok(documents::response::attachment(rendered.bytes, format.content_type(), &rendered.file_name))
}

/// Posted: a snapshot of the register now (the latest kept when nothing changed).
async fn snapshot(on: On<RgpdState>, Path(key): Path<String>) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let register = domain::current(&on.state, &org).await?;
    let now = on.state.clock.now();
    let (_, created) =
        snapshots::record(&on.state, &on.signed.0.actor.name, &org, &register, "json", "manual", now).await?;
    let after = if created { "instantane" } else { "inchange" };
    Ok(page::redirect(&format!("{}?apres={after}#instantanes", base(&org))))
}

/// A value of the diff as text: strings as they are, lists one item a line.
fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join("\n"),
        Value::Object(map) => {
            map.iter().map(|(k, v)| format!("{k} : {}", value_text(v))).collect::<Vec<_>>().join(" ; ")
        }
        other => other.to_string(),
    }
}

fn field_changes(fields: &[FieldChange]) -> Vec<Value> {
    fields
        .iter()
        .map(|f| json!({ "field": f.field, "before": value_text(&f.before), "after": value_text(&f.after) }))
        .collect()
}

/// `/rgpd/{org}/ecarts?de=…&a=…`: what changed between two snapshots, or one and now.
async fn diff(on: On<RgpdState>, Path(key): Path<String>, Query(query): Query<Fields>) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let snapshots = snapshot_rows(&on.state, &org).await?;
    let compared = snapshots::diff_for(&on.state, &org, query.opt("de").as_deref(), query.opt("a").as_deref()).await;
    let (diff, notice) = match compared {
        Ok(d) => (Some(d), None),
        Err(p) if matches!(p.kind, ProblemKind::Validation | ProblemKind::NotFound) => {
            (None, Some(Notice::error(format!("Comparaison impossible : {}", p.detail))))
        }
        Err(p) => return Err(p.into()),
    };
    let label = |id: &str| {
        if id == "now" {
            "maintenant".to_string()
        } else {
            snapshots
                .iter()
                .find(|s| s["id"] == id)
                .map_or_else(|| id.to_string(), |s| format!("instantané du {}", s["at"].as_str().unwrap_or("")))
        }
    };
    let view = diff.as_ref().map(|d| {
        let refs = |list: &[snapshots::EntryRef]| -> Vec<Value> {
            list.iter().map(|e| json!({ "reference": e.reference, "name": e.name })).collect()
        };
        json!({
            "from": label(&d.from), "to": label(&d.to), "empty": d.is_empty(),
            "added": refs(&d.added), "removed": refs(&d.removed),
            "changed": d.changed.iter().map(|c| json!({ "reference": c.reference, "name": c.name,
                                                        "fields": field_changes(&c.fields) })).collect::<Vec<_>>(),
            "organisation": field_changes(&d.organisation),
        })
    });
    let path = format!("{}/ecarts", base(&org));
    let values = json!({
        "title": format!("Évolution du registre — {}", org.designation().official),
        "path": path,
        "diff": view,
        "snapshots": snapshots,
        "fields": { "de": query.get("de"), "a": query.get("a") },
    });
    Ok(page::render("rgpd_diff.html", shell(&on, &org, &[("Évolution", path.as_str())]).notice(notice), values))
}

// --- the RGPD contacts -------------------------------------------------------------------

/// The contact fields of the profile: name in the domain, label.
const PROFILE_FIELDS: &[(&str, &str, &str)] = &[
    ("head_name", "Responsable de traitement (nom)", "text"),
    ("head_title", "Qualité du responsable", "text"),
    ("address", "Adresse postale", "long"),
    ("phone", "Téléphone", "text"),
    ("email", "Courriel", "text"),
    ("dpo_name", "Délégué à la protection des données (nom)", "text"),
    ("dpo_email", "Courriel du délégué", "text"),
    ("dpo_phone", "Téléphone du délégué", "text"),
    ("dpo_address", "Adresse du délégué", "long"),
    ("representative", "Représentant (article 27)", "text"),
    ("security_measures", "Mesures de sécurité propres à l'organisation", "long"),
    ("transfer_safeguard", "Sous-traitant hors EEE : garantie des transferts vers lui", "select"),
    (
        "transfer_safeguard_reference",
        "Référence de la garantie (décision, clauses signées le…, règles approuvées le…)",
        "text",
    ),
];

/// The choices of the transfer safeguard: none, or one of the domain's.
fn safeguard_options() -> Vec<Value> {
    let none = std::iter::once(("", "aucune (organisation établie dans l'EEE, ou garantie à documenter)"));
    none.chain(domain::derive::TRANSFER_SAFEGUARDS).map(|(v, l)| json!({ "value": v, "label": l })).collect()
}

fn profile_of(fields: &Fields) -> Profile {
    let get = |name: &str| fields.get(name).to_string();
    Profile {
        head_name: get("head_name"),
        head_title: get("head_title"),
        address: get("address"),
        phone: get("phone"),
        email: get("email"),
        dpo_name: get("dpo_name"),
        dpo_email: get("dpo_email"),
        dpo_phone: get("dpo_phone"),
        dpo_address: get("dpo_address"),
        representative: get("representative"),
        security_measures: get("security_measures"),
        transfer_safeguard: get("transfer_safeguard"),
        transfer_safeguard_reference: get("transfer_safeguard_reference"),
    }
}

fn profile_fields(profile: &Profile, version: i64) -> Fields {
    let value = serde_json::to_value(profile).unwrap_or_default();
    let mut pairs: Vec<(String, String)> = PROFILE_FIELDS
        .iter()
        .map(|(name, _, _)| (name.to_string(), value[name].as_str().unwrap_or_default().to_string()))
        .collect();
    pairs.push(("version".into(), version.to_string()));
    Fields(pairs)
}

fn profile_control(field: &str) -> String {
    format!("profil-{field}")
}

async fn profile_page(on: &On<RgpdState>, org: &Org, reply: Reply<'_>) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.labelled(|field| label_in(PROFILE_FIELDS, field));
    let mut inputs = controls(PROFILE_FIELDS, profile_control, fields, Some(&refusal));
    for input in inputs.iter_mut().filter(|i| i["kind"] == "select") {
        input["options"] = safeguard_options().into();
    }
    let path = format!("{}/profil", base(org));
    let values = json!({
        "title": format!("Coordonnées RGPD — {}", org.designation().official),
        "path": path,
        "inputs": inputs,
        "version": fields.get("version"),
        "can_write": domain::authorize(&on.state, &on.signed.0.actor, &RGPD_WRITE, org).await.is_ok(),
        "errors": refusal.errors,
    });
    let shell = shell(on, org, &[("Coordonnées", path.as_str())]).notice(refusal.notice);
    Ok(page::render_status(status, "rgpd_profile.html", shell, values))
}

/// `/rgpd/{org}/profil`: the contacts as recorded (version 0: none yet).
async fn profile_form(on: On<RgpdState>, Path(key): Path<String>) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_READ).await?;
    let (profile, version) = domain::load::profile(&on.state.store, &org.id).await?.unwrap_or_default();
    let fields = profile_fields(&profile, version);
    profile_page(&on, &org, Reply::shown(&fields, None)).await
}

/// Posted contacts at the version the form was shown at; a stale version keeps what was
/// typed, says so in French, and offers to save over the newer version.
async fn profile_save(
    on: On<RgpdState>,
    Path(key): Path<String>,
    Form(mut fields): Form<Fields>,
) -> Result<Response, PageError> {
    let org = target(&on.state, &on.signed.0.actor, &key, &RGPD_WRITE).await?;
    let Ok(shown) = fields.get("version").parse::<i64>() else {
        let problem =
            Problem::invalid_field("version", "version de la fiche absente du formulaire : rechargez la page");
        return profile_page(&on, &org, Reply::refused(&fields, &problem, profile_control)).await;
    };
    let current = domain::load::profile(&on.state.store, &org.id).await?.map(|(_, v)| v);
    let expected = match current {
        None if shown == 0 => None,
        None => Some(shown),
        Some(_) => Some(shown),
    };
    let profile = profile_of(&fields);
    let now = on.state.clock.now();
    match domain::save_profile(&on.state, &on.signed.0.actor, &org, &profile, expected, now).await {
        Ok(_) => Ok(page::redirect(&format!("{}?apres=profil", base(&org)))),
        Err(p) if p.kind == ProblemKind::PreconditionFailed => {
            let newer = current.unwrap_or_default();
            fields.0.retain(|(k, _)| k != "version");
            fields.0.push(("version".into(), newer.to_string()));
            let conflict = Problem::conflict(
                "ces coordonnées ont été modifiées par quelqu'un d'autre pendant votre saisie. Vos saisies sont \
                 conservées ci-dessous : vérifiez-les, puis enregistrez de nouveau pour remplacer la version la plus \
                 récente",
            );
            profile_page(&on, &org, Reply::refused(&fields, &conflict, profile_control)).await
        }
        Err(p) if p.kind.status().is_server_error() => Err(p.into()),
        Err(p) => profile_page(&on, &org, Reply::refused(&fields, &p, profile_control)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_values_read_as_text_and_missing_fields_say_where_they_are_filled() {
        assert_eq!(value_text(&json!(["a", "b"])), "a\nb");
        assert_eq!(value_text(&json!(null)), "—");
        assert_eq!(value_text(&json!(3)), "3");
        assert_eq!(where_filled("sous-traitant éditeur (non renseigné sur le tenant)", "/rgpd/o1")["href"], "/ent");
        assert_eq!(where_filled("nom du délégué à la protection des données", "/rgpd/o1")["href"], "/rgpd/o1/profil");
        assert_eq!(where_filled("finalités", "/rgpd/o1")["href"], Value::Null);
        let safeguard = where_filled("garanties du transfert hors EEE vers X (US)", "/rgpd/o1");
        assert!(safeguard["where"].as_str().unwrap().contains("sous-traitant destinataire"), "{safeguard}");
    }

    #[test]
    fn a_register_s_summary_agrees_its_words_with_its_counts() {
        assert_eq!(summary(0, 0, 1), "aucun traitement ; 1 fiche incomplète");
        assert_eq!(summary(1, 0, 0), "1 traitement ; aucune fiche incomplète");
        assert_eq!(
            summary(8, 2, 3),
            "8 traitements ; 2 activités de sous-traitance (article 30.2) ; 3 fiches incomplètes"
        );
        assert_eq!(
            summary(0, 1, 2),
            "aucun traitement ; 1 activité de sous-traitance (article 30.2) ; 2 fiches incomplètes"
        );
    }
}
