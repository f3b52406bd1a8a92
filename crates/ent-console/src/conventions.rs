//! « Conventions »: the list of the conventions a person's organisations are party to,
//! the guided creation (model, parties picked by search, covered schools, parameters,
//! dates), a draft's edit form (`edit`: « Modifier le projet »), and a convention's page: its
//! document (shown and downloadable), the circuit as a timeline, and the workflow's actions
//! (submit, visa, sign, refuse, avenant, résiliation, non-reconduction; an administrator's
//! withdrawal of a signature given by mistake). Every action is `ent_conventions`' own function with its checks; its
//! refusal is shown on the page, the form kept.

use crate::auth::{caller, Signed};
use crate::forms::{
    answer, cents, chosen_org, euros_typed, org_choices, searching, short_label, Choice, Fields, On, Refusal, Reply,
};
use crate::list::{self, Cell, Column, Filter, ListParams, ListSpec, ListView};
use crate::page::{self, Notice, PageError, Shell};
use crate::submission::{self, Claim};
use crate::ConsoleState;
use axum::extract::{MatchedPath, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use ent_conventions::conventions::delegation::{self, ActKind, Delegation};
use ent_conventions::conventions::model::{ConventionModel, ParameterSpec, ParameterType, PartySpec};
use ent_conventions::conventions::renewal::{self, Opposition, Renewal};
use ent_conventions::conventions::routes::{
    find, frozen_document, redacted, rendered_document, sees_signers, signed_copy_download, visible_orgs,
};
use ent_conventions::conventions::signatories::{self, Signatory};
use ent_conventions::conventions::workflow::{self, Ctx, NewConvention, PartyDetail, PartyInput, Termination};
use ent_conventions::conventions::{
    covered_etablissements, document as convention_document, find_model, frozen, party_to_any,
    schools_outside_departement, Convention, ConventionsState, Party, Status, Step,
};
use ent_documents::documents;
use ent_kernel::clock::{french_moment, today_in_france};
use ent_kernel::error::{Checks, Problem};
use ent_kernel::http::FromRef;
use ent_kernel::kernel::roles::{OrgKind, Role};
use ent_kernel::naming;
use ent_kernel::store::{Condition, Store};
use ent_platform::identity::authz::{
    self, CONVENTIONS_READ, CONVENTIONS_SIGN, CONVENTIONS_SIGNATURE_WITHDRAW, CONVENTIONS_WRITE,
};
use ent_platform::identity::{shown_actor, Actor};
use ent_platform::registry::queries::{list_orgs, OrgFilter, Relatives};
use ent_platform::registry::{Org, OrgRef};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

mod edit;

/// Organisations proposed per party and kind after a search.
const PROPOSED: u32 = 10;
/// Covered schools listed on the creation form (the count is always given).
const SCHOOLS_SHOWN: usize = 30;

/// The pages of this screen.
pub fn routes<S>() -> Vec<crate::ConsoleRoute<S>>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
    ConventionsState: FromRef<S>,
{
    use crate::Access::Signed as S_;
    use axum::http::Method;
    let route = crate::route;
    vec![
        route(Method::GET, "/conventions", S_(&CONVENTIONS_READ), get(list)),
        route(Method::GET, "/conventions/nouvelle", S_(&CONVENTIONS_WRITE), get(new_form)),
        route(Method::POST, "/conventions/nouvelle", S_(&CONVENTIONS_WRITE), post(create)),
        route(Method::GET, "/conventions/{convention}", S_(&CONVENTIONS_READ), get(show)),
        route(Method::GET, "/conventions/{convention}/document", S_(&CONVENTIONS_READ), get(document)),
        route(
            Method::GET,
            "/conventions/{convention}/exemplaires-signes/{file}",
            S_(&CONVENTIONS_READ),
            get(signed_copy),
        ),
        route(Method::GET, "/conventions/{convention}/modifier", S_(&CONVENTIONS_WRITE), get(edit::form)),
        route(Method::POST, "/conventions/{convention}/modifier", S_(&CONVENTIONS_WRITE), post(edit::save)),
        route(Method::POST, "/conventions/{convention}/soumettre", S_(&CONVENTIONS_WRITE), post(action)),
        route(Method::POST, "/conventions/{convention}/viser", S_(&CONVENTIONS_SIGN), post(action)),
        route(Method::POST, "/conventions/{convention}/signer", S_(&CONVENTIONS_SIGN), post(action)),
        route(Method::POST, "/conventions/{convention}/refuser", S_(&CONVENTIONS_SIGN), post(action)),
        route(Method::POST, "/conventions/{convention}/avenant", S_(&CONVENTIONS_WRITE), post(action)),
        route(Method::POST, "/conventions/{convention}/resilier", S_(&CONVENTIONS_WRITE), post(action)),
        route(Method::POST, "/conventions/{convention}/non-reconduction", S_(&CONVENTIONS_SIGN), post(action)),
        route(
            Method::POST,
            "/conventions/{convention}/signatures/retirer",
            S_(&CONVENTIONS_SIGNATURE_WITHDRAW),
            post(action),
        ),
    ]
}

fn ctx<'a>(state: &'a ConventionsState, actor: &'a Actor) -> Ctx<'a> {
    Ctx { store: &state.store, models: &state.models, actor, now: state.clock.now() }
}

/// The list of conventions: the columns, the status and model filters, the search.
pub const LIST: ListSpec = ListSpec {
    columns: &[
        Column { key: "reference", label: "Référence", order_by: Some("c.reference") },
        Column { key: "objet", label: "Objet", order_by: Some("c.title") },
        Column { key: "modele", label: "Modèle", order_by: Some("c.model_id") },
        Column { key: "statut", label: "Statut", order_by: Some("c.status") },
        Column { key: "debut", label: "Début", order_by: Some("c.start_date") },
        Column { key: "fin", label: "Fin", order_by: Some("c.end_date") },
    ],
    filters: &[
        Filter {
            key: "statut",
            label: "Statut",
            choices: &[
                ("draft", "brouillon"),
                ("in_signature", "en signature"),
                ("signed", "signée"),
                ("active", "en vigueur"),
                ("expired", "expirée"),
                ("terminated", "résiliée"),
                ("amended", "remplacée par avenant"),
            ],
        },
        Filter { key: "modele", label: "Modèle (identifiant)", choices: &[] },
    ],
    default_sort: "fin",
    tie_break: "c.id",
    search: Some("Référence ou objet"),
    keyset: false,
};

/// A convention in the list.
#[derive(sqlx::FromRow)]
struct Listed {
    id: String,
    reference: String,
    title: String,
    model_id: String,
    model_version: i64,
    status: String,
    start_date: String,
    end_date: String,
}

/// The title of the model a listed convention is written on (its version's), as its document
/// names it; the id when this process no longer knows the model (domain review 38, G9).
fn model_title(models: &[ConventionModel], c: &Listed) -> String {
    let version = u32::try_from(c.model_version).ok();
    find_model(models, &c.model_id, version).map_or_else(|_| c.model_id.clone(), |m| m.title.clone())
}

/// The conventions one of `orgs` is party to (all when `None`), and the list's filters.
fn list_condition(params: &ListParams, orgs: Option<Vec<String>>) -> Condition {
    let mut cond = Condition::default();
    if let Some(status) = params.filter("statut") {
        cond.push("c.status = ?", &[status]);
    }
    if let Some(model) = params.filter("modele") {
        cond.push("c.model_id = ?", &[model]);
    }
    if let Some(q) = &params.q {
        let pattern = list::contains_pattern(q);
        cond.push("(LOWER(c.reference) LIKE ? OR LOWER(c.title) LIKE ?)", &[&pattern, &pattern]);
    }
    if let Some(orgs) = orgs {
        cond.and(party_to_any(&orgs));
    }
    cond
}

/// `/conventions`: the conventions the person's organisations are party to (all for an
/// admin), on the shared list (search, status and model filters, sort, pages).
async fn list(
    On { console, state, signed }: On<ConventionsState>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let params = ListParams::parse(&LIST, &query.0);
    let cond = list_condition(&params, visible_orgs(&caller(&signed, &CONVENTIONS_READ)));
    let columns = "c.id, c.reference, c.title, c.model_id, c.model_version, c.status, c.start_date, c.end_date";
    let listed = list::fetch::<Listed>(&state.store, &LIST, &params, columns, "conventions c", &cond).await?;
    let rows = listed
        .page
        .items
        .iter()
        .map(|c| {
            let status = Status::parse(&c.status).map_or_else(|| c.status.clone(), |s| s.label().to_string());
            vec![
                Cell::link(c.reference.clone(), format!("/conventions/{}", c.id)),
                Cell::text(c.title.clone()),
                Cell::text(model_title(&state.models, c)),
                Cell::text(status),
                Cell::text(french_moment(&c.start_date)),
                Cell::text(french_moment(&c.end_date)),
            ]
        })
        .collect();
    let caption = "Conventions de vos organisations";
    let view = ListView::new("conventions", "/conventions", caption, &LIST, &params, &listed, rows);
    let shell = Shell::new(&console, Some(&signed.0), "/conventions").crumbs(&[("Conventions", "/conventions")]);
    let values = json!({ "list": view, "can_create": authz::role_allows(&signed.0.actor, &CONVENTIONS_WRITE) });
    Ok(page::render("conventions.html", shell, values))
}

/// The latest version of each model a person creates (`workflow::create`: one that governs
/// the ENT; a groupement's convention constitutive is born of the groupement): id and title.
fn model_choices(models: &[ConventionModel]) -> Vec<Value> {
    let mut ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    ids.dedup();
    ids.iter()
        .filter_map(|id| find_model(models, id, None).ok())
        .filter(|m| m.governs_ent())
        .map(|m| json!({ "id": m.id, "title": m.title, "description": m.description }))
        .collect()
}

/// The id of the form control of a capability field.
fn control_id(field: &str) -> String {
    match field.split_once('.') {
        Some(("parties", key)) => format!("partie-{key}"),
        // The start date is a parameter the form asks in its « Objet et dates » part.
        Some(("parameters", "start_date")) => "start-date".into(),
        Some(("parameters", key)) => format!("param-{key}"),
        Some(("signatories", rest)) => match rest.split_once('.') {
            Some((key, api)) => {
                let name = SIGNATORY_FIELDS.iter().find(|f| f.1 == api).map_or(api, |f| f.0);
                format!("signataire-{key}-{name}")
            }
            None => format!("partie-{rest}"),
        },
        _ => match field {
            "model" | "version" => "modele".into(),
            "parameters" => "parametres".into(),
            "parties" => "parties".into(),
            other => other.replace('_', "-"),
        },
    }
}

/// The label of a field of the creation form, as the error summary names it (a party's
/// controls with the party they are about); `None` for a parameter, whose message names it.
fn creation_label(model: &ConventionModel, field: &str) -> Option<String> {
    match field.split_once('.') {
        Some(("parties", key)) => Some(format!("Organisation retenue pour {}", party_label(model, key))),
        Some(("signatories", rest)) => {
            let (key, api) = rest.split_once('.')?;
            SIGNATORY_FIELDS.iter().find(|f| f.1 == api)?;
            let label = signatory_label(model, key, api);
            // `key:org_id`: an organisation of a party several play, said as the party.
            let party = key.split_once(':').map_or(key, |(party, _)| party);
            Some(format!("{} — {}", short_label(label), party_label(model, party)))
        }
        Some(_) => None,
        None => match field {
            "title" => Some("Objet".into()),
            "start_date" => Some("Date de prise d'effet".into()),
            "end_date" => Some("Date de fin".into()),
            "backdate_reason" => Some("Motif d'une prise d'effet passée".into()),
            _ => None,
        },
    }
}

/// What the model calls its party `key` (« la collectivité »), the key itself if none.
fn party_label(model: &ConventionModel, key: &str) -> String {
    model.parties.iter().find(|p| p.key == key).map_or_else(|| key.to_string(), |p| p.label.clone())
}

/// Académies and DSDEN: parties any person may name in a convention.
fn is_public_party(kind: OrgKind) -> bool {
    matches!(kind, OrgKind::Academie | OrgKind::Dsden)
}

/// Organisations of `spec`'s kinds matching `search`, in the person's scope (académies
/// and DSDEN are public parties: any of them); the one chosen first when given.
async fn candidates(
    store: &Store,
    actor: &Actor,
    spec: &PartySpec,
    search: &str,
    chosen: Option<&Org>,
) -> Result<Vec<Choice>, Problem> {
    let mut found: Vec<Org> = chosen.into_iter().cloned().collect();
    if !search.is_empty() || chosen.is_none() {
        for kind in &spec.kinds {
            let scope = if is_public_party(*kind) { None } else { authz::scope(actor, &CONVENTIONS_WRITE).condition() };
            let filter = OrgFilter {
                kind: Some(kind.as_str().into()),
                q: Some(search.to_string()).filter(|s| !s.is_empty()),
                limit: Some(PROPOSED),
                ..Default::default()
            };
            let page = list_orgs(store, &filter, scope).await?;
            found.extend(
                page.items.into_iter().filter(|o| {
                    spec.etab_types.is_empty() || o.etab_type.is_some_and(|t| spec.etab_types.contains(&t))
                }),
            );
        }
    }
    Ok(org_choices(found, chosen))
}

/// The creation form of `model` filled from `fields`, with `refusal`'s messages beside the fields.
async fn creation_page(
    on: &On<ConventionsState>,
    model: &ConventionModel,
    reply: Reply<'_>,
) -> Result<Response, PageError> {
    let Reply { fields, refusal, status } = reply;
    let refusal = refusal.labelled(|field| creation_label(model, field));
    let On { console, state, signed } = on;
    let actor = &signed.0.actor;
    let mut parties = Vec::new();
    let mut covered: Option<(usize, Vec<String>)> = None;
    for spec in &model.parties {
        let public = |o: &Org| is_public_party(o.kind) && spec.kinds.contains(&o.kind);
        let chosen = chosen_org(&state.store, actor, fields.opt(&format!("partie.{}", spec.key)), public).await?;
        let search = fields.get(&format!("recherche.{}", spec.key));
        let field = format!("parties.{}", spec.key);
        if model.covers.party.as_deref() == Some(spec.key.as_str()) {
            if let Some(org) = &chosen {
                covered = Some(covered_schools(state, model, org).await?);
            }
        }
        parties.push(json!({
            "key": spec.key,
            "label": spec.label,
            "signatory": signatory_controls(model, fields, &refusal, &spec.key),
            "kinds": spec.kinds.iter().map(|k| k.label()).collect::<Vec<_>>().join(", "),
            "search": search,
            "candidates": candidates(&state.store, actor, spec, search, chosen.as_ref()).await?,
            "error": refusal.message(&field),
        }));
    }
    let parameters = parameter_controls(model, fields, &refusal);
    let title = format!("Nouvelle convention — {}", model.title);
    let shell = Shell::new(console, Some(&signed.0), "/conventions")
        .crumbs(&[("Conventions", "/conventions"), ("Nouvelle convention", "/conventions/nouvelle")])
        .notice(refusal.notice.clone());
    let values = json!({
        "title": title,
        "model": { "id": model.id, "title": model.title, "description": model.description,
                   "duration": model.duration_months },
        "parties": parties,
        "covered": covered.as_ref().map(|(n, names)| json!({ "count": n, "names": names, "more": *n > names.len() })),
        // The party whose organisation's schools are covered, as the model names it.
        "covers_party": model.covers.party.as_deref().map(|key| party_label(model, key)),
        "parameters": parameters,
        "fields": typed_draft(fields),
        "envoi": submission::token(fields),
        "error": draft_errors(&refusal),
        "errors": refusal.errors,
    });
    Ok(page::render_status(status, "convention_new.html", shell, values))
}

/// What a draft's form (new or edited) shows typed in its title, dates and backdate reason.
fn typed_draft(fields: &Fields) -> Value {
    let typed = |name: &str| fields.get(name).to_string();
    json!({ "titre": typed("titre"), "debut": typed("debut"), "fin": typed("fin"),
            "motif_retroactif": typed("motif_retroactif") })
}

/// The messages a draft's form shows beside its controls.
fn draft_errors(refusal: &Refusal) -> Value {
    json!({
        "title": refusal.message("title"),
        "start_date": refusal.message("start_date").or(refusal.message("parameters.start_date")),
        "end_date": refusal.message("end_date"),
        "backdate_reason": refusal.message("backdate_reason"),
        "parameters": refusal.message("parameters"),
        "parties": refusal.message("parties"),
    })
}

/// The signatory controls of the party (or `key:org_id` organisation of a multiple party)
/// `key`: each of [`SIGNATORY_FIELDS`] with the value `fields` give and `refusal`'s message.
fn signatory_controls(model: &ConventionModel, fields: &Fields, refusal: &Refusal, key: &str) -> Vec<Value> {
    SIGNATORY_FIELDS
        .iter()
        .map(|(name, api, _, input)| {
            json!({
                "name": name, "label": signatory_label(model, key, api), "input": input,
                "value": fields.get(&format!("signataire.{key}.{name}")),
                "error": refusal.message(&format!("signatories.{key}.{api}")),
            })
        })
        .collect()
}

/// The controls of the model's parameters (the start date aside, asked with the dates): the
/// value `fields` give, else the model's default, and `refusal`'s message.
fn parameter_controls(model: &ConventionModel, fields: &Fields, refusal: &Refusal) -> Vec<Value> {
    model
        .parameters
        .iter()
        .filter(|p| p.key != "start_date")
        .map(|p| {
            let name = format!("param.{}", p.key);
            let given = fields.0.iter().any(|(k, _)| k == &name);
            let value = if given { fields.get(&name).to_string() } else { parameter_text(p, p.default.as_ref()) };
            let (label, description) = parameter_words(p);
            json!({
                "key": p.key,
                "label": label,
                "description": description,
                "required": p.required,
                "input": input_type(p.kind),
                "value": value,
                "checked": p.kind == ParameterType::Boolean && (value == "on" || value == "true"),
                "error": refusal.message(&format!("parameters.{}", p.key)),
            })
        })
        .collect()
}

/// The schools a convention naming `org` as the covering party would cover: their count
/// and the first names.
async fn covered_schools(
    state: &ConventionsState,
    model: &ConventionModel,
    org: &Org,
) -> Result<(usize, Vec<String>), Problem> {
    let schools = if org.kind == OrgKind::Etablissement {
        vec![org.clone()]
    } else {
        covered_etablissements(&state.store, org).await?
    };
    let kept: Vec<Org> = schools
        .into_iter()
        .filter(|s| {
            model.covers.etab_types.is_empty() || s.etab_type.is_some_and(|t| model.covers.etab_types.contains(&t))
        })
        .collect();
    let names =
        kept.iter().take(SCHOOLS_SHOWN).map(|s| format!("{} ({})", naming::display_name(&s.name), s.code)).collect();
    Ok((kept.len(), names))
}

fn input_type(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::Text => "text",
        ParameterType::Integer | ParameterType::Percent => "number",
        // « 4 321,09 »: a number control takes neither the comma nor the spaces.
        ParameterType::Cents => "text",
        ParameterType::Date => "date",
        ParameterType::Boolean => "checkbox",
    }
}

/// A parameter's label and description as the form asks it: a `cents` one in euros (the model
/// says « (centimes) », « en centimes d'euro »: what the API takes).
fn parameter_words(spec: &ParameterSpec) -> (String, String) {
    match spec.kind {
        ParameterType::Cents => {
            (spec.label.replace("(centimes)", "(euros)"), spec.description.replace("en centimes d'euro", "en euros"))
        }
        _ => (spec.label.clone(), spec.description.clone()),
    }
}

/// A parameter's stored (or default) `value` as its control shows it: cents in euros
/// (« 4321,09 »), anything else as [`default_text`].
pub(crate) fn parameter_text(spec: &ParameterSpec, value: Option<&Value>) -> String {
    match (spec.kind, value.and_then(Value::as_i64)) {
        (ParameterType::Cents, Some(cents)) => euros_typed(cents),
        _ => default_text(value),
    }
}

/// The 422 of amounts typed in euros that read as none (« 4 321,09 » or « 4321.09 » do), on
/// their fields, in the words of the form; `None` when every one reads.
pub(crate) fn euro_refusal(model: &ConventionModel, fields: &Fields) -> Option<Problem> {
    let mut checks = Checks::default();
    for spec in model.parameters.iter().filter(|p| p.kind == ParameterType::Cents) {
        let raw = fields.get(&format!("param.{}", spec.key));
        if !raw.trim().is_empty() && cents(raw).is_none() {
            let (label, _) = parameter_words(spec);
            checks.fail(
                &format!("parameters.{}", spec.key),
                format!("{label} : attendu un montant en euros, par exemple 4 321,09"),
            );
        }
    }
    checks.finish().err()
}

fn default_text(default: Option<&Value>) -> String {
    match default {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "on".into(),
        Some(Value::Null | Value::Bool(false)) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `/conventions/nouvelle`: the model chosen first, then the whole form.
async fn new_form(on: On<ConventionsState>, Query(query): Query<Fields>) -> Result<Response, PageError> {
    let On { console, state, signed } = &on;
    let chosen = query.opt("modele").and_then(|id| find_model(&state.models, &id, None).ok());
    if let Some(model) = chosen.filter(|m| m.governs_ent()) {
        return creation_page(&on, model, Reply::shown(&query, None)).await;
    }
    let shell = Shell::new(console, Some(&signed.0), "/conventions")
        .crumbs(&[("Conventions", "/conventions"), ("Nouvelle convention", "/conventions/nouvelle")]);
    // From an organisation's page (`?organisation=`): the models that may cover it, each a link
    // to its form with the organisation chosen for the party it is.
    let school = chosen_org(&state.store, &signed.0.actor, query.opt("organisation"), |_| false).await?;
    let values = match school {
        Some(school) => {
            let funding = Relatives::of(&state.store, &school).await?.funding(&school);
            json!({
                "models": model_choices(&state.models),
                "org_for": naming::of_org(school.kind, &naming::display_name(&school.name)).article,
                "links": models_for(&state.models, &school, funding.as_ref()),
            })
        }
        None => json!({ "models": model_choices(&state.models) }),
    };
    Ok(page::render("convention_model.html", shell, values))
}

/// The models whose conventions may cover `school` (`ConventionModel::may_cover`, their latest
/// versions), each a link to its creation form with its party chosen: the school itself, or the
/// collectivité `funding` it whose écoles the model covers.
fn models_for(models: &[ConventionModel], school: &Org, funding: Option<&OrgRef>) -> Vec<Value> {
    let mut ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    ids.dedup();
    ids.iter()
        .filter_map(|id| find_model(models, id, None).ok())
        .filter(|m| m.governs_ent() && m.may_cover(school))
        .filter_map(|m| {
            let key = m.covers.party.as_deref()?;
            let spec = m.parties.iter().find(|p| p.key == key)?;
            let party = match spec.kinds.contains(&school.kind) {
                true => school.id.clone(),
                false => funding.filter(|f| spec.kinds.contains(&f.kind))?.id.clone(),
            };
            let href = format!("/conventions/nouvelle?modele={}&partie.{key}={party}", m.id);
            Some(json!({ "id": m.id, "title": m.title, "description": m.description, "href": href }))
        })
        .collect()
}

/// The signatory fields of each party in the creation and edit forms: (form name, API field, label, input type).
const SIGNATORY_FIELDS: [(&str, &str, &str, &str); 7] = [
    ("nom", "name", "Nom du signataire (ex. « Mme Claire Dupont »)", "text"),
    ("qualite", "quality", "Qualité (ex. « maire », « rectrice de l'académie »)", "text"),
    ("delegation", "delegation", "Signature par délégation : acte de délégation", "text"),
    ("delegation_date", "delegation_date", "Date de l'acte de délégation", "date"),
    ("acte_numero", "act_number", "N° de la délibération ou de l'acte du conseil d'administration", "text"),
    ("acte_date", "act_date", "Date de la délibération ou de l'acte", "date"),
    ("lieu", "place", "Lieu de signature (« Fait à … »)", "text"),
];

/// The label of the signatory field `api` of the party `key` (or `key:org_id`) of `model`: its
/// act named as the party's kind takes it (`act_labels`), the other fields as [`SIGNATORY_FIELDS`]
/// names them.
pub(crate) fn signatory_label(model: &ConventionModel, key: &str, api: &str) -> &'static str {
    let party = key.split_once(':').map_or(key, |(party, _)| party);
    let acts = model.parties.iter().find(|p| p.key == party).map(act_labels);
    match (api, acts) {
        ("act_number", Some((number, _))) => number,
        ("act_date", Some((_, date))) => date,
        _ => SIGNATORY_FIELDS.iter().find(|f| f.1 == api).map_or("", |f| f.2),
    }
}

/// The act that empowers a party's signatory, as its kind takes it (number, date): an arrêté or
/// a décision for the académie and its DSDEN, a délibération for a collectivité, the conseil
/// d'administration's act for an EPLE (article R. 421-20 du code de l'éducation), an act for any
/// other (an école has no conseil d'administration).
fn act_labels(spec: &PartySpec) -> (&'static str, &'static str) {
    let of_state = spec.kinds.iter().all(|k| matches!(k, OrgKind::Academie | OrgKind::Dsden));
    let collectivite = spec.kinds.iter().all(|k| {
        matches!(k, OrgKind::Region | OrgKind::Departement | OrgKind::Commune | OrgKind::Epci | OrgKind::SyndicatMixte)
    });
    let eple = spec.kinds == [OrgKind::Etablissement]
        && !spec.etab_types.is_empty()
        && spec.etab_types.iter().all(|t| !t.is_ecole());
    match (of_state, collectivite, eple) {
        (true, ..) => ("N° de l'arrêté ou de la décision", "Date de l'arrêté ou de la décision"),
        (_, true, _) => ("N° de la délibération", "Date de la délibération"),
        (.., true) => ("N° de l'acte du conseil d'administration", "Date de l'acte du conseil d'administration"),
        _ => ("N° de l'acte", "Date de l'acte"),
    }
}

/// The signatory the form gives for a party, when any of its fields is filled.
fn form_signatory(fields: &Fields, key: &str) -> Option<Signatory> {
    let get = |name: &str| fields.opt(&format!("signataire.{key}.{name}"));
    let s = Signatory {
        name: get("nom").unwrap_or_default(),
        quality: get("qualite").unwrap_or_default(),
        delegation: get("delegation"),
        delegation_date: get("delegation_date"),
        act_number: get("acte_numero"),
        act_date: get("acte_date"),
        place: get("lieu"),
    };
    (s != Signatory::default()).then_some(s)
}

/// The value of a parameter of `kind` typed as `raw`; `None` when left empty (a box unticked is
/// `false`). A number when it reads as one; otherwise the text, for the model's own message.
fn parameter_value(kind: ParameterType, raw: &str) -> Option<Value> {
    let number = || raw.parse::<i64>().map(Value::from).ok();
    match kind {
        ParameterType::Boolean => Some(Value::Bool(raw == "on" || raw == "true")),
        _ if raw.is_empty() => None,
        ParameterType::Integer => Some(number().unwrap_or_else(|| Value::String(raw.into()))),
        // Typed in euros (« 4 321,09 »), stored in cents; what does not read as an amount is
        // refused on its field before the domain sees it (`euro_refusal`).
        ParameterType::Cents => Some(cents(raw).map_or_else(|| Value::String(raw.into()), Value::from)),
        ParameterType::Percent => {
            let decimal = || raw.replace(',', ".").parse::<f64>().ok().and_then(serde_json::Number::from_f64);
            Some(number().or_else(|| decimal().map(Value::Number)).unwrap_or_else(|| Value::String(raw.into())))
        }
        ParameterType::Text | ParameterType::Date => Some(Value::String(raw.into())),
    }
}

/// The model's parameters as the form gives them (the start date aside); one left empty is
/// `cleared` (left out at creation, for the model's default; `null` in an edit, which removes it).
fn form_parameters(model: &ConventionModel, fields: &Fields, cleared: Option<Value>) -> Map<String, Value> {
    model
        .parameters
        .iter()
        .filter(|p| p.key != "start_date")
        .filter_map(|spec| {
            let value =
                parameter_value(spec.kind, fields.get(&format!("param.{}", spec.key))).or_else(|| cleared.clone())?;
            Some((spec.key.clone(), value))
        })
        .collect()
}

/// The convention the form describes, for `workflow::create`.
fn new_convention(model: &ConventionModel, fields: &Fields) -> NewConvention {
    let parties: BTreeMap<String, PartyInput> = model
        .parties
        .iter()
        .filter_map(|p| {
            let org = fields.opt(&format!("partie.{}", p.key))?;
            let input = match form_signatory(fields, &p.key) {
                Some(signatory) => PartyInput::Detailed(PartyDetail { org, signatory: Some(signatory) }),
                None => PartyInput::One(org),
            };
            Some((p.key.clone(), input))
        })
        .collect();
    NewConvention {
        model: model.id.clone(),
        version: Some(model.version),
        parties,
        parameters: form_parameters(model, fields, None),
        start_date: fields.get("debut").to_string(),
        end_date: fields.opt("fin"),
        title: fields.opt("titre"),
        supersedes: None,
        backdate_reason: fields.opt("motif_retroactif"),
        signatories: BTreeMap::new(),
        party_shares: BTreeMap::new(),
    }
}

/// Posted creation form: a search (`forms::searching`: its button, or Enter in a changed search box) shows it again with the parties found,
/// otherwise the convention is created (a draft) and its page opened. The form's one-time
/// token makes a second post of it (a double click) open the draft the first one created.
async fn create(on: On<ConventionsState>, Form(fields): Form<Fields>) -> Result<Response, PageError> {
    let On { state, signed, .. } = &on;
    let model = find_model(&state.models, fields.get("modele"), None)?;
    if searching(&fields) {
        return creation_page(&on, model, Reply::shown(&fields, None)).await;
    }
    if let Some(problem) = euro_refusal(model, &fields) {
        return creation_page(&on, model, Reply::refused(&fields, &problem, control_id)).await;
    }
    let submission =
        match submission::claim(&state.store, &signed.0.actor, "conventions", &fields, state.clock.now()).await? {
            Claim::First(submission) => submission,
            Claim::Done(answer) => return Ok(answer),
        };
    let created = submission.run(workflow::create(&ctx(state, &signed.0.actor), new_convention(model, &fields))).await;
    let location = |conv: &Convention| format!("/conventions/{}?apres=creee", conv.id);
    match &created {
        Ok(conv) => submission.done(&location(conv)).await?,
        Err(_) => submission.release().await?,
    }
    answer(
        created,
        |conv| location(&conv),
        async |problem| creation_page(&on, model, Reply::refused(&fields, &problem, control_id)).await,
    )
    .await
}

/// The convention of the path as the person may read it (404 when not party to it, as for
/// a missing one).
async fn readable(state: &ConventionsState, signed: &Signed, key: &str) -> Result<Convention, Problem> {
    let caller = caller(signed, &CONVENTIONS_READ);
    let conv = find(state, &caller, key).await?;
    Ok(redacted(&caller, conv))
}

/// The notice after an action, by the `apres` of the address.
const DONE_NOTICES: &[(&str, &str)] = &[
    ("creee", "La convention est créée (brouillon)."),
    ("modifiee", "Le projet est enregistré."),
    ("inchangee", "Le projet n'est pas modifié : rien n'est enregistré."),
    ("soumise", "La convention est soumise à visa et signature."),
    ("visee", "Votre visa est enregistré."),
    ("signee", "Votre signature est enregistrée."),
    ("refusee", "Votre refus est enregistré : la convention revient en brouillon."),
    ("avenant", "L'avenant est créé (brouillon) : complétez-le puis soumettez-le."),
    ("resiliee", "La résiliation est enregistrée et notifiée aux parties."),
    (
        "non-reconduite",
        "La non-reconduction est enregistrée et notifiée aux parties : la convention prendra fin à son terme.",
    ),
    (
        "signature-retiree",
        "La signature est retirée et le retrait notifié aux parties : la partie doit signer à nouveau.",
    ),
];

/// `/conventions/{convention}`.
async fn show(
    on: On<ConventionsState>,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let On { state, signed, .. } = &on;
    let conv = readable(state, signed, &key).await?;
    convention_page(&on, &conv, Reply::shown(&Fields::default(), Notice::after(query.get("apres"), DONE_NOTICES))).await
}

/// The convention's page, with the fields of the action refused (if any) kept.
async fn convention_page(
    on: &On<ConventionsState>,
    conv: &Convention,
    reply: Reply<'_>,
) -> Result<Response, PageError> {
    let model = find_model(&on.state.models, &conv.model_id, Some(conv.model_version))?;
    let (On { console, state, signed }, Reply { fields, refusal, status }) = (on, reply);
    let actor = &signed.0.actor;
    let path = format!("/conventions/{}", conv.id);
    let shell = Shell::new(console, Some(&signed.0), "/conventions")
        .crumbs(&[("Conventions", "/conventions"), (&conv.reference, &path)])
        .notice(refusal.notice.clone());
    let signed_by = |party: &Party| {
        conv.live_steps("signature")
            .find(|s| s.step_key == party.key && s.org_id == party.org.id)
            // A delegated signature reads as its formula (« Pour la rectrice … et par délégation, … »),
            // never « signée par Pour … ».
            .map(|s| json!({ "who": signer_text(s, party), "at": french_moment(&s.at), "delegated": s.delegation.is_some() }))
    };
    let parties: Vec<Value> = conv
        .parties
        .iter()
        .map(|p| {
            json!({ "label": p.label, "org": p.org.name, "code": p.org.code,
                         "required": p.signature_required, "signed": signed_by(p),
                         "signatory": signatories::describe(p) })
        })
        .collect();
    let pending: Vec<String> = workflow::pending_signers(model, conv)
        .iter()
        .map(|p| format!("{} ({})", naming::display_name(&p.org.name), p.label))
        .collect();
    let mut conn = state.store.conn().await?;
    let renewals = renewal::renewals(&mut conn, &conv.id).await?;
    let signed = renewal::signed_term(&mut conn, conv).await?;
    let warnings = workflow::with_warnings(&mut conn, &state.models, actor, conv.clone()).await?.warnings;
    drop(conn);
    let uncovered = schools_outside_departement(&state.store, model, conv).await?;
    let values = json!({
        "title": format!("{} — {}", conv.reference, conv.title),
        "conv": {
            "id": conv.id, "reference": conv.reference, "title": conv.title, "status": conv.status.as_str(),
            "version": conv.version,
            "status_label": conv.status.label(), "start": french_moment(&conv.start_date),
            "end": french_moment(&conv.end_date), "model": model.title,
            "hash": conv.document_hash, "refusal": conv.refusal_comment,
            "termination": conv.termination_reason,
            "termination_effective": conv.termination_effective.as_deref().map(french_moment),
            // A résiliation notified: no avenant, no second résiliation (both answer 409).
            "closed": conv.termination_effective.is_some(),
            "schools": conv.schools.iter().map(|s| format!("{} ({})", s.name, s.code)).collect::<Vec<_>>(),
            // « la DSDEN du Val-de-Marne », as the documents and registers name it.
            "controller": conv.rgpd_controller.as_ref().map(|o| naming::of_org(o.kind, &naming::display_name(&o.name)).article),
            "uncovered": uncovered.iter().map(|s| format!("{} ({})", naming::display_name(&s.name), s.code)).collect::<Vec<_>>(),
        },
        "parties": parties,
        "warnings": warnings,
        "pending": pending,
        "signs_for": workflow::parties_to_sign(actor, model, conv)
            .iter()
            .map(|p| json!({ "key": p.key, "label": p.label, "org": p.org.name,
                             "representative": representative(p, &on.signed.0.display_name) }))
            .collect::<Vec<_>>(),
        "visa": workflow::visa_for(actor, model, conv).map(|v| json!({ "key": v.key, "label": v.label })),
        "withdrawable": withdrawable(actor, conv),
        "timeline": timeline(conv, &renewals, !sees_signers(&caller(&on.signed, &CONVENTIONS_READ), conv)),
        "renewal": renewal_box(model, conv, &signed, today_in_france(state.clock.now())),
        "document": document_body(state, model, conv).await?,
        "downloads": downloads(conv),
        "signed_copies": signed_copies(conv),
        "can": {
            // Submitted, amended, terminated: by a party's writer; a convention constitutive by its coordinator.
            "conduct": workflow::conducts_convention(actor, model, conv),
            "refuse": workflow::may_refuse(actor, model, conv),
            // A non-reconduction is decided by a party's representative, who signs for it.
            "oppose": renewal::may_oppose(actor, model, conv),
            // A résiliation d'un commun accord is recorded by an administrator only.
            "agree": actor.is_admin(),
        },
        "fields": { "motif": fields.get("motif"), "resiliation": fields.get("resiliation"),
                    "effet": fields.get("effet"), "accord": fields.opt("accord").is_some(),
                    "reconduction": fields.get("reconduction"), "motif_retrait": fields.get("motif_retrait"),
                    "signature_partie": fields.get("signature_partie"),
                    "delegation_qualite": fields.get("delegation_qualite"),
                    "delegation_acte": fields.get("delegation_acte"),
                    "delegation_numero": fields.get("delegation_numero"),
                    "delegation_date": fields.get("delegation_date") },
        "notice_months": workflow::notice_months(conv),
        "error": refusal.by_control(),
        // A refused submission's errors are corrected on the edit form, which their links open.
        "completes": refusal.errors.iter().any(|e| e.href.is_some()),
        "edit": conv.status == Status::Draft && workflow::writes_convention(actor, model, conv),
        "errors": refusal.errors,
    });
    Ok(page::render_status(status, "convention.html", shell, values))
}

/// The tacit renewal of a renewable convention in force: until when it renews, the last day to
/// oppose, whether that is still open; or the opposition recorded. `None` for another model.
fn renewal_box(
    model: &ConventionModel,
    conv: &Convention,
    signed: &renewal::SignedTerm,
    today: chrono::NaiveDate,
) -> Option<Value> {
    if !model.renewable || !matches!(conv.status, Status::Active | Status::Signed) {
        return None;
    }
    // A résiliation taking effect by the term: it ends then, nothing is renewed.
    if conv.non_renewal.is_none() && !renewal::renews(model.renewable, conv) {
        return None;
    }
    let deadline = renewal::opposition_deadline(conv).ok()?;
    let end = chrono::NaiveDate::parse_from_str(&conv.end_date, "%Y-%m-%d").ok()?;
    let until = renewal::renewed_end(end, renewal::renewal_span(model, signed).ok()?).ok()?;
    Some(json!({
        "deadline": french_moment(&deadline.to_string()),
        "until": french_moment(&until.to_string()),
        "open": today <= deadline && conv.non_renewal.is_none() && conv.termination_effective.is_none(),
        "opposed": conv.non_renewal.is_some(),
        "passed": today > deadline,
    }))
}

/// The signatures an administrator may withdraw from `conv` (`workflow::withdraw_signature`):
/// on a convention in signature, each live one, by the key the withdrawal names its party
/// with (`key:org_id` for one organisation of a party several play) and who it was given for.
/// None for anyone else: the form is an administrator's.
fn withdrawable(actor: &Actor, conv: &Convention) -> Vec<Value> {
    if !actor.is_admin() || conv.status != Status::InSignature {
        return Vec::new();
    }
    conv.live_steps("signature")
        .filter_map(|s| conv.parties.iter().find(|p| p.key == s.step_key && p.org.id == s.org_id))
        .map(|p| {
            let shared = conv.parties.iter().filter(|o| o.key == p.key).count() > 1;
            let key = if shared { signatories::party_org_key(&p.key, &p.org.id) } else { p.key.clone() };
            json!({ "key": key, "label": format!("{} ({})", naming::display_name(&p.org.name), p.label) })
        })
        .collect()
}

/// The representative the document names for `party` (« M. Jean Dupont, maire »), when the
/// person signed in (`person`, their name) is another one: they sign by délégation.
fn representative(party: &Party, person: &str) -> Option<String> {
    let named = party.signatory.as_ref().filter(|s| !s.name.trim().is_empty())?;
    if delegation::is_representative(person, named) {
        return None;
    }
    Some(match named.quality.trim() {
        "" => named.name.trim().to_string(),
        quality => format!("{}, {quality}", named.name.trim()),
    })
}

/// Who signed for `party`: their name, or « Pour le maire et par délégation, Karim Benali,
/// adjoint au maire, arrêté n° … du … » for a signature given by délégation.
fn signer_text(step: &Step, party: &Party) -> String {
    match &step.delegation {
        Some(delegation) => delegation.phrase(&step.user_name, party),
        None => step.user_name.clone(),
    }
}

/// Who did what and when, oldest first; `masked`: for a reader who does not see addresses
/// (`sees_signers`), who read the persons by name (`redacted` masked their addresses).
fn timeline(conv: &Convention, renewals: &[Renewal], masked: bool) -> Vec<Value> {
    let by_name = |name: Option<&String>| name.filter(|_| masked).cloned();
    let mut events = vec![json!({
        "at": french_moment(&conv.created_at),
        "what": "Création du brouillon",
        "who": by_name(conv.created_by_name.as_ref()).unwrap_or_else(|| shown_actor(&conv.created_by)),
        "voided": Value::Null,
    })];
    for step in &conv.steps {
        let party = conv.parties.iter().find(|p| p.key == step.step_key && p.org.id == step.org_id);
        let what = match (step.kind.as_str(), party) {
            // As the documents name the party (« la Commune de Fresnes », « l'académie de Créteil »).
            ("signature", Some(p)) => {
                format!(
                    "Signature pour {} ({})",
                    naming::of_org(p.org.kind, &naming::display_name(&p.org.name)).article,
                    p.label
                )
            }
            ("signature", None) => format!("Signature ({})", step.step_key),
            (_, _) => format!("Visa « {} »", step.step_key),
        };
        let role: &str = match Role::parse(&step.role) {
            Some(role) => crate::page::role_label(role),
            None => &step.role,
        };
        let signer = match party {
            Some(p) if step.kind == "signature" => signer_text(step, p),
            _ => step.user_name.clone(),
        };
        let who = match &step.recorded_by {
            Some(by) => format!("{signer} — {role}, signature papier enregistrée par {}", shown_actor(by)),
            None => format!("{signer} — {role}"),
        };
        events.push(json!({
            "at": french_moment(&step.at),
            "what": what,
            "who": who,
            "voided": step.voided_at.as_ref().map(|at| format!(
                "annulé le {} : {}", french_moment(at), step.void_reason.clone().unwrap_or_default())),
        }));
    }
    if let Some(opposed) = &conv.non_renewal {
        let party = conv.parties.iter().find(|p| p.org.id == opposed.org_id);
        let why = opposed.reason.as_deref().map(|r| format!(" : {r}")).unwrap_or_default();
        // By name and quality for the party, as a résiliation's notifier, for who sees no address.
        let who = match party.filter(|_| masked) {
            Some(p) => convention_document::acting_for(p, opposed.name.as_deref(), opposed.role.as_deref()),
            None => shown_actor(&opposed.by),
        };
        events.push(json!({
            "at": french_moment(&opposed.at),
            "what": format!(
                "Non-reconduction notifiée par {}{why} ; la convention prend fin à son terme",
                party.map_or("", |p| p.org.name.as_str())
            ),
            "who": who,
            "voided": Value::Null,
        }));
    }
    for renewed in renewals {
        events.push(json!({
            "at": french_moment(&renewed.renewed_at),
            "what": format!(
                "Échéance du {} : reconduite tacitement jusqu'au {}",
                french_moment(&renewed.previous_end),
                french_moment(&renewed.new_end)
            ),
            "who": "",
            "voided": Value::Null,
        }));
    }
    events.extend(termination_event(conv));
    events
}

/// The résiliation in the history: dated when it was recorded, by whom and for which party,
/// « prend effet le … » (domain review 38, G7); one recorded before that was kept (migration
/// 0066, no audit record) under the day it takes effect.
fn termination_event(conv: &Convention) -> Option<Value> {
    let reason = conv.termination_reason.as_ref()?;
    let effective = conv.termination_effective.as_deref().map(french_moment).unwrap_or_default();
    let Some(notified) = &conv.termination_notified else {
        return Some(
            json!({ "at": effective, "what": format!("Résiliation : {reason}"), "who": "", "voided": Value::Null }),
        );
    };
    let party = notified.org_id.as_deref().and_then(|id| conv.parties.iter().find(|p| p.org.id == id));
    // An administrator records one the parties agreed (no party notifies it alone).
    let what = match party {
        Some(p) => {
            let by = naming::of_org(p.org.kind, &naming::display_name(&p.org.name)).article;
            format!("Résiliation notifiée par {by} : {reason} ; prend effet le {effective}")
        }
        None => format!("Résiliation enregistrée : {reason} ; prend effet le {effective}"),
    };
    Some(json!({
        "at": french_moment(&notified.at),
        "what": what,
        "who": convention_document::notifier(conv, notified),
        "voided": Value::Null,
    }))
}

/// Whether the page shows the frozen document: once submitted and until back in draft
/// (after a refusal the draft is edited again, and shown as it now reads).
fn shows_frozen(conv: &Convention) -> bool {
    conv.status != Status::Draft && !conv.documents.is_empty()
}

/// The document as the page shows it: the frozen HTML once submitted (what is signed),
/// otherwise the draft rendered now; the body of the HTML file only, embedded under the
/// page's « Document » heading (`documents::embedded`: the signed file is not touched).
async fn document_body(
    state: &ConventionsState,
    model: &ConventionModel,
    conv: &Convention,
) -> Result<String, Problem> {
    let stored = if shows_frozen(conv) {
        frozen::read(&mut *state.store.conn().await?, &conv.id, None, "html").await?
    } else {
        None
    };
    let html = match stored {
        Some((_, bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        None => {
            let doc = convention_document::full(&state.store, model, conv).await?;
            documents::to_html_as(&doc, convention_document::typography(conv))
        }
    };
    Ok(documents::embedded(&html))
}

/// The downloads offered: the frozen files of the latest version, or the text rendered now: a
/// draft's, or that of a convention past its draft with no frozen text (`document::full` says
/// on its signature page that it is reconstituted).
fn downloads(conv: &Convention) -> Vec<Value> {
    let rendered = if conv.status == Status::Draft { "brouillon" } else { "texte reconstitué" };
    let latest = conv.documents.iter().map(|d| d.version_no).max().filter(|_| shows_frozen(conv));
    match latest {
        Some(version) => conv
            .documents
            .iter()
            .filter(|d| d.version_no == version)
            .map(|d| {
                json!({
                    "label": format!("{} (version {version}, {} octets)", d.format.to_uppercase(), d.size),
                    "href": format!("/conventions/{}/document?format={}&version={version}", conv.id, d.format),
                    "sha256": d.sha256,
                })
            })
            .collect(),
        None => ["html", "odt", "pdf"]
            .iter()
            .filter(|f| **f != "pdf" || documents::pdf_available())
            .map(|f| {
                json!({
                    "label": format!("{} ({rendered})", f.to_uppercase()),
                    "href": format!("/conventions/{}/document?format={f}", conv.id),
                    "sha256": Value::Null,
                })
            })
            .collect(),
    }
}

/// `/conventions/{convention}/document?format=&version=`: a stored version when asked or
/// while the page shows the frozen document, the draft rendered now otherwise.
async fn document(
    State(state): State<ConventionsState>,
    signed: Signed,
    Path(key): Path<String>,
    Query(query): Query<Fields>,
) -> Result<Response, PageError> {
    let conv = readable(&state, &signed, &key).await?;
    let format = query.opt("format");
    let version = query.opt("version").and_then(|v| v.parse().ok());
    if version.is_none() && !shows_frozen(&conv) {
        return Ok(rendered_document(&state, &conv, format.as_deref()).await?);
    }
    Ok(frozen_document(&state, &conv, format.as_deref(), version).await?)
}

/// `/conventions/{convention}/exemplaires-signes/{file}`: a signed copy deposited, as the API serves it.
async fn signed_copy(
    State(state): State<ConventionsState>,
    signed: Signed,
    Path((key, file)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let conv = readable(&state, &signed, &key).await?;
    Ok(signed_copy_download(&state, &conv, &file).await?)
}

/// The signed copies deposited for `conv`, each with its download link.
fn signed_copies(conv: &Convention) -> Vec<Value> {
    conv.signed_files
        .iter()
        .map(|f| {
            json!({
                "name": f.file_name,
                "href": format!("/conventions/{}/exemplaires-signes/{}", conv.id, f.id),
                "size": f.size,
                "sha256": f.sha256,
                "by": f.uploaded_by,
                "at": french_moment(&f.uploaded_at),
            })
        })
        .collect()
}

/// Runs a workflow action on the convention of the path as the signed-in person: then
/// its page with `done`'s notice, or the page again with the refusal and the form kept.
async fn act(
    on: &On<ConventionsState>,
    key: &str,
    fields: &Fields,
    done: &str,
    action: impl AsyncFnOnce(&Ctx<'_>, &Convention) -> Result<Convention, Problem>,
) -> Result<Response, PageError> {
    let On { state, signed, .. } = on;
    let conv = readable(state, signed, key).await?;
    let acted = action(&ctx(state, &signed.0.actor), &conv).await;
    answer(
        acted,
        |after| format!("/conventions/{}?apres={done}", after.id),
        async |problem| {
            let conv = readable(state, signed, key).await?;
            if done == "soumise" && conv.status == Status::Draft {
                let model = find_model(&state.models, &conv.model_id, Some(conv.model_version))?;
                return convention_page(on, &conv, edit::submission_refused(model, &conv, fields, &problem)).await;
            }
            let reply = Reply::refused(fields, &problem, |f| match f {
                "comment" => "motif".into(),
                "reason" if done == "non-reconduite" => "reconduction".into(),
                "reason" if done == "signature-retiree" => "motif_retrait".into(),
                "party" | "version" if done == "signature-retiree" => "signature_partie".into(),
                "reason" => "resiliation".into(),
                "effective_date" => "effet".into(),
                "mutual_agreement" => "accord".into(),
                "delegation" | "delegation.quality" => "delegation_qualite".into(),
                "delegation.number" => "delegation_numero".into(),
                "delegation.date" => "delegation_date".into(),
                other => other.into(),
            });
            convention_page(on, &conv, reply).await
        },
    )
    .await
}

/// The délégation de signature the signing form gives, when any of its fields is filled (an
/// unknown act kind is read as an arrêté, the only other choice the form offers).
fn form_delegation(fields: &Fields) -> Option<Delegation> {
    let [quality, act, number, date] =
        ["delegation_qualite", "delegation_acte", "delegation_numero", "delegation_date"].map(|f| fields.opt(f));
    if quality.is_none() && number.is_none() && date.is_none() {
        return None;
    }
    Some(Delegation {
        quality: quality.unwrap_or_default(),
        act: act.as_deref().and_then(ActKind::parse).unwrap_or(ActKind::Arrete),
        number: number.unwrap_or_default(),
        date: date.unwrap_or_default(),
        delegator: None,
    })
}

/// A workflow action posted from the convention's page, by the last segment of its address.
async fn action(
    on: On<ConventionsState>,
    Path(key): Path<String>,
    path: MatchedPath,
    Form(fields): Form<Fields>,
) -> Result<Response, PageError> {
    let name = path.as_str().rsplit('/').next().unwrap_or_default();
    match name {
        "soumettre" => act(&on, &key, &fields, "soumise", workflow::submit).await,
        "viser" => {
            let given = fields.opt("visa");
            act(&on, &key, &fields, "visee", async |ctx, conv| workflow::give_visa(ctx, conv, given.as_deref()).await)
                .await
        }
        // Signs for the party chosen (or the only one), bound to the fingerprint the page showed.
        "signer" => {
            let (party, hash) = (fields.opt("partie"), fields.opt("empreinte"));
            let delegation = form_delegation(&fields);
            act(&on, &key, &fields, "signee", async |ctx, conv| {
                let signing = workflow::Signing { party: party.as_deref(), document_hash: hash.as_deref(), delegation };
                workflow::sign(ctx, conv, signing).await
            })
            .await
        }
        "refuser" => {
            let comment = fields.get("motif").to_string();
            act(&on, &key, &fields, "refusee", async |ctx, conv| workflow::refuse(ctx, conv, &comment).await).await
        }
        "avenant" => act(&on, &key, &fields, "avenant", workflow::amend).await,
        "retirer" => {
            let (party, reason) = (fields.get("signature_partie").to_string(), fields.get("motif_retrait").to_string());
            let shown = fields.get("version").parse::<i64>().ok();
            act(&on, &key, &fields, "signature-retiree", async |ctx, conv| {
                let version = shown.ok_or_else(|| {
                    Problem::invalid_field(
                        "version",
                        "version de la convention absente du formulaire : rechargez la page",
                    )
                })?;
                let asked = workflow::Withdrawal { party: &party, reason: &reason, version };
                workflow::withdraw_signature(ctx, conv, asked).await
            })
            .await
        }
        "non-reconduction" => {
            let opposition = Opposition { reason: fields.opt("reconduction"), party: fields.opt("partie") };
            act(&on, &key, &fields, "non-reconduite", async |ctx, conv| renewal::oppose(ctx, conv, opposition).await)
                .await
        }
        _ => {
            let reason = fields.get("resiliation").to_string();
            let termination = Termination {
                reason,
                effective_date: fields.opt("effet"),
                mutual_agreement: fields.opt("accord").is_some(),
            };
            act(&on, &key, &fields, "resiliee", async |ctx, conv| workflow::terminate(ctx, conv, termination).await)
                .await
        }
    }
}
